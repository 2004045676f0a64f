"""multistep_sam and weighted_sam: one step by hand on quadratics, optax.contrib.sam parity, errors."""

import jax
import jax.numpy as jnp
import optax
import optax.contrib
import pytest

import lossjax
from lossjax.testing import assert_close

A = jnp.array([1.0, 4.0])


def loss(p):
    return 0.5 * jnp.sum(A * p**2)


grad = jax.grad(loss)
W = jnp.array([1.0, 1.0])


def _step(tx, params=W):
    return tx.update(grad(params), tx.init(params), params, grad_fn=grad)[0]


def test_multistep_sam_by_hand_on_a_quadratic():
    rho = 0.5
    w1 = W + rho * grad(W) / jnp.linalg.norm(grad(W))
    w2 = w1 + rho * grad(w1) / jnp.linalg.norm(grad(w1))
    assert_close(_step(lossjax.transforms.multistep_sam(rho=rho, sync_period=3)), A * w2)
    assert_close(_step(lossjax.transforms.multistep_sam(rho=rho, sync_period=2)), A * w1)
    assert_close(_step(lossjax.transforms.multistep_sam(rho=rho)), _step(lossjax.transforms.sam(rho=rho)))


@pytest.mark.parametrize("period", [2, 4])
def test_multistep_sam_equals_optax_contrib_sam_in_a_chain(period):
    ours = optax.chain(lossjax.transforms.multistep_sam(rho=0.1, sync_period=period), optax.sgd(0.05, momentum=0.9))
    adv = optax.chain(optax.contrib.normalize(), optax.sgd(0.1))
    ref = optax.contrib.sam(optax.sgd(0.05, momentum=0.9), adv, sync_period=period, opaque_mode=True)
    p1 = p2 = jnp.array([0.7, -1.3])
    s1, s2 = ours.init(p1), ref.init(p2)
    for _ in range(3):
        u1, s1 = ours.update(grad(p1), s1, p1, grad_fn=grad)
        u2, s2 = ref.update(grad(p2), s2, p2, grad_fn=lambda p, i: grad(p))
        p1, p2 = optax.apply_updates(p1, u1), optax.apply_updates(p2, u2)
        assert_close(p1, p2)


def test_weighted_sam_by_hand_on_a_quadratic():
    rho, gamma = 0.5, 0.8
    alpha = gamma / (1 - gamma)
    e = rho * grad(W) / jnp.linalg.norm(grad(W))
    want = alpha * A * (W + e) + (1 - alpha) * A * W
    assert_close(_step(lossjax.transforms.weighted_sam(rho=rho, gamma=gamma)), want)
    assert_close(_step(lossjax.transforms.weighted_sam(rho=rho, gamma=0.5)), _step(lossjax.transforms.sam(rho=rho)))
    assert_close(_step(lossjax.transforms.weighted_sam(rho=rho, gamma=0.0)), grad(W))
    assert lossjax.get("wsam(gamma=0.5)").to_config() == {"name": "weighted_sam", "gamma": 0.5}


def test_errors():
    with pytest.raises(ValueError, match="multistep_sam: `sync_period` must be an integer >= 2"):
        lossjax.transforms.multistep_sam(sync_period=1)
    with pytest.raises(ValueError, match="weighted_sam: `gamma`"):
        lossjax.transforms.weighted_sam(gamma=1.0)
    with pytest.raises(ValueError, match="weighted_sam: `rho`"):
        lossjax.transforms.weighted_sam(rho=-1.0)
