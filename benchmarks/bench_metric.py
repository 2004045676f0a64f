"""Multi-similarity and supervised contrastive loss, forward+backward: lossjax vs straightforward jnp.

Three variants of each loss, all with the same value (checked when the cases
are built):

- ``lossjax``: one ``[N, N]`` similarity matmul, masked log-sum-exp.
- ``jnp matmul``: the same matmul, written as the PyTorch references are
  (float masks multiplied in, ``log(sum(mask * exp(.)))``, ``-inf`` fills).
- ``naive [N,N,D]`` (the baseline): cosine similarities by broadcasting
  ``a[:, None] * b[None]`` (an ``[N, N, D]`` temporary) and the same naive masking.

The floor is the matmul: the forward ``N^2 D`` multiply-adds and two more
for the backward, ``6 N^2 D`` FLOPs, measured in the same rounds (``floor: 3 matmuls``).

``peer: PML`` is pytorch-metric-learning's ``MultiSimilarityLoss`` (with its
``MultiSimilarityMiner(epsilon=0.1)``) and ``SupConLoss(temperature=0.1)``,
forward + ``torch.autograd.grad``, where PML is installed.
"""

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np

import lossjax
from lossjax.benchmarking import Case, torch_peer


def _normalize(x):
    return x / jnp.maximum(jnp.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _cos_broadcast(x):
    xn = _normalize(x)
    return jnp.sum(xn[:, None, :] * xn[None, :, :], axis=-1)  # [N, N, D] temporary


def _cos_matmul(x):
    xn = _normalize(x)
    return xn @ xn.T


def _ms_naive(sim_fn, alpha=2.0, beta=50.0, base=0.5, mining_margin=0.1):
    def loss(x, y):
        s = sim_fn(x)
        n = x.shape[0]
        same = (y[:, None] == y[None, :]).astype(s.dtype)
        eye = jnp.eye(n, dtype=s.dtype)
        pos = same - eye
        neg = 1.0 - same
        sd = jax.lax.stop_gradient(s)
        max_neg = jnp.max(jnp.where(neg > 0, sd, -jnp.inf), axis=1, keepdims=True)
        min_pos = jnp.min(jnp.where(pos > 0, sd, jnp.inf), axis=1, keepdims=True)
        pos = pos * (sd - mining_margin < max_neg)
        neg = neg * (sd + mining_margin > min_pos)
        pos_term = jnp.log(1.0 + jnp.sum(pos * jnp.exp(-alpha * (s - base)), axis=1)) / alpha
        neg_term = jnp.log(1.0 + jnp.sum(neg * jnp.exp(beta * (s - base)), axis=1)) / beta
        return jnp.mean(pos_term + neg_term)

    return loss


def _supcon_naive(sim_fn, temperature=0.1):
    # HobbitLong/SupContrast style: logits minus row max, exp, masks multiplied in.
    def loss(x, y):
        s = sim_fn(x) / temperature
        n = x.shape[0]
        same = (y[:, None] == y[None, :]).astype(s.dtype)
        not_self = 1.0 - jnp.eye(n, dtype=s.dtype)
        pos = same * not_self
        logits = s - jax.lax.stop_gradient(jnp.max(s, axis=1, keepdims=True))
        log_prob = logits - jnp.log(jnp.sum(jnp.exp(logits) * not_self, axis=1, keepdims=True))
        npos = jnp.sum(pos, axis=1)
        mean_log_prob = jnp.sum(pos * log_prob, axis=1) / jnp.maximum(npos, 1.0)
        has = npos > 0
        return -jnp.sum(jnp.where(has, mean_log_prob, 0.0)) / jnp.maximum(jnp.sum(has), 1)

    return loss


def _pml_peers(inputs) -> dict:
    if importlib.util.find_spec("pytorch_metric_learning") is None:
        return {}
    import torch
    from pytorch_metric_learning import losses, miners

    ms, miner = losses.MultiSimilarityLoss(alpha=2.0, beta=50.0, base=0.5), miners.MultiSimilarityMiner(epsilon=0.1)
    supcon = losses.SupConLoss(temperature=0.1)

    def ms_loss(x, y):
        y = y.long()
        return torch.autograd.grad(ms(x, y, miner(x, y)), x)

    def supcon_loss(x, y):
        return torch.autograd.grad(supcon(x, y.long()), x)

    peers = {
        name: torch_peer(fn, inputs, requires_grad=(0,))
        for name, fn in (("multi_similarity", ms_loss), ("supervised_contrastive", supcon_loss))
    }
    return {name: {"peer: PML": p} for name, p in peers.items() if p is not None}


def _matmul_floor(x, y):
    s = x @ x.T
    return s @ x, s.T @ x


def _fwd_bwd(loss):
    return jax.value_and_grad(loss)


def cases(size: str):
    n, d = (1024, 64) if size == "small" else (4096, 256)
    classes = n // 8
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(classes, d))
    inputs = []
    for seed in (1, 2):
        r = np.random.default_rng(seed)
        y = r.integers(0, classes, size=n).astype(np.int32)
        x = (centers[y] + r.normal(size=(n, d))).astype(np.float32)
        inputs.append((jnp.asarray(x), jnp.asarray(y)))

    out = []
    specs = {
        "multi_similarity": (
            lambda x, y: lossjax.losses.multi_similarity_loss(x, y),
            _ms_naive,
        ),
        "supervised_contrastive": (
            lambda x, y: lossjax.losses.supervised_contrastive_loss(x, y, temperature=0.1),
            _supcon_naive,
        ),
    }
    peers = _pml_peers(inputs)
    for name, (ours, naive) in specs.items():
        variants = {
            "naive [N,N,D] jnp": (_fwd_bwd(naive(_cos_broadcast)), inputs),
            "jnp matmul, naive masks": (_fwd_bwd(naive(_cos_matmul)), inputs),
            "lossjax": (_fwd_bwd(ours), inputs),
        }
        # Same value from all three (guards against benchmarking different losses).
        ref = float(jax.jit(ours)(*inputs[0]))
        for label, (fn, _) in variants.items():
            val = float(jax.jit(fn)(*inputs[0])[0])
            assert abs(val - ref) <= 1e-3 * max(1.0, abs(ref)), f"{name} {label}: {val} != {ref}"
        variants.update(peers.get(name, {}))
        variants["floor: 3 matmuls (6N^2D)"] = (_matmul_floor, inputs)
        out.append(
            Case(
                f"{name} fwd+bwd N={n} D={d}",
                variants,
                baseline="naive [N,N,D] jnp",
                floor_flops=6.0 * n * n * d,
                note="ratios < 1 are faster than the [N,N,D] baseline; temp mem is XLA's compiled temporaries",
            )
        )
    return out
