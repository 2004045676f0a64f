"""Per-token log-probabilities -> per-sequence log-probabilities (shared by the
language-model and preference families).

Sequence-level losses (DPO and its relatives, NPO, pass@n coverage) take the
log-probabilities of whole responses. Users hold them either as summed
per-sequence values ``[B]`` or as per-token values ``[B, T]`` with a token mask
(padding, prompt tokens). :func:`reduce_sequence` turns either into ``[B]``,
with the double-``where`` so that garbage in padded tokens (``-inf``, NaN)
never reaches a gradient.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax.registry import Sample, register

__all__ = ["sequence_log_probs", "token_log_probs"]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def check_logps(fn: str, arg: str, x: ArrayLike) -> Array:
    """A float array of log-probabilities, ``[B]`` (per sequence) or ``[B, T]`` (per token)."""
    return C.check_array(fn, arg, x, ndim=(1, 2), dtype="float")


def token_mask_of(fn: str, mask_arg: str, mask: ArrayLike | None, logps: Array, logps_arg: str) -> Array | None:
    """Checks a token mask against ``[B, T]`` log-probs; returns it as bool (or None)."""
    if mask is None:
        return None
    if logps.ndim != 2:
        raise ValueError(
            f"{fn}: `{mask_arg}` is only meaningful with per-token log-probs [B, T]; "
            f"`{logps_arg}` has shape {logps.shape} (per-sequence values are used as given)."
        )
    mask = C.check_array(fn, mask_arg, mask, ndim=2)
    if not (mask.dtype == jnp.bool_ or jnp.issubdtype(mask.dtype, jnp.number)):
        raise TypeError(f"{fn}: `{mask_arg}` must be a bool or 0/1 numeric mask, got {mask.dtype}.")
    if mask.shape != logps.shape:
        raise ValueError(f"{fn}: `{mask_arg}` must have the shape of `{logps_arg}` {logps.shape}, got {mask.shape}.")
    return mask if mask.dtype == jnp.bool_ else mask != 0


def reduce_sequence(
    logps: Array,
    token_mask: Array | None,
    batch_mask: Array | None,
    dtype,
    *,
    average: bool,
) -> Array:
    """``[B]`` or ``[B, T]`` log-probs -> ``[B]``: the masked sum over tokens (or mean with ``average``).

    Per-sequence inputs ``[B]`` are returned as given (only cast and masked).
    Masked tokens and masked examples are replaced by 0 *before* the sum.
    """
    x = C.as_compute(logps, dtype)
    if x.ndim == 1:
        return C.fill_masked(x, batch_mask)
    keep = jnp.ones(x.shape, bool) if token_mask is None else token_mask
    if batch_mask is not None:
        keep = keep & batch_mask[:, None]
    x = jnp.where(keep, x, jnp.zeros((), dtype))
    total = jnp.sum(x, axis=-1)
    if not average:
        return total
    count = jnp.sum(keep, axis=-1).astype(dtype)
    return total / jnp.maximum(count, jnp.ones((), dtype))


def _token_logps_sample() -> Sample:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 4, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=(3, 4)).astype(np.int32)
    return Sample(args=(logits, labels), where=False)


@register(
    "token_log_probs",
    family="language",
    kind="function",
    formula="log softmax(z)_y (0 for labels outside [0, V))",
    reference="trl get_batch_logps / selective_log_softmax",
    sample=_token_logps_sample,
)
def token_log_probs(logits: ArrayLike, labels: ArrayLike) -> Array:
    r"""Log-probability of each label token: ``log softmax(logits)[..., label]``.

    .. math:: \log p_t = z_{t, y_t} - \log\sum_v e^{z_{t, v}}

    Labels outside ``[0, V)`` (e.g. the ``-100`` ignore index) give 0, so a
    masked sum over tokens needs no extra gather. The target logit is picked by
    comparing an iota with the label (no gather on the vocabulary axis).
    For large vocabularies, ``-lossjax.losses.linear_cross_entropy(hidden,
    weight, labels)`` gives the same values without materializing the logits.

    Args:
      logits: ``[..., V]`` unnormalized scores.
      labels: integer token ids ``[...]``.

    Returns:
      ``[...]`` per-token log-probabilities (float32 for half-precision logits).

    Paper: the log-likelihood used by every sequence-level preference loss
    (e.g. DPO, Rafailov et al., 2023, arXiv:2305.18290).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.token_log_probs(jnp.zeros((1, 2, 4)), jnp.array([[1, -100]])).round(4)
      Array([[-1.3863,  0.    ]], dtype=float32)
    """
    fn = "token_log_probs"
    logits = C.check_array(fn, "logits", logits, min_ndim=1, dtype="float")
    labels = C.check_array(fn, "labels", labels, dtype="int")
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"{fn}: `labels` must have shape logits.shape[:-1]={logits.shape[:-1]}, got {labels.shape}.")
    dtype = C.compute_dtype(logits)
    z = C.as_compute(logits, dtype)
    iota = jax.lax.broadcasted_iota(labels.dtype, logits.shape, logits.ndim - 1)
    onehot = iota == labels[..., None]
    return jnp.sum(jnp.where(onehot, jax.nn.log_softmax(z, axis=-1), jnp.zeros((), dtype)), axis=-1)


def _seq_sample() -> Sample:
    rng = np.random.default_rng(1)
    logps = -rng.uniform(0.1, 3.0, size=(4, 5)).astype(np.float32)
    mask = np.ones((4, 5), bool)
    mask[:, 3:] = False
    return Sample(args=(logps, mask), where=False)


@register(
    "sequence_log_probs",
    family="language",
    kind="function",
    formula="sum_t m_t log p_t   (or / sum_t m_t with average=True)",
    reference="trl DPOTrainer (per_token_logps * completion_mask).sum(1)",
    sample=_seq_sample,
)
def sequence_log_probs(token_log_probs: ArrayLike, mask: ArrayLike | None = None, *, average: bool = False) -> Array:
    r"""Per-sequence log-probability from per-token log-probabilities and a token mask.

    .. math:: \log \pi(y) = \sum_t m_t \log p_t \qquad
              \text{(average: } \textstyle\sum_t m_t \log p_t / \max(1, \sum_t m_t)\text{)}

    Masked tokens are replaced by 0 before the sum, so padding may hold any
    value (``-inf``, NaN) without affecting the value or the gradient.

    Args:
      token_log_probs: ``[B, T]`` per-token log-probabilities.
      mask: optional ``[B, T]`` token mask (bool or 0/1); True/1 counts the token.
      average: divide by the number of counted tokens (length normalization,
        as SimPO, ORPO and IPO use); an all-masked row gives 0.

    Returns:
      ``[B]`` per-sequence log-probabilities.

    Paper: the sequence log-likelihood of DPO (Rafailov et al., 2023,
    arXiv:2305.18290); length normalization of SimPO (Meng et al., 2024, arXiv:2405.14734).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.array([[-1.0, -2.0, jnp.nan]])
      >>> m = jnp.array([[True, True, False]])
      >>> lossjax.losses.sequence_log_probs(lp, m), lossjax.losses.sequence_log_probs(lp, m, average=True)
      (Array([-3.], dtype=float32), Array([-1.5], dtype=float32))
    """
    fn = "sequence_log_probs"
    x = C.check_array(fn, "token_log_probs", token_log_probs, ndim=2, dtype="float")
    m = token_mask_of(fn, "mask", mask, x, "token_log_probs")
    return reduce_sequence(x, m, None, C.compute_dtype(x), average=average)
