"""Expected outputs of the segmentation family's conformance value cases (``lossjax/expected/segmentation.json``).

Independent float64 implementations, never lossjax (run in the reference environment)::

    python tests/reference/dump_inputs.py --family segmentation   # the inputs (lossjax env)
    python tests/reference/make_expected_segmentation.py           # torch 2.13.0, MONAI 1.6.1

The references take lossjax's channels-last inputs ``[B, *spatial, C]``, move the class axis
to MONAI's channels-first layout and call (float64, autograd for the gradients):

- MONAI 1.6.1 ``DiceLoss`` (also ``jaccard=True``), ``GeneralizedDiceLoss``, ``TverskyLoss``,
  ``MCCLoss``, ``DiceCELoss``, ``SoftDiceclDiceLoss``, ``BoundaryLoss``, ``HausdorffDTLoss``
  with ``reduction="none"`` (per image and class) or one image at a time, and its focal-loss
  functions ``sigmoid_focal_loss`` / ``softmax_focal_loss`` (``FocalLoss.forward`` casts to
  float32, so its per-element functions are called and its reduction re-done here);
  the class reduction (mean, absent classes, class weights where MONAI has none) is written
  here in torch;
- a torch port of bermanmaxim/LovaszSoftmax@7d48792d35a04d3167de488dd00daabbccd8334b
  ``pytorch/lovasz_losses.py`` (``lovasz_grad``, ``lovasz_softmax_flat``, ``lovasz_hinge_flat``),
  with a stable sort (ties keep the pixel order, the rule lossjax documents);
- a torch port of ShannonAI/dice_loss_for_NLP@d1ff9e5295857f63e6884f997fdf64981811b473
  ``loss/dice_loss.py::DiceLoss._compute_dice_loss`` (its binary path, per class);
- closed forms (``F.binary_cross_entropy_with_logits``) for the class-independent BCE.

MONAI's distance transforms (BoundaryLoss, HausdorffDTLoss) return float32 distances; they are
integers or square roots of integers, exact to float32 rounding.
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expected_io as E

warnings.filterwarnings("ignore")
torch.set_default_dtype(torch.float64)

import monai  # noqa: E402
from monai.losses import (  # noqa: E402
    BoundaryLoss,
    DiceCELoss,
    DiceLoss,
    GeneralizedDiceLoss,
    HausdorffDTLoss,
    MCCLoss,
    SoftDiceclDiceLoss,
    TverskyLoss,
)
from monai.losses.focal_loss import sigmoid_focal_loss, softmax_focal_loss  # noqa: E402

FAMILY = "segmentation"
MONAI = f"MONAI {monai.__version__}"
LOVASZ = "bermanmaxim/LovaszSoftmax@7d48792 pytorch/lovasz_losses.py (torch port, stable sort)"
SHANNON = "ShannonAI/dice_loss_for_NLP@d1ff9e5 loss/dice_loss.py::DiceLoss._compute_dice_loss (torch port)"


# ------------------------------------------------------------------ layout helpers --


def cf(x):
    """channels-last [B, *sp, C] -> channels-first [B, C, *sp]."""
    return torch.movedim(x, -1, 1)


def is_label_map(labels, logits):
    return not torch.is_floating_point(labels) and labels.dim() == logits.dim() - 1


def targets_cf(logits, labels):
    """Channels-first targets [B, C, *sp] (one-hot for a label map, the mask itself for one channel)."""
    c = logits.shape[-1]
    if is_label_map(labels, logits):
        if c == 1:
            return labels[:, None].to(torch.float64)
        return cf(F.one_hot(labels.long(), c).to(torch.float64))
    return cf(labels.to(torch.float64))


def act(activation):
    return {"softmax": {"softmax": True}, "sigmoid": {"sigmoid": True}, "none": {}}[activation]


def probs_cf(logits, activation):
    x = cf(logits)
    if activation == "softmax":
        return torch.softmax(x, 1)
    if activation == "sigmoid":
        return torch.sigmoid(x)
    return x


def first_class(include_background, c):
    return 0 if include_background or c == 1 else 1


def weights_t(class_weights, c, first):
    if class_weights is None:
        return None
    w = torch.as_tensor(np.asarray(class_weights, np.float64))
    if w.dim() == 0:
        w = w.repeat(c)
    return w[first:]


def present_mask(t_cf, first, batch=False):
    dims = tuple(range(2, t_cf.dim()))
    ts = t_cf[:, first:].sum(dims)
    if batch:
        ts = ts.sum(0)
    return ts > 0


def class_mean(loss_c, present, absent, w=None):
    """lossjax's documented class reduction, in torch."""
    if w is not None:
        loss_c = loss_c * w
    n = loss_c.shape[-1]
    if absent == "include":
        return loss_c.sum(-1) / n
    kept = torch.where(present, loss_c, torch.zeros_like(loss_c)).sum(-1)
    if absent == "zero":
        return kept / n
    count = present.sum(-1).to(loss_c.dtype)
    return torch.where(count > 0, kept / count.clamp(min=1), torch.zeros_like(kept))


def per_class(f, batch):
    """MONAI reduction='none' output [B, C', 1, ...] (or [C', 1, ...] with batch=True) -> [B, C'] ([C'])."""
    return f.reshape(f.shape[0]) if batch else f.reshape(f.shape[0], f.shape[1])


# ------------------------------------------------------------------ MONAI per class --


def monai_dice_c(
    logits,
    labels,
    *,
    activation,
    include_background,
    squared_pred=False,
    soft_label=False,
    smooth_nr=1e-5,
    smooth_dr=1e-5,
    jaccard=False,
    batch=False,
    weight=None,
):
    loss = DiceLoss(
        include_background=include_background,
        squared_pred=squared_pred,
        jaccard=jaccard,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        soft_label=soft_label,
        batch=batch,
        weight=weight,
        reduction="none",
        **act(activation),
    )
    return per_class(loss(cf(logits), targets_cf(logits, labels)), batch)


def monai_tversky_c(
    logits,
    labels,
    *,
    activation,
    include_background,
    alpha,
    beta,
    soft_label=False,
    smooth_nr=1e-5,
    smooth_dr=1e-5,
    batch=False,
):
    loss = TverskyLoss(
        include_background=include_background,
        alpha=alpha,
        beta=beta,
        soft_label=soft_label,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        batch=batch,
        reduction="none",
        **act(activation),
    )
    return loss(cf(logits), targets_cf(logits, labels))


def monai_mcc_c(logits, labels, *, activation, include_background, smooth_nr=0.0, smooth_dr=1e-5, batch=False):
    loss = MCCLoss(
        include_background=include_background,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        batch=batch,
        reduction="none",
        **act(activation),
    )
    return loss(cf(logits), targets_cf(logits, labels))


def metric_c(
    metric,
    logits,
    labels,
    *,
    activation="softmax",
    include_background=True,
    squared_pred=False,
    soft_label=False,
    smooth_nr=1e-5,
    smooth_dr=1e-5,
    alpha=0.3,
    beta=0.7,
    gamma=0.75,
    batch=False,
):
    common = dict(activation=activation, include_background=include_background, batch=batch)
    if metric in ("dice", "jaccard", "log_cosh_dice"):
        d = monai_dice_c(
            logits,
            labels,
            squared_pred=squared_pred,
            soft_label=soft_label,
            smooth_nr=smooth_nr,
            smooth_dr=smooth_dr,
            jaccard=metric == "jaccard",
            **common,
        )
        return torch.log(torch.cosh(d)) if metric == "log_cosh_dice" else d
    if metric in ("tversky", "focal_tversky"):
        t = monai_tversky_c(
            logits,
            labels,
            alpha=alpha,
            beta=beta,
            soft_label=soft_label,
            smooth_nr=smooth_nr,
            smooth_dr=smooth_dr,
            **common,
        )
        return safe_power(t.clamp(min=0), gamma) if metric == "focal_tversky" else t
    if metric == "mcc":
        return monai_mcc_c(logits, labels, smooth_nr=smooth_nr, smooth_dr=smooth_dr, **common)
    raise ValueError(metric)


def safe_power(base, gamma):
    """base ** gamma with the gradient taken as 0 at base = 0 (lossjax's documented choice where gamma < 1
    makes the plain formula's derivative infinite)."""
    pos = base > 0
    return torch.where(pos, torch.where(pos, base, torch.ones_like(base)) ** gamma, torch.zeros_like(base) ** gamma)


def overlap_image(metric, logits, labels, *, absent_classes="include", class_weights=None, **kw):
    c = logits.shape[-1]
    first = first_class(kw.get("include_background", True), c)
    loss_c = metric_c(metric, logits, labels, **kw)
    present = present_mask(targets_cf(logits, labels), first)
    return class_mean(loss_c, present, absent_classes, weights_t(class_weights, c, first))


# ------------------------------------------------------------------ entries --


def dice_loss(logits, labels, **kw):
    return overlap_image("dice", logits, labels, **kw)


def jaccard_loss(logits, labels, **kw):
    return overlap_image("jaccard", logits, labels, **kw)


def tversky_loss(logits, labels, alpha=0.3, beta=0.7, **kw):
    return overlap_image("tversky", logits, labels, alpha=alpha, beta=beta, **kw)


def focal_tversky_loss(logits, labels, alpha=0.3, beta=0.7, gamma=0.75, **kw):
    return overlap_image("focal_tversky", logits, labels, alpha=alpha, beta=beta, gamma=gamma, **kw)


def log_cosh_dice_loss(logits, labels, **kw):
    return overlap_image("log_cosh_dice", logits, labels, **kw)


def f_beta_loss(logits, labels, beta=1.0, smooth_nr=1e-5, smooth_dr=1e-5, **kw):
    b2 = beta * beta
    return overlap_image(
        "tversky",
        logits,
        labels,
        alpha=1 / (1 + b2),
        beta=b2 / (1 + b2),
        smooth_nr=smooth_nr / (1 + b2),
        smooth_dr=smooth_dr / (1 + b2),
        **kw,
    )


def mcc_loss(logits, labels, smooth_nr=0.0, smooth_dr=1e-5, **kw):
    return overlap_image("mcc", logits, labels, smooth_nr=smooth_nr, smooth_dr=smooth_dr, **kw)


def generalized_dice_loss(
    logits,
    labels,
    *,
    activation="softmax",
    include_background=True,
    variant="square",
    soft_label=False,
    smooth_nr=1e-5,
    smooth_dr=1e-5,
    batch=False,
):
    loss = GeneralizedDiceLoss(
        include_background=include_background,
        w_type=variant,
        soft_label=soft_label,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        batch=batch,
        reduction="none",
        **act(activation),
    )
    out = loss(cf(logits), targets_cf(logits, labels))
    return out.reshape(-1) if not batch else out.reshape(())


def overlap_loss_per_class(logits, labels, *, metric="dice", **kw):
    return metric_c(metric, logits, labels, **kw)


def batch_overlap_loss(
    logits, labels, *, metric="dice", variant="square", absent_classes="include", class_weights=None, **kw
):
    if metric == "generalized_dice":
        keep = {
            k: v
            for k, v in kw.items()
            if k in ("activation", "include_background", "soft_label", "smooth_nr", "smooth_dr")
        }
        return generalized_dice_loss(logits, labels, variant=variant, batch=True, **keep)
    c = logits.shape[-1]
    first = first_class(kw.get("include_background", True), c)
    loss_c = metric_c(metric, logits, labels, batch=True, **kw)
    present = present_mask(targets_cf(logits, labels), first, batch=True)
    return class_mean(loss_c, present, absent_classes, weights_t(class_weights, c, first))


def _monai_target_for_ce(logits, labels):
    """DiceCELoss wants a label map as B1H[W] (index CE: -inf logits stay finite) and to_onehot_y."""
    if is_label_map(labels, logits) and logits.shape[-1] > 1:
        return labels[:, None].long(), True
    return targets_cf(logits, labels), False


def dice_ce_loss(
    logits,
    labels,
    *,
    activation="softmax",
    include_background=True,
    squared_pred=False,
    smooth_nr=1e-5,
    smooth_dr=1e-5,
    class_weights=None,
    dice_weight=1.0,
    ce_weight=1.0,
    label_smoothing=0.0,
    absent_classes="include",
):
    assert absent_classes == "include"
    c = logits.shape[-1]
    w = None if class_weights is None else torch.as_tensor(np.asarray(class_weights, np.float64))
    out = []
    for b in range(logits.shape[0]):
        z = logits[b : b + 1]
        y = labels[b : b + 1]
        if activation == "softmax":
            target, onehot = _monai_target_for_ce(z, y)
            loss = DiceCELoss(
                include_background=include_background,
                to_onehot_y=onehot,
                softmax=True,
                squared_pred=squared_pred,
                smooth_nr=smooth_nr,
                smooth_dr=smooth_dr,
                weight=w,
                lambda_dice=dice_weight,
                lambda_ce=ce_weight,
                label_smoothing=label_smoothing,
            )
            out.append(loss(cf(z), target))
        else:  # lossjax: BCE per channel for sigmoid (MONAI applies a softmax CE to several channels)
            first = first_class(include_background, c)
            dice = DiceLoss(
                include_background=include_background,
                sigmoid=True,
                squared_pred=squared_pred,
                smooth_nr=smooth_nr,
                smooth_dr=smooth_dr,
                weight=None if w is None else w[first:],
            )(cf(z), targets_cf(z, y))
            bce = F.binary_cross_entropy_with_logits(
                cf(z), targets_cf(z, y), pos_weight=None if w is None else w.reshape([-1] + [1] * (z.dim() - 2))
            )
            out.append(dice_weight * dice + ce_weight * bce)
    return torch.stack(out)


def dice_focal_loss(
    logits,
    labels,
    *,
    activation="softmax",
    focal_activation=None,
    include_background=True,
    squared_pred=False,
    smooth_nr=1e-5,
    smooth_dr=1e-5,
    class_weights=None,
    gamma=2.0,
    alpha=None,
    dice_weight=1.0,
    focal_weight=1.0,
    absent_classes="include",
):
    assert absent_classes == "include"
    focal_activation = focal_activation or activation
    c = logits.shape[-1]
    first = first_class(include_background, c)
    w_all = None if class_weights is None else torch.as_tensor(np.asarray(class_weights, np.float64))
    dice = monai_dice_c(
        logits,
        labels,
        activation=activation,
        include_background=include_background,
        squared_pred=squared_pred,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        weight=None if w_all is None else w_all[first:],
    ).mean(-1)
    x, t = cf(logits), targets_cf(logits, labels)
    sp = tuple(range(2, x.dim()))
    if focal_activation == "sigmoid":
        # MONAI FocalLoss(use_softmax=False).forward: drop background, per-element loss, weights, mean.
        el = sigmoid_focal_loss(x[:, first:], t[:, first:], gamma, alpha)
        if w_all is not None:
            el = el * w_all[first:].reshape([1, -1] + [1] * len(sp))
        focal = el.mean(dim=(1, *sp))
    else:
        assert include_background, "MONAI's softmax focal without background renormalizes over the foreground"
        # MONAI multiplies log p by the targets: a -inf logit (p = 0 exactly) in a zero-target class
        # gives 0 * -inf = NaN there; a finite -1e300 has the same limit value and a zero gradient.
        finite = torch.where(torch.isneginf(x), torch.full_like(x, -1e300), x)
        el = softmax_focal_loss(finite, t, gamma, alpha)
        if w_all is not None:
            el = el * w_all.reshape([1, -1] + [1] * len(sp))
        focal = el.sum(1).mean(
            dim=tuple(d - 1 for d in sp)
        )  # lossjax: per-pixel focal (MONAI's mean also divides by C)
    return dice_weight * dice + focal_weight * focal


def self_adjusting_dice_loss(
    logits,
    labels,
    *,
    activation="softmax",
    include_background=True,
    alpha=1.0,
    squared_pred=False,
    smooth_nr=1e-4,
    smooth_dr=1e-4,
    class_weights=None,
    absent_classes="include",
):
    assert smooth_nr == smooth_dr
    p, t = probs_cf(logits, activation), targets_cf(logits, labels)
    c = logits.shape[-1]
    first = first_class(include_background, c)
    rows = []
    for b in range(p.shape[0]):
        cols = []
        for k in range(first, c):
            flat_input = p[b, k].reshape(-1)
            flat_target = t[b, k].reshape(-1)
            # ShannonAI DiceLoss._compute_dice_loss (binary path: one set-level ratio)
            flat_input = ((1 - flat_input) ** alpha) * flat_input
            interection = torch.sum(flat_input * flat_target, -1)
            if not squared_pred:
                loss = 1 - ((2 * interection + smooth_nr) / (flat_input.sum() + flat_target.sum() + smooth_nr))
            else:
                loss = 1 - (
                    (2 * interection + smooth_nr)
                    / (torch.sum(torch.square(flat_input), -1) + torch.sum(torch.square(flat_target), -1) + smooth_nr)
                )
            cols.append(loss)
        rows.append(torch.stack(cols))
    loss_c = torch.stack(rows)
    return class_mean(loss_c, present_mask(t, first), absent_classes, weights_t(class_weights, c, first))


def class_independent_bce_segmentation(logits, labels, *, class_where=None, class_weights=None):
    x, t = cf(logits), targets_cf(logits, labels)
    el = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    shape = [x.shape[0], x.shape[1]] + [1] * (x.dim() - 2)
    if class_where is not None:
        m = torch.as_tensor(np.broadcast_to(np.asarray(class_where, bool), (x.shape[0], x.shape[1])).copy())
        el = torch.where(m.reshape(shape), el, torch.zeros_like(el))
    if class_weights is not None:
        el = el * torch.as_tensor(np.asarray(class_weights, np.float64)).reshape([1, -1] + [1] * (x.dim() - 2))
    return el.sum(1).mean(dim=tuple(range(1, x.dim() - 1)))


# ---- Lovasz: port of bermanmaxim/LovaszSoftmax pytorch/lovasz_losses.py (stable sort) ----


def lovasz_grad(gt_sorted):
    p = len(gt_sorted)
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if p > 1:
        jaccard[1:p] = jaccard[1:p] - jaccard[0:-1]
    return jaccard


def lovasz_softmax_flat(probas, labels_onehot, classes="present"):
    c = probas.size(1)
    losses = []
    class_to_sum = list(range(c)) if classes in ["all", "present"] else classes
    for k in class_to_sum:
        fg = labels_onehot[:, k]
        if classes == "present" and fg.sum() == 0:
            continue
        errors = (fg - probas[:, k]).abs()
        errors_sorted, perm = torch.sort(errors, dim=0, descending=True, stable=True)
        fg_sorted = fg[perm]
        losses.append(torch.dot(errors_sorted, lovasz_grad(fg_sorted)))
    if not losses:
        return probas.sum() * 0.0
    return sum(losses) / len(losses)


def lovasz_hinge_flat(logits, labels):
    signs = 2.0 * labels - 1.0
    errors = 1.0 - logits * signs
    errors_sorted, perm = torch.sort(errors, dim=0, descending=True, stable=True)
    gt_sorted = labels[perm]
    grad = lovasz_grad(gt_sorted)
    return torch.dot(F.relu(errors_sorted), grad)


def lovasz_softmax_loss(logits, labels, *, activation="softmax", include_background=True, absent_classes="exclude"):
    p, t = probs_cf(logits, activation), targets_cf(logits, labels)
    c = logits.shape[-1]
    first = first_class(include_background, c)
    if absent_classes == "exclude":
        classes = "present" if first == 0 else None
    else:
        assert absent_classes == "include"
        classes = "all" if first == 0 else list(range(first, c))
    out = []
    for b in range(p.shape[0]):
        pb = torch.movedim(p[b], 0, -1).reshape(-1, c)
        tb = torch.movedim(t[b], 0, -1).reshape(-1, c)
        if classes is None:  # 'present' among the foreground classes
            ks = [k for k in range(first, c) if tb[:, k].sum() > 0]
            out.append(lovasz_softmax_flat(pb, tb, ks) if ks else pb.sum() * 0.0)
        else:
            out.append(lovasz_softmax_flat(pb, tb, classes))
    return torch.stack(out)


def lovasz_hinge_loss(logits, labels, *, absent_classes="include"):
    t = targets_cf(logits, labels)
    x = cf(logits)
    out = []
    for b in range(x.shape[0]):
        vals = []
        for k in range(x.shape[1]):
            fg = t[b, k].reshape(-1)
            if absent_classes == "exclude" and fg.sum() == 0:
                continue
            vals.append(lovasz_hinge_flat(x[b, k].reshape(-1), fg))
        out.append(sum(vals) / len(vals) if vals else x[b].sum() * 0.0)
    return torch.stack(out)


# ------------------------------------------------------------------ spatial losses --


def cldice_loss(
    logits,
    labels,
    *,
    activation="softmax",
    include_background=True,
    alpha=0.5,
    num_iterations=3,
    smooth_nr=1.0,
    smooth_dr=1.0,
    epsilon=1e-4,
):
    out = []
    for b in range(logits.shape[0]):
        z, y = logits[b : b + 1], labels[b : b + 1]
        loss = SoftDiceclDiceLoss(
            iter_=int(num_iterations),
            alpha=alpha,
            smooth_nr=smooth_nr,
            smooth_dr=smooth_dr,
            smooth=epsilon,
            include_background=include_background,
            **act(activation),
        )
        out.append(loss(cf(z), targets_cf(z, y)))
    return torch.stack(out)


def boundary_loss(logits, labels, *, activation="softmax", include_background=True):
    loss = BoundaryLoss(include_background=include_background, reduction="none", **act(activation))
    return loss(cf(logits), targets_cf(logits, labels)).mean(-1)


def hausdorff_dt_loss(logits, labels, *, activation="softmax", include_background=False, alpha=2.0):
    loss = HausdorffDTLoss(alpha=alpha, include_background=include_background, reduction="none", **act(activation))
    f = loss(cf(logits), targets_cf(logits, labels))
    return f.reshape(f.shape[0], f.shape[1]).mean(-1)


def signed_distance_map(labels, *, num_classes=None):
    if not torch.is_floating_point(labels):
        t = cf(F.one_hot(labels.long(), num_classes).to(torch.float64))
    else:
        t = cf(labels)
    return torch.movedim(BoundaryLoss().compute_distance_map(t).to(torch.float64), 1, -1)


SOURCES = {
    "dice_loss": (dice_loss, f"{MONAI} monai/losses/dice.py::DiceLoss(reduction='none'), class mean in torch"),
    "jaccard_loss": (jaccard_loss, f"{MONAI} DiceLoss(jaccard=True, reduction='none'), class mean in torch"),
    "tversky_loss": (tversky_loss, f"{MONAI} monai/losses/tversky.py::TverskyLoss(reduction='none'), class mean"),
    "focal_tversky_loss": (focal_tversky_loss, f"{MONAI} TverskyLoss(reduction='none') ** gamma per class, mean"),
    "log_cosh_dice_loss": (log_cosh_dice_loss, f"{MONAI} DiceLoss(reduction='none'), log(cosh(.)) per class, mean"),
    "f_beta_loss": (f_beta_loss, f"{MONAI} TverskyLoss(alpha=1/(1+b^2), beta=b^2/(1+b^2), smoothing/(1+b^2))"),
    "mcc_loss": (mcc_loss, f"{MONAI} monai/losses/mcc_loss.py::MCCLoss(reduction='none'), class mean"),
    "generalized_dice_loss": (generalized_dice_loss, f"{MONAI} monai/losses/dice.py::GeneralizedDiceLoss"),
    "overlap_loss_per_class": (overlap_loss_per_class, f"{MONAI} DiceLoss/TverskyLoss/MCCLoss(reduction='none')"),
    "batch_overlap_loss": (batch_overlap_loss, f"{MONAI} DiceLoss/TverskyLoss/MCCLoss/GeneralizedDiceLoss(batch=True)"),
    "dice_ce_loss": (dice_ce_loss, f"{MONAI} DiceCELoss per image (sigmoid: DiceLoss + torch BCEWithLogits)"),
    "dice_focal_loss": (dice_focal_loss, f"{MONAI} DiceLoss + focal_loss.py::sigmoid_focal_loss/softmax_focal_loss"),
    "self_adjusting_dice_loss": (self_adjusting_dice_loss, SHANNON),
    "class_independent_bce_segmentation": (
        class_independent_bce_segmentation,
        f"closed form: torch {torch.__version__} F.binary_cross_entropy_with_logits, masked classes",
    ),
    "lovasz_softmax_loss": (lovasz_softmax_loss, LOVASZ + " lovasz_softmax_flat per image"),
    "lovasz_hinge_loss": (lovasz_hinge_loss, LOVASZ + " lovasz_hinge_flat per image and channel"),
    "cldice_loss": (cldice_loss, f"{MONAI} monai/losses/cldice.py::SoftDiceclDiceLoss per image"),
    "boundary_loss": (boundary_loss, f"{MONAI} monai/losses/boundary_loss.py::BoundaryLoss(reduction='none')"),
    "hausdorff_dt_loss": (hausdorff_dt_loss, f"{MONAI} monai/losses/hausdorff_loss.py::HausdorffDTLoss"),
    "signed_distance_map": (signed_distance_map, f"{MONAI} BoundaryLoss.compute_distance_map (scipy EDT)"),
}


def main() -> None:
    inputs = E.load_inputs(FAMILY)
    records = {}
    for name, entry in inputs.items():
        if name not in SOURCES:
            print(f"skipped {name}: no generator here")
            continue
        fn, source = SOURCES[name]
        cases = []
        for case in entry["cases"]:
            args, kw = E.case_inputs(case)
            value, grads = E.torch_value_and_grads(fn, list(args), entry["diff_argnums"], **kw)
            cases.append(E.expected_case(case, value, grads))
        records[name] = {"source": source, "cases": cases}
    path = E.write_expected(FAMILY, records)
    print(f"wrote {path}: {len(records)} entries")


if __name__ == "__main__":
    main()
