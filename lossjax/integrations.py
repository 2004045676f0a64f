"""One-line use of lossjax's transforms with Flax NNX, Flax Linen and Equinox.

The SAM family (``lossjax.transforms.sam`` ...) needs the extra update argument
``grad_fn(params) -> gradients`` with the structure of the parameters the
optimizer sees; the multi-loss transforms need ``losses`` / ``key``
(``lossjax describe NAME`` lists them). These helpers build ``grad_fn`` from a
model and a loss, and forward extra arguments where a framework does not:

* Flax NNX: :func:`nnx_grad_fn` (for ``nnx.Optimizer.update(model, grads, grad_fn=...)``)
  and :func:`nnx_sam_value_and_grad` (a drop-in for ``nnx.value_and_grad``);
  modules with RNG streams (Dropout) and BatchNorm work: only ``nnx.Param`` is
  differentiated, and the perturbed pass runs on a copy (its statistics and RNG
  advances are discarded; the first pass's are kept);
* Flax Linen: :func:`linen_apply_gradients` (``TrainState.apply_gradients`` that forwards ``grad_fn``);
* Equinox: :func:`equinox_grad_fn`.

Flax and Equinox are imported inside the functions: ``import lossjax`` never needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax

__all__ = ["equinox_grad_fn", "linen_apply_gradients", "nnx_grad_fn", "nnx_sam_value_and_grad"]


def _loss_only(out: Any, has_aux: bool) -> Any:
    return out[0] if has_aux else out


def nnx_grad_fn(
    model: Any, loss_fn: Callable[..., Any], *args: Any, has_aux: bool = False, wrt: Any = None, **kwargs: Any
) -> Callable[[Any], Any]:
    """The ``grad_fn`` a SAM transform needs, from a Flax NNX module and a loss.

    ``grad_fn(params)`` evaluates ``loss_fn(model', *args, **kwargs)`` on a copy
    ``model'`` of ``model`` holding ``params`` and returns its gradient with the
    structure of ``params`` (what ``nnx.Optimizer`` passes to the transform: the
    pure parameter state, not an ``nnx.State`` of Variables). Only ``wrt``
    (default ``nnx.Param``) is differentiated, so RNG keys (Dropout) never meet
    ``jax.grad``; the copy's BatchNorm statistics and RNG counters are
    discarded, so ``model`` keeps those of the first pass.

    Args:
      model: the ``nnx.Module`` (its current state is captured: call this after the first gradient).
      loss_fn: ``loss_fn(model, *args, **kwargs) -> loss`` (or ``(loss, aux)`` with ``has_aux``).
      *args: the batch (as for ``loss_fn``).
      has_aux: ``loss_fn`` returns ``(loss, aux)``; aux is dropped.
      wrt: the differentiated variables (an NNX filter; default ``nnx.Param``, as ``nnx.Optimizer``).
      **kwargs: more arguments of ``loss_fn``.

    Returns:
      ``grad_fn(params) -> gradients``.

    Example:
      >>> import jax.numpy as jnp, optax, lossjax
      >>> from flax import nnx
      >>> from lossjax.integrations import nnx_grad_fn
      >>> model = nnx.Sequential(nnx.Linear(3, 4, rngs=nnx.Rngs(0)), nnx.Dropout(0.1, rngs=nnx.Rngs(1)),
      ...                        nnx.Linear(4, 1, rngs=nnx.Rngs(2)))
      >>> opt = nnx.Optimizer(model, optax.chain(lossjax.transforms.sam(rho=0.05), optax.sgd(0.1)), wrt=nnx.Param)
      >>> loss_fn = lambda m, x, y: jnp.mean((m(x)[:, 0] - y) ** 2)
      >>> x, y = jnp.ones((2, 3)), jnp.zeros(2)
      >>> grads = nnx.grad(loss_fn)(model, x, y)
      >>> _ = opt.update(model, grads, grad_fn=nnx_grad_fn(model, loss_fn, x, y))
      >>> int(opt.step[...])
      1
    """
    from flax import nnx

    wrt = nnx.Param if wrt is None else wrt
    graphdef, _, rest = nnx.split(model, wrt, ...)
    rest = nnx.as_pure(rest)  # plain arrays: a fresh copy of the RNG/BatchNorm variables at each trace

    def loss_of(params):
        return _loss_only(loss_fn(nnx.merge(graphdef, params, rest), *args, **kwargs), has_aux)

    def grad_fn(params):
        return jax.grad(loss_of)(params)

    return grad_fn


def nnx_sam_value_and_grad(
    loss_fn: Callable[..., Any],
    *,
    rho: float = 0.05,
    has_aux: bool = False,
    epsilon: float = 1e-12,
    wrt: Any = None,
) -> Callable[..., tuple[Any, Any]]:
    r"""Drop-in for ``nnx.value_and_grad(loss_fn)`` returning the sharpness-aware gradient of an NNX module.

    .. math::
        (L(w), \nabla L(w + e)),\qquad e = \rho\,\frac{\nabla L(w)}{\|\nabla L(w)\|_2 + \epsilon}

    The value, aux, BatchNorm statistics and RNG advances come from the first
    pass at ``w`` (written back to the module, as ``nnx.value_and_grad``
    would); the pass at ``w + e`` runs on a copy with the same RNG state (the
    same Dropout mask) and contributes only its gradient. Works with modules
    carrying RNG streams and BatchNorm (``lossjax.transforms.sam_value_and_grad``
    is for plain parameter pytrees).

    Args:
      loss_fn: ``loss_fn(model, *args, **kwargs) -> loss`` (or ``(loss, aux)`` with ``has_aux``).
      rho: neighbourhood radius (as ``lossjax.transforms.sam``).
      has_aux: ``loss_fn`` returns ``(loss, aux)``.
      epsilon: added to the gradient norm.
      wrt: the differentiated variables (default ``nnx.Param``).

    Returns:
      ``f(model, *args, **kwargs) -> (value, grads)`` with ``grads`` an ``nnx.State`` like ``nnx.grad``'s.

    Paper: Foret, Kleiner, Mobahi, Neyshabur, "Sharpness-Aware Minimization for
    Efficiently Improving Generalization", ICLR 2021, arXiv:2010.01412.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from flax import nnx
      >>> from lossjax.integrations import nnx_sam_value_and_grad
      >>> model = nnx.Sequential(nnx.Linear(3, 4, rngs=nnx.Rngs(0)), nnx.Dropout(0.5, rngs=nnx.Rngs(1)),
      ...                        nnx.Linear(4, 1, rngs=nnx.Rngs(2)))
      >>> opt = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
      >>> loss_fn = lambda m, x, y: jnp.mean((m(x)[:, 0] - y) ** 2)
      >>> loss, grads = nnx_sam_value_and_grad(loss_fn, rho=0.05)(model, jnp.ones((2, 3)), jnp.zeros(2))
      >>> _ = opt.update(model, grads)
      >>> bool(jnp.isfinite(loss))
      True
    """
    from flax import nnx

    from lossjax.transforms import sam

    wrt = nnx.Param if wrt is None else wrt
    tx = sam(rho=rho, epsilon=epsilon)

    def wrapped(model, *args, **kwargs):
        graphdef, params, rest = nnx.split(model, wrt, ...)
        rest = nnx.as_pure(rest)  # plain arrays: a fresh copy of the RNG/BatchNorm variables at each trace

        def first(p):
            m = nnx.merge(graphdef, p, rest)
            out = loss_fn(m, *args, **kwargs)
            _, _, new_rest = nnx.split(m, wrt, ...)
            return _loss_only(out, has_aux), (out, new_rest)

        (_, (value, new_rest)), g = jax.value_and_grad(first, has_aux=True)(params)

        def grad_fn(p):
            return jax.grad(lambda q: first(q)[0])(p)

        sam_g, _ = tx.update(g, tx.init(params), params, grad_fn=grad_fn)
        nnx.update(model, new_rest)
        return value, sam_g

    return wrapped


def linen_apply_gradients(state: Any, *, grads: Any, **extra_args: Any) -> Any:
    """``flax.training.train_state.TrainState.apply_gradients`` forwarding extra update arguments.

    Linen's ``apply_gradients`` calls ``tx.update(grads, opt_state, params)``
    only; SAM needs ``grad_fn=`` and the multi-loss transforms ``losses=`` /
    ``key=``. This does the same step and passes ``extra_args`` to ``tx.update``.

    Args:
      state: a ``TrainState`` (any dataclass with ``step``, ``params``, ``tx``, ``opt_state`` and ``replace``).
      grads: the gradient with the structure of ``state.params``.
      **extra_args: keyword arguments of ``tx.update`` (``grad_fn=lambda p: ...`` taking ``state.params``).

    Returns:
      The new state (step + 1, updated params and optimizer state).

    Example:
      >>> import jax, jax.numpy as jnp, optax, lossjax
      >>> import flax.linen as nn
      >>> from flax.training.train_state import TrainState
      >>> from lossjax.integrations import linen_apply_gradients
      >>> net = nn.Dense(1)
      >>> x, y = jnp.ones((2, 3)), jnp.zeros((2, 1))
      >>> tx = optax.chain(lossjax.transforms.sam(rho=0.05), optax.sgd(0.1))
      >>> state = TrainState.create(apply_fn=net.apply, params=net.init(jax.random.key(0), x)["params"], tx=tx)
      >>> loss_fn = lambda p: jnp.mean((state.apply_fn({"params": p}, x) - y) ** 2)
      >>> state = linen_apply_gradients(state, grads=jax.grad(loss_fn)(state.params), grad_fn=jax.grad(loss_fn))
      >>> int(state.step)
      1
    """
    updates, new_opt_state = state.tx.update(grads, state.opt_state, state.params, **extra_args)
    new_params = optax.apply_updates(state.params, updates)
    return state.replace(step=state.step + 1, params=new_params, opt_state=new_opt_state)


def equinox_grad_fn(model: Any, loss_fn: Callable[..., Any], *args: Any, has_aux: bool = False, **kwargs: Any):
    """The ``grad_fn`` a SAM transform needs, from an ``eqx.Module`` and a loss.

    Use with ``params = eqx.filter(model, eqx.is_inexact_array)`` as optax's
    ``params``: ``grad_fn(params)`` rebuilds the model from ``params`` and
    the non-differentiable parts of ``model`` and returns
    ``eqx.filter_grad``'s gradient, with the structure of ``params``.

    Args:
      model: the ``eqx.Module``.
      loss_fn: ``loss_fn(model, *args, **kwargs) -> loss`` (or ``(loss, aux)`` with ``has_aux``).
      *args: the batch.
      has_aux: ``loss_fn`` returns ``(loss, aux)``; aux is dropped.
      **kwargs: more arguments of ``loss_fn``.

    Returns:
      ``grad_fn(params) -> gradients``.

    Example:
      >>> import jax, jax.numpy as jnp, optax, equinox as eqx, lossjax
      >>> from lossjax.integrations import equinox_grad_fn
      >>> model = eqx.nn.MLP(3, 1, 4, 1, key=jax.random.key(0))
      >>> loss_fn = lambda m, x, y: jnp.mean((jax.vmap(m)(x)[:, 0] - y) ** 2)
      >>> x, y = jnp.ones((2, 3)), jnp.zeros(2)
      >>> tx = optax.chain(lossjax.transforms.sam(rho=0.05), optax.sgd(0.1))
      >>> opt_state = tx.init(eqx.filter(model, eqx.is_inexact_array))
      >>> grads = eqx.filter_grad(loss_fn)(model, x, y)
      >>> updates, opt_state = tx.update(grads, opt_state, eqx.filter(model, eqx.is_inexact_array),
      ...                                grad_fn=equinox_grad_fn(model, loss_fn, x, y))
      >>> model = eqx.apply_updates(model, updates)
    """
    import equinox as eqx

    _, static = eqx.partition(model, eqx.is_inexact_array)

    def grad_fn(params):
        return eqx.filter_grad(lambda p: _loss_only(loss_fn(eqx.combine(p, static), *args, **kwargs), has_aux))(params)

    return grad_fn
