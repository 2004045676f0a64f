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
    # Constant outputs: z = 0, loss softplus(a b) / a, finite gradient.
    v, g = _value_and_grad(lambda o: jnp.sum(L.spherical_z_loss(o, jnp.array([1]), sharpness=2.0, offset=0.5)))(
        jnp.zeros((1, 4))
    )
    assert_close(v, math.log1p(math.e) / 2.0)
    assert np.all(np.isfinite(np.asarray(g)))
    # Two classes, o = (1, -1): z = (1, -1); target 0 with b = 1 -> softplus(0) = log 2.
    assert_close(L.spherical_z_loss(jnp.array([[1.0, -1.0]]), jnp.array([0])), [math.log(2)])


# --------------------------- number token loss ---------------------------


def _ntl():
    c = REF["number_token_loss"]
    values = np.asarray([np.nan if v is None else v for v in c["token_values"]], np.float32)
    return c, np.asarray(c["logits"], np.float32), np.asarray(c["labels"], np.int32), values


def test_number_token_loss_mse_matches_reference():
    c, logits, labels, values = _ntl()
    out = np.asarray(L.number_token_loss(logits, labels, values))
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
    out = np.asarray(L.number_token_loss(logits, labels, values, variant="was"))
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
    for variant in ("mse", "was"):
        v, g = _value_and_grad(
            lambda z, variant=variant: jnp.sum(L.number_token_loss(z, labels, values, variant=variant))
        )(logits)
        assert np.isfinite(float(v)) and np.all(np.isfinite(np.asarray(g)))
        assert np.all(np.asarray(g)[1] == 0) and float(np.asarray(g)[0, 0]) == 0.0  # non-number row/token
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
    emb[3] = 0.0  # a zero row must not produce NaN
    v, g = _value_and_grad(lambda z: jnp.sum(L.earth_mover_distance_optimization(z, LABELS, emb)))(LOGITS)
    assert np.isfinite(float(v)) and np.all(np.isfinite(np.asarray(g)))


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
    part = jax.jit(
        jax.shard_map(
            lambda x: L.loss_based_sample_reweighting(x, axis_name="d")[None], mesh=mesh, in_specs=spec, out_specs=spec
        )
    )(losses)
    assert_close(jnp.sum(part), L.loss_based_sample_reweighting(losses))


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
    for edge in (0.0, -1e4):
        v, g = _value_and_grad(lambda x: jnp.sum(L.pass_at_n_coverage_loss(x, num_samples=n)))(jnp.array([edge]))
        assert np.isfinite(float(v)) and np.isfinite(float(g[0]))
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
    lp = L.token_log_probs(logits, labels)
    kw = dict(beta_1=c["beta1"], beta_2=c["beta2"])
    out = L.saturation_importance_unlearning_loss(lp, where=keep, **kw)
    assert_close(out, c["per_token"])
    assert_close(lossjax.masked_mean(out, keep), c["mean"])
    # The weights are constants: d loss / d log p = w.
    g = _grad(lambda x: jnp.sum(L.saturation_importance_unlearning_loss(x, **kw)))(lp)
    p = np.exp(np.asarray(lp, np.float64))
    assert_close(g, p ** c["beta1"] * (1 - p) ** c["beta2"], rtol=1e-4, atol=1e-7)


def test_satimp_edges():
    for edge in (0.0, -1e-30, -1e4):
        v, g = _value_and_grad(lambda x: jnp.sum(L.saturation_importance_unlearning_loss(x)))(jnp.array([edge]))
        assert np.isfinite(float(v)) and np.isfinite(float(g[0]))
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
