"""The blocked contrastive losses (lossjax._blocked) against their materialized formulas.

Blocks smaller than the batch (ragged last block), masks, label smoothing, a traced temperature and the
SigLIP bias: values and gradients equal the plain ``[N, M]`` formulas (autodiff) to float32 rounding; the
compiled temporaries hold no ``[N, N]`` buffer at large N (memory_analysis), and the matmul FLOPs counted
from the jaxpr are 4 matmuls (8 N^2 D) for one direction and for CLIP (both directions share every tile).
"""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lossjax
from lossjax import _blocked

L = lossjax.losses


def _norm(x):
    return x / jnp.sqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), 1e-24))  # finite gradient at 0


def _ce(z, pos, cols):
    """Row-wise -log softmax at the positive over the valid columns (one positive per valid row)."""
    zm = jnp.where(cols, z, -1e9)  # finite: rows with no valid column keep a finite gradient
    lse = jax.nn.logsumexp(zm, axis=-1)
    t = jnp.sum(jnp.where(pos, z, 0.0), axis=-1)
    return jnp.where(jnp.any(cols, -1), lse - t, 0.0)


def ref_infonce(a, b, t, where=None, smoothing=0.0):
    n = a.shape[0]
    v = jnp.ones(n, bool) if where is None else where
    z = _norm(a) @ _norm(b).T / t
    cols = v[:, None] & v[None, :]
    pos = jnp.eye(n, dtype=bool) & cols
    loss = _ce(z, pos, cols)
    if smoothing:
        mean = jnp.sum(jnp.where(cols, z, 0.0), -1) / jnp.maximum(jnp.sum(cols, -1), 1)
        loss = loss + smoothing * (jnp.sum(jnp.where(pos, z, 0.0), -1) - mean)
    return jnp.where(v, loss, 0.0)


def ref_clip(a, b, t, where=None, smoothing=0.0):
    return 0.5 * (ref_infonce(a, b, t, where, smoothing) + ref_infonce(b, a, t, where, smoothing))


def ref_siglip(a, b, t, bias, where=None):
    n = a.shape[0]
    v = jnp.ones(n, bool) if where is None else where
    z = _norm(a) @ _norm(b).T / t + bias
    sign = 2 * jnp.eye(n) - 1
    cols = v[:, None] & v[None, :]
    return jnp.sum(jnp.where(cols, -jax.nn.log_sigmoid(sign * z), 0.0), -1)


def ref_supcon(x, y, t, where=None):
    n = x.shape[0]
    v = jnp.ones(n, bool) if where is None else where
    z = _norm(x) @ _norm(x).T / t
    cols = v[:, None] & v[None, :]
    same = y[:, None] == y[None, :]
    pos = same & cols & ~jnp.eye(n, dtype=bool)
    pn = cols & ~jnp.eye(n, dtype=bool)
    lse = jax.nn.logsumexp(jnp.where(pn, z, -1e9), axis=-1)
    npos = jnp.sum(pos, -1)
    loss = -(jnp.sum(jnp.where(pos, z, 0.0), -1) - npos * jnp.where(npos > 0, lse, 0.0)) / jnp.maximum(npos, 1)
    loss = jnp.where(npos > 0, loss, 0.0)
    nz = jnp.sum(loss > 0)
    return jnp.sum(loss) / jnp.maximum(nz, 1)


def _data(n=11, d=5, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d)).astype(np.float32)
    b = (a + 0.7 * rng.normal(size=(n, d))).astype(np.float32)
    where = np.ones(n, bool)
    where[[2, 7]] = False
    return jnp.asarray(a), jnp.asarray(b), jnp.asarray(where)


def _close(x, y, tol=2e-5):
    for u, v in zip(jax.tree.leaves(x), jax.tree.leaves(y), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=tol, atol=tol)


def _all_losses(impl, a, b, y, w, cot, t, bias):
    """Every blocked loss (impl=True, blocks of 4 rows: a ragged last block) or its formula, summed with weights."""
    if impl:
        kw = {"where": w, "block_size": 4}
        outs = (
            L.infonce_loss(a, b, temperature=t, **kw),
            L.symmetric_infonce_loss(a, b, temperature=t, label_smoothing=0.1, **kw),
            L.sigmoid_contrastive_loss(a, b, temperature=t, bias=bias, **kw),
        )
        sup = L.supervised_contrastive_loss(a, y, temperature=t, **kw)
    else:
        a = jnp.where(w[:, None], a, 0.0)
        outs = (ref_infonce(a, b, t, w), ref_clip(a, b, t, w, 0.1), ref_siglip(a, b, t, bias, w))
        sup = ref_supcon(a, y, t, w)
    return jnp.stack([*(jnp.sum(cot * o) for o in outs), sup])


def test_blocked_equals_materialized():
    a, b, w = _data()
    a = a.at[2].set(jnp.nan)  # masked garbage never reaches a value or gradient
    y = jnp.asarray([0, 1, 0, 2, 1, 1, 0, 2, 2, 0, 1])
    cot = jnp.linspace(0.5, 1.5, a.shape[0])

    def value_and_jac(impl):  # one compile each: the vjp of the 4 losses, vmapped over one-hot cotangents
        def f(a, b, t, bias):
            out, vjp = jax.vjp(lambda *p: _all_losses(impl, *p[:2], y, w, cot, *p[2:]), a, b, t, bias)
            return out, jax.vmap(vjp)(jnp.eye(4))

        return jax.jit(f)(a, b, 0.3, -2.0)

    _close(value_and_jac(True), value_and_jac(False))


def _dot_flops(jaxpr, mult=1):
    """Matmul FLOPs (2 * output size * contraction) of a jaxpr, loop bodies times their trip count."""
    total = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            (lc, _), _ = eqn.params["dimension_numbers"]
            k = int(np.prod([eqn.invars[0].aval.shape[i] for i in lc]))
            total += mult * 2 * int(np.prod(eqn.outvars[0].aval.shape)) * k
        trip = 1
        if eqn.primitive.name == "while":
            body = eqn.params["body_jaxpr"].jaxpr
            # fori_loop: the trip count is static (upper - lower) in these loops
            trip = _trip_count(eqn)
            total += _dot_flops(body, mult * trip)
            continue
        if eqn.primitive.name == "scan":
            total += _dot_flops(eqn.params["jaxpr"].jaxpr, mult * eqn.params["length"])
            continue
        for sub in jax.core.subjaxprs(eqn) if hasattr(jax.core, "subjaxprs") else _subs(eqn):
            total += _dot_flops(sub, mult)
    return total


def _subs(eqn):
    for v in eqn.params.values():
        for p in v if isinstance(v, (tuple, list)) else (v,):
            if hasattr(p, "jaxpr") and hasattr(p.jaxpr, "eqns"):
                yield p.jaxpr
            elif hasattr(p, "eqns"):
                yield p


def _trip_count(eqn):
    cond = eqn.params["cond_jaxpr"]
    # fori_loop(0, nb, ...) lowers to a while over (i, upper, carry): the bound is a constant input
    consts = [v for v in eqn.invars[: eqn.params["cond_nconsts"] + 2]]
    del cond
    for v in consts:
        if hasattr(v, "val"):
            return int(v.val)
    raise AssertionError("non-static trip count")


@pytest.mark.parametrize("fn", ["infonce_loss", "symmetric_infonce_loss"])
def test_flops_and_no_square_buffer(fn):
    n, d, block = 2048, 8, 128
    a = jax.ShapeDtypeStruct((n, d), jnp.float32)
    f = getattr(L, fn)

    def loss(a, b):
        return jnp.mean(f(a, b, block_size=block))

    jaxpr = jax.make_jaxpr(jax.value_and_grad(loss, argnums=(0, 1)))(a, a)
    flops = _dot_flops(jaxpr.jaxpr)
    assert flops == 8 * n * n * d, flops / (n * n * d)  # 4 matmuls of 2 N^2 D (materialized: 3; two InfoNCEs: 8)
    temp = jax.jit(jax.value_and_grad(loss, argnums=(0, 1))).lower(a, a).compile().memory_analysis().temp_size_in_bytes
    assert temp < n * n * 4 // 4, (
        temp
    )  # the materialized loss keeps at least one f32 [N, N]; blocked: a few [N, 128] tiles


def test_block_size_rule():
    assert _blocked.block_size(8, 8) == 8
    assert _blocked.block_size(65536, 65536) == 1024
    assert _blocked.block_size(4096, 4096) == 4096  # small batches: one block, i.e. the materialized loss
