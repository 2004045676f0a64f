"""Ranking losses, forward+backward: lossjax vs a direct jnp port of rax 0.4.0's formulas.

Softmax (listwise) and pairwise logistic losses on ``B`` lists of ``L`` items
with a padding mask (about 10% of the items masked), reduced to the mean over
lists. The baseline is rax's code transcribed to jnp (``rax/_src/losses.py``:
``-inf`` fills and ``log_softmax``; ``compute_pairs`` flattening the pairs to
``[..., L*L]`` and ``safe_reduce``), applied per list with ``jax.vmap`` so that
both compute the same per-list values (checked when the cases are built).

Sizes: ``large`` is the issue's 512 lists x 1024 items; ``small`` (CPU) 64 x 256.
The floor is reading scores, labels and mask and writing the gradient.
"""

import jax
import jax.numpy as jnp
import numpy as np

import lossjax
from lossjax.benchmarking import Case


def _rax_softmax(scores, labels, where):
    """rax.softmax_loss for one list (label_fn identity, no weights/segments), mean reduction."""
    labels = jnp.where(where, labels, jnp.zeros_like(labels))
    scores = jnp.where(where, scores, -jnp.ones_like(scores) * jnp.inf)
    loss = -jnp.sum(labels * jax.nn.log_softmax(scores, axis=-1), axis=-1, where=where)
    return loss


def _compute_pairs(a, op):
    a_i, a_j = jnp.expand_dims(a, -1), jnp.expand_dims(a, -2)
    result = jnp.broadcast_to(op(a_i, a_j), jnp.broadcast_shapes(a_i.shape, a_j.shape))
    return jnp.reshape(result, (*result.shape[:-2], result.shape[-2] * result.shape[-1]))


def _rax_pairwise_logistic(scores, labels, where):
    """rax.pairwise_logistic_loss for one list: mean over valid pairs (safe_reduce)."""
    sd = _compute_pairs(scores, jnp.subtract)
    ld = _compute_pairs(labels, jnp.subtract)
    losses = jax.nn.relu(-sd) + jnp.log1p(jnp.exp(-jnp.abs(sd)))
    valid = (ld > 0) & _compute_pairs(where, jnp.logical_and)
    out = jnp.mean(losses, where=valid)
    return jnp.where(jnp.isnan(out) & ~jnp.any(jnp.isnan(losses)), 0.0, out)


def _mean_over_lists(per_list_fn):
    def loss(scores, labels, where):
        per_list = per_list_fn(scores, labels, where)
        return lossjax.masked_mean(per_list, jnp.any(where, axis=-1))

    return jax.value_and_grad(loss)


def _port(fn):
    return _mean_over_lists(jax.vmap(fn))


def _ours(fn):
    return _mean_over_lists(lambda s, y, w: fn(s, y, where=w))


def cases(size: str):
    b, n = (64, 256) if size == "small" else (512, 1024)
    inputs = []
    for seed in (1, 2):
        r = np.random.default_rng(seed)
        scores = r.normal(size=(b, n)).astype(np.float32)
        labels = r.integers(0, 5, size=(b, n)).astype(np.float32)
        where = r.random((b, n)) > 0.1
        inputs.append((jnp.asarray(scores), jnp.asarray(labels), jnp.asarray(where)))
    floor = float(b * n * (4 + 4 + 1 + 4))
    out = []
    specs = {
        "ranking_softmax_loss": (_rax_softmax, lossjax.losses.ranking_softmax_loss),
        "pairwise_logistic_loss": (_rax_pairwise_logistic, lossjax.losses.pairwise_logistic_loss),
    }
    for name, (port, ours) in specs.items():
        variants = {"rax port (jnp)": (_port(port), inputs), "lossjax": (_ours(ours), inputs)}
        ref = float(jax.jit(variants["rax port (jnp)"][0])(*inputs[0])[0])
        val = float(jax.jit(variants["lossjax"][0])(*inputs[0])[0])
        assert abs(val - ref) <= 1e-4 * max(1.0, abs(ref)), f"{name}: {val} != {ref}"
        out.append(
            Case(
                f"{name} fwd+bwd B={b} L={n}",
                variants,
                baseline="rax port (jnp)",
                floor_bytes=floor,
                note="per-list values reduced with lossjax.masked_mean; the pairwise loss is O(B L^2) compute",
            )
        )
    return out
