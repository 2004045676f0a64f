"""The fused-head machinery: cross-entropy of ``hidden @ weight.T`` without the ``[N, V]`` logits.

Private and unregistered: :func:`lossjax.losses.linear_cross_entropy`,
:func:`lossjax.losses.linear_cross_entropy_with_lse` and
:func:`lossjax.losses.reduced_linear_cross_entropy` are its public faces, and
later fused heads (distillation, preference) reuse its tiles, its streaming
log-sum-exp and its two gradient paths.

In a language model the output head is where memory goes: for ``N`` tokens,
hidden size ``D`` and vocabulary ``V`` the logits and their gradient are
``N x V`` floats each, often larger than the rest of the model's activations.
:func:`fused_cross_entropy` fuses the head's matmul with the cross-entropy and
never materializes more than one tile of logits, in the forward or in the
backward pass (a ``jax.custom_vjp``).

Two gradient strategies (``mode=``):

``"recompute"`` (memory-lean; always used for per-token losses)
    The forward pass streams vocabulary blocks ``[N, Vb]`` and carries, per
    token, the running max, the rescaled sum of exponentials, the target logit
    (and the sum of logits for label smoothing): a streaming log-sum-exp with
    float32 accumulators. The backward pass streams the vocabulary blocks again,
    recomputes each logit tile, forms ``dlogits = g * (softmax - targets)``,
    writes the weight gradient of the block in place and accumulates the
    hidden gradient in float32. 8 N D V FLOPs; temporaries are one tile plus
    ``N``-vectors and the ``[N, D]`` float32 accumulator. Any cotangent works
    (per-token weights, DPO/PPO-style users, the log-sum-exp output).

``"in_forward"`` (fast; needs a scalar loss: a ``"mean"`` or ``"sum"`` reduction)
    The gradient is computed during the forward pass over token chunks
    ``[Nc, V]``: logit tile, log-sum-exp, ``softmax - targets``, then the
    chunk's hidden gradient and a float32 weight-gradient accumulator. The
    backward pass only scales by the (scalar) cotangent. 6 N D V FLOPs, the
    same as the naive head; temporaries are one tile plus the float32
    ``[V, D]`` accumulator.

``"auto"`` picks ``"in_forward"`` when the loss is a scalar and the weight is
not vocab-sharded (6 N D V FLOPs, the naive head's count, at every shape),
else ``"recompute"``. The in-forward ``[V, D]`` weight-gradient accumulator is
float32 when it fits the byte budget (``memory_budget``, default 512 MiB),
otherwise it is kept in the weight's dtype (e.g. bf16 at V=128k, D=4096: 1 GiB
instead of 2 GiB; each chunk's float32 product is added in float32 and rounded
once per chunk, as Liger does: a relative error of about ``sqrt(N/chunk)
2^-9`` on the weight gradient; ``mode="recompute"`` or a budget above
``4 V D`` bytes keeps float32). Tile sizes come from the same budget as
multiples of 128 (a float32 tile of at most ``memory_budget`` bytes,
:func:`tile_sizes`; token chunks of at most a quarter of the tokens, so the
tiles stay below the naive head's logits) and can be overridden with
``block_size`` / ``chunk_size``. Memory-lean setting: ``mode="recompute"`` with
a small budget (e.g. 64 MiB).

Sharding: with tokens sharded (``shard_map`` over the token axis, weight
replicated) each device runs the fused loss on its tokens and the weight
gradient partials are summed by ``shard_map``'s transpose; under plain
``jit`` with sharded inputs the SPMD partitioner does the same, on
auto-sharded meshes and on explicit ones (``jax.set_mesh``; there, block and
chunk sizes are rounded up to whole shards). With a vocab-sharded weight pass
``vocab_axis_name``: each device streams its local vocabulary blocks and the
per-token statistics are combined with ``pmax`` / ``psum`` (never a
``dynamic_slice`` of a sharded weight, which would all-gather it every step).

Matmul operands stay in the input dtype (bf16 stays bf16) with
``preferred_element_type=float32``; the softmax math is float32; ``dlogits``
are cast back to the operand dtype before the two gradient matmuls. The
target logit is selected by comparing an iota with ``label - block_start``
(no gather or scatter on the vocabulary axis).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from lossjax import _checks as C
from lossjax._parallel import axis_offset, axis_size, explicit_sharding, like_inputs, shard_multiple, varying_axes

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "DIVERGENCES",
    "MODES",
    "SCALAR_REDUCTIONS",
    "fused_cross_entropy",
    "fused_distillation",
    "tile_sizes",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

#: Gradient strategies of the scalar (reduced) loss; per-token outputs always recompute.
MODES = ("auto", "in_forward", "recompute")
#: The scalar reductions of :func:`fused_cross_entropy` (``"none"`` returns the per-token losses).
SCALAR_REDUCTIONS = ("mean", "sum")
#: Default byte budget for one float32 logit tile (and for the in-forward float32 dW accumulator).
DEFAULT_MEMORY_BUDGET = 512 * 2**20


class _Cfg(NamedTuple):
    """Static configuration of one fused call (hashable: a custom_vjp nondiff argument)."""

    block: int  # vocabulary block (recompute path)
    chunk: int  # token chunk (in-forward path)
    has_bias: bool
    smoothing: bool
    zloss: bool
    softcap: bool
    with_lse: bool  # per-token path: also return the log-sum-exp
    reduction: str  # "sum" or "mean" (in-forward path only)
    vocab_axis: str | None
    acc_dtype: str  # float32 (float64 for float64 inputs under x64)
    dw_dtype: str = ""  # in-forward weight-gradient accumulator: acc_dtype, or the weight's dtype when large


# --------------------------------------------------------------------------
# Tiles
# --------------------------------------------------------------------------


def _acc(cfg: _Cfg):
    return jnp.dtype(cfg.acc_dtype)


def _logit_tile(cfg: _Cfg, x: Array, w_blk: Array, b_blk: Array | None, hp: Array) -> Array:
    """``x @ w_blk.T (+ b) -> softcap``, float32 accumulation, ``[rows, cols]``."""
    z = lax.dot_general(x, w_blk, (((1,), (1,)), ((), ())), preferred_element_type=_acc(cfg))
    if cfg.has_bias:
        z = z + b_blk.astype(z.dtype)[None, :]
    if cfg.softcap:
        cap = hp[2]
        z = cap * jnp.tanh(z / cap)
    return z


def _tile_stats(cfg: _Cfg, z: Array, rel_label: Array):
    """Per-row max, sum of exp(z - max), target logit and sum of logits of one tile."""
    hit = lax.broadcasted_iota(rel_label.dtype, z.shape, 1) == rel_label[:, None]
    zero = jnp.zeros((), z.dtype)
    m = jnp.max(z, axis=1)
    s = jnp.sum(jnp.exp(z - m[:, None]), axis=1)
    t = jnp.sum(jnp.where(hit, z, zero), axis=1)
    sz = jnp.sum(z, axis=1) if cfg.smoothing else jnp.zeros_like(m)
    return m, s, t, sz


def _merge(m0, s0, m1, s1):
    """Merges two (max, sum-exp) pairs of a streaming log-sum-exp."""
    m = jnp.maximum(m0, m1)
    return m, s0 * jnp.exp(m0 - m) + s1 * jnp.exp(m1 - m)


def _dlogits(cfg: _Cfg, z: Array, rel_label: Array, lse: Array, g: Array, g_lse: Array | None, hp: Array, n_vocab):
    """``d loss / d z`` for one tile, per-row cotangent ``g`` (already masked).

    loss = lse - (1-a) z_y - (a/V) sum_v z_v + zl * lse^2 (+ g_lse * lse)
    d/dz' = p * (g (1 + 2 zl lse) + g_lse) - g ((1-a) onehot + a/V);  softcap: * (1 - (z'/c)^2).
    """
    a, zl = hp[0], hp[1]
    p = jnp.exp(z - lse[:, None])
    coef = g
    if cfg.zloss:
        coef = coef * (1 + 2 * zl * lse)
    if g_lse is not None:
        coef = coef + g_lse
    hit = lax.broadcasted_iota(rel_label.dtype, z.shape, 1) == rel_label[:, None]
    gy = g * (1 - a) if cfg.smoothing else g
    dz = p * coef[:, None] - jnp.where(hit, gy[:, None], jnp.zeros((), z.dtype))
    if cfg.smoothing:
        dz = dz - (g * a / n_vocab)[:, None]
    if cfg.softcap:
        r = z / hp[2]
        dz = dz * (1 - r * r)
    return dz


def _loss_from_stats(cfg: _Cfg, lse, t, sz, hp, n_vocab):
    a, zl = hp[0], hp[1]
    if cfg.smoothing:
        loss = lse - (1 - a) * t - (a / n_vocab) * sz
    else:
        loss = lse - t
    if cfg.zloss:
        loss = loss + zl * lse * lse
    return loss


def _blocks(total: int, size: int, body, carry):
    """Runs ``carry = body(carry, start, size)`` over ``[0, total)`` in blocks of ``size``.

    Full blocks go through one ``fori_loop`` (a dynamic start); the remainder is
    one more static call, so nothing is padded or copied.
    """
    nb, tail = divmod(total, size)
    if nb == 1:
        carry = body(carry, 0, size)
    elif nb > 1:
        carry = lax.fori_loop(0, nb, lambda j, c: body(c, j * size, size), carry)
    if tail:
        carry = body(carry, nb * size, tail)
    return carry


def _vocab_offset(cfg: _Cfg, n_local: int):
    """Global index of this shard's first vocabulary row, and the global vocabulary size."""
    return axis_offset(cfg.vocab_axis, n_local), n_local * axis_size(cfg.vocab_axis)


# --------------------------------------------------------------------------
# Recompute path: per-token losses, any cotangent.
# --------------------------------------------------------------------------


def _recompute_forward(cfg: _Cfg, x, w, b, y, valid, hp):
    v_local = w.shape[0]
    acc = _acc(cfg)
    offset, n_vocab = _vocab_offset(cfg, v_local)
    y_local = y - offset

    def body(carry, start, size):
        m, s, t, sz = carry
        w_blk = lax.dynamic_slice_in_dim(w, start, size, axis=0)
        b_blk = lax.dynamic_slice_in_dim(b, start, size, axis=0) if cfg.has_bias else None
        z = _logit_tile(cfg, x, w_blk, b_blk, hp)
        bm, bs, bt, bsz = _tile_stats(cfg, z, y_local - start)
        m, s = _merge(m, s, bm, bs)
        return m, s, t + bt, sz + bsz

    # *_like: the carries take the inputs' sharding (explicit-sharding meshes).
    tok = y.astype(acc)
    init = (
        jnp.full_like(tok, jnp.finfo(acc).min),
        jnp.zeros_like(tok),
        jnp.zeros_like(tok),
        jnp.zeros_like(tok),
    )
    init = like_inputs(init, x, w, b, y, valid)
    m, s, t, sz = _blocks(v_local, min(cfg.block, v_local), body, init)
    if cfg.vocab_axis is not None:
        gm = lax.pmax(m, cfg.vocab_axis)
        s = lax.psum(s * jnp.exp(m - gm), cfg.vocab_axis)
        m = gm
        t = lax.psum(t, cfg.vocab_axis)
        if cfg.smoothing:
            sz = lax.psum(sz, cfg.vocab_axis)
    lse = m + jnp.log(s)
    loss = _loss_from_stats(cfg, lse, t, sz, hp, n_vocab)
    zero = jnp.zeros((), acc)
    loss = jnp.where(valid, loss, zero)
    lse = jnp.where(valid, lse, zero)
    return loss, lse


def _recompute_backward(cfg: _Cfg, x, w, b, y, valid, hp, lse, g, g_lse):
    v_local = w.shape[0]
    acc = _acc(cfg)
    offset, n_vocab = _vocab_offset(cfg, v_local)
    y_local = y - offset
    zero = jnp.zeros((), acc)
    g = jnp.where(valid, g.astype(acc), zero)
    if g_lse is not None:
        g_lse = jnp.where(valid, g_lse.astype(acc), zero)
    if cfg.vocab_axis is not None and cfg.vocab_axis not in varying_axes(x):
        # shard_map(check_vma=False): the replicated output's cotangent arrives
        # split over the vocabulary shards (the transpose of the forward psum
        # would sum it back), and shard_map itself sums the hidden-gradient
        # partials. With varying-axis types (the default) ``x`` was cast to
        # varying before the custom_vjp, the cotangent arrives whole and that
        # cast's transpose sums the partials.
        g = lax.psum(g, cfg.vocab_axis)
        if g_lse is not None:
            g_lse = lax.psum(g_lse, cfg.vocab_axis)

    def body(carry, start, size):
        dx, dw, db = carry
        w_blk = lax.dynamic_slice_in_dim(w, start, size, axis=0)
        b_blk = lax.dynamic_slice_in_dim(b, start, size, axis=0) if cfg.has_bias else None
        z = _logit_tile(cfg, x, w_blk, b_blk, hp)
        dz = _dlogits(cfg, z, y_local - start, lse, g, g_lse, hp, n_vocab)
        dz_op = dz.astype(x.dtype)
        dw_blk = lax.dot_general(
            dz_op, x, (((0,), (0,)), ((), ())), preferred_element_type=acc, out_sharding=explicit_sharding(w_blk)
        )
        dw = lax.dynamic_update_slice_in_dim(dw, dw_blk.astype(dw.dtype), start, axis=0)
        dx = dx + lax.dot_general(
            dz_op, w_blk, (((1,), (0,)), ((), ())), preferred_element_type=acc, out_sharding=explicit_sharding(x)
        )
        if cfg.has_bias:
            db = lax.dynamic_update_slice_in_dim(db, jnp.sum(dz, axis=0).astype(db.dtype), start, axis=0)
        return dx, dw, db

    init = (
        jnp.zeros_like(x, dtype=acc),
        jnp.zeros_like(w),
        jnp.zeros_like(b) if cfg.has_bias else None,
    )
    init = like_inputs(init, x, w, b, y, valid, lse, g, g_lse)
    dx, dw, db = _blocks(v_local, min(cfg.block, v_local), body, init)
    return dx.astype(x.dtype), dw, db


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _lce_tokens(cfg, x, w, b, y, valid, hp):
    loss, lse = _recompute_forward(cfg, x, w, b, y, valid, hp)
    return (loss, lse) if cfg.with_lse else loss


def _lce_tokens_fwd(cfg, x, w, b, y, valid, hp):
    loss, lse = _recompute_forward(cfg, x, w, b, y, valid, hp)
    out = (loss, lse) if cfg.with_lse else loss
    return out, (x, w, b, y, valid, hp, lse)


def _lce_tokens_bwd(cfg, res, ct):
    x, w, b, y, valid, hp, lse = res
    g, g_lse = ct if cfg.with_lse else (ct, None)
    dx, dw, db = _recompute_backward(cfg, x, w, b, y, valid, hp, lse, g, g_lse)
    return dx, dw, db, None, None, jnp.zeros_like(hp)


_lce_tokens.defvjp(_lce_tokens_fwd, _lce_tokens_bwd)


# --------------------------------------------------------------------------
# In-forward path: scalar loss, gradient computed during the forward pass.
# --------------------------------------------------------------------------


def _in_forward(cfg: _Cfg, x, w, b, y, valid, hp):
    """Returns (scalar loss, dx, dw, db) for a unit cotangent."""
    n, v = x.shape[0], w.shape[0]
    acc = _acc(cfg)
    zero = jnp.zeros((), acc)
    count = jnp.sum(valid).astype(acc)
    if cfg.reduction == "mean":
        scale = 1 / jnp.maximum(count, jnp.ones((), acc))
    else:
        scale = jnp.ones((), acc)

    def body(carry, start, size):
        total, dx, dw, db = carry
        xc = lax.dynamic_slice_in_dim(x, start, size, axis=0)
        yc = lax.dynamic_slice_in_dim(y, start, size, axis=0)
        vc = lax.dynamic_slice_in_dim(valid, start, size, axis=0)
        z = _logit_tile(cfg, xc, w, b, hp)
        m, s, t, sz = _tile_stats(cfg, z, yc)
        lse = m + jnp.log(s)
        loss = _loss_from_stats(cfg, lse, t, sz, hp, v)
        total = total + jnp.sum(jnp.where(vc, loss, zero))
        g = jnp.where(vc, jnp.broadcast_to(scale, vc.shape), zero)
        dz = _dlogits(cfg, z, yc, lse, g, None, hp, v)
        dz_op = dz.astype(x.dtype)
        dxc = lax.dot_general(
            dz_op, w, (((1,), (0,)), ((), ())), preferred_element_type=acc, out_sharding=explicit_sharding(xc)
        )
        dx = lax.dynamic_update_slice_in_dim(dx, dxc.astype(dx.dtype), start, axis=0)
        dw_c = lax.dot_general(
            dz_op, xc, (((0,), (0,)), ((), ())), preferred_element_type=acc, out_sharding=explicit_sharding(w)
        )
        dw = (dw.astype(acc) + dw_c).astype(dw.dtype)  # added in float32; rounded once per chunk when bf16
        if cfg.has_bias:
            db = db + jnp.sum(dz, axis=0)
        return total, dx, dw, db

    init = (
        jnp.zeros((), acc),
        jnp.zeros_like(x),
        jnp.zeros_like(w, dtype=cfg.dw_dtype or acc),
        jnp.zeros_like(b) if cfg.has_bias else None,
    )
    init = like_inputs(init, x, w, b, y, valid)
    total, dx, dw, db = _blocks(n, min(cfg.chunk, n), body, init)
    return total * scale, dx, dw, db


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _lce_reduced(cfg, x, w, b, y, valid, hp):
    return _in_forward(cfg, x, w, b, y, valid, hp)[0]


def _lce_reduced_fwd(cfg, x, w, b, y, valid, hp):
    loss, dx, dw, db = _in_forward(cfg, x, w, b, y, valid, hp)
    return loss, (dx, dw, db, hp)


def _lce_reduced_bwd(cfg, res, g):
    # x and w share the operand dtype (dx is stored in it); dw and db are float32 accumulators.
    dx, dw, db, hp = res
    g = g.astype(cfg.acc_dtype)
    dx = (dx.astype(g.dtype) * g).astype(dx.dtype)
    dw = (dw.astype(g.dtype) * g).astype(dx.dtype)
    db = None if db is None else db * g
    return dx, dw, db, None, None, jnp.zeros_like(hp)


_lce_reduced.defvjp(_lce_reduced_fwd, _lce_reduced_bwd)


# --------------------------------------------------------------------------
# Tile sizes and the entry point
# --------------------------------------------------------------------------


def _round128(x: int) -> int:
    return max(128, (int(x) // 128) * 128)


def tile_sizes(num_tokens: int, vocab_size: int, *, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> tuple[int, int]:
    r"""Automatic ``(block_size, chunk_size)``: the largest float32 logit tiles within a byte budget.

    .. math::
        \mathrm{block} = \min\big(V,\ \max(128,\ 128\lfloor B / (4 N \cdot 128)\rfloor)\big),\qquad
        \mathrm{chunk} = \min\big(N,\ \max(128,\ 128\lfloor B / (4 V \cdot 128)\rfloor)\big)

    The vocabulary block (recompute path, tiles ``[N, block]``) and the token
    chunk (in-forward path, tiles ``[chunk, V]``) are the largest multiples of
    128 whose float32 tile (4 bytes per logit) fits the budget ``B``, never
    below 128 (small tiles are slow at large sizes) and capped at the full size.
    The ``dlogits`` tile in the operand dtype comes on top (half as much for bf16).

    Args:
      num_tokens: ``N``, the number of tokens (rows of ``hidden``).
      vocab_size: ``V``, the (local) vocabulary size (rows of ``weight``).
      memory_budget: ``B``, bytes for one float32 logit tile (default 512 MiB).

    Returns:
      ``(block_size, chunk_size)``, each at least 1.

    Paper: none (a tiling rule); the tiles follow Wijmans et al., "Cut Your
    Losses in Large-Vocabulary Language Models", 2024, arXiv:2411.09009.

    Example:
      >>> from lossjax._fused import tile_sizes
      >>> tile_sizes(8192, 128256)  # (vocab block, token chunk) for the default 512 MiB
      (16384, 1024)
    """
    block = min(_round128(memory_budget // (4 * max(num_tokens, 1))), vocab_size)
    chunk = min(_round128(memory_budget // (4 * max(vocab_size, 1))), num_tokens)
    return max(block, 1), max(chunk, 1)


def _is_concrete_nonzero(v) -> bool:
    if isinstance(v, jax.core.Tracer):
        return True
    return float(v) != 0.0


def fused_cross_entropy(
    hidden: Array,
    weight: Array,
    bias: Array | None,
    labels: Array,
    valid: Array,
    *,
    label_smoothing,
    z_loss_weight,
    logit_softcap,
    reduction: str,
    with_lse: bool,
    mode: str,
    block_size: int | None,
    chunk_size: int | None,
    memory_budget: int,
    vocab_axis_name: str | None,
) -> Array | tuple[Array, Array]:
    """The fused head on checked, flattened inputs: per-token ``(loss, lse)`` or a scalar.

    Inputs: ``hidden [N, D]``, ``weight [V, D]`` (the local rows when
    vocab-sharded), ``bias [V]`` or None, integer ``labels [N]`` (global
    indices) and the bool ``valid [N]`` of the counted tokens. Hidden rows and
    labels of uncounted tokens are replaced before any arithmetic (the first
    half of the double-``where``), so NaN/inf padding cannot leak; their loss,
    log-sum-exp and gradients are exactly 0.

    ``reduction="none"`` returns per-token losses ``[N]`` (and, with
    ``with_lse``, the per-token log-sum-exp ``[N]``) through the recompute
    path; ``"sum"``/``"mean"`` (``sum / max(count, 1)``) return a scalar
    through the path ``mode`` picks (see the module docstring). The caller
    checks the arguments.
    """
    v_local, d = weight.shape
    op_dtype = jnp.result_type(hidden.dtype, weight.dtype)
    acc = C.compute_dtype(hidden, weight)
    x = hidden.astype(op_dtype)
    w = weight.astype(op_dtype)
    y = labels.astype(jnp.int32)
    n = x.shape[0]
    # Double-where, first half: masked tokens' hidden states and labels are
    # replaced before any arithmetic, so NaN/inf padding cannot leak.
    x = jnp.where(valid[:, None], x, jnp.zeros((), x.dtype))
    y = jnp.where(valid, y, jnp.zeros((), y.dtype))

    auto_block, auto_chunk = tile_sizes(n, v_local, memory_budget=memory_budget)
    # Token chunks of at most a quarter of the tokens: the [chunk, V] tiles then stay below the naive
    # head's [N, V] logits at every size (never more temporaries than naive), and at the headline shapes
    # the budget gives 512-1024-token chunks (large chunks keep the matmuls efficient).
    auto_chunk = min(auto_chunk, _round128(n // 4))
    # In-forward (6NDV) whenever the loss is a scalar and the weight is not vocab-sharded; otherwise
    # recompute (8NDV). Its [V, D] weight-gradient accumulator is float32 when that fits the budget, else
    # in the weight's dtype (bf16: each chunk's float32 product added in float32, rounded once per chunk,
    # as Liger does; relative error ~ sqrt(N / chunk) 2^-9). mode="recompute" keeps float32 throughout.
    use_forward = reduction != "none" and (mode == "in_forward" or (mode == "auto" and vocab_axis_name is None))
    big_acc = 4 * v_local * d > memory_budget and jnp.dtype(op_dtype).itemsize < jnp.dtype(acc).itemsize
    cap = 1.0 if logit_softcap is None else logit_softcap
    hp = jnp.stack([jnp.asarray(label_smoothing, acc), jnp.asarray(z_loss_weight, acc), jnp.asarray(cap, acc)])
    cfg = _Cfg(
        block=shard_multiple(int(block_size or auto_block), w, v_local),
        chunk=shard_multiple(int(chunk_size or auto_chunk), x, n),
        has_bias=bias is not None,
        smoothing=_is_concrete_nonzero(label_smoothing),
        zloss=_is_concrete_nonzero(z_loss_weight),
        softcap=logit_softcap is not None,
        with_lse=bool(with_lse),
        reduction=reduction if use_forward else "none",
        vocab_axis=vocab_axis_name,
        acc_dtype=jnp.dtype(acc).name,
        dw_dtype=jnp.dtype(op_dtype).name if big_acc else "",
    )
    b = None if bias is None else bias.astype(acc)

    # Inside shard_map, give the differentiable inputs one varying-axis type:
    # the transpose of that cast is the psum of the local weight (token-sharded)
    # or hidden (vocab-sharded) gradient partials.
    x, w, b = like_inputs((x, w, b), x, w, b, y, valid)

    if n == 0:
        if reduction != "none":
            return jnp.zeros((), acc)
        return (jnp.zeros((0,), acc), jnp.zeros((0,), acc)) if with_lse else jnp.zeros((0,), acc)

    if use_forward:
        return _lce_reduced(cfg, x, w, b, y, valid, hp)

    out = _lce_tokens(cfg, x, w, b, y, valid, hp)
    if reduction == "none":
        return out
    loss = jnp.sum(out)
    if reduction == "mean":
        count = jnp.sum(valid).astype(acc)
        loss = loss / jnp.maximum(count, jnp.ones((), acc))
    return loss


# --------------------------------------------------------------------------
# Fused linear distillation: a divergence between a student head and a teacher head.
# --------------------------------------------------------------------------

#: Divergences of :func:`fused_distillation` between the teacher's ``p`` and the student's ``q``.
DIVERGENCES = ("kl", "reverse_kl", "jsd", "tvd")


class _DCfg(NamedTuple):
    """Static configuration of one fused distillation call."""

    block: int
    divergence: str  # kl | reverse_kl | jsd | tvd (jsd with beta in (0, 1))
    beta: float
    has_bias_s: bool
    has_bias_t: bool
    acc_dtype: str


def _scaled_tile(acc, x, w_blk, b_blk, inv_t):
    """``(x @ w_blk.T + b) / T`` with float32 (accumulator-dtype) accumulation."""
    z = lax.dot_general(x, w_blk, (((1,), (1,)), ((), ())), preferred_element_type=acc)
    if b_blk is not None:
        z = z + b_blk.astype(z.dtype)[None, :]
    return z * inv_t


def _student_teacher_tiles(cfg: _DCfg, xs, ws, bs, xt, wt, bt, hp, start, size):
    acc = jnp.dtype(cfg.acc_dtype)
    ws_blk = lax.dynamic_slice_in_dim(ws, start, size, axis=0)
    wt_blk = lax.dynamic_slice_in_dim(wt, start, size, axis=0)
    bs_blk = lax.dynamic_slice_in_dim(bs, start, size, axis=0) if cfg.has_bias_s else None
    bt_blk = lax.dynamic_slice_in_dim(bt, start, size, axis=0) if cfg.has_bias_t else None
    zs = _scaled_tile(acc, xs, ws_blk, bs_blk, hp[0])
    zt = _scaled_tile(acc, xt, wt_blk, bt_blk, hp[0])
    return ws_blk, zs, zt


def _divergence_terms(cfg: _DCfg, ls, lt):
    """Per-tile ``(sum_v loss terms, sum_v a_v, a)`` with ``a_v = d loss / d log q_v`` (q the student).

    ``ls``, ``lt``: student and teacher log-probabilities of one tile.
    """
    q, p = jnp.exp(ls), jnp.exp(lt)
    if cfg.divergence == "kl":  # KL(p || q)
        a = -p
        terms = p * (lt - ls)
    elif cfg.divergence == "reverse_kl":  # KL(q || p); a = q (log q - log p + 1)
        terms = q * (ls - lt)
        a = terms + q
    elif cfg.divergence == "jsd":  # beta KL(p || m) + (1 - beta) KL(q || m), m = beta p + (1 - beta) q
        beta = cfg.beta
        lm = jnp.logaddexp(math.log(beta) + lt, math.log1p(-beta) + ls)
        a = (1 - beta) * q * (ls - lm)
        terms = beta * p * (lt - lm) + a
    else:  # tvd: 0.5 sum |p - q|
        terms = 0.5 * jnp.abs(p - q)
        a = 0.5 * q * jnp.sign(q - p)
    return jnp.sum(terms, axis=1), jnp.sum(a, axis=1), a


def _distill_forward(cfg: _DCfg, xs, ws, bs, xt, wt, bt, valid, hp):
    v = ws.shape[0]
    acc = jnp.dtype(cfg.acc_dtype)
    size = min(cfg.block, v)
    tok = valid.astype(acc)
    neg = jnp.full_like(tok, jnp.finfo(acc).min)
    zeros = jnp.zeros_like(tok)

    def lse_body(carry, start, size):
        ms, ss, mt, st = carry
        _, zs, zt = _student_teacher_tiles(cfg, xs, ws, bs, xt, wt, bt, hp, start, size)
        ms, ss = _merge(ms, ss, jnp.max(zs, axis=1), jnp.sum(jnp.exp(zs - jnp.max(zs, axis=1)[:, None]), axis=1))
        mt, st = _merge(mt, st, jnp.max(zt, axis=1), jnp.sum(jnp.exp(zt - jnp.max(zt, axis=1)[:, None]), axis=1))
        return ms, ss, mt, st

    init = like_inputs((neg, zeros, neg, zeros), xs, ws, bs, xt, wt, bt, valid)
    ms, ss, mt, st = _blocks(v, size, lse_body, init)
    lse_s, lse_t = ms + jnp.log(ss), mt + jnp.log(st)

    def div_body(carry, start, size):
        loss, a_sum = carry
        _, zs, zt = _student_teacher_tiles(cfg, xs, ws, bs, xt, wt, bt, hp, start, size)
        d, asum, _ = _divergence_terms(cfg, zs - lse_s[:, None], zt - lse_t[:, None])
        return loss + d, a_sum + asum

    init = like_inputs((zeros, zeros), xs, ws, bs, xt, wt, bt, valid, lse_s, lse_t)
    loss, a_sum = _blocks(v, size, div_body, init)
    zero = jnp.zeros((), acc)
    return jnp.where(valid, loss, zero), (lse_s, lse_t, a_sum)


def _distill_backward(cfg: _DCfg, xs, ws, bs, xt, wt, bt, valid, hp, stats, g):
    lse_s, lse_t, a_sum = stats
    v = ws.shape[0]
    acc = jnp.dtype(cfg.acc_dtype)
    g = jnp.where(valid, g.astype(acc), jnp.zeros((), acc)) * hp[0]  # d/dz of z / T

    def body(carry, start, size):
        dx, dw, db = carry
        ws_blk, zs, zt = _student_teacher_tiles(cfg, xs, ws, bs, xt, wt, bt, hp, start, size)
        ls = zs - lse_s[:, None]
        _, _, a = _divergence_terms(cfg, ls, zt - lse_t[:, None])
        # d loss / d z_v = a_v - q_v sum_u a_u  (the log-softmax Jacobian)
        dz = g[:, None] * (a - jnp.exp(ls) * a_sum[:, None])
        dz_op = dz.astype(xs.dtype)
        dw_blk = lax.dot_general(
            dz_op, xs, (((0,), (0,)), ((), ())), preferred_element_type=acc, out_sharding=explicit_sharding(ws_blk)
        )
        dw = lax.dynamic_update_slice_in_dim(dw, dw_blk.astype(dw.dtype), start, axis=0)
        dx = dx + lax.dot_general(
            dz_op, ws_blk, (((1,), (0,)), ((), ())), preferred_element_type=acc, out_sharding=explicit_sharding(xs)
        )
        if cfg.has_bias_s:
            db = lax.dynamic_update_slice_in_dim(db, jnp.sum(dz, axis=0).astype(db.dtype), start, axis=0)
        return dx, dw, db

    init = (jnp.zeros_like(xs, dtype=acc), jnp.zeros_like(ws), jnp.zeros_like(bs) if cfg.has_bias_s else None)
    init = like_inputs(init, xs, ws, bs, xt, wt, bt, valid, lse_s, g)
    dx, dw, db = _blocks(v, min(cfg.block, v), body, init)
    return dx.astype(xs.dtype), dw, db


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _distill(cfg, xs, ws, bs, xt, wt, bt, valid, hp):
    return _distill_forward(cfg, xs, ws, bs, xt, wt, bt, valid, hp)[0]


def _distill_fwd(cfg, xs, ws, bs, xt, wt, bt, valid, hp):
    loss, stats = _distill_forward(cfg, xs, ws, bs, xt, wt, bt, valid, hp)
    return loss, (xs, ws, bs, xt, wt, bt, valid, hp, stats)


def _distill_bwd(cfg, res, g):
    xs, ws, bs, xt, wt, bt, valid, hp, stats = res
    dx, dw, db = _distill_backward(cfg, xs, ws, bs, xt, wt, bt, valid, hp, stats, g)
    # The teacher is a constant: zero cotangents for its inputs.
    return dx, dw, db, None, None, None, None, jnp.zeros_like(hp)


_distill.defvjp(_distill_fwd, _distill_bwd)


def fused_distillation(
    hidden: Array,
    weight: Array,
    bias: Array | None,
    teacher_hidden: Array,
    teacher_weight: Array,
    teacher_bias: Array | None,
    valid: Array,
    *,
    divergence: str,
    beta: float,
    temperature,
    block_size: int | None,
    memory_budget: int,
) -> Array:
    """Per-token divergences between two fused heads on checked, flattened inputs; ``[N]``.

    ``hidden [N, D]`` / ``weight [V, D]`` (+ ``bias [V]``) is the student,
    ``teacher_hidden [N, Dt]`` / ``teacher_weight [V, Dt]`` the teacher (a
    constant: its inputs get zero cotangents). Both heads' logits are divided
    by ``temperature`` and exist one vocabulary block ``[N, Vb]`` at a time:
    one streaming pass for the two log-sum-exps, one for the divergence (and
    ``sum_v d loss / d log q_v``), and the backward pass recomputes the tiles
    and forms ``dz = g (a - q sum a) / T`` per block (the weight gradient of
    each block written in place, the hidden gradient accumulated in float32).
    ``divergence``: ``"kl"`` ``KL(p || q)``, ``"reverse_kl"`` ``KL(q || p)``,
    ``"jsd"`` the generalized JSD ``beta KL(p || m) + (1 - beta) KL(q || m)``,
    ``m = beta p + (1 - beta) q`` (``beta`` strictly inside (0, 1): the
    caller maps trl's 0 and 1 to the KLs), ``"tvd"`` ``0.5 sum |p - q|``.
    Uncounted tokens (``valid`` False) have their rows replaced first and get
    exactly 0 loss and gradient. The caller checks the arguments.
    """
    v_local, _ = weight.shape
    op = jnp.result_type(hidden.dtype, weight.dtype)
    op_t = jnp.result_type(teacher_hidden.dtype, teacher_weight.dtype)
    acc = C.compute_dtype(hidden, weight, teacher_hidden, teacher_weight)
    n = hidden.shape[0]
    xs = jnp.where(valid[:, None], hidden.astype(op), jnp.zeros((), op))
    xt = jax.lax.stop_gradient(jnp.where(valid[:, None], teacher_hidden.astype(op_t), jnp.zeros((), op_t)))
    ws = weight.astype(op)
    wt = jax.lax.stop_gradient(teacher_weight.astype(op_t))
    bs = None if bias is None else bias.astype(acc)
    bt = None if teacher_bias is None else jax.lax.stop_gradient(teacher_bias.astype(acc))
    if n == 0:
        return jnp.zeros((0,), acc)
    block = block_size or tile_sizes(n, v_local, memory_budget=memory_budget)[0]
    cfg = _DCfg(
        block=shard_multiple(int(block), ws, v_local),
        divergence=divergence,
        beta=float(beta),
        has_bias_s=bs is not None,
        has_bias_t=bt is not None,
        acc_dtype=jnp.dtype(acc).name,
    )
    hp = jnp.stack([1 / jnp.asarray(temperature, acc)])
    xs, ws, bs = like_inputs((xs, ws, bs), xs, ws, bs, xt, wt, bt, valid)
    xt, wt, bt = like_inputs((xt, wt, bt), xs, ws, bs, xt, wt, bt, valid)
    return _distill(cfg, xs, ws, bs, xt, wt, bt, valid, hp)
