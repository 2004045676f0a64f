"""The conformance suite itself must catch broken losses (a suite that cannot fail is no suite)."""

import contextlib
import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossjax import _checks as C
from lossjax import cli, registry, testing
from lossjax.losses import softmax_cross_entropy


def _sample():
    rng = np.random.default_rng(0)
    return registry.Sample(
        args=(rng.normal(size=(6, 4)).astype(np.float32), rng.integers(0, 4, size=6).astype(np.int32))
    )


def _good(logits, labels, *, where=None):
    return softmax_cross_entropy(logits, labels, where=where)


def _no_fill(logits, labels, *, where=None):
    # Masks only the output: NaN in a masked example leaks into the gradient.
    mask = C.prepare_where("no_fill", where, logits.shape[:-1])
    return C.zero_masked(softmax_cross_entropy(logits, labels), mask)


def _ignores_where(logits, labels, *, where=None):
    return softmax_cross_entropy(logits, labels)


def _promotes(logits, labels, *, where=None):
    return softmax_cross_entropy(logits, labels, where=where) * np.float64(1.0)


def _keeps_bf16(logits, labels, *, where=None):
    return softmax_cross_entropy(logits, labels, where=where).astype(logits.dtype)


def _log_of_softmax(logits, labels, *, where=None):
    mask = C.prepare_where("log_of_softmax", where, logits.shape[:-1])
    z = C.fill_masked(logits, mask)
    p = jax.nn.softmax(z)
    loss = -jnp.sum(jax.nn.one_hot(labels, z.shape[-1]) * jnp.log(p), -1)
    return C.zero_masked(loss, mask)


@jax.custom_vjp
def _scaled(x):
    return x


_scaled.defvjp(lambda x: (x, None), lambda _, g: (2.0 * g,))  # wrong: the gradient is 1


def _wrong_grad(logits, labels, *, where=None):
    return softmax_cross_entropy(_scaled(logits), labels, where=where)


def _value_branch(logits, labels, *, where=None):
    if float(jnp.max(logits)) > 0:  # Python branch on an array value: breaks under jit
        return softmax_cross_entropy(logits, labels, where=where)
    return softmax_cross_entropy(-logits, labels, where=where)


def _eager_nan_at_extremes(logits, labels, *, where=None):
    # Stands for op-by-op rounding that XLA's fusion hides (0 * -inf eagerly): NaN only when not traced.
    out = softmax_cross_entropy(logits, labels, where=where)
    if not isinstance(logits, jax.core.Tracer) and float(jnp.max(jnp.abs(logits))) > 1e3:
        return out * jnp.nan
    return out


@contextlib.contextmanager
def registered(fn):
    name = "test_broken_" + fn.__name__.strip("_")
    registry.register(name, family="test", kind="per_example", sample=_sample)(fn)
    try:
        yield name
    finally:
        registry.unregister(name)
        testing._SAMPLE_CACHE.pop(name, None)


@pytest.mark.parametrize(
    ("fn", "prop", "match"),
    [
        (_no_fill, "where", "NaN/inf gradient"),
        (_ignores_where, "where", "masked entries must be exactly 0"),
        (_ignores_where, "all_masked", "all-masked batch must give 0"),
        (_promotes, "x64", "float64"),
        (_keeps_bf16, "bf16", "must give float32"),
        (_log_of_softmax, "extremes", "non-finite"),
        (_wrong_grad, "grad", "(?s)Not equal to tolerance|Mismatch|central differences give"),
        (_value_branch, "jit", "(?i)concret|tracer"),
        (_eager_nan_at_extremes, "jit", "jit != eager at extreme case"),
    ],
)
def test_suite_catches_broken_loss(fn, prop, match):
    with registered(fn) as name:
        with pytest.raises(Exception, match=match):
            testing.check(name, prop)
        results = testing.run([name], properties=[prop])
        assert len(results) == 1 and not results[0].ok
        assert testing.print_table(results, file=io.StringIO()) is False


def test_good_loss_passes_every_property_and_cli_reports_failures():
    with registered(_good) as name:
        results = testing.run([name])
        assert {r.prop for r in results} == set(testing.properties_for(name))
        assert all(r.ok for r in results), [r for r in results if not r.ok]
    with registered(_no_fill) as name:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(["check", name, "--property", "where", "--property", "jit"])
        assert code == 1
        text = out.getvalue()
        assert "FAIL" in text and "1 passed, 1 failed, 0 skipped" in text


def test_registered_without_sample_fails():
    registry.register("test_no_sample", family="test", kind="per_example")(_good)
    try:
        results = testing.run(["test_no_sample"])
        assert not results[0].ok and "without a sample" in results[0].detail
    finally:
        registry.unregister("test_no_sample")


# ------------- value and precision properties: wrong numbers must fail `lossjax check` -------------


def _ce_reference(logits, labels):
    """float64 closed form of softmax cross-entropy and its gradient under testing.cotangent."""
    z = np.asarray(logits, np.float64)
    lse = np.log(np.sum(np.exp(z - z.max(-1, keepdims=True)), -1)) + z.max(-1)
    onehot = np.eye(z.shape[-1])[labels]
    value = lse - np.sum(onehot * z, -1)
    ct = testing.cotangent(value.shape)
    grad = ct[:, None] * (np.exp(z - lse[:, None]) - onehot)
    return value, grad


def _valued_sample():
    s = _sample()
    value, grad = _ce_reference(*s.args)
    case = {
        "case": "sample",
        "variant": {},
        "fingerprint": testing.fingerprint(tuple(s.args), {}),
        "value": value.tolist(),
        "grads": [grad.tolist()],
    }
    return registry.Sample(args=s.args, extremes=(), expected={"source": "numpy float64 closed form", "cases": [case]})


def _constant_zero(logits, labels, *, where=None):
    return softmax_cross_entropy(logits, labels, where=where) * 0.0


def _ten_percent_off(logits, labels, *, where=None):
    return softmax_cross_entropy(logits, labels, where=where) * 1.1


def _bf16_rounded(logits, labels, *, where=None):
    z = jnp.asarray(logits)
    return softmax_cross_entropy(z.astype(jnp.bfloat16).astype(z.dtype), labels, where=where)


def _bf16_inside(logits, labels, *, where=None):
    """Half-precision inputs computed in half precision (the dtype policy says float32), returned as float32."""
    z = jnp.asarray(logits)
    mask = C.prepare_where("bf16_inside", where, z.shape[:-1])
    z = C.fill_masked(z, mask)
    loss = -jnp.sum(jax.nn.one_hot(labels, z.shape[-1], dtype=z.dtype) * jax.nn.log_softmax(z), -1)
    return C.zero_masked(loss.astype(jnp.float32), mask)


@contextlib.contextmanager
def registered_valued(fn):
    name = "test_valued_" + fn.__name__.strip("_")
    registry.register(name, family="test", kind="per_example", sample=_valued_sample)(fn)
    try:
        yield name
    finally:
        registry.unregister(name)
        testing._SAMPLE_CACHE.pop(name, None)


def test_the_value_property_passes_a_right_loss():
    with registered_valued(_good) as name:
        testing.check(name, "value")


@pytest.mark.parametrize("fn", [_constant_zero, _ten_percent_off, _bf16_rounded])
def test_the_value_property_fails_a_wrong_number(fn):
    with registered_valued(fn) as name:
        with pytest.raises(AssertionError, match="vs numpy float64 closed form"):
            testing.check(name, "value")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(["check", name])
        assert code == 1 and "FAIL" in out.getvalue()


def test_the_bf16_property_fails_a_loss_computed_in_bf16():
    with registered_valued(_bf16_inside) as name:
        testing.check(name, "value")  # float32 inputs are right ...
        with pytest.raises(AssertionError, match="bf16 inputs are not computed in float32"):
            testing.check(name, "bf16")  # ... bf16 inputs are computed in bf16


def test_a_missing_expected_value_fails_when_required(monkeypatch):
    monkeypatch.setattr(testing, "_REQUIRE_EXPECTED", True)
    with registered(_good) as name:
        assert "value" in testing.properties_for(name)
        with pytest.raises(AssertionError, match="no independent expected value"):
            testing.check(name, "value")


def _sgd_like():
    import optax

    def make(*, learning_rate: float = 0.1):
        """Plain SGD (a stand-in for a registered transform)."""
        return optax.sgd(learning_rate)

    return make


def _zero_update_like():
    import optax

    def make(*, learning_rate: float = 0.1):
        """Returns zero updates (broken)."""
        return optax.scale(0.0)

    return make


def _transform_sample():
    params = {"w": np.array([1.0, -2.0], np.float32)}
    updates = {"w": np.array([0.5, 0.25], np.float32)}
    steps = [{"w": {"dtype": "float64", "shape": [2], "data": [-0.05, -0.025]}}] * 2  # sgd(0.1): -0.1 * g
    arrays = {}
    case = {
        "case": "sample",
        "variant": {},
        "fingerprint": testing.fingerprint(params, updates, arrays, {}),
        "steps_updates": steps,
    }
    return registry.TransformSample(
        params=params, updates=updates, expected={"source": "closed form: -learning_rate * g", "cases": [case]}
    )


@pytest.mark.parametrize(("factory", "ok"), [(_sgd_like, True), (_zero_update_like, False)])
def test_the_value_property_fails_a_transform_that_returns_zero_updates(factory, ok):
    name = f"test_transform_{factory.__name__.strip('_')}"
    registry.register(name, family="test", kind="transform", sample=_transform_sample)(factory())
    try:
        if ok:
            testing.check(name, "value")
        else:
            with pytest.raises(AssertionError, match="step 1"):
                testing.check(name, "value")
    finally:
        registry.unregister(name)
        testing._SAMPLE_CACHE.pop(name, None)


def test_compiled_functions_are_kept_for_the_current_entry_only():
    """Compiled executables hold memory mappings until freed (about 12 each on CPU): kept for every entry,
    a test worker reached the 65530-mapping limit and XLA's compiler segfaulted. The suite's compiled
    functions are shared by one entry's properties and dropped when the next entry starts."""
    testing.check("huber_loss", "value", scope="main")
    testing.check("huber_loss", "extremes", scope="main")
    assert {k[0] for k in testing._JIT_CACHE} == {"huber_loss"} and testing._JIT_CACHE  # shared, not rebuilt
    testing.check("log_cosh_loss", "value", scope="main")
    assert {k[0] for k in testing._JIT_CACHE} == {"log_cosh_loss"}
