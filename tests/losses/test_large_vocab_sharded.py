"""The fused linear cross-entropy on 8 simulated CPU devices: token-sharded and vocab-sharded equal unsharded."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from lossjax.losses import linear_cross_entropy, linear_cross_entropy_with_lse, reduced_linear_cross_entropy

N, D, V = 48, 8, 320  # 320 = 8 shards x 40 local rows; blocks of 16 leave a remainder of 8
OPTS = {"label_smoothing": 0.1, "z_loss_weight": 1e-2, "logit_softcap": 6.0}
MODES = ("in_forward", "recompute")


def _mesh(shape=(8,), names=("x",)):
    return jax.make_mesh(shape, names, axis_types=(jax.sharding.AxisType.Auto,) * len(shape))


@functools.cache
def _data():
    rng = np.random.default_rng(11)
    h = jnp.asarray(rng.normal(size=(N, D)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(V, D)) * 0.5, jnp.float32)
    b = jnp.asarray(rng.normal(size=(V,)) * 0.3, jnp.float32)
    y = rng.integers(0, V, size=(N,))
    y[[2, 9, 30]] = -100
    cot = jnp.asarray(rng.uniform(0.5, 1.5, size=(N,)), jnp.float32)
    return h, w, b, jnp.asarray(y, jnp.int32), cot


def _reference():
    h, w, b, y, cot = _data()

    def f(h, w, b):
        return jnp.sum(cot * linear_cross_entropy(h, w, y, bias=b, block_size=16, **OPTS))

    return jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2)))(h, w, b)


def _assert_same(got, want):
    for g, r, what in zip(jax.tree.leaves(got), jax.tree.leaves(want), ("loss", "dhidden", "dweight", "dbias")):
        err = float(np.max(np.abs(np.asarray(g) - np.asarray(r))) / np.max(np.abs(np.asarray(r))))
        assert err <= 2e-6, f"{what}: relative error {err:.3g}"


@pytest.mark.parametrize("mode", ["in_forward", "recompute"])
def test_jit_token_sharded_mean(mode):
    """Plain jit with token-sharded inputs (the SPMD partitioner inserts the dW reduction)."""
    h, w, b, y, _ = _data()
    mesh = _mesh()
    tok = NamedSharding(mesh, P("x"))
    rep = NamedSharding(mesh, P())

    def f(h, w, b, y):
        return reduced_linear_cross_entropy(
            h, w, y, bias=b, reduction="mean", mode=mode, chunk_size=3, block_size=16, **OPTS
        )

    g = jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2)))
    want = g(h, w, b, y)
    got = g(jax.device_put(h, tok), jax.device_put(w, rep), jax.device_put(b, rep), jax.device_put(y, tok))
    assert got[1][0].sharding.spec[0] == "x"  # dhidden stays token-sharded
    _assert_same(got, want)


@pytest.mark.parametrize("vocab_sharded", [False, True], ids=["tokens", "tokens+vocab"])
def test_explicit_sharding_mesh(vocab_sharded):
    """jax.set_mesh with explicit axes (the default of jax.make_mesh): sharding lives in the types."""
    h, w, b, y, cot = _data()
    if vocab_sharded:
        mesh = jax.make_mesh((4, 2), ("x", "v"), axis_types=(jax.sharding.AxisType.Explicit,) * 2)
        wspec = P("v")
    else:
        mesh = jax.make_mesh((8,), ("x",), axis_types=(jax.sharding.AxisType.Explicit,))
        wspec = P()

    def per_token(h, w, b, y, cot):
        return jnp.sum(cot * linear_cross_entropy(h, w, y, bias=b, block_size=16, **OPTS))

    def mean(h, w, b, y, mode):
        return reduced_linear_cross_entropy(
            h, w, y, bias=b, reduction="mean", mode=mode, block_size=16, chunk_size=3, **OPTS
        )

    plain = jax.jit(jax.value_and_grad(per_token, argnums=(0, 1, 2)))(h, w, b, y, cot)
    plain_mean = {
        m: jax.jit(jax.value_and_grad(mean, argnums=(0, 1, 2)), static_argnums=4)(h, w, b, y, m) for m in MODES
    }
    with jax.set_mesh(mesh):
        tok = NamedSharding(mesh, P("x"))
        hs, ys, cs = jax.device_put(h, tok), jax.device_put(y, tok), jax.device_put(cot, tok)
        ws, bs = jax.device_put(w, NamedSharding(mesh, wspec)), jax.device_put(b, NamedSharding(mesh, wspec))
        got = jax.jit(jax.value_and_grad(per_token, argnums=(0, 1, 2)))(hs, ws, bs, ys, cs)
        assert got[1][1].sharding.is_equivalent_to(ws.sharding, 2)  # dweight sharded like the weight
        _assert_same(got, plain)
        for m in MODES:
            got = jax.jit(jax.value_and_grad(mean, argnums=(0, 1, 2)), static_argnums=4)(hs, ws, bs, ys, m)
            _assert_same(got, plain_mean[m])


def test_shard_map_token_sharded():
    """shard_map over tokens with a replicated weight: per-token losses and gradients equal unsharded."""
    h, w, b, y, cot = _data()
    mesh = _mesh()

    def f(h, w, b):
        per_token = jax.shard_map(
            lambda h, w, b, y: linear_cross_entropy(h, w, y, bias=b, block_size=16, **OPTS),
            mesh=mesh,
            in_specs=(P("x"), P(), P(), P("x")),
            out_specs=P("x"),
        )(h, w, b, y)
        return jnp.sum(cot * per_token)

    _assert_same(jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2)))(h, w, b), _reference())


@pytest.mark.parametrize("check_vma", [True, False])
def test_shard_map_vocab_sharded(check_vma):
    """Weight and bias sharded over the vocabulary (40 rows per device, blocks of 16 + remainder)."""
    h, w, b, y, cot = _data()
    mesh = _mesh(names=("v",))

    def f(h, w, b):
        per_token = jax.shard_map(
            lambda h, w, b, y: linear_cross_entropy(h, w, y, bias=b, block_size=16, vocab_axis_name="v", **OPTS),
            mesh=mesh,
            in_specs=(P(), P("v"), P("v"), P()),
            out_specs=P(),
            check_vma=check_vma,
        )(h, w, b, y)
        return jnp.sum(cot * per_token)

    _assert_same(jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2)))(h, w, b), _reference())


@pytest.mark.parametrize("check_vma", [True, False])
def test_shard_map_tokens_and_vocab_2d(check_vma):
    """A 4 x 2 mesh: tokens over "x", vocabulary over "v"; lse returned and differentiated too."""
    h, w, b, y, cot = _data()
    mesh = _mesh((4, 2), ("x", "v"))

    def sharded(h, w, b):
        loss, lse = jax.shard_map(
            lambda h, w, b, y: linear_cross_entropy_with_lse(
                h, w, y, bias=b, block_size=16, vocab_axis_name="v", **OPTS
            ),
            mesh=mesh,
            in_specs=(P("x"), P("v"), P("v"), P("x")),
            out_specs=(P("x"), P("x")),
            check_vma=check_vma,
        )(h, w, b, y)
        return jnp.sum(cot * loss) + 0.1 * jnp.sum(lse**2)

    def plain(h, w, b):
        loss, lse = linear_cross_entropy_with_lse(h, w, y, bias=b, block_size=16, **OPTS)
        return jnp.sum(cot * loss) + 0.1 * jnp.sum(lse**2)

    got = jax.jit(jax.value_and_grad(sharded, argnums=(0, 1, 2)))(h, w, b)
    want = jax.jit(jax.value_and_grad(plain, argnums=(0, 1, 2)))(h, w, b)
    _assert_same(got, want)


def test_vocab_sharded_rejects_in_forward():
    h, w, _, y, _ = _data()
    with pytest.raises(
        ValueError, match="reduced_linear_cross_entropy: `mode='in_forward'` does not support a vocab-sharded"
    ):
        reduced_linear_cross_entropy(h, w, y, reduction="mean", mode="in_forward", vocab_axis_name="v")
