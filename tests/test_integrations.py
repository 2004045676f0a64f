"""lossjax.integrations (issue 18 item 3): SAM in one line with Flax NNX, Linen and Equinox, tiny models."""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from lossjax import integrations

RHO = 0.05
X = jnp.linspace(-1.0, 1.0, 12).reshape(4, 3)
Y = jnp.array([0.5, -1.0, 2.0, 0.0])


def _sam_reference(loss_of_params, params):
    """SAM's gradient by its definition: grad at w + rho g / ||g|| (jitted: one compile, no op-by-op dispatch)."""

    def ref(params):
        g = jax.grad(loss_of_params)(params)
        norm = jnp.sqrt(sum(jnp.sum(x**2) for x in jax.tree.leaves(g)))
        point = jax.tree.map(lambda p, x: p + RHO * x / (norm + 1e-12), params, g)
        return jax.grad(loss_of_params)(point)

    return jax.jit(ref)(params)


def _close(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)


def test_import_lossjax_does_not_import_flax_or_equinox():
    code = "import sys, lossjax, lossjax.integrations; sys.exit(any(m in sys.modules for m in ('flax', 'equinox')))"
    assert subprocess.run([sys.executable, "-c", code], timeout=300).returncode == 0


def _nnx_model(dropout: float):
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.l1 = nnx.Linear(3, 4, rngs=rngs)
            self.bn = nnx.BatchNorm(4, rngs=rngs)
            self.drop = nnx.Dropout(dropout, rngs=rngs)
            self.l2 = nnx.Linear(4, 1, rngs=rngs)

        def __call__(self, x):
            return self.l2(self.drop(jax.nn.relu(self.bn(self.l1(x)))))[:, 0]

    return Net(nnx.Rngs(0, dropout=1))


def _nnx_loss(m, x, y):
    return jnp.mean((m(x) - y) ** 2)


def test_nnx_optimizer_with_sam_and_grad_fn_equals_the_definition():
    from flax import nnx

    model = _nnx_model(0.0)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    pure_rest = nnx.as_pure(rest)
    ref_grad = _sam_reference(lambda p: _nnx_loss(nnx.merge(graphdef, p, pure_rest), X, Y), nnx.as_pure(params))
    want = jax.tree.map(lambda p, g: p - 0.1 * g, nnx.as_pure(params), ref_grad)

    opt = nnx.Optimizer(model, optax.chain(lossjax.transforms.sam(rho=RHO), optax.sgd(0.1)), wrt=nnx.Param)

    @nnx.jit
    def step(model, opt, x, y):
        grads = nnx.grad(_nnx_loss)(model, x, y)
        opt.update(model, grads, grad_fn=integrations.nnx_grad_fn(model, _nnx_loss, x, y))

    step(model, opt, X, Y)
    _close(nnx.as_pure(nnx.state(model, nnx.Param)), want)


def test_nnx_sam_value_and_grad_with_dropout_and_batchnorm():
    from flax import nnx

    model = _nnx_model(0.5)
    twin = _nnx_model(0.5)
    loss, grads = nnx.jit(lambda m, x, y: integrations.nnx_sam_value_and_grad(_nnx_loss, rho=RHO)(m, x, y))(model, X, Y)
    # the value, BatchNorm statistics and RNG counts of exactly one (the first) forward pass
    want_loss = _nnx_loss(twin, X, Y)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-6)
    _close(nnx.as_pure(nnx.state(model, nnx.BatchStat)), nnx.as_pure(nnx.state(twin, nnx.BatchStat)))
    _close(nnx.as_pure(nnx.state(model, nnx.RngCount)), nnx.as_pure(nnx.state(twin, nnx.RngCount)))
    # the gradient: SAM's definition with the first pass's Dropout mask in both passes
    fresh = _nnx_model(0.5)
    graphdef, params, rest = nnx.split(fresh, nnx.Param, ...)
    pure_rest = nnx.as_pure(rest)
    ref = _sam_reference(lambda p: _nnx_loss(nnx.merge(graphdef, p, pure_rest), X, Y), nnx.as_pure(params))
    _close(nnx.as_pure(grads), ref)
    plain = jax.jit(jax.grad(lambda p: _nnx_loss(nnx.merge(graphdef, p, pure_rest), X, Y)))(nnx.as_pure(params))
    assert not np.allclose(ref["l1"]["kernel"], plain["l1"]["kernel"])  # jitted above: eager compiled every op
    opt = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
    opt.update(model, grads)  # the gradient is the optimizer's State (not a PyTreeDef dump)


def test_linen_apply_gradients_forwards_grad_fn():
    import flax.linen as nn
    from flax.training.train_state import TrainState

    net = nn.Sequential([nn.Dense(4), nn.relu, nn.Dense(1)])
    params = net.init(jax.random.key(0), X)["params"]
    tx = optax.chain(lossjax.transforms.sam(rho=RHO), optax.sgd(0.1))
    state = TrainState.create(apply_fn=net.apply, params=params, tx=tx)

    def loss_fn(p):
        return jnp.mean((state.apply_fn({"params": p}, X)[:, 0] - Y) ** 2)

    @jax.jit
    def step(s):
        return integrations.linen_apply_gradients(s, grads=jax.grad(loss_fn)(s.params), grad_fn=jax.grad(loss_fn))

    new = step(state)
    want = jax.tree.map(lambda p, g: p - 0.1 * g, params, _sam_reference(loss_fn, params))
    _close(new.params, want)
    assert int(new.step) == 1
    with pytest.raises(ValueError, match="grad_fn"):
        state.apply_gradients(grads=jax.grad(loss_fn)(params))  # Linen's own drops grad_fn: a clear error


def test_equinox_grad_fn_equals_the_definition():
    eqx = pytest.importorskip("equinox")
    model = eqx.nn.MLP(3, 1, 4, 1, key=jax.random.key(0))

    def loss_fn(m, x, y):
        return jnp.mean((jax.vmap(m)(x)[:, 0] - y) ** 2)

    tx = optax.chain(lossjax.transforms.sam(rho=RHO), optax.sgd(0.1))
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = tx.init(params)

    @eqx.filter_jit
    def step(model, opt_state):
        grads = eqx.filter_grad(loss_fn)(model, X, Y)
        p = eqx.filter(model, eqx.is_inexact_array)
        updates, opt_state = tx.update(grads, opt_state, p, grad_fn=integrations.equinox_grad_fn(model, loss_fn, X, Y))
        return eqx.apply_updates(model, updates), opt_state

    new, _ = step(model, opt_state)
    ref = _sam_reference(lambda p: loss_fn(eqx.combine(p, static), X, Y), params)
    want = jax.tree.map(lambda p, g: p - 0.1 * g, params, ref)
    _close(eqx.filter(new, eqx.is_inexact_array), want)


def test_describe_lists_a_transforms_update_time_arguments():
    assert "update-time arguments: tx.update(updates, state, params, grad_fn=...)" in lossjax.describe("sam")
    assert "update-time" not in lossjax.describe("softmax_cross_entropy")


def test_transforms_sam_value_and_grad_takes_an_nnx_module_with_dropout():
    """``lossjax.transforms.sam_value_and_grad`` on an NNX module with Dropout (a raw uint32 TypeError before)."""
    from flax import nnx

    model, twin = _nnx_model(0.5), _nnx_model(0.5)
    loss, grads = nnx.jit(lambda m, x, y: lossjax.transforms.sam_value_and_grad(_nnx_loss, rho=RHO)(m, x, y))(
        model, X, Y
    )
    want, want_grads = nnx.jit(lambda m, x, y: integrations.nnx_sam_value_and_grad(_nnx_loss, rho=RHO)(m, x, y))(
        twin, X, Y
    )
    np.testing.assert_allclose(loss, want, rtol=1e-6)
    _close(nnx.as_pure(grads), nnx.as_pure(want_grads))
    with pytest.raises(ValueError, match="sam_value_and_grad: with an NNX module, `axis_name`"):
        lossjax.transforms.sam_value_and_grad(_nnx_loss, axis_name="batch")(_nnx_model(0.5), X, Y)
