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
from lossjax._parallel import AxisName, axis_offset, axis_size, gather_batch, psum

__all__ = [
    "CrossBatchMemory",
    "LabelledBatch",
    "gather_replicated",
    "hardest",
    "hardest_index",
    "labelled_batch",
    "multi_similarity_mine",
    "pair_masks",
    "paired_batch",
    "ring_slots",
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


def ring_slots(pointer: ArrayLike, valid: Array, size: int) -> tuple[Array, Array, Array]:
    """Where a ring buffer of ``size`` slots writes the ``valid`` rows (in order) starting at ``pointer``.

    Equals writing them one at a time: with more valid rows than slots only
    the last ``size`` are kept. Returns ``(slot, keep, new_pointer)``: the slot
    of each row (``size``, out of bounds, for rows not written: use
    ``.at[slot].set(..., mode="drop")``), which rows are written, and the next
    pointer.
    """
    ptr = jnp.asarray(pointer, jnp.int32)
    rank = jnp.cumsum(valid.astype(jnp.int32)) - 1
    total = jnp.sum(valid.astype(jnp.int32))
    keep = valid & (rank >= total - size)
    slot = jnp.where(keep, (ptr + rank) % size, size)
    return slot, keep, ((ptr + total) % size).astype(jnp.int32)


class CrossBatchMemory(NamedTuple):
    """A cross-batch memory (XBM): a ring buffer of past embeddings and labels, explicit state.

    Pass it as ``memory=`` to a pair-based loss (:func:`lossjax.losses.pairwise_contrastive_loss`,
    :func:`~lossjax.losses.batch_triplet_loss`, :func:`~lossjax.losses.multi_similarity_loss`,
    :func:`~lossjax.losses.circle_loss`): the batch's anchors are then paired with the memory
    *after* this batch is enqueued (pytorch-metric-learning's ``CrossBatchMemory``: the references
    are the memory, stop-gradient, which holds the current batch too; an example is never paired
    with its own copy). Then call :meth:`update` with the same batch to get the next state.

    Attributes:
      embeddings: ``[Q, D]`` stored embeddings (as given; the loss normalizes them like the batch).
      labels: ``[Q]`` int32 labels.
      valid: ``[Q]`` bool, the filled slots (an empty memory at the start: the warm-up).
      pointer: int32 scalar, the next slot to write.

    Paper: Wang, Zhang, Huang, Scott, "Cross-Batch Memory for Embedding
    Learning", CVPR 2020, arXiv:1912.06798.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> mem = lossjax.losses.CrossBatchMemory.initial(4, 2)
      >>> x, y = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]]), jnp.array([0, 1, 0])
      >>> loss = lossjax.losses.pairwise_contrastive_loss(x, y, memory=mem)  # pairs with the batch's own copy
      >>> mem = mem.update(x, y)
      >>> int(mem.pointer), mem.valid.tolist()
      (3, [True, True, True, False])
    """

    embeddings: Array
    labels: Array
    valid: Array
    pointer: Array

    @classmethod
    def initial(cls, size: int, dim: int, dtype=jnp.float32) -> CrossBatchMemory:
        """An empty memory of ``size`` slots for ``dim``-dimensional embeddings."""
        zeros = jnp.zeros((size,), jnp.int32)
        return cls(jnp.zeros((size, dim), dtype), zeros, zeros.astype(bool), jnp.zeros((), jnp.int32))

    def update(
        self, embeddings: ArrayLike, labels: ArrayLike, *, where: ArrayLike | None = None, axis_name: AxisName = None
    ) -> CrossBatchMemory:
        """The memory after enqueuing the (global, with ``axis_name``) batch; padded rows are not enqueued.

        Args:
          embeddings: ``[N, D]`` this device's batch (stored without gradient).
          labels: integer ``[N]``.
          where: optional ``[N]`` mask of real examples.
          axis_name: mapped axis the batch is sharded over: every device
            enqueues the gathered batch and returns the same (replicated) memory.

        Returns:
          The new :class:`CrossBatchMemory`.
        """
        fn = "CrossBatchMemory.update"
        x = C.check_array(fn, "embeddings", embeddings, ndim=2, dtype="float")
        y = C.check_array(fn, "labels", labels, ndim=1, dtype="int")
        C.check_shape_prefix(fn, ("embeddings", "labels"), x, y, 1)
        _check_memory(fn, self, x.shape[1])
        mask = C.prepare_where(fn, where, y.shape)
        valid = jnp.ones(y.shape, bool) if mask is None else mask
        xg = gather_replicated(C.fill_masked(x, mask), axis_name)
        yg, vg = gather_replicated(y, axis_name), gather_replicated(valid, axis_name)
        slot, _, ptr = ring_slots(self.pointer, vg, self.valid.shape[0])
        return CrossBatchMemory(
            jnp.asarray(self.embeddings).at[slot].set(xg.astype(self.embeddings.dtype), mode="drop"),
            jnp.asarray(self.labels).at[slot].set(yg.astype(self.labels.dtype), mode="drop"),
            jnp.asarray(self.valid, bool).at[slot].set(True, mode="drop"),
            ptr,
        )


def _check_memory(fn: str, memory, dim: int) -> None:
    if not isinstance(memory, CrossBatchMemory):
        raise TypeError(f"{fn}: `memory` must be a CrossBatchMemory, got {type(memory).__name__}.")
    q = memory.valid.shape[0] if memory.valid.ndim == 1 else -1
    if memory.embeddings.shape != (q, dim) or memory.labels.shape != (q,):
        raise ValueError(
            f"{fn}: `memory` must hold embeddings [Q, {dim}], labels [Q] and valid [Q], got "
            f"{memory.embeddings.shape}, {memory.labels.shape} and {memory.valid.shape}."
        )


def labelled_batch(
    fn: str,
    embeddings: ArrayLike | None,
    labels: ArrayLike,
    where: ArrayLike | None,
    *,
    axis_name: AxisName = None,
    normalize: bool = False,
    memory: CrossBatchMemory | None = None,
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
    self_m = self_mask(n, m, axis_name=axis_name)
    if memory is not None:
        # The references are the memory after this batch's enqueue (stop-gradient): the batch's rows that get
        # written, then the old slots that survive it. A row is never paired with its own copy (self_m).
        _check_memory(fn, memory, x.shape[1])
        size = memory.valid.shape[0]
        slot, keep, _ = ring_slots(memory.pointer, valid_all, size)
        written = jnp.zeros((size,), bool).at[slot].set(True, mode="drop")
        mem_x = C.as_compute(jax.lax.stop_gradient(jnp.asarray(memory.embeddings)), dtype)
        mem_x = l2_normalize(mem_x) if normalize else mem_x
        x_all = jnp.concatenate([jax.lax.stop_gradient(x_all), mem_x], axis=0)
        labels_all = jnp.concatenate([labels_all, jnp.asarray(memory.labels).astype(labels_all.dtype)])
        valid_all = jnp.concatenate([keep, jnp.asarray(memory.valid, bool) & ~written])
        self_m = jnp.concatenate([self_m, jnp.zeros((n, size), bool)], axis=1)
    pos, neg = pair_masks(labels, labels_all, valid, valid_all, self_m)
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


def gather_replicated(x: Array, axis_name: AxisName) -> Array:
    """The batch gathered over ``axis_name`` as a value replicated over it (for state updates: queues, memories).

    ``all_gather`` gives every device the same rows, but ``shard_map`` types
    its result as varying over the axis, so a state built from it could not be
    returned replicated (``out_specs=P()``). Here each device writes its rows
    at its offset in a zero buffer and the buffers are ``psum``-med (exact:
    every entry is one value plus zeros). Booleans travel as int32. No gradient.
    """
    x = jax.lax.stop_gradient(jnp.asarray(x))
    if axis_name is None:
        return x
    n = x.shape[0]
    is_bool = x.dtype == jnp.bool_
    v = x.astype(jnp.int32) if is_bool else x
    buf = jnp.zeros((n * axis_size(axis_name), *x.shape[1:]), v.dtype)
    buf = jax.lax.dynamic_update_slice_in_dim(buf, v, axis_offset(axis_name, n), axis=0)
    out = psum(buf, axis_name)
    return out > 0 if is_bool else out
