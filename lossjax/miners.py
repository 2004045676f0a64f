"""Miners for metric learning: pure functions that return masks or index sets.

A miner looks at a batch of embeddings and labels and says which pairs or
triplets a loss should use. Each one here is a pure function (no state, no
host callback, static shapes) returning boolean masks or index arrays, so it
works under ``jit``/``vmap`` and composes with any pair or triplet loss:

>>> import jax.numpy as jnp
>>> from lossjax import miners
>>> labels = jnp.array([0, 0, 1, 1])
>>> pos, neg = miners.batch_all_miner(labels)
>>> pos.astype(int)
Array([[0, 1, 0, 0],
       [1, 0, 0, 0],
       [0, 0, 0, 1],
       [0, 0, 1, 0]], dtype=int32)

All masks exclude padded examples (``where=False``) as anchor, positive and
negative. The semantics follow pytorch-metric-learning's miners of the same
name (``BatchHardMiner``, ``TripletMarginMiner``, ``MultiSimilarityMiner``).
The losses of :mod:`lossjax.losses` with a ``mining`` / ``mining_margin``
argument select their pairs with the same matrix-level functions
(:mod:`lossjax._mining`) on their one similarity matrix.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from lossjax import _checks as C
from lossjax._mining import hardest_index, labelled_batch, multi_similarity_mine
from lossjax._pairwise import pairwise_similarity

__all__ = [
    "angular_miner",
    "batch_all_miner",
    "batch_hard_miner",
    "multi_similarity_miner",
    "pair_margin_miner",
    "semihard_miner",
    "triplet_margin_miner",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

_TRIPLET_DISTANCES = ("euclidean", "squared_euclidean")


def batch_all_miner(labels: ArrayLike, *, where: ArrayLike | None = None) -> tuple[Array, Array]:
    r"""All positive and negative pairs of a batch: ``(pos [N, N], neg [N, N])`` boolean masks.

    .. math::
        \mathrm{pos}_{ap} = [y_a = y_p]\,[a \ne p],\qquad \mathrm{neg}_{an} = [y_a \ne y_n]

    The batch-all triplets are every ``(a, p, n)`` with ``pos[a, p] & neg[a, n]``
    (kept factored: ``N^2`` booleans, not ``N^3``).

    Args:
      labels: integer labels ``[N]``.
      where: optional ``[N]`` boolean mask; False rows are in no pair.

    Returns:
      ``(pos, neg)``, each ``[N, N]`` bool.

    Paper: Hermans, Beyer, Leibe, "In Defense of the Triplet Loss for Person
    Re-Identification" (2017, arXiv:1703.07737), the batch-all strategy.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.miners import batch_all_miner
      >>> pos, neg = batch_all_miner(jnp.array([0, 1, 0]))
      >>> int(pos.sum()), int(neg.sum())
      (2, 4)
    """
    b = labelled_batch("batch_all_miner", None, labels, where)
    return b.pos, b.neg


def batch_hard_miner(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    distance: str = "euclidean",
    normalize: bool = True,
    where: ArrayLike | None = None,
) -> tuple[Array, Array, Array]:
    r"""Batch-hard triplets: per anchor, the farthest positive and the closest negative.

    .. math::
        p(a) = \arg\max_{p:\,y_p = y_a,\,p\ne a} d(a, p),\qquad n(a) = \arg\min_{n:\,y_n \ne y_a} d(a, n)

    pytorch-metric-learning's ``BatchHardMiner`` (``LpDistance``, normalized
    embeddings by default).

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      distance: ``"euclidean"`` or ``"squared_euclidean"``.
      normalize: L2-normalize the embeddings first.
      where: optional ``[N]`` boolean mask.

    Returns:
      ``(anchor_ok [N] bool, positive [N] int32, negative [N] int32)``: the
      triplet ``(a, positive[a], negative[a])`` is valid where ``anchor_ok[a]``.

    Paper: Hermans, Beyer, Leibe, "In Defense of the Triplet Loss for Person
    Re-Identification" (2017, arXiv:1703.07737).

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.miners import batch_hard_miner
      >>> x = jnp.array([[0.0, 1.0], [0.0, 1.1], [1.0, 0.0], [0.1, 1.0]])
      >>> ok, p, n = batch_hard_miner(x, jnp.array([0, 0, 1, 1]), normalize=False)
      >>> ok.tolist(), p.tolist(), n.tolist()
      ([True, True, True, True], [1, 0, 3, 2], [3, 3, 0, 0])
    """
    fn = "batch_hard_miner"
    C.check_one_of(fn, "distance", distance, _TRIPLET_DISTANCES)
    b = labelled_batch(fn, embeddings, labels, where, normalize=normalize)
    d = pairwise_similarity(b.x, distance=distance)
    p, has_p = hardest_index(d, b.pos, largest=True)
    n, has_n = hardest_index(d, b.neg, largest=False)
    return has_p & has_n & b.valid, p, n


def semihard_miner(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float = 0.2,
    distance: str = "euclidean",
    normalize: bool = True,
    where: ArrayLike | None = None,
) -> Array:
    r"""Semi-hard triplets: ``d(a, p) < d(a, n) <= d(a, p) + margin``, as an ``[N, N, N]`` mask.

    .. math::
        \mathrm{mask}_{apn} = [y_p = y_a,\ p \ne a]\,[y_n \ne y_a]\,[0 < d(a,n) - d(a,p) \le m]

    pytorch-metric-learning's ``TripletMarginMiner(type_of_triplets="semihard")``.
    The mask has ``N^3`` booleans: use it for inspection or small batches;
    :func:`lossjax.losses.batch_triplet_loss` with ``mining="semihard"``
    computes the same loss in ``O(N^2 log N)`` time and ``O(N^2)`` memory
    without it.

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      margin: ``m``, the semi-hard band width (> 0).
      distance: ``"euclidean"`` or ``"squared_euclidean"``.
      normalize: L2-normalize the embeddings first.
      where: optional ``[N]`` boolean mask.

    Returns:
      ``[N, N, N]`` bool, indexed ``[anchor, positive, negative]``.

    Paper: Schroff, Kalenichenko, Philbin, "FaceNet: A Unified Embedding for
    Face Recognition and Clustering" (2015, arXiv:1503.03832), which introduced
    semi-hard negatives.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.miners import semihard_miner
      >>> x = jnp.array([[0.0], [1.0], [1.1], [5.0]])
      >>> m = semihard_miner(x, jnp.array([0, 0, 1, 1]), margin=0.5, normalize=False)
      >>> [tuple(int(i) for i in t) for t in jnp.argwhere(m)]
      [(0, 1, 2), (3, 2, 1)]
    """
    fn = "semihard_miner"
    C.check_positive(fn, "margin", margin)
    C.check_one_of(fn, "distance", distance, _TRIPLET_DISTANCES)
    b = labelled_batch(fn, embeddings, labels, where, normalize=normalize)
    d = pairwise_similarity(b.x, distance=distance)
    gap = d[:, None, :] - d[:, :, None]  # d(a, n) - d(a, p), [a, p, n]
    return b.pos[:, :, None] & b.neg[:, None, :] & (gap > 0) & (gap <= margin)


def multi_similarity_miner(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float = 0.1,
    where: ArrayLike | None = None,
) -> tuple[Array, Array]:
    r"""The multi-similarity miner: informative pairs by relative cosine similarity.

    .. math::
        \text{keep } (a,p) \iff S_{ap} - m < \max_{n} S_{an},\qquad
        \text{keep } (a,n) \iff S_{an} + m > \min_{p} S_{ap}

    pytorch-metric-learning's ``MultiSimilarityMiner(epsilon=0.1)`` (its
    ``epsilon`` is this ``margin``).

    Args:
      embeddings: ``[N, D]`` (cosine similarity is used).
      labels: integer labels ``[N]``.
      margin: ``m``, the mining margin (>= 0).
      where: optional ``[N]`` boolean mask.

    Returns:
      ``(pos [N, N], neg [N, N])`` boolean masks of the kept pairs.

    Paper: Wang et al., "Multi-Similarity Loss with General Pair Weighting for
    Deep Metric Learning" (CVPR 2019, arXiv:1904.06627).

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.miners import multi_similarity_miner
      >>> x = jnp.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [1.0, 0.5]])
      >>> pos, neg = multi_similarity_miner(x, jnp.array([0, 0, 1, 1]))
      >>> pos.astype(int).tolist()
      [[0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]]
    """
    fn = "multi_similarity_miner"
    C.check_positive(fn, "margin", margin, allow_zero=True)
    b = labelled_batch(fn, embeddings, labels, where)
    sim = pairwise_similarity(b.x, distance="cosine")
    return multi_similarity_mine(sim, b.pos, b.neg, margin=margin)


def triplet_margin_miner(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float = 0.2,
    type_of_triplets: str = "all",
    distance: str = "euclidean",
    normalize: bool = True,
    where: ArrayLike | None = None,
) -> Array:
    r"""pytorch-metric-learning's ``TripletMarginMiner``: triplets by their margin ``d(a, n) - d(a, p)``, as a mask.

    .. math::
        g_{apn} = d(a,n) - d(a,p):\quad
        \text{all: } g \le m,\quad \text{hard: } g \le 0,\quad
        \text{semihard: } 0 < g \le m,\quad \text{easy: } g > m

    over every triplet with ``y_p = y_a``, ``p != a``, ``y_n != y_a`` (valid rows only).

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      margin: ``m`` (0.2, PML's default).
      type_of_triplets: ``"all"``, ``"hard"``, ``"semihard"`` or ``"easy"``.
      distance: ``"euclidean"`` (PML's ``LpDistance``) or ``"squared_euclidean"``.
      normalize: L2-normalize the embeddings first.
      where: optional ``[N]`` boolean mask.

    Returns:
      ``[N, N, N]`` bool, indexed ``[anchor, positive, negative]``; PML's index
      tuple is ``jnp.nonzero(mask)`` (under ``jit``: ``jnp.nonzero(mask, size=k,
      fill_value=-1)``, a static size with ``-1`` padding), in the same order.

    Paper: Schroff, Kalenichenko, Philbin, "FaceNet" (2015, arXiv:1503.03832);
    Hermans, Beyer, Leibe, "In Defense of the Triplet Loss" (2017, arXiv:1703.07737).

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.miners import triplet_margin_miner
      >>> x = jnp.array([[0.0], [1.0], [1.1], [5.0]])
      >>> m = triplet_margin_miner(x, jnp.array([0, 0, 1, 1]), margin=0.5, type_of_triplets="hard", normalize=False)
      >>> [tuple(int(i) for i in t) for t in jnp.argwhere(m)]
      [(1, 0, 2), (2, 3, 0), (2, 3, 1)]
    """
    fn = "triplet_margin_miner"
    C.check_positive(fn, "margin", margin, allow_zero=True)
    C.check_one_of(fn, "type_of_triplets", type_of_triplets, ("all", "hard", "semihard", "easy"))
    C.check_one_of(fn, "distance", distance, _TRIPLET_DISTANCES)
    b = labelled_batch(fn, embeddings, labels, where, normalize=normalize)
    d = pairwise_similarity(b.x, distance=distance)
    gap = d[:, None, :] - d[:, :, None]  # d(a, n) - d(a, p), [a, p, n]
    if type_of_triplets == "easy":
        keep = gap > margin
    else:
        keep = gap <= margin
        if type_of_triplets == "hard":
            keep = keep & (gap <= 0)
        elif type_of_triplets == "semihard":
            keep = keep & (gap > 0)
    return b.pos[:, :, None] & b.neg[:, None, :] & keep


def pair_margin_miner(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    pos_margin: float = 0.2,
    neg_margin: float = 0.8,
    distance: str = "euclidean",
    normalize: bool = True,
    where: ArrayLike | None = None,
) -> tuple[Array, Array]:
    r"""PML's ``PairMarginMiner``: positive pairs farther than ``m_+``, negative pairs closer than ``m_-``.

    .. math::
        \mathrm{pos}_{ij} = [y_i = y_j,\ i \ne j]\,[d_{ij} > m_+],\qquad
        \mathrm{neg}_{ij} = [y_i \ne y_j]\,[d_{ij} < m_-]

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      pos_margin: ``m_+`` (0.2).
      neg_margin: ``m_-`` (0.8).
      distance: ``"euclidean"`` (PML's ``LpDistance``) or ``"squared_euclidean"``.
      normalize: L2-normalize the embeddings first.
      where: optional ``[N]`` boolean mask.

    Returns:
      ``(pos, neg)``: ``[N, N]`` bool masks; PML's ``(a1, p, a2, n)`` are
      ``jnp.nonzero(pos)`` and ``jnp.nonzero(neg)`` (row-major, PML's order).

    Paper: Hadsell, Chopra, LeCun, "Dimensionality Reduction by Learning an
    Invariant Mapping", CVPR 2006 (the contrastive margins this miner applies).

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.miners import pair_margin_miner
      >>> x = jnp.array([[0.0], [1.0], [0.5]])
      >>> pos, neg = pair_margin_miner(x, jnp.array([0, 0, 1]), pos_margin=0.5, neg_margin=0.6, normalize=False)
      >>> pos.astype(int).tolist(), neg.astype(int).tolist()
      ([[0, 1, 0], [1, 0, 0], [0, 0, 0]], [[0, 0, 1], [0, 0, 1], [1, 1, 0]])
    """
    fn = "pair_margin_miner"
    C.check_positive(fn, "pos_margin", pos_margin, allow_zero=True)
    C.check_positive(fn, "neg_margin", neg_margin, allow_zero=True)
    C.check_one_of(fn, "distance", distance, _TRIPLET_DISTANCES)
    b = labelled_batch(fn, embeddings, labels, where, normalize=normalize)
    d = pairwise_similarity(b.x, distance=distance)
    return b.pos & (d > pos_margin), b.neg & (d < neg_margin)


def angular_miner(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    angle: float = 20.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""PML's ``AngularMiner``: triplets whose angle at the negative exceeds ``angle`` (degrees), as a mask.

    .. math::
        \mathrm{mask}_{apn} = [y_p = y_a,\ p \ne a]\,[y_n \ne y_a]\,
          \Big[\arctan\frac{\|x_a - x_p\|}{2\,\|x_n - (x_a + x_p)/2\|} > \alpha\Big]

    on the raw embeddings (PML's ``pairwise_distance`` does not normalize;
    its ``1e-6`` added to each difference is left out). Every distance comes
    from the Gram matrix: no ``[N, N, N, D]`` tensor.

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      angle: ``alpha`` in degrees (20, PML's default).
      where: optional ``[N]`` boolean mask.

    Returns:
      ``[N, N, N]`` bool, indexed ``[anchor, positive, negative]`` (PML's
      index tuple: ``jnp.nonzero(mask)``).

    Paper: Wang, Zhou, Wen, Liu, Lin, "Deep Metric Learning with Angular
    Loss", ICCV 2017, arXiv:1708.01682.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.miners import angular_miner
      >>> x = jnp.array([[0.0, 0.0], [2.0, 0.0], [1.0, 1.0], [1.0, 5.0]])
      >>> m = angular_miner(x, jnp.array([0, 0, 1, 1]), angle=30.0)  # (0, 1, 2): atan(2 / 2) = 45 deg
      >>> [tuple(int(i) for i in t) for t in jnp.argwhere(m)]
      [(0, 1, 2), (1, 0, 2), (2, 3, 0), (2, 3, 1), (3, 2, 0), (3, 2, 1)]
    """
    fn = "angular_miner"
    C.check_in_range(fn, "angle", angle, 0.0, 90.0)
    b = labelled_batch(fn, embeddings, labels, where)
    x = b.x
    gram = pairwise_similarity(x, distance="dot")
    sq = jnp.diagonal(gram)
    zero = jnp.zeros((), x.dtype)
    ap2 = jnp.maximum(sq[:, None] + sq[None, :] - 2 * gram, zero)  # [a, p]
    c2 = (sq[:, None] + sq[None, :] + 2 * gram) / 4  # |c_ap|^2
    nc2 = sq[None, None, :] + c2[:, :, None] - (gram[:, None, :] + gram[None, :, :])  # [a, p, n]
    nc = jnp.sqrt(jnp.maximum(nc2, zero))
    ang = jnp.arctan2(jnp.sqrt(ap2)[:, :, None], 2 * nc)
    return b.pos[:, :, None] & b.neg[:, None, :] & (ang > math.radians(angle))
