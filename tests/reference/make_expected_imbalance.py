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
  and the squared error plus the binned cross-entropy (torch ``F.cross_entropy``);
- Machine-Earning/CISIR ``modules/training/ts_modeling.py@5f3ddd2`` (``cmse``, ``coreg``; TF -> torch,
  ``K.epsilon()`` -> the ``epsilon`` argument);
- towardsautonomy/DatasetEquity ``README.md@d6898ad`` (``dequity_loss_weight`` times the loss);
- bluecdm/Long-tailed-recognition ``losses.py@1ff816c`` (``GMLLoss.get_logS_x_y``, ``forward``, ``DistillKL``;
  per query instead of the batch mean, the temperature a constant);
- JackHck/SBCL ``SimCLR/loss.py@3b9047a`` (``SupConLoss_rank.forward``, its default ``train_rule='Rank'``;
  ``.cuda()`` -> CPU, the ranking temperatures passed per class).

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


def cisir_loss(args, kw, diff):
    lam, normalized, eps = (
        kw.get("correlation_weight", 1.0),
        kw.get("normalized_weights", True),
        kw.get("epsilon", 1e-7),
    )
    mse_w = torch.tensor(np.asarray(args[2], np.float64))
    pcc_w = torch.tensor(np.asarray(args[3], np.float64))

    def coreg(y_true, y_pred, pcc_weights):  # ts_modeling.py::coreg
        if pcc_weights is None:
            pcc_weights = torch.ones_like(y_true)
        y_true_centered = y_true - torch.mean(y_true)
        y_pred_centered = y_pred - torch.mean(y_pred)
        cov = torch.sum(pcc_weights * y_true_centered * y_pred_centered)
        var_y_true = torch.sum(pcc_weights * torch.square(y_true_centered))
        var_y_pred = torch.sum(pcc_weights * torch.square(y_pred_centered))
        pcc = cov / (torch.sqrt(var_y_true * var_y_pred) + eps)
        return 1.0 - pcc

    def f(y_pred, y_true, _w, _v):  # ts_modeling.py::cmse (no asymmetric weights, no bias penalty)
        if normalized:
            mse = torch.sum(mse_w * torch.square(y_pred - y_true))
        else:
            mse = torch.mean(mse_w * torch.square(y_pred - y_true))
        if lam == 0:
            return mse
        return mse + lam * coreg(y_true, y_pred, pcc_w)

    return "Machine-Earning/CISIR modules/training/ts_modeling.py@5f3ddd2 cmse + coreg (torch port)", torch_vg(
        f, args, diff
    )


def generalized_focal_equity_loss(args, kw, diff):
    eta, gamma = kw.get("eta", 1.0), kw.get("gamma", 5.0)
    w = torch.tensor((eta + (1 - np.asarray(args[1], np.float64)) ** gamma) / (eta + 1))
    return "towardsautonomy/DatasetEquity README.md@d6898ad dequity_loss_weight * loss (closed form)", torch_vg(
        lambda loss, _p: w * loss, args, diff
    )


def gml_loss(args, kw, diff):
    num_classes = args[2].shape[1]
    cls_num = torch.tensor(np.asarray(kw["class_priors"], np.float64))
    cls_weight = cls_num / cls_num.sum()  # GMLLoss.cal_weight_for_classes
    t_c = kw.get("temperature", 0.07)
    t_s = kw.get("logit_temperature", 1.0 / 30.0)
    beta, gamma, alpha = kw.get("contrastive_weight", 1.0), kw.get("ce_weight", 1.0), kw.get("distill_weight", 0.0)
    t_kd = kw.get("distill_temperature", 4.0)

    def get_log_s(logits, weights, target):  # GMLLoss.get_logS_x_y
        max_logit = logits.amax(1, keepdim=True).detach()
        logits = logits - max_logit
        one_hot = F.one_hot(target, num_classes).double()
        sumexp_logits_per_cls = (logits.exp() * weights) @ one_hot
        sum_weights_per_cls = weights @ one_hot
        meanexp_logits_per_cls = sumexp_logits_per_cls / sum_weights_per_cls
        return meanexp_logits_per_cls.log() + max_logit

    def f(query, q_labels, sup_logits, key, k_labels, q_idx, k_idx, t_logits):  # GMLLoss.forward, per query
        q_dot_k = query @ key.T / t_c
        qk_mask = torch.ones_like(q_idx[:, None] != k_idx[None, :]).double()
        log_s = get_log_s(q_dot_k, qk_mask, k_labels)
        q_dot_k_t = (query @ key.T).detach() / t_c
        qk_mask_t = (q_idx[:, None] != k_idx[None, :]).double()
        log_s_t = get_log_s(q_dot_k_t, qk_mask_t, k_labels)
        loss_sup = F.cross_entropy(sup_logits / t_s + cls_weight.log(), q_labels, reduction="none")
        loss_con = F.cross_entropy(log_s + cls_weight.log(), q_labels, reduction="none")
        loss_con_t = F.cross_entropy(log_s_t + cls_weight.log(), q_labels, reduction="none")
        loss = gamma * loss_sup
        if beta > 0:
            loss = loss + beta * (loss_con + loss_con_t)
        if alpha > 0 and t_logits is not None:  # DistillKL(T=4) on sup_logits / T_s, t_logits / T_s
            p_s = F.log_softmax(sup_logits / t_s / t_kd, dim=1)
            p_t = F.softmax(t_logits / t_s / t_kd, dim=1)
            loss = loss + alpha * F.kl_div(p_s, p_t, reduction="none").sum(1) * t_kd**2
        return loss

    return "bluecdm/Long-tailed-recognition losses.py@1ff816c GMLLoss (torch port, per query)", torch_vg(f, args, diff)


def subclass_balancing_contrastive_loss(args, kw, diff):
    temperature, base_temperature = kw.get("temperature", 0.1), kw.get("base_temperature", 0.07)
    grama = kw.get("class_level_weight", 0.25)
    temps = kw.get("class_temperatures")
    num_class = int(max(args[2])) + 1 if temps is None else len(temps)
    ranking = np.full(num_class, temperature) if temps is None else np.asarray(temps, np.float64)

    def f(f1, f2, labels, cluster_target):  # SupConLoss_rank.forward (features = cat of the two views on dim 1)
        features = torch.cat([f1.unsqueeze(1), f2.unsqueeze(1)], dim=1)
        batch_size = features.shape[0]
        cluster_target = cluster_target.contiguous().view(-1, 1)
        mask = torch.eq(cluster_target, cluster_target.T).double()
        contrast_count = features.shape[1]
        contrast_feature = torch.cat(torch.unbind(features, dim=1), dim=0)
        anchor_feature = contrast_feature
        anchor_count = contrast_count
        anchor_dot_contrast = torch.div(torch.matmul(anchor_feature, contrast_feature.T), temperature)
        logits_max, _ = torch.max(anchor_dot_contrast, dim=1, keepdim=True)
        logits = anchor_dot_contrast - logits_max.detach()
        one_hot_labels = F.one_hot(labels, num_classes=num_class)
        one_hot_labels = one_hot_labels.repeat(anchor_count, 1).double()
        ranking_temperature = torch.from_numpy(ranking).double()
        ranking_temperature = torch.matmul(one_hot_labels, ranking_temperature.T)
        ranking_temperature = ranking_temperature.unsqueeze(0).T
        anchor_rank_contrast = torch.div(torch.matmul(anchor_feature, contrast_feature.T), ranking_temperature)
        logits_rank_max, _ = torch.max(anchor_rank_contrast, dim=1, keepdim=True)
        logits_rank = anchor_rank_contrast - logits_rank_max.detach()
        mask = mask.repeat(anchor_count, contrast_count)
        logits_mask = torch.scatter(torch.ones_like(mask), 1, torch.arange(batch_size * anchor_count).view(-1, 1), 0)
        mask = mask * logits_mask
        exp_logits = torch.exp(logits) * logits_mask
        log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))
        mean_log_prob_pos = (mask * log_prob).sum(1) / mask.sum(1)
        labels = labels.contiguous().view(-1, 1)
        label_mask = torch.eq(labels, labels.T).double()
        label_mask = label_mask.repeat(anchor_count, contrast_count)
        inverse_cluster_target = (~mask.bool()).double()
        logits_label_mask = inverse_cluster_target * logits_mask
        rows = np.arange(batch_size, batch_size * anchor_count).tolist()
        rows.extend(np.arange(batch_size).tolist())
        ad_mask = torch.scatter(torch.zeros(mask.size(0), mask.size(1)), 0, torch.tensor([rows]), 1).double()
        ad_logits_label_mask = ad_mask + logits_label_mask
        exp_logits_rank = torch.exp(logits_rank) * ad_logits_label_mask
        label_mask = logits_label_mask * label_mask
        label_mask = ad_mask + label_mask
        log_prob_rank = logits_rank - torch.log(exp_logits_rank.sum(1, keepdim=True))
        mean_log_label_pos = (label_mask * log_prob_rank).sum(1) / label_mask.sum(1)
        loss = -(temperature / base_temperature) * mean_log_prob_pos - grama * (mean_log_label_pos)
        return loss.mean()

    return "JackHck/SBCL SimCLR/loss.py@3b9047a SupConLoss_rank (torch port)", torch_vg(f, args, diff)


REFERENCES = {
    name: globals()[name]
    for name in (
        "asymmetric_loss",
        "asymmetric_single_label_loss",
        "balanced_softmax_cross_entropy",
        "cisir_loss",
        "class_balanced_weights",
        "classification_aux_for_regression",
        "generalized_focal_equity_loss",
        "gml_loss",
        "integrated_risk_loss",
        "ldam_loss",
        "logit_adjusted_cross_entropy",
        "subclass_balancing_contrastive_loss",
        "vs_loss",
    )
}

if __name__ == "__main__":
    recs = make(FAMILY, REFERENCES)
    path = write_expected(FAMILY, recs)
    print(f"{path}: {len(recs)} entries, {sum(len(r['cases']) for r in recs.values())} cases")
