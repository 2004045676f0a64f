"""Distillation losses (lossjax/losses/_distillation.py): the teacher-student logit losses.

Values and gradients against independent float64 references run in the conformance ``value``
property (lossjax/expected/distillation.json, made by tests/reference/make_expected_distillation.py:
torch F.kl_div / F.cross_entropy, ports of the official DKD, DIST, MPT and Cr-KD code). Here: the
teacher's stop-gradient (default on, switchable), hand-derived closed forms and special paths, and
the errors.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lossjax
from lossjax.testing import assert_close

L = lossjax.losses


def _batch(seed=0, n=5, c=4):
    rng = np.random.default_rng(seed)
    z = jnp.asarray(rng.normal(size=(n, c)) * 2, jnp.float32)
    t = jnp.asarray(rng.normal(size=(n, c)) * 2, jnp.float32)
    y = jnp.asarray(rng.integers(0, c, size=(n,)), jnp.int32)
    return z, y, t


def _calls():
    z, y, t = _batch()
    aux = z[::-1] * 0.5
    lt = jax.nn.log_softmax(t)
    var = jnp.array([0.5, 1.0, 2.0, 1.5])
    return (
        {
            "kd_kl_loss": (lambda zz, tt, **k: L.kd_kl_loss(zz, y, tt, **k)),
            "decoupled_kd_loss": (lambda zz, tt, **k: L.decoupled_kd_loss(zz, y, tt, **k)),
            "plackett_luce_distillation": (lambda zz, tt, **k: L.plackett_luce_distillation(zz, y, tt, **k)),
            "dist_loss": (lambda zz, tt, **k: L.dist_loss(zz, tt, **k)),
            "dual_head_distillation": (lambda zz, tt, **k: L.dual_head_distillation(zz, aux, y, tt, **k)),
            "mahalanobis_logit_regression_loss": (
                lambda zz, tt, **k: L.mahalanobis_logit_regression_loss(zz, tt, var, **k)
            ),
            "class_relation_distillation": (lambda zz, tt, **k: L.class_relation_distillation(zz, tt[:, :3], **k)),
            "squared_logit_distillation": (
                lambda zz, tt, **k: L.squared_logit_distillation(zz, y, jax.nn.log_softmax(tt), **k)
            ),
            "margin_preserving_focal_distillation": (
                lambda zz, tt, **k: L.margin_preserving_focal_distillation(zz, y, tt[:, :3], tt, **k)
            ),
        },
        z,
        t,
        lt,
    )


@pytest.mark.parametrize("name", sorted(_calls()[0]))
def test_teacher_gets_no_gradient_by_default(name):
    calls, z, t, _ = _calls()
    f = calls[name]

    @jax.jit  # the three gradients in one compile (eager: every op on its own)
    def grads(z, t):
        g = jax.grad(lambda tt: jnp.sum(f(z, tt)))(t)
        g_free = jax.grad(lambda tt: jnp.sum(f(z, tt, stop_gradient_teacher=False)))(t)
        return g, g_free, jax.grad(lambda zz: jnp.sum(f(zz, t)))(z)

    g, g_free, gs = grads(z, t)
    assert np.all(np.asarray(g) == 0), f"{name}: the teacher received a gradient"
    assert np.any(np.asarray(g_free) != 0), f"{name}: stop_gradient_teacher=False gave no teacher gradient"
    assert np.all(np.isfinite(gs)) and np.any(np.asarray(gs) != 0)


def test_kd_kl_closed_form_and_t2_factor():
    z, y, t = _batch(1)
    T, a = 3.0, 0.4
    p = jax.nn.softmax(t / T)
    kl = np.sum(np.asarray(p) * (np.log(np.asarray(p)) - np.asarray(jax.nn.log_softmax(z / T))), -1)
    ce = -np.asarray(jax.nn.log_softmax(z))[np.arange(5), np.asarray(y)]
    assert_close(L.kd_kl_loss(z, y, t, temperature=T, alpha=a), (1 - a) * ce + a * T**2 * kl, rtol=1e-5)
    # Distribution labels: the expectation of the integer-label loss.
    q = jax.nn.one_hot(y, 4)
    assert_close(L.kd_kl_loss(z, q, t), L.kd_kl_loss(z, y, t), rtol=1e-6)


def test_dkd_decomposes_classical_kd():
    """KD = TCKD + (1 - p_t^T) NCKD (DKD's Eq. 1): with alpha = 1 and beta = 1 - p_t per example."""
    z, y, t = _batch(2)
    T = 2.0
    kd = L.kd_kl_loss(z, y, t, temperature=T, alpha=1.0)
    pt = np.asarray(jax.nn.softmax(t / T))[np.arange(5), np.asarray(y)]
    tckd = L.decoupled_kd_loss(z, y, t, alpha=1.0, beta=0.0, temperature=T)
    nckd = L.decoupled_kd_loss(z, y, t, alpha=0.0, beta=1.0, temperature=T)
    assert_close(kd, tckd + (1 - pt) * nckd, rtol=1e-5, atol=1e-6)
    assert float(jnp.max(jnp.abs(L.decoupled_kd_loss(z, y, z)))) < 1e-6


def test_plackett_luce_first_term_is_weighted_ce_and_shift_invariant():
    z, y, t = _batch(3, c=2)
    w = np.asarray(jax.nn.softmax(t))
    ce = -np.asarray(jax.nn.log_softmax(z))[np.arange(5), np.asarray(y)]
    # Two classes: the second term is 0, so PLD = w_y * CE.
    assert_close(L.plackett_luce_distillation(z, y, t), w[np.arange(5), np.asarray(y)] * ce, rtol=1e-5)
    z4, y4, t4 = _batch(4)
    assert_close(L.plackett_luce_distillation(z4 + 7.0, y4, t4), L.plackett_luce_distillation(z4, y4, t4), rtol=1e-5)


def test_squared_logit_distillation_forms():
    z, y, t = _batch(5)
    lt = jax.nn.log_softmax(t)
    full = L.squared_logit_distillation(z, y, lt)
    zc = np.asarray(z) - np.asarray(z).mean(-1, keepdims=True)
    tc = np.asarray(lt) - np.asarray(lt).mean(-1, keepdims=True)
    idx = (np.arange(5), np.asarray(y))
    assert_close(full, (zc[idx] - tc[idx]) ** 2, rtol=1e-5)
    sampled = L.squared_logit_distillation(z, y, lt[idx])
    assert_close(sampled, (np.asarray(z)[idx] - np.asarray(lt)[idx]) ** 2, rtol=1e-5)


def test_mpt_focal_weights_and_margin():
    z = jnp.array([[0.5, 0.0, 1.0]])
    y = jnp.array([0])
    old = jnp.array([[3.0, 0.0]])  # right: weight alpha + beta
    new = jnp.array([[0.0, 3.0, 0.0]])  # wrong: weight alpha
    T = 2.0

    def kl(t, s):
        p = jax.nn.softmax(t / T)
        return float(jnp.sum(p * (jnp.log(p) - jax.nn.log_softmax(s / T))))

    ce = -float(jax.nn.log_softmax(jnp.array([0.5, 0.0, 1.0 + 4.0]))[0])
    expect = ce + 6.0 * kl(old[0], z[0, :2]) + 1.0 * kl(new[0], z[0])
    got = L.margin_preserving_focal_distillation(z, y, old, new, temperature=T)
    assert_close(got, [expect], rtol=1e-5)
    lm = L.margin_preserving_focal_distillation(z, y, old, new, variant="lm", margin=0.0)
    ce0 = -float(jax.nn.log_softmax(z[0])[0])
    expect = ce0 + 6.0 * float(jnp.mean((z[0, :2] - old[0]) ** 2)) / 2 + float(jnp.mean((z[0] - new[0]) ** 2)) / 2
    assert_close(lm, [expect], rtol=1e-5)


def test_class_relation_weights_and_masking():
    rng = np.random.default_rng(6)
    z = jnp.asarray(rng.normal(size=(6, 5)), jnp.float32)
    t = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    m = np.array([True, False, True, True, False, True])
    crd = jax.jit(L.class_relation_distillation)  # one compile per call, not every eager op
    assert_close(crd(z, t, where=jnp.asarray(m)), crd(z[m], t[m]), rtol=1e-5)
    # All mass on known classes: weights 1, the loss is T^2 times the mean cross-entropy of the known heads.
    zk = jnp.concatenate([z[:, :3], jnp.full((6, 2), -1e4)], axis=1)
    T = 2.0
    ce = -jnp.sum(jax.nn.softmax(t / T) * jax.nn.log_softmax(zk[:, :3] / T), -1)
    assert_close(crd(zk, t, temperature=T), T**2 * jnp.mean(ce), rtol=1e-5)


def test_dist_loss_closed_form():
    z, _, t = _batch(7)
    ys, yt = np.asarray(jax.nn.softmax(z)), np.asarray(jax.nn.softmax(t))

    def pearson(a, b):
        a = a - a.mean(1, keepdims=True)
        b = b - b.mean(1, keepdims=True)
        return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-8)

    expect = 2.0 * (1 - pearson(ys, yt).mean()) + 0.5 * (1 - pearson(ys.T, yt.T).mean())
    assert_close(L.dist_loss(z, t, beta=2.0, gamma=0.5), expect, rtol=1e-5)
    m = jnp.asarray([True, True, False, True, True])
    assert_close(L.dist_loss(z, t, where=m), L.dist_loss(z[np.asarray(m)], t[np.asarray(m)]), rtol=1e-5)


def test_dual_head_and_mahalanobis_closed_forms():
    z, y, t = _batch(8)
    a = z * 0.3
    T = 2.0
    base = L.kd_kl_loss(z, y, t, temperature=T, alpha=0.5) * 2  # CE + T^2 KL
    st, sa = jax.nn.sigmoid(t / T), jax.nn.sigmoid(a / T)
    bkl = jnp.sum(st * jnp.log(st / sa) + (1 - st) * jnp.log((1 - st) / (1 - sa)), -1)
    got = L.dual_head_distillation(z, a, y, t, temperature=T, aux_weight=0.5)
    assert_close(got, base + 0.5 * T**2 * bkl, rtol=1e-5)
    var = jnp.array([1.0, 4.0, 0.0, 2.0])
    expect = jnp.mean((z - t) ** 2 / jnp.maximum(var, 1e-6)[None, :], -1)
    assert_close(L.mahalanobis_logit_regression_loss(z, t, var), expect, rtol=1e-5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: L.kd_kl_loss(jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32), jnp.zeros((2, 4))), "same shape"),
        (lambda: L.kd_kl_loss(jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32), jnp.zeros((2, 3)), alpha=2.0), "alpha"),
        (lambda: L.kd_kl_loss(jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32), jnp.zeros((2, 3)), temperature=0), "temp"),
        (lambda: L.decoupled_kd_loss(jnp.zeros((2, 3)), jnp.zeros((2, 3)), jnp.zeros((2, 3))), "integer"),
        (lambda: L.plackett_luce_distillation(jnp.zeros((2, 3)), jnp.zeros(3, jnp.int32), jnp.zeros((2, 3))), "shape"),
        (lambda: L.squared_logit_distillation(jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32), jnp.zeros(3)), "teacher"),
        (lambda: L.mahalanobis_logit_regression_loss(jnp.zeros((2, 3)), jnp.zeros((2, 3)), jnp.ones(4)), "variances"),
        (
            lambda: L.margin_preserving_focal_distillation(
                jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32), jnp.zeros((2, 4)), jnp.zeros((2, 3))
            ),
            "C_old",
        ),
        (
            lambda: L.margin_preserving_focal_distillation(
                jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32), jnp.zeros((2, 2)), jnp.zeros((2, 3)), variant="mse"
            ),
            "variant",
        ),
        (lambda: L.class_relation_distillation(jnp.zeros((2, 3)), jnp.zeros((2, 4))), "K <= C"),
        (lambda: L.dist_loss(jnp.zeros((2, 3, 1)), jnp.zeros((2, 3, 1))), "shape"),
        (lambda: L.dist_loss(jnp.zeros((2, 3)), jnp.zeros((2, 3)), stop_gradient_teacher=1), "stop_gradient_teacher"),
    ],
)
def test_errors_name_the_function_and_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
