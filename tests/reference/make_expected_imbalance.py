"""Expected outputs of the ``imbalance`` family for the conformance ``value`` property.

Run (reference env, never at test time)::

    python tests/reference/dump_inputs.py --family imbalance           # lossjax env: the inputs
    python tests/reference/make_expected_imbalance.py                  # reference env: this file

Reads ``tests/reference/inputs/imbalance.json`` and writes
``lossjax/expected/imbalance.json`` (float64 values and gradients of
``sum(cotangent * out)``), computed WITHOUT lossjax by torch 2.13.0 ports
pinned to their upstream file and commit:

- kaidic/LDAM-DRW ``losses.py@3193f05`` (``LDAMLoss``; ``torch.cuda`` -> CPU);
- orparask/VS-Loss ``class_imbalance/losses.py@7ade9c9`` (``VSLoss``);
- google-research/google-research ``logit_adjustment/main.py@ccc94ce`` (``logits + tau * log(base_probs)``, then CE);
- jiawei-ren/BalancedMetaSoftmax-Classification ``loss/BalancedSoftmaxLoss.py@34a61e4``
  (``balanced_softmax_loss``, reduction 'none');
- Alibaba-MIIL/ASL ``src/loss_functions/losses.py@0a21a18`` (``AsymmetricLoss``, ``ASLSingleLabel``);
- richardaecn/class-balanced-loss ``src/cifar_main.py@302f8af`` (effective number weights, numpy) and
  the inverse-frequency / inverse-sqrt recipes of the same normalization;
- closed forms (no implementation located): the integrated risk ``q^T L softmax(z)``
  and the squared error plus the binned cross-entropy (torch ``F.cross_entropy``).

``-inf`` logits are the limit of the upstream formula (``-1e150`` in float64, see
``make_expected_classification.py``); ASLSingleLabel's smoothing then spreads
over the classes with a finite logit (lossjax's documented convention).
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from expected_io import write_expected
from make_expected_classification import TORCH, make, onehot, smoothed, torch_vg

FAMILY = "imbalance"


def _ce(x, target, weight):
    w = None if weight is None else torch.tensor(np.asarray(weight, np.float64))
    return F.cross_entropy(x, target, weight=w, reduction="none")


def ldam_loss(args, kw, diff):
    counts = np.asarray(kw["class_counts"], np.float64)
    max_m, s, weight = kw.get("max_margin", 0.5), kw.get("scale", 30.0), kw.get("class_weights")
    # kaidic/LDAM-DRW losses.py@3193f05 LDAMLoss.__init__ / forward (CPU, reduction 'none').
    m_list = 1.0 / np.sqrt(np.sqrt(counts))
    m_list = torch.tensor(m_list * (max_m / np.max(m_list)))

    def f(x, target):
        index = torch.zeros_like(x, dtype=torch.uint8)
        index.scatter_(1, target.data.view(-1, 1), 1)
        batch_m = torch.matmul(m_list[None, :], index.type(torch.float64).transpose(0, 1)).view((-1, 1))
        output = torch.where(index.bool(), x - batch_m, x)
        return _ce(s * output, target, weight)

    return "kaidic/LDAM-DRW losses.py@3193f05 LDAMLoss (port)", torch_vg(f, args, diff)


def logit_adjusted_cross_entropy(args, kw, diff):
    priors = np.asarray(kw["class_priors"], np.float64)
    tau, weight = kw.get("prior_exponent", 1.0), kw.get("class_weights")
    base_probs = torch.tensor(priors / priors.sum())

    def f(x, target):
        # google-research logit_adjustment/main.py@ccc94ce: logits + tau * log(base_probs), then cross-entropy.
        return _ce(x + tau * torch.log(base_probs), target, weight)

    return "google-research logit_adjustment/main.py@ccc94ce (port) + torch F.cross_entropy(weight=)", torch_vg(
        f, args, diff
    )


def balanced_softmax_cross_entropy(args, kw, diff):
    sample_per_class = torch.tensor(np.asarray(kw["class_counts"]))

    def f(logits, labels):
        # jiawei-ren/BalancedMetaSoftmax-Classification loss/BalancedSoftmaxLoss.py@34a61e4 balanced_softmax_loss.
        spc = sample_per_class.type_as(logits)
        spc = spc.unsqueeze(0).expand(logits.shape[0], -1)
        logits = logits + spc.log()
        return F.cross_entropy(input=logits, target=labels, reduction="none")

    return "jiawei-ren/BalancedMetaSoftmax-Classification loss/BalancedSoftmaxLoss.py@34a61e4 (port)", torch_vg(
        f, args, diff
    )


def vs_loss(args, kw, diff):
    cls_num_list = np.asarray(kw["class_counts"], np.float64)
    gamma, tau, weight = kw.get("gamma", 0.3), kw.get("prior_exponent", 1.0), kw.get("class_weights")
    # orparask/VS-Loss class_imbalance/losses.py@7ade9c9 VSLoss.__init__ / forward.
    cls_probs = [cls_num / sum(cls_num_list) for cls_num in cls_num_list]
    temp = (1.0 / np.array(cls_num_list)) ** gamma
    temp = temp / np.min(temp)
    iota_list = torch.tensor(tau * np.log(cls_probs))
    delta_list = torch.tensor(temp)

    def f(x, target):
        return _ce(x / delta_list + iota_list, target, weight)

    return "orparask/VS-Loss class_imbalance/losses.py@7ade9c9 VSLoss (port)", torch_vg(f, args, diff)


def asymmetric_loss(args, kw, diff):
    gamma_neg, gamma_pos = kw.get("gamma_neg", 4.0), kw.get("gamma_pos", 1.0)
    clip, eps = kw.get("margin", 0.05), kw.get("epsilon", 1e-8)

    def f(x, y):
        # Alibaba-MIIL/ASL src/loss_functions/losses.py@0a21a18 AsymmetricLoss.forward, per element (-loss).
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
            loss = loss * one_sided_w
        return -loss

    return "Alibaba-MIIL/ASL src/loss_functions/losses.py@0a21a18 AsymmetricLoss (port)", torch_vg(f, args, diff)


def asymmetric_single_label_loss(args, kw, diff):
    gamma_pos, gamma_neg, eps = kw.get("gamma_pos", 0.0), kw.get("gamma_neg", 4.0), kw.get("label_smoothing", 0.1)
    z, y = args
    # The smoothed targets (ASLSingleLabel: targets * (1 - eps) + eps / C) over the classes with a finite logit.
    smooth = torch.tensor(smoothed(y, z, eps))

    def f(inputs, target):
        # Alibaba-MIIL/ASL src/loss_functions/losses.py@0a21a18 ASLSingleLabel.forward, reduction 'none'.
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
        return -smooth.mul(log_preds).sum(dim=-1)

    return "Alibaba-MIIL/ASL src/loss_functions/losses.py@0a21a18 ASLSingleLabel (port)", torch_vg(f, args, diff)


def class_balanced_weights(args, kw, diff):
    (counts,) = args
    counts = np.asarray(counts, np.float64)
    variant, beta, normalize = kw.get("variant", "effective_number"), kw.get("beta", 0.9999), kw.get("normalize", True)
    present = counts > 0
    safe = np.where(present, counts, 1.0)
    if variant == "effective_number":
        # richardaecn/class-balanced-loss src/cifar_main.py@302f8af: (1 - beta) / (1 - beta^n), sum = C.
        w = (1.0 - beta) / (1.0 - np.power(beta, safe))
    elif variant == "inverse_frequency":
        w = 1.0 / safe
    else:
        w = 1.0 / np.sqrt(safe)
    w = np.where(present, w, 0.0)  # empty classes never occur as a target: weight 0
    if normalize:
        w = w / np.sum(w) * len(counts)
    return "richardaecn/class-balanced-loss src/cifar_main.py@302f8af weights (numpy port)", (w, [])


def integrated_risk_loss(args, kw, diff):
    matrix = torch.tensor(np.asarray(kw["loss_matrix"], np.float64))
    c = matrix.shape[0]
    return "closed form q^T L softmax(z) (Li et al. 2023), torch float64", torch_vg(
        lambda z, y: ((onehot(y, c) @ matrix) * F.softmax(z, -1)).sum(-1), args, diff
    )


def classification_aux_for_regression(args, kw, diff):
    edges = np.asarray(kw["bin_edges"], np.float64)
    lam = kw.get("aux_weight", 1.0)
    bins = torch.tensor(np.sum(args[2][:, None] >= edges[None, :], axis=-1))
    src = f"closed form (f - y)^2 + aux_weight {TORCH} F.cross_entropy(bin_logits, #edges <= y)"
    return src, torch_vg(lambda f, b, y: (f - y) ** 2 + lam * F.cross_entropy(b, bins, reduction="none"), args, diff)


REFERENCES = {
    name: globals()[name]
    for name in (
        "asymmetric_loss",
        "asymmetric_single_label_loss",
        "balanced_softmax_cross_entropy",
        "class_balanced_weights",
        "classification_aux_for_regression",
        "integrated_risk_loss",
        "ldam_loss",
        "logit_adjusted_cross_entropy",
        "vs_loss",
    )
}

if __name__ == "__main__":
    recs = make(FAMILY, REFERENCES)
    path = write_expected(FAMILY, recs)
    print(f"{path}: {len(recs)} entries, {sum(len(r['cases']) for r in recs.values())} cases")
