"""Learning to rank and retrieval: rax's losses, NeuralNDCG, PSL, AUC, CCL, Rel-MF.

Conventions (rax's): ``scores`` and graded ``labels`` are ``[..., list_size]``
(one query's items on the last axis, lists on the leading axes); ``where``
masks items (``[..., list_size]``) or whole lists (a mask of the leading axes,
as everywhere in lossjax); ``weights`` are per-item weights and ``segments``
integer ids packing several queries into one list (items only interact within
their segment). Every loss returns **one value per list** (``scores.shape[:-1]``,
kind ``per_example``: the list is the example): the value rax gives for that
list alone (``jax.vmap(rax_loss)``, rax's default mean applied within the list:
over its segments for listwise losses, over its valid pairs for pairwise
losses, over its valid items for pointwise losses). Reduce with
``lossjax.masked_mean(loss, where=jnp.any(item_mask, -1))``.

A list with no valid item gives exactly 0 (and 0 gradient, even with NaN
padding). A list with no relevant item (all labels equal) gives 0 for the
softmax, unique-softmax, pairwise (except MSE) and metric-based losses, where
rax's value is 0 too; ListMLE, poly-1, pairwise MSE and the pointwise losses
keep rax's nonzero value there (they also push unlabelled lists).

Gradients at tied scores are finite: with ``d = s_i - s_j = 0`` a pair
contributes ``-1/2`` (logistic), ``-1`` (hinge, away from its kink at
``d = margin`` where the subgradient is 0), ``-1/4`` (soft zero-one),
``-2 (y_i - y_j)`` (MSE) per unit cotangent to ``s_i`` (and the opposite to
``s_j``).

rax options not reproduced: ``reduce_fn`` (per-list outputs instead),
``label_fn`` (``normalize_labels=True`` is ``rax.utils.normalize_probabilities``;
with ``segments`` we normalize within each segment, rax over the whole list),
flattened ``[..., L*L]`` lambda weights; ListMLE with ``segments`` and masked
items placed *before* valid ones of a segment gives the correct segment loss
where rax 0.4.0 drops the segment (its first-item mask reads the unsorted mask).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax import _rank as R
from lossjax import metrics as M
from lossjax._pairwise import l2_normalize
from lossjax.registry import Sample, register

__all__ = [
    "approx_mrr_loss",
    "approx_ndcg_loss",
    "cosine_contrastive_loss",
    "listmle_loss",
    "loss_over_loss_regularizer",
    "mann_whitney_auc_loss",
    "neural_ndcg_loss",
    "pairwise_hinge_loss",
    "pairwise_logistic_loss",
    "pairwise_mse_loss",
    "pairwise_qr_loss",
    "pairwise_soft_zero_one_loss",
    "pairwise_softmax_loss",
    "pointwise_mse_loss",
    "pointwise_sigmoid_loss",
    "poly1_softmax_loss",
    "ranking_softmax_loss",
    "unbiased_implicit_feedback_loss",
    "unique_softmax_loss",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

FAMILY = "ranking"

_RAX = "rax 0.4.0"
_LIST_RUNTIME = ("weights", "segments")

# ------------------------------------ samples ------------------------------------


def _lists(seed: int = 0, b: int = 4, n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``[b, n]`` (distinct, away from ties) and graded labels 0..3 with ties; the last list unlabelled."""
    rng = np.random.default_rng(seed)
    scores = (rng.permutation(b * n).reshape(b, n) * 0.37 - 3.0 + 0.1 * rng.normal(size=(b, n))).astype(np.float32)
    labels = rng.integers(0, 4, size=(b, n)).astype(np.float32)
    labels[0, :2] = 2.0  # a tie in labels
    labels[-1] = 0.0  # a list with no relevant item
    return scores, labels


def _list_sample(*variants: dict, seed: int = 0, **kw) -> Sample:
    scores, labels = _lists(seed)
    return Sample(args=(scores, labels), diff_argnums=(0,), variants=tuple(variants), **kw)


def _pair_sample() -> Sample:
    return _list_sample({"lambdaweight": "ndcg"}, {"lambdaweight": "mrr"})


def _embeddings_sample(seed: int = 0, b: int = 4, k: int = 3, d: int = 4, *variants: dict) -> Sample:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(b, d)).astype(np.float32)
    p = (a + 0.5 * rng.normal(size=(b, d))).astype(np.float32)
    neg = rng.normal(size=(b, k, d)).astype(np.float32)
    return Sample(args=(a, p, neg), diff_argnums=(0, 1, 2), variants=tuple(variants))


# -------------------------------------- helpers --------------------------------------


def _segment_total(x: Array, inp: R.ListInputs) -> Array:
    """Per list (no segments) or per item = its segment's total: the sum of ``x`` over valid items."""
    if inp.segments is None:
        return jnp.sum(jnp.where(inp.valid, x, jnp.zeros((), x.dtype)), axis=-1)
    return R.segment_sum(x, inp.segments, inp.valid)


def _normalized(p: Array, inp: R.ListInputs) -> Array:
    """rax's ``normalize_probabilities`` over the valid items of each list (segment); all zero -> uniform."""
    total = _segment_total(p, inp)
    count = _segment_total(jnp.ones_like(p), inp)
    if inp.segments is None:
        total, count = total[..., None], count[..., None]
    count = jnp.where(count == 0, jnp.asarray(p.shape[-1], p.dtype), count)
    return jnp.where(total != 0, p / jnp.where(total != 0, total, jnp.ones((), p.dtype)), jnp.ones_like(p) / count)


def _log_softmax(inp: R.ListInputs) -> Array:
    """Log-softmax of the scores over the valid items of each list (segment); 0 at masked items."""
    if inp.segments is None:
        return R.masked_log_softmax(inp.scores, inp.valid)
    pair = R.same_segment(inp.segments, inp.valid)
    s = jnp.broadcast_to(inp.scores[..., None, :], pair.shape)
    lse = R.masked_logsumexp(s, pair, axis=-1)
    return jnp.where(inp.valid, inp.scores - lse, jnp.zeros((), inp.dtype))


def _listwise_inputs(fn, scores, labels, where, weights, segments) -> tuple[R.ListInputs, Array]:
    inp = R.list_inputs(fn, scores, labels, where, weights, segments)
    targets = inp.labels if inp.weights is None else inp.labels * inp.weights
    return inp, targets


# ------------------------------------ listwise ------------------------------------


@register(
    "ranking_softmax_loss",
    aliases=("listnet_loss", "softmax_ranking_loss"),
    family=FAMILY,
    kind="per_example",
    formula="-sum_i w_i y_i log softmax(s)_i over the valid items of a list",
    paper="Learning to Rank: From Pairwise Approach to Listwise Approach (ListNet, 2007, no arXiv id); "
    "An Analysis of the Softmax Cross Entropy Loss for Learning-to-Rank with Binary Relevance (2019, no arXiv id)",
    reference=f"{_RAX} rax.softmax_loss; optax.losses.ranking_softmax_loss",
    sample=lambda: _list_sample({"normalize_labels": True}),
    runtime=_LIST_RUNTIME,
)
def ranking_softmax_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    normalize_labels: bool = False,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    segments: ArrayLike | None = None,
) -> Array:
    r"""Listwise softmax cross-entropy (ListNet): the labels against the softmax of the scores, per list.

    .. math:: \ell(s, y) = -\sum_i w_i y_i \log \frac{e^{s_i}}{\sum_j e^{s_j}}

    rax's ``softmax_loss`` and optax's ``ranking_softmax_loss``: the labels
    are used as they are (``normalize_labels=True`` divides them by their sum,
    rax's ``label_fn=rax.utils.normalize_probabilities``; all-zero labels then
    become uniform).

    Args:
      scores: ``[..., list_size]`` item scores.
      labels: graded relevance of the same shape.
      normalize_labels: turn the (weighted) labels into a distribution per list (segment).
      where: optional item mask ``[..., list_size]`` or list mask of the leading axes.
      weights: optional per-item weights (multiply the labels).
      segments: optional segment ids (queries packed in one list); the list's value is the mean over segments.

    Returns:
      The loss per list ``[...]`` (0 for a list with no valid or no relevant item).

    Paper: Cao, Qin, Liu, Tsai, Li, "Learning to Rank: From Pairwise Approach to
    Listwise Approach", ICML 2007 (no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> float(lossjax.losses.ranking_softmax_loss(jnp.array([2.0, 1.0, 3.0]), jnp.array([1.0, 0.0, 0.0])).round(4))
      1.4076
    """
    fn = "ranking_softmax_loss"
    inp, targets = _listwise_inputs(fn, scores, labels, where, weights, segments)
    if normalize_labels:
        targets = _normalized(targets, inp)
    ce = _segment_total(-targets * _log_softmax(inp), inp)
    return R.per_list(ce, inp.valid, inp.segments)


@register(
    "poly1_softmax_loss",
    family=FAMILY,
    kind="per_example",
    formula="softmax_loss + poly_coefficient (1 - sum_i p_i softmax(s)_i), p = normalized labels",
    paper="PolyLoss: A Polynomial Expansion Perspective of Classification Loss Functions (2022, arXiv:2204.12511)",
    reference=f"{_RAX} rax.poly1_softmax_loss",
    sample=lambda: _list_sample({"poly_coefficient": -0.5}),
    runtime=_LIST_RUNTIME,
)
def poly1_softmax_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    poly_coefficient: float = 1.0,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    segments: ArrayLike | None = None,
) -> Array:
    r"""Poly-1 listwise softmax loss: the softmax loss plus ``poly_coefficient`` times ``1 - p_t`` (rax's).

    .. math:: \ell(s, y) = \mathrm{softmax}(s, y) + \epsilon_1\,(1 - p_t),\qquad
        p_t = \sum_i \frac{w_i y_i}{\sum_j w_j y_j}\,\frac{e^{s_i}}{\sum_j e^{s_j}}

    ``poly_coefficient`` is the paper's ``epsilon_1`` (rax's ``epsilon``; in
    lossjax ``epsilon`` only names a numerical guard). A list with no
    relevant item has uniform targets there, so its poly term is
    ``epsilon_1 (1 - mean softmax)``, as in rax.

    Args:
      scores: ``[..., list_size]`` item scores.
      labels: graded relevance of the same shape.
      poly_coefficient: ``epsilon_1`` (rax's default 1.0).
      where: optional item or list mask.
      weights: optional per-item weights.
      segments: optional segment ids.

    Returns:
      The loss per list ``[...]``.

    Paper: Leng et al., "PolyLoss: A Polynomial Expansion Perspective of
    Classification Loss Functions", ICLR 2022, arXiv:2204.12511.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> s, y = jnp.array([2.0, 1.0, 3.0]), jnp.array([1.0, 0.0, 0.0])
      >>> float(lossjax.losses.poly1_softmax_loss(s, y).round(4))
      2.1629
    """
    fn = "poly1_softmax_loss"
    if not isinstance(poly_coefficient, jax.core.Tracer):
        C.check_positive(fn, "poly_coefficient", abs(float(poly_coefficient)), allow_zero=True)
    inp, targets = _listwise_inputs(fn, scores, labels, where, weights, segments)
    lsm = _log_softmax(inp)
    ce = _segment_total(-targets * lsm, inp)
    probs = jnp.where(inp.valid, jnp.exp(lsm), jnp.zeros((), inp.dtype))
    pt = _segment_total(_normalized(targets, inp) * probs, inp)
    loss = ce + jnp.asarray(poly_coefficient, inp.dtype) * (jnp.ones((), inp.dtype) - pt)
    return R.per_list(loss, inp.valid, inp.segments)


@register(
    "listmle_loss",
    aliases=("list_mle_loss",),
    family=FAMILY,
    kind="per_example",
    formula="-sum_i [s_pi(i) - log sum_{k >= i} exp(s_pi(k))], pi sorts the labels descending",
    paper="Listwise Approach to Learning to Rank: Theory and Algorithm (ListMLE, 2008, no arXiv id)",
    reference=f"{_RAX} rax.listmle_loss",
    sample=_list_sample,
    runtime=("segments", "key"),
)
def listmle_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    key: ArrayLike | None = None,
    where: ArrayLike | None = None,
    segments: ArrayLike | None = None,
) -> Array:
    r"""ListMLE: the Plackett-Luce negative log-likelihood of the label order under the scores (rax's).

    .. math:: \ell(s, y) = -\sum_i \Big(s_{\pi(i)} - \log \sum_{k \ge i} e^{s_{\pi(k)}}\Big)

    where ``pi`` sorts the items by descending label. Tied labels keep their
    order of appearance, or are shuffled with a PRNG ``key`` (rax's
    ``key``). The suffix log-sum-exp is a stable associative scan.

    Args:
      scores: ``[..., list_size]`` item scores.
      labels: graded relevance of the same shape.
      key: optional PRNG key for random tie-breaking of equal labels.
      where: optional item or list mask.
      segments: optional segment ids (the order is taken within each segment).

    Returns:
      The loss per list ``[...]`` (0 for a list with no valid item).

    Paper: Xia, Liu, Wang, Zhang, Li, "Listwise Approach to Learning to Rank:
    Theory and Algorithm", ICML 2008 (no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> s, y = jnp.array([0.0, 1.0, 3.0, 2.0]), jnp.array([0.0, 0.0, 1.0, 2.0])
      >>> float(lossjax.losses.listmle_loss(s, y).round(4))
      2.9233
    """
    fn = "listmle_loss"
    inp = R.list_inputs(fn, scores, labels, where, None, segments)
    if inp.segments is None:
        _, s_sorted, v_sorted = R.sort_order(inp.labels, inp.valid, key=key, operands=(inp.scores, inp.valid))
        lse = R.logcumsumexp(s_sorted, v_sorted, reverse=True)
        loss = -jnp.sum(jnp.where(v_sorted, s_sorted - lse, jnp.zeros((), inp.dtype)), axis=-1)
        return R.per_list(loss, inp.valid, None)
    perm = R.sort_order(inp.labels, inp.valid, key=key)[0]
    order = jnp.argsort(perm, axis=-1)  # every item's position in the label order
    pair = R.same_segment(inp.segments, inp.valid) & (order[..., None, :] >= order[..., :, None])
    lse = R.masked_logsumexp(jnp.broadcast_to(inp.scores[..., None, :], pair.shape), pair, axis=-1)
    loss = R.segment_sum(-(inp.scores - lse), inp.segments, inp.valid)
    return R.per_list(loss, inp.valid, inp.segments)


@register(
    "unique_softmax_loss",
    family=FAMILY,
    kind="per_example",
    formula="-sum_i gain(y_i) w_i log[exp(s_i) / (exp(s_i) + sum_{j: y_j < y_i} exp(s_j))]",
    paper="Listwise Learning to Rank by Exploring Unique Ratings (2020, arXiv:2001.01828)",
    reference=f"{_RAX} rax.unique_softmax_loss",
    sample=lambda: _list_sample({"gain": "linear"}, {"gain": None}),
    runtime=_LIST_RUNTIME,
)
def unique_softmax_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    gain: str | Callable[[Array], Array] | None = "exponential",
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    segments: ArrayLike | None = None,
) -> Array:
    r"""Unique softmax (Zhu and Klabjan): each item against itself and the items labelled below it (rax's).

    .. math:: \ell(s, y) = -\sum_i \mathrm{gain}(y_i)\,w_i\,
        \log \frac{e^{s_i}}{e^{s_i} + \sum_{j: y_j < y_i} e^{s_j}}

    Args:
      scores: ``[..., list_size]`` item scores.
      labels: graded relevance of the same shape.
      gain: ``"exponential"`` (``2^y - 1``, rax's default), ``"linear"``, a callable, or None (no gain).
      where: optional item or list mask.
      weights: optional per-item weights.
      segments: optional segment ids.

    Returns:
      The loss per list ``[...]``.

    Paper: Zhu, Klabjan, "Listwise Learning to Rank by Exploring Unique
    Ratings", WSDM 2020, arXiv:2001.01828.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> s, y = jnp.array([2.0, 1.0, 3.0]), jnp.array([1.0, 0.0, 0.0])
      >>> float(lossjax.losses.unique_softmax_loss(s, y).round(4))
      1.4076
    """
    fn = "unique_softmax_loss"
    g = R.gain_fn(fn, gain)
    inp = R.list_inputs(fn, scores, labels, where, weights, segments)
    below = inp.labels[..., None, :] < inp.labels[..., :, None]  # [.., i, j]: y_j < y_i
    diag = R.iota(below.shape, -2) == R.iota(below.shape, -1)
    pair = R.same_segment(inp.segments, inp.valid) & (below | diag)
    lse = R.masked_logsumexp(jnp.broadcast_to(inp.scores[..., None, :], pair.shape), pair, axis=-1)
    lsm = inp.scores - lse
    if inp.weights is not None:
        lsm = lsm * inp.weights
    if g is not None:
        lsm = lsm * g(inp.labels)
    return R.per_list(_segment_total(-lsm, inp), inp.valid, inp.segments)


# ------------------------------------ pairwise ------------------------------------


def _pairwise(
    fn: str,
    scores,
    labels,
    where,
    weights,
    segments,
    lambdaweight,
    pair_loss: Callable[[Array, Array], Array],
    *,
    all_pairs: bool = False,
) -> Array:
    """rax's ``pairwise_loss`` for one list: the mean over valid pairs of ``w_i lambda_ij l(s_i - s_j, y_i - y_j)``."""
    lw = M.lambdaweight_fn(fn, lambdaweight)
    inp = R.list_inputs(fn, scores, labels, where, weights, segments)
    if lw is None:
        return _pair_mean(pair_loss, all_pairs, inp.scores, inp.labels, inp.weights, inp.valid, inp.segments)
    ds = inp.scores[..., :, None] - inp.scores[..., None, :]
    dy = inp.labels[..., :, None] - inp.labels[..., None, :]
    losses = pair_loss(ds, dy)
    valid = R.same_segment(inp.segments, inp.valid)
    if not all_pairs:
        valid = valid & (dy > 0)
    if inp.weights is not None:
        losses = losses * inp.weights[..., :, None]
    if lw is not None:
        lam = lw(inp.scores, inp.labels, where=inp.valid, segments=inp.segments, weights=inp.weights)
        losses = losses * jnp.asarray(lam, inp.dtype)
    zero = jnp.zeros((), inp.dtype)
    total = jnp.sum(jnp.where(valid, losses, zero), axis=(-2, -1))
    count = jnp.sum(valid, axis=(-2, -1)).astype(inp.dtype)
    return total / jnp.maximum(count, jnp.ones((), inp.dtype))


def _pair_grid(s, y, valid, segments, all_pairs, transpose=False):
    """``(ds, dy, valid pairs)`` as ``[.., i, j]`` broadcasts of per-item arrays (``transpose``: ``[.., j, i]``)."""
    a, b = (-1, -2) if transpose else (-2, -1)  # the axes i and j live on

    def at(x, axis):
        return jnp.expand_dims(x, axis=b if axis == a else a)

    ds = at(s, a) - at(s, b)
    dy = at(y, a) - at(y, b)
    v = at(valid, a) & at(valid, b)
    if segments is not None:
        v = v & (at(segments, a) == at(segments, b))
    if not all_pairs:
        v = v & (dy > 0)
    return ds, dy, v


def _pair_total(pair_loss, all_pairs, s, y, w, valid, segments):
    ds, dy, v = _pair_grid(s, y, valid, segments, all_pairs)
    losses = pair_loss(ds, dy)
    if w is not None:
        losses = losses * w[..., :, None]
    zero = jnp.zeros((), s.dtype)
    total = jnp.sum(jnp.where(v, losses, zero), axis=(-2, -1))
    count = jnp.maximum(jnp.sum(v, axis=(-2, -1)).astype(s.dtype), jnp.ones((), s.dtype))
    return total / count, count


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _pair_mean(pair_loss, all_pairs, s, y, w, valid, segments):
    """The mean pair loss of every list without materializing ``[.., L, L]`` (forward or backward).

    The backward pass recomputes the pair terms inside each reduction (row sums
    and, with the grid transposed, column sums), so XLA fuses every ``L x L``
    expression into a reduction: the gradient costs O(L^2) compute and O(L)
    memory per list, as the forward. Gradients flow to ``s``, ``y`` and ``w``.
    """
    return _pair_total(pair_loss, all_pairs, s, y, w, valid, segments)[0]


def _pair_mean_fwd(pair_loss, all_pairs, s, y, w, valid, segments):
    value, count = _pair_total(pair_loss, all_pairs, s, y, w, valid, segments)
    return value, (s, y, w, valid, segments, count)


def _pair_mean_bwd(pair_loss, all_pairs, res, ct):
    s, y, w, valid, segments, count = res
    scale = ct / count
    zero = jnp.zeros((), s.dtype)

    def row_sums(transpose, which):
        ds, dy, v = _pair_grid(s, y, valid, segments, all_pairs, transpose)
        if which == "loss":
            term = pair_loss(ds, dy)
        elif which == "s":
            term = jax.jvp(lambda d: pair_loss(d, dy), (ds,), (jnp.ones_like(ds),))[1]
        else:
            term = jax.jvp(lambda e: pair_loss(ds, e), (dy,), (jnp.ones_like(dy),))[1]
        if w is not None and which != "loss":
            term = term * (w[..., None, :] if transpose else w[..., :, None])
        return jnp.sum(jnp.where(v, term, zero), axis=-1) * scale[..., None]

    g_s = row_sums(False, "s") - row_sums(True, "s")
    g_y = row_sums(False, "y") - row_sums(True, "y")
    g_w = None if w is None else row_sums(False, "loss")
    return g_s, g_y, g_w, None, None


_pair_mean.defvjp(_pair_mean_fwd, _pair_mean_bwd)


_PAIR_DOC = """
    Pairs ``(i, j)`` of valid items of one segment; the list's value is the
    mean over its valid pairs (rax's mean for one list; 0 without a pair).
    ``weights`` scale the pair losses by ``w_i``; ``lambdaweight`` (a name of
    ``lossjax.metrics.LAMBDAWEIGHTS``: ``"labeldiff"``, ``"dcg"``, ``"ndcg"``,
    ``"dcg2"``, ``"ndcg2"``, ``"mrr"``, or a callable returning ``[..., L, L]``)
    scales them by LambdaRank-style weights (no gradient flows through them).
"""


@register(
    "pairwise_logistic_loss",
    aliases=("ranknet_loss",),
    family=FAMILY,
    kind="per_example",
    formula="mean_{y_i > y_j} lambda_ij w_i log(1 + exp(-(s_i - s_j)))",
    paper="Learning to Rank using Gradient Descent (RankNet, 2005, no arXiv id)",
    reference=f"{_RAX} rax.pairwise_logistic_loss (+ rax.*_lambdaweight)",
    sample=_pair_sample,
    runtime=_LIST_RUNTIME,
)
def pairwise_logistic_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    lambdaweight: str | Callable[..., Array] | None = None,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    segments: ArrayLike | None = None,
) -> Array:
    r"""Pairwise logistic loss (RankNet; with ``lambdaweight="ndcg"`` LambdaRank-style), rax's.

    .. math:: \ell(s, y) = \operatorname*{mean}_{y_i > y_j} \lambda_{ij}\,w_i\,\log\big(1 + e^{-(s_i - s_j)}\big)
    {pair_doc}
    At tied scores a pair's gradient is ``-1/2`` to ``s_i`` (finite).

    Args:
      scores: ``[..., list_size]`` item scores.
      labels: graded relevance of the same shape.
      lambdaweight: None, a lambda-weight name or a callable.
      where: optional item or list mask.
      weights: optional per-item weights.
      segments: optional segment ids.

    Returns:
      The loss per list ``[...]``.

    Paper: Burges et al., "Learning to Rank using Gradient Descent", ICML 2005
    (no arXiv id); lambda weights: Burges, Ragno, Le, NeurIPS 2006.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> s, y = jnp.array([1.2, 0.4, 1.9]), jnp.array([1.0, 2.0, 0.0])
      >>> float(lossjax.losses.pairwise_logistic_loss(s, y, lambdaweight="labeldiff").round(4))
      1.8924
    """

    def pair(ds, dy):
        return jax.nn.softplus(-ds)

    return _pairwise("pairwise_logistic_loss", scores, labels, where, weights, segments, lambdaweight, pair)


@register(
    "pairwise_hinge_loss",
    family=FAMILY,
    kind="per_example",
    formula="mean_{y_i > y_j} lambda_ij w_i max(0, margin - (s_i - s_j))",
    paper="Optimizing Search Engines using Clickthrough Data (RankSVM, 2002, no arXiv id)",
    reference=f"{_RAX} rax.pairwise_hinge_loss (+ rax.*_lambdaweight)",
    sample=lambda: _list_sample({"lambdaweight": "dcg2", "margin": 0.5}),
    runtime=_LIST_RUNTIME,
)
def pairwise_hinge_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float = 1.0,
    lambdaweight: str | Callable[..., Array] | None = None,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    segments: ArrayLike | None = None,
) -> Array:
    r"""Pairwise hinge loss (RankSVM), rax's ``pairwise_hinge_loss`` (its margin is 1).

    .. math:: \ell(s, y) = \operatorname*{mean}_{y_i > y_j} \lambda_{ij}\,w_i\,\max\big(0, m - (s_i - s_j)\big)
    {pair_doc}
    At tied scores a pair's gradient is ``-1`` to ``s_i``; at the kink
    ``s_i - s_j = margin`` the subgradient is 0.

    Args:
      scores: ``[..., list_size]`` item scores.
      labels: graded relevance of the same shape.
      margin: ``m`` (1.0, rax's and TF-Ranking's).
      lambdaweight: None, a lambda-weight name or a callable.
      where: optional item or list mask.
      weights: optional per-item weights.
      segments: optional segment ids.

    Returns:
      The loss per list ``[...]``.

    Paper: Joachims, "Optimizing Search Engines using Clickthrough Data", KDD 2002 (no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> s, y = jnp.array([2.0, 1.0, 0.0]), jnp.array([1.0, 0.0, 0.0])
      >>> float(lossjax.losses.pairwise_hinge_loss(s, y, where=jnp.array([True, True, False])))
      0.0
    """
    fn = "pairwise_hinge_loss"
    C.check_positive(fn, "margin", margin, allow_zero=True)

    def pair(ds, dy):
        return jax.nn.relu(jnp.asarray(margin, ds.dtype) - ds)

    return _pairwise(fn, scores, labels, where, weights, segments, lambdaweight, pair)


@register(
    "pairwise_soft_zero_one_loss",
    family=FAMILY,
    kind="per_example",
    formula="mean_{y_i > y_j} lambda_ij w_i sigmoid(-(s_i - s_j))",
    paper="Ranking Measures and Loss Functions in Learning to Rank (2009, no arXiv id)",
    reference=f"{_RAX} rax.pairwise_soft_zero_one_loss (+ rax.*_lambdaweight)",
    sample=lambda: _list_sample({"lambdaweight": "dcg"}),
    runtime=_LIST_RUNTIME,
)
def pairwise_soft_zero_one_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    lambdaweight: str | Callable[..., Array] | None = None,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    segments: ArrayLike | None = None,
) -> Array:
    r"""Pairwise soft zero-one loss: a sigmoid relaxation of the misordered-pair count (rax's).

    .. math:: \ell(s, y) = \operatorname*{mean}_{y_i > y_j} \lambda_{ij}\,w_i\,\sigma\big(-(s_i - s_j)\big)
    {pair_doc}
    At tied scores a pair's gradient is ``-1/4`` to ``s_i``.

    Args:
      scores: ``[..., list_size]`` item scores.
      labels: graded relevance of the same shape.
      lambdaweight: None, a lambda-weight name or a callable.
      where: optional item or list mask.
      weights: optional per-item weights.
      segments: optional segment ids.

    Returns:
      The loss per list ``[...]``.

    Paper: Chen, Liu, Lan, Ma, Li, "Ranking Measures and Loss Functions in
    Learning to Rank", NeurIPS 2009 (no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> float(lossjax.losses.pairwise_soft_zero_one_loss(jnp.zeros(2), jnp.array([1.0, 0.0])))
      0.5
    """

    def pair(ds, dy):
        return jax.nn.sigmoid(-ds)

    return _pairwise("pairwise_soft_zero_one_loss", scores, labels, where, weights, segments, lambdaweight, pair)


@register(
    "pairwise_mse_loss",
    family=FAMILY,
    kind="per_example",
    formula="mean_{all valid pairs} lambda_ij w_i ((y_i - y_j) - (s_i - s_j))^2",
    paper="Ranking Measures and Loss Functions in Learning to Rank (2009, no arXiv id)",
    reference=f"{_RAX} rax.pairwise_mse_loss (+ rax.*_lambdaweight)",
    sample=lambda: _list_sample({"lambdaweight": "labeldiff"}),
    runtime=_LIST_RUNTIME,
)
def pairwise_mse_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    lambdaweight: str | Callable[..., Array] | None = None,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    segments: ArrayLike | None = None,
) -> Array:
    r"""Pairwise mean squared error between score and label differences, over all valid pairs (rax's).

    .. math:: \ell(s, y) = \operatorname*{mean}_{i, j} \lambda_{ij}\,w_i\,\big((y_i - y_j) - (s_i - s_j)\big)^2

    Every pair of valid items of a segment counts, ``i = j`` included (as rax),
    so lists with equal labels still pull their scores together.
    {pair_doc}

    Args:
      scores: ``[..., list_size]`` item scores.
      labels: graded relevance of the same shape.
      lambdaweight: None, a lambda-weight name or a callable.
      where: optional item or list mask.
      weights: optional per-item weights.
      segments: optional segment ids.

    Returns:
      The loss per list ``[...]``.

    Paper: Chen, Liu, Lan, Ma, Li, "Ranking Measures and Loss Functions in
    Learning to Rank", NeurIPS 2009 (no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> float(lossjax.losses.pairwise_mse_loss(jnp.zeros(2), jnp.array([1.0, 0.0])))
      0.5
    """

    def pair(ds, dy):
        return jnp.square(ds - dy)

    return _pairwise("pairwise_mse_loss", scores, labels, where, weights, segments, lambdaweight, pair, all_pairs=True)


@register(
    "pairwise_qr_loss",
    family=FAMILY,
    kind="per_example",
    formula="mean_{y_i > y_j} lambda_ij w_i [q relu(dy - ds) + (1 - q) relu(ds - dy)]^(2 if squared)",
    paper="Scale Calibration of Deep Ranking Models (2022, no arXiv id)",
    reference=f"{_RAX} rax.pairwise_qr_loss (its tau is `quantile`)",
    sample=lambda: _list_sample({"quantile": 0.8, "squared": True, "lambdaweight": "ndcg2"}),
    runtime=_LIST_RUNTIME,
)
def pairwise_qr_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    quantile: float = 0.5,
    squared: bool = False,
    lambdaweight: str | Callable[..., Array] | None = None,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    segments: ArrayLike | None = None,
) -> Array:
    r"""Pairwise quantile regression loss on score differences against label differences (rax's).

    .. math:: \ell(s, y) = \operatorname*{mean}_{y_i > y_j} \lambda_{ij}\,w_i\,
        \big[q\,(\Delta y - \Delta s)_+ + (1 - q)\,(\Delta s - \Delta y)_+\big]

    with ``Delta s = s_i - s_j``, ``Delta y = y_i - y_j``; ``squared`` squares
    each hinge. ``quantile`` is rax's ``tau`` (in lossjax ``tau`` names the
    comp-sum index only).
    {pair_doc}

    Args:
      scores: ``[..., list_size]`` item scores.
      labels: graded relevance of the same shape.
      quantile: ``q`` in ``(0, 1]`` (0.5: median regression).
      squared: square each hinge.
      lambdaweight: None, a lambda-weight name or a callable.
      where: optional item or list mask.
      weights: optional per-item weights.
      segments: optional segment ids.

    Returns:
      The loss per list ``[...]``.

    Paper: Yan, Qin, Zhuang, Wang, Bendersky, Najork, "Scale Calibration of Deep
    Ranking Models", KDD 2022 (no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> float(lossjax.losses.pairwise_qr_loss(jnp.zeros(2), jnp.array([1.0, 0.0])))
      0.5
    """
    fn = "pairwise_qr_loss"
    C.check_in_range(fn, "quantile", quantile, 0.0, 1.0, low_inclusive=False)

    def pair(ds, dy):
        over, under = jax.nn.relu(dy - ds), jax.nn.relu(ds - dy)
        if squared:
            over, under = jnp.square(over), jnp.square(under)
        q = jnp.asarray(quantile, ds.dtype)
        return q * over + (jnp.ones((), ds.dtype) - q) * under

    return _pairwise(fn, scores, labels, where, weights, segments, lambdaweight, pair)


for _f in (
    pairwise_logistic_loss,
    pairwise_hinge_loss,
    pairwise_soft_zero_one_loss,
    pairwise_mse_loss,
    pairwise_qr_loss,
):
    _f.__doc__ = _f.__doc__.replace("{pair_doc}", _PAIR_DOC)


# ------------------------------------ pointwise ------------------------------------


def _pointwise(fn, scores, labels, where, weights, loss_fn) -> Array:
    inp = R.list_inputs(fn, scores, labels, where, weights, None)
    loss = loss_fn(inp.scores, inp.labels)
    if inp.weights is not None:
        loss = loss * inp.weights
    return R.masked_mean_last(loss, inp.valid)


@register(
    "pointwise_sigmoid_loss",
    family=FAMILY,
    kind="per_example",
    formula="mean_i w_i [-y_i log sigmoid(s_i) - (1 - y_i) log sigmoid(-s_i)], y clipped to [0, 1]",
    paper="none (sigmoid cross-entropy per item; rax's pointwise_sigmoid_loss)",
    reference=f"{_RAX} rax.pointwise_sigmoid_loss",
    sample=_list_sample,
    runtime=_LIST_RUNTIME,
)
def pointwise_sigmoid_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    segments: ArrayLike | None = None,
) -> Array:
    r"""Pointwise sigmoid cross-entropy of each item's score against its label clipped to ``[0, 1]`` (rax's).

    .. math:: \ell(s, y) = \operatorname*{mean}_i w_i\big[\max(s_i, 0) - s_i y_i + \log(1 + e^{-|s_i|})\big]

    The list's value is the mean over its valid items (rax's mean for one
    list). ``segments`` are accepted and ignored (a pointwise loss).

    Args:
      scores: ``[..., list_size]`` item scores (logits).
      labels: relevance; clipped to ``[0, 1]``.
      where: optional item or list mask.
      weights: optional per-item weights.
      segments: ignored.

    Returns:
      The loss per list ``[...]``.

    Paper: none (the sigmoid cross-entropy; rax's ``pointwise_sigmoid_loss``).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> float(lossjax.losses.pointwise_sigmoid_loss(jnp.zeros(2), jnp.array([1.0, 0.0])).round(4))
      0.6931
    """
    del segments

    def loss_fn(s, y):
        y = jnp.clip(y, 0.0, 1.0)
        return jax.nn.relu(s) - s * y + jnp.log1p(jnp.exp(-jnp.abs(s)))

    return _pointwise("pointwise_sigmoid_loss", scores, labels, where, weights, loss_fn)


@register(
    "pointwise_mse_loss",
    family=FAMILY,
    kind="per_example",
    formula="mean_i w_i (y_i - s_i)^2",
    paper="none (squared error per item; rax's pointwise_mse_loss)",
    reference=f"{_RAX} rax.pointwise_mse_loss",
    sample=_list_sample,
    runtime=_LIST_RUNTIME,
)
def pointwise_mse_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    segments: ArrayLike | None = None,
) -> Array:
    r"""Pointwise squared error between each item's score and label (rax's), averaged over the list.

    .. math:: \ell(s, y) = \operatorname*{mean}_i w_i (y_i - s_i)^2

    Args:
      scores: ``[..., list_size]`` item scores.
      labels: relevance of the same shape.
      where: optional item or list mask.
      weights: optional per-item weights.
      segments: ignored (a pointwise loss).

    Returns:
      The loss per list ``[...]``.

    Paper: none (squared error; rax's ``pointwise_mse_loss``).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> float(lossjax.losses.pointwise_mse_loss(jnp.zeros(2), jnp.array([1.0, 0.0])))
      0.5
    """
    del segments
    return _pointwise("pointwise_mse_loss", scores, labels, where, weights, lambda s, y: jnp.square(s - y))


# ---------------------------------- metric-based ----------------------------------


def _check_list_call(fn, scores, labels, where, weights, segments, topn) -> None:
    """The argument checks under the loss's own name (the metric called next checks them again, for free)."""
    R.list_inputs(fn, scores, labels, where, weights, segments)
    if topn is not None:
        C.check_int(fn, "topn", topn, 1, static=True)


@register(
    "approx_ndcg_loss",
    family=FAMILY,
    kind="per_example",
    formula="-NDCG@topn with ranks 1 + sum_{j != i} sigmoid((s_j - s_i) / temperature)",
    paper="A general approximation framework for direct optimization of information retrieval measures "
    "(2010, no arXiv id)",
    reference=f"{_RAX} rax.approx_t12n(rax.ndcg_metric)",
    # rax holds the top-n cut point constant in the backward pass (a surrogate gradient by design): the
    # gradients are checked against rax's autodiff by the `value` property, not by finite differences.
    sample=lambda: _list_sample(
        {"temperature": 0.5, "topn": 3}, {"gain": "linear", "discount": "reciprocal"}, surrogate_grad=True
    ),
    runtime=_LIST_RUNTIME,
)
def approx_ndcg_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    temperature: float = 1.0,
    topn: int | None = None,
    gain: str | Callable[[Array], Array] = "exponential",
    discount: str | Callable[[Array], Array] = "log2",
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    segments: ArrayLike | None = None,
) -> Array:
    r"""ApproxNDCG: minus NDCG computed with sigmoid-smoothed ranks and cutoffs (rax's ``approx_t12n(ndcg_metric)``).

    .. math:: \ell = -\frac{\sum_i \mathrm{gain}(y_i)\,\mathrm{discount}(\hat r_i)\,\hat c_i}{\mathrm{IDCG}},\qquad
        \hat r_i = 1 + \sum_{j \ne i} \sigma\Big(\frac{s_j - s_i}{T}\Big)

    ``hat c`` is the smooth top-``topn`` indicator (1 without ``topn``); the
    ideal DCG uses exact ranks.

    Args:
      scores: ``[..., list_size]`` item scores.
      labels: graded relevance of the same shape.
      temperature: ``T`` of the sigmoid (> 0).
      topn: the NDCG cutoff (None: the whole list).
      gain: ``"exponential"`` (``2^y - 1``), ``"linear"`` or a callable.
      discount: ``"log2"``, ``"reciprocal"`` or a callable.
      where: optional item or list mask.
      weights: optional per-item weights (multiply the gains).
      segments: optional segment ids.

    Returns:
      The loss per list ``[...]`` in ``[-1, 0]`` (0 without a relevant item).

    Paper: Qin, Liu, Li, "A general approximation framework for direct
    optimization of information retrieval measures", Information Retrieval 2010
    (no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> s, y = jnp.array([0.0, 1.0, 3.0, 2.0]), jnp.array([0.0, 0.0, 1.0, 2.0])
      >>> float(lossjax.losses.approx_ndcg_loss(s, y).round(4))
      -0.7179
    """
    fn = "approx_ndcg_loss"
    C.check_positive(fn, "temperature", temperature)
    _check_list_call(fn, scores, labels, where, weights, segments, topn)
    loss = M.approx_t12n(M.ndcg, temperature)
    return loss(
        scores, labels, where=where, weights=weights, segments=segments, topn=topn, gain=gain, discount=discount
    )


@register(
    "approx_mrr_loss",
    family=FAMILY,
    kind="per_example",
    formula="-max_i [y_i >= 1] c_i / (1 + sum_{j != i} sigmoid((s_j - s_i) / temperature))",
    paper="A general approximation framework for direct optimization of information retrieval measures "
    "(2010, no arXiv id)",
    reference=f"{_RAX} rax.approx_t12n(rax.mrr_metric)",
    # The top-n cut point is held constant in the backward pass (rax's): see approx_ndcg_loss.
    sample=lambda: _list_sample({"temperature": 0.5, "topn": 2}, surrogate_grad=True),
    runtime=("segments",),
)
def approx_mrr_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    temperature: float = 1.0,
    topn: int | None = None,
    where: ArrayLike | None = None,
    segments: ArrayLike | None = None,
) -> Array:
    r"""ApproxMRR: minus the reciprocal rank of the best relevant item under sigmoid-smoothed ranks (rax's).

    .. math:: \ell = -\max_i \frac{[y_i \ge 1]\,\hat c_i}{\hat r_i},\qquad
        \hat r_i = 1 + \sum_{j \ne i} \sigma\Big(\frac{s_j - s_i}{T}\Big)

    Args:
      scores: ``[..., list_size]`` item scores.
      labels: graded relevance (``>= 1`` is relevant).
      temperature: ``T`` of the sigmoid (> 0).
      topn: the cutoff (None: the whole list).
      where: optional item or list mask.
      segments: optional segment ids.

    Returns:
      The loss per list ``[...]`` in ``[-1, 0]``.

    Paper: Qin, Liu, Li, "A general approximation framework for direct
    optimization of information retrieval measures", Information Retrieval 2010
    (no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> s, y = jnp.array([0.0, 1.0, 3.0, 2.0]), jnp.array([0.0, 0.0, 1.0, 2.0])
      >>> float(lossjax.losses.approx_mrr_loss(s, y).round(4))
      -0.6966
    """
    fn = "approx_mrr_loss"
    C.check_positive(fn, "temperature", temperature)
    _check_list_call(fn, scores, labels, where, None, segments, topn)
    return M.approx_t12n(M.mrr, temperature)(scores, labels, where=where, segments=segments, topn=topn)


# ------------------------------------ NeuralNDCG ------------------------------------


def _neural_sort(s: Array, valid: Array, temperature: float) -> tuple[Array, Array]:
    """NeuralSort's relaxed permutation ``P[r, i]`` (rows: ranks, columns: items), allRank's masking.

    Returns ``(P, ok)`` with ``ok[r, i]`` = rank ``r`` is one of the list's
    valid ranks (``r < n_valid``) and item ``i`` is valid.
    """
    dtype = s.dtype
    nv = jnp.sum(valid, axis=-1, keepdims=True)  # [.., 1]
    pair = valid[..., :, None] & valid[..., None, :]
    a = jnp.where(pair, jnp.abs(s[..., :, None] - s[..., None, :]), jnp.zeros((), dtype))
    b = jnp.sum(a, axis=-1)  # [.., i]
    r = R.iota(s.shape, -1)
    row_ok = r < nv  # [.., r]
    scaling = jnp.where(row_ok, (nv + 1 - 2 * (r + 1)).astype(dtype), jnp.zeros((), dtype))
    logits = s[..., None, :] * scaling[..., :, None] - b[..., None, :]  # [.., r, i]
    ok = row_ok[..., :, None] & valid[..., None, :]
    both_bad = ~row_ok[..., :, None] & ~valid[..., None, :]
    one = jnp.ones((), dtype)
    filled = jnp.where(ok, logits, jnp.where(both_bad, one, jnp.asarray(-jnp.inf, dtype)))
    return jax.nn.softmax(filled / jnp.asarray(temperature, dtype), axis=-1), ok


def _sinkhorn(p: Array, ok: Array, valid_rows_cols: Array, tolerance: float, max_iterations: int, epsilon: float):
    """allRank's ``sinkhorn_scaling``: alternate column/row normalization until both sums are within ``tolerance``.

    Stops per list (allRank stops when every list of the batch has converged):
    later iterations leave a converged list unchanged, so the loop has a fixed
    trip count and is reverse-differentiable.
    """
    dtype = p.dtype
    zero, one = jnp.zeros((), dtype), jnp.ones((), dtype)
    eps = jnp.asarray(epsilon, dtype)
    tol = jnp.asarray(tolerance, dtype)
    mat = jnp.where(ok, p, jnp.where(valid_rows_cols, one, zero))

    def body(_, carry):
        mat, done = carry
        new = mat / jnp.maximum(jnp.sum(mat, axis=-2, keepdims=True), eps)
        new = new / jnp.maximum(jnp.sum(new, axis=-1, keepdims=True), eps)
        rows = jnp.max(jnp.abs(jnp.sum(new, axis=-1) - one), axis=-1)
        cols = jnp.max(jnp.abs(jnp.sum(new, axis=-2) - one), axis=-1)
        mat = jnp.where(done[..., None, None], mat, new)
        return mat, done | ((rows < tol) & (cols < tol))

    done = jnp.zeros(p.shape[:-2], bool)
    mat, _ = jax.lax.fori_loop(0, max_iterations, body, (mat, done))
    return jnp.where(ok, mat, zero)


@register(
    "neural_ndcg_loss",
    aliases=("neuralndcg_loss",),
    family=FAMILY,
    kind="per_example",
    formula="-(1/IDCG@k) sum_{r<k} (P_hat g(y))_r / log2(r + 2), P_hat = Sinkhorn(NeuralSort(s, temperature))",
    paper="NeuralNDCG: Direct Optimisation of a Ranking Metric via Differentiable Relaxation of Sorting "
    "(2021, arXiv:2102.07831)",
    reference="allegro/allRank@c88475661cb72db292d13283fdbc4f2ae6498ee4 allrank/models/losses/neuralNDCG.py "
    "(neuralNDCG, neuralNDCG_transposed)",
    sample=lambda: _list_sample({"variant": "transposed", "gain": "linear"}, {"temperature": 0.5, "topn": 3}),
)
def neural_ndcg_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    temperature: float = 1.0,
    topn: int | None = None,
    gain: str = "exponential",
    variant: str = "standard",
    tolerance: float = 1e-6,
    max_iterations: int = 50,
    epsilon: float = 1e-10,
    where: ArrayLike | None = None,
) -> Array:
    r"""NeuralNDCG: minus NDCG under NeuralSort's relaxed, Sinkhorn-balanced permutation matrix (allRank's).

    .. math::
        \hat P = \mathrm{Sinkhorn}\Big(\mathrm{softmax}_i\big[((n + 1 - 2r)\,s_i - \textstyle\sum_k |s_i - s_k|)
        / \tau\big]\Big),\qquad
        \ell = -\frac{1}{\mathrm{IDCG@k}} \sum_{r \le k} \frac{(\hat P\,g(y))_r}{\log_2(r + 1)}

    ``variant="transposed"`` sums over items instead: each item's gain times
    its expected discount :math:`\sum_r \hat P_{ri} d_r`. Sinkhorn scaling
    alternates column and row normalization (floored at ``epsilon``) until both
    sums are within ``tolerance`` of 1 or ``max_iterations`` is reached (per
    list; allRank checks the whole batch). Padded items (``where``) take the
    last ranks and drop out, as allRank's padding. A list without a relevant
    item gives 0 (allRank masks it). With ``gain="linear"`` the transposed
    variant's ideal DCG also uses linear gains (allRank's uses ``2^y - 1``
    there, inconsistently with its numerator).

    Args:
      scores: ``[..., list_size]`` item scores.
      labels: graded relevance of the same shape.
      temperature: ``tau`` of NeuralSort (> 0).
      topn: the NDCG cutoff ``k`` (None: the whole list).
      gain: ``"exponential"`` (``2^y - 1``, allRank's ``powered_relevancies``) or ``"linear"``.
      variant: ``"standard"`` (NeuralNDCG) or ``"transposed"`` (NeuralNDCG transposed).
      tolerance: Sinkhorn convergence tolerance.
      max_iterations: Sinkhorn iteration cap.
      epsilon: floor of the Sinkhorn sums and added to the ideal DCG (allRank's ``DEFAULT_EPS``).
      where: optional item or list mask.

    Returns:
      The loss per list ``[...]`` in ``[-1, 0]``.

    Paper: Pobrotyn, Bialobrzeski, "NeuralNDCG: Direct Optimisation of a Ranking
    Metric via Differentiable Relaxation of Sorting", 2021, arXiv:2102.07831.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> s, y = jnp.array([3.0, 2.0, 1.0]), jnp.array([2.0, 1.0, 0.0])
      >>> float(lossjax.losses.neural_ndcg_loss(s, y, temperature=0.1).round(4))
      -1.0
    """
    fn = "neural_ndcg_loss"
    C.check_positive(fn, "temperature", temperature)
    C.check_one_of(fn, "gain", gain, R.GAINS)
    C.check_one_of(fn, "variant", variant, ("standard", "transposed"))
    C.check_positive(fn, "tolerance", tolerance, allow_zero=True)
    C.check_int(fn, "max_iterations", max_iterations, 1, static=True)
    C.check_positive(fn, "epsilon", epsilon, allow_zero=True)
    if topn is not None:
        C.check_int(fn, "topn", topn, 1, static=True)
    inp = R.list_inputs(fn, scores, labels, where)
    n = inp.scores.shape[-1]
    k = n if topn is None else min(int(topn), n)
    dtype = inp.dtype
    g = R.gain_fn(fn, gain)(inp.labels)
    p, ok = _neural_sort(inp.scores, inp.valid, temperature)
    nv = jnp.sum(inp.valid, axis=-1, keepdims=True)
    pos = R.iota(inp.scores.shape, -1)
    row_bad = ~(pos < nv)
    both_bad = row_bad[..., :, None] & ~inp.valid[..., None, :]
    p = _sinkhorn(p, ok, both_bad, tolerance, max_iterations, epsilon)
    disc = jnp.where(pos < k, jnp.ones((), dtype) / jnp.log2(pos.astype(dtype) + 2.0), jnp.zeros((), dtype))
    if variant == "standard":
        dcg = jnp.sum(jnp.einsum("...ri,...i->...r", p, g) * disc, axis=-1)
    else:
        dcg = jnp.sum(g * jnp.einsum("...ri,...r->...i", p, disc), axis=-1)
    _, ideal_gains, ideal_valid = R.sort_order(inp.labels, inp.valid, operands=(g, inp.valid))
    idcg = jnp.sum(jnp.where(ideal_valid, ideal_gains * disc, jnp.zeros((), dtype)), axis=-1)
    ndcg = dcg / (idcg + jnp.asarray(epsilon, dtype))
    return jnp.where(idcg == 0, jnp.zeros((), dtype), -ndcg)


# --------------------------------- catalog: retrieval ---------------------------------


def _query_items(fn: str, anchors, positives, negatives, where):
    """Checks ``anchors [B, D]``, ``positives [B, D]``, ``negatives [B, K, D]``; returns cosines and the mask."""
    anchors = C.check_array(fn, "anchors", anchors, ndim=2, dtype="float")
    positives = C.check_array(fn, "positives", positives, ndim=2, dtype="float")
    negatives = C.check_array(fn, "negatives", negatives, ndim=3, dtype="float")
    C.check_same_shape(fn, ("anchors", "positives"), anchors, positives)
    if negatives.shape[0] != anchors.shape[0] or negatives.shape[2] != anchors.shape[1]:
        raise ValueError(
            f"{fn}: `negatives` must have shape (B, K, D) = ({anchors.shape[0]}, K, {anchors.shape[1]}), "
            f"got {negatives.shape}."
        )
    dtype = C.compute_dtype(anchors, positives, negatives)
    mask = C.prepare_where(fn, where, anchors.shape[:1])
    a = l2_normalize(C.fill_masked(C.as_compute(anchors, dtype), mask))
    p = l2_normalize(C.fill_masked(C.as_compute(positives, dtype), mask))
    ng = l2_normalize(C.fill_masked(C.as_compute(negatives, dtype), mask))
    pos = jnp.sum(a * p, axis=-1)
    neg = jnp.einsum("bd,bkd->bk", a, ng, precision=jax.lax.Precision.HIGHEST)
    return pos, neg, mask, dtype


@register(
    "pairwise_softmax_loss",
    aliases=("psl_loss",),
    family=FAMILY,
    kind="per_example",
    formula="logsumexp_k(sigma(d_k) / robust_temperature), d_k = (cos(u, n_k) - cos(u, p)) / temperature, "
    "sigma = log(tanh(x) + 1) | log(relu(x + 1)) | log(atan(x) + 1)",
    paper="PSL: Rethinking and Improving Softmax Loss from Pairwise Perspective for Recommendation "
    "(2024, arXiv:2411.00163)",
    reference="Tiny-Snow/IR-Benchmark@1dd8de9b6335b412b152aaf0e615e2bef3d6a95b "
    "src/itemrec/optimizer/optim_PSL.py::PSLOptimizer.cal_loss (method=1)",
    sample=lambda: _embeddings_sample(
        0, 4, 3, 4, {"activation": "relu"}, {"activation": "atan", "robust_temperature": 0.5}
    ),
)
def pairwise_softmax_loss(
    anchors: ArrayLike,
    positives: ArrayLike,
    negatives: ArrayLike,
    *,
    temperature: float = 2.0,
    robust_temperature: float = 1.0,
    activation: str = "tanh",
    where: ArrayLike | None = None,
) -> Array:
    r"""PSL: the softmax loss with each pairwise score gap passed through a bounded activation (PSL1).

    .. math:: \ell(u) = \log \sum_{k} \exp\big(\sigma(d_{uk}) / \tau^*\big),\qquad
        d_{uk} = \frac{\cos(u, n_k) - \cos(u, p)}{\tau}

    with :math:`\sigma(x) = \log(\tanh x + 1)` (``"tanh"``, computed as
    ``log 2 + log_sigmoid(2x)``), :math:`\log(\mathrm{relu}(x + 1))`
    (``"relu"``) or :math:`\log(\arctan x + 1)` (``"atan"``). The activations
    bound :math:`\exp\sigma(d)` between the step and the exponential only for
    :math:`d \in [-1, 1]`, i.e. ``temperature >= 2``; below their domain
    (``relu``: ``x <= -1``, ``atan``: ``x <= -tan 1``) the log is floored at the
    smallest normal number (finite value, zero gradient). The reference's
    ``logsumexp`` over the sampled negatives (its PSL1, ``method=1``).

    Args:
      anchors: user embeddings ``[B, D]``.
      positives: positive item embeddings ``[B, D]``.
      negatives: sampled negative items ``[B, K, D]``.
      temperature: ``tau`` dividing the cosines (>= 2 keeps ``d`` in ``[-1, 1]``).
      robust_temperature: ``tau*`` of the outer softmax (> 0).
      activation: ``"tanh"``, ``"relu"`` or ``"atan"``.
      where: optional ``[B]`` mask.

    Returns:
      The loss per user ``[B]``.

    Paper: Yang et al., "PSL: Rethinking and Improving Softmax Loss from Pairwise
    Perspective for Recommendation", NeurIPS 2024, arXiv:2411.00163.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> u = jnp.array([[1.0, 0.0]]); p = jnp.array([[1.0, 0.0]]); n = jnp.array([[[0.0, 1.0], [-1.0, 0.0]]])
      >>> lossjax.losses.pairwise_softmax_loss(u, p, n).round(4)
      Array([-0.2532], dtype=float32)
    """
    fn = "pairwise_softmax_loss"
    C.check_positive(fn, "temperature", temperature)
    C.check_positive(fn, "robust_temperature", robust_temperature)
    C.check_one_of(fn, "activation", activation, ("tanh", "relu", "atan"))
    pos, neg, mask, dtype = _query_items(fn, anchors, positives, negatives, where)
    d = (neg - pos[:, None]) / jnp.asarray(temperature, dtype)
    one = jnp.ones((), dtype)
    if activation == "tanh":
        sigma = jnp.asarray(0.6931471805599453, dtype) + jax.nn.log_sigmoid(2.0 * d)
    elif activation == "relu":
        sigma = C.safe_log(jax.nn.relu(d + one))
    else:
        sigma = C.safe_log(jnp.arctan(d) + one)
    loss = jax.nn.logsumexp(sigma / jnp.asarray(robust_temperature, dtype), axis=-1)
    return C.zero_masked(loss, mask)


@register(
    "cosine_contrastive_loss",
    aliases=("ccl_loss",),
    family=FAMILY,
    kind="per_example",
    formula="(1 - cos(u, p)) + negative_weight * mean_k max(0, cos(u, n_k) - margin) (sum_k if no weight)",
    paper="SimpleX: A Simple and Strong Baseline for Collaborative Filtering (2021, arXiv:2109.12613)",
    reference="reczoo/RecBox@99d488e534e541ba828e5cb8cb58b5597a8099e3 "
    "matchbox/pytorch/losses/cosine_contrastive_loss.py::CosineContrastiveLoss",
    sample=lambda: _embeddings_sample(1, 4, 3, 4, {"margin": 0.4, "negative_weight": 2.0}),
)
def cosine_contrastive_loss(
    anchors: ArrayLike,
    positives: ArrayLike,
    negatives: ArrayLike,
    *,
    margin: float = 0.0,
    negative_weight: float | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""SimpleX's cosine contrastive loss (CCL): pull the positive's cosine to 1, push negatives below ``margin``.

    .. math:: \ell(u) = \max(0, 1 - \cos(u, p)) + \frac{w}{K}\sum_{k=1}^K \max\big(0, \cos(u, n_k) - m\big)

    With ``negative_weight=None`` the negatives are summed (``w = K``), as the
    reference. The paper tunes ``m`` in 0.4-0.9 and ``w`` per data set (e.g.
    ``m = 0.4, w = 300`` with 1000 negatives on Amazon-Books).

    Args:
      anchors: user embeddings ``[B, D]``.
      positives: positive item embeddings ``[B, D]``.
      negatives: sampled negative items ``[B, K, D]``.
      margin: ``m`` (the reference's default 0).
      negative_weight: ``w`` (None: sum over negatives).
      where: optional ``[B]`` mask.

    Returns:
      The loss per user ``[B]``.

    Paper: Mao et al., "SimpleX: A Simple and Strong Baseline for Collaborative
    Filtering", CIKM 2021, arXiv:2109.12613.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> u = jnp.array([[1.0, 0.0]]); p = jnp.array([[1.0, 1.0]]); n = jnp.array([[[1.0, 0.0], [0.0, 1.0]]])
      >>> lossjax.losses.cosine_contrastive_loss(u, p, n, margin=0.5).round(4)
      Array([0.7929], dtype=float32)
    """
    fn = "cosine_contrastive_loss"
    C.check_in_range(fn, "margin", margin, -1.0, 1.0)
    if negative_weight is not None:
        C.check_positive(fn, "negative_weight", negative_weight, allow_zero=True)
    pos, neg, mask, dtype = _query_items(fn, anchors, positives, negatives, where)
    one = jnp.ones((), dtype)
    neg_loss = jax.nn.relu(neg - jnp.asarray(margin, dtype))
    if negative_weight is None:
        neg_term = jnp.sum(neg_loss, axis=-1)
    else:
        neg_term = jnp.mean(neg_loss, axis=-1) * jnp.asarray(negative_weight, dtype)
    return C.zero_masked(jax.nn.relu(one - pos) + neg_term, mask)


@register(
    "mann_whitney_auc_loss",
    aliases=("auc_loss",),
    family=FAMILY,
    kind="per_example",
    formula="mean_{y_p > 0, y_n <= 0} log(1 + exp(-(s_p - s_n)))",
    paper="Optimizing What Matters: AUC-Driven Learning for Robust Neural Retrieval (2025, arXiv:2510.00137)",
    reference=f"closed form; equals {_RAX} rax.pairwise_logistic_loss on binarized labels",
    sample=_list_sample,
    runtime=("segments",),
)
def mann_whitney_auc_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    segments: ArrayLike | None = None,
) -> Array:
    r"""Mann-Whitney (pairwise logistic) AUC surrogate: every relevant item against every irrelevant one.

    .. math:: \ell(s, y) = \frac{1}{|P|\,|N|}\sum_{p \in P}\sum_{n \in N} \log\big(1 + e^{-(s_p - s_n)}\big),
        \quad P = \{i: y_i > 0\},\ N = \{i: y_i \le 0\}

    One value per list (query, or label of a multi-label problem); the macro
    AUC loss is ``lossjax.masked_mean`` over lists with both kinds of items
    (a list without relevant or without irrelevant items gives 0). For the
    paper's batch-level AUC over all query-document pairs, flatten the batch
    into one list. At tied scores a pair's gradient is ``-1/2`` to ``s_p``.

    Args:
      scores: ``[..., list_size]`` item scores.
      labels: relevance; ``> 0`` is relevant.
      where: optional item or list mask.
      segments: optional segment ids (pairs within a segment).

    Returns:
      The loss per list ``[...]``.

    Paper: "Optimizing What Matters: AUC-Driven Learning for Robust Neural
    Retrieval", 2025; macro-AUC: "Towards Understanding Generalization of
    Macro-AUC in Multi-label Learning", ICML 2023, arXiv:2305.05248.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> float(lossjax.losses.mann_whitney_auc_loss(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0])).round(4))
      0.6931
    """
    fn = "mann_whitney_auc_loss"
    inp = R.list_inputs(fn, scores, labels, where, None, segments)
    relevant = (inp.labels > 0).astype(inp.dtype)  # pairs with y_p > y_n after binarizing: P x N

    def pair(ds, dy):
        return jax.nn.softplus(-ds)

    return _pair_mean(pair, False, inp.scores, jax.lax.stop_gradient(relevant), None, inp.valid, inp.segments)


def _implicit_sample() -> Sample:
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(8,)).astype(np.float32)
    clicks = (rng.random(8) < 0.5).astype(np.float32)
    probs = rng.uniform(0.05, 1.0, size=(8,)).astype(np.float32)
    return Sample(args=(logits, clicks, probs), diff_argnums=(0,), variants=({"min_propensity": 0.1},))


@register(
    "unbiased_implicit_feedback_loss",
    aliases=("rel_mf_loss",),
    family=FAMILY,
    kind="per_example",
    formula="-[(y / max(theta, M)) log sigmoid(z) + (1 - y / max(theta, M)) log sigmoid(-z)]",
    paper="Unbiased Recommender Learning from Missing-Not-At-Random Implicit Feedback (2020, arXiv:1909.03601)",
    reference="usaito/unbiased-implicit-rec@414b98bdf1f2ba879cb0cb3a78a4f851522d920c "
    "src/utils/models.py::ImplicitRecommender.create_losses (weighted_ce)",
    sample=_implicit_sample,
)
def unbiased_implicit_feedback_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    exposure_probs: ArrayLike,
    *,
    min_propensity: float = 0.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Rel-MF: the inverse-propensity-weighted (unbiased) binary cross-entropy of implicit feedback.

    .. math::
        \ell = -\Big[\frac{y}{\theta}\log\sigma(z) + \Big(1 - \frac{y}{\theta}\Big)\log\big(1 - \sigma(z)\big)\Big],
        \qquad \theta \leftarrow \max(\theta, M)

    ``y`` is the click, ``theta`` the exposure propensity ``P(O = 1)``; the
    clipped estimator floors it at ``min_propensity`` ``M``. The weight
    ``1 - y/theta`` is negative for clicked items, so the loss can be
    negative (expected). Computed from logits with ``log_sigmoid``.

    Args:
      logits: predicted relevance logits ``[...]``.
      labels: clicks (0/1) of the same shape.
      exposure_probs: exposure propensities ``theta`` in ``(0, 1]`` of the same shape.
      min_propensity: the clipping ``M`` (0: the unclipped estimator, as the reference).
      where: optional mask (leading axes).

    Returns:
      The loss per element ``[...]``.

    Paper: Saito, Yaginuma, Nishino, Sakata, Nakata, "Unbiased Recommender
    Learning from Missing-Not-At-Random Implicit Feedback", WSDM 2020,
    arXiv:1909.03601.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.unbiased_implicit_feedback_loss(jnp.zeros(2), jnp.array([1.0, 0.0]), jnp.array([0.5, 0.5]))
      Array([0.6931472, 0.6931472], dtype=float32)
    """
    fn = "unbiased_implicit_feedback_loss"
    C.check_in_range(fn, "min_propensity", min_propensity, 0.0, 1.0)
    logits = C.check_array(fn, "logits", logits, dtype="float")
    labels = C.check_array(fn, "labels", labels, dtype="number" if jnp.asarray(labels).dtype != bool else "bool")
    exposure_probs = C.check_array(fn, "exposure_probs", exposure_probs, dtype="float")
    C.check_same_shape(fn, ("logits", "labels"), logits, labels)
    C.check_same_shape(fn, ("logits", "exposure_probs"), logits, exposure_probs)
    dtype = C.compute_dtype(logits, exposure_probs)
    mask = C.prepare_where(fn, where, logits.shape)
    z = C.fill_masked(C.as_compute(logits, dtype), mask)
    y = C.fill_masked(C.as_compute(labels, dtype), mask)
    theta = C.fill_masked(C.as_compute(exposure_probs, dtype), mask, 1.0)
    theta = jnp.maximum(theta, jnp.asarray(min_propensity, dtype))
    ratio = y / theta
    loss = -(ratio * jax.nn.log_sigmoid(z) + (jnp.ones((), dtype) - ratio) * jax.nn.log_sigmoid(-z))
    return C.zero_masked(loss, mask)


def _revisions_sample() -> Sample:
    rng = np.random.default_rng(11)
    losses = (np.sort(rng.uniform(0.5, 2.0, size=(4, 4)), axis=1)[:, ::-1] + 0.3 * rng.normal(size=(4, 4))).astype(
        np.float32
    )
    return Sample(args=(np.ascontiguousarray(losses),), diff_argnums=(0,))


@register(
    "loss_over_loss_regularizer",
    aliases=("lol_regularizer",),
    family=FAMILY,
    kind="per_example",
    formula="sum_{i < j} max(0, L_j - L_i) over the revisions of a query (more feedback must not cost more)",
    paper="LoL: A Comparative Regularization Loss over Query Reformulation Losses for Pseudo-Relevance Feedback "
    "(2022, arXiv:2204.11545)",
    reference="closed form (catalog definition; no implementation located)",
    sample=_revisions_sample,
)
def loss_over_loss_regularizer(losses: ArrayLike, *, where: ArrayLike | None = None) -> Array:
    r"""LoL: penalizes every later query revision (more feedback) whose loss exceeds an earlier one's.

    .. math:: \ell = \sum_{i < j} \max(0, L_j - L_i)

    over the ``K`` revisions of a query ordered by increasing feedback size.
    Gradients flow into every revision (the regularizer compares loss values);
    at a tie ``L_j = L_i`` the subgradient is 0.

    Args:
      losses: per-revision losses ``[B, K]`` (revision ``k`` uses more feedback than ``k - 1``).
      where: optional ``[B]`` mask.

    Returns:
      The regularizer per query ``[B]``.

    Paper: Zhu et al., "LoL: A Comparative Regularization Loss over Query
    Reformulation Losses for Pseudo-Relevance Feedback", SIGIR 2022, arXiv:2204.11545.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.loss_over_loss_regularizer(jnp.array([[1.0, 2.0, 0.5]]))
      Array([1.], dtype=float32)
    """
    fn = "loss_over_loss_regularizer"
    losses = C.check_array(fn, "losses", losses, ndim=2, dtype="float")
    dtype = C.compute_dtype(losses)
    mask = C.prepare_where(fn, where, losses.shape[:1])
    x = C.fill_masked(C.as_compute(losses, dtype), mask)
    gaps = jax.nn.relu(x[:, None, :] - x[:, :, None])  # [b, i, j] = relu(L_j - L_i)
    later = R.iota(gaps.shape, 1) < R.iota(gaps.shape, 2)  # i < j
    return C.zero_masked(jnp.sum(jnp.where(later, gaps, jnp.zeros((), dtype)), axis=(-2, -1)), mask)
