"""Target-class probabilities, label smoothing and the comp-sum transform: the softmax core.

Shared by every family whose losses are a function of the target class's
probability (classification, imbalance, noisy labels, proxies):
:func:`target_probs` turns ``(logits, labels)`` into ``log p_y``, ``p_y`` and an
exact ``1 - p_y`` (:class:`TargetProbs`); a target distribution always means the
expectation of the integer-label loss under ``q``. Label smoothing is
:func:`smoothed_class_targets`; :func:`comp_sum_phi` is the comp-sum transform
of Mao et al. that both ``comp_sum_loss`` and ``generalized_cross_entropy`` use.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from lossjax import _checks as C

__all__ = ["TargetProbs", "class_weight_column", "comp_sum_phi", "smoothed_class_targets", "target_probs"]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def smoothed_class_targets(fn: str, logits: Array, labels: ArrayLike, label_smoothing, dtype) -> Array:
    """``(1 - a) * targets + a / C``: integer or distribution labels with label smoothing."""
    q = C.class_targets(fn, logits, labels, dtype)
    num_classes = logits.shape[-1]
    a = jnp.asarray(label_smoothing, dtype)
    return q * (1 - a) + a / num_classes


class TargetProbs(NamedTuple):
    """The target-class probabilities of a batch, the quantity most classification losses transform.

    Integer labels give ``K = 1`` column (the label's class); a target
    distribution gives ``K = C`` columns (every class), weighted by ``q``. A loss
    that is a function ``f(p_y)`` of the target probability is then
    ``sum_k weights_k f(p_k)``: for integer labels ``f(p_y)``, for a
    distribution its expectation under ``q`` (:meth:`expect`).

    Attributes:
      log_p: ``log p_k``, ``[..., K]``: ``log_softmax``, or ``log1p(-(1 - p_k))`` when
        ``p_k > 1/2`` (accurate to the last bit for confident predictions).
      p: ``p_k``, ``[..., K]``.
      one_minus_p: ``1 - p_k`` computed without cancellation (sum of the other
        classes' probabilities), ``[..., K]``: exact even when ``p_k`` rounds to 1.
      weights: ``[..., K]``: 1 (integer labels) or ``q`` (distribution), times
        the optional class weights.
      mask: the boolean batch mask or None.
      logits: the (masked-filled) logits in the compute dtype, ``[..., C]``.
      targets: the target distribution ``[..., C]`` (one-hot for integer labels).
    """

    log_p: Array
    p: Array
    one_minus_p: Array
    weights: Array
    mask: Array | None
    logits: Array
    targets: Array

    def expect(self, values: Array) -> Array:
        """``sum_k weights_k values_k`` with masked examples set to exactly 0."""
        return C.zero_masked(jnp.sum(self.weights * values, axis=-1), self.mask)

    def log_one_minus_p(self) -> Array:
        """``log(1 - p_k)``, finite (floored at the smallest normal number)."""
        return C.safe_log(self.one_minus_p)


def class_weight_column(fn: str, class_weights: ArrayLike, num_classes: int, dtype) -> Array:
    w = C.check_array(fn, "class_weights", class_weights, ndim=(0, 1), dtype="number")
    if w.ndim == 1 and w.shape[0] != num_classes:
        raise ValueError(
            f"{fn}: `class_weights` must have shape ({num_classes},) (one per class) or be a scalar, got {w.shape}."
        )
    return w.astype(dtype)


def target_probs(
    fn: str,
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    min_classes: int = 1,
) -> TargetProbs:
    """Checks ``logits``/``labels``/``where`` and returns the :class:`TargetProbs` of the batch.

    The one place that turns ``(logits, labels)`` into target probabilities for
    focal, poly-1, comp-sum, GCE, encouraging and the other ``f(p_y)`` losses.

    Args:
      fn: the public function's name (for error messages).
      logits: ``[..., C]`` floating scores.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      where: optional boolean mask broadcastable to ``[...]``.
      class_weights: optional per-class weights ``[C]`` (or a scalar) multiplied into ``weights``.
      label_smoothing: mixes the targets with the uniform distribution (the
        distribution path is then used).
      min_classes: the smallest number of classes the loss accepts.
    """
    logits = C.check_array(fn, "logits", logits, min_ndim=1, dtype="float")
    num_classes = logits.shape[-1]
    if num_classes < min_classes:
        raise ValueError(
            f"{fn}: `logits` must have at least {min_classes} classes on its last axis, got shape {logits.shape}."
        )
    C.check_in_range(fn, "label_smoothing", label_smoothing, 0.0, 1.0, high_inclusive=False)
    dtype = C.compute_dtype(logits)
    mask = C.prepare_where(fn, where, logits.shape[:-1])
    integer = C.has_integer_labels(fn, logits, jnp.asarray(labels))
    smoothing = isinstance(label_smoothing, jax.core.Tracer) or label_smoothing != 0
    z = C.fill_masked(C.as_compute(logits, dtype), mask)
    log_probs = jax.nn.log_softmax(z, axis=-1)
    probs = jnp.exp(log_probs)
    if integer and not smoothing:
        onehot = C.class_targets(fn, logits, labels, dtype)
        log_p = jnp.sum(onehot * log_probs, axis=-1, keepdims=True)
        p = jnp.exp(log_p)
        one_minus_p = jnp.sum(jnp.where(onehot > 0, jnp.zeros((), dtype), probs), axis=-1, keepdims=True)
        weights = jnp.ones_like(log_p)
        if class_weights is not None:
            w = class_weight_column(fn, class_weights, num_classes, dtype)
            if w.ndim == 1:
                weights = jnp.sum(onehot * jnp.reshape(w, (1,) * (onehot.ndim - 1) + w.shape), axis=-1, keepdims=True)
            else:
                weights = weights * w
        targets = onehot
    else:
        q = smoothed_class_targets(fn, logits, labels, label_smoothing, dtype)
        targets = C.fill_masked(q, mask)
        log_p, p = log_probs, probs
        # 1 - p_c is exact for every class but the most probable one (p_c <= 1/2
        # there); for the argmax it is the sum of the other probabilities.
        is_max = jax.nn.one_hot(jnp.argmax(z, axis=-1), num_classes, dtype=jnp.bool_)
        rest = jnp.sum(jnp.where(is_max, jnp.zeros((), dtype), probs), axis=-1, keepdims=True)
        one_minus_p = jnp.where(is_max, rest, 1 - probs)
        weights = targets
        if class_weights is not None:
            w = class_weight_column(fn, class_weights, num_classes, dtype)
            weights = weights * (jnp.reshape(w, (1,) * (weights.ndim - 1) + w.shape) if w.ndim == 1 else w)
    # log p = log1p(-(1 - p)) is the accurate form when p > 1/2 (log_softmax rounds
    # log p to 0 once 1 - p < eps/2); double where keeps the other branch's gradient finite.
    confident = one_minus_p < 0.5
    log_p = jnp.where(confident, jnp.log1p(-jnp.where(confident, one_minus_p, jnp.zeros((), dtype))), log_p)
    return TargetProbs(log_p, p, one_minus_p, weights, mask, z, targets)


def comp_sum_phi(log_p: Array, tau) -> Array:
    r"""``Phi^tau(1/p - 1) = (1 - p^(tau - 1)) / (tau - 1)``, ``-log p`` at ``tau = 1``, in log space.

    ``-expm1(s log p) / s`` with ``s = tau - 1`` is accurate for ``s`` near 0
    and for ``p`` near 1; the ``s = 0`` limit is selected with a double
    ``where``. For ``tau < 1`` the loss grows like ``p^(tau-1)``: its exponent
    is capped at 80 so that it saturates instead of overflowing.
    """
    s = jnp.asarray(tau, log_p.dtype) - 1
    is_ce = s == 0
    s_safe = jnp.where(is_ce, jnp.ones((), log_p.dtype), s)
    e = jnp.minimum(s_safe * log_p, 80.0)
    return jnp.where(is_ce, -log_p, -jnp.expm1(e) / s_safe)
