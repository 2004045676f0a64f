"""The rest of pytorch-metric-learning's losses (issue 15, second part): what the conformance suite cannot see.

Values and gradients against PML 2.9 (float64) are checked by the conformance ``value`` property
(``lossjax/expected/metric.json``, written by ``tests/reference/make_expected_pml2.py``). Here: the state of
the dynamic soft margin over steps, the instance loss's labels contract, the edges of PNP and the manifold
loss, and the closed forms at special points.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossjax import losses as L

X4 = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])


def test_dynamic_soft_margin_state_over_steps():
    step = jax.jit(
        lambda x, y, h, decay: L.dynamic_soft_margin_loss(x, y, state=L.DynamicSoftMarginState(h), decay=decay)
    )
    y = jnp.array([0, 0, 1, 1])
    empty = jnp.zeros((10,))
    # First batch (an all-zero histogram): the batch's own counts, normalized (momentum 1 whatever the decay).
    _, s0 = step(X4, y, empty, 0.25)
    assert math.isclose(float(jnp.sum(s0.histogram)), 1.0, rel_tol=1e-6)
    # Next batch: decay * old + (1 - decay) * its raw counts (8 triplets here), renormalized (PML's update).
    _, s1 = step(X4, jnp.array([0, 1, 0, 1]), s0.histogram, 0.25)
    _, fresh = step(X4, jnp.array([0, 1, 0, 1]), empty, 0.25)
    want = 0.25 * s0.histogram + 0.75 * 8 * fresh.histogram
    np.testing.assert_allclose(s1.histogram, want / jnp.sum(want), rtol=1e-5, atol=1e-7)
    # No triplet (no positive pair): loss 0, state unchanged.
    loss, s2 = step(X4, jnp.array([0, 1, 2, 3]), s1.histogram, 0.25)
    assert float(loss) == 0.0
    np.testing.assert_array_equal(s2.histogram, s1.histogram)
    # d_ap - d_an = 2 (opposite positive, identical negative) lands past the last bin (PML raises): dropped.
    x = jnp.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    loss, s3 = step(x, jnp.array([0, 0, 1, 2]), empty, 0.25)
    assert np.all(np.isfinite(s3.histogram)) and np.isfinite(float(loss))


def test_instance_loss_targets_the_first_row_of_each_id():
    x = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    y = jnp.array([7, 3, 7])  # row 2's target is row 0 (the first with id 7); rows 0, 1 target themselves
    got = float(jax.jit(lambda x: L.instance_loss(x, y, scale=2.0))(x))
    s = 2.0 * np.array([[1.0, 0.0, 0.6], [0.0, 1.0, 0.8], [0.6, 0.8, 1.0]])
    lse = np.log(np.exp(s).sum(1))
    want = np.mean([lse[0] - s[0, 0], lse[1] - s[1, 1], lse[2] - s[2, 0]])
    assert math.isclose(got, want, rel_tol=1e-6)


def test_smooth_ap_takes_unequal_classes():
    # PML needs equal, contiguous classes; the formula does not. As t -> 0 it is 1 - AP of hard ranks (the
    # anchor ranks itself, first): the AP of each anchor's sorted list, by hand in numpy.
    y = np.array([0, 0, 0, 1])
    x = np.array([[1.0, 0.0], [0.9, 0.1], [-1.0, 0.0], [1.0, 0.05]])
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = xn @ xn.T
    aps = []
    for i in range(4):
        order = np.argsort(-s[i])
        rel = y[order] == y[i]
        aps.append(np.mean(np.cumsum(rel)[rel] / (np.flatnonzero(rel) + 1)))
    got = float(jax.jit(lambda x: L.smooth_ap_loss(x, jnp.asarray(y), temperature=1e-4))(jnp.asarray(x)))
    assert got == pytest.approx(1 - np.mean(aps), abs=1e-4)
    assert 0.1 < got < 0.9


def test_centroid_triplet_singleton_class_is_a_negative_not_an_anchor():
    x = jnp.array([[0.0], [2.0], [3.0]])  # class 0 = {0, 2} (centroid 1), class 1 = {3} alone
    got = float(jax.jit(lambda x: L.centroid_triplet_loss(x, jnp.array([0, 0, 1]), margin=4.0, normalize=False))(x))
    assert got == pytest.approx(((2 - 3 + 4) + (2 - 1 + 4)) / 2)  # anchors 0 and 1 only; no positive for 2


def test_manifold_out_of_range_label_is_nan():
    p = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    f = jax.jit(lambda w: L.manifold_loss(X4[:2], jnp.array([0, 5]), p, where=w))
    assert np.isnan(float(f(jnp.array([True, True]))))
    assert np.isfinite(float(f(jnp.array([True, False]))))


def test_pnp_dq_without_positives_is_zero_not_one():
    assert float(jax.jit(lambda x: L.pnp_loss(x, jnp.array([0, 1, 2, 3]), variant="Dq"))(X4)) == 0.0


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"pnp_loss.*variant"):
        L.pnp_loss(X4, jnp.array([0, 0, 1, 1]), variant="Q")
    with pytest.raises(ValueError, match=r"dynamic_soft_margin_loss.*histogram"):
        L.dynamic_soft_margin_loss(X4, jnp.array([0, 0, 1, 1]), state=L.DynamicSoftMarginState(jnp.zeros(4)))
    with pytest.raises(ValueError, match=r"ranked_list_loss.*imbalance"):
        L.ranked_list_loss(X4, jnp.array([0, 0, 1, 1]), imbalance=1.5)
