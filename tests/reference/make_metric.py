"""Golden values for lossjax.losses._metric (metric learning / contrastive).

Run once (not at test time): ``python tests/reference/make_metric.py``.
Writes ``tests/reference/metric.json`` with the inputs, the loss values and the
gradients with respect to the embeddings, from:

- pytorch-metric-learning 2.9.0 (``pip install --no-deps pytorch-metric-learning``),
  torch 2.13.0 (CPU), float64: contrastive, triplet (+ BatchHardMiner,
  TripletMarginMiner), lifted structure, N-pairs, multi-similarity
  (+ MultiSimilarityMiner), circle, SupCon, NT-Xent;
- optax: ``optax.ntxent``, ``optax.triplet_margin_loss``;
- torch ``cross_entropy`` for paired InfoNCE and the CLIP loss (open_clip's
  ``ClipLoss`` is exactly this two-way cross-entropy);
- faithful torch ports (no installable package) of: the SigLIP loss from
  google-research/big_vision ``trainers/proj/image_text/siglip.py``; the
  Soft-InfoNCE branch of Alex-HaochenLi/Soft-InfoNCE ``CodeBERT/models.py``;
  CWCL from the paper's equation (no official code).
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_metric_learning import distances, losses, miners

torch.set_default_dtype(torch.float64)
HERE = pathlib.Path(__file__).resolve().parent

rng = np.random.default_rng(20261122)
N, D = 12, 6
X = rng.normal(size=(N, D))
LABELS = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 1, 0])  # class 3 is a singleton
# A clustered batch, so that miners and margins have something to choose.
CENTERS = rng.normal(size=(4, D))
XC = CENTERS[LABELS] + 0.6 * rng.normal(size=(N, D))
B = 8
QA = rng.normal(size=(B, D))
QB = QA + 0.7 * rng.normal(size=(B, D))
PRIOR = rng.normal(size=(B, B))
TA, TP, TN = (rng.normal(size=(N, D)) for _ in range(3))

cases = []


def value_and_grad(fn, *arrays):
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts)
    total = out.sum()
    grads = torch.autograd.grad(total, ts, allow_unused=True)
    return out.detach().numpy(), [np.zeros_like(a) if g is None else g.numpy() for a, g in zip(arrays, grads)]


def add(loss, name, kwargs, inputs, fn, reference):
    float_keys = [k for k in inputs if k not in ("labels", "prior")]
    val, grads = value_and_grad(fn, *[inputs[k] for k in float_keys])
    cases.append(
        {
            "loss": loss,
            "name": name,
            "kwargs": kwargs,
            "inputs": {k: np.asarray(v).tolist() for k, v in inputs.items()},
            "value": np.asarray(val).tolist(),
            "grads": {k: g.tolist() for k, g in zip(float_keys, grads)},
            "reference": reference,
        }
    )


def labelled(loss, name, kwargs, fn, reference, x=XC):
    labels = torch.tensor(LABELS)
    add(loss, name, kwargs, {"embeddings": x, "labels": LABELS}, lambda e: fn(e, labels), reference)


PML = "pytorch-metric-learning 2.9.0"
sq = dict(power=2)

# ------------------------------ pairs --------------------------------------
labelled("pairwise_contrastive_loss", "default", {}, losses.ContrastiveLoss(), f"{PML} ContrastiveLoss()", x=X)
labelled(
    "pairwise_contrastive_loss",
    "margins_squared",
    {"pos_margin": 0.2, "neg_margin": 1.5, "metric": "squared_euclidean"},
    losses.ContrastiveLoss(pos_margin=0.2, neg_margin=1.5, distance=distances.LpDistance(**sq)),
    f"{PML} ContrastiveLoss(pos_margin=0.2, neg_margin=1.5, distance=LpDistance(power=2))",
    x=X,
)
labelled(
    "pairwise_contrastive_loss",
    "unnormalized",
    {"neg_margin": 4.0, "normalize": False},
    losses.ContrastiveLoss(neg_margin=4.0, distance=distances.LpDistance(normalize_embeddings=False)),
    f"{PML} ContrastiveLoss(neg_margin=4, distance=LpDistance(normalize_embeddings=False))",
)

# ------------------------------ triplets -----------------------------------
for margin in (0.05, 0.5):
    labelled(
        "batch_triplet_loss",
        f"all_m{margin}",
        {"margin": margin},
        losses.TripletMarginLoss(margin=margin),
        f"{PML} TripletMarginLoss(margin={margin})",
        x=X,
    )
labelled(
    "batch_triplet_loss",
    "all_unnormalized_squared",
    {"margin": 2.0, "normalize": False, "metric": "squared_euclidean"},
    losses.TripletMarginLoss(margin=2.0, distance=distances.LpDistance(normalize_embeddings=False, power=2)),
    f"{PML} TripletMarginLoss(margin=2, distance=LpDistance(normalize_embeddings=False, power=2))",
)


def with_miner(loss_fn, miner):
    def f(e, labels):
        return loss_fn(e, labels, miner(e, labels))

    return f


for margin in (0.2, 1.0):
    labelled(
        "batch_triplet_loss",
        f"hard_m{margin}",
        {"margin": margin, "mining": "hard"},
        with_miner(losses.TripletMarginLoss(margin=margin), miners.BatchHardMiner()),
        f"{PML} TripletMarginLoss(margin={margin}) + BatchHardMiner()",
        x=X,
    )
    labelled(
        "batch_triplet_loss",
        f"semihard_m{margin}",
        {"margin": margin, "mining": "semihard"},
        with_miner(
            losses.TripletMarginLoss(margin=margin),
            miners.TripletMarginMiner(margin=margin, type_of_triplets="semihard"),
        ),
        f"{PML} TripletMarginLoss(margin={margin}) + TripletMarginMiner(margin={margin}, 'semihard')",
        x=X,
    )

# ------------------------------ lifted, n-pairs ------------------------------
labelled("lifted_structure_loss", "default", {}, losses.LiftedStructureLoss(), f"{PML} LiftedStructureLoss()", x=X)
labelled(
    "lifted_structure_loss",
    "unnormalized",
    {"neg_margin": 3.0, "pos_margin": 0.5, "normalize": False},
    losses.LiftedStructureLoss(
        neg_margin=3.0, pos_margin=0.5, distance=distances.LpDistance(normalize_embeddings=False)
    ),
    f"{PML} LiftedStructureLoss(neg_margin=3, pos_margin=0.5, distance=LpDistance(normalize_embeddings=False))",
)
labelled("npair_loss", "default", {}, losses.NPairsLoss(), f"{PML} NPairsLoss()", x=XC)
labelled(
    "npair_loss",
    "unnormalized",
    {"normalize": False},
    losses.NPairsLoss(distance=distances.DotProductSimilarity(normalize_embeddings=False)),
    f"{PML} NPairsLoss(distance=DotProductSimilarity(normalize_embeddings=False))",
    x=0.5 * XC,
)

# ------------------------------ similarity-weighted ------------------------
labelled(
    "multi_similarity_loss",
    "mined",
    {},
    with_miner(losses.MultiSimilarityLoss(), miners.MultiSimilarityMiner(epsilon=0.1)),
    f"{PML} MultiSimilarityLoss() + MultiSimilarityMiner(epsilon=0.1)",
)
labelled(
    "multi_similarity_loss",
    "all_pairs",
    {"epsilon": None, "alpha": 2.0, "beta": 40.0, "base": 0.5},
    losses.MultiSimilarityLoss(alpha=2, beta=40, base=0.5),
    f"{PML} MultiSimilarityLoss(alpha=2, beta=40, base=0.5), no miner",
)
labelled(
    "multi_similarity_loss",
    "mined_eps0.3",
    {"epsilon": 0.3},
    with_miner(losses.MultiSimilarityLoss(), miners.MultiSimilarityMiner(epsilon=0.3)),
    f"{PML} MultiSimilarityLoss() + MultiSimilarityMiner(epsilon=0.3)",
    x=X,
)
labelled("circle_loss", "default", {}, losses.CircleLoss(), f"{PML} CircleLoss(m=0.4, gamma=80)")
labelled(
    "circle_loss",
    "face",
    {"margin": 0.25, "gamma": 256.0},
    losses.CircleLoss(m=0.25, gamma=256),
    f"{PML} CircleLoss(m=0.25, gamma=256)",
    x=X,
)
for t in (0.1, 0.5):
    labelled(
        "supervised_contrastive_loss",
        f"t{t}",
        {"temperature": t},
        losses.SupConLoss(temperature=t),
        f"{PML} SupConLoss(temperature={t})",
    )
for t in (0.07, 0.5):
    labelled("ntxent_loss", f"t{t}", {"temperature": t}, losses.NTXentLoss(temperature=t), f"{PML} NTXentLoss({t})")

# optax.ntxent on the same batch (float32 JAX; recorded as a second reference).
import jax  # noqa: E402
import optax  # noqa: E402

jax.config.update("jax_enable_x64", True)
for t in (0.07, 0.5):
    val, grad = jax.value_and_grad(lambda e, t=t: optax.losses.ntxent(e, jax.numpy.asarray(LABELS), temperature=t))(XC)
    cases.append(
        {
            "loss": "ntxent_loss",
            "name": f"optax_t{t}",
            "kwargs": {"temperature": t},
            "inputs": {"embeddings": XC.tolist(), "labels": LABELS.tolist()},
            "value": float(val),
            "grads": {"embeddings": np.asarray(grad).tolist()},
            "reference": f"optax {optax.__version__} ntxent(temperature={t}), float64",
        }
    )
for margin, deg in ((1.0, 2), (0.3, 3)):

    def f(a, p, n, margin=margin, deg=deg):
        return optax.losses.triplet_margin_loss(a, p, n, margin=margin, norm_degree=deg)

    val = f(TA, TP, TN)
    grads = jax.grad(lambda a, p, n, f=f: f(a, p, n).sum(), argnums=(0, 1, 2))(TA, TP, TN)
    cases.append(
        {
            "loss": "triplet_margin_loss",
            "name": f"optax_m{margin}_q{deg}",
            "kwargs": {"margin": margin, "norm_degree": float(deg)},
            "inputs": {"anchors": TA.tolist(), "positives": TP.tolist(), "negatives": TN.tolist()},
            "value": np.asarray(val).tolist(),
            "grads": {k: np.asarray(g).tolist() for k, g in zip(("anchors", "positives", "negatives"), grads)},
            "reference": f"optax {optax.__version__} triplet_margin_loss(margin={margin}, norm_degree={deg}), float64",
        }
    )
# optax's norm has no absolute value: (a - p)**3 can be negative. Inputs where
# every difference is positive make the q=3 case well defined for both.
cases[-1]["note"] = "q=3 uses |a-p|; optax uses (a-p) without abs, so inputs with a > p > 0 elementwise are compared"
TA3 = np.abs(TA) + 2.0
TP3 = TA3 - np.abs(TP) * 0.5
TN3 = TA3 - np.abs(TN)
f3 = lambda a, p, n: optax.losses.triplet_margin_loss(a, p, n, margin=0.3, norm_degree=3)  # noqa: E731
grads3 = jax.grad(lambda a, p, n: f3(a, p, n).sum(), argnums=(0, 1, 2))(TA3, TP3, TN3)
cases[-1].update(
    {
        "inputs": {"anchors": TA3.tolist(), "positives": TP3.tolist(), "negatives": TN3.tolist()},
        "value": np.asarray(f3(TA3, TP3, TN3)).tolist(),
        "grads": {k: np.asarray(g).tolist() for k, g in zip(("anchors", "positives", "negatives"), grads3)},
    }
)


# ------------------------------ paired views --------------------------------
def paired(loss, name, kwargs, fn, reference, extra=None):
    inputs = {"a": QA, "b": QB}
    if extra:
        inputs.update(extra)
    add(loss, name, kwargs, inputs, fn, reference)


def infonce_ref(q, k, t=0.07, cosine=True):
    if cosine:
        q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    return F.cross_entropy(q @ k.T / t, torch.arange(q.shape[0]), reduction="none")


paired("infonce_loss", "cosine_t0.07", {"temperature": 0.07}, infonce_ref, "torch cross_entropy(cos/t, arange)")
paired(
    "infonce_loss",
    "dot_t2",
    {"temperature": 2.0, "metric": "dot"},
    lambda q, k: infonce_ref(q, k, 2.0, cosine=False),
    "torch cross_entropy(q k^T/t, arange)",
)


def clip_ref(a, b, t=0.07, ls=0.0):
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    y = torch.arange(a.shape[0])
    s = a @ b.T / t
    return 0.5 * (
        F.cross_entropy(s, y, reduction="none", label_smoothing=ls)
        + F.cross_entropy(s.T, y, reduction="none", label_smoothing=ls)
    )


paired("symmetric_infonce_loss", "t0.07", {"temperature": 0.07}, clip_ref, "open_clip ClipLoss == two-way torch CE")
paired(
    "symmetric_infonce_loss",
    "t0.2_ls0.1",
    {"temperature": 0.2, "label_smoothing": 0.1},
    lambda a, b: clip_ref(a, b, 0.2, 0.1),
    "two-way torch cross_entropy(label_smoothing=0.1)",
)


def siglip_ref(a, b, t=10.0, bias=-10.0):
    # big_vision siglip.py: logits = zimg @ ztxt.T * t + b; labels = 2*eye - 1;
    # loss = -sum(log_sigmoid(labels * logits)) / n   (per row here, before the mean)
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    logits = a @ b.T * t + bias
    z = 2 * torch.eye(a.shape[0]) - 1
    return -F.logsigmoid(z * logits).sum(dim=1)


paired("sigmoid_contrastive_loss", "init", {}, siglip_ref, "big_vision siglip loss (torch port), t=10, b=-10")
paired(
    "sigmoid_contrastive_loss",
    "t2_b-1",
    {"temperature": 0.5, "bias": -1.0},
    lambda a, b: siglip_ref(a, b, 2.0, -1.0),
    "big_vision siglip loss (torch port), t=2, b=-1",
)


def soft_infonce_ref(q, k, prior, alpha, beta, t):
    # Soft-InfoNCE CodeBERT/models.py (softinfonce branch), per example, with
    # labels = eye (the in-batch positives on the diagonal).
    logits = q @ k.T
    eye = torch.eye(q.shape[0], dtype=torch.bool)
    sim_neg = prior[~eye].view(prior.size(0), -1)
    w = torch.softmax(sim_neg / t, dim=1)
    w = torch.clip((beta - alpha * w) / (beta - alpha / w.size(1)), min=0.1)
    w = torch.cat([torch.ones((w.size(0), 1)), w], dim=1)
    scores = torch.cat([logits[eye].unsqueeze(1), logits[~eye].view(logits.size(0), -1)], dim=1)
    maxes = torch.max(scores, 1, keepdim=True)[0]
    x_exp = torch.exp(scores - maxes)
    probs = x_exp / torch.sum(w * x_exp, 1, keepdim=True)
    return -torch.log(probs[:, 0] + 1e-15)


prior_t = torch.tensor(PRIOR)
for alpha, beta, t in ((0.5, 1.0, 0.5), (0.9, 1.0, 0.2)):
    paired(
        "soft_infonce_loss",
        f"a{alpha}_b{beta}_t{t}",
        {"alpha": alpha, "beta": beta, "prior_temperature": t},
        lambda q, k, a=alpha, b=beta, t=t: soft_infonce_ref(q, k, prior_t, a, b, t),
        f"Soft-InfoNCE models.py softinfonce branch (torch port), weight_kl={alpha}, weight_unif={beta}, t={t}",
        extra={"prior": PRIOR},
    )


def cwcl_ref(p, q, t=0.07):
    # CWCL (arXiv:2309.14580) eq.: weights from the frozen modality q, both directions.
    pn, qn = F.normalize(p, dim=1), F.normalize(q, dim=1)
    w = ((1 + qn @ qn.T) / 2).detach()
    s = pn @ qn.T / t
    l_pq = -(w * F.log_softmax(s, dim=1)).sum(1) / w.sum(1)
    l_qp = -(w * F.log_softmax(s.T, dim=1)).sum(1) / w.sum(1)
    return 0.5 * (l_pq + l_qp)


paired("continuously_weighted_contrastive_loss", "t0.07", {}, cwcl_ref, "CWCL paper equation (torch port)")
paired(
    "continuously_weighted_contrastive_loss",
    "t0.5",
    {"temperature": 0.5},
    lambda p, q: cwcl_ref(p, q, 0.5),
    "CWCL paper equation (torch port)",
)

# ------------------------------ miners ---------------------------------------
labels_t = torch.tensor(LABELS)
mined = {"inputs": {"embeddings": X.tolist(), "clustered": XC.tolist(), "labels": LABELS.tolist()}}
a, p, n = miners.BatchHardMiner()(torch.tensor(X), labels_t)
mined["batch_hard"] = {"anchors": a.tolist(), "positives": p.tolist(), "negatives": n.tolist()}
for margin in (0.2, 0.5):
    a, p, n = miners.TripletMarginMiner(margin=margin, type_of_triplets="semihard")(torch.tensor(X), labels_t)
    mined[f"semihard_{margin}"] = sorted(zip(a.tolist(), p.tolist(), n.tolist()))
for eps in (0.1, 0.3):
    a1, p, a2, n = miners.MultiSimilarityMiner(epsilon=eps)(torch.tensor(XC), labels_t)
    mined[f"multi_similarity_{eps}"] = {
        "pos": sorted(zip(a1.tolist(), p.tolist())),
        "neg": sorted(zip(a2.tolist(), n.tolist())),
    }

out = HERE / "metric.json"
out.write_text(
    json.dumps({"generator": "tests/reference/make_metric.py", "cases": cases, "miners": mined}, indent=None)
)
print(f"wrote {len(cases)} cases to {out}")
