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
