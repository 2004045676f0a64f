"""Argument checks, masking, dtype policy and safe numerics shared by every family.

This is the only module of lossjax that imports chex. Everything here runs at
trace time (shape/dtype checks) or is a small fusible jnp expression (masking,
safe numerics); nothing here adds a host callback to a jitted loss. Value
checks that need data (labels out of range, NaN inputs) go through
:func:`debug_check`, which is a no-op unless debug mode is on (see
:func:`lossjax.debug_checks` and :func:`lossjax.checked`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

__all__ = [
    "as_compute",
    "check_array",
    "check_in_range",
    "check_int",
    "check_one_of",
    "check_positive",
    "check_same_shape",
    "check_shape_prefix",
    "checked",
    "class_targets",
    "compute_dtype",
    "const",
    "debug_check",
    "debug_checks",
    "fill_masked",
    "has_integer_labels",
    "log1mexp",
    "masked_mean",
    "masked_sum",
    "prepare_where",
    "safe_log",
    "safe_norm",
    "safe_power",
    "safe_sqrt",
    "zero_masked",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

_KINDS = {
    "float": (jnp.floating,),
    "int": (jnp.integer,),
    "bool": (jnp.bool_,),
    "number": (jnp.floating, jnp.integer),
    "int_or_bool": (jnp.integer, jnp.bool_),
}


def _dtype_ok(dtype, kind: str) -> bool:
    return any(jnp.issubdtype(dtype, k) for k in _KINDS[kind])


# --------------------------------------------------------------------------
# Trace-time argument checks. They raise ValueError (shapes, values of
# hyperparameters) or TypeError (dtypes) naming the function and argument.
# --------------------------------------------------------------------------


def check_array(
    fn: str,
    arg: str,
    x: ArrayLike,
    *,
    ndim: int | Sequence[int] | None = None,
    min_ndim: int | None = None,
    dtype: str | None = None,
    shape: Sequence[int | None] | None = None,
) -> Array:
    """Converts ``x`` to an array and checks its rank, dtype kind and shape.

    Args:
      fn: name of the public function (for the error message).
      arg: name of the argument (for the error message).
      x: the value.
      ndim: required rank, or a sequence of allowed ranks.
      min_ndim: smallest allowed rank.
      dtype: required dtype kind: ``"float"``, ``"int"``, ``"bool"``,
        ``"number"`` or ``"int_or_bool"``.
      shape: required shape; ``None`` entries match any size.

    Returns:
      ``jnp.asarray(x)``.

    Raises:
      ValueError: wrong rank or shape. TypeError: wrong dtype kind.
    """
    try:
        x = jnp.asarray(x)
    except TypeError as e:
        raise TypeError(f"{fn}: argument `{arg}` must be an array, got {type(x).__name__}.") from e
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        try:
            chex.assert_rank(x, set(allowed) if len(allowed) > 1 else allowed[0])
        except AssertionError:
            need = " or ".join(str(a) for a in allowed)
            raise ValueError(
                f"{fn}: argument `{arg}` must have rank {need}, got rank {x.ndim} (shape {x.shape})."
            ) from None
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(f"{fn}: argument `{arg}` must have rank >= {min_ndim}, got rank {x.ndim} (shape {x.shape}).")
    if dtype is not None and not _dtype_ok(x.dtype, dtype):
        raise TypeError(f"{fn}: argument `{arg}` must have a {dtype} dtype, got {x.dtype} (shape {x.shape}).")
    if shape is not None:
        shape = tuple(shape)
        ok = len(shape) == x.ndim and all(s is None or s == t for s, t in zip(shape, x.shape, strict=False))
        if not ok:
            need = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{fn}: argument `{arg}` must have shape {need}, got {x.shape}.")
    return x


def check_shape_prefix(fn: str, names: tuple[str, str], a: Array, b: Array, n: int) -> None:
    """Checks that the first ``n`` axes of ``a`` and ``b`` agree."""
    try:
        chex.assert_equal_shape_prefix((a, b), n)
    except AssertionError:
        raise ValueError(
            f"{fn}: the first {n} axes of `{names[0]}` and `{names[1]}` must agree, "
            f"got {names[0]}.shape={a.shape} and {names[1]}.shape={b.shape}."
        ) from None


def check_same_shape(fn: str, names: tuple[str, str], a: Array, b: Array) -> None:
    """Checks that ``a`` and ``b`` have exactly the same shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"{fn}: `{names[0]}` and `{names[1]}` must have the same shape, "
            f"got {names[0]}.shape={a.shape} and {names[1]}.shape={b.shape}."
        )


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def check_positive(fn: str, arg: str, value: Any, *, allow_zero: bool = False) -> None:
    """Checks a hyperparameter is a (strictly) positive number, when concrete.

    Traced values (e.g. under ``optax.inject_hyperparams``) are not checked.
    """
    if isinstance(value, jax.core.Tracer):
        return
    if isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) == 0:
        value = float(value)
    if not _is_number(value) or not math.isfinite(value):
        raise ValueError(f"{fn}: `{arg}` must be a finite number, got {value!r}.")
    if value < 0 or (value == 0 and not allow_zero):
        need = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{fn}: `{arg}` must be {need}, got {value!r}.")


def check_in_range(
    fn: str,
    arg: str,
    value: Any,
    low: float,
    high: float,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    """Checks a concrete hyperparameter lies in ``[low, high]`` (ends as requested)."""
    if isinstance(value, jax.core.Tracer):
        return
    if isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) == 0:
        value = float(value)
    if not _is_number(value):
        raise ValueError(f"{fn}: `{arg}` must be a number, got {value!r}.")
    ok_low = value >= low if low_inclusive else value > low
    ok_high = value <= high if high_inclusive else value < high
    if not (ok_low and ok_high):
        lb = "[" if low_inclusive else "("
        hb = "]" if high_inclusive else ")"
        raise ValueError(f"{fn}: `{arg}` must lie in {lb}{low}, {high}{hb}, got {value!r}.")


def check_int(fn: str, arg: str, value: Any, low: int | None = None, *, static: bool = False) -> None:
    """Checks an integer hyperparameter: a Python int, a numpy integer or a concrete integer scalar.

    Booleans are rejected (``True`` is not a count). A traced value (e.g. under
    ``optax.inject_hyperparams``) passes unless the value shapes the
    computation (``static=True``: an iteration count, an array size).

    Example:
      >>> from lossjax import _checks as C
      >>> C.check_int("f", "k", True, 1)  # doctest: +IGNORE_EXCEPTION_DETAIL
      Traceback (most recent call last):
      ValueError: f: `k` must be an integer >= 1, got True.
    """
    if isinstance(value, jax.core.Tracer):
        if static:
            raise ValueError(
                f"{fn}: `{arg}` must be a static Python integer, got a traced value; "
                f"with optax.inject_hyperparams pass static_args=({arg!r},)."
            )
        return
    if isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) == 0 and np.issubdtype(value.dtype, np.integer):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or (low is not None and value < low):
        need = "an integer" if low is None else f"an integer >= {low}"
        raise ValueError(f"{fn}: `{arg}` must be {need}, got {value!r}.")


def check_one_of(fn: str, arg: str, value: Any, options: Sequence[Any]) -> None:
    """Checks a string/enum hyperparameter is one of ``options``."""
    if value not in options:
        raise ValueError(f"{fn}: `{arg}` must be one of {list(options)}, got {value!r}.")


# --------------------------------------------------------------------------
# Dtype policy: bf16/f16 -> computed in and returned as float32; float32 stays
# float32; float64 only when x64 is on and an input is float64.
# --------------------------------------------------------------------------


def compute_dtype(*xs: ArrayLike) -> jnp.dtype:
    """The float dtype a loss computes in, from its floating inputs.

    Half-precision inputs are computed in float32; otherwise the widest float
    input dtype is used (float64 only exists under ``jax_enable_x64``). With no
    floating input, float32.
    """
    floats = [jnp.asarray(x).dtype for x in xs if x is not None and jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)]
    if not floats:
        return jnp.dtype(jnp.float32)
    dt = jnp.dtype(jnp.result_type(*floats))
    if dt.itemsize < 4:
        return jnp.dtype(jnp.float32)
    return dt


def as_compute(x: ArrayLike, dtype: Any) -> Array:
    """Casts ``x`` to the compute dtype (no-op if it already has it)."""
    return jnp.asarray(x).astype(dtype)


def const(value: float, like: Array) -> Array:
    """A Python constant as an array of ``like``'s dtype (no silent float64)."""
    return jnp.asarray(value, dtype=like.dtype)


# --------------------------------------------------------------------------
# Labels: integer class labels or a target distribution, decided at trace time.
# --------------------------------------------------------------------------


def has_integer_labels(fn: str, logits: Array, labels: Array) -> bool:
    """Returns True for integer labels of shape ``logits.shape[:-1]``, False for a
    target distribution of shape ``logits.shape``; raises for anything else."""
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    batch_shape = logits.shape[:-1]
    if jnp.issubdtype(labels.dtype, jnp.integer) or labels.dtype == jnp.bool_:
        if labels.shape != batch_shape:
            raise ValueError(
                f"{fn}: integer `labels` must have shape logits.shape[:-1]={batch_shape}, got {labels.shape}."
            )
        return True
    if jnp.issubdtype(labels.dtype, jnp.floating):
        if labels.shape != logits.shape:
            hint = (
                " (float labels of the batch shape look like class indices: cast them to an integer dtype)"
                if labels.shape == batch_shape
                else ""
            )
            raise ValueError(
                f"{fn}: `labels` must be integer class indices of shape {batch_shape} or a "
                f"target distribution of shape {logits.shape}, got {labels.dtype}{list(labels.shape)}{hint}."
            )
        return False
    raise TypeError(f"{fn}: `labels` must have an integer or float dtype, got {labels.dtype}.")


def class_targets(fn: str, logits: Array, labels: ArrayLike, dtype: Any = None, *, where: Array | None = None) -> Array:
    """Target distribution of shape ``logits.shape`` from integer labels or a distribution.

    Integer labels become a one-hot built by comparing with an iota (fusible,
    no gather/scatter). An out-of-range integer label gives a row of NaN, as
    JAX's out-of-bounds gather does: the loss of that example is NaN, loudly
    (and debug mode names the bad label). Rows masked out by ``where`` may carry
    any label (padding): they get a zero row, never NaN. A float distribution
    is returned cast to ``dtype``.

    Args:
      fn: the public function's name (for error messages).
      logits: ``[..., C]`` (only its shape is used).
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      dtype: the compute dtype (default: from ``logits``).
      where: the batch mask (``[...]``, boolean) or None.

    Returns:
      ``[..., C]`` targets.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax import _checks as C
      >>> C.class_targets("f", jnp.zeros((2, 2)), jnp.array([1, 7])).tolist()
      [[0.0, 1.0], [nan, nan]]
    """
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    dtype = compute_dtype(logits) if dtype is None else dtype
    if has_integer_labels(fn, logits, labels):
        num_classes = logits.shape[-1]
        valid = (labels >= 0) & (labels < num_classes)
        if where is not None:
            valid = valid | ~jnp.broadcast_to(where, valid.shape)
        debug_check(jnp.all(valid), f"{fn}: integer labels must lie in [0, {num_classes})")
        iota = jax.lax.broadcasted_iota(labels.dtype, logits.shape, logits.ndim - 1)
        onehot = (iota == labels[..., None]).astype(dtype)
        return jnp.where(valid[..., None], onehot, jnp.asarray(jnp.nan, dtype))
    return labels.astype(dtype)


# --------------------------------------------------------------------------
# Masking (`where`) with the double-where pattern.
# --------------------------------------------------------------------------


def prepare_where(fn: str, where: ArrayLike | None, batch_shape: Sequence[int]) -> Array | None:
    """Checks a boolean ``where`` mask and broadcasts it to ``batch_shape``, aligned with the LEADING axes.

    A mask of shape ``[B]`` on a per-token loss ``[B, T]`` masks whole
    sequences (it is read as ``[B, 1]``), also when ``B == T``: lossjax masks
    align with leading axes everywhere (numpy's trailing alignment would
    silently mask token positions instead). Each mask axis must equal the batch
    axis it lines up with, or be 1.

    Args:
      fn: the public function (for the error message).
      where: None or a boolean array of rank <= ``len(batch_shape)``.
      batch_shape: the loss's batch shape.

    Returns:
      The mask broadcast to ``batch_shape``, or None when ``where`` is None.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax import _checks as C
      >>> C.prepare_where("f", jnp.array([True, False]), (2, 2)).tolist()
      [[True, True], [False, False]]
    """
    if where is None:
        return None
    where = jnp.asarray(where)
    if where.dtype != jnp.bool_:
        raise TypeError(f"{fn}: `where` must be a boolean mask, got dtype {where.dtype}.")
    batch_shape = tuple(batch_shape)
    ok = where.ndim <= len(batch_shape) and all(w in (1, b) for w, b in zip(where.shape, batch_shape, strict=False))
    if not ok:
        raise ValueError(
            f"{fn}: `where` must be broadcastable to the batch shape {batch_shape} along its leading axes "
            f"(each axis equal or 1), got shape {where.shape}."
        )
    return jnp.broadcast_to(_expand(where, len(batch_shape)), batch_shape)


def _expand(mask: Array, ndim: int) -> Array:
    return jnp.reshape(mask, mask.shape + (1,) * (ndim - mask.ndim))


def fill_masked(x: Array, mask: Array | None, fill: float = 0.0) -> Array:
    """First half of the double-where: replaces masked entries of ``x`` by ``fill``.

    ``mask`` has the batch shape (a prefix of ``x.shape``); True keeps the entry.
    Feeding the filled input into the loss keeps gradients of masked entries
    finite even when the padded values are garbage (inf, NaN).
    """
    if mask is None:
        return x
    return jnp.where(_expand(mask, x.ndim), x, jnp.asarray(fill, x.dtype))


def zero_masked(loss: Array, mask: Array | None) -> Array:
    """Second half of the double-where: masked entries get exactly zero loss."""
    if mask is None:
        return loss
    return jnp.where(_expand(mask, loss.ndim), loss, jnp.zeros((), loss.dtype))


def _leading_mask(where: ArrayLike, x: Array) -> Array:
    w = jnp.asarray(where, bool)
    return jnp.broadcast_to(_expand(w, x.ndim), x.shape)


def masked_sum(
    x: ArrayLike,
    where: ArrayLike | None = None,
    axis: int | Sequence[int] | None = None,
    *,
    axis_name: Any = None,
) -> Array:
    """Sum of ``x`` over ``axis`` counting only the entries where ``where`` is True.

    Args:
      x: values, e.g. per-example losses ``[B]`` or per-token losses ``[B, T]``.
      where: boolean mask aligned with the leading axes of ``x`` (a ``[B]`` mask
        on ``[B, T]`` masks whole rows); None keeps everything.
      axis: axes to sum over (default: all).
      axis_name: also sum over this mapped mesh axis (inside ``shard_map`` /
        ``pmap``): the sum over the global batch.

    Returns:
      The masked sum.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> float(lossjax.masked_sum(jnp.array([1.0, 2.0, 3.0]), jnp.array([True, False, True])))
      4.0
    """
    x = jnp.asarray(x)
    total = jnp.sum(x if where is None else jnp.where(_leading_mask(where, x), x, jnp.zeros((), x.dtype)), axis=axis)
    return total if axis_name is None else jax.lax.psum(total, axis_name)


def masked_mean(
    x: ArrayLike,
    where: ArrayLike | None = None,
    axis: int | Sequence[int] | None = None,
    *,
    axis_name: Any = None,
) -> Array:
    """Mean of ``x`` over the entries where ``where`` is True; 0 (not NaN) if none are.

    With ``axis_name`` it is the *global* masked mean over every device's
    entries (``psum`` of sums over ``psum`` of counts), which is what a
    data-parallel step needs when devices hold different numbers of valid rows:
    the mean of per-device masked means weights every device equally and is
    wrong then.

    Args:
      x: values, e.g. per-example losses ``[B]`` or per-token losses ``[B, T]``.
      where: boolean mask aligned with the leading axes of ``x``; None keeps everything.
      axis: axes to average over (default: all).
      axis_name: also average over this mapped mesh axis (inside ``shard_map`` / ``pmap``).

    Returns:
      The masked mean (float).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> float(lossjax.masked_mean(jnp.array([1.0, 2.0, 3.0]), jnp.array([True, False, True])))
      2.0
      >>> float(lossjax.masked_mean(jnp.array([1.0, 2.0]), jnp.array([False, False])))
      0.0
    """
    x = jnp.asarray(x)
    dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
    mask = jnp.ones(x.shape, bool) if where is None else _leading_mask(where, x)
    total = jnp.sum(jnp.where(mask, x, jnp.zeros((), x.dtype)).astype(dtype), axis=axis)
    count = jnp.sum(mask, axis=axis).astype(dtype)
    if axis_name is not None:
        total, count = jax.lax.psum((total, count), axis_name)
    return total / jnp.maximum(count, jnp.ones((), dtype))


# --------------------------------------------------------------------------
# Safe numerics.
# --------------------------------------------------------------------------


def safe_norm(
    x: Array, axis: int | Sequence[int] | None = -1, *, epsilon: float = 0.0, keepdims: bool = False
) -> Array:
    """Euclidean norm whose gradient is finite (zero) at ``x = 0``.

    ``max(||x||, epsilon)`` when ``epsilon > 0``.
    """
    sq = jnp.sum(jnp.square(x), axis=axis, keepdims=keepdims)
    nonzero = sq > 0
    norm = jnp.where(nonzero, jnp.sqrt(jnp.where(nonzero, sq, jnp.ones((), sq.dtype))), jnp.zeros((), sq.dtype))
    if epsilon:
        norm = jnp.maximum(norm, jnp.asarray(epsilon, norm.dtype))
    return norm


def safe_sqrt(x: Array, *, epsilon: float = 0.0) -> Array:
    """``sqrt(x)`` where ``x > epsilon``, else exactly 0, with a finite (zero) gradient there.

    The double-``where`` keeps the infinite derivative of ``sqrt`` at 0 out of
    the backward pass: a distance between identical points has gradient 0, not NaN.

    Example:
      >>> import jax, jax.numpy as jnp, lossjax._checks as C
      >>> C.safe_sqrt(jnp.array([0.0, 4.0]))
      Array([0., 2.], dtype=float32)
      >>> jax.grad(lambda x: C.safe_sqrt(x).sum())(jnp.array([0.0, 4.0]))
      Array([0.  , 0.25], dtype=float32)
    """
    pos = x > epsilon
    safe = jnp.where(pos, x, jnp.ones((), x.dtype))
    return jnp.where(pos, jnp.sqrt(safe), jnp.zeros((), x.dtype))


def safe_log(x: Array, *, epsilon: float = 0.0) -> Array:
    """``log(max(x, epsilon))``; with ``epsilon=0`` the smallest normal number of the dtype."""
    floor = epsilon if epsilon > 0 else float(jnp.finfo(x.dtype).tiny)
    return jnp.log(jnp.maximum(x, jnp.asarray(floor, x.dtype)))


def log1mexp(x: Array) -> Array:
    """``log(1 - exp(x))`` for ``x <= 0``, stable at both ends, finite at ``x = 0``.

    Uses ``log(-expm1(x))`` above ``-log 2`` and ``log1p(-exp(x))`` below
    (Maechler, 2012); ``x`` is clamped to ``<= -tiny`` so ``x = 0`` (a
    probability of 1) gives ``log(tiny)`` and a zero gradient, never ``-inf``/NaN.

    Example:
      >>> import jax.numpy as jnp, lossjax._checks as C
      >>> C.log1mexp(jnp.array([-1e-3, -1.0, -50.0])).round(4)
      Array([-6.9083, -0.4587, -0.    ], dtype=float32)
    """
    x = jnp.minimum(x, jnp.asarray(-float(jnp.finfo(x.dtype).tiny), x.dtype))
    small = x > jnp.asarray(-0.6931471805599453, x.dtype)
    near = jnp.log(-jnp.expm1(jnp.where(small, x, jnp.asarray(-1.0, x.dtype))))
    far = jnp.log1p(-jnp.exp(jnp.where(small, jnp.asarray(-1.0, x.dtype), x)))
    return jnp.where(small, near, far)


def safe_power(base: Array, exponent) -> Array:
    """``base ** exponent`` for ``base >= 0`` with finite gradients everywhere.

    Static integer exponents (``gamma = 2`` ...) are exact multiplications.
    Otherwise ``exp(exponent * log(base))`` on the positive part, and exactly
    ``0 ** exponent`` (0, or 1 for ``exponent = 0``) at ``base = 0``, where the
    gradient is 0 instead of the infinite ``exponent * base ** (exponent - 1)``
    of ``0 < exponent < 1`` (the focal-loss pitfall).

    Example:
      >>> import jax.numpy as jnp, lossjax._checks as C
      >>> C.safe_power(jnp.array([0.0, 0.25, 1.0]), 0.5)
      Array([0. , 0.5, 1. ], dtype=float32)
    """
    if isinstance(exponent, (int, float)) and not isinstance(exponent, bool) and float(exponent).is_integer():
        return jnp.ones_like(base) if exponent == 0 else jax.lax.integer_pow(base, int(exponent))
    e = jnp.asarray(exponent, base.dtype)
    positive = base > 0
    powered = jnp.exp(e * jnp.log(jnp.where(positive, base, jnp.ones((), base.dtype))))
    at_zero = jnp.where(e == 0, jnp.ones((), base.dtype), jnp.zeros((), base.dtype))
    return jnp.where(positive, powered, at_zero)


# --------------------------------------------------------------------------
# Opt-in value checks (debug mode), built on checkify.
# --------------------------------------------------------------------------

_DEBUG = threading.local()


def _debug_on() -> bool:
    return getattr(_DEBUG, "on", False)


def debug_check(pred: Array, msg: str) -> None:
    """A data-dependent check that only exists in debug mode.

    Outside :func:`debug_checks` / :func:`checked` this does nothing, so a
    jitted loss carries no host callback. Inside, it becomes a
    ``checkify.check`` whose failure raises when the checked function returns.
    """
    if _debug_on():
        checkify.check(pred, msg)


@contextlib.contextmanager
def debug_checks():
    """Context manager: losses traced inside it carry their data-dependent value checks.

    The checks are ``checkify`` checks: functionalize them with
    ``jax.experimental.checkify.checkify`` (which :func:`checked` does for you).

    Returns:
      A context manager.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> from jax.experimental import checkify
      >>> def f(z, y):
      ...     with lossjax.debug_checks():
      ...         return lossjax.losses.softmax_cross_entropy(z, y)
      >>> err, _ = checkify.checkify(f)(jnp.zeros((1, 3)), jnp.array([7]))
      >>> err.get() is not None
      True
    """
    prev = _debug_on()
    _DEBUG.on = True
    try:
        yield
    finally:
        _DEBUG.on = prev


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic)) and not isinstance(x, (bool, int, float))


def _allowed_nonfinite(fn: Callable[..., Any]) -> tuple[str, ...]:
    """The arguments a registered loss declares may hold NaN/inf (``register(allow_nonfinite=...)``)."""
    from lossjax import registry  # a registered loss's metadata (imported here: registry imports this module)

    entry = registry.entry_of(getattr(fn, "__wrapped__", fn))
    return () if entry is None else entry.allow_nonfinite


def _input_masks(fn: Callable[..., Any], args: tuple, kwargs: dict) -> list[tuple[Any, Array]]:
    """``(input, where_mask_or_None)`` for every float input, pairing each with the masks that apply to it.

    ``where`` applies to every input whose leading axes it matches; ``X_where``
    to the inputs whose parameter name contains ``X`` (``token_where`` to any
    input it matches): masked rows may hold anything (padding), also NaN.
    """
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        names = []
    named = [(names[i] if i < len(names) else f"arg{i}", a) for i, a in enumerate(args)]
    named += [(k, v) for k, v in kwargs.items() if k != "where" and not k.endswith("_where")]
    skip = set(_allowed_nonfinite(fn))
    named = [(n, v) for n, v in named if n not in skip]
    masks = {k: jnp.asarray(v) for k, v in kwargs.items() if (k == "where" or k.endswith("_where")) and v is not None}
    out = []
    for name, value in named:
        for leaf in jax.tree.leaves(value):
            if not (hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating)):
                continue
            keep = None
            for mname, m in masks.items():
                role = mname[: -len("_where")] if mname != "where" else ""
                applies = mname == "where" or role == "token" or role in name
                if applies and m.dtype == jnp.bool_ and m.ndim <= leaf.ndim and leaf.shape[: m.ndim] == m.shape:
                    mm = _expand(m, leaf.ndim)
                    keep = mm if keep is None else keep & mm
            out.append((leaf, keep))
    return out


def checked(fn: Callable[..., Any], *, jit: bool = True) -> Callable[..., Any]:
    """Wraps a loss so that its value checks (labels in range, finite inputs) raise.

    The wrapped call checks exactly what the plain call checks (shapes, dtypes
    and hyperparameters, at trace time: settings are bound statically, never
    traced) plus the data-dependent checks of debug mode: integer labels in
    range, and finite inputs wherever they are not masked (masked rows are
    padding and may hold anything, NaN included).

    Inside ``jax.jit`` (or any trace) the checks cannot raise by themselves:
    they become ``checkify`` checks that the caller functionalizes::

        step = jax.jit(checkify.checkify(train_step))   # train_step calls lossjax.checked(loss)(...)
        err, out = step(...)
        err.throw()

    Args:
      fn: a loss (or any function of arrays).
      jit: compile the checked function (outside a trace).

    Returns:
      A function with ``fn``'s signature that raises ``ValueError`` with the
      failed check's message.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> ce = lossjax.checked(lossjax.losses.softmax_cross_entropy)
      >>> ce(jnp.zeros((2, 3)), jnp.array([0, 5]))  # doctest: +IGNORE_EXCEPTION_DETAIL
      Traceback (most recent call last):
      ValueError: softmax_cross_entropy: integer labels must lie in [0, 3)
    """

    def body(args, kwargs):
        with debug_checks():
            out = fn(*args, **kwargs)
        for leaf, keep in _input_masks(fn, args, kwargs):
            ok = jnp.isfinite(leaf) if keep is None else jnp.isfinite(leaf) | ~keep
            checkify.check(jnp.all(ok), f"{getattr(fn, '__name__', 'loss')}: input contains NaN or inf")
        return out

    def run(*args, **kwargs):
        if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves((args, kwargs))):
            return body(args, kwargs)  # inside a trace: the caller checkifies
        static = {k: v for k, v in kwargs.items() if not any(_is_array(x) for x in jax.tree.leaves(v))}
        dynamic = {k: v for k, v in kwargs.items() if k not in static}
        checked_fn = checkify.checkify(lambda a, d: body(a, {**static, **d}), errors=checkify.user_checks)
        if jit:
            checked_fn = jax.jit(checked_fn)
        err, out = checked_fn(args, dynamic)
        msg = err.get()
        if msg is not None:
            raise ValueError(msg.split(" (check failed at")[0])
        return out

    functools.update_wrapper(run, fn)
    return run
