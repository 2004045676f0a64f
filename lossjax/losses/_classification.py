"""Classification losses: cross-entropy and the losses that modify it.

Every loss here takes ``logits [..., C]`` and either integer ``labels [...]`` or
a target distribution ``labels [..., C]`` (decided at trace time), and returns
the per-example loss ``[...]`` unreduced (optax convention).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax.registry import register
from lossjax.testing import Sample

__all__ = [
    "sigmoid_binary_cross_entropy",
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
