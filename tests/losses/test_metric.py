"""Metric-learning / contrastive losses: golden values, closed forms, edge cases, errors.

Golden values (values and gradients) come from tests/reference/metric.json,
written by tests/reference/make_metric.py (pytorch-metric-learning 2.9.0,
optax, torch ports of the paper code; see that script), and, for the pair
regularizers (orthogonal projection, threshold-consistent margin), from
tests/reference/margins.json (runner: golden_margins.py). The JSON files keep
the argument names of the day they were written; ``RENAMED`` maps them.
"""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from golden_margins import REF as MARGINS_REF
from golden_margins import case_names, run_case

from lossjax import losses as L
from lossjax import miners
from lossjax.testing import assert_close

REF = json.loads((pathlib.Path(__file__).resolve().parents[1] / "reference" / "metric.json").read_text())
CASES = REF["cases"]

# {(loss or "*"): {name in metric.json: name today}}
RENAMED = {
    "*": {"metric": "distance"},
    "multi_similarity_loss": {"epsilon": "mining_margin"},
    "circle_loss": {"gamma": "scale"},
}


def _kwargs(case):
    renamed = {**RENAMED["*"], **RENAMED.get(case["loss"], {})}
    return {renamed.get(k, k): v for k, v in case["kwargs"].items()}


LABELLED = [
    "pairwise_contrastive_loss",
    "batch_triplet_loss",
    "lifted_structure_loss",
    "npair_loss",
    "multi_similarity_loss",
    "circle_loss",
    "supervised_contrastive_loss",
    "ntxent_loss",
]
PAIRED = [
    "infonce_loss",
    "symmetric_infonce_loss",
    "sigmoid_contrastive_loss",
    "continuously_weighted_contrastive_loss",
]


def _args(case):
    inp = case["inputs"]
    if "embeddings" in inp:
        keys = ["embeddings"]
        fixed = [np.asarray(inp["labels"], np.int32)]
    elif "anchors" in inp:
        keys, fixed = ["anchors", "positives", "negatives"], []
    else:
        keys = ["a", "b"]
        fixed = [np.asarray(inp["prior"], np.float32)] if "prior" in inp else []
    return keys, [np.asarray(inp[k], np.float32) for k in keys], fixed


def _rel_err(actual, expected):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-12))


@pytest.mark.parametrize("case", CASES, ids=[f"{c['loss']}-{c['name']}" for c in CASES])
def test_golden_values_and_gradients(case):
    fn = getattr(L, case["loss"])
    keys, diff, fixed = _args(case)
    kw = _kwargs(case)

    def total(*d):
        return jnp.sum(fn(*d, *fixed, **kw))

    value, grads = jax.jit(lambda *d: (fn(*d, *fixed, **kw), jax.grad(total, argnums=tuple(range(len(d))))(*d)))(*diff)
    expected = np.asarray(case["value"])
    assert np.shape(value) == expected.shape
    # float32 computation against float64 references: relative 2e-5 of the largest entry.
    scale = max(float(np.max(np.abs(expected))), 1e-3)
    assert_close(value, expected, rtol=2e-5, atol=2e-6 * scale, err=f"{case['loss']} {case['name']}: value")
    for k, g in zip(keys, grads, strict=True):
        ref = np.asarray(case["grads"][k])
        gscale = max(float(np.max(np.abs(ref))), 1e-6)
        assert _rel_err(g, ref) < 2e-5, f"{case['loss']} {case['name']}: d/d{k} max rel err {_rel_err(g, ref):.2e}"
        assert gscale > 1e-6 or case["loss"] == "triplet_margin_loss", "vacuous gradient comparison"


# ------------------------------ closed forms --------------------------------


def test_batch_hard_triplet_by_hand():
    # 1-D points; anchor: farthest positive, closest negative; margin 1.
    # a0: 1 - 0.5 + 1 = 1.5; a1: 1 - 0.5 + 1 = 1.5; a2: 2.5 - 0.5 + 1 = 3; a3: 2.5 - 2 + 1 = 1.5
    x = jnp.array([[0.0], [1.0], [0.5], [3.0]])
    y = jnp.array([0, 0, 1, 1])
    out = L.batch_triplet_loss(x, y, margin=1.0, mining="hard", normalize=False)
    assert_close(out, (1.5 + 1.5 + 3.0 + 1.5) / 4)


def _triplet_bruteforce(x, y, margin, mining):
    d = np.sqrt(np.maximum(((x[:, None] - x[None]) ** 2).sum(-1), 0))
    n = len(y)
    losses = []
    for a in range(n):
        for p in range(n):
            if p == a or y[p] != y[a]:
                continue
            for q in range(n):
                if y[q] == y[a]:
                    continue
                gap = d[a, q] - d[a, p]
                if mining == "semihard" and not (0 < gap <= margin):
                    continue
                losses.append(max(d[a, p] - d[a, q] + margin, 0.0))
    losses = np.array(losses)
    return losses[losses > 0].mean() if np.any(losses > 0) else 0.0


@pytest.mark.parametrize("mining", ["all", "semihard"])
def test_sorted_triplet_sum_matches_brute_force(mining):
    """The O(N^2 log N) sorted form equals the explicit N^3 triplet enumeration, ties included."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(10, 3)).astype(np.float32)
    x[3] = x[0]  # identical embeddings: zero distances and ties
    y = np.array([0, 1, 0, 1, 2, 2, 0, 1, 2, 3])
    ours = L.batch_triplet_loss(x, y, margin=0.7, mining=mining, normalize=False)
    assert_close(ours, _triplet_bruteforce(x.astype(np.float64), y, 0.7, mining), rtol=1e-5)


def test_semihard_loss_uses_the_semihard_miner():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(9, 3)).astype(np.float32)
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    mask = np.asarray(miners.semihard_miner(x, y, margin=0.4, normalize=False))
    d = np.asarray(jnp.sqrt(jnp.maximum(jnp.sum((x[:, None] - x[None]) ** 2, -1), 0)))
    a, p, n = np.nonzero(mask)
    per = np.maximum(d[a, p] - d[a, n] + 0.4, 0)
    assert len(per) > 0
    assert_close(L.batch_triplet_loss(x, y, margin=0.4, mining="semihard", normalize=False), per[per > 0].mean())


def test_batch_hard_loss_uses_the_batch_hard_miner():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    ok, p, n = (np.asarray(t) for t in miners.batch_hard_miner(x, y))
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    a = np.arange(8)
    per = np.maximum(np.linalg.norm(xn[a] - xn[p], axis=1) - np.linalg.norm(xn[a] - xn[n], axis=1) + 0.2, 0)[ok]
    assert_close(L.batch_triplet_loss(x, y, margin=0.2, mining="hard"), per[per > 0].mean(), rtol=1e-5)


def test_pairwise_contrastive_by_hand():
    # Unnormalized 1-D points; pairs (0,1) positive at distance 0.5, (0,2) and (1,2) negatives at 2 and 1.5.
    x = jnp.array([[0.0], [0.5], [2.0]])
    y = jnp.array([0, 0, 1])
    # pos: relu(0.5 - 0.2) = 0.3 (both orders); neg with margin 1.8: relu(1.8 - 2) = 0, relu(1.8 - 1.5) = 0.3.
    out = L.pairwise_contrastive_loss(x, y, pos_margin=0.2, neg_margin=1.8, normalize=False)
    assert_close(out, 0.3 + 0.3)


def test_simclr_is_ntxent_with_two_views():
    """NT-Xent on 2B views with labels [0..B-1, 0..B-1] is SimCLR's loss (closed form)."""
    rng = np.random.default_rng(6)
    z1, z2 = rng.normal(size=(2, 5, 4)).astype(np.float32)
    z = np.concatenate([z1, z2])
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    s = zn @ zn.T / 0.5
    np.fill_diagonal(s, -np.inf)
    pos = np.concatenate([np.arange(5, 10), np.arange(5)])
    logp = s[np.arange(10), pos] - np.log(np.exp(s).sum(1))
    out = L.ntxent_loss(z, np.concatenate([np.arange(5), np.arange(5)]), temperature=0.5)
    assert_close(out, -logp.mean(), rtol=1e-5)


def test_clip_is_the_mean_of_two_infonce_directions():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(2, 6, 3)).astype(np.float32)
    sym = jnp.mean(L.symmetric_infonce_loss(a, b, temperature=0.3))
    two = 0.5 * (jnp.mean(L.infonce_loss(a, b, temperature=0.3)) + jnp.mean(L.infonce_loss(b, a, temperature=0.3)))
    assert_close(sym, two)


def test_soft_infonce_without_weights_is_infonce():
    rng = np.random.default_rng(9)
    q, k = rng.normal(size=(2, 5, 3)).astype(np.float32)
    prior = rng.normal(size=(5, 5)).astype(np.float32)
    soft, plain = jax.jit(  # one compile (eager calls compile each op per shape)
        lambda q, k: (
            L.soft_infonce_loss(q, k, prior, alpha=0.0),
            L.infonce_loss(q, k, temperature=1.0, distance="dot"),
        )
    )(q, k)
    assert_close(soft, plain)


def test_infonce_identical_and_zero_embeddings_give_log_b():
    # Every logit equal: the softmax is uniform over B keys, the loss is log B.
    vg = jax.jit(jax.value_and_grad(lambda q: jnp.sum(L.infonce_loss(q, q))))  # one compile for both
    for x in (jnp.ones((4, 3)), jnp.zeros((4, 3))):
        out, g = vg(x)
        assert_close(out, 4 * np.log(4.0))
        assert np.all(np.isfinite(np.asarray(g)))


def test_cwcl_weights_by_hand():
    # q orthonormal: w = I/2 + 1/2 off-diagonal -> w_ii = 1, w_ij = 1/2; p = q.
    x = jnp.eye(2)
    t = 1.0
    logp_same = 1.0 - np.log(np.e + 1.0)  # log softmax at cos = 1 vs 0
    logp_other = 0.0 - np.log(np.e + 1.0)
    expected = -(1.0 * logp_same + 0.5 * logp_other) / 1.5
    assert_close(L.continuously_weighted_contrastive_loss(x, x, temperature=t), np.array([expected, expected]))


def test_sigmoid_loss_by_hand():
    x = jnp.eye(2)
    # diag: cos 1 -> 1/0.5 - 1 = 1 -> softplus(-1); off: cos 0 -> -1 -> -log sigmoid(1) = softplus(-1)
    out = L.sigmoid_contrastive_loss(x, x, temperature=0.5, bias=-1.0)
    sp = np.log1p(np.exp(-1.0))
    assert_close(out, np.array([2 * sp, 2 * sp]))


def test_learnable_temperature_and_bias_get_gradients():
    rng = np.random.default_rng(10)
    a, b = rng.normal(size=(2, 4, 3)).astype(np.float32)
    g = jax.grad(lambda t, c: jnp.mean(L.sigmoid_contrastive_loss(a, b, temperature=t, bias=c)), argnums=(0, 1))(
        jnp.float32(0.1), jnp.float32(-10.0)
    )
    assert all(np.isfinite(float(v)) and float(v) != 0 for v in g)


# ------------------------------ edges ---------------------------------------


@pytest.mark.parametrize("name", LABELLED)
@pytest.mark.parametrize("kind", ["identical", "zeros"])
def test_identical_and_zero_embeddings_are_finite(name, kind):
    y = jnp.array([0, 0, 1, 1, 2])
    x = jnp.ones((5, 3)) if kind == "identical" else jnp.zeros((5, 3))
    fn = getattr(L, name)
    val, g = jax.jit(jax.value_and_grad(lambda e: fn(e, y)))(x)
    assert np.isfinite(float(val)) and np.all(np.isfinite(np.asarray(g)))


@pytest.mark.parametrize("mining", ["all", "hard", "semihard"])
def test_triplet_identical_embeddings_finite(mining):
    y = jnp.array([0, 0, 1, 1])
    val, g = jax.jit(jax.value_and_grad(lambda e: L.batch_triplet_loss(e, y, mining=mining, normalize=False)))(
        jnp.ones((4, 2))
    )
    assert_close(val, 0.05) if mining != "semihard" else assert_close(val, 0.0)
    assert np.all(np.isfinite(np.asarray(g)))


def test_no_positive_pairs_give_zero():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)), jnp.float32)
    y = jnp.arange(4)
    for name in (
        "batch_triplet_loss",
        "lifted_structure_loss",
        "npair_loss",
        "supervised_contrastive_loss",
        "circle_loss",
    ):
        assert float(getattr(L, name)(x, y)) == 0.0, name


def test_soft_infonce_where_equals_slicing_and_masked_rows_get_zero_gradient():
    # The conformance suite cannot slice the pairwise prior; this is its `where` check.
    rng = np.random.default_rng(11)
    q, k = rng.normal(size=(2, 6, 3)).astype(np.float32)
    prior = rng.normal(size=(6, 6)).astype(np.float32)
    mask = np.array([True, False, True, True, False, True])
    idx = np.nonzero(mask)[0]
    kw = {"alpha": 0.5, "prior_temperature": 0.5}

    # one compiled value-and-gradient for the three masks (eager calls compile each op per shape)
    @jax.jit
    def vg(a, b, w):
        def f(a, b):
            out = L.soft_infonce_loss(a, b, prior, where=w, **kw)
            return jnp.sum(out), out

        return jax.value_and_grad(f, argnums=(0, 1), has_aux=True)(a, b)

    (_, masked), _ = vg(q, k, mask)
    sliced = jax.jit(lambda a, b, p: L.soft_infonce_loss(a, b, p, **kw))(q[idx], k[idx], prior[np.ix_(idx, idx)])
    assert np.all(np.asarray(masked)[~mask] == 0)
    assert_close(np.asarray(masked)[mask], sliced)
    qn, kn = q.copy(), k.copy()
    qn[~mask], kn[~mask] = np.nan, np.inf
    _, (gq, gk) = vg(qn, kn, mask)
    for g in (gq, gk):
        g = np.asarray(g)
        assert np.all(np.isfinite(g)) and np.all(g[~mask] == 0)
    none = np.zeros(6, bool)
    (val, _), (gq, _) = vg(q, k, none)
    assert float(val) == 0 and np.all(np.asarray(gq) == 0)


@pytest.mark.parametrize("name", ["circle_loss"])
def test_stop_gradient_weights_change_the_gradient_not_the_value(name):
    rng = np.random.default_rng(12)
    x = rng.normal(size=(6, 3)).astype(np.float32)
    y = np.array([0, 0, 1, 1, 2, 2])
    v1, g1 = jax.value_and_grad(lambda e: L.circle_loss(e, y))(x)
    v2, g2 = jax.value_and_grad(lambda e: L.circle_loss(e, y, stop_gradient_weights=False))(x)
    assert_close(v1, v2)
    assert _rel_err(g1, g2) > 1e-2


def test_multi_similarity_uses_the_miner():
    rng = np.random.default_rng(13)
    x = rng.normal(size=(8, 4)).astype(np.float32)
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    pos, neg = (np.asarray(m) for m in miners.multi_similarity_miner(x, y, margin=0.2))
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = xn @ xn.T
    per = []
    for i in range(8):
        lp = np.log1p(np.exp(-2.0 * (s[i, pos[i]] - 0.5)).sum()) / 2.0
        ln = np.log1p(np.exp(50.0 * (s[i, neg[i]] - 0.5)).sum()) / 50.0
        per.append(lp + ln)
    assert pos.sum() > 0 and neg.sum() > 0
    assert_close(L.multi_similarity_loss(x, y, mining_margin=0.2), np.mean(per), rtol=1e-5)


# ------------------- pair regularizers (margins.json): OPL and TCM -------------------

PAIR_REGULARIZER_CASES = case_names({"orthogonal_projection_loss", "threshold_consistent_margin_loss"})
assert PAIR_REGULARIZER_CASES, "no golden case for OPL / TCM"


@pytest.mark.parametrize("name", PAIR_REGULARIZER_CASES)
def test_pair_regularizer_golden_values_and_gradients(name):
    case = MARGINS_REF[name]
    with jax.enable_x64(True):
        out, grads = run_case(case)
        assert out.dtype == jnp.float64
        assert_close(out, np.asarray(case["value"]), err=f"{name}: value ({case['note']})", rtol=1e-9, atol=1e-10)
        for k, g in case["grads"].items():
            assert_close(
                grads[k], np.asarray(g), err=f"{name}: d/d{k}", rtol=1e-8, atol=1e-9 * max(1.0, np.abs(g).max())
            )


def test_opl_and_tcm_hand_computed():
    x = jnp.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    y = jnp.array([0, 0, 1])
    # positives: cos(0,1) = 0.6; negatives: (0,2) = 0, (1,2) = 0.8 (ordered pairs: same means).
    eps = 1e-6
    expect = (1 - 1.2 / (2 + eps)) + 0.5 * 1.6 / (4 + eps)
    assert_close(L.orthogonal_projection_loss(x, y), expect)
    x2 = jnp.array([[1.0, 0.0], [0.6, 0.8], [-0.6, 0.8]])  # negatives 0... and -0.6 / 0.28
    neg = np.array([-0.6, -0.6, 0.28, 0.28])
    assert_close(
        L.orthogonal_projection_loss(x2, y, absolute=True),
        (1 - 1.2 / (2 + eps)) + 0.5 * np.abs(neg).sum() / (4 + eps),
    )
    # TCM: no hard positives when m+ < 0.6, no hard negatives when m- > 0.8: loss 0.
    assert float(L.threshold_consistent_margin_loss(x, y, pos_margin=0.5, neg_margin=0.9)) == 0.0


# ------------------------------ errors --------------------------------------

BAD = [
    (lambda: L.supervised_contrastive_loss(jnp.ones((4,)), jnp.zeros(4, int)), ValueError, "embeddings.*rank 2"),
    (lambda: L.supervised_contrastive_loss(jnp.ones((4, 2)), jnp.zeros(3, int)), ValueError, "first 1 axes"),
    (lambda: L.supervised_contrastive_loss(jnp.ones((4, 2)), jnp.zeros(4)), TypeError, "labels.*int"),
    (lambda: L.supervised_contrastive_loss(jnp.ones((4, 2), int), jnp.zeros(4, int)), TypeError, "embeddings.*float"),
    (
        lambda: L.supervised_contrastive_loss(jnp.ones((4, 2)), jnp.zeros(4, int), temperature=0.0),
        ValueError,
        "temperature",
    ),
    (lambda: L.batch_triplet_loss(jnp.ones((4, 2)), jnp.zeros(4, int), mining="easy"), ValueError, "mining"),
    (lambda: L.batch_triplet_loss(jnp.ones((4, 2)), jnp.zeros(4, int), margin=-1.0), ValueError, "margin"),
    (
        lambda: L.pairwise_contrastive_loss(jnp.ones((4, 2)), jnp.zeros(4, int), distance="cosine"),
        ValueError,
        "distance",
    ),
    (lambda: L.multi_similarity_loss(jnp.ones((4, 2)), jnp.zeros(4, int), beta=0.0), ValueError, "beta"),
    (lambda: L.circle_loss(jnp.ones((4, 2)), jnp.zeros(4, int), where=jnp.ones(4)), TypeError, "where.*boolean"),
    (lambda: L.circle_loss(jnp.ones((4, 2)), jnp.zeros(4, int), where=jnp.ones(3, bool)), ValueError, "where"),
    (lambda: L.infonce_loss(jnp.ones((4, 2)), jnp.ones((3, 2))), ValueError, "embeddings_a.*embeddings_b.*same shape"),
    (lambda: L.infonce_loss(jnp.ones((4, 2)), jnp.ones((4, 2)), distance="euclidean"), ValueError, "distance"),
    (
        lambda: L.symmetric_infonce_loss(jnp.ones((4, 2)), jnp.ones((4, 2)), label_smoothing=1.0),
        ValueError,
        "label_smoothing",
    ),
    (lambda: L.soft_infonce_loss(jnp.ones((4, 2)), jnp.ones((4, 2)), jnp.ones((4, 3))), ValueError, "prior.*shape"),
    (lambda: L.triplet_margin_loss(jnp.ones((4, 2)), jnp.ones((4, 2)), jnp.ones((4, 3))), ValueError, "negatives"),
    (
        lambda: L.triplet_margin_loss(jnp.ones((4, 2)), jnp.ones((4, 2)), jnp.ones((4, 2)), norm_degree=0.5),
        ValueError,
        "norm_degree",
    ),
    (lambda: L.continuously_weighted_contrastive_loss(jnp.ones((4, 2)), jnp.ones(4)), ValueError, "frozen_embeddings"),
    (lambda: miners.batch_hard_miner(jnp.ones((4, 2)), jnp.zeros(4, int), distance="dot"), ValueError, "distance"),
    (
        lambda: L.multi_similarity_loss(jnp.ones((4, 2)), jnp.zeros(4, int), mining_margin=-0.1),
        ValueError,
        "mining_margin",
    ),
    (
        lambda: L.orthogonal_projection_loss(jnp.zeros((4, 2)), jnp.zeros((4, 1), int)),
        ValueError,
        "orthogonal_projection_loss: argument `labels` must have rank 1",
    ),
    (
        lambda: L.orthogonal_projection_loss(jnp.zeros((4, 2)), jnp.zeros(4, int), neg_weight=-1.0),
        ValueError,
        "orthogonal_projection_loss: `neg_weight` must be >= 0",
    ),
    (
        lambda: L.threshold_consistent_margin_loss(jnp.zeros((4, 2)), jnp.zeros(4, int), pos_margin=1.5),
        ValueError,
        r"threshold_consistent_margin_loss: `pos_margin` must lie in \[-1.0, 1.0\]",
    ),
]


@pytest.mark.parametrize(("call", "exc", "match"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_inputs_raise_named_errors(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    assert any(n in str(info.value) for n in ("loss", "miner")), str(info.value)


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 1.0), (0.5, 1.0), (0.0, 2.0)])
def test_soft_infonce_one_negative_per_query(alpha, beta):
    """Regression (issue 19 item 3): one negative per query gave 0/0 = NaN in its weight.

    With K = 1 the softmax weight is 1 = 1/K, so the weight is exactly 1 (for any alpha, beta, including
    alpha = beta, where the reference divides 0 by 0): the loss is log(1 + e^{s_ij - s_ii}) = log(1 + e^{-1}).
    """
    q = jnp.eye(2, 4)

    def f(q):
        return L.soft_infonce_loss(q, q, jnp.zeros((2, 2)), alpha=alpha, beta=beta)

    (_, value), g = jax.jit(jax.value_and_grad(lambda q: (jnp.sum(f(q)), f(q)), has_aux=True))(q)
    assert_close(value, np.full(2, np.log1p(np.exp(-1.0))), err=f"alpha={alpha} beta={beta}")
    # z_0 = q0.q1 - q0.q0 (keys are the queries): dz_0/dq_00 = -2, dz_0/dq_01 = dz_1/dq_01 = 1; p = sigmoid(-1).
    p = 1.0 / (1.0 + np.e)
    assert_close(g[0, :2], [-2 * p, 2 * p], err="gradient")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x, y: L.multi_similarity_loss(x, y, base=float("nan")), "`base` must lie in"),
        (lambda x, y: L.multi_similarity_loss(x, y, base=float("inf")), "`base` must lie in"),
        (lambda x, y: L.triplet_margin_loss(x, x[::-1], x + 1, norm_degree=float("inf")), "`norm_degree` must lie"),
        (lambda x, y: L.sigmoid_contrastive_loss(x, x, bias=float("nan")), "`bias` must be a finite number"),
        (lambda x, y: L.sigmoid_contrastive_loss(x, x, bias=float("-inf")), "`bias` must be a finite number"),
    ],
)
def test_non_finite_hyperparameters_rejected(call, match):
    """Issue 19 item 8: NaN/inf hyperparameters are rejected at trace time, naming the function and argument."""
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    with pytest.raises(ValueError, match=match):
        call(x, np.array([0, 0, 1, 1, 2, 2]))
