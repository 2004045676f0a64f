"""bayesian_sam and robust_weight_perturbation: one step by hand on quadratics, state over steps, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from lossjax.testing import assert_close

A = jnp.array([1.0, 4.0])
W = jnp.array([1.0, -2.0])


def loss(p):
    return 0.5 * jnp.sum(A * p**2)


grad = jax.grad(loss)


def test_bayesian_sam_one_step_by_hand_on_a_quadratic():
    # N huge: the posterior noise 1/sqrt(N s) vanishes, so g = A w exactly and the SAM point is w + rho g / s.
    lr, rho, b1, b2, wd, damping, s0 = 0.1, 0.5, 0.9, 0.99, 0.01, 0.1, 2.0
    tx = lossjax.transforms.bayesian_sam(
        num_examples=10**14,
        learning_rate=lr,
        rho=rho,
        b1=b1,
        b2=b2,
        weight_decay=wd,
        damping=damping,
        init_precision=s0,
    )
    out, state = tx.update(grad(W), tx.init(W), W, grad_fn=grad)
    g = A * W
    g_sam = A * (W + rho * g / s0)
    momentum = (1 - b1) * (g_sam + wd * W)
    assert_close(out, -lr * momentum / s0, rtol=1e-5)
    assert_close(state.momentum, momentum, rtol=1e-5)
    assert_close(state.precision, b2 * s0 + (1 - b2) * (jnp.sqrt(s0) * jnp.abs(g) + damping + wd), rtol=1e-6)
    assert int(state.count) == 1


def test_bayesian_sam_draws_its_noise_from_the_state_key_and_uses_the_old_precision():
    n, s0, rho = 4, 1.0, 0.1
    tx = lossjax.transforms.bayesian_sam(num_examples=n, learning_rate=1.0, rho=rho, b1=0.0, weight_decay=0.0, seed=7)
    state = tx.init(W)
    out, new = tx.update(grad(W), state, W, grad_fn=grad)
    key, sub = jax.random.split(jax.random.PRNGKey(7))
    z = jax.random.normal(jax.random.split(sub, 1)[0], W.shape)
    g = A * (W + jnp.sqrt(1.0 / (n * s0)) * z)  # the gradient at the noisy sample
    assert_close(out, -A * (W + rho * g / s0) / s0, rtol=1e-5)
    assert (new.key == key).all()
    # the second step uses the first step's precision, a new key and the momentum (b1 = 0: none)
    out2, new2 = tx.update(grad(W), new, W, grad_fn=grad)
    assert not jnp.allclose(out2, out)
    assert int(new2.count) == 2


def test_bayesian_sam_learning_rate_schedule_and_errors():
    sched = optax.linear_schedule(1.0, 0.0, 2)
    tx = lossjax.transforms.bayesian_sam(num_examples=10**14, learning_rate=sched, rho=0.0, b1=0.0, weight_decay=0.0)
    state = tx.init(W)
    out, state = tx.update(grad(W), state, W, grad_fn=grad)
    assert_close(out, -A * W, rtol=1e-5)  # step 0: lr 1, s = 1
    s1 = 0.999 + 0.001 * (jnp.abs(A * W) + 0.1)  # the precision after step 0
    out, state = tx.update(grad(W), state, W, grad_fn=grad)
    assert_close(out, -0.5 * A * W / s1, rtol=1e-5)  # step 1: lr 0.5, the precision of step 0
    with pytest.raises(ValueError, match="bayesian_sam: `num_examples`"):
        lossjax.transforms.bayesian_sam(num_examples=0)
    with pytest.raises(ValueError, match="bayesian_sam: `b2`"):
        lossjax.transforms.bayesian_sam(num_examples=5, b2=1.0)


def per_example(p):
    return jnp.stack([p["w"][0, 0] ** 2, 10.0 * p["w"][0, 1] ** 2])  # at w = (1, 1): losses (1, 10)


def mean_loss(p):
    return jnp.mean(per_example(p))


P = {"w": jnp.array([[1.0, 1.0]])}


@pytest.mark.parametrize("steps", [1, 3])
def test_robust_weight_perturbation_ascends_only_on_examples_below_the_threshold(steps):
    gamma = 0.1
    tx = lossjax.transforms.robust_weight_perturbation(gamma=gamma, loss_threshold=5.0, steps=steps)
    out, _ = tx.update(P, tx.init(P), P, grad_fn=jax.grad(mean_loss), per_example_loss_fn=per_example)
    # only example 0 counts: its gradient (2 w_0, 0) points along e_0 at every ascent step, v = gamma ||w|| e_0
    v0 = gamma * jnp.sqrt(2.0)
    assert_close(out["w"], jnp.array([[1.0 + v0, 10.0]]), rtol=1e-6)
    # above every loss: both examples count, v = gamma ||w|| (1, 10) / sqrt(101) (one step)
    tx = lossjax.transforms.robust_weight_perturbation(gamma=gamma, loss_threshold=100.0, steps=1)
    out, _ = tx.update(P, tx.init(P), P, grad_fn=jax.grad(mean_loss), per_example_loss_fn=per_example)
    v = gamma * jnp.sqrt(2.0) * jnp.array([1.0, 10.0]) / jnp.sqrt(101.0)
    assert_close(out["w"], (jnp.array([1.0, 10.0]) * (1.0 + v))[None], rtol=1e-6)


def test_robust_weight_perturbation_leaves_low_rank_leaves_alone_and_errors():
    params = {"w": jnp.array([[1.0, 1.0]]), "b": jnp.array([2.0])}

    def per(p):
        return per_example({"w": p["w"]}) + p["b"][0] ** 2

    tx = lossjax.transforms.robust_weight_perturbation(gamma=0.1, loss_threshold=100.0, steps=2)
    out, _ = tx.update(
        params, tx.init(params), params, grad_fn=jax.grad(lambda p: jnp.mean(per(p))), per_example_loss_fn=per
    )
    assert_close(out["b"], jnp.array([4.0]))  # b (rank 1) is not perturbed: its gradient 2 b at b
    with pytest.raises(ValueError, match="per_example_loss_fn"):
        tx.update(params, tx.init(params), params, grad_fn=jax.grad(lambda p: jnp.mean(per(p))))
    with pytest.raises(ValueError, match="robust_weight_perturbation: `steps`"):
        lossjax.transforms.robust_weight_perturbation(steps=0)
    with pytest.raises(ValueError, match="robust_weight_perturbation: `loss_threshold`"):
        lossjax.transforms.robust_weight_perturbation(loss_threshold=float("nan"))


def test_robust_weight_perturbation_on_8_devices_equals_one_device_on_the_whole_batch():
    from jax.sharding import Mesh
    from jax.sharding import PartitionSpec as PS

    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32), "b": jnp.zeros((2,), jnp.float32)}
    x = jnp.asarray(rng.normal(size=(24, 3)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(24, 2)), jnp.float32)

    def per(p, x, y):
        return jnp.mean(jnp.square(jnp.tanh(x @ p["w"] + p["b"][None, :]) - y), axis=1)

    def mean(p, x, y):
        return jnp.mean(per(p, x, y))

    c = float(np.median(np.asarray(per(params, x, y))))
    kw = {"gamma": 0.05, "loss_threshold": c, "steps": 2}
    one = lossjax.transforms.robust_weight_perturbation(**kw)
    want, _ = one.update(
        params,
        one.init(params),
        params,
        grad_fn=jax.grad(lambda p: mean(p, x, y)),
        per_example_loss_fn=lambda p: per(p, x, y),
    )
    sharded = lossjax.transforms.robust_weight_perturbation(**kw, axis_name="data")
    mesh = Mesh(np.array(jax.devices()[:8]), ("data",))

    def step(p, xs, ys):
        gf = jax.grad(lambda q: mean(q, xs, ys))
        g = gf(jax.lax.pcast(p, "data", to="varying"))
        return sharded.update(g, sharded.init(p), p, grad_fn=gf, per_example_loss_fn=lambda q: per(q, xs, ys))[0]

    got = jax.jit(jax.shard_map(step, mesh=mesh, in_specs=(PS(), PS("data"), PS("data")), out_specs=PS()))(params, x, y)
    assert_close(got, want, rtol=1e-5, atol=1e-6)
