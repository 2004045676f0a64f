"""Metric losses across 8 (simulated CPU) devices equal the single-device result.

Under ``jax.shard_map`` over a 1-D mesh with the batch split 8 ways, every
loss that needs the whole batch gathers it with ``axis_name``; its value and
its gradient with respect to the (sharded) embeddings must equal those of the
single-device call on the concatenated batch. The gradient flows through
``all_gather``'s transpose (``psum_scatter``) and ``psum``. Per-example losses
(paired views, and every ``<loss>_per_anchor`` entry) also return each
device's own rows: the mapped output, device slice by device slice, equals the
single-device output on the whole batch.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from lossjax import losses as L
from lossjax.testing import assert_close

NDEV = 8
N, D = 24, 5  # 3 rows per device
AXIS = "batch"


# Labels spread so that positives and negatives cross device boundaries; class 5 is a singleton.
LABELS = np.array([0, 1, 2, 3, 0, 1, 2, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 0, 1, 3, 4, 2], np.int32)

# name -> (fn, kwargs, kind); kind "batch": (embeddings, labels) -> scalar;
# "per_anchor": (embeddings, labels) -> [N]; "paired": (a, b) -> [N]; "prior": (a, b, prior) -> [N].
CASES = {
    "pairwise_contrastive_loss": (L.pairwise_contrastive_loss, {}, "batch"),
    "batch_triplet_loss[all]": (L.batch_triplet_loss, {"margin": 0.3}, "batch"),
    "batch_triplet_loss[hard]": (L.batch_triplet_loss, {"margin": 0.3, "mining": "hard"}, "batch"),
    "batch_triplet_loss[semihard]": (L.batch_triplet_loss, {"margin": 0.5, "mining": "semihard"}, "batch"),
    "lifted_structure_loss": (L.lifted_structure_loss, {}, "batch"),
    "npair_loss": (L.npair_loss, {}, "batch"),
    "multi_similarity_loss": (L.multi_similarity_loss, {"mining_margin": 0.3}, "batch"),
    "circle_loss": (L.circle_loss, {}, "batch"),
    "supervised_contrastive_loss": (L.supervised_contrastive_loss, {}, "batch"),
    "ntxent_loss": (L.ntxent_loss, {"temperature": 0.2}, "batch"),
    "orthogonal_projection_loss": (L.orthogonal_projection_loss, {}, "batch"),
    "threshold_consistent_margin_loss": (
        L.threshold_consistent_margin_loss,
        {"pos_margin": 0.6, "neg_margin": 0.1},
        "batch",
    ),
    "infonce_loss": (L.infonce_loss, {"temperature": 0.2}, "paired"),
    "symmetric_infonce_loss": (L.symmetric_infonce_loss, {"temperature": 0.2, "label_smoothing": 0.1}, "paired"),
    "sigmoid_contrastive_loss": (L.sigmoid_contrastive_loss, {}, "paired"),
    "soft_infonce_loss": (L.soft_infonce_loss, {"alpha": 0.5, "prior_temperature": 0.5}, "prior"),
    "continuously_weighted_contrastive_loss": (
        L.continuously_weighted_contrastive_loss,
        {"temperature": 0.2},
        "paired",
    ),
}

# Every <loss>_per_anchor entry (PML's PerAnchorReducer(DoNothingReducer()) outputs, [N]): under axis_name the
# comparison set is the gathered batch and each device returns its own anchors.
PER_ANCHOR = {
    "angular_loss_per_anchor": (L.angular_loss_per_anchor, {}),
    "batch_triplet_loss_per_anchor[all]": (L.batch_triplet_loss_per_anchor, {"margin": 0.3}),
    "batch_triplet_loss_per_anchor[hard]": (L.batch_triplet_loss_per_anchor, {"margin": 0.3, "mining": "hard"}),
    "batch_triplet_loss_per_anchor[semihard]": (
        L.batch_triplet_loss_per_anchor,
        {"margin": 0.5, "mining": "semihard"},
    ),
    "circle_loss_per_anchor": (L.circle_loss_per_anchor, {}),
    "fast_ap_loss_per_anchor": (L.fast_ap_loss_per_anchor, {}),
    "generalized_lifted_structure_loss_per_anchor": (L.generalized_lifted_structure_loss_per_anchor, {}),
    "instance_loss_per_anchor": (L.instance_loss_per_anchor, {"scale": 8.0}),
    "intra_pair_variance_loss_per_anchor": (
        L.intra_pair_variance_loss_per_anchor,
        {"pos_epsilon": 0.1, "neg_epsilon": 0.2},
    ),
    "lifted_structure_loss_per_anchor": (L.lifted_structure_loss_per_anchor, {}),
    "multi_similarity_loss_per_anchor": (L.multi_similarity_loss_per_anchor, {"mining_margin": 0.3}),
    "nca_loss_per_anchor": (L.nca_loss_per_anchor, {}),
    "npair_loss_per_anchor": (L.npair_loss_per_anchor, {}),
    "ntxent_loss_per_anchor": (L.ntxent_loss_per_anchor, {"temperature": 0.2}),
    "pairwise_contrastive_loss_per_anchor": (L.pairwise_contrastive_loss_per_anchor, {}),
    "ranked_list_loss_per_anchor": (L.ranked_list_loss_per_anchor, {}),
    "smooth_ap_loss_per_anchor": (L.smooth_ap_loss_per_anchor, {"temperature": 0.1}),
    "supervised_contrastive_loss_per_anchor": (L.supervised_contrastive_loss_per_anchor, {}),
    "tuplet_margin_loss_per_anchor": (L.tuplet_margin_loss_per_anchor, {}),
}
CASES.update({name: (fn, kw, "per_anchor") for name, (fn, kw) in PER_ANCHOR.items()})


@functools.cache
def _mesh():
    return jax.make_mesh((NDEV,), (AXIS,))


def _inputs(kind):
    rng = np.random.default_rng(7)
    centers = rng.normal(size=(6, D))
    x = (centers[LABELS] + 0.8 * rng.normal(size=(N, D))).astype(np.float32)
    if kind in ("batch", "per_anchor"):
        return (x,), (LABELS,)
    b = (x + 0.5 * rng.normal(size=(N, D))).astype(np.float32)
    if kind == "prior":
        return (x, b), (rng.normal(size=(N, N)).astype(np.float32),)
    return (x, b), ()


def _single_and_sharded(name, where):
    fn, kw, kind = CASES[name]
    diff, fixed = _inputs(kind)
    wkw = {} if where is None else {"where": where}

    def single(*d):
        out = fn(*d, *fixed, **kw, **wkw)
        return jnp.mean(out) if kind != "batch" else out

    nd, nf = len(diff), len(fixed)
    row = P(AXIS)
    in_specs = (row,) * nd + (P(AXIS, None) if kind == "prior" else row,) * nf + ((row,) if where is not None else ())
    out_specs = P() if kind == "batch" else row

    def body(*args):
        d, f = args[:nd], args[nd : nd + nf]
        w = {} if where is None else {"where": args[-1]}
        return fn(*d, *f, **kw, **w, axis_name=AXIS)

    mapped = jax.shard_map(body, mesh=_mesh(), in_specs=in_specs, out_specs=out_specs)
    extra = () if where is None else (where,)

    def sharded_fn(*args):
        # Place every input on the mesh as its spec says, then call the mapped function.
        args = [jax.device_put(a, NamedSharding(_mesh(), s)) for a, s in zip(args, in_specs, strict=True)]
        return mapped(*args)

    def sharded(*d):
        out = sharded_fn(*d, *fixed, *extra)
        return jnp.mean(out) if kind != "batch" else out

    return single, sharded, diff, (fn, kw, kind, fixed, extra, sharded_fn)


# Every loss with padded rows on several devices; the unmasked path for one loss of each input form.
PARAMS = [(name, True) for name in CASES] + [
    (name, False)
    for name in (
        "supervised_contrastive_loss",
        "infonce_loss",
        "soft_infonce_loss",
        "orthogonal_projection_loss",
        "threshold_consistent_margin_loss",
        "npair_loss_per_anchor",
        "supervised_contrastive_loss_per_anchor",
    )
]


@pytest.mark.parametrize(("name", "masked"), PARAMS, ids=[f"{n}-{'where' if m else 'full'}" for n, m in PARAMS])
def test_sharded_equals_single_device(name, masked):
    where = None
    if masked:
        where = np.ones(N, bool)
        where[[2, 9, 10, 21]] = False  # padded rows on several devices
    single, sharded, diff, (fn, kw, kind, fixed, extra, sharded_fn) = _single_and_sharded(name, where)
    argnums = tuple(range(len(diff)))
    (v1, g1), (v8, g8) = jax.jit(
        lambda *d: (jax.value_and_grad(single, argnums=argnums)(*d), jax.value_and_grad(sharded, argnums=argnums)(*d))
    )(*diff)
    assert np.isfinite(float(v1)) and float(v1) > 0, f"{name}: degenerate test value {v1}"
    assert_close(v8, v1, err=f"{name}: sharded value != single-device value", rtol=2e-5, atol=1e-6)
    scale = max(float(np.max(np.abs(np.asarray(g)))) for g in g1)
    assert scale > 0, f"{name}: zero gradient makes the comparison vacuous"
    assert_close(g8, g1, err=f"{name}: sharded gradient != single-device gradient", rtol=1e-4, atol=1e-6 * scale)
    if kind != "batch":
        # Per-example losses: each device returns its own rows, in order.
        w = {} if where is None else {"where": where}
        rows1, rows8 = jax.jit(lambda *d: (fn(*d, *fixed, **kw, **w), sharded_fn(*d, *fixed, *extra)))(*diff)
        assert_close(rows8, rows1, err=f"{name}: per-row values", rtol=2e-5, atol=1e-6)
    if where is not None:
        for g in g8:
            assert np.all(np.asarray(g)[~where] == 0), f"{name}: padded rows got a gradient"


def test_gradient_inside_shard_map():
    """Differentiating inside the mapped function gives each device its slice of the full gradient."""
    x = _inputs("batch")[0][0]
    labels = LABELS

    def local(xs, ys):
        return jax.grad(lambda e: L.supervised_contrastive_loss(e, ys, axis_name=AXIS))(xs)

    xs, ys = (jax.device_put(a, NamedSharding(_mesh(), P(AXIS))) for a in (x, labels))
    g8 = jax.jit(jax.shard_map(local, mesh=_mesh(), in_specs=(P(AXIS), P(AXIS)), out_specs=P(AXIS)))(xs, ys)
    g1 = jax.jit(jax.grad(lambda e: L.supervised_contrastive_loss(e, labels)))(x)
    assert float(np.max(np.abs(np.asarray(g1)))) > 0
    assert_close(g8, g1, err="grad inside shard_map", rtol=1e-4, atol=1e-7)


def test_axis_name_is_required_for_the_global_batch():
    """Without axis_name each device sees only its own rows: the result differs (the test can fail)."""
    x = _inputs("batch")[0][0]
    xs, ys = (jax.device_put(a, NamedSharding(_mesh(), P(AXIS))) for a in (x, LABELS))
    local = jax.jit(
        jax.shard_map(
            lambda e, y: jax.lax.pmean(L.supervised_contrastive_loss(e, y), AXIS),
            mesh=_mesh(),
            in_specs=(P(AXIS), P(AXIS)),
            out_specs=P(),
        )
    )(xs, ys)
    whole = jax.jit(L.supervised_contrastive_loss)(x, LABELS)  # eager calls compile each op per shape
    assert abs(float(local) - float(whole)) > 1e-3
