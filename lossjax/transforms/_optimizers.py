"""Optimizer-side transforms the catalog names that are not SAM variants: MoMo and decoupled weight decay.

:func:`momo` is a whole optimizer (its output is the parameter update: use it
alone or after gradient clipping); :func:`decoupled_weight_decay` goes LAST in
a chain, after the learning rate, so that the decay is not scaled by it::

    tx = optax.chain(
        optax.scale_by_adam(), optax.scale(-1e-3), lossjax.transforms.decoupled_weight_decay(weight_decay=1e-4)
    )
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lossjax import _checks as C
from lossjax import _trees
from lossjax.registry import TransformSample, register

__all__ = ["DecoupledWeightDecayState", "MomoState", "decoupled_weight_decay", "max_norm_projection", "momo"]

FAMILY = "optimizers"

Array = jax.Array
PyTree = Any


def _params():
    rng = np.random.default_rng(3)
    return {"w": rng.normal(size=(3, 2)).astype(np.float32), "b": rng.normal(size=(2,)).astype(np.float32)}


def _updates():
    rng = np.random.default_rng(4)
    return {"w": rng.normal(size=(3, 2)).astype(np.float32), "b": rng.normal(size=(2,)).astype(np.float32)}


# ------------------------------- MoMo ----------------------------------


class MomoState(NamedTuple):
    """State of :func:`momo`: the averaged gradient, loss and ``<g, w>``, the lower bound and the step count."""

    exp_avg: PyTree
    loss_avg: Array
    gradient_dot_params_avg: Array
    lower_bound: Array
    count: Array


def _momo_sample() -> TransformSample:
    return TransformSample(
        params=_params(),
        updates=_updates(),
        hyperparams={"learning_rate": 0.5, "lower_bound": 0.1},
        extra_args={"value": np.float32(2.5)},
        variants=({"weight_decay": 0.1, "adapt_lower_bound": True, "learning_rate": 10.0},),
    )


@register(
    "momo",
    family=FAMILY,
    kind="transform",
    formula="d = decay d + (1 - decay) g; fbar, gamma likewise for f(w), <g, w>; "
    "tau = min(lr, ((1 + lr wd)(fbar - f* - gamma) + <d, w>)_+ / ||d||^2); "
    "update = -tau d - lr wd / (1 + lr wd) w",
    paper="MoMo: Momentum Models for Adaptive Learning Rates (2023, arXiv:2305.07583)",
    reference="optax.contrib.momo (optax 0.2.8) run in float64",
    sample=_momo_sample,
    runtime=("value",),
)
def momo(
    *,
    learning_rate: float = 1.0,
    decay: float = 0.9,
    lower_bound: float = 0.0,
    weight_decay: float = 0.0,
    adapt_lower_bound: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""MoMo: SGD with momentum whose step size is capped by a Polyak-type step on a momentum model of the loss.

    .. math::
        d_k = \beta d_{k-1} + (1-\beta) g_k,\quad
        \bar f_k = \beta \bar f_{k-1} + (1-\beta) f(w_k),\quad
        \gamma_k = \beta \gamma_{k-1} + (1-\beta) \langle g_k, w_k\rangle

    .. math::
        \tau_k = \min\Big(\alpha_k,\ \frac{\big((1+\alpha_k\lambda)(\bar f_k - f_* - \gamma_k)
        + \langle d_k, w_k\rangle\big)_+}{\|d_k\|^2}\Big),\qquad
        \Delta w = -\tau_k d_k - \frac{\alpha_k \lambda}{1 + \alpha_k \lambda} w_k

    with :math:`\beta` = ``decay`` (0 at the first step, so the averages start
    at the first values), :math:`f_*` = ``lower_bound`` and :math:`\lambda` =
    ``weight_decay``. No step is taken along ``d`` when :math:`\|d\|^2` is at
    most the float epsilon. With ``adapt_lower_bound`` the lower bound is
    estimated online (MoMo*, the paper's Algorithm 3, as optax). The output is
    the parameter update (learning rate included): ``update(grads, state,
    params, *, value)`` with ``value`` the loss at ``params``.

    Args:
      learning_rate: the cap :math:`\alpha` on the step (a float or an optax schedule of the step count).
      decay: :math:`\beta`, the EMA factor of the momentum model (the paper: 0.9).
      lower_bound: :math:`f_*`, a lower bound of the loss (0 for most losses).
      weight_decay: :math:`\lambda`, decoupled (AdamW-style) weight decay.
      adapt_lower_bound: estimate the lower bound online (MoMo*).

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with a :class:`MomoState`.

    Paper: Schaipp, Ohana, Eickenberg, Defazio, Gower, "MoMo: Momentum Models
    for Adaptive Learning Rates", ICML 2024, arXiv:2305.07583.

    Example:
      >>> import jax, jax.numpy as jnp, lossjax
      >>> f = lambda w: jnp.sum(w**2)
      >>> tx = lossjax.transforms.momo(learning_rate=10.0)
      >>> w = jnp.array([1.0, 2.0])
      >>> u, _ = tx.update(jax.grad(f)(w), tx.init(w), w, value=f(w))
      >>> (w + u).tolist()  # the Polyak step f / ||g||^2 = 5 / 20 lands on the minimum
      [0.5, 1.0]
    """
    fn = "momo"
    if not callable(learning_rate):
        C.check_positive(fn, "learning_rate", learning_rate)
    C.check_in_range(fn, "decay", decay, 0.0, 1.0, high_inclusive=False)
    C.check_positive(fn, "weight_decay", weight_decay, allow_zero=True)
    if not isinstance(lower_bound, jax.core.Tracer) and not np.isfinite(lower_bound):
        raise ValueError(f"{fn}: `lower_bound` must be a finite number, got {lower_bound!r}.")
    if not isinstance(adapt_lower_bound, bool):
        raise ValueError(f"{fn}: `adapt_lower_bound` must be a bool, got {adapt_lower_bound!r}.")

    def init_fn(params):
        dtype = _trees.compute_dtype(params)
        zero = jnp.zeros((), dtype)
        exp_avg = jax.tree.map(lambda p: jnp.zeros(p.shape, dtype), params)
        return MomoState(exp_avg, zero, zero, jnp.asarray(lower_bound, dtype), jnp.zeros((), jnp.int32))

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(f"{fn}: `update` needs `params`, got None.")
        if value is None:
            raise ValueError(f"{fn}: `update` needs the extra argument `value` (the loss at `params`), got None.")
        dtype = state.loss_avg.dtype
        b = jnp.where(state.count == 0, jnp.zeros((), dtype), jnp.asarray(decay, dtype))
        loss_avg = b * state.loss_avg + (1 - b) * jnp.asarray(value, dtype)
        exp_avg = jax.tree.map(lambda m, g: b * m + (1 - b) * g.astype(dtype), state.exp_avg, updates)
        gdw = b * state.gradient_dot_params_avg + (1 - b) * _trees.vdot(updates, params, dtype)
        d_norm2 = _trees.squared_norm(exp_avg, dtype)
        d_dot_w = _trees.vdot(exp_avg, params, dtype)
        alpha = jnp.asarray(learning_rate(state.count) if callable(learning_rate) else learning_rate, dtype)
        shrink = 1 + alpha * jnp.asarray(weight_decay, dtype)
        lb = state.lower_bound
        if adapt_lower_bound:
            cap = shrink * (loss_avg - gdw) + d_dot_w
            lb = jnp.where(cap < shrink * lb, jnp.maximum(cap / (2 * shrink), jnp.asarray(lower_bound, dtype)), lb)
        small = d_norm2 <= jnp.finfo(dtype).eps
        num = jnp.maximum(shrink * (loss_avg - lb - gdw) + d_dot_w, jnp.zeros((), dtype))
        t1 = jnp.where(small, jnp.zeros((), dtype), num / jnp.where(small, jnp.ones((), dtype), d_norm2))
        tau = jnp.minimum(alpha, t1)
        wd = alpha * jnp.asarray(weight_decay, dtype) / shrink
        out = jax.tree.map(lambda m, p: -wd * p.astype(dtype) - tau * m, exp_avg, params)
        new_lb = lb
        if adapt_lower_bound:
            new_lb = jnp.maximum(loss_avg + d_dot_w - gdw - 0.5 * tau * d_norm2, jnp.asarray(lower_bound, dtype))
        new_state = MomoState(exp_avg, loss_avg, gdw, new_lb, optax.safe_increment(state.count))
        return _trees.cast_like(out, updates), _trees.keep_if_finite(new_state, state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


# ------------------------------- decoupled weight decay ----------------------------------


class DecoupledWeightDecayState(NamedTuple):
    """State of :func:`decoupled_weight_decay`: the step count (for a schedule)."""

    count: Array


def _dwd_sample() -> TransformSample:
    return TransformSample(params=_params(), updates=_updates(), hyperparams={"weight_decay": 0.05})


@register(
    "decoupled_weight_decay",
    family=FAMILY,
    kind="transform",
    formula="update = updates - schedule_multiplier(t) * weight_decay * w  (after the learning rate)",
    paper="Decoupled Weight Decay Regularization (2019, arXiv:1711.05101)",
    reference="closed form in numpy; equals optax.adamw(lr, weight_decay=wd/lr) when chained after scale(-lr)",
    sample=_dwd_sample,
)
def decoupled_weight_decay(
    *, weight_decay: float = 1e-4, schedule_multiplier: float | optax.Schedule = 1.0
) -> optax.GradientTransformation:
    r"""Weight decay applied after the learning rate: :math:`w \leftarrow w + u - \eta_t \lambda w`.

    .. math:: \text{output} = u - \eta_t\,\lambda\,w

    with :math:`u` the (already learning-rate scaled) update and :math:`\eta_t`
    the schedule multiplier of AdamW's Algorithm 2 (1 by default): the decay
    does not scale with the learning rate, so tuning one leaves the other
    alone (the fully decoupled form; ``optax.add_decayed_weights`` before the
    learning rate is the coupled-to-lr one of ``optax.adamw``). Put it last in
    the chain.

    Args:
      weight_decay: :math:`\lambda \ge 0` (per step).
      schedule_multiplier: :math:`\eta_t`, a float or an optax schedule of the step count.

    Returns:
      An :class:`optax.GradientTransformation` with a :class:`DecoupledWeightDecayState`.

    Paper: Loshchilov, Hutter, "Decoupled Weight Decay Regularization", ICLR
    2019, arXiv:1711.05101.

    Example:
      >>> import jax.numpy as jnp, optax, lossjax
      >>> tx = lossjax.transforms.decoupled_weight_decay(weight_decay=0.1)
      >>> w = jnp.array([1.0, -2.0])
      >>> tx.update(jnp.array([0.5, 0.5]), tx.init(w), w)[0].tolist()
      [0.4000000059604645, 0.699999988079071]
    """
    fn = "decoupled_weight_decay"
    C.check_positive(fn, "weight_decay", weight_decay, allow_zero=True)
    if not callable(schedule_multiplier):
        C.check_positive(fn, "schedule_multiplier", schedule_multiplier, allow_zero=True)

    def init_fn(params):
        del params
        return DecoupledWeightDecayState(jnp.zeros((), jnp.int32))

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(f"{fn}: `update` needs `params` (the weights to decay), got None.")
        dtype = _trees.compute_dtype(updates, params)
        eta = schedule_multiplier(state.count) if callable(schedule_multiplier) else schedule_multiplier
        scale = jnp.asarray(eta, dtype) * jnp.asarray(weight_decay, dtype)
        out = jax.tree.map(lambda u, p: u.astype(dtype) - scale * p.astype(dtype), updates, params)
        return _trees.cast_like(out, updates), DecoupledWeightDecayState(optax.safe_increment(state.count))

    return optax.GradientTransformation(init_fn, update_fn)


# ------------------------------- max-norm projection ----------------------------------


def _max_norm_sample() -> TransformSample:
    return TransformSample(params=_params(), updates=_updates(), hyperparams={"max_norm": 1.5})


@register(
    "max_norm_projection",
    family=FAMILY,
    kind="transform",
    formula="w' = w + u;  w'_j <- w'_j min(1, max_norm / ||w'_j||) for each unit j (all axes but the last);  "
    "update = w' - w",
    paper="Dropout: A Simple Way to Prevent Neural Networks from Overfitting (JMLR 2014), max-norm regularization",
    reference="closed form in numpy (keras.constraints.MaxNorm without its 1e-7 guard)",
    sample=_max_norm_sample,
)
def max_norm_projection(*, max_norm: float = 3.0) -> optax.GradientTransformation:
    r"""Max-norm constraint: the update that lands on the projection of ``params + updates`` onto the norm ball.

    .. math::
        w' = w + u,\qquad
        w'_{\cdot j} \leftarrow w'_{\cdot j}\,\min\Big(1, \frac{c}{\|w'_{\cdot j}\|_2}\Big),\qquad
        \text{output} = w' - w

    per unit :math:`j` (the last axis of every leaf of rank >= 2: the
    incoming weights of a Dense unit ``kernel[:, j]`` or of a conv filter
    ``kernel[..., j]``, as ``keras.constraints.MaxNorm``); leaves of rank < 2
    (biases, scales) are left alone. Put it LAST in the chain, after the
    learning rate: ``optax.apply_updates`` then gives the projected weights.

    Args:
      max_norm: :math:`c > 0` (the dropout paper: 3 to 4).

    Returns:
      An :class:`optax.GradientTransformation` with an :class:`optax.EmptyState`.

    Paper: Srivastava, Hinton, Krizhevsky, Sutskever, Salakhutdinov, "Dropout: A Simple Way to Prevent
    Neural Networks from Overfitting", JMLR 15, 2014 (max-norm regularization, section 5.1).

    Example:
      >>> import jax.numpy as jnp, optax, lossjax
      >>> tx = lossjax.transforms.max_norm_projection(max_norm=1.0)
      >>> w = {"kernel": jnp.array([[3.0, 0.1], [4.0, 0.2]])}  # unit 0 has norm 5
      >>> u, _ = tx.update({"kernel": jnp.zeros((2, 2))}, tx.init(w), w)
      >>> optax.apply_updates(w, u)["kernel"].round(3).tolist()
      [[0.6, 0.1], [0.8, 0.2]]
    """
    fn = "max_norm_projection"
    C.check_positive(fn, "max_norm", max_norm)

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(f"{fn}: `update` needs `params` (the weights to project), got None.")

        def one(u, w):
            if jnp.ndim(w) < 2:
                return u
            dtype = C.compute_dtype(u, w)
            new = w.astype(dtype) + u.astype(dtype)
            norm = C.safe_norm(new, axis=tuple(range(new.ndim - 1)), keepdims=True)
            c = jnp.asarray(max_norm, dtype)
            scale = jnp.where(norm > c, c / jnp.where(norm > c, norm, jnp.ones((), dtype)), jnp.ones((), dtype))
            return (new * scale - w.astype(dtype)).astype(u.dtype)

        return jax.tree.map(one, updates, params), state

    return optax.GradientTransformation(init_fn, update_fn)
