"""Per-loss gradients: one vjp + vmap, separate callables, representation gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
import lossjax.multiloss as ml
from lossjax.testing import assert_close


def close(actual, expected, **tol):
    assert_close(jax.tree.map(np.asarray, actual), jax.tree.map(lambda x: np.asarray(x, np.float64), expected), **tol)


def _model():
    rng = np.random.default_rng(0)
    params = {
        "w1": jnp.asarray(rng.normal(size=(4, 5)), jnp.float32),
        "w2": jnp.asarray(rng.normal(size=(5, 3)), jnp.float32),
    }
    x = jnp.asarray(rng.normal(size=(6, 4)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    return params, x, y


def _loss_vector(params, x, y):
    out = jnp.tanh(x @ params["w1"]) @ params["w2"]
    return jnp.mean((out - y) ** 2, axis=0)  # one loss per output head: [3]


def test_per_loss_equals_jacrev_and_separate_grads():
    params, x, y = _model()
    losses, grads = jax.jit(ml.per_loss_value_and_grad(_loss_vector))(params, x, y)

    @jax.jit  # the references in one compile (eager: every op of each gradient on its own)
    def references(params, x, y):
        separate = [jax.grad(lambda p, i=i: _loss_vector(p, x, y)[i])(params) for i in range(3)]
        return _loss_vector(params, x, y), jax.jacrev(_loss_vector)(params, x, y), separate

    want_losses, jac, separate = references(params, x, y)
    close(losses, want_losses)
    close(grads, jac, rtol=1e-5, atol=1e-6)
    for i, gi in enumerate(separate):
        close(jax.tree.map(lambda g, i=i: g[i], grads), gi, rtol=1e-5, atol=1e-6)


def test_per_loss_argnums_tuple_and_has_aux():
    params, x, y = _model()

    def f(p, xx, yy):
        v = _loss_vector(p, xx, yy)
        return v, {"total": jnp.sum(v)}

    (losses, aux), (gp, gx) = ml.per_loss_value_and_grad(f, argnums=(0, 1), has_aux=True)(params, x, y)
    close(aux["total"], jnp.sum(losses))
    assert gx.shape == (3, *x.shape)
    close(gx, jax.jacrev(_loss_vector, argnums=1)(params, x, y), rtol=1e-5, atol=1e-6)
    assert gp["w1"].shape == (3, 4, 5)


def test_separate_callables_equal_individual_grads():
    params, x, y = _model()
    rng = np.random.default_rng(1)
    xb = jnp.asarray(rng.normal(size=(3, 4)), jnp.float32)

    def residual(p, xx, yy):
        return jnp.mean((jnp.tanh(xx @ p["w1"]) @ p["w2"] - yy) ** 2)

    def boundary(p, xx):
        return jnp.mean((jnp.tanh(xx @ p["w1"]) @ p["w2"]) ** 2)

    g = jax.jit(ml.separate_value_and_grad([residual, boundary]))
    losses, grads = g(params, (x, y), (xb,))
    close(losses, jnp.stack([residual(params, x, y), boundary(params, xb)]))
    close(jax.tree.map(lambda a: a[0], grads), jax.grad(residual)(params, x, y), rtol=1e-5, atol=1e-6)
    close(jax.tree.map(lambda a: a[1], grads), jax.grad(boundary)(params, xb), rtol=1e-5, atol=1e-6)
    # the summed gradient equals the gradient of the summed loss
    total = jax.grad(lambda p: residual(p, x, y) + boundary(p, xb))(params)
    close(jax.tree.map(lambda a: a.sum(0), grads), total, rtol=1e-5, atol=1e-6)


def test_separate_has_aux():
    params, x, _ = _model()

    def f(p, xx):
        v = jnp.sum(xx @ p["w1"])
        return v, v * 2

    (losses, auxes), _ = ml.separate_value_and_grad([f, f], has_aux=True)(params, (x,), (x[:2],))
    close(jnp.stack(auxes), 2 * losses)


def test_rep_grads_and_trunk_backprop():
    params, x, y = _model()

    def trunk(w1, xx):
        return jnp.tanh(xx @ w1)

    def heads(w2, rep, yy):
        return jnp.mean((rep @ w2 - yy) ** 2, axis=0)

    out = jax.jit(ml.rep_value_and_grad(trunk, heads))(params["w1"], params["w2"], (x,), (y,))
    rep = trunk(params["w1"], x)
    close(out.rep_grads, jax.jacrev(heads, argnums=1)(params["w2"], rep, y), rtol=1e-5, atol=1e-6)
    # equal weights on the representation = the plain gradient of the summed loss
    tx = lossjax.transforms.equal_weight()
    combined, _ = tx.update(out.rep_grads, tx.init(None))
    full = jax.grad(lambda p: jnp.sum(_loss_vector(p, x, y)))(params)
    close(out.trunk_grads(combined), full["w1"], rtol=1e-5, atol=1e-6)
    close(out.head_grads, full["w2"], rtol=1e-5, atol=1e-6)
    close(out.losses, _loss_vector(params, x, y))


def test_train_step_with_config_under_jit():
    params, x, y = _model()
    tx = optax.chain(lossjax.transforms.config(), optax.sgd(0.1))
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        losses, grads = ml.per_loss_value_and_grad(_loss_vector)(params, x, y)
        upd, state = tx.update(grads, state, params)
        return optax.apply_updates(params, upd), state, losses

    p1, state, l0 = step(params, state)
    # by hand: ConFIG of the per-loss gradients (flattened), one SGD step
    _, grads = ml.per_loss_value_and_grad(_loss_vector)(params, x, y)
    J = np.concatenate([np.asarray(grads[k]).reshape(3, -1) for k in ("w1", "w2")], axis=1).astype(np.float64)
    U = J / np.linalg.norm(J, axis=1, keepdims=True)
    d = np.linalg.pinv(U) @ np.ones(3)
    d /= np.linalg.norm(d)
    g = (J @ d).sum() * d
    want = np.concatenate([np.asarray(params[k]).ravel() for k in ("w1", "w2")]) - 0.1 * g
    got = np.concatenate([np.asarray(p1[k]).ravel() for k in ("w1", "w2")])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # a conflict-free step with a small learning rate lowers every loss
    _, _, l1 = step(p1, state)
    assert np.all(np.asarray(l1) < np.asarray(l0))


def test_errors():
    params, x, y = _model()
    with pytest.raises(ValueError, match=r"per_loss_value_and_grad: the loss function must return a vector of m"):
        ml.per_loss_value_and_grad(lambda p: jnp.sum(p["w1"]))(params)
    with pytest.raises(ValueError, match=r"per_loss_value_and_grad: `argnums` entry 3 is not a positional"):
        ml.per_loss_value_and_grad(_loss_vector, argnums=3)(params, x, y)
    with pytest.raises(ValueError, match=r"per_loss_value_and_grad: `argnums` must be an integer, got True"):
        ml.per_loss_value_and_grad(_loss_vector, argnums=(0, True))(params, x, y)
    with pytest.raises(ValueError, match=r"separate_value_and_grad: got 1 input tuples for 2 loss callables"):
        ml.separate_value_and_grad([lambda p: jnp.sum(p["w1"]), lambda p: jnp.sum(p["w2"])])(params, ())
    with pytest.raises(ValueError, match=r"separate_value_and_grad: loss callable 0 must return a scalar"):
        ml.separate_value_and_grad([lambda p: p["w1"].sum(0)])(params, ())
    with pytest.raises(ValueError, match=r"separate_value_and_grad: `funs` must be a non-empty sequence"):
        ml.separate_value_and_grad([])


def test_demo_config_run_learns():
    from lossjax import demo

    cfg = demo.DemoConfig(steps=40, hidden=32, quiet=True)
    row = demo.run_config(cfg, demo.load_data(cfg))
    assert row["run"] == "config + adamw" and np.isfinite(row["final loss"])
    assert row["test acc"] > 0.5  # chance is 0.1


def test_per_loss_unbatched_equals_batched():
    params, x, y = _model()
    a = ml.per_loss_value_and_grad(_loss_vector)(params, x, y)
    b = jax.jit(ml.per_loss_value_and_grad(_loss_vector, batched=False))(params, x, y)
    close(b, a, rtol=1e-5, atol=1e-6)
