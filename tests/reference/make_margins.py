"""Golden values for lossjax/losses/_margins.py and _selfsup.py -> tests/reference/margins.json.

Run once by hand (never by the tests): ``python tests/reference/make_margins.py``.
Needs torch==2.13.0 (CPU) and ``pip install --no-deps pytorch-metric-learning``
(2.9.0 was used). Everything is computed in float64.

References:
* pytorch-metric-learning (PML) 2.9.0, called directly: NormalizedSoftmaxLoss,
  CosFaceLoss, ArcFaceLoss, SphereFaceLoss, ProxyNCALoss, ProxyAnchorLoss,
  SoftTripleLoss, ThresholdConsistentMarginLoss, VICRegLoss.
* Ported faithfully into torch from the official code (no PyPI package):
  insightface's combined margin cos(m1 theta + m2) - m3 and ArcFace easy_margin,
  mk-minchul/AdaFace head.py::AdaFace, ydwen/opensphere sphereface2.py,
  kahnchana/opl OrthogonalProjectionLoss, jakesnell/prototypical-networks,
  clovaai/voxceleb_trainer angleproto.py, facebookresearch/vicreg,
  facebookresearch/barlowtwins (torch.nn.BatchNorm1d(affine=False)),
  htdt/self-supervised Whitening2d + norm_mse_loss, raywang4/DispLoss
  (pdist^2 / D over the full B x B matrix), SimSiam / BYOL criteria.

Each case stores its inputs, hyperparameters, the value (per-example vector
or scalar) and the gradient of ``value.sum()`` with respect to the float inputs.
"""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np
import pytorch_metric_learning
import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml
from pytorch_metric_learning.reducers import DoNothingReducer

torch.set_default_dtype(torch.float64)
OUT = pathlib.Path(__file__).with_name("margins.json")
rng = np.random.default_rng(20261122)

N, D, C = 8, 5, 4
LABELS = np.array([0, 1, 2, 3, 0, 1, 2, 0])


def t(x, grad=True):
    return torch.tensor(np.asarray(x, np.float64), requires_grad=grad)


def face_data(seed, noise=0.8, far=()):
    r = np.random.default_rng(seed)
    proxies = r.normal(size=(C, D))
    emb = proxies[LABELS] + noise * r.normal(size=(N, D))
    for i in far:  # pointing away from the class weight: theta_y > pi - m (ArcFace's linear branch)
        emb[i] = -proxies[LABELS[i]] + 0.05 * r.normal(size=D)
    return emb, proxies


def per_element(loss_fn, emb, labels):
    out = loss_fn(emb, torch.tensor(labels))
    return out["loss"]["losses"]


CASES: dict[str, dict] = {}


def record(name, fn_name, inputs, kwargs, value_fn, note=""):
    """inputs: dict name -> np array (floats are differentiated); value_fn(tensors) -> torch value."""
    tensors = {k: (t(v) if np.asarray(v).dtype.kind == "f" else torch.tensor(np.asarray(v))) for k, v in inputs.items()}
    value = value_fn(tensors)
    value.sum().backward()
    grads = {k: v.grad.numpy().tolist() for k, v in tensors.items() if v.dtype.is_floating_point and v.grad is not None}
    CASES[name] = {
        "fn": fn_name,
        "inputs": {k: np.asarray(v).tolist() for k, v in inputs.items()},
        "kwargs": kwargs,
        "value": value.detach().numpy().tolist(),
        "grads": grads,
        "note": note,
    }


# ----------------------------- margin softmaxes -----------------------------

emb, prox = face_data(0)


def set_plain(module, name, tensor):
    """Replaces a PML parameter by a plain tensor in our graph, so gradients reach our proxies."""
    delattr(module, name)
    object.__setattr__(module, name, tensor)


def normalized_softmax(tt, scale):
    loss = pml.NormalizedSoftmaxLoss(
        num_classes=C, embedding_size=D, temperature=1.0 / scale, reducer=DoNothingReducer()
    )
    set_plain(loss, "W", tt["proxies"].T)  # PML's W is [D, C]
    return loss(tt["embeddings"], tt["labels"])["loss"]["losses"]


for scale in (20.0, 5.0):
    record(
        f"normalized_softmax_s{scale:g}",
        "normalized_softmax_loss",
        {"embeddings": emb, "labels": LABELS, "proxies": prox},
        {"scale": scale},
        lambda tt, s=scale: normalized_softmax(tt, s),
        "PML NormalizedSoftmaxLoss(temperature=1/scale)",
    )


def pml_margin(cls, tt, **kw):
    loss = cls(num_classes=C, embedding_size=D, reducer=DoNothingReducer(), **kw)
    set_plain(loss, "W", tt["proxies"].T)
    return loss(tt["embeddings"], tt["labels"])["loss"]["losses"]


for scale, margin in ((64.0, 0.35), (16.0, 0.2)):
    record(
        f"cosface_s{scale:g}_m{margin:g}",
        "cosface_loss",
        {"embeddings": emb, "labels": LABELS, "proxies": prox},
        {"scale": scale, "margin": margin},
        lambda tt, s=scale, m=margin: pml_margin(pml.CosFaceLoss, tt, scale=s, margin=m),
        "PML CosFaceLoss",
    )

emb_far, prox_far = face_data(1, far=(1, 5))
for scale, margin in ((64.0, 0.5), (10.0, 0.3)):
    record(
        f"arcface_s{scale:g}_m{margin:g}",
        "arcface_loss",
        {"embeddings": emb_far, "labels": LABELS, "proxies": prox_far},
        {"scale": scale, "margin": margin},
        lambda tt, s=scale, m=margin: pml_margin(pml.ArcFaceLoss, tt, scale=s, margin=math.degrees(m)),
        "PML ArcFaceLoss (margin in degrees); examples 1 and 5 are on the linear branch theta > pi - m",
    )


def insightface_combined(tt, s, m1, m2, m3, easy=False):
    # insightface: target logit cos(m1*theta + m2) - m3 (mxnet combined margin), or the ArcFace
    # easy_margin branch when easy=True (m1 = 1, m3 = 0): where(cos > 0, cos(theta + m2), cos).
    x = F.normalize(tt["embeddings"], dim=1)
    w = F.normalize(tt["proxies"], dim=1)
    cos = x @ w.T
    onehot = F.one_hot(tt["labels"], C).to(cos.dtype)
    target = (cos * onehot).sum(1)
    if easy:
        sin = torch.sqrt(1.0 - target**2)
        phi = target * math.cos(m2) - sin * math.sin(m2)
        new = torch.where(target > 0, phi, target)
    else:
        new = torch.cos(m1 * torch.acos(target) + m2) - m3
    logits = s * (cos + onehot * (new - target)[:, None])
    return F.cross_entropy(logits, tt["labels"], reduction="none")


emb_near, prox_near = face_data(3, noise=0.3)
_cos_y = np.sum(
    emb_near
    / np.linalg.norm(emb_near, axis=1, keepdims=True)
    * prox_near[LABELS]
    / np.linalg.norm(prox_near[LABELS], axis=1, keepdims=True),
    axis=1,
)
for m1, m2, m3 in ((1.0, 0.3, 0.2), (2.0, 0.1, 0.1), (1.0, 0.0, 0.35)):
    # The raw formula is only monotone while m1 theta + m2 < pi: the data stays there.
    assert np.all(m1 * np.arccos(_cos_y) + m2 < np.pi), (m1, m2)
    record(
        f"combined_{m1:g}_{m2:g}_{m3:g}",
        "additive_margin_softmax",
        {"embeddings": emb_near, "labels": LABELS, "proxies": prox_near},
        {"scale": 30.0, "multiplicative_margin": m1, "angular_margin": m2, "additive_margin": m3},
        lambda tt, a=m1, b=m2, c=m3: insightface_combined(tt, 30.0, a, b, c),
        "insightface combined margin cos(m1 theta + m2) - m3 (ported); all m1 theta + m2 < pi here",
    )

record(
    "arcface_easy_margin",
    "arcface_loss",
    {"embeddings": emb_far, "labels": LABELS, "proxies": prox_far},
    {"scale": 30.0, "margin": 0.5, "easy_margin": True},
    lambda tt: insightface_combined(tt, 30.0, 1.0, 0.5, 0.0, easy=True),
    "insightface ArcFace easy_margin (ported)",
)

for margin in (4.0, 3.0):
    record(
        f"sphereface_m{margin:g}",
        "sphereface_loss",
        {"embeddings": emb * 0.5, "labels": LABELS, "proxies": prox},
        {"margin": margin, "scale": 1.0},
        lambda tt, m=margin: pml_margin(pml.SphereFaceLoss, tt, margin=m, scale=1.0),
        "PML SphereFaceLoss (integer margins: the multiple-angle formula)",
    )


def adaface_ref(tt, m, h, s, t_alpha, mean0, std0):
    # mk-minchul/AdaFace head.py::AdaFace.forward, with embbedings = x / ||x|| and norms = ||x||.
    norms = torch.norm(tt["embeddings"], 2, 1, True)
    embbedings = tt["embeddings"] / norms
    kernel_norm = tt["proxies"].T / torch.norm(tt["proxies"].T, 2, 0, True)
    eps = 1e-3
    cosine = torch.mm(embbedings, kernel_norm).clamp(-1 + eps, 1 - eps)
    safe_norms = torch.clip(norms, min=0.001, max=100).clone().detach()
    with torch.no_grad():
        mean = safe_norms.mean().detach()
        std = safe_norms.std().detach()
        batch_mean = mean * t_alpha + (1 - t_alpha) * mean0
        batch_std = std * t_alpha + (1 - t_alpha) * std0
    margin_scaler = (safe_norms - batch_mean) / (batch_std + eps)
    margin_scaler = torch.clip(margin_scaler * h, -1, 1)
    label = tt["labels"]
    m_arc = torch.zeros(label.size()[0], cosine.size()[1])
    m_arc.scatter_(1, label.reshape(-1, 1), 1.0)
    g_angular = m * margin_scaler * -1
    m_arc = m_arc * g_angular
    theta = cosine.acos()
    theta_m = torch.clip(theta + m_arc, min=eps, max=math.pi - eps)
    cosine = theta_m.cos()
    m_cos = torch.zeros(label.size()[0], cosine.size()[1])
    m_cos.scatter_(1, label.reshape(-1, 1), 1.0)
    g_add = m + (m * margin_scaler)
    cosine = cosine - m_cos * g_add
    logits = cosine * s
    ADAFACE_STATE[:] = [float(batch_mean), float(batch_std)]
    return F.cross_entropy(logits, label, reduction="none")


ADAFACE_STATE: list[float] = []
r = np.random.default_rng(5)
emb_ada = emb * r.uniform(0.5, 3.0, size=(N, 1))
for name, (t_alpha, mean0, std0) in {"adaface_ema": (0.01, 2.0, 0.8), "adaface_t1": (1.0, 20.0, 100.0)}.items():
    record(
        name,
        "adaface_loss",
        {"embeddings": emb_ada, "labels": LABELS, "proxies": prox},
        {"margin": 0.4, "h": 0.333, "scale": 64.0, "t_alpha": t_alpha, "state": [mean0, std0]},
        lambda tt, a=t_alpha, b=mean0, c=std0: adaface_ref(tt, 0.4, 0.333, 64.0, a, b, c),
        "mk-minchul/AdaFace head.py (ported); state = (batch_mean, batch_std) before the call",
    )
    CASES[name]["new_state"] = list(ADAFACE_STATE)


def sphereface2_ref(tt, magn_type, alpha=0.7, r=40.0, m=0.4, tpow=3.0, lw=50.0, bias=None):
    # ydwen/opensphere model/head/sphereface2.py::SphereFace2.forward, per example (sum over classes
    # / num_class, so that the batch mean equals the reference's scalar).
    num_class = C
    if bias is None:
        z = alpha / ((1.0 - alpha) * (num_class - 1.0))
        if magn_type == "C":
            ay = r * (2.0 * 0.5**tpow - 1.0 - m)
            ai = r * (2.0 * 0.5**tpow - 1.0 + m)
        elif magn_type == "A":
            theta_y = min(math.pi, math.pi / 2.0 + m)
            ay = r * (2.0 * ((math.cos(theta_y) + 1.0) / 2.0) ** tpow - 1.0)
            ai = r * (2.0 * 0.5**tpow - 1.0)
        else:
            theta_y = min(math.pi, m * math.pi / 2.0)
            ay = r * (2.0 * ((math.cos(theta_y) + 1.0) / 2.0) ** tpow - 1.0)
            ai = r * (2.0 * 0.5**tpow - 1.0)
        temp = (1.0 - z) ** 2 + 4.0 * z * math.exp(ay - ai)
        bias = math.log(2.0 * z) - ai - math.log(1.0 - z + math.sqrt(temp))
    w = F.normalize(tt["proxies"].T, dim=0)
    x, y = tt["embeddings"], tt["labels"]
    cos_theta = F.normalize(x, dim=1).mm(w)
    one_hot = torch.zeros_like(cos_theta)
    one_hot.scatter_(1, y.view(-1, 1), 1.0)
    with torch.no_grad():
        if magn_type == "C":
            g_cos_theta = 2.0 * ((cos_theta + 1.0) / 2.0).pow(tpow) - 1.0
            g_cos_theta = g_cos_theta - m * (2.0 * one_hot - 1.0)
        elif magn_type == "A":
            theta_m = torch.acos(cos_theta.clamp(-1 + 1e-5, 1.0 - 1e-5))
            theta_m.scatter_(1, y.view(-1, 1), m, reduce="add")
            theta_m.clamp_(1e-5, 3.14159)
            g_cos_theta = torch.cos(theta_m)
            g_cos_theta = 2.0 * ((g_cos_theta + 1.0) / 2.0).pow(tpow) - 1.0
        else:
            m_theta = torch.acos(cos_theta.clamp(-1 + 1e-5, 1.0 - 1e-5))
            m_theta.scatter_(1, y.view(-1, 1), m, reduce="multiply")
            m_theta.clamp_(1e-5, 3.14159)
            g_cos_theta = torch.cos(m_theta)
            g_cos_theta = 2.0 * ((g_cos_theta + 1.0) / 2.0).pow(tpow) - 1.0
        d_theta = g_cos_theta - cos_theta
    logits = r * (cos_theta + d_theta) + bias
    weight = alpha * one_hot + (1.0 - alpha) * (1.0 - one_hot)
    weight = lw * num_class / r * weight
    loss = F.binary_cross_entropy_with_logits(logits, one_hot, weight=weight, reduction="none")
    return loss.sum(1) / num_class


for mt, m in (("C", 0.4), ("A", 0.4), ("M", 1.5)):
    record(
        f"sphereface2_{mt}",
        "sphereface2_loss",
        {"embeddings": emb, "labels": LABELS, "proxies": prox},
        {"margin_type": mt, "margin": m},
        lambda tt, a=mt, b=m: sphereface2_ref(tt, a, m=b),
        "ydwen/opensphere sphereface2.py (ported); C = 4 so the bias formula has no cancellation",
    )

# ------------------------------- proxy losses -------------------------------


def pml_proxy(cls, tt, attr="proxies", transpose=False, reducer=True, **kw):
    kwargs = {"reducer": DoNothingReducer()} if reducer else {}
    loss = cls(num_classes=C, embedding_size=D, **kwargs, **kw)
    set_plain(loss, attr, tt["proxies"])
    out = loss(tt["embeddings"], tt["labels"])
    return out["loss"]["losses"] if reducer else out


for scale in (1.0, 3.0):
    record(
        f"proxy_nca_s{scale:g}",
        "proxy_nca_loss",
        {"embeddings": emb, "labels": LABELS, "proxies": prox},
        {"scale": scale},
        lambda tt, s=scale: pml_proxy(pml.ProxyNCALoss, tt, softmax_scale=s),
        "PML ProxyNCALoss",
    )

for margin, alpha in ((0.1, 32.0), (0.2, 8.0)):
    record(
        f"proxy_anchor_m{margin:g}_a{alpha:g}",
        "proxy_anchor_loss",
        {"embeddings": emb, "labels": LABELS, "proxies": prox},
        {"margin": margin, "alpha": alpha},
        lambda tt, m=margin, a=alpha: pml_proxy(pml.ProxyAnchorLoss, tt, reducer=False, margin=m, alpha=a),
        "PML ProxyAnchorLoss (default DivisorReducer)",
    )
# Some classes without positives in the batch (|P+| < C).
labels_missing = np.array([0, 0, 1, 1, 0, 1, 0, 1])
record(
    "proxy_anchor_missing_classes",
    "proxy_anchor_loss",
    {"embeddings": emb, "labels": labels_missing, "proxies": prox},
    {"margin": 0.1, "alpha": 16.0},
    lambda tt: pml_proxy(pml.ProxyAnchorLoss, tt, reducer=False, margin=0.1, alpha=16.0),
    "PML ProxyAnchorLoss; classes 2 and 3 have no positive",
)

K = 3
prox_st = np.random.default_rng(7).normal(size=(C, K, D))
emb_st = prox_st[LABELS, 0] + 0.7 * np.random.default_rng(8).normal(size=(N, D))


def soft_triple(tt, la, gamma, margin):
    loss = pml.SoftTripleLoss(
        num_classes=C,
        embedding_size=D,
        centers_per_class=K,
        la=la,
        gamma=gamma,
        margin=margin,
        reducer=DoNothingReducer(),
    )
    set_plain(loss, "fc", tt["proxies"].reshape(C * K, D).T)  # column c*K + k = center k of class c
    return loss(tt["embeddings"], tt["labels"])["loss"]["losses"]


for la, gamma, margin in ((20.0, 0.1, 0.01), (5.0, 0.5, 0.2)):
    record(
        f"soft_triple_la{la:g}_g{gamma:g}",
        "soft_triple_loss",
        {"embeddings": emb_st, "labels": LABELS, "proxies": prox_st},
        {"scale": la, "gamma": gamma, "margin": margin},
        lambda tt, a=la, b=gamma, c=margin: soft_triple(tt, a, b, c),
        "PML SoftTripleLoss",
    )


def soft_triple_reg_ref(tt, tau):
    # idstcv/SoftTriple loss/SoftTriple.py: the tau term (centers = normalized fc, [D, cN*K]).
    cN, k = C, K
    weight = torch.zeros(cN * k, cN * k, dtype=torch.bool)
    for i in range(cN):
        for j in range(k):
            weight[i * k + j, i * k + j + 1 : (i + 1) * k] = 1
    centers = F.normalize(tt["proxies"].reshape(cN * k, D).T, p=2, dim=0)
    sim_center = centers.t().matmul(centers)
    reg = torch.sum(torch.sqrt(2.0 + 1e-5 - 2.0 * sim_center[weight])) / (cN * k * (k - 1.0))
    return tau * reg


record(
    "soft_triple_regularizer",
    "soft_triple_regularizer",
    {"proxies": prox_st},
    {"tau": 0.2},
    lambda tt: soft_triple_reg_ref(tt, 0.2),
    "idstcv/SoftTriple tau regularizer (ported)",
)

# ---------------------------- pair regularizers -----------------------------

emb_pair = face_data(11, noise=1.0)[0]


def opl_ref(tt, gamma, absolute):
    # kahnchana/opl OrthogonalProjectionLoss.forward (abs variant: the paper's equation).
    features = F.normalize(tt["embeddings"], p=2, dim=1)
    labels = tt["labels"][:, None]
    mask = torch.eq(labels, labels.t()).bool()
    eye = torch.eye(mask.shape[0], mask.shape[1]).bool()
    mask_pos = mask.masked_fill(eye, 0).to(features.dtype)
    mask_neg = (~mask).to(features.dtype)
    dot_prod = torch.matmul(features, features.t())
    pos_pairs_mean = (mask_pos * dot_prod).sum() / (mask_pos.sum() + 1e-6)
    neg = torch.abs(mask_neg * dot_prod) if absolute else mask_neg * dot_prod
    neg_pairs_mean = neg.sum() / (mask_neg.sum() + 1e-6)
    return (1.0 - pos_pairs_mean) + gamma * neg_pairs_mean


for gamma, absolute in ((0.5, False), (2.0, True)):
    record(
        f"opl_g{gamma:g}_abs{int(absolute)}",
        "orthogonal_projection_loss",
        {"embeddings": emb_pair, "labels": LABELS},
        {"gamma": gamma, "absolute": absolute},
        lambda tt, g=gamma, a=absolute: opl_ref(tt, g, a),
        "kahnchana/opl (ported)",
    )

for mp, mm in ((0.9, 0.5), (0.3, -0.2)):
    record(
        f"tcm_{mp:g}_{mm:g}",
        "threshold_consistent_margin_loss",
        {"embeddings": emb_pair, "labels": LABELS},
        {"margin_plus": mp, "margin_minus": mm, "lambda_plus": 1.0, "lambda_minus": 0.7},
        lambda tt, a=mp, b=mm: pml.ThresholdConsistentMarginLoss(
            lambda_plus=1.0, lambda_minus=0.7, margin_plus=a, margin_minus=b
        )(tt["embeddings"], tt["labels"]),
        "PML ThresholdConsistentMarginLoss",
    )

# ------------------------------ prototypes ---------------------------------

KW, S, Q, DP = 4, 3, 2, 5
centers = np.random.default_rng(12).normal(size=(KW, 1, DP)) * 1.2
support = centers + 0.8 * np.random.default_rng(13).normal(size=(KW, S, DP))
queries = centers + 0.8 * np.random.default_rng(14).normal(size=(KW, Q, DP))


def proto_ref(tt):
    # jakesnell/prototypical-networks few_shot.py::Protonet.loss with euclidean_dist (squared).
    xs, xq = tt["support"], tt["queries"]
    n_class, n_query = xq.size(0), xq.size(1)
    target_inds = torch.arange(0, n_class).view(n_class, 1, 1).expand(n_class, n_query, 1).long()
    z_proto = xs.mean(1)
    zq = xq.reshape(n_class * n_query, -1)
    x, y = zq, z_proto
    n, m, d = x.size(0), y.size(0), x.size(1)
    dists = torch.pow(x.unsqueeze(1).expand(n, m, d) - y.unsqueeze(0).expand(n, m, d), 2).sum(2)
    log_p_y = F.log_softmax(-dists, dim=1).view(n_class, n_query, -1)
    return -log_p_y.gather(2, target_inds).squeeze().view(-1).mean()


record(
    "prototypical",
    "prototypical_loss",
    {"support": support, "queries": queries},
    {},
    proto_ref,
    "jakesnell/prototypical-networks (ported)",
)

utter = centers + 0.8 * np.random.default_rng(15).normal(size=(KW, 3, DP))


def angleproto_ref(tt, w, b):
    # clovaai/voxceleb_trainer loss/angleproto.py::LossFunction.forward.
    x = tt["embeddings"]
    out_anchor = torch.mean(x[:, 1:, :], 1)
    out_positive = x[:, 0, :]
    stepsize = out_anchor.size()[0]
    cos_sim_matrix = F.cosine_similarity(out_positive.unsqueeze(-1), out_anchor.unsqueeze(-1).transpose(0, 2))
    cos_sim_matrix = cos_sim_matrix * max(w, 1e-6) + b
    label = torch.arange(stepsize)
    return F.cross_entropy(cos_sim_matrix, label)


for w, b in ((10.0, -5.0), (3.0, 1.0)):
    record(
        f"angleproto_w{w:g}_b{b:g}",
        "angular_prototypical_loss",
        {"embeddings": utter},
        {"scale": w, "bias": b},
        lambda tt, a=w, c=b: angleproto_ref(tt, a, c),
        "clovaai/voxceleb_trainer angleproto.py (ported)",
    )

# ------------------------------ self-supervised ------------------------------

NS, DS = 10, 4
za = np.random.default_rng(21).normal(size=(NS, DS)) * np.array([0.3, 1.5, 0.8, 0.5])
zb = za + 0.4 * np.random.default_rng(22).normal(size=(NS, DS))

for lam, mu, nu in ((25.0, 25.0, 1.0), (1.0, 3.0, 0.5)):
    record(
        f"vicreg_pml_{lam:g}_{mu:g}_{nu:g}",
        "vicreg_loss",
        {"embeddings_a": za, "embeddings_b": zb},
        {"invariance_weight": lam, "variance_weight": mu, "covariance_weight": nu},
        lambda tt, a=lam, b=mu, c=nu: pml.VICRegLoss(invariance_lambda=a, variance_mu=b, covariance_v=c)(
            tt["embeddings_a"], ref_emb=tt["embeddings_b"]
        ),
        "PML VICRegLoss",
    )


def vicreg_paper(tt, sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0):
    # facebookresearch/vicreg main_vicreg.py::VICReg.forward (single process: FullGatherLayer = identity).
    x, y = tt["embeddings_a"], tt["embeddings_b"]
    batch_size, num_features = x.shape
    repr_loss = F.mse_loss(x, y)
    x = x - x.mean(dim=0)
    y = y - y.mean(dim=0)
    std_x = torch.sqrt(x.var(dim=0) + 0.0001)
    std_y = torch.sqrt(y.var(dim=0) + 0.0001)
    std_loss = torch.mean(F.relu(1 - std_x)) / 2 + torch.mean(F.relu(1 - std_y)) / 2
    cov_x = (x.T @ x) / (batch_size - 1)
    cov_y = (y.T @ y) / (batch_size - 1)

    def off_diagonal(m):
        n = m.shape[0]
        return m.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()

    cov_loss = off_diagonal(cov_x).pow(2).sum().div(num_features) + off_diagonal(cov_y).pow(2).sum().div(num_features)
    return sim_coeff * repr_loss + std_coeff * std_loss + cov_coeff * cov_loss


record(
    "vicreg_paper", "vicreg_loss", {"embeddings_a": za, "embeddings_b": zb}, {}, vicreg_paper, "facebookresearch/vicreg"
)


def barlow_ref(tt, lambd):
    # facebookresearch/barlowtwins main.py::BarlowTwins.forward (projector = identity; one process).
    z1, z2 = tt["embeddings_a"], tt["embeddings_b"]
    bn = torch.nn.BatchNorm1d(z1.shape[1], affine=False).double()
    bn.train()
    c = bn(z1).T @ bn(z2)
    c = c / z1.shape[0]
    on_diag = torch.diagonal(c).add(-1).pow(2).sum()
    n = c.shape[0]
    off = c.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()
    return on_diag + lambd * off.pow(2).sum()


for lambd in (0.0051, 0.5):
    record(
        f"barlow_l{lambd:g}",
        "barlow_twins_loss",
        {"embeddings_a": za, "embeddings_b": zb},
        {"off_diagonal_weight": lambd},
        lambda tt, a=lambd: barlow_ref(tt, a),
        "facebookresearch/barlowtwins (ported, torch BatchNorm1d)",
    )


def whitening2d(x, eps):
    # htdt/self-supervised methods/whitening.py::Whitening2d.forward (training mode).
    num_features = x.shape[1]
    x = x.unsqueeze(2).unsqueeze(3)
    m = x.mean(0).view(num_features, -1).mean(-1).view(1, -1, 1, 1)
    xn = x - m
    T = xn.permute(1, 0, 2, 3).contiguous().view(num_features, -1)
    f_cov = torch.mm(T, T.permute(1, 0)) / (T.shape[-1] - 1)
    eye = torch.eye(num_features).type(f_cov.type())
    f_cov_shrinked = (1 - eps) * f_cov + eps * eye
    inv_sqrt = torch.linalg.solve_triangular(torch.linalg.cholesky(f_cov_shrinked), eye, upper=False)
    inv_sqrt = inv_sqrt.contiguous().view(num_features, num_features, 1, 1)
    decorrelated = F.conv2d(xn, inv_sqrt)
    return decorrelated.squeeze(2).squeeze(2)


def wmse_ref(tt, eps):
    # htdt/self-supervised methods/w_mse.py::WMSE.forward with w_size = bs, w_iter = 1, and norm_mse_loss.
    h = tt["embeddings"]  # [N, V, D]
    views = [h[:, i] for i in range(h.shape[1])]
    z = [whitening2d(v, eps) for v in views]
    loss, num_pairs = 0.0, 0
    for i in range(len(z) - 1):
        for j in range(i + 1, len(z)):
            x0, x1 = F.normalize(z[i]), F.normalize(z[j])
            loss = loss + (2 - 2 * (x0 * x1).sum(dim=-1).mean())
            num_pairs += 1
    return loss / num_pairs


base = np.random.default_rng(31).normal(size=(12, 1, 3))
wm = base + 0.5 * np.random.default_rng(32).normal(size=(12, 3, 3))
for eps in (0.0, 1e-4, 0.1):
    record(
        f"wmse_eps{eps:g}",
        "whitening_mse_loss",
        {"embeddings": wm},
        {"epsilon": eps},
        lambda tt, e=eps: wmse_ref(tt, e),
        "htdt/self-supervised Whitening2d + norm_mse_loss (ported; torch.linalg for the deprecated triangular_solve)",
    )


def disp_ref(tt, tau, by_dim):
    # raywang4/DispLoss: diff = pdist(z)^2 / D over the full B x B matrix (zeros on the diagonal),
    # loss = log(mean(exp(-diff / tau))).
    z = tt["embeddings"].reshape(tt["embeddings"].shape[0], -1)
    diff = torch.pdist(z).pow(2) / (z.shape[1] if by_dim else 1)
    diff = torch.cat((diff, diff, torch.zeros(z.shape[0])))
    return torch.log(torch.exp(-diff / tau).mean())


act = np.random.default_rng(41).normal(size=(7, 2, 3))
for tau, by_dim in ((0.5, True), (2.0, False)):
    record(
        f"dispersive_t{tau:g}_d{int(by_dim)}",
        "dispersive_loss",
        {"embeddings": act},
        {"temperature": tau, "scale_by_dim": by_dim},
        lambda tt, a=tau, b=by_dim: disp_ref(tt, a, b),
        "raywang4/DispLoss InfoNCE-L2 (ported)",
    )

p_pred = np.random.default_rng(51).normal(size=(6, 4))
z_tgt = p_pred + 0.7 * np.random.default_rng(52).normal(size=(6, 4))
record(
    "simsiam",
    "negative_cosine_loss",
    {"predictions": p_pred, "targets": z_tgt},
    {},
    lambda tt: -F.cosine_similarity(tt["predictions"], tt["targets"].detach(), dim=1),
    "facebookresearch/simsiam criterion -CosineSimilarity(dim=1)(p, z.detach())",
)
record(
    "byol",
    "byol_loss",
    {"predictions": p_pred, "targets": z_tgt},
    {},
    lambda tt: (F.normalize(tt["predictions"], dim=-1) - F.normalize(tt["targets"].detach(), dim=-1)).pow(2).sum(-1),
    "BYOL regression_loss: || p/|p| - z/|z| ||^2",
)

OUT.write_text(
    json.dumps(
        {
            "generated_by": "tests/reference/make_margins.py",
            "torch": torch.__version__,
            "pytorch_metric_learning": pytorch_metric_learning.__version__,
            "cases": CASES,
        },
        indent=1,
    )
)
print(f"wrote {len(CASES)} cases to {OUT}")
