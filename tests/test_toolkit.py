"""lossjax.toolkit: the public helpers for writing a conforming loss (issue 18 item 4)."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np

import lossjax
from lossjax import toolkit


def test_every_toolkit_name_is_documented_and_has_one_public_path():
    for name in toolkit.__all__:
        fn = getattr(toolkit, name)
        doc = inspect.getdoc(fn) or ""
        assert "Args:" in doc and "Returns:" in doc and ">>>" in doc, name
        assert name not in lossjax.__all__, f"{name} is public twice (lossjax.{name} and lossjax.toolkit.{name})"
    for name in ("masked_mean", "masked_sum", "register", "checked"):
        assert name not in toolkit.__all__ and name in lossjax.__all__


def test_a_loss_written_with_the_toolkit_masks_garbage_rows_exactly():
    def my_loss(predictions, targets, *, delta=1.0, where=None):
        toolkit.check_positive("my_loss", "delta", delta)
        predictions = toolkit.check_array("my_loss", "predictions", predictions, min_ndim=1, dtype="float")
        toolkit.check_same_shape("my_loss", ("predictions", "targets"), predictions, jnp.asarray(targets))
        dtype = toolkit.compute_dtype(predictions, targets)
        mask = toolkit.prepare_where("my_loss", where, predictions.shape[:1])
        p = toolkit.fill_masked(toolkit.as_compute(predictions, dtype), mask)
        t = toolkit.fill_masked(toolkit.as_compute(targets, dtype), mask)
        per = toolkit.safe_sqrt(jnp.sum((p - t) ** 2, axis=-1) + delta**2) - delta
        return toolkit.zero_masked(per, mask)

    x = jnp.array([[1.0, 2.0], [jnp.nan, jnp.inf]])
    y = jnp.zeros((2, 2))
    where = jnp.array([True, False])
    out = my_loss(x, y, where=where)
    g = jax.grad(lambda x: lossjax.masked_mean(my_loss(x, y, where=where), where))(x)
    np.testing.assert_allclose(out, [np.sqrt(6.0) - 1.0, 0.0], rtol=1e-6)
    assert np.all(np.isfinite(g)) and np.all(g[1] == 0)
    try:
        my_loss(x, y, delta=float("inf"))
    except ValueError as e:
        assert "my_loss" in str(e) and "delta" in str(e)
    else:
        raise AssertionError("inf delta accepted")
