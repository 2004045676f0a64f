"""Combiners of per-loss gradients: ConFIG and its peers, as optax aggregators.

Every combiner here follows the contract of
:class:`optax.experimental.aggregating.Aggregator`: ``update`` takes the m
per-loss gradients stacked on a leading axis (a pytree whose every leaf has
shape ``[m, *param_shape]``, e.g. from :func:`lossjax.multiloss.per_loss_value_and_grad`)
and returns ONE update shaped like the parameters. Put it first in an
``optax.chain``::

    tx = optax.chain(lossjax.transforms.config(), optax.adam(1e-3))
    losses, grads = lossjax.multiloss.per_loss_value_and_grad(loss_vector)(params, batch)
    updates, state = tx.update(grads, state, params)

All but GradDrop and the equal-weight sum are Gram-matrix methods: they read
the stacked gradients twice, once to form the ``m x m`` Gram matrix
``G = J J^T`` (at ``Precision.HIGHEST``, float32 for half-precision
gradients) and once to combine ``sum_i w_i g_i`` with weights ``w`` computed
from ``G`` alone. No ``m x P`` least-squares solve, no per-parameter
flattening or concatenation. The shared ``update`` lives in
:mod:`lossjax._aggregation`.

Every factory takes ``num_losses`` (keyword, default None): the stateful ones
(M-ConFIG, GradVac, Nash-MTL ...) require it; the others check the gradients
against it when it is given.

Weights and keys, the same everywhere (:class:`lossjax.transforms.AggregatorState`):
every aggregator's state has ``state.weights``, the per-loss weights ``w`` of
its last update (recorded when the factory got ``num_losses``; an empty array
otherwise, since a state keeps its shapes from ``init`` on) (``update == sum_i w_i g_i`` for every linear method; the
exceptions are documented: M-ConFIG, MoCo and DB-MTL weight momenta, GradDrop
and the trimmed mean report mean per-coordinate weights), ``state.inner``, the
method's own state, and ``state.key``. Every ``update`` accepts ``key=`` (a
PRNG key per call); the randomized methods use it, and their factories take
``seed`` (an integer) for a key kept in the state and split every step::

    tx = lossjax.transforms.pcgrad(num_losses=3, shuffle=True, seed=0)
    upd, state = tx.update(grads, tx.init(params))
    log(state.weights)  # the weights of this step

Data parallelism: combine the *whole batch's* per-loss gradients (ConFIG of
averages is not the average of ConFIGs). Compute each loss with the global
masked mean, ``lossjax.masked_mean(per_example, where, axis=0,
axis_name="data")``, and take the gradients with
``lossjax.multiloss.per_loss_value_and_grad(..., axis_name="data")`` (inside
``shard_map`` or ``pmap``): they are then the whole batch's, right also when
devices hold different numbers of valid rows, and the combiner needs no
``axis_name``. A combiner's own ``axis_name`` averages per-device gradients
(``jax.lax.pmean``) before combining: right only for per-device means of
equally many rows (with 1 valid row on one device and 3 on another, the
average of the per-device means is a 31-44% wrong update).

Faults: every combiner works at any gradient size (the Gram matrix is formed
in scaled form when its float32 entries would overflow or underflow; the
weights are exact either way), and a step whose new state is not finite (a NaN
gradient) keeps the previous state, so one bad step does not poison M-ConFIG's
momenta or GradVac's targets for the rest of training. To skip such steps,
wrap the chain in :func:`lossjax.transforms.apply_if_finite` (optax's own
``optax.apply_if_finite`` cannot wrap an aggregator: its skipped step returns
zeros shaped like the ``[m, ...]`` input)::

    tx = lossjax.transforms.apply_if_finite(optax.chain(lossjax.transforms.config(), optax.adam(1e-3)), 5)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax.experimental import aggregating

from lossjax import _checks as C
from lossjax import _trees
from lossjax._aggregation import (
    HIGHEST,
    aggregator,
    check_length,
    check_num_losses,
    combine,
    cross_gram,
    gram_aggregator,
    num_losses_of,
    safe_gram,
    sample_grads,
)
from lossjax._parallel import pmean
from lossjax.registry import TransformSample, register

__all__ = [
    "CRMOGMState",
    "DBMTLState",
    "ExcessMTLState",
    "GradVacState",
    "IMTLState",
    "MConfigState",
    "MoCoState",
    "MoDoState",
    "NashMTLState",
    "PCDState",
    "SDMGradState",
    "aligned_mtl",
    "cagrad",
    "config",
    "config_weights",
    "constant_weights",
    "cr_mogm",
    "db_mtl",
    "dualproj",
    "equal_weight",
    "excess_mtl",
    "fairgrad",
    "graddrop",
    "gradvac",
    "imtl",
    "imtl_g",
    "krum",
    "m_config",
    "m_config_schedule",
    "mgda",
    "moco_mtl",
    "modo",
    "nash_mtl",
    "pcd",
    "pcgrad",
    "sdmgrad",
    "trimmed_mean",
    "upgrad",
]

Array = jax.Array

FAMILY = "multitask"
LENGTH_MODELS = ("projection", "min", "max", "harmonic", "arithmetic", "geometric")
_MAX_EXACT = 12  # supports enumerated exactly up to this many losses


# ------------------------------------------------------------------------------
# Helpers of this family: safe inverse, pseudo-inverse, argument checks.
# ------------------------------------------------------------------------------


def _safe_inv(x: Array) -> Array:
    nz = x != 0
    return jnp.where(nz, 1.0 / jnp.where(nz, x, jnp.ones((), x.dtype)), jnp.zeros((), x.dtype))


#: Up to this many losses the ``m x m`` pseudo-inverse is computed in the graph (:func:`_pinv_psd_small`):
#: a few dozen tiny element-wise ops instead of a call into the device's linear-algebra library
#: (cuSOLVER's eigh cost a fixed ~0.8 ms per step on an H200, 11x the bytes floor of ConFIG at P = 1e7).
_SMALL_PINV = 16


def _chol_rows(A: Array, tol: Array) -> Array:
    """Upper factor ``R`` with ``A = R^T R`` by Cholesky without pivoting, unrolled over the ``m`` rows.

    A pivot at or below ``tol`` marks its row as linearly dependent on the previous ones: that row of
    ``R`` is 0, so ``R`` has full row rank on the kept rows (a rank-revealing factor of a PSD matrix).
    """
    m = A.shape[0]
    zero = jnp.zeros((), A.dtype)
    R = jnp.zeros_like(A)
    for k in range(m):
        row = A[k] - R[:, k] @ R  # A[k, :] - sum_{i<k} R[i, k] R[i, :] (rows >= k of R are still 0)
        piv = row[k]
        keep = piv > tol
        r_kk = jnp.sqrt(jnp.where(keep, piv, jnp.ones((), A.dtype)))
        col = jnp.arange(m) >= k
        R = R.at[k].set(jnp.where(keep & col, row / r_kk, zero))
    return R


def _solve_chol(R: Array, B: Array) -> Array:
    """``(R^T R)^{-1} B`` for an invertible upper factor ``R`` ``[m, m]`` and ``B`` ``[m, k]``: two unrolled sweeps."""
    m = R.shape[0]
    Y = jnp.zeros_like(B)
    for k in range(m):  # R^T Y = B
        Y = Y.at[k].set((B[k] - R[:, k] @ Y) / R[k, k])
    X = jnp.zeros_like(B)
    for k in reversed(range(m)):  # R X = Y
        X = X.at[k].set((Y[k] - R[k] @ X) / R[k, k])
    return X


def _pinv_psd_small(A: Array, rcond: float | None) -> Array:
    """``A^+`` of a symmetric PSD ``m x m`` matrix without a linear-algebra library call.

    A rank-revealing Cholesky ``A = R^T R`` (pivots below ``rcond * max diag(A)`` dropped, ``R`` of
    full row rank ``r`` on the kept rows) gives ``A^+ = R^T (R R^T)^{-2} R`` (exact for any rank; the
    ``r x r`` system is embedded in ``m x m`` with the identity on the dropped rows). Matches the eigh
    pseudo-inverse to rounding whenever no eigenvalue sits near the cut-off.
    """
    m = A.shape[0]
    r = 10.0 * m * float(jnp.finfo(A.dtype).eps) if rcond is None else rcond
    A = 0.5 * (A + A.T)
    scale = jnp.max(jnp.abs(jnp.diagonal(A)))
    R = _chol_rows(A, scale * r)
    kept = jnp.diagonal(R) > 0
    K = R @ R.T + jnp.diag(jnp.where(kept, 0.0, 1.0).astype(A.dtype))
    X = _solve_chol(_chol_rows(K, jnp.zeros((), A.dtype)), R)  # (R R^T)^{-1} R
    return X.T @ X  # R^T (R R^T)^{-2} R


def _pinv_psd(A: Array, rcond: float | None) -> Array:
    """Pseudo-inverse of a symmetric PSD matrix by ``eigh`` (portable, exact zero at A = 0)."""
    m = A.shape[0]
    lam, V = jnp.linalg.eigh(A, symmetrize_input=True)
    r = 10.0 * m * float(jnp.finfo(A.dtype).eps) if rcond is None else rcond
    cut = jnp.max(jnp.abs(lam)) * r
    keep = lam > cut
    inv = jnp.where(keep, 1.0 / jnp.where(keep, lam, jnp.ones((), lam.dtype)), jnp.zeros((), lam.dtype))
    return (V * inv[None, :]) @ V.T


def _check_weights(fn: str, weights, num_losses: int | None, *, positive: bool):
    """``weights`` over the losses: None, or a 1-D sequence of finite numbers (> 0, or >= 0), one per loss."""
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64)
    bad = np.any(w <= 0) if positive else np.any(w < 0)
    if w.ndim != 1 or not np.all(np.isfinite(w)) or bad:
        kind = "positive" if positive else "non-negative"
        raise ValueError(f"{fn}: `weights` must be a 1-D sequence of {kind} finite numbers, got {weights!r}.")
    check_length(fn, "weights", w, num_losses)
    return tuple(float(v) for v in w)


def _weights_vector(fn: str, weights, m: int, dtype, default: float) -> Array:
    """The weights as an array ``[m]``; ``default`` for every loss when None."""
    if weights is None:
        return jnp.full((m,), default, dtype)
    check_length(fn, "weights", weights, m)
    return jnp.asarray(weights, dtype)


def _check_length_model(fn: str, length_model) -> None:
    if isinstance(length_model, (int, np.integer)) and not isinstance(length_model, bool):
        C.check_int(fn, "length_model", length_model, 0)  # a loss index
        return
    C.check_one_of(fn, "length_model", length_model, (*LENGTH_MODELS, "<loss index: int>"))


# ------------------------------------------------------------------------------
# Conformance samples.
# ------------------------------------------------------------------------------


def _sample(*variants, hyperparams=None, key: bool = False, selected: bool = False, num_losses: int = 3):
    """The conformance sample of a combiner: a two-leaf model, ``num_losses`` stacked gradients, its variants."""

    def make():
        params, updates = sample_grads(np.random.default_rng(0))
        updates = {k: v[:num_losses] for k, v in updates.items()}
        extra = {}
        if key:  # a raw uint32[2] key: the same draw on every step
            extra["key"] = np.asarray(jax.random.key_data(jax.random.key(0)))
        if selected:
            extra["selected"] = np.ones((num_losses,), bool)
        return TransformSample(
            params=params,
            updates=updates,
            hyperparams=dict(hyperparams or {}),
            extra_args=extra,
            variants=tuple(variants),
        )

    return make


# ------------------------------------------------------------------------------
# ConFIG.
# ------------------------------------------------------------------------------


def _tracked(norms: Array, length_model) -> Array:
    m = norms.shape[0]
    if isinstance(length_model, (int, np.integer)):
        return norms[length_model]
    if length_model == "min":
        return jnp.min(norms)
    if length_model == "max":
        return jnp.max(norms)
    if length_model == "harmonic":
        return m * _safe_inv(jnp.sum(_safe_inv(norms))) * jnp.all(norms > 0)
    if length_model == "arithmetic":
        return jnp.mean(norms)
    # geometric, computed in log space (no overflow/underflow of the product)
    pos = norms > 0
    logs = jnp.log(jnp.where(pos, norms, jnp.ones((), norms.dtype)))
    return jnp.where(jnp.all(pos), jnp.exp(jnp.mean(logs)), jnp.zeros((), norms.dtype))


def config_weights(
    G: Array,
    *,
    weights: Sequence[float] | None = None,
    length_model: str | int = "projection",
    closed_form_two: bool = True,
    rcond: float | None = None,
) -> Array:
    r"""ConFIG's coefficients ``c`` such that the ConFIG update is ``sum_i c_i g_i``, from the Gram matrix.

    .. math::
        U U^\top = D^{-1} G D^{-1},\quad \alpha = (U U^\top)^{+} w,\quad d = U^\top \alpha,\qquad
        c = \frac{|g_c|}{\|d\|}\, D^{-1} \alpha

    With norms ``n_i = sqrt(G_ii)``, the unit-gradient Gram ``U U^T = D^{-1} G D^{-1}``,
    ``alpha = (U U^T)^+ w`` and the direction ``d = U^T alpha`` (the minimum-norm
    least-squares solution of ``U d = w``, i.e. ``pinv(U) w``). Since
    ``u_i . d = (U U^T alpha)_i`` and ``||d||^2 = alpha^T U U^T alpha``, every
    length model is a function of ``G``:

    - ``"projection"``: ``|g_c| = sum_i g_i . d/||d||``;
    - ``"min"``, ``"max"``, ``"harmonic"``, ``"arithmetic"``, ``"geometric"``
      or a loss index ``k``: ``|g_c| = t sum_i u_i . d/||d||`` with ``t`` the
      min/max/means of the norms or ``n_k``.

    For two losses (``closed_form_two``) the direction is the closed form
    ``d = (w_1 - c w_2) u_1 + (w_2 - c w_1) u_2`` with ``c = cos(g_1, g_2)``,
    and ``d = u_1 + u_2`` for equal weights (the common factor ``1 - c`` removed,
    so parallel gradients give ``d = 2 u``, not 0/0). Zero gradients get
    coefficient 0; anti-parallel or fully cancelling gradients give a zero
    update; more losses than parameters give the least-squares direction.

    Args:
      G: Gram matrix ``[m, m]``.
      weights: relative target cosines ``w`` (default equal).
      length_model: one of ``projection, min, max, harmonic, arithmetic, geometric`` or an int.
      closed_form_two: use the closed form when ``m == 2``.
      rcond: relative eigenvalue cut-off of the pseudo-inverse (default ``10 m eps``).

    Returns:
      ``c``, shape ``[m]``, in ``G``'s dtype.

    Paper: Liu, Chu, Thuerey, "ConFIG: Towards Conflict-free Training of Physics
    Informed Neural Networks", ICLR 2025, arXiv:2408.11104.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> G = jnp.array([[1.0, 0.0], [0.0, 4.0]])  # orthogonal gradients of norms 1 and 2
      >>> lossjax.transforms.config_weights(G).round(4)  # update = 1.5 * (u1 + u2)
      Array([1.5 , 0.75], dtype=float32)
    """
    m = G.shape[0]
    dtype = G.dtype
    norms = C.safe_sqrt(jnp.diagonal(G))
    inv_n = _safe_inv(norms)
    Cu = G * inv_n[:, None] * inv_n[None, :]
    w = jnp.ones((m,), dtype) if weights is None else jnp.asarray(weights, dtype)
    if m == 2 and closed_form_two:
        c = jnp.clip(Cu[0, 1], -1.0, 1.0)
        if weights is None:
            alpha = jnp.ones((2,), dtype) * (norms > 0)
        else:
            alpha = jnp.stack([w[0] - c * w[1], w[1] - c * w[0]]) * (norms > 0)
    else:
        pinv = _pinv_psd_small if m <= _SMALL_PINV else _pinv_psd  # no linear-algebra library call for small m
        alpha = pinv(Cu, rcond) @ w
    Ca = Cu @ alpha  # u_i . d
    d_norm = C.safe_sqrt(alpha @ Ca)
    inv_d = _safe_inv(d_norm)
    if length_model == "projection":
        length = jnp.sum(norms * Ca) * inv_d
    else:
        length = _tracked(norms, length_model) * jnp.sum(Ca) * inv_d
    return alpha * inv_n * (length * inv_d)


@register(
    "config",
    aliases=("conflict_free",),
    family=FAMILY,
    kind="transform",
    formula="g_c = (sum_i g_i . d^) d^,  d = pinv([u_1..u_m]) w,  u_i = g_i/||g_i||  (Gram form)",
    paper="ConFIG: Towards Conflict-free Training of Physics Informed Neural Networks (2024, arXiv:2408.11104)",
    reference="conflictfree==0.1.8 conflictfree/grad_operator.py::ConFIGOperator (ConFIG_update, ConFIG_update_double)",
    sample=_sample(
        *({"length_model": lm} for lm in ("min", "max", "harmonic", "arithmetic", "geometric")),
        {"length_model": 1, "weights": (1.0, 2.0, 0.5)},
    ),
)
def config(
    *,
    num_losses: int | None = None,
    weights: Sequence[float] | None = None,
    length_model: str | int = "projection",
    closed_form_two: bool = True,
    rcond: float | None = None,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""ConFIG: the conflict-free update with equal (or weighted) cosines to every loss gradient.

    .. math::
        d = \mathcal U\big([u_1,\dots,u_m]^{+} w\big),\quad u_i = g_i/\|g_i\|,\qquad
        g_c = \Big(\sum_i g_i^\top d\Big)\, d

    so ``u_i . g_c`` is the same positive number for every loss (for equal
    weights). Computed from the ``m x m`` Gram matrix (see :func:`config_weights`):
    two passes over the stacked gradients whatever ``m`` and ``P``.

    Args:
      num_losses: m, optional: when given, the gradients (and ``weights``) are checked against it.
      weights: relative cosines ``w_i > 0`` (default equal, the paper's EqualWeight).
      length_model: ``"projection"`` (default, ProjectionLength), ``"min"``,
        ``"max"``, ``"harmonic"``, ``"arithmetic"``, ``"geometric"`` (the
        Track* models) or an int ``k`` (TrackSpecific(k)).
      closed_form_two: for two losses use the inverse-free closed form.
      rcond: pseudo-inverse cut-off relative to the largest eigenvalue of the unit Gram.
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      (``state.weights``: the weights used);
      ``update(updates, state, params=None)`` returns ``g_c`` shaped like one gradient.

    Paper: Liu, Chu, Thuerey, "ConFIG: Towards Conflict-free Training of Physics
    Informed Neural Networks", ICLR 2025, arXiv:2408.11104.

    Example:
      >>> import jax.numpy as jnp, optax, lossjax
      >>> tx = lossjax.transforms.config()
      >>> g = {"w": jnp.array([[1.0, 0.0], [0.0, 2.0]])}
      >>> upd, _ = tx.update(g, tx.init({"w": jnp.zeros(2)}))
      >>> upd["w"].round(4)
      Array([1.5, 1.5], dtype=float32)
    """
    fn = "config"
    num_losses = check_num_losses(fn, num_losses, required=False)
    weights = _check_weights(fn, weights, num_losses, positive=True)
    _check_length_model(fn, length_model)
    if rcond is not None:
        C.check_positive(fn, "rcond", rcond)

    def wfn(gram, m, state, extra):
        check_length(fn, "weights", weights, m)
        if isinstance(length_model, (int, np.integer)) and length_model >= m:
            raise ValueError(f"{fn}: `length_model={length_model}` is not a loss index for {m} losses.")
        return config_weights(
            gram.G, weights=weights, length_model=length_model, closed_form_two=closed_form_two, rcond=rcond
        ), state

    return gram_aggregator(fn, wfn, num_losses=num_losses, axis_name=axis_name)


# ------------------------------------------------------------------------------
# M-ConFIG (PseudoMomentumOperator).
# ------------------------------------------------------------------------------


class MConfigState(NamedTuple):
    """State of :func:`m_config`: per-loss first moments and the pseudo second moment."""

    count: Array  # int32 [], steps since every loss was seen once
    loss_counts: Array  # int32 [m], how often each loss was back-propagated
    momenta: Any  # pytree of [m, *shape], per-loss first moments
    fake_momentum: Any  # pytree like params
    second_moment: Any  # pytree like params


def m_config_schedule(step: Any, *, num_losses: int, losses_per_step: int = 1) -> Array:
    r"""The losses M-ConFIG back-propagates at ``step``: an ordered rotation (boolean mask ``[m]``).

    .. math::
        \text{selected}_t = \{(t k + j) \bmod m : j = 0..k-1\},\qquad k = \text{losses\_per\_step}

    (the reference's ``OrderedSliceSelector``).

    Args:
      step: the step index ``t`` (an int or an integer scalar, traced or not).
      num_losses: m.
      losses_per_step: k, how many losses are back-propagated per step (``1 <= k <= m``; 1 in the paper).

    Returns:
      A boolean mask ``[m]``: the ``selected=`` argument of :func:`m_config`'s ``update``.

    Paper: Liu, Chu, Thuerey, "ConFIG: Towards Conflict-free Training of Physics
    Informed Neural Networks", ICLR 2025, arXiv:2408.11104 (M-ConFIG).

    Example:
      >>> import lossjax
      >>> [lossjax.transforms.m_config_schedule(t, num_losses=3).tolist() for t in range(3)]
      [[True, False, False], [False, True, False], [False, False, True]]
    """
    fn = "m_config_schedule"
    C.check_int(fn, "num_losses", num_losses, 1, static=True)
    C.check_int(fn, "losses_per_step", losses_per_step, 1, static=True)
    C.check_in_range(fn, "losses_per_step", losses_per_step, 1, num_losses)
    idx = (jnp.asarray(step, jnp.int32) * losses_per_step + jnp.arange(losses_per_step, dtype=jnp.int32)) % num_losses
    return jnp.any(idx[:, None] == jnp.arange(num_losses, dtype=jnp.int32)[None, :], axis=0)


@register(
    "m_config",
    aliases=("momentum_config",),
    family=FAMILY,
    kind="transform",
    formula="m_i <- b1 m_i + (1-b1) g_i (selected i);  g = ConFIG(m_i/(1-b1^t_i));  Adam-normalized by a pseudo "
    "second moment of g",
    paper="ConFIG: Towards Conflict-free Training of Physics Informed Neural Networks (2024, arXiv:2408.11104)",
    reference="conflictfree==0.1.8 conflictfree/momentum_operator.py::PseudoMomentumOperator",
    sample=_sample(
        {"closed_form_two": False},
        {"beta_1": 0.5, "beta_2": 0.9, "length_model": "min", "weights": (1.0, 2.0)},
        hyperparams={"num_losses": 2},
        selected=True,
        num_losses=2,
    ),
    runtime=("selected",),
)
def m_config(
    *,
    num_losses: int | None = None,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-8,
    weights: Sequence[float] | None = None,
    length_model: str | int = "projection",
    closed_form_two: bool = True,
    momentum_dtype: str | None = None,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""Momentum ConFIG (M-ConFIG): ConFIG on per-loss Adam-style momenta, a subset of losses per step.

    Each step back-propagates only the losses in ``selected`` (default all;
    the paper uses one loss per step, :func:`m_config_schedule`). Their
    first moments are updated; until every loss has been seen once the
    update is zero. Then, with ``t`` the number of steps since then,

    .. math::
        \hat m_i = m_i / (1-\beta_1^{t_i}),\quad g = \mathrm{ConFIG}(\hat m_1..\hat m_m),\quad
        \tilde m = (1-\beta_1^t) g,\quad \tilde g = (\tilde m - \beta_1 \tilde m_{prev})/(1-\beta_1),\\
        s \leftarrow \beta_2 s + (1-\beta_2)\tilde g^2,\qquad
        \text{update} = g / (\sqrt{s/(1-\beta_2^t)} + \epsilon)

    The update is already Adam-normalized: follow it with ``optax.sgd`` (the
    paper's advice), not Adam. Gradients of unselected losses are ignored
    (pass zeros). ``momentum_dtype="bfloat16"`` stores the m momenta in bf16.

    Args:
      num_losses: m (required: the state holds one momentum per loss).
      beta_1: Adam's first-moment EMA factor (``m <- beta_1 m + (1 - beta_1) g``, as the reference).
      beta_2: Adam's second-moment EMA factor.
      epsilon: added to the denominator ``sqrt(s) + epsilon``.
      weights: relative cosines (as :func:`config`).
      length_model: as :func:`config`.
      closed_form_two: as :func:`config`.
      momentum_dtype: dtype of the per-loss momenta (default: the parameters').
      axis_name: average per-loss gradients across this mapped axis first.

    Update extra arguments:
      selected: boolean ``[m]``, the losses whose gradients are in ``updates`` this step.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      whose ``inner`` is a :class:`MConfigState`;
      ``update(updates, state, params=None, *, selected=None)`` returns the Adam-normalized ConFIG update.

    Paper: Liu, Chu, Thuerey, "ConFIG: Towards Conflict-free Training of Physics Informed Neural
    Networks", ICLR 2025, arXiv:2408.11104 (Section M-ConFIG).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.m_config(num_losses=2)
      >>> params = {"w": jnp.zeros(2)}
      >>> state = tx.init(params)
      >>> g = {"w": jnp.array([[1.0, 0.0], [0.0, 0.0]])}
      >>> upd, state = tx.update(g, state, selected=jnp.array([True, False]))
      >>> upd["w"]  # loss 2 not seen yet
      Array([0., 0.], dtype=float32)
    """
    fn = "m_config"
    m = check_num_losses(fn, num_losses, required=True)
    C.check_in_range(fn, "beta_1", beta_1, 0.0, 1.0, high_inclusive=False)
    C.check_in_range(fn, "beta_2", beta_2, 0.0, 1.0, high_inclusive=False)
    C.check_positive(fn, "epsilon", epsilon)
    weights = _check_weights(fn, weights, m, positive=True)
    _check_length_model(fn, length_model)
    mdt = None if momentum_dtype is None else jnp.dtype(momentum_dtype)

    def init_fn(params):
        def stack(p):
            p = jnp.asarray(p)
            return jnp.zeros((m, *p.shape), mdt or p.dtype)

        return MConfigState(
            count=jnp.zeros((), jnp.int32),
            loss_counts=jnp.zeros((m,), jnp.int32),
            momenta=jax.tree.map(stack, params),
            fake_momentum=jax.tree.map(jnp.zeros_like, params),
            second_moment=jax.tree.map(jnp.zeros_like, params),
        )

    def step(updates, _, state, extra):
        selected = extra.get("selected")
        sel = jnp.ones((m,), bool) if selected is None else C.check_array(fn, "selected", selected, shape=(m,))
        sel = sel.astype(bool)
        counts = state.loss_counts + sel.astype(jnp.int32)

        def new_mom(mo, g):
            s = jnp.reshape(sel, (m,) + (1,) * (g.ndim - 1))
            acc = C.compute_dtype(mo, g)
            upd = beta_1 * mo.astype(acc) + (1.0 - beta_1) * g.astype(acc)
            return jnp.where(s, upd, mo.astype(acc)).astype(mo.dtype)

        momenta = jax.tree.map(new_mom, state.momenta, updates)
        ready = jnp.all(counts > 0)
        t = state.count + ready.astype(jnp.int32)
        dtype = _trees.compute_dtype(updates)
        tf = jnp.maximum(t, 1).astype(dtype)
        corr = 1.0 - jnp.power(jnp.asarray(beta_1, dtype), jnp.maximum(counts, 1).astype(dtype))

        def unbias(mo):
            acc = C.compute_dtype(mo)
            return mo.astype(acc) / jnp.reshape(corr, (m,) + (1,) * (mo.ndim - 1)).astype(acc)

        m_hats = jax.tree.map(unbias, momenta)
        G = safe_gram(m_hats).G  # the coefficients are scale-free: any gradient size
        coef = config_weights(G, weights=weights, length_model=length_model, closed_form_two=closed_form_two)
        final = combine(m_hats, coef)
        b1t = 1.0 - jnp.power(jnp.asarray(beta_1, dtype), tf)
        b2t = 1.0 - jnp.power(jnp.asarray(beta_2, dtype), tf)

        def second(fk, s, g):
            fake_m = g * b1t.astype(g.dtype)
            fake_g = (fake_m - beta_1 * fk) / (1.0 - beta_1)
            s_new = beta_2 * s + (1.0 - beta_2) * jnp.square(fake_g)
            out = g / (jnp.sqrt(s_new / b2t.astype(g.dtype)) + epsilon)
            return (
                jnp.where(ready, fake_m, fk).astype(fk.dtype),
                jnp.where(ready, s_new, s).astype(s.dtype),
                jnp.where(ready, out, jnp.zeros_like(out)),
            )

        triples = jax.tree.map(second, state.fake_momentum, state.second_moment, final)
        is_triple = lambda x: isinstance(x, tuple) and len(x) == 3  # noqa: E731
        fake = jax.tree.map(lambda x: x[0], triples, is_leaf=is_triple)
        sec = jax.tree.map(lambda x: x[1], triples, is_leaf=is_triple)
        out = jax.tree.map(lambda x: x[2], triples, is_leaf=is_triple)
        w = jnp.where(ready, coef, jnp.zeros_like(coef))  # applied to the unbiased momenta
        return _trees.cast_like(out, updates), w, MConfigState(t, counts, momenta, fake, sec)

    return aggregator(fn, step, num_losses=m, axis_name=axis_name, init=init_fn)


# ------------------------------------------------------------------------------
# PCGrad, IMTL-G.
# ------------------------------------------------------------------------------


def _pcgrad_coeffs(G: Array, key: Array | None) -> Array:
    """Row i: the coefficients of the projected gradient ``g_i^PC = sum_k c_ik g_k``."""
    m = G.shape[0]
    inv_diag = _safe_inv(jnp.diagonal(G))
    rows = []
    keys = None if key is None else jax.random.split(key, m)
    for i in range(m):
        c = jnp.zeros((m,), G.dtype).at[i].set(1.0)
        order = jnp.arange(m) if keys is None else jax.random.permutation(keys[i], m)
        for k in range(m):
            j = order[k]
            inner = G[j] @ c
            step = jnp.where((inner < 0) & (j != i), -inner * inv_diag[j], jnp.zeros((), G.dtype))
            c = c.at[j].add(step)
        rows.append(c)
    return jnp.stack(rows)


def _pcgrad_weights(G: Array, key: Array | None) -> Array:
    return jnp.sum(_pcgrad_coeffs(G, key), axis=0)


@register(
    "pcgrad",
    aliases=("gradient_surgery",),
    family=FAMILY,
    kind="transform",
    formula="g_i^PC = g_i - sum_{j: g_i^PC.g_j<0} (g_i^PC.g_j/||g_j||^2) g_j (in order);  update = sum_i g_i^PC",
    paper="Gradient Surgery for Multi-Task Learning (2020, arXiv:2001.06782)",
    reference="conflictfree==0.1.8 grad_operator.py::PCGradOperator (fixed order); torchjd PCGrad (random order)",
    sample=_sample({"shuffle": True}, key=True),
    runtime=("key",),
)
def pcgrad(
    *, num_losses: int | None = None, shuffle: bool = False, seed: int | None = None, axis_name: str | None = None
) -> aggregating.Aggregator:
    r"""PCGrad: project each gradient off the gradients it conflicts with, then sum.

    .. math::
        g_i \leftarrow g_i - \frac{\min(g_i\cdot g_j, 0)}{\|g_j\|^2} g_j\ \ (j \ne i,\ \text{in order}),\qquad
        \text{update} = \sum_i g_i

    Done on the Gram matrix with a coefficient vector per loss. The order is
    ``j = 0..m-1`` (``shuffle=False``, the ``conflictfree`` reference) or a
    random permutation per loss from the ``key=`` passed to ``update`` (the
    paper, torchjd). For two losses no conflict remains.

    Args:
      num_losses: m, optional: when given, the gradients are checked against it.
      shuffle: random projection order (needs ``key=`` in ``update`` or ``seed``).
      seed: an integer: the state holds a key split at every update (used when ``update`` gets no ``key=``).
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      (``state.weights``: the weights used);
      ``update(updates, state, params=None, *, key=None)`` returns ``sum_i g_i^PC``.

    Paper: Yu, Kumar, Gupta, Levine, Hausman, Finn, "Gradient Surgery for Multi-Task Learning",
    NeurIPS 2020, arXiv:2001.06782.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.pcgrad()
      >>> g = jnp.array([[1.0, 0.0], [-1.0, 1.0]])
      >>> tx.update(g, tx.init(None))[0]
      Array([0.5, 1.5], dtype=float32)
    """
    fn = "pcgrad"
    num_losses = check_num_losses(fn, num_losses, required=False)

    def wfn(gram, m, state, extra):
        key = extra.get("key")
        if shuffle and key is None:
            raise ValueError(f"{fn}: `shuffle=True` needs `key=` (a PRNG key) in `update`, or `seed=` in the factory.")
        return _pcgrad_weights(gram.G, key if shuffle else None), state

    return gram_aggregator(fn, wfn, num_losses=num_losses, axis_name=axis_name, seed=seed)


def _imtl_weights(G: Array) -> Array:
    """IMTL-G's weights ``G^+ n / 1^T G^+ n`` (scale-free); 0 where the sum vanishes relative to the terms."""
    m = G.shape[0]
    d = C.safe_sqrt(jnp.diagonal(G))
    v = _pinv_psd(G, None) @ d
    s = jnp.sum(v)
    tiny = 10.0 * m * float(jnp.finfo(G.dtype).eps) * jnp.sum(jnp.abs(v))  # the rounding noise of the sum
    return jnp.where(jnp.abs(s) <= tiny, jnp.zeros_like(v), v * _safe_inv(s))


@register(
    "imtl_g",
    aliases=("imtlg",),
    family=FAMILY,
    kind="transform",
    formula="w = G^+ n / sum(G^+ n), n_i = ||g_i||; update = sum_i w_i g_i (equal projections on every u_i)",
    paper="Towards Impartial Multi-task Learning (2021, ICLR, openreview IMPnRXEWpvr)",
    reference="conflictfree==0.1.8 grad_operator.py::IMTLGOperator; torchjd IMTLG",
    sample=_sample(),
)
def imtl_g(*, num_losses: int | None = None, axis_name: str | None = None) -> aggregating.Aggregator:
    r"""IMTL-G: the convex-sum-one combination whose projections on every unit gradient are equal.

    .. math::
        w = \frac{G^{+} n}{\mathbf 1^\top G^{+} n},\quad n_i = \|g_i\|,\qquad \text{update} = \sum_i w_i g_i

    so ``u_i . update`` is the same for every loss (it equals the reference's
    ``g_1 U^T (D U^T)^{-1}`` form when ``G`` is invertible).

    Args:
      num_losses: m, optional: when given, the gradients are checked against it.
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      (``state.weights``: the weights used);
      ``update(updates, state, params=None)`` returns ``sum_i w_i g_i``.

    Paper: Liu, Li, Kuang, Xue, Chen, Yang, Liao, Zhang, "Towards Impartial Multi-task Learning",
    ICLR 2021, openreview IMPnRXEWpvr (no arXiv version).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.imtl_g()
      >>> tx.update(jnp.array([[2.0, 0.0], [0.0, 1.0]]), tx.init(None))[0].round(4)
      Array([0.6667, 0.6667], dtype=float32)
    """
    fn = "imtl_g"
    num_losses = check_num_losses(fn, num_losses, required=False)
    return gram_aggregator(
        fn, lambda gram, m, s, e: (_imtl_weights(gram.G), s), num_losses=num_losses, axis_name=axis_name
    )


# ------------------------------------------------------------------------------
# Small QPs for MGDA/UPGrad/DualProj/CAGrad: exact by support enumeration up to
# _MAX_EXACT losses; beyond, accelerated projected gradient (_ITERS fixed steps).
# ------------------------------------------------------------------------------

_ITERS = 3000


def _supports(m: int) -> np.ndarray:
    return np.array(list(itertools.product([0.0, 1.0], repeat=m))[1:], dtype=np.float32)


def _exact(m: int, exact: bool | None) -> bool:
    return m <= _MAX_EXACT if exact is None else exact


def _lmax(A: Array) -> Array:
    return jnp.maximum(jnp.max(jnp.linalg.eigvalsh(A, symmetrize_input=True)), jnp.asarray(1e-30, A.dtype))


def _project_simplex(v: Array) -> Array:
    """Euclidean projection onto the probability simplex (sort-based)."""
    m = v.shape[0]
    u = jnp.sort(v)[::-1]
    css = jnp.cumsum(u) - 1.0
    k = jnp.arange(1, m + 1, dtype=v.dtype)
    rho = jnp.sum((u - css / k) > 0)
    theta = css[rho - 1] / rho.astype(v.dtype)
    return jnp.maximum(v - theta, 0.0)


def _fista(grad_fn, project, x0: Array, step: Array, iters: int) -> Array:
    """Accelerated projected gradient with a fixed step and a fixed number of iterations."""

    def body(k, carry):
        x, y, t = carry
        x_new = project(y - step * grad_fn(y))
        t_new = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * t * t))
        y_new = x_new + ((t - 1.0) / t_new) * (x_new - x)
        return x_new, y_new, t_new

    x, _, _ = jax.lax.fori_loop(0, iters, body, (x0, x0, jnp.ones((), x0.dtype)))
    return x


def _masked_solve(A: Array, b: Array, s: Array) -> Array:
    """Solves ``A_SS x_S = b_S`` with ``x = 0`` off S, for a batch of supports ``s [K, n]``."""
    A_s = A[None] * s[:, :, None] * s[:, None, :] + jnp.eye(A.shape[0], dtype=A.dtype)[None] * (1.0 - s)[:, :, None]
    x = jnp.linalg.solve(A_s, (b[None] * s)[..., None])[..., 0]
    return jnp.where(jnp.isfinite(x), x, jnp.zeros((), x.dtype)) * s


def _nonneg_qp(G: Array, c: Array, exact: bool | None = None) -> Array:
    """argmin_{x >= 0} x^T G x + 2 c^T x for positive-definite G (exact: every support, keep the best)."""
    m = G.shape[0]
    if not _exact(m, exact):
        step = 0.5 / _lmax(G)
        return _fista(
            lambda x: 2.0 * (G @ x + c), lambda x: jnp.maximum(x, 0.0), jnp.zeros((m,), G.dtype), step, _ITERS
        )
    S = jnp.asarray(_supports(m), G.dtype)
    S = jnp.concatenate([jnp.zeros((1, m), G.dtype), S])
    X = jnp.maximum(_masked_solve(G, -c, S), 0.0)
    obj = jnp.einsum("ki,ij,kj->k", X, G, X, precision=HIGHEST) + 2.0 * X @ c
    return X[jnp.argmin(obj)]


def _trace_below(G: Array, scale: Array | float, epsilon: float) -> Array:
    """Whether ``tr(scale^2 G) < epsilon``, without forming ``scale^2`` (it may overflow or underflow)."""
    return C.safe_sqrt(jnp.trace(G)) * scale < float(np.sqrt(epsilon))


def _normalize_gram(G: Array, epsilon: float, regularization: float, scale: Array | float = 1.0) -> Array:
    """``G / tr(G) + regularization I``, with a zero Gram below the trace ``epsilon`` (of the unscaled gradients)."""
    tr = jnp.trace(G)
    Gn = jnp.where(_trace_below(G, scale, epsilon), jnp.zeros_like(G), G * _safe_inv(tr))
    return Gn + regularization * jnp.eye(G.shape[0], dtype=G.dtype)


def _dual_cone_weights(Gn: Array, u: Array) -> Array:
    """w = argmin_{v >= u} v^T Gn v (torchjd's projection onto the dual cone, in weight space)."""
    x = _nonneg_qp(Gn, Gn @ u)
    return x + u


@register(
    "upgrad",
    family=FAMILY,
    kind="transform",
    formula="update = sum_i pi_J(p_i g_i): each weighted gradient projected onto the dual cone {x: G x >= 0}",
    paper="Jacobian Descent for Multi-Objective Optimization (2024, arXiv:2406.16232)",
    reference="torchjd==0.18.0 torchjd/aggregation/_upgrad.py::UPGrad (QuadprogProjector)",
    sample=_sample({"weights": (0.2, 0.3, 0.5), "regularization": 1e-2}),
)
def upgrad(
    *,
    num_losses: int | None = None,
    weights: Sequence[float] | None = None,
    epsilon: float = 1e-4,
    regularization: float = 1e-4,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""UPGrad: project every (preference-weighted) gradient onto the dual cone of all gradients, sum.

    .. math::
        w = \sum_i \arg\min_{v \ge p_i e_i} v^\top \tilde G v,\qquad
        \tilde G = G/\mathrm{tr}(G) + r I,\qquad \text{update} = \sum_j w_j g_j

    The box-constrained QPs are solved exactly (every active set) for m <= 12,
    by 3000 steps of accelerated projected gradient beyond.
    The update never conflicts with any gradient (``G w >= 0``). A Gram matrix
    of trace below ``epsilon`` is treated as zero.

    Args:
      num_losses: m, optional: when given, the gradients (and ``weights``) are checked against it.
      weights: the preference weights ``p >= 0`` over the losses (default ``1/m`` each: the mean;
        torchjd's ``pref_vector``).
      epsilon: Gram matrices of trace below this are treated as zero (torchjd's ``norm_eps``).
      regularization: the ridge ``r`` added to the normalized Gram (torchjd's ``reg_eps``).
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      (``state.weights``: the weights used);
      ``update(updates, state, params=None)`` returns ``sum_j w_j g_j``.

    Paper: Quinton, Rey, "Jacobian Descent for Multi-Objective Optimization", 2024, arXiv:2406.16232.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.upgrad()
      >>> tx.update(jnp.array([[1.0, 0.0], [0.0, 1.0]]), tx.init(None))[0].round(4)
      Array([0.5, 0.5], dtype=float32)
    """
    fn = "upgrad"
    num_losses = check_num_losses(fn, num_losses, required=False)
    weights = _check_weights(fn, weights, num_losses, positive=False)
    C.check_positive(fn, "epsilon", epsilon, allow_zero=True)
    C.check_positive(fn, "regularization", regularization, allow_zero=True)

    def wfn(gram, m, state, extra):
        p = _weights_vector(fn, weights, m, gram.G.dtype, 1.0 / m)
        Gn = _normalize_gram(gram.G, epsilon, regularization, gram.scale)
        W = jax.vmap(lambda u: _dual_cone_weights(Gn, u))(jnp.diag(p))
        return jnp.sum(W, axis=0), state

    return gram_aggregator(fn, wfn, num_losses=num_losses, axis_name=axis_name)


@register(
    "dualproj",
    aliases=("dual_proj",),
    family=FAMILY,
    kind="transform",
    formula="update = pi_J(sum_i p_i g_i): the weighted mean projected onto the dual cone {x: G x >= 0}",
    paper="Jacobian Descent for Multi-Objective Optimization (2024, arXiv:2406.16232)",
    reference="torchjd==0.18.0 torchjd/aggregation/_dualproj.py::DualProj (QuadprogProjector)",
    sample=_sample({"weights": (0.2, 0.3, 0.5), "regularization": 1e-2}),
)
def dualproj(
    *,
    num_losses: int | None = None,
    weights: Sequence[float] | None = None,
    epsilon: float = 1e-4,
    regularization: float = 1e-4,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""DualProj: the (preference-weighted) mean gradient projected onto the dual cone of the gradients.

    .. math::
        w = \arg\min_{v \ge p} v^\top \tilde G v,\qquad \tilde G = G/\mathrm{tr}(G) + r I,\qquad
        \text{update} = \sum_j w_j g_j

    The update never conflicts with any gradient (``G w >= 0``).

    Args:
      num_losses: m, optional: when given, the gradients (and ``weights``) are checked against it.
      weights: the preference weights ``p >= 0`` (default ``1/m`` each: the mean; torchjd's ``pref_vector``).
      epsilon: Gram matrices of trace below this are treated as zero (torchjd's ``norm_eps``).
      regularization: the ridge ``r`` added to the normalized Gram (torchjd's ``reg_eps``).
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      (``state.weights``: the weights used);
      ``update(updates, state, params=None)`` returns ``sum_j w_j g_j``.

    Paper: Quinton, Rey, "Jacobian Descent for Multi-Objective Optimization", 2024, arXiv:2406.16232
    (the DualProj baseline).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.dualproj()
      >>> tx.update(jnp.array([[1.0, 0.0], [-1.0, 1.0]]), tx.init(None))[0].round(3)
      Array([0. , 0.5], dtype=float32)
    """
    fn = "dualproj"
    num_losses = check_num_losses(fn, num_losses, required=False)
    weights = _check_weights(fn, weights, num_losses, positive=False)
    C.check_positive(fn, "epsilon", epsilon, allow_zero=True)
    C.check_positive(fn, "regularization", regularization, allow_zero=True)

    def wfn(gram, m, state, extra):
        p = _weights_vector(fn, weights, m, gram.G.dtype, 1.0 / m)
        return _dual_cone_weights(_normalize_gram(gram.G, epsilon, regularization, gram.scale), p), state

    return gram_aggregator(fn, wfn, num_losses=num_losses, axis_name=axis_name)


# ------------------------------------------------------------------------------
# MGDA.
# ------------------------------------------------------------------------------


def _mgda_frank_wolfe(G: Array, tolerance: float, max_iterations: int) -> Array:
    m = G.shape[0]
    dtype = G.dtype

    def body(carry):
        alpha, it, _ = carry
        Ga = G @ alpha
        t = jnp.argmin(Ga)
        a = Ga[t]
        b = alpha @ Ga
        c = G[t, t]
        denom = b + c - 2.0 * a
        gamma = jnp.where(
            c <= a,
            jnp.ones((), dtype),
            jnp.where(b <= a, jnp.zeros((), dtype), (b - a) * _safe_inv(denom)),
        )
        e = jax.nn.one_hot(t, m, dtype=dtype)
        alpha = (1.0 - gamma) * alpha + gamma * e
        return alpha, it + 1, gamma < tolerance

    def cond(carry):
        _, it, done = carry
        return (it < max_iterations) & ~done

    alpha0 = jnp.full((m,), 1.0 / m, dtype)
    alpha, _, _ = jax.lax.while_loop(cond, body, (alpha0, jnp.zeros((), jnp.int32), jnp.zeros((), bool)))
    return alpha


def _mgda_exact(G: Array, exact: bool | None = None) -> Array:
    """min_{w in simplex} w^T G w, exactly: every support's KKT point, clipped, best kept."""
    m = G.shape[0]
    scale = jnp.maximum(jnp.trace(G), jnp.asarray(float(jnp.finfo(G.dtype).tiny), G.dtype))
    Gr = G / scale + 1e-7 * jnp.eye(m, dtype=G.dtype)
    if not _exact(m, exact):
        w0 = jnp.full((m,), 1.0 / m, G.dtype)
        return _fista(lambda w: 2.0 * Gr @ w, _project_simplex, w0, 0.5 / _lmax(Gr), _ITERS)
    S = jnp.asarray(_supports(m), G.dtype)
    ones = jnp.ones((m,), G.dtype)
    y = _masked_solve(Gr, ones, S)  # G_SS y = 1  =>  w = y / sum(y)
    y = jnp.maximum(y, 0.0) * S
    tot = jnp.sum(y, axis=1, keepdims=True)
    W = jnp.where(tot > 0, y * _safe_inv(tot), S / jnp.sum(S, axis=1, keepdims=True))
    obj = jnp.einsum("ki,ij,kj->k", W, Gr, W, precision=HIGHEST)
    return W[jnp.argmin(obj)]


@register(
    "mgda",
    aliases=("mgda_ub", "min_norm"),
    family=FAMILY,
    kind="transform",
    formula="w = argmin_{w in simplex} ||sum_i w_i g_i||^2;  update = sum_i w_i g_i",
    paper="Multi-Task Learning as Multi-Objective Optimization (2018, arXiv:1810.04650)",
    reference="torchjd==0.18.0 torchjd/aggregation/_mgda.py::MGDA (Frank-Wolfe)",
    sample=_sample({"solver": "exact"}, {"tolerance": 1e-6, "max_iterations": 3}),
)
def mgda(
    *,
    num_losses: int | None = None,
    solver: str = "frank_wolfe",
    tolerance: float = 1e-3,
    max_iterations: int = 100,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""MGDA: the minimum-norm point of the convex hull of the gradients.

    .. math::
        w = \arg\min_{w \ge 0,\ \sum w = 1} \Big\|\sum_i w_i g_i\Big\|^2,\qquad \text{update} = \sum_i w_i g_i

    ``solver="frank_wolfe"`` is Algorithm 2 of the paper (as torchjd: start
    at the mean, stop when the step ``gamma < tolerance`` or after
    ``max_iterations``); ``solver="exact"`` enumerates every support and returns the
    exact minimizer for m <= 12 (accelerated projected gradient beyond).

    Args:
      num_losses: m, optional: when given, the gradients are checked against it.
      solver: ``"frank_wolfe"`` (the paper's, torchjd's) or ``"exact"``.
      tolerance: Frank-Wolfe stops when its step size falls below this (torchjd's ``epsilon``).
      max_iterations: the most Frank-Wolfe iterations (torchjd's ``max_iters``).
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      (``state.weights``: the weights used);
      ``update(updates, state, params=None)`` returns the min-norm combination ``sum_i w_i g_i``.

    Paper: Sener, Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018, arXiv:1810.04650.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.mgda(solver="exact")
      >>> tx.update(jnp.array([[1.0, 0.0], [0.0, 1.0]]), tx.init(None))[0].round(4)
      Array([0.5, 0.5], dtype=float32)
    """
    fn = "mgda"
    num_losses = check_num_losses(fn, num_losses, required=False)
    C.check_one_of(fn, "solver", solver, ("frank_wolfe", "exact"))
    C.check_positive(fn, "tolerance", tolerance)
    C.check_int(fn, "max_iterations", max_iterations, 1, static=True)

    def wfn(gram, m, state, extra):
        if solver == "exact":
            return _mgda_exact(gram.G), state
        return _mgda_frank_wolfe(gram.G, tolerance, int(max_iterations)), state

    return gram_aggregator(fn, wfn, num_losses=num_losses, axis_name=axis_name)


# ------------------------------------------------------------------------------
# CAGrad.
# ------------------------------------------------------------------------------


def _cagrad_iterative(Gn: Array, b: Array, s: Array) -> Array:
    """min_{w in simplex} b.w + s ||g_w|| by majorize-minimize: at w_k, s||g_w|| <= s(||g_w||^2/t + t)/2
    with t = ||g_{w_k}||; one projected gradient step on that quadratic bound per iteration."""
    m = Gn.shape[0]
    lmax = _lmax(Gn)
    floor = 1e-6 * C.safe_sqrt(jnp.trace(Gn)) + 1e-30

    def body(_, w):
        t = jnp.maximum(C.safe_sqrt(w @ Gn @ w), floor)
        grad = b + s * (Gn @ w) / t
        return _project_simplex(w - grad * (t / (s * lmax + t * 1e-30 + 1e-30)))

    return jax.lax.fori_loop(0, _ITERS, body, jnp.full((m,), 1.0 / m, Gn.dtype))


def _cagrad_finish(w_opt: Array, Gn: Array, s: Array, c: float, epsilon: float, variant: str) -> Array:
    """The weights ``1/m + s w*/||g_w*||`` of CAGrad's update, with each variant's rule where ``g_w*`` vanishes."""
    m = Gn.shape[0]
    dtype = Gn.dtype
    gw = C.safe_sqrt(w_opt @ Gn @ w_opt)
    weights = jnp.full((m,), 1.0 / m, dtype) + s * _safe_inv(gw) * w_opt
    if variant == "torchjd":  # "approximately on the Pareto front": no update
        return jnp.where(gw >= epsilon, weights, jnp.zeros((m,), dtype))
    # the paper's official code: g_0 + c||g_0|| g_w/||g_w|| (g_0 where g_w = 0), rescaled by 1/(1 + c^2)
    return jnp.where(gw > 0, weights, jnp.full((m,), 1.0 / m, dtype)) / (1.0 + c * c)


def _cagrad_weights(
    G: Array, c: float, epsilon: float, exact: bool | None = None, variant: str = "torchjd", scale=1.0
) -> Array:
    """CAGrad's weights: min_{w in simplex} b.w + s sqrt(w^T Gn w) on the trace-normalized Gram, solved exactly
    by supports (``G`` is the Gram of the gradients divided by ``scale``)."""
    m = G.shape[0]
    dtype = G.dtype
    tr = jnp.trace(G)
    if variant == "torchjd":  # torchjd's normalize(gramian, norm_eps): a zero Gram below the trace epsilon
        Gn = jnp.where(_trace_below(G, scale, epsilon), jnp.zeros_like(G), G * _safe_inv(tr))
    else:
        Gn = G * _safe_inv(tr)
    g0_sq = jnp.mean(Gn)  # ||g_0||^2 with g_0 the mean gradient
    s = c * C.safe_sqrt(g0_sq)
    b = jnp.mean(Gn, axis=1)  # G 1/m
    if not _exact(m, exact):
        return _cagrad_finish(_cagrad_iterative(Gn, b, s), Gn, s, c, epsilon, variant)
    Gr = Gn + 1e-7 * jnp.eye(m, dtype=dtype)
    S = jnp.asarray(_supports(m), dtype)
    ones = jnp.ones((m,), dtype)
    # On a support: y = Gr^-1 (lam 1 - b)/s, y^T Gr y = 1, w = y / sum(y).
    p = _masked_solve(Gr, ones, S)  # Gr^-1 1
    q = _masked_solve(Gr, b, S)  # Gr^-1 b
    A = jnp.sum(p * S, 1)  # 1^T G^-1 1
    B = jnp.sum(q * S, 1)  # 1^T G^-1 b
    Cq = jnp.sum(q * b[None] * S, 1) - s * s  # b^T G^-1 b - s^2
    disc = C.safe_sqrt(B * B - A * Cq)
    cands = []
    for sign in (1.0, -1.0):
        lam = (B + sign * disc) * _safe_inv(A)
        y = lam[:, None] * p - q
        y = jnp.maximum(y, 0.0) * S
        tot = jnp.sum(y, 1, keepdims=True)
        cands.append(jnp.where(tot > 0, y * _safe_inv(tot), S / jnp.sum(S, 1, keepdims=True)))
    W = jnp.concatenate([*cands, jnp.eye(m, dtype=dtype)])

    def objective(w):
        return w @ b + s * C.safe_sqrt(w @ Gn @ w)

    obj = jax.vmap(objective)(W)
    return _cagrad_finish(W[jnp.argmin(obj)], Gn, s, c, epsilon, variant)


@register(
    "cagrad",
    family=FAMILY,
    kind="transform",
    formula="w* = argmin_{w in simplex} g_w.g_0 + c||g_0|| ||g_w||;  update = g_0 + (c||g_0||/||g_w*||) g_w*  "
    "(variant='paper': divided by 1 + c^2, g_0 where g_w* = 0)",
    paper="Conflict-Averse Gradient Descent for Multi-task Learning (2021, arXiv:2110.14048)",
    reference="torchjd==0.18.0 torchjd/aggregation/_cagrad.py::CAGrad (cvxpy/CLARABEL); variant='paper': "
    "Cranial-XIX/CAGrad@dc3d481 nyuv2/utils.py::cagrad (rescale=1)",
    sample=_sample({"variant": "paper", "c": 1.0}),  # c only scales: the two variants are the two code paths
)
def cagrad(
    *,
    num_losses: int | None = None,
    c: float = 0.4,
    epsilon: float = 1e-4,
    variant: str = "torchjd",
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""CAGrad: the update that maximizes the worst local improvement in a ball around the mean gradient.

    .. math::
        w^* = \arg\min_{w\in\Delta} g_w^\top g_0 + c\|g_0\|\,\|g_w\|,\qquad
        \text{update} = g_0 + \frac{c\|g_0\|}{\|g_{w^*}\|} g_{w^*}

    with ``g_0`` the mean gradient and ``g_w = sum_i w_i g_i`` (on the
    trace-normalized Gram; the weights are scale-free). Solved exactly by
    enumerating supports for m <= 12 instead of a generic convex solver (beyond:
    majorize-minimize projected gradient steps).

    Two variants differ where ``g_{w*}`` is (nearly) zero, i.e. when ``0`` is
    (nearly) in the convex hull of the gradients:

    - ``"torchjd"`` (default, torchjd 0.18): a zero update when
      ``||g_{w*}|| < epsilon`` on the trace-normalized Gram, or when the trace
      of the Gram is below ``epsilon``. That is an exactly zero update when one
      task's gradient is zero, about ``1e4`` times smaller than the others,
      anti-parallel to a combination of the others, or when all gradients are
      small (norms below ``sqrt(epsilon / m)``), and no final rescale.
    - ``"paper"`` (the paper's official code, ``rescale=1``): no thresholds; where
      ``g_{w*} = 0`` exactly the update is the mean gradient ``g_0`` (the
      centre of the ball: the direction ``g_w/||g_w||`` is undefined there), and the
      update is divided by ``1 + c^2``. A tiny ``g_{w*}`` gives a full-radius step
      along it, as in the paper.

    Args:
      num_losses: m, optional: when given, the gradients are checked against it.
      c: radius of the ball, relative to ``||g_0||`` (0.4 in the paper's experiments; the paper's ``c``).
      epsilon: ``"torchjd"`` only: traces / norms below this give a zero update (torchjd's ``norm_eps``).
      variant: ``"torchjd"`` or ``"paper"`` (see above).
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      (``state.weights``: the weights used);
      ``update(updates, state, params=None)`` returns the update above.

    Paper: Liu, Liu, Jin, Stone, Liu, "Conflict-Averse Gradient Descent for Multi-task Learning",
    NeurIPS 2021, arXiv:2110.14048.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.cagrad(c=0.0)  # c = 0: the mean gradient
      >>> tx.update(jnp.array([[1.0, 0.0], [0.0, 3.0]]), tx.init(None))[0].round(4)
      Array([0.5, 1.5], dtype=float32)
      >>> g = jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # one task's gradient is zero
      >>> tx, paper = lossjax.transforms.cagrad(), lossjax.transforms.cagrad(variant="paper")
      >>> tx.update(g, tx.init(None))[0], paper.update(g, paper.init(None))[0].round(4)  # g_0 / 1.16
      (Array([0., 0.], dtype=float32), Array([0.2874, 0.2874], dtype=float32))
    """
    fn = "cagrad"
    num_losses = check_num_losses(fn, num_losses, required=False)
    C.check_positive(fn, "c", c, allow_zero=True)
    C.check_positive(fn, "epsilon", epsilon, allow_zero=True)
    C.check_one_of(fn, "variant", variant, ("torchjd", "paper"))

    def wfn(gram, m, state, extra):
        return _cagrad_weights(gram.G, c, epsilon, variant=variant, scale=gram.scale), state

    return gram_aggregator(fn, wfn, num_losses=num_losses, axis_name=axis_name)


# ------------------------------------------------------------------------------
# Aligned-MTL.
# ------------------------------------------------------------------------------


def _aligned_weights(G: Array, weights: Array, scale_mode: str) -> Array:
    m = G.shape[0]
    dtype = G.dtype
    lam, V = jnp.linalg.eigh(G, symmetrize_input=True)
    tol = jnp.max(lam) * m * float(jnp.finfo(dtype).eps)
    keep = lam > tol
    rank = jnp.sum(keep)
    inv_sqrt = jnp.where(keep, 1.0 / C.safe_sqrt(jnp.where(keep, lam, jnp.ones((), dtype))), jnp.zeros((), dtype))
    big = jnp.asarray(float(jnp.finfo(dtype).max), dtype)
    if scale_mode == "min":
        scale = jnp.min(jnp.where(keep, lam, big))
    elif scale_mode == "rmse":
        scale = jnp.sum(jnp.where(keep, lam, 0.0)) * _safe_inv(rank.astype(dtype))
    else:  # median of the kept eigenvalues (torch.median: the lower middle one)
        srt = jnp.sort(jnp.where(keep, lam, big))  # kept values first, ascending
        scale = srt[jnp.maximum((rank - 1) // 2, 0)]
    B = C.safe_sqrt(scale) * (V * inv_sqrt[None, :]) @ V.T
    return jnp.where(rank > 0, B @ weights, weights)


@register(
    "aligned_mtl",
    aliases=("alignedmtl",),
    family=FAMILY,
    kind="transform",
    formula="G = V L V^T;  B = sqrt(l_min) V L^{-1/2} V^T;  w = B p;  update = sum_i w_i g_i",
    paper="Independent Component Alignment for Multi-Task Learning (2023, arXiv:2305.19000)",
    reference="torchjd==0.18.0 torchjd/aggregation/_aligned_mtl.py::AlignedMTL",
    sample=_sample({"scale_mode": "median"}, {"scale_mode": "rmse", "weights": (0.2, 0.3, 0.5)}),
)
def aligned_mtl(
    *,
    num_losses: int | None = None,
    weights: Sequence[float] | None = None,
    scale_mode: str = "min",
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""Aligned-MTL: align the principal components of the gradient system, then combine.

    .. math::
        G = V\Lambda V^\top,\quad B = \sqrt{\sigma}\, V \Lambda^{-1/2} V^\top\ \text{(on the numerical rank)},\quad
        \text{update} = \sum_i (B p)_i\, g_i

    with ``sigma`` the smallest (``"min"``), median or mean (``"rmse"``)
    kept eigenvalue. A zero Gram gives the plain weighted sum.

    Args:
      num_losses: m, optional: when given, the gradients (and ``weights``) are checked against it.
      weights: the preference weights ``p >= 0`` (default ``1/m`` each; torchjd's ``pref_vector``).
      scale_mode: ``"min"``, ``"median"`` or ``"rmse"``: which eigenvalue gives ``sigma``.
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      (``state.weights``: the weights used);
      ``update(updates, state, params=None)`` returns ``sum_i (B p)_i g_i``.

    Paper: Senushkin, Patakin, Kuznetsov, Konushin, "Independent Component Alignment for Multi-Task
    Learning", CVPR 2023, arXiv:2305.19000.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.aligned_mtl()
      >>> tx.update(jnp.array([[2.0, 0.0], [0.0, 1.0]]), tx.init(None))[0].round(4)
      Array([0.5, 0.5], dtype=float32)
    """
    fn = "aligned_mtl"
    num_losses = check_num_losses(fn, num_losses, required=False)
    weights = _check_weights(fn, weights, num_losses, positive=False)
    C.check_one_of(fn, "scale_mode", scale_mode, ("min", "median", "rmse"))

    def wfn(gram, m, state, extra):
        G = gram.G
        return _aligned_weights(G, _weights_vector(fn, weights, m, G.dtype, 1.0 / m), scale_mode), state

    return gram_aggregator(fn, wfn, num_losses=num_losses, axis_name=axis_name)


# ------------------------------------------------------------------------------
# GradVac.
# ------------------------------------------------------------------------------


class GradVacState(NamedTuple):
    """EMA targets ``phi_hat[i, j]`` of the cosine between gradients i and j."""

    targets: Array  # [m, m]


def _gradvac_weights(G: Array, phi: Array, decay: float, epsilon: float, key: Array | None, scale=1.0):
    """GradVac's combination weights from ``G``, the Gram of the gradients divided by ``scale``.

    ``epsilon`` is added to the unscaled norms: ``epsilon / scale`` to scaled norms, ``epsilon / scale^2``
    to products of two.
    """
    m = G.shape[0]
    dtype = G.dtype
    eps1 = epsilon / jnp.asarray(scale, dtype)
    eps2 = eps1 / jnp.asarray(scale, dtype)
    Cm = jnp.eye(m, dtype=dtype)
    phi = phi.astype(dtype)
    keys = None if key is None else jax.random.split(key, m)
    for i in range(m):
        others = np.array([j for j in range(m) if j != i], np.int32)
        order = jnp.asarray(others) if keys is None else jnp.asarray(others)[jax.random.permutation(keys[i], m - 1)]
        cG = Cm[i] @ G
        for k in range(m - 1):
            j = order[k]
            dot_ij = cG[j]
            norm_i = C.safe_sqrt(cG @ Cm[i])
            norm_j = C.safe_sqrt(G[j, j])
            phi_ij = dot_ij / (norm_i * norm_j + eps2)
            phi_hat = phi[i, j]
            s1 = C.safe_sqrt(1.0 - phi_ij * phi_ij)
            s2 = C.safe_sqrt(1.0 - phi_hat * phi_hat)
            w = norm_i * (phi_hat * s1 - phi_ij * s2) / (norm_j * s2 + eps1)
            w = jnp.where(phi_ij < phi_hat, w, jnp.zeros((), dtype))
            Cm = Cm.at[i, j].add(w)
            cG = cG + w * G[j]
            phi = phi.at[i, j].set(decay * phi_hat + (1.0 - decay) * phi_ij)
    return jnp.sum(Cm, axis=0), phi


@register(
    "gradvac",
    aliases=("gradient_vaccine",),
    family=FAMILY,
    kind="transform",
    formula="if cos(g_i, g_j) < phi_ij: g_i += ||g_i||(phi s1 - cos s2)/(||g_j|| s2) g_j;  "
    "phi_ij <- decay phi_ij + (1 - decay) cos",
    paper="Gradient Vaccine: Investigating and Improving Multi-task Optimization in Massively Multilingual Models "
    "(2020, arXiv:2010.05874)",
    reference="torchjd==0.18.0 torchjd/aggregation/_gradvac.py::GradVac",
    sample=_sample({"decay": 0.9, "shuffle": True}, hyperparams={"num_losses": 3}, key=True),
    runtime=("key",),
)
def gradvac(
    *,
    num_losses: int | None = None,
    decay: float = 0.5,
    epsilon: float = 1e-8,
    shuffle: bool = False,
    seed: int | None = None,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""GradVac: pull each pair's cosine up to an EMA target instead of only removing conflicts.

    For each ``i`` and ``j != i`` (in order, or shuffled with ``key=``): with
    ``phi = cos(g_i, g_j)`` and target ``phi_hat``, if ``phi < phi_hat``

    .. math::
        g_i \leftarrow g_i + \frac{\|g_i\|(\hat\phi\sqrt{1-\phi^2} - \phi\sqrt{1-\hat\phi^2})}
        {\|g_j\|\sqrt{1-\hat\phi^2}} g_j,\qquad \hat\phi \leftarrow \text{decay}\,\hat\phi + (1-\text{decay})\,\phi

    and the update is ``sum_i g_i``. The targets live in :class:`GradVacState`.
    The paper and torchjd write the EMA with ``beta`` as the weight of the new
    value: ``decay = 1 - beta`` (torchjd's default ``beta = 0.5`` is ``decay = 0.5``;
    the paper's ``beta = 0.01`` is ``decay = 0.99``).

    Args:
      num_losses: m (required: the state holds an ``m x m`` matrix of targets).
      decay: the EMA factor of the cosine targets, ``new = decay old + (1 - decay) cos``.
      epsilon: added to the denominators.
      shuffle: visit the other losses in a random order (needs ``key=`` in ``update`` or ``seed``).
      seed: an integer: the state holds a key split at every update (used when ``update`` gets no ``key=``).
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      whose ``inner`` is a :class:`GradVacState`;
      ``update(updates, state, params=None, *, key=None)`` returns ``sum_i g_i`` after the corrections.

    Paper: Wang, Tsvetkov, Firat, Cao, "Gradient Vaccine: Investigating and Improving Multi-task
    Optimization in Massively Multilingual Models", ICLR 2021, arXiv:2010.05874.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.gradvac(num_losses=2)
      >>> upd, state = tx.update(jnp.array([[1.0, 0.0], [-1.0, 1.0]]), tx.init(None))
      >>> upd.round(4)  # first step: targets 0, so conflicts are projected away as in PCGrad
      Array([0.5, 1.5], dtype=float32)
    """
    fn = "gradvac"
    m0 = check_num_losses(fn, num_losses, required=True)
    C.check_in_range(fn, "decay", decay, 0.0, 1.0)
    C.check_positive(fn, "epsilon", epsilon, allow_zero=True)

    def init(params):
        del params
        return GradVacState(jnp.zeros((m0, m0), jnp.float32))

    def wfn(gram, m, state, extra):
        key = extra.get("key")
        if shuffle and key is None:
            raise ValueError(f"{fn}: `shuffle=True` needs `key=` (a PRNG key) in `update`, or `seed=` in the factory.")
        w, phi = _gradvac_weights(gram.G, state.targets, decay, epsilon, key if shuffle else None, gram.scale)
        return w, GradVacState(phi.astype(state.targets.dtype))

    return gram_aggregator(fn, wfn, num_losses=m0, init=init, axis_name=axis_name, seed=seed)


# ------------------------------------------------------------------------------
# GradDrop (elementwise, not a Gram method).
# ------------------------------------------------------------------------------


def _graddrop_combine(grads: Any, uniforms: Any, leak: Array | None) -> Any:
    def one(g, u):
        acc = C.compute_dtype(g)
        g32 = g.astype(acc)
        m = g.shape[0]
        tot = jnp.sum(g32, 0)
        absum = jnp.sum(jnp.abs(g32), 0)
        P = 0.5 * (1.0 + tot * _safe_inv(absum))
        keep = ((P > u)[None] & (g32 > 0)) | ((P < u)[None] & (g32 < 0))
        lk = jnp.zeros((m,), acc) if leak is None else leak.astype(acc)
        lk = jnp.reshape(lk, (m,) + (1,) * (g.ndim - 1))
        coef = lk + (1.0 - lk) * keep.astype(acc)
        return jnp.sum(coef * g32, 0).astype(g.dtype), jnp.sum(jnp.reshape(coef, (m, -1)), axis=1), coef[0].size

    leaves, treedef = jax.tree.flatten(grads)
    parts = [one(g, u) for g, u in zip(leaves, jax.tree.leaves(uniforms), strict=True)]
    count = sum(n for _, _, n in parts)
    w = sum(s.astype(jnp.float32) for _, s, _ in parts) / max(count, 1)  # each loss's mean coefficient
    return jax.tree.unflatten(treedef, [o for o, _, _ in parts]), w


@register(
    "graddrop",
    aliases=("gradient_sign_dropout",),
    family=FAMILY,
    kind="transform",
    formula="P = (1 + sum_i g_i / sum_i |g_i|)/2;  keep g_i where (P > U and g_i > 0) or (P < U and g_i < 0)",
    paper="Just Pick a Sign: Optimizing Deep Multitask Models with Gradient Sign Dropout (2020, arXiv:2010.06808)",
    reference="torchjd==0.18.0 torchjd/aggregation/_graddrop.py::GradDrop",
    sample=_sample({"leak": (0.0, 0.2, 0.5)}, key=True),
    runtime=("key",),
)
def graddrop(
    *,
    num_losses: int | None = None,
    leak: Sequence[float] | None = None,
    seed: int | None = None,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""GradDrop: keep, per coordinate, only the gradients whose sign wins a purity-weighted coin flip.

    .. math::
        P = \tfrac12\Big(1 + \frac{\sum_i g_i}{\sum_i |g_i|}\Big),\quad U \sim \mathcal U(0,1),\quad
        \text{update} = \sum_i (\ell_i + (1-\ell_i) M_i) g_i,\quad M_i = [P>U][g_i>0] + [P<U][g_i<0]

    elementwise (one uniform per parameter), with leak ``ell`` (default 0).
    Needs ``key=`` in ``update`` or ``seed``.

    Args:
      num_losses: m, optional: when given, the gradients (and ``leak``) are checked against it.
      leak: per-loss leak ``ell_i`` in ``[0, 1]`` (default 0: the paper's GradDrop).
      seed: an integer: the state holds a key split at every update (used when ``update`` gets no ``key=``).
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      (``state.weights``: the weights used);
      ``update(updates, state, params=None, *, key)`` returns the masked sum.

    Paper: Chen, Ngiam, Huang, Luong, Kretzschmar, Chai, Anguelov, "Just Pick a Sign: Optimizing Deep
    Multitask Models with Gradient Sign Dropout", NeurIPS 2020, arXiv:2010.06808.

    Example:
      >>> import jax, jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.graddrop()
      >>> g = jnp.array([[1.0, 2.0], [3.0, 4.0]])  # no sign conflict: nothing is dropped
      >>> tx.update(g, tx.init(None), key=jax.random.PRNGKey(0))[0]
      Array([4., 6.], dtype=float32)
    """
    fn = "graddrop"
    num_losses = check_num_losses(fn, num_losses, required=False)
    leak_t = None
    if leak is not None:
        lk = np.asarray(leak, np.float64)
        if lk.ndim != 1 or np.any(lk < 0) or np.any(lk > 1):
            raise ValueError(f"{fn}: `leak` must be a 1-D sequence of numbers in [0, 1], got {leak!r}.")
        leak_t = tuple(float(v) for v in lk)
        check_length(fn, "leak", leak_t, num_losses)

    def step(updates, m, state, extra):
        check_length(fn, "leak", leak_t, m)
        key = extra["key"]
        leaves, treedef = jax.tree.flatten(updates)
        keys = jax.random.split(key, len(leaves))
        us = [
            jax.random.uniform(k, leaf.shape[1:], C.compute_dtype(leaf)) for k, leaf in zip(keys, leaves, strict=True)
        ]
        uniforms = jax.tree.unflatten(treedef, us)
        leak_a = None if leak_t is None else jnp.asarray(leak_t, jnp.float32)
        out, w = _graddrop_combine(updates, uniforms, leak_a)
        return out, w, state

    return aggregator(fn, step, num_losses=num_losses, axis_name=axis_name, requires=("key",), seed=seed)


# ------------------------------------------------------------------------------
# Nash-MTL.
# ------------------------------------------------------------------------------


class NashMTLState(NamedTuple):
    """State of :func:`nash_mtl`: the last weights, the step count and how well the last solve converged.

    Attributes:
      alpha: the last bargaining weights ``[m]`` (before the norm cap); the warm start of the next solve.
      count: steps taken (int32); the weights are recomputed when ``count % interval == 0``.
      residual: ``max_i |alpha_i (G alpha)_i - 1|`` of the last solve (float32; 0 before the first).
      converged: whether that residual is at most ``tolerance`` (bool). False means the weights of the
        last solve are not the Nash bargaining solution: raise ``max_iterations`` or check the
        gradients (a zero gradient has no solution: its weight grows without bound).
    """

    alpha: Array  # [m]
    count: Array  # int32 []
    residual: Array  # float32 []
    converged: Array  # bool []


def _nash_alpha(G: Array, alpha0: Array, max_iterations: int, tolerance: float = 1e-5) -> tuple[Array, Array]:
    """Solves alpha * (G alpha) = 1, alpha > 0 (the minimizer of 0.5 a^T G a - sum log a) by damped Newton.

    As the reference, on the Gram normalized by its Frobenius norm ``f`` (``a = alpha sqrt(f)`` solves the
    normalized problem), from the better (lower objective) of two starts, each rescaled to its optimal
    length: the warm start ``alpha0`` and ``1/sqrt(G_ii)`` (exact for orthogonal gradients). Stops when
    ``max_i |a_i (G a)_i - 1| <= tolerance`` or after ``max_iterations`` steps. Returns ``(alpha, residual)``.
    """
    m = G.shape[0]
    dtype = G.dtype
    f = C.safe_sqrt(jnp.sum(G * G))
    Gn = G * _safe_inv(f)
    eye = jnp.eye(m, dtype=dtype)
    one = jnp.ones((), dtype)

    def objective(a):
        return 0.5 * a @ Gn @ a - jnp.sum(jnp.log(a))

    def rescaled(a):  # argmin_t of objective(t a): t^2 = m / a^T Gn a
        q = a @ Gn @ a
        return jnp.where(q > 0, a * C.safe_sqrt(m * _safe_inv(q)), a)

    def residual(a):
        return jnp.max(jnp.abs(a * (Gn @ a) - 1.0))

    warm = rescaled(alpha0.astype(dtype) * f**0.5)
    d = jnp.diagonal(Gn)
    diag = rescaled(jnp.where(d > 0, 1.0 / C.safe_sqrt(jnp.where(d > 0, d, one)), one))
    a0 = jnp.where(objective(diag) < objective(warm), diag, warm)
    a0 = jnp.where(jnp.all(jnp.isfinite(a0)) & jnp.all(a0 > 0), a0, jnp.ones((m,), dtype))

    def body(carry):
        a, it, _ = carry
        grad = Gn @ a - 1.0 / a
        H = Gn + eye / (a * a)[:, None]
        step = -jnp.linalg.solve(H, grad)
        dec = C.safe_sqrt(step @ (H @ step))  # Newton decrement: damped while > 1/4 (self-concordant)
        t = jnp.where(dec < 0.25, one, 1.0 / (1.0 + dec))
        new = a + t * step
        new = jnp.where(jnp.all(jnp.isfinite(new)) & jnp.all(new > 0), new, a)
        return new, it + 1, residual(new)

    def cond(carry):
        _, it, r = carry
        return (it < max_iterations) & ~(r <= tolerance)

    a, _, r = jax.lax.while_loop(cond, body, (a0, jnp.zeros((), jnp.int32), residual(a0)))
    return a * _safe_inv(f**0.5), r


@register(
    "nash_mtl",
    aliases=("nashmtl",),
    family=FAMILY,
    kind="transform",
    formula="alpha > 0 with alpha_i (G alpha)_i = 1 (Nash bargaining); update = sum_i alpha_i g_i, norm <= max_norm",
    paper="Multi-Task Learning as a Bargaining Game (2022, arXiv:2202.01017)",
    reference="torchjd==0.18.0 torchjd/aggregation/_nash_mtl.py::NashMTL (cvxpy/ECOS sequential convex program)",
    sample=_sample({"max_norm": 0.0}, {"max_norm": 0.5, "interval": 2}, hyperparams={"num_losses": 3}),
)
def nash_mtl(
    *,
    num_losses: int | None = None,
    max_norm: float = 1.0,
    interval: int = 1,
    max_iterations: int = 20,
    tolerance: float = 1e-5,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""Nash-MTL: the Nash bargaining solution, ``alpha_i (G alpha)_i = 1`` for every loss.

    .. math::
        \alpha = \arg\min_{\alpha > 0} \tfrac12 \alpha^\top G \alpha - \sum_i \log\alpha_i
        \iff G\alpha = 1/\alpha,\qquad \text{update} = \sum_i \alpha_i g_i

    solved by damped Newton steps (the objective is self-concordant, so the
    steps stay positive) on the Gram matrix normalized by its Frobenius norm,
    as the reference does, from the better of the last weights and
    ``1/||g_i||`` (each rescaled to its best length), until
    ``max_i |alpha_i (G alpha)_i - 1| <= tolerance`` or ``max_iterations``
    steps: typically 2 to 5 steps whatever the gradients' scale. The state
    reports the last residual and whether it converged
    (:class:`NashMTLState`). The weights are recomputed every ``interval``
    steps; the update is rescaled to norm ``max_norm`` when longer
    (``max_norm=0``: never). The reference reaches the same fixed point with a
    sequence of convex programs (stopping at a residual norm of 1e-3).

    Args:
      num_losses: m (required: the state holds the last weights, one per loss).
      max_norm: the largest norm of the update (``0``: no cap).
      interval: recompute the weights every ``interval`` steps (the reference's
        ``update_weights_every``).
      max_iterations: the most Newton steps per recomputation (the reference's ``optim_niter``).
      tolerance: stop when the largest relative residual ``|alpha_i (G alpha)_i - 1|`` is at most this.
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      whose ``inner`` is a :class:`NashMTLState`;
      ``update(updates, state, params=None)`` returns ``sum_i alpha_i g_i`` (capped).

    Paper: Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik, Fetaya, "Multi-Task Learning as a
    Bargaining Game", ICML 2022, arXiv:2202.01017.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.nash_mtl(num_losses=2, max_norm=0.0)
      >>> upd, state = tx.update(jnp.array([[2.0, 0.0], [0.0, 1.0]]), tx.init(None))
      >>> upd.round(4)  # alpha_i = 1/||g_i|| for orthogonal gradients
      Array([1., 1.], dtype=float32)
      >>> bool(state.inner.converged)
      True
    """
    fn = "nash_mtl"
    m0 = check_num_losses(fn, num_losses, required=True)
    C.check_positive(fn, "max_norm", max_norm, allow_zero=True)
    C.check_int(fn, "interval", interval, 1)
    C.check_int(fn, "max_iterations", max_iterations, 1, static=True)
    C.check_positive(fn, "tolerance", tolerance)

    def init(params):
        del params
        return NashMTLState(
            jnp.ones((m0,), jnp.float32), jnp.zeros((), jnp.int32), jnp.zeros((), jnp.float32), jnp.ones((), bool)
        )

    def wfn(gram, m, state, extra):
        G, scale = gram.G, gram.scale  # G = Gram / scale^2: the weights of G are alpha * scale
        prev = state.alpha.astype(G.dtype)
        fresh_s, res = _nash_alpha(G, prev * scale, int(max_iterations), tolerance)
        recompute = state.count % interval == 0
        alpha = jnp.where(recompute, fresh_s / scale, prev)
        residual = jnp.where(recompute, res.astype(jnp.float32), state.residual)
        w = alpha
        if max_norm > 0:
            norm = C.safe_sqrt(alpha * scale @ G @ (alpha * scale))  # ||sum_i alpha_i g_i||
            w = jnp.where(norm > max_norm, alpha * (max_norm * _safe_inv(norm)), alpha)
        new = NashMTLState(alpha.astype(state.alpha.dtype), state.count + 1, residual, residual <= tolerance)
        return w, new

    return gram_aggregator(fn, wfn, num_losses=m0, init=init, axis_name=axis_name)


# ------------------------------------------------------------------------------
# Equal weights.
# ------------------------------------------------------------------------------


@register(
    "equal_weight",
    aliases=("linear_scalarization", "ew"),
    family=FAMILY,
    kind="transform",
    formula="update = sum_i g_i  (reduction='sum')  or  (1/m) sum_i g_i  (reduction='mean')",
    paper="In Defense of the Unitary Scalarization for Deep Multi-Task Learning (2022, arXiv:2201.04122)",
    reference="LibMTL EW; torchjd Sum / Mean",
    sample=_sample({"reduction": "mean"}),
)
def equal_weight(
    *, num_losses: int | None = None, reduction: str = "sum", axis_name: str | None = None
) -> aggregating.Aggregator:
    r"""The equal-weight baseline: the gradient of the summed (or averaged) loss.

    .. math::
        \text{update} = \sum_i g_i\ \ (\text{reduction="sum"}),\qquad
        \text{update} = \frac1m \sum_i g_i\ \ (\text{reduction="mean"})

    Args:
      num_losses: m, optional: when given, the gradients are checked against it.
      reduction: ``"sum"`` (the gradient of ``sum_i L_i``) or ``"mean"``.
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      (``state.weights``: the weights used);
      ``update(updates, state, params=None)`` returns the sum (or mean) of the m gradients.

    Paper: Kurin, De Palma, Kostrikov, Whiteson, Kumar, "In Defense of the Unitary Scalarization for Deep
    Multi-Task Learning", NeurIPS 2022, arXiv:2201.04122.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.equal_weight()
      >>> tx.update(jnp.array([[1.0, 0.0], [0.0, 3.0]]), tx.init(None))[0]
      Array([1., 3.], dtype=float32)
    """
    fn = "equal_weight"
    num_losses = check_num_losses(fn, num_losses, required=False)
    C.check_one_of(fn, "reduction", reduction, ("sum", "mean"))

    def step(updates, m, state, extra):
        scale = 1.0 if reduction == "sum" else 1.0 / m
        out = jax.tree.map(lambda g: (jnp.sum(g.astype(C.compute_dtype(g)), 0) * scale).astype(g.dtype), updates)
        return out, jnp.full((m,), scale, jnp.float32), state

    return aggregator(fn, step, num_losses=num_losses, axis_name=axis_name)


# ------------------------------------------------------------------------------
# Byzantine-robust combiners (torchjd's Krum and TrimmedMean) and constant weights.
# ------------------------------------------------------------------------------


@register(
    "krum",
    aliases=("multi_krum",),
    family=FAMILY,
    kind="transform",
    formula="s_i = sum of the m - f - 2 smallest ||g_i - g_j|| (j != i);  update = mean of the g_i with the "
    "num_selected smallest s_i",
    paper="Machine Learning with Adversaries: Byzantine Tolerant Gradient Descent (NeurIPS 2017)",
    reference="torchjd==0.18.0 torchjd/aggregation/_krum.py::Krum",
    sample=_sample({"num_selected": 2}, hyperparams={"num_byzantine": 0}),
)
def krum(
    *,
    num_byzantine: int = 0,
    num_selected: int = 1,
    num_losses: int | None = None,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""Krum / Multi-Krum: the mean of the gradients closest to their neighbours (robust to ``f`` outliers).

    .. math::
        s_i = \sum_{j \in N_i} \|g_i - g_j\|,\qquad
        \text{update} = \frac1{k} \sum_{i \in \text{argmin}_k\, s} g_i

    with :math:`N_i` the :math:`m - f - 2` nearest other gradients of
    :math:`g_i`, :math:`f` = ``num_byzantine``, :math:`k` = ``num_selected``
    (1: Krum; more: Multi-Krum). Distances come from the Gram matrix
    (:math:`\|g_i - g_j\|^2 = G_{ii} + G_{jj} - 2 G_{ij}`), never from the
    ``m x P`` differences. Needs :math:`m \ge f + 3` and :math:`m \ge k`.

    Args:
      num_byzantine: :math:`f \ge 0`, how many gradients may be adversarial.
      num_selected: :math:`k \ge 1`, how many gradients are averaged.
      num_losses: m, optional: when given, the gradients are checked against it.
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      (``state.weights``: the weights used).

    Paper: Blanchard, El Mhamdi, Guerraoui, Stainer, "Machine Learning with
    Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS 2017.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> g = jnp.array([[1.0, 0.0], [1.1, 0.0], [0.9, 0.1], [50.0, -50.0]])  # one outlier
      >>> tx = lossjax.transforms.krum(num_byzantine=1)
      >>> tx.update(g, tx.init(None))[0]
      Array([1., 0.], dtype=float32)
    """
    fn = "krum"
    num_losses = check_num_losses(fn, num_losses, required=False)
    C.check_int(fn, "num_byzantine", num_byzantine, 0, static=True)
    C.check_int(fn, "num_selected", num_selected, 1, static=True)
    f, k = int(num_byzantine), int(num_selected)

    def wfn(gram, m, state, extra):
        if m < f + 3 or m < k:
            raise ValueError(
                f"{fn}: needs num_losses >= num_byzantine + 3 = {f + 3} and >= num_selected = {k}, got {m}."
            )
        G = gram.G
        d = jnp.diagonal(G)
        dist = C.safe_sqrt(jnp.maximum(d[:, None] + d[None, :] - 2 * G, jnp.zeros((), G.dtype)))
        nearest = jnp.sort(dist, axis=1)[:, 1 : m - f - 1]  # drop the smallest (the gradient itself)
        scores = jnp.sum(nearest, axis=1)
        chosen = jnp.argsort(scores)[:k]
        w = jnp.zeros((m,), G.dtype).at[chosen].add(jnp.asarray(1.0 / k, G.dtype))
        return w, state

    return gram_aggregator(fn, wfn, num_losses=num_losses, axis_name=axis_name)


@register(
    "trimmed_mean",
    family=FAMILY,
    kind="transform",
    formula="update_p = mean of the m - 2t middle values of {g_1p, ..., g_mp} (each coordinate p)",
    paper="Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates (2018, arXiv:1803.01498)",
    reference="torchjd==0.18.0 torchjd/aggregation/_trimmed_mean.py::TrimmedMean",
    sample=_sample({"num_trimmed": 0}, hyperparams={"num_trimmed": 1}),
)
def trimmed_mean(
    *, num_trimmed: int = 1, num_losses: int | None = None, axis_name: str | None = None
) -> aggregating.Aggregator:
    r"""Coordinate-wise trimmed mean: drop the ``t`` largest and ``t`` smallest values of each coordinate, average.

    .. math::
        \text{update}_p = \frac{1}{m - 2t} \sum_{r = t+1}^{m - t} g_{(r), p}

    with :math:`g_{(r), p}` the :math:`r`-th smallest of the m gradients'
    coordinate :math:`p`. ``t = 0`` is the mean; ``m = 2t + 1`` the
    coordinate-wise median. Needs :math:`m \ge 2t + 1`.

    Args:
      num_trimmed: :math:`t \ge 0` values removed at each end of every coordinate.
      num_losses: m, optional: when given, the gradients are checked against it.
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      (``state.weights``: the weights used).

    Paper: Yin, Chen, Ramchandran, Bartlett, "Byzantine-Robust Distributed
    Learning: Towards Optimal Statistical Rates", ICML 2018, arXiv:1803.01498.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> g = jnp.array([[1.0, -3.0], [2.0, 100.0], [-50.0, 0.0]])
      >>> tx = lossjax.transforms.trimmed_mean(num_trimmed=1)  # the coordinate-wise median
      >>> tx.update(g, tx.init(None))[0]
      Array([1., 0.], dtype=float32)
    """
    fn = "trimmed_mean"
    num_losses = check_num_losses(fn, num_losses, required=False)
    C.check_int(fn, "num_trimmed", num_trimmed, 0, static=True)
    t = int(num_trimmed)

    def step(updates, m, state, extra):
        if m < 2 * t + 1:
            raise ValueError(f"{fn}: needs num_losses >= 2 * num_trimmed + 1 = {2 * t + 1}, got {m}.")

        def one(g):
            dtype = C.compute_dtype(g)
            kept = jnp.sort(g.astype(dtype), axis=0)[t : m - t]
            return jnp.mean(kept, axis=0).astype(g.dtype)

        def kept_fraction(g):  # per loss: in how many coordinates it is among the m - 2t middle values
            rank = jnp.argsort(jnp.argsort(jnp.reshape(g, (m, -1)), axis=0), axis=0)
            return jnp.sum((rank >= t) & (rank < m - t), axis=1).astype(jnp.float32), rank.shape[1]

        parts = [kept_fraction(g) for g in jax.tree.leaves(updates)]
        count = sum(n for _, n in parts)
        w = sum(k for k, _ in parts) / (max(count, 1) * (m - 2 * t))
        return jax.tree.map(one, updates), w, state

    return aggregator(fn, step, num_losses=num_losses, axis_name=axis_name)


@register(
    "constant_weights",
    family=FAMILY,
    kind="transform",
    formula="update = sum_i w_i g_i  (fixed weights)",
    paper="torchjd's Constant aggregator (a fixed linear scalarization); Jacobian Descent for Multi-Objective "
    "Optimization (2024, arXiv:2406.16232)",
    reference="torchjd==0.18.0 torchjd/aggregation/_constant.py::Constant",
    sample=_sample(hyperparams={"weights": [0.5, 2.0, 1.0]}),
)
def constant_weights(
    *, weights: Sequence[float] = (1.0,), num_losses: int | None = None, axis_name: str | None = None
) -> aggregating.Aggregator:
    r"""A fixed weighted sum of the per-loss gradients (the gradient of :math:`\sum_i w_i L_i`).

    .. math:: \text{update} = \sum_i w_i\, g_i

    Args:
      weights: the m weights (any sign), one per loss.
      num_losses: m, optional: checked against ``len(weights)`` and the gradients.
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      (``state.weights``: the weights used).

    Paper: Jacobian Descent for Multi-Objective Optimization (Quinton, Rey, 2024, arXiv:2406.16232),
    the Constant aggregator of its torchjd library.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.constant_weights(weights=[1.0, 0.5])
      >>> tx.update(jnp.array([[1.0, 0.0], [0.0, 4.0]]), tx.init(None))[0]
      Array([1., 2.], dtype=float32)
    """
    fn = "constant_weights"
    w0 = np.asarray(weights, np.float64)
    if w0.ndim != 1 or w0.size == 0 or not np.all(np.isfinite(w0)):
        raise ValueError(f"{fn}: `weights` must be a non-empty list of finite numbers, got {weights!r}.")
    num_losses = check_num_losses(fn, num_losses, required=False)
    check_length(fn, "weights", weights, num_losses)
    m0 = int(w0.size)

    def step(updates, m, state, extra):
        if m != m0:
            raise ValueError(f"{fn}: `weights` has {m0} entries, got gradients of {m} losses.")
        w = jnp.asarray(w0, C.compute_dtype(*jax.tree.leaves(updates)))
        return combine(updates, w), w, state

    return aggregator(fn, step, num_losses=num_losses, axis_name=axis_name)


# ------------------------------------------------------------------------------
# FairGrad (alpha-fair resource allocation).
# ------------------------------------------------------------------------------


def _fairgrad_weights(G: Array, alpha: float, max_iterations: int) -> Array:
    """Solves ``G w = w^(-1/alpha)``, ``w > 0`` by damped Newton on the Frobenius-normalized Gram.

    The equation is the stationarity condition of the strictly convex
    ``0.5 w^T G w + sum_i h(w_i)`` with ``h' = -w^(-1/alpha)``. With ``Gn = G / f``
    the solution is ``w = a f^(-1/(1 + 1/alpha))`` for ``Gn a = a^(-1/alpha)``. Start:
    ``a_i = Gn_ii^(-1/(1 + 1/alpha))`` (exact for orthogonal gradients); a zero
    gradient gets weight 0.
    """
    m = G.shape[0]
    dtype = G.dtype
    p = 1.0 / alpha
    f = C.safe_sqrt(jnp.sum(G * G))
    Gn = G * _safe_inv(f)
    d = jnp.diagonal(Gn)
    live = d > 0
    one = jnp.ones((), dtype)
    # a zero gradient's row of G is 0: pin its weight (any value gives the same update) and solve the rest
    Gs = jnp.where(live[:, None] & live[None, :], Gn, jnp.eye(m, dtype=dtype))
    ds = jnp.where(live, d, one)
    a0 = jnp.exp(-jnp.log(ds) / (1.0 + p))

    def body(_, a):
        ap = jnp.exp(-p * jnp.log(a))  # a^(-p)
        grad = Gs @ a - ap
        H = Gs + jnp.diag(p * ap / a)
        step = -jnp.linalg.solve(H, grad)
        dec = C.safe_sqrt(jnp.maximum(step @ (H @ step), jnp.zeros((), dtype)))
        t = jnp.where(dec < 0.25, one, 1.0 / (1.0 + dec))
        new = a + t * step
        new = jnp.where(new > 0, new, a * 0.5)
        return jnp.where(jnp.all(jnp.isfinite(new)), new, a)

    a = jax.lax.fori_loop(0, max_iterations, body, a0)
    c = jnp.exp(-jnp.log(jnp.where(f > 0, f, one)) / (1.0 + p))
    return jnp.where(live & (f > 0), a * c, jnp.zeros((), dtype))


@register(
    "fairgrad",
    family=FAMILY,
    kind="transform",
    formula="w > 0 with G w = w^(-1/alpha) (G = J J^T);  update = sum_i w_i g_i",
    paper="Fair Resource Allocation in Multi-Task Learning (2024, arXiv:2402.15638)",
    reference="torchjd==0.18.0 torchjd/aggregation/_fairgrad.py::FairGrad (scipy least_squares); "
    "OptMN-Lab/fairgrad methods/weight_methods.py",
    sample=_sample({"alpha": 0.5}, hyperparams={"alpha": 2.0}),
)
def fairgrad(
    *,
    alpha: float = 1.0,
    max_iterations: int = 30,
    num_losses: int | None = None,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""FairGrad: the update that gives every task an alpha-fair share of the progress.

    .. math::
        G w = w^{-1/\alpha},\ w > 0,\qquad \text{update} = \sum_i w_i g_i,\qquad G = J J^\top

    (Equation 4 of the paper: the stationarity condition of the
    :math:`\alpha`-fair utility of the per-task progress :math:`g_i^\top d`).
    :math:`\alpha = 1` is proportional fairness (the Nash-MTL fixed point
    :math:`w \odot G w = 1`), :math:`\alpha \to \infty` max-min fairness. The
    Gram system is solved by damped Newton (``max_iterations`` fixed steps;
    :math:`m \times m` only); the reference solves it with scipy's
    ``least_squares``.

    Args:
      alpha: :math:`\alpha > 0`.
      max_iterations: Newton steps.
      num_losses: m, optional: when given, the gradients are checked against it.
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      (``state.weights``: the weights used).

    Paper: Ban, Ji, "Fair Resource Allocation in Multi-Task Learning", ICML 2024, arXiv:2402.15638.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> g = jnp.array([[2.0, 0.0], [0.0, 1.0]])  # orthogonal: w_i = |g_i|^(-2 alpha / (alpha + 1))
      >>> tx = lossjax.transforms.fairgrad(alpha=1.0)
      >>> tx.update(g, tx.init(None))[0].round(4)
      Array([1., 1.], dtype=float32)
    """
    fn = "fairgrad"
    num_losses = check_num_losses(fn, num_losses, required=False)
    C.check_positive(fn, "alpha", alpha)
    C.check_int(fn, "max_iterations", max_iterations, 1, static=True)

    def wfn(gram, m, state, extra):
        w = _fairgrad_weights(gram.G, float(alpha), int(max_iterations))
        # G is the Gram of grads / s: the weights of the true Gram are w * s^(-2 alpha / (alpha + 1))
        s = gram.scale.astype(w.dtype)
        return w * jnp.exp(-2.0 * jnp.log(s) / (1.0 + 1.0 / float(alpha))), state

    return gram_aggregator(fn, wfn, num_losses=num_losses, axis_name=axis_name)


# ------------------------------------------------------------------------------
# ExcessMTL (robust weights from per-task excess risks).
# ------------------------------------------------------------------------------


class ExcessMTLState(NamedTuple):
    """State of :func:`excess_mtl`: the task weights it used last (for logging), the running sums of squared
    per-task gradients (like the stacked gradients), the baseline excess risks and the step count."""

    weights: Array  # [m]
    squared_gradient_sum: Any  # pytree of [m, *param_shape]
    baseline: Array  # [m]
    warmup_sum: Array  # [m]
    count: Array


@register(
    "excess_mtl",
    family=FAMILY,
    kind="transform",
    formula="S += g_i^2;  e_i = sum g_i^2 / sqrt(S_i + 1e-7) (/ baseline_i);  w = softmax(log w + eta e);  "
    "update = sum_i w_i g_i",
    paper="Robust Multi-Task Learning with Excess Risks (ICML 2024, arXiv:2402.02009)",
    reference="torchjd==0.18.0 torchjd/aggregation/_excess_mtl.py::ExcessMTL (official uiuctml/ExcessMTL, LibMTL)",
    sample=_sample({"num_warmup_steps": 1, "robust_step_size": 0.5}, hyperparams={"num_losses": 3}),
)
def excess_mtl(
    *,
    num_losses: int | None = None,
    robust_step_size: float = 1.0,
    num_warmup_steps: int = 0,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""ExcessMTL: exponentiated-gradient task weights driven by per-task excess-risk estimates.

    .. math::
        S_i \mathrel{+}= g_i^2,\qquad
        e_i = \sum_p \frac{g_{ip}^2}{\sqrt{S_{ip} + 10^{-7}}},\qquad
        w \leftarrow \mathrm{softmax}\big(\log w + \eta\, e / (e^{(0)} + 10^{-7})\big),\qquad
        \text{update} = \sum_i w_i g_i

    (Equations 6-7 and 9 of the paper: an AdaGrad-style diagonal Hessian
    estimate of the excess risk :math:`g^\top H^{-1} g`). Weights start
    uniform; during the first ``num_warmup_steps`` updates they stay uniform
    and the excess risks are averaged into the baseline :math:`e^{(0)}`; with
    no warm-up the first step's raw excess risks are both the baseline and the
    step's drive (the official code's behaviour). The weights used are in
    ``state.weights``.

    Args:
      num_losses: m (required: the state holds per-task weights and squared-gradient sums).
      robust_step_size: :math:`\eta > 0`.
      num_warmup_steps: updates with uniform weights that collect the baseline (the paper: 3 epochs).
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      whose ``inner`` is an :class:`ExcessMTLState`
      (``init(params)`` needs the parameters: the squared-gradient sums have their shapes).

    Paper: He, Zhou, Zhang, Liu, Zhang, "Robust Multi-Task Learning with Excess Risks", ICML 2024,
    arXiv:2402.02009.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.excess_mtl(num_losses=2)
      >>> upd, state = tx.update(jnp.array([[1.0, 0.0], [0.0, 3.0]]), tx.init(jnp.zeros(2)))
      >>> state.weights.round(3).tolist()  # e = (1, 3): softmax(log(1/2) + e)
      [0.119, 0.881]
    """
    fn = "excess_mtl"
    m0 = check_num_losses(fn, num_losses, required=True)
    C.check_positive(fn, "robust_step_size", robust_step_size)
    C.check_int(fn, "num_warmup_steps", num_warmup_steps, 0, static=True)
    warm = int(num_warmup_steps)

    def init(params):
        if params is None:
            raise ValueError(f"{fn}: `init` needs the parameters (the squared-gradient sums have their shapes).")
        sums = jax.tree.map(lambda p: jnp.zeros((m0, *jnp.shape(p)), jnp.float32), params)
        z = jnp.zeros((m0,), jnp.float32)
        return ExcessMTLState(jnp.full((m0,), 1.0 / m0, jnp.float32), sums, z, z, jnp.zeros((), jnp.int32))

    def step(updates, m, state, extra):
        dtype = jnp.float32 if _trees.compute_dtype(updates) != jnp.float64 else jnp.float64
        sq = jax.tree.map(lambda g: jnp.square(g.astype(dtype)), updates)
        sums = jax.tree.map(lambda s, q: s.astype(dtype) + q, state.squared_gradient_sum, sq)
        tiny = jnp.asarray(1e-7, dtype)
        e = sum(
            jnp.sum(jnp.reshape(q / jnp.sqrt(s + tiny), (m, -1)), axis=1)
            for q, s in zip(jax.tree.leaves(sq), jax.tree.leaves(sums), strict=True)
        )
        count = state.count
        in_warmup = count < warm
        first = count == warm  # the first weighted step sets the baseline
        if warm > 0:
            base_new = (state.warmup_sum.astype(dtype) + jnp.where(in_warmup, e, 0.0)) / warm
            drive = e / (jnp.where(first, base_new, state.baseline.astype(dtype)) + tiny)
        else:
            base_new = e
            drive = jnp.where(first, e, e / (state.baseline.astype(dtype) + tiny))
        baseline = jnp.where(first, base_new, state.baseline.astype(dtype))
        log_w = jnp.log(state.weights.astype(dtype))
        new_w = jax.nn.softmax(log_w + jnp.asarray(robust_step_size, dtype) * drive)
        weights = jnp.where(in_warmup, state.weights.astype(dtype), new_w)
        warmup_sum = jnp.where(in_warmup, state.warmup_sum.astype(dtype) + e, state.warmup_sum.astype(dtype))
        new = ExcessMTLState(
            weights.astype(jnp.float32) if dtype != jnp.float64 else weights,
            jax.tree.map(lambda s, old: s.astype(old.dtype), sums, state.squared_gradient_sum),
            baseline.astype(state.baseline.dtype),
            warmup_sum.astype(state.warmup_sum.dtype),
            count + 1,
        )
        return combine(updates, weights), weights, new

    return aggregator(fn, step, num_losses=m0, axis_name=axis_name, init=init)


# ------------------------------------------------------------------------------
# torchjd 0.18's last aggregators (PCD, MoDo, SDMGrad, CR-MOGM) and LibMTL's gradient-based
# weightings (IMTL, MoCo, DB-MTL).
# ------------------------------------------------------------------------------


def _extra_sample(*variants, hyperparams=None, losses: bool = False, batches: bool = False):
    """A combiner's sample with ``losses=`` (per-loss values) and/or ``updates_a=``, ``updates_b=`` (two
    independent batches' per-loss gradients) among its extra arguments."""

    def make():
        params, updates = sample_grads(np.random.default_rng(0))
        extra = {}
        if losses:
            extra["losses"] = np.random.default_rng(3).uniform(0.5, 2.0, size=(3,)).astype(np.float32)
        if batches:
            extra["updates_a"] = sample_grads(np.random.default_rng(1))[1]
            extra["updates_b"] = sample_grads(np.random.default_rng(2))[1]
        return TransformSample(
            params=params,
            updates=updates,
            hyperparams=dict(hyperparams or {}),
            extra_args=extra,
            variants=tuple(variants),
        )

    return make


def _losses_arg(fn: str, extra: dict, m: int, axis_name) -> Array:
    """The ``losses=`` extra argument: checked (float ``[m]``) and averaged across devices."""
    losses = extra.get("losses")
    if losses is None:
        raise ValueError(f"{fn}: `update` needs the per-loss values as `losses=` (shape [{m}]).")
    losses = C.check_array(fn, "losses", losses, shape=(m,), dtype="float")
    return pmean(losses.astype(C.compute_dtype(losses)), axis_name)


def _batch_matrix(fn: str, gram, extra: dict, m: int, axis_name) -> Array:
    """``A = J_a J_b^T`` of ``updates_a=``, ``updates_b=`` (two independent batches), else the Gram of ``updates``
    (both unscaled)."""
    a, b = extra.get("updates_a"), extra.get("updates_b")
    if (a is None) != (b is None):
        raise ValueError(f"{fn}: pass both `updates_a=` and `updates_b=` (two independent batches), or neither.")
    if a is None:
        s = gram.scale.astype(gram.G.dtype)
        return gram.G * s * s
    for arg, tree in (("updates_a", a), ("updates_b", b)):
        if num_losses_of(fn, tree) != m:
            raise ValueError(f"{fn}: `{arg}` holds the gradients of {num_losses_of(fn, tree)} losses, not {m}.")
    return cross_gram(pmean(a, axis_name), pmean(b, axis_name)).astype(gram.G.dtype)


class PCDState(NamedTuple):
    """State of :func:`pcd`: the moving average of the squared gradient norms and the step count."""

    squared_norm_average: Array  # [m]
    count: Array  # int32 []


def _pcd_multipliers(Gs: Array, b: Array) -> tuple[Array, Array]:
    """``mu = argmin_{mu >= 0} mu^T Gs mu / 2 - b^T mu`` (the dual of PCD's QP) and whether it is primal feasible."""
    mu = _nonneg_qp(Gs, -b)
    tol = 1e-4 * jnp.maximum(jnp.max(jnp.diagonal(Gs)), jnp.asarray(float(jnp.finfo(Gs.dtype).tiny), Gs.dtype))
    return mu, jnp.all(Gs @ mu - b >= -tol)


@register(
    "pcd",
    aliases=("priority_constrained_descent",),
    family=FAMILY,
    kind="transform",
    formula="d~ = argmin_d ||d - g~_1||^2/2 s.t. g~_j.d >= f ||g~_j||^2 (j >= 2),  "
    "g~_i = g_i / sqrt(EMA ||g_i||^2 + eps);  update = ||g_1|| d~/||d~||",
    paper="Not All Objectives Are Born Equal: Priority-Constrained Descent for Hierarchical Multi-Objective "
    "Optimization (TMLR 2026, arXiv:2606.29521)",
    reference="torchjd==0.18.0 torchjd/aggregation/_pcd.py::PCD",
    sample=_sample({"progress_fraction": (0.3, 0.05), "decay": 0.5}, hyperparams={"num_losses": 3}),
)
def pcd(
    *,
    num_losses: int | None = None,
    progress_fraction: float | Sequence[float] = 0.02,
    decay: float = 0.999,
    epsilon: float = 1e-8,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""Priority-Constrained Descent: follow the first (primary) loss, guaranteeing progress on the others.

    .. math::
        \tilde d = \arg\min_d \tfrac12 \|d - \tilde g_1\|^2\ \ \text{s.t.}\ \
        \tilde g_j^\top d \ge f_j \|\tilde g_j\|^2\ (j = 2..m),\qquad
        \tilde g_i = \frac{g_i}{\sqrt{\hat v_i + \epsilon}},\qquad
        \text{update} = \frac{\|g_1\|}{\|\tilde d\|}\,\tilde d

    with :math:`\hat v_i` the bias-corrected moving average (factor ``decay``)
    of :math:`\|g_i\|^2`. The QP is solved in its dual on the Gram matrix
    (:math:`\tilde d = \tilde g_1 + \sum_j \mu_j \tilde g_j`, :math:`\mu \ge 0`;
    exactly for up to 13 losses). The first loss is the primary one. A zero
    primary gradient or a direction :math:`\tilde d` that is zero up to rounding
    gives a zero update; infeasible constraints give :math:`g_1`.

    Args:
      num_losses: m (required: the state holds one moving average per loss).
      progress_fraction: :math:`f \in [0, 1]`, the fraction of normalized progress guaranteed to each
        secondary loss: one number, or one per secondary loss (m - 1). torchjd's ``tau``.
      decay: the moving average's factor :math:`\beta \in [0, 1)` (torchjd's ``beta``).
      epsilon: added to the moving average before its inverse square root.
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      whose ``inner`` is a :class:`PCDState`; ``state.weights`` are the weights of ``g_i`` in the update.

    Paper: "Not All Objectives Are Born Equal: Priority-Constrained Descent for Hierarchical
    Multi-Objective Optimization", TMLR 2026, arXiv:2606.29521.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.pcd(num_losses=2, progress_fraction=0.5)
      >>> upd, state = tx.update(jnp.array([[1.0, 0.0], [-1.0, 1.0]]), tx.init(None))
      >>> upd.round(4)  # d~ = u1 + mu u2 with u2.d~ = 0.5 (u_i = g_i/|g_i|), rescaled to |g1| = 1
      Array([0.1691, 0.9856], dtype=float32)
    """
    fn = "pcd"
    m0 = check_num_losses(fn, num_losses, required=True)
    fracs = np.asarray(progress_fraction, np.float64)
    if fracs.ndim > 1 or not np.all((fracs >= 0) & (fracs <= 1)):
        raise ValueError(
            f"{fn}: `progress_fraction` must be a number or a 1-D sequence of numbers in [0, 1], "
            f"got {progress_fraction!r}."
        )
    if fracs.ndim == 1 and fracs.shape[0] != m0 - 1:
        raise ValueError(
            f"{fn}: `progress_fraction` has {fracs.shape[0]} entries but there are {m0 - 1} secondary losses."
        )
    C.check_in_range(fn, "decay", decay, 0.0, 1.0, high_inclusive=False)
    C.check_positive(fn, "epsilon", epsilon, allow_zero=True)
    fracs_t = tuple(float(v) for v in np.broadcast_to(fracs, (m0 - 1,)))

    def init(params):
        del params
        return PCDState(jnp.zeros((m0,), jnp.float32), jnp.zeros((), jnp.int32))

    def wfn(gram, m, state, extra):
        G, s = gram.G, gram.scale.astype(gram.G.dtype)
        dtype = G.dtype
        sq = jnp.diagonal(G) * s * s  # the squared norms
        avg = decay * state.squared_norm_average.astype(dtype) + (1.0 - decay) * sq
        count = state.count + 1
        den = C.safe_sqrt(avg / (1.0 - jnp.power(jnp.asarray(decay, dtype), count.astype(dtype))) + epsilon)
        scales = _safe_inv(den)
        sc = scales * s  # the normalized gradients are (g_i / s) * sc_i
        Gn = G * sc[:, None] * sc[None, :]
        w = jnp.zeros((m,), dtype).at[0].set(1.0)
        if m > 1:
            Gs = Gn[1:, 1:]
            b = jnp.asarray(fracs_t, dtype) * jnp.diagonal(Gs) - Gn[1:, 0]
            mu, feasible = _pcd_multipliers(Gs, b)
            w = jnp.where(feasible, w.at[1:].set(jnp.maximum(mu, 0.0)), w)
        precision = 10.0 * float(jnp.finfo(dtype).eps)
        dir_sq = w @ Gn @ w
        magnitude = jnp.square(jnp.abs(w) @ C.safe_sqrt(jnp.diagonal(Gn)))
        ok = (dir_sq > precision * magnitude) & (G[0, 0] > 0)
        weights = w * scales * C.safe_sqrt(G[0, 0]) * s * _safe_inv(C.safe_sqrt(dir_sq))
        weights = jnp.where(ok, weights, jnp.zeros_like(weights))
        return weights, PCDState(avg.astype(jnp.float32), count)

    return gram_aggregator(fn, wfn, num_losses=m0, init=init, axis_name=axis_name)


class MoDoState(NamedTuple):
    """State of :func:`modo`: the task weights ``lambda`` (on the simplex)."""

    weights: Array  # [m]


@register(
    "modo",
    family=FAMILY,
    kind="transform",
    formula="lambda <- Proj_simplex(lambda - gamma (J_a J_b^T lambda + rho lambda));  update = sum_i lambda_i g_i",
    paper="Three-Way Trade-Off in Multi-Objective Learning: Optimization, Generalization and Conflict-Avoidance "
    "(JMLR 2024, arXiv:2305.20057)",
    reference="torchjd==0.18.0 torchjd/aggregation/_modo.py::MoDoWeighting; LibMTL@4336804 LibMTL/weighting/MoDo.py",
    sample=_extra_sample({"gamma": 0.5, "rho": 0.0}, hyperparams={"num_losses": 3}, batches=True),
    runtime=("updates_a", "updates_b"),
)
def modo(
    *,
    num_losses: int | None = None,
    gamma: float = 0.1,
    rho: float = 0.1,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""MoDo: multi-objective gradient with double sampling, one projected step on the task weights per update.

    .. math::
        \lambda \leftarrow \Pi_\Delta\big(\lambda - \gamma\,(J_a J_b^\top \lambda + \rho\,\lambda)\big),\qquad
        \text{update} = \sum_i \lambda_i g_i

    with :math:`J_a, J_b` the per-loss gradients of two independent
    mini-batches (``update(..., updates_a=, updates_b=)``) and :math:`g_i` those
    of ``updates`` (a third batch, as LibMTL, or the mean of the two, as the
    paper's Equation 2.9b). Without ``updates_a``/``updates_b`` the matrix is
    the Gram of ``updates`` (a single-batch estimate, biased: the paper's
    guarantee needs independent batches). Weights start uniform.

    Args:
      num_losses: m (required: the state holds the task weights).
      gamma: :math:`\gamma > 0`, the step size of the weights (torchjd's default; LibMTL uses 1e-3).
      rho: :math:`\rho \ge 0`, the weights' L2 regularization.
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      whose ``inner`` is a :class:`MoDoState`; ``update(updates, state, params=None, *, updates_a=None,
      updates_b=None)`` returns ``sum_i lambda_i g_i`` (``state.weights = lambda``).

    Paper: Chen, Fernando, Ying, Chen, "Three-Way Trade-Off in Multi-Objective Learning: Optimization,
    Generalization and Conflict-Avoidance", JMLR 2024 (NeurIPS 2023), arXiv:2305.20057.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.modo(num_losses=2, gamma=0.1, rho=0.0)
      >>> upd, state = tx.update(jnp.array([[2.0, 0.0], [0.0, 1.0]]), tx.init(None))
      >>> state.weights  # (0.5, 0.5) - 0.1 (2, 0.5), projected onto the simplex
      Array([0.425, 0.575], dtype=float32)
    """
    fn = "modo"
    m0 = check_num_losses(fn, num_losses, required=True)
    C.check_positive(fn, "gamma", gamma)
    C.check_positive(fn, "rho", rho, allow_zero=True)

    def init(params):
        del params
        return MoDoState(jnp.full((m0,), 1.0 / m0, jnp.float32))

    def wfn(gram, m, state, extra):
        A = _batch_matrix(fn, gram, extra, m, axis_name)
        lam = state.weights.astype(A.dtype)
        lam = _project_simplex(lam - gamma * (A @ lam + rho * lam))
        return lam, MoDoState(lam.astype(jnp.float32))

    return gram_aggregator(fn, wfn, num_losses=m0, init=init, axis_name=axis_name)


class SDMGradState(NamedTuple):
    """State of :func:`sdmgrad`: the inner solver's weights ``w`` (on the simplex), the warm start of the next."""

    weights: Array  # [m]


@register(
    "sdmgrad",
    family=FAMILY,
    kind="transform",
    formula="w <- SGD-momentum + simplex projection on w^T A (w + l w~) (num_iterations steps, A = J_a J_b^T / "
    "mean(sqrt diag)^2);  update = sum_i ((w_i + l w~_i)/(1 + l)) g_i",
    paper="Direction-oriented Multi-objective Learning: Simple and Provable Stochastic Algorithms "
    "(NeurIPS 2023, arXiv:2305.18409)",
    reference="torchjd==0.18.0 torchjd/aggregation/_sdmgrad.py::SDMGradWeighting; LibMTL@4336804 "
    "LibMTL/weighting/SDMGrad.py (learning_rate=5)",
    sample=_extra_sample(
        {"preference_weight": 1.0, "weights": (0.2, 0.3, 0.5), "learning_rate": 5.0},
        hyperparams={"num_losses": 3, "num_iterations": 5},
        batches=True,
    ),
    runtime=("updates_a", "updates_b"),
)
def sdmgrad(
    *,
    num_losses: int | None = None,
    learning_rate: float = 10.0,
    momentum: float = 0.5,
    num_iterations: int = 20,
    preference_weight: float = 0.3,
    weights: Sequence[float] | None = None,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""SDMGrad: stochastic direction-oriented multi-objective gradient, weights pulled toward a preference.

    .. math::
        A = \frac{J_a J_b^\top}{\mathrm{mean}_i(\sqrt{(J_a J_b^\top)_{ii}})^2 + 10^{-8}},\qquad
        w \leftarrow \Pi_\Delta(w - \eta v),\ v \leftarrow \mu v + A(w + \lambda\tilde w)\ \ (K\ \text{times}),
        \qquad \text{update} = \sum_i \frac{w_i + \lambda \tilde w_i}{1 + \lambda} g_i

    (SGD with momentum on :math:`\tfrac12 \|J^\top w\|^2 + \lambda\, w^\top J J^\top \tilde w`
    over the simplex, warm-started from the last ``w``). :math:`J_a, J_b` are
    two independent batches' per-loss gradients (``update(..., updates_a=,
    updates_b=)``; without them the Gram of ``updates``), :math:`g_i` those of
    ``updates`` (a third batch). ``state.weights`` are the weights of
    :math:`g_i` in the update.

    Args:
      num_losses: m (required: the state holds the solver's weights).
      learning_rate: :math:`\eta > 0` of the inner SGD (torchjd 10; LibMTL 5).
      momentum: :math:`\mu \in [0, 1)` of the inner SGD.
      num_iterations: :math:`K`, inner steps per update.
      preference_weight: :math:`\lambda \ge 0`, the pull toward the preference direction (the paper's
        :math:`\lambda`; 0.3 in the paper's experiments).
      weights: the preference :math:`\tilde w` over the losses (default ``1/m`` each: the mean gradient).
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      whose ``inner`` is an :class:`SDMGradState`.

    Paper: Xiao, Ban, Ji, "Direction-oriented Multi-objective Learning: Simple and Provable Stochastic
    Algorithms", NeurIPS 2023, arXiv:2305.18409.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.sdmgrad(num_losses=2, preference_weight=0.0)
      >>> upd, state = tx.update(jnp.array([[1.0, 0.0], [0.0, 1.0]]), tx.init(None))
      >>> state.weights  # orthogonal gradients of equal norms: the min-norm weights stay uniform
      Array([0.5, 0.5], dtype=float32)
    """
    fn = "sdmgrad"
    m0 = check_num_losses(fn, num_losses, required=True)
    C.check_positive(fn, "learning_rate", learning_rate)
    C.check_in_range(fn, "momentum", momentum, 0.0, 1.0, high_inclusive=False)
    C.check_int(fn, "num_iterations", num_iterations, 1, static=True)
    C.check_positive(fn, "preference_weight", preference_weight, allow_zero=True)
    pref = _check_weights(fn, weights, m0, positive=False)
    lam_ = float(preference_weight)

    def init(params):
        del params
        return SDMGradState(jnp.full((m0,), 1.0 / m0, jnp.float32))

    def wfn(gram, m, state, extra):
        dtype = gram.G.dtype
        s = gram.scale.astype(dtype)
        if extra.get("updates_a") is None and extra.get("updates_b") is None:
            M = gram.G  # the Gram of updates / s: normalize in scaled units (the 1e-8 in unscaled ones)
        else:
            M = _batch_matrix(fn, gram, extra, m, axis_name)
            s = jnp.ones((), dtype)
        scale = jnp.mean(C.safe_sqrt(jnp.maximum(jnp.diagonal(M), 0.0)))
        a = M / (scale * scale + 1e-8 / (s * s))
        w_tilde = _weights_vector(fn, pref, m, dtype, 1.0 / m)
        target = lam_ * w_tilde

        def body(k, carry):
            w, v = carry
            g = a @ (w + target)
            v = jnp.where(k == 0, g, momentum * v + g)
            return _project_simplex(w - learning_rate * v), v

        w, _ = jax.lax.fori_loop(0, int(num_iterations), body, (state.weights.astype(dtype), jnp.zeros((m,), dtype)))
        return (w + target) / (1.0 + lam_), SDMGradState(w.astype(jnp.float32))

    return gram_aggregator(fn, wfn, num_losses=m0, init=init, axis_name=axis_name)


#: The aggregators whose update is exactly ``sum_i state.weights_i g_i``: the bases :func:`cr_mogm` can smooth.
_LINEAR = (
    "aligned_mtl",
    "cagrad",
    "config",
    "constant_weights",
    "dualproj",
    "equal_weight",
    "excess_mtl",
    "fairgrad",
    "gradvac",
    "imtl_g",
    "krum",
    "mgda",
    "nash_mtl",
    "pcd",
    "pcgrad",
    "upgrad",
)


class CRMOGMState(NamedTuple):
    """State of :func:`cr_mogm`: the base aggregator's state, the smoothed weights and whether they are set."""

    base: Any  # the base aggregator's AggregatorState
    smoothed: Array  # [m]
    started: Array  # bool []


@register(
    "cr_mogm",
    aliases=("crmogm",),
    family=FAMILY,
    kind="transform",
    formula="lambda_k = decay lambda_{k-1} + (1 - decay) w_k  (w_k: the base aggregator's weights);  "
    "update = sum_i lambda_k,i g_i",
    paper="On the Convergence of Stochastic Multi-Objective Gradient Manipulation and Beyond (NeurIPS 2022)",
    reference="torchjd==0.18.0 torchjd/aggregation/_cr_mogm.py::CRMOGMWeighting (around UPGradWeighting, "
    "MGDAWeighting)",
    sample=_sample(
        {"base": "mgda", "decay": 0.5, "initial_weights": (0.2, 0.3, 0.5), "base_hyperparams": {"max_iterations": 3}},
        hyperparams={"num_losses": 3},
    ),
)
def cr_mogm(
    *,
    num_losses: int | None = None,
    base: str = "upgrad",
    decay: float = 0.9,
    initial_weights: Sequence[float] | None = None,
    base_hyperparams: dict | None = None,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""CR-MOGM: smooth any linear aggregator's weights with an exponential moving average.

    .. math::
        \lambda_k = \beta\,\lambda_{k-1} + (1-\beta)\,\hat\lambda_k,\qquad
        \text{update} = \sum_i \lambda_{k,i}\, g_i

    with :math:`\hat\lambda_k` the weights the ``base`` aggregator computes for
    the step's gradients (its ``state.weights``) and :math:`\beta` = ``decay``.
    :math:`\lambda_0` is ``initial_weights``, or :math:`\hat\lambda_1` (the first
    update is then the base's). The paper's Corollary 1 raises the factor toward
    1 as the learning rate decays: rebuild with another ``decay`` (the state
    carries over) or wrap in :func:`optax.inject_hyperparams`.

    Args:
      num_losses: m (required: the state holds the smoothed weights).
      base: the name of a linear aggregator of this family (``"upgrad"``, ``"mgda"``, ``"pcgrad"``,
        ``"cagrad"``, ``"imtl_g"``, ``"nash_mtl"``, ...).
      decay: :math:`\beta \in [0, 1]` (torchjd's ``alpha``); 0 gives the base, 1 freezes the weights.
      initial_weights: :math:`\lambda_0`, m numbers (default: the first weights of the base).
      base_hyperparams: keyword arguments of the base's factory (e.g. ``{"solver": "exact"}``).
      axis_name: average per-loss gradients across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      whose ``inner`` is a :class:`CRMOGMState` (the base's own state in ``inner.base``).

    Paper: Zhou, Zhang, Jiang, Mu, Zhang, Yu, "On the Convergence of Stochastic Multi-Objective Gradient
    Manipulation and Beyond", NeurIPS 2022.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.cr_mogm(num_losses=2, base="mgda", initial_weights=(1.0, 0.0), decay=0.5)
      >>> upd, state = tx.update(jnp.array([[1.0, 0.0], [0.0, 1.0]]), tx.init(None))
      >>> state.weights  # 0.5 (1, 0) + 0.5 (0.5, 0.5)
      Array([0.75, 0.25], dtype=float32)
    """
    fn = "cr_mogm"
    m0 = check_num_losses(fn, num_losses, required=True)
    C.check_one_of(fn, "base", base, _LINEAR)
    C.check_in_range(fn, "decay", decay, 0.0, 1.0)
    lam0 = None
    if initial_weights is not None:
        lam0 = np.asarray(initial_weights, np.float64)
        if lam0.shape != (m0,) or not np.all(np.isfinite(lam0)):
            raise ValueError(f"{fn}: `initial_weights` must be {m0} finite numbers, got {initial_weights!r}.")
    kw = dict(base_hyperparams or {})
    if "num_losses" in kw or "axis_name" in kw:
        raise ValueError(f"{fn}: `base_hyperparams` must not set num_losses or axis_name (set them on cr_mogm).")
    inner_tx = globals()[base](num_losses=m0, **kw)

    def init(params):
        return CRMOGMState(inner_tx.init(params), jnp.zeros((m0,), jnp.float32), jnp.zeros((), bool))

    def step(updates, m, state, extra):
        _, base_state = inner_tx.update(updates, state.base, **extra)  # under jit its own combination is dropped
        hat = base_state.weights
        prev = jnp.where(state.started, state.smoothed, hat if lam0 is None else jnp.asarray(lam0, jnp.float32))
        lam = decay * prev + (1.0 - decay) * hat
        dtype = _trees.compute_dtype(updates)
        return combine(updates, lam.astype(dtype)), lam, CRMOGMState(base_state, lam, jnp.ones((), bool))

    return aggregator(fn, step, num_losses=m0, axis_name=axis_name, init=init)


# --- LibMTL's gradient-based weightings -------------------------------------------------------------------------


class IMTLState(NamedTuple):
    """State of :func:`imtl`: the learned log loss scales ``s`` and their optimizer's state."""

    log_scales: Array  # [m]
    inner: Any


@register(
    "imtl",
    aliases=("imtl_l", "impartial_mtl"),
    family=FAMILY,
    kind="transform",
    formula="g~_i = e^{s_i} g_i;  update = sum_i a_i g~_i (a: IMTL-G weights of the g~, or 1 without "
    "gradient_balance);  s <- adam step on sum_i e^{s_i} L_i - s_i",
    paper="Towards Impartial Multi-task Learning (ICLR 2021)",
    reference="LibMTL@4336804 LibMTL/weighting/IMTL.py (port; loss scales stepped by torch.optim.Adam)",
    sample=_extra_sample(
        {"gradient_balance": False, "learning_rate": 0.5},
        hyperparams={"num_losses": 3, "learning_rate": 0.1},
        losses=True,
    ),
    runtime=("losses",),
)
def imtl(
    *,
    num_losses: int | None = None,
    learning_rate: float = 1e-2,
    gradient_balance: bool = True,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""IMTL: impartial loss scales (IMTL-L), optionally with IMTL-G's gradient balance on top (the hybrid).

    .. math::
        \tilde g_i = e^{s_i} g_i,\qquad \text{update} = \sum_i a_i \tilde g_i,\qquad
        a = \frac{\tilde G^{+} \tilde n}{\mathbf 1^\top \tilde G^{+} \tilde n}\ \ (\text{IMTL-G on the }\tilde g),
        \qquad s \leftarrow \mathrm{Adam}\big(\nabla_s \textstyle\sum_i e^{s_i} L_i - s_i\big)

    IMTL-L learns a scale :math:`e^{s_i}` per loss so that every scaled loss
    :math:`e^{s_i} L_i - s_i` is driven to the same value 1 (its gradient in
    :math:`s_i` is :math:`e^{s_i} L_i - 1`); ``gradient_balance=False`` is
    IMTL-L alone (:math:`a = 1`), ``True`` the paper's hybrid IMTL (LibMTL's
    ``IMTL``). The update uses the scales before their step. LibMTL steps
    :math:`s` with the model's optimizer; here one Adam step (``learning_rate``)
    per update. ``state.weights = a e^s`` (the weights of the raw gradients).

    Args:
      num_losses: m (required: the state holds one scale per loss).
      learning_rate: Adam learning rate of the log scales :math:`s` (start 0).
      gradient_balance: apply IMTL-G to the scaled gradients (the hybrid IMTL).
      axis_name: average per-loss gradients and losses across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      whose ``inner`` is an :class:`IMTLState`; ``update(updates, state, params=None, *, losses)``.

    Paper: Liu, Li, Kuang, Xue, Chen, Yang, Liao, Zhang, "Towards Impartial Multi-task Learning",
    ICLR 2021 (openreview.net/forum?id=IMPnRXEWpvr).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.imtl(num_losses=2)
      >>> upd, state = tx.update(jnp.array([[2.0, 0.0], [0.0, 1.0]]), tx.init(None), losses=jnp.array([1.0, 2.0]))
      >>> upd.round(4)  # IMTL-G: equal projections on the unit gradients
      Array([0.6667, 0.6667], dtype=float32)
    """
    fn = "imtl"
    m0 = check_num_losses(fn, num_losses, required=True)
    C.check_positive(fn, "learning_rate", learning_rate)
    opt = optax.adam(learning_rate)

    def init(params):
        del params
        s = jnp.zeros((m0,), jnp.float32)
        return IMTLState(s, opt.init(s))

    def wfn(gram, m, state, extra):
        L = _losses_arg(fn, extra, m, axis_name).astype(jnp.float32)
        s = state.log_scales
        e = jnp.exp(s).astype(gram.G.dtype)
        a = _imtl_weights(gram.G * e[:, None] * e[None, :]) if gradient_balance else jnp.ones((m,), gram.G.dtype)
        delta, opt_state = opt.update(jnp.exp(s) * L - 1.0, state.inner, s)
        return a * e, IMTLState(optax.apply_updates(s, delta), opt_state)

    return gram_aggregator(fn, wfn, num_losses=m0, init=init, axis_name=axis_name)


class MoCoState(NamedTuple):
    """State of :func:`moco_mtl`: the per-loss gradient trackers ``y`` (like the stacked gradients), the task weights
    ``lambda`` and the step count."""

    trackers: Any  # pytree of [m, *param_shape]
    weights: Array  # [m]
    count: Array  # int32 []


def _stacked_zeros(fn: str, params: Any, m: int) -> Any:
    if params is None:
        raise ValueError(f"{fn}: `init` needs the parameters (the per-loss state has their shapes).")
    return jax.tree.map(lambda p: jnp.zeros((m, *jnp.shape(p)), jnp.float32), params)


@register(
    "moco_mtl",
    family=FAMILY,
    kind="transform",
    formula="y_i <- y_i - b_k (y_i - L_i g_i/(||g_i|| + 1e-8));  lambda <- softmax(lambda - c_k (Y Y^T + rho I) "
    "lambda);  update = sum_i lambda_i y_i;  b_k = beta/k^beta_sigma, c_k = gamma/k^gamma_sigma",
    paper="Mitigating Gradient Bias in Multi-objective Learning: A Provably Convergent Approach (ICLR 2023, "
    "arXiv:2210.12624)",
    reference="LibMTL@4336804 LibMTL/weighting/MoCo.py (port in float64)",
    sample=_extra_sample({"rho": 0.5, "beta_sigma": 0.0, "gamma": 1.0}, hyperparams={"num_losses": 3}, losses=True),
    runtime=("losses",),
)
def moco_mtl(
    *,
    num_losses: int | None = None,
    beta: float = 0.5,
    beta_sigma: float = 0.5,
    gamma: float = 0.1,
    gamma_sigma: float = 0.5,
    rho: float = 0.0,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""MoCo: track each loss's gradient with a moving average, then an MGDA-style step on softmax task weights.

    .. math::
        y_i \leftarrow y_i - \beta_k\Big(y_i - \frac{L_i\, g_i}{\|g_i\| + 10^{-8}}\Big),\qquad
        \lambda \leftarrow \mathrm{softmax}\big(\lambda - \gamma_k (Y Y^\top + \rho I)\lambda\big),\qquad
        \text{update} = \sum_i \lambda_i y_i

    with :math:`\beta_k = \beta / k^{\sigma_\beta}`, :math:`\gamma_k = \gamma /
    k^{\sigma_\gamma}` at step :math:`k = 1, 2, ...` (LibMTL's version, which
    normalizes each gradient to the length of its loss). The update combines the
    trackers :math:`y_i`, not the step's gradients: ``state.weights`` are the
    :math:`\lambda` applied to them.

    Args:
      num_losses: m (required: the state holds one tracker per loss).
      beta: :math:`\beta`, the trackers' step size.
      beta_sigma: its decay exponent :math:`\sigma_\beta`.
      gamma: :math:`\gamma`, the task weights' step size.
      gamma_sigma: its decay exponent :math:`\sigma_\gamma`.
      rho: :math:`\rho \ge 0`, the weights' L2 regularization.
      axis_name: average per-loss gradients and losses across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      whose ``inner`` is a :class:`MoCoState` (``init(params)`` needs the parameters);
      ``update(updates, state, params=None, *, losses)``.

    Paper: Fernando, Shen, Liu, Chaudhury, Murugesan, Chen, "Mitigating Gradient Bias in Multi-objective
    Learning: A Provably Convergent Approach", ICLR 2023, arXiv:2210.12624.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.moco_mtl(num_losses=2)
      >>> upd, state = tx.update(jnp.eye(2), tx.init(jnp.zeros(2)), losses=jnp.array([1.0, 1.0]))
      >>> upd.round(4)  # y = g/2, equal weights
      Array([0.25, 0.25], dtype=float32)
    """
    fn = "moco_mtl"
    m0 = check_num_losses(fn, num_losses, required=True)
    for arg, v in (("beta", beta), ("gamma", gamma)):
        C.check_positive(fn, arg, v)
    for arg, v in (("beta_sigma", beta_sigma), ("gamma_sigma", gamma_sigma), ("rho", rho)):
        C.check_positive(fn, arg, v, allow_zero=True)

    def init(params):
        return MoCoState(
            _stacked_zeros(fn, params, m0), jnp.full((m0,), 1.0 / m0, jnp.float32), jnp.zeros((), jnp.int32)
        )

    def step(updates, m, state, extra):
        L = _losses_arg(fn, extra, m, axis_name)
        gram = safe_gram(updates)
        dtype = gram.G.dtype
        norms = C.safe_sqrt(jnp.diagonal(gram.G)) * gram.scale.astype(dtype)
        k = (state.count + 1).astype(dtype)
        b = beta / jnp.power(k, beta_sigma)
        c = gamma / jnp.power(k, gamma_sigma)
        coef = L.astype(dtype) / (norms + 1e-8)

        def track(y, g):
            shape = (m,) + (1,) * (g.ndim - 1)
            target = g.astype(dtype) * jnp.reshape(coef, shape)
            return (y.astype(dtype) - b * (y.astype(dtype) - target)).astype(y.dtype)

        ys = jax.tree.map(track, state.trackers, updates)
        Y = safe_gram(ys)
        YY = Y.G * jnp.square(Y.scale.astype(dtype))
        lam = state.weights.astype(dtype)
        lam = jax.nn.softmax(lam - c * ((YY + rho * jnp.eye(m, dtype=dtype)) @ lam))
        out = _trees.cast_like(combine(ys, lam), jax.tree.map(lambda g: g[0], updates))
        return out, lam, MoCoState(ys, lam.astype(jnp.float32), state.count + 1)

    return aggregator(fn, step, num_losses=m0, axis_name=axis_name, init=init)


class DBMTLState(NamedTuple):
    """State of :func:`db_mtl`: the per-loss moving averages of the log-loss gradients and the step count."""

    averages: Any  # pytree of [m, *param_shape]
    count: Array  # int32 []


@register(
    "db_mtl",
    aliases=("dual_balancing",),
    family=FAMILY,
    kind="transform",
    formula="h_i <- b_k h_i + (1 - b_k) g_i/(L_i + 1e-8)  (b_k = beta/k^beta_sigma);  "
    "update = sum_i (max_j ||h_j|| / (||h_i|| + 1e-8)) h_i",
    paper="Dual-Balancing for Multi-Task Learning (2023, arXiv:2308.12029)",
    reference="LibMTL@4336804 LibMTL/weighting/DB_MTL.py (port in float64)",
    sample=_extra_sample({"beta_sigma": 0.5, "beta": 0.5}, hyperparams={"num_losses": 3}, losses=True),
    runtime=("losses",),
)
def db_mtl(
    *,
    num_losses: int | None = None,
    beta: float = 0.9,
    beta_sigma: float = 0.0,
    axis_name: str | None = None,
) -> aggregating.Aggregator:
    r"""DB-MTL: balance the loss scales with log losses and the gradient scales to the largest gradient norm.

    .. math::
        h_i \leftarrow \beta_k h_i + (1-\beta_k)\,\nabla \log(L_i + 10^{-8}),\qquad
        \text{update} = \sum_i \frac{\max_j \|h_j\|}{\|h_i\| + 10^{-8}}\, h_i

    with :math:`\nabla\log(L_i + 10^{-8}) = g_i / (L_i + 10^{-8})` and
    :math:`\beta_k = \beta / k^{\sigma}` at step :math:`k = 1, 2, ...` (the
    moving average starts at 0). The update combines the moving averages
    :math:`h_i`: ``state.weights`` are the factors applied to them.

    Args:
      num_losses: m (required: the state holds one moving average per loss).
      beta: :math:`\beta \in [0, 1)`, the moving average's factor.
      beta_sigma: :math:`\sigma \ge 0`, its decay exponent (0: constant).
      axis_name: average per-loss gradients and losses across this mapped axis first.

    Returns:
      An :class:`optax.experimental.aggregating.Aggregator` with an :class:`AggregatorState`
      whose ``inner`` is a :class:`DBMTLState` (``init(params)`` needs the parameters);
      ``update(updates, state, params=None, *, losses)``.

    Paper: Lin, Ye, Xu, Shi, Zhang, Kwok, "Dual-Balancing for Multi-Task Learning", 2023, arXiv:2308.12029.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> tx = lossjax.transforms.db_mtl(num_losses=2, beta=0.0)
      >>> g = jnp.array([[1.0, 0.0], [0.0, 4.0]])
      >>> upd, state = tx.update(g, tx.init(jnp.zeros(2)), losses=jnp.array([1.0, 2.0]))
      >>> upd.round(4)  # h = (1, 0), (0, 2): both scaled to norm 2
      Array([2., 2.], dtype=float32)
    """
    fn = "db_mtl"
    m0 = check_num_losses(fn, num_losses, required=True)
    C.check_in_range(fn, "beta", beta, 0.0, 1.0, high_inclusive=False)
    C.check_positive(fn, "beta_sigma", beta_sigma, allow_zero=True)

    def init(params):
        return DBMTLState(_stacked_zeros(fn, params, m0), jnp.zeros((), jnp.int32))

    def step(updates, m, state, extra):
        L = _losses_arg(fn, extra, m, axis_name)
        dtype = _trees.compute_dtype(updates)
        k = (state.count + 1).astype(dtype)
        b = beta / jnp.power(k, beta_sigma)
        inv = 1.0 / (L.astype(dtype) + 1e-8)

        def average(h, g):
            shape = (m,) + (1,) * (g.ndim - 1)
            lg = g.astype(dtype) * jnp.reshape(inv, shape)
            return (lg + b * (h.astype(dtype) - lg)).astype(h.dtype)

        hs = jax.tree.map(average, state.averages, updates)
        H = safe_gram(hs)
        norms = C.safe_sqrt(jnp.diagonal(H.G)) * H.scale.astype(H.G.dtype)
        alpha = jnp.max(norms) / (norms + 1e-8)
        out = _trees.cast_like(combine(hs, alpha), jax.tree.map(lambda g: g[0], updates))
        return out, alpha, DBMTLState(hs, state.count + 1)

    return aggregator(fn, step, num_losses=m0, axis_name=axis_name, init=init)
