"""MSN/PMSN, SwAV's queue, GRAM, I-Con, Kernel-InfoNCE and the mean-field contrastive loss: closed forms at
special points, the SwAV queue over steps (warm-up, use once full, wrap-around, 8 devices), stop-gradients and
error messages. Values and gradients against the ports: the conformance `value` property."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

import lossjax
from lossjax.losses import MoCoQueue
from lossjax.testing import assert_close

L = lossjax.losses


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _ntxent_rows(a, b, t):
    """NT-Xent per pair (the mean of its two rows) over the 2N normalized views, numpy float64."""
    o = _unit(np.concatenate([a, b]).astype(np.float64))
    n = a.shape[0]
    s = o @ o.T / t
    np.fill_diagonal(s, -np.inf)
    rows = -_log_softmax(s)[np.arange(2 * n), np.concatenate([np.arange(n) + n, np.arange(n)])]
    return (rows[:n] + rows[n:]) / 2


# ---------------------------------- MSN / PMSN ----------------------------------


def test_msn_regularizers_closed_forms_and_stop_gradients():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 2, 3))
    t = rng.normal(size=(4, 3))
    c = rng.normal(size=(5, 3))
    logp = _log_softmax(np.einsum("bvd,kd->bvk", _unit(a), _unit(c)) / 0.1)
    pbar = np.exp(logp).reshape(-1, 5).mean(0)
    kw = {"num_iterations": 0, "entropy_weight": 0.0}
    ce_only = float(L.msn_loss(a, t, c, me_max_weight=0.0, **kw))
    me_max = float(L.msn_loss(a, t, c, **kw)) - ce_only
    assert_close(me_max, np.sum(pbar * np.log(pbar)) + np.log(5), rtol=1e-4)  # KL(pbar || U)
    prior = np.arange(1, 6) ** -0.5
    prior = prior / prior.sum()
    pmsn = float(L.msn_loss(a, t, c, power_law_exponent=0.5, **kw)) - ce_only
    assert_close(pmsn, np.sum(prior * (np.log(prior) - np.log(pbar))), rtol=1e-4)  # KL(pi || pbar)
    ent = float(L.msn_loss(a, t, c, me_max_weight=0.0, num_iterations=0, entropy_weight=1.0)) - ce_only
    assert_close(ent, -np.mean(np.sum(np.exp(logp) * logp, -1)), rtol=1e-4)
    # The targets get no gradient; the proxies get one through the anchors only.
    g_t = jax.grad(lambda x: L.msn_loss(a, x, c))(jnp.asarray(t, jnp.float32))
    assert np.all(np.asarray(g_t) == 0)
    g_c = jax.grad(lambda x: L.msn_loss(a, t, x, me_max_weight=0.0))(jnp.asarray(c, jnp.float32))
    assert np.any(np.asarray(g_c) != 0)


def test_msn_targets_are_sharpened_and_equipartitioned():
    rng = np.random.default_rng(1)
    c = rng.normal(size=(3, 4))
    t = rng.normal(size=(9, 4))
    a = np.repeat(t[:, None], 1, axis=1)
    # One anchor view per example: the cross-entropy term with q = sharpen(p(t), T) (no Sinkhorn) in numpy.
    p_t = np.exp(_log_softmax(_unit(t) @ _unit(c).T / 0.1))
    q = p_t**4 / np.sum(p_t**4, -1, keepdims=True)
    logp = _log_softmax(_unit(a[:, 0]) @ _unit(c).T / 0.1)
    got = float(L.msn_loss(a, t, c, num_iterations=0, me_max_weight=0.0))
    assert_close(got, -np.mean(np.sum(q * logp, -1)), rtol=1e-4)
    # Many Sinkhorn iterations: the targets' prototype totals become equal (B / K each): compare the losses.
    from lossjax.losses._selfsup import _sinkhorn_codes

    codes = np.asarray(_sinkhorn_codes(jnp.asarray(np.log(q), jnp.float32), jnp.ones(9, bool), 1.0, 200, None))
    assert_close(codes.sum(0), np.full(3, 3.0), rtol=2e-2)  # converging (slowly: the sharpened q are peaked)
    assert np.ptp(codes.sum(0)) < 0.1 * np.ptp(q.sum(0))
    assert_close(codes.sum(1), np.ones(9), rtol=1e-5)


# ---------------------------------- SwAV's queue ----------------------------------


def _swav_inputs(seed, b=4, v=3, d=3, k=4):
    rng = np.random.default_rng(seed)
    return _unit(rng.normal(size=(b, v, d))).astype(np.float32), _unit(rng.normal(size=(k, d))).astype(np.float32)


def test_swav_queue_warm_up_then_used_once_full_and_wraps_around():
    e, c = _swav_inputs(2)
    scores = np.einsum("bvd,kd->bvk", e, c)
    state = MoCoQueue.initial(6, (2, 3))
    # Warm-up (not full): exactly swav_loss on the scores.
    for _step in range(2):
        loss, state = L.swav_queue_loss(e, c, state=state)
        assert_close(loss, L.swav_loss(scores), rtol=1e-6)
    assert int(state.pointer) == 2 and all(state.valid.tolist())  # 8 rows into 6 slots: wrapped around
    # The last 6 enqueued rows: batch 2's rows 0..3 at slots 4, 5, 0, 1, batch 1's rows 2, 3 at slots 2, 3.
    assert_close(state.keys[:, :, :], e[[2, 3, 2, 3, 0, 1], :2], rtol=0, atol=0)
    # Full: the queue joins the codes' Sinkhorn problem, so the loss changes; its rows are scored with the
    # current prototypes. A queue of the same embeddings as the batch doubles each row: the same codes.
    e2, _ = _swav_inputs(3)
    loss_q, _ = L.swav_queue_loss(e2, c, state=state)
    assert abs(float(loss_q) - float(L.swav_loss(np.einsum("bvd,kd->bvk", e2, c)))) > 1e-4
    same = MoCoQueue(jnp.asarray(np.concatenate([e[:, :2], e[:, :2]])), jnp.ones(8, bool), jnp.zeros((), jnp.int32))
    loss_same, _ = L.swav_queue_loss(e, c, state=same, num_iterations=0)
    assert_close(loss_same, L.swav_loss(scores, num_iterations=0), rtol=1e-5)
    # Padded rows are not enqueued; the proxies' gradient does not flow through the codes.
    _, st = L.swav_queue_loss(e, c, state=MoCoQueue.initial(6, (2, 3)), where=np.array([True, False, True, True]))
    assert int(st.pointer) == 3 and st.valid.tolist() == [True] * 3 + [False] * 3


def test_swav_queue_across_devices_equals_single_device():
    if jax.device_count() < 8:
        pytest.fail("needs 8 (simulated) devices: XLA_FLAGS=--xla_force_host_platform_device_count=8")
    mesh = jax.make_mesh((8,), ("batch",), axis_types=(jax.sharding.AxisType.Auto,))
    e, c = _swav_inputs(4, b=16)
    where = np.arange(16) % 5 != 2
    state = MoCoQueue.initial(20, (2, 3))._replace(pointer=jnp.asarray(7, jnp.int32))

    def sharded(e, w, st):
        return jax.shard_map(
            lambda e, w, st: L.swav_queue_loss(e, c, state=st, where=w, axis_name="batch"),
            mesh=mesh,
            in_specs=(P("batch"), P("batch"), P()),
            out_specs=(P(), P()),
        )(e, w, st)

    for _ in range(3):  # the second step fills the queue, the third uses it
        l1, s1 = L.swav_queue_loss(e, c, state=state, where=where)
        l8, s8 = jax.jit(sharded)(e, where, state)
        assert_close(l8, l1, rtol=1e-5, atol=1e-6)
        for x, y in zip(jax.tree.leaves(s8), jax.tree.leaves(s1), strict=True):
            assert np.allclose(np.asarray(x), np.asarray(y), atol=1e-7)
        state = s1
    assert all(state.valid.tolist())


# ---------------------------------- GRAM, I-Con, Kernel-InfoNCE, mean field ----------------------------------


def test_gram_two_modalities_is_the_sine_and_columns_have_no_gradient():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 2, 3))
    u = _unit(x)
    cos = u[:, 0] @ u[:, 1].T  # [i, j]: anchor i against the other modality of j
    vol = np.sqrt(1 - cos**2)
    lg = -vol / 0.5
    ce_f = -np.diag(_log_softmax(lg))
    ce_b = -np.diag(_log_softmax(lg.T))
    got = L.gramian_volume_contrastive_loss(x, temperature=0.5, label_smoothing=0.0)
    assert_close(got, (ce_f + ce_b) / 2, rtol=1e-5)
    # Label smoothing: torch's (1 - eps) CE + eps mean_j(-log p_j).
    sm = L.gramian_volume_contrastive_loss(x, temperature=0.5, label_smoothing=0.2)
    smooth = lambda m: 0.8 * -np.diag(_log_softmax(m)) - 0.2 * _log_softmax(m).mean(1)  # noqa: E731
    assert_close(sm, (smooth(lg) + smooth(lg.T)) / 2, rtol=1e-5)
    # Row i's loss differentiates row i only (the reference's concat_all_gather has no gradient).
    g = jax.grad(lambda z: L.gramian_volume_contrastive_loss(z)[0])(jnp.asarray(x, jnp.float32))
    assert np.all(np.asarray(g)[1:] == 0) and np.any(np.asarray(g)[0] != 0)


def test_icon_with_one_positive_per_row_is_infonce():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    f = np.concatenate([a, b])
    p = np.zeros((6, 6))
    p[np.arange(6), np.concatenate([np.arange(3) + 3, np.arange(3)])] = 1.0  # SimCLR's supervisory p
    got = L.icon_kl_loss(f, p, distance="cosine", temperature=0.5)
    rows = _ntxent_rows(a, b, 0.5)
    assert_close(np.asarray(got).reshape(2, 3).mean(0), rows, rtol=1e-5)
    # p = q gives 0 (the KL's minimum).
    d = ((f[:, None] - f[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    q = np.exp(_log_softmax(-d))
    assert_close(L.icon_kl_loss(f, q), np.zeros(6), atol=1e-5)


def test_icon_where_equals_slicing_rows_and_columns():
    # The conformance `where` property cannot slice the [N, N] targets (see the sample): here.
    rng = np.random.default_rng(8)
    f = rng.normal(size=(6, 3))
    p = rng.random(size=(6, 6))
    np.fill_diagonal(p, 0.0)
    mask = np.array([True, False, True, True, False, True])
    idx = np.flatnonzero(mask)
    ps = p[idx][:, idx]
    ps = ps / ps.sum(1, keepdims=True)
    pm = np.zeros_like(p)
    pm[np.ix_(idx, idx)] = ps
    garbage = f.copy()
    garbage[~mask] = np.nan
    full = np.asarray(L.icon_kl_loss(garbage, pm, where=mask))
    assert np.all(full[~mask] == 0)
    assert_close(full[mask], L.icon_kl_loss(f[idx], ps), rtol=1e-5)
    grad = np.asarray(jax.grad(lambda x: jnp.sum(L.icon_kl_loss(x, pm, where=mask)))(jnp.asarray(garbage, jnp.float32)))
    assert np.all(np.isfinite(grad)) and np.all(grad[~mask] == 0)
    none = jax.value_and_grad(lambda x: jnp.sum(L.icon_kl_loss(x, pm, where=np.zeros(6, bool))))(jnp.asarray(f))
    assert float(none[0]) == 0 and np.all(np.asarray(none[1]) == 0)


def test_kernel_mixture_gaussian_kernel_is_ntxent_at_half_temperature():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    # ||x - y||^2 = 2 - 2 cos for unit vectors: exp(-||x - y||^2 / t) ~ exp(cos / (t / 2)).
    got = L.kernel_mixture_contrastive_loss(a, b, temperature=0.4, gamma=2.0, epsilon=0.0)
    assert_close(got, _ntxent_rows(a, b, 0.2), rtol=1e-5)
    # kernel_weight = 1 leaves the gamma kernel alone; 'product' splits the features.
    lap = L.kernel_mixture_contrastive_loss(a, b, gamma=1.0, kernel_weight=1.0, epsilon=0.0)
    o = _unit(np.concatenate([a, b]))
    dist = np.sqrt(np.maximum(((o[:, None] - o[None]) ** 2).sum(-1), 0)) / 0.1
    np.fill_diagonal(dist, np.inf)
    rows = -_log_softmax(-dist)[np.arange(10), np.concatenate([np.arange(5) + 5, np.arange(5)])]
    assert_close(lap, (rows[:5] + rows[5:]) / 2, rtol=1e-5)


def test_mean_field_contrastive_hinges():
    w = np.eye(3)
    x = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    got = L.mean_field_contrastive_loss(x, np.array([0, 1]), w, pos_margin=0.1, neg_margin=0.5)
    d1 = 1 - 1 / np.sqrt(2)  # row 1 against fields 0 and 1
    assert_close(got, [0.0, (d1 - 0.1) + (0.5 - d1)], rtol=1e-6)
    # The regularizer: orthogonal fields (1 - cos = 1) beyond neg_margin 0.5 add nothing; with neg_margin 1.5 each
    # class pair adds (1.5 - 1)^2, two per class: 2 * 0.25 per example times the weight.
    r = L.mean_field_contrastive_loss(x, np.array([0, 1]), w, neg_margin=1.5, mean_field_weight=2.0)
    r0 = L.mean_field_contrastive_loss(x, np.array([0, 1]), w, neg_margin=1.5)
    assert_close(np.asarray(r) - np.asarray(r0), [1.0, 1.0], rtol=1e-6)


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: L.msn_loss(np.ones((2, 3)), np.ones((2, 3)), np.ones((4, 3))),
            r"msn_loss: argument `anchor_embeddings` must have rank 3",
        ),
        (lambda: L.msn_loss(np.ones((2, 1, 3)), np.ones((2, 4)), np.ones((4, 3))), r"msn_loss: .*same B and D"),
        (
            lambda: L.msn_loss(np.ones((2, 1, 3)), np.ones((2, 3)), np.ones((4, 3)), sharpen_temperature=0.0),
            r"msn_loss: `sharpen_temperature`",
        ),
        (lambda: L.swav_queue_loss(np.ones((2, 2, 3)), np.ones((4, 3)), state=None), r"swav_queue_loss: `state`"),
        (
            lambda: L.swav_queue_loss(np.ones((2, 2, 3)), np.ones((4, 3)), state=MoCoQueue.initial(4, 3)),
            r"swav_queue_loss: `state.keys` must be \[Q, 2, 3\]",
        ),
        (lambda: L.gramian_volume_contrastive_loss(np.ones((2, 1, 3))), r"gramian_volume_contrastive_loss: .*M >= 2"),
        (lambda: L.icon_kl_loss(np.ones((3, 2)), np.ones((3, 2))), r"icon_kl_loss: `targets` must have shape \(3, 3\)"),
        (
            lambda: L.kernel_mixture_contrastive_loss(np.ones((2, 3)), np.ones((2, 3)), variant="product"),
            r"kernel_mixture_contrastive_loss: .*D must be even",
        ),
        (
            lambda: L.kernel_mixture_contrastive_loss(np.ones((2, 2)), np.ones((2, 2)), gamma=3.0),
            r"kernel_mixture_contrastive_loss.*gamma",
        ),
        (
            lambda: L.mean_field_contrastive_loss(np.ones((2, 3)), np.zeros(2, np.int32), np.ones((4, 2))),
            r"mean_field_contrastive_loss: `proxies`",
        ),
    ],
)
def test_bad_inputs(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
