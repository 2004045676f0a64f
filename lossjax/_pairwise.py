"""Similarities and distances for metric learning, and the cross-device gather.

The one shared helper of the metric-learning families: every loss that needs a
similarity or distance matrix calls :func:`pairwise_similarity` /
:func:`pairwise_distance`, which build the ``[N, M]`` matrix once from one
matmul (``|a|^2 + |b|^2 - 2 a b^T``, clamped at 0, with a square root whose
gradient is finite at 0) and never an ``[N, M, D]`` tensor. Half-precision
inputs are computed in float32.

Across devices, losses gather candidates with
:func:`lossjax._parallel.gather_batch` (``all_gather(tiled=True)``, whose
transpose is ``psum_scatter``): when every device computes the loss of the
anchors it owns against the gathered candidates and the losses are summed
(``psum``), the gradient each device gets for its own shard is the gradient of
the single-device loss on the concatenated batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lossjax import _checks as C
from lossjax._parallel import AxisName, axis_offset

__all__ = [
    "METRICS",
    "l2_normalize",
    "pairwise_distance",
    "pairwise_similarity",
    "self_mask",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

#: Metrics understood by :func:`pairwise_similarity` and :func:`pairwise_distance`.
#: ``cosine`` and ``dot`` are similarities (larger = closer); ``euclidean`` and
#: ``squared_euclidean`` are distances (smaller = closer).
METRICS = ("cosine", "dot", "euclidean", "squared_euclidean")

_NORM_EPS = 1e-12  # torch.nn.functional.normalize / optax cosine_similarity floor


def l2_normalize(x: Array, *, epsilon: float = _NORM_EPS) -> Array:
    """``x / max(||x||, epsilon)`` along the last axis; finite gradient at ``x = 0``.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax._pairwise import l2_normalize
      >>> l2_normalize(jnp.array([[3.0, 4.0], [0.0, 0.0]]))
      Array([[0.6, 0.8],
             [0. , 0. ]], dtype=float32)
    """
    norm = C.safe_norm(x, axis=-1, keepdims=True)
    return x / jnp.maximum(norm, jnp.asarray(epsilon, x.dtype))


def _check_pair(fn: str, a: ArrayLike, b: ArrayLike | None) -> tuple[Array, Array, jnp.dtype]:
    a = C.check_array(fn, "a", a, ndim=2, dtype="float")
    if b is None:
        b_arr = a
    else:
        b_arr = C.check_array(fn, "b", b, ndim=2, dtype="float")
        if b_arr.shape[1] != a.shape[1]:
            raise ValueError(
                f"{fn}: `a` and `b` must have the same feature size, got a.shape={a.shape} and b.shape={b_arr.shape}."
            )
    dtype = C.compute_dtype(a, b_arr)
    return C.as_compute(a, dtype), C.as_compute(b_arr, dtype), dtype


def _matmul(a: Array, b: Array) -> Array:
    # a @ b.T in the compute dtype at full precision (no TF32/bf16 passes).
    return jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST)


def pairwise_similarity(
    a: ArrayLike,
    b: ArrayLike | None = None,
    *,
    metric: str = "cosine",
    epsilon: float = _NORM_EPS,
) -> Array:
    r"""The ``[N, M]`` matrix of similarities (``cosine``, ``dot``) or distances between rows.

    .. math::
        \cos(a_i, b_j) = \frac{a_i\cdot b_j}{\max(\|a_i\|,\epsilon)\max(\|b_j\|,\epsilon)},\quad
        \|a_i - b_j\|^2 = \max(0,\ \|a_i\|^2 + \|b_j\|^2 - 2\,a_i\cdot b_j)

    One matmul, never an ``[N, M, D]`` tensor. For ``euclidean`` the square
    root has a zero (finite) gradient where the distance is 0 (identical rows).
    For distances this returns the distance itself (smaller = closer); use
    :func:`pairwise_distance` to make the intent explicit.

    Args:
      a: ``[N, D]`` rows.
      b: ``[M, D]`` rows; ``None`` means ``a`` (the self-similarity matrix).
      metric: one of :data:`METRICS`.
      epsilon: the norm floor of ``cosine`` (``1e-12``, as
        ``torch.nn.functional.normalize``), and the squared distance below
        which ``euclidean`` is 0.

    Returns:
      ``[N, M]`` in the compute dtype (float32 for half-precision inputs).

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax._pairwise import pairwise_similarity
      >>> x = jnp.array([[1.0, 0.0], [0.0, 2.0]])
      >>> pairwise_similarity(x, metric="cosine")
      Array([[1., 0.],
             [0., 1.]], dtype=float32)
      >>> pairwise_similarity(x, metric="euclidean").round(4)
      Array([[0.    , 2.2361],
             [2.2361, 0.    ]], dtype=float32)
    """
    fn = "pairwise_similarity"
    C.check_one_of(fn, "metric", metric, METRICS)
    a, b, _ = _check_pair(fn, a, b)
    if metric == "cosine":
        return _matmul(l2_normalize(a, epsilon=epsilon), l2_normalize(b, epsilon=epsilon))
    ab = _matmul(a, b)
    if metric == "dot":
        return ab
    a2 = jnp.sum(jnp.square(a), axis=-1)
    b2 = jnp.sum(jnp.square(b), axis=-1)
    sq = jnp.maximum(a2[:, None] + b2[None, :] - 2 * ab, jnp.zeros((), ab.dtype))
    if metric == "squared_euclidean":
        return sq
    return C.safe_sqrt(sq, epsilon=epsilon)


def pairwise_distance(
    a: ArrayLike,
    b: ArrayLike | None = None,
    *,
    metric: str = "euclidean",
    epsilon: float = _NORM_EPS,
) -> Array:
    """The ``[N, M]`` distance matrix: ``euclidean``, ``squared_euclidean``, or ``1 - cosine``.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax._pairwise import pairwise_distance
      >>> pairwise_distance(jnp.array([[0.0, 0.0], [3.0, 4.0]]))
      Array([[0., 5.],
             [5., 0.]], dtype=float32)
    """
    fn = "pairwise_distance"
    C.check_one_of(fn, "metric", metric, ("euclidean", "squared_euclidean", "cosine"))
    if metric == "cosine":
        s = pairwise_similarity(a, b, metric="cosine", epsilon=epsilon)
        return 1 - s
    return pairwise_similarity(a, b, metric=metric, epsilon=epsilon)


# --------------------------------------------------------------------------
# Many devices.
# --------------------------------------------------------------------------


def self_mask(n_local: int, n_total: int, axis_name: AxisName) -> Array:
    """``[n_local, n_total]`` boolean: True where a local row meets its own gathered column."""
    offset = axis_offset(axis_name, n_local)
    rows = jax.lax.broadcasted_iota(jnp.int32, (n_local, n_total), 0) + offset
    cols = jax.lax.broadcasted_iota(jnp.int32, (n_local, n_total), 1)
    return rows == cols
