"""The losses and transforms the multi-host test runs, and their shared data."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import lossjax

N = 16


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 5)).astype(np.float32)
    y = (x + 0.3 * rng.normal(size=(N, 5))).astype(np.float32)
    labels = np.tile(np.arange(4, dtype=np.int32), N // 4)
    w = (np.eye(5, 4) + 0.1 * rng.normal(size=(5, 4))).astype(np.float32)
    return w, x, y, labels


def _supcon(w, x, y, labels, axis_name=None):
    return lossjax.losses.supervised_contrastive_loss(x @ w, labels, axis_name=axis_name)


def _ntxent(w, x, y, labels, axis_name=None):
    return lossjax.losses.ntxent_loss(x @ w, labels, axis_name=axis_name)


def _ms(w, x, y, labels, axis_name=None):
    return lossjax.losses.multi_similarity_loss(x @ w, labels, axis_name=axis_name)


def _triplet(w, x, y, labels, axis_name=None):
    return lossjax.losses.batch_triplet_loss(x @ w, labels, axis_name=axis_name)


def _infonce(w, x, y, labels, axis_name=None):
    return lossjax.masked_mean(lossjax.losses.infonce_loss(x @ w, y @ w, axis_name=axis_name), axis_name=axis_name)


LOSSES = {"supcon": _supcon, "ntxent": _ntxent, "multi_similarity": _ms, "batch_triplet": _triplet, "infonce": _infonce}


def per_loss_grads(w, x, y, labels, axis_name=None):
    """Per-loss gradients of two per-example losses, stacked ``[2, *w.shape]`` (averaged over ``axis_name``)."""
    import jax

    def losses(w):
        z = x @ w
        return jnp.stack([jnp.mean(jnp.sum(z**2, -1)), jnp.mean(jnp.sum((z - y[:, :4]) ** 2, -1))])

    if axis_name is not None:  # per-device gradients: the replicated weights vary per device here
        w = jax.lax.pcast(w, axis_name, to="varying")
    return lossjax.multiloss.per_loss_value_and_grad(losses, axis_name=axis_name)(w)[1]


TRANSFORMS = {
    "config": lossjax.transforms.config,
    "upgrad": lossjax.transforms.upgrad,
    "imtl_g": lossjax.transforms.imtl_g,
}
