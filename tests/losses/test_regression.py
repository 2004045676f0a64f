"""Regression family: golden values (upstream libraries), optax parity, kinks, closed forms, errors.

Golden numbers: tests/reference/regression.json, written by
tests/reference/make_regression.py (torch.nn.functional, auraloss, properscoring,
scikit-learn, scikit-survival, scipy, optax in float64, and pinned ports).
"""

from __future__ import annotations

import json
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from lossjax import losses as L
from lossjax.testing import assert_close

REF = json.loads((pathlib.Path(__file__).parents[1] / "reference" / "regression.json").read_text())
TUPLE_KWARGS = {"axis", "fft_sizes", "hop_sizes", "win_lengths", "quantiles"}
RNG = np.random.default_rng(7)


def _decode(x):
    if isinstance(x, dict) and "data" in x:
        data = [np.nan if v is None else float(v) if isinstance(v, str) else v for v in x["data"]]
        return np.asarray(data, dtype=x["dtype"]).reshape(x["shape"])
    return x


def _kwargs(case):
    out = {}
    for k, v in case["kwargs"].items():
        v = _decode(v)
        out[k] = tuple(v) if k in TUPLE_KWARGS and isinstance(v, list) else v
    return out


def _cotangent(shape):
    n = int(np.prod(shape)) if len(shape) else 1
    return (1.0 + 0.5 * np.cos(np.arange(n))).reshape(shape) if len(shape) else np.asarray(1.0)


def run_case(case, dtype):
    """lossjax's value and gradients of sum(cotangent * value) on a golden case, inputs cast to ``dtype``."""
    fn = getattr(L, case["name"])
    args = [_decode(a) for a in case["args"]]
    args = [jnp.asarray(a, dtype) if a.dtype.kind == "f" else jnp.asarray(a) for a in args]
    diff = tuple(case["diff_argnums"])
    kwargs = _kwargs(case)

    def objective(*d):
        full = list(args)
        for i, x in zip(diff, d):
            full[i] = x
        out = fn(*full, **kwargs)
        return jnp.sum(jnp.asarray(_cotangent(out.shape), out.dtype) * out), out

    (_, out), grads = jax.value_and_grad(objective, argnums=tuple(range(len(diff))), has_aux=True)(
        *(args[i] for i in diff)
    )
    return out, grads


CASES = [pytest.param(c, id=f"{c['name']}-{i}") for i, c in enumerate(REF["cases"])]


@pytest.mark.parametrize("case", CASES)
def test_golden_float32(case):
    out, grads = run_case(case, jnp.float32)
    assert out.dtype == jnp.float32
    tol = {"rtol": 2e-4, "atol": 2e-5}
    if case["name"] == "multi_resolution_stft_loss":
        tol = {"rtol": 1e-3, "atol": 1e-3}  # float32 FFTs vs near-silent bins (see the sample's value_tol)
    assert_close(out, _decode(case["value"]), err=f"{case['name']} value", **tol)
    for g, e in zip(grads, case["grads"]):
        assert_close(g, _decode(e), err=f"{case['name']} grad", **tol)


@pytest.mark.parametrize("case", CASES)
def test_golden_float64(case):
    with jax.enable_x64(True):
        out, grads = run_case(case, jnp.float64)
        assert out.dtype == jnp.float64
        assert_close(out, _decode(case["value"]), dtype=jnp.float64, err=f"{case['name']} value", rtol=1e-9)
        for g, e in zip(grads, case["grads"]):
            assert_close(g, _decode(e), dtype=jnp.float64, err=f"{case['name']} grad", rtol=1e-9, atol=1e-10)


def test_golden_covers_the_upstream_semantics():
    names = {c["name"] for c in REF["cases"]}
    assert {
        "huber_loss",
        "smooth_l1_loss",
        "gaussian_nll_loss",
        "poisson_nll_loss",
        "crps_gaussian_loss",
        "cox_partial_likelihood_loss",
        "multi_resolution_stft_loss",
        "tweedie_deviance_loss",
        "student_t_nll_loss",
    } <= names
    assert max(c["cross_check"] for c in REF["cases"]) < 1e-9


def test_family_is_listed():
    names = lossjax.available(family="regression")
    for n in ("huber_loss", "l2_loss", "squared_error", "pinball_loss", "cox_partial_likelihood_loss"):
        assert n in names
    assert lossjax.registry.get_entry("log_cosh") is lossjax.registry.get_entry("log_cosh_loss")
    assert L.log_cosh is L.log_cosh_loss  # optax's name


# ------------------------------------------------------------------ optax parity (optax is a core dependency) --

P = RNG.normal(size=(5, 4)).astype(np.float32) * 3
T = RNG.normal(size=(5, 4)).astype(np.float32)


@pytest.mark.parametrize(
    ("ours", "theirs", "kw"),
    [
        (L.squared_error, optax.losses.squared_error, {}),
        (L.l2_loss, optax.losses.l2_loss, {}),
        (L.huber_loss, optax.losses.huber_loss, {"delta": 1.0}),
        (L.huber_loss, optax.losses.huber_loss, {"delta": 0.3}),
        (L.log_cosh_loss, optax.losses.log_cosh, {}),
    ],
)
def test_optax_parity_values_gradients_and_default_targets(ours, theirs, kw):
    for p in (P, P * 1e3):
        assert_close(ours(p, T, **kw), theirs(p, T, **kw))
        assert_close(ours(p, **kw), theirs(p, **kw))  # targets=None means zeros, as in optax
        g1 = jax.grad(lambda x: ours(x, T, **kw).sum())(p)
        g2 = jax.grad(lambda x: theirs(x, T, **kw).sum())(p)
        assert_close(g1, g2)


# ------------------------------------------------------------------ kinks: the documented subgradients --


def test_huber_kink_gradient_is_clip_and_never_nan():
    e = jnp.array([-3.0, -1.0, -0.25, 0.0, 0.25, 1.0, 3.0])
    g = jax.grad(lambda x: L.huber_loss(x, delta=1.0).sum())(e)
    assert_close(g, jnp.clip(e, -1.0, 1.0))  # +-delta exactly at |e| = delta, 0 at 0
    g = jax.grad(lambda x: L.quantile_huber_loss(x, jnp.zeros(7), quantiles=0.3, delta=1.0).sum())(e)
    assert np.all(np.isfinite(g)) and float(g[3]) == 0.0


def test_smooth_l1_is_huber_over_beta_and_l1_at_beta_zero():
    e = jnp.array([-3.0, -1.0, -0.25, 0.0, 0.25, 1.0, 3.0])
    assert_close(L.smooth_l1_loss(e, beta=0.5), L.huber_loss(e, delta=0.5) / 0.5)
    assert_close(L.smooth_l1_loss(e, beta=0.0), jnp.abs(e))
    g = jax.grad(lambda x: L.smooth_l1_loss(x, beta=1.0).sum())(e)
    assert_close(g, jnp.clip(e, -1.0, 1.0))
    g0 = jax.grad(lambda x: L.smooth_l1_loss(x, beta=0.0).sum())(e)
    assert_close(g0, jnp.sign(e))  # 0 at e = 0


def test_absolute_error_gradient_at_zero_is_zero():
    g = jax.grad(lambda x: L.absolute_error(x, jnp.array([0.0, 1.0, 0.0])).sum())(jnp.array([0.0, 1.0, 2.0]))
    assert_close(g, [0.0, 0.0, 1.0])
    g = jax.grad(lambda x: L.absolute_percentage_error(x, jnp.array([2.0])).sum())(jnp.array([2.0]))
    assert float(g[0]) == 0.0


@pytest.mark.parametrize("tau", [0.1, 0.5, 0.9])
def test_pinball_subgradient_at_zero_is_the_midpoint(tau):
    p = jnp.array([0.0, 1.0, -1.0])
    y = jnp.array([0.0, 0.0, 0.0])
    gp, gy = jax.grad(lambda a, b: L.pinball_loss(a, b, quantiles=tau).sum(), argnums=(0, 1))(p, y)
    # r = y - p: above the target the slope is 1 - tau, below it -tau; at r = 0 the midpoint 1/2 - tau.
    assert_close(gp, [0.5 - tau, 1.0 - tau, -tau])
    assert_close(gy, [tau - 0.5, tau - 1.0, tau])


def test_pinball_many_quantiles_and_median_is_half_absolute_error():
    q = jnp.asarray(RNG.normal(size=(4, 3)), jnp.float32)
    y = jnp.asarray(RNG.normal(size=(4,)), jnp.float32)
    levels = (0.1, 0.5, 0.9)
    many = L.pinball_loss(q, y, quantiles=levels)
    assert many.shape == (4, 3)
    for k, tau in enumerate(levels):
        assert_close(many[:, k], L.pinball_loss(q[:, k], y, quantiles=tau))
    assert_close(L.pinball_loss(q[:, 0], y, quantiles=0.5), 0.5 * jnp.abs(q[:, 0] - y))
    # targets with the quantile axis (one observation per column) give the same.
    assert_close(L.pinball_loss(q, jnp.broadcast_to(y[:, None], (4, 3)), quantiles=levels), many)


def test_pinball_minimizer_is_the_quantile():
    y = jnp.asarray(np.random.default_rng(0).normal(size=4001), jnp.float32)
    grid = jnp.linspace(-2.5, 2.5, 1001)
    risk = jax.vmap(lambda q: L.pinball_loss(jnp.full_like(y, q), y, quantiles=0.9).mean())(grid)
    assert abs(float(grid[jnp.argmin(risk)]) - float(jnp.quantile(y, 0.9))) < 0.02


def test_weighted_interval_score_identity():
    # Bracher et al. 2021: WIS = (0.5 |y - m| + sum_k alpha_k/2 IS_alpha_k) / (K + 1/2) = sum of pinball / (K + 1/2).
    y, m, lo, hi, alpha = 0.3, 0.5, -1.0, 0.2, 0.4
    interval = (hi - lo) + 2 / alpha * (lo - y) * (y < lo) + 2 / alpha * (y - hi) * (y > hi)
    wis = (0.5 * abs(y - m) + alpha / 2 * interval) / 1.5
    pin = L.pinball_loss(jnp.array([[lo, m, hi]]), jnp.array([y]), quantiles=(alpha / 2, 0.5, 1 - alpha / 2))
    assert_close(pin.sum() / 1.5, wis)


def test_quantile_huber_tends_to_pinball_and_expectile_half_is_half_mse():
    p, y = jnp.asarray(P[:, :3]), jnp.asarray(T[:, 0])
    levels = (0.2, 0.5, 0.7)
    qh = L.quantile_huber_loss(p, y, quantiles=levels, delta=1e-4)
    assert_close(qh, L.pinball_loss(p, y, quantiles=levels), atol=1e-4)
    assert_close(L.expectile_loss(P, T, expectile=0.5), 0.5 * L.squared_error(P, T))
    under = L.expectile_loss(jnp.zeros(1), jnp.ones(1), expectile=0.9)  # y > y_hat costs tau
    over = L.expectile_loss(jnp.ones(1), jnp.zeros(1), expectile=0.9)
    assert_close(under, [0.9])
    assert_close(over, [0.1])


# ------------------------------------------------------------------ robust losses --


def test_pseudo_huber_is_stable_small_and_matches_forms():
    e = jnp.array([1e-4, 1e-2, 1.0, 50.0], jnp.bfloat16)
    got = L.pseudo_huber_loss(e, delta=1.0)
    assert got.dtype == jnp.float32
    x = np.asarray(e, np.float64)
    assert_close(got, np.sqrt(x**2 + 1) - 1, rtol=1e-5)
    # Huber-like: r^2 / (2 delta) near 0, |r| - delta far away.
    assert_close(L.pseudo_huber_loss(jnp.array([1e-3]), delta=2.0), [1e-6 / 4], rtol=1e-4)
    # a per-example delta aligned with the leading axis (a scheduled c(t)).
    d = jnp.array([0.5, 2.0])
    per = L.pseudo_huber_loss(jnp.ones((2, 3)), delta=d)
    assert_close(per[0], jnp.full(3, math.sqrt(1.25) - 0.5))
    assert_close(per[1], jnp.full(3, math.sqrt(5.0) - 2.0))
    # iCT's norm form over the sample axes.
    v = jnp.asarray(RNG.normal(size=(3, 4, 5)), jnp.float32)
    ict = L.pseudo_huber_loss(v, delta=0.03, axis=(1, 2))
    assert_close(ict, jnp.sqrt(jnp.sum(v**2, axis=(1, 2)) + 0.03**2) - 0.03)


def test_cauchy_redescends():
    g = jax.grad(lambda x: L.cauchy_loss(x, delta=1.0).sum())(jnp.array([0.5, 1.0, 10.0, 100.0]))
    assert_close(g, 2 * np.array([0.5, 1.0, 10.0, 100.0]) / (1 + np.array([0.25, 1.0, 100.0, 1e4])))
    assert float(g[3]) < float(g[1])


def test_pseudo_huber_schedule_closed_forms():
    t = jnp.array([0, 250, 999])
    ac = jnp.asarray(np.cumprod(1 - np.linspace(1e-4, 0.02, 1000)), jnp.float32)
    got = L.pseudo_huber_delta_schedule(t, variant="snr", delta=0.1, alphas_cumprod=ac)
    a = np.asarray(ac, np.float64)[[0, 250, 999]]
    sig = np.sqrt((1 - a) / a)
    assert_close(got, 0.9 / (1 + sig) ** 2 + 0.1)
    assert_close(
        L.pseudo_huber_delta_schedule(t, variant="exponential", delta=0.1), 0.1 ** (np.array([0, 250, 999]) / 1000)
    )
    assert_close(L.pseudo_huber_delta_schedule(t, variant="constant", delta=0.3), [0.3, 0.3, 0.3])


# ------------------------------------------------------------------ likelihoods and scores --


def test_gaussian_nll_variance_floor_passes_the_gradient_through():
    mu, y = jnp.array([0.0, 0.0]), jnp.array([1e-4, 0.5])
    var = jnp.array([1e-9, 0.25])
    g = jax.grad(lambda v: L.gaussian_nll_loss(mu, y, v, epsilon=1e-6).sum())(var)
    # PyTorch: the loss at the clamped variance, its derivative passed to var unchanged.
    vc = np.array([1e-6, 0.25])
    e2 = np.array([1e-8, 0.25])
    assert_close(g, 0.5 * (1 / vc - e2 / vc**2), rtol=1e-4)
    full = L.gaussian_nll_loss(mu, y, var, full=True) - L.gaussian_nll_loss(mu, y, var)
    assert_close(full, [0.5 * math.log(2 * math.pi)] * 2)


def test_gaussian_nll_shape_rules_follow_pytorch():
    p, y = jnp.asarray(P), jnp.asarray(T)
    row = jnp.asarray(RNG.uniform(0.5, 2.0, size=(5,)), jnp.float32)
    assert_close(L.gaussian_nll_loss(p, y, row), L.gaussian_nll_loss(p, y, row[:, None]))
    assert_close(L.gaussian_nll_loss(p, y, 2.0), L.gaussian_nll_loss(p, y, jnp.full((5, 4), 2.0)))
    with pytest.raises(ValueError, match="gaussian_nll_loss: `variances`"):
        L.gaussian_nll_loss(p, y, jnp.ones((4,)))


def test_student_t_is_robust_and_tends_to_gaussian():
    y = jnp.array([0.0, 50.0])
    g_t = jax.grad(lambda m: L.student_t_nll_loss(m, y, jnp.ones(2), 3.0).sum())(jnp.zeros(2))
    g_n = jax.grad(lambda m: L.gaussian_nll_loss(m, y, jnp.ones(2)).sum())(jnp.zeros(2))
    assert abs(float(g_t[1])) < 0.1 < abs(float(g_n[1]))  # the outlier's pull is bounded
    big = L.student_t_nll_loss(jnp.zeros(1), jnp.array([0.7]), jnp.ones(1), 1e6)
    assert_close(big, L.gaussian_nll_loss(jnp.zeros(1), jnp.array([0.7]), jnp.ones(1), full=True), rtol=1e-4)


def test_crps_limits():
    mu, y = jnp.array([0.0, 1.0, -2.0]), jnp.array([1.5, 1.0, 3.0])
    assert_close(L.crps_gaussian_loss(mu, y, jnp.zeros(3)), jnp.abs(y - mu))  # a point forecast: MAE
    g = jax.grad(lambda s: L.crps_gaussian_loss(mu, y, s).sum())(jnp.zeros(3))
    assert np.all(np.isfinite(g))
    assert_close(
        g, [-1 / math.sqrt(math.pi), 2 / math.sqrt(2 * math.pi) - 1 / math.sqrt(math.pi), -1 / math.sqrt(math.pi)]
    )
    # y = mu: s (2 phi(0) - 1/sqrt(pi)).
    assert_close(
        L.crps_gaussian_loss(jnp.zeros(1), jnp.zeros(1), jnp.array([2.0])),
        [2 * (2 / math.sqrt(2 * math.pi) - 1 / math.sqrt(math.pi))],
    )
    # one ensemble member: |x - y|.
    assert_close(L.crps_ensemble_loss(mu[:, None], y), jnp.abs(y - mu))


def test_poisson_stirling_only_above_one():
    x, y = jnp.zeros(3), jnp.array([0.0, 1.0, 4.0])
    diff = L.poisson_nll_loss(x, y, full=True) - L.poisson_nll_loss(x, y)
    assert_close(diff, [0.0, 0.0, 4 * math.log(4) - 4 + 0.5 * math.log(2 * math.pi * 4)])
    assert_close(L.poisson_nll_loss(jnp.array([2.0]), jnp.array([3.0]), log_input=False), [2 - 3 * math.log(2 + 1e-8)])


def test_tweedie_special_powers_and_rejects_the_gap():
    mu, y = jnp.array([0.5, 1.0, 2.0]), jnp.array([0.2, 1.0, 3.0])
    assert_close(L.tweedie_deviance_loss(mu, y, power=0.0), (y - mu) ** 2)
    assert_close(
        L.tweedie_deviance_loss(jnp.log(mu), y, power=1.0, log_input=True), L.tweedie_deviance_loss(mu, y, power=1.0)
    )
    with jax.enable_x64(True):  # the general formula cancels near p = 1 (terms ~ 1/(1-p)): float64 here
        mu64, y64 = mu.astype(jnp.float64), y.astype(jnp.float64)
        near = L.tweedie_deviance_loss(mu64, y64, power=1.0 + 1e-5)
        assert_close(near, L.tweedie_deviance_loss(mu64, y64, power=1.0), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match=r"tweedie_deviance_loss: `power`.*p <= 0 or p >= 1"):
        L.tweedie_deviance_loss(mu, y, power=0.5)


# ------------------------------------------------------------------ survival --

ETA = jnp.asarray(RNG.normal(size=(8,)), jnp.float32)
TIMES = jnp.array([5.0, 3.0, 3.0, 8.0, 1.0, 3.0, 6.0, 5.0])
EVENTS = jnp.array([1, 1, 0, 1, 1, 1, 0, 1])


def test_cox_invariances_and_ties():
    base = L.cox_partial_likelihood_loss(ETA, TIMES, EVENTS)
    assert_close(L.cox_partial_likelihood_loss(ETA + 3.0, TIMES, EVENTS), base)  # only risk differences matter
    assert_close(L.cox_partial_likelihood_loss(ETA, TIMES * 2 + 1, EVENTS), base)  # only the order of times
    distinct = jnp.arange(8.0)
    assert_close(
        L.cox_partial_likelihood_loss(ETA, distinct, EVENTS, variant="efron"),
        L.cox_partial_likelihood_loss(ETA, distinct, EVENTS),
    )
    assert float(L.cox_partial_likelihood_loss(ETA, TIMES, jnp.zeros(8, jnp.int32))) == 0.0  # no events
    perm = np.random.default_rng(1).permutation(8)
    for variant in ("breslow", "efron"):
        assert_close(
            L.cox_partial_likelihood_loss(ETA[perm], TIMES[perm], EVENTS[perm], variant=variant),
            L.cox_partial_likelihood_loss(ETA, TIMES, EVENTS, variant=variant),
        )


def test_cox_weights_and_bool_events_closed_form():
    eta = jnp.array([0.5, -0.2, 1.0])
    t = jnp.array([1.0, 2.0, 3.0])
    ev = jnp.array([True, True, False])
    w = jnp.array([2.0, 1.0, 5.0])
    e = np.exp(np.array([0.5, -0.2, 1.0]))
    terms = np.array([0.5 - np.log(e.sum()), -0.2 - np.log(e[1:].sum())])
    want = -(2 * terms[0] + 1 * terms[1]) / 3
    assert_close(L.cox_partial_likelihood_loss(eta, t, ev, weights=w), want)


def test_cox_stable_for_large_scores():
    g = jax.grad(lambda e: L.cox_partial_likelihood_loss(e, TIMES, EVENTS, variant="efron"))(ETA * 1e4)
    assert np.all(np.isfinite(g))


def test_inverse_censoring_weights():
    got = L.inverse_censoring_weighted_mse(
        jnp.ones(3), jnp.array([2.0, 2.0, 2.0]), jnp.array([1, 0, 1]), jnp.array([0.5, 0.5, 0.0])
    )
    assert_close(got, [2.0, 0.0, 1e6])  # G clipped at epsilon


# ------------------------------------------------------------------ time series, audio, finance --


def test_signal_decay_weights():
    got = L.signal_decay_l1_loss(jnp.ones((2, 4, 3)), jnp.zeros((2, 4, 3)))
    assert_close(got, jnp.full(2, np.mean(1 / np.sqrt(np.arange(1, 5)))))


def test_mr_stft_properties():
    x = jnp.asarray(RNG.normal(size=(2, 3, 256)), jnp.float32)
    y = jnp.asarray(RNG.normal(size=(2, 3, 256)), jnp.float32)
    kw = {"fft_sizes": (64, 32), "hop_sizes": (16, 8), "win_lengths": (48, 32)}
    assert float(L.multi_resolution_stft_loss(x, x, **kw)) == 0.0
    g = jax.grad(lambda a: L.multi_resolution_stft_loss(a, x, **kw))(x)
    assert np.all(np.isfinite(g)) and float(jnp.abs(g).max()) == 0.0
    assert_close(
        L.multi_resolution_stft_loss(x, y, **kw),
        L.multi_resolution_stft_loss(x.reshape(6, 256), y.reshape(6, 256), **kw),
    )
    with pytest.raises(ValueError, match="longer than half the largest FFT size"):
        L.multi_resolution_stft_loss(x[..., :20], y[..., :20], **kw)


def test_madl_and_gmadl():
    r_hat = jnp.array([0.01, -0.02, 0.03])
    r = jnp.array([0.02, 0.01, -0.04])
    assert_close(L.mean_absolute_directional_loss(r_hat, r), [-0.02, 0.01, 0.04])
    # GMADL with a huge slope and b = 1 is MADL / 2 (sigmoid -> step, minus 1/2).
    assert_close(
        L.generalized_mean_absolute_directional_loss(r_hat, r, sharpness=1e9),
        0.5 * L.mean_absolute_directional_loss(r_hat, r),
    )
    g = jax.grad(lambda a: L.generalized_mean_absolute_directional_loss(a, r, sharpness=50.0).sum())(r_hat)
    assert np.all(np.sign(np.asarray(g)) == -np.sign(np.asarray(r)))  # push forecasts toward the realized sign


# ------------------------------------------------------------------ batch-level metrics --


def test_batch_metrics_closed_forms():
    p, y = jnp.asarray(P), jnp.asarray(T)
    e = np.asarray(P, np.float64) - np.asarray(T, np.float64)
    t = np.asarray(T, np.float64)
    assert_close(L.root_mean_squared_error(p, y), np.sqrt(np.mean(e**2)))
    assert_close(L.relative_squared_error(p, y), np.sum(e**2) / np.sum((t - t.mean()) ** 2))
    assert_close(L.relative_absolute_error(p, y), np.sum(np.abs(e)) / np.sum(np.abs(t - t.mean())))
    rmse = np.sqrt(np.mean(e**2))
    assert_close(L.normalized_root_mean_squared_error(p, y), rmse / (t.max() - t.min()))
    assert_close(
        L.normalized_root_mean_squared_error(p, y, variant="std"), np.sqrt(float(L.relative_squared_error(p, y)))
    )
    assert_close(L.relative_root_mean_squared_error(p, y), np.sqrt(np.sum(e**2) / np.sum(t**2)))
    g = jax.grad(lambda a: L.root_mean_squared_error(a, y))(y)  # a perfect fit: gradient 0, not NaN
    assert float(jnp.abs(g).max()) == 0.0
    const = jnp.ones((4, 2))
    assert np.isfinite(float(L.relative_squared_error(const + 1, const)))  # constant targets: epsilon


def test_batch_metrics_mask_whole_examples():
    p, y = jnp.asarray(P), jnp.asarray(T)
    keep = jnp.array([True, False, True, True, False])
    for fn in (L.root_mean_squared_error, L.relative_absolute_error, L.normalized_root_mean_squared_error):
        assert_close(fn(p, y, where=keep), fn(p[np.asarray(keep)], y[np.asarray(keep)]))


# ------------------------------------------------------------------ the rest --


def test_aggregate_response_instance_level_is_bag_level_plus_variance():
    f = jnp.array([1.0, 2.0, 4.0, 0.0, 2.0, 1.0])
    bags = jnp.array([0, 0, 1, 1, 2, 2])  # equal bag sizes
    ybar = jnp.array([1.0, 3.0, 0.5])
    bag = L.aggregate_response_loss(f, bags, ybar, bag_weight=1.0)
    inst = L.aggregate_response_loss(f, bags, ybar, bag_weight=0.0)
    within = np.mean([0.25, 0.25, 4.0, 4.0, 0.25, 0.25])  # (f_i - mean_b f)^2
    assert_close(inst, bag + within)
    assert_close(L.aggregate_response_loss(f, bags, ybar, bag_weight=0.25), 0.25 * bag + 0.75 * inst)


def test_r2ccp_handles_empty_bins_and_entropy_sign():
    z = jnp.array([[0.0, -jnp.inf, 1.0]])
    c = jnp.array([-1.0, 0.0, 1.0])
    out, g = jax.value_and_grad(lambda a: L.regression_as_classification_loss(a, jnp.array([0.2]), c).sum())(z)
    assert np.isfinite(float(out)) and np.all(np.isfinite(g)) and float(g[0, 1]) == 0.0
    flat = jnp.zeros((1, 3))
    ent = L.regression_as_classification_loss(flat, jnp.zeros(1), c, distance_weight=0.0, entropy_weight=1.0)
    assert_close(ent, [-math.log(3.0)])  # + tau sum p log p: uniform bins lower it the most


def test_vagram_value_gradients_get_no_gradient():
    s_hat = jnp.asarray(RNG.normal(size=(3, 4)), jnp.float32)
    s, g = jnp.zeros((3, 4)), jnp.asarray(RNG.normal(size=(3, 4)), jnp.float32)
    dg = jax.grad(lambda v: L.value_gradient_weighted_model_loss(s_hat, s, v).sum())(g)
    assert float(jnp.abs(dg).max()) == 0.0
    first = L.value_gradient_weighted_model_loss(s_hat, s, g, variant="first_order")
    assert_close(first, jnp.sum(g * s_hat, -1) ** 2)


def test_sobolev_order_zero_is_mse_and_lasso_variants():
    a = jnp.asarray(RNG.normal(size=(2, 4, 6)), jnp.float32)
    assert_close(L.negative_sobolev_norm_loss(a, jnp.zeros_like(a), order=0.0), jnp.mean(a**2, axis=(1, 2)))
    r = jnp.array([3.0, -4.0])
    x = jnp.array([1.0, -2.0])
    b = jnp.zeros(2)
    assert_close(L.lasso_objective(r, b, x, variant="sqrt_lasso", regularizer_weight=0.5), 5.0 + 1.5)
    assert_close(
        L.lasso_objective(
            r, b, x, variant="lad_lasso", regularizer_weight=0.5, coefficient_weights=jnp.array([2.0, 0.0])
        ),
        7.0 + 1.0,
    )


# ------------------------------------------------------------------ errors --


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: L.huber_loss(P, T, delta=0.0), r"huber_loss: `delta` must be > 0, got 0.0"),
        (lambda: L.huber_loss(P, T, delta=float("nan")), r"huber_loss: `delta` must be a finite number"),
        (lambda: L.smooth_l1_loss(P, T, beta=-1.0), r"smooth_l1_loss: `beta` must be >= 0"),
        (lambda: L.squared_error(P, T[:, :3]), r"squared_error: `targets` must be a scalar or have the rank"),
        (lambda: L.squared_error(P, T[0]), r"squared_error: `targets` .* got shape \(4,\)"),
        (lambda: L.l2_loss(np.ones(3, np.int32)), r"l2_loss: argument `predictions` must have a float dtype"),
        (lambda: L.pinball_loss(P, T, quantiles=1.0), r"pinball_loss: `quantiles` must lie in \(0.0, 1.0\)"),
        (lambda: L.pinball_loss(P, T[:, 0], quantiles=(0.1, 0.9)), r"pinball_loss: with 2 `quantiles`"),
        (lambda: L.expectile_loss(P, T, expectile=1.2), r"expectile_loss: `expectile` must lie in"),
        (lambda: L.gaussian_nll_loss(P, T, 1.0, full=1), r"gaussian_nll_loss: `full` must be True or False"),
        (lambda: L.poisson_nll_loss(P, T, epsilon=0.0), r"poisson_nll_loss: `epsilon` must be > 0"),
        (lambda: L.normalized_root_mean_squared_error(P, T, variant="max"), r"`variant` must be one of"),
        (lambda: L.cox_partial_likelihood_loss(ETA, TIMES, EVENTS, variant="exact"), r"`variant` must be one of"),
        (
            lambda: L.cox_partial_likelihood_loss(ETA, TIMES[:4], EVENTS),
            r"cox_partial_likelihood_loss: argument `times`",
        ),
        (lambda: L.cox_partial_likelihood_loss(ETA[:, None], TIMES, EVENTS), r"`predictions` must have rank 1"),
        (
            lambda: L.multi_resolution_stft_loss(P, T, fft_sizes=(4, 8), hop_sizes=(1,), win_lengths=(4, 8)),
            r"one entry per resolution",
        ),
        (
            lambda: L.multi_resolution_stft_loss(P, T, fft_sizes=(4,), hop_sizes=(1,), win_lengths=(8,)),
            r"`win_lengths` must be <= its FFT size",
        ),
        (lambda: L.multi_resolution_stft_loss(P, T, window="kaiser_window"), r"`window` must be one of"),
        (lambda: L.signal_decay_l1_loss(P, T, axis=0), r"signal_decay_l1_loss: `axis` must not include the batch"),
        (lambda: L.signal_decay_l1_loss(P[:, 0], T[:, 0]), r"signal_decay_l1_loss: `predictions` must have rank >= 2"),
        (lambda: L.pseudo_huber_delta_schedule(jnp.arange(3)), r"variant='snr' needs `alphas_cumprod`"),
        (lambda: L.aggregate_response_loss(P[:, 0], jnp.zeros(5), T[:2, 0]), r"argument `bags` must have a int dtype"),
        (lambda: L.lasso_objective(P, T, T[0]), r"lasso_objective: `predictions` must be the measurements"),
        (lambda: L.crps_ensemble_loss(P, T), r"crps_ensemble_loss: `targets`"),
    ],
)
def test_errors_name_the_function_and_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_registry_specs_round_trip():
    spec = lossjax.get("pinball_loss(quantiles=[0.1, 0.5, 0.9])")
    q = jnp.asarray(RNG.normal(size=(3, 3)), jnp.float32)
    y = jnp.zeros(3)
    assert_close(spec(q, y), L.pinball_loss(q, y, quantiles=(0.1, 0.5, 0.9)))
    rebuilt = lossjax.registry.from_config(spec.to_config())
    assert_close(rebuilt(q, y), spec(q, y))
    assert_close(lossjax.get("huber(delta=0.5)")(P, T), L.huber_loss(P, T, delta=0.5))
