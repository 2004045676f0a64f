"""Margin softmaxes for face recognition (lossjax/losses/_margins.py).

Golden values: tests/reference/margins.json (tests/reference/make_margins.py:
pytorch-metric-learning 2.9.0 and faithful torch ports of the official code),
compared in float64 (runner: golden_margins.py). Hand-derived cases cover the
paths the references do not exercise (margin extensions, masking, state,
devices). The proxy and prototype losses are tested in test_proxies.py.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from golden_margins import REF, case_names, run_case, run_case_float32
from jax.sharding import PartitionSpec as P

import lossjax
from lossjax.losses import _margins as M
from lossjax.testing import assert_close

MARGIN_CASES = case_names(set(M.__all__))
assert MARGIN_CASES, "no golden case for the margin softmaxes"

F64 = {"rtol": 1e-9, "atol": 1e-10}


@pytest.mark.parametrize("name", MARGIN_CASES)
def test_golden_values_and_gradients(name):
    case = REF[name]
    with jax.enable_x64(True):
        out, grads = run_case(case)
        value = out[0] if isinstance(out, tuple) else out
        assert value.dtype == jnp.float64
        assert_close(value, np.asarray(case["value"]), err=f"{name}: value ({case['note']})", **F64)
        for k, g in case["grads"].items():
            # The face losses reach logits of ~64: gradients are compared relative to their scale.
            assert_close(
                grads[k], np.asarray(g), err=f"{name}: d/d{k}", rtol=1e-8, atol=1e-9 * max(1.0, np.abs(g).max())
            )
        if "new_state" in case:
            assert_close(jnp.stack(out[1]), np.asarray(case["new_state"]), err=f"{name}: new AdaFace state", **F64)


def test_golden_float32_close():
    """float32 inputs give float32 results within float32 tolerance of the float64 reference."""
    for name in ("arcface_s64_m0.5", "cosface_s64_m0.35", "adaface_ema", "sphereface2_C"):
        case = REF[name]
        value = run_case_float32(case)
        assert value.dtype == jnp.float32
        assert_close(value, np.asarray(case["value"]), err=name, rtol=2e-4, atol=2e-4)


# --------------------------- the shared margin helper ---------------------------


def test_margin_helper_closed_forms():
    c = jnp.array([0.9, 0.2, -0.5, -0.95])
    th = np.arccos(np.asarray(c, np.float64))
    # CosFace: no angle at all.
    assert_close(M._margin_target_cosine(c, additive=0.35), np.asarray(c) - 0.35)
    # ArcFace (insightface): cos(theta + m) up to theta = pi - m, then cos(theta) - m sin(m).
    m = 0.5
    expect = np.where(th <= np.pi - m, np.cos(th + m), np.cos(th) - m * np.sin(m))
    assert_close(M._margin_target_cosine(c, angular=m), expect, rtol=1e-5, atol=1e-6)
    # easy_margin: the margin only where cos > 0.
    expect = np.where(np.asarray(c) > 0, np.cos(th + m), np.asarray(c))
    assert_close(M._margin_target_cosine(c, angular=m, extension="easy"), expect, rtol=1e-5, atol=1e-6)
    # SphereFace: (-1)^k cos(m theta) - 2k, k = floor(m theta / pi); continuous and decreasing.
    k = np.floor(4 * th / np.pi)
    expect = (-1.0) ** k * np.cos(4 * th) - 2 * k
    assert_close(M._margin_target_cosine(c, multiplicative=4.0, extension="sphereface"), expect, rtol=1e-5, atol=1e-5)
    grid = jnp.linspace(-1.0, 1.0, 401)
    psi = np.asarray(M._margin_target_cosine(grid, multiplicative=3.0, angular=0.2, extension="sphereface"))
    assert np.all(np.diff(psi) > -1e-6), "psi must increase with cos (decrease with theta)"
    psi = np.asarray(M._margin_target_cosine(grid, angular=0.5))
    assert np.all(np.diff(psi) > -1e-6)
    # AdaFace clip: theta + m clipped into [eps, pi - eps].
    got = M._margin_target_cosine(jnp.array([0.999]), angular=-0.4, additive=0.0, extension="clip")
    assert_close(got, np.cos([1e-3]), rtol=1e-6, atol=1e-7)


_LIM32 = float(np.float32(1 - 1e-7))  # the documented clamp of the target cosine, as float32 rounds it


def _psi64(c, angular=0.0, multiplicative=1.0, extension="threshold"):
    """The margin target cosine in float64 numpy, straight from the formulas (clamped as documented)."""
    cc = float(np.clip(c, -_LIM32, _LIM32))
    th = math.acos(cc)
    if extension == "threshold":
        return math.cos(th + angular) if th <= math.pi - angular else c - angular * math.sin(angular)
    if extension == "easy":
        return math.cos(th + angular) if c > 0 else c
    if extension == "clip":
        return math.cos(min(max(th + angular, 1e-3), math.pi - 1e-3))
    k = math.floor(multiplicative * th / math.pi)
    return (-1) ** k * math.cos(multiplicative * th) - 2 * k


@pytest.mark.parametrize(
    ("kw", "slopes"),
    [
        # d psi / d c at c = (1, -1, 0.99999994): the clamp makes it 0 where the angle is taken from c; on the
        # linear branches (threshold past pi - m, easy margin for c <= 0) psi = c (- m sin m): slope 1.
        (dict(angular=0.5), (0.0, 1.0, 0.0)),
        (dict(angular=0.5, extension="easy"), (0.0, 1.0, 0.0)),
        (dict(multiplicative=4.0, extension="sphereface"), (0.0, 0.0, 0.0)),
        (dict(angular=0.3, extension="clip"), (0.0, 0.0, 0.0)),
    ],
)
def test_margin_helper_at_plus_minus_one(kw, slopes):
    """Closed forms at cos = +-1 (and the float32 cosine next to 1): value and gradient."""
    for c0, slope in zip((1.0, -1.0, 0.99999994), slopes, strict=True):
        v, g = jax.value_and_grad(lambda c: jnp.sum(M._margin_target_cosine(c, **kw)))(jnp.array([c0], jnp.float32))
        assert_close(v, _psi64(c0, **kw), err=f"{kw} at {c0}: value", rtol=1e-6, atol=1e-6)
        assert_close(g, [slope], err=f"{kw} at {c0}: gradient", rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "name", ["arcface_loss", "additive_margin_softmax", "sphereface_loss", "adaface_loss", "sphereface2_loss"]
)
def test_embedding_equal_to_its_class_weight(name):
    """cos = 1 exactly (and -1): the loss and its gradient equal float64 on the same inputs."""
    w = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    x = jnp.array([[2.0, 0.0, 0.0], [0.0, -3.0, 0.0]])
    y = jnp.array([0, 1])
    kw = {"angular_margin": 0.5} if name == "additive_margin_softmax" else {}
    fn = getattr(lossjax.losses, name)

    def f(x, w):
        out = fn(x, y, w, **kw)
        return jnp.sum(out[0] if isinstance(out, tuple) else out)

    vg = jax.jit(jax.value_and_grad(f, argnums=(0, 1)))  # eager calls compile each op per shape
    v, (gx, gw) = vg(x, w)
    with jax.enable_x64(True):
        v64, (gx64, gw64) = vg(x.astype(jnp.float64), w.astype(jnp.float64))
    # At x = +-|x| w_y the cosine's own gradient is 0: the clamp changes nothing but the value (by ~1e-4 of psi).
    assert_close(v, v64, err=f"{name}: value", rtol=1e-3, atol=1e-4)
    # Gradient terms of ~10 cancel on the sphere's normal: float32 leaves an ulp of them (1e-6) there.
    assert_close(gx, gx64, err=f"{name}: d/dx", rtol=1e-4, atol=1e-5)
    assert_close(gw, gw64, err=f"{name}: d/dw", rtol=1e-4, atol=1e-5)
    if name == "arcface_loss":  # closed form: row 0 psi = cos(0 + m), row 1 on the linear branch -1 - m sin m
        s, m = 64.0, 0.5
        rows = [(math.cos(m), [0.0, 0.0]), (-1.0 - m * math.sin(m), [0.0, 0.0])]
        expect = sum(math.log(math.exp(s * p) + sum(math.exp(s * o) for o in others)) - s * p for p, others in rows)
        assert_close(v64, expect, err="arcface at cos = +-1: closed form", rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_arcface_within_a_degree_of_its_class_weight(dtype):
    """Regression: the cosine clamp is 1 - 1e-7, not 1 - 1e-4 (which makes ArcFace ~10-45% too high and its
    gradient wrong within 0.81 degrees of the class weight). Closed form at delta = 0.5 degrees, another class
    30 degrees away: L = log(e^{s psi} + e^{s c1} + e^{s c2}) - s psi, psi = cos(delta + m), c1 = cos(delta) cos 30,
    c2 = 0; dL/d delta = s [(p_y - 1)(-sin(delta + m)) + p_1 (-sin(delta) cos 30)]."""
    s, m, d, r30 = 64.0, 0.5, math.radians(0.5), math.radians(30.0)
    w = np.array([[1, 0, 0, 0], [math.cos(r30), math.sin(r30), 0, 0], [0, 0, 1, 0]])
    x = np.array([[math.cos(d), 0, 0, math.sin(d)]])
    psi, c1 = math.cos(d + m), math.cos(d) * math.cos(r30)
    z = np.array([s * psi, s * c1, 0.0])
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    loss = math.log(np.exp(z - z.max()).sum()) + z.max() - s * psi
    dl_dd = s * ((p[0] - 1) * -math.sin(d + m) + p[1] * -math.sin(d) * math.cos(r30))
    tangent = np.array([-math.sin(d), 0, 0, math.cos(d)])  # d x / d delta on the unit circle
    with jax.enable_x64(dtype == jnp.float64):

        def f(x):
            return lossjax.losses.arcface_loss(x, jnp.array([0]), jnp.asarray(w, dtype), scale=s, margin=m)[0]

        v, g = jax.jit(jax.value_and_grad(f))(jnp.asarray(x, dtype))  # eager calls compile each op per shape
        g = np.asarray(g, np.float64)[0]
    tol = {"rtol": 1e-9, "atol": 1e-12} if dtype == jnp.float64 else {"rtol": 2e-3, "atol": 1e-6}
    assert_close(v, loss, err="value", dtype=dtype, **tol)
    assert_close(g @ tangent, dl_dd, err="d loss / d angle", dtype=dtype, **tol)
    # Radially 0; in float32 the ~2e3 terms through the angle cancel there to an ulp (~1e-4).
    assert_close(g @ x[0], 0.0, err="radial gradient", dtype=dtype, rtol=0, atol=1e-9 if dtype == jnp.float64 else 1e-3)


# ------------------------------ hand-derived cases ------------------------------


def test_cosface_and_arcface_hand_computed():
    w = jnp.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    x = jnp.array([[3.0, 4.0]])  # cos = (0.6, 0.8, -0.6)
    y = jnp.array([0])
    s, m = 2.0, 0.1
    logits = np.array([s * (0.6 - m), s * 0.8, -s * 0.6])
    expect = -(logits[0] - np.log(np.sum(np.exp(logits))))
    assert_close(lossjax.losses.cosface_loss(x, y, w, scale=s, margin=m), [expect])
    t = np.cos(np.arccos(0.6) + 0.3)
    logits = np.array([s * t, s * 0.8, -s * 0.6])
    expect = -(logits[0] - np.log(np.sum(np.exp(logits))))
    assert_close(lossjax.losses.arcface_loss(x, y, w, scale=s, margin=0.3), [expect])
    # The combined margin with (1, m, 0) is ArcFace, with (1, 0, m) CosFace.
    assert_close(
        lossjax.losses.additive_margin_softmax(x, y, w, scale=s, angular_margin=0.3, additive_margin=0.0),
        lossjax.losses.arcface_loss(x, y, w, scale=s, margin=0.3),
    )
    assert_close(
        lossjax.losses.additive_margin_softmax(x, y, w, scale=s, additive_margin=m),
        lossjax.losses.cosface_loss(x, y, w, scale=s, margin=m),
    )


def test_normalized_softmax_is_ce_of_scaled_cosines():
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(4, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 3, 0])
    cos = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (w / np.linalg.norm(w, axis=1, keepdims=True)).T
    expect = lossjax.losses.softmax_cross_entropy(jnp.asarray(7.0 * cos), y)
    assert_close(lossjax.losses.normalized_softmax_loss(x, y, w, scale=7.0), expect, rtol=1e-5, atol=1e-6)


def test_sphereface2_bias_and_stable_formula():
    # C = 10: the paper's initializer by hand.
    z = 0.7 / (0.3 * 9)
    ay, ai = 40 * (2 * 0.125 - 1 - 0.4), 40 * (2 * 0.125 - 1 + 0.4)
    b = math.log(2 * z) - ai - math.log(1 - z + math.sqrt((1 - z) ** 2 + 4 * z * math.exp(ay - ai)))
    assert abs(M.sphereface2_initial_bias(10) - b) < 1e-12
    # C = 2 (z > 1): 1 - z + sqrt(.) cancels in the reference's form; ours equals the exact value
    # 4 z E / (sqrt((1 - z)^2 + 4 z E) + z - 1), computed here with high precision.
    from decimal import Decimal, getcontext

    getcontext().prec = 50
    zd = Decimal(7) / Decimal(3)
    e = 4 * zd * (Decimal(-32)).exp()
    arg = e / (((1 - zd) ** 2 + e).sqrt() + zd - 1)
    exact = float((2 * zd).ln() + 14 - arg.ln())
    assert abs(M.sphereface2_initial_bias(2) - exact) < 1e-9
    # An explicit bias equals the default when it is the initial value; gradients reach it.
    rng = np.random.default_rng(1)
    x, w, y = rng.normal(size=(4, 3)), rng.normal(size=(5, 3)), np.array([0, 1, 2, 3])
    b0 = M.sphereface2_initial_bias(5)
    assert_close(lossjax.losses.sphereface2_loss(x, y, w, jnp.float32(b0)), lossjax.losses.sphereface2_loss(x, y, w))
    gb = jax.grad(lambda b: jnp.sum(lossjax.losses.sphereface2_loss(x, y, w, b)))(jnp.float32(b0))
    assert np.isfinite(float(gb)) and float(gb) != 0.0


def _jit_vg(fn):
    """(x, *rest) -> ((sum fn, fn), d sum fn / dx), compiled once (eager calls compile each op per shape)."""
    return jax.jit(jax.value_and_grad(lambda x, *rest: (jnp.sum(fn(x, *rest)), fn(x, *rest)), has_aux=True))


def test_sphereface2_forward_only_adjustment():
    """stop_gradient_adjustment=True (reference): the gradient is that of r cos + b, not of g."""
    rng = np.random.default_rng(2)
    x, w, y = rng.normal(size=(3, 4)), rng.normal(size=(4, 4)), np.array([0, 1, 2])
    # jitted value-and-gradient (eager calls compile each op per shape)
    (_, v_ref), g_ref = _jit_vg(lambda x: lossjax.losses.sphereface2_loss(x, y, w))(x)
    (_, v_true), g_true = _jit_vg(lambda x: lossjax.losses.sphereface2_loss(x, y, w, stop_gradient_adjustment=False))(x)
    assert_close(v_ref, v_true)
    assert not np.allclose(g_ref, g_true)
    # Without the detach the gradient is the true one (finite differences, float64).
    from jax.test_util import check_grads

    with jax.enable_x64(True):
        f = jax.jit(lambda x, w: jnp.sum(lossjax.losses.sphereface2_loss(x, y, w, stop_gradient_adjustment=False)))
        check_grads(f, (jnp.asarray(x), jnp.asarray(w)), order=1, modes=("rev",), eps=1e-4, atol=1e-4, rtol=1e-4)


def test_adaface_state_update_and_masking():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 4)).astype(np.float32) * rng.uniform(0.5, 3, size=(6, 1)).astype(np.float32)
    w = rng.normal(size=(3, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    state = M.AdaFaceState(jnp.float32(5.0), jnp.float32(2.0))
    _, new = lossjax.losses.adaface_loss(x, y, w, state=state, decay=0.9)
    norms = np.clip(np.linalg.norm(x, axis=1), 0.001, 100)
    assert_close(new.batch_mean, 0.1 * norms.mean() + 0.9 * 5.0)
    assert_close(new.batch_std, 0.1 * norms.std(ddof=1) + 0.9 * 2.0)
    # Masked examples stay out of the statistics; an all-masked batch leaves the state unchanged.
    mask = np.array([True, True, False, True, False, True])
    _, new_m = lossjax.losses.adaface_loss(x, y, w, state=state, decay=0.9, where=mask)
    _, new_s = lossjax.losses.adaface_loss(x[mask], y[mask], w, state=state, decay=0.9)
    assert_close(new_m, new_s)
    loss0, same = lossjax.losses.adaface_loss(x, y, w, state=state, where=np.zeros(6, bool))
    assert_close(same, state) and np.all(np.asarray(loss0) == 0)
    # The default state is the reference's initial buffers (20, 100).
    _, a = lossjax.losses.adaface_loss(x, y, w)
    _, b = lossjax.losses.adaface_loss(x, y, w, state=M.AdaFaceState.initial())
    assert_close(a, b)
    # The state carries no gradient; it round-trips through jit.
    f = jax.jit(lambda x, s: lossjax.losses.adaface_loss(x, y, w, state=s))
    assert_close(f(x, state), lossjax.losses.adaface_loss(x, y, w, state=state))


def test_partial_fc_equals_the_margin_softmax_on_its_sampled_classes():
    rng = np.random.default_rng(6)
    c, d = 20, 5
    w = rng.normal(size=(c, d)).astype(np.float32)
    y = np.array([3, 7, 3, 11, 7, 3], np.int32)
    x = (w[y] + 0.5 * rng.normal(size=(6, d))).astype(np.float32)
    key = jax.random.key(42)
    kw = {"scale": 16.0, "angular_margin": 0.3}
    # jitted value-and-gradient, the key an argument (eager calls compile each op per shape)
    pfc = _jit_vg(lambda w, k: lossjax.losses.partial_fc_sampled_softmax(x, y, w, key=k, sample_rate=0.25, **kw))
    # The sampled classes are the proxies that receive a gradient: ceil(0.25 * 20) = 5 of them,
    # including the three batch labels.
    (_, value), g = pfc(w, key)
    g = np.asarray(g)
    sampled = np.flatnonzero(np.any(g != 0, axis=1))
    assert len(sampled) == 5 and {3, 7, 11} <= set(sampled.tolist())
    remap = {cls: i for i, cls in enumerate(sampled)}
    amsoftmax = jax.jit(lambda y, w: lossjax.losses.additive_margin_softmax(x, y, w, additive_margin=0.0, **kw))
    expect = amsoftmax(np.array([remap[v] for v in y]), w[sampled])
    assert_close(value, expect)
    # Another key draws other negatives; sample_rate=1 is the full softmax.
    g2 = np.asarray(pfc(w, jax.random.key(7))[1])
    assert set(np.flatnonzero(np.any(g2 != 0, axis=1)).tolist()) != set(sampled.tolist())
    assert_close(
        jax.jit(lambda w: lossjax.losses.partial_fc_sampled_softmax(x, y, w, key=key, sample_rate=1.0, **kw))(w),
        amsoftmax(y, w),
    )
    # Too few sampled classes for the batch's labels: reported in debug mode.
    checked = lossjax.checked(lossjax.losses.partial_fc_sampled_softmax, jit=False)
    with pytest.raises(ValueError, match="a batch label was not sampled"):
        checked(x, y, w, key=key, sample_rate=0.1, **kw)


# ----------------------------------- errors -----------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: lossjax.losses.arcface_loss(np.zeros((4,)), np.zeros(4, int), np.zeros((3, 4))),
            "arcface_loss: argument `embeddings` must have rank 2",
        ),
        (
            lambda: lossjax.losses.arcface_loss(np.zeros((4, 2)), np.zeros(3, int), np.zeros((3, 2))),
            r"arcface_loss: `labels` must have shape \(N,\)=\(4,\)",
        ),
        (
            lambda: lossjax.losses.cosface_loss(np.zeros((4, 2)), np.zeros(4, int), np.zeros((3, 5))),
            r"cosface_loss: `proxies` must have shape \(C, D\) with D=2",
        ),
        (
            lambda: lossjax.losses.cosface_loss(np.zeros((4, 2)), np.zeros(4), np.zeros((3, 2))),
            "cosface_loss: argument `labels` must have a int dtype",
        ),
        (
            lambda: lossjax.losses.arcface_loss(np.zeros((4, 2)), np.zeros(4, int), np.zeros((3, 2)), margin=2.0),
            r"arcface_loss: `margin` must lie in \[0.0, 1.57",
        ),
        (
            lambda: lossjax.losses.cosface_loss(np.zeros((4, 2)), np.zeros(4, int), np.zeros((3, 2)), scale=0.0),
            "cosface_loss: `scale` must be > 0",
        ),
        (
            lambda: lossjax.losses.sphereface_loss(np.zeros((4, 2)), np.zeros(4, int), np.zeros((3, 2)), margin=0.5),
            "sphereface_loss: `margin` must be >= 1",
        ),
        (
            lambda: lossjax.losses.additive_margin_softmax(
                np.zeros((4, 2)), np.zeros(4, int), np.zeros((3, 2)), multiplicative_margin=2.0, easy_margin=True
            ),
            "easy_margin=True` needs multiplicative_margin=1",
        ),
        (
            lambda: lossjax.losses.adaface_loss(np.zeros((4, 2)), np.zeros(4, int), np.zeros((3, 2)), state=3.0),
            "adaface_loss: `state` must be an AdaFaceState",
        ),
        (
            lambda: lossjax.losses.adaface_loss(np.zeros((4, 2)), np.zeros(4, int), np.zeros((3, 2)), decay=1.5),
            r"adaface_loss: `decay` must lie in \[0.0, 1.0\]",
        ),
        (
            lambda: lossjax.losses.sphereface2_loss(np.zeros((4, 2)), np.zeros(4, int), np.zeros((1, 2))),
            "sphereface2_loss: `proxies` must have at least 2 classes",
        ),
        (
            lambda: lossjax.losses.sphereface2_loss(np.zeros((4, 2)), np.zeros(4, int), np.zeros((3, 2)), variant="B"),
            r"sphereface2_loss: `variant` must be one of \['C', 'A', 'M'\]",
        ),
        (
            lambda: lossjax.losses.sphereface2_loss(np.zeros((4, 2)), np.zeros(4, int), np.zeros((3, 2)), np.zeros(2)),
            r"sphereface2_loss: `bias` must be a scalar or shape \(1,\)",
        ),
        (
            lambda: lossjax.losses.sphereface2_initial_bias(True),
            r"sphereface2_initial_bias: `num_classes` must be an integer >= 2, got True",
        ),
        (
            lambda: lossjax.losses.normalized_softmax_loss(
                np.zeros((4, 2)), np.zeros(4, int), np.zeros((3, 2)), where=np.ones(4)
            ),
            "normalized_softmax_loss: `where` must be a boolean mask",
        ),
    ],
)
def test_bad_inputs(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# ------------------------------------ devices ------------------------------------


def _mesh():
    return jax.make_mesh((8,), ("batch",), axis_types=(jax.sharding.AxisType.Auto,))


def _labelled_batch(seed=0, n=16, d=4, c=3):
    rng = np.random.default_rng(seed)
    proxies = rng.normal(size=(c, d)).astype(np.float32)
    labels = (rng.permutation(n) % c).astype(np.int32)
    emb = (proxies[labels] + 0.8 * rng.normal(size=(n, d))).astype(np.float32)
    return emb, labels, proxies


def test_adaface_across_devices_equal_single_device():
    if jax.device_count() < 8:
        pytest.fail("needs 8 (simulated) devices")
    emb, labels, proxies = _labelled_batch(1)
    emb = emb * np.random.default_rng(2).uniform(0.5, 3.0, size=(16, 1)).astype(np.float32)
    state = M.AdaFaceState(jnp.float32(2.0), jnp.float32(0.7))

    def single(x):
        loss, new = lossjax.losses.adaface_loss(x, labels, proxies, state=state, decay=0.5)
        return jnp.sum(loss), new

    def sharded(x):
        def local(x, y):
            loss, new = lossjax.losses.adaface_loss(x, y, proxies, state=state, decay=0.5, axis_name="batch")
            return loss, new

        loss, new = jax.shard_map(local, mesh=_mesh(), in_specs=(P("batch"), P("batch")), out_specs=(P("batch"), P()))(
            x, labels
        )
        return jnp.sum(loss), new

    (v1, s1), g1 = jax.jit(jax.value_and_grad(single, has_aux=True))(emb)  # eager compiles each op
    (v8, s8), g8 = jax.jit(jax.value_and_grad(sharded, has_aux=True))(emb)
    assert_close((v8, s8), (v1, s1), rtol=1e-5, atol=1e-5)
    assert_close(g8, g1, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------
# Large-margin softmax (issue 15): closed forms the conformance values do not state.
# ---------------------------------------------------------------------------


def test_large_margin_softmax_margin_one_is_the_linear_softmax():
    rng = np.random.default_rng(7)
    x, w = rng.normal(size=(5, 4)), rng.normal(size=(3, 4))
    y = np.array([0, 1, 2, 0, 1])
    got = jax.jit(lambda x, w: lossjax.losses.large_margin_softmax_loss(x, y, w, margin=1, scale=1.5))(x, w)
    logits = 1.5 * x @ w.T
    want = np.log(np.exp(logits).sum(1)) - logits[np.arange(5), y]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_large_margin_softmax_with_unit_weights_is_sphereface():
    rng = np.random.default_rng(8)
    x, w = rng.normal(size=(5, 4)), rng.normal(size=(3, 4))
    w = w / np.linalg.norm(w, axis=1, keepdims=True)
    y = np.array([0, 1, 2, 0, 1])
    both = jax.jit(
        lambda x, w: (
            lossjax.losses.large_margin_softmax_loss(x, y, w, margin=3),
            lossjax.losses.sphereface_loss(x, y, w, margin=3.0),
        )
    )
    got, want = both(x, w)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_large_margin_softmax_needs_an_integer_margin():
    with pytest.raises((ValueError, TypeError), match="large_margin_softmax_loss"):
        lossjax.losses.large_margin_softmax_loss(np.ones((2, 2)), np.array([0, 1]), np.eye(2), margin=2.5)
