"""Combiners of per-loss gradients: parity with conflictfree / torchjd, closed forms, properties, errors."""

from __future__ import annotations

import itertools
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from lossjax.testing import assert_close
from lossjax.transforms import _multitask as MT

REF = json.loads((pathlib.Path(__file__).parents[1] / "reference" / "multitask.json").read_text())["cases"]

# Largest relative error allowed vs the float64 references, float32 compute here.
TOL = {
    "config": 2e-5,
    "pcgrad": 2e-5,
    "imtl_g": 2e-5,
    "upgrad": 2e-5,
    "dualproj": 2e-5,
    "mgda": 2e-5,
    "cagrad": 1e-4,  # the reference solves with CLARABEL to ~1e-8 duality gap; exact here
    "aligned_mtl": 2e-5,
    "nash_mtl": 1e-4,  # the reference stops its convex-program sequence at ||G a - 1/a|| < 1e-3
    "m_config": 2e-5,
    "gradvac": 2e-5,
}


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


_JIT: dict = {}


def _run(tx, g, **extra):
    """One jitted update from a fresh state; the jitted function is cached per transform object."""
    key = (id(tx), tuple(sorted(extra)))
    if key not in _JIT:
        _JIT[key] = (tx, jax.jit(lambda g, extra: tx.update(g, tx.init(None), **extra)[0]))
    return np.asarray(_JIT[key][1](jnp.asarray(g, jnp.float32), extra))


def _run_all(pairs):
    """One update from a fresh state for each (transform, gradients) pair, all in ONE jitted program.

    One compile instead of one per pair; equal gradient arrays are passed once, so XLA computes what
    transforms of the same gradients share (Gram matrix, pseudo-inverse) once.
    """
    arrays = [np.asarray(g, np.float32) for _, g in pairs]
    index: dict = {}
    slots = [index.setdefault((a.shape, a.tobytes()), len(index)) for a in arrays]
    unique = [None] * len(index)
    for a, i in zip(arrays, slots, strict=True):
        unique[i] = a
    txs = [tx for tx, _ in pairs]
    fn = jax.jit(lambda gs: [tx.update(gs[i], tx.init(None))[0] for tx, i in zip(txs, slots, strict=True)])
    return [np.asarray(o) for o in fn([jnp.asarray(a) for a in unique])]


def close(actual, expected, **tol):
    assert_close(np.asarray(actual), np.asarray(expected, np.float64), **tol)


def _cases(method, ref=None):
    return [c for c in REF if c["method"] == method and c.get("ref") == ref]


def _hyper(c):
    """The golden case's hyperparameters under lossjax's names (the JSON keeps the references' names)."""
    hyper = dict(c.get("hyper", {}))
    if "pref_vector" in hyper:  # torchjd's pref_vector is lossjax's weights
        hyper["weights"] = hyper.pop("pref_vector")
    if "beta" in hyper and c["method"] == "gradvac":  # torchjd: phi <- (1 - beta) phi + beta cos
        hyper["decay"] = 1.0 - hyper.pop("beta")
    return hyper


@pytest.mark.parametrize(
    "method", ["config", "pcgrad", "imtl_g", "upgrad", "dualproj", "mgda", "cagrad", "aligned_mtl", "nash_mtl"]
)
def test_parity_single_step(method):
    cases = _cases(method)
    assert cases, method
    outs = _run_all([(lossjax.get(method, **_hyper(c)), c["grads"]) for c in cases])
    worst = max(_rel(out, c["expected"]) for out, c in zip(outs, cases, strict=True))
    assert worst < TOL[method], f"{method}: largest relative error {worst:.2e}"


def test_imtl_g_parity_torchjd():
    tx = lossjax.transforms.imtl_g()
    worst = max(_rel(_run(tx, c["grads"]), c["expected"]) for c in _cases("imtl_g", "torchjd"))
    assert worst < 2e-5


def test_imtl_g_more_losses_than_params():
    # m > P: equal projections u_i.g = k for 5 gradients in R^3 only hold for g = 0. conflictfree's form
    # inverts the singular (m-1)x(m-1) matrix D U^T: 0 in float64 (~5e11 garbage in float32). The G^+ form
    # (torchjd, ours) returns the least-squares combination, finite; ours matches torchjd (parity above).
    (c,) = _cases("imtl_g_conflictfree_m_gt_p")
    g = np.asarray(c["grads"])
    assert np.linalg.norm(c["expected"]) < 1e-10
    (ref,) = [r for r in _cases("imtl_g", "torchjd") if np.shape(r["grads"]) == g.shape]
    ours = _run(lossjax.transforms.imtl_g(), g)
    assert np.all(np.isfinite(ours)) and _rel(ours, ref["expected"]) < 2e-5


def test_config_two_parallel_gradients_reference_is_nan():
    # Reference: transfer_coef_double divides 0 by 0 when g1 || g2 and returns NaN.
    # Closed form: u1 = u2 = u, so every d with u.d > 0 has equal angles; d = u and the projection
    # length is |g1| + |g2|: the update is g1 + g2.
    (c,) = _cases("config_parallel_reference")
    g = np.asarray(c["grads"], np.float32)
    assert np.all(np.asarray(c["expected"]) == -999.0)  # NaN in the reference
    close(_run(lossjax.transforms.config(), g), g[0] + g[1])
    close(_run(lossjax.transforms.config(closed_form_two=False), g), g[0] + g[1])


def test_m_config_parity():
    worst = 0.0
    for c in _cases("m_config"):
        tx = lossjax.transforms.m_config(**_hyper(c))
        step = jax.jit(lambda g, s, sel, tx=tx: tx.update(g, s, selected=sel))
        state = tx.init(jnp.zeros(len(c["grads_seq"][0][0])))
        for g, sel, exp in zip(c["grads_seq"], c["selected"], c["expected_seq"], strict=True):
            sel = np.asarray(sel)
            g = np.where(sel[:, None], np.asarray(g, np.float32), 0.0).astype(np.float32)  # unselected: not computed
            out, state = step(jnp.asarray(g), state, jnp.asarray(sel))
            worst = max(worst, _rel(out, exp) if np.any(exp) else float(np.max(np.abs(out))))
    assert worst < TOL["m_config"], worst


def test_m_config_bf16_momenta_close_to_f32():
    rng = np.random.default_rng(3)
    seq = [rng.normal(size=(3, 64)).astype(np.float32) for _ in range(6)]
    outs = {}
    for dt in (None, "bfloat16"):
        tx = lossjax.transforms.m_config(num_losses=3, momentum_dtype=dt)
        step = jax.jit(lambda g, s, sel, tx=tx: tx.update(g, s, selected=sel))  # one compile, not ~100 eager ops
        state = tx.init(jnp.zeros(64))
        assert jax.tree.leaves(state.inner.momenta)[0].dtype == (jnp.bfloat16 if dt else jnp.float32)
        for t, g in enumerate(seq):
            sel = lossjax.transforms.m_config_schedule(t, num_losses=3)
            out, state = step(jnp.asarray(g), state, sel)
        assert jax.tree.leaves(state.inner.momenta)[0].dtype == (jnp.bfloat16 if dt else jnp.float32)
        outs[dt] = np.asarray(out)
    assert outs[None].dtype == np.float32
    # bf16 momenta round each stored moment (2^-9), six steps: measured 3.2e-3 of the largest entry
    scale = float(np.max(np.abs(outs[None])))
    np.testing.assert_allclose(outs["bfloat16"], outs[None], rtol=0, atol=5e-3 * scale)
    assert scale > 0.5  # a real (Adam-normalized) update, not zeros


def test_gradvac_parity_two_losses_three_steps():
    (c,) = _cases("gradvac")
    tx = lossjax.transforms.gradvac(**_hyper(c))
    state = tx.init(None)
    worst = 0.0
    for g, exp in zip(c["grads_seq"], c["expected_seq"], strict=True):
        out, state = tx.update(jnp.asarray(g, jnp.float32), state)
        worst = max(worst, _rel(out, exp))
    assert worst < TOL["gradvac"]


def test_graddrop_parity_given_uniforms():
    for c in _cases("graddrop"):
        leak = None if "leak" not in c else jnp.asarray(c["leak"], jnp.float32)
        out, _ = MT._graddrop_combine(
            jnp.asarray(c["grads"], jnp.float32), jnp.asarray(c["uniforms"], jnp.float32), leak
        )
        assert _rel(out, c["expected"]) < 2e-6


# ------------------------------- closed forms -------------------------------


def test_config_two_orthogonal_hand():
    # g1 = (3, 0), g2 = (0, 1): d ∝ u1 + u2 = (1, 1); projection length (3 + 1)/sqrt(2) -> (2, 2).
    out = _run(lossjax.transforms.config(), [[3.0, 0.0], [0.0, 1.0]])
    close(out, [2.0, 2.0])
    # min length: t = 1, sum u_i.d^ = 2/sqrt(2) -> (1, 1); max: t = 3 -> (3, 3)
    close(_run(lossjax.transforms.config(length_model="min"), [[3.0, 0.0], [0.0, 1.0]]), [1.0, 1.0])
    close(_run(lossjax.transforms.config(length_model="max"), [[3.0, 0.0], [0.0, 1.0]]), [3.0, 3.0])
    close(_run(lossjax.transforms.config(length_model=0), [[3.0, 0.0], [0.0, 1.0]]), [3.0, 3.0])


def test_config_guards_zero_antiparallel_and_all_zero():
    # a zero gradient is ignored: ConFIG of the rest
    g = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 0.0], [0.0, 1.0, 1.0]], np.float32)
    out = _run(lossjax.transforms.config(), g)
    close(out, _run(lossjax.transforms.config(), g[1:]), rtol=1e-5, atol=1e-6)
    # anti-parallel gradients cancel exactly: no conflict-free direction, zero update
    close(_run(lossjax.transforms.config(), [[1.0, 2.0], [-2.0, -4.0]]), [0.0, 0.0])
    close(_run(lossjax.transforms.config(), np.zeros((3, 4), np.float32)), np.zeros(4))
    # linearly dependent triple (g3 = g1 + 2 g2): u_i.d = 1 for all i is inconsistent, so the answer is the
    # minimum-norm least-squares direction pinv(U) 1 with the projection length (float64 by hand).
    g = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 2.0, 0.0]], np.float32)
    U = g / np.linalg.norm(g, axis=1, keepdims=True)
    d = np.linalg.pinv(U.astype(np.float64)) @ np.ones(3)
    d /= np.linalg.norm(d)
    close(_run(lossjax.transforms.config(), g), (g @ d).sum() * d, rtol=1e-5, atol=1e-6)


def test_pcgrad_hand():
    # g1 = (1, 0), g2 = (-1, 1): g1.g2 = -1; g1' = g1 + g2/2 = (0.5, 0.5); g2' = g2 + g1 = (0, 1).
    close(_run(lossjax.transforms.pcgrad(), [[1.0, 0.0], [-1.0, 1.0]]), [0.5, 1.5])


def test_nash_orthogonal_closed_form():
    # orthogonal gradients: alpha_i = 1/||g_i||, update = sum u_i; max_norm caps it to norm 1
    g = [[2.0, 0.0], [0.0, 0.5]]
    close(_run(lossjax.transforms.nash_mtl(num_losses=2, max_norm=0.0), g), [1.0, 1.0])
    capped = _run(lossjax.transforms.nash_mtl(num_losses=2), g)
    close(capped, np.array([1.0, 1.0]) / np.sqrt(2.0))


# -------------------------------- properties --------------------------------


def _random(m, p, seed):
    return np.random.default_rng(seed).normal(size=(m, p)).astype(np.float32)


@pytest.mark.parametrize("m,p", [(2, 7), (3, 9), (5, 20), (8, 40)])
def test_config_equal_positive_angles(m, p):
    tx = lossjax.transforms.config()
    for seed in range(3):
        g = _random(m, p, seed)
        out = _run(tx, g)
        cos = (g @ out) / np.linalg.norm(g, axis=1) / np.linalg.norm(out)
        assert np.all(cos > 0)
        np.testing.assert_allclose(cos, np.full(m, cos.mean()), rtol=2e-4)


def test_config_weighted_cosines_follow_weights():
    g = _random(3, 10, 5)
    w = (1.0, 2.0, 0.5)
    out = _run(lossjax.transforms.config(weights=w), g)
    cos = (g @ out) / np.linalg.norm(g, axis=1)
    np.testing.assert_allclose(cos / cos[0], np.array(w) / w[0], rtol=1e-4)


def test_config_more_losses_than_params_finite():
    out = _run(lossjax.transforms.config(), _random(6, 3, 0))
    assert np.all(np.isfinite(out))


def test_pcgrad_leaves_no_conflict():
    coeffs_fn = jax.jit(lambda g: MT._pcgrad_coeffs(lossjax.transforms.gram_matrix(g), None))
    for seed in range(10):
        g = _random(2, 5, seed)
        coeffs = np.asarray(coeffs_fn(jnp.asarray(g)))
        proj = coeffs @ g
        assert proj[0] @ g[1] >= -1e-5 and proj[1] @ g[0] >= -1e-5
    # m > 2: each projected gradient no longer conflicts with the LAST gradient it was projected on
    for seed in range(5):
        g = _random(4, 6, seed)
        proj = np.asarray(coeffs_fn(jnp.asarray(g))) @ g
        for i in range(4):
            last = 3 if i != 3 else 2
            assert proj[i] @ g[last] >= -1e-5


def test_pcgrad_shuffle_key():
    g = jnp.asarray(_random(3, 5, 1))
    tx = lossjax.transforms.pcgrad(shuffle=True)
    a = _run(tx, g, key=jax.random.PRNGKey(0))
    b = _run(tx, g, key=jax.random.PRNGKey(0))
    np.testing.assert_array_equal(a, b)
    # the answer is PCGrad in SOME order: it matches one of the orders per loss
    G = np.asarray(lossjax.transforms.gram_matrix(g), np.float64)
    outs = []
    for perms in itertools.product(itertools.permutations(range(3)), repeat=3):
        total = np.zeros(3)
        for i in range(3):
            c = np.eye(3)[i]
            for j in perms[i]:
                inner = G[j] @ c
                if j != i and inner < 0:
                    c[j] -= inner / G[j, j]
            total += c
        outs.append(total @ np.asarray(g, np.float64))
    assert min(_rel(a, o) for o in outs) < 1e-5


def _kkt_min_norm(G, w, tol):
    # w on the simplex minimizes w^T G w iff (G w)_i >= w^T G w for all i (equality where w_i > 0)
    Gw = G @ w
    val = w @ Gw
    return abs(w.sum() - 1) < 1e-5 and np.all(w >= -1e-6) and np.all(Gw >= val - tol)


@pytest.mark.parametrize("m,p", [(2, 5), (3, 4), (4, 10), (6, 3)])
def test_mgda_exact_is_min_norm_point(m, p):
    exact = lossjax.transforms.mgda(solver="exact")
    fwolfe = lossjax.transforms.mgda(tolerance=1e-7, max_iterations=5000)
    solve = jax.jit(MT._mgda_exact)
    for seed in range(3):
        g = _random(m, p, seed)
        G = g.astype(np.float64) @ g.T.astype(np.float64)
        w = np.asarray(solve(jnp.asarray(G, jnp.float32)), np.float64)
        assert _kkt_min_norm(G, w, 1e-4 * np.trace(G))
        out = _run(exact, g)
        close(out, w @ g, rtol=1e-4, atol=1e-5)
        fw = _run(fwolfe, g)
        assert np.linalg.norm(fw) <= np.linalg.norm(out) * (1 + 1e-2) + 1e-4


@pytest.mark.parametrize("name", ["upgrad", "dualproj"])
def test_dual_cone_methods_never_conflict(name):
    tx = lossjax.get(name)
    for seed in range(4):
        g = _random(4, 6, seed)
        out = _run(tx, g)
        assert np.all(g @ out >= -1e-4 * np.linalg.norm(g) ** 2 / 4)


def test_imtl_g_equal_projections():
    tx = lossjax.transforms.imtl_g()
    for seed in range(4):
        g = _random(3, 8, seed)
        out = _run(tx, g)
        proj = (g @ out) / np.linalg.norm(g, axis=1)
        np.testing.assert_allclose(proj, proj[0], rtol=1e-4)


def test_nash_bargaining_fixed_point():
    solve = jax.jit(lambda G: MT._nash_alpha(G, jnp.ones(3), 30))
    for seed in range(4):
        g = _random(3, 8, seed)
        G = g.astype(np.float64) @ g.T.astype(np.float64)
        alpha, residual = solve(jnp.asarray(G, jnp.float32))
        alpha = np.asarray(alpha, np.float64)
        np.testing.assert_allclose(alpha * (G @ alpha), np.ones(3), rtol=1e-4)
        assert float(residual) <= 1e-5


def _nash_f64(G):
    """alpha * (G alpha) = 1 by undamped Newton in float64 from 1/sqrt(G_ii) (a reference for the tests)."""
    a = 1.0 / np.sqrt(np.diag(G))
    for _ in range(100):
        F = a * (G @ a) - 1.0
        Jac = np.diag(G @ a) + a[:, None] * G
        a = a - np.linalg.solve(Jac, F)
    assert np.max(np.abs(a * (G @ a) - 1.0)) < 1e-12
    return a


@pytest.mark.parametrize("m", [3, 5])
def test_nash_converges_with_gradient_norms_far_from_one(m):
    # Issue 19 item 2: 20 Newton steps on the unnormalized Gram left residuals of 48 and 550 at P = 100 with
    # norms far from 1. Normalized as the reference does, it converges in a few steps, and says so.
    rng = np.random.default_rng(m)
    tx = lossjax.transforms.nash_mtl(num_losses=m, max_norm=0.0)
    step = jax.jit(lambda g, s: tx.update(g, s))
    for trial in range(3):
        g = rng.normal(size=(m, 100)) * 10.0 ** rng.uniform(-3, 3, size=(m, 1))
        g = g.astype(np.float32)
        G = g.astype(np.float64) @ g.T.astype(np.float64)
        out, state = step(jnp.asarray(g), tx.init(None))
        alpha = np.asarray(state.inner.alpha, np.float64)
        assert bool(state.inner.converged), (trial, float(state.inner.residual))
        assert np.max(np.abs(alpha * (G @ alpha) - 1.0)) < 1e-4
        want = _nash_f64(G) @ g.astype(np.float64)
        assert _rel(out, want) < 1e-4


def test_nash_reports_non_convergence():
    # a zero gradient has no bargaining solution (its weight grows without bound): reported, not hidden
    g = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 2.0, 1.0]], np.float32)
    tx = lossjax.transforms.nash_mtl(num_losses=3, max_norm=0.0)
    out, state = tx.update(jnp.asarray(g), tx.init(None))
    assert not bool(state.inner.converged) and float(state.inner.residual) > 1e-5
    assert np.all(np.isfinite(out))
    # one step is not enough from a far start: reported as well
    rng = np.random.default_rng(0)
    g = (rng.normal(size=(4, 50)) * 10.0 ** rng.uniform(-3, 3, size=(4, 1))).astype(np.float32)
    g[1] = g[0] + 1e-2 * g[1] / np.linalg.norm(g[1]) * np.linalg.norm(g[0])  # nearly parallel: ill-conditioned
    one = lossjax.transforms.nash_mtl(num_losses=4, max_iterations=1)
    _, state = one.update(jnp.asarray(g), one.init(None))
    many = lossjax.transforms.nash_mtl(num_losses=4)
    _, state2 = many.update(jnp.asarray(g), many.init(None))
    assert not bool(state.inner.converged) and bool(state2.inner.converged)


# bf16 gradients: the weights are computed in float32; the combination's operands (weights cast to bf16)
# and its output are bf16: two bf16 roundings (unit roundoff 2^-8 each) of the largest entry, at most 7.8e-3.
# Measured <= 5.3e-3 (fairgrad; the others <= 4.1e-3).
BF16_TOL = 8e-3


@pytest.mark.parametrize("name", sorted(lossjax.available(family="multitask")))
def test_bf16_gradients_give_bf16_update_close_to_f32(name):
    entry = lossjax.registry.get_entry(name)
    s = entry.sample()
    tx = lossjax.get(name, **s.hyperparams)
    g32 = jax.tree.map(jnp.asarray, s.updates)
    g16 = jax.tree.map(lambda x: x.astype(jnp.bfloat16), g32)
    extra = jax.tree.map(jnp.asarray, dict(s.extra_args))
    step = jax.jit(lambda g, extra: tx.update(g, tx.init(s.params), **extra)[0])
    out16 = step(g16, extra)
    out32 = step(jax.tree.map(lambda x: x.astype(jnp.float32), g16), extra)
    plain = jax.tree.map(lambda x: jnp.sum(x.astype(jnp.float32), 0), g16)
    for a, b, c in zip(jax.tree.leaves(out16), jax.tree.leaves(out32), jax.tree.leaves(plain), strict=True):
        assert a.dtype == jnp.bfloat16
        scale = float(jnp.max(jnp.abs(b)))
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b), rtol=0, atol=BF16_TOL * scale)
        # the combination is really applied (equal_weight is the plain sum by definition)
        far = float(jnp.max(jnp.abs(b - c))) > 0.1 * scale  # 12x the tolerance
        assert far != (name == "equal_weight"), f"{name}: the update is (not) the plain sum"


# ------------------------------- integration --------------------------------


def test_chain_with_sgd_one_step_by_hand():
    params = {"w": jnp.zeros(2)}
    tx = optax.chain(lossjax.transforms.config(), optax.sgd(0.5))
    state = tx.init(params)
    grads = {"w": jnp.array([[3.0, 0.0], [0.0, 1.0]])}
    upd, _ = jax.jit(tx.update)(grads, state, params)
    close(upd["w"], [-1.0, -1.0])  # -0.5 * (2, 2)


def test_registry_and_optimizer_spec():
    tx = lossjax.optimizer(["config(length_model='min')", "sgd(learning_rate=0.1)"])
    assert tx.to_config()["chain"][0] == {"name": "config", "length_model": "min"}
    g = {"w": jnp.array([[3.0, 0.0], [0.0, 1.0]])}
    upd, _ = tx.update(g, tx.init({"w": jnp.zeros(2)}))
    close(upd["w"], [-0.1, -0.1])


# ---------------------------------- errors ----------------------------------


def test_errors():
    tx = lossjax.transforms.config()
    with pytest.raises(ValueError, match=r"config: every leaf of `updates` must have the same leading"):
        tx.update({"a": jnp.ones((2, 3)), "b": jnp.ones((3,))}, tx.init(None))
    with pytest.raises(ValueError, match=r"config: every leaf of `updates` must carry the m losses"):
        tx.update({"a": jnp.ones(())}, tx.init(None))
    with pytest.raises(TypeError, match=r"config: `updates` must have float leaves, got int32"):
        tx.update(jnp.ones((2, 3), jnp.int32), tx.init(None))
    with pytest.raises(ValueError, match=r"config: `length_model` must be one of .* got 'median'"):
        lossjax.transforms.config(length_model="median")
    with pytest.raises(ValueError, match=r"config: `weights` must be a 1-D sequence of positive"):
        lossjax.transforms.config(weights=(1.0, -1.0))
    with pytest.raises(ValueError, match=r"config: `weights` has 2 entries but there are 3 losses"):
        (t := lossjax.transforms.config(weights=(1.0, 2.0))).update(jnp.ones((3, 4)), t.init(None))
    with pytest.raises(ValueError, match=r"m_config: built for num_losses=2, got gradients of 3 losses"):
        t = lossjax.transforms.m_config(num_losses=2)
        t.update(jnp.ones((3, 4)), t.init(jnp.zeros(4)))
    with pytest.raises(ValueError, match=r"m_config: argument `selected` must have shape \(2\)"):
        t = lossjax.transforms.m_config(num_losses=2)
        t.update(jnp.ones((2, 4)), t.init(jnp.zeros(4)), selected=jnp.ones(3, bool))
    with pytest.raises(ValueError, match=r"pcgrad: `shuffle=True` needs `key=`"):
        (t := lossjax.transforms.pcgrad(shuffle=True)).update(jnp.ones((2, 3)), t.init(None))
    with pytest.raises(ValueError, match=r"graddrop: `update` needs `key=`"):
        (t := lossjax.transforms.graddrop()).update(jnp.ones((2, 3)), t.init(None))
    with pytest.raises(ValueError, match=r"mgda: `solver` must be one of"):
        lossjax.transforms.mgda(solver="qp")
    with pytest.raises(ValueError, match=r"nash_mtl: `num_losses` must be an integer >= 1, got 0"):
        lossjax.transforms.nash_mtl(num_losses=0)
    with pytest.raises(ValueError, match=r"gradvac: `num_losses` must be an integer >= 1, got True"):
        lossjax.transforms.gradvac(num_losses=True)
    with pytest.raises(ValueError, match=r"nash_mtl: `interval` must be an integer >= 1, got True"):
        lossjax.transforms.nash_mtl(num_losses=2, interval=True)
    with pytest.raises(ValueError, match=r"mgda: `max_iterations` must be an integer >= 1, got 2.5"):
        lossjax.transforms.mgda(max_iterations=2.5)
    with pytest.raises(ValueError, match=r"upgrad: `weights` must be a 1-D sequence of non-negative"):
        lossjax.transforms.upgrad(weights=(1.0, -1.0))
    with pytest.raises(ValueError, match=r"m_config_schedule: `num_losses` must be an integer >= 1, got True"):
        lossjax.transforms.m_config_schedule(0, num_losses=True)
    with pytest.raises(ValueError, match=r"cagrad: `c` must be >= 0, got -1"):
        lossjax.transforms.cagrad(c=-1.0)


def test_iterative_solvers_match_exact_ones():
    # Beyond 12 losses the QPs are solved by projected gradient: checked here against the exact
    # enumeration on problems small enough for both (forced with exact=False).
    # All (exact, iterative) pairs of the three problems in one jitted program (eager, every unrolled
    # op compiled once per shape: ~20 s).
    def pairs(G, g):
        m = G.shape[0]
        Gn = MT._normalize_gram(G, 1e-4, 1e-4)
        out = [
            (MT._dual_cone_weights(Gn, u), MT._nonneg_qp(Gn, Gn @ u, exact=False) + u)
            for u in (jnp.full((m,), 1.0 / m), jnp.eye(m)[0] / m)
        ]
        out.append((MT._mgda_exact(G) @ g, MT._mgda_exact(G, exact=False) @ g))
        for c in (0.4, 1.0):
            out.append((MT._cagrad_weights(G, c, 1e-4) @ g, MT._cagrad_weights(G, c, 1e-4, exact=False) @ g))
        return out

    rng = np.random.default_rng(11)
    gs = [rng.normal(size=(m, p)).astype(np.float32) for m, p in [(4, 10), (6, 3), (8, 20)]]
    Gs = [jnp.asarray(g.astype(np.float64) @ g.T.astype(np.float64), jnp.float32) for g in gs]
    results = jax.jit(lambda Gs, gs: [pairs(G, g) for G, g in zip(Gs, gs, strict=True)])(Gs, gs)
    assert len(results) == 3 and all(len(r) == 5 for r in results)
    for exact, iterative in itertools.chain.from_iterable(results):
        np.testing.assert_allclose(iterative, exact, rtol=1e-4, atol=1e-5)


def test_many_losses_use_the_iterative_path():
    g = _random(14, 30, 0)
    out = _run(lossjax.transforms.upgrad(), g)
    assert np.all(g @ out >= -1e-4 * np.linalg.norm(g) ** 2 / 14)
    w = np.asarray(jax.jit(MT._mgda_exact)(jnp.asarray(g @ g.T)), np.float64)
    assert _kkt_min_norm(g.astype(np.float64) @ g.T.astype(np.float64), w, 1e-3 * np.trace(g @ g.T))
    assert np.all(np.isfinite(_run(lossjax.transforms.cagrad(), g)))


# ------------------------------- num_losses --------------------------------

STATEFUL = ["m_config", "gradvac", "nash_mtl"]
STATELESS = ["config", "pcgrad", "imtl_g", "upgrad", "dualproj", "mgda", "cagrad", "aligned_mtl", "equal_weight"]


@pytest.mark.parametrize("name", STATEFUL)
def test_stateful_combiners_require_num_losses(name):
    with pytest.raises(ValueError, match=rf"{name}: `num_losses` is required \(the state holds one entry per loss\)"):
        getattr(lossjax.transforms, name)()


@pytest.mark.parametrize("name", [*STATELESS, "graddrop"])
def test_stateless_combiners_check_the_gradients_against_num_losses(name):
    g = jnp.asarray(_random(3, 4, 0))
    extra = {"key": jax.random.PRNGKey(0)} if name == "graddrop" else {}
    free = getattr(lossjax.transforms, name)()
    fixed = getattr(lossjax.transforms, name)(num_losses=3)
    # the same update when the count matches ...
    np.testing.assert_array_equal(
        fixed.update(g, fixed.init(None), **extra)[0], free.update(g, free.init(None), **extra)[0]
    )
    # ... and a clear error when it does not
    with pytest.raises(ValueError, match=rf"{name}: built for num_losses=2, got gradients of 3 losses"):
        (t := getattr(lossjax.transforms, name)(num_losses=2)).update(g, t.init(None), **extra)


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("config", {"weights": (1.0, 2.0)}, r"config: `weights` has 2 entries but there are 3 losses"),
        ("upgrad", {"weights": (1.0, 2.0)}, r"upgrad: `weights` has 2 entries but there are 3 losses"),
        ("aligned_mtl", {"weights": (1.0,)}, r"aligned_mtl: `weights` has 1 entries but there are 3 losses"),
        ("graddrop", {"leak": (0.1, 0.2)}, r"graddrop: `leak` has 2 entries but there are 3 losses"),
    ],
)
def test_per_loss_hyperparameters_checked_against_num_losses_at_build_time(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        getattr(lossjax.transforms, name)(num_losses=3, **kwargs)


@pytest.mark.parametrize(
    ("name", "old"),
    [
        ("upgrad", {"pref_vector": (1.0, 1.0)}),
        ("dualproj", {"norm_eps": 1e-4}),
        ("upgrad", {"reg_eps": 1e-4}),
        ("cagrad", {"norm_eps": 1e-4}),
        ("mgda", {"max_iters": 10}),
        ("nash_mtl", {"update_weights_every": 2}),
        ("gradvac", {"beta": 0.5}),
    ],
)
def test_old_argument_names_are_gone(name, old):
    with pytest.raises(TypeError, match=r"unexpected keyword argument"):
        getattr(lossjax.transforms, name)(num_losses=2, **old)


@pytest.mark.parametrize("name", [*STATELESS, "graddrop", *STATEFUL])
def test_hyperparameters_are_keyword_only(name):
    with pytest.raises(TypeError, match=r"positional argument"):
        getattr(lossjax.transforms, name)(2)


def test_upgrad_weights_are_the_preference_vector():
    # p = (1, 0) on orthogonal gradients: only the first is projected (it already is in the dual cone)
    g = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    close(_run(lossjax.transforms.upgrad(weights=(1.0, 0.0), regularization=0.0), g), [1.0, 0.0])


def test_gradvac_decay_is_the_ema_factor_of_the_targets():
    # two steps on fixed gradients of cosine c: the target after step 1 is (1 - decay) c (targets start at 0)
    g = jnp.array([[1.0, 0.0], [1.0, 1.0]], jnp.float32)  # cos = 1/sqrt(2) > 0: no correction on step 1
    for decay in (0.0, 0.25, 0.9):
        tx = lossjax.transforms.gradvac(num_losses=2, decay=decay)
        _, state = tx.update(g, tx.init(None))
        np.testing.assert_allclose(state.inner.targets[0, 1], (1 - decay) / np.sqrt(2.0), rtol=1e-6)


# ------------------------ faults: NaN steps, apply_if_finite ------------------------


def _sample_step(name):
    """(transform, jitted update taking (updates, state), init state, sample updates) from the conformance sample."""
    s = lossjax.registry.get_entry(name).sample()
    tx = lossjax.get(name, **s.hyperparams)
    extra = {k: v for k, v in s.extra_args.items() if not callable(v)}
    fns = {k: v for k, v in s.extra_args.items() if callable(v)}
    step = jax.jit(lambda u, st, p: tx.update(u, st, p, **extra, **fns))
    return tx, step, s


def _nan_like(tree):
    return jax.tree.map(lambda x: np.where(np.arange(np.size(x)).reshape(np.shape(x)) == 0, np.nan, x), tree)


@pytest.mark.parametrize("name", ["m_config", "gradvac", "nash_mtl"])
def test_one_nan_step_does_not_poison_the_state(name):
    # Issue 19 item 10: M-ConFIG's momenta stayed NaN forever and GradVac's targets silently turned it into a
    # plain sum. A non-finite step now returns its (non-finite) update and the previous state.
    tx, step, s = _sample_step(name)
    g = jax.tree.map(jnp.asarray, s.updates)
    g2 = jax.tree.map(lambda x: 0.5 * x[::-1], g)  # another step's gradients
    state = tx.init(s.params)
    _, state = step(g, state, s.params)
    bad, state_after_nan = step(_nan_like(g), state, s.params)
    assert not all(np.all(np.isfinite(x)) for x in jax.tree.leaves(bad))
    for a, b in zip(jax.tree.leaves(state_after_nan), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(a, b)
    out_recovered, _ = step(g2, state_after_nan, s.params)
    out_clean, _ = step(g2, state, s.params)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(out_recovered))
    assert_close(out_recovered, out_clean, rtol=0, atol=0)


TRANSFORMS = sorted(n for n in lossjax.available() if lossjax.registry.get_entry(n).kind == "transform")


@pytest.mark.parametrize("name", TRANSFORMS)
def test_apply_if_finite_wraps_every_transform(name):
    # optax.apply_if_finite returns zeros shaped like its INPUT: a TypeError for an aggregator ([m, ...] in,
    # params-shaped out). lossjax.transforms.apply_if_finite is the same wrapper, zeros shaped like the output.
    tx, _, s = _sample_step(name)
    wrapped = lossjax.transforms.apply_if_finite(tx, 1)
    extra = {k: v for k, v in s.extra_args.items()}
    upd = jax.tree.map(jnp.asarray, s.updates)
    state = wrapped.init(s.params)
    step = jax.jit(
        lambda u, st: wrapped.update(
            u,
            st,
            s.params,
            **{k: v for k, v in extra.items() if not callable(v)},
            **{k: v for k, v in extra.items() if callable(v)},
        )
    )
    good, state1 = step(upd, state)
    # Both compiled (eager compiled every op: slow, and rounds apart from the compiled step, e.g. IMTL-G's m x m
    # pseudo-inverse by 2.7e-6, Sven's SVD by 1.4e-6; jit-vs-eager is the conformance `jit` property).
    plain, _ = jax.jit(lambda u: tx.update(u, tx.init(s.params), s.params, **extra))(upd)
    assert_close(good, plain, rtol=1e-5, atol=1e-6)
    zero, state2 = step(_nan_like(upd), state1)
    assert jax.tree.structure(zero) == jax.tree.structure(s.params)
    assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(zero))
    assert int(state2.total_notfinite) == 1 and not bool(state2.last_finite)
    for a, b in zip(jax.tree.leaves(state2.inner_state), jax.tree.leaves(state1.inner_state), strict=True):
        np.testing.assert_array_equal(a, b)  # the skipped step left the inner state alone
    same_shape = jax.tree.structure(s.params) == jax.tree.structure(upd) and all(
        np.shape(a) == np.shape(b) for a, b in zip(jax.tree.leaves(s.params), jax.tree.leaves(upd), strict=True)
    )
    if same_shape:  # optax's own wrapper works for these (SAM family) and agrees
        ow = optax.apply_if_finite(tx, 1)
        ostep = jax.jit(lambda u, st: ow.update(u, st, s.params, **extra))
        og, ost = ostep(upd, ow.init(s.params))
        assert_close(og, good, rtol=1e-6, atol=1e-7)
        oz, _ = ostep(_nan_like(upd), ost)
        assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(oz))
    else:
        with pytest.raises(TypeError):
            ow = optax.apply_if_finite(tx, 1)
            ow.update(upd, ow.init(s.params), s.params, **extra)


# ------------------------------ gradient size ------------------------------

SCALE_FREE = {  # name -> how the update scales with the gradients: "linear" (g -> K g gives K update) or "none"
    "config": "linear",
    "pcgrad": "linear",
    "imtl_g": "linear",
    "upgrad": "linear",
    "dualproj": "linear",
    "mgda": "linear",
    "cagrad": "linear",
    "aligned_mtl": "linear",
    "gradvac": "linear",
    "equal_weight": "linear",
    "graddrop": "linear",
    "nash_mtl": "none",  # alpha ~ 1/||g||
}


@pytest.mark.parametrize("name", sorted(SCALE_FREE))
@pytest.mark.parametrize("K", [1e20, 1e-15])
def test_any_gradient_size(name, K):
    # Issue 19 item 11: above a norm of ~1.8e19 the float32 Gram matrix overflowed and ConFIG, IMTL-G, MGDA
    # returned NaN; below ~1e-19 it underflowed to 0. The Gram is now formed in scaled form when needed.
    extra = {"key": jax.random.PRNGKey(0)} if name == "graddrop" else {}
    hyper = {"num_losses": 3} if name in ("gradvac", "nash_mtl") else {}
    if name == "nash_mtl":
        hyper["max_norm"] = 0.0
    if name in ("upgrad", "dualproj", "cagrad", "gradvac") and K < 1:
        hyper["epsilon"] = 0.0  # torchjd's absolute thresholds / denominators act on tiny gradients by design
    tx = lossjax.get(name, **hyper)
    g = _random(3, 6, 4)
    run = jax.jit(lambda g: tx.update(g, tx.init(None), **extra)[0])
    base = np.asarray(run(jnp.asarray(g)), np.float64)
    big = np.asarray(run(jnp.asarray(g * np.float32(K))), np.float64)
    assert np.all(np.isfinite(big)), f"{name}: non-finite at scale {K}"
    want = base * (K if SCALE_FREE[name] == "linear" else 1.0)
    np.testing.assert_allclose(big, want, rtol=2e-4, atol=1e-6 * np.max(np.abs(want)))


def test_m_config_gradient_size():
    # the ConFIG part is scale-free now; Adam's pseudo second moment (g^2) overflows above ~1.8e19 like
    # optax.adam's: the update is then 0 and the state is kept (not poisoned)
    tx = lossjax.transforms.m_config(num_losses=3)
    g = _random(3, 6, 4)
    step = jax.jit(lambda g, s: tx.update(g, s))
    base, _ = step(jnp.asarray(g), tx.init(jnp.zeros(6)))
    big, state = step(jnp.asarray(g * np.float32(1e17)), tx.init(jnp.zeros(6)))
    np.testing.assert_allclose(big, base, rtol=1e-4)  # Adam-normalized: the same update
    huge, state = step(jnp.asarray(g * np.float32(1e20)), tx.init(jnp.zeros(6)))
    assert np.all(np.isfinite(huge)) and all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state))


# ------------------------------ CAGrad's two variants ------------------------------


def test_cagrad_torchjd_zero_updates_and_the_papers_rule():
    # Issue 19 item 11: torchjd's CAGrad gives an exactly zero update when g_w* (nearly) vanishes; the paper's
    # official code gives g_0 + c||g_0|| g_w/||g_w|| (g_0 where g_w = 0), divided by 1 + c^2.
    c = 0.4
    tj, paper = lossjax.transforms.cagrad(c=c), lossjax.transforms.cagrad(c=c, variant="paper")

    def both(g):
        g = jnp.asarray(g, jnp.float32)
        return np.asarray(tj.update(g, tj.init(None))[0]), np.asarray(paper.update(g, paper.init(None))[0])

    # one task's gradient is zero (the others agree): w* = that task, g_w* = 0
    g = np.array([[0.0, 0.0, 0.0], [1.0, 0.5, 0.0], [0.5, 1.0, 0.2]])
    a, b = both(g)
    assert np.all(a == 0)
    close(b, g.mean(0) / (1 + c * c), rtol=1e-6, atol=1e-7)
    # one gradient 1e4 times smaller: torchjd's ||g_w*|| < epsilon on the normalized Gram, zero update;
    # the paper steps the full radius along it (the min is at w* = e_0 here)
    g = np.array([[1e-4, 0.0, 0.0], [1.0, 0.5, 0.0], [0.5, 1.0, 0.2]])
    a, b = both(g)
    g0 = g.mean(0)
    want = (g0 + c * np.linalg.norm(g0) * g[0] / np.linalg.norm(g[0])) / (1 + c * c)
    assert np.all(a == 0)
    close(b, want, rtol=1e-5, atol=1e-7)
    # all gradients small (norms ~1e-3: trace of the Gram < epsilon = 1e-4): torchjd returns 0, the paper
    # variant is scale-free
    g = _random(3, 5, 2)
    a, b = both(g * 1e-3)
    _, b1 = both(g)
    assert np.all(a == 0)
    close(b, b1 * 1e-3, rtol=1e-5, atol=1e-12)
    # where g_w* is well away from 0 the two differ by the paper's final 1/(1 + c^2) only
    a, b = both(g)
    close(b, a / (1 + c * c), rtol=1e-5, atol=1e-7)
