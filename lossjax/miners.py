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
name (``BatchHardMiner``, ``TripletMarginMiner``, ``MultiSimilarityMiner``,
``PairMarginMiner``, ``AngularMiner``, ``BatchEasyHardMiner``, ``HDCMiner``,
``DistanceWeightedMiner``, ``UniformHistogramMiner``). Miners whose output is
a mask give PML's index tuple as ``jnp.nonzero(mask)`` (under ``jit``:
``jnp.nonzero(mask, size=k, fill_value=-1)``); those whose PML order is not
row-major (``hdc_miner``) or that draw with replacement
(``distance_weighted_miner``, ``uniform_histogram_miner``, with an explicit
``key``) return :class:`MinedTriplets` / :class:`MinedPairs`: PML's tuple
first, then ``-1`` up to a static size, and a validity mask.
The losses of :mod:`lossjax.losses` with a ``mining`` / ``mining_margin``
argument select their pairs with the same matrix-level functions
(:mod:`lossjax._mining`) on their one similarity matrix.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax._mining import hardest_index, labelled_batch, multi_similarity_mine
from lossjax._pairwise import pairwise_similarity

__all__ = [
    "MinedPairs",
    "MinedTriplets",
    "angular_miner",
    "batch_all_miner",
    "batch_easy_hard_miner",
    "batch_hard_miner",
    "distance_weighted_miner",
    "hdc_miner",
    "multi_similarity_miner",
    "pair_margin_miner",
    "semihard_miner",
    "triplet_margin_miner",
    "uniform_histogram_miner",
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


# --------------------------------------------------------------------------
# Miners returning index tuples (random draws, top-k order): static size, -1 padding.
# --------------------------------------------------------------------------


class MinedTriplets(NamedTuple):
    """Triplet indices of a miner, PML's ``(a, p, n)`` order, then ``-1`` padding to a static size.

    ``valid`` marks the real triplets (``anchors >= 0``); they come first.
    """

    anchors: Array
    positives: Array
    negatives: Array
    valid: Array


class MinedPairs(NamedTuple):
    """Pair indices of a miner: PML's ``(a1, p, a2, n)`` tuple, each part padded with ``-1`` to a static size.

    ``pos_valid`` / ``neg_valid`` mark the real pairs of each part; they come first.
    """

    pos_anchors: Array
    positives: Array
    neg_anchors: Array
    negatives: Array
    pos_valid: Array
    neg_valid: Array


def _compact(valid: Array, *columns: Array) -> tuple[Array, ...]:
    """The entries of ``columns`` where ``valid`` (flat, in order) first, then ``-1``; and the new validity mask."""
    size = valid.shape[0]
    count = jnp.sum(valid)
    (pos,) = jnp.nonzero(valid, size=size, fill_value=0)
    keep = jnp.arange(size) < count
    out = tuple(jnp.where(keep, c[pos], -1).astype(jnp.int32) for c in columns)
    return (*out, keep)


def _distance_weighted_probs(
    d: Array, neg: Array, dim: int, cutoff: float, nonzero_loss_cutoff: float
) -> tuple[Array, Array]:
    """PML ``DistanceWeightedMiner``'s sampling distribution over each anchor's negatives ``[N, N]``.

    Returns ``(probs, ok)``: each row sums to 1 over the columns ``ok`` (or is all 0 when no negative has a
    finite weight below ``nonzero_loss_cutoff``). PML subtracts the maximum log-weight of the whole matrix
    before ``exp``; here each row's own maximum (the same distribution after the row normalization).
    """
    mat = jnp.maximum(d, jnp.asarray(cutoff, d.dtype))
    log_w = (2.0 - dim) * jnp.log(mat) - ((dim - 3) / 2) * jnp.log(1.0 - 0.25 * jnp.square(mat))
    ok = neg & jnp.isfinite(log_w) & (mat < nonzero_loss_cutoff)
    log_w = jnp.where(ok, log_w, -jnp.inf)
    top = jnp.max(log_w, axis=-1, keepdims=True, initial=-jnp.inf)
    w = jnp.where(ok, jnp.exp(log_w - jnp.where(jnp.isfinite(top), top, 0.0)), 0.0)
    total = jnp.sum(w, axis=-1, keepdims=True)
    probs = jnp.where(total > 0, w / jnp.where(total > 0, total, 1.0), 0.0)
    return probs, ok


def distance_weighted_miner(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    key: ArrayLike,
    cutoff: float = 0.5,
    nonzero_loss_cutoff: float = 1.4,
    where: ArrayLike | None = None,
) -> MinedTriplets:
    r"""PML's ``DistanceWeightedMiner``: random triplets, negatives drawn with weight ``1 / q(d)`` of the sphere.

    .. math::
        \Pr(n \mid a) \propto [y_n \ne y_a]\,[\bar d_{an} < \lambda]\,
          \bar d_{an}^{\,2-D}\,\big(1 - \tfrac14 \bar d_{an}^2\big)^{-\frac{D-3}{2}},\qquad
        \bar d = \max(d, \text{cutoff})

    on L2-normalized embeddings (``d`` Euclidean, ``D`` the embedding size,
    ``lambda = nonzero_loss_cutoff``; non-finite weights are 0). As PML's
    ``get_random_triplet_indices``: for each class with at least 2 examples and
    one negative (classes in increasing label order), each of its examples
    (in batch order) is the anchor of ``k`` triplets, ``k`` the size of its
    class; each triplet draws its positive uniformly among the other examples
    of the class and its negative from the distribution above; anchors whose
    negatives all have weight 0 give no triplet. The draws use ``key`` (they
    cannot equal torch's); the index layout is PML's.

    Args:
      embeddings: ``[N, D]`` (normalized inside, PML's ``LpDistance``).
      labels: integer labels ``[N]``.
      key: PRNG key of the draws.
      cutoff: distances are clipped below at this value (> 0; 0.5).
      nonzero_loss_cutoff: negatives at this distance or farther are never drawn (> 0; 1.4).
      where: optional ``[N]`` boolean mask; False rows are in no triplet.

    Returns:
      :class:`MinedTriplets` ``(anchors, positives, negatives, valid)``, each
      ``[N * N]``: PML's triplets first, in its order, then ``-1``.

    Paper: Wu, Manmatha, Smola, Krähenbühl, "Sampling Matters in Deep Embedding
    Learning", ICCV 2017, arXiv:1706.07567.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from lossjax.miners import distance_weighted_miner
      >>> x = jnp.array([[1.0, 0.0], [0.9, 0.3], [0.0, 1.0], [0.3, 0.9]])
      >>> t = distance_weighted_miner(x, jnp.array([0, 0, 1, 1]), key=jax.random.key(0))
      >>> t.anchors[:8].tolist(), t.positives[:8].tolist(), int(t.valid.sum())
      ([0, 0, 1, 1, 2, 2, 3, 3], [1, 1, 0, 0, 3, 3, 2, 2], 8)
    """
    fn = "distance_weighted_miner"
    C.check_positive(fn, "cutoff", cutoff)
    C.check_positive(fn, "nonzero_loss_cutoff", nonzero_loss_cutoff)
    b = labelled_batch(fn, embeddings, labels, where, normalize=True)
    n, dim = b.x.shape
    d = pairwise_similarity(b.x, distance="euclidean")
    probs, _ = _distance_weighted_probs(d, b.neg, dim, cutoff, nonzero_loss_cutoff)
    same = (b.labels_all[:, None] == b.labels_all[None, :]) & b.valid[:, None] & b.valid[None, :]
    size = jnp.sum(same, axis=-1)  # the anchor's class size (itself included): k
    anchor_ok = b.valid & (size >= 2) & jnp.any(b.neg, axis=-1) & jnp.any(probs > 0, axis=-1)
    key_p, key_n = jax.random.split(key)
    # Positives: the r-th other member of the class, uniformly.
    members = jnp.argsort(~b.pos, axis=-1, stable=True)  # each row's positives first, in batch order
    r = jax.random.randint(key_p, (n, n), 0, jnp.maximum(size - 1, 1)[:, None])
    p = jnp.take_along_axis(members, r, axis=-1)
    # Negatives: inverse CDF of each anchor's distribution.
    cdf = jnp.cumsum(probs, axis=-1)
    total = cdf[:, -1:] if n else jnp.zeros((n, 1), probs.dtype)
    u = jax.random.uniform(key_n, (n, n), probs.dtype) * total
    neg_i = jax.vmap(lambda c, q: jnp.searchsorted(c, q, side="right"))(cdf, u)
    last = n - 1 - jnp.argmax((probs > 0)[:, ::-1], axis=-1) if n else jnp.zeros((n,), jnp.int32)
    neg_i = jnp.minimum(neg_i, last[:, None])
    # PML's layout: classes by increasing label, anchors in batch order, k slots each.
    order = jnp.argsort(b.labels_all, stable=True)
    slot = jnp.arange(n)[None, :]
    valid = anchor_ok[order][:, None] & (slot < size[order][:, None])
    anchors = jnp.broadcast_to(order[:, None], (n, n))
    return MinedTriplets(
        *_compact(valid.reshape(-1), anchors.reshape(-1), p[order].reshape(-1), neg_i[order].reshape(-1))
    )


def _torch_linspace(lo: Array, hi: Array, steps: int) -> Array:
    """``torch.linspace(lo, hi, steps)`` to the bit: the first half counts up from ``lo``, the rest down from ``hi``."""
    i = jnp.arange(steps)
    step = (hi - lo) / max(steps - 1, 1)
    up = lo + step * i.astype(lo.dtype)
    down = hi - step * (steps - 1 - i).astype(lo.dtype)
    return jnp.where(i < steps // 2, up, down)


def _uniform_pairs(key: Array, d: Array, mask: Array, num_bins: int, per_bin: int) -> tuple[Array, Array, Array]:
    """PML ``UniformHistogramMiner.get_uniformly_distributed_pairs`` on the pairs ``mask`` of ``d``."""
    n = d.shape[0]
    flat_d, flat_m = d.reshape(-1), mask.reshape(-1)
    lo = jnp.min(jnp.where(flat_m, flat_d, jnp.inf), initial=jnp.inf)
    hi = jnp.max(jnp.where(flat_m, flat_d, -jnp.inf), initial=-jnp.inf)
    edges = _torch_linspace(lo, hi, num_bins + 1)
    # Bin i holds edges[i] <= d < edges[i + 1] (the last bin also d == hi): the number of inner edges <= d.
    bins = jnp.searchsorted(edges[1:num_bins], flat_d, side="right")
    bins = jnp.where(flat_m, bins, num_bins)
    order = jnp.argsort(bins, stable=True)  # pairs grouped by bin, row-major inside each
    counts = jnp.bincount(bins, length=num_bins + 1)[:num_bins]
    starts = jnp.cumsum(counts) - counts
    u = jax.random.uniform(key, (num_bins, per_bin), d.dtype)
    r = jnp.minimum(
        jnp.floor(u * counts[:, None].astype(d.dtype)).astype(jnp.int32), jnp.maximum(counts - 1, 0)[:, None]
    )
    pair = order[jnp.minimum(starts[:, None] + r, n * n - 1)] if n else jnp.zeros((num_bins, per_bin), jnp.int32)
    valid = jnp.broadcast_to((counts > 0)[:, None], (num_bins, per_bin)).reshape(-1)
    pair = pair.reshape(-1)
    return _compact(valid, pair // max(n, 1), pair % max(n, 1))


def uniform_histogram_miner(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    key: ArrayLike,
    num_bins: int = 100,
    pos_per_bin: int = 10,
    neg_per_bin: int = 10,
    distance: str = "euclidean",
    normalize: bool = True,
    where: ArrayLike | None = None,
) -> MinedPairs:
    r"""PML's ``UniformHistogramMiner``: pairs drawn uniformly over a histogram of their distances.

    .. math::
        b_k = \Big[d_{\min} + \tfrac{k}{K}(d_{\max} - d_{\min}),\ d_{\min} + \tfrac{k+1}{K}(d_{\max} - d_{\min})\Big),
        \quad k = 0..K-1\ (\text{the last bin closed})

    separately for the positive pairs (``y_i = y_j``, ``i != j``) and the
    negative pairs, ``d_min``/``d_max`` their smallest and largest distance.
    For each nonempty bin, in increasing order, ``pos_per_bin`` (or
    ``neg_per_bin``) pairs are drawn uniformly with replacement among the
    pairs in it. The draws use ``key`` (they cannot equal torch's); bins,
    their members and the layout are PML's.

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      key: PRNG key of the draws.
      num_bins: ``K`` (100).
      pos_per_bin: positive pairs drawn per nonempty bin (10).
      neg_per_bin: negative pairs drawn per nonempty bin (10).
      distance: ``"euclidean"`` (PML's ``LpDistance``) or ``"squared_euclidean"``.
      normalize: L2-normalize the embeddings first.
      where: optional ``[N]`` boolean mask.

    Returns:
      :class:`MinedPairs`: ``(pos_anchors, positives)`` ``[num_bins * pos_per_bin]``
      and ``(neg_anchors, negatives)`` ``[num_bins * neg_per_bin]``, PML's pairs
      first, then ``-1``; ``pos_valid`` / ``neg_valid`` mark the real ones.

    Paper: Ustinova, Lempitsky, "Learning Deep Embeddings with Histogram Loss",
    NeurIPS 2016, arXiv:1611.00822 (the distance histograms this miner balances).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from lossjax.miners import uniform_histogram_miner
      >>> x = jnp.array([[0.0], [1.0], [3.0]])
      >>> m = uniform_histogram_miner(x, jnp.array([0, 0, 1]), key=jax.random.key(0), num_bins=2,
      ...                             pos_per_bin=1, neg_per_bin=2, normalize=False)
      >>> int(m.pos_valid.sum()), int(m.neg_valid.sum())  # one bin of positives, two bins of negatives
      (1, 4)
    """
    fn = "uniform_histogram_miner"
    C.check_int(fn, "num_bins", num_bins, 1, static=True)
    C.check_int(fn, "pos_per_bin", pos_per_bin, 1, static=True)
    C.check_int(fn, "neg_per_bin", neg_per_bin, 1, static=True)
    C.check_one_of(fn, "distance", distance, _TRIPLET_DISTANCES)
    b = labelled_batch(fn, embeddings, labels, where, normalize=normalize)
    d = pairwise_similarity(b.x, distance=distance)
    key_p, key_n = jax.random.split(key)
    a1, p, pos_valid = _uniform_pairs(key_p, d, b.pos, num_bins, pos_per_bin)
    a2, ng, neg_valid = _uniform_pairs(key_n, d, b.neg, num_bins, neg_per_bin)
    return MinedPairs(a1, p, a2, ng, pos_valid, neg_valid)


def _top_fraction(d: Array, mask: Array, fraction: float, *, largest: bool) -> tuple[Array, Array, Array]:
    """PML ``HDCMiner``'s ``topk``: the ``ceil(fraction * #pairs)`` pairs of ``mask`` with the largest (smallest)
    ``d``, in that order (ties in row-major order), then ``-1``."""
    n = d.shape[0]
    flat_d, flat_m = d.reshape(-1), mask.reshape(-1)
    # k = math.ceil(fraction * num_pairs) in Python floats, as PML computes it (one entry per possible count).
    table = jnp.asarray(np.ceil(fraction * np.arange(n * n + 1, dtype=np.float64)).astype(np.int32))
    k = table[jnp.sum(flat_m)]
    rank = jnp.where(flat_m, -flat_d if largest else flat_d, jnp.inf)
    order = jnp.argsort(rank, stable=True)
    valid = jnp.arange(n * n) < k
    nn = max(n, 1)
    return (
        jnp.where(valid, order // nn, -1).astype(jnp.int32),
        jnp.where(valid, order % nn, -1).astype(jnp.int32),
        valid,
    )


def hdc_miner(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    filter_percentage: float = 0.5,
    distance: str = "euclidean",
    normalize: bool = True,
    where: ArrayLike | None = None,
) -> MinedPairs:
    r"""PML's ``HDCMiner``: the hardest fraction of the positive pairs and of the negative pairs.

    .. math::
        \mathcal P' = \operatorname{top}_{\lceil f|\mathcal P|\rceil}\ d_{ap}\ (\text{largest}),\qquad
        \mathcal N' = \operatorname{top}_{\lceil f|\mathcal N|\rceil}\ d_{an}\ (\text{smallest})

    over all positive pairs ``P`` (``y_a = y_p``, ``a != p``) and negative
    pairs ``N``, in ``topk``'s order (hardest first), ``f = filter_percentage``.
    ``ceil(f * |P|)`` is computed as PML does (Python floats: ``f = 0.1`` and
    30 pairs keep 4), from a table of ``N^2 + 1`` int32 built at trace time.
    Pairs at exactly the same distance (a pair and its transpose always are)
    come in row-major order; ``torch.topk`` orders such ties its own way (and
    may keep the other one of a tied pair at the cut), so PML's tuple equals
    this one up to the order among exact ties.

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      filter_percentage: ``f`` in ``[0, 1]`` (0.5).
      distance: ``"euclidean"`` (PML's ``LpDistance``) or ``"squared_euclidean"``.
      normalize: L2-normalize the embeddings first.
      where: optional ``[N]`` boolean mask.

    Returns:
      :class:`MinedPairs`, each part ``[N * N]``: PML's ``(a1, p, a2, n)``
      first, in its order, then ``-1``; ``pos_valid`` / ``neg_valid`` mark the
      real pairs.

    Paper: Yuan, Yang, Zhang, "Hard-Aware Deeply Cascaded Embedding", ICCV 2017,
    arXiv:1611.05720.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.miners import hdc_miner
      >>> x = jnp.array([[0.0], [1.0], [3.0], [3.5]])
      >>> m = hdc_miner(x, jnp.array([0, 0, 1, 1]), normalize=False)
      >>> m.pos_anchors[:2].tolist(), m.positives[:2].tolist()  # 2 of the 4 positive pairs, farthest first
      ([0, 1], [1, 0])
      >>> m.neg_anchors[:4].tolist(), m.negatives[:4].tolist()  # 4 of the 8 negative pairs, closest first
      ([1, 2, 1, 3], [2, 1, 3, 1])
    """
    fn = "hdc_miner"
    C.check_in_range(fn, "filter_percentage", filter_percentage, 0.0, 1.0)
    C.check_one_of(fn, "distance", distance, _TRIPLET_DISTANCES)
    b = labelled_batch(fn, embeddings, labels, where, normalize=normalize)
    d = pairwise_similarity(b.x, distance=distance)
    a1, p, pos_valid = _top_fraction(d, b.pos, filter_percentage, largest=True)
    a2, ng, neg_valid = _top_fraction(d, b.neg, filter_percentage, largest=False)
    return MinedPairs(a1, p, a2, ng, pos_valid, neg_valid)


_EASY_HARD = ("easy", "semihard", "hard", "all")


def _check_range(fn: str, arg: str, value) -> None:
    if value is None:
        return
    ok = isinstance(value, (tuple, list)) and len(value) == 2
    ok = ok and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in value)
    if not ok or any(math.isnan(float(v)) for v in value) or float(value[0]) > float(value[1]):
        raise ValueError(
            f"{fn}: `{arg}` must be None or a pair (low, high) of numbers with low <= high, got {value!r}."
        )


def batch_easy_hard_miner(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    pos_strategy: str = "easy",
    neg_strategy: str = "semihard",
    allowed_pos_range: tuple[float, float] | None = None,
    allowed_neg_range: tuple[float, float] | None = None,
    distance: str = "euclidean",
    normalize: bool = True,
    where: ArrayLike | None = None,
) -> tuple[Array, Array]:
    r"""PML's ``BatchEasyHardMiner``: per anchor one positive and one negative chosen by strategy.

    .. math::
        \text{pos: easy } \arg\min_p d_{ap},\ \text{hard } \arg\max_p d_{ap},\ \text{semihard }
          \arg\max_{p:\,d_{ap} < d_{an^*}} d_{ap};\qquad
        \text{neg: easy } \arg\max_n d_{an},\ \text{hard } \arg\min_n d_{an},\ \text{semihard }
          \arg\min_{n:\,d_{an} > d_{ap^*}} d_{an}

    among the pairs whose distance lies in ``allowed_pos_range`` /
    ``allowed_neg_range`` (inclusive; ``None``: all), ``n*``/``p*`` the other
    side's choice. ``"all"`` keeps every pair of that side. Unless one side is
    ``"all"``, an anchor is kept only when both sides found a pair (a
    triplet); otherwise each side keeps its own anchors. ``"semihard"`` cannot
    be on both sides nor beside ``"all"`` (PML's rule).

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      pos_strategy: ``"easy"`` (default), ``"semihard"``, ``"hard"`` or ``"all"``.
      neg_strategy: ``"semihard"`` (default), ``"easy"``, ``"hard"`` or ``"all"``.
      allowed_pos_range: optional ``(low, high)`` bounds on the positive distances.
      allowed_neg_range: optional ``(low, high)`` bounds on the negative distances.
      distance: ``"euclidean"`` (PML's ``LpDistance``) or ``"squared_euclidean"``.
      normalize: L2-normalize the embeddings first.
      where: optional ``[N]`` boolean mask.

    Returns:
      ``(pos, neg)``: ``[N, N]`` bool masks; PML's ``(a1, p, a2, n)`` are
      ``jnp.nonzero(pos)`` and ``jnp.nonzero(neg)`` (PML's order).

    Paper: Xuan, Stylianou, Pless, "Improved Embeddings with Easy Positive
    Triplet Mining", WACV 2020, arXiv:1904.04370.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.miners import batch_easy_hard_miner
      >>> x = jnp.array([[0.0], [1.0], [4.0], [1.5], [0.2]])
      >>> pos, neg = batch_easy_hard_miner(x, jnp.array([0, 0, 0, 1, 1]), normalize=False)
      >>> [t.tolist() for t in (*jnp.nonzero(pos), *jnp.nonzero(neg))]
      [[0, 2, 3, 4], [1, 1, 4, 3], [0, 2, 3, 4], [3, 4, 0, 2]]
    """
    fn = "batch_easy_hard_miner"
    C.check_one_of(fn, "pos_strategy", pos_strategy, _EASY_HARD)
    C.check_one_of(fn, "neg_strategy", neg_strategy, _EASY_HARD)
    if pos_strategy == neg_strategy == "semihard":
        raise ValueError(f"{fn}: `pos_strategy` and `neg_strategy` cannot both be 'semihard'.")
    if "semihard" in (pos_strategy, neg_strategy) and "all" in (pos_strategy, neg_strategy):
        raise ValueError(
            f"{fn}: 'semihard' cannot be combined with 'all', got pos_strategy={pos_strategy!r}, "
            f"neg_strategy={neg_strategy!r}."
        )
    _check_range(fn, "allowed_pos_range", allowed_pos_range)
    _check_range(fn, "allowed_neg_range", allowed_neg_range)
    C.check_one_of(fn, "distance", distance, _TRIPLET_DISTANCES)
    b = labelled_batch(fn, embeddings, labels, where, normalize=normalize)
    d = pairwise_similarity(b.x, distance=distance)
    cols = jnp.arange(d.shape[-1])

    def pick(largest: bool, mask: Array, allowed_range, threshold=None):
        if threshold is not None:
            mask = mask & ((d < threshold[:, None]) if largest else (d > threshold[:, None]))
        if allowed_range is not None:
            mask = mask & (d >= allowed_range[0]) & (d <= allowed_range[1])
        idx, has = hardest_index(d, mask, largest=largest)
        fill = -jnp.inf if largest else jnp.inf
        dist = jnp.where(has, jnp.take_along_axis(d, idx[:, None], axis=-1)[:, 0] if d.shape[-1] else fill, fill)
        return idx, has, dist

    pos_largest = pos_strategy in ("hard", "semihard")  # the farthest positive
    neg_largest = neg_strategy == "easy"  # the farthest negative
    if pos_strategy == "semihard":
        n_idx, n_ok, n_dist = pick(neg_largest, b.neg, allowed_neg_range)
        p_idx, p_ok, _ = pick(pos_largest, b.pos, allowed_pos_range, n_dist)
    elif neg_strategy == "semihard":
        p_idx, p_ok, p_dist = pick(pos_largest, b.pos, allowed_pos_range)
        n_idx, n_ok, _ = pick(neg_largest, b.neg, allowed_neg_range, p_dist)
    else:
        p_idx, p_ok, _ = pick(pos_largest, b.pos, allowed_pos_range)
        n_idx, n_ok, _ = pick(neg_largest, b.neg, allowed_neg_range)
    if "all" not in (pos_strategy, neg_strategy):
        p_ok = n_ok = p_ok & n_ok
    pos = b.pos if pos_strategy == "all" else p_ok[:, None] & (cols[None, :] == p_idx[:, None])
    neg = b.neg if neg_strategy == "all" else n_ok[:, None] & (cols[None, :] == n_idx[:, None])
    return pos, neg
