"""Robustness family: closed forms, masking of the randomized losses, errors.

Values and gradients against the official implementations (torch float64 ports of vat_tf, TRADES, MART)
are the conformance ``value`` property (lossjax/expected/robustness.json, tests/reference/
make_expected_robustness.py); here: hand-derived cases and what the conformance suite cannot check.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossjax.losses import (
    RationaleInvarianceState,
    gradient_norm_penalty,
    holistic_robust_loss,
    kl_dro_instance_weights,
    mart_loss,
    norm_loss_regularizer,
    parameter_gradient_norm_penalty,
    pgd_perturbation,
    rationale_invariance_loss,
    trades_loss,
    virtual_adversarial_loss,
    weighted_energy_adversarial_training,
)
from lossjax.testing import assert_close

W = jnp.array([[1.0, -1.0, 0.5], [0.5, 2.0, -1.0]])


def _model(x):
    return jnp.tanh(x) @ W


X = jnp.array([[0.2, 0.4], [0.9, 0.1], [0.5, 0.6]])
Y = jnp.array([1, 0, 2])


def test_gradient_norm_penalty_closed_forms():
    x = jnp.array([[1.0, 2.0], [0.0, 3.0]])

    def f(z):
        return jnp.sum(z**2, -1)  # grad 2x

    assert_close(gradient_norm_penalty(x, apply_fn=f), jnp.array([20.0, 36.0]))
    want = (jnp.sqrt(jnp.array([20.0, 36.0])) - 1.0) ** 2
    assert_close(gradient_norm_penalty(x, apply_fn=f, target_norm=1.0), want)
    # d/dx |2x|^2 = 8x (double backprop)
    g = jax.grad(lambda z: jnp.sum(gradient_norm_penalty(z, apply_fn=f)))(x)
    assert_close(g, 8.0 * x)
    # the WGAN-GP form at a zero gradient: finite, gradient 0 through the norm
    g0 = jax.grad(lambda z: jnp.sum(gradient_norm_penalty(z, apply_fn=f, target_norm=1.0)))(jnp.zeros((1, 2)))
    assert np.all(np.isfinite(g0))


def test_norm_loss_and_kl_dro_closed_forms():
    assert_close(norm_loss_regularizer(jnp.array([[3.0, 4.0], [0.6, 0.8], [0.0, 0.0]])), jnp.array([16.0, 0.0, 1.0]))
    g = jax.grad(lambda k: jnp.sum(norm_loss_regularizer(k)))(jnp.zeros((1, 3)))
    assert np.all(g == 0)
    q = kl_dro_instance_weights(jnp.array([0.0, jnp.log(3.0), 5.0]), temperature=1.0, where=jnp.array([1, 1, 0], bool))
    assert_close(q, jnp.array([0.25, 0.75, 0.0]))
    q = kl_dro_instance_weights(jnp.array([1.0, 2.0]), temperature=1e3)
    assert_close(q, jnp.array([0.5, 0.5]), atol=1e-3)
    assert np.all(jax.grad(lambda v: kl_dro_instance_weights(v)[0])(jnp.array([1.0, 2.0])) == 0)
    assert np.all(kl_dro_instance_weights(jnp.ones(2), where=jnp.zeros(2, bool)) == 0)


def test_pgd_closed_form_on_a_linear_objective():
    x = jnp.array([[0.5, 0.5, 0.99]])
    adv = pgd_perturbation(
        x, objective_fn=lambda z: z @ jnp.array([1.0, -1.0, 1.0]), key=jax.random.key(0), random_start=0.0
    )
    # 10 sign steps of 0.007 clipped to the 0.031 ball, then to [0, 1]
    assert_close(adv, jnp.array([[0.531, 0.469, 1.0]]))
    adv2 = pgd_perturbation(
        x,
        objective_fn=lambda z: z @ jnp.array([3.0, 4.0, 0.0]),
        key=jax.random.key(0),
        random_start=0.0,
        norm="l2",
        radius=0.05,
        step_size=0.02,
        num_iterations=5,
        clip_max=None,
    )
    assert_close(adv2, x + 0.05 * jnp.array([[0.6, 0.8, 0.0]]), atol=1e-6)


@pytest.mark.parametrize("name", ["vat", "trades", "mart", "weat"])
def test_masked_rows_are_zero_with_zero_gradient_and_ignore_nan(name):
    key = jax.random.key(1)
    where = jnp.array([True, False, True])
    garbage = X.at[1].set(jnp.nan)
    if name == "vat":

        def f(x):
            return virtual_adversarial_loss(x, _model(X), apply_fn=_model, key=key, xi=0.1, radius=0.5, where=where)
    elif name == "trades":

        def f(x):
            return trades_loss(x, Y, apply_fn=_model, key=key, num_iterations=2, where=where)
    elif name == "mart":

        def f(x):
            return mart_loss(x, Y, apply_fn=_model, key=key, num_iterations=2, where=where)
    else:

        def f(x):
            return weighted_energy_adversarial_training(x, Y, apply_fn=_model, key=key, num_iterations=2, where=where)

    out = f(garbage)
    g = jax.grad(lambda x: jnp.sum(f(x)))(garbage)
    assert out[1] == 0 and np.all(np.isfinite(out)) and np.all(out[::2] > 0)
    assert np.all(g[1] == 0) and np.all(np.isfinite(g))


def test_trades_is_clean_ce_without_perturbation_and_vat_zero_at_zero_radius():
    key = jax.random.key(2)
    ce = -jnp.take_along_axis(jax.nn.log_softmax(_model(X)), Y[:, None], -1)[:, 0]
    got = trades_loss(X, Y, apply_fn=_model, key=key, radius=0.0, random_start=0.0)
    assert_close(got, ce)
    assert np.all(virtual_adversarial_loss(X, _model(X), apply_fn=_model, key=key, radius=0.0) == 0)


def test_vat_direction_is_the_dominant_eigenvector_for_a_linear_binary_model():
    # logits = x @ V with 2 classes: the KL Hessian in r is rank one along v1 - v2, so one power
    # iteration finds +-(v1 - v2)/|v1 - v2|; the loss equals KL at that perturbation.
    v = jnp.array([[1.0, -0.5], [2.0, 0.5], [0.0, 1.0]])

    def f(x):
        return x @ v

    x = jnp.array([[0.1, -0.2, 0.3]])
    got = virtual_adversarial_loss(x, f(x), apply_fn=f, key=jax.random.key(0), xi=1e-2, radius=0.7)
    u = (v[:, 0] - v[:, 1]) / jnp.linalg.norm(v[:, 0] - v[:, 1])

    def kl(r):
        p, q = jax.nn.log_softmax(f(x)), jax.nn.log_softmax(f(x + r))
        return jnp.sum(jnp.exp(p) * (p - q), -1)

    options = jnp.stack([kl(0.7 * u[None])[0], kl(-0.7 * u[None])[0]])
    assert jnp.min(jnp.abs(options - got[0])) < 1e-4 * got[0]


def test_errors_name_the_function_and_argument():
    key = jax.random.key(0)
    with pytest.raises(TypeError, match="virtual_adversarial_loss: `apply_fn`"):
        virtual_adversarial_loss(X, _model(X), apply_fn=None, key=key)
    with pytest.raises(ValueError, match="virtual_adversarial_loss: `xi` must be > 0"):
        virtual_adversarial_loss(X, _model(X), apply_fn=_model, key=key, xi=0.0)
    with pytest.raises(ValueError, match="virtual_adversarial_loss: `logits` must have leading axis 3"):
        virtual_adversarial_loss(X, _model(X)[:2], apply_fn=_model, key=key)
    with pytest.raises(ValueError, match="trades_loss: `norm` must be one of"):
        trades_loss(X, Y, apply_fn=_model, key=key, norm="l1")
    with pytest.raises(ValueError, match="mart_loss: `radius` must be a finite number"):
        mart_loss(X, Y, apply_fn=_model, key=key, radius=float("nan"))
    with pytest.raises(ValueError, match="trades_loss: `clip_min` must be < `clip_max`"):
        trades_loss(X, Y, apply_fn=_model, key=key, clip_min=1.0, clip_max=0.0)
    with pytest.raises(ValueError, match="trades_loss: argument `labels` must have shape"):
        trades_loss(X, Y[:2], apply_fn=_model, key=key)
    with pytest.raises(ValueError, match="pgd_perturbation: `objective_fn` must return per-example values"):
        pgd_perturbation(X, objective_fn=lambda z: jnp.sum(z), key=key)
    with pytest.raises(ValueError, match="gradient_norm_penalty: `apply_fn` must return per-example outputs"):
        gradient_norm_penalty(X, apply_fn=lambda z: jnp.sum(z))
    with pytest.raises(ValueError, match="kl_dro_instance_weights: `temperature` must be > 0"):
        kl_dro_instance_weights(jnp.ones(3), temperature=0.0)
    with pytest.raises(ValueError, match="norm_loss_regularizer: `target_norm` must be > 0"):
        norm_loss_regularizer(jnp.ones((2, 2)), target_norm=-1.0)


def test_parameter_gradient_norm_penalty_closed_forms():
    a = jnp.array([1.0, 2.0])

    def quad(p):
        return 0.5 * jnp.sum(a * p["w"] ** 2) + jnp.sum(p["b"])

    p = {"w": jnp.array([3.0, 4.0]), "b": jnp.array([1.0])}
    # grad = (a w, 1): |grad|^2 = 9 + 64 + 1; d/dw = 2 a^2 w
    assert_close(parameter_gradient_norm_penalty(p, loss_fn=quad), 74.0)
    g = jax.grad(lambda q: parameter_gradient_norm_penalty(q, loss_fn=quad))(p)
    assert_close(g["w"], 2 * a**2 * p["w"])
    assert_close(g["b"], jnp.zeros(1))
    assert_close(parameter_gradient_norm_penalty(p, loss_fn=quad, target_norm=1.0), (jnp.sqrt(74.0) - 1) ** 2)
    with pytest.raises(ValueError, match="parameter_gradient_norm_penalty: `loss_fn` must return a scalar"):
        parameter_gradient_norm_penalty(p, loss_fn=lambda q: q["w"])


def test_weat_without_perturbation_is_the_energy_weighted_cross_entropy():
    # radius 0, no random start: x' = x, the KL term is exactly 0 and both variants are w * CE.
    z = _model(X)
    ce = -jnp.take_along_axis(jax.nn.log_softmax(z), Y[:, None], -1)[:, 0]
    w = 1.0 / jnp.log1p(jnp.exp(jnp.abs(jax.nn.logsumexp(z, -1))))
    for variant in ("nat", "adv"):
        got = weighted_energy_adversarial_training(
            X, Y, apply_fn=_model, key=jax.random.key(0), radius=0.0, random_start=0.0, variant=variant
        )
        assert_close(got, w * ce)
    # the weights are held constant: the gradient is w * dCE/dx, not d(w CE)/dx
    g = jax.grad(
        lambda x: jnp.sum(
            weighted_energy_adversarial_training(
                x, Y, apply_fn=_model, key=jax.random.key(0), radius=0.0, random_start=0.0
            )
        )
    )(X)
    want = jax.grad(
        lambda x: jnp.sum(
            jax.lax.stop_gradient(w) * -jnp.take_along_axis(jax.nn.log_softmax(_model(x)), Y[:, None], -1)[:, 0]
        )
    )(X)
    assert_close(g, want)
    with pytest.raises(ValueError, match="weighted_energy_adversarial_training: `variant` must be one of"):
        weighted_energy_adversarial_training(X, Y, apply_fn=_model, key=jax.random.key(0), variant="mixed")


def test_rationale_invariance_bank_over_two_steps():
    w = jnp.array([[1.0, 2.0], [-1.0, 0.5]])
    f1 = jnp.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    y1 = jnp.array([0, 0, 1])
    loss, state = rationale_invariance_loss(f1, y1, w, decay=0.9)
    # first batch: each class's bank entry is its mean rationale W * mean f
    assert_close(state.means[0], w * jnp.array([[2.0, 0.0]]))
    assert_close(state.means[1], w * jnp.array([[0.0, 2.0]]))
    assert state.initialized.tolist() == [True, True]
    # class 0: rationales W * (1, 0) and W * (3, 0) vs W * (2, 0): each ||W[:, 0]||^2 = 2, / (K n_c) = 4
    assert_close(loss, (2.0 + 2.0) / (2 * 2))
    f2 = jnp.array([[0.0, 0.0], [9.0, 9.0]])
    y2 = jnp.array([0, 1])
    loss2, state2 = rationale_invariance_loss(f2, y2, w, state=state, decay=0.9, where=jnp.array([True, False]))
    # class 1 is masked out: its entry is unchanged; class 0 moves 10% of the way to 0
    assert_close(state2.means[1], state.means[1])
    assert_close(state2.means[0], 0.9 * state.means[0])
    # the only row: rationale 0 against 0.9 W * (2, 0): ||.||^2 = 0.81 * 4 * 2 = 6.48, / (K * 1)
    assert_close(loss2, 6.48 / 2)
    # the bank is held constant: d/df of ||W f - B||^2 / K
    g = jax.grad(
        lambda f: rationale_invariance_loss(f, y2, w, state=state, decay=0.9, where=jnp.array([1, 0], bool))[0]
    )(f2)
    want = jnp.sum(2 * w * (w * f2[:1] - 0.9 * state.means[0]), axis=0) / 2
    assert_close(g[0], want)
    assert np.all(g[1] == 0)
    empty = RationaleInvarianceState.initial(2, 2)
    loss0, state0 = rationale_invariance_loss(f1, y1, w, state=empty, where=jnp.zeros(3, bool))
    assert loss0 == 0 and not np.any(state0.initialized) and np.all(state0.means == 0)
    with pytest.raises(ValueError, match="rationale_invariance_loss: `classifier_weights` must have shape"):
        rationale_invariance_loss(f1, y1, jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="rationale_invariance_loss: `decay` must lie in"):
        rationale_invariance_loss(f1, y1, w, decay=1.5)


def test_holistic_robust_closed_forms_and_kkt():
    hr = jax.jit(holistic_robust_loss, static_argnames=("alpha", "kl_radius"))
    ell = jnp.array([1.0, 2.0, 3.0])
    assert_close(hr(ell, alpha=0.0, kl_radius=0.0), 2.0)  # the empirical mean
    # r = 0: a third of the mass leaves the smallest loss for the worst point: (2 + 3) / 3 + 3 / 3
    assert_close(hr(ell, alpha=1 / 3, kl_radius=0.0), 8.0 / 3.0)
    assert_close(hr(ell, alpha=1.0, kl_radius=0.5), 3.0)  # everything on the worst point
    # alpha = 0: the gradient is the worst-case distribution p; KKT: sum 1, KL(q || p) = r, p (eta - l) ~ q
    r = 0.3
    ell = jnp.array([0.5, 1.0, 2.5, 1.5])
    value, p = jax.jit(jax.value_and_grad(lambda v: holistic_robust_loss(v, alpha=0.0, kl_radius=r)))(ell)
    q = jnp.full(4, 0.25)
    assert_close(jnp.sum(p), 1.0)
    assert_close(jnp.sum(q * jnp.log(q / p)), r, rtol=1e-4)
    # stationarity: l_i = eta - lambda q_i / p_i, one line through the four points (q_i / p_i, l_i)
    x = q / p
    lam = -(ell[1] - ell[0]) / (x[1] - x[0])
    assert lam > 0
    assert_close(ell[2:], ell[0] - lam * (x[2:] - x[0]), rtol=1e-4)
    assert_close(value, jnp.sum(p * ell))
    # masking equals slicing
    where = jnp.array([True, False, True, True])
    assert_close(hr(ell, where=where), hr(ell[where]))
    assert hr(ell, where=jnp.zeros(4, bool)) == 0
    with pytest.raises(ValueError, match="holistic_robust_loss: `alpha` must lie in"):
        holistic_robust_loss(ell, alpha=1.5)


# ------------------------------- SOVR ----------------------------------


def test_sovr_ends_are_ce_and_one_vs_rest_and_the_count_is_exact():
    import optax

    from lossjax.losses import one_vs_rest_switching_loss, softmax_cross_entropy

    rng = np.random.default_rng(5)
    z = jnp.asarray(rng.normal(size=(10, 4)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 4, size=10))
    onehot = jax.nn.one_hot(y, 4)
    ovr = jnp.sum(optax.sigmoid_binary_cross_entropy(z, onehot), axis=-1)
    np.testing.assert_allclose(one_vs_rest_switching_loss(z, y, switch_fraction=0.0), softmax_cross_entropy(z, y), 1e-6)
    np.testing.assert_allclose(one_vs_rest_switching_loss(z, y, switch_fraction=1.0), ovr, rtol=1e-6)
    # floor(0.7 * 10) = 7 examples switch (0.7 is 0.69999999 in float32), the 7 smallest margins
    got = np.asarray(one_vs_rest_switching_loss(z, y, switch_fraction=0.7))
    margin = np.asarray(z)[np.arange(10), np.asarray(y)] - np.max(
        np.where(np.asarray(onehot) > 0, -np.inf, np.asarray(z)), axis=-1
    )
    small = np.argsort(margin)[:7]
    switched = np.isclose(got, np.asarray(ovr), rtol=1e-6) & ~np.isclose(
        got, np.asarray(softmax_cross_entropy(z, y)), rtol=1e-6
    )
    assert sorted(np.nonzero(switched)[0].tolist()) == sorted(small.tolist())
    # one-hot labels equal integer labels
    np.testing.assert_allclose(one_vs_rest_switching_loss(z, onehot, switch_fraction=0.7), got, rtol=1e-6)
    with pytest.raises(ValueError, match=r"one_vs_rest_switching_loss.*switch_fraction"):
        one_vs_rest_switching_loss(z, y, switch_fraction=1.5)
