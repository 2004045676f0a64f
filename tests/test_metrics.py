"""lossjax.metrics: ranking metrics, ranks, lambda weights and the t12n transformations.

Golden values: tests/reference/ranking.json (tests/reference/make_ranking.py), from rax 0.4.0 per
list: every metric with masks, weights, segments, cutoffs, tied scores with and without a PRNG key,
all-zero labels; approx_t12n / bound_t12n of every metric and gumbel_t12n with explicit keys
(values and gradients); the labeldiff, DCG, NDCG, MRR and LambdaLoss (DCG v2) lambda weights.
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

REF = json.loads((pathlib.Path(__file__).parent / "reference" / "ranking.json").read_text())


def dec(x):
    if isinstance(x, dict) and "data" in x:
        return np.asarray(x["data"], dtype=x["dtype"]).reshape(x["shape"])
    return x


def cotangent(shape):
    n = int(np.prod(shape)) if len(shape) else 1
    return (1.0 + 0.5 * np.cos(np.arange(n))).reshape(shape)


def kwargs_of(case):
    kw = {k: jnp.asarray(dec(case[k])) for k in ("where", "weights", "segments") if case.get(k) is not None}
    if case.get("key") is not None:
        kw["key"] = jax.random.key(case["key"])
    return kw


def _ids(cases):
    return [f"{c['name']}-{i}" for i, c in enumerate(cases)]


@pytest.mark.parametrize("case", REF["metrics"], ids=_ids(REF["metrics"]))
def test_metrics_match_rax_per_list(case):
    fn = getattr(M, case["name"])
    with jax.enable_x64(True):
        got = fn(jnp.asarray(dec(case["scores"])), jnp.asarray(dec(case["labels"])), **case["hp"], **kwargs_of(case))
        assert got.shape == dec(case["scores"]).shape[:-1]
        assert_close(got, dec(case["value"]), err=f"{case['name']} {case['hp']}", rtol=1e-12, atol=1e-12)


def _t12n(case):
    hp = dict(case["hp"])
    kind = hp.pop("t12n")
    gumbel = {k: hp.pop(k) for k in ("num_samples", "beta", "smoothing_factor") if k in hp}
    if kind == "approx":
        fn = M.approx_t12n(getattr(M, case["name"]), hp.pop("temperature", 1.0))
    elif kind == "bound":
        fn = M.bound_t12n(getattr(M, case["name"]))
    elif kind == "gumbel":
        fn = M.gumbel_t12n(lossjax.losses.ranking_softmax_loss, **gumbel)
    else:
        fn = M.gumbel_t12n(M.approx_t12n(M.ndcg), **gumbel)
    return fn, hp


@pytest.mark.parametrize("case", REF["t12n"], ids=_ids(REF["t12n"]))
def test_transformations_match_rax(case):
    fn, hp = _t12n(case)
    with jax.enable_x64(True):
        kw = kwargs_of(case)
        s, y = jnp.asarray(dec(case["scores"])), jnp.asarray(dec(case["labels"]))
        ct = jnp.asarray(cotangent(jax.eval_shape(lambda s: fn(s, y, **hp, **kw), s).shape))

        @jax.jit  # value and gradient in one compile (eager: every op compiled on its own)
        def value_and_grad(s):
            out, vjp = jax.vjp(lambda s: fn(s, y, **hp, **kw), s)
            return out, vjp(ct)[0]  # the gradient of sum(ct * out)

        out, grad = value_and_grad(s)
        what = f"{case['name']} {case['hp']}"
        assert_close(out, dec(case["value"]), err=what, rtol=1e-10, atol=1e-12)
        assert_close(grad, dec(case["grad"]), err=f"{what}: gradient", rtol=1e-8, atol=1e-11)


@pytest.mark.parametrize("case", REF["lambdaweights"], ids=_ids(REF["lambdaweights"]))
def test_lambdaweights_match_rax(case):
    fn = getattr(M, f"{case['name']}_lambdaweight")
    with jax.enable_x64(True):
        kw = kwargs_of(case)
        got = np.asarray(fn(jnp.asarray(dec(case["scores"])), jnp.asarray(dec(case["labels"])), **case["hp"], **kw))
    # Pairs with a masked item or across segments are 0 here; rax leaves some of them set (they never count).
    valid = np.asarray(kw.get("where", np.ones(got.shape[:-1], bool)))
    pair = valid[..., :, None] & valid[..., None, :]
    if "segments" in kw:
        seg = np.asarray(kw["segments"])
        pair &= seg[..., :, None] == seg[..., None, :]
    assert np.all(got[~pair] == 0)
    assert_close(got[pair], dec(case["value"])[pair], err=f"{case['name']} {case['hp']}", rtol=1e-12, atol=1e-12)


# ----------------------------------- hand-derived -----------------------------------


def test_metric_closed_forms():
    s = jnp.array([[3.0, 2.0, 1.0, 0.0]])
    y = jnp.array([[0.0, 2.0, 1.0, 0.0]])
    dcg = 3 / np.log2(3) + 1 / np.log2(4)
    ideal = 3 / np.log2(2) + 1 / np.log2(3)
    assert_close(M.dcg(s, y), [dcg])
    assert_close(M.ndcg(s, y), [dcg / ideal])
    assert_close(M.ndcg(s, y, topn=1), [0.0])
    assert_close(M.dcg(s, y, gain="linear", discount="reciprocal"), [2 / 2 + 1 / 3])
    assert_close(M.mrr(s, y), [0.5])
    assert_close(M.precision(s, y, topn=2), [0.5])
    assert_close(M.recall(s, y, topn=2), [0.5])
    assert_close(M.average_precision(s, y), [(1 / 2 + 2 / 3) / 2])
    assert_close(M.ordered_pair_accuracy(s, y), [3 / 5])
    # A perfect ranking.
    assert_close(M.ndcg(-jnp.arange(4.0)[None], jnp.array([[3.0, 2.0, 1.0, 0.0]])), [1.0])


def test_ranks_ties_keys_and_masks():
    s = jnp.array([1.0, 2.0, 1.0, 1.0])
    assert M.ranks(s).tolist() == [2, 1, 3, 4]  # ties keep their order of appearance
    assert M.ranks(s, where=jnp.array([True, True, False, True])).tolist() == [2, 1, 4, 3]
    shuffled = {tuple(M.ranks(s, key=jax.random.key(k)).tolist()) for k in range(10)}
    assert len(shuffled) > 1 and all(r[1] == 1 for r in shuffled)
    assert M.ranks(s, segments=jnp.array([0, 1, 0, 1])).tolist() == [1, 1, 2, 2]


def test_approx_ranks_tend_to_exact_ranks():
    s = jnp.array([0.3, -1.2, 2.0, 0.7])
    approx = M.approx_ranks(s, step_fn=lambda x: jax.nn.sigmoid(x / 1e-3))
    assert_close(approx, M.ranks(s).astype(jnp.float32), atol=1e-5)
    assert_close(M.approx_cutoff(s, 2, step_fn=lambda x: jax.nn.sigmoid(x / 1e-3)), M.cutoff(s, 2), atol=1e-5)


def test_approx_ndcg_tends_to_ndcg():
    s = jnp.array([[0.3, -1.2, 2.0, 0.7, 1.5]])
    y = jnp.array([[1.0, 0.0, 2.0, 3.0, 0.0]])
    assert_close(M.approx_t12n(M.ndcg, 1e-3)(s, y), -M.ndcg(s, y), atol=1e-5)


def test_segment_t12n_on_a_function_without_segments():
    def total(s, y, where=None):
        return jnp.sum(jnp.where(where, y, 0.0), axis=-1)

    f = M.segment_t12n(total)
    y = jnp.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    seg = jnp.array([[0, 1, 0, 1, 1]])
    assert_close(f(jnp.zeros((1, 5)), y, segments=seg), [((1 + 3) + (2 + 4 + 5)) / 2])
    assert M.segment_t12n(M.ndcg) is M.ndcg  # takes segments already


def test_gumbel_t12n_averages_over_samples_with_an_explicit_key():
    s = jnp.array([0.3, -1.2, 2.0])
    y = jnp.array([1.0, 0.0, 2.0])
    f = M.gumbel_t12n(lossjax.losses.ranking_softmax_loss, num_samples=2, beta=0.5)
    key = jax.random.key(0)
    noise = jax.random.gumbel(key, (2, 3), dtype=jnp.float32)
    expect = jnp.mean(jax.vmap(lambda n: lossjax.losses.ranking_softmax_loss(s + 0.5 * n, y))(noise))
    assert_close(f(s, y, key=key), expect)
    assert float(f(s, y, key=jax.random.key(1))) != float(f(s, y, key=key))
    with pytest.raises(TypeError):
        f(s, y)  # the key is required


def test_metrics_are_per_list_and_reduce_like_rax():
    rng = np.random.default_rng(0)
    s = jnp.asarray(rng.normal(size=(4, 6)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 3, size=(4, 6)), jnp.float32)
    where = jnp.asarray(rng.random((4, 6)) < 0.8).at[3].set(False)
    per_list = M.ndcg(s, y, where=where)
    assert per_list.shape == (4,) and float(per_list[3]) == 0.0
    # rax's mean over lists with a valid item is the masked mean of the per-list values.
    rax_mean = lossjax.masked_mean(per_list, jnp.any(where, axis=-1))
    assert_close(rax_mean, np.mean(np.asarray(per_list)[:3]))
    # jit and vmap agree.
    assert_close(jax.jit(M.ndcg)(s, y), M.ndcg(s, y))
    assert_close(jax.vmap(M.ndcg)(s[:, None], y[:, None])[:, 0], M.ndcg(s, y))


def test_metric_errors():
    s, y = jnp.zeros((2, 3)), jnp.zeros((2, 3))
    with pytest.raises(ValueError, match=r"lossjax.metrics.ndcg: `topn` must be an integer >= 1, got 0"):
        M.ndcg(s, y, topn=0)
    with pytest.raises(ValueError, match=r"lossjax.metrics.dcg: `gain` must be one of"):
        M.dcg(s, y, gain="quadratic")
    with pytest.raises(ValueError, match=r"lossjax.metrics.mrr: `scores` and `labels` must have the same shape"):
        M.mrr(s, jnp.zeros(3))
    with pytest.raises(ValueError, match=r"lossjax.metrics.approx_t12n: `temperature` must be > 0"):
        M.approx_t12n(M.ndcg, 0.0)
    with pytest.raises(ValueError, match=r"lossjax.metrics.gumbel_t12n: `num_samples` must be an integer >= 1"):
        M.gumbel_t12n(M.ndcg, num_samples=0)
