"""batch_triplet_loss's PML options ``smooth_loss`` and ``swap``: closed forms on hand-made batches.

The conformance ``value`` property checks the variant ``smooth_loss=True, swap=True`` (mining "all") against
PML 2.9's ``TripletMarginLoss``; these tests check the batch-hard path and the swap choice at hand-made points.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossjax.losses import batch_triplet_loss

X1 = jnp.array([[0.0], [1.0], [1.2]])  # a, p (class 0) and n (class 1) on a line
Y1 = jnp.array([0, 0, 1])


def _softplus(v):
    return float(np.log1p(np.exp(v)))


@pytest.mark.parametrize(
    ("swap", "smooth_loss", "expected"),
    [
        # triplets (0, 1, 2): d_ap 1, d_an 1.2, d_pn 0.2; (1, 0, 2): d_ap 1, d_an 0.2, d_pn 1.2
        (False, False, (0.3 + 1.3) / 2),
        (True, False, 1.3),  # swap: min(d_an, d_pn) = 0.2 for both
        (False, True, (_softplus(0.3) + _softplus(1.3)) / 2),
        (True, True, _softplus(1.3)),
    ],
)
def test_swap_and_smooth_loss_closed_form(swap, smooth_loss, expected):
    got = batch_triplet_loss(X1, Y1, margin=0.5, normalize=False, swap=swap, smooth_loss=smooth_loss)
    np.testing.assert_allclose(float(got), expected, rtol=1e-6)


def test_batch_hard_with_swap_and_smooth_loss():
    rng = np.random.default_rng(9)  # two anchors whose d_pn is well below d_an
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2], np.int32)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    d = np.linalg.norm(xn[:, None] - xn[None], axis=-1)
    same = y[:, None] == y[None, :]
    terms = []
    for a in range(8):
        p = np.argmax(np.where(same[a] & (np.arange(8) != a), d[a], -np.inf))
        n = np.argmin(np.where(~same[a], d[a], np.inf))
        terms.append(_softplus(d[a, p] - min(d[a, n], d[p, n]) + 0.2))
    loss = jax.jit(lambda x, y, swap: batch_triplet_loss(x, y, margin=0.2, mining="hard", swap=swap, smooth_loss=True),
                   static_argnums=2)  # fmt: skip
    np.testing.assert_allclose(float(loss(x, y, True)), np.mean(terms), rtol=1e-5)
    # Without swap the negative distance is d_an only: a different value here.
    assert abs(float(loss(x, y, False)) - np.mean(terms)) > 1e-3


def test_swap_under_an_empty_memory_equals_the_batch():
    # After this batch's enqueue an empty memory holds exactly the batch (stop-gradient): the same references.
    from lossjax.losses import CrossBatchMemory

    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 3)).astype(np.float32)
    y = np.array([0, 0, 1, 1, 2, 2], np.int32)
    mem = CrossBatchMemory.initial(8, 3)
    f = jax.jit(lambda x, y, m: batch_triplet_loss(x, y, swap=True, smooth_loss=True, memory=m))
    np.testing.assert_allclose(
        float(f(x, y, mem)), float(batch_triplet_loss(x, y, swap=True, smooth_loss=True)), rtol=1e-6
    )


def test_per_anchor_losses_reduce_to_the_batch_losses():
    from lossjax.losses import multi_similarity_loss, multi_similarity_loss_per_anchor

    rng = np.random.default_rng(5)
    x = rng.normal(size=(7, 4)).astype(np.float32)
    y = np.array([0, 0, 1, 1, 2, 2, 0], np.int32)
    w = np.array([True] * 6 + [False])
    per = multi_similarity_loss_per_anchor(x, y, where=w)
    assert float(per[6]) == 0.0
    np.testing.assert_allclose(float(per[:6].mean()), float(multi_similarity_loss(x, y, where=w)), rtol=1e-6)
