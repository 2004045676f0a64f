"""The ranking core shared by ``lossjax.metrics`` and the ``ranking`` loss family.

Conventions (rax's): ``scores`` and graded ``labels`` are ``[..., list_size]``;
the last axis is the list, the leading axes are lists. ``where`` masks items
(``[..., list_size]``) or whole lists (a mask of the leading axes: lossjax masks
align with leading axes); ``segments`` (integers ``[..., list_size]``) packs
several queries in one list: items only interact with items of their own
segment. Everything here works on *prepared* inputs (:func:`list_inputs`):
masked items are filled with finite values, so NaN/inf padding never reaches
a value or a gradient (the double-``where`` pattern), and the item mask
``valid`` is a full boolean array (never None).

Reductions over a list follow rax's default ``reduce_fn=jnp.mean`` applied to
one list (what ``jax.vmap(rax_fn)`` computes): the per-list value is the mean
over the list's segments (lists without segments have one), and a list with no
valid item gives 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from lossjax import _checks as C

__all__ = [
    "DISCOUNTS",
    "GAINS",
    "ListInputs",
    "approx_cutoff",
    "approx_ranks",
    "cutoff",
    "discount_fn",
    "first_item_mask",
    "gain_fn",
    "iota",
    "list_inputs",
    "logcumsumexp",
    "masked_log_softmax",
    "masked_logsumexp",
    "masked_mean_last",
    "per_list",
    "ranks",
    "same_segment",
    "segment_sum",
    "sort_order",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

#: Named gain functions: ``"exponential"`` is ``2^y - 1`` (rax's default), ``"linear"`` is ``y``.
GAINS = ("exponential", "linear")
#: Named discount functions: ``"log2"`` is ``1 / log2(r + 1)`` (rax's default), ``"reciprocal"`` is ``1 / r``.
DISCOUNTS = ("log2", "reciprocal")


def gain_fn(fn: str, gain: Any) -> Callable[[Array], Array] | None:
    """The gain function of a ``gain`` hyperparameter: a name of :data:`GAINS`, a callable, or None."""
    if gain is None or callable(gain):
        return gain
    C.check_one_of(fn, "gain", gain, GAINS)
    if gain == "linear":
        return lambda y: y
    return lambda y: jnp.exp2(y) - jnp.ones((), y.dtype)


def discount_fn(fn: str, discount: Any) -> Callable[[Array], Array]:
    """The discount function of a ``discount`` hyperparameter: a name of :data:`DISCOUNTS` or a callable."""
    if callable(discount):
        return discount
    C.check_one_of(fn, "discount", discount, DISCOUNTS)
    if discount == "reciprocal":
        return lambda r: jnp.ones((), r.dtype) / r
    return lambda r: jnp.ones((), r.dtype) / jnp.log2(r + jnp.ones((), r.dtype))


# ------------------------------------ inputs ------------------------------------


class ListInputs(NamedTuple):
    """Checked ranking inputs (see :func:`list_inputs`).

    ``scores``/``labels``/``weights`` are in the compute dtype with masked items
    filled (0); ``valid`` is the full boolean item mask; ``weights`` and
    ``segments`` may be None; ``raw_scores`` are the scores before filling
    (rax's metrics treat ``-inf`` scores as unranked).
    """

    scores: Array
    labels: Array
    valid: Array
    weights: Array | None
    segments: Array | None
    dtype: Any
    raw_scores: Array


def list_inputs(
    fn: str,
    scores: ArrayLike,
    labels: ArrayLike,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    segments: ArrayLike | None = None,
) -> ListInputs:
    """Checks ``scores``/``labels`` ``[..., list_size]``, ``where``, ``weights`` and ``segments``; fills masked items.

    Args:
      fn: the public function (for error messages).
      scores: float ``[..., list_size]``.
      labels: graded relevance of the same shape (float, integer or bool).
      where: None, an item mask ``[..., list_size]`` or a list mask of the leading axes.
      weights: None or per-item weights of the scores' shape.
      segments: None or integer segment ids of the scores' shape.

    Returns:
      The :class:`ListInputs`.
    """
    scores = C.check_array(fn, "scores", scores, min_ndim=1, dtype="float")
    labels = C.check_array(fn, "labels", labels, dtype="number" if not _is_bool(labels) else "bool")
    C.check_same_shape(fn, ("scores", "labels"), scores, labels)
    float_labels = labels if jnp.issubdtype(labels.dtype, jnp.floating) else None
    extra = [] if weights is None else [weights]
    dtype = C.compute_dtype(scores, float_labels, *extra)
    valid = C.prepare_where(fn, where, scores.shape)
    if valid is None:
        valid = jnp.ones(scores.shape, bool)
    raw = scores
    scores = jnp.where(valid, C.as_compute(scores, dtype), jnp.zeros((), dtype))
    labels = jnp.where(valid, C.as_compute(labels, dtype), jnp.zeros((), dtype))
    if weights is not None:
        weights = C.check_array(fn, "weights", weights, dtype="number")
        C.check_same_shape(fn, ("scores", "weights"), scores, weights)
        weights = jnp.where(valid, C.as_compute(weights, dtype), jnp.zeros((), dtype))
    if segments is not None:
        segments = C.check_array(fn, "segments", segments, dtype="int")
        C.check_same_shape(fn, ("scores", "segments"), scores, segments)
    return ListInputs(scores, labels, valid, weights, segments, dtype, raw)


def _is_bool(x) -> bool:
    return hasattr(x, "dtype") and jnp.asarray(x).dtype == jnp.bool_


# ----------------------------------- segments -----------------------------------


def _iota(shape, axis: int) -> Array:
    """``arange`` along ``axis`` broadcast to ``shape`` (explicit: rank promotion raises in the tests)."""
    return jax.lax.broadcasted_iota(jnp.int32, tuple(shape), axis % len(shape))


def iota(shape, axis: int) -> Array:
    """Positions along ``axis`` broadcast to ``shape`` (int32)."""
    return _iota(shape, axis)


def same_segment(segments: Array | None, valid: Array) -> Array:
    """``[..., L, L]``: both items valid and (with ``segments``) in the same segment."""
    pair = valid[..., :, None] & valid[..., None, :]
    if segments is not None:
        pair = pair & (segments[..., :, None] == segments[..., None, :])
    return pair


def segment_sum(a: Array, segments: Array, valid: Array) -> Array:
    """Per item, the sum of ``a`` over the valid items of its segment (0 for an invalid item)."""
    pair = same_segment(segments, valid)
    b = jnp.broadcast_to(a[..., None, :], pair.shape)
    return jnp.sum(jnp.where(pair, b, jnp.zeros((), a.dtype)), axis=-1)


def first_item_mask(segments: Array, valid: Array) -> Array:
    """The first valid item of every segment that has one (rax's ``first_item_segment_mask``)."""
    pair = same_segment(segments, valid)  # [.., k, j]
    before = _iota(pair.shape, -2) < _iota(pair.shape, -1)  # k < j
    return valid & ~jnp.any(pair & before, axis=-2)


def per_list(values: Array, valid: Array, segments: Array | None) -> Array:
    """Reduces per-item segment values to one value per list.

    Without segments ``values`` is already per list (``[...]``); a list with no
    valid item gives 0. With segments ``values`` is ``[..., L]`` (every item
    holds its segment's value) and the result is the mean over the list's
    segments that have a valid item.
    """
    if segments is None:
        return jnp.where(jnp.any(valid, axis=-1), values, jnp.zeros((), values.dtype))
    first = first_item_mask(segments, valid)
    return masked_mean_last(values, first)


def masked_mean_last(x: Array, mask: Array) -> Array:
    """Mean of ``x`` over its last axis where ``mask``; 0 where the mask is empty."""
    total = jnp.sum(jnp.where(mask, x, jnp.zeros((), x.dtype)), axis=-1)
    count = jnp.sum(mask, axis=-1).astype(x.dtype)
    return total / jnp.maximum(count, jnp.ones((), x.dtype))


# ------------------------------ masked softmax math ------------------------------


def masked_logsumexp(x: Array, mask: Array, axis: int = -1, keepdims: bool = False) -> Array:
    """``log sum_{mask} exp(x)`` along ``axis``; ``-inf``-free: an empty mask gives 0 and zero gradients.

    ``x`` must be finite where ``mask`` is False (prepared inputs are).
    """
    zero = jnp.zeros((), x.dtype)
    big = jnp.where(mask, x, jnp.asarray(-jnp.inf, x.dtype))
    m = jax.lax.stop_gradient(jnp.max(big, axis=axis, keepdims=True))
    m = jnp.where(jnp.isfinite(m), m, zero)
    safe = jnp.where(mask, x, m)
    e = jnp.where(mask, jnp.exp(safe - m), zero)
    s = jnp.sum(e, axis=axis, keepdims=True)
    out = jnp.log(jnp.where(s > 0, s, jnp.ones((), x.dtype))) + m
    return out if keepdims else jnp.squeeze(out, axis=axis)


def masked_log_softmax(x: Array, mask: Array, axis: int = -1) -> Array:
    """``log_softmax`` over the masked entries of ``axis``; 0 (not ``-inf``) at unmasked entries."""
    lse = masked_logsumexp(x, mask, axis=axis, keepdims=True)
    return jnp.where(mask, x - lse, jnp.zeros((), x.dtype))


def logcumsumexp(x: Array, valid: Array, *, reverse: bool = False) -> Array:
    """Cumulative ``log sum exp`` along the last axis over the valid entries, stable at any spread.

    An associative scan of ``(running max, scaled sum)`` pairs (the running max
    is held constant in the backward pass; the gradient flows through the
    scaled sums). Positions whose prefix (suffix with ``reverse``) holds no
    valid entry get the fill value, never ``-inf``.
    """
    zero = jnp.zeros((), x.dtype)
    sg = jax.lax.stop_gradient(x)
    low = jnp.min(jnp.where(valid, sg, jnp.asarray(jnp.inf, x.dtype)), axis=-1, keepdims=True)
    low = jnp.where(jnp.isfinite(low), low, zero)
    m0 = jnp.where(valid, sg, low)
    s0 = jnp.where(valid, jnp.exp(x - jnp.where(valid, sg, x)), zero)

    def combine(a, b):
        ma, sa = a
        mb, sb = b
        m = jnp.maximum(ma, mb)
        return m, sa * jnp.exp(ma - m) + sb * jnp.exp(mb - m)

    m, s = jax.lax.associative_scan(combine, (m0, s0), reverse=reverse, axis=x.ndim - 1)
    return m + jnp.log(jnp.where(s > 0, s, jnp.ones((), x.dtype)))


# -------------------------------------- ranks --------------------------------------


def _tie_noise(key: Array | None, shape, dtype) -> Array | None:
    if key is None:
        return None
    # float32 draws whatever the compute dtype: the same tie-breaking in float32 and float64.
    return jax.random.uniform(key, shape, dtype=jnp.float32).astype(dtype)


def sort_order(
    values: Array, valid: Array, *, key: Array | None = None, operands: tuple[Array, ...] = ()
) -> tuple[Array, ...]:
    """Sorts along the last axis by ``values`` descending, valid items first, ties by ``key`` then position.

    rax's ``utils.sort_by`` (keys ``[~where, -values, uniform(key)]``) with the
    position as the last key, so ties keep their order of appearance on every
    backend. Returns ``(permutation, *operands sorted)``.
    """
    iota = jax.lax.broadcasted_iota(jnp.int32, values.shape, values.ndim - 1)
    keys = [(~valid).astype(jnp.int32), -values]
    noise = _tie_noise(key, values.shape, values.dtype)
    if noise is not None:
        keys.append(noise)
    keys.append(iota)
    out = jax.lax.sort((*tuple(keys), iota, *tuple(operands)), dimension=values.ndim - 1, num_keys=len(keys))
    return tuple(out[len(keys) :])


def ranks(scores: Array, valid: Array, segments: Array | None = None, *, key: Array | None = None) -> Array:
    """1-based ranks by descending score (rax's ``utils.ranks``); invalid items rank after valid ones.

    With ``segments`` the rank is the position within the item's segment in
    the same global order. Ranks are integers (no gradient).
    """
    perm = sort_order(jax.lax.stop_gradient(scores), valid, key=key)[0]
    order = jnp.argsort(perm, axis=-1).astype(jnp.int32)  # position of every item in the sorted order
    if segments is None:
        return order + 1
    # Within-segment rank: 1 + the items of the same segment placed before it.
    same = segments[..., :, None] == segments[..., None, :]
    before = order[..., None, :] < order[..., :, None]
    return jnp.sum(same & before, axis=-1).astype(jnp.int32) + 1


def approx_ranks(
    scores: Array,
    valid: Array,
    segments: Array | None = None,
    *,
    step_fn: Callable[[Array], Array] = jax.nn.sigmoid,
) -> Array:
    """Smooth ranks ``1 + sum_{j != i} step(s_j - s_i)`` over valid pairs of a segment (rax's ``approx_ranks``).

    A masked item has rank 1 (it takes part in no pair), as in rax.
    """
    pairs = step_fn(scores[..., None, :] - scores[..., :, None])  # [.., i, j] = step(s_j - s_i)
    mask = same_segment(segments, valid)
    mask = mask & (_iota(mask.shape, -2) != _iota(mask.shape, -1))
    return jnp.ones((), scores.dtype) + jnp.sum(jnp.where(mask, pairs, jnp.zeros((), scores.dtype)), axis=-1)


def cutoff(a: Array, n: int | None, valid: Array, segments: Array | None = None) -> Array:
    """1.0 for the ``n`` largest ``a`` (per segment), else 0 (rax's ``utils.cutoff``, ``where`` not applied)."""
    if n is None:
        return jnp.ones_like(a)
    del valid  # rax's metrics call cutoff_fn(-ranks, n=...) without `where`
    r = ranks(a, jnp.ones(a.shape, bool), segments)
    return (r <= n).astype(a.dtype)


def approx_cutoff(
    a: Array,
    n: int | None,
    valid: Array,
    segments: Array | None = None,
    *,
    step_fn: Callable[[Array], Array] = jax.nn.sigmoid,
) -> Array:
    """Smooth top-``n`` indicator ``step(a - c)``, ``c`` between the ``n``-th and ``n+1``-th largest (rax).

    As rax's ``utils.approx_cutoff`` called by its metrics (``where`` not passed):
    the cut point is held constant in the backward pass, and a list (segment)
    with at most ``n`` items keeps everything.
    """
    if n is None:
        return jnp.ones_like(a)
    if n == 0:
        return jnp.zeros_like(a)
    del valid
    everything = jnp.ones(a.shape, bool)
    r = ranks(a, everything, segments)
    at = (r == n) | (r == n + 1)
    picked = jnp.where(at, a, jnp.zeros((), a.dtype))
    if segments is None:
        c = jnp.sum(picked, axis=-1, keepdims=True) / 2.0
        num = jnp.full((*a.shape[:-1], 1), a.shape[-1])
    else:
        c = segment_sum(picked, segments, everything) / 2.0
        num = segment_sum(jnp.ones(a.shape, jnp.int32), segments, everything)
    c = jax.lax.stop_gradient(c)
    return jnp.where(num > n, step_fn(a - c), jnp.ones((), a.dtype))
