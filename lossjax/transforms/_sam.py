"""Sharpness-aware minimization (SAM) and its variants, as optax transformations.

Two forms of one mechanism:

* :func:`sam_value_and_grad` is a drop-in for :func:`jax.value_and_grad`: it
  returns the loss (and aux) of the *first* pass at ``w`` and the
  sharpness-aware gradient ``g(w + e)``.
* The optax transforms (:func:`sam`, :func:`asam`, :func:`gsam`,
  :func:`looksam`, :func:`friendly_sam`, :func:`awp`,
  :func:`random_weight_perturbation`, :func:`multistep_sam`, :func:`weighted_sam`,
  :func:`robust_weight_perturbation`, :func:`bayesian_sam`) are
  :class:`optax.GradientTransformationExtraArgs`. Their ``update`` takes the
  gradient at ``w`` as ``updates`` and the gradient function as the extra
  argument ``grad_fn`` (``grad_fn(params) -> gradients``, same structure as
  ``params``), and returns the gradient the base optimizer should see. Put them
  first in an :func:`optax.chain`::

      tx = optax.chain(lossjax.transforms.sam(rho=0.05), optax.sgd(0.1, momentum=0.9))
      loss, grads = jax.value_and_grad(loss_fn)(params, batch)
      grad_fn = lambda p: jax.grad(loss_fn)(p, batch)
      updates, opt_state = tx.update(grads, opt_state, params, grad_fn=grad_fn)

  With Flax NNX: ``optimizer.update(model, grads, grad_fn=grad_fn)`` where
  ``grad_fn`` maps the ``nnx.Param`` state to its gradient.

All of them share one update (:func:`_perturbed_gradient`): pick the gradient the
perturbation is built from, move to a perturbed point ``w + e`` (the variant's
rule), take the gradient there, and combine it with ``g`` (the variant's rule;
plain SAM keeps ``g(w + e)``). Only the two rules differ between variants.
:func:`bayesian_sam` (whose ascent gradient is taken at a noisy sample of the
weights and whose output is the parameter update) and
:func:`robust_weight_perturbation` (several ascent steps on the examples below
a loss threshold, ``per_example_loss_fn``) read ``w``, the previous state and
``grad_fn`` through the skeleton's ``context``.

Semantics follow ``optax.contrib.sam`` in opaque mode with one adversarial
step (``sync_period=2``, adversarial optimizer ``normalize + sgd(rho)``), with
three differences: an ``epsilon`` in the norm (a zero gradient gives a zero
perturbation, not NaN), ``grad_fn`` takes only the parameters (optax's also
takes the adversarial step index), and no outer optimizer is wrapped (chain
one instead). The state never holds a copy of the parameters; ``w + e`` and
``g(w + e)`` are transients of ``update``.

Batch statistics (BatchNorm): compute the first gradient with ``has_aux`` and
keep *its* statistics; ``grad_fn`` is only used for its gradient, so the
statistics of the perturbed pass are discarded (and dead-code eliminated).

Many devices (``axis_name``): inside ``shard_map``/``pmap``, pass the
per-device gradient as ``updates`` and a per-device ``grad_fn``; the transform
returns the device-averaged gradient. ``ascent_gradient`` chooses which
gradient builds the perturbation: ``"global"``, the gradient averaged over
``axis_name`` (equal to single-device SAM on the whole batch), or ``"local"``,
each device's own gradient (m-sharpness with ``m`` = the per-device batch, the
default of google-research/sam), which saves one all-reduce per step. Under
``jax.shard_map`` (``check_vma=True``) the gradient with respect to replicated
parameters is already summed over devices, so take the first gradient with
respect to ``jax.lax.pcast(params, axis_name, to="varying")``
(:func:`sam_value_and_grad` does this); an already-reduced ``updates`` is a
trace-time error. ``grad_fn`` is always called at a point marked varying, so it
returns per-device gradients.

Faults: the perturbation is built from norms computed in scaled form, so it
is applied at any gradient size (a plain ``||g||^2`` overflows float32 above
``||g|| ~ 1.8e19``); a step whose new state is not finite (a NaN gradient)
keeps the previous state (Friendly SAM's momentum, LookSAM's ``g_v``). These
transforms map gradients to gradients of the same shape, so
``optax.apply_if_finite`` wraps them (and any chain they start) as is; the
multi-loss aggregators need :func:`lossjax.transforms.apply_if_finite`::

    tx = optax.apply_if_finite(optax.chain(lossjax.transforms.sam(rho=0.05), optax.sgd(0.1)), 5)

Trajectory methods (SAF, MESA) need no second gradient: :func:`lossjax.losses.trajectory_loss`
is the loss term, and the :func:`saf` / :func:`mesa` transforms keep the past
outputs / EMA weights in their state (read them with :func:`saf_targets` and
:func:`mesa_params`).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from lossjax import _checks as C
from lossjax import _trees
from lossjax._parallel import axis_names, pmean, vary, varying_axes, vma_checked
from lossjax.registry import TransformSample, register

__all__ = [
    "BayesianSAMState",
    "FriendlySAMState",
    "LookSAMState",
    "MESAState",
    "RandomWeightPerturbationState",
    "SAFState",
    "asam",
    "awp",
    "bayesian_sam",
    "friendly_sam",
    "gsam",
    "looksam",
    "mesa",
    "mesa_params",
    "multistep_sam",
    "random_weight_perturbation",
    "robust_weight_perturbation",
    "saf",
    "saf_targets",
    "sam",
    "sam_value_and_grad",
    "weighted_sam",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
PyTree = Any

FAMILY = "sam"
_ASCENT_GRADIENTS = ("global", "local")


# --------------------------------------------------------------------------
# States (NamedTuples holding only arrays). Variants that keep nothing between
# steps (sam, asam, gsam, awp) use optax.EmptyState.
# --------------------------------------------------------------------------


class LookSAMState(NamedTuple):
    """State of :func:`looksam`.

    Attributes:
      count: steps taken (int32 scalar); the SAM gradient is recomputed when ``count % interval == 0``.
      g_v: the component of the last SAM gradient orthogonal to the plain gradient (params' dtype).
    """

    count: Array
    g_v: PyTree


class FriendlySAMState(NamedTuple):
    """State of :func:`friendly_sam`.

    Attributes:
      count: steps taken (int32 scalar); the first step initializes the EMA with the gradient.
      momentum: EMA of past gradients, the estimate of the full-batch gradient (params' dtype).
    """

    count: Array
    momentum: PyTree


class RandomWeightPerturbationState(NamedTuple):
    """State of :func:`random_weight_perturbation`: the PRNG key (uint32[2]) of the next noise draw."""

    key: Array


class MESAState(NamedTuple):
    """State of :func:`mesa`.

    Attributes:
      ema: exponential moving average of the parameters (params' dtype).
    """

    ema: PyTree


class SAFState(NamedTuple):
    """State of :func:`saf`.

    Attributes:
      bank: past outputs, ``[delay, num_examples, num_classes]``.
      seen: how many times each example has been recorded, ``[num_examples]`` int32.
    """

    bank: Array
    seen: Array


# --------------------------------------------------------------------------
# Checks shared by the variants.
# --------------------------------------------------------------------------


def _check_axis(fn: str, axis_name, ascent_gradient: str) -> None:
    C.check_one_of(fn, "ascent_gradient", ascent_gradient, _ASCENT_GRADIENTS)
    if axis_name is not None and not isinstance(axis_name, (str, tuple)):
        raise ValueError(f"{fn}: `axis_name` must be None, a string or a tuple of strings, got {axis_name!r}.")


def _check_radius(fn: str, rho, epsilon) -> None:
    C.check_positive(fn, "rho", rho, allow_zero=True)
    C.check_positive(fn, "epsilon", epsilon)


def _check_per_device(fn: str, updates, axis_name) -> None:
    """Under vma typing, a gradient invariant over ``axis_name`` has already been summed over devices."""
    if axis_name is None or not vma_checked(axis_name):
        return
    names = set(axis_names(axis_name))
    for leaf in jax.tree.leaves(updates):
        if not names <= varying_axes(leaf):
            raise ValueError(
                f"{fn}: with axis_name={axis_name!r}, `updates` must be per-device gradients (varying over "
                f"{axis_name!r}); got a gradient of type {jax.typeof(leaf)}, already summed over devices. "
                f"Differentiate with respect to jax.lax.pcast(params, {axis_name!r}, to='varying')."
            )


def _check_update_args(fn: str, updates, params, grad_fn) -> None:
    if params is None:
        raise ValueError(f"{fn}: `update` needs `params` (the point the gradient was taken at), got None.")
    if grad_fn is None or not callable(grad_fn):
        raise ValueError(
            f"{fn}: `update` needs the extra argument `grad_fn` (params -> gradients), got {grad_fn!r}. "
            "Call tx.update(grads, state, params, grad_fn=grad_fn)."
        )
    su, sp = jax.tree.structure(updates), jax.tree.structure(params)
    if su != sp:
        raise ValueError(f"{fn}: `updates` must have the structure of `params`; got {su} and {sp}.")


def _call_grad_fn(fn: str, grad_fn, point, params, axis_name=None):
    out = grad_fn(vary(point, axis_name))
    so, sp = jax.tree.structure(out), jax.tree.structure(params)
    if so != sp:
        raise ValueError(
            f"{fn}: `grad_fn` must return gradients with the structure of `params`; got {so}, needed {sp}. "
            "(With has_aux losses, return only the gradient.)"
        )
    return out


# --------------------------------------------------------------------------
# The one update skeleton and the perturbation directions.
# --------------------------------------------------------------------------


def _keep_perturbed(g, g_p, state, dtype):
    """The default combination: the gradient at the perturbed point, as SAM."""
    del g, dtype
    return g_p, state


def _perturbed_gradient(
    fn: str,
    *,
    axis_name,
    ascent_gradient: str,
    perturb: Callable,
    combine: Callable = _keep_perturbed,
    init: Callable | None = None,
    reuse: Callable | None = None,
    recompute: Callable | None = None,
    ascent_steps: int = 1,
    context: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """The update every variant of the family shares, written once.

    1. ``g``: ``updates`` averaged over ``axis_name`` (``"global"``) or this
       device's own (``"local"``);
    2. ``point, state = perturb(g, params, state, dtype)``: the point ``w + e``;
    3. ``g_p = grad_fn(point)``, averaged over ``axis_name`` when ``"global"``;
    4. ``out, state = combine(g, g_p, state, dtype)`` (default: ``g_p``);
    5. ``"local"``: ``out`` averaged over ``axis_name``; returned in the dtypes of ``updates``;
       a new state that is not all finite is replaced by the previous one.

    With ``ascent_steps > 1`` (:func:`multistep_sam`) steps 2-3 repeat from the
    perturbed point, ``perturb(g_p, point, state, dtype)`` (optax.contrib.sam's
    ``sync_period - 1`` adversarial steps).
    With ``recompute(state)`` (LookSAM) steps 2-4 run in one branch of a
    :func:`jax.lax.cond` and ``reuse(g, state, dtype) -> (out, state)`` in the
    other, so ``grad_fn`` really runs only on recompute steps.
    ``dtype`` is float32 for half-precision inputs (:func:`lossjax._trees.compute_dtype`).
    With ``context=True`` (:func:`bayesian_sam`, :func:`robust_weight_perturbation`) ``perturb`` and
    ``combine`` take one more argument, ``ctx``: a dict with ``params``, the previous ``state``,
    ``grad_at`` (``point -> grad_fn(point)``, averaged over ``axis_name`` when ``"global"``) and
    ``extra`` (``update``'s other extra arguments), for rules that take more gradients or read ``w``.
    """

    def init_fn(params):
        return optax.EmptyState() if init is None else init(params)

    def update_fn(updates, state, params=None, *, grad_fn=None, **extra_args):
        _check_update_args(fn, updates, params, grad_fn)
        _check_per_device(fn, updates, axis_name)
        g = pmean(updates, axis_name) if ascent_gradient == "global" else updates
        dtype = _trees.compute_dtype(g, params)

        def grad_at(point):
            g_p = _call_grad_fn(fn, grad_fn, point, params, axis_name)
            return pmean(g_p, axis_name) if ascent_gradient == "global" else g_p

        ctx = ({"params": params, "state": state, "grad_at": grad_at, "extra": extra_args},) if context else ()

        def perturbed(_):
            point, new_state = perturb(g, params, state, dtype, *ctx)
            g_p = grad_at(point)
            for _ in range(ascent_steps - 1):  # multi-step ascent: climb again from the perturbed point
                point, new_state = perturb(g_p, point, new_state, dtype, *ctx)
                g_p = grad_at(point)
            return combine(g, g_p, new_state, dtype, *ctx)

        if recompute is None:
            out, new_state = perturbed(None)
        else:

            def as_updates(pair):  # both branches of the cond return the dtypes of `updates`
                return _trees.cast_like(pair[0], updates), pair[1]

            out, new_state = lax.cond(
                recompute(state),
                lambda _: as_updates(perturbed(None)),
                lambda _: as_updates(reuse(g, state, dtype)),
                None,
            )
        if ascent_gradient == "local":
            out = pmean(out, axis_name)
        return _trees.cast_like(out, updates), _trees.keep_if_finite(new_state, state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _sam_direction(g, dtype, rho, epsilon):
    """``e = rho g / (||g|| + epsilon)`` (in ``dtype``)."""
    scale = jnp.asarray(rho, dtype) / (_trees.norm(g, dtype) + jnp.asarray(epsilon, dtype))
    return jax.tree.map(lambda x: x.astype(dtype) * scale, g)


def _asam_direction(g, params, dtype, rho, eta, epsilon):
    """``e = rho T^2 g / (||T g|| + epsilon)``, ``T = |w| + eta`` (in ``dtype``)."""
    t = jax.tree.map(lambda w: jnp.abs(w.astype(dtype)) + jnp.asarray(eta, dtype), params)
    tg = jax.tree.map(lambda a, x: a * x.astype(dtype), t, g)
    scale = jnp.asarray(rho, dtype) / (_trees.norm(tg, dtype) + jnp.asarray(epsilon, dtype))
    return jax.tree.map(lambda a, x: a * x * scale, t, tg)


def _sam_point(rho, epsilon):
    def perturb(g, params, state, dtype):
        return _trees.add(params, _sam_direction(g, dtype, rho, epsilon)), state

    return perturb


# --------------------------------------------------------------------------
# Conformance samples: a tiny two-leaf model with a smooth loss.
# --------------------------------------------------------------------------

_X = np.asarray(np.random.default_rng(1).normal(size=(5, 3)), np.float32)
_Y = np.asarray(np.random.default_rng(2).normal(size=(5, 2)), np.float32)


def _toy_loss(params, x=_X, y=_Y):
    z = jnp.tanh(x @ params["w"] + params["b"][None, :])
    return jnp.mean(jnp.square(z - y))


def _toy_params():
    rng = np.random.default_rng(0)
    return {"w": rng.normal(size=(3, 2)).astype(np.float32), "b": (0.1 * rng.normal(size=(2,))).astype(np.float32)}


_toy_grad = jax.grad(_toy_loss)


def _toy_grad_numpy(params):
    """``_toy_grad`` in float64 numpy, rounded to float32: the sample's fixed ``updates`` (and so the
    fingerprint of its expected values) must not depend on the backend or on XLA's flags."""
    w, b = np.asarray(params["w"], np.float64), np.asarray(params["b"], np.float64)
    x, y = _X.astype(np.float64), _Y.astype(np.float64)
    z = np.tanh(x @ w + b[None, :])
    dpre = 2.0 * (z - y) / z.size * (1.0 - z * z)
    return {"w": (x.T @ dpre).astype(np.float32), "b": dpre.sum(axis=0).astype(np.float32)}


def _grad_sample(*variants, **hyperparams) -> Callable[[], TransformSample]:
    """The toy model's parameters, its gradient there (fixed ``updates``) and ``grad_fn``; the hyperparameter
    variants. The expected-value generator ports the toy model (tests/reference/make_expected_sam.py)."""

    def make():
        params = _toy_params()
        updates = _toy_grad_numpy(params)
        return TransformSample(
            params=params,
            updates=updates,
            hyperparams=hyperparams,
            extra_args={"grad_fn": _toy_grad},
            variants=tuple(variants),
        )

    return make


# --------------------------------------------------------------------------
# SAM and ASAM.
# --------------------------------------------------------------------------


@register(
    "sam",
    aliases=("sharpness_aware_minimization",),
    family=FAMILY,
    kind="transform",
    formula="e = rho g / (||g||_2 + epsilon);  update with g(w + e)",
    paper="Sharpness-Aware Minimization for Efficiently Improving Generalization (2021, arXiv:2010.01412)",
    reference="google-research/sam sam_jax/training_utils/flax_training.py::dual_vector, train_step; "
    "optax.contrib.sam(opaque_mode=True, sync_period=2)",
    sample=_grad_sample({"rho": 0.3}, {"ascent_gradient": "local"}, {"rho": 0.0}, rho=0.05),
)
def sam(
    *,
    rho: float = 0.05,
    epsilon: float = 1e-12,
    axis_name: str | None = None,
    ascent_gradient: str = "global",
) -> optax.GradientTransformationExtraArgs:
    r"""Sharpness-aware minimization: replaces ``g(w)`` by the gradient at ``w + e``.

    .. math::
        e = \rho\,\frac{g}{\|g\|_2 + \epsilon},\qquad g = \nabla L(w),\qquad
        \text{output} = \nabla L(w + e)

    The adaptive (scale-invariant) perturbation is :func:`asam`.

    Args:
      rho: neighbourhood radius ``rho >= 0`` (0.05 in the paper; 0.1-0.2 for noisy labels).
      epsilon: added to the norm; a zero gradient gives ``e = 0``, never NaN.
      axis_name: mapped axis for data parallelism (``shard_map``/``pmap``); the
        output is then averaged over it.
      ascent_gradient: which gradient builds the perturbation ``e`` under
        ``axis_name``: ``"global"``, the gradient averaged over ``axis_name``
        (equals one device on the whole batch), or ``"local"``, each device's own
        gradient (m-sharpness, ``m`` = the per-device batch; one all-reduce fewer).
        Without ``axis_name`` both are the same.

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with an
      :class:`optax.EmptyState`; ``update(updates, state, params, *, grad_fn)``
      returns ``g(w + e)`` in the dtypes of ``updates``.

    Paper: Foret, Kleiner, Mobahi, Neyshabur, "Sharpness-Aware Minimization for
    Efficiently Improving Generalization", ICLR 2021, arXiv:2010.01412.

    Example:
      >>> import jax, jax.numpy as jnp, optax, lossjax
      >>> loss = lambda p: 0.5 * jnp.sum(jnp.array([1.0, 4.0]) * p**2)
      >>> params = jnp.array([1.0, 1.0])
      >>> tx = lossjax.transforms.sam(rho=0.5)
      >>> g, _ = tx.update(jax.grad(loss)(params), tx.init(params), params, grad_fn=jax.grad(loss))
      >>> g.round(4)  # A (w + 0.5 g/|g|) with g = (1, 4)
      Array([1.1213, 5.9403], dtype=float32)
    """
    fn = "sam"
    _check_radius(fn, rho, epsilon)
    _check_axis(fn, axis_name, ascent_gradient)
    return _perturbed_gradient(
        fn, axis_name=axis_name, ascent_gradient=ascent_gradient, perturb=_sam_point(rho, epsilon)
    )


@register(
    "asam",
    aliases=("adaptive_sam",),
    family=FAMILY,
    kind="transform",
    formula="T = |w| + eta;  e = rho T^2 g / (||T g||_2 + epsilon);  update with g(w + e)",
    paper="ASAM: Adaptive Sharpness-Aware Minimization for Scale-Invariant Learning of Deep Neural Networks "
    "(2021, arXiv:2102.11600)",
    reference="SamsungLabs/ASAM asam.py::ASAM.ascent_step",
    sample=_grad_sample({"eta": 0.0}, {"rho": 0.1, "eta": 0.1}, rho=0.5),
)
def asam(
    *,
    rho: float = 0.5,
    eta: float = 0.01,
    epsilon: float = 1e-12,
    axis_name: str | None = None,
    ascent_gradient: str = "global",
) -> optax.GradientTransformationExtraArgs:
    r"""Adaptive SAM: the SAM perturbation measured in the scale-invariant norm ``||T^{-1} e||``.

    .. math::
        T_w = |w| + \eta,\qquad e = \rho\,\frac{T_w^2\, g}{\|T_w\, g\|_2 + \epsilon},\qquad
        \text{output} = \nabla L(w + e)

    ``T`` is applied to every leaf; the reference applies it to parameters
    named ``weight`` only (biases get ``T = 1``). Mask leaves out by giving them
    a zero gradient path if you need that. This is the only adaptive entry point
    of the family.

    Args:
      rho: radius (0.5 in the ASAM paper's CIFAR runs, with eta 0.01).
      eta: offset keeping zero weights perturbable (``>= 0``).
      epsilon: added to the norm (the reference adds 1e-16).
      axis_name: mapped axis for data parallelism; the output is averaged over it.
      ascent_gradient: ``"global"`` or ``"local"``: which gradient builds ``e`` (see :func:`sam`).

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with an :class:`optax.EmptyState`
      (``grad_fn`` extra argument); ``update`` returns ``g(w + e)`` in the dtypes of ``updates``.

    Paper: Kwon, Kim, Park, Choi, "ASAM: Adaptive Sharpness-Aware Minimization
    for Scale-Invariant Learning of Deep Neural Networks", ICML 2021, arXiv:2102.11600.

    Example:
      >>> import jax, jax.numpy as jnp, lossjax
      >>> loss = lambda p: 0.5 * jnp.sum(p**2)
      >>> params = jnp.array([3.0, 0.0])
      >>> tx = lossjax.transforms.asam(rho=0.1, eta=0.0)
      >>> g, _ = tx.update(jax.grad(loss)(params), tx.init(params), params, grad_fn=jax.grad(loss))
      >>> g.round(4)  # w + 0.1 * w^2 g / |w g| = 3 + 0.3
      Array([3.3, 0. ], dtype=float32)
    """
    fn = "asam"
    _check_radius(fn, rho, epsilon)
    C.check_positive(fn, "eta", eta, allow_zero=True)
    _check_axis(fn, axis_name, ascent_gradient)

    def perturb(g, params, state, dtype):
        return _trees.add(params, _asam_direction(g, params, dtype, rho, eta, epsilon)), state

    return _perturbed_gradient(fn, axis_name=axis_name, ascent_gradient=ascent_gradient, perturb=perturb)


def sam_value_and_grad(
    fun: Callable[..., Any],
    *,
    rho: float = 0.05,
    has_aux: bool = False,
    epsilon: float = 1e-12,
    axis_name: str | None = None,
    ascent_gradient: str = "global",
) -> Callable[..., tuple[Any, PyTree]]:
    r"""Drop-in for ``jax.value_and_grad(fun)`` returning the sharpness-aware gradient.

    .. math::
        (L(w), \nabla L(w + e)),\qquad e = \rho\,\frac{\nabla L(w)}{\|\nabla L(w)\|_2 + \epsilon}

    The value (and ``aux``, e.g. BatchNorm statistics) comes from the first
    pass at ``w``; the second pass at ``w + e`` contributes only its gradient.
    ``fun`` is differentiated with respect to its first argument. This is
    exactly :func:`sam` applied to the first gradient, and takes what
    :func:`sam` takes.

    Args:
      fun: ``fun(params, *args, **kwargs) -> loss`` (or ``(loss, aux)`` with ``has_aux``).
      rho: neighbourhood radius (as :func:`sam`).
      has_aux: ``fun`` returns ``(loss, aux)``.
      epsilon: added to the norm (as :func:`sam`).
      axis_name: mapped axis for data parallelism; the gradient is averaged over it.
      ascent_gradient: ``"global"`` or ``"local"``: which gradient builds ``e`` (see :func:`sam`).

    Returns:
      ``f(params, *args, **kwargs) -> (value, sam_grad)`` where ``value`` is
      ``loss`` or ``(loss, aux)`` like :func:`jax.value_and_grad`.

    Paper: Foret, Kleiner, Mobahi, Neyshabur, "Sharpness-Aware Minimization for
    Efficiently Improving Generalization", ICLR 2021, arXiv:2010.01412.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> loss = lambda p, a: 0.5 * jnp.sum(a * p**2)
      >>> value, g = lossjax.transforms.sam_value_and_grad(loss, rho=0.5)(jnp.array([1.0, 1.0]), jnp.array([1.0, 4.0]))
      >>> float(value), g.round(4)
      (2.5, Array([1.1213, 5.9403], dtype=float32))
    """
    if not callable(fun):
        raise TypeError(f"sam_value_and_grad: `fun` must be callable, got {type(fun).__name__}.")
    tx = sam(rho=rho, epsilon=epsilon, axis_name=axis_name, ascent_gradient=ascent_gradient)
    value_and_grad = jax.value_and_grad(fun, has_aux=has_aux)
    grad = jax.grad(fun, has_aux=has_aux)

    @functools.wraps(fun)
    def wrapped(params, *args, **kwargs):
        nnx = sys.modules.get("flax.nnx")
        if nnx is not None and isinstance(params, nnx.Module):  # differentiate nnx.Param only (Dropout keys: uint32)
            if axis_name is not None or ascent_gradient != "global":
                raise ValueError(
                    "sam_value_and_grad: with an NNX module, `axis_name` and `ascent_gradient` are not supported; "
                    "use lossjax.integrations.nnx_grad_fn with a sam transform."
                )
            from lossjax.integrations import nnx_sam_value_and_grad

            return nnx_sam_value_and_grad(fun, rho=rho, has_aux=has_aux, epsilon=epsilon)(params, *args, **kwargs)
        value, g = value_and_grad(vary(params, axis_name), *args, **kwargs)  # per-device gradient

        def grad_fn(p):
            out = grad(p, *args, **kwargs)
            return out[0] if has_aux else out

        sam_g, _ = tx.update(g, tx.init(params), params, grad_fn=grad_fn)
        return value, sam_g

    return wrapped


# --------------------------------------------------------------------------
# GSAM.
# --------------------------------------------------------------------------


@register(
    "gsam",
    aliases=("surrogate_gap_sam",),
    family=FAMILY,
    kind="transform",
    formula="g_p = g(w + rho g/||g||);  out = g_p - alpha (g - <g, u> u),  u = g_p/||g_p||",
    paper="Surrogate Gap Minimization Improves Sharpness-Aware Training (2022, arXiv:2203.08065)",
    reference="google-research/big_vision big_vision/trainers/proj/gsam/gsam.py::gsam_gradient (minimize_fp=True); "
    "juntang-zhuang/GSAM gsam/gsam.py::GSAM.gradient_decompose",
    sample=_grad_sample({"alpha": 0.0}, {"rho": 0.2, "alpha": 0.6}, rho=0.05, alpha=0.3),
)
def gsam(
    *,
    rho: float = 0.05,
    alpha: float = 0.1,
    epsilon: float = 1e-12,
    axis_name: str | None = None,
    ascent_gradient: str = "global",
) -> optax.GradientTransformationExtraArgs:
    r"""Surrogate-gap guided SAM: the SAM gradient minus ``alpha`` times the part of ``g`` orthogonal to it.

    .. math::
        g_p = \nabla L\Big(w + \rho\frac{g}{\|g\|+\epsilon}\Big),\quad
        u = \frac{g_p}{\|g_p\|+\epsilon},\quad
        \text{output} = g_p - \alpha\,\big(g - \langle g, u\rangle u\big)

    Descending along ``-(g - <g,u>u)`` decreases the surrogate gap
    ``L(w+e) - L(w)`` without changing the perturbed loss to first order.
    ``alpha = 0`` is SAM. The paper schedules ``rho`` with the learning rate:
    use :func:`optax.inject_hyperparams` for that. With
    ``ascent_gradient="local"`` the decomposition is done per device and the
    results are averaged.

    Args:
      rho: radius.
      alpha: weight of the gap-descent component (big_vision's ViT config: rho 0.6, alpha 0.6).
      epsilon: added to both norms.
      axis_name: mapped axis for data parallelism; the output is averaged over it.
      ascent_gradient: ``"global"`` or ``"local"``: which gradient builds ``e`` (see :func:`sam`).

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with an :class:`optax.EmptyState`
      (``grad_fn`` extra argument); ``update`` returns the output above in the dtypes of ``updates``.

    Paper: Zhuang, Gong, Yuan, Cui, Adam, Dvornek, Tatikonda, Duncan, Liu,
    "Surrogate Gap Minimization Improves Sharpness-Aware Training", ICLR 2022,
    arXiv:2203.08065.

    Example:
      >>> import jax, jax.numpy as jnp, lossjax
      >>> loss = lambda p: 0.5 * jnp.sum(jnp.array([1.0, 4.0]) * p**2)
      >>> params = jnp.array([1.0, 1.0])
      >>> tx = lossjax.transforms.gsam(rho=0.0, alpha=0.5)  # rho=0: g_p = g, orthogonal part 0
      >>> g, _ = tx.update(jax.grad(loss)(params), tx.init(params), params, grad_fn=jax.grad(loss))
      >>> g
      Array([1., 4.], dtype=float32)
    """
    fn = "gsam"
    _check_radius(fn, rho, epsilon)
    C.check_positive(fn, "alpha", alpha, allow_zero=True)
    _check_axis(fn, axis_name, ascent_gradient)

    def combine(g, g_p, state, dtype):
        # u = g_p / (||g_p|| + eps) (entries <= 1), then <g, u> u: no product of two gradient sizes overflows.
        u_scale = 1.0 / (_trees.norm(g_p, dtype) + jnp.asarray(epsilon, dtype))
        # the barrier keeps XLA from folding the scale out of the dot product (sum(g * g_p) * u_scale overflows)
        u = jax.lax.optimization_barrier(jax.tree.map(lambda gp: gp.astype(dtype) * u_scale, g_p))
        proj = _trees.vdot(g, u, dtype)
        a = jnp.asarray(alpha, dtype)
        out = jax.tree.map(lambda gp, gg, uu: gp.astype(dtype) - a * (gg.astype(dtype) - proj * uu), g_p, g, u)
        return out, state

    return _perturbed_gradient(
        fn, axis_name=axis_name, ascent_gradient=ascent_gradient, perturb=_sam_point(rho, epsilon), combine=combine
    )


# --------------------------------------------------------------------------
# LookSAM: reuse the ascent direction for `interval` steps.
# --------------------------------------------------------------------------


@register(
    "looksam",
    aliases=("look_sam",),
    family=FAMILY,
    kind="transform",
    formula="every `interval` steps: g_s = g(w + rho g/||g||), g_v = g_s - <g, g_s>/||g||^2 g;  "
    "else: g_s = g + alpha ||g||/||g_v|| g_v",
    paper="Towards Efficient and Scalable Sharpness-Aware Minimization (2022, arXiv:2203.02714)",
    reference="the paper's Algorithm 1 (no official code); hand-derived closed forms in tests",
    sample=_grad_sample({"alpha": 0.3}, {"interval": 1}, {"rho": 0.2, "epsilon": 1e-3}, rho=0.05, interval=2),
)
def looksam(
    *,
    rho: float = 0.05,
    interval: int = 5,
    alpha: float = 0.7,
    epsilon: float = 1e-12,
    axis_name: str | None = None,
    ascent_gradient: str = "global",
) -> optax.GradientTransformationExtraArgs:
    r"""LookSAM: the SAM gradient every ``interval`` steps, its orthogonal part reused in between.

    .. math::
        t \bmod \text{interval} = 0:\quad g_s = \nabla L\Big(w + \rho\frac{g}{\|g\|+\epsilon}\Big),\quad
        g_v = g_s - \frac{\langle g, g_s\rangle}{\|g\|^2+\epsilon}\,g,\quad \text{output}=g_s

    .. math::
        \text{otherwise}:\quad \text{output} = g + \alpha\,\frac{\|g\|}{\|g_v\|+\epsilon}\,g_v

    The branch is a :func:`jax.lax.cond` on the step count, so reuse steps
    really skip the second forward/backward pass (under ``vmap`` of the whole
    step a ``cond`` becomes a select and runs both).

    Args:
      rho: radius.
      interval: recompute the SAM gradient every ``interval`` steps (the paper's ``k``, 5).
      alpha: weight of the reused orthogonal component (0.7 in the paper).
      epsilon: added to the norms.
      axis_name: mapped axis for data parallelism; the output is averaged over it.
      ascent_gradient: ``"global"`` or ``"local"``: which gradient builds ``e`` (see :func:`sam`).

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with :class:`LookSAMState`
      (``g_v`` is the one parameter-sized buffer it must keep).

    Paper: Liu, Mai, Chen, Hsieh, You, "Towards Efficient and Scalable
    Sharpness-Aware Minimization", CVPR 2022, arXiv:2203.02714.

    Example:
      >>> import jax, jax.numpy as jnp, lossjax
      >>> loss = lambda p: 0.5 * jnp.sum(jnp.array([1.0, 4.0]) * p**2)
      >>> params = jnp.array([1.0, 1.0])
      >>> tx = lossjax.transforms.looksam(rho=0.5, interval=2)
      >>> state = tx.init(params)
      >>> g1, state = tx.update(jax.grad(loss)(params), state, params, grad_fn=jax.grad(loss))
      >>> g1.round(4)  # step 0: the SAM gradient
      Array([1.1213, 5.9403], dtype=float32)
      >>> int(state.count)
      1
    """
    fn = "looksam"
    _check_radius(fn, rho, epsilon)
    C.check_positive(fn, "alpha", alpha, allow_zero=True)
    C.check_int(fn, "interval", interval, 1)
    _check_axis(fn, axis_name, ascent_gradient)

    def init(params):
        return LookSAMState(count=jnp.zeros((), jnp.int32), g_v=jax.tree.map(jnp.zeros_like, params))

    def combine(g, g_s, state, dtype):
        # g_v = g_s - c g with c = <g, g_s>/(||g||^2 + eps). One fused pass reads g and g_s for both sums
        # (sibling reductions), one more writes g_v; only when a sum overflows or underflows does a lax.cond
        # recompute c in scaled form, with g/||g|| (no squared size overflows there).
        sq, dot = _trees.squared_norm(g, dtype), _trees.vdot(g, g_s, dtype)
        eps = jnp.asarray(epsilon, dtype)

        def scaled():
            n = _trees.norm(g, dtype)
            inv_n = jnp.where(n > 0, 1.0 / jnp.where(n > 0, n, jnp.ones((), dtype)), jnp.zeros((), dtype))
            g_hat = jax.lax.optimization_barrier(jax.tree.map(lambda x: x.astype(dtype) * inv_n, g))  # not refolded
            return _trees.vdot(g_hat, g_s, dtype) * inv_n / (1.0 + eps * inv_n * inv_n)

        safe = jnp.isfinite(sq) & jnp.isfinite(dot) & (sq >= _trees.SAFE_SQUARED)
        coef = jax.lax.cond(safe, lambda: dot / (sq + eps), scaled)
        g_v = jax.tree.map(lambda s, x: s.astype(dtype) - coef * x.astype(dtype), g_s, g)
        return g_s, LookSAMState(count=optax.safe_increment(state.count), g_v=_trees.cast_like(g_v, state.g_v))

    def reuse(g, state, dtype):
        # g + alpha ||g||/(||g_v|| + eps) g_v: both squared norms in one fused pass (scaled only if unsafe).
        eps = jnp.asarray(epsilon, dtype)
        sq_g, sq_v = _trees.squared_norm(g, dtype), _trees.squared_norm(state.g_v, dtype)
        safe = jnp.isfinite(sq_g) & jnp.isfinite(sq_v) & (jnp.minimum(sq_g, sq_v) >= _trees.SAFE_SQUARED)
        n_g, n_v = jax.lax.cond(
            safe,
            lambda: (jnp.sqrt(sq_g), jnp.sqrt(sq_v)),
            lambda: (_trees.norm(g, dtype), _trees.norm(state.g_v, dtype)),
        )
        scale = jnp.asarray(alpha, dtype) * n_g / (n_v + eps)
        g_s = jax.tree.map(lambda x, v: x.astype(dtype) + scale * v.astype(dtype), g, state.g_v)
        g_v = vary(state.g_v, axis_name) if ascent_gradient == "local" else state.g_v
        return g_s, LookSAMState(count=optax.safe_increment(state.count), g_v=g_v)

    return _perturbed_gradient(
        fn,
        axis_name=axis_name,
        ascent_gradient=ascent_gradient,
        perturb=_sam_point(rho, epsilon),
        combine=combine,
        init=init,
        reuse=reuse,
        recompute=lambda state: state.count % interval == 0,
    )


# --------------------------------------------------------------------------
# Friendly SAM.
# --------------------------------------------------------------------------


@register(
    "friendly_sam",
    aliases=("fsam", "f_sam"),
    family=FAMILY,
    kind="transform",
    formula="d = g - sigma m;  m <- decay m + (1 - decay) g (m_0 = g_0);  e = rho d/||d||;  update with g(w + e)",
    paper="Friendly Sharpness-Aware Minimization (2024, arXiv:2403.12350)",
    reference="nblt/F-SAM@2e2f989 utils.py::FriendlySAM.first_step",
    sample=_grad_sample({"sigma": 1.0, "decay": 0.9}, {"decay": 0.0}, rho=0.05, sigma=0.6, decay=0.8),
)
def friendly_sam(
    *,
    rho: float = 0.05,
    sigma: float = 1.0,
    decay: float = 0.9,
    epsilon: float = 1e-12,
    axis_name: str | None = None,
    ascent_gradient: str = "global",
) -> optax.GradientTransformationExtraArgs:
    r"""Friendly SAM: perturb along the batch-specific part of the gradient (minus its EMA).

    .. math::
        d_t = g_t - \sigma m_{t-1}\ (d_0 = g_0),\qquad
        m_t = \text{decay}\, m_{t-1} + (1-\text{decay})\, g_t\ (m_0 = g_0),\qquad
        e = \rho\frac{d_t}{\|d_t\|+\epsilon},\qquad \text{output} = \nabla L(w + e)

    The EMA ``m`` estimates the full-batch gradient; removing it keeps the
    stochastic-noise component that, per the paper, carries SAM's
    generalization benefit.

    Args:
      rho: radius.
      sigma: how much of the EMA to subtract (1 in the reference).
      decay: the EMA factor of ``m`` in ``[0, 1]`` (the paper's and reference's
        ``lambda``, same convention; 0.9 in the reference).
      epsilon: added to the norm.
      axis_name: mapped axis for data parallelism; the output is averaged over it.
      ascent_gradient: ``"global"`` or ``"local"``: which gradient builds ``e`` and
        the EMA (see :func:`sam`).

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with :class:`FriendlySAMState`.

    Paper: Li, Zhou, He, Cheng, Huang, "Friendly Sharpness-Aware Minimization",
    CVPR 2024, arXiv:2403.12350.

    Example:
      >>> import jax, jax.numpy as jnp, lossjax
      >>> loss = lambda p: 0.5 * jnp.sum(p**2)
      >>> params = jnp.array([3.0, 4.0])
      >>> tx = lossjax.transforms.friendly_sam(rho=0.5)
      >>> g, state = tx.update(jax.grad(loss)(params), tx.init(params), params, grad_fn=jax.grad(loss))
      >>> g.round(4)  # first step: plain SAM, w + 0.5 w/|w|
      Array([3.3, 4.4], dtype=float32)
    """
    fn = "friendly_sam"
    _check_radius(fn, rho, epsilon)
    C.check_positive(fn, "sigma", sigma, allow_zero=True)
    C.check_in_range(fn, "decay", decay, 0.0, 1.0)
    _check_axis(fn, axis_name, ascent_gradient)

    def init(params):
        return FriendlySAMState(count=jnp.zeros((), jnp.int32), momentum=jax.tree.map(jnp.zeros_like, params))

    def perturb(g, params, state, dtype):
        first = state.count == 0
        s, b = jnp.asarray(sigma, dtype), jnp.asarray(decay, dtype)
        d = jax.tree.map(lambda x, m: x.astype(dtype) - s * m.astype(dtype), g, state.momentum)
        new_m = jax.tree.map(
            lambda x, m: jnp.where(first, x.astype(dtype), b * m.astype(dtype) + (1 - b) * x.astype(dtype)),
            g,
            state.momentum,
        )
        new_state = FriendlySAMState(
            count=optax.safe_increment(state.count), momentum=_trees.cast_like(new_m, state.momentum)
        )
        return _trees.add(params, _sam_direction(d, dtype, rho, epsilon)), new_state

    return _perturbed_gradient(fn, axis_name=axis_name, ascent_gradient=ascent_gradient, perturb=perturb, init=init)


# --------------------------------------------------------------------------
# Adversarial weight perturbation and random weight perturbation.
# --------------------------------------------------------------------------


@register(
    "awp",
    aliases=("adversarial_weight_perturbation",),
    family=FAMILY,
    kind="transform",
    formula="v_l = gamma ||w_l|| g_l / (||g_l|| + epsilon) for leaves with ndim >= min_ndim;  update with g(w + v)",
    paper="Adversarial Weight Perturbation Helps Robust Generalization (2020, arXiv:2004.05884)",
    reference="csdongxian/AWP AT_AWP/utils_awp.py::diff_in_weights, AdvWeightPerturb (proxy = one SGD ascent step)",
    sample=_grad_sample({"min_ndim": 1}, {"gamma": 0.1, "epsilon": 1e-3}, gamma=0.01),
)
def awp(
    *,
    gamma: float = 5e-3,
    min_ndim: int = 2,
    epsilon: float = 1e-20,
    axis_name: str | None = None,
    ascent_gradient: str = "global",
) -> optax.GradientTransformationExtraArgs:
    r"""Adversarial weight perturbation: a layer-wise, weight-relative SAM step.

    .. math::
        v_l = \gamma\,\|w_l\|\,\frac{g_l}{\|g_l\| + \epsilon}\quad (\mathrm{ndim}(w_l) \ge \text{min\_ndim}),
        \qquad \text{output} = \nabla L(w + v)

    The reference finds ``v`` with one SGD ascent step of a proxy model and
    rescales the weight difference per layer to ``gamma ||w_l||``; with plain
    SGD that difference is proportional to ``g_l``, so the proxy's learning
    rate cancels. Biases and normalization scales (rank < 2) are not
    perturbed, as in the reference. The adversarial *examples* of AWP belong to
    the loss behind ``updates``/``grad_fn``.

    Args:
      gamma: relative perturbation size (5e-3 for AT-AWP, 0.01 for TRADES-AWP).
      min_ndim: leaves with fewer dimensions are left unperturbed.
      epsilon: added to each layer's gradient norm (the reference's 1e-20).
      axis_name: mapped axis for data parallelism; the output is averaged over it.
      ascent_gradient: ``"global"`` or ``"local"``: which gradient builds ``v`` (see :func:`sam`).

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with an :class:`optax.EmptyState`
      (``grad_fn`` extra argument); ``update`` returns ``g(w + v)`` in the dtypes of ``updates``.

    Paper: Wu, Xia, Wang, "Adversarial Weight Perturbation Helps Robust
    Generalization", NeurIPS 2020, arXiv:2004.05884.

    Example:
      >>> import jax, jax.numpy as jnp, lossjax
      >>> loss = lambda p: 0.5 * jnp.sum(p["w"] ** 2) + 0.5 * jnp.sum(p["b"] ** 2)
      >>> params = {"w": jnp.array([[3.0, 4.0]]), "b": jnp.array([1.0])}
      >>> tx = lossjax.transforms.awp(gamma=0.1)
      >>> g, _ = tx.update(jax.grad(loss)(params), tx.init(params), params, grad_fn=jax.grad(loss))
      >>> g["w"].round(4), g["b"]  # w scaled by 1.1; b (rank 1) unperturbed
      (Array([[3.3, 4.4]], dtype=float32), Array([1.], dtype=float32))
    """
    fn = "awp"
    C.check_positive(fn, "gamma", gamma, allow_zero=True)
    C.check_positive(fn, "epsilon", epsilon)
    C.check_int(fn, "min_ndim", min_ndim, 0, static=True)
    _check_axis(fn, axis_name, ascent_gradient)

    def perturb(g, params, state, dtype):
        gam, eps = jnp.asarray(gamma, dtype), jnp.asarray(epsilon, dtype)

        def one(w, x):
            if w.ndim < min_ndim:
                return w
            w32, x32 = w.astype(dtype), x.astype(dtype)
            v = gam * _trees.norm(w32, dtype) * x32 / (_trees.norm(x32, dtype) + eps)
            return (w32 + v).astype(w.dtype)

        return jax.tree.map(one, params, g), state

    return _perturbed_gradient(fn, axis_name=axis_name, ascent_gradient=ascent_gradient, perturb=perturb)


def _rwp_sample():
    return _grad_sample({"alpha": 1.0, "gamma": 0.1}, {"filter_axis": 0, "seed": 3}, gamma=0.01, seed=0)()


@register(
    "random_weight_perturbation",
    aliases=("rwp", "m_rwp"),
    family=FAMILY,
    kind="transform",
    formula="e ~ N(0, (gamma ||w_filter||)^2);  out = (1 - alpha) g(w) + alpha g(w + e)",
    paper="Efficient Generalization Improvement Guided by Random Weight Perturbation (2022, arXiv:2211.11489)",
    reference="nblt/RWP (RWP.perturb: filter-wise std gamma ||W_i||, 1-D leaves gamma ||w||; "
    "loss 2(1-alpha) L(w) + 2 alpha L(w+e) on half batches)",
    sample=_rwp_sample,
)
def random_weight_perturbation(
    *,
    gamma: float = 0.01,
    alpha: float = 0.5,
    filter_axis: int = -1,
    seed: int = 0,
    axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Random weight perturbation (m-RWP): mixes the gradient at ``w`` with one at a filter-wise Gaussian ``w + e``.

    .. math::
        e_{l,i} \sim \mathcal{N}\big(0, (\gamma\,\|W_{l,i}\|)^2\big),\qquad
        \text{output} = (1-\alpha)\,\nabla L(w) + \alpha\,\nabla L(w + e)

    ``W_{l,i}`` is filter ``i`` of leaf ``l`` (all axes but ``filter_axis``);
    rank-0/1 leaves use the whole leaf's norm (plus 1e-16, as the reference).
    Flax kernels keep output filters on the last axis (``filter_axis=-1``);
    PyTorch weights on the first (``filter_axis=0``). The reference splits the
    batch in two halves and weights the two losses by ``2(1-alpha)`` and
    ``2 alpha``; with one batch for both terms this is the same mix without the
    factor 2 (absorbed in the learning rate). Under ``axis_name`` all devices
    draw the same noise (the key lives in the replicated state); the noise does
    not depend on the gradient, so there is no ``ascent_gradient`` choice: the
    mix is formed per device and averaged.

    Args:
      gamma: relative noise scale (0.01 in the reference).
      alpha: weight of the perturbed gradient in ``[0, 1]`` (0.5 in the reference).
      filter_axis: the output-filter axis of rank >= 2 leaves.
      seed: seed of the PRNG key kept in the state.
      axis_name: mapped axis for data parallelism; the output is averaged over it.

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with
      :class:`RandomWeightPerturbationState`.

    Paper: Li, Zhang, Tang, Huang, Yang, "Efficient Generalization Improvement
    Guided by Random Weight Perturbation", arXiv:2211.11489 (2022).

    Example:
      >>> import jax, jax.numpy as jnp, lossjax
      >>> loss = lambda p: jnp.sum(p)  # constant gradient: any perturbation gives the same one
      >>> params = jnp.array([1.0, 2.0])
      >>> tx = lossjax.transforms.random_weight_perturbation(gamma=0.1)
      >>> g, state = tx.update(jax.grad(loss)(params), tx.init(params), params, grad_fn=jax.grad(loss))
      >>> g
      Array([1., 1.], dtype=float32)
    """
    fn = "random_weight_perturbation"
    C.check_positive(fn, "gamma", gamma, allow_zero=True)
    C.check_in_range(fn, "alpha", alpha, 0.0, 1.0)
    C.check_int(fn, "filter_axis", filter_axis, static=True)
    C.check_int(fn, "seed", seed)
    _check_axis(fn, axis_name, "local")

    def init(params):
        del params
        return RandomWeightPerturbationState(key=jax.random.PRNGKey(seed))

    def perturb(g, params, state, dtype):
        del g
        key, sub = jax.random.split(state.key)
        leaves, treedef = jax.tree.flatten(params)
        keys = jax.random.split(sub, max(len(leaves), 1))
        gam = jnp.asarray(gamma, dtype)

        def noisy(w, k):
            w32 = w.astype(dtype)
            if w.ndim >= 2:
                ax = filter_axis % w.ndim
                axes = tuple(a for a in range(w.ndim) if a != ax)
                std = gam * jnp.sqrt(jnp.sum(jnp.square(w32), axis=axes, keepdims=True))
            else:
                std = gam * (_trees.norm(w32, dtype) + jnp.asarray(1e-16, dtype))
            return (w32 + std * jax.random.normal(k, w.shape, dtype)).astype(w.dtype)

        point = jax.tree.unflatten(treedef, [noisy(w, keys[i]) for i, w in enumerate(leaves)])
        return point, RandomWeightPerturbationState(key=key)

    def combine(g, g_e, state, dtype):
        a = jnp.asarray(alpha, dtype)
        return jax.tree.map(lambda x, y: (1 - a) * x.astype(dtype) + a * y.astype(dtype), g, g_e), state

    return _perturbed_gradient(
        fn, axis_name=axis_name, ascent_gradient="local", perturb=perturb, combine=combine, init=init
    )


# --------------------------------------------------------------------------
# Trajectory methods: SAF (memory bank of past outputs) and MESA (EMA weights).
# --------------------------------------------------------------------------


def _saf_sample() -> TransformSample:
    rng = np.random.default_rng(0)
    params = _toy_params()
    return TransformSample(
        params=params,
        updates=_toy_grad_numpy(params),
        hyperparams={"num_examples": 8, "num_classes": 3, "delay": 2},
        extra_args={
            "logits": rng.normal(size=(4, 3)).astype(np.float32),
            "indices": np.array([0, 3, 5, 7], np.int32),
        },
    )


_BANK_DTYPES = ("float32", "bfloat16", "float16")


@register(
    "saf",
    aliases=("sharpness_aware_training_for_free",),
    family=FAMILY,
    kind="transform",
    formula="state: outputs of each example recorded at its last `delay` visits; "
    "loss += lambda mean_i KL(softmax(t_i/tau) || softmax(z_i/tau)) (trajectory_loss)",
    paper="Sharpness-Aware Training for Free (2022, arXiv:2205.14083)",
    reference="the paper's Algorithm 1 (memory bank of past outputs); hand-checked bank bookkeeping in tests",
    sample=_saf_sample,
)
def saf(
    *,
    num_examples: int,
    num_classes: int,
    delay: int = 3,
    dtype: str = "float32",
) -> optax.GradientTransformationExtraArgs:
    r"""SAF's memory bank as an optax transform: records each example's outputs for the trajectory loss.

    Each visit of example ``i`` reads the outputs recorded ``delay`` visits
    earlier (``delay`` = the paper's ``E~`` epochs when every example is seen
    once per epoch) and then records the current ones:

    .. math::
        t_i = z_i^{(v - E)},\qquad \text{loss} = L(w) + \lambda\,\frac{1}{|B|}\sum_{i \in B}
        \mathrm{KL}\big(\mathrm{softmax}(t_i/\tau)\,\|\,\mathrm{softmax}(z_i/\tau)\big)

    Use :func:`saf_targets` (before the forward pass) for ``t`` and a mask of
    examples that have a past, and pass the current outputs to ``update`` as
    extra arguments ``logits`` and ``indices``. The updates pass through
    unchanged: SAF costs no second gradient. The bank holds
    ``delay * num_examples * num_classes`` values (``dtype="bfloat16"`` halves it;
    :func:`mesa` needs none).

    Args:
      num_examples: size of the training set (examples are addressed by index).
      num_classes: number of outputs per example.
      delay: how many visits back the targets are taken (``E~``).
      dtype: storage dtype of the bank, ``"float32"``, ``"bfloat16"`` or ``"float16"``.

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with :class:`SAFState`;
      ``update(updates, state, params=None, *, logits, indices)``.

    Paper: Du, Zhou, Feng, Tan, Zhou, "Sharpness-Aware Training for Free",
    NeurIPS 2022, arXiv:2205.14083.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.saf(num_examples=4, num_classes=2, delay=1)
      >>> state = tx.init(None)
      >>> idx = jnp.array([1, 2])
      >>> _, valid = lossjax.transforms.saf_targets(state, idx)
      >>> valid  # nothing recorded yet
      Array([False, False], dtype=bool)
      >>> _, state = tx.update({}, state, logits=jnp.array([[1.0, 0.0], [0.0, 1.0]]), indices=idx)
      >>> t, valid = lossjax.transforms.saf_targets(state, idx)
      >>> t, valid
      (Array([[1., 0.],
             [0., 1.]], dtype=float32), Array([ True,  True], dtype=bool))
    """
    fn = "saf"
    for arg, v in (("num_examples", num_examples), ("num_classes", num_classes), ("delay", delay)):
        C.check_int(fn, arg, v, 1, static=True)
    C.check_one_of(fn, "dtype", dtype, _BANK_DTYPES)
    bank_dtype = jnp.dtype(dtype)

    def init_fn(params):
        del params
        return SAFState(
            bank=jnp.zeros((delay, num_examples, num_classes), bank_dtype), seen=jnp.zeros((num_examples,), jnp.int32)
        )

    def update_fn(updates, state, params=None, *, logits=None, indices=None, **extra_args):
        del params, extra_args
        if logits is None or indices is None:
            raise ValueError(f"{fn}: `update` needs the extra arguments `logits` [B, {num_classes}] and `indices` [B].")
        logits = C.check_array(fn, "logits", logits, ndim=2, dtype="float", shape=(None, num_classes))
        indices = C.check_array(fn, "indices", indices, ndim=1, dtype="int", shape=(logits.shape[0],))
        C.debug_check(
            jnp.all((indices >= 0) & (indices < num_examples)), f"{fn}: indices must lie in [0, {num_examples})"
        )
        slot = state.seen[indices] % delay
        bank = state.bank.at[slot, indices].set(lax.stop_gradient(logits).astype(bank_dtype))
        seen = state.seen.at[indices].add(1)
        return updates, SAFState(bank=bank, seen=seen)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def saf_targets(state: SAFState, indices: ArrayLike) -> tuple[Array, Array]:
    r"""The past outputs of examples ``indices`` (SAF's targets) and whether they exist.

    .. math::
        t_i = \text{bank}[s_i \bmod \text{delay},\ i],\qquad \text{valid}_i = s_i \ge \text{delay}

    with ``s_i`` the number of times example ``i`` was recorded: the slot read
    is the one written ``delay`` visits ago (and overwritten next).

    Args:
      state: a :class:`SAFState` (find it in a chained state with
        ``optax.tree.get(opt_state, "bank")``-style lookups, or keep the
        transform's state at a known position).
      indices: example indices ``[B]``.

    Returns:
      ``(target_logits [B, C] float32, valid [B] bool)``: ``valid`` is False for
      examples recorded fewer than ``delay`` times (use it as ``where`` of
      :func:`lossjax.losses.trajectory_loss`).

    Paper: Du, Zhou, Feng, Tan, Zhou, "Sharpness-Aware Training for Free",
    NeurIPS 2022, arXiv:2205.14083.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> state = lossjax.transforms.saf(num_examples=3, num_classes=2, delay=2).init(None)
      >>> lossjax.transforms.saf_targets(state, jnp.array([0]))[1]
      Array([False], dtype=bool)
    """
    fn = "saf_targets"
    if not isinstance(state, SAFState):
        raise TypeError(f"{fn}: `state` must be a SAFState, got {type(state).__name__}.")
    indices = C.check_array(fn, "indices", indices, ndim=1, dtype="int")
    delay = state.bank.shape[0]
    seen = state.seen[indices]
    targets = state.bank[seen % delay, indices]
    return targets.astype(C.compute_dtype(targets)), seen >= delay


def _mesa_sample() -> TransformSample:
    params = _toy_params()
    return TransformSample(params=params, updates=_toy_grad_numpy(params), hyperparams={"decay": 0.9})


@register(
    "mesa",
    aliases=("memory_efficient_saf",),
    family=FAMILY,
    kind="transform",
    formula="ema <- decay ema + (1 - decay) w;  "
    "loss += lambda mean_i KL(softmax(f(ema, x_i)/tau) || softmax(f(w, x_i)/tau))",
    paper="Sharpness-Aware Training for Free (2022, arXiv:2205.14083), MESA variant",
    reference="the paper's MESA (EMA teacher); hand-checked EMA recursion in tests",
    sample=_mesa_sample,
)
def mesa(*, decay: float = 0.9995) -> optax.GradientTransformationExtraArgs:
    r"""MESA: keeps an EMA of the weights whose outputs are the trajectory-loss targets.

    .. math::
        \bar w_t = \text{decay}\,\bar w_{t-1} + (1-\text{decay})\,w_t,\ \ \bar w_0 = w_0,\qquad
        \text{loss} = L(w) + \lambda\,\frac{1}{|B|}\sum_i
        \mathrm{KL}\big(\mathrm{softmax}(f(\bar w, x_i)/\tau)\,\|\,\mathrm{softmax}(f(w, x_i)/\tau)\big)

    The transform passes ``updates`` through unchanged and updates the EMA
    from the ``params`` it is given (the weights before this step's update:
    a one-step lag that does not matter at ``decay`` near 1). Read the EMA with
    :func:`mesa_params`; the extra cost is one forward pass of the EMA model, no
    extra gradient, and one parameter-sized buffer.

    Args:
      decay: the EMA factor in ``[0, 1)`` (the paper's ``beta``, same convention; 0.9995 in the paper).

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with :class:`MESAState`.

    Paper: Du, Zhou, Feng, Tan, Zhou, "Sharpness-Aware Training for Free",
    NeurIPS 2022, arXiv:2205.14083 (the memory-efficient MESA form).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.mesa(decay=0.5)
      >>> state = tx.init(jnp.array([0.0]))
      >>> _, state = tx.update(jnp.array([0.0]), state, jnp.array([2.0]))
      >>> lossjax.transforms.mesa_params(state)
      Array([1.], dtype=float32)
    """
    fn = "mesa"
    C.check_in_range(fn, "decay", decay, 0.0, 1.0, high_inclusive=False)

    def init_fn(params):
        return MESAState(ema=jax.tree.map(jnp.array, params))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(f"{fn}: `update` needs `params` to update the EMA, got None.")
        dtype = _trees.compute_dtype(params)
        b = jnp.asarray(decay, dtype)
        ema = jax.tree.map(
            lambda m, w: (b * m.astype(dtype) + (1 - b) * w.astype(dtype)).astype(m.dtype), state.ema, params
        )
        return updates, MESAState(ema=ema)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def mesa_params(opt_state: Any) -> PyTree:
    r"""The EMA weights held by a :func:`mesa` transform, found anywhere in ``opt_state``.

    .. math::
        \bar w_t = \text{decay}\,\bar w_{t-1} + (1-\text{decay})\,w_t

    (the MESA teacher's weights; see :func:`mesa`).

    Args:
      opt_state: a :class:`MESAState` or any optimizer state containing exactly one.

    Returns:
      The EMA parameter pytree.

    Paper: Du, Zhou, Feng, Tan, Zhou, "Sharpness-Aware Training for Free",
    NeurIPS 2022, arXiv:2205.14083 (MESA).

    Example:
      >>> import jax.numpy as jnp, optax, lossjax
      >>> tx = optax.chain(lossjax.transforms.mesa(), optax.sgd(0.1))
      >>> lossjax.transforms.mesa_params(tx.init({"w": jnp.ones(2)}))
      {'w': Array([1., 1.], dtype=float32)}
    """
    found = []

    def visit(s):
        if isinstance(s, MESAState):
            found.append(s)
        elif isinstance(s, (tuple, list)):
            for x in s:
                visit(x)
        elif isinstance(s, dict):
            for x in s.values():
                visit(x)

    visit(opt_state)
    if len(found) != 1:
        raise ValueError(f"mesa_params: `opt_state` must contain exactly one MESAState, found {len(found)}.")
    return found[0].ema


# --------------------------------------------------------------------------
# Multi-step SAM (optax.contrib.sam's sync_period) and weighted SAM.
# --------------------------------------------------------------------------


@register(
    "multistep_sam",
    family=FAMILY,
    kind="transform",
    formula="w_0 = w;  w_{k+1} = w_k + rho g(w_k) / (||g(w_k)|| + epsilon), k < sync_period - 1;  "
    "update with g(w_{sync_period - 1})",
    paper="Sharpness-Aware Minimization for Efficiently Improving Generalization (2021, arXiv:2010.01412); "
    "multi-step ascent as optax.contrib.sam(sync_period=...)",
    reference="optax.contrib.sam(optax.identity(), chain(contrib.normalize(), sgd(rho)), sync_period, "
    "opaque_mode=True) run in float64",
    sample=_grad_sample({"sync_period": 2}, rho=0.1, sync_period=3),
)
def multistep_sam(
    *,
    rho: float = 0.05,
    sync_period: int = 2,
    epsilon: float = 1e-12,
    axis_name: str | None = None,
    ascent_gradient: str = "global",
) -> optax.GradientTransformationExtraArgs:
    r"""SAM with ``sync_period - 1`` normalized ascent steps of length ``rho`` (optax.contrib.sam's semantics).

    .. math::
        w_0 = w,\qquad w_{k+1} = w_k + \rho\,\frac{g_k}{\|g_k\|_2 + \epsilon},\quad g_k = \nabla L(w_k),\qquad
        \text{output} = \nabla L(w_{n}),\ n = \text{sync\_period} - 1

    ``sync_period=2`` is :func:`sam`. This is ``optax.contrib.sam(opt,
    optax.chain(optax.contrib.normalize(), optax.sgd(rho)), sync_period,
    opaque_mode=True)`` with the outer optimizer chained after it instead of
    wrapped (``optax.chain(multistep_sam(...), opt)``), ``grad_fn(params)``
    instead of ``grad_fn(params, i)`` (close over the batch), and
    ``epsilon`` in the norm (a zero gradient stops the ascent instead of NaN).
    ``grad_fn`` runs ``sync_period - 1`` times per update.

    Args:
      rho: length of each ascent step (optax: the adversarial ``sgd`` learning rate).
      sync_period: ascent steps + 1 (optax's ``sync_period``), ``>= 2``.
      epsilon: added to each norm.
      axis_name: mapped axis for data parallelism; the output is averaged over it.
      ascent_gradient: ``"global"`` (ascent on device-averaged gradients) or ``"local"`` (m-sharpness).

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with an :class:`optax.EmptyState`;
      ``update(updates, state, params, *, grad_fn)`` returns the gradient at the last ascent point.

    Paper: Foret, Kleiner, Mobahi, Neyshabur, "Sharpness-Aware Minimization for
    Efficiently Improving Generalization", ICLR 2021, arXiv:2010.01412 (multi-step
    ascent: its appendix; optax.contrib.sam's ``sync_period``).

    Example:
      >>> import jax, jax.numpy as jnp, lossjax
      >>> loss = lambda p: 0.5 * jnp.sum(p**2)  # g(w) = w: each step moves rho along w
      >>> tx = lossjax.transforms.multistep_sam(rho=0.5, sync_period=3)
      >>> params = jnp.array([3.0, 4.0])
      >>> tx.update(params, tx.init(params), params, grad_fn=jax.grad(loss))[0]  # w (1 + 2 * 0.5 / 5)
      Array([3.6, 4.8], dtype=float32)
    """
    fn = "multistep_sam"
    _check_radius(fn, rho, epsilon)
    _check_axis(fn, axis_name, ascent_gradient)
    C.check_int(fn, "sync_period", sync_period, 2, static=True)
    return _perturbed_gradient(
        fn,
        axis_name=axis_name,
        ascent_gradient=ascent_gradient,
        perturb=_sam_point(rho, epsilon),
        ascent_steps=int(sync_period) - 1,
    )


@register(
    "weighted_sam",
    aliases=("wsam",),
    family=FAMILY,
    kind="transform",
    formula="alpha = gamma / (1 - gamma);  e = rho g / (||g|| + epsilon);  update with alpha g(w + e) + (1 - alpha) g",
    paper="Sharpness-Aware Minimization Revisited: Weighted Sharpness as a Regularization Term (2023, "
    "arXiv:2305.15817)",
    reference="intelligent-machine-learning/dlrover@19e5d79 atorch/atorch/optimizers/wsam.py::WeightedSAM "
    "(decouple=False)",
    sample=_grad_sample({"gamma": 0.3, "rho": 0.2}, rho=0.05, gamma=0.9),
)
def weighted_sam(
    *,
    rho: float = 0.05,
    gamma: float = 0.9,
    epsilon: float = 1e-12,
    axis_name: str | None = None,
    ascent_gradient: str = "global",
) -> optax.GradientTransformationExtraArgs:
    r"""Weighted SAM (WSAM): the loss plus :math:`\tfrac{\gamma}{1-\gamma}` times the SAM sharpness.

    .. math::
        L(w) + \alpha\,\big(L(w + e) - L(w)\big),\quad \alpha = \frac{\gamma}{1 - \gamma},\quad
        e = \rho\,\frac{g}{\|g\|_2 + \epsilon}
        \;\Rightarrow\; \text{output} = \alpha\,\nabla L(w + e) + (1 - \alpha)\,g

    :math:`\gamma = 1/2` is :func:`sam`; :math:`\gamma = 0` the plain
    gradient. This is the official code's coupled form (``decouple=False``);
    its decoupled form applies :math:`-\eta\,\alpha\,(\nabla L(w+e) - g)`
    outside the base optimizer, which a gradient transformation chained before
    the optimizer cannot express.

    Args:
      rho: neighbourhood radius.
      gamma: sharpness weight :math:`0 \le \gamma < 1` (official default 0.9).
      epsilon: added to the norm (the official ``sam_eps``).
      axis_name: mapped axis for data parallelism; the output is averaged over it.
      ascent_gradient: ``"global"`` or ``"local"`` (see :func:`sam`).

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with an :class:`optax.EmptyState`.

    Paper: Yue, Jiang, Ye, Gao, Liu, Zhang, "Sharpness-Aware Minimization Revisited:
    Weighted Sharpness as a Regularization Term", KDD 2023, arXiv:2305.15817.

    Example:
      >>> import jax, jax.numpy as jnp, lossjax
      >>> loss = lambda p: 0.5 * jnp.sum(jnp.array([1.0, 4.0]) * p**2)
      >>> params = jnp.array([1.0, 1.0])
      >>> tx = lossjax.transforms.weighted_sam(rho=0.5, gamma=0.5)  # alpha = 1: plain SAM
      >>> tx.update(jax.grad(loss)(params), tx.init(params), params, grad_fn=jax.grad(loss))[0].round(4)
      Array([1.1213, 5.9403], dtype=float32)
    """
    fn = "weighted_sam"
    _check_radius(fn, rho, epsilon)
    _check_axis(fn, axis_name, ascent_gradient)
    C.check_in_range(fn, "gamma", gamma, 0.0, 1.0, high_inclusive=False)

    def combine(g, g_p, state, dtype):
        alpha = jnp.asarray(gamma, dtype) / (1 - jnp.asarray(gamma, dtype))
        out = jax.tree.map(lambda a, b: alpha * b.astype(dtype) + (1 - alpha) * a.astype(dtype), g, g_p)
        return out, state

    return _perturbed_gradient(
        fn, axis_name=axis_name, ascent_gradient=ascent_gradient, perturb=_sam_point(rho, epsilon), combine=combine
    )


# --------------------------------------------------------------------------
# Bayesian SAM and robust weight perturbation (both take the skeleton's ``context``).
# --------------------------------------------------------------------------


class BayesianSAMState(NamedTuple):
    """State of :func:`bayesian_sam`.

    Attributes:
      count: steps taken (int32 scalar), the argument of a ``learning_rate`` schedule.
      key: the PRNG key (uint32[2]) of the next weight-noise draw.
      momentum: the gradient momentum ``g_m`` (params' dtype).
      precision: the per-weight posterior precision ``s`` (params' dtype; the posterior variance is ``1/(N s)``).
    """

    count: Array
    key: Array
    momentum: PyTree
    precision: PyTree


def _normal_like(key, params, dtype):
    """One standard normal draw per leaf, leaf ``i`` from ``split(key, n)[i]`` (in ``jax.tree`` order)."""
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, max(len(leaves), 1))
    return jax.tree.unflatten(treedef, [jax.random.normal(keys[i], w.shape, dtype) for i, w in enumerate(leaves)])


def _bsam_sample():
    return _grad_sample(
        {"weight_decay": 0.01, "b1": 0.5, "init_precision": 2.0, "seed": 3, "learning_rate": 0.05},
        num_examples=50,
        learning_rate=0.1,
        rho=0.05,
    )()


@register(
    "bayesian_sam",
    aliases=("bsam",),
    family=FAMILY,
    kind="transform",
    formula="e ~ N(0, 1/(N s));  g = g(w + e);  g_m <- b1 g_m + (1 - b1)(g(w + rho g / s) + wd w);  "
    "update = -lr g_m / s;  s <- b2 s + (1 - b2)(sqrt(s) |g| + damping + wd)",
    paper="SAM as an Optimal Relaxation of Bayes (2023, arXiv:2210.01620)",
    reference="team-approx-bayes/bayesian-sam@99d9942 optim.py::build_bsam_optimizer (msharpness=1)",
    sample=_bsam_sample,
)
def bayesian_sam(
    *,
    num_examples: int,
    learning_rate: float | optax.Schedule = 0.5,
    rho: float = 0.05,
    b1: float = 0.9,
    b2: float = 0.999,
    weight_decay: float = 1e-4,
    damping: float = 0.1,
    init_precision: float = 1.0,
    seed: int = 0,
    axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Bayesian SAM (bSAM): an Adam-like SAM that learns a Gaussian posterior ``N(w, 1/(N s))`` over the weights.

    .. math::
        \epsilon \sim \mathcal N\big(0, \tfrac{1}{N s}\big),\quad g = \nabla L(w + \epsilon),\quad
        g_m \leftarrow \beta_1 g_m + (1-\beta_1)\big(\nabla L(w + \rho\, g / s) + \delta w\big)

    .. math::
        \text{output} = -\alpha_t\, \frac{g_m}{s},\qquad
        s \leftarrow \beta_2 s + (1-\beta_2)\big(\sqrt{s}\,|g| + \text{damping} + \delta\big)

    (elementwise; the step uses the precision ``s`` from before its update, as
    the reference). ``grad_fn`` runs twice per step, at the noisy sample and at
    the SAM point; ``updates`` (the gradient at ``w``) is not used, only its
    structure and dtypes. The output is the parameter update (learning rate
    included), so use it alone: ``optax.apply_updates(params, out)``. The
    posterior variance ``1/(N s)`` is ``state.precision`` (see
    :class:`BayesianSAMState`). Under ``axis_name`` every gradient is averaged
    over the devices first (one device on the whole batch) and all devices draw
    the same noise.

    Args:
      num_examples: :math:`N`, the training-set size (the posterior's sample size).
      learning_rate: :math:`\alpha`, a float or an optax schedule of the step count
        (the reference's ``alpha * lrfactor``; 0.5 in its 2-D demo).
      rho: SAM radius :math:`\rho` (0.05 in the demo).
      b1: momentum factor :math:`\beta_1` of the gradient.
      b2: EMA factor :math:`\beta_2` of the precision.
      weight_decay: :math:`\delta`, the prior precision (L2 regularization; 1e-4 in the demo).
      damping: added to the precision update (0.1 in the demo).
      init_precision: initial :math:`s` (the reference's ``s_init``, 1).
      seed: seed of the PRNG key kept in the state.
      axis_name: mapped axis for data parallelism; all gradients are averaged over it.

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with :class:`BayesianSAMState`;
      ``update(updates, state, params, *, grad_fn)`` returns the parameter update.

    Paper: Möllenhoff, Khan, "SAM as an Optimal Relaxation of Bayes", ICLR 2023, arXiv:2210.01620.

    Example:
      >>> import jax, jax.numpy as jnp, lossjax
      >>> loss = lambda p: jnp.sum(p)  # constant gradient 1: the noise and the SAM point do not matter
      >>> tx = lossjax.transforms.bayesian_sam(num_examples=10, learning_rate=0.5, b1=0.0, weight_decay=0.0)
      >>> params = jnp.array([1.0, 2.0])
      >>> u, state = tx.update(params, tx.init(params), params, grad_fn=jax.grad(loss))
      >>> u  # -0.5 * g / s with s = 1
      Array([-0.5, -0.5], dtype=float32)
      >>> state.precision  # 0.999 + 0.001 (1 * |1| + 0.1)
      Array([1.0001, 1.0001], dtype=float32)
    """
    fn = "bayesian_sam"
    C.check_int(fn, "num_examples", num_examples, 1)
    if not callable(learning_rate):
        C.check_positive(fn, "learning_rate", learning_rate)
    C.check_positive(fn, "rho", rho, allow_zero=True)
    C.check_in_range(fn, "b1", b1, 0.0, 1.0, high_inclusive=False)
    C.check_in_range(fn, "b2", b2, 0.0, 1.0, high_inclusive=False)
    C.check_positive(fn, "weight_decay", weight_decay, allow_zero=True)
    C.check_positive(fn, "damping", damping, allow_zero=True)
    C.check_positive(fn, "init_precision", init_precision)
    C.check_int(fn, "seed", seed)
    _check_axis(fn, axis_name, "global")

    def init(params):
        return BayesianSAMState(
            count=jnp.zeros((), jnp.int32),
            key=jax.random.PRNGKey(seed),
            momentum=jax.tree.map(jnp.zeros_like, params),
            precision=jax.tree.map(lambda w: jnp.full(w.shape, init_precision, w.dtype), params),
        )

    def perturb(g, params, state, dtype, ctx):
        del g  # bSAM's ascent direction is the gradient at a noisy sample, not at w
        key, sub = jax.random.split(state.key)
        s = jax.tree.map(lambda x: x.astype(dtype), state.precision)
        inv_n = jnp.asarray(1.0 / num_examples, dtype)
        noise = _normal_like(sub, params, dtype)
        noisy = jax.tree.map(lambda w, z, p: w.astype(dtype) + jnp.sqrt(inv_n / p) * z, params, noise, s)
        g_noisy = ctx["grad_at"](_trees.cast_like(noisy, params))
        r = jnp.asarray(rho, dtype)
        point = jax.tree.map(lambda w, x, p: w.astype(dtype) + r * x.astype(dtype) / p, params, g_noisy, s)
        b, d = jnp.asarray(b2, dtype), jnp.asarray(damping + weight_decay, dtype)
        new_s = jax.tree.map(lambda p, x: b * p + (1 - b) * (jnp.sqrt(p) * jnp.abs(x.astype(dtype)) + d), s, g_noisy)
        new_state = state._replace(key=key, precision=_trees.cast_like(new_s, state.precision))
        return _trees.cast_like(point, params), new_state

    def combine(g, g_p, state, dtype, ctx):
        del g
        old = ctx["state"]
        b, wd = jnp.asarray(b1, dtype), jnp.asarray(weight_decay, dtype)
        gm = jax.tree.map(
            lambda m, x, w: b * m.astype(dtype) + (1 - b) * (x.astype(dtype) + wd * w.astype(dtype)),
            old.momentum,
            g_p,
            ctx["params"],
        )
        lr = jnp.asarray(learning_rate(old.count) if callable(learning_rate) else learning_rate, dtype)
        out = jax.tree.map(lambda m, p: -lr * m / p.astype(dtype), gm, old.precision)
        new_state = state._replace(count=optax.safe_increment(old.count), momentum=_trees.cast_like(gm, old.momentum))
        return out, new_state

    return _perturbed_gradient(
        fn, axis_name=axis_name, ascent_gradient="global", perturb=perturb, combine=combine, init=init, context=True
    )


def _toy_per_example_loss(params, x=_X, y=_Y):
    z = jnp.tanh(x @ params["w"] + params["b"][None, :])
    return jnp.mean(jnp.square(z - y), axis=1)


def _robust_wp_sample():
    params = _toy_params()
    return TransformSample(
        params=params,
        updates=_toy_grad_numpy(params),
        hyperparams={"gamma": 0.05, "loss_threshold": 0.6, "steps": 3},
        extra_args={"grad_fn": _toy_grad, "per_example_loss_fn": _toy_per_example_loss},
        variants=({"loss_threshold": 1e9, "steps": 1, "min_ndim": 1},),
    )


@register(
    "robust_weight_perturbation",
    aliases=("robust_awp",),
    family=FAMILY,
    kind="transform",
    formula="d_0 = 0;  k < steps: v_k = gamma ||w|| d_k / (||d_k|| + epsilon),  "
    "d_{k+1} = d_k + grad mean_i l_i(w + v_k) 1[l_i(w + v_k) < c];  update with g(w + v_steps)",
    paper="Robust Weight Perturbation for Adversarial Training (2022, arXiv:2205.14826)",
    reference="ChaojianYu/Robust-Weight-Perturbation@4cb190b AT_AWP_RWP/utils_rwp.py::RobustWeightPerturb.calc_awp",
    sample=_robust_wp_sample,
)
def robust_weight_perturbation(
    *,
    gamma: float = 0.01,
    loss_threshold: float = 1.7,
    steps: int = 10,
    min_ndim: int = 2,
    epsilon: float = 1e-20,
    axis_name: str | None = None,
    ascent_gradient: str = "global",
) -> optax.GradientTransformationExtraArgs:
    r"""Robust weight perturbation (RWP): AWP whose ascent only uses the examples below a loss threshold.

    .. math::
        d_0 = 0,\quad v_k = \gamma\,\|w\|\,\frac{d_k}{\|d_k\| + \epsilon},\quad
        d_{k+1} = d_k + \nabla_w \frac1B\sum_i \ell_i(w + v_k)\,\mathbb 1[\ell_i(w + v_k) < c],\qquad
        \text{output} = \nabla L(w + v_K)

    The indicator (the paper's loss stationary condition, constant in the
    gradient) drops the examples whose adversarial loss already exceeds ``c``,
    so the weight perturbation stops pushing examples that are already
    misclassified. Norms are over all perturbed leaves together (leaves of rank
    ``>= min_ndim``; the others are not perturbed), as the reference; its proxy
    SGD learning rate scales every ``d_k`` alike and cancels in ``v``. This is
    not :func:`random_weight_perturbation` (Gaussian noise, no ascent).

    ``update(updates, state, params, *, grad_fn, per_example_loss_fn)``:
    ``per_example_loss_fn(params) -> [B]`` gives the per-example losses of the
    adversarial batch (cross-entropy in the paper), ``grad_fn`` the gradient of
    the training loss; ``updates`` is not used (only its structure and dtypes).

    Args:
      gamma: relative perturbation size :math:`\gamma` (0.01 in the reference's AT runs).
      loss_threshold: :math:`c`, the loss stationary condition (1.7 in the reference, cross-entropy on CIFAR-10).
      steps: :math:`K`, ascent steps (10 in the reference).
      min_ndim: leaves with fewer dimensions are not perturbed (the reference: weights of rank >= 2).
      epsilon: added to :math:`\|d_k\|` (the reference's 1e-20).
      axis_name: mapped axis for data parallelism; the output is averaged over it.
      ascent_gradient: ``"global"`` (the ascent gradients averaged over ``axis_name``) or ``"local"``.

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with an :class:`optax.EmptyState`.

    Paper: Yu, Han, Gong, Shen, Ge, Du, Liu, "Robust Weight Perturbation for Adversarial Training",
    IJCAI 2022, arXiv:2205.14826.

    Example:
      >>> import jax, jax.numpy as jnp, lossjax
      >>> per_example = lambda p: jnp.array([0.5, 3.0]) * jnp.sum(p["w"] ** 2)  # (12.5, 75): example 1 is above c
      >>> loss = lambda p: jnp.mean(per_example(p))
      >>> params = {"w": jnp.array([[3.0, 4.0]])}
      >>> tx = lossjax.transforms.robust_weight_perturbation(gamma=0.1, loss_threshold=20.0, steps=2)
      >>> g, _ = tx.update(params, tx.init(params), params, grad_fn=jax.grad(loss), per_example_loss_fn=per_example)
      >>> bool(jnp.allclose(g["w"], 3.5 * 1.1 * params["w"]))  # the ascent direction is w: the gradient at 1.1 w
      True
    """
    fn = "robust_weight_perturbation"
    C.check_positive(fn, "gamma", gamma, allow_zero=True)
    if not isinstance(loss_threshold, (int, float)) or not (np.isfinite(loss_threshold) or loss_threshold == np.inf):
        raise ValueError(f"{fn}: `loss_threshold` must be a finite number or +inf, got {loss_threshold!r}.")
    C.check_int(fn, "steps", steps, 1, static=True)
    C.check_int(fn, "min_ndim", min_ndim, 0, static=True)
    C.check_positive(fn, "epsilon", epsilon)
    _check_axis(fn, axis_name, ascent_gradient)

    def perturb(g, params, state, dtype, ctx):
        del g
        loss_fn = ctx["extra"].get("per_example_loss_fn")
        if loss_fn is None or not callable(loss_fn):
            raise ValueError(
                f"{fn}: `update` needs the extra argument `per_example_loss_fn` (params -> [B] losses), "
                f"got {loss_fn!r}."
            )
        c = jnp.asarray(loss_threshold, dtype)
        chosen = [jnp.ndim(w) >= min_ndim for w in jax.tree.leaves(params)]
        treedef = jax.tree.structure(params)

        def masked(tree):  # zero the leaves that are not perturbed
            leaves = jax.tree.leaves(tree)
            return jax.tree.unflatten(
                treedef, [x.astype(dtype) if k else jnp.zeros(x.shape, dtype) for x, k in zip(leaves, chosen)]
            )

        def scaled(tree, c):
            return jax.tree.map(lambda x: c * x, tree)

        def objective(p):
            losses = loss_fn(p)
            keep = jax.lax.stop_gradient(losses < c).astype(losses.dtype)
            return jnp.mean(losses * keep)

        w_norm = _trees.norm(masked(params), dtype)
        eps = jnp.asarray(epsilon, dtype)
        d = masked(jax.tree.map(jnp.zeros_like, params))
        v = d
        for _ in range(steps):
            point = _trees.cast_like(jax.tree.map(lambda w, x: w.astype(dtype) + x, params, v), params)
            step = jax.grad(objective)(vary(point, axis_name))
            if ascent_gradient == "global":
                step = pmean(step, axis_name)
            d = jax.tree.map(lambda a, b: a + b, d, masked(step))
            v = scaled(d, jnp.asarray(gamma, dtype) * w_norm / (_trees.norm(d, dtype) + eps))
        point = jax.tree.map(lambda w, x: w.astype(dtype) + x, params, v)
        return _trees.cast_like(point, params), state

    def combine(g, g_p, state, dtype, ctx):
        del g, dtype, ctx
        return g_p, state

    return _perturbed_gradient(
        fn, axis_name=axis_name, ascent_gradient=ascent_gradient, perturb=perturb, combine=combine, context=True
    )
