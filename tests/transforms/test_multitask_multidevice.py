"""Multi-loss gradients and combiners under shard_map on 8 simulated CPU devices (conftest.py).

Per-loss gradients are averaged across devices BEFORE they are combined, so
8 devices holding 3 examples each give the single-device result on all 24.
"""

from __future__ import annotations

import functools

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
        # each device combined its own gradients: its weights differ (state.weights is per device here)
        state = state._replace(weights=jax.lax.pmean(state.weights, "data"))
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


# --------------- uneven valid rows per device (issue 19 item 12) ---------------


def _uneven():
    params, x, y = _data()
    valid = np.array([(d % PER_DEV) + 1 for d in range(N_DEV)])  # 1, 2 or 3 valid rows of 3 per device
    where = (np.arange(PER_DEV)[None, :] < valid[:, None]).reshape(-1)
    return params, x, y, jnp.asarray(where)


def _masked_losses(p, x, y, where, axis_name=None):
    per_example = jnp.square(jnp.tanh(x @ p["w"] + p["b"][None, :]) - y)  # [B, 3]: one column per loss
    return lossjax.masked_mean(per_example, where, axis=0, axis_name=axis_name)


UNEVEN = {
    "config": lambda a=None: lossjax.transforms.config(axis_name=a),
    "imtl_g": lambda a=None: lossjax.transforms.imtl_g(axis_name=a),
    "upgrad": lambda a=None: lossjax.transforms.upgrad(axis_name=a),
    "mgda": lambda a=None: lossjax.transforms.mgda(axis_name=a),
    "nash_mtl": lambda a=None: lossjax.transforms.nash_mtl(num_losses=3, axis_name=a),
}


def _rel(a, b):
    return max(
        float(jnp.max(jnp.abs(u - v)) / jnp.max(jnp.abs(v)))
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


@pytest.mark.parametrize("name", sorted(UNEVEN))
def test_uneven_rows_per_device_use_the_global_masked_mean(name):
    params, x, y, where = _uneven()
    tx = UNEVEN[name]()
    losses1, grads1 = ml.per_loss_value_and_grad(_masked_losses)(params, x, y, where)
    upd1, _ = tx.update(grads1, tx.init(params), params)
    mesh_spec = (P(), P()) + (P("data"),) * 3

    def run(step):
        f = jax.shard_map(step, mesh=_mesh(), in_specs=mesh_spec, out_specs=(P(), P(), P()))
        return jax.jit(f)(params, tx.init(params), x, y, where)

    # the familiar pattern: per-device masked means, averaged by the combiner's axis_name: wrong
    txa = UNEVEN[name]("data")

    def wrong(params, state, x, y, w):
        losses, grads = ml.per_loss_value_and_grad(_masked_losses)(jax.lax.pcast(params, "data", to="varying"), x, y, w)
        upd, state = txa.update(grads, state, params)
        return upd, state, jax.lax.pmean(losses, "data")

    upd_wrong, _, _ = run(wrong)
    assert _rel(upd_wrong, upd1) > 0.05, "uneven rows: the per-device mean should be visibly wrong"

    # the documented pattern: the global masked mean (axis_name), multiloss with axis_name, combine once
    for varying in (False, True):

        def right(params, state, x, y, w, varying=varying):
            p = jax.lax.pcast(params, "data", to="varying") if varying else params
            losses, grads = ml.per_loss_value_and_grad(_masked_losses, axis_name="data")(p, x, y, w, "data")
            upd, state = tx.update(grads, state, params)
            return upd, state, losses

        upd8, _, losses8 = run(right)
        assert_close(losses8, losses1, rtol=1e-5, atol=1e-6)
        assert_close(upd8, upd1, rtol=2e-5, atol=2e-6, err=f"{name} (params varying: {varying})")

    # pmap: the same code
    def pstep(params, x, y, w):
        _, grads = ml.per_loss_value_and_grad(_masked_losses, axis_name="data")(params, x, y, w, "data")
        return tx.update(grads, tx.init(params), params)[0]

    shard = lambda a: a.reshape(N_DEV, PER_DEV, *a.shape[1:])  # noqa: E731
    updp = jax.pmap(pstep, axis_name="data", in_axes=(None, 0, 0, 0))(params, shard(x), shard(y), shard(where))
    assert_close(jax.tree.map(lambda a: a[0], updp), upd1, rtol=2e-5, atol=2e-6)


def test_separate_callables_with_uneven_rows():
    params, x, y, where = _uneven()
    xb = x[:, ::-1] * 0.5

    def residual(p, xx, yy, w, axis_name=None):
        return jnp.sum(_masked_losses(p, xx, yy, w, axis_name))

    def boundary(p, xx, w, axis_name=None):
        return lossjax.masked_mean(jnp.sum(jnp.square(xx @ p["w"]), -1), w, axis_name=axis_name)

    tx = lossjax.transforms.config()
    losses1, grads1 = ml.separate_value_and_grad([residual, boundary])(params, (x, y, where), (xb, where))
    upd1, _ = tx.update(grads1, tx.init(params), params)
    global_mean = [functools.partial(f, axis_name="data") for f in (residual, boundary)]
    g8 = ml.separate_value_and_grad(global_mean, axis_name="data")

    def step(params, state, x, y, xb, w):
        losses, grads = g8(params, (x, y, w), (xb, w))
        upd, state = tx.update(grads, state, params)
        return upd, state, losses

    f = jax.shard_map(step, mesh=_mesh(), in_specs=(P(), P()) + (P("data"),) * 4, out_specs=(P(), P(), P()))
    upd8, _, losses8 = jax.jit(f)(params, tx.init(params), x, y, xb, where)
    assert_close(losses8, losses1, rtol=1e-5, atol=1e-6)
    assert_close(upd8, upd1, rtol=2e-5, atol=2e-6)
