"""Distillation losses: a student's outputs matched to a teacher's (or to its own past outputs).

* :func:`trajectory_loss`: SAF / MESA's KL from past (or EMA-weight) outputs
  to the current ones, the self-distillation term of the trajectory
  sharpness-aware methods (:func:`lossjax.transforms.saf`, :func:`lossjax.transforms.mesa`).

Teacher inputs never receive a gradient (``stop_gradient``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax.registry import Sample, register

__all__ = ["trajectory_loss"]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

FAMILY = "distillation"


def _traj_sample() -> Sample:
    rng = np.random.default_rng(0)
    logits = (2 * rng.normal(size=(6, 4))).astype(np.float32)
    teacher_logits = (2 * rng.normal(size=(6, 4))).astype(np.float32)
    return Sample(args=(logits, teacher_logits), diff_argnums=(0,))


@register(
    "trajectory_loss",
    aliases=("saf_trajectory_loss", "mesa_loss"),
    family=FAMILY,
    kind="per_example",
    formula="KL(softmax(t / tau) || softmax(z / tau)),  t = stop_gradient(teacher_logits)",
    paper="Sharpness-Aware Training for Free (2022, arXiv:2205.14083)",
    reference="closed form (KL of softmaxes); tested against a float64 numpy evaluation",
    sample=_traj_sample,
)
def trajectory_loss(
    logits: ArrayLike,
    teacher_logits: ArrayLike,
    *,
    temperature: float = 5.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""SAF/MESA trajectory loss: KL from past (or EMA) outputs to the current ones, per example.

    .. math::
        \ell_i = \mathrm{KL}\Big(\mathrm{softmax}(t_i/\tau)\,\Big\|\,\mathrm{softmax}(z_i/\tau)\Big),
        \qquad t = \mathrm{stop\_gradient}(\text{teacher\_logits})

    SAF's objective is ``L(w) + lambda * mean_i l_i`` with ``t`` the outputs
    recorded ``E`` epochs earlier (:func:`lossjax.transforms.saf`, :func:`lossjax.transforms.saf_targets`); MESA uses
    the outputs of an EMA of the weights (:func:`lossjax.transforms.mesa`, :func:`lossjax.transforms.mesa_params`).
    Minimizing it penalizes a sudden drop of the loss along the trajectory,
    the sharpness proxy of the paper, at the cost of no extra gradient.

    Args:
      logits: current outputs ``[..., C]``.
      teacher_logits: the "teacher": past / EMA outputs ``[..., C]`` (no gradient flows into them).
      temperature: ``tau`` (softens both distributions).
      where: optional boolean mask broadcastable to ``[...]`` (e.g. examples
        without a recorded past output); masked examples give 0.

    Returns:
      Per-example loss ``[...]`` (float32 for half-precision inputs).

    Paper: Du, Zhou, Feng, Tan, Zhou, "Sharpness-Aware Training for Free",
    NeurIPS 2022, arXiv:2205.14083.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.array([[0.0, 0.0], [1.0, -1.0]])
      >>> lossjax.losses.trajectory_loss(z, z, temperature=1.0)  # identical outputs: 0
      Array([0., 0.], dtype=float32)
      >>> lossjax.losses.trajectory_loss(z[:1], jnp.array([[2.0, 0.0]]), temperature=1.0).round(4)
      Array([0.3278], dtype=float32)
    """
    fn = "trajectory_loss"
    logits = C.check_array(fn, "logits", logits, min_ndim=1, dtype="float")
    teacher_logits = C.check_array(fn, "teacher_logits", teacher_logits, min_ndim=1, dtype="float")
    C.check_same_shape(fn, ("logits", "teacher_logits"), logits, teacher_logits)
    C.check_positive(fn, "temperature", temperature)
    dtype = C.compute_dtype(logits, teacher_logits)
    mask = C.prepare_where(fn, where, logits.shape[:-1])
    inv_t = 1.0 / temperature
    z = C.fill_masked(C.as_compute(logits, dtype), mask) * inv_t
    t = C.fill_masked(jax.lax.stop_gradient(C.as_compute(teacher_logits, dtype)), mask) * inv_t
    log_p = jax.nn.log_softmax(t, axis=-1)
    log_q = jax.nn.log_softmax(z, axis=-1)
    loss = jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)
    return C.zero_masked(loss, mask)
