"""krum, trimmed_mean, constant_weights: closed forms by hand and errors (torchjd parity: conformance `value`)."""

import jax
import jax.numpy as jnp
import pytest

import lossjax
from lossjax.testing import assert_close

T = lossjax.transforms


def _agg(tx, g):
    return tx.update(g, tx.init(None))[0]


def test_krum_picks_the_gradients_closest_to_their_neighbours():
    g = jnp.array([[1.0, 0.0], [1.2, 0.0], [0.9, 0.1], [1.0, 0.3], [40.0, -40.0]])
    # f = 1: each score sums the 2 nearest distances; the outlier's score is huge
    assert_close(_agg(T.krum(num_byzantine=1), g), g[0])
    # scores 0.341, 0.516, 0.365, 0.524 (g0..g3): Multi-Krum with k = 3 averages g0, g2, g1
    assert_close(_agg(T.krum(num_byzantine=1, num_selected=3), g), (g[0] + g[1] + g[2]) / 3)
    tree = {"a": g[:, :1], "b": g[:, 1:]}  # the Gram over leaves: the same choice
    out = _agg(T.krum(num_byzantine=1), tree)
    assert_close(jnp.concatenate([out["a"], out["b"]]), g[0])


def test_trimmed_mean_and_constant_weights_closed_forms():
    g = jnp.array([[1.0, -3.0], [2.0, 100.0], [-50.0, 0.0], [4.0, 1.0], [3.0, 2.0]])
    assert_close(_agg(T.trimmed_mean(num_trimmed=1), g), jnp.array([2.0, 1.0]))
    assert_close(_agg(T.trimmed_mean(num_trimmed=0), g), jnp.mean(g, 0))
    assert_close(_agg(T.trimmed_mean(num_trimmed=2), g), jnp.median(g, 0))
    w = [0.5, -1.0, 0.0, 2.0, 1.0]
    assert_close(_agg(T.constant_weights(weights=w), g), jnp.asarray(w) @ g)


def test_errors():
    g = jnp.ones((3, 2))
    with pytest.raises(ValueError, match="krum: needs num_losses >= num_byzantine \\+ 3 = 4"):
        _agg(T.krum(num_byzantine=1), g)
    with pytest.raises(ValueError, match="trimmed_mean: needs num_losses >= 2 \\* num_trimmed \\+ 1 = 5"):
        _agg(T.trimmed_mean(num_trimmed=2), g)
    with pytest.raises(ValueError, match="constant_weights: `weights` has 2 entries, got gradients of 3 losses"):
        _agg(T.constant_weights(weights=[1.0, 2.0]), g)
    with pytest.raises(ValueError, match="constant_weights: `weights` must be a non-empty list of finite"):
        T.constant_weights(weights=[float("nan")])
    with pytest.raises(ValueError, match="krum: `num_selected` must be an integer >= 1"):
        T.krum(num_selected=0)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 3.0])
def test_fairgrad_closed_form_for_orthogonal_gradients_and_scale_invariance(alpha):
    g = jnp.array([[2.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 1.0]])
    w = jnp.linalg.norm(g, axis=1) ** (-2 * alpha / (alpha + 1))  # G w = w^(-1/alpha) with G diagonal
    assert_close(_agg(T.fairgrad(alpha=alpha), g), w @ g)
    # any gradient size: the Gram is formed in scaled form; update scales as s^((1 - alpha) / (1 + alpha))
    s = 1e-20
    assert_close(_agg(T.fairgrad(alpha=alpha), g * s), w @ g * s ** ((1 - alpha) / (1 + alpha)), rtol=1e-4)
    out = _agg(T.fairgrad(alpha=alpha), g.at[1].set(0.0))  # a zero gradient: the others unchanged
    assert_close(out, w[0] * g[0] + w[2] * g[2])


def test_excess_mtl_two_steps_by_hand():
    g = jnp.array([[1.0, 0.0], [0.0, 3.0]])
    tx = T.excess_mtl(num_losses=2)
    state = tx.init(jnp.zeros(2))
    u1, state = tx.update(g, state)
    w1 = jax.nn.softmax(jnp.log(jnp.array([0.5, 0.5])) + jnp.array([1.0, 3.0]))  # e = |g_i|^2 / |g_i| (no warm-up)
    assert_close(state.inner.weights, w1, rtol=1e-5)
    assert_close(state.weights, w1, rtol=1e-5)
    assert_close(u1, w1 @ g, rtol=1e-5)
    u2, state = tx.update(g, state)  # e = |g_i| / sqrt(2), divided by the baseline |g_i|: equal drives, same weights
    assert_close(state.inner.weights, w1, rtol=1e-5)
    assert_close(state.weights, w1, rtol=1e-5)
    assert_close(u2, w1 @ g, rtol=1e-5)
    # with a warm-up step the first update is uniform
    tx = T.excess_mtl(num_losses=2, num_warmup_steps=1)
    u, state = tx.update(g, tx.init(jnp.zeros(2)))
    assert_close(u, 0.5 * (g[0] + g[1]))
    with pytest.raises(ValueError, match="excess_mtl: `init` needs the parameters"):
        tx.init(None)
