"""The contract helpers: errors that name function/argument/got/needed, masking, dtypes, safe numerics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lossjax
from lossjax import _checks as C
from lossjax.losses import sigmoid_binary_cross_entropy, softmax_cross_entropy


def test_wrong_rank_names_function_argument_and_shapes():
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: argument `logits` must have rank >= 1, got rank 0"):
        softmax_cross_entropy(jnp.float32(1.0), jnp.int32(0))
    with pytest.raises(ValueError, match=r"f: argument `x` must have rank 2, got rank 1 \(shape \(3,\)\)"):
        C.check_array("f", "x", jnp.zeros(3), ndim=2)
    with pytest.raises(ValueError, match=r"rank 1 or 3"):
        C.check_array("f", "x", jnp.zeros((2, 2)), ndim=(1, 3))


def test_mismatched_batch_shapes():
    with pytest.raises(ValueError, match=r"integer `labels` must have shape logits.shape\[:-1\]=\(4,\), got \(5,\)"):
        softmax_cross_entropy(jnp.zeros((4, 3)), jnp.zeros(5, jnp.int32))
    with pytest.raises(ValueError, match=r"`logits` and `labels` must have the same shape"):
        sigmoid_binary_cross_entropy(jnp.zeros(4), jnp.zeros(5))
    with pytest.raises(ValueError, match=r"first 1 axes of `a` and `b` must agree"):
        C.check_shape_prefix("f", ("a", "b"), jnp.zeros((2, 3)), jnp.zeros((3, 3)), 1)


def test_float_labels_where_integers_are_needed():
    with pytest.raises(ValueError, match=r"cast them to an integer dtype"):
        softmax_cross_entropy(jnp.zeros((4, 3)), jnp.zeros(4, jnp.float32))


def test_dtype_errors():
    with pytest.raises(TypeError, match=r"`logits` must have a float dtype, got int32"):
        softmax_cross_entropy(jnp.zeros((4, 3), jnp.int32), jnp.zeros(4, jnp.int32))
    with pytest.raises(TypeError, match=r"`where` must be a boolean mask, got dtype int32"):
        softmax_cross_entropy(jnp.zeros((4, 3)), jnp.zeros(4, jnp.int32), where=jnp.ones(4, jnp.int32))


def test_bad_where_shape():
    with pytest.raises(
        ValueError, match=r"`where` must be broadcastable to the batch shape \(4,\) along .*got shape \(3,\)"
    ):
        softmax_cross_entropy(jnp.zeros((4, 3)), jnp.zeros(4, jnp.int32), where=jnp.ones(3, bool))


def test_hyperparameter_errors():
    with pytest.raises(ValueError, match=r"`label_smoothing` must lie in \[0.0, 1.0\), got 1.5"):
        softmax_cross_entropy(jnp.zeros((4, 3)), jnp.zeros(4, jnp.int32), label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"`pos_weight` must be >= 0, got -1.0"):
        sigmoid_binary_cross_entropy(jnp.zeros(4), jnp.zeros(4), pos_weight=-1.0)
    with pytest.raises(ValueError, match=r"`x` must be a finite number, got nan"):
        C.check_positive("f", "x", float("nan"))
    with pytest.raises(ValueError, match=r"`mode` must be one of \['a', 'b'\], got 'c'"):
        C.check_one_of("f", "mode", "c", ("a", "b"))
    with pytest.raises(ValueError, match=r"must have shape \(3\)"):
        softmax_cross_entropy(jnp.zeros((4, 3)), jnp.zeros(4, jnp.int32), class_weights=jnp.ones(2))


def test_checks_happen_at_trace_time_under_jit():
    f = jax.jit(lambda z, y: softmax_cross_entropy(z, y))
    with pytest.raises(ValueError, match="integer `labels` must have shape"):
        f(jnp.zeros((4, 3)), jnp.zeros(5, jnp.int32))


def test_compute_dtype_policy():
    assert C.compute_dtype(jnp.zeros(2, jnp.bfloat16)) == jnp.float32
    assert C.compute_dtype(jnp.zeros(2, jnp.float16), jnp.zeros(2, jnp.int32)) == jnp.float32
    assert C.compute_dtype(jnp.zeros(2, jnp.float32)) == jnp.float32
    assert C.compute_dtype(jnp.zeros(2, jnp.int32)) == jnp.float32
    out = softmax_cross_entropy(jnp.zeros((2, 3), jnp.bfloat16), jnp.zeros(2, jnp.int32))
    assert out.dtype == jnp.float32


def test_masked_reductions():
    x = jnp.array([1.0, 2.0, 3.0, 4.0])
    w = jnp.array([True, False, True, False])
    assert float(lossjax.masked_mean(x, w)) == 2.0
    assert float(lossjax.masked_sum(x, w)) == 4.0
    assert float(lossjax.masked_mean(x, jnp.zeros(4, bool))) == 0.0
    g = jax.grad(lambda v: lossjax.masked_mean(v, jnp.zeros(4, bool)))(x)
    assert np.all(np.asarray(g) == 0)
    m2 = lossjax.masked_mean(jnp.ones((2, 3)), jnp.array([[True], [False]]), axis=1)
    np.testing.assert_array_equal(m2, [1.0, 0.0])


def test_double_where_blocks_nan_in_masked_examples():
    logits = jnp.array([[1.0, 2.0, 3.0], [jnp.nan, jnp.inf, -jnp.inf]])
    labels = jnp.array([0, 1])
    where = jnp.array([True, False])
    loss, g = jax.value_and_grad(lambda z: jnp.sum(softmax_cross_entropy(z, labels, where=where)))(logits)
    assert np.isfinite(loss)
    assert np.all(np.isfinite(g)) and np.all(np.asarray(g[1]) == 0)


def test_safe_norm_and_log():
    g = jax.grad(lambda x: C.safe_norm(x))(jnp.zeros(3))
    np.testing.assert_array_equal(g, np.zeros(3))
    np.testing.assert_allclose(C.safe_norm(jnp.array([3.0, 4.0])), 5.0)
    assert float(C.safe_norm(jnp.zeros(2), epsilon=1e-3)) == pytest.approx(1e-3)
    assert np.isfinite(float(C.safe_log(jnp.float32(0.0))))
    assert np.isfinite(float(jax.grad(lambda x: C.safe_log(x))(jnp.float32(0.0))))


def test_const_keeps_dtype_under_x64():
    with jax.enable_x64(True):
        x = jnp.ones(2, jnp.float32)
        assert (x * C.const(np.log(2.0), x)).dtype == jnp.float32


def test_debug_mode_reports_out_of_range_labels():
    ce = lossjax.checked(softmax_cross_entropy)
    np.testing.assert_allclose(ce(jnp.zeros((2, 3)), jnp.array([0, 2])), np.log(3.0) * np.ones(2), rtol=1e-6)
    with pytest.raises(ValueError, match=r"integer labels must lie in \[0, 3\)"):
        ce(jnp.zeros((2, 3)), jnp.array([0, 5]))
    with pytest.raises(ValueError, match="NaN or inf"):
        ce(jnp.array([[0.0, jnp.nan, 0.0]]), jnp.array([0]))
    # Outside debug mode the same call traces no check at all.
    jaxpr = jax.make_jaxpr(softmax_cross_entropy)(jnp.zeros((2, 3)), jnp.array([0, 5]))
    assert "check" not in str(jaxpr) and "callback" not in str(jaxpr)


def test_where_aligns_with_leading_axes_even_when_batch_equals_time():
    # A per-sequence mask [B] on a per-token loss [B, T] with B == T masks sequences, not positions.
    where = jnp.array([True, False, True])
    got = C.prepare_where("f", where, (3, 3))
    assert got.tolist() == [[True] * 3, [False] * 3, [True] * 3]
    with pytest.raises(ValueError, match="along its leading axes"):
        C.prepare_where("f", jnp.array([True, False]), (3, 2))  # [T]-shaped: not a leading-axis mask
