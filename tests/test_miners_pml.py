"""triplet_margin_miner, pair_margin_miner and angular_miner against pytorch-metric-learning 2.9's index tuples
(tests/reference/miners_pml.json), their order included, and under jit with a static size."""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossjax import miners

REF = json.loads((pathlib.Path(__file__).parent / "reference" / "miners_pml.json").read_text())
X = np.asarray(REF["x"], np.float32)
Y = np.asarray(REF["labels"], np.int32)


@pytest.mark.parametrize("case", REF["triplet"], ids=lambda c: f"{c['type_of_triplets']}-{c['margin']}")
def test_triplet_margin_miner_matches_pml(case):
    m = miners.triplet_margin_miner(X, Y, margin=case["margin"], type_of_triplets=case["type_of_triplets"])
    got = [t.tolist() for t in jnp.nonzero(m)]
    assert got == case["indices"]
    assert len(got[0]) > 0 or case["type_of_triplets"] == "hard"


@pytest.mark.parametrize("case", REF["pair"], ids=lambda c: f"{c['pos_margin']}-{c['neg_margin']}")
def test_pair_margin_miner_matches_pml(case):
    pos, neg = miners.pair_margin_miner(X, Y, pos_margin=case["pos_margin"], neg_margin=case["neg_margin"])
    got = [t.tolist() for t in (*jnp.nonzero(pos), *jnp.nonzero(neg))]
    assert got == case["indices"]


@pytest.mark.parametrize("case", REF["angular"], ids=lambda c: f"{c['angle']}")
def test_angular_miner_matches_pml(case):
    m = miners.angular_miner(X, Y, angle=case["angle"])
    assert [t.tolist() for t in jnp.nonzero(m)] == case["indices"]
    assert len(case["indices"][0]) > 0


def test_static_size_indices_under_jit_and_padding():
    @jax.jit
    def mine(x, y, w):
        m = miners.triplet_margin_miner(x, y, type_of_triplets="semihard", where=w)
        return jnp.nonzero(m, size=64, fill_value=-1), jnp.sum(m)

    w = np.ones(10, bool)
    (a, p, n), count = mine(X, Y, w)
    case = next(c for c in REF["triplet"] if c["type_of_triplets"] == "semihard" and c["margin"] == 0.2)
    k = int(count)
    assert [a[:k].tolist(), p[:k].tolist(), n[:k].tolist()] == case["indices"]
    assert np.all(np.asarray(a[k:]) == -1)
    # A padded row is in no triplet, as anchor, positive or negative.
    w[3] = False
    (a, p, n), _ = mine(X, Y, w)
    assert 3 not in np.asarray(a).tolist() + np.asarray(p).tolist() + np.asarray(n).tolist()


# ------------------- distance_weighted, uniform_histogram, hdc, batch_easy_hard -------------------


def _valid_part(*arrays_and_mask):
    *arrays, valid = (np.asarray(t) for t in arrays_and_mask)
    assert np.all(valid[: valid.sum()]) and not np.any(valid[valid.sum() :])  # real entries first
    assert all(np.all(a[~valid] == -1) for a in arrays)  # then -1
    return [a[valid].tolist() for a in arrays]


def test_batch_easy_hard_miner_matches_pml():
    assert len(REF["batch_easy_hard"]) == 15  # 13 allowed strategy pairs + 2 with ranges
    for case in REF["batch_easy_hard"]:
        kw = {k: tuple(case[k]) for k in ("allowed_pos_range", "allowed_neg_range") if k in case}
        pos, neg = miners.batch_easy_hard_miner(
            X, Y, pos_strategy=case["pos_strategy"], neg_strategy=case["neg_strategy"], **kw
        )  # eager: the 15 calls share their compiled ops
        got = [t.tolist() for t in (*jnp.nonzero(pos), *jnp.nonzero(neg))]
        assert got == case["indices"], (case["pos_strategy"], case["neg_strategy"], kw)


def test_hdc_miner_matches_pml_up_to_the_order_of_exact_ties():
    xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    d = np.linalg.norm(xn[:, None] - xn[None], axis=-1)

    def dists(a, b):
        return np.round([d[i, j] for i, j in zip(a, b, strict=True)], 5).tolist()

    def canonical(a, b):  # torch.topk orders a pair and its transpose (equal distances) its own way
        return sorted((round(float(d[i, j]), 5), min(i, j), max(i, j)) for i, j in zip(a, b, strict=True))

    for case in REF["hdc"]:
        m = jax.jit(lambda x, y, f=case["filter_percentage"]: miners.hdc_miner(x, y, filter_percentage=f))(X, Y)
        a1, p = _valid_part(m.pos_anchors, m.positives, m.pos_valid)
        a2, n = _valid_part(m.neg_anchors, m.negatives, m.neg_valid)
        ra1, rp, ra2, rn = case["indices"]
        assert dists(a1, p) == dists(ra1, rp) and dists(a2, n) == dists(ra2, rn)  # hardest first, same count
        assert canonical(a1, p) == canonical(ra1, rp) and canonical(a2, n) == canonical(ra2, rn)


def test_hdc_miner_counts_like_python_floats():
    # 50 positive pairs (classes of 5 and 6): PML keeps math.ceil(0.14 * 50) = 8, as 0.14 * 50 = 7.000000000000001
    # in Python floats (7 in exact arithmetic); 60 negative pairs: ceil(8.400000000000002) = 9.
    x = np.random.default_rng(0).normal(size=(11, 3)).astype(np.float32)
    y = np.array([0] * 5 + [1] * 6, np.int32)
    m = jax.jit(lambda x, y: miners.hdc_miner(x, y, filter_percentage=0.14))(x, y)
    assert int(m.pos_valid.sum()) == 8 and int(m.neg_valid.sum()) == 9


# The cutoffs are traced (one compile for both cases).
_dw_jit = jax.jit(lambda x, y, k, c, z: miners.distance_weighted_miner(x, y, key=k, cutoff=c, nonzero_loss_cutoff=z))


def test_distance_weighted_miner_samples_pml_weights():
    from lossjax._pairwise import l2_normalize, pairwise_similarity
    from lossjax.miners import _distance_weighted_probs

    d = pairwise_similarity(l2_normalize(jnp.asarray(X)), distance="euclidean")
    neg = jnp.asarray(Y[:, None] != Y[None, :])
    for case in REF["distance_weighted"]:
        cut, nzc = case["cutoff"], case["nonzero_loss_cutoff"]
        w = np.asarray(case["weights"])
        probs, _ = _distance_weighted_probs(d, neg, X.shape[1], cut, nzc)
        np.testing.assert_allclose(np.asarray(probs), w, rtol=2e-6, atol=1e-7)
        assert (w == 0).any() and (w > 0).any()
        a, p, n = _valid_part(*_dw_jit(X, Y, jax.random.key(3), cut, nzc))
        assert a == case["anchors"]  # PML's layout: classes in label order, k = class size slots per anchor
        assert all(Y[i] == Y[j] and i != j for i, j in zip(a, p, strict=True))
        assert all(w[i, j] > 0 for i, j in zip(a, n, strict=True))
    # One anchor is dropped in the second case: all its negatives are beyond nonzero_loss_cutoff.
    assert len(REF["distance_weighted"][1]["anchors"]) < len(REF["distance_weighted"][0]["anchors"])


def test_distance_weighted_miner_draws_follow_the_weights():
    case = REF["distance_weighted"][0]
    w = np.asarray(case["weights"])
    keys = jax.random.split(jax.random.key(7), 2000)
    t = jax.jit(jax.vmap(lambda k: miners.distance_weighted_miner(X, Y, key=k)))(keys)
    a, p, n, _ = (np.asarray(u)[np.asarray(t.valid)] for u in t)
    for anchor in sorted(set(case["anchors"])):
        sel = a == anchor
        freq = np.bincount(n[sel], minlength=len(Y)) / sel.sum()
        np.testing.assert_allclose(freq, w[anchor], atol=0.03)
        others = [j for j in range(len(Y)) if Y[j] == Y[anchor] and j != anchor]
        pf = np.bincount(p[sel], minlength=len(Y))[others] / sel.sum()
        np.testing.assert_allclose(pf, 1 / len(others), atol=0.03)


def test_uniform_histogram_miner_bins_equal_pml():
    k = 300  # draws per bin: every member of a bin shows up
    for case in REF["uniform_histogram"]:
        m = jax.jit(
            lambda x, y, nb=case["num_bins"]: miners.uniform_histogram_miner(
                x, y, key=jax.random.key(1), num_bins=nb, pos_per_bin=300, neg_per_bin=300
            )
        )(X, Y)
        for side, (a, o, v) in (
            ("pos", (m.pos_anchors, m.positives, m.pos_valid)),
            ("neg", (m.neg_anchors, m.negatives, m.neg_valid)),
        ):
            pairs = list(zip(*_valid_part(a, o, v), strict=True))
            bins = case[f"{side}_bins"]
            assert len(pairs) == k * len(bins)
            for i, members in enumerate(bins):
                assert set(pairs[k * i : k * (i + 1)]) == set(map(tuple, members))
        # PML's own output length with 3 / 2 draws per bin: the same nonempty bins.
        assert case["lengths_3_2"] == [3 * len(case["pos_bins"])] * 2 + [2 * len(case["neg_bins"])] * 2


@jax.jit
def _all_new_miners(x, y, w):
    key = jax.random.key(0)
    return (
        miners.distance_weighted_miner(x, y, key=key, where=w)[:3],
        miners.uniform_histogram_miner(x, y, key=key, num_bins=4, where=w)[:4],
        miners.hdc_miner(x, y, where=w)[:4],
        miners.batch_easy_hard_miner(x, y, pos_strategy="hard", neg_strategy="semihard", where=w),
        miners.batch_easy_hard_miner(x, y, pos_strategy="all", neg_strategy="all", where=w),
    )


def test_new_miners_exclude_padded_rows():
    w = np.ones(len(Y), bool)
    w[[2, 9]] = False
    dw, uh, hdc, (pos, neg), (pos_all, neg_all) = _all_new_miners(X, Y, w)
    used = np.concatenate([np.ravel(np.asarray(t)) for t in (*dw, *uh, *hdc)]).tolist()
    used += np.argwhere(np.asarray(pos) | np.asarray(neg) | np.asarray(pos_all) | np.asarray(neg_all)).ravel().tolist()
    assert 2 not in used and 9 not in used and len(used) > 0
    # Padding equals slicing (the deterministic miners).
    idx = np.nonzero(w)[0]
    sp, sn = jax.jit(lambda x, y: miners.batch_easy_hard_miner(x, y, pos_strategy="hard", neg_strategy="semihard"))(
        X[idx], Y[idx]
    )
    np.testing.assert_array_equal(np.asarray(pos)[np.ix_(idx, idx)], sp)
    np.testing.assert_array_equal(np.asarray(neg)[np.ix_(idx, idx)], sn)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: miners.batch_easy_hard_miner(X, Y, pos_strategy="semihard"), "cannot both be 'semihard'"),
        (
            lambda: miners.batch_easy_hard_miner(X, Y, neg_strategy="all", pos_strategy="semihard"),
            "combined with 'all'",
        ),
        (lambda: miners.batch_easy_hard_miner(X, Y, pos_strategy="medium"), "batch_easy_hard_miner: `pos_strategy`"),
        (lambda: miners.batch_easy_hard_miner(X, Y, allowed_pos_range=(1.0, 0.5)), "`allowed_pos_range` must be"),
        (
            lambda: miners.hdc_miner(X, Y, filter_percentage=1.5),
            r"hdc_miner: `filter_percentage` must lie in \[0.0, 1.0\]",
        ),
        (
            lambda: miners.uniform_histogram_miner(X, Y, key=jax.random.key(0), num_bins=0),
            "uniform_histogram_miner: `num_bins`",
        ),
        (
            lambda: miners.distance_weighted_miner(X, Y, key=jax.random.key(0), cutoff=0.0),
            "distance_weighted_miner: `cutoff`",
        ),
    ],
)
def test_new_miners_bad_hyperparameters(call, match):
    with pytest.raises(ValueError, match=match):
        call()
