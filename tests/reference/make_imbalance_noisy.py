"""Golden values for lossjax.losses._imbalance and lossjax.losses._noisy.

Run once (not at test time): ``python tests/reference/make_imbalance_noisy.py``.
Writes ``tests/reference/imbalance_noisy.json``: inputs, per-example loss values
and gradients of the summed loss with respect to the logits/scores, in float64.

None of the reference repositories is a pip package, so their loss classes are
ported faithfully to torch 2.13.0 (CPU) below, line by line, from (file@commit):

- kaidic/LDAM-DRW ``losses.py@3193f05`` ``LDAMLoss`` (``torch.cuda`` tensors -> CPU);
  the DRW weights of ``cifar_train.py`` and richardaecn/class-balanced-loss
  ``src/cifar_main.py@302f8af`` (effective number) in numpy;
- orparask/VS-Loss ``class_imbalance/losses.py@7ade9c9`` ``VSLoss``;
- google-research/google-research ``logit_adjustment/main.py@ccc94ce`` (``logits + tau * log(base_probs)``, then CE);
- jiawei-ren/BalancedMetaSoftmax-Classification ``loss/BalancedSoftmaxLoss.py@34a61e4`` (``logits + log(spc)``);
- Alibaba-MIIL/ASL ``src/loss_functions/losses.py@0a21a18`` ``AsymmetricLoss``, ``ASLSingleLabel``;
- HanxunH/Active-Passive-Losses ``loss.py@0c207f7``: ``NormalizedCrossEntropy``,
  ``ReverseCrossEntropy``, ``MeanAbsoluteError``, ``NormalizedFocalLoss``,
  ``SCELoss`` and the APL combinations, and the negative term of ``NLNL``;
- Optimization-AI/ICML2023_LDR ``loss.py@732fc85`` ``LDRLoss_V1``, ``ALDRLoss_V1``;
- mariodoebler/test-time-adaptation ``classification/methods/rmt.py@a6f3c95`` ``symmetric_cross_entropy``;
- kiryor/nnPUlearning ``pu_loss.py@1c62960`` ``PULoss`` (chainer -> torch; the backward of
  ``x_out``);
- yyliu01/TraCoCo ``Code/UnetACDC/Utils/losses.py@1410c45`` ``semi_cbc_loss`` (NCHW, C = 4), both
  as written (``~onehot`` on an int64 tensor: -1 / -2) and with the intended
  complement mask ``1 - onehot``; lossjax is compared with the latter.

The reference classes reduce with a mean; the ports keep the per-example values
(the mean of the port is the reference's output). ``NormalizedFocalLoss``
detaches its modulating factor and normalizer (``.data``): only its values are
recorded (lossjax differentiates the paper's function).
"""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
HERE = pathlib.Path(__file__).resolve().parent

rng = np.random.default_rng(20261122)
N, CLS = 7, 5
LOGITS = rng.normal(size=(N, CLS)) * 2.0
LABELS = rng.integers(0, CLS, size=(N,))
LABELS[:CLS] = np.arange(CLS)  # every class appears
COUNTS = np.array([500, 200, 60, 12, 3])
ML_LOGITS = rng.normal(size=(N, CLS)) * 2.5
ML_LABELS = (rng.uniform(size=(N, CLS)) < 0.35).astype(np.float64)
BIG = LOGITS * 6.0  # large logits (p_k close to 0 and 1)

cases: list[dict] = []


def record(name, kwargs, fn, inputs, *, grad=True, note=""):
    """fn(*torch_tensors) -> per-example loss; records values and d(sum)/d(first input)."""
    ts = [
        torch.tensor(np.asarray(a, dtype=np.float64 if np.asarray(a).dtype.kind == "f" else np.int64)) for a in inputs
    ]
    ts[0].requires_grad_(True)
    out = fn(*ts)
    case = {
        "name": name,
        "kwargs": kwargs,
        "inputs": [np.asarray(a).tolist() for a in inputs],
        "value": out.detach().numpy().tolist(),
        "note": note,
    }
    if grad:
        (g,) = torch.autograd.grad(out.sum(), ts[0])
        case["grad"] = g.numpy().tolist()
    cases.append(case)


def onehot(y, c):
    return F.one_hot(y, c).double()


# ---------------------------------------------------------------- imbalance ----


def ldam(cls_num_list, max_m=0.5, s=30, weight=None):
    m_list = 1.0 / np.sqrt(np.sqrt(cls_num_list))
    m_list = m_list * (max_m / np.max(m_list))
    m_list = torch.tensor(m_list)

    def forward(x, target):
        index = torch.zeros_like(x, dtype=torch.uint8)
        index.scatter_(1, target.data.view(-1, 1), 1)
        index_float = index.type(torch.float64)
        batch_m = torch.matmul(m_list[None, :], index_float.transpose(0, 1))
        batch_m = batch_m.view((-1, 1))
        x_m = x - batch_m
        output = torch.where(index.bool(), x_m, x)
        return F.cross_entropy(s * output, target, weight=weight, reduction="none")

    return forward


def drw_weights(cls_num_list, beta=0.9999):
    effective_num = 1.0 - np.power(beta, cls_num_list)
    per_cls_weights = (1.0 - beta) / np.array(effective_num)
    return per_cls_weights / np.sum(per_cls_weights) * len(cls_num_list)


def vs(cls_num_list, gamma=0.3, tau=1.0, weight=None):
    cls_probs = [cls_num / sum(cls_num_list) for cls_num in cls_num_list]
    temp = (1.0 / np.array(cls_num_list)) ** gamma
    temp = temp / np.min(temp)
    iota_list = torch.tensor(tau * np.log(cls_probs))
    delta_list = torch.tensor(temp)

    def forward(x, target):
        output = x / delta_list + iota_list
        return F.cross_entropy(output, target, weight=weight, reduction="none")

    return forward


def logit_adjusted(priors, tau=1.0):
    base_probs = torch.tensor(priors / priors.sum())

    def forward(x, target):
        return F.cross_entropy(x + tau * torch.log(base_probs), target, reduction="none")

    return forward


def balanced_softmax(sample_per_class):
    spc = torch.tensor(sample_per_class).double()

    def forward(logits, labels):
        spc_ = spc.unsqueeze(0).expand(logits.shape[0], -1)
        return F.cross_entropy(input=logits + spc_.log(), target=labels, reduction="none")

    return forward


def asl(gamma_neg=4, gamma_pos=1, clip=0.05, eps=1e-8):
    def forward(x, y):
        x_sigmoid = torch.sigmoid(x)
        xs_pos = x_sigmoid
        xs_neg = 1 - x_sigmoid
        if clip is not None and clip > 0:
            xs_neg = (xs_neg + clip).clamp(max=1)
        los_pos = y * torch.log(xs_pos.clamp(min=eps))
        los_neg = (1 - y) * torch.log(xs_neg.clamp(min=eps))
        loss = los_pos + los_neg
        if gamma_neg > 0 or gamma_pos > 0:
            pt0 = xs_pos * y
            pt1 = xs_neg * (1 - y)
            pt = pt0 + pt1
            one_sided_gamma = gamma_pos * y + gamma_neg * (1 - y)
            one_sided_w = torch.pow(1 - pt, one_sided_gamma)
            loss *= one_sided_w
        return -loss  # the reference returns -loss.sum()

    return forward


def asl_single(gamma_pos=0, gamma_neg=4, eps=0.1):
    def forward(inputs, target):
        num_classes = inputs.size()[-1]
        log_preds = F.log_softmax(inputs, dim=-1)
        targets_classes = torch.zeros_like(inputs).scatter_(1, target.long().unsqueeze(1), 1)
        targets = targets_classes
        anti_targets = 1 - targets
        xs_pos = torch.exp(log_preds)
        xs_neg = 1 - xs_pos
        xs_pos = xs_pos * targets
        xs_neg = xs_neg * anti_targets
        asymmetric_w = torch.pow(1 - xs_pos - xs_neg, gamma_pos * targets + gamma_neg * anti_targets)
        log_preds = log_preds * asymmetric_w
        if eps > 0:
            targets_classes = targets_classes.mul(1 - eps).add(eps / num_classes)
        loss = -targets_classes.mul(log_preds)
        return loss.sum(dim=-1)

    return forward


for kw in ({}, {"max_m": 0.3, "s": 5.0}):
    record("ldam_loss", kw, ldam(COUNTS, **kw), (LOGITS / 4, LABELS))
w_drw = drw_weights(COUNTS)
record(
    "ldam_loss",
    {"class_weights": w_drw.tolist()},
    ldam(COUNTS, weight=torch.tensor(w_drw)),
    (LOGITS / 4, LABELS),
    note="LDAM-DRW",
)
for kw in ({}, {"gamma": 0.5, "tau": 0.5}):
    record("vs_loss", kw, vs(COUNTS, **kw), (LOGITS, LABELS))
for kw in ({}, {"tau": 2.0}):
    record("logit_adjusted_cross_entropy", kw, logit_adjusted(COUNTS.astype(float), **kw), (LOGITS, LABELS))
record("balanced_softmax_cross_entropy", {}, balanced_softmax(COUNTS), (LOGITS, LABELS))
for kw in ({}, {"gamma_neg": 2.0, "gamma_pos": 0.0, "clip": 0.0}):
    record("asymmetric_loss", kw, asl(**kw), (ML_LOGITS, ML_LABELS))
record("asymmetric_loss", {}, asl(), (ML_LOGITS * 6, ML_LABELS), note="large logits")
for kw, ref in (
    ({}, {}),
    ({"gamma_pos": 1.0, "gamma_neg": 2.0, "label_smoothing": 0.0}, {"gamma_pos": 1, "gamma_neg": 2, "eps": 0.0}),
):
    record("asymmetric_single_label_loss", kw, asl_single(**ref), (LOGITS, LABELS))

weights = []
for beta in (0.9, 0.99, 0.999, 0.9999):
    weights.append({"beta": beta, "value": drw_weights(COUNTS, beta).tolist()})

# ------------------------------------------------------------------ noisy ------

A_FLOOR = 1e-4


def nce(logits, labels):
    pred = F.log_softmax(logits, dim=1)
    label_one_hot = onehot(labels, logits.shape[1])
    return -1 * torch.sum(label_one_hot * pred, dim=1) / (-pred.sum(dim=1))


def rce(logits, labels):
    pred = F.softmax(logits, dim=1)
    pred = torch.clamp(pred, min=1e-7, max=1.0)
    label_one_hot = torch.clamp(onehot(labels, logits.shape[1]), min=A_FLOOR, max=1.0)
    return -1 * torch.sum(pred * torch.log(label_one_hot), dim=1)


def mae(logits, labels):
    pred = F.softmax(logits, dim=1)
    return 1.0 - torch.sum(onehot(labels, logits.shape[1]) * pred, dim=1)


def nfl(gamma):
    def forward(input, target):
        target = target.view(-1, 1)
        logpt = F.log_softmax(input, dim=1)
        normalizor = torch.sum(-1 * (1 - logpt.data.exp()) ** gamma * logpt, dim=1)
        logpt = logpt.gather(1, target).view(-1)
        pt = logpt.data.exp()
        loss = -1 * (1 - pt) ** gamma * logpt
        return loss / normalizor

    return forward


def sce(alpha, beta):
    def forward(pred, labels):
        ce = F.cross_entropy(pred, labels, reduction="none")
        return alpha * ce + beta * rce(pred, labels)

    return forward


def combo(active, passive, alpha, beta):
    def forward(x, y):
        return alpha * active(x, y) + beta * passive(x, y)

    return forward


def get_diff_logits(y_pred, y_true):
    y_true_logits = torch.sum(y_pred * y_true, dim=1, keepdim=True)
    return y_pred - y_true_logits


def ldr(threshold=2.0, lam=1.0):
    def forward(y_pred, labels):
        y_true = onehot(labels, y_pred.shape[1])
        y_pred = F.softplus(y_pred)
        y_denorm = torch.mean(y_pred, dim=1, keepdim=True)
        y_pred = y_pred / y_denorm
        diff_logits = threshold * (1 - y_true) + get_diff_logits(y_pred, y_true)
        diff_logits = diff_logits / lam
        max_diff = torch.max(diff_logits, dim=1, keepdim=True).values.detach()
        diff_logits = torch.exp(diff_logits - max_diff)
        loss = lam * (torch.log(torch.mean(diff_logits, dim=1, keepdim=True)) + max_diff)
        return loss[:, 0]

    return forward


def aldr(lambdas_old, threshold=1.0, lam=1.0, alpha=1.0, softplus=False, out=None):
    lambda_ref = torch.tensor(lam)

    def forward(y_pred, labels, _lambdas_input=None):
        lambdas = torch.tensor(lambdas_old).view(-1, 1)
        y_true = onehot(labels, y_pred.shape[1])
        num_class = y_pred.shape[1]
        if softplus:
            y_pred = F.softplus(y_pred)
        y_denorm = torch.norm(y_pred, dim=1, p=1.0, keepdim=True) / num_class
        y_pred = y_pred / y_denorm
        pred_prob = F.softmax(y_pred / lambdas, dim=1) + 1e-5
        pred_prob = F.normalize(pred_prob, p=1.0)
        kl_reg = torch.sum(pred_prob * torch.log(num_class * pred_prob), dim=1, keepdim=True)
        log_k = torch.log(torch.tensor(num_class, dtype=torch.float64))
        new = lambda_ref - lambda_ref * kl_reg / (alpha * log_k)
        lambdas = new.detach()
        extra_loss = -1 / 2 * alpha * log_k / lambda_ref * (lambdas - lambda_ref) ** 2
        diff_logits = threshold * (1 - y_true) + get_diff_logits(y_pred, y_true)
        d = diff_logits / lambdas
        max_diff_fix = torch.max(d, dim=1, keepdim=True).values.detach()
        d = torch.exp(d - max_diff_fix)
        loss = lambdas * (torch.log(torch.mean(d, dim=1, keepdim=True)) + max_diff_fix) + extra_loss
        if out is not None:
            out["new"] = lambdas[:, 0].numpy().tolist()
        return loss[:, 0]

    return forward


def rmt_sce(x, x_ema):
    return -0.5 * (x_ema.softmax(1) * x.log_softmax(1)).sum(1) - 0.5 * (x.softmax(1) * x_ema.log_softmax(1)).sum(1)


def nlnl_negative(pred, labels_neg):
    # NLNL: s_neg = log(clamp(1 - softmax, 1e-5, 1)); NLLLoss on s_neg at the complementary label.
    s_neg = torch.log(torch.clamp(1.0 - F.softmax(pred, 1), min=1e-5, max=1.0))
    return F.nll_loss(s_neg, labels_neg, reduction="none")


def pu_loss(prior, beta=0.0, gamma=1.0, nnpu=True):
    """kiryor/nnPUlearning PULoss: returns (objective value, backward surrogate x_out)."""

    def loss_func(x):
        return torch.sigmoid(-x)

    def forward(x, t):
        positive, unlabeled = (t == 1).double(), (t == -1).double()
        n_positive, n_unlabeled = max(1.0, positive.sum().item()), max(1.0, unlabeled.sum().item())
        y_positive = loss_func(x)
        y_unlabeled = loss_func(-x)
        positive_risk = torch.sum(prior * positive / n_positive * y_positive)
        negative_risk = torch.sum((unlabeled / n_unlabeled - prior * positive / n_positive) * y_unlabeled)
        objective = positive_risk + negative_risk
        x_out = objective
        if nnpu and negative_risk.item() < -beta:
            objective = positive_risk - beta
            x_out = -gamma * negative_risk
        return objective, x_out

    return forward


record("normalized_cross_entropy", {}, nce, (LOGITS, LABELS))
record("normalized_cross_entropy", {}, nce, (BIG, LABELS), note="large logits")
record("reverse_cross_entropy", {}, rce, (LOGITS, LABELS), note="reference clamps p at 1e-7 (inactive here)")
record("mae_loss", {}, mae, (LOGITS, LABELS))
for g in (0.5, 2.0):
    record("normalized_focal_loss", {"gamma": g}, nfl(g), (LOGITS, LABELS), grad=False, note="reference detaches")
for alpha, beta in ((1.0, 1.0), (10.0, 0.1)):
    kw = {"alpha": alpha, "beta": beta}
    record("nce_rce_loss", kw, combo(nce, rce, alpha, beta), (LOGITS, LABELS))
    record("nce_mae_loss", kw, combo(nce, mae, alpha, beta), (LOGITS, LABELS))
    record("nfl_rce_loss", kw, combo(nfl(0.5), rce, alpha, beta), (LOGITS, LABELS), grad=False)
    record("nfl_mae_loss", kw, combo(nfl(0.5), mae, alpha, beta), (LOGITS, LABELS), grad=False)
for kw in ({}, {"alpha": 1.0, "beta": 0.5}):
    record("symmetric_cross_entropy", kw, sce(kw.get("alpha", 0.1), kw.get("beta", 1.0)), (LOGITS, LABELS))
TEACHER = rng.normal(size=(N, CLS)) * 1.5
record("soft_symmetric_cross_entropy", {}, rmt_sce, (LOGITS, TEACHER))
for kw in ({}, {"margin": 1.0, "temperature": 0.5}):
    record(
        "label_distributionally_robust_loss",
        kw,
        ldr(kw.get("margin", 2.0), kw.get("temperature", 1.0)),
        (LOGITS, LABELS),
    )
LAM_OLD = rng.uniform(0.3, 1.0, size=(N,))
for kw in ({}, {"margin": 2.0, "temperature": 2.0, "alpha": 3.0, "softplus": True}):
    aux: dict = {}
    fn = aldr(
        LAM_OLD,
        kw.get("margin", 1.0),
        kw.get("temperature", 1.0),
        kw.get("alpha", 1.0),
        kw.get("softplus", False),
        out=aux,
    )
    record("adaptive_label_distributionally_robust_loss", kw, fn, (LOGITS, LABELS, LAM_OLD))
    cases[-1]["new_temperatures"] = aux["new"]
COMPLEMENT = (LABELS + 1 + rng.integers(0, CLS - 1, size=(N,))) % CLS
record("negative_learning_loss", {}, nlnl_negative, (LOGITS, COMPLEMENT))

PU_SCORES = rng.normal(size=(10,)) * 1.5
PU_LABELS = np.array([1, -1, -1, 1, -1, -1, 1, -1, -1, -1])  # chainer convention: 1 positive, -1 unlabeled
pu_cases = []
for prior, scores, note in ((0.3, PU_SCORES, "non-negative"), (0.7, PU_SCORES + 2.0 * (PU_LABELS < 0), "violated")):
    for nnpu in (True, False):
        x = torch.tensor(scores, requires_grad=True)
        value, x_out = pu_loss(prior, nnpu=nnpu)(x, torch.tensor(PU_LABELS))
        (g,) = torch.autograd.grad(x_out, x)
        pu_cases.append(
            {
                "prior": prior,
                "non_negative": nnpu,
                "scores": scores.tolist(),
                "labels": PU_LABELS.tolist(),
                "value": value.item(),
                "grad": g.numpy().tolist(),
                "note": note,
            }
        )


def semi_cbc_loss(inputs, targets, threshold=0.6, neg_threshold=0.3, fixed=True):
    targets_prob = F.softmax(targets, dim=1)
    pos_weight = targets_prob.max(1)[0]
    pos_mask = pos_weight >= threshold
    neg_weight = targets_prob.min(1)[0]
    neg_weight = neg_weight.unsqueeze(1).repeat(1, 4, 1, 1)
    neg_mask = neg_weight < neg_threshold
    y_tilde = torch.argmax(targets, dim=1)
    if not torch.any(pos_mask):
        positive_loss_mat = torch.tensor([0.0])
    else:
        positive_loss_mat = F.nll_loss(torch.log_softmax(inputs, dim=1), y_tilde, reduction="none")
        positive_loss_mat = positive_loss_mat * pos_weight
        positive_loss_mat = positive_loss_mat[pos_mask]
    if not torch.any(neg_mask):
        negative_loss_mat = torch.tensor([0.0])
    else:
        inverse_prob = torch.clamp(1 - F.softmax(inputs, dim=1), min=1e-6, max=1.0)
        onehot_t = torch.nn.functional.one_hot(y_tilde, num_classes=4).permute(0, 3, 1, 2)
        # As written, `~onehot` is a bitwise NOT of int64 (-1 off, -2 on the pseudo-label),
        # which makes the term -log(1-p) per class; the intended complement is -(1 - onehot) * log(1 - p).
        inverse_tilde = -(1 - onehot_t) if fixed else ~onehot_t
        negative_loss_mat = inverse_prob.log() * inverse_tilde
        negative_loss_mat = negative_loss_mat * neg_weight
        negative_loss_mat = negative_loss_mat[neg_mask]
    return positive_loss_mat.mean() + negative_loss_mat.mean()


CBC_IN = rng.normal(size=(2, 4, 3, 3)) * 1.5
CBC_PEER = rng.normal(size=(2, 4, 3, 3)) * 2.5
cbc_cases = []
for kw in ({}, {"threshold": 0.8, "neg_threshold": 0.1}):
    x = torch.tensor(CBC_IN, requires_grad=True)
    fixed = semi_cbc_loss(x, torch.tensor(CBC_PEER), **kw)
    (g,) = torch.autograd.grad(fixed, x)
    as_written = semi_cbc_loss(torch.tensor(CBC_IN), torch.tensor(CBC_PEER), fixed=False, **kw)
    cbc_cases.append(
        {
            "kwargs": kw,
            "logits_nhwc": CBC_IN.transpose(0, 2, 3, 1).tolist(),
            "peer_nhwc": CBC_PEER.transpose(0, 2, 3, 1).tolist(),
            "value": fixed.item(),
            "grad_nhwc": g.numpy().transpose(0, 2, 3, 1).tolist(),
            "value_as_written": as_written.item(),
        }
    )

out = {
    "counts": COUNTS.tolist(),
    "cbc": cbc_cases,
    "cases": cases,
    "class_balanced_weights": weights,
    "nnpu": pu_cases,
    "torch": torch.__version__,
}
(HERE / "imbalance_noisy.json").write_text(json.dumps(out, indent=1))
print(f"wrote {len(cases)} cases + {len(weights)} weight vectors + {len(pu_cases)} nnPU cases")
assert math.isfinite(sum(sum(np.ravel(c["value"])) for c in cases))
