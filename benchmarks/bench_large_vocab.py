"""Fused linear cross-entropy vs the naive head, forward + backward, bf16 inputs.

The naive head materializes the logits with one matmul and uses optax's
cross-entropy; ``jax.value_and_grad`` with respect to hidden and weight. The
fused variants never hold more than one logit tile:

- ``lossjax default``: ``reduced_linear_cross_entropy`` (``reduction="mean"``) with every default. ``mode="auto"``
  computes the gradient during the forward pass (6 N D V FLOPs, like naive) at
  every size, in token chunks of at most a quarter of the tokens (512-1024 at
  the large sizes); the [V, D] weight-gradient accumulator is float32 when it
  fits the 512 MiB budget, else bf16 (the large GPU sizes; Liger's choice).
- ``lossjax default, 4GiB budget``: the same with a float32 weight-gradient
  accumulator and 2048-token chunks at the large sizes (more memory).
- ``lossjax in_forward, budget``: the in-forward path with a small tile budget
  (token chunks), to show the memory it saves at sizes a CPU can run.
- ``lossjax lean``: ``mode="recompute"`` with a small budget (vocabulary blocks):
  temporaries = one tile + N-vectors + the float32 [N, D] hidden-gradient accumulator.

Peers (rows only where PyTorch and the library are installed, on the device JAX uses; timed in the
same rounds, never through a host callback): ``peer: torch naive`` (bf16 matmul, float32 logits,
``F.cross_entropy``, ``torch.autograd.grad``), ``peer: Liger fused`` (``liger_kernel``'s
``LigerFusedLinearCrossEntropyLoss``, CUDA only) and ``peer: CCE`` (Apple's ``cut_cross_entropy``
``linear_cross_entropy`` with its defaults, which filter small gradient entries, so lossy; CUDA only).

Floor: 6 N D V FLOPs, measured in the same rounds as ``floor: 3 matmuls (6NDV)``:
the forward and the two gradient matmuls alone, bf16 (``x floor`` column).
"""

import importlib.util

import jax
import jax.numpy as jnp
import optax

from lossjax.benchmarking import Case, torch_peer
from lossjax.losses import linear_distillation_loss, reduced_linear_cross_entropy

CPU_NOTE = (
    "On CPU, XLA upcasts bf16 dots to f32 and hoists an f32 copy of the whole weight (4VD bytes) out of the"
    " fused loops; GPU/TPU dots take bf16 operands and have no such copy."
)

SIZES = {
    "small": [(1024, 256, 16384), (512, 128, 65536)],
    "large": [(8192, 4096, 128256), (16384, 2048, 256000)],
}
#: The fused linear JSD case (issue 14): student and teacher heads of one hidden size.
JSD_SIZES = {"small": [(1024, 256, 16384)], "large": [(8192, 4096, 128256)]}


def naive(hidden, weight, labels):
    logits = (hidden @ weight.T).astype(jnp.float32)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def matmul_floor(hidden, weight, labels):
    """The three matmuls of the loss and its gradient alone (6 N D V FLOPs): the compute floor."""
    logits = hidden @ weight.T
    return logits @ weight, logits.T @ hidden


def fused_default(hidden, weight, labels):
    return reduced_linear_cross_entropy(hidden, weight, labels, reduction="mean")


def _budget(size):
    return (16 if size == "small" else 64) * 2**20


def fused_in_forward(budget):
    def f(hidden, weight, labels):
        return reduced_linear_cross_entropy(
            hidden, weight, labels, reduction="mean", mode="in_forward", memory_budget=budget
        )

    return f


def fused_lean(budget):
    def f(hidden, weight, labels):
        return reduced_linear_cross_entropy(
            hidden, weight, labels, reduction="mean", mode="recompute", memory_budget=budget
        )

    return f


def _grad(loss):
    return jax.value_and_grad(loss, argnums=(0, 1))


def _inputs(n, d, v, seed):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    hidden = jax.random.normal(k1, (n, d), jnp.bfloat16)
    weight = (jax.random.normal(k2, (v, d), jnp.float32) / d**0.5).astype(jnp.bfloat16)
    labels = jax.random.randint(k3, (n,), 0, v, jnp.int32)
    return hidden, weight, labels


def torch_peers(inputs) -> dict:
    """The PyTorch implementations installed here, as :class:`~lossjax.benchmarking.Peer` variants."""
    if importlib.util.find_spec("torch") is None:
        return {}
    import torch
    import torch.nn.functional as F

    def naive_torch(h, w, y):
        loss = F.cross_entropy((h @ w.T).float(), y.long())
        return torch.autograd.grad(loss, (h, w))

    impls = {"peer: torch naive": naive_torch}
    on_cuda = jax.default_backend() == "gpu" and torch.cuda.is_available()
    if on_cuda and importlib.util.find_spec("liger_kernel") is not None:
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

        liger = LigerFusedLinearCrossEntropyLoss()

        def liger_fused(h, w, y):
            return torch.autograd.grad(liger(w, h, y.long()), (h, w))

        impls["peer: Liger fused"] = liger_fused
    if on_cuda and importlib.util.find_spec("cut_cross_entropy") is not None:
        from cut_cross_entropy import linear_cross_entropy

        def cce(h, w, y):
            return torch.autograd.grad(linear_cross_entropy(h, w, y.long()), (h, w))

        impls["peer: CCE"] = cce
    peers = {label: torch_peer(fn, inputs, requires_grad=(0, 1)) for label, fn in impls.items()}
    return {label: p for label, p in peers.items() if p is not None}


def cases(size: str):
    out = []
    for n, d, v in SIZES[size]:
        inputs = [_inputs(n, d, v, s) for s in (0, 1)]
        mib = _budget(size) // 2**20
        variants = {
            "naive (matmul + optax CE)": (_grad(naive), inputs),
            "lossjax default": (_grad(fused_default), inputs),
            "lossjax default, 4GiB budget": (_grad(fused_in_forward(4 * 2**30)), inputs),
            f"lossjax in_forward {mib}MiB": (_grad(fused_in_forward(_budget(size))), inputs),
            f"lossjax lean {mib}MiB": (_grad(fused_lean(_budget(size))), inputs),
            "floor: 3 matmuls (6NDV)": (matmul_floor, inputs),
            **torch_peers(inputs),
        }
        out.append(
            Case(
                f"linear CE fwd+bwd bf16 N={n} D={d} V={v}",
                variants,
                baseline="naive (matmul + optax CE)",
                floor_flops=6.0 * n * d * v,
                note=f"6NDV = {6.0 * n * d * v / 1e9:.1f} GFLOP; naive f32 logits = {n * v * 4 / 2**20:.0f} MiB. "
                + CPU_NOTE,
            )
        )
    return out + jsd_cases(size)


# ------------------------- fused linear JSD distillation (trl GKD's beta) -------------------------


def naive_jsd(hidden, weight, teacher_hidden, teacher_weight, beta=0.5):
    """Both heads' float32 logits materialized, trl GKD's generalized JSD per token, mean."""
    zs = (hidden @ weight.T).astype(jnp.float32)
    zt = jax.lax.stop_gradient((teacher_hidden @ teacher_weight.T).astype(jnp.float32))
    ls, lt = jax.nn.log_softmax(zs, -1), jax.nn.log_softmax(zt, -1)
    lm = jnp.logaddexp(lt + jnp.log(beta), ls + jnp.log1p(-beta))
    jsd = beta * jnp.sum(jnp.exp(lt) * (lt - lm), -1) + (1 - beta) * jnp.sum(jnp.exp(ls) * (ls - lm), -1)
    return jnp.mean(jsd)


def jsd_matmul_floor(hidden, weight, teacher_hidden, teacher_weight):
    """Student and teacher logits and the student's two gradient matmuls alone (8 N D V FLOPs)."""
    logits = hidden @ weight.T
    return logits @ weight, logits.T @ hidden, teacher_hidden @ teacher_weight.T


def fused_jsd(budget=None):
    def f(hidden, weight, teacher_hidden, teacher_weight):
        kw = {} if budget is None else {"memory_budget": budget}
        return jnp.mean(
            linear_distillation_loss(hidden, weight, teacher_hidden, teacher_weight, divergence="jsd", **kw)
        )

    return f


def _jsd_inputs(n, d, v, seed):
    hidden, weight, _ = _inputs(n, d, v, seed)
    teacher_hidden, teacher_weight, _ = _inputs(n, d, v, seed + 7)
    return hidden, weight, teacher_hidden, teacher_weight


def jsd_cases(size: str):
    out = []
    for n, d, v in JSD_SIZES[size]:
        inputs = [_jsd_inputs(n, d, v, s) for s in (0, 1)]
        mib = _budget(size) // 2**20
        variants = {
            "naive (2 matmuls + JSD)": (_grad(naive_jsd), inputs),
            "lossjax default": (_grad(fused_jsd()), inputs),
            f"lossjax {mib}MiB": (_grad(fused_jsd(_budget(size))), inputs),
            "floor: 4 matmuls (8NDV)": (jsd_matmul_floor, inputs),
        }
        out.append(
            Case(
                f"linear JSD distillation fwd+bwd bf16 N={n} D={d} V={v}",
                variants,
                baseline="naive (2 matmuls + JSD)",
                key="jsd",
                # naive: student + teacher logits, dW and dx: 4 matmuls = 8 N D V (the floor); fused: both heads'
                # tiles in the log-sum-exp pass, again in the divergence pass and in the backward, + dW, dx = 16 N D V
                floor_flops=8.0 * n * d * v,
                note=f"naive f32 logits (student + teacher) = {2 * n * v * 4 / 2**20:.0f} MiB; the fused head "
                "streams two log-sum-exp passes and one divergence pass over vocabulary blocks and recomputes "
                "both heads' tiles in the backward (16 N D V FLOPs vs 8). " + CPU_NOTE,
            )
        )
    return out
