"""Contrastive losses at large N, forward+backward: blocked (lossjax) vs the materialized ``[N, N]`` formula.

InfoNCE, CLIP (symmetric InfoNCE), SigLIP and SupCon over ``N`` pairs of
``D``-dimensional embeddings (float32, cosine similarities at
``Precision.HIGHEST`` in both variants: like for like).

- ``materialized jnp`` (the baseline): ``S = normalize(a) @ normalize(b).T / t``
  as one ``[N, N]`` array, the loss from it, autodiff for the gradient (which
  keeps ``S`` and its softmax for the backward pass).
- ``lossjax blocked``: the loss streamed over key blocks (lossjax._blocked, a
  custom VJP): temporaries of a few ``[N, Mb]`` tiles. 4 matmuls of
  ``2 N^2 D`` FLOPs (the materialized loss: 3), CLIP also 4 (both directions
  from the same tiles).

Sizes: ``large`` N=65536, D=512 (the materialized ``S`` alone is 16 GiB in
float32; automatic blocks of 1024 keys), ``small`` (CPU) N=4096, D=64 with
blocks of 512 keys forced, so that the blocked structure is what is timed.
The floor is the 3 matmuls of the materialized loss, ``6 N^2 D`` FLOPs, measured in the
same rounds (``floor: 3 matmuls``: ``S = a b^T``, ``S b``, ``S^T a`` at the same precision).
"""

import jax
import jax.numpy as jnp
import numpy as np

import lossjax
from lossjax.benchmarking import Case

_HI = jax.lax.Precision.HIGHEST


def _norm(x):
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _sim(a, b, t):
    return jnp.matmul(_norm(a), _norm(b).T, precision=_HI) / t


def _matmul_floor(a, b):
    s = jnp.matmul(a, b.T, precision=_HI)
    return jnp.matmul(s, b, precision=_HI), jnp.matmul(s.T, a, precision=_HI)


def _infonce(a, b, t=0.07):
    z = _sim(a, b, t)
    return jnp.mean(jax.nn.logsumexp(z, axis=1) - jnp.diagonal(z))


def _clip(a, b, t=0.07):
    z = _sim(a, b, t)
    d = jnp.diagonal(z)
    return jnp.mean(0.5 * (jax.nn.logsumexp(z, axis=1) - d + jax.nn.logsumexp(z, axis=0) - d))


def _siglip(a, b, t=0.1, bias=-10.0):
    z = _sim(a, b, t) + bias
    sign = 2.0 * jnp.eye(a.shape[0], dtype=z.dtype) - 1.0
    return jnp.mean(jnp.sum(-jax.nn.log_sigmoid(sign * z), axis=1))


def _supcon(x, y, t=0.1):
    z = _sim(x, x, t)
    n = x.shape[0]
    eye = jnp.eye(n, dtype=bool)
    pos = (y[:, None] == y[None, :]) & ~eye
    lse = jax.nn.logsumexp(jnp.where(eye, -jnp.inf, z), axis=1)
    npos = jnp.sum(pos, axis=1)
    loss = (npos * lse - jnp.sum(jnp.where(pos, z, 0.0), axis=1)) / jnp.maximum(npos, 1)
    loss = jnp.where(npos > 0, loss, 0.0)
    return jnp.sum(loss) / jnp.maximum(jnp.sum(loss > 0), 1)


def cases(size: str):
    n, d, block = (4096, 64, 512) if size == "small" else (65536, 512, None)
    rng = np.random.default_rng(0)
    a = rng.normal(size=(n, d)).astype(np.float32)
    b = (a + 0.5 * rng.normal(size=(n, d))).astype(np.float32)
    y = rng.integers(0, n // 4, size=n).astype(np.int32)
    a, b, y = jnp.asarray(a), jnp.asarray(b), jnp.asarray(y)
    L = lossjax.losses
    specs = {
        "infonce": (lambda a, b: jnp.mean(L.infonce_loss(a, b, block_size=block)), _infonce, (a, b)),
        "clip": (lambda a, b: jnp.mean(L.symmetric_infonce_loss(a, b, block_size=block)), _clip, (a, b)),
        "siglip": (lambda a, b: jnp.mean(L.sigmoid_contrastive_loss(a, b, block_size=block)), _siglip, (a, b)),
        "supcon": (lambda x, y: L.supervised_contrastive_loss(x, y, block_size=block), _supcon, (a, y)),
    }
    out = []
    for name, (ours, naive, args) in specs.items():
        argnums = (0, 1) if name != "supcon" else 0
        variants = {
            "materialized jnp": (jax.value_and_grad(naive, argnums=argnums), args),
            "lossjax blocked": (jax.value_and_grad(ours, argnums=argnums), args),
            "floor: 3 matmuls (6N^2D)": (_matmul_floor, (a, b)),
        }
        # The same value from both (guards against benchmarking different losses).
        ref, val = float(jax.jit(naive)(*args)), float(jax.jit(ours)(*args))
        assert abs(val - ref) <= 1e-4 * max(1.0, abs(ref)), f"{name}: {val} != {ref}"
        out.append(
            Case(
                f"{name} fwd+bwd N={n} D={d} f32",
                variants,
                baseline="materialized jnp",
                floor_flops=6.0 * n * n * d,
                key=f"contrastive-{name}",
                note="blocked: 4 matmuls of 2N^2D (materialized: 3); temp mem: the [N, N] arrays vs a few tiles",
            )
        )
    return out
