"""Expected outputs of the ``noisy`` family for the conformance ``value`` property.

Run (reference env, never at test time)::

    python tests/reference/dump_inputs.py --family noisy               # lossjax env: the inputs
    python tests/reference/make_expected_noisy.py                      # reference env: this file

Reads ``tests/reference/inputs/noisy.json`` and writes ``lossjax/expected/noisy.json``
(float64 values and gradients of ``sum(cotangent * out)``), computed WITHOUT
lossjax by torch 2.13.0 ports pinned to their upstream file and commit:

- HanxunH/Active-Passive-Losses ``loss.py@0c207f7``: ``NormalizedCrossEntropy``,
  ``ReverseCrossEntropy``, ``MeanAbsoluteError``, ``NormalizedFocalLoss``,
  ``SCELoss``, ``GeneralizedCrossEntropy``, the ``NCEandRCE`` ... combinations;
- Optimization-AI/ICML2023_LDR ``loss.py@732fc85``: ``LDRLoss_V1``, ``ALDRLoss_V1``;
- mariodoebler/test-time-adaptation ``classification/methods/rmt.py@a6f3c95``: ``symmetric_cross_entropy``;
- kiryor/nnPUlearning ``pu_loss.py@1c62960``: ``PULoss`` (chainer -> torch; the gradient is ``x_out``'s);
- yyliu01/TraCoCo ``Code/UnetACDC/Utils/losses.py@1410c45``: ``semi_cbc_loss`` (its
  ``~onehot`` bitwise NOT of an int64 tensor replaced by the intended ``1 - onehot``);
- closed forms: NLNL's negative term ``-log(1 - p_ybar) = lse(z) - lse(z without ybar)``
  and the Z-error loss (arXiv:2506.02154, no code located).

Where lossjax documents a deliberate difference from a reference, the port
follows lossjax: no ``1e-7`` clamp of ``p`` (RCE, SCE, GCE), no ``1e-5``/``1e-6``
clamp of ``1 - p`` (NLNL, CBC), and NFL differentiates the paper's function
(the reference detaches its modulating factor and normalizer with ``.data``).
Powers ``(1 - p)^gamma`` are evaluated as ``exp(gamma log(1 - p))`` with
``log(1 - p_k) = logsumexp_{j != k} log p_j`` so that ``p = 1`` in float64 keeps a
finite (zero) gradient. ``-inf`` logits are the limit of the formula (``-1e150``).
"""

from __future__ import annotations

import math
import pathlib
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from expected_io import write_expected
from make_expected_classification import make, onehot, torch_vg

FAMILY = "noisy"
APL = "HanxunH/Active-Passive-Losses loss.py@0c207f7"
LDR = "Optimization-AI/ICML2023_LDR loss.py@732fc85"


def targets(y, c):
    return onehot(y, c) if not torch.is_floating_point(y) else y


def log1m_softmax(logits):
    """log(1 - p_k) = logsumexp_{j != k} log_softmax_j, exact in float64 also where p_k rounds to 1."""
    c = logits.shape[-1]
    lp = F.log_softmax(logits, -1)
    eye = torch.eye(c, dtype=torch.bool)
    others = torch.where(eye, torch.tensor(-torch.inf), lp[..., None, :])  # [..., k, j]
    return torch.logsumexp(others, -1)


# ----------------------------- active / passive -----------------------------


def nce(pred, labels):
    # APL NormalizedCrossEntropy.forward, per example.
    pred = F.log_softmax(pred, dim=1)
    return -1 * torch.sum(targets(labels, pred.shape[1]) * pred, dim=1) / (-pred.sum(dim=1))


def rce(pred, labels, floor=1e-4):
    # APL ReverseCrossEntropy.forward without its clamp(p, 1e-7) (lossjax is exact), per example.
    pred = F.softmax(pred, dim=1)
    label_one_hot = torch.clamp(targets(labels, pred.shape[1]), min=floor, max=1.0)
    return -1 * torch.sum(pred * torch.log(label_one_hot), dim=1)


def mae(pred, labels):
    # APL MeanAbsoluteError.forward (the reduced MAE 1 - p_y), per example.
    pred = F.softmax(pred, dim=1)
    return 1.0 - torch.sum(targets(labels, pred.shape[1]) * pred, dim=1)


def nfl(gamma):
    def forward(input, target):
        # APL NormalizedFocalLoss.forward with the .data detaches removed (the paper's function), per example.
        logpt_all = F.log_softmax(input, dim=1)
        modulating = torch.exp(gamma * log1m_softmax(input))  # (1 - p_k)^gamma
        normalizor = torch.sum(-1 * modulating * logpt_all, dim=1)
        q = targets(target, input.shape[1])
        loss = torch.sum(q * -1 * modulating * logpt_all, dim=1)
        return loss / normalizor

    return forward


def _apl(active, passive, alpha, beta, gamma, floor):
    act = nce if active == "nce" else nfl(gamma)
    pas = (lambda x, y: rce(x, y, floor)) if passive == "rce" else mae
    return lambda x, y: alpha * act(x, y) + beta * pas(x, y)


def normalized_cross_entropy(args, kw, diff):
    return f"{APL} NormalizedCrossEntropy (port)", torch_vg(nce, args, diff)


def reverse_cross_entropy(args, kw, diff):
    floor = kw.get("label_floor", 1e-4)
    return f"{APL} ReverseCrossEntropy (port, no p clamp)", torch_vg(lambda x, y: rce(x, y, floor), args, diff)


def mae_loss(args, kw, diff):
    return f"{APL} MeanAbsoluteError (port)", torch_vg(mae, args, diff)


def normalized_focal_loss(args, kw, diff):
    return f"{APL} NormalizedFocalLoss (port, paper's gradient)", torch_vg(nfl(kw.get("gamma", 0.5)), args, diff)


def normalized_active_passive_loss(args, kw, diff):
    a, p = kw.get("active", "nce"), kw.get("passive", "rce")
    f = _apl(a, p, kw.get("alpha", 1.0), kw.get("beta", 1.0), kw.get("gamma", 0.5), kw.get("label_floor", 1e-4))
    return f"{APL} {a.upper()}and{p.upper()} (port)", torch_vg(f, args, diff)


def _named_apl(active, passive):
    def ref(args, kw, diff):
        f = _apl(
            active,
            passive,
            kw.get("alpha", 1.0),
            kw.get("beta", 1.0),
            kw.get("gamma", 0.5),
            kw.get("label_floor", 1e-4),
        )
        return f"{APL} {active.upper()}and{passive.upper()} (port)", torch_vg(f, args, diff)

    return ref


nce_rce_loss = _named_apl("nce", "rce")
nce_mae_loss = _named_apl("nce", "mae")
nfl_rce_loss = _named_apl("nfl", "rce")
nfl_mae_loss = _named_apl("nfl", "mae")


def symmetric_cross_entropy(args, kw, diff):
    alpha, beta, floor = kw.get("alpha", 0.1), kw.get("beta", 1.0), kw.get("label_floor", 1e-4)

    def f(pred, labels):
        # APL SCELoss.forward, per example, without the clamp(p, 1e-7) of its RCE term.
        ce = F.cross_entropy(pred, labels, reduction="none")
        return alpha * ce + beta * rce(pred, labels, floor)

    return f"{APL} SCELoss (port, no p clamp)", torch_vg(f, args, diff)


def generalized_cross_entropy(args, kw, diff):
    q = kw.get("q", 0.7)

    def f(pred, labels):
        # APL GeneralizedCrossEntropy.forward (1 - p_y^q) / q, per example; p_y^q = exp(q log_softmax_y),
        # without its clamp(p, 1e-7).
        logp_y = (targets(labels, pred.shape[1]) * F.log_softmax(pred, dim=1)).sum(1)
        return (1.0 - torch.exp(q * logp_y)) / q

    return f"{APL} GeneralizedCrossEntropy (port, no p clamp)", torch_vg(f, args, diff)


def soft_symmetric_cross_entropy(args, kw, diff):
    alpha = kw.get("alpha", 0.5)

    def f(x, x_ema):
        # mariodoebler/test-time-adaptation rmt.py@a6f3c95 symmetric_cross_entropy, its alpha = 0.5 made a parameter.
        loss = -(1 - alpha) * (x_ema.softmax(1) * x.log_softmax(1)).sum(1)
        return loss - alpha * (x.softmax(1) * x_ema.log_softmax(1)).sum(1)

    return "mariodoebler/test-time-adaptation classification/methods/rmt.py@a6f3c95 (port)", torch_vg(f, args, diff)


def negative_learning_loss(args, kw, diff):
    def f(z, y):
        # -log(1 - p_ybar) = logsumexp(z) - logsumexp_{k != ybar} z (NLNL's negative term, exact: no 1e-5 clamp).
        others = torch.where(onehot(y, z.shape[-1]) > 0, torch.tensor(-torch.inf), z)
        return torch.logsumexp(z, -1) - torch.logsumexp(others, -1)

    return f"closed form of {APL} NLNL's negative term (no 1e-5 clamp)", torch_vg(f, args, diff)


# ------------------------------------ LDR ------------------------------------


def _get_diff_logits(y_pred, y_true):
    # ICML2023_LDR loss.py get_diff_logits.
    return y_pred - torch.sum(y_pred * y_true, dim=1, keepdim=True)


def label_distributionally_robust_loss(args, kw, diff):
    threshold, lam, softplus = kw.get("margin", 2.0), kw.get("temperature", 1.0), kw.get("softplus", True)

    def f(y_pred, labels):
        # LDRLoss_V1.forward per example; softplus optional (off: ALDRLoss_V1's ||y||_1 / C normalization).
        y_true = onehot(labels, y_pred.shape[1])
        if softplus:
            y_pred = F.softplus(y_pred)
        y_denorm = torch.norm(y_pred, dim=1, p=1.0, keepdim=True) / y_pred.shape[1]
        y_pred = y_pred / torch.where(y_denorm > 0, y_denorm, 1.0)  # an all-zero row stays 0 (lossjax; upstream 0/0)
        diff_logits = (threshold * (1 - y_true) + _get_diff_logits(y_pred, y_true)) / lam
        max_diff = torch.max(diff_logits, dim=1, keepdim=True).values.detach()
        diff_logits = torch.exp(diff_logits - max_diff)
        return (lam * (torch.log(torch.mean(diff_logits, dim=1, keepdim=True)) + max_diff))[:, 0]

    return f"{LDR} LDRLoss_V1 (port)", torch_vg(f, args, diff)


def adaptive_label_distributionally_robust_loss(args, kw, diff):
    threshold, lam0 = kw.get("margin", 1.0), kw.get("temperature", 1.0)
    alpha, softplus = kw.get("alpha", 1.0), kw.get("softplus", False)
    z, y, lam_old = args
    out = {}

    def f(y_pred, labels):
        # ALDRLoss_V1.forward per example (CPU), self.Lambda[ids] = the given temperatures; returns the new ones.
        lambda_ref = torch.tensor(lam0)
        lambdas_state = torch.tensor(np.asarray(lam_old, np.float64)).view(-1, 1)
        y_true = onehot(labels, y_pred.shape[1])
        num_class = y_pred.shape[1]
        if softplus:
            y_pred = F.softplus(y_pred)
        y_denorm = torch.norm(y_pred, dim=1, p=1.0, keepdim=True) / num_class
        y_pred = y_pred / torch.where(y_denorm > 0, y_denorm, 1.0)  # an all-zero row stays 0 (lossjax; upstream 0/0)
        pred_prob = F.softmax(y_pred / lambdas_state, dim=1) + 1e-5
        pred_prob = F.normalize(pred_prob, p=1.0)
        kl_reg = torch.sum(pred_prob * torch.log(num_class * pred_prob), dim=1, keepdim=True)
        log_k = torch.log(torch.tensor(float(num_class)))
        lambdas = (lambda_ref - lambda_ref * kl_reg / (alpha * log_k)).detach()
        out["new"] = lambdas[:, 0].numpy()
        extra_loss = -1 / 2 * alpha * log_k / lambda_ref * (lambdas - lambda_ref) ** 2
        d = (threshold * (1 - y_true) + _get_diff_logits(y_pred, y_true)) / lambdas
        max_diff_fix = torch.max(d, dim=1, keepdim=True).values.detach()
        d = torch.exp(d - max_diff_fix)
        loss = lambdas * (torch.log(torch.mean(d, dim=1, keepdim=True)) + max_diff_fix) + extra_loss
        return loss[:, 0]

    value, grads = torch_vg(f, [z, y], diff[:1])
    return f"{LDR} ALDRLoss_V1 (port)", (value, grads, out["new"])


# ------------------------------- batch filters -------------------------------


def z_error_loss(args, kw, diff):
    k = kw.get("threshold", 3.0)

    def f(pred, target):
        # Z-error (arXiv:2506.02154, ZMSELoss): per-sample MSE, unbiased batch z-score (no gradient), mean of |z| <= k.
        err = ((pred - target) ** 2).reshape(pred.shape[0], -1).mean(-1)
        e = err.detach()
        sd = e.std(unbiased=True)
        z = (e - e.mean()) / sd if sd > 0 else torch.zeros_like(e)
        keep = (z.abs() <= k).double()
        return (keep * err).sum() / keep.sum().clamp(min=1)

    return "closed form of arXiv:2506.02154 (ZMSELoss), torch float64", torch_vg(f, args, diff)


def nonnegative_pu_risk(args, kw, diff):
    prior, beta, gamma = kw["prior"], kw.get("beta", 0.0), kw.get("gamma", 1.0)
    nnpu = kw.get("non_negative", True)
    surrogate = kw.get("surrogate", "sigmoid")
    x_np, t_np = args
    t_np = np.where(np.asarray(t_np) > 0, 1, -1)  # lossjax: 1 positive, 0/-1 unlabeled; chainer: 1 / -1
    loss_func = torch.sigmoid if surrogate == "sigmoid" else F.softplus  # l(z) = sigmoid(-z) | softplus(-z)
    x = torch.tensor(np.asarray(x_np, np.float64), requires_grad=True)
    t = torch.tensor(t_np)
    # kiryor/nnPUlearning pu_loss.py@1c62960 PULoss.forward / backward (chainer -> torch).
    positive, unlabeled = (t == 1).double(), (t == -1).double()
    n_positive, n_unlabeled = max(1.0, positive.sum().item()), max(1.0, unlabeled.sum().item())
    y_positive = loss_func(-x)
    y_unlabeled = loss_func(x)
    positive_loss = torch.sum(prior * positive / n_positive * y_positive)
    unlabeled_loss = torch.sum((unlabeled / n_unlabeled - prior * positive / n_positive) * y_unlabeled)
    objective = positive_loss + unlabeled_loss
    x_out = objective
    if nnpu and unlabeled_loss.item() < -beta:
        objective = positive_loss - beta
        x_out = -gamma * unlabeled_loss
    (g,) = torch.autograd.grad(x_out, x)
    return "kiryor/nnPUlearning pu_loss.py@1c62960 PULoss (chainer -> torch port)", (
        objective.detach().numpy(),
        [g.numpy()],
    )


def cross_model_confident_bce(args, kw, diff):
    threshold, neg_threshold = kw.get("threshold", 0.6), kw.get("neg_threshold", 0.3)
    c = args[0].shape[-1]

    def f(z, peer):
        # yyliu01/TraCoCo Code/UnetACDC/Utils/losses.py@1410c45 semi_cbc_loss on NCHW = [N, C, 1, 1],
        # with `~onehot` as the intended complement 1 - onehot and log(1 - p) exact (no 1e-6 clamp).
        inputs = z[:, :, None, None]  # [N, C, 1, 1]
        targets_ = peer[:, :, None, None]
        targets_prob = F.softmax(targets_, dim=1)
        pos_weight = targets_prob.max(1)[0]
        pos_mask = pos_weight >= threshold
        neg_weight = targets_prob.min(1)[0]
        neg_weight = neg_weight.unsqueeze(1).repeat(1, c, 1, 1)
        neg_mask = neg_weight < neg_threshold
        y_tilde = torch.argmax(targets_, dim=1)
        if not torch.any(pos_mask):
            positive = torch.tensor([0.0])
        else:
            positive = F.nll_loss(torch.log_softmax(inputs, dim=1), y_tilde, reduction="none") * pos_weight
            positive = positive[pos_mask]
        if not torch.any(neg_mask):
            negative = torch.tensor([0.0])
        else:
            inverse_log_prob = log1m_softmax(inputs.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            onehot_t = F.one_hot(y_tilde, num_classes=c).permute(0, 3, 1, 2)
            negative = inverse_log_prob * -(1 - onehot_t) * neg_weight
            negative = negative[neg_mask]
        return positive.mean() + negative.mean()

    src = "yyliu01/TraCoCo Code/UnetACDC/Utils/losses.py@1410c45 semi_cbc_loss (port, 1 - onehot)"
    return src, torch_vg(f, args, diff)


REFERENCES = {
    name: globals()[name]
    for name in (
        "adaptive_label_distributionally_robust_loss",
        "cross_model_confident_bce",
        "generalized_cross_entropy",
        "label_distributionally_robust_loss",
        "mae_loss",
        "nce_mae_loss",
        "nce_rce_loss",
        "negative_learning_loss",
        "nfl_mae_loss",
        "nfl_rce_loss",
        "nonnegative_pu_risk",
        "normalized_active_passive_loss",
        "normalized_cross_entropy",
        "normalized_focal_loss",
        "reverse_cross_entropy",
        "soft_symmetric_cross_entropy",
        "symmetric_cross_entropy",
        "z_error_loss",
    )
}

if __name__ == "__main__":
    recs = make(FAMILY, REFERENCES)
    path = write_expected(FAMILY, recs)
    print(f"{path}: {len(recs)} entries, {sum(len(r['cases']) for r in recs.values())} cases")
    assert math.isfinite(0.0)
