"""Language-model losses: golden values (tests/reference/make_language_preference.py), closed forms,
edge numerics, masks, cross-device reweighting and the error messages."""

from __future__ import annotations

import json
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, PartitionSpec

import lossjax
from lossjax import losses as L
from lossjax.testing import assert_close as _assert_close

REF = json.loads((pathlib.Path(__file__).parents[1] / "reference" / "language_preference.json").read_text())
LOGITS = np.asarray(REF["lm_inputs"]["logits"], np.float32)
LABELS = np.asarray(REF["lm_inputs"]["labels"], np.int32)


def _grad(f, **kw):
    """``jax.grad`` compiled as one program (much faster than op-by-op on a busy CPU)."""
    return jax.jit(jax.grad(f, **kw))


def _value_and_grad(f, **kw):
    return jax.jit(jax.value_and_grad(f, **kw))


def assert_close(actual, expected, **kw):
    """``lossjax.testing.assert_close`` with JSON lists read as arrays (not pytrees)."""
    expected = jax.tree.map(np.asarray, expected, is_leaf=lambda x: isinstance(x, list))
    _assert_close(actual, expected, **kw)


# ------------------------------- z-losses -------------------------------


def test_z_loss_matches_palm_formula_and_masks():
    # The golden values are PaLM's weighted term c * lse^2 (c = 1e-4); z_loss is the unweighted lse^2.
    c = REF["z_loss"]
    unweighted = np.asarray(c["value"]) / c["z_loss_coef"]
    assert_close(L.z_loss(LOGITS), unweighted)
    assert_close(c["z_loss_coef"] * L.z_loss(LOGITS), c["value"])
    w = np.arange(7) % 2 == 0
    out = L.z_loss(np.where(w[:, None], LOGITS, np.nan).astype(np.float32), where=w)
    assert np.all(np.asarray(out)[~w] == 0)
    assert_close(np.asarray(out)[w], unweighted[w])
    g = _grad(lambda z: jnp.sum(L.z_loss(z)))(LOGITS)
    lse = jax.nn.logsumexp(LOGITS, axis=-1, keepdims=True)
    assert_close(g, 2 * lse * jax.nn.softmax(LOGITS), rtol=1e-5)  # d(lse^2) = 2 lse softmax


@pytest.mark.parametrize("case", range(3))
def test_spherical_z_loss_matches_closed_form(case):
    c = REF["spherical_z_loss"][case]
    assert_close(L.spherical_z_loss(LOGITS, LABELS, sharpness=c["a"], offset=c["b"]), c["value"])


def test_spherical_z_loss_invariances_and_edges():
    base = L.spherical_z_loss(LOGITS, LABELS, sharpness=0.5, offset=2.0)
    assert_close(L.spherical_z_loss(3.7 * LOGITS - 11.0, LABELS, sharpness=0.5, offset=2.0), base, rtol=1e-4)
    # Soft labels: expectation over classes; one-hot equals integer labels.
    onehot = np.eye(11, dtype=np.float32)[LABELS]
    assert_close(L.spherical_z_loss(LOGITS, onehot, sharpness=0.5, offset=2.0), base)
    # Constant outputs: z = 0, loss softplus(a b) / a; sigma is floored at epsilon (1e-6), so
    # dz_y/do = (e_y - 1/C) / epsilon and the gradient is -sigmoid(a b) (e_y - 1/C) / epsilon.
    v, g = _value_and_grad(lambda o: jnp.sum(L.spherical_z_loss(o, jnp.array([1]), sharpness=2.0, offset=0.5)))(
        jnp.zeros((1, 4))
    )
    assert_close(v, math.log1p(math.e) / 2.0)
    e_y = np.eye(4)[[1]]
    assert_close(g, -(1 / (1 + math.exp(-1.0))) * (e_y - 0.25) / 1e-6, rtol=1e-5)
    # Two classes, o = (1, -1): z = (1, -1); target 0 with b = 1 -> softplus(0) = log 2.
    assert_close(L.spherical_z_loss(jnp.array([[1.0, -1.0]]), jnp.array([0])), [math.log(2)])


# --------------------------- number token loss ---------------------------


def _ntl():
    c = REF["number_token_loss"]
    values = np.asarray([np.nan if v is None else v for v in c["token_values"]], np.float32)
    return c, np.asarray(c["logits"], np.float32), np.asarray(c["labels"], np.int32), values


def test_number_token_loss_mse_matches_reference():
    c, logits, labels, values = _ntl()
    out = np.asarray(L.number_token_loss(logits, labels, values, where=labels >= 0))  # -100: masked, else NaN
    ref_valid = np.asarray(c["valid"], bool)
    ours_valid = ref_valid & (labels >= 0)
    # The reference maps the ignore index -100 to token id 0 (labels.masked_fill(labels == -100, 0)),
    # and token 0 is the digit-"valued" token here, so it scores ignored positions as the number
    # nvocab[0]. lossjax gives ignored positions 0: compare on real labels only, and check the
    # disagreement is exactly that position.
    assert np.any(ref_valid & (labels < 0))
    assert_close(out[ours_valid], np.asarray(c["mse"])[ours_valid])
    assert np.all(out[~ours_valid] == 0)


def test_number_token_loss_was_matches_both_reference_forms():
    c, logits, labels, values = _ntl()
    out = np.asarray(L.number_token_loss(logits, labels, values, variant="was", where=labels >= 0))
    ref_valid = np.asarray(c["valid"], bool)
    keep = (labels >= 0)[ref_valid]  # the reference's valid list, without its ignore-index position
    ours = out[ref_valid & (labels >= 0)]
    assert_close(ours, np.asarray(c["was_valid_only"])[keep])
    # The CDF form of the older reference equals E|v - y| for the sorted digits 0..9.
    assert_close(ours, np.asarray(c["was_cdf_valid_only"])[keep])


def test_number_token_loss_edges():
    values = jnp.array([jnp.nan, 0.0, 1.0, 2.0])
    logits = jnp.array([[1e4, -1e4, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0]])
    labels = jnp.array([3, 0])  # a number and a non-number position
    # Row 0: the number tokens 1, 2, 3 (values 0, 1, 2) have logits -1e4, 0, 3: p = (0, s, 1 - s) with
    # s = 1 / (1 + e^3); the label is token 3 (value 2). E = s + 2 (1 - s) = 2 - s, so MSE = s^2 and
    # WAS = s * |1 - 2| = s. Gradients: d/dz_k = p_k (dl/dp_k - sum_j p_j dl/dp_j) over number tokens.
    s = 1 / (1 + math.exp(3.0))
    p = np.array([0.0, 0.0, s, 1 - s])
    vals = np.array([0.0, 0.0, 1.0, 2.0])
    for variant, value, dl_dp in (("mse", s**2, 2 * (-s) * vals), ("was", s, np.abs(vals - 2.0))):
        v, g = _value_and_grad(
            lambda z, variant=variant: jnp.sum(L.number_token_loss(z, labels, values, variant=variant))
        )(logits)
        want = p * (dl_dp - np.sum(p * dl_dp))
        want[0] = 0.0  # the non-number token
        assert_close(v, value, rtol=1e-5)
        assert_close(np.asarray(g)[0], want, rtol=1e-5, atol=1e-7)
        assert np.all(np.asarray(g)[1] == 0)  # a non-number label: 0 and no gradient
    # A vocabulary without number tokens: 0 loss, zero gradient.
    none = jnp.full((4,), jnp.nan)
    v, g = _value_and_grad(lambda z: jnp.sum(L.number_token_loss(z, labels, none)))(logits)
    assert float(v) == 0.0 and np.all(np.asarray(g) == 0)
    # Hand-computed: probability 1/2 on values 0 and 2, label 2: MSE (1 - 2)^2 = 1, WAS 0.5 * 2 = 1.
    z = jnp.array([[0.0, 0.0, -jnp.inf, 0.0]])
    assert_close(L.number_token_loss(z, jnp.array([3]), values), [1.0])
    assert_close(L.number_token_loss(z, jnp.array([1]), values, variant="was"), [1.0])


# ----------------------------------- EMO -----------------------------------


def test_emo_matches_reference_values_and_gradient():
    c = REF["emo"]
    emb = np.asarray(c["embeddings"], np.float32)
    mask = np.asarray(c["mask"])
    per_token = L.earth_mover_distance_optimization(LOGITS, LABELS, emb, where=mask)
    assert_close(per_token, c["per_token"])

    def mean_loss(z):
        return lossjax.masked_mean(L.earth_mover_distance_optimization(z, LABELS, emb, where=mask), mask)

    v, g = _value_and_grad(mean_loss)(LOGITS)
    assert_close(v, c["mean_loss"])
    assert_close(g, c["grad_mean_wrt_logits"], rtol=1e-4, atol=1e-6)
    # The value is the cross-entropy; the embeddings get no gradient.
    assert_close(per_token, L.softmax_cross_entropy(LOGITS, LABELS, where=mask), rtol=1e-5)
    ge = _grad(lambda e: jnp.sum(L.earth_mover_distance_optimization(LOGITS, LABELS, e)))(emb)
    assert np.all(np.asarray(ge) == 0)


def test_emo_distribution_labels_and_zero_embedding_row():
    emb = np.asarray(REF["emo"]["embeddings"], np.float32).copy()
    onehot = np.eye(11, dtype=np.float32)[LABELS]
    assert_close(
        L.earth_mover_distance_optimization(LOGITS, onehot, emb),
        L.earth_mover_distance_optimization(LOGITS, LABELS, emb),
    )
    emb[3] = 0.0  # a zero row costs 1 - 0 = 1 against every token (cos = 0), never NaN
    v, g = _value_and_grad(lambda z: jnp.sum(L.earth_mover_distance_optimization(z, LABELS, emb)))(LOGITS)
    assert_close(v, np.sum(L.softmax_cross_entropy(LOGITS, LABELS)), rtol=1e-6)
    assert_close(g, _emo_grad_closed_form(LOGITS, LABELS, emb), rtol=1e-4, atol=1e-6)


def _emo_grad_closed_form(logits, labels, emb):
    """d/dz of sum_i EMO-mixed loss in float64: (q - p) / 2 + ratio / 2 * dEMO with EMO = sum_k q_k c_yk,
    dEMO_k = q_k (c_yk - EMO), ratio = CE / (EMO + 1e-10), and the cost c = 1 - cos computed from direct
    differences (c_jk = |e_j - e_k|^2 / 2 for unit rows, 1 against a zero row): exact for nearby rows."""
    z = np.asarray(logits, np.float64)
    q = np.exp(z - z.max(-1, keepdims=True))
    q /= q.sum(-1, keepdims=True)
    e = np.asarray(emb, np.float64)
    n = np.linalg.norm(e, axis=1, keepdims=True)
    unit = (n > 0)[:, 0]
    e = np.where(n > 0, e / np.where(n > 0, n, 1), 0)
    c = 0.5 * np.sum(np.square(e[:, None] - e[None]), -1) + 0.5 * (~unit[:, None]) + 0.5 * (~unit[None, :])
    np.fill_diagonal(c, np.where(unit, 0.0, 1.0))
    onehot = np.eye(z.shape[-1])[labels]
    ce = -np.log(q[np.arange(len(labels)), labels])
    cy = c[labels]
    emo = np.sum(q * cy, -1)
    demo = q * (cy - emo[:, None])
    return 0.5 * (q - onehot) + 0.5 * (ce / (emo + 1e-10))[:, None] * demo


def test_emo_near_identical_embeddings_is_finite_and_right_under_jit():
    """Issue 19 item 3: near-identical embeddings gave NaN under jit (EMO = 1 - <p, q> was rounding noise
    amplified by CE / EMO). The loss is exactly the CE and its gradient (dCE + ratio dEMO) / 2 equals the
    float64 closed form on cancellation-free costs (float32 normalization of rows 1e-6 apart leaves ~1e-3)."""
    rng = np.random.default_rng(0)
    z = (rng.normal(size=(6, 5)) * 3).astype(np.float32)
    y = rng.integers(0, 5, size=6).astype(np.int32)
    base = rng.normal(size=(1, 3))
    for spread in (0.0, 1e-8, 1e-6):
        emb = (base + spread * rng.normal(size=(5, 3))).astype(np.float32)
        f = lambda z, emb=emb: jnp.sum(L.earth_mover_distance_optimization(z, y, emb))  # noqa: E731
        v, g = jax.jit(jax.value_and_grad(f))(z)
        ve, ge = jax.value_and_grad(f)(z)
        assert_close(v, np.sum(L.softmax_cross_entropy(z, y)), rtol=1e-6)
        assert_close(ve, v, rtol=1e-6)
        assert_close(g, _emo_grad_closed_form(z, y, emb), rtol=1e-3, atol=2e-3)
        assert_close(ge, g, rtol=1e-5, atol=1e-6)


# ------------------------- loss-based reweighting -------------------------


@pytest.mark.parametrize("case", range(8))
def test_reweighting_matches_reference(case):
    r = REF["reweighting"]
    c = r["cases"][case]
    losses = np.asarray(r["losses"], np.float32)
    kw = dict(variant=c["strategy"], temperature=c["temperature"], delta=c["delta"])
    assert_close(L.loss_based_sample_weights(losses, **kw), c["weights"])
    v, g = _value_and_grad(lambda x: L.loss_based_sample_reweighting(x, **kw))(losses)
    assert_close(v, c["loss"])
    assert_close(g, c["grad"])  # the weights are constants: the gradient is w


def test_reweighting_where_and_across_devices():
    losses = np.asarray(REF["reweighting"]["losses"][:8], np.float32)
    w = np.array([True, True, False, True, True, False, True, True])
    masked = L.loss_based_sample_weights(np.where(w, losses, np.nan).astype(np.float32), where=w)
    assert np.all(np.asarray(masked)[~w] == 0)
    assert_close(np.asarray(masked)[w], L.loss_based_sample_weights(losses[w]))
    assert float(L.loss_based_sample_reweighting(losses, where=np.zeros(8, bool))) == 0.0
    if jax.device_count() < 2:
        pytest.fail("needs two devices (conftest simulates 8 CPU devices)")
    mesh = Mesh(np.array(jax.devices()[:2]), ("d",))
    spec = PartitionSpec("d")
    sharded_w = jax.jit(
        jax.shard_map(
            lambda x: L.loss_based_sample_weights(x, variant="quadratic", axis_name="d"),
            mesh=mesh,
            in_specs=spec,
            out_specs=spec,
        )
    )(losses)
    assert_close(sharded_w, L.loss_based_sample_weights(losses, variant="quadratic"))
    # Every device returns the loss of the whole batch (a batch-level loss).
    per_device = jax.jit(
        jax.shard_map(
            lambda x: L.loss_based_sample_reweighting(x, axis_name="d")[None], mesh=mesh, in_specs=spec, out_specs=spec
        )
    )(losses)
    assert_close(per_device, np.full(2, float(L.loss_based_sample_reweighting(losses))))


# ---------------------------- pass@n coverage ----------------------------


@pytest.mark.parametrize("case", range(4))
def test_pass_at_n_matches_high_precision(case):
    r = REF["pass_at_n"]
    c = r["cases"][case]
    lp = np.asarray(r["log_probs"])
    want = np.asarray(c["value"])
    out32 = L.pass_at_n_coverage_loss(lp.astype(np.float32), num_samples=c["n"])
    assert out32.dtype == jnp.float32
    assert_close(out32, want, rtol=1e-5, atol=1e-30)
    with jax.enable_x64(True):
        out64 = np.asarray(L.pass_at_n_coverage_loss(lp, num_samples=c["n"]))
    big = want > 1e-300
    np.testing.assert_allclose(out64[big], want[big], rtol=1e-9)


def test_pass_at_n_gradient_and_token_inputs():
    lp = jnp.array([-0.01, -0.5, -3.0, -40.0])
    n = 8.0
    g = _grad(lambda x: jnp.sum(L.pass_at_n_coverage_loss(x, num_samples=n)))(lp)
    p = np.exp(np.asarray(lp, np.float64))
    # d/dlog p of -log(1 - (1-p)^n), with the cancellation-free forms of (1-p)^k and 1 - (1-p)^n.
    want = -n * np.exp((n - 1) * np.log1p(-p)) * p / -np.expm1(n * np.log1p(-p))
    assert_close(g, want, rtol=1e-4, atol=1e-7)
    # log p = 0: nothing left to gain (value 0, gradient 0 for N > 1, -1 for N = 1, the CE's);
    # log p = -1e4: the tail -log N - log p with gradient -1.
    for edge, nn, value, grad in ((0.0, n, 0.0, 0.0), (0.0, 1.0, 0.0, -1.0), (-1e4, n, 1e4 - math.log(n), -1.0)):
        v, g = _value_and_grad(lambda x, nn=nn: jnp.sum(L.pass_at_n_coverage_loss(x, num_samples=nn)))(
            jnp.array([edge])
        )
        assert_close(v, value, rtol=1e-6, atol=0)
        assert_close(g, [grad], rtol=1e-6, atol=0)
    # n = 1 is the cross-entropy -log p.
    assert_close(L.pass_at_n_coverage_loss(lp, num_samples=1), -lp)
    tok = jnp.array([[-0.1, -0.2, jnp.nan], [-1.0, -jnp.inf, -jnp.inf]])
    m = jnp.array([[1, 1, 0], [1, 0, 0]])
    assert_close(
        L.pass_at_n_coverage_loss(tok, num_samples=4, token_where=m),
        L.pass_at_n_coverage_loss(jnp.array([-0.3, -1.0]), num_samples=4),
    )


# -------------------------------- CCS --------------------------------


def test_ccs_matches_reference():
    c = REF["ccs"]
    out = L.contrast_consistent_search_loss(np.asarray(c["p_pos"], np.float32), np.asarray(c["p_neg"], np.float32))
    assert_close(out, c["value"])


# -------------------------------- SatImp --------------------------------


@pytest.mark.parametrize("case", range(3))
def test_satimp_matches_reference(case):
    r = REF["satimp"]
    c = r["cases"][case]
    logits = np.asarray(r["logits"], np.float32)
    labels = np.asarray(r["labels"], np.int32)
    keep = labels != -100
    lp = L.token_log_probs(logits, labels, where=keep)  # -100 (ignored) positions give 0
    kw = dict(beta_1=c["beta1"], beta_2=c["beta2"])
    out = L.saturation_importance_unlearning_loss(lp, where=keep, **kw)
    assert_close(out, c["per_token"])
    assert_close(lossjax.masked_mean(out, keep), c["mean"])
    # The weights are constants: d loss / d log p = w.
    g = _grad(lambda x: jnp.sum(L.saturation_importance_unlearning_loss(x, **kw)))(lp)
    p = np.exp(np.asarray(lp, np.float64))
    assert_close(g, p ** c["beta1"] * (1 - p) ** c["beta2"], rtol=1e-4, atol=1e-7)


def test_satimp_edges():
    # w = p^5 (1 - p)^0.1 (constant), loss w log p, gradient w: p = 1 gives w = 0; log p = -1e-30
    # gives 1 - p = 1e-30, w = 1e-3; log p = -1e4 gives w = exp(-5e4) = 0.
    for edge, w in ((0.0, 0.0), (-1e-30, 1e-3), (-1e4, 0.0)):
        v, g = _value_and_grad(lambda x: jnp.sum(L.saturation_importance_unlearning_loss(x)))(jnp.array([edge]))
        assert_close(v, w * edge, rtol=1e-5, atol=0)
        assert_close(g, [w], rtol=1e-5, atol=0)
    assert float(L.saturation_importance_unlearning_loss(jnp.array([0.0]))[0]) == 0.0  # p = 1: nothing left to forget


# ------------------------------ bad inputs ------------------------------


def test_errors_name_function_argument_and_shapes():
    with pytest.raises(TypeError, match=r"z_loss_coef"):  # the weight belongs to the composed sum
        L.z_loss(LOGITS, z_loss_coef=1e-4)
    with pytest.raises(TypeError, match=r"z_loss: argument `logits` must have a float dtype"):
        L.z_loss(LABELS)
    with pytest.raises(ValueError, match=r"spherical_z_loss: `sharpness` must be > 0"):
        L.spherical_z_loss(LOGITS, LABELS, sharpness=0.0)
    with pytest.raises(ValueError, match=r"spherical_z_loss: `offset` must be a finite number"):
        L.spherical_z_loss(LOGITS, LABELS, offset=float("inf"))
    with pytest.raises(ValueError, match=r"number_token_loss: argument `token_values` must have shape \(11\)"):
        L.number_token_loss(LOGITS, LABELS, np.zeros(5, np.float32))
    with pytest.raises(ValueError, match=r"number_token_loss: `variant` must be one of \['mse', 'was'\]"):
        L.number_token_loss(LOGITS, LABELS, np.zeros(11, np.float32), variant="l1")
    with pytest.raises(ValueError, match=r"number_token_loss: `labels` must have shape"):
        L.number_token_loss(LOGITS, LABELS[:3], np.zeros(11, np.float32))
    with pytest.raises(ValueError, match=r"earth_mover_distance_optimization: `proxies` must have shape \(11, D\)"):
        L.earth_mover_distance_optimization(LOGITS, LABELS, np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"loss_based_sample_weights: `variant` must be one of"):
        L.loss_based_sample_weights(np.ones(3, np.float32), variant="uniform")
    with pytest.raises(ValueError, match=r"loss_based_sample_reweighting: argument `losses` must have rank 1"):
        L.loss_based_sample_reweighting(LOGITS)
    with pytest.raises(ValueError, match=r"pass_at_n_coverage_loss: `num_samples` must be >= 1, got 0.5"):
        L.pass_at_n_coverage_loss(np.zeros(3, np.float32), num_samples=0.5)
    with pytest.raises(ValueError, match=r"pass_at_n_coverage_loss: `token_where` is only meaningful with per-token"):
        L.pass_at_n_coverage_loss(np.zeros(3, np.float32), token_where=np.ones(3, bool))
    with pytest.raises(ValueError, match=r"saturation_importance_unlearning_loss: `beta_2` must be >= 0"):
        L.saturation_importance_unlearning_loss(np.zeros(3, np.float32), beta_2=-1.0)
    with pytest.raises(
        ValueError,
        match=r"contrast_consistent_search_loss: `positive_probs` and `negative_probs` must have the same shape",
    ):
        L.contrast_consistent_search_loss(np.zeros(3, np.float32), np.zeros(4, np.float32))


def test_registry_aliases():
    get = lossjax.registry.get_entry
    assert get("emo").name == "earth_mover_distance_optimization"
    assert get("auxiliary_z_loss").name == "z_loss"
    assert dict(get("z_loss").hyperparams) == {}  # unweighted: the weight is the composed sum's
    assert get("ntl").name == "number_token_loss"
    assert get("direct_coverage_optimization").name == "pass_at_n_coverage_loss"
    assert get("saturation_importance_unlearning_weights").name == "saturation_importance_unlearning_loss"
    ntl = lossjax.get({"name": "number_token_loss", "variant": "was"})
    _, logits, labels, values = _ntl()
    assert_close(ntl(logits, labels, values), L.number_token_loss(logits, labels, values, variant="was"))


# ------------------------------------ CTC ------------------------------------


def _ctc_batch(seed=0, b=5, t=9, k=6, n=4):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(b, t, k)).astype(np.float32)
    t_len = rng.integers(n + 2, t + 1, size=b)
    n_len = rng.integers(1, n + 1, size=b)
    logit_paddings = (np.arange(t)[None] >= t_len[:, None]).astype(np.float32)
    label_paddings = (np.arange(n)[None] >= n_len[:, None]).astype(np.float32)
    labels = rng.integers(1, k, size=(b, n)).astype(np.int32)
    labels[0, :2] = 3  # a repeated label (needs a blank between the two)
    return logits, logit_paddings, labels, label_paddings


@pytest.mark.parametrize("blank_id", [0, 5])
def test_ctc_matches_optax_values_and_gradients(blank_id):
    import optax

    logits, lpad, labels, ypad = _ctc_batch()
    if blank_id:
        labels = np.where(labels == blank_id, 1, labels).astype(np.int32)

    def value_grad(ctc):  # per-sequence losses and the gradient of their sum, one compile (not eager)
        def total(z):
            per = ctc(z, lpad, labels, ypad, blank_id=blank_id)
            return jnp.sum(per), per

        return jax.jit(jax.value_and_grad(total, has_aux=True))(logits)

    (v, per), g = value_grad(L.ctc_loss)
    (rv, rper), rg = value_grad(optax.ctc_loss)
    assert_close(per, rper)
    assert_close(v, rv)
    assert_close(g, rg, atol=1e-6)


def test_ctc_closed_form_and_masks():
    ctc = jax.jit(L.ctc_loss)  # one compile per shape (eager: every op of the recursion compiled on its own)
    # Two uniform frames over {blank, a, b}: the alignments of "a" are (a a), (a -), (- a): 3/9.
    z = jnp.zeros((1, 2, 3))
    assert_close(ctc(z, jnp.zeros((1, 2)), jnp.array([[1]]), jnp.zeros((1, 1))), [math.log(3.0)])
    # "a a" needs a blank between: over 3 frames the only alignment is (a - a): 1/27.
    z3 = jnp.zeros((1, 3, 3))
    assert_close(ctc(z3, jnp.zeros((1, 3)), jnp.array([[1, 1]]), jnp.zeros((1, 2))), [3 * math.log(3.0)])
    # Padded frames and labels: the same as the unpadded prefix; garbage there changes nothing.
    logits, lpad, labels, ypad = _ctc_batch(seed=1)
    i = int(np.argmax(lpad.sum(1)))
    tt, nn = int((1 - lpad[i]).sum()), int((1 - ypad[i]).sum())
    dirty = logits.copy()
    dirty[i, tt:] = np.nan
    lab = labels.copy()
    lab[i, nn:] = -7  # anything in padded label positions
    one = ctc(logits[i : i + 1, :tt], np.zeros((1, tt)), labels[i : i + 1, :nn], np.zeros((1, nn)))
    assert_close(ctc(dirty, lpad, lab, ypad)[i], one[0])
    # where: masked sequences give 0 and no gradient, even holding NaN.
    w = np.array([True, False, True, True, False])
    bad = np.where(w[:, None, None], logits, np.nan).astype(np.float32)
    v, g = jax.jit(jax.value_and_grad(lambda z: jnp.sum(L.ctc_loss(z, lpad, labels, ypad, where=w))))(bad)
    assert_close(v, jnp.sum(ctc(logits[w], lpad[w], labels[w], ypad[w])))
    assert np.all(np.asarray(g)[~w] == 0) and np.all(np.isfinite(np.asarray(g)))


def test_ctc_errors():
    logits, lpad, labels, ypad = _ctc_batch()
    with pytest.raises(ValueError, match=r"ctc_loss: argument `logits` must have rank 3"):
        L.ctc_loss(logits[0], lpad, labels, ypad)
    with pytest.raises(ValueError, match=r"ctc_loss: `labels` must have batch size 5"):
        L.ctc_loss(logits, lpad, labels[:2], ypad[:2])
    with pytest.raises(ValueError, match=r"ctc_loss: argument `label_paddings` must have shape"):
        L.ctc_loss(logits, lpad, labels, ypad[:, :2])
    with pytest.raises(ValueError, match=r"ctc_loss: `blank_id` must lie in \[0, 6\)"):
        L.ctc_loss(logits, lpad, labels, ypad, blank_id=6)
    with pytest.raises(ValueError, match=r"ctc_loss: `log_epsilon`"):
        L.ctc_loss(logits, lpad, labels, ypad, log_epsilon=float("nan"))


# ------------------------- issue 19: labels, masks, hyperparameters, empty batches -------------------------


def test_out_of_range_integer_labels_give_nan_unless_masked():
    """Item 6: an out-of-range label gives NaN in a counted row (as JAX's out-of-bounds gather) and 0 in a
    masked one; linear_cross_entropy's ignore_index keeps its meaning (ignored, not an error)."""
    J = jax.jit  # one compile per call, not one per eager op of each loss
    z = np.zeros((2, 3, 4), np.float32)
    labels = np.array([[1, 7, 2], [-1, 0, 3]], np.int32)
    lp = np.asarray(J(L.token_log_probs)(z, labels))
    assert np.isnan(lp[0, 1]) and np.isnan(lp[1, 0])  # was log-probability 0 (probability 1)
    assert_close(lp[0, 0], -math.log(4.0))
    keep = (labels >= 0) & (labels < 4)
    assert_close(J(L.token_log_probs)(z, labels, where=keep), np.where(keep, -math.log(4.0), 0.0))
    assert np.asarray(J(L.token_log_probs)(z, labels, where=np.array([True, False])))[1].tolist() == [0.0, 0.0, 0.0]
    # Fused cross-entropy: -100 is ignored, 7 and -1 are NaN; the reduced loss is NaN.
    h = np.eye(3, 2, dtype=np.float32)
    w = np.ones((4, 2), np.float32)
    y = np.array([-100, 7, 1], np.int32)
    per = np.asarray(J(L.linear_cross_entropy)(h, w, y))
    assert per[0] == 0 and np.isnan(per[1]) and per[2] == pytest.approx(math.log(4.0))
    assert np.isnan(float(J(L.reduced_linear_cross_entropy)(h, w, y)))
    assert np.isnan(np.asarray(J(L.linear_cross_entropy_with_lse)(h, w, np.array([-1, 0, 1], np.int32))[0])[0])
    ok = np.asarray(J(L.linear_cross_entropy)(h, w, y, where=np.array([True, False, True])))
    assert ok.tolist() == [0.0, 0.0, pytest.approx(math.log(4.0))]
    # The other label-taking losses.
    z2, y2 = np.zeros((2, 4), np.float32), np.array([1, 9], np.int32)
    m = np.array([True, False])
    values = np.array([np.nan, 0.0, 1.0, 2.0], np.float32)
    emb = np.eye(4, 3, dtype=np.float32)
    for f in (
        J(lambda **k: L.spherical_z_loss(z2 + np.arange(4, dtype=np.float32), y2, **k)),
        J(lambda **k: L.number_token_loss(z2, y2, values, **k)),
        J(lambda **k: L.earth_mover_distance_optimization(z2, y2, emb, **k)),
    ):
        out = np.asarray(f())
        assert np.isfinite(out[0]) and np.isnan(out[1])
        assert np.asarray(f(where=m))[1] == 0.0
    logits, lpad, labels3, ypad = _ctc_batch()
    labels3[1, 0] = 99
    out = np.asarray(J(L.ctc_loss)(logits, lpad, labels3, ypad))
    assert np.isnan(out[1]) and np.all(np.isfinite(np.delete(out, 1)))
    assert np.asarray(J(L.ctc_loss)(logits, lpad, labels3, ypad, where=np.arange(5) != 1))[1] == 0.0
    # Debug mode names the bad label.
    with pytest.raises(Exception, match=r"token_log_probs: integer labels must lie in \[0, 4\)"):
        lossjax.checked(L.token_log_probs)(z, labels)


def _b_equals_t_cases():
    rng = np.random.default_rng(0)
    b = t = 3
    z = rng.normal(size=(b, t, 4)).astype(np.float32)
    y = rng.integers(0, 4, size=(b, t)).astype(np.int32)
    lp = -rng.uniform(0.1, 2.0, size=(b, t)).astype(np.float32)
    values = np.array([np.nan, 0.0, 1.0, 2.0], np.float32)
    h = rng.normal(size=(b, t, 2)).astype(np.float32)
    w = rng.normal(size=(4, 2)).astype(np.float32)
    p = rng.uniform(0.1, 0.9, size=(b, t)).astype(np.float32)
    return {
        "token_log_probs": lambda **k: L.token_log_probs(z, y, **k),
        "linear_cross_entropy": lambda **k: L.linear_cross_entropy(h, w, y, **k),
        "z_loss": lambda **k: L.z_loss(z, **k),
        "spherical_z_loss": lambda **k: L.spherical_z_loss(z, y, **k),
        "number_token_loss": lambda **k: L.number_token_loss(z, y, values, **k),
        "earth_mover_distance_optimization": lambda **k: L.earth_mover_distance_optimization(z, y, w, **k),
        "saturation_importance_unlearning_loss": lambda **k: L.saturation_importance_unlearning_loss(lp, **k),
        "contrast_consistent_search_loss": lambda **k: L.contrast_consistent_search_loss(p, 1 - p, **k),
        "trajectory_loss": lambda **k: L.trajectory_loss(z, z[::-1], **k),
    }


@pytest.mark.parametrize("name", list(_b_equals_t_cases()))
def test_per_sequence_where_masks_sequences_when_batch_equals_length(name):
    """Item 4: a [B] mask on a per-token loss [B, T] masks whole sequences (leading axes), also when B == T."""
    f = _b_equals_t_cases()[name]
    full = np.asarray(f())
    assert full.shape == (3, 3)
    m = np.array([True, False, True])
    out = np.asarray(f(where=m))
    assert np.all(out[1] == 0), out  # the whole second sequence, not the second token of each
    assert_close(out[m], full[m])


@pytest.mark.parametrize(
    ("call", "arg"),
    [
        (lambda v: L.spherical_z_loss(LOGITS, LABELS, sharpness=v), "sharpness"),
        (lambda v: L.spherical_z_loss(LOGITS, LABELS, offset=v), "offset"),
        (lambda v: L.spherical_z_loss(LOGITS, LABELS, epsilon=v), "epsilon"),
        (lambda v: L.linear_cross_entropy(LOGITS[:, :4], LOGITS[:, :4], LABELS % 7, z_loss_weight=v), "z_loss_weight"),
        (
            lambda v: L.linear_cross_entropy(LOGITS[:, :4], LOGITS[:, :4], LABELS % 7, label_smoothing=v),
            "label_smoothing",
        ),
        (lambda v: L.linear_cross_entropy(LOGITS[:, :4], LOGITS[:, :4], LABELS % 7, logit_softcap=v), "logit_softcap"),
        (lambda v: L.earth_mover_distance_optimization(LOGITS, LABELS, LOGITS.T[:, :3] * 0 + 1, epsilon=v), "epsilon"),
        (lambda v: L.loss_based_sample_weights(LOGITS[0], temperature=v), "temperature"),
        (lambda v: L.loss_based_sample_reweighting(LOGITS[0], delta=v), "delta"),
        (lambda v: L.pass_at_n_coverage_loss(-np.abs(LOGITS[0]), num_samples=v), "num_samples"),
        (lambda v: L.saturation_importance_unlearning_loss(-np.abs(LOGITS[0]), beta_1=v), "beta_1"),
        (lambda v: L.saturation_importance_unlearning_loss(-np.abs(LOGITS[0]), beta_2=v), "beta_2"),
        (lambda v: L.ctc_loss(*_ctc_batch(), log_epsilon=v), "log_epsilon"),
        (lambda v: L.trajectory_loss(LOGITS, LOGITS, temperature=v), "temperature"),
    ],
)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_and_inf_hyperparameters_are_rejected(call, arg, bad):
    """Item 8: NaN/inf hyperparameters are a trace-time error naming the function and the argument."""
    with pytest.raises(ValueError, match=rf"`{arg}` must"):
        call(bad)


@pytest.mark.parametrize(
    "call",
    [
        lambda: L.token_log_probs(np.zeros((0, 4), np.float32), np.zeros((0,), np.int32)),
        lambda: L.linear_cross_entropy(
            np.zeros((0, 2), np.float32), np.ones((4, 2), np.float32), np.zeros(0, np.int32)
        ),
        lambda: L.sequence_log_probs(np.zeros((0, 3), np.float32)),
        lambda: L.z_loss(np.zeros((0, 4), np.float32)),
        lambda: L.spherical_z_loss(np.zeros((0, 4), np.float32), np.zeros((0,), np.int32)),
        lambda: L.number_token_loss(np.zeros((0, 4), np.float32), np.zeros(0, np.int32), np.zeros(4, np.float32)),
        lambda: L.earth_mover_distance_optimization(np.zeros((0, 4), np.float32), np.zeros(0, np.int32), np.eye(4)),
        lambda: L.loss_based_sample_weights(np.zeros((0,), np.float32)),
        lambda: L.pass_at_n_coverage_loss(np.zeros((0, 3), np.float32)),
        lambda: L.contrast_consistent_search_loss(np.zeros(0, np.float32), np.zeros(0, np.float32)),
        lambda: L.saturation_importance_unlearning_loss(np.zeros(0, np.float32)),
        lambda: L.ctc_loss(
            np.zeros((0, 3, 4), np.float32), np.zeros((0, 3)), np.zeros((0, 2), np.int32), np.zeros((0, 2))
        ),
        lambda: L.trajectory_loss(np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32)),
    ],
)
def test_empty_batch_gives_an_empty_result(call):
    """Item 9: a batch of size 0 gives an empty per-example array (batch-level losses: 0)."""
    out = np.asarray(call())
    assert out.shape[0] == 0 and out.dtype == np.float32


def test_empty_batch_of_batch_level_losses_is_zero():
    assert (
        float(
            L.reduced_linear_cross_entropy(
                np.zeros((0, 2), np.float32), np.ones((4, 2), np.float32), np.zeros(0, np.int32)
            )
        )
        == 0.0
    )
    assert float(L.loss_based_sample_reweighting(np.zeros((0,), np.float32))) == 0.0
