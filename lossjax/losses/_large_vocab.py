"""Large-vocabulary cross-entropy: the loss of ``hidden @ weight.T`` without the ``[N, V]`` logits.

In a language model the output head is where memory goes: for ``N`` tokens,
hidden size ``D`` and vocabulary ``V`` the logits and their gradient are
``N x V`` floats each, often larger than the rest of the model's activations.
:func:`linear_cross_entropy` fuses the head's matmul with the cross-entropy and
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
    (per-token weights, DPO/PPO-style users, ``return_lse``).

``"in_forward"`` (fast; needs a scalar loss: ``reduction="mean"`` or ``"sum"``)
    The gradient is computed during the forward pass over token chunks
    ``[Nc, V]``: logit tile, log-sum-exp, ``softmax - targets``, then the
    chunk's hidden gradient and a float32 weight-gradient accumulator. The
    backward pass only scales by the (scalar) cotangent. 6 N D V FLOPs, the
    same as the naive head; temporaries are one tile plus the float32
    ``[V, D]`` accumulator.

``"auto"`` (default) picks ``"in_forward"`` when the loss is a scalar, the
weight is not vocab-sharded and the float32 ``[V, D]`` accumulator fits the
byte budget (``memory_budget``, default 512 MiB), else ``"recompute"`` (e.g. at
V=128k, D=4096 the accumulator alone is 2 GiB: recompute, whose extra 2 N D V
FLOPs cost less than streaming a 2 GiB accumulator through every token chunk).
Tile sizes come from the same budget as multiples of 128 (a float32 tile of at
most ``memory_budget`` bytes) and can be overridden with ``block_size`` /
``chunk_size``. Memory-lean setting: ``mode="recompute"`` with a small budget
(e.g. 64 MiB).

Sharding: with tokens sharded (``shard_map`` over the token axis, weight
replicated) each device runs the fused loss on its tokens and the weight
gradient partials are summed by ``shard_map``'s transpose; under plain
``jit`` with sharded inputs the SPMD partitioner does the same, on
auto-sharded meshes and on explicit ones (``jax.set_mesh``; there, block and
chunk sizes are rounded up to whole shards). With a
vocab-sharded weight pass ``vocab_axis_name``: each device streams its local
vocabulary blocks and the per-token statistics are combined with ``pmax`` /
``psum`` (never a ``dynamic_slice`` of a sharded weight, which would
all-gather it every step).

Matmul operands stay in the input dtype (bf16 stays bf16) with
``preferred_element_type=float32``; the softmax math is float32; ``dlogits``
are cast back to the operand dtype before the two gradient matmuls. The
target logit is selected by comparing an iota with ``label - block_start``
(no gather or scatter on the vocabulary axis).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from lossjax import _checks as C
from lossjax._parallel import explicit_sharding, like_inputs, shard_multiple, varying_axes
from lossjax.registry import Sample, register

__all__ = ["linear_cross_entropy"]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

_MODES = ("auto", "in_forward", "recompute")
_REDUCTIONS = ("none", "mean", "sum")
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
    return_lse: bool
    reduction: str  # "sum" or "mean" (in-forward path only)
    vocab_axis: str | None
    acc_dtype: str  # float32 (float64 for float64 inputs under x64)


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

    loss = lse - (1-a) z_y - (a/V) sum_v z_v + zl * lse^2, (and g_lse * lse)
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
    if cfg.vocab_axis is None:
        return 0, n_local
    return lax.axis_index(cfg.vocab_axis) * n_local, n_local * lax.psum(1, cfg.vocab_axis)


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
    return (loss, lse) if cfg.return_lse else loss


def _lce_tokens_fwd(cfg, x, w, b, y, valid, hp):
    loss, lse = _recompute_forward(cfg, x, w, b, y, valid, hp)
    out = (loss, lse) if cfg.return_lse else loss
    return out, (x, w, b, y, valid, hp, lse)


def _lce_tokens_bwd(cfg, res, ct):
    x, w, b, y, valid, hp, lse = res
    g, g_lse = ct if cfg.return_lse else (ct, None)
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
        dw = dw + lax.dot_general(
            dz_op, xc, (((0,), (0,)), ((), ())), preferred_element_type=acc, out_sharding=explicit_sharding(w)
        )
        if cfg.has_bias:
            db = db + jnp.sum(dz, axis=0)
        return total, dx, dw, db

    init = (
        jnp.zeros((), acc),
        jnp.zeros_like(x),
        jnp.zeros_like(w, dtype=acc),
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
    g = g.astype(dw.dtype)
    dx = (dx.astype(dw.dtype) * g).astype(dx.dtype)
    dw = (dw * g).astype(dx.dtype)
    db = None if db is None else db * g
    return dx, dw, db, None, None, jnp.zeros_like(hp)


_lce_reduced.defvjp(_lce_reduced_fwd, _lce_reduced_bwd)


# --------------------------------------------------------------------------
# Public function
# --------------------------------------------------------------------------


def _round128(x: int) -> int:
    return max(128, (int(x) // 128) * 128)


def tile_sizes(num_tokens: int, vocab_size: int, *, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> tuple[int, int]:
    """Automatic ``(block_size, chunk_size)``: the largest float32 logit tiles within a byte budget.

    The vocabulary block (recompute path, tiles ``[N, block]``) and the token
    chunk (in-forward path, tiles ``[chunk, V]``) are the largest multiples of
    128 whose float32 tile (4 bytes per logit) fits ``memory_budget``, never
    below 128 (small tiles are slow at large sizes) and capped at the full size.
    The ``dlogits`` tile in the operand dtype comes on top (half as much for bf16).

    Example:
      >>> from lossjax.losses._large_vocab import tile_sizes
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


def _sample() -> Sample:
    rng = np.random.default_rng(0)
    n, d, v = 6, 4, 5
    hidden = rng.normal(size=(n, d)).astype(np.float32)
    weight = (rng.normal(size=(v, d)) * 0.7).astype(np.float32)
    labels = rng.integers(0, v, size=(n,)).astype(np.int32)
    # block_size=2 exercises the streaming loop and its remainder block.
    return Sample(
        args=(hidden, weight, labels),
        kwargs={"block_size": 2},
        diff_argnums=(0, 1),
        batched_argnums=(0, 2),
    )


@register(
    "linear_cross_entropy",
    aliases=("fused_linear_cross_entropy", "chunked_cross_entropy"),
    family="language",
    kind="per_example",
    formula="l_i = LSE_v(c tanh(h_i.w_v/c) + b_v) - z_{i,y_i} (+ z_loss LSE^2, label smoothing), streamed over blocks",
    paper="Cut Your Losses in Large-Vocabulary Language Models (2024, arXiv:2411.09009)",
    reference="naive: log_softmax(hidden @ weight.T) cross-entropy (torch.nn.functional.cross_entropy); "
    "apple/ml-cross-entropy cut_cross_entropy/cce.py; linkedin/Liger-Kernel fused_linear_cross_entropy",
    sample=_sample,
    runtime=("bias",),
)
def linear_cross_entropy(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    ignore_index: int | None = -100,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    logit_softcap: float | None = None,
    reduction: str = "none",
    return_lse: bool = False,
    mode: str = "auto",
    block_size: int | None = None,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    vocab_axis_name: str | None = None,
    where: ArrayLike | None = None,
) -> Array | tuple[Array, Array]:
    r"""Cross-entropy of ``hidden @ weight.T`` without materializing the ``[N, V]`` logits.

    .. math::
        z_{iv} = c \tanh\!\big((h_i^\top w_v + b_v)/c\big),\qquad
        \mathrm{lse}_i = \log\textstyle\sum_v e^{z_{iv}},

        \ell_i = \mathrm{lse}_i - (1-a)\,z_{i y_i} - \tfrac{a}{V}\textstyle\sum_v z_{iv}
                 + \lambda_z\,\mathrm{lse}_i^2

    (no cap when ``logit_softcap`` is None; ``a`` is the label smoothing,
    ``lambda_z`` the PaLM z-loss coefficient). Tokens whose label equals
    ``ignore_index`` or whose ``where`` is False get exactly 0 loss and 0
    gradient. The logits exist only one tile at a time, in the forward and in
    the backward pass; see the module docstring for the two gradient
    strategies.

    Args:
      hidden: ``[..., D]`` final hidden states (any float dtype; bf16 stays
        bf16 in the matmuls, with float32 accumulation).
      weight: ``[V, D]`` output embedding (classifier) matrix.
      labels: ``[...]`` integer targets in ``[0, V)`` or ``ignore_index``.
      bias: optional ``[V]`` output bias.
      ignore_index: label value of tokens to ignore (PyTorch's ``-100``); None ignores none.
      label_smoothing: ``a`` in ``[0, 1)``, mixes the target with the uniform
        distribution over the ``V`` classes.
      z_loss: coefficient of the auxiliary ``lse^2`` term (PaLM: ``1e-4``).
      logit_softcap: ``c > 0``: logits become ``c * tanh(logits / c)`` (Gemma 2).
      reduction: ``"none"`` (per-token losses, the default), ``"sum"``, or
        ``"mean"`` (over non-ignored tokens, ``sum / max(count, 1)``).
      return_lse: also return the per-token log-sum-exp (``[...]``, 0 for
        ignored tokens), differentiable.
      mode: ``"auto"``, ``"in_forward"`` (6NDV; scalar reductions only) or
        ``"recompute"`` (8NDV, least memory).
      block_size: vocabulary block of the recompute path (default: from
        ``memory_budget``; multiples of 128 recommended).
      chunk_size: token chunk of the in-forward path (default: from ``memory_budget``).
      memory_budget: bytes for one float32 logit tile (default 512 MiB), used
        to pick the block and chunk sizes (see :func:`tile_sizes`); ``"auto"``
        uses the in-forward path only if its float32 ``[V, D]`` weight-gradient
        accumulator also fits. A smaller budget is the memory-lean setting.
      vocab_axis_name: name of a ``shard_map`` axis over which ``weight`` (and
        ``bias``) are sharded along the vocabulary; ``labels`` are global
        indices and ``hidden`` is replicated over that axis. Each shard streams
        its local blocks; the log-sum-exp is combined with ``pmax``/``psum`` and
        the hidden gradient with one ``psum``. Needs ``mode`` ``"auto"`` or
        ``"recompute"``.
      where: optional boolean mask broadcastable to ``labels.shape``.

    Sequence-level losses (DPO, KTO, ...) get per-token log-likelihoods
    ``log p(y_t) = -linear_cross_entropy(hidden, weight, labels)`` (no smoothing,
    no z-loss) with gradients for any per-token cotangent, through the same
    fused path.

    Returns:
      Per-token losses ``labels.shape`` (``reduction="none"``) or a scalar;
      with ``return_lse=True`` the pair ``(loss, lse)``. float32 for
      half-precision inputs.

    Paper: Wijmans, Huval, Hertzberg, Koltun, Krähenbühl, "Cut Your Losses in
    Large-Vocabulary Language Models", 2024, arXiv:2411.09009; z-loss: Chowdhery
    et al., "PaLM", 2022, arXiv:2204.02311; soft-capping: Gemma Team, "Gemma 2",
    2024, arXiv:2408.00118.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> hidden = jnp.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
      >>> weight = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
      >>> labels = jnp.array([0, 1, -100])
      >>> lossjax.losses.linear_cross_entropy(hidden, weight, labels).round(4)
      Array([0.5514, 0.2395, 0.    ], dtype=float32)
      >>> float(lossjax.losses.linear_cross_entropy(hidden, weight, labels, reduction="sum").round(4))
      0.791
    """
    fn = "linear_cross_entropy"
    hidden = C.check_array(fn, "hidden", hidden, min_ndim=1, dtype="float")
    weight = C.check_array(fn, "weight", weight, ndim=2, dtype="float")
    labels = C.check_array(fn, "labels", labels, dtype="int")
    if weight.shape[1] != hidden.shape[-1]:
        raise ValueError(
            f"{fn}: `weight` must have shape (V, D) with D = hidden.shape[-1] = {hidden.shape[-1]}, "
            f"got weight.shape={weight.shape}."
        )
    if labels.shape != hidden.shape[:-1]:
        raise ValueError(f"{fn}: `labels` must have shape hidden.shape[:-1]={hidden.shape[:-1]}, got {labels.shape}.")
    v_local, d = weight.shape
    if v_local == 0:
        raise ValueError(f"{fn}: `weight` must have at least one row (vocabulary entry), got shape {weight.shape}.")
    C.check_in_range(fn, "label_smoothing", label_smoothing, 0.0, 1.0, high_inclusive=False)
    C.check_positive(fn, "z_loss", z_loss, allow_zero=True)
    if logit_softcap is not None:
        C.check_positive(fn, "logit_softcap", logit_softcap)
    C.check_one_of(fn, "reduction", reduction, _REDUCTIONS)
    C.check_one_of(fn, "mode", mode, _MODES)
    if ignore_index is not None and (not isinstance(ignore_index, (int, np.integer)) or isinstance(ignore_index, bool)):
        raise TypeError(f"{fn}: `ignore_index` must be a Python int or None, got {ignore_index!r}.")
    for arg, val in (("block_size", block_size), ("chunk_size", chunk_size), ("memory_budget", memory_budget)):
        if val is not None and (not isinstance(val, (int, np.integer)) or isinstance(val, bool) or val <= 0):
            raise ValueError(f"{fn}: `{arg}` must be a positive int, got {val!r}.")
    if vocab_axis_name is not None and mode == "in_forward":
        raise ValueError(
            f"{fn}: `mode='in_forward'` does not support a vocab-sharded weight (vocab_axis_name="
            f"{vocab_axis_name!r}); use mode='recompute' or 'auto'."
        )
    if mode == "in_forward" and (reduction == "none" or return_lse):
        raise ValueError(
            f"{fn}: `mode='in_forward'` needs a scalar loss (reduction 'mean' or 'sum') and return_lse=False, "
            f"got reduction={reduction!r}, return_lse={return_lse!r}."
        )

    batch_shape = labels.shape
    mask = C.prepare_where(fn, where, batch_shape)
    op_dtype = jnp.result_type(hidden.dtype, weight.dtype)
    acc = C.compute_dtype(hidden, weight)
    x = jnp.reshape(hidden.astype(op_dtype), (-1, d))
    w = weight.astype(op_dtype)
    y = jnp.reshape(labels, (-1,)).astype(jnp.int32)
    n = x.shape[0]
    b = None
    if bias is not None:
        b = C.check_array(fn, "bias", bias, shape=(v_local,), dtype="float")
    valid = jnp.ones(y.shape, bool) if ignore_index is None else y != ignore_index
    if mask is not None:
        valid = valid & jnp.reshape(mask, (-1,))
    if vocab_axis_name is None:  # a vocab-sharded weight only knows its local rows
        C.debug_check(
            jnp.all(((y >= 0) & (y < v_local)) | ~valid),
            f"{fn}: labels must lie in [0, {v_local}) or equal ignore_index={ignore_index}",
        )
    # Double-where, first half: masked tokens' hidden states and labels are
    # replaced before any arithmetic, so NaN/inf padding cannot leak.
    x = jnp.where(valid[:, None], x, jnp.zeros((), x.dtype))
    y = jnp.where(valid, y, jnp.zeros((), y.dtype))

    auto_block, auto_chunk = tile_sizes(n, v_local, memory_budget=memory_budget)
    # In-forward (6NDV) needs a scalar cotangent, and its float32 [V, D] weight-
    # gradient accumulator must fit the budget; otherwise recompute (8NDV).
    use_forward = mode == "in_forward" or (
        mode == "auto"
        and reduction != "none"
        and not return_lse
        and vocab_axis_name is None
        and 4 * v_local * d <= memory_budget
    )
    cap = 1.0 if logit_softcap is None else logit_softcap
    hp = jnp.stack([jnp.asarray(label_smoothing, acc), jnp.asarray(z_loss, acc), jnp.asarray(cap, acc)])
    cfg = _Cfg(
        block=shard_multiple(int(block_size or auto_block), w, v_local),
        chunk=shard_multiple(int(chunk_size or auto_chunk), x, n),
        has_bias=b is not None,
        smoothing=_is_concrete_nonzero(label_smoothing),
        zloss=_is_concrete_nonzero(z_loss),
        softcap=logit_softcap is not None,
        return_lse=bool(return_lse),
        reduction=reduction if use_forward else "none",
        vocab_axis=vocab_axis_name,
        acc_dtype=jnp.dtype(acc).name,
    )
    if b is not None:
        b = b.astype(acc)

    # Inside shard_map, give the differentiable inputs one varying-axis type:
    # the transpose of that cast is the psum of the local weight (token-sharded)
    # or hidden (vocab-sharded) gradient partials.
    x, w, b = like_inputs((x, w, b), x, w, b, y, valid)

    if n == 0:
        zero_loss = jnp.zeros(batch_shape, acc) if reduction == "none" else jnp.zeros((), acc)
        return (zero_loss, jnp.zeros(batch_shape, acc)) if return_lse else zero_loss

    if use_forward:
        return _lce_reduced(cfg, x, w, b, y, valid, hp)

    out = _lce_tokens(cfg, x, w, b, y, valid, hp)
    loss, lse = out if return_lse else (out, None)
    loss = jnp.reshape(loss, batch_shape)
    if reduction == "sum":
        loss = jnp.sum(loss)
    elif reduction == "mean":
        count = jnp.sum(valid).astype(acc)
        loss = jnp.sum(loss) / jnp.maximum(count, jnp.ones((), acc))
    if return_lse:
        return loss, jnp.reshape(lse, batch_shape)
    return loss
