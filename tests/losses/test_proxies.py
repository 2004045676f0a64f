"""Proxy and prototype losses (lossjax/losses/_proxies.py).

Golden values: tests/reference/margins.json (pytorch-metric-learning 2.9.0 and
torch ports of the official code: proxy-NCA, proxy-anchor, SoftTriple and its
regularizer, prototypical, angular prototypical), compared in float64 (runner:
golden_margins.py), and tests/reference/classification.json for the harmonic
loss (written when it lived with the classification losses: its inputs are
stored as ``(features, prototypes, labels)``). The label-embedding ranking loss
has no implementation to compare with: its closed forms are derived here.
"""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from golden_margins import REF, case_names, kwargs_of, run_case, run_case_float32
from jax.sharding import PartitionSpec as P

import lossjax
from lossjax import losses as L
from lossjax.losses import _proxies
from lossjax.testing import assert_close

PROXY_CASES = case_names(set(_proxies.__all__))
assert PROXY_CASES, "no golden case for the proxy losses"

F64 = {"rtol": 1e-9, "atol": 1e-10}


@pytest.mark.parametrize("name", PROXY_CASES)
def test_golden_values_and_gradients(name):
    case = REF[name]
    with jax.enable_x64(True):
        out, grads = run_case(case)
        assert out.dtype == jnp.float64
        assert_close(out, np.asarray(case["value"]), err=f"{name}: value ({case['note']})", **F64)
        for k, g in case["grads"].items():
            # Scaled logits (proxy-anchor's 32): gradients are compared relative to their scale.
            assert_close(
                grads[k], np.asarray(g), err=f"{name}: d/d{k}", rtol=1e-8, atol=1e-9 * max(1.0, np.abs(g).max())
            )


def test_golden_float32_close():
    """float32 inputs give float32 results within float32 tolerance of the float64 reference."""
    case = REF["proxy_anchor_m0.1_a32"]
    value = run_case_float32(case)
    assert value.dtype == jnp.float32
    assert_close(value, np.asarray(case["value"]), err="proxy_anchor_m0.1_a32", rtol=2e-4, atol=2e-4)


# ------------------------- harmonic loss (classification.json) -------------------------

_CLASSIFICATION = json.loads((pathlib.Path(__file__).parents[1] / "reference" / "classification.json").read_text())[
    "cases"
]
HARMONIC = [
    pytest.param(c, id=f"harmonic_loss-{i}") for i, c in enumerate(_CLASSIFICATION) if c["name"] == "harmonic_loss"
]
assert HARMONIC, "no golden case for harmonic_loss"


def _harmonic_case(case, dtype):
    """Value and gradients (embeddings, proxies) of the summed loss; the JSON stores (features, prototypes, labels)."""
    features, prototypes, labels = case["args"]
    assert case["kinds"] == ["float", "float", "int"] and case["diff"] == [0, 1]
    x, w = jnp.asarray(features, dtype), jnp.asarray(prototypes, dtype)
    y = jnp.asarray(labels, jnp.int32)
    kw = case["kwargs"]
    value = L.harmonic_loss(x, y, w, **kw)
    grads = jax.grad(lambda x, w: jnp.sum(L.harmonic_loss(x, y, w, **kw)), argnums=(0, 1))(x, w)
    return value, grads


@pytest.mark.parametrize("case", HARMONIC)
def test_harmonic_golden_float64(case):
    with jax.enable_x64(True):
        value, grads = _harmonic_case(case, jnp.float64)
        assert value.dtype == jnp.float64
        assert_close(value, np.asarray(case["value"]), dtype=jnp.float64, rtol=1e-9, atol=1e-12, err=case["reference"])
        for g, e in zip(grads, case["grads"], strict=True):
            assert_close(
                g, np.asarray(e), dtype=jnp.float64, rtol=1e-9, atol=1e-12, err=case["reference"] + " (gradient)"
            )


@pytest.mark.parametrize("case", HARMONIC)
def test_harmonic_golden_float32(case):
    value, grads = _harmonic_case(case, jnp.float32)
    assert value.dtype == jnp.float32
    assert_close(value, np.asarray(case["value"]), rtol=2e-5, atol=5e-6, err=case["reference"])
    for g, e in zip(grads, case["grads"], strict=True):
        assert_close(g, np.asarray(e), rtol=1e-4, atol=2e-6, err=case["reference"] + " (gradient)")


def test_harmonic_loss_hand_computed_and_shift_invariant():
    x, w = jnp.array([[1.0, 0.0]]), jnp.array([[2.0, 0.0], [-1.0, 0.0]])
    # d = (1, 2): p_0 = 1 / (1 + 2^-n).
    for n in (1.0, 3.0):
        assert_close(L.harmonic_loss(x, jnp.array([0]), w, exponent=n), jnp.array([np.log1p(2.0**-n)]))
    assert_close(L.harmonic_loss(x, jnp.array([0]), w), jnp.array([np.log1p(2.0**-2)]))  # exponent None: n = D = 2
    # Distances are translation invariant.
    assert_close(L.harmonic_loss(x + 5.0, jnp.array([1]), w + 5.0), L.harmonic_loss(x, jnp.array([1]), w), rtol=1e-5)
    # x on a prototype: finite loss and gradients (distance floored at epsilon).
    v, g = jax.value_and_grad(lambda x, w: jnp.sum(L.harmonic_loss(x, jnp.array([0]), w)), argnums=(0, 1))(w[:1], w)
    assert np.isfinite(v) and all(np.all(np.isfinite(a)) for a in g)


def test_harmonic_loss_keeps_leading_batch_axes():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 4)).astype(np.float32)
    w = rng.normal(size=(5, 4)).astype(np.float32)
    y = rng.integers(0, 5, size=(2, 3)).astype(np.int32)
    out = L.harmonic_loss(x, y, w)
    assert out.shape == (2, 3)
    assert_close(out.reshape(-1), L.harmonic_loss(x.reshape(6, 4), y.reshape(6), w), rtol=1e-6)


# ------------------------------ label-embedding ranking loss ------------------------------


def test_label_embedding_ranking_loss_closed_form():
    # No implementation exists: hand-derived. F = x W phi^T = (1, 0.5, 0.8, -2) for x = e1, W = I.
    x, w = jnp.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]), jnp.eye(2)
    phi = jnp.array([[1.0, 0.0], [0.5, 0.0], [0.8, 0.0], [-2.0, 0.0]])
    # y=0: violators 1 (0.5) and 2 (0.8): r = 2, L(2)/2 = 0.75 -> 0.75 * 1.3.
    # y=1: violators 0 (1.5), 2 (1.3): 0.75 * 2.8.   y=3: violators 0 (4), 1 (3.5), 2 (3.8): (11/6)/3 * 11.3.
    v = L.label_embedding_ranking_loss(x, jnp.array([0, 1, 3]), phi, w)
    assert_close(v, jnp.array([0.75 * 1.3, 0.75 * 2.8, 11 / 18 * 11.3]), rtol=1e-6)
    # margin 0.3: only class 2 violates for y = 0 (r = 1, L(1) = 1): 0.3 + 0.8 - 1 = 0.1.
    assert_close(L.label_embedding_ranking_loss(x[:1], jnp.array([0]), phi, w, margin=0.3), jnp.array([0.1]), atol=1e-6)
    # No violator: 0 loss, 0 gradient.
    g = jax.grad(lambda x: jnp.sum(L.label_embedding_ranking_loss(x, jnp.array([0]), phi, w, margin=0.0)))(x[:1] * 5)
    assert np.all(np.asarray(g) == 0)
    # The gradient flows through the hinges only: d/dx = weight * sum_viol (phi_c - phi_y) for W = I.
    g = jax.grad(lambda x: jnp.sum(L.label_embedding_ranking_loss(x, jnp.array([0]), phi, w)))(x[:1])
    assert_close(g, 0.75 * ((phi[1] - phi[0]) + (phi[2] - phi[0]))[None], rtol=1e-6)


# ------------------------------------ hand-derived cases ------------------------------------


def test_proxy_nca_is_ce_of_negative_squared_distances():
    x = jnp.array([[3.0, 4.0], [0.0, -2.0]])
    p = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    y = jnp.array([1, 2])
    xh = np.asarray(x) / np.linalg.norm(x, axis=1, keepdims=True)
    d2 = ((xh[:, None, :] - np.asarray(p)[None]) ** 2).sum(-1)
    expect = lossjax.losses.softmax_cross_entropy(jnp.asarray(-2.0 * d2), y)
    assert_close(lossjax.losses.proxy_nca_loss(x, y, p, scale=2.0), expect, rtol=1e-5, atol=1e-6)


def test_prototypical_hand_computed_and_cosine():
    support = jnp.array([[[0.0, 0.0], [2.0, 0.0]], [[0.0, 3.0], [0.0, 1.0]]])  # prototypes (1, 0), (0, 2)
    queries = jnp.array([[[1.0, 0.0]], [[0.0, 2.0]]])
    # query (1, 0): d^2 = (0, 5); query (0, 2): d^2 = (5, 0): loss = log(1 + e^-5) each.
    assert_close(lossjax.losses.prototypical_loss(support, queries), np.log1p(np.exp(-5.0)))
    # cosine: cos = (1, 0) and (0, 1): log(1 + e^-1).
    assert_close(lossjax.losses.prototypical_loss(support, queries, distance="cosine"), np.log1p(np.exp(-1.0)))


def test_angular_prototypical_learnable_scale_and_bias():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 3, 4)).astype(np.float32)
    f = lambda w, b: lossjax.losses.angular_prototypical_loss(x, scale=w, bias=b)  # noqa: E731
    gw, gb = jax.grad(f, argnums=(0, 1))(jnp.float32(10.0), jnp.float32(-5.0))
    assert np.isfinite(float(gw)) and float(gw) != 0.0
    assert abs(float(gb)) < 1e-6  # a shared bias cancels in the softmax
    # The reference clamps a learned w at 1e-6 (traced values are not checked; concrete ones must be > 0).
    assert_close(jax.jit(f)(jnp.float32(-3.0), 0.0), f(jnp.float32(1e-6), 0.0))
    with pytest.raises(ValueError, match="angular_prototypical_loss: `scale` must be > 0"):
        f(-3.0, 0.0)


def test_proxy_anchor_where_equals_slicing_and_missing_classes():
    case = REF["proxy_anchor_missing_classes"]
    x, y, p = (np.asarray(v) for v in case["inputs"].values())
    mask = np.array([True, False, True, True, False, True, True, True])
    kw = kwargs_of(case)
    a = lossjax.losses.proxy_anchor_loss(x, y, p, where=mask, **kw)
    b = lossjax.losses.proxy_anchor_loss(x[mask], y[mask], p, **kw)
    assert_close(a, b)


# ------------------------------------------ errors ------------------------------------------

RNG = np.random.default_rng(0)
Z = jnp.asarray(RNG.normal(size=(6, 4)) * 3, jnp.float32)
Y = jnp.asarray(RNG.integers(0, 4, size=(6,)), jnp.int32)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: lossjax.losses.soft_triple_loss(np.zeros((4, 2)), np.zeros(4, int), np.zeros((3, 2))),
            "soft_triple_loss: argument `proxies` must have rank 3",
        ),
        (
            lambda: lossjax.losses.soft_triple_loss(
                np.zeros((4, 2)), np.zeros(4, int), np.zeros((3, 2, 2)), center_temperature=0.0
            ),
            "soft_triple_loss: `center_temperature` must be > 0",
        ),
        (
            lambda: lossjax.losses.soft_triple_regularizer(np.zeros((3, 2, 2)), regularizer_weight=-1.0),
            "soft_triple_regularizer: `regularizer_weight` must be >= 0",
        ),
        (
            lambda: lossjax.losses.proxy_anchor_loss(np.zeros((4, 2)), np.zeros(4, int), np.zeros((3, 2)), scale=-1.0),
            "proxy_anchor_loss: `scale` must be > 0",
        ),
        (
            lambda: lossjax.losses.prototypical_loss(np.zeros((3, 2, 4)), np.zeros((2, 2, 4))),
            r"prototypical_loss: `queries` must have shape \(K, Q, D\)=\(3, \*, 4\)",
        ),
        (
            lambda: lossjax.losses.prototypical_loss(np.zeros((3, 2, 4)), np.zeros((3, 2, 4)), distance="dot"),
            "prototypical_loss: `distance` must be one of",
        ),
        (
            lambda: lossjax.losses.angular_prototypical_loss(np.zeros((3, 1, 4))),
            r"angular_prototypical_loss: `embeddings` must have shape \(S, M, D\) with M >= 2",
        ),
        (
            lambda: L.harmonic_loss(Z, Y, Z[:, :3]),
            r"harmonic_loss: `embeddings` \[..., D\] and `proxies` \[C, D\] must share D",
        ),
        (lambda: L.harmonic_loss(Z, Y, Z[0]), r"harmonic_loss: argument `proxies` must have rank 2"),
        (
            lambda: L.label_embedding_ranking_loss(Z, Y, Z, Z),
            r"label_embedding_ranking_loss: need embeddings \[..., D\], proxies \[C, E\] and projection \[D, E\]",
        ),
    ],
)
def test_bad_inputs(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# ------------------------------------------ devices ------------------------------------------


def _mesh():
    return jax.make_mesh((8,), ("batch",), axis_types=(jax.sharding.AxisType.Auto,))


@pytest.mark.parametrize("masked", [False, True])
def test_proxy_anchor_across_devices_equals_single_device(masked):
    if jax.device_count() < 8:
        pytest.fail("needs 8 (simulated) devices: XLA_FLAGS=--xla_force_host_platform_device_count=8")
    rng = np.random.default_rng(0)
    proxies = rng.normal(size=(3, 4)).astype(np.float32)
    labels = (rng.permutation(16) % 3).astype(np.int32)
    emb = (proxies[labels] + 0.8 * rng.normal(size=(16, 4))).astype(np.float32)
    where = np.arange(16) % 5 != 2 if masked else np.ones(16, bool)

    def single(x):
        return L.proxy_anchor_loss(x, labels, proxies, where=where)

    def sharded(x):
        def local(x, y, w):
            return L.proxy_anchor_loss(x, y, proxies, where=w, axis_name="batch")

        return jax.shard_map(local, mesh=_mesh(), in_specs=(P("batch"), P("batch"), P("batch")), out_specs=P())(
            x, labels, where
        )

    v1, g1 = jax.jit(jax.value_and_grad(single))(emb)  # jitted: one compile, not every eager op
    v8, g8 = jax.jit(jax.value_and_grad(sharded))(emb)
    assert_close(v8, v1, err="proxy_anchor_loss: sharded value", rtol=1e-5, atol=1e-6)
    assert_close(g8, g1, err="proxy_anchor_loss: sharded gradient", rtol=1e-5, atol=1e-6)
    assert float(jnp.max(jnp.abs(g1))) > 0


def test_proxy_anchor_out_of_range_label_is_nan_unless_masked():
    """Issue 19 item 6: an out-of-range label in an unmasked row gives NaN (as an out-of-bounds gather), not a
    loss that silently drops the row; masked rows may hold any label (equal to the loss without them)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4)).astype(np.float32)
    w = rng.normal(size=(3, 4)).astype(np.float32)
    bad = np.array([0, 5, 1, 1, 2, -1])
    loss = jax.jit(lossjax.losses.proxy_anchor_loss)  # one compile per call, not every eager op
    assert np.isnan(float(loss(x, bad, w)))
    keep = np.array([1, 0, 1, 1, 1, 0], bool)
    masked = loss(x, bad, w, where=keep)
    assert_close(masked, loss(x[keep], bad[keep], w))
