"""SAM family under shard_map on 8 simulated CPU devices (conftest.py sets them up).

``ascent_gradient="global"`` must equal one device running on the whole batch;
``ascent_gradient="local"`` (m-sharpness) must equal its definition: the mean
over devices of the SAM gradient each device builds from its own shard.
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
from lossjax.testing import assert_close

T = lossjax.transforms
N_DEV = 8
PER_DEV = 3


def _loss(p, x, y):
    z = jnp.tanh(x @ p["w"] + p["b"][None, :])
    return jnp.mean(jnp.square(z - y))


def _data():
    rng = np.random.default_rng(0)
    params = {
        "w": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32),
        "b": jnp.asarray(0.1 * rng.normal(size=(2,)), jnp.float32),
    }
    x = jnp.asarray(rng.normal(size=(N_DEV * PER_DEV, 3)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(N_DEV * PER_DEV, 2)), jnp.float32)
    return params, x, y


def _sharded_step(tx):
    mesh = Mesh(np.array(jax.devices()[:N_DEV]), ("data",))

    def step(params, state, x, y):
        def gf(p):
            return jax.grad(_loss)(p, x, y)

        # per-device gradient: differentiate with respect to params marked as varying over the axis
        return tx.update(gf(jax.lax.pcast(params, "data", to="varying")), state, params, grad_fn=gf)

    return jax.jit(jax.shard_map(step, mesh=mesh, in_specs=(P(), P(), P("data"), P("data")), out_specs=(P(), P())))


GLOBAL_VARIANTS = {
    "sam": lambda: T.sam(rho=0.1, axis_name="data"),
    "asam": lambda: T.asam(rho=0.5, axis_name="data"),
    "gsam": lambda: T.gsam(rho=0.1, alpha=0.3, axis_name="data"),
    "looksam": lambda: T.looksam(rho=0.1, interval=2, axis_name="data"),
    "friendly_sam": lambda: T.friendly_sam(rho=0.1, axis_name="data"),
    "awp": lambda: T.awp(gamma=0.05, axis_name="data"),
    "bayesian_sam": lambda: T.bayesian_sam(num_examples=24, learning_rate=0.1, rho=0.1, axis_name="data"),
}
SINGLE = {
    "sam": lambda: T.sam(rho=0.1),
    "asam": lambda: T.asam(rho=0.5),
    "gsam": lambda: T.gsam(rho=0.1, alpha=0.3),
    "looksam": lambda: T.looksam(rho=0.1, interval=2),
    "friendly_sam": lambda: T.friendly_sam(rho=0.1),
    "awp": lambda: T.awp(gamma=0.05),
    "bayesian_sam": lambda: T.bayesian_sam(num_examples=24, learning_rate=0.1, rho=0.1),
}


@pytest.mark.parametrize("name", list(GLOBAL_VARIANTS))
def test_global_ascent_gradient_equals_single_device_on_the_whole_batch(name):
    params, x, y = _data()
    tx_sharded, tx_single = GLOBAL_VARIANTS[name](), SINGLE[name]()
    step = _sharded_step(tx_sharded)
    s_sh, s_one = tx_sharded.init(params), tx_single.init(params)
    gf = jax.grad(lambda p: _loss(p, x, y))
    p = params
    for _ in range(3):  # several steps: LookSAM's reuse step and F-SAM's momentum are covered
        out_sh, s_sh = step(p, s_sh, x, y)
        out_one, s_one = tx_single.update(gf(p), s_one, p, grad_fn=gf)
        assert_close(out_sh, out_one, rtol=1e-5, atol=1e-6, err=f"{name}: 8 devices (global) vs 1 device")
        assert_close(s_sh, s_one, rtol=1e-5, atol=1e-6, err=f"{name}: state")
        p = jax.tree.map(lambda a, d: a - 0.1 * d, p, out_one)


def _sam_dir(g, rho):
    n = jnp.sqrt(sum(jnp.sum(v**2) for v in jax.tree.leaves(g)))
    return jax.tree.map(lambda v: rho * v / (n + 1e-12), g)


def _asam_dir(g, w, rho, eta):
    t = jax.tree.map(lambda a: jnp.abs(a) + eta, w)
    tg = jax.tree.map(lambda a, b: a * b, t, g)
    n = jnp.sqrt(sum(jnp.sum(v**2) for v in jax.tree.leaves(tg)))
    return jax.tree.map(lambda a, b: rho * a * b / (n + 1e-12), t, tg)


def _local_definition(name, params, x, y):
    """Per-device perturbations from each shard's own gradient, then the mean over devices."""
    outs = []
    for k in range(N_DEV):
        xs, ys = x[k * PER_DEV : (k + 1) * PER_DEV], y[k * PER_DEV : (k + 1) * PER_DEV]
        gf = jax.grad(lambda p, xs=xs, ys=ys: _loss(p, xs, ys))
        g = gf(params)
        if name == "sam":
            e = _sam_dir(g, 0.1)
        elif name == "asam":
            e = _asam_dir(g, params, 0.5, 0.01)
        elif name == "gsam":
            e = _sam_dir(g, 0.1)
        else:
            raise AssertionError(name)
        gp = gf(jax.tree.map(lambda a, b: a + b, params, e))
        if name == "gsam":
            npn = jnp.sqrt(sum(jnp.sum(v**2) for v in jax.tree.leaves(gp)))
            u = jax.tree.map(lambda v, npn=npn: v / npn, gp)
            c = sum(jnp.sum(a * b) for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(u), strict=True))
            gp = jax.tree.map(lambda a, gg, uu, c=c: a - 0.3 * (gg - c * uu), gp, g, u)
        outs.append(gp)
    return jax.tree.map(lambda *v: sum(v) / N_DEV, *outs)


@pytest.mark.parametrize("name", ["sam", "asam", "gsam"])
def test_local_ascent_gradient_is_m_sharpness(name):
    params, x, y = _data()
    make = {
        "sam": lambda: T.sam(rho=0.1, axis_name="data", ascent_gradient="local"),
        "asam": lambda: T.asam(rho=0.5, axis_name="data", ascent_gradient="local"),
        "gsam": lambda: T.gsam(rho=0.1, alpha=0.3, axis_name="data", ascent_gradient="local"),
    }[name]
    tx = make()
    out, _ = _sharded_step(tx)(params, tx.init(params), x, y)
    assert_close(out, _local_definition(name, params, x, y), rtol=1e-5, atol=1e-6, err=f"{name}: local")
    # and it differs from the global ascent gradient's result: the choice matters
    tx_g = GLOBAL_VARIANTS[name]()
    out_g, _ = _sharded_step(tx_g)(params, tx_g.init(params), x, y)
    assert not np.allclose(out["w"], out_g["w"], rtol=1e-4)


def test_local_ascent_gradient_skips_the_first_all_reduce():
    params, x, y = _data()

    def n_psums(tx):
        mesh = Mesh(np.array(jax.devices()[:N_DEV]), ("data",))

        def step(params, state, x, y):
            gf = lambda p: jax.grad(_loss)(p, x, y)  # noqa: E731
            return tx.update(gf(jax.lax.pcast(params, "data", to="varying")), state, params, grad_fn=gf)

        f = jax.shard_map(step, mesh=mesh, in_specs=(P(), P(), P("data"), P("data")), out_specs=(P(), P()))
        text = str(jax.make_jaxpr(f)(params, tx.init(params), x, y))
        return text.count("psum")

    local = T.sam(rho=0.1, axis_name="data", ascent_gradient="local")
    assert n_psums(local) < n_psums(T.sam(rho=0.1, axis_name="data"))


def test_sam_value_and_grad_under_shard_map_matches_single_device():
    params, x, y = _data()
    mesh = Mesh(np.array(jax.devices()[:N_DEV]), ("data",))
    f = jax.shard_map(
        lambda p, x, y: T.sam_value_and_grad(_loss, rho=0.1, axis_name="data")(p, x, y)[1],
        mesh=mesh,
        in_specs=(P(), P("data"), P("data")),
        out_specs=P(),
    )
    _, g_one = T.sam_value_and_grad(_loss, rho=0.1)(params, x, y)
    assert_close(jax.jit(f)(params, x, y), g_one, rtol=1e-5, atol=1e-6, err="sam_value_and_grad, 8 devices")


def test_rwp_under_shard_map_averages_the_mixed_gradient():
    params, x, y = _data()
    tx_sh = T.random_weight_perturbation(gamma=0.05, axis_name="data", seed=1)
    tx_one = T.random_weight_perturbation(gamma=0.05, seed=1)
    out_sh, s_sh = _sharded_step(tx_sh)(params, tx_sh.init(params), x, y)
    gf = jax.grad(lambda p: _loss(p, x, y))
    out_one, s_one = tx_one.update(gf(params), tx_one.init(params), params, grad_fn=gf)
    # same key on every device -> same noise -> mean of the shards' mixed gradients = the full-batch one
    assert_close(out_sh, out_one, rtol=1e-5, atol=1e-6, err="rwp 8 devices")
    np.testing.assert_array_equal(s_sh.key, s_one.key)


def test_sharded_train_step_with_optimizer_chain():
    params, x, y = _data()
    tx = optax.chain(T.sam(rho=0.1, axis_name="data", ascent_gradient="local"), optax.sgd(0.1, momentum=0.9))
    step = _sharded_step(tx)
    state = tx.init(params)
    out, state = step(params, state, x, y)
    assert all(np.all(np.isfinite(v)) for v in jax.tree.leaves((out, state)))


def test_an_already_reduced_gradient_is_a_trace_time_error():
    params, x, y = _data()
    mesh = Mesh(np.array(jax.devices()[:N_DEV]), ("data",))
    tx = T.sam(rho=0.1, axis_name="data")

    def step(params, x, y):
        gf = lambda p: jax.grad(_loss)(p, x, y)  # noqa: E731
        return tx.update(gf(params), tx.init(params), params, grad_fn=gf)[0]  # grad wrt replicated params

    f = jax.shard_map(step, mesh=mesh, in_specs=(P(), P("data"), P("data")), out_specs=P())
    with pytest.raises(ValueError, match=r"sam: with axis_name='data', `updates` must be per-device gradients"):
        jax.jit(f)(params, x, y)
