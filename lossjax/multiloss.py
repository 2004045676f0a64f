"""Per-loss gradients: m losses and their m gradients stacked on a leading axis.

Three shapes of problem, three functions; each returns what the combiners of
:mod:`lossjax.transforms` (ConFIG, PCGrad, MGDA, uncertainty weighting ...)
take: per-loss gradients stacked on axis 0.

- :func:`per_loss_value_and_grad`: ONE function returning a vector of m
  losses on a shared batch (one model, m heads or m terms). One forward pass:
  one ``jax.vjp``, then ``vmap`` over the m one-hot cotangents, i.e. one
  forward plus m backward passes.
- :func:`separate_value_and_grad`: m loss callables, each with its own
  inputs (a PINN's boundary, initial and residual points). m independent
  gradients: the same FLOPs as the gradient of the summed loss, never the
  Jacobian of a stacked vector (which would push every batch through every
  backward pass).
- :func:`rep_value_and_grad`: the cheaper variant for a model split into a
  trunk and heads: per-loss gradients with respect to the shared
  representation (LibMTL's ``rep_grad``, torchjd's ``mtl_backward``); the
  combined representation gradient then goes back through the trunk once.

Under data parallelism pass ``axis_name``: the losses and per-loss gradients
returned are those of the whole batch, so a combiner sees what one device
holding the whole batch would (combine AFTER averaging: ConFIG of averages is
not the average of ConFIGs). Two ways to write the per-device loss vector:

- per-device means of equal-sized shards: the losses are averaged over
  devices (each device weighs the same);
- **uneven or padded shards** (``where`` masks with different numbers of
  valid rows per device): reduce with the *global* masked mean,
  ``lossjax.masked_mean(per_example, where, axis=0, axis_name=...)``, so the
  loss already is the whole batch's (the same on every device). Averaging
  per-device masked means instead weighs a device with 1 valid row like one
  with 100: a wrong update (31-44% off in the audit of issue 19).

Either way, call the function inside ``shard_map`` with the parameters
replicated (or marked varying with ``jax.lax.pcast``) or inside ``pmap``; it
picks the reduction that gives the whole batch's gradients: under
``shard_map`` with varying-axis types it differentiates the device-averaged
loss (a per-device loss vector is ``pmean``-ed first) and sums the per-device
parts of gradients that are still per device; under ``pmap`` (no axis types)
it averages losses and gradients with ``pmean``. The combiner then needs no
``axis_name`` of its own. Pass the combiner's ``axis_name`` instead only when
it receives per-device gradients of per-device means of equal shards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from lossjax import _checks as C
from lossjax import _trees
from lossjax._parallel import axis_names, like_inputs, pmean, psum, varying_axes, vma_checked

__all__ = ["RepGrads", "per_loss_value_and_grad", "rep_value_and_grad", "separate_value_and_grad"]

Array = jax.Array


def _argnums(fn: str, argnums, nargs: int) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums:
        raise ValueError(f"{fn}: `argnums` must name at least one positional argument, got {argnums!r}.")
    for a in nums:
        C.check_int(fn, "argnums", a)
        if not -nargs <= a < nargs:
            raise ValueError(f"{fn}: `argnums` entry {a!r} is not a positional argument index (got {nargs} arguments).")
    return tuple(a % nargs for a in nums)


def _check_vector(fn: str, losses: Any) -> Array:
    if not hasattr(losses, "shape") or jnp.ndim(losses) != 1:
        shape = getattr(losses, "shape", type(losses).__name__)
        raise ValueError(f"{fn}: the loss function must return a vector of m losses (rank 1), got shape {shape}.")
    if not jnp.issubdtype(losses.dtype, jnp.floating):
        raise TypeError(f"{fn}: the loss function must return floats, got {losses.dtype}.")
    return losses


def _device_average(losses: Array, axis_name) -> Array:
    """Under ``shard_map`` typing: a per-device loss vector is averaged over devices (a global one is kept)."""
    if set(axis_names(axis_name)) & varying_axes(losses):
        return pmean(losses, axis_name)
    return losses


def _whole_batch_grads(grads: Any, axis_name) -> Any:
    """Under ``shard_map`` typing: per-device parts of the gradient of a device-averaged loss are summed."""
    names = set(axis_names(axis_name))
    return jax.tree.map(lambda g: psum(g, axis_name) if names & varying_axes(g) else g, grads)


def _cotangents(losses: Array) -> Array:
    """The m one-hot cotangents, varying over the same mapped axes as ``losses`` (inside shard_map)."""
    return like_inputs(jnp.eye(losses.shape[0], dtype=losses.dtype), losses)


def per_loss_value_and_grad(
    fun: Callable[..., Any],
    argnums: int | Sequence[int] = 0,
    *,
    has_aux: bool = False,
    axis_name: str | None = None,
    batched: bool = True,
) -> Callable[..., tuple[Any, Any]]:
    r"""Like ``jax.value_and_grad`` for a function returning m losses: values ``[m]`` and stacked gradients.

    .. math::
        \text{grads}_i = \nabla_\theta L_i(\theta),\quad i = 1..m,\qquad
        \text{computed as } \mathrm{vmap}_i\ \mathrm{vjp}(e_i)

    One forward pass (``jax.vjp``) and one backward per loss (``vmap`` over
    the rows of the identity). Every gradient leaf gets a leading axis of size m.

    Args:
      fun: ``fun(*args, **kwargs) -> losses [m]`` (or ``(losses, aux)`` with ``has_aux``).
      argnums: which positional argument(s) to differentiate.
      has_aux: ``fun`` returns ``(losses, aux)``.
      axis_name: the mapped batch axis: return the whole batch's losses and gradients (module docstring).
      batched: ``vmap`` the m backward passes (one batched backward, default);
        ``False`` calls the pullback m times on the same forward residuals
        (smaller matmuls, can be faster on CPU; same FLOPs).

    Returns:
      A function returning ``(losses, grads)`` or ``((losses, aux), grads)``;
      ``grads`` has the structure of the differentiated argument(s), each leaf
      with a leading axis of size m.

    Paper: none (a helper: the rows of the Jacobian as ``jax.jacrev`` computes them, one forward pass;
    torchjd's ``backward``/LibMTL's per-task gradients in JAX form).

    Example:
      >>> import jax.numpy as jnp, lossjax.multiloss as ml
      >>> f = lambda w: jnp.stack([jnp.sum(w ** 2), jnp.sum(3.0 * w)])
      >>> losses, grads = ml.per_loss_value_and_grad(f)(jnp.array([1.0, 2.0]))
      >>> grads
      Array([[2., 4.],
             [3., 3.]], dtype=float32)
    """
    fn = "per_loss_value_and_grad"

    def wrapped(*args, **kwargs):
        nums = _argnums(fn, argnums, len(args))
        typed = axis_name is not None and vma_checked(axis_name)

        def f(*diff):
            full = list(args)
            for i, d in zip(nums, diff, strict=True):
                full[i] = d
            out = fun(*full, **kwargs)
            if not typed:
                return out
            if has_aux:
                return _device_average(out[0], axis_name), out[1]
            return _device_average(out, axis_name)

        primals = tuple(args[i] for i in nums)
        if has_aux:
            losses, vjp, aux = jax.vjp(f, *primals, has_aux=True)
        else:
            losses, vjp = jax.vjp(f, *primals)
        losses = _check_vector(fn, losses)
        cts = _cotangents(losses)
        if batched:
            grads = jax.vmap(vjp)(cts)
        else:
            rows = [vjp(cts[i]) for i in range(losses.shape[0])]
            grads = _trees.stack(rows)
        grads = grads[0] if isinstance(argnums, int) else grads
        if typed:
            grads = _whole_batch_grads(grads, axis_name)
        else:
            losses, grads = pmean((losses, grads), axis_name)
        return ((losses, aux) if has_aux else losses), grads

    return wrapped


def separate_value_and_grad(
    funs: Sequence[Callable[..., Any]],
    *,
    has_aux: bool = False,
    axis_name: str | None = None,
) -> Callable[..., tuple[Any, Any]]:
    r"""m loss callables with their own inputs: values ``[m]`` and the m gradients stacked.

    .. math::
        L_i = f_i(\theta, x_i),\qquad \text{grads}_i = \nabla_\theta f_i(\theta, x_i),\quad i = 1..m

    ``funs[i](params, *inputs[i])`` returns a scalar (or ``(scalar, aux)``);
    each gradient is a separate ``jax.value_and_grad`` over its own inputs
    only, so the total cost is that of one gradient of the summed loss.

    Args:
      funs: m callables ``f_i(params, *inputs_i) -> scalar``.
      has_aux: each ``f_i`` returns ``(scalar, aux_i)``.
      axis_name: the mapped batch axis: return the whole batch's losses and gradients (module docstring).

    Returns:
      ``g(params, *inputs) -> (losses, grads)`` (``((losses, auxes), grads)``
      with ``has_aux``), where ``inputs`` are m tuples of arguments, one per
      callable, and every leaf of ``grads`` has a leading axis m.

    Paper: none (a helper; the per-condition gradients of a PINN as ConFIG uses them,
    arXiv:2408.11104).

    Example:
      >>> import jax.numpy as jnp, lossjax.multiloss as ml
      >>> boundary = lambda w, x: jnp.mean((x @ w) ** 2)
      >>> residual = lambda w, x, y: jnp.mean((x @ w - y) ** 2)
      >>> g = ml.separate_value_and_grad([boundary, residual])
      >>> w = jnp.array([1.0, 0.0])
      >>> losses, grads = g(w, (jnp.eye(2),), (jnp.eye(2), jnp.ones(2)))
      >>> losses
      Array([0.5, 0.5], dtype=float32)
      >>> grads.shape
      (2, 2)
    """
    fn = "separate_value_and_grad"
    funs = tuple(funs)
    if not funs or not all(callable(f) for f in funs):
        raise ValueError(f"{fn}: `funs` must be a non-empty sequence of callables, got {funs!r}.")

    def wrapped(params, *inputs):
        typed = axis_name is not None and vma_checked(axis_name)
        if len(inputs) != len(funs):
            raise ValueError(
                f"{fn}: got {len(inputs)} input tuples for {len(funs)} loss callables; pass one tuple per callable."
            )
        values, grads, auxes = [], [], []
        for i, (f, inp) in enumerate(zip(funs, inputs, strict=True)):
            inp = inp if isinstance(inp, tuple) else (inp,)
            shape = jax.eval_shape(f, params, *inp)
            shape = shape[0] if has_aux else shape
            if getattr(shape, "shape", None) != ():
                got = getattr(shape, "shape", type(shape).__name__)
                raise ValueError(f"{fn}: loss callable {i} must return a scalar, got shape {got}.")
            if typed:
                f = _averaged(f, has_aux, axis_name)
            out, g = jax.value_and_grad(f, has_aux=has_aux)(params, *inp)
            v, aux = out if has_aux else (out, None)
            values.append(v)
            grads.append(g)
            auxes.append(aux)
        dtype = jnp.result_type(*values)
        losses = jnp.stack([jnp.asarray(v, dtype) for v in values])
        stacked = _trees.stack(grads)
        if typed:
            stacked = _whole_batch_grads(stacked, axis_name)
        else:
            losses, stacked = pmean((losses, stacked), axis_name)
        return ((losses, tuple(auxes)) if has_aux else losses), stacked

    return wrapped


def _averaged(f: Callable[..., Any], has_aux: bool, axis_name) -> Callable[..., Any]:
    def g(*a):
        out = f(*a)
        return (_device_average(out[0], axis_name), out[1]) if has_aux else _device_average(out, axis_name)

    return g


class RepGrads(NamedTuple):
    """What :func:`rep_value_and_grad` returns.

    Attributes:
      losses: the m losses ``[m]``.
      aux: the heads' auxiliary output (None without ``has_aux``).
      rep_grads: per-loss gradients with respect to the representation, ``[m, *rep.shape]``.
      head_grads: gradient of the summed losses with respect to the head parameters
        (each head only affects its own loss, so this is every head's own gradient).
      trunk_vjp: the trunk's pullback: ``trunk_vjp(rep_update)[0]`` is the trunk
        parameters' gradient for a combined representation gradient.
    """

    losses: Array
    aux: Any
    rep_grads: Any
    head_grads: Any
    trunk_vjp: Callable[[Any], tuple[Any]]

    def trunk_grads(self, rep_update: Any) -> Any:
        """Back-propagates a combined representation gradient through the trunk (one backward pass)."""
        return self.trunk_vjp(rep_update)[0]


def rep_value_and_grad(
    trunk: Callable[..., Any],
    heads: Callable[..., Any],
    *,
    has_aux: bool = False,
) -> Callable[..., RepGrads]:
    r"""Per-loss gradients with respect to a shared representation (trunk / heads split).

    .. math::
        z = \text{trunk}(\theta_t, x),\quad L = \text{heads}(\theta_h, z) \in \mathbb R^m,\qquad
        \text{rep\_grads}_i = \frac{\partial L_i}{\partial z},\quad
        \nabla_{\theta_t} = \Big(\frac{\partial z}{\partial \theta_t}\Big)^\top \text{combined}

    One trunk forward, one heads forward, m backward passes through the heads
    only; the per-loss gradients are taken with respect to ``rep``
    (``[m, *rep.shape]``), to be combined by any aggregator, and the combined
    gradient goes back through the trunk once with :meth:`RepGrads.trunk_grads`.
    The pullback is a ``jax.tree_util.Partial``, so the result may leave a
    ``jax.jit``. Representations are per example, so under data parallelism
    combine each device's representation gradients locally and average the
    trunk gradients.

    Args:
      trunk: ``trunk(trunk_params, *trunk_inputs) -> rep``, the shared part of the model.
      heads: ``heads(head_params, rep, *head_inputs) -> losses [m]`` (or ``(losses, aux)`` with ``has_aux``).
      has_aux: ``heads`` returns ``(losses, aux)``.

    Returns:
      A function ``(trunk_params, head_params, trunk_inputs=(), head_inputs=()) -> RepGrads``
      (``trunk_inputs`` and ``head_inputs`` are tuples, or one argument each).

    Paper: Sener, Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018,
    arXiv:1810.04650 (MGDA-UB: gradients with respect to the shared representation).

    Example:
      >>> import jax.numpy as jnp, lossjax, lossjax.multiloss as ml
      >>> trunk = lambda W, x: x @ W
      >>> heads = lambda H, r, y: jnp.stack([jnp.mean((r @ H[0] - y) ** 2), jnp.mean((r @ H[1]) ** 2)])
      >>> W, H = jnp.eye(2), jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> out = ml.rep_value_and_grad(trunk, heads)(W, H, (jnp.eye(2),), (jnp.ones(2),))
      >>> out.rep_grads.shape
      (2, 2, 2)
      >>> tx = lossjax.transforms.equal_weight()
      >>> combined, _ = tx.update(out.rep_grads, tx.init(None))
      >>> out.trunk_grads(combined).shape
      (2, 2)
    """
    fn = "rep_value_and_grad"

    def wrapped(trunk_params, head_params, trunk_inputs=(), head_inputs=()):
        trunk_inputs = trunk_inputs if isinstance(trunk_inputs, tuple) else (trunk_inputs,)
        head_inputs = head_inputs if isinstance(head_inputs, tuple) else (head_inputs,)
        rep, trunk_vjp = jax.vjp(lambda p: trunk(p, *trunk_inputs), trunk_params)

        def h(hp, r):
            return heads(hp, r, *head_inputs)

        if has_aux:
            losses, heads_vjp, aux = jax.vjp(h, head_params, rep, has_aux=True)
        else:
            (losses, heads_vjp), aux = jax.vjp(h, head_params, rep), None
        losses = _check_vector(fn, losses)
        head_grads, rep_grads = jax.vmap(heads_vjp)(_cotangents(losses))
        head_grads = jax.tree.map(lambda g: jnp.sum(g, 0), head_grads)
        return RepGrads(losses, aux, rep_grads, head_grads, trunk_vjp)

    return wrapped
