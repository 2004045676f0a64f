"""Pytree arithmetic shared by the transforms and :mod:`lossjax.multiloss`: the one home of these helpers.

Reductions over a whole pytree (squared norm, inner product) are computed in
an explicit ``dtype`` (float32 for half-precision leaves, see
:func:`lossjax._checks.compute_dtype`) and summed leaf by leaf in tree order,
so every caller gets the same bits for the same tree.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from lossjax import _checks as C

__all__ = ["add", "cast_like", "compute_dtype", "norm", "select", "squared_norm", "stack", "total", "vdot"]

Array = jax.Array
PyTree = Any


def compute_dtype(*trees: PyTree) -> jnp.dtype:
    """The dtype a transform computes in for these pytrees (:func:`lossjax._checks.compute_dtype` of every leaf)."""
    return C.compute_dtype(*jax.tree.leaves(trees))


def total(values: Iterable[Array], dtype: Any) -> Array:
    """``values[0] + values[1] + ...`` in order; a zero of ``dtype`` for no values."""
    values = list(values)
    if not values:
        return jnp.zeros((), dtype)
    return functools.reduce(operator.add, values)


def squared_norm(tree: PyTree, dtype: Any) -> Array:
    """``sum_leaves sum(x^2)``, each leaf cast to ``dtype``."""
    return total((jnp.sum(jnp.square(x.astype(dtype))) for x in jax.tree.leaves(tree)), dtype)


def norm(tree: PyTree, dtype: Any) -> Array:
    """The global Euclidean norm of a pytree, in ``dtype``."""
    return jnp.sqrt(squared_norm(tree, dtype))


def vdot(a: PyTree, b: PyTree, dtype: Any) -> Array:
    """``<a, b>`` over two pytrees of the same structure, in ``dtype``."""
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return total((jnp.sum(x.astype(dtype) * y.astype(dtype)) for x, y in pairs), dtype)


def cast_like(tree: PyTree, like: PyTree) -> PyTree:
    """Each leaf of ``tree`` cast to the dtype of the matching leaf of ``like``."""
    return jax.tree.map(lambda x, y: jnp.asarray(x).astype(jnp.asarray(y).dtype), tree, like)


def add(params: PyTree, delta: PyTree) -> PyTree:
    """``params + delta`` leaf by leaf, computed in ``delta``'s dtypes and returned in the params' dtypes."""
    return jax.tree.map(lambda w, d: (w.astype(d.dtype) + d).astype(w.dtype), params, delta)


def stack(trees: Sequence[PyTree]) -> PyTree:
    """Stacks pytrees of the same structure leaf by leaf on a new leading axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def select(pred: Array, on_true: PyTree, on_false: PyTree) -> PyTree:
    """``jnp.where(pred, a, b)`` leaf by leaf (a scalar predicate picks one of two pytrees)."""
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)
