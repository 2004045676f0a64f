"""Data-parallel train steps on 8 simulated devices: the right pattern for per-example and batch-level losses.

`lossjax.data_parallel_value_and_grad` gives the one-device gradient of the
whole batch under shard_map and under pmap, for a per-example loss (InfoNCE,
reduced with the global masked mean, also with uneven masks) and for batch-level
losses (SupCon, multi-similarity); the familiar mix (shard_map + pmean of the
gradients) is shown to be wrong, which is why the helper exists.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

import lossjax
from lossjax.testing import assert_close

shard_map = getattr(jax, "shard_map", None)
if shard_map is None:  # older jax
    from jax.experimental.shard_map import shard_map

ND = 8
N = 16  # rows: 2 per device


@pytest.fixture(scope="module")
def mesh():
    assert jax.device_count() >= ND, "run with XLA_FLAGS=--xla_force_host_platform_device_count=8 (conftest sets it)"
    return Mesh(np.asarray(jax.devices()[:ND]), ("d",))


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, 5)).astype(np.float32)
    y = (x + 0.3 * rng.normal(size=(N, 5))).astype(np.float32)
    labels = np.tile(np.arange(4, dtype=np.int32), N // 4)
    w = (np.eye(5, 4) + 0.1 * rng.normal(size=(5, 4))).astype(np.float32)
    return w, x, y, labels


def _infonce(where):
    def loss(w, x, y, axis_name=None):
        per = lossjax.losses.infonce_loss(x @ w, y @ w, where=where, axis_name=axis_name)
        return lossjax.masked_mean(per, where, axis_name=axis_name)

    return loss


def _supcon(w, x, y, labels, axis_name=None):
    del y
    return lossjax.losses.supervised_contrastive_loss(x @ w, labels, axis_name=axis_name)


def _ms(w, x, y, labels, axis_name=None):
    del y
    return lossjax.losses.multi_similarity_loss(x @ w, labels, axis_name=axis_name)


CASES = {
    "infonce": (lambda w, x, y, labels, axis_name=None: _infonce(None)(w, x, y, axis_name)),
    "supcon": _supcon,
    "multi_similarity": _ms,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_helper_gives_the_one_device_gradient_under_shard_map_and_pmap(mesh, name):
    loss = CASES[name]
    w, x, y, labels = _data()
    v1, g1 = jax.jit(jax.value_and_grad(loss))(w, x, y, labels)  # jitted: one compile, not every eager op

    step = lossjax.data_parallel_value_and_grad(lambda *a: loss(*a, axis_name="d"), axis_name="d")
    f = shard_map(step, mesh=mesh, in_specs=(P(), P("d"), P("d"), P("d")), out_specs=P())
    v, g = jax.jit(f)(w, x, y, labels)
    assert_close(v, v1, err=f"{name}: shard_map value")
    assert_close(g, g1, err=f"{name}: shard_map gradient")

    split = lambda a: a.reshape((ND, -1, *a.shape[1:]))  # noqa: E731
    pv, pg = jax.pmap(step, axis_name="d", in_axes=(None, 0, 0, 0))(w, split(x), split(y), split(labels))
    assert_close(pv[0], v1, err=f"{name}: pmap value")
    assert_close(pg[0], g1, err=f"{name}: pmap gradient")


def test_the_familiar_mix_is_wrong_for_per_example_losses(mesh):
    """shard_map + pmean of the gradients: 8x for InfoNCE (why the helper exists)."""
    loss = CASES["infonce"]
    w, x, y, labels = _data()
    _, g1 = jax.jit(jax.value_and_grad(loss))(w, x, y, labels)

    def habit(w, x, y, labels):
        g = jax.grad(lambda w: jnp.mean(lossjax.losses.infonce_loss(x @ w, y @ w, axis_name="d")))(w)
        return jax.lax.pmean(g, "d")

    g = jax.jit(shard_map(habit, mesh=mesh, in_specs=(P(), P("d"), P("d"), P("d")), out_specs=P()))(w, x, y, labels)
    np.testing.assert_allclose(np.asarray(g), ND * np.asarray(g1), rtol=1e-4, atol=1e-6)


def test_uneven_masks_need_the_global_masked_mean(mesh):
    w, x, y, _ = _data(1)
    where = np.ones(N, bool)
    where[[0, 1, 2, 5]] = False  # device 0 has no valid row, device 2 one
    _, g1 = jax.value_and_grad(_infonce(jnp.asarray(where)))(w, x, y)

    def local(w, x, y, m):
        return lossjax.masked_mean(lossjax.losses.infonce_loss(x @ w, y @ w, where=m, axis_name="d"), m, axis_name="d")

    step = lossjax.data_parallel_value_and_grad(local, axis_name="d")
    g = jax.jit(shard_map(lambda *a: step(*a)[1], mesh=mesh, in_specs=(P(), P("d"), P("d"), P("d")), out_specs=P()))
    assert_close(g(w, x, y, where), g1, err="global masked mean under shard_map")

    def per_device_mean(w, x, y, m):  # the per-device masked mean weights devices equally: wrong here
        return lossjax.masked_mean(lossjax.losses.infonce_loss(x @ w, y @ w, where=m, axis_name="d"), m)

    bad = lossjax.data_parallel_value_and_grad(per_device_mean, axis_name="d")
    gb = jax.jit(shard_map(lambda *a: bad(*a)[1], mesh=mesh, in_specs=(P(), P("d"), P("d"), P("d")), out_specs=P()))
    assert not np.allclose(np.asarray(gb(w, x, y, where)), np.asarray(g1), rtol=1e-2)
