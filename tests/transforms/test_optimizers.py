"""momo and decoupled_weight_decay: parity with optax (a different implementation), closed forms, errors."""

import jax
import jax.numpy as jnp
import optax
import optax.contrib
import pytest

import lossjax
from lossjax.testing import assert_close

A = jnp.array([1.0, 3.0, 0.5])


def f(w):
    return 0.5 * jnp.sum(A * w**2) + 0.2


@pytest.mark.parametrize(
    "hp", [{"learning_rate": 0.3}, {"learning_rate": 5.0, "weight_decay": 0.01, "adapt_lower_bound": True}]
)
def test_momo_follows_optax_contrib_momo_over_steps(hp):
    ours = lossjax.transforms.momo(**hp)
    ref = optax.contrib.momo(**hp)
    p1 = p2 = jnp.array([1.0, -2.0, 0.5])
    s1, s2 = ours.init(p1), ref.init(p2)
    for _ in range(5):
        v1, g1 = jax.value_and_grad(f)(p1)
        v2, g2 = jax.value_and_grad(f)(p2)
        u1, s1 = ours.update(g1, s1, p1, value=v1)
        u2, s2 = ref.update(g2, s2, p2, value=v2)
        p1, p2 = p1 + u1, p2 + u2
        assert_close(p1, p2, rtol=1e-5, atol=1e-6)


def test_momo_first_step_is_the_capped_polyak_step():
    w = jnp.array([1.0, 2.0])
    g = 2 * w  # f = |w|^2 = 5, f* = 1: Polyak step (5 - 1) / 20 = 0.2
    tx = lossjax.transforms.momo(learning_rate=10.0, lower_bound=1.0)
    assert_close(tx.update(g, tx.init(w), w, value=5.0)[0], -0.2 * g)
    tx = lossjax.transforms.momo(learning_rate=0.05, lower_bound=1.0)  # the cap
    assert_close(tx.update(g, tx.init(w), w, value=5.0)[0], -0.05 * g)
    zero = tx.update(jnp.zeros(2), tx.init(w), w, value=5.0)[0]  # no direction: no step, no NaN
    assert_close(zero, jnp.zeros(2))


def test_decoupled_weight_decay_after_the_learning_rate_equals_adamw():
    lr, wd = 0.01, 0.5
    ours = optax.chain(
        optax.scale_by_adam(), optax.scale(-lr), lossjax.transforms.decoupled_weight_decay(weight_decay=lr * wd)
    )
    ref = optax.adamw(lr, weight_decay=wd)
    p1 = p2 = jnp.array([1.0, -2.0, 0.5])
    s1, s2 = ours.init(p1), ref.init(p2)
    for _ in range(3):
        u1, s1 = ours.update(jax.grad(f)(p1), s1, p1)
        u2, s2 = ref.update(jax.grad(f)(p2), s2, p2)
        p1, p2 = p1 + u1, p2 + u2
        assert_close(p1, p2)


def test_decoupled_weight_decay_schedule_and_errors():
    tx = lossjax.transforms.decoupled_weight_decay(weight_decay=0.1, schedule_multiplier=lambda t: 1.0 / (t + 1))
    w = jnp.array([2.0])
    s = tx.init(w)
    u0, s = tx.update(jnp.zeros(1), s, w)
    u1, s = tx.update(jnp.zeros(1), s, w)
    assert_close(u0, jnp.array([-0.2]))
    assert_close(u1, jnp.array([-0.1]))
    with pytest.raises(ValueError, match="decoupled_weight_decay: `weight_decay` must be >= 0"):
        lossjax.transforms.decoupled_weight_decay(weight_decay=-1.0)
    with pytest.raises(ValueError, match="momo: `decay`"):
        lossjax.transforms.momo(decay=1.0)
    with pytest.raises(ValueError, match="momo: `update` needs the extra argument `value`"):
        tx = lossjax.transforms.momo()
        tx.update(w, tx.init(w), w)
    spec = {"name": "momo", "learning_rate": 0.5, "lower_bound": 0.1}
    assert lossjax.optimizer([spec]).to_config() == {"chain": [spec]}


def test_max_norm_projection_lands_on_the_ball():
    tx = optax.chain(optax.sgd(1.0), lossjax.transforms.max_norm_projection(max_norm=2.0))
    w = {"kernel": jnp.array([[3.0, 0.5, 0.0], [4.0, 0.5, 0.0]]), "bias": jnp.array([10.0, 0.0, 0.0])}
    g = {"kernel": jnp.zeros((2, 3)), "bias": jnp.array([-1.0, 0.0, 0.0])}
    u, _ = tx.update(g, tx.init(w), w)
    new = optax.apply_updates(w, u)
    assert_close(new["kernel"], jnp.array([[1.2, 0.5, 0.0], [1.6, 0.5, 0.0]]))  # only unit 0 (norm 5) projected
    assert_close(new["bias"], jnp.array([11.0, 0.0, 0.0]))  # rank-1 leaves untouched
    u2, _ = tx.update(jax.tree.map(jnp.zeros_like, g), tx.init(new), new)  # idempotent
    assert_close(u2["kernel"], jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match="max_norm_projection: `max_norm` must be > 0"):
        lossjax.transforms.max_norm_projection(max_norm=0.0)
