"""smooth_tchebycheff_loss: bounds, the max limit, the softmax gradient, errors."""

import math

import jax
import jax.numpy as jnp
import pytest

import lossjax
from lossjax.testing import assert_close

stch = lossjax.transforms.smooth_tchebycheff_loss


def test_bounds_limit_and_gradient():
    losses = jnp.array([0.3, 1.2, 0.9])
    w, z = jnp.array([2.0, 1.0, 0.5]), jnp.array([0.1, 0.2, 0.0])
    worst = jnp.max(w * (losses - z))
    for mu in (1.0, 0.1):
        got = stch(losses, mu=mu, weights=w.tolist(), ideal_point=z.tolist())
        assert worst <= got <= worst + mu * math.log(3) + 1e-6
    assert_close(stch(losses, mu=1e-3, weights=w.tolist(), ideal_point=z.tolist()), worst, atol=1e-3)
    g = jax.grad(lambda x: stch(x, mu=0.5, weights=w.tolist()))(losses)
    assert_close(g, jax.nn.softmax(w * losses / 0.5) * w)
    assert stch(jnp.ones((2, 3))).shape == (2,)


def test_errors():
    with pytest.raises(ValueError, match="smooth_tchebycheff_loss: `mu` must be > 0"):
        stch(jnp.ones(2), mu=0.0)
    with pytest.raises(ValueError, match="smooth_tchebycheff_loss: `weights` has 3 entries but there are 2 losses"):
        stch(jnp.ones(2), weights=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="smooth_tchebycheff_loss: `losses` must hold at least one loss"):
        stch(jnp.ones((0,)))
