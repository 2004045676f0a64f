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
The losses of :mod:`lossjax.losses` with a ``mining`` / ``epsilon`` argument
call the matrix-level forms of these functions on their one similarity matrix.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lossjax import _checks as C
from lossjax import _pairwise as P

__all__ = [
    "batch_all_miner",
    "batch_hard_miner",
    "multi_similarity_miner",
    "semihard_miner",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


# --------------------------------------------------------------------------
# Matrix-level forms (shared with lossjax.losses._metric).
# --------------------------------------------------------------------------


def pair_masks(labels: Array, ref_labels: Array, valid: Array, ref_valid: Array, self_m: Array) -> tuple[Array, Array]:
    """``[n, M]`` positive (same label, not self) and negative (other label) pair masks over valid rows."""
    same = labels[:, None] == ref_labels[None, :]
    ok = valid[:, None] & ref_valid[None, :]
    return same & ok & ~self_m, ~same & ok


def hardest(mat: Array, mask: Array, *, largest: bool) -> tuple[Array, Array]:
    """Per row, the largest (or smallest) entry of ``mat`` among ``mask``; and whether one exists.

    Rows without any entry get 0 (finite values and gradients).
    """
    fill = -jnp.inf if largest else jnp.inf
    picked = jnp.where(mask, mat, fill)
    val = jnp.max(picked, axis=-1) if largest else jnp.min(picked, axis=-1)
    has = jnp.any(mask, axis=-1)
    return jnp.where(has, val, jnp.zeros((), mat.dtype)), has


def hardest_index(mat: Array, mask: Array, *, largest: bool) -> tuple[Array, Array]:
    """Per row, the column index of the largest (or smallest) masked entry, and whether one exists."""
    fill = -jnp.inf if largest else jnp.inf
    picked = jnp.where(mask, mat, fill)
    idx = jnp.argmax(picked, axis=-1) if largest else jnp.argmin(picked, axis=-1)
    return idx.astype(jnp.int32), jnp.any(mask, axis=-1)


def ms_mine(sim: Array, pos: Array, neg: Array, epsilon: float) -> tuple[Array, Array]:
    """Multi-similarity mining on a similarity matrix (no gradient flows through the masks).

    Keeps positives with ``s_ap - epsilon < max_n s_an`` and negatives with
    ``s_an + epsilon > min_p s_ap``.
    """
    s = jax.lax.stop_gradient(sim)
    max_neg = jnp.max(jnp.where(neg, s, -jnp.inf), axis=-1, keepdims=True)
    min_pos = jnp.min(jnp.where(pos, s, jnp.inf), axis=-1, keepdims=True)
    return pos & (s - epsilon < max_neg), neg & (s + epsilon > min_pos)


# --------------------------------------------------------------------------
# Public miners.
# --------------------------------------------------------------------------


def _prep(fn: str, embeddings: ArrayLike | None, labels: ArrayLike, where: ArrayLike | None):
    labels = C.check_array(fn, "labels", labels, ndim=1, dtype="int")
    n = labels.shape[0]
    x = None
    if embeddings is not None:
        x = C.check_array(fn, "embeddings", embeddings, ndim=2, dtype="float")
        C.check_shape_prefix(fn, ("embeddings", "labels"), x, labels, 1)
    mask = C.prepare_where(fn, where, (n,))
    valid = jnp.ones((n,), bool) if mask is None else mask
    pos, neg = pair_masks(labels, labels, valid, valid, P.self_mask(n, n, None))
    if x is not None:
        x = C.fill_masked(C.as_compute(x, C.compute_dtype(x)), mask)
    return x, pos, neg, valid


def _distance(fn: str, x: Array, metric: str, normalize: bool) -> Array:
    C.check_one_of(fn, "metric", metric, ("euclidean", "squared_euclidean"))
    if normalize:
        x = P.l2_normalize(x)
    return P.pairwise_similarity(x, metric=metric)


def batch_all_miner(labels: ArrayLike, *, where: ArrayLike | None = None) -> tuple[Array, Array]:
    """All positive and negative pairs of a batch: ``(pos [N, N], neg [N, N])`` boolean masks.

    ``pos[a, p]``: same label, ``a != p``; ``neg[a, n]``: different labels. The
    batch-all triplets are every ``(a, p, n)`` with ``pos[a, p] & neg[a, n]``
    (kept factored: ``N^2`` booleans, not ``N^3``).

    Args:
      labels: integer labels ``[N]``.
      where: optional ``[N]`` boolean mask; False rows are in no pair.

    Returns:
      ``(pos, neg)``, each ``[N, N]`` bool.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.miners import batch_all_miner
      >>> pos, neg = batch_all_miner(jnp.array([0, 1, 0]))
      >>> int(pos.sum()), int(neg.sum())
      (2, 4)
    """
    _, pos, neg, _ = _prep("batch_all_miner", None, labels, where)
    return pos, neg


def batch_hard_miner(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    metric: str = "euclidean",
    normalize: bool = True,
    where: ArrayLike | None = None,
) -> tuple[Array, Array, Array]:
    """Batch-hard triplets: per anchor, the farthest positive and the closest negative.

    Hermans, Beyer, Leibe, "In Defense of the Triplet Loss for Person
    Re-Identification" (2017, arXiv:1703.07737); pytorch-metric-learning's
    ``BatchHardMiner`` (``LpDistance``, normalized embeddings by default).

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      metric: ``"euclidean"`` or ``"squared_euclidean"``.
      normalize: L2-normalize the embeddings first.
      where: optional ``[N]`` boolean mask.

    Returns:
      ``(anchor_ok [N] bool, positive [N] int32, negative [N] int32)``: the
      triplet ``(a, positive[a], negative[a])`` is valid where ``anchor_ok[a]``.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.miners import batch_hard_miner
      >>> x = jnp.array([[0.0, 1.0], [0.0, 1.1], [1.0, 0.0], [0.1, 1.0]])
      >>> ok, p, n = batch_hard_miner(x, jnp.array([0, 0, 1, 1]), normalize=False)
      >>> ok.tolist(), p.tolist(), n.tolist()
      ([True, True, True, True], [1, 0, 3, 2], [3, 3, 0, 0])
    """
    fn = "batch_hard_miner"
    x, pos, neg, valid = _prep(fn, embeddings, labels, where)
    d = _distance(fn, x, metric, normalize)
    p, has_p = hardest_index(d, pos, largest=True)
    n, has_n = hardest_index(d, neg, largest=False)
    return has_p & has_n & valid, p, n


def semihard_miner(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float = 0.2,
    metric: str = "euclidean",
    normalize: bool = True,
    where: ArrayLike | None = None,
) -> Array:
    """Semi-hard triplets: ``d(a, p) < d(a, n) <= d(a, p) + margin``, as an ``[N, N, N]`` mask.

    pytorch-metric-learning's ``TripletMarginMiner(type_of_triplets="semihard")``
    (Schroff et al., "FaceNet", 2015, arXiv:1503.03832 introduced semi-hard
    negatives). The mask has ``N^3`` booleans: use it for inspection or small
    batches; :func:`lossjax.losses.batch_triplet_loss` with
    ``mining="semihard"`` computes the same loss in ``O(N^2 log N)`` time and
    ``O(N^2)`` memory without it.

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      margin: the semi-hard band width (> 0).
      metric: ``"euclidean"`` or ``"squared_euclidean"``.
      normalize: L2-normalize the embeddings first.
      where: optional ``[N]`` boolean mask.

    Returns:
      ``[N, N, N]`` bool, indexed ``[anchor, positive, negative]``.

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
    x, pos, neg, _ = _prep(fn, embeddings, labels, where)
    d = _distance(fn, x, metric, normalize)
    gap = d[:, None, :] - d[:, :, None]  # d(a, n) - d(a, p), [a, p, n]
    return pos[:, :, None] & neg[:, None, :] & (gap > 0) & (gap <= margin)


def multi_similarity_miner(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    epsilon: float = 0.1,
    where: ArrayLike | None = None,
) -> tuple[Array, Array]:
    r"""The multi-similarity miner: informative pairs by relative cosine similarity.

    .. math::
        \text{keep } (a,p) \iff S_{ap} - \epsilon < \max_{n} S_{an},\qquad
        \text{keep } (a,n) \iff S_{an} + \epsilon > \min_{p} S_{ap}

    Wang et al., "Multi-Similarity Loss with General Pair Weighting for Deep
    Metric Learning" (CVPR 2019, arXiv:1904.06627); pytorch-metric-learning's
    ``MultiSimilarityMiner(epsilon=0.1)``.

    Args:
      embeddings: ``[N, D]`` (cosine similarity is used).
      labels: integer labels ``[N]``.
      epsilon: the mining margin (>= 0).
      where: optional ``[N]`` boolean mask.

    Returns:
      ``(pos [N, N], neg [N, N])`` boolean masks of the kept pairs.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.miners import multi_similarity_miner
      >>> x = jnp.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [1.0, 0.5]])
      >>> pos, neg = multi_similarity_miner(x, jnp.array([0, 0, 1, 1]))
      >>> pos.astype(int).tolist()
      [[0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]]
    """
    fn = "multi_similarity_miner"
    C.check_positive(fn, "epsilon", epsilon, allow_zero=True)
    x, pos, neg, _ = _prep(fn, embeddings, labels, where)
    sim = P.pairwise_similarity(x, metric="cosine")
    return ms_mine(sim, pos, neg, epsilon)
