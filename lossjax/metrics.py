r"""Ranking and retrieval metrics, and the tools that turn them into losses (rax's API, per list).

Every function here takes rax's arguments: ``scores`` and graded ``labels``
``[..., list_size]`` (the last axis is one query's list of items), ``where``
(an item mask ``[..., list_size]``, or a mask of whole lists along the leading
axes, as everywhere in lossjax), per-item ``weights`` and ``segments``
(integer ids packing several queries into one list: items only meet items of
their own segment). They return **one value per list** (``scores.shape[:-1]``):
the value rax gives for that list alone (``jax.vmap(rax.ndcg_metric)``), i.e.
rax's default mean applied within the list (over its segments). A list with no
valid item gives 0; a list with no relevant item gives 0 for every metric
(``dcg = 0``, the ideal DCG is taken as 1). Reduce over lists with
``lossjax.masked_mean(values, where=list_mask)``; with
``list_mask = jnp.any(item_mask, -1)`` this is rax's ``reduce_fn=jnp.mean``.

Metrics (non-differentiable: ranks come from a sort):
:func:`dcg`, :func:`ndcg`, :func:`mrr`, :func:`precision`, :func:`recall`,
:func:`average_precision`, :func:`ordered_pair_accuracy`. ``topn`` is the
cutoff ``k`` of NDCG@k, P@k, R@k ...; ``gain``/``discount`` name the gain
(``"exponential"`` ``2^y - 1``, ``"linear"`` ``y``) and the rank discount
(``"log2"`` ``1/log2(r + 1)``, ``"reciprocal"`` ``1/r``), or are callables.

Ranks: :func:`ranks` (exact, ties by position or by a PRNG ``key``),
:func:`approx_ranks`, :func:`cutoff`, :func:`approx_cutoff`. A metric's
``rank_fn`` / ``cutoff_fn`` arguments accept them (rax's ``RankFn`` /
``CutoffFn`` signatures).

Transformations (rax's ``t12n``): :func:`approx_t12n` (sigmoid ranks and
cutoffs: ApproxNDCG), :func:`bound_t12n` (hinge bounds), :func:`gumbel_t12n`
(Gumbel-perturbed scores with an explicit ``key``), :func:`segment_t12n`. They
turn a metric into a loss (the negated smooth metric) that returns one value
per list.

Lambda weights for pairwise losses (rax's ``lambdaweights``, as ``[..., L, L]``
pair matrices): :func:`labeldiff_lambdaweight`, :func:`dcg_lambdaweight`
(``normalize=True``: NDCG; ``gain="linear", discount="reciprocal",
normalize=True``: MRR, TF-Ranking's reciprocal-rank lambda weight),
:func:`dcg2_lambdaweight` (LambdaLoss). The ranking losses take them by name
(``lambdaweight="ndcg"``) or as a callable.

Not reproduced from rax: ``reduce_fn`` (outputs are per list; reduce with
``lossjax.masked_mean``); flattened ``[..., L*L]`` lambda weights (ours are
``[..., L, L]``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from lossjax import _checks as C
from lossjax import _rank as R

__all__ = [
    "LAMBDAWEIGHTS",
    "approx_cutoff",
    "approx_ranks",
    "approx_t12n",
    "average_precision",
    "bound_t12n",
    "cutoff",
    "dcg",
    "dcg2_lambdaweight",
    "dcg_lambdaweight",
    "gumbel_t12n",
    "labeldiff_lambdaweight",
    "lambdaweight_fn",
    "mrr",
    "ndcg",
    "ordered_pair_accuracy",
    "precision",
    "ranks",
    "recall",
    "segment_t12n",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


# ------------------------------------- ranks -------------------------------------


def _valid(fn: str, x: Array, where: ArrayLike | None) -> Array:
    v = C.prepare_where(fn, where, x.shape)
    return jnp.ones(x.shape, bool) if v is None else v


def ranks(
    scores: ArrayLike,
    *,
    where: ArrayLike | None = None,
    segments: ArrayLike | None = None,
    key: ArrayLike | None = None,
) -> Array:
    """1-based ranks of the items by descending score (rax's ``utils.ranks``).

    Ties keep their order of appearance, or are broken at random with a PRNG
    ``key``. Invalid items rank after every valid one. With ``segments`` the
    rank counts only the items of the same segment.

    Args:
      scores: ``[..., list_size]`` scores.
      where: optional item (or list) mask.
      segments: optional integer segment ids ``[..., list_size]``.
      key: optional PRNG key for random tie-breaking.

    Returns:
      int32 ranks of the scores' shape (no gradient).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.metrics.ranks(jnp.array([0.5, 2.0, 1.0]))
      Array([3, 1, 2], dtype=int32)
    """
    fn = "lossjax.metrics.ranks"
    scores = C.check_array(fn, "scores", scores, min_ndim=1, dtype="number")
    valid = _valid(fn, scores, where)
    scores = jnp.where(valid, scores, jnp.zeros((), scores.dtype))
    return R.ranks(scores, valid, _segments(fn, segments, scores), key=key)


def approx_ranks(
    scores: ArrayLike,
    *,
    where: ArrayLike | None = None,
    segments: ArrayLike | None = None,
    key: ArrayLike | None = None,
    step_fn: Callable[[Array], Array] = jax.nn.sigmoid,
) -> Array:
    r"""Differentiable ranks :math:`\hat r_i = 1 + \sum_{j \ne i} \mathrm{step}(s_j - s_i)` (rax's ``approx_ranks``).

    Args:
      scores: ``[..., list_size]`` scores.
      where: optional item (or list) mask; a masked item has rank 1.
      segments: optional segment ids (pairs only within a segment).
      key: unused (rax's ``RankFn`` signature).
      step_fn: the smooth step (sigmoid; ``sigmoid(x / T)`` in :func:`approx_t12n`).

    Returns:
      Float ranks of the scores' shape.

    Paper: Qin, Liu, Li, "A general approximation framework for direct
    optimization of information retrieval measures", Information Retrieval
    2010 (no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.metrics.approx_ranks(jnp.array([0.0, 0.0])).tolist()
      [1.5, 1.5]
    """
    del key
    fn = "lossjax.metrics.approx_ranks"
    scores = C.check_array(fn, "scores", scores, min_ndim=1, dtype="float")
    valid = _valid(fn, scores, where)
    scores = jnp.where(valid, scores, jnp.zeros((), scores.dtype))
    return R.approx_ranks(scores, valid, _segments(fn, segments, scores), step_fn=step_fn)


def cutoff(
    a: ArrayLike, n: int | None = None, *, where: ArrayLike | None = None, segments: ArrayLike | None = None
) -> Array:
    """1.0 for the ``n`` largest values of ``a`` along the last axis (per segment), else 0 (rax's ``utils.cutoff``).

    Args:
      a: ``[..., list_size]`` values.
      n: how many to keep; None keeps everything.
      where: optional mask; masked items are never kept.
      segments: optional segment ids (the top ``n`` of each segment).

    Returns:
      A float array of ``a``'s shape.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.metrics.cutoff(jnp.array([0.1, 3.0, 2.0]), 2).tolist()
      [0.0, 1.0, 1.0]
    """
    fn = "lossjax.metrics.cutoff"
    a = C.check_array(fn, "a", a, min_ndim=1, dtype="number")
    if n is not None:
        C.check_int(fn, "n", n, 0, static=True)
    a = a.astype(C.compute_dtype(a))
    out = R.cutoff(a, n, jnp.ones(a.shape, bool), _segments(fn, segments, a))
    if where is not None:
        out = jnp.where(_valid(fn, a, where), out, jnp.zeros((), out.dtype))
    return out


def approx_cutoff(
    a: ArrayLike,
    n: int | None = None,
    *,
    where: ArrayLike | None = None,
    segments: ArrayLike | None = None,
    step_fn: Callable[[Array], Array] = jax.nn.sigmoid,
) -> Array:
    r"""Smooth top-``n`` indicator ``step(a - c)``, ``c`` halfway between the ``n``-th and ``n+1``-th values (rax).

    The cut point ``c`` is held constant in the backward pass; a list (or
    segment) with at most ``n`` items keeps everything (1).

    Args:
      a: ``[..., list_size]`` values.
      n: the cutoff; None keeps everything, 0 nothing.
      where: optional mask; masked items get 0.
      segments: optional segment ids.
      step_fn: the smooth step.

    Returns:
      A float array of ``a``'s shape.

    Paper: Qin, Liu, Li, "A general approximation framework for direct
    optimization of information retrieval measures", Information Retrieval
    2010 (no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> [round(float(v), 3) for v in lossjax.metrics.approx_cutoff(jnp.array([0.0, 4.0, 2.0]), 1)]
      [0.047, 0.731, 0.269]
    """
    fn = "lossjax.metrics.approx_cutoff"
    a = C.check_array(fn, "a", a, min_ndim=1, dtype="float")
    if n is not None:
        C.check_int(fn, "n", n, 0, static=True)
    a = a.astype(C.compute_dtype(a))
    out = R.approx_cutoff(a, n, jnp.ones(a.shape, bool), _segments(fn, segments, a), step_fn=step_fn)
    if where is not None:
        out = jnp.where(_valid(fn, a, where), out, jnp.zeros((), out.dtype))
    return out


def _segments(fn: str, segments, like: Array) -> Array | None:
    if segments is None:
        return None
    segments = C.check_array(fn, "segments", segments, dtype="int")
    C.check_same_shape(fn, ("scores", "segments"), like, segments)
    return segments


def _topn(fn: str, topn) -> None:
    if topn is not None:
        C.check_int(fn, "topn", topn, 1, static=True)


# ------------------------------------ metrics ------------------------------------


def _rank_call(rank_fn, inp: R.ListInputs, key):
    if rank_fn is None:
        return R.ranks(inp.scores, inp.valid, inp.segments, key=key).astype(inp.dtype)
    r = rank_fn(inp.scores, where=inp.valid, segments=inp.segments, key=key)
    return jnp.asarray(r).astype(inp.dtype)


def _cutoff_call(cutoff_fn, a: Array, n, inp: R.ListInputs) -> Array:
    if cutoff_fn is None:
        return R.cutoff(a, n, inp.valid, inp.segments)
    return jnp.asarray(cutoff_fn(a, n=n, segments=inp.segments)).astype(a.dtype)


def _retrieved(inp: R.ListInputs, r: Array, topn, cutoff_fn) -> Array:
    """rax's ``_retrieved_items``: valid, score not ``-inf``, within the (smooth) top ``topn``."""
    finite = inp.valid & ~jnp.isneginf(inp.raw_scores)
    return finite.astype(inp.dtype) * _cutoff_call(cutoff_fn, -r, topn, inp)


def _sum_items(x: Array, inp: R.ListInputs) -> Array:
    """Per list (no segments) or per item = its segment's total (segments) of ``x`` over valid items."""
    if inp.segments is None:
        return jnp.sum(jnp.where(inp.valid, x, jnp.zeros((), x.dtype)), axis=-1)
    return R.segment_sum(x, inp.segments, inp.valid)


def _dcg_values(inp: R.ListInputs, topn, key, gain, discount, rank_fn, cutoff_fn) -> Array:
    r = _rank_call(rank_fn, inp, key)
    retrieved = _retrieved(inp, r, topn, cutoff_fn)
    gains = gain(inp.labels)
    if inp.weights is not None:
        gains = gains * inp.weights
    return _sum_items(retrieved * gains * discount(r), inp)


def _ideal_dcg(inp: R.ListInputs, topn, gain, discount) -> Array:
    gains = gain(inp.labels)
    if inp.weights is not None:
        gains = gains * inp.weights
    ideal = R.ListInputs(gains, inp.labels, inp.valid, inp.weights, inp.segments, inp.dtype, gains)
    return _dcg_values(ideal, topn, None, gain, discount, None, None)


def dcg(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    segments: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    topn: int | None = None,
    key: ArrayLike | None = None,
    gain: str | Callable[[Array], Array] = "exponential",
    discount: str | Callable[[Array], Array] = "log2",
    rank_fn: Callable[..., Array] | None = None,
    cutoff_fn: Callable[..., Array] | None = None,
) -> Array:
    r"""Discounted cumulative gain per list (DCG@``topn``), rax's ``dcg_metric``.

    .. math:: \mathrm{DCG}(s, y) = \sum_i w_i\,\mathrm{gain}(y_i)\,\mathrm{discount}(\mathrm{rank}(s_i))\,
        [\mathrm{rank}(s_i) \le n]

    Args:
      scores: ``[..., list_size]``; items scored ``-inf`` are unranked.
      labels: graded relevance of the same shape.
      where: optional item (or list) mask.
      segments: optional segment ids (the value of a list is the mean over its segments).
      weights: optional per-item weights (multiply the gains).
      topn: the cutoff ``n`` (None: the whole list).
      key: optional PRNG key breaking score ties at random.
      gain: ``"exponential"`` (``2^y - 1``), ``"linear"`` or a callable.
      discount: ``"log2"`` (``1 / log2(r + 1)``), ``"reciprocal"`` or a callable.
      rank_fn: rank function (default exact :func:`ranks`).
      cutoff_fn: cutoff function (default :func:`cutoff`).

    Returns:
      DCG per list ``[...]``; 0 for a list with no valid item.

    Paper: Jarvelin, Kekalainen, "Cumulated gain-based evaluation of IR
    techniques", ACM TOIS 2002 (no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> float(lossjax.metrics.dcg(jnp.array([2.0, 1.0, 3.0]), jnp.array([2.0, 0.0, 1.0])).round(4))
      2.8928
    """
    fn = "lossjax.metrics.dcg"
    _topn(fn, topn)
    inp = R.list_inputs(fn, scores, labels, where, weights, segments)
    vals = _dcg_values(inp, topn, key, R.gain_fn(fn, gain), R.discount_fn(fn, discount), rank_fn, cutoff_fn)
    return R.per_list(vals, inp.valid, inp.segments)


def ndcg(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    segments: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    topn: int | None = None,
    key: ArrayLike | None = None,
    gain: str | Callable[[Array], Array] = "exponential",
    discount: str | Callable[[Array], Array] = "log2",
    rank_fn: Callable[..., Array] | None = None,
    cutoff_fn: Callable[..., Array] | None = None,
) -> Array:
    r"""Normalized DCG per list (NDCG@``topn``), rax's ``ndcg_metric``.

    .. math:: \mathrm{NDCG}(s, y) = \mathrm{DCG}(s, y) / \mathrm{DCG}(y, y)

    The ideal DCG ranks the items by their (weighted) gains with exact ranks;
    a list whose ideal DCG is 0 (no relevant item) gives 0.

    Args:
      scores: ``[..., list_size]``; items scored ``-inf`` are unranked.
      labels: graded relevance of the same shape.
      where: optional item (or list) mask.
      segments: optional segment ids (the value of a list is the mean over its segments).
      weights: optional per-item weights.
      topn: the cutoff (None: the whole list).
      key: optional PRNG key breaking score ties at random.
      gain: ``"exponential"`` (``2^y - 1``), ``"linear"`` or a callable.
      discount: ``"log2"``, ``"reciprocal"`` or a callable.
      rank_fn: rank function of the DCG (default exact; :func:`approx_t12n` swaps in smooth ranks).
      cutoff_fn: cutoff function of the DCG.

    Returns:
      NDCG per list ``[...]`` in ``[0, 1]``.

    Paper: Jarvelin, Kekalainen, "Cumulated gain-based evaluation of IR
    techniques", ACM TOIS 2002 (no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> float(lossjax.metrics.ndcg(jnp.array([2.0, 1.0, 3.0]), jnp.array([2.0, 0.0, 1.0])).round(4))
      0.7967
    """
    fn = "lossjax.metrics.ndcg"
    _topn(fn, topn)
    inp = R.list_inputs(fn, scores, labels, where, weights, segments)
    g, d = R.gain_fn(fn, gain), R.discount_fn(fn, discount)
    regular = _dcg_values(inp, topn, key, g, d, rank_fn, cutoff_fn)
    ideal = _ideal_dcg(inp, topn, g, d)
    ideal = jnp.where(ideal == 0, jnp.ones((), ideal.dtype), ideal)
    return R.per_list(regular / ideal, inp.valid, inp.segments)


def _relevant(inp: R.ListInputs) -> Array:
    return (inp.labels >= 1).astype(inp.dtype)


def mrr(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    segments: ArrayLike | None = None,
    topn: int | None = None,
    key: ArrayLike | None = None,
    rank_fn: Callable[..., Array] | None = None,
    cutoff_fn: Callable[..., Array] | None = None,
) -> Array:
    r"""Reciprocal rank of the first relevant item per list (MRR@``topn``), rax's ``mrr_metric``.

    .. math:: \mathrm{RR}(s, y) = \max_i \frac{[y_i \ge 1]}{\mathrm{rank}(s_i)}

    Labels ``>= 1`` are relevant (graded labels are binarized, as rax).

    Args:
      scores: ``[..., list_size]``; items scored ``-inf`` are unranked.
      labels: graded relevance of the same shape.
      where: optional item (or list) mask.
      segments: optional segment ids.
      topn: the cutoff (None: the whole list).
      key: optional PRNG key breaking score ties at random.
      rank_fn: rank function (default exact).
      cutoff_fn: cutoff function.

    Returns:
      Reciprocal rank per list ``[...]`` (0 without a relevant item in the top ``topn``).

    Paper: Voorhees, "The TREC-8 question answering track report", TREC 1999 (no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> float(lossjax.metrics.mrr(jnp.array([2.0, 1.0, 3.0]), jnp.array([1.0, 0.0, 0.0])))
      0.5
    """
    fn = "lossjax.metrics.mrr"
    _topn(fn, topn)
    inp = R.list_inputs(fn, scores, labels, where, None, segments)
    r = _rank_call(rank_fn, inp, key)
    retrieved = _retrieved(inp, r, topn, cutoff_fn)
    rr = jnp.ones((), inp.dtype) / jnp.where(r == 0, jnp.asarray(jnp.inf, inp.dtype), r)
    x = _relevant(inp) * retrieved * rr
    zero = jnp.zeros((), inp.dtype)
    if inp.segments is None:
        vals = jnp.max(jnp.where(inp.valid, x, zero), axis=-1, initial=0.0)
    else:
        pair = R.same_segment(inp.segments, inp.valid)
        vals = jnp.max(jnp.where(pair, jnp.broadcast_to(x[..., None, :], pair.shape), zero), axis=-1, initial=0.0)
    return R.per_list(vals, inp.valid, inp.segments)


def _counts(inp: R.ListInputs, r: Array, topn, cutoff_fn) -> tuple[Array, Array, Array]:
    retrieved = _retrieved(inp, r, topn, cutoff_fn)
    rel = _relevant(inp)
    return _sum_items(retrieved * rel, inp), _sum_items(rel, inp), _sum_items(retrieved, inp)


def _safe_div(a: Array, b: Array) -> Array:
    return a / jnp.where(b == 0, jnp.ones((), b.dtype), b)


def recall(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    segments: ArrayLike | None = None,
    topn: int | None = None,
    key: ArrayLike | None = None,
    rank_fn: Callable[..., Array] | None = None,
    cutoff_fn: Callable[..., Array] | None = None,
) -> Array:
    r"""Recall@``topn`` per list: the fraction of relevant items ranked in the top ``topn`` (rax's ``recall_metric``).

    .. math:: \mathrm{R@n} = \frac{\sum_i [y_i \ge 1][\mathrm{rank}(s_i) \le n]}{\sum_i [y_i \ge 1]}

    Args:
      scores: ``[..., list_size]``; items scored ``-inf`` are unranked.
      labels: graded relevance (``>= 1`` is relevant).
      where: optional item (or list) mask.
      segments: optional segment ids.
      topn: the cutoff (None: the whole list).
      key: optional PRNG key breaking score ties at random.
      rank_fn: rank function.
      cutoff_fn: cutoff function.

    Returns:
      Recall per list ``[...]`` (0 without relevant items).

    Paper: none (a standard retrieval metric; rax's ``recall_metric``).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> float(lossjax.metrics.recall(jnp.array([2.0, 1.0, 3.0]), jnp.array([1.0, 1.0, 0.0]), topn=2))
      0.5
    """
    fn = "lossjax.metrics.recall"
    _topn(fn, topn)
    inp = R.list_inputs(fn, scores, labels, where, None, segments)
    hit, rel, _ = _counts(inp, _rank_call(rank_fn, inp, key), topn, cutoff_fn)
    return R.per_list(_safe_div(hit, rel), inp.valid, inp.segments)


def precision(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    segments: ArrayLike | None = None,
    topn: int | None = None,
    key: ArrayLike | None = None,
    rank_fn: Callable[..., Array] | None = None,
    cutoff_fn: Callable[..., Array] | None = None,
) -> Array:
    r"""Precision@``topn`` per list: the relevant fraction of the retrieved top ``topn`` (rax's ``precision_metric``).

    .. math:: \mathrm{P@n} = \frac{\sum_i [y_i \ge 1][\mathrm{rank}(s_i) \le n]}{\sum_i [\mathrm{rank}(s_i) \le n]}

    Args:
      scores: ``[..., list_size]``; items scored ``-inf`` are unranked.
      labels: graded relevance (``>= 1`` is relevant).
      where: optional item (or list) mask.
      segments: optional segment ids.
      topn: the cutoff (None: the whole list).
      key: optional PRNG key breaking score ties at random.
      rank_fn: rank function.
      cutoff_fn: cutoff function.

    Returns:
      Precision per list ``[...]``.

    Paper: none (a standard retrieval metric; rax's ``precision_metric``).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> float(lossjax.metrics.precision(jnp.array([2.0, 1.0, 3.0]), jnp.array([1.0, 1.0, 0.0]), topn=2))
      0.5
    """
    fn = "lossjax.metrics.precision"
    _topn(fn, topn)
    inp = R.list_inputs(fn, scores, labels, where, None, segments)
    hit, _, retrieved = _counts(inp, _rank_call(rank_fn, inp, key), topn, cutoff_fn)
    return R.per_list(_safe_div(hit, retrieved), inp.valid, inp.segments)


def average_precision(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    segments: ArrayLike | None = None,
    topn: int | None = None,
    key: ArrayLike | None = None,
    rank_fn: Callable[..., Array] | None = None,
    cutoff_fn: Callable[..., Array] | None = None,
) -> Array:
    r"""Average precision per list (AP@``topn``), rax's ``ap_metric``.

    .. math:: \mathrm{AP} = \frac{1}{\sum_i [y_i \ge 1]}
        \sum_i [y_i \ge 1]\,[\mathrm{rank}(s_i) \le n]\,\mathrm{P@rank}(s_i)

    Args:
      scores: ``[..., list_size]``; items scored ``-inf`` are unranked.
      labels: graded relevance (``>= 1`` is relevant).
      where: optional item (or list) mask.
      segments: optional segment ids.
      topn: the cutoff (None: the whole list).
      key: optional PRNG key breaking score ties at random.
      rank_fn: rank function.
      cutoff_fn: cutoff function.

    Returns:
      AP per list ``[...]`` (0 without relevant items).

    Paper: none (a standard retrieval metric; rax's ``ap_metric``).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> s, y = jnp.array([3.0, 2.0, 1.0]), jnp.array([1.0, 0.0, 1.0])
      >>> float(lossjax.metrics.average_precision(s, y).round(4))
      0.8333
    """
    fn = "lossjax.metrics.average_precision"
    _topn(fn, topn)
    inp = R.list_inputs(fn, scores, labels, where, None, segments)
    r = _rank_call(rank_fn, inp, key)
    retrieved = _retrieved(inp, r, topn, cutoff_fn)
    rel = _relevant(inp)
    above = (r[..., :, None] >= r[..., None, :]).astype(inp.dtype)  # [.., i, j]: rank_i >= rank_j
    prec = above * rel[..., :, None] * rel[..., None, :] / r[..., :, None] * retrieved[..., :, None]
    if inp.segments is not None:
        same = inp.segments[..., :, None] == inp.segments[..., None, :]
        prec = jnp.where(same, prec, jnp.zeros((), inp.dtype))
    prec_at = jnp.sum(prec, axis=-1)
    if inp.segments is None:
        total = jnp.sum(prec_at, axis=-1)
    else:
        total = R.segment_sum(prec_at, inp.segments, inp.valid)
    return R.per_list(_safe_div(total, _sum_items(rel, inp)), inp.valid, inp.segments)


def ordered_pair_accuracy(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    segments: ArrayLike | None = None,
) -> Array:
    r"""Ordered pair accuracy per list: the fraction of pairs ``y_i > y_j`` with ``s_i > s_j`` (rax's ``opa_metric``).

    .. math:: \mathrm{OPA} = \frac{\sum_{i,j} [y_i > y_j][s_i > s_j]}{\sum_{i,j} [y_i > y_j]}

    Tied scores count as wrongly ordered; tied labels are ignored (as rax).

    Args:
      scores: ``[..., list_size]``.
      labels: graded relevance of the same shape.
      where: optional item (or list) mask.
      segments: optional segment ids: the list's value is the mean of its segments' OPA
        (rax's ``opa_metric`` has no segments; this is ``rax.segment_t12n(rax.opa_metric)``).

    Returns:
      OPA per list ``[...]`` (0 without a labelled pair).

    Paper: none (rax's ``opa_metric``).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> float(lossjax.metrics.ordered_pair_accuracy(jnp.array([1.0, 2.0, 3.0]), jnp.array([0.0, 2.0, 1.0])))
      0.6666666865348816
    """
    fn = "lossjax.metrics.ordered_pair_accuracy"
    inp = R.list_inputs(fn, scores, labels, where, None, segments)
    pair = R.same_segment(inp.segments, inp.valid)
    labelled = pair & (inp.labels[..., :, None] > inp.labels[..., None, :])
    correct = labelled & (inp.scores[..., :, None] > inp.scores[..., None, :])
    num = jnp.sum(correct, axis=-1).astype(inp.dtype)
    den = jnp.sum(labelled, axis=-1).astype(inp.dtype)
    return R.per_list(_safe_div(_sum_items(num, inp), _sum_items(den, inp)), inp.valid, inp.segments)


# --------------------------------- lambda weights ---------------------------------


def labeldiff_lambdaweight(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    segments: ArrayLike | None = None,
    weights: ArrayLike | None = None,
) -> Array:
    r"""Absolute label difference lambda weights :math:`\lambda_{ij} = |y_i - y_j|` (rax's ``labeldiff_lambdaweight``).

    Args:
      scores: ``[..., list_size]`` (unused; the LambdaWeight signature).
      labels: graded relevance of the same shape.
      where: optional item (or list) mask; pairs with a masked item get 0.
      segments: optional segment ids; pairs across segments get 0.
      weights: unused (the signature).

    Returns:
      ``[..., list_size, list_size]`` pair weights (rax flattens them to ``list_size**2``).

    Paper: none (rax's ``labeldiff_lambdaweight``).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.metrics.labeldiff_lambdaweight(jnp.zeros(2), jnp.array([2.0, 0.0])).tolist()
      [[0.0, 2.0], [2.0, 0.0]]
    """
    del weights
    inp = R.list_inputs("lossjax.metrics.labeldiff_lambdaweight", scores, labels, where, None, segments)
    out = jnp.abs(inp.labels[..., :, None] - inp.labels[..., None, :])
    return jnp.where(R.same_segment(inp.segments, inp.valid), out, jnp.zeros((), out.dtype))


def _dcg_lambdaweight(fn, scores, labels, where, segments, weights, topn, normalize, gain, discount, pair_discount):
    _topn(fn, topn)
    inp = R.list_inputs(fn, scores, labels, where, weights, segments)
    g, d = R.gain_fn(fn, gain), R.discount_fn(fn, discount)
    r = R.ranks(inp.scores, inp.valid, inp.segments).astype(inp.dtype)
    gains = g(inp.labels)
    if inp.weights is not None:
        gains = gains * inp.weights
    if normalize:
        ideal = _ideal_dcg(inp, topn, g, d)
        ideal = jnp.where(ideal == 0, jnp.ones((), ideal.dtype), ideal)
        gains = gains / (ideal[..., None] if inp.segments is None else ideal)
    pair = R.same_segment(inp.segments, inp.valid)
    disc = pair_discount(d, r, topn)
    disc = jnp.where(pair, disc, jnp.zeros((), disc.dtype)) * float(inp.scores.shape[-1])
    return disc * jnp.abs(gains[..., :, None] - gains[..., None, :])


def dcg_lambdaweight(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    segments: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    topn: int | None = None,
    normalize: bool = False,
    gain: str | Callable[[Array], Array] = "exponential",
    discount: str | Callable[[Array], Array] = "log2",
) -> Array:
    r"""LambdaRank's DCG lambda weights (rax's ``dcg_lambdaweight``): the metric change of swapping two items.

    .. math:: \lambda_{ij} = L\,|\mathrm{gain}(y_i) - \mathrm{gain}(y_j)|\,
        |\mathrm{discount}(r_i) - \mathrm{discount}(r_j)|

    with ranks ``r`` of the current scores, discounts 0 beyond ``topn``, and the
    list size ``L`` scaling (rax's). ``normalize=True`` divides the gains by the
    ideal DCG: the NDCG lambda weights. ``gain="linear", discount="reciprocal",
    normalize=True`` gives the reciprocal-rank (MRR) lambda weights of
    TF-Ranking's ``create_reciprocal_rank_lambda_weight``. No gradient flows
    through the weights.

    Args:
      scores: ``[..., list_size]`` scores (their ranks).
      labels: graded relevance of the same shape.
      where: optional item (or list) mask.
      segments: optional segment ids.
      weights: optional per-item weights (multiply the gains).
      topn: the cutoff of the metric.
      normalize: divide by the ideal DCG (NDCG).
      gain: ``"exponential"``, ``"linear"`` or a callable.
      discount: ``"log2"``, ``"reciprocal"`` or a callable.

    Returns:
      ``[..., list_size, list_size]`` pair weights (0 on pairs with a masked item or across segments).

    Paper: Burges, Ragno, Le, "Learning to Rank with Nonsmooth Cost Functions", NeurIPS 2006 (no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> w = lossjax.metrics.dcg_lambdaweight(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]))
      >>> w.round(4).tolist()
      [[0.0, 0.7381], [0.7381, 0.0]]
    """

    def pair_discount(d, r, topn):
        disc = d(r)
        if topn is not None:
            disc = jnp.where(r <= topn, disc, jnp.zeros((), disc.dtype))
        return jnp.abs(disc[..., :, None] - disc[..., None, :])

    fn = "lossjax.metrics.dcg_lambdaweight"
    return _dcg_lambdaweight(
        fn, scores, labels, where, segments, weights, topn, normalize, gain, discount, pair_discount
    )


def dcg2_lambdaweight(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    segments: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    topn: int | None = None,
    normalize: bool = False,
    gain: str | Callable[[Array], Array] = "exponential",
    discount: str | Callable[[Array], Array] = "log2",
    light_discount: bool = False,
) -> Array:
    r"""LambdaLoss's DCG v2 lambda weights (rax's ``dcg2_lambdaweight``).

    .. math:: \lambda_{ij} = L\,|\mathrm{gain}(y_i) - \mathrm{gain}(y_j)|\,
        |\mathrm{discount}(|r_i - r_j|) - \mathrm{discount}(|r_i - r_j| + 1)|

    (``light_discount``: :math:`|\mathrm{discount}(|r_i - r_j|)|`); pairs beyond
    ``topn`` are scaled by ``1 / (1 - discount(max(r_i, r_j)))`` (Jagerman et al.).

    Args:
      scores: ``[..., list_size]`` scores (their ranks).
      labels: graded relevance of the same shape.
      where: optional item (or list) mask.
      segments: optional segment ids.
      weights: optional per-item weights (multiply the gains).
      topn: the cutoff of the metric.
      normalize: divide by the ideal DCG.
      gain: ``"exponential"``, ``"linear"`` or a callable.
      discount: ``"log2"``, ``"reciprocal"`` or a callable.
      light_discount: use the lighter discount above.

    Returns:
      ``[..., list_size, list_size]`` pair weights.

    Paper: Wang, Li, Golbandi, Bendersky, Najork, "The LambdaLoss Framework for
    Ranking Metric Optimization", CIKM 2018 (no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> w = lossjax.metrics.dcg2_lambdaweight(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]))
      >>> w.round(4).tolist()
      [[0.0, 0.7381], [0.7381, 0.0]]
    """

    def pair_discount(d, r, topn):
        diff = jnp.abs(r[..., :, None] - r[..., None, :])
        safe = jnp.where(diff != 0, diff, jnp.ones((), diff.dtype))
        if light_discount:
            disc = jnp.abs(d(safe))
        else:
            disc = jnp.abs(d(safe) - d(safe + jnp.ones((), diff.dtype)))
        disc = jnp.where(diff != 0, disc, jnp.zeros((), disc.dtype))
        if topn is not None:
            rmax = jnp.maximum(r[..., :, None], r[..., None, :])
            scale = jnp.ones((), rmax.dtype) / (jnp.ones((), rmax.dtype) - d(rmax))
            disc = disc * jnp.where(rmax > topn, scale, jnp.ones((), rmax.dtype))
        return disc

    fn = "lossjax.metrics.dcg2_lambdaweight"
    return _dcg_lambdaweight(
        fn, scores, labels, where, segments, weights, topn, normalize, gain, discount, pair_discount
    )


#: Lambda weights by name: the values the ranking losses' ``lambdaweight`` hyperparameter accepts.
LAMBDAWEIGHTS = {
    "labeldiff": labeldiff_lambdaweight,
    "dcg": dcg_lambdaweight,
    "ndcg": functools.partial(dcg_lambdaweight, normalize=True),
    "dcg2": dcg2_lambdaweight,
    "ndcg2": functools.partial(dcg2_lambdaweight, normalize=True),
    "mrr": functools.partial(dcg_lambdaweight, normalize=True, gain="linear", discount="reciprocal"),
}


def lambdaweight_fn(fn: str, lambdaweight: Any) -> Callable[..., Array] | None:
    """The lambda-weight function of a ``lambdaweight`` hyperparameter (a name, a callable or None).

    Args:
      fn: the calling function's name (for the error message).
      lambdaweight: None, a name (``"labeldiff"``, ``"dcg"``, ``"ndcg"``,
        ``"dcg2"``, ``"ndcg2"``, ``"mrr"``) or a callable
        ``(scores, labels, *, where, segments, weights) -> [..., L, L]``.

    Returns:
      The callable, or None.

    Example:
      >>> import lossjax
      >>> lossjax.metrics.lambdaweight_fn("f", "ndcg").keywords
      {'normalize': True}
    """
    if lambdaweight is None or callable(lambdaweight):
        return lambdaweight
    C.check_one_of(fn, "lambdaweight", lambdaweight, tuple(LAMBDAWEIGHTS))
    return LAMBDAWEIGHTS[lambdaweight]


# ---------------------------------- transformations ----------------------------------


def _with_defaults(metric_fn: Callable[..., Array], defaults: dict, prefix: str) -> Callable[..., Array]:
    @functools.wraps(metric_fn)
    def loss(scores, labels, **kwargs):
        return -metric_fn(scores, labels, **{**defaults, **kwargs})

    loss.__name__ = f"{prefix}_{getattr(metric_fn, '__name__', 'metric')}"
    return loss


def approx_t12n(metric_fn: Callable[..., Array], temperature: float = 1.0) -> Callable[..., Array]:
    r"""Turns a metric into a differentiable loss: ``-metric`` with sigmoid ranks and cutoffs (rax's ``approx_t12n``).

    .. math:: \hat r_i = 1 + \sum_{j \ne i} \sigma\big((s_j - s_i)/T\big)

    ``approx_t12n(ndcg)`` is ApproxNDCG, ``approx_t12n(mrr)`` ApproxMRR.

    Args:
      metric_fn: a metric taking ``rank_fn`` / ``cutoff_fn`` (any of this module's).
      temperature: ``T`` of the sigmoid (> 0).

    Returns:
      ``loss(scores, labels, **kwargs)``: the negated smooth metric per list
      (keyword arguments override the smooth rank and cutoff functions).

    Paper: Qin, Liu, Li, "A general approximation framework for direct
    optimization of information retrieval measures", Information Retrieval 2010
    (no arXiv id); rax (Jagerman et al., "Rax: Composable Learning-to-Rank using
    JAX", KDD 2022).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> loss = lossjax.metrics.approx_t12n(lossjax.metrics.ndcg)
      >>> float(loss(jnp.array([0.0, 1.0, 3.0, 2.0]), jnp.array([0.0, 0.0, 1.0, 2.0])).round(4))
      -0.7179
    """
    C.check_positive("lossjax.metrics.approx_t12n", "temperature", temperature)

    def step(x):
        return jax.nn.sigmoid(x / jnp.asarray(temperature, x.dtype))

    return _with_defaults(metric_fn, _smooth_kwargs(metric_fn, step, step), "approx")


def bound_t12n(metric_fn: Callable[..., Array]) -> Callable[..., Array]:
    r"""Turns a metric into a loss through hinge bounds on ranks and cutoffs (rax's ``bound_t12n``).

    Ranks use the upper bound ``relu(x + 1)`` of the step, cutoffs the lower
    bound ``1 - relu(1 - x)``: the negated result bounds the metric.

    Args:
      metric_fn: a metric taking ``rank_fn`` / ``cutoff_fn``.

    Returns:
      ``loss(scores, labels, **kwargs)``: the negated bound per list.

    Paper: rax (Jagerman et al., "Rax: Composable Learning-to-Rank using JAX", KDD 2022; no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> loss = lossjax.metrics.bound_t12n(lossjax.metrics.mrr)
      >>> float(loss(jnp.array([0.0, 1.0, 3.0, 2.0]), jnp.array([0.0, 1.0, 0.0, 1.0])).round(4))
      -0.3333
    """

    def upper(x):
        return jax.nn.relu(x + jnp.ones((), x.dtype))

    def lower(x):
        return jnp.ones((), x.dtype) - jax.nn.relu(jnp.ones((), x.dtype) - x)

    return _with_defaults(metric_fn, _smooth_kwargs(metric_fn, upper, lower), "bounded")


def _smooth_kwargs(metric_fn, rank_step, cutoff_step) -> dict:
    params = inspect.signature(metric_fn).parameters
    out = {}
    if "rank_fn" in params:
        out["rank_fn"] = functools.partial(approx_ranks, step_fn=rank_step)
    if "cutoff_fn" in params:
        out["cutoff_fn"] = functools.partial(approx_cutoff, step_fn=cutoff_step)
    return out


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def gumbel_t12n(
    loss_or_metric_fn: Callable[..., Array],
    *,
    num_samples: int = 8,
    beta: float = 1.0,
    smoothing_factor: float | None = None,
) -> Callable[..., Array]:
    r"""Evaluates a loss or metric on Gumbel-perturbed scores, averaged over samples (rax's ``gumbel_t12n``).

    .. math:: \tilde s^{(k)} = s + \beta g^{(k)},\quad g^{(k)} \sim \mathrm{Gumbel}(0, 1),\qquad
        \ell = \frac1K \sum_k f(\tilde s^{(k)}, y)

    With ``smoothing_factor`` the perturbed scores become
    ``log(softmax(s~) + smoothing_factor)`` (TF-Ranking's Gumbel losses with
    1e-20). The returned function needs a PRNG ``key``; when ``f`` takes a
    ``key`` too, the key is split (as rax). The noise is drawn in float32
    whatever the scores' dtype.

    Args:
      loss_or_metric_fn: a lossjax ranking loss or metric (one value per list).
      num_samples: Gumbel samples ``K`` (rax's ``samples``).
      beta: the scale of the noise.
      smoothing_factor: optional smoothing of the log-softmax transform.

    Returns:
      ``f_gumbel(scores, labels, *, key, **kwargs)`` returning one value per list.

    Paper: Bruch, Han, Bendersky, Najork, "A Stochastic Treatment of Learning to
    Rank Scoring Functions", WSDM 2020 (no arXiv id).

    Example:
      >>> import jax, jax.numpy as jnp, lossjax
      >>> f = lossjax.metrics.gumbel_t12n(lossjax.losses.ranking_softmax_loss)
      >>> f(jnp.array([0.0, 1.0, 3.0, 2.0]), jnp.array([0.0, 0.0, 1.0, 2.0]), key=jax.random.key(0)).shape
      ()
    """
    name = "lossjax.metrics.gumbel_t12n"
    C.check_int(name, "num_samples", num_samples, 1, static=True)
    C.check_positive(name, "beta", beta, allow_zero=True)
    if smoothing_factor is not None:
        C.check_positive(name, "smoothing_factor", smoothing_factor, allow_zero=True)
    takes_key = _accepts(loss_or_metric_fn, "key")

    @functools.wraps(loss_or_metric_fn)
    def gumbel_fn(scores, labels, *, key, **kwargs):
        scores = C.check_array(name, "scores", scores, min_ndim=1, dtype="float")
        where = kwargs.get("where")
        valid = None if where is None else _valid(name, scores, where)
        if valid is not None:
            scores = jnp.where(valid, scores, jnp.zeros((), scores.dtype))
            kwargs["where"] = valid

        def rep(a):
            a = jnp.asarray(a)
            return jnp.broadcast_to(a[None], (num_samples, *a.shape))

        labels = rep(labels)
        kwargs = {
            k: rep(v) if isinstance(v, (jax.Array,)) and not _is_key(v) and k != "key" else v for k, v in kwargs.items()
        }
        if takes_key:
            key, kwargs["key"] = jax.random.split(key)
        dtype = C.compute_dtype(scores)
        noise = jax.random.gumbel(key, (num_samples, *scores.shape), dtype=jnp.float32).astype(dtype)
        perturbed = noise * jnp.asarray(beta, dtype) + rep(scores).astype(dtype)
        if smoothing_factor is not None:
            mask = jnp.ones(perturbed.shape, bool) if valid is None else kwargs["where"]
            probs = jnp.where(mask, jnp.exp(R.masked_log_softmax(perturbed, mask)), jnp.zeros((), dtype))
            perturbed = jnp.log(probs + jnp.asarray(smoothing_factor, dtype))
        out = loss_or_metric_fn(perturbed, labels, **kwargs)
        return jnp.mean(out, axis=0)

    gumbel_fn.__name__ = f"gumbel_{getattr(loss_or_metric_fn, '__name__', 'fn')}"
    return gumbel_fn


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def segment_t12n(loss_or_metric_fn: Callable[..., Array]) -> Callable[..., Array]:
    r"""Adds ``segments`` to a per-list loss or metric that lacks them (rax's ``segment_t12n``).

    Each list ``[..., L]`` is expanded to ``[..., L, L]``: row ``i`` is the
    list restricted to the segment whose first item is ``i`` (other rows are
    empty), the function runs on the rows, and the list's value is the mean
    over its non-empty rows (segments). Costs ``O(L^2)``. A function that
    already takes ``segments`` is returned unchanged.

    Args:
      loss_or_metric_fn: ``f(scores, labels, *, where=None, **kwargs)`` returning one value per list.

    Returns:
      ``f_segmented(scores, labels, *, segments=None, **kwargs)``.

    Paper: rax (Jagerman et al., "Rax: Composable Learning-to-Rank using JAX", KDD 2022; no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> f = lossjax.metrics.segment_t12n(lambda s, y, where=None: jnp.sum(jnp.where(where, y, 0.0), -1))
      >>> f(jnp.zeros(4), jnp.array([1.0, 2.0, 3.0, 4.0]), segments=jnp.array([0, 0, 1, 1])).tolist()
      5.0
    """
    if "segments" in inspect.signature(loss_or_metric_fn).parameters:
        return loss_or_metric_fn
    name = "lossjax.metrics.segment_t12n"

    @functools.wraps(loss_or_metric_fn)
    def segmented(scores, labels, *, segments=None, **kwargs):
        if segments is None:
            return loss_or_metric_fn(scores, labels, **kwargs)
        scores = C.check_array(name, "scores", scores, min_ndim=1)
        seg = _segments(name, segments, scores)
        n = scores.shape[-1]

        def rows(a):
            a = jnp.asarray(a)
            return jnp.broadcast_to(a[..., None, :], (*a.shape[:-1], n, n))

        same = seg[..., :, None] == seg[..., None, :]
        mask = same & (jnp.cumsum(same, axis=-2) == 1)
        where = kwargs.pop("where", None)
        if where is not None:
            mask = mask & _valid(name, scores, where)[..., None, :]
        kwargs = {
            k: rows(v) if isinstance(v, jax.Array) and not _is_key(v) and k != "key" else v for k, v in kwargs.items()
        }
        out = loss_or_metric_fn(rows(scores), rows(labels), where=mask, **kwargs)
        return R.masked_mean_last(out, jnp.any(mask, axis=-1))

    return segmented
