"""Loss weightings: uncertainty weighting (Kendall et al.), DWA, RLW, GradNorm, FAMO, GLS.

Uncertainty weighting exists twice: :func:`uncertainty_weighted_loss`, a pure
function of the per-loss values and learnable log-variances that live in the
model's params, and :func:`uncertainty_weighting`, a transform that keeps the
log-variances in its own state.

The transforms here are optax aggregators like the combiners of
:mod:`lossjax.transforms._multitask` (the same ``update``, from
:mod:`lossjax._aggregation`): ``update`` takes the per-loss
gradients stacked on a leading axis and, for the loss-based weightings, the
per-loss values as ``losses=`` (shape ``[m]``), and returns ``sum_i w_i g_i``
with the method's weights ``w``. They sit first in an ``optax.chain``. Every
factory takes ``num_losses`` (keyword); those with a per-loss state require it.
Their state is a :class:`lossjax.transforms.AggregatorState`: the weights used
are ``state.weights`` (recorded when the factory got ``num_losses``), the
method's own state is ``state.inner``, and every
``update`` accepts ``key=`` (RLW also ``seed`` in its factory).

Faults (as the combiners): a step whose new state would not be finite (a NaN
loss or gradient) keeps the previous state; GradNorm's gradient norms are
computed in scaled form (any size). Skip non-finite steps with
:func:`lossjax.transforms.apply_if_finite` around the chain (``optax.apply_if_finite``
cannot wrap an aggregator). Data parallelism: pass the whole batch's losses
and per-loss gradients (``lossjax.masked_mean(..., axis_name=...)`` and
:func:`lossjax.multiloss.per_loss_value_and_grad` with ``axis_name``; see
:mod:`lossjax.transforms._multitask`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax.experimental import aggregating

from lossjax import _checks as C
from lossjax import _trees
from lossjax._aggregation import (
    aggregator,
    check_length,
    check_num_losses,
    combine,
    safe_gram,
    sample_grads,
)
from lossjax._parallel import pmean, psum
from lossjax.registry import Sample, TransformSample, register

__all__ = [
    "BalancedELBOState",
    "DWAState",
    "FAMOState",
    "GradNormState",
    "UncertaintyWeightingState",
    "dwa",
    "dwa_weights",
    "famo",
    "gls",
    "gradnorm",
    "gradnorm_objective",
    "rlw",
    "smooth_tchebycheff_loss",
    "uncertainty_weighted_loss",
    "uncertainty_weighting",
    "vae_balanced_elbo",
]

Array = jax.Array

FAMILY = "weighting"


def _losses(fn: str, extra: dict, m: int, axis_name) -> Array:
    """The ``losses=`` extra argument of ``update``: checked (float ``[m]``) and averaged across devices."""
    losses = extra.get("losses")
    if losses is None:
        raise ValueError(f"{fn}: `update` needs the per-loss values as `losses=` (shape [{m}]).")
    losses = C.check_array(fn, "losses", losses, shape=(m,), dtype="float")
    return pmean(losses.astype(C.compute_dtype(losses)), axis_name)


def _task_scale(fn: str, classification, m: int | None = None):
    """``classification`` as ``m`` flags: a tuple of bools, or an array (a config's list may arrive traced)."""
    if classification is None:
        return None
    if isinstance(classification, jax.Array):
        if classification.ndim != 1 or (m is not None and classification.shape[0] != m):
            raise ValueError(
                f"{fn}: `classification` must hold one flag per loss ({m}), got shape {classification.shape}."
            )
        return classification
    flags = tuple(bool(v) for v in np.asarray(classification, bool).reshape(-1))
    check_length(fn, "classification", flags, m)
    return flags


def _scale_array(flags, m: int, dtype) -> Array:
    # 1/(2 sigma^2) for regression terms, 1/sigma^2 for classification terms.
    if flags is None:
        return jnp.full((m,), 0.5, dtype)
    return jnp.where(jnp.asarray(flags, bool), jnp.ones((), dtype), jnp.full((), 0.5, dtype))


# ------------------------------------------------------------------------------
# Uncertainty weighting.
# ------------------------------------------------------------------------------


def _uw_sample():
    rng = np.random.default_rng(0)
    losses = rng.uniform(0.5, 2.0, size=(3,)).astype(np.float32)
    log_vars = rng.normal(size=(3,)).astype(np.float32) * 0.5
    return Sample(
        args=(losses, log_vars),
        diff_argnums=(0, 1),
        where=False,
        variants=({"classification": (True, False, True)},),
        extremes=(
            (losses * 1e4, np.array([-30.0, 0.0, 30.0], np.float32)),
            (np.zeros_like(losses), np.zeros_like(log_vars)),
        ),
    )


@register(
    "uncertainty_weighted_loss",
    aliases=("uw_loss",),
    family=FAMILY,
    kind="function",
    formula="sum_i c_i exp(-s_i) L_i + s_i / 2,  s_i = log sigma_i^2,  c_i = 1/2 (regression) or 1 (classification)",
    paper="Multi-Task Learning Using Uncertainty to Weigh Losses for Scene Geometry and Semantics "
    "(2018, arXiv:1705.07115)",
    reference="LibMTL/weighting/UW.py (losses/(2 exp(s)) + s/2)",
    sample=_uw_sample,
)
def uncertainty_weighted_loss(
    losses: jax.typing.ArrayLike,
    log_vars: jax.typing.ArrayLike,
    *,
    classification: Sequence[bool] | None = None,
) -> Array:
    r"""Kendall et al.'s uncertainty-weighted total of m losses, with learnable log-variances.

    .. math::
        \mathcal L = \sum_i c_i e^{-s_i} L_i + \frac{s_i}{2},\qquad s_i = \log\sigma_i^2,\qquad
        c_i = \tfrac12 \text{ (regression)},\ 1 \text{ (classification)}

    i.e. ``L/(2 sigma^2) + log sigma`` for a regression term and
    ``L/sigma^2 + log sigma`` for a classification term. Put ``log_vars`` in
    the model's params (init 0, LibMTL uses -0.5) and differentiate the total.
    The total can be negative; that is expected.

    Args:
      losses: per-loss values ``[m]`` (reduced over the batch).
      log_vars: learnable ``s = log sigma^2``, ``[m]``.
      classification: optional ``m`` booleans; True marks a classification term
        (weight ``1/sigma^2``). Default: all regression (as LibMTL).

    Returns:
      The weighted total, a scalar (float32 for half-precision inputs).

    Paper: Kendall, Gal, Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene
    Geometry and Semantics", CVPR 2018, arXiv:1705.07115.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.transforms.uncertainty_weighted_loss(jnp.array([2.0, 1.0]), jnp.zeros(2))
      Array(1.5, dtype=float32)
    """
    fn = "uncertainty_weighted_loss"
    losses = C.check_array(fn, "losses", losses, ndim=1, dtype="float")
    log_vars = C.check_array(fn, "log_vars", log_vars, ndim=1, dtype="float")
    C.check_same_shape(fn, ("losses", "log_vars"), losses, log_vars)
    flags = _task_scale(fn, classification, losses.shape[0])
    dtype = C.compute_dtype(losses, log_vars)
    L = C.as_compute(losses, dtype)
    s = C.as_compute(log_vars, dtype)
    c = _scale_array(flags, losses.shape[0], dtype)
    return jnp.sum(c * jnp.exp(-s) * L + 0.5 * s)


class UncertaintyWeightingState(NamedTuple):
    """The log-variances ``s = log sigma^2`` and their optimizer's state."""

    log_vars: Array  # [m]
    inner: Any  # optax.adam state of log_vars


def _weighting_sample(*variants, **hyper):
    """Two-leaf model, 3 losses' stacked gradients, the loss values as ``losses=``; the variants."""

    def make():
        rng = np.random.default_rng(0)
        params, updates = sample_grads(rng)
        losses = rng.uniform(0.5, 2.0, size=(3,)).astype(np.float32)
        return TransformSample(
            params=params,
            updates=updates,
            hyperparams={"num_losses": 3, **hyper},
            extra_args={"losses": losses},
            variants=tuple(variants),
        )

    return make


@register(
    "uncertainty_weighting",
    aliases=("uw",),
    family=FAMILY,
    kind="transform",
    formula="update = sum_i c_i exp(-s_i) g_i;  s <- adam step on sum_i c_i exp(-s_i) L_i + s_i/2",
    paper="Multi-Task Learning Using Uncertainty to Weigh Losses for Scene Geometry and Semantics "
    "(2018, arXiv:1705.07115)",
    reference="LibMTL/weighting/UW.py",
    sample=_weighting_sample({"classification": (True, False, True)}, {"init_log_var": -0.5, "learning_rate": 0.1}),
    runtime=("losses",),
)
def uncertainty_weighting(
    *,
    num_losses: int | None = None,
    learning_rate: float = 1e-2,
    init_log_var: float = 0.0,
    classification: Sequence[bool] | None = None,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""Uncertainty weighting as a transform: the log-variances live in the transform's state.

    Given stacked per-loss gradients and ``losses=``, returns the gradient of
    :func:`uncertainty_weighted_loss` with respect to the model parameters,

    .. math:: \text{update} = \sum_i c_i e^{-s_i} g_i,

    and takes one Adam step (``learning_rate``) on ``s`` using
    ``dL/ds_i = -c_i e^{-s_i} L_i + 1/2``.

    Args:
      num_losses: m (required: the state holds one log-variance per loss).
      learning_rate: Adam learning rate of the log-variances.
      init_log_var: initial ``s`` (0 in the paper; LibMTL uses -0.5).
      classification: optional m booleans (True: ``1/sigma^2`` weight).
      axis_name: average per-loss gradients and losses across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      whose ``inner`` is a :class:`UncertaintyWeightingState`;
      ``update(updates, state, params=None, *, losses)`` returns ``sum_i c_i exp(-s_i) g_i``.

    Paper: Kendall, Gal, Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene
    Geometry and Semantics", CVPR 2018, arXiv:1705.07115.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.uncertainty_weighting(num_losses=2)
      >>> g = jnp.array([[2.0, 0.0], [0.0, 2.0]])
      >>> upd, state = tx.update(g, tx.init(None), losses=jnp.array([1.0, 1.0]))
      >>> upd  # weights 1/2 at s = 0
      Array([1., 1.], dtype=float32)
    """
    fn = "uncertainty_weighting"
    m = check_num_losses(fn, num_losses, required=True)
    C.check_positive(fn, "learning_rate", learning_rate)
    if not np.isfinite(init_log_var):
        raise ValueError(f"{fn}: `init_log_var` must be finite, got {init_log_var!r}.")
    flags = _task_scale(fn, classification, m)
    inner = optax.adam(learning_rate)

    def init(params):
        del params
        s = jnp.full((m,), init_log_var, jnp.float32)
        return UncertaintyWeightingState(s, inner.init(s))

    def step(updates, _, state, extra):
        L = _losses(fn, extra, m, axis_name)
        s = state.log_vars
        c = _scale_array(flags, m, s.dtype)
        w = c * jnp.exp(-s)
        grad_s = -w * L.astype(s.dtype) + 0.5
        delta, inner_state = inner.update(grad_s, state.inner, s)
        return combine(updates, w), w, UncertaintyWeightingState(optax.apply_updates(s, delta), inner_state)

    return aggregator(fn, step, num_losses=m, axis_name=axis_name, init=init)


# ------------------------------------------------------------------------------
# DWA.
# ------------------------------------------------------------------------------


class DWAState(NamedTuple):
    """The last two loss vectors seen (``prev`` is the latest) and how many were seen."""

    prev: Array  # [m]
    prev2: Array  # [m]
    count: Array  # int32 []


def dwa_weights(prev: jax.typing.ArrayLike, prev2: jax.typing.ArrayLike, *, temperature: float = 2.0) -> Array:
    r"""DWA's weights ``m softmax((L(t-1)/L(t-2)) / T)``.

    .. math::
        w_i = \frac{m \exp(r_i/T)}{\sum_j \exp(r_j/T)},\qquad r_i = \frac{L_i(t-1)}{L_i(t-2)}

    (``r_i = 1`` where ``L_i(t-2) = 0``).

    Args:
      prev: the last loss vector ``L(t-1)``, ``[m]``.
      prev2: the one before, ``L(t-2)``, ``[m]``.
      temperature: ``T > 0`` (2 in the paper).

    Returns:
      The weights ``[m]`` (they sum to m), float32 for half-precision inputs.

    Paper: Liu, Johns, Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019, arXiv:1803.10704.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.transforms.dwa_weights(jnp.array([1.0, 1.0]), jnp.array([1.0, 1.0]))
      Array([1., 1.], dtype=float32)
    """
    fn = "dwa_weights"
    prev = C.check_array(fn, "prev", prev, ndim=1, dtype="float")
    prev2 = C.check_array(fn, "prev2", prev2, ndim=1, dtype="float")
    C.check_same_shape(fn, ("prev", "prev2"), prev, prev2)
    C.check_positive(fn, "temperature", temperature)
    dtype = C.compute_dtype(prev, prev2)
    nz = prev2 != 0
    r = jnp.where(nz, prev.astype(dtype) / jnp.where(nz, prev2, 1.0).astype(dtype), jnp.ones((), dtype))
    return prev.shape[0] * jax.nn.softmax(r / temperature)


@register(
    "dwa",
    aliases=("dynamic_weight_average",),
    family=FAMILY,
    kind="transform",
    formula="w_i = m exp(r_i/T) / sum_j exp(r_j/T),  r_i = L_i(t-1)/L_i(t-2);  w = 1 for the first two calls",
    paper="End-to-End Multi-Task Learning with Attention (2019, arXiv:1803.10704)",
    reference="LibMTL/weighting/DWA.py",
    sample=_weighting_sample({"temperature": 1.0}),
    runtime=("losses",),
)
def dwa(
    *, num_losses: int | None = None, temperature: float = 2.0, axis_name: str | None = None
) -> aggregating.Aggregator:
    r"""Dynamic Weight Average: weight each loss by how slowly it has been decreasing.

    .. math::
        w_i(t) = \frac{m \exp(r_i/T)}{\sum_j \exp(r_j/T)},\qquad r_i = \frac{L_i(t-1)}{L_i(t-2)}

    with ``w = 1`` until two loss vectors have been seen. ``losses=`` passed
    to ``update`` are recorded after the weights are taken; LibMTL records
    epoch averages, so pass an epoch's mean losses at epoch boundaries (and
    the same values in between) to reproduce it exactly.

    Args:
      num_losses: m (required: the state holds the last two loss vectors).
      temperature: ``T > 0`` (2 in the paper).
      axis_name: average per-loss gradients and losses across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      whose ``inner`` is a :class:`DWAState`;
      ``update(updates, state, params=None, *, losses)`` returns ``sum_i w_i g_i``.

    Paper: Liu, Johns, Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019, arXiv:1803.10704.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.dwa(num_losses=2)
      >>> upd, _ = tx.update(jnp.eye(2), tx.init(None), losses=jnp.array([1.0, 2.0]))
      >>> upd
      Array([1., 1.], dtype=float32)
    """
    fn = "dwa"
    m = check_num_losses(fn, num_losses, required=True)
    C.check_positive(fn, "temperature", temperature)

    def init(params):
        del params
        z = jnp.zeros((m,), jnp.float32)
        return DWAState(z, z, jnp.zeros((), jnp.int32))

    def step(updates, _, state, extra):
        L = _losses(fn, extra, m, axis_name)
        w = jnp.where(
            state.count >= 2, dwa_weights(state.prev, state.prev2, temperature=temperature), jnp.ones((m,), jnp.float32)
        )
        new = DWAState(L.astype(jnp.float32), state.prev, jnp.minimum(state.count + 1, 2))
        return combine(updates, w), w, new

    return aggregator(fn, step, num_losses=m, axis_name=axis_name, init=init)


# ------------------------------------------------------------------------------
# RLW.
# ------------------------------------------------------------------------------


def _rlw_sample():
    s = _weighting_sample()()
    return TransformSample(
        params=s.params,
        updates=s.updates,
        extra_args={"key": np.asarray(jax.random.PRNGKey(0))},
        variants=({"distribution": "uniform"}, {"distribution": "dirichlet"}),
    )


@register(
    "rlw",
    aliases=("random_loss_weighting",),
    family=FAMILY,
    kind="transform",
    formula="w = softmax(z),  z ~ N(0, I) (or U(0,1), Dirichlet(1)) drawn every step",
    paper="Reasonable Effectiveness of Random Weighting: A Litmus Test for Multi-Task Learning "
    "(2021, arXiv:2111.10603)",
    reference="LibMTL/weighting/RLW.py",
    sample=_rlw_sample,
    runtime=("key",),
)
def rlw(
    *,
    num_losses: int | None = None,
    distribution: str = "normal",
    seed: int | None = None,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""Random Loss Weighting: fresh random weights every step.

    .. math:: w = \mathrm{softmax}(z),\qquad z \sim \mathcal N(0, I_m)

    (``"uniform"``: ``z ~ U(0,1)^m``; ``"dirichlet"``: ``z ~ Dir(1)``, then
    softmax, as LibMTL). Needs ``key=`` in ``update`` or ``seed`` (the state's
    key, split every step); under data parallelism pass the same key (seed) on
    every device. The weights drawn are in ``state.weights``.

    Args:
      num_losses: m, optional: when given, the gradients are checked against it.
      distribution: ``"normal"``, ``"uniform"`` or ``"dirichlet"``.
      seed: an integer: the state holds a key split at every update (used when ``update`` gets no ``key=``).
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      (``state.weights``: the weights drawn); ``update(updates, state, params=None, *, key=None)``
      returns ``sum_i w_i g_i``.

    Paper: Lin et al., "Reasonable Effectiveness of Random Weighting: A Litmus Test for
    Multi-Task Learning", TMLR 2022, arXiv:2111.10603.

    Example:
      >>> import jax, jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.rlw()
      >>> upd, _ = tx.update(jnp.ones((3, 2)), tx.init(None), key=jax.random.PRNGKey(0))
      >>> upd.round(4)  # the weights sum to one
      Array([1., 1.], dtype=float32)
    """
    fn = "rlw"
    num_losses = check_num_losses(fn, num_losses, required=False)
    C.check_one_of(fn, "distribution", distribution, ("normal", "uniform", "dirichlet"))

    def step(updates, m, state, extra):
        key = extra["key"]
        if distribution == "normal":
            z = jax.random.normal(key, (m,), jnp.float32)
        elif distribution == "uniform":
            z = jax.random.uniform(key, (m,), jnp.float32)
        else:
            z = jax.random.dirichlet(key, jnp.ones((m,), jnp.float32))
        w = jax.nn.softmax(z)
        return combine(updates, w), w, state

    return aggregator(fn, step, num_losses=num_losses, axis_name=axis_name, requires=("key",), seed=seed)


# ------------------------------------------------------------------------------
# GradNorm.
# ------------------------------------------------------------------------------


class GradNormState(NamedTuple):
    """GradNorm's weight logits, the first losses seen and the logits' optimizer state."""

    logits: Array  # [m]; weights are m * softmax(logits)
    initial_losses: Array  # [m]
    count: Array  # int32 []
    inner: Any


def gradnorm_objective(
    logits: jax.typing.ArrayLike,
    norms: jax.typing.ArrayLike,
    losses: jax.typing.ArrayLike,
    initial_losses: jax.typing.ArrayLike,
    *,
    alpha: float = 1.5,
) -> Array:
    r"""GradNorm's ``L_grad = sum_i | ||w_i g_i|| - mean_j ||w_j g_j|| * r_i^alpha |`` (target held constant).

    .. math::
        w = m\,\mathrm{softmax}(\text{logits}),\quad G_i = w_i \|g_i\|,\quad
        r_i = \frac{L_i/L_i(0)}{\mathrm{mean}_j L_j/L_j(0)},\quad
        L_{grad} = \sum_i \big|G_i - \mathrm{sg}\big(\overline{G}\, r_i^\alpha\big)\big|

    Args:
      logits: the weight logits ``xi`` ``[m]`` (``w = m softmax(xi)``).
      norms: the per-loss gradient norms ``||g_i||`` ``[m]``.
      losses: the current losses ``L_i`` ``[m]``.
      initial_losses: the first losses ``L_i(0)`` ``[m]`` (non-zero).
      alpha: the restoring-force strength (1.5 in the paper's NYUv2 runs).

    Returns:
      ``L_grad``, a scalar (differentiate it with respect to ``logits``).

    Paper: Chen, Badrinarayanan, Lee, Rabinovich, "GradNorm: Gradient Normalization for Adaptive Loss
    Balancing in Deep Multitask Networks", ICML 2018, arXiv:1711.02257.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> ones = jnp.ones(2)
      >>> float(lossjax.transforms.gradnorm_objective(jnp.zeros(2), ones, ones, ones, alpha=1.5))
      0.0
    """
    logits, norms, losses, initial_losses = (jnp.asarray(x) for x in (logits, norms, losses, initial_losses))
    m = logits.shape[0]
    w = m * jax.nn.softmax(logits)
    Gi = w * norms
    ratio = losses / initial_losses
    r = ratio / jnp.mean(ratio)
    target = jax.lax.stop_gradient(jnp.mean(Gi) * jnp.power(r, alpha))
    return jnp.sum(jnp.abs(Gi - target))


@register(
    "gradnorm",
    family=FAMILY,
    kind="transform",
    formula="w = m softmax(xi); xi <- adam step on sum_i | w_i ||g_i|| - mean_j(w_j ||g_j||) r_i^alpha |, "
    "r_i = (L_i/L_i(0)) / mean(L/L(0))",
    paper="GradNorm: Gradient Normalization for Adaptive Loss Balancing in Deep Multitask Networks "
    "(2018, arXiv:1711.02257)",
    reference="LibMTL/weighting/GradNorm.py",
    sample=_weighting_sample({"alpha": 0.5, "learning_rate": 0.1}),
    runtime=("losses",),
)
def gradnorm(
    *,
    num_losses: int | None = None,
    alpha: float = 1.5,
    learning_rate: float = 1e-2,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""GradNorm: learn loss weights so every task's gradient norm trains at a common, balanced rate.

    .. math::
        w = m\,\mathrm{softmax}(\xi),\quad G_i = \|w_i g_i\|,\quad
        r_i = \frac{L_i/L_i(0)}{\mathrm{mean}_j L_j/L_j(0)},\quad
        L_{grad} = \sum_i |G_i - \overline{G}\, r_i^\alpha|

    The update is ``sum_i w_i g_i`` with the current weights; then one Adam
    step (``learning_rate``) on ``xi`` against ``L_grad`` (target held
    constant). The first call records ``L(0)`` and uses ``w = 1`` (LibMTL
    uses the first epoch's mean losses). The norms are those of the
    gradients given: pass the gradients of the shared layers (or, with
    :func:`lossjax.multiloss.rep_value_and_grad`, of the shared
    representation) as the paper does.

    Args:
      num_losses: m (required: the state holds one weight logit and one initial loss per loss).
      alpha: the restoring-force strength (1.5 in the paper's NYUv2 runs).
      learning_rate: Adam learning rate of the weight logits.
      axis_name: average per-loss gradients and losses across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      whose ``inner`` is a :class:`GradNormState`;
      ``update(updates, state, params=None, *, losses)`` returns ``sum_i w_i g_i``.

    Paper: Chen, Badrinarayanan, Lee, Rabinovich, "GradNorm: Gradient Normalization for Adaptive Loss
    Balancing in Deep Multitask Networks", ICML 2018, arXiv:1711.02257.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.gradnorm(num_losses=2)
      >>> upd, _ = tx.update(jnp.eye(2), tx.init(None), losses=jnp.array([1.0, 2.0]))
      >>> upd
      Array([1., 1.], dtype=float32)
    """
    fn = "gradnorm"
    m = check_num_losses(fn, num_losses, required=True)
    C.check_positive(fn, "alpha", alpha, allow_zero=True)
    C.check_positive(fn, "learning_rate", learning_rate)
    inner = optax.adam(learning_rate)

    def init(params):
        del params
        xi = jnp.zeros((m,), jnp.float32)
        return GradNormState(xi, jnp.ones((m,), jnp.float32), jnp.zeros((), jnp.int32), inner.init(xi))

    def step(updates, _, state, extra):
        L = _losses(fn, extra, m, axis_name).astype(jnp.float32)
        first = state.count == 0
        L0 = jnp.where(first, L, state.initial_losses)
        safe_L0 = jnp.where(L0 != 0, L0, 1.0)
        # ||g_i|| / s with s the Gram's power-of-two scale (1 unless the norms over- or underflow): L_grad is
        # homogeneous of degree 1 in the norms and Adam is scale-free, so the logits' steps are the same at any size
        # (unscaled, gradients of 1e20 overflow Adam's second moment and the logits stop learning).
        gram = safe_gram(updates)
        norms = jnp.sqrt(jnp.maximum(jnp.diagonal(gram.G), 0.0)).astype(jnp.float32)
        xi = state.logits
        w = jnp.where(first, jnp.ones((m,), jnp.float32), m * jax.nn.softmax(xi))
        grad_xi = jax.grad(gradnorm_objective)(xi, norms, L, safe_L0, alpha=alpha)
        grad_xi = jnp.where(first, jnp.zeros_like(grad_xi), grad_xi)
        delta, inner_state = inner.update(grad_xi, state.inner, xi)
        new_xi = jnp.where(first, xi, optax.apply_updates(xi, delta))
        inner_state = _trees.select(first, state.inner, inner_state)
        new = GradNormState(new_xi, L0, jnp.minimum(state.count + 1, 1), inner_state)
        # a NaN loss or gradient: the step is not recorded (d|x|/dx at NaN is finite in JAX, so the logits would
        # take a garbage Adam step rather than turn NaN)
        # (a NaN-filled new state makes the shared update keep the whole previous state, weights included)
        ok = jnp.all(jnp.isfinite(L)) & jnp.all(jnp.isfinite(norms))
        unrecorded = jax.tree.map(
            lambda x: jnp.full_like(x, jnp.nan) if jnp.issubdtype(x.dtype, jnp.inexact) else x, new
        )
        return combine(updates, w), w, _trees.select(ok, new, unrecorded)

    return aggregator(fn, step, num_losses=m, axis_name=axis_name, init=init)


# ------------------------------------------------------------------------------
# FAMO.
# ------------------------------------------------------------------------------


class FAMOState(NamedTuple):
    """FAMO's weight logits, the previous losses and the logits' optimizer state."""

    logits: Array  # [m]
    prev_losses: Array  # [m]
    count: Array  # int32 []
    inner: Any


@register(
    "famo",
    family=FAMILY,
    kind="transform",
    formula="z = softmax(xi); update = sum_i z_i g_i / (c (L_i - l_i));  xi <- Adam step (L2 weight decay) on "
    "d = J_softmax^T (log(L_prev - l) - log(L - l))",
    paper="FAMO: Fast Adaptive Multitask Optimization (2023, arXiv:2306.03792)",
    reference="Cranial-XIX/FAMO@0a6ad06 famo.py::FAMO (get_weighted_loss, update; torch.optim.Adam(weight_decay)); "
    "LibMTL/weighting/FAMO.py",
    sample=_weighting_sample({"min_losses": (0.1, 0.2, 0.0)}, {"weight_decay": 0.0, "learning_rate": 0.1}),
    runtime=("losses",),
)
def famo(
    *,
    num_losses: int | None = None,
    learning_rate: float = 0.025,
    weight_decay: float = 1e-3,
    min_losses: Sequence[float] | None = None,
    epsilon: float = 1e-8,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""FAMO: decrease every loss at the same log rate, with O(1) extra cost per step.

    .. math::
        z = \mathrm{softmax}(\xi),\quad D_i = L_i - l_i + \epsilon,\quad c = \sum_i z_i / D_i,\quad
        \text{update} = \sum_i \frac{z_i}{c D_i} g_i

    (the gradient of ``sum_i z_i log D_i / c``). Before weighting, ``xi`` takes
    one Adam step (``learning_rate``) along ``J_softmax(xi)^T delta +
    weight_decay * xi`` with ``delta = log D(prev) - log D(now)``, the log
    decrease of every loss since the previous call (skipped on the first call).
    As the official code (``torch.optim.Adam(weight_decay=gamma)``), the weight
    decay is added to the gradient (L2), not decoupled as in AdamW.

    Args:
      num_losses: m (required: the state holds one weight logit and the previous loss per loss).
      learning_rate: Adam learning rate of the weight logits ``xi`` (the paper's ``beta``).
      weight_decay: L2 weight decay of ``xi``, added to its gradient (the paper's ``gamma``).
      min_losses: the lower bounds ``l_i`` of the losses (default 0).
      epsilon: added to ``L_i - l_i`` (a floor keeps the log finite).
      axis_name: average per-loss gradients and losses across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      whose ``inner`` is a :class:`FAMOState`;
      ``update(updates, state, params=None, *, losses)`` returns ``sum_i z_i g_i / (c D_i)``.

    Paper: Liu, Feng, Stone, Liu, "FAMO: Fast Adaptive Multitask Optimization", NeurIPS 2023,
    arXiv:2306.03792.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.famo(num_losses=2)
      >>> upd, _ = tx.update(jnp.eye(2), tx.init(None), losses=jnp.array([1.0, 1.0]))
      >>> upd.round(4)
      Array([0.5, 0.5], dtype=float32)
    """
    fn = "famo"
    m = check_num_losses(fn, num_losses, required=True)
    C.check_positive(fn, "learning_rate", learning_rate)
    C.check_positive(fn, "weight_decay", weight_decay, allow_zero=True)
    C.check_positive(fn, "epsilon", epsilon)
    lmin = (0.0,) * m if min_losses is None else tuple(float(v) for v in np.asarray(min_losses).reshape(-1))
    check_length(fn, "min_losses", lmin, m)
    inner = optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(learning_rate))  # torch Adam(weight_decay)

    def init(params):
        del params
        xi = jnp.zeros((m,), jnp.float32)
        return FAMOState(xi, jnp.ones((m,), jnp.float32), jnp.zeros((), jnp.int32), inner.init(xi))

    def step(updates, _, state, extra):
        L = _losses(fn, extra, m, axis_name).astype(jnp.float32)
        lo = jnp.asarray(lmin, jnp.float32)

        def log_d(x):
            return jnp.log(jnp.maximum(x - lo + epsilon, jnp.asarray(float(jnp.finfo(jnp.float32).tiny))))

        delta = log_d(state.prev_losses) - log_d(L)
        _, vjp = jax.vjp(jax.nn.softmax, state.logits)
        (d,) = vjp(delta)
        delta_xi, inner_state = inner.update(d, state.inner, state.logits)
        started = state.count > 0
        xi = jnp.where(started, optax.apply_updates(state.logits, delta_xi), state.logits)
        inner_state = _trees.select(started, inner_state, state.inner)
        z = jax.nn.softmax(xi)
        D = jnp.maximum(L - lo + epsilon, jnp.asarray(float(jnp.finfo(jnp.float32).tiny)))
        c = jnp.sum(z / D)
        w = z / (c * D)
        return combine(updates, w), w, FAMOState(xi, L, jnp.minimum(state.count + 1, 1), inner_state)

    return aggregator(fn, step, num_losses=m, axis_name=axis_name, init=init)


# ------------------------------------------------------------------------------
# Smooth Tchebycheff scalarization.
# ------------------------------------------------------------------------------


def _stch_sample():
    rng = np.random.default_rng(5)
    return Sample(
        args=(rng.uniform(0.5, 2.0, size=(4,)).astype(np.float32),),
        diff_argnums=(0,),
        where=False,
        fuzz_batch=False,  # the axis is the m losses, not a batch
        variants=({"mu": 0.1, "weights": (0.5, 1.0, 2.0, 1.0), "ideal_point": (0.1, 0.0, 0.3, 0.2)},),
    )


@register(
    "smooth_tchebycheff_loss",
    aliases=("stch_loss",),
    family=FAMILY,
    kind="function",
    formula="mu log sum_i exp(w_i (L_i - z_i) / mu)  (-> max_i w_i (L_i - z_i) as mu -> 0)",
    paper="Smooth Tchebycheff Scalarization for Multi-Objective Optimization (2024, arXiv:2402.19078)",
    reference="closed form (torch.logsumexp); LibMTL STCH applies it to log(L_i / nadir_i)",
    sample=_stch_sample,
)
def smooth_tchebycheff_loss(
    losses: jax.typing.ArrayLike,
    *,
    mu: float = 1.0,
    weights: Sequence[float] | None = None,
    ideal_point: Sequence[float] | None = None,
) -> Array:
    r"""Smooth Tchebycheff (STCH) scalarization of m losses: a log-sum-exp smoothing of the weighted worst loss.

    .. math::
        g_\mu(L) = \mu \log \sum_i \exp\Big(\frac{w_i (L_i - z_i)}{\mu}\Big),\qquad
        \max_i w_i (L_i - z_i) \le g_\mu \le \max_i w_i (L_i - z_i) + \mu \log m

    Its gradient weights each loss by :math:`\mathrm{softmax}(w (L - z)/\mu)_i\, w_i`:
    the worst tasks dominate as :math:`\mu \to 0`. LibMTL's multi-task
    version passes :math:`\log(L_i / \text{nadir}_i)` (the nadir from a warm-up
    epoch) as ``losses`` (and drops a constant).

    Args:
      losses: the m per-task losses ``[..., m]``.
      mu: smoothing :math:`\mu > 0`.
      weights: preference weights :math:`w` (m numbers; default all 1).
      ideal_point: :math:`z` (m numbers; default 0).

    Returns:
      The scalarized loss ``[...]``.

    Paper: Lin, Zhang, Yang, Liu, Wang, Zhang, "Smooth Tchebycheff Scalarization for Multi-Objective
    Optimization", ICML 2024, arXiv:2402.19078.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> float(lossjax.transforms.smooth_tchebycheff_loss(jnp.array([1.0, 1.0]), mu=1.0))  # 1 + log 2
      1.6931471824645996
    """
    fn = "smooth_tchebycheff_loss"
    losses = C.check_array(fn, "losses", losses, min_ndim=1, dtype="float")
    C.check_positive(fn, "mu", mu)
    m = losses.shape[-1]
    if m == 0:
        raise ValueError(f"{fn}: `losses` must hold at least one loss on its last axis, got shape {losses.shape}.")
    check_length(fn, "weights", weights, m)
    check_length(fn, "ideal_point", ideal_point, m)
    dtype = C.compute_dtype(losses)
    x = C.as_compute(losses, dtype)
    if ideal_point is not None:
        x = x - jnp.asarray(ideal_point, dtype)
    if weights is not None:
        x = x * jnp.asarray(weights, dtype)
    mu_ = C.const(mu, x)
    return mu_ * jax.nn.logsumexp(x / mu_, axis=-1)


# ------------------------------------------------------------------------------
# GLS (geometric loss strategy).
# ------------------------------------------------------------------------------


@register(
    "gls",
    aliases=("geometric_loss_strategy",),
    family=FAMILY,
    kind="transform",
    formula="update = grad (prod_i L_i)^(1/m) = sum_i ((prod_j L_j)^(1/m) / (m L_i)) g_i",
    paper="MultiNet++: Multi-Stream Feature Aggregation and Geometric Loss Strategy for Multi-Task Learning "
    "(CVPR Workshops 2019, arXiv:1904.08492)",
    reference="LibMTL@4336804 LibMTL/weighting/GLS.py (torch autograd of (prod L)^(1/m), float64)",
    sample=_weighting_sample(),
    runtime=("losses",),
)
def gls(*, num_losses: int | None = None, axis_name: str | None = None) -> aggregating.Aggregator:
    r"""Geometric Loss Strategy: the gradient of the geometric mean of the losses.

    .. math::
        \text{update} = \nabla \Big(\prod_i L_i\Big)^{1/m} = \sum_i w_i g_i,\qquad
        w_i = \frac{(\prod_j L_j)^{1/m}}{m\, L_i}

    (computed in log space: no overflow of the product). The losses must be
    positive: a zero loss makes the geometric mean 0 and its own weight
    undefined (every weight is 0 then).

    Args:
      num_losses: m, optional: when given, the gradients are checked against it.
      axis_name: average per-loss gradients and losses across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      (``state.weights``: the weights used); ``update(updates, state, params=None, *, losses)``.

    Paper: Chennupati, Sistu, Yogamani, Rawashdeh, "MultiNet++: Multi-Stream Feature Aggregation and
    Geometric Loss Strategy for Multi-Task Learning", CVPR Workshops 2019, arXiv:1904.08492.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.gls(num_losses=2)
      >>> upd, state = tx.update(jnp.eye(2), tx.init(None), losses=jnp.array([1.0, 4.0]))
      >>> state.weights  # sqrt(4) / (2 L_i)
      Array([1.  , 0.25], dtype=float32)
    """
    fn = "gls"
    num_losses = check_num_losses(fn, num_losses, required=False)

    def step(updates, m, state, extra):
        L = _losses(fn, extra, m, axis_name)
        pos = L > 0
        logs = jnp.log(jnp.where(pos, L, jnp.ones((), L.dtype)))
        w = jnp.exp(jnp.mean(logs) - logs) / m
        w = jnp.where(jnp.all(pos), w, jnp.zeros_like(w))
        return combine(updates, w), w, state

    return aggregator(fn, step, num_losses=num_losses, axis_name=axis_name)


# ------------------------------------------------------------------------------
# Balanced VAE loss: the reconstruction / KL balance set by the running MSE.
# ------------------------------------------------------------------------------


class BalancedELBOState(NamedTuple):
    r"""State of :func:`vae_balanced_elbo`.

    Attributes:
      mse: scalar running estimate of the per-element reconstruction MSE, the decoder variance
        :math:`\gamma^2` (1 initially, as the reference's first run).
    """

    mse: Array

    @classmethod
    def initial(cls, dtype=jnp.float32) -> BalancedELBOState:
        """The reference's starting estimate, ``mse = 1``."""
        return cls(jnp.ones((), dtype))


def _balanced_elbo_sample() -> Sample:
    rng = np.random.default_rng(7)
    predictions = rng.uniform(0.0, 1.0, size=(4, 6)).astype(np.float32)
    targets = rng.uniform(0.0, 1.0, size=(4, 6)).astype(np.float32)
    kl = rng.uniform(0.5, 3.0, size=(4,)).astype(np.float32)
    return Sample(
        args=(predictions, targets, kl),
        kwargs={"state": BalancedELBOState(np.float32(0.2))},
        diff_argnums=(0, 1, 2),
        # a running MSE below the batch's (the estimate is kept: only decreases move it), other weights
        variants=({"state": BalancedELBOState(np.float32(0.01)), "decay": 0.5, "kl_weight": 4.0},),
    )


@register(
    "vae_balanced_elbo",
    aliases=("balanced_vae_loss",),
    family=FAMILY,
    kind="batch",
    formula="mean_i [ sum_d (x_id - xhat_id)^2 / (2 gamma^2) + D log gamma + D/2 log 2 pi + kl_weight KL_i ],  "
    "gamma^2 = running mse;  mse <- min(mse, decay mse + (1 - decay) batch_mse)",
    paper="Balancing reconstruction error and Kullback-Leibler divergence in Variational Autoencoders "
    "(2020, arXiv:2002.07514)",
    reference="asperti/BalancingVAE@6fcdfc3 computed_gamma.py::TwoStageVaeModel.__build_loss, main (stage 1)",
    sample=_balanced_elbo_sample,
    runtime=("state", "axis_name"),
    has_aux=True,
)
def vae_balanced_elbo(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    kl: jax.typing.ArrayLike,
    *,
    state: BalancedELBOState | None = None,
    decay: float = 0.99,
    kl_weight: float = 1.0,
    epsilon: float = 1e-12,
    axis_name=None,
    where: jax.typing.ArrayLike | None = None,
) -> tuple[Array, BalancedELBOState]:
    r"""VAE loss balanced by the running reconstruction MSE (a Gaussian decoder whose variance is that MSE).

    .. math::
        \mathcal L = \frac1B\sum_i\Big[\sum_{d=1}^{D}\frac{(x_{id} - \hat x_{id})^2}{2\gamma^2}
        + D\log\gamma + \frac D2\log 2\pi + \lambda\,\mathrm{KL}_i\Big],\qquad
        \gamma^2 = \max(\overline{\mathrm{mse}}, \epsilon)

    .. math::
        \overline{\mathrm{mse}} \leftarrow \min\big(\overline{\mathrm{mse}},\ \text{decay}\,
        \overline{\mathrm{mse}} + (1-\text{decay})\,\mathrm{mse}_{\text{batch}}\big)

    Instead of learning the decoder variance :math:`\gamma^2` (Dai and Wipf's
    two-stage VAE), it is set to a running estimate of the per-element
    reconstruction MSE, which only ever decreases (as the reference). The loss
    uses the estimate from before this batch (held constant: no gradient) and
    returns the updated one. ``D`` counts the elements of one example.

    Args:
      predictions: the decoder's reconstructions ``[B, ...]``.
      targets: the inputs ``[B, ...]``, same shape.
      kl: per-example KL divergence of the encoder's posterior from the prior ``[B]`` (summed over latents).
      state: :class:`BalancedELBOState` (``None``: the initial ``mse = 1``).
      decay: the running estimate's factor (the reference's 0.99).
      kl_weight: :math:`\lambda`, the KL weight (1 is the ELBO; the reference's CIFAR runs use
        ``(2 * image_side / latent_dim) ** 2``).
      epsilon: floor of :math:`\gamma^2` (a numerical guard).
      axis_name: mapped axis name(s) when the batch is sharded across devices.
      where: optional ``[B]`` mask of valid examples.

    Returns:
      ``(loss, new_state)``: the scalar loss (0 for an empty batch) and the updated estimate.

    Paper: Asperti, Trentin, "Balancing reconstruction error and Kullback-Leibler divergence in
    Variational Autoencoders", IEEE Access 2020, arXiv:2002.07514.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x, x_hat, kl = jnp.zeros((1, 2)), jnp.ones((1, 2)), jnp.array([0.5])
      >>> loss, state = lossjax.transforms.vae_balanced_elbo(x_hat, x, kl)  # gamma = 1: 2/2 + 0 + log(2 pi) + 0.5
      >>> round(float(loss), 4), float(state.mse)  # min(1, 0.99 + 0.01 * 1)
      (3.3379, 1.0)
    """
    fn = "vae_balanced_elbo"
    C.check_in_range(fn, "decay", decay, 0.0, 1.0)
    C.check_positive(fn, "kl_weight", kl_weight, allow_zero=True)
    C.check_positive(fn, "epsilon", epsilon)
    predictions = C.check_array(fn, "predictions", predictions, min_ndim=1, dtype="float")
    targets = C.check_array(fn, "targets", targets, min_ndim=1, dtype="float")
    C.check_same_shape(fn, ("predictions", "targets"), predictions, targets)
    kl = C.check_array(fn, "kl", kl, ndim=1, dtype="float", shape=(predictions.shape[0],))
    dtype = C.compute_dtype(predictions, targets, kl)
    if state is None:
        state = BalancedELBOState.initial(dtype)
    if not isinstance(state, BalancedELBOState):
        if isinstance(state, tuple) and len(state) == 1:
            state = BalancedELBOState(*state)
        else:
            raise TypeError(f"{fn}: `state` must be a BalancedELBOState (mse,), got {type(state).__name__}.")
    old = C.check_array(fn, "state.mse", state.mse, ndim=0, dtype="float").astype(dtype)
    old = jax.lax.stop_gradient(old)
    b = predictions.shape[0]
    mask = C.prepare_where(fn, where, (b,))
    valid = jnp.ones((b,), dtype) if mask is None else mask.astype(dtype)
    x_hat = C.fill_masked(C.as_compute(predictions, dtype), mask)
    x = C.fill_masked(C.as_compute(targets, dtype), mask)
    kl = C.fill_masked(C.as_compute(kl, dtype), mask)
    d = int(np.prod(predictions.shape[1:], dtype=np.int64))
    sq = jnp.sum(jnp.square(x_hat - x).reshape(b, d), axis=1)  # [B]
    gamma2 = jnp.maximum(old, jnp.asarray(epsilon, dtype))
    const = 0.5 * d * (jnp.log(gamma2) + jnp.log(jnp.asarray(2.0 * np.pi, dtype)))
    per_example = sq / (2.0 * gamma2) + const + jnp.asarray(kl_weight, dtype) * kl
    n = psum(jnp.sum(valid), axis_name)
    has = n > 0
    inv_n = 1.0 / jnp.maximum(n, jnp.ones((), dtype))
    loss = psum(jnp.sum(valid * per_example), axis_name) * inv_n
    batch_mse = jax.lax.stop_gradient(psum(jnp.sum(valid * sq), axis_name) * inv_n / max(d, 1))
    k = jnp.asarray(decay, dtype)
    new = jnp.where(has, jnp.minimum(old, k * old + (1 - k) * batch_mse), old)
    return jnp.where(has, loss, jnp.zeros((), dtype)), BalancedELBOState(new.astype(jnp.asarray(state.mse).dtype))
