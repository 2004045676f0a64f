"""Self-supervised objectives (lossjax/losses/_selfsup.py).

Golden values: tests/reference/margins.json (tests/reference/make_margins.py:
pytorch-metric-learning's VICRegLoss and torch ports of the official VICReg,
Barlow Twins, W-MSE, DispLoss, SimSiam and BYOL code), compared in float64
(runner: golden_margins.py).
Multi-device: under ``shard_map`` over 8 simulated CPU devices the loss and
its gradient equal the single-device result on the global batch.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from golden_margins import REF, case_names, run_case
from jax.sharding import PartitionSpec as P

import lossjax
from lossjax.losses import _selfsup as S
from lossjax.testing import assert_close

CASES = case_names(set(S.__all__))
assert CASES, "no golden case for the self-supervised losses"


@pytest.mark.parametrize("name", CASES)
def test_golden_values_and_gradients(name):
    case = REF[name]
    with jax.enable_x64(True):
        value, grads = run_case(case)
        assert value.dtype == jnp.float64
        assert_close(value, np.asarray(case["value"]), err=f"{name} ({case['note']})", rtol=1e-9, atol=1e-10)
        for k, g in case["grads"].items():
            assert_close(grads[k], np.asarray(g), err=f"{name}: d/d{k}", rtol=1e-8, atol=1e-10)


def test_vicreg_reference_forms_agree():
    """PML's VICRegLoss and the paper's code give the same number (both in the JSON)."""
    a, b = REF["vicreg_pml_25_25_1"]["value"], REF["vicreg_paper"]["value"]
    assert abs(a - b) < 1e-12 * abs(b)


def test_vicreg_and_barlow_closed_forms():
    # Two identical views, uncorrelated dimensions of variance 16/3 > 1: every VICReg term is 0.
    z = jnp.array([[2.0, -2.0], [-2.0, 2.0], [2.0, 2.0], [-2.0, -2.0]])
    assert float(lossjax.losses.vicreg_loss(z, z)) == 0.0
    # Variance term alone: a constant batch has std sqrt(eps): mu * 2 views * (1 - sqrt(1e-4)) / 2.
    c = jnp.ones((4, 2))
    assert_close(lossjax.losses.vicreg_loss(c, c), 25.0 * 2 * (1 - 0.01) / 2, rtol=1e-6)
    # Barlow Twins: identical decorrelated views: C = diag(v / (v + eps)), v = 1.
    z = jnp.array([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0], [-1.0, -1.0]])
    cdiag = 1.0 / (1.0 + 1e-5)
    assert_close(lossjax.losses.barlow_twins_loss(z, z), 2 * (1 - cdiag) ** 2, rtol=1e-4, atol=1e-12)
    # Anti-correlated second view: C = -I: on-diagonal (1 - (-1))^2 = 4 per dimension.
    assert_close(lossjax.losses.barlow_twins_loss(z, -z), 2 * (1 + cdiag) ** 2, rtol=1e-5)


def test_whitening_mse_whitens():
    """After whitening the covariance is the identity; the loss ignores a per-view scale and shift."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    vf = jnp.ones(64)
    z = S._whiten(jnp.asarray(x, jnp.float32), vf, jnp.float32(64), 0.0, None)
    cov = np.cov(np.asarray(z), rowvar=False)
    assert_close(cov, np.eye(3), rtol=1e-4, atol=1e-4)
    views = np.stack([x, x + 0.3 * rng.normal(size=x.shape)], axis=1).astype(np.float32)
    wm = jax.jit(lambda v: lossjax.losses.whitening_mse_loss(v, epsilon=0.0))  # one compile for both calls
    a = wm(views)
    # Whitening removes each view's scale and shift (per view), so the loss ignores them.
    scaled = views * np.array([3.0, 0.2], np.float32)[None, :, None] + 5.0
    b = wm(scaled)
    assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_whitening_mse_sub_batches():
    """whitening_size < N: the same random split for every view, each sub-batch whitened on its own."""
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(12, 1, 2)) + 0.5 * rng.normal(size=(12, 2, 2))).astype(np.float32)
    key = jax.random.key(3)
    # jitted calls: eager ones compile each op per shape
    got = jax.jit(
        lambda x: lossjax.losses.whitening_mse_loss(x, whitening_size=6, num_iterations=2, key=key, epsilon=0.0)
    )(x)
    whole = jax.jit(lambda x: lossjax.losses.whitening_mse_loss(x, epsilon=0.0))
    keys = jax.random.split(key, 2)
    expect = []
    for k in keys:
        perm = np.asarray(jax.random.permutation(k, 12)).reshape(2, 6)
        expect.append(np.mean([float(whole(x[idx])) for idx in perm]))
    assert_close(got, np.mean(expect), rtol=1e-5, atol=1e-6)
    # whitening_size == N is the deterministic whole-batch loss.
    wm = jax.jit(lossjax.losses.whitening_mse_loss, static_argnames="whitening_size")
    assert_close(wm(x, whitening_size=12), wm(x))


def test_dispersive_closed_form_and_minimum():
    z = jnp.array([[0.0, 0.0], [1.0, 1.0], [3.0, -1.0]])
    d2 = np.array([[0, 2, 10], [2, 0, 8], [10, 8, 0]], float)
    expect = np.log(np.mean(np.exp(-d2 / (0.5 * 2))))
    assert_close(lossjax.losses.dispersive_loss(z), expect)
    # Identical embeddings: the maximum, 0; spreading lowers it.
    assert float(lossjax.losses.dispersive_loss(jnp.ones((4, 3)))) == 0.0
    assert float(lossjax.losses.dispersive_loss(z)) < 0.0


def test_negative_cosine_and_byol_stop_gradient_targets():
    p = jnp.array([[1.0, 0.0], [1.0, 1.0]])
    z = jnp.array([[0.0, 2.0], [1.0, 1.0]])
    assert_close(lossjax.losses.negative_cosine_loss(p, z), np.array([0.0, -1.0]), atol=1e-6)
    assert_close(lossjax.losses.byol_loss(p, z), np.array([2.0, 0.0]), atol=1e-6)
    for fn in (lossjax.losses.negative_cosine_loss, lossjax.losses.byol_loss):
        gz = jax.grad(lambda t: jnp.sum(fn(p, t)))(z)  # noqa: B023
        assert np.all(np.asarray(gz) == 0)
        gz = jax.grad(lambda t: jnp.sum(fn(p, t, stop_gradient_targets=False)))(z)  # noqa: B023
        assert np.any(np.asarray(gz) != 0)
    # Leading batch dimensions are kept.
    assert lossjax.losses.byol_loss(jnp.ones((2, 3, 4)), jnp.ones((2, 3, 4))).shape == (2, 3)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: lossjax.losses.vicreg_loss(np.zeros((4, 2)), np.zeros((4, 3))),
            "vicreg_loss: `embeddings_a` and `embeddings_b` must have the same shape",
        ),
        (
            lambda: lossjax.losses.vicreg_loss(np.zeros((4,)), np.zeros((4,))),
            "vicreg_loss: argument `embeddings_a` must have rank 2",
        ),
        (
            lambda: lossjax.losses.vicreg_loss(np.zeros((4, 2)), np.zeros((4, 2)), epsilon=0.0),
            "vicreg_loss: `epsilon` must be > 0",
        ),
        (
            lambda: lossjax.losses.barlow_twins_loss(np.zeros((4, 2), int), np.zeros((4, 2), int)),
            "barlow_twins_loss: argument `embeddings_a` must have a float dtype",
        ),
        (
            lambda: lossjax.losses.barlow_twins_loss(np.zeros((4, 2)), np.zeros((4, 2)), off_diagonal_weight=-1.0),
            "`off_diagonal_weight` must be >= 0",
        ),
        (
            lambda: lossjax.losses.whitening_mse_loss(np.zeros((4, 1, 2))),
            r"whitening_mse_loss: `embeddings` must have shape \(N, V, D\) with V >= 2",
        ),
        (
            lambda: lossjax.losses.whitening_mse_loss(np.zeros((6, 2, 2)), whitening_size=4),
            "`whitening_size` must be an integer >= 2 that divides N=6",
        ),
        (
            lambda: lossjax.losses.whitening_mse_loss(np.zeros((6, 2, 2)), whitening_size=True),
            "whitening_mse_loss: `whitening_size` must be an integer >= 2, got True",
        ),
        (
            lambda: lossjax.losses.whitening_mse_loss(np.zeros((6, 2, 2)), num_iterations=0),
            "whitening_mse_loss: `num_iterations` must be an integer >= 1, got 0",
        ),
        (
            lambda: lossjax.losses.whitening_mse_loss(np.zeros((6, 2, 2)), whitening_size=3),
            "whitening_mse_loss: `key` is required",
        ),
        (
            lambda: lossjax.losses.whitening_mse_loss(
                np.zeros((6, 2, 2)), whitening_size=3, key=jax.random.key(0), where=np.ones(6, bool)
            ),
            "need whole-batch whitening",
        ),
        (
            lambda: lossjax.losses.dispersive_loss(np.zeros((4,))),
            "dispersive_loss: argument `embeddings` must have rank >= 2",
        ),
        (
            lambda: lossjax.losses.dispersive_loss(np.zeros((4, 2)), temperature=0.0),
            "dispersive_loss: `temperature` must be > 0",
        ),
        (
            lambda: lossjax.losses.byol_loss(np.zeros((4, 2)), np.zeros((4, 3))),
            "byol_loss: `predictions` and `targets` must have the same shape",
        ),
        (
            lambda: lossjax.losses.negative_cosine_loss(np.zeros((4, 2)), np.zeros((4, 2)), where=np.ones(3, bool)),
            r"negative_cosine_loss: `where` must be broadcastable to the batch shape \(4,\)",
        ),
    ],
)
def test_bad_inputs(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# ------------------------------------ devices ------------------------------------


def _mesh():
    return jax.make_mesh((8,), ("batch",), axis_types=(jax.sharding.AxisType.Auto,))


def _views(n=16, d=3, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d)) * np.array([0.4, 1.3, 0.8])
    b = a + 0.4 * rng.normal(size=(n, d))
    return a.astype(np.float32), b.astype(np.float32)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("name", ["vicreg_loss", "barlow_twins_loss", "whitening_mse_loss", "dispersive_loss"])
def test_across_devices_equal_single_device(name, masked):
    if jax.device_count() < 8:
        pytest.fail("needs 8 (simulated) devices: XLA_FLAGS=--xla_force_host_platform_device_count=8")
    fn = getattr(lossjax.losses, name)
    a, b = _views()
    where = np.arange(16) % 5 != 2 if masked else np.ones(16, bool)
    if name in ("whitening_mse_loss", "dispersive_loss"):
        args = (np.stack([a, b], axis=1),)
    else:
        args = (a, b)

    def single(*xs):
        return fn(*xs, where=where)

    def sharded(*xs):
        def local(*xs_w):
            *xs_l, w = xs_w
            return fn(*xs_l, where=w, axis_name="batch")

        specs = (P("batch"),) * (len(xs) + 1)
        return jax.shard_map(local, mesh=_mesh(), in_specs=specs, out_specs=P())(*xs, where)

    argnums = tuple(range(len(args)))
    v1, g1 = jax.jit(jax.value_and_grad(single, argnums=argnums))(*args)  # eager compiles each op
    v8, g8 = jax.jit(jax.value_and_grad(sharded, argnums=argnums))(*args)
    assert_close(v8, v1, err=f"{name}: sharded value", rtol=1e-5, atol=1e-6)
    for k, (a8, a1) in enumerate(zip(g8, g1, strict=True)):  # per argument (plain arrays)
        assert_close(a8, a1, err=f"{name}: sharded gradient of argument {k}", rtol=1e-4, atol=1e-5)
    assert float(jnp.max(jnp.abs(g1[0]))) > 0


@pytest.mark.parametrize(("scale", "n", "d"), [(30.0, 3, 4), (1000.0, 3, 6), (1000.0, 4, 4), (1e4, 2, 3)])
def test_whitening_mse_no_more_rows_than_dimensions_at_large_scale(scale, n, d):
    """Regression (issue 19 item 3): a singular covariance at x30-x1e4 gave NaN pivots in float32's Cholesky.

    The value is 2 - 2 cos per pair, in [0, 4]; where float32 resolves the shrinkage (x30) it equals float64.
    """
    rng = np.random.default_rng(int(scale) + n + d)
    x = rng.normal(size=(n, 2, d))
    x[:, 1] = x[:, 0] + 0.4 * rng.normal(size=(n, d))
    x = (scale * x).astype(np.float32)
    v, g = jax.jit(jax.value_and_grad(lambda x: lossjax.losses.whitening_mse_loss(x)))(x)
    assert np.isfinite(float(v)) and np.all(np.isfinite(np.asarray(g))), (v, g)
    assert 0.0 <= float(v) <= 4.0
    if scale == 30.0:
        with jax.enable_x64(True):
            v64 = jax.jit(lossjax.losses.whitening_mse_loss)(x.astype(np.float64))
        assert_close(v, v64, err="float32 vs float64", rtol=1e-3, atol=1e-4)
