"""Ranking losses (lossjax/losses/_ranking.py).

Golden values: tests/reference/ranking.json, written by tests/reference/make_ranking.py from
rax 0.4.0 (every rax loss, per list, with masks, weights, segments, tied scores and labels, lists
without relevant items, every lambda weight), optax's ranking_softmax_loss, and torch
re-implementations of allRank's NeuralNDCG, IR-Benchmark's PSL, RecBox's CCL, the Rel-MF loss of
unbiased-implicit-rec and the LoL closed form. Compared in float64 (values and gradients) and in
float32.
"""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lossjax
from lossjax import metrics as M
from lossjax.testing import assert_close

L = lossjax.losses
REF = json.loads((pathlib.Path(__file__).parent.parent / "reference" / "ranking.json").read_text())


def dec(x):
    if isinstance(x, dict) and "data" in x:
        return np.asarray(x["data"], dtype=x["dtype"]).reshape(x["shape"])
    return x


def cotangent(shape):
    n = int(np.prod(shape)) if len(shape) else 1
    return (1.0 + 0.5 * np.cos(np.arange(n))).reshape(shape)


def call_kwargs(case, dtype=jnp.float64):
    kw = {}
    for k in ("where", "weights", "segments"):
        if case.get(k) is not None:
            v = dec(case[k])
            kw[k] = jnp.asarray(v, dtype) if k == "weights" else jnp.asarray(v)
    if case.get("key") is not None:
        kw["key"] = jax.random.key(case["key"])
    return kw


def value_and_grad(fn, scores, labels, kw):
    """The value and the gradient of ``sum(cotangent * value)``, in one jitted vjp (eager compiles every op)."""
    shape = jax.eval_shape(lambda s: fn(s, labels, **kw), scores)
    ct = jnp.asarray(cotangent(shape.shape), shape.dtype)

    @jax.jit
    def run(scores):
        out, vjp = jax.vjp(lambda s: fn(s, labels, **kw), scores)
        return out, vjp(ct)[0]

    return run(scores)


def _ids(cases, key="losses"):
    return [f"{c['name']}-{i}" for i, c in enumerate(cases)]


LOSS_CASES = REF["losses"]


@pytest.mark.parametrize("case", LOSS_CASES, ids=_ids(LOSS_CASES))
def test_rax_losses_match_rax_per_list(case):
    fn = getattr(L, case["name"])
    with jax.enable_x64(True):
        s, y = jnp.asarray(dec(case["scores"])), jnp.asarray(dec(case["labels"]))
        out, grad = value_and_grad(lambda s, y, **kw: fn(s, y, **case["hp"], **kw), s, y, call_kwargs(case))
        assert out.dtype == jnp.float64
        what = f"{case['name']} {case['hp']} {[k for k in ('where', 'weights', 'segments', 'key') if case.get(k)]}"
        assert_close(out, dec(case["value"]), err=f"{what}: value", rtol=1e-9, atol=1e-12)
        # ListMLE's reference gradient is a central difference of rax's value (accurate to ~1e-9).
        tol = {"rtol": 1e-6, "atol": 1e-8} if case["name"] == "listmle_loss" else {"rtol": 1e-8, "atol": 1e-11}
        assert_close(grad, dec(case["grad"]), err=f"{what}: gradient", **tol)


@pytest.mark.parametrize("case", LOSS_CASES[::7], ids=_ids(LOSS_CASES[::7]))
def test_rax_losses_float32(case):
    fn = getattr(L, case["name"])
    s, y = jnp.asarray(dec(case["scores"]), jnp.float32), jnp.asarray(dec(case["labels"]), jnp.float32)
    out, grad = value_and_grad(lambda s, y, **kw: fn(s, y, **case["hp"], **kw), s, y, call_kwargs(case, jnp.float32))
    assert out.dtype == jnp.float32
    assert_close(out, dec(case["value"]), err=case["name"], rtol=1e-5, atol=1e-6)
    assert_close(grad, dec(case["grad"]), err=case["name"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", REF["neural_ndcg"], ids=_ids(REF["neural_ndcg"]))
def test_neural_ndcg_matches_allrank(case):
    with jax.enable_x64(True):
        s, y = jnp.asarray(dec(case["scores"])), jnp.asarray(dec(case["labels"]))
        fn = lambda s, y, **kw: L.neural_ndcg_loss(s, y, **case["hp"], **kw)  # noqa: E731
        out, grad = value_and_grad(fn, s, y, call_kwargs(case))
        assert_close(out, dec(case["value"]), err=f"neural_ndcg {case['hp']}", rtol=1e-9, atol=1e-12)
        assert_close(grad, dec(case["grad"]), err=f"neural_ndcg {case['hp']}: gradient", rtol=1e-7, atol=1e-10)


def test_ranking_softmax_matches_optax():
    for case in REF["optax"]:
        with jax.enable_x64(True):
            kw = call_kwargs(case)
            got = L.ranking_softmax_loss(jnp.asarray(dec(case["scores"])), jnp.asarray(dec(case["labels"])), **kw)
        assert_close(got, dec(case["value"]), err="optax.losses.ranking_softmax_loss", rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", REF["retrieval"], ids=_ids(REF["retrieval"]))
def test_retrieval_losses_match_their_references(case):
    fn = getattr(L, case["name"])
    n = 1 if case["name"] in ("unbiased_implicit_feedback_loss", "loss_over_loss_regularizer") else 3
    with jax.enable_x64(True):
        args = [jnp.asarray(dec(a)) for a in case["args"]]
        out = fn(*args, **case["hp"])
        ct = jnp.asarray(cotangent(out.shape))
        grads = jax.grad(lambda *d: jnp.sum(ct * fn(*d, *args[n:], **case["hp"])), argnums=tuple(range(n)))(*args[:n])
        assert_close(out, dec(case["value"]), err=f"{case['name']} {case['hp']}", rtol=1e-10, atol=1e-12)
        for g, e in zip(grads, case["grads"], strict=True):
            assert_close(g, dec(e), err=f"{case['name']} {case['hp']}: gradient", rtol=1e-9, atol=1e-12)


# ----------------------------------- hand-derived -----------------------------------

LISTWISE = ("ranking_softmax_loss", "poly1_softmax_loss", "unique_softmax_loss", "listmle_loss", "approx_ndcg_loss")
PAIRWISE = (
    "pairwise_logistic_loss",
    "pairwise_hinge_loss",
    "pairwise_soft_zero_one_loss",
    "pairwise_mse_loss",
    "pairwise_qr_loss",
    "mann_whitney_auc_loss",
)
LIST_LOSSES = (
    LISTWISE + PAIRWISE + ("approx_mrr_loss", "pointwise_sigmoid_loss", "pointwise_mse_loss", "neural_ndcg_loss")
)


def test_closed_forms():
    s = jnp.array([0.5, -1.0, 2.0])
    y = jnp.array([2.0, 0.0, 1.0])
    lsm = jax.nn.log_softmax(s)
    assert_close(L.ranking_softmax_loss(s, y), -(2 * lsm[0] + lsm[2]))
    # ListMLE over two items ordered by label: log(1 + exp(s_2 - s_1)).
    assert_close(L.listmle_loss(jnp.array([1.0, 3.0]), jnp.array([1.0, 0.0])), np.log1p(np.exp(2.0)))
    # Pairwise logistic: pairs (0,1), (0,2), (2,1) with y_i > y_j.
    d = np.array([0.5 + 1.0, 0.5 - 2.0, 2.0 + 1.0])
    assert_close(L.pairwise_logistic_loss(s, y), np.mean(np.log1p(np.exp(-d))))
    assert_close(L.pairwise_hinge_loss(s, y), np.mean(np.maximum(0.0, 1 - d)))
    assert_close(L.pairwise_soft_zero_one_loss(s, y), np.mean(1 / (1 + np.exp(d))))
    # Pointwise: means over the list's items.
    assert_close(L.pointwise_mse_loss(s, y), np.mean((np.asarray(s) - np.asarray(y)) ** 2))
    # Unique softmax, exponential gains: item 0 (y=2) against {1, 2}; item 2 (y=1) against {1}.
    u0 = s[0] - jax.nn.logsumexp(s)
    u2 = s[2] - jnp.logaddexp(s[2], s[1])
    assert_close(L.unique_softmax_loss(s, y), -(3.0 * u0 + 1.0 * u2))
    # Poly-1: softmax loss + eps (1 - p_t), p_t = sum_i y_i/sum(y) softmax_i.
    pt = (2 * jnp.exp(lsm[0]) + jnp.exp(lsm[2])) / 3
    assert_close(L.poly1_softmax_loss(s, y, poly_coefficient=2.0), -(2 * lsm[0] + lsm[2]) + 2.0 * (1 - pt))


def test_pairwise_gradients_at_tied_scores_are_finite_and_as_documented():
    s = jnp.zeros(2)
    y = jnp.array([1.0, 0.0])
    expect = {
        "pairwise_logistic_loss": -0.5,
        "pairwise_hinge_loss": -1.0,
        "pairwise_soft_zero_one_loss": -0.25,
        "mann_whitney_auc_loss": -0.5,
        "pairwise_qr_loss": -0.5,  # quantile 0.5 of relu(dy - ds)
    }
    for name, g0 in expect.items():
        g = jax.grad(lambda s, name=name: getattr(L, name)(s, y))(s)
        assert np.all(np.isfinite(g)), name
        assert_close(g, [g0, -g0], err=name)
    # MSE counts every pair, i = j included: 4 pairs, two of them (0,1), (1,0) with -2 (dy - ds) * (+-1).
    g = jax.grad(lambda s: L.pairwise_mse_loss(s, y))(s)
    assert_close(g, [-1.0, 1.0])
    # The hinge's kink at s_i - s_j = margin: subgradient 0.
    g = jax.grad(lambda s: L.pairwise_hinge_loss(s, y))(jnp.array([1.0, 0.0]))
    assert_close(g, [0.0, 0.0])


@pytest.mark.parametrize("name", LIST_LOSSES)
def test_masked_items_are_padding(name):
    """NaN in masked items: finite value and exactly zero gradient there; equal to dropping the items."""
    fn = getattr(L, name)
    s = jnp.array([[0.3, -1.2, 2.0, 0.7, 1.1]])
    y = jnp.array([[2.0, 0.0, 1.0, 3.0, 0.0]])
    where = jnp.array([[True, False, True, True, False]])
    garbage = s.at[0, 1].set(jnp.nan).at[0, 4].set(jnp.inf)
    keep = np.asarray(where[0])

    @jax.jit  # one compile (eager: every op of the loss and its gradient compiled on its own)
    def masked_and_dropped(garbage):
        out, grad = jax.value_and_grad(lambda s: jnp.sum(fn(s, y, where=where)))(garbage)
        return out, grad, fn(s[:, keep], y[:, keep]).sum()

    out, grad, dropped = masked_and_dropped(garbage)
    assert np.isfinite(out) and np.all(np.isfinite(grad)), name
    assert np.all(np.asarray(grad)[~np.asarray(where)] == 0), name
    assert_close(out, dropped, err=f"{name}: masked != dropped")


@pytest.mark.parametrize("name", LIST_LOSSES)
def test_a_list_without_valid_items_gives_zero(name):
    fn = getattr(L, name)
    s = jnp.array([[0.3, 1.2, -2.0], [jnp.nan, jnp.nan, jnp.nan]])
    y = jnp.array([[1.0, 0.0, 2.0], [1.0, 0.0, 2.0]])
    where = jnp.array([True, False])  # a list mask (leading axis)

    @jax.jit  # the per-list values and the gradient of their sum in one compile (eager: every op on its own)
    def per_list_and_grad(s):
        per_list, vjp = jax.vjp(lambda s: fn(s, y, where=where), s)
        return per_list, vjp(jnp.ones_like(per_list))[0]

    per_list, grad = per_list_and_grad(s)
    assert float(per_list[1]) == 0.0, name
    assert np.all(np.isfinite(grad)) and np.all(np.asarray(grad)[1] == 0), name


@pytest.mark.parametrize(
    "name",
    (
        "ranking_softmax_loss",
        "unique_softmax_loss",
        "approx_ndcg_loss",
        "approx_mrr_loss",
        "neural_ndcg_loss",
        *PAIRWISE[:3],
    ),
)
def test_a_list_without_relevant_items_gives_zero(name):
    out = getattr(L, name)(jnp.array([0.3, 1.2, -2.0]), jnp.zeros(3))
    assert float(out) == 0.0, name


@pytest.mark.parametrize(
    "name",
    (
        "ranking_softmax_loss",
        "poly1_softmax_loss",
        "unique_softmax_loss",
        "listmle_loss",
        "approx_ndcg_loss",
        "approx_mrr_loss",
    ),
)
def test_segments_are_queries_packed_in_one_list(name):
    """A list holding two segments gives the mean of the two queries' losses computed apart."""
    fn = getattr(L, name)
    s = jnp.array([0.3, 1.2, -2.0, 0.5, 0.1])
    y = jnp.array([1.0, 0.0, 2.0, 0.0, 1.0])
    seg = jnp.array([1, 0, 1, 0, 1])
    a, b = np.array([0, 2, 4]), np.array([1, 3])
    expect = 0.5 * (fn(s[a], y[a]) + fn(s[b], y[b]))
    assert_close(fn(s, y, segments=seg), expect, err=name)


def test_pairwise_segments_mask_pairs_across_queries():
    s = jnp.array([0.3, 1.2, -2.0, 0.5])
    y = jnp.array([1.0, 0.0, 2.0, 0.0])
    seg = jnp.array([0, 0, 1, 1])
    # Segment 0 has the pair (0, 1), segment 1 the pair (2, 3): the mean over both pairs.
    d = np.array([0.3 - 1.2, -2.0 - 0.5])
    assert_close(L.pairwise_logistic_loss(s, y, segments=seg), np.mean(np.log1p(np.exp(-d))))


def test_weights_scale_labels_and_pairs():
    s = jnp.array([0.3, 1.2, -2.0])
    y = jnp.array([1.0, 0.0, 2.0])
    w = jnp.array([2.0, 1.0, 0.5])
    assert_close(L.ranking_softmax_loss(s, y, weights=w), L.ranking_softmax_loss(s, y * w))
    lsm = jax.nn.log_softmax(s)
    assert_close(L.ranking_softmax_loss(s, y, weights=w), -(2.0 * lsm[0] + 1.0 * lsm[2]))
    d = np.array([0.3 - 1.2, -2.0 - 0.3, -2.0 - 1.2])  # pairs (0,1), (2,0), (2,1); weights w_i
    assert_close(L.pairwise_logistic_loss(s, y, weights=w), np.mean([2.0, 0.5, 0.5] * np.log1p(np.exp(-d))))


def test_lambdaweight_names_equal_the_metrics_functions():
    s = jnp.array([[0.3, 1.2, -2.0, 0.5]])
    y = jnp.array([[1.0, 0.0, 2.0, 3.0]])
    for name, fn in M.LAMBDAWEIGHTS.items():
        assert_close(L.pairwise_logistic_loss(s, y, lambdaweight=name), L.pairwise_logistic_loss(s, y, lambdaweight=fn))
    # NDCG lambda weights change the loss (they are not all ones) and carry no gradient themselves.
    assert not np.allclose(L.pairwise_logistic_loss(s, y, lambdaweight="ndcg"), L.pairwise_logistic_loss(s, y))
    g = jax.grad(lambda s: jnp.sum(M.dcg_lambdaweight(s, y, normalize=True)))(s)
    assert np.all(np.asarray(g) == 0)


def test_listmle_key_breaks_label_ties():
    s = jnp.array([0.3, 1.2, -2.0, 0.5])
    y = jnp.array([1.0, 1.0, 1.0, 0.0])
    plain = L.listmle_loss(s, y)
    values = {float(L.listmle_loss(s, y, key=jax.random.key(k))) for k in range(8)}
    assert len(values) > 1  # the order of the three tied items varies with the key
    assert float(L.listmle_loss(s, y, key=jax.random.key(3))) == float(L.listmle_loss(s, y, key=jax.random.key(3)))
    # Without a key ties keep their order of appearance: the Plackett-Luce NLL of the order 0, 1, 2, 3.
    expect = -sum(float(s[i] - jax.nn.logsumexp(s[i:])) for i in range(4))
    assert_close(plain, expect)


def test_listmle_gradient_at_tied_scores():
    """rax's logcumsumexp halves the gradient at tied scores; ours equals central differences."""
    s = jnp.array([1.0, 1.0, 0.0, 2.0, 1.0])
    y = jnp.array([3.0, 0.0, 1.0, 2.0, 1.0])
    with jax.enable_x64(True):
        s = s.astype(jnp.float64)
        g = jax.jit(jax.grad(lambda s: L.listmle_loss(s, y)))(s)
        f = jax.jit(lambda s: L.listmle_loss(s, y))  # one compile for the ten evaluations
        h = 1e-6
        num = [(f(s.at[i].add(h)) - f(s.at[i].add(-h))) / (2 * h) for i in range(5)]
        assert_close(g, np.asarray(num), rtol=1e-7, atol=1e-8)


def test_neural_ndcg_at_low_temperature_is_minus_ndcg():
    s = jnp.array([[0.3, 1.2, -2.0, 0.5, 2.5]])
    y = jnp.array([[1.0, 0.0, 2.0, 3.0, 1.0]])
    for variant in ("standard", "transposed"):
        got = L.neural_ndcg_loss(s, y, temperature=1e-3, variant=variant)
        assert_close(got, -M.ndcg(s, y), rtol=1e-4, err=variant)
        got = L.neural_ndcg_loss(s, y, temperature=1e-3, variant=variant, topn=2)
        assert_close(got, -M.ndcg(s, y, topn=2), rtol=1e-4, err=variant)


def test_neural_ndcg_padding_takes_the_last_ranks():
    """Padded items anywhere in the list equal allRank's layout (padding at the end)."""
    s = jnp.array([0.3, 9.0, 1.2, -2.0])
    y = jnp.array([1.0, 5.0, 0.0, 2.0])
    w = jnp.array([True, False, True, True])
    keep = np.array([0, 2, 3])
    for variant in ("standard", "transposed"):
        assert_close(
            L.neural_ndcg_loss(s, y, where=w, variant=variant), L.neural_ndcg_loss(s[keep], y[keep], variant=variant)
        )


def test_unbiased_implicit_feedback_is_unbiased():
    """Averaged over exposure O ~ Bernoulli(theta), clicks y = O R give the cross-entropy on the true relevance R."""
    z = jnp.array([0.3, -1.0, 2.0])
    rel = jnp.array([1.0, 1.0, 0.0])
    theta = jnp.array([0.2, 0.7, 0.5])
    exposed = L.unbiased_implicit_feedback_loss(z, rel, theta)
    hidden = L.unbiased_implicit_feedback_loss(z, jnp.zeros(3), theta)
    expected = theta * exposed + (1 - theta) * hidden
    truth = -(rel * jax.nn.log_sigmoid(z) + (1 - rel) * jax.nn.log_sigmoid(-z))
    assert_close(expected, truth, rtol=1e-5, atol=1e-6)
    # Clipping: theta below M is raised to M.
    assert_close(
        L.unbiased_implicit_feedback_loss(z, rel, theta, min_propensity=0.5),
        L.unbiased_implicit_feedback_loss(z, rel, jnp.maximum(theta, 0.5)),
    )


def test_retrieval_closed_forms():
    u = jnp.array([[1.0, 0.0]])
    p = jnp.array([[1.0, 1.0]])
    n = jnp.array([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]])
    c = 1 / np.sqrt(2)
    # CCL: (1 - cos(u, p)) + sum_k relu(cos(u, n_k) - m); with a weight, the mean times the weight.
    assert_close(L.cosine_contrastive_loss(u, p, n, margin=0.5), [(1 - c) + 0.5])
    assert_close(L.cosine_contrastive_loss(u, p, n, margin=0.5, negative_weight=6.0), [(1 - c) + 6.0 * 0.5 / 3])
    # PSL (tanh): logsumexp_k log(tanh(d_k) + 1), d_k = (cos_k - cos_p) / 2.
    d = (np.array([1.0, 0.0, -1.0]) - c) / 2.0
    assert_close(L.pairwise_softmax_loss(u, p, n), [np.log(np.sum(np.tanh(d) + 1))], rtol=1e-5)
    assert_close(
        L.pairwise_softmax_loss(u, p, n, activation="relu", robust_temperature=0.5),
        [np.log(np.sum((d + 1) ** 2))],
        rtol=1e-5,
    )
    # LoL: sum over later revisions that cost more.
    assert_close(
        L.loss_over_loss_regularizer(jnp.array([[3.0, 1.0, 2.0, 5.0]])), [(2 - 1) + (5 - 3) + (5 - 1) + (5 - 2)]
    )
    # Mann-Whitney = pairwise logistic on binarized labels.
    s, y = jnp.array([0.3, 1.2, -2.0, 0.5]), jnp.array([2.0, 0.0, 1.0, 0.0])
    assert_close(L.mann_whitney_auc_loss(s, y), L.pairwise_logistic_loss(s, (y > 0).astype(jnp.float32)))


def test_psl_below_the_activation_domain_is_finite():
    u = jnp.array([[1.0, 0.0]])
    out, g = jax.value_and_grad(
        lambda p: L.pairwise_softmax_loss(
            u, p, -jnp.ones((1, 1, 2)) * u[:, None], temperature=1.0, activation="relu"
        ).sum()
    )(u)
    assert np.isfinite(out) and np.all(np.isfinite(g))


# ------------------------------------ bad inputs ------------------------------------


def test_errors_name_function_argument_and_need():
    s, y = jnp.zeros((2, 3)), jnp.zeros((2, 3))
    with pytest.raises(ValueError, match=r"ranking_softmax_loss: `scores` and `labels` must have the same shape"):
        L.ranking_softmax_loss(s, jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"listmle_loss: argument `scores` must have rank >= 1"):
        L.listmle_loss(jnp.float32(1.0), jnp.float32(1.0))
    with pytest.raises(TypeError, match=r"pairwise_logistic_loss: argument `segments` must have a int dtype"):
        L.pairwise_logistic_loss(s, y, segments=jnp.zeros((2, 3)))
    with pytest.raises(TypeError, match=r"approx_ndcg_loss: argument `scores` must have a float dtype"):
        L.approx_ndcg_loss(jnp.zeros((2, 3), jnp.int32), y)
    with pytest.raises(ValueError, match=r"pairwise_logistic_loss: `lambdaweight` must be one of"):
        L.pairwise_logistic_loss(s, y, lambdaweight="lambdamart")
    with pytest.raises(ValueError, match=r"approx_ndcg_loss: `temperature` must be > 0, got 0.0"):
        L.approx_ndcg_loss(s, y, temperature=0.0)
    with pytest.raises(ValueError, match=r"approx_ndcg_loss: `temperature` must be a finite number"):
        L.approx_ndcg_loss(s, y, temperature=float("nan"))
    with pytest.raises(ValueError, match=r"pairwise_qr_loss: `quantile` must lie in \(0.0, 1.0\]"):
        L.pairwise_qr_loss(s, y, quantile=0.0)
    with pytest.raises(ValueError, match=r"neural_ndcg_loss: `variant` must be one of"):
        L.neural_ndcg_loss(s, y, variant="stochastic")
    with pytest.raises(ValueError, match=r"neural_ndcg_loss: `max_iterations` must be an integer >= 1"):
        L.neural_ndcg_loss(s, y, max_iterations=0)
    with pytest.raises(ValueError, match=r"unique_softmax_loss: `gain` must be one of"):
        L.unique_softmax_loss(s, y, gain="cubic")
    with pytest.raises(ValueError, match=r"where` must be broadcastable"):
        L.ranking_softmax_loss(s, y, where=jnp.ones((3,), bool))
    with pytest.raises(ValueError, match=r"pairwise_softmax_loss: `negatives` must have shape \(B, K, D\)"):
        L.pairwise_softmax_loss(jnp.zeros((2, 3)), jnp.zeros((2, 3)), jnp.zeros((2, 4, 2)))
    with pytest.raises(ValueError, match=r"pairwise_softmax_loss: `activation` must be one of"):
        L.pairwise_softmax_loss(jnp.zeros((2, 3)), jnp.zeros((2, 3)), jnp.zeros((2, 4, 3)), activation="gelu")
    with pytest.raises(ValueError, match=r"unbiased_implicit_feedback_loss: `min_propensity` must lie in"):
        L.unbiased_implicit_feedback_loss(jnp.zeros(2), jnp.zeros(2), jnp.ones(2), min_propensity=2.0)
    with pytest.raises(ValueError, match=r"loss_over_loss_regularizer: argument `losses` must have rank 2"):
        L.loss_over_loss_regularizer(jnp.zeros(3))


def test_registry_specs():
    lw = lossjax.get("pairwise_logistic_loss(lambdaweight='ndcg')")
    assert lw.to_config() == {"name": "pairwise_logistic_loss", "lambdaweight": "ndcg"}
    s, y = jnp.array([[0.3, 1.2, -2.0]]), jnp.array([[1.0, 0.0, 2.0]])
    assert_close(lw(s, y), L.pairwise_logistic_loss(s, y, lambdaweight="ndcg"))
    assert lossjax.get("listnet_loss").name == "ranking_softmax_loss"
    assert set(lossjax.available(family="ranking")) >= {"neural_ndcg_loss", "pairwise_softmax_loss", "listmle_loss"}
