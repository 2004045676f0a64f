"""Divergences (lossjax/losses/_divergence.py).

Values and gradients against independent float64 references run in the conformance ``value``
property (lossjax/expected/divergence.json, made by tests/reference/make_expected_divergence.py:
torch F.kl_div, optax, scipy, ports of mine-pytorch / CS-IB / BFN). Here: optax parity at test time
(optax is a core dependency), the conventions where lossjax differs (0 log 0 = 0 against -inf),
hand-derived closed forms, limits, the state of MINE, and the errors.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from lossjax.testing import assert_close

L = lossjax.losses


def _dists(seed=0, n=5, c=4):
    rng = np.random.default_rng(seed)
    lp = jax.nn.log_softmax(jnp.asarray(rng.normal(size=(n, c)) * 1.5, jnp.float32))
    t = jax.nn.softmax(jnp.asarray(rng.normal(size=(n, c)), jnp.float32))
    return lp, t


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (L.kl_divergence, optax.losses.kl_divergence),
        (L.kl_divergence_with_log_targets, None),
        (L.generalized_kl_divergence, optax.losses.generalized_kl_divergence),
        (L.convex_kl_divergence, optax.losses.generalized_kl_divergence),
    ],
)
def test_optax_parity_values_grads_axis_and_element_where(ours, theirs):
    lp, t = _dists()
    if theirs is None:
        ours_fn, theirs_fn, tt = ours, optax.losses.kl_divergence_with_log_targets, jnp.log(t)
    else:
        ours_fn, theirs_fn, tt = ours, theirs, t
    assert_close(ours_fn(lp, tt), theirs_fn(lp, tt), rtol=1e-6, atol=1e-7)
    g1 = jax.grad(lambda a: ours_fn(a, tt).sum())(lp)
    g2 = jax.grad(lambda a: theirs_fn(a, tt).sum())(lp)
    assert_close(g1, g2, rtol=1e-6, atol=1e-7)
    # axis=0 and optax's element-wise `where` (the inputs' full shape).
    assert_close(ours_fn(lp.T, tt.T, axis=0), theirs_fn(lp.T, tt.T, axis=0), rtol=1e-6, atol=1e-7)
    w = jnp.asarray(np.random.default_rng(1).random(lp.shape) < 0.7)
    assert_close(ours_fn(lp, tt, where=w), theirs_fn(lp, tt, where=w), rtol=1e-6, atol=1e-7)


def test_kl_zero_target_is_exactly_zero_even_against_neg_inf():
    lp = jnp.array([[0.0, -jnp.inf]])
    t = jnp.array([[1.0, 0.0]])
    assert float(L.kl_divergence(lp, t)[0]) == 0.0
    assert bool(jnp.isnan(optax.losses.kl_divergence(lp, t)[0]))  # optax's NaN, documented difference
    g = jax.grad(lambda a: L.kl_divergence(a, t).sum())(lp)
    assert np.all(np.isfinite(g)) and float(g[0, 1]) == 0.0 and float(g[0, 0]) == -1.0
    assert float(L.kl_divergence(lp, jnp.log(t), log_target=True)[0]) == 0.0
    assert float(L.kl_divergence_with_log_targets(lp, jnp.log(t))[0]) == 0.0


def test_log_target_equals_probabilities():
    lp, t = _dists(2)
    for fn in (
        L.kl_divergence,
        L.reverse_kl_divergence,
        L.jensen_shannon_divergence,
        L.total_variation_distance,
        L.hellinger_distance,
        L.alpha_divergence,
        L.renyi_divergence,
    ):
        assert_close(fn(lp, jnp.log(t), log_target=True), fn(lp, t), rtol=1e-5, atol=1e-6, err=fn.__name__)


def test_closed_forms():
    p = jnp.log(jnp.array([[0.75, 0.25]]))
    t = jnp.array([[0.5, 0.5]])
    kl = 0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25)
    rkl = 0.75 * np.log(0.75 / 0.5) + 0.25 * np.log(0.25 / 0.5)
    assert_close(L.kl_divergence(p, t), [kl], rtol=1e-6)
    assert_close(L.reverse_kl_divergence(p, t), [rkl], rtol=1e-6)
    assert_close(L.total_variation_distance(p, t), [0.25], rtol=1e-6)
    h2 = 0.5 * ((np.sqrt(0.75) - np.sqrt(0.5)) ** 2 + (np.sqrt(0.25) - np.sqrt(0.5)) ** 2)
    assert_close(L.hellinger_distance(p, t, squared=True), [h2], rtol=1e-6)
    assert_close(L.hellinger_distance(p, t), [np.sqrt(h2)], rtol=1e-6)
    # alpha = 1/2 is 4 H^2 (normalized inputs); the limits alpha -> 1, 0 are the two KLs.
    assert_close(L.alpha_divergence(p, t, alpha=0.5), [4 * h2], rtol=1e-5)
    assert_close(L.alpha_divergence(p, t, alpha=1.0), [kl], rtol=1e-6)
    assert_close(L.alpha_divergence(p, t, alpha=0.0), [rkl], rtol=1e-6)
    assert_close(L.alpha_divergence(p, t, alpha=1.0 + 1e-3), [kl], rtol=2e-3)
    assert_close(L.renyi_divergence(p, t, alpha=1.0), [kl], rtol=1e-6)
    assert_close(L.renyi_divergence(p, t, alpha=1.0 - 1e-3), [kl], rtol=2e-3)
    assert_close(L.renyi_divergence(p, t, alpha=2.0), [np.log(0.25 / 0.75 + 0.25 / 0.25)], rtol=1e-6)
    # JS at alpha = 0.5: disjoint supports give log 2; generalized weights give the mixture entropy.
    one, other = jnp.log(jnp.array([[1.0, 0.0]])), jnp.array([[0.0, 1.0]])
    assert_close(L.jensen_shannon_divergence(one, other), [np.log(2)], rtol=1e-6)
    a = 0.3
    assert_close(
        L.jensen_shannon_divergence(one, other, alpha=a), [-a * np.log(a) - (1 - a) * np.log(1 - a)], rtol=1e-6
    )


def test_hellinger_and_tv_gradients_are_finite_at_identical_distributions():
    lp, _ = _dists(3)
    for fn in (L.hellinger_distance, L.total_variation_distance):
        g = jax.grad(lambda a, f=fn: f(a, lp, log_target=True).sum())(lp)
        assert np.all(np.isfinite(g)) and np.all(np.asarray(g) == 0), fn.__name__


def test_tsallis_entropy():
    z = jnp.array([[1.0, 0.0, -1.0, 2.0]])
    p = np.asarray(jax.nn.softmax(z))
    for q in (0.5, 2.0, 3.0):
        assert_close(L.tsallis_entropy(z, q=q), [(1 - np.sum(p**q)) / (q - 1)], rtol=1e-5)
    assert_close(L.tsallis_entropy(z, q=1.0), [-np.sum(p * np.log(p))], rtol=1e-6)
    assert_close(L.tsallis_entropy(z, q=jnp.full((4,), 2.0)), L.tsallis_entropy(z, q=2.0), rtol=1e-6)
    qs = jnp.array([0.5, 1.0, 2.0, 3.0])  # per class (ADTE): sum_c (p_c - p_c^q_c) / (q_c - 1)
    expect = sum((-pc * np.log(pc)) if qc == 1 else (pc - pc**qc) / (qc - 1) for pc, qc in zip(p[0], np.asarray(qs)))
    assert_close(L.tsallis_entropy(z, q=qs), [expect], rtol=1e-5)
    assert np.all(np.isfinite(jax.grad(lambda a: L.tsallis_entropy(a, q=0.5).sum())(z.at[0, 1].set(-jnp.inf))))


def test_sinkhorn_divergence_properties():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(6, 2)), jnp.float32)
    sd = jax.jit(L.sinkhorn_divergence)  # jitted calls: eager ones compile each op per shape
    assert abs(float(sd(x, x))) < 1e-5
    # A translation: the debiased divergence tends to |shift|^2 as the regularization vanishes.
    shift = jnp.array([1.0, -0.5])
    got = jax.jit(lambda a, b: L.sinkhorn_divergence(a, b, regularization=0.01, num_iterations=500))(
        x, x + shift[None, :]
    )
    assert_close(got, float(jnp.sum(shift**2)), rtol=2e-2)
    # Batched, padded points (predictions_where) equal the sliced clouds.
    y = jnp.asarray(rng.normal(size=(5, 2)), jnp.float32)
    xs = jnp.stack([x, x * 2.0])
    ys = jnp.stack([y, y])
    pad = jnp.asarray([[True] * 4 + [False] * 2, [True] * 6])
    padded = jax.jit(
        jax.value_and_grad(
            lambda a: (
                L.sinkhorn_divergence(a, ys, predictions_where=pad).sum(),
                L.sinkhorn_divergence(a, ys, predictions_where=pad),
            ),
            has_aux=True,
        )
    )
    (_, got), _ = padded(xs)
    assert_close(got[0], sd(x[:4], y), rtol=1e-5, atol=1e-6)
    assert_close(got[1], sd(x * 2.0, y), rtol=1e-5, atol=1e-6)
    _, g = padded(xs.at[0, 5].set(jnp.nan))
    assert np.all(np.isfinite(g)) and np.all(np.asarray(g[0, 4:]) == 0)


def test_cauchy_schwarz_divergence():
    x = jnp.array([[0.0, 0.0], [1.0, 0.0]])
    y = jnp.array([[0.0, 3.0]])
    assert float(L.cauchy_schwarz_divergence(x, x)) == 0.0

    def k(a, b):
        return np.exp(-np.sum((np.asarray(a) - np.asarray(b)) ** 2) / 2.0)

    sxx = sum(k(a, b) for a in x for b in x)
    sxy = sum(k(a, b) for a in x for b in y)
    expect = np.log(sxx) + np.log(1.0) - 2 * np.log(sxy)
    assert_close(L.cauchy_schwarz_divergence(x, y), expect, rtol=1e-5)
    far = L.cauchy_schwarz_divergence(x, y + 100.0)  # kernel sums underflow; log-sum-exp does not
    assert np.isfinite(float(far)) and float(far) > 1e3


def test_bures_wasserstein_closed_forms_and_gradients():
    a = jnp.diag(jnp.array([4.0, 1.0, 9.0]))
    b = jnp.diag(jnp.array([1.0, 1.0, 4.0]))
    assert_close(L.bures_wasserstein_distance(a, b), 1.0 + 0.0 + 1.0, rtol=1e-5)
    assert_close(L.bures_wasserstein_distance(a, b, squared=False), np.sqrt(2.0), rtol=1e-5)
    # d BW^2 / dA at commuting diagonal matrices: I - diag(sqrt(b / a)).
    g = jax.grad(lambda m: L.bures_wasserstein_distance(m, b))(a)
    assert_close(jnp.diag(g), 1 - np.sqrt(np.array([1 / 4, 1.0, 4 / 9])), rtol=1e-4, atol=1e-6)
    # Repeated eigenvalues (identity) and identical inputs: finite, zero gradient.
    eye = jnp.eye(3)
    g = jax.grad(lambda m: L.bures_wasserstein_distance(m, eye))(eye)
    assert np.all(np.isfinite(g)) and np.allclose(g, 0, atol=1e-6)
    # Rank-deficient inputs stay finite (the paper's blow-up becomes the subgradient 0).
    low = jnp.diag(jnp.array([1.0, 0.0, 0.0]))
    g = jax.grad(lambda m: L.bures_wasserstein_distance(m, low))(low)
    assert np.all(np.isfinite(g))


def test_mine_state_and_surrogate_gradient():
    tj = jnp.array([1.0, 2.0, 0.5, 1.5])
    tm = jnp.array([0.0, 0.3, -0.2, 0.1])
    mean_exp = float(jnp.mean(jnp.exp(tm)))
    loss, state = L.mine_lower_bound(tj, tm)  # first batch: the EMA starts at this batch's mean
    assert_close(loss, -(1.25 - np.log(mean_exp)), rtol=1e-6)
    assert_close(jnp.exp(state.log_running_mean), mean_exp, rtol=1e-6)
    old = lossjax.losses.MINEState(jnp.log(jnp.float32(2.0)))
    loss, state = L.mine_lower_bound(tj, tm, state=old, decay=0.9)
    new = 0.9 * 2.0 + 0.1 * mean_exp
    assert_close(jnp.exp(state.log_running_mean), new, rtol=1e-6)
    g = jax.grad(lambda m: L.mine_lower_bound(tj, m, state=old, decay=0.9)[0])(tm)
    assert_close(g, np.exp(np.asarray(tm)) / (new + 1e-6) / 4, rtol=1e-5)  # the EMA in the denominator
    g = jax.grad(lambda m: L.mine_lower_bound(tj, m, variant="mine_biased")[0])(tm)
    assert_close(g, np.exp(np.asarray(tm)) / np.sum(np.exp(np.asarray(tm))), rtol=1e-5)
    f, same = L.mine_lower_bound(tj, tm, state=old, variant="mine_f")
    assert_close(f, -(1.25 - np.mean(np.exp(np.asarray(tm) - 1))), rtol=1e-6)
    assert float(same.log_running_mean) == float(old.log_running_mean)
    big, _ = L.mine_lower_bound(tj, tm + 200.0)  # exp(200) overflows float32; the log-domain state does not
    assert np.isfinite(float(big))


def test_itakura_saito_and_bfn():
    v, g = jnp.array([0.0, 1.0, -2.0]), jnp.array([1.0, 1.0, 0.0])
    u = 0.5 * (np.asarray(v) - np.asarray(g))
    assert_close(L.itakura_saito_value_loss(v, g, risk_aversion=0.5), np.exp(u) - u - 1, rtol=1e-6)
    x = jnp.zeros((2, 3))
    xh = jnp.ones((2, 3))
    s1 = 0.1
    expect = -np.log(s1) * s1 ** (-2 * np.array([0.0, 0.5])) * 3.0
    assert_close(L.bayesian_flow_loss(xh, x, jnp.array([0.0, 0.5]), sigma_1=s1), expect, rtol=1e-5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: L.kl_divergence(jnp.zeros((2, 3)), jnp.zeros((2, 4))), "same shape"),
        (lambda: L.kl_divergence(jnp.zeros((2, 3)), jnp.zeros((2, 3), jnp.int32)), "float"),
        (lambda: L.kl_divergence(jnp.zeros((2, 3)), jnp.zeros((2, 3)), axis=2), "axis"),
        (lambda: L.jensen_shannon_divergence(jnp.zeros((2, 3)), jnp.zeros((2, 3)), alpha=1.0), "alpha"),
        (lambda: L.alpha_divergence(jnp.zeros((2, 3)), jnp.zeros((2, 3)), alpha=float("nan")), "alpha"),
        (lambda: L.tsallis_entropy(jnp.zeros((2, 3)), q=0.0), "`q`"),
        (lambda: L.sinkhorn_divergence(jnp.zeros((4, 2)), jnp.zeros((4, 3))), "share"),
        (lambda: L.sinkhorn_divergence(jnp.zeros((4, 2)), jnp.zeros((4, 2)), num_iterations=0), "num_iterations"),
        (lambda: L.cauchy_schwarz_divergence(jnp.zeros((4, 2)), jnp.zeros((4, 2)), bandwidth=0.0), "bandwidth"),
        (lambda: L.bures_wasserstein_distance(jnp.zeros((2, 3)), jnp.zeros((2, 3))), "square"),
        (lambda: L.mine_lower_bound(jnp.zeros(3), jnp.zeros(4)), "same shape"),
        (lambda: L.mine_lower_bound(jnp.zeros(3), jnp.zeros(3), variant="dv"), "variant"),
        (lambda: L.bayesian_flow_loss(jnp.zeros((2, 3)), jnp.zeros((2, 3)), jnp.zeros(3)), "times"),
    ],
)
def test_errors_name_the_function_and_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
