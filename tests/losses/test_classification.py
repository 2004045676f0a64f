"""Classification losses: golden values, closed forms, edge cases and errors.

Golden numbers: tests/reference/classification.json, written by
tests/reference/make_classification.py (optax 0.2.8, torch 2.13.0 and faithful
torch ports of the papers' code; see its docstring). The conformance suite
(tests/test_conformance.py) covers jit/vmap/where/extremes/bf16/x64/grad/export.
"""

import json
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from integer_labels import ONE_HOT_CASES

import lossjax
from lossjax import losses as L
from lossjax._targets import target_probs
from lossjax.testing import assert_close

REF = json.loads((pathlib.Path(__file__).parents[1] / "reference" / "classification.json").read_text())
# harmonic_loss's cases (written when it lived here) are run by test_proxies.py, beside the loss.
CASES = [pytest.param(c, id=f"{c['name']}-{i}") for i, c in enumerate(REF["cases"]) if c["name"] != "harmonic_loss"]
# The golden file keeps the argument names it was written with; today's names (the naming table).
RENAMED = {
    "focal_loss": {"alpha": "class_weights"},
    "poly1_cross_entropy": {"epsilon": "poly_coefficient"},
    "poly1_focal_loss": {"epsilon": "poly_coefficient", "alpha": "class_weights"},
    "multiclass_hinge_loss": {"form": "variant"},
    "multiclass_squared_hinge_loss": {"form": "variant"},
    "rankmixup_loss": {"form": "variant", "alpha": "ranking_weight"},
}


def run_case(case, dtype):
    """The lossjax loss on a golden case: (value, grads of the summed value wrt the diff args)."""
    fn = getattr(L, case["name"])
    args = [
        jnp.asarray(a, dtype) if k == "float" else jnp.asarray(a, jnp.int32)
        for a, k in zip(case["args"], case["kinds"], strict=True)
    ]
    renamed = RENAMED.get(case["name"], {})
    kwargs = {renamed.get(k, k): v for k, v in case["kwargs"].items()}
    if "key_seed" in kwargs:
        kwargs["key"] = jax.random.key(kwargs.pop("key_seed"))
    if isinstance(kwargs.get("class_weights"), list):
        kwargs["class_weights"] = jnp.asarray(kwargs["class_weights"], dtype)
    diff = case["diff"]

    def total(*d):
        a = list(args)
        for i, x in zip(diff, d, strict=True):
            a[i] = x
        return jnp.sum(fn(*a, **kwargs))

    value = fn(*args, **kwargs)
    grads = jax.grad(total, argnums=tuple(range(len(diff))))(*[args[i] for i in diff])
    return value, grads


def rel_err(actual, expected) -> float:
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(a - e) / np.maximum(np.abs(e), 1e-6)))


@pytest.mark.parametrize("case", CASES)
def test_golden_float64(case):
    with jax.enable_x64(True):
        value, grads = run_case(case, jnp.float64)
        assert value.dtype == jnp.float64
        # The GCE reference clamps p >= 1e-7; no golden input gets near it.
        assert_close(value, np.asarray(case["value"]), dtype=jnp.float64, rtol=1e-9, atol=1e-12, err=case["reference"])
        for g, e in zip(grads, case["grads"], strict=True):
            assert_close(
                g, np.asarray(e), dtype=jnp.float64, rtol=1e-9, atol=1e-12, err=case["reference"] + " (gradient)"
            )


# EnsLoss draws its normals in the compute dtype: float32 draws differ from the
# float64 draws of the golden file, so its float32 check is test_ensloss_gradient_is_the_drawn_derivative.
F32_CASES = [c for c in CASES if c.values[0]["name"] != "ensloss"]


@pytest.mark.parametrize("case", F32_CASES)
def test_golden_float32(case):
    value, grads = run_case(case, jnp.float32)
    assert value.dtype == jnp.float32
    assert_close(value, np.asarray(case["value"]), rtol=2e-5, atol=5e-6, err=case["reference"])
    for g, e in zip(grads, case["grads"], strict=True):
        assert_close(g, np.asarray(e), rtol=1e-4, atol=2e-6, err=case["reference"] + " (gradient)")


# ------------------------------- closed forms --------------------------------

RNG = np.random.default_rng(0)
Z = jnp.asarray(RNG.normal(size=(6, 4)) * 3, jnp.float32)
Y = jnp.asarray(RNG.integers(0, 4, size=(6,)), jnp.int32)
Q = jnp.asarray(RNG.dirichlet(np.ones(4), size=6), jnp.float32)
ONEHOT = jax.nn.one_hot(Y, 4)
P_Y = jnp.sum(jax.nn.softmax(Z) * ONEHOT, -1)
CE = L.softmax_cross_entropy(Z, Y)


def test_comp_sum_special_cases():
    assert_close(L.comp_sum_loss(Z, Y, tau=1.0), CE)
    assert_close(L.comp_sum_loss(Z, Y, tau=2.0), 1 - P_Y)
    assert_close(L.comp_sum_loss(Z, Y, tau=0.0), 1 / P_Y - 1, rtol=1e-5)
    # The tau -> 1 limit is continuous (no 0/0 at tau = 1 +- 1e-6).
    assert_close(L.comp_sum_loss(Z, Y, tau=1.0 + 1e-6), CE, rtol=1e-4)
    assert_close(L.comp_sum_loss(Z, Y, tau=1.0 - 1e-6), CE, rtol=1e-4)


def test_gce_is_comp_sum_with_tau_one_plus_q():
    # (1 - p^q)/q = (1 - p^(tau-1))/(tau-1) with tau = 1 + q: identical, not just up to scale.
    for q in (0.1, 0.7, 1.0):
        assert_close(L.generalized_cross_entropy(Z, Y, q=q), L.comp_sum_loss(Z, Y, tau=1 + q))
    assert_close(L.generalized_cross_entropy(Z, Y, q=0.0), CE)
    assert_close(L.generalized_cross_entropy(Z, Y, q=1.0), 1 - P_Y)


def test_focal_and_poly_reduce_to_cross_entropy():
    assert_close(L.focal_loss(Z, Y, gamma=0.0), CE)
    assert_close(L.poly1_cross_entropy(Z, Y, poly_coefficient=0.0), CE)
    assert_close(L.poly1_cross_entropy(Z, Y, poly_coefficient=2.0), CE + 2 * (1 - P_Y))
    assert_close(L.poly1_focal_loss(Z, Y, poly_coefficient=0.0, gamma=1.5), L.focal_loss(Z, Y, gamma=1.5))
    assert_close(L.label_smoothing_cross_entropy(Z, Y), L.softmax_cross_entropy(Z, Y, label_smoothing=0.1))
    assert_close(L.sparse_softmax_cross_entropy(Z, Y, k=4), CE)
    # focal class_weights (the paper's alpha): a scalar scales; per-class weights pick w_y.
    assert_close(L.focal_loss(Z, Y, class_weights=0.25), 0.25 * L.focal_loss(Z, Y))
    w = jnp.array([0.5, 1.0, 2.0, 3.0])
    assert_close(L.focal_loss(Z, Y, class_weights=w), w[Y] * L.focal_loss(Z, Y))
    assert_close(L.poly1_focal_loss(Z, Y, class_weights=w), w[Y] * L.poly1_focal_loss(Z, Y))
    # A distribution takes the expectation of w_c f(p_c) over q.
    per_class = jnp.stack([L.focal_loss(Z, jnp.full((6,), c, jnp.int32)) for c in range(4)], -1)
    assert_close(L.focal_loss(Z, Q, class_weights=w), jnp.sum(Q * w[None] * per_class, -1), rtol=1e-5, atol=1e-6)


def test_smooth_adversarial_comp_sum_closed_form():
    # Same logits: no penalty. A shift of every logit by c: margins unchanged, no penalty.
    assert_close(L.smooth_adversarial_comp_sum_loss(Z, Y, Z, tau=1.5), L.comp_sum_loss(Z, Y, tau=1.5))
    assert_close(L.smooth_adversarial_comp_sum_loss(Z, Y, Z + 3.0, tau=1.5), L.comp_sum_loss(Z, Y, tau=1.5), atol=1e-5)
    # Raising one wrong-class logit by 2: ||Delta' - Delta|| = 2.
    bump = jnp.where(jnp.arange(4)[None, :] == (Y[:, None] + 1) % 4, 2.0, 0.0)
    assert_close(L.smooth_adversarial_comp_sum_loss(Z, Y, Z + bump, nu=0.5), CE + 1.0, rtol=1e-5)
    g = jax.grad(lambda zp: jnp.sum(L.smooth_adversarial_comp_sum_loss(Z, Y, zp)))(Z)
    assert np.all(np.isfinite(g)) and np.all(np.asarray(g) == 0)  # zero-safe norm at z' = z


F_OF_PY = [
    ("focal_loss", {"gamma": 2.0}),
    ("poly1_cross_entropy", {}),
    ("poly1_focal_loss", {}),
    ("comp_sum_loss", {"tau": 0.5}),
    ("comp_sum_loss", {"tau": 1.5}),
    ("generalized_cross_entropy", {}),
    ("encouraging_loss", {}),
    ("squentropy", {}),
    ("multiclass_hinge_loss", {"variant": "crammer_singer"}),
    ("multiclass_hinge_loss", {"variant": "weston_watkins"}),
    ("multiclass_hinge_loss", {"variant": "one_vs_rest"}),
    ("multiclass_squared_hinge_loss", {}),
    ("multiclass_sparsemax_loss", {}),
    ("sparse_softmax_cross_entropy", {"k": 2}),
    ("one_vs_rest_loss", {}),
    ("smooth_adversarial_comp_sum_loss", {}),
]


@pytest.mark.parametrize(("name", "kw"), F_OF_PY, ids=[f"{n}-{i}" for i, (n, _) in enumerate(F_OF_PY)])
def test_integer_labels_equal_one_hot_distribution(name, kw):
    fn = getattr(L, name)
    extra = (Z + 0.5,) if name == "smooth_adversarial_comp_sum_loss" else ()
    assert_close(fn(Z, Y, *extra, **kw), fn(Z, ONEHOT, *extra, **kw), rtol=1e-5, atol=1e-6, err=name)


@pytest.mark.parametrize(("name", "kw"), F_OF_PY[:8], ids=[f"{n}-{i}" for i, (n, _) in enumerate(F_OF_PY[:8])])
def test_distribution_labels_are_the_expectation(name, kw):
    # f(z, q) = sum_c q_c f(z, c) for the losses that are functions of p_y.
    fn = getattr(L, name)
    per_class = jnp.stack([fn(Z, jnp.full((6,), c, jnp.int32), **kw) for c in range(4)], -1)
    assert_close(fn(Z, Q, **kw), jnp.sum(Q * per_class, -1), rtol=1e-5, atol=1e-5, err=name)


def test_target_probs_complement_is_exact():
    # 1 - p_y for a confident logit: 2 e^-30 / (1 + 2 e^-30); the naive 1 - p rounds to 0 in float32.
    z = jnp.array([[30.0, 0.0, 0.0]])
    expected = 2 * np.exp(-30.0) / (1 + 2 * np.exp(-30.0))
    for labels in (jnp.array([0]), jnp.array([[1.0, 0.0, 0.0]])):
        t = target_probs("t", z, labels)
        assert float(1 - jax.nn.softmax(z)[0, 0]) == 0.0
        np.testing.assert_allclose(float(t.one_minus_p[0, 0]), expected, rtol=1e-6)
    # focal at gamma = 1: (1 - p) (-log p) ~ (2 e^-30)^2, not 0.
    np.testing.assert_allclose(float(L.focal_loss(z, jnp.array([0]), gamma=1.0)[0]), expected**2, rtol=1e-5)


# ------------------------------ edges, gradients ------------------------------


def _softmax_focal_closed_form(z, y, gamma, eps=0.0):
    """Float64 value and gradient of (1 - p)^gamma (-log p) + eps (1 - p)^(gamma + 1), p = softmax(z)_y."""
    z = np.asarray(z, np.float64)
    log_probs = z - z.max(-1, keepdims=True)
    log_probs = log_probs - np.log(np.exp(log_probs).sum(-1, keepdims=True))
    probs = np.exp(log_probs)
    rows = np.arange(len(y))
    log_p, p = log_probs[rows, y], probs[rows, y]
    q = np.sum(np.where(np.eye(z.shape[-1])[y] > 0, 0, probs), -1)  # 1 - p without cancellation
    value = q**gamma * -log_p + eps * q ** (gamma + 1)
    # dL/dp, then dp/dz_k = p (onehot_k - p_k); at q = 0 the power's derivative is 0 (gamma > 0) or absent (gamma = 0).
    dq_pow = np.where(q > 0, gamma * np.where(q > 0, q, 1.0) ** (gamma - 1), 0.0)
    dl_dp = dq_pow * log_p - q**gamma / np.where(p > 0, p, 1) - eps * (gamma + 1) * q**gamma
    grad = (dl_dp * p)[:, None] * (np.eye(z.shape[-1])[y] - probs)
    # p = 0 (log p = -2e4): d(-log p)/dz_k = p_k - onehot_k directly (the product above is 0 * inf there).
    grad = np.where((p > 0)[:, None], grad, q[:, None] ** gamma * (probs - np.eye(z.shape[-1])[y]))
    return value, grad


@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 2.0])
def test_focal_at_certainty_closed_form(gamma):
    # Confidently right (loss and gradient 0), uniform, confidently wrong (loss 2e4, gradient -1 / +1).
    z = jnp.array([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0], [-1e4, 1e4, 0.0]])
    y = jnp.array([0, 1, 0])
    for f, eps in ((L.focal_loss, 0.0), (L.poly1_focal_loss, 1.0)):
        v, g = f(z, y, gamma=gamma), jax.grad(lambda z, f=f: jnp.sum(f(z, y, gamma=gamma)))(z)
        ev, eg = _softmax_focal_closed_form(z, np.asarray(y), gamma, eps)
        np.testing.assert_allclose(np.asarray(v), ev, rtol=1e-6, err_msg=f"{f.__name__} value")
        np.testing.assert_allclose(np.asarray(g), eg, rtol=1e-5, atol=1e-7, err_msg=f"{f.__name__} gradient")
    # Sigmoid focal (alpha 0.25): a_t (1 - p_t)^gamma softplus(-s z), s = 2y - 1, from float64 sigmoids.
    zb = np.array([1e4, -1e4, 30.0, -30.0, 0.0])
    yb = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
    s = 2 * yb - 1
    p_t = np.exp(-np.logaddexp(0.0, -s * zb))  # sigmoid(s z)
    q_t = np.exp(-np.logaddexp(0.0, s * zb))  # 1 - p_t, exact
    a_t = np.where(yb > 0, 0.25, 0.75)
    sp = np.logaddexp(0.0, -s * zb)
    value = a_t * q_t**gamma * sp
    # d/dz: a_t s [-gamma p_t q_t^gamma sp - q_t^(gamma + 1)]
    grad = a_t * s * (-gamma * p_t * q_t**gamma * sp - q_t ** (gamma + 1))
    zj, yj = jnp.asarray(zb, jnp.float32), jnp.asarray(yb, jnp.float32)
    np.testing.assert_allclose(np.asarray(L.sigmoid_focal_loss(zj, yj, gamma=gamma)), value, rtol=1e-5, atol=1e-30)
    g = jax.grad(lambda z: jnp.sum(L.sigmoid_focal_loss(z, yj, gamma=gamma)))(zj)
    # atol: the tail gradient at z = 30 is ~1e-14 (0 within float32 of the O(0.1) entries).
    np.testing.assert_allclose(np.asarray(g), grad, rtol=1e-5, atol=1e-12)
    assert float(L.sigmoid_focal_loss(zj[:1], yj[:1], gamma=gamma)[0]) == 0.0


def test_encouraging_loss_tail_and_bound():
    z = jnp.array([[0.0, 0.0], [30.0, 0.0]])
    y = jnp.array([0, 0])
    # p = 1/2: -log(1/2) + log(1/2) = 0. Conservative tail: (p - e)/(e - 1) + log(1 - e) at p ~ 1.
    v = L.encouraging_loss(z, y)
    assert_close(v, jnp.array([0.0, (1 - 0.75) / (0.75 - 1) + np.log(0.25)]), atol=1e-6)
    # Full bonus (log_end = 1) is clamped at log(1e-5), like the reference.
    assert_close(L.encouraging_loss(z, y, log_end=1.0)[1], np.log(1e-5), rtol=1e-6)
    # Gradients: at p = 1/2, d(-log p) + d log(1 - p) = 2 (p - onehot) = [-1, 1]; at p = 1 - e^-30 the
    # clamped bonus has no gradient (torch's clamp), leaving p - onehot = [-e^-30, e^-30]; the
    # conservative tail (slope 1 / (log_end - 1) = -4 in p) adds 4 p (1 - p): 5 e^-30 on class 1.
    t = math.exp(-30.0)
    g = jax.grad(lambda z: jnp.sum(L.encouraging_loss(z, y, log_end=1.0)))(z)
    assert_close(g, jnp.array([[-1.0, 1.0], [-t, t]]), rtol=1e-5, atol=1e-12)  # p - 1 is 0 in float32
    g = jax.grad(lambda z: jnp.sum(L.encouraging_loss(z, y)))(z)
    assert_close(g, jnp.array([[-1.0, 1.0], [-5 * t, 5 * t]]), rtol=1e-5, atol=1e-12)


def test_multiclass_sparsemax_loss_zero_iff_sparsemax_matches():
    z = jnp.array([[3.0, 0.0, 0.0], [0.2, 0.1, 0.0]])
    v = L.multiclass_sparsemax_loss(z, jnp.array([0, 0]))
    assert float(v[0]) == 0.0 and float(v[1]) > 0
    g = jax.grad(lambda z: jnp.sum(L.multiclass_sparsemax_loss(z, jnp.array([0, 0]))))(z)
    # gradient = sparsemax(z) - onehot: sparsemax([.2, .1, 0]) = [.4333, .3333, .2333]
    assert_close(g[1], jnp.array([0.4333333 - 1, 0.3333333, 0.2333333]), rtol=1e-5)


def test_sparse_softmax_keeps_target():
    z = jnp.array([[3.0, 1.0, 0.0, -1.0]])
    # k=1 keeps {0} and the target 3: log(e^3 + e^-1) + 1.
    assert_close(
        L.sparse_softmax_cross_entropy(z, jnp.array([3]), k=1), jnp.array([np.log(np.exp(3) + np.exp(-1)) + 1])
    )
    assert_close(L.sparse_softmax_cross_entropy(z, jnp.array([0]), k=1), jnp.array([0.0]))


def test_hinge_variants_hand_computed():
    z = jnp.array([[2.0, 1.5, 0.0]])
    y = jnp.array([0])
    assert_close(L.multiclass_hinge_loss(z, y), jnp.array([0.5]))  # max(1 + 1.5 - 2, 1 + 0 - 2, 0)
    assert_close(L.multiclass_hinge_loss(z, y, variant="weston_watkins"), jnp.array([0.5]))
    assert_close(L.multiclass_hinge_loss(z, y, variant="one_vs_rest"), jnp.array([0.0 + 2.5 + 1.0]))
    assert_close(L.multiclass_squared_hinge_loss(z, y, variant="one_vs_rest"), jnp.array([6.25 + 1.0]))
    assert_close(L.squared_hinge_loss(jnp.array([0.5, -3.0]), jnp.array([1.0, -1.0])), jnp.array([0.25, 0.0]))


def test_ensloss_gradient_is_the_drawn_derivative():
    z = jnp.array([0.4, -0.3, 2.0, -0.1, 0.7], jnp.float32)
    y = jnp.array([1, 1, 1, 0, 0], jnp.float32)
    key = jax.random.key(3)
    s = np.where(np.asarray(y) > 0, 1.0, -1.0) * np.asarray(z)
    g = -np.exp(np.asarray(jax.random.normal(key, (5,), jnp.float32), np.float64))
    g = np.maximum(np.sort(g), -1.0)
    expected = np.empty(5)
    expected[np.argsort(s, kind="stable")] = g
    expected = np.where(s > 1, expected / s, expected) - 1e-6
    grad = jax.grad(lambda z: L.ensloss(z, y, key=key))(z)
    np.testing.assert_allclose(np.asarray(grad), np.where(np.asarray(y) > 0, 1.0, -1.0) * expected / 5, rtol=1e-5)
    # Convexity: derivatives increase with the margin (before the tail); all strictly negative.
    order = np.argsort(s)
    d = (np.asarray(grad) * np.where(np.asarray(y) > 0, 1.0, -1.0))[order]
    assert np.all(d < 0) and np.all(np.diff(d[s[order] <= 1]) >= 0)
    # A new key gives a new loss.
    assert float(L.ensloss(z, y, key=jax.random.key(4))) != float(L.ensloss(z, y, key=key))


def test_anyloss_hard_predictions_give_the_metric():
    p = jnp.array([1.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    y = jnp.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    tp, fn, fp, tn = 2.0, 1.0, 1.0, 2.0
    exact = {
        "accuracy": (tp + tn) / 6,
        "f_beta": 2 * tp / (2 * tp + fn + fp),
        "balanced_accuracy": (tp / (tp + fn) + tn / (tn + fp)) / 2,
        "g_mean": np.sqrt(tp / (tp + fn) * tn / (tn + fp)),
        "mcc": (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)),
    }
    for metric, m in exact.items():
        assert_close(L.anyloss(p, y, metric=metric), 1 - m, rtol=1e-5, atol=1e-6, err=metric)
    assert_close(L.anyloss(p, y, metric="f_beta", beta=2.0), 1 - 5 * tp / (5 * tp + 4 * fn + fp), rtol=1e-5)
    # Everything masked: 0.
    assert float(L.anyloss(p, y, where=jnp.zeros(6, bool))) == 0.0


def test_registry_names_and_aliases():
    ours = lossjax.available(family="classification") + lossjax.available(family="noisy")
    for alias, name in (
        ("focal", "focal_loss"),
        ("gce", "generalized_cross_entropy"),
        ("l2_svm_loss", "multiclass_squared_hinge_loss"),
    ):
        assert lossjax.get(alias).name == name and name in ours
    cfg = lossjax.get("comp_sum_loss(tau=1.5)").to_config()
    assert lossjax.from_config(cfg).to_config() == {"name": "comp_sum_loss", "tau": 1.5}


# ------------------- regressions at the kinks, at -inf and at confident errors -------------------


@pytest.mark.parametrize("gamma", [2.0, 0.5, 0.0])
def test_focal_confidently_wrong_has_no_floor(gamma):
    # Logit gap 20 against the label: -log p = log(1 + e^20) = 20 + 2e-9, (1 - p)^gamma = 1 - O(e^-20).
    # A floor log p >= log(1e-7) would give 16.1 and a zero gradient (issue 20 mutation).
    z = jnp.array([[0.0, 20.0]])
    v, g = jax.value_and_grad(lambda z: L.focal_loss(z, jnp.array([0]), gamma=gamma).sum())(z)
    np.testing.assert_allclose(float(v), 20.0 + math.log1p(math.exp(-20.0)), rtol=1e-6)
    # d/dz_0 = -(1 - p)^gamma + gamma (1 - p)^(gamma - 1) p (-log p) p_1 ~ -1 + 20 gamma e^-20 = -1.
    np.testing.assert_allclose(np.asarray(g), [[-1.0, 1.0]], atol=1e-6)
    np.testing.assert_allclose(float(L.poly1_focal_loss(z, jnp.array([0]), gamma=gamma)[0]), 21.0, rtol=1e-6)


@pytest.mark.parametrize(
    ("gamma", "label", "expected"), [(2.0, 1.0, None), (2.0, 0.0, None), (0.0, 1.0, -0.5), (0.0, 0.0, 0.5)]
)
def test_sigmoid_focal_gradient_at_zero(gamma, label, expected):
    # Issue 19 item 1: the plain formula (1 - p_t)^gamma softplus(-s z), s = 2y - 1, at z = 0:
    # d/dz = s [-gamma (1/2)^(gamma+1) log 2 - (1/2)^(gamma+1)] = -s (log 2 / 4 + 1 / 8) = -/+0.29829 (gamma 2).
    if expected is None:
        expected = -(2 * label - 1) * (math.log(2.0) / 4 + 1 / 8)
    g = jax.grad(lambda z: L.sigmoid_focal_loss(z, jnp.array([label]), alpha=None, gamma=gamma).sum())(jnp.zeros(1))
    np.testing.assert_allclose(float(g[0]), expected, rtol=1e-6)

    # And beside the kink, against the plain formula by autodiff (no shared exp).
    def plain(z):
        p = jax.nn.sigmoid(z)
        p_t = label * p + (1 - label) * (1 - p)
        return jnp.sum((1 - p_t) ** gamma * (label * jax.nn.softplus(-z) + (1 - label) * jax.nn.softplus(z)))

    for z0 in (-1e-3, 1e-3, 0.7, -2.5):
        zz = jnp.array([z0])
        got = jax.grad(lambda z: L.sigmoid_focal_loss(z, jnp.array([label]), alpha=None, gamma=gamma).sum())(zz)
        np.testing.assert_allclose(np.asarray(got), np.asarray(jax.grad(plain)(zz)), rtol=1e-5, atol=1e-7)


def test_neg_inf_logit_eager_equals_jit():
    # Issue 20: a non-target logit of -inf gave NaN eagerly (0 x -inf) and the right value under jit.
    z, y = jnp.array([[2.0, -jnp.inf, 0.5]]), jnp.array([0])
    p0 = 1 / (1 + math.exp(-1.5))
    for fn in (L.softmax_cross_entropy, L.safe_softmax_cross_entropy, L.label_smoothing_cross_entropy):
        labels = y if fn is not L.safe_softmax_cross_entropy else jnp.array([[1.0, 0.0, 0.0]])
        kw = {"label_smoothing": 0.0} if fn is L.label_smoothing_cross_entropy else {}
        eager = fn(z, labels, **kw)
        np.testing.assert_allclose(np.asarray(eager), [-math.log(p0)], rtol=1e-6)  # optax: 0.20141328
        np.testing.assert_array_equal(
            np.asarray(jax.jit(lambda z, f=fn, t=labels, k=kw: f(z, t, **k))(z)), np.asarray(eager)
        )
        g = jax.grad(lambda z, f=fn, t=labels, k=kw: f(z, t, **k).sum())(z)
        np.testing.assert_allclose(np.asarray(g), [[p0 - 1, 0.0, 1 - p0]], rtol=1e-6)
    # sparsemax([2, -inf, 0.5]) = [1, 0, 0] (gap 1.5 > 1): zero loss, zero gradient, eagerly and under jit.
    for f in (L.multiclass_sparsemax_loss, jax.jit(L.multiclass_sparsemax_loss)):
        assert float(f(z, y)[0]) == 0.0
    assert np.all(np.asarray(jax.grad(lambda z: L.multiclass_sparsemax_loss(z, y).sum())(z)) == 0)
    # Label smoothing spreads over the predictable classes only: 0.9 on class 0, 0.1 on class 2.
    ls = L.softmax_cross_entropy(z, y, label_smoothing=0.2)
    np.testing.assert_allclose(float(ls[0]), -0.9 * math.log(p0) - 0.1 * math.log(1 - p0), rtol=1e-6)


# optax 0.2.8, float64: softmax_cross_entropy_with_integer_labels(Z_W, Y_W, where=W) and
# softmax_cross_entropy(Z_W, smooth_labels(one_hot(Y_W), 0.3, where=W), where=W), values and gradients.
Z_W = jnp.array([[1.0, 2.0, 0.5, -1.0], [0.3, -0.2, 3.0, 1.0]])
Y_W = jnp.array([0, 3])
W = jnp.array([[True, False, True, True], [True, True, False, True]])
OPTAX_CLASS_MASK = (
    [0.55495692, 0.5865523],
    [[-0.42590301, 0.0, 0.34820743, 0.07769558], [0.27622147, 0.16753679, 0.0, -0.44375826]],
)
OPTAX_CLASS_MASK_SMOOTHED = (
    [0.80495692, 0.7765523],
    [[-0.22590301, 0.0, 0.24820743, -0.02230442], [0.17622147, 0.06753679, 0.0, -0.24375826]],
)


@pytest.mark.parametrize(
    "name",
    ["softmax_cross_entropy", "safe_softmax_cross_entropy", "focal_loss", "poly1_cross_entropy", "poly1_focal_loss"],
)
def test_class_mask_where_is_optax(name):
    # Issue 11 item 5: a `where` of the logits' shape masks classes (optax); at gamma = 0 / epsilon = 0
    # focal and poly-1 are the cross-entropy, so the same optax numbers apply.
    kw = {
        "focal_loss": {"gamma": 0.0},
        "poly1_cross_entropy": {"poly_coefficient": 0.0},
        "poly1_focal_loss": {"gamma": 0.0, "poly_coefficient": 0.0},
    }.get(name, {})
    fn = getattr(L, name)
    labels = jax.nn.one_hot(Y_W, 4) if name == "safe_softmax_cross_entropy" else Y_W
    g = jax.grad(lambda z: fn(z, labels, where=W, **kw).sum())(Z_W)
    np.testing.assert_allclose(np.asarray(fn(Z_W, labels, where=W, **kw)), OPTAX_CLASS_MASK[0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(g), OPTAX_CLASS_MASK[1], rtol=1e-5, atol=1e-7)
    # Masked classes may hold anything (NaN, -inf): same value, zero gradient there.
    garbage = jnp.where(W, Z_W, jnp.nan)
    np.testing.assert_allclose(np.asarray(fn(garbage, labels, where=W, **kw)), OPTAX_CLASS_MASK[0], rtol=1e-6)
    g2 = jax.grad(lambda z: fn(z, labels, where=W, **kw).sum())(garbage)
    np.testing.assert_allclose(np.asarray(g2), OPTAX_CLASS_MASK[1], rtol=1e-5, atol=1e-7)
    # A `where` of the batch shape masks examples.
    np.testing.assert_allclose(
        np.asarray(fn(Z_W, labels, where=jnp.array([True, False]), **kw)), [fn(Z_W, labels, **kw)[0], 0.0], rtol=1e-6
    )


def test_class_mask_where_with_smoothing_is_optax():
    f = lambda z: L.softmax_cross_entropy(z, Y_W, where=W, label_smoothing=0.3)  # noqa: E731
    v, g = f(Z_W), jax.grad(lambda z: f(z).sum())(Z_W)
    np.testing.assert_allclose(np.asarray(v), OPTAX_CLASS_MASK_SMOOTHED[0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(g), OPTAX_CLASS_MASK_SMOOTHED[1], rtol=1e-5, atol=1e-7)
    f2 = lambda z: L.label_smoothing_cross_entropy(z, Y_W, where=W, label_smoothing=0.3)  # noqa: E731
    np.testing.assert_allclose(np.asarray(f2(Z_W)), OPTAX_CLASS_MASK_SMOOTHED[0], rtol=1e-6)
    g2 = jax.grad(lambda z: f2(z).sum())(Z_W)
    np.testing.assert_allclose(np.asarray(g2), OPTAX_CLASS_MASK_SMOOTHED[1], rtol=1e-5, atol=1e-7)
    # optax.smooth_labels(one_hot, 0.3, where=W): 0.7 + 0.1 on the label, 0.1 on the other unmasked classes.
    np.testing.assert_allclose(
        np.asarray(L.smooth_labels(jax.nn.one_hot(Y_W, 4), 0.3, where=W)), [[0.8, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.8]]
    )


# --------------------- out-of-range labels, hyperparameters, empty batches (issue 19) ---------------------


def _entry(name):
    return lossjax.registry.get_entry(name)


INTEGER_LABEL_LOSSES = [
    n
    for n in lossjax.available(family="classification")
    if _entry(n).kind == "per_example"
    and len(_entry(n).sample().args) > 1
    and np.issubdtype(np.asarray(_entry(n).sample().args[1]).dtype, np.integer)
]


@pytest.mark.parametrize("name", INTEGER_LABEL_LOSSES)
def test_out_of_range_labels_nan_unless_masked(name):
    entry = _entry(name)
    s = entry.sample()
    labels = np.array(s.args[1])
    labels[0], labels[1] = labels.max() + 7, -1
    args = (s.args[0], labels, *s.args[2:])
    # jitted calls (eager ones compile each op per shape)
    out = np.asarray(jax.jit(lambda *a: entry.fn(*a, **s.kwargs))(*args))
    assert np.all(np.isnan(out[:2])) and np.all(np.isfinite(out[2:])), (name, out)
    mask = jnp.asarray(np.arange(len(labels)) >= 2)
    v, g = jax.jit(jax.value_and_grad(lambda z: jnp.sum(entry.fn(z, *args[1:], **s.kwargs, where=mask))))(
        jnp.asarray(args[0])
    )
    assert np.isfinite(float(v)) and np.all(np.isfinite(np.asarray(g))) and np.all(np.asarray(g)[:2] == 0), name
    np.testing.assert_allclose(float(v), float(np.sum(out[2:])), rtol=1e-5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: L.hinge_loss(Z[:, 0], Z[:, 1], margin=math.nan), r"hinge_loss: `margin`"),
        (lambda: L.squared_hinge_loss(Z[:, 0], Z[:, 1], margin=math.inf), r"squared_hinge_loss: `margin`"),
        (lambda: L.multiclass_hinge_loss(Z, Y, margin=math.nan), r"multiclass_hinge_loss: `margin`"),
        (lambda: L.poly1_cross_entropy(Z, Y, poly_coefficient=math.inf), r"poly1_cross_entropy: `poly_coefficient`"),
        (lambda: L.poly1_focal_loss(Z, Y, poly_coefficient=math.nan), r"poly1_focal_loss: `poly_coefficient`"),
        (lambda: L.focal_loss(Z, Y, gamma=math.nan), r"focal_loss: `gamma` must be a finite"),
        (lambda: L.sigmoid_focal_loss(Z, Z, gamma=math.inf), r"sigmoid_focal_loss: `gamma`"),
        (lambda: L.softmax_cross_entropy(Z, Y, label_smoothing=math.nan), r"softmax_cross_entropy: `label_smoothing`"),
        (lambda: L.comp_sum_loss(Z, Y, tau=math.nan), r"comp_sum_loss: `tau`"),
        (lambda: L.smooth_labels(ONEHOT, math.nan), r"smooth_labels: `label_smoothing`"),
        (lambda: L.encouraging_loss(Z, Y, log_end=math.nan), r"encouraging_loss: `log_end`"),
    ],
)
def test_nan_and_inf_hyperparameters_are_rejected(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "name", [n for n in lossjax.available(family="classification") if _entry(n).kind != "function"]
)
def test_empty_batch(name):
    # Issue 19 item 9: an empty per-example array, 0 for a batch-level loss (or a clear error).
    entry = _entry(name)
    s = entry.sample()
    batched = range(len(s.args)) if s.batched_argnums is None else s.batched_argnums
    args = [np.asarray(a)[:0] if i in batched else a for i, a in enumerate(s.args)]
    out = np.asarray(entry.fn(*args, **s.kwargs))
    if entry.kind == "per_example":
        assert out.shape[0] == 0, (name, out.shape)
    else:
        assert out.shape == () and float(out) == 0.0, (name, out)


# ----------------------------------- errors -----------------------------------


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (
            lambda: L.focal_loss(jnp.float32(1.0), jnp.array(0)),
            ValueError,
            r"focal_loss: argument `logits` must have rank >= 1",
        ),
        (lambda: L.focal_loss(Z, Y[:3]), ValueError, r"focal_loss: integer `labels` must have shape"),
        (lambda: L.focal_loss(Z, Y.astype(jnp.float32)), ValueError, r"cast them to an integer dtype"),
        (lambda: L.focal_loss(Z.astype(jnp.int32), Y), TypeError, r"`logits` must have a float dtype"),
        (lambda: L.focal_loss(Z, Y, gamma=-1.0), ValueError, r"focal_loss: `gamma` must be >= 0"),
        (
            lambda: L.focal_loss(Z, Y, class_weights=jnp.ones(3)),
            ValueError,
            r"focal_loss: `class_weights` must have shape \(4,\) \(one per class\) or be a scalar, got \(3,\)",
        ),
        (
            lambda: L.poly1_focal_loss(Z, Y, class_weights=-1.0),
            ValueError,
            r"poly1_focal_loss: `class_weights` must be >= 0, got -1.0",
        ),
        (
            lambda: L.sigmoid_focal_loss(Z, Y),
            ValueError,
            r"sigmoid_focal_loss: `logits` and `labels` must have the same shape",
        ),
        (
            lambda: L.sigmoid_focal_loss(Z, Z, alpha=1.5),
            ValueError,
            r"sigmoid_focal_loss: `alpha` must lie in \[0.0, 1.0\]",
        ),
        (lambda: L.comp_sum_loss(Z, Y, tau=3.0), ValueError, r"comp_sum_loss: `tau` must lie in \[0.0, 2.0\]"),
        (lambda: L.generalized_cross_entropy(Z, Y, q=1.5), ValueError, r"generalized_cross_entropy: `q` must lie in"),
        (
            lambda: L.poly1_cross_entropy(Z, Y, poly_coefficient=jnp.ones(2)),
            ValueError,
            r"poly1_cross_entropy: argument `poly_coefficient` must have rank 0",
        ),
        (
            lambda: L.encouraging_loss(Z, Y, log_end=0.0),
            ValueError,
            r"encouraging_loss: `log_end` must lie in \(0.0, 1.0\]",
        ),
        (lambda: L.squentropy(Z[:, :1], Y * 0), ValueError, r"squentropy: `logits` must have at least 2 classes"),
        (
            lambda: L.multiclass_hinge_loss(Z, Y, variant="ovo"),
            ValueError,
            r"multiclass_hinge_loss: `variant` must be one of",
        ),
        (
            lambda: L.sparse_softmax_cross_entropy(Z, Y, k=0),
            ValueError,
            r"sparse_softmax_cross_entropy: `k` must be an integer >= 1, got 0",
        ),
        (
            lambda: L.sparse_softmax_cross_entropy(Z, Y, k=True),
            ValueError,
            r"sparse_softmax_cross_entropy: `k` must be an integer >= 1, got True",
        ),
        (
            lambda: L.sparse_softmax_cross_entropy(Z, Y, k=2.0),
            ValueError,
            r"sparse_softmax_cross_entropy: `k` must be an integer >= 1, got 2.0",
        ),
        (lambda: L.ensloss(Z, Z, key=jax.random.key(0)), ValueError, r"ensloss: argument `logits` must have rank 1"),
        (lambda: L.anyloss(Z[0], Z[0], metric="auc"), ValueError, r"anyloss: `metric` must be one of"),
        (lambda: L.anyloss(Y, Y), TypeError, r"anyloss: argument `probs` must have a float dtype"),
        (lambda: L.anyloss(Z[0], Z[1, :3]), ValueError, r"anyloss: `probs` and `labels` must have the same shape"),
        (
            lambda: L.smooth_adversarial_comp_sum_loss(Z, Y, Z[:, :3]),
            ValueError,
            r"`logits` and `perturbed_logits` must have the same shape",
        ),
        (lambda: L.focal_loss(Z, Y, where=jnp.ones(3, bool)), ValueError, r"focal_loss: `where` must be broadcastable"),
        (lambda: L.rankmixup_loss(Z, Y, Z[:, None], Z[:, None], variant="x"), ValueError, r"`variant` must be"),
        (
            lambda: L.rankmixup_loss(Z, Y, Z[:, None], Z[:, None], ranking_weight=-1.0),
            ValueError,
            r"rankmixup_loss: `ranking_weight` must be >= 0",
        ),
        (lambda: L.rankmixup_loss(Z, Y, Z, Z), ValueError, r"rankmixup_loss: argument `mixed_logits` must have rank 3"),
        (lambda: L.rankmixup_loss(Z, Y, Z[:3, None], Z[:3, None]), ValueError, r"`mixed_logits` must have shape \["),
    ],
)
def test_bad_inputs(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize(
    ("name", "old", "value"),
    [
        ("focal_loss", "alpha", 0.25),
        ("poly1_cross_entropy", "epsilon", 1.0),
        ("poly1_focal_loss", "epsilon", 1.0),
        ("poly1_focal_loss", "alpha", 0.25),
        ("multiclass_hinge_loss", "form", "weston_watkins"),
        ("multiclass_squared_hinge_loss", "form", "crammer_singer"),
    ],
)
def test_old_argument_names_are_gone(name, old, value):
    # One name per concept: the pre-consolidation names are not accepted silently.
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{old}'"):
        getattr(L, name)(Z, Y, **{old: value})
    with pytest.raises(TypeError, match=f"has no hyperparameter '{old}'"):
        lossjax.get({"name": name, old: value})


# --------------------- one-vs-rest: integer labels without a one-hot ---------------------


@pytest.mark.parametrize("case", sorted(ONE_HOT_CASES))
def test_one_vs_rest_integer_labels_equal_the_one_hot(case):
    """Integer labels: one row sum of softplus(-z_y) and softplus(z_j), j != y; a one-hot distribution: the
    weighted formula. Values and gradients agree at ties, |z| = 30 and 1e4 and -inf logits of other classes."""
    z, y = ONE_HOT_CASES[case]
    z, y = jnp.asarray(z, jnp.float32), jnp.asarray(y, jnp.int32)
    (v1, g1), (v2, g2) = (
        jax.jit(jax.value_and_grad(lambda z, t=t: jnp.sum(L.one_vs_rest_loss(z, t))))(z)
        for t in (y, jax.nn.one_hot(y, z.shape[-1]))
    )
    assert np.isfinite(v1) and np.all(np.isfinite(g1)), (v1, g1)
    np.testing.assert_allclose(v1, v2, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(g1, g2, rtol=2e-5, atol=1e-6)
