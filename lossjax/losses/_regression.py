"""Regression, probabilistic-forecasting, survival, time-series and finance losses.

Element-wise losses take ``predictions [...]`` and ``targets`` of the same
rank (each axis equal or 1, or a scalar) and return the per-element loss with
``predictions``' shape (optax's convention: reduce it yourself, e.g. with
:func:`lossjax.masked_mean`). The residual is ``e = predictions - targets``.

* optax's own names and values: :func:`squared_error`, :func:`l2_loss`,
  :func:`huber_loss`, :func:`log_cosh_loss` (``targets=None`` means zeros);
* PyTorch's conventions: :func:`smooth_l1_loss` (``beta``), :func:`gaussian_nll_loss`
  (``full``, the variance clamp ``epsilon``), :func:`poisson_nll_loss`
  (``log_input``, ``full``, ``epsilon``);
* robust losses: :func:`pseudo_huber_loss`, :func:`cauchy_loss`;
* quantiles and expectiles: :func:`pinball_loss`, :func:`quantile_huber_loss`
  (several quantile levels at once: ``quantiles [Q]`` with ``predictions [..., Q]``),
  :func:`expectile_loss`;
* distributions: Gaussian, Laplace and Student-t negative log-likelihoods, the
  closed-form Gaussian CRPS and the ensemble CRPS, the Tweedie deviance;
* error metrics as losses (the regression error suite): per element
  :func:`absolute_error`, :func:`absolute_percentage_error`,
  :func:`symmetric_absolute_percentage_error`, :func:`squared_log_error`; over
  the whole batch (kind ``batch``, with ``axis_name`` for the global batch)
  :func:`root_mean_squared_error`, :func:`root_mean_squared_log_error`,
  :func:`relative_absolute_error`, :func:`relative_squared_error`,
  :func:`normalized_root_mean_squared_error`, :func:`relative_root_mean_squared_error`;
* survival: :func:`cox_partial_likelihood_loss` (Breslow or Efron ties, censoring,
  sort + cumulative log-sum-exp), :func:`inverse_censoring_weighted_mse`;
* time series, audio and finance: :func:`signal_decay_l1_loss`,
  :func:`multi_resolution_stft_loss`, :func:`mean_absolute_directional_loss`,
  :func:`generalized_mean_absolute_directional_loss`;
* fields and scientific ML: :func:`gradient_difference_loss`,
  :func:`negative_sobolev_norm_loss`, :func:`variance_weighted_depth_loss`,
  :func:`probabilistic_reconstruction_error`;
* the rest of the catalog family: :func:`aggregate_response_loss`, :func:`r_learner_loss`,
  :func:`regression_as_classification_loss`, :func:`value_gradient_weighted_model_loss`,
  :func:`lasso_objective` and :func:`pseudo_huber_delta_schedule`.

Kinks have documented subgradients, never NaN: ``|e|`` has gradient 0 at
``e = 0`` (``sign(0) = 0``, PyTorch's convention; ``jnp.abs``'s derivative at 0
is 1, so the module writes ``|e|`` as ``e * sign(e)``); the pinball loss
at ``e = 0`` takes the midpoint of its subdifferential (``1/2 - tau`` with
respect to the prediction, what ``jnp.maximum`` and ``torch.maximum`` give at
a tie); Huber's, smooth-L1's and the quantile-Huber's derivatives are continuous.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax._parallel import gather_batch, psum
from lossjax.registry import Sample, register

__all__ = [
    "absolute_error",
    "absolute_percentage_error",
    "aggregate_response_loss",
    "cauchy_loss",
    "cox_partial_likelihood_loss",
    "crps_ensemble_loss",
    "crps_gaussian_loss",
    "expectile_loss",
    "gaussian_nll_loss",
    "generalized_mean_absolute_directional_loss",
    "gradient_difference_loss",
    "huber_loss",
    "inverse_censoring_weighted_mse",
    "l2_loss",
    "laplace_nll_loss",
    "lasso_objective",
    "log_cosh",
    "log_cosh_loss",
    "mean_absolute_directional_loss",
    "multi_resolution_stft_loss",
    "negative_sobolev_norm_loss",
    "normalized_root_mean_squared_error",
    "pinball_loss",
    "poisson_nll_loss",
    "probabilistic_reconstruction_error",
    "pseudo_huber_delta_schedule",
    "pseudo_huber_loss",
    "quantile_huber_loss",
    "r_learner_loss",
    "regression_as_classification_loss",
    "relative_absolute_error",
    "relative_root_mean_squared_error",
    "relative_squared_error",
    "root_mean_squared_error",
    "root_mean_squared_log_error",
    "signal_decay_l1_loss",
    "smooth_l1_loss",
    "squared_error",
    "squared_log_error",
    "student_t_nll_loss",
    "symmetric_absolute_percentage_error",
    "tweedie_deviance_loss",
    "value_gradient_weighted_model_loss",
    "variance_weighted_depth_loss",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

FAMILY = "regression"

_LOG_2PI = math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
#: scikit-learn's floor on ``|targets|`` in ``mean_absolute_percentage_error`` (float64 machine epsilon).
_MAPE_EPSILON = float(np.finfo(np.float64).eps)
_SURVEY = (
    "A Comprehensive Survey of Regression Based Loss Functions for Time Series Forecasting (2022, arXiv:2211.02989)"
)


# --------------------------------------------------------------------------
# Shared input handling.
# --------------------------------------------------------------------------


def _check_like(fn: str, arg: str, x: Array, shape: Sequence[int], what: str = "predictions") -> None:
    """``x`` is a scalar or has ``len(shape)`` axes, each equal to ``shape``'s or 1."""
    shape = tuple(shape)
    ok = x.ndim == 0 or (x.ndim == len(shape) and all(a in (1, b) for a, b in zip(x.shape, shape, strict=True)))
    if not ok:
        raise ValueError(
            f"{fn}: `{arg}` must be a scalar or have the rank of `{what}` with each axis equal or 1 "
            f"(broadcastable to {shape}), got shape {x.shape}."
        )


def _inputs(fn: str, predictions, targets, where, *, targets_dtype: str = "number", batch_ndim: int | None = None):
    """``(p, t, mask, dtype)``: checked, cast to the compute dtype, ``t`` broadcast to ``p``, masked rows filled.

    The mask has ``p``'s shape, or its first ``batch_ndim`` axes for losses that
    reduce the trailing axes.
    """
    p = C.check_array(fn, "predictions", predictions, dtype="float")
    t = None
    if targets is not None:
        t = C.check_array(fn, "targets", targets, dtype=targets_dtype)
        _check_like(fn, "targets", t, p.shape)
    dtype = C.compute_dtype(p, t)
    if batch_ndim is not None and p.ndim < batch_ndim + 1:
        raise ValueError(f"{fn}: `predictions` must have rank >= {batch_ndim + 1}, got shape {p.shape}.")
    mask = C.prepare_where(fn, where, p.shape if batch_ndim is None else p.shape[:batch_ndim])
    p = C.fill_masked(C.as_compute(p, dtype), mask)
    if t is None:
        t = jnp.zeros(p.shape, dtype)
    else:
        t = C.fill_masked(jnp.broadcast_to(C.as_compute(t, dtype), p.shape), mask)
    return p, t, mask, dtype


def _param(fn: str, arg: str, x, shape, dtype, mask, *, fill: float = 1.0, what: str = "predictions") -> Array:
    """A per-element parameter (variance, scale, degrees of freedom) broadcast to ``shape``, masked rows = ``fill``."""
    x = C.check_array(fn, arg, x, dtype="number")
    _check_like(fn, arg, x, shape, what)
    return C.fill_masked(jnp.broadcast_to(C.as_compute(x, dtype), tuple(shape)), mask, fill)


def _floor_st(x: Array, epsilon: float) -> Array:
    """``max(x, epsilon)`` in the forward pass, identity in the backward pass (PyTorch's ``GaussianNLLLoss`` clamp).

    ``torch.nn.functional.gaussian_nll_loss`` clamps a clone of ``var`` in place
    under ``no_grad``: the loss is evaluated at the clamped value and its
    gradient flows to ``var`` unchanged, so a variance below the floor keeps a
    gradient that pushes it back up.
    """
    return x + jax.lax.stop_gradient(jnp.maximum(x, jnp.asarray(epsilon, x.dtype)) - x)


def _leading(x: Array, ndim: int) -> Array:
    """Reshapes ``x`` so that it aligns with the leading axes of a rank-``ndim`` array."""
    return jnp.reshape(x, x.shape + (1,) * (ndim - x.ndim))


def _delta(fn: str, delta, shape, dtype, mask) -> Array:
    """A scale hyperparameter: a positive number, or an array aligned with the output's leading axes."""
    if isinstance(delta, (jax.Array, np.ndarray)) and np.ndim(delta) > 0:
        d = C.check_array(fn, "delta", delta, dtype="float")
        if d.ndim > len(shape) or any(a not in (1, b) for a, b in zip(d.shape, shape, strict=False)):
            raise ValueError(
                f"{fn}: an array `delta` must align with the leading axes of the output {tuple(shape)} "
                f"(each axis equal or 1), got shape {d.shape}."
            )
        d = jnp.broadcast_to(_leading(C.as_compute(d, dtype), len(shape)), tuple(shape))
        return C.fill_masked(d, mask, 1.0)
    C.check_positive(fn, "delta", delta)
    return jnp.asarray(delta, dtype)


def _reduce_axis(fn: str, axis, ndim: int):
    """Normalizes ``axis`` (None, an int or a tuple) to a sorted tuple of non-negative axes, never the batch axis."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not -ndim <= a < ndim:
            raise ValueError(f"{fn}: `axis` must be axes of an array of rank {ndim}, got {axis!r}.")
        out.append(int(a) % ndim)
    if 0 in out:
        raise ValueError(f"{fn}: `axis` must not include the batch axis 0, got {axis!r}.")
    return tuple(sorted(set(out)))


def _trailing_axes(ndim: int) -> tuple[int, ...]:
    return tuple(range(1, ndim))


def _check_bool_flag(fn: str, arg: str, value) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{fn}: `{arg}` must be True or False, got {value!r}.")


def _abs(x: Array) -> Array:
    """``|x|`` whose gradient is ``sign(x)``: 0 at ``x = 0`` (PyTorch's convention; ``jnp.abs``'s is 1 there)."""
    return x * jnp.sign(x)


def _safe_div(num: Array, den: Array) -> Array:
    """``num / den`` where ``den > 0``, else 0 (double-where: no NaN gradient)."""
    pos = den > 0
    return jnp.where(pos, num / jnp.where(pos, den, jnp.ones((), den.dtype)), jnp.zeros((), num.dtype))


# --------------------------------------------------------------------------
# Samples (the conformance suite's inputs).
# --------------------------------------------------------------------------


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _pair_sample(shape=(6, 3), seed: int = 0, *, scale: float = 1.5, variants=(), **kw) -> Sample:
    rng = _rng(seed)
    p = (scale * rng.normal(size=shape)).astype(np.float32)
    t = (scale * rng.normal(size=shape)).astype(np.float32)
    return Sample(args=(p, t), diff_argnums=(0, 1), variants=variants, **kw)


def _positive_pair_sample(shape=(6, 3), seed: int = 1, **kw) -> Sample:
    rng = _rng(seed)
    p = rng.uniform(0.2, 3.0, size=shape).astype(np.float32)
    t = rng.uniform(0.2, 3.0, size=shape).astype(np.float32)
    return Sample(args=(p, t), diff_argnums=(0,), **kw)


# ==========================================================================
# optax's regression losses.
# ==========================================================================


@register(
    "squared_error",
    aliases=("mse_loss",),
    family=FAMILY,
    kind="per_example",
    formula="(predictions - targets)^2",
    paper=_SURVEY,
    reference="optax.losses.squared_error; torch.nn.functional.mse_loss(reduction='none')",
    sample=_pair_sample,
)
def squared_error(predictions: ArrayLike, targets: ArrayLike | None = None, *, where: ArrayLike | None = None) -> Array:
    r"""Element-wise squared error (optax's ``squared_error``; MSE is its mean).

    .. math:: \ell = (\hat y - y)^2

    Args:
      predictions: ``[...]``.
      targets: broadcastable to ``predictions`` (same rank, axes equal or 1); None means zeros.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-element loss, ``predictions.shape``.

    Paper: none (least squares); listed as MSE in Jadon et al., "A Comprehensive
    Survey of Regression Based Loss Functions for Time Series Forecasting", 2022,
    arXiv:2211.02989. Reference: ``optax.losses.squared_error``.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.squared_error(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0]))
      Array([1., 4.], dtype=float32)
    """
    p, t, mask, _ = _inputs("squared_error", predictions, targets, where)
    return C.zero_masked(jnp.square(p - t), mask)


@register(
    "l2_loss",
    family=FAMILY,
    kind="per_example",
    formula="0.5 (predictions - targets)^2",
    paper="none (least squares; Bishop, Pattern Recognition and Machine Learning, 2006)",
    reference="optax.losses.l2_loss",
    sample=_pair_sample,
)
def l2_loss(predictions: ArrayLike, targets: ArrayLike | None = None, *, where: ArrayLike | None = None) -> Array:
    r"""Element-wise half squared error (optax's ``l2_loss``).

    .. math:: \ell = \tfrac12 (\hat y - y)^2

    Args:
      predictions: ``[...]``.
      targets: broadcastable to ``predictions``; None means zeros.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-element loss, ``predictions.shape``.

    Paper: none (least squares; the 1/2 follows Bishop, "Pattern Recognition and
    Machine Learning", 2006, as optax does). Reference: ``optax.losses.l2_loss``.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.l2_loss(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0]))
      Array([0.5, 2. ], dtype=float32)
    """
    p, t, mask, _ = _inputs("l2_loss", predictions, targets, where)
    return C.zero_masked(0.5 * jnp.square(p - t), mask)


@register(
    "absolute_error",
    aliases=("l1_loss",),
    family=FAMILY,
    kind="per_example",
    formula="|predictions - targets|",
    paper=_SURVEY,
    reference="torch.nn.functional.l1_loss(reduction='none')",
    sample=_pair_sample,
)
def absolute_error(
    predictions: ArrayLike, targets: ArrayLike | None = None, *, where: ArrayLike | None = None
) -> Array:
    r"""Element-wise absolute error (MAE is its mean; PyTorch's ``l1_loss``).

    .. math:: \ell = |\hat y - y|

    The gradient at ``e = 0`` is 0 (``sign(0)``, as PyTorch's; ``jnp.abs`` would give 1).

    Args:
      predictions: ``[...]``.
      targets: broadcastable to ``predictions``; None means zeros.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-element loss, ``predictions.shape``.

    Paper: Jadon et al., "A Comprehensive Survey of Regression Based Loss
    Functions for Time Series Forecasting", 2022, arXiv:2211.02989 (MAE).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.absolute_error(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0]))
      Array([1., 2.], dtype=float32)
    """
    p, t, mask, _ = _inputs("absolute_error", predictions, targets, where)
    return C.zero_masked(_abs(p - t), mask)


@register(
    "huber_loss",
    aliases=("huber",),
    family=FAMILY,
    kind="per_example",
    formula="0.5 q^2 + delta (|e| - q),  q = min(|e|, delta),  e = predictions - targets",
    paper="Robust Losses for Learning Value Functions (2022, arXiv:2205.08464); Huber, Robust Estimation of a "
    "Location Parameter (1964)",
    reference="optax.losses.huber_loss; torch.nn.functional.huber_loss(reduction='none')",
    sample=lambda: _pair_sample(variants=({"delta": 0.5},)),
)
def huber_loss(
    predictions: ArrayLike,
    targets: ArrayLike | None = None,
    *,
    delta: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Huber loss: quadratic for ``|e| <= delta``, linear beyond (optax's and PyTorch's ``huber_loss``).

    .. math::
        \ell_\delta(e) = \begin{cases} \tfrac12 e^2 & |e| \le \delta \\
        \delta\,(|e| - \tfrac12\delta) & |e| > \delta \end{cases}

    Computed as optax does, ``0.5 q^2 + delta (|e| - q)`` with ``q = min(|e|, delta)``;
    its gradient is ``clip(e, -delta, delta)`` everywhere, ``+-delta`` at the kink
    ``|e| = delta`` (the derivative is continuous there). PyTorch's
    ``smooth_l1_loss(beta)`` is this divided by ``beta`` (:func:`smooth_l1_loss`).

    Args:
      predictions: ``[...]``.
      targets: broadcastable to ``predictions``; None means zeros.
      delta: ``delta > 0``, where the loss turns linear.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-element loss, ``predictions.shape``.

    Paper: Huber, "Robust Estimation of a Location Parameter", Annals of
    Mathematical Statistics, 1964 (no arXiv id); in value learning: Patterson et
    al., "Robust Losses for Learning Value Functions", 2022, arXiv:2205.08464.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.huber_loss(jnp.array([0.5, 3.0]), jnp.array([0.0, 0.0]), delta=1.0)
      Array([0.125, 2.5  ], dtype=float32)
    """
    fn = "huber_loss"
    C.check_positive(fn, "delta", delta)
    p, t, mask, dtype = _inputs(fn, predictions, targets, where)
    d = jnp.asarray(delta, dtype)
    a = _abs(p - t)
    q = jnp.minimum(a, d)
    return C.zero_masked(0.5 * jnp.square(q) + d * (a - q), mask)


@register(
    "smooth_l1_loss",
    family=FAMILY,
    kind="per_example",
    formula="0.5 e^2 / beta if |e| < beta else |e| - 0.5 beta  (|e| when beta = 0)",
    paper="Fast R-CNN (2015, arXiv:1504.08083)",
    reference="torch.nn.functional.smooth_l1_loss(beta=, reduction='none')",
    sample=lambda: _pair_sample(variants=({"beta": 0.0},)),
)
def smooth_l1_loss(
    predictions: ArrayLike,
    targets: ArrayLike | None = None,
    *,
    beta: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Smooth L1 loss with PyTorch's ``beta`` convention (Huber divided by ``beta``).

    .. math::
        \ell_\beta(e) = \begin{cases} \tfrac12 e^2/\beta & |e| < \beta \\
        |e| - \tfrac12\beta & |e| \ge \beta \end{cases}

    ``beta = 0`` is the absolute error (as in PyTorch). Unlike Huber's ``delta``,
    ``beta`` keeps the slope of the linear part at 1:
    ``smooth_l1_loss(e, beta) = huber_loss(e, delta=beta) / beta``.

    Args:
      predictions: ``[...]``.
      targets: broadcastable to ``predictions``; None means zeros.
      beta: ``beta >= 0``, the width of the quadratic zone.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-element loss, ``predictions.shape``.

    Paper: Girshick, "Fast R-CNN", ICCV 2015, arXiv:1504.08083.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.smooth_l1_loss(jnp.array([0.5, 3.0]), jnp.array([0.0, 0.0]), beta=1.0)
      Array([0.125, 2.5  ], dtype=float32)
    """
    fn = "smooth_l1_loss"
    C.check_positive(fn, "beta", beta, allow_zero=True)
    p, t, mask, dtype = _inputs(fn, predictions, targets, where)
    a = _abs(p - t)
    if not isinstance(beta, jax.core.Tracer) and float(beta) == 0.0:
        return C.zero_masked(a, mask)
    b = jnp.asarray(beta, dtype)
    q = jnp.minimum(a, b)
    return C.zero_masked(0.5 * jnp.square(q) / b + (a - q), mask)


@register(
    "log_cosh_loss",
    aliases=("log_cosh",),
    family=FAMILY,
    kind="per_example",
    formula="log cosh(e) = logaddexp(e, -e) - log 2",
    paper=_SURVEY,
    reference="optax.losses.log_cosh",
    sample=_pair_sample,
)
def log_cosh_loss(predictions: ArrayLike, targets: ArrayLike | None = None, *, where: ArrayLike | None = None) -> Array:
    r"""Log-cosh loss, stable for large errors (optax's ``log_cosh``).

    .. math:: \ell = \log\cosh(e) = \operatorname{logaddexp}(e, -e) - \log 2

    ``log(cosh(e))`` overflows for ``|e| > 89`` in float32; the log-add-exp
    form (optax's) is exact there (``|e| - log 2``). Its gradient is ``tanh(e)``.

    Args:
      predictions: ``[...]``.
      targets: broadcastable to ``predictions``; None means zeros.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-element loss, ``predictions.shape``.

    Paper: Jadon et al., "A Comprehensive Survey of Regression Based Loss
    Functions for Time Series Forecasting", 2022, arXiv:2211.02989; Chen et al.,
    "Log Hyperbolic Cosine Loss Improves Variational Auto-Encoder", 2019 (OpenReview, no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.log_cosh_loss(jnp.array([0.0, 1.0, 100.0])).round(4).tolist()
      [0.0, 0.4338, 99.3069]
    """
    p, t, mask, _ = _inputs("log_cosh_loss", predictions, targets, where)
    e = p - t
    return C.zero_masked(jnp.logaddexp(e, -e) - _LOG_2, mask)


#: optax's name for :func:`log_cosh_loss` (``optax.losses.log_cosh``); the registry knows it as an alias too.
log_cosh = log_cosh_loss


# ==========================================================================
# Robust losses with a scale: pseudo-Huber, Cauchy.
# ==========================================================================


def _squared_norm(fn: str, e: Array, axis) -> tuple[Array, tuple[int, ...] | None]:
    axes = _reduce_axis(fn, axis, e.ndim)
    return (jnp.square(e) if axes is None else jnp.sum(jnp.square(e), axis=axes)), axes


def _out_mask(mask: Array | None, axes) -> Array | None:
    if mask is None or axes is None:
        return mask
    return jnp.all(mask, axis=axes)


def _robust_sample() -> Sample:
    return _pair_sample(variants=({"delta": 0.3, "axis": -1},))


@register(
    "pseudo_huber_loss",
    aliases=("charbonnier_loss",),
    family=FAMILY,
    kind="per_example",
    formula="sqrt(|e|^2 + delta^2) - delta  (|e|^2 summed over `axis`, element-wise by default)",
    paper="Improved Techniques for Training Consistency Models (2023, arXiv:2310.14189)",
    reference="closed form (r^2 / (sqrt(r^2 + c^2) + c)); huggingface/diffusers scheduled_huber_loss_training "
    "conditional_loss (loss_type='huber') is 2 c times it",
    sample=_robust_sample,
)
def pseudo_huber_loss(
    predictions: ArrayLike,
    targets: ArrayLike | None = None,
    *,
    delta: float | ArrayLike = 1.0,
    axis: int | Sequence[int] | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Pseudo-Huber loss: L2 near 0, L1 far away, smooth everywhere.

    .. math:: \ell_\delta(e) = \sqrt{\|e\|^2 + \delta^2} - \delta
        = \frac{\|e\|^2}{\sqrt{\|e\|^2 + \delta^2} + \delta}

    computed in the second form (no cancellation for small ``e`` in low
    precision). ``axis=None`` is element-wise; ``axis`` (e.g. every non-batch
    axis) takes the norm over those axes, iCT's form with
    ``delta = 0.00054 sqrt(d)``. Scalings differ between sources: the
    Hartley-Zisserman / Wikipedia pseudo-Huber is ``delta`` times this (it
    matches :func:`huber_loss` asymptotically); diffusers' scheduled
    pseudo-Huber is ``2 delta`` times it, with ``delta`` per example from
    :func:`pseudo_huber_delta_schedule` (an array ``delta`` aligns with the
    output's leading axes).

    Args:
      predictions: ``[...]``.
      targets: broadcastable to ``predictions``; None means zeros.
      delta: ``c > 0``: a number, or an array aligned with the output's leading axes (per-example ``c(t)``).
      axis: None (element-wise) or the non-batch axes the norm runs over.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      ``predictions.shape`` (element-wise) or that shape without ``axis``.

    Paper: Song & Dhariwal, "Improved Techniques for Training Consistency
    Models", 2023, arXiv:2310.14189; Khrapov et al., "Improving Diffusion Models's
    Data-Corruption Resistance using Scheduled Pseudo-Huber Loss", 2024, arXiv:2403.16728.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.pseudo_huber_loss(jnp.array([0.0, 1.0, 100.0])).round(4)
      Array([ 0.    ,  0.4142, 99.005 ], dtype=float32)
      >>> lossjax.losses.pseudo_huber_loss(jnp.array([[3.0, 4.0]]), axis=-1)  # sqrt(25 + 1) - 1
      Array([4.0990195], dtype=float32)
    """
    fn = "pseudo_huber_loss"
    p, t, mask, dtype = _inputs(fn, predictions, targets, where)
    sq, axes = _squared_norm(fn, p - t, axis)
    out_mask = _out_mask(mask, axes)
    d = _delta(fn, delta, sq.shape, dtype, out_mask)
    loss = sq / (jnp.sqrt(sq + jnp.square(d)) + d)
    return C.zero_masked(loss, out_mask)


@register(
    "cauchy_loss",
    aliases=("lorentzian_loss",),
    family=FAMILY,
    kind="per_example",
    formula="log(1 + |e|^2 / delta^2)  (|e|^2 summed over `axis`, element-wise by default)",
    paper="Improved Training Technique for Latent Consistency Models (2025, arXiv:2502.01441)",
    reference="closed form (log1p); Barron's general robust loss at alpha = 0 is log(1 + (e/c)^2 / 2)",
    sample=_robust_sample,
)
def cauchy_loss(
    predictions: ArrayLike,
    targets: ArrayLike | None = None,
    *,
    delta: float | ArrayLike = 1.0,
    axis: int | Sequence[int] | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Cauchy (Lorentzian) loss: robust to impulsive outliers, redescending gradient.

    .. math:: \ell_\delta(e) = \log\!\big(1 + \|e\|^2/\delta^2\big)

    ``axis=None`` is element-wise; ``axis`` takes the norm over those axes
    (sLCT's form on flattened samples, with ``delta`` scheduled by the caller; an
    array ``delta`` aligns with the output's leading axes). The gradient
    ``2e / (delta^2 + |e|^2)`` vanishes for large residuals by design (non-convex).
    Barron's general loss at ``alpha = 0`` is ``log(1 + (e/c)^2/2)``, this loss at
    ``delta = sqrt(2) c``.

    Args:
      predictions: ``[...]``.
      targets: broadcastable to ``predictions``; None means zeros.
      delta: the scale ``c > 0``: a number or an array aligned with the output's leading axes.
      axis: None (element-wise) or the non-batch axes the norm runs over.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      ``predictions.shape`` (element-wise) or that shape without ``axis``.

    Paper: Dao et al., "Improved Training Technique for Latent Consistency
    Models", 2025, arXiv:2502.01441; Barron, "A General and Adaptive Robust Loss
    Function", CVPR 2019, arXiv:1701.03077.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.cauchy_loss(jnp.array([0.0, 1.0, 100.0])).round(4)
      Array([0.    , 0.6931, 9.2104], dtype=float32)
    """
    fn = "cauchy_loss"
    p, t, mask, dtype = _inputs(fn, predictions, targets, where)
    sq, axes = _squared_norm(fn, p - t, axis)
    out_mask = _out_mask(mask, axes)
    d = _delta(fn, delta, sq.shape, dtype, out_mask)
    return C.zero_masked(jnp.log1p(sq / jnp.square(d)), out_mask)


_SCHEDULES = ("exponential", "snr", "constant")


def _schedule_sample() -> Sample:
    t = np.array([0, 10, 250, 500, 999, 1], np.int32)
    alphas_cumprod = np.cumprod(1.0 - np.linspace(1e-4, 0.02, 1000)).astype(np.float32)
    return Sample(
        args=(t,),
        kwargs={"num_timesteps": 1000, "alphas_cumprod": alphas_cumprod},
        diff_argnums=(),
        where=False,
        variants=({"variant": "snr"}, {"variant": "constant", "delta": 0.3}),
    )


@register(
    "pseudo_huber_delta_schedule",
    aliases=("scheduled_huber_c",),
    family=FAMILY,
    kind="function",
    formula="exponential: delta^(t / T);  snr: (1 - delta) / (1 + sigma_t)^2 + delta, "
    "sigma_t = sqrt((1 - abar_t) / abar_t);  constant: delta",
    paper="Improving Diffusion Models's Data-Corruption Resistance using Scheduled Pseudo-Huber Loss "
    "(2024, arXiv:2403.16728)",
    reference="huggingface/diffusers examples/research_projects/scheduled_huber_loss_training/"
    "text_to_image/train_text_to_image.py (huber_c schedules), ported in numpy",
    sample=_schedule_sample,
)
def pseudo_huber_delta_schedule(
    timesteps: ArrayLike,
    *,
    variant: str = "snr",
    delta: float = 0.1,
    num_timesteps: int = 1000,
    alphas_cumprod: ArrayLike | None = None,
) -> Array:
    r"""Per-timestep pseudo-Huber scale ``c(t)`` of the scheduled pseudo-Huber loss (diffusers' ``huber_c``).

    .. math::
        c_{\exp}(t) = e^{-\alpha t},\ \alpha = -\ln(\delta)/T;\qquad
        c_{\mathrm{snr}}(t) = \frac{1-\delta}{(1+\sigma_t)^2} + \delta,\
        \sigma_t = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}

    Near 1 (L2-like) at low noise, shrinking to ``delta`` (robust, L1-like) at
    high noise. Feed the result to :func:`pseudo_huber_loss` as ``delta``
    (diffusers then multiplies the loss by ``2 c``).

    Args:
      timesteps: integer diffusion steps ``[B]``.
      variant: ``"snr"`` (diffusers' default), ``"exponential"`` or ``"constant"``.
      delta: the smallest scale ``c_0`` in ``(0, 1]`` (diffusers' ``huber_c``, default 0.1).
      num_timesteps: ``T``, the number of training timesteps (``"exponential"``).
      alphas_cumprod: ``[T]`` cumulative products of ``1 - beta_t`` (required by ``"snr"``).

    Returns:
      ``c(t)``, ``[B]`` float32 (or the dtype of ``alphas_cumprod``).

    Paper: Khrapov et al., "Improving Diffusion Models's Data-Corruption
    Resistance using Scheduled Pseudo-Huber Loss", 2024, arXiv:2403.16728.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.pseudo_huber_delta_schedule(
      ...     jnp.array([0, 500, 1000]), variant="exponential", delta=0.1, num_timesteps=1000).round(4).tolist()
      [1.0, 0.3162, 0.1]
    """
    fn = "pseudo_huber_delta_schedule"
    C.check_one_of(fn, "variant", variant, _SCHEDULES)
    C.check_in_range(fn, "delta", delta, 0.0, 1.0, low_inclusive=False)
    C.check_int(fn, "num_timesteps", num_timesteps, 1)
    t = C.check_array(fn, "timesteps", timesteps, dtype="number")
    if variant == "snr":
        if alphas_cumprod is None:
            raise ValueError(f"{fn}: variant='snr' needs `alphas_cumprod` ([num_timesteps]), got None.")
        ac = C.check_array(fn, "alphas_cumprod", alphas_cumprod, ndim=1, dtype="float")
        dtype = C.compute_dtype(ac)
        abar = jnp.take(C.as_compute(ac, dtype), t.astype(jnp.int32), mode="fill", fill_value=jnp.nan)
        sigma = jnp.sqrt((1.0 - abar) / abar)
        c0 = jnp.asarray(delta, dtype)
        return (1.0 - c0) / jnp.square(1.0 + sigma) + c0
    dtype = jnp.dtype(jnp.float32) if alphas_cumprod is None else C.compute_dtype(alphas_cumprod)
    if variant == "constant":
        return jnp.full(t.shape, delta, dtype)
    alpha = -math.log(float(delta)) / int(num_timesteps)
    return jnp.exp(-alpha * t.astype(dtype))


# ==========================================================================
# Quantiles and expectiles.
# ==========================================================================


def _quantile_levels(fn: str, quantiles, dtype):
    """``(levels, many)``: the quantile levels as an array (scalar or ``[Q]``) and whether there are several."""
    if isinstance(quantiles, jax.core.Tracer):
        q = jnp.asarray(quantiles, dtype)
        if q.ndim > 1:
            raise ValueError(f"{fn}: `quantiles` must be a number or a 1-D sequence, got shape {q.shape}.")
        return q, q.ndim == 1
    q = np.asarray(quantiles, dtype=np.float64) if not isinstance(quantiles, jax.Array) else np.asarray(quantiles)
    if q.ndim > 1 or q.size == 0 or not np.issubdtype(q.dtype, np.number):
        raise ValueError(f"{fn}: `quantiles` must be a number or a non-empty 1-D sequence, got {quantiles!r}.")
    for v in q.ravel():
        C.check_in_range(fn, "quantiles", float(v), 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    return jnp.asarray(q, dtype), q.ndim == 1


def _quantile_inputs(fn: str, predictions, targets, quantiles, where):
    """``(p, t, tau, mask)`` for a quantile loss: ``t`` and ``tau`` broadcast to ``p``'s shape."""
    p = C.check_array(fn, "predictions", predictions, dtype="float")
    t = C.check_array(fn, "targets", targets, dtype="number")
    dtype = C.compute_dtype(p, t)
    tau, many = _quantile_levels(fn, quantiles, dtype)
    if many:
        nq = tau.shape[0]
        if p.ndim < 1 or p.shape[-1] != nq:
            raise ValueError(
                f"{fn}: with {nq} `quantiles`, `predictions` must have them on its last axis ([..., {nq}]), "
                f"got shape {p.shape}."
            )
        if t.ndim == p.ndim - 1:
            t = t[..., None]
        _check_like(fn, "targets", t, p.shape)
        tau = jnp.broadcast_to(jnp.reshape(tau, (1,) * (p.ndim - 1) + (nq,)), p.shape)
    else:
        _check_like(fn, "targets", t, p.shape)
        tau = jnp.broadcast_to(tau, p.shape)
    mask = C.prepare_where(fn, where, p.shape)
    p = C.fill_masked(C.as_compute(p, dtype), mask)
    t = C.fill_masked(jnp.broadcast_to(C.as_compute(t, dtype), p.shape), mask)
    return p, t, tau, mask


def _quantile_sample(**kw) -> Sample:
    rng = _rng(2)
    p = rng.normal(size=(6, 3)).astype(np.float32)
    t = rng.normal(size=(6,)).astype(np.float32)
    return Sample(args=(p, t), kwargs={"quantiles": (0.1, 0.5, 0.9)}, diff_argnums=(0, 1), **kw)


@register(
    "pinball_loss",
    aliases=("quantile_loss",),
    family=FAMILY,
    kind="per_example",
    formula="max(tau r, (tau - 1) r),  r = targets - predictions  (one column per quantile level)",
    paper="Flexible Model Aggregation for Quantile Regression (2021, arXiv:2103.00083)",
    reference="amazon-science/quantile-aggregation util/metric.py::pinball_loss (closed form, torch.maximum)",
    sample=_quantile_sample,
)
def pinball_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    quantiles: float | Sequence[float] = 0.5,
    where: ArrayLike | None = None,
) -> Array:
    r"""Pinball (quantile) loss, for one or many quantile levels at once.

    .. math:: \rho_\tau(r) = \max(\tau r,\ (\tau - 1) r),\qquad r = y - \hat q_\tau

    With one level, ``predictions`` and ``targets`` are element-wise. With
    ``quantiles [Q]``, ``predictions [..., Q]`` holds one predicted quantile per
    level and ``targets [...]`` (or ``[..., Q]``) the observations; the loss is
    ``[..., Q]`` (its mean over the last axis is the multi-quantile loss; the
    weighted interval score of ``K`` central intervals and the median is its sum
    over those ``2K + 1`` levels divided by ``K + 1/2``). The sign convention: under-prediction
    (``y > q``) costs ``tau`` per unit, so the minimizer is the ``tau``-quantile.
    At ``r = 0`` the gradient with respect to the prediction is ``1/2 - tau``
    (the midpoint of the subdifferential, what ``jnp.maximum`` and
    ``torch.maximum`` give at a tie); for ``tau = 1/2`` that is 0, as for ``|e|/2``.
    The loss does not prevent quantile crossing (sort the predictions afterwards
    if needed).

    Args:
      predictions: ``[...]``, or ``[..., Q]`` with several levels.
      targets: like ``predictions``, or ``predictions.shape[:-1]`` with several levels.
      quantiles: a level in ``(0, 1)`` or a sequence of ``Q`` levels.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-element loss, ``predictions.shape``.

    Paper: Fakoor, Kim, Mueller, Smola, Tibshirani, "Flexible Model Aggregation
    for Quantile Regression", JMLR 2023, arXiv:2103.00083; Koenker & Bassett,
    "Regression Quantiles", 1978 (no arXiv id); the weighted interval score:
    Bracher et al. 2021, arXiv:2005.12881.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> q = jnp.array([[-1.0, 0.0, 1.0]])  # predicted 10%, 50%, 90% quantiles
      >>> lossjax.losses.pinball_loss(q, jnp.array([2.0]), quantiles=(0.1, 0.5, 0.9)).round(4).tolist()
      [[0.3, 1.0, 0.9]]
    """
    fn = "pinball_loss"
    p, t, tau, mask = _quantile_inputs(fn, predictions, targets, quantiles, where)
    r = t - p
    return C.zero_masked(jnp.maximum(tau * r, (tau - 1.0) * r), mask)


@register(
    "quantile_huber_loss",
    family=FAMILY,
    kind="per_example",
    formula="|tau - 1[u < 0]| huber_delta(u) / delta,  u = targets - predictions",
    paper="Distributional Reinforcement Learning with Quantile Regression (2017, arXiv:1710.10044)",
    reference="google/dopamine agents/quantile/quantile_agent.py (quantile Huber: |tau - 1[u<0]| * huber / kappa), "
    "closed form in torch",
    sample=lambda: _quantile_sample(variants=({"delta": 0.5},)),
)
def quantile_huber_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    quantiles: float | Sequence[float] = 0.5,
    delta: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Quantile Huber loss of QR-DQN: the pinball loss with a Huber core.

    .. math:: \rho^\kappa_\tau(u) = |\tau - \mathbb 1[u < 0]|\ \frac{L_\kappa(u)}{\kappa},\qquad u = y - \hat q_\tau

    with ``L_kappa`` the Huber loss (:func:`huber_loss`, ``delta = kappa``).
    Divided by ``kappa`` as in the paper and dopamine, so it tends to the pinball
    loss as ``kappa -> 0``. Its derivative is continuous (0 at ``u = 0``). Shapes
    as :func:`pinball_loss`; QR-DQN's all-pairs loss between ``N`` predicted and
    ``N'`` target quantiles is this on ``predictions[..., None, :]`` broadcast
    against ``targets[..., :, None]`` (tile them to ``[..., N', N]``).

    Args:
      predictions: ``[...]``, or ``[..., Q]`` with several levels.
      targets: like ``predictions``, or ``predictions.shape[:-1]`` with several levels.
      quantiles: a level in ``(0, 1)`` or a sequence of ``Q`` levels.
      delta: ``kappa > 0``, the Huber threshold.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-element loss, ``predictions.shape``.

    Paper: Dabney, Rowland, Bellemare, Munos, "Distributional Reinforcement
    Learning with Quantile Regression", AAAI 2018, arXiv:1710.10044.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.quantile_huber_loss(jnp.array([0.0, 0.0]), jnp.array([0.5, -3.0]), quantiles=0.9).round(4)
      Array([0.1125, 0.25  ], dtype=float32)
    """
    fn = "quantile_huber_loss"
    C.check_positive(fn, "delta", delta)
    p, t, tau, mask = _quantile_inputs(fn, predictions, targets, quantiles, where)
    u = t - p
    d = jnp.asarray(delta, p.dtype)
    a = _abs(u)
    q = jnp.minimum(a, d)
    huber = 0.5 * jnp.square(q) + d * (a - q)
    weight = _abs(tau - (u < 0).astype(p.dtype))
    return C.zero_masked(weight * huber / d, mask)


@register(
    "expectile_loss",
    family=FAMILY,
    kind="per_example",
    formula="|tau - 1[r < 0]| r^2,  r = targets - predictions,  tau = expectile",
    paper="Offline Reinforcement Learning with Implicit Q-Learning (2021, arXiv:2110.06169)",
    reference="ikostrikov/implicit_q_learning critic.py::loss(diff, expectile) (weight * diff**2, diff = q - v)",
    sample=lambda: _pair_sample(variants=({"expectile": 0.3},)),
)
def expectile_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    expectile: float = 0.8,
    where: ArrayLike | None = None,
) -> Array:
    r"""Expectile (asymmetric squared) loss, IQL's value loss.

    .. math:: L^\tau_2(r) = |\tau - \mathbb 1[r < 0]|\, r^2,\qquad r = y - \hat y

    Under-prediction (``y > y_hat``) is weighted by ``tau``, so the minimizer is
    the ``tau``-expectile (the mean at ``tau = 1/2``, where the loss is ``e^2/2``).
    IQL uses ``tau = 0.7`` (MuJoCo) and ``0.9`` (AntMaze); its function default is 0.8.

    Args:
      predictions: ``[...]`` (IQL: ``V(s)``).
      targets: broadcastable to ``predictions`` (IQL: ``Q(s, a)``, held constant by the caller).
      expectile: ``tau`` in ``(0, 1)``.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-element loss, ``predictions.shape``.

    Paper: Kostrikov, Nair, Levine, "Offline Reinforcement Learning with Implicit
    Q-Learning", ICLR 2022, arXiv:2110.06169; RIQL keeps it: Yang et al.,
    "Towards Robust Offline Reinforcement Learning under Diverse Data
    Corruption", 2023, arXiv:2310.12955.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.expectile_loss(jnp.array([0.0, 0.0]), jnp.array([1.0, -1.0]), expectile=0.8)
      Array([0.8       , 0.19999999], dtype=float32)
    """
    fn = "expectile_loss"
    C.check_in_range(fn, "expectile", expectile, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    p, t, mask, dtype = _inputs(fn, predictions, targets, where)
    r = t - p
    tau = jnp.asarray(expectile, dtype)
    weight = jnp.where(r > 0, tau, 1.0 - tau)
    return C.zero_masked(weight * jnp.square(r), mask)


# ==========================================================================
# Percentage and logarithmic errors (element-wise).
# ==========================================================================


@register(
    "absolute_percentage_error",
    aliases=("mape_loss",),
    family=FAMILY,
    kind="per_example",
    formula="|targets - predictions| / max(|targets|, epsilon)",
    paper=_SURVEY,
    reference="sklearn.metrics.mean_absolute_percentage_error (per element, eps = float64 machine epsilon)",
    sample=_positive_pair_sample,
)
def absolute_percentage_error(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    epsilon: float = _MAPE_EPSILON,
    where: ArrayLike | None = None,
) -> Array:
    r"""Element-wise absolute percentage error (MAPE is its mean; a fraction, not percent).

    .. math:: \ell = \frac{|y - \hat y|}{\max(|y|, \epsilon)}

    The floor on ``|y|`` is scikit-learn's (float64 machine epsilon by default):
    a zero target gives a large but finite loss.

    Args:
      predictions: ``[...]``.
      targets: broadcastable to ``predictions``.
      epsilon: the floor on ``|targets|``.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-element loss, ``predictions.shape``.

    Paper: Jadon et al., "A Comprehensive Survey of Regression Based Loss
    Functions for Time Series Forecasting", 2022, arXiv:2211.02989 (MAPE).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.absolute_percentage_error(jnp.array([1.5, 1.0]), jnp.array([1.0, 4.0]))
      Array([0.5 , 0.75], dtype=float32)
    """
    fn = "absolute_percentage_error"
    C.check_positive(fn, "epsilon", epsilon)
    p, t, mask, _ = _inputs(fn, predictions, targets, where)
    den = jnp.maximum(_abs(t), jnp.asarray(epsilon, t.dtype))
    return C.zero_masked(_abs(t - p) / den, mask)


@register(
    "symmetric_absolute_percentage_error",
    aliases=("smape_loss",),
    family=FAMILY,
    kind="per_example",
    formula="2 |predictions - targets| / (|targets| + |predictions|)  (0 when both are 0)",
    paper=_SURVEY,
    reference="closed form (sMAPE in [0, 2]; Makridakis 1993)",
    sample=_positive_pair_sample,
)
def symmetric_absolute_percentage_error(
    predictions: ArrayLike, targets: ArrayLike, *, where: ArrayLike | None = None
) -> Array:
    r"""Element-wise symmetric absolute percentage error (sMAPE is its mean), in ``[0, 2]``.

    .. math:: \ell = \frac{2\,|\hat y - y|}{|y| + |\hat y|},\qquad \ell = 0 \text{ when } y = \hat y = 0

    Args:
      predictions: ``[...]``.
      targets: broadcastable to ``predictions``.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-element loss, ``predictions.shape``.

    Paper: Makridakis, "Accuracy measures: theoretical and practical concerns",
    1993 (no arXiv id); listed in Jadon et al. 2022, arXiv:2211.02989.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.symmetric_absolute_percentage_error(jnp.array([3.0, 0.0]), jnp.array([1.0, 0.0]))
      Array([1., 0.], dtype=float32)
    """
    p, t, mask, _ = _inputs("symmetric_absolute_percentage_error", predictions, targets, where)
    return C.zero_masked(_safe_div(2.0 * _abs(p - t), _abs(t) + _abs(p)), mask)


@register(
    "squared_log_error",
    aliases=("msle_loss",),
    family=FAMILY,
    kind="per_example",
    formula="(log1p(predictions) - log1p(targets))^2",
    paper=_SURVEY,
    reference="sklearn.metrics.mean_squared_log_error (per element)",
    sample=_positive_pair_sample,
)
def squared_log_error(predictions: ArrayLike, targets: ArrayLike, *, where: ArrayLike | None = None) -> Array:
    r"""Element-wise squared logarithmic error (MSLE is its mean).

    .. math:: \ell = \big(\log(1 + \hat y) - \log(1 + y)\big)^2

    Defined for values ``> -1`` (scikit-learn's domain; below it the loss is
    NaN, as ``log1p``). Keras instead clamps both at ``epsilon >= 0``.

    Args:
      predictions: ``[...]``, ``> -1``.
      targets: broadcastable to ``predictions``, ``> -1``.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-element loss, ``predictions.shape``.

    Paper: Jadon et al., "A Comprehensive Survey of Regression Based Loss
    Functions for Time Series Forecasting", 2022, arXiv:2211.02989 (MSLE).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.squared_log_error(jnp.array([0.0, 3.0]), jnp.array([0.0, 1.0])).round(4)
      Array([0.    , 0.4805], dtype=float32)
    """
    p, t, mask, _ = _inputs("squared_log_error", predictions, targets, where)
    return C.zero_masked(jnp.square(jnp.log1p(p) - jnp.log1p(t)), mask)


# ==========================================================================
# The batch-level error metrics (one value for the whole, possibly sharded, batch).
# ==========================================================================


def _batch_inputs(fn: str, predictions, targets, where):
    p, t, mask, dtype = _inputs(fn, predictions, targets, where)
    valid = jnp.ones(p.shape, bool) if mask is None else mask
    return p, t, valid, dtype


def _gsum(x: Array, valid: Array, axis_name) -> Array:
    return psum(jnp.sum(jnp.where(valid, x, jnp.zeros((), x.dtype))), axis_name)


def _batch_sample(**kw) -> Sample:
    rng = _rng(3)
    p = rng.normal(size=(6, 2)).astype(np.float32)
    t = (rng.normal(size=(6, 2)) + 0.5).astype(np.float32)
    return Sample(args=(p, t), diff_argnums=(0,), **kw)


def _batch_log_sample() -> Sample:
    rng = _rng(4)
    p = rng.uniform(0.1, 3.0, size=(6, 2)).astype(np.float32)
    t = rng.uniform(0.1, 3.0, size=(6, 2)).astype(np.float32)
    return Sample(args=(p, t), diff_argnums=(0,))


@register(
    "root_mean_squared_error",
    aliases=("rmse_loss",),
    family=FAMILY,
    kind="batch",
    formula="sqrt(mean((predictions - targets)^2))",
    paper=_SURVEY,
    reference="sklearn.metrics.root_mean_squared_error",
    sample=_batch_sample,
    runtime=("axis_name",),
)
def root_mean_squared_error(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    where: ArrayLike | None = None,
    axis_name: str | None = None,
) -> Array:
    r"""Root mean squared error of the whole batch (every element of every unmasked example).

    .. math:: \mathrm{RMSE} = \sqrt{\tfrac1n \textstyle\sum (\hat y - y)^2}

    The gradient at a perfect fit (``RMSE = 0``) is 0. With ``axis_name`` the
    mean runs over the global batch (every device's examples).

    Args:
      predictions: ``[N, ...]``.
      targets: broadcastable to ``predictions``.
      where: optional boolean mask aligned with the leading axes (``[N]`` masks examples).
      axis_name: mapped axis of a data-parallel batch (``shard_map``/``pmap``).

    Returns:
      A scalar (0 for an empty or all-masked batch).

    Paper: Jadon et al., "A Comprehensive Survey of Regression Based Loss
    Functions for Time Series Forecasting", 2022, arXiv:2211.02989 (RMSE).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.root_mean_squared_error(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0])).round(4)
      Array(1.5811, dtype=float32)
    """
    p, t, valid, _ = _batch_inputs("root_mean_squared_error", predictions, targets, where)
    return C.safe_sqrt(C.masked_mean(jnp.square(p - t), valid, axis_name=axis_name))


@register(
    "root_mean_squared_log_error",
    aliases=("rmsle_loss",),
    family=FAMILY,
    kind="batch",
    formula="sqrt(mean((log1p(predictions) - log1p(targets))^2))",
    paper=_SURVEY,
    reference="sklearn.metrics.root_mean_squared_log_error",
    sample=_batch_log_sample,
    runtime=("axis_name",),
)
def root_mean_squared_log_error(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    where: ArrayLike | None = None,
    axis_name: str | None = None,
) -> Array:
    r"""Root mean squared logarithmic error of the whole batch.

    .. math:: \mathrm{RMSLE} = \sqrt{\tfrac1n \textstyle\sum (\log(1+\hat y) - \log(1+y))^2}

    Args:
      predictions: ``[N, ...]``, ``> -1``.
      targets: broadcastable to ``predictions``, ``> -1``.
      where: optional boolean mask aligned with the leading axes.
      axis_name: mapped axis of a data-parallel batch.

    Returns:
      A scalar (0 for an empty or all-masked batch).

    Paper: Jadon et al., "A Comprehensive Survey of Regression Based Loss
    Functions for Time Series Forecasting", 2022, arXiv:2211.02989 (RMSLE).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.root_mean_squared_log_error(jnp.array([0.0, 3.0]), jnp.array([0.0, 1.0])).round(4)
      Array(0.4901, dtype=float32)
    """
    p, t, valid, _ = _batch_inputs("root_mean_squared_log_error", predictions, targets, where)
    sq = jnp.square(jnp.log1p(p) - jnp.log1p(t))
    return C.safe_sqrt(C.masked_mean(sq, valid, axis_name=axis_name))


def _ratio(num: Array, den: Array, epsilon: float) -> Array:
    return num / jnp.maximum(den, jnp.asarray(epsilon, den.dtype))


@register(
    "relative_absolute_error",
    aliases=("rae_loss",),
    family=FAMILY,
    kind="batch",
    formula="sum|targets - predictions| / max(sum|targets - mean(targets)|, epsilon)",
    paper=_SURVEY,
    reference="closed form (the survey's RAE: aryan-jadon/Regression-Loss-Functions-in-Time-Series-Forecasting-"
    "Tensorflow libs/utils.py::RelativeAbsoluteError)",
    sample=_batch_sample,
    runtime=("axis_name",),
)
def relative_absolute_error(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    epsilon: float = 1e-12,
    where: ArrayLike | None = None,
    axis_name: str | None = None,
) -> Array:
    r"""Relative absolute error: the absolute error relative to predicting the batch mean.

    .. math:: \mathrm{RAE} = \frac{\sum |y - \hat y|}{\max(\sum |y - \bar y|,\ \epsilon)}

    A batch of constant targets has a zero denominator; ``epsilon`` keeps the
    value finite.

    Args:
      predictions: ``[N, ...]``.
      targets: broadcastable to ``predictions``.
      epsilon: floor on the denominator.
      where: optional boolean mask aligned with the leading axes.
      axis_name: mapped axis of a data-parallel batch (global sums and mean).

    Returns:
      A scalar.

    Paper: Jadon et al., "A Comprehensive Survey of Regression Based Loss
    Functions for Time Series Forecasting", 2022, arXiv:2211.02989 (RAE).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.relative_absolute_error(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0]))  # 3 / 4
      Array(0.75, dtype=float32)
    """
    fn = "relative_absolute_error"
    C.check_positive(fn, "epsilon", epsilon)
    p, t, valid, _ = _batch_inputs(fn, predictions, targets, where)
    mean_t = C.masked_mean(t, valid, axis_name=axis_name)
    num = _gsum(_abs(t - p), valid, axis_name)
    den = _gsum(_abs(t - mean_t), valid, axis_name)
    return _ratio(num, den, epsilon)


@register(
    "relative_squared_error",
    aliases=("rse_loss",),
    family=FAMILY,
    kind="batch",
    formula="sum (targets - predictions)^2 / max(sum (targets - mean(targets))^2, epsilon)",
    paper=_SURVEY,
    reference="closed form (1 - R^2: sklearn.metrics.r2_score)",
    sample=_batch_sample,
    runtime=("axis_name",),
)
def relative_squared_error(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    epsilon: float = 1e-12,
    where: ArrayLike | None = None,
    axis_name: str | None = None,
) -> Array:
    r"""Relative squared error, ``1 - R^2``: the squared error relative to predicting the batch mean.

    .. math:: \mathrm{RSE} = \frac{\sum (y - \hat y)^2}{\max(\sum (y - \bar y)^2,\ \epsilon)}

    (The survey's reference code divides the squared error by itself, always 1;
    this is the survey's formula.)

    Args:
      predictions: ``[N, ...]``.
      targets: broadcastable to ``predictions``.
      epsilon: floor on the denominator (constant targets).
      where: optional boolean mask aligned with the leading axes.
      axis_name: mapped axis of a data-parallel batch (global sums and mean).

    Returns:
      A scalar.

    Paper: Jadon et al., "A Comprehensive Survey of Regression Based Loss
    Functions for Time Series Forecasting", 2022, arXiv:2211.02989 (RSE).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.relative_squared_error(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0]))  # 5 / 8
      Array(0.625, dtype=float32)
    """
    fn = "relative_squared_error"
    C.check_positive(fn, "epsilon", epsilon)
    p, t, valid, _ = _batch_inputs(fn, predictions, targets, where)
    mean_t = C.masked_mean(t, valid, axis_name=axis_name)
    num = _gsum(jnp.square(t - p), valid, axis_name)
    den = _gsum(jnp.square(t - mean_t), valid, axis_name)
    return _ratio(num, den, epsilon)


_NRMSE_VARIANTS = ("range", "mean", "std")


@register(
    "normalized_root_mean_squared_error",
    aliases=("nrmse_loss",),
    family=FAMILY,
    kind="batch",
    formula="RMSE / max(s, epsilon),  s = max(y) - min(y) ('range') | |mean(y)| ('mean') | std(y) ('std')",
    paper=_SURVEY,
    reference="closed form (numpy; sklearn.metrics.root_mean_squared_error for the RMSE)",
    sample=lambda: _batch_sample(variants=({"variant": "mean"}, {"variant": "std"})),
    runtime=("axis_name",),
)
def normalized_root_mean_squared_error(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    variant: str = "range",
    epsilon: float = 1e-12,
    where: ArrayLike | None = None,
    axis_name: str | None = None,
) -> Array:
    r"""RMSE normalized by the spread (or size) of the targets.

    .. math:: \mathrm{NRMSE} = \frac{\mathrm{RMSE}}{\max(s, \epsilon)},\qquad
        s \in \{\max y - \min y,\ |\bar y|,\ \operatorname{std}(y)\}

    The normalizer is computed from the (unmasked, global) targets; ``"std"`` is
    the population standard deviation, so ``NRMSE_std = sqrt(RSE)``. (The
    survey's reference code divides by the standard deviation of the
    *predictions*, which a model can inflate to lower the loss.)

    Args:
      predictions: ``[N, ...]``.
      targets: broadcastable to ``predictions``.
      variant: ``"range"`` (default), ``"mean"`` or ``"std"``.
      epsilon: floor on the normalizer.
      where: optional boolean mask aligned with the leading axes.
      axis_name: mapped axis of a data-parallel batch.

    Returns:
      A scalar.

    Paper: Jadon et al., "A Comprehensive Survey of Regression Based Loss
    Functions for Time Series Forecasting", 2022, arXiv:2211.02989 (NRMSE).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.normalized_root_mean_squared_error(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0])).round(4)
      Array(0.3953, dtype=float32)
    """
    fn = "normalized_root_mean_squared_error"
    C.check_one_of(fn, "variant", variant, _NRMSE_VARIANTS)
    C.check_positive(fn, "epsilon", epsilon)
    p, t, valid, dtype = _batch_inputs(fn, predictions, targets, where)
    rmse = C.safe_sqrt(C.masked_mean(jnp.square(p - t), valid, axis_name=axis_name))
    mean_t = C.masked_mean(t, valid, axis_name=axis_name)
    if variant == "mean":
        s = _abs(mean_t)
    elif variant == "std":
        s = C.safe_sqrt(C.masked_mean(jnp.square(t - mean_t), valid, axis_name=axis_name))
    else:
        hi = jnp.max(jnp.where(valid, t, jnp.asarray(-jnp.inf, dtype)))
        lo = jnp.min(jnp.where(valid, t, jnp.asarray(jnp.inf, dtype)))
        if axis_name is not None:
            hi, lo = jax.lax.pmax(hi, axis_name), jax.lax.pmin(lo, axis_name)
        s = jnp.where(hi >= lo, hi - lo, jnp.zeros((), dtype))  # an empty batch: 0 (then epsilon)
    return _ratio(rmse, s, epsilon)


@register(
    "relative_root_mean_squared_error",
    aliases=("rrmse_loss",),
    family=FAMILY,
    kind="batch",
    formula="sqrt(sum (targets - predictions)^2 / max(sum targets^2, epsilon))",
    paper=_SURVEY,
    reference="closed form (the relative L2 error ||y - y_hat|| / ||y||)",
    sample=_batch_sample,
    runtime=("axis_name",),
)
def relative_root_mean_squared_error(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    epsilon: float = 1e-12,
    where: ArrayLike | None = None,
    axis_name: str | None = None,
) -> Array:
    r"""Relative RMSE: the relative L2 error ``||y - y_hat|| / ||y||`` of the batch.

    .. math:: \mathrm{RRMSE} = \sqrt{\frac{\sum (y - \hat y)^2}{\max(\sum y^2,\ \epsilon)}}

    Relative to the targets (the survey's code divides by ``sum y_hat^2``, which
    a model lowers by inflating its predictions). The gradient at a perfect fit is 0.

    Args:
      predictions: ``[N, ...]``.
      targets: broadcastable to ``predictions``.
      epsilon: floor on ``sum y^2``.
      where: optional boolean mask aligned with the leading axes.
      axis_name: mapped axis of a data-parallel batch.

    Returns:
      A scalar.

    Paper: Jadon et al., "A Comprehensive Survey of Regression Based Loss
    Functions for Time Series Forecasting", 2022, arXiv:2211.02989 (RRMSE).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.relative_root_mean_squared_error(jnp.array([3.0, 0.0]), jnp.array([3.0, 4.0]))
      Array(0.8, dtype=float32)
    """
    fn = "relative_root_mean_squared_error"
    C.check_positive(fn, "epsilon", epsilon)
    p, t, valid, _ = _batch_inputs(fn, predictions, targets, where)
    num = _gsum(jnp.square(t - p), valid, axis_name)
    den = _gsum(jnp.square(t), valid, axis_name)
    return C.safe_sqrt(_ratio(num, den, epsilon))


# ==========================================================================
# Negative log-likelihoods, scoring rules and deviances.
# ==========================================================================


def _variance_shape(fn: str, arg: str, v, shape) -> Array:
    """PyTorch's ``GaussianNLLLoss`` rule: ``v`` may lack the last axis of ``predictions`` (homoscedastic)."""
    v = C.check_array(fn, arg, v, dtype="number")
    if v.ndim >= 1 and v.ndim == len(shape) - 1 and tuple(v.shape) == tuple(shape[:-1]):
        v = v[..., None]
    return v


def _nll_sample(seed: int, **kw) -> Sample:
    rng = _rng(seed)
    mu = rng.normal(size=(6, 3)).astype(np.float32)
    y = rng.normal(size=(6, 3)).astype(np.float32)
    s = rng.uniform(0.3, 2.0, size=(6, 3)).astype(np.float32)
    return Sample(args=(mu, y, s), diff_argnums=(0, 2), **kw)


@register(
    "gaussian_nll_loss",
    aliases=("heteroscedastic_gaussian_nll",),
    family=FAMILY,
    kind="per_example",
    formula="0.5 (log max(var, epsilon) + (predictions - targets)^2 / max(var, epsilon)) [+ 0.5 log 2 pi]",
    paper="What Uncertainties Do We Need in Bayesian Deep Learning for Computer Vision? (2017, arXiv:1703.04977)",
    reference="torch.nn.functional.gaussian_nll_loss(full=, eps=, reduction='none')",
    sample=lambda: _nll_sample(5, variants=({"full": True},)),
)
def gaussian_nll_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    variances: ArrayLike,
    *,
    full: bool = False,
    epsilon: float = 1e-6,
    where: ArrayLike | None = None,
) -> Array:
    r"""Gaussian negative log-likelihood with a predicted variance (PyTorch's ``GaussianNLLLoss`` semantics).

    .. math:: \ell = \tfrac12\Big(\log v + \frac{(\hat\mu - y)^2}{v}\Big)\ \big[+\ \tfrac12\log 2\pi\big],
        \qquad v = \max(\sigma^2, \epsilon)

    As in PyTorch: the constant is added only with ``full=True``; the variance
    is clamped at ``epsilon`` in the forward pass while its gradient flows as if
    unclamped (PyTorch clamps a clone under ``no_grad``); ``variances`` may have
    ``predictions``' shape, lack its last axis (one variance per row), or
    broadcast (axes equal or 1, or a scalar). Predict ``exp(log_variance)`` or a
    softplus to keep it positive; negative variances are invalid (PyTorch raises;
    here they are clamped, and :func:`lossjax.checked` does not check them).

    Args:
      predictions: the predicted mean ``[...]``.
      targets: broadcastable to ``predictions``.
      variances: the predicted variance ``sigma^2 >= 0`` (see the shapes above).
      full: add the constant ``0.5 log(2 pi)``.
      epsilon: the variance floor.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-element loss, ``predictions.shape``.

    Paper: Nix & Weigend, "Estimating the mean and variance of the target
    probability distribution", 1994 (no arXiv id); Kendall & Gal, "What
    Uncertainties Do We Need in Bayesian Deep Learning for Computer Vision?",
    NeurIPS 2017, arXiv:1703.04977.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.gaussian_nll_loss(jnp.array([0.0, 1.0]), jnp.array([1.0, 1.0]), jnp.array([1.0, 0.5])).round(4)
      Array([ 0.5   , -0.3466], dtype=float32)
    """
    fn = "gaussian_nll_loss"
    _check_bool_flag(fn, "full", full)
    C.check_positive(fn, "epsilon", epsilon)
    v = _variance_shape(fn, "variances", variances, jnp.shape(predictions))
    p, t, mask, dtype = _inputs(fn, predictions, targets, where)
    v = _floor_st(_param(fn, "variances", v, p.shape, dtype, mask), epsilon)
    loss = 0.5 * (jnp.log(v) + jnp.square(p - t) / v)
    if full:
        loss = loss + 0.5 * _LOG_2PI
    return C.zero_masked(loss, mask)


@register(
    "laplace_nll_loss",
    family=FAMILY,
    kind="per_example",
    formula="log max(b, epsilon) + |predictions - targets| / max(b, epsilon) [+ log 2]",
    paper="What Uncertainties Do We Need in Bayesian Deep Learning for Computer Vision? (2017, arXiv:1703.04977)",
    reference="-torch.distributions.Laplace(loc, scale).log_prob(target) (full=True)",
    sample=lambda: _nll_sample(6, variants=({"full": True},)),
)
def laplace_nll_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    scales: ArrayLike,
    *,
    full: bool = False,
    epsilon: float = 1e-6,
    where: ArrayLike | None = None,
) -> Array:
    r"""Laplace negative log-likelihood with a predicted scale (heteroscedastic L1).

    .. math:: \ell = \log b + \frac{|\hat\mu - y|}{b}\ \big[+\ \log 2\big],\qquad b = \max(\text{scale}, \epsilon)

    Same conventions as :func:`gaussian_nll_loss`: the constant only with
    ``full=True`` (then it is ``-Laplace(mu, b).log_prob(y)``), the scale clamped
    at ``epsilon`` with a pass-through gradient, and the same shape rules.

    Args:
      predictions: the predicted location ``[...]``.
      targets: broadcastable to ``predictions``.
      scales: the predicted scale ``b >= 0``.
      full: add the constant ``log 2``.
      epsilon: the scale floor.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-element loss, ``predictions.shape``.

    Paper: Kendall & Gal, "What Uncertainties Do We Need in Bayesian Deep
    Learning for Computer Vision?", NeurIPS 2017, arXiv:1703.04977 (the Laplace
    likelihood for regression).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.laplace_nll_loss(jnp.array([0.0]), jnp.array([2.0]), jnp.array([1.0]), full=True).round(4)
      Array([2.6931], dtype=float32)
    """
    fn = "laplace_nll_loss"
    _check_bool_flag(fn, "full", full)
    C.check_positive(fn, "epsilon", epsilon)
    s = _variance_shape(fn, "scales", scales, jnp.shape(predictions))
    p, t, mask, dtype = _inputs(fn, predictions, targets, where)
    b = _floor_st(_param(fn, "scales", s, p.shape, dtype, mask), epsilon)
    loss = jnp.log(b) + _abs(p - t) / b
    if full:
        loss = loss + _LOG_2
    return C.zero_masked(loss, mask)


def _student_sample() -> Sample:
    s = _nll_sample(7)
    df = np.array([1.5, 3.0, 5.0, 10.0, 2.5, 30.0], np.float32)[:, None] * np.ones((1, 3), np.float32)
    return Sample(args=(*s.args, df), diff_argnums=(0, 2))


@register(
    "student_t_nll_loss",
    aliases=("student_t_nll",),
    family=FAMILY,
    kind="per_example",
    formula="lgamma(df/2) - lgamma((df+1)/2) + 0.5 log(df pi) + log s + (df+1)/2 log1p(e^2 / (df s^2))",
    paper="Robust Statistical Modeling Using the t Distribution (Lange, Little, Taylor, 1989)",
    reference="-scipy.stats.t.logpdf(targets, df, loc=predictions, scale=scales); "
    "-torch.distributions.StudentT(df, loc, scale).log_prob",
    sample=_student_sample,
)
def student_t_nll_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    scales: ArrayLike,
    df: ArrayLike,
    *,
    epsilon: float = 1e-6,
    where: ArrayLike | None = None,
) -> Array:
    r"""Student-t negative log-likelihood with predicted location, scale and (optionally) degrees of freedom.

    .. math:: \ell = \log\Gamma\!\big(\tfrac\nu2\big) - \log\Gamma\!\big(\tfrac{\nu+1}2\big)
        + \tfrac12\log(\nu\pi) + \log s + \tfrac{\nu+1}{2}\log\!\Big(1 + \frac{(y-\mu)^2}{\nu s^2}\Big)

    computed in float32 as ``log B(nu/2, 1/2) + log(nu)/2 + ...`` (the two
    log-gammas cancel catastrophically for large ``nu``). The full negative
    log-density (``-scipy.stats.t.logpdf``), heavy-tailed:
    an outlier's gradient is bounded, unlike the Gaussian NLL's. ``df`` is data:
    a number, or predicted per element (keep it ``> 0``, e.g. ``2 + softplus``
    for a finite variance). The scale is clamped at ``epsilon`` as in
    :func:`gaussian_nll_loss`.

    Args:
      predictions: the location ``mu`` ``[...]``.
      targets: broadcastable to ``predictions``.
      scales: the scale ``s >= 0`` (not the variance).
      df: degrees of freedom ``nu > 0`` (a number or broadcastable to ``predictions``).
      epsilon: the scale floor.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-element loss, ``predictions.shape``.

    Paper: Lange, Little, Taylor, "Robust Statistical Modeling Using the t
    Distribution", JASA 1989 (no arXiv id); as a forecasting likelihood in
    "Forecasting Probability Distributions of Financial Returns with Deep Neural
    Networks" (the catalog's seed; arXiv id not verified offline).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.student_t_nll_loss(jnp.array([0.0]), jnp.array([1.0]), jnp.array([1.0]), 3.0).round(4).tolist()
      [1.5763]
    """
    fn = "student_t_nll_loss"
    C.check_positive(fn, "epsilon", epsilon)
    p, t, mask, dtype = _inputs(fn, predictions, targets, where)
    s = _floor_st(_param(fn, "scales", scales, p.shape, dtype, mask), epsilon)
    nu = _param(fn, "df", df, p.shape, dtype, mask)
    z2 = jnp.square((t - p) / s) / nu
    if dtype == jnp.float64:  # two log-gammas: exact to ~1e-12 in float64 (JAX's betaln is float32-accurate)
        lg = jax.scipy.special.gammaln
        log_norm = lg(0.5 * nu) - lg(0.5 * (nu + 1.0)) + 0.5 * (jnp.log(nu) + math.log(math.pi))
    else:  # log G(nu/2) - log G((nu+1)/2) + log(pi)/2 = log B(nu/2, 1/2): the lgammas would cancel in float32
        log_norm = jax.scipy.special.betaln(0.5 * nu, jnp.full((), 0.5, dtype)) + 0.5 * jnp.log(nu)
    loss = log_norm + jnp.log(s) + 0.5 * (nu + 1.0) * jnp.log1p(z2)
    return C.zero_masked(loss, mask)


def _crps_sample() -> Sample:
    return _nll_sample(8)


@register(
    "crps_gaussian_loss",
    aliases=("crps_gaussian",),
    family=FAMILY,
    kind="per_example",
    formula="(y - mu)(2 Phi(z) - 1) + 2 s phi(z) - s / sqrt(pi),  z = (y - mu) / s",
    paper="Calibrated Probabilistic Forecasting Using Ensemble Model Output Statistics and Minimum CRPS "
    "Estimation (Gneiting et al., 2005)",
    reference="properscoring._crps.crps_gaussian (properscoring 0.1)",
    sample=_crps_sample,
)
def crps_gaussian_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    scales: ArrayLike,
    *,
    where: ArrayLike | None = None,
) -> Array:
    r"""Continuous ranked probability score of a Gaussian forecast, in closed form (properscoring's ``crps_gaussian``).

    .. math:: \mathrm{CRPS}(\mathcal N(\mu, s^2), y) = s\Big[z\,(2\Phi(z) - 1) + 2\varphi(z) - \tfrac{1}{\sqrt\pi}\Big],
        \qquad z = \frac{y - \mu}{s}

    computed as ``(y - mu)(2 Phi(z) - 1) + 2 s phi(z) - s / sqrt(pi)``, which
    stays exact as ``s -> 0`` (the CRPS of a point forecast, ``|y - mu|``): for
    ``|z| >= 40`` (and ``s = 0``) ``Phi`` and ``phi`` are taken at ``+-40``, where
    they are exactly 1 (or 0) and 0 in floating point, so values and gradients
    stay finite. A proper scoring rule in the units of ``y``. Its gradients are
    ``1 - 2 Phi(z)`` (``mu``) and ``2 phi(z) - 1/sqrt(pi)`` (``s``).

    Args:
      predictions: the forecast mean ``mu`` ``[...]``.
      targets: the observations, broadcastable to ``predictions``.
      scales: the forecast standard deviation ``s >= 0``.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-element CRPS, ``predictions.shape``.

    Paper: Gneiting, Raftery, Westveld, Goldman, "Calibrated Probabilistic
    Forecasting Using Ensemble Model Output Statistics and Minimum CRPS
    Estimation", Monthly Weather Review 2005 (no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> mu, y, s = jnp.array([0.0, 0.0]), jnp.array([0.0, 2.0]), jnp.array([1.0, 0.0])
      >>> lossjax.losses.crps_gaussian_loss(mu, y, s).round(4)
      Array([0.2337, 2.    ], dtype=float32)
    """
    fn = "crps_gaussian_loss"
    p, t, mask, dtype = _inputs(fn, predictions, targets, where)
    s = _param(fn, "scales", scales, p.shape, dtype, mask)
    d = t - p
    limit = jnp.asarray(40.0, dtype)
    saturated = _abs(d) >= limit * s
    z = jnp.where(saturated, jnp.sign(d) * limit, d / jnp.where(saturated, jnp.ones((), dtype), s))
    cdf = jax.scipy.special.ndtr(z)
    pdf = jnp.exp(-0.5 * jnp.square(z)) * _INV_SQRT_2PI
    loss = d * (2.0 * cdf - 1.0) + 2.0 * s * pdf - s * _INV_SQRT_PI
    return C.zero_masked(loss, mask)


def _ensemble_sample() -> Sample:
    rng = _rng(9)
    x = rng.normal(size=(5, 4)).astype(np.float32)
    y = rng.normal(size=(5,)).astype(np.float32)
    return Sample(args=(x, y), diff_argnums=(0, 1))


@register(
    "crps_ensemble_loss",
    aliases=("crps_ensemble",),
    family=FAMILY,
    kind="per_example",
    formula="mean_i |x_i - y| - 0.5 mean_ij |x_i - x_j|  (members x on the last axis)",
    paper="Strictly Proper Scoring Rules, Prediction, and Estimation (Gneiting & Raftery, 2007)",
    reference="properscoring._crps.crps_ensemble (properscoring 0.1)",
    sample=_ensemble_sample,
)
def crps_ensemble_loss(predictions: ArrayLike, targets: ArrayLike, *, where: ArrayLike | None = None) -> Array:
    r"""Continuous ranked probability score of an ensemble forecast (properscoring's ``crps_ensemble``).

    .. math:: \mathrm{CRPS} = \frac1M\sum_i |x_i - y| - \frac{1}{2M^2}\sum_{i,j} |x_i - x_j|

    The energy form over the ``M`` members on the last axis (``O(M^2)``; the
    gradient of ``|x_i - x_j|`` at a tie is 0).

    Args:
      predictions: ensemble members ``[..., M]``.
      targets: the observations ``[...]`` (``predictions.shape[:-1]``, axes equal or 1).
      where: optional boolean mask aligned with the leading axes of ``targets``.

    Returns:
      Per-forecast CRPS, ``predictions.shape[:-1]``.

    Paper: Gneiting & Raftery, "Strictly Proper Scoring Rules, Prediction, and
    Estimation", JASA 2007 (no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.crps_ensemble_loss(jnp.array([[0.0, 2.0]]), jnp.array([1.0]))
      Array([0.5], dtype=float32)
    """
    fn = "crps_ensemble_loss"
    x = C.check_array(fn, "predictions", predictions, min_ndim=1, dtype="float")
    y = C.check_array(fn, "targets", targets, dtype="number")
    _check_like(fn, "targets", y, x.shape[:-1], "predictions.shape[:-1]")
    dtype = C.compute_dtype(x, y)
    mask = C.prepare_where(fn, where, x.shape[:-1])
    x = C.fill_masked(C.as_compute(x, dtype), mask)
    y = C.fill_masked(jnp.broadcast_to(C.as_compute(y, dtype), x.shape[:-1]), mask)
    skill = jnp.mean(_abs(x - y[..., None]), axis=-1)
    spread = jnp.mean(_abs(x[..., :, None] - x[..., None, :]), axis=(-2, -1))
    return C.zero_masked(skill - 0.5 * spread, mask)


def _count_sample(**kw) -> Sample:
    rng = _rng(10)
    p = rng.uniform(0.2, 2.0, size=(6, 3)).astype(np.float32)  # valid as log-rates and as rates
    t = rng.poisson(2.0, size=(6, 3)).astype(np.float32)
    return Sample(args=(p, t), diff_argnums=(0,), **kw)


@register(
    "poisson_nll_loss",
    family=FAMILY,
    kind="per_example",
    formula="exp(x) - y x (log_input) | x - y log(x + epsilon);  full: + y log y - y + 0.5 log(2 pi y) for y > 1",
    paper="none (the Poisson log-likelihood; PyTorch's PoissonNLLLoss)",
    reference="torch.nn.functional.poisson_nll_loss(log_input=, full=, eps=, reduction='none')",
    sample=lambda: _count_sample(
        variants=({"full": True}, {"log_input": False}),
        extremes=(
            (np.full((6, 3), 20.0, np.float32), _count_sample().args[1]),
            (np.zeros((6, 3), np.float32), _count_sample().args[1]),
        ),
        fuzz_scaled=(),  # log-rates: exp(1e3 * x) overflows (PyTorch's too)
    ),
)
def poisson_nll_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    log_input: bool = True,
    full: bool = False,
    epsilon: float = 1e-8,
    where: ArrayLike | None = None,
) -> Array:
    r"""Poisson negative log-likelihood of counts (PyTorch's ``poisson_nll_loss``).

    .. math:: \ell = \begin{cases} e^{x} - y\,x & \text{log\_input} \\
        x - y\log(x + \epsilon) & \text{otherwise}\end{cases}
        \ \big[+\ y\log y - y + \tfrac12\log(2\pi y)\ \text{for}\ y > 1\big]

    The optional Stirling term (``full=True``) approximates ``log(y!)`` and is
    added only where ``y > 1``, exactly as PyTorch does.

    Args:
      predictions: the log-rate (``log_input=True``) or the rate ``>= 0`` ``[...]``.
      targets: counts ``y >= 0``, broadcastable to ``predictions`` (float or int).
      log_input: whether ``predictions`` are log-rates.
      full: add the Stirling approximation of ``log(y!)``.
      epsilon: added to the rate inside the log when ``log_input=False``.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-element loss, ``predictions.shape``.

    Paper: none (the Poisson log-likelihood); reference
    ``torch.nn.functional.poisson_nll_loss``.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.poisson_nll_loss(jnp.array([0.0, 1.0]), jnp.array([1.0, 3.0])).round(4)
      Array([ 1.    , -0.2817], dtype=float32)
    """
    fn = "poisson_nll_loss"
    _check_bool_flag(fn, "log_input", log_input)
    _check_bool_flag(fn, "full", full)
    C.check_positive(fn, "epsilon", epsilon)
    p, t, mask, dtype = _inputs(fn, predictions, targets, where)
    if log_input:
        loss = jnp.exp(p) - t * p
    else:
        loss = p - t * jnp.log(p + jnp.asarray(epsilon, dtype))
    if full:
        big = t > 1
        ts = jnp.where(big, t, jnp.full((), 2.0, dtype))
        stirling = ts * jnp.log(ts) - ts + 0.5 * jnp.log(2.0 * math.pi * ts)
        loss = loss + jnp.where(big, stirling, jnp.zeros((), dtype))
    return C.zero_masked(loss, mask)


def _tweedie_sample() -> Sample:
    rng = _rng(11)
    p = (0.6 * rng.normal(size=(6, 3))).astype(np.float32)
    t = rng.gamma(2.0, 1.0, size=(6, 3)).astype(np.float32)
    return Sample(
        args=(p, t),
        kwargs={"log_input": True},
        diff_argnums=(0,),
        variants=({"power": 1.0}, {"power": 2.0}, {"power": 0.0, "log_input": False}),
        extremes=((np.full((6, 3), 20.0, np.float32), t), (np.full((6, 3), -20.0, np.float32), t)),
        fuzz_scaled=(),  # log-means: exp(1e3 * x) overflows
    )


@register(
    "tweedie_deviance_loss",
    aliases=("tweedie_loss",),
    family=FAMILY,
    kind="per_example",
    formula="2 (max(y,0)^(2-p) / ((1-p)(2-p)) - y mu^(1-p) / (1-p) + mu^(2-p) / (2-p));  "
    "p = 0: (y - mu)^2, p = 1: 2 (y log(y/mu) - y + mu), p = 2: 2 (log(mu/y) + y/mu - 1)",
    paper="Exponential dispersion models (Jorgensen, 1987); deviance as in scikit-learn's mean_tweedie_deviance",
    reference="sklearn.metrics.mean_tweedie_deviance (per element)",
    sample=_tweedie_sample,
)
def tweedie_deviance_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    power: float = 1.5,
    log_input: bool = False,
    where: ArrayLike | None = None,
) -> Array:
    r"""Unit deviance of the Tweedie distribution with power ``p`` (scikit-learn's ``mean_tweedie_deviance``).

    .. math:: d_p(y, \mu) = 2\Big(\frac{\max(y,0)^{2-p}}{(1-p)(2-p)} - \frac{y\,\mu^{1-p}}{1-p}
        + \frac{\mu^{2-p}}{2-p}\Big)

    with the limits ``p = 0`` (squared error), ``p = 1`` (Poisson deviance,
    ``2 (y log(y/mu) - y + mu)``) and ``p = 2`` (Gamma deviance). ``1 < p < 2``
    is the compound Poisson-Gamma (exact zeros allowed); ``p`` in ``(0, 1)`` has
    no distribution and is rejected. Near ``p = 1`` and ``p = 2`` the general
    formula's terms grow like ``1 / ((1-p)(2-p))`` and cancel (float32 loses
    ``~1e-7 / |1-p|``): use the exact ``p = 1``, ``p = 2`` or float64 there. With ``log_input=True`` the predictions are
    ``log mu`` (the log link of GLMs and gradient boosting, stable at any scale).

    Args:
      predictions: the mean ``mu`` (``> 0`` for ``p != 0``) or, with ``log_input``, ``log mu`` ``[...]``.
      targets: ``y`` (``>= 0`` for ``1 <= p < 2``, ``> 0`` for ``p >= 2``), broadcastable to ``predictions``.
      power: the Tweedie power ``p`` (``p <= 0`` or ``p >= 1``), a static number.
      log_input: whether ``predictions`` are ``log mu``.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-element deviance, ``predictions.shape``.

    Paper: Jorgensen, "Exponential dispersion models", JRSS-B 1987 (no arXiv
    id); reference ``sklearn.metrics.mean_tweedie_deviance``.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.tweedie_deviance_loss(jnp.array([1.0, 2.0]), jnp.array([0.0, 2.0]), power=1.5).round(4)
      Array([4., 0.], dtype=float32)
    """
    fn = "tweedie_deviance_loss"
    _check_bool_flag(fn, "log_input", log_input)
    if isinstance(power, jax.core.Tracer) or isinstance(power, bool) or not isinstance(power, (int, float, np.number)):
        raise ValueError(f"{fn}: `power` must be a static number (p <= 0 or p >= 1), got {power!r}.")
    power = float(power)
    if not math.isfinite(power) or 0.0 < power < 1.0:
        raise ValueError(f"{fn}: `power` must be a finite number with p <= 0 or p >= 1, got {power!r}.")
    p, t, mask, _ = _inputs(fn, predictions, targets, where)
    if log_input:
        log_mu, mu = p, jnp.exp(p)
    else:
        log_mu, mu = jnp.log(p), p
    if power == 0.0:
        loss = jnp.square(t - mu)
    elif power == 1.0:
        loss = 2.0 * (jax.scipy.special.xlogy(t, t) - t * log_mu - t + mu)
    elif power == 2.0:
        loss = 2.0 * (log_mu - jnp.log(t) + t * jnp.exp(-log_mu) - 1.0)
    else:
        a, b = 1.0 - power, 2.0 - power
        y_term = C.safe_power(jnp.maximum(t, 0.0), b) if b > 0 else jnp.exp(b * jnp.log(t))
        loss = 2.0 * (y_term / (a * b) - t * jnp.exp(a * log_mu) / a + jnp.exp(b * log_mu) / b)
    return C.zero_masked(loss, mask)


# ==========================================================================
# Survival.
# ==========================================================================

_TIES = ("breslow", "efron")


def _cox_sample() -> Sample:
    rng = _rng(12)
    eta = rng.normal(size=(8,)).astype(np.float32)
    times = np.array([5.0, 3.0, 3.0, 8.0, 1.0, 3.0, 6.0, 5.0], np.float32)  # ties at 3 and 5
    events = np.array([1, 1, 0, 1, 1, 1, 0, 1], np.int32)
    return Sample(args=(eta, times, events), diff_argnums=(0,), variants=({"variant": "efron"},))


@register(
    "cox_partial_likelihood_loss",
    aliases=("cox_ph_loss", "cox_loss"),
    family=FAMILY,
    kind="batch",
    formula="-(1 / sum_i w_i d_i) sum_{i: d_i = 1} w_i [eta_i - log sum_{j: t_j >= t_i} exp(eta_j)]  (Breslow; "
    "Efron: log(R - (l/d) D) over the d tied events)",
    paper="DeepSurv: Personalized Treatment Recommender System Using a Cox Proportional Hazards Deep Neural "
    "Network (2016, arXiv:1606.00931)",
    reference="sksurv.linear_model.coxph.CoxPHOptimizer.nlog_likelihood (ties='breslow'/'efron'), "
    "scikit-survival 0.28.0; lifelines CoxPHFitter (Efron)",
    sample=_cox_sample,
    runtime=("axis_name",),
)
def cox_partial_likelihood_loss(
    predictions: ArrayLike,
    times: ArrayLike,
    events: ArrayLike,
    *,
    variant: str = "breslow",
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    axis_name: str | None = None,
) -> Array:
    r"""Negative Cox partial log-likelihood of a batch (censoring, Breslow or Efron ties), per event.

    .. math:: \ell = -\frac{1}{\sum_i w_i\delta_i}\sum_{i:\,\delta_i = 1} w_i\Big[\eta_i
        - \log\!\sum_{j:\,t_j \ge t_i} e^{\eta_j}\Big]

    ``eta`` are predicted log-risks (log hazard ratios), ``t`` the observed times
    and ``delta`` the event indicators (0 = censored). Breslow's risk set of a
    tied time holds every example with ``t_j >= t_i``; Efron's
    (``variant="efron"``) replaces the ``d`` tied events' denominators by
    ``R - (l/d) D``, ``l = 0..d-1`` (``D``: the tied events' summed
    ``exp(eta)``), each group weighted by the mean weight of its events. One
    sort and a reverse cumulative log-sum-exp (``O(N log N)``, stable for any
    ``eta``). Averaged over events (pycox's convention); scikit-survival's
    ``nlog_likelihood`` is this times ``#events / N``, lifelines' log-likelihood
    is ``-#events`` times it. ``weights`` multiply each event's term
    (BioFusionNet's event weighting). A batch without events gives 0. Masked
    examples leave every risk set. With ``axis_name`` the risk sets run over the
    global batch (the examples are gathered from every device).

    Args:
      predictions: log-risk scores ``eta`` ``[N]``.
      times: observed times ``[N]`` (event or censoring).
      events: event indicators ``[N]`` (bool, int or float 0/1).
      variant: tie handling, ``"breslow"`` (default) or ``"efron"`` (scikit-survival's ``ties``).
      weights: optional non-negative per-example weights ``[N]``.
      where: optional boolean mask ``[N]``.
      axis_name: mapped axis of a data-parallel batch (global risk sets).

    Returns:
      A scalar.

    Paper: Cox, "Regression Models and Life-Tables", JRSS-B 1972 (no arXiv id);
    Katzman et al., "DeepSurv", 2018, arXiv:1606.00931; Efron, "The Efficiency
    of Cox's Likelihood Function for Censored Data", JASA 1977.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> eta = jnp.array([0.0, 0.0, 0.0])
      >>> lossjax.losses.cox_partial_likelihood_loss(eta, jnp.array([1.0, 2.0, 3.0]), jnp.array([1, 1, 0])).round(4)
      Array(0.8959, dtype=float32)
    """
    fn = "cox_partial_likelihood_loss"
    C.check_one_of(fn, "variant", variant, _TIES)
    eta = C.check_array(fn, "predictions", predictions, ndim=1, dtype="float")
    n = eta.shape[0]
    times = C.check_array(fn, "times", times, shape=(n,), dtype="number")
    events = C.check_array(fn, "events", events, shape=(n,))
    if not (jnp.issubdtype(events.dtype, jnp.number) or events.dtype == jnp.bool_):
        raise TypeError(f"{fn}: `events` must be bool, integer or float 0/1 indicators, got {events.dtype}.")
    dtype = C.compute_dtype(eta, times)
    mask = C.prepare_where(fn, where, (n,))
    valid = jnp.ones((n,), bool) if mask is None else mask
    w = jnp.ones((n,), dtype)
    if weights is not None:
        w = C.as_compute(C.check_array(fn, "weights", weights, shape=(n,), dtype="number"), dtype)
    eta = C.fill_masked(C.as_compute(eta, dtype), mask)
    ev = jnp.where(valid, C.as_compute(events, dtype), jnp.zeros((), dtype))
    w = jnp.where(valid, w, jnp.zeros((), dtype))
    t = jnp.where(valid, C.as_compute(times, dtype), jnp.asarray(-jnp.inf, dtype))  # masked: in no risk set
    eta, t, ev, w = (gather_batch(x, axis_name) for x in (eta, t, ev, w))
    return _cox_core(eta, t, ev, w, efron=variant == "efron")


@functools.partial(jax.jit, static_argnames=("efron",))
def _cox_core(eta, t, ev, w, *, efron: bool):
    """The partial likelihood of a (gathered) batch: one compiled computation (eager calls compile it once)."""
    n = eta.shape[0]
    dtype = eta.dtype
    # Shift by the largest score (the loss is shift-invariant): risk-set log-sum-exps of scores of 1e4 stay exact.
    top = jnp.max(jnp.where(jnp.isneginf(t), jnp.asarray(-jnp.inf, dtype), eta), initial=-jnp.inf)  # unmasked rows
    eta = eta - jax.lax.stop_gradient(jnp.where(jnp.isfinite(top), top, jnp.zeros((), dtype)))
    order = jnp.argsort(t, stable=True)  # ascending times; a tie group is contiguous
    eta_s, t_s, ev_s, w_s = eta[order], t[order], ev[order], w[order]
    first = jnp.searchsorted(t_s, t_s, side="left")  # first index of each tie group
    log_risk = jax.lax.cumlogsumexp(eta_s, axis=0, reverse=True)[first]  # log sum_{t_j >= t_i} e^eta_j
    total_w = jnp.sum(ev_s * w_s)
    if not efron:
        term_w = ev_s * w_s
        denom = log_risk
    else:
        group = jnp.cumsum(jnp.concatenate([jnp.zeros((1,), jnp.int32), (t_s[1:] != t_s[:-1]).astype(jnp.int32)]))
        seg = lambda x: jax.ops.segment_sum(x, group, num_segments=n)  # noqa: E731
        d = seg(ev_s)[group]
        before = jnp.cumsum(ev_s) - ev_s
        rank = before - before[first]  # tied events ahead of this one in its group
        m = jax.ops.segment_max(jnp.where(ev_s > 0, eta_s, jnp.asarray(-jnp.inf, dtype)), group, num_segments=n)
        m = jnp.where(jnp.isfinite(m), m, jnp.zeros((), dtype))[group]
        log_tied = m + jnp.log(jnp.maximum(seg(ev_s * jnp.exp(eta_s - m))[group], jnp.finfo(dtype).tiny))
        frac = _safe_div(rank, d) * jnp.exp(jnp.minimum(log_tied - log_risk, 0.0))
        denom = log_risk + jnp.log1p(-frac)
        term_w = ev_s * _safe_div(seg(ev_s * w_s)[group], d)
    num = jnp.sum(ev_s * w_s * eta_s) - jnp.sum(term_w * denom)
    return -_safe_div(num, total_w)


def _icw_sample() -> Sample:
    rng = _rng(13)
    f = rng.uniform(0.5, 4.0, size=(6,)).astype(np.float32)
    t = rng.uniform(0.5, 4.0, size=(6,)).astype(np.float32)
    events = np.array([1, 0, 1, 1, 0, 1], np.float32)
    g = rng.uniform(0.2, 1.0, size=(6,)).astype(np.float32)
    return Sample(args=(f, t, events, g), diff_argnums=(0,))


@register(
    "inverse_censoring_weighted_mse",
    aliases=("kaplan_meier_risk",),
    family=FAMILY,
    kind="per_example",
    formula="events / max(G, epsilon) (times - predictions)^2,  G = censoring survival at the observed time",
    paper="Empirical Risk Minimization under Random Censorship: Theory and Practice (2019, arXiv:1906.01908)",
    reference="closed form (the Kaplan-Meier risk of the paper, per example)",
    sample=_icw_sample,
)
def inverse_censoring_weighted_mse(
    predictions: ArrayLike,
    targets: ArrayLike,
    events: ArrayLike,
    censoring_survival_probs: ArrayLike,
    *,
    epsilon: float = 1e-6,
    where: ArrayLike | None = None,
) -> Array:
    r"""Inverse-probability-of-censoring weighted squared error (the Kaplan-Meier risk, per example).

    .. math:: \ell_i = \frac{\delta_i}{\max(\hat G(T_i^-\mid X_i),\ \epsilon)}\,\big(T_i - f(X_i)\big)^2

    Censored examples (``delta = 0``) contribute 0; observed ones are up-weighted
    by the inverse probability of remaining uncensored, ``G`` (a Kaplan-Meier
    estimate of the censoring survival, e.g. ``lifelines.KaplanMeierFitter`` on
    ``1 - events``), so the mean over the batch estimates the uncensored risk.
    ``G`` is data (no gradient); ``epsilon`` clips the weights.

    Args:
      predictions: predicted durations ``f(X)`` ``[...]``.
      targets: observed times ``T = min(Y, C)``, broadcastable to ``predictions``.
      events: ``delta = 1[Y <= C]``, broadcastable to ``predictions``.
      censoring_survival_probs: ``G(T^- | X)`` in ``(0, 1]``, broadcastable to ``predictions``.
      epsilon: floor on ``G``.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-example loss, ``predictions.shape``.

    Paper: Ausset, Clemencon, Portier, "Empirical Risk Minimization under Random
    Censorship: Theory and Practice", 2019, arXiv:1906.01908.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> f, t = jnp.array([1.0, 1.0]), jnp.array([3.0, 3.0])
      >>> lossjax.losses.inverse_censoring_weighted_mse(f, t, jnp.array([1, 0]), jnp.array([0.5, 0.5]))
      Array([8., 0.], dtype=float32)
    """
    fn = "inverse_censoring_weighted_mse"
    C.check_positive(fn, "epsilon", epsilon)
    p, t, mask, dtype = _inputs(fn, predictions, targets, where)
    ev = _param(fn, "events", events, p.shape, dtype, mask, fill=0.0)
    g = jax.lax.stop_gradient(_param(fn, "censoring_survival_probs", censoring_survival_probs, p.shape, dtype, mask))
    loss = ev / jnp.maximum(g, jnp.asarray(epsilon, dtype)) * jnp.square(t - p)
    return C.zero_masked(loss, mask)


# ==========================================================================
# Time series, audio and finance.
# ==========================================================================


def _horizon_sample() -> Sample:
    rng = _rng(14)
    p = rng.normal(size=(4, 5, 2)).astype(np.float32)
    t = rng.normal(size=(4, 5, 2)).astype(np.float32)
    return Sample(args=(p, t), diff_argnums=(0, 1))


@register(
    "signal_decay_l1_loss",
    aliases=("card_loss",),
    family=FAMILY,
    kind="per_example",
    formula="mean over horizon t = 1..H (and the other axes) of t^(-1/2) |predictions_t - targets_t|",
    paper="CARD: Channel Aligned Robust Blend Transformer for Time Series Forecasting (2023, arXiv:2305.12095)",
    reference="wxie9/CARD long_term_forecast_l720/exp/exp_main.py (ratio = 1/sqrt(i + 1), nn.L1Loss)",
    sample=_horizon_sample,
)
def signal_decay_l1_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = 1,
    where: ArrayLike | None = None,
) -> Array:
    r"""CARD's signal-decay-based L1 loss: horizon-weighted MAE, near-future errors weigh more.

    .. math:: \ell_b = \operatorname{mean}_{t, c}\ t^{-1/2}\,|\hat y_{b,t,c} - y_{b,t,c}|,\qquad t = 1..H

    per example (the mean over every non-batch axis). The mean over the batch is
    CARD's training loss (``nn.L1Loss`` of the ratio-scaled outputs).

    Args:
      predictions: forecasts ``[B, H, ...]`` (the horizon on ``axis``).
      targets: broadcastable to ``predictions``.
      axis: the horizon axis (not 0, the batch axis).
      where: optional boolean mask aligned with the leading axes (``[B]`` masks series).

    Returns:
      Per-example loss ``[B]``.

    Paper: Wang et al., "CARD: Channel Aligned Robust Blend Transformer for Time
    Series Forecasting", ICLR 2024, arXiv:2305.12095.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.signal_decay_l1_loss(jnp.ones((1, 4)), jnp.zeros((1, 4))).round(4)  # mean(1, .707, .577, .5)
      Array([0.6962], dtype=float32)
    """
    fn = "signal_decay_l1_loss"
    p, t, mask, dtype = _inputs(fn, predictions, targets, where, batch_ndim=1)
    (ax,) = _reduce_axis(fn, axis, p.ndim)
    h = p.shape[ax]
    ratio = jnp.asarray(1.0 / np.sqrt(np.arange(1, h + 1)), dtype)
    ratio = jnp.reshape(ratio, (1,) * ax + (h,) + (1,) * (p.ndim - ax - 1))
    loss = jnp.mean(ratio * _abs(p - t), axis=_trailing_axes(p.ndim))
    return C.zero_masked(loss, mask)


_WINDOWS = ("hann_window", "hamming_window", "blackman_window", "bartlett_window")


def _window(name: str, win_length: int, n_fft: int) -> np.ndarray:
    """torch's periodic window of ``win_length``, zero-padded to ``n_fft`` and centered (as ``torch.stft``)."""
    n = np.arange(win_length, dtype=np.float64)
    x = 2.0 * np.pi * n / win_length
    if name == "hann_window":
        w = 0.5 - 0.5 * np.cos(x)
    elif name == "hamming_window":
        w = 0.54 - 0.46 * np.cos(x)
    elif name == "blackman_window":
        w = 0.42 - 0.5 * np.cos(x) + 0.08 * np.cos(2.0 * x)
    else:
        w = 1.0 - np.abs(2.0 * n / win_length - 1.0)
    left = (n_fft - win_length) // 2
    return np.pad(w, (left, n_fft - win_length - left))


def _stft_magnitude(x: Array, n_fft: int, hop: int, window: np.ndarray, epsilon) -> Array:
    """``sqrt(max(|STFT(x)|^2, epsilon))`` of rows ``x [R, T]`` as ``torch.stft(center=True, pad_mode='reflect')``."""
    pad = n_fft // 2
    x = jnp.pad(x, ((0, 0), (pad, pad)), mode="reflect")
    n_frames = 1 + (x.shape[-1] - n_fft) // hop
    idx = np.arange(n_frames)[:, None] * hop + np.arange(n_fft)[None, :]
    frames = x[:, idx] * jnp.asarray(window, x.dtype)[None, None, :]  # [R, frames, n_fft]
    spec = jnp.fft.rfft(frames, axis=-1)
    power = jnp.square(jnp.real(spec)) + jnp.square(jnp.imag(spec))
    return jnp.sqrt(jnp.maximum(power, jnp.asarray(epsilon, power.dtype)))  # auraloss: sqrt(clamp(|S|^2, eps))


def _stft_sample() -> Sample:
    # auraloss's default resolutions (FFT sizes up to 2048) on 2 waveforms of 1100 samples: a few frames each.
    # Broadband noise keeps every bin far from the magnitude floor (a kink) so finite differences are meaningful.
    rng = _rng(15)
    t = np.linspace(0.0, 1.0, 1100, dtype=np.float64)
    target = np.stack([np.sin(2 * np.pi * f * t) for f in (30.0, 70.0)]) + 0.5 * rng.normal(size=(2, 1100))
    pred = target + 0.5 * rng.normal(size=(2, 1100))
    return Sample(
        args=(pred.astype(np.float32), target.astype(np.float32)),
        diff_argnums=(0,),
        variants=({"window": "hamming_window", "linear_magnitude_weight": 0.5},),
        grad_eps=1e-6,  # log-magnitudes of near-silent bins curve sharply: 1e-4 steps misjudge the slope
        # float32 FFTs carry ~1e-7 of the loudest bin as absolute error; the log-magnitude gradient divides it
        # by near-silent bins' magnitudes: 2e-3 of the largest gradient entry (float64 matches auraloss to 5e-12).
        value_tol={"rtol": 1e-3, "atol": 1e-3},
    )


def _int_tuple(fn: str, arg: str, value) -> tuple[int, ...]:
    vals = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    for v in vals:
        C.check_int(fn, arg, v, 1, static=True)
    return tuple(int(v) for v in vals)


@register(
    "multi_resolution_stft_loss",
    aliases=("mr_stft_loss", "mrstft_loss"),
    family=FAMILY,
    kind="batch",
    formula="mean over resolutions of [w_sc ||S_y| - |S_x||_F / ||S_y||_F + w_log mean|log|S_y| - log|S_x|| "
    "+ w_lin mean||S_y| - |S_x||],  |S| = sqrt(max(|STFT|^2, epsilon))",
    paper="Parallel WaveGAN: A fast waveform generation model based on generative adversarial networks with "
    "multi-resolution spectrogram (2019, arXiv:1910.11480)",
    reference="auraloss.freq.MultiResolutionSTFTLoss (auraloss 0.4.0; torch.stft center=True, reflect padding)",
    sample=_stft_sample,
)
def multi_resolution_stft_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    fft_sizes: Sequence[int] = (1024, 2048, 512),
    hop_sizes: Sequence[int] = (120, 240, 50),
    win_lengths: Sequence[int] = (600, 1200, 240),
    window: str = "hann_window",
    spectral_convergence_weight: float = 1.0,
    log_magnitude_weight: float = 1.0,
    linear_magnitude_weight: float = 0.0,
    epsilon: float = 1e-8,
    where: ArrayLike | None = None,
) -> Array:
    r"""Multi-resolution STFT loss: spectral convergence + log-magnitude L1 at several FFT sizes (auraloss's).

    .. math:: \mathcal L = \frac1R \sum_{r=1}^R \Big[w_{sc}\frac{\|\,|S_y| - |S_{\hat y}|\,\|_F}{\|S_y\|_F}
        + w_{log}\,\operatorname{mean}\big|\log|S_y| - \log|S_{\hat y}|\big|
        + w_{lin}\,\operatorname{mean}\big||S_y| - |S_{\hat y}|\big|\Big]

    with ``|S| = sqrt(max(|STFT|^2, epsilon))`` computed as ``torch.stft``
    (``center=True``, reflect padding, a periodic window of ``win_length``
    zero-padded to the FFT size). Values equal
    ``auraloss.freq.MultiResolutionSTFTLoss`` with the same settings (whose
    defaults, Parallel WaveGAN's resolutions, are these); the norms and means run
    over the whole batch, as there. Waveforms are ``[B, T]`` or ``[B, C, T]``
    (channels are folded into rows). AERO adds a time-domain L1
    (:func:`absolute_error`) to this. FFT-based: ``jnp.fft.rfft`` lowers on CPU,
    GPU and TPU.

    Args:
      predictions: waveforms ``[B, ..., T]``.
      targets: reference waveforms, same shape.
      fft_sizes: FFT sizes, one per resolution.
      hop_sizes: hop lengths, one per resolution.
      win_lengths: window lengths (``<=`` the FFT size), one per resolution.
      window: ``"hann_window"``, ``"hamming_window"``, ``"blackman_window"`` or ``"bartlett_window"`` (periodic).
      spectral_convergence_weight: ``w_sc``.
      log_magnitude_weight: ``w_log``.
      linear_magnitude_weight: ``w_lin`` (0 by default, as auraloss).
      epsilon: floor on the squared magnitude (auraloss's ``eps``).
      where: optional boolean mask ``[B]`` (masked waveforms leave every norm and mean).

    Returns:
      A scalar.

    Paper: Yamamoto, Song, Kim, "Parallel WaveGAN", ICASSP 2020,
    arXiv:1910.11480; Arik et al., "Fast Spectrogram Inversion using Multi-head
    Convolutional Neural Networks", 2018, arXiv:1808.06719 (spectral
    convergence); AERO: Mandel, Tal, Adi, 2022, arXiv:2211.12232.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.sin(jnp.linspace(0.0, 20.0, 64))[None]
      >>> loss = lossjax.losses.multi_resolution_stft_loss
      >>> float(loss(x, x, fft_sizes=(16,), hop_sizes=(4,), win_lengths=(16,)))
      0.0
    """
    fn = "multi_resolution_stft_loss"
    ffts = _int_tuple(fn, "fft_sizes", fft_sizes)
    hops = _int_tuple(fn, "hop_sizes", hop_sizes)
    wins = _int_tuple(fn, "win_lengths", win_lengths)
    if not len(ffts) == len(hops) == len(wins):
        raise ValueError(
            f"{fn}: `fft_sizes`, `hop_sizes` and `win_lengths` must have one entry per resolution, "
            f"got {len(ffts)}, {len(hops)} and {len(wins)}."
        )
    for f, w in zip(ffts, wins, strict=True):
        if w > f:
            raise ValueError(f"{fn}: each of `win_lengths` must be <= its FFT size, got {w} > {f}.")
    C.check_one_of(fn, "window", window, _WINDOWS)
    for arg, v in (
        ("spectral_convergence_weight", spectral_convergence_weight),
        ("log_magnitude_weight", log_magnitude_weight),
        ("linear_magnitude_weight", linear_magnitude_weight),
    ):
        C.check_positive(fn, arg, v, allow_zero=True)
    C.check_positive(fn, "epsilon", epsilon)
    x = C.check_array(fn, "predictions", predictions, min_ndim=2, dtype="float")
    y = C.check_array(fn, "targets", targets, dtype="float")
    C.check_same_shape(fn, ("predictions", "targets"), x, y)
    length = x.shape[-1]
    if length <= max(ffts) // 2:
        raise ValueError(
            f"{fn}: waveforms must be longer than half the largest FFT size ({max(ffts) // 2}) for reflect "
            f"padding, got length {length}."
        )
    dtype = C.compute_dtype(x, y)
    mask = C.prepare_where(fn, where, x.shape[:1])
    x = C.fill_masked(C.as_compute(x, dtype), mask)
    y = C.fill_masked(C.as_compute(y, dtype), mask)
    rows_valid = (
        jnp.ones(x.shape[:-1], bool)
        if mask is None
        else jnp.broadcast_to(jnp.reshape(mask, mask.shape + (1,) * (x.ndim - 2)), x.shape[:-1])
    )
    weights = jnp.asarray([spectral_convergence_weight, log_magnitude_weight, linear_magnitude_weight, epsilon], dtype)
    return _mr_stft_core(
        jnp.reshape(x, (-1, length)),
        jnp.reshape(y, (-1, length)),
        jnp.reshape(rows_valid, (-1,)),
        weights,
        ffts=ffts,
        hops=hops,
        wins=wins,
        window=window,
    )


@functools.partial(jax.jit, static_argnames=("ffts", "hops", "wins", "window"))
def _mr_stft_core(x, y, rows_valid, weights, *, ffts, hops, wins, window):
    """The resolutions' terms on rows ``[R, T]``: one compiled computation (eager calls compile it once)."""
    w_sc, w_log, w_lin, epsilon = weights[0], weights[1], weights[2], weights[3]
    dtype = x.dtype
    keep = rows_valid[:, None, None]
    zero = jnp.zeros((), dtype)
    total = zero
    for n_fft, hop, win in zip(ffts, hops, wins, strict=True):
        w = _window(window, win, n_fft)
        xm = _stft_magnitude(x, n_fft, hop, w, epsilon)
        ym = _stft_magnitude(y, n_fft, hop, w, epsilon)
        count = jnp.sum(rows_valid).astype(dtype) * (xm.shape[1] * xm.shape[2])
        diff = jnp.where(keep, ym - xm, zero)
        ref = jnp.where(keep, ym, zero)
        sc = _safe_div(C.safe_norm(diff, axis=None), C.safe_norm(ref, axis=None))
        log_l1 = _safe_div(jnp.sum(jnp.where(keep, _abs(jnp.log(ym) - jnp.log(xm)), zero)), count)
        lin_l1 = _safe_div(jnp.sum(jnp.where(keep, _abs(ym - xm), zero)), count)
        total = total + w_sc * sc + w_log * log_l1 + w_lin * lin_l1
    return total / len(ffts)


def _returns_sample(**kw) -> Sample:
    rng = _rng(16)
    forecast = (0.02 * rng.normal(size=(8,))).astype(np.float32)
    realized = (0.02 * rng.normal(size=(8,))).astype(np.float32)
    return Sample(args=(forecast, realized), diff_argnums=(0,), **kw)


@register(
    "mean_absolute_directional_loss",
    aliases=("madl",),
    family=FAMILY,
    kind="per_example",
    formula="-sign(targets * predictions) |targets|  (targets: realized returns, predictions: forecasts)",
    paper="Mean Absolute Directional Loss as a New Loss Function for Machine Learning Problems in Algorithmic "
    "Investment Strategies (2023, arXiv:2309.10546)",
    reference="closed form (the paper's MADL, per observation)",
    sample=_returns_sample,
)
def mean_absolute_directional_loss(
    predictions: ArrayLike, targets: ArrayLike, *, where: ArrayLike | None = None
) -> Array:
    r"""Mean absolute directional loss (MADL, per observation): minus the return of trading the forecast's sign.

    .. math:: \ell_i = -\operatorname{sign}(R_i \hat R_i)\,|R_i|

    ``R`` is the realized return (``targets``), ``R_hat`` the forecast; the mean
    over observations is MADL. Its gradient is 0 almost everywhere (``sign``):
    a model-selection metric; train with
    :func:`generalized_mean_absolute_directional_loss`.

    Args:
      predictions: forecast returns ``[...]``.
      targets: realized returns, broadcastable to ``predictions``.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-observation loss, ``predictions.shape``.

    Paper: Michankow, Sakowski, Slepaczuk, "Mean Absolute Directional Loss as a
    New Loss Function for Machine Learning Problems in Algorithmic Investment
    Strategies", 2023, arXiv:2309.10546.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.mean_absolute_directional_loss(jnp.array([0.1, -0.2]), jnp.array([0.05, 0.03]))
      Array([-0.05,  0.03], dtype=float32)
    """
    p, t, mask, _ = _inputs("mean_absolute_directional_loss", predictions, targets, where)
    return C.zero_masked(-jnp.sign(t * p) * _abs(t), mask)


@register(
    "generalized_mean_absolute_directional_loss",
    aliases=("gmadl",),
    family=FAMILY,
    kind="per_example",
    formula="-(sigmoid(a targets predictions) - 1/2) |targets|^b,  a = sharpness, b = exponent",
    paper="Generalized Mean Absolute Directional Loss as a Solution to Overfitting and High Transaction Costs in "
    "Machine Learning Models Used in High-Frequency Algorithmic Investment Strategies (2024)",
    reference="closed form (the paper's GMADL, per observation)",
    sample=lambda: _returns_sample(kwargs={"sharpness": 100.0}, variants=({"sharpness": 1000.0, "exponent": 1.5},)),
)
def generalized_mean_absolute_directional_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    sharpness: float = 1000.0,
    exponent: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Generalized MADL (GMADL, per observation): a smooth, trainable directional loss.

    .. math:: \ell_i = -\Big(\sigma\big(a\,R_i\hat R_i\big) - \tfrac12\Big)\,|R_i|^{b}

    The sigmoid of slope ``a`` (the paper's ``a``, here ``sharpness``) replaces
    MADL's sign; ``b`` (``exponent``) emphasizes large moves. Returns are small
    numbers (``1e-4``), so ``a`` must be large (the paper tunes ``a`` in 10-1000+
    and ``b`` in 1-5); the mean over observations is GMADL.

    Args:
      predictions: forecast returns ``[...]``.
      targets: realized returns, broadcastable to ``predictions``.
      sharpness: ``a > 0``, the slope of the sigmoid.
      exponent: ``b > 0``, the power of ``|R|``.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-observation loss, ``predictions.shape``.

    Paper: Michankow, Sakowski, Slepaczuk, "Generalized Mean Absolute
    Directional Loss as a Solution to Overfitting and High Transaction Costs in
    Machine Learning Models Used in High-Frequency Algorithmic Investment
    Strategies", 2024 (arXiv id not verified offline).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.generalized_mean_absolute_directional_loss(
      ...     jnp.array([0.1, -0.2]), jnp.array([0.05, 0.03]), sharpness=100.0).round(4).tolist()
      [-0.0061, 0.0044]
    """
    fn = "generalized_mean_absolute_directional_loss"
    C.check_positive(fn, "sharpness", sharpness)
    C.check_positive(fn, "exponent", exponent)
    p, t, mask, dtype = _inputs(fn, predictions, targets, where)
    a = jnp.asarray(sharpness, dtype)
    move = C.safe_power(_abs(t), exponent)
    return C.zero_masked(-(jax.nn.sigmoid(a * t * p) - 0.5) * move, mask)


# ==========================================================================
# Fields and scientific machine learning.
# ==========================================================================


def _field_sample(shape=(3, 5, 4), seed: int = 17, **kw) -> Sample:
    rng = _rng(seed)
    p = rng.normal(size=shape).astype(np.float32)
    t = rng.normal(size=shape).astype(np.float32)
    return Sample(args=(p, t), diff_argnums=(0, 1), **kw)


def _field_axes(fn: str, axis, ndim: int) -> tuple[int, ...]:
    if ndim < 2:
        raise ValueError(f"{fn}: `predictions` must be [B, ...] with at least one field axis, got rank {ndim}.")
    return _trailing_axes(ndim) if axis is None else _reduce_axis(fn, axis, ndim)


@register(
    "gradient_difference_loss",
    aliases=("gdl_loss",),
    family=FAMILY,
    kind="per_example",
    formula="mean over field axes d and positions of |D_d predictions - D_d targets|^exponent  "
    "(D_d: forward difference along d)",
    paper="Deep multi-scale video prediction beyond mean square error (2015, arXiv:1511.05440)",
    reference="closed form (forward differences, numpy)",
    sample=lambda: _field_sample(variants=({"exponent": 2.0, "axis": 1},)),
)
def gradient_difference_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    exponent: float = 1.0,
    axis: int | Sequence[int] | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Gradient difference loss: penalizes differences between the fields' finite-difference gradients.

    .. math:: \ell_b = \frac{1}{|\mathcal D|}\sum_{d \in \mathcal D} \operatorname{mean}\big|\Delta_d \hat y_b
        - \Delta_d y_b\big|^{\alpha},\qquad (\Delta_d u)_k = u_{k+1} - u_k \text{ along axis } d

    Forward differences without padding (no boundary term); each axis's mean
    runs over its ``n_d - 1`` differences. Sharpens blurry predictions (video,
    weather fields: FastNet's horizontal-gradient term). ``|.|^alpha`` has
    gradient 0 at 0.

    Args:
      predictions: fields ``[B, ...]``.
      targets: broadcastable to ``predictions``.
      exponent: ``alpha > 0``.
      axis: the field axes (default: every non-batch axis).
      where: optional boolean mask ``[B]``.

    Returns:
      Per-example loss ``[B]``.

    Paper: Mathieu, Couprie, LeCun, "Deep multi-scale video prediction beyond
    mean square error", ICLR 2016, arXiv:1511.05440 (GDL); FastNet's and the
    tFUS simulator's gradient terms (catalog seeds; arXiv ids not verified offline).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.gradient_difference_loss(jnp.array([[0.0, 1.0, 3.0]]), jnp.zeros((1, 3)))
      Array([1.5], dtype=float32)
    """
    fn = "gradient_difference_loss"
    C.check_positive(fn, "exponent", exponent)
    p, t, mask, _ = _inputs(fn, predictions, targets, where, batch_ndim=1)
    axes = _field_axes(fn, axis, p.ndim)
    e = p - t
    terms = [jnp.mean(C.safe_power(_abs(jnp.diff(e, axis=a)), exponent), axis=_trailing_axes(p.ndim)) for a in axes]
    return C.zero_masked(sum(terms[1:], terms[0]) / len(terms), mask)


@register(
    "negative_sobolev_norm_loss",
    aliases=("h_minus_s_loss",),
    family=FAMILY,
    kind="per_example",
    formula="(1/N) sum_k (1 + |k|^2)^(-s) |FFT_ortho(predictions - targets)_k|^2  (integer wavenumbers k)",
    paper="Spectral-Refiner: Fine-Tuning of Accurate Spatiotemporal Neural Operator for Turbulent Flows (2024)",
    reference="closed form (numpy.fft.fftn, norm='ortho')",
    sample=lambda: _field_sample(shape=(3, 4, 6), seed=18, variants=({"order": 2.0, "axis": 2},)),
)
def negative_sobolev_norm_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    order: float = 1.0,
    axis: int | Sequence[int] | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Squared negative Sobolev norm ``H^{-s}`` of the error of periodic fields, via the FFT.

    .. math:: \ell_b = \frac1N \sum_{k} (1 + |k|^2)^{-s}\,\big|\hat e_k\big|^2,\qquad
        \hat e = \mathrm{FFT}_{\mathrm{ortho}}(\hat y_b - y_b)

    over the field axes (``N`` grid points, integer wavenumbers ``k``). By
    Parseval, ``order = 0`` is the mean squared error; ``s > 0`` down-weights
    high frequencies (a smoother, a-posteriori error estimate for neural
    operators). Fields are taken as periodic.

    Args:
      predictions: periodic fields ``[B, ...]``.
      targets: broadcastable to ``predictions``.
      order: ``s >= 0``, the Sobolev order.
      axis: the field axes (default: every non-batch axis).
      where: optional boolean mask ``[B]``.

    Returns:
      Per-example loss ``[B]``.

    Paper: "Spectral-Refiner: Fine-Tuning of Accurate Spatiotemporal Neural
    Operator for Turbulent Flows", 2024 (the catalog's seed; arXiv id not
    verified offline).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> e = jnp.array([[1.0, -1.0, 1.0, -1.0]])  # wavenumber 2 only: weight 1 / (1 + 4)
      >>> lossjax.losses.negative_sobolev_norm_loss(e, jnp.zeros((1, 4)), order=1.0)
      Array([0.2], dtype=float32)
    """
    fn = "negative_sobolev_norm_loss"
    C.check_positive(fn, "order", order, allow_zero=True)
    p, t, mask, dtype = _inputs(fn, predictions, targets, where, batch_ndim=1)
    axes = _field_axes(fn, axis, p.ndim)
    spec = jnp.fft.fftn(p - t, axes=axes, norm="ortho")
    power = jnp.square(jnp.real(spec)) + jnp.square(jnp.imag(spec))
    k2 = np.zeros([p.shape[a] if a in axes else 1 for a in range(p.ndim)])
    for a in axes:
        k = np.fft.fftfreq(p.shape[a]) * p.shape[a]
        k2 = k2 + np.square(k).reshape([p.shape[a] if b == a else 1 for b in range(p.ndim)])
    weight = jnp.exp(-jnp.asarray(order, dtype) * jnp.log1p(jnp.asarray(k2, dtype)))
    n = math.prod(p.shape[a] for a in axes)
    loss = jnp.sum(weight * power, axis=_trailing_axes(p.ndim)) / n
    return C.zero_masked(loss, mask)


def _depth_sample() -> Sample:
    rng = _rng(19)
    d_hat = rng.uniform(0.5, 3.0, size=(3, 4, 5)).astype(np.float32)
    d = rng.uniform(0.5, 3.0, size=(3, 4, 5)).astype(np.float32)
    var = rng.uniform(0.05, 1.0, size=(3, 4, 5)).astype(np.float32)
    return Sample(args=(d_hat, d, var), diff_argnums=(0,))


@register(
    "variance_weighted_depth_loss",
    family=FAMILY,
    kind="per_example",
    formula="mean over pixels of (predictions - targets)^2 / max(variances, epsilon)",
    paper="Touch-GS: Visual-Tactile Supervised 3D Gaussian Splatting (2024)",
    reference="closed form (inverse-variance weighted squared error)",
    sample=_depth_sample,
)
def variance_weighted_depth_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    variances: ArrayLike,
    *,
    epsilon: float = 1e-6,
    where: ArrayLike | None = None,
) -> Array:
    r"""Inverse-variance weighted depth supervision (Touch-GS): uncertain pixels count less.

    .. math:: \ell_b = \operatorname{mean}_p \frac{(\hat d_p - d_p)^2}{\max(\sigma_p^2, \epsilon)}

    ``variances`` are the (fused touch/vision) depth uncertainties: data, held
    constant. The catalog's sum over pixels divided by their number.

    Args:
      predictions: rendered depth ``[B, ...]``.
      targets: supervision depth, broadcastable to ``predictions``.
      variances: per-pixel variances ``sigma^2``, broadcastable to ``predictions``.
      epsilon: the variance floor.
      where: optional boolean mask ``[B]``.

    Returns:
      Per-example loss ``[B]``.

    Paper: Swann et al., "Touch-GS: Visual-Tactile Supervised 3D Gaussian
    Splatting", 2024 (arXiv id not verified offline).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> d_hat, var = jnp.array([[1.0, 2.0]]), jnp.array([[1.0, 4.0]])
      >>> lossjax.losses.variance_weighted_depth_loss(d_hat, jnp.zeros((1, 2)), var)
      Array([1.], dtype=float32)
    """
    fn = "variance_weighted_depth_loss"
    C.check_positive(fn, "epsilon", epsilon)
    p, t, mask, dtype = _inputs(fn, predictions, targets, where, batch_ndim=1)
    v = jax.lax.stop_gradient(_param(fn, "variances", variances, p.shape, dtype, mask))
    v = jnp.maximum(v, jnp.asarray(epsilon, dtype))
    return C.zero_masked(jnp.mean(jnp.square(p - t) / v, axis=_trailing_axes(p.ndim)), mask)


def _apre_sample() -> Sample:
    rng = _rng(20)
    x_hat = rng.normal(size=(4, 5)).astype(np.float32)
    x = rng.normal(size=(4, 5)).astype(np.float32)
    var = rng.uniform(0.2, 2.0, size=(4, 5)).astype(np.float32)
    return Sample(
        args=(x_hat, x, var),
        diff_argnums=(0, 2),
        variants=({"reconstruction_weight": 2.0, "variance_weight": 0.5},),
    )


@register(
    "probabilistic_reconstruction_error",
    aliases=("apre_loss",),
    family=FAMILY,
    kind="per_example",
    formula="mean over features of w1 (targets - predictions)^2 / v + w2 log v,  v = max(variances, epsilon)",
    paper="Improving Autoencoder-based Outlier Detection with Adjustable Probabilistic Reconstruction Error and "
    "Mean-shift Outlier Scoring (2023)",
    reference="closed form (two-weight Gaussian NLL without constants)",
    sample=_apre_sample,
)
def probabilistic_reconstruction_error(
    predictions: ArrayLike,
    targets: ArrayLike,
    variances: ArrayLike,
    *,
    reconstruction_weight: float = 1.0,
    variance_weight: float = 1.0,
    epsilon: float = 1e-6,
    where: ArrayLike | None = None,
) -> Array:
    r"""Adjustable probabilistic reconstruction error (APRE) of an autoencoder, per example.

    .. math:: \ell_b = \operatorname{mean}_j\Big[w_1\frac{(x_j - \hat x_j)^2}{v_j} + w_2\log v_j\Big],
        \qquad v = \max(\sigma^2, \epsilon)

    Two weights trade the reconstruction bias (``w1``) against the judgment
    uncertainty (``w2``); ``w1 = w2 = 1`` is twice :func:`gaussian_nll_loss`
    (without the constant), averaged over features. The variance floor is
    PyTorch's pass-through clamp (as :func:`gaussian_nll_loss`).

    Args:
      predictions: reconstructions ``x_hat`` ``[B, ...]``.
      targets: inputs ``x``, broadcastable to ``predictions``.
      variances: predicted variances ``sigma^2``, broadcastable to ``predictions``.
      reconstruction_weight: ``w1 >= 0``.
      variance_weight: ``w2 >= 0``.
      epsilon: the variance floor.
      where: optional boolean mask ``[B]``.

    Returns:
      Per-example loss ``[B]``.

    Paper: "Improving Autoencoder-based Outlier Detection with Adjustable
    Probabilistic Reconstruction Error and Mean-shift Outlier Scoring", 2023
    (the catalog's seed; arXiv id not verified offline).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.probabilistic_reconstruction_error(jnp.zeros((1, 2)), jnp.ones((1, 2)), jnp.ones((1, 2)))
      Array([1.], dtype=float32)
    """
    fn = "probabilistic_reconstruction_error"
    C.check_positive(fn, "reconstruction_weight", reconstruction_weight, allow_zero=True)
    C.check_positive(fn, "variance_weight", variance_weight, allow_zero=True)
    C.check_positive(fn, "epsilon", epsilon)
    p, t, mask, dtype = _inputs(fn, predictions, targets, where, batch_ndim=1)
    v = _floor_st(_param(fn, "variances", variances, p.shape, dtype, mask), epsilon)
    w1, w2 = jnp.asarray(reconstruction_weight, dtype), jnp.asarray(variance_weight, dtype)
    loss = jnp.mean(w1 * jnp.square(t - p) / v + w2 * jnp.log(v), axis=_trailing_axes(p.ndim))
    return C.zero_masked(loss, mask)


# ==========================================================================
# Aggregate responses, causal effects, regression as classification, model-based RL, sparse recovery.
# ==========================================================================


def _bags_sample() -> Sample:
    rng = _rng(21)
    f = rng.normal(size=(8,)).astype(np.float32)
    bags = np.array([0, 0, 1, 1, 1, 2, 2, 3], np.int32)
    responses = rng.normal(size=(4,)).astype(np.float32)
    return Sample(
        args=(f, bags, responses),
        diff_argnums=(0,),
        batched_argnums=(0, 1),
        variants=({"bag_weight": 0.3},),
    )


@register(
    "aggregate_response_loss",
    aliases=("aggregate_response_losses",),
    family=FAMILY,
    kind="batch",
    formula="rho mean_b (ybar_b - mean_{i in b} f_i)^2 + (1 - rho) mean_i (ybar_{b(i)} - f_i)^2",
    paper="Learning from Aggregate responses: Instance Level versus Bag Level Loss Functions (2024, arXiv:2401.11081)",
    reference="closed form (numpy segment means)",
    sample=_bags_sample,
)
def aggregate_response_loss(
    predictions: ArrayLike,
    bags: ArrayLike,
    targets: ArrayLike,
    *,
    bag_weight: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Learning from aggregate responses: bag-level, instance-level, or the interpolating loss.

    .. math:: \mathcal L = \rho\,\frac{1}{|\mathcal B|}\sum_b\Big(\bar y_b - \frac{1}{|b|}\sum_{i\in b} f_i\Big)^2
        + (1-\rho)\,\frac1n\sum_b\sum_{i\in b}(\bar y_b - f_i)^2

    Only bag responses ``ybar_b`` are observed. ``rho = 1`` (the default) is the
    bag-level loss, ``rho = 0`` the instance-level loss, which for equal bag
    sizes is the bag-level loss plus the mean within-bag variance of the
    predictions (a regularizer); values in between are the paper's
    interpolating estimator. Bags with no unmasked member are skipped.

    Args:
      predictions: instance predictions ``f(x_i)`` ``[N]``.
      bags: integer bag index of each instance ``[N]`` in ``[0, num_bags)``.
      targets: bag responses ``ybar`` ``[num_bags]``.
      bag_weight: ``rho`` in ``[0, 1]``.
      where: optional boolean mask ``[N]`` (instances).

    Returns:
      A scalar.

    Paper: Javanmard, Chen, Mirrokni, Badanidiyuru, Fu, "Learning from Aggregate
    responses: Instance Level versus Bag Level Loss Functions", ICLR 2024,
    arXiv:2401.11081.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> f, bags, ybar = jnp.array([1.0, 3.0, 0.0]), jnp.array([0, 0, 1]), jnp.array([2.0, 1.0])
      >>> lossjax.losses.aggregate_response_loss(f, bags, ybar, bag_weight=1.0)  # ((2 - 2)^2 + (1 - 0)^2) / 2
      Array(0.5, dtype=float32)
    """
    fn = "aggregate_response_loss"
    C.check_in_range(fn, "bag_weight", bag_weight, 0.0, 1.0)
    f = C.check_array(fn, "predictions", predictions, ndim=1, dtype="float")
    n = f.shape[0]
    b = C.check_array(fn, "bags", bags, shape=(n,), dtype="int")
    ybar = C.check_array(fn, "targets", targets, ndim=1, dtype="number")
    m = ybar.shape[0]
    dtype = C.compute_dtype(f, ybar)
    mask = C.prepare_where(fn, where, (n,))
    valid = jnp.ones((n,), bool) if mask is None else mask
    f = C.fill_masked(C.as_compute(f, dtype), mask)
    ybar = C.as_compute(ybar, dtype)
    ids = jnp.where(valid, b, jnp.zeros((), b.dtype))
    y_i = jnp.take(ybar, ids, mode="fill", fill_value=jnp.nan)  # an out-of-range bag gives NaN
    w = valid.astype(dtype)
    count = jax.ops.segment_sum(w, ids, num_segments=m)
    mean_f = _safe_div(jax.ops.segment_sum(w * f, ids, num_segments=m), count)
    has = count > 0
    n_bags = jnp.sum(has.astype(dtype))
    bag_term = _safe_div(jnp.sum(jnp.where(has, jnp.square(ybar - mean_f), jnp.zeros((), dtype))), n_bags)
    inst = jnp.where(valid, jnp.square(y_i - f), jnp.zeros((), dtype))
    inst_term = _safe_div(jnp.sum(inst), jnp.sum(w))
    rho = jnp.asarray(bag_weight, dtype)
    return rho * bag_term + (1.0 - rho) * inst_term


def _rlearner_sample() -> Sample:
    rng = _rng(22)
    tau = rng.normal(size=(6,)).astype(np.float32)
    y_res = rng.normal(size=(6,)).astype(np.float32)
    w_res = rng.uniform(-0.8, 0.8, size=(6,)).astype(np.float32)
    return Sample(args=(tau, y_res, w_res), diff_argnums=(0,))


@register(
    "r_learner_loss",
    aliases=("r_loss",),
    family=FAMILY,
    kind="per_example",
    formula="((Y - m(X)) - (W - e(X)) tau(X))^2",
    paper="Quasi-Oracle Estimation of Heterogeneous Treatment Effects (2017, arXiv:1712.04912)",
    reference="closed form (the R-loss, per example)",
    sample=_rlearner_sample,
)
def r_learner_loss(
    predictions: ArrayLike,
    outcome_residuals: ArrayLike,
    treatment_residuals: ArrayLike,
    *,
    where: ArrayLike | None = None,
) -> Array:
    r"""R-learner loss for heterogeneous treatment effects (Robinson's residual-on-residual regression).

    .. math:: \ell_i = \big[(Y_i - \hat m(X_i)) - (W_i - \hat e(X_i))\,\tau(X_i)\big]^2

    ``predictions`` are the effect estimates ``tau(X)``; the residuals use
    cross-fitted nuisance estimates (outcome model ``m``, propensity ``e``) and
    are held constant (``stop_gradient``). Equivalently a pseudo-outcome
    regression ``(W - e)^2 (Y~ - tau)^2`` with ``Y~ = (Y - m)/(W - e)``:
    inverse-variance weighting.

    Args:
      predictions: effect estimates ``tau(X)`` ``[...]``.
      outcome_residuals: ``Y - m(X)``, broadcastable to ``predictions``.
      treatment_residuals: ``W - e(X)``, broadcastable to ``predictions``.
      where: optional boolean mask aligned with the leading axes of ``predictions``.

    Returns:
      Per-example loss, ``predictions.shape``.

    Paper: Nie & Wager, "Quasi-Oracle Estimation of Heterogeneous Treatment
    Effects", Biometrika 2021, arXiv:1712.04912; Fisher, "The Connection Between
    R-Learning and Inverse-Variance Weighting for Estimation of Heterogeneous
    Treatment Effects", 2023 (arXiv id not verified offline).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.r_learner_loss(jnp.array([2.0]), jnp.array([1.5]), jnp.array([0.5]))
      Array([0.25], dtype=float32)
    """
    fn = "r_learner_loss"
    p, y_res, mask, dtype = _inputs(fn, predictions, outcome_residuals, where)
    w_res = _param(fn, "treatment_residuals", treatment_residuals, p.shape, dtype, mask, fill=0.0)
    y_res, w_res = jax.lax.stop_gradient(y_res), jax.lax.stop_gradient(w_res)
    return C.zero_masked(jnp.square(y_res - w_res * p), mask)


def _r2ccp_sample() -> Sample:
    rng = _rng(23)
    logits = (2.0 * rng.normal(size=(6, 5))).astype(np.float32)
    y = rng.uniform(-1.0, 1.0, size=(6,)).astype(np.float32)
    centers = np.linspace(-1.2, 1.2, 5).astype(np.float32)
    neg_inf = logits.copy()
    neg_inf[np.arange(6), np.arange(6) % 5] = -np.inf  # a bin with zero probability
    mixed = logits.copy()
    mixed[:, 0], mixed[:, 1] = 1e4, 1e-4
    big = np.where(logits >= 0, 1e4, -1e4).astype(np.float32)
    return Sample(
        args=(logits, y, centers),
        diff_argnums=(0,),
        batched_argnums=(0, 1),
        variants=({"exponent": 2.0, "entropy_weight": 0.1},),
        extremes=((big, y, centers), (np.zeros_like(logits), y, centers), (neg_inf, y, centers), (mixed, y, centers)),
    )


@register(
    "regression_as_classification_loss",
    aliases=("r2ccp_loss",),
    family=FAMILY,
    kind="per_example",
    formula="distance_weight sum_k p_k |c_k - y|^q + entropy_weight sum_k p_k log p_k,  p = softmax(logits)",
    paper="Conformal Prediction via Regression-as-Classification (2024, arXiv:2404.08168)",
    reference="EtashGuha/R2CCP R2CCP/models/model.py::GenModule.compute_loss (commit 13ecfd4), torch port",
    sample=_r2ccp_sample,
)
def regression_as_classification_loss(
    logits: ArrayLike,
    targets: ArrayLike,
    bin_centers: ArrayLike,
    *,
    exponent: float = 0.5,
    distance_weight: float = 5.0,
    entropy_weight: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""R2CCP: regression as classification over bins with a distance-aware loss and entropy regularization.

    .. math:: \ell = \lambda \sum_k p_k\,|c_k - y|^{q} + \tau \sum_k p_k \log p_k,\qquad p = \mathrm{softmax}(z)

    The expected ``q``-th power distance from the target to the bin centers keeps
    the mass near the true value (the order of the bins matters, unlike
    cross-entropy); the negative-entropy term (``tau > 0``) spreads it, which
    the conformal sets built afterwards need. Defaults are the official code's
    (``lq_norm_val = 0.5``, ``loss_weight = 5``, ``entropy_weight = 1``); its
    training loss is the sum over the batch. ``p log p`` is 0 at ``p = 0``
    (a logit of ``-inf``).

    Args:
      logits: bin scores ``[..., K]``.
      targets: real targets ``[...]``.
      bin_centers: the ``K`` bin midpoints ``[K]`` (covering the target range).
      exponent: ``q > 0``.
      distance_weight: ``lambda >= 0`` (R2CCP's ``loss_weight``).
      entropy_weight: ``tau >= 0`` (R2CCP's ``entropy_weight``).
      where: optional boolean mask aligned with the leading axes of ``targets``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Guha, Natarajan, Möllenhoff, Khan, Ndiaye, "Conformal Prediction via
    Regression-as-Classification", ICLR 2024, arXiv:2404.08168.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.array([[0.0, 0.0]])  # p = (1/2, 1/2); distances |0 - y|, |1 - y| with y = 1
      >>> lossjax.losses.regression_as_classification_loss(z, jnp.array([1.0]), jnp.array([0.0, 1.0]),
      ...     exponent=1.0, distance_weight=1.0, entropy_weight=0.0)
      Array([0.5], dtype=float32)
    """
    fn = "regression_as_classification_loss"
    C.check_positive(fn, "exponent", exponent)
    C.check_positive(fn, "distance_weight", distance_weight, allow_zero=True)
    C.check_positive(fn, "entropy_weight", entropy_weight, allow_zero=True)
    z = C.check_array(fn, "logits", logits, min_ndim=1, dtype="float")
    k = z.shape[-1]
    y = C.check_array(fn, "targets", targets, dtype="number")
    _check_like(fn, "targets", y, z.shape[:-1], "logits.shape[:-1]")
    c = C.check_array(fn, "bin_centers", bin_centers, shape=(k,), dtype="number")
    dtype = C.compute_dtype(z, y, c)
    mask = C.prepare_where(fn, where, z.shape[:-1])
    z = C.fill_masked(C.as_compute(z, dtype), mask)
    y = C.fill_masked(jnp.broadcast_to(C.as_compute(y, dtype), z.shape[:-1]), mask)
    c = jnp.reshape(C.as_compute(c, dtype), (1,) * (z.ndim - 1) + (k,))
    log_p = jax.nn.log_softmax(z, axis=-1)
    prob = jnp.exp(log_p)
    dist = C.safe_power(_abs(c - y[..., None]), exponent)
    neg_entropy = jnp.sum(jnp.where(prob > 0, prob * jnp.where(prob > 0, log_p, 0.0), 0.0), axis=-1)
    loss = distance_weight * jnp.sum(prob * dist, axis=-1) + entropy_weight * neg_entropy
    return C.zero_masked(loss, mask)


_VAGRAM = ("diagonal", "first_order")


def _vagram_sample() -> Sample:
    rng = _rng(24)
    s_hat = rng.normal(size=(5, 3)).astype(np.float32)
    s = rng.normal(size=(5, 3)).astype(np.float32)
    g = rng.normal(size=(5, 3)).astype(np.float32)
    return Sample(args=(s_hat, s, g), diff_argnums=(0,), variants=({"variant": "first_order"},))


@register(
    "value_gradient_weighted_model_loss",
    aliases=("vagram_loss",),
    family=FAMILY,
    kind="per_example",
    formula="diagonal: sum_j (g_j (s_hat - s)_j)^2;  first_order: (g . (s_hat - s))^2,  g = grad V(s) (constant)",
    paper="Value Gradient weighted Model-Based Reinforcement Learning (2022, arXiv:2204.01464)",
    reference="pairlab/vagram and the authors' blog: vagram_loss = square(grad * err).sum(), "
    "vagram_broken_loss = square(grad.dot(err)) (JAX)",
    sample=_vagram_sample,
)
def value_gradient_weighted_model_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    value_gradients: ArrayLike,
    *,
    variant: str = "diagonal",
    where: ArrayLike | None = None,
) -> Array:
    r"""VaGraM: a model-learning loss that weighs next-state errors by the value function's gradient.

    .. math:: \text{diagonal: } \ell = \sum_j \big(g_j\,(\hat s'_j - s'_j)\big)^2,\qquad
        \text{first order: } \ell = \big(g^\top(\hat s' - s')\big)^2,\qquad g = \nabla_s V(s')

    The first-order value-aware error ``(g . e)^2`` is the paper's starting point;
    VaGraM trains on its diagonal bound (the official code's ``vagram_loss``),
    which stays well-posed where ``g`` is nearly orthogonal to many errors.
    ``value_gradients`` are held constant (no model gradient reaches the value
    function). Compute them with ``jax.grad(value_fn)`` on the observed next states.

    Args:
      predictions: predicted next states ``[B, S]``.
      targets: observed next states ``[B, S]``.
      value_gradients: ``grad V`` at the observed next states ``[B, S]``.
      variant: ``"diagonal"`` (VaGraM, default) or ``"first_order"``.
      where: optional boolean mask ``[B]``.

    Returns:
      Per-example loss ``[B]``.

    Paper: Voelcker, Liao, Garg, Farahmand, "Value Gradient weighted Model-Based
    Reinforcement Learning", ICLR 2022, arXiv:2204.01464.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> e, g = jnp.array([[1.0, 1.0]]), jnp.array([[1.0, -1.0]])
      >>> lossjax.losses.value_gradient_weighted_model_loss(e, jnp.zeros((1, 2)), g)  # 1 + 1
      Array([2.], dtype=float32)
    """
    fn = "value_gradient_weighted_model_loss"
    C.check_one_of(fn, "variant", variant, _VAGRAM)
    p, t, mask, dtype = _inputs(fn, predictions, targets, where, batch_ndim=1)
    g = jax.lax.stop_gradient(_param(fn, "value_gradients", value_gradients, p.shape, dtype, mask, fill=0.0))
    weighted = g * (p - t)
    axes = _trailing_axes(p.ndim)
    if variant == "diagonal":
        loss = jnp.sum(jnp.square(weighted), axis=axes)
    else:
        loss = jnp.square(jnp.sum(weighted, axis=axes))
    return C.zero_masked(loss, mask)


_LASSO = ("lasso", "sqrt_lasso", "lad_lasso")


def _lasso_sample() -> Sample:
    rng = _rng(25)
    ax = rng.normal(size=(6,)).astype(np.float32)
    b = rng.normal(size=(6,)).astype(np.float32)
    x = rng.normal(size=(4,)).astype(np.float32)
    return Sample(
        args=(ax, b, x),
        diff_argnums=(0, 2),
        batched_argnums=(0, 1),
        kwargs={"regularizer_weight": 0.3},
        variants=(
            {"variant": "sqrt_lasso"},
            {"variant": "lad_lasso", "coefficient_weights": np.array([1.0, 0.5, 2.0, 1.0], np.float32)},
        ),
    )


@register(
    "lasso_objective",
    aliases=("sparse_recovery_lasso_objectives",),
    family=FAMILY,
    kind="batch",
    formula="lasso: 0.5 ||Ax - b||_2^2 | sqrt_lasso: ||Ax - b||_2 | lad_lasso: ||Ax - b||_1;  + lambda ||w * x||_1",
    paper="Square-root lasso: pivotal recovery of sparse signals via conic programming (2011, arXiv:1009.5689)",
    reference="closed form (numpy)",
    sample=_lasso_sample,
)
def lasso_objective(
    predictions: ArrayLike,
    targets: ArrayLike,
    coefficients: ArrayLike,
    *,
    variant: str = "lasso",
    regularizer_weight: float = 1.0,
    coefficient_weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Weighted LASSO objectives for sparse recovery: LASSO, square-root LASSO and LAD-LASSO.

    .. math:: \tfrac12\|Ax - b\|_2^2,\quad \|Ax - b\|_2,\quad \|Ax - b\|_1\quad
        +\ \lambda\,\|w \odot x\|_1

    ``predictions`` are the measurements of the current estimate ``A x``
    (computed by the caller, so ``A`` may be any linear operator), ``targets``
    the observations ``b``, ``coefficients`` the estimate ``x``. The square-root
    LASSO's ``lambda`` does not depend on the noise level; its norm has
    gradient 0 at a perfect fit. (The objectives only: the paper's OMP selection
    rules are algorithms.)

    Args:
      predictions: ``A x`` ``[m]`` (rows may be masked).
      targets: ``b`` ``[m]``.
      coefficients: ``x`` ``[n]``.
      variant: ``"lasso"``, ``"sqrt_lasso"`` or ``"lad_lasso"``.
      regularizer_weight: ``lambda >= 0``.
      coefficient_weights: optional non-negative weights ``w`` ``[n]`` (weighted LASSO).
      where: optional boolean mask ``[m]`` over the measurements (all masked: 0, the penalty included).

    Returns:
      A scalar.

    Paper: Belloni, Chernozhukov, Wang, "Square-root lasso: pivotal recovery of
    sparse signals via conic programming", Biometrika 2011, arXiv:1009.5689;
    Tibshirani 1996; "The greedy side of the LASSO: New algorithms for weighted
    sparse recovery via loss function-based orthogonal matching pursuit"
    (the catalog's seed; arXiv id not verified offline).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.lasso_objective(jnp.array([1.0, 2.0]), jnp.array([1.0, 0.0]), jnp.array([0.5, -1.0]),
      ...                                regularizer_weight=0.1)  # 0.5 * 4 + 0.1 * 1.5
      Array(2.15, dtype=float32)
    """
    fn = "lasso_objective"
    C.check_one_of(fn, "variant", variant, _LASSO)
    C.check_positive(fn, "regularizer_weight", regularizer_weight, allow_zero=True)
    x = C.check_array(fn, "coefficients", coefficients, ndim=1, dtype="float")
    p, t, mask, dtype = _inputs(fn, predictions, targets, where)
    if p.ndim != 1:
        raise ValueError(f"{fn}: `predictions` must be the measurements A x of shape [m], got shape {p.shape}.")
    x = C.as_compute(x, dtype)
    r = C.zero_masked(p - t, mask)
    if variant == "lasso":
        fit = 0.5 * jnp.sum(jnp.square(r))
    elif variant == "sqrt_lasso":
        fit = C.safe_norm(r, axis=None)
    else:
        fit = jnp.sum(_abs(r))
    ax = _abs(x)
    if coefficient_weights is not None:
        cw = C.check_array(fn, "coefficient_weights", coefficient_weights, shape=x.shape, dtype="number")
        ax = C.as_compute(cw, dtype) * ax
    penalty = jnp.asarray(regularizer_weight, dtype) * jnp.sum(ax)
    if mask is not None:  # the contract: an all-masked batch gives 0
        penalty = jnp.where(jnp.any(mask), penalty, jnp.zeros((), dtype))
    return fit + penalty
