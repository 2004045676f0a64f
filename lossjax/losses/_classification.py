"""Classification losses: cross-entropy and the losses that modify it.

Every loss here takes ``logits [..., C]`` and either integer ``labels [...]`` or
a target distribution ``labels [..., C]`` (decided at trace time), and returns
the per-example loss ``[...]`` unreduced (optax convention).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax.registry import register
from lossjax.testing import Sample

__all__ = [
    "comp_sum_loss",
    "focal_loss",
    "generalized_cross_entropy",
    "label_smoothing_cross_entropy",
    "poly1_cross_entropy",
    "poly1_focal_loss",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "smooth_adversarial_comp_sum_loss",
    "softmax_cross_entropy",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def _multiclass_sample(n: int = 6, c: int = 4, seed: int = 0) -> Sample:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)).astype(np.float32) * 2
    labels = rng.integers(0, c, size=(n,)).astype(np.int32)
    return Sample(args=(logits, labels))


def _binary_sample(n: int = 6, seed: int = 0) -> Sample:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n,)).astype(np.float32) * 2
    labels = rng.integers(0, 2, size=(n,)).astype(np.float32)
    return Sample(args=(logits, labels))


def smoothed_class_targets(fn: str, logits: Array, labels: ArrayLike, label_smoothing, dtype) -> Array:
    """``(1 - a) * targets + a / C``: integer or distribution labels with label smoothing."""
    q = C.class_targets(fn, logits, labels, dtype)
    num_classes = logits.shape[-1]
    a = jnp.asarray(label_smoothing, dtype)
    return q * (1 - a) + a / num_classes


@register(
    "softmax_cross_entropy",
    aliases=("cross_entropy", "ce", "weighted_cross_entropy"),
    family="classification",
    kind="per_example",
    formula="-sum_c w_c q_c log softmax(z)_c,  q = (1 - a) onehot(y) + a / C",
    paper="Cross-Entropy Loss Functions: Theoretical Analysis and Applications (2023, arXiv:2304.07288)",
    reference="optax.softmax_cross_entropy(_with_integer_labels) + optax.smooth_labels; "
    "torch.nn.functional.cross_entropy(weight=, label_smoothing=)",
    sample=_multiclass_sample,
)
def softmax_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    label_smoothing: float = 0.0,
    class_weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Softmax cross-entropy with integer or distribution labels, label smoothing and class weights.

    .. math::
        \ell(z, y) = -\sum_c w_c\, q_c \log \mathrm{softmax}(z)_c,\qquad
        q = (1-a)\,\mathrm{onehot}(y) + a / C

    With ``class_weights`` this is PyTorch's ``cross_entropy(weight=w)`` per
    example; PyTorch's ``"mean"`` reduction then divides by the summed weight
    of the targets, ``sum_i w_{y_i}`` (use :func:`lossjax.masked_sum` for both).

    Args:
      logits: unnormalized scores ``[..., C]``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      label_smoothing: ``a`` in ``[0, 1)``; mixes the targets with the uniform distribution.
      class_weights: optional per-class weights ``[C]``.
      where: optional boolean mask broadcastable to ``[...]``; masked examples get 0.

    Returns:
      Per-example loss ``[...]`` (float32 for half-precision inputs).

    Paper: Mao, Mohri, Zhong, "Cross-Entropy Loss Functions: Theoretical Analysis
    and Applications", ICML 2023, arXiv:2304.07288 (the comp-sum analysis);
    label smoothing: Szegedy et al. 2016, arXiv:1512.00567.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
      >>> lossjax.losses.softmax_cross_entropy(logits, jnp.array([0, 1])).round(4)
      Array([0.2395, 1.0986], dtype=float32)
    """
    fn = "softmax_cross_entropy"
    logits = C.check_array(fn, "logits", logits, min_ndim=1, dtype="float")
    C.check_in_range(fn, "label_smoothing", label_smoothing, 0.0, 1.0, high_inclusive=False)
    dtype = C.compute_dtype(logits)
    mask = C.prepare_where(fn, where, logits.shape[:-1])
    q = smoothed_class_targets(fn, logits, labels, label_smoothing, dtype)
    if class_weights is not None:
        w = C.check_array(fn, "class_weights", class_weights, shape=(logits.shape[-1],), dtype="number")
        q = q * jnp.reshape(w.astype(dtype), (1,) * (q.ndim - 1) + w.shape)
    q = C.fill_masked(q, mask)
    z = C.fill_masked(C.as_compute(logits, dtype), mask)
    loss = -jnp.sum(q * jax.nn.log_softmax(z, axis=-1), axis=-1)
    return C.zero_masked(loss, mask)


@register(
    "sigmoid_binary_cross_entropy",
    aliases=("binary_cross_entropy", "bce"),
    family="classification",
    kind="per_example",
    formula="softplus(z) - y z = -y log sigmoid(z) - (1 - y) log(1 - sigmoid(z))",
    reference="optax.sigmoid_binary_cross_entropy; torch.nn.functional.binary_cross_entropy_with_logits",
    sample=_binary_sample,
)
def sigmoid_binary_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    pos_weight: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Element-wise sigmoid binary cross-entropy on logits.

    .. math::
        \ell(z, y) = -\,p\,y \log\sigma(z) - (1-y)\log(1-\sigma(z))

    computed as ``p*y*softplus(-z) + (1-y)*softplus(z)`` (finite for any ``z``).

    Args:
      logits: scores ``[...]``.
      labels: targets in ``[0, 1]`` of the same shape (float, int or bool).
      pos_weight: ``p``, the weight of the positive term (PyTorch's ``pos_weight``).
      where: optional boolean mask broadcastable to ``logits.shape``.

    Returns:
      Per-element loss, ``logits.shape``.

    Paper: the logistic loss (Cox, 1958); reference: ``optax.sigmoid_binary_cross_entropy``.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.sigmoid_binary_cross_entropy(jnp.array([0.0, 3.0]), jnp.array([1.0, 0.0])).round(4)
      Array([0.6931, 3.0486], dtype=float32)
    """
    fn = "sigmoid_binary_cross_entropy"
    logits = C.check_array(fn, "logits", logits, dtype="float")
    labels = C.check_array(fn, "labels", labels, dtype=None)
    C.check_same_shape(fn, ("logits", "labels"), logits, labels)
    C.check_positive(fn, "pos_weight", pos_weight, allow_zero=True)
    dtype = C.compute_dtype(logits)
    mask = C.prepare_where(fn, where, logits.shape)
    z = C.fill_masked(C.as_compute(logits, dtype), mask)
    y = C.fill_masked(labels.astype(dtype), mask)
    p = jnp.asarray(pos_weight, dtype)
    loss = p * y * jax.nn.softplus(-z) + (1 - y) * jax.nn.softplus(z)
    return C.zero_masked(loss, mask)


# --------------------------------------------------------------------------
# Shared machinery: the probability of the target class, in log space.
# --------------------------------------------------------------------------


class TargetProbs(NamedTuple):
    """The target-class probabilities of a batch, the quantity most classification losses transform.

    Integer labels give ``K = 1`` column (the label's class); a target
    distribution gives ``K = C`` columns (every class), weighted by ``q``. A loss
    that is a function ``f(p_y)`` of the target probability is then
    ``sum_k weights_k f(p_k)``: for integer labels ``f(p_y)``, for a
    distribution its expectation under ``q`` (:meth:`expect`).

    Attributes:
      log_p: ``log p_k``, ``[..., K]``, from ``log_softmax`` (exact for any logits).
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


def _class_weight_column(fn: str, class_weights: ArrayLike, num_classes: int, dtype) -> Array:
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
            w = _class_weight_column(fn, class_weights, num_classes, dtype)
            weights = jnp.sum(onehot * w, axis=-1, keepdims=True) if w.ndim == 1 else weights * w
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
            w = _class_weight_column(fn, class_weights, num_classes, dtype)
            weights = weights * (jnp.reshape(w, (1,) * (weights.ndim - 1) + w.shape) if w.ndim == 1 else w)
    return TargetProbs(log_p, p, one_minus_p, weights, mask, z, targets)


def _power(base: Array, exponent) -> Array:
    """``base ** exponent`` for ``base >= 0`` as ``exp(exponent * log(base))``.

    Finite value and gradient at ``base = 0`` for any ``exponent >= 0``
    (including ``0 < exponent < 1``, whose derivative ``exponent * base ** (exponent-1)``
    is infinite there): the log is floored at the smallest normal number.
    """
    return jnp.exp(jnp.asarray(exponent, base.dtype) * C.safe_log(base))


def _check_alpha(fn: str, alpha, dtype, num_classes: int | None = None):
    """``alpha``: None, a scalar in [0, 1] (binary) / >= 0, or per-class weights ``[C]``."""
    if alpha is None:
        return None
    if isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
        C.check_positive(fn, "alpha", alpha, allow_zero=True)
        return alpha
    a = C.check_array(fn, "alpha", alpha, ndim=(0, 1) if num_classes else 0, dtype="number")
    if a.ndim == 1 and a.shape[0] != num_classes:
        raise ValueError(
            f"{fn}: `alpha` must be a scalar or have shape ({num_classes},) (one per class), got {a.shape}."
        )
    return a.astype(dtype)


# --------------------------------------------------------------------------
# Focal and poly-1.
# --------------------------------------------------------------------------


def _multiclass_sample_soft(n: int = 6, c: int = 4, seed: int = 1) -> Sample:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)).astype(np.float32) * 2
    q = rng.dirichlet(np.ones(c), size=n).astype(np.float32)
    return Sample(args=(logits, q))


def _focal_sample() -> Sample:
    s = _multiclass_sample(seed=2)
    return Sample(args=s.args, kwargs={"gamma": 0.5})


@register(
    "focal_loss",
    aliases=("focal", "softmax_focal_loss"),
    family="classification",
    kind="per_example",
    formula="sum_c q_c alpha_c (1 - p_c)^gamma (-log p_c),  p = softmax(z)",
    paper="Focal Loss for Dense Object Detection (2017, arXiv:1708.02002)",
    reference="closed form (gamma=0: optax.softmax_cross_entropy); torch port of the softmax focal formula",
    sample=_focal_sample,
)
def focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    gamma: float = 2.0,
    alpha: float | ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Softmax focal loss: cross-entropy down-weighted on well-classified examples.

    .. math::
        \ell(z, y) = -\alpha_y\,(1 - p_y)^\gamma \log p_y,\qquad p = \mathrm{softmax}(z)

    With a target distribution ``q`` the loss is its expectation,
    :math:`\sum_c q_c \alpha_c (1-p_c)^\gamma(-\log p_c)`. ``(1 - p)`` is
    computed as the sum of the other classes' probabilities (exact when ``p``
    rounds to 1) and raised to ``gamma`` in log space, so the gradient is finite
    for ``0 < gamma < 1`` at ``p = 1``. ``gamma = 0`` is cross-entropy.

    Args:
      logits: unnormalized scores ``[..., C]``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      gamma: focusing parameter ``>= 0``.
      alpha: None (no weighting), a scalar weight, or per-class weights ``[C]``.
      where: optional boolean mask broadcastable to ``[...]``; masked examples get 0.

    Returns:
      Per-example loss ``[...]``.

    Paper: Lin, Goyal, Girshick, He, Dollár, "Focal Loss for Dense Object
    Detection", ICCV 2017, arXiv:1708.02002.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
      >>> lossjax.losses.focal_loss(logits, jnp.array([0, 1])).round(4)
      Array([0.0107, 0.4883], dtype=float32)
    """
    fn = "focal_loss"
    C.check_positive(fn, "gamma", gamma, allow_zero=True)
    logits = C.check_array(fn, "logits", logits, min_ndim=1, dtype="float")
    a = _check_alpha(fn, alpha, C.compute_dtype(logits), logits.shape[-1])
    t = target_probs(fn, logits, labels, where=where, class_weights=a)
    return t.expect(_power(t.one_minus_p, gamma) * -t.log_p)


def _sigmoid_sample() -> Sample:
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(6, 3)).astype(np.float32) * 2
    labels = rng.integers(0, 2, size=(6, 3)).astype(np.float32)
    return Sample(args=(logits, labels))


def _sigmoid_terms(fn: str, logits: ArrayLike, labels: ArrayLike, where):
    """Checked logits/labels/mask for element-wise binary losses, in the compute dtype."""
    logits = C.check_array(fn, "logits", logits, dtype="float")
    labels = C.check_array(
        fn, "labels", labels, dtype="number" if not jnp.asarray(labels).dtype == jnp.bool_ else "bool"
    )
    C.check_same_shape(fn, ("logits", "labels"), logits, labels)
    dtype = C.compute_dtype(logits)
    mask = C.prepare_where(fn, where, logits.shape)
    z = C.fill_masked(C.as_compute(logits, dtype), mask)
    y = C.fill_masked(labels.astype(dtype), mask)
    return z, y, mask, dtype


@register(
    "sigmoid_focal_loss",
    aliases=("binary_focal_loss",),
    family="classification",
    kind="per_example",
    formula="alpha_t (1 - p_t)^gamma BCE(z, y),  p_t = y sigmoid(z) + (1 - y)(1 - sigmoid(z))",
    paper="Focal Loss for Dense Object Detection (2017, arXiv:1708.02002)",
    reference="optax.sigmoid_focal_loss (alpha=None); torchvision.ops.sigmoid_focal_loss (alpha=0.25)",
    sample=_sigmoid_sample,
)
def sigmoid_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Element-wise sigmoid focal loss (RetinaNet), for binary or multi-label targets.

    .. math::
        \ell(z, y) = \alpha_t (1 - p_t)^\gamma\,\mathrm{BCE}(z, y),\quad
        p_t = y\,\sigma(z) + (1-y)(1-\sigma(z)),\quad \alpha_t = \alpha y + (1-\alpha)(1-y)

    ``1 - p_t = y\,\sigma(-z) + (1-y)\,\sigma(z)`` is a sum of non-negative terms
    (no cancellation) and is raised to ``gamma`` in log space: finite gradients for
    any ``gamma >= 0`` and logits of any size. Soft labels in ``[0, 1]`` are allowed.

    Args:
      logits: scores ``[...]``.
      labels: targets in ``[0, 1]`` with the shape of ``logits``.
      alpha: weight of the positive class in ``[0, 1]`` (0.25 as in RetinaNet and
        torchvision); ``None`` means no weighting (optax's default).
      gamma: focusing parameter ``>= 0``.
      where: optional boolean mask broadcastable to ``logits.shape``.

    Returns:
      Per-element loss with the shape of ``logits``.

    Paper: Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017, arXiv:1708.02002.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.sigmoid_focal_loss(jnp.array([0.0, 2.0]), jnp.array([1.0, 0.0])).round(4)
      Array([0.0433, 1.2376], dtype=float32)
    """
    fn = "sigmoid_focal_loss"
    C.check_positive(fn, "gamma", gamma, allow_zero=True)
    if alpha is not None:
        C.check_in_range(fn, "alpha", alpha, 0.0, 1.0)
    z, y, mask, dtype = _sigmoid_terms(fn, logits, labels, where)
    bce = y * jax.nn.softplus(-z) + (1 - y) * jax.nn.softplus(z)
    one_minus_pt = y * jax.nn.sigmoid(-z) + (1 - y) * jax.nn.sigmoid(z)
    loss = _power(one_minus_pt, gamma) * bce
    if alpha is not None:
        a = jnp.asarray(alpha, dtype)
        loss = (a * y + (1 - a) * (1 - y)) * loss
    return C.zero_masked(loss, mask)


@register(
    "poly1_cross_entropy",
    aliases=("poly1", "poly_loss_cross_entropy"),
    family="classification",
    kind="per_example",
    formula="CE(z, q) + epsilon (1 - sum_c q_c p_c)",
    paper="PolyLoss: A Polynomial Expansion Perspective of Classification Loss Functions (2022, arXiv:2204.12511)",
    reference="optax.poly_loss_cross_entropy",
    sample=_multiclass_sample_soft,
)
def poly1_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    epsilon: float = 2.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Poly-1 cross-entropy: cross-entropy plus ``epsilon`` times the first polynomial term.

    .. math::
        \ell(z, y) = -\log p_y + \epsilon\,(1 - p_y)

    With a target distribution ``q``: :math:`\sum_c q_c(-\log p_c) + \epsilon(1 - \sum_c q_c p_c)`
    (optax's convention; it is the expectation of the integer-label loss).

    Args:
      logits: unnormalized scores ``[..., C]``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      epsilon: coefficient of ``(1 - p_y)``; 2.0 for ImageNet (the paper and optax),
        -1.0 for detection. Values below -1 make the loss non-monotone.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Leng et al., "PolyLoss: A Polynomial Expansion Perspective of
    Classification Loss Functions", ICLR 2022, arXiv:2204.12511.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.poly1_cross_entropy(jnp.array([[2.0, 0.0, 0.0]]), jnp.array([0])).round(4)
      Array([0.6656], dtype=float32)
    """
    fn = "poly1_cross_entropy"
    C.check_array(fn, "epsilon", epsilon, ndim=0, dtype="number")
    t = target_probs(fn, logits, labels, where=where)
    eps = jnp.asarray(epsilon, t.logits.dtype)
    return t.expect(-t.log_p + eps * t.one_minus_p)


@register(
    "poly1_focal_loss",
    aliases=("poly1_focal",),
    family="classification",
    kind="per_example",
    formula="focal_gamma(z, y) + epsilon (1 - p_y)^(gamma + 1)",
    paper="PolyLoss: A Polynomial Expansion Perspective of Classification Loss Functions (2022, arXiv:2204.12511)",
    reference="closed form: focal_loss + epsilon (1 - p_y)^(gamma+1) (paper eq. 4)",
    sample=_focal_sample,
)
def poly1_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    epsilon: float = 1.0,
    gamma: float = 2.0,
    alpha: float | ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Poly-1 focal loss (softmax): the focal loss plus ``epsilon (1 - p_y)^(gamma + 1)``.

    .. math::
        \ell(z, y) = \alpha_y\left[-(1 - p_y)^\gamma \log p_y + \epsilon\,(1 - p_y)^{\gamma+1}\right]

    The alpha weighting multiplies both terms; a target distribution takes the
    expectation over ``q``. ``epsilon = 0`` is :func:`focal_loss`.

    Args:
      logits: unnormalized scores ``[..., C]``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      epsilon: coefficient of the added polynomial term (the paper used -1 for
        detection, 1 as a generic first try).
      gamma: focusing parameter ``>= 0``.
      alpha: None, a scalar, or per-class weights ``[C]``.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Leng et al., "PolyLoss", ICLR 2022, arXiv:2204.12511 (Poly-1 focal, eq. 4).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.poly1_focal_loss(jnp.array([[0.0, 0.0]]), jnp.array([0])).round(4)
      Array([0.2983], dtype=float32)
    """
    fn = "poly1_focal_loss"
    C.check_positive(fn, "gamma", gamma, allow_zero=True)
    C.check_array(fn, "epsilon", epsilon, ndim=0, dtype="number")
    logits = C.check_array(fn, "logits", logits, min_ndim=1, dtype="float")
    a = _check_alpha(fn, alpha, C.compute_dtype(logits), logits.shape[-1])
    t = target_probs(fn, logits, labels, where=where, class_weights=a)
    w = _power(t.one_minus_p, gamma)
    eps = jnp.asarray(epsilon, t.logits.dtype)
    return t.expect(w * (-t.log_p + eps * t.one_minus_p))


@register(
    "label_smoothing_cross_entropy",
    aliases=("label_smoothing_ce", "smoothed_cross_entropy"),
    family="classification",
    kind="per_example",
    formula="-sum_c q_c log p_c,  q = (1 - a) onehot(y) + a / C",
    paper="Rethinking the Inception Architecture for Computer Vision (2015, arXiv:1512.00567)",
    reference="optax.smooth_labels + optax.softmax_cross_entropy; torch cross_entropy(label_smoothing=)",
    sample=_multiclass_sample,
)
def label_smoothing_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    label_smoothing: float = 0.1,
    where: ArrayLike | None = None,
) -> Array:
    r"""Cross-entropy against targets mixed with the uniform distribution (default 0.1).

    .. math::
        \ell(z, y) = -\sum_c q_c \log \mathrm{softmax}(z)_c,\qquad q = (1-a)\,\mathrm{onehot}(y) + a/C

    :func:`softmax_cross_entropy` with ``label_smoothing=0.1`` by default.

    Args:
      logits: unnormalized scores ``[..., C]``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``
        (smoothed too, as ``optax.smooth_labels`` does).
      label_smoothing: ``a`` in ``[0, 1)``.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Szegedy et al., "Rethinking the Inception Architecture for Computer
    Vision", CVPR 2016, arXiv:1512.00567 (section 7).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.label_smoothing_cross_entropy(jnp.array([[2.0, 0.0, 0.0]]), jnp.array([0])).round(4)
      Array([0.3729], dtype=float32)
    """
    return softmax_cross_entropy(logits, labels, label_smoothing=label_smoothing, where=where)


# --------------------------------------------------------------------------
# Comp-sum family (CE, GCE, MAE, sum-exponential) and its adversarial variant.
# --------------------------------------------------------------------------


def _comp_sum_phi(log_p: Array, tau) -> Array:
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


def _comp_sum_sample() -> Sample:
    s = _multiclass_sample(seed=4)
    return Sample(args=s.args, kwargs={"tau": 0.5})


@register(
    "comp_sum_loss",
    aliases=("comp_sum",),
    family="classification",
    kind="per_example",
    formula="Phi^tau(sum_{y' != y} exp(z_y' - z_y)) = (1 - p_y^(tau-1)) / (tau - 1);  tau=1: -log p_y",
    paper="Cross-Entropy Loss Functions: Theoretical Analysis and Applications (2023, arXiv:2304.07288)",
    reference="closed forms: tau=0 sum-exponential, tau=1 optax.softmax_cross_entropy, tau=2 1 - p_y, tau=1+q GCE",
    sample=_comp_sum_sample,
)
def comp_sum_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    tau: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""The comp-sum family: cross-entropy, sum-exponential, GCE and MAE under one ``tau``.

    .. math::
        \ell_\tau(z, y) = \Phi^\tau\Big(\sum_{y'\ne y} e^{z_{y'} - z_y}\Big),\quad
        \Phi^\tau(u) = \begin{cases}\log(1+u) & \tau = 1\\
        \frac{(1+u)^{1-\tau} - 1}{1-\tau} & \tau \ne 1\end{cases}

    Since ``1 + u = 1 / p_y`` this is ``(1 - p_y^{tau-1}) / (tau - 1)``, computed
    in log space from ``log_softmax``: ``tau = 0`` the sum-exponential loss
    ``1/p_y - 1``, ``tau = 1`` cross-entropy, ``tau in (1, 2)`` generalized
    cross-entropy with ``q = tau - 1`` (exactly :func:`generalized_cross_entropy`),
    ``tau = 2`` the MAE-like ``1 - p_y``. A target distribution takes the
    expectation over ``q``. For ``tau < 1`` the loss is unbounded; it saturates
    at ``p_y^(tau-1) = e^80`` instead of overflowing.

    Args:
      logits: unnormalized scores ``[..., C]``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      tau: the family parameter in ``[0, 2]`` (the paper compares 0, 1, 1.5, 2).
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Mao, Mohri, Zhong, "Cross-Entropy Loss Functions: Theoretical Analysis
    and Applications", ICML 2023, arXiv:2304.07288.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[2.0, 0.0, 0.0]])
      >>> [round(float(lossjax.losses.comp_sum_loss(logits, jnp.array([0]), tau=t)[0]), 4) for t in (0.0, 1.0, 2.0)]
      [0.2707, 0.2395, 0.213]
    """
    fn = "comp_sum_loss"
    C.check_in_range(fn, "tau", tau, 0.0, 2.0)
    t = target_probs(fn, logits, labels, where=where)
    return t.expect(_comp_sum_phi(t.log_p, tau))


@register(
    "generalized_cross_entropy",
    aliases=("gce", "gce_loss"),
    family="noisy-labels",
    kind="per_example",
    formula="(1 - p_y^q) / q  (= comp_sum_loss with tau = 1 + q)",
    paper="Generalized Cross Entropy Loss for Training Deep Neural Networks with Noisy Labels (2018, arXiv:1805.07836)",
    reference="HanxunH/Active-Passive-Losses loss.py::GeneralizedCrossEntropy(q=0.7)",
    sample=_multiclass_sample,
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
    return t.expect(_comp_sum_phi(t.log_p, 1.0 + q))


def _adv_sample() -> Sample:
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(6, 4)).astype(np.float32) * 2
    perturbed = logits + rng.normal(size=(6, 4)).astype(np.float32)
    labels = rng.integers(0, 4, size=(6,)).astype(np.int32)
    return Sample(args=(logits, labels, perturbed), diff_argnums=(0, 2), kwargs={"tau": 1.5})


def _safe_sqrt(x: Array) -> Array:
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, jnp.ones((), x.dtype))), jnp.zeros((), x.dtype))


@register(
    "smooth_adversarial_comp_sum_loss",
    aliases=("adv_comp_sum", "adversarial_comp_sum_loss"),
    family="classification",
    kind="per_example",
    formula="comp_sum_tau(z, y) + nu || (z' - z'_y) - (z - z_y) ||_2,  z' = logits at the caller's perturbed input",
    paper="Cross-Entropy Loss Functions: Theoretical Analysis and Applications (2023, arXiv:2304.07288)",
    reference="closed form: comp_sum_loss + nu * norm of the change of the margin vector",
    sample=_adv_sample,
)
def smooth_adversarial_comp_sum_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    perturbed_logits: ArrayLike,
    *,
    tau: float = 1.0,
    nu: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Smooth adversarial comp-sum loss: comp-sum on clean logits plus a smooth margin-change penalty.

    .. math::
        \ell(z, z', y) = \ell_\tau(z, y) + \nu\,\big\|\bar\Delta(z', y) - \bar\Delta(z, y)\big\|_2,
        \qquad \bar\Delta(z, y) = (z_{y'} - z_y)_{y'}

    ``z'`` are the logits at the perturbed input the caller's attack found (the
    paper's supremum over ``\|x' - x\| \le \gamma``, e.g. by PGD on this penalty).
    The norm is zero-safe (finite gradient when ``z' = z``). A target
    distribution takes the expectation over ``q`` of both terms.

    Args:
      logits: clean logits ``[..., C]``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      perturbed_logits: logits of the perturbed inputs, same shape as ``logits``.
      tau: the comp-sum parameter in ``[0, 2]`` (see :func:`comp_sum_loss`).
      nu: weight of the smooth adversarial term ``>= 0``.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Mao, Mohri, Zhong, "Cross-Entropy Loss Functions: Theoretical Analysis
    and Applications", ICML 2023, arXiv:2304.07288 (section 6, smooth adversarial
    comp-sum losses).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.array([[2.0, 0.0, 0.0]])
      >>> lossjax.losses.smooth_adversarial_comp_sum_loss(z, jnp.array([0]), z + jnp.array([[0.0, 1.0, 0.0]])).round(4)
      Array([1.2395], dtype=float32)
    """
    fn = "smooth_adversarial_comp_sum_loss"
    C.check_in_range(fn, "tau", tau, 0.0, 2.0)
    C.check_positive(fn, "nu", nu, allow_zero=True)
    logits = C.check_array(fn, "logits", logits, min_ndim=1, dtype="float")
    perturbed = C.check_array(fn, "perturbed_logits", perturbed_logits, min_ndim=1, dtype="float")
    C.check_same_shape(fn, ("logits", "perturbed_logits"), logits, perturbed)
    t = target_probs(fn, logits, labels, where=where)
    dtype = t.logits.dtype
    zp = C.fill_masked(C.as_compute(perturbed, jnp.promote_types(dtype, C.compute_dtype(perturbed))), t.mask).astype(
        dtype
    )
    d = zp - t.logits  # change of every logit, [..., C]
    # ||d - d_c 1||^2 = sum_j d_j^2 - 2 d_c sum_j d_j + C d_c^2 for each candidate label c.
    num_classes = d.shape[-1]
    s1 = jnp.sum(d, axis=-1, keepdims=True)
    s2 = jnp.sum(jnp.square(d), axis=-1, keepdims=True)
    if t.log_p.shape[-1] == 1:  # integer labels: only the label's column
        d_c = jnp.sum(t.targets * d, axis=-1, keepdims=True)
    else:
        d_c = d
    sq = jnp.maximum(s2 - 2 * d_c * s1 + num_classes * jnp.square(d_c), 0.0)
    penalty = _safe_sqrt(sq)
    return t.expect(_comp_sum_phi(t.log_p, tau) + jnp.asarray(nu, dtype) * penalty)
