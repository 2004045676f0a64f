"""Pytree arithmetic shared by the transforms and :mod:`lossjax.multiloss`: the one home of these helpers.

Reductions over a whole pytree (squared norm, inner product) are computed in
an explicit ``dtype`` (float32 for half-precision leaves, see
:func:`lossjax._checks.compute_dtype`) and summed leaf by leaf in tree order,
so every caller gets the same bits for the same tree.

:func:`norm` never overflows or underflows where the norm itself is
representable: a sum of squares is only safe for entries between about
``1e-19`` and ``1.8e19`` (float32), so when it is not finite, or too small to be
trusted, the norm is recomputed on the tree divided by a power of two near its
largest entry (exact scaling; a :func:`jax.lax.cond`, so the common case costs
one pass).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from lossjax import _checks as C

__all__ = [
    "add",
    "all_finite",
    "cast_like",
    "compute_dtype",
    "keep_if_finite",
    "max_abs",
    "norm",
    "power_of_two_scale",
    "select",
    "squared_norm",
    "stack",
    "total",
    "vdot",
]

#: A sum of squares below this may have lost terms to underflow (float32 squares underflow below 2^-126).
SAFE_SQUARED = 2.0**-60

Array = jax.Array
PyTree = Any


def compute_dtype(*trees: PyTree) -> jnp.dtype:
    """The dtype a transform computes in for these pytrees (:func:`lossjax._checks.compute_dtype` of every leaf)."""
    return C.compute_dtype(*jax.tree.leaves(trees))


def total(values: Iterable[Array], dtype: Any, op=operator.add) -> Array:
    """``values[0] op values[1] op ...`` in order (default ``+``); a zero of ``dtype`` for no values."""
    values = list(values)
    if not values:
        return jnp.zeros((), dtype)
    return functools.reduce(op, values)


def squared_norm(tree: PyTree, dtype: Any) -> Array:
    """``sum_leaves sum(x^2)``, each leaf cast to ``dtype``."""
    return total((jnp.sum(jnp.square(x.astype(dtype))) for x in jax.tree.leaves(tree)), dtype)


def max_abs(tree: PyTree, dtype: Any) -> Array:
    """``max_leaves max |x|`` in ``dtype`` (0 for an empty tree; NaN if any entry is NaN)."""
    return total((jnp.max(jnp.abs(x.astype(dtype)), initial=0.0) for x in jax.tree.leaves(tree)), dtype, jnp.maximum)


def power_of_two_scale(x: Array) -> Array:
    """``2^(e-1)`` with ``x = f 2^e``, ``f`` in ``[0.5, 1)``: dividing by it is exact and maps ``x`` into ``[1, 2)``.

    1 where ``x`` is 0 or not finite (nothing to rescale).
    """
    ok = jnp.isfinite(x) & (x > 0)
    _, e = jnp.frexp(jnp.where(ok, x, jnp.ones((), x.dtype)))
    return jnp.where(ok, jnp.ldexp(jnp.ones((), x.dtype), e - 1), jnp.ones((), x.dtype))


def _scaled_norm(tree: PyTree, dtype: Any) -> Array:
    s = power_of_two_scale(max_abs(tree, dtype))
    # the barrier keeps XLA from folding 1/s out of the sum (sum(x^2) / s^2 would overflow again)
    scaled = lax.optimization_barrier([x.astype(dtype) / s for x in jax.tree.leaves(tree)])
    return s * jnp.sqrt(total((jnp.sum(jnp.square(x)) for x in scaled), dtype))


def norm(tree: PyTree, dtype: Any) -> Array:
    """The global Euclidean norm of a pytree, in ``dtype``, without overflow or underflow.

    ``sqrt(sum x^2)`` when that sum is finite and above :data:`SAFE_SQUARED`;
    otherwise ``s sqrt(sum (x/s)^2)`` with ``s`` the power of two near the
    largest entry (NaN stays NaN, inf stays inf).
    """
    sq = squared_norm(tree, dtype)
    safe = jnp.isfinite(sq) & (sq >= SAFE_SQUARED)
    return lax.cond(safe, lambda: jnp.sqrt(sq), lambda: _scaled_norm(tree, dtype))


def all_finite(tree: PyTree) -> Array:
    """True when every float entry of the pytree is finite (a bool scalar; True for no float leaves)."""
    flags = [
        jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)
    ]
    return total(flags, bool, jnp.logical_and) if flags else jnp.ones((), bool)


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


def keep_if_finite(new_state: PyTree, state: PyTree) -> PyTree:
    """``new_state`` if every float entry of it is finite, else ``state``: a bad step is not recorded in a state."""
    return select(all_finite(new_state), new_state, state)
