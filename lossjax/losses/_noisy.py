"""Noisy-label losses: robust (bounded, normalized, symmetric) losses and batch filters.

Every classification loss here takes ``logits [..., C]`` and integer labels
``[...]`` or a target distribution ``[..., C]`` and returns the per-example
loss, unreduced. ``z_error_loss``, ``nonnegative_pu_risk`` and
``cross_model_confident_bce`` are batch-level (one scalar). Generalized
cross-entropy (GCE) is the comp-sum transform at ``tau = 1 + q``; it shares
``comp_sum_phi`` with ``comp_sum_loss`` through :mod:`lossjax._targets`.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax._targets import (
    SoftmaxInputs,
    binary_terms,
    check_logits,
    class_terms,
    comp_sum_phi,
    label_log_softmax,
    labels_in_range,
    softmax_inputs,
    target_probs,
)
from lossjax.registry import Sample, register

__all__ = [
    "adaptive_label_distributionally_robust_loss",
    "cross_model_confident_bce",
    "generalized_cross_entropy",
    "label_distributionally_robust_loss",
    "mae_loss",
    "nce_mae_loss",
    "nce_rce_loss",
    "negative_learning_loss",
    "nfl_mae_loss",
    "nfl_rce_loss",
    "nonnegative_pu_risk",
    "normalized_active_passive_loss",
    "normalized_cross_entropy",
    "normalized_focal_loss",
    "reverse_cross_entropy",
    "soft_symmetric_cross_entropy",
    "symmetric_cross_entropy",
    "z_error_loss",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

FAMILY = "noisy"

_LABEL_FLOOR = 1e-4  # the reference clamps one-hot labels at 1e-4: log 0 := log(1e-4)


# ------------------------------- helpers ----------------------------------


def _log1m_softmax(z: Array, log_p: Array) -> Array:
    """``log(1 - softmax(z)_k)`` for every class, exact and finite.

    For every class but the most probable one ``p_k <= 1/2`` and ``log1p(-p_k)``
    is accurate; for the argmax, ``1 - p_k`` is the sum of the other
    probabilities, ``exp(logsumexp_{j != k} z_j - logsumexp z)``.
    """
    is_max = jax.lax.broadcasted_iota(jnp.int32, z.shape, z.ndim - 1) == jnp.argmax(z, axis=-1)[..., None]
    others = jax.nn.logsumexp(jnp.where(is_max, -jnp.inf, z), axis=-1, keepdims=True)
    rest = others - jax.nn.logsumexp(z, axis=-1, keepdims=True)
    p_safe = jnp.where(is_max, jnp.zeros((), z.dtype), jnp.exp(log_p))
    return jnp.where(is_max, rest, jnp.log1p(-p_safe))


def _ratio(num: Array, den: Array, any_impossible: Array) -> Array:
    """``num / den``; 0 (the limit, with a zero gradient) in rows with an impossible class (double ``where``)."""
    den = jnp.where(any_impossible, jnp.ones((), den.dtype), den)
    return jnp.where(any_impossible, jnp.zeros((), num.dtype), num / den)


def _normalized(per_class: Array, q: Array, impossible: Array) -> Array:
    """``sum_k q_k f_k / sum_k f_k``; 0 (the limit, with a zero gradient) when a class is impossible.

    ``f_k`` is infinite for a class whose logit is ``-inf`` (``log p_k = -inf``):
    the normalizer then dominates and the ratio tends to 0; ``per_class`` holds 0
    at those classes so that neither the value nor the gradient meets ``inf``.
    """
    zero = jnp.zeros((), per_class.dtype)
    num = jnp.sum(jnp.where(q != 0, q * per_class, zero), axis=-1)
    return _ratio(num, jnp.sum(per_class, axis=-1), jnp.any(impossible, axis=-1))


def _identity(log_p: Array) -> Array:
    return log_p


def _focal_terms(log_p: Array, gamma) -> Array:
    """``-(1 - p)^gamma log p`` element-wise, ``1 - p = -expm1(log p)`` (``log p`` finite)."""
    return -C.safe_power(-jnp.expm1(log_p), gamma) * log_p


def _cross_entropy(log_p: Array, q: Array) -> Array:
    """``-sum_k q_k log p_k`` with ``0 log 0 = 0`` (a ``-inf`` logit without target mass adds 0)."""
    return -jnp.sum(jnp.where(q != 0, q * log_p, jnp.zeros((), log_p.dtype)), axis=-1)


class _Softmax:
    """The softmax terms of the active/passive losses, for integer labels or a target distribution.

    Integer labels take row reductions only (:func:`lossjax._targets.label_log_softmax`): ``log p_y`` from
    the gathered target logit, ``1 - p_y`` from the sum of the other classes, and every
    normalizer as a row sum of an element-wise function of ``log p_c = (z_c - m) - log_norm``
    (gathering from ``log_softmax`` or summing ``q * log_softmax`` made XLA store up to 9
    arrays of the logits' size for the backward pass). A target distribution keeps the
    plain ``log_softmax`` formulas.
    """

    def __init__(self, s: SoftmaxInputs):
        self.s = s
        if s.integer:
            self.t = label_log_softmax(s)
        else:
            self.log_p = jax.nn.log_softmax(s.logits, axis=-1)

    def cross_entropy(self) -> Array:
        """``-sum_k q_k log p_k``."""
        return -self.t.log_p if self.s.integer else _cross_entropy(self.log_p, self.s.targets)

    def normalized(self, per_class) -> Array:
        """``sum_k q_k f(log p_k) / sum_k f(log p_k)``, 0 when a logit is ``-inf`` (``f(0) = 0``)."""
        if not self.s.integer:
            impossible = jnp.isneginf(self.log_p)
            lp = jnp.where(impossible, jnp.zeros((), self.log_p.dtype), self.log_p)
            return _normalized(per_class(lp), self.s.targets, impossible)
        zero = jnp.zeros((), self.s.dtype)
        log_p = self.t.shifted - self.t.log_norm[..., None]  # an expression inside the row sum below
        den = jnp.sum(per_class(jnp.where(jnp.isneginf(log_p), zero, log_p)), axis=-1)
        num = per_class(jnp.where(jnp.isneginf(self.t.log_p), zero, self.t.log_p))
        # log p_c = -inf exactly where z_c = -inf: a min over z needs no [..., C] mask of its own.
        return _ratio(num, den, jnp.isneginf(jnp.min(self.s.logits, axis=-1)))

    def reverse_cross_entropy(self, label_floor) -> Array:
        """``-sum_k p_k log max(q_k, f)`` (``-log(f) (1 - p_y)`` for integer labels)."""
        if self.s.integer:
            return -jnp.log(jnp.asarray(label_floor, self.s.dtype)) * self.t.one_minus_p
        log_q = jnp.log(jnp.maximum(self.s.targets, jnp.asarray(label_floor, self.s.dtype)))
        return -jnp.sum(jnp.exp(self.log_p) * log_q, axis=-1)

    def mae(self) -> Array:
        """``(1/2) sum_k |p_k - q_k|`` (``1 - p_y`` for integer labels)."""
        if self.s.integer:
            return self.t.one_minus_p
        return 0.5 * jnp.sum(jnp.abs(jnp.exp(self.log_p) - self.s.targets), axis=-1)


def _check_floor(fn: str, label_floor) -> None:
    C.check_in_range(fn, "label_floor", label_floor, 0.0, 1.0, low_inclusive=False, high_inclusive=False)


# ------------------------------- samples ----------------------------------


def _sample(*variants, seed: int = 0, n: int = 6, c: int = 4) -> Sample:
    """``logits [n, c]`` and integer labels; the softmax edge cases (``class_axis``) on."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)).astype(np.float32)
    labels = rng.integers(0, c, size=(n,)).astype(np.int32)
    return Sample(args=(logits, labels), class_axis=True, variants=tuple(variants))


def _soft_sample() -> Sample:
    # stop_gradient_teacher=True is not a variant: the value then depends on the teacher but its
    # gradient is 0 by design (test_noisy.py checks it), which the finite-difference check rejects.
    rng = np.random.default_rng(11)
    return Sample(
        args=(rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(6, 4)).astype(np.float32)),
        diff_argnums=(0, 1),
        class_axis=True,
        variants=({"alpha": 0.2},),
    )


def _aldr_sample() -> Sample:
    # The new temperature is a constant for autodiff (as in the reference), so the
    # gradient is the total derivative only where d lambda'/dz = 0: at rows of equal
    # logits (p = uniform minimizes the KL). Other points are tested in test_noisy.py
    # against LDR-KL at the fixed temperature lambda'.
    rng = np.random.default_rng(12)
    logits = np.repeat(rng.uniform(0.5, 2.0, size=(6, 1)), 4, axis=1).astype(np.float32)
    labels = rng.integers(0, 4, size=(6,)).astype(np.int32)
    temperatures = rng.uniform(0.5, 1.0, size=(6,)).astype(np.float32)
    return Sample(
        args=(logits, labels, temperatures),
        class_axis=True,
        variants=({"margin": 2.0, "temperature": 2.0, "alpha": 3.0, "softplus": True},),
    )


def _zerror_sample() -> Sample:
    rng = np.random.default_rng(13)
    predictions = rng.normal(size=(8, 2)).astype(np.float32)
    targets = rng.normal(size=(8, 2)).astype(np.float32)
    predictions[3] += 6.0  # one outlier
    return Sample(
        args=(predictions, targets), kwargs={"threshold": 1.5}, diff_argnums=(0,), variants=({"threshold": 3.0},)
    )


def _cbc_sample() -> Sample:
    rng = np.random.default_rng(15)
    logits = rng.normal(size=(8, 4)).astype(np.float32)
    peer = (rng.normal(size=(8, 4)) * 2.5).astype(np.float32)
    return Sample(args=(logits, peer), class_axis=True, variants=({"threshold": 0.8, "neg_threshold": 0.1},))


def _pu_sample() -> Sample:
    rng = np.random.default_rng(14)
    logits = rng.normal(size=(8,)).astype(np.float32)
    labels = np.array([1, 0, 0, 1, 0, 0, 1, 0], np.int32)
    variants = ({"non_negative": False}, {"surrogate": "logistic", "beta": 0.1, "gamma": 0.5})
    return Sample(args=(logits, labels), kwargs={"prior": 0.3}, variants=variants)


# --------------------------------- LDR --------------------------------------


def _ldr_normalize(z: Array, softplus: bool) -> Array:
    """``z / (||z||_1 / C)`` (after an optional softplus); zero rows stay zero.

    An infinite logit (``-inf`` without the softplus) dominates the norm: the
    limit is ``sign(z_k) C / #{infinite}`` for the infinite entries and 0 for the
    others, with a zero gradient (the normalized row no longer moves).
    """
    if softplus:
        z = jax.nn.softplus(z)
    zero = jnp.zeros((), z.dtype)
    infinite = jnp.isinf(z)
    finite_z = jnp.where(infinite, zero, z)
    scale = jnp.mean(jnp.abs(finite_z), axis=-1, keepdims=True)
    nonzero = scale > 0
    zn = finite_z / jnp.where(nonzero, scale, jnp.ones((), z.dtype))
    count = jnp.sum(infinite, axis=-1, keepdims=True)
    limit = jnp.where(infinite, jnp.sign(z) * z.shape[-1] / jnp.maximum(count, 1).astype(z.dtype), zero)
    return jnp.where(count > 0, limit, zn)


def _ldr_value(zn: Array, q: Array, margin, temperature) -> Array:
    """``lambda * log(mean_k exp((margin (1 - q_k) + zn_k - zn_y) / lambda))``."""
    diff = (jnp.asarray(margin, zn.dtype) * (1 - q) + zn - jnp.sum(q * zn, axis=-1, keepdims=True)) / temperature
    lse = jax.nn.logsumexp(diff, axis=-1)
    return jnp.squeeze(temperature, -1) * (lse - math.log(zn.shape[-1]))


@register(
    "label_distributionally_robust_loss",
    aliases=("ldr_kl_loss", "ldr_loss"),
    family=FAMILY,
    kind="per_example",
    formula="lambda * log( (1/C) sum_k exp((c 1[k != y] + zn_k - zn_y) / lambda) ),  zn = z / (||z||_1 / C)",
    paper="Label Distributionally Robust Losses for Multi-class Classification: Consistency, Robustness and "
    "Adaptivity (2021, arXiv:2112.14869)",
    reference="Optimization-AI/ICML2023_LDR loss.py::LDRLoss_V1(threshold=2.0, Lambda=1.0)",
    sample=lambda: _sample({"margin": 1.0, "temperature": 0.5}, {"softplus": False}),
)
def label_distributionally_robust_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float = 2.0,
    temperature: float = 1.0,
    softplus: bool = True,
    where: ArrayLike | None = None,
) -> Array:
    r"""LDR-KL: the label-distributionally-robust loss with a KL regularizer.

    .. math::
        \ell_\lambda(z, y) = \lambda\log\Big(\frac1C\sum_k
        \exp\Big(\frac{c\,\mathbb 1[k\ne y] + \tilde z_k - \tilde z_y}{\lambda}\Big)\Big),
        \qquad \tilde z = \frac{z}{\|z\|_1 / C}

    (``z`` passed through a softplus first when ``softplus=True``, as in the
    reference ``LDRLoss_V1``). ``lambda -> 0`` gives the Crammer-Singer hinge,
    ``lambda -> inf`` the Weston-Watkins one. An all-zero logit row (possible
    without softplus) is left at zero instead of dividing by zero; a ``-inf`` logit
    (without softplus) dominates the norm and the row takes its limit
    (``-C`` there, 0 elsewhere, no gradient). For a
    target distribution ``q`` the margin is ``c (1 - q_k)`` and ``z_y`` is
    ``q . z``, the reference's formula.

    Args:
      logits: ``[..., C]``.
      labels: integer labels ``[...]`` or a target distribution ``[..., C]``.
      margin: ``c``, the margin (the reference's ``threshold``).
      temperature: ``lambda > 0``, the strength of the KL regularizer (a temperature).
      softplus: apply a softplus to the logits before normalizing.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Zhu, Ying, Yang, "Label Distributionally Robust Losses for
    Multi-class Classification: Consistency, Robustness and Adaptivity", ICML
    2023, arXiv:2112.14869.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.array([[1.0, -1.0], [0.0, 0.0]])
      >>> lossjax.losses.label_distributionally_robust_loss(z, jnp.array([0, 1]), softplus=False).round(4)
      Array([0.    , 1.4338], dtype=float32)
    """
    fn = "label_distributionally_robust_loss"
    C.check_positive(fn, "margin", margin, allow_zero=True)
    C.check_positive(fn, "temperature", temperature)
    z, q, mask, dtype = class_terms(fn, logits, labels, where, min_classes=2)
    zn = _ldr_normalize(z, softplus)
    lam = jnp.full((*z.shape[:-1], 1), temperature, dtype)
    return C.zero_masked(_ldr_value(zn, q, margin, lam), mask)


@register(
    "adaptive_label_distributionally_robust_loss",
    aliases=("aldr_kl_loss", "aldr_loss"),
    family=FAMILY,
    kind="per_example",
    formula="lambda_i' = lambda0 - lambda0 KL(p_i || u) / (alpha log C);  "
    "loss = LDR_{lambda_i'} - alpha log C / (2 lambda0) (lambda_i' - lambda0)^2",
    paper="Label Distributionally Robust Losses for Multi-class Classification: Consistency, Robustness and "
    "Adaptivity (2021, arXiv:2112.14869)",
    reference="Optimization-AI/ICML2023_LDR loss.py::ALDRLoss_V1(threshold=1.0, Lambda=1.0, alpha=1.0)",
    sample=_aldr_sample,
    runtime=("temperatures",),
    has_aux=True,
)
def adaptive_label_distributionally_robust_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    temperatures: ArrayLike,
    *,
    margin: float = 1.0,
    temperature: float = 1.0,
    alpha: float = 1.0,
    softplus: bool = False,
    where: ArrayLike | None = None,
) -> tuple[Array, Array]:
    r"""ALDR-KL: LDR-KL with a per-instance temperature ``lambda_i`` carried as state.

    .. math::
        p_i = \mathrm{normalize}\big(\mathrm{softmax}(\tilde z_i/\lambda_i) + 10^{-5}\big),\quad
        \lambda_i' = \lambda_0 - \lambda_0\,\frac{\mathrm{KL}(p_i\,\|\,u)}{\alpha\log C}

    .. math::
        \ell_i = \ell_{\lambda_i'}(z_i, y_i) - \frac{\alpha\log C}{2\lambda_0}(\lambda_i' - \lambda_0)^2

    with :func:`label_distributionally_robust_loss`'s ``ell`` (normalized
    logits, margin). As in the reference the new ``lambda_i'`` is computed from
    the previous ``lambda_i`` and treated as a constant (``stop_gradient``);
    it is returned so the caller can store it (``state.at[ids].set(new)``).
    ``alpha >= 1`` keeps ``lambda' > 0``; it is floored at the smallest normal
    number anyway. Masked examples return their old ``lambda_i`` unchanged.

    Args:
      logits: ``[..., C]``.
      labels: integer labels ``[...]`` or a target distribution ``[..., C]``.
      temperatures: the current per-instance ``lambda_i`` ``[...]`` (initialize to ``temperature``).
      margin: ``c`` (the reference's ``threshold``).
      temperature: ``lambda_0``, the reference temperature.
      alpha: ``alpha >= 1`` (finite), the strength of the KL penalty on ``lambda``.
      softplus: apply a softplus to the logits before normalizing.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      ``(loss [...], new_temperatures [...])`` (the state keeps its dtype).

    Paper: Zhu, Ying, Yang, ICML 2023, arXiv:2112.14869 (ALDR-KL).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.array([[2.0, 0.0, -1.0]])
      >>> loss, lam = lossjax.losses.adaptive_label_distributionally_robust_loss(z, jnp.array([0]), jnp.ones(1))
      >>> lam.round(4), loss.round(4)
      (Array([0.4772], dtype=float32), Array([-0.6127], dtype=float32))
    """
    fn = "adaptive_label_distributionally_robust_loss"
    C.check_positive(fn, "margin", margin, allow_zero=True)
    C.check_positive(fn, "temperature", temperature)
    C.check_in_range(fn, "alpha", alpha, 1.0, math.inf, high_inclusive=False)
    z, q, mask, dtype = class_terms(fn, logits, labels, where, min_classes=2)
    temperatures = C.check_array(fn, "temperatures", temperatures, dtype="float", shape=z.shape[:-1])
    lam_old = C.fill_masked(temperatures.astype(dtype), mask, fill=1.0)
    zn = _ldr_normalize(z, softplus)
    c = z.shape[-1]
    log_c = math.log(c)
    lam0 = jnp.asarray(temperature, dtype)
    a = jnp.asarray(alpha, dtype)
    # New lambda from the old one (no gradient, as in the reference).
    zs = jax.lax.stop_gradient(zn)
    safe_old = jnp.maximum(lam_old, C.const(float(jnp.finfo(dtype).tiny), lam_old))
    p = jax.nn.softmax(zs / safe_old[..., None], axis=-1) + C.const(1e-5, zs)
    p = p / jnp.sum(p, axis=-1, keepdims=True)
    kl = jnp.sum(p * jnp.log(c * p), axis=-1)
    lam_new = jax.lax.stop_gradient(lam0 - lam0 * kl / (a * log_c))
    lam_new = jnp.maximum(lam_new, C.const(float(jnp.finfo(dtype).tiny), lam_new))
    penalty = -0.5 * a * log_c / lam0 * jnp.square(lam_new - lam0)
    loss = _ldr_value(zn, q, margin, lam_new[..., None]) + penalty
    new_state = lam_new if mask is None else jnp.where(mask, lam_new, temperatures.astype(dtype))
    return C.zero_masked(loss, mask), new_state.astype(temperatures.dtype)


# --------------------------- active / passive --------------------------------


@register(
    "normalized_cross_entropy",
    aliases=("nce_loss",),
    family=FAMILY,
    kind="per_example",
    formula="(-sum_k q_k log p_k) / (-sum_k log p_k)",
    paper="Normalized Loss Functions for Deep Learning with Noisy Labels (2020, arXiv:2006.13554)",
    reference="HanxunH/Active-Passive-Losses loss.py::NormalizedCrossEntropy",
    sample=lambda: _sample(seed=1),
)
def normalized_cross_entropy(logits: ArrayLike, labels: ArrayLike, *, where: ArrayLike | None = None) -> Array:
    r"""Normalized cross-entropy (NCE), an active loss robust to label noise.

    .. math:: \mathrm{NCE} = \frac{-\log p_y}{-\sum_k \log p_k}

    computed from ``log_softmax`` (the denominator is at least ``C log C > 0``).
    For a target distribution ``q`` the numerator is ``-sum_k q_k log p_k``.
    Values lie in ``[0, 1]``; alone it underfits (use an APL combination). A
    logit of ``-inf`` makes the denominator infinite: the loss is its limit, 0,
    with a zero gradient (also in :func:`normalized_focal_loss` and the APL losses).

    Args:
      logits: ``[..., C]`` (``C >= 2``).
      labels: integer labels ``[...]`` or a target distribution ``[..., C]``.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Ma, Huang, Wang, Romano, Erfani, Bailey, "Normalized Loss Functions
    for Deep Learning with Noisy Labels", ICML 2020, arXiv:2006.13554.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.normalized_cross_entropy(jnp.zeros((1, 4)), jnp.array([2]))
      Array([0.25], dtype=float32)
    """
    s = softmax_inputs("normalized_cross_entropy", logits, labels, where, min_classes=2)
    return C.zero_masked(_Softmax(s).normalized(_identity), s.mask)


@register(
    "reverse_cross_entropy",
    aliases=("rce_loss",),
    family=FAMILY,
    kind="per_example",
    formula="-sum_k p_k log max(q_k, floor)  (= -log(floor) (1 - p_y) for integer labels)",
    paper="Symmetric Cross Entropy for Robust Learning with Noisy Labels (2019, arXiv:1908.06112)",
    reference="HanxunH/Active-Passive-Losses loss.py::ReverseCrossEntropy",
    sample=lambda: _sample({"label_floor": math.exp(-4.0)}, seed=2),
)
def reverse_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    label_floor: float = _LABEL_FLOOR,
    where: ArrayLike | None = None,
) -> Array:
    r"""Reverse cross-entropy (RCE), a passive loss: the cross-entropy with roles swapped.

    .. math::
        \mathrm{RCE} = -\sum_k p_k \log\max(q_k, f) = -A\,(1 - p_y),\qquad A = \log f

    ``log 0`` is replaced by ``A = log(label_floor)`` (the reference clamps the
    one-hot labels at ``1e-4``, ``A = -9.21``; the APL paper's text uses
    ``A = -4``: pass ``label_floor=exp(-4)``). The reference also clamps ``p``
    at ``1e-7``, which changes values by less than ``1e-6``; it is not done here.

    Args:
      logits: ``[..., C]``.
      labels: integer labels ``[...]`` or a target distribution ``[..., C]``.
      label_floor: ``f`` in ``(0, 1)``, the clamp of the target probabilities (it sets ``A``:
        a model hyperparameter, not a numerical guard).
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Wang, Ma, Chen, Luo, Yi, Bailey, "Symmetric Cross Entropy for Robust
    Learning with Noisy Labels", ICCV 2019, arXiv:1908.06112.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.reverse_cross_entropy(jnp.zeros((1, 2)), jnp.array([0])).round(4)
      Array([4.6052], dtype=float32)
    """
    fn = "reverse_cross_entropy"
    _check_floor(fn, label_floor)
    s = softmax_inputs(fn, logits, labels, where, min_classes=2)
    return C.zero_masked(_Softmax(s).reverse_cross_entropy(label_floor), s.mask)


@register(
    "mae_loss",
    aliases=("mean_absolute_error_loss",),
    family=FAMILY,
    kind="per_example",
    formula="(1/2) sum_k |p_k - q_k|  (= 1 - p_y for integer labels)",
    paper="Robust Loss Functions under Label Noise for Deep Neural Networks (2017, arXiv:1712.09482)",
    reference="HanxunH/Active-Passive-Losses loss.py::MeanAbsoluteError",
    sample=lambda: _sample(seed=3),
)
def mae_loss(logits: ArrayLike, labels: ArrayLike, *, where: ArrayLike | None = None) -> Array:
    r"""Mean absolute error between the softmax and the target (total-variation form).

    .. math:: \mathrm{MAE} = \tfrac12\sum_k |p_k - q_k| = 1 - p_y \ \text{(one-hot)}

    This is the reference's "reduced MAE" ``1 - p_y`` (the APL and Ghosh et al.
    papers write ``sum_k |p_k - q_k| = 2 (1 - p_y)``: twice this value). The
    APL hyperparameters ``alpha, beta`` of the papers were tuned with the
    reference's form.

    Args:
      logits: ``[..., C]``.
      labels: integer labels ``[...]`` or a target distribution ``[..., C]``.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]`` in ``[0, 1]``.

    Paper: Ghosh, Kumar, Sastry, "Robust Loss Functions under Label Noise for
    Deep Neural Networks", AAAI 2017, arXiv:1712.09482.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.mae_loss(jnp.zeros((1, 4)), jnp.array([1]))
      Array([0.75], dtype=float32)
    """
    s = softmax_inputs("mae_loss", logits, labels, where, min_classes=2)
    return C.zero_masked(_Softmax(s).mae(), s.mask)


@register(
    "normalized_focal_loss",
    aliases=("nfl_loss",),
    family=FAMILY,
    kind="per_example",
    formula="FL_y / sum_k FL_k,  FL_k = -(1 - p_k)^gamma log p_k",
    paper="Normalized Loss Functions for Deep Learning with Noisy Labels (2020, arXiv:2006.13554)",
    reference="HanxunH/Active-Passive-Losses loss.py::NormalizedFocalLoss",
    sample=lambda: _sample({"gamma": 2.0}, seed=4),
)
def normalized_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    gamma: float = 0.5,
    where: ArrayLike | None = None,
) -> Array:
    r"""Normalized focal loss (NFL), an active loss.

    .. math::
        \mathrm{NFL} = \frac{-(1-p_y)^\gamma \log p_y}{-\sum_k (1-p_k)^\gamma\log p_k}

    ``1 - p_k`` is ``-expm1(log p_k)``. The gradient flows through the
    modulating factors and the normalizer (the paper's function); the
    reference detaches both (``.data``), which leaves the values unchanged but
    not the gradients.

    Args:
      logits: ``[..., C]``.
      labels: integer labels ``[...]`` or a target distribution ``[..., C]``.
      gamma: the focusing exponent (0 gives NCE).
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]`` in ``[0, 1]``.

    Paper: Ma et al., "Normalized Loss Functions for Deep Learning with Noisy
    Labels", ICML 2020, arXiv:2006.13554.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.normalized_focal_loss(jnp.zeros((1, 4)), jnp.array([0]))
      Array([0.25], dtype=float32)
    """
    fn = "normalized_focal_loss"
    C.check_positive(fn, "gamma", gamma, allow_zero=True)
    s = softmax_inputs(fn, logits, labels, where, min_classes=2)
    return C.zero_masked(_Softmax(s).normalized(functools.partial(_focal_terms, gamma=gamma)), s.mask)


_ACTIVE = ("nce", "nfl")
_PASSIVE = ("rce", "mae")


def _apl(fn, logits, labels, *, active, passive, alpha, beta, gamma, label_floor, where):
    C.check_one_of(fn, "active", active, _ACTIVE)
    C.check_one_of(fn, "passive", passive, _PASSIVE)
    C.check_positive(fn, "alpha", alpha, allow_zero=True)
    C.check_positive(fn, "beta", beta, allow_zero=True)
    C.check_positive(fn, "gamma", gamma, allow_zero=True)
    _check_floor(fn, label_floor)
    s = softmax_inputs(fn, logits, labels, where, min_classes=2)
    terms = _Softmax(s)
    act = terms.normalized(_identity if active == "nce" else functools.partial(_focal_terms, gamma=gamma))
    pas = terms.reverse_cross_entropy(label_floor) if passive == "rce" else terms.mae()
    loss = jnp.asarray(alpha, s.dtype) * act + jnp.asarray(beta, s.dtype) * pas
    return C.zero_masked(loss, s.mask)


@register(
    "normalized_active_passive_loss",
    aliases=("apl_loss",),
    family=FAMILY,
    kind="per_example",
    formula="alpha * Active(z, y) + beta * Passive(z, y),  Active in {NCE, NFL}, Passive in {RCE, MAE}",
    paper="Normalized Loss Functions for Deep Learning with Noisy Labels (2020, arXiv:2006.13554)",
    reference="HanxunH/Active-Passive-Losses loss.py::NCEandRCE, NCEandMAE, NFLandRCE, NFLandMAE",
    sample=lambda: _sample(
        {"active": "nfl", "passive": "mae", "alpha": 10.0, "beta": 0.1, "gamma": 2.0},
        {"active": "nce", "passive": "mae"},
        seed=5,
    ),
)
def normalized_active_passive_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    active: str = "nce",
    passive: str = "rce",
    alpha: float = 1.0,
    beta: float = 1.0,
    gamma: float = 0.5,
    label_floor: float = _LABEL_FLOOR,
    where: ArrayLike | None = None,
) -> Array:
    r"""Active-passive loss (APL): a normalized active loss plus a passive loss.

    .. math:: \ell = \alpha\,\mathrm{Active}(z, y) + \beta\,\mathrm{Passive}(z, y)

    with ``active`` in ``{"nce", "nfl"}`` (:func:`normalized_cross_entropy`,
    :func:`normalized_focal_loss` with ``gamma``) and ``passive`` in
    ``{"rce", "mae"}`` (:func:`reverse_cross_entropy` with ``label_floor``,
    :func:`mae_loss`). :func:`nce_rce_loss` and friends are the four named
    combinations.

    Args:
      logits: ``[..., C]``.
      labels: integer labels ``[...]`` or a target distribution ``[..., C]``.
      active: ``"nce"`` or ``"nfl"``.
      passive: ``"rce"`` or ``"mae"``.
      alpha: weight of the active term.
      beta: weight of the passive term.
      gamma: focusing exponent of NFL.
      label_floor: clamp of the labels in RCE (``A = log(label_floor)``).
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Ma et al., ICML 2020, arXiv:2006.13554.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.normalized_active_passive_loss(jnp.zeros((1, 4)), jnp.array([0]), passive="mae")
      Array([1.], dtype=float32)
    """
    return _apl(
        "normalized_active_passive_loss",
        logits,
        labels,
        active=active,
        passive=passive,
        alpha=alpha,
        beta=beta,
        gamma=gamma,
        label_floor=label_floor,
        where=where,
    )


def _apl_entry(name: str, active: str, passive: str, ref: str, variant: dict, seed: int):
    return register(
        name,
        aliases=(f"{active}_and_{passive}",),
        family=FAMILY,
        kind="per_example",
        formula=f"alpha * {active.upper()} + beta * {passive.upper()}",
        paper="Normalized Loss Functions for Deep Learning with Noisy Labels (2020, arXiv:2006.13554)",
        reference=f"HanxunH/Active-Passive-Losses loss.py::{ref}",
        sample=lambda: _sample(variant, seed=seed),
    )


@_apl_entry("nce_rce_loss", "nce", "rce", "NCEandRCE", {"alpha": 10.0, "beta": 0.1}, 9)
def nce_rce_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    label_floor: float = _LABEL_FLOOR,
    where: ArrayLike | None = None,
) -> Array:
    r"""NCE + RCE, the active-passive combination of the APL paper.

    .. math:: \ell = \alpha\,\mathrm{NCE}(z, y) + \beta\,\mathrm{RCE}(z, y)

    Same as ``normalized_active_passive_loss(active="nce", passive="rce")``.

    Args:
      logits: ``[..., C]``.
      labels: integer labels ``[...]`` or a target distribution ``[..., C]``.
      alpha: weight of NCE.
      beta: weight of RCE.
      label_floor: clamp of the labels in RCE (``A = log(label_floor)``).
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Ma et al., ICML 2020, arXiv:2006.13554.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.nce_rce_loss(jnp.zeros((1, 4)), jnp.array([0])).round(4)
      Array([7.1578], dtype=float32)
    """
    return _apl(
        "nce_rce_loss",
        logits,
        labels,
        active="nce",
        passive="rce",
        alpha=alpha,
        beta=beta,
        gamma=0.0,
        label_floor=label_floor,
        where=where,
    )


@_apl_entry("nce_mae_loss", "nce", "mae", "NCEandMAE", {"alpha": 10.0, "beta": 0.1}, 10)
def nce_mae_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""NCE + MAE, the active-passive combination of the APL paper.

    .. math:: \ell = \alpha\,\mathrm{NCE}(z, y) + \beta\,\mathrm{MAE}(z, y)

    Same as ``normalized_active_passive_loss(active="nce", passive="mae")``
    (MAE in the reference's form ``1 - p_y``).

    Args:
      logits: ``[..., C]``.
      labels: integer labels ``[...]`` or a target distribution ``[..., C]``.
      alpha: weight of NCE.
      beta: weight of MAE.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Ma et al., ICML 2020, arXiv:2006.13554.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.nce_mae_loss(jnp.zeros((1, 4)), jnp.array([0]))
      Array([1.], dtype=float32)
    """
    return _apl(
        "nce_mae_loss",
        logits,
        labels,
        active="nce",
        passive="mae",
        alpha=alpha,
        beta=beta,
        gamma=0.0,
        label_floor=_LABEL_FLOOR,
        where=where,
    )


@_apl_entry("nfl_rce_loss", "nfl", "rce", "NFLandRCE", {"gamma": 2.0, "label_floor": 1e-3}, 11)
def nfl_rce_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    gamma: float = 0.5,
    label_floor: float = _LABEL_FLOOR,
    where: ArrayLike | None = None,
) -> Array:
    r"""NFL + RCE, the active-passive combination of the APL paper.

    .. math:: \ell = \alpha\,\mathrm{NFL}_\gamma(z, y) + \beta\,\mathrm{RCE}(z, y)

    Same as ``normalized_active_passive_loss(active="nfl", passive="rce")``.

    Args:
      logits: ``[..., C]``.
      labels: integer labels ``[...]`` or a target distribution ``[..., C]``.
      alpha: weight of NFL.
      beta: weight of RCE.
      gamma: focusing exponent of NFL (the reference's NFLandRCE default 0.5).
      label_floor: clamp of the labels in RCE (``A = log(label_floor)``).
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Ma et al., ICML 2020, arXiv:2006.13554.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.nfl_rce_loss(jnp.zeros((1, 4)), jnp.array([0])).round(4)
      Array([7.1578], dtype=float32)
    """
    return _apl(
        "nfl_rce_loss",
        logits,
        labels,
        active="nfl",
        passive="rce",
        alpha=alpha,
        beta=beta,
        gamma=gamma,
        label_floor=label_floor,
        where=where,
    )


@_apl_entry("nfl_mae_loss", "nfl", "mae", "NFLandMAE", {"alpha": 2.0, "beta": 3.0, "gamma": 1.0}, 12)
def nfl_mae_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    gamma: float = 0.5,
    where: ArrayLike | None = None,
) -> Array:
    r"""NFL + MAE, the active-passive combination of the APL paper.

    .. math:: \ell = \alpha\,\mathrm{NFL}_\gamma(z, y) + \beta\,\mathrm{MAE}(z, y)

    Same as ``normalized_active_passive_loss(active="nfl", passive="mae")``.

    Args:
      logits: ``[..., C]``.
      labels: integer labels ``[...]`` or a target distribution ``[..., C]``.
      alpha: weight of NFL.
      beta: weight of MAE.
      gamma: focusing exponent of NFL.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Ma et al., ICML 2020, arXiv:2006.13554.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.nfl_mae_loss(jnp.zeros((1, 4)), jnp.array([0]))
      Array([1.], dtype=float32)
    """
    return _apl(
        "nfl_mae_loss",
        logits,
        labels,
        active="nfl",
        passive="mae",
        alpha=alpha,
        beta=beta,
        gamma=gamma,
        label_floor=_LABEL_FLOOR,
        where=where,
    )


# --------------------------- symmetric cross-entropy -------------------------


@register(
    "symmetric_cross_entropy",
    aliases=("sce_loss",),
    family=FAMILY,
    kind="per_example",
    formula="alpha * CE(q, p) + beta * RCE(q, p),  RCE = -sum_k p_k log max(q_k, 1e-4)",
    paper="Symmetric Cross Entropy for Robust Learning with Noisy Labels (2019, arXiv:1908.06112)",
    reference="HanxunH/Active-Passive-Losses loss.py::SCELoss(alpha, beta)",
    sample=lambda: _sample({"alpha": 1.0, "beta": 0.5, "label_floor": 1e-3}, seed=6),
)
def symmetric_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float = 0.1,
    beta: float = 1.0,
    label_floor: float = _LABEL_FLOOR,
    where: ArrayLike | None = None,
) -> Array:
    r"""Symmetric cross-entropy (SCE): cross-entropy plus reverse cross-entropy.

    .. math::
        \ell = -\alpha\sum_k q_k\log p_k \;-\; \beta\sum_k p_k\log\max(q_k, f)

    with ``f = label_floor``: ``A = log(f) = log(1e-4)`` as in the reference. For the
    teacher/student form (two soft predictions) see :func:`soft_symmetric_cross_entropy`.

    Args:
      logits: ``[..., C]``.
      labels: integer labels ``[...]`` or a target distribution ``[..., C]``.
      alpha: weight of the cross-entropy (CIFAR-10: 0.1).
      beta: weight of the reverse cross-entropy (CIFAR-10: 1.0).
      label_floor: clamp of the labels in the reverse term.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Wang, Ma, Chen, Luo, Yi, Bailey, "Symmetric Cross Entropy for Robust
    Learning with Noisy Labels", ICCV 2019, arXiv:1908.06112.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.symmetric_cross_entropy(jnp.zeros((1, 2)), jnp.array([0])).round(4)
      Array([4.6745], dtype=float32)
    """
    fn = "symmetric_cross_entropy"
    C.check_positive(fn, "alpha", alpha, allow_zero=True)
    C.check_positive(fn, "beta", beta, allow_zero=True)
    _check_floor(fn, label_floor)
    s = softmax_inputs(fn, logits, labels, where, min_classes=2)
    terms = _Softmax(s)
    ce, rce = terms.cross_entropy(), terms.reverse_cross_entropy(label_floor)
    loss = jnp.asarray(alpha, s.dtype) * ce + jnp.asarray(beta, s.dtype) * rce
    return C.zero_masked(loss, s.mask)


@register(
    "soft_symmetric_cross_entropy",
    aliases=("teacher_student_symmetric_cross_entropy",),
    family=FAMILY,
    kind="per_example",
    formula="-(1 - alpha) sum_k softmax(t)_k log softmax(s)_k - alpha sum_k softmax(s)_k log softmax(t)_k",
    paper="Robust Mean Teacher for Continual and Gradual Test-Time Adaptation (2022, arXiv:2211.13081)",
    reference="mariodoebler/test-time-adaptation classification/methods/rmt.py::symmetric_cross_entropy",
    sample=_soft_sample,
)
def soft_symmetric_cross_entropy(
    logits: ArrayLike,
    teacher_logits: ArrayLike,
    *,
    alpha: float = 0.5,
    stop_gradient_teacher: bool = False,
    where: ArrayLike | None = None,
) -> Array:
    r"""Symmetric cross-entropy between a student's and a teacher's soft predictions.

    .. math::
        \ell = -(1-\alpha)\sum_k p^T_k\log p^S_k \;-\; \alpha\sum_k p^S_k\log p^T_k

    (``p^S = softmax(logits)``, ``p^T = softmax(teacher_logits)``). The RMT
    consistency loss uses ``alpha = 0.5``. The reference does not detach the
    teacher (its EMA parameters simply get no gradient);
    ``stop_gradient_teacher=True`` makes that explicit.

    Args:
      logits: student logits ``[..., C]``.
      teacher_logits: teacher logits ``[..., C]``.
      alpha: weight of the reverse direction.
      stop_gradient_teacher: block the gradient into ``teacher_logits``.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Döbler, Marsden, Yang, "Robust Mean Teacher for Continual and Gradual
    Test-Time Adaptation", CVPR 2023, arXiv:2211.13081.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.soft_symmetric_cross_entropy(jnp.zeros((1, 2)), jnp.array([[1.0, -1.0]])).round(4)
      Array([0.91], dtype=float32)
    """
    fn = "soft_symmetric_cross_entropy"
    logits = C.check_array(fn, "logits", logits, min_ndim=1, dtype="float")
    teacher_logits = C.check_array(fn, "teacher_logits", teacher_logits, min_ndim=1, dtype="float")
    C.check_same_shape(fn, ("logits", "teacher_logits"), logits, teacher_logits)
    C.check_in_range(fn, "alpha", alpha, 0.0, 1.0)
    dtype = C.compute_dtype(logits, teacher_logits)
    mask = C.prepare_where(fn, where, logits.shape[:-1])
    s = C.fill_masked(C.as_compute(logits, dtype), mask)
    t = C.fill_masked(C.as_compute(teacher_logits, dtype), mask)
    if stop_gradient_teacher:
        t = jax.lax.stop_gradient(t)
    log_s = jax.nn.log_softmax(s, axis=-1)
    log_t = jax.nn.log_softmax(t, axis=-1)
    a = jnp.asarray(alpha, dtype)
    loss = -(1 - a) * _expectation(log_t, log_s) - a * _expectation(log_s, log_t)
    return C.zero_masked(loss, mask)


def _expectation(log_p: Array, values: Array) -> Array:
    """``sum_k p_k v_k`` written as ``sum_k p_k (v_k - c) + c`` with ``c`` its own (constant) value.

    Same value and gradient; but the cotangent reaching ``log_p`` is ``p_k (v_k - c)``
    instead of ``p_k v_k``, so the softmax backward no longer subtracts two large
    numbers when ``p`` sits on a class with a large ``|v|`` (log-probabilities of
    -2e4 at logits of 1e4 lost 3 digits of the gradient in float32).
    """
    p = jnp.exp(log_p)
    c = jax.lax.stop_gradient(jnp.sum(p * values, axis=-1, keepdims=True))
    return jnp.sum(p * (values - c), axis=-1) + c[..., 0]


# ------------------------------ negative learning ----------------------------


@register(
    "negative_learning_loss",
    aliases=("complementary_label_loss",),
    family=FAMILY,
    kind="per_example",
    formula="-sum_k qbar_k log(1 - p_k)  (= -log(1 - p_ybar) for a complementary label ybar)",
    paper="NLNL: Negative Learning for Noisy Labels (2019, arXiv:1908.07387)",
    reference="HanxunH/Active-Passive-Losses loss.py::NLNL (s_neg = log(clamp(1 - softmax, 1e-5, 1)))",
    sample=lambda: _sample(seed=7),
)
def negative_learning_loss(logits: ArrayLike, labels: ArrayLike, *, where: ArrayLike | None = None) -> Array:
    r"""Negative (complementary-label) learning: push down a class the example is NOT.

    .. math:: \ell = -\log(1 - p_{\bar y}),\qquad p = \mathrm{softmax}(z)

    ``labels`` are complementary labels ``bar y`` (integer ``[...]``) or weights
    over the complementary classes ``[..., C]`` (``-sum_k qbar_k log(1 - p_k)``,
    e.g. several negatives, or T²A's uncertainty-weighted non-predicted
    classes). ``log(1 - p_k)`` is exact even when ``p_k`` rounds to 1 (the
    most probable class uses the log-sum-exp of the others), so no ``1e-5``
    clamp as in the reference is needed; they agree wherever ``1 - p > 1e-5``.

    Args:
      logits: ``[..., C]`` (``C >= 2``).
      labels: complementary labels ``[...]`` or complementary weights ``[..., C]``.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Kim, Yim, Yun, Kim, "NLNL: Negative Learning for Noisy Labels", ICCV
    2019, arXiv:1908.07387; used for test-time adaptation by T²A (Think Twice
    before Adaptation, 2025).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.negative_learning_loss(jnp.zeros((1, 4)), jnp.array([3])).round(4)
      Array([0.2877], dtype=float32)
    """
    fn = "negative_learning_loss"
    z, q, mask, _ = class_terms(fn, logits, labels, where, min_classes=2)
    if C.has_integer_labels(fn, z, labels):
        # -log(1 - p_ybar) = logsumexp(z) - logsumexp_{k != ybar}(z): exact, two reductions, each
        # relative to its own maximum (the difference of the maxima is exact; the sums are O(1)).
        others = jnp.where(q > 0, -jnp.inf, z)
        m_all = jax.lax.stop_gradient(jnp.max(z, axis=-1, keepdims=True))
        m_other = jax.lax.stop_gradient(jnp.max(others, axis=-1, keepdims=True))
        lse_all = jnp.log(jnp.sum(jnp.exp(z - m_all), axis=-1))
        lse_other = jnp.log(jnp.sum(jnp.exp(others - m_other), axis=-1))
        loss = (m_all - m_other)[..., 0] + lse_all - lse_other
        # An out-of-range complementary label (unmasked) gives NaN, as an out-of-bounds gather.
        loss = jnp.where(labels_in_range(jnp.asarray(labels), z.shape[-1], mask), loss, jnp.nan)
    else:
        loss = -jnp.sum(q * _log1m_softmax(z, jax.nn.log_softmax(z, axis=-1)), axis=-1)
    return C.zero_masked(loss, mask)


# ------------------------------- batch filters --------------------------------


@register(
    "z_error_loss",
    family=FAMILY,
    kind="batch",
    formula="mean_{i: |z_i| <= k} e_i,  e_i = mean_j (pred_ij - target_ij)^2,  z_i = (e_i - mean_B e) / std_B e",
    paper="Z-Error Loss for Training Neural Networks (2025, arXiv:2506.02154)",
    reference="hand-derived closed forms (no public implementation located)",
    sample=_zerror_sample,
)
def z_error_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    threshold: float = 3.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Z-error loss: the batch mean squared error without the batch's outliers.

    .. math::
        e_i = \mathrm{mean}_j (\hat y_{ij} - y_{ij})^2,\qquad
        z_i = \frac{e_i - \mu_B}{\sigma_B},\qquad
        \ell = \frac{\sum_i \mathbb 1[|z_i| \le k]\, e_i}{\max(1, \sum_i \mathbb 1[|z_i| \le k])}

    (the paper's ``ZMSELoss``: a two-sided z-score of the per-sample losses,
    unbiased standard deviation). ``mu_B`` and ``sigma_B`` are batch statistics
    over the unmasked examples, under ``stop_gradient``; examples with
    ``|z_i| > k`` (treated as out-of-distribution / mislabeled) contribute
    neither loss nor gradient. ``sigma_B = 0`` (all errors equal) or fewer than
    two valid examples keep every example; an all-masked batch gives 0. With
    ``B`` examples ``|z_i| <= (B - 1) / sqrt(B)``, so tiny batches filter
    nothing at ``k = 3`` (the paper's examples use ``k = 2``).

    Args:
      predictions: ``[B, ...]``.
      targets: same shape as ``predictions``.
      threshold: ``k``, in standard deviations.
      where: optional boolean mask ``[B]`` of valid examples.

    Returns:
      A scalar.

    Paper: Godin, "Z-Error Loss for Training Neural Networks", 2025,
    arXiv:2506.02154 (no public code located; tested against closed forms).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> pred = jnp.array([0.0, 0.0, 0.0, 0.0, 10.0])
      >>> lossjax.losses.z_error_loss(pred, jnp.ones(5), threshold=1.5)
      Array(1., dtype=float32)
    """
    fn = "z_error_loss"
    predictions = C.check_array(fn, "predictions", predictions, min_ndim=1, dtype="float")
    targets = C.check_array(fn, "targets", targets, min_ndim=1, dtype="number")
    C.check_same_shape(fn, ("predictions", "targets"), predictions, targets)
    C.check_positive(fn, "threshold", threshold, allow_zero=True)
    dtype = C.compute_dtype(predictions, targets)
    batch = predictions.shape[:1]
    mask = C.prepare_where(fn, where, batch)
    p = C.fill_masked(C.as_compute(predictions, dtype), mask)
    t = C.fill_masked(C.as_compute(targets, dtype), mask)
    sq = jnp.square(p - t)
    err = jnp.mean(sq, axis=tuple(range(1, sq.ndim))) if sq.ndim > 1 else sq
    valid = jnp.ones(batch, bool) if mask is None else mask
    e = jax.lax.stop_gradient(err)
    mu = C.masked_mean(e, valid)
    count = jnp.sum(valid).astype(dtype)
    sq_dev = C.masked_sum(jnp.square(e - mu), valid)
    var = sq_dev / jnp.maximum(count - 1, jnp.ones((), dtype))  # unbiased (B - 1)
    pos = (var > 0) & (count > 1)
    sigma = jnp.sqrt(jnp.where(pos, var, jnp.ones((), dtype)))
    zscore = jnp.where(pos, (e - mu) / sigma, jnp.zeros((), dtype))
    keep = valid & (jnp.abs(zscore) <= jnp.asarray(threshold, dtype))
    return C.masked_mean(err, keep)


@register(
    "nonnegative_pu_risk",
    aliases=("nnpu_risk", "nnpu_loss"),
    family=FAMILY,
    kind="batch",
    formula="pi R_p^+ + max(0, R_u^- - pi R_p^-)  (nnPU; gradient -gamma grad(R_u^- - pi R_p^-) when < -beta)",
    paper="Positive-Unlabeled Learning with Non-Negative Risk Estimator (2017, arXiv:1703.00593)",
    reference="kiryor/nnPUlearning pu_loss.py::PULoss (chainer)",
    sample=_pu_sample,
)
def nonnegative_pu_risk(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    prior: float,
    beta: float = 0.0,
    gamma: float = 1.0,
    surrogate: str = "sigmoid",
    non_negative: bool = True,
    where: ArrayLike | None = None,
) -> Array:
    r"""Non-negative PU risk (nnPU) for positive-unlabeled learning.

    .. math::
        R = \pi\hat R^+_p + \max\big(-\beta,\; \hat R^-_u - \pi\hat R^-_p\big),\qquad
        \hat R^\pm_p = \frac{1}{n_p}\sum_{i\in P}\ell(\pm f_i),\quad
        \hat R^-_u = \frac{1}{n_u}\sum_{i\in U}\ell(-f_i)

    (``n_p, n_u`` floored at 1). As in the reference, when the negative-risk
    estimate drops below ``-beta`` the value is ``pi R_p^+ - beta`` and the
    gradient is that of ``-gamma (R_u^- - pi R_p^-)`` (the "defeat" step that
    pushes the negative risk back up): the gradient is then deliberately not
    the derivative of the value. ``non_negative=False`` gives the unbiased uPU
    risk. ``surrogate`` is ``"sigmoid"`` (``l(z) = sigmoid(-z)``, the reference's
    default) or ``"logistic"`` (``softplus(-z)``).

    Args:
      logits: real-valued scores ``f(x)`` ``[N]`` of a binary classifier.
      labels: ``[N]``, 1 (or True) for labeled positives, 0 or -1 for unlabeled.
      prior: ``pi``, the class prior of the positives, in ``(0, 1)``.
      beta: the tolerance of the non-negativity constraint.
      gamma: the step weight of the defeat gradient.
      surrogate: the surrogate loss ``l``: ``"sigmoid"`` or ``"logistic"`` (the reference's ``loss``).
      non_negative: use nnPU (True) or the unbiased uPU risk (False).
      where: optional boolean mask ``[N]``.

    Returns:
      A scalar.

    Paper: Kiryo, Niu, du Plessis, Sugiyama, "Positive-Unlabeled Learning with
    Non-Negative Risk Estimator", NeurIPS 2017, arXiv:1703.00593.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> f = jnp.array([2.0, -1.0, 0.0, 1.0])
      >>> lossjax.losses.nonnegative_pu_risk(f, jnp.array([1, 0, 0, 1]), prior=0.4).round(4)
      Array(0.1397, dtype=float32)
    """
    fn = "nonnegative_pu_risk"
    C.check_array(fn, "logits", logits, ndim=1, dtype="float")
    f, y, mask, dtype = binary_terms(fn, logits, labels, where)
    C.check_in_range(fn, "prior", prior, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    C.check_positive(fn, "beta", beta, allow_zero=True)
    C.check_positive(fn, "gamma", gamma, allow_zero=True)
    C.check_one_of(fn, "surrogate", surrogate, ("sigmoid", "logistic"))
    positive = y > 0
    unlabeled = ~positive
    if mask is not None:
        positive, unlabeled = positive & mask, unlabeled & mask
    ell = jax.nn.sigmoid if surrogate == "sigmoid" else jax.nn.softplus
    pos_f = positive.astype(dtype)
    unl_f = unlabeled.astype(dtype)
    n_p = jnp.maximum(jnp.sum(pos_f), jnp.ones((), dtype))
    n_u = jnp.maximum(jnp.sum(unl_f), jnp.ones((), dtype))
    pi = jnp.asarray(prior, dtype)
    risk_pos = pi * jnp.sum(pos_f * ell(-f)) / n_p  # l(f) on positives
    risk_neg = jnp.sum(unl_f * ell(f)) / n_u - pi * jnp.sum(pos_f * ell(f)) / n_p  # l(-f)
    objective = risk_pos + risk_neg
    if not non_negative:
        return objective
    b = jnp.asarray(beta, dtype)
    violated = jax.lax.stop_gradient(risk_neg) < -b
    value = jnp.where(violated, risk_pos - b, objective)
    descent = jnp.where(violated, -jnp.asarray(gamma, dtype) * risk_neg, objective)
    return jax.lax.stop_gradient(value) + descent - jax.lax.stop_gradient(descent)


@register(
    "cross_model_confident_bce",
    aliases=("confident_peer_cross_entropy", "semi_cbc_loss"),
    family=FAMILY,
    kind="batch",
    formula="mean_{max p~ >= t+} max(p~) CE(z, argmax p~) "
    "+ mean_{min p~ < t-} min(p~) sum_{k != argmax p~} -log(1 - p_k) / C",
    paper="Translation Consistent Semi-supervised Segmentation for 3D Medical Images (2022, arXiv:2203.14523)",
    reference="yyliu01/TraCoCo Code/UnetACDC/Utils/losses.py::semi_cbc_loss (with its `~onehot` fixed)",
    sample=_cbc_sample,
)
def cross_model_confident_bce(
    logits: ArrayLike,
    peer_logits: ArrayLike,
    *,
    threshold: float = 0.6,
    neg_threshold: float = 0.3,
    where: ArrayLike | None = None,
) -> Array:
    r"""Confident binary cross-entropy (CBC) from a peer model: positive and negative learning.

    With the peer's probabilities ``p~ = softmax(peer_logits)`` (no gradient),
    pseudo-label ``y~ = argmax p~``, confidence ``w+ = max p~`` and ``w- = min p~``:

    .. math::
        \ell = \frac{\sum_{i: w^+_i \ge t_+} w^+_i\,\mathrm{CE}(z_i, \tilde y_i)}{|\{i: w^+_i\ge t_+\}|}
        + \frac{\sum_{i: w^-_i < t_-} w^-_i \sum_{k\ne\tilde y_i} -\log(1 - p_{ik})}{C\,|\{i: w^-_i < t_-\}|}

    (``p = softmax(logits)``; each mean is 0 when its set is empty). Each of two
    co-trained models is supervised by the other's confident positions:
    call it twice with the roles swapped. The class axis is last (the
    reference is NCHW). ``log(1 - p)`` is exact (no ``1e-6`` clamp). The
    reference multiplies the negative term by ``~onehot(y~)``, a bitwise NOT of
    an integer tensor (``-1`` off the pseudo-label, ``-2`` on it), so it also
    pushes ``p_{y~}`` down with weight 2, against its own positive term; this
    implementation uses the intended complement mask ``1 - onehot(y~)`` (the
    test derives both by hand).

    Args:
      logits: the model's logits ``[..., C]`` (e.g. ``[B, D, H, W, C]``).
      peer_logits: the peer model's logits, same shape (treated as constants).
      threshold: ``t+``, confidence needed for the positive (pseudo-label) term.
      neg_threshold: ``t-``, the smallest peer probability must be below it for the negative term.
      where: optional boolean mask broadcastable to ``[...]`` (valid positions).

    Returns:
      A scalar.

    Paper: Liu, Wang, Tian, Chen, Carneiro, "Translation Consistent
    Semi-supervised Segmentation for 3D Medical Images", IEEE TMI 2024,
    arXiv:2203.14523.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.zeros((1, 2))
      >>> peer = jnp.log(jnp.array([[0.8, 0.2]]))
      >>> lossjax.losses.cross_model_confident_bce(z, peer).round(4)
      Array(0.6238, dtype=float32)
    """
    fn = "cross_model_confident_bce"
    logits = C.check_array(fn, "logits", logits, min_ndim=1, dtype="float")
    peer_logits = C.check_array(fn, "peer_logits", peer_logits, min_ndim=1, dtype="float")
    C.check_same_shape(fn, ("logits", "peer_logits"), logits, peer_logits)
    check_logits(fn, logits, min_classes=2)
    C.check_in_range(fn, "threshold", threshold, 0.0, 1.0)
    C.check_in_range(fn, "neg_threshold", neg_threshold, 0.0, 1.0)
    dtype = C.compute_dtype(logits, peer_logits)
    mask = C.prepare_where(fn, where, logits.shape[:-1])
    z = C.fill_masked(C.as_compute(logits, dtype), mask)
    peer = jax.lax.stop_gradient(C.fill_masked(C.as_compute(peer_logits, dtype), mask))
    c = z.shape[-1]
    p_peer = jax.nn.softmax(peer, axis=-1)
    w_pos = jnp.max(p_peer, axis=-1)
    w_neg = jnp.min(p_peer, axis=-1)
    pseudo = (jax.lax.broadcasted_iota(jnp.int32, z.shape, z.ndim - 1) == jnp.argmax(peer, axis=-1)[..., None]).astype(
        dtype
    )
    valid = jnp.ones(z.shape[:-1], bool) if mask is None else mask
    pos = valid & (w_pos >= jnp.asarray(threshold, dtype))
    neg = valid & (w_neg < jnp.asarray(neg_threshold, dtype))
    log_p = jax.nn.log_softmax(z, axis=-1)
    ce = -jnp.sum(pseudo * log_p, axis=-1)
    neg_ll = -jnp.sum((1 - pseudo) * _log1m_softmax(z, log_p), axis=-1) / c
    return C.masked_mean(w_pos * ce, pos) + C.masked_mean(w_neg * neg_ll, neg)


# --------------------------------------------------------------------------
# Generalized cross-entropy (the comp-sum family at tau = 1 + q).
# --------------------------------------------------------------------------


@register(
    "generalized_cross_entropy",
    aliases=("gce", "gce_loss"),
    family=FAMILY,
    kind="per_example",
    formula="(1 - p_y^q) / q  (= comp_sum_loss with tau = 1 + q)",
    paper="Generalized Cross Entropy Loss for Training Deep Neural Networks with Noisy Labels (2018, arXiv:1805.07836)",
    reference="HanxunH/Active-Passive-Losses loss.py::GeneralizedCrossEntropy(q=0.7)",
    sample=lambda: _sample({"q": 0.3}, {"q": 1.0}, seed=8),
)
def generalized_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    q: float = 0.7,
    where: ArrayLike | None = None,
) -> Array:
    r"""Generalized cross-entropy (the negative Box-Cox transform of ``p_y``), robust to label noise.

    .. math::
        \ell(z, y) = \frac{1 - p_y^{\,q}}{q}

    ``q -> 0`` is cross-entropy, ``q = 1`` is ``1 - p_y`` (MAE up to a factor 2).
    It is exactly :func:`comp_sum_loss` with ``tau = 1 + q``
    (``(1 - p^{tau-1})/(tau-1)``) and shares its code. A target distribution takes
    the expectation over ``q``-targets. The reference clamps ``p_y >= 1e-7``;
    this one is exact (it differs only below that).

    Args:
      logits: unnormalized scores ``[..., C]``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      q: the Box-Cox exponent in ``[0, 1]`` (0.7 in the paper's experiments).
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Zhang, Sabuncu, "Generalized Cross Entropy Loss for Training Deep
    Neural Networks with Noisy Labels", NeurIPS 2018, arXiv:1805.07836.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.generalized_cross_entropy(jnp.array([[0.0, 0.0]]), jnp.array([0])).round(4)
      Array([0.5492], dtype=float32)
    """
    fn = "generalized_cross_entropy"
    C.check_in_range(fn, "q", q, 0.0, 1.0)
    t = target_probs(fn, logits, labels, where=where)
    return t.expect(comp_sum_phi(t.log_p, 1.0 + q))
