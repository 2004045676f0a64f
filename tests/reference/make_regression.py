"""Reference implementations of the regression family, and the golden cases of ``tests/losses/test_regression.py``.

Run in the reference environment (never at test time; it does not import lossjax)::

    python tests/reference/make_regression.py            # writes tests/reference/regression.json

``REFERENCES`` maps each registered name to ``(fn, source)``: ``fn(*args, **kwargs)``
takes float64 torch tensors (lossjax's argument names and hyperparameters) and
returns the loss as a torch tensor, differentiable with torch autograd;
``source`` names the upstream call or the pinned port. ``CROSS_CHECKS`` maps a
name to the upstream library call that the torch function is checked against
(values, float64): optax run in float64, scikit-learn, scikit-survival,
properscoring, scipy. ``make_expected_regression.py`` reuses both for the
conformance expectations.

Upstream calls (pinned versions: torch 2.13.0, optax 0.2.8, scikit-learn 1.9.1,
scikit-survival 0.28.0, properscoring 0.1, scipy 1.17.1, auraloss 0.4.0):

- ``torch.nn.functional``: ``mse_loss``, ``l1_loss``, ``huber_loss``, ``smooth_l1_loss``,
  ``gaussian_nll_loss``, ``poisson_nll_loss`` (``reduction="none"``);
  ``torch.distributions.Laplace`` / ``StudentT`` (``-log_prob``);
- ``optax.losses``: ``squared_error``, ``l2_loss``, ``huber_loss``, ``log_cosh`` (cross-checks);
- ``auraloss.freq.MultiResolutionSTFTLoss`` (called, float64);
- ``properscoring.crps_gaussian`` (value and its analytic gradient), ``crps_ensemble``;
- ``sksurv.linear_model.coxph.CoxPHOptimizer.nlog_likelihood`` (Breslow/Efron; cross-check);
- ``sklearn.metrics``: MAPE, MSLE, RMSE, RMSLE, ``r2_score``, ``mean_tweedie_deviance`` (cross-checks);
- ``scipy.stats.t.logpdf`` (cross-check).

Ports pinned to upstream files:

- amazon-science/quantile-aggregation ``util/metric.py::pinball_loss`` (bc7b068);
- google/dopamine ``dopamine/agents/quantile/quantile_agent.py`` (quantile Huber, ``/ kappa``);
- ikostrikov/implicit_q_learning ``critic.py::loss`` (expectile);
- wxie9/CARD ``long_term_forecast_l720/exp/exp_main.py`` (a9d39ea; ``ratio = 1/sqrt(i+1)``, ``nn.L1Loss``);
- huggingface/diffusers ``examples/research_projects/scheduled_huber_loss_training/text_to_image/
  train_text_to_image.py`` (the ``huber_c`` schedules);
- EtashGuha/R2CCP ``R2CCP/models/model.py::GenModule.compute_loss`` (13ecfd4);
- pairlab/vagram (the authors' ``vagram_loss`` / ``vagram_broken_loss``, JAX).

Closed forms (numpy/torch, written from the papers' formulas) for the rest.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expected_io as E

torch.set_default_dtype(torch.float64)
HERE = pathlib.Path(__file__).resolve().parent
TORCH = f"torch {torch.__version__}"


def _t(x):
    if isinstance(x, torch.Tensor):
        return x
    a = np.asarray(x)
    return torch.as_tensor(a.astype(np.float64) if a.dtype.kind == "f" else a)


def _f(x):
    return _t(x).to(torch.float64)


def _clamp_st(x, eps):
    """PyTorch's GaussianNLLLoss clamp: a clone clamped in place under no_grad (gradient passes through)."""
    x = x.clone()
    with torch.no_grad():
        x.clamp_(min=eps)
    return x


def _like(t, p):
    return torch.zeros_like(p) if t is None else _f(t).expand(p.shape)


def _axes(axis, ndim, default_all=False):
    if axis is None:
        return tuple(range(1, ndim)) if default_all else None
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(a % ndim for a in axes))


# ------------------------------------------------------------------ element-wise losses --


def squared_error(p, t=None, **_):
    return F.mse_loss(p, _like(t, p), reduction="none")


def l2_loss(p, t=None, **_):
    return 0.5 * F.mse_loss(p, _like(t, p), reduction="none")


def absolute_error(p, t=None, **_):
    return F.l1_loss(p, _like(t, p), reduction="none")


def huber_loss(p, t=None, delta=1.0, **_):
    return F.huber_loss(p, _like(t, p), delta=delta, reduction="none")


def smooth_l1_loss(p, t=None, beta=1.0, **_):
    return F.smooth_l1_loss(p, _like(t, p), beta=beta, reduction="none")


def log_cosh_loss(p, t=None, **_):
    e = p - _like(t, p)
    a = e.abs()
    return a + torch.log1p(torch.exp(-2.0 * a)) - math.log(2.0)  # the catalog's overflow-free form


def _sq_norm(e, axis):
    axes = _axes(axis, e.ndim)
    return e**2 if axes is None else (e**2).sum(dim=axes)


def pseudo_huber_loss(p, t=None, delta=1.0, axis=None, **_):
    sq = _sq_norm(p - _like(t, p), axis)
    return torch.sqrt(sq + delta**2) - delta


def cauchy_loss(p, t=None, delta=1.0, axis=None, **_):
    sq = _sq_norm(p - _like(t, p), axis)
    return torch.log1p(sq / delta**2)


def pseudo_huber_delta_schedule(timesteps, variant="snr", delta=0.1, num_timesteps=1000, alphas_cumprod=None, **_):
    """diffusers' ``huber_c`` (train_text_to_image.py ``conditional_loss`` callers), per timestep, float64."""
    ts = np.asarray(_t(timesteps)).astype(np.int64)
    if variant == "exponential":
        alpha = -math.log(delta) / num_timesteps
        return torch.as_tensor(np.exp(-alpha * ts.astype(np.float64)))
    if variant == "snr":
        ac = np.asarray(alphas_cumprod, np.float64)[ts]
        sigmas = ((1.0 - ac) / ac) ** 0.5
        return torch.as_tensor((1 - delta) / (1 + sigmas) ** 2 + delta)
    return torch.full(ts.shape, float(delta))


def _quantile_shapes(p, t, quantiles):
    q = torch.as_tensor(np.asarray(quantiles, np.float64))
    t = _f(t)
    if q.ndim == 1 and t.ndim == p.ndim - 1:
        t = t.unsqueeze(-1)
    return q, t


def pinball_loss(p, t, quantiles=0.5, **_):
    """amazon-science/quantile-aggregation util/metric.py::pinball_loss, unreduced."""
    q, t = _quantile_shapes(p, t, quantiles)
    error_data = t - p
    return torch.max(q * error_data, (q - 1) * error_data)


def quantile_huber_loss(p, t, quantiles=0.5, delta=1.0, **_):
    """dopamine QuantileAgent: |tau - 1[u < 0]| * huber_kappa(u) / kappa, unreduced."""
    q, t = _quantile_shapes(p, t, quantiles)
    u = t - p
    kappa = delta
    huber = torch.where(u.abs() <= kappa, 0.5 * u**2, kappa * (u.abs() - 0.5 * kappa))
    return torch.abs(q - (u < 0).to(u.dtype)) * huber / kappa


def expectile_loss(p, t, expectile=0.8, **_):
    """ikostrikov/implicit_q_learning critic.py::loss(diff, expectile), diff = q - v."""
    diff = _like(t, p) - p
    weight = torch.where(diff > 0, torch.full_like(diff, expectile), torch.full_like(diff, 1 - expectile))
    return weight * diff**2


MAPE_EPS = float(np.finfo(np.float64).eps)


def absolute_percentage_error(p, t, epsilon=MAPE_EPS, **_):
    t = _like(t, p)
    return (t - p).abs() / torch.clamp(t.abs(), min=epsilon)


def symmetric_absolute_percentage_error(p, t, **_):
    t = _like(t, p)
    return 2 * (p - t).abs() / (t.abs() + p.abs())


def squared_log_error(p, t, **_):
    return (torch.log1p(p) - torch.log1p(_like(t, p))) ** 2


# ------------------------------------------------------------------ batch-level errors --


def root_mean_squared_error(p, t, **_):
    return torch.sqrt(((p - _like(t, p)) ** 2).mean())


def root_mean_squared_log_error(p, t, **_):
    return torch.sqrt(squared_log_error(p, t).mean())


def relative_absolute_error(p, t, epsilon=1e-12, **_):
    t = _like(t, p)
    return (t - p).abs().sum() / torch.clamp((t - t.mean()).abs().sum(), min=epsilon)


def relative_squared_error(p, t, epsilon=1e-12, **_):
    t = _like(t, p)
    return ((t - p) ** 2).sum() / torch.clamp(((t - t.mean()) ** 2).sum(), min=epsilon)


def normalized_root_mean_squared_error(p, t, variant="range", epsilon=1e-12, **_):
    t = _like(t, p)
    rmse = torch.sqrt(((p - t) ** 2).mean())
    s = {"range": t.max() - t.min(), "mean": t.mean().abs(), "std": t.std(unbiased=False)}[variant]
    return rmse / torch.clamp(s, min=epsilon)


def relative_root_mean_squared_error(p, t, epsilon=1e-12, **_):
    t = _like(t, p)
    return torch.sqrt(((t - p) ** 2).sum() / torch.clamp((t**2).sum(), min=epsilon))


# ------------------------------------------------------------------ likelihoods and scores --


def gaussian_nll_loss(p, t, variances, full=False, epsilon=1e-6, **_):
    return F.gaussian_nll_loss(p, _f(t), variances, full=full, eps=epsilon, reduction="none")


def laplace_nll_loss(p, t, scales, full=False, epsilon=1e-6, **_):
    b = _clamp_st(scales, epsilon)
    nll = -torch.distributions.Laplace(p, b, validate_args=False).log_prob(_f(t))
    return nll if full else nll - math.log(2.0)


def student_t_nll_loss(p, t, scales, df, epsilon=1e-6, **_):
    s = _clamp_st(scales, epsilon)
    return -torch.distributions.StudentT(_f(df), p, s, validate_args=False).log_prob(_f(t))


def crps_gaussian_torch(p, t, scales, **_):
    """Gneiting et al. 2005, eq. 5 (properscoring's formula), for the autograd cross-check."""
    s = scales
    z = (_f(t) - p) / s
    normal = torch.distributions.Normal(0.0, 1.0)
    return s * (z * (2 * normal.cdf(z) - 1) + 2 * torch.exp(normal.log_prob(z)) - 1 / math.sqrt(math.pi))


def crps_ensemble_loss(p, t, **_):
    t = _f(t)
    skill = (p - t.unsqueeze(-1)).abs().mean(-1)
    spread = (p.unsqueeze(-1) - p.unsqueeze(-2)).abs().mean(dim=(-2, -1))
    return skill - 0.5 * spread


def poisson_nll_loss(p, t, log_input=True, full=False, epsilon=1e-8, **_):
    return F.poisson_nll_loss(p, _f(t), log_input=log_input, full=full, eps=epsilon, reduction="none")


def tweedie_deviance_loss(p, t, power=1.5, log_input=False, **_):
    """scikit-learn's _mean_tweedie_deviance, per element, in torch (the mean's log link optional)."""
    y = _f(t)
    mu = torch.exp(p) if log_input else p
    if power == 0:
        return (y - mu) ** 2
    if power == 1:  # sklearn's xlogy(y, y / mu), split so that y = 0 has a finite derivative in mu
        return 2 * (torch.xlogy(y, y) - torch.xlogy(y, mu) - y + mu)
    if power == 2:
        return 2 * (torch.log(mu / y) + y / mu - 1)
    a, b = 1 - power, 2 - power
    return 2 * (torch.clamp(y, min=0) ** b / (a * b) - y * mu**a / a + mu**b / b)


# ------------------------------------------------------------------ survival --


def cox_partial_likelihood_loss(eta, times, events, variant="breslow", weights=None, **_):
    """The negative partial log-likelihood per event, by explicit risk sets (Cox 1972; Efron 1977)."""
    t = np.asarray(_f(times).detach())
    ev = np.asarray(_t(events).detach()).astype(bool)
    w = torch.ones_like(eta) if weights is None else _f(weights)
    total = eta.new_zeros(())
    wsum = 0.0
    done = set()
    for i in range(len(t)):
        if not ev[i]:
            continue
        at_risk = torch.as_tensor(t >= t[i])
        log_r = torch.logsumexp(eta[at_risk], 0)
        if variant == "breslow":
            total = total + w[i] * (eta[i] - log_r)
            wsum += float(w[i])
            continue
        if t[i] in done:
            continue
        done.add(t[i])
        tied = np.nonzero(ev & (t == t[i]))[0]
        d = len(tied)
        log_d = torch.logsumexp(eta[torch.as_tensor(tied)], 0)
        w_bar = w[torch.as_tensor(tied)].mean()
        for l_ in range(d):
            denom = log_r + torch.log1p(-(l_ / d) * torch.exp(log_d - log_r))
            total = total - w_bar * denom
        total = total + (w[torch.as_tensor(tied)] * eta[torch.as_tensor(tied)]).sum()
        wsum += float(w[torch.as_tensor(tied)].sum())
    return -total / wsum if wsum > 0 else eta.sum() * 0.0


def inverse_censoring_weighted_mse(p, t, events, censoring_survival_probs, epsilon=1e-6, **_):
    g = torch.clamp(_f(censoring_survival_probs), min=epsilon)
    return _f(events) / g * (_f(t) - p) ** 2


# ------------------------------------------------------------------ time series, audio, finance --


def signal_decay_l1_loss(p, t, axis=1, **_):
    """wxie9/CARD exp_main.py: ratio = max(1/sqrt(i+1), 0) on the horizon, then nn.L1Loss (per example)."""
    h = p.shape[axis]
    ratio = torch.tensor(np.array([max(1 / np.sqrt(i + 1), 0.0) for i in range(h)]))
    shape = [1] * p.ndim
    shape[axis] = h
    ratio = ratio.reshape(shape)
    outputs, batch_y = p * ratio, _f(t) * ratio
    return (outputs - batch_y).abs().mean(dim=tuple(range(1, p.ndim)))


def multi_resolution_stft_loss(
    p,
    t,
    fft_sizes=(1024, 2048, 512),
    hop_sizes=(120, 240, 50),
    win_lengths=(600, 1200, 240),
    window="hann_window",
    spectral_convergence_weight=1.0,
    log_magnitude_weight=1.0,
    linear_magnitude_weight=0.0,
    epsilon=1e-8,
    **_,
):
    """auraloss.freq.MultiResolutionSTFTLoss (auraloss 0.4.0), called on [B, C, T] in float64."""
    import auraloss

    loss = auraloss.freq.MultiResolutionSTFTLoss(
        fft_sizes=list(fft_sizes),
        hop_sizes=list(hop_sizes),
        win_lengths=list(win_lengths),
        window=window,
        w_sc=spectral_convergence_weight,
        w_log_mag=log_magnitude_weight,
        w_lin_mag=linear_magnitude_weight,
        eps=epsilon,
    )
    shape = p.shape
    x = p.reshape(shape[0], -1, shape[-1]) if p.ndim > 2 else p.unsqueeze(1)
    y = _f(t).reshape(x.shape)
    return loss(x, y)


def mean_absolute_directional_loss(p, t, **_):
    t = _like(t, p)
    return -torch.sign(t * p) * t.abs()


def generalized_mean_absolute_directional_loss(p, t, sharpness=1000.0, exponent=1.0, **_):
    t = _like(t, p)
    return -(torch.sigmoid(sharpness * t * p) - 0.5) * t.abs() ** exponent


# ------------------------------------------------------------------ fields --


def gradient_difference_loss(p, t, exponent=1.0, axis=None, **_):
    e = p - _like(t, p)
    axes = _axes(axis, e.ndim, default_all=True)
    terms = [torch.diff(e, dim=a).abs().pow(exponent).mean(dim=tuple(range(1, e.ndim))) for a in axes]
    return sum(terms) / len(terms)


def negative_sobolev_norm_loss(p, t, order=1.0, axis=None, **_):
    e = p - _like(t, p)
    axes = _axes(axis, e.ndim, default_all=True)
    spec = torch.fft.fftn(e, dim=axes, norm="ortho")
    k2 = torch.zeros([e.shape[a] if a in axes else 1 for a in range(e.ndim)])
    for a in axes:
        n = e.shape[a]
        k = torch.fft.fftfreq(n, d=1.0 / n)
        k2 = k2 + (k**2).reshape([n if b == a else 1 for b in range(e.ndim)])
    n_pts = math.prod(e.shape[a] for a in axes)
    return ((1 + k2) ** (-order) * spec.abs() ** 2).sum(dim=tuple(range(1, e.ndim))) / n_pts


def variance_weighted_depth_loss(p, t, variances, epsilon=1e-6, **_):
    v = torch.clamp(_f(variances), min=epsilon)
    return ((p - _f(t)) ** 2 / v).mean(dim=tuple(range(1, p.ndim)))


def probabilistic_reconstruction_error(
    p, t, variances, reconstruction_weight=1.0, variance_weight=1.0, epsilon=1e-6, **_
):
    v = _clamp_st(variances, epsilon)
    terms = reconstruction_weight * (_f(t) - p) ** 2 / v + variance_weight * torch.log(v)
    return terms.mean(dim=tuple(range(1, p.ndim)))


# ------------------------------------------------------------------ the rest --


def aggregate_response_loss(f, bags, targets, bag_weight=1.0, **_):
    b = np.asarray(_t(bags))
    ybar = _f(targets)
    bag_terms, inst_terms = [], []
    for k in range(len(ybar)):
        idx = torch.as_tensor(np.nonzero(b == k)[0])
        if len(idx) == 0:
            continue
        bag_terms.append((ybar[k] - f[idx].mean()) ** 2)
        inst_terms.append(((ybar[k] - f[idx]) ** 2).sum())
    bag = torch.stack(bag_terms).mean()
    inst = torch.stack(inst_terms).sum() / len(b)
    return bag_weight * bag + (1 - bag_weight) * inst


def r_learner_loss(tau, outcome_residuals, treatment_residuals, **_):
    return (_f(outcome_residuals) - _f(treatment_residuals) * tau) ** 2


def regression_as_classification_loss(
    logits, targets, bin_centers, exponent=0.5, distance_weight=5.0, entropy_weight=1.0, **_
):
    """EtashGuha/R2CCP GenModule.compute_loss (13ecfd4), per example instead of summed.

    ``log(softmax)`` is taken as ``log_softmax`` (equal wherever the former is
    finite) and zeroed where the probability is 0 before the product, as the
    official ``log_vals[probs == 0] = 0`` intends: its in-place version has an
    infinite derivative at ``p = 0`` (NaN gradients for saturated logits).
    """
    probs = torch.softmax(logits, dim=1)
    log_vals = torch.log_softmax(logits, dim=1)
    log_vals = torch.where(probs == 0, torch.zeros_like(log_vals), log_vals)
    neg_entropy = torch.sum(probs * log_vals, dim=1)
    y = _f(targets)
    range_vals = _f(bin_centers)
    dist = torch.pow(torch.abs(range_vals.view(1, -1).expand(len(y), -1) - y.view(-1, 1)), exponent)
    return entropy_weight * neg_entropy + distance_weight * torch.sum(probs * dist, dim=1)


def value_gradient_weighted_model_loss(p, t, value_gradients, variant="diagonal", **_):
    """pairlab/vagram: vagram_loss = square(grad * err).sum(); vagram_broken_loss = square(grad.dot(err))."""
    err = p - _f(t)
    g = _f(value_gradients)
    if variant == "diagonal":
        return ((g * err) ** 2).sum(-1)
    return ((g * err).sum(-1)) ** 2


def lasso_objective(ax, b, x, variant="lasso", regularizer_weight=1.0, coefficient_weights=None, **_):
    r = ax - _f(b)
    w = torch.ones_like(x) if coefficient_weights is None else _f(coefficient_weights)
    penalty = regularizer_weight * (w * x).abs().sum()
    fit = {"lasso": 0.5 * (r**2).sum(), "sqrt_lasso": torch.linalg.vector_norm(r), "lad_lasso": r.abs().sum()}
    return fit[variant] + penalty


# ------------------------------------------------------------------ cross-checks (upstream calls) --


def _optax(name):
    def run(args, kw):
        import jax

        jax.config.update("jax_enable_x64", True)
        import optax

        fn = getattr(optax.losses, name)
        extra = {"delta": kw["delta"]} if "delta" in kw else {}
        p = np.asarray(args[0], np.float64)
        return np.asarray(fn(p, np.broadcast_to(np.asarray(args[1], np.float64), p.shape), **extra))

    return run


def _sk_mean(metric):
    def run(args, kw):
        import sklearn.metrics as M

        p, t = (np.broadcast_to(np.asarray(a, np.float64), np.shape(args[0])).ravel() for a in args[:2])
        return getattr(M, metric)(t, p)

    return run


def _sk_mape(args, kw):
    import sklearn.metrics as M

    if kw.get("epsilon", MAPE_EPS) != MAPE_EPS:
        return None
    p, t = (np.asarray(a, np.float64).ravel() for a in args[:2])
    return M.mean_absolute_percentage_error(t, p)


def _sk_rse(args, kw):
    import sklearn.metrics as M

    p, t = (np.asarray(a, np.float64).ravel() for a in args[:2])
    return 1.0 - M.r2_score(t, p)


def _sk_tweedie(args, kw):
    import sklearn.metrics as M

    p, t = (np.asarray(a, np.float64) for a in args[:2])
    mu = np.exp(p) if kw.get("log_input", False) else p
    power = kw.get("power", 1.5)
    out = np.array([M.mean_tweedie_deviance([yy], [mm], power=power) for yy, mm in zip(t.ravel(), mu.ravel())])
    return out.reshape(p.shape)


def _scipy_t(args, kw):
    from scipy import stats

    p, t, s, df = (np.asarray(a, np.float64) for a in args[:4])
    return -stats.t.logpdf(t, df, loc=p, scale=np.maximum(s, kw.get("epsilon", 1e-6)))


def _properscoring_ensemble(args, kw):
    import properscoring

    return properscoring.crps_ensemble(np.asarray(args[1], np.float64), np.asarray(args[0], np.float64))


def _sksurv_cox(args, kw):
    from sksurv.linear_model.coxph import CoxPHOptimizer

    if kw.get("weights") is not None:
        return None
    eta, t, ev = (np.asarray(a, np.float64) for a in args[:3])
    if np.max(np.abs(eta)) > 500:  # sksurv exponentiates eta directly
        return None
    n, n_events = len(eta), ev.sum()
    opt = CoxPHOptimizer(eta[:, None], ev.astype(bool), t, np.zeros(1), kw.get("variant", "breslow"))
    return opt.nlog_likelihood(np.ones(1)) * n / n_events


CROSS_CHECKS = {
    "squared_error": ("optax.losses.squared_error (float64)", _optax("squared_error")),
    "l2_loss": ("optax.losses.l2_loss (float64)", _optax("l2_loss")),
    "huber_loss": ("optax.losses.huber_loss (float64)", _optax("huber_loss")),
    "log_cosh_loss": ("optax.losses.log_cosh (float64)", _optax("log_cosh")),
    "absolute_percentage_error": ("sklearn mean_absolute_percentage_error (mean)", _sk_mape),
    "squared_log_error": ("sklearn mean_squared_log_error (mean)", _sk_mean("mean_squared_log_error")),
    "root_mean_squared_error": ("sklearn root_mean_squared_error", _sk_mean("root_mean_squared_error")),
    "root_mean_squared_log_error": ("sklearn root_mean_squared_log_error", _sk_mean("root_mean_squared_log_error")),
    "relative_squared_error": ("1 - sklearn r2_score", _sk_rse),
    "tweedie_deviance_loss": ("sklearn mean_tweedie_deviance (per element)", _sk_tweedie),
    "student_t_nll_loss": ("-scipy.stats.t.logpdf", _scipy_t),
    "crps_ensemble_loss": ("properscoring.crps_ensemble", _properscoring_ensemble),
    "cox_partial_likelihood_loss": ("sksurv CoxPHOptimizer.nlog_likelihood x n / #events", _sksurv_cox),
}
#: Cross-checks of a mean (the reference's reduction) rather than the per-element values.
MEAN_CHECKS = {"absolute_percentage_error", "squared_log_error"}

REFERENCES = {
    "squared_error": (squared_error, f"{TORCH} F.mse_loss(reduction='none'); = optax.losses.squared_error"),
    "l2_loss": (l2_loss, f"{TORCH} 0.5 F.mse_loss; = optax.losses.l2_loss (optax 0.2.8, float64)"),
    "absolute_error": (absolute_error, f"{TORCH} F.l1_loss(reduction='none')"),
    "huber_loss": (huber_loss, f"{TORCH} F.huber_loss(delta=, reduction='none'); = optax.losses.huber_loss"),
    "smooth_l1_loss": (smooth_l1_loss, f"{TORCH} F.smooth_l1_loss(beta=, reduction='none')"),
    "log_cosh_loss": (log_cosh_loss, f"{TORCH} |e| + log1p(exp(-2|e|)) - log 2; = optax.losses.log_cosh"),
    "pseudo_huber_loss": (pseudo_huber_loss, f"{TORCH} closed form sqrt(|e|^2 + c^2) - c (iCT)"),
    "cauchy_loss": (cauchy_loss, f"{TORCH} closed form log1p(|e|^2 / c^2)"),
    "pseudo_huber_delta_schedule": (
        pseudo_huber_delta_schedule,
        "numpy port of huggingface/diffusers scheduled_huber_loss_training train_text_to_image.py huber_c",
    ),
    "pinball_loss": (pinball_loss, f"{TORCH} port of amazon-science/quantile-aggregation util/metric.py (bc7b068)"),
    "quantile_huber_loss": (quantile_huber_loss, f"{TORCH} port of google/dopamine quantile_agent.py"),
    "expectile_loss": (expectile_loss, f"{TORCH} port of ikostrikov/implicit_q_learning critic.py::loss"),
    "absolute_percentage_error": (absolute_percentage_error, f"{TORCH} closed form; mean = sklearn MAPE"),
    "symmetric_absolute_percentage_error": (symmetric_absolute_percentage_error, f"{TORCH} closed form"),
    "squared_log_error": (squared_log_error, f"{TORCH} closed form; mean = sklearn mean_squared_log_error"),
    "root_mean_squared_error": (root_mean_squared_error, f"{TORCH}; = sklearn root_mean_squared_error"),
    "root_mean_squared_log_error": (root_mean_squared_log_error, f"{TORCH}; = sklearn root_mean_squared_log_error"),
    "relative_absolute_error": (relative_absolute_error, f"{TORCH} closed form (the survey's RAE)"),
    "relative_squared_error": (relative_squared_error, f"{TORCH} closed form; = 1 - sklearn r2_score"),
    "normalized_root_mean_squared_error": (normalized_root_mean_squared_error, f"{TORCH} closed form"),
    "relative_root_mean_squared_error": (relative_root_mean_squared_error, f"{TORCH} closed form"),
    "gaussian_nll_loss": (gaussian_nll_loss, f"{TORCH} F.gaussian_nll_loss(full=, eps=, reduction='none')"),
    "laplace_nll_loss": (laplace_nll_loss, f"{TORCH} -distributions.Laplace.log_prob (GaussianNLL-style clamp)"),
    "student_t_nll_loss": (student_t_nll_loss, f"{TORCH} -distributions.StudentT.log_prob; = -scipy t.logpdf"),
    "crps_gaussian_loss": (None, "properscoring 0.1 crps_gaussian(grad=True) (value and analytic gradient)"),
    "crps_ensemble_loss": (crps_ensemble_loss, f"{TORCH} energy form; = properscoring 0.1 crps_ensemble"),
    "poisson_nll_loss": (poisson_nll_loss, f"{TORCH} F.poisson_nll_loss(log_input=, full=, eps=, reduction='none')"),
    "tweedie_deviance_loss": (tweedie_deviance_loss, f"{TORCH} deviance; = sklearn 1.9.1 mean_tweedie_deviance"),
    "cox_partial_likelihood_loss": (
        cox_partial_likelihood_loss,
        f"{TORCH} explicit risk sets; = scikit-survival 0.28.0 CoxPHOptimizer.nlog_likelihood * n / #events",
    ),
    "inverse_censoring_weighted_mse": (inverse_censoring_weighted_mse, f"{TORCH} closed form (Ausset et al. 2019)"),
    "signal_decay_l1_loss": (signal_decay_l1_loss, f"{TORCH} port of wxie9/CARD exp_main.py (a9d39ea)"),
    "multi_resolution_stft_loss": (
        multi_resolution_stft_loss,
        f"auraloss 0.4.0 freq.MultiResolutionSTFTLoss, {TORCH} float64 autograd",
    ),
    "mean_absolute_directional_loss": (mean_absolute_directional_loss, f"{TORCH} closed form (MADL)"),
    "generalized_mean_absolute_directional_loss": (
        generalized_mean_absolute_directional_loss,
        f"{TORCH} closed form (GMADL)",
    ),
    "gradient_difference_loss": (gradient_difference_loss, f"{TORCH} closed form (torch.diff)"),
    "negative_sobolev_norm_loss": (negative_sobolev_norm_loss, f"{TORCH} closed form (torch.fft.fftn, ortho)"),
    "variance_weighted_depth_loss": (variance_weighted_depth_loss, f"{TORCH} closed form"),
    "probabilistic_reconstruction_error": (probabilistic_reconstruction_error, f"{TORCH} closed form"),
    "aggregate_response_loss": (aggregate_response_loss, f"{TORCH} closed form (explicit bag loops)"),
    "r_learner_loss": (r_learner_loss, f"{TORCH} closed form (Nie & Wager R-loss)"),
    "regression_as_classification_loss": (
        regression_as_classification_loss,
        f"{TORCH} port of EtashGuha/R2CCP model.py::compute_loss (13ecfd4)",
    ),
    "value_gradient_weighted_model_loss": (value_gradient_weighted_model_loss, f"{TORCH} port of pairlab/vagram"),
    "lasso_objective": (lasso_objective, f"{TORCH} closed form"),
}


def crps_gaussian_value_and_grads(args, diff_argnums):
    """properscoring's CRPS and its analytic gradient [dmu, dsig]; at sig = 0 the limits |y - mu|, -sign, ... ."""
    import properscoring

    mu, y, sig = (np.broadcast_to(np.asarray(a, np.float64), np.shape(args[0])) for a in args[:3])
    safe = np.where(sig > 0, sig, 1.0)
    value, (dmu, dsig) = properscoring.crps_gaussian(y, mu, safe, grad=True)
    zero = sig == 0
    value = np.where(zero, np.abs(y - mu), value)
    sign = np.sign(y - mu)
    dmu = np.where(zero, -sign, dmu)
    dsig = np.where(zero, np.where(y == mu, 2 / np.sqrt(2 * np.pi), 0.0) - 1 / np.sqrt(np.pi), dsig)
    ct = E.cotangent(value.shape)
    by_arg = {0: ct * dmu, 2: ct * dsig}
    return value, [by_arg[i] for i in diff_argnums]


def value_and_grads(name: str, args: list, kwargs: dict, diff_argnums) -> tuple[np.ndarray, list]:
    """The reference value (float64) and gradients of ``sum(cotangent * value)``."""
    if name == "crps_gaussian_loss":
        return crps_gaussian_value_and_grads(args, diff_argnums)
    fn, _ = REFERENCES[name]
    out, grads = E.torch_value_and_grads(fn, list(args), diff_argnums, **kwargs)
    return out.detach().numpy(), [g.detach().numpy() for g in grads]


def cross_check(name: str, args: list, kwargs: dict, value: np.ndarray) -> float:
    """Relative difference between ``value`` and the upstream library's (0 when there is none)."""
    if name == "crps_gaussian_loss":  # the torch closed form against properscoring's
        s = np.asarray(args[2])
        if np.any(s == 0):
            return 0.0
        other = crps_gaussian_torch(*(_t(a) for a in args[:3])).numpy()
    elif name in CROSS_CHECKS:
        other = CROSS_CHECKS[name][1](args, kwargs)
        if other is None:
            return 0.0
        if name in MEAN_CHECKS:
            value = np.mean(value)
    else:
        return 0.0
    other = np.asarray(other, np.float64)
    return float(np.max(np.abs(other - value) / np.maximum(1.0, np.abs(other))))


# ------------------------------------------------------------------ golden cases for the family tests --


def _golden_cases() -> list[dict]:
    """Inputs beyond the conformance samples: kinks, PyTorch's shape rules, ties, zeros, optax at scale."""
    rng = np.random.default_rng(20261205)
    n = lambda *s: rng.normal(size=s)  # noqa: E731
    e_kink = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])  # Huber's kinks at |e| = 1 and 0
    cases = [
        ("huber_loss", [e_kink, np.zeros(7)], {"delta": 1.0}, (0, 1)),
        ("huber_loss", [n(4, 3) * 3, n(4, 3)], {"delta": 0.3}, (0, 1)),
        ("huber_loss", [n(5) * 1e3, n(5)], {"delta": 2.0}, (0,)),
        ("smooth_l1_loss", [e_kink, np.zeros(7)], {"beta": 1.0}, (0,)),
        ("smooth_l1_loss", [n(4, 3) * 2, n(4, 3)], {"beta": 0.0}, (0,)),
        ("smooth_l1_loss", [n(4, 3) * 2, n(4, 3)], {"beta": 0.25}, (0, 1)),
        ("squared_error", [n(3, 4) * 100, n(3, 4)], {}, (0, 1)),
        ("l2_loss", [n(3, 4), n(1, 4)], {}, (0,)),
        ("absolute_error", [np.array([0.0, 1.0, -2.0]), np.array([0.0, 0.0, 0.0])], {}, (0,)),
        ("log_cosh_loss", [np.array([-1e4, -100.0, -1.0, 0.0, 1e-3, 1.0, 50.0, 1e4]), np.zeros(8)], {}, (0,)),
        ("pseudo_huber_loss", [n(4, 5), n(4, 5)], {"delta": 0.03, "axis": (1,)}, (0,)),
        ("pseudo_huber_loss", [n(4, 2, 3), n(4, 2, 3)], {"delta": 0.5, "axis": (1, 2)}, (0,)),
        ("cauchy_loss", [n(6) * 10, n(6)], {"delta": 2.0}, (0,)),
        (
            "pinball_loss",
            [np.array([[0.0, 0.0, 0.0], [1.0, -1.0, 2.0]]), np.array([0.0, 0.5])],
            {"quantiles": (0.1, 0.5, 0.9)},
            (0,),
        ),  # r = 0 in the first row: the midpoint subgradient
        ("pinball_loss", [n(5), n(5)], {"quantiles": 0.3}, (0, 1)),
        ("pinball_loss", [n(2, 3, 4), n(2, 3, 4)], {"quantiles": (0.05, 0.25, 0.75, 0.95)}, (0,)),
        ("quantile_huber_loss", [n(5, 3), n(5)], {"quantiles": (0.2, 0.5, 0.8), "delta": 0.7}, (0,)),
        ("expectile_loss", [n(6), n(6)], {"expectile": 0.9}, (0,)),
        ("absolute_percentage_error", [n(6), np.array([1.0, -2.0, 0.5, 0.0, 3.0, -0.1])], {}, (0,)),
        ("symmetric_absolute_percentage_error", [n(6), n(6)], {}, (0,)),
        ("squared_log_error", [rng.uniform(-0.5, 3, 6), rng.uniform(0, 3, 6)], {}, (0,)),
        ("gaussian_nll_loss", [n(4, 3), n(4, 3), rng.uniform(0.1, 2, (4, 3))], {"full": True}, (0, 2)),
        ("gaussian_nll_loss", [n(4, 3), n(4, 3), rng.uniform(0.1, 2, (4,))], {}, (0, 2)),  # var lacks the last axis
        ("gaussian_nll_loss", [n(4, 3), n(4, 3), rng.uniform(0.1, 2, (4, 1))], {}, (0, 2)),
        ("gaussian_nll_loss", [n(5), n(5), np.array([0.0, 1e-8, 1e-6, 0.5, 2.0])], {"epsilon": 1e-6}, (0, 2)),
        ("laplace_nll_loss", [n(4, 3), n(4, 3), rng.uniform(0.1, 2, (4, 3))], {"full": True}, (0, 2)),
        (
            "student_t_nll_loss",
            [n(4, 3), n(4, 3) * 5, rng.uniform(0.2, 2, (4, 3)), rng.uniform(0.5, 20, (4, 3))],
            {},
            (0, 2, 3),
        ),
        ("crps_gaussian_loss", [n(6), n(6), np.array([0.5, 1.0, 2.0, 0.0, 0.0, 1e-3])], {}, (0, 2)),
        ("crps_ensemble_loss", [n(3, 6), n(3)], {}, (0,)),
        ("poisson_nll_loss", [n(4, 3), rng.poisson(3.0, (4, 3)).astype(float)], {"full": True}, (0,)),
        (
            "poisson_nll_loss",
            [rng.uniform(0, 3, (4, 3)), rng.poisson(1.0, (4, 3)).astype(float)],
            {"log_input": False, "full": True},
            (0,),
        ),
        (
            "tweedie_deviance_loss",
            [rng.uniform(0.2, 3, 6), np.array([0.0, 0.0, 1.0, 2.5, 0.3, 4.0])],
            {"power": 1.5},
            (0,),
        ),
        (
            "tweedie_deviance_loss",
            [n(6), np.array([0.0, 0.5, 1.0, 2.5, 0.3, 4.0])],
            {"power": 1.2, "log_input": True},
            (0,),
        ),
        ("tweedie_deviance_loss", [rng.uniform(0.2, 3, 6), rng.uniform(0.2, 3, 6)], {"power": 2.0}, (0,)),
        ("tweedie_deviance_loss", [rng.uniform(0.2, 3, 6), rng.uniform(0.2, 3, 6)], {"power": -1.0}, (0,)),
        ("tweedie_deviance_loss", [n(6), n(6)], {"power": 0.0}, (0,)),
        ("tweedie_deviance_loss", [n(6) * 0.5, rng.uniform(0.2, 3, 6)], {"power": 3.0, "log_input": True}, (0,)),
        (
            "tweedie_deviance_loss",
            [rng.uniform(0.2, 3, 6), np.array([0.0, 0.5, 1.0, 2.5, 0.3, 4.0])],
            {"power": 1.0},
            (0,),
        ),
        (
            "cox_partial_likelihood_loss",
            [
                n(10),
                np.array([2.0, 2.0, 3.0, 1.0, 2.0, 5.0, 5.0, 4.0, 3.0, 2.0]),
                np.array([1, 1, 0, 1, 1, 1, 1, 0, 1, 0]),
            ],
            {"variant": "breslow"},
            (0,),
        ),
        (
            "cox_partial_likelihood_loss",
            [
                n(10),
                np.array([2.0, 2.0, 3.0, 1.0, 2.0, 5.0, 5.0, 4.0, 3.0, 2.0]),
                np.array([1, 1, 0, 1, 1, 1, 1, 0, 1, 0]),
            ],
            {"variant": "efron"},
            (0,),
        ),
        (
            "cox_partial_likelihood_loss",
            [n(7), np.array([1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]), np.array([1, 1, 1, 1, 0, 1, 1])],
            {"variant": "efron", "weights": np.array([1.0, 2.0, 0.5, 1.0, 1.0, 3.0, 1.0])},
            (0,),
        ),
        ("signal_decay_l1_loss", [n(3, 6, 2), n(3, 6, 2)], {}, (0,)),
        ("signal_decay_l1_loss", [n(3, 2, 5), n(3, 2, 5)], {"axis": 2}, (0,)),
        (
            "multi_resolution_stft_loss",
            [n(2, 2, 96), n(2, 2, 96)],
            {
                "fft_sizes": (32, 64),
                "hop_sizes": (8, 16),
                "win_lengths": (24, 48),
                "window": "blackman_window",
                "linear_magnitude_weight": 1.0,
                "spectral_convergence_weight": 0.5,
            },
            (0,),
        ),
        (
            "multi_resolution_stft_loss",
            [n(2, 128), n(2, 128)],
            {
                "fft_sizes": (64,),
                "hop_sizes": (16,),
                "win_lengths": (64,),
                "window": "bartlett_window",
                "epsilon": 1e-7,
            },
            (0,),
        ),
        (
            "generalized_mean_absolute_directional_loss",
            [n(6) * 0.01, n(6) * 0.01],
            {"sharpness": 300.0, "exponent": 2.5},
            (0,),
        ),
        ("gradient_difference_loss", [n(2, 4, 5, 3), n(2, 4, 5, 3)], {"exponent": 1.5}, (0,)),
        ("negative_sobolev_norm_loss", [n(2, 5, 6), n(2, 5, 6)], {"order": 0.5}, (0,)),
        ("aggregate_response_loss", [n(7), np.array([0, 0, 0, 2, 2, 3, 3]), n(4)], {"bag_weight": 0.6}, (0,)),
        ("regression_as_classification_loss", [n(4, 6) * 3, rng.uniform(-1, 1, 4), np.linspace(-1, 1, 6)], {}, (0,)),
        ("lasso_objective", [n(5), n(5), n(3)], {"variant": "sqrt_lasso", "regularizer_weight": 0.7}, (0, 2)),
    ]
    out = []
    for name, args, kw, diff in cases:
        value, grads = value_and_grads(name, args, kw, diff)
        out.append(
            {
                "name": name,
                "kwargs": {k: (E.encode(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()},
                "args": [E.encode(np.asarray(a)) for a in args],
                "diff_argnums": list(diff),
                "value": E.encode(value),
                "grads": [E.encode(g) for g in grads],
                "cross_check": cross_check(name, args, kw, value),
            }
        )
    return out


def main() -> None:
    cases = _golden_cases()
    worst = max(c["cross_check"] for c in cases)
    assert worst < 1e-9, worst
    path = HERE / "regression.json"
    path.write_text(json.dumps({"cases": cases}, sort_keys=True) + "\n")
    print(f"wrote {path}: {len(cases)} cases; worst upstream cross-check {worst:.2e}")


if __name__ == "__main__":
    main()
