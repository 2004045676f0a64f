"""The aggregator core shared by the multi-task combiners and the loss weightings.

Both families (:mod:`lossjax.transforms._multitask`, :mod:`lossjax.transforms._weighting`)
are :class:`optax.experimental.aggregating.Aggregator` factories with one
``update``: check the m per-loss gradients stacked on a leading axis (and
``num_losses`` when given), average them over ``axis_name`` (data
parallelism: average first, then combine), compute the method's weights ``w``
(often from the ``m x m`` Gram matrix ``G = J J^T``), and return
``sum_i w_i g_i``. That ``update``, the Gram matrix and the weighted sum live
here, once; the family modules only say how ``w`` is computed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax.experimental import aggregating

from lossjax import _checks as C
from lossjax import _trees
from lossjax._parallel import pmean

__all__ = ["gram_matrix"]

Array = jax.Array

HIGHEST = jax.lax.Precision.HIGHEST

_NEEDS = {"key": "a PRNG key"}


def num_losses_of(fn: str, grads: Any) -> int:
    """The number m of losses carried on the leading axis of every leaf of ``grads`` (checked)."""
    leaves = jax.tree.leaves(grads)
    if not leaves:
        raise ValueError(f"{fn}: `updates` must be a non-empty pytree of per-loss gradients, got {grads!r}.")
    ms = set()
    for leaf in leaves:
        leaf = jnp.asarray(leaf)
        if leaf.ndim < 1:
            raise ValueError(
                f"{fn}: every leaf of `updates` must carry the m losses on a leading axis "
                f"([m, *param_shape]), got a leaf of shape {leaf.shape}."
            )
        if not jnp.issubdtype(leaf.dtype, jnp.floating):
            raise TypeError(f"{fn}: `updates` must have float leaves, got {leaf.dtype} (shape {leaf.shape}).")
        ms.add(leaf.shape[0])
    if len(ms) != 1:
        raise ValueError(
            f"{fn}: every leaf of `updates` must have the same leading (loss) axis, got sizes {sorted(ms)}."
        )
    return ms.pop()


def check_num_losses(fn: str, num_losses: Any, *, required: bool) -> int | None:
    """Validates a factory's ``num_losses``: an integer >= 1, or None where the state does not depend on it."""
    if num_losses is None:
        if required:
            raise ValueError(
                f"{fn}: `num_losses` is required (the state holds one entry per loss): pass an integer >= 1, got None."
            )
        return None
    C.check_int(fn, "num_losses", num_losses, 1, static=True)
    return int(num_losses)


def check_length(fn: str, arg: str, values: Any, num_losses: int | None) -> None:
    """Raises unless a per-loss sequence has one entry per loss (when the number of losses is known)."""
    if values is not None and num_losses is not None and len(values) != num_losses:
        raise ValueError(f"{fn}: `{arg}` has {len(values)} entries but there are {num_losses} losses.")


def gram_matrix(grads: Any, *, dtype: Any = None) -> Array:
    r"""The ``m x m`` Gram matrix ``G_ij = <g_i, g_j>`` of per-loss gradients stacked on axis 0.

    .. math::
        G = \sum_{\text{leaves } \ell} L_\ell L_\ell^\top,\qquad L_\ell = \mathrm{reshape}(g_\ell, [m, -1])

    One pass over the stacked gradients, computed at ``Precision.HIGHEST``
    with a float32 (or float64 under x64 for float64 leaves) accumulator.

    Args:
      grads: pytree of leaves ``[m, *shape]``.
      dtype: accumulation dtype (default: float32 for half precision, else the leaves' dtype).

    Returns:
      ``G``, shape ``[m, m]``.

    Paper: none (a helper of every Gram-matrix combiner; e.g. ConFIG, arXiv:2408.11104, and
    torchjd's Gramian-based aggregators).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> g = {"w": jnp.array([[1.0, 0.0], [1.0, 1.0]])}
      >>> lossjax.transforms.gram_matrix(g)
      Array([[1., 1.],
             [1., 2.]], dtype=float32)
    """
    m = num_losses_of("gram_matrix", grads)
    dtype = _trees.compute_dtype(grads) if dtype is None else jnp.dtype(dtype)
    G = jnp.zeros((m, m), dtype)
    for leaf in jax.tree.leaves(grads):
        x = jnp.reshape(jnp.asarray(leaf), (m, -1))
        G = G + jax.lax.dot_general(x, x, (((1,), (1,)), ((), ())), precision=HIGHEST, preferred_element_type=dtype)
    return G


def combine(grads: Any, w: Array) -> Any:
    """``sum_i w_i g_i`` leaf by leaf, in each leaf's own dtype (accumulated in float32 for halves)."""

    def one(leaf):
        leaf = jnp.asarray(leaf)
        acc = C.compute_dtype(leaf)
        out = jax.lax.dot_general(
            w.astype(acc) if leaf.dtype == acc else w.astype(leaf.dtype),
            leaf,
            (((0,), (0,)), ((), ())),
            precision=HIGHEST,
            preferred_element_type=acc,
        )
        return out.astype(leaf.dtype)

    return jax.tree.map(one, grads)


def sample_grads(rng: np.random.Generator) -> tuple[dict, dict]:
    """The conformance samples' inputs of both families: a two-leaf model and 3 losses' stacked gradients."""
    params = {"w": np.zeros((3, 2), np.float32), "b": np.zeros((2,), np.float32)}
    updates = {"w": rng.normal(size=(3, 3, 2)).astype(np.float32), "b": rng.normal(size=(3, 2)).astype(np.float32)}
    return params, updates


def aggregator(
    fn: str,
    step: Callable[[Any, int, Any, dict], tuple[Any, Any]],
    *,
    num_losses: int | None = None,
    axis_name: Any = None,
    init: Callable[[Any], Any] | None = None,
    requires: tuple[str, ...] = (),
) -> aggregating.Aggregator:
    """The one ``update`` of every combiner and weighting.

    ``update(updates, state, params=None, **extra)`` checks the stacked
    per-loss gradients (every leaf ``[m, ...]``, float, one ``m``; equal to
    ``num_losses`` when given), checks the extra arguments in ``requires``,
    averages the gradients over ``axis_name`` and returns
    ``step(updates, m, state, extra) -> (update, new_state)``. ``init(params)``
    builds the state (default :class:`optax.EmptyState`).
    """

    def init_fn(params):
        return optax.EmptyState() if init is None else init(params)

    def update_fn(updates, state, params=None, **extra):
        del params
        m = num_losses_of(fn, updates)
        if num_losses is not None and m != num_losses:
            raise ValueError(f"{fn}: built for num_losses={num_losses}, got gradients of {m} losses.")
        for name in requires:
            if extra.get(name) is None:
                raise ValueError(f"{fn}: `update` needs `{name}=` ({_NEEDS.get(name, 'an array')}).")
        return step(pmean(updates, axis_name), m, state, extra)

    return aggregating.Aggregator(init_fn, update_fn)


def gram_aggregator(
    fn: str, weights_fn: Callable[[Array, int, Any, dict], tuple[Array, Any]], **kwargs: Any
) -> aggregating.Aggregator:
    """An :func:`aggregator` whose weights come from the Gram matrix.

    ``weights_fn(G, m, state, extra) -> (w, new_state)``; the update is ``sum_i w_i g_i``.
    """

    def step(updates, m, state, extra):
        w, new_state = weights_fn(gram_matrix(updates), m, state, extra)
        return combine(updates, w), new_state

    return aggregator(fn, step, **kwargs)
