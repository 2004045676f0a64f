"""Segmentation losses: golden values from segmentation_models_pytorch, MONAI and the Lovasz code, optax at
test time, hand-derived closed forms, the absent-class rules, masks, layouts and errors.

Golden numbers: tests/reference/segmentation.json, written by tests/reference/make_segmentation.py
(segmentation_models_pytorch 0.6.0 loss files, MONAI 1.6.1, bermanmaxim/LovaszSoftmax@7d48792).
The conformance value cases (every entry, every variant and extreme, vs MONAI / the ports) live in
lossjax/expected/segmentation.json (tests/reference/make_expected_segmentation.py).
"""

import json
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from lossjax import losses as L
from lossjax.testing import assert_close

REF = json.loads((pathlib.Path(__file__).parents[1] / "reference" / "segmentation.json").read_text())


def _decode(x):
    if x is None:
        return None
    a = np.asarray([np.nan if v is None else v for v in x["data"]], dtype=x["dtype"]).reshape(x["shape"])
    return a


def _call(case, logits):
    fn = getattr(L, case["call"])
    labels = _decode(case["labels"])
    where = _decode(case["where"])
    kw = dict(case["kwargs"])
    if where is not None:
        kw["where"] = jnp.asarray(where)
    t = case["transform"]
    if t == "fold":
        c = logits.shape[-1]
        lab = labels.reshape((1, -1, c)) if labels.ndim == logits.ndim else labels.reshape((1, -1))
        return fn(logits.reshape((1, -1, c)), lab, **kw)[0]
    if t == "merge_mean":  # SMP multilabel Lovasz: channels merged into one binary set per image
        b = logits.shape[0]
        return jnp.mean(fn(logits.reshape((b, -1, 1)), labels.reshape((b, -1, 1)), **kw))
    out = fn(logits, labels, **kw)
    if t == "mean":
        return jnp.mean(out)
    if t == "pow":
        return out ** case["extra"]["gamma"]
    if t == "plus_ce":
        ce = L.softmax_cross_entropy(logits, labels)
        return out + lossjax.masked_mean(ce)
    assert t == "none", t
    return out


@pytest.mark.parametrize("case", REF["cases"], ids=[c["id"] for c in REF["cases"]])
def test_golden_reference(case):
    logits = jnp.asarray(_decode(case["logits"]), jnp.float32)
    value, grad = jax.jit(jax.value_and_grad(lambda z: _call(case, z)))(logits)
    tol = {"rtol": 1e-4, "atol": 1e-5} if case["ref_dtype"] == "float64" else {"rtol": 3e-4, "atol": 3e-6}
    assert_close(value, case["value"], err=f"{case['id']} value vs {case['source']}", **tol)
    assert_close(grad, _decode(case["grad"]), err=f"{case['id']} gradient vs {case['source']}", **tol)


def _data(seed=0, shape=(2, 5, 4), c=3):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.normal(size=(*shape, c)) * 1.5, jnp.float32), jnp.asarray(rng.integers(0, c, shape))


# ------------------------------------------------------------------------------------------- optax --


def _same_value_and_grad(got_fn, ref_fn, z, rtol=1e-5, atol=1e-7):
    """Values and d sum / d logits of lossjax and the optax call agree (optax run at test time)."""
    (_, v_got), g_got = _jit_value_and_grad(got_fn)(z)
    (_, v_ref), g_ref = _jit_value_and_grad(ref_fn)(z)
    assert_close(v_got, v_ref, rtol=rtol, atol=atol)
    assert_close(g_got, g_ref, rtol=1e-4, atol=1e-7)


def _jit_value_and_grad(fn):
    """x -> ((sum fn(x), fn(x)), d sum fn / dx), compiled once (eager calls compile every op per shape)."""
    return jax.jit(jax.value_and_grad(lambda x: (jnp.sum(fn(x)), fn(x)), has_aux=True))


def test_dice_equals_optax_dice_loss():
    z, y = _data(1)
    t = jax.nn.one_hot(y, 3)
    # optax: (I + s) / (I + a FP + b FN + s); with a = b = 1/2 that is MONAI's Dice with 2 s.
    for s in (1.0, 0.25):
        _same_value_and_grad(
            lambda x, s=s: L.dice_loss(x, y, smooth_nr=2 * s, smooth_dr=2 * s),
            lambda x, s=s: optax.losses.dice_loss(x, t, smooth=s),
            z,
        )
    w = jnp.array([0.5, 2.0, 1.0])
    with jax.numpy_rank_promotion("allow"):  # optax broadcasts [B, C] * [C] implicitly
        _same_value_and_grad(
            lambda x: L.dice_loss(x, y, class_weights=w, include_background=False, smooth_nr=2.0, smooth_dr=2.0),
            lambda x: optax.losses.dice_loss(x, t, class_weights=w, ignore_background=True),
            z,
        )


def test_tversky_and_jaccard_equal_optax_alpha_beta():
    z, y = _data(2)
    t = jax.nn.one_hot(y, 3)
    _same_value_and_grad(
        lambda x: L.tversky_loss(x, y, alpha=0.3, beta=0.7, smooth_nr=0.5, smooth_dr=0.5),
        lambda x: optax.losses.dice_loss(x, t, alpha=0.3, beta=0.7, smooth=0.5),
        z,
    )
    _same_value_and_grad(  # soft IoU
        lambda x: L.jaccard_loss(x, y, smooth_nr=1.0, smooth_dr=1.0),
        lambda x: optax.losses.dice_loss(x, t, alpha=1.0, beta=1.0, smooth=0.5),
        z,
    )


def test_binary_dice_equals_optax_binary_dice_loss():
    rng = np.random.default_rng(3)
    z = jnp.asarray(rng.normal(size=(3, 4, 5)), jnp.float32)
    t = jnp.asarray(rng.random((3, 4, 5)) < 0.4, jnp.float32)
    ref = lambda x: optax.losses.binary_dice_loss(x, t)  # noqa: E731
    got = lambda x: L.dice_loss(x[..., None], t[..., None], activation="sigmoid", smooth_nr=2.0, smooth_dr=2.0)  # noqa: E731
    _same_value_and_grad(got, ref, z)
    # an integer map for one channel is the foreground mask itself
    got = L.dice_loss(z[..., None], t.astype(jnp.int32), activation="sigmoid", smooth_nr=2.0, smooth_dr=2.0)
    assert_close(got, ref(z))


def test_optax_multiclass_generalized_dice_is_weighted_dice():
    z, y = _data(4, shape=(3, 4, 4), c=4)
    t = jax.nn.one_hot(y, 4)
    freq = jnp.sum(t, axis=(0, 1, 2))
    w = 1.0 / (freq**2 + 1e-7)
    w = w / jnp.sum(w) * 4
    with jax.numpy_rank_promotion("allow"):  # optax broadcasts [B, C] * [C] implicitly
        _same_value_and_grad(
            lambda x: jnp.mean(L.dice_loss(x, y, class_weights=w, smooth_nr=2.0, smooth_dr=2.0)),
            lambda x: optax.losses.multiclass_generalized_dice_loss(x, t),
            z,
        )


# ------------------------------------------------------------------------------------ closed forms --


def test_dice_hand_computed_with_smoothing():
    # one image, two pixels, uniform logits: p = 1/2 everywhere; labels (0, 1)
    z = jnp.zeros((1, 2, 2))
    y = jnp.array([[0, 1]])
    # each class: TP = 1/2, P = 1, T = 1 -> dice = 1 - (1 + s) / (2 + s)
    for s in (0.0, 1e-5, 1.0):
        assert_close(L.dice_loss(z, y, smooth_nr=s, smooth_dr=s), [1 - (1 + s) / (2 + s)])
    # jaccard: 1 - (2 TP + s) / (2 (P + T - TP) + s) = 1 - 1 / 3 without smoothing
    assert_close(L.jaccard_loss(z, y, smooth_nr=0.0, smooth_dr=0.0), [2 / 3])
    # squared: P = T = sum p^2 = 1/2, sum t^2 = 1 -> 1 - 1 / 1.5
    assert_close(L.dice_loss(z, y, squared_pred=True, smooth_nr=0.0, smooth_dr=0.0), [1 - 1 / 1.5])


def test_activation_none_takes_probabilities():
    z, y = _data(16)

    @jax.jit  # all pairs in one compile (eager calls compile each op per shape)
    def pairs(z):
        out = {}
        for fn in (L.dice_loss, L.tversky_loss, L.mcc_loss, L.lovasz_softmax_loss, L.generalized_dice_loss):
            out[fn.__name__ + " softmax"] = (fn(jax.nn.softmax(z), y, activation="none"), fn(z, y))
            out[fn.__name__ + " sigmoid"] = (
                fn(jax.nn.sigmoid(z), y, activation="none"),
                fn(z, y, activation="sigmoid"),
            )
        return out

    for name, (got, want) in pairs(z).items():
        assert_close(got, want, err=name)


def test_absent_class_rules():
    # two pixels, both class 0; class 1 is absent. p = (0.75, 0.25) at each pixel.
    z = jnp.tile(jnp.array([[[math.log(3.0), 0.0]]]), (1, 2, 1))
    y = jnp.array([[0, 0]])
    s = 1e-5
    d0 = 1 - (2 * 1.5 + s) / (1.5 + 2 + s)
    d1 = 1 - s / (0.5 + s)  # absent: penalized by its predicted mass, never NaN
    assert_close(L.dice_loss(z, y), [(d0 + d1) / 2])
    assert_close(L.dice_loss(z, y, absent_classes="exclude"), [d0])
    assert_close(L.dice_loss(z, y, absent_classes="zero"), [d0 / 2])
    # no smoothing at all: the absent class scores 0/P = 0, a loss of 1 (not a 0/0 NaN, not "perfect")
    out = L.dice_loss(z, y, smooth_nr=0.0, smooth_dr=0.0)
    assert_close(out, [(1 - 3 / 3.5 + 1.0) / 2])
    # both empty (prediction exactly 0 and no target): 0/0 -> loss 1 without smoothing, 0 with equal smoothing
    z2 = jnp.array([[[0.0, -jnp.inf], [0.0, -jnp.inf]]])
    assert_close(L.dice_loss(z2, y, smooth_nr=0.0, smooth_dr=0.0), [0.5])
    assert_close(L.dice_loss(z2, y), [0.0], atol=1e-6)
    g = jax.grad(lambda q: L.dice_loss(q, y, smooth_nr=0.0, smooth_dr=0.0).sum())(z2)
    assert np.all(np.isfinite(np.asarray(g)))
    # an image with no present class at all under "exclude" gives 0
    assert_close(L.dice_loss(z, y, include_background=False, absent_classes="exclude"), [0.0])


def test_integer_labels_equal_one_hot_and_2d_equals_flattened_3d():
    z, y = _data(5, shape=(2, 3, 4, 2))  # 3-D
    oh = jax.nn.one_hot(y, 3)

    @jax.jit  # all calls in one compile (eager calls compile each op per shape)
    def calls(z):
        out = {}
        for fn in (L.dice_loss, L.jaccard_loss, L.tversky_loss, L.mcc_loss, L.generalized_dice_loss):
            out[fn.__name__] = (fn(z, y), fn(z, oh), fn(z.reshape(2, 12, 2, 3), y.reshape(2, 12, 2)))
        return out

    for name, (a, one_hot, flat) in calls(z).items():
        assert_close(one_hot, a, err=name)
        assert_close(flat, a, err=name)  # only the spatial sums matter


def test_where_equals_dropping_pixels():
    z, y = _data(6, shape=(2, 6, 5))
    rng = np.random.default_rng(6)
    # 21 of the 30 pixels kept in each image, at random places: the kept pixels of both images stack into one
    # [2, 21] batch (one compile per loss instead of one eager compile per op per image shape)
    m = jnp.asarray(np.stack([rng.permutation(30) < 21 for _ in range(2)]).reshape(2, 6, 5))
    garbage = jnp.where(m[..., None], z, jnp.nan)
    idx = np.stack([np.nonzero(np.asarray(m[b]).ravel())[0] for b in range(2)])
    zd = jnp.stack([z[b].reshape(-1, 3)[idx[b]] for b in range(2)])
    yd = jnp.stack([y[b].reshape(-1)[idx[b]] for b in range(2)])
    # one loss per masked code path (soft counts, MCC's TN counts, the Lovasz sort, the pixel-mean CE/focal
    # terms); the zero gradient at masked pixels of every entry is the conformance `where` property.
    for fn in (L.dice_loss, L.mcc_loss, L.lovasz_softmax_loss, L.dice_focal_loss):
        masked = jax.jit(
            jax.value_and_grad(lambda q, w, fn=fn: (fn(q, y, where=w).sum(), fn(q, y, where=w)), has_aux=True)
        )
        (_, got), g = masked(garbage, m)
        # each image's dropped pixels alone, as a batch of one (vmapped over the two images)
        alone = jax.jit(jax.vmap(lambda a, b, fn=fn: fn(a[None], b[None])[0]))(zd, yd)
        assert_close(got, alone, err=fn.__name__)
        assert np.all(np.isfinite(np.asarray(g))) and np.all(np.asarray(g)[~np.asarray(m)] == 0), fn.__name__
        if fn is L.dice_loss:  # a fully masked image is padding: 0
            assert float(masked(z, m.at[1].set(False))[0][1][1]) == 0.0


def test_batch_loss_equals_per_image_loss_of_the_folded_batch():
    z, y = _data(7, shape=(3, 4, 4))

    @jax.jit  # every pair in one compile (eager calls compile each op per shape)
    def pairs(z):
        out = {}
        for metric in ("dice", "jaccard", "tversky", "focal_tversky", "log_cosh_dice", "mcc"):
            per_class = L.overlap_loss_per_class(z.reshape(1, -1, 3), y.reshape(1, -1), metric=metric)
            out[metric] = (L.batch_overlap_loss(z, y, metric=metric), jnp.mean(per_class))
        out["generalized_dice"] = (
            L.batch_overlap_loss(z, y, metric="generalized_dice"),
            L.generalized_dice_loss(z.reshape(1, -1, 3), y.reshape(1, -1))[0],
        )
        # per-class values average to the per-image loss
        out["per-class mean"] = (jnp.mean(L.overlap_loss_per_class(z, y), axis=-1), L.dice_loss(z, y))
        return out

    for name, (got, want) in pairs(z).items():
        assert_close(got, want, err=name)


def test_family_identities():
    z, y = _data(8)
    s = {"smooth_nr": 0.0, "smooth_dr": 0.0}

    @jax.jit  # every identity in one compile (eager calls compile each op per shape)
    def pairs(z):
        ce = jnp.mean(L.softmax_cross_entropy(z, y), axis=(1, 2))
        # generalized Dice with uniform weights is one ratio over the summed classes
        t = jax.nn.one_hot(y, 3)
        p = jax.nn.softmax(z)
        num = 2 * jnp.sum(p * t, axis=(1, 2, 3)) + 1e-5
        den = jnp.sum(p + t, axis=(1, 2, 3)) + 1e-5
        return {
            "tversky 1/2 = dice": (L.tversky_loss(z, y, alpha=0.5, beta=0.5), L.dice_loss(z, y)),
            "f_beta 1 = dice": (L.f_beta_loss(z, y, beta=1.0), L.dice_loss(z, y)),
            "tversky 1 = jaccard": (L.tversky_loss(z, y, alpha=1.0, beta=1.0, **s), L.jaccard_loss(z, y, **s)),
            "focal_tversky gamma 1": (L.focal_tversky_loss(z, y, gamma=1.0), L.tversky_loss(z, y)),
            "self_adjusting alpha 0": (
                L.self_adjusting_dice_loss(z, y, alpha=0.0),
                L.dice_loss(z, y, smooth_nr=1e-4, smooth_dr=1e-4),
            ),
            "dice_ce no ce": (L.dice_ce_loss(z, y, ce_weight=0.0), L.dice_loss(z, y)),
            "dice_focal no focal": (L.dice_focal_loss(z, y, focal_weight=0.0), L.dice_loss(z, y)),
            "dice_ce no dice": (L.dice_ce_loss(z, y, dice_weight=0.0), ce),
            # softmax focal with gamma = 0 is the cross-entropy
            "dice_focal no dice, gamma 0": (L.dice_focal_loss(z, y, dice_weight=0.0, gamma=0.0), ce),
            # F-beta: beta = 2 is Tversky with alpha = 1/5, beta = 4/5 and smoothing / 5
            "f_beta 2": (
                L.f_beta_loss(z, y, beta=2.0),
                L.tversky_loss(z, y, alpha=0.2, beta=0.8, smooth_nr=2e-6, smooth_dr=2e-6),
            ),
            "generalized uniform": (L.generalized_dice_loss(z, y, variant="uniform"), 1 - num / den),
        }

    for name, (got, want) in pairs(z).items():
        assert_close(got, want, err=name)


def test_mcc_hand_computed_and_perfect():
    # sigmoid probabilities p = (0.5, 0.5, 0.5, 0.5) against t = (1, 0, 0, 0): TP = .5, P = 2, T = 1, n = 4
    z = jnp.zeros((1, 4, 1))
    t = jnp.array([[1, 0, 0, 0]])
    tp, ps, ts, n = 0.5, 2.0, 1.0, 4.0
    mcc = (n * tp - ps * ts) / math.sqrt(ps * ts * (n - ts) * (n - ps))
    assert_close(L.mcc_loss(z, t, activation="sigmoid", smooth_dr=0.0), [1 - mcc])
    # an exact prediction (probabilities 0/1) scores 0 (MONAI's FP = FN = 0 rule)
    p = jnp.array([[[1.0], [0.0], [0.0], [0.0]]])
    assert float(L.mcc_loss(p, t, activation="none")[0]) == 0.0


def test_lovasz_gradient_is_the_lovasz_gradient_of_the_sorted_errors():
    # binary hinge on one image: errors m_i = 1 - z_i s_i; the loss is sum_i relu(m_(i)) g_i
    z = jnp.array([[[2.0], [-1.0], [0.5], [0.2], [-0.3]]])
    y = jnp.array([[1, 0, 0, 1, 1]])
    s = 2.0 * np.asarray(y[0]) - 1
    m = 1 - np.asarray(z[0, :, 0]) * s
    order = np.argsort(-m, kind="stable")
    gt = np.asarray(y[0])[order].astype(float)
    inter = gt.sum() - np.cumsum(gt)
    union = gt.sum() + np.cumsum(1 - gt)
    jac = 1 - inter / union
    g = np.concatenate([jac[:1], np.diff(jac)])
    (_, value), grad = _jit_value_and_grad(lambda q: L.lovasz_hinge_loss(q, y))(z)
    assert_close(value, [np.dot(np.maximum(m[order], 0), g)])
    grad = np.asarray(grad)[0, :, 0]
    want = np.zeros(5)
    want[order] = np.where(m[order] > 0, -s[order] * g, 0.0)
    assert_close(grad, want)
    # the softmax version on one class pair: the errors |t - p| with the same gradient vector
    zz = jnp.array([[[0.3, -0.2], [1.0, 0.4], [-0.5, 0.9]]])
    yy = jnp.array([[0, 1, 1]])
    p = np.asarray(jax.nn.softmax(zz))[0]
    t = np.eye(2)[np.asarray(yy[0])]
    vals = []
    for c in range(2):
        e = np.abs(t[:, c] - p[:, c])
        o = np.argsort(-e, kind="stable")
        gt = t[o, c]
        jac = 1 - (gt.sum() - np.cumsum(gt)) / (gt.sum() + np.cumsum(1 - gt))
        vals.append(np.dot(e[o], np.concatenate([jac[:1], np.diff(jac)])))
    assert_close(jax.jit(L.lovasz_softmax_loss)(zz, yy), [np.mean(vals)])


def _brute_signed_distance(mask):
    """Brute-force signed distance of one 2-D mask (MONAI's convention)."""
    pts = np.argwhere(np.ones_like(mask))
    inside, outside = np.argwhere(mask), np.argwhere(~mask)
    out = np.zeros(mask.shape)
    if len(inside) == 0 or len(outside) == 0:
        return out
    for p in pts:
        if mask[tuple(p)]:
            out[tuple(p)] = 1 - np.min(np.linalg.norm(outside - p, axis=1))
        else:
            out[tuple(p)] = np.min(np.linalg.norm(inside - p, axis=1))
    return out


def test_signed_distance_map_is_exact_2d_and_3d():
    rng = np.random.default_rng(9)
    y = rng.integers(0, 3, size=(2, 7, 6))
    y[1] = 0
    y[1, 2:5, 1:3] = 2  # class 1 absent, class 2 a block
    got = np.asarray(jax.jit(L.signed_distance_map, static_argnames="num_classes")(jnp.asarray(y), num_classes=3))
    for b in range(2):
        for c in range(3):
            assert_close(got[b, ..., c], _brute_signed_distance(y[b] == c), err=f"image {b} class {c}")
    y3 = rng.integers(0, 2, size=(1, 4, 5, 3))
    got3 = np.asarray(jax.jit(L.signed_distance_map, static_argnames="num_classes")(jnp.asarray(y3), num_classes=2))
    got3 = got3[0, ..., 1]
    mask = y3[0] == 1
    ins, outs = np.argwhere(mask), np.argwhere(~mask)
    want = np.zeros(mask.shape)
    for p in np.argwhere(np.ones_like(mask)):
        want[tuple(p)] = (
            1 - np.min(np.linalg.norm(outs - p, axis=1)) if mask[tuple(p)] else np.min(np.linalg.norm(ins - p, axis=1))
        )
    assert_close(got3, want)
    # jittable, and one-hot float targets give the same map
    assert_close(jax.jit(L.signed_distance_map)(jax.nn.one_hot(y, 3)), got)


def test_boundary_and_hausdorff_with_precomputed_maps():
    z, y = _data(10, shape=(2, 6, 5))
    maps = jax.jit(L.signed_distance_map, static_argnames="num_classes")(y, num_classes=3)
    assert_close(jax.jit(L.boundary_loss)(z, y, distance_maps=maps), jax.jit(L.boundary_loss)(z, y))
    # the boundary loss is linear in the probabilities: its gradient w.r.t. p is phi / (N C)
    p = jax.nn.softmax(z)
    g = jax.jit(jax.grad(lambda q: L.boundary_loss(q, y, activation="none").sum()))(p)
    assert_close(g, maps / 90.0)
    # a perfect hard prediction has zero Hausdorff loss
    hard = 20.0 * jax.nn.one_hot(y, 3) - 10.0
    assert_close(jax.jit(L.hausdorff_dt_loss)(hard, y), [0.0, 0.0], atol=1e-6)


def test_cldice_closed_form_on_thin_lines():
    # A line one pixel wide is its own soft skeleton (the opening removes it entirely).
    y = np.zeros((1, 7, 7), np.int32)
    y[0, 3, 1:6] = 1  # 5 pixels
    y[0, 1, 1] = 1  # 1 pixel
    hard = 40.0 * jax.nn.one_hot(y, 2) - 20.0  # probabilities 0/1 to float32 precision
    cldice = jax.jit(lambda q: L.cldice_loss(q, y, alpha=1.0, include_background=False))  # one compile
    # Tprec = (6 + 1) / (6 + 1), Tsens = (6 + 1) / (6 + 1): 1 - 2 / (2 + eps)
    assert_close(cldice(hard), [1 - 2 / (2 + 1e-4)], atol=1e-6)
    # break the line in its middle: S(p) = 5 pixels, all on the target (Tprec = 6/6); the target's
    # skeleton (6 pixels) is covered by 5 predicted ones (Tsens = 6/7)
    broken = np.array(y)
    broken[0, 3, 3] = 0
    z = 40.0 * jax.nn.one_hot(broken, 2) - 20.0
    tprec, tsens = 1.0, 6 / 7
    assert_close(cldice(z), [1 - 2 * tprec * tsens / (tprec + tsens + 1e-4)], atol=1e-6)
    # alpha mixes in the Dice loss with the same smoothing
    mixed = jax.jit(lambda q: L.cldice_loss(q, y, alpha=0.25, include_background=False))(z)
    dice = jax.jit(lambda q: L.dice_loss(q, y, include_background=False, smooth_nr=1.0, smooth_dr=1.0))(z)
    assert_close(mixed, 0.75 * dice + 0.25 * cldice(z))


def test_class_independent_bce_masks_unannotated_classes():
    rng = np.random.default_rng(11)
    z = jnp.asarray(rng.normal(size=(2, 3, 3, 4)), jnp.float32)
    t = jnp.asarray(rng.random((2, 3, 3, 4)) < 0.3, jnp.float32)
    cw = jnp.array([[True, True, False, True], [False, True, True, True]])
    out = L.class_independent_bce_segmentation(z, t, class_where=cw)
    el = optax.sigmoid_binary_cross_entropy(z, t)
    want = jnp.mean(jnp.sum(jnp.where(cw[:, None, None, :], el, 0.0), -1), axis=(1, 2))
    assert_close(out, want)
    g = jax.grad(lambda q: L.class_independent_bce_segmentation(q, t, class_where=cw).sum())(z)
    assert np.all(np.asarray(g)[0, ..., 2] == 0) and np.all(np.asarray(g)[1, ..., 0] == 0)


def test_data_parallel_batch_loss_matches_one_device():
    devices = jax.devices()
    assert len(devices) >= 2
    nd = len(devices)
    z, y = _data(12, shape=(2 * nd, 3, 3))
    mesh = jax.sharding.Mesh(np.asarray(devices), ("d",))
    spec = jax.sharding.PartitionSpec("d")

    def local(zz, yy):
        return L.batch_overlap_loss(zz, yy, metric="generalized_dice", axis_name="d")

    f = jax.shard_map(local, mesh=mesh, in_specs=(spec, spec), out_specs=jax.sharding.PartitionSpec())
    assert_close(jax.jit(f)(z, y), L.batch_overlap_loss(z, y, metric="generalized_dice"))
    g = jax.jit(jax.grad(lambda q: f(q, y)))(z)
    assert_close(g, jax.grad(lambda q: L.batch_overlap_loss(q, y, metric="generalized_dice"))(z))


def test_out_of_range_labels_are_nan_unless_masked():
    z, y = _data(13)
    bad = y.at[0, 0, 0].set(7)
    out = L.dice_loss(z, bad)
    assert np.isnan(float(out[0])) and np.isfinite(float(out[1]))
    m = jnp.ones(y.shape, bool).at[0, 0, 0].set(False)
    assert np.all(np.isfinite(np.asarray(L.dice_loss(z, bad, where=m))))
    with pytest.raises(ValueError, match="dice_loss: integer labels must lie in"):
        lossjax.checked(L.dice_loss)(z, bad)


def test_bf16_inputs_are_computed_in_float32():
    z, y = _data(14)
    out = L.dice_ce_loss(z.astype(jnp.bfloat16), y)
    assert out.dtype == jnp.float32
    assert_close(out, L.dice_ce_loss(z.astype(jnp.bfloat16).astype(jnp.float32), y))


# ------------------------------------------------------------------------------------------ errors --


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda z, y: L.dice_loss(z[0, 0], y[0, 0]), r"dice_loss: argument `logits` must have rank >= 3"),
        (lambda z, y: L.dice_loss(z, y[:, :2]), r"dice_loss: `labels` must be an integer label map of shape"),
        (lambda z, y: L.dice_loss(z, y.astype(jnp.float32)), r"float labels of the batch shape look like a label map"),
        (lambda z, y: L.dice_loss(z, y, activation="relu"), r"dice_loss: `activation` must be one of"),
        (lambda z, y: L.dice_loss(z[..., :1], y, activation="softmax"), r"activation='softmax' needs at least 2"),
        (lambda z, y: L.dice_loss(z, y, absent_classes="skip"), r"dice_loss: `absent_classes` must be one of"),
        (lambda z, y: L.dice_loss(z, y, smooth_nr=-1.0), r"dice_loss: `smooth_nr` must be >= 0"),
        (lambda z, y: L.dice_loss(z, y, smooth_dr=float("nan")), r"dice_loss: `smooth_dr` must be a finite number"),
        (lambda z, y: L.dice_loss(z, y, class_weights=[1.0, 2.0]), r"dice_loss: `class_weights` must have shape"),
        (lambda z, y: L.dice_loss(z, y, include_background=1), r"dice_loss: `include_background` must be a bool"),
        (lambda z, y: L.tversky_loss(z, y, alpha=-0.1), r"tversky_loss: `alpha` must be >= 0"),
        (lambda z, y: L.focal_tversky_loss(z, y, gamma=float("inf")), r"focal_tversky_loss: `gamma` must be a finite"),
        (lambda z, y: L.f_beta_loss(z, y, beta=0.0), r"f_beta_loss: `beta` must be > 0"),
        (
            lambda z, y: L.generalized_dice_loss(z, y, variant="cube"),
            r"generalized_dice_loss: `variant` must be one of",
        ),
        (lambda z, y: L.batch_overlap_loss(z, y, metric="f1"), r"batch_overlap_loss: `metric` must be one of"),
        (lambda z, y: L.overlap_loss_per_class(z, y, metric="generalized_dice"), r"`metric` must be one of"),
        (lambda z, y: L.dice_ce_loss(z, y, activation="none"), r"dice_ce_loss: `activation` must be one of"),
        (lambda z, y: L.dice_ce_loss(z, y, label_smoothing=1.0), r"dice_ce_loss: `label_smoothing` must lie in"),
        (
            lambda z, y: L.dice_ce_loss(z, y, activation="sigmoid", label_smoothing=0.1),
            r"`label_smoothing` applies to the softmax cross-entropy only",
        ),
        (lambda z, y: L.dice_focal_loss(z, y, alpha=1.5), r"dice_focal_loss: `alpha` must lie in \[0.0, 1.0\]"),
        (lambda z, y: L.dice_focal_loss(z, y, focal_activation="tanh"), r"`focal_activation` must be one of"),
        (lambda z, y: L.cldice_loss(z, y, num_iterations=-1), r"cldice_loss: `num_iterations` must be an integer >= 0"),
        (lambda z, y: L.cldice_loss(z, y, alpha=2.0), r"cldice_loss: `alpha` must lie in"),
        (lambda z, y: L.lovasz_softmax_loss(z, y, absent_classes="all"), r"`absent_classes` must be one of"),
        (lambda z, y: L.boundary_loss(z, y, distance_maps=z[..., :2]), r"boundary_loss: argument `distance_maps`"),
        (lambda z, y: L.hausdorff_dt_loss(z, y, alpha=-1.0), r"hausdorff_dt_loss: `alpha` must be >= 0"),
        (lambda z, y: L.signed_distance_map(y), r"signed_distance_map: an integer label map needs `num_classes`"),
        (
            lambda z, y: L.class_independent_bce_segmentation(z, y, class_where=jnp.ones(4, bool)),
            r"class_independent_bce_segmentation: `class_where` must have shape",
        ),
        (lambda z, y: L.dice_loss(z, y, where=jnp.ones((3,), bool)), r"dice_loss: `where` must be broadcastable"),
    ],
)
def test_bad_calls_raise_clear_errors(call, match):
    z, y = _data(15)
    with pytest.raises((ValueError, TypeError), match=match):
        call(z, y)
