"""Loss weightings: parity with LibMTL's / FAMO's formulas, consistency, properties, errors."""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
import lossjax.multiloss
from lossjax.testing import assert_close

REF = json.loads((pathlib.Path(__file__).parents[1] / "reference" / "multitask.json").read_text())["cases"]
T = lossjax.transforms


def _case(method):
    (c,) = [c for c in REF if c["method"] == method]
    return c


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def close(actual, expected, **tol):
    assert_close(np.asarray(actual), np.asarray(expected, np.float64), **tol)


def _weights(tx, state, losses=None, key=None, m=None):
    """The weights a weighting applies: feed the identity as the m per-loss gradients."""
    extra = {} if losses is None else {"losses": jnp.asarray(losses, jnp.float32)}
    if key is not None:
        extra["key"] = key
    return tx.update(jnp.eye(m, dtype=jnp.float32), state, **extra)


def test_uncertainty_weighted_loss_parity_libmtl():
    c = _case("uw_loss")
    L, s = jnp.asarray(c["losses"], jnp.float32), jnp.asarray(c["log_vars"], jnp.float32)
    val, grad = jax.value_and_grad(T.uncertainty_weighted_loss, argnums=1)(L, s)
    assert _rel(val, c["expected"]) < 1e-6
    assert _rel(grad, c["grad"]) < 1e-6


def test_uncertainty_weighted_loss_classification_terms_by_hand():
    # Kendall: regression L/(2 sigma^2) + log sigma; classification L/sigma^2 + log sigma, s = log sigma^2.
    L = jnp.array([2.0, 3.0])
    s = jnp.array([np.log(2.0), np.log(4.0)], jnp.float32)
    got = T.uncertainty_weighted_loss(L, s, classification=(False, True))
    want = 2.0 / (2 * 2.0) + 0.5 * np.log(2.0) + 3.0 / 4.0 + 0.5 * np.log(4.0)
    close(got, want)


def test_uncertainty_weighting_transform_matches_the_function():
    # The transform's update is the gradient of the function wrt the model params, and its log-variance
    # step is an Adam step on the function's gradient wrt s.
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.normal(size=(8, 3)), jnp.float32)
    Y = jnp.asarray(rng.normal(size=(8, 2)), jnp.float32)
    theta = jnp.asarray(rng.normal(size=(3,)), jnp.float32)

    def losses(th):
        r = X @ th
        return jnp.stack([jnp.mean((r - Y[:, 0]) ** 2), jnp.mean(jax.nn.softplus(-r * Y[:, 1]))])

    tx = T.uncertainty_weighting(num_losses=2, learning_rate=0.1, classification=(False, True))
    state = tx.init(theta)
    s0 = jnp.array([0.3, -0.2])
    state = state._replace(inner=T.UncertaintyWeightingState(s0, optax.adam(0.1).init(s0)))
    L, grads = lossjax.multiloss.per_loss_value_and_grad(losses)(theta)
    upd, new = jax.jit(tx.update)(grads, state, None, losses=L)
    flags = (False, True)
    want = jax.grad(lambda th: T.uncertainty_weighted_loss(losses(th), s0, classification=flags))(theta)
    close(upd, want, rtol=1e-5, atol=1e-6)
    gs = jax.grad(lambda s: T.uncertainty_weighted_loss(L, s, classification=flags))(s0)
    step, _ = optax.adam(0.1).update(gs, optax.adam(0.1).init(s0), s0)
    close(new.inner.log_vars, s0 + step, rtol=1e-5, atol=1e-6)


def test_dwa_parity_libmtl():
    c = _case("dwa")
    tx = T.dwa(num_losses=3)
    state = tx.init(None)
    for losses, want in zip(c["losses_seq"], c["expected_weights"], strict=True):
        w, state = _weights(tx, state, losses, m=3)
        assert _rel(w, want) < 1e-6


def test_gradnorm_parity_libmtl():
    c = _case("gradnorm")
    tx = T.gradnorm(**c["hyper"])
    state = tx.init(None)
    step = jax.jit(lambda g, s, L: tx.update(g, s, losses=L))
    worst_u = worst_l = 0.0
    for g, L, want, logits in zip(c["grads_seq"], c["losses_seq"], c["expected_seq"], c["logits_seq"], strict=True):
        out, state = step(jnp.asarray(g, jnp.float32), state, jnp.asarray(L, jnp.float32))
        worst_u = max(worst_u, _rel(out, want))
        worst_l = max(worst_l, float(np.max(np.abs(np.asarray(state.inner.logits) - np.asarray(logits)))))
    assert worst_u < 1e-5 and worst_l < 1e-6, (worst_u, worst_l)


def test_famo_parity_official():
    c = _case("famo")
    tx = T.famo(**c["hyper"])
    state = tx.init(None)
    step = jax.jit(lambda g, s, L: tx.update(g, s, losses=L))
    worst = 0.0
    for g, L, want in zip(c["grads_seq"], c["losses_seq"], c["expected_seq"], strict=True):
        out, state = step(jnp.asarray(g, jnp.float32), state, jnp.asarray(L, jnp.float32))
        worst = max(worst, _rel(out, want))
    assert worst < 1e-5, worst


def test_gradnorm_first_step_and_objective_by_hand():
    # balanced norms and equal loss ratios: L_grad = 0 at equal weights
    assert float(T.gradnorm_objective(jnp.zeros(3), jnp.ones(3), jnp.ones(3), jnp.ones(3), alpha=1.5)) == 0.0
    # norms (1, 3), weights 1: mean 2, ratios equal -> |1-2| + |3-2| = 2
    assert float(T.gradnorm_objective(jnp.zeros(2), jnp.array([1.0, 3.0]), jnp.ones(2), jnp.ones(2), alpha=1.5)) == 2.0


def test_rlw_weights_are_a_random_simplex_point():
    for dist in ("normal", "uniform", "dirichlet"):
        tx = T.rlw(distribution=dist)
        w1, _ = _weights(tx, tx.init(None), key=jax.random.PRNGKey(1), m=4)
        w2, _ = _weights(tx, tx.init(None), key=jax.random.PRNGKey(1), m=4)
        w3, _ = _weights(tx, tx.init(None), key=jax.random.PRNGKey(2), m=4)
        np.testing.assert_array_equal(w1, w2)
        assert not np.allclose(w1, w3)
        assert np.all(np.asarray(w1) > 0) and abs(float(jnp.sum(w1)) - 1) < 1e-6
    # normal: softmax of N(0, 1) draws, as LibMTL
    z = jax.random.normal(jax.random.PRNGKey(1), (4,), jnp.float32)
    close(_weights(T.rlw(), T.rlw().init(None), key=jax.random.PRNGKey(1), m=4)[0], jax.nn.softmax(z))


@pytest.mark.parametrize("name", ["uncertainty_weighting", "dwa", "gradnorm", "famo"])
def test_weights_positive_and_finite_on_random_losses(name):
    rng = np.random.default_rng(7)
    tx = lossjax.get(name, num_losses=4)
    state = tx.init(None)
    step = jax.jit(lambda s, L: _weights(tx, s, L, m=4))
    for _ in range(6):
        L = rng.uniform(1e-3, 1e3, size=(4,)).astype(np.float32)
        w, state = step(state, L)
        assert np.all(np.isfinite(w)) and np.all(np.asarray(w) > 0), (name, w)
        assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state))


def test_errors():
    with pytest.raises(
        ValueError, match=r"uncertainty_weighted_loss: `losses` and `log_vars` must have the same shape"
    ):
        T.uncertainty_weighted_loss(jnp.ones(3), jnp.zeros(2))
    with pytest.raises(ValueError, match=r"uncertainty_weighted_loss: argument `losses` must have rank 1"):
        T.uncertainty_weighted_loss(jnp.ones((2, 3)), jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"uncertainty_weighted_loss: `classification` has 1 entries but there are 2"):
        T.uncertainty_weighted_loss(jnp.ones(2), jnp.zeros(2), classification=(True,))
    tx = T.uncertainty_weighting(num_losses=2)
    with pytest.raises(ValueError, match=r"uncertainty_weighting: `update` needs the per-loss values as `losses=`"):
        tx.update(jnp.ones((2, 3)), tx.init(None))
    with pytest.raises(ValueError, match=r"uncertainty_weighting: argument `losses` must have shape \(2\), got \(3,\)"):
        tx.update(jnp.ones((2, 3)), tx.init(None), losses=jnp.ones(3))
    with pytest.raises(ValueError, match=r"dwa: built for num_losses=3, got gradients of 2 losses"):
        t = T.dwa(num_losses=3)
        t.update(jnp.ones((2, 3)), t.init(None), losses=jnp.ones(2))
    with pytest.raises(ValueError, match=r"rlw: `update` needs `key=`"):
        (t := T.rlw()).update(jnp.ones((2, 3)), t.init(None))
    with pytest.raises(ValueError, match=r"dwa: `temperature` must be > 0, got 0"):
        T.dwa(num_losses=2, temperature=0.0)
    with pytest.raises(ValueError, match=r"famo: `min_losses` has 1 entries but there are 2 losses"):
        T.famo(num_losses=2, min_losses=(0.0,))
    with pytest.raises(ValueError, match=r"dwa: `num_losses` must be an integer >= 1, got True"):
        T.dwa(num_losses=True)
    with pytest.raises(ValueError, match=r"dwa_weights: `prev` and `prev2` must have the same shape"):
        T.dwa_weights(jnp.ones(2), jnp.ones(3))


@pytest.mark.parametrize("name", ["uncertainty_weighting", "dwa", "gradnorm", "famo"])
def test_stateful_weightings_require_num_losses(name):
    with pytest.raises(ValueError, match=rf"{name}: `num_losses` is required \(the state holds one entry per loss\)"):
        getattr(T, name)()


def test_rlw_checks_the_gradients_against_num_losses():
    key = jax.random.PRNGKey(0)
    w, _ = _weights(T.rlw(num_losses=3), T.rlw(num_losses=3).init(None), key=key, m=3)
    np.testing.assert_array_equal(w, _weights(T.rlw(), T.rlw().init(None), key=key, m=3)[0])
    with pytest.raises(ValueError, match=r"rlw: built for num_losses=2, got gradients of 3 losses"):
        _weights(T.rlw(num_losses=2), T.rlw(num_losses=2).init(None), key=key, m=3)


@pytest.mark.parametrize("name", ["uncertainty_weighting", "dwa", "gradnorm", "famo", "rlw"])
def test_hyperparameters_are_keyword_only(name):
    with pytest.raises(TypeError, match=r"positional argument"):
        getattr(T, name)(2)
    with pytest.raises(TypeError, match=r"positional argument"):
        T.gradnorm_objective(jnp.zeros(2), jnp.ones(2), jnp.ones(2), jnp.ones(2), 1.5)


# ------------------------------ faults and sizes ------------------------------


@pytest.mark.parametrize("name", ["uncertainty_weighting", "dwa", "gradnorm", "famo"])
@pytest.mark.parametrize("bad", ["grads", "losses"])
def test_one_nan_step_does_not_poison_the_state(name, bad):
    # Issue 19 item 10: a NaN gradient or loss never reaches the state; where the new state would hold it,
    # the previous state is kept, so the next finite step is what it would have been.
    tx = lossjax.get(name, num_losses=3)
    rng = np.random.default_rng(0)
    g = jnp.asarray(rng.normal(size=(3, 4)), jnp.float32)
    L = [jnp.asarray(rng.uniform(0.5, 2.0, size=(3,)), jnp.float32) for _ in range(4)]
    step = jax.jit(lambda g, s, L: tx.update(g, s, losses=L))
    state = tx.init(None)
    for k in range(2):
        _, state = step(g * (k + 1), state, L[k])
    g_bad = g.at[0, 0].set(jnp.nan) if bad == "grads" else g
    L_bad = L[2].at[1].set(jnp.nan) if bad == "losses" else L[2]
    _, after = step(g_bad, state, L_bad)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(after))
    recovered, _ = step(g, after, L[3])
    assert np.all(np.isfinite(recovered))
    if bad == "losses" or name == "gradnorm":  # the state depends on what was NaN: the step is not recorded
        for x, y in zip(jax.tree.leaves(after), jax.tree.leaves(state), strict=True):
            np.testing.assert_array_equal(x, y)
        clean, _ = step(g, state, L[3])
        np.testing.assert_array_equal(recovered, clean)


def test_gradnorm_any_gradient_size():
    # Issue 19 item 11: the norms ||g_i|| came from a float32 Gram that overflows above ~1.8e19 (and the
    # logits then stopped learning). Adam makes GradNorm's logit steps scale-free: same weights at 1e20.
    rng = np.random.default_rng(1)
    g = jnp.asarray(rng.normal(size=(3, 6)) * np.array([[1.0], [3.0], [0.3]]), jnp.float32)
    Ls = [jnp.asarray(rng.uniform(0.5, 2.0, size=(3,)), jnp.float32) for _ in range(4)]
    tx = lossjax.transforms.gradnorm(num_losses=3, learning_rate=0.1)
    step = jax.jit(lambda g, s, L: tx.update(g, s, losses=L))
    logits = {}
    for K in (1.0, 1e20):
        state = tx.init(None)
        for L in Ls:
            out, state = step(g * np.float32(K), state, L)
            assert np.all(np.isfinite(out))
        logits[K] = np.asarray(state.inner.logits)
    assert np.max(np.abs(logits[1.0])) > 0.05  # the logits moved
    np.testing.assert_allclose(logits[1e20], logits[1.0], rtol=1e-4, atol=1e-6)
