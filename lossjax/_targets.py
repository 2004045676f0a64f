"""Target-class probabilities, label smoothing and the comp-sum transform: the softmax core.

Shared by every family whose losses take ``(logits, labels)`` (classification,
imbalance, noisy labels, proxies), so that no family imports another's helpers:

- :func:`check_logits`, :func:`softmax_inputs` (and its short form
  :func:`class_terms`) and :func:`binary_terms`: the checked, mask-filled inputs of
  a multiclass loss (``logits [..., C]`` with integer labels or a target
  distribution) or of an element-wise binary loss, in the compute dtype;
- :func:`split_where`: a ``where`` of the batch shape masks examples; one of the
  logits' full shape masks classes (optax's meaning), for the losses that accept it;
- :func:`labels_in_range`: the rows whose integer label is valid (or masked), for
  losses that gather the target logit instead of building a one-hot;
- :func:`target_probs` turns ``(logits, labels)`` into ``log p_y``, ``p_y`` and an
  exact ``1 - p_y`` (:class:`TargetProbs`); a target distribution always means the
  expectation of the integer-label loss under ``q``;
- :func:`class_weight_column` checks per-class weights ``[C]`` (or a scalar);
- label smoothing is :func:`smoothed_class_targets`; :func:`comp_sum_phi` is the
  comp-sum transform of Mao et al. that both ``comp_sum_loss`` and
  ``generalized_cross_entropy`` use.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from lossjax import _checks as C

__all__ = [
    "LabelLogSoftmax",
    "SoftmaxInputs",
    "TargetProbs",
    "binary_terms",
    "check_logits",
    "class_terms",
    "class_weight_column",
    "comp_sum_phi",
    "integer_cross_entropy",
    "label_log_softmax",
    "labels_in_range",
    "mass_share",
    "smoothed_class_targets",
    "softmax_inputs",
    "split_where",
    "target_probs",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def check_logits(fn: str, logits: ArrayLike, *, min_classes: int = 1, arg: str = "logits") -> Array:
    """Checks multiclass ``logits [..., C]`` (float, rank >= 1, at least ``min_classes`` classes).

    Args:
      fn: the public function's name (for error messages).
      logits: the scores.
      min_classes: the smallest number of classes the loss accepts.
      arg: the argument's name in error messages (``"bin_logits"`` ...).

    Returns:
      ``jnp.asarray(logits)``.

    Example:
      >>> from lossjax._targets import check_logits
      >>> check_logits("f", [[0.0]], min_classes=2)  # doctest: +IGNORE_EXCEPTION_DETAIL
      Traceback (most recent call last):
      ValueError: f: `logits` must have at least 2 classes on its last axis, got shape (1, 1).
    """
    logits = C.check_array(fn, arg, logits, min_ndim=1, dtype="float")
    if logits.shape[-1] < min_classes:
        raise ValueError(
            f"{fn}: `{arg}` must have at least {min_classes} classes on its last axis, got shape {logits.shape}."
        )
    return logits


def split_where(
    fn: str, where: ArrayLike | None, logits_shape: tuple[int, ...], *, classes: bool = False
) -> tuple[Array | None, Array | None]:
    """Splits ``where`` into an example mask (the batch shape) and a class mask (the logits' shape).

    A mask of the logits' full rank masks *classes* (optax's meaning for the
    softmax family): masked classes leave the softmax and the targets; a row
    with no class left is a masked example. Any lower rank is an example mask,
    aligned with the leading axes (:func:`lossjax._checks.prepare_where`).

    Args:
      fn: the public function's name (for error messages).
      where: None or a boolean mask.
      logits_shape: ``[..., C]``.
      classes: whether the loss accepts a class mask (otherwise a full-rank mask is an error).

    Returns:
      ``(example_mask, class_mask)``: the boolean mask of the batch shape (or None) and
      the boolean class mask broadcast to ``logits_shape`` (or None).

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax._targets import split_where
      >>> rows, cls = split_where("f", jnp.array([[True, False], [False, False]]), (2, 2), classes=True)
      >>> rows.tolist(), cls.tolist()
      ([True, False], [[True, False], [False, False]])
    """
    if where is None:
        return None, None
    w = jnp.asarray(where)
    if classes and w.ndim == len(logits_shape) and w.ndim >= 1:
        if w.dtype != jnp.bool_:
            raise TypeError(f"{fn}: `where` must be a boolean mask, got dtype {w.dtype}.")
        if not all(a in (1, b) for a, b in zip(w.shape, logits_shape, strict=True)):
            raise ValueError(
                f"{fn}: a class mask `where` must be broadcastable to the logits' shape {tuple(logits_shape)} "
                f"(each axis equal or 1), got shape {w.shape}."
            )
        cls = jnp.broadcast_to(w, tuple(logits_shape))
        return jnp.any(cls, axis=-1), cls
    return C.prepare_where(fn, where, tuple(logits_shape)[:-1]), None


def labels_in_range(labels: Array, num_classes: int, mask: Array | None) -> Array:
    """True where an integer label lies in ``[0, C)`` or its example is masked (padding may hold anything).

    For losses that gather the target logit (``take_along_axis``) instead of
    building a one-hot with :func:`lossjax._checks.class_targets`: they set the
    loss of the other rows to NaN, as JAX's out-of-bounds gather does.

    Args:
      labels: integer labels ``[...]``.
      num_classes: ``C``.
      mask: the example mask ``[...]`` or None.

    Returns:
      A boolean array of the labels' shape.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax._targets import labels_in_range
      >>> labels_in_range(jnp.array([0, 3, -1]), 3, jnp.array([True, False, True])).tolist()
      [True, True, False]
    """
    ok = (labels >= 0) & (labels < num_classes)
    return ok if mask is None else ok | ~mask


class SoftmaxInputs(NamedTuple):
    """The checked inputs of a softmax-family loss (see :func:`softmax_inputs`).

    Attributes:
      logits: ``[..., C]`` in the compute dtype; masked examples hold 0, masked
        classes ``-inf``.
      targets: the target distribution ``[..., C]`` (one-hot for integer labels, a
        NaN row for an out-of-range label), smoothed if asked, zero on masked
        classes and in masked examples.
      mask: the example mask (batch shape) or None.
      dtype: the compute dtype.
      integer: whether the labels were integer class indices.
      labels: the integer labels ``[...]`` (None for a target distribution), for
        :func:`label_log_softmax`.
      smoothing: the label smoothing ``a`` (0.0 when none was asked).
    """

    logits: Array
    targets: Array
    mask: Array | None
    dtype: jnp.dtype
    integer: bool
    labels: Array | None = None
    smoothing: Any = 0.0


def softmax_inputs(
    fn: str,
    logits: ArrayLike,
    labels: ArrayLike,
    where: ArrayLike | None,
    *,
    label_smoothing=0.0,
    class_where: bool = False,
    min_classes: int = 1,
) -> SoftmaxInputs:
    """Checks and prepares ``(logits, labels, where)`` of a softmax-family loss.

    - ``where`` of the batch shape masks examples (the double-``where``: masked
      examples are filled before any arithmetic). With ``class_where=True`` a
      ``where`` of the logits' full shape masks classes, as in optax: their
      logits become ``-inf`` (zero gradient, whatever they held), target mass on
      them is ignored; an integer label's own class is never masked (optax uses
      its logit too).
    - A logit of ``-inf`` marks a class that cannot be predicted (padding of a
      vocabulary, a masked class): label smoothing spreads its mass ``a`` over
      the other classes only, ``a / #{c : z_c > -inf}`` each (``optax.smooth_labels``
      with the same class mask), so such a logit gives a finite loss.
    - Integer labels outside ``[0, C)`` give a NaN target row (unless masked).

    Args:
      fn: the public function's name (for error messages).
      logits: ``[..., C]`` floating scores.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      where: None, an example mask (batch shape) or, with ``class_where``, a class mask (logits' shape).
      label_smoothing: ``a`` in ``[0, 1)``.
      class_where: whether a full-shape ``where`` (a class mask) is accepted.
      min_classes: the smallest number of classes the loss accepts.

    Returns:
      The :class:`SoftmaxInputs`.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax._targets import softmax_inputs
      >>> s = softmax_inputs("f", jnp.array([[1.0, -jnp.inf, 0.0]]), jnp.array([0]), None, label_smoothing=0.2)
      >>> s.targets.round(2).tolist()
      [[0.9, 0.0, 0.1]]
    """
    logits = check_logits(fn, logits, min_classes=min_classes)
    C.check_in_range(fn, "label_smoothing", label_smoothing, 0.0, 1.0, high_inclusive=False)
    dtype = C.compute_dtype(logits)
    integer = C.has_integer_labels(fn, logits, jnp.asarray(labels))
    mask, classes = split_where(fn, where, logits.shape, classes=class_where)
    z = C.as_compute(logits, dtype)
    q = C.class_targets(fn, logits, labels, dtype, where=mask)
    neg_inf = jnp.asarray(-math.inf, dtype)
    if classes is not None:
        z = jnp.where(classes | (q > 0) if integer else classes, z, neg_inf)
        if not integer:
            q = jnp.where(classes, q, jnp.zeros((), dtype))
    if isinstance(label_smoothing, jax.core.Tracer) or label_smoothing != 0:
        q = _smooth(q, z > neg_inf, label_smoothing, dtype)
    labels = jnp.asarray(labels) if integer else None
    return SoftmaxInputs(C.fill_masked(z, mask), C.fill_masked(q, mask), mask, dtype, integer, labels, label_smoothing)


class LabelLogSoftmax(NamedTuple):
    """``log softmax(z)`` at integer labels, from row reductions only (see :func:`label_log_softmax`).

    Attributes:
      log_norm: ``log sum_c exp(z_c - m)``, ``[...]``, with ``m`` the row maximum.
      target: ``z_y - m``, ``[...]``: ``log p_y = target - log_norm``.
      others: ``sum_{c != y} exp(z_c - m)``, ``[...]``: the mass of the other classes
        (``log_norm = log(others + exp(target))``).
      shifted: ``z - m``, ``[..., C]``, an expression for further fused row sums
        (XLA recomputes it inside each reduction; nothing is gathered from it).
      label_mask: ``[..., C]`` boolean, True at the label's class.
      ok: ``[...]`` False where an unmasked label lies outside ``[0, C)``.
    """

    log_norm: Array
    target: Array
    others: Array
    shifted: Array
    label_mask: Array
    ok: Array

    @property
    def log_p(self) -> Array:
        """``log p_y``, ``[...]`` (NaN for an out-of-range label)."""
        return jnp.where(self.ok, self.target - self.log_norm, jnp.asarray(jnp.nan, self.target.dtype))

    @property
    def one_minus_p(self) -> Array:
        """``1 - p_y = others / (others + exp(target))``, ``[...]``: no cancellation in value or gradient."""
        nan = jnp.asarray(jnp.nan, self.target.dtype)
        return jnp.where(self.ok, mass_share(self.others, jnp.exp(self.target)), nan)


@jax.custom_jvp
def mass_share(a: Array, b: Array) -> Array:
    """``a / (a + b)`` for ``a, b >= 0``, with the derivative ``(b da - a db) / (a + b)^2``.

    Autodiff of the quotient sends ``g / n`` and ``-g a / n^2`` to ``a`` (``n = a + b``), two
    terms that cancel when ``b << a``: next to another cotangent of ``a`` (the normalizer's in
    NFL + RCE at a confidently wrong row) float32 lost 3 digits of the gradient.

    Example:
      >>> import jax
      >>> from lossjax._targets import mass_share
      >>> float(mass_share(3.0, 1.0)), float(jax.grad(mass_share)(3.0, 1.0))
      (0.75, 0.0625)
    """
    return a / (a + b)


@mass_share.defjvp
def _mass_share_jvp(primals, tangents):
    (a, b), (da, db) = primals, tangents
    n = a + b
    out = a / n
    return out, ((b / n) * da - out * db) / n


def label_log_softmax(s: SoftmaxInputs) -> LabelLogSoftmax:
    """The pieces of ``log softmax(z)_y`` for integer labels, without a ``[..., C]`` intermediate to store.

    ``log p_y = (z_y - m) - log sum_c exp(z_c - m)`` with ``m`` the row maximum:
    the target logit is gathered from ``z`` itself and ``m`` subtracted after the
    gather. Gathering from ``z - m`` or from ``log_softmax(z)`` (or summing
    ``q * log_softmax``) instead makes XLA store the ``[..., C]`` array for the
    backward pass: 2 arrays of temporaries and 2.8x optax's time for
    ``softmax_cross_entropy`` on CPU at ``N = 4096, C = 1000`` before. Here the
    forward is row reductions and the backward one fused elementwise pass.

    Args:
      s: the :class:`SoftmaxInputs` of integer labels.

    Returns:
      The :class:`LabelLogSoftmax`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from lossjax._targets import label_log_softmax, softmax_inputs
      >>> z = jnp.array([[2.0, 0.5, -1.0]])
      >>> t = label_log_softmax(softmax_inputs("f", z, jnp.array([1]), None))
      >>> bool(jnp.allclose(t.target - t.log_norm, jax.nn.log_softmax(z)[:, 1]))
      True
    """
    z, labels = s.logits, s.labels
    num_classes = z.shape[-1]
    m = jnp.max(z, axis=-1)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, jnp.zeros((), m.dtype)))  # an all -inf row
    shifted = z - m[..., None]
    index = jnp.clip(labels, 0, num_classes - 1)
    target = jnp.take_along_axis(z, index[..., None], axis=-1)[..., 0] - m
    label_mask = jax.lax.broadcasted_iota(index.dtype, z.shape, z.ndim - 1) == index[..., None]
    # One pass over the classes: the label's logit enters as -inf, so the sum is the other classes' mass and
    # the normalizer adds the label's term back. (A second, label-masked sum beside sum(exp(z - m)) made XLA
    # store exp(z - m) for the backward pass; `where` on the exponent instead of on exp fuses.)
    others = jnp.sum(jnp.exp(jnp.where(label_mask, jnp.asarray(-jnp.inf, z.dtype), shifted)), axis=-1)
    log_norm = jnp.log(others + jnp.exp(target))
    ok = labels_in_range(labels, num_classes, s.mask)
    return LabelLogSoftmax(log_norm, target, others, shifted, label_mask, ok)


def integer_cross_entropy(s: SoftmaxInputs, class_weights: Array | None = None) -> Array:
    """``-sum_c w_c q_c log softmax(z)_c`` for integer labels (``q`` one-hot, smoothed if asked), fused.

    With smoothing ``a`` over the ``K`` possible classes (finite logit):
    ``(1 - a) w_y (L - t_y) + a / K sum_{c possible} w_c (L - t_c)`` with
    ``L = log_norm`` and ``t = z - m`` (:func:`label_log_softmax`): row sums only.

    Args:
      s: the :class:`SoftmaxInputs` of integer labels.
      class_weights: optional ``[C]`` weights in the compute dtype.

    Returns:
      The per-example loss ``[...]`` (NaN for an out-of-range unmasked label;
      masked examples are not zeroed here).

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from lossjax._targets import integer_cross_entropy, softmax_inputs
      >>> z, y = jnp.array([[2.0, 0.5, -1.0]]), jnp.array([1])
      >>> bool(jnp.allclose(integer_cross_entropy(softmax_inputs("f", z, y, None)),
      ...                   optax.softmax_cross_entropy_with_integer_labels(z, y)))
      True
    """
    t = label_log_softmax(s)
    dtype = s.dtype
    zero = jnp.zeros((), dtype)
    w = None if class_weights is None else jnp.reshape(class_weights, (1,) * (s.logits.ndim - 1) + (-1,))
    loss = t.log_norm - t.target
    if w is not None:
        loss = loss * jnp.sum(jnp.where(t.label_mask, w, zero), axis=-1)
    a = s.smoothing
    if isinstance(a, jax.core.Tracer) or a != 0:
        a = jnp.asarray(a, dtype)
        possible = s.logits > -jnp.inf
        count = jnp.maximum(jnp.sum(possible, axis=-1).astype(dtype), jnp.ones((), dtype))
        per_class = t.log_norm[..., None] - t.shifted
        if w is not None:
            per_class = per_class * w
        uniform = jnp.sum(jnp.where(possible, per_class, zero), axis=-1) / count
        loss = (1 - a) * loss + a * uniform
    return jnp.where(t.ok, loss, jnp.asarray(jnp.nan, dtype))


def class_terms(
    fn: str,
    logits: ArrayLike,
    labels: ArrayLike,
    where: ArrayLike | None,
    *,
    min_classes: int = 1,
    class_where: bool = False,
) -> tuple[Array, Array, Array | None, jnp.dtype]:
    """The checked inputs of a multiclass loss: ``(z, q, mask, dtype)`` (:func:`softmax_inputs` without smoothing).

    Args:
      fn: the public function's name (for error messages).
      logits: ``[..., C]`` floating scores.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      where: optional boolean mask broadcastable to ``[...]`` (or a class mask, see ``class_where``).
      min_classes: the smallest number of classes the loss accepts.
      class_where: whether a full-shape ``where`` (a class mask) is accepted.

    Returns:
      ``z`` the logits and ``q`` the target distribution (one-hot for integer
      labels), both ``[..., C]`` in the compute ``dtype`` with masked examples
      filled (the first half of the double-``where``), and the boolean ``mask``
      (or None).

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax._targets import class_terms
      >>> z, q, mask, dtype = class_terms("f", jnp.zeros((2, 3)), jnp.array([2, 0]), None)
      >>> q
      Array([[0., 0., 1.],
             [1., 0., 0.]], dtype=float32)
    """
    s = softmax_inputs(fn, logits, labels, where, class_where=class_where, min_classes=min_classes)
    return s.logits, s.targets, s.mask, s.dtype


def binary_terms(
    fn: str, logits: ArrayLike, labels: ArrayLike, where: ArrayLike | None, *, logits_name: str = "logits"
) -> tuple[Array, Array, Array | None, jnp.dtype]:
    """The checked inputs of an element-wise binary loss: ``(z, y, mask, dtype)``.

    Args:
      fn: the public function's name (for error messages).
      logits: floating scores ``[...]`` (probabilities for a loss on ``probs``).
      labels: numeric or boolean targets with the shape of ``logits``.
      where: optional boolean mask broadcastable to ``logits.shape``.
      logits_name: the name of the first argument in error messages (``"probs"``).

    Returns:
      ``z`` and ``y`` in the compute ``dtype`` with masked entries filled, and the
      boolean ``mask`` (or None).

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax._targets import binary_terms
      >>> binary_terms("f", jnp.zeros(2), jnp.array([True, False]), None)[1]
      Array([1., 0.], dtype=float32)
    """
    logits = C.check_array(fn, logits_name, logits, dtype="float")
    labels = C.check_array(fn, "labels", labels)
    if not (jnp.issubdtype(labels.dtype, jnp.number) or labels.dtype == jnp.bool_):
        raise TypeError(f"{fn}: `labels` must have a numeric or bool dtype, got {labels.dtype}.")
    C.check_same_shape(fn, (logits_name, "labels"), logits, labels)
    dtype = C.compute_dtype(logits)
    mask = C.prepare_where(fn, where, logits.shape)
    z = C.fill_masked(C.as_compute(logits, dtype), mask)
    y = C.fill_masked(labels.astype(dtype), mask)
    return z, y, mask, dtype


def smoothed_class_targets(
    fn: str, logits: Array, labels: ArrayLike, label_smoothing, dtype, *, where: Array | None = None
) -> Array:
    """``(1 - a) * targets + a / K`` over the ``K`` classes whose logit is not ``-inf`` (label smoothing).

    Args:
      fn: the public function's name (for error messages).
      logits: ``[..., C]``: its shape, and which classes can be predicted (``z > -inf``;
        all of them for finite logits, so ``K = C``).
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      label_smoothing: ``a`` (checked by the caller).
      dtype: the compute dtype.
      where: the example mask (rows that may hold any label) or None.

    Returns:
      The smoothed target distribution ``[..., C]``.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax._targets import smoothed_class_targets
      >>> smoothed_class_targets("f", jnp.zeros((1, 4)), jnp.array([0]), 0.2, jnp.float32)
      Array([[0.85, 0.05, 0.05, 0.05]], dtype=float32)
    """
    q = C.class_targets(fn, logits, labels, dtype, where=where)
    return _smooth(q, jnp.asarray(logits) > -math.inf, label_smoothing, dtype)


def _smooth(q: Array, possible: Array, label_smoothing, dtype) -> Array:
    """``(1 - a) q + a / K`` on the ``K`` possible classes (0 on the impossible ones)."""
    a = jnp.asarray(label_smoothing, dtype)
    count = jnp.maximum(jnp.sum(possible, axis=-1, keepdims=True).astype(dtype), jnp.ones((), dtype))
    return q * (1 - a) + jnp.where(possible, a / count, jnp.zeros((), dtype))


class TargetProbs(NamedTuple):
    """The target-class probabilities of a batch, the quantity most classification losses transform.

    Integer labels give ``K = 1`` column (the label's class); a target
    distribution gives ``K = C`` columns (every class), weighted by ``q``. A loss
    that is a function ``f(p_y)`` of the target probability is then
    ``sum_k weights_k f(p_k)``: for integer labels ``f(p_y)``, for a
    distribution its expectation under ``q`` (:meth:`expect`).

    Attributes:
      log_p: ``log p_k``, ``[..., K]``: ``log_softmax``, or ``log1p(-(1 - p_k))`` when
        ``p_k > 1/2`` (accurate to the last bit for confident predictions); 0 where
        ``weights`` is 0 (a class with logit ``-inf`` and no target mass stays finite).
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
        """``sum_k weights_k values_k`` (``0 * anything = 0``) with masked examples set to exactly 0."""
        zero = jnp.zeros((), values.dtype)
        return C.zero_masked(jnp.sum(jnp.where(self.weights != 0, self.weights * values, zero), axis=-1), self.mask)


def class_weight_column(fn: str, class_weights: ArrayLike, num_classes: int, dtype) -> Array:
    """Checks ``class_weights``: per-class weights ``[C]`` or one scalar weight (a Python one must be >= 0).

    Args:
      fn: the public function's name (for error messages).
      class_weights: a scalar or an array ``[C]``.
      num_classes: ``C``.
      dtype: the compute dtype.

    Returns:
      The weights as an array of ``dtype``, shape ``()`` or ``(C,)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax._targets import class_weight_column
      >>> class_weight_column("f", [1, 2, 3], 3, jnp.float32)
      Array([1., 2., 3.], dtype=float32)
    """
    if isinstance(class_weights, (int, float)) and not isinstance(class_weights, bool):
        C.check_positive(fn, "class_weights", class_weights, allow_zero=True)
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
    class_where: bool = False,
) -> TargetProbs:
    """Checks ``logits``/``labels``/``where`` and returns the :class:`TargetProbs` of the batch.

    The one place that turns ``(logits, labels)`` into target probabilities for
    focal, poly-1, comp-sum, GCE, encouraging and the other ``f(p_y)`` losses.
    A class whose logit is ``-inf`` has ``p = 0`` and, when it carries no
    target mass, contributes exactly 0 (never ``0 * inf``) with a zero gradient.

    Args:
      fn: the public function's name (for error messages).
      logits: ``[..., C]`` floating scores.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      where: optional boolean mask broadcastable to ``[...]`` (or a class mask, see ``class_where``).
      class_weights: optional per-class weights ``[C]`` (or a scalar) multiplied into ``weights``.
      label_smoothing: mixes the targets with the uniform distribution (the
        distribution path is then used).
      min_classes: the smallest number of classes the loss accepts.
      class_where: accept a ``where`` of the logits' full shape (masks classes, as in optax).

    Returns:
      The :class:`TargetProbs` of the batch (``K = 1`` column for integer labels
      without smoothing, ``K = C`` otherwise).

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax._targets import target_probs
      >>> t = target_probs("f", jnp.array([[30.0, 0.0, 0.0]]), jnp.array([0]))
      >>> float(t.one_minus_p[0, 0]) > 0  # exact, where 1 - softmax rounds to 0
      True
    """
    s = softmax_inputs(
        fn,
        logits,
        labels,
        where,
        label_smoothing=label_smoothing,
        class_where=class_where,
        min_classes=min_classes,
    )
    z, q, mask, dtype = s.logits, s.targets, s.mask, s.dtype
    num_classes = z.shape[-1]
    zero = jnp.zeros((), dtype)
    smoothing = isinstance(label_smoothing, jax.core.Tracer) or label_smoothing != 0
    if s.integer and not smoothing:
        # Row reductions only (label_log_softmax): nothing [..., C] is stored for the backward pass, and
        # 1 - p_y is the other classes' share of the mass, exact in value and gradient.
        t = label_log_softmax(s)
        log_p = t.log_p[..., None]
        p = jnp.exp(log_p)
        one_minus_p = t.one_minus_p[..., None]
        weights = jnp.ones_like(log_p)
        if class_weights is not None:
            w = class_weight_column(fn, class_weights, num_classes, dtype)
            if w.ndim == 1:
                weights = jnp.sum(jnp.where(t.label_mask, jnp.reshape(w, (1,) * (z.ndim - 1) + w.shape), zero), -1)
                weights = weights[..., None]
            else:
                weights = weights * w
    else:
        log_probs = jax.nn.log_softmax(z, axis=-1)
        probs = jnp.exp(log_probs)
        log_p, p = log_probs, probs
        # 1 - p_c is exact for every class but the most probable one (p_c <= 1/2
        # there); for the argmax it is the sum of the other probabilities.
        is_max = jax.nn.one_hot(jnp.argmax(z, axis=-1), num_classes, dtype=jnp.bool_)
        rest = jnp.sum(jnp.where(is_max, zero, probs), axis=-1, keepdims=True)
        one_minus_p = jnp.where(is_max, rest, 1 - probs)
        # The value of 1 - p is the accurate sum above; its gradient is that of -p (the same function).
        # Differentiating the sum instead sends a cotangent of size f'(1 - p) to every other class, which
        # the softmax backward cancels against itself: for a confidently wrong row (1 - p = 1, focal
        # f' = gamma (-log p) ~ 1e4) float32 lost 3 digits of the gradient of the largest logit.
        one_minus_p = jax.lax.stop_gradient(one_minus_p) - (p - jax.lax.stop_gradient(p))
        weights = q
        if class_weights is not None:
            w = class_weight_column(fn, class_weights, num_classes, dtype)
            weights = weights * (jnp.reshape(w, (1,) * (weights.ndim - 1) + w.shape) if w.ndim == 1 else w)
    # log p = log1p(-(1 - p)) is the accurate form when p > 1/2 (log_softmax rounds
    # log p to 0 once 1 - p < eps/2); double where keeps the other branch's gradient finite.
    confident = one_minus_p < 0.5
    log_p = jnp.where(confident, jnp.log1p(-jnp.where(confident, one_minus_p, zero)), log_p)
    # Entries with no weight (a -inf logit of a non-target class) are multiplied by 0:
    # keep them finite so that neither the value nor the gradient sees 0 * inf.
    log_p = jnp.where(weights != 0, log_p, zero)
    return TargetProbs(log_p, p, one_minus_p, weights, mask, z, q)


def comp_sum_phi(log_p: Array, tau) -> Array:
    r"""``Phi^tau(1/p - 1) = (1 - p^(tau - 1)) / (tau - 1)``, ``-log p`` at ``tau = 1``, in log space.

    ``-expm1(s log p) / s`` with ``s = tau - 1`` is accurate for ``s`` near 0
    and for ``p`` near 1; the ``s = 0`` limit is selected with a double
    ``where``. For ``tau < 1`` the loss grows like ``p^(tau-1)``: its exponent
    is capped at 80 so that it saturates instead of overflowing.

    Args:
      log_p: ``log p`` of the target class(es), any shape.
      tau: the comp-sum index (``1 + q`` for generalized cross-entropy).

    Returns:
      ``Phi^tau`` element-wise, the shape of ``log_p``.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax._targets import comp_sum_phi
      >>> comp_sum_phi(jnp.log(jnp.array([0.5])), 2.0)  # 1 - p
      Array([0.5], dtype=float32)
    """
    s = jnp.asarray(tau, log_p.dtype) - 1
    is_ce = s == 0
    s_safe = jnp.where(is_ce, jnp.ones((), log_p.dtype), s)
    e = jnp.minimum(s_safe * log_p, 80.0)
    return jnp.where(is_ce, -log_p, -jnp.expm1(e) / s_safe)
