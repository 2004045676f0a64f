"""Robustness and adversarial-training regularizers.

Losses that perturb the inputs of a model (VAT, TRADES, MART, the PGD helper
they share), penalize its input gradients (R1/R2, WGAN-GP), reweight a batch
towards its worst case (KL-DRO) or keep filters at unit norm (norm loss).

The model is a runtime keyword argument ``apply_fn``: a function of the inputs
``[B, ...]`` returning per-example outputs with the batch on the leading axis
(logits ``[B, C]`` or scores ``[B]``), each row depending only on its own input
(no batch statistics). Close over the parameters to differentiate them::

    loss = lambda params: jnp.mean(trades_loss(x, y, apply_fn=lambda z: model.apply(params, z), key=k))

Perturbations found by an inner maximization (power iteration, PGD) are held
constant in the backward pass, as in the official implementations: the
gradient flows through the model at the clean and the perturbed inputs only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax._targets import target_probs
from lossjax.registry import Sample, register

__all__ = [
    "RationaleInvarianceState",
    "gradient_norm_penalty",
    "holistic_robust_loss",
    "kl_dro_instance_weights",
    "mart_loss",
    "norm_loss_regularizer",
    "one_vs_rest_switching_loss",
    "parameter_gradient_norm_penalty",
    "pgd_perturbation",
    "rationale_invariance_loss",
    "trades_loss",
    "virtual_adversarial_loss",
    "weighted_energy_adversarial_training",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

FAMILY = "robustness"

_NORMS = ("linf", "l2")


# ------------------------------- helpers ----------------------------------


class _SampleModel(NamedTuple):
    """A fixed two-layer tanh network ``tanh(x W1) W2`` (the samples' model; a NamedTuple so its weights are data)."""

    w1: np.ndarray
    w2: np.ndarray

    def __call__(self, inputs):
        x = jnp.reshape(inputs, (*inputs.shape[:1], int(np.prod(inputs.shape[1:]))))
        return jnp.tanh(x @ jnp.asarray(self.w1, x.dtype)) @ jnp.asarray(self.w2, x.dtype)


class _SampleObjective(NamedTuple):
    """``logsumexp(f(x)) - f(x)_0``: the cross-entropy of the sample model against class 0 (label-free)."""

    w1: np.ndarray
    w2: np.ndarray

    def __call__(self, inputs):
        z = _SampleModel(self.w1, self.w2)(inputs)
        return jax.nn.logsumexp(z, axis=-1) - z[:, 0]


def _sample_model(d: int = 4, h: int = 5, c: int = 3, seed: int = 11) -> _SampleModel:
    rng = np.random.default_rng(seed)
    return _SampleModel(
        (rng.normal(size=(d, h)) / np.sqrt(d)).astype(np.float32), rng.normal(size=(h, c)).astype(np.float32)
    )


def _row_axes(x: Array) -> tuple[int, ...]:
    return tuple(range(1, x.ndim))


def _rows(v: Array, x: Array) -> Array:
    """A per-row ``[B]`` value broadcast against ``x [B, ...]``."""
    return jnp.reshape(v, v.shape + (1,) * (x.ndim - 1))


def _kl_logits(p_logits: Array, q_logits: Array) -> Array:
    """``KL(softmax(p) || softmax(q))`` per row, in log space."""
    log_p = jax.nn.log_softmax(p_logits, axis=-1)
    log_q = jax.nn.log_softmax(q_logits, axis=-1)
    return jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)


def _vat_normalize(d: Array) -> Array:
    """The official VAT code's ``get_normalized_vector``: divide by the max, then by the norm (guards 1e-12, 1e-6)."""
    axes = _row_axes(d)
    d = d / (C.const(1e-12, d) + jnp.max(jnp.abs(d), axis=axes, keepdims=True))
    return d / jnp.sqrt(C.const(1e-6, d) + jnp.sum(jnp.square(d), axis=axes, keepdims=True))


def _check_model_output(fn: str, out: Any, batch: int, ndim: int | None = None) -> Array:
    if not hasattr(out, "shape") or out.ndim < 1 or out.shape[0] != batch:
        got = getattr(out, "shape", type(out).__name__)
        raise ValueError(f"{fn}: `apply_fn` must return per-example outputs with leading axis {batch}, got {got}.")
    if ndim is not None and out.ndim != ndim:
        raise ValueError(f"{fn}: `apply_fn` must return logits [B, C] (rank 2), got shape {out.shape}.")
    return out


def _check_callable(fn: str, arg: str, f: Any) -> None:
    if not callable(f):
        raise TypeError(f"{fn}: `{arg}` must be a function of the inputs, got {type(f).__name__}.")


def _check_pgd(fn: str, radius, step_size, num_iterations, norm, clip_min, clip_max, random_start) -> None:
    C.check_positive(fn, "radius", radius, allow_zero=True)
    C.check_positive(fn, "step_size", step_size, allow_zero=True)
    C.check_int(fn, "num_iterations", num_iterations, 0, static=True)
    C.check_one_of(fn, "norm", norm, _NORMS)
    C.check_positive(fn, "random_start", random_start, allow_zero=True)
    for arg, v in (("clip_min", clip_min), ("clip_max", clip_max)):
        if v is not None and not (isinstance(v, (int, float)) and np.isfinite(v)):
            raise ValueError(f"{fn}: `{arg}` must be a finite number or None, got {v!r}.")
    if clip_min is not None and clip_max is not None and clip_min >= clip_max:
        raise ValueError(f"{fn}: `clip_min` must be < `clip_max`, got {clip_min!r} >= {clip_max!r}.")


def _clip(x: Array, lo, hi) -> Array:
    if lo is not None:
        x = jnp.maximum(x, C.const(lo, x))
    if hi is not None:
        x = jnp.minimum(x, C.const(hi, x))
    return x


def _pgd(objective, x, key, radius, step_size, num_iterations, norm, clip_min, clip_max, random_start):
    """PGD ascent on ``sum(objective(x_adv))`` from ``x + random_start * N(0, 1)`` (TRADES/MART's rules)."""
    x = jax.lax.stop_gradient(x)
    noise = jax.random.normal(key, x.shape, jnp.float32).astype(x.dtype) * C.const(random_start, x)
    grad_fn = jax.grad(lambda z: jnp.sum(objective(z)))
    r = C.const(radius, x)
    step = C.const(step_size, x)
    if norm == "linf":

        def body(_, xa):
            g = grad_fn(xa)
            xa = xa + step * jnp.sign(g)
            xa = jnp.minimum(jnp.maximum(xa, x - r), x + r)
            return _clip(xa, clip_min, clip_max)

        xa = jax.lax.fori_loop(0, num_iterations, body, x + noise)
    else:  # TRADES's l_2 branch: normalized steps on delta, clamp, renorm to the ball

        def body(_, delta):
            g = grad_fn(x + delta)
            gn = C.safe_norm(g, axis=_row_axes(g), keepdims=True)
            ok = gn > 0
            delta = delta + step * jnp.where(ok, g / jnp.where(ok, gn, jnp.ones_like(gn)), jnp.zeros_like(g))
            delta = _clip(x + delta, clip_min, clip_max) - x
            dn = C.safe_norm(delta, axis=_row_axes(delta), keepdims=True)
            scale = jnp.where(dn > r, r / (dn + C.const(1e-7, dn)), jnp.ones_like(dn))
            return delta * scale

        xa = x + jax.lax.fori_loop(0, num_iterations, body, noise)
    return jax.lax.stop_gradient(_clip(xa, clip_min, clip_max))


def _prepare_inputs(fn: str, inputs, where):
    inputs = C.check_array(fn, "inputs", inputs, min_ndim=1, dtype="float")
    dtype = C.compute_dtype(inputs)
    mask = C.prepare_where(fn, where, inputs.shape[:1])
    return C.fill_masked(C.as_compute(inputs, dtype), mask), mask, dtype


def _model_sample(batch: int = 5, d: int = 4, seed: int = 0, **kwargs) -> tuple[np.ndarray, _SampleModel]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.15, 0.85, size=(batch, d)).astype(np.float32)
    return x, _sample_model(d=d)


# ------------------------------- VAT ----------------------------------


def _vat_sample():
    x, model = _model_sample()
    # numpy, not the model's JAX ops: the sample must not depend on the backend or XLA's flags
    logits = (np.tanh(x.astype(np.float64) @ model.w1) @ model.w2).astype(np.float32)
    # The random start depends on the batch layout, so `where` cannot equal slicing the batch:
    # tests/losses/test_robustness.py checks masking (exact zeros, no NaN from padded rows) instead.
    return Sample(
        args=(x, logits),
        # xi = 1e-6 (the paper's) gives a float32 direction dominated by rounding (KL ~ 1e-12 at r = xi d):
        # the sample uses a finite-difference radius float32 resolves, so float32 == float64 == the reference.
        kwargs={"apply_fn": model, "key": jax.random.key(3), "radius": 1.0, "xi": 0.1, "num_iterations": 2},
        diff_argnums=(0,),
        where=False,
        surrogate_grad=True,  # the perturbation is held constant (official code): not d value / d inputs
        extremes=((np.zeros_like(x), logits), (x * 30.0, logits)),
    )


@register(
    "virtual_adversarial_loss",
    aliases=("vat_loss",),
    family=FAMILY,
    kind="per_example",
    formula="KL(softmax(z) || softmax(f(x + r))), r = radius * normalize(grad_r KL at r = xi d) (power iteration)",
    paper="Virtual Adversarial Training: A Regularization Method for Supervised and Semi-Supervised Learning "
    "(2017, arXiv:1704.03976)",
    reference="takerum/vat_tf@23c1610 vat.py::virtual_adversarial_loss (ported to torch float64)",
    sample=_vat_sample,
    runtime=("apply_fn", "key"),
)
def virtual_adversarial_loss(
    inputs: ArrayLike,
    logits: ArrayLike,
    *,
    apply_fn: Callable[[Array], Array],
    key: Array,
    xi: float = 1e-6,
    radius: float = 8.0,
    num_iterations: int = 1,
    where: ArrayLike | None = None,
) -> Array:
    r"""Virtual adversarial training loss: the KL divergence to the most sensitive perturbation of radius ``radius``.

    .. math::
        d_0 \sim \mathcal N(0, I),\quad
        d_{k+1} = \nabla_r \mathrm{KL}\big(p(\cdot|x) \,\|\, p(\cdot|x + r)\big)\big|_{r = \xi\,\bar d_k},\quad
        \ell = \mathrm{KL}\big(p(\cdot|x) \,\|\, p(\cdot|x + \epsilon\,\bar d_K)\big)

    with :math:`\bar d` the official code's normalization (divide by the max
    absolute entry, then by :math:`\sqrt{10^{-6} + \|d\|^2}`), per example.
    :math:`p(\cdot|x) = \mathrm{softmax}(z)` with the clean ``logits`` held
    constant; the perturbation is held constant too (as in the official code).

    Args:
      inputs: clean inputs ``[B, ...]``.
      logits: the model's logits at ``inputs`` ``[B, C]`` (held constant).
      apply_fn: the model, inputs ``[B, ...]`` -> logits ``[B, C]`` (close over the parameters).
      key: PRNG key of the random start :math:`d_0`.
      xi: finite-difference radius of the power iteration (official: 1e-6; in float32 the direction is then
        mostly rounding noise, as in the official code: PyTorch ports use 10.0 with a radius of 1.0).
      radius: the perturbation's norm :math:`\epsilon` (official: 8.0 on CIFAR-10 with ZCA, 5.0 on SVHN).
      num_iterations: power iterations (official: 1).
      where: boolean mask ``[B]``; masked rows give exactly 0.

    Returns:
      Per-example losses ``[B]``.

    Paper:
      Miyato, Maeda, Koyama, Ishii. Virtual Adversarial Training: A Regularization Method for Supervised
      and Semi-Supervised Learning (2017, arXiv:1704.03976).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from lossjax.losses import virtual_adversarial_loss
      >>> w = jnp.array([[1.0, -1.0], [0.5, 2.0]])
      >>> f = lambda x: x @ w
      >>> x = jnp.array([[0.2, 0.4], [1.0, -0.5]])
      >>> loss = virtual_adversarial_loss(x, f(x), apply_fn=f, key=jax.random.key(0), radius=1.0)
      >>> loss.shape, bool(jnp.all(loss > 0))
      ((2,), True)
    """
    fn = "virtual_adversarial_loss"
    _check_callable(fn, "apply_fn", apply_fn)
    C.check_positive(fn, "xi", xi)
    C.check_positive(fn, "radius", radius, allow_zero=True)
    C.check_int(fn, "num_iterations", num_iterations, 0, static=True)
    x, mask, dtype = _prepare_inputs(fn, inputs, where)
    logits = C.check_array(fn, "logits", logits, ndim=2, dtype="float")
    if logits.shape[0] != x.shape[0]:
        raise ValueError(f"{fn}: `logits` must have leading axis {x.shape[0]} like `inputs`, got shape {logits.shape}.")
    z = jax.lax.stop_gradient(C.fill_masked(C.as_compute(logits, dtype), mask))

    def kl_at(r):
        out = _check_model_output(fn, apply_fn(x + r), x.shape[0], ndim=2)
        return _kl_logits(z, C.as_compute(out, dtype))

    xs = jax.lax.stop_gradient(x)

    def body(_, d):
        d = C.const(xi, d) * _vat_normalize(d)
        g = jax.grad(lambda r: jnp.sum(_kl_logits(z, C.as_compute(apply_fn(xs + r), dtype))))(d)
        return jax.lax.stop_gradient(g)

    d0 = jax.random.normal(key, x.shape, jnp.float32).astype(dtype)  # the same start in every dtype
    d = jax.lax.fori_loop(0, num_iterations, body, d0)
    r_adv = jax.lax.stop_gradient(C.const(radius, d) * _vat_normalize(d))
    return C.zero_masked(kl_at(r_adv), mask)


# ------------------------------- PGD, TRADES, MART ----------------------------------


def _pgd_sample():
    x, model = _model_sample()
    return Sample(
        args=(x,),
        kwargs={"objective_fn": _SampleObjective(model.w1, model.w2), "key": jax.random.key(5)},
        diff_argnums=(),
        where=False,
        variants=({"norm": "l2", "radius": 0.5, "step_size": 0.1, "num_iterations": 3, "random_start": 0.0},),
    )


@register(
    "pgd_perturbation",
    family=FAMILY,
    kind="function",
    formula="x_{k+1} = clip(Proj_{B(x, radius)}(x_k + step_size * sign(grad objective(x_k)))), x_0 = x + s N(0, I)",
    paper="Towards Deep Learning Models Resistant to Adversarial Attacks (2017, arXiv:1706.06083)",
    reference="yaodongyu/TRADES@9d308f1 trades.py::trades_loss (its PGD loops, l_inf and l_2; torch float64 port)",
    sample=_pgd_sample,
    runtime=("objective_fn", "key"),
)
def pgd_perturbation(
    inputs: ArrayLike,
    *,
    objective_fn: Callable[[Array], Array],
    key: Array,
    radius: float = 0.031,
    step_size: float = 0.007,
    num_iterations: int = 10,
    norm: str = "linf",
    clip_min: float | None = 0.0,
    clip_max: float | None = 1.0,
    random_start: float = 0.001,
) -> Array:
    r"""Projected gradient ascent on a per-example objective: the adversarial inputs of TRADES and MART.

    ``norm="linf"`` (Madry et al.; TRADES/MART's loop):

    .. math::
        x_{k+1} = \mathrm{clip}_{[a, b]}\Big(\Pi_{\|x' - x\|_\infty \le \epsilon}
        \big(x_k + \alpha\, \mathrm{sign}\,\nabla \textstyle\sum_i J(x_k)_i\big)\Big),\quad
        x_0 = x + s\,\mathcal N(0, I)

    ``norm="l2"`` (TRADES's ``l_2`` branch): :math:`\delta \leftarrow \delta +
    \alpha\, g / \|g\|` (no step where :math:`g = 0`), clamp :math:`x + \delta`
    to :math:`[a, b]`, rescale :math:`\delta` to norm :math:`\epsilon` when
    larger (torch's ``renorm``), per example. The result is clamped to
    :math:`[a, b]` and held constant (``stop_gradient``).

    Args:
      inputs: clean inputs ``[B, ...]``.
      objective_fn: per-example objective to maximize, inputs ``[B, ...]`` -> ``[B]``.
      key: PRNG key of the random start.
      radius: the ball's radius :math:`\epsilon` (TRADES CIFAR-10: 0.031).
      step_size: :math:`\alpha` (TRADES: 0.007).
      num_iterations: ascent steps (TRADES: 10).
      norm: ``"linf"`` or ``"l2"``.
      clip_min: lower bound of valid inputs (None: unbounded).
      clip_max: upper bound of valid inputs (None: unbounded).
      random_start: standard deviation :math:`s` of the Gaussian start (TRADES/MART: 0.001).

    Returns:
      The adversarial inputs, shape of ``inputs`` (no gradient).

    Paper:
      Madry, Makelov, Schmidt, Tsipras, Vladu. Towards Deep Learning Models Resistant to Adversarial
      Attacks (2017, arXiv:1706.06083).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from lossjax.losses import pgd_perturbation
      >>> x = jnp.full((1, 3), 0.5)
      >>> adv = pgd_perturbation(x, objective_fn=lambda z: z.sum(-1), key=jax.random.key(0), random_start=0.0)
      >>> adv.round(3).tolist()
      [[0.531, 0.531, 0.531]]
    """
    fn = "pgd_perturbation"
    _check_callable(fn, "objective_fn", objective_fn)
    _check_pgd(fn, radius, step_size, num_iterations, norm, clip_min, clip_max, random_start)
    x, _, _ = _prepare_inputs(fn, inputs, None)
    b = x.shape[0]

    def objective(z):
        out = objective_fn(z)
        if not hasattr(out, "shape") or out.shape != (b,):
            got = getattr(out, "shape", type(out).__name__)
            raise ValueError(f"{fn}: `objective_fn` must return per-example values of shape ({b},), got {got}.")
        return out

    return _pgd(objective, x, key, radius, step_size, num_iterations, norm, clip_min, clip_max, random_start)


def _adv_sample(variants):
    x, model = _model_sample()
    labels = np.array([0, 2, 1, 1, 0], np.int32)
    # The random start depends on the batch layout (see _vat_sample); masking is checked in the family tests.
    return Sample(
        args=(x, labels),
        kwargs={"apply_fn": model, "key": jax.random.key(7), "radius": 0.1, "step_size": 0.03, "num_iterations": 3},
        diff_argnums=(0,),
        where=False,
        surrogate_grad=True,  # the adversarial inputs are held constant (official code): not d value / d inputs
        fuzz_scaled=(),  # inputs live in [clip_min, clip_max]
        variants=variants,
        extremes=((np.zeros_like(x), labels), (np.ones_like(x), labels)),
    )


def _classifier_inputs(fn: str, inputs, labels, where):
    x, mask, dtype = _prepare_inputs(fn, inputs, where)
    labels = C.check_array(fn, "labels", labels, ndim=1, dtype="int", shape=(x.shape[0],))
    return x, labels, mask, dtype


def _logits(fn, apply_fn, x, dtype):
    return C.as_compute(_check_model_output(fn, apply_fn(x), x.shape[0], ndim=2), dtype)


def _label_log_prob(fn: str, log_p: Array, labels: Array, mask) -> Array:
    onehot = C.class_targets(fn, log_p, labels, log_p.dtype, where=mask)
    return jnp.sum(onehot * log_p, axis=-1)


@register(
    "trades_loss",
    family=FAMILY,
    kind="per_example",
    formula="CE(f(x), y) + beta * KL(softmax f(x) || softmax f(x_adv)), x_adv = PGD on that KL",
    paper="Theoretically Principled Trade-off between Robustness and Accuracy (2019, arXiv:1901.08573)",
    reference="yaodongyu/TRADES@9d308f1 trades.py::trades_loss (ported to torch float64)",
    sample=lambda: _adv_sample(({"norm": "l2", "radius": 0.3, "step_size": 0.1, "beta": 1.0},)),
    runtime=("apply_fn", "key"),
)
def trades_loss(
    inputs: ArrayLike,
    labels: ArrayLike,
    *,
    apply_fn: Callable[[Array], Array],
    key: Array,
    beta: float = 6.0,
    radius: float = 0.031,
    step_size: float = 0.007,
    num_iterations: int = 10,
    norm: str = "linf",
    clip_min: float | None = 0.0,
    clip_max: float | None = 1.0,
    random_start: float = 0.001,
    where: ArrayLike | None = None,
) -> Array:
    r"""TRADES: clean cross-entropy plus :math:`\beta` times the KL divergence to the adversarial prediction.

    .. math::
        \ell = -\log p_y(x) + \beta\,\mathrm{KL}\big(p(x) \,\|\, p(x')\big),\quad
        x' = \mathrm{PGD}_{\epsilon}\Big(\max_{x'} \mathrm{KL}\big(\mathrm{sg}\,p(x) \,\|\, p(x')\big)\Big)

    with :math:`p = \mathrm{softmax}(f)`; :math:`x'` from
    :func:`pgd_perturbation` (random start, ``num_iterations`` steps) and held
    constant. The official code averages over the batch; this returns the
    per-example terms.

    Args:
      inputs: clean inputs ``[B, ...]``.
      labels: integer labels ``[B]``.
      apply_fn: the model, inputs -> logits ``[B, C]`` (close over the parameters).
      key: PRNG key of the PGD random start.
      beta: weight of the robustness term (official CIFAR-10 script: 6.0).
      radius: perturbation radius (official: 0.031).
      step_size: PGD step (official CIFAR-10 script: 0.007; ``l_2``: ``2 * radius / num_iterations``).
      num_iterations: PGD steps (official: 10).
      norm: ``"linf"`` or ``"l2"``.
      clip_min: lower bound of valid inputs (None: unbounded).
      clip_max: upper bound of valid inputs (None: unbounded).
      random_start: standard deviation of the PGD start (official: 0.001).
      where: boolean mask ``[B]``; masked rows give exactly 0.

    Returns:
      Per-example losses ``[B]``.

    Paper:
      Zhang, Yu, Jiao, Xing, El Ghaoui, Jordan. Theoretically Principled Trade-off between Robustness and
      Accuracy (2019, arXiv:1901.08573).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from lossjax.losses import trades_loss
      >>> w = jnp.array([[1.0, -1.0], [0.5, 2.0]])
      >>> x, y = jnp.array([[0.2, 0.4], [0.9, 0.1]]), jnp.array([1, 0])
      >>> trades_loss(x, y, apply_fn=lambda z: z @ w, key=jax.random.key(0)).shape
      (2,)
    """
    fn = "trades_loss"
    _check_callable(fn, "apply_fn", apply_fn)
    C.check_positive(fn, "beta", beta, allow_zero=True)
    _check_pgd(fn, radius, step_size, num_iterations, norm, clip_min, clip_max, random_start)
    x, labels, mask, dtype = _classifier_inputs(fn, inputs, labels, where)
    z = _logits(fn, apply_fn, x, dtype)
    z_fixed = jax.lax.stop_gradient(z)
    x_adv = _pgd(
        lambda xa: _kl_logits(z_fixed, _logits(fn, apply_fn, xa, dtype)),
        x,
        key,
        radius,
        step_size,
        num_iterations,
        norm,
        clip_min,
        clip_max,
        random_start,
    )
    z_adv = _logits(fn, apply_fn, x_adv, dtype)
    log_p = jax.nn.log_softmax(z, axis=-1)
    loss = -_label_log_prob(fn, log_p, labels, mask) + C.const(beta, z) * _kl_logits(z, z_adv)
    return C.zero_masked(loss, mask)


@register(
    "mart_loss",
    family=FAMILY,
    kind="per_example",
    formula="BCE(f(x_adv), y) + beta * KL(p(x) || p(x_adv)) * (1 - p_y(x)), x_adv = PGD on CE",
    paper="Improving Adversarial Robustness Requires Revisiting Misclassified Examples (ICLR 2020)",
    reference="YisenWang/MART@2514b7e mart.py::mart_loss (ported to torch float64, its 1e-12/1.0001/1.0000001 guards)",
    sample=lambda: _adv_sample(()),
    runtime=("apply_fn", "key"),
)
def mart_loss(
    inputs: ArrayLike,
    labels: ArrayLike,
    *,
    apply_fn: Callable[[Array], Array],
    key: Array,
    beta: float = 6.0,
    radius: float = 0.031,
    step_size: float = 0.007,
    num_iterations: int = 10,
    clip_min: float | None = 0.0,
    clip_max: float | None = 1.0,
    random_start: float = 0.001,
    where: ArrayLike | None = None,
) -> Array:
    r"""MART: boosted cross-entropy on adversarial inputs plus a KL term weighted by the clean misclassification.

    .. math::
        \ell = -\log p'_y - \log\big(1.0001 - \max_{k \ne y} p'_k + 10^{-12}\big)
        + \beta\,\mathrm{KL}\big(p \,\|\, p'\big)\,\big(1.0000001 - p_y\big)

    with :math:`p = \mathrm{softmax} f(x)`, :math:`p' = \mathrm{softmax}
    f(x')`, :math:`x'` from :math:`L_\infty` PGD on the cross-entropy
    (:func:`pgd_perturbation`, held constant), and the official code's guards
    (:math:`\log(p' + 10^{-12})` in the KL term).

    Args:
      inputs: clean inputs ``[B, ...]``.
      labels: integer labels ``[B]``.
      apply_fn: the model, inputs -> logits ``[B, C]`` (close over the parameters).
      key: PRNG key of the PGD random start.
      beta: weight of the KL term (official: 6.0).
      radius: :math:`L_\infty` radius (official: 0.031).
      step_size: PGD step (official: 0.007).
      num_iterations: PGD steps (official: 10).
      clip_min: lower bound of valid inputs (None: unbounded).
      clip_max: upper bound of valid inputs (None: unbounded).
      random_start: standard deviation of the PGD start (official: 0.001).
      where: boolean mask ``[B]``; masked rows give exactly 0.

    Returns:
      Per-example losses ``[B]``.

    Paper:
      Wang, Zou, Yi, Bailey, Ma, Gu. Improving Adversarial Robustness Requires Revisiting Misclassified
      Examples (ICLR 2020, openreview rklOg6EFwS).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from lossjax.losses import mart_loss
      >>> w = jnp.array([[1.0, -1.0, 0.0], [0.5, 2.0, -1.0]])
      >>> x, y = jnp.array([[0.2, 0.4], [0.9, 0.1]]), jnp.array([1, 0])
      >>> mart_loss(x, y, apply_fn=lambda z: z @ w, key=jax.random.key(0)).shape
      (2,)
    """
    fn = "mart_loss"
    _check_callable(fn, "apply_fn", apply_fn)
    C.check_positive(fn, "beta", beta, allow_zero=True)
    _check_pgd(fn, radius, step_size, num_iterations, "linf", clip_min, clip_max, random_start)
    x, labels, mask, dtype = _classifier_inputs(fn, inputs, labels, where)

    def ce(xa):
        log_p = jax.nn.log_softmax(_logits(fn, apply_fn, xa, dtype), axis=-1)
        return -_label_log_prob(fn, log_p, labels, mask)

    x_adv = _pgd(ce, x, key, radius, step_size, num_iterations, "linf", clip_min, clip_max, random_start)
    z = _logits(fn, apply_fn, x, dtype)
    z_adv = _logits(fn, apply_fn, x_adv, dtype)
    onehot = C.class_targets(fn, z, labels, dtype, where=mask)
    log_p_adv = jax.nn.log_softmax(z_adv, axis=-1)
    p_adv = jnp.exp(log_p_adv)
    wrong_max = jnp.max(jnp.where(onehot > 0, -jnp.inf, p_adv), axis=-1)
    boosted = -jnp.sum(onehot * log_p_adv, axis=-1) - jnp.log(C.const(1.0001, z) - wrong_max + C.const(1e-12, z))
    p = jax.nn.softmax(z, axis=-1)
    kl = jnp.sum(p * (jax.nn.log_softmax(z, axis=-1) - jnp.log(p_adv + C.const(1e-12, z))), axis=-1)
    loss = boosted + C.const(beta, z) * kl * (C.const(1.0000001, z) - jnp.sum(onehot * p, axis=-1))
    return C.zero_masked(loss, mask)


# ------------------------------- gradient penalties ----------------------------------


def _gnp_sample():
    x, model = _model_sample()
    return Sample(
        args=(x,),
        kwargs={"apply_fn": _SampleObjective(model.w1, model.w2)},
        diff_argnums=(0,),
        variants=({"target_norm": 1.0},),
    )


@register(
    "gradient_norm_penalty",
    aliases=("r1_penalty", "r2_penalty"),
    family=FAMILY,
    kind="per_example",
    formula="(||grad_x f(x)_i|| - target_norm)^2 per example (R1/R2: target 0 on real/fake inputs; WGAN-GP: 1)",
    paper="Which Training Methods for GANs do actually Converge? (2018, arXiv:1801.04406)",
    reference="closed form: torch float64 double backprop (torch.autograd.grad(create_graph=True))",
    sample=_gnp_sample,
    runtime=("apply_fn",),
)
def gradient_norm_penalty(
    inputs: ArrayLike,
    *,
    apply_fn: Callable[[Array], Array],
    target_norm: float = 0.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Penalty on the norm of the model's input gradient, per example (R1, R2, WGAN-GP, input-gradient regularization).

    .. math::
        \ell_i = \big(\|\nabla_{x_i} \textstyle\sum f(x)_i\| - t\big)^2
        \quad (t = 0:\ \ell_i = \|\nabla_{x_i} f\|^2)

    R1 (Mescheder et al.) is :math:`\tfrac{\gamma}{2}\,\ell` on real inputs
    with :math:`f` the discriminator, R2 the same on generated inputs; WGAN-GP
    is :math:`t = 1` on interpolates; input-gradient regularization of a
    classifier passes its loss as :math:`f`. Differentiating this loss takes a
    second derivative of ``apply_fn`` (double backprop).

    Args:
      inputs: inputs ``[B, ...]`` (real, generated or interpolated).
      apply_fn: inputs -> per-example outputs ``[B, ...]`` (a discriminator's scores); the outputs of a
        row are summed before differentiating.
      target_norm: :math:`t` (0 for R1/R2, 1 for WGAN-GP).
      where: boolean mask ``[B]``; masked rows give exactly 0.

    Returns:
      Per-example penalties ``[B]``.

    Paper:
      Mescheder, Geiger, Nowozin. Which Training Methods for GANs do actually Converge? (2018,
      arXiv:1801.04406); Gulrajani et al. Improved Training of Wasserstein GANs (2017, arXiv:1704.00028).

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.losses import gradient_norm_penalty
      >>> x = jnp.array([[1.0, 2.0], [0.0, 3.0]])
      >>> gradient_norm_penalty(x, apply_fn=lambda z: jnp.sum(z**2, -1)).tolist()  # |2x|^2
      [20.0, 36.0]
    """
    fn = "gradient_norm_penalty"
    _check_callable(fn, "apply_fn", apply_fn)
    C.check_positive(fn, "target_norm", target_norm, allow_zero=True)
    x, mask, dtype = _prepare_inputs(fn, inputs, where)

    def total(z):
        return jnp.sum(C.as_compute(_check_model_output(fn, apply_fn(z), z.shape[0]), dtype))

    g = jax.grad(total)(x)
    if target_norm == 0:
        loss = jnp.sum(jnp.square(g), axis=_row_axes(g))
    else:
        loss = jnp.square(C.safe_norm(g, axis=_row_axes(g)) - C.const(target_norm, g))
    return C.zero_masked(loss, mask)


class _SampleParamLoss(NamedTuple):
    """Mean softmax cross-entropy of a linear model ``x @ params`` (the parameter-gradient penalty's sample)."""

    x: np.ndarray
    y: np.ndarray

    def __call__(self, params):
        z = jnp.asarray(self.x, params.dtype) @ params
        log_p = jax.nn.log_softmax(z, axis=-1)
        return -jnp.mean(jnp.take_along_axis(log_p, jnp.asarray(self.y)[:, None], axis=-1))


def _pgnp_sample():
    rng = np.random.default_rng(8)
    loss = _SampleParamLoss(rng.normal(size=(5, 4)).astype(np.float32), np.array([0, 2, 1, 1, 0], np.int32))
    return Sample(
        args=((0.5 * rng.normal(size=(4, 3))).astype(np.float32),),
        kwargs={"loss_fn": loss},
        diff_argnums=(0,),
        where=False,
        fuzz_batch=False,  # the rows of `params` are the model's input features, not a batch
        variants=({"target_norm": 0.5},),
    )


@register(
    "parameter_gradient_norm_penalty",
    family=FAMILY,
    kind="function",
    formula="(||grad_theta L(theta)||_2 - target_norm)^2 (target 0: ||grad L||^2, the gradient-norm regularizer)",
    paper="Penalizing Gradient Norm for Efficiently Improving Generalization in Deep Learning (2022, "
    "arXiv:2202.03599); Implicit Gradient Regularization (2020, arXiv:2009.11162)",
    reference="closed form: torch float64 double backprop",
    sample=_pgnp_sample,
    runtime=("loss_fn",),
)
def parameter_gradient_norm_penalty(params: Any, *, loss_fn: Callable[[Any], Array], target_norm: float = 0.0) -> Array:
    r"""Penalty on the norm of the loss's parameter gradient (gradient-norm / implicit-gradient regularization).

    .. math::
        R(\theta) = \big(\|\nabla_\theta L(\theta)\|_2 - t\big)^2
        \quad (t = 0:\ R = \|\nabla_\theta L\|^2)

    over every leaf of ``params`` (a pytree). Add :math:`\lambda R` to the
    loss (Barrett & Dherin's implicit gradient regularization is
    :math:`\lambda = h/4` for step size :math:`h`); its gradient takes a
    Hessian-vector product (double backprop). The input-gradient form, per
    example, is :func:`gradient_norm_penalty`.

    Args:
      params: the parameters (an array or a pytree of arrays).
      loss_fn: ``params -> scalar loss`` (close over the batch).
      target_norm: :math:`t \ge 0`.

    Returns:
      A scalar.

    Paper:
      Zhao, Zhang, Hu. Penalizing Gradient Norm for Efficiently Improving Generalization in Deep Learning
      (ICML 2022, arXiv:2202.03599); Barrett, Dherin. Implicit Gradient Regularization (2020, arXiv:2009.11162).

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.losses import parameter_gradient_norm_penalty
      >>> float(parameter_gradient_norm_penalty(jnp.array([3.0, 4.0]), loss_fn=lambda w: 0.5 * jnp.sum(w**2)))
      25.0
    """
    fn = "parameter_gradient_norm_penalty"
    _check_callable(fn, "loss_fn", loss_fn)
    C.check_positive(fn, "target_norm", target_norm, allow_zero=True)
    leaves = jax.tree.leaves(params)
    if not leaves or not all(jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) for x in leaves):
        raise TypeError(
            f"{fn}: `params` must be a float array or a pytree of float arrays, got {type(params).__name__}."
        )
    dtype = C.compute_dtype(*leaves)
    params = jax.tree.map(lambda x: C.as_compute(x, dtype), params)

    def scalar(p):
        out = jnp.asarray(loss_fn(p))
        if out.shape != ():
            raise ValueError(f"{fn}: `loss_fn` must return a scalar, got shape {out.shape}.")
        return out.astype(dtype)

    g = jax.grad(scalar)(params)
    sq = sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(g))
    if target_norm == 0:
        return sq
    return jnp.square(C.safe_sqrt(sq) - C.const(target_norm, sq))


# ------------------------------- KL-DRO ----------------------------------


def _dro_sample():
    rng = np.random.default_rng(2)
    return Sample(
        args=(rng.uniform(0.1, 3.0, size=(6,)).astype(np.float32),),
        kwargs={"stop_gradient_weights": False, "temperature": 0.5},
        diff_argnums=(0,),
        where=False,
    )


@register(
    "kl_dro_instance_weights",
    family=FAMILY,
    kind="function",
    formula="q_i = exp(l_i / temperature) / sum_j exp(l_j / temperature) (the KL-DRO worst case)",
    paper="Distributionally Robust Learning (2021, arXiv:2108.08993); Qi et al. An Online Method for A Class of "
    "Distributionally Robust Optimization with Non-Convex Objectives (2020, arXiv:2006.10138)",
    reference="closed form (softmax of the scaled losses) in numpy/torch float64",
    sample=_dro_sample,
)
def kl_dro_instance_weights(
    losses: ArrayLike,
    *,
    temperature: float = 1.0,
    stop_gradient_weights: bool = True,
    where: ArrayLike | None = None,
) -> Array:
    r"""Instance weights of KL-regularized distributionally robust optimization: a softmax of the losses.

    .. math::
        q_i = \frac{\exp(\ell_i/\tau)}{\sum_j \exp(\ell_j/\tau)}
        = \arg\max_{q \in \Delta} \textstyle\sum_i q_i \ell_i - \tau\,\mathrm{KL}(q \,\|\, \tfrac1N)

    so that :math:`\sum_i q_i \ell_i` (weights held constant) has the gradient
    of the KL-DRO objective :math:`\tau \log \frac1N \sum_i e^{\ell_i/\tau}`.
    Small :math:`\tau` focuses on the worst examples, large :math:`\tau` tends
    to uniform weights.

    Args:
      losses: per-example losses ``[N]`` (the last axis is the batch: ``[..., N]`` for several groups).
      temperature: :math:`\tau > 0` (the KL penalty's weight).
      stop_gradient_weights: hold the weights constant (the usual use: ``sum(q * losses)``).
      where: boolean mask of the valid examples ``[..., N]``; masked ones get weight 0.

    Returns:
      Weights ``[..., N]`` summing to 1 over the valid examples (all 0 when none is).

    Paper:
      Qi, Guo, Xu, Jin, Yang. An Online Method for A Class of Distributionally Robust Optimization with
      Non-Convex Objectives (2020, arXiv:2006.10138).

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.losses import kl_dro_instance_weights
      >>> kl_dro_instance_weights(jnp.array([0.0, jnp.log(3.0)])).round(3).tolist()
      [0.25, 0.75]
    """
    fn = "kl_dro_instance_weights"
    losses = C.check_array(fn, "losses", losses, min_ndim=1, dtype="float")
    C.check_positive(fn, "temperature", temperature)
    dtype = C.compute_dtype(losses)
    s = C.as_compute(losses, dtype) / C.const(temperature, C.as_compute(losses, dtype))
    if where is not None:
        w = jnp.broadcast_to(jnp.asarray(where, bool), s.shape)
        s = jnp.where(w, s, -jnp.inf)
        q = jnp.where(w, jax.nn.softmax(jnp.where(jnp.any(w, -1, keepdims=True), s, 0.0), axis=-1), 0.0)
    else:
        q = jax.nn.softmax(s, axis=-1)
    return jax.lax.stop_gradient(q) if stop_gradient_weights else q


# ------------------------------- norm loss ----------------------------------


def _norm_sample():
    rng = np.random.default_rng(4)
    return Sample(args=(rng.normal(size=(5, 2, 3)).astype(np.float32) * 0.6,), kwargs={"target_norm": 2.0})


@register(
    "norm_loss_regularizer",
    family=FAMILY,
    kind="per_example",
    formula="(target_norm - ||w_i||_2)^2 for each filter w_i",
    paper="Norm Loss: An efficient yet effective regularization method for deep neural networks (2021, "
    "arXiv:2103.06583)",
    reference="closed form (the paper's eq.) in torch float64",
    sample=_norm_sample,
)
def norm_loss_regularizer(kernels: ArrayLike, *, target_norm: float = 1.0, where: ArrayLike | None = None) -> Array:
    r"""Norm loss: pulls each filter of a layer towards the sphere of radius ``target_norm``.

    .. math:: \ell_i = \big(t - \|w_i\|_2\big)^2

    over every filter :math:`w_i` (the leading axis of ``kernels``; the norm
    runs over the remaining axes). Sum or average the result and add it with a
    weight :math:`\lambda` to the task loss. The gradient at a zero filter is
    0 (a safe norm), not NaN.

    Args:
      kernels: filters ``[F, ...]`` (put the output-channel axis first, e.g. ``jnp.moveaxis(k, -1, 0)``).
      target_norm: :math:`t > 0` (the paper: 1).
      where: boolean mask ``[F]`` of the filters to regularize.

    Returns:
      Per-filter penalties ``[F]``.

    Paper:
      Georgiou, Schmitt, Baeck, Pechenizkiy. Norm Loss: An efficient yet effective regularization method
      for deep neural networks (2021, arXiv:2103.06583).

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.losses import norm_loss_regularizer
      >>> norm_loss_regularizer(jnp.array([[3.0, 4.0], [0.6, 0.8]])).tolist()
      [16.0, 0.0]
    """
    fn = "norm_loss_regularizer"
    kernels = C.check_array(fn, "kernels", kernels, min_ndim=1, dtype="float")
    C.check_positive(fn, "target_norm", target_norm)
    dtype = C.compute_dtype(kernels)
    mask = C.prepare_where(fn, where, kernels.shape[:1])
    w = C.fill_masked(C.as_compute(kernels, dtype), mask)
    norm = C.safe_norm(w, axis=_row_axes(w)) if w.ndim > 1 else jnp.abs(w)
    return C.zero_masked(jnp.square(C.const(target_norm, norm) - norm), mask)


# ------------------------------- issue 16, second part: WEAT, SOVR, RIDG ----------------------------------


def _kl_guarded(p_logits: Array, q_logits: Array) -> Array:
    """``sum p (log p - log(softmax(q) + 1e-12))`` per row: torch's ``KLDivLoss(log(softmax(q) + 1e-12), p)``."""
    log_p = jax.nn.log_softmax(p_logits, axis=-1)
    q = jax.nn.softmax(q_logits, axis=-1)
    return jnp.sum(jnp.exp(log_p) * (log_p - jnp.log(q + C.const(1e-12, q))), axis=-1)


_WEAT_VARIANTS = ("nat", "adv")


@register(
    "weighted_energy_adversarial_training",
    aliases=("weat_loss",),
    family=FAMILY,
    kind="per_example",
    formula="w_i [CE(f(x_i) or f(x'_i), y_i) + beta KL(p(x_i) || p(x'_i))], w_i = 1 / softplus(|E(x_i)|), "
    "E = -logsumexp f(x) (held constant); x' = PGD on the KL",
    paper="Shedding More Light on Robust Classifiers under the lens of Energy-based Models (2024, arXiv:2407.06315)",
    reference="OmnAI-Lab/Robust-Classifiers-under-the-lens-of-EBM@b58e362 Adversarial ML/WEAT_loss.py::WEAT_nat, "
    "WEAT_adv (ported to torch float64)",
    sample=lambda: _adv_sample(({"variant": "adv", "beta": 2.0},)),
    runtime=("apply_fn", "key"),
)
def weighted_energy_adversarial_training(
    inputs: ArrayLike,
    labels: ArrayLike,
    *,
    apply_fn: Callable[[Array], Array],
    key: Array,
    variant: str = "nat",
    beta: float = 6.0,
    radius: float = 8.0 / 255.0,
    step_size: float = 2.0 / 255.0,
    num_iterations: int = 10,
    clip_min: float | None = 0.0,
    clip_max: float | None = 1.0,
    random_start: float = 0.001,
    where: ArrayLike | None = None,
) -> Array:
    r"""WEAT: TRADES with every example weighted by the inverse softplus of its clean energy's magnitude.

    .. math::
        w_i = \frac{1}{\log\big(1 + e^{|E(x_i)|}\big)},\quad E(x) = -\log\textstyle\sum_k e^{f_k(x)}
        \quad(\text{held constant})

    .. math::
        \ell_i = w_i\Big(\mathrm{CE}\big(f(\tilde x_i), y_i\big)
        + \beta\,\textstyle\sum_k p_k(x_i)\big(\log p_k(x_i) - \log(p_k(x'_i) + 10^{-12})\big)\Big)

    with :math:`\tilde x = x` (``variant="nat"``, WEAT_nat) or :math:`\tilde x =
    x'` (``variant="adv"``, WEAT_adv), :math:`p = \mathrm{softmax} f`, and
    :math:`x'` from :math:`L_\infty` PGD on the same KL with the clean
    prediction held constant (:func:`pgd_perturbation`, TRADES's loop; held
    constant). High-energy (low-likelihood) examples near the boundary get
    larger weights. The official code averages over the batch; this returns
    the per-example terms.

    Args:
      inputs: clean inputs ``[B, ...]``.
      labels: integer labels ``[B]``.
      apply_fn: the model, inputs -> logits ``[B, C]`` (close over the parameters).
      key: PRNG key of the PGD random start.
      variant: ``"nat"`` (cross-entropy on the clean inputs; the official default) or ``"adv"`` (on the
        adversarial ones).
      beta: weight of the KL term (official: 6.0; the WEAT_adv function's own default is 7.0).
      radius: :math:`L_\infty` radius (official: 8/255).
      step_size: PGD step (official: 2/255).
      num_iterations: PGD steps (official: 10).
      clip_min: lower bound of valid inputs (None: unbounded).
      clip_max: upper bound of valid inputs (None: unbounded).
      random_start: standard deviation of the PGD start (official: 0.001).
      where: boolean mask ``[B]``; masked rows give exactly 0.

    Returns:
      Per-example losses ``[B]``.

    Paper:
      Mirza, Briglia, Beadini, Masi. Shedding More Light on Robust Classifiers under the lens
      of Energy-based Models (ECCV 2024, arXiv:2407.06315).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from lossjax.losses import weighted_energy_adversarial_training
      >>> w = jnp.array([[1.0, -1.0, 0.0], [0.5, 2.0, -1.0]])
      >>> x, y = jnp.array([[0.2, 0.4], [0.9, 0.1]]), jnp.array([1, 0])
      >>> weighted_energy_adversarial_training(x, y, apply_fn=lambda z: z @ w, key=jax.random.key(0)).shape
      (2,)
    """
    fn = "weighted_energy_adversarial_training"
    _check_callable(fn, "apply_fn", apply_fn)
    C.check_one_of(fn, "variant", variant, _WEAT_VARIANTS)
    C.check_positive(fn, "beta", beta, allow_zero=True)
    _check_pgd(fn, radius, step_size, num_iterations, "linf", clip_min, clip_max, random_start)
    x, labels, mask, dtype = _classifier_inputs(fn, inputs, labels, where)
    z = _logits(fn, apply_fn, x, dtype)
    z_fixed = jax.lax.stop_gradient(z)
    x_adv = _pgd(
        lambda xa: _kl_guarded(z_fixed, _logits(fn, apply_fn, xa, dtype)),
        x,
        key,
        radius,
        step_size,
        num_iterations,
        "linf",
        clip_min,
        clip_max,
        random_start,
    )
    z_adv = _logits(fn, apply_fn, x_adv, dtype)
    energy = -jax.nn.logsumexp(z_fixed, axis=-1)
    weights = 1.0 / jax.nn.softplus(jnp.abs(energy))
    z_ce = z if variant == "nat" else z_adv
    ce = -_label_log_prob(fn, jax.nn.log_softmax(z_ce, axis=-1), labels, mask)
    loss = weights * (ce + C.const(beta, z) * _kl_guarded(z, z_adv))
    return C.zero_masked(loss, mask)


class RationaleInvarianceState(NamedTuple):
    """RIDG's rationale bank: an exponential moving average of each class's mean rationale.

    Attributes:
      means: ``[K, K, D]`` the bank: row ``c`` is class ``c``'s mean rationale matrix ``[K, D]`` (the
        reference's ``rational_bank``, initially 0).
      initialized: ``[K]`` bool, whether class ``c`` has been seen (the reference's ``init`` flags, negated):
        the first batch holding class ``c`` sets its mean instead of averaging it in.
    """

    means: Array
    initialized: Array

    @classmethod
    def initial(cls, num_classes: int, dim: int, dtype=jnp.float32) -> RationaleInvarianceState:
        """The reference's initial buffers: a zero bank ``[K, K, D]``, no class seen."""
        return cls(jnp.zeros((num_classes, num_classes, dim), dtype), jnp.zeros((num_classes,), bool))


def _ridg_sample():
    rng = np.random.default_rng(16)
    k, d = 3, 4
    feats = rng.normal(size=(6, d)).astype(np.float32)
    labels = np.array([0, 2, 0, 1, 2, 2], np.int32)
    w = (0.7 * rng.normal(size=(k, d))).astype(np.float32)
    state = RationaleInvarianceState(
        (0.5 * rng.normal(size=(k, k, d))).astype(np.float32), np.array([True, False, True])
    )
    return Sample(
        args=(feats, labels, w),
        kwargs={"state": state, "decay": 0.7},
        batched_argnums=(0, 1),
        diff_argnums=(0, 2),
        surrogate_grad=True,  # the bank (updated with this batch's means) is held constant, as in the reference
        fuzz_scaled=(0,),  # the classifier's weights are not a batch input
    )


@register(
    "rationale_invariance_loss",
    aliases=("ridg_loss",),
    family=FAMILY,
    kind="batch",
    formula="sum_{c in batch} 1/(K n_c) sum_{i: y_i = c} ||f_i * W - sg(B_c)||_F^2, "
    "B_c <- decay B_c + (1 - decay) mean_{i: y_i = c} f_i * W (B_c = the mean at a class's first batch)",
    paper="Domain Generalization via Rationale Invariance (2023, arXiv:2308.11158)",
    reference="liangchen527/RIDG@34501b2 domainbed/algorithms.py::RIDG.update (ported to torch float64)",
    sample=_ridg_sample,
    runtime=("state",),
    has_aux=True,
)
def rationale_invariance_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    classifier_weights: ArrayLike,
    *,
    state: RationaleInvarianceState | None = None,
    decay: float = 0.999,
    where: ArrayLike | None = None,
) -> tuple[Array, RationaleInvarianceState]:
    r"""RIDG's rationale invariance regularizer: keep each example's rationale matrix near its class's running mean.

    The rationale of example :math:`i` is the matrix of each feature's
    contribution to each logit of a linear classifier :math:`W \in
    \mathbb R^{K\times D}`, :math:`R_i = W \odot f_i` (row :math:`k` is
    :math:`W_k \odot f_i`). For every class :math:`c` in the batch the bank is
    updated first, then the examples of :math:`c` are pulled towards it:

    .. math::
        B_c \leftarrow \delta\,B_c + (1 - \delta)\,\bar R_c,\quad
        \bar R_c = \frac{1}{n_c}\sum_{i: y_i = c} R_i
        \quad(B_c \leftarrow \bar R_c \text{ at the class's first batch})

    .. math::
        \mathcal L = \sum_{c \in \text{batch}} \frac{1}{K\,n_c}\sum_{i: y_i = c}
        \big\|R_i - \mathrm{sg}(B_c)\big\|_F^2

    The reference adds ``ridg_reg * L`` (0.01) to the cross-entropy. Classes
    absent from the batch keep their bank entry. Masked rows are out of the
    counts, the means and the loss.

    Args:
      embeddings: penultimate features ``f`` ``[N, D]``.
      labels: integer labels ``[N]`` in ``[0, K)``.
      classifier_weights: the linear classifier's weight ``W`` ``[K, D]`` (torch ``Linear.weight``).
      state: :class:`RationaleInvarianceState` (``None``: the reference's initial bank, all zero, no class seen).
      decay: :math:`\delta \in [0, 1]`, the bank's moving-average factor (the reference's ``momentum`` is
        :math:`1 - \delta`, default 0.001).
      where: boolean mask ``[N]``.

    Returns:
      ``(loss, new_state)``: the scalar loss and the updated bank.

    Paper:
      Chen, Zhang, Song, van den Hengel, Liu. Domain Generalization via Rationale Invariance (ICCV 2023,
      arXiv:2308.11158).

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.losses import rationale_invariance_loss
      >>> f = jnp.array([[1.0, 0.0], [3.0, 0.0]])
      >>> loss, state = rationale_invariance_loss(f, jnp.array([0, 0]), jnp.eye(2))
      >>> float(loss)  # rationales diag(1, 0) and diag(3, 0) vs their mean diag(2, 0): (1 + 1) / (2 * 2)
      0.5
    """
    fn = "rationale_invariance_loss"
    embeddings = C.check_array(fn, "embeddings", embeddings, ndim=2, dtype="float")
    n, d = embeddings.shape
    labels = C.check_array(fn, "labels", labels, ndim=1, dtype="int", shape=(n,))
    w = C.check_array(fn, "classifier_weights", classifier_weights, ndim=2, dtype="float")
    if w.shape[1] != d:
        raise ValueError(f"{fn}: `classifier_weights` must have shape (K, {d}) like the embeddings, got {w.shape}.")
    k = w.shape[0]
    C.check_in_range(fn, "decay", decay, 0.0, 1.0)
    dtype = C.compute_dtype(embeddings, w)
    if state is None:
        state = RationaleInvarianceState.initial(k, d, dtype)
    bank = C.check_array(fn, "state.means", state.means, dtype="float", shape=(k, k, d))
    seen = C.check_array(fn, "state.initialized", state.initialized, shape=(k,))
    mask = C.prepare_where(fn, where, (n,))
    f = C.fill_masked(C.as_compute(embeddings, dtype), mask)
    w = C.as_compute(w, dtype)
    onehot = C.class_targets(fn, jnp.zeros((n, k), dtype), labels, dtype, where=mask)  # NaN rows: bad labels
    if mask is not None:
        onehot = jnp.where(mask[:, None], onehot, jnp.zeros_like(onehot))
    counts = jnp.sum(onehot, axis=0)  # [K]
    present = counts > 0
    safe_counts = jnp.where(present, counts, jnp.ones_like(counts))
    mean_f = jnp.einsum("nc,nd->cd", onehot, jax.lax.stop_gradient(f)) / safe_counts[:, None]  # [K, D]
    mean_r = w[None] * mean_f[:, None, :]  # [K(class), K, D]: W * (class-mean feature)
    old = jax.lax.stop_gradient(bank.astype(dtype))
    dk = C.const(decay, old)
    updated = jnp.where(jnp.asarray(seen, bool)[:, None, None], dk * old + (1 - dk) * mean_r, mean_r)
    new_bank = jax.lax.stop_gradient(jnp.where(present[:, None, None], updated, old))
    target = jnp.einsum("nc,ckd->nkd", onehot, new_bank)  # B_{y_i}
    diff = w[None] * f[:, None, :] - target
    n_row = onehot @ safe_counts  # n_{y_i} (0 on masked rows; NaN for an out-of-range label, via `target` too)
    per_row = jnp.sum(jnp.square(diff), axis=(1, 2)) / (k * jnp.where(n_row > 0, n_row, jnp.ones_like(n_row)))
    loss = jnp.sum(C.zero_masked(per_row, mask))
    new_seen = jnp.logical_or(jnp.asarray(seen, bool), present)
    return loss, RationaleInvarianceState(new_bank.astype(state.means.dtype), new_seen)


# ------------------------------- holistic robust (HR) ----------------------------------


def _hr_sample():
    rng = np.random.default_rng(17)
    losses = rng.uniform(0.2, 3.0, size=(6,)).astype(np.float32)
    return Sample(
        args=(losses,),
        kwargs={"alpha": 0.2, "kl_radius": 0.1},
        diff_argnums=(0,),
        variants=({"alpha": 0.05, "kl_radius": 0.7},),
        # not the automatic constant extremes: with tied losses every optimal weighting is a valid
        # (sub)gradient and the solvers pick different ones; large and tiny spreads instead
        extremes=((losses * 1e4,), (losses * 1e-5,)),
    )


@register(
    "holistic_robust_loss",
    aliases=("hr_loss",),
    family=FAMILY,
    kind="batch",
    formula="max_{p, q} sum_i p_i l_i + p_w max_j l_j  s.t. KL(q || p) <= r, q_i = 1/N - s_i >= 0, "
    "q_w = sum_i s_i <= alpha (p held constant)",
    paper="Certified Robust Neural Networks: Generalization and Corruption Resistance (2023, arXiv:2303.02251)",
    reference="RyanLucas3/HR_Neural_Networks@f6d952d HR_Neural_Networks/HR.py::HR_Neural_Networks "
    "(_initialise_HD_problem, HR_criterion; cvxpy 1.9.3 with Clarabel, float64)",
    sample=_hr_sample,
)
def holistic_robust_loss(
    losses: ArrayLike,
    *,
    alpha: float = 0.05,
    kl_radius: float = 0.1,
    num_iterations: int = 64,
    where: ArrayLike | None = None,
) -> Array:
    r"""Holistic robust (HR) loss: the worst case of the batch's losses over poisoning and KL ambiguity.

    Over the :math:`N` examples plus one extra "worst" point whose loss is
    :math:`\max_j \ell_j` (index :math:`w`), the official HD problem is

    .. math::
        \max_{p, q \in \Delta_{N+1},\ s \ge 0}\ \sum_i p_i \ell_i + p_w \max_j \ell_j
        \quad\text{s.t.}\quad \mathrm{KL}(q \,\|\, p) \le r,\ \ q_i + s_i = \tfrac1N,\ \ \textstyle\sum_i s_i \le \alpha

    (poisoning: up to a fraction :math:`\alpha` of the empirical mass moves to
    the worst point; statistical error: a KL ball of radius :math:`r`). It is
    solved exactly by duality: the optimal :math:`q` takes the mass
    :math:`\alpha` from the smallest losses, and
    :math:`p_i = \lambda q_i / (\eta - \ell_i)` with :math:`\eta >
    \max_j \ell_j` the root of :math:`e^{-r}\prod_i(\eta - \ell_i)^{q_i}
    \sum_i q_i/(\eta - \ell_i) = 1` (bisection in :math:`\log(\eta - \max\ell)`,
    ``num_iterations`` steps) and :math:`\lambda = e^{-r}\prod_i(\eta -
    \ell_i)^{q_i}`. The loss is :math:`\sum_i p_i \ell_i + p_w \max_j \ell_j`
    with the weights held constant, as in the official code (its cvxpy solve).
    The evasion part of HR (radius :math:`\epsilon`) is in the losses passed
    in: per-example losses at adversarial inputs (:func:`pgd_perturbation`).
    The official code replaces :math:`\alpha = 0` by :math:`10^{-6}`, and
    :math:`r = 0` by :math:`10^{-3}` when :math:`\alpha > 0` (solver
    stability), and falls back to the plain mean when both are that small;
    here :math:`r = 0` gives :math:`p = q` exactly. Tied losses: one of the
    optimal weightings (the mass leaves the earlier of tied examples first).

    Args:
      losses: per-example losses ``[N]`` (adversarial ones for the evasion part).
      alpha: :math:`\alpha \in [0, 1]`, the fraction of corrupted (poisoned) examples (README: 0.05).
      kl_radius: :math:`r \ge 0`, the KL ball's radius (README: 0.1).
      num_iterations: bisection steps of the dual's one-dimensional root.
      where: boolean mask ``[N]``; masked examples are out of the problem (``N`` counts the valid ones).

    Returns:
      The scalar HR loss (0 for an empty or all-masked batch).

    Paper:
      Bennouna, Lucas, Van Parys. Certified Robust Neural Networks: Generalization and Corruption
      Resistance (ICML 2023, arXiv:2303.02251).

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.losses import holistic_robust_loss
      >>> loss = jnp.array([1.0, 2.0, 3.0])
      >>> round(float(holistic_robust_loss(loss, alpha=0.0, kl_radius=0.0)), 4)  # the mean
      2.0
      >>> bool(holistic_robust_loss(loss) > 2.0)
      True
    """
    fn = "holistic_robust_loss"
    losses = C.check_array(fn, "losses", losses, ndim=1, dtype="float")
    C.check_in_range(fn, "alpha", alpha, 0.0, 1.0)
    C.check_positive(fn, "kl_radius", kl_radius, allow_zero=True)
    C.check_int(fn, "num_iterations", num_iterations, 1, static=True)
    dtype = C.compute_dtype(losses)
    n = losses.shape[0]
    mask = C.prepare_where(fn, where, (n,))
    valid = jnp.ones((n,), bool) if mask is None else mask
    ell = C.fill_masked(C.as_compute(losses, dtype), mask)
    c = jax.lax.stop_gradient(ell)
    count = jnp.sum(valid).astype(dtype)
    inv_n = 1.0 / jnp.maximum(count, jnp.ones((), dtype))
    top = jnp.max(jnp.where(valid, c, -jnp.inf), initial=-jnp.inf)
    top = jnp.where(jnp.isfinite(top), top, jnp.zeros_like(top))
    gap = jnp.where(valid, top - c, jnp.zeros_like(c))  # >= 0; exactly 0 at the maximum
    ranks = jnp.argsort(jnp.argsort(jnp.where(valid, c, jnp.inf))).astype(dtype)  # 0 = the smallest loss
    a = C.const(alpha, c)
    moved = jnp.where(valid, jnp.clip(a - ranks * inv_n, 0.0, inv_n), jnp.zeros_like(c))
    q = jnp.where(valid, inv_n - moved, jnp.zeros_like(c))
    q_w = jnp.sum(moved)
    if kl_radius == 0:
        p, p_w = q, q_w
    else:
        r = C.const(kl_radius, c)
        neg = jnp.full_like(c, -jnp.inf)
        log_q = jnp.where(q > 0, jnp.log(jnp.where(q > 0, q, jnp.ones_like(q))), neg)
        log_gap = jnp.where(gap > 0, jnp.log(jnp.where(gap > 0, gap, jnp.ones_like(gap))), neg)
        log_q_w = jnp.where(q_w > 0, jnp.log(jnp.where(q_w > 0, q_w, 1.0)), -jnp.inf)

        def log_terms(t):  # in log space: u = e^t may underflow when the root sits at u -> 0
            log_d = jnp.logaddexp(t, log_gap)  # log(u + gap_i)
            log_g = jnp.sum(jnp.where(q > 0, q * log_d, jnp.zeros_like(q))) + q_w * t
            log_s = jax.nn.logsumexp(jnp.concatenate([log_q - log_d, (log_q_w - t)[None]]))
            return log_g, log_s, log_d

        # h'(eta) = 1 - exp(-r + log G + log S) is increasing in u = eta - max l; h' > 0 once
        # u > e^{-r} D / (1 - e^{-r}) (D the spread of the losses): bisect log u below that bound.
        spread = jnp.max(gap, initial=0.0)
        scale = jnp.maximum(jnp.maximum(spread, jnp.abs(top)), C.const(1e-30, c))
        hi = jnp.log(jnp.maximum(2.0 * spread * jnp.exp(-r) / -jnp.expm1(-r), 1e-6 * scale))
        lo = hi - C.const(60.0, c)

        def body(_, bounds):
            lo, hi = bounds
            mid = 0.5 * (lo + hi)
            log_g, log_s, _ = log_terms(mid)
            descending = log_g + log_s - r > 0  # h' < 0: the root lies above
            return jnp.where(descending, mid, lo), jnp.where(descending, hi, mid)

        lo, hi = jax.lax.fori_loop(0, num_iterations, body, (lo, hi))
        t = 0.5 * (lo + hi)
        log_g, _, log_d = log_terms(t)
        log_lam = log_g - r
        p = jnp.exp(log_lam + log_q - log_d)  # lambda q_i / (u + gap_i); 0 where q_i = 0
        p_w = jnp.exp(log_lam + log_q_w - t)
        total = jnp.sum(p) + p_w
        total = jnp.where(total > 0, total, jnp.ones_like(total))
        p, p_w = p / total, p_w / total
    p = jax.lax.stop_gradient(p)
    p_w = jax.lax.stop_gradient(p_w)
    worst = jnp.max(jnp.where(valid, ell, -jnp.inf), initial=-jnp.inf)
    worst = jnp.where(count > 0, worst, jnp.zeros_like(worst))
    loss = jnp.sum(jnp.where(valid, p * ell, jnp.zeros_like(ell))) + p_w * worst
    return jnp.where(count > 0, loss, jnp.zeros_like(loss))


# ------------------------- switching one-vs-the-rest -------------------------


def _sovr_sample():
    # Margins z_y - max_{j != y} z_j all distinct (the selection is a rank), away from ties.
    logits = np.array(
        [
            [2.0, 0.3, -1.2, 0.9],
            [-0.6, 1.7, 0.2, -2.1],
            [0.5, -0.4, 2.2, 1.1],
            [1.4, 2.6, -0.3, 0.2],
            [-1.5, 0.4, 0.9, 2.5],
            [0.1, -0.8, 1.3, -0.2],
        ],
        np.float32,
    )
    labels = np.array([0, 1, 3, 2, 1, 2], np.int32)
    return Sample(args=(logits, labels), class_axis=True, variants=({"switch_fraction": 0.7},))


@register(
    "one_vs_rest_switching_loss",
    aliases=("sovr_loss", "sovr"),
    family=FAMILY,
    kind="per_example",
    formula="OVR = softplus(-z_y) + sum_{j!=y} softplus(z_j) for the floor(M n) examples with the smallest margins "
    "z_y - max_{j!=y} z_j (held constant), cross-entropy for the others",
    paper="One-vs-the-Rest Loss to Focus on Important Samples in Adversarial Training (2023, arXiv:2207.10283)",
    reference="closed form (numpy float64: rank by margin, OVR / CE per example)",
    sample=_sovr_sample,
)
def one_vs_rest_switching_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    switch_fraction: float = 0.4,
    where: ArrayLike | None = None,
) -> Array:
    r"""Switching one-vs-the-rest loss (SOVR): one-vs-the-rest for the smallest-margin examples, CE for the rest.

    .. math::
        \ell_i = \begin{cases}
          -\log\sigma(z_{iy}) - \sum_{j \ne y} \log\sigma(-z_{ij}) & i \in S \\
          -\log \mathrm{softmax}(z_i)_y & i \notin S
        \end{cases}

    where :math:`S` holds the :math:`\lfloor M n \rfloor` valid examples of the
    batch with the smallest logit margins :math:`z_{iy} - \max_{j \ne y} z_{ij}`
    (ties by position; the margins and the selection carry no gradient). The
    one-vs-the-rest loss keeps pushing the margins of these "important" (nearly
    misclassified) examples, where a re-weighted CE would shrink the margins of
    the others instead. Apply it to the logits of adversarial examples (e.g.
    from :func:`pgd_perturbation`).

    For a target distribution ``q`` (one-hot or soft labels) each term is its
    expectation: OVR :math:`\sum_j q_j\,\mathrm{softplus}(-z_j) + (1-q_j)\,\mathrm{softplus}(z_j)`,
    CE :math:`-\sum_j q_j \log \mathrm{softmax}(z)_j`, margin :math:`\sum_c q_c (z_c - \max_{j\ne c} z_j)`.

    Args:
      logits: ``[..., C]`` scores (``C >= 2``); every example of the batch ``[...]`` competes for ``S``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      switch_fraction: :math:`M \in [0, 1]`, the fraction of the (valid) batch that gets the one-vs-the-rest
        loss. The paper switches 40% of each batch (``0.4``); ``0`` is plain CE, ``1`` plain OVR.
      where: boolean mask of the valid examples ``[...]``: masked examples get 0 and take no place in ``S``.

    Returns:
      Per-example losses ``[...]`` (the caller reduces, e.g. the mean).

    Paper:
      Kanai, Yamaguchi, Yamada, Takahashi, Ohno, Ida. One-vs-the-Rest Loss to Focus on Important Samples in
      Adversarial Training (ICML 2023, arXiv:2207.10283). No official code is public; the selection's
      rounding (floor) and tie order are lossjax's.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.losses import one_vs_rest_switching_loss
      >>> z = jnp.array([[3.0, 0.0], [0.2, 0.0]])  # the second example has the smaller margin
      >>> one_vs_rest_switching_loss(z, jnp.array([0, 0]), switch_fraction=0.5).round(4).tolist()
      [0.0486, 1.2913]
    """
    fn = "one_vs_rest_switching_loss"
    C.check_in_range(fn, "switch_fraction", switch_fraction, 0.0, 1.0)
    t = target_probs(fn, logits, labels, where=where, min_classes=2)
    z, q = t.logits, t.targets
    zero = jnp.zeros((), z.dtype)
    # -inf logits enter only through vanishing terms (softplus(-inf) = 0); never 0 * inf.
    z_target = jnp.where(q != 0, z, zero)
    z_other = jnp.where(q != 1, z, zero)
    ovr = jnp.sum(q * jax.nn.softplus(-z_target) + (1 - q) * jax.nn.softplus(z_other), axis=-1)
    ce = -jnp.sum(t.weights * t.log_p, axis=-1)
    # The margin of each class c against the best other class: the top two logits suffice.
    zs = jax.lax.stop_gradient(z)
    top, idx = jax.lax.top_k(zs, 2)
    iota = jax.lax.broadcasted_iota(idx.dtype, zs.shape, zs.ndim - 1)
    best_other = jnp.where(iota == idx[..., :1], top[..., 1:], top[..., :1])
    margin = jnp.sum(jnp.where(q != 0, q * (jnp.where(q != 0, zs, zero) - best_other), zero), axis=-1)
    batch_shape = margin.shape
    valid = jnp.ones(batch_shape, bool) if t.mask is None else t.mask
    key = jnp.where(valid, margin, jnp.inf).reshape(-1)
    rank = jnp.argsort(jnp.argsort(key, stable=True), stable=True).reshape(batch_shape)
    # floor(M n) for every possible count n, in float64 at trace time (M = 0.7 is 0.69999999 in float32).
    table = np.floor(float(switch_fraction) * np.arange(margin.size + 1, dtype=np.float64)).astype(np.int32)
    num_switched = jnp.asarray(table)[jnp.sum(valid)]
    selected = valid & (rank < num_switched)
    return C.zero_masked(jnp.where(selected, ovr, ce), t.mask)
