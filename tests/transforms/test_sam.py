"""SAM family: closed forms, reference parity, composition, Flax NNX, safety, errors.

Golden values: tests/reference/sam.json (tests/reference/make_sam.py ports the
official update rules to float64 torch). Closed forms use the quadratic
L(w) = 1/2 w^T A w (A diagonal), whose gradient A w is known exactly.
"""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import lossjax
from lossjax.testing import assert_close

T = lossjax.transforms
REF = json.loads((pathlib.Path(__file__).resolve().parents[1] / "reference" / "sam.json").read_text())

A = np.array([1.0, 4.0, 0.5])
W0 = np.array([1.0, -1.0, 2.0])


def quad(w):
    return 0.5 * jnp.sum(jnp.asarray(A, w.dtype) * jnp.square(w))


quad_grad = jax.grad(quad)


def one_step(tx, params, grad_fn, state=None, updates=None):
    state = tx.init(params) if state is None else state
    updates = grad_fn(params) if updates is None else updates
    return tx.update(updates, state, params, grad_fn=grad_fn)


# ----------------------------- closed forms -----------------------------


def test_sam_ascent_is_rho_g_over_norm():
    rho = 0.3
    w = jnp.asarray(W0, jnp.float32)
    seen = []

    def grad_fn(p):
        seen.append(p)
        return quad_grad(p)

    out, _ = one_step(T.sam(rho=rho), w, grad_fn)
    g = A * W0
    e = rho * g / np.linalg.norm(g)
    np.testing.assert_allclose(np.asarray(seen[-1]) - W0, e, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out, A * (W0 + e), rtol=1e-6)


def test_asam_closed_form():
    rho, eta = 0.2, 0.01
    out, _ = one_step(T.asam(rho=rho, eta=eta), jnp.asarray(W0, jnp.float32), quad_grad)
    g = A * W0
    t = np.abs(W0) + eta
    e = rho * t**2 * g / np.linalg.norm(t * g)
    np.testing.assert_allclose(out, A * (W0 + e), rtol=1e-6)
    # asam is the only adaptive entry point: sam has no `adaptive` / `eta`
    for bad in ({"adaptive": True}, {"eta": eta}):
        with pytest.raises(TypeError, match=r"unexpected keyword argument"):
            T.sam(rho=rho, **bad)


def test_gsam_closed_form():
    rho, alpha = 0.2, 0.4
    out, _ = one_step(T.gsam(rho=rho, alpha=alpha), jnp.asarray(W0, jnp.float32), quad_grad)
    g = A * W0
    gp = A * (W0 + rho * g / np.linalg.norm(g))
    u = gp / np.linalg.norm(gp)
    expected = gp - alpha * (g - (g @ u) * u)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    # the gap-descent part is orthogonal to g_p: <out - g_p, g_p> = 0
    assert abs(np.dot(np.asarray(out) - gp, gp)) < 1e-5


def test_looksam_reuses_orthogonal_component():
    rho, alpha, interval = 0.2, 0.7, 3
    tx = T.looksam(rho=rho, interval=interval, alpha=alpha)
    w0 = jnp.asarray(W0, jnp.float32)
    out0, state = one_step(tx, w0, quad_grad)
    g = A * W0
    gs = A * (W0 + rho * g / np.linalg.norm(g))
    gv = gs - (g @ gs) / (g @ g) * g
    np.testing.assert_allclose(out0, gs, rtol=1e-6)
    np.testing.assert_allclose(state.g_v, gv, rtol=1e-5, atol=1e-6)
    # step 1 at another point: g1 + alpha |g1|/|gv| gv, no second gradient
    w1 = np.array([0.5, 0.3, -1.0])
    out1, state = one_step(tx, jnp.asarray(w1, jnp.float32), quad_grad, state)
    g1 = A * w1
    np.testing.assert_allclose(out1, g1 + alpha * np.linalg.norm(g1) / np.linalg.norm(gv) * gv, rtol=1e-5)
    assert int(state.count) == 2


def test_friendly_sam_two_steps_closed_form():
    rho, sigma, decay = 0.2, 1.0, 0.9
    tx = T.friendly_sam(rho=rho, sigma=sigma, decay=decay)
    w1 = np.array([0.5, 0.3, -1.0])
    out0, state = one_step(tx, jnp.asarray(W0, jnp.float32), quad_grad)
    g0 = A * W0
    np.testing.assert_allclose(out0, A * (W0 + rho * g0 / np.linalg.norm(g0)), rtol=1e-6)
    out1, state = one_step(tx, jnp.asarray(w1, jnp.float32), quad_grad, state)
    g1 = A * w1
    d = g1 - sigma * g0  # m_0 = g_0
    np.testing.assert_allclose(out1, A * (w1 + rho * d / np.linalg.norm(d)), rtol=1e-5)
    np.testing.assert_allclose(
        state.momentum, decay * g0 + (1 - decay) * g1, rtol=1e-6
    )  # new = decay old + (1-decay) g


def test_awp_layerwise_relative_perturbation():
    gamma = 0.1
    params = {"w": jnp.array([[3.0, 0.0], [0.0, 4.0]]), "b": jnp.array([2.0, -1.0])}

    def loss(p):
        return 0.5 * jnp.sum(jnp.array([[1.0, 2.0], [3.0, 4.0]]) * p["w"] ** 2) + 0.5 * jnp.sum(p["b"] ** 2)

    out, _ = one_step(T.awp(gamma=gamma), params, jax.grad(loss))
    w = np.array([[3.0, 0.0], [0.0, 4.0]])
    gw = np.array([[1.0, 2.0], [3.0, 4.0]]) * w
    v = gamma * np.linalg.norm(w) * gw / np.linalg.norm(gw)
    np.testing.assert_allclose(out["w"], np.array([[1.0, 2.0], [3.0, 4.0]]) * (w + v), rtol=1e-6)
    np.testing.assert_allclose(out["b"], [2.0, -1.0])  # rank-1 leaf: unperturbed


def test_rwp_noise_scale_and_mixing():
    gamma, alpha = 0.05, 0.25
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4000, 3)).astype(np.float32) * np.array([1.0, 2.0, 3.0], np.float32)
    b = rng.normal(size=(4000,)).astype(np.float32)
    params = {"w": jnp.asarray(w), "b": jnp.asarray(b)}

    def loss(p):
        return 0.5 * jnp.sum(p["w"] ** 2) + 0.5 * jnp.sum(p["b"] ** 2)  # gradient = params

    tx = T.random_weight_perturbation(gamma=gamma, alpha=alpha, seed=3)
    out, state = one_step(tx, params, jax.grad(loss))
    # out = (1 - a) w + a (w + e)  =>  e = (out - w) / a
    e_w = (np.asarray(out["w"]) - w) / alpha
    e_b = (np.asarray(out["b"]) - b) / alpha
    np.testing.assert_allclose(e_w.std(0), gamma * np.linalg.norm(w, axis=0), rtol=0.06)
    np.testing.assert_allclose(e_b.std(), gamma * np.linalg.norm(b), rtol=0.06)
    assert abs(e_w.mean()) < 3 * gamma * np.linalg.norm(w, axis=0).max() / np.sqrt(w.shape[0])
    # a new key every step, deterministic given the seed
    out2, _ = one_step(tx, params, jax.grad(loss), state)
    assert not np.allclose(out2["w"], out["w"])
    again, _ = one_step(T.random_weight_perturbation(gamma=gamma, alpha=alpha, seed=3), params, jax.grad(loss))
    np.testing.assert_array_equal(again["w"], out["w"])


def test_mesa_ema_recursion():
    tx = T.mesa(decay=0.9)
    p0 = {"w": jnp.array([1.0, 2.0])}
    state = tx.init(p0)
    ema = np.array([1.0, 2.0])
    for t in range(1, 4):
        p = {"w": jnp.array([1.0, 2.0]) * (t + 1)}
        u, state = tx.update({"w": jnp.array([0.5, 0.5])}, state, p)
        np.testing.assert_array_equal(u["w"], [0.5, 0.5])  # updates pass through
        ema = 0.9 * ema + 0.1 * np.array([1.0, 2.0]) * (t + 1)
        np.testing.assert_allclose(T.mesa_params(state)["w"], ema, rtol=1e-6)
    chained = optax.chain(T.mesa(decay=0.5), optax.sgd(0.1))
    np.testing.assert_array_equal(T.mesa_params(chained.init(p0))["w"], [1.0, 2.0])


def test_saf_bank_reads_outputs_from_delay_visits_ago():
    tx = T.saf(num_examples=5, num_classes=2, delay=2)
    state = tx.init(None)
    idx = jnp.array([4, 1], jnp.int32)
    history = []
    for v in range(4):
        t, valid = T.saf_targets(state, idx)
        if v < 2:
            assert not np.any(valid)
        else:
            assert np.all(valid)
            np.testing.assert_array_equal(t, history[v - 2])
        logits = jnp.array([[v, -v], [10.0 + v, 0.0]], jnp.float32)
        history.append(np.asarray(logits))
        _, state = tx.update({}, state, logits=logits, indices=idx)
    np.testing.assert_array_equal(state.seen, [0, 4, 0, 0, 4])
    # untouched examples stay unrecorded
    assert not bool(T.saf_targets(state, jnp.array([0], jnp.int32))[1][0])


def test_trajectory_loss_matches_float64_kl_and_its_gradient():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 5)) * 3
    t = rng.normal(size=(4, 5)) * 3
    tau = 2.0

    def softmax(a):
        a = a - a.max(-1, keepdims=True)
        e = np.exp(a)
        return e / e.sum(-1, keepdims=True)

    p, q = softmax(t / tau), softmax(z / tau)
    ref = np.sum(p * (np.log(p) - np.log(q)), -1)
    got = lossjax.losses.trajectory_loss(jnp.asarray(z, jnp.float32), jnp.asarray(t, jnp.float32), temperature=tau)
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=1e-6)
    gz, gt = jax.grad(lambda a, b: jnp.sum(lossjax.losses.trajectory_loss(a, b, temperature=tau)), argnums=(0, 1))(
        jnp.asarray(z, jnp.float32), jnp.asarray(t, jnp.float32)
    )
    np.testing.assert_allclose(gz, (q - p) / tau, rtol=1e-4, atol=1e-6)  # d KL / dz = (q - p) / tau
    np.testing.assert_array_equal(gt, 0.0)  # targets are stop-gradient


# ------------------------ parity with the references ------------------------


def _ref_inputs():
    inp = REF["inputs"]
    params = {
        "w": jnp.asarray(inp["params"]["weight"], jnp.float32),
        "b": jnp.asarray(inp["params"]["bias"], jnp.float32),
    }
    return params, jnp.asarray(inp["x"], jnp.float32), jnp.asarray(inp["y"], jnp.float32)


def _ref_loss(p, x, y):
    z = x @ p["w"]
    if "b" in p:
        z = z + p["b"][None, :]
    return jnp.mean(jnp.square(jnp.tanh(z) - y))


def _ref_grad(d):
    out = {"w": np.asarray(d["weight"])}
    if "bias" in d:
        out["b"] = np.asarray(d["bias"])
    return out


def _rel_err(got, ref):
    return max(float(np.max(np.abs(np.asarray(got[k], np.float64) - ref[k])) / np.max(np.abs(ref[k]))) for k in ref)


PARITY_TOL = 1e-6  # float32 vs the float64 references; largest observed (1.1e-7) is in tests/reference/README.md


@pytest.mark.parametrize("ref_name", ["sam_davda54", "sam_google_research"])
def test_sam_matches_references(ref_name):
    params, x, y = _ref_inputs()
    gf = jax.grad(lambda p: _ref_loss(p, x, y))
    out, _ = one_step(T.sam(rho=REF[ref_name]["rho"]), params, gf)
    assert _rel_err(out, _ref_grad(REF[ref_name]["grad"])) < PARITY_TOL


def test_asam_matches_samsung_reference():
    params, x, y = _ref_inputs()
    params = {"w": params["w"]}  # the reference scales only 'weight' tensors: compare on a bias-free model
    d = REF["asam_samsung"]
    gf = jax.grad(lambda p: _ref_loss(p, x, y))
    out, _ = one_step(T.asam(rho=d["rho"], eta=d["eta"]), params, gf)
    assert _rel_err(out, _ref_grad(d["grad"])) < PARITY_TOL


def test_gsam_matches_zhuang_reference():
    params, x, y = _ref_inputs()
    d = REF["gsam_zhuang"]
    gf = jax.grad(lambda p: _ref_loss(p, x, y))
    out, _ = one_step(T.gsam(rho=d["rho"], alpha=d["alpha"]), params, gf)
    assert _rel_err(out, _ref_grad(d["grad"])) < PARITY_TOL


def test_friendly_sam_matches_nblt_reference_over_two_steps():
    params, x, y = _ref_inputs()
    x2, y2 = jnp.asarray(REF["inputs"]["x2"], jnp.float32), jnp.asarray(REF["inputs"]["y2"], jnp.float32)
    d = REF["fsam_nblt"]
    tx = T.friendly_sam(
        rho=d["rho"], sigma=d["sigma"], decay=d["lmbda"]
    )  # the reference's lmbda: m <- lmbda m + (1 - lmbda) g
    state = tx.init(params)
    for (bx, by), ref in zip([(x, y), (x2, y2)], d["grads"], strict=True):
        gf = jax.grad(lambda p, bx=bx, by=by: _ref_loss(p, bx, by))
        out, state = tx.update(gf(params), state, params, grad_fn=gf)  # params fixed, as the reference run
        assert _rel_err(out, _ref_grad(ref)) < PARITY_TOL


def test_awp_matches_dongxian_reference():
    params, x, y = _ref_inputs()
    d = REF["awp_dongxian"]
    gf = jax.grad(lambda p: _ref_loss(p, x, y))
    out, _ = one_step(T.awp(gamma=d["gamma"]), params, gf)
    assert _rel_err(out, _ref_grad(d["grad"])) < PARITY_TOL


def test_sam_matches_optax_contrib_sam_opaque_over_steps():
    params, x, y = _ref_inputs()
    gf = jax.grad(lambda p: _ref_loss(p, x, y))
    rho = 0.1
    ours = optax.chain(T.sam(rho=rho, epsilon=1e-30), optax.sgd(0.1, momentum=0.9))
    theirs = optax.contrib.sam(
        optax.sgd(0.1, momentum=0.9),
        optax.chain(optax.contrib.normalize(), optax.sgd(rho)),
        sync_period=2,
        opaque_mode=True,
    )
    p1, p2 = params, params
    s1, s2 = ours.init(p1), theirs.init(p2)
    for _ in range(4):
        u1, s1 = ours.update(gf(p1), s1, p1, grad_fn=gf)
        u2, s2 = theirs.update(gf(p2), s2, p2, grad_fn=lambda p, _: gf(p))
        p1, p2 = optax.apply_updates(p1, u1), optax.apply_updates(p2, u2)
        assert_close(p1, p2, rtol=1e-5, atol=1e-6, err="lossjax sam vs optax.contrib.sam")


def test_sam_value_and_grad_is_the_transform_and_keeps_first_pass_aux():
    params, x, y = _ref_inputs()

    def loss(p, x, y):
        z = jnp.tanh(x @ p["w"] + p["b"][None, :])
        stats = jnp.mean(z, axis=0)  # BatchNorm-style statistics of this pass
        return jnp.mean(jnp.square(z - y)), stats

    (value, stats), g = T.sam_value_and_grad(loss, rho=0.05, has_aux=True)(params, x, y)
    (v0, s0), _ = jax.value_and_grad(loss, has_aux=True)(params, x, y)
    np.testing.assert_allclose(value, v0)
    np.testing.assert_allclose(stats, s0)  # from the first pass at w, not at w + e
    assert _rel_err(g, _ref_grad(REF["sam_davda54"]["grad"])) < PARITY_TOL
    g_jit = jax.jit(T.sam_value_and_grad(loss, rho=0.05, has_aux=True))(params, x, y)[1]
    assert_close(g_jit, g, err="jit")


# ----------------------------- LookSAM skips -----------------------------


def test_looksam_really_skips_the_second_gradient():
    calls = []

    def count(_):
        calls.append(1)

    def grad_fn(p):
        jax.debug.callback(count, p[0])
        return quad_grad(p)

    tx = optax.chain(T.looksam(rho=0.1, interval=3), optax.sgd(0.01))

    def step_fn(w, state):
        u, state = tx.update(quad_grad(w), state, w, grad_fn=grad_fn)
        return optax.apply_updates(w, u), state

    step = jax.jit(step_fn)

    w = jnp.asarray(W0, jnp.float32)
    state = tx.init(w)
    for _ in range(7):
        w, state = step(w, state)
    jax.effects_barrier()
    assert len(calls) == 3  # steps 0, 3, 6
    # and the jaxpr holds the second gradient inside one branch of a cond only
    jaxpr = jax.make_jaxpr(step_fn)(w, state)
    conds = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "cond"]
    assert len(conds) == 1
    has_callback = sorted("debug_callback" in str(b) for b in conds[0].params["branches"])
    assert has_callback == [False, True]


# ------------------------------ toy problem ------------------------------


def _uv_loss(w):
    return 0.5 * jnp.square(w[0] * w[1] - 1.0)


def _sharpness(w):
    return float(jnp.linalg.eigvalsh(jax.hessian(_uv_loss)(w))[-1])


def _train(tx, steps=1500):
    g = jax.grad(_uv_loss)
    w = jnp.array([3.0, 0.1])

    def body(c, _):
        w, s = c
        u, s = tx.update(g(w), s, w, grad_fn=g)
        return (optax.apply_updates(w, u), s), None

    (w, _), _ = jax.jit(lambda w: jax.lax.scan(body, (w, tx.init(w)), None, length=steps))(w)
    return w


def test_sam_finds_the_flat_minimum_sgd_the_sharp_one():
    """Minima of (uv - 1)^2 / 2 lie on uv = 1 with sharpness u^2 + v^2: flattest at (1, 1).

    From the unbalanced start (3, 0.1) gradient descent stops at the sharp
    minimum near (3, 1/3) (sharpness ~9.2); SAM ends at the flat one (~2).
    """
    w_sgd = _train(optax.sgd(0.1))
    w_sam = _train(optax.chain(T.sam(rho=0.1), optax.sgd(0.1)))
    assert float(_uv_loss(w_sgd)) < 1e-6 and float(_uv_loss(w_sam)) < 1e-3
    assert _sharpness(w_sgd) > 8.5
    assert _sharpness(w_sam) < 2.3
    np.testing.assert_allclose(w_sam, [1.0, 1.0], atol=0.1)


# ------------------------------ composition ------------------------------


def _all_variants():
    return {
        "sam": T.sam(rho=0.05),
        "asam": T.asam(rho=0.5),
        "gsam": T.gsam(rho=0.05, alpha=0.2),
        "looksam": T.looksam(rho=0.05, interval=2),
        "friendly_sam": T.friendly_sam(rho=0.05),
        "awp": T.awp(gamma=0.01, min_ndim=1),
        "random_weight_perturbation": T.random_weight_perturbation(gamma=0.01),
    }


@pytest.mark.parametrize("name", list(_all_variants()))
def test_zero_gradient_gives_no_nan(name):
    tx = _all_variants()[name]
    params = {"w": jnp.zeros((3, 2)), "b": jnp.ones((2,))}
    zero_grad = lambda p: jax.tree.map(jnp.zeros_like, p)  # noqa: E731
    state = tx.init(params)
    for _ in range(3):
        out, state = tx.update(zero_grad(params), state, params, grad_fn=zero_grad)
        assert all(
            np.all(np.isfinite(x)) for x in jax.tree.leaves((out, state)) if jnp.issubdtype(x.dtype, jnp.floating)
        )
        assert all(np.all(x == 0) for x in jax.tree.leaves(out))


def _bf16_variants():
    # radii large enough that the perturbation moves the update far more than bf16 rounding does
    return {
        "sam": T.sam(rho=0.2),
        "asam": T.asam(rho=1.0),
        "gsam": T.gsam(rho=0.2, alpha=0.3),
        "looksam": T.looksam(rho=0.2, interval=2),
        "friendly_sam": T.friendly_sam(rho=0.2),
        "awp": T.awp(gamma=0.3, min_ndim=1),
        "random_weight_perturbation": T.random_weight_perturbation(gamma=0.3),
    }


def _rel_to_max(a, b):
    return max(
        float(jnp.max(jnp.abs(jnp.asarray(x, jnp.float32) - y)) / jnp.max(jnp.abs(y)))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


BF16_TOL = 1e-2  # measured <= 7.3e-3 (rwp; the others <= 3.9e-3): the perturbed point w + e is stored in bf16


@pytest.mark.parametrize("name", list(_bf16_variants()))
def test_bf16_params(name):
    tx = optax.chain(_bf16_variants()[name], optax.sgd(0.1))
    params, x, y = _ref_inputs()
    p16 = jax.tree.map(lambda a: a.astype(jnp.bfloat16), params)
    p32 = jax.tree.map(lambda a: a.astype(jnp.float32), p16)  # the same values in float32
    gf = jax.grad(lambda p: _ref_loss(jax.tree.map(lambda a: a.astype(jnp.float32), p), x, y))
    u16, s16 = jax.jit(lambda p, s: tx.update(gf(p), s, p, grad_fn=gf))(p16, tx.init(p16))
    u32, _ = tx.update(gf(p32), tx.init(p32), p32, grad_fn=gf)
    for a in jax.tree.leaves(u16):
        assert a.dtype == jnp.bfloat16
    for a in jax.tree.leaves(s16):
        assert a.dtype != jnp.float64
    err = _rel_to_max(u16, u32)
    assert err < BF16_TOL, f"{name}: bf16 vs f32 {err:.1e}"
    # the perturbation is really applied: plain SGD is far outside the tolerance
    sgd = jax.tree.map(lambda g: -0.1 * g, gf(p32))
    assert _rel_to_max(u32, sgd) > 1.5 * BF16_TOL, f"{name}: the update is (nearly) plain SGD"
    assert _rel_to_max(u16, sgd) > BF16_TOL, f"{name}: the bf16 update is (nearly) plain SGD"


def test_clipping_and_loss_scaling_compose_in_the_chain():
    params, x, y = _ref_inputs()
    gf = jax.grad(lambda p: _ref_loss(p, x, y))
    # clipping after SAM clips the SAM gradient
    tx = optax.chain(T.sam(rho=0.05), optax.clip_by_global_norm(0.01), optax.sgd(1.0))
    u, _ = tx.update(gf(params), tx.init(params), params, grad_fn=gf)
    g_sam, _ = one_step(T.sam(rho=0.05), params, gf)
    norm = optax.tree.norm(g_sam)
    assert_close(u, jax.tree.map(lambda a: -a * 0.01 / norm, g_sam), err="clip after sam")
    # static loss scaling: scaled gradients in, unscale later in the chain -> same update
    scale = 1024.0
    gs = jax.grad(lambda p: scale * _ref_loss(p, x, y))
    for variant in ("sam", "gsam", "looksam", "friendly_sam", "asam"):
        tx_scaled = optax.chain(_all_variants()[variant], optax.scale(1.0 / scale), optax.sgd(0.1))
        tx_plain = optax.chain(_all_variants()[variant], optax.sgd(0.1))
        u1, _ = tx_scaled.update(gs(params), tx_scaled.init(params), params, grad_fn=gs)
        u2, _ = tx_plain.update(gf(params), tx_plain.init(params), params, grad_fn=gf)
        assert_close(u1, u2, rtol=1e-4, atol=1e-7, err=f"{variant}: loss scaling")


def test_inject_hyperparams_schedules_rho():
    params, x, y = _ref_inputs()
    gf = jax.grad(lambda p: _ref_loss(p, x, y))
    tx = optax.inject_hyperparams(T.gsam)(rho=optax.linear_schedule(0.0, 0.1, 10), alpha=0.3)
    state = tx.init(params)
    step = jax.jit(lambda s: tx.update(gf(params), s, params, grad_fn=gf))  # one compile for the ten steps
    out0, state = step(state)
    assert_close(out0, gf(params), err="rho=0 at step 0 gives the plain gradient")
    for _ in range(9):
        _, state = step(state)
    np.testing.assert_allclose(state.hyperparams["rho"], 0.09, rtol=1e-5)


def test_registry_optimizer_spec_chains_sam():
    tx = lossjax.optimizer(
        ["sam(rho=0.1)", "clip_by_global_norm(max_norm=100.0)", {"name": "sgd", "learning_rate": 0.1}]
    )
    assert lossjax.from_config(tx.to_config()).to_config() == tx.to_config()
    params, x, y = _ref_inputs()
    gf = jax.grad(lambda p: _ref_loss(p, x, y))
    u, _ = tx.update(gf(params), tx.init(params), params, grad_fn=gf)
    g_sam, _ = one_step(T.sam(rho=0.1), params, gf)
    assert_close(u, jax.tree.map(lambda a: -0.1 * a, g_sam), err="spec chain")


# ------------------------------ Flax NNX ------------------------------


class _Net(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(1, 4, kernel_size=(3, 3), rngs=rngs)
        self.bn = nnx.BatchNorm(4, rngs=rngs)
        self.out = nnx.Linear(4 * 4 * 4, 3, rngs=rngs)

    def __call__(self, x):
        h = jax.nn.relu(self.bn(self.conv(x)))
        return self.out(h.reshape(h.shape[0], -1))


def _nnx_setup(tx):
    model = _Net(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(6, 4, 4, 1)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 3, size=(6,)), jnp.int32)
    return model, optimizer, x, y


def _nnx_step(model, optimizer, x, y):
    def loss_fn(m):
        return jnp.mean(lossjax.losses.softmax_cross_entropy(m(x), y))

    loss, grads = nnx.value_and_grad(loss_fn)(model)  # first pass: updates BatchNorm statistics
    graphdef, _, rest = nnx.split(model, nnx.Param, ...)
    rest = nnx.as_pure(rest)

    def grad_fn(params):  # second pass: gradient only; its statistics are discarded
        return jax.grad(lambda p: loss_fn(nnx.merge(graphdef, p, rest)))(params)

    optimizer.update(model, grads, grad_fn=grad_fn)
    return loss


def test_nnx_optimizer_train_step_matches_pure_sam_and_keeps_first_pass_stats():
    model, optimizer, x, y = _nnx_setup(optax.chain(T.sam(rho=0.05), optax.sgd(0.1)))
    graphdef, params0, rest0 = nnx.split(model, nnx.Param, ...)
    params0, rest0 = nnx.as_pure(params0), nnx.as_pure(rest0)
    step = nnx.jit(_nnx_step)
    step(model, optimizer, x, y)

    # expected: first pass in train mode (BN batch statistics), SAM gradient, one SGD step
    def pure_loss(p, rest):
        m = nnx.merge(graphdef, p, rest)
        out = jnp.mean(lossjax.losses.softmax_cross_entropy(m(x), y))
        return out, nnx.as_pure(nnx.state(m, nnx.BatchStat))

    @jax.jit  # the expected step in one compile (eager: every op of the net and its gradients on its own)
    def expected_sam(params0, rest0):
        (_, stats_first), g = jax.value_and_grad(pure_loss, has_aux=True)(params0, rest0)
        grad_fn = lambda p: jax.grad(lambda q: pure_loss(q, rest0)[0])(p)  # noqa: E731
        return stats_first, one_step(T.sam(rho=0.05), params0, grad_fn, updates=g)[0]

    stats_first, g_sam = expected_sam(params0, rest0)
    expected = jax.tree.map(lambda p, d: p - 0.1 * d, params0, g_sam)
    assert_close(nnx.as_pure(nnx.state(model, nnx.Param)), expected, rtol=1e-5, atol=1e-6, err="nnx SAM step")
    stats = nnx.as_pure(nnx.state(model, nnx.BatchStat))
    assert_close(stats, stats_first, err="BatchNorm statistics come from the first pass")
    assert not np.allclose(jax.tree.leaves(stats)[0], jax.tree.leaves(nnx.as_pure(rest0))[0])  # they did change


@pytest.mark.parametrize("name", list(_all_variants()))
def test_every_variant_flax_train_step_exports_for_cpu_cuda_tpu(name):
    model, optimizer, x, y = _nnx_setup(optax.chain(_all_variants()[name], optax.sgd(0.1)))
    graphdef, state = nnx.split((model, optimizer))

    def step(state, x, y):
        m, opt = nnx.merge(graphdef, state)
        loss = _nnx_step(m, opt, x, y)
        return loss, nnx.state((m, opt))

    exported = jax.export.export(jax.jit(step), platforms=("cpu", "cuda", "tpu"))(state, x, y)
    assert exported.platforms == ("cpu", "cuda", "tpu")
    loss, _ = exported.call(state, x, y)
    assert np.isfinite(loss)


def test_trajectory_transforms_in_a_flax_step():
    """SAF and MESA: one forward/backward per step; the state carries the targets."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(8, 4, 4, 1)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 3, size=(8,)), jnp.int32)
    idx = jnp.arange(8, dtype=jnp.int32)
    model = _Net(nnx.Rngs(0))
    tx = optax.chain(T.saf(num_examples=8, num_classes=3, delay=1), T.mesa(decay=0.9), optax.sgd(0.05))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer):
        saf_state = optimizer.opt_state[0]
        targets, valid = T.saf_targets(saf_state, idx)

        def loss_fn(m):
            logits = m(x)
            ce = jnp.mean(lossjax.losses.softmax_cross_entropy(logits, y))
            traj = lossjax.masked_mean(lossjax.losses.trajectory_loss(logits, targets, where=valid), valid)
            return ce + 0.3 * traj, (logits, traj)

        (_, (logits, traj)), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
        optimizer.update(model, grads, logits=logits, indices=idx)
        return traj, valid

    traj0, valid0 = step(model, optimizer)
    assert not np.any(valid0) and float(traj0) == 0.0
    traj1, valid1 = step(model, optimizer)
    assert np.all(valid1) and float(traj1) > 0.0
    # the jitted SAF + MESA train step lowers for CPU, CUDA and TPU
    graphdef, state = nnx.split((model, optimizer))

    def pure_step(state):
        m, opt = nnx.merge(graphdef, state)
        return step(m, opt), nnx.state((m, opt))

    jax.export.export(jax.jit(pure_step), platforms=("cpu", "cuda", "tpu"))(state)
    ema = nnx.as_pure(T.mesa_params(optimizer.opt_state))
    params = nnx.as_pure(nnx.state(model, nnx.Param))
    assert jax.tree.structure(ema) == jax.tree.structure(params)
    assert not np.allclose(jax.tree.leaves(ema)[-1], jax.tree.leaves(params)[-1])  # lags the weights


# --------------------------------- errors ---------------------------------


@pytest.mark.parametrize(
    ("factory", "kwargs", "match"),
    [
        (T.sam, {"rho": -0.1}, r"sam: `rho` must be >= 0"),
        (T.sam, {"epsilon": 0.0}, r"sam: `epsilon` must be > 0"),
        (T.sam, {"ascent_gradient": "per_device"}, r"sam: `ascent_gradient` must be one of \['global', 'local'\]"),
        (T.awp, {"ascent_gradient": "mean"}, r"awp: `ascent_gradient` must be one of \['global', 'local'\]"),
        (T.sam, {"axis_name": 3}, r"sam: `axis_name` must be None"),
        (T.asam, {"eta": -1.0}, r"asam: `eta` must be >= 0"),
        (T.gsam, {"alpha": float("nan")}, r"gsam: `alpha` must be a finite number"),
        (T.looksam, {"interval": 0}, r"looksam: `interval` must be an integer >= 1, got 0"),
        (T.looksam, {"interval": 2.5}, r"looksam: `interval` must be an integer >= 1"),
        (T.looksam, {"interval": True}, r"looksam: `interval` must be an integer >= 1, got True"),
        (T.friendly_sam, {"decay": 1.5}, r"friendly_sam: `decay` must lie in \[0.0, 1.0\]"),
        (T.awp, {"gamma": -1.0}, r"awp: `gamma` must be >= 0"),
        (T.awp, {"min_ndim": -1}, r"awp: `min_ndim` must be an integer >= 0"),
        (T.random_weight_perturbation, {"alpha": 2.0}, r"random_weight_perturbation: `alpha` must lie in"),
        (T.random_weight_perturbation, {"seed": 1.5}, r"random_weight_perturbation: `seed` must be an integer"),
        (T.mesa, {"decay": 1.0}, r"mesa: `decay` must lie in \[0.0, 1.0\)"),
        (T.saf, {"num_examples": 0, "num_classes": 3}, r"saf: `num_examples` must be an integer >= 1"),
        (T.saf, {"num_examples": 4, "num_classes": 3, "dtype": "int8"}, r"saf: `dtype` must be one of"),
    ],
)
def test_factory_validates_hyperparameters(factory, kwargs, match):
    with pytest.raises(ValueError, match=match):
        factory(**kwargs)


@pytest.mark.parametrize(
    ("factory", "value"),
    [
        (T.sam, 0.05),
        (T.asam, 0.5),
        (T.gsam, 0.05),
        (T.looksam, 0.05),
        (T.friendly_sam, 0.05),
        (T.awp, 0.01),
        (T.random_weight_perturbation, 0.01),
        (T.mesa, 0.9),
        (T.saf, 4),
    ],
)
def test_hyperparameters_are_keyword_only(factory, value):
    with pytest.raises(TypeError, match=r"positional argument"):
        factory(value)


@pytest.mark.parametrize("name", ["sam", "asam", "gsam", "awp"])
def test_stateless_variants_keep_an_optax_empty_state(name):
    params = {"w": jnp.ones((3, 2)), "b": jnp.ones((2,))}
    state = _all_variants()[name].init(params)
    assert isinstance(state, optax.EmptyState)
    # the states that do hold something hold only what is read
    assert T.MESAState._fields == ("ema",)
    assert T.LookSAMState._fields == ("count", "g_v")


def test_update_errors_name_the_transform_and_argument():
    w = jnp.asarray(W0, jnp.float32)
    tx = T.gsam()
    with pytest.raises(ValueError, match=r"gsam: `update` needs the extra argument `grad_fn`"):
        tx.update(quad_grad(w), tx.init(w), w)
    with pytest.raises(ValueError, match=r"gsam: `update` needs `params`"):
        tx.update(quad_grad(w), tx.init(w), None, grad_fn=quad_grad)
    with pytest.raises(ValueError, match=r"looksam: `grad_fn` must return gradients with the structure of `params`"):
        T.looksam().update(quad_grad(w), T.looksam().init(w), w, grad_fn=lambda p: (quad_grad(p), 1.0))
    with pytest.raises(ValueError, match=r"sam: `updates` must have the structure of `params`"):
        T.sam().update({"a": w}, T.sam().init(w), w, grad_fn=quad_grad)
    saf_tx = T.saf(num_examples=4, num_classes=3)
    with pytest.raises(ValueError, match=r"saf: `update` needs the extra arguments `logits`"):
        saf_tx.update({}, saf_tx.init(None))
    with pytest.raises(ValueError, match=r"saf: argument `logits` must have shape \(\*, 3\), got \(2, 4\)"):
        saf_tx.update({}, saf_tx.init(None), logits=jnp.zeros((2, 4)), indices=jnp.array([0, 1]))
    with pytest.raises(TypeError, match=r"saf: argument `indices` must have a int dtype"):
        saf_tx.update({}, saf_tx.init(None), logits=jnp.zeros((2, 3)), indices=jnp.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"trajectory_loss: `logits` and `teacher_logits` must have the same shape"):
        lossjax.losses.trajectory_loss(jnp.zeros((2, 3)), jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"mesa_params: `opt_state` must contain exactly one MESAState, found 0"):
        T.mesa_params(optax.sgd(0.1).init(w))
    with pytest.raises(TypeError, match=r"sam_value_and_grad: `fun` must be callable"):
        T.sam_value_and_grad(3.0)


def test_demo_sam_run_learns():
    from lossjax import demo

    cfg = demo.DemoConfig(steps=40, hidden=32, quiet=True)
    row = demo.RUNS["sam"](cfg, demo.load_data(cfg))
    assert row["run"].startswith("sam(rho=0.05)")
    assert np.isfinite(row["final loss"]) and row["test acc"] > 0.5  # chance is 0.1


def test_shape_hyperparameters_must_be_static_under_inject_hyperparams():
    w = {"k": jnp.ones((2, 2)), "b": jnp.ones((2,))}
    gf = jax.grad(lambda p: jnp.sum(p["k"] ** 2) + jnp.sum(p["b"] ** 2))
    tx = optax.inject_hyperparams(T.awp)(gamma=0.1)
    msg = r"awp: `min_ndim` must be a static Python integer.*static_args=\('min_ndim',\)"
    with pytest.raises(ValueError, match=msg):
        jax.jit(lambda s: tx.update(gf(w), s, w, grad_fn=gf))(tx.init(w))
    tx = optax.inject_hyperparams(T.awp, static_args=("min_ndim",))(gamma=0.1)
    out, _ = jax.jit(lambda s: tx.update(gf(w), s, w, grad_fn=gf))(tx.init(w))
    np.testing.assert_allclose(out["k"], 2 * 1.1 * np.ones((2, 2)), rtol=1e-6)  # w + 0.1 |w| g/|g| = 1.1 w
    np.testing.assert_allclose(out["b"], 2 * np.ones(2))


@pytest.mark.parametrize("name", [*_all_variants(), "saf", "mesa"])
def test_no_silent_float64_under_x64(name):
    with jax.enable_x64(True):
        params = {"w": jnp.ones((3, 2), jnp.float32), "b": jnp.ones((2,), jnp.float32)}
        gf = jax.grad(lambda p: jnp.sum(jnp.tanh(p["w"])) + jnp.sum(p["b"] ** 2))
        if name == "saf":
            tx = T.saf(num_examples=4, num_classes=3)
            extra = {"logits": jnp.ones((2, 3), jnp.float32), "indices": jnp.array([0, 1], jnp.int32)}
        elif name == "mesa":
            tx, extra = T.mesa(), {}
        else:
            tx, extra = _all_variants()[name], {"grad_fn": gf}

        def step(params):
            return tx.update(gf(params), tx.init(params), params, **extra)

        text = str(jax.make_jaxpr(step)(params))
        assert "f64" not in text, f"{name}: float64 traced from float32 params under x64"
        out, state = step(params)
        assert all(x.dtype != jnp.float64 for x in jax.tree.leaves((out, state)))


# ------------------------------ faults and sizes ------------------------------


@pytest.mark.parametrize("name", list(_all_variants()))
def test_any_gradient_size(name):
    # Issue 19 item 11: above a gradient norm of ~1.8e19 ||g||^2 overflowed float32: SAM (and ASAM, LookSAM,
    # Friendly SAM, AWP) silently dropped the perturbation (rho / inf = 0) and GSAM returned NaN. The norms
    # are now computed in scaled form (and kept scaled under jit: XLA folded the scale out of a dot product
    # into an overflowing sum(g * g_p) until an optimization barrier stopped it): a loss K times larger gives
    # a K times larger update, up to the rounding of K * loss (LookSAM's g_v cancels: 1.7e-5 of the largest
    # entry measured).
    params, x, y = _ref_inputs()
    K = np.float32(1e20)
    out = {}
    for k in (1.0, K):
        tx = _all_variants()[name]
        gf = jax.grad(lambda p, k=k: k * _ref_loss(p, x, y))
        state = tx.init(params)
        outs = []
        for _ in range(2):
            o, state = jax.jit(lambda s, gf=gf, tx=tx: tx.update(gf(params), s, params, grad_fn=gf))(state)
            outs.append(o)
        out[k] = outs
    for a, b in zip(jax.tree.leaves(out[K]), jax.tree.leaves(out[1.0]), strict=True):
        assert np.all(np.isfinite(a)), name
        np.testing.assert_allclose(np.asarray(a, np.float64) / 1e20, b, rtol=1e-4, atol=1e-4 * np.max(np.abs(b)))


@pytest.mark.parametrize("name", ["friendly_sam", "looksam"])
def test_one_nan_step_does_not_poison_the_state(name):
    # Issue 19 item 10: Friendly SAM's momentum stayed NaN after one NaN gradient. A step whose new state is
    # not finite now keeps the previous state; the next finite step is what it would have been. LookSAM with
    # interval=1 so that the bad step recomputes g_v (a reuse step leaves g_v alone and only counts); RWP's
    # state is its PRNG key only: nothing a NaN can reach.
    tx = T.looksam(rho=0.05, interval=1) if name == "looksam" else _all_variants()[name]
    params, x, y = _ref_inputs()
    gf = jax.grad(lambda p: _ref_loss(p, x, y))
    step = jax.jit(lambda g, s: tx.update(g, s, params, grad_fn=gf))
    state = tx.init(params)
    _, state = step(gf(params), state)
    bad = jax.tree.map(lambda a: a.at[(0,) * a.ndim].set(jnp.nan), gf(params))
    _, after = step(bad, state)
    for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(a, b)
    g2 = jax.tree.map(lambda a: 0.5 * a, gf(params))
    recovered, _ = step(g2, after)
    clean, _ = step(g2, state)
    assert all(np.all(np.isfinite(a)) for a in jax.tree.leaves(recovered))
    assert_close(recovered, clean, rtol=0, atol=0)


def test_optax_apply_if_finite_wraps_the_sam_family():
    # same-shape transforms: optax's wrapper works as is (the multi-loss aggregators need
    # lossjax.transforms.apply_if_finite, see tests/transforms/test_multitask.py)
    params, x, y = _ref_inputs()
    gf = jax.grad(lambda p: _ref_loss(p, x, y))
    g = gf(params)
    nan_g = jax.tree.map(lambda a: a * jnp.nan, g)
    for name, inner in _all_variants().items():
        tx = optax.apply_if_finite(optax.chain(inner, optax.sgd(0.1)), 2)
        update = jax.jit(lambda g, s, tx=tx: tx.update(g, s, params, grad_fn=gf))  # one compile for both steps
        state = tx.init(params)
        u, state = update(g, state)
        assert float(optax.tree.norm(u)) > 0, name
        z, state = update(nan_g, state)
        assert all(np.all(np.asarray(a) == 0) for a in jax.tree.leaves(z)), name
        assert int(state.total_notfinite) == 1, name
