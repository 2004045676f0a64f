"""Similarities and distances for metric learning, and the cross-device self mask.

The one shared helper of the metric-learning families (metric, proxies,
margins, selfsup): every loss that needs a similarity or distance matrix calls
:func:`pairwise_similarity` / :func:`pairwise_distance`, which build the
``[N, M]`` matrix once from one matmul (``|a|^2 + |b|^2 - 2 a b^T``, clamped
at 0, with a square root whose gradient is finite at 0) and never an
``[N, M, D]`` tensor. Half-precision inputs are computed in float32.

Across devices, losses gather candidates with
:func:`lossjax._parallel.gather_batch` (``all_gather(tiled=True)``, whose
transpose is ``psum_scatter``): when every device computes the loss of the
anchors it owns against the gathered candidates and the losses are summed
(``psum``), the gradient each device gets for its own shard is the gradient of
the single-device loss on the concatenated batch. :func:`self_mask` marks, in
such a local-rows x gathered-columns matrix, where a row meets itself, and
:func:`masked_logsumexp` reduces a masked similarity matrix (over rows,
columns or all of it, across devices when the reduced axis is sharded).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lossjax import _checks as C
from lossjax._parallel import AxisName, axis_offset, psum

__all__ = [
    "DISTANCES",
    "l2_normalize",
    "masked_logsumexp",
    "pairwise_distance",
    "pairwise_similarity",
    "self_mask",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

#: The geometries (``distance=``) understood by :func:`pairwise_similarity` and
#: :func:`pairwise_distance`. ``cosine`` and ``dot`` are similarities (larger =
#: closer); ``euclidean`` and ``squared_euclidean`` are distances (smaller = closer).
DISTANCES = ("cosine", "dot", "euclidean", "squared_euclidean")

_NORM_EPS = 1e-12  # torch.nn.functional.normalize / optax cosine_similarity floor


def l2_normalize(x: ArrayLike, *, epsilon: float = _NORM_EPS) -> Array:
    r"""Scales rows to unit L2 norm along the last axis, with a finite gradient at ``x = 0``.

    .. math:: \hat x = \frac{x}{\max(\|x\|_2, \epsilon)}

    Args:
      x: an array ``[..., D]`` (float).
      epsilon: the norm floor (``1e-12``, as ``torch.nn.functional.normalize``).

    Returns:
      ``x`` divided by its floored norm, the shape and dtype of ``x``; zero rows stay 0.

    Paper: none (a helper); the convention of ``torch.nn.functional.normalize``.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax._pairwise import l2_normalize
      >>> l2_normalize(jnp.array([[3.0, 4.0], [0.0, 0.0]]))
      Array([[0.6, 0.8],
             [0. , 0. ]], dtype=float32)
    """
    x = jnp.asarray(x)
    norm = C.safe_norm(x, axis=-1, keepdims=True)
    return x / jnp.maximum(norm, jnp.asarray(epsilon, x.dtype))


def _check_pair(fn: str, a: ArrayLike, b: ArrayLike | None) -> tuple[Array, Array]:
    a = C.check_array(fn, "embeddings_a", a, ndim=2, dtype="float")
    if b is None:
        b_arr = a
    else:
        b_arr = C.check_array(fn, "embeddings_b", b, ndim=2, dtype="float")
        if b_arr.shape[1] != a.shape[1]:
            raise ValueError(
                f"{fn}: `embeddings_a` and `embeddings_b` must have the same feature size, "
                f"got embeddings_a.shape={a.shape} and embeddings_b.shape={b_arr.shape}."
            )
    dtype = C.compute_dtype(a, b_arr)
    return C.as_compute(a, dtype), C.as_compute(b_arr, dtype)


def _matmul(a: Array, b: Array) -> Array:
    # a @ b.T in the compute dtype at full precision (no TF32/bf16 passes).
    return jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST)


def pairwise_similarity(
    embeddings_a: ArrayLike,
    embeddings_b: ArrayLike | None = None,
    *,
    distance: str = "cosine",
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
      embeddings_a: ``[N, D]`` rows.
      embeddings_b: ``[M, D]`` rows; ``None`` means ``embeddings_a`` (the self-similarity matrix).
      distance: the geometry, one of :data:`DISTANCES`.
      epsilon: the norm floor of ``cosine`` (``1e-12``, as
        ``torch.nn.functional.normalize``), and the squared distance below
        which ``euclidean`` is 0.

    Returns:
      ``[N, M]`` in the compute dtype (float32 for half-precision inputs).

    Paper: none (a helper); the ``distance`` names of pytorch-metric-learning
    (``CosineSimilarity``, ``DotProductSimilarity``, ``LpDistance``).

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax._pairwise import pairwise_similarity
      >>> x = jnp.array([[1.0, 0.0], [0.0, 2.0]])
      >>> pairwise_similarity(x, distance="cosine")
      Array([[1., 0.],
             [0., 1.]], dtype=float32)
      >>> pairwise_similarity(x, distance="euclidean").round(4)
      Array([[0.    , 2.2361],
             [2.2361, 0.    ]], dtype=float32)
    """
    fn = "pairwise_similarity"
    C.check_one_of(fn, "distance", distance, DISTANCES)
    a, b = _check_pair(fn, embeddings_a, embeddings_b)
    if distance == "cosine":
        return _matmul(l2_normalize(a, epsilon=epsilon), l2_normalize(b, epsilon=epsilon))
    ab = _matmul(a, b)
    if distance == "dot":
        return ab
    a2 = jnp.sum(jnp.square(a), axis=-1)
    b2 = jnp.sum(jnp.square(b), axis=-1)
    sq = jnp.maximum(a2[:, None] + b2[None, :] - 2 * ab, jnp.zeros((), ab.dtype))
    if distance == "squared_euclidean":
        return sq
    return C.safe_sqrt(sq, epsilon=epsilon)


def pairwise_distance(
    embeddings_a: ArrayLike,
    embeddings_b: ArrayLike | None = None,
    *,
    distance: str = "euclidean",
    epsilon: float = _NORM_EPS,
) -> Array:
    r"""The ``[N, M]`` distance matrix: ``euclidean``, ``squared_euclidean``, or ``1 - cosine``.

    .. math::
        d(a_i, b_j) = \|a_i - b_j\|,\quad \|a_i - b_j\|^2\quad\text{or}\quad 1 - \cos(a_i, b_j)

    computed by :func:`pairwise_similarity` (one matmul).

    Args:
      embeddings_a: ``[N, D]`` rows.
      embeddings_b: ``[M, D]`` rows; ``None`` means ``embeddings_a``.
      distance: ``"euclidean"`` (default), ``"squared_euclidean"`` or ``"cosine"``.
      epsilon: as in :func:`pairwise_similarity`.

    Returns:
      ``[N, M]`` distances (smaller = closer) in the compute dtype.

    Paper: none (a helper); pytorch-metric-learning's ``LpDistance`` and
    ``1 - CosineSimilarity``.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax._pairwise import pairwise_distance
      >>> pairwise_distance(jnp.array([[0.0, 0.0], [3.0, 4.0]]))
      Array([[0., 5.],
             [5., 0.]], dtype=float32)
    """
    fn = "pairwise_distance"
    C.check_one_of(fn, "distance", distance, ("euclidean", "squared_euclidean", "cosine"))
    if distance == "cosine":
        return 1 - pairwise_similarity(embeddings_a, embeddings_b, distance="cosine", epsilon=epsilon)
    return pairwise_similarity(embeddings_a, embeddings_b, distance=distance, epsilon=epsilon)


# --------------------------------------------------------------------------
# Many devices.
# --------------------------------------------------------------------------


def self_mask(num_local: int, num_total: int, *, axis_name: AxisName = None) -> Array:
    """Where a local row meets its own gathered column: ``[num_local, num_total]`` bool.

    Row ``i`` of this device is global row ``axis_index * num_local + i``; the
    columns are the batch gathered over ``axis_name`` (the identity matrix
    without an axis).

    Args:
      num_local: rows on this device.
      num_total: gathered columns (``num_local`` times the number of devices).
      axis_name: the mapped axis the batch is split over, or None.

    Returns:
      ``[num_local, num_total]`` boolean mask.

    Paper: none (a helper).

    Example:
      >>> from lossjax._pairwise import self_mask
      >>> self_mask(2, 2).astype(int)
      Array([[1, 0],
             [0, 1]], dtype=int32)
    """
    offset = axis_offset(axis_name, num_local)
    rows = jax.lax.broadcasted_iota(jnp.int32, (num_local, num_total), 0) + offset
    cols = jax.lax.broadcasted_iota(jnp.int32, (num_local, num_total), 1)
    return rows == cols


def masked_logsumexp(
    x: Array,
    where: Array,
    *,
    axis: int | None = -1,
    axis_name: AxisName = None,
    add_one: bool = False,
) -> Array:
    r"""``log(sum exp(x))`` over the entries ``where`` selects (``log(1 + sum ...)`` with ``add_one``).

    .. math::
        \mathrm{lse}(x) = m + \log\sum_{i:\,w_i} e^{x_i - m}\quad
        \Big(m + \log\big(e^{-m} + \sum_{i:\,w_i} e^{x_i - m}\big),\ m \ge 0,\ \text{with add\_one}\Big)

    with the shift :math:`m` the largest selected entry (held constant in the
    backward pass: the result does not depend on it). An empty selection gives
    0 (``log 1 = 0`` with ``add_one``); values and gradients stay finite
    whatever the unselected entries hold (they never reach ``exp``). With
    ``axis_name`` the reduced axis is sharded over that mesh axis: the shift is
    the ``pmax`` and the sum the ``psum`` over devices.

    Args:
      x: an array (float).
      where: boolean mask of ``x``'s shape; True entries are summed.
      axis: the axis to reduce, or None for all of them.
      axis_name: mapped axis the reduced axis is split over, or None.
      add_one: add ``exp(0) = 1`` inside the logarithm (multi-similarity,
        proxy-anchor).

    Returns:
      ``x``'s shape without ``axis`` (a scalar for ``axis=None``).

    Paper: none (a helper): the log-sum-exp trick.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax._pairwise import masked_logsumexp
      >>> x = jnp.array([[0.0, 1.0, 50.0], [2.0, 0.0, 0.0]])
      >>> masked_logsumexp(x, jnp.array([[True, True, False], [False, False, False]])).round(4)
      Array([1.3133, 0.    ], dtype=float32)
    """
    zero = jnp.zeros((), x.dtype)
    # The shift carries no gradient (log-sum-exp is shift invariant); pmax has no JVP rule.
    # `initial`: an empty axis (an empty batch) reduces to -inf, not an error.
    m = jax.lax.stop_gradient(jnp.max(jnp.where(where, x, -jnp.inf), axis=axis, keepdims=True, initial=-jnp.inf))
    if axis_name is not None:
        m = jax.lax.pmax(m, axis_name)
    has = m > -jnp.inf
    m = jnp.where(has, m, zero)
    if add_one:
        m = jnp.maximum(m, zero)  # >= 0: covers the "1 +"
    z = jnp.where(where, x, m)  # double where: unselected entries never reach exp
    s = psum(jnp.sum(jnp.where(where, jnp.exp(z - m), zero), axis=axis, keepdims=True), axis_name)
    if add_one:
        out = jnp.log(s + jnp.exp(-m)) + m
    else:
        out = jnp.where(has, jnp.log(jnp.where(has, s, jnp.ones((), x.dtype))) + m, zero)
    return jnp.reshape(out, ()) if axis is None else jnp.squeeze(out, axis)
