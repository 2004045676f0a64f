"""The aggregator core shared by the multi-task combiners and the loss weightings.

Both families (:mod:`lossjax.transforms._multitask`, :mod:`lossjax.transforms._weighting`)
are :class:`optax.experimental.aggregating.Aggregator` factories with one
``update``: check the m per-loss gradients stacked on a leading axis (and
``num_losses`` when given), average them over ``axis_name`` (data
parallelism: average first, then combine), compute the method's weights ``w``
(often from the ``m x m`` Gram matrix ``G = J J^T``), and return
``sum_i w_i g_i``. That ``update``, the Gram matrix and the weighted sum live
here, once; the family modules only say how ``w`` is computed.

Three guarantees every aggregator gets from here:

- **Any gradient size.** The Gram matrix is formed from the gradients divided
  by a power of two near their largest entry whenever the plain one overflows
  (norms above ~1.8e19 in float32) or underflows (below ~1e-19); the methods
  see ``G / s^2`` and the scale ``s`` (exact; scale-free methods ignore it).
- **A bad step does not poison the state.** When the new state is not all
  finite (non-finite gradients or ``losses=``, an overflow), ``update``
  returns the update it computed (not finite then) and the *previous* state,
  so one NaN step costs one step, not the rest of training.
- **optax.apply_if_finite**: optax's wrapper returns zeros shaped like its
  input, which for an aggregator is the stacked ``[m, ...]`` gradients, not the
  parameters: wrapping an aggregator in it is a ``TypeError`` in ``lax.cond``.
  :func:`apply_if_finite` here is the same wrapper (same arguments, same
  :class:`optax.ApplyIfFiniteState`) with the zero update shaped like the
  *output*; it wraps every lossjax transform, aggregators included.

**Weights and randomness, the same for every aggregator.** Every aggregator's
state is an :class:`AggregatorState`:

- ``state.weights`` (float32 ``[m]``) are the per-loss weights ``w`` of the
  last update, for logging. For the linear methods (all but the ones below)
  the update is exactly ``sum_i w_i g_i`` of the gradients passed to that
  ``update``. Methods that combine something else say so in their docstring:
  M-ConFIG, MoCo and DB-MTL weight their per-loss momenta (not the step's
  gradients); GradDrop and the trimmed mean keep or drop each coordinate, and
  report each loss's per-coordinate weight averaged over the coordinates.
  They are recorded when the factory got ``num_losses`` (zeros before the first
  update); without it the number of losses is only known from the first
  gradients, and since a state keeps its shapes from ``init`` on (``jax.lax.scan``
  over training steps, ``lax.cond``), ``state.weights`` then stays an empty
  ``[0]`` array: pass ``num_losses=m`` to log the weights.
- ``state.key``: randomness is injected, never hidden. ``update(..., key=k)``
  (a PRNG key per call) is accepted by every aggregator and used by the
  randomized ones (PCGrad and GradVac with ``shuffle=True``, GradDrop, RLW);
  the same key gives the same update. Their factories also take ``seed`` (an
  integer): the state then holds a key that is split at every update
  (``state.key``, raw ``uint32[2]``; None without a seed) and used when no
  ``key=`` is passed, so a run is reproducible from its seed alone.
- ``state.inner`` is the method's own state (:class:`optax.EmptyState` for the
  stateless ones; e.g. Nash-MTL's :class:`~lossjax.transforms.NashMTLState`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax.experimental import aggregating

from lossjax import _checks as C
from lossjax import _trees
from lossjax._parallel import like_inputs, pmean

__all__ = ["AggregatorState", "apply_if_finite", "gram_matrix"]

Array = jax.Array

HIGHEST = jax.lax.Precision.HIGHEST

_NEEDS = {"key": "a PRNG key per call, or `seed=` given to the factory"}


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


class ScaledGram(NamedTuple):
    """``G = gram / scale^2`` of the gradients divided by ``scale`` (a power of two; 1 unless needed)."""

    G: Array
    scale: Array


def _scaled_gram(grads: Any, dtype: Any) -> ScaledGram:
    m = num_losses_of("gram_matrix", grads)
    s = _trees.power_of_two_scale(_trees.max_abs(grads, dtype))
    G = jnp.zeros((m, m), dtype)
    for leaf in jax.tree.leaves(grads):
        x = jnp.reshape(jnp.asarray(leaf).astype(dtype) / s.astype(dtype), (m, -1))
        x = jax.lax.optimization_barrier(x)  # XLA must not fold 1/s out of the product (x x^T / s^2 overflows)
        G = G + jax.lax.dot_general(x, x, (((1,), (1,)), ((), ())), precision=HIGHEST, preferred_element_type=dtype)
    return ScaledGram(G, s)


def safe_gram(grads: Any) -> ScaledGram:
    """The Gram matrix without overflow or underflow: ``(G / s^2, s)``.

    The plain :func:`gram_matrix` (``s = 1``) when its trace is finite and
    above :data:`lossjax._trees.SAFE_SQUARED`, else the Gram of ``grads / s``
    with ``s`` the power of two near the largest entry (a :func:`jax.lax.cond`:
    one pass over the gradients in the common case). Scale-free weights
    (ConFIG, IMTL-G, MGDA, PCGrad, Aligned-MTL ...) are the same computed from
    either; the others use ``s``.
    """
    dtype = _trees.compute_dtype(grads)
    G = gram_matrix(grads, dtype=dtype)
    tr = jnp.trace(G)
    safe = jnp.all(jnp.isfinite(G)) & (tr >= _trees.SAFE_SQUARED)
    one = like_inputs(jnp.ones((), dtype), G)  # typed like G inside shard_map (both branches must agree)
    return jax.lax.cond(safe, lambda: ScaledGram(G, one), lambda: _scaled_gram(grads, dtype))


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


class AggregatorState(NamedTuple):
    """The state of every lossjax aggregator: the weights it used, its key and the method's own state.

    Attributes:
      weights: float32 ``[m]``, the per-loss weights of the last update (``update = sum_i weights_i g_i`` for
        the linear methods; see :mod:`lossjax._aggregation`). Zeros before the first update. Recorded when
        the factory got ``num_losses``; without it an empty ``[0]`` array (the state's shapes are fixed at
        ``init``, before the number of losses is known).
      key: raw ``uint32[2]`` PRNG key split at every update when the factory got ``seed``; None otherwise.
      inner: the method's own state (:class:`optax.EmptyState` for stateless methods).
    """

    weights: Array
    key: Array | None
    inner: Any


def check_seed(fn: str, seed: Any) -> int | None:
    """Validates a factory's ``seed``: None or an integer >= 0."""
    if seed is None:
        return None
    C.check_int(fn, "seed", seed, 0, static=True)
    return int(seed)


def aggregator(
    fn: str,
    step: Callable[[Any, int, Any, dict], tuple[Any, Array, Any]],
    *,
    num_losses: int | None = None,
    axis_name: Any = None,
    init: Callable[[Any], Any] | None = None,
    requires: tuple[str, ...] = (),
    seed: int | None = None,
) -> aggregating.Aggregator:
    """The one ``update`` of every combiner and weighting.

    ``update(updates, state, params=None, **extra)`` checks the stacked
    per-loss gradients (every leaf ``[m, ...]``, float, one ``m``; equal to
    ``num_losses`` when given), resolves ``key`` (the per-call ``key=``, else a
    split of the state's key when the factory got ``seed``), checks the extra
    arguments in ``requires``, averages the gradients over ``axis_name`` and
    calls ``step(updates, m, inner_state, extra) -> (update, weights, new_inner_state)``.
    ``init(params)`` builds the method's state (default :class:`optax.EmptyState`);
    the aggregator's state is an :class:`AggregatorState` around it. A new state
    that is not all finite (from non-finite gradients or ``losses=``, or an
    overflow) is replaced by the previous one (:func:`lossjax._trees.keep_if_finite`);
    the update is returned as computed.
    """
    seed = check_seed(fn, seed)

    def init_fn(params):
        inner = optax.EmptyState() if init is None else init(params)
        m0 = 0 if num_losses is None else num_losses
        key = None if seed is None else jax.random.PRNGKey(seed)
        return AggregatorState(jnp.zeros((m0,), jnp.float32), key, inner)

    def update_fn(updates, state, params=None, **extra):
        del params
        m = num_losses_of(fn, updates)
        if num_losses is not None and m != num_losses:
            raise ValueError(f"{fn}: built for num_losses={num_losses}, got gradients of {m} losses.")
        if not isinstance(state, AggregatorState):
            raise TypeError(f"{fn}: `state` must be the AggregatorState from this aggregator's init, got {state!r}.")
        extra = dict(extra)
        key = state.key
        if extra.get("key") is None and state.key is not None:
            key, extra["key"] = jax.random.split(state.key)
        for name in requires:
            if extra.get(name) is None:
                raise ValueError(f"{fn}: `update` needs `{name}=` ({_NEEDS.get(name, 'an array')}).")
        out, w, inner = step(pmean(updates, axis_name), m, state.inner, extra)
        w = jnp.reshape(jnp.asarray(w), (m,)).astype(jnp.float32)
        if num_losses is None:  # the state keeps its init shapes (lax.scan, lax.cond): no room for m weights
            w = state.weights
        return out, _trees.keep_if_finite(AggregatorState(w, key, inner), state)

    return aggregating.Aggregator(init_fn, update_fn)


def cross_gram(updates_a: Any, updates_b: Any) -> Array:
    """``A_ij = <a_i, b_j>`` of two stacked per-loss gradient trees (two independent batches), float32 or wider."""
    m = num_losses_of("cross_gram", updates_a)
    dtype = _trees.compute_dtype(updates_a)
    A = jnp.zeros((m, m), dtype)
    for la, lb in zip(jax.tree.leaves(updates_a), jax.tree.leaves(updates_b), strict=True):
        xa = jnp.reshape(jnp.asarray(la).astype(dtype), (m, -1))
        xb = jnp.reshape(jnp.asarray(lb).astype(dtype), (m, -1))
        A = A + jax.lax.dot_general(xa, xb, (((1,), (1,)), ((), ())), precision=HIGHEST, preferred_element_type=dtype)
    return A


def gram_aggregator(
    fn: str, weights_fn: Callable[[ScaledGram, int, Any, dict], tuple[Array, Any]], **kwargs: Any
) -> aggregating.Aggregator:
    """An :func:`aggregator` whose weights come from the Gram matrix.

    ``weights_fn(gram, m, state, extra) -> (w, new_state)`` with ``gram`` a
    :class:`ScaledGram` (:func:`safe_gram`); the update is ``sum_i w_i g_i`` and ``w`` goes to
    ``state.weights``.
    """

    def step(updates, m, state, extra):
        w, new_state = weights_fn(safe_gram(updates), m, state, extra)
        return combine(updates, w), w, new_state

    return aggregator(fn, step, **kwargs)


def apply_if_finite(inner: Any, max_consecutive_errors: int) -> Any:
    r"""``optax.apply_if_finite`` for every transform, aggregators included: skip a step with non-finite gradients.

    .. math::
        \text{finite}(g):\ (u, s) = \text{inner.update}(g, s),\qquad
        \text{otherwise}:\ (u, s) = (0, s)\ \text{(unless more than max\_consecutive\_errors in a row)}

    The same wrapper as :func:`optax.apply_if_finite` (same arguments, same
    :class:`optax.ApplyIfFiniteState`, same counting) except that the zero
    update of a rejected step has the shape of the inner transform's *output*
    (found with :func:`jax.eval_shape`). optax's returns zeros shaped like its
    input, which an aggregator (input ``[m, ...]`` per-loss gradients, output
    one update shaped like the parameters) cannot return: ``TypeError`` in
    ``lax.cond``. For transforms whose output has the input's shape (the SAM
    family, optax's optimizers) both wrappers give the same result. Put it
    around the whole chain, aggregator first::

        tx = lossjax.transforms.apply_if_finite(optax.chain(lossjax.transforms.config(), optax.adam(1e-3)), 5)

    Args:
      inner: an optax transformation or aggregator (extra arguments are passed through).
      max_consecutive_errors: how many non-finite steps in a row are skipped before one is applied anyway.

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with :class:`optax.ApplyIfFiniteState`.

    Paper: none (a drop-in for ``optax.apply_if_finite``).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.apply_if_finite(lossjax.transforms.config(), 3)
      >>> state = tx.init({"w": jnp.zeros(2)})
      >>> upd, state = tx.update({"w": jnp.array([[1.0, jnp.nan], [0.0, 1.0]])}, state)
      >>> upd["w"], int(state.total_notfinite)
      (Array([0., 0.], dtype=float32), 1)
    """
    C.check_int("apply_if_finite", "max_consecutive_errors", max_consecutive_errors, 0)
    inner = optax.with_extra_args_support(inner)

    def init(params):
        return optax.ApplyIfFiniteState(
            notfinite_count=jnp.zeros([], jnp.int32),
            last_finite=jnp.array(True, jnp.bool_),
            total_notfinite=jnp.zeros([], jnp.int32),
            inner_state=inner.init(params),
        )

    def update(updates, state, params=None, **extra_args):
        isfinite = _trees.all_finite(updates)
        notfinite_count = jnp.where(isfinite, jnp.zeros([], jnp.int32), optax.safe_increment(state.notfinite_count))

        def do_update(_):
            return inner.update(updates, state.inner_state, params, **extra_args)

        out_shape = jax.eval_shape(do_update, None)

        def reject_update(_):
            zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), out_shape[0])
            return zeros, state.inner_state

        out, new_inner = jax.lax.cond(
            isfinite | (notfinite_count > max_consecutive_errors), do_update, reject_update, None
        )
        return out, optax.ApplyIfFiniteState(
            notfinite_count=notfinite_count,
            last_finite=isfinite,
            total_notfinite=jnp.where(isfinite, state.total_notfinite, optax.safe_increment(state.total_notfinite)),
            inner_state=new_inner,
        )

    return optax.GradientTransformationExtraArgs(init, update)
