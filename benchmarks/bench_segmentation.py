"""Dice + cross-entropy, forward+backward: lossjax.dice_ce_loss vs a direct jnp port of MONAI's DiceCELoss.

The port follows MONAI 1.6 ``DiceCELoss(softmax=True, to_onehot_y=True)`` line by line, channels-last:
softmax over the classes, one-hot targets, ``tp = sum(p t)``, ``fp = sum(p) - tp``, ``fn = sum(t) - tp``
over the spatial axes, ``1 - (2 tp + s) / (2 (tp + fp/2 + fn/2) + s)`` averaged over images and classes,
plus the mean softmax cross-entropy over every pixel (optax, integer labels). lossjax's value is the
same number (``jnp.mean(dice_ce_loss(logits, labels))``).

Sizes: ``[8, 256, 256, 32]`` on an accelerator (``--size large``), ``[2, 64, 64, 8]`` on CPU. The floor
is reading the logits and writing their gradient: ``8 B H W C`` bytes (float32) plus the labels.
``peer: MONAI DiceCELoss`` is MONAI itself (channels-first inputs made before timing; forward +
``torch.autograd.grad``), where MONAI is installed.
"""

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lossjax
from lossjax.benchmarking import Case, torch_peer


def _monai_dice_ce_port(logits, labels, smooth_nr=1e-5, smooth_dr=1e-5):
    c = logits.shape[-1]
    axes = tuple(range(1, logits.ndim - 1))
    probs = jax.nn.softmax(logits, axis=-1)
    target = jax.nn.one_hot(labels, c, dtype=logits.dtype)
    tp = jnp.sum(probs * target, axis=axes)
    fp = jnp.sum(probs, axis=axes) - tp
    fn = jnp.sum(target, axis=axes) - tp
    dice = 1.0 - (2.0 * tp + smooth_nr) / (2.0 * (tp + 0.5 * fp + 0.5 * fn) + smooth_dr)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return jnp.mean(dice) + jnp.mean(ce)


def _lossjax_dice_ce(logits, labels):
    return jnp.mean(lossjax.losses.dice_ce_loss(logits, labels))


def _monai_peer(data) -> dict:
    if importlib.util.find_spec("monai") is None:
        return {}
    import torch
    from monai.losses import DiceCELoss

    monai_loss = DiceCELoss(softmax=True, to_onehot_y=True)

    def dice_ce(logits, labels):
        return torch.autograd.grad(monai_loss(logits, labels.long()), logits)

    channels_first = [(jnp.moveaxis(z, -1, 1), y[:, None]) for z, y in data]
    peer = torch_peer(dice_ce, channels_first, requires_grad=(0,))
    return {} if peer is None else {"peer: MONAI DiceCELoss": peer}


def cases(size: str):
    b, h, w, c = (2, 64, 64, 8) if size == "small" else (8, 256, 256, 32)
    rng = np.random.default_rng(0)
    keys = jax.random.split(jax.random.key(0), 2)
    logits = [jax.random.normal(k, (b, h, w, c), jnp.float32) for k in keys]
    labels = [jnp.asarray(rng.integers(0, c, size=(b, h, w)), jnp.int32) for _ in range(2)]
    data = list(zip(logits, labels, strict=True))
    return [
        Case(
            f"dice+ce fwd+bwd [{b}, {h}, {w}, {c}]",
            {
                "lossjax.dice_ce_loss": (jax.value_and_grad(_lossjax_dice_ce), data),
                "MONAI DiceCELoss port (jnp)": (jax.value_and_grad(_monai_dice_ce_port), data),
                **_monai_peer(data),
            },
            baseline="MONAI DiceCELoss port (jnp)",
            floor_bytes=8 * b * h * w * c + 4 * b * h * w,
            note="ratios < 1 are faster than the direct port of MONAI's formula",
        )
    ]
