# %% [markdown]
# # Classification, long-tail and noisy-label losses
#
# 1. **Loss and gradient as a function of the margin** $m = z_y - \max_{j\ne y} z_j$ for
#    cross-entropy and the losses that modify it (focal, poly-1, GCE, LDAM, encouraging,
#    NCE+RCE, LDR-KL).
# 2. **A small long-tailed experiment**: scikit-learn's digits subsampled to a 1:100
#    imbalance (exponential profile), a Flax NNX MLP trained in a jitted step with optax,
#    comparing cross-entropy, focal, LDAM, logit-adjusted and class-balanced cross-entropy
#    by per-class accuracy on a balanced test set.
#
# Runs unchanged on CPU, GPU and TPU; `LOSSJAX_SMALL=1` makes it tiny.

# %%
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from flax import nnx
from sklearn.datasets import load_digits

import lossjax
from lossjax import losses as L

SMALL = os.environ.get("LOSSJAX_SMALL") == "1"
STEPS = 150 if SMALL else 2000
print("backend:", jax.default_backend(), "| small:", SMALL)

# %% [markdown]
# ## 1. Loss and gradient versus the margin
# Ten classes; the target logit is $m$ and the others are 0, so the margin is exactly $m$.
# LDAM treats the target as a tail class (margin $\Delta_y = 0.5$, `scale = 1` on these raw logits).
# The gradient is $d\ell/dm$ (one `jax.grad`, `vmap`ped over the grid).

# %%
C = 10
COUNTS = np.array([1] + [100] * (C - 1))  # the target class (0) is the rarest
LABEL = jnp.array([0])


def logits_at(m):
    return jnp.zeros((1, C)).at[0, 0].set(m)


curves = {
    "cross-entropy": lambda z: L.softmax_cross_entropy(z, LABEL),
    "focal (gamma=2)": lambda z: L.focal_loss(z, LABEL, gamma=2.0),
    "poly-1 (coef=2)": lambda z: L.poly1_cross_entropy(z, LABEL, poly_coefficient=2.0),
    "GCE (q=0.7)": lambda z: L.generalized_cross_entropy(z, LABEL, q=0.7),
    "LDAM (scale=1)": lambda z: L.ldam_loss(z, LABEL, class_counts=COUNTS, scale=1.0),
    "encouraging": lambda z: L.encouraging_loss(z, LABEL),
    "NCE+RCE": lambda z: L.nce_rce_loss(z, LABEL),
    "LDR-KL": lambda z: L.label_distributionally_robust_loss(z, LABEL),
}
grid = jnp.linspace(-6.0, 6.0, 61 if SMALL else 241)
fig, (ax_l, ax_g) = plt.subplots(1, 2, figsize=(12, 4.5))
for name, f in curves.items():
    per_m = lambda m, f=f: f(logits_at(m))[0]  # noqa: E731
    values, grads = jax.jit(jax.vmap(jax.value_and_grad(per_m)))(grid)
    assert np.all(np.isfinite(np.asarray(values))) and np.all(np.isfinite(np.asarray(grads))), name
    ax_l.plot(grid, values, label=name)
    ax_g.plot(grid, grads, label=name)
ax_l.set(xlabel="margin z_y - max_j z_j", ylabel="loss", title="loss", ylim=(-0.5, 9))
ax_g.set(xlabel="margin z_y - max_j z_j", ylabel="d loss / d margin", title="gradient")
ax_l.legend(fontsize=8)
ax_g.axhline(0, color="k", lw=0.5)
plt.tight_layout()
plt.show()

# %% [markdown]
# Bounded losses (GCE, NCE+RCE) flatten for very negative margins: a confidently
# mislabeled example stops pulling the model, which is why they resist label noise. Focal
# and poly-1 change the weight of easy examples (large margins); LDAM shifts
# cross-entropy to the right by the class's margin.

# %% [markdown]
# ## 2. Long-tailed digits (1:100, exponential profile)
# A balanced test set of 30 images per class is held out; the training set keeps
# $n_c = 100 \cdot 100^{-c/9}$ images of class $c$ (100 down to 1).

# %%
x, y = load_digits(return_X_y=True)
x = ((x - x.mean(0)) / (x.std(0) + 1e-3)).astype(np.float32)
y = y.astype(np.int32)
rng = np.random.default_rng(0)
test_idx, train_pool = [], []
for c in range(C):
    idx = rng.permutation(np.nonzero(y == c)[0])
    test_idx.append(idx[:30])
    train_pool.append(idx[30:])
n_max = 100  # every class has >= 140 training images, so the head class keeps 100
counts = np.round(n_max * (0.01 ** (np.arange(C) / (C - 1)))).astype(int)
train_idx = np.concatenate([p[:n] for p, n in zip(train_pool, counts)])
test_idx = np.concatenate(test_idx)
x_train, y_train = jnp.asarray(x[train_idx]), jnp.asarray(y[train_idx])
x_test, y_test = jnp.asarray(x[test_idx]), y[test_idx]
print("train counts per class:", counts.tolist(), "| imbalance", counts.max() / counts.min())
print("train:", len(train_idx), "| test (balanced):", len(test_idx))

# %% [markdown]
# The losses, configured from the registry or as plain functions. Class-balanced CE
# uses effective-number weights (`class_balanced_weights`, beta = 0.999). LDAM is meant for
# cosine logits with `scale = 30`; with this MLP's raw logits we use `scale = 1` and `max_margin = 1`.

# %%
cb_weights = L.class_balanced_weights(counts, beta=0.999)
print("class-balanced weights:", " ".join(f"{w:.3f}" for w in np.asarray(cb_weights)))
candidates = {
    "cross-entropy": lossjax.get("softmax_cross_entropy"),
    "focal": lossjax.get("focal_loss(gamma=2.0)"),
    "LDAM": lambda z, t: L.ldam_loss(z, t, class_counts=counts, max_margin=1.0, scale=1.0),
    "logit-adjusted CE": lambda z, t: L.logit_adjusted_cross_entropy(z, t, class_priors=counts),
    "class-balanced CE": lambda z, t: L.softmax_cross_entropy(z, t, class_weights=cb_weights),
}


def train(loss_fn, seed=0):
    model = nnx.Sequential(
        nnx.Linear(64, 64, rngs=nnx.Rngs(seed)), jax.nn.relu, nnx.Linear(64, C, rngs=nnx.Rngs(seed + 1))
    )
    optimizer = nnx.Optimizer(model, optax.adam(3e-3), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, xb, yb):
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean(loss_fn(m(xb), yb)))(model)
        optimizer.update(model, grads)
        return loss

    batch_rng = np.random.default_rng(seed)
    for _ in range(STEPS):
        idx = batch_rng.integers(0, len(train_idx), size=64)
        step(model, optimizer, x_train[idx], y_train[idx])
    pred = np.asarray(jnp.argmax(model(x_test), axis=-1))
    return np.array([np.mean(pred[y_test == c] == c) for c in range(C)])


per_class = {name: train(fn) for name, fn in candidates.items()}

# %%
header = f"{'loss':<20}" + "".join(f"{c:>6}" for c in range(C)) + f"{'mean':>8}{'tail 5':>8}"
print(header)
print("-" * len(header))
for name, acc in per_class.items():
    print(f"{name:<20}" + "".join(f"{a:>6.2f}" for a in acc) + f"{acc.mean():>8.3f}{acc[5:].mean():>8.3f}")
print("\nclass counts:       " + "".join(f"{n:>6}" for n in counts))

# %%
fig, ax = plt.subplots(figsize=(12, 4))
width = 0.8 / len(per_class)
for k, (name, acc) in enumerate(per_class.items()):
    ax.bar(np.arange(C) + k * width - 0.4 + width / 2, acc, width, label=name)
ax.set_xticks(np.arange(C), [f"{c}\n(n={n})" for c, n in zip(range(C), counts)])
ax.set(ylabel="test accuracy", title="per-class accuracy, balanced test set (train 1:100)", ylim=(0, 1.05))
ax.legend(fontsize=8, ncol=5, loc="lower left")
plt.tight_layout()
plt.show()

# %% [markdown]
# Cross-entropy and focal loss favour the head classes; logit adjustment, LDAM and
# class-balanced weights move accuracy to the tail classes (the last columns), at a small
# cost on the head. With `LOSSJAX_SMALL=1` training is short and the numbers are noisy.
