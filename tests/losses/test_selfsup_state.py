"""DINO, SwAV, MoCo (queue) and MoCo v3: closed forms, state updates, queue warm-up and wrap-around, and the
state across 8 simulated devices (the conformance suite checks values/gradients against the ports)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

import lossjax
from lossjax.losses import DINOState, MoCoQueue
from lossjax.testing import assert_close

L = lossjax.losses


def _mesh():
    if jax.device_count() < 8:
        pytest.fail("needs 8 (simulated) devices: XLA_FLAGS=--xla_force_host_platform_device_count=8")
    return jax.make_mesh((8,), ("batch",), axis_types=(jax.sharding.AxisType.Auto,))


def _np_log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_dino_multicrop_pairs_and_center_ema():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(3, 4, 5))  # 2 global + 2 local crops
    t = rng.normal(size=(3, 2, 5))
    c = rng.normal(size=(5,)) * 0.1
    loss, st = L.dino_loss(s, t, state=DINOState(jnp.asarray(c, jnp.float32)), teacher_temperature=0.05)
    q = np.exp(_np_log_softmax((t - c) / 0.05))
    logp = _np_log_softmax(s / 0.1)
    terms = [-(q[:, i] * logp[:, v]).sum(-1).mean() for i in range(2) for v in range(4) if v != i]
    assert len(terms) == 6
    assert_close(loss, np.mean(terms), rtol=1e-5)
    assert_close(st.center, 0.9 * c + 0.1 * t.reshape(-1, 5).mean(0), rtol=1e-5, atol=1e-7)
    # Two steps: the second uses the first's center.
    loss2, st2 = L.dino_loss(s, t, state=st)
    assert_close(st2.center, 0.9 * np.asarray(st.center) + 0.1 * t.reshape(-1, 5).mean(0), rtol=1e-5, atol=1e-7)
    assert float(loss2) != float(loss)


def test_dino_all_masked_keeps_center_and_teacher_has_no_gradient():
    s, t = jnp.ones((2, 2, 3)), jnp.arange(12.0).reshape(2, 2, 3)
    c = jnp.array([0.1, 0.2, 0.3])
    loss, st = L.dino_loss(s, t, state=DINOState(c), where=jnp.zeros(2, bool))
    assert float(loss) == 0.0 and np.array_equal(st.center, c)
    g = jax.grad(lambda tt: L.dino_loss(s, tt)[0])(t)
    assert np.all(np.asarray(g) == 0)


def test_swav_codes_are_an_equipartitioned_assignment():
    from lossjax.losses._selfsup import _sinkhorn_codes

    rng = np.random.default_rng(1)
    z = jnp.asarray(rng.uniform(-1, 1, size=(12, 4)), jnp.float32)
    q = np.asarray(_sinkhorn_codes(z, jnp.ones(12, bool), 0.5, 100, None))
    assert_close(q.sum(1), np.ones(12), rtol=1e-5)
    assert_close(q.sum(0), np.full(4, 3.0), rtol=1e-3)  # B / K per prototype once converged
    # Padded rows: zero codes, out of the prototype totals.
    w = np.arange(12) < 8
    qm = np.asarray(_sinkhorn_codes(z, jnp.asarray(w), 0.5, 100, None))
    assert np.all(qm[~w] == 0)
    assert_close(qm[w].sum(0), np.full(4, 2.0), rtol=1e-3)
    # Zero iterations: the normalized exponentials times B.
    q0 = np.asarray(_sinkhorn_codes(z, jnp.ones(12, bool), 0.5, 0, None))
    e = np.exp(np.asarray(z, np.float64) / 0.5)
    assert_close(q0, e / e.sum() * 12, rtol=1e-5)


def test_moco_queue_warm_up_and_wrap_around():
    state = MoCoQueue.initial(5, 2)
    k1 = jnp.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    loss, state = L.moco_loss(k1, k1, state=state)
    assert np.all(np.asarray(loss) == 0)  # warm-up: an empty queue, no negatives
    assert int(state.pointer) == 3 and state.valid.tolist() == [True] * 3 + [False] * 2
    assert_close(state.keys[:3], [[1, 0], [0, 1], [1, 0]])
    k2 = jnp.array([[0.0, -1.0], [-1.0, 0.0], [0.6, 0.8]])
    loss, state = L.moco_loss(k2, k2, state=state, where=jnp.array([True, True, True]))
    # wrap-around: slots 3, 4, then 0
    assert int(state.pointer) == 1 and all(state.valid.tolist())
    assert_close(state.keys, [[0.6, 0.8], [0, 1], [1, 0], [0, -1], [-1, 0]])
    # The loss of the second step saw the 3 keys of the first as negatives.
    q = np.asarray(k2) / np.linalg.norm(k2, axis=1, keepdims=True)
    neg = q @ np.array([[1, 0], [0, 1], [1, 0]]).T / 0.07
    pos = np.ones(3) / 0.07
    ref = np.log(np.exp(pos) + np.exp(neg).sum(1)) - pos
    assert_close(loss, ref, rtol=1e-5)


def test_moco_masked_rows_not_enqueued_and_overflow_keeps_last():
    state = MoCoQueue.initial(3, 2)
    k = jnp.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [0.6, 0.8]])
    _, st = L.moco_loss(k, k, state=state, where=jnp.array([True, False, True, True, True]))
    # valid rows 0, 2, 3, 4 (4 rows, 3 slots): written in order, the first one overwritten
    assert int(st.pointer) == 1
    assert_close(st.keys, [[0.6, 0.8], [-1, 0], [0, -1]])


def test_moco_v3_is_twice_t_times_the_two_directions():
    rng = np.random.default_rng(2)
    q1, q2, k1, k2 = (rng.normal(size=(4, 3)) for _ in range(4))
    nrm = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731

    def ce(q, k):
        lg = nrm(q) @ nrm(k).T / 0.2
        return -np.diag(_np_log_softmax(lg))

    got = L.moco_v3_loss(q1, q2, k1, k2, temperature=0.2)
    assert_close(got, 0.4 * (ce(q1, k2) + ce(q2, k1)), rtol=1e-5)
    g = jax.grad(lambda kk: jnp.sum(L.moco_v3_loss(q1, q2, kk, k2)))(jnp.asarray(k1))
    assert np.all(np.asarray(g) == 0)  # keys are stop-gradient


def test_state_across_devices_equals_single_device():
    mesh = _mesh()
    rng = np.random.default_rng(3)
    s = rng.normal(size=(16, 3, 4)).astype(np.float32)
    t = rng.normal(size=(16, 2, 4)).astype(np.float32)
    where = np.arange(16) % 5 != 2
    st0 = DINOState(jnp.asarray(rng.normal(size=4), jnp.float32))

    def dino_sharded(s, t, w):
        return jax.shard_map(
            lambda s, t, w: L.dino_loss(s, t, state=st0, where=w, axis_name="batch"),
            mesh=mesh,
            in_specs=(P("batch"),) * 3,
            out_specs=(P(), P()),
        )(s, t, w)

    l1, c1 = L.dino_loss(s, t, state=st0, where=where)
    l8, c8 = jax.jit(dino_sharded)(s, t, where)
    assert_close(l8, l1, rtol=1e-5)
    assert_close(c8.center, c1.center, rtol=1e-5, atol=1e-7)

    q = rng.normal(size=(16, 4)).astype(np.float32)
    k = rng.normal(size=(16, 4)).astype(np.float32)
    mq = MoCoQueue.initial(20, 4)._replace(pointer=jnp.asarray(11, jnp.int32))

    def moco_sharded(q, k, w, st):
        return jax.shard_map(
            lambda q, k, w, st: L.moco_loss(q, k, state=st, where=w, axis_name="batch"),
            mesh=mesh,
            in_specs=(P("batch"),) * 3 + (P(),),
            out_specs=(P("batch"), P()),
        )(q, k, w, st)

    for _ in range(2):  # the second step uses (and wraps around) the first's queue
        l1, s1 = L.moco_loss(q, k, state=mq, where=where)
        l8, s8 = jax.jit(moco_sharded)(q, k, where, mq)
        assert_close(l8, l1, rtol=1e-5, atol=1e-6)
        for a, b in zip(jax.tree.leaves(s8), jax.tree.leaves(s1), strict=True):
            assert np.array_equal(np.asarray(a), np.asarray(b)) or np.allclose(a, b, atol=1e-6)
        mq = s1
    assert int(mq.pointer) == (11 + 2 * int(where.sum())) % 20

    z = rng.uniform(-1, 1, size=(16, 3, 4)).astype(np.float32)
    sw1 = L.swav_loss(z, where=where)
    swav = jax.shard_map(
        lambda z, w: L.swav_loss(z, where=w, axis_name="batch"), mesh=mesh, in_specs=(P("batch"),) * 2, out_specs=P()
    )
    sw8 = jax.jit(swav)(z, where)
    assert_close(sw8, sw1, rtol=1e-5)
