"""Multi-loss gradients and combiners under shard_map on 8 simulated CPU devices (conftest.py).

Per-loss gradients are averaged across devices BEFORE they are combined, so
8 devices holding 3 examples each give the single-device result on all 24.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

import lossjax
import lossjax.multiloss as ml
from lossjax.testing import assert_close

N_DEV = 8
PER_DEV = 3


def _losses(p, x, y):
    z = jnp.tanh(x @ p["w"] + p["b"][None, :])
    return jnp.mean(jnp.square(z - y), axis=0)  # one loss per output: [3]


def _data():
    rng = np.random.default_rng(0)
    params = {
        "w": jnp.asarray(rng.normal(size=(4, 3)), jnp.float32),
        "b": jnp.asarray(0.1 * rng.normal(size=(3,)), jnp.float32),
    }
    x = jnp.asarray(rng.normal(size=(N_DEV * PER_DEV, 4)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(N_DEV * PER_DEV, 3)), jnp.float32)
    return params, x, y


def _mesh():
    return Mesh(np.array(jax.devices()[:N_DEV]), ("data",))


def _spmd(step, n_batch_args):
    in_specs = (P(), P()) + (P("data"),) * n_batch_args
    return jax.jit(jax.shard_map(step, mesh=_mesh(), in_specs=in_specs, out_specs=(P(), P(), P())))


TXS = {
    "config": lambda a: lossjax.transforms.config(axis_name=a),
    "pcgrad": lambda a: lossjax.transforms.pcgrad(axis_name=a),
    "upgrad": lambda a: lossjax.transforms.upgrad(axis_name=a),
    "mgda": lambda a: lossjax.transforms.mgda(axis_name=a),
    "nash_mtl": lambda a: lossjax.transforms.nash_mtl(num_losses=3, axis_name=a),
}


@pytest.mark.parametrize("name", sorted(TXS))
def test_per_loss_grads_averaged_then_combined_equals_one_device(name):
    params, x, y = _data()
    tx1 = TXS[name](None)

    # one device, whole batch
    losses1, grads1 = ml.per_loss_value_and_grad(_losses)(params, x, y)
    upd1, _ = tx1.update(grads1, tx1.init(params), params)

    # 8 devices: per-device per-loss gradients, averaged by multiloss(axis_name), combined once
    def step(params, state, x, y):
        losses, grads = ml.per_loss_value_and_grad(_losses, axis_name="data")(
            jax.lax.pcast(params, "data", to="varying"), x, y
        )
        upd, state = tx1.update(grads, state, params)
        return upd, state, losses

    upd8, _, losses8 = _spmd(step, 2)(params, tx1.init(params), x, y)
    assert_close(losses8, losses1, rtol=1e-5, atol=1e-6)
    assert_close(upd8, upd1, rtol=2e-5, atol=2e-6)

    # same with the averaging done by the combiner's own axis_name
    txa = TXS[name]("data")

    def step2(params, state, x, y):
        losses, grads = ml.per_loss_value_and_grad(_losses)(jax.lax.pcast(params, "data", to="varying"), x, y)
        upd, state = txa.update(grads, state, params)
        return upd, state, jax.lax.pmean(losses, "data")

    upd8b, _, _ = _spmd(step2, 2)(params, txa.init(params), x, y)
    assert_close(upd8b, upd1, rtol=2e-5, atol=2e-6)


def test_separate_callables_across_devices():
    params, x, y = _data()
    xb = x[:, ::-1] * 0.5

    def residual(p, xx, yy):
        return jnp.sum(_losses(p, xx, yy))

    def boundary(p, xx):
        return jnp.mean(jnp.square(xx @ p["w"]))

    tx = optax.chain(lossjax.transforms.config(), optax.sgd(0.1))
    g1 = ml.separate_value_and_grad([residual, boundary])
    losses1, grads1 = g1(params, (x, y), (xb,))
    upd1, _ = tx.update(grads1, tx.init(params), params)

    g8 = ml.separate_value_and_grad([residual, boundary], axis_name="data")

    def step(params, state, x, y, xb):
        losses, grads = g8(jax.lax.pcast(params, "data", to="varying"), (x, y), (xb,))
        upd, state = tx.update(grads, state, params)
        return upd, state, losses

    upd8, _, losses8 = _spmd(step, 3)(params, tx.init(params), x, y, xb)
    assert_close(losses8, losses1, rtol=1e-5, atol=1e-6)
    assert_close(upd8, upd1, rtol=2e-5, atol=2e-6)


def test_combining_before_averaging_is_different():
    # The order matters: ConFIG of the per-device gradients, averaged, is not ConFIG of the average.
    params, x, y = _data()
    tx = lossjax.transforms.config()
    _, grads1 = ml.per_loss_value_and_grad(_losses)(params, x, y)
    upd1, _ = tx.update(grads1, tx.init(params), params)

    def step(params, state, x, y):
        losses, grads = ml.per_loss_value_and_grad(_losses)(jax.lax.pcast(params, "data", to="varying"), x, y)
        upd, state = tx.update(grads, state, params)
        return jax.lax.pmean(upd, "data"), state, jax.lax.pmean(losses, "data")

    wrong, _, _ = _spmd(step, 2)(params, tx.init(params), x, y)
    diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(wrong), jax.tree.leaves(upd1)))
    assert diff > 1e-3


@pytest.mark.parametrize("name", ["uncertainty_weighting", "gradnorm"])
def test_weightings_average_losses_and_grads_across_devices(name):
    params, x, y = _data()
    tx1 = lossjax.get(name, num_losses=3)
    losses1, grads1 = ml.per_loss_value_and_grad(_losses)(params, x, y)
    s1 = tx1.init(params)
    for _ in range(2):  # two steps: the second uses the state built from averaged losses
        upd1, s1 = tx1.update(grads1, s1, params, losses=losses1)

    txa = lossjax.get(name, num_losses=3, axis_name="data")

    def step(params, state, x, y):
        losses, grads = ml.per_loss_value_and_grad(_losses)(jax.lax.pcast(params, "data", to="varying"), x, y)
        for _ in range(2):
            upd, state = txa.update(grads, state, params, losses=losses)
        return upd, state, jax.lax.pmean(losses, "data")

    upd8, s8, _ = _spmd(step, 2)(params, txa.init(params), x, y)
    assert_close(upd8, upd1, rtol=2e-5, atol=2e-6)
    assert_close(jax.tree.leaves(s8)[0], jax.tree.leaves(s1)[0], rtol=2e-5, atol=2e-6)
