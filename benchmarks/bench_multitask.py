"""Multi-loss gradients and ConFIG: cost of per-loss gradients and of combining them.

1. Shared batch (one trunk, m heads, a vector of m losses): lossjax's
   ``per_loss_value_and_grad`` (one vjp, vmap over m cotangents) vs m separate
   ``jax.grad`` calls vs ``jax.jacrev`` vs one gradient of the summed loss
   (baseline). Target: <= 1.05x the better of jacrev and m separate grads.
2. Disjoint batches (m loss callables, each with its own points, as a PINN's
   residual / boundary / initial losses): ``separate_value_and_grad`` vs
   ``jacrev`` of the stacked loss vector vs one gradient of the summed loss
   (baseline). Target: <= 1.10x the summed-loss step.
3. ConFIG's combine as m and P grow: the Gram form (two passes over the m x P
   stack) vs a least-squares solve on the m x P unit-gradient matrix in JAX,
   and vs the official ``conflictfree`` (``peer: conflictfree``: torch tensors on
   the device JAX uses, timed in the same rounds, where torch and conflictfree
   are installed; no host callback). Floor: (2m + 1) P 4 bytes.

    python benchmarks/run.py --only multitask --size small
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

import lossjax
import lossjax.multiloss as ml
from lossjax.benchmarking import Case, torch_peer


def _mlp(dims, seed=0):
    rng = np.random.default_rng(seed)
    return [
        {"w": jnp.asarray(rng.normal(size=(a, b)) / np.sqrt(a), jnp.float32), "b": jnp.zeros((b,), jnp.float32)}
        for a, b in itertools.pairwise(dims)
    ]


def _forward(params, x):
    for layer in params[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"][None, :])
    return x @ params[-1]["w"] + params[-1]["b"][None, :]


def _shared_case(size: str) -> Case:
    m = 4
    batch, dims = (256, (64, 256, 256, m)) if size == "small" else (4096, (1024, 4096, 4096, m))
    params = _mlp(dims)
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(batch, dims[0])), jnp.float32)
    y = jnp.asarray(rng.normal(size=(batch, m)), jnp.float32)

    def losses(p, x, y):
        return jnp.mean(jnp.square(_forward(p, x) - y), axis=0)  # [m]

    def per_loss(p, x, y):
        return ml.per_loss_value_and_grad(losses)(p, x, y)

    def per_loss_loop(p, x, y):
        return ml.per_loss_value_and_grad(losses, batched=False)(p, x, y)

    def separate(p, x, y):
        gs = [jax.grad(lambda q, i=i: losses(q, x, y)[i])(p) for i in range(m)]
        return jax.tree.map(lambda *a: jnp.stack(a), *gs)

    def jacrev(p, x, y):
        return jax.jacrev(losses)(p, x, y)

    def summed(p, x, y):
        return jax.grad(lambda q: jnp.sum(losses(q, x, y)))(p)

    args = (params, x, y)
    return Case(
        f"per-loss grads, shared batch (m={m}, B={batch}, MLP {dims})",
        {
            "summed": (summed, args),
            "per_loss": (per_loss, args),
            "per_loss(loop)": (per_loss_loop, args),
            "m x grad": (separate, args),
            "jacrev": (jacrev, args),
        },
        baseline="summed",
        note="target: per_loss <= 1.05x min(jacrev, m x grad); (1+2m)/3 = 3.0x a plain step at m=4",
    )


def _disjoint_case(size: str) -> Case:
    m = 3
    n, dims = (512, (2, 128, 128, 1)) if size == "small" else (16384, (2, 1024, 1024, 1024, 1))
    params = _mlp(dims)
    rng = np.random.default_rng(2)
    xs = [jnp.asarray(rng.uniform(-1, 1, size=(n, 2)), jnp.float32) for _ in range(m)]

    def make(k):
        def f(p, x):
            u = _forward(p, x)[:, 0]
            return jnp.mean(jnp.square(u - jnp.sin((k + 1) * x[:, 0])))

        return f

    funs = [make(k) for k in range(m)]

    def separate(p, *xs):
        return ml.separate_value_and_grad(funs)(p, *[(x,) for x in xs])

    def stacked(p, *xs):
        return jnp.stack([f(p, x) for f, x in zip(funs, xs, strict=True)])

    def jacrev(p, *xs):
        return jax.jacrev(stacked)(p, *xs)

    def one_entry(p, *xs):
        return jax.grad(lambda q: stacked(q, *xs)[0])(p)

    def summed(p, *xs):
        return jax.grad(lambda q: jnp.sum(stacked(q, *xs)))(p)

    args = (params, *xs)
    return Case(
        f"per-loss grads, disjoint batches (m={m} callables x {n} points, MLP {dims})",
        {
            "summed": (summed, args),
            "separate": (separate, args),
            "jacrev(stack)": (jacrev, args),
            "grad(stack[0])": (one_entry, args),
        },
        baseline="summed",
        note="target: separate <= 1.10x summed",
    )


def _config_gram(g):
    return lossjax.transforms.config_weights(lossjax.transforms.gram_matrix(g)) @ g


def _config_eigh(g):
    # The same Gram form with the m x m pseudo-inverse from the device's eigensolver (cuSOLVER on GPU):
    # what lossjax did before the in-graph solve (a fixed ~0.8 ms per call on an H200).
    G = lossjax.transforms.gram_matrix(g)
    n = jnp.sqrt(jnp.diagonal(G))
    Cu = G / (n[:, None] * n[None, :])
    alpha = jnp.linalg.pinv(Cu, hermitian=True) @ jnp.ones((g.shape[0],), g.dtype)
    Ca = Cu @ alpha
    dn = jnp.sqrt(alpha @ Ca)
    return (alpha / n * (jnp.sum(n * Ca) / dn / dn)) @ g


_CONFIG = lossjax.transforms.config()


def _config_transform(g):
    return _CONFIG.update({"w": g}, _CONFIG.init({"w": g[0]}))[0]["w"]


def _config_lstsq(g):
    norms = jnp.linalg.norm(g, axis=1, keepdims=True)
    units = jnp.where(norms > 0, g / jnp.where(norms > 0, norms, 1.0), 0.0)
    d = jnp.linalg.lstsq(units, jnp.ones((g.shape[0],), g.dtype))[0]
    dhat = d / jnp.linalg.norm(d)
    return jnp.sum(g @ dhat) * dhat


def _conflictfree_peer(stacks) -> dict:
    """The official ConFIG operator on torch tensors (the same device as JAX), where installed."""
    try:
        from conflictfree.grad_operator import ConFIGOperator
    except ImportError:
        return {}
    op = ConFIGOperator()
    peer = torch_peer(op.calculate_gradient, stacks)
    return {} if peer is None else {"peer: conflictfree": peer}


def _config_cases(size: str) -> list[Case]:
    grid = (
        [(2, 10**5), (4, 10**5), (8, 10**5), (4, 10**6)]
        if size == "small"
        else [(4, 10**6), (4, 10**7), (8, 10**7), (4, 5 * 10**7)]
    )
    out = []
    for m, P in grid:
        rng = np.random.default_rng(m)
        g = jnp.asarray(rng.normal(size=(m, P)), jnp.float32)
        g2 = jnp.asarray(rng.normal(size=(m, P)), jnp.float32)
        variants = {
            "gram": (_config_gram, [(g,), (g2,)]),
            "config() transform": (_config_transform, [(g,), (g2,)]),
            "gram + device eigh pinv": (_config_eigh, [(g,), (g2,)]),
            "lstsq m x P": (_config_lstsq, [(g,), (g2,)]),
            **_conflictfree_peer([(g,), (g2,)]),
        }
        out.append(
            Case(
                f"ConFIG combine (m={m}, P={P:.0e})",
                variants,
                baseline="gram",
                floor_bytes=(2 * m + 1) * P * 4,
                key="config-combine",
                note="gram/config(): m x m solve in the graph (no cuSOLVER); peer: conflictfree on torch "
                "tensors on the same device",
            )
        )
    return out


def cases(size: str) -> list[Case]:
    return [_shared_case(size), _disjoint_case(size), *_config_cases(size)]
