"""Noisy-label losses: golden values from the papers' code, closed forms, errors.

Golden numbers: tests/reference/imbalance_noisy.json, written by
tests/reference/make_imbalance_noisy.py (faithful torch ports of
HanxunH/Active-Passive-Losses, Optimization-AI/ICML2023_LDR, the RMT
symmetric cross-entropy and kiryor/nnPUlearning).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from golden_imbalance_noisy import REF, check_golden, close, golden_cases, rel_err
from integer_labels import ONE_HOT_CASES

import lossjax
from lossjax.losses import (
    adaptive_label_distributionally_robust_loss,
    cross_model_confident_bce,
    generalized_cross_entropy,
    label_distributionally_robust_loss,
    mae_loss,
    nce_mae_loss,
    nce_rce_loss,
    negative_learning_loss,
    nfl_mae_loss,
    nfl_rce_loss,
    nonnegative_pu_risk,
    normalized_active_passive_loss,
    normalized_cross_entropy,
    normalized_focal_loss,
    reverse_cross_entropy,
    soft_symmetric_cross_entropy,
    softmax_cross_entropy,
    symmetric_cross_entropy,
    z_error_loss,
)

NAMES = {
    "normalized_cross_entropy",
    "reverse_cross_entropy",
    "mae_loss",
    "normalized_focal_loss",
    "nce_rce_loss",
    "nce_mae_loss",
    "nfl_rce_loss",
    "nfl_mae_loss",
    "symmetric_cross_entropy",
    "soft_symmetric_cross_entropy",
    "label_distributionally_robust_loss",
    "adaptive_label_distributionally_robust_loss",
    "negative_learning_loss",
}


@pytest.mark.parametrize("case", golden_cases(NAMES))
def test_golden(case):
    check_golden(case)


def test_every_loss_has_golden_cases():
    assert {c["name"] for c in REF["cases"]} >= NAMES


Z = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32) * 2
Y = np.array([0, 1, 2, 3, 1, 0], np.int32)
P = jax.nn.softmax(jnp.asarray(Z), axis=-1)
PY = P[np.arange(6), Y]


# ------------------------------------------------------------ active/passive --


def test_nce_rce_mae_closed_forms():
    log_p = jax.nn.log_softmax(jnp.asarray(Z), axis=-1)
    close(normalized_cross_entropy(Z, Y), log_p[np.arange(6), Y] / log_p.sum(-1))
    close(normalized_cross_entropy(jnp.zeros((2, 4)), jnp.array([0, 3])), [0.25, 0.25])
    # RCE = -A (1 - p_y) with A = log(label_floor).
    close(reverse_cross_entropy(Z, Y), -math.log(1e-4) * (1 - PY))
    close(reverse_cross_entropy(Z, Y, label_floor=math.exp(-4.0)), 4.0 * (1 - PY))
    close(mae_loss(Z, Y), 1 - PY)


def test_mae_soft_labels_is_total_variation():
    q = jnp.array([[0.5, 0.5, 0.0, 0.0]] * 6)
    close(mae_loss(Z, q), 0.5 * jnp.abs(P - q).sum(-1))


def test_nfl_gamma_zero_is_nce_and_gradient_through_normalizer():
    close(normalized_focal_loss(Z, Y, gamma=0.0), normalized_cross_entropy(Z, Y))
    # The gradient is that of the paper's function (normalizer not detached): it sums to
    # zero over the classes (softmax shift invariance), unlike the reference's.
    g = jax.grad(lambda z: normalized_focal_loss(z, Y).sum())(Z)
    close(g.sum(-1), np.zeros(6), atol=1e-6)


def test_apl_generic_equals_named_combinations():
    for fn, active, passive in (
        (nce_rce_loss, "nce", "rce"),
        (nce_mae_loss, "nce", "mae"),
        (nfl_rce_loss, "nfl", "rce"),
        (nfl_mae_loss, "nfl", "mae"),
    ):
        got = fn(Z, Y, alpha=10.0, beta=0.1)
        want = normalized_active_passive_loss(Z, Y, active=active, passive=passive, alpha=10.0, beta=0.1)
        close(got, want)
    close(nce_mae_loss(Z, Y, alpha=2.0, beta=3.0), 2.0 * normalized_cross_entropy(Z, Y) + 3.0 * mae_loss(Z, Y))


def test_sce_closed_forms():
    close(symmetric_cross_entropy(Z, Y, alpha=1.0, beta=0.0), softmax_cross_entropy(Z, Y))
    close(symmetric_cross_entropy(Z, Y), 0.1 * softmax_cross_entropy(Z, Y) - math.log(1e-4) * (1 - PY))


def test_soft_sce_teacher_gradient_and_direction():
    t = jnp.asarray(Z[::-1].copy())
    gs, gt = jax.grad(lambda s, t: soft_symmetric_cross_entropy(s, t).sum(), argnums=(0, 1))(Z, t)
    assert np.max(np.abs(np.asarray(gt))) > 1e-3
    gt0 = jax.grad(lambda t: soft_symmetric_cross_entropy(Z, t, stop_gradient_teacher=True).sum())(t)
    assert np.all(np.asarray(gt0) == 0)
    # alpha = 0: the cross-entropy of the student against the teacher's distribution.
    close(soft_symmetric_cross_entropy(Z, t, alpha=0.0), softmax_cross_entropy(Z, jax.nn.softmax(t, axis=-1)))
    # symmetric: swapping student and teacher at alpha = 0.5 gives the same value.
    close(soft_symmetric_cross_entropy(Z, t), soft_symmetric_cross_entropy(t, Z))
    del gs


@pytest.mark.parametrize(
    "fn",
    [
        normalized_cross_entropy,
        reverse_cross_entropy,
        mae_loss,
        normalized_focal_loss,
        nce_rce_loss,
        nfl_mae_loss,
        symmetric_cross_entropy,
        label_distributionally_robust_loss,
        negative_learning_loss,
    ],
)
def test_distribution_labels_match_integer_labels(fn):
    close(fn(Z, jax.nn.one_hot(Y, 4)), fn(Z, Y))


# ------------------------------------------------------------ negative learning --


def test_negative_learning_exact_where_the_reference_clamps():
    # p_0 rounds to 1 in float32: -log(1 - p_0) = -(log(C - 1) - 1e4) exactly; the
    # reference's clamp(1 - p, 1e-5) would give -log(1e-5) = 11.51 instead.
    z = jnp.array([[1e4, 0.0, 0.0, 0.0]])
    loss, g = jax.value_and_grad(lambda z: negative_learning_loss(z, jnp.array([0])).sum())(z)
    close(loss, 1e4 - math.log(3.0), rtol=1e-6)
    # loss = logsumexp(z) - logsumexp(z_1..3): d/dz_0 = p_0 = 1, d/dz_k = p_k - 1/3 = -1/3.
    close(g, [[1.0, -1 / 3, -1 / 3, -1 / 3]], rtol=1e-5)
    # Several complementary labels: the sum of the single-label losses.
    q = jnp.array([[0.0, 1.0, 1.0, 0.0]] * 6)
    y1, y2 = jnp.full((6,), 1), jnp.full((6,), 2)
    close(negative_learning_loss(Z, q), negative_learning_loss(Z, y1) + negative_learning_loss(Z, y2))
    close(negative_learning_loss(Z, Y), -np.log1p(-np.asarray(PY, np.float64)))


# ----------------------------------------------------------------------- LDR --


def test_ldr_closed_forms():
    # No softplus, z = [1, -1] (||z||_1 / C = 1), y = 0: diffs [0, 2 - 2] -> lambda log(1) = 0.
    z = jnp.array([[1.0, -1.0], [0.0, 0.0]])
    close(
        label_distributionally_robust_loss(z, jnp.array([0, 1]), softplus=False), [0.0, math.log((math.e**2 + 1) / 2)]
    )
    # lambda -> 0 tends to the Crammer-Singer hinge max_k (c 1[k != y] + zn_k - zn_y)_+ (here >= 0 since k = y gives 0).
    zn = jax.nn.softplus(jnp.asarray(Z))
    zn = zn / zn.mean(-1, keepdims=True)
    hinge = jnp.max(2.0 * (1 - jax.nn.one_hot(Y, 4)) + zn - zn[np.arange(6), Y][:, None], axis=-1)
    close(label_distributionally_robust_loss(Z, Y, temperature=1e-3), hinge, atol=1e-2)
    # lambda -> inf: the mean of the margins (Weston-Watkins-like linear limit), up to O(1/lambda).
    mean_diff = jnp.mean(2.0 * (1 - jax.nn.one_hot(Y, 4)) + zn - zn[np.arange(6), Y][:, None], axis=-1)
    close(label_distributionally_robust_loss(Z, Y, temperature=1e4), mean_diff, rtol=1e-3, atol=1e-3)


def test_ldr_zero_logits_without_softplus_closed_form():
    z = jnp.zeros((2, 3))
    loss, g = jax.value_and_grad(
        lambda z: label_distributionally_robust_loss(z, jnp.array([0, 2]), softplus=False).sum()
    )(z)
    close(loss, 2 * math.log((2 * math.e**2 + 1) / 3))
    # An all-zero row is left unnormalized (scale 1): the gradient of lambda log mean exp(c 1[k != y] + z_k - z_y)
    # is the softmax weight w_k minus 1 at the label: w = e^c / (2 e^c + 1) off the label, 1 / (2 e^c + 1) on it.
    off, on = math.e**2 / (2 * math.e**2 + 1), 1 / (2 * math.e**2 + 1)
    close(g, [[on - 1, off, off], [off, off, on - 1]], rtol=1e-6)


def test_neg_inf_logits_are_the_limit():
    # NCE / NFL: the normalizer sum_k log p_k is -inf, the ratio tends to 0 (value and gradient).
    z = jnp.array([[1.0, -jnp.inf, 0.5, -0.2]])
    y = jnp.array([0])
    z3 = z[:, jnp.array([0, 2, 3])]

    @jax.jit  # every quantity below in one compile (eager: every op of every loss on its own)
    def limits(z, z3):
        ldr = lambda z: label_distributionally_robust_loss(z, y, softplus=False)  # noqa: E731
        return {
            "normalized": [
                jax.value_and_grad(lambda z, f=fn: f(z, y).sum())(z)
                for fn in (normalized_cross_entropy, normalized_focal_loss)
            ],
            "nce_rce": (nce_rce_loss(z, y), reverse_cross_entropy(z3, y)),
            "mae": (mae_loss(z, y), mae_loss(z3, y)),
            "ldr": (ldr(z), ldr(jnp.array([[0.0, -4.0, 0.0, 0.0]]))),
            "ldr_grad": jax.grad(lambda z: ldr(z).sum())(z),
            "sce": (symmetric_cross_entropy(z, y), symmetric_cross_entropy(z3, y)),
        }

    out = limits(z, z3)
    for (v, g), name in zip(out["normalized"], ("normalized_cross_entropy", "normalized_focal_loss"), strict=True):
        assert float(v) == 0.0 and np.all(np.asarray(g) == 0), name
    # The passive terms only see p = 0 there: RCE and MAE equal those of the 3 remaining classes.
    close(*out["nce_rce"])
    close(*out["mae"])
    # LDR without softplus: the -inf logit dominates ||z||_1 / C, the normalized row tends to (0, -C, 0, 0).
    close(*out["ldr"])
    assert np.all(np.asarray(out["ldr_grad"]) == 0)
    # Symmetric cross-entropy: 0 * log 0 = 0 in its cross-entropy term.
    close(*out["sce"])


def test_aldr_gradient_is_ldr_at_the_new_fixed_temperature():
    lam = jnp.asarray(np.random.default_rng(2).uniform(0.3, 1.0, size=6).astype(np.float32))
    aldr = jax.jit(adaptive_label_distributionally_robust_loss)  # jitted: one compile, not every eager op
    loss, new = aldr(Z, Y, lam)
    g = jax.jit(jax.grad(lambda z: adaptive_label_distributionally_robust_loss(z, Y, lam)[0].sum()))(Z)

    @jax.jit  # one row at a fixed temperature (traced: one compile for the six rows)
    def ldr_row(z, y, temperature):
        def f(z):
            return label_distributionally_robust_loss(z, y, margin=1.0, temperature=temperature, softplus=False)

        return f(z), jax.grad(lambda z: f(z).sum())(z)

    for i in range(6):
        li = float(new[i])
        ldr, want_g = ldr_row(Z[i : i + 1], Y[i : i + 1], li)
        close(g[i : i + 1], want_g, rtol=1e-4, atol=1e-6)
        penalty = -0.5 * math.log(4) * (li - 1.0) ** 2
        close(loss[i], ldr[0] + penalty, rtol=1e-5)
    # The new temperature lies in (0, lambda_0] and does not depend on the labels.
    assert np.all((np.asarray(new) > 0) & (np.asarray(new) <= 1.0))
    close(aldr(Z, Y[::-1].copy(), lam)[1], new)


def test_aldr_state_masked_and_dtype():
    lam = jnp.full((6,), 0.7, jnp.bfloat16)
    mask = jnp.array([True, False, True, True, False, True])
    loss, new = adaptive_label_distributionally_robust_loss(Z, Y, lam, where=mask)
    assert new.dtype == jnp.bfloat16 and loss.dtype == jnp.float32
    assert np.all(np.asarray(new, np.float32)[~np.asarray(mask)] == np.float32(jnp.bfloat16(0.7)))
    assert np.all(np.asarray(loss)[~np.asarray(mask)] == 0)
    # Carrying the state through a jitted loop keeps its shape and dtype.
    step = jax.jit(lambda s: adaptive_label_distributionally_robust_loss(Z, Y, s)[1])
    s = step(step(lam))
    assert s.dtype == jnp.bfloat16 and s.shape == (6,)


# ------------------------------------------------------------------- Z-error --


def test_z_error_filters_outliers_without_gradient():
    pred = jnp.array([0.0, 0.0, 0.0, 0.0, 10.0])
    targets = jnp.ones(5)
    # errors 1, 1, 1, 1, 81: mean 17, unbiased std sqrt(5120 / 4) = 35.78 -> z = 1.79 for the
    # outlier and -0.45 for the others.
    loss, g = jax.value_and_grad(lambda p: z_error_loss(p, targets, threshold=1.5))(pred)
    close(loss, 1.0)
    close(g, [-0.5, -0.5, -0.5, -0.5, 0.0])  # d/dp mean((p - 1)^2) over the 4 kept examples
    # Above the outlier's z-score nothing is filtered: the plain MSE.
    close(z_error_loss(pred, targets, threshold=2.5), (4 + 81) / 5)


def test_z_error_degenerate_batches():
    # sigma = 0: everything kept.
    close(z_error_loss(jnp.zeros((4, 2)), jnp.ones((4, 2)), threshold=0.0), 1.0)
    # all masked: 0 and zero gradient, even with NaN in the inputs.
    bad = jnp.full((3,), jnp.nan)
    loss, g = jax.value_and_grad(lambda p: z_error_loss(p, jnp.ones(3), where=jnp.zeros(3, bool)))(bad)
    assert float(loss) == 0.0 and np.all(np.asarray(g) == 0)
    # Two-sided: an unusually small error is excluded too. Errors 0, 9, 9, 9, 9, 9:
    # mean 7.5, unbiased std 3.67 -> z = -2.04 for the perfect prediction.
    pred = jnp.array([0.0, 3.0, -3.0, 3.0, -3.0, 3.0])
    close(z_error_loss(pred, jnp.zeros(6), threshold=2.0), 9.0)
    close(z_error_loss(pred, jnp.zeros(6), threshold=2.1), 7.5)
    # A single valid example: nothing to compare with, kept.
    close(z_error_loss(jnp.array([2.0]), jnp.zeros(1), threshold=0.0), 4.0)
    # statistics over the unmasked examples only: the masked outlier changes nothing.
    pred = jnp.array([0.0, 0.5, 1.0, 100.0, 2.0])
    m = jnp.array([True, True, True, False, True])
    close(z_error_loss(pred, jnp.zeros(5), where=m), z_error_loss(pred[m], jnp.zeros(4)))


# ---------------------------------------------------------------------- nnPU --


@pytest.mark.parametrize("case", REF["nnpu"], ids=lambda c: f"{c['note']}-{c['non_negative']}")
def test_nnpu_golden(case):
    for dtype, tol in ((jnp.float64, 1e-10), (jnp.float32, 2e-5)):
        with jax.enable_x64(dtype == jnp.float64):
            scores = jnp.asarray(case["scores"], dtype)
            labels = jnp.asarray(case["labels"], jnp.int32)
            f = lambda s, y=labels: nonnegative_pu_risk(s, y, prior=case["prior"], non_negative=case["non_negative"])  # noqa: E731
            value, grad = jax.value_and_grad(f)(scores)
            assert rel_err(value, case["value"]) <= tol
            assert rel_err(grad, case["grad"]) <= tol


def test_nnpu_label_conventions_and_closed_form():
    f = jnp.array([2.0, -1.0, 0.0, 1.0])
    a = nonnegative_pu_risk(f, jnp.array([1, 0, 0, 1]), prior=0.4)
    b = nonnegative_pu_risk(f, jnp.array([True, False, False, True]), prior=0.4)
    c = nonnegative_pu_risk(f, jnp.array([1, -1, -1, 1]), prior=0.4)
    s = jax.nn.sigmoid
    want = 0.4 / 2 * (s(-2.0) + s(-1.0)) + (s(-1.0) + s(0.0)) / 2 - 0.4 / 2 * (s(2.0) + s(1.0))
    close(a, want)
    close(b, want)
    close(c, want)
    # logistic surrogate l(z) = softplus(-z)
    sp = jax.nn.softplus
    want = 0.4 / 2 * (sp(-2.0) + sp(-1.0)) + (sp(-1.0) + sp(0.0)) / 2 - 0.4 / 2 * (sp(2.0) + sp(1.0))
    # Here the negative-risk estimate is < 0: uPU keeps it, nnPU clips to pi R_p^+.
    close(nonnegative_pu_risk(f, jnp.array([1, 0, 0, 1]), prior=0.4, surrogate="logistic", non_negative=False), want)
    close(nonnegative_pu_risk(f, jnp.array([1, 0, 0, 1]), prior=0.4, surrogate="logistic"), 0.2 * (sp(-2.0) + sp(-1.0)))


# --------------------------------------------------------- confident peer BCE --


@pytest.mark.parametrize("case", REF["cbc"], ids=lambda c: str(c["kwargs"]))
def test_cross_model_confident_bce_golden(case):
    for dtype, tol in ((jnp.float64, 1e-10), (jnp.float32, 2e-5)):
        with jax.enable_x64(dtype == jnp.float64):
            z = jnp.asarray(case["logits_nhwc"], dtype)
            peer = jnp.asarray(case["peer_nhwc"], dtype)
            f = jax.jit(jax.value_and_grad(lambda z, p: cross_model_confident_bce(z, p, **case["kwargs"])))
            value, grad = f(z, peer)  # jitted: one compile instead of every eager op
            assert rel_err(value, case["value"]) <= tol
            assert rel_err(grad, case["grad_nhwc"]) <= tol


@pytest.mark.parametrize("case", REF["cbc"], ids=lambda c: str(c["kwargs"]))
def test_cross_model_confident_bce_reference_bitwise_not(case):
    """The reference's `~onehot` weights -log(1 - p_k) by 1 off and 2 on the pseudo-label.

    Hand-derived in numpy: the recorded as-written value equals the formula with weights
    (1 + [k = y~]); lossjax (and the fixed port) use (1 - [k = y~]), the complement the
    code's name `inverse_tilde` intends.
    """
    kw = {"threshold": 0.6, "neg_threshold": 0.3, **case["kwargs"]}
    z = np.asarray(case["logits_nhwc"]).reshape(-1, 4)
    pp = np.exp(np.asarray(case["peer_nhwc"]).reshape(-1, 4))
    pp /= pp.sum(-1, keepdims=True)
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    onehot = np.eye(4)[pp.argmax(-1)]
    pos = pp.max(-1) >= kw["threshold"]
    neg = pp.min(-1) < kw["neg_threshold"]
    pos_term = np.mean((pp.max(-1) * -np.log((p * onehot).sum(-1)))[pos]) if pos.any() else 0.0
    per_class = pp.min(-1)[:, None] * -np.log(1 - p)
    as_written = pos_term + (np.mean((per_class * (1 + onehot))[neg]) if neg.any() else 0.0)
    intended = pos_term + (np.mean((per_class * (1 - onehot))[neg]) if neg.any() else 0.0)
    assert abs(as_written - case["value_as_written"]) < 1e-10
    assert abs(intended - case["value"]) < 1e-10
    assert abs(as_written - intended) > 1e-3


def test_cross_model_confident_bce_empty_sets_and_peer_constant():
    z = jnp.asarray(Z)
    flat = jnp.zeros_like(z)  # peer uniform: max p~ = 1/4 < 0.6 and min p~ = 1/4 < 0.3
    close(cross_model_confident_bce(z, flat, neg_threshold=0.2), 0.0)
    neg_only = cross_model_confident_bce(z, flat)
    # every position is in the negative set with w- = 1/4 and y~ = argmax of a uniform row = class 0
    log1m = np.log1p(-np.asarray(P, np.float64))
    close(neg_only, np.mean(0.25 * -log1m[:, 1:].sum(-1) / 4))
    g = jax.grad(lambda p: cross_model_confident_bce(z, p), argnums=0)(z * 3)
    assert np.all(np.asarray(g) == 0)


# -------------------------------------------------------------------- errors --


def test_errors_name_function_argument_and_shape():
    with pytest.raises(ValueError, match="normalized_cross_entropy: `logits` must have at least 2 classes"):
        normalized_cross_entropy(Z[:, :1], Y * 0)
    with pytest.raises(TypeError, match="mae_loss: argument `logits` must have a float dtype"):
        mae_loss(np.ones((2, 3), np.int32), Y[:2])
    with pytest.raises(ValueError, match=r"reverse_cross_entropy: `label_floor` must lie in \(0.0, 1.0\)"):
        reverse_cross_entropy(Z, Y, label_floor=0.0)
    with pytest.raises(ValueError, match="normalized_active_passive_loss: `active` must be one of"):
        normalized_active_passive_loss(Z, Y, active="gce")
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        nce_mae_loss(Z, Y, gamma=0.5)
    with pytest.raises(ValueError, match="symmetric_cross_entropy: `alpha` must be >= 0"):
        symmetric_cross_entropy(Z, Y, alpha=-0.1)
    with pytest.raises(
        ValueError, match="soft_symmetric_cross_entropy: `logits` and `teacher_logits` must have the same shape"
    ):
        soft_symmetric_cross_entropy(Z, Z[:, :3])
    with pytest.raises(ValueError, match="label_distributionally_robust_loss: `temperature` must be > 0"):
        label_distributionally_robust_loss(Z, Y, temperature=0.0)
    with pytest.raises(
        ValueError, match=r"adaptive_label_distributionally_robust_loss: `alpha` must lie in \[1.0, inf\)"
    ):
        adaptive_label_distributionally_robust_loss(Z, Y, jnp.ones(6), alpha=0.5)
    with pytest.raises(ValueError, match=r"argument `temperatures` must have shape \(6\), got \(5,\)"):
        adaptive_label_distributionally_robust_loss(Z, Y, jnp.ones(5))
    with pytest.raises(
        ValueError, match="cross_model_confident_bce: `logits` and `peer_logits` must have the same shape"
    ):
        cross_model_confident_bce(Z, Z[:, :3])
    with pytest.raises(ValueError, match=r"cross_model_confident_bce: `threshold` must lie in \[0.0, 1.0\]"):
        cross_model_confident_bce(Z, Z, threshold=1.5)
    with pytest.raises(ValueError, match="z_error_loss: `predictions` and `targets` must have the same shape"):
        z_error_loss(jnp.ones(3), jnp.ones(4))
    with pytest.raises(ValueError, match=r"nonnegative_pu_risk: `prior` must lie in \(0.0, 1.0\)"):
        nonnegative_pu_risk(jnp.ones(3), jnp.ones(3, jnp.int32), prior=1.0)
    with pytest.raises(ValueError, match="nonnegative_pu_risk: argument `logits` must have rank 1"):
        nonnegative_pu_risk(jnp.ones((3, 1)), jnp.ones(3, jnp.int32), prior=0.5)
    with pytest.raises(ValueError, match="nonnegative_pu_risk: `logits` and `labels` must have the same shape"):
        nonnegative_pu_risk(jnp.ones(3), jnp.ones(4, jnp.int32), prior=0.5)
    with pytest.raises(ValueError, match="nonnegative_pu_risk: `surrogate` must be one of"):
        nonnegative_pu_risk(jnp.ones(3), jnp.ones(3, jnp.int32), prior=0.5, surrogate="hinge")
    with pytest.raises(TypeError, match="unexpected keyword argument 'loss'"):
        nonnegative_pu_risk(jnp.ones(3), jnp.ones(3, jnp.int32), prior=0.5, loss="sigmoid")


def test_registry_specs():
    loss = lossjax.get("nfl_rce_loss(alpha=10.0, beta=0.1)")
    close(loss(Z, Y), nfl_rce_loss(Z, Y, alpha=10.0, beta=0.1))
    assert lossjax.get("nce_and_mae").to_config() == {"name": "nce_mae_loss"}


# --------------------- out-of-range labels, hyperparameters, empty batches (issue 19) ---------------------

INTEGER_LABEL_LOSSES = [
    n
    for n in lossjax.available(family="noisy")
    if lossjax.registry.get_entry(n).kind == "per_example"
    and np.issubdtype(np.asarray(lossjax.registry.get_entry(n).sample().args[1]).dtype, np.integer)
]


@pytest.mark.parametrize("name", INTEGER_LABEL_LOSSES)
def test_out_of_range_labels_nan_unless_masked(name):
    entry = lossjax.registry.get_entry(name)
    s = entry.sample()
    labels = np.array(s.args[1])
    labels[0], labels[1] = labels.max() + 7, -1
    args = (s.args[0], labels, *s.args[2:])

    def primary(out):
        return out[0] if entry.has_aux else out

    out = np.asarray(primary(entry.fn(*args, **s.kwargs)))
    assert np.all(np.isnan(out[:2])) and np.all(np.isfinite(out[2:])), (name, out)
    mask = jnp.asarray(np.arange(len(labels)) >= 2)
    f = lambda z: jnp.sum(primary(entry.fn(z, *args[1:], **s.kwargs, where=mask)))  # noqa: E731
    v, g = jax.value_and_grad(f)(jnp.asarray(args[0]))
    assert np.isfinite(float(v)) and np.all(np.isfinite(np.asarray(g))) and np.all(np.asarray(g)[:2] == 0), name


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: adaptive_label_distributionally_robust_loss(Z, Y, jnp.ones(6), alpha=math.inf),
            r"adaptive_label_distributionally_robust_loss: `alpha` must lie in \[1.0, inf\), got inf",
        ),
        (
            lambda: label_distributionally_robust_loss(Z, Y, margin=float("nan")),
            r"label_distributionally_robust_loss: `margin` must be a finite number",
        ),
        (lambda: normalized_focal_loss(Z, Y, gamma=math.inf), r"normalized_focal_loss: `gamma` must be a finite"),
        (lambda: nce_rce_loss(Z, Y, alpha=float("nan")), r"nce_rce_loss: `alpha` must be a finite"),
        (lambda: reverse_cross_entropy(Z, Y, label_floor=float("nan")), r"`label_floor` must lie in"),
        (lambda: symmetric_cross_entropy(Z, Y, beta=math.inf), r"symmetric_cross_entropy: `beta` must be a finite"),
        (lambda: soft_symmetric_cross_entropy(Z, Z, alpha=float("nan")), r"`alpha` must lie in \[0.0, 1.0\]"),
        (lambda: z_error_loss(Z, Z, threshold=float("nan")), r"z_error_loss: `threshold` must be a finite"),
        (
            lambda: nonnegative_pu_risk(jnp.ones(3), jnp.ones(3, jnp.int32), prior=0.5, beta=math.inf),
            r"nonnegative_pu_risk: `beta` must be a finite",
        ),
        (lambda: cross_model_confident_bce(Z, Z, threshold=float("nan")), r"`threshold` must lie in \[0.0, 1.0\]"),
        (lambda: generalized_cross_entropy(Z, Y, q=float("nan")), r"generalized_cross_entropy: `q` must lie in"),
    ],
)
def test_nan_and_inf_hyperparameters_are_rejected(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("name", lossjax.available(family="noisy"))
def test_empty_batch(name):
    entry = lossjax.registry.get_entry(name)
    s = entry.sample()
    batched = range(len(s.args)) if s.batched_argnums is None else s.batched_argnums
    args = [np.asarray(a)[:0] if i in batched else a for i, a in enumerate(s.args)]
    out = entry.fn(*args, **s.kwargs)
    out = out[0] if entry.has_aux else out
    if entry.kind == "batch":
        assert out.shape == () and float(out) == 0.0, name
    else:
        assert out.shape[0] == 0, name


# --------------------- integer labels: row reductions only (lossjax.losses._noisy._label_softmax) ---------------------

_ROW_REDUCTION_LOSSES = {
    "reverse_cross_entropy": {},
    "mae_loss": {},
    "symmetric_cross_entropy": {"alpha": 0.5, "label_floor": 1e-3},
    "normalized_cross_entropy": {},
    "normalized_focal_loss": {"gamma": 0.5},
    "nce_rce_loss": {"alpha": 10.0, "beta": 0.1},
    "nce_mae_loss": {},
    "nfl_rce_loss": {"gamma": 2.0},
    "nfl_mae_loss": {},
    "normalized_active_passive_loss": {"active": "nfl", "passive": "mae", "gamma": 1.5},
}


@pytest.mark.parametrize("case", sorted(ONE_HOT_CASES))
@pytest.mark.parametrize("name", sorted(_ROW_REDUCTION_LOSSES))
def test_integer_labels_equal_the_one_hot_distribution(name, case):
    """Integer labels take row reductions only; a one-hot distribution the plain log_softmax formulas. Values
    and gradients agree at ties, at p_y ~ 1 (z_y = 30, |z| = 1e4) and with -inf logits of other classes.

    The distribution path runs in float64: in float32 it loses 3 digits of d/dz_0 of NFL + RCE at the
    confidently wrong row (z = [1e4, -1e4, ...], y = 1), where the softmax backward cancels RCE's cotangent
    -log(1e-4) p_0 against itself; the integer path keeps them (1 - p_y has a cancellation-free derivative)."""
    z, y = ONE_HOT_CASES[case]
    y = jnp.asarray(y, jnp.int32)
    loss, kw = getattr(lossjax.losses, name), _ROW_REDUCTION_LOSSES[name]

    def value_and_grad(z, t):
        return jax.jit(jax.value_and_grad(lambda z: jnp.sum(loss(z, t, **kw))))(z)

    v1, g1 = value_and_grad(jnp.asarray(z, jnp.float32), y)
    with jax.enable_x64(True):
        v2, g2 = (
            np.asarray(a) for a in value_and_grad(jnp.asarray(z), jax.nn.one_hot(y, z.shape[-1], dtype=jnp.float64))
        )
    assert np.isfinite(v1) and np.all(np.isfinite(g1)), (v1, g1)
    np.testing.assert_allclose(v1, v2, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(g1, g2, rtol=2e-5, atol=1e-6)
