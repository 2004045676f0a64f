# %% [markdown]
# # lossjax quickstart
#
# A registry-built, composed loss inside a jitted Flax NNX train step with optax,
# on scikit-learn's digits (shipped with the package: no download).
# The same notebook runs unchanged on CPU, GPU and TPU.

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

SMALL = os.environ.get("LOSSJAX_SMALL") == "1"
STEPS = 60 if SMALL else 600
print("backend:", jax.default_backend(), "| devices:", jax.device_count(), "| registered:", len(lossjax.available()))

# %% [markdown]
# ## Name a loss in a config, get something to call
# A spec is plain data: a string, a dict or a weighted sum. `lossjax.get` builds ONE loss and
# returns exactly what the loss returns (per-example values), whatever its weight;
# `lossjax.compose` builds a weighted sum and always returns `(total, terms)`: the total and
# every term's value (for logging, or for the multi-loss transforms).

# %%
focal = lossjax.get("0.5 * focal_loss(gamma=2.0)")
print(focal, focal(jnp.zeros((2, 3)), jnp.array([0, 1])))  # per-example, like the loss
spec = "softmax_cross_entropy(label_smoothing=0.1) + 0.5 * focal_loss(gamma=2.0) + 1e-4 * z_loss"
loss_fn = lossjax.compose(spec)  # z_loss gets the logits only: arguments are routed by name
print(loss_fn.to_config())
print(lossjax.describe("focal_loss").splitlines()[0])

# %% [markdown]
# ## The README example: a jitted Flax NNX train step

# %%
x, y = load_digits(return_X_y=True)
x = ((x - x.mean(0)) / (x.std(0) + 1e-3)).astype(np.float32)
y = y.astype(np.int32)
x_train, y_train, x_test, y_test = x[:1400], y[:1400], x[1400:], y[1400:]

model = nnx.Sequential(nnx.Linear(64, 128, rngs=nnx.Rngs(0)), jax.nn.relu, nnx.Linear(128, 10, rngs=nnx.Rngs(1)))
optimizer = nnx.Optimizer(model, optax.adamw(3e-3), wrt=nnx.Param)


@nnx.jit
def train_step(model, optimizer, x, y):
    (loss, terms), grads = nnx.value_and_grad(lambda m: loss_fn(m(x), y), has_aux=True)(model)
    optimizer.update(model, grads)
    return loss, terms


history = []
rng = np.random.default_rng(0)
for _ in range(STEPS):
    idx = rng.integers(0, len(x_train), size=128)
    loss, terms = train_step(model, optimizer, jnp.asarray(x_train[idx]), jnp.asarray(y_train[idx]))
    history.append({"total": float(loss), **{k: float(v) for k, v in terms.items()}})

acc = float(jnp.mean(jnp.argmax(model(jnp.asarray(x_test)), -1) == y_test))
print(f"test accuracy after {STEPS} steps: {acc:.3f}")

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for key in history[0]:
    ax.plot([h[key] for h in history], label=key)
ax.set_xlabel("step")
ax.set_ylabel("loss")
ax.set_yscale("log")
ax.legend()
ax.set_title("composed loss and its terms")
plt.show()

# %% [markdown]
# ## Padding with `where`
# Masked examples contribute exactly zero loss and zero gradient, even when the padding holds NaN.

# %%
logits = model(jnp.asarray(x_test[:4]))
padded = jnp.concatenate([logits, jnp.full((2, 10), jnp.nan)])
labels = jnp.concatenate([jnp.asarray(y_test[:4]), jnp.zeros(2, jnp.int32)])
where = jnp.arange(6) < 4
ce = lossjax.losses.softmax_cross_entropy
value, grad = jax.value_and_grad(lambda z: lossjax.masked_mean(ce(z, labels, where=where), where))(padded)
print("masked mean:", float(value), "== unpadded:", float(jnp.mean(ce(logits, labels[:4]))))
print("gradient of the padding rows:", np.asarray(grad[4:]).max())
