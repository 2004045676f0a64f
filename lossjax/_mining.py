"""The batch forms of the metric-learning families, their pair masks and mining.

:func:`paired_batch` checks two paired views (``embeddings_a``,
``embeddings_b``: row ``i`` of each is a positive pair), as the contrastive
(metric) and self-supervised losses take them.

:func:`labelled_batch` checks a labelled batch (``embeddings [N, D]``,
integer ``labels [N]``, optional ``where``), gathers it over ``axis_name``
and builds the positive / negative pair masks of this device's rows against
the gathered batch. The public miners (:mod:`lossjax.miners`) and the metric
losses (:mod:`lossjax.losses._metric`) both start from it, and both select
pairs with the same functions (:func:`hardest`, :func:`hardest_index`,
:func:`multi_similarity_mine`), so a loss with ``mining=`` uses exactly the
pairs the corresponding miner returns.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from lossjax import _checks as C
from lossjax._pairwise import l2_normalize, self_mask
from lossjax._parallel import AxisName, gather_batch

__all__ = [
    "LabelledBatch",
    "hardest",
    "hardest_index",
    "labelled_batch",
    "multi_similarity_mine",
    "pair_masks",
    "paired_batch",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


class LabelledBatch(NamedTuple):
    """A checked labelled batch: this device's rows against the gathered batch.

    Attributes:
      x: local rows ``[n, D]`` in the compute dtype, padded rows filled with 0
        (None when no embeddings were given).
      x_all: the rows gathered over ``axis_name`` ``[M, D]`` (``x`` without an axis).
      labels_all: gathered labels ``[M]``.
      valid: ``[n]`` bool, the local rows that are real examples.
      valid_all: gathered ``valid`` ``[M]``.
      pos: ``[n, M]`` positive pairs (same label, not the row itself, both valid).
      neg: ``[n, M]`` negative pairs (different labels, both valid).
      dtype: the compute dtype.
    """

    x: Array | None
    x_all: Array | None
    labels_all: Array
    valid: Array
    valid_all: Array
    pos: Array
    neg: Array
    dtype: jnp.dtype


def paired_batch(
    fn: str,
    embeddings_a: ArrayLike,
    embeddings_b: ArrayLike,
    where: ArrayLike | None,
    *,
    names: tuple[str, str] = ("embeddings_a", "embeddings_b"),
) -> tuple[Array, Array, Array | None, jnp.dtype]:
    """Checks two paired views ``[N, D]`` of the same shape and ``where``; fills padded rows with 0.

    Returns ``(a, b, mask, dtype)``: both views in the compute dtype, the
    ``[N]`` boolean mask (or None) and the compute dtype. ``names`` are the
    argument names the errors use.
    """
    a = C.check_array(fn, names[0], embeddings_a, ndim=2, dtype="float")
    b = C.check_array(fn, names[1], embeddings_b, ndim=2, dtype="float")
    C.check_same_shape(fn, names, a, b)
    dtype = C.compute_dtype(a, b)
    mask = C.prepare_where(fn, where, a.shape[:1])
    a = C.fill_masked(C.as_compute(a, dtype), mask)
    b = C.fill_masked(C.as_compute(b, dtype), mask)
    return a, b, mask, dtype


def pair_masks(labels: Array, ref_labels: Array, valid: Array, ref_valid: Array, self_m: Array) -> tuple[Array, Array]:
    """``[n, M]`` positive (same label, not self) and negative (other label) pair masks over valid rows."""
    same = labels[:, None] == ref_labels[None, :]
    ok = valid[:, None] & ref_valid[None, :]
    return same & ok & ~self_m, ~same & ok


def labelled_batch(
    fn: str,
    embeddings: ArrayLike | None,
    labels: ArrayLike,
    where: ArrayLike | None,
    *,
    axis_name: AxisName = None,
    normalize: bool = False,
) -> LabelledBatch:
    """Checks ``embeddings [N, D]`` (or None), integer ``labels [N]`` and ``where``; gathers; builds the pair masks.

    Errors name ``fn`` and the argument. Padded rows (``where`` False) are
    filled with 0 before anything is computed from them (the first half of the
    double-``where``) and are in no pair.
    """
    x = None
    if embeddings is not None:
        x = C.check_array(fn, "embeddings", embeddings, ndim=2, dtype="float")
    labels = C.check_array(fn, "labels", labels, ndim=1, dtype="int")
    if x is not None:
        C.check_shape_prefix(fn, ("embeddings", "labels"), x, labels, 1)
    n = labels.shape[0]
    dtype = C.compute_dtype(x)
    mask = C.prepare_where(fn, where, (n,))
    valid = jnp.ones((n,), bool) if mask is None else mask
    x_all = None
    if x is not None:
        x = C.fill_masked(C.as_compute(x, dtype), mask)
        if normalize:
            x = l2_normalize(x)
        x_all = gather_batch(x, axis_name)
    labels_all = gather_batch(labels, axis_name)
    valid_all = gather_batch(valid, axis_name)
    m = labels_all.shape[0]
    pos, neg = pair_masks(labels, labels_all, valid, valid_all, self_mask(n, m, axis_name=axis_name))
    return LabelledBatch(x, x_all, labels_all, valid, valid_all, pos, neg, dtype)


def hardest(mat: Array, mask: Array, *, largest: bool) -> tuple[Array, Array]:
    """Per row, the largest (or smallest) entry of ``mat`` among ``mask``; and whether one exists.

    Rows without any entry get 0 (finite values and gradients).
    """
    fill = -jnp.inf if largest else jnp.inf
    picked = jnp.where(mask, mat, fill)
    val = jnp.max(picked, axis=-1, initial=fill) if largest else jnp.min(picked, axis=-1, initial=fill)
    has = jnp.any(mask, axis=-1)
    return jnp.where(has, val, jnp.zeros((), mat.dtype)), has


def hardest_index(mat: Array, mask: Array, *, largest: bool) -> tuple[Array, Array]:
    """Per row, the column index of the largest (or smallest) masked entry, and whether one exists."""
    if mat.shape[-1] == 0:  # no candidates at all (an empty batch): index 0, marked absent
        return jnp.zeros(mat.shape[:-1], jnp.int32), jnp.zeros(mat.shape[:-1], bool)
    fill = -jnp.inf if largest else jnp.inf
    picked = jnp.where(mask, mat, fill)
    idx = jnp.argmax(picked, axis=-1) if largest else jnp.argmin(picked, axis=-1)
    return idx.astype(jnp.int32), jnp.any(mask, axis=-1)


def multi_similarity_mine(sim: Array, pos: Array, neg: Array, *, margin: float) -> tuple[Array, Array]:
    """Multi-similarity mining on a similarity matrix (no gradient flows through the masks).

    Keeps positives with ``s_ap - margin < max_n s_an`` and negatives with
    ``s_an + margin > min_p s_ap`` (pytorch-metric-learning's ``epsilon``).
    """
    s = jax.lax.stop_gradient(sim)
    max_neg = jnp.max(jnp.where(neg, s, -jnp.inf), axis=-1, keepdims=True, initial=-jnp.inf)
    min_pos = jnp.min(jnp.where(pos, s, jnp.inf), axis=-1, keepdims=True, initial=jnp.inf)
    return pos & (s - margin < max_neg), neg & (s + margin > min_pos)
