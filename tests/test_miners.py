"""Miners: the same pairs/triplets as pytorch-metric-learning's miners (tests/reference/metric.json)."""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossjax import miners

REF = json.loads((pathlib.Path(__file__).resolve().parent / "reference" / "metric.json").read_text())["miners"]
X = np.asarray(REF["inputs"]["embeddings"], np.float32)
XC = np.asarray(REF["inputs"]["clustered"], np.float32)
Y = np.asarray(REF["inputs"]["labels"], np.int32)


def test_public_surface():
    assert sorted(miners.__all__) == [
        "MinedPairs",
        "MinedTriplets",
        "angular_miner",
        "batch_all_miner",
        "batch_easy_hard_miner",
        "batch_hard_miner",
        "distance_weighted_miner",
        "hdc_miner",
        "multi_similarity_miner",
        "pair_margin_miner",
        "semihard_miner",
        "triplet_margin_miner",
        "uniform_histogram_miner",
    ]


def test_batch_all_pairs_by_hand():
    pos, neg = (np.asarray(m) for m in miners.batch_all_miner(Y))
    same = Y[:, None] == Y[None, :]
    np.testing.assert_array_equal(pos, same & ~np.eye(len(Y), dtype=bool))
    np.testing.assert_array_equal(neg, ~same)


def test_batch_hard_matches_pml():
    ok, p, n = (np.asarray(t) for t in jax.jit(miners.batch_hard_miner)(X, Y))
    ref = REF["batch_hard"]
    np.testing.assert_array_equal(np.nonzero(ok)[0], ref["anchors"])  # the singleton class has no positive
    np.testing.assert_array_equal(p[ok], ref["positives"])
    np.testing.assert_array_equal(n[ok], ref["negatives"])


@pytest.mark.parametrize("margin", [0.2, 0.5])
def test_semihard_matches_pml(margin):
    mask = np.asarray(miners.semihard_miner(X, Y, margin=margin))
    ours = sorted(tuple(int(i) for i in t) for t in np.argwhere(mask))
    assert ours == [tuple(t) for t in REF[f"semihard_{margin}"]]
    assert len(ours) > 0


@pytest.mark.parametrize("margin", [0.1, 0.3])
def test_multi_similarity_matches_pml(margin):
    # PML's MultiSimilarityMiner calls the margin `epsilon` (the reference file's key).
    pos, neg = (np.asarray(m) for m in miners.multi_similarity_miner(XC, Y, margin=margin))
    ref = REF[f"multi_similarity_{margin}"]
    assert sorted(map(tuple, np.argwhere(pos).tolist())) == [tuple(t) for t in ref["pos"]]
    assert sorted(map(tuple, np.argwhere(neg).tolist())) == [tuple(t) for t in ref["neg"]]


def test_where_excludes_padded_rows_everywhere():
    where = np.ones(len(Y), bool)
    where[[0, 5]] = False
    pos, neg = (np.asarray(m) for m in miners.batch_all_miner(Y, where=where))
    assert not pos[[0, 5]].any() and not pos[:, [0, 5]].any()
    assert not neg[[0, 5]].any() and not neg[:, [0, 5]].any()
    ok, p, n = (np.asarray(t) for t in miners.batch_hard_miner(X, Y, where=where))
    assert not ok[[0, 5]].any()
    assert not np.isin(p[ok], [0, 5]).any() and not np.isin(n[ok], [0, 5]).any()
    m = np.asarray(miners.semihard_miner(X, Y, margin=0.5, where=where))
    assert not m[[0, 5]].any() and not m[:, [0, 5]].any() and not m[:, :, [0, 5]].any()
    # Padding equals slicing for the pair miners.
    idx = np.nonzero(where)[0]
    mp, mn = (np.asarray(t) for t in miners.multi_similarity_miner(XC, Y, where=where))
    sp, sn = (np.asarray(t) for t in miners.multi_similarity_miner(XC[idx], Y[idx]))
    np.testing.assert_array_equal(mp[np.ix_(idx, idx)], sp)
    np.testing.assert_array_equal(mn[np.ix_(idx, idx)], sn)


def test_miners_are_jittable_and_vmappable():
    batched = jnp.stack([X, X[::-1]])
    labels = jnp.stack([Y, Y[::-1]])
    ok, p, n = jax.vmap(miners.batch_hard_miner)(batched, labels)
    ok1, p1, n1 = miners.batch_hard_miner(X[::-1], Y[::-1])
    np.testing.assert_array_equal(ok[1], ok1)
    np.testing.assert_array_equal(p[1], p1)
    np.testing.assert_array_equal(n[1], n1)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: miners.batch_all_miner(np.zeros(4, np.float32)), TypeError, "batch_all_miner.*labels.*int"),
        (
            lambda: miners.batch_hard_miner(np.ones((4, 2), np.float32), np.zeros(3, np.int32)),
            ValueError,
            "batch_hard_miner",
        ),
        (
            lambda: miners.semihard_miner(np.ones((4, 2), np.float32), np.zeros(4, np.int32), margin=0.0),
            ValueError,
            "margin",
        ),
        (lambda: miners.multi_similarity_miner(np.ones(4, np.float32), np.zeros(4, np.int32)), ValueError, "rank 2"),
        (
            lambda: miners.multi_similarity_miner(np.ones((4, 2), np.float32), np.zeros(4, np.int32), margin=-1.0),
            ValueError,
            "multi_similarity_miner: `margin` must be >= 0",
        ),
        (
            lambda: miners.semihard_miner(np.ones((4, 2), np.float32), np.zeros(4, np.int32), distance="cosine"),
            ValueError,
            "semihard_miner: `distance` must be one of",
        ),
    ],
)
def test_bad_inputs(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
