"""loss_normalized_gradient_descent, singular_value_descent, softmax_singularity_step_limiter, classp: by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from lossjax.testing import assert_close

FEATURES = jnp.array([[1.0, 2.0], [-1.0, 0.5], [0.5, -1.5], [2.0, 1.0]])
SIGNS = jnp.array([1.0, -1.0, 1.0, -1.0])


def logistic(theta):
    return jnp.mean(jnp.log1p(jnp.exp(-SIGNS * (FEATURES @ theta))))


def test_normalized_lr_gd_is_the_misfit_weighted_mean_of_y_a():
    theta = jnp.array([0.3, -0.2])
    margins = SIGNS * (FEATURES @ theta)
    tx = lossjax.transforms.loss_normalized_gradient_descent(learning_rate=2.0)
    out, _ = tx.update(jax.grad(logistic)(theta), tx.init(theta), margins=margins)
    # -gamma grad f / mean(sigma(-m)) = gamma sum_i sigma(-m_i) y_i a_i / sum_j sigma(-m_j)  (section 6)
    w = jax.nn.sigmoid(-margins)
    assert_close(out, 2.0 * (w * SIGNS) @ FEATURES / jnp.sum(w), rtol=1e-6)
    # large gamma with separated margins: the normalized batch perceptron step on the misclassified examples
    big = jnp.array([30.0, -30.0, 40.0, 30.0])  # example 1 misclassified
    grad = -jnp.mean(jax.nn.sigmoid(-big)[:, None] * SIGNS[:, None] * FEATURES, axis=0)
    out, _ = tx.update(grad, tx.init(theta), margins=big)
    assert_close(out, 2.0 * SIGNS[1] * FEATURES[1], rtol=1e-5)


def test_normalized_lr_gd_is_finite_when_every_margin_is_huge_and_errors():
    tx = lossjax.transforms.loss_normalized_gradient_descent()
    out, _ = tx.update(jnp.zeros(2), tx.init(None), margins=jnp.full((3,), 1e4))
    assert jnp.all(jnp.isfinite(out))
    with pytest.raises(
        ValueError, match="loss_normalized_gradient_descent: `update` needs the extra argument `margins`"
    ):
        tx.update(jnp.zeros(2), tx.init(None))
    with pytest.raises(ValueError, match="loss_normalized_gradient_descent: `learning_rate`"):
        lossjax.transforms.loss_normalized_gradient_descent(learning_rate=0.0)


M = jnp.array([[2.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
Y = jnp.array([1.0, -1.0])


def residuals(w):
    return M @ w - Y


def test_sven_full_rank_is_the_minimum_norm_gauss_newton_step():
    w = jnp.array([0.5, 0.5, -1.0])
    tx = lossjax.transforms.singular_value_descent(learning_rate=1.0, rank=5, rtol=0.0)
    out, _ = tx.update(w, tx.init(w), w, residual_fn=residuals)
    want = -np.linalg.pinv(np.asarray(M)) @ np.asarray(residuals(w))
    assert_close(out, want, rtol=1e-5, atol=1e-6)
    assert_close(residuals(w + out), jnp.zeros(2), atol=1e-5)  # one step solves the linear conditions
    # rank 1 keeps the top singular direction only (singular values sqrt(5) and 1)
    tx1 = lossjax.transforms.singular_value_descent(learning_rate=0.5, rank=1)
    u, s, vh = np.linalg.svd(np.asarray(M), full_matrices=False)
    want1 = -0.5 * vh[0] * (u[:, 0] @ np.asarray(residuals(w))) / s[0]
    assert_close(tx1.update(w, tx1.init(w), w, residual_fn=residuals)[0], want1, rtol=1e-5, atol=1e-6)
    # rtol above 1/sqrt(5) drops the second direction too
    tx2 = lossjax.transforms.singular_value_descent(learning_rate=0.5, rank=5, rtol=0.5)
    assert_close(tx2.update(w, tx2.init(w), w, residual_fn=residuals)[0], want1, rtol=1e-5, atol=1e-6)


def test_sven_on_a_pytree_and_errors():
    params = {"a": jnp.array([0.5, 0.5]), "b": jnp.array([-1.0])}

    def res(p):
        return residuals(jnp.concatenate([p["a"], p["b"]]))

    tx = lossjax.transforms.singular_value_descent(learning_rate=1.0, rtol=0.0)
    out, _ = tx.update(params, tx.init(params), params, residual_fn=res)
    assert_close(res(optax.apply_updates(params, out)), jnp.zeros(2), atol=1e-5)
    with pytest.raises(ValueError, match="singular_value_descent: `update` needs the extra argument `residual_fn`"):
        tx.update(params, tx.init(params), params)
    with pytest.raises(ValueError, match="singular_value_descent: `rank`"):
        lossjax.transforms.singular_value_descent(rank=0)


X = jnp.array([[1.0, -2.0], [0.5, 1.0], [-1.0, 0.0]])


def logits_fn(p):
    return X @ p["w"]  # [3, 2]


def test_step_limiter_caps_the_step_at_pi_over_the_logit_spread():
    p = {"w": jnp.zeros((2, 2))}
    v = {"w": jnp.array([[1.0, -1.0], [0.0, 2.0]])}
    tau = jnp.sqrt(6.0)
    a = X @ (v["w"] / tau)
    rho = jnp.pi / jnp.max(a.max(-1) - a.min(-1))
    tx = lossjax.transforms.softmax_singularity_step_limiter()
    for scale in (10.0, 0.1):  # capped: the step's length becomes rho; inside the radius: unchanged
        u = jax.tree.map(lambda x, s=scale: s * x, v)
        out, _ = tx.update(u, tx.init(p), p, logits_fn=logits_fn)
        length = jnp.minimum(scale * tau, rho)
        assert_close(out["w"], length * v["w"] / tau, rtol=1e-5)


def test_step_limiter_goes_last_in_a_chain_and_errors():
    p = {"w": jnp.ones((2, 2))}
    tx = optax.chain(optax.sgd(100.0), lossjax.transforms.softmax_singularity_step_limiter())
    g = {"w": jnp.array([[1.0, 0.0], [0.0, 1.0]])}
    out, _ = tx.update(g, tx.init(p), p, logits_fn=logits_fn)
    a = X @ (-g["w"] / jnp.sqrt(2.0))
    assert_close(jnp.linalg.norm(out["w"]), jnp.pi / jnp.max(a.max(-1) - a.min(-1)), rtol=1e-5)
    t = lossjax.transforms.softmax_singularity_step_limiter()
    with pytest.raises(ValueError, match="softmax_singularity_step_limiter: `update` needs the extra argument"):
        t.update(g, t.init(p), p)


def test_classp_steps_by_hand_and_adagrad_as_its_special_case():
    tx = lossjax.transforms.classp(learning_rate=0.5, threshold=0.25, power=1.0, epsilon=0.0)
    g = jnp.array([1.0, -2.0, 0.4])  # 0.4^2 < 0.25: the third weight never moves nor accumulates
    state = tx.init(g)
    out1, state = tx.update(g, state)
    assert_close(out1, jnp.array([-0.5, 0.5, 0.0]))  # -0.5 g / |g|
    out2, state = tx.update(g, state)
    assert_close(out2, jnp.array([-0.25, 0.25, 0.0]))  # -0.5 g / (2 |g|)
    assert_close(state.grad_sum, jnp.array([2.0, 4.0, 0.0]))
    # p = 2, threshold 0, no epsilon: AdaGrad without its initial accumulator
    ours = lossjax.transforms.classp(learning_rate=0.1, threshold=0.0, power=2.0, epsilon=0.0)
    ref = optax.adagrad(0.1, initial_accumulator_value=0.0, eps=0.0)
    s1, s2 = ours.init(g), ref.init(g)
    for k in range(3):
        gk = g * (k + 1.0)
        u1, s1 = ours.update(gk, s1)
        u2, s2 = ref.update(gk, s2)
        assert_close(u1, u2, rtol=1e-6)
    with pytest.raises(ValueError, match="classp: `power`"):
        lossjax.transforms.classp(power=0.0)
