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
        (_wrong_grad, "grad", "(?s)Not equal to tolerance|Mismatch"),
        (_value_branch, "jit", "(?i)concret|tracer"),
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
