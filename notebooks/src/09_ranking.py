# %% [markdown]
# # Learning to rank: softmax, ListMLE, ApproxNDCG, NeuralNDCG and LambdaRank-style pairwise
#
# A generated learning-to-rank data set: every query has a list of items with feature
# vectors; a hidden linear model plus noise gives each item a real relevance, cut into
# graded labels 0-4; lists have different lengths (padding is masked with `where`).
# One small scoring MLP (Flax NNX) is trained per loss, each built from the registry
# with `lossjax.get`:
#
# * `ranking_softmax_loss` (ListNet / rax's softmax loss),
# * `listmle_loss` (Plackett-Luce likelihood of the label order),
# * `approx_ndcg_loss` (NDCG with sigmoid ranks, rax's `approx_t12n`),
# * `neural_ndcg_loss` (NeuralSort + Sinkhorn, allRank's NeuralNDCG),
# * `pairwise_logistic_loss(lambdaweight="ndcg")` (RankNet with LambdaRank's NDCG weights).
#
# Every loss returns one value per list; the training objective is the masked mean over
# the lists. We report **NDCG@10** on held-out queries with `lossjax.metrics.ndcg`.
# `LOSSJAX_SMALL=1` makes it tiny.

# %%
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from flax import nnx

import lossjax

SMALL = os.environ.get("LOSSJAX_SMALL") == "1"
QUERIES = 48 if SMALL else 600
LIST_SIZE = 12 if SMALL else 40
FEATURES = 8
STEPS = 30 if SMALL else 500
BATCH = 8 if SMALL else 32
print("backend:", jax.default_backend(), "| small:", SMALL)

# %% [markdown]
# ## Data
# Relevance `r = x . w + 0.5 * noise` per item (the hidden `w` is shared by all queries),
# graded into 5 levels by quantiles; each query keeps a random number of its items.

# %%
rng = np.random.default_rng(0)
w_true = rng.normal(size=FEATURES)
x_all = rng.normal(size=(QUERIES, LIST_SIZE, FEATURES)).astype(np.float32)
relevance = x_all @ w_true + 0.5 * rng.normal(size=(QUERIES, LIST_SIZE))
edges = np.quantile(relevance, [0.5, 0.75, 0.9, 0.97])
labels_all = np.digitize(relevance, edges).astype(np.float32)  # graded 0..4
lengths = rng.integers(LIST_SIZE // 2, LIST_SIZE + 1, size=QUERIES)
where_all = np.arange(LIST_SIZE)[None, :] < lengths[:, None]
n_train = int(0.75 * QUERIES)
train = (x_all[:n_train], labels_all[:n_train], where_all[:n_train])
test = (x_all[n_train:], labels_all[n_train:], where_all[n_train:])
print("queries", QUERIES, "items per list <=", LIST_SIZE, "label counts", np.bincount(labels_all.ravel().astype(int)))


# %% [markdown]
# ## Model and training step
# The scorer maps each item's features to one score; a list of items gives `scores [B, L]`.


# %%
class Scorer(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(FEATURES, 32, rngs=rngs)
        self.out = nnx.Linear(32, 1, rngs=rngs)

    def __call__(self, x):
        return self.out(jax.nn.relu(self.hidden(x)))[..., 0]


LOSSES = {
    "softmax": "ranking_softmax_loss",
    "ListMLE": "listmle_loss",
    "ApproxNDCG": "approx_ndcg_loss(temperature=0.5)",
    "NeuralNDCG": "neural_ndcg_loss(temperature=1.0)",
    "lambda pairwise": "pairwise_logistic_loss(lambdaweight='ndcg')",
}


def train_one(spec):
    loss_fn = lossjax.get(spec)
    model = Scorer(nnx.Rngs(0))
    opt = nnx.Optimizer(model, optax.adam(3e-3), wrt=nnx.Param)

    @nnx.jit
    def step(model, opt, x, y, w):
        def objective(model):
            per_list = loss_fn(model(x), y, where=w)
            return lossjax.masked_mean(per_list, jnp.any(w, axis=-1))

        value, grads = nnx.value_and_grad(objective)(model)
        opt.update(model, grads)
        return value

    history = []
    for t in range(STEPS):
        idx = np.random.default_rng(t).choice(n_train, BATCH, replace=False)
        history.append(float(step(model, opt, *(a[idx] for a in train))))
    x, y, w = test
    ndcg10 = lossjax.masked_mean(lossjax.metrics.ndcg(model(x), y, where=w, topn=10), jnp.any(w, -1))
    return float(ndcg10), history


results = {name: train_one(spec) for name, spec in LOSSES.items()}
x, y, w = test
random_scores = jax.random.normal(jax.random.key(1), y.shape)
baseline = float(lossjax.masked_mean(lossjax.metrics.ndcg(random_scores, y, where=w, topn=10), jnp.any(w, -1)))
oracle = float(lossjax.masked_mean(lossjax.metrics.ndcg(jnp.asarray(x @ w_true), y, where=w, topn=10), jnp.any(w, -1)))
print(f"{'loss':20s} NDCG@10")
for name, (ndcg10, _) in results.items():
    print(f"{name:20s} {ndcg10:.4f}")
print(f"{'random scores':20s} {baseline:.4f}\n{'hidden linear model':20s} {oracle:.4f}")

# %% [markdown]
# ## Training curves
# Each loss has its own scale (ApproxNDCG and NeuralNDCG are minus a smooth NDCG in
# [-1, 0]); the curves show that every objective decreases.

# %%
fig, axes = plt.subplots(1, len(results), figsize=(3.2 * len(results), 2.6))
for ax, (name, (ndcg10, hist)) in zip(axes, results.items(), strict=True):
    ax.plot(hist)
    ax.set_title(f"{name}\nNDCG@10 {ndcg10:.3f}", fontsize=9)
    ax.set_xlabel("step")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Segments: several queries in one list
# rax's `segments` pack queries of different lengths into one list (no padding): items only
# meet items of their own segment, and the list's value is the mean over its queries.
# Here two test queries packed into one list give the mean of their separate NDCG@10.

# %%
a, b = 0, 1
la, lb = int(w[a].sum()), int(w[b].sum())
packed_scores = jnp.concatenate([random_scores[a, :la], random_scores[b, :lb]])
packed_labels = jnp.concatenate([y[a, :la], y[b, :lb]])
segments = jnp.concatenate([jnp.zeros(la, jnp.int32), jnp.ones(lb, jnp.int32)])
packed = lossjax.metrics.ndcg(packed_scores, packed_labels, segments=segments, topn=10)
apart = lossjax.metrics.ndcg(random_scores[:2], y[:2], where=w[:2], topn=10)
print("packed:", float(packed), " mean of the two:", float(apart.mean()))
