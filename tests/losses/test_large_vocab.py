"""The fused large-vocabulary head (linear_cross_entropy, linear_cross_entropy_with_lse,
reduced_linear_cross_entropy) against PyTorch and the naive head."""

import json
import math
import pathlib

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from lossjax._fused import tile_sizes
from lossjax.losses import linear_cross_entropy, linear_cross_entropy_with_lse, reduced_linear_cross_entropy

REF = json.loads((pathlib.Path(__file__).parents[1] / "reference" / "large_vocab.json").read_text())["cases"]
MODES = ("in_forward", "recompute")


def rel_err(actual, expected) -> float:
    """max |a - e| / max |e| (normwise relative error, robust to tiny entries)."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(a - e)) / max(np.max(np.abs(e)), 1e-30))


def assert_rel(actual, expected, tol, what=""):
    err = rel_err(actual, expected)
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:.3g}"


def naive(hidden, weight, labels, *, bias=None, label_smoothing=0.0, z_loss_weight=0.0, logit_softcap=None, where=None):
    """The naive head: logits materialized, float32 (or float64) softmax cross-entropy."""
    dt = jnp.float64 if hidden.dtype == jnp.float64 else jnp.float32
    logits = jnp.matmul(hidden.astype(dt), weight.astype(dt).T, precision=jax.lax.Precision.HIGHEST)
    if bias is not None:
        logits = logits + bias.astype(dt)[None, :]
    if logit_softcap is not None:
        logits = logit_softcap * jnp.tanh(logits / logit_softcap)
    valid = labels != -100
    if where is not None:
        valid = valid & where
    safe = jnp.where(valid, labels, 0)
    logp = jax.nn.log_softmax(logits, axis=-1)
    v = logits.shape[-1]
    q = (1 - label_smoothing) * jax.nn.one_hot(safe, v, dtype=dt) + label_smoothing / v
    lse = jax.nn.logsumexp(logits, axis=-1)
    loss = -jnp.sum(q * logp, axis=-1) + z_loss_weight * lse**2
    return jnp.where(valid, loss, 0.0)


def _kwargs(c):
    """The golden case's options under today's names (the JSON keeps the old key ``z_loss``)."""
    return {("z_loss_weight" if k == "z_loss" else k): v for k, v in c["kwargs"].items()}


def _case(name):
    c = REF[name]
    arrs = {
        "hidden": jnp.asarray(c["hidden"], jnp.float32),
        "weight": jnp.asarray(c["weight"], jnp.float32),
        "labels": jnp.asarray(c["labels"], jnp.int32),
        "cot": jnp.asarray(c["cotangent"], jnp.float32),
        "bias": None if c["bias"] is None else jnp.asarray(c["bias"], jnp.float32),
    }
    return c, arrs


def _random(n=70, d=24, v=333, seed=0, dtype=jnp.float32, ignore=True):
    rng = np.random.default_rng(seed)
    h = jnp.asarray(rng.normal(size=(n, d)), dtype)
    w = jnp.asarray(rng.normal(size=(v, d)) * 0.4, dtype)
    b = jnp.asarray(rng.normal(size=(v,)) * 0.5, jnp.float32)
    y = rng.integers(0, v, size=(n,))
    if ignore:
        y[::7] = -100
    return h, w, b, jnp.asarray(y, jnp.int32)


# ----------------------------------------------------------------------------
# Golden values (PyTorch float64 autograd of the naive head)
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REF))
def test_golden_per_token(name):
    """Per-token losses, lse and per-token-cotangent gradients (recompute path, several blocks)."""
    c, a = _case(name)
    kw = _kwargs(c)

    def f(h, w, b):
        loss, lse = linear_cross_entropy_with_lse(h, w, a["labels"], bias=b, block_size=16, **kw)
        return jnp.sum(loss * a["cot"]), (loss, lse)

    argnums = (0, 1, 2) if a["bias"] is not None else (0, 1)
    (_, (loss, lse)), grads = jax.jit(jax.value_and_grad(f, argnums=argnums, has_aux=True))(
        a["hidden"], a["weight"], a["bias"]
    )
    assert_rel(loss, c["loss"], 1e-5, f"{name} loss")
    assert_rel(lse, c["lse"], 1e-5, f"{name} lse")
    assert_rel(grads[0], c["dhidden"], 1e-5, f"{name} dhidden")
    assert_rel(grads[1], c["dweight"], 1e-5, f"{name} dweight")
    if a["bias"] is not None:
        assert_rel(grads[2], c["dbias"], 1e-5, f"{name} dbias")
    # The per-token entry is the same computation without the lse output.
    plain = jax.jit(lambda h, w, b: linear_cross_entropy(h, w, a["labels"], bias=b, block_size=16, **kw))
    np.testing.assert_array_equal(plain(a["hidden"], a["weight"], a["bias"]), loss)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(REF))
def test_golden_mean(name, mode):
    """The masked mean and its gradients, in both gradient modes (several chunks/blocks)."""
    c, a = _case(name)

    def f(h, w, b):
        return reduced_linear_cross_entropy(
            h, w, a["labels"], bias=b, reduction="mean", mode=mode, block_size=16, chunk_size=5, **_kwargs(c)
        )

    argnums = (0, 1, 2) if a["bias"] is not None else (0, 1)
    val, grads = jax.jit(jax.value_and_grad(f, argnums=argnums))(a["hidden"], a["weight"], a["bias"])
    assert_rel(val, c["mean"], 1e-5, f"{name} mean")
    assert_rel(grads[0], c["mean_dhidden"], 1e-5, f"{name} mean dhidden")
    assert_rel(grads[1], c["mean_dweight"], 1e-5, f"{name} mean dweight")
    if a["bias"] is not None:
        assert_rel(grads[2], c["mean_dbias"], 1e-5, f"{name} mean dbias")


# ----------------------------------------------------------------------------
# Against the naive head on random data
# ----------------------------------------------------------------------------

OPTIONS = [
    {},
    {"label_smoothing": 0.1, "z_loss_weight": 1e-3, "logit_softcap": 4.0},
]


@pytest.mark.parametrize("opts", OPTIONS, ids=["plain", "all"])
@pytest.mark.parametrize("mode", MODES)
def test_matches_naive_float32(mode, opts):
    h, w, b, y = _random()
    cot = jnp.linspace(0.5, 1.5, h.shape[0], dtype=jnp.float32)
    kw = dict(block_size=128, **opts)  # 333 = 2*128 + 77; 70 = 2*32 + 6

    if mode == "recompute":

        def fused(h, w, b):
            return jnp.sum(cot * linear_cross_entropy(h, w, y, bias=b, **kw))

        def ref(h, w, b):
            return jnp.sum(cot * naive(h, w, y, **{**opts, "bias": b}))

    else:

        def fused(h, w, b):
            return reduced_linear_cross_entropy(h, w, y, bias=b, reduction="sum", mode=mode, chunk_size=32, **kw)

        def ref(h, w, b):
            return jnp.sum(naive(h, w, y, **{**opts, "bias": b}))

    got = jax.jit(jax.value_and_grad(fused, argnums=(0, 1, 2)))(h, w, b)
    want = jax.jit(jax.value_and_grad(ref, argnums=(0, 1, 2)))(h, w, b)
    for g, r, what in zip(jax.tree.leaves(got), jax.tree.leaves(want), ("loss", "dhidden", "dweight", "dbias")):
        assert g.dtype == jnp.float32
        assert_rel(g, r, 1e-5, what)


@pytest.mark.parametrize("mode", MODES)
def test_bf16_inputs(mode):
    """bf16 operands: float32 loss, bf16 gradients, within bf16 tolerance of float32 math on the same inputs."""
    h, w, _, y = _random(dtype=jnp.bfloat16)

    def fused(h, w):
        return reduced_linear_cross_entropy(h, w, y, reduction="mean", mode=mode, block_size=128, chunk_size=32)

    val, (dh, dw) = jax.jit(jax.value_and_grad(fused, argnums=(0, 1)))(h, w)
    assert val.dtype == jnp.float32
    assert dh.dtype == jnp.bfloat16 and dw.dtype == jnp.bfloat16
    count = jnp.sum(y != -100)

    def ref(h, w):
        return jnp.sum(naive(h.astype(jnp.float32), w.astype(jnp.float32), y)) / count

    rval, (rdh, rdw) = jax.jit(jax.value_and_grad(ref, argnums=(0, 1)))(h, w)
    assert_rel(val, rval, 1e-3, "bf16 loss")  # the loss itself is float32 math on exact bf16 products
    assert_rel(dh, rdh, 2e-2, "bf16 dhidden")
    assert_rel(dw, rdw, 2e-2, "bf16 dweight")


@pytest.mark.parametrize("mode", MODES)
def test_bf16_matmuls_stay_bf16_with_float32_accumulation(mode):
    """Every matmul of the loss and its gradient takes bf16 operands and accumulates in float32."""
    h, w, _, y = _random(n=16, v=300, dtype=jnp.bfloat16)
    f = jax.grad(
        lambda h, w: reduced_linear_cross_entropy(h, w, y, reduction="mean", mode=mode, block_size=128, chunk_size=8),
        argnums=(0, 1),
    )
    dots = []

    def visit(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                dots.append(eqn)
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                visit(sub)

    visit(jax.make_jaxpr(f)(h, w).jaxpr)
    assert len(dots) >= 3  # logits, dhidden, dweight
    for eqn in dots:
        assert [str(v.aval.dtype) for v in eqn.invars] == ["bfloat16", "bfloat16"], eqn
        assert eqn.params["preferred_element_type"] == jnp.float32, eqn


def test_modes_agree_and_reductions():
    h, w, b, y = _random(seed=3)
    count = jnp.sum(y != -100)

    @jax.jit
    def all_ways(h, w, b):
        per_token = linear_cross_entropy(h, w, y, bias=b, block_size=128)
        out = {}
        for mode in MODES:
            for red in ("sum", "mean"):
                out[mode, red] = reduced_linear_cross_entropy(
                    h, w, y, bias=b, reduction=red, mode=mode, chunk_size=32, block_size=128
                )
        return per_token, out

    per_token, out = all_ways(h, w, b)
    for mode in MODES:
        np.testing.assert_allclose(out[mode, "sum"], jnp.sum(per_token), rtol=2e-6)
        np.testing.assert_allclose(out[mode, "mean"], jnp.sum(per_token) / count, rtol=2e-6)


def test_with_lse_gradient():
    """Gradient through the returned lse equals d logsumexp of the naive logits (softmax @ .)."""
    h, w, _, y = _random(n=20, v=200, seed=5)

    def fused(h, w):
        loss, lse = linear_cross_entropy_with_lse(h, w, y, block_size=128)
        return jnp.sum(loss) + 0.3 * jnp.sum(lse**2)

    def ref(h, w):
        logits = jnp.matmul(h, w.T, precision=jax.lax.Precision.HIGHEST)
        lse = jnp.where(y != -100, jax.nn.logsumexp(logits, axis=-1), 0.0)
        return jnp.sum(naive(h, w, y)) + 0.3 * jnp.sum(lse**2)

    got = jax.jit(jax.value_and_grad(fused, argnums=(0, 1)))(h, w)
    want = jax.jit(jax.value_and_grad(ref, argnums=(0, 1)))(h, w)
    for g, r in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert_rel(g, r, 1e-5, "lse path")


# ----------------------------------------------------------------------------
# Closed forms for the options (hand-derived)
# ----------------------------------------------------------------------------


def test_closed_form_two_classes():
    """V = 2, D = 1: logits (s*h, 0) with s = w_0; every option has a closed form.

    z = c tanh(s h / c);  lse = log(1 + e^z);  loss(y=0) = lse - (1-a) z - (a/2) z + zl lse^2
    d loss / d h = [(sigmoid(z) (1 + 2 zl lse)) - (1 - a/2)] * (1 - tanh^2(s h / c)) * s.
    """
    h0, s, c, a, zl = 1.3, 2.0, 3.0, 0.2, 0.05
    hidden = jnp.array([[h0]], jnp.float32)
    weight = jnp.array([[s], [0.0]], jnp.float32)
    labels = jnp.array([0], jnp.int32)
    t = math.tanh(s * h0 / c)
    z = c * t
    lse = math.log1p(math.exp(z))
    want = lse - (1 - a) * z - (a / 2) * z + zl * lse**2
    sig = 1 / (1 + math.exp(-z))
    dwant = (sig * (1 + 2 * zl * lse) - (1 - a / 2)) * (1 - t**2) * s
    for mode in MODES:

        def f(x, mode=mode):
            return reduced_linear_cross_entropy(
                x, weight, labels, label_smoothing=a, z_loss_weight=zl, logit_softcap=c, reduction="sum", mode=mode
            )

        val, g = jax.jit(jax.value_and_grad(f))(hidden)
        np.testing.assert_allclose(float(val), want, rtol=1e-6)
        np.testing.assert_allclose(float(g[0, 0]), dwant, rtol=1e-5)


def test_uniform_logits_closed_form():
    """hidden = 0: every logit is 0, loss = log V (+ zl log^2 V), label smoothing changes nothing."""
    v = 1000
    hidden = jnp.zeros((3, 4), jnp.float32)
    weight = jnp.ones((v, 4), jnp.float32)
    labels = jnp.array([0, 999, 500], jnp.int32)
    out = jax.jit(
        lambda h: linear_cross_entropy(h, weight, labels, label_smoothing=0.3, z_loss_weight=1e-2, block_size=128)
    )(hidden)
    np.testing.assert_allclose(out, np.full(3, math.log(v) + 1e-2 * math.log(v) ** 2), rtol=1e-6)


# ----------------------------------------------------------------------------
# Masking and edges
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_ignored_tokens_equal_slicing(mode):
    h, w, b, y = _random(seed=1)
    where = jnp.asarray(np.arange(h.shape[0]) % 5 != 2)
    keep = np.asarray((y != -100) & where)
    h_bad = jnp.where(keep[:, None], h, jnp.nan)  # garbage in ignored rows must not leak

    def f(h, w):
        return reduced_linear_cross_entropy(h, w, y, bias=b, where=where, reduction="sum", mode=mode, chunk_size=16)

    def sliced(h, w):
        return reduced_linear_cross_entropy(h[keep], w, y[keep], bias=b, reduction="sum", mode=mode, chunk_size=16)

    val, (dh, dw) = jax.jit(jax.value_and_grad(f, argnums=(0, 1)))(h_bad, w)
    rval, (rdh, rdw) = jax.jit(jax.value_and_grad(sliced, argnums=(0, 1)))(h, w)
    np.testing.assert_allclose(val, rval, rtol=2e-6)
    assert np.all(np.asarray(dh)[~keep] == 0)
    np.testing.assert_allclose(dh, rdh, rtol=1e-5, atol=1e-7)  # rdh is 0 on dropped rows too
    np.testing.assert_allclose(dw, rdw, rtol=1e-5, atol=1e-7)
    per_token = linear_cross_entropy(h_bad, w, y, bias=b, where=where, block_size=128)
    assert np.all(np.asarray(per_token)[~keep] == 0) and np.all(np.isfinite(per_token))


@pytest.mark.parametrize("mode", MODES)
def test_all_ignored_batch(mode):
    h, w, b, _ = _random(n=9, v=130)
    y = jnp.full((9,), -100, jnp.int32)

    def f(h, w, b):
        return reduced_linear_cross_entropy(h, w, y, bias=b, reduction="mean", mode=mode, chunk_size=4, block_size=64)

    val, grads = jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2)))(h, w, b)
    assert float(val) == 0.0
    for g in grads:
        assert np.all(np.asarray(g) == 0)
    assert np.all(np.asarray(linear_cross_entropy(h, w, y)) == 0)


@pytest.mark.parametrize("mode", MODES)
def test_huge_logits_finite_and_exact(mode):
    """Logits of ~1e6: finite, and equal to the float64 naive head (max-subtracted LSE)."""
    h, w, _, y = _random(n=16, v=300, seed=2)
    h = h * 1e4

    def f(h, w):
        return reduced_linear_cross_entropy(h, w, y, reduction="sum", mode=mode, block_size=128, chunk_size=8)

    val, (dh, dw) = jax.jit(jax.value_and_grad(f, argnums=(0, 1)))(h, w)
    assert np.isfinite(float(val)) and np.all(np.isfinite(dh)) and np.all(np.isfinite(dw))
    with jax.enable_x64(True):
        h64, w64 = jnp.asarray(np.asarray(h), jnp.float64), jnp.asarray(np.asarray(w), jnp.float64)
        ref = jax.jit(jax.value_and_grad(lambda h, w: jnp.sum(naive(h, w, y)), argnums=(0, 1)))
        rval, (rdh, rdw) = ref(h64, w64)
        rval, rdh, rdw = float(rval), np.asarray(rdh), np.asarray(rdw)
    assert_rel(val, rval, 1e-5, "huge loss")
    assert_rel(dh, rdh, 1e-5, "huge dhidden")
    assert_rel(dw, rdw, 1e-5, "huge dweight")


def test_ignore_index_none_and_custom():
    h, w, _, y = _random(n=10, v=140, ignore=False)
    y = y.at[3].set(7)

    @jax.jit
    def run(h):
        return (
            linear_cross_entropy(h, w, y, ignore_index=None, block_size=128),
            linear_cross_entropy(h, w, y, ignore_index=7, block_size=128),
            naive(h, w, y),
        )

    none, seven, ref = run(h)
    np.testing.assert_allclose(none, ref, rtol=1e-5)  # nothing ignored (no label is -100 here)
    keep = np.asarray(y) != 7
    assert np.all(np.asarray(seven)[~keep] == 0)
    np.testing.assert_allclose(np.asarray(seven)[keep], np.asarray(ref)[keep], rtol=1e-5)


def test_debug_mode_reports_labels_out_of_range():
    h, w, _, _ = _random(n=4, v=130, ignore=False)
    checked = lossjax.checked(linear_cross_entropy)
    with pytest.raises(ValueError, match=r"linear_cross_entropy: labels must lie in \[0, 130\)"):
        checked(h, w, jnp.array([0, 130, 1, 2], jnp.int32))
    # ignored and masked tokens may hold anything
    out = checked(h, w, jnp.array([0, -100, 1, 999], jnp.int32), where=jnp.array([True, True, True, False]))
    assert np.asarray(out)[1] == 0 and np.asarray(out)[3] == 0


def test_leading_dims_and_vmap_and_checkpoint():
    h, w, _, y = _random(n=24, v=200, seed=4)
    h3, y3 = h.reshape(2, 12, -1), y.reshape(2, 12)

    @jax.jit
    def three_ways(h, h3, y3):
        flat = linear_cross_entropy(h, w, y, block_size=128)
        batched = linear_cross_entropy(h3, w, y3, block_size=128)
        vm = jax.vmap(lambda a, b: linear_cross_entropy(a, w, b, block_size=128))(h3, y3)
        return flat, batched, vm

    flat, batched, vm = three_ways(h, h3, y3)
    np.testing.assert_allclose(batched, flat.reshape(2, 12), rtol=1e-6)
    np.testing.assert_allclose(vm, flat.reshape(2, 12), rtol=1e-6)

    def f(h, w):
        return jnp.sum(linear_cross_entropy(h, w, y, block_size=128) ** 2)

    g = jax.jit(jax.grad(f, argnums=(0, 1)))(h, w)
    gc = jax.jit(jax.grad(jax.checkpoint(f), argnums=(0, 1)))(h, w)
    for a, b in zip(g, gc):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    gvm = jax.jit(jax.vmap(jax.grad(lambda a, b: jnp.sum(linear_cross_entropy(a, w, b, block_size=128) ** 2))))(h3, y3)
    np.testing.assert_allclose(gvm.reshape(h.shape), g[0], rtol=1e-5, atol=1e-7)


def test_in_forward_under_vmap_and_checkpoint():
    """The scalar (in-forward) path: vmap over sequences and remat give the plain gradients."""
    h, w, _, y = _random(n=24, v=200, seed=6)
    h3, y3 = h.reshape(2, 12, -1), y.reshape(2, 12)

    def f(h, w, y):
        return reduced_linear_cross_entropy(h, w, y, reduction="sum", mode="in_forward", chunk_size=5)

    @jax.jit
    def all_ways(h, w, h3, y3):
        plain = jax.value_and_grad(f, argnums=(0, 1))(h, w, y)
        remat = jax.value_and_grad(jax.checkpoint(f), argnums=(0, 1))(h, w, y)
        per_seq = jax.vmap(jax.value_and_grad(f, argnums=(0, 1)), in_axes=(0, None, 0))(h3, w, y3)
        return plain, remat, per_seq

    plain, remat, (vals, (dh, dw)) = all_ways(h, w, h3, y3)
    for a, b in zip(jax.tree.leaves(remat), jax.tree.leaves(plain)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(jnp.sum(vals), plain[0], rtol=1e-6)
    np.testing.assert_allclose(dh.reshape(h.shape), plain[1][0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(jnp.sum(dw, axis=0), plain[1][1], rtol=1e-5, atol=1e-6)


def test_no_gather_or_scatter_on_vocab():
    """The target logit comes from an iota compare: no gather/scatter in the loss or its gradient."""
    h, w, b, y = _random(n=8, v=300)
    for mode in MODES:
        jaxpr = str(
            jax.make_jaxpr(
                jax.grad(
                    lambda h, w, b, mode=mode: reduced_linear_cross_entropy(
                        h, w, y, bias=b, reduction="sum", mode=mode, block_size=128, label_smoothing=0.1
                    ),
                    argnums=(0, 1, 2),
                )
            )(h, w, b)
        )
        assert "gather" not in jaxpr and "scatter" not in jaxpr


# ----------------------------------------------------------------------------
# Tile sizes and memory
# ----------------------------------------------------------------------------


def test_tile_sizes_from_budget():
    budget = 512 * 2**20
    block, chunk = tile_sizes(8192, 128256, memory_budget=budget)
    assert block % 128 == 0 and chunk % 128 == 0
    assert 8192 * block * 4 <= budget and chunk * 128256 * 4 <= budget
    assert (block, chunk) == (16384, 1024)  # 1024-token chunks at V=128k (PERFORMANCE.md)
    # never a tiny tile at a huge vocabulary; capped by the full size at small shapes
    assert tile_sizes(16384, 256000, memory_budget=2**20) == (128, 128)
    assert tile_sizes(100, 1000) == (1000, 100)


def test_auto_mode_choice():
    """auto: in-forward (6NDV) for every scalar loss, whatever the budget (issue 17); recompute otherwise."""
    h, w, _, y = _random(n=8, d=4, v=256)

    def prims(**kw):
        f = jax.grad(
            lambda h, w: reduced_linear_cross_entropy(h, w, y, block_size=128, chunk_size=4, **kw), argnums=(0, 1)
        )
        return str(jax.make_jaxpr(f)(h, w))

    # The recompute backward streams vocabulary blocks again: two loops in total.
    # The in-forward path has one loop (token chunks) and no loop in the backward.
    assert prims(reduction="mean").count("scan[") == 1
    assert prims(reduction="sum").count("scan[") == 1
    assert prims(reduction="mean", memory_budget=4 * 256 * 4 - 1).count("scan[") == 1
    assert prims(reduction="mean", mode="recompute").count("scan[") == 2
    # Per-token losses (any cotangent) always recompute, whatever the budget.
    per_token = jax.grad(lambda h, w: jnp.sum(linear_cross_entropy(h, w, y, block_size=128)), argnums=(0, 1))
    assert str(jax.make_jaxpr(per_token)(h, w)).count("scan[") == 2


def _temp_bytes(fn, *args) -> int:
    return jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes


def test_memory_far_below_naive():
    """Compiled temporaries of value_and_grad (compile only, nothing runs): fused << naive."""
    n, d, v = 4096, 128, 32768
    h = jax.ShapeDtypeStruct((n, d), jnp.bfloat16)
    w = jax.ShapeDtypeStruct((v, d), jnp.bfloat16)
    y = jax.ShapeDtypeStruct((n,), jnp.int32)

    def naive_loss(h, w, y):
        logits = (h @ w.T).astype(jnp.float32)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    budget = 16 * 2**20
    naive_b = _temp_bytes(jax.value_and_grad(naive_loss, argnums=(0, 1)), h, w, y)
    for mode in MODES:
        fused = jax.value_and_grad(
            lambda h, w, y, mode=mode: reduced_linear_cross_entropy(
                h, w, y, reduction="mean", mode=mode, memory_budget=budget
            ),
            argnums=(0, 1),
        )
        fused_b = _temp_bytes(fused, h, w, y)
        assert naive_b >= n * v * 4  # the float32 logits alone
        # recompute: tiles + [N, D] float32; in-forward: tiles + the [V, D] float32 dW accumulator
        assert fused_b <= 0.1 * naive_b, (mode, fused_b, naive_b)
        assert fused_b <= 3 * budget + 4 * v * d + 8 * n * d, (mode, fused_b)


# ----------------------------------------------------------------------------
# Portability: the gradient lowers for every backend
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_gradient_exports_for_all_platforms(mode):
    h = jax.ShapeDtypeStruct((64, 16), jnp.bfloat16)
    w = jax.ShapeDtypeStruct((300, 16), jnp.bfloat16)
    y = jax.ShapeDtypeStruct((64,), jnp.int32)

    def step(h, w, y):
        return jax.value_and_grad(
            lambda h, w: reduced_linear_cross_entropy(
                h,
                w,
                y,
                reduction="mean",
                mode=mode,
                block_size=128,
                chunk_size=32,
                z_loss_weight=1e-4,
                logit_softcap=30.0,
            ),
            argnums=(0, 1),
        )(h, w)

    exp = jax.export.export(jax.jit(step), platforms=("cpu", "cuda", "tpu"))(h, w, y)
    assert exp.platforms == ("cpu", "cuda", "tpu")
    assert [str(a.dtype) for a in exp.out_avals] == ["float32", "bfloat16", "bfloat16"]
    text = exp.mlir_module()
    assert "while" in text  # streamed over blocks/chunks, not one [N, V] matmul


# ----------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------

_H = np.zeros((4, 3), np.float32)
_W = np.zeros((5, 3), np.float32)
_Y = np.zeros((4,), np.int32)


_SHARED_ERRORS = [
    (
        {"weight": np.zeros((5, 2), np.float32)},
        ValueError,
        r"`weight` must have shape \(V, D\).*got weight.shape=\(5, 2\)",
    ),
    ({"weight": np.zeros((5,), np.float32)}, ValueError, r"`weight` must have rank 2, got rank 1"),
    (
        {"labels": np.zeros((3,), np.int32)},
        ValueError,
        r"`labels` must have shape hidden.shape\[:-1\]=\(4,\), got \(3,\)",
    ),
    ({"labels": np.zeros((4,), np.float32)}, TypeError, r"`labels` must have a int dtype, got float32"),
    ({"hidden": np.zeros((4, 3), np.int32)}, TypeError, r"`hidden` must have a float dtype, got int32"),
    ({"label_smoothing": 1.0}, ValueError, r"`label_smoothing` must lie in \[0.0, 1.0\), got 1.0"),
    ({"z_loss_weight": -1.0}, ValueError, r"`z_loss_weight` must be >= 0, got -1.0"),
    ({"logit_softcap": 0.0}, ValueError, r"`logit_softcap` must be > 0, got 0.0"),
    ({"block_size": 0}, ValueError, r"`block_size` must be an integer >= 1, got 0"),
    ({"memory_budget": True}, ValueError, r"`memory_budget` must be an integer >= 1, got True"),
    ({"bias": np.zeros((4,), np.float32)}, ValueError, r"`bias` must have shape \(5\), got \(4,\)"),
    ({"where": np.ones((4,), np.int32)}, TypeError, r"`where` must be a boolean mask"),
    ({"ignore_index": -1.5}, ValueError, r"`ignore_index` must be an integer, got -1.5"),
]
_REDUCED_ERRORS = [
    ({"reduction": "avg"}, ValueError, r"`reduction` must be one of \['mean', 'sum'\], got 'avg'"),
    ({"reduction": "none"}, ValueError, r"`reduction` must be one of \['mean', 'sum'\], got 'none'"),
    ({"mode": "fast"}, ValueError, r"`mode` must be one of .*got 'fast'"),
    ({"chunk_size": 2.5}, ValueError, r"`chunk_size` must be an integer >= 1, got 2.5"),
]
_FUNCTIONS = {
    f.__name__: f for f in (linear_cross_entropy, linear_cross_entropy_with_lse, reduced_linear_cross_entropy)
}
_ERROR_CASES = [(name, *case) for name in _FUNCTIONS for case in _SHARED_ERRORS] + [
    ("reduced_linear_cross_entropy", *case) for case in _REDUCED_ERRORS
]


@pytest.mark.parametrize(("fn", "kwargs", "exc", "match"), _ERROR_CASES)
def test_bad_inputs(fn, kwargs, exc, match):
    kwargs = dict(kwargs)
    args = {"hidden": _H, "weight": _W, "labels": _Y}
    for k in ("hidden", "weight", "labels"):
        if k in kwargs:
            args[k] = kwargs.pop(k)
    with pytest.raises(exc, match=fn + ": " + ".*" + match):
        _FUNCTIONS[fn](args["hidden"], args["weight"], args["labels"], **kwargs)


def test_return_contract_is_one_kind_per_entry():
    """Per-token losses, (losses, lse) with has_aux, and a scalar: three registered entries, one implementation."""
    h, w, b, y = _random(n=12, v=140, seed=8)
    get = lossjax.registry.get_entry
    assert (get("linear_cross_entropy").kind, get("linear_cross_entropy").has_aux) == ("per_example", False)
    assert (get("linear_cross_entropy_with_lse").kind, get("linear_cross_entropy_with_lse").has_aux) == (
        "per_example",
        True,
    )
    assert get("reduced_linear_cross_entropy").kind == "batch"
    assert "reduction" not in get("linear_cross_entropy").hyperparams
    assert "mode" not in get("linear_cross_entropy_with_lse").hyperparams

    @jax.jit
    def three(h):
        return (
            linear_cross_entropy(h, w, y, bias=b, block_size=128),
            linear_cross_entropy_with_lse(h, w, y, bias=b, block_size=128),
            reduced_linear_cross_entropy(h, w, y, bias=b, reduction="sum", mode="recompute", block_size=128),
        )

    per_token, (losses, lse), total = three(h)
    assert per_token.shape == lse.shape == y.shape and total.shape == ()
    np.testing.assert_array_equal(losses, per_token)
    np.testing.assert_allclose(total, jnp.sum(per_token), rtol=2e-6)
    logits = jnp.matmul(h, w.T, precision=jax.lax.Precision.HIGHEST) + b[None, :]
    want_lse = jnp.where(y != -100, jax.nn.logsumexp(logits, axis=-1), 0.0)
    assert_rel(lse, want_lse, 1e-6, "lse")


# ----------------------------------------------------------------------------
# Fused distillation and preference heads (issue 14): fused == materialized, flat in V
# ----------------------------------------------------------------------------


def _materialized_distill(h, w, ht, wt, *, divergence="kl", beta=0.5, temperature=1.0, where=None):
    """The divergences on materialized float32 logits (trl GKD's generalized JSD; TVD)."""
    hp = jax.lax.Precision.HIGHEST
    f32 = jnp.float32
    zs = jnp.matmul(h.astype(f32), w.astype(f32).T, precision=hp) / temperature
    zt = jnp.matmul(ht.astype(f32), wt.astype(f32).T, precision=hp) / temperature
    ls, lt = jax.nn.log_softmax(zs, -1), jax.lax.stop_gradient(jax.nn.log_softmax(zt, -1))
    p, q = jnp.exp(lt), jnp.exp(ls)
    if divergence == "jsd" and beta == 0.0:
        divergence = "kl"
    if divergence == "jsd" and beta == 1.0:
        divergence = "reverse_kl"
    if divergence == "kl":
        d = jnp.sum(p * (lt - ls), -1)
    elif divergence == "reverse_kl":
        d = jnp.sum(q * (ls - lt), -1)
    elif divergence == "jsd":  # trl GKDTrainer.generalized_jsd_loss
        lm = jnp.logaddexp(lt + math.log(beta), ls + math.log(1 - beta))
        d = beta * jnp.sum(p * (lt - lm), -1) + (1 - beta) * jnp.sum(q * (ls - lm), -1)
    else:
        d = 0.5 * jnp.sum(jnp.abs(p - q), -1)
    return d if where is None else jnp.where(where, d, 0.0)


def _distill_inputs(n=37, d=8, dt=6, v=29, seed=3, dtype=jnp.float32):
    rng = np.random.default_rng(seed)
    h = jnp.asarray(rng.normal(size=(n, d)), dtype)
    w = jnp.asarray(rng.normal(size=(v, d)) * 0.5, dtype)
    ht = jnp.asarray(rng.normal(size=(n, dt)), dtype)
    wt = jnp.asarray(rng.normal(size=(v, dt)) * 0.5, dtype)
    keep = jnp.asarray(rng.random(n) > 0.25)
    return h, w, ht, wt, keep


@pytest.mark.parametrize(
    "opts",
    [
        {"divergence": "kl"},
        {"divergence": "reverse_kl", "temperature": 2.0},
        {"divergence": "jsd", "beta": 0.3, "temperature": 0.7},
        {"divergence": "jsd", "beta": 1.0},
        {"divergence": "tvd", "temperature": 1.5},
    ],
)
def test_linear_distillation_matches_materialized(opts):
    h, w, ht, wt, keep = _distill_inputs()
    h = h.at[3].set(jnp.nan)  # an ignored token may hold garbage
    keep = keep.at[3].set(False)

    def fused(h, w):
        return jnp.sum(lossjax.losses.linear_distillation_loss(h, w, ht, wt, where=keep, block_size=8, **opts))

    def mat(h, w):
        return jnp.sum(_materialized_distill(jnp.where(keep[:, None], h, 0.0), w, ht, wt, where=keep, **opts))

    (fv, fg), (mv, mg) = (jax.jit(jax.value_and_grad(f, argnums=(0, 1)))(h, w) for f in (fused, mat))
    assert_rel(fv, mv, 1e-5, "value")
    assert_rel(fg[0], mg[0], 1e-5, "d hidden")
    assert_rel(fg[1], mg[1], 1e-5, "d weight")
    assert np.all(fg[0][3] == 0)


def test_linear_distillation_bf16_all_ignored_and_teacher_constant():
    h, w, ht, wt, keep = _distill_inputs(dtype=jnp.bfloat16)
    got = lossjax.losses.linear_distillation_loss(h, w, ht, wt, divergence="jsd", beta=0.5, block_size=8)
    assert got.dtype == jnp.float32
    want = _materialized_distill(h, w, ht, wt, divergence="jsd", beta=0.5)
    assert_rel(got, want, 2e-2, "bf16 value")
    none = jnp.zeros_like(keep)
    f = jax.jit(
        jax.value_and_grad(
            lambda h, w, ht, wt: jnp.sum(lossjax.losses.linear_distillation_loss(h, w, ht, wt, where=none)),
            argnums=(0, 1, 2, 3),
        )
    )
    val, grads = f(*_distill_inputs()[:4])
    assert float(val) == 0.0 and all(float(jnp.abs(g).max()) == 0.0 for g in grads)
    # The teacher is a constant: no gradient to its hidden states or head.
    g_t = jax.grad(lambda ht: jnp.sum(lossjax.losses.linear_distillation_loss(*_distill_inputs()[:2], ht, wt)))(
        _distill_inputs()[2]
    )
    assert float(jnp.abs(g_t).max()) == 0.0


def _materialized_token_log_probs(h, w, y):
    logits = jnp.matmul(h, w.T, precision=jax.lax.Precision.HIGHEST)
    logp = jax.nn.log_softmax(logits, -1)
    valid = y != -100
    tok = jnp.take_along_axis(logp, jnp.where(valid, y, 0)[..., None], -1)[..., 0]
    return jnp.where(valid, tok, 0.0), valid


def _pref_inputs(b=3, t=5, d=6, v=23, seed=4):
    rng = np.random.default_rng(seed)
    h, rh = (jnp.asarray(rng.normal(size=(b, 2, t, d)), jnp.float32) for _ in range(2))
    w, rw = (jnp.asarray(rng.normal(size=(v, d)) * 0.5, jnp.float32) for _ in range(2))
    y = rng.integers(0, v, size=(b, 2, t))
    y[0, 0, :2] = -100  # prompt tokens of a chosen response
    y[1, 1, 3:] = -100  # padding of a rejected one
    y[2, 1, :] = -100  # an all-ignored response
    return h, w, jnp.asarray(y), rh, rw


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("dpo", {"beta": 0.3}),
        ("dpo", {"variant": "ipo", "beta": 0.5, "nll_weight": 0.4}),
        ("simpo", {}),
        ("orpo", {"beta": 0.2}),
        ("cpo", {"label_smoothing": 0.1}),
        ("kto", {"kl": 0.1}),
    ],
)
def test_linear_preference_heads_match_materialized(name, kwargs):
    h, w, y, rh, rw = _pref_inputs()
    L = lossjax.losses
    where = jnp.array([True, True, False])
    desirable = jnp.array([True, False, True])
    scale = jnp.array([1.0, 0.7, 1.3])

    def fused(h, w):
        if name == "dpo":
            out = L.linear_dpo_loss(h, w, y, rh, rw, block_size=8, where=where, **kwargs)
        elif name == "kto":
            out = L.linear_kto_loss(h[:, 0], w, y[:, 0], desirable, rh[:, 0], rw, block_size=8, **kwargs)
        else:
            out = L.linear_preference_loss(h, w, y, loss=name, block_size=8, where=where, **kwargs)
        return jnp.sum(out * scale)

    def mat(h, w):
        lp, m = _materialized_token_log_probs(h, w, y)
        ref, _ = _materialized_token_log_probs(rh, rw, y)
        ref = jax.lax.stop_gradient(ref)
        pc, pr, cm = lp[:, 0], lp[:, 1], m[:, 0]
        masks = {"chosen_where": cm, "rejected_where": m[:, 1], "where": where}
        if name == "dpo":
            nll = kwargs.get("nll_weight", 0.0)
            kw = {k: v for k, v in kwargs.items() if k != "nll_weight"}
            out = L.dpo_loss(pc, pr, ref[:, 0], ref[:, 1], **kw, **masks)
            out = out + nll * jnp.where(where, -jnp.sum(pc, 1) / jnp.maximum(jnp.sum(cm, 1), 1), 0.0)
        elif name == "kto":
            out = L.kto_loss(pc, ref[:, 0], desirable, kwargs["kl"], token_where=cm)
        elif name == "simpo":
            out = L.simpo_loss(pc, pr, **masks)
        elif name == "orpo":
            out = L.orpo_loss(pc, pr, **kwargs, **masks)
        else:
            out = L.cpo_loss(pc, pr, **kwargs, **masks)
        return jnp.sum(out * scale)

    (fv, fg), (mv, mg) = (jax.jit(jax.value_and_grad(f, argnums=(0, 1)))(h, w) for f in (fused, mat))
    assert_rel(fv, mv, 1e-5, "value")
    assert_rel(fg[0], mg[0], 1e-5, "d hidden")
    assert_rel(fg[1], mg[1], 1e-5, "d weight")
    if name != "kto":
        assert float(jnp.abs(fg[0][2]).max()) == 0.0  # the masked pair


def test_fused_heads_temporaries_flat_in_vocab():
    """Compiled temporaries of value_and_grad at V and 4V (compile only): flat for the fused distillation and
    preference heads (the [V, D] parameter gradients are outputs), growing with N x V for the materialized ones."""
    n, d, b = 1024, 64, 4
    t = n // (2 * b)
    h = jax.ShapeDtypeStruct((n, d), jnp.float32)
    hp = jax.ShapeDtypeStruct((b, 2, t, d), jnp.float32)
    y = jax.ShapeDtypeStruct((b, 2, t), jnp.int32)
    L = lossjax.losses

    def temps(v):
        w = jax.ShapeDtypeStruct((v, d), jnp.float32)
        distill = jax.value_and_grad(
            lambda h, w, wt: jnp.mean(L.linear_distillation_loss(h, w, h, wt, divergence="jsd", block_size=512)),
            argnums=(0, 1),
        )
        dpo = jax.value_and_grad(
            lambda h, w, y: jnp.mean(L.linear_dpo_loss(h, w, y, h, w, block_size=512)), argnums=(0, 1)
        )

        def mat_distill(h, w, wt):
            return jnp.mean(_materialized_distill(h, w, h, wt, divergence="jsd"))

        mat = jax.value_and_grad(mat_distill, argnums=(0, 1))
        return (
            _temp_bytes(distill, h, w, w),
            _temp_bytes(dpo, hp, w, y),
            _temp_bytes(mat, h, w, w),
        )

    small, large = temps(4096), temps(16384)
    grow = 16384 - 4096
    assert large[2] - small[2] >= n * grow * 4  # materialized: at least one more float32 [N, V] logits array
    for k, what in enumerate(("distillation", "dpo")):
        # fused: the growth is far below one [N, V] float32 array (only [V]-sized buffers may grow)
        assert large[k] - small[k] <= 0.05 * n * grow * 4, (what, small[k], large[k])


def test_fused_heads_with_token_sharded_inputs():
    """Tokens (and preference pairs) sharded over 8 devices under plain jit: equal to one device."""
    if jax.device_count() < 8:
        pytest.skip("needs 8 (simulated) devices: XLA_FLAGS=--xla_force_host_platform_device_count=8")
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = jax.make_mesh((8,), ("x",), axis_types=(jax.sharding.AxisType.Auto,))
    tok, rep = NamedSharding(mesh, P("x")), NamedSharding(mesh, P())
    h, w, ht, wt, keep = _distill_inputs(n=40)

    def distill(h, w, ht, keep):
        return jnp.sum(
            lossjax.losses.linear_distillation_loss(h, w, ht, wt, where=keep, divergence="jsd", block_size=8)
        )

    f = jax.jit(jax.value_and_grad(distill, argnums=(0, 1)))
    want = f(h, w, ht, keep)
    got = f(*(jax.device_put(x, s) for x, s in ((h, tok), (w, rep), (ht, tok), (keep, tok))))
    for g, r in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert_rel(g, r, 2e-6, "token-sharded distillation")

    ph, pw, py, rh, rw = _pref_inputs(b=8)

    def dpo(h, w, y, rh):
        return jnp.sum(lossjax.losses.linear_dpo_loss(h, w, y, rh, rw, block_size=8))

    f = jax.jit(jax.value_and_grad(dpo, argnums=(0, 1)))
    args = (ph, pw, py, rh)
    want = f(*args)
    got = f(*(jax.device_put(x, rep if k == 1 else tok) for k, x in enumerate(args)))
    for g, r in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert_rel(g, r, 2e-6, "pair-sharded DPO head")


def test_linear_preference_heads_bf16():
    """bf16 hidden states and heads (bf16 matmul operands, float32 accumulation): float32 losses within bf16
    tolerance of the materialized float32 losses of the same (bf16-rounded) inputs."""
    h, w, y, rh, rw = _pref_inputs()
    hb, wb, rhb, rwb = (x.astype(jnp.bfloat16) for x in (h, w, rh, rw))
    got = lossjax.losses.linear_dpo_loss(hb, wb, y, rhb, rwb, beta=0.5, block_size=8)
    assert got.dtype == jnp.float32
    lp, m = _materialized_token_log_probs(hb.astype(jnp.float32), wb.astype(jnp.float32), y)
    ref, _ = _materialized_token_log_probs(rhb.astype(jnp.float32), rwb.astype(jnp.float32), y)
    want = lossjax.losses.dpo_loss(
        lp[:, 0], lp[:, 1], ref[:, 0], ref[:, 1], beta=0.5, chosen_where=m[:, 0], rejected_where=m[:, 1]
    )
    assert_rel(got, want, 2e-2, "bf16 DPO head")
