# %% [markdown]
# # Segmentation losses on generated shapes: CE vs Dice vs Dice+CE vs focal Tversky vs clDice
#
# No downloads: every image is drawn here. Three classes, channels-last (`[B, H, W, C]`):
#
# - **0 background**;
# - **1 blobs**: filled circles and squares;
# - **2 wires**: thin segments one pixel wide, about 1 pixel in 50 (the rare, thin class).
#
# A small Flax NNX U-Net is trained with five losses from `lossjax.losses`, all on the same
# data, steps and optimizer:
#
# | loss | call |
# |---|---|
# | CE | `softmax_cross_entropy(logits, labels)` (per pixel, averaged) |
# | Dice | `dice_loss(logits, labels)` (per image, averaged) |
# | Dice+CE | `dice_ce_loss(logits, labels)` (MONAI's `DiceCELoss`, nnU-Net's default) |
# | focal Tversky | `focal_tversky_loss(logits, labels, alpha=0.3, beta=0.7, gamma=0.75)` |
# | clDice | `cldice_loss(logits, labels, alpha=0.5)` (soft skeletons: topology of thin structures) |
#
# We report the per-class Dice of the hard predictions on held-out images and show the
# predictions. Runs unchanged on CPU, GPU and TPU; `LOSSJAX_SMALL=1` makes it tiny (the test suite).

# %%
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from flax import nnx

import lossjax

L = lossjax.losses
SMALL = os.environ.get("LOSSJAX_SMALL") == "1"
SIZE = 24 if SMALL else 64
N_TRAIN = 32 if SMALL else 512
N_TEST = 8 if SMALL else 128
STEPS = 40 if SMALL else 1500
BATCH = 8 if SMALL else 32
WIDTH = 8 if SMALL else 24
print("backend:", jax.default_backend(), "| small:", SMALL)

# %% [markdown]
# ## Data: blobs and wires


# %%
def draw(rng, size):
    """One image (3 noisy channels that hint at the classes) and its label map."""
    yy, xx = np.mgrid[:size, :size]
    label = np.zeros((size, size), np.int32)
    for _ in range(rng.integers(1, 4)):  # blobs
        cy, cx = rng.integers(4, size - 4, 2)
        r = rng.integers(2, max(3, size // 8))
        if rng.random() < 0.5:
            label[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
        else:
            label[(abs(yy - cy) <= r) & (abs(xx - cx) <= r)] = 1
    for _ in range(rng.integers(1, 3)):  # wires: thin straight segments
        y0, x0 = rng.integers(size // 4, 3 * size // 4, 2)
        angle = rng.uniform(0, np.pi)
        t = np.arange(-0.3 * size, 0.3 * size, 0.5)
        ly = np.clip(np.round(y0 + t * np.sin(angle)).astype(int), 0, size - 1)
        lx = np.clip(np.round(x0 + t * np.cos(angle)).astype(int), 0, size - 1)
        label[ly, lx] = 2
    image = np.stack([label == 1, label == 2, np.zeros_like(label, bool)], -1).astype(np.float32)
    image = 0.6 * image + 0.35 * rng.normal(size=image.shape).astype(np.float32)
    return image, label


def dataset(seed, n):
    rng = np.random.default_rng(seed)
    xs, ys = zip(*(draw(rng, SIZE) for _ in range(n)), strict=True)
    return np.stack(xs), np.stack(ys)


x_train, y_train = dataset(0, N_TRAIN)
x_test, y_test = dataset(1, N_TEST)
freq = np.bincount(y_train.ravel(), minlength=3) / y_train.size
print(
    "class frequencies (background, blobs, wires):",
    freq.round(4),
    "| wires : background = 1 :",
    round(freq[0] / max(freq[2], 1e-9)),
)

# %% [markdown]
# ## A small U-Net (Flax NNX)


# %%
class Block(nnx.Module):
    def __init__(self, cin, cout, rngs):
        self.c1 = nnx.Conv(cin, cout, kernel_size=(3, 3), rngs=rngs)
        self.c2 = nnx.Conv(cout, cout, kernel_size=(3, 3), rngs=rngs)

    def __call__(self, x):
        return jax.nn.relu(self.c2(jax.nn.relu(self.c1(x))))


class UNet(nnx.Module):
    def __init__(self, width, rngs):
        self.down1 = Block(3, width, rngs)
        self.down2 = Block(width, 2 * width, rngs)
        self.mid = Block(2 * width, 2 * width, rngs)
        self.up2 = Block(4 * width, width, rngs)
        self.up1 = Block(2 * width, width, rngs)
        self.head = nnx.Conv(width, 3, kernel_size=(1, 1), rngs=rngs)

    def __call__(self, x):
        d1 = self.down1(x)
        d2 = self.down2(nnx.max_pool(d1, (2, 2), strides=(2, 2)))
        m = self.mid(nnx.max_pool(d2, (2, 2), strides=(2, 2)))
        u2 = self.up2(jnp.concatenate([jax.image.resize(m, d2.shape, "nearest"), d2], -1))
        u1 = self.up1(jnp.concatenate([jax.image.resize(u2, d1.shape[:-1] + u2.shape[-1:], "nearest"), d1], -1))
        return self.head(u1)  # logits [B, H, W, 3]


# %% [markdown]
# ## Five losses, one training loop

# %%
LOSSES = {
    "CE": lambda z, y: jnp.mean(L.softmax_cross_entropy(z, y)),
    "Dice": lambda z, y: jnp.mean(L.dice_loss(z, y)),
    "Dice+CE": lambda z, y: jnp.mean(L.dice_ce_loss(z, y)),
    "focal Tversky": lambda z, y: jnp.mean(L.focal_tversky_loss(z, y, alpha=0.3, beta=0.7, gamma=0.75)),
    "clDice": lambda z, y: jnp.mean(L.cldice_loss(z, y, alpha=0.5)),
}


def train(loss_fn):
    model = UNet(WIDTH, nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adam(1e-2 if SMALL else 3e-3), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, xb, yb):
        loss, grads = nnx.value_and_grad(lambda m: loss_fn(m(xb), yb))(model)
        optimizer.update(model, grads)
        return loss

    order = np.random.default_rng(2)
    history = []
    for _ in range(STEPS):
        idx = order.choice(N_TRAIN, BATCH, replace=False)
        history.append(float(step(model, optimizer, jnp.asarray(x_train[idx]), jnp.asarray(y_train[idx]))))
    return model, history


def per_class_dice(model, xs, ys):
    """Hard Dice 2|A∩B| / (|A| + |B|) per class over the test set."""
    pred = np.asarray(jnp.argmax(model(jnp.asarray(xs)), -1))
    out = []
    for c in range(3):
        a, b = pred == c, ys == c
        out.append(2 * np.sum(a & b) / max(np.sum(a) + np.sum(b), 1))
    return np.array(out)


models, curves, scores = {}, {}, {}
for name, fn in LOSSES.items():
    models[name], curves[name] = train(fn)
    scores[name] = per_class_dice(models[name], x_test, y_test)
    print(
        f"{name:14s} Dice  background {scores[name][0]:.3f}  blobs {scores[name][1]:.3f}  wires {scores[name][2]:.3f}"
    )

# %% [markdown]
# Every training curve must go down and stay finite (a check that runs in the suite):

# %%
for name, h in curves.items():
    assert np.mean(h[-5:]) < np.mean(h[:5]), name
    assert np.isfinite(h).all(), name

# %% [markdown]
# ## Per-class Dice and predictions
#
# The region losses (Dice, Dice+CE, focal Tversky) weigh the rare wires like the background;
# plain CE sees them as 2% of the pixels. clDice adds a term on the soft skeletons, which
# rewards keeping the wires connected.

# %%
fig, axes = plt.subplots(1, 2 + len(models), figsize=(3 * (2 + len(models)), 3))
k = 0
axes[0].imshow(np.clip(x_test[k] * 0.8 + 0.2, 0, 1))
axes[0].set_title("input")
axes[1].imshow(y_test[k], vmin=0, vmax=2, cmap="viridis")
axes[1].set_title("labels")
for ax, (name, model) in zip(axes[2:], models.items(), strict=True):
    ax.imshow(np.asarray(jnp.argmax(model(jnp.asarray(x_test[k : k + 1])), -1))[0], vmin=0, vmax=2, cmap="viridis")
    ax.set_title(f"{name}\nwires Dice {scores[name][2]:.2f}")
for ax in axes:
    ax.axis("off")
plt.tight_layout()
plt.show()

fig, ax = plt.subplots(figsize=(7, 3))
names = list(scores)
for c, label in enumerate(("background", "blobs", "wires")):
    ax.bar(np.arange(len(names)) + 0.27 * (c - 1), [scores[n][c] for n in names], width=0.27, label=label)
ax.set_xticks(np.arange(len(names)), names)
ax.set_ylabel("test Dice")
ax.legend()
plt.tight_layout()
plt.show()
