"""vae_balanced_elbo: the running-MSE state over steps, the gradient at a closed form, masks and errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lossjax
from lossjax.testing import assert_close

X = jnp.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]])
X_HAT = jnp.array([[0.5, 1.0, 0.5], [1.0, 0.5, 0.75]])  # squared errors 0.25 and 0.5: batch mse 0.125
KL = jnp.array([1.0, 3.0])


def test_the_running_mse_only_decreases_and_sets_gamma():
    f = lossjax.transforms.vae_balanced_elbo
    state = lossjax.transforms.BalancedELBOState(jnp.float32(1.0))
    for _ in range(3):  # the estimate moves 1% of the way to the batch mse each step
        old = float(state.mse)
        loss, state = f(X_HAT, X, KL, state=state)
        gamma2, sq = old, np.array([0.25, 0.5])
        want = np.mean(sq / (2 * gamma2) + 1.5 * np.log(2 * np.pi * gamma2) + np.asarray(KL))
        assert_close(loss, want, rtol=1e-6)
        assert_close(state.mse, min(old, 0.99 * old + 0.01 * 0.125), rtol=1e-6)
    low = lossjax.transforms.BalancedELBOState(jnp.float32(0.01))  # below the batch mse: kept
    assert float(f(X_HAT, X, KL, state=low)[1].mse) == pytest.approx(0.01)


def test_the_gradient_is_the_gaussian_one_with_gamma_held_constant():
    state = lossjax.transforms.BalancedELBOState(jnp.float32(0.2))
    g_hat, g_kl = jax.grad(
        lambda a, k: lossjax.transforms.vae_balanced_elbo(a, X, k, state=state, kl_weight=3.0)[0], (0, 1)
    )(X_HAT, KL)
    assert_close(g_hat, (X_HAT - X) / (0.2 * 2), rtol=1e-6)  # (xhat - x) / (B gamma^2), B = 2
    assert_close(g_kl, jnp.full((2,), 1.5))  # kl_weight / B


def test_masked_rows_are_ignored_and_errors():
    f = lossjax.transforms.vae_balanced_elbo
    bad = X_HAT.at[1].set(jnp.nan)
    loss, state = f(bad, X, KL.at[1].set(jnp.nan), where=jnp.array([True, False]))
    ref, ref_state = f(X_HAT[:1], X[:1], KL[:1])
    assert_close(loss, ref)
    assert_close(state.mse, ref_state.mse)
    empty, same = f(X_HAT, X, KL, where=jnp.zeros(2, bool))
    assert float(empty) == 0.0 and float(same.mse) == 1.0
    with pytest.raises(ValueError, match="vae_balanced_elbo: `predictions` and `targets` must have the same shape"):
        f(X_HAT, X[:, :2], KL)
    with pytest.raises(ValueError, match="vae_balanced_elbo: `decay`"):
        f(X_HAT, X, KL, decay=1.5)
