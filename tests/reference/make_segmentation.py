"""Golden values for tests/losses/test_segmentation.py -> tests/reference/segmentation.json.

Run once by hand (never by the tests), in the reference environment::

    python tests/reference/make_segmentation.py     # torch 2.13.0, MONAI 1.6.1, segmentation_models_pytorch 0.6.0

Every case stores channels-last inputs (lossjax's layout), the lossjax call that must reproduce the
reference (function, keyword arguments and a small post-processing ``transform``), and the reference's
value and the gradient of that value with respect to the logits, in float64:

- segmentation_models_pytorch 0.6.0 ``losses/{dice,jaccard,tversky,lovasz,mcc}.py`` (the installed
  files, called: the package's ``__init__`` needs torchvision, which does not import here, so the
  ``losses`` subpackage is loaded under a stub parent package; the loss files import only torch);
- MONAI 1.6.1 ``DiceLoss(ignore_index=...)`` (pixel masks), ``DiceLoss``/``TverskyLoss``/
  ``GeneralizedDiceLoss``/``MCCLoss`` with ``batch=True``, ``DiceCELoss(batch=True)``, 3-D inputs,
  ``DiceFocalLoss`` and ``FocalLoss(use_softmax=True)`` called whole;
- bermanmaxim/LovaszSoftmax@7d48792 ``pytorch/lovasz_losses.py`` (torch port in
  make_expected_segmentation.py) with ``ignore`` pixels.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import sys
import types
import warnings

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expected_io as E
import make_expected_segmentation as R

warnings.filterwarnings("ignore")
torch.set_default_dtype(torch.float64)

from monai.losses import (  # noqa: E402
    DiceCELoss,
    DiceFocalLoss,
    DiceLoss,
    FocalLoss,
    GeneralizedDiceLoss,
    MCCLoss,
    TverskyLoss,
)

OUT = pathlib.Path(__file__).with_name("segmentation.json")


def load_smp_losses():
    """segmentation_models_pytorch.losses without the package __init__ (which imports torchvision)."""
    spec = importlib.util.find_spec("segmentation_models_pytorch")
    root = pathlib.Path(spec.submodule_search_locations[0])
    pkg = types.ModuleType("segmentation_models_pytorch")
    pkg.__path__ = [str(root)]
    sys.modules["segmentation_models_pytorch"] = pkg
    sub = importlib.util.spec_from_file_location(
        "segmentation_models_pytorch.losses",
        root / "losses" / "__init__.py",
        submodule_search_locations=[str(root / "losses")],
    )
    mod = importlib.util.module_from_spec(sub)
    sys.modules["segmentation_models_pytorch.losses"] = mod
    sub.loader.exec_module(mod)
    return mod


smp = load_smp_losses()
SMP = "segmentation_models_pytorch 0.6.0"
rng = np.random.default_rng(20261205)
CASES = []


def add(case_id, source, call, logits, labels, ref, *, kwargs=None, transform="none", where=None, extra=None):
    """``ref(z_cf, labels)`` returns the reference scalar; stores value and d value / d logits (channels-last)."""
    z = torch.tensor(logits, requires_grad=True)
    value = ref(z)
    (grad,) = torch.autograd.grad(value, [z])
    CASES.append(
        {
            "id": case_id,
            "source": source,
            "call": call,
            "kwargs": kwargs or {},
            "transform": transform,
            "extra": extra or {},
            "logits": E.encode(logits),
            "labels": E.encode(labels),
            "where": None if where is None else E.encode(where),
            "value": float(value.detach()),
            "ref_dtype": str(value.dtype).replace("torch.", ""),
            "grad": E.encode(grad),
        }
    )


def cf(z):
    return torch.movedim(z, -1, 1)


def onehot_cf(y, c):
    return torch.movedim(F.one_hot(torch.as_tensor(y).long(), c).to(torch.float64), -1, 1)


# --------------------------------------------------------------------------- SMP --

B, H, W, C = 3, 5, 4, 4
z = rng.normal(size=(B, H, W, C)) * 1.5
y = rng.integers(0, C, size=(B, H, W))
y[y == 3] = 2  # class 3 absent from the whole batch (SMP zeroes it, still counted in the mean)

for s in (0.0, 1.0):
    add(
        f"smp_jaccard_multiclass_s{s}",
        f"{SMP} JaccardLoss('multiclass', smooth={s})",
        "batch_overlap_loss",
        z,
        y,
        lambda t, s=s: smp.JaccardLoss("multiclass", smooth=s)(cf(t), torch.as_tensor(y)),
        kwargs={
            "metric": "jaccard",
            "smooth_nr": 2 * s,
            "smooth_dr": 2 * s,
            "soft_label": True,
            "absent_classes": "zero",
        },
    )
    add(
        f"smp_dice_multiclass_s{s}",
        f"{SMP} DiceLoss('multiclass', smooth={s})",
        "batch_overlap_loss",
        z,
        y,
        lambda t, s=s: smp.DiceLoss("multiclass", smooth=s)(cf(t), torch.as_tensor(y)),
        kwargs={"metric": "dice", "smooth_nr": 2 * s, "smooth_dr": 2 * s, "soft_label": True, "absent_classes": "zero"},
    )

add(
    "smp_tversky_multiclass",
    f"{SMP} TverskyLoss('multiclass', alpha=0.3, beta=0.7, gamma=1.5, smooth=0.5)",
    "batch_overlap_loss",
    z,
    y,
    lambda t: smp.TverskyLoss("multiclass", alpha=0.3, beta=0.7, gamma=1.5, smooth=0.5)(cf(t), torch.as_tensor(y)),
    kwargs={
        "metric": "tversky",
        "alpha": 0.3,
        "beta": 0.7,
        "smooth_nr": 0.5,
        "smooth_dr": 0.5,
        "soft_label": True,
        "absent_classes": "zero",
    },
    transform="pow",
    extra={"gamma": 1.5},
)

w4 = [0.5, 1.0, 2.0, 1.5]
add(
    "smp_dice_class_weights",
    f"{SMP} DiceLoss('multiclass', class_weights={w4})",
    "batch_overlap_loss",
    z,
    y,
    lambda t: smp.DiceLoss("multiclass", class_weights=w4)(cf(t), torch.as_tensor(y)),
    kwargs={
        "metric": "dice",
        "smooth_nr": 0.0,
        "smooth_dr": 0.0,
        "soft_label": True,
        "absent_classes": "zero",
        "class_weights": [v * C / sum(w4) for v in w4],
    },
)

# binary and multilabel (sigmoid)
zb = rng.normal(size=(B, H, W, 1)) * 1.5
yb = (rng.random((B, H, W, 1)) < 0.4).astype(np.float64)
add(
    "smp_jaccard_binary",
    f"{SMP} JaccardLoss('binary')",
    "batch_overlap_loss",
    zb,
    yb,
    lambda t: smp.JaccardLoss("binary")(cf(t), cf(torch.as_tensor(yb))),
    kwargs={
        "metric": "jaccard",
        "activation": "sigmoid",
        "smooth_nr": 0.0,
        "smooth_dr": 0.0,
        "soft_label": True,
        "absent_classes": "zero",
    },
)
add(
    "smp_tversky_binary_gamma",
    f"{SMP} TverskyLoss('binary', alpha=0.4, beta=0.6, gamma=0.75)",
    "batch_overlap_loss",
    zb,
    yb,
    lambda t: smp.TverskyLoss("binary", alpha=0.4, beta=0.6, gamma=0.75)(cf(t), cf(torch.as_tensor(yb))),
    kwargs={
        "metric": "focal_tversky",
        "activation": "sigmoid",
        "alpha": 0.4,
        "beta": 0.6,
        "gamma": 0.75,
        "smooth_nr": 0.0,
        "smooth_dr": 0.0,
        "soft_label": True,
        "absent_classes": "zero",
    },
)
zm = rng.normal(size=(B, H, W, 3)) * 1.5
ym = (rng.random((B, H, W, 3)) < 0.35).astype(np.float64)
ym[..., 2] = 0.0  # an absent label
add(
    "smp_dice_multilabel",
    f"{SMP} DiceLoss('multilabel', smooth=1.0)",
    "batch_overlap_loss",
    zm,
    ym,
    lambda t: smp.DiceLoss("multilabel", smooth=1.0)(cf(t), cf(torch.as_tensor(ym))),
    kwargs={
        "metric": "dice",
        "activation": "sigmoid",
        "smooth_nr": 2.0,
        "smooth_dr": 2.0,
        "soft_label": True,
        "absent_classes": "zero",
    },
)

# soft targets: SMP's L1 form is MONAI's soft_label=True
ys = rng.dirichlet(np.full(C, 0.6), size=(B, H, W))
add(
    "smp_dice_soft_targets",
    f"{SMP} DiceLoss('multilabel', from_logits=False) on softmax probabilities",
    "batch_overlap_loss",
    z,
    ys,
    lambda t: smp.DiceLoss("multilabel", from_logits=False)(torch.softmax(cf(t), 1), cf(torch.as_tensor(ys))),
    kwargs={"metric": "dice", "smooth_nr": 0.0, "smooth_dr": 0.0, "soft_label": True, "absent_classes": "zero"},
)

# Lovasz: multiclass per batch / per image, binary (hinge). SMP's _lovasz_grad casts to float32 (a float64
# run fails on torch.dot), so these references run in float32 (the tests compare at float32 tolerance).
add(
    "smp_lovasz_multiclass_batch",
    f"{SMP} LovaszLoss('multiclass', per_image=False)",
    "lovasz_softmax_loss",
    z,
    y,
    lambda t: smp.LovaszLoss("multiclass", per_image=False)(cf(t).float(), torch.as_tensor(y)),
    transform="fold",
)
add(
    "smp_lovasz_multiclass_image",
    f"{SMP} LovaszLoss('multiclass', per_image=True)",
    "lovasz_softmax_loss",
    z,
    y,
    lambda t: smp.LovaszLoss("multiclass", per_image=True)(cf(t).float(), torch.as_tensor(y)),
    transform="mean",
)
yh = (rng.random((B, H, W)) < 0.4).astype(np.int64)
add(
    "smp_lovasz_binary_image",
    f"{SMP} LovaszLoss('binary', per_image=True)",
    "lovasz_hinge_loss",
    zb,
    yh,
    lambda t: smp.LovaszLoss("binary", per_image=True)(t[..., 0].float(), torch.as_tensor(yh)),
    transform="mean",
)
add(
    "smp_lovasz_binary_batch",
    f"{SMP} LovaszLoss('binary', per_image=False)",
    "lovasz_hinge_loss",
    zb,
    yh,
    lambda t: smp.LovaszLoss("binary", per_image=False)(t[..., 0].float(), torch.as_tensor(yh)),
    transform="fold",
)
add(
    "smp_lovasz_multilabel",
    f"{SMP} LovaszLoss('multilabel', per_image=True): channels merged into one set",
    "lovasz_hinge_loss",
    zm,
    ym,
    lambda t: smp.LovaszLoss("multilabel", per_image=True)(cf(t).float(), cf(torch.as_tensor(ym)).float()),
    transform="merge_mean",
)

# MCC (binary, probabilities, whole batch)
pb = 1 / (1 + np.exp(-zb))
add(
    "smp_mcc",
    f"{SMP} MCCLoss(eps=0) on probabilities",
    "batch_overlap_loss",
    pb,
    yb,
    lambda t: smp.MCCLoss(eps=0.0)(cf(t), cf(torch.as_tensor(yb))),
    kwargs={"metric": "mcc", "activation": "none", "smooth_nr": 0.0, "smooth_dr": 0.0},
)

# --------------------------------------------------------------------------- MONAI --

MONAI = "MONAI 1.6.1"
yo = onehot_cf(y, C)
for name, loss, kw in (
    ("dice", DiceLoss(softmax=True, batch=True), {"metric": "dice"}),
    (
        "dice_squared_nobg",
        DiceLoss(softmax=True, batch=True, squared_pred=True, include_background=False),
        {"metric": "dice", "squared_pred": True, "include_background": False},
    ),
    (
        "jaccard",
        DiceLoss(softmax=True, batch=True, jaccard=True, smooth_nr=0.5, smooth_dr=0.5),
        {"metric": "jaccard", "smooth_nr": 0.5, "smooth_dr": 0.5},
    ),
    (
        "tversky",
        TverskyLoss(softmax=True, batch=True, alpha=0.2, beta=0.8),
        {"metric": "tversky", "alpha": 0.2, "beta": 0.8},
    ),
    ("gdl", GeneralizedDiceLoss(softmax=True, batch=True), {"metric": "generalized_dice"}),
    (
        "gdl_uniform",
        GeneralizedDiceLoss(softmax=True, batch=True, w_type="uniform"),
        {"metric": "generalized_dice", "variant": "uniform"},
    ),
    ("mcc", MCCLoss(softmax=True, batch=True), {"metric": "mcc", "smooth_nr": 0.0, "smooth_dr": 1e-5}),
):
    add(
        f"monai_batch_{name}",
        f"{MONAI} {type(loss).__name__}(batch=True)",
        "batch_overlap_loss",
        z,
        y,
        lambda t, loss=loss: loss(cf(t), yo),
        kwargs=kw,
    )

add(
    "monai_dicece_batch",
    f"{MONAI} DiceCELoss(softmax=True, to_onehot_y=True, batch=True)",
    "batch_overlap_loss",
    z,
    y,
    lambda t: DiceCELoss(softmax=True, to_onehot_y=True, batch=True)(cf(t), torch.as_tensor(y)[:, None]),
    kwargs={"metric": "dice"},
    transform="plus_ce",
)

w3 = [0.5, 1.0, 2.0, 1.5]
add(
    "monai_dicece_smoothing_weights",
    f"{MONAI} DiceCELoss(label_smoothing=0.1, weight=w, include_background=False), one image at a time",
    "dice_ce_loss",
    z,
    y,
    lambda t: torch.stack(
        [
            DiceCELoss(
                softmax=True,
                to_onehot_y=True,
                include_background=False,
                weight=torch.tensor(w3),
                label_smoothing=0.1,
                lambda_ce=0.5,
            )(cf(t[b : b + 1]), torch.as_tensor(y[b : b + 1])[:, None])
            for b in range(B)
        ]
    ).mean(),
    kwargs={"include_background": False, "class_weights": w3, "label_smoothing": 0.1, "ce_weight": 0.5},
    transform="mean",
)

# DiceFocalLoss and FocalLoss called whole (FocalLoss.forward computes in float32: float32 tolerance). MONAI's
# DiceFocalLoss always uses the sigmoid focal term, also beside a softmax Dice (focal_activation="sigmoid").
w4 = [0.5, 1.0, 2.0, 1.5]
add(
    "monai_dicefocal_softmax_nobg",
    f"{MONAI} DiceFocalLoss(softmax=True, to_onehot_y=True, include_background=False, gamma=1.5, alpha=0.25, "
    "weight=w, lambda_focal=2.0)",
    "dice_focal_loss",
    z,
    y,
    lambda t: DiceFocalLoss(
        softmax=True,
        to_onehot_y=True,
        include_background=False,
        gamma=1.5,
        alpha=0.25,
        weight=torch.tensor(w4[1:]),
        lambda_focal=2.0,
    )(cf(t), torch.as_tensor(y)[:, None]),
    kwargs={
        "focal_activation": "sigmoid",
        "include_background": False,
        "gamma": 1.5,
        "alpha": 0.25,
        "class_weights": w4,
        "focal_weight": 2.0,
    },
    transform="mean",
)
# FocalLoss(use_softmax=True) averages over pixels and channels: lossjax's softmax focal term (a mean over
# pixels) with focal_weight = 1 / C and no Dice.
add(
    "monai_focal_softmax",
    f"{MONAI} FocalLoss(use_softmax=True, to_onehot_y=True, gamma=2.0, alpha=0.75)",
    "dice_focal_loss",
    z,
    y,
    lambda t: FocalLoss(use_softmax=True, to_onehot_y=True, gamma=2.0, alpha=0.75)(cf(t), torch.as_tensor(y)[:, None]),
    kwargs={"focal_activation": "softmax", "alpha": 0.75, "dice_weight": 0.0, "focal_weight": 1.0 / C},
    transform="mean",
)

# pixel masks: MONAI DiceLoss(ignore_index=k) zeroes the ignored pixels of input and target, as where= does
yi = y.copy()
yi[0, 0, :] = 255
yi[2, 1:3, 1] = 255
where = yi != 255
for batch in (False, True):
    loss = DiceLoss(softmax=True, to_onehot_y=True, ignore_index=255, batch=batch)
    add(
        f"monai_dice_ignore_index_batch{batch}",
        f"{MONAI} DiceLoss(ignore_index=255, batch={batch})",
        "batch_overlap_loss" if batch else "dice_loss",
        z,
        yi,
        lambda t, loss=loss: loss(cf(t), torch.as_tensor(yi)[:, None]),
        kwargs={"metric": "dice"} if batch else {},
        transform="none" if batch else "mean",
        where=where,
    )

# 3-D volumes
z3 = rng.normal(size=(2, 3, 4, 3, 3)) * 1.5
y3 = rng.integers(0, 3, size=(2, 3, 4, 3))
add(
    "monai_dice_3d",
    f"{MONAI} DiceLoss(softmax=True) on [B, C, D, H, W]",
    "dice_loss",
    z3,
    y3,
    lambda t: DiceLoss(softmax=True)(cf(t), onehot_cf(y3, 3)),
    transform="mean",
)
add(
    "monai_tversky_3d_sigmoid",
    f"{MONAI} TverskyLoss(sigmoid=True, alpha=0.3, beta=0.7) on [B, C, D, H, W]",
    "tversky_loss",
    z3,
    y3,
    lambda t: TverskyLoss(sigmoid=True, alpha=0.3, beta=0.7)(cf(t), onehot_cf(y3, 3)),
    kwargs={"activation": "sigmoid"},
    transform="mean",
)

# Lovasz (official code, torch port) with ignored pixels
add(
    "lovasz_official_ignore",
    "bermanmaxim/LovaszSoftmax@7d48792 lovasz_softmax(per_image=True, ignore=255) (port)",
    "lovasz_softmax_loss",
    z,
    yi,
    lambda t: torch.stack(
        [
            R.lovasz_softmax_flat(
                torch.softmax(t[b], -1).reshape(-1, C)[torch.as_tensor(where[b]).reshape(-1)],
                F.one_hot(torch.as_tensor(yi[b]).reshape(-1)[torch.as_tensor(where[b]).reshape(-1)].long(), C).to(
                    torch.float64
                ),
            )
            for b in range(B)
        ]
    ).mean(),
    transform="mean",
    where=where,
)


def main() -> None:
    OUT.write_text(json.dumps({"cases": CASES}, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {OUT}: {len(CASES)} cases")


if __name__ == "__main__":
    main()
