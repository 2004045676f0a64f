"""Optimizer-side transforms the catalog names that are not SAM variants.

MoMo, decoupled weight decay, max-norm projection, Normalized LR+GD
(:func:`loss_normalized_gradient_descent`), Sven (:func:`singular_value_descent`)
the softmax step limiter (:func:`softmax_singularity_step_limiter`) and CLASSP (:func:`classp`).

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
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax

from lossjax import _checks as C
from lossjax import _trees
from lossjax.registry import TransformSample, register

__all__ = [
    "ClasspState",
    "DecoupledWeightDecayState",
    "MomoState",
    "classp",
    "decoupled_weight_decay",
    "loss_normalized_gradient_descent",
    "max_norm_projection",
    "momo",
    "singular_value_descent",
    "softmax_singularity_step_limiter",
]

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


# ------------------------------- Normalized LR+GD, Sven, the softmax step limiter ----------------------------------

_X = np.asarray(np.random.default_rng(5).normal(size=(5, 3)), np.float32)


def _linear_logits(params, x=3.0 * _X):
    """The samples' toy classifier: ``x @ w + b``, ``[5, 2]`` (inputs scaled so the sample's step is capped)."""
    return x @ params["w"] + params["b"][None, :]


_XR = np.asarray(np.random.default_rng(11).normal(size=(3, 3)), np.float32)
_YR = np.asarray(np.random.default_rng(6).normal(size=(3, 2)), np.float32)


def _toy_residuals(params, x=_XR, y=_YR):
    """Per-example squared errors of a tanh regressor, ``[3]`` (Sven's sample; its Jacobian has condition ~5)."""
    return jnp.sum(jnp.square(jnp.tanh(x @ params["w"] + params["b"][None, :]) - y), axis=1)


def _lngd_sample() -> TransformSample:
    margins = np.asarray([2.0, -0.5, 0.3, 4.0, -1.5, 1.0], np.float32)
    return TransformSample(
        params=_params(),
        updates=_updates(),
        hyperparams={"learning_rate": 0.5},
        extra_args={"margins": margins},
        variants=({"learning_rate": 2.0, "epsilon": 1e-3},),
    )


@register(
    "loss_normalized_gradient_descent",
    aliases=("normalized_lr_gd",),
    family=FAMILY,
    kind="transform",
    formula="update = -lr g / max(mean_i sigmoid(-m_i), epsilon),  m_i = y_i a_i^T w (the margins)",
    paper="From Logistic Regression to the Perceptron Algorithm: Exploring Gradient Descent with Large Step "
    "Sizes (2024, arXiv:2412.08424), Normalized LR+GD",
    reference="closed form in numpy: the paper's (Normalized LR+GD) rule, section 6",
    sample=_lngd_sample,
)
def loss_normalized_gradient_descent(
    *, learning_rate: float = 1.0, epsilon: float = 1e-30
) -> optax.GradientTransformationExtraArgs:
    r"""Normalized LR+GD: gradient descent on the logistic loss with the step divided by the mean misfit weight.

    .. math::
        \beta_t = \Big(\frac1n\sum_{i=1}^n \frac{1}{1 + e^{m_i}}\Big)^{-1},\qquad
        \text{output} = -\gamma\,\beta_t\,g,\qquad m_i = y_i\, a_i^\top w_t

    with ``g`` the gradient of the mean logistic loss
    :math:`\frac1n\sum_i \log(1 + e^{-m_i})` (``updates``) and ``margins`` the
    signed margins :math:`m_i` (labels in ``{-1, +1}`` times the logits). As
    :math:`\gamma\to\infty` it becomes the batch perceptron normalized by the
    number of misclassified examples, which needs ``n`` times fewer steps than
    plain LR+GD. The paper normalizes by the mean of :math:`\sigma(-m_i) =
    -\ell'(m_i)`, not by the loss value :math:`f(w)` (the catalog's
    description): near separation both vanish, but they differ elsewhere.
    ``epsilon`` floors the mean (a step of at most ``lr |g| / epsilon``).

    Args:
      learning_rate: :math:`\gamma > 0` (the paper runs 0.1 to 100).
      epsilon: floor of the mean :math:`\sigma(-m)` (a numerical guard).

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with an :class:`optax.EmptyState`;
      ``update(updates, state, params=None, *, margins)`` returns the parameter update.

    Paper: Tyurin, "From Logistic Regression to the Perceptron Algorithm: Exploring Gradient Descent with
    Large Step Sizes", 2024, arXiv:2412.08424.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.loss_normalized_gradient_descent(learning_rate=1.0)
      >>> g = jnp.array([0.2, -0.4])
      >>> tx.update(g, tx.init(g), margins=jnp.array([0.0, 0.0]))[0]  # mean sigmoid(0) = 1/2: the step doubles
      Array([-0.4,  0.8], dtype=float32)
    """
    fn = "loss_normalized_gradient_descent"
    C.check_positive(fn, "learning_rate", learning_rate)
    C.check_positive(fn, "epsilon", epsilon)

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None, *, margins=None, **extra_args):
        del params, extra_args
        if margins is None:
            raise ValueError(f"{fn}: `update` needs the extra argument `margins` (y_i a_i^T w, shape [n]), got None.")
        m = C.check_array(fn, "margins", margins, ndim=1, dtype="float")
        dtype = _trees.compute_dtype(updates)
        weight = jnp.mean(jax.nn.sigmoid(-m.astype(dtype)))
        scale = -jnp.asarray(learning_rate, dtype) / jnp.maximum(weight, jnp.asarray(epsilon, dtype))
        out = jax.tree.map(lambda g: scale * g.astype(dtype), updates)
        return _trees.cast_like(out, updates), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _sven_sample() -> TransformSample:
    return TransformSample(
        params=_params(),
        updates=_updates(),
        hyperparams={"learning_rate": 0.5, "rank": 3},
        extra_args={"residual_fn": _toy_residuals},
        variants=({"rank": 8, "rtol": 0.3},),
    )


@register(
    "singular_value_descent",
    aliases=("sven",),
    family=FAMILY,
    kind="transform",
    formula="J = d r / d w [N, P];  J = U S V^T (top rank, s_j > max(rtol s_1, epsilon));  update = -lr V S^-1 U^T r",
    paper="Sven: Singular Value Descent as a Computationally Efficient Natural Gradient Method (2026, "
    "arXiv:2604.01279)",
    reference="sambt/sven@21830ba sven/jax/sven.py::Sven.step, sven/jax/pinv.py::pinv (mode='full')",
    sample=_sven_sample,
)
def singular_value_descent(
    *, learning_rate: float = 0.1, rank: int = 64, rtol: float = 1e-3, epsilon: float = 1e-10
) -> optax.GradientTransformationExtraArgs:
    r"""Sven: the minimum-norm update that zeroes every per-example residual to first order, via a truncated SVD.

    .. math::
        J = \frac{\partial r}{\partial w} \in \mathbb R^{N\times P},\quad
        J \approx U_k S_k V_k^\top,\qquad \text{output} = -\eta\, V_k S_k^{-1} U_k^\top r

    ``r = residual_fn(params)`` holds one residual per example (the per-example
    losses; pass ``loss ** (kappa / 2)`` for the reference's ``kappa``). Only
    the ``rank`` largest singular values are kept, and those below
    ``max(rtol * s_1, epsilon)`` are dropped (zero inverse). With ``rank >=
    min(N, P)`` and ``rtol = 0`` this is ``-lr * pinv(J) r``, a Gauss-Newton
    step. The Jacobian is built with :func:`jax.jacrev` (``N`` backward
    passes, ``N x P`` memory) and decomposed by a full SVD (the reference's
    ``mode='full'``; its default randomized SVD approximates it). ``updates``
    is not used, only its structure and dtypes; the output is the parameter
    update (learning rate included).

    Args:
      learning_rate: :math:`\eta` (the reference's README: 0.1).
      rank: ``k``, how many singular directions to keep (the reference's ``k``).
      rtol: drop singular values below ``rtol`` times the largest (the reference's 1e-3).
      epsilon: absolute cut on the singular values (the reference's ``tol``, 1e-10).

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with an :class:`optax.EmptyState`;
      ``update(updates, state, params, *, residual_fn)`` returns the parameter update.

    Paper: Bright-Thonney, Harvey, Lukas, Thaler, "Sven: Singular Value Descent as a Computationally Efficient
    Natural Gradient Method", 2026, arXiv:2604.01279.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> residual_fn = lambda w: jnp.array([2.0, 3.0]) * w - jnp.array([1.0, 1.0])  # J = diag(2, 3)
      >>> tx = lossjax.transforms.singular_value_descent(learning_rate=1.0, rank=2, rtol=0.0)
      >>> w = jnp.array([1.0, 1.0])
      >>> (w + tx.update(w, tx.init(w), w, residual_fn=residual_fn)[0]).round(4)  # one Newton step solves it
      Array([0.5   , 0.3333], dtype=float32)
    """
    fn = "singular_value_descent"
    C.check_positive(fn, "learning_rate", learning_rate)
    C.check_int(fn, "rank", rank, 1, static=True)
    C.check_positive(fn, "rtol", rtol, allow_zero=True)
    C.check_positive(fn, "epsilon", epsilon, allow_zero=True)

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None, *, residual_fn=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(f"{fn}: `update` needs `params` (the point the residuals are taken at), got None.")
        if residual_fn is None or not callable(residual_fn):
            raise ValueError(
                f"{fn}: `update` needs the extra argument `residual_fn` (params -> [N] residuals), got {residual_fn!r}."
            )
        dtype = _trees.compute_dtype(updates, params)
        flat, unravel = jax.flatten_util.ravel_pytree(jax.tree.map(lambda w: w.astype(dtype), params))

        def residuals(f):
            r = residual_fn(_trees.cast_like(unravel(f), params))
            if jnp.ndim(r) != 1:
                raise ValueError(f"{fn}: `residual_fn` must return one residual per example [N], got {jnp.shape(r)}.")
            return r.astype(dtype)

        r = residuals(flat)
        jac = jax.jacrev(residuals)(flat)
        u, s, vh = jnp.linalg.svd(jac, full_matrices=False)
        k = min(int(rank), s.shape[0])
        u, s, vh = u[:, :k], s[:k], vh[:k]
        cutoff = jnp.maximum(jnp.asarray(rtol, dtype) * s[0], jnp.asarray(epsilon, dtype))
        keep = s > cutoff
        s_inv = jnp.where(keep, 1.0 / jnp.where(keep, s, jnp.ones((), dtype)), jnp.zeros((), dtype))
        delta = vh.T @ (s_inv * (u.T @ r))
        out = unravel(-jnp.asarray(learning_rate, dtype) * delta)
        return _trees.cast_like(out, updates), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _limiter_sample() -> TransformSample:
    return TransformSample(
        params=_params(),
        updates=_updates(),
        extra_args={"logits_fn": _linear_logits},
    )


@register(
    "softmax_singularity_step_limiter",
    aliases=("ghosts_of_softmax_limiter",),
    family=FAMILY,
    kind="transform",
    formula="tau = ||v|| + epsilon;  a = d logits(w + t v / tau) / dt at 0 (one JVP);  "
    "rho = pi / (max_rows (max_k a - min_k a) + epsilon);  update = v min(1, rho / tau)",
    paper="Ghosts of Softmax: Complex Singularities That Limit Safe Step Sizes in Cross-Entropy (2026, "
    "arXiv:2603.13552)",
    reference="piyush314/ghosts-of-softmax@1450f40 experiments/lrspike/run.py::compute_rho_jvp, run_one (rho_ctrl)",
    sample=_limiter_sample,
)
def softmax_singularity_step_limiter(*, epsilon: float = 1e-12) -> optax.GradientTransformationExtraArgs:
    r"""Caps the step length at the softmax's Taylor convergence radius along the step, :math:`\rho_a = \pi/\Delta_a`.

    .. math::
        \tau = \|v\| + \epsilon,\quad a = J_z\,\frac{v}{\tau},\quad
        \Delta_a = \max_{\text{rows}}\big(\max_k a_k - \min_k a_k\big),\quad
        \rho_a = \frac{\pi}{\Delta_a + \epsilon},\qquad
        \text{output} = v\,\min\Big(1, \frac{\rho_a}{\tau}\Big)

    ``v`` is the proposed parameter update (``updates``: put this transform
    LAST in the chain, after the learning rate) and :math:`a` the directional
    derivatives of the logits along it, one Jacobian-vector product of
    ``logits_fn`` (the paper's controller evaluates it on the training batch).
    Under logit linearization the cross-entropy's Taylor series along ``v``
    converges only for steps shorter than :math:`\rho_a` (complex zeros of the
    softmax partition function); the controller keeps the step inside it and
    leaves shorter steps alone.

    Args:
      epsilon: added to :math:`\|v\|` and to :math:`\Delta_a` (the reference's 1e-12).

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` with an :class:`optax.EmptyState`;
      ``update(updates, state, params, *, logits_fn)``, ``logits_fn(params) -> [..., C]``.

    Paper: Sao, "Ghosts of Softmax: Complex Singularities That Limit Safe Step Sizes in Cross-Entropy",
    2026, arXiv:2603.13552.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits_fn = lambda w: jnp.stack([w, -w], axis=-1)  # a_k = (u, -u): spread 2 |u| = 2
      >>> tx = lossjax.transforms.softmax_singularity_step_limiter()
      >>> w = jnp.array([0.0])
      >>> tx.update(jnp.array([10.0]), tx.init(w), w, logits_fn=logits_fn)[0].round(4)  # capped at pi / 2
      Array([1.5708], dtype=float32)
    """
    fn = "softmax_singularity_step_limiter"
    C.check_positive(fn, "epsilon", epsilon)

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None, *, logits_fn=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(f"{fn}: `update` needs `params` (the point of the JVP), got None.")
        if logits_fn is None or not callable(logits_fn):
            raise ValueError(
                f"{fn}: `update` needs the extra argument `logits_fn` (params -> logits), got {logits_fn!r}."
            )
        dtype = _trees.compute_dtype(updates, params)
        eps = jnp.asarray(epsilon, dtype)
        tau = _trees.norm(updates, dtype) + eps
        direction = _trees.cast_like(jax.tree.map(lambda v: v.astype(dtype) / tau, updates), params)
        _, a = jax.jvp(logits_fn, (params,), (direction,))
        a = a.astype(dtype)
        spread = jnp.max(jnp.max(a, axis=-1) - jnp.min(a, axis=-1))
        rho = jnp.asarray(np.pi, dtype) / (spread + eps)
        scale = jnp.minimum(jnp.ones((), dtype), rho / tau)
        out = jax.tree.map(lambda v: v.astype(dtype) * scale, updates)
        return _trees.cast_like(out, updates), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


# ------------------------------- CLASSP ----------------------------------


class ClasspState(NamedTuple):
    """State of :func:`classp`: the per-weight sum of ``|g|^power`` over the steps that updated the weight."""

    grad_sum: PyTree


def _classp_sample() -> TransformSample:
    return TransformSample(
        params=_params(),
        updates=_updates(),
        hyperparams={"learning_rate": 0.2, "threshold": 0.5},
        variants=({"power": 2.0, "threshold": 0.1, "epsilon": 1e-3}, {"apply_scaling": False}),
    )


@register(
    "classp",
    family=FAMILY,
    kind="transform",
    formula="m = g^2 > threshold;  S <- S + m |g|^p;  update = -m lr g / (epsilon + S)^(1/p)  (elementwise)",
    paper="CLASSP: a Biologically-Inspired Approach to Continual Learning through Adjustment Suppression and "
    "Sparsity Promotion (2024, arXiv:2405.09637)",
    reference="oswaldoludwig/CLASSP@5fe00a0 README.md pseudo-code of CLASSP.py (elementwise threshold, |g|^p sum)",
    sample=_classp_sample,
)
def classp(
    *,
    learning_rate: float = 0.2,
    threshold: float = 0.5,
    power: float = 1.0,
    epsilon: float = 1e-5,
    apply_scaling: bool = True,
) -> optax.GradientTransformation:
    r"""CLASSP: AdaGrad-like per-weight decay of the step, and no step where the gradient is below a threshold.

    .. math::
        m = \mathbb 1[g^2 > \text{threshold}],\qquad S \leftarrow S + m\,|g|^p,\qquad
        \text{output} = -m\,\frac{\alpha\, g}{(\epsilon + S)^{1/p}}

    elementwise. Weights that were updated often get small steps (they hold
    what earlier tasks learned); weights whose gradient is small are not
    updated at all (sparse updates keep capacity for later tasks). ``p = 2``
    and ``threshold = 0`` is AdaGrad. With ``apply_scaling=False`` the step is
    :math:`-m\,\alpha g` (the threshold alone). This follows the author's
    pseudo-code of the official optimizer (the sum includes the current
    gradient, as AdaGrad); the official ``CLASSP.py`` tests the threshold on a
    whole tensor (``(grad ** 2).any() > threshold``) and accumulates ``|g|``
    whatever ``power`` is, which its pseudo-code does not. The output is the
    parameter update (learning rate included).

    Args:
      learning_rate: :math:`\alpha` (0.2 in the official code).
      threshold: the squared-gradient threshold (0.5 in the official code).
      power: :math:`p > 0` (1 in the official code).
      epsilon: added to the sum (the official 1e-5).
      apply_scaling: divide by :math:`(\epsilon + S)^{1/p}` (the official ``apply_scaling``).

    Returns:
      An :class:`optax.GradientTransformation` with a :class:`ClasspState`.

    Paper: Ludwig, "CLASSP: a Biologically-Inspired Approach to Continual Learning through Adjustment
    Suppression and Sparsity Promotion", 2024, arXiv:2405.09637.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.classp(learning_rate=1.0, threshold=0.5, power=1.0, epsilon=0.0)
      >>> g = jnp.array([2.0, 0.1])  # 0.1^2 < 0.5: no step for the second weight
      >>> out, state = tx.update(g, tx.init(g))
      >>> out, state.grad_sum
      (Array([-1.,  0.], dtype=float32), Array([2., 0.], dtype=float32))
    """
    fn = "classp"
    C.check_positive(fn, "learning_rate", learning_rate)
    C.check_positive(fn, "threshold", threshold, allow_zero=True)
    C.check_positive(fn, "power", power)
    C.check_positive(fn, "epsilon", epsilon, allow_zero=True)
    if not isinstance(apply_scaling, bool):
        raise ValueError(f"{fn}: `apply_scaling` must be a bool, got {apply_scaling!r}.")

    def init_fn(params):
        return ClasspState(grad_sum=jax.tree.map(lambda p: jnp.zeros(p.shape, _trees.compute_dtype(p)), params))

    def update_fn(updates, state, params=None):
        del params
        dtype = _trees.compute_dtype(updates)
        lr, eps = jnp.asarray(learning_rate, dtype), jnp.asarray(epsilon, dtype)

        def one(g, s):
            g = g.astype(dtype)
            m = jnp.square(g) > jnp.asarray(threshold, dtype)
            s = s + jnp.where(m, jnp.abs(g) ** jnp.asarray(power, dtype), jnp.zeros((), dtype))
            if apply_scaling:
                # (eps + S)^(1/p) > 0 wherever m holds (S >= |g|^p > 0); elsewhere the step is 0
                den = jnp.where(m, (eps + s) ** (1.0 / jnp.asarray(power, dtype)), jnp.ones((), dtype))
                step = lr * g / den
            else:
                step = lr * g
            return jnp.where(m, -step, jnp.zeros((), dtype)), s

        pairs = jax.tree.map(one, updates, state.grad_sum)
        outer = jax.tree.structure(updates)
        out, new = jax.tree.transpose(outer, jax.tree.structure((0, 0)), pairs)
        new_state = ClasspState(grad_sum=new)
        return _trees.cast_like(out, updates), _trees.keep_if_finite(new_state, state)

    return optax.GradientTransformation(init_fn, update_fn)
