"""Every aggregator exposes the weights it used (``state.weights``) and takes injected randomness (``key``/``seed``).

One parametrized test over every registered transform of the multitask and weighting families (so a new
aggregator is covered without touching this file): the state is an ``AggregatorState``; its weights have
shape ``[m]`` and are finite; for the linear methods the update is exactly ``sum_i w_i g_i``; the simplex
methods' weights sum to one. Then the randomized ones: the same key gives the same update, ``seed`` makes a
run reproducible without keys, and a per-call ``key=`` overrides the seed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from lossjax import registry
from lossjax import transforms as T

#: The methods whose update is not ``sum_i w_i g_i`` of the step's gradients (documented in each docstring).
NONLINEAR = {"graddrop", "trimmed_mean", "m_config", "moco_mtl", "db_mtl"}
#: Weights on the simplex (they sum to one).
SIMPLEX = {"mgda", "modo", "sdmgrad", "rlw", "imtl_g", "krum", "excess_mtl"}
AGGREGATORS = sorted(
    n
    for n in lossjax.available()
    if registry.get_entry(n).kind == "transform" and registry.get_entry(n).family in ("multitask", "weighting")
)


def _flat(tree, m):
    return np.concatenate([np.asarray(leaf, np.float64).reshape(m, -1) for leaf in jax.tree.leaves(tree)], axis=1)


@pytest.mark.parametrize("name", AGGREGATORS)
def test_every_aggregator_reports_its_weights(name):
    ts = registry.get_entry(name).sample()
    m = jax.tree.leaves(ts.updates)[0].shape[0]
    tx = registry.get(name, **{**ts.hyperparams, "num_losses": m})
    state = tx.init(ts.params)
    assert isinstance(state, T.AggregatorState), type(state)
    out, state = jax.jit(tx.update)(ts.updates, state, ts.params, **ts.extra_args)
    w = np.asarray(state.weights)
    assert w.shape == (m,) and w.dtype == np.float32 and np.all(np.isfinite(w)), w
    assert np.any(w != 0), w
    if name in SIMPLEX:
        np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-5)
    if name not in NONLINEAR:
        J = _flat(ts.updates, m)
        np.testing.assert_allclose(_flat(jax.tree.map(lambda x: x[None], out), 1)[0], w @ J, rtol=2e-5, atol=2e-6)


def test_nonlinear_weights_mean_what_the_docstrings_say():
    g = jnp.array([[1.0, -3.0], [2.0, 100.0], [-50.0, 0.0]])
    tx = T.trimmed_mean(num_trimmed=1, num_losses=3)  # loss 0 is the median of coordinate 0, loss 2 of coordinate 1
    _, state = tx.update(g, tx.init(None))
    np.testing.assert_allclose(state.weights, [0.5, 0.0, 0.5])
    tx = T.graddrop(leak=(1.0, 1.0, 1.0), num_losses=3)  # full leak: every coefficient is 1
    _, state = tx.update(g, tx.init(None), key=jax.random.PRNGKey(0))
    np.testing.assert_allclose(state.weights, [1.0, 1.0, 1.0])


def test_without_num_losses_the_state_keeps_its_shapes():
    # the weights are recorded when the factory knows m; otherwise an empty array, and the state's shapes never
    # change: lax.scan over steps and lossjax's apply_if_finite (lax.cond) work with either
    g = {"w": jnp.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])}
    params = {"w": jnp.zeros(2)}
    for tx, shape in ((T.upgrad(), (0,)), (T.upgrad(num_losses=3), (3,))):
        wrapped = T.apply_if_finite(optax.chain(tx, optax.sgd(1.0)), 2)

        def body(state, g_step, wrapped=wrapped):
            out, state = wrapped.update(g_step, state, params)
            return state, out["w"]

        gs = {"w": jnp.stack([g["w"], g["w"].at[0, 0].set(jnp.nan)])}
        state, outs = jax.lax.scan(body, wrapped.init(params), gs)
        assert state.inner_state[0].weights.shape == shape
        assert np.all(np.asarray(outs[1]) == 0)  # the NaN step was skipped


RANDOM = [
    ("pcgrad", {"shuffle": True}),
    ("gradvac", {"shuffle": True, "num_losses": 3}),
    ("graddrop", {}),
    ("rlw", {}),
]


@pytest.mark.parametrize(("name", "kwargs"), RANDOM)
def test_randomness_is_injected(name, kwargs):
    g = jnp.asarray(np.random.default_rng(0).normal(size=(3, 4)), jnp.float32)
    seeded = getattr(T, name)(seed=3, **{"num_losses": 3, **kwargs})
    with_key = jax.jit(lambda s, k: seeded.update(g, s, key=k))
    from_seed = jax.jit(lambda s: seeded.update(g, s))
    s0 = seeded.init(None)
    # the same key, the same update
    a = with_key(s0, jax.random.PRNGKey(1))[0]
    np.testing.assert_array_equal(a, with_key(s0, jax.random.PRNGKey(1))[0])
    # a seed: the state's key is split at every update and its subkey used; reproducible from the seed alone
    o1, st1 = from_seed(s0)
    key, sub = jax.random.split(s0.key)
    np.testing.assert_array_equal(st1.key, key)
    np.testing.assert_array_equal(o1, with_key(s0, sub)[0])
    np.testing.assert_array_equal(from_seed(seeded.init(None))[0], o1)
    assert st1.weights.shape == (3,) and np.all(np.isfinite(st1.weights))
    with pytest.raises(ValueError, match=rf"{name}: `seed` must be an integer >= 0"):
        getattr(T, name)(seed=-1, **kwargs)
    # without a key or a seed: a clear error
    keyed = getattr(T, name)(**kwargs)
    with pytest.raises(ValueError, match=rf"{name}: .*`key=`"):
        keyed.update(g, keyed.init(None))


def test_every_update_accepts_a_key():
    g = jnp.eye(2)
    for tx in (T.equal_weight(), T.imtl_g()):
        a = tx.update(g, tx.init(None))[0]
        b = tx.update(g, tx.init(None), key=jax.random.PRNGKey(0))[0]
        np.testing.assert_array_equal(a, b)
