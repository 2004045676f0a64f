# %% [markdown]
# # Large-vocabulary cross-entropy without the logits
#
# A language model's output head computes `logits = hidden @ weight.T` (`[N, V]`) and a
# cross-entropy on them. At `N = 8192` tokens and `V = 128k` the float32 logits alone are
# 4 GiB, and autodiff keeps them (and their gradient) alive. `lossjax.losses.linear_cross_entropy`
# (per-token losses) and `lossjax.losses.reduced_linear_cross_entropy` (their mean or sum, used
# here) fuse the matmul with the loss in a `custom_vjp` that streams tiles of logits and never
# holds more than one.
#
# This notebook measures the time and the compiled temporary memory of the naive head and of the
# fused one as the vocabulary grows. The sizes come from the backend: small on CPU (or with
# `LOSSJAX_SMALL=1`), full language-model sizes on a GPU/TPU. Nothing else changes.

# %%
import os
import statistics
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import optax

from lossjax.losses import reduced_linear_cross_entropy

SMALL = os.environ.get("LOSSJAX_SMALL") == "1"
ACCEL = jax.default_backend() != "cpu" and not SMALL
if ACCEL:  # full size: bf16 operands, float32 accumulation
    N, D, VOCABS, DTYPE, ROUNDS = 8192, 2048, [16384, 32768, 65536, 131072, 262144], jnp.bfloat16, 10
    BUDGET = 512 * 2**20  # the library default
elif SMALL:  # the test suite: seconds on one CPU core
    N, D, VOCABS, DTYPE, ROUNDS = 256, 64, [1024, 2048, 8192], jnp.float32, 3
    BUDGET = 2**20  # scaled down with the problem so the tiling shows at these sizes
else:  # a CPU, by hand
    N, D, VOCABS, DTYPE, ROUNDS = 1024, 128, [2048, 8192, 32768, 65536], jnp.float32, 5
    BUDGET = 4 * 2**20
LEAN = BUDGET // 8
print(f"backend={jax.default_backend()} N={N} D={D} dtype={jnp.dtype(DTYPE).name} tile budget={BUDGET / 2**20:g} MiB")

# %% [markdown]
# ## Three heads
#
# * **naive**: one matmul materializes the logits, then optax's cross-entropy.
# * **fused (default)**: `reduced_linear_cross_entropy` (`reduction="mean"`, `mode="auto"`): the
#   gradient is computed during the forward pass over token chunks when the float32 `[V, D]`
#   weight-gradient accumulator fits the budget (6·N·D·V FLOPs, like naive), otherwise the
#   recompute path.
# * **fused (lean)**: `mode="recompute"` with a budget 8x smaller: a forward pass that streams
#   vocabulary blocks and keeps only per-token max / sum-exp / target logit, and a backward pass that
#   recomputes each block (8·N·D·V FLOPs).


# %%
def naive(h, w, y):
    logits = (h @ w.T).astype(jnp.float32)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def fused(h, w, y):
    return reduced_linear_cross_entropy(h, w, y, reduction="mean", memory_budget=BUDGET)


def lean(h, w, y):
    return reduced_linear_cross_entropy(h, w, y, reduction="mean", mode="recompute", memory_budget=LEAN)


HEADS = {"naive": naive, "fused (default)": fused, "fused (lean)": lean}


def inputs(v, seed=0):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    h = jax.random.normal(k1, (N, D), jnp.float32).astype(DTYPE)
    w = (jax.random.normal(k2, (v, D), jnp.float32) / D**0.5).astype(DTYPE)
    return h, w, jax.random.randint(k3, (N,), 0, v, jnp.int32)


# The same loss and gradients, to float32 (or bf16) accuracy. The notebook asserts it: a fused head
# whose loss or gradient is off by even 1% stops it here.
TOL = 2e-2 if DTYPE == jnp.bfloat16 else 1e-4


def rel_errors(out, ref):
    """max |out - ref| / max |ref| for the loss, dhidden and dweight."""
    return [
        float(jnp.max(jnp.abs(a.astype(jnp.float32) - b.astype(jnp.float32))) / jnp.max(jnp.abs(b.astype(jnp.float32))))
        for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(ref))
    ]


h, w, y = inputs(VOCABS[0])
ref = jax.jit(jax.value_and_grad(naive, argnums=(0, 1)))(h, w, y)
for name in ("fused (default)", "fused (lean)"):
    out = jax.jit(jax.value_and_grad(HEADS[name], argnums=(0, 1)))(h, w, y)
    errs = rel_errors(out, ref)
    print(f"{name:16s} relative error (loss, dhidden, dweight): " + ", ".join(f"{e:.1e}" for e in errs))
    assert max(errs) < TOL, f"{name} disagrees with the naive head: {errs}"

# %% [markdown]
# ## Time and compiled temporaries as the vocabulary grows
#
# Every head is compiled first; then the timings are taken in interleaved rounds (median), and the
# temporaries come from `jax.jit(f).lower(...).compile().memory_analysis().temp_size_in_bytes`.

# %%
results = {name: {"ms": [], "mib": []} for name in HEADS}
for v in VOCABS:
    args = inputs(v)
    compiled = {}
    for name, f in HEADS.items():
        compiled[name] = jax.jit(jax.value_and_grad(f, argnums=(0, 1))).lower(*args).compile()
        results[name]["mib"].append(compiled[name].memory_analysis().temp_size_in_bytes / 2**20)
        jax.block_until_ready(compiled[name](*args))
    # The curves compare like with like: at every V each head's loss and gradients equal the naive head's.
    outs = {name: exe(*args) for name, exe in compiled.items()}
    for name in HEADS:
        errs = rel_errors(outs[name], outs["naive"])
        assert max(errs) < TOL, f"V={v}: {name} disagrees with the naive head: {errs}"
    times = {name: [] for name in HEADS}
    for _ in range(ROUNDS):
        for name, exe in compiled.items():
            t0 = time.perf_counter()
            jax.block_until_ready(exe(*args))
            times[name].append(time.perf_counter() - t0)
    for name in HEADS:
        results[name]["ms"].append(1e3 * statistics.median(times[name]))
    row = "  ".join(f"{n}: {results[n]['ms'][-1]:8.1f} ms {results[n]['mib'][-1]:8.1f} MiB" for n in HEADS)
    print(f"V={v:>7d}  {row}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for name, r in results.items():
    axes[0].plot(VOCABS, r["ms"], marker="o", label=name)
    axes[1].plot(VOCABS, r["mib"], marker="o", label=name)
axes[1].plot(VOCABS, [N * v * 4 / 2**20 for v in VOCABS], "k:", label="float32 logits [N, V]")
for ax, title in zip(axes, ("forward + backward time (ms)", "compiled temporaries (MiB)")):
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("vocabulary size V")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
axes[1].legend()
fig.suptitle(f"{jax.default_backend()}: N={N}, D={D}, {jnp.dtype(DTYPE).name}")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Reading the plot
#
# * The naive head's temporaries grow like `N·V` (the logits and their gradient): the dotted line.
# * The fused heads' temporaries are bounded by the tile budget plus an accumulator: the float32
#   `[V, D]` weight gradient for the in-forward path (so its memory still grows with `V`, like the
#   gradient output itself), the float32 `[N, D]` hidden gradient for the lean path (flat in `V`).
# * Time: the default path does the same 6·N·D·V FLOPs as naive; the lean path does 8·N·D·V and
#   trades about a third more matmul work for the smallest footprint.

# %%
last = {name: (r["ms"][-1], r["mib"][-1]) for name, r in results.items()}
base_ms, base_mib = last["naive"]
for name, (ms, mib) in last.items():
    print(
        f"V={VOCABS[-1]}: {name:16s} time x{ms / base_ms:.2f} of naive, "
        f"temporaries {100 * mib / base_mib:.0f}% of naive"
    )
