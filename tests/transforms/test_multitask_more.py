"""PCD, MoDo, SDMGrad, CR-MOGM, IMTL, MoCo, DB-MTL and GLS: what the conformance values cannot see.

Their 2-step values against torchjd 0.18 / LibMTL ports are checked by the conformance ``value`` property
(lossjax/expected/multitask.json, weighting.json). Here: special cases by hand, state over steps, the
two-batch inputs and the error messages.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossjax import transforms as T


def close(a, b, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol, atol=atol)


def test_pcd_special_cases():
    # a satisfied constraint: the primary gradient itself (rescaled to its own norm: unchanged)
    g = jnp.array([[2.0, 0.0], [1.0, 1.0]])
    tx = T.pcd(num_losses=2, progress_fraction=0.1)
    step = jax.jit(tx.update)
    close(step(g, tx.init(None))[0], [2.0, 0.0])
    # a zero primary gradient: a zero update
    close(step(g.at[0].set(0.0), tx.init(None))[0], [0.0, 0.0])
    # infeasible constraints (two anti-parallel secondaries, each asking for progress): g1
    g3 = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, -1.0, 0.0]])
    tx3 = T.pcd(num_losses=3, progress_fraction=0.5)
    close(jax.jit(tx3.update)(g3, tx3.init(None))[0], [1.0, 0.0, 0.0])
    # the moving average of the squared norms carries over (bias-corrected: the first step sees the norms)
    _, state = step(g, tx.init(None))
    close(state.inner.squared_norm_average, 0.001 * np.array([4.0, 2.0]), rtol=1e-4)
    assert int(state.inner.count) == 1


def test_pcd_checks_progress_fraction():
    with pytest.raises(ValueError, match=r"pcd: `progress_fraction` has 1 entries but there are 2 secondary losses"):
        T.pcd(num_losses=3, progress_fraction=(0.1,))
    with pytest.raises(ValueError, match=r"pcd: `progress_fraction` must be a number or a 1-D sequence"):
        T.pcd(num_losses=3, progress_fraction=1.5)


def test_modo_and_sdmgrad_use_the_two_batches():
    rng = np.random.default_rng(0)
    g, a, b = (jnp.asarray(rng.normal(size=(3, 5)), jnp.float32) for _ in range(3))
    tx = T.modo(num_losses=3, gamma=0.05, rho=0.1)
    out, state = jax.jit(tx.update)(g, tx.init(None), updates_a=a, updates_b=b)
    lam = np.full(3, 1 / 3) - 0.05 * (np.asarray(a @ b.T) @ np.full(3, 1 / 3) + 0.1 / 3)
    lam = lam - (lam.sum() - 1) / 3  # inside the simplex here: the projection only shifts
    assert np.all(lam > 0)
    close(state.weights, lam)
    close(out, lam @ np.asarray(g))
    # single batch: the Gram of the updates
    sd = T.sdmgrad(num_losses=3, num_iterations=3)

    @jax.jit
    def singles():
        one = [t.update(g, t.init(None))[1].weights for t in (tx, sd)]
        two = [t.update(g, t.init(None), updates_a=g, updates_b=g)[1].weights for t in (tx, sd)]
        return one, two

    for x, y in zip(*singles(), strict=True):
        close(x, y)
    with pytest.raises(ValueError, match=r"modo: pass both `updates_a=` and `updates_b=`"):
        tx.update(g, tx.init(None), updates_a=a)
    with pytest.raises(ValueError, match=r"sdmgrad: `updates_b` holds the gradients of 2 losses, not 3"):
        sd.update(g, sd.init(None), updates_a=a, updates_b=b[:2])


def test_sdmgrad_preference_weight_pulls_toward_the_preference():
    g = jnp.array([[1.0, 0.0], [0.0, 3.0]])
    txs = [T.sdmgrad(num_losses=2, preference_weight=lam, weights=(0.0, 1.0)) for lam in (0.0, 10.0)]
    states = jax.jit(lambda: [tx.update(g, tx.init(None))[1] for tx in txs])()
    for lam, state in zip((0.0, 10.0), states, strict=True):
        w = np.asarray(state.inner.weights)
        close(state.weights, (w + lam * np.array([0.0, 1.0])) / (1 + lam))
    assert float(states[1].weights[1]) > 0.9  # lambda = 10: mostly the preference


def test_cr_mogm_decay_zero_is_the_base_and_one_freezes():
    rng = np.random.default_rng(1)
    gs = [jnp.asarray(rng.normal(size=(3, 4)), jnp.float32) for _ in range(2)]
    base = T.mgda(num_losses=3, solver="exact")
    kw = {"num_losses": 3, "base": "mgda", "base_hyperparams": {"solver": "exact"}}
    txs = [base, T.cr_mogm(decay=0.0, **kw), T.cr_mogm(decay=1.0, initial_weights=(0.1, 0.2, 0.7), **kw)]
    txs.append(T.cr_mogm(decay=0.5, **kw))

    @jax.jit
    def step(g, states):
        return [tx.update(g, s) for tx, s in zip(txs, states, strict=True)]

    states, lam = [tx.init(None) for tx in txs], None
    for g in gs:
        (ob, sb), (os_, ss), (of, sf), (_, st) = step(g, states)
        states = [sb, ss, sf, st]
        close(os_, ob)  # decay 0: the base
        close(of, np.array([0.1, 0.2, 0.7]) @ np.asarray(g))  # decay 1: frozen at the initial weights
        hat = np.asarray(sb.weights)  # the EMA by hand (lambda_0 = the first weights)
        lam = hat if lam is None else 0.5 * lam + 0.5 * hat
        close(st.weights, lam)
    with pytest.raises(ValueError, match=r"cr_mogm: `base` must be one of"):
        T.cr_mogm(num_losses=3, base="graddrop")


def test_imtl_loss_scales_drive_every_scaled_loss_to_one():
    # IMTL-L alone: the update is sum e^s g; s takes Adam steps on e^s L - 1 until e^s L = 1
    g = jnp.eye(2)
    L = jnp.array([4.0, 0.25])
    tx = T.imtl(num_losses=2, learning_rate=0.05, gradient_balance=False)
    step = jax.jit(lambda s: tx.update(g, s, losses=L))
    state = tx.init(None)
    out, state = step(state)
    close(out, [1.0, 1.0])  # s = 0 at the first step
    for _ in range(300):
        out, state = step(state)
    close(np.exp(state.inner.log_scales) * np.asarray(L), [1.0, 1.0], rtol=2e-2)
    close(state.weights, np.exp(state.inner.log_scales))


def test_moco_and_db_mtl_by_hand():
    g = jnp.array([[3.0, 0.0], [0.0, 1.0]])
    L = jnp.array([2.0, 1.0])
    tx = T.moco_mtl(num_losses=2, beta=1.0, beta_sigma=0.0, gamma=0.1, gamma_sigma=0.0)
    out, state = tx.update(g, tx.init(jnp.zeros(2)), losses=L)
    Y = np.array([[2.0, 0.0], [0.0, 1.0]])  # beta = 1: y = L g/|g|
    lam = jax.nn.softmax(np.full(2, 0.5) - 0.1 * (Y @ Y.T) @ np.full(2, 0.5))
    close(state.weights, lam)
    close(out, np.asarray(lam) @ Y)
    db = T.db_mtl(num_losses=2, beta=0.5)
    s = db.init(jnp.zeros(2))
    _, s = db.update(g, s, losses=L)
    out, s = db.update(g, s, losses=L)
    H = (0.5 * 0.5 + 0.5) * np.asarray(g) / np.asarray(L)[:, None]  # h = 0.5 (0.5 gl) + 0.5 gl
    n = np.linalg.norm(H, axis=1)
    close(out, (n.max() / (n + 1e-8)) @ H)
    assert int(s.inner.count) == 2


def test_gls_weights_and_zero_loss():
    tx = T.gls(num_losses=3)
    L = jnp.array([2.0, 8.0, 0.5])
    _, state = tx.update(jnp.eye(3), tx.init(None), losses=L)
    w = jax.grad(lambda x: jnp.prod(x) ** (1 / 3))(L)
    close(state.weights, w)
    _, state = tx.update(jnp.eye(3), tx.init(None), losses=L.at[1].set(0.0))
    close(state.weights, [0.0, 0.0, 0.0])
