"""Imbalance / long-tail losses: golden values from the papers' code, closed forms, errors.

Golden numbers: tests/reference/imbalance_noisy.json, written by
tests/reference/make_imbalance_noisy.py (faithful torch ports of kaidic/LDAM-DRW,
orparask/VS-Loss, google-research logit_adjustment, BalancedMetaSoftmax,
Alibaba-MIIL/ASL and richardaecn/class-balanced-loss).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from golden_imbalance_noisy import REF, check_golden, close, golden_cases, rel_err

import lossjax
from lossjax.losses import (
    asymmetric_loss,
    asymmetric_single_label_loss,
    balanced_softmax_cross_entropy,
    cisir_loss,
    class_balanced_weights,
    classification_aux_for_regression,
    generalized_focal_equity_loss,
    gml_loss,
    integrated_risk_loss,
    ldam_loss,
    logit_adjusted_cross_entropy,
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
    subclass_balancing_contrastive_loss,
    vs_loss,
)
from lossjax.testing import assert_close

NAMES = {
    "ldam_loss",
    "vs_loss",
    "logit_adjusted_cross_entropy",
    "balanced_softmax_cross_entropy",
    "asymmetric_loss",
    "asymmetric_single_label_loss",
}


@pytest.mark.parametrize("case", golden_cases(NAMES))
def test_golden(case):
    check_golden(case)


def test_every_loss_has_golden_cases():
    assert {c["name"] for c in REF["cases"]} >= NAMES


# ------------------------------------------------------ class-balanced weights --


@pytest.mark.parametrize("entry", REF["class_balanced_weights"], ids=lambda e: str(e["beta"]))
def test_class_balanced_weights_golden(entry):
    w = class_balanced_weights(np.asarray(REF["counts"]), beta=entry["beta"])
    assert rel_err(w, entry["value"]) <= 2e-6


def test_class_balanced_weights_closed_forms():
    counts = jnp.array([4, 1, 0, 16])
    # inverse frequency: 1/4, 1, 0, 1/16 normalized to sum to C=4.
    raw = np.array([0.25, 1.0, 0.0, 1 / 16])
    close(class_balanced_weights(counts, variant="inverse_frequency"), raw * 4 / raw.sum())
    raw = np.array([0.5, 1.0, 0.0, 0.25])
    close(class_balanced_weights(counts, variant="inverse_sqrt"), raw * 4 / raw.sum())
    # Effective number without normalization: (1 - b) / (1 - b^n); n = 1 gives exactly 1.
    w = class_balanced_weights(counts, beta=0.5, normalize=False)
    close(w, [0.5 / (1 - 0.5**4), 1.0, 0.0, 0.5 / (1 - 0.5**16)])
    # beta = 0: every present class weighs 1 (effective number 1).
    close(class_balanced_weights(counts, beta=0.0, normalize=False), [1.0, 1.0, 0.0, 1.0])


def test_class_balanced_weights_beta_near_one_no_cancellation():
    # (1 - b) / (1 - b^n) -> 1/n as b -> 1; naive float32 1 - b**n loses every digit.
    w = class_balanced_weights(jnp.array([1.0, 10.0, 1000.0]), beta=1 - 1e-7, normalize=False)
    close(w, [1.0, 0.1 * (1 + 4.5e-7), 1e-3 * (1 + 5e-5)], rtol=2e-5)
    assert np.all(np.isfinite(np.asarray(w)))


def test_class_balanced_weights_empty_and_all_empty():
    close(class_balanced_weights(jnp.zeros(3)), np.zeros(3))
    w = class_balanced_weights(jnp.array([0, 5]))
    close(w, [0.0, 2.0])


def test_class_balanced_weights_errors():
    with pytest.raises(ValueError, match="class_balanced_weights: `variant` must be one of"):
        class_balanced_weights(jnp.ones(3), variant="inverse")
    with pytest.raises(ValueError, match=r"`beta` must lie in \[0.0, 1.0\)"):
        class_balanced_weights(jnp.ones(3), beta=1.0)
    with pytest.raises(ValueError, match="`class_counts` must have rank 1"):
        class_balanced_weights(jnp.ones((2, 3)))


# --------------------------------------------------- margin-adjusted family ------

Z = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
Y = np.array([0, 1, 2, 1, 0], np.int32)
COUNTS = np.array([9, 3, 1])


def test_ldam_margins_closed_form_and_empty_class():
    from lossjax.losses._imbalance import _ldam_margins

    m = _ldam_margins(jnp.array([16.0, 1.0, 81.0, 0.0]), 0.5)
    # n^-1/4 = 1/2, 1, 1/3 -> scaled so the largest (n=1) is 0.5; empty class -> max_margin.
    close(m, [0.25, 0.5, 0.5 / 3, 0.5])
    # The loss subtracts the margin from the target logit only, then multiplies by scale.
    z = jnp.array([[0.3, 0.1, -0.2, 0.0]])
    got = ldam_loss(z, jnp.array([2]), class_counts=jnp.array([16, 1, 81, 0]), scale=2.0)
    zz = 2.0 * (np.array([0.3, 0.1, -0.2 - 0.5 / 3, 0.0]))
    close(got, [math.log(np.exp(zz).sum()) - zz[2]])


def test_ldam_zero_margin_is_scaled_cross_entropy():
    got = ldam_loss(Z, Y, class_counts=COUNTS, max_margin=0.0, scale=3.0)
    close(got, softmax_cross_entropy(3.0 * Z, Y))


def test_logit_adjustment_priors_or_counts_and_empty_class():
    a = logit_adjusted_cross_entropy(Z, Y, class_priors=COUNTS)
    b = logit_adjusted_cross_entropy(Z, Y, class_priors=COUNTS / COUNTS.sum())
    close(a, b)
    close(a, softmax_cross_entropy(Z + np.log(COUNTS / COUNTS.sum()).astype(np.float32), Y))
    # An empty class is floored at epsilon: finite, and equal to a prior of exactly epsilon.
    c = logit_adjusted_cross_entropy(Z, Y, class_priors=jnp.array([0.5, 0.5, 0.0]), epsilon=1e-6)
    d = softmax_cross_entropy(Z + np.log([0.5, 0.5, 1e-6]).astype(np.float32), Y)
    close(c, d)
    g = jax.grad(lambda z: logit_adjusted_cross_entropy(z, Y, class_priors=jnp.array([1.0, 0.0, 0.0])).sum())(Z)
    # The softmax of z + log(max(pi, 1e-12)) minus the one-hot target: finite, the empty classes nearly 0.
    adjusted = Z.astype(np.float64) + np.log(np.array([1.0, 1e-12, 1e-12]))
    p = np.exp(adjusted - adjusted.max(-1, keepdims=True))
    close(g, p / p.sum(-1, keepdims=True) - np.eye(3)[Y], atol=1e-6)


def test_balanced_softmax_is_logit_adjustment_prior_exponent_one():
    close(
        balanced_softmax_cross_entropy(Z, Y, class_counts=COUNTS),
        logit_adjusted_cross_entropy(Z, Y, class_priors=COUNTS, prior_exponent=1.0),
    )


def test_vs_special_cases():
    # gamma = 0: pure logit adjustment; gamma = prior_exponent = 0: plain cross-entropy.
    close(
        vs_loss(Z, Y, class_counts=COUNTS, gamma=0.0, prior_exponent=0.7),
        logit_adjusted_cross_entropy(Z, Y, class_priors=COUNTS, prior_exponent=0.7),
    )
    close(vs_loss(Z, Y, class_counts=COUNTS, gamma=0.0, prior_exponent=0.0), softmax_cross_entropy(Z, Y))
    # prior_exponent = 0: z_j (n_j / n_max)^gamma.
    scale = (COUNTS / COUNTS.max()) ** 0.5
    close(
        vs_loss(Z, Y, class_counts=COUNTS, gamma=0.5, prior_exponent=0.0),
        softmax_cross_entropy(Z * scale.astype(np.float32), Y),
    )


@pytest.mark.parametrize(
    "fn,kw",
    [
        (ldam_loss, {"class_counts": COUNTS, "scale": 4.0}),
        (logit_adjusted_cross_entropy, {"class_priors": COUNTS}),
        (balanced_softmax_cross_entropy, {"class_counts": COUNTS}),
        (vs_loss, {"class_counts": COUNTS}),
        (asymmetric_single_label_loss, {}),
        (integrated_risk_loss, {"loss_matrix": 1.0 - np.eye(3)}),
    ],
)
def test_distribution_labels_match_integer_labels(fn, kw):
    onehot = jax.nn.one_hot(Y, 3)
    close(fn(Z, onehot, **kw), fn(Z, Y, **kw))


def test_class_weights_weigh_the_target_class():
    w = jnp.array([1.0, 2.0, 5.0])
    for fn, kw in ((ldam_loss, {"class_counts": COUNTS}), (vs_loss, {"class_counts": COUNTS})):
        close(fn(Z, Y, class_weights=w, **kw), w[Y] * fn(Z, Y, **kw))


# ------------------------------------------------------------------- ASL --------


def test_asl_easy_negatives_are_discarded():
    # p = sigmoid(-4) < margin = 0.05: zero loss and exactly zero gradient.
    z = jnp.array([-4.0, -4.0])
    y = jnp.array([0.0, 1.0])
    (_, value), g = jax.jit(
        jax.value_and_grad(lambda z: (asymmetric_loss(z, y).sum(), asymmetric_loss(z, y)), has_aux=True)
    )(z)
    assert float(value[0]) == 0.0
    assert float(g[0]) == 0.0 and float(g[1]) != 0.0


def test_asl_without_focusing_or_margin_is_bce():
    z = jnp.asarray(Z)
    y = (jnp.asarray(Z) > 0.3).astype(jnp.float32)
    got = asymmetric_loss(z, y, gamma_neg=0.0, gamma_pos=0.0, margin=0.0)
    close(got, sigmoid_binary_cross_entropy(z, y))


def test_asl_stop_gradient_weight_same_value_other_gradient():
    y = (jnp.asarray(Z) > 0.3).astype(jnp.float32)
    # jitted value-and-gradient per setting (eager calls compile each op per shape)
    vg = {
        sg: jax.jit(jax.value_and_grad(lambda z, sg=sg: asymmetric_loss(z, y, stop_gradient_weight=sg).sum()))
        for sg in (False, True)
    }
    (v_flow, g_flow), (v_stop, g_stop) = vg[False](Z), vg[True](Z)
    close(v_stop, v_flow)
    assert np.max(np.abs(np.asarray(g_flow - g_stop))) > 1e-3
    # Hand-derived for a positive with gamma_pos = 1: loss = -(1 - p) log p, so
    # d/dz = (1 - p) * (-(1 - p)) + (-p (1 - p)) * (-log p).
    z0 = float(Z[0, 0])
    p = 1 / (1 + math.exp(-z0))
    weight_fixed = -(1 - p) * (1 - p)  # (1-p) * d(-log p)/dz, weight held constant
    full = weight_fixed + p * (1 - p) * math.log(p)  # + d(1-p)/dz * (-log p)
    yy = jnp.ones_like(y)
    g1 = jax.jit(jax.grad(lambda z: asymmetric_loss(z, yy).sum()))(Z)
    g2 = jax.jit(jax.grad(lambda z: asymmetric_loss(z, yy, stop_gradient_weight=True).sum()))(Z)
    close(g1[0, 0], full, rtol=1e-5)
    close(g2[0, 0], weight_fixed, rtol=1e-5)


def test_asl_extreme_logits_closed_forms():
    z = jnp.array([1e4, -1e4, 1e4, -1e4, 0.0])
    y = jnp.array([1.0, 1.0, 0.0, 0.0, 1.0])
    # Positives (gamma_pos = 1): (1 - p) (-log max(p, 1e-8)); negatives (gamma_neg = 4, margin m):
    # p_m^4 (-log(1 - p_m)), p_m = max(p - m, 0). At p in {0, 1} every derivative of p vanishes.
    half = 0.5 * math.log(2.0)
    for margin in (0.0, 0.05):
        p_m = 1.0 - margin
        hopeless_negative = p_m**4 * -math.log(max(1 - p_m, 1e-8))
        g = jax.grad(lambda z, m=margin: asymmetric_loss(z, y, margin=m).sum())(z)
        close(asymmetric_loss(z, y, margin=margin), [0.0, -math.log(1e-8), hopeless_negative, 0.0, half], rtol=1e-6)
        # z = 0, y = 1: d/dz [(1 - s)(-log s)] = -s(1 - s)(-log s) - (1 - s)^2 = -(log 2) / 4 - 1 / 4.
        close(g, [0.0, 0.0, 0.0, 0.0, -0.25 * math.log(2.0) - 0.25], atol=1e-7)


def test_asl_single_label_without_focusing_is_smoothed_ce():
    got = asymmetric_single_label_loss(Z, Y, gamma_pos=0.0, gamma_neg=0.0, label_smoothing=0.2)
    close(got, softmax_cross_entropy(Z, Y, label_smoothing=0.2))


# ------------------------------------------------------------ integrated risk --


def test_integrated_risk_closed_forms():
    p = jax.nn.softmax(jnp.asarray(Z), axis=-1)
    # 0-1 decision loss: the expected error 1 - p_y.
    got = integrated_risk_loss(Z, Y, loss_matrix=1.0 - np.eye(3))
    close(got, 1.0 - p[np.arange(5), Y])
    L = np.array([[0.0, 1.0, 3.0], [2.0, 0.0, 1.0], [5.0, 4.0, 0.0]], np.float32)
    want = [float(np.dot(L[y], p[i])) for i, y in enumerate(Y)]
    close(integrated_risk_loss(Z, Y, loss_matrix=L), want)
    # a target distribution mixes the rows of L
    q = jnp.array([[0.5, 0.5, 0.0]] * 5)
    close(integrated_risk_loss(Z, q, loss_matrix=L), p @ (0.5 * (L[0] + L[1])))


# ------------------------------------------------- classification aux for regression --


def test_classification_aux_for_regression_closed_form():
    edges = [-1.0, 0.0, 1.0]  # 4 bins: (-inf,-1) [-1,0) [0,1) [1,inf)
    y = jnp.array([-3.0, -1.0, -0.5, 0.0, 0.99, 1.0])  # on an edge -> the upper bin
    bins = np.array([0, 1, 1, 2, 2, 3])
    f = y + 0.5
    b = jnp.asarray(np.random.default_rng(3).normal(size=(6, 4)).astype(np.float32))
    got = classification_aux_for_regression(f, b, y, bin_edges=edges, aux_weight=0.3)
    close(got, 0.25 + 0.3 * softmax_cross_entropy(b, jnp.asarray(bins)))
    close(classification_aux_for_regression(f, b, y, bin_edges=edges, aux_weight=0.0), np.full(6, 0.25))
    # Gradients: 2 (f - y) into predictions and the target, softmax - onehot into the bin logits.
    gf, gb, gy = jax.grad(
        lambda f, b, y: classification_aux_for_regression(f, b, y, bin_edges=edges).sum(), argnums=(0, 1, 2)
    )(f, b, y)
    close(gf, np.full(6, 1.0))
    close(gy, np.full(6, -1.0))
    close(gb, jax.nn.softmax(b, axis=-1) - jax.nn.one_hot(bins, 4))


# -------------------------------------------------------------------- errors --


def test_errors_name_function_argument_and_shape():
    with pytest.raises(ValueError, match=r"ldam_loss: argument `class_counts` must have shape \(3\), got \(4,\)"):
        ldam_loss(Z, Y, class_counts=np.ones(4))
    with pytest.raises(TypeError, match="ldam_loss: argument `logits` must have a float dtype"):
        ldam_loss(np.ones((2, 3), np.int32), Y[:2], class_counts=COUNTS)
    with pytest.raises(ValueError, match="ldam_loss: `scale` must be > 0"):
        ldam_loss(Z, Y, class_counts=COUNTS, scale=0.0)
    with pytest.raises(ValueError, match="ldam_loss: `max_margin` must be >= 0"):
        ldam_loss(Z, Y, class_counts=COUNTS, max_margin=-0.1)
    with pytest.raises(ValueError, match="logit_adjusted_cross_entropy: `prior_exponent` must be >= 0"):
        logit_adjusted_cross_entropy(Z, Y, class_priors=COUNTS, prior_exponent=-1.0)
    with pytest.raises(ValueError, match="vs_loss: `prior_exponent` must be >= 0"):
        vs_loss(Z, Y, class_counts=COUNTS, prior_exponent=-1.0)
    with pytest.raises(ValueError, match="vs_loss: `gamma` must be >= 0"):
        vs_loss(Z, Y, class_counts=COUNTS, gamma=-1.0)
    with pytest.raises(ValueError, match=r"integer `labels` must have shape logits.shape\[:-1\]"):
        logit_adjusted_cross_entropy(Z, Y[:3], class_priors=COUNTS)
    with pytest.raises(ValueError, match="at least 2 classes"):
        balanced_softmax_cross_entropy(Z[:, :1], Y * 0, class_counts=COUNTS[:1])
    with pytest.raises(ValueError, match="asymmetric_loss: `logits` and `labels` must have the same shape"):
        asymmetric_loss(Z, Y)
    with pytest.raises(ValueError, match=r"asymmetric_loss: `margin` must lie in \[0.0, 1.0\)"):
        asymmetric_loss(Z, Z, margin=1.0)
    with pytest.raises(ValueError, match=r"`label_smoothing` must lie in \[0.0, 1.0\)"):
        asymmetric_single_label_loss(Z, Y, label_smoothing=1.0)
    with pytest.raises(
        ValueError, match=r"classification_aux_for_regression: argument `bin_edges` must have shape \(2\)"
    ):
        classification_aux_for_regression(Z[:, 0], Z, Z[:, 1], bin_edges=[0.0])
    with pytest.raises(ValueError, match=r"`bin_logits` must have shape predictions.shape \+ \(B,\)"):
        classification_aux_for_regression(Z[:4, 0], Z, Z[:4, 1], bin_edges=[0.0, 1.0])
    with pytest.raises(
        ValueError, match="classification_aux_for_regression: `bin_logits` must have at least 2 classes"
    ):
        classification_aux_for_regression(Z[:, 0], Z[:, :1], Z[:, 1], bin_edges=[])
    with pytest.raises(ValueError, match="classification_aux_for_regression: `aux_weight` must be >= 0"):
        classification_aux_for_regression(Z[:, 0], Z, Z[:, 1], bin_edges=[0.0, 1.0], aux_weight=-1.0)
    with pytest.raises(ValueError, match=r"integrated_risk_loss: argument `loss_matrix` must have shape \(3, 3\)"):
        integrated_risk_loss(Z, Y, loss_matrix=np.ones((3, 2)))


def test_debug_mode_reports_negative_counts():
    f = lossjax.checked(lambda z, y, n: ldam_loss(z, y, class_counts=n))
    with pytest.raises(ValueError, match="ldam_loss: `class_counts` must be >= 0"):
        f(Z, Y, jnp.array([3, -1, 2]))


@pytest.mark.parametrize(
    ("fn", "kw", "old"),
    [
        (ldam_loss, {"class_counts": COUNTS, "s": 1.0}, "s"),
        (ldam_loss, {"class_counts": COUNTS, "max_m": 0.5}, "max_m"),
        (logit_adjusted_cross_entropy, {"class_priors": COUNTS, "tau": 1.0}, "tau"),
        (vs_loss, {"class_counts": COUNTS, "tau": 1.0}, "tau"),
        (asymmetric_loss, {"clip": 0.05}, "clip"),
    ],
)
def test_old_argument_names_are_gone(fn, kw, old):
    # One name per concept: the pre-consolidation names are not accepted silently.
    labels = Z if fn is asymmetric_loss else Y
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{old}'"):
        fn(Z, labels, **kw)


# --------------------- out-of-range labels, hyperparameters, empty batches (issue 19) ---------------------

INTEGER_LABEL_LOSSES = [
    n
    for n in lossjax.available(family="imbalance")
    if lossjax.registry.get_entry(n).kind == "per_example"
    and len(lossjax.registry.get_entry(n).sample().args) > 1
    and np.issubdtype(np.asarray(lossjax.registry.get_entry(n).sample().args[1]).dtype, np.integer)
]


@pytest.mark.parametrize("name", INTEGER_LABEL_LOSSES)
def test_out_of_range_labels_nan_unless_masked(name):
    entry = lossjax.registry.get_entry(name)
    s = entry.sample()
    labels = np.array(s.args[1])
    labels[0], labels[1] = labels.max() + 7, -1
    args = (s.args[0], labels, *s.args[2:])
    out = np.asarray(jax.jit(lambda *a: entry.fn(*a, **s.kwargs))(*args))
    assert np.all(np.isnan(out[:2])) and np.all(np.isfinite(out[2:])), (name, out)
    mask = jnp.asarray(np.arange(len(labels)) >= 2)
    v, g = jax.jit(jax.value_and_grad(lambda z: jnp.sum(entry.fn(z, *args[1:], **s.kwargs, where=mask))))(
        jnp.asarray(args[0])
    )
    assert np.isfinite(float(v)) and np.all(np.isfinite(np.asarray(g))) and np.all(np.asarray(g)[:2] == 0), name


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: ldam_loss(Z, Y, class_counts=COUNTS, scale=float("inf")), r"ldam_loss: `scale` must be a finite"),
        (lambda: ldam_loss(Z, Y, class_counts=COUNTS, max_margin=float("nan")), r"`max_margin` must be a finite"),
        (
            lambda: logit_adjusted_cross_entropy(Z, Y, class_priors=COUNTS, prior_exponent=float("nan")),
            r"logit_adjusted_cross_entropy: `prior_exponent` must be a finite",
        ),
        (lambda: vs_loss(Z, Y, class_counts=COUNTS, gamma=float("inf")), r"vs_loss: `gamma` must be a finite"),
        (lambda: asymmetric_loss(Z, Z, gamma_neg=float("nan")), r"asymmetric_loss: `gamma_neg` must be a finite"),
        (lambda: asymmetric_loss(Z, Z, margin=float("nan")), r"asymmetric_loss: `margin` must lie in"),
        (
            lambda: asymmetric_single_label_loss(Z, Y, label_smoothing=float("nan")),
            r"asymmetric_single_label_loss: `label_smoothing` must lie in",
        ),
        (lambda: class_balanced_weights(COUNTS, beta=float("nan")), r"class_balanced_weights: `beta` must lie in"),
        (
            lambda: classification_aux_for_regression(Z[:, 0], Z, Z[:, 1], bin_edges=[0.0, 1.0], aux_weight=math.inf),
            r"`aux_weight` must be a finite",
        ),
    ],
)
def test_nan_and_inf_hyperparameters_are_rejected(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("name", [n for n in lossjax.available(family="imbalance") if n != "class_balanced_weights"])
def test_empty_batch(name):
    entry = lossjax.registry.get_entry(name)
    s = entry.sample()
    batched = range(len(s.args)) if s.batched_argnums is None else s.batched_argnums
    args = [np.asarray(a)[:0] if i in batched else a for i, a in enumerate(s.args)]
    kwargs = {k: (np.asarray(v)[:0] if k in s.batched_kwargs else v) for k, v in s.kwargs.items()}
    out = entry.fn(*args, **kwargs)
    if entry.kind == "batch":
        assert out.shape == () and out == 0, name
    else:
        assert out.shape[0] == 0, name
    # class_balanced_weights of no class: an empty weight vector.
    assert class_balanced_weights(np.zeros((0,), np.int32)).shape == (0,)


def test_cisir_closed_forms_and_constant_batches():
    f, y = jnp.array([1.0, 2.0, 3.0]), jnp.array([2.0, 4.0, 6.0])
    w = jnp.array([0.2, 0.3, 0.5])
    ones = jnp.ones(3)
    # perfectly correlated: only the weighted squared error remains (sum, or mean without normalized weights)
    assert_close(cisir_loss(f, y, w, ones, epsilon=0.0), 0.2 * 1 + 0.3 * 4 + 0.5 * 9)
    assert_close(cisir_loss(f, y, w, ones, epsilon=0.0, normalized_weights=False), (0.2 * 1 + 0.3 * 4 + 0.5 * 9) / 3)
    # anti-correlated, zero error weights: 1 - (-1) = 2
    assert_close(cisir_loss(f, -y, jnp.zeros(3), ones, epsilon=0.0, correlation_weight=0.5), 1.0)
    # constant predictions: correlation 0, finite (zero) gradient through the square root
    g = jax.grad(lambda p: cisir_loss(p, y, jnp.zeros(3), ones))(jnp.ones(3))
    assert np.all(np.isfinite(g))
    assert_close(cisir_loss(jnp.ones(3), y, jnp.zeros(3), ones), 1.0)
    # masking equals slicing (the means are over the valid rows)
    where = jnp.array([True, False, True])
    assert_close(cisir_loss(f, y * f, w, w, where=where), cisir_loss(f[::2], (y * f)[::2], w[::2], w[::2]))
    with pytest.raises(ValueError, match="cisir_loss: argument `weights` must have shape"):
        cisir_loss(f, y, w[:2], ones)


def test_generalized_focal_equity_weights():
    loss = jnp.array([2.0, 2.0, 2.0])
    p = jnp.array([0.0, 1.0, 0.5])
    assert_close(generalized_focal_equity_loss(loss, p), 2.0 * jnp.array([1.0, 0.5, (1 + 0.5**5) / 2]))
    assert_close(generalized_focal_equity_loss(loss, p, eta=0.0, gamma=1.0), 2.0 * (1 - p))
    g = jax.grad(lambda lk: jnp.sum(generalized_focal_equity_loss(loss, lk)))(p)
    assert np.all(g == 0)  # the likelihood weights are held constant


def test_gml_reduces_to_logit_adjusted_ce_and_trains_the_temperature_only_through_one_term():
    q = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    y = jnp.array([0, 1, 1])
    z = jnp.array([[0.1, -0.2], [0.3, 0.0], [0.0, 0.05]])
    keys = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    key_labels = jnp.array([0, 1])
    priors = jnp.array([0.7, 0.3])

    kw = dict(class_priors=priors, logit_temperature=0.5)

    def con_fn(t):  # one key per class at similarity s: log S = s / T in both contrastive terms
        return gml_loss(q, y, z, keys, key_labels, jnp.arange(3), jnp.array([7, 8]), ce_weight=0.0, temperature=t, **kw)

    @jax.jit
    def run(t):
        none = (jnp.arange(3), -1 - jnp.arange(3))  # no key is a query's own
        ce_only = gml_loss(q, y, z, q, y, *none, contrastive_weight=0.0, temperature=t, **kw)
        # query 0 owns the only key of class 0: its self-excluding logit of class 0 is -inf
        own = gml_loss(q, y, z, keys, key_labels, jnp.array([4, 5, 6]), jnp.array([4, 9]), ce_weight=0.0, **kw)
        return ce_only, con_fn(t), own, jax.grad(lambda u: jnp.sum(con_fn(u)))(t)

    ce_only, con, own, g = run(0.2)
    log_prior = jnp.log(priors)[None]
    la = -jnp.take_along_axis(jax.nn.log_softmax(z / 0.5 + log_prior), y[:, None], -1)[:, 0]
    assert_close(ce_only, la)

    def ce_s(t):
        return -jnp.take_along_axis(jax.nn.log_softmax(q @ keys.T / t + log_prior), y[:, None], -1)[:, 0]

    assert_close(con, 2 * ce_s(0.2))
    assert own[0] == np.inf and np.all(np.isfinite(own[1:]))
    # d/dT of one term only (the other holds T constant): the gradient of one CE(s / T)
    assert_close(g, jax.grad(lambda t: jnp.sum(ce_s(t)))(0.2))
    with pytest.raises(ValueError, match="gml_loss: argument `key_ids` must have shape"):
        gml_loss(q, y, z, q, y, jnp.arange(3), jnp.arange(2), class_priors=priors)


def test_sbcl_with_one_subclass_per_class_and_no_class_term_is_supervised_contrastive():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 3)).astype(np.float32)
    b = rng.normal(size=(4, 3)).astype(np.float32)
    y = jnp.array([0, 1, 0, 1])
    got = subclass_balancing_contrastive_loss(a, b, y, y, class_level_weight=0.0, temperature=0.5, base_temperature=0.5)
    # SupCon over the 2B anchors by hand: mean over positives p != i of log softmax_{j != i}(x_i . x_j / T)
    x = np.concatenate([a, b]).astype(np.float64)
    yy = np.concatenate([y, y])
    logits = x @ x.T / 0.5
    want = []
    for i in range(8):
        others = [j for j in range(8) if j != i]
        lse = np.log(np.sum(np.exp(logits[i, others])))
        pos = [j for j in others if yy[j] == yy[i]]
        want.append(-np.mean([logits[i, j] - lse for j in pos]))
    assert_close(got, np.mean(want))
    # masking a pair equals slicing it out
    where = jnp.array([True, True, False, True])
    sub = jnp.array([0, 2, 0, 1])
    assert_close(
        subclass_balancing_contrastive_loss(a, b, y, sub, where=where),
        subclass_balancing_contrastive_loss(a[where], b[where], y[where], sub[where]),
    )
