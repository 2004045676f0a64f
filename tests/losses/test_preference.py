"""Preference losses: golden values from trl's formulas (tests/reference/make_language_preference.py),
hand-derived cases, masking of per-token inputs, numerics at the edges, and the error messages."""

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
PI = REF["pref_inputs"]


def _grad(f, **kw):
    """``jax.grad`` compiled as one program (much faster than op-by-op on a busy CPU)."""
    return jax.jit(jax.grad(f, **kw))


def _value_and_grad(f, **kw):
    return jax.jit(jax.value_and_grad(f, **kw))


def assert_close(actual, expected, **kw):
    """``lossjax.testing.assert_close`` with JSON lists read as arrays (not pytrees)."""
    expected = jax.tree.map(np.asarray, expected, is_leaf=lambda x: isinstance(x, list))
    _assert_close(actual, expected, **kw)


def _tok(dtype=np.float32):
    pc, pr, rc, rr = (np.asarray(PI[k], dtype) for k in ("pc", "pr", "rc", "rr"))
    return pc, pr, rc, rr, np.asarray(PI["chosen_mask"]), np.asarray(PI["rejected_mask"])


def _seq(x, m, average=False):
    s = (x * m).sum(1)
    return s / np.maximum(m.sum(1), 1) if average else s


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-30)))


# ------------------------------ golden values ------------------------------


@pytest.mark.parametrize("case", range(3))
def test_dpo_matches_trl_token_inputs_with_masks(case):
    c = REF["dpo"][case]
    pc, pr, rc, rr, cm, rm = _tok()
    kw = dict(
        beta=c["beta"], label_smoothing=c["label_smoothing"], robust=c["robust"], chosen_where=cm, rejected_where=rm
    )
    loss = L.dpo_loss(pc, pr, rc, rr, **kw)
    cr = L.implicit_rewards(pc, rc, beta=c["beta"], token_where=cm)
    rj = L.implicit_rewards(pr, rr, beta=c["beta"], token_where=rm)
    assert_close(loss, c["loss"], err="dpo loss")
    assert_close(cr, c["chosen_rewards"], err="chosen rewards")
    assert_close(rj, c["rejected_rewards"], err="rejected rewards")
    # d(sum loss)/d(token logp) = d/d(sequence logp) on counted tokens, 0 on padding.
    g_c, g_r = _grad(lambda a, b: jnp.sum(L.dpo_loss(a, b, rc, rr, **kw)), argnums=(0, 1))(pc, pr)
    assert_close(g_c, np.asarray(c["grad_chosen_seq"])[:, None] * cm, err="dpo grad chosen")
    assert_close(g_r, np.asarray(c["grad_rejected_seq"])[:, None] * rm, err="dpo grad rejected")


def test_dpo_float64_parity():
    c = REF["dpo"][1]
    pc, pr, rc, rr, cm, rm = _tok(np.float64)
    with jax.enable_x64(True):
        out = L.dpo_loss(
            pc, pr, rc, rr, beta=c["beta"], label_smoothing=c["label_smoothing"], chosen_where=cm, rejected_where=rm
        )
        assert out.dtype == jnp.float64
        assert _rel(out, c["loss"]) < 1e-12


def test_sequence_inputs_equal_token_inputs():
    pc, pr, rc, rr, cm, rm = _tok()
    tok = L.dpo_loss(pc, pr, rc, rr, chosen_where=cm, rejected_where=rm)
    seq = L.dpo_loss(_seq(pc, cm), _seq(pr, rm), _seq(rc, cm), _seq(rr, rm))
    assert_close(tok, seq)
    # Mixed forms: per-token policy, reference precomputed per sequence.
    mixed = L.dpo_loss(pc, pr, _seq(rc, cm), _seq(rr, rm), chosen_where=cm, rejected_where=rm)
    assert_close(mixed, seq)
    assert_close(
        L.simpo_loss(pc, _seq(pr, rm, True), chosen_where=cm), L.simpo_loss(_seq(pc, cm, True), _seq(pr, rm, True))
    )
    tok = L.simpo_loss(pc, pr, chosen_where=cm, rejected_where=rm)
    seq = L.simpo_loss(_seq(pc, cm, True), _seq(pr, rm, True))
    assert_close(tok, seq)


@pytest.mark.parametrize("case", range(2))
def test_ipo_matches_trl(case):
    c = REF["ipo"][case]
    pc, pr, rc, rr, cm, rm = _tok()
    assert_close(L.ipo_loss(pc, pr, rc, rr, beta=c["beta"], chosen_where=cm, rejected_where=rm), c["loss"])


@pytest.mark.parametrize("case", range(2))
def test_simpo_matches_trl_cpo(case):
    c = REF["simpo"][case]
    pc, pr, _, _, cm, rm = _tok()
    kw = dict(beta=c["beta"], gamma=c["gamma"], label_smoothing=c["label_smoothing"])
    loss = L.simpo_loss(pc, pr, chosen_where=cm, rejected_where=rm, **kw)
    cr = L.implicit_rewards(pc, beta=c["beta"], token_where=cm, average=True)
    rj = L.implicit_rewards(pr, beta=c["beta"], token_where=rm, average=True)
    assert_close(loss, c["loss"])
    assert_close(cr, c["chosen_rewards"])
    assert_close(rj, c["rejected_rewards"])


@pytest.mark.parametrize("case", range(2))
def test_orpo_matches_trl(case):
    c = REF["orpo"][case]
    pc, pr, _, _, cm, rm = _tok()
    pca, pra = _seq(pc, cm, True), _seq(pr, rm, True)
    assert_close(L.orpo_loss(pc, pr, beta=c["beta"], chosen_where=cm, rejected_where=rm), c["loss"])
    g = _grad(lambda a, b: jnp.sum(L.orpo_loss(a, b, beta=c["beta"])), argnums=(0, 1))(pca, pra)
    assert_close(g, (c["grad_chosen_avg"], c["grad_rejected_avg"]), rtol=1e-4)


@pytest.mark.parametrize("case", range(2))
def test_kto_matches_trl(case):
    k = REF["kto"]
    c = k["cases"][case]
    kl = L.kto_reference_kl(np.asarray(k["kl_policy"], np.float32), np.asarray(k["kl_ref"], np.float32))
    assert_close(kl, c["kl"])
    out = L.kto_loss(
        np.asarray(k["policy"], np.float32),
        np.asarray(k["ref"], np.float32),
        np.asarray(k["desirable"]),
        kl,
        beta=c["beta"],
        desirable_weight=c["desirable_weight"],
        undesirable_weight=c["undesirable_weight"],
    )
    assert_close(out, c["loss"])


@pytest.mark.parametrize("case", range(2))
def test_npo_matches_reference_repo(case):
    c = REF["npo"][case]
    pc, _, rc, _, cm, _ = _tok()
    assert_close(L.negative_preference_optimization(pc, rc, beta=c["beta"], token_where=cm), c["loss"])


def test_soft_preference_matches_closed_form_and_cdpo():
    c = REF["soft_pref"]
    pc, pr, rc, rr, cm, rm = _tok()
    q = np.asarray(c["strengths"], np.float32)
    out = L.soft_preference_cross_entropy(pc, pr, rc, rr, q, beta=c["beta"], chosen_where=cm, rejected_where=rm)
    assert_close(out, c["loss"])
    # q = 1 - e on every example is conservative DPO with label smoothing e.
    e = 0.2
    soft = L.soft_preference_cross_entropy(
        pc, pr, rc, rr, np.full(5, 1 - e, np.float32), chosen_where=cm, rejected_where=rm
    )
    cdpo = L.dpo_loss(pc, pr, rc, rr, label_smoothing=e, chosen_where=cm, rejected_where=rm)
    assert_close(soft, cdpo)


def test_implicit_rewards_for_each_loss():
    """beta * (policy - ref) of the summed (DPO, soft preference, KTO) or averaged (IPO) log-probs,
    reference-free and averaged for SimPO / ORPO; constants, garbage in padding ignored."""
    pc, pr, rc, _, cm, rm = _tok()
    b = 0.3
    want = b * (_seq(pc, cm) - _seq(rc, cm))
    assert_close(L.implicit_rewards(pc, rc, beta=b, token_where=cm), want)
    assert_close(L.implicit_rewards(pc, _seq(rc, cm), beta=b, token_where=cm), want)  # mixed forms
    assert_close(L.implicit_rewards(_seq(pc, cm), _seq(rc, cm), beta=b), want)
    assert_close(
        L.implicit_rewards(pc, rc, beta=b, token_where=cm, average=True),
        b * (_seq(pc, cm, True) - _seq(rc, cm, True)),
    )
    assert_close(L.implicit_rewards(pr, beta=b, token_where=rm, average=True), b * _seq(pr, rm, True))
    dirty = np.where(cm, pc, np.nan).astype(np.float32)
    assert_close(L.implicit_rewards(dirty, rc, beta=b, token_where=cm), want)
    g = _grad(lambda a, r: jnp.sum(L.implicit_rewards(a, r, beta=b, token_where=cm)), argnums=(0, 1))(pc, rc)
    assert all(np.all(np.asarray(x) == 0) for x in g)
    entry = lossjax.registry.get_entry("implicit_rewards")
    assert entry.kind == "function" and set(entry.hyperparams) == {"beta", "average"}
    with pytest.raises(ValueError, match=r"implicit_rewards: `token_where` is only meaningful with per-token"):
        L.implicit_rewards(_seq(pc, cm), token_where=cm)
    with pytest.raises(ValueError, match=r"implicit_rewards: `beta` must be >= 0, got -1.0"):
        L.implicit_rewards(pc, beta=-1.0)
    with pytest.raises(ValueError, match=r"implicit_rewards: every log-prob argument needs the same batch size"):
        L.implicit_rewards(pc, rc[:3])


def test_token_and_sequence_log_probs():
    c = REF["token_log_probs"]
    lp = L.token_log_probs(np.asarray(c["logits"], np.float32), np.asarray(c["labels"], np.int32))
    assert_close(lp, c["value"])
    x = np.array([[-1.0, -2.0, np.nan, -np.inf]], np.float32)
    m = np.array([[1, 1, 0, 0]])
    assert_close(L.sequence_log_probs(x, token_where=m), [-3.0])
    assert_close(L.sequence_log_probs(x, token_where=m, average=True), [-1.5])
    # An all-masked row gives 0, not NaN.
    assert_close(L.sequence_log_probs(x, token_where=np.zeros_like(m), average=True), [0.0])
    # Ignore-index labels are out of range: NaN unless masked (then 0), as JAX's out-of-bounds gather.
    assert np.isnan(float(L.token_log_probs(jnp.zeros((1, 3)), jnp.array([-100]))[0]))
    assert float(L.token_log_probs(jnp.zeros((1, 3)), jnp.array([-100]), where=jnp.array([False]))[0]) == 0.0


# ----------------------------- hand-derived cases -----------------------------


def test_hand_computed_values():
    z = jnp.array([-2.0])
    # Equal policy and reference: DPO margin 0 -> log 2; NPO -> (2/beta) log 2; KTO -> w/2.
    assert_close(L.dpo_loss(z, z, z, z), [math.log(2)])
    assert_close(L.negative_preference_optimization(z, z, beta=0.5), [4 * math.log(2)])
    assert_close(L.kto_loss(z, z, jnp.array([True]), 0.0, desirable_weight=3.0), [1.5])
    # IPO minimum at margin 1/(2 beta): zero loss.
    assert_close(L.ipo_loss(jnp.array([0.0]), jnp.array([-5.0]), z, z, beta=0.1), [0.0])
    # ORPO with equal responses: odds ratio 1 -> -avg log p + beta log 2.
    assert_close(L.orpo_loss(jnp.array([-0.3]), jnp.array([-0.3]), beta=0.1), [0.3 + 0.1 * math.log(2)])
    # Robust DPO is unbiased: averaging over a flip with rate e recovers the clean loss.
    e, m = 0.2, jnp.array([1.3])
    zero = jnp.zeros(1)
    flip = (1 - e) * L.dpo_loss(m, zero, zero, zero, beta=1.0, label_smoothing=e, robust=True) + e * L.dpo_loss(
        zero, m, zero, zero, beta=1.0, label_smoothing=e, robust=True
    )
    assert_close(flip, L.dpo_loss(m, zero, zero, zero, beta=1.0))


def test_reference_is_constant():
    pc, pr, rc, rr, cm, rm = _tok()
    g = _grad(lambda a, b: jnp.sum(L.dpo_loss(pc, pr, a, b, chosen_where=cm, rejected_where=rm)), argnums=(0, 1))(
        rc, rr
    )
    assert all(np.all(np.asarray(x) == 0) for x in g)
    g = _grad(lambda r: jnp.sum(L.negative_preference_optimization(pc, r)))(rc)
    assert np.all(np.asarray(g) == 0)
    k = REF["kto"]
    g = _grad(
        lambda kl: jnp.sum(L.kto_loss(np.float32(k["policy"]), np.float32(k["ref"]), np.asarray(k["desirable"]), kl))
    )(jnp.float32(0.3))
    assert float(g) == 0.0


# ------------------------------ masking / garbage ------------------------------


@pytest.mark.parametrize(
    "loss_fn",
    [
        lambda pc, pr, rc, rr, **k: L.dpo_loss(pc, pr, rc, rr, **k),
        lambda pc, pr, rc, rr, **k: L.ipo_loss(pc, pr, rc, rr, **k),
        lambda pc, pr, rc, rr, **k: L.simpo_loss(pc, pr, **k),
        lambda pc, pr, rc, rr, **k: L.orpo_loss(pc, pr, **k),
    ],
    ids=["dpo", "ipo", "simpo", "orpo"],
)
def test_garbage_in_padded_tokens(loss_fn):
    pc, pr, rc, rr, cm, rm = _tok()
    clean = loss_fn(pc, pr, rc, rr, chosen_where=cm, rejected_where=rm)
    dirty = [
        np.where(m, x, v).astype(np.float32)
        for x, m, v in ((pc, cm, np.nan), (pr, rm, -np.inf), (rc, cm, np.inf), (rr, rm, np.nan))
    ]
    f = jax.jit(lambda a, b, c, d: loss_fn(a, b, c, d, chosen_where=cm, rejected_where=rm))
    assert_close(f(*dirty), clean)
    g = _grad(lambda a, b: jnp.sum(f(a, b, dirty[2], dirty[3])), argnums=(0, 1))(dirty[0], dirty[1])
    g_clean = _grad(lambda a, b: jnp.sum(f(a, b, rc, rr)), argnums=(0, 1))(pc, pr)
    assert_close(g, g_clean)  # the same gradient as with clean padding (0 there)
    assert np.all(np.asarray(g[0])[~cm] == 0) and np.all(np.asarray(g[1])[~rm] == 0)


def test_where_with_token_masks_equals_slicing():
    pc, pr, rc, rr, cm, rm = _tok()
    w = np.array([True, False, True, True, False])
    out = L.dpo_loss(pc, pr, rc, rr, chosen_where=cm, rejected_where=rm, where=w)
    ref = L.dpo_loss(pc[w], pr[w], rc[w], rr[w], chosen_where=cm[w], rejected_where=rm[w])
    assert np.all(np.asarray(out)[~w] == 0)
    assert_close(np.asarray(out)[w], ref)


def test_vmap_over_token_inputs_with_masks():
    pc, pr, rc, rr, cm, rm = _tok()
    stack = lambda x: np.stack([x, x[::-1]])  # noqa: E731
    f = jax.vmap(lambda a, b, c, d, m1, m2: L.dpo_loss(a, b, c, d, chosen_where=m1, rejected_where=m2))
    out = jax.jit(f)(*(stack(x) for x in (pc, pr, rc, rr, cm, rm)))
    assert_close(out[0], L.dpo_loss(pc, pr, rc, rr, chosen_where=cm, rejected_where=rm))
    assert_close(
        out[1], L.dpo_loss(pc[::-1], pr[::-1], rc[::-1], rr[::-1], chosen_where=cm[::-1], rejected_where=rm[::-1])
    )


# ------------------------------- numerics -------------------------------


def _softplus(x):
    return np.logaddexp(0.0, x)


def _sigmoid(x):
    return np.exp(-_softplus(-x))


def _log1mexp(x):
    x = np.asarray(x, np.float64)
    return np.where(x < -math.log(2), np.log1p(-np.exp(np.minimum(x, -1.0))), np.log(-np.expm1(np.maximum(x, -1.0))))


# Closed forms in float64 of each loss at the edges, as (value, d value / d a) for the first argument a
# (per-sequence inputs; reference log-probs are constants): -log s(x) = softplus(-x), its derivative -s(-x).
def _edge_dpo(a, y):  # dpo_loss(a, y, y, a): D = (a - y) - (y - a_ref)
    d = 0.1 * ((a - y) - (y - a))
    return _softplus(-d), -0.1 * _sigmoid(-d)


def _edge_ipo(a, y):  # ipo_loss(a, y, y, a): (D - 1 / (2 beta))^2, dD/da = 1
    d = (a - y) - (y - a) - 5.0
    return d**2, 2 * d


def _edge_simpo(a, y):  # x = beta (a - y) - gamma, beta = 2, gamma = 0.5
    x = 2.0 * (a - y) - 0.5
    return _softplus(-x), -2.0 * _sigmoid(-x)


def _edge_orpo(c, r):  # -c - beta log s(log odds), log odds = c - r - log1mexp(c) + log1mexp(r)
    lo = c - r - _log1mexp(c) + _log1mexp(r)
    dlo = 1 + np.exp(c) / -np.expm1(c)
    return -c + 0.1 * _softplus(-lo), -1 - 0.1 * _sigmoid(-lo) * dlo


def _edge_orpo_rejected(r, c):  # orpo_loss(c, a): derivative in the rejected log-prob
    lo = c - r - _log1mexp(c) + _log1mexp(r)
    dlo = -1 - np.exp(r) / -np.expm1(r)
    return -c + 0.1 * _softplus(-lo), -0.1 * _sigmoid(-lo) * dlo


def _edge_npo(a, y):  # -(2 / beta) log s(beta (y - a))
    x = 0.1 * (y - a)
    return 20.0 * _softplus(-x), 2.0 * _sigmoid(-x)


def _edge_kto(a, y):  # desirable, undesirable, desirable; kl = 1: 1 - s(b (r - 1)) / 1 - s(b (1 - r))
    r = a - y
    des = np.array([True, False, True])
    x = np.where(des, 0.1 * (r - 1.0), 0.1 * (1.0 - r))
    v = _sigmoid(-x)
    return v, np.where(des, -0.1, 0.1) * v * (1 - v)


_EDGE_CASES = {
    "dpo": (lambda a, y: L.dpo_loss(a, y, y, a), _edge_dpo),
    "ipo": (lambda a, y: L.ipo_loss(a, y, y, a), _edge_ipo),
    "simpo": (lambda a, y: L.simpo_loss(a, y), _edge_simpo),
    "orpo_chosen": (lambda a, y: L.orpo_loss(a, y), _edge_orpo),
    "orpo_rejected": (lambda a, y: L.orpo_loss(y, a), _edge_orpo_rejected),
    "npo": (lambda a, y: L.negative_preference_optimization(a, y), _edge_npo),
    "kto": (lambda a, y: L.kto_loss(a, y, jnp.array([True, False, True]), 1.0), _edge_kto),
}


@pytest.mark.parametrize("value", [-1e-30, -1e-3, -1e4, -1e6])
@pytest.mark.parametrize("name", list(_EDGE_CASES))
def test_edges_match_closed_forms(name, value):
    """Log-probabilities next to 0 (p -> 1) and of -1e4, -1e6 (p -> 0): the float64 closed forms, value and
    gradient (these used to assert finiteness only)."""
    fn, closed = _EDGE_CASES[name]
    x = np.full((3,), value, np.float64)
    y = np.array([-0.5, -1.0, -1e4])
    v, g = _value_and_grad(lambda a: jnp.sum(fn(a, jnp.asarray(y, jnp.float32))))(jnp.asarray(x, jnp.float32))
    want_v, want_g = closed(x, y)
    assert_close(v, np.sum(want_v), rtol=2e-5, atol=1e-6)
    assert_close(g, want_g, rtol=2e-5, atol=1e-7)


def test_orpo_at_probability_one():
    # Average log-prob exactly 0: odds = inf. The loss is the limit -0 - beta log s(+inf) = 0 (NLL 0,
    # log-odds +inf against a rejected response of probability e^-1); the gradient's limit is -1 (the NLL's:
    # the odds-ratio term's derivative s(-lo) dlo/dc -> 0 as (1 - p) / p * e^{-lo} -> 0).
    v, g = _value_and_grad(lambda a: jnp.sum(L.orpo_loss(a, jnp.array([-1.0]))))(jnp.array([0.0]))
    assert_close(v, 0.0, atol=1e-6)
    assert_close(g, [-1.0], atol=1e-5)
    # Both responses of probability 1: log-odds 0 by symmetry, beta log 2.
    assert_close(L.orpo_loss(jnp.zeros(2), jnp.zeros(2), beta=0.25), np.full(2, 0.25 * math.log(2.0)))


def test_bf16_token_inputs_compute_in_float32():
    pc, pr, rc, rr, cm, rm = _tok()
    low = [jnp.asarray(x, jnp.bfloat16) for x in (pc, pr, rc, rr)]
    out = L.dpo_loss(*low, chosen_where=cm, rejected_where=rm)
    assert out.dtype == jnp.float32
    ref = L.dpo_loss(*(np.asarray(x, np.float32) for x in low), chosen_where=cm, rejected_where=rm)
    assert_close(out, ref)


def test_kto_reference_kl_across_devices():
    k = REF["kto"]
    p = np.asarray(k["kl_policy"], np.float32)
    r = np.asarray(k["kl_ref"], np.float32)
    if jax.device_count() < 2:
        pytest.fail("needs two devices (conftest simulates 8 CPU devices)")
    n = 2
    mesh = Mesh(np.array(jax.devices()[:2]), ("d",))
    f = jax.jit(
        jax.shard_map(
            lambda a, b: L.kto_reference_kl(a, b, axis_name="d")[None],
            mesh=mesh,
            in_specs=(PartitionSpec("d"), PartitionSpec("d")),
            out_specs=PartitionSpec("d"),
        )
    )
    out = f(p, r)
    assert_close(out, np.full(n, float(L.kto_reference_kl(p, r))))
    assert float(L.kto_reference_kl(np.array([-3.0], np.float32), np.array([-1.0], np.float32))) == 0.0  # clamped


# ------------------------------ bad inputs ------------------------------


def test_errors_name_function_argument_and_shapes():
    pc, pr, rc, rr, cm, rm = _tok()
    with pytest.raises(ValueError, match=r"dpo_loss: argument `policy_chosen_log_probs` must have rank 1 or 2"):
        L.dpo_loss(pc[..., None], pr, rc, rr)
    with pytest.raises(
        ValueError,
        match=r"dpo_loss: per-token `ref_chosen_log_probs` must have the shape of `policy_chosen_log_probs`",
    ):
        L.dpo_loss(pc, pr, rc[:, :3], rr)
    with pytest.raises(ValueError, match=r"dpo_loss: `chosen_where` must have the shape of `policy_chosen_log_probs`"):
        L.dpo_loss(pc, pr, rc, rr, chosen_where=rm)
    with pytest.raises(ValueError, match=r"simpo_loss: `chosen_where` is only meaningful with per-token"):
        L.simpo_loss(pc.sum(1), pr.sum(1), chosen_where=cm)
    with pytest.raises(ValueError, match=r"same batch size"):
        L.orpo_loss(pc, pr[:3])
    with pytest.raises(TypeError, match=r"must have a float dtype"):
        L.ipo_loss(cm, pr, rc, rr)
    with pytest.raises(ValueError, match=r"dpo_loss: `beta` must be > 0, got 0.0"):
        L.dpo_loss(pc, pr, rc, rr, beta=0.0)
    with pytest.raises(ValueError, match=r"dpo_loss: `label_smoothing` must lie in \[0.0, 0.5\)"):
        L.dpo_loss(pc, pr, rc, rr, label_smoothing=0.5)
    with pytest.raises(TypeError, match=r"kto_loss: `desirable` must be a boolean"):
        L.kto_loss(pc, rc, np.ones(5, np.int32), 0.0)
    with pytest.raises(ValueError, match=r"kto_loss: `kl` must be a scalar or have shape \(5,\)"):
        L.kto_loss(pc, rc, np.ones(5, bool), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"soft_preference_cross_entropy: `preference_probs` must have shape \(5,\)"):
        L.soft_preference_cross_entropy(pc, pr, rc, rr, np.ones(4, np.float32))
    with pytest.raises(ValueError, match=r"`where` must be broadcastable"):
        L.negative_preference_optimization(pc, rc, where=np.ones(4, bool))


def test_registry_names_and_runtime_masks():
    assert lossjax.registry.get_entry("dpo").name == "dpo_loss"
    assert lossjax.registry.get_entry("npo").name == "negative_preference_optimization"
    dpo = lossjax.get("dpo_loss(beta=0.5, label_smoothing=0.1)")
    assert set(dpo.entry.hyperparams) == {
        "beta",
        "label_smoothing",
        "robust",
        "variant",
        "f_divergence",
        "f_divergence_alpha",
        "temperature",
        "reference_free",
    }
    pc, pr, rc, rr, cm, rm = _tok()
    want = L.dpo_loss(pc, pr, rc, rr, beta=0.5, label_smoothing=0.1, chosen_where=cm, rejected_where=rm)
    assert_close(dpo(pc, pr, rc, rr, chosen_where=cm, rejected_where=rm), want)
    assert lossjax.from_config(dpo.to_config()).to_config() == {"name": "dpo_loss", "beta": 0.5, "label_smoothing": 0.1}


def test_dpo_on_the_fused_head_equals_the_logits_path():
    # Per-token log-probs from the fused linear cross-entropy (no [N, V] logits) feed DPO directly.
    rng = np.random.default_rng(7)
    b, t, d, v = 2, 3, 4, 9
    hidden = rng.normal(size=(2, b * t, d)).astype(np.float32)  # chosen, rejected
    weight = rng.normal(size=(v, d)).astype(np.float32)
    labels = rng.integers(0, v, size=(2, b * t)).astype(np.int32)
    labels[:, 2] = -100  # a prompt/padding token
    ref = -rng.uniform(1.0, 5.0, size=(2, b)).astype(np.float32)
    masks = (labels != -100).reshape(2, b, t)

    def fused(h):
        lp = -L.linear_cross_entropy(h.reshape(2 * b * t, d), weight, labels.reshape(-1))
        lp = lp.reshape(2, b, t)
        return jnp.sum(L.dpo_loss(lp[0], lp[1], ref[0], ref[1], chosen_where=masks[0], rejected_where=masks[1]))

    def naive(h):
        lp = L.token_log_probs(jnp.einsum("nsd,vd->nsv", h, weight), labels).reshape(2, b, t)
        return jnp.sum(L.dpo_loss(lp[0], lp[1], ref[0], ref[1], chosen_where=masks[0], rejected_where=masks[1]))

    vf, gf = _value_and_grad(fused)(hidden)
    vn, gn = _value_and_grad(naive)(hidden)
    assert_close(vf, vn)
    assert_close(gf, gn, rtol=1e-4, atol=1e-6)


def test_noisy_verifier_backward_correction_is_unbiased():
    rho0, rho1 = 0.15, 0.3
    fix = lambda r: L.noisy_verifier_reward_correction(  # noqa: E731
        jnp.asarray(r, jnp.float32), false_positive_rate=rho0, false_negative_rate=rho1
    )
    # E[r_hat | r = 1] = (1 - rho1) fix(1) + rho1 fix(0) = 1 and E[r_hat | r = 0] = rho0 fix(1) + (1 - rho0) fix(0) = 0.
    one, zero = float(fix(1.0)), float(fix(0.0))
    assert_close((1 - rho1) * one + rho1 * zero, 1.0)
    assert_close(rho0 * one + (1 - rho0) * zero, 0.0)
    assert_close(L.noisy_verifier_reward_correction(jnp.array([[0, 1]])), [[0.0, 1.0]])  # no noise: identity
    assert L.noisy_verifier_reward_correction(jnp.array([True, False])).dtype == jnp.float32
    with pytest.raises(ValueError, match=r"`false_positive_rate` \+ `false_negative_rate` must be < 1"):
        L.noisy_verifier_reward_correction(jnp.ones(2), false_positive_rate=0.6, false_negative_rate=0.4)
    with pytest.raises(ValueError, match=r"`false_negative_rate` must lie in \[0.0, 1.0\)"):
        L.noisy_verifier_reward_correction(jnp.ones(2), false_negative_rate=1.0)


def test_checkpoint_and_batch_sharded_inputs():
    pc, pr, rc, rr, cm, rm = (x[:4] for x in _tok())

    def total(a, b):
        return jnp.sum(L.dpo_loss(a, b, rc, rr, chosen_where=cm, rejected_where=rm))

    want_v, want_g = _value_and_grad(total, argnums=(0, 1))(pc, pr)
    got_v, got_g = _value_and_grad(jax.checkpoint(total), argnums=(0, 1))(pc, pr)
    assert_close((got_v, got_g), (want_v, want_g))
    if jax.device_count() < 2:
        pytest.fail("needs two devices (conftest simulates 8 CPU devices)")
    mesh = Mesh(np.array(jax.devices()[:2]), ("d",))
    batch = jax.sharding.NamedSharding(mesh, PartitionSpec("d"))
    spc, spr = jax.device_put(pc, batch), jax.device_put(pr, batch)
    got_v, got_g = _value_and_grad(total, argnums=(0, 1))(spc, spr)
    assert_close((got_v, got_g), (want_v, want_g))


@pytest.mark.parametrize("case", range(4))
def test_flat_matches_reference(case):
    r = REF["flat"]
    c = r["cases"][case]
    gl, bl = np.asarray(r["good_logits"], np.float32), np.asarray(r["bad_logits"], np.float32)
    gy, by = np.asarray(r["good_labels"], np.int32), np.asarray(r["bad_labels"], np.int32)

    def loss(a, b):
        return L.forget_only_f_divergence_unlearning(
            L.token_log_probs(a, gy), L.token_log_probs(b, by), divergence=c["divergence"]
        )

    v, (g_good, g_bad) = _value_and_grad(loss, argnums=(0, 1))(gl, bl)
    assert_close(v, c["loss"])
    assert_close(g_good, c["grad_good_logits"], rtol=1e-4, atol=1e-7)
    assert_close(g_bad, c["grad_bad_logits"], rtol=1e-4, atol=1e-7)


def test_flat_masks_and_errors():
    rng = np.random.default_rng(3)
    good = (-rng.uniform(0.1, 2.0, size=(3, 4))).astype(np.float32)
    bad = (-rng.uniform(0.1, 2.0, size=(3, 5))).astype(np.float32)
    gm = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], bool)
    bm = np.ones((3, 5), bool)
    bm[:, 4] = False
    # Masked means over the counted tokens (closed form), garbage in padding ignored.
    g = np.exp(good)[gm].mean()
    f = np.exp(bad)[bm].mean()
    want = -np.tanh(g) / 2 + np.tanh(f) / 2
    dirty_good = np.where(gm, good, np.nan).astype(np.float32)
    out = L.forget_only_f_divergence_unlearning(dirty_good, bad, template_where=gm, forget_where=bm)
    assert_close(out, want)
    # where drops whole examples, exactly like slicing the batch.
    w = np.array([True, False, True])
    out = L.forget_only_f_divergence_unlearning(good, bad, template_where=gm, forget_where=bm, where=w)
    assert_close(out, L.forget_only_f_divergence_unlearning(good[w], bad[w], template_where=gm[w], forget_where=bm[w]))
    with pytest.raises(ValueError, match=r"forget_only_f_divergence_unlearning: `divergence` must be one of"):
        L.forget_only_f_divergence_unlearning(good, bad, divergence="Reverse-KL")
    with pytest.raises(ValueError, match=r"need the same batch size"):
        L.forget_only_f_divergence_unlearning(good, bad[:2])


# ---------------------- issue 19: hyperparameters, empty batches ----------------------

_S = np.array([-1.0, -2.0], np.float32)


@pytest.mark.parametrize(
    ("call", "arg"),
    [
        (lambda v: L.dpo_loss(_S, _S, _S, _S, beta=v), "beta"),
        (lambda v: L.dpo_loss(_S, _S, _S, _S, label_smoothing=v), "label_smoothing"),
        (lambda v: L.soft_preference_cross_entropy(_S, _S, _S, _S, _S * 0, beta=v), "beta"),
        (lambda v: L.ipo_loss(_S, _S, _S, _S, beta=v), "beta"),
        (lambda v: L.simpo_loss(_S, _S, beta=v), "beta"),
        (lambda v: L.simpo_loss(_S, _S, gamma=v), "gamma"),
        (lambda v: L.simpo_loss(_S, _S, label_smoothing=v), "label_smoothing"),
        (lambda v: L.orpo_loss(_S, _S, beta=v), "beta"),
        (lambda v: L.implicit_rewards(_S, _S, beta=v), "beta"),
        (lambda v: L.kto_loss(_S, _S, np.array([True, False]), 0.0, beta=v), "beta"),
        (lambda v: L.kto_loss(_S, _S, np.array([True, False]), 0.0, desirable_weight=v), "desirable_weight"),
        (lambda v: L.kto_loss(_S, _S, np.array([True, False]), 0.0, undesirable_weight=v), "undesirable_weight"),
        (lambda v: L.negative_preference_optimization(_S, _S, beta=v), "beta"),
        (lambda v: L.noisy_verifier_reward_correction(_S, false_positive_rate=v), "false_positive_rate"),
        (lambda v: L.noisy_verifier_reward_correction(_S, false_negative_rate=v), "false_negative_rate"),
    ],
)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_and_inf_hyperparameters_are_rejected(call, arg, bad):
    """Issue 19 item 8: NaN/inf hyperparameters are a trace-time error naming the argument."""
    with pytest.raises(ValueError, match=rf"`{arg}` must"):
        call(bad)


@pytest.mark.parametrize(
    "call",
    [
        lambda e, t: L.dpo_loss(t, t, t, t),
        lambda e, t: L.soft_preference_cross_entropy(e, e, e, e, e),
        lambda e, t: L.ipo_loss(t, t, e, e),
        lambda e, t: L.simpo_loss(t, t),
        lambda e, t: L.orpo_loss(t, e),
        lambda e, t: L.implicit_rewards(t, t),
        lambda e, t: L.kto_loss(t, t, np.zeros(0, bool), 0.0),
        lambda e, t: L.negative_preference_optimization(t, t),
        lambda e, t: L.noisy_verifier_reward_correction(e),
    ],
)
def test_empty_batch_gives_an_empty_result(call):
    """Issue 19 item 9: a batch of size 0 gives an empty per-example array."""
    out = np.asarray(call(np.zeros((0,), np.float32), np.zeros((0, 3), np.float32)))
    assert out.shape == (0,) and out.dtype == np.float32


def test_empty_batch_of_batch_level_losses_is_zero():
    e = np.zeros((0, 3), np.float32)
    assert float(L.forget_only_f_divergence_unlearning(e, e)) == 0.0
    assert float(L.kto_reference_kl(np.zeros(0, np.float32), np.zeros(0, np.float32))) == 0.0
