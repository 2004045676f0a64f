"""Collectives and the JAX-version shims for sharding types: the one home of both.

Every function takes an ``axis_name`` (a mesh axis name, a tuple of them, or
None) and is the identity when it is None, so a loss or transform written
with them runs unchanged on one device and inside ``shard_map`` / ``pmap``.

The version shims live here and nowhere else: JAX moved a value's varying
mesh axes from ``aval.vma`` to ``aval.manual_axis_type.varying`` (and older
releases have neither); :func:`varying_axes` reads whichever exists.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

__all__ = [
    "AxisName",
    "axis_names",
    "axis_offset",
    "axis_size",
    "data_parallel_value_and_grad",
    "explicit_sharding",
    "gather_batch",
    "like_inputs",
    "pmean",
    "psum",
    "shard_multiple",
    "vary",
    "varying_axes",
    "vma_checked",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
AxisName = Hashable | Sequence[Hashable] | None


# --------------------------------------------------------------------------
# Collectives (identity without an axis).
# --------------------------------------------------------------------------


def axis_names(axis_name: AxisName) -> tuple:
    """``axis_name`` as a tuple of names (empty for None)."""
    if axis_name is None:
        return ()
    return (axis_name,) if isinstance(axis_name, str) else tuple(axis_name)


def pmean(tree: Any, axis_name: AxisName) -> Any:
    """``jax.lax.pmean`` of a pytree over ``axis_name`` (identity when None)."""
    return tree if axis_name is None else lax.pmean(tree, axis_name)


def psum(x: Any, axis_name: AxisName) -> Any:
    """``jax.lax.psum`` of a pytree over ``axis_name`` (identity when None)."""
    if axis_name is None:
        return jax.tree.map(jnp.asarray, x)
    return lax.psum(x, axis_name)


def gather_batch(x: ArrayLike, axis_name: AxisName) -> Array:
    """Concatenates the shards of a batch across devices along the leading axis.

    ``jax.lax.all_gather(x, axis_name, tiled=True)`` (identity when
    ``axis_name`` is None). Differentiable: its transpose is ``psum_scatter``,
    so each device receives the sum over devices of the cotangents of its own
    rows, which is the single-device gradient when the per-device losses are
    summed with :func:`psum`.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax._parallel import gather_batch
      >>> gather_batch(jnp.ones((2, 3)), None).shape
      (2, 3)
    """
    x = jnp.asarray(x)
    if axis_name is None:
        return x
    return lax.all_gather(x, axis_name, axis=0, tiled=True)


def axis_size(axis_name: AxisName) -> int:
    """Number of devices along ``axis_name`` (1 when None)."""
    if axis_name is None:
        return 1
    return lax.psum(1, axis_name)


def axis_offset(axis_name: AxisName, n_local: int) -> Array | int:
    """Global index of this device's first row: ``axis_index * n_local`` (0 when None)."""
    if axis_name is None:
        return 0
    return lax.axis_index(axis_name) * n_local


# --------------------------------------------------------------------------
# Varying-axis types (shard_map(check_vma=True)) across JAX versions.
# --------------------------------------------------------------------------


def varying_axes(x: Any) -> frozenset:
    """The manual (``shard_map``) mesh axes over which ``x`` varies; empty outside ``shard_map``.

    Reads ``aval.manual_axis_type.varying`` (newer JAX) or ``aval.vma`` (older);
    JAX without varying-axis types gives the empty set.
    """
    typeof = getattr(jax, "typeof", None)
    if typeof is None:
        return frozenset()
    aval = typeof(x)
    mat = getattr(aval, "manual_axis_type", None)
    if mat is not None:
        return frozenset(getattr(mat, "varying", ()) or ())
    mat = getattr(aval, "mat", None)  # an intermediate spelling
    if mat is not None and getattr(mat, "varying", None) is not None:
        return frozenset(mat.varying)
    return frozenset(getattr(aval, "vma", None) or ())


def vma_checked(axis_name: AxisName) -> bool:
    """True inside ``shard_map(check_vma=True)``, where values carry their varying axes in their type."""
    names = axis_names(axis_name)
    return bool(names) and all(n in varying_axes(lax.axis_index(n)) for n in names)


def _cast_varying(x, axes):
    missing = tuple(sorted(a for a in axes if a not in varying_axes(x)))
    return lax.pcast(x, missing, to="varying") if missing else x


def like_inputs(init: Any, *refs: Any) -> Any:
    """Marks new values (loop carries, one-hot cotangents) as varying like ``refs``.

    Inside ``shard_map`` a value created with ``jnp.zeros`` is invariant while
    values computed from the inputs vary over the mesh axes; ``pcast`` aligns
    the types. A no-op outside ``shard_map``.
    """
    axes = frozenset().union(*(varying_axes(r) for r in jax.tree.leaves(refs)))
    if not axes:
        return init
    return jax.tree.map(lambda v: _cast_varying(v, axes), init)


def vary(tree: Any, axis_name: AxisName) -> Any:
    """Marks ``tree`` as varying over ``axis_name`` (so that a gradient of it stays per device).

    A no-op without an axis, under ``pmap`` or ``shard_map(check_vma=False)``,
    where values are per device already.
    """
    if axis_name is None or not vma_checked(axis_name):
        return tree
    names = axis_names(axis_name)
    return jax.tree.map(lambda x: _cast_varying(x, names), tree)


def explicit_sharding(x: Array):
    """``x``'s sharding when it is typed with explicit mesh axes (``jax.set_mesh``), else None."""
    typeof = getattr(jax, "typeof", None)
    sharding = getattr(typeof(x), "sharding", None) if typeof is not None else None
    mesh = getattr(sharding, "mesh", None)
    explicit = getattr(getattr(jax.sharding, "AxisType", None), "Explicit", None)
    if mesh is None or getattr(mesh, "empty", True) or explicit is None:
        return None
    return sharding if explicit in tuple(getattr(mesh, "axis_types", ())) else None


def shard_multiple(size: int, a: Array, total: int) -> int:
    """Rounds a block size up to a multiple of the explicit shards of ``a``'s first axis.

    With explicit mesh axes a ``dynamic_slice`` along a sharded axis must cut
    whole shards.
    """
    sharding = explicit_sharding(a)
    if sharding is None:
        return size
    spec = (*sharding.spec, None)
    axes = spec[0] if isinstance(spec[0], tuple) else (spec[0],)
    shards = math.prod(sharding.mesh.shape[ax] for ax in axes if ax is not None)
    return min(-(-size // shards) * shards, total) if shards > 1 else size


# --------------------------------------------------------------------------
# The data-parallel train step, done right for every kind of loss.
# --------------------------------------------------------------------------


def data_parallel_value_and_grad(fun, argnums: int | Sequence[int] = 0, *, axis_name: AxisName, has_aux: bool = False):
    """``jax.value_and_grad`` for a data-parallel step: the one-device value and gradient of the whole batch.

    Call the returned function inside ``shard_map`` (or ``pmap``) over the
    batch axis ``axis_name``, with the parameters replicated and the batch
    sharded. ``fun`` computes this device's loss with lossjax's ``axis_name``
    support: a batch-level loss called with ``axis_name`` (SupCon, NT-Xent,
    multi-similarity, triplet: the same value on every device), or per-example
    losses reduced with :func:`lossjax.masked_mean` (``axis_name=`` makes it the
    global masked mean, right also when devices hold different numbers of valid
    rows). The helper picks the one correct pattern for the context:

    * ``shard_map`` with varying-axis types (the default): the gradient of
      ``pmean(loss)``. ``shard_map`` already sums the cotangents of replicated
      parameters over devices, so averaging the *gradients* again (the pmap
      habit) would scale per-example losses such as InfoNCE by the device count
      and leave batch-level ones unscaled: silently wrong.
    * ``pmap`` (or ``shard_map(check_vma=False)``): ``pmean`` of the per-device
      gradients.

    Args:
      fun: ``fun(*args) -> loss`` (or ``(loss, aux)`` with ``has_aux``), a scalar per device.
      argnums: which arguments to differentiate (as ``jax.value_and_grad``).
      axis_name: the mapped batch axis.
      has_aux: ``fun`` returns ``(loss, aux)``; ``aux`` is returned as computed on each device.

    Returns:
      A function with ``fun``'s arguments returning ``(value, grads)`` (or
      ``((value, aux), grads)``), identical on every device.

    Example:
      >>> import jax, jax.numpy as jnp, numpy as np, lossjax
      >>> from jax.sharding import Mesh, PartitionSpec as P
      >>> mesh = Mesh(np.array(jax.devices()[:1]), ("d",))
      >>> def loss(w, x):
      ...     return lossjax.masked_mean(jnp.sum((x @ w) ** 2, axis=-1), axis_name="d")
      >>> step = lossjax.data_parallel_value_and_grad(loss, axis_name="d")
      >>> f = jax.shard_map(step, mesh=mesh, in_specs=(P(), P("d")), out_specs=P())
      >>> value, grad = f(jnp.eye(2), jnp.ones((4, 2)))
      >>> float(value), grad.tolist()
      (2.0, [[2.0, 2.0], [2.0, 2.0]])
    """

    def wrapped(*args, **kwargs):
        if vma_checked(axis_name):

            def averaged(*a):
                out = fun(*a, **kwargs)
                if has_aux:
                    return pmean(out[0], axis_name), out[1]
                return pmean(out, axis_name)

            return jax.value_and_grad(averaged, argnums=argnums, has_aux=has_aux)(*args)
        out, grads = jax.value_and_grad(fun, argnums=argnums, has_aux=has_aux)(*args, **kwargs)
        if has_aux:
            return (pmean(out[0], axis_name), out[1]), pmean(grads, axis_name)
        return pmean(out, axis_name), pmean(grads, axis_name)

    return wrapped
