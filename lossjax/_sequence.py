"""Per-token log-probabilities -> per-sequence log-probabilities: the checks and the masked reduction.

Shared by the language-model and preference families (DPO and its relatives,
NPO, KTO, pass@n coverage, :func:`lossjax.losses.sequence_log_probs`). Users
hold the log-probabilities of whole responses either as summed per-sequence
values ``[B]`` or as per-token values ``[B, T]`` with a token mask (padding,
prompt tokens). :func:`reduce_sequence` turns either into ``[B]``, with the
double-``where`` so that garbage in padded tokens (``-inf``, NaN) never
reaches a value or a gradient.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lossjax import _checks as C

__all__ = ["check_log_probs", "reduce_sequence", "token_mask_of"]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def check_log_probs(fn: str, arg: str, x: ArrayLike) -> Array:
    """A float array of log-probabilities, ``[B]`` (per sequence) or ``[B, T]`` (per token)."""
    return C.check_array(fn, arg, x, ndim=(1, 2), dtype="float")


def token_mask_of(
    fn: str, where_arg: str, token_where: ArrayLike | None, log_probs: Array, log_probs_arg: str
) -> Array | None:
    """Checks a token mask ``[B, T]`` against per-token log-probs; returns it as bool (or None).

    ``where_arg`` and ``log_probs_arg`` are the argument names the error messages use.
    """
    if token_where is None:
        return None
    if log_probs.ndim != 2:
        raise ValueError(
            f"{fn}: `{where_arg}` is only meaningful with per-token log-probs [B, T]; "
            f"`{log_probs_arg}` has shape {log_probs.shape} (per-sequence values are used as given)."
        )
    mask = C.check_array(fn, where_arg, token_where, ndim=2)
    if not (mask.dtype == jnp.bool_ or jnp.issubdtype(mask.dtype, jnp.number)):
        raise TypeError(f"{fn}: `{where_arg}` must be a bool or 0/1 numeric mask, got {mask.dtype}.")
    if mask.shape != log_probs.shape:
        raise ValueError(
            f"{fn}: `{where_arg}` must have the shape of `{log_probs_arg}` {log_probs.shape}, got {mask.shape}."
        )
    return mask if mask.dtype == jnp.bool_ else mask != 0


def reduce_sequence(
    log_probs: Array,
    token_mask: Array | None,
    batch_mask: Array | None,
    dtype,
    *,
    average: bool,
) -> Array:
    """``[B]`` or ``[B, T]`` log-probs -> ``[B]``: the masked sum over tokens (or mean with ``average``).

    Per-sequence inputs ``[B]`` are returned as given (only cast and masked).
    Masked tokens and masked examples are replaced by 0 *before* the sum; a row
    with no counted token gives 0 (also with ``average``).
    """
    x = C.as_compute(log_probs, dtype)
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
