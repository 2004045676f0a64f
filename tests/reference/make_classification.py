"""Golden values for lossjax.losses._classification.

Run once (not at test time): ``python tests/reference/make_classification.py``.
Writes ``tests/reference/classification.json``: for every case the inputs, the
keyword arguments, the per-example (or batch) loss and the gradient of the
summed loss with respect to every differentiated input, all in float64.

References (the tests never import them):

- optax 0.2.8: ``softmax_cross_entropy(_with_integer_labels)``,
  ``sigmoid_binary_cross_entropy``, ``sigmoid_focal_loss``,
  ``poly_loss_cross_entropy``, ``multiclass_hinge_loss``, ``hinge_loss``,
  ``multiclass_sparsemax_loss``, ``sparsemax_loss`` (binary), ``perceptron_loss``,
  ``multiclass_perceptron_loss``, ``safe_softmax_cross_entropy`` (run in float64 with x64 on; gradients by jax);
- torch 2.13.0 (float64 autograd): ``F.cross_entropy(weight=, label_smoothing=)``
  incl. probability targets, ``F.binary_cross_entropy_with_logits(pos_weight=)``,
  ``nn.MultiMarginLoss`` (p=1, 2: Weston-Watkins divided by C);
- MONAI 1.6 ``losses.focal_loss.softmax_focal_loss`` (the softmax focal cases, called);
- faithful torch ports pinned to file@commit (the repositories are not pip packages), line by line:
  pytorch/vision ``torchvision/ops/focal_loss.py@b9daa86::sigmoid_focal_loss`` (the installed
  0.28 wheel does not load against torch 2.13, so its 10 lines are ported);
  HanxunH/Active-Passive-Losses ``loss.py@0c207f7::GeneralizedCrossEntropy``;
  lancopku/well-classified-examples-are-underestimated ``EncouragingLoss.py@1474bc3``;
  Like-Hui/Squentropy-for-classification ``main.py@67764eb`` (``--loss_type mixed``, per example);
  statmlben/ensLoss ``losses.py@051d87d::ensLoss`` (with the normal draws of the lossjax
  key, so that values and gradients are comparable);
  maxwellmg/rethinking-harmonic-loss ``llms/model/distance_layers.py@be5814d::EuclideanDistLayer``
  followed by ``-log(sim_y / sum sim)``;
  cvlab-yonsei/RankMixup ``calibrate/losses/rankmixup.py@e4a37c8`` (``RankMixup_MRL``, ``RankMixup_MNDCG``);
  an AnyLoss port of the paper's formulas (approximation function, soft confusion
  matrix, metric), whose F-beta branch is the harshvardhan2804/AnyLoss formula;
- closed forms written independently of lossjax's log-space route: the poly-1
  focal formula (PolyLoss eq. 4), comp-sum in its original sum-of-exponentials
  form ``Phi^tau(sum_{y' != y} exp(z_y' - z_y))``, the smooth adversarial term,
  the one-vs-rest and squared hinge sums, sparse-softmax over the top-k set and
  the sparsemax loss with a target distribution (sort-based threshold).
"""

from __future__ import annotations

import json
import pathlib

import jax
import numpy as np
import torch
import torch.nn.functional as F

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

torch.set_default_dtype(torch.float64)
OUT = pathlib.Path(__file__).with_name("classification.json")
rng = np.random.default_rng(2024)

N, C = 8, 5
LOGITS = rng.normal(size=(N, C)) * 3.0
LABELS = rng.integers(0, C, size=(N,))
Q = rng.dirichlet(np.ones(C) * 0.7, size=N)
WEIGHTS = rng.uniform(0.2, 2.0, size=(C,))
BIN_LOGITS = rng.normal(size=(N, 3)) * 3.0
BIN_LABELS = rng.integers(0, 2, size=(N, 3)).astype(np.float64)
SOFT_BIN = rng.uniform(0, 1, size=(N, 3))
PERTURBED = LOGITS + rng.normal(size=(N, C))

cases: list[dict] = []


def t(x):
    return torch.tensor(np.asarray(x, np.float64), requires_grad=True)


def onehot(y, c=C):
    return F.one_hot(torch.as_tensor(y), c).double()


def add(name, reference, args, kinds, value_fn, kwargs=None, diff=(0,), note=""):
    """Records a case; value_fn gets torch tensors (float args require grad) and returns the loss."""
    tens = [t(a) if k == "float" else torch.as_tensor(np.asarray(a)) for a, k in zip(args, kinds, strict=True)]
    value = value_fn(*tens)
    grads = torch.autograd.grad(value.sum(), [tens[i] for i in diff], allow_unused=True)
    cases.append(
        {
            "name": name,
            "reference": reference,
            "note": note,
            "args": [np.asarray(a).tolist() for a in args],
            "kinds": list(kinds),
            "kwargs": kwargs or {},
            "diff": list(diff),
            "value": value.detach().numpy().tolist(),
            "grads": [
                np.zeros(np.shape(args[i])).tolist() if g is None else g.numpy().tolist()
                for i, g in zip(diff, grads, strict=True)
            ],
        }
    )


def add_jax(name, reference, args, kinds, value_fn, kwargs=None, diff=(0,), note=""):
    """Records a case whose reference is a jax function (optax), in float64."""
    jargs = [jnp.asarray(a, jnp.float64) if k == "float" else jnp.asarray(a) for a, k in zip(args, kinds, strict=True)]
    value = value_fn(*jargs)

    def total(*d):
        a = list(jargs)
        for i, x in zip(diff, d, strict=True):
            a[i] = x
        return jnp.sum(value_fn(*a))

    grads = jax.grad(total, argnums=tuple(range(len(diff))))(*[jargs[i] for i in diff])
    cases.append(
        {
            "name": name,
            "reference": reference,
            "note": note,
            "args": [np.asarray(a).tolist() for a in args],
            "kinds": list(kinds),
            "kwargs": kwargs or {},
            "diff": list(diff),
            "value": np.asarray(value).tolist(),
            "grads": [np.asarray(g).tolist() for g in grads],
        }
    )


INT = ("float", "int")
DIST = ("float", "float")

# ------------------------------- cross-entropy --------------------------------
add(
    "softmax_cross_entropy",
    "torch F.cross_entropy",
    (LOGITS, LABELS),
    INT,
    lambda z, y: F.cross_entropy(z, y, reduction="none"),
)
add_jax(
    "softmax_cross_entropy",
    "optax.losses.softmax_cross_entropy_with_integer_labels",
    (LOGITS, LABELS),
    INT,
    optax.losses.softmax_cross_entropy_with_integer_labels,
)
add(
    "softmax_cross_entropy",
    "torch F.cross_entropy (probability targets)",
    (LOGITS, Q),
    DIST,
    lambda z, q: F.cross_entropy(z, q, reduction="none"),
)
add(
    "softmax_cross_entropy",
    "torch F.cross_entropy(label_smoothing=0.1)",
    (LOGITS, LABELS),
    INT,
    lambda z, y: F.cross_entropy(z, y, reduction="none", label_smoothing=0.1),
    {"label_smoothing": 0.1},
)
add(
    "softmax_cross_entropy",
    "torch F.cross_entropy(weight=w)",
    (LOGITS, LABELS),
    INT,
    lambda z, y: F.cross_entropy(z, y, weight=torch.tensor(WEIGHTS), reduction="none"),
    {"class_weights": WEIGHTS.tolist()},
)
add(
    "softmax_cross_entropy",
    "torch F.cross_entropy(weight=w, label_smoothing=0.2)",
    (LOGITS, LABELS),
    INT,
    lambda z, y: F.cross_entropy(z, y, weight=torch.tensor(WEIGHTS), reduction="none", label_smoothing=0.2),
    {"class_weights": WEIGHTS.tolist(), "label_smoothing": 0.2},
)
add(
    "label_smoothing_cross_entropy",
    "torch F.cross_entropy(label_smoothing=0.1)",
    (LOGITS, LABELS),
    INT,
    lambda z, y: F.cross_entropy(z, y, reduction="none", label_smoothing=0.1),
)
add_jax(
    "label_smoothing_cross_entropy",
    "optax.losses.smooth_labels(q, 0.3) + optax.softmax_cross_entropy",
    (LOGITS, Q),
    DIST,
    lambda z, q: optax.losses.softmax_cross_entropy(z, optax.losses.smooth_labels(q, 0.3)),
    {"label_smoothing": 0.3},
)
add(
    "sigmoid_binary_cross_entropy",
    "torch F.binary_cross_entropy_with_logits(pos_weight=2.5)",
    (BIN_LOGITS, BIN_LABELS),
    DIST,
    lambda z, y: F.binary_cross_entropy_with_logits(z, y, pos_weight=torch.tensor(2.5), reduction="none"),
    {"pos_weight": 2.5},
)
add_jax(
    "sigmoid_binary_cross_entropy",
    "optax.losses.sigmoid_binary_cross_entropy (soft labels)",
    (BIN_LOGITS, SOFT_BIN),
    DIST,
    optax.losses.sigmoid_binary_cross_entropy,
)


# ---------------------------------- focal ------------------------------------
# MONAI 1.6 losses.focal_loss.softmax_focal_loss (class axis 1, per-class alpha; summed over classes):
# the upstream call, not a transcription of the formula.
from monai.losses.focal_loss import softmax_focal_loss  # noqa: E402


def monai_softmax_focal(z, y, gamma, alpha=None):
    q = onehot(y) if y.dtype == torch.int64 else y
    return softmax_focal_loss(z, q, gamma, None if alpha is None else torch.tensor(alpha)).sum(-1)


for gamma in (2.0, 0.5):
    add(
        "focal_loss",
        "MONAI 1.6 softmax_focal_loss",
        (LOGITS, LABELS),
        INT,
        lambda z, y, g=gamma: monai_softmax_focal(z, y, g),
        {"gamma": gamma},
    )
add(
    "focal_loss",
    "MONAI 1.6 softmax_focal_loss, per-class alpha",
    (LOGITS, LABELS),
    INT,
    lambda z, y: monai_softmax_focal(z, y, 2.0, WEIGHTS),
    {"alpha": WEIGHTS.tolist()},
)
add(
    "focal_loss",
    "MONAI 1.6 softmax_focal_loss, expectation over q (target = q)",
    (LOGITS, Q),
    DIST,
    lambda z, q: monai_softmax_focal(z, q, 1.5),
    {"gamma": 1.5},
)


def torchvision_sigmoid_focal(inputs, targets, alpha=0.25, gamma=2.0):
    # pytorch/vision torchvision/ops/focal_loss.py@b9daa86 sigmoid_focal_loss, reduction="none" (line for line).
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    return loss


add(
    "sigmoid_focal_loss",
    "torchvision/ops/focal_loss.py@b9daa86 sigmoid_focal_loss (port)",
    (BIN_LOGITS, BIN_LABELS),
    DIST,
    torchvision_sigmoid_focal,
)
add(
    "sigmoid_focal_loss",
    "torchvision.ops.sigmoid_focal_loss (port), alpha=-1 (none), gamma=0.5",
    (BIN_LOGITS, BIN_LABELS),
    DIST,
    lambda z, y: torchvision_sigmoid_focal(z, y, -1, 0.5),
    {"alpha": None, "gamma": 0.5},
)
add_jax(
    "sigmoid_focal_loss",
    "optax.losses.sigmoid_focal_loss(alpha=None), soft labels",
    (BIN_LOGITS, SOFT_BIN),
    DIST,
    lambda z, y: optax.losses.sigmoid_focal_loss(z, y, alpha=None, gamma=2.0),
    {"alpha": None},
)
add_jax(
    "sigmoid_focal_loss",
    "optax.losses.sigmoid_focal_loss(alpha=0.4, gamma=1.5)",
    (BIN_LOGITS, BIN_LABELS),
    DIST,
    lambda z, y: optax.losses.sigmoid_focal_loss(z, y, alpha=0.4, gamma=1.5),
    {"alpha": 0.4, "gamma": 1.5},
)

# ---------------------------------- poly-1 -----------------------------------
ONEHOT = np.eye(C)[LABELS]
for eps in (2.0, -1.0):
    add_jax(
        "poly1_cross_entropy",
        "optax.losses.poly_loss_cross_entropy (one-hot)",
        (LOGITS, LABELS),
        INT,
        lambda z, y, e=eps: optax.losses.poly_loss_cross_entropy(z, jax.nn.one_hot(y, C, dtype=jnp.float64), epsilon=e),
        {"epsilon": eps},
    )
add_jax(
    "poly1_cross_entropy",
    "optax.losses.poly_loss_cross_entropy (distribution)",
    (LOGITS, Q),
    DIST,
    lambda z, q: optax.losses.poly_loss_cross_entropy(z, q, epsilon=2.0),
)


def poly1_focal(z, y, eps, gamma):
    logp = F.log_softmax(z, -1)
    q = onehot(y) if y.dtype == torch.int64 else y
    pt = (q * logp.exp()).sum(-1)
    return -((1 - pt) ** gamma) * (q * logp).sum(-1) + eps * (1 - pt) ** (gamma + 1)


add(
    "poly1_focal_loss",
    "Poly-1 focal formula (PolyLoss eq. 4, torch)",
    (LOGITS, LABELS),
    INT,
    lambda z, y: poly1_focal(z, y, 1.0, 2.0),
)
add(
    "poly1_focal_loss",
    "Poly-1 focal formula (PolyLoss eq. 4, torch)",
    (LOGITS, LABELS),
    INT,
    lambda z, y: poly1_focal(z, y, -1.0, 1.0),
    {"epsilon": -1.0, "gamma": 1.0},
)


# --------------------------------- comp-sum ----------------------------------
def comp_sum_original(z, y, tau):
    # Phi^tau(u), u = sum_{y' != y} exp(z_y' - z_y): the paper's definition, no log p.
    zy = z.gather(1, y[:, None])
    u = (torch.exp(z - zy) * (1 - onehot(y))).sum(-1)
    if tau == 1.0:
        return torch.log1p(u)
    return ((1 + u) ** (1 - tau) - 1) / (1 - tau)


for tau in (0.0, 0.5, 1.0, 1.5, 2.0):
    add(
        "comp_sum_loss",
        "comp-sum definition Phi^tau(sum exp(z_y' - z_y)) (torch)",
        (LOGITS, LABELS),
        INT,
        lambda z, y, a=tau: comp_sum_original(z, y, a),
        {"tau": tau},
    )


def gce_reference(pred, labels, q=0.7):
    # HanxunH/Active-Passive-Losses loss.py::GeneralizedCrossEntropy.forward (per example).
    pred = F.softmax(pred, dim=1)
    pred = torch.clamp(pred, min=1e-7, max=1.0)
    label_one_hot = F.one_hot(labels, C).float().to(pred.dtype)
    return (1.0 - torch.pow(torch.sum(label_one_hot * pred, dim=1), q)) / q


add(
    "generalized_cross_entropy",
    "HanxunH/Active-Passive-Losses GeneralizedCrossEntropy (port)",
    (LOGITS, LABELS),
    INT,
    gce_reference,
)
add(
    "generalized_cross_entropy",
    "HanxunH/Active-Passive-Losses GeneralizedCrossEntropy (port), q=0.3",
    (LOGITS, LABELS),
    INT,
    lambda z, y: gce_reference(z, y, 0.3),
    {"q": 0.3},
)


def adv_comp_sum(z, y, zp, tau, nu):
    delta = lambda v: v - v.gather(1, y[:, None])  # noqa: E731  (margin vector of Mao et al.)
    return comp_sum_original(z, y, tau) + nu * torch.linalg.vector_norm(delta(zp) - delta(z), dim=-1)


add(
    "smooth_adversarial_comp_sum_loss",
    "comp-sum + nu ||Delta(z') - Delta(z)||_2 (torch)",
    (LOGITS, LABELS, PERTURBED),
    ("float", "int", "float"),
    lambda z, y, zp: adv_comp_sum(z, y, zp, 1.5, 0.7),
    {"tau": 1.5, "nu": 0.7},
    diff=(0, 2),
)


# -------------------------------- encouraging --------------------------------
def encouraging_reference(input, target, log_end=0.75):
    # lancopku EncouragingLoss.forward with reduction='none'.
    lprobs = F.log_softmax(input, dim=-1)
    probs = torch.exp(lprobs)
    bonus = torch.log(torch.clamp((torch.ones_like(probs) - probs), min=1e-5))
    if log_end != 1.0:
        y_log_end = torch.log(torch.ones_like(probs) - log_end)
        bonus_after_log_end = 1 / (log_end - torch.ones_like(probs)) * (probs - log_end) + y_log_end
        bonus = torch.where(probs > log_end, bonus_after_log_end, bonus)
    return F.nll_loss(lprobs - bonus, target.view(-1), reduction="none")


add("encouraging_loss", "lancopku EncouragingLoss (port), log_end=0.75", (LOGITS, LABELS), INT, encouraging_reference)
add(
    "encouraging_loss",
    "lancopku EncouragingLoss (port), log_end=1",
    (LOGITS, LABELS),
    INT,
    lambda z, y: encouraging_reference(z, y, 1.0),
    {"log_end": 1.0},
)
add(
    "encouraging_loss",
    "lancopku EncouragingLoss (port), log_end=0.5",
    (LOGITS * 0.3, LABELS),
    INT,
    lambda z, y: encouraging_reference(z, y, 0.5),
    {"log_end": 0.5},
)


# -------------------------------- squentropy ---------------------------------
def squentropy_reference(output, target):
    # Like-Hui main.py, loss_type 'mixed', kept per example (the script averages over the batch).
    target_final = onehot(target)
    square = ((output**2) * (1 - target_final)).sum(-1) / (C - 1)
    return square + F.cross_entropy(output, target, reduction="none")


add(
    "squentropy",
    "Like-Hui/Squentropy-for-classification main.py 'mixed' (port)",
    (LOGITS, LABELS),
    INT,
    squentropy_reference,
)

# ---------------------------------- hinge ------------------------------------
add_jax(
    "multiclass_hinge_loss",
    "optax.losses.multiclass_hinge_loss",
    (LOGITS, LABELS),
    INT,
    optax.losses.multiclass_hinge_loss,
)
add(
    "multiclass_hinge_loss",
    "torch nn.MultiMarginLoss(p=1, margin=0.5) * C (Weston-Watkins)",
    (LOGITS, LABELS),
    INT,
    lambda z, y: torch.nn.MultiMarginLoss(p=1, margin=0.5, reduction="none")(z, y) * C,
    {"form": "weston_watkins", "margin": 0.5},
)
add(
    "multiclass_squared_hinge_loss",
    "torch nn.MultiMarginLoss(p=2) * C (Weston-Watkins squared)",
    (LOGITS, LABELS),
    INT,
    lambda z, y: torch.nn.MultiMarginLoss(p=2, reduction="none")(z, y) * C,
)
add_jax(
    "multiclass_squared_hinge_loss",
    "optax.losses.multiclass_hinge_loss ** 2 (Crammer-Singer)",
    (LOGITS, LABELS),
    INT,
    lambda z, y: optax.losses.multiclass_hinge_loss(z, y) ** 2,
    {"form": "crammer_singer"},
)


def ovr_hinge(z, q, squared):
    pos, neg = torch.relu(1 - z), torch.relu(1 + z)
    if squared:
        pos, neg = pos**2, neg**2
    return (q * pos + (1 - q) * neg).sum(-1)


add(
    "multiclass_hinge_loss",
    "one-vs-rest hinge sum (torch)",
    (LOGITS, LABELS),
    INT,
    lambda z, y: ovr_hinge(z, onehot(y), False),
    {"form": "one_vs_rest"},
)
add(
    "multiclass_squared_hinge_loss",
    "one-vs-rest squared hinge sum (torch), multi-hot targets",
    (LOGITS, BIN_LABELS[:, :1].repeat(C, 1)),
    DIST,
    lambda z, q: ovr_hinge(z, q, True),
    {"form": "one_vs_rest"},
)


def ww_dist(z, q, squared):
    # sum_c q_c sum_{j != c} h(1 + z_j - z_c)
    pair = torch.relu(1 + z[:, None, :] - z[:, :, None]) * (1 - torch.eye(C))
    if squared:
        pair = pair**2
    return (q * pair.sum(-1)).sum(-1)


add(
    "multiclass_squared_hinge_loss",
    "Weston-Watkins squared, expectation over q (torch)",
    (LOGITS, Q),
    DIST,
    lambda z, q: ww_dist(z, q, True),
)
PM = np.where(BIN_LABELS > 0, 1.0, -1.0)
add_jax(
    "squared_hinge_loss",
    "optax.hinge_loss ** 2",
    (BIN_LOGITS, PM),
    DIST,
    lambda z, y: optax.losses.hinge_loss(z, y) ** 2,
)

add_jax(
    "hinge_loss",
    "optax.losses.hinge_loss",
    (BIN_LOGITS, PM),
    DIST,
    optax.losses.hinge_loss,
)
add_jax(
    "hinge_loss",
    "optax.losses.hinge_loss(z / 2, y) * 2 (margin 2 by scaling)",
    (BIN_LOGITS, PM),
    DIST,
    lambda z, y: 2.0 * optax.losses.hinge_loss(z / 2.0, y),
    {"margin": 2.0},
)
add_jax(
    "perceptron_loss",
    "optax.losses.perceptron_loss",
    (BIN_LOGITS, PM),
    DIST,
    optax.losses.perceptron_loss,
)
add_jax(
    "multiclass_perceptron_loss",
    "optax.losses.multiclass_perceptron_loss",
    (LOGITS, LABELS),
    INT,
    optax.losses.multiclass_perceptron_loss,
)
add(
    "multiclass_perceptron_loss",
    "max_j z_j - <q, z> (expectation over q, torch)",
    (LOGITS, Q),
    DIST,
    lambda z, q: z.max(-1).values - (q * z).sum(-1),
)
add_jax(
    "safe_softmax_cross_entropy",
    "optax.losses.safe_softmax_cross_entropy",
    (LOGITS, Q),
    DIST,
    optax.losses.safe_softmax_cross_entropy,
)

# --------------------------------- sparsemax ---------------------------------
add_jax(
    "multiclass_sparsemax_loss",
    "optax.losses.multiclass_sparsemax_loss",
    (LOGITS * 0.5, LABELS),
    INT,
    optax.losses.multiclass_sparsemax_loss,
)

add_jax(
    "sparsemax_loss",
    "optax.losses.sparsemax_loss (binary)",
    (BIN_LOGITS * 0.5, BIN_LABELS),
    DIST,
    optax.losses.sparsemax_loss,
)


def sparsemax_dist(z, q):
    zs, _ = torch.sort(z, dim=-1, descending=True)
    k = torch.arange(1, C + 1, dtype=z.dtype)
    cs = zs.cumsum(-1)
    kz = (1 + k * zs > cs).sum(-1, keepdim=True)
    tau = (cs.gather(1, kz - 1) - 1) / kz
    inside = (z > tau).double()
    return -(q * z).sum(-1) + 0.5 * (inside * (z**2 - tau**2)).sum(-1) + 0.5 * (q**2).sum(-1)


add(
    "multiclass_sparsemax_loss",
    "sparsemax loss with a target distribution (Martins & Astudillo eq. 21, torch)",
    (LOGITS * 0.5, Q),
    DIST,
    sparsemax_dist,
)


# ------------------------------ sparse softmax -------------------------------
def sparse_softmax_ce(z, y, k):
    kth = torch.topk(z.detach(), k, dim=-1).values[:, -1:]
    keep = (z >= kth) | (onehot(y) > 0)
    lse = torch.logsumexp(torch.where(keep, z, torch.tensor(-torch.inf)), -1)
    return lse - z.gather(1, y[:, None])[:, 0]


add(
    "sparse_softmax_cross_entropy",
    "top-k restricted cross-entropy, target forced in (torch)",
    (LOGITS, LABELS),
    INT,
    lambda z, y: sparse_softmax_ce(z, y, 2),
    {"k": 2},
)
add(
    "sparse_softmax_cross_entropy",
    "k >= C: torch F.cross_entropy",
    (LOGITS, LABELS),
    INT,
    lambda z, y: F.cross_entropy(z, y, reduction="none"),
    {"k": 10},
)

# -------------------------------- one-vs-rest --------------------------------
add(
    "one_vs_rest_loss",
    "torch F.binary_cross_entropy_with_logits(z, onehot).sum(-1)",
    (LOGITS, LABELS),
    INT,
    lambda z, y: F.binary_cross_entropy_with_logits(z, onehot(y), reduction="none").sum(-1),
)

# --------------------------------- harmonic ----------------------------------
FEATS = rng.normal(size=(N, 4))
PROTOS = rng.normal(size=(C, 4))


def harmonic_reference(x, w, y):
    # EuclideanDistLayer.forward (x as (B, T=1, N)) then -log(sim_y / sum sim).
    n_embd = x.size(-1)
    x = x[:, None, :]
    wx = torch.einsum("btn,vn->btv", x, w)
    ww = torch.norm(w, dim=-1) ** 2
    xx = torch.norm(x, dim=-1) ** 2
    dist_sq = ww[..., :] + xx[:, :, None] - 2 * wx
    dist_sq = dist_sq / torch.tensor(n_embd)
    dist_sq = dist_sq / torch.min(dist_sq, dim=-1, keepdim=True)[0]
    sim = dist_sq ** (-torch.tensor(n_embd, dtype=x.dtype))
    prob = sim[:, 0, :] / sim[:, 0, :].sum(-1, keepdim=True)
    return -torch.log(prob.gather(1, y[:, None]))[:, 0]


add(
    "harmonic_loss",
    "maxwellmg/rethinking-harmonic-loss EuclideanDistLayer (port) + CE; "
    "reference pow_n=D on squared distances = exponent 2D",
    (FEATS, PROTOS, LABELS),
    ("float", "float", "int"),
    harmonic_reference,
    {"exponent": 8.0},
    diff=(0, 1),
)

# ---------------------------------- EnsLoss ----------------------------------
ENS_LOGITS = np.concatenate([rng.normal(size=(6,)) * 2, [3.0, -2.5]])
ENS_LABELS = rng.integers(0, 2, size=(8,)).astype(np.float64)
ENS_DRAWS = np.asarray(jax.random.normal(jax.random.key(11), (8,), jnp.float64))


def ensloss_reference(output, target, draws=ENS_DRAWS, lam=0.0):
    # statmlben/ensLoss losses.py::ensLoss.forward with rd_grad = the lossjax key's normals (CPU, no .cuda()).
    target = 2.0 * target - 1.0
    s_batch = output.flatten() * target.flatten()
    g_batch = torch.zeros(len(target))
    rd_grad = torch.tensor(draws)
    rd_grad = -(torch.exp(rd_grad) if lam == 0.0 else torch.clamp(1.0 + lam * rd_grad, min=0.0) ** (1.0 / lam))
    rd_grad, _ = torch.sort(rd_grad)
    rd_grad = torch.maximum(rd_grad, torch.tensor(-1.0))
    _, ind_tmp = torch.sort(s_batch)
    g_batch[ind_tmp] = rd_grad
    s_batch_no_grad = s_batch.detach()
    pos_ind = s_batch_no_grad > 1.0
    g_batch[pos_ind] *= 1 / s_batch_no_grad[pos_ind]
    g_batch = g_batch.detach() - 1e-6
    return (g_batch * s_batch).mean()


add(
    "ensloss",
    "statmlben/ensLoss ensLoss (port, lam=0)",
    (ENS_LOGITS, ENS_LABELS),
    DIST,
    ensloss_reference,
    {"key_seed": 11},
)
add(
    "ensloss",
    "statmlben/ensLoss ensLoss (port, lam=0.5)",
    (ENS_LOGITS, ENS_LABELS),
    DIST,
    lambda z, y: ensloss_reference(z, y, lam=0.5),
    {"key_seed": 11, "boxcox_lambda": 0.5},
)

# ---------------------------------- AnyLoss ----------------------------------
ANY_P = rng.uniform(0.3, 0.7, size=(10,))
ANY_Y = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 0], np.float64)


def anyloss_reference(p, y, metric, beta=1.0, L=73.0):
    a = 1 / (1 + torch.exp(-L * (p - 0.5)))
    tp, fn = (y * a).sum(), (y * (1 - a)).sum()
    fp, tn = ((1 - y) * a).sum(), ((1 - y) * (1 - a)).sum()
    if metric == "accuracy":
        m = (tp + tn) / (tp + tn + fp + fn)
    elif metric == "f_beta":  # harshvardhan2804/AnyLoss: (1+b^2) sum(y A) / (b^2 sum(y) + sum(A))
        m = (1 + beta**2) * torch.sum(y * a) / (beta**2 * torch.sum(y) + torch.sum(a))
    elif metric == "balanced_accuracy":
        m = (tp / (tp + fn) + tn / (tn + fp)) / 2
    elif metric == "g_mean":
        m = torch.sqrt(tp / (tp + fn) * tn / (tn + fp))
    else:
        m = (tp * tn - fp * fn) / torch.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 1 - m


for metric, extra in (
    ("accuracy", {}),
    ("f_beta", {}),
    ("f_beta", {"beta": 2.0}),
    ("balanced_accuracy", {}),
    ("g_mean", {}),
    ("mcc", {}),
):
    add(
        "anyloss",
        f"AnyLoss formulas (torch), metric={metric}",
        (ANY_P, ANY_Y),
        DIST,
        lambda p, y, m=metric, e=extra: anyloss_reference(p, y, m, **e),
        {"metric": metric, "epsilon": 0.0, **extra},
    )

# --------------------------------- RankMixup ---------------------------------
RM_M = 3
RM_LOGITS = rng.normal(size=(N, C)) * 2
RM_MIXED = rng.normal(size=(N, RM_M, C)) * 2
RM_LAM = rng.uniform(0.5, 1.0, size=(N, RM_M))
RM_LAM[0, 1] = 1.0  # a self-mixup (one-hot target): skipped by MRL
RM_OTHER = (LABELS[:, None] + 1 + rng.integers(0, C - 1, size=(N, RM_M))) % C
RM_TARGETS = RM_LAM[..., None] * np.eye(C)[LABELS][:, None] + (1 - RM_LAM)[..., None] * np.eye(C)[RM_OTHER]


def rankmixup_reference(inputs, targets, mixed, target_re, form, margin=0.1, alpha=0.1):
    # cvlab-yonsei/RankMixup calibrate/losses/rankmixup.py::RankMixup_MRL / RankMixup_MNDCG.forward,
    # with the CE kept per example (the reference means it) and mixups laid out mixup-major [M * N, C].
    n = inputs.size(0)
    mixup = mixed.transpose(0, 1).reshape(-1, C)
    target_re = target_re.transpose(0, 1).reshape(-1, C)
    loss_ce = F.cross_entropy(inputs, targets, reduction="none")
    if form == "mrl":
        # RankMixup_MRL with one mixup per sample, averaged over the M mixups.
        terms = []
        for m in range(RM_M):
            mix, tre = mixup[m * n : (m + 1) * n], target_re[m * n : (m + 1) * n]
            self_mixup_mask = (tre == 1.0).sum(dim=1).reshape(1, -1)
            self_mixup_mask = self_mixup_mask.sum(dim=0) == 0.0
            diff = mix.max(dim=1)[0] - inputs.max(dim=1)[0]
            terms.append(self_mixup_mask * F.relu(diff + margin))
        return loss_ce + alpha * torch.stack(terms).mean(0)
    lam = torch.ones(RM_M)
    mixup = mixup.reshape(len(lam), -1, C)
    target_re = target_re.reshape(len(lam), -1, C)
    mixup = F.softmax(mixup, dim=2)
    probs = F.softmax(inputs, dim=1)
    inputs_lam = torch.ones(probs.size(0), 1)
    max_values = probs.max(dim=1, keepdim=True)[0]
    max_mixup = mixup.max(dim=2)[0].t()
    max_lam = target_re.max(dim=2)[0].t()
    sort_index = torch.argsort(max_lam, descending=True)
    max_mixup_sorted = torch.gather(max_mixup, 1, sort_index)
    order = torch.arange(1, 2 + len(lam))
    dcg_order = torch.log2(order + 1)
    max_mixup_sorted = torch.cat((max_values, max_mixup_sorted), dim=1)
    dcg = (max_mixup_sorted / dcg_order).sum(dim=1)
    max_lam_sorted = torch.gather(max_lam, 1, sort_index)
    max_lam_sorted = torch.cat((inputs_lam, max_lam_sorted), dim=1)
    idcg = (max_lam_sorted / dcg_order).sum(dim=1)
    ndcg = dcg / idcg
    inv_ndcg = idcg / dcg
    ndcg_mask = idcg > dcg
    ndcg = ndcg_mask * ndcg + (~ndcg_mask) * inv_ndcg
    return loss_ce + alpha * (1.0 - ndcg)


for form in ("mrl", "mndcg"):
    add(
        "rankmixup_loss",
        f"cvlab-yonsei/RankMixup RankMixup_{form.upper()} (port)",
        (RM_LOGITS, LABELS, RM_MIXED, RM_TARGETS),
        ("float", "int", "float", "float"),
        lambda z, y, zm, qm, f=form: rankmixup_reference(z, y, zm, qm, f, margin=1.5 if f == "mrl" else 0.1),
        {"form": form, "margin": 1.5 if form == "mrl" else 0.1},
        diff=(0, 2),
    )

OUT.write_text(json.dumps({"generated_by": "tests/reference/make_classification.py", "cases": cases}))
print(f"wrote {len(cases)} cases to {OUT}")
