"""The cross-batch memory (XBM) with the pair losses: pytorch-metric-learning 2.9's CrossBatchMemory over three
batches (warm-up, filling, wrap-around; tests/reference/xbm.json), and 8 simulated devices."""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

import lossjax
from lossjax.losses import CrossBatchMemory
from lossjax.testing import assert_close

REF = json.loads((pathlib.Path(__file__).parents[1] / "reference" / "xbm.json").read_text())
# multi_similarity_loss mines by default (PML's loss alone does not): no mining, as PML.
KW = {"multi_similarity_loss": {"mining_margin": None}}


@pytest.mark.parametrize("name", sorted(REF["cases"]))
def test_matches_pml_cross_batch_memory_over_three_batches(name):
    fn = getattr(lossjax.losses, name)
    mem = CrossBatchMemory.initial(REF["memory_size"], 3)
    step = jax.jit(jax.value_and_grad(lambda x, y, m: fn(x, y, memory=m, **KW.get(name, {}))))
    update = jax.jit(lambda m, x, y: m.update(x, y))  # eager calls compile each op per shape
    for batch, exp in zip(REF["batches"], REF["cases"][name], strict=True):
        x = jnp.asarray(batch["x"], jnp.float32)
        y = jnp.asarray(batch["y"], jnp.int32)
        v, g = step(x, y, mem)
        assert_close(v, exp["value"], err=f"{name}: value", rtol=1e-5, atol=1e-6)
        assert_close(g, exp["grad"], err=f"{name}: gradient", rtol=1e-4, atol=1e-6)
        mem = update(mem, x, y)
    # 11 rows through 7 slots: wrapped around, the pointer at 4.
    assert int(mem.pointer) == 4 and bool(jnp.all(mem.valid))


def test_memory_update_masked_rows_and_warm_up():
    mem = CrossBatchMemory.initial(4, 2)
    x = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    mem = mem.update(x, jnp.array([3, 4, 5]), where=jnp.array([True, False, True]))
    assert mem.valid.tolist() == [True, True, False, False] and int(mem.pointer) == 2
    assert mem.labels[:2].tolist() == [3, 5]
    # Warm-up: an empty memory pairs the batch with its own (stop-gradient) copy: same value as no memory
    # for a loss whose terms only see distances.
    e = CrossBatchMemory.initial(8, 2)
    y = jnp.array([0, 0, 1])
    loss = jax.jit(lossjax.losses.pairwise_contrastive_loss)  # eager calls compile each op per shape
    assert_close(loss(x, y, memory=e), loss(x, y))
    with pytest.raises(ValueError, match="pairwise_contrastive_loss: `memory`"):
        lossjax.losses.pairwise_contrastive_loss(x, y, memory=CrossBatchMemory.initial(4, 3))


def test_memory_across_devices_equals_single_device():
    if jax.device_count() < 8:
        pytest.fail("needs 8 (simulated) devices")
    mesh = jax.make_mesh((8,), ("batch",), axis_types=(jax.sharding.AxisType.Auto,))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y = rng.integers(0, 3, size=16).astype(np.int32)
    w = np.arange(16) % 5 != 2
    mem = CrossBatchMemory.initial(20, 3).update(rng.normal(size=(8, 3)), rng.integers(0, 3, size=8))
    mem = mem._replace(pointer=jnp.asarray(15, jnp.int32))
    fn = lossjax.losses.multi_similarity_loss

    def single(x):
        return fn(x, y, where=w, memory=mem)

    def sharded(x, y, w, m):
        def local(x, y, w, m):
            return fn(x, y, where=w, memory=m, axis_name="batch"), m.update(x, y, where=w, axis_name="batch")

        spec = P("batch")
        return jax.shard_map(local, mesh=mesh, in_specs=(spec, spec, spec, P()), out_specs=(P(), P()))(x, y, w, m)

    v1, g1 = jax.jit(jax.value_and_grad(single))(x)  # eager calls compile each op per shape
    (v8, m8), g8 = jax.jit(jax.value_and_grad(sharded, has_aux=True))(x, y, w, mem)
    assert_close(v8, v1, rtol=1e-5)
    assert_close(g8, g1, rtol=1e-4, atol=1e-6)
    m1 = jax.jit(lambda m: m.update(x, y, where=w))(mem)
    for a, b in zip(jax.tree.leaves(m8), jax.tree.leaves(m1), strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
