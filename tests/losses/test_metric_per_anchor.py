"""The per-anchor entries reduce to their batch losses the way PML's reducers do.

Their values and gradients are checked against PML 2.9 (``reducer=PerAnchorReducer(DoNothingReducer())``) by the
conformance ``value`` property; these tests check the identity with the batch loss, on a batch with a masked row
(NaN) and an anchor without a positive.
"""

import jax
import numpy as np
import pytest

from lossjax import losses as L

RNG = np.random.default_rng(11)
X = RNG.normal(size=(8, 4)).astype(np.float32)
X[7] = np.nan  # masked
Y = np.array([0, 0, 1, 1, 1, 2, 1, 3], np.int32)  # 1 or 3 positives; anchor 5 (class 2) has none
W = np.arange(8) < 7
POS = (Y[:, None] == Y[None, :]) & ~np.eye(8, dtype=bool) & W[:, None] & W[None, :]


def _pair(name, **kw):
    f = jax.jit(
        lambda x, y, w: (getattr(L, name)(x, y, where=w, **kw), getattr(L, f"{name}_per_anchor")(x, y, where=w, **kw))
    )
    batch, per = f(X, Y, W)
    per = np.asarray(per, np.float64)
    assert per[7] == 0.0 and per[5] == 0.0 and np.all(np.isfinite(per))
    return float(batch), per


@pytest.mark.parametrize(("name", "kw"), [("circle_loss", {"margin": 0.25, "scale": 16.0}),
                                          ("supervised_contrastive_loss", {})])  # fmt: skip
def test_avg_nonzero_of_the_anchors_is_the_batch_loss(name, kw):
    batch, per = _pair(name, **kw)  # PML's AvgNonZeroReducer over the element losses
    np.testing.assert_allclose(batch, per[per > 0].mean(), rtol=1e-5)


@pytest.mark.parametrize(("name", "kw"), [("nca_loss", {"scale": 2.0}), ("fast_ap_loss", {"num_bins": 4})])
def test_batch_loss_is_the_mean_over_anchors_with_a_positive(name, kw):
    batch, per = _pair(name, **kw)  # PML's MeanReducer over the element losses it keeps
    has = POS.any(1)
    np.testing.assert_allclose(batch, per[has].mean(), rtol=1e-5)


@pytest.mark.parametrize("name", ["ntxent_loss", "lifted_structure_loss", "tuplet_margin_loss", "angular_loss"])
def test_pair_losses_are_the_pair_weighted_mean_of_the_anchors(name):
    batch, per = _pair(name)  # pos_pair losses: the batch mean runs over pairs, |P_a| of them per anchor
    n_pos = POS.sum(1)
    np.testing.assert_allclose(batch, (n_pos * per).sum() / n_pos.sum(), rtol=1e-5)
    assert abs(batch - per[n_pos > 0].mean()) > 1e-4  # unequal |P_a| here: not the plain mean
    # With as many positives per anchor (SimCLR's two views) the batch loss is PerAnchorReducer(MeanReducer()).
    y2 = np.array([0, 0, 1, 1, 2, 2, 3, 3], np.int32)
    x2 = RNG.normal(size=(8, 4)).astype(np.float32)
    np.testing.assert_allclose(float(getattr(L, name)(x2, y2)),
                               float(getattr(L, f"{name}_per_anchor")(x2, y2).mean()), rtol=1e-5)  # fmt: skip


def test_npair_loss_sits_at_each_class_first_example():
    batch, per = _pair("npair_loss")  # PML's element losses indexed by their anchors: the first of classes 0 and 1
    assert np.all(per[[0, 2]] > 0) and np.all(np.delete(per, [0, 2]) == 0)
    np.testing.assert_allclose(batch, per[[0, 2]].mean(), rtol=1e-5)


def test_generalized_lifted_batch_loss_is_the_mean_over_the_real_anchors():
    kw = {"pos_margin": 0.2}
    batch = L.generalized_lifted_structure_loss(X, Y, where=W, **kw)
    per = np.asarray(L.generalized_lifted_structure_loss_per_anchor(X, Y, where=W, **kw), np.float64)
    assert per[7] == 0.0 and per[5] > 0.0  # masked; no positive: an empty sum counts 0, the negatives still do
    np.testing.assert_allclose(float(batch), per[:7].mean(), rtol=1e-5)  # PML's MeanReducer: every anchor counts


def test_intra_pair_variance_batch_loss_is_the_anchor_mean_when_balanced():
    # Each anchor: 1 positive and 6 negatives, so both pair means are the anchor means (PerAnchorReducer(MeanReducer()))
    y2 = np.array([0, 0, 1, 1, 2, 2, 3, 3], np.int32)
    x2 = np.random.default_rng(5).normal(size=(8, 4)).astype(np.float32)
    kw = {"pos_epsilon": 0.5, "neg_epsilon": 0.0}  # some positive and some negative hinges active
    per = np.asarray(L.intra_pair_variance_loss_per_anchor(x2, y2, **kw), np.float64)
    assert np.count_nonzero(per) >= 2
    np.testing.assert_allclose(float(L.intra_pair_variance_loss(x2, y2, **kw)), per.mean(), rtol=1e-5)
    per_w = np.asarray(L.intra_pair_variance_loss_per_anchor(X, Y, where=W, **kw), np.float64)
    assert per_w[7] == 0.0 and np.all(np.isfinite(per_w))


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("smooth_ap_loss", {"temperature": 0.1}),
        ("ranked_list_loss", {"pos_scale": 2.0}),
        ("instance_loss", {"scale": 8.0}),
    ],
)
def test_element_losses_average_to_the_batch_loss_over_the_real_examples(name, kw):
    # PML's MeanReducer over one element loss per example (classes of equal size for SmoothAP, as PML requires)
    y = np.array([0, 0, 1, 1, 2, 2, 0, 1], np.int32) if name == "smooth_ap_loss" else Y
    w = np.arange(8) < 6 if name == "smooth_ap_loss" else W
    batch = float(getattr(L, name)(X, y, where=w, **kw))
    per = np.asarray(getattr(L, f"{name}_per_anchor")(X, y, where=w, **kw), np.float64)
    assert np.all(per[~w] == 0.0) and np.all(np.isfinite(per)) and np.count_nonzero(per) >= 2
    np.testing.assert_allclose(batch, per[w].mean(), rtol=1e-5)
