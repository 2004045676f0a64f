"""Blocked contrastive losses: InfoNCE, CLIP, SigLIP and SupCon without the ``[N, M]`` similarity matrix.

Private and unregistered: :func:`lossjax.losses.infonce_loss`,
:func:`~lossjax.losses.symmetric_infonce_loss`,
:func:`~lossjax.losses.sigmoid_contrastive_loss` and
:func:`~lossjax.losses.supervised_contrastive_loss` call :func:`contrastive_rows`.

A contrastive loss over ``N`` queries and ``M`` keys is the large-vocabulary
cross-entropy problem with the keys as the vocabulary (PERFORMANCE.md): the
logits ``z_ij = (x_i . y_j) / tau (+ b)`` are ``N x M`` floats (16 GiB in
float32 at N = M = 65536), and autodiff keeps them and their softmax for the
backward pass. Here the keys are streamed in column blocks ``[N, Mb]``
(a ``jax.custom_vjp``):

- forward: per row a streaming log-sum-exp over the selected columns (running
  max and rescaled sum of exponentials in float32), the target logit(s), and
  for label smoothing the sum of the logits; for the symmetric (CLIP) loss the
  column statistics of each block are complete in the block (all rows are in
  it) and are written into ``[M]`` vectors;
- backward: the blocks again, each tile recomputed, ``dz`` formed from the
  carried statistics, ``dx += dz y_blk`` accumulated and ``dy_blk = dz^T x``
  written in place. 4 matmuls of ``2 N M D`` FLOPs for one direction (the
  materialized loss: 3), for CLIP also 4 (both directions share every tile;
  two separate blocked InfoNCEs would cost 8).

Temporaries are a few tiles plus ``N``/``M``-vectors and the float32 ``[N, D]``
accumulator. Block sizes come from a byte budget (:func:`block_size`): small
batches are one block, i.e. the materialized computation. The gradient is the
exact gradient of the same formula (also with respect to the temperature and
the SigLIP bias). Rows and columns that are not valid take no part in any
pair (double ``where``: masked garbage never reaches ``exp``).

Many devices: the caller gathers the keys (``all_gather``, transposed by
autodiff into a ``psum_scatter``) and passes this device's rows; the row
direction is local. The symmetric loss under ``axis_name`` is two row
directions (queries ``a`` against gathered ``b``, then ``b`` against gathered
``a``).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from lossjax._parallel import like_inputs

__all__ = ["DEFAULT_TILE_BYTES", "KINDS", "block_size", "contrastive_rows"]

Array = jax.Array

#: ``infonce`` (softplus(lse over negatives - target), optional label smoothing; ``columns`` adds the column
#: direction), ``supcon`` (SupCon "out": mean over positives of lse over positives and negatives - logit),
#: ``sigmoid`` (SigLIP: sum over valid columns of softplus(-sign * z)).
KINDS = ("infonce", "supcon", "sigmoid")

#: Bytes of one float32 ``[N, Mb]`` similarity tile (a few such tiles are live at once).
DEFAULT_TILE_BYTES = 256 * 2**20

_HI = lax.Precision.HIGHEST


def block_size(num_rows: int, num_cols: int, *, tile_bytes: int = DEFAULT_TILE_BYTES) -> int:
    """Columns per block: all of them when the float32 ``[N, M]`` tile fits ``tile_bytes``, else a multiple of 128.

    >>> block_size(8, 8), block_size(65536, 65536)
    (8, 1024)
    """
    if num_rows * num_cols * 4 <= tile_bytes:
        return max(num_cols, 1)
    return min(num_cols, max(128, 128 * (tile_bytes // (4 * max(num_rows, 1) * 128))))


class _Cfg(NamedTuple):
    kind: str
    block: int
    smoothing: float
    columns: bool


def _blocks(total: int, size: int, body, carry):
    """``carry = body(carry, start, size)`` over ``[0, total)``: full blocks in a ``fori_loop``, the rest static."""
    nb, tail = divmod(total, size)
    if nb == 1:
        carry = body(carry, 0, size)
    elif nb > 1:
        carry = lax.fori_loop(0, nb, lambda j, c: body(c, j * size, size), carry)
    if tail:
        carry = body(carry, nb * size, tail)
    return carry


def _tile(cfg: _Cfg, x, y, hp, rv, cv, rl, cl, rg, start, size):
    """Recomputes one tile: ``(y_blk, s, z, cols, pos, neg)`` for key columns ``[start, start + size)``."""
    yb = lax.dynamic_slice_in_dim(y, start, size, axis=0)
    s = lax.dot_general(x, yb, (((1,), (1,)), ((), ())), precision=_HI, preferred_element_type=x.dtype)
    z = s * hp[0]
    if cfg.kind == "sigmoid":
        z = z + hp[1]
    cvb = lax.dynamic_slice_in_dim(cv, start, size)
    clb = lax.dynamic_slice_in_dim(cl, start, size)
    cols = rv[:, None] & cvb[None, :]
    same = rl[:, None] == clb[None, :]
    if cfg.kind == "supcon":
        own = rg[:, None] == (lax.broadcasted_iota(rg.dtype, (1, size), 1) + start)
        pos = same & cols & ~own
    else:
        pos = same & cols
    neg = cols & ~same
    return yb, s, z, cols, pos, neg


def _lse_update(m, se, z, mask, axis):
    """Merges the masked ``(max, sum exp)`` of ``z`` along ``axis`` into a running pair (``-inf`` max: empty)."""
    ninf = jnp.asarray(-jnp.inf, z.dtype)
    mb = jnp.max(jnp.where(mask, z, ninf), axis=axis)
    m_new = jnp.maximum(m, mb)
    shift = jnp.where(m_new > ninf, m_new, jnp.zeros((), z.dtype))
    zs = jnp.where(mask, z - jnp.expand_dims(shift, axis), jnp.zeros((), z.dtype))
    sb = jnp.sum(jnp.where(mask, jnp.exp(zs), jnp.zeros((), z.dtype)), axis=axis)
    return m_new, se * jnp.exp(m - shift) + sb


def _lse(m, se):
    has = m > -jnp.inf
    return jnp.where(has, jnp.log(jnp.where(has, se, jnp.ones((), se.dtype))) + jnp.where(has, m, 0), 0), has


def _softplus_loss(lse, has, t, zsum, ncols, smoothing):
    """InfoNCE from its statistics: ``softplus(lse_neg - t)`` (0 without negatives) + smoothing ``a (t - mean z)``."""
    zero = jnp.zeros((), t.dtype)
    loss = jnp.where(has, jax.nn.softplus(jnp.where(has, lse - t, zero)), zero)
    if smoothing:
        loss = loss + smoothing * (t - zsum / jnp.maximum(ncols, jnp.ones((), t.dtype)))
    return loss


def _forward(cfg: _Cfg, x, y, hp, rv, cv, rl, cl, rg):
    n, total = x.shape[0], y.shape[0]
    acc = x.dtype
    vec = jnp.zeros((n,), acc)
    ninf = jnp.full((n,), -jnp.inf, acc)
    cvec = jnp.zeros((total,), acc)
    rows = (ninf, vec, vec, vec, vec, vec)  # max, sum exp, target sum, logit sum, #cols, #pos
    cols_init = (jnp.full((total,), -jnp.inf, acc), cvec, cvec, cvec, cvec) if cfg.columns else ()
    init = like_inputs((rows, cols_init), x, y, hp, rv, cv)
    zero = jnp.zeros((), acc)

    def body(carry, start, size):
        (m, se, t, zsum, nc, npos), colstats = carry
        _, _, z, cols, pos, neg = _tile(cfg, x, y, hp, rv, cv, rl, cl, rg, start, size)
        if cfg.kind == "sigmoid":
            u = jnp.where(pos, z, -z)
            t = t + jnp.sum(jnp.where(cols, jax.nn.softplus(-u), zero), axis=1)
            return (m, se, t, zsum, nc, npos), colstats
        m, se = _lse_update(m, se, z, neg if cfg.kind == "infonce" else pos | neg, 1)
        zp = jnp.where(pos, z, zero)
        t = t + jnp.sum(zp, axis=1)
        npos = npos + jnp.sum(pos, axis=1).astype(acc)
        if cfg.smoothing:
            zc = jnp.where(cols, z, zero)
            zsum = zsum + jnp.sum(zc, axis=1)
            nc = nc + jnp.sum(cols, axis=1).astype(acc)
        if cfg.columns:  # this block's columns are complete: every row is in the tile
            _, _, _, czs, cnc = colstats
            bm, bse = _lse_update(jnp.full((size,), -jnp.inf, acc), jnp.zeros((size,), acc), z, neg, 0)
            upd = [bm, bse, jnp.sum(zp, axis=0)]
            if cfg.smoothing:
                upd += [jnp.sum(zc, axis=0), jnp.sum(cols, axis=0).astype(acc)]
            colstats = tuple(lax.dynamic_update_slice_in_dim(c, u, start, axis=0) for c, u in zip(colstats, upd))
            colstats += (czs, cnc)[len(upd) - 3 :]
        return (m, se, t, zsum, nc, npos), colstats

    (m, se, t, zsum, nc, npos), colstats = _blocks(total, min(cfg.block, total), body, init)
    if cfg.kind == "sigmoid":
        return (t,), (t,)
    lse, has = _lse(m, se)
    if cfg.kind == "supcon":
        one = jnp.ones((), acc)
        loss = jnp.where(npos > 0, (npos * lse - t) / jnp.maximum(npos, one), zero)
        return (loss,), (lse, npos)
    loss = _softplus_loss(lse, has, t, zsum, nc, cfg.smoothing)
    stats = (lse, has, t, nc)
    if not cfg.columns:
        return (loss,), stats
    cm, cse, ct, czs, cnc = colstats
    clse, chas = _lse(cm, cse)
    closs = _softplus_loss(clse, chas, ct, czs, cnc, cfg.smoothing)
    return (loss, closs), (*stats, clse, chas, ct, cnc)


def _backward(cfg: _Cfg, x, y, hp, rv, cv, rl, cl, rg, stats, cts):
    n, total = x.shape[0], y.shape[0]
    acc = x.dtype
    zero, one = jnp.zeros((), acc), jnp.ones((), acc)
    g = cts[0].astype(acc)
    a = cfg.smoothing
    if cfg.kind == "infonce":
        lse, has, t, nc = stats[:4]
        w = jnp.where(has, g * jax.nn.sigmoid(jnp.where(has, lse - t, zero)), zero)
        gs = g * a / jnp.maximum(nc, one)
        if cfg.columns:
            clse, chas, ct, cnc = stats[4:]
            gc = cts[1].astype(acc)
            wc = jnp.where(chas, gc * jax.nn.sigmoid(jnp.where(chas, clse - ct, zero)), zero)
            gcs = gc * a / jnp.maximum(cnc, one)
    elif cfg.kind == "supcon":
        lse, npos = stats
        w = jnp.where(npos > 0, g / jnp.maximum(npos, one), zero)

    def body(carry, start, size):
        dx, dy, dhp = carry
        yb, s, z, cols, pos, neg = _tile(cfg, x, y, hp, rv, cv, rl, cl, rg, start, size)
        posf = pos.astype(acc)
        if cfg.kind == "sigmoid":
            u = jnp.where(pos, z, -z)
            dz = jnp.where(cols, g[:, None] * (2 * posf - 1) * -jax.nn.sigmoid(-u), zero)
        elif cfg.kind == "supcon":
            pn = pos | neg
            p = jnp.where(pn, jnp.exp(jnp.where(pn, z - lse[:, None], zero)), zero)
            dz = w[:, None] * (npos[:, None] * p - posf)
        else:
            p = jnp.where(neg, jnp.exp(jnp.where(neg, z - lse[:, None], zero)), zero)
            dz = w[:, None] * (p - posf)
            if a:
                dz = dz + a * g[:, None] * posf - gs[:, None] * cols.astype(acc)
            if cfg.columns:
                sl = functools.partial(lax.dynamic_slice_in_dim, start_index=start, slice_size=size)
                pc = jnp.where(neg, jnp.exp(jnp.where(neg, z - sl(clse)[None, :], zero)), zero)
                dz = dz + sl(wc)[None, :] * (pc - posf)
                if a:
                    dz = dz + a * sl(gc)[None, :] * posf - sl(gcs)[None, :] * cols.astype(acc)
        ds = dz * hp[0]
        dhp = dhp + jnp.stack([jnp.sum(dz * s), jnp.sum(dz)])
        dx = dx + lax.dot_general(ds, yb, (((1,), (0,)), ((), ())), precision=_HI, preferred_element_type=acc)
        dyb = lax.dot_general(ds, x, (((0,), (0,)), ((), ())), precision=_HI, preferred_element_type=acc)
        dy = lax.dynamic_update_slice_in_dim(dy, dyb.astype(dy.dtype), start, axis=0)
        return dx, dy, dhp

    init = (jnp.zeros((n, x.shape[1]), acc), jnp.zeros_like(y), jnp.zeros((2,), acc))
    init = like_inputs(init, x, y, hp, rv, cv, *cts)
    dx, dy, dhp = _blocks(total, min(cfg.block, total), body, init)
    if cfg.kind != "sigmoid":
        dhp = dhp * jnp.array([1.0, 0.0], acc)
    return dx.astype(x.dtype), dy, dhp.astype(hp.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _rows(cfg, x, y, hp, rv, cv, rl, cl, rg):
    return _forward(cfg, x, y, hp, rv, cv, rl, cl, rg)[0]


def _rows_fwd(cfg, x, y, hp, rv, cv, rl, cl, rg):
    out, stats = _forward(cfg, x, y, hp, rv, cv, rl, cl, rg)
    return out, (x, y, hp, rv, cv, rl, cl, rg, stats)


def _rows_bwd(cfg, res, cts):
    x, y, hp, rv, cv, rl, cl, rg, stats = res
    dx, dy, dhp = _backward(cfg, x, y, hp, rv, cv, rl, cl, rg, stats, cts)
    return dx, dy, dhp, None, None, None, None, None


_rows.defvjp(_rows_fwd, _rows_bwd)


def contrastive_rows(
    kind: str,
    x: Array,
    y: Array,
    *,
    inv_temperature: Array,
    bias: Array | None = None,
    row_valid: Array,
    col_valid: Array,
    row_labels: Array,
    col_labels: Array,
    row_index: Array,
    label_smoothing: float = 0.0,
    columns: bool = False,
    block: int | None = None,
) -> tuple[Array, ...]:
    """Per-row contrastive losses of rows ``x [n, D]`` against keys ``y [M, D]``, streamed over key blocks.

    ``z_ij = (x_i . y_j) * inv_temperature (+ bias for sigmoid)``; the pair
    ``(i, j)`` takes part when ``row_valid[i] & col_valid[j]``; it is positive
    when ``row_labels[i] == col_labels[j]`` (for ``supcon`` also
    ``row_index[i] != j``: not the row itself), negative otherwise. Paired
    views pass ``row_labels = row_index`` (the global row index) and
    ``col_labels = arange(M)``. Returns ``(loss_rows,)`` ``[n]`` (rows that are
    not valid, or without a positive/negative, give 0), with ``columns=True``
    (``infonce`` only, ``x`` must hold every row) also the column-direction
    loss ``[M]``: ``(loss_rows, loss_cols)``. ``x``/``y`` are in the compute
    dtype (already normalized for cosine similarities); the gradient flows to
    ``x``, ``y``, ``inv_temperature`` and ``bias``.
    """
    if kind not in KINDS:
        raise ValueError(f"contrastive_rows: `kind` must be one of {KINDS}, got {kind!r}.")
    if columns and kind != "infonce":
        raise ValueError("contrastive_rows: `columns=True` needs kind='infonce'.")
    n, total = x.shape[0], y.shape[0]
    acc = x.dtype
    if n == 0 or total == 0:
        return (jnp.zeros((n,), acc), jnp.zeros((total,), acc)) if columns else (jnp.zeros((n,), acc),)
    b = jnp.zeros((), acc) if bias is None else jnp.asarray(bias).astype(acc)
    hp = jnp.stack([jnp.asarray(inv_temperature).astype(acc), b])
    cfg = _Cfg(kind, int(block or block_size(n, total)), float(label_smoothing), bool(columns))
    rl = jnp.asarray(row_labels).astype(jnp.int32)
    cl = jnp.asarray(col_labels).astype(jnp.int32)
    rg = jnp.asarray(row_index).astype(jnp.int32)
    x, y, hp = like_inputs((x, y, hp), x, y, hp, row_valid, col_valid, rl, cl, rg)
    return _rows(cfg, x, y, hp, row_valid, col_valid, rl, cl, rg)
