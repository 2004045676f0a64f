"""Focal loss and softmax cross-entropy, forward+backward: lossjax vs optax (vs PyTorch where installed).

Softmax cross-entropy with integer labels on ``[N, C]`` logits: lossjax's
``softmax_cross_entropy`` (plain, with label smoothing 0.1) and the multiclass
``focal_loss`` against optax's integer-label cross-entropy (the baseline) and
``optax.smooth_labels`` + ``optax.softmax_cross_entropy``; ``peer: torch
F.cross_entropy`` where torch is installed. The floor is reading the logits and
writing their gradient: ``8 N C`` bytes.

Focal:

The floor is three passes over N float32 values (read logits, read labels,
write the gradient): 12 N bytes. lossjax's default is a custom VJP (lossjax/_elementwise.py):
a value pass reading (z, y) and a closed-form gradient pass reading them again: 5 passes
unless the compiler fuses the two siblings; "lossjax autodiff" is the same formula through
autodiff (the path a traced hyperparameter takes). ``peer: torchvision`` is
``torchvision.ops.sigmoid_focal_loss`` (forward + ``torch.autograd.grad``), where torchvision is installed.
"""

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lossjax
from lossjax.benchmarking import Case, torch_peer


def _hand_written(logits, labels, alpha=0.25, gamma=2.0):
    p = jax.nn.sigmoid(logits)
    ce = optax.sigmoid_binary_cross_entropy(logits, labels)
    p_t = p * labels + (1 - p) * (1 - labels)
    a_t = alpha * labels + (1 - alpha) * (1 - labels)
    return a_t * ce * (1 - p_t) ** gamma


def _fwd_bwd(loss):
    return jax.value_and_grad(lambda z, y: jnp.sum(loss(z, y)))


def _torchvision_peer(inputs) -> dict:
    if importlib.util.find_spec("torchvision") is None:
        return {}
    import torch
    from torchvision.ops import sigmoid_focal_loss

    def focal(z, y):
        return torch.autograd.grad(sigmoid_focal_loss(z, y, alpha=0.25, gamma=2.0, reduction="sum"), z)

    peer = torch_peer(focal, inputs, requires_grad=(0,))
    return {} if peer is None else {"peer: torchvision": peer}


def cases(size: str):
    return [*_focal_cases(size), *_softmax_cases(size)]


def _torch_ce_peer(data) -> dict:
    if importlib.util.find_spec("torch") is None:
        return {}
    import torch
    import torch.nn.functional as F

    def ce(z, y):
        return torch.autograd.grad(F.cross_entropy(z, y.long(), reduction="sum"), z)

    peer = torch_peer(ce, data, requires_grad=(0,))
    return {} if peer is None else {"peer: torch F.cross_entropy": peer}


def _softmax_cases(size: str):
    n, c = (4096, 1000) if size == "small" else (65536, 4096)
    rng = np.random.default_rng(0)
    keys = jax.random.split(jax.random.key(1), 2)
    data = [
        (jax.random.normal(k, (n, c), jnp.float32) * 2, jnp.asarray(rng.integers(0, c, size=n), jnp.int32))
        for k in keys
    ]
    losses = lossjax.losses
    variants = {
        "optax integer-label CE": (_fwd_bwd(optax.softmax_cross_entropy_with_integer_labels), data),
        "lossjax.softmax_cross_entropy": (_fwd_bwd(losses.softmax_cross_entropy), data),
        "optax smooth_labels 0.1 + CE": (
            _fwd_bwd(lambda z, y: optax.softmax_cross_entropy(z, optax.smooth_labels(jax.nn.one_hot(y, c), 0.1))),
            data,
        ),
        "lossjax label_smoothing=0.1": (
            _fwd_bwd(lambda z, y: losses.softmax_cross_entropy(z, y, label_smoothing=0.1)),
            data,
        ),
        "lossjax.focal_loss": (_fwd_bwd(losses.focal_loss), data),
        **_torch_ce_peer(data),
    }
    return [
        Case(
            f"softmax CE fwd+bwd N={n} C={c}",
            variants,
            baseline="optax integer-label CE",
            floor_bytes=8 * n * c,
            key="softmax-ce",
            note="integer labels; x floor = time / copying 8 N C bytes in the same rounds",
        )
    ]


def _focal_cases(size: str):
    n = 1 << (20 if size == "small" else 25)
    keys = jax.random.split(jax.random.key(0), 4)
    inputs = [
        (jax.random.normal(k1, (n,), jnp.float32) * 3, jax.random.bernoulli(k2, 0.3, (n,)).astype(jnp.float32))
        for k1, k2 in (keys[:2], keys[2:])
    ]
    variants = {
        "lossjax.sigmoid_focal_loss": (
            _fwd_bwd(lambda z, y: lossjax.losses.sigmoid_focal_loss(z, y, alpha=0.25, gamma=2.0)),
            inputs,
        ),
        # The same formula differentiated by autodiff (a traced gamma selects that path): the previous default.
        "lossjax autodiff (traced gamma)": (
            _fwd_bwd(lambda z, y: lossjax.losses.sigmoid_focal_loss(z, y, alpha=0.25, gamma=jnp.float32(2.0))),
            inputs,
        ),
        "optax.sigmoid_focal_loss": (
            _fwd_bwd(lambda z, y: optax.sigmoid_focal_loss(z, y, alpha=0.25, gamma=2.0)),
            inputs,
        ),
        "hand-written jnp": (_fwd_bwd(_hand_written), inputs),
        **_torchvision_peer(inputs),
    }
    return [
        Case(
            f"focal fwd+bwd N={n}",
            variants,
            baseline="optax.sigmoid_focal_loss",
            floor_bytes=12 * n,
            note="x floor = time / (12 N bytes / bandwidth); ratios < 1 are faster than optax",
        )
    ]
