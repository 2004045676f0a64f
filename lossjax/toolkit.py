"""The public toolkit for writing a loss that passes lossjax's conformance suite.

The library's own losses use these helpers (from the private ``lossjax._checks``);
this module is their stable, documented path for users' losses. Argument checks
raise at trace time with the function, the argument, the value and what was
needed; masking follows lossjax's contract (``where`` aligns with the LEADING
batch axes, masked rows may hold garbage and get exactly 0 loss and gradient:
the double-``where`` of :func:`fill_masked` then :func:`zero_masked`); the dtype
policy computes half-precision inputs in float32 (:func:`compute_dtype`).

The reductions ``masked_mean`` / ``masked_sum``, ``register`` and ``checked``
are public at the top level (``lossjax.masked_mean`` ...) and are not repeated here.
See the documentation page "Writing your own loss".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from lossjax import _checks as _C

Array = jax.Array

__all__ = [
    "as_compute",
    "check_array",
    "check_in_range",
    "check_int",
    "check_one_of",
    "check_positive",
    "check_same_shape",
    "class_targets",
    "compute_dtype",
    "fill_masked",
    "log1mexp",
    "prepare_where",
    "safe_log",
    "safe_norm",
    "safe_power",
    "safe_sqrt",
    "zero_masked",
]


# ------------------------------ argument checks ------------------------------


def check_array(
    fn: str,
    arg: str,
    x: Any,
    *,
    ndim: int | Sequence[int] | None = None,
    min_ndim: int | None = None,
    dtype: str | None = None,
    shape: Sequence[int | None] | None = None,
) -> Array:
    """Converts ``x`` to an array and checks its rank, dtype kind and shape (at trace time).

    Args:
      fn: your public function's name (for the error message).
      arg: the argument's name (for the error message).
      x: the value.
      ndim: required rank, or a sequence of allowed ranks.
      min_ndim: smallest allowed rank.
      dtype: required dtype kind: ``"float"``, ``"int"``, ``"bool"``, ``"number"`` or ``"int_or_bool"``.
      shape: required shape; ``None`` entries match any size.

    Returns:
      ``jnp.asarray(x)``; raises ValueError (rank, shape) or TypeError (dtype kind) otherwise.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax import toolkit as T
      >>> T.check_array("my_loss", "logits", jnp.zeros((2, 3)), ndim=2, dtype="float").shape
      (2, 3)
      >>> T.check_array("my_loss", "logits", jnp.zeros(3), ndim=2)
      Traceback (most recent call last):
      ValueError: my_loss: argument `logits` must have rank 2, got rank 1 (shape (3,)).
    """
    return _C.check_array(fn, arg, x, ndim=ndim, min_ndim=min_ndim, dtype=dtype, shape=shape)


def check_positive(fn: str, arg: str, value: Any, *, allow_zero: bool = False) -> None:
    """Checks a hyperparameter is a finite, (strictly) positive number when it is concrete.

    Traced values (e.g. under ``optax.inject_hyperparams``) are not checked.

    Args:
      fn: your public function's name (for the error message).
      arg: the hyperparameter's name.
      value: its value (a Python/numpy number or a concrete scalar array).
      allow_zero: accept 0.

    Returns:
      None; raises ValueError naming ``fn``, ``arg``, the value and what was needed.

    Example:
      >>> from lossjax import toolkit as T
      >>> T.check_positive("my_loss", "temperature", 0.1)
      >>> T.check_positive("my_loss", "temperature", float("nan"))
      Traceback (most recent call last):
      ValueError: my_loss: `temperature` must be a finite number, got nan.
    """
    _C.check_positive(fn, arg, value, allow_zero=allow_zero)


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
    """Checks a concrete hyperparameter lies in ``[low, high]`` (each end closed or open as requested).

    Args:
      fn: your public function's name.
      arg: the hyperparameter's name.
      value: its value; traced values are not checked.
      low: lower bound.
      high: upper bound.
      low_inclusive: whether ``low`` itself is allowed.
      high_inclusive: whether ``high`` itself is allowed.

    Returns:
      None; raises ValueError otherwise (NaN is never in range).

    Example:
      >>> from lossjax import toolkit as T
      >>> T.check_in_range("my_loss", "smoothing", 0.1, 0.0, 1.0, high_inclusive=False)
      >>> T.check_in_range("my_loss", "smoothing", 1.0, 0.0, 1.0, high_inclusive=False)
      Traceback (most recent call last):
      ValueError: my_loss: `smoothing` must lie in [0.0, 1.0), got 1.0.
    """
    _C.check_in_range(fn, arg, value, low, high, low_inclusive=low_inclusive, high_inclusive=high_inclusive)


def check_int(fn: str, arg: str, value: Any, low: int | None = None, *, static: bool = False) -> None:
    """Checks an integer hyperparameter (a Python/numpy integer or a concrete integer scalar; not a bool).

    Args:
      fn: your public function's name.
      arg: the hyperparameter's name.
      value: its value.
      low: smallest allowed value (None: any integer).
      static: the value shapes the computation (an iteration count, a size): a traced value is an error.

    Returns:
      None; raises ValueError otherwise.

    Example:
      >>> from lossjax import toolkit as T
      >>> T.check_int("my_loss", "num_iterations", 3, 1)
      >>> T.check_int("my_loss", "num_iterations", True, 1)
      Traceback (most recent call last):
      ValueError: my_loss: `num_iterations` must be an integer >= 1, got True.
    """
    _C.check_int(fn, arg, value, low, static=static)


def check_one_of(fn: str, arg: str, value: Any, options: Sequence[Any]) -> None:
    """Checks a string/enum hyperparameter is one of ``options``.

    Args:
      fn: your public function's name.
      arg: the hyperparameter's name.
      value: its value.
      options: the allowed values.

    Returns:
      None; raises ValueError listing the options otherwise.

    Example:
      >>> from lossjax import toolkit as T
      >>> T.check_one_of("my_loss", "variant", "hard", ("hard", "soft"))
      >>> T.check_one_of("my_loss", "variant", "hrad", ("hard", "soft"))
      Traceback (most recent call last):
      ValueError: my_loss: `variant` must be one of ['hard', 'soft'], got 'hrad'.
    """
    _C.check_one_of(fn, arg, value, options)


def check_same_shape(fn: str, names: tuple[str, str], first: Array, second: Array) -> None:
    """Checks two array arguments have exactly the same shape.

    Args:
      fn: your public function's name.
      names: the two arguments' names, for the message.
      first: the first array.
      second: the second array.

    Returns:
      None; raises ValueError with both shapes otherwise.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax import toolkit as T
      >>> T.check_same_shape("my_loss", ("predictions", "targets"), jnp.zeros(2), jnp.zeros(3))
      Traceback (most recent call last):
      ValueError: my_loss: `predictions` and `targets` must have the same shape, got predictions.shape=(2,) and targets.shape=(3,).
    """  # noqa: E501
    _C.check_same_shape(fn, names, first, second)


# ---------------------------------- masking ----------------------------------


def prepare_where(fn: str, where: Any, batch_shape: Sequence[int]) -> Array | None:
    """Checks a boolean ``where`` mask and broadcasts it to ``batch_shape``, aligned with the LEADING axes.

    A ``[B]`` mask on a per-token loss ``[B, T]`` masks whole sequences (read as
    ``[B, 1]``), also when ``B == T``; each mask axis must equal its batch axis or be 1.

    Args:
      fn: your public function's name.
      where: None or a boolean array of rank <= ``len(batch_shape)``.
      batch_shape: the loss's batch shape (the shape of its per-example output).

    Returns:
      The mask broadcast to ``batch_shape``, or None when ``where`` is None.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax import toolkit as T
      >>> T.prepare_where("my_loss", jnp.array([True, False]), (2, 3)).tolist()
      [[True, True, True], [False, False, False]]
    """
    return _C.prepare_where(fn, where, batch_shape)


def fill_masked(x: Array, where: Array | None, fill: float = 0.0) -> Array:
    """First half of the double-``where``: replaces masked entries of an input by a harmless ``fill``.

    Feeding the filled input into the loss keeps the gradients of masked
    entries finite even when the padding holds garbage (inf, NaN).

    Args:
      x: an input whose leading axes are the batch shape.
      where: the prepared mask (batch shape, True keeps) or None.
      fill: the value put in masked entries (pick one valid for your formula, e.g. 1 under a log).

    Returns:
      ``x`` with masked entries replaced by ``fill``.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax import toolkit as T
      >>> T.fill_masked(jnp.array([[1.0, 2.0], [jnp.nan, 3.0]]), jnp.array([True, False])).tolist()
      [[1.0, 2.0], [0.0, 0.0]]
    """
    return _C.fill_masked(x, where, fill)


def zero_masked(loss: Array, where: Array | None) -> Array:
    """Second half of the double-``where``: masked entries of a per-example loss get exactly 0.

    Args:
      loss: the per-example loss (batch shape, or with trailing axes).
      where: the prepared mask or None.

    Returns:
      ``loss`` with masked entries set to 0.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax import toolkit as T
      >>> T.zero_masked(jnp.array([0.5, 7.0]), jnp.array([True, False])).tolist()
      [0.5, 0.0]
    """
    return _C.zero_masked(loss, where)


def class_targets(fn: str, logits: Array, labels: Any, dtype: Any = None, *, where: Array | None = None) -> Array:
    """A target distribution of shape ``logits.shape`` from integer class indices or a distribution.

    Integer labels become a one-hot (an iota comparison: no gather); an
    out-of-range label in an unmasked row gives a row of NaN (as JAX's
    out-of-bounds gather; ``lossjax.checked`` turns it into an error); masked
    rows may carry any label and get a zero row.

    Args:
      fn: your public function's name.
      logits: ``[..., C]`` (only its shape is used).
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      dtype: the compute dtype (default: from ``logits``).
      where: the prepared batch mask or None.

    Returns:
      ``[..., C]`` targets in ``dtype``.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax import toolkit as T
      >>> T.class_targets("my_loss", jnp.zeros((2, 3)), jnp.array([2, 0])).tolist()
      [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    return _C.class_targets(fn, logits, labels, dtype, where=where)


# ---------------------------------- dtypes ----------------------------------


def compute_dtype(*xs: Any) -> jnp.dtype:
    """The float dtype a loss computes in, from its floating inputs (lossjax's dtype policy).

    Half-precision inputs are computed in float32; otherwise the widest float
    input dtype (float64 only under ``jax_enable_x64``); float32 when no input is floating.

    Args:
      *xs: the loss's inputs (None and integer arrays are ignored).

    Returns:
      The compute dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax import toolkit as T
      >>> T.compute_dtype(jnp.zeros(2, jnp.bfloat16), jnp.array([1, 2]))
      dtype('float32')
    """
    return _C.compute_dtype(*xs)


def as_compute(x: Any, dtype: Any) -> Array:
    """Casts an input to the compute dtype (no-op when it already has it).

    Args:
      x: an array-like.
      dtype: the compute dtype, usually from :func:`compute_dtype`.

    Returns:
      ``jnp.asarray(x).astype(dtype)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax import toolkit as T
      >>> T.as_compute(jnp.ones(2, jnp.bfloat16), jnp.float32).dtype
      dtype('float32')
    """
    return _C.as_compute(x, dtype)


# ------------------------------- safe numerics -------------------------------


def safe_log(x: Array, *, epsilon: float = 0.0) -> Array:
    """``log(max(x, epsilon))``; with ``epsilon=0`` the floor is the smallest normal number of the dtype.

    Args:
      x: non-negative values (e.g. probabilities).
      epsilon: the floor (a numerical guard).

    Returns:
      The floored log, finite at ``x = 0``.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax import toolkit as T
      >>> bool(jnp.isfinite(T.safe_log(jnp.array(0.0))))
      True
    """
    return _C.safe_log(x, epsilon=epsilon)


def safe_sqrt(x: Array, *, epsilon: float = 0.0) -> Array:
    """``sqrt(x)`` where ``x > epsilon``, else exactly 0, with a zero (not infinite) gradient there.

    Args:
      x: values (e.g. squared distances).
      epsilon: below or at it the result and its gradient are 0.

    Returns:
      The square root.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from lossjax import toolkit as T
      >>> jax.grad(lambda x: T.safe_sqrt(x).sum())(jnp.array([0.0, 4.0]))
      Array([0.  , 0.25], dtype=float32)
    """
    return _C.safe_sqrt(x, epsilon=epsilon)


def safe_norm(
    x: Array, axis: int | Sequence[int] | None = -1, *, epsilon: float = 0.0, keepdims: bool = False
) -> Array:
    """Euclidean norm whose gradient is finite (zero) at ``x = 0``; ``max(||x||, epsilon)`` when ``epsilon > 0``.

    Args:
      x: the vectors.
      axis: the axis (axes) reduced.
      epsilon: the floor of the norm.
      keepdims: keep the reduced axes.

    Returns:
      The norms.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from lossjax import toolkit as T
      >>> jax.grad(lambda x: T.safe_norm(x))(jnp.zeros(3))
      Array([0., 0., 0.], dtype=float32)
    """
    return _C.safe_norm(x, axis, epsilon=epsilon, keepdims=keepdims)


def safe_power(base: Array, exponent: Any) -> Array:
    """``base ** exponent`` for ``base >= 0`` with finite gradients everywhere (the focal-loss pitfall).

    Static integer exponents are exact multiplications; otherwise the gradient
    at ``base = 0`` is 0 instead of the infinite ``exponent * base ** (exponent - 1)``.

    Args:
      base: non-negative values.
      exponent: a number or an array.

    Returns:
      The power.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from lossjax import toolkit as T
      >>> float(jax.grad(lambda b: T.safe_power(b, 0.5))(jnp.array(0.0)))
      0.0
    """
    return _C.safe_power(base, exponent)


def log1mexp(x: Array) -> Array:
    """``log(1 - exp(x))`` for ``x <= 0``, stable at both ends and finite at ``x = 0``.

    Args:
      x: non-positive values (log-probabilities).

    Returns:
      ``log(1 - exp(x))``.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax import toolkit as T
      >>> T.log1mexp(jnp.array([-1.0])).round(4)
      Array([-0.4587], dtype=float32)
    """
    return _C.log1mexp(x)
