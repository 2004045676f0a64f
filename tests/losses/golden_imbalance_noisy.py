"""Golden-case helpers shared by tests/losses/test_imbalance.py and test_noisy.py.

The cases come from tests/reference/imbalance_noisy.json (written by
tests/reference/make_imbalance_noisy.py).
"""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lossjax
from lossjax.testing import assert_close

REF = json.loads((pathlib.Path(__file__).parents[1] / "reference" / "imbalance_noisy.json").read_text())
COUNT_KWARGS = {
    "ldam_loss": "class_counts",
    "vs_loss": "class_counts",
    "balanced_softmax_cross_entropy": "class_counts",
    "logit_adjusted_cross_entropy": "class_priors",
}
# The golden file keeps the argument names it was written with; today's names (the naming table).
RENAMED = {
    "ldam_loss": {"s": "scale", "max_m": "max_margin"},
    "vs_loss": {"tau": "prior_exponent"},
    "logit_adjusted_cross_entropy": {"tau": "prior_exponent"},
    "asymmetric_loss": {"clip": "margin"},
}


def close(actual, expected, **tol):
    """assert_close against a list/array/scalar expected value."""
    assert_close(jnp.asarray(actual), np.asarray(expected, np.float64), **tol)


def golden_cases(names):
    return [pytest.param(c, id=f"{c['name']}-{i}") for i, c in enumerate(REF["cases"]) if c["name"] in names]


def run_case(case, dtype):
    """The lossjax loss on a golden case: (per-example value, d sum / d first input, aux or None)."""
    fn = getattr(lossjax.losses, case["name"])
    renamed = RENAMED.get(case["name"], {})
    kwargs = {renamed.get(k, k): v for k, v in case["kwargs"].items()}
    if case["name"] in COUNT_KWARGS:
        kwargs[COUNT_KWARGS[case["name"]]] = np.asarray(REF["counts"])
    inputs = [
        jnp.asarray(np.asarray(a), dtype) if np.asarray(a).dtype.kind == "f" else jnp.asarray(a, jnp.int32)
        for a in case["inputs"]
    ]
    has_aux = lossjax.registry.get_entry(case["name"]).has_aux

    def total(x):
        out = fn(x, *inputs[1:], **kwargs)
        return jnp.sum(out[0] if has_aux else out), out

    # jitted: one compile per case and dtype instead of one eager compile per op and shape
    (_, out), grad = jax.jit(jax.value_and_grad(total, has_aux=True))(inputs[0])
    return (out[0], grad, out[1]) if has_aux else (out, grad, None)


def rel_err(actual, expected) -> float:
    """max |a - e| / max |e| (normwise relative error)."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(a - e)) / max(np.max(np.abs(e)), 1e-30))


def check_golden(case):
    """float64: agreement to 1e-10; float32: to 2e-5 (values and gradients)."""
    for dtype, tol in ((jnp.float64, 1e-10), (jnp.float32, 2e-5)):
        with jax.enable_x64(dtype == jnp.float64):
            value, grad, aux = run_case(case, dtype)
            assert value.dtype == dtype
            err = rel_err(value, case["value"])
            assert err <= tol, f"{case['name']} {case['kwargs']} value ({dtype.__name__}): rel err {err:.3g}"
            if "grad" in case:
                err = rel_err(grad, case["grad"])
                assert err <= tol, f"{case['name']} {case['kwargs']} grad ({dtype.__name__}): rel err {err:.3g}"
            if "new_temperatures" in case:
                err = rel_err(aux, case["new_temperatures"])
                assert err <= tol, f"{case['name']} new temperatures: rel err {err:.3g}"
