"""Metric-learning and contrastive losses: pairs, triplets, InfoNCE and friends.

Two input forms:

- **labelled batch**: ``embeddings [N, D]`` + integer ``labels [N]`` -> one
  scalar for the batch (kind ``batch``). Positives are the other examples with
  the same label, negatives those with another label.
- **paired views**: ``embeddings_a [B, D]`` + ``embeddings_b [B, D]`` (row
  ``i`` of each is a positive pair; every other row of ``embeddings_b`` is a
  negative) -> a loss per pair ``[B]`` (kind ``per_example``).

Every loss builds its ``[N, M]`` similarity or distance matrix once with
:mod:`lossjax._pairwise` (one matmul, never ``[N, M, D]``; ``distance=``
chooses the geometry), computes in float32 for half-precision inputs, and
excludes padded examples (``where``) from every pair as anchor, positive and
negative. Labelled batches and their pair masks come from
:mod:`lossjax._mining`, which the public miners (:mod:`lossjax.miners`) use too.

**Labels** of a labelled batch are class ids compared only for equality (there
is no class axis): every integer is a valid id, so "out of range" does not
apply here (negative ids or ids above the batch size are ordinary classes).
Losses that index ``proxies [C, D]`` with labels (the proxies and margins
families) give NaN for an out-of-range label in an unmasked row instead.

**Many devices.** Losses that need the whole batch take ``axis_name``. Inside
``shard_map``/``pmap`` with the batch split over that axis, each device
gathers the candidates of all devices (``all_gather``), computes the terms of
the anchors it owns, and the total is combined with ``psum`` and a global
normalizer, so the value (replicated) and the gradient with respect to each
device's shard equal the single-device result on the concatenated batch.
Per-example losses return each device's own rows.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax._blocked import contrastive_rows
from lossjax._mining import (
    CrossBatchMemory,
    hardest_index,
    labelled_batch,
    multi_similarity_mine,
    paired_batch,
)
from lossjax._pairwise import l2_normalize, masked_logsumexp, pairwise_similarity, self_mask
from lossjax._parallel import axis_offset, gather_batch, psum
from lossjax.registry import Sample, register

__all__ = [
    "CrossBatchMemory",
    "batch_triplet_loss",
    "batch_triplet_loss_per_anchor",
    "circle_loss",
    "circle_loss_per_anchor",
    "continuously_weighted_contrastive_loss",
    "contrastive_pair_loss",
    "cosine_distance",
    "cosine_similarity",
    "fast_ap_loss",
    "fast_ap_loss_per_anchor",
    "generalized_lifted_structure_loss",
    "generalized_lifted_structure_loss_per_anchor",
    "histogram_loss",
    "infonce_loss",
    "intra_pair_variance_loss",
    "intra_pair_variance_loss_per_anchor",
    "lifted_structure_loss",
    "lifted_structure_loss_per_anchor",
    "margin_loss",
    "multi_similarity_loss",
    "multi_similarity_loss_per_anchor",
    "nca_loss",
    "nca_loss_per_anchor",
    "npair_loss",
    "npair_loss_per_anchor",
    "ntxent_loss",
    "ntxent_loss_per_anchor",
    "orthogonal_projection_loss",
    "pairwise_contrastive_loss",
    "pairwise_contrastive_loss_per_anchor",
    "sigmoid_contrastive_loss",
    "snr_contrastive_loss",
    "soft_infonce_loss",
    "supervised_contrastive_loss",
    "supervised_contrastive_loss_per_anchor",
    "symmetric_infonce_loss",
    "threshold_consistent_margin_loss",
    "triplet_margin_loss",
    "tuplet_margin_loss",
    "tuplet_margin_loss_per_anchor",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

FAMILY = "metric"
_PML = "KevinMusgrave/pytorch-metric-learning"


# --------------------------------------------------------------------------
# Samples for the conformance suite.
# --------------------------------------------------------------------------

_LABELS = np.array([0, 0, 1, 1, 2, 2, 0, 1, 2], np.int32)


def _labelled_sample(scale: float = 1.0, bf16_tol: float | None = None, **kw) -> Sample:
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(9, 5)) * scale).astype(np.float32)
    return Sample(args=(x, _LABELS), bf16_tol=bf16_tol, **kw)


def _paired_sample(bf16_tol: float | None = None, diff_argnums=(0, 1), **kw) -> Sample:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(6, 4)).astype(np.float32)
    b = (a + 0.5 * rng.normal(size=(6, 4))).astype(np.float32)
    return Sample(args=(a, b), diff_argnums=diff_argnums, bf16_tol=bf16_tol, **kw)


# --------------------------------------------------------------------------
# Shared internals.
# --------------------------------------------------------------------------


class _Paired(NamedTuple):
    a: Array  # local rows [n, D]
    b: Array  # local rows [n, D]
    ag: Array  # gathered [M, D]
    bg: Array  # gathered [M, D]
    cols: Array  # [n, M] valid candidate columns (valid row and valid column)
    diag: Array  # [n, M] the positive (same global index)
    mask: Array | None  # [n] or None
    dtype: jnp.dtype


def _paired(fn: str, a: ArrayLike, b: ArrayLike, where, axis_name, names=("embeddings_a", "embeddings_b")):
    a, b, mask, dtype = paired_batch(fn, a, b, where, names=names)
    n = a.shape[0]
    valid = jnp.ones((n,), bool) if mask is None else mask
    ag, bg, vg = (gather_batch(t, axis_name) for t in (a, b, valid))
    cols = valid[:, None] & vg[None, :]
    return _Paired(a, b, ag, bg, cols, self_mask(n, ag.shape[0], axis_name=axis_name), mask, dtype)


def _count(mask: Array, dtype) -> Array:
    return jnp.sum(mask).astype(dtype)


def _global_mean(total: Array, count: Array, axis_name) -> Array:
    """``psum(total) / max(psum(count), 1)``: 0 (not NaN) when nothing counts."""
    total = psum(total, axis_name)
    count = psum(count, axis_name)
    return total / jnp.maximum(count, jnp.ones((), count.dtype))


def _avg_nonzero(losses: Array, axis_name) -> Array:
    """pytorch-metric-learning's ``AvgNonZeroReducer``: the mean of the strictly positive losses."""
    return _global_mean(jnp.sum(losses), _count(losses > 0, losses.dtype), axis_name)


_TRIPLET_DISTANCES = ("euclidean", "squared_euclidean")


def _temperature(fn: str, temperature, dtype) -> Array:
    C.check_positive(fn, "temperature", temperature)
    return jnp.asarray(temperature).astype(dtype)


def _check_block(fn: str, block_size) -> None:
    if block_size is not None:
        C.check_int(fn, "block_size", block_size, 1, static=True)


def _blocked_views(kind: str, x: Array, y: Array, valid: Array, valid_all: Array, t: Array, axis_name, **kw):
    """Rows ``x`` (this device's) against the gathered keys ``y``, the positive of row ``i`` being its own index."""
    n = x.shape[0]
    idx = jnp.arange(n, dtype=jnp.int32) + axis_offset(axis_name, n)
    cols = jnp.arange(y.shape[0], dtype=jnp.int32)
    return contrastive_rows(
        kind, x, y, inv_temperature=1 / t, row_valid=valid, col_valid=valid_all, row_labels=idx, col_labels=cols,
        row_index=idx, **kw,
    )  # fmt: skip


# --------------------------------------------------------------------------
# Pair and triplet losses (distances).
# --------------------------------------------------------------------------


@register(
    "pairwise_contrastive_loss",
    aliases=("contrastive_loss",),
    family=FAMILY,
    kind="batch",
    formula="mean_{nonzero}[d_ap - m_pos]_+ + mean_{nonzero}[m_neg - d_an]_+",
    paper="Dimensionality Reduction by Learning an Invariant Mapping (Hadsell, Chopra, LeCun, CVPR 2006); "
    "Deep Metric Learning for Computer Vision: A Brief Overview (2023, arXiv:2312.10046)",
    reference=f"{_PML}::losses/contrastive_loss.py::ContrastiveLoss",
    sample=lambda: _labelled_sample(
        variants=({"pos_margin": 0.2, "neg_margin": 1.5, "distance": "squared_euclidean", "normalize": False},)
    ),
    runtime=("axis_name", "memory"),
)
def pairwise_contrastive_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    pos_margin: float = 0.0,
    neg_margin: float = 1.0,
    distance: str = "euclidean",
    normalize: bool = True,
    where: ArrayLike | None = None,
    axis_name=None,
    memory: CrossBatchMemory | None = None,
) -> Array:
    r"""Pair contrastive loss over all positive and negative pairs of a labelled batch.

    .. math::
        \mathcal L = \operatorname{mean}_{>0}\big[d_{ap} - m_+\big]_+
                   + \operatorname{mean}_{>0}\big[m_- - d_{an}\big]_+

    where each mean runs over the pairs whose term is strictly positive
    (pytorch-metric-learning's ``AvgNonZeroReducer``; 0 when there are none).

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      pos_margin: ``m_+``; positive pairs closer than this cost nothing.
      neg_margin: ``m_-``; negative pairs farther than this cost nothing.
      distance: ``"euclidean"`` (default) or ``"squared_euclidean"``.
      normalize: L2-normalize the embeddings first (PML's ``LpDistance`` default).
      where: optional ``[N]`` boolean mask of real (non-padded) examples.
      axis_name: mapped axis to gather the batch over (``shard_map``/``pmap``).
      memory: optional :class:`CrossBatchMemory` (XBM): the anchors of this batch
        are paired with the memory after this batch's enqueue (stop-gradient
        references) instead of the batch; update it with ``memory.update(...)``.

    Returns:
      Scalar loss.

    Paper: Hadsell, Chopra, LeCun, "Dimensionality Reduction by Learning an
    Invariant Mapping", CVPR 2006; margins as in pytorch-metric-learning's
    ``ContrastiveLoss(pos_margin=0, neg_margin=1)``.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
      >>> round(float(lossjax.losses.pairwise_contrastive_loss(x, jnp.array([0, 0, 1]))), 4)
      2.3146
    """
    fn = "pairwise_contrastive_loss"
    _, pos_l, neg_l = _contrastive_terms(
        fn, embeddings, labels, pos_margin, neg_margin, distance, normalize, where, axis_name, memory
    )
    return _avg_nonzero(pos_l, axis_name) + _avg_nonzero(neg_l, axis_name)


def _contrastive_terms(fn, embeddings, labels, pos_margin, neg_margin, distance, normalize, where, axis_name, memory):
    """The labelled batch and its ``[n, M]`` positive and negative pair terms (0 off their pairs)."""
    C.check_one_of(fn, "distance", distance, _TRIPLET_DISTANCES)
    C.check_positive(fn, "pos_margin", pos_margin, allow_zero=True)
    C.check_positive(fn, "neg_margin", neg_margin, allow_zero=True)
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name, normalize=normalize, memory=memory)
    d = pairwise_similarity(b.x, b.x_all, distance=distance)
    zero = jnp.zeros((), d.dtype)
    pos_l = jnp.where(b.pos, jax.nn.relu(d - pos_margin), zero)
    neg_l = jnp.where(b.neg, jax.nn.relu(neg_margin - d), zero)
    return b, pos_l, neg_l


@register(
    "pairwise_contrastive_loss_per_anchor",
    family=FAMILY,
    kind="per_example",
    formula="l_a = mean_{p pos of a}[d_ap - m_pos]_+ + mean_{n neg of a}[m_neg - d_an]_+  (an empty mean is 0)",
    paper="Dimensionality Reduction by Learning an Invariant Mapping (Hadsell, Chopra, LeCun, CVPR 2006)",
    reference=f"{_PML}::losses/contrastive_loss.py::ContrastiveLoss + reducers/per_anchor_reducer.py::"
    "PerAnchorReducer(DoNothingReducer())",
    sample=_labelled_sample,
    runtime=("axis_name",),
)
def pairwise_contrastive_loss_per_anchor(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    pos_margin: float = 0.0,
    neg_margin: float = 1.0,
    distance: str = "euclidean",
    normalize: bool = True,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""The pair contrastive loss of each anchor, unreduced ``[N]``.

    .. math::
        \ell_a = \frac{1}{|\mathcal P_a|}\sum_{p\in\mathcal P_a}\big[d_{ap} - m_+\big]_+
               + \frac{1}{|\mathcal N_a|}\sum_{n\in\mathcal N_a}\big[m_- - d_{an}\big]_+

    (an empty mean is 0): pytorch-metric-learning's ``ContrastiveLoss`` with
    ``PerAnchorReducer(DoNothingReducer())`` on each of its two sub-losses,
    summed. Every pair counts in its anchor's mean, zero terms included. The
    mean of ``l_a`` is not :func:`pairwise_contrastive_loss`, which averages
    the nonzero pair terms of the whole batch.

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      pos_margin, neg_margin, distance, normalize: as in :func:`pairwise_contrastive_loss`.
      where: optional ``[N]`` boolean mask of real examples (0 there).
      axis_name: mapped axis to gather the batch over (each device returns its own anchors).

    Returns:
      Per-anchor loss ``[N]``.

    Paper: Hadsell, Chopra, LeCun, "Dimensionality Reduction by Learning an
    Invariant Mapping", CVPR 2006.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[0.0], [0.5], [0.8]])
      >>> out = lossjax.losses.pairwise_contrastive_loss_per_anchor(x, jnp.array([0, 0, 1]), normalize=False)
      >>> [round(v, 4) for v in out.tolist()]  # anchor 2 has no positive: the mean of its two negatives only
      [0.7, 1.2, 0.45]
    """
    fn = "pairwise_contrastive_loss_per_anchor"
    b, pos_l, neg_l = _contrastive_terms(
        fn, embeddings, labels, pos_margin, neg_margin, distance, normalize, where, axis_name, None
    )
    dtype = pos_l.dtype
    pos = _per_anchor_mean(jnp.sum(pos_l, axis=-1), jnp.sum(b.pos, axis=-1).astype(dtype))
    return pos + _per_anchor_mean(jnp.sum(neg_l, axis=-1), jnp.sum(b.neg, axis=-1).astype(dtype))


def _triplet_sample() -> Sample:
    rng = np.random.default_rng(2)
    a, p, n = (rng.normal(size=(6, 4)).astype(np.float32) for _ in range(3))
    return Sample(args=(a, p, n), diff_argnums=(0, 1, 2))


@register(
    "triplet_margin_loss",
    family=FAMILY,
    kind="per_example",
    formula="max(0, ||a - p||_q - ||a - n||_q + margin),  ||v||_q = (sum |v|^q + epsilon)^(1/q)",
    paper="Learning local feature descriptors with triplets and shallow convolutional neural networks "
    "(Balntas et al., BMVC 2016); FaceNet (2015, arXiv:1503.03832)",
    reference="optax.triplet_margin_loss(margin=1.0, norm_degree=2, eps=1e-6)",
    sample=_triplet_sample,
)
def triplet_margin_loss(
    anchors: ArrayLike,
    positives: ArrayLike,
    negatives: ArrayLike,
    *,
    margin: float = 1.0,
    norm_degree: float = 2.0,
    epsilon: float = 1e-6,
    where: ArrayLike | None = None,
) -> Array:
    r"""Triplet margin loss on given triplets (one per row), unreduced.

    .. math::
        \ell_i = \max\big(0,\ \|a_i - p_i\|_q - \|a_i - n_i\|_q + m\big),\qquad
        \|v\|_q = \Big(\sum_d |v_d|^q + \epsilon\Big)^{1/q}

    ``epsilon`` inside the root keeps the gradient finite when an anchor equals
    its positive (optax's convention; PyTorch adds its epsilon to the difference).

    Args:
      anchors, positives, negatives: ``[..., D]`` each, the same shape.
      margin: ``m`` (>= 0).
      norm_degree: ``q`` (>= 1, finite: ``q = inf`` is rejected, the max-norm is not this formula's limit
        with ``epsilon`` inside the root).
      epsilon: smoothing inside the root (> 0).
      where: optional boolean mask of the batch shape ``[...]``.

    Returns:
      Per-triplet loss ``[...]``.

    Paper: Balntas, Riba, Ponsa, Mikolajczyk, "Learning local feature
    descriptors with triplets and shallow convolutional neural networks",
    BMVC 2016; Schroff, Kalenichenko, Philbin, "FaceNet", 2015, arXiv:1503.03832.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> a = jnp.array([[0.0, 0.0], [1.0, 1.0]])
      >>> p = jnp.array([[0.0, 1.0], [1.0, 0.0]])
      >>> n = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> lossjax.losses.triplet_margin_loss(a, p, n).round(4)
      Array([1., 1.], dtype=float32)
    """
    fn = "triplet_margin_loss"
    a = C.check_array(fn, "anchors", anchors, min_ndim=1, dtype="float")
    p = C.check_array(fn, "positives", positives, min_ndim=1, dtype="float")
    n = C.check_array(fn, "negatives", negatives, min_ndim=1, dtype="float")
    C.check_same_shape(fn, ("anchors", "positives"), a, p)
    C.check_same_shape(fn, ("anchors", "negatives"), a, n)
    C.check_positive(fn, "margin", margin, allow_zero=True)
    C.check_in_range(fn, "norm_degree", norm_degree, 1.0, float("inf"), high_inclusive=False)
    C.check_positive(fn, "epsilon", epsilon)
    dtype = C.compute_dtype(a, p, n)
    mask = C.prepare_where(fn, where, a.shape[:-1])
    a, p, n = (C.fill_masked(C.as_compute(t, dtype), mask) for t in (a, p, n))

    def dist(u, v):
        s = jnp.sum(jnp.abs(u - v) ** norm_degree, axis=-1) + epsilon
        return s ** (1.0 / norm_degree)

    loss = jax.nn.relu(dist(a, p) - dist(a, n) + margin)
    return C.zero_masked(loss, mask)


def _sorted_negative_sums(d: Array, neg: Array, thresholds: Array, *, side: str) -> tuple[Array, Array]:
    """For each row ``a`` and threshold ``t[a, p]``: the count and the sum of the
    negatives ``d[a, n]`` below ``t`` (``side="left"``: ``<``; ``"right"``: ``<=``).

    One sort of each row of negatives and a prefix sum: ``O(n M log M)`` time,
    ``O(n M)`` memory (instead of the ``[n, M, M]`` triplet tensor).
    """
    srt = jnp.sort(jnp.where(neg, d, jnp.inf), axis=-1)
    srt0 = jnp.where(jnp.isfinite(srt), srt, jnp.zeros((), d.dtype))
    csum = jnp.concatenate([jnp.zeros((*d.shape[:-1], 1), d.dtype), jnp.cumsum(srt0, axis=-1)], axis=-1)
    counts = jax.vmap(lambda row, q: jnp.searchsorted(row, q, side=side))(srt, thresholds)
    sums = jnp.take_along_axis(csum, counts, axis=-1)
    return counts.astype(d.dtype), sums


@register(
    "batch_triplet_loss",
    aliases=("triplet_loss",),
    family=FAMILY,
    kind="batch",
    formula="mean_{nonzero, mined (a,p,n)} [d_ap - d_an + margin]_+",
    paper="In Defense of the Triplet Loss for Person Re-Identification (2017, arXiv:1703.07737); "
    "FaceNet (2015, arXiv:1503.03832)",
    reference=f"{_PML}::losses/triplet_margin_loss.py::TripletMarginLoss + miners/batch_hard_miner.py, "
    "miners/triplet_margin_miner.py",
    sample=lambda: _labelled_sample(
        variants=(
            {"mining": "hard", "margin": 0.2, "distance": "squared_euclidean", "normalize": False},
            {"mining": "semihard", "margin": 0.2},
            {"smooth_loss": True, "swap": True},
        )
    ),
    runtime=("axis_name", "memory"),
)
def batch_triplet_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float = 0.05,
    mining: str = "all",
    distance: str = "euclidean",
    normalize: bool = True,
    smooth_loss: bool = False,
    swap: bool = False,
    where: ArrayLike | None = None,
    axis_name=None,
    memory: CrossBatchMemory | None = None,
) -> Array:
    r"""Triplet loss from a labelled batch with batch-all, batch-hard or semi-hard mining.

    .. math::
        \mathcal L = \operatorname{mean}_{(a,p,n)\in T,\ \ell>0}\ \big[d_{ap} - d_{an} + m\big]_+

    ``mining`` chooses the triplets ``T``:

    - ``"all"``: every (anchor, positive, negative) of the batch
      (pytorch-metric-learning ``TripletMarginLoss`` with no miner).
    - ``"hard"``: per anchor, the farthest positive and the closest negative
      (Hermans et al. 2017; PML ``BatchHardMiner``).
    - ``"semihard"``: triplets with ``d_ap < d_an <= d_ap + m`` (PML
      ``TripletMarginMiner(margin=m, type_of_triplets="semihard")``).

    The mean runs over the triplets with a strictly positive loss (PML's
    ``AvgNonZeroReducer``). ``"all"`` and ``"semihard"`` never build the
    ``[N, N, N]`` triplet tensor: each anchor's negatives are sorted once and a
    prefix sum gives, for every positive, the count and sum of the violating
    negatives (``O(N^2 log N)`` time, ``O(N^2)`` memory, exact gradients).

    PML's two ``TripletMarginLoss`` options: ``smooth_loss`` replaces
    ``[v]_+`` by ``softplus(v) = log(1 + e^v)`` (every mined triplet then
    counts in the mean); ``swap`` replaces ``d_an`` by
    ``min(d_an, d_pn)`` (the positive-negative distance when it violates the
    margin more; Balntas et al. 2016). Mining still uses ``d_an``. With either
    option ``"all"`` and ``"semihard"`` build the ``[N, N, N]`` triplet tensor.
    Under ``memory`` the swap distance is the one between the two references
    (PML's ``CrossBatchMemory`` indexes its ``[batch, memory]`` matrix with two
    memory indices instead: not comparable).

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      margin: ``m`` (> 0); PML's default 0.05 assumes normalized embeddings.
      mining: ``"all"``, ``"hard"`` or ``"semihard"``.
      distance: ``"euclidean"`` or ``"squared_euclidean"``.
      normalize: L2-normalize the embeddings first.
      smooth_loss: softplus instead of the hinge (PML's ``smooth_loss``).
      swap: use ``min(d_an, d_pn)`` as the negative distance (PML's ``swap``).
      where: optional ``[N]`` boolean mask of real examples.
      axis_name: mapped axis to gather the batch over.
      memory: optional :class:`CrossBatchMemory` (XBM): the anchors of this batch
        are paired with the memory after this batch's enqueue (stop-gradient
        references) instead of the batch; update it with ``memory.update(...)``.

    Returns:
      Scalar loss.

    Paper: Hermans, Beyer, Leibe, "In Defense of the Triplet Loss for Person
    Re-Identification", 2017, arXiv:1703.07737; Schroff et al., "FaceNet", 2015,
    arXiv:1503.03832; swap: Balntas, Riba, Ponsa, Mikolajczyk, "Learning local
    feature descriptors with triplets and shallow convolutional neural
    networks", BMVC 2016.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[0.0], [1.0], [0.5], [3.0]])
      >>> y = jnp.array([0, 0, 1, 1])
      >>> float(lossjax.losses.batch_triplet_loss(x, y, margin=1.0, mining="hard", normalize=False))
      1.875
    """
    fn = "batch_triplet_loss"
    sums, nonzero, _ = _triplet_terms(
        fn, embeddings, labels, margin, mining, distance, normalize, smooth_loss, swap, where, axis_name, memory
    )
    return _global_mean(jnp.sum(sums), jnp.sum(nonzero), axis_name)


def _triplet_terms(fn, embeddings, labels, margin, mining, distance, normalize, smooth_loss, swap, where, axis_name,
                   memory, *, tuples: bool = False):  # fmt: skip
    """Per anchor (this device's rows): the sum of its mined triplets' losses, how many are > 0 and (``tuples``)
    how many triplets it has."""
    C.check_one_of(fn, "mining", mining, ("all", "hard", "semihard"))
    C.check_one_of(fn, "distance", distance, _TRIPLET_DISTANCES)
    C.check_positive(fn, "margin", margin)
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name, normalize=normalize, memory=memory)
    d = pairwise_similarity(b.x, b.x_all, distance=distance)
    zero = jnp.zeros((), d.dtype)
    hinge = jax.nn.softplus if smooth_loss else jax.nn.relu
    d_refs = pairwise_similarity(b.x_all, b.x_all, distance=distance) if swap else None  # d(p, n)
    if mining == "hard":
        p, has_p = hardest_index(d, b.pos, largest=True)
        n, has_n = hardest_index(d, b.neg, largest=False)
        ok = has_p & has_n
        dp = jnp.take_along_axis(d, p[:, None], axis=-1)[:, 0] if d.shape[-1] else zero * p
        dn = jnp.take_along_axis(d, n[:, None], axis=-1)[:, 0] if d.shape[-1] else zero * n
        if swap:
            dn = jnp.minimum(dn, d_refs[p, n] if d.shape[-1] else dn)
        loss = jnp.where(ok, hinge(dp - dn + margin), zero)
        return loss, (loss > 0).astype(d.dtype), ok.astype(d.dtype)
    if smooth_loss or swap:  # the [n, M, M] triplet tensor
        d_ap, d_an = d[:, :, None], d[:, None, :]
        keep = b.pos[:, :, None] & b.neg[:, None, :]
        if mining == "semihard":  # PML's TripletMarginMiner: 0 < d_an - d_ap <= margin
            gap = d_an - d_ap
            keep = keep & (gap > 0) & (gap <= margin)
        d_neg = jnp.minimum(d_an, d_refs[None, :, :]) if swap else d_an
        loss = jnp.where(keep, hinge(jnp.where(keep, d_ap - d_neg + margin, zero)), zero)
        count = jnp.sum(keep, axis=(1, 2)).astype(d.dtype)
        return jnp.sum(loss, axis=(1, 2)), jnp.sum(loss > 0, axis=(1, 2)).astype(d.dtype), count
    c_hi, s_hi = _sorted_negative_sums(d, b.neg, d + margin, side="left")
    if mining == "semihard":
        c_lo, s_lo = _sorted_negative_sums(d, b.neg, d, side="right")
    else:
        c_lo, s_lo = jnp.zeros_like(c_hi), jnp.zeros_like(s_hi)
    cnt = jnp.maximum(c_hi - c_lo, zero)
    total = jnp.where(b.pos, cnt * (d + margin) - (s_hi - s_lo), zero)
    cnt = jnp.where(b.pos, cnt, zero)
    count = None
    if tuples:  # every mined triplet, a zero loss included
        if mining == "semihard":  # 0 < d_an - d_ap <= margin
            c_in, _ = _sorted_negative_sums(d, b.neg, d + margin, side="right")
            count = jnp.sum(jnp.where(b.pos, c_in - c_lo, zero), axis=-1)
        else:
            count = jnp.sum(b.pos, axis=-1).astype(d.dtype) * jnp.sum(b.neg, axis=-1).astype(d.dtype)
    return jnp.sum(total, axis=-1), jnp.sum(cnt, axis=-1), count


def _per_anchor_mean(total: Array, count: Array) -> Array:
    """PML ``PerAnchorReducer``'s aggregation: an anchor's mean over its tuples, 0 when it has none."""
    ok = count > 0
    return jnp.where(ok, total / jnp.where(ok, count, jnp.ones((), count.dtype)), jnp.zeros((), total.dtype))


@register(
    "batch_triplet_loss_per_anchor",
    family=FAMILY,
    kind="per_example",
    formula="l_a = mean_{mined (a,p,n)} [d_ap - d_an + margin]_+  (0 if the anchor has no triplet)",
    paper="In Defense of the Triplet Loss for Person Re-Identification (2017, arXiv:1703.07737); "
    "FaceNet (2015, arXiv:1503.03832)",
    reference=f"{_PML}::losses/triplet_margin_loss.py::TripletMarginLoss(reducer=DoNothingReducer()), "
    "averaged per anchor as reducers/per_anchor_reducer.py::aggregation_func",
    sample=lambda: _labelled_sample(
        variants=(
            {"mining": "hard", "swap": True},
            {"mining": "semihard", "margin": 0.2},
            {"mining": "semihard", "margin": 0.2, "smooth_loss": True, "swap": True},
        )
    ),
    runtime=("axis_name",),
)
def batch_triplet_loss_per_anchor(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float = 0.05,
    mining: str = "all",
    distance: str = "euclidean",
    normalize: bool = True,
    smooth_loss: bool = False,
    swap: bool = False,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""The triplet loss of each anchor: the mean over its mined triplets, unreduced ``[N]``.

    .. math::
        \ell_a = \frac{1}{|T_a|}\sum_{(a,p,n)\in T_a} \big[d_{ap} - d_{an} + m\big]_+
        \quad (0 \text{ if } T_a = \emptyset)

    with ``T_a`` the triplets of anchor ``a`` that :func:`batch_triplet_loss`
    mines (``mining``, ``smooth_loss`` and ``swap`` as there). Zero-loss
    triplets count in ``|T_a|``: this is PML's per-triplet output
    (``reducer=DoNothingReducer()``) averaged per anchor the way its
    ``PerAnchorReducer`` averages pairs (PML's ``PerAnchorReducer`` refuses
    triplets). The mean of ``l_a`` is not :func:`batch_triplet_loss`, which
    averages the nonzero triplets of the whole batch.

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      margin, mining, distance, normalize, smooth_loss, swap: as in :func:`batch_triplet_loss`.
      where: optional ``[N]`` boolean mask of real examples (0 there).
      axis_name: mapped axis to gather the batch over (each device returns its own anchors).

    Returns:
      Per-anchor loss ``[N]``.

    Paper: Hermans, Beyer, Leibe, "In Defense of the Triplet Loss for Person
    Re-Identification", 2017, arXiv:1703.07737.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[0.0], [1.0], [1.2]])
      >>> out = lossjax.losses.batch_triplet_loss_per_anchor(x, jnp.array([0, 0, 1]), margin=0.5, normalize=False)
      >>> [round(v, 4) for v in out.tolist()]  # anchor 2 has no positive, so no triplet
      [0.3, 1.3, 0.0]
    """
    fn = "batch_triplet_loss_per_anchor"
    sums, _, count = _triplet_terms(
        fn, embeddings, labels, margin, mining, distance, normalize, smooth_loss, swap, where, axis_name, None,
        tuples=True,
    )  # fmt: skip
    return _per_anchor_mean(sums, count)


@register(
    "lifted_structure_loss",
    family=FAMILY,
    kind="batch",
    formula="mean_{(i,j) pos} 1/2 [log(sum_{(i,k) neg} e^{m_neg - d_ik} + sum_{(j,l) neg} e^{m_neg - d_jl}) "
    "+ d_ij - m_pos]_+^2",
    paper="Deep Metric Learning via Lifted Structured Feature Embedding (2016, arXiv:1511.06452)",
    reference=f"{_PML}::losses/lifted_structure_loss.py::LiftedStructureLoss",
    sample=lambda: _labelled_sample(variants=({"neg_margin": 3.0, "pos_margin": 0.5, "normalize": False},)),
    runtime=("axis_name",),
)
def lifted_structure_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    neg_margin: float = 1.0,
    pos_margin: float = 0.0,
    distance: str = "euclidean",
    normalize: bool = True,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""Lifted structured loss: each positive pair against all negatives of both its ends.

    .. math::
        J_{ij} = \log\Big(\sum_{k\in\mathcal N_i} e^{m_- - d_{ik}} + \sum_{l\in\mathcal N_j} e^{m_- - d_{jl}}\Big)
                 + d_{ij} - m_+,\qquad
        \mathcal L = \frac{1}{|\mathcal P|}\sum_{(i,j)\in\mathcal P} \tfrac12 [J_{ij}]_+^2

    over ordered positive pairs ``P`` (each unordered pair counted twice, hence
    the 1/2), as pytorch-metric-learning's ``LiftedStructureLoss``. A pair
    whose ends have no negatives has a log term of 0 (PML's convention).

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      neg_margin: ``m_-`` (the paper's ``alpha``).
      pos_margin: ``m_+``.
      distance: ``"euclidean"`` or ``"squared_euclidean"``.
      normalize: L2-normalize the embeddings first.
      where: optional ``[N]`` boolean mask.
      axis_name: mapped axis to gather the batch over.

    Returns:
      Scalar loss.

    Paper: Oh Song, Xiang, Jegelka, Savarese, "Deep Metric Learning via Lifted
    Structured Feature Embedding", CVPR 2016, arXiv:1511.06452.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[0.0], [0.5], [1.5]])
      >>> round(float(lossjax.losses.lifted_structure_loss(x, jnp.array([0, 0, 1]), normalize=False)), 4)
      0.4744
    """
    fn = "lifted_structure_loss"
    b, per_pair, any_neg = _lifted_pairs(fn, embeddings, labels, neg_margin, pos_margin, distance, normalize, where,
                                         axis_name)  # fmt: skip
    loss = _global_mean(jnp.sum(per_pair), _count(b.pos, per_pair.dtype), axis_name)
    return jnp.where(any_neg, loss, jnp.zeros((), loss.dtype))


def _lifted_pairs(fn, embeddings, labels, neg_margin, pos_margin, distance, normalize, where, axis_name):
    """The labelled batch, each positive pair's term ``[n, M]`` (0 off them) and whether the batch has a negative."""
    C.check_one_of(fn, "distance", distance, _TRIPLET_DISTANCES)
    C.check_positive(fn, "neg_margin", neg_margin, allow_zero=True)
    C.check_positive(fn, "pos_margin", pos_margin, allow_zero=True)
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name, normalize=normalize)
    d = pairwise_similarity(b.x, b.x_all, distance=distance)
    zero = jnp.zeros((), d.dtype)
    lse = masked_logsumexp(neg_margin - d, b.neg)  # [n]
    has = jnp.any(b.neg, axis=-1)
    lse_g = gather_batch(lse, axis_name)
    has_g = gather_batch(has, axis_name)
    # log(e^{lse_i} + e^{lse_j}) over the ends that have negatives; 0 if neither.
    li = jnp.where(has, lse, zero)[:, None]
    lj = jnp.where(has_g, lse_g, zero)[None, :]
    hi, hj = has[:, None], has_g[None, :]
    m = jax.lax.stop_gradient(jnp.maximum(jnp.where(hi, li, -jnp.inf), jnp.where(hj, lj, -jnp.inf)))
    anyh = hi | hj
    m = jnp.where(anyh, m, zero)
    s = jnp.where(hi, jnp.exp(jnp.where(hi, li - m, zero)), zero)
    s = s + jnp.where(hj, jnp.exp(jnp.where(hj, lj - m, zero)), zero)
    log_term = jnp.where(anyh, jnp.log(jnp.where(anyh, s, jnp.ones((), d.dtype))) + m, zero)
    per_pair = 0.5 * jnp.square(jax.nn.relu(log_term + d - pos_margin))
    per_pair = jnp.where(b.pos, per_pair, zero)
    any_neg = psum(_count(b.neg, d.dtype), axis_name) > 0
    return b, per_pair, any_neg


@register(
    "lifted_structure_loss_per_anchor",
    family=FAMILY,
    kind="per_example",
    formula="l_i = mean_{j pos of i} 1/2 [log(sum_{(i,k) neg} e^{m_neg - d_ik} + sum_{(j,l) neg} e^{m_neg - d_jl}) "
    "+ d_ij - m_pos]_+^2  (0 if i has no positive or the batch no negative)",
    paper="Deep Metric Learning via Lifted Structured Feature Embedding (2016, arXiv:1511.06452)",
    reference=f"{_PML}::losses/lifted_structure_loss.py::LiftedStructureLoss(reducer=DoNothingReducer()) pos-pair "
    "losses through reducers/per_anchor_reducer.py::PerAnchorReducer(DoNothingReducer())",
    sample=_labelled_sample,
    runtime=("axis_name",),
)
def lifted_structure_loss_per_anchor(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    neg_margin: float = 1.0,
    pos_margin: float = 0.0,
    distance: str = "euclidean",
    normalize: bool = True,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""The lifted structured loss of each anchor: the mean over its positive pairs, unreduced ``[N]``.

    .. math::
        \ell_i = \frac{1}{|\mathcal P_i|}\sum_{j\in\mathcal P_i} \tfrac12 [J_{ij}]_+^2,\qquad
        J_{ij} = \log\Big(\sum_{k\in\mathcal N_i} e^{m_- - d_{ik}} + \sum_{l\in\mathcal N_j} e^{m_- - d_{jl}}\Big)
                 + d_{ij} - m_+

    (0 for an anchor without a positive, and everywhere when the batch has no
    negative pair): pytorch-metric-learning's ``LiftedStructureLoss`` pair
    losses (``pos_pair``) averaged per anchor by its ``PerAnchorReducer``
    (PML 2.9 passes them as ``[P, 1]``, which that reducer cannot take as
    is: they are the same losses, flattened). :func:`lifted_structure_loss`
    is the mean over all ordered positive pairs,
    ``sum_i |P_i| l_i / sum_i |P_i|``.

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      neg_margin, pos_margin, distance, normalize: as in :func:`lifted_structure_loss`.
      where: optional ``[N]`` boolean mask of real examples (0 there).
      axis_name: mapped axis to gather the batch over (each device returns its own anchors).

    Returns:
      Per-anchor loss ``[N]``.

    Paper: Oh Song, Xiang, Jegelka, Savarese, "Deep Metric Learning via Lifted
    Structured Feature Embedding", CVPR 2016, arXiv:1511.06452.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[0.0], [0.5], [1.5]])
      >>> out = lossjax.losses.lifted_structure_loss_per_anchor(x, jnp.array([0, 0, 1]), normalize=False)
      >>> [round(v, 4) for v in out.tolist()]  # one pair each way: both are lifted_structure_loss, 0.4744
      [0.4744, 0.4744, 0.0]
    """
    fn = "lifted_structure_loss_per_anchor"
    b, per_pair, any_neg = _lifted_pairs(fn, embeddings, labels, neg_margin, pos_margin, distance, normalize, where,
                                         axis_name)  # fmt: skip
    return jnp.where(any_neg, _pair_mean_per_anchor(per_pair, b.pos), jnp.zeros((), per_pair.dtype))


@register(
    "npair_loss",
    aliases=("n_pairs_loss",),
    family=FAMILY,
    kind="batch",
    formula="mean_i CE(a_i . p_j over the N pairs, target i),  one (anchor, positive) pair per class",
    paper="Improved Deep Metric Learning with Multi-class N-pair Loss Objective (Sohn, NeurIPS 2016)",
    reference=f"{_PML}::losses/n_pairs_loss.py::NPairsLoss",
    sample=lambda: _labelled_sample(variants=({"normalize": False},)),
    runtime=("axis_name",),
)
def npair_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    normalize: bool = True,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""Multi-class N-pair loss: one (anchor, positive) pair per class, softmax over the pairs.

    .. math::
        \mathcal L = \frac1K \sum_{k=1}^K -\log\frac{\exp(a_k\cdot p_k)}{\sum_{l=1}^K \exp(a_k\cdot p_l)}

    As pytorch-metric-learning's ``NPairsLoss``: for each class with at least
    two examples, the anchor is its first example (in batch order, across all
    devices) and the positive its second; dot-product similarity of the
    L2-normalized embeddings (PML's ``DotProductSimilarity`` default;
    ``normalize=False`` gives the paper's raw dot products, to be paired with
    an L2 penalty on the embeddings), mean over the pairs. Other examples are
    not used.

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      normalize: L2-normalize the embeddings first.
      where: optional ``[N]`` boolean mask.
      axis_name: mapped axis to gather the batch over.

    Returns:
      Scalar loss.

    Paper: Sohn, "Improved Deep Metric Learning with Multi-class N-pair Loss
    Objective", NeurIPS 2016.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
      >>> round(float(lossjax.losses.npair_loss(x, jnp.array([0, 0, 1, 1]))), 4)
      0.3133
    """
    fn = "npair_loss"
    per_row, sel_rows = _npair_rows(fn, embeddings, labels, normalize, where, axis_name)
    if per_row.shape[0] == 0:  # an empty batch (static shape, on every device): no pair, the loss is 0
        return jnp.zeros((), per_row.dtype)
    return _global_mean(jnp.sum(per_row), _count(sel_rows, per_row.dtype), axis_name)


def _npair_rows(fn, embeddings, labels, normalize, where, axis_name):
    """Each row's N-pair cross-entropy ``[n]`` (0 unless it is its class's selected anchor) and the selection."""
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name, normalize=normalize)
    n, m_tot = b.x.shape[0], b.x_all.shape[0]
    if m_tot == 0:  # an empty batch (static shape): no pair
        return jnp.zeros((n,), b.dtype), jnp.zeros((n,), bool)
    lg, vg = b.labels_all, b.valid_all
    # Over the gathered batch: the first and second example of each class.
    rows = jax.lax.broadcasted_iota(jnp.int32, (m_tot, m_tot), 0)
    cols = jax.lax.broadcasted_iota(jnp.int32, (m_tot, m_tot), 1)
    same = (lg[:, None] == lg[None, :]) & vg[:, None] & vg[None, :]
    first = vg & ~jnp.any(same & (cols < rows), axis=1)
    later = same & (cols > rows)
    second = jnp.argmax(later, axis=1)
    selected = first & jnp.any(later, axis=1)  # [M]
    positives = b.x_all[second]  # [M, D]
    logits = jnp.matmul(b.x, positives.T, precision=jax.lax.Precision.HIGHEST)
    offset = axis_offset(axis_name, n)
    sel_rows = jax.lax.dynamic_slice_in_dim(selected, offset, n)
    colmask = jnp.broadcast_to(selected[None, :], logits.shape) & sel_rows[:, None]
    diag = self_mask(n, m_tot, axis_name=axis_name)
    target = jnp.sum(jnp.where(diag, logits, jnp.zeros((), logits.dtype)), axis=-1)
    per_row = jnp.where(sel_rows, masked_logsumexp(logits, colmask) - target, jnp.zeros((), logits.dtype))
    return per_row, sel_rows


@register(
    "npair_loss_per_anchor",
    family=FAMILY,
    kind="per_example",
    formula="l_i = CE(a_i . p_j over the K pairs, target i) at each class's first example with a positive, 0 elsewhere",
    paper="Improved Deep Metric Learning with Multi-class N-pair Loss Objective (Sohn, NeurIPS 2016)",
    reference=f"{_PML}::losses/n_pairs_loss.py::NPairsLoss(reducer=PerAnchorReducer(DoNothingReducer()))",
    sample=lambda: _labelled_sample(variants=({"normalize": False},)),
    runtime=("axis_name",),
)
def npair_loss_per_anchor(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    normalize: bool = True,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""The N-pair loss of each anchor, unreduced ``[N]``.

    .. math::
        \ell_{a_k} = -\log\frac{\exp(a_k\cdot p_k)}{\sum_{l=1}^K \exp(a_k\cdot p_l)}

    at the anchor ``a_k`` of each class that :func:`npair_loss` selects (its
    first example; the positive ``p_k`` is its second), 0 at every other
    example: pytorch-metric-learning's ``NPairsLoss`` with
    ``reducer=PerAnchorReducer(DoNothingReducer())`` (its element losses,
    indexed by their anchors). :func:`npair_loss` is the mean of ``l`` over
    the selected anchors.

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      normalize: as in :func:`npair_loss`.
      where: optional ``[N]`` boolean mask of real examples (0 there).
      axis_name: mapped axis to gather the batch over (each device returns its own anchors).

    Returns:
      Per-anchor loss ``[N]``.

    Paper: Sohn, "Improved Deep Metric Learning with Multi-class N-pair Loss
    Objective", NeurIPS 2016.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
      >>> out = lossjax.losses.npair_loss_per_anchor(x, jnp.array([0, 0, 1, 1]))
      >>> [round(v, 4) for v in out.tolist()]  # log(1 + e^-1) at each class's first example
      [0.3133, 0.0, 0.3133, 0.0]
    """
    fn = "npair_loss_per_anchor"
    return _npair_rows(fn, embeddings, labels, normalize, where, axis_name)[0]


# --------------------------------------------------------------------------
# Similarity-weighted losses on labelled batches (cosine similarity).
# --------------------------------------------------------------------------


@register(
    "multi_similarity_loss",
    aliases=("ms_loss",),
    family=FAMILY,
    kind="batch",
    formula="mean_i 1/alpha log(1 + sum_P e^{-alpha(S_ip - base)}) "
    "+ 1/beta log(1 + sum_N e^{beta(S_in - base)}), mined pairs",
    paper="Multi-Similarity Loss with General Pair Weighting for Deep Metric Learning (2019, arXiv:1904.06627)",
    reference=f"{_PML}::losses/multi_similarity_loss.py::MultiSimilarityLoss + miners/multi_similarity_miner.py",
    sample=lambda: _labelled_sample(variants=({"mining_margin": None, "beta": 40.0},)),
    runtime=("axis_name", "memory"),
)
def multi_similarity_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
    mining_margin: float | None = 0.1,
    where: ArrayLike | None = None,
    axis_name=None,
    memory: CrossBatchMemory | None = None,
) -> Array:
    r"""Multi-similarity loss with its pair miner, on cosine similarities.

    .. math::
        \ell_i = \frac1\alpha\log\Big[1+\sum_{p\in\mathcal P_i} e^{-\alpha(S_{ip}-\lambda)}\Big]
               + \frac1\beta\log\Big[1+\sum_{n\in\mathcal N_i} e^{\beta(S_{in}-\lambda)}\Big],\qquad
        \mathcal L = \frac1N\sum_i \ell_i

    with ``P_i``/``N_i`` the pairs kept by the multi-similarity miner
    (:func:`lossjax.miners.multi_similarity_miner` with ``margin=mining_margin``;
    ``None`` uses every pair). Anchors without kept pairs contribute 0 but count in
    the mean (the paper's and PML's ``MeanReducer``).

    Args:
      embeddings: ``[N, D]`` (normalized inside).
      labels: integer labels ``[N]``.
      alpha: positive scale (> 0).
      beta: negative scale (> 0).
      base: the similarity threshold ``lambda``, a cosine in ``[-1, 1]``.
      mining_margin: the miner's margin (pytorch-metric-learning's ``epsilon``), or ``None`` for no mining.
      where: optional ``[N]`` boolean mask.
      axis_name: mapped axis to gather the batch over.
      memory: optional :class:`CrossBatchMemory` (XBM): the anchors of this batch
        are paired with the memory after this batch's enqueue (stop-gradient
        references) instead of the batch; update it with ``memory.update(...)``.

    Returns:
      Scalar loss.

    Paper: Wang, Han, Huang, Dong, Scott, "Multi-Similarity Loss with General
    Pair Weighting for Deep Metric Learning", CVPR 2019, arXiv:1904.06627.
    Defaults follow pytorch-metric-learning (alpha=2, beta=50, base=0.5,
    the miner's epsilon=0.1); the official config uses beta=40.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
      >>> round(float(lossjax.losses.multi_similarity_loss(x, jnp.array([0, 0, 1, 1]))), 4)
      0.3394
    """
    fn = "multi_similarity_loss"
    b, loss = _multi_similarity_rows(fn, embeddings, labels, alpha, beta, base, mining_margin, where, axis_name, memory)
    return _global_mean(jnp.sum(loss), _count(b.valid, loss.dtype), axis_name)


def _multi_similarity_rows(fn, embeddings, labels, alpha, beta, base, mining_margin, where, axis_name, memory):
    """The labelled batch and each anchor's multi-similarity loss ``[n]`` (0 on padded rows)."""
    C.check_positive(fn, "alpha", alpha)
    C.check_positive(fn, "beta", beta)
    C.check_in_range(fn, "base", base, -1.0, 1.0)
    if mining_margin is not None:
        C.check_positive(fn, "mining_margin", mining_margin, allow_zero=True)
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name, memory=memory)
    s = pairwise_similarity(b.x, b.x_all, distance="cosine")
    if mining_margin is None:
        pos, neg = b.pos, b.neg
    else:
        pos, neg = multi_similarity_mine(s, b.pos, b.neg, margin=mining_margin)
    pos_l = masked_logsumexp(-alpha * (s - base), pos, add_one=True) / alpha
    neg_l = masked_logsumexp(beta * (s - base), neg, add_one=True) / beta
    return b, jnp.where(b.valid, pos_l + neg_l, jnp.zeros((), s.dtype))


@register(
    "multi_similarity_loss_per_anchor",
    family=FAMILY,
    kind="per_example",
    formula="l_i = 1/alpha log(1 + sum_P e^{-alpha(S_ip - base)}) + 1/beta log(1 + sum_N e^{beta(S_in - base)})",
    paper="Multi-Similarity Loss with General Pair Weighting for Deep Metric Learning (2019, arXiv:1904.06627)",
    reference=f"{_PML}::losses/multi_similarity_loss.py::MultiSimilarityLoss(reducer=DoNothingReducer()) + "
    "miners/multi_similarity_miner.py",
    sample=_labelled_sample,
    runtime=("axis_name",),
)
def multi_similarity_loss_per_anchor(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
    mining_margin: float | None = 0.1,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""The multi-similarity loss of each anchor, unreduced ``[N]``.

    .. math::
        \ell_i = \frac1\alpha\log\Big[1+\sum_{p\in\mathcal P_i} e^{-\alpha(S_{ip}-\lambda)}\Big]
               + \frac1\beta\log\Big[1+\sum_{n\in\mathcal N_i} e^{\beta(S_{in}-\lambda)}\Big]

    The terms :func:`multi_similarity_loss` averages (its mean over the real
    anchors is that loss): pytorch-metric-learning's ``MultiSimilarityLoss``
    with ``reducer=DoNothingReducer()`` (its element losses) and its miner.

    Args:
      embeddings: ``[N, D]`` (normalized inside).
      labels: integer labels ``[N]``.
      alpha, beta, base, mining_margin: as in :func:`multi_similarity_loss`.
      where: optional ``[N]`` boolean mask of real examples (0 there).
      axis_name: mapped axis to gather the batch over (each device returns its own anchors).

    Returns:
      Per-anchor loss ``[N]``.

    Paper: Wang, Han, Huang, Dong, Scott, "Multi-Similarity Loss with General
    Pair Weighting for Deep Metric Learning", CVPR 2019, arXiv:1904.06627.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
      >>> out = lossjax.losses.multi_similarity_loss_per_anchor(x, jnp.array([0, 0, 1, 1]))
      >>> [round(v, 4) for v in out.tolist()]  # their mean is multi_similarity_loss, 0.3394
      [0.0, 0.6787, 0.0, 0.6787]
    """
    fn = "multi_similarity_loss_per_anchor"
    _, loss = _multi_similarity_rows(fn, embeddings, labels, alpha, beta, base, mining_margin, where, axis_name, None)
    return loss


@register(
    "circle_loss",
    family=FAMILY,
    kind="batch",
    formula="mean_{nonzero} softplus(lse_n scale a_n (s_n - m) + lse_p -scale a_p (s_p - 1 + m)), "
    "a_p=[1+m-s_p]_+, a_n=[s_n+m]_+ (stop-gradient)",
    paper="Circle Loss: A Unified Perspective of Pair Similarity Optimization (2020, arXiv:2002.10857)",
    reference=f"{_PML}::losses/circle_loss.py::CircleLoss",
    # The conformance gradient check compares with finite differences, which
    # see through the stop-gradient weights: it runs stop_gradient_weights=False. The
    # default gradient is checked against PML in tests/losses/test_metric.py.
    sample=lambda: _labelled_sample(kwargs={"stop_gradient_weights": False}),
    runtime=("axis_name", "memory"),
)
def circle_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float = 0.4,
    scale: float = 80.0,
    stop_gradient_weights: bool = True,
    where: ArrayLike | None = None,
    axis_name=None,
    memory: CrossBatchMemory | None = None,
) -> Array:
    r"""Circle loss with pair labels, on cosine similarities.

    .. math::
        \ell_i = \operatorname{softplus}\Big(\operatorname{lse}_{n}\,\gamma\alpha_n(s_n-\Delta_n)
               + \operatorname{lse}_{p}\,{-\gamma}\alpha_p(s_p-\Delta_p)\Big),\quad
        \alpha_p=[1+m-s_p]_+,\ \alpha_n=[s_n+m]_+,\ \Delta_p=1-m,\ \Delta_n=m

    The weights ``alpha`` are not differentiated (as in the paper). Anchors
    without a positive or a negative give 0; the mean runs over the anchors
    with a positive loss (PML's ``AvgNonZeroReducer``).

    Args:
      embeddings: ``[N, D]`` (normalized inside).
      labels: integer labels ``[N]``.
      margin: the relaxation ``m``.
      scale: ``gamma``, multiplies the weighted similarities (the paper's and PML's ``gamma``).
      stop_gradient_weights: treat ``alpha_p, alpha_n`` as constants in the gradient
        (the paper and PML); False differentiates through them too.
      where: optional ``[N]`` boolean mask.
      axis_name: mapped axis to gather the batch over.
      memory: optional :class:`CrossBatchMemory` (XBM): the anchors of this batch
        are paired with the memory after this batch's enqueue (stop-gradient
        references) instead of the batch; update it with ``memory.update(...)``.

    Returns:
      Scalar loss.

    Paper: Sun et al., "Circle Loss: A Unified Perspective of Pair Similarity
    Optimization", CVPR 2020, arXiv:2002.10857 (m=0.25, gamma=256 for faces;
    m=0.4, gamma=80 for fine-grained retrieval, PML's default used here).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
      >>> round(float(lossjax.losses.circle_loss(x, jnp.array([0, 0, 1, 1]))), 3)
      28.865
    """
    fn = "circle_loss"
    loss = _circle_rows(fn, embeddings, labels, margin, scale, stop_gradient_weights, where, axis_name, memory)
    return _avg_nonzero(loss, axis_name)


def _circle_rows(fn, embeddings, labels, margin, scale, stop_gradient_weights, where, axis_name, memory):
    """Each anchor's circle loss ``[n]`` (0 without a positive or a negative, and on padded rows)."""
    C.check_positive(fn, "margin", margin, allow_zero=True)
    C.check_positive(fn, "scale", scale)
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name, memory=memory)
    s = pairwise_similarity(b.x, b.x_all, distance="cosine")
    sd = jax.lax.stop_gradient(s) if stop_gradient_weights else s
    logit_p = -scale * jax.nn.relu(1.0 + margin - sd) * (s - (1.0 - margin))
    logit_n = scale * jax.nn.relu(sd + margin) * (s - margin)
    ok = jnp.any(b.pos, axis=-1) & jnp.any(b.neg, axis=-1)
    loss = jax.nn.softplus(masked_logsumexp(logit_p, b.pos) + masked_logsumexp(logit_n, b.neg))
    return jnp.where(ok, loss, jnp.zeros((), s.dtype))


@register(
    "circle_loss_per_anchor",
    family=FAMILY,
    kind="per_example",
    formula="l_i = softplus(lse_n scale a_n (s_n - m) + lse_p -scale a_p (s_p - 1 + m)) (0 without a positive "
    "or a negative), a_p=[1+m-s_p]_+, a_n=[s_n+m]_+ (stop-gradient)",
    paper="Circle Loss: A Unified Perspective of Pair Similarity Optimization (2020, arXiv:2002.10857)",
    reference=f"{_PML}::losses/circle_loss.py::CircleLoss(reducer=PerAnchorReducer(DoNothingReducer()))",
    # As circle_loss: the finite-difference gradient check sees through the stop-gradient weights.
    sample=lambda: _labelled_sample(kwargs={"stop_gradient_weights": False}),
    runtime=("axis_name",),
)
def circle_loss_per_anchor(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float = 0.4,
    scale: float = 80.0,
    stop_gradient_weights: bool = True,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""The circle loss of each anchor, unreduced ``[N]``.

    .. math::
        \ell_i = \operatorname{softplus}\Big(\operatorname{lse}_{n}\,\gamma\alpha_n(s_n-\Delta_n)
               + \operatorname{lse}_{p}\,{-\gamma}\alpha_p(s_p-\Delta_p)\Big)

    (0 for an anchor without a positive or a negative): the terms
    :func:`circle_loss` averages (it is the mean of the nonzero ``l_i``, PML's
    ``AvgNonZeroReducer``); pytorch-metric-learning's ``CircleLoss`` with
    ``reducer=PerAnchorReducer(DoNothingReducer())`` (its element losses).

    Args:
      embeddings: ``[N, D]`` (normalized inside).
      labels: integer labels ``[N]``.
      margin, scale, stop_gradient_weights: as in :func:`circle_loss`.
      where: optional ``[N]`` boolean mask of real examples (0 there).
      axis_name: mapped axis to gather the batch over (each device returns its own anchors).

    Returns:
      Per-anchor loss ``[N]``.

    Paper: Sun et al., "Circle Loss: A Unified Perspective of Pair Similarity
    Optimization", CVPR 2020, arXiv:2002.10857.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
      >>> out = lossjax.losses.circle_loss_per_anchor(x, jnp.array([0, 0, 1, 1]))
      >>> [round(v, 2) for v in out.tolist()]  # their nonzero mean is circle_loss, 28.865
      [6.4, 51.33, 6.4, 51.33]
    """
    fn = "circle_loss_per_anchor"
    return _circle_rows(fn, embeddings, labels, margin, scale, stop_gradient_weights, where, axis_name, None)


@register(
    "supervised_contrastive_loss",
    aliases=("supcon_loss",),
    family=FAMILY,
    kind="batch",
    formula="mean_{i: P(i) nonempty} -1/|P(i)| sum_{p in P(i)} log(e^{s_ip/t} / sum_{a != i} e^{s_ia/t})",
    paper="Supervised Contrastive Learning (2020, arXiv:2004.11362)",
    reference=f"{_PML}::losses/supcon_loss.py::SupConLoss",
    sample=_labelled_sample,
    runtime=("axis_name",),
)
def supervised_contrastive_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    temperature: float = 0.1,
    where: ArrayLike | None = None,
    axis_name=None,
    block_size: int | None = None,
) -> Array:
    r"""Supervised contrastive loss (SupCon, the "out" form), on cosine similarities.

    .. math::
        \ell_i = \frac{-1}{|P(i)|}\sum_{p\in P(i)} \log\frac{\exp(s_{ip}/\tau)}{\sum_{a\ne i}\exp(s_{ia}/\tau)}

    averaged over the anchors with a positive loss (anchors without positives
    give 0; PML's ``AvgNonZeroReducer``).

    Args:
      embeddings: ``[N, D]`` (normalized inside). For multi-view SupCon pass the
        views concatenated on the batch axis with repeated labels.
      labels: integer labels ``[N]``.
      temperature: ``tau`` (> 0; the paper uses 0.07, PML 0.1).
      where: optional ``[N]`` boolean mask.
      axis_name: mapped axis to gather the batch over.
      block_size: key columns per block of the streamed similarity matrix (None: all of them when a
        float32 ``[N, M]`` tile fits 256 MiB, else a multiple of 128 that does; never materialized beyond).

    Returns:
      Scalar loss.

    Paper: Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020,
    arXiv:2004.11362.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
      >>> round(float(lossjax.losses.supervised_contrastive_loss(x, jnp.array([0, 0, 1, 1]))), 4)
      0.9668
    """
    fn = "supervised_contrastive_loss"
    loss = _supcon_rows(fn, embeddings, labels, temperature, where, axis_name, block_size)
    return _avg_nonzero(loss, axis_name)


def _supcon_rows(fn, embeddings, labels, temperature, where, axis_name, block_size):
    """Each anchor's SupCon loss ``[n]`` (0 without a positive, on padded rows and when the batch has no negative)."""
    _check_block(fn, block_size)
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name)
    t = _temperature(fn, temperature, b.dtype)
    n = b.x.shape[0]
    off = axis_offset(axis_name, n)
    # Streamed over key blocks (lossjax._blocked): no [N, M] similarity or mask is built.
    row_labels = jax.lax.dynamic_slice_in_dim(b.labels_all, off, n)
    (loss,) = contrastive_rows(
        "supcon", l2_normalize(b.x), l2_normalize(b.x_all), inv_temperature=1 / t, row_valid=b.valid,
        col_valid=b.valid_all, row_labels=row_labels, col_labels=b.labels_all,
        row_index=jnp.arange(n, dtype=jnp.int32) + off, block=block_size,
    )  # fmt: skip
    zero = jnp.zeros((), b.dtype)
    # A negative pair exists iff two valid examples of the whole batch have different labels (pmin/pmax of
    # the local extremes: replicated, no [N, M] mask).
    info = jnp.iinfo(row_labels.dtype)
    lo = jnp.min(jnp.where(b.valid, row_labels, info.max), initial=info.max)
    hi = jnp.max(jnp.where(b.valid, row_labels, info.min), initial=info.min)
    if axis_name is not None:
        lo, hi = jax.lax.pmin(lo, axis_name), jax.lax.pmax(hi, axis_name)
    return jnp.where(hi > lo, loss, zero)


@register(
    "supervised_contrastive_loss_per_anchor",
    family=FAMILY,
    kind="per_example",
    formula="l_i = -1/|P(i)| sum_{p in P(i)} log(e^{s_ip/t} / sum_{a != i} e^{s_ia/t})  (0 if P(i) is empty)",
    paper="Supervised Contrastive Learning (2020, arXiv:2004.11362)",
    reference=f"{_PML}::losses/supcon_loss.py::SupConLoss(reducer=PerAnchorReducer(DoNothingReducer()))",
    sample=_labelled_sample,
    runtime=("axis_name",),
)
def supervised_contrastive_loss_per_anchor(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    temperature: float = 0.1,
    where: ArrayLike | None = None,
    axis_name=None,
    block_size: int | None = None,
) -> Array:
    r"""The supervised contrastive loss of each anchor, unreduced ``[N]``.

    .. math::
        \ell_i = \frac{-1}{|P(i)|}\sum_{p\in P(i)} \log\frac{\exp(s_{ip}/\tau)}{\sum_{a\ne i}\exp(s_{ia}/\tau)}

    (0 for an anchor without a positive, and everywhere when the batch has no
    negative pair): the terms :func:`supervised_contrastive_loss` averages (it
    is the mean of the nonzero ``l_i``, PML's ``AvgNonZeroReducer``);
    pytorch-metric-learning's ``SupConLoss`` with
    ``reducer=PerAnchorReducer(DoNothingReducer())`` (its element losses).

    Args:
      embeddings: ``[N, D]`` (normalized inside).
      labels: integer labels ``[N]``.
      temperature, block_size: as in :func:`supervised_contrastive_loss`.
      where: optional ``[N]`` boolean mask of real examples (0 there).
      axis_name: mapped axis to gather the batch over (each device returns its own anchors).

    Returns:
      Per-anchor loss ``[N]``.

    Paper: Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020,
    arXiv:2004.11362.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
      >>> out = lossjax.losses.supervised_contrastive_loss_per_anchor(x, jnp.array([0, 0, 1, 1]))
      >>> [round(v, 4) for v in out.tolist()]  # their mean is supervised_contrastive_loss, 0.9668
      [0.1272, 1.8064, 0.1272, 1.8064]
    """
    fn = "supervised_contrastive_loss_per_anchor"
    return _supcon_rows(fn, embeddings, labels, temperature, where, axis_name, block_size)


@register(
    "ntxent_loss",
    aliases=("nt_xent_loss",),
    family=FAMILY,
    kind="batch",
    formula="mean_{(a,p) pos} -log(e^{s_ap/t} / (e^{s_ap/t} + sum_{n neg(a)} e^{s_an/t}))",
    paper="A Simple Framework for Contrastive Learning of Visual Representations (2020, arXiv:2002.05709)",
    reference=f"optax.ntxent(temperature=0.07); {_PML}::losses/ntxent_loss.py::NTXentLoss",
    sample=_labelled_sample,
    runtime=("axis_name",),
)
def ntxent_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    temperature: float = 0.07,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""NT-Xent (InfoNCE with labels): each positive pair against its anchor's negatives.

    .. math::
        \mathcal L = \frac{1}{|\mathcal P|}\sum_{(a,p)\in\mathcal P}
        -\log\frac{e^{s_{ap}/\tau}}{e^{s_{ap}/\tau}+\sum_{n:\,y_n\ne y_a} e^{s_{an}/\tau}}

    with cosine similarity ``s``: ``optax.ntxent`` and pytorch-metric-learning's
    ``NTXentLoss``. SimCLR's loss is the case of two views per image:
    ``ntxent_loss(concat([z1, z2]), concat([arange(B), arange(B)]))``.

    Args:
      embeddings: ``[N, D]`` (normalized inside).
      labels: integer labels ``[N]``; examples with equal labels are positives.
      temperature: ``tau`` (> 0).
      where: optional ``[N]`` boolean mask.
      axis_name: mapped axis to gather the batch over.

    Returns:
      Scalar loss (mean over positive pairs).

    Paper: Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for
    Contrastive Learning of Visual Representations", ICML 2020, arXiv:2002.05709.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
      >>> round(float(lossjax.losses.ntxent_loss(x, jnp.array([0, 0, 1, 1]))), 4)
      1.2219
    """
    fn = "ntxent_loss"
    b, per_pair = _ntxent_pairs(fn, embeddings, labels, temperature, where, axis_name)
    return _global_mean(jnp.sum(per_pair), _count(b.pos, per_pair.dtype), axis_name)


def _ntxent_pairs(fn, embeddings, labels, temperature, where, axis_name):
    """The labelled batch and the NT-Xent term of each positive pair ``[n, M]`` (0 off the positive pairs)."""
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name)
    t = _temperature(fn, temperature, b.dtype)
    s = pairwise_similarity(b.x, b.x_all, distance="cosine") / t
    zero = jnp.zeros((), s.dtype)
    lse_neg = masked_logsumexp(s, b.neg)[:, None]
    has_neg = jnp.any(b.neg, axis=-1)[:, None]
    # -log(e^s / (e^s + e^lse)) = softplus(lse - s); 0 when the anchor has no negative.
    return b, jnp.where(b.pos & has_neg, jax.nn.softplus(lse_neg - s), zero)


def _pair_mean_per_anchor(per_pair: Array, pairs: Array) -> Array:
    """PML ``PerAnchorReducer`` on a ``pos_pair``/``neg_pair`` loss: each anchor's mean over its pairs, 0 if none."""
    return _per_anchor_mean(jnp.sum(per_pair, axis=-1), jnp.sum(pairs, axis=-1).astype(per_pair.dtype))


@register(
    "ntxent_loss_per_anchor",
    family=FAMILY,
    kind="per_example",
    formula="l_a = mean_{p pos of a} -log(e^{s_ap/t} / (e^{s_ap/t} + sum_{n neg(a)} e^{s_an/t}))  (0 if none)",
    paper="A Simple Framework for Contrastive Learning of Visual Representations (2020, arXiv:2002.05709)",
    reference=f"{_PML}::losses/ntxent_loss.py::NTXentLoss(reducer=PerAnchorReducer(DoNothingReducer()))",
    sample=_labelled_sample,
    runtime=("axis_name",),
)
def ntxent_loss_per_anchor(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    temperature: float = 0.07,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""The NT-Xent loss of each anchor: the mean over its positive pairs, unreduced ``[N]``.

    .. math::
        \ell_a = \frac{1}{|\mathcal P_a|}\sum_{p\in\mathcal P_a}
        -\log\frac{e^{s_{ap}/\tau}}{e^{s_{ap}/\tau}+\sum_{n:\,y_n\ne y_a} e^{s_{an}/\tau}}

    (0 for an anchor without a positive): pytorch-metric-learning's
    ``NTXentLoss`` (a ``pos_pair`` loss) with
    ``reducer=PerAnchorReducer(DoNothingReducer())``. :func:`ntxent_loss` is
    the mean over all positive pairs, ``sum_a |P_a| l_a / sum_a |P_a|``: the
    mean of ``l_a`` when every anchor has as many positives (SimCLR's two
    views).

    Args:
      embeddings: ``[N, D]`` (normalized inside).
      labels: integer labels ``[N]``; examples with equal labels are positives.
      temperature: as in :func:`ntxent_loss`.
      where: optional ``[N]`` boolean mask of real examples (0 there).
      axis_name: mapped axis to gather the batch over (each device returns its own anchors).

    Returns:
      Per-anchor loss ``[N]``.

    Paper: Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for
    Contrastive Learning of Visual Representations", ICML 2020, arXiv:2002.05709.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
      >>> out = lossjax.losses.ntxent_loss_per_anchor(x, jnp.array([0, 0, 1, 1]))
      >>> [round(v, 4) for v in out.tolist()]  # one positive each: their mean is ntxent_loss, 1.2219
      [0.0559, 2.3879, 0.0559, 2.3879]
    """
    fn = "ntxent_loss_per_anchor"
    b, per_pair = _ntxent_pairs(fn, embeddings, labels, temperature, where, axis_name)
    return _pair_mean_per_anchor(per_pair, b.pos)


# --------------------------------------------------------------------------
# optax's cosine similarity and distance (element-wise pairs, no batch mixing).
# --------------------------------------------------------------------------


def _cosine_sample() -> Sample:
    rng = np.random.default_rng(7)
    p = rng.normal(size=(5, 4)).astype(np.float32)
    t = (p + 0.8 * rng.normal(size=(5, 4))).astype(np.float32)
    p[4] = -2.0 * t[4]  # an exactly opposite pair: cos = -1
    # Edges: a zero vector (optax: 0/0 = NaN; here 0, gradient 0), identical and opposite rows, 1e4 beside 1e-4.
    ep = np.array([[0, 0, 0, 0], [1, 2, 3, 4], [1, 2, 3, 4], [1e4, 1e-4, -1e4, 1e-4], [1e-3, 0, 0, 0]], np.float32)
    et = np.array([[1, -1, 2, 0], [2, 4, 6, 8], [-1, -2, -3, -4], [1e-4, 1e4, 1e4, -1e-4], [0, 0, 0, 0]], np.float32)
    extremes = ((ep, et), (np.zeros_like(p), np.zeros_like(t)), (np.sign(p) * 1e4, np.sign(t) * 1e4))
    return Sample(args=(p, t), diff_argnums=(0, 1), extremes=extremes, variants=({"epsilon": 0.5},))


def _cosine(fn: str, predictions: ArrayLike, targets: ArrayLike, epsilon, axis, where) -> Array:
    C.check_positive(fn, "epsilon", epsilon, allow_zero=True)
    p = C.check_array(fn, "predictions", predictions, min_ndim=1, dtype="float")
    t = C.check_array(fn, "targets", targets, dtype="float")
    if p.shape != t.shape:
        raise ValueError(f"{fn}: `predictions` and `targets` must have the same shape, got {p.shape} and {t.shape}.")
    axes = tuple(range(p.ndim)) if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
    if not axes or any(not isinstance(a, int) or not -p.ndim <= a < p.ndim for a in axes):
        raise ValueError(f"{fn}: `axis` must name axes of the inputs (ndim {p.ndim}), got {axis!r}.")
    axes = tuple(sorted({a % p.ndim for a in axes}))
    out_shape = tuple(n for i, n in enumerate(p.shape) if i not in axes)
    dtype = C.compute_dtype(p, t)
    p, t = C.as_compute(p, dtype), C.as_compute(t, dtype)
    mask, elem = None, None
    if where is not None and np.shape(where) == p.shape:  # optax's element mask: masked elements are left out
        elem = jnp.asarray(where, bool)
    elif where is not None:
        mask = C.prepare_where(fn, where, out_shape)
    zero = jnp.zeros((), dtype)
    if elem is not None:
        p, t = jnp.where(elem, p, zero), jnp.where(elem, t, zero)
    if mask is not None:  # masked examples may hold NaN: filled before anything is computed
        keep = jnp.expand_dims(mask, axes) if axes else mask
        p, t = jnp.where(keep, p, zero), jnp.where(keep, t, zero)
    eps = jnp.asarray(epsilon, dtype)

    def inv_norm(x):  # 1 / sqrt(max(|x|^2, epsilon)); 0 (with a zero gradient) for a zero vector at epsilon = 0
        n2 = jnp.maximum(jnp.sum(x * x, axis=axes, keepdims=True), eps)
        ok = n2 > 0
        return jnp.where(ok, jax.lax.rsqrt(jnp.where(ok, n2, jnp.ones((), dtype))), zero)

    cos = jnp.sum(p * inv_norm(p) * t * inv_norm(t), axis=axes)
    return cos if mask is None else jnp.where(mask, cos, zero)


@register(
    "cosine_similarity",
    family=FAMILY,
    kind="per_example",
    formula="<p, t> / (sqrt(max(|p|^2, epsilon)) sqrt(max(|t|^2, epsilon)))",
    reference="optax.losses.cosine_similarity",
    sample=_cosine_sample,
)
def cosine_similarity(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    epsilon: float = 0.0,
    axis: int | tuple[int, ...] | None = -1,
    where: ArrayLike | None = None,
) -> Array:
    r"""Cosine similarity of predictions and targets along ``axis`` (optax's ``cosine_similarity``).

    .. math::
        \cos(p, t) = \frac{\langle p, t\rangle}{\sqrt{\max(\|p\|^2, \epsilon)}\,\sqrt{\max(\|t\|^2, \epsilon)}}

    The names, arguments and values of ``optax.losses.cosine_similarity``
    (``epsilon`` floors the *squared* norms, as there). One deviation: where
    optax divides 0 by 0 (a zero vector with ``epsilon = 0``: NaN), the zero
    vector's unit vector is 0, so the similarity is 0 with a zero gradient
    (``torch.nn.functional.normalize``'s convention).

    Args:
      predictions: vectors ``[..., D]`` (``D`` along ``axis``).
      targets: vectors of the same shape.
      epsilon: floor of each squared norm (a numerical guard; 0 as in optax).
      axis: the axis (or axes; None: all) the vectors lie along (-1).
      where: optional boolean mask: of the output's shape (masks examples: 0 and a zero gradient there,
        NaN allowed in masked rows), or of the inputs' shape (masks elements, as in optax).

    Returns:
      The cosines, the inputs' shape without ``axis``.

    Paper: none (the cosine of the angle; optax ``cosine_similarity``).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.cosine_similarity(jnp.array([[3.0, 4.0], [1.0, 0.0]]), jnp.array([[3.0, 4.0], [0.0, 0.0]]))
      Array([1., 0.], dtype=float32)
    """
    return _cosine("cosine_similarity", predictions, targets, epsilon, axis, where)


@register(
    "cosine_distance",
    family=FAMILY,
    kind="per_example",
    formula="1 - <p, t> / (sqrt(max(|p|^2, epsilon)) sqrt(max(|t|^2, epsilon)))",
    reference="optax.losses.cosine_distance",
    sample=_cosine_sample,
)
def cosine_distance(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    epsilon: float = 0.0,
    axis: int | tuple[int, ...] | None = -1,
    where: ArrayLike | None = None,
) -> Array:
    r"""Cosine distance ``1 - cos(p, t)`` along ``axis`` (optax's ``cosine_distance``).

    .. math:: d(p, t) = 1 - \frac{\langle p, t\rangle}{\sqrt{\max(\|p\|^2, \epsilon)}\,\sqrt{\max(\|t\|^2, \epsilon)}}

    As :func:`cosine_similarity` (a zero vector at ``epsilon = 0`` gives a
    distance of 1 with a zero gradient where optax gives NaN); masked examples
    give 0.

    Args:
      predictions: vectors ``[..., D]`` (``D`` along ``axis``).
      targets: vectors of the same shape.
      epsilon: floor of each squared norm (a numerical guard; 0 as in optax).
      axis: the axis (or axes; None: all) the vectors lie along (-1).
      where: optional boolean mask: of the output's shape (masks examples: 0 and a zero gradient there),
        or of the inputs' shape (masks elements, as in optax).

    Returns:
      The distances in ``[0, 2]``, the inputs' shape without ``axis``.

    Paper: none (the cosine distance; optax ``cosine_distance``).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.cosine_distance(jnp.array([[1.0, 0.0], [1.0, 1.0]]), jnp.array([[-2.0, 0.0], [0.0, 1.0]]))
      Array([2.       , 0.2928932], dtype=float32)
    """
    fn = "cosine_distance"
    cos = _cosine(fn, predictions, targets, epsilon, axis, where)
    one = jnp.ones((), cos.dtype)
    dist = one - cos
    if where is not None and np.shape(where) != np.shape(predictions):
        dist = jnp.where(C.prepare_where(fn, where, cos.shape), dist, jnp.zeros((), cos.dtype))
    return dist


# --------------------------------------------------------------------------
# Paired views (embeddings_a, embeddings_b): per-pair losses.
# --------------------------------------------------------------------------


def _logits(rows: Array, cols_emb: Array, distance: str, t: Array) -> Array:
    return pairwise_similarity(rows, cols_emb, distance=distance) / t


def _infonce_rows(logits: Array, pr: _Paired, label_smoothing: float = 0.0) -> Array:
    """Cross-entropy of each row against the diagonal target over the valid columns."""
    zero = jnp.zeros((), logits.dtype)
    target = jnp.sum(jnp.where(pr.diag, logits, zero), axis=-1)
    loss = _ce_against(target, logits, pr.cols & ~pr.diag)
    if label_smoothing:
        ncols = jnp.sum(pr.cols, axis=-1).astype(logits.dtype)
        mean_logit = jnp.sum(jnp.where(pr.cols, logits, zero), axis=-1) / jnp.maximum(ncols, jnp.ones((), logits.dtype))
        loss = loss + label_smoothing * (target - mean_logit)
    return loss


def _ce_against(target: Array, logits: Array, negs: Array) -> Array:
    """``-log(e^t / (e^t + sum_neg e^x))`` as ``softplus(lse_neg - t)``: exact even when tiny; 0 without negatives."""
    has = jnp.any(negs, axis=-1)
    z = jnp.where(has, masked_logsumexp(logits, negs) - target, jnp.zeros((), logits.dtype))
    return jnp.where(has, jax.nn.softplus(z), jnp.zeros((), logits.dtype))


@register(
    "infonce_loss",
    aliases=("info_nce_loss",),
    family=FAMILY,
    kind="per_example",
    formula="-log(e^{s(a_i,b_i)/t} / sum_j e^{s(a_i,b_j)/t})",
    paper="Representation Learning with Contrastive Predictive Coding (2018, arXiv:1807.03748); "
    "Understanding the Behaviour of Contrastive Loss (2021, arXiv:2012.09740)",
    reference="torch.nn.functional.cross_entropy(normalize(q) @ normalize(k).T / t, arange(B))",
    sample=lambda: _paired_sample(variants=({"distance": "dot", "temperature": 2.0},)),
    runtime=("axis_name",),
)
def infonce_loss(
    embeddings_a: ArrayLike,
    embeddings_b: ArrayLike,
    *,
    temperature: float = 0.07,
    distance: str = "cosine",
    where: ArrayLike | None = None,
    axis_name=None,
    block_size: int | None = None,
) -> Array:
    r"""InfoNCE for paired views: each row of ``embeddings_a`` against its own positive and every other row.

    .. math::
        \ell_i = -\log\frac{\exp(s(a_i,b_i)/\tau)}{\sum_j \exp(s(a_i,b_j)/\tau)}

    ``embeddings_a`` are the queries (anchors) and ``embeddings_b`` the keys
    (their positives, and everyone else's negatives).

    Args:
      embeddings_a: ``[B, D]`` queries.
      embeddings_b: ``[B, D]`` keys; ``embeddings_b[i]`` is the positive of ``embeddings_a[i]``.
      temperature: ``tau`` (> 0; a traced array works, e.g. a learned one).
      distance: the similarity ``s``: ``"cosine"`` (default) or ``"dot"``.
      where: optional ``[B]`` boolean mask; masked pairs get 0 and their keys
        are no one's negatives.
      axis_name: mapped axis to gather the keys over (negatives from all devices).
      block_size: key columns per block of the streamed similarity matrix (None: all of them when a
        float32 ``[N, M]`` tile fits 256 MiB, else a multiple of 128 that does; never materialized beyond).

    Returns:
      Per-query loss ``[B]`` (this device's queries under ``axis_name``).

    Paper: van den Oord, Li, Vinyals, "Representation Learning with
    Contrastive Predictive Coding", 2018, arXiv:1807.03748; Wang & Liu,
    "Understanding the Behaviour of Contrastive Loss", CVPR 2021, arXiv:2012.09740.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> q = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> lossjax.losses.infonce_loss(q, q, temperature=1.0).round(4)
      Array([0.3133, 0.3133], dtype=float32)
    """
    fn = "infonce_loss"
    C.check_one_of(fn, "distance", distance, ("cosine", "dot"))
    _check_block(fn, block_size)
    a, b, mask, dtype = paired_batch(fn, embeddings_a, embeddings_b, where)
    t = _temperature(fn, temperature, dtype)
    valid = jnp.ones(a.shape[:1], bool) if mask is None else mask
    bg = gather_batch(b, axis_name)
    if distance == "cosine":
        a, bg = l2_normalize(a), l2_normalize(bg)
    (loss,) = _blocked_views("infonce", a, bg, valid, gather_batch(valid, axis_name), t, axis_name, block=block_size)
    return C.zero_masked(loss, mask)


@register(
    "symmetric_infonce_loss",
    aliases=("clip_loss",),
    family=FAMILY,
    kind="per_example",
    formula="1/2 [CE(S_i: / t, i) + CE(S_:i / t, i)],  S = cos(a, b)",
    paper="Learning Transferable Visual Models From Natural Language Supervision (2021, arXiv:2103.00020); "
    "Sample4Geo (2023, arXiv:2303.11851)",
    reference="open_clip ClipLoss: (CE(logit_scale a b^T) + CE(logit_scale b a^T)) / 2 "
    "(torch.nn.functional.cross_entropy with label_smoothing)",
    sample=lambda: _paired_sample(variants=({"label_smoothing": 0.1, "temperature": 0.2},)),
    runtime=("axis_name",),
)
def symmetric_infonce_loss(
    embeddings_a: ArrayLike,
    embeddings_b: ArrayLike,
    *,
    temperature: float = 0.07,
    label_smoothing: float = 0.0,
    where: ArrayLike | None = None,
    axis_name=None,
    block_size: int | None = None,
) -> Array:
    r"""Symmetric InfoNCE (the CLIP loss) between two modalities or views.

    .. math::
        \ell_i = \tfrac12\Big[\mathrm{CE}\big(\cos(a_i, b_{:})/\tau,\ i\big)
               + \mathrm{CE}\big(\cos(b_i, a_{:})/\tau,\ i\big)\Big]

    The mean over the batch is CLIP's loss. ``label_smoothing`` mixes the
    one-hot targets with the uniform distribution over the valid columns
    (Sample4Geo uses 0.1), as PyTorch's ``cross_entropy(label_smoothing=)``.

    Args:
      embeddings_a: ``[B, D]`` (e.g. image embeddings; normalized inside).
      embeddings_b: ``[B, D]`` (e.g. text embeddings); row ``i`` is the positive of ``embeddings_a[i]``.
      temperature: ``tau`` (> 0). CLIP learns ``1/tau`` (``logit_scale``):
        pass ``1 / jnp.exp(log_scale)`` as a traced array.
      label_smoothing: in ``[0, 1)``.
      where: optional ``[B]`` boolean mask.
      axis_name: mapped axis to gather both sides over.
      block_size: key columns per block of the streamed similarity matrix (None: all of them when a
        float32 ``[N, M]`` tile fits 256 MiB, else a multiple of 128 that does; never materialized beyond).
        On one device both directions come from the same tiles; under ``axis_name`` each direction is
        streamed on its own (``a`` against the gathered ``b``, ``b`` against the gathered ``a``).

    Returns:
      Per-pair loss ``[B]`` (this device's pairs under ``axis_name``).

    Paper: Radford et al., "Learning Transferable Visual Models From Natural
    Language Supervision", ICML 2021, arXiv:2103.00020.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> lossjax.losses.symmetric_infonce_loss(x, x, temperature=1.0).round(4)
      Array([0.3133, 0.3133], dtype=float32)
    """
    fn = "symmetric_infonce_loss"
    C.check_in_range(fn, "label_smoothing", label_smoothing, 0.0, 1.0, high_inclusive=False)
    _check_block(fn, block_size)
    a, b, mask, dtype = paired_batch(fn, embeddings_a, embeddings_b, where)
    t = _temperature(fn, temperature, dtype)
    valid = jnp.ones(a.shape[:1], bool) if mask is None else mask
    a, b = l2_normalize(a), l2_normalize(b)
    kw = {"label_smoothing": label_smoothing, "block": block_size}
    if axis_name is None:  # one pass: each tile serves its rows (a -> b) and its columns (b -> a)
        l_ab, l_ba = _blocked_views("infonce", a, b, valid, valid, t, None, columns=True, **kw)
    else:
        vg = gather_batch(valid, axis_name)
        (l_ab,) = _blocked_views("infonce", a, gather_batch(b, axis_name), valid, vg, t, axis_name, **kw)
        (l_ba,) = _blocked_views("infonce", b, gather_batch(a, axis_name), valid, vg, t, axis_name, **kw)
    return C.zero_masked(0.5 * (l_ab + l_ba), mask)


@register(
    "sigmoid_contrastive_loss",
    aliases=("siglip_loss",),
    family=FAMILY,
    kind="per_example",
    formula="sum_j -log sigmoid(z_ij (cos(a_i, b_j) / t + bias)),  z_ij = +1 if i == j else -1",
    paper="Sigmoid Loss for Language Image Pre-Training (2023, arXiv:2303.15343)",
    reference="google-research/big_vision::big_vision/trainers/proj/image_text/siglip.py (ported to torch)",
    sample=_paired_sample,
    runtime=("axis_name",),
)
def sigmoid_contrastive_loss(
    embeddings_a: ArrayLike,
    embeddings_b: ArrayLike,
    *,
    temperature: float = 0.1,
    bias: float = -10.0,
    where: ArrayLike | None = None,
    axis_name=None,
    block_size: int | None = None,
) -> Array:
    r"""The SigLIP pairwise sigmoid loss.

    .. math::
        \ell_i = -\sum_j \log\sigma\big(z_{ij}\,(\cos(a_i, b_j)/\tau + b)\big),\qquad
        z_{ij} = \begin{cases}1 & i=j\\-1 & i\ne j\end{cases}

    The mean over the batch is SigLIP's loss (``-sum(log_sigmoid) / B``).
    SigLIP learns ``t' = log(1/tau)`` (initialised at ``log 10``) and ``b``
    (initialised at -10): pass them as traced arrays.

    Args:
      embeddings_a: ``[B, D]`` (e.g. image embeddings; normalized inside).
      embeddings_b: ``[B, D]`` (e.g. text embeddings); row ``i`` is the positive of ``embeddings_a[i]``.
      temperature: ``tau`` (> 0); SigLIP's ``1/t`` with ``t = 10`` at init.
      bias: the logit bias.
      where: optional ``[B]`` boolean mask; masked pairs give 0 and are no one's negatives.
      axis_name: mapped axis to gather ``embeddings_b`` over.
      block_size: key columns per block of the streamed similarity matrix (None: all of them when a
        float32 ``[N, M]`` tile fits 256 MiB, else a multiple of 128 that does; never materialized beyond).

    Returns:
      Per-row loss ``[B]`` (this device's rows under ``axis_name``).

    Paper: Zhai, Mustafa, Kolesnikov, Beyer, "Sigmoid Loss for Language Image
    Pre-Training", ICCV 2023, arXiv:2303.15343.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> lossjax.losses.sigmoid_contrastive_loss(x, x).round(4)
      Array([0.6932, 0.6932], dtype=float32)
    """
    fn = "sigmoid_contrastive_loss"
    _check_block(fn, block_size)
    if not isinstance(bias, jax.core.Tracer) and np.ndim(bias) == 0 and not math.isfinite(float(bias)):
        raise ValueError(f"{fn}: `bias` must be a finite number, got {bias!r}.")
    a, b, mask, dtype = paired_batch(fn, embeddings_a, embeddings_b, where)
    t = _temperature(fn, temperature, dtype)
    bias = jnp.asarray(bias).astype(dtype)
    valid = jnp.ones(a.shape[:1], bool) if mask is None else mask
    bg = l2_normalize(gather_batch(b, axis_name))
    vg = gather_batch(valid, axis_name)
    (loss,) = _blocked_views("sigmoid", l2_normalize(a), bg, valid, vg, t, axis_name, bias=bias, block=block_size)
    return C.zero_masked(loss, mask)


def _soft_sample() -> Sample:
    rng = np.random.default_rng(3)
    a = rng.normal(size=(8, 4)).astype(np.float32)
    b = (a + 0.5 * rng.normal(size=(8, 4))).astype(np.float32)
    prior = rng.normal(size=(8, 8)).astype(np.float32)
    # `prior` is pairwise [B, B]: the suite's `where` check slices batched
    # arguments along axis 0 only, which cannot express it, so `where` and
    # `all_masked` for this loss are tested in tests/losses/test_metric.py
    # (masking == slicing prior[idx][:, idx]). For the same reason `fuzz` keeps
    # the batch size (fuzz_batch=False) and the batch is 8 rows, so that the
    # `parallel` property shards it evenly over 8 devices (prior rows [1, 8]).
    # value_tol: the 1e4 extreme gives dot logits of 4e8 and gradients of 2.5e4, whose float32 cancellations
    # leave ~2e-4 in entries that are 0 in float64.
    return Sample(
        args=(a, b, prior),
        diff_argnums=(0, 1),
        where=False,
        fuzz_batch=False,
        variants=({"alpha": 0.5, "prior_temperature": 0.5, "min_weight": 0.0, "distance": "cosine"},),
        value_tol={"rtol": 1e-4, "atol": 1e-3},
    )


@register(
    "soft_infonce_loss",
    family=FAMILY,
    kind="per_example",
    formula="-log(e^{s_ii} / (e^{s_ii} + sum_{j != i} w_ij e^{s_ij})),  "
    "w = max((beta - alpha softmax_j(prior_ij / t_w)) / (beta - alpha / K), min_weight)",
    paper="Rethinking Negative Pairs in Code Search (2023, arXiv:2310.08069)",
    reference="Alex-HaochenLi/Soft-InfoNCE::CodeBERT/models.py::ModelContra.forward (softinfonce, ported to torch)",
    sample=_soft_sample,
    runtime=("axis_name",),
)
def soft_infonce_loss(
    embeddings_a: ArrayLike,
    embeddings_b: ArrayLike,
    prior: ArrayLike,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    prior_temperature: float = 1.0,
    temperature: float = 1.0,
    min_weight: float = 0.1,
    distance: str = "dot",
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""Soft-InfoNCE: InfoNCE whose negatives are weighted by a prior similarity.

    .. math::
        \ell_i = -\log\frac{e^{s_{ii}}}{e^{s_{ii}} + \sum_{j\ne i} w_{ij} e^{s_{ij}}},\qquad
        w_{ij} = \max\Big(\frac{\beta - \alpha\,\mathrm{softmax}_{j\ne i}(r_{ij}/t_w)}{\beta - \alpha/K},\ w_{\min}\Big)

    with ``s = sim(a, b) / temperature`` (``embeddings_a`` are the queries,
    ``embeddings_b`` the keys), ``r`` the prior similarity of query
    ``i`` and key ``j`` (e.g. BM25, SimCSE or a trained model's scores; not
    differentiated) and ``K`` the number of negatives of the row. With
    ``alpha = 0`` this is InfoNCE. Negatives that the prior finds similar to
    the query (likely false negatives) get a smaller weight.

    Args:
      embeddings_a: ``[B, D]`` queries.
      embeddings_b: ``[B, D]`` keys; ``embeddings_b[i]`` is the positive of ``embeddings_a[i]``.
      prior: ``[B, B_total]`` prior similarities (rows: this device's queries;
        columns: all keys, gathered order; the diagonal is ignored).
      alpha: the paper's ``alpha`` (``--weight_kl``), >= 0.
      beta: the paper's ``beta`` (``--weight_unif``), > alpha / K for every row with ``K >= 2``
        negatives (checked in debug mode). A row with a single negative gives it weight 1 (its
        softmax weight is ``1 = 1/K``, so the ratio is 1 for any ``alpha``, ``beta``).
      prior_temperature: ``t_w``, the softmax temperature of the prior (``--t``).
      temperature: divides the query-key similarity (the reference uses 1).
      min_weight: the clip floor of the weights (0.1 in the reference).
      distance: the similarity: ``"dot"`` (the reference) or ``"cosine"``.
      where: optional ``[B]`` boolean mask.
      axis_name: mapped axis to gather the keys over.

    Returns:
      Per-query loss ``[B]``.

    Paper: Li, Zhou, Tuan, Miao, "Rethinking Negative Pairs in Code Search",
    EMNLP 2023, arXiv:2310.08069. The paper tunes ``alpha, beta, t_w`` per
    model (appendix); the defaults here are neutral, not the paper's.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> q = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> lossjax.losses.soft_infonce_loss(q, q, jnp.zeros((2, 2)), alpha=0.0).round(4)
      Array([0.3133, 0.3133], dtype=float32)
    """
    fn = "soft_infonce_loss"
    C.check_one_of(fn, "distance", distance, ("cosine", "dot"))
    C.check_positive(fn, "alpha", alpha, allow_zero=True)
    C.check_positive(fn, "beta", beta)
    C.check_positive(fn, "prior_temperature", prior_temperature)
    C.check_positive(fn, "min_weight", min_weight, allow_zero=True)
    pr = _paired(fn, embeddings_a, embeddings_b, where, axis_name)
    n, m_tot = pr.cols.shape
    r = C.check_array(fn, "prior", prior, ndim=2, dtype="number")
    if r.shape != (n, m_tot):
        raise ValueError(f"{fn}: `prior` must have shape (B, B_total)={(n, m_tot)}, got {r.shape}.")
    t = _temperature(fn, temperature, pr.dtype)
    logits = _logits(pr.a, pr.bg, distance, t)
    zero = jnp.zeros((), logits.dtype)
    negs = pr.cols & ~pr.diag
    r = jax.lax.stop_gradient(C.as_compute(r, pr.dtype)) / prior_temperature
    r = jnp.where(negs, r, zero)
    soft = jnp.exp(r - masked_logsumexp(r, negs)[:, None])
    one = jnp.ones((), logits.dtype)
    k = jnp.sum(negs, axis=-1, keepdims=True).astype(logits.dtype)
    # With one negative its softmax weight is 1 = 1/K: numerator and denominator are equal (0/0 when
    # alpha = beta), so the weight is exactly 1. The double where keeps 0/0 out of the gradient too.
    single = k <= 1
    denom = beta - alpha / jnp.maximum(k, one)
    C.debug_check(
        jnp.all(single | ~jnp.any(negs, axis=-1, keepdims=True) | (denom > 0)),
        f"{fn}: `beta` must exceed alpha / K for every row with K >= 2 negatives (the weights' denominator)",
    )
    w = jnp.where(single, one, (beta - alpha * soft) / jnp.where(single, one, denom))
    w = jnp.maximum(w, jnp.asarray(min_weight, logits.dtype))
    logw = jnp.log(jnp.where(negs, w, jnp.ones((), w.dtype)))
    target = jnp.sum(jnp.where(pr.diag, logits, zero), axis=-1)
    # log w is added to the logits' differences from the positive, not to the logits: at logits of 4e8 (1e4
    # embeddings) a float32 ulp is 32 and would swallow it.
    rel = logits - target[:, None]
    return C.zero_masked(_ce_against(jnp.zeros_like(target), rel + logw, negs), pr.mask)


@register(
    "continuously_weighted_contrastive_loss",
    aliases=("cwcl_loss",),
    family=FAMILY,
    kind="per_example",
    formula="1/2 sum_{dir} -1/sum_j w_ij sum_j w_ij log softmax_j(cos(p_i, q_j)/t),  w_ij = (1 + cos(q_i, q_j))/2",
    paper="CWCL: Cross-Modal Transfer with Continuously Weighted Contrastive Loss (2023, arXiv:2309.14580)",
    reference="no official code: the paper's equation, ported to torch in tests/reference/make_metric.py",
    # The weights are stop-gradient functions of `frozen_embeddings`, so finite
    # differences only match autodiff for `embeddings` (the gradient wrt the
    # frozen side is checked against the torch port in tests/losses/test_metric.py).
    sample=lambda: _paired_sample(diff_argnums=(0,)),
    runtime=("axis_name",),
)
def continuously_weighted_contrastive_loss(
    embeddings: ArrayLike,
    frozen_embeddings: ArrayLike,
    *,
    temperature: float = 0.07,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""CWCL: contrastive alignment with continuous similarity weights from a frozen modality.

    .. math::
        \ell_i^{p\to q} = -\frac{1}{\sum_j w_{ij}}\sum_j w_{ij}
            \log\frac{\exp(\cos(p_i,q_j)/\tau)}{\sum_k\exp(\cos(p_i,q_k)/\tau)},\qquad
        w_{ij} = \frac{1 + \cos(q_i, q_j)}{2}

    and ``l_i = (l_i^{p->q} + l_i^{q->p}) / 2`` with the same weights. The
    weights come from the pretrained (frozen) modality ``q`` and are not
    differentiated; ``w_ii = 1`` so every row has a positive weight.

    Args:
      embeddings: ``[B, D]``, the modality being trained (``p``).
      frozen_embeddings: ``[B, D]``, the pretrained modality (``q``); row ``i``
        is the positive of ``embeddings[i]``.
      temperature: ``tau`` (> 0).
      where: optional ``[B]`` boolean mask.
      axis_name: mapped axis to gather both sides over.

    Returns:
      Per-pair loss ``[B]``.

    Paper: Srinivasa et al., "CWCL: Cross-Modal Transfer with Continuously
    Weighted Contrastive Loss", NeurIPS 2023, arXiv:2309.14580.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> lossjax.losses.continuously_weighted_contrastive_loss(x, x, temperature=1.0).round(4)
      Array([0.6466, 0.6466], dtype=float32)
    """
    fn = "continuously_weighted_contrastive_loss"
    pr = _paired(fn, embeddings, frozen_embeddings, where, axis_name, names=("embeddings", "frozen_embeddings"))
    t = _temperature(fn, temperature, pr.dtype)
    zero = jnp.zeros((), pr.dtype)
    w = jax.lax.stop_gradient((1.0 + pairwise_similarity(pr.b, pr.bg, distance="cosine")) / 2.0)
    w = jnp.where(pr.cols, w, zero)
    wsum = jnp.maximum(jnp.sum(w, axis=-1), jnp.asarray(1e-12, pr.dtype))

    def direction(rows, cols_emb):
        logits = _logits(rows, cols_emb, "cosine", t)
        logp = logits - masked_logsumexp(logits, pr.cols)[:, None]
        return -jnp.sum(jnp.where(pr.cols, w * logp, zero), axis=-1) / wsum

    loss = 0.5 * (direction(pr.a, pr.bg) + direction(pr.b, pr.ag))
    return C.zero_masked(loss, pr.mask)


# --------------------------------------------------------------------------
# Pair regularizers over the batch (label masks).
# --------------------------------------------------------------------------


def _cosine_pairs(fn: str, embeddings, labels, where, axis_name):
    """Cosines of the normalized local rows against the gathered batch, with its pair masks."""
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name, normalize=True)
    sim = pairwise_similarity(b.x, b.x_all, distance="dot")  # rows are unit vectors (or 0 when padded)
    return sim, b.pos, b.neg, b.valid, b.dtype


def _pair_sample(**kw) -> Sample:
    rng = np.random.default_rng(3)
    n, d, c = 8, 4, 3
    centers = rng.normal(size=(c, d)) * 1.5
    labels = (np.arange(n) % c).astype(np.int32)
    emb = (centers[labels] + 0.6 * rng.normal(size=(n, d))).astype(np.float32)
    return Sample(args=(emb, labels), diff_argnums=(0,), **kw)


@register(
    "orthogonal_projection_loss",
    aliases=("opl",),
    family=FAMILY,
    kind="batch",
    formula="(1 - mean_{i!=j, y_i=y_j} <f_i, f_j>) + w mean_{y_i!=y_j} <f_i, f_j>  (|.| with absolute=True)",
    paper="Orthogonal Projection Loss (2021, arXiv:2103.14021)",
    reference="kahnchana/opl loss.py::OrthogonalProjectionLoss (ported)",
    sample=lambda: _pair_sample(variants=({"absolute": True, "neg_weight": 1.0},)),
    runtime=("axis_name",),
)
def orthogonal_projection_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    neg_weight: float = 0.5,
    absolute: bool = False,
    axis_name=None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Orthogonal projection loss: same-class features parallel, other classes orthogonal.

    .. math::
        s = \frac{\sum_{i\ne j,\,y_i=y_j}\langle\hat f_i,\hat f_j\rangle}{|\{i\ne j, y_i = y_j\}| + 10^{-6}},\quad
        d = \frac{\sum_{y_i\ne y_j}\langle\hat f_i,\hat f_j\rangle}{|\{y_i\ne y_j\}| + 10^{-6}},\quad
        \ell = (1 - s) + w\,d

    The reference code averages the signed inner products (``absolute=False``,
    its "removed abs"); the paper's equation uses :math:`|\langle\cdot,\cdot\rangle|`
    (``absolute=True``). Added to cross-entropy with weight 1 in the paper.
    With ``axis_name`` the pair sums run over the global batch.

    Args:
      embeddings: ``[N, D]`` features (normalized inside).
      labels: ``[N]`` integer class indices.
      neg_weight: ``w``, the weight of the inter-class (negative-pair) term: the
        paper's ``gamma`` (0.5; the reference class defaults to 2).
      absolute: average :math:`|\langle f_i, f_j\rangle|` over negative pairs.
      axis_name: mapped axis name(s) when the batch is sharded.
      where: optional ``[N]`` boolean mask.

    Returns:
      The scalar batch loss (0 for an all-masked batch).

    Paper: Ranasinghe et al., "Orthogonal Projection Loss", ICCV 2021, arXiv:2103.14021.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
      >>> lossjax.losses.orthogonal_projection_loss(x, jnp.array([0, 0, 1])).round(4)
      Array(0., dtype=float32)
    """
    fn = "orthogonal_projection_loss"
    C.check_positive(fn, "neg_weight", neg_weight, allow_zero=True)
    sim, pos, neg, valid, dtype = _cosine_pairs(fn, embeddings, labels, where, axis_name)
    zero = jnp.zeros((), dtype)
    nsim = jnp.abs(sim) if absolute else sim
    pos_sum = psum(jnp.sum(jnp.where(pos, sim, zero)), axis_name)
    neg_sum = psum(jnp.sum(jnp.where(neg, nsim, zero)), axis_name)
    pos_n = psum(jnp.sum(pos), axis_name).astype(dtype)
    neg_n = psum(jnp.sum(neg), axis_name).astype(dtype)
    eps = jnp.asarray(1e-6, dtype)
    loss = (1 - pos_sum / (pos_n + eps)) + jnp.asarray(neg_weight, dtype) * neg_sum / (neg_n + eps)
    any_valid = psum(jnp.sum(valid), axis_name) > 0
    return jnp.where(any_valid, loss, zero)


@register(
    "threshold_consistent_margin_loss",
    aliases=("tcm_loss",),
    family=FAMILY,
    kind="batch",
    formula="w+ mean_{s_ap <= m+}(m+ - s_ap) + w- mean_{s_an >= m-}(s_an - m-)",
    paper="Threshold-Consistent Margin Loss for Open-World Deep Metric Learning (2023, arXiv:2307.04047)",
    reference="pytorch_metric_learning.losses.ThresholdConsistentMarginLoss",
    sample=_pair_sample,
    runtime=("axis_name",),
)
def threshold_consistent_margin_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    pos_margin: float = 0.9,
    neg_margin: float = 0.5,
    pos_weight: float = 1.0,
    neg_weight: float = 1.0,
    axis_name=None,
    where: ArrayLike | None = None,
) -> Array:
    r"""TCM: penalizes positive pairs below ``m+`` and negative pairs above ``m-`` (cosine similarity).

    .. math::
        \ell = \lambda^+\frac{\sum_{(a,p):\,s_{ap}\le m^+}(m^+ - s_{ap})}{|\{s_{ap}\le m^+\}|}
        + \lambda^-\frac{\sum_{(a,n):\,s_{an}\ge m^-}(s_{an} - m^-)}{|\{s_{an}\ge m^-\}|}

    over all ordered pairs of the batch (``a != p`` same label, ``a, n``
    different labels); an empty set contributes 0. A regularizer added to a
    base metric loss. With ``axis_name`` the pairs span the global batch.

    Args:
      embeddings: ``[N, D]`` (normalized inside).
      labels: ``[N]`` integer class indices.
      pos_margin: ``m+`` (0.9), the cosine below which a positive pair costs.
      neg_margin: ``m-`` (0.5), the cosine above which a negative pair costs.
      pos_weight: ``lambda+`` (1), the weight of the positive term.
      neg_weight: ``lambda-`` (1), the weight of the negative term.
      axis_name: mapped axis name(s) when the batch is sharded.
      where: optional ``[N]`` boolean mask.

    Returns:
      The scalar batch loss.

    Paper: Zhang et al., "Threshold-Consistent Margin Loss for Open-World Deep
    Metric Learning", ICLR 2024, arXiv:2307.04047.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
      >>> round(float(lossjax.losses.threshold_consistent_margin_loss(x, jnp.array([0, 0, 1]))), 4)
      0.6
    """
    fn = "threshold_consistent_margin_loss"
    for name, v in (("pos_margin", pos_margin), ("neg_margin", neg_margin)):
        C.check_in_range(fn, name, v, -1.0, 1.0)
    C.check_positive(fn, "pos_weight", pos_weight, allow_zero=True)
    C.check_positive(fn, "neg_weight", neg_weight, allow_zero=True)
    sim, pos, neg, _, dtype = _cosine_pairs(fn, embeddings, labels, where, axis_name)
    zero = jnp.zeros((), dtype)
    mp = jnp.asarray(pos_margin, dtype)
    mm = jnp.asarray(neg_margin, dtype)
    hard_pos = pos & (sim <= mp)
    hard_neg = neg & (sim >= mm)
    pos_sum = psum(jnp.sum(jnp.where(hard_pos, mp - sim, zero)), axis_name)
    neg_sum = psum(jnp.sum(jnp.where(hard_neg, sim - mm, zero)), axis_name)
    pos_n = psum(jnp.sum(hard_pos), axis_name).astype(dtype)
    neg_n = psum(jnp.sum(hard_neg), axis_name).astype(dtype)
    one = jnp.ones((), dtype)
    pos_term = jnp.where(pos_n > 0, pos_sum / jnp.maximum(pos_n, one), zero)
    neg_term = jnp.where(neg_n > 0, neg_sum / jnp.maximum(neg_n, one), zero)
    return jnp.asarray(pos_weight, dtype) * pos_term + jnp.asarray(neg_weight, dtype) * neg_term


# --------------------------------------------------------------------------
# More of pytorch-metric-learning's losses (issue 15), with its defaults:
# distances (LpDistance normalizes the embeddings), reducers, all pairs.
# --------------------------------------------------------------------------


def _pml_pair_sample(**kw) -> Sample:
    rng = np.random.default_rng(31)
    x = rng.normal(size=(8, 4)).astype(np.float32)
    return Sample(args=(x, np.array([0, 0, 1, 1, 2, 2, 0, 1], np.int32)), bf16_tol=3e-2, **kw)


def _pair_counts(mask: Array, dtype) -> Array:
    return jnp.sum(mask, axis=-1).astype(dtype)


@register(
    "margin_loss",
    family=FAMILY,
    kind="batch",
    formula="sum_{(a,p,n)} [d_ap - beta_a + m]_+ + [beta_a - d_an + m]_+ / #(terms > 0)  (+ nu * beta)",
    paper="Sampling Matters in Deep Embedding Learning (2017, arXiv:1706.07567)",
    reference=f"{_PML}::losses/margin_loss.py::MarginLoss (DivisorReducer)",
    sample=lambda: _pml_pair_sample(
        variants=({"beta": np.array([1.0, 1.1, 1.3], np.float32), "nu": 0.1, "margin": 0.3}, {"nu": 0.05})
    ),
    runtime=("axis_name", "memory"),
)
def margin_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    beta: ArrayLike = 1.2,
    margin: float = 0.2,
    nu: float = 0.0,
    normalize: bool = True,
    where: ArrayLike | None = None,
    axis_name=None,
    memory: CrossBatchMemory | None = None,
) -> Array:
    r"""Margin loss (Wu et al.) over all triplets of a labelled batch, with a (learnable) boundary ``beta``.

    .. math::
        \mathcal L = \frac{\sum_{(a,p,n)}\big([d_{ap} - \beta_a + m]_+ + [\beta_a - d_{an} + m]_+\big)
                          + \nu\sum_{(a,p,n)}\beta_{y_a}}
                         {\#\{[d_{ap} - \beta_a + m]_+ > 0\} + \#\{[\beta_a - d_{an} + m]_+ > 0\}}

    over every (anchor, positive, negative) triplet (never built: per anchor
    the positive and negative terms are counted against each other), with
    Euclidean distances of normalized embeddings. ``beta`` is a scalar or one
    per class ``[C]`` (indexed by the anchor's label); it is an input, so it
    can be learned: differentiate with respect to it. The regularizer
    ``nu * beta`` is PML's ``learn_beta`` term: for a scalar ``beta`` it is
    added as is, ``nu * beta`` (not divided); per class, summed over triplets
    and divided like the loss. 0 when no term is positive.

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]`` (class ids ``< C`` for a per-class ``beta``).
      beta: the boundary, a scalar or ``[C]`` (1.2).
      margin: ``m`` (0.2).
      nu: the weight of the ``beta`` regularizer (0: none).
      normalize: L2-normalize the embeddings first (PML's ``LpDistance``).
      where: optional ``[N]`` mask of real examples.
      axis_name: mapped axis to gather the batch over.
      memory: optional :class:`CrossBatchMemory` (XBM): the anchors of this batch
        are paired with the memory after this batch's enqueue (stop-gradient
        references) instead of the batch; update it with ``memory.update(...)``.

    Returns:
      Scalar loss.

    Paper: Wu, Manmatha, Smola, Krahenbuhl, "Sampling Matters in Deep
    Embedding Learning", ICCV 2017, arXiv:1706.07567.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[0.0], [1.0], [3.0]])
      >>> y = jnp.array([0, 0, 1])
      >>> float(lossjax.losses.margin_loss(x, y, beta=1.5, margin=1.0, normalize=False))  # (0.5 + 0.5 + 0.5) / 3
      0.5
    """
    fn = "margin_loss"
    C.check_positive(fn, "margin", margin, allow_zero=True)
    C.check_positive(fn, "nu", nu, allow_zero=True)
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name, normalize=normalize, memory=memory)
    dtype = b.dtype
    beta = jnp.asarray(beta)
    if beta.ndim > 1:
        raise ValueError(f"{fn}: `beta` must be a scalar or a per-class vector [C], got shape {beta.shape}.")
    beta = beta.astype(dtype)
    n = b.x.shape[0]
    if beta.ndim == 1:
        row_labels = jax.lax.dynamic_slice_in_dim(b.labels_all, axis_offset(axis_name, n), n)
        beta_a = jnp.take(beta, jnp.clip(row_labels, 0, beta.shape[0] - 1))
    else:
        beta_a = jnp.broadcast_to(beta, (n,))
    d = pairwise_similarity(b.x, b.x_all, distance="euclidean")
    zero = jnp.zeros((), dtype)
    pos_l = jnp.where(b.pos, jax.nn.relu(d - beta_a[:, None] + margin), zero)
    neg_l = jnp.where(b.neg, jax.nn.relu(beta_a[:, None] - d + margin), zero)
    n_pos, n_neg = _pair_counts(b.pos, dtype), _pair_counts(b.neg, dtype)
    total = jnp.sum(jnp.sum(pos_l, -1) * n_neg + jnp.sum(neg_l, -1) * n_pos)
    divisor = jnp.sum(_pair_counts(pos_l > 0, dtype) * n_neg + _pair_counts(neg_l > 0, dtype) * n_pos)
    if beta.ndim == 1 and nu:
        total = total + nu * jnp.sum(beta_a * n_pos * n_neg)
    total, divisor = psum(total, axis_name), psum(divisor, axis_name)
    loss = jnp.where(divisor > 0, total / jnp.maximum(divisor, jnp.ones((), dtype)), zero)
    if beta.ndim == 0 and nu:  # PML adds it as is, when the batch has a triplet
        has_triplet = psum(jnp.sum(n_pos * n_neg), axis_name) > 0
        loss = loss + jnp.where(has_triplet, nu * beta, zero)
    return loss


@register(
    "nca_loss",
    family=FAMILY,
    kind="batch",
    formula="mean_{i: P(i) nonempty} -log( sum_{p in P(i)} e^{-s d_ip^2} / sum_{j != i} e^{-s d_ij^2} )",
    paper="Neighbourhood Components Analysis (Goldberger, Roweis, Hinton, Salakhutdinov, NeurIPS 2004)",
    reference=f"{_PML}::losses/nca_loss.py::NCALoss (LpDistance(power=2), MeanReducer)",
    sample=lambda: _pml_pair_sample(variants=({"scale": 4.0},)),
    runtime=("axis_name", "memory"),
)
def nca_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    scale: float = 1.0,
    normalize: bool = True,
    where: ArrayLike | None = None,
    axis_name=None,
    memory: CrossBatchMemory | None = None,
) -> Array:
    r"""Neighbourhood components analysis: -log P(an example's soft nearest neighbour shares its label).

    .. math::
        \ell_i = -\log\frac{\sum_{p\in P(i)} e^{-s\,d_{ip}^2}}{\sum_{j\ne i} e^{-s\,d_{ij}^2}},\qquad
        \mathcal L = \operatorname{mean}_{i:\ P(i)\neq\emptyset}\ \ell_i

    with squared Euclidean distances of normalized embeddings; anchors without
    a positive are left out of the mean (PML drops rows whose probability is 0).

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      scale: ``s``, the softmax scale (PML's ``softmax_scale``, 1).
      normalize: L2-normalize the embeddings first (PML's ``LpDistance``).
      where: optional ``[N]`` mask of real examples.
      axis_name: mapped axis to gather the batch over.
      memory: optional :class:`CrossBatchMemory` (XBM): the anchors of this batch
        are paired with the memory after this batch's enqueue (stop-gradient
        references) instead of the batch; update it with ``memory.update(...)``.

    Returns:
      Scalar loss.

    Paper: Goldberger, Roweis, Hinton, Salakhutdinov, "Neighbourhood Components
    Analysis", NeurIPS 2004.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[0.0], [1.0], [2.0]])
      >>> y = jnp.array([0, 0, 1])
      >>> round(float(lossjax.losses.nca_loss(x, y, normalize=False)), 4)  # mean of log(1 + e^-3) and log 2
      0.3709
    """
    fn = "nca_loss"
    has, per = _nca_rows(fn, embeddings, labels, scale, normalize, where, axis_name, memory)
    return _global_mean(jnp.sum(per), _count(has, per.dtype), axis_name)


def _nca_rows(fn, embeddings, labels, scale, normalize, where, axis_name, memory):
    """Which anchors have a positive ``[n]`` and each anchor's NCA loss ``[n]`` (0 without a positive)."""
    C.check_positive(fn, "scale", scale)
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name, normalize=normalize, memory=memory)
    logits = -jnp.asarray(scale, b.dtype) * pairwise_similarity(b.x, b.x_all, distance="squared_euclidean")
    has = jnp.any(b.pos, axis=-1)
    per = masked_logsumexp(logits, b.pos | b.neg, axis=1) - masked_logsumexp(logits, b.pos, axis=1)
    return has, jnp.where(has, per, jnp.zeros((), b.dtype))


@register(
    "nca_loss_per_anchor",
    family=FAMILY,
    kind="per_example",
    formula="l_i = -log( sum_{p in P(i)} e^{-s d_ip^2} / sum_{j != i} e^{-s d_ij^2} )  (0 if P(i) is empty)",
    paper="Neighbourhood Components Analysis (Goldberger, Roweis, Hinton, Salakhutdinov, NeurIPS 2004)",
    reference=f"{_PML}::losses/nca_loss.py::NCALoss(reducer=PerAnchorReducer(DoNothingReducer()))",
    sample=_pml_pair_sample,
    runtime=("axis_name",),
)
def nca_loss_per_anchor(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    scale: float = 1.0,
    normalize: bool = True,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""The NCA loss of each anchor, unreduced ``[N]``.

    .. math::
        \ell_i = -\log\frac{\sum_{p\in P(i)} e^{-s\,d_{ip}^2}}{\sum_{j\ne i} e^{-s\,d_{ij}^2}}

    (0 for an anchor without a positive): pytorch-metric-learning's ``NCALoss``
    with ``reducer=PerAnchorReducer(DoNothingReducer())`` (its element losses,
    which leave out the anchors without a positive). :func:`nca_loss` is the
    mean of ``l_i`` over the anchors that have a positive.

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      scale, normalize: as in :func:`nca_loss`.
      where: optional ``[N]`` mask of real examples (0 there).
      axis_name: mapped axis to gather the batch over (each device returns its own anchors).

    Returns:
      Per-anchor loss ``[N]``.

    Paper: Goldberger, Roweis, Hinton, Salakhutdinov, "Neighbourhood Components
    Analysis", NeurIPS 2004.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[0.0], [1.0], [2.0]])
      >>> out = lossjax.losses.nca_loss_per_anchor(x, jnp.array([0, 0, 1]), normalize=False)
      >>> [round(v, 4) for v in out.tolist()]  # log(1 + e^-3), log 2; anchor 2 has no positive
      [0.0486, 0.6931, 0.0]
    """
    fn = "nca_loss_per_anchor"
    return _nca_rows(fn, embeddings, labels, scale, normalize, where, axis_name, None)[1]


@register(
    "tuplet_margin_loss",
    family=FAMILY,
    kind="batch",
    formula="mean_{(a,p)} log(1 + sum_{n in N(a)} e^{s (cos_an - cos(theta_ap - m))})",
    paper="Deep Metric Learning with Tuplet Margin Loss (Yu, Tao, ICCV 2019)",
    reference=f"{_PML}::losses/tuplet_margin_loss.py::TupletMarginLoss (CosineSimilarity, MeanReducer)",
    sample=lambda: _pml_pair_sample(variants=({"margin": 20.0, "scale": 8.0},)),
    runtime=("axis_name", "memory"),
)
def tuplet_margin_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float = 5.73,
    scale: float = 64.0,
    where: ArrayLike | None = None,
    axis_name=None,
    memory: CrossBatchMemory | None = None,
) -> Array:
    r"""Tuplet margin loss: per positive pair, a softplus-like sum over the anchor's negatives with an angular margin.

    .. math::
        \ell_{ap} = \log\Big(1 + \sum_{n\in N(a)} e^{s\,(\cos\theta_{an} - \cos(\theta_{ap} - m))}\Big),\qquad
        \mathcal L = \operatorname{mean}_{(a,p)}\ \ell_{ap}

    over every ordered positive pair; ``cos(theta - m)`` is expanded as
    ``cos theta cos m + sin theta sin m`` with ``sin theta`` from a safe square
    root (finite gradients at ``cos theta = +-1``, where ``acos`` has none).

    Args:
      embeddings: ``[N, D]`` (cosine similarities).
      labels: integer labels ``[N]``.
      margin: ``m`` in degrees (5.73, PML's default: 0.1 rad).
      scale: ``s`` (64).
      where: optional ``[N]`` mask of real examples.
      axis_name: mapped axis to gather the batch over.
      memory: optional :class:`CrossBatchMemory` (XBM): the anchors of this batch
        are paired with the memory after this batch's enqueue (stop-gradient
        references) instead of the batch; update it with ``memory.update(...)``.

    Returns:
      Scalar loss (0 without positive pairs).

    Paper: Yu, Tao, "Deep Metric Learning with Tuplet Margin Loss", ICCV 2019.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
      >>> y = jnp.array([0, 0, 1])
      >>> round(float(lossjax.losses.tuplet_margin_loss(x, y, margin=0.0, scale=1.0)), 4)  # log(1 + e^-1)
      0.3133
    """
    fn = "tuplet_margin_loss"
    b, per_pair = _tuplet_pairs(fn, embeddings, labels, margin, scale, where, axis_name, memory)
    return _global_mean(jnp.sum(per_pair), _count(b.pos, per_pair.dtype), axis_name)


def _tuplet_pairs(fn, embeddings, labels, margin, scale, where, axis_name, memory):
    """The labelled batch and each positive pair's tuplet term ``[n, M]`` (0 off them)."""
    C.check_in_range(fn, "margin", margin, 0.0, 180.0)
    C.check_positive(fn, "scale", scale)
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name, memory=memory)
    cos = pairwise_similarity(b.x, b.x_all, distance="cosine")
    m = float(np.radians(margin))
    sin = C.safe_sqrt(jnp.maximum(1 - cos * cos, jnp.zeros((), cos.dtype)))
    cos_m = cos * math.cos(m) + sin * math.sin(m)  # cos(theta_ap - m), theta in [0, pi]
    # [n, M(p), M(n)] would be cubic: per anchor, lse over negatives of s cos_an, shifted per positive.
    neg_lse = masked_logsumexp(scale * cos, b.neg, axis=1)  # [n]
    has_neg = jnp.any(b.neg, axis=-1)
    inner = jnp.where(has_neg[:, None], neg_lse[:, None] - scale * cos_m, -jnp.inf)
    return b, jnp.where(b.pos, jax.nn.softplus(inner), jnp.zeros((), cos.dtype))


@register(
    "tuplet_margin_loss_per_anchor",
    family=FAMILY,
    kind="per_example",
    formula="l_a = mean_{p pos of a} log(1 + sum_{n neg of a} e^{s (cos_an - cos(theta_ap - m))})  (0 if none)",
    paper="Deep Metric Learning with Tuplet Margin Loss (Yu, Tao, ICCV 2019)",
    reference=f"{_PML}::losses/tuplet_margin_loss.py::TupletMarginLoss(reducer=DoNothingReducer()) pos-pair "
    "losses through reducers/per_anchor_reducer.py::PerAnchorReducer(DoNothingReducer())",
    sample=_pml_pair_sample,
    runtime=("axis_name",),
)
def tuplet_margin_loss_per_anchor(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float = 5.73,
    scale: float = 64.0,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""The tuplet margin loss of each anchor: the mean over its positive pairs, unreduced ``[N]``.

    .. math::
        \ell_a = \frac{1}{|P(a)|}\sum_{p\in P(a)}
                 \log\Big(1 + \sum_{n\in N(a)} e^{s\,(\cos\theta_{an} - \cos(\theta_{ap} - m))}\Big)

    (0 for an anchor without a positive): pytorch-metric-learning's
    ``TupletMarginLoss`` pair losses (``pos_pair``) averaged per anchor by its
    ``PerAnchorReducer``. :func:`tuplet_margin_loss` is the mean over all
    ordered positive pairs, ``sum_a |P(a)| l_a / sum_a |P(a)|``.

    Args:
      embeddings: ``[N, D]`` (cosine similarities).
      labels: integer labels ``[N]``.
      margin, scale: as in :func:`tuplet_margin_loss`.
      where: optional ``[N]`` mask of real examples (0 there).
      axis_name: mapped axis to gather the batch over (each device returns its own anchors).

    Returns:
      Per-anchor loss ``[N]``.

    Paper: Yu, Tao, "Deep Metric Learning with Tuplet Margin Loss", ICCV 2019.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
      >>> out = lossjax.losses.tuplet_margin_loss_per_anchor(x, jnp.array([0, 0, 1]), margin=0.0, scale=1.0)
      >>> [round(v, 4) for v in out.tolist()]  # log(1 + e^-1) for each pair; anchor 2 has no positive
      [0.3133, 0.3133, 0.0]
    """
    fn = "tuplet_margin_loss_per_anchor"
    b, per_pair = _tuplet_pairs(fn, embeddings, labels, margin, scale, where, axis_name, None)
    return _pair_mean_per_anchor(per_pair, b.pos)


@register(
    "generalized_lifted_structure_loss",
    family=FAMILY,
    kind="batch",
    formula="mean_i [log sum_{p in P(i)} e^{d_ip - m_pos} + log sum_{n in N(i)} e^{m_neg - d_in}]_+",
    paper="In Defense of the Triplet Loss for Person Re-Identification (2017, arXiv:1703.07737), p. 4",
    reference=f"{_PML}::losses/lifted_structure_loss.py::GeneralizedLiftedStructureLoss (MeanReducer)",
    sample=lambda: _pml_pair_sample(variants=({"pos_margin": 0.2, "neg_margin": 0.7},)),
    runtime=("axis_name", "memory"),
)
def generalized_lifted_structure_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    pos_margin: float = 0.0,
    neg_margin: float = 1.0,
    normalize: bool = True,
    where: ArrayLike | None = None,
    axis_name=None,
    memory: CrossBatchMemory | None = None,
) -> Array:
    r"""Generalized lifted structure loss: per anchor, a soft hardest positive against a soft hardest negative.

    .. math::
        \ell_i = \Big[\log\sum_{p\in P(i)} e^{d_{ip} - m_+} + \log\sum_{n\in N(i)} e^{m_- - d_{in}}\Big]_+,\qquad
        \mathcal L = \frac1N\sum_i \ell_i

    with Euclidean distances of normalized embeddings; an empty sum counts 0
    and every anchor counts in the mean (PML's ``MeanReducer``).

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      pos_margin: ``m_+`` (0).
      neg_margin: ``m_-`` (1).
      normalize: L2-normalize the embeddings first (PML's ``LpDistance``).
      where: optional ``[N]`` mask of real examples.
      axis_name: mapped axis to gather the batch over.
      memory: optional :class:`CrossBatchMemory` (XBM): the anchors of this batch
        are paired with the memory after this batch's enqueue (stop-gradient
        references) instead of the batch; update it with ``memory.update(...)``.

    Returns:
      Scalar loss.

    Paper: Hermans, Beyer, Leibe, "In Defense of the Triplet Loss for Person
    Re-Identification", 2017, arXiv:1703.07737 (the generalization of Song et
    al.'s lifted structure loss, arXiv:1511.06452).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[0.0], [1.0], [3.0]])
      >>> y = jnp.array([0, 0, 1])
      >>> loss = lossjax.losses.generalized_lifted_structure_loss(x, y, neg_margin=4.0, normalize=False)
      >>> round(float(loss), 4)  # (1 + 1, 1 + 2, log(e + e^2)) / 3
      2.4378
    """
    fn = "generalized_lifted_structure_loss"
    b, per = _generalized_lifted_rows(fn, embeddings, labels, pos_margin, neg_margin, normalize, where, axis_name,
                                      memory)  # fmt: skip
    return _global_mean(jnp.sum(per), _count(b.valid, per.dtype), axis_name)


def _generalized_lifted_rows(fn, embeddings, labels, pos_margin, neg_margin, normalize, where, axis_name, memory):
    """The labelled batch and each anchor's generalized lifted structure loss ``[n]`` (0 on padded rows)."""
    C.check_positive(fn, "pos_margin", pos_margin, allow_zero=True)
    C.check_positive(fn, "neg_margin", neg_margin, allow_zero=True)
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name, normalize=normalize, memory=memory)
    d = pairwise_similarity(b.x, b.x_all, distance="euclidean")
    per = jax.nn.relu(masked_logsumexp(d - pos_margin, b.pos, axis=1) + masked_logsumexp(neg_margin - d, b.neg, axis=1))
    return b, jnp.where(b.valid, per, jnp.zeros((), d.dtype))


@register(
    "generalized_lifted_structure_loss_per_anchor",
    family=FAMILY,
    kind="per_example",
    formula="l_i = [log sum_{p in P(i)} e^{d_ip - m_pos} + log sum_{n in N(i)} e^{m_neg - d_in}]_+",
    paper="In Defense of the Triplet Loss for Person Re-Identification (2017, arXiv:1703.07737), p. 4",
    reference=f"{_PML}::losses/lifted_structure_loss.py::GeneralizedLiftedStructureLoss("
    "reducer=PerAnchorReducer(DoNothingReducer()))",
    sample=lambda: _pml_pair_sample(variants=({"pos_margin": 0.2, "neg_margin": 0.7},)),
    runtime=("axis_name",),
)
def generalized_lifted_structure_loss_per_anchor(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    pos_margin: float = 0.0,
    neg_margin: float = 1.0,
    normalize: bool = True,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""The generalized lifted structure loss of each anchor, unreduced ``[N]``.

    .. math::
        \ell_i = \Big[\log\sum_{p\in P(i)} e^{d_{ip} - m_+} + \log\sum_{n\in N(i)} e^{m_- - d_{in}}\Big]_+

    (an empty sum counts 0): pytorch-metric-learning's
    ``GeneralizedLiftedStructureLoss`` with
    ``reducer=PerAnchorReducer(DoNothingReducer())`` (its element losses, one
    per anchor). :func:`generalized_lifted_structure_loss` is their mean over
    the real examples.

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      pos_margin, neg_margin, normalize: as in :func:`generalized_lifted_structure_loss`.
      where: optional ``[N]`` mask of real examples (0 there).
      axis_name: mapped axis to gather the batch over (each device returns its own anchors).

    Returns:
      Per-anchor loss ``[N]``.

    Paper: Hermans, Beyer, Leibe, "In Defense of the Triplet Loss for Person
    Re-Identification", 2017, arXiv:1703.07737.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[0.0], [0.5], [1.5]])
      >>> out = lossjax.losses.generalized_lifted_structure_loss_per_anchor(x, jnp.array([0, 0, 1]), normalize=False)
      >>> [round(v, 4) for v in out.tolist()]  # 0.5 + (1 - 1.5), 0.5 + (1 - 1), 0 + log(e^-0.5 + e^0)
      [0.0, 0.5, 0.4741]
    """
    fn = "generalized_lifted_structure_loss_per_anchor"
    _, per = _generalized_lifted_rows(fn, embeddings, labels, pos_margin, neg_margin, normalize, where, axis_name,
                                      None)  # fmt: skip
    return per


@register(
    "intra_pair_variance_loss",
    family=FAMILY,
    kind="batch",
    formula="mean_{(a,p)} [(1 - e_+) mean(s_pos) - s_ap]_+^2 + mean_{(a,n)} [s_an - (1 + e_-) mean(s_neg)]_+^2",
    paper="Deep Metric Learning with Tuplet Margin Loss (Yu, Tao, ICCV 2019)",
    reference=f"{_PML}::losses/intra_pair_variance_loss.py::IntraPairVarianceLoss (CosineSimilarity, MeanReducer)",
    sample=lambda: _pml_pair_sample(variants=({"pos_epsilon": 0.1, "neg_epsilon": 0.2},)),
    runtime=("axis_name", "memory"),
)
def intra_pair_variance_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    pos_epsilon: float = 0.01,
    neg_epsilon: float = 0.01,
    where: ArrayLike | None = None,
    axis_name=None,
    memory: CrossBatchMemory | None = None,
) -> Array:
    r"""Intra-pair variance loss: penalizes positive (negative) pairs far from the mean positive (negative) similarity.

    .. math::
        \mathcal L = \operatorname{mean}_{(a,p)}\big[(1-\epsilon_+)\bar s_+ - s_{ap}\big]_+^2
                   + \operatorname{mean}_{(a,n)}\big[s_{an} - (1+\epsilon_-)\bar s_-\big]_+^2

    with cosine similarities over every ordered pair and :math:`\bar s_\pm`
    the means over all positive (negative) pairs of the (global) batch (the
    gradient flows through the means too, as in PML).

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      pos_epsilon: ``epsilon_+`` (PML's ``pos_eps``, 0.01).
      neg_epsilon: ``epsilon_-`` (PML's ``neg_eps``, 0.01).
      where: optional ``[N]`` mask of real examples.
      axis_name: mapped axis to gather the batch over.
      memory: optional :class:`CrossBatchMemory` (XBM): the anchors of this batch
        are paired with the memory after this batch's enqueue (stop-gradient
        references) instead of the batch; update it with ``memory.update(...)``.

    Returns:
      Scalar loss.

    Paper: Yu, Tao, "Deep Metric Learning with Tuplet Margin Loss", ICCV 2019
    (the intra-pair variance term).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [0.0, 1.0]])
      >>> y = jnp.array([0, 0, 1, 1])  # positive similarities 0.6, 1 (mean 0.8): 0.2^2 on the two (0, 1) pairs
      >>> round(float(lossjax.losses.intra_pair_variance_loss(x, y, pos_epsilon=0.0, neg_epsilon=1.0)), 4)
      0.02
    """
    fn = "intra_pair_variance_loss"
    b, pos_l, neg_l = _intra_pair_terms(fn, embeddings, labels, pos_epsilon, neg_epsilon, where, axis_name, memory)
    n_pos, n_neg = _count(b.pos, pos_l.dtype), _count(b.neg, pos_l.dtype)
    return _global_mean(jnp.sum(pos_l), n_pos, axis_name) + _global_mean(jnp.sum(neg_l), n_neg, axis_name)


def _intra_pair_terms(fn, embeddings, labels, pos_epsilon, neg_epsilon, where, axis_name, memory):
    """The labelled batch and each positive / negative pair's squared hinge ``[n, M]`` (0 off them)."""
    C.check_positive(fn, "pos_epsilon", pos_epsilon, allow_zero=True)
    C.check_positive(fn, "neg_epsilon", neg_epsilon, allow_zero=True)
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name, memory=memory)
    s = pairwise_similarity(b.x, b.x_all, distance="cosine")
    zero = jnp.zeros((), s.dtype)
    n_pos, n_neg = _count(b.pos, s.dtype), _count(b.neg, s.dtype)
    mean_pos = _global_mean(jnp.sum(jnp.where(b.pos, s, zero)), n_pos, axis_name)
    mean_neg = _global_mean(jnp.sum(jnp.where(b.neg, s, zero)), n_neg, axis_name)
    pos_l = jnp.where(b.pos, jnp.square(jax.nn.relu((1 - pos_epsilon) * mean_pos - s)), zero)
    neg_l = jnp.where(b.neg, jnp.square(jax.nn.relu(s - (1 + neg_epsilon) * mean_neg)), zero)
    return b, pos_l, neg_l


@register(
    "intra_pair_variance_loss_per_anchor",
    family=FAMILY,
    kind="per_example",
    formula="l_a = mean_{p pos of a} [(1 - e_+) mean(s_pos) - s_ap]_+^2 + mean_{n neg of a} [s_an - (1 + e_-) "
    "mean(s_neg)]_+^2  (an empty mean is 0; mean(s_pos), mean(s_neg) over the batch)",
    paper="Deep Metric Learning with Tuplet Margin Loss (Yu, Tao, ICCV 2019)",
    reference=f"{_PML}::losses/intra_pair_variance_loss.py::IntraPairVarianceLoss(reducer=DoNothingReducer()), "
    "each sub-loss through reducers/per_anchor_reducer.py::PerAnchorReducer(DoNothingReducer())",
    sample=_pml_pair_sample,
    runtime=("axis_name",),
)
def intra_pair_variance_loss_per_anchor(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    pos_epsilon: float = 0.01,
    neg_epsilon: float = 0.01,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""The intra-pair variance loss of each anchor, unreduced ``[N]``.

    .. math::
        \ell_a = \frac{1}{|P(a)|}\sum_{p\in P(a)} \big[(1-\epsilon_+)\bar s_+ - s_{ap}\big]_+^2
               + \frac{1}{|N(a)|}\sum_{n\in N(a)} \big[s_{an} - (1+\epsilon_-)\bar s_-\big]_+^2

    (an empty mean is 0) with ``\bar s_+``, ``\bar s_-`` the mean positive
    and negative cosine similarities of the whole batch, as in
    :func:`intra_pair_variance_loss`: pytorch-metric-learning's
    ``IntraPairVarianceLoss`` with each of its two sub-losses (``pos_pair``,
    ``neg_pair``) through ``PerAnchorReducer(DoNothingReducer())``, summed.

    Args:
      embeddings: ``[N, D]`` (cosine similarities).
      labels: integer labels ``[N]``.
      pos_epsilon, neg_epsilon: as in :func:`intra_pair_variance_loss`.
      where: optional ``[N]`` mask of real examples (0 there).
      axis_name: mapped axis to gather the batch over (each device returns its own anchors).

    Returns:
      Per-anchor loss ``[N]``.

    Paper: Yu, Tao, "Deep Metric Learning with Tuplet Margin Loss", ICCV 2019.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
      >>> out = lossjax.losses.intra_pair_variance_loss_per_anchor(x, jnp.array([0, 0, 1, 1]), pos_epsilon=0.0,
      ...                                                          neg_epsilon=0.0)
      >>> [round(v, 4) for v in out.tolist()]  # mean s_pos 0.3, mean s_neg 0.6: anchor 0 is 0.3^2 + (0.4^2 + 0) / 2
      [0.17, 0.11, 0.08, 0.02]
    """
    fn = "intra_pair_variance_loss_per_anchor"
    b, pos_l, neg_l = _intra_pair_terms(fn, embeddings, labels, pos_epsilon, neg_epsilon, where, axis_name, None)
    return _pair_mean_per_anchor(pos_l, b.pos) + _pair_mean_per_anchor(neg_l, b.neg)


def _snr_sample() -> Sample:
    s = _pml_pair_sample(variants=({"pos_margin": 0.5, "neg_margin": 1.5},))
    x, y = s.args
    # The SNR distance divides by the anchor's variance over its features: a constant row (the automatic
    # extremes' all-equal magnitudes) has none. Edges: a scale of 1e4, and identical rows (distances 0).
    return dataclasses.replace(s, extremes=((x * 1e4, y), (np.repeat(x[:1], x.shape[0], axis=0), y)))


def _snr_distance(x: Array, y: Array) -> Array:
    """PML's ``SNRDistance``: ``var(y_j - x_i) / var(x_i)`` (unbiased variances over the features), ``[n, M]``."""
    dim = x.shape[-1]
    one = jnp.ones((), x.dtype)
    xc = x - jnp.mean(x, axis=-1, keepdims=True)
    yc = y - jnp.mean(y, axis=-1, keepdims=True)
    # var(y - x) = |yc - xc|^2 / (D - 1) with the centred rows: one matmul, no [n, M, D].
    sq = pairwise_similarity(xc, yc, distance="squared_euclidean")
    var_x = jnp.sum(xc * xc, axis=-1) / max(dim - 1, 1)
    return sq / max(dim - 1, 1) / jnp.maximum(var_x, jnp.finfo(x.dtype).tiny)[:, None] * one


@register(
    "snr_contrastive_loss",
    aliases=("signal_to_noise_ratio_contrastive_loss",),
    family=FAMILY,
    kind="batch",
    formula="mean_{nonzero}[snr_ap - m_pos]_+ + mean_{nonzero}[m_neg - snr_an]_+,  snr_ij = var(x_j - x_i) / var(x_i)",
    paper="Signal-To-Noise Ratio: A Robust Distance Metric for Deep Metric Learning (Yuan et al., CVPR 2019)",
    reference=f"{_PML}::losses/signal_to_noise_ratio_losses.py::SignalToNoiseRatioContrastiveLoss (SNRDistance)",
    sample=lambda: _snr_sample(),
    runtime=("axis_name", "memory"),
)
def snr_contrastive_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    pos_margin: float = 0.0,
    neg_margin: float = 1.0,
    normalize: bool = True,
    where: ArrayLike | None = None,
    axis_name=None,
    memory: CrossBatchMemory | None = None,
) -> Array:
    r"""Contrastive loss on the signal-to-noise-ratio distance.

    .. math::
        d_{ij} = \frac{\operatorname{var}(x_j - x_i)}{\operatorname{var}(x_i)},\qquad
        \mathcal L = \operatorname{mean}_{>0}\big[d_{ap} - m_+\big]_+
                   + \operatorname{mean}_{>0}\big[m_- - d_{an}\big]_+

    (unbiased variances over the features of normalized embeddings; each mean
    over the pairs with a positive term, PML's ``AvgNonZeroReducer``). A row
    with zero variance (a constant embedding) divides by the smallest normal
    float instead of 0.

    Args:
      embeddings: ``[N, D]``, ``D >= 2``.
      labels: integer labels ``[N]``.
      pos_margin: ``m_+`` (0).
      neg_margin: ``m_-`` (1).
      normalize: L2-normalize the embeddings first (PML's distances do).
      where: optional ``[N]`` mask of real examples.
      axis_name: mapped axis to gather the batch over.
      memory: optional :class:`CrossBatchMemory` (XBM): the anchors of this batch
        are paired with the memory after this batch's enqueue (stop-gradient
        references) instead of the batch; update it with ``memory.update(...)``.

    Returns:
      Scalar loss.

    Paper: Yuan, Chen, Wang, Wen, Lin, Zhang, "Signal-To-Noise Ratio: A Robust
    Distance Metric for Deep Metric Learning", CVPR 2019, arXiv:1904.02616.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
      >>> float(lossjax.losses.snr_contrastive_loss(x, jnp.array([0, 0, 1]), neg_margin=5.0))  # snr_an = 4
      1.0
    """
    fn = "snr_contrastive_loss"
    C.check_positive(fn, "pos_margin", pos_margin, allow_zero=True)
    C.check_positive(fn, "neg_margin", neg_margin, allow_zero=True)
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name, normalize=normalize, memory=memory)
    d = _snr_distance(b.x, b.x_all)
    zero = jnp.zeros((), d.dtype)
    pos_l = jnp.where(b.pos, jax.nn.relu(d - pos_margin), zero)
    neg_l = jnp.where(b.neg, jax.nn.relu(neg_margin - d), zero)
    return _avg_nonzero(pos_l, axis_name) + _avg_nonzero(neg_l, axis_name)


def _fast_ap_sample() -> Sample:
    s = _pml_pair_sample(variants=({"num_bins": 4},))
    x, y = s.args
    # The automatic extremes (equal magnitudes, signs) put squared distances exactly on the bin centres, the
    # kinks of the triangular pulses, where float32 rounding picks a side: a scale of 1e4 and zeros instead.
    return dataclasses.replace(s, extremes=((x * 1e4, y), (np.zeros_like(x), y)))


@register(
    "fast_ap_loss",
    aliases=("fastap_loss",),
    family=FAMILY,
    kind="batch",
    formula="mean_{i: P(i) nonempty} 1 - 1/|P(i)| sum_b h+_ib H+_ib / H_ib  (soft histograms of d^2 in num_bins bins)",
    paper="Deep Metric Learning to Rank (FastAP, Cakir, He, Xia, Kulis, Sclaroff, CVPR 2019)",
    reference=f"{_PML}::losses/fast_ap_loss.py::FastAPLoss (LpDistance(power=2), MeanReducer)",
    sample=lambda: _fast_ap_sample(),
    runtime=("axis_name",),
)
def fast_ap_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    num_bins: int = 10,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""FastAP: one minus a histogram approximation of the average precision of each anchor's ranking.

    .. math::
        \mathrm{FastAP}_i = \frac{1}{|P(i)|}\sum_{b=0}^{B} \frac{h^+_{ib}\,H^+_{ib}}{H_{ib}},\qquad
        \mathcal L = \operatorname{mean}_{i:\ P(i)\neq\emptyset}\big(1 - \mathrm{FastAP}_i\big)

    Distances are squared Euclidean of normalized embeddings (in ``[0, 4]``);
    each pair adds a triangular pulse ``[1 - |d - c_b| / delta]_+`` to the bins
    centred at ``c_b = b * 4 / B`` (``B + 1`` centres, ``delta = 4 / B``):
    ``h+`` counts positives, ``H+`` and ``H`` are the cumulative positive and
    total counts (bins where ``h+ H+`` or ``H`` is 0 add nothing).

    Args:
      embeddings: ``[N, D]`` (normalized inside).
      labels: integer labels ``[N]``.
      num_bins: ``B`` (10).
      where: optional ``[N]`` mask of real examples.
      axis_name: mapped axis to gather the batch over.

    Returns:
      Scalar loss.

    Paper: Cakir, He, Xia, Kulis, Sclaroff, "Deep Metric Learning to Rank",
    CVPR 2019 (FastAP).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
      >>> float(lossjax.losses.fast_ap_loss(x, jnp.array([0, 0, 1, 1])))  # each positive ranks first: AP 1
      0.0
    """
    fn = "fast_ap_loss"
    per, has = _fast_ap_rows(fn, embeddings, labels, num_bins, where, axis_name)
    return _global_mean(jnp.sum(per), _count(has, per.dtype), axis_name)


def _fast_ap_rows(fn, embeddings, labels, num_bins, where, axis_name):
    """Each anchor's ``1 - FastAP`` ``[n]`` (0 without a positive, and on padded rows) and whether it has one."""
    C.check_int(fn, "num_bins", num_bins, 1, static=True)
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name, normalize=True)
    d = pairwise_similarity(b.x, b.x_all, distance="squared_euclidean")
    dtype = d.dtype
    zero = jnp.zeros((), dtype)
    delta = 4.0 / num_bins
    centres = jnp.asarray(np.linspace(0.0, 4.0, num_bins + 1), dtype)
    pulse = jax.nn.relu(1 - jnp.abs(d[:, :, None] - centres[None, None, :]) / delta)  # [n, M, B + 1]
    pos_h = jnp.sum(jnp.where(b.pos[:, :, None], pulse, zero), axis=1)
    neg_h = jnp.sum(jnp.where(b.neg[:, :, None], pulse, zero), axis=1)
    cum_pos = jnp.cumsum(pos_h, axis=-1)
    cum_all = jnp.cumsum(pos_h + neg_h, axis=-1)
    prod = pos_h * cum_pos
    safe = (prod > 0) & (cum_all > 0)
    ratio = jnp.where(safe, prod / jnp.where(safe, cum_all, jnp.ones((), dtype)), zero)
    n_pos = jnp.sum(b.pos, axis=-1).astype(dtype)
    has = n_pos > 0
    ap = jnp.sum(ratio, axis=-1) / jnp.maximum(n_pos, jnp.ones((), dtype))
    return jnp.where(has, 1 - ap, zero), has


@register(
    "fast_ap_loss_per_anchor",
    family=FAMILY,
    kind="per_example",
    formula="l_i = 1 - 1/|P(i)| sum_b h+_ib H+_ib / H_ib  (0 if P(i) is empty; soft histograms of d^2, num_bins bins)",
    paper="Deep Metric Learning to Rank (FastAP, Cakir, He, Xia, Kulis, Sclaroff, CVPR 2019)",
    reference=f"{_PML}::losses/fast_ap_loss.py::FastAPLoss(LpDistance(power=2), "
    "reducer=PerAnchorReducer(DoNothingReducer()))",
    sample=lambda: _fast_ap_sample(),
    runtime=("axis_name",),
)
def fast_ap_loss_per_anchor(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    num_bins: int = 10,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""One minus the FastAP of each anchor, unreduced ``[N]``.

    .. math::
        \ell_i = 1 - \frac{1}{|P(i)|}\sum_{b=0}^{B} \frac{h^+_{ib}\,H^+_{ib}}{H_{ib}}
        \quad (0 \text{ if } P(i) = \emptyset)

    with the soft histograms of :func:`fast_ap_loss`: pytorch-metric-learning's
    ``FastAPLoss`` with ``reducer=PerAnchorReducer(DoNothingReducer())`` (its
    element losses, which leave out the anchors without a positive).
    :func:`fast_ap_loss` is the mean of ``l_i`` over the anchors that have a
    positive.

    Args:
      embeddings: ``[N, D]`` (normalized inside).
      labels: integer labels ``[N]``.
      num_bins: ``B`` (10), as in :func:`fast_ap_loss`.
      where: optional ``[N]`` mask of real examples (0 there).
      axis_name: mapped axis to gather the batch over (each device returns its own anchors).

    Returns:
      Per-anchor loss ``[N]``.

    Paper: Cakir, He, Xia, Kulis, Sclaroff, "Deep Metric Learning to Rank",
    CVPR 2019 (FastAP).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]])
      >>> out = lossjax.losses.fast_ap_loss_per_anchor(x, jnp.array([0, 0, 1, 1]))
      >>> [round(v, 4) for v in out.tolist()]  # their mean is fast_ap_loss, 0.3833
      [0.6667, 0.6667, 0.1, 0.1]
    """
    fn = "fast_ap_loss_per_anchor"
    return _fast_ap_rows(fn, embeddings, labels, num_bins, where, axis_name)[0]


@register(
    "histogram_loss",
    family=FAMILY,
    kind="batch",
    formula="sum_r p-_r sum_{q <= r} p+_q  (soft histograms of cosines over 1 + 2/delta nodes in [-1, 1])",
    paper="Learning Deep Embeddings with Histogram Loss (Ustinova, Lempitsky, NeurIPS 2016, arXiv:1611.00822)",
    reference=f"{_PML}::losses/histogram_loss.py::HistogramLoss (CosineSimilarity)",
    sample=lambda: _pml_pair_sample(variants=({"num_bins": 8},)),
    runtime=("axis_name",),
)
def histogram_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    num_bins: int = 100,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""Histogram loss: the probability that a negative pair is more similar than a positive one.

    .. math::
        \mathcal L = \sum_{r} p^-_r\,\Phi^+_r,\qquad \Phi^+_r = \sum_{q\le r} p^+_q

    ``p^+`` and ``p^-`` are the soft histograms of the cosine similarities of
    the positive and negative pairs (each unordered pair once) over the nodes
    ``t_r = -1 + r delta``, ``delta = 2 / num_bins``: a similarity between two
    nodes adds to both, linearly in its distance to each; each histogram sums
    to 1. As PML (which builds the pairs from triplets), a positive pair
    counts when its anchor has a negative in the batch and a negative pair
    when one of its examples has a positive. 0 without such pairs.

    Args:
      embeddings: ``[N, D]`` (cosine similarities).
      labels: integer labels ``[N]``.
      num_bins: ``2 / delta`` (100, PML's default).
      where: optional ``[N]`` mask of real examples.
      axis_name: mapped axis to gather the batch over (histograms and counts summed over devices).

    Returns:
      Scalar loss.

    Paper: Ustinova, Lempitsky, "Learning Deep Embeddings with Histogram Loss",
    NeurIPS 2016, arXiv:1611.00822.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.1], [-1.0, -0.1]])
      >>> float(lossjax.losses.histogram_loss(x, jnp.array([0, 0, 1, 1]), num_bins=4))  # positives above negatives
      0.0
    """
    fn = "histogram_loss"
    C.check_int(fn, "num_bins", num_bins, 1, static=True)
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name)
    s = pairwise_similarity(b.x, b.x_all, distance="cosine")
    dtype = s.dtype
    zero = jnp.zeros((), dtype)
    n, m = s.shape
    rows = (jnp.arange(n) + axis_offset(axis_name, n))[:, None]
    upper = rows < jnp.arange(m)[None, :]  # each unordered pair once
    any_pos_all = gather_batch(jnp.any(b.pos, axis=-1), axis_name)  # [M]: example j has a positive
    any_neg_all = gather_batch(jnp.any(b.neg, axis=-1), axis_name)
    local_pos = jnp.any(b.pos, axis=-1)
    local_neg = jnp.any(b.neg, axis=-1)
    pos_pairs = b.pos & upper & (local_neg[:, None] | any_neg_all[None, :])
    neg_pairs = b.neg & upper & (local_pos[:, None] | any_pos_all[None, :])
    delta = 2.0 / num_bins
    r = jax.lax.stop_gradient(jnp.floor((s + 1) / delta))
    frac_hi = (s + 1 - r * delta) / delta  # weight on node r + 1
    frac_lo = ((r + 1) * delta - 1 - s) / delta  # weight on node r
    nodes = num_bins + 1
    ri = r.astype(jnp.int32)
    oh_lo = jax.nn.one_hot(ri, nodes, dtype=dtype)
    oh_hi = jax.nn.one_hot(ri + 1, nodes, dtype=dtype)
    contrib = oh_lo * frac_lo[..., None] + oh_hi * frac_hi[..., None]  # [n, M, nodes]

    def density(pairs):
        h = psum(jnp.sum(jnp.where(pairs[..., None], contrib, zero), axis=(0, 1)), axis_name)
        cnt = psum(jnp.sum(pairs).astype(dtype), axis_name)
        return h / jnp.maximum(cnt, jnp.ones((), dtype)), cnt

    p_pos, c_pos = density(pos_pairs)
    p_neg, c_neg = density(neg_pairs)
    loss = jnp.sum(p_neg * jnp.cumsum(p_pos))
    return jnp.where((c_pos > 0) & (c_neg > 0), loss, zero)


def _explicit_pairs_sample() -> Sample:
    rng = np.random.default_rng(33)
    a = rng.normal(size=(6, 4)).astype(np.float32)
    b = (a + rng.normal(size=(6, 4))).astype(np.float32)
    same = np.array([True, False, True, False, True, False])
    return Sample(
        args=(a, b, same),
        diff_argnums=(0, 1),
        variants=({"pos_margin": 0.3, "neg_margin": 0.8, "normalize": False, "distance": "squared_euclidean"},),
    )


@register(
    "contrastive_pair_loss",
    aliases=("siamese_contrastive_loss",),
    family=FAMILY,
    kind="per_example",
    formula="is_pos [d(a, b) - m_pos]_+ + (1 - is_pos) [m_neg - d(a, b)]_+  per given pair",
    paper="Dimensionality Reduction by Learning an Invariant Mapping (Hadsell, Chopra, LeCun, CVPR 2006)",
    reference=f"{_PML}::losses/contrastive_loss.py::ContrastiveLoss (pos_loss, neg_loss) on given pairs",
    sample=_explicit_pairs_sample,
)
def contrastive_pair_loss(
    embeddings_a: ArrayLike,
    embeddings_b: ArrayLike,
    is_positive: ArrayLike,
    *,
    pos_margin: float = 0.0,
    neg_margin: float = 1.0,
    distance: str = "euclidean",
    normalize: bool = True,
    where: ArrayLike | None = None,
) -> Array:
    r"""Contrastive loss on explicit pairs (a Siamese batch): one term per given pair, unreduced.

    .. math::
        \ell_i = \begin{cases}[d(a_i, b_i) - m_+]_+ & \text{positive pair}\\
                              [m_- - d(a_i, b_i)]_+ & \text{negative pair}\end{cases}

    The per-pair terms of :func:`pairwise_contrastive_loss` (PML's
    ``ContrastiveLoss``) for pairs given as rows instead of mined from
    labels; reduce as you like (PML averages the nonzero terms of each kind).

    Args:
      embeddings_a, embeddings_b: ``[N, D]``, row ``i`` of each is a pair.
      is_positive: ``[N]`` bool, whether pair ``i`` is positive (similar).
      pos_margin: ``m_+`` (0).
      neg_margin: ``m_-`` (1).
      distance: ``"euclidean"`` or ``"squared_euclidean"``.
      normalize: L2-normalize the embeddings first (PML's ``LpDistance``).
      where: optional ``[N]`` mask of real pairs.

    Returns:
      Per-pair loss ``[N]``.

    Paper: Hadsell, Chopra, LeCun, "Dimensionality Reduction by Learning an
    Invariant Mapping", CVPR 2006.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> a = jnp.array([[0.0, 0.0], [0.0, 0.0]])
      >>> b = jnp.array([[3.0, 4.0], [0.3, 0.4]])
      >>> lossjax.losses.contrastive_pair_loss(a, b, jnp.array([True, False]), normalize=False).round(4)
      Array([5. , 0.5], dtype=float32)
    """
    fn = "contrastive_pair_loss"
    C.check_one_of(fn, "distance", distance, _TRIPLET_DISTANCES)
    C.check_positive(fn, "pos_margin", pos_margin, allow_zero=True)
    C.check_positive(fn, "neg_margin", neg_margin, allow_zero=True)
    a, b, mask, _ = paired_batch(fn, embeddings_a, embeddings_b, where)
    pos = C.check_array(fn, "is_positive", is_positive, ndim=1)
    if pos.shape != a.shape[:1]:
        raise ValueError(f"{fn}: `is_positive` must have shape ({a.shape[0]},), got {pos.shape}.")
    pos = jnp.asarray(pos).astype(bool)
    if normalize:
        a, b = l2_normalize(a), l2_normalize(b)
    sq = jnp.sum(jnp.square(a - b), axis=-1)
    d = sq if distance == "squared_euclidean" else C.safe_sqrt(sq)
    loss = jnp.where(pos, jax.nn.relu(d - pos_margin), jax.nn.relu(neg_margin - d))
    return C.zero_masked(loss, mask)


# --------------------------------------------------------------------------
# The rest of pytorch-metric-learning 2.9's losses (issue 15, second part), with its defaults:
# ranking surrogates (SmoothAP, PNP), ranked list, instance, dynamic soft margin, manifold.
# --------------------------------------------------------------------------

__all__ += [
    "DynamicSoftMarginState",
    "angular_loss",
    "angular_loss_per_anchor",
    "centroid_triplet_loss",
    "dynamic_soft_margin_loss",
    "instance_loss",
    "instance_loss_per_anchor",
    "manifold_loss",
    "pnp_loss",
    "ranked_list_loss",
    "ranked_list_loss_per_anchor",
    "smooth_ap_loss",
    "smooth_ap_loss_per_anchor",
]

_PNP_VARIANTS = ("O", "Ds", "Dq", "Iu", "Ib")


def _pml2_sample(labels=(0, 0, 1, 1, 2, 2), **kw) -> Sample:
    rng = np.random.default_rng(51)
    x = rng.normal(size=(len(labels), 4)).astype(np.float32)
    return Sample(args=(x, np.array(labels, np.int32)), **kw)


def _rank_diffs(s: Array) -> Array:
    """``[n, M, M]`` with ``[i, a, c] = s_ic - s_ia``: how much item ``c`` outranks item ``a`` for anchor ``i``."""
    return s[:, None, :] - s[:, :, None]


@register(
    "smooth_ap_loss",
    aliases=("smoothap_loss",),
    family=FAMILY,
    kind="batch",
    formula="mean_i 1 - 1/|S_i| sum_{a in S_i} (1 + sum_{c in S_i, c != a} sg((s_ic - s_ia)/t)) "
    "/ (1 + sum_{c != a} sg((s_ic - s_ia)/t)),  S_i = {i} + P(i)",
    paper="Smooth-AP: Smoothing the Path Towards Large-Scale Image Retrieval (Brown et al., ECCV 2020, "
    "arXiv:2007.12163)",
    reference=f"{_PML}::losses/smooth_ap.py::SmoothAPLoss (CosineSimilarity, MeanReducer)",
    # PML's SmoothAPLoss reshapes the batch into contiguous classes of equal size, as many classes as their size.
    sample=lambda: _pml2_sample(labels=(0, 0, 1, 1), variants=({"temperature": 0.1},)),
    runtime=("axis_name",),
)
def smooth_ap_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    temperature: float = 0.01,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""Smooth-AP: one minus a sigmoid-smoothed average precision of each anchor's ranking of the batch.

    .. math::
        R_i(a) = 1 + \sum_{c\ne a} \sigma\Big(\frac{s_{ic} - s_{ia}}{t}\Big),\quad
        R^+_i(a) = 1 + \sum_{c\in S_i,\ c\ne a} \sigma\Big(\frac{s_{ic} - s_{ia}}{t}\Big),\qquad
        \mathcal L = \frac1N\sum_i\Big(1 - \frac{1}{|S_i|}\sum_{a\in S_i}\frac{R^+_i(a)}{R_i(a)}\Big)

    with cosine similarities; ``S_i`` is the anchor's class in the batch, the
    anchor itself included (it ranks itself among the items, as in the
    official code and PML). PML (and the official code) need every class to
    have the same number of examples, contiguous in the batch; this form
    takes any labels and equals theirs on such batches. The sigmoid tensor is
    ``[n, M, M]`` (cubic in the batch).

    Args:
      embeddings: ``[N, D]`` (cosine similarities).
      labels: integer labels ``[N]``.
      temperature: ``t`` of the sigmoid (0.01).
      where: optional ``[N]`` mask of real examples.
      axis_name: mapped axis to gather the batch over.

    Returns:
      Scalar loss.

    Paper: Brown, Xie, Kalogeiton, Zisserman, "Smooth-AP: Smoothing the Path
    Towards Large-Scale Image Retrieval", ECCV 2020, arXiv:2007.12163.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
      >>> float(lossjax.losses.smooth_ap_loss(x, jnp.array([0, 0, 1, 1]), temperature=1e-3))  # positives rank first
      0.0
    """
    fn = "smooth_ap_loss"
    b, per = _smooth_ap_rows(fn, embeddings, labels, temperature, where, axis_name)
    return _global_mean(jnp.sum(per), _count(b.valid, per.dtype), axis_name)


def _smooth_ap_rows(fn, embeddings, labels, temperature, where, axis_name):
    """The labelled batch and each anchor's ``1 - AP`` ``[n]`` (0 on padded rows)."""
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name)
    t = _temperature(fn, temperature, b.dtype)
    s = pairwise_similarity(b.x, b.x_all, distance="cosine")
    dtype = s.dtype
    zero = jnp.zeros((), dtype)
    n, m = s.shape
    same = b.pos | (self_mask(n, m, axis_name=axis_name) & b.valid[:, None])  # S_i
    other = ~jnp.eye(m, dtype=bool)  # c != a
    sig = jax.nn.sigmoid(_rank_diffs(s) / t)  # [n, a, c]
    all_rank = 1 + jnp.sum(jnp.where((other & b.valid_all[None, :])[None], sig, zero), axis=-1)
    pos_rank = 1 + jnp.sum(jnp.where(other[None] & same[:, None, :], sig, zero), axis=-1)
    count = jnp.maximum(_pair_counts(same, dtype), jnp.ones((), dtype))
    ap = jnp.sum(jnp.where(same, pos_rank / all_rank, zero), axis=-1) / count
    return b, jnp.where(b.valid, 1 - ap, zero)


@register(
    "smooth_ap_loss_per_anchor",
    family=FAMILY,
    kind="per_example",
    formula="l_i = 1 - 1/|S_i| sum_{a in S_i} (1 + sum_{c in S_i, c != a} sg((s_ic - s_ia)/t)) "
    "/ (1 + sum_{c != a} sg((s_ic - s_ia)/t)),  S_i = the examples with label y_i",
    paper="Smooth-AP: Smoothing the Path Towards Large-Scale Image Retrieval (Brown et al., ECCV 2020, "
    "arXiv:2007.12163)",
    reference=f"{_PML}::losses/smooth_ap.py::SmoothAPLoss(reducer=PerAnchorReducer(DoNothingReducer()))",
    sample=lambda: _pml2_sample(labels=(0, 0, 1, 1)),
    runtime=("axis_name",),
)
def smooth_ap_loss_per_anchor(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    temperature: float = 0.01,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""One minus the Smooth-AP of each query, unreduced ``[N]``.

    .. math::
        \ell_i = 1 - \frac{1}{|S_i|}\sum_{a\in S_i}
                 \frac{1 + \sum_{c\in S_i, c\ne a} \sigma((s_{ic} - s_{ia})/t)}
                      {1 + \sum_{c\ne a} \sigma((s_{ic} - s_{ia})/t)}

    (``S_i`` the examples with label ``y_i``, ``i`` included; cosine
    similarities): pytorch-metric-learning's ``SmoothAPLoss`` with
    ``reducer=PerAnchorReducer(DoNothingReducer())`` (its element losses, one
    per query). :func:`smooth_ap_loss` is their mean over the real examples.

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      temperature: as in :func:`smooth_ap_loss`.
      where: optional ``[N]`` mask of real examples (0 there).
      axis_name: mapped axis to gather the batch over (each device returns its own anchors).

    Returns:
      Per-query loss ``[N]``.

    Paper: Brown, Xie, Kalogeiton, Zisserman, "Smooth-AP: Smoothing the Path
    Towards Large-Scale Image Retrieval", ECCV 2020, arXiv:2007.12163.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6], [0.0, 1.0]])
      >>> out = lossjax.losses.smooth_ap_loss_per_anchor(x, jnp.array([0, 0, 1, 1]))
      >>> [round(v, 4) for v in out.tolist()]  # query 0: itself, a negative, its positive: AP (1 + 2/3) / 2
      [0.1667, 0.2588, 0.2588, 0.1667]
    """
    fn = "smooth_ap_loss_per_anchor"
    return _smooth_ap_rows(fn, embeddings, labels, temperature, where, axis_name)[1]


@register(
    "pnp_loss",
    family=FAMILY,
    kind="batch",
    formula="mean_{i: P(i) nonempty} 1/|S_i| sum_{a in S_i} f(sum_{n in N(i)} sg((s_in - s_ia)/t)),  S_i = {i} + P(i); "
    "f = r (O), log(1 + r) (Ds), 1 - (1 + r)^-alpha (Dq), (1 + r) log(1 + r) (Iu), (b r - log(1 + b r))/b^2 (Ib)",
    paper="Rethinking the Optimization of Average Precision: Only Penalizing Negative Instances before Positive Ones "
    "is Enough (Li et al., AAAI 2022, arXiv:2102.04640)",
    reference=f"{_PML}::losses/pnp_loss.py::PNPLoss (CosineSimilarity)",
    sample=lambda: _pml2_sample(
        variants=(  # the sample is "O" at the default temperature
            {"variant": "Ds", "temperature": 0.1},
            {"variant": "Dq", "alpha": 2.0, "temperature": 0.1},
            {"variant": "Iu", "temperature": 0.1},
            {"variant": "Ib", "boundary": 3.0, "temperature": 0.1},
        )
    ),
    runtime=("axis_name",),
)
def pnp_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    variant: str = "O",
    temperature: float = 0.01,
    alpha: float = 1.0,
    boundary: float = 2.0,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""PNP: penalizes only the negatives ranked before each positive (a smoothed count), with a choice of penalty.

    .. math::
        r_i(a) = \sum_{n\in N(i)} \sigma\Big(\frac{s_{in} - s_{ia}}{t}\Big),\qquad
        \mathcal L = \operatorname{mean}_{i:\ P(i)\ne\emptyset}\ \frac{1}{|S_i|}\sum_{a\in S_i} f(r_i(a))

    with cosine similarities, ``S_i`` the anchor and its positives, and ``f``
    by ``variant``: ``"O"`` :math:`r`; ``"Ds"`` :math:`\log(1+r)`; ``"Dq"``
    :math:`(1+r)^{-\alpha}` with the loss :math:`1 - \mathcal L`; ``"Iu"``
    :math:`(1+r)\log(1+r)`; ``"Ib"`` :math:`(br - \log(1 + br))/b^2`. The
    sigmoid's argument is clamped to ``[-50, 50]`` as in PML. 0 without
    positive pairs. The sigmoid tensor is ``[n, M, M]`` (cubic in the batch).

    Args:
      embeddings: ``[N, D]`` (cosine similarities).
      labels: integer labels ``[N]``.
      variant: ``"O"`` (PML's default), ``"Ds"``, ``"Dq"`` (the paper's choice), ``"Iu"`` or ``"Ib"``.
      temperature: ``t`` of the sigmoid (PML's ``anneal``, 0.01).
      alpha: the power of ``"Dq"`` (1; the paper uses 8).
      boundary: ``b`` of ``"Ib"`` (2).
      where: optional ``[N]`` mask of real examples.
      axis_name: mapped axis to gather the batch over.

    Returns:
      Scalar loss.

    Paper: Li, Zhang, Huang, Chen, Ji, "Rethinking the Optimization of
    Average Precision: Only Penalizing Negative Instances before Positive
    Ones is Enough", AAAI 2022, arXiv:2102.04640.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
      >>> round(float(lossjax.losses.pnp_loss(x, jnp.array([0, 0, 1, 1]))), 6)  # no negative before a positive
      0.0
    """
    fn = "pnp_loss"
    C.check_one_of(fn, "variant", variant, _PNP_VARIANTS)
    C.check_positive(fn, "alpha", alpha)
    C.check_positive(fn, "boundary", boundary)
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name)
    t = _temperature(fn, temperature, b.dtype)
    s = pairwise_similarity(b.x, b.x_all, distance="cosine")
    dtype = s.dtype
    zero = jnp.zeros((), dtype)
    n, m = s.shape
    has = jnp.any(b.pos, axis=-1)
    rel = (b.pos | self_mask(n, m, axis_name=axis_name)) & has[:, None]  # PML's I_pos: anchors with a positive
    z = jnp.clip(_rank_diffs(s) / t, -50.0, 50.0)  # PML clamps the exponent
    r = jnp.sum(jnp.where(b.neg[:, None, :], jax.nn.sigmoid(z), zero), axis=-1)  # [n, a]
    if variant == "Ds":
        f = jnp.log1p(r)
    elif variant == "Dq":
        f = jnp.exp(-alpha * jnp.log1p(r))
    elif variant == "Iu":
        f = (1 + r) * jnp.log1p(r)
    elif variant == "Ib":
        f = (boundary * r - jnp.log1p(boundary * r)) / boundary**2
    else:
        f = r
    per = jnp.sum(jnp.where(rel, f, zero), axis=-1) / jnp.maximum(_pair_counts(rel, dtype), jnp.ones((), dtype))
    per = jnp.where(has, per, zero)
    total, count = psum(jnp.sum(per), axis_name), psum(_count(has, dtype), axis_name)
    loss = total / jnp.maximum(count, jnp.ones((), dtype))
    if variant == "Dq":
        loss = jnp.where(count > 0, 1 - loss, zero)
    return loss


@register(
    "ranked_list_loss",
    family=FAMILY,
    kind="batch",
    formula="mean_i (1 - l) sum_P w_p (d_ip - (a - m)) / (sum w_p + 1e-5 N) "
    "+ l sum_N w_n (a - d_in) / (sum w_n + 1e-5 N); P: d_ip > a - m, N: d_in < a, "
    "w_p = e^{T_p (d_ip - (a - m))}, w_n = e^{T_n (a - d_in)}",
    paper="Ranked List Loss for Deep Metric Learning (Wang et al., CVPR 2019, arXiv:1903.03238)",
    reference=f"{_PML}::losses/ranked_list_loss.py::RankedListLoss (LpDistance, MeanReducer)",
    sample=lambda: _pml2_sample(
        variants=({"margin": 0.6, "alpha": 1.1, "pos_scale": 2.0, "neg_scale": 3.0, "imbalance": 0.3},)
    ),
    runtime=("axis_name",),
)
def ranked_list_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float = 0.4,
    alpha: float | None = None,
    imbalance: float = 0.5,
    pos_scale: float = 0.0,
    neg_scale: float = 10.0,
    normalize: bool = True,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""Ranked list loss: pushes the negatives beyond ``alpha`` and pulls the positives within ``alpha - m``, weighted.

    .. math::
        \ell_i = (1-\lambda)\frac{\sum_{p} w_p\,(d_{ip} - (\alpha - m))}{\sum_p w_p + 10^{-5} N}
               + \lambda\frac{\sum_{n} w_n\,(\alpha - d_{in})}{\sum_n w_n + 10^{-5} N},\qquad
        \mathcal L = \frac1N\sum_i \ell_i

    over the positives with :math:`d_{ip} > \alpha - m` and the negatives with
    :math:`d_{in} < \alpha` (both at a distance above 0, as PML selects them),
    :math:`w_p = e^{T_p(d_{ip} - (\alpha - m))}`,
    :math:`w_n = e^{T_n(\alpha - d_{in})}`, Euclidean distances of normalized
    embeddings; ``N`` is the number of real examples (PML's ``1e-5`` per
    column). PML has no defaults for ``margin`` and ``Tn``: these are the
    official code's settings (``T10_pn04``: ``Tn = 10``, ``m = 0.4``;
    ``Tp = 0``, RLL-Simpler; ``alpha = 1 + m / 2`` as PML).

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      margin: ``m`` between the positive and negative boundaries (0.4).
      alpha: the negative boundary (None: ``1 + margin / 2``).
      imbalance: ``lambda``, the weight of the negative term (0.5).
      pos_scale: ``T_p`` (0: RLL-Simpler, unweighted positives).
      neg_scale: ``T_n`` (10).
      normalize: L2-normalize the embeddings first (PML's ``LpDistance``).
      where: optional ``[N]`` mask of real examples.
      axis_name: mapped axis to gather the batch over.

    Returns:
      Scalar loss.

    Paper: Wang, Hua, Kodirov, Hu, Garnier, Robertson, "Ranked List Loss for
    Deep Metric Learning", CVPR 2019, arXiv:1903.03238.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[0.0], [1.0], [1.5]])
      >>> loss = lossjax.losses.ranked_list_loss(x, jnp.array([0, 0, 1]), margin=0.5, alpha=1.0, pos_scale=0.0,
      ...                                        neg_scale=0.0, normalize=False)
      >>> round(float(loss), 3)  # (0.5 * 0.5, 0.5 * 0.5 + 0.5 * 0.5, 0.5 * 0.5) / 3, up to the 1e-5 guards
      0.333
    """
    fn = "ranked_list_loss"
    b, per = _ranked_list_rows(fn, embeddings, labels, margin, alpha, imbalance, pos_scale, neg_scale, normalize, where,
                               axis_name)  # fmt: skip
    return _global_mean(jnp.sum(per), _count(b.valid, per.dtype), axis_name)


def _ranked_list_rows(fn, embeddings, labels, margin, alpha, imbalance, pos_scale, neg_scale, normalize, where,
                      axis_name):  # fmt: skip
    """The labelled batch and each anchor's ranked list loss ``[n]`` (0 on padded rows)."""
    C.check_positive(fn, "margin", margin, allow_zero=True)
    C.check_in_range(fn, "imbalance", imbalance, 0.0, 1.0)
    C.check_positive(fn, "pos_scale", pos_scale, allow_zero=True)
    C.check_positive(fn, "neg_scale", neg_scale, allow_zero=True)
    if alpha is None:
        alpha = 1 + margin / 2
    C.check_positive(fn, "alpha", alpha, allow_zero=True)
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name, normalize=normalize)
    d = pairwise_similarity(b.x, b.x_all, distance="euclidean")
    dtype = d.dtype
    zero = jnp.zeros((), dtype)
    pos_bound = alpha - margin
    pos_sel = b.pos & (d > pos_bound) & (d > 0)
    neg_sel = b.neg & (d < alpha) & (d > 0)
    w_p = jnp.where(pos_sel, jnp.exp(pos_scale * jnp.where(pos_sel, d - pos_bound, zero)), zero)
    w_n = jnp.where(neg_sel, jnp.exp(neg_scale * jnp.where(neg_sel, alpha - d, zero)), zero)
    guard = 1e-5 * psum(_count(b.valid, dtype), axis_name)  # PML: 1e-5 per column of the batch
    loss_p = jnp.sum(w_p * jnp.where(pos_sel, d - pos_bound, zero), axis=-1) / (jnp.sum(w_p, axis=-1) + guard)
    loss_n = jnp.sum(w_n * jnp.where(neg_sel, alpha - d, zero), axis=-1) / (jnp.sum(w_n, axis=-1) + guard)
    return b, jnp.where(b.valid, (1 - imbalance) * loss_p + imbalance * loss_n, zero)


@register(
    "ranked_list_loss_per_anchor",
    family=FAMILY,
    kind="per_example",
    formula="l_i = (1 - l) sum_P w_p (d_ip - (a - m)) / (sum w_p + 1e-5 N) "
    "+ l sum_N w_n (a - d_in) / (sum w_n + 1e-5 N)  (pairs beyond their boundary)",
    paper="Ranked List Loss for Deep Metric Learning (Wang et al., CVPR 2019, arXiv:1903.03238)",
    reference=f"{_PML}::losses/ranked_list_loss.py::RankedListLoss(LpDistance, "
    "reducer=PerAnchorReducer(DoNothingReducer()))",
    sample=_pml2_sample,
    runtime=("axis_name",),
)
def ranked_list_loss_per_anchor(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float = 0.4,
    alpha: float | None = None,
    imbalance: float = 0.5,
    pos_scale: float = 0.0,
    neg_scale: float = 10.0,
    normalize: bool = True,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""The ranked list loss of each anchor, unreduced ``[N]``.

    .. math::
        \ell_i = (1-\lambda)\frac{\sum_{p} w_p (d_{ip} - (\alpha - m))}{\sum_p w_p + 10^{-5} N}
               + \lambda\frac{\sum_{n} w_n (\alpha - d_{in})}{\sum_n w_n + 10^{-5} N}

    over the positives beyond ``alpha - m`` and the negatives inside
    ``alpha``, as in :func:`ranked_list_loss`: pytorch-metric-learning's
    ``RankedListLoss`` with ``reducer=PerAnchorReducer(DoNothingReducer())``
    (its element losses, one per anchor). :func:`ranked_list_loss` is their
    mean over the real examples.

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      margin, alpha, imbalance, pos_scale, neg_scale, normalize: as in :func:`ranked_list_loss`.
      where: optional ``[N]`` mask of real examples (0 there).
      axis_name: mapped axis to gather the batch over (each device returns its own anchors).

    Returns:
      Per-anchor loss ``[N]``.

    Paper: Wang, Hua, Kodirov, Hu, Garnier, Robertson, "Ranked List Loss for
    Deep Metric Learning", CVPR 2019, arXiv:1903.03238.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6], [0.0, 1.0]])
      >>> out = lossjax.losses.ranked_list_loss_per_anchor(x, jnp.array([0, 0, 1, 1]))
      >>> [round(v, 4) for v in out.tolist()]  # each anchor's negative is closer than its positive
      [0.331, 0.5006, 0.5006, 0.331]
    """
    fn = "ranked_list_loss_per_anchor"
    return _ranked_list_rows(fn, embeddings, labels, margin, alpha, imbalance, pos_scale, neg_scale, normalize, where,
                             axis_name)[1]  # fmt: skip


def _instance_sample() -> Sample:
    rng = np.random.default_rng(52)
    # Two views of three instances: rows 0-2 the first views (instance ids 0, 1, 2, in order), rows 3-5 the second.
    a = rng.normal(size=(3, 4))
    x = np.concatenate([a, a + 0.5 * rng.normal(size=(3, 4))]).astype(np.float32)
    return Sample(args=(x, np.array([0, 1, 2, 0, 1, 2], np.int32)), variants=({"scale": 4.0},))


@register(
    "instance_loss",
    family=FAMILY,
    kind="batch",
    formula="mean_i -log softmax_j(s cos(x_i, x_j))[first(i)],  first(i) = the first row with label y_i",
    paper="Dual-Path Convolutional Image-Text Embeddings with Instance Loss (Zheng et al., ACM TOMM 2020, "
    "arXiv:1711.05535)",
    reference=f"{_PML}::losses/instance_loss.py::InstanceLoss (CosineSimilarity, MeanReducer)",
    sample=_instance_sample,
    runtime=("axis_name",),
)
def instance_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    scale: float = 64.0,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""Instance loss: each instance is a class, and the batch's own embeddings are the classifier.

    .. math::
        \ell_i = -\log\frac{e^{s\cos(x_i, x_{f(i)})}}{\sum_j e^{s\cos(x_i, x_j)}},\qquad
        \mathcal L = \frac1N\sum_i\ell_i

    over every row ``j`` of the batch (``i`` itself included). ``labels`` are
    instance ids, compared for equality only: the target of row ``i`` is
    ``f(i)``, the first row of the batch with its id (with one row per id,
    the row itself; with an image and its captions sharing an id, each
    caption's target is the image listed first). PML's ``InstanceLoss``
    takes ``torch.unique(labels, return_inverse=True)`` as the target
    *column*; that is ``f(i)`` when the first rows of the batch hold the ids
    in increasing order (ids ``0..N-1`` in order, or ``[0, 1, 2, 0, 1, 2]``),
    and an unrelated row otherwise, which this function does not reproduce.

    Args:
      embeddings: ``[N, D]`` (cosine similarities).
      labels: integer instance ids ``[N]``.
      scale: ``s``, the scale of the cosines (PML's ``gamma``, 64).
      where: optional ``[N]`` mask of real examples (never a target nor a column).
      axis_name: mapped axis to gather the batch over (the softmax runs over the global batch).

    Returns:
      Scalar loss.

    Paper: Zheng, Zheng, Garrett, Yang, Xu, Shen, "Dual-Path Convolutional
    Image-Text Embeddings with Instance Loss", ACM TOMM 2020, arXiv:1711.05535.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> round(float(lossjax.losses.instance_loss(x, jnp.array([0, 1]), scale=1.0)), 4)  # log(1 + e^-1)
      0.3133
    """
    fn = "instance_loss"
    b, per = _instance_rows(fn, embeddings, labels, scale, where, axis_name)
    return _global_mean(jnp.sum(per), _count(b.valid, per.dtype), axis_name)


def _instance_rows(fn, embeddings, labels, scale, where, axis_name):
    """The labelled batch and each example's instance loss ``[n]`` (0 on padded rows)."""
    C.check_positive(fn, "scale", scale)
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name)
    s = jnp.asarray(scale, b.dtype) * pairwise_similarity(b.x, b.x_all, distance="cosine")
    n, m = s.shape
    same = b.pos | self_mask(n, m, axis_name=axis_name)
    first = jnp.argmax(same, axis=-1) if m else jnp.zeros((n,), jnp.int32)
    target = jnp.take_along_axis(s, first[:, None], axis=-1)[:, 0] if m else jnp.zeros((n,), s.dtype)
    cols = b.valid[:, None] & b.valid_all[None, :]
    return b, jnp.where(b.valid, masked_logsumexp(s, cols, axis=1) - target, jnp.zeros((), s.dtype))


@register(
    "instance_loss_per_anchor",
    family=FAMILY,
    kind="per_example",
    formula="l_i = -log softmax_j(s cos(x_i, x_j))[first(i)],  first(i) = the first row with label y_i",
    paper="Dual-Path Convolutional Image-Text Embeddings with Instance Loss (Zheng et al., ACM TOMM 2020, "
    "arXiv:1711.05535)",
    reference=f"{_PML}::losses/instance_loss.py::InstanceLoss(reducer=PerAnchorReducer(DoNothingReducer()))",
    sample=_instance_sample,
    runtime=("axis_name",),
)
def instance_loss_per_anchor(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    scale: float = 64.0,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""The instance loss of each example, unreduced ``[N]``.

    .. math::
        \ell_i = -\log\frac{e^{s\cos(x_i, x_{f(i)})}}{\sum_j e^{s\cos(x_i, x_j)}}

    (``f(i)`` the first example with label ``y_i``, as in
    :func:`instance_loss`): pytorch-metric-learning's ``InstanceLoss`` with
    ``reducer=PerAnchorReducer(DoNothingReducer())`` (its element losses).
    :func:`instance_loss` is their mean over the real examples.

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      scale: as in :func:`instance_loss`.
      where: optional ``[N]`` mask of real examples (0 there).
      axis_name: mapped axis to gather the batch over (each device returns its own anchors).

    Returns:
      Per-example loss ``[N]``.

    Paper: Zheng, Zheng, Garrett, Yang, Xu, Shen, "Dual-Path Convolutional
    Image-Text Embeddings with Instance Loss", ACM TOMM 2020, arXiv:1711.05535.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> out = lossjax.losses.instance_loss_per_anchor(x, jnp.array([0, 1]), scale=1.0)
      >>> [round(v, 4) for v in out.tolist()]  # log(1 + e^-1) each
      [0.3133, 0.3133]
    """
    fn = "instance_loss_per_anchor"
    return _instance_rows(fn, embeddings, labels, scale, where, axis_name)[1]


@register(
    "centroid_triplet_loss",
    family=FAMILY,
    kind="batch",
    formula="mean_{>0} [d(x_a, c_P(a)) - d(x_a, c_k) + m]_+ over anchors a and other classes k;  "
    "c_P(a) = mean of a's class without a, c_k = mean of class k",
    paper="On the Unreasonable Effectiveness of Centroids in Image Retrieval (Wieczorek et al., ICONIP 2021, "
    "arXiv:2104.13643)",
    reference=f"{_PML}@1732bae::losses/centroid_triplet_loss.py::CentroidTripletLoss (v1.7; removed in 2.0)",
    sample=lambda: _pml2_sample(variants=({"margin": 0.3, "normalize": False},)),
    runtime=("axis_name",),
)
def centroid_triplet_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float = 0.05,
    normalize: bool = True,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""Centroid triplet loss: each example against the centroid of the rest of its class and those of the others.

    .. math::
        \mathcal L = \operatorname{mean}_{>0}\ \big[d(x_a, c_{P(a)}) - d(x_a, c_k) + m\big]_+

    over every anchor ``a`` with a positive and every other class ``k`` of
    the batch; :math:`c_{P(a)}` is the mean of ``a``'s positives (its class
    without it) and :math:`c_k` the mean of class ``k``; Euclidean distances
    after normalizing the anchor and the centroids (PML's ``LpDistance``
    normalizes what it compares: the centroids are of the raw embeddings);
    the mean is over the positive terms (``AvgNonZeroReducer``). PML had this
    loss until 1.7 (removed in 2.0 over issue #451): it raised on a class of
    one example, and with unequal class sizes skipped some anchors and
    mislabelled some centroids; on equal class sizes it equals this function,
    which takes any labels (a class of one is a negative centroid, never an
    anchor).

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      margin: ``m`` (0.05, PML's default).
      normalize: normalize the anchors and centroids before the distances (PML's ``LpDistance``).
      where: optional ``[N]`` mask of real examples (in no centroid).
      axis_name: mapped axis to gather the batch over (centroids of the global batch).

    Returns:
      Scalar loss.

    Paper: Wieczorek, Rychalska, Dabrowski, "On the Unreasonable Effectiveness
    of Centroids in Image Retrieval", ICONIP 2021, arXiv:2104.13643.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[0.0], [2.0], [3.0], [5.0]])
      >>> loss = lossjax.losses.centroid_triplet_loss(x, jnp.array([0, 0, 1, 1]), margin=4.0, normalize=False)
      >>> float(loss)  # centroids 1, 4: [2 - 4 + 4, 2 - 2 + 4, 2 - 2 + 4, 2 - 4 + 4] / 4
      3.0
    """
    fn = "centroid_triplet_loss"
    C.check_positive(fn, "margin", margin, allow_zero=True)
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name)
    dtype = b.dtype
    zero = jnp.zeros((), dtype)
    m = b.x_all.shape[0]
    same = (b.labels_all[:, None] == b.labels_all[None, :]) & b.valid_all[:, None] & b.valid_all[None, :]  # [M, M]
    one = jnp.ones((), dtype)
    # Column j's class centroid, and one column per class (its first example) to stand for it.
    centroids = (same.astype(dtype) @ b.x_all) / jnp.maximum(_pair_counts(same, dtype), one)[:, None]
    earlier = jnp.tril(jnp.ones((m, m), bool), -1)
    first = b.valid_all & ~jnp.any(same & earlier, axis=1)
    n_pos = _pair_counts(b.pos, dtype)
    c_pos = (b.pos.astype(dtype) @ b.x_all) / jnp.maximum(n_pos, one)[:, None]
    q = b.x
    if normalize:
        q, c_pos, centroids = l2_normalize(q), l2_normalize(c_pos), l2_normalize(centroids)
    d_ap = C.safe_sqrt(jnp.sum(jnp.square(q - c_pos), axis=-1))
    d_an = pairwise_similarity(q, centroids, distance="euclidean")
    trip = b.neg & first[None, :] & (n_pos > 0)[:, None]
    per = jnp.where(trip, jax.nn.relu(d_ap[:, None] - d_an + margin), zero)
    return _avg_nonzero(per, axis_name)


@register(
    "angular_loss",
    family=FAMILY,
    kind="batch",
    formula="mean_{(a,p)} log(1 + sum_{n in N(a)} e^{4 tan^2(alpha) (x_a + x_p) . x_n "
    "- 2 (1 + tan^2(alpha)) x_a . x_p})",
    paper="Deep Metric Learning with Angular Loss (Wang, Zhou, Wen, Liu, Lin, ICCV 2017, arXiv:1708.01682)",
    reference=f"{_PML}::losses/angular_loss.py::AngularLoss (LpDistance, MeanReducer over positive pairs)",
    sample=lambda: _pml2_sample(variants=({"alpha": 30.0},)),
    runtime=("axis_name",),
)
def angular_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float = 40.0,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""Angular loss (N-pair form): bounds the angle at each negative of the triangle it makes with a positive pair.

    .. math::
        \ell_{ap} = \log\Big(1 + \sum_{n\in N(a)} e^{4\tan^2\alpha\,(\hat x_a + \hat x_p)\cdot x_n
                   - 2(1 + \tan^2\alpha)\,\hat x_a\cdot\hat x_p}\Big),\qquad
        \mathcal L = \operatorname{mean}_{(a,p)}\ \ell_{ap}

    over every ordered positive pair; the anchor and positive are normalized
    (:math:`\hat x`) and, as in PML 2.9, the negatives ``x_n`` are not (PML
    takes them from the raw ``ref_emb``; the paper's are normalized: pass
    normalized embeddings for the paper's form). The exponent tensor is
    ``[n, M, M]`` (cubic in the batch).

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      alpha: the angle bound in degrees, in ``(0, 90)`` (40, PML's default).
      where: optional ``[N]`` mask of real examples.
      axis_name: mapped axis to gather the batch over.

    Returns:
      Scalar loss (0 without positive pairs).

    Paper: Wang, Zhou, Wen, Liu, Lin, "Deep Metric Learning with Angular
    Loss", ICCV 2017, arXiv:1708.01682.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
      >>> round(float(lossjax.losses.angular_loss(x, jnp.array([0, 0, 1]), alpha=45.0)), 4)  # log(1 + e^-4)
      0.0181
    """
    fn = "angular_loss"
    b, per = _angular_pairs(fn, embeddings, labels, alpha, where, axis_name)
    return _global_mean(jnp.sum(per), _count(b.pos, per.dtype), axis_name)


def _angular_pairs(fn, embeddings, labels, alpha, where, axis_name):
    """The labelled batch and each positive pair's angular loss ``[n, M]`` (0 off them)."""
    C.check_in_range(fn, "alpha", alpha, 0.0, 90.0)
    if alpha <= 0 or alpha >= 90:
        raise ValueError(f"{fn}: `alpha` must lie strictly between 0 and 90 degrees, got {alpha!r}.")
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name)
    dtype = b.dtype
    t2 = math.tan(math.radians(alpha)) ** 2
    xa, xp = l2_normalize(b.x), l2_normalize(b.x_all)
    to_raw_a = xa @ b.x_all.T  # [n, M]: x_a . x_n
    to_raw_p = xp @ b.x_all.T  # [M, M]: x_p . x_n
    ap = xa @ xp.T  # [n, M]
    expo = 4 * t2 * (to_raw_a[:, None, :] + to_raw_p[None, :, :]) - 2 * (1 + t2) * ap[:, :, None]  # [n, p, n']
    per = masked_logsumexp(expo, jnp.broadcast_to(b.neg[:, None, :], expo.shape), axis=-1, add_one=True)
    return b, jnp.where(b.pos, per, jnp.zeros((), dtype))


@register(
    "angular_loss_per_anchor",
    family=FAMILY,
    kind="per_example",
    formula="l_a = mean_{p pos of a} log(1 + sum_{n neg of a} e^{4 tan^2(alpha) (x_a + x_p) . x_n "
    "- 2 (1 + tan^2(alpha)) x_a . x_p})  (0 if none)",
    paper="Deep Metric Learning with Angular Loss (2017, arXiv:1708.01682)",
    reference=f"{_PML}::losses/angular_loss.py::AngularLoss(reducer=DoNothingReducer()) pos-pair losses through "
    "reducers/per_anchor_reducer.py::PerAnchorReducer(DoNothingReducer())",
    sample=_pml2_sample,
    runtime=("axis_name",),
)
def angular_loss_per_anchor(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float = 40.0,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""The angular loss of each anchor: the mean over its positive pairs, unreduced ``[N]``.

    .. math::
        \ell_a = \frac{1}{|P(a)|}\sum_{p\in P(a)} \log\Big(1 + \sum_{n\in N(a)}
                 e^{4\tan^2\alpha\,(x_a + x_p)^\top x_n - 2(1 + \tan^2\alpha)\,x_a^\top x_p}\Big)

    (0 for an anchor without a positive; terms as in :func:`angular_loss`):
    pytorch-metric-learning's ``AngularLoss`` pair losses (``pos_pair``)
    averaged per anchor by its ``PerAnchorReducer`` (PML 2.9 passes them as
    ``[P, 1]``, which that reducer cannot take as is: they are the same losses,
    flattened). :func:`angular_loss` is the mean over all ordered positive
    pairs, ``sum_a |P(a)| l_a / sum_a |P(a)|``.

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      alpha: as in :func:`angular_loss` (degrees).
      where: optional ``[N]`` mask of real examples (0 there).
      axis_name: mapped axis to gather the batch over (each device returns its own anchors).

    Returns:
      Per-anchor loss ``[N]``.

    Paper: Wang, Zhou, Wen, Liu, Lin, "Deep Metric Learning with Angular Loss",
    ICCV 2017, arXiv:1708.01682.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
      >>> out = lossjax.losses.angular_loss_per_anchor(x, jnp.array([0, 0, 1]), alpha=45.0)
      >>> [round(v, 4) for v in out.tolist()]  # log(1 + e^{0 - 4}) for each pair; anchor 2 has no positive
      [0.0181, 0.0181, 0.0]
    """
    fn = "angular_loss_per_anchor"
    b, per = _angular_pairs(fn, embeddings, labels, alpha, where, axis_name)
    return _pair_mean_per_anchor(per, b.pos)


class DynamicSoftMarginState(NamedTuple):
    """The dynamic soft margin's histogram of ``d_ap - d_an`` (explicit state, PML's ``hist_`` buffer).

    Attributes:
      histogram: ``[num_bins]`` normalized counts (all 0 before the first batch: that batch's histogram is taken as is).
    """

    histogram: Array

    @classmethod
    def initial(cls, num_bins: int = 10, dtype=jnp.float32) -> DynamicSoftMarginState:
        """An empty histogram (PML's initial ``hist_``)."""
        return cls(jnp.zeros((num_bins,), dtype))


def _dsm_sample() -> Sample:
    s = _pml2_sample()
    hist = np.array([0.0, 0.05, 0.1, 0.2, 0.25, 0.2, 0.1, 0.05, 0.05, 0.0], np.float32)
    return dataclasses.replace(
        s,
        kwargs={"state": DynamicSoftMarginState(hist)},
        # The sample mixes its state with decay; the variant starts from an empty histogram of other bins.
        variants=({"min_value": -2.5, "num_bins": 8, "state": None},),
    )


@register(
    "dynamic_soft_margin_loss",
    family=FAMILY,
    kind="batch",
    formula="mean_{(a,p,n)} CDF_h(x_apn) x_apn,  x = d_ap - d_an;  h <- normalize(decay h + (1 - decay) hist(x))",
    paper="Learning Local Descriptors With a CDF-Based Dynamic Soft Margin (Zhang, Rusinkiewicz, ICCV 2019)",
    reference=f"{_PML}::losses/dynamic_soft_margin_loss.py::DynamicSoftMarginLoss (LpDistance, all triplets)",
    sample=_dsm_sample,
    runtime=("state", "axis_name"),
    has_aux=True,
)
def dynamic_soft_margin_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    state: DynamicSoftMarginState | None = None,
    min_value: float = -2.0,
    num_bins: int = 10,
    decay: float = 0.99,
    where: ArrayLike | None = None,
    axis_name=None,
) -> tuple[Array, DynamicSoftMarginState]:
    r"""Dynamic soft margin: each triplet's ``d_ap - d_an`` weighted by its CDF under a running histogram.

    .. math::
        x_{apn} = d_{ap} - d_{an},\qquad
        h \leftarrow \frac{\mu h + (1-\mu)\,\mathrm{hist}(x)}{\|\cdot\|_1},\qquad
        \mathcal L = \operatorname{mean}_{(a,p,n)}\,
            \mathrm{CDF}_h\big(\lfloor (x_{apn} - x_0)/\delta\rfloor\big)\,x_{apn}

    over every (anchor, positive, negative) triplet, Euclidean distances of
    normalized embeddings; ``hist`` spreads each ``x`` linearly over its two
    nearest bins of width ``delta = 2 |x_0| / B`` from ``x_0`` (``min_value``),
    ``mu`` is ``decay`` (PML's ``1 - momentum``), and the first batch (an
    all-zero histogram) takes ``mu = 0``. The CDF is that of the *updated*
    histogram, and the gradient flows through it (through the fractional bin
    weights), as in PML. A value past the last bin has no bin to spread to
    (PML raises an index error there): that weight is dropped and its CDF is
    the last bin's. Without triplets the loss is 0 and the state unchanged.
    The triplet tensor is ``[n, M, M]`` (cubic in the batch).

    Args:
      embeddings: ``[N, D]``.
      labels: integer labels ``[N]``.
      state: the :class:`DynamicSoftMarginState` (None: an empty histogram of ``num_bins``).
      min_value: ``x_0``, the left end of the histogram (-2).
      num_bins: ``B`` (10).
      decay: ``mu``, the weight of the old histogram (0.99; PML's ``momentum`` is ``1 - decay``).
      where: optional ``[N]`` mask of real examples.
      axis_name: mapped axis to gather the batch over (the histogram counts every device's triplets).

    Returns:
      ``(loss, new_state)``.

    Paper: Zhang, Rusinkiewicz, "Learning Local Descriptors With a CDF-Based
    Dynamic Soft Margin", ICCV 2019.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
      >>> loss, state = lossjax.losses.dynamic_soft_margin_loss(x, jnp.array([0, 0, 1]))
      >>> float(loss), float(state.histogram[0])  # x = 0 - 2 = -2 for both triplets: bin 0, CDF 1
      (-2.0, 1.0)
    """
    fn = "dynamic_soft_margin_loss"
    C.check_int(fn, "num_bins", num_bins, 1, static=True)
    C.check_in_range(fn, "decay", decay, 0.0, 1.0)
    if not (isinstance(min_value, (int, float, np.floating)) and math.isfinite(min_value) and min_value < 0):
        raise ValueError(f"{fn}: `min_value` must be a finite negative number, got {min_value!r}.")
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name, normalize=True)
    dtype = b.dtype
    zero = jnp.zeros((), dtype)
    hist = jnp.zeros((num_bins,), dtype) if state is None else jnp.asarray(state.histogram).astype(dtype)
    if hist.shape != (num_bins,):
        raise ValueError(f"{fn}: `state.histogram` must have shape ({num_bins},) (num_bins), got {hist.shape}.")
    d = pairwise_similarity(b.x, b.x_all, distance="euclidean")
    trip = b.pos[:, :, None] & b.neg[:, None, :]  # [n, p, q]
    x = d[:, :, None] - d[:, None, :]
    delta = 2 * abs(min_value) / num_bins
    u = (jnp.where(trip, x, min_value) - min_value) / delta
    idx = jax.lax.stop_gradient(jnp.floor(u)).astype(jnp.int32)
    frac = u - jax.lax.stop_gradient(jnp.floor(u))
    w = jnp.where(trip, jnp.ones((), dtype), zero)
    flat = jnp.reshape(idx, (-1,))
    new = jnp.zeros((num_bins,), dtype).at[flat].add(jnp.reshape(w * (1 - frac), (-1,)), mode="drop")
    new = new.at[flat + 1].add(jnp.reshape(w * frac, (-1,)), mode="drop")
    new = psum(new, axis_name)
    count = psum(_count(trip, dtype), axis_name)
    momentum = jnp.where(jnp.sum(hist) != 0, jnp.asarray(1 - decay, dtype), jnp.ones((), dtype))
    mixed = (1 - momentum) * hist + momentum * new
    total = jnp.sum(mixed)
    ok = (count > 0) & (total > 0)
    mixed = jnp.where(ok, mixed / jnp.where(ok, total, jnp.ones((), dtype)), hist)
    cdf = jnp.cumsum(mixed)
    weight = jnp.take(cdf, jnp.clip(idx, 0, num_bins - 1))
    total_loss = psum(jnp.sum(jnp.where(trip, weight * x, zero)), axis_name)
    loss = jnp.where(count > 0, total_loss / jnp.maximum(count, jnp.ones((), dtype)), zero)
    return loss, DynamicSoftMarginState(jax.lax.stop_gradient(mixed))


def _manifold_sample() -> Sample:
    rng = np.random.default_rng(53)
    proxies = rng.normal(size=(3, 4)).astype(np.float32)
    labels = np.array([0, 1, 2, 0, 1, 2], np.int32)
    x = (proxies[labels] + 0.8 * rng.normal(size=(6, 4))).astype(np.float32)
    return Sample(
        args=(x, labels, proxies),
        diff_argnums=(0, 2),
        batched_argnums=(0, 1),
        variants=({"context_weight": 0.5, "alpha": 0.5, "margin": 0.01},),
    )


@register(
    "manifold_loss",
    family=FAMILY,
    kind="batch",
    formula="F = (1 - a)(I - a D^-1/2 S D^-1/2)^-1 over embeddings + proxies, S_ij = e^{2 [cos]_+} (i != j); "
    "mean_i log(1 + sum_{k != y_i, v_ik >= 0} e^{v_ik}), v_ik = F_ik - F_iy + m;  + lambda (same on cos(F_i, F_k))",
    paper="Ensemble Deep Manifold Similarity Learning using Hard Proxies (Aziere, Todorovic, CVPR 2019)",
    reference=f"{_PML}::losses/manifold_loss.py::ManifoldLoss (CosineSimilarity; meta-classes as indices_tuple)",
    sample=_manifold_sample,
    runtime=("axis_name",),
)
def manifold_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    proxies: ArrayLike,
    *,
    context_weight: float = 1.0,
    alpha: float = 0.8,
    margin: float = 5e-4,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""Manifold loss: a random-walk similarity over the batch and the proxies, each example against its hard proxies.

    .. math::
        S_{ij} = e^{2[\cos(z_i, z_j)]_+}\ (i\ne j),\quad
        F = (1-\alpha)\big(I - \alpha D^{-1/2} S D^{-1/2}\big)^{-1},\qquad
        \ell(v)_i = \log\Big(1 + \sum_{k\ne y_i,\ v_{ik}\ge 0} e^{v_{ik}}\Big),\quad
        \mathcal L = \operatorname{mean}_i\ \ell(F^{ep} - F^{ep}_{:,y} + m)_i
                   + \lambda\,\operatorname{mean}_i\ \ell(C - C_{:,y} + m)_i

    over the nodes ``z`` = the batch's embeddings and the ``K`` proxies (``D``
    the row sums of ``S``); ``F^{ep}`` is the embeddings-by-proxies block of
    ``F`` (the intrinsic term) and ``C_{ik}`` the cosine between row ``i`` and
    proxy ``k``'s row of ``F`` (the context term). ``labels`` are PML's
    meta-classes: the proxy each example belongs to (PML draws them at
    random when not given; here they are an input). Terms below 0 count
    nothing (a jump at 0, as in PML). Padded examples are isolated nodes.
    The inverse is of an ``(N + K)`` square matrix (on every device under
    ``axis_name``).

    Args:
      embeddings: ``[N, D]``.
      labels: integer proxy indices ``[N]`` (``< K``).
      proxies: ``[K, D]`` the learned proxies.
      context_weight: ``lambda``, the weight of the context term (PML's ``lambdaC``, 1; 0: the intrinsic term only).
      alpha: the random walk's ``alpha`` in ``(0, 1)`` (0.8).
      margin: ``m`` (5e-4).
      where: optional ``[N]`` mask of real examples.
      axis_name: mapped axis to gather the batch over.

    Returns:
      Scalar loss.

    Paper: Aziere, Todorovic, "Ensemble Deep Manifold Similarity Learning
    using Hard Proxies", CVPR 2019.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> p = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> x = jnp.array([[1.0, 0.1], [0.1, 1.0]])
      >>> float(lossjax.losses.manifold_loss(x, jnp.array([0, 1]), p))  # each row is closest to its own proxy
      0.0
    """
    fn = "manifold_loss"
    C.check_positive(fn, "context_weight", context_weight, allow_zero=True)
    C.check_in_range(fn, "alpha", alpha, 0.0, 1.0)
    C.check_positive(fn, "margin", margin, allow_zero=True)
    p = C.check_array(fn, "proxies", proxies, ndim=2, dtype="float")
    b = labelled_batch(fn, embeddings, labels, where, axis_name=axis_name)
    if p.shape[1] != b.x.shape[1]:
        raise ValueError(f"{fn}: `proxies` must have shape (K, {b.x.shape[1]}) (the embedding size), got {p.shape}.")
    dtype = C.compute_dtype(b.x, p)
    zero = jnp.zeros((), dtype)
    k = p.shape[0]
    n = b.x.shape[0]
    m = b.x_all.shape[0]
    nodes = jnp.concatenate([b.x_all.astype(dtype), C.as_compute(p, dtype)], axis=0)
    live = jnp.concatenate([b.valid_all, jnp.ones((k,), bool)])
    edge = live[:, None] & live[None, :] & ~jnp.eye(m + k, dtype=bool)
    cos = pairwise_similarity(nodes, nodes, distance="cosine")
    s = jnp.where(edge, jnp.exp(jnp.maximum(cos, zero) / 0.5), zero)
    deg = jnp.sum(s, axis=1)
    inv_sqrt = jnp.where(deg > 0, jax.lax.rsqrt(jnp.where(deg > 0, deg, jnp.ones((), dtype))), zero)
    s_bar = inv_sqrt[:, None] * s * inv_sqrt[None, :]
    eye = jnp.eye(m + k, dtype=dtype)
    f = (1 - alpha) * jnp.linalg.solve(eye - alpha * s_bar, eye)  # the inverse (solve compiles lighter)
    offset = axis_offset(axis_name, n)
    rows = jax.lax.dynamic_slice_in_dim(f, offset, n, axis=0)  # this device's embeddings' rows [n, M + K]
    labels_local = jax.lax.dynamic_slice_in_dim(b.labels_all, offset, n)
    onehot = C.class_targets(fn, jnp.zeros((n, k), dtype), labels_local, dtype, where=b.valid)
    own = onehot > 0
    f_p = f[m:]  # the proxies' rows [K, M + K]

    def term(v):
        v = v - jnp.sum(jnp.where(own, v, zero), axis=-1, keepdims=True) + margin
        # log(1 + sum e^v) over the other proxies with v >= 0 (PML sets the rest to -inf).
        return masked_logsumexp(v, (v >= 0) & ~own, axis=-1, add_one=True)

    per = term(rows[:, m:])
    if context_weight:
        ctx = pairwise_similarity(rows, f_p, distance="cosine")
        per = per + context_weight * term(ctx)
    # An out-of-range label in a real row: NaN (its one-hot row), as the classification losses.
    per = jnp.where(b.valid, per + zero * jnp.sum(onehot, axis=-1), zero)
    return _global_mean(jnp.sum(per), _count(b.valid, dtype), axis_name)
