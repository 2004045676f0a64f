r"""Segmentation and set-overlap losses: Dice and its family, Lovasz, clDice, boundary and Hausdorff losses.

Every loss here takes channels-last ``logits [B, *spatial, C]`` (the JAX
convention; MONAI and segmentation_models_pytorch are channels-first) and
``labels`` that are either an integer label map ``[B, *spatial]`` or targets
of the logits' shape (one-hot, multi-hot or soft), decided at trace time:

- an integer (or bool) label map with ``C >= 2`` is one-hot encoded; with
  ``C == 1`` it is the binary foreground mask itself. An out-of-range label in
  an unmasked pixel gives NaN (as JAX's out-of-bounds gather does);
- float (or integer/bool) targets of the logits' shape are used as they are.

``activation`` turns logits into probabilities: ``"softmax"`` over the class
axis (multiclass, ``C >= 2``), ``"sigmoid"`` per channel (binary and
multilabel) or ``"none"`` (the inputs already are probabilities).
``include_background=False`` drops channel 0 after the activation (MONAI's
rule; ignored for a single channel, as MONAI does). ``where`` is a boolean
mask of the spatial batch shape ``[B, *spatial]`` (or any prefix of it, e.g.
``[B]`` to drop whole images), aligned with the leading axes: a masked pixel
counts nowhere (its probability and target are zeroed before any sum) and
gets exactly zero gradient; an image whose pixels are all masked gives 0.

The soft-overlap losses share one core: per image (or, for
:func:`batch_overlap_loss`, over the whole batch) and per class, the soft
counts ``TP = sum p t``, ``P = sum p``, ``T = sum t`` (``FP = P - TP``,
``FN = T - TP``) give a per-class loss ``[B, C']`` (:func:`overlap_loss_per_class`),
which is then averaged over the classes into the per-image loss ``[B]``.
Smoothing follows MONAI: ``smooth_nr`` is added to the numerator and
``smooth_dr`` to the denominator of MONAI's ratio for each loss.

Absent classes (no target pixel in the reduction set) are handled as
``absent_classes`` says, never with a NaN:

- ``"include"`` (the default of the Dice family, MONAI's and optax's rule):
  the formula's value. With ``smooth_nr = smooth_dr > 0`` an absent class
  scores ``1 - smooth_nr / (P + smooth_dr)``: it is 0 ("perfect") only when
  nothing is predicted there, and grows with the predicted mass ``P``. With
  no smoothing a ratio ``x / 0`` is taken as 0 (a loss of 1): 0/0 is never a
  perfect score by accident;
- ``"exclude"``: absent classes leave the class mean (the Lovasz ``"present"``
  rule, the default of the Lovasz losses); an image with no present class
  gives 0;
- ``"zero"``: absent classes contribute 0 but still count in the class mean
  (segmentation_models_pytorch's rule: they count as perfect because you asked).

Per-image outputs ``[B]`` are kind ``per_example``; :func:`batch_overlap_loss`
(MONAI's ``batch=True``, segmentation_models_pytorch's default) sums the
counts over the whole batch (and over devices with ``axis_name``) and returns
one scalar (kind ``batch``). Per-class values ``[B, C']`` come from
:func:`overlap_loss_per_class`.

Where the defaults differ from the references (pass these to match them; the
goldens in tests/reference/ do):

- MONAI applies no activation unless asked (``softmax=True``/``sigmoid=True``);
  lossjax's default is ``activation="softmax"``. ``TverskyLoss`` defaults to
  ``alpha = beta = 0.5``; :func:`tversky_loss` to ``alpha=0.3, beta=0.7``
  (Salehi et al.). ``DiceFocalLoss`` always uses the sigmoid focal term, also
  beside a softmax Dice: pass ``focal_activation="sigmoid"`` (the default
  follows ``activation``). ``FocalLoss(use_softmax=True)`` also divides by the
  number of channels (``focal_weight=1/C``). ``batch=True`` is
  :func:`batch_overlap_loss`; ``reduction="mean"`` is the mean of the ``[B]``
  outputs.
- optax ``dice_loss(smooth=s)`` is ``(I + s) / (I + FP/2 + FN/2 + s)``: Dice
  and Jaccard with ``smooth_nr = smooth_dr = 2 s`` (optax's default ``s = 1``,
  lossjax's ``1e-5``); its ``alpha, beta`` are :func:`tversky_loss`'s with
  ``smooth_nr = smooth_dr = s``, ``alpha = beta = 1`` is :func:`jaccard_loss`;
  ``binary_dice_loss`` is ``activation="sigmoid"`` on one channel; its
  ``multiclass_generalized_dice_loss`` is the batch mean of :func:`dice_loss`
  with weights ``1/T^2`` normalized to sum to ``C`` (not MONAI's generalized
  Dice, which is :func:`generalized_dice_loss`).
- segmentation_models_pytorch reduces over the whole batch by default
  (:func:`batch_overlap_loss`), counts absent classes as perfect
  (``absent_classes="zero"``), uses soft-label sums (``soft_label=True``),
  ``smooth=s`` is ``smooth_nr = smooth_dr = 2 s`` for Dice and Jaccard (``s``
  for Tversky, whose ``gamma`` raises the class mean to that power, where
  :func:`focal_tversky_loss` raises each class), normalizes class weights
  (pass ``w * C' / sum(w)``); its ``LovaszLoss`` and
  the official Lovasz code default to ``per_image=False``: fold the batch into
  one image (``logits.reshape(1, -1, C)``) for that.

The distance-transform losses (boundary, Hausdorff) compute exact Euclidean
distance transforms inside the graph (:func:`signed_distance_map`: separable
lower envelopes by brute force, ``O(N * L)`` for ``N`` pixels and side ``L``,
no host callback), so they jit, vmap and shard like the others; precomputed
maps may be passed instead.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax import _parallel as P
from lossjax._targets import class_weight_column, target_probs
from lossjax.registry import Sample, register

__all__ = [
    "batch_overlap_loss",
    "boundary_loss",
    "class_independent_bce_segmentation",
    "cldice_loss",
    "dice_ce_loss",
    "dice_focal_loss",
    "dice_loss",
    "f_beta_loss",
    "focal_tversky_loss",
    "generalized_dice_loss",
    "hausdorff_dt_loss",
    "jaccard_loss",
    "log_cosh_dice_loss",
    "lovasz_hinge_loss",
    "lovasz_softmax_loss",
    "mcc_loss",
    "overlap_loss_per_class",
    "self_adjusting_dice_loss",
    "signed_distance_map",
    "tversky_loss",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

FAMILY = "segmentation"

ACTIVATIONS = ("softmax", "sigmoid", "none")
ABSENT = ("include", "exclude", "zero")
METRICS = ("dice", "jaccard", "tversky", "focal_tversky", "log_cosh_dice", "mcc")
BATCH_METRICS = (*METRICS, "generalized_dice")
GDL_WEIGHTS = ("square", "simple", "uniform")


# ================================ input handling ================================


class _Seg(NamedTuple):
    """The checked inputs of a segmentation loss, in the compute dtype, masked pixels zeroed."""

    probs: Array  # [B, *sp, C'] after the activation (C' = C, or C - 1 without background)
    targets: Array  # [B, *sp, C']
    logits: Array  # [B, *sp, C] mask-filled logits (every class)
    all_targets: Array  # [B, *sp, C] targets of every class
    mask: Array | None  # [B, *sp] bool
    valid: Array  # [B, *sp, 1] float: 1 where the pixel counts
    first_class: int  # 0, or 1 when the background channel was dropped
    dtype: jnp.dtype
    log_probs: Array | None = None  # [B, *sp, C] log-softmax of every class (softmax activation only)


def _check_logits(fn: str, logits: ArrayLike, spatial: tuple[int, ...] | None = None) -> Array:
    logits = C.check_array(fn, "logits", logits, min_ndim=3, dtype="float")
    if spatial is not None and (logits.ndim - 2) not in spatial:
        need = " or ".join(f"{s}-D" for s in spatial)
        raise ValueError(f"{fn}: `logits` must be [B, *spatial, C] with {need} spatial axes, got shape {logits.shape}.")
    return logits


def _targets(fn: str, logits: Array, labels: ArrayLike, mask: Array | None, dtype) -> Array:
    """Targets ``[B, *sp, C]`` from an integer label map or targets of the logits' shape (masked rows zero)."""
    try:
        labels = jnp.asarray(labels)
    except TypeError as e:
        raise TypeError(f"{fn}: `labels` must be an array, got {type(labels).__name__}.") from e
    num_classes = logits.shape[-1]
    batch_shape = logits.shape[:-1]
    discrete = jnp.issubdtype(labels.dtype, jnp.integer) or labels.dtype == jnp.bool_
    if discrete and labels.shape == batch_shape:
        if num_classes >= 2:
            t = C.class_targets(fn, logits, labels.astype(jnp.int32), dtype, where=mask)
        else:  # one channel: the label map is the binary foreground mask
            ok = (labels == 0) | (labels == 1)
            if mask is not None:
                ok = ok | ~mask
            C.debug_check(jnp.all(ok), f"{fn}: a label map for one channel must hold 0 or 1")
            t = jnp.where(ok, labels.astype(dtype), jnp.asarray(jnp.nan, dtype))[..., None]
    elif labels.shape == logits.shape and (discrete or jnp.issubdtype(labels.dtype, jnp.floating)):
        t = labels.astype(dtype)
    else:
        hint = (
            " (float labels of the batch shape look like a label map: cast them to an integer dtype)"
            if labels.shape == batch_shape
            else ""
        )
        raise ValueError(
            f"{fn}: `labels` must be an integer label map of shape {batch_shape} or targets of the logits' "
            f"shape {logits.shape}, got {labels.dtype}{list(labels.shape)}{hint}."
        )
    return C.fill_masked(t, mask)


def _activate(z: Array, activation: str) -> Array:
    if activation == "softmax":
        return jax.nn.softmax(z, axis=-1)
    if activation == "sigmoid":
        return jax.nn.sigmoid(z)
    return z


def _prepare(
    fn: str,
    logits: ArrayLike,
    labels: ArrayLike,
    where: ArrayLike | None,
    *,
    activation: str,
    include_background: bool,
    spatial: tuple[int, ...] | None = None,
    activations: tuple[str, ...] = ACTIVATIONS,
) -> _Seg:
    logits = _check_logits(fn, logits, spatial)
    C.check_one_of(fn, "activation", activation, activations)
    if activation == "softmax" and logits.shape[-1] < 2:
        raise ValueError(
            f"{fn}: activation='softmax' needs at least 2 classes on the last axis of `logits`, got shape "
            f"{logits.shape}; use activation='sigmoid' for a single (binary) channel."
        )
    if not isinstance(include_background, (bool, np.bool_)):
        raise ValueError(f"{fn}: `include_background` must be a bool, got {include_background!r}.")
    dtype = C.compute_dtype(logits)
    mask = C.prepare_where(fn, where, logits.shape[:-1])
    t_all = _targets(fn, logits, labels, mask, dtype)
    z = C.fill_masked(C.as_compute(logits, dtype), mask)
    log_p = None
    if activation == "softmax":  # one log-softmax serves the overlap terms and a cross-entropy
        log_p = jax.nn.log_softmax(z, axis=-1)
        p = jnp.exp(log_p)
    else:
        p = _activate(z, activation)
    p = C.fill_masked(p, mask)
    first = 0 if include_background or logits.shape[-1] == 1 else 1
    valid = jnp.ones((*logits.shape[:-1], 1), dtype) if mask is None else mask[..., None].astype(dtype)
    return _Seg(p[..., first:], t_all[..., first:], z, t_all, mask, valid, first, dtype, log_p)


def _check_smoothing(fn: str, smooth_nr, smooth_dr) -> None:
    C.check_positive(fn, "smooth_nr", smooth_nr, allow_zero=True)
    C.check_positive(fn, "smooth_dr", smooth_dr, allow_zero=True)


def _check_bool(fn: str, arg: str, value) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{fn}: `{arg}` must be a bool, got {value!r}.")


def _spatial_axes(x: Array) -> tuple[int, ...]:
    return tuple(range(1, x.ndim - 1))


def _image_valid(seg: _Seg) -> Array | None:
    """``[B]`` bool: the image has at least one unmasked pixel (None without a mask)."""
    if seg.mask is None:
        return None
    return jnp.any(seg.mask, axis=tuple(range(1, seg.mask.ndim)))


def _per_image(loss: Array, seg: _Seg) -> Array:
    """Zeroes the loss of images whose pixels are all masked (they are padding)."""
    keep = _image_valid(seg)
    return loss if keep is None else jnp.where(keep, loss, jnp.zeros((), loss.dtype))


def _class_weights(fn: str, class_weights, seg: _Seg) -> Array | None:
    """``class_weights [C]`` (indexed by class; the background entry is ignored without background) -> ``[C']``."""
    if class_weights is None:
        return None
    num_classes = seg.logits.shape[-1]
    w = class_weight_column(fn, class_weights, num_classes, seg.dtype)
    C.debug_check(jnp.all(w >= 0), f"{fn}: `class_weights` must be >= 0")
    w = jax.lax.stop_gradient(w)
    return w[seg.first_class :] if w.ndim == 1 else jnp.broadcast_to(w, (num_classes - seg.first_class,))


def _complement(seg: _Seg, activation: str) -> Array:
    """``1 - p`` without cancellation: ``sigmoid(-z)``; for a softmax the other classes' sum at the argmax."""
    z = seg.logits
    if activation == "sigmoid":
        q = jax.nn.sigmoid(-z)
    elif activation == "softmax":
        p = jax.nn.softmax(z, axis=-1)
        is_max = jax.nn.one_hot(jnp.argmax(z, axis=-1), z.shape[-1], dtype=jnp.bool_)
        rest = jnp.sum(jnp.where(is_max, jnp.zeros((), p.dtype), p), axis=-1, keepdims=True)
        q = jnp.where(is_max, rest, 1 - p)
    else:
        q = jnp.maximum(1 - z, jnp.zeros((), z.dtype))
    return q[..., seg.first_class :]


def _bce(z: Array, t: Array, pos_weight: Array | None = None) -> Array:
    """Binary cross-entropy with logits, ``w t softplus(-z) + (1 - t) softplus(z)``, finite at ``z = -+inf``
    when the matching target weight is 0 (``0 * inf`` never formed)."""
    zero = jnp.zeros((), z.dtype)
    pos = jnp.where(t > 0, t * jax.nn.softplus(-z), zero)
    if pos_weight is not None:
        pos = pos * pos_weight
    return pos + jnp.where(t < 1, (1 - t) * jax.nn.softplus(z), zero)


def _safe_ratio(num: Array, den: Array) -> Array:
    """``num / den``, and 0 where ``den == 0`` (never NaN; the gradient there is 0)."""
    ok = den != 0
    return jnp.where(ok, num / jnp.where(ok, den, jnp.ones((), den.dtype)), jnp.zeros((), num.dtype))


# ================================ soft counts and per-class losses ================================


class _Counts(NamedTuple):
    """Soft counts per class, summed over the reduction set: ``[..., C']``."""

    tp: Array  # sum p t (or the soft-label form)
    ps: Array  # sum p (sum p^2 with squared_pred)
    ts: Array  # sum t (sum t^2 with squared_pred)
    n: Array  # number of counted pixels, [..., 1]
    fp_direct: Array | None = None  # sum p (1 - t), exact zero test for MCC
    fn_direct: Array | None = None  # sum (1 - p) t


def _counts(
    seg: _Seg,
    axes: tuple[int, ...],
    *,
    squared_pred: bool = False,
    soft_label: bool = False,
    direct: bool = False,
    axis_name=None,
) -> _Counts:
    p, t = seg.probs, seg.targets
    if squared_pred:
        tp, ps, ts = jnp.sum(p * t, axes), jnp.sum(p * p, axes), jnp.sum(t * t, axes)
    elif soft_label:
        # Wang et al.'s soft-label form (MONAI soft_label=True, segmentation_models_pytorch):
        # |p ∩ t| = (|p|_1 + |t|_1 - |p - t|_1) / 2; equal to sum p t for hard labels.
        ps, ts = jnp.sum(p, axes), jnp.sum(t, axes)
        tp = (ps + ts - jnp.sum(jnp.abs(p - t), axes)) / 2
    else:
        tp, ps, ts = jnp.sum(p * t, axes), jnp.sum(p, axes), jnp.sum(t, axes)
    n = jnp.sum(seg.valid, axes)
    fp_d = fn_d = None
    if direct:
        fp_d = jnp.sum(p * (seg.valid - t), axes)
        fn_d = jnp.sum((seg.valid - p) * t, axes)
    if axis_name is not None:
        tp, ps, ts, n = P.psum((tp, ps, ts, n), axis_name)
        if direct:
            fp_d, fn_d = P.psum((fp_d, fn_d), axis_name)
    return _Counts(tp, ps, ts, n, fp_d, fn_d)


def _present(k: _Counts) -> Array:
    """A class is present when it has target mass; NaN counts (bad labels) count as present (NaN propagates)."""
    return ~(k.ts <= 0)


def _dice_c(k: _Counts, smooth_nr, smooth_dr) -> Array:
    return 1 - _safe_ratio(2 * k.tp + smooth_nr, k.ps + k.ts + smooth_dr)


def _jaccard_c(k: _Counts, smooth_nr, smooth_dr) -> Array:
    # MONAI: numerator 2 TP + smooth_nr, denominator 2 (TP + FP + FN) + smooth_dr.
    return 1 - _safe_ratio(2 * k.tp + smooth_nr, 2 * (k.ps + k.ts - k.tp) + smooth_dr)


def _tversky_c(k: _Counts, alpha, beta, smooth_nr, smooth_dr) -> Array:
    den = k.tp + alpha * (k.ps - k.tp) + beta * (k.ts - k.tp) + smooth_dr
    return 1 - _safe_ratio(k.tp + smooth_nr, den)


def _mcc_c(k: _Counts, smooth_nr, smooth_dr) -> Array:
    """MONAI MCCLoss: 1 - (TP TN - FP FN + s_nr) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN) + s_dr); 0 if FP = FN = 0.

    ``TP TN - FP FN = n TP - P T`` and the four sums are ``P, T, n - T, n - P``; both sides are
    divided by ``n^2`` (overflow-free for large volumes).
    """
    n = jnp.broadcast_to(k.n, k.tp.shape)
    safe_n = jnp.where(n > 0, n, jnp.ones((), n.dtype))
    tp, ps, ts = k.tp / safe_n, k.ps / safe_n, k.ts / safe_n
    n2 = safe_n * safe_n
    num = tp - ps * ts + smooth_nr / n2
    prod = ps * ts * (1 - ts) * (1 - ps)
    den = C.safe_sqrt(jnp.maximum(prod + smooth_dr / (n2 * n2), jnp.zeros((), prod.dtype)))
    loss = 1 - _safe_ratio(num, den)
    perfect = (k.fp_direct == 0) & (k.fn_direct == 0)
    return jnp.where(perfect | (n <= 0), jnp.zeros((), loss.dtype), loss)


def _metric_c(metric: str, k: _Counts, *, smooth_nr, smooth_dr, alpha=0.5, beta=0.5, gamma=1.0) -> Array:
    """Per-class loss ``[..., C']`` of one of :data:`METRICS` from the soft counts."""
    if metric == "dice":
        return _dice_c(k, smooth_nr, smooth_dr)
    if metric == "jaccard":
        return _jaccard_c(k, smooth_nr, smooth_dr)
    if metric == "tversky":
        return _tversky_c(k, alpha, beta, smooth_nr, smooth_dr)
    if metric == "focal_tversky":
        base = jnp.maximum(_tversky_c(k, alpha, beta, smooth_nr, smooth_dr), jnp.zeros((), k.tp.dtype))
        return C.safe_power(base, gamma)
    if metric == "log_cosh_dice":
        d = _dice_c(k, smooth_nr, smooth_dr)
        return jnp.log(jnp.cosh(d))
    if metric == "mcc":
        return _mcc_c(k, smooth_nr, smooth_dr)
    raise AssertionError(metric)


def _class_mean(loss_c: Array, present: Array, absent_classes: str, weights: Array | None) -> Array:
    """Mean over the class axis (last) of the (weighted) per-class losses, absent classes as asked."""
    if weights is not None:
        loss_c = loss_c * jnp.reshape(weights, (1,) * (loss_c.ndim - 1) + weights.shape)
    num = loss_c.shape[-1]
    zero = jnp.zeros((), loss_c.dtype)
    if absent_classes == "include":
        return jnp.sum(loss_c, axis=-1) / num
    kept = jnp.sum(jnp.where(present, loss_c, zero), axis=-1)
    if absent_classes == "zero":
        return kept / num
    count = jnp.sum(present, axis=-1).astype(loss_c.dtype)
    return jnp.where(count > 0, kept / jnp.maximum(count, jnp.ones((), count.dtype)), zero)


def _generalized_dice(k: _Counts, variant: str, smooth_nr, smooth_dr) -> Array:
    """MONAI GeneralizedDiceLoss over the class axis (last): weights 1/T^2, 1/T or 1; empty classes get the max."""
    ts = jax.lax.stop_gradient(k.ts)
    if variant == "uniform":
        w = jnp.ones_like(ts)
    else:
        finite = ts > 0
        safe = jnp.where(finite, ts, jnp.ones((), ts.dtype))
        w = 1 / (safe * safe) if variant == "square" else 1 / safe
        w = jnp.where(finite, w, jnp.zeros((), ts.dtype))
        w = jnp.where(finite, w, jnp.max(w, axis=-1, keepdims=True))
    num = 2 * jnp.sum(w * k.tp, axis=-1) + smooth_nr
    den = jnp.sum(w * (k.ps + k.ts), axis=-1) + smooth_dr
    return 1 - _safe_ratio(num, den)


def _check_overlap_hparams(
    fn, *, smooth_nr, smooth_dr, absent_classes=None, squared_pred=False, soft_label=False, alpha=None, beta=None
):
    _check_smoothing(fn, smooth_nr, smooth_dr)
    _check_bool(fn, "squared_pred", squared_pred)
    _check_bool(fn, "soft_label", soft_label)
    if absent_classes is not None:
        C.check_one_of(fn, "absent_classes", absent_classes, ABSENT)
    if alpha is not None:
        C.check_positive(fn, "alpha", alpha, allow_zero=True)
    if beta is not None:
        C.check_positive(fn, "beta", beta, allow_zero=True)


def _overlap_per_image(
    fn: str,
    logits,
    labels,
    where,
    *,
    metric: str,
    activation: str,
    include_background: bool,
    smooth_nr,
    smooth_dr,
    absent_classes: str,
    class_weights=None,
    squared_pred: bool = False,
    soft_label: bool = False,
    alpha=0.5,
    beta=0.5,
    gamma=1.0,
) -> Array:
    """The per-image ``[B]`` loss of a soft-overlap metric: per-class losses, then the class mean."""
    seg = _prepare(fn, logits, labels, where, activation=activation, include_background=include_background)
    k = _counts(seg, _spatial_axes(seg.probs), squared_pred=squared_pred, soft_label=soft_label, direct=metric == "mcc")
    loss_c = _metric_c(metric, k, smooth_nr=smooth_nr, smooth_dr=smooth_dr, alpha=alpha, beta=beta, gamma=gamma)
    loss = _class_mean(loss_c, _present(k), absent_classes, _class_weights(fn, class_weights, seg))
    return _per_image(loss, seg)


# ================================ samples ================================


def _logits(rng, shape, scale=1.5):
    return (rng.normal(size=shape) * scale).astype(np.float32)


def _label_map(rng, shape, num_classes, absent=None):
    """A label map in which class ``absent`` (if given) is missing from the first image."""
    y = rng.integers(0, num_classes, size=shape).astype(np.int32)
    if absent is not None:
        first = y[0]
        first[first == absent] = (absent + 1) % num_classes
    return y


def _onehot(y, num_classes):
    return np.eye(num_classes, dtype=np.float32)[y]


def _soft_targets(rng, shape, num_classes):
    t = rng.dirichlet(np.full(num_classes, 0.7), size=shape).astype(np.float32)
    return t


_W4 = [0.5, 1.0, 2.0, 1.5]


def _dice_sample() -> Sample:
    rng = np.random.default_rng(12)
    shape = (3, 5, 4)
    return Sample(
        args=(_logits(rng, (*shape, 4)), _label_map(rng, shape, 4, absent=3)),
        class_axis=True,
        variants=(
            {"activation": "sigmoid", "include_background": False, "squared_pred": True, "absent_classes": "exclude"},
            {"soft_label": True, "absent_classes": "zero", "smooth_nr": 0.0, "smooth_dr": 1e-3, "class_weights": _W4},
        ),  # activation="none" takes probabilities, which the logit extremes are not: tested in the family tests
    )


def _generalized_sample() -> Sample:
    rng = np.random.default_rng(13)
    shape = (3, 3, 3, 3)  # 3-D
    return Sample(
        args=(_logits(rng, (*shape, 3)), _label_map(rng, shape, 3, absent=2)),
        class_axis=True,
        variants=(
            {"variant": "simple", "include_background": False},
            {"variant": "uniform", "activation": "sigmoid", "soft_label": True, "smooth_nr": 0.0},
        ),
    )


def _jaccard_sample() -> Sample:
    rng = np.random.default_rng(14)
    shape = (3, 4, 4)
    return Sample(
        args=(_logits(rng, (*shape, 3)), _soft_targets(rng, shape, 3)),
        class_axis=True,
        variants=(
            {"soft_label": True, "include_background": False},
            {"squared_pred": True, "activation": "sigmoid", "smooth_nr": 0.5, "smooth_dr": 1.0},
        ),
    )


def _tversky_sample() -> Sample:
    rng = np.random.default_rng(15)
    shape = (3, 3, 3, 2)  # 3-D
    return Sample(
        args=(_logits(rng, (*shape, 3)), _label_map(rng, shape, 3, absent=1)),
        class_axis=True,
        variants=(
            {"alpha": 0.5, "beta": 0.5, "absent_classes": "exclude", "class_weights": [1.0, 2.0, 0.5]},
            {"activation": "sigmoid", "include_background": False, "soft_label": True, "smooth_nr": 0.0},
        ),
    )


def _focal_tversky_sample() -> Sample:
    rng = np.random.default_rng(16)
    shape = (3, 4, 5)
    return Sample(
        args=(_logits(rng, (*shape, 3)), _label_map(rng, shape, 3, absent=2)),
        class_axis=True,
        variants=({"gamma": 2.0, "include_background": False, "absent_classes": "zero"}, {"gamma": 1.5, "alpha": 0.6}),
    )


def _log_cosh_sample() -> Sample:
    rng = np.random.default_rng(17)
    shape = (3, 4, 4)
    y = _label_map(rng, shape, 3, absent=0)
    return Sample(
        args=(_logits(rng, (*shape, 3)), _onehot(y, 3)),
        class_axis=True,
        variants=({"include_background": False, "squared_pred": True, "absent_classes": "exclude"},),
    )


def _f_beta_sample() -> Sample:
    rng = np.random.default_rng(18)
    shape = (3, 4, 4)
    return Sample(
        args=(_logits(rng, (*shape, 3)), _label_map(rng, shape, 3, absent=1)),
        class_axis=True,
        variants=({"beta": 2.0, "soft_label": True, "absent_classes": "exclude"}, {"beta": 0.5, "smooth_nr": 0.0}),
    )


def _mcc_sample() -> Sample:
    rng = np.random.default_rng(19)
    shape = (3, 4, 4)
    t = (rng.random((*shape, 3)) < 0.4).astype(np.float32)
    t[0, ..., 2] = 0.0  # an absent class
    return Sample(
        args=(_logits(rng, (*shape, 3)), t),
        kwargs={"activation": "sigmoid"},
        class_axis=True,
        variants=({"activation": "softmax", "include_background": False, "absent_classes": "exclude"},),
    )


def _dice_ce_sample() -> Sample:
    rng = np.random.default_rng(20)
    shape = (3, 4, 4)
    return Sample(
        args=(_logits(rng, (*shape, 3)), _label_map(rng, shape, 3, absent=2)),
        class_axis=True,
        variants=(
            # label_smoothing is checked in tests/losses/test_segmentation.py: with a -inf logit (an
            # extreme case) the smoothed cross-entropy is +inf by definition.
            {"include_background": False, "class_weights": [0.5, 1.0, 2.0], "ce_weight": 0.5},
            {"activation": "sigmoid", "dice_weight": 0.5, "squared_pred": True},
        ),
    )


def _dice_focal_sample() -> Sample:
    rng = np.random.default_rng(21)
    shape = (3, 4, 4)
    return Sample(
        args=(_logits(rng, (*shape, 3)), _label_map(rng, shape, 3, absent=1)),
        class_axis=True,
        # At logits of +-1e4 the softmax focal term multiplies -log p_y = 2e4 by the derivative of
        # (1 - p_y)^gamma, whose float32 rounding residue (~1 ulp) then shows as ~1e-3 of the gradient.
        value_tol={"rtol": 3e-3, "atol": 1e-4},
        variants=(
            {"focal_activation": "sigmoid", "alpha": 0.25, "gamma": 1.5, "include_background": False},
            {
                "activation": "sigmoid",
                "class_weights": [0.5, 1.0, 2.0],
                "focal_weight": 2.0,
                "alpha": 0.75,
                "gamma": 0.5,
            },
        ),
    )


def _lovasz_softmax_sample() -> Sample:
    rng = np.random.default_rng(22)
    shape = (3, 4, 4)
    return Sample(
        args=(_logits(rng, (*shape, 3)), _label_map(rng, shape, 3, absent=2)),
        class_axis=True,
        grad_eps=1e-6,  # sorted errors: a finite difference must not reorder them
        variants=({"absent_classes": "include", "include_background": False}, {"activation": "sigmoid"}),
    )


def _lovasz_hinge_sample() -> Sample:
    rng = np.random.default_rng(23)
    shape = (3, 5, 4)
    y = rng.integers(0, 2, size=shape).astype(np.int32)
    y[0] = 0  # an image without foreground
    return Sample(
        args=(_logits(rng, (*shape, 1)), y),
        grad_eps=1e-6,
        variants=({"absent_classes": "exclude"},),
    )


def _cldice_sample() -> Sample:
    rng = np.random.default_rng(24)
    shape = (3, 6, 6)
    z = _logits(rng, (*shape, 3))
    return Sample(
        args=(z, _label_map(rng, shape, 3)),
        kwargs={"num_iterations": 1},  # each iteration is the same code and adds compile time
        class_axis=True,
        # Min/max pooling: tied values make the gradient a choice among subgradients, so the
        # near-uniform extreme uses distinct tiny logits instead of exact zeros.
        extremes=(
            (np.where(z >= 0, 1e4, -1e4).astype(np.float32), _label_map(rng, shape, 3)),
            (z * 1e-3, _label_map(rng, shape, 3)),
        ),
        variants=(
            {"alpha": 1.0, "num_iterations": 2, "include_background": False},
            {"activation": "sigmoid", "alpha": 0.0},
        ),
    )


def _boundary_sample() -> Sample:
    rng = np.random.default_rng(25)
    shape = (3, 5, 6)
    return Sample(
        args=(_logits(rng, (*shape, 3)), _label_map(rng, shape, 3)),
        class_axis=True,
        variants=({"include_background": False, "activation": "sigmoid"},),
    )


def _hausdorff_sample() -> Sample:
    rng = np.random.default_rng(26)
    shape = (3, 5, 5)
    return Sample(
        args=(_logits(rng, (*shape, 3)), _label_map(rng, shape, 3)),
        class_axis=True,
        variants=({"include_background": True, "alpha": 1.0, "activation": "sigmoid"},),
    )


def _self_adjusting_sample() -> Sample:
    rng = np.random.default_rng(27)
    shape = (3, 4, 4)
    return Sample(
        args=(_logits(rng, (*shape, 3)), _label_map(rng, shape, 3, absent=2)),
        class_axis=True,
        variants=(
            {"alpha": 0.0, "squared_pred": True, "include_background": False},
            {"alpha": 0.5, "activation": "sigmoid", "absent_classes": "exclude"},
        ),
    )


def _uniseg_sample() -> Sample:
    rng = np.random.default_rng(28)
    shape = (3, 4, 4)
    t = (rng.random((*shape, 4)) < 0.3).astype(np.float32)
    return Sample(
        args=(_logits(rng, (*shape, 4)), t),
        kwargs={"class_where": np.array([True, True, False, True])},
        class_axis=True,
        variants=({"class_weights": [1.0, 0.5, 2.0, 3.0]},),
    )


def _per_class_sample() -> Sample:
    rng = np.random.default_rng(29)
    shape = (3, 4, 4)
    return Sample(
        args=(_logits(rng, (*shape, 3)), _label_map(rng, shape, 3, absent=2)),
        class_axis=True,
        # The metrics share _metric_c with their per-image entries (each checked there): one variant
        # for the weighted-count path, one for MCC's direct counts.
        variants=(
            {"metric": "tversky", "alpha": 0.2, "beta": 0.8, "include_background": False, "soft_label": True},
            {"metric": "mcc", "activation": "sigmoid", "smooth_nr": 0.0},
        ),
    )


def _batch_sample() -> Sample:
    rng = np.random.default_rng(30)
    shape = (3, 4, 4)
    return Sample(
        args=(_logits(rng, (*shape, 3)), _label_map(rng, shape, 3)),
        class_axis=True,
        # Per-batch counts are the only new path (the per-class metrics are checked per image):
        # generalized Dice, the weighted-count path with every class-reduction option, MCC's counts.
        variants=(
            {"metric": "generalized_dice", "variant": "simple"},
            {
                "metric": "focal_tversky",
                "alpha": 0.7,
                "beta": 0.3,
                "gamma": 0.75,
                "class_weights": [1.0, 2.0, 3.0],
                "soft_label": True,
                "absent_classes": "zero",
                "include_background": False,
            },
            {"metric": "mcc", "smooth_nr": 0.0, "activation": "sigmoid", "absent_classes": "exclude"},
        ),
    )


def _sdm_sample() -> Sample:
    y = np.zeros((2, 5, 6), np.int32)
    y[0, 1:4, 2:5] = 1
    y[0, 0, 0] = 2
    y[1, 2:, :3] = 2
    return Sample(args=(y,), kwargs={"num_classes": 3}, diff_argnums=(), where=False)


# ================================ the Dice family ================================


_OVERLAP_ARGS = """
      logits: ``[B, *spatial, C]`` scores (probabilities with ``activation="none"``).
      labels: an integer label map ``[B, *spatial]`` or targets ``[B, *spatial, C]`` (one-hot, multi-hot, soft).
      activation: ``"softmax"`` (multiclass), ``"sigmoid"`` (binary/multilabel) or ``"none"``.
      include_background: keep channel 0 (False drops it after the activation; ignored for one channel)."""

_SMOOTH_ARGS = """
      smooth_nr: added to the numerator (MONAI's; 0 is allowed).
      smooth_dr: added to the denominator (MONAI's; 0 is allowed: an empty ratio then scores 0, a loss of 1)."""

_REDUCE_ARGS = """
      class_weights: optional per-class weights ``[C]`` (indexed by class, background included) or a
        scalar, multiplied into the per-class losses before their mean (MONAI and optax's rule; for
        segmentation_models_pytorch's normalized ``sum(w l) / sum(w)`` pass ``w * C' / sum(w)``).
      absent_classes: ``"include"``, ``"exclude"`` or ``"zero"``: what a class with no target pixel in
        the image contributes (module docstring).
      where: optional boolean mask of ``[B, *spatial]`` (or a prefix, e.g. ``[B]``); masked pixels count
        nowhere and get zero gradient; an image with no unmasked pixel gives 0."""


@register(
    "dice_loss",
    aliases=("soft_dice_loss",),
    family=FAMILY,
    kind="per_example",
    formula="mean_c [1 - (2 sum p t + smooth_nr) / (sum p + sum t + smooth_dr)] per image",
    paper="V-Net: Fully Convolutional Neural Networks for Volumetric Medical Image Segmentation "
    "(2016, arXiv:1606.04797)",
    reference="MONAI 1.6 monai/losses/dice.py::DiceLoss(reduction='none'); optax 0.2.8 losses.dice_loss",
    sample=_dice_sample,
)
def dice_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    activation: str = "softmax",
    include_background: bool = True,
    squared_pred: bool = False,
    soft_label: bool = False,
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    class_weights: ArrayLike | None = None,
    absent_classes: str = "include",
    where: ArrayLike | None = None,
) -> Array:
    r"""Soft Dice loss per image (MONAI ``DiceLoss``, channels-last).

    .. math::
        \ell_b = \frac{1}{C'}\sum_c w_c\Big(1 - \frac{2\sum_x p_{xc} t_{xc} + s_{nr}}
        {\sum_x p_{xc} + \sum_x t_{xc} + s_{dr}}\Big)

    (``sum p^2`` and ``sum t^2`` in the denominator with ``squared_pred``).
    Equals MONAI ``DiceLoss(..., reduction="none")`` averaged over the classes
    (same ``smooth_nr``/``smooth_dr``, ``include_background``, ``squared_pred``,
    ``soft_label``; MONAI's ``weight`` is ``class_weights`` without the
    background entry when it is excluded). optax's ``dice_loss(smooth=s)``
    is ``smooth_nr = smooth_dr = 2 s``; segmentation_models_pytorch's
    ``DiceLoss(smooth=s)`` sums over the whole batch: :func:`batch_overlap_loss`
    with ``smooth_nr = smooth_dr = 2 s``, ``soft_label=True``, ``absent_classes="zero"``.
    For MONAI's ``batch=True`` use :func:`batch_overlap_loss`; per-class values
    come from :func:`overlap_loss_per_class`.

    Args:{args}
      squared_pred: squares ``p`` and ``t`` in the denominator (V-Net's form).
      soft_label: the soft-label intersection ``(|p| + |t| - |p - t|) / 2`` (Wang et al.; equal for hard
        labels).{smooth}{reduce}

    Returns:
      Per-image loss ``[B]``.

    Paper: Milletari, Navab, Ahmadi, "V-Net: Fully Convolutional Neural Networks for Volumetric
    Medical Image Segmentation", 3DV 2016, arXiv:1606.04797.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[[4.0, -4.0], [-4.0, 4.0]]])  # [B=1, W=2, C=2]
      >>> lossjax.losses.dice_loss(logits, jnp.array([[0, 1]])).round(4)
      Array([0.0003], dtype=float32)
    """
    fn = "dice_loss"
    _check_overlap_hparams(
        fn,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        absent_classes=absent_classes,
        squared_pred=squared_pred,
        soft_label=soft_label,
    )
    return _overlap_per_image(
        fn,
        logits,
        labels,
        where,
        metric="dice",
        activation=activation,
        include_background=include_background,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        absent_classes=absent_classes,
        class_weights=class_weights,
        squared_pred=squared_pred,
        soft_label=soft_label,
    )


@register(
    "generalized_dice_loss",
    aliases=("gdl",),
    family=FAMILY,
    kind="per_example",
    formula="1 - (2 sum_c w_c sum p t + smooth_nr) / (sum_c w_c (sum p + sum t) + smooth_dr), w_c = 1/T_c^2",
    paper="Generalised Dice overlap as a deep learning loss function for highly unbalanced segmentations "
    "(2017, arXiv:1707.03237)",
    reference="MONAI 1.6 monai/losses/dice.py::GeneralizedDiceLoss(reduction='none')",
    sample=_generalized_sample,
)
def generalized_dice_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    activation: str = "softmax",
    include_background: bool = True,
    variant: str = "square",
    soft_label: bool = False,
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    where: ArrayLike | None = None,
) -> Array:
    r"""Generalized Dice loss per image (Sudre et al.; MONAI ``GeneralizedDiceLoss``).

    .. math::
        \ell_b = 1 - \frac{2\sum_c w_c \sum_x p_{xc} t_{xc} + s_{nr}}{\sum_c w_c \sum_x (p_{xc} + t_{xc}) + s_{dr}},
        \qquad w_c = \frac{1}{T_c^2}\ (\text{square}),\ \frac{1}{T_c}\ (\text{simple}),\ 1\ (\text{uniform})

    with ``T_c = sum_x t_xc``. A class absent from the image (``T_c = 0``) gets
    the largest weight of the present classes (MONAI's rule); an image with
    no target at all scores ``1 - s_nr / s_dr``. The weights depend on the
    targets only (no gradient). optax's ``multiclass_generalized_dice_loss``
    is a different formula (batch-frequency weights on per-class optax Dice
    losses): it is ``mean(dice_loss(..., class_weights=w, smooth_nr=2, smooth_dr=2))``
    with its ``w``.

    Args:{args}
      variant: the class weights: ``"square"`` (Sudre et al.), ``"simple"`` or ``"uniform"`` (MONAI's ``w_type``).
      soft_label: the soft-label intersection (MONAI's ``soft_label``).{smooth}
      where: optional boolean mask of ``[B, *spatial]`` (or a prefix); masked pixels count nowhere.

    Returns:
      Per-image loss ``[B]``.

    Paper: Sudre, Li, Vercauteren, Ourselin, Cardoso, "Generalised Dice overlap as a deep learning
    loss function for highly unbalanced segmentations", DLMIA 2017, arXiv:1707.03237.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[[4.0, -4.0], [-4.0, 4.0], [4.0, -4.0]]])
      >>> lossjax.losses.generalized_dice_loss(logits, jnp.array([[0, 1, 0]])).round(4)
      Array([0.0004], dtype=float32)
    """
    fn = "generalized_dice_loss"
    _check_overlap_hparams(fn, smooth_nr=smooth_nr, smooth_dr=smooth_dr, soft_label=soft_label)
    C.check_one_of(fn, "variant", variant, GDL_WEIGHTS)
    seg = _prepare(fn, logits, labels, where, activation=activation, include_background=include_background)
    k = _counts(seg, _spatial_axes(seg.probs), soft_label=soft_label)
    return _per_image(_generalized_dice(k, variant, smooth_nr, smooth_dr), seg)


@register(
    "jaccard_loss",
    aliases=("soft_iou_loss", "iou_loss"),
    family=FAMILY,
    kind="per_example",
    formula="mean_c [1 - (2 sum p t + smooth_nr) / (2 (sum p + sum t - sum p t) + smooth_dr)] per image",
    paper="Jaccard Metric Losses: Optimizing the Jaccard Index with Soft Labels (2023, arXiv:2302.05666)",
    reference="MONAI 1.6 monai/losses/dice.py::DiceLoss(jaccard=True); segmentation_models_pytorch 0.6.0 "
    "losses/jaccard.py::JaccardLoss",
    sample=_jaccard_sample,
)
def jaccard_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    activation: str = "softmax",
    include_background: bool = True,
    squared_pred: bool = False,
    soft_label: bool = False,
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    class_weights: ArrayLike | None = None,
    absent_classes: str = "include",
    where: ArrayLike | None = None,
) -> Array:
    r"""Soft Jaccard (IoU) loss per image (MONAI ``DiceLoss(jaccard=True)``).

    .. math::
        \ell_b = \frac{1}{C'}\sum_c w_c\Big(1 - \frac{2\,TP_c + s_{nr}}{2\,(TP_c + FP_c + FN_c) + s_{dr}}\Big),
        \qquad TP_c + FP_c + FN_c = P_c + T_c - TP_c

    MONAI's smoothing convention (both counts doubled): segmentation_models_pytorch's
    ``JaccardLoss(smooth=s)`` is ``smooth_nr = smooth_dr = 2 s`` with ``soft_label=True``,
    ``absent_classes="zero"``, over the batch (:func:`batch_overlap_loss` with ``metric="jaccard"``);
    optax's ``dice_loss(alpha=1, beta=1, smooth=s)`` is the same ``2 s``.

    Args:{args}
      squared_pred: squared sums in the union (MONAI's ``squared_pred``).
      soft_label: the soft-label intersection (Wang et al.; equal for hard labels).{smooth}{reduce}

    Returns:
      Per-image loss ``[B]``.

    Paper: Wang, Ning, Blaschko, "Jaccard Metric Losses: Optimizing the Jaccard Index with Soft
    Labels", NeurIPS 2023, arXiv:2302.05666.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[[0.0, 0.0], [0.0, 0.0]]])
      >>> lossjax.losses.jaccard_loss(logits, jnp.array([[0, 1]]), smooth_nr=0.0, smooth_dr=0.0)
      Array([0.6666666], dtype=float32)
    """
    fn = "jaccard_loss"
    _check_overlap_hparams(
        fn,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        absent_classes=absent_classes,
        squared_pred=squared_pred,
        soft_label=soft_label,
    )
    return _overlap_per_image(
        fn,
        logits,
        labels,
        where,
        metric="jaccard",
        activation=activation,
        include_background=include_background,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        absent_classes=absent_classes,
        class_weights=class_weights,
        squared_pred=squared_pred,
        soft_label=soft_label,
    )


@register(
    "tversky_loss",
    family=FAMILY,
    kind="per_example",
    formula="mean_c [1 - (TP + smooth_nr) / (TP + alpha FP + beta FN + smooth_dr)] per image",
    paper="Tversky loss function for image segmentation using 3D fully convolutional deep networks "
    "(2017, arXiv:1706.05721)",
    reference="MONAI 1.6 monai/losses/tversky.py::TverskyLoss(reduction='none'); optax 0.2.8 dice_loss(alpha, beta); "
    "segmentation_models_pytorch 0.6.0 losses/tversky.py::TverskyLoss",
    sample=_tversky_sample,
)
def tversky_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    activation: str = "softmax",
    include_background: bool = True,
    alpha: float = 0.3,
    beta: float = 0.7,
    soft_label: bool = False,
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    class_weights: ArrayLike | None = None,
    absent_classes: str = "include",
    where: ArrayLike | None = None,
) -> Array:
    r"""Tversky loss per image: Dice with separate weights on false positives and false negatives.

    .. math::
        \ell_b = \frac{1}{C'}\sum_c w_c\Big(1 - \frac{TP_c + s_{nr}}{TP_c + \alpha FP_c + \beta FN_c + s_{dr}}\Big)

    ``alpha`` weighs false positives, ``beta`` false negatives (MONAI's and
    optax's order). The defaults ``0.3, 0.7`` are Salehi et al.'s (MONAI's are
    ``0.5, 0.5``, i.e. Dice). optax's ``dice_loss(alpha, beta, smooth=s)`` is this
    loss with ``smooth_nr = smooth_dr = s``; segmentation_models_pytorch's
    ``TverskyLoss(smooth=s)`` is :func:`batch_overlap_loss` (``metric="tversky"``,
    ``smooth_nr = smooth_dr = s``, ``soft_label=True``, ``absent_classes="zero"``), its
    ``gamma`` raising the class mean (``batch_overlap_loss(...) ** gamma``).

    Args:{args}
      alpha: weight of the false positives (>= 0).
      beta: weight of the false negatives (>= 0).
      soft_label: the soft-label intersection (MONAI's ``soft_label``).{smooth}{reduce}

    Returns:
      Per-image loss ``[B]``.

    Paper: Salehi, Erdogmus, Gholipour, "Tversky loss function for image segmentation using 3D fully
    convolutional deep networks", MLMI 2017, arXiv:1706.05721.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[[0.0, 0.0], [0.0, 0.0]]])
      >>> lossjax.losses.tversky_loss(logits, jnp.array([[0, 1]]), smooth_nr=0.0, smooth_dr=0.0).round(4)
      Array([0.5], dtype=float32)
    """
    fn = "tversky_loss"
    _check_overlap_hparams(
        fn,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        absent_classes=absent_classes,
        soft_label=soft_label,
        alpha=alpha,
        beta=beta,
    )
    return _overlap_per_image(
        fn,
        logits,
        labels,
        where,
        metric="tversky",
        activation=activation,
        include_background=include_background,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        absent_classes=absent_classes,
        class_weights=class_weights,
        soft_label=soft_label,
        alpha=alpha,
        beta=beta,
    )


@register(
    "focal_tversky_loss",
    family=FAMILY,
    kind="per_example",
    formula="mean_c (1 - TI_c)^gamma, TI_c = (TP + smooth_nr) / (TP + alpha FP + beta FN + smooth_dr)",
    paper="A Novel Focal Tversky loss function with improved Attention U-Net for lesion segmentation "
    "(2018, arXiv:1810.07842)",
    reference="MONAI 1.6 TverskyLoss(reduction='none') per class, raised to gamma (closed form on its output)",
    sample=_focal_tversky_sample,
)
def focal_tversky_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    activation: str = "softmax",
    include_background: bool = True,
    alpha: float = 0.3,
    beta: float = 0.7,
    gamma: float = 0.75,
    soft_label: bool = False,
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    class_weights: ArrayLike | None = None,
    absent_classes: str = "include",
    where: ArrayLike | None = None,
) -> Array:
    r"""Focal Tversky loss per image: each class's Tversky loss raised to ``gamma``.

    .. math::
        \ell_b = \frac{1}{C'}\sum_c w_c\,(1 - TI_c)^{\gamma},\qquad
        TI_c = \frac{TP_c + s_{nr}}{TP_c + \alpha FP_c + \beta FN_c + s_{dr}}

    Abraham & Khan write the exponent as ``1/gamma`` with ``gamma = 4/3``:
    ``gamma = 0.75`` here. ``gamma < 1`` has an infinite slope at ``TI = 1``:
    the power is taken with a zero gradient at exactly 0. With one class this
    equals segmentation_models_pytorch's ``TverskyLoss(gamma)``; with several it
    raises each class (the paper) where SMP raises the class mean.

    Args:{args}
      alpha: weight of the false positives.
      beta: weight of the false negatives.
      gamma: the focal exponent (>= 0).
      soft_label: the soft-label intersection.{smooth}{reduce}

    Returns:
      Per-image loss ``[B]``.

    Paper: Abraham, Khan, "A Novel Focal Tversky loss function with improved Attention U-Net for
    lesion segmentation", ISBI 2019, arXiv:1810.07842.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[[0.0, 0.0], [0.0, 0.0]]])
      >>> lossjax.losses.focal_tversky_loss(logits, jnp.array([[0, 1]]), gamma=2.0, smooth_nr=0.0, smooth_dr=0.0)
      Array([0.25], dtype=float32)
    """
    fn = "focal_tversky_loss"
    _check_overlap_hparams(
        fn,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        absent_classes=absent_classes,
        soft_label=soft_label,
        alpha=alpha,
        beta=beta,
    )
    C.check_positive(fn, "gamma", gamma, allow_zero=True)
    return _overlap_per_image(
        fn,
        logits,
        labels,
        where,
        metric="focal_tversky",
        activation=activation,
        include_background=include_background,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        absent_classes=absent_classes,
        class_weights=class_weights,
        soft_label=soft_label,
        alpha=alpha,
        beta=beta,
        gamma=gamma,
    )


@register(
    "log_cosh_dice_loss",
    family=FAMILY,
    kind="per_example",
    formula="mean_c log(cosh(dice_loss_c)) per image",
    paper="A survey of loss functions for semantic segmentation (2020, arXiv:2006.14822)",
    reference="shruti-jadon/Semantic-Segmentation-Loss-Functions loss_functions.py::log_cosh_dice_loss "
    "on MONAI 1.6 DiceLoss per class",
    sample=_log_cosh_sample,
)
def log_cosh_dice_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    activation: str = "softmax",
    include_background: bool = True,
    squared_pred: bool = False,
    soft_label: bool = False,
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    class_weights: ArrayLike | None = None,
    absent_classes: str = "include",
    where: ArrayLike | None = None,
) -> Array:
    r"""Log-cosh Dice loss per image: ``log(cosh(.))`` of each class's Dice loss.

    .. math:: \ell_b = \frac{1}{C'}\sum_c w_c \log\cosh\big(\mathrm{dice}_c\big)

    with ``dice_c`` as in :func:`dice_loss`. Jadon's reference applies it to
    one (binary) Dice loss; with several classes each class is transformed
    before the mean.

    Args:{args}
      squared_pred: squared sums in the denominator.
      soft_label: the soft-label intersection.{smooth}{reduce}

    Returns:
      Per-image loss ``[B]``.

    Paper: Jadon, "A survey of loss functions for semantic segmentation", CIBCB 2020, arXiv:2006.14822.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[[0.0, 0.0], [0.0, 0.0]]])
      >>> lossjax.losses.log_cosh_dice_loss(logits, jnp.array([[0, 1]]), smooth_nr=0.0, smooth_dr=0.0).round(4)
      Array([0.1201], dtype=float32)
    """
    fn = "log_cosh_dice_loss"
    _check_overlap_hparams(
        fn,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        absent_classes=absent_classes,
        squared_pred=squared_pred,
        soft_label=soft_label,
    )
    return _overlap_per_image(
        fn,
        logits,
        labels,
        where,
        metric="log_cosh_dice",
        activation=activation,
        include_background=include_background,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        absent_classes=absent_classes,
        class_weights=class_weights,
        squared_pred=squared_pred,
        soft_label=soft_label,
    )


@register(
    "f_beta_loss",
    aliases=("soft_f_beta_loss",),
    family=FAMILY,
    kind="per_example",
    formula="mean_c [1 - ((1+beta^2) TP + smooth_nr) / ((1+beta^2) TP + beta^2 FN + FP + smooth_dr)]",
    paper="Asymmetric Loss Functions and Deep Densely Connected Networks for Highly Imbalanced Medical "
    "Image Segmentation: Application to Multiple Sclerosis Lesion Detection (2018, arXiv:1803.11078)",
    reference="MONAI 1.6 TverskyLoss with alpha = 1/(1+beta^2), beta' = beta^2/(1+beta^2), smoothing / (1+beta^2)",
    sample=_f_beta_sample,
)
def f_beta_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    activation: str = "softmax",
    include_background: bool = True,
    beta: float = 1.0,
    soft_label: bool = False,
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    class_weights: ArrayLike | None = None,
    absent_classes: str = "include",
    where: ArrayLike | None = None,
) -> Array:
    r"""Soft F-beta loss per image (Hashemi et al.'s asymmetric similarity loss).

    .. math::
        \ell_b = \frac{1}{C'}\sum_c w_c\Big(1 - \frac{(1+\beta^2)\,TP_c + s_{nr}}
        {(1+\beta^2)\,TP_c + \beta^2 FN_c + FP_c + s_{dr}}\Big)

    ``beta = 1`` is :func:`dice_loss`; ``beta > 1`` favours recall. It is the
    Tversky loss with ``alpha = 1/(1+beta^2)``, ``beta' = beta^2/(1+beta^2)``
    and both smoothing terms divided by ``1 + beta^2``.

    Args:{args}
      beta: the F-score's ``beta`` (> 0).
      soft_label: the soft-label intersection.{smooth}{reduce}

    Returns:
      Per-image loss ``[B]``.

    Paper: Hashemi, Salehi, Erdogmus, Prabhu, Warfield, Gholipour, "Asymmetric Loss Functions and
    Deep Densely Connected Networks for Highly Imbalanced Medical Image Segmentation", IEEE Access
    2019, arXiv:1803.11078.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[[0.0, 0.0], [0.0, 0.0]]])
      >>> lossjax.losses.f_beta_loss(logits, jnp.array([[0, 1]]), smooth_nr=0.0, smooth_dr=0.0)
      Array([0.5], dtype=float32)
    """
    fn = "f_beta_loss"
    _check_overlap_hparams(
        fn, smooth_nr=smooth_nr, smooth_dr=smooth_dr, absent_classes=absent_classes, soft_label=soft_label
    )
    C.check_positive(fn, "beta", beta)
    b2 = beta * beta
    return _overlap_per_image(
        fn,
        logits,
        labels,
        where,
        metric="tversky",
        activation=activation,
        include_background=include_background,
        smooth_nr=smooth_nr / (1 + b2),
        smooth_dr=smooth_dr / (1 + b2),
        absent_classes=absent_classes,
        class_weights=class_weights,
        soft_label=soft_label,
        alpha=1 / (1 + b2),
        beta=b2 / (1 + b2),
    )


@register(
    "mcc_loss",
    family=FAMILY,
    kind="per_example",
    formula="mean_c [1 - (TP TN - FP FN + smooth_nr) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN) + smooth_dr)]",
    paper="Matthews Correlation Coefficient Loss for Deep Convolutional Networks: Application to Skin "
    "Lesion Segmentation (2020, arXiv:2010.13454)",
    reference="MONAI 1.6 monai/losses/mcc_loss.py::MCCLoss(reduction='none'); segmentation_models_pytorch "
    "0.6.0 losses/mcc.py::MCCLoss",
    sample=_mcc_sample,
)
def mcc_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    activation: str = "softmax",
    include_background: bool = True,
    smooth_nr: float = 0.0,
    smooth_dr: float = 1e-5,
    class_weights: ArrayLike | None = None,
    absent_classes: str = "include",
    where: ArrayLike | None = None,
) -> Array:
    r"""Soft Matthews-correlation loss per image (MONAI ``MCCLoss``).

    .. math::
        \ell_{bc} = 1 - \frac{TP\,TN - FP\,FN + s_{nr}}{\sqrt{(TP+FP)(TP+FN)(TN+FP)(TN+FN) + s_{dr}}}

    with soft counts over the image's unmasked pixels (``TN = sum (1-p)(1-t)``);
    a class predicted without error (``FP = FN = 0``) scores 0 (MONAI's rule).
    Computed on counts divided by the pixel count (no overflow for large
    volumes). segmentation_models_pytorch's ``MCCLoss(eps=0)`` (binary, on
    probabilities, over the whole batch) is :func:`batch_overlap_loss` with
    ``metric="mcc"``, ``activation="none"``, ``smooth_nr = smooth_dr = 0``.

    Args:{args}{smooth}{reduce}

    Returns:
      Per-image loss ``[B]``.

    Paper: Abhishek, Hamarneh, "Matthews Correlation Coefficient Loss for Deep Convolutional
    Networks: Application to Skin Lesion Segmentation", ISBI 2021, arXiv:2010.13454.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[[9.0], [-9.0]]])  # [B=1, W=2, C=1]
      >>> lossjax.losses.mcc_loss(logits, jnp.array([[1, 0]]), activation="sigmoid").round(3)
      Array([0.], dtype=float32)
    """
    fn = "mcc_loss"
    _check_overlap_hparams(fn, smooth_nr=smooth_nr, smooth_dr=smooth_dr, absent_classes=absent_classes)
    return _overlap_per_image(
        fn,
        logits,
        labels,
        where,
        metric="mcc",
        activation=activation,
        include_background=include_background,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        absent_classes=absent_classes,
        class_weights=class_weights,
    )


# ================================ per class and per batch ================================


@register(
    "overlap_loss_per_class",
    family=FAMILY,
    kind="per_example",
    formula="[B, C'] per-class loss of metric (dice | jaccard | tversky | focal_tversky | log_cosh_dice | mcc)",
    paper="V-Net (2016, arXiv:1606.04797); Tversky (2017, arXiv:1706.05721); Jaccard metric losses "
    "(2023, arXiv:2302.05666); MCC loss (2020, arXiv:2010.13454)",
    reference="MONAI 1.6 DiceLoss / TverskyLoss / MCCLoss (reduction='none')",
    sample=_per_class_sample,
)
def overlap_loss_per_class(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    metric: str = "dice",
    activation: str = "softmax",
    include_background: bool = True,
    squared_pred: bool = False,
    soft_label: bool = False,
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    alpha: float = 0.3,
    beta: float = 0.7,
    gamma: float = 0.75,
    where: ArrayLike | None = None,
) -> Array:
    r"""Per-image, per-class soft-overlap losses ``[B, C']``: the values the Dice family averages.

    .. math::
        \ell_{bc} = 1 - \frac{2 TP + s_{nr}}{P + T + s_{dr}}\ (\text{dice}),\quad
        1 - \frac{2 TP + s_{nr}}{2(P + T - TP) + s_{dr}}\ (\text{jaccard}),\quad
        1 - \frac{TP + s_{nr}}{TP + \alpha FP + \beta FN + s_{dr}}\ (\text{tversky})

    ``focal_tversky`` raises the Tversky loss to ``gamma``, ``log_cosh_dice``
    takes ``log cosh`` of the Dice loss, ``mcc`` is as in :func:`mcc_loss`.
    No class weights and no absent-class rule are applied (a class absent
    from an image has the formula's value); ``C' = C - 1`` without the
    background. Masked images give a row of zeros.

    Args:{args}
      metric: ``"dice"``, ``"jaccard"``, ``"tversky"``, ``"focal_tversky"``, ``"log_cosh_dice"`` or ``"mcc"``.
      squared_pred: squared sums in the denominator (dice, jaccard, log_cosh_dice).
      soft_label: the soft-label intersection.{smooth}
      alpha: Tversky's false-positive weight.
      beta: Tversky's false-negative weight.
      gamma: the focal Tversky exponent.
      where: optional boolean mask of ``[B, *spatial]`` (or a prefix); masked pixels count nowhere.

    Returns:
      Per-class losses ``[B, C']``.

    Paper: Milletari et al., V-Net, arXiv:1606.04797; Salehi et al., Tversky loss, arXiv:1706.05721.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[[0.0, 0.0], [0.0, 0.0]]])
      >>> lossjax.losses.overlap_loss_per_class(logits, jnp.array([[0, 0]]), smooth_nr=0.0, smooth_dr=0.0).round(4)
      Array([[0.3333, 1.    ]], dtype=float32)
    """
    fn = "overlap_loss_per_class"
    C.check_one_of(fn, "metric", metric, METRICS)
    _check_overlap_hparams(
        fn,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        squared_pred=squared_pred,
        soft_label=soft_label,
        alpha=alpha,
        beta=beta,
    )
    C.check_positive(fn, "gamma", gamma, allow_zero=True)
    seg = _prepare(fn, logits, labels, where, activation=activation, include_background=include_background)
    k = _counts(seg, _spatial_axes(seg.probs), squared_pred=squared_pred, soft_label=soft_label, direct=metric == "mcc")
    loss_c = _metric_c(metric, k, smooth_nr=smooth_nr, smooth_dr=smooth_dr, alpha=alpha, beta=beta, gamma=gamma)
    keep = _image_valid(seg)
    return loss_c if keep is None else jnp.where(keep[:, None], loss_c, jnp.zeros((), loss_c.dtype))


@register(
    "batch_overlap_loss",
    aliases=("batch_dice_loss",),
    family=FAMILY,
    kind="batch",
    formula="mean_c loss_c with the soft counts summed over the batch (and devices); metric as in "
    "overlap_loss_per_class, or generalized_dice",
    paper="V-Net (2016, arXiv:1606.04797); Generalised Dice (2017, arXiv:1707.03237); Tversky "
    "(2017, arXiv:1706.05721); MCC loss (2020, arXiv:2010.13454)",
    reference="MONAI 1.6 DiceLoss / GeneralizedDiceLoss / TverskyLoss / MCCLoss (batch=True); "
    "segmentation_models_pytorch 0.6.0 DiceLoss / JaccardLoss / TverskyLoss / MCCLoss",
    sample=_batch_sample,
    runtime=("axis_name",),
)
def batch_overlap_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    metric: str = "dice",
    activation: str = "softmax",
    include_background: bool = True,
    squared_pred: bool = False,
    soft_label: bool = False,
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    alpha: float = 0.3,
    beta: float = 0.7,
    gamma: float = 0.75,
    variant: str = "square",
    class_weights: ArrayLike | None = None,
    absent_classes: str = "include",
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""Batch-level soft-overlap loss: the counts are summed over every image (MONAI's ``batch=True``).

    .. math::
        \ell = \frac{1}{C'}\sum_c w_c\,\ell_c\big(TP_c, FP_c, FN_c\big),\qquad
        TP_c = \sum_{b,x} p_{bxc} t_{bxc},\ \ldots

    with ``l_c`` the per-class loss of ``metric`` (see :func:`overlap_loss_per_class`);
    ``metric="generalized_dice"`` is :func:`generalized_dice_loss` on the batch
    sums (class weights from the batch, ``variant`` as there). Equals MONAI's
    ``DiceLoss``/``TverskyLoss``/``MCCLoss``/``GeneralizedDiceLoss`` with ``batch=True``
    and ``reduction="mean"``, and segmentation_models_pytorch's losses (which always
    sum over the batch) with the conversions given in :func:`dice_loss` and
    :func:`tversky_loss`. MONAI's ``DiceCELoss(batch=True)`` is this loss plus
    ``lossjax.masked_mean(softmax_cross_entropy(logits, labels), where)``.
    With ``axis_name`` the counts are also summed over that mapped mesh axis
    (the global batch under ``shard_map``/``pmap``): every device gets the
    loss of the whole batch. An empty or all-masked batch gives 0.

    Args:{args}
      metric: ``"dice"``, ``"jaccard"``, ``"tversky"``, ``"focal_tversky"``, ``"log_cosh_dice"``, ``"mcc"``
        or ``"generalized_dice"``.
      squared_pred: squared sums in the denominator (dice, jaccard, log_cosh_dice).
      soft_label: the soft-label intersection.{smooth}
      alpha: Tversky's false-positive weight.
      beta: Tversky's false-negative weight.
      gamma: the focal Tversky exponent.
      variant: generalized Dice's class weights (``"square"``, ``"simple"``, ``"uniform"``).{reduce}
      axis_name: a mapped mesh axis to sum the counts over (data parallelism).

    Returns:
      A scalar.

    Paper: Milletari et al., V-Net, arXiv:1606.04797; Sudre et al., Generalised Dice, arXiv:1707.03237.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[[0.0, 0.0]], [[0.0, 0.0]]])  # two one-pixel images
      >>> lossjax.losses.batch_overlap_loss(logits, jnp.array([[0], [1]]), smooth_nr=0.0, smooth_dr=0.0)
      Array(0.5, dtype=float32)
    """
    fn = "batch_overlap_loss"
    C.check_one_of(fn, "metric", metric, BATCH_METRICS)
    _check_overlap_hparams(
        fn,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        absent_classes=absent_classes,
        squared_pred=squared_pred,
        soft_label=soft_label,
        alpha=alpha,
        beta=beta,
    )
    C.check_positive(fn, "gamma", gamma, allow_zero=True)
    C.check_one_of(fn, "variant", variant, GDL_WEIGHTS)
    seg = _prepare(fn, logits, labels, where, activation=activation, include_background=include_background)
    axes = (0, *_spatial_axes(seg.probs))
    k = _counts(
        seg, axes, squared_pred=squared_pred, soft_label=soft_label, direct=metric == "mcc", axis_name=axis_name
    )
    if metric == "generalized_dice":
        loss = _generalized_dice(k, variant, smooth_nr, smooth_dr)
    else:
        loss_c = _metric_c(metric, k, smooth_nr=smooth_nr, smooth_dr=smooth_dr, alpha=alpha, beta=beta, gamma=gamma)
        loss = _class_mean(loss_c, _present(k), absent_classes, _class_weights(fn, class_weights, seg))
    return jnp.where(k.n[0] > 0, loss, jnp.zeros((), loss.dtype))


# ================================ combined losses ================================


def _ce_term(fn: str, seg: _Seg, *, activation, class_weights, label_smoothing) -> Array:
    """Per-image cross-entropy ``[B]``: MONAI DiceCELoss's CE (softmax CE over every class, or BCE)."""
    axes = _spatial_axes(seg.logits)
    z, q = seg.logits, seg.all_targets
    num_classes = z.shape[-1]
    w = None
    if class_weights is not None:
        w = class_weight_column(fn, class_weights, num_classes, seg.dtype)
        w = jax.lax.stop_gradient(jnp.reshape(w, (1,) * (z.ndim - w.ndim) + w.shape))
    if activation == "softmax":
        log_p = seg.log_probs
        wq = q if w is None else q * w
        if label_smoothing:  # (1 - a) q + a / C on the counted pixels; normalized by the unsmoothed weights
            a = jnp.asarray(label_smoothing, seg.dtype)
            qs = q * (1 - a) + seg.valid * (a / num_classes)
            wqs = qs if w is None else qs * w
        else:
            wqs = wq
        # a -inf logit of a class without target mass adds exactly 0 (0 * -inf never formed)
        terms = jnp.where(wqs > 0, -wqs * log_p, jnp.zeros((), seg.dtype))
        num = jnp.sum(terms, (*axes, z.ndim - 1))
        den = jnp.sum(wq, (*axes, z.ndim - 1))  # torch CrossEntropyLoss(weight=...): sum of w_y
        return _safe_ratio(num, den)
    bce = _bce(z, q, w) * seg.valid
    count = jnp.sum(seg.valid, axes) * num_classes
    return _safe_ratio(jnp.sum(bce, (*axes, z.ndim - 1)), count[..., 0])


def _check_combo_weights(fn: str, **weights) -> None:
    for name, value in weights.items():
        C.check_positive(fn, name, value, allow_zero=True)


@register(
    "dice_ce_loss",
    aliases=("dice_cross_entropy_loss",),
    family=FAMILY,
    kind="per_example",
    formula="dice_weight * dice_loss + ce_weight * mean_pixels CE (softmax CE, or BCE per channel)",
    paper="nnU-Net: Self-adapting Framework for U-Net-Based Medical Image Segmentation (2018, arXiv:1809.10486)",
    reference="MONAI 1.6 monai/losses/dice.py::DiceCELoss, one image at a time",
    sample=_dice_ce_sample,
)
def dice_ce_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    activation: str = "softmax",
    include_background: bool = True,
    squared_pred: bool = False,
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    class_weights: ArrayLike | None = None,
    dice_weight: float = 1.0,
    ce_weight: float = 1.0,
    label_smoothing: float = 0.0,
    absent_classes: str = "include",
    where: ArrayLike | None = None,
) -> Array:
    r"""Dice plus cross-entropy per image (MONAI ``DiceCELoss``; nnU-Net's default).

    .. math::
        \ell_b = \lambda_{dice}\,\mathrm{dice}_b + \lambda_{ce}\,
        \frac{\sum_x \sum_c w_c q_{xc}(-\log p_{xc})}{\sum_x \sum_c w_c t_{xc}}

    The Dice term is :func:`dice_loss` (with ``class_weights``); the CE term is
    the softmax cross-entropy over *every* class (``include_background`` does not
    apply, as in MONAI), ``q`` the targets with ``label_smoothing``, normalized by
    the summed target weights as torch's ``CrossEntropyLoss(weight=...)`` does
    for class indices (plain mean without weights). With ``activation="sigmoid"``
    the CE term is the binary cross-entropy per channel, averaged over pixels and
    channels, ``class_weights`` acting as ``pos_weight`` (MONAI's rule for one
    channel; MONAI applies a softmax CE to several sigmoid channels, lossjax a BCE).
    The mean over images of this loss is MONAI's ``DiceCELoss(batch=False)``
    without class weights (with them MONAI normalizes the CE over the whole batch).

    Args:{args}
      squared_pred: squared sums in the Dice denominator.{smooth}
      class_weights: optional per-class weights ``[C]`` for both terms (MONAI's ``weight``).
      dice_weight: weight of the Dice term (MONAI's ``lambda_dice``).
      ce_weight: weight of the cross-entropy term (MONAI's ``lambda_ce``).
      label_smoothing: smoothing of the softmax CE's targets (softmax only).
      absent_classes: the Dice term's absent-class rule.
      where: optional boolean mask of ``[B, *spatial]`` (or a prefix); masked pixels count nowhere.

    Returns:
      Per-image loss ``[B]``.

    Paper: Isensee et al., "nnU-Net: Self-adapting Framework for U-Net-Based Medical Image
    Segmentation", arXiv:1809.10486 (2018).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[[0.0, 0.0], [0.0, 0.0]]])
      >>> lossjax.losses.dice_ce_loss(logits, jnp.array([[0, 1]]), smooth_nr=0.0, smooth_dr=0.0).round(4)
      Array([1.1931], dtype=float32)
    """
    fn = "dice_ce_loss"
    _check_overlap_hparams(
        fn, smooth_nr=smooth_nr, smooth_dr=smooth_dr, absent_classes=absent_classes, squared_pred=squared_pred
    )
    _check_combo_weights(fn, dice_weight=dice_weight, ce_weight=ce_weight)
    C.check_in_range(fn, "label_smoothing", label_smoothing, 0.0, 1.0, high_inclusive=False)
    if activation == "sigmoid" and label_smoothing:
        raise ValueError(f"{fn}: `label_smoothing` applies to the softmax cross-entropy only, got {label_smoothing!r}.")
    seg = _prepare(
        fn,
        logits,
        labels,
        where,
        activation=activation,
        include_background=include_background,
        activations=("softmax", "sigmoid"),
    )
    k = _counts(seg, _spatial_axes(seg.probs), squared_pred=squared_pred)
    dice = _class_mean(
        _dice_c(k, smooth_nr, smooth_dr), _present(k), absent_classes, _class_weights(fn, class_weights, seg)
    )
    ce = _ce_term(fn, seg, activation=activation, class_weights=class_weights, label_smoothing=label_smoothing)
    return _per_image(dice_weight * dice + ce_weight * ce, seg)


def _focal_term(fn: str, seg: _Seg, labels, *, focal_activation, gamma, alpha, class_weights) -> Array:
    """Per-image focal loss ``[B]`` (MONAI FocalLoss semantics; mean over pixels, and channels for sigmoid)."""
    axes = _spatial_axes(seg.logits)
    n_pixels = jnp.sum(seg.valid, axes)[..., 0]
    weights = _class_weights(fn, class_weights, seg)
    if focal_activation == "sigmoid":
        z = seg.logits[..., seg.first_class :]
        t = seg.targets
        # (1 - p_t)^gamma = sigmoid(-z (2t - 1))^gamma (MONAI's form, exact for hard labels)
        modulating = C.safe_power(jax.nn.sigmoid(-z * (2 * t - 1)), gamma)
        loss = modulating * _bce(z, t)
        if alpha is not None:
            loss = loss * (alpha * t + (1 - alpha) * (1 - t))
        if weights is not None:
            loss = loss * jnp.reshape(weights, (1,) * (loss.ndim - 1) + weights.shape)
        loss = loss * seg.valid
        return _safe_ratio(jnp.sum(loss, (*axes, z.ndim - 1)), n_pixels * z.shape[-1])
    num_classes = seg.logits.shape[-1]
    w = jnp.ones((num_classes,), seg.dtype)
    if seg.first_class:
        w = w.at[0].set(0.0)
    if alpha is not None:  # MONAI: 1 - alpha for the background class, alpha for the others
        w = w * jnp.concatenate([jnp.full((1,), 1 - alpha, seg.dtype), jnp.full((num_classes - 1,), alpha, seg.dtype)])
    if class_weights is not None:
        w = w * class_weight_column(fn, class_weights, num_classes, seg.dtype)
    tp = target_probs(fn, seg.logits, labels, where=seg.mask, class_weights=jax.lax.stop_gradient(w))
    per_pixel = tp.expect(-C.safe_power(tp.one_minus_p, gamma) * tp.log_p)
    return _safe_ratio(jnp.sum(per_pixel, axes), n_pixels)


@register(
    "dice_focal_loss",
    family=FAMILY,
    kind="per_example",
    formula="dice_weight * dice_loss + focal_weight * mean focal loss (sigmoid per channel or softmax)",
    paper="AnatomyNet: Deep Learning for Fast and Fully Automated Whole-volume Segmentation of Head and "
    "Neck Anatomy (2018, arXiv:1808.05238)",
    reference="MONAI 1.6 monai/losses/dice.py::DiceFocalLoss (focal_activation='sigmoid'), one image at a time",
    sample=_dice_focal_sample,
)
def dice_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    activation: str = "softmax",
    focal_activation: str | None = None,
    include_background: bool = True,
    squared_pred: bool = False,
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    class_weights: ArrayLike | None = None,
    gamma: float = 2.0,
    alpha: float | None = None,
    dice_weight: float = 1.0,
    focal_weight: float = 1.0,
    absent_classes: str = "include",
    where: ArrayLike | None = None,
) -> Array:
    r"""Dice plus focal loss per image (MONAI ``DiceFocalLoss``).

    .. math::
        \ell_b = \lambda_{dice}\,\mathrm{dice}_b + \lambda_{focal}\,\mathrm{mean}_x\,
        \mathrm{FL}_x,\qquad \mathrm{FL} = -\alpha_t (1 - p_t)^{\gamma}\log p_t

    ``focal_activation`` picks the focal term: ``"sigmoid"`` is MONAI's
    ``FocalLoss`` (what ``DiceFocalLoss`` always uses, also beside a softmax Dice):
    a binary focal loss per channel (``include_background`` applies),
    ``alpha t + (1 - alpha)(1 - t)`` balancing, averaged over pixels and channels;
    ``"softmax"`` is the multiclass focal loss ``-(1-p_y)^gamma log p_y`` per
    pixel (``alpha``: ``1 - alpha`` for the background class and ``alpha`` for
    the others, MONAI's convention), averaged over pixels (MONAI's
    ``FocalLoss(use_softmax=True)`` also divides by the number of channels).
    ``None`` (the default) uses ``activation``. ``class_weights`` multiply both terms.

    Args:{args}
      focal_activation: ``"sigmoid"``, ``"softmax"`` or None (same as ``activation``).
      squared_pred: squared sums in the Dice denominator.{smooth}
      class_weights: optional per-class weights ``[C]`` for both terms.
      gamma: the focusing exponent (>= 0).
      alpha: optional balancing factor in ``[0, 1]`` (None: no balancing).
      dice_weight: weight of the Dice term (MONAI's ``lambda_dice``).
      focal_weight: weight of the focal term (MONAI's ``lambda_focal``).
      absent_classes: the Dice term's absent-class rule.
      where: optional boolean mask of ``[B, *spatial]`` (or a prefix); masked pixels count nowhere.

    Returns:
      Per-image loss ``[B]``.

    Paper: Zhu et al., "AnatomyNet: Deep Learning for Fast and Fully Automated Whole-volume
    Segmentation of Head and Neck Anatomy", Medical Physics 2019, arXiv:1808.05238.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[[0.0, 0.0], [0.0, 0.0]]])
      >>> lossjax.losses.dice_focal_loss(logits, jnp.array([[0, 1]]), smooth_nr=0.0, smooth_dr=0.0).round(4)
      Array([0.6733], dtype=float32)
    """
    fn = "dice_focal_loss"
    _check_overlap_hparams(
        fn, smooth_nr=smooth_nr, smooth_dr=smooth_dr, absent_classes=absent_classes, squared_pred=squared_pred
    )
    _check_combo_weights(fn, dice_weight=dice_weight, focal_weight=focal_weight)
    C.check_positive(fn, "gamma", gamma, allow_zero=True)
    if alpha is not None:
        C.check_in_range(fn, "alpha", alpha, 0.0, 1.0)
    focal_activation = activation if focal_activation is None else focal_activation
    C.check_one_of(fn, "focal_activation", focal_activation, ("softmax", "sigmoid"))
    seg = _prepare(
        fn,
        logits,
        labels,
        where,
        activation=activation,
        include_background=include_background,
        activations=("softmax", "sigmoid"),
    )
    if focal_activation == "softmax" and seg.logits.shape[-1] < 2:
        raise ValueError(f"{fn}: focal_activation='softmax' needs at least 2 classes, got {seg.logits.shape}.")
    k = _counts(seg, _spatial_axes(seg.probs), squared_pred=squared_pred)
    dice = _class_mean(
        _dice_c(k, smooth_nr, smooth_dr), _present(k), absent_classes, _class_weights(fn, class_weights, seg)
    )
    focal = _focal_term(
        fn, seg, labels, focal_activation=focal_activation, gamma=gamma, alpha=alpha, class_weights=class_weights
    )
    return _per_image(dice_weight * dice + focal_weight * focal, seg)


@register(
    "self_adjusting_dice_loss",
    aliases=("dsc_loss",),
    family=FAMILY,
    kind="per_example",
    formula="mean_c [1 - (2 sum (1-p)^alpha p t + smooth_nr) / (sum (1-p)^alpha p + sum t + smooth_dr)]",
    paper="Dice Loss for Data-imbalanced NLP Tasks (2019, arXiv:1911.02855)",
    reference="ShannonAI/dice_loss_for_NLP@d1ff9e5 loss/dice_loss.py::DiceLoss._binary_class (torch port, per class)",
    sample=_self_adjusting_sample,
)
def self_adjusting_dice_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    activation: str = "softmax",
    include_background: bool = True,
    alpha: float = 1.0,
    squared_pred: bool = False,
    smooth_nr: float = 1e-4,
    smooth_dr: float = 1e-4,
    class_weights: ArrayLike | None = None,
    absent_classes: str = "include",
    where: ArrayLike | None = None,
) -> Array:
    r"""Self-adjusting Dice loss per image: Dice on ``(1 - p)^alpha p``, which down-weights easy pixels.

    .. math::
        \ell_b = \frac{1}{C'}\sum_c w_c\Big(1 - \frac{2\sum_x \tilde p_{xc} t_{xc} + \gamma}
        {\sum_x \tilde p_{xc} + \sum_x t_{xc} + \gamma}\Big),\qquad \tilde p = (1 - p)^{\alpha} p

    The weight ``(1 - p)^alpha`` is part of the graph (not detached), as in the
    paper and its code. ``alpha = 0`` is :func:`dice_loss`; the paper's formula
    has ``alpha = 1`` (the reference code defaults to 0, its scripts use 0.01-0.1).
    ``smooth_nr = smooth_dr = gamma`` (the reference's ``smooth = 1e-4``). This is
    the reference's binary path (one set-level ratio) for each class; its
    multiclass path divides per-token intersections by the set totals and is
    not reproduced. The paper's per-token DSC is this loss on images of one pixel.

    Args:{args}
      alpha: the self-adjusting exponent (>= 0).
      squared_pred: squared sums in the denominator (the reference's ``square_denominator``).{smooth}{reduce}

    Returns:
      Per-image loss ``[B]``.

    Paper: Li, Sun, Meng, Liang, Wu, Li, "Dice Loss for Data-imbalanced NLP Tasks", ACL 2020,
    arXiv:1911.02855.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[[0.0, 0.0], [0.0, 0.0]]])
      >>> lossjax.losses.self_adjusting_dice_loss(logits, jnp.array([[0, 1]])).round(4)
      Array([0.6666], dtype=float32)
    """
    fn = "self_adjusting_dice_loss"
    _check_overlap_hparams(
        fn, smooth_nr=smooth_nr, smooth_dr=smooth_dr, absent_classes=absent_classes, squared_pred=squared_pred
    )
    C.check_positive(fn, "alpha", alpha, allow_zero=True)
    seg = _prepare(fn, logits, labels, where, activation=activation, include_background=include_background)
    one_minus = _complement(seg, activation)
    adjusted = C.safe_power(one_minus, alpha) * seg.probs
    k = _counts(seg._replace(probs=adjusted), _spatial_axes(seg.probs), squared_pred=squared_pred)
    loss = _class_mean(
        _dice_c(k, smooth_nr, smooth_dr), _present(k), absent_classes, _class_weights(fn, class_weights, seg)
    )
    return _per_image(loss, seg)


@register(
    "class_independent_bce_segmentation",
    aliases=("uniseg_bce",),
    family=FAMILY,
    kind="per_example",
    formula="mean_pixels sum_{c valid} w_c BCE(z_c, t_c): per-class sigmoid BCE, classes a dataset does not "
    "annotate masked",
    paper="Learning Semantic Segmentation from Multiple Datasets with Label Shifts (2022, arXiv:2202.14030)",
    reference="closed form (torch binary_cross_entropy_with_logits); no public implementation located",
    sample=_uniseg_sample,
    runtime=("class_where",),
)
def class_independent_bce_segmentation(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    class_where: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Class-independent binary cross-entropy for training on several datasets with different label spaces.

    .. math::
        \ell_b = \frac{1}{|\Omega_b|}\sum_{x\in\Omega_b}\sum_{c:\,m_{bc}} w_c\,
        \big[\mathrm{softplus}(z_{xc}) - z_{xc} t_{xc}\big]

    A sigmoid per class instead of a softmax, so that a class one dataset does
    not annotate is neither pushed down nor up: ``class_where`` (``m``, ``[C]``
    for the whole batch or ``[B, C]`` per image, e.g. from each image's source
    dataset) masks the classes an image's labels say nothing about; they get
    zero loss and zero gradient. UniSeg's class-relationship term (across
    datasets) is not included.

    Args:
      logits: ``[B, *spatial, C]`` per-class scores.
      labels: multi-hot targets ``[B, *spatial, C]`` or an integer label map ``[B, *spatial]``
        (one-hot; for one channel, the foreground mask).
      class_where: optional boolean ``[C]`` or ``[B, C]``: the classes annotated for each image.
      class_weights: optional per-class weights ``[C]`` (or a scalar).
      where: optional boolean mask of ``[B, *spatial]`` (or a prefix); masked pixels count nowhere.

    Returns:
      Per-image loss ``[B]`` (summed over the annotated classes, averaged over unmasked pixels).

    Paper: Kim, Lee, Kim, Lee, Kim, Kim, "Learning Semantic Segmentation from Multiple Datasets
    with Label Shifts", ECCV 2022, arXiv:2202.14030.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.zeros((1, 2, 2))  # [B=1, W=2, C=2]
      >>> labels = jnp.array([[[1.0, 0.0], [0.0, 1.0]]])
      >>> lossjax.losses.class_independent_bce_segmentation(logits, labels, class_where=jnp.array([True, False]))
      Array([0.6931472], dtype=float32)
    """
    fn = "class_independent_bce_segmentation"
    seg = _prepare(fn, logits, labels, where, activation="sigmoid", include_background=True)
    z, t = seg.logits, seg.all_targets
    num_classes = z.shape[-1]
    loss = _bce(z, t)
    cw = jnp.ones((num_classes,), seg.dtype)
    if class_weights is not None:
        cw = cw * class_weight_column(fn, class_weights, num_classes, seg.dtype)
    if class_where is not None:
        m = C.check_array(fn, "class_where", class_where, ndim=(1, 2), dtype="bool")
        if m.shape[-1] != num_classes or (m.ndim == 2 and m.shape[0] != z.shape[0]):
            raise ValueError(
                f"{fn}: `class_where` must have shape ({num_classes},) or ({z.shape[0]}, {num_classes}), got {m.shape}."
            )
        m = jnp.broadcast_to(m, (z.shape[0], num_classes))
        m = jnp.reshape(m, (z.shape[0],) + (1,) * (z.ndim - 2) + (num_classes,))
        loss = jnp.where(m, loss, jnp.zeros((), seg.dtype))
    loss = jnp.sum(loss * jnp.reshape(cw, (1,) * (z.ndim - 1) + cw.shape) * seg.valid, axis=-1)
    axes = _spatial_axes(z)
    return _per_image(_safe_ratio(jnp.sum(loss, axes), jnp.sum(seg.valid, axes)[..., 0]), seg)


# ================================ Lovasz ================================


def _lovasz(errors: Array, fg: Array, valid: Array, *, hinge: bool) -> Array:
    """Lovasz extension of the Jaccard loss per image and class: ``[B, C']``.

    ``errors``, ``fg``: ``[B, N, C']`` (pixels flattened); ``valid``: ``[B, N, 1]``.
    The errors are sorted in decreasing order (stable: ties keep the pixel
    order) and dotted with the Lovasz gradient of the sorted ground truth
    (Berman et al., Alg. 1), which is a constant (the paper's gradient); masked
    pixels are sorted last with zero error and zero weight.
    """
    e = jnp.swapaxes(errors, 1, 2)  # [B, C', N]
    g = jnp.swapaxes(fg, 1, 2)
    v = jnp.broadcast_to(jnp.swapaxes(valid, 1, 2), e.shape)
    zero = jnp.zeros((), e.dtype)
    key = jnp.where(v > 0, e, jnp.asarray(-jnp.inf, e.dtype))
    perm = jax.lax.stop_gradient(jnp.argsort(-key, axis=-1, stable=True))
    e_sorted = jnp.take_along_axis(jnp.where(v > 0, e, zero), perm, axis=-1)
    g_sorted = jax.lax.stop_gradient(jnp.take_along_axis(g, perm, axis=-1))
    v_sorted = jnp.take_along_axis(v, perm, axis=-1)
    gts = jnp.sum(g_sorted, axis=-1, keepdims=True)
    intersection = gts - jnp.cumsum(g_sorted, axis=-1)
    union = gts + jnp.cumsum((1 - g_sorted) * v_sorted, axis=-1)
    jaccard = 1 - _safe_ratio(intersection, union)
    grad = jax.lax.stop_gradient(jnp.concatenate([jaccard[..., :1], jnp.diff(jaccard, axis=-1)], axis=-1))
    if hinge:
        e_sorted = jax.nn.relu(e_sorted)
    return jnp.sum(e_sorted * grad * v_sorted, axis=-1)


def _flatten_pixels(x: Array) -> Array:
    return jnp.reshape(x, (x.shape[0], -1, x.shape[-1]))


@register(
    "lovasz_softmax_loss",
    aliases=("lovasz_loss",),
    family=FAMILY,
    kind="per_example",
    formula="mean_c <sort_desc(|t_c - p_c|), lovasz_grad(t_c sorted)> per image",
    paper="The Lovasz-Softmax loss: A tractable surrogate for the optimization of the intersection-over-union "
    "measure in neural networks (2017, arXiv:1705.08790)",
    reference="bermanmaxim/LovaszSoftmax@7d48792 pytorch/lovasz_losses.py::lovasz_softmax(per_image=True) "
    "(torch port, stable sort); segmentation_models_pytorch 0.6.0 losses/lovasz.py::LovaszLoss",
    sample=_lovasz_softmax_sample,
)
def lovasz_softmax_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    activation: str = "softmax",
    include_background: bool = True,
    absent_classes: str = "exclude",
    where: ArrayLike | None = None,
) -> Array:
    r"""Lovasz-Softmax loss per image: the convex surrogate of the per-class Jaccard loss.

    .. math::
        \ell_b = \frac{1}{|C_b|}\sum_{c\in C_b} \overline{\Delta_{J_c}}(m_c),\qquad
        \overline{\Delta_J}(m) = \sum_i m_{\pi(i)}\, g_i,\quad m_{xc} = |t_{xc} - p_{xc}|

    with ``pi`` sorting the errors ``m`` in decreasing order and ``g`` the
    Lovasz gradient of the Jaccard loss on the sorted ground truth (Alg. 1):
    its gradient w.r.t. the errors is exactly ``g`` (the paper's; ties are
    broken by pixel order). ``absent_classes="exclude"`` is the reference's
    ``classes="present"`` (its default), ``"include"`` its ``"all"``. The
    reference's default ``per_image=False`` (and segmentation_models_pytorch's
    ``LovaszLoss``) is this loss on the batch folded into one image:
    ``lovasz_softmax_loss(logits.reshape(1, -1, C), labels.reshape(1, -1))[0]``.
    Soft targets use ``t`` as the (fractional) ground truth in ``g``.

    Args:{args}
      absent_classes: ``"exclude"`` (only classes present in the image), ``"include"`` or ``"zero"``.
      where: optional boolean mask of ``[B, *spatial]`` (or a prefix); masked pixels are dropped
        (the reference's ``ignore``).

    Returns:
      Per-image loss ``[B]``.

    Paper: Berman, Rannen Triki, Blaschko, "The Lovasz-Softmax loss: A tractable surrogate for the
    optimization of the intersection-over-union measure in neural networks", CVPR 2018, arXiv:1705.08790.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[[0.0, 0.0], [0.0, 0.0]]])
      >>> lossjax.losses.lovasz_softmax_loss(logits, jnp.array([[0, 1]]))
      Array([0.5], dtype=float32)
    """
    fn = "lovasz_softmax_loss"
    C.check_one_of(fn, "absent_classes", absent_classes, ABSENT)
    seg = _prepare(fn, logits, labels, where, activation=activation, include_background=include_background)
    p, t = _flatten_pixels(seg.probs), _flatten_pixels(seg.targets)
    loss_c = _lovasz(jnp.abs(t - p), t, _flatten_pixels(seg.valid), hinge=False)
    present = ~(jnp.sum(t, axis=1) <= 0)
    return _per_image(_class_mean(loss_c, present, absent_classes, None), seg)


@register(
    "lovasz_hinge_loss",
    family=FAMILY,
    kind="per_example",
    formula="mean_c <sort_desc(relu(1 - z_c s_c)), lovasz_grad(t_c sorted)>, s = 2t - 1, per image",
    paper="The Lovasz-Softmax loss: A tractable surrogate for the optimization of the intersection-over-union "
    "measure in neural networks (2017, arXiv:1705.08790)",
    reference="bermanmaxim/LovaszSoftmax@7d48792 pytorch/lovasz_losses.py::lovasz_hinge(per_image=True) "
    "(torch port, stable sort); segmentation_models_pytorch 0.6.0 LovaszLoss(binary)",
    sample=_lovasz_hinge_sample,
)
def lovasz_hinge_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    absent_classes: str = "include",
    where: ArrayLike | None = None,
) -> Array:
    r"""Binary Lovasz hinge loss per image (and per channel): the Jaccard surrogate on hinge errors.

    .. math::
        \ell_b = \frac{1}{C}\sum_c \sum_i \mathrm{relu}(m_{\pi(i)c})\, g_{ic},\qquad
        m_{xc} = 1 - z_{xc}(2 t_{xc} - 1)

    Each channel of ``logits`` is a binary problem (one channel for binary
    segmentation: the reference's ``lovasz_hinge``, whose default is
    ``per_image=True``). The gradient w.r.t. the sorted hinge errors is the
    Lovasz gradient ``g`` (ties broken by pixel order). segmentation_models_pytorch's
    multilabel ``LovaszLoss`` merges the channels into one set: pass
    ``logits.reshape(B, -1, 1)``; its ``per_image=False`` folds the batch too.

    Args:
      logits: ``[B, *spatial, C]`` binary scores (``C = 1`` for binary segmentation).
      labels: binary targets ``[B, *spatial, C]``, or a label map ``[B, *spatial]`` (the foreground
        mask for one channel, one-hot for several).
      absent_classes: what a channel without foreground contributes: ``"include"`` (the reference:
        its largest hinge error), ``"exclude"`` or ``"zero"``.
      where: optional boolean mask of ``[B, *spatial]`` (or a prefix); masked pixels are dropped.

    Returns:
      Per-image loss ``[B]``.

    Paper: Berman, Rannen Triki, Blaschko, "The Lovasz-Softmax loss", CVPR 2018, arXiv:1705.08790.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[[2.0], [-1.0], [0.5]]])  # [B=1, W=3, C=1]
      >>> lossjax.losses.lovasz_hinge_loss(logits, jnp.array([[1, 0, 0]]))
      Array([0.75], dtype=float32)
    """
    fn = "lovasz_hinge_loss"
    C.check_one_of(fn, "absent_classes", absent_classes, ABSENT)
    seg = _prepare(fn, logits, labels, where, activation="none", include_background=True)
    z, t = _flatten_pixels(seg.logits), _flatten_pixels(seg.targets)
    errors = 1 - z * (2 * t - 1)
    loss_c = _lovasz(errors, t, _flatten_pixels(seg.valid), hinge=True)
    present = ~(jnp.sum(t, axis=1) <= 0)
    return _per_image(_class_mean(loss_c, present, absent_classes, None), seg)


# ================================ clDice ================================


def _pool(x: Array, op, init: float, window: tuple[int, ...]) -> Array:
    """``[B, *sp, C]`` pooling with a centred window over the spatial axes, stride 1, edge-padded by ``init``."""
    dims = (1, *window, 1)
    pads = ((0, 0), *(((w - 1) // 2, (w - 1) // 2) for w in window), (0, 0))
    return jax.lax.reduce_window(x, init, op, dims, (1,) * x.ndim, pads)


def _soft_erode(x: Array) -> Array:
    """MONAI/clDice soft erosion: the minimum of 3-pixel min-pools along each spatial axis."""
    nsp = x.ndim - 2
    out = None
    for axis in range(nsp):
        window = tuple(3 if a == axis else 1 for a in range(nsp))
        eroded = _pool(x, jax.lax.min, math.inf, window)
        out = eroded if out is None else jnp.minimum(out, eroded)
    return out


def _soft_dilate(x: Array) -> Array:
    return _pool(x, jax.lax.max, -math.inf, (3,) * (x.ndim - 2))


def _soft_skeleton(x: Array, num_iterations: int) -> Array:
    """clDice's soft skeleton (Shit et al., Alg. 1; MONAI ``soft_skel``)."""
    skel = jax.nn.relu(x - _soft_dilate(_soft_erode(x)))
    for _ in range(num_iterations):
        x = _soft_erode(x)
        delta = jax.nn.relu(x - _soft_dilate(_soft_erode(x)))
        skel = skel + jax.nn.relu(delta - skel * delta)
    return skel


@register(
    "cldice_loss",
    aliases=("soft_cldice_loss",),
    family=FAMILY,
    kind="per_example",
    formula="(1 - alpha) dice + alpha (1 - 2 Tprec Tsens / (Tprec + Tsens + epsilon)), "
    "Tprec = (sum S(p) t + s_nr) / (sum S(p) + s_dr), Tsens = (sum S(t) p + s_nr) / (sum S(t) + s_dr)",
    paper="clDice - a Novel Topology-Preserving Loss Function for Tubular Structure Segmentation "
    "(2020, arXiv:2003.07311)",
    reference="MONAI 1.6 monai/losses/cldice.py::SoftDiceclDiceLoss / SoftclDiceLoss, one image at a time",
    sample=_cldice_sample,
)
def cldice_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    activation: str = "softmax",
    include_background: bool = True,
    alpha: float = 0.5,
    num_iterations: int = 3,
    smooth_nr: float = 1.0,
    smooth_dr: float = 1.0,
    epsilon: float = 1e-4,
    where: ArrayLike | None = None,
) -> Array:
    r"""Soft clDice loss per image, mixed with soft Dice (Shit et al.; MONAI ``SoftDiceclDiceLoss``).

    .. math::
        \ell_b = (1-\alpha)\,\mathrm{dice}_b
        + \alpha\Big(1 - \frac{2\,T_{prec}T_{sens}}{T_{prec}+T_{sens}+\epsilon}\Big),\quad
        T_{prec} = \frac{\sum S(p)\,t + s_{nr}}{\sum S(p) + s_{dr}},\
        T_{sens} = \frac{\sum S(t)\,p + s_{nr}}{\sum S(t) + s_{dr}}

    ``S`` is the soft skeleton (iterated soft erosion/opening with 3-pixel
    min/max pools, ``num_iterations`` times); the sums run over the pixels and
    the kept classes of one image (MONAI 1.6's per-item clDice). The Dice term
    is :func:`dice_loss` with the same smoothing. ``alpha = 1`` is MONAI's
    ``SoftclDiceLoss``. Masked pixels count as background in both skeletons and
    nowhere in the sums. Any number of spatial axes (2-D and 3-D in the paper).

    Args:{args}
      alpha: weight of the clDice term; ``1 - alpha`` weighs the Dice term (MONAI's ``alpha``).
      num_iterations: skeletonization iterations (MONAI's ``iter_``; >= 0).
      smooth_nr: added to the numerators of ``T_prec``, ``T_sens`` and Dice.
      smooth_dr: added to their denominators.
      epsilon: guard of the harmonic mean's denominator (MONAI's ``smooth``).
      where: optional boolean mask of ``[B, *spatial]`` (or a prefix).

    Returns:
      Per-image loss ``[B]``.

    Paper: Shit, Paetzold, Sekuboyina, Ezhov, Unger, Zhylka, Pluim, Bauer, Menze, "clDice - a Novel
    Topology-Preserving Loss Function for Tubular Structure Segmentation", CVPR 2021, arXiv:2003.07311.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> import jax
      >>> y = jnp.zeros((1, 5, 5), jnp.int32).at[0, 2, :].set(1)  # a thin line
      >>> logits = 12.0 * jax.nn.one_hot(y, 2) - 6.0
      >>> lossjax.losses.cldice_loss(logits, y).round(3)
      Array([0.001], dtype=float32)
    """
    fn = "cldice_loss"
    _check_smoothing(fn, smooth_nr, smooth_dr)
    C.check_in_range(fn, "alpha", alpha, 0.0, 1.0)
    C.check_int(fn, "num_iterations", num_iterations, 0, static=True)
    C.check_positive(fn, "epsilon", epsilon)
    seg = _prepare(fn, logits, labels, where, activation=activation, include_background=include_background)
    axes = _spatial_axes(seg.probs)
    k = _counts(seg, axes)
    dice = jnp.mean(_dice_c(k, smooth_nr, smooth_dr), axis=-1)
    p, t = seg.probs, seg.targets
    skel_p = _soft_skeleton(p, num_iterations) * seg.valid
    skel_t = jax.lax.stop_gradient(_soft_skeleton(t, num_iterations) * seg.valid)
    all_axes = (*axes, p.ndim - 1)
    tprec = (jnp.sum(skel_p * t, all_axes) + smooth_nr) / (jnp.sum(skel_p, all_axes) + smooth_dr)
    tsens = (jnp.sum(skel_t * p, all_axes) + smooth_nr) / (jnp.sum(skel_t, all_axes) + smooth_dr)
    cl = 1 - _safe_ratio(2 * tprec * tsens, tprec + tsens + epsilon)
    return _per_image((1 - alpha) * dice + alpha * cl, seg)


# ================================ distance transforms ================================


def _squared_edt(feature: Array, axes: tuple[int, ...]) -> Array:
    """Exact squared Euclidean distance to the nearest ``feature`` pixel along ``axes`` (separable, brute force).

    ``d_k(x) = min_y [(x - y)^2 + d_{k-1}(y)]`` along one axis after another
    (Felzenszwalb & Huttenlocher's decomposition, each lower envelope by brute
    force: ``O(N * L)`` work, ``[..., L, L]`` temporaries). Without any feature
    pixel the result is at least ``sum L_k^2 + 1``.
    """
    dtype = jnp.float32 if not jnp.issubdtype(feature.dtype, jnp.floating) else feature.dtype
    big = float(sum(feature.shape[a] ** 2 for a in axes) + 1)
    d = jnp.where(feature, jnp.zeros((), dtype), jnp.asarray(big, dtype))
    for axis in axes:
        length = d.shape[axis]
        pos = jnp.arange(length, dtype=dtype)
        cost = jnp.square(pos[:, None] - pos[None, :])  # [L_out, L_in]
        moved = jnp.moveaxis(d, axis, -1)
        cost = jnp.reshape(cost, (1,) * (moved.ndim - 1) + cost.shape)
        envelope = jnp.min(moved[..., None, :] + cost, axis=-1)
        d = jnp.moveaxis(jnp.minimum(envelope, jnp.asarray(big, dtype)), -1, axis)
    return d


def _edt(mask: Array, axes: tuple[int, ...], dtype) -> Array:
    """``scipy.ndimage.distance_transform_edt(mask)``: distance of each True pixel to the nearest False one."""
    sq = _squared_edt(~mask, axes).astype(dtype)
    return jnp.where(mask, C.safe_sqrt(sq), jnp.zeros((), dtype))


def _has_interface(mask: Array, axes: tuple[int, ...]) -> Array:
    return jnp.any(mask, axes, keepdims=True) & ~jnp.all(mask, axes, keepdims=True)


def _signed_distance(t: Array, dtype) -> Array:
    """MONAI BoundaryLoss.compute_distance_map on channels-last targets ``[B, *sp, C]`` (no gradient)."""
    axes = _spatial_axes(t)
    mask = t > 0.5
    inside = _edt(mask, axes, dtype)
    outside = _edt(~mask, axes, dtype)
    signed = jnp.where(mask, 1 - inside, outside)
    return jnp.where(_has_interface(mask, axes), signed, jnp.zeros((), dtype))


def _distance_field(x: Array, dtype) -> Array:
    """MONAI HausdorffDTLoss.distance_field: fg + bg distance transforms of ``x > 0.5`` per image and channel."""
    axes = _spatial_axes(x)
    fg = x > 0.5
    field = _edt(fg, axes, dtype) + _edt(~fg, axes, dtype)
    return jnp.where(_has_interface(fg, axes), field, jnp.zeros((), dtype))


@register(
    "signed_distance_map",
    family=FAMILY,
    kind="function",
    formula="phi = -(d_in - 1) inside the class, d_out outside (exact Euclidean distance transforms); 0 for "
    "an empty or full class",
    paper="Boundary loss for highly unbalanced segmentation (2018, arXiv:1812.07032)",
    reference="MONAI 1.6 monai/losses/boundary_loss.py::BoundaryLoss.compute_distance_map (scipy EDT)",
    sample=_sdm_sample,
)
def signed_distance_map(labels: ArrayLike, *, num_classes: int | None = None) -> Array:
    r"""Signed Euclidean distance map of each class, for :func:`boundary_loss` (jittable, also on the host).

    .. math::
        \phi_{xc} = \begin{cases} -(d(x, \partial\Omega_c^{\complement}) - 1) & x\in\Omega_c \\
        d(x, \Omega_c) & x\notin\Omega_c\end{cases}

    with exact Euclidean distances in pixels (negative inside the class, the
    pixels next to the boundary at 0 inside and 1 outside); a class that is
    empty or fills the image gets 0 (MONAI's and Kervadec et al.'s rule).
    Computed by separable brute-force lower envelopes (``O(N * L)``): call it
    once on the host (numpy in, array out) for large volumes, or inside the
    graph. Targets are thresholded at 0.5.

    Args:
      labels: an integer label map ``[B, *spatial]`` (needs ``num_classes``) or targets ``[B, *spatial, C]``.
      num_classes: the number of classes of an integer label map.

    Returns:
      ``[B, *spatial, C]`` float32 (float64 for float64 targets).

    Paper: Kervadec, Bouchtiba, Desrosiers, Granger, Dolz, Ben Ayed, "Boundary loss for highly
    unbalanced segmentation", MIDL 2019, arXiv:1812.07032.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> y = jnp.array([[0, 1, 1, 1, 0, 0]])
      >>> lossjax.losses.signed_distance_map(y, num_classes=2)[0, :, 1]
      Array([ 1.,  0., -1.,  0.,  1.,  2.], dtype=float32)
    """
    fn = "signed_distance_map"
    labels = C.check_array(fn, "labels", labels, min_ndim=2)
    if jnp.issubdtype(labels.dtype, jnp.integer) or labels.dtype == jnp.bool_:
        if num_classes is None:
            raise ValueError(f"{fn}: an integer label map needs `num_classes`, got None.")
        C.check_int(fn, "num_classes", num_classes, 1, static=True)
        t = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
        dtype = jnp.float32
    elif jnp.issubdtype(labels.dtype, jnp.floating):
        if labels.ndim < 3:
            raise ValueError(f"{fn}: float targets must be [B, *spatial, C], got shape {labels.shape}.")
        dtype = C.compute_dtype(labels)
        t = labels.astype(dtype)
    else:
        raise TypeError(f"{fn}: `labels` must have an integer, bool or float dtype, got {labels.dtype}.")
    return _signed_distance(jax.lax.stop_gradient(t), dtype)


@register(
    "boundary_loss",
    aliases=("surface_loss",),
    family=FAMILY,
    kind="per_example",
    formula="mean_c mean_x p_xc phi_xc, phi the signed distance map of the targets",
    paper="Boundary loss for highly unbalanced segmentation (2018, arXiv:1812.07032)",
    reference="MONAI 1.6 monai/losses/boundary_loss.py::BoundaryLoss(reduction='none')",
    sample=_boundary_sample,
    runtime=("distance_maps",),
)
def boundary_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    activation: str = "softmax",
    include_background: bool = True,
    distance_maps: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Boundary (surface) loss per image: probabilities integrated against the targets' signed distance map.

    .. math:: \ell_b = \frac{1}{C'}\sum_c \frac{1}{|\Omega_b|}\sum_x p_{xc}\,\phi_{xc}

    ``phi`` is :func:`signed_distance_map` of the targets (negative inside a
    class, positive outside), computed in the graph from ``labels`` unless
    precomputed ``distance_maps`` ``[B, *spatial, C]`` are given (e.g. once on
    the host with :func:`signed_distance_map`). Equals MONAI ``BoundaryLoss``
    averaged over the classes. Kervadec et al. combine it with a regional loss
    (e.g. :func:`generalized_dice_loss`) whose weight decreases during training.
    Masked pixels count as background in the computed map and nowhere in the mean.

    Args:{args}
      distance_maps: optional precomputed signed distance maps ``[B, *spatial, C]`` (every class).
      where: optional boolean mask of ``[B, *spatial]`` (or a prefix).

    Returns:
      Per-image loss ``[B]`` (negative when the prediction lies inside the targets).

    Paper: Kervadec, Bouchtiba, Desrosiers, Granger, Dolz, Ben Ayed, "Boundary loss for highly
    unbalanced segmentation", MIDL 2019, arXiv:1812.07032.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> import jax
      >>> y = jnp.array([[0, 1, 1, 1, 0, 0]])
      >>> logits = 10.0 * jax.nn.one_hot(y, 2) - 5.0
      >>> lossjax.losses.boundary_loss(logits, y).round(3)
      Array([-0.167], dtype=float32)
    """
    fn = "boundary_loss"
    seg = _prepare(fn, logits, labels, where, activation=activation, include_background=include_background)
    if distance_maps is None:
        phi = _signed_distance(jax.lax.stop_gradient(seg.all_targets), seg.dtype)[..., seg.first_class :]
    else:
        phi = C.check_array(fn, "distance_maps", distance_maps, shape=seg.logits.shape, dtype="float")
        phi = jax.lax.stop_gradient(C.fill_masked(phi.astype(seg.dtype), seg.mask))[..., seg.first_class :]
    axes = _spatial_axes(seg.probs)
    n = jnp.sum(seg.valid, axes)
    per_class = _safe_ratio(jnp.sum(seg.probs * phi * seg.valid, axes), n)
    return _per_image(jnp.mean(per_class, axis=-1), seg)


@register(
    "hausdorff_dt_loss",
    aliases=("hausdorff_loss",),
    family=FAMILY,
    kind="per_example",
    formula="mean_c mean_x (p - t)^2 (d_p^alpha + d_t^alpha), d the distance fields of p > 0.5 and t",
    paper="Reducing the Hausdorff Distance in Medical Image Segmentation with Convolutional Neural Networks "
    "(2019, arXiv:1904.10030)",
    reference="MONAI 1.6 monai/losses/hausdorff_loss.py::HausdorffDTLoss(reduction='none')",
    sample=_hausdorff_sample,
)
def hausdorff_dt_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    activation: str = "softmax",
    include_background: bool = False,
    alpha: float = 2.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Hausdorff distance-transform loss per image (Karimi & Salcudean; MONAI ``HausdorffDTLoss``).

    .. math::
        \ell_b = \frac{1}{C'}\sum_c \frac{1}{|\Omega_b|}\sum_x (p_{xc} - t_{xc})^2
        \,\big((d^p_{xc})^{\alpha} + (d^t_{xc})^{\alpha}\big)

    ``d^p`` and ``d^t`` are the distance fields (distance to the boundary, inside
    plus outside) of the thresholded prediction ``p > 0.5`` and of the targets,
    computed exactly in the graph and held constant (no gradient), 0 for a
    class that is empty or fills the image. The default ``include_background=False``
    is MONAI's. MONAI's ``LogHausdorffDTLoss`` is ``log1p`` of the batch mean.

    Args:{args}
      alpha: the exponent of the distances (>= 0).
      where: optional boolean mask of ``[B, *spatial]`` (or a prefix); masked pixels count as
        background in the distance fields and nowhere in the mean.

    Returns:
      Per-image loss ``[B]``.

    Paper: Karimi, Salcudean, "Reducing the Hausdorff Distance in Medical Image Segmentation with
    Convolutional Neural Networks", IEEE TMI 2020, arXiv:1904.10030.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> y = jnp.array([[0, 1, 1, 0, 0]])
      >>> logits = jnp.array([[[0.0, 1.0], [-2.0, 2.0], [0.0, 1.0], [1.0, 0.0], [2.0, -2.0]]])
      >>> lossjax.losses.hausdorff_dt_loss(logits, y).round(4)
      Array([1.1276], dtype=float32)
    """
    fn = "hausdorff_dt_loss"
    C.check_positive(fn, "alpha", alpha, allow_zero=True)
    seg = _prepare(fn, logits, labels, where, activation=activation, include_background=include_background)
    p, t = seg.probs, seg.targets
    d_p = _distance_field(jax.lax.stop_gradient(p), seg.dtype)
    d_t = _distance_field(jax.lax.stop_gradient(t), seg.dtype)
    distance = C.safe_power(d_p, alpha) + C.safe_power(d_t, alpha)
    axes = _spatial_axes(p)
    per_class = _safe_ratio(jnp.sum(jnp.square(p - t) * distance * seg.valid, axes), jnp.sum(seg.valid, axes))
    return _per_image(jnp.mean(per_class, axis=-1), seg)


# Fill the shared argument blocks into the docstrings.
for _f in (
    dice_loss,
    generalized_dice_loss,
    jaccard_loss,
    tversky_loss,
    focal_tversky_loss,
    log_cosh_dice_loss,
    f_beta_loss,
    mcc_loss,
    overlap_loss_per_class,
    batch_overlap_loss,
    dice_ce_loss,
    dice_focal_loss,
    self_adjusting_dice_loss,
    lovasz_softmax_loss,
    cldice_loss,
    boundary_loss,
    hausdorff_dt_loss,
):
    _f.__doc__ = _f.__doc__.replace("{args}", _OVERLAP_ARGS).replace("{smooth}", _SMOOTH_ARGS)
    _f.__doc__ = _f.__doc__.replace("{reduce}", _REDUCE_ARGS)
del _f
