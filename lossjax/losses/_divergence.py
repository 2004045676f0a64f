"""Divergences between distributions: f-divergences on log-probabilities, kernel and transport distances, MINE.

* On probability vectors ``[..., C]`` (``log_predictions`` and ``targets``, optax's
  argument order, ``log_target`` as torch's ``kl_div``): :func:`kl_divergence`,
  :func:`kl_divergence_with_log_targets`, :func:`generalized_kl_divergence`
  (optax's ``convex_kl_divergence``), :func:`reverse_kl_divergence`,
  :func:`jensen_shannon_divergence`, :func:`total_variation_distance`,
  :func:`hellinger_distance`, :func:`alpha_divergence`, :func:`renyi_divergence`;
  :func:`tsallis_entropy` of a softmax.
* Between samples (point clouds ``[..., N, D]`` and ``[..., M, D]``):
  :func:`sinkhorn_divergence` (debiased entropic OT, log domain, fixed
  iteration count), :func:`cauchy_schwarz_divergence` (Gaussian-kernel KDE).
* Between covariances ``[..., D, D]``: :func:`bures_wasserstein_distance`.
* Mutual information: :func:`mine_lower_bound` (Donsker-Varadhan with MINE's
  moving-average gradient correction as explicit state, :class:`MINEState`).
* Losses built on a divergence: :func:`itakura_saito_value_loss`,
  :func:`bayesian_flow_loss`.

Conventions shared by the probability-vector divergences: the divergence of the
``targets`` from the predictions (``KL(targets || predictions)`` for
:func:`kl_divergence`), summed over ``axis``; ``0 log 0 = 0`` exactly (a target
of 0 contributes exactly 0, with a zero gradient, even against a log-prediction
of ``-inf``, where optax and torch give NaN); ``where`` with the inputs' full
shape masks elements (optax's meaning: ``sum(..., where=where)``), a ``where``
of lower rank masks examples (lossjax's leading-axis batch mask: exactly 0
loss and gradient there).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax._parallel import psum
from lossjax.registry import Sample, register

__all__ = [
    "MINEState",
    "alpha_divergence",
    "bayesian_flow_loss",
    "bures_wasserstein_distance",
    "cauchy_schwarz_divergence",
    "convex_kl_divergence",
    "generalized_kl_divergence",
    "hellinger_distance",
    "itakura_saito_value_loss",
    "jensen_shannon_divergence",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "mine_lower_bound",
    "renyi_divergence",
    "reverse_kl_divergence",
    "sinkhorn_divergence",
    "total_variation_distance",
    "tsallis_entropy",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

FAMILY = "divergence"

_HI = jax.lax.Precision.HIGHEST

# --------------------------------------------------------------------------
# Probability vectors: one input check and the safe logs every divergence uses.
# --------------------------------------------------------------------------


class _Dist(NamedTuple):
    lp: Array  # log-predictions, class axis last, masked entries filled (finite)
    p: Array  # exp(lp)
    t: Array  # targets (probabilities), class axis last
    lt: Array  # log-targets, -inf where the target is 0
    keep: Array | None  # element mask (optax's full-shape `where`) or None
    batch_mask: Array | None  # lossjax's batch mask (leading axes) or None


def _dist_inputs(fn: str, log_predictions, targets, *, log_target: bool, axis: int, where, targets_name="targets"):
    lp = C.check_array(fn, "log_predictions", log_predictions, min_ndim=1, dtype="float")
    t = C.check_array(fn, targets_name, targets, min_ndim=1, dtype="float")
    C.check_same_shape(fn, ("log_predictions", targets_name), lp, t)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -lp.ndim <= axis < lp.ndim:
        raise ValueError(f"{fn}: `axis` must be an integer axis of the inputs (rank {lp.ndim}), got {axis!r}.")
    if not isinstance(log_target, (bool, np.bool_)):
        raise ValueError(f"{fn}: `log_target` must be a bool, got {log_target!r}.")
    dtype = C.compute_dtype(lp, t)
    shape0 = lp.shape
    lp = jnp.moveaxis(C.as_compute(lp, dtype), axis, -1)
    t = jnp.moveaxis(C.as_compute(t, dtype), axis, -1)
    keep = batch_mask = None
    if where is not None:
        w = jnp.asarray(where)
        if w.ndim == lp.ndim and w.dtype == jnp.bool_:  # optax's element mask, in the inputs' layout
            try:
                w = jnp.broadcast_to(w, shape0)
            except ValueError:
                raise ValueError(
                    f"{fn}: an element `where` (rank {w.ndim}) must broadcast to the inputs' shape, got {w.shape}."
                ) from None
            keep = jnp.moveaxis(w, axis, -1)
        else:
            batch_mask = C.prepare_where(fn, where, lp.shape[:-1])
    # Masked examples (and masked elements) may hold garbage: fill them before any computation.
    empty_log = 0.0 if log_target else 1.0
    lp = C.fill_masked(lp, batch_mask)
    t = C.fill_masked(t, batch_mask, empty_log)
    if keep is not None:
        lp = jnp.where(keep, lp, jnp.zeros((), dtype))
        t = jnp.where(keep, t, jnp.asarray(empty_log, dtype))
    if log_target:
        lt = t
        t = jnp.exp(lt)
    else:
        pos = t > 0
        lt = jnp.where(pos, jnp.log(jnp.where(pos, t, jnp.ones((), dtype))), jnp.asarray(-jnp.inf, dtype))
    return _Dist(lp, jnp.exp(lp), t, lt, keep, batch_mask)


def _finish(d: _Dist, terms: Array) -> Array:
    """Sums the per-element terms over the class axis (element mask applied) and zeroes masked examples."""
    if d.keep is not None:
        terms = jnp.where(d.keep, terms, jnp.zeros((), terms.dtype))
    return C.zero_masked(jnp.sum(terms, axis=-1), d.batch_mask)


def _safe(x: Array, ok: Array, fill: float = 0.0) -> Array:
    """``x`` where ``ok`` else ``fill`` (the first half of a double-where on ``x``)."""
    return jnp.where(ok, x, jnp.asarray(fill, x.dtype))


def _xlogx_ratio(a: Array, la: Array, lb: Array) -> Array:
    """``a (log a - log b)``, ``0 log 0 = 0`` exactly (also against ``log b = -inf``); +inf where only b is 0."""
    pos = a > 0
    return jnp.where(pos, a * (_safe(la, pos) - _safe(lb, pos)), jnp.zeros((), a.dtype))


def _prob_sample(seed: int, n: int = 5, c: int = 4, zeros: bool = True) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, c)) * 1.5
    lp = z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
    t = np.exp(rng.normal(size=(n, c)))
    if zeros:
        t[1, 2] = 0.0  # a target of exactly 0 (0 log 0 = 0)
        t[3, 0] = 0.0
    t = t / t.sum(-1, keepdims=True)
    return lp.astype(np.float32), t.astype(np.float32)


def _prob_extremes(lp: np.ndarray, t: np.ndarray, support: str) -> tuple[tuple, ...]:
    """Extreme but valid inputs for a divergence whose finiteness needs ``support``.

    ``"forward"`` (finite when ``p > 0`` wherever ``t > 0``: KL(t || p)): log-predictions of -1e4 beside 0,
    one-hot targets, ``-inf`` log-predictions where the target is 0. ``"reverse"`` (``t > 0`` wherever
    ``p > 0``; ``t > 0`` everywhere): peaked and ``-inf`` log-predictions. ``"both"`` (equal supports):
    ``-inf`` exactly where the target is 0, and log-predictions of -40 beside 0.
    """
    n, c = t.shape
    rows = np.arange(n)
    zeros = t.copy()
    zeros[rows, (rows + 1) % c] = 0.0
    zeros = (zeros / zeros.sum(-1, keepdims=True)).astype(np.float32)
    lp_inf = lp.copy()
    lp_inf[zeros == 0] = -np.inf
    lp_inf = (lp_inf - np.log(np.sum(np.exp(lp_inf), -1, keepdims=True))).astype(np.float32)
    if support == "forward":
        peak = np.full_like(lp, -1e4)
        peak[:, 0] = 0.0
        onehot = np.zeros_like(t)
        onehot[rows, rows % c] = 1.0
        return ((peak, t), (lp, onehot), (lp_inf, zeros))
    if support == "reverse":
        peak = np.full_like(lp, -1e4)
        peak[rows, rows % c] = 0.0
        return ((peak, t), (lp_inf, t))
    peak = np.full_like(lp, -40.0)
    peak[rows, rows % c] = 0.0
    peak = (peak - np.log(np.sum(np.exp(peak.astype(np.float64)), -1, keepdims=True))).astype(np.float32)
    return ((lp_inf, zeros), (peak, t))


def _prob_entry_sample(seed: int, variants=(), support: str = "forward") -> Sample:
    lp, t = _prob_sample(seed, zeros=support == "forward")
    return Sample(
        args=(lp, t),
        diff_argnums=(0,),
        extremes=_prob_extremes(lp, t, support),
        variants=tuple(variants),
        fuzz_scaled=(),  # log-probabilities of a fixed sum: rescaling leaves the domain
    )


_PROB_ARGS = """
      log_predictions: log-probabilities of the predicted distribution ``[..., C]`` (e.g. ``log_softmax``).
      targets: the target distribution ``[..., C]``: probabilities, or log-probabilities with
        ``log_target=True``.
      log_target: whether ``targets`` holds log-probabilities (torch's ``kl_div(log_target=True)``).
      axis: the class axis (-1).
      where: a boolean mask: with the inputs' full shape it masks elements (optax's meaning);
        of lower rank, it masks examples along the leading axes (0 loss and gradient)."""


# --------------------------------------------------------------------------
# KL and its relatives.
# --------------------------------------------------------------------------


@register(
    "kl_divergence",
    aliases=("kl_div", "kl_loss"),
    family=FAMILY,
    kind="per_example",
    formula="sum_c t_c (log t_c - log p_c),  0 log 0 = 0",
    paper="On Information and Sufficiency (Kullback and Leibler, 1951; no arXiv)",
    reference="optax.losses.kl_divergence; torch.nn.functional.kl_div(reduction='none', log_target=...) summed",
    sample=lambda: _prob_entry_sample(0),
)
def kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    *,
    log_target: bool = False,
    axis: int = -1,
    where: ArrayLike | None = None,
) -> Array:
    r"""Kullback-Leibler divergence of the targets from the predictions, per example.

    .. math:: \ell = \sum_c t_c\,(\log t_c - \log p_c), \qquad 0\log 0 = 0

    optax's ``kl_divergence(log_predictions, targets)`` and torch's
    ``kl_div(log_predictions, targets, reduction="none").sum(axis)`` (with
    ``log_target=True``: ``targets`` are log-probabilities, optax's
    :func:`kl_divergence_with_log_targets`). A target of exactly 0 contributes
    exactly 0 and no gradient, also where the log-prediction is ``-inf`` (a
    masked vocabulary entry), where optax and torch give NaN.

    Args:{args}

    Returns:
      The divergence per example ``[...]`` (the inputs' shape without ``axis``).

    Paper: Kullback, Leibler, "On Information and Sufficiency", Ann. Math.
    Statist. 1951 (no arXiv).

    Example:
      >>> import jax, jax.numpy as jnp, lossjax
      >>> lp = jax.nn.log_softmax(jnp.array([[1.0, 0.0, -1.0]]))
      >>> t = jnp.array([[0.5, 0.5, 0.0]])
      >>> lossjax.losses.kl_divergence(lp, t).round(4)
      Array([0.2145], dtype=float32)
      >>> lossjax.losses.kl_divergence(lp, jnp.log(t), log_target=True).round(4)
      Array([0.2145], dtype=float32)
    """
    d = _dist_inputs("kl_divergence", log_predictions, targets, log_target=log_target, axis=axis, where=where)
    return _finish(d, _xlogx_ratio(d.t, d.lt, d.lp))


kl_divergence.__doc__ = kl_divergence.__doc__.replace("{args}", _PROB_ARGS)


def _log_targets_sample() -> Sample:
    lp, t = _prob_sample(1)
    with np.errstate(divide="ignore"):
        lt = np.log(t).astype(np.float32)  # -inf where the target is 0
    (peak, _), (_, onehot), (lp_inf, zeros) = _prob_extremes(lp, t, "forward")
    with np.errstate(divide="ignore"):
        extremes = ((peak, lt), (lp, np.log(onehot)), (lp_inf, np.log(zeros)))
    return Sample(args=(lp, lt), diff_argnums=(0,), extremes=extremes, fuzz_scaled=())


@register(
    "kl_divergence_with_log_targets",
    family=FAMILY,
    kind="per_example",
    formula="sum_c exp(lt_c) (lt_c - log p_c)",
    paper="On Information and Sufficiency (Kullback and Leibler, 1951; no arXiv)",
    reference="optax.losses.kl_divergence_with_log_targets; torch.nn.functional.kl_div(log_target=True)",
    sample=_log_targets_sample,
    allow_nonfinite=("log_targets",),  # -inf: a target probability of 0
)
def kl_divergence_with_log_targets(
    log_predictions: ArrayLike,
    log_targets: ArrayLike,
    *,
    axis: int = -1,
    where: ArrayLike | None = None,
) -> Array:
    r"""Kullback-Leibler divergence with the targets given as log-probabilities (optax's name).

    .. math:: \ell = \sum_c e^{\log t_c}\,(\log t_c - \log p_c)

    Equals ``kl_divergence(log_predictions, log_targets, log_target=True)``.
    A log-target of ``-inf`` (a target of 0) contributes exactly 0 (optax and
    torch give NaN there).

    Args:
      log_predictions: log-probabilities of the predicted distribution ``[..., C]``.
      log_targets: log-probabilities of the target distribution ``[..., C]``.
      axis: the class axis (-1).
      where: a boolean mask: with the inputs' full shape it masks elements (optax's meaning);
        of lower rank, it masks examples along the leading axes.

    Returns:
      The divergence per example ``[...]``.

    Paper: Kullback, Leibler, "On Information and Sufficiency", 1951 (no arXiv).

    Example:
      >>> import jax, jax.numpy as jnp, lossjax
      >>> lp = jax.nn.log_softmax(jnp.array([[1.0, 0.0]]))
      >>> lossjax.losses.kl_divergence_with_log_targets(lp, jnp.log(jnp.array([[0.5, 0.5]]))).round(4)
      Array([0.1201], dtype=float32)
    """
    d = _dist_inputs(
        "kl_divergence_with_log_targets",
        log_predictions,
        log_targets,
        log_target=True,
        axis=axis,
        where=where,
        targets_name="log_targets",
    )
    return _finish(d, _xlogx_ratio(d.t, d.lt, d.lp))


def _gkl_sample() -> Sample:
    lp, t = _prob_sample(2)
    t = t * np.array([[1.3], [0.6], [1.0], [2.0], [0.9]], np.float32)  # unnormalized measures
    lp = lp + np.array([[0.2], [-0.4], [0.0], [0.5], [-0.1]], np.float32)
    return Sample(args=(lp, t), diff_argnums=(0,), extremes=_prob_extremes(lp, t, "forward"), fuzz_scaled=())


@register(
    "generalized_kl_divergence",
    aliases=("convex_kl_divergence", "generalized_kl"),
    family=FAMILY,
    kind="per_example",
    formula="sum_c [t_c (log t_c - log p_c) - t_c + p_c]",
    paper="Convex Optimization (Boyd and Vandenberghe, 2004, p. 90; no arXiv): the Bregman divergence of x log x - x",
    reference="optax.losses.generalized_kl_divergence (= the deprecated convex_kl_divergence)",
    sample=_gkl_sample,
)
def generalized_kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    *,
    log_target: bool = False,
    axis: int = -1,
    where: ArrayLike | None = None,
) -> Array:
    r"""Generalized KL divergence (I-divergence) for unnormalized measures; optax's ``convex_kl_divergence``.

    .. math:: \ell = \sum_c \big[t_c(\log t_c - \log p_c) - t_c + p_c\big]

    The Bregman divergence of :math:`x\log x - x`: non-negative for any
    non-negative measures, 0 iff ``p == t``; equals :func:`kl_divergence`
    when both are normalized. optax's ``generalized_kl_divergence`` and its
    deprecated name ``convex_kl_divergence`` (both names work here).

    Args:{args}

    Returns:
      The divergence per example ``[...]``.

    Paper: Boyd, Vandenberghe, "Convex Optimization", 2004, p. 90; Bregman, 1967
    (no arXiv).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.log(jnp.array([[2.0, 1.0]]))
      >>> lossjax.losses.generalized_kl_divergence(lp, jnp.array([[1.0, 1.0]])).round(4)
      Array([0.3069], dtype=float32)
    """
    d = _dist_inputs(
        "generalized_kl_divergence", log_predictions, targets, log_target=log_target, axis=axis, where=where
    )
    return _finish(d, _xlogx_ratio(d.t, d.lt, d.lp) - d.t + d.p)


generalized_kl_divergence.__doc__ = generalized_kl_divergence.__doc__.replace("{args}", _PROB_ARGS)
#: optax's deprecated name of :func:`generalized_kl_divergence` (the same function).
convex_kl_divergence = generalized_kl_divergence


@register(
    "reverse_kl_divergence",
    aliases=("reverse_kl",),
    family=FAMILY,
    kind="per_example",
    formula="sum_c p_c (log p_c - log t_c)",
    paper="On Information and Sufficiency (Kullback and Leibler, 1951; no arXiv)",
    reference="closed form; scipy.special.rel_entr(p, t) summed",
    sample=lambda: _prob_entry_sample(3, variants=({"log_target": True},), support="reverse"),
)
def reverse_kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    *,
    log_target: bool = False,
    axis: int = -1,
    where: ArrayLike | None = None,
) -> Array:
    r"""Reverse (mode-seeking) KL divergence: of the predictions from the targets, per example.

    .. math:: \ell = \sum_c p_c\,(\log p_c - \log t_c), \qquad p = e^{\log p}

    The gradient flows through both the weights ``p`` and ``log p``. A
    prediction of exactly 0 contributes 0; mass predicted where the target is
    0 gives ``+inf`` (the divergence is infinite there).

    Args:{args}

    Returns:
      The divergence per example ``[...]``.

    Paper: Kullback, Leibler, "On Information and Sufficiency", 1951 (no arXiv);
    reverse KL as in variational inference.

    Example:
      >>> import jax, jax.numpy as jnp, lossjax
      >>> lp = jax.nn.log_softmax(jnp.array([[1.0, 0.0]]))
      >>> lossjax.losses.reverse_kl_divergence(lp, jnp.array([[0.5, 0.5]])).round(4)
      Array([0.1109], dtype=float32)
    """
    d = _dist_inputs("reverse_kl_divergence", log_predictions, targets, log_target=log_target, axis=axis, where=where)
    return _finish(d, _xlogx_ratio(d.p, d.lp, d.lt))


reverse_kl_divergence.__doc__ = reverse_kl_divergence.__doc__.replace("{args}", _PROB_ARGS)


@register(
    "jensen_shannon_divergence",
    aliases=("js_divergence", "jsd"),
    family=FAMILY,
    kind="per_example",
    formula="a KL(p || m) + (1 - a) KL(t || m),  m = a p + (1 - a) t",
    paper="Divergence Measures Based on the Shannon Entropy (Lin, 1991; no arXiv)",
    reference="scipy.spatial.distance.jensenshannon(p, t) ** 2 (alpha = 0.5); scipy.special.rel_entr otherwise",
    sample=lambda: _prob_entry_sample(4, variants=({"alpha": 0.3}, {"log_target": True})),
)
def jensen_shannon_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    *,
    alpha: float = 0.5,
    log_target: bool = False,
    axis: int = -1,
    where: ArrayLike | None = None,
) -> Array:
    r"""Generalized Jensen-Shannon divergence with mixing weight ``alpha``, per example.

    .. math::
        \ell = \alpha\,\mathrm{KL}(p\,\|\,m) + (1-\alpha)\,\mathrm{KL}(t\,\|\,m),
        \qquad m = \alpha\,p + (1-\alpha)\,t

    Lin's :math:`JS_\pi` with weights :math:`(\pi_1, \pi_2) = (\alpha, 1-\alpha)`
    on (predictions, targets); bounded by the entropy of :math:`(\alpha, 1-\alpha)`
    (``log 2`` at ``alpha = 0.5``, the square of scipy's ``jensenshannon``).
    Finite for any pair of distributions; the mixture is computed in log space.

    Args:{args}
      alpha: the weight of the predictions in the mixture, in ``(0, 1)`` (0.5).

    Returns:
      The divergence per example ``[...]`` (natural log).

    Paper: Lin, "Divergence Measures Based on the Shannon Entropy", IEEE Trans.
    Inf. Theory 1991 (no arXiv).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.log(jnp.array([[1.0, 0.0]]))
      >>> lossjax.losses.jensen_shannon_divergence(lp, jnp.array([[0.0, 1.0]])).round(4)  # disjoint: log 2
      Array([0.6931], dtype=float32)
    """
    fn = "jensen_shannon_divergence"
    C.check_in_range(fn, "alpha", alpha, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    d = _dist_inputs(fn, log_predictions, targets, log_target=log_target, axis=axis, where=where)
    dtype = d.lp.dtype
    la = jnp.asarray(math.log(alpha), dtype)
    lb = jnp.asarray(math.log1p(-alpha), dtype)
    either = (d.p > 0) | (d.t > 0)
    x = _safe(d.lp, either) + la
    y = _safe(d.lt, either) + lb
    hi = jnp.maximum(x, y)
    lm = hi + jnp.log1p(jnp.exp(-jnp.abs(x - y)))  # logaddexp, finite wherever either side is
    lm = _safe(lm, either)
    terms = jnp.asarray(alpha, dtype) * _xlogx_ratio(d.p, d.lp, lm) + jnp.asarray(1 - alpha, dtype) * _xlogx_ratio(
        d.t, d.lt, lm
    )
    return _finish(d, terms)


jensen_shannon_divergence.__doc__ = jensen_shannon_divergence.__doc__.replace("{args}", _PROB_ARGS)


@register(
    "total_variation_distance",
    aliases=("total_variation",),
    family=FAMILY,
    kind="per_example",
    formula="1/2 sum_c |p_c - t_c|",
    paper="Theory of Statistical Estimation / total variation distance (classical; no arXiv)",
    reference="closed form (numpy); subgradient 0 at p_c = t_c",
    sample=lambda: _prob_entry_sample(5, variants=({"log_target": True},)),
)
def total_variation_distance(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    *,
    log_target: bool = False,
    axis: int = -1,
    where: ArrayLike | None = None,
) -> Array:
    r"""Total variation distance between the predicted and target distributions, per example.

    .. math:: \ell = \tfrac12\sum_c |p_c - t_c|

    In ``[0, 1]``. At ``p_c = t_c`` the gradient is the subgradient 0.

    Args:{args}

    Returns:
      The distance per example ``[...]``.

    Paper: the classical total variation distance between probability measures
    (e.g. Tsybakov, "Introduction to Nonparametric Estimation", 2009, Sec. 2.4; no arXiv).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.log(jnp.array([[0.75, 0.25]]))
      >>> lossjax.losses.total_variation_distance(lp, jnp.array([[0.5, 0.5]]))
      Array([0.25], dtype=float32)
    """
    d = _dist_inputs(
        "total_variation_distance", log_predictions, targets, log_target=log_target, axis=axis, where=where
    )
    diff = d.p - d.t
    return _finish(d, 0.5 * diff * jnp.sign(diff))  # |diff| with the subgradient 0 at diff = 0 (as torch's abs)


total_variation_distance.__doc__ = total_variation_distance.__doc__.replace("{args}", _PROB_ARGS)


@register(
    "hellinger_distance",
    aliases=("hellinger",),
    family=FAMILY,
    kind="per_example",
    formula="sqrt(1/2 sum_c (sqrt(p_c) - sqrt(t_c))^2)  (squared=True: without the square root)",
    paper="Neue Begruendung der Theorie quadratischer Formen (Hellinger, 1909; no arXiv)",
    reference="closed form (numpy); sqrt(p) = exp(log p / 2)",
    sample=lambda: _prob_entry_sample(6, variants=({"squared": True}, {"log_target": True})),
)
def hellinger_distance(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    *,
    squared: bool = False,
    log_target: bool = False,
    axis: int = -1,
    where: ArrayLike | None = None,
) -> Array:
    r"""Hellinger distance between the predicted and target distributions, per example.

    .. math:: H = \sqrt{\tfrac12\sum_c\big(\sqrt{p_c} - \sqrt{t_c}\big)^2} \in [0, 1]

    :math:`\sqrt{p_c} = e^{\log p_c/2}` (finite gradients at ``p_c = 0``); the
    outer square root has a zero gradient at ``H = 0`` (identical
    distributions). ``squared=True`` returns :math:`H^2`.

    Args:{args}
      squared: return :math:`H^2` (smooth everywhere) instead of :math:`H`.

    Returns:
      The distance per example ``[...]``.

    Paper: Hellinger, "Neue Begruendung der Theorie quadratischer Formen von
    unendlichvielen Veraenderlichen", J. Reine Angew. Math. 1909 (no arXiv).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.log(jnp.array([[1.0, 0.0]]))
      >>> lossjax.losses.hellinger_distance(lp, jnp.array([[0.0, 1.0]]))  # disjoint supports
      Array([1.], dtype=float32)
    """
    fn = "hellinger_distance"
    d = _dist_inputs(fn, log_predictions, targets, log_target=log_target, axis=axis, where=where)
    sq = _finish(d, 0.5 * jnp.square(jnp.exp(0.5 * d.lp) - jnp.exp(0.5 * d.lt)))
    return sq if squared else C.safe_sqrt(sq)


hellinger_distance.__doc__ = hellinger_distance.__doc__.replace("{args}", _PROB_ARGS)


def _weighted_power_terms(d: _Dist, alpha: float) -> Array:
    """``t^alpha p^(1 - alpha)`` per element, 0 where ``t = 0`` (``alpha > 0``), ``+inf`` where only ``p`` is 0 and
    ``alpha > 1``."""
    pos = d.t > 0
    a = jnp.asarray(alpha, d.lp.dtype)
    return jnp.where(pos, jnp.exp(a * _safe(d.lt, pos) + (1 - a) * _safe(d.lp, pos)), jnp.zeros((), d.lp.dtype))


@register(
    "alpha_divergence",
    aliases=("amari_alpha_divergence",),
    family=FAMILY,
    kind="per_example",
    formula="1/(a(a-1)) sum_c [t^a p^(1-a) - a t + (a-1) p];  a=1: generalized KL(t||p), a=0: generalized KL(p||t)",
    paper="Families of Alpha- Beta- and Gamma- Divergences (Cichocki and Amari, 2010; no arXiv)",
    reference="closed form (numpy); the a -> 1 and a -> 0 limits are scipy.special.kl_div",
    sample=lambda: _prob_entry_sample(7, variants=({"alpha": 2.0}, {"alpha": 1.0}, {"alpha": 0.0}), support="both"),
)
def alpha_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    *,
    alpha: float = 0.5,
    log_target: bool = False,
    axis: int = -1,
    where: ArrayLike | None = None,
) -> Array:
    r"""Amari's alpha-divergence (Cichocki-Amari form, valid for unnormalized measures), per example.

    .. math::
        D_\alpha(t\,\|\,p) = \frac{1}{\alpha(\alpha-1)}
        \sum_c\big[t_c^{\alpha}p_c^{1-\alpha} - \alpha\,t_c + (\alpha-1)\,p_c\big]

    ``alpha = 1`` is the generalized KL :math:`\mathrm{KL}(t\|p)` (
    :func:`generalized_kl_divergence`), ``alpha = 0`` the reverse one,
    ``alpha = 0.5`` four times the squared Hellinger distance (for normalized
    inputs); the limits are taken exactly.

    Args:{args}
      alpha: the order, ``>= 0`` (0.5).

    Returns:
      The divergence per example ``[...]``.

    Paper: Cichocki, Amari, "Families of Alpha- Beta- and Gamma- Divergences:
    Flexible and Robust Measures of Similarities", Entropy 2010 (no arXiv).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.log(jnp.array([[0.5, 0.5]]))
      >>> lossjax.losses.alpha_divergence(lp, jnp.array([[0.9, 0.1]]), alpha=0.5).round(4)
      Array([0.4223], dtype=float32)
    """
    fn = "alpha_divergence"
    C.check_positive(fn, "alpha", alpha, allow_zero=True)
    d = _dist_inputs(fn, log_predictions, targets, log_target=log_target, axis=axis, where=where)
    if alpha == 1:
        terms = _xlogx_ratio(d.t, d.lt, d.lp) - d.t + d.p
    elif alpha == 0:
        terms = _xlogx_ratio(d.p, d.lp, d.lt) - d.p + d.t
    else:
        a = jnp.asarray(alpha, d.lp.dtype)
        terms = (_weighted_power_terms(d, alpha) - a * d.t + (a - 1) * d.p) / (a * (a - 1))
    return _finish(d, terms)


alpha_divergence.__doc__ = alpha_divergence.__doc__.replace("{args}", _PROB_ARGS)


@register(
    "renyi_divergence",
    family=FAMILY,
    kind="per_example",
    formula="1/(a-1) log sum_c t_c^a p_c^(1-a);  a=1: KL(t||p), a=0: -log sum_{t_c>0} p_c",
    paper="Renyi Divergence and Kullback-Leibler Divergence (van Erven and Harremoes, 2012, arXiv:1206.2459)",
    reference="closed form (numpy / scipy.special.logsumexp)",
    sample=lambda: _prob_entry_sample(8, variants=({"alpha": 2.0}, {"alpha": 1.0}, {"alpha": 0.0}), support="both"),
)
def renyi_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    *,
    alpha: float = 0.5,
    log_target: bool = False,
    axis: int = -1,
    where: ArrayLike | None = None,
) -> Array:
    r"""Renyi divergence of order ``alpha`` of the targets from the predictions, per example.

    .. math::
        D_\alpha(t\,\|\,p) = \frac{1}{\alpha - 1}\log\sum_c t_c^{\alpha}\,p_c^{1-\alpha}

    computed as a log-sum-exp over the support of ``t``; ``alpha = 1`` is
    :math:`\mathrm{KL}(t\|p)`, ``alpha = 0`` is :math:`-\log\sum_{t_c>0}p_c`
    (exact limits).

    Args:{args}
      alpha: the order, ``>= 0`` (0.5).

    Returns:
      The divergence per example ``[...]``.

    Paper: van Erven, Harremoes, "Renyi Divergence and Kullback-Leibler
    Divergence", IEEE Trans. Inf. Theory 2014, arXiv:1206.2459.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.log(jnp.array([[0.5, 0.5]]))
      >>> round(float(lossjax.losses.renyi_divergence(lp, jnp.array([[0.9, 0.1]]), alpha=2.0)[0]), 4)  # log(0.82 / 0.5)
      0.4947
    """
    fn = "renyi_divergence"
    C.check_positive(fn, "alpha", alpha, allow_zero=True)
    d = _dist_inputs(fn, log_predictions, targets, log_target=log_target, axis=axis, where=where)
    if alpha == 1:
        return _finish(d, _xlogx_ratio(d.t, d.lt, d.lp))
    dtype = d.lp.dtype
    pos = d.t > 0
    if d.keep is not None:
        pos = pos & d.keep
    a = jnp.asarray(alpha, dtype)
    expo = d.lp if alpha == 0 else a * _safe(d.lt, pos) + (1 - a) * _safe(d.lp, pos)
    expo = jnp.where(pos, expo, jnp.asarray(-jnp.inf, dtype))
    any_pos = jnp.any(pos, axis=-1)
    top = jax.lax.stop_gradient(jnp.max(jnp.where(pos, expo, jnp.asarray(-jnp.inf, dtype)), axis=-1, keepdims=True))
    top = jnp.where(jnp.isfinite(top), top, jnp.zeros((), dtype))
    s = jnp.sum(jnp.where(pos, jnp.exp(_safe(expo - top, pos)), jnp.zeros((), dtype)), axis=-1)
    lse = jnp.log(jnp.where(any_pos, s, jnp.ones((), dtype))) + top[..., 0]
    loss = jnp.where(any_pos, lse / (a - 1), jnp.zeros((), dtype))
    return C.zero_masked(loss, d.batch_mask)


renyi_divergence.__doc__ = renyi_divergence.__doc__.replace("{args}", _PROB_ARGS)


# --------------------------------------------------------------------------
# Tsallis entropy.
# --------------------------------------------------------------------------


def _tsallis_sample() -> Sample:
    rng = np.random.default_rng(9)
    return Sample(
        args=((1.5 * rng.normal(size=(6, 4))).astype(np.float32),),
        variants=({"q": 0.5}, {"q": 1.0}),
        class_axis=True,
    )


@register(
    "tsallis_entropy",
    aliases=("tsallis",),
    family=FAMILY,
    kind="per_example",
    formula="sum_c (p_c - p_c^q) / (q - 1),  p = softmax(z)  (q = 1: -sum_c p_c log p_c)",
    paper="Adaptive Debiasing Tsallis Entropy for Test-Time Adaptation (2025, arXiv:2602.11743)",
    reference="closed form (numpy); q = 1 is scipy.stats.entropy",
    sample=_tsallis_sample,
)
def tsallis_entropy(
    logits: ArrayLike,
    *,
    q: float | ArrayLike = 2.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Tsallis entropy of ``softmax(logits)`` (per-class ``q`` for ADTE), per example.

    .. math::
        S_q(p) = \frac{1 - \sum_c p_c^{q}}{q - 1} = \sum_c \frac{p_c - p_c^{q_c}}{q_c - 1},
        \qquad p = \mathrm{softmax}(z)

    ``q -> 1`` is the Shannon entropy :math:`-\sum_c p_c\log p_c` (taken exactly
    where ``q_c = 1``). ``q`` may be a scalar or a per-class vector ``[C]``
    (ADTE's class-specific :math:`q^l`, the right-hand form). ``p_c^q`` is
    ``exp(q log p_c)``: finite gradients at ``p_c = 0`` (``-inf`` logits).
    Used as a test-time-adaptation objective (minimized), like entropy.

    Args:
      logits: ``[..., C]`` unnormalized scores.
      q: the entropic index, ``> 0``: a number (2.0) or an array ``[C]``.
      where: optional boolean mask of the examples ``[...]``.

    Returns:
      The entropy per example ``[...]``.

    Paper: "Adaptive Debiasing Tsallis Entropy for Test-Time Adaptation"
    (ADTE, 2025); Tsallis, "Possible generalization of Boltzmann-Gibbs
    statistics", J. Stat. Phys. 1988.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.zeros((1, 4))  # uniform over 4 classes
      >>> lossjax.losses.tsallis_entropy(z, q=2.0)  # 1 - 4 (1/4)^2
      Array([0.75], dtype=float32)
      >>> lossjax.losses.tsallis_entropy(z, q=1.0).round(4)  # log 4
      Array([1.3863], dtype=float32)
    """
    fn = "tsallis_entropy"
    z = C.check_array(fn, "logits", logits, min_ndim=1, dtype="float")
    dtype = C.compute_dtype(z)
    scalar_q = isinstance(q, (int, float, np.integer, np.floating)) and not isinstance(q, bool)
    if scalar_q or (isinstance(q, jax.core.Tracer) and jnp.ndim(q) == 0):
        C.check_positive(fn, "q", q)
        qa = jnp.asarray(q, dtype)
    else:
        qa = C.check_array(fn, "q", q, ndim=(0, 1), dtype="number").astype(dtype)
        if qa.ndim == 1 and qa.shape[0] != z.shape[-1]:
            raise ValueError(f"{fn}: a per-class `q` must have shape ({z.shape[-1]},), got {qa.shape}.")
        C.debug_check(jnp.all(qa > 0), f"{fn}: `q` must be > 0")
    mask = C.prepare_where(fn, where, z.shape[:-1])
    z = C.fill_masked(C.as_compute(z, dtype), mask)
    lp = jax.nn.log_softmax(z, axis=-1)
    p = jnp.exp(lp)
    pos = p > 0
    shannon = jnp.where(pos, -p * _safe(lp, pos), jnp.zeros((), dtype))
    if scalar_q and q == 1:
        terms = shannon
    else:
        qa = jnp.reshape(qa, (1,) * (z.ndim - qa.ndim) + qa.shape)
        one = qa == 1
        qs = jnp.where(one, jnp.asarray(2.0, dtype), qa)
        tsallis = (p - jnp.exp(qs * lp)) / (qs - 1)
        terms = jnp.where(one, shannon, tsallis)
    return C.zero_masked(jnp.sum(terms, axis=-1), mask)


# --------------------------------------------------------------------------
# Sample-based divergences: point clouds [..., N, D] and [..., M, D].
# --------------------------------------------------------------------------


def _sq_dists(x: Array, y: Array) -> Array:
    """``[..., N, M]`` squared Euclidean distances from one batched matmul, clamped at 0."""
    xx = jnp.sum(jnp.square(x), axis=-1)
    yy = jnp.sum(jnp.square(y), axis=-1)
    xy = jnp.einsum("...nd,...md->...nm", x, y, precision=_HI)
    return jnp.maximum(xx[..., :, None] + yy[..., None, :] - 2 * xy, jnp.zeros((), x.dtype))


def _clouds(fn: str, predictions, targets, where, predictions_where, targets_where):
    x = C.check_array(fn, "predictions", predictions, min_ndim=2, dtype="float")
    y = C.check_array(fn, "targets", targets, min_ndim=2, dtype="float")
    if x.shape[:-2] != y.shape[:-2] or x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"{fn}: `predictions` [..., N, D] and `targets` [..., M, D] must share the batch axes and D, "
            f"got predictions.shape={x.shape} and targets.shape={y.shape}."
        )
    dtype = C.compute_dtype(x, y)
    batch = x.shape[:-2]
    mask = C.prepare_where(fn, where, batch)
    pts = []
    for name, arr, w in (("predictions", x, predictions_where), ("targets", y, targets_where)):
        if w is None:
            valid = jnp.ones(arr.shape[:-1], bool)
        else:
            w = C.check_array(fn, f"{name}_where", w, dtype="bool")
            if w.shape != arr.shape[:-1]:
                raise ValueError(f"{fn}: `{name}_where` must have shape {arr.shape[:-1]}, got {w.shape}.")
            valid = w
        if mask is not None:
            valid = valid & mask[..., None]
        arr = jnp.where(valid[..., None], C.as_compute(arr, dtype), jnp.zeros((), dtype))
        pts.append((arr, valid))
    (x, vx), (y, vy) = pts
    nx = jnp.sum(vx, axis=-1)
    ny = jnp.sum(vy, axis=-1)
    ok = (nx > 0) & (ny > 0)
    if mask is not None:
        ok = ok & mask
    # A cloud without valid points gets uniform weights on its (filled) points: finite, then zeroed.
    vx = jnp.where(ok[..., None], vx, True)
    vy = jnp.where(ok[..., None], vy, True)
    return x, vx, y, vy, ok, dtype


def _log_weights(valid: Array, dtype) -> Array:
    n = jnp.sum(valid, axis=-1, keepdims=True).astype(dtype)
    return jnp.where(valid, -jnp.log(jnp.maximum(n, jnp.ones((), dtype))), jnp.asarray(-jnp.inf, dtype))


def _entropic_ot(la: Array, lb: Array, cost: Array, eps: float, num_iterations: int) -> Array:
    """Regularized OT cost by log-domain Sinkhorn: ``<a, f> + <b, g>`` after ``num_iterations`` (f, g) updates."""
    dtype = cost.dtype
    e = jnp.asarray(eps, dtype)
    f = jnp.zeros(la.shape, dtype)
    g = jnp.zeros(lb.shape, dtype)

    def lse(x, axis):
        return jax.nn.logsumexp(x, axis=axis)

    def step(carry, _):
        f, g = carry
        f = -e * lse(lb[..., None, :] + (g[..., None, :] - cost) / e, axis=-1)
        g = -e * lse(la[..., :, None] + (f[..., :, None] - cost) / e, axis=-2)
        return (f, g), None

    (f, g), _ = jax.lax.scan(step, (f, g), None, length=num_iterations)
    fa = jnp.where(jnp.isfinite(la), jnp.exp(la) * f, jnp.zeros((), dtype))
    gb = jnp.where(jnp.isfinite(lb), jnp.exp(lb) * g, jnp.zeros((), dtype))
    return jnp.sum(fa, axis=-1) + jnp.sum(gb, axis=-1)


def _clouds_sample(seed: int, b: int = 3, n: int = 4, m: int = 5, d: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(b, n, d))
    y = rng.normal(size=(b, m, d)) * 0.8 + 0.5
    return x.astype(np.float32), y.astype(np.float32)


def _sinkhorn_sample() -> Sample:
    x, y = _clouds_sample(10)
    return Sample(
        args=(x, y),
        kwargs={"regularization": 0.5, "num_iterations": 30},
        diff_argnums=(0, 1),
        extremes=((x * 30.0, y * 30.0), (np.zeros_like(x), np.zeros_like(y)), (x, np.concatenate([x, x[:, :1]], 1))),
        variants=({"regularization": 2.0, "num_iterations": 10},),
    )


@register(
    "sinkhorn_divergence",
    aliases=("debiased_sinkhorn",),
    family=FAMILY,
    kind="per_example",
    formula="OT_e(a, b) - OT_e(a, a)/2 - OT_e(b, b)/2,  OT_e = <a, f> + <b, g> after K log-domain Sinkhorn steps, "
    "cost |x - y|^2",
    paper="Interpolating between Optimal Transport and MMD using Sinkhorn Divergences (2018, arXiv:1810.08278)",
    reference="float64 numpy/torch port of the same fixed-count log-domain Sinkhorn (ott-jax "
    "tools/sinkhorn_divergence.py's debiasing); converged values vs the entropic OT dual (test)",
    sample=_sinkhorn_sample,
)
def sinkhorn_divergence(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    regularization: float = 0.1,
    num_iterations: int = 100,
    predictions_where: ArrayLike | None = None,
    targets_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Debiased Sinkhorn divergence between point clouds (uniform weights), batched over leading axes.

    .. math::
        S_\varepsilon(\alpha,\beta) = \mathrm{OT}_\varepsilon(\alpha,\beta)
        - \tfrac12\mathrm{OT}_\varepsilon(\alpha,\alpha) - \tfrac12\mathrm{OT}_\varepsilon(\beta,\beta)

    .. math::
        f_i \leftarrow -\varepsilon\log\sum_j b_j e^{(g_j - C_{ij})/\varepsilon},\quad
        g_j \leftarrow -\varepsilon\log\sum_i a_i e^{(f_i - C_{ij})/\varepsilon},\quad
        \mathrm{OT}_\varepsilon = \langle a, f\rangle + \langle b, g\rangle

    with :math:`C_{ij} = \|x_i - y_j\|^2`, ``f = g = 0`` initially and a fixed
    number of (f, g) updates in the log domain (stable for small
    :math:`\varepsilon`; ``jit``/``grad`` differentiate the unrolled
    iterations). After the last ``g`` update the second marginal is exact, so
    :math:`\langle a,f\rangle + \langle b,g\rangle` is the entropic dual
    objective, :math:`\langle P, C\rangle + \varepsilon\,\mathrm{KL}(P\,\|\,a\otimes b)`
    at convergence (ott-jax's ``reg_ot_cost``). ``a``, ``b`` are uniform over
    the valid points of each cloud.

    Args:
      predictions: ``[..., N, D]`` points of the first cloud (e.g. a model's samples or features).
      targets: ``[..., M, D]`` points of the second cloud.
      regularization: :math:`\varepsilon > 0`, in the cost's units (0.1; tune to ~5% of the typical cost).
      num_iterations: Sinkhorn (f, g) updates per OT problem (100).
      predictions_where: optional ``[..., N]`` mask of valid points (padding elsewhere).
      targets_where: optional ``[..., M]`` mask of valid points.
      where: optional mask of the batch ``[...]``: masked clouds give 0.

    Returns:
      The divergence per batch entry ``[...]`` (a scalar for single clouds).

    Paper: Feydy, Sejourne, Vialard, Amari, Trouve, Peyre, "Interpolating
    between Optimal Transport and MMD using Sinkhorn Divergences", AISTATS 2019,
    arXiv:1810.08278.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[0.0, 0.0], [1.0, 0.0]])
      >>> float(lossjax.losses.sinkhorn_divergence(x, x))  # identical clouds: 0
      0.0
      >>> lossjax.losses.sinkhorn_divergence(x, x + 1.0, regularization=0.05).round(2)  # ~ W2^2 = 1
      Array(1., dtype=float32)
    """
    fn = "sinkhorn_divergence"
    C.check_positive(fn, "regularization", regularization)
    C.check_int(fn, "num_iterations", num_iterations, 1, static=True)
    x, vx, y, vy, ok, dtype = _clouds(fn, predictions, targets, where, predictions_where, targets_where)
    la, lb = _log_weights(vx, dtype), _log_weights(vy, dtype)
    eps, k = regularization, int(num_iterations)
    ab = _entropic_ot(la, lb, _sq_dists(x, y), eps, k)
    aa = _entropic_ot(la, la, _sq_dists(x, x), eps, k)
    bb = _entropic_ot(lb, lb, _sq_dists(y, y), eps, k)
    out = ab - 0.5 * aa - 0.5 * bb
    return jnp.where(ok, out, jnp.zeros((), dtype))


def _cs_sample() -> Sample:
    x, y = _clouds_sample(11)
    return Sample(
        args=(x, y),
        diff_argnums=(0, 1),
        extremes=((x * 30.0, y * 30.0), (np.zeros_like(x), np.zeros_like(y))),
        variants=({"bandwidth": 0.5},),
    )


@register(
    "cauchy_schwarz_divergence",
    aliases=("cs_divergence",),
    family=FAMILY,
    kind="per_example",
    formula="log sum K(x, x') + log sum K(y, y') - 2 log sum K(x, y),  K = exp(-|u - v|^2 / (2 sigma^2))",
    paper="Cauchy-Schwarz Divergence Information Bottleneck for Regression (2024, arXiv:2404.17951)",
    reference="SJYuCNEL/Cauchy-Schwarz-Information-Bottleneck@ee3142f Two_Gaussian_example/cs_two_gaussian.py::"
    "CauchySchwarzLoss + compute_kernel (torch port, float64)",
    sample=_cs_sample,
)
def cauchy_schwarz_divergence(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    bandwidth: float = 1.0,
    predictions_where: ArrayLike | None = None,
    targets_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Cauchy-Schwarz divergence between two samples (Gaussian-kernel density estimates), batched.

    .. math::
        D_{CS}(p\,\|\,q) = -\log\frac{\big(\int pq\big)^2}{\int p^2\int q^2}
        \approx \log\sum_{ii'}K(x_i,x_{i'}) + \log\sum_{jj'}K(y_j,y_{j'}) - 2\log\sum_{ij}K(x_i,y_j)

    :math:`K(u,v) = e^{-\|u-v\|^2/(2\sigma^2)}`; the sample-size and kernel
    normalizations cancel. Each sum is a log-sum-exp of kernel logits (no
    underflow for distant clouds). Non-negative, 0 for identical samples.

    Args:
      predictions: ``[..., N, D]`` samples of the first distribution.
      targets: ``[..., M, D]`` samples of the second.
      bandwidth: the kernel width :math:`\sigma > 0` (1.0).
      predictions_where: optional ``[..., N]`` mask of valid points.
      targets_where: optional ``[..., M]`` mask of valid points.
      where: optional mask of the batch ``[...]``.

    Returns:
      The divergence per batch entry ``[...]`` (a scalar for single samples).

    Paper: Yu, Yu, Lokse, Jenssen, Principe, "Cauchy-Schwarz Divergence
    Information Bottleneck for Regression", ICLR 2024, arXiv:2404.17951.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[0.0], [1.0]])
      >>> float(lossjax.losses.cauchy_schwarz_divergence(x, x))
      0.0
    """
    fn = "cauchy_schwarz_divergence"
    C.check_positive(fn, "bandwidth", bandwidth)
    x, vx, y, vy, ok, dtype = _clouds(fn, predictions, targets, where, predictions_where, targets_where)
    inv = jnp.asarray(1.0 / (2.0 * bandwidth**2), dtype)

    def log_sum_kernel(u, vu, v, vv):
        logits = -_sq_dists(u, v) * inv
        pair = vu[..., :, None] & vv[..., None, :]
        logits = jnp.where(pair, logits, jnp.asarray(-jnp.inf, dtype))
        return jax.nn.logsumexp(logits, axis=(-2, -1))

    out = log_sum_kernel(x, vx, x, vx) + log_sum_kernel(y, vy, y, vy) - 2 * log_sum_kernel(x, vx, y, vy)
    return jnp.where(ok, out, jnp.zeros((), dtype))


# --------------------------------------------------------------------------
# Bures-Wasserstein distance between covariances.
# --------------------------------------------------------------------------


def _sym(a: Array) -> Array:
    return 0.5 * (a + jnp.swapaxes(a, -1, -2))


def _mm(a: Array, b: Array) -> Array:
    return jnp.matmul(a, b, precision=_HI)


@jax.custom_jvp
def _psd_sqrt(a: Array) -> Array:
    w, v = jnp.linalg.eigh(a)
    s = jnp.sqrt(jnp.maximum(w, jnp.zeros((), w.dtype)))
    return _mm(v * s[..., None, :], jnp.swapaxes(v, -1, -2))


@_psd_sqrt.defjvp
def _psd_sqrt_jvp(primals, tangents):
    # Daleckii-Krein: d sqrt(A) = V (G o (V^T dA V)) V^T with the divided differences of sqrt,
    # G_ij = 1 / (s_i + s_j): exact at repeated eigenvalues (no 1 / (w_i - w_j) blow-up).
    (a,), (da,) = primals, tangents
    w, v = jnp.linalg.eigh(a)
    s = jnp.sqrt(jnp.maximum(w, jnp.zeros((), w.dtype)))
    vt = jnp.swapaxes(v, -1, -2)
    out = _mm(v * s[..., None, :], vt)
    den = s[..., :, None] + s[..., None, :]
    pos = den > 0
    g = jnp.where(pos, 1.0 / jnp.where(pos, den, jnp.ones((), den.dtype)), jnp.zeros((), den.dtype))
    dout = _mm(_mm(v, g * _mm(_mm(vt, _sym(da)), v)), vt)
    return out, dout


def _bw_sample() -> Sample:
    rng = np.random.default_rng(12)
    a = rng.normal(size=(3, 3, 3))
    b = rng.normal(size=(3, 3, 3))
    sa = (a @ np.swapaxes(a, -1, -2) + 0.3 * np.eye(3)).astype(np.float32)
    sb = (b @ np.swapaxes(b, -1, -2) + 0.3 * np.eye(3)).astype(np.float32)
    eye = np.broadcast_to(np.eye(3, dtype=np.float32), sa.shape).copy()
    diag = np.broadcast_to(np.diag(np.array([4.0, 1.0, 0.25], np.float32)), sa.shape).copy()
    return Sample(
        args=(sa, sb),
        diff_argnums=(0, 1),
        extremes=((eye, eye), (eye * 1e4, diag * 1e4), (eye, diag), (sa, sa)),
        variants=({"squared": False},),
        fuzz_scaled=(),  # covariances: rescaling by 1e-6 makes them singular at float32 precision
        grad_eps=1e-5,
    )


@register(
    "bures_wasserstein_distance",
    aliases=("bures_wasserstein",),
    family=FAMILY,
    kind="per_example",
    formula="tr A + tr B - 2 tr (A^1/2 B A^1/2)^1/2  (squared=False: its square root)",
    paper="Critical Points and Convergence Analysis of Generative Deep Linear Networks Trained with "
    "Bures-Wasserstein Loss (2023, arXiv:2303.03027)",
    reference="closed form with scipy.linalg.sqrtm (float64); gradients by central differences",
    sample=_bw_sample,
)
def bures_wasserstein_distance(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    squared: bool = True,
    where: ArrayLike | None = None,
) -> Array:
    r"""Bures-Wasserstein distance between covariance matrices (Gaussian W2 at equal means), batched.

    .. math::
        \mathrm{BW}^2(\Sigma_1, \Sigma_2) = \mathrm{tr}\,\Sigma_1 + \mathrm{tr}\,\Sigma_2
        - 2\,\mathrm{tr}\big(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2}\big)^{1/2}

    The loss of the paper is :math:`\mathrm{BW}^2` (the default);
    ``squared=False`` returns BW. Inputs are symmetrized (``(S + S^T)/2``,
    so the gradient is symmetric) and their negative eigenvalues (rounding)
    clamped to 0. Matrix square roots come from ``eigh`` with a custom
    derivative (Daleckii-Krein divided differences ``1/(s_i + s_j)``), exact
    and finite at repeated eigenvalues (e.g. identity covariances); it is
    infinite only where both eigenvalues are 0 (rank-deficient inputs, the
    paper's blow-up), where this gives the subgradient 0 for that block.

    Args:
      predictions: ``[..., D, D]`` symmetric PSD matrices (e.g. a model's covariance).
      targets: ``[..., D, D]`` symmetric PSD matrices.
      squared: return :math:`\mathrm{BW}^2` (True) or :math:`\mathrm{BW}`.
      where: optional mask of the batch ``[...]``.

    Returns:
      The (squared) distance per batch entry ``[...]``.

    Paper: Brechet, Papagiannouli, An, Montufar, "Critical Points and
    Convergence Analysis of Generative Deep Linear Networks Trained with
    Bures-Wasserstein Loss", ICML 2023, arXiv:2303.03027.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> a, b = jnp.diag(jnp.array([4.0, 1.0])), jnp.diag(jnp.array([1.0, 1.0]))
      >>> lossjax.losses.bures_wasserstein_distance(a, b)  # (2 - 1)^2 + (1 - 1)^2
      Array(1., dtype=float32)
    """
    fn = "bures_wasserstein_distance"
    a = C.check_array(fn, "predictions", predictions, min_ndim=2, dtype="float")
    b = C.check_array(fn, "targets", targets, min_ndim=2, dtype="float")
    if a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{fn}: `predictions` must be square matrices [..., D, D], got shape {a.shape}.")
    C.check_same_shape(fn, ("predictions", "targets"), a, b)
    dtype = C.compute_dtype(a, b)
    mask = C.prepare_where(fn, where, a.shape[:-2])
    eye = jnp.eye(a.shape[-1], dtype=dtype)
    a = _sym(C.fill_masked(C.as_compute(a, dtype), mask, 0.0))
    b = _sym(C.fill_masked(C.as_compute(b, dtype), mask, 0.0))
    if mask is not None:  # masked entries: identity vs identity (distance 0, finite gradient)
        a = jnp.where(mask[..., None, None], a, eye)
        b = jnp.where(mask[..., None, None], b, eye)
    ra = _psd_sqrt(a)
    cross = jnp.trace(_psd_sqrt(_sym(_mm(_mm(ra, b), ra))), axis1=-2, axis2=-1)
    sq = jnp.trace(a, axis1=-2, axis2=-1) + jnp.trace(b, axis1=-2, axis2=-1) - 2 * cross
    sq = jnp.maximum(sq, jnp.zeros((), dtype))
    out = sq if squared else C.safe_sqrt(sq)
    return C.zero_masked(out, mask)


# --------------------------------------------------------------------------
# MINE.
# --------------------------------------------------------------------------


class MINEState(NamedTuple):
    """MINE's running estimate of ``E[exp(T)]`` on the marginal samples, in the log domain.

    Attributes:
      log_running_mean: scalar log of the exponential moving average of
        ``mean_i exp(T(x_i, z~_i))`` (the reference's ``running_mean``, whose
        exponentials overflow float32 for critic values past ~88); ``-inf``
        (a running mean of 0) means "not yet initialized": the first batch sets
        it, as in the reference.
    """

    log_running_mean: Array

    @classmethod
    def initial(cls, dtype=jnp.float32) -> MINEState:
        """The reference's initial buffer: a running mean of 0 (``-inf`` in the log domain)."""
        return cls(jnp.asarray(-jnp.inf, dtype))


_MINE_VARIANTS = ("mine", "mine_f", "mine_biased")


def _mine_sample() -> Sample:
    rng = np.random.default_rng(13)
    joint = (rng.normal(size=(8,)) + 1.0).astype(np.float32)
    marginal = rng.normal(size=(8,)).astype(np.float32)
    return Sample(
        args=(joint, marginal),
        kwargs={"state": MINEState(np.float32(0.5))},
        diff_argnums=(0, 1),
        surrogate_grad=True,  # MINE's corrected gradient divides by the running mean, not the batch mean
        # exp(T) of critic values past ~88 overflows float32 (mine_f's value is then inf): extremes of +-50.
        extremes=((joint * 50.0, marginal * -50.0), (np.zeros_like(joint), np.zeros_like(marginal))),
        variants=(
            {"state": MINEState(np.float32(-np.inf))},
            {"variant": "mine_f"},
            {"variant": "mine_biased"},
            {"decay": 0.5},
        ),
    )


@register(
    "mine_lower_bound",
    aliases=("mine",),
    family=FAMILY,
    kind="batch",
    formula="-(mean_i T_joint - log mean_i exp(T_marginal)); grad of the log term uses the EMA of mean exp(T) "
    "(variant 'mine_f': -(mean T - mean exp(T - 1)))",
    paper="MINE: Mutual Information Neural Estimation (2018, arXiv:1801.04062)",
    reference="gtegner/mine-pytorch@4335819 mine/models/mine.py::Mine.forward, ema_loss, EMALoss (torch port)",
    sample=_mine_sample,
    runtime=("state", "axis_name"),
    has_aux=True,
    allow_nonfinite=("state",),  # the initial state's log running mean is -inf (a running mean of 0)
)
def mine_lower_bound(
    joint_scores: ArrayLike,
    marginal_scores: ArrayLike,
    *,
    state: MINEState | None = None,
    variant: str = "mine",
    decay: float = 0.99,
    epsilon: float = 1e-6,
    axis_name=None,
    where: ArrayLike | None = None,
) -> tuple[Array, MINEState]:
    r"""MINE: the negated Donsker-Varadhan bound on mutual information, with the bias-corrected gradient.

    .. math::
        \mathcal L = -\Big(\frac1N\sum_i T_i - \log\frac1N\sum_i e^{\tilde T_i}\Big),
        \qquad \nabla\log\frac1N\sum_i e^{\tilde T_i} \;\to\;
        \frac{\frac1N\sum_i e^{\tilde T_i}\nabla\tilde T_i}{\bar m + \epsilon}

    :math:`T_i = T(x_i, z_i)` on joint samples, :math:`\tilde T_i =
    T(x_i, \tilde z_i)` on marginal ones (``z`` shuffled in the batch: the
    caller draws the permutation). The value is the bound; for
    ``variant="mine"`` the gradient of the log term divides by the moving
    average :math:`\bar m \leftarrow \mathrm{decay}\,\bar m + (1-\mathrm{decay})
    \frac1N\sum_i e^{\tilde T_i}` (updated with this batch first; the first
    batch, a running mean of 0, initializes it; kept in the log domain in
    :class:`MINEState`), MINE's correction of the
    minibatch bias. ``"mine_biased"`` uses the plain gradient;
    ``"mine_f"`` is the f-divergence bound :math:`-(\frac1N\sum T_i -
    \frac1N\sum e^{\tilde T_i - 1})`. With ``axis_name`` every mean is over
    the global batch. Minimizing the loss maximizes the MI estimate.

    Args:
      joint_scores: ``[N]`` critic outputs on joint samples.
      marginal_scores: ``[N]`` critic outputs on product-of-marginals samples.
      state: :class:`MINEState` (``None``: the initial, uninitialized state).
      variant: ``"mine"`` (bias-corrected), ``"mine_biased"`` or ``"mine_f"``.
      decay: the moving-average decay (0.99: the reference's ``alpha = 0.01``).
      epsilon: added to the running mean in the corrected gradient's denominator (1e-6).
      axis_name: mapped axis name(s) when the batch is sharded across devices.
      where: optional ``[N]`` mask of valid rows (both inputs).

    Returns:
      ``(loss, new_state)``: the scalar negated bound and the updated state
      (unchanged for ``mine_f`` / ``mine_biased`` and for an all-masked batch).

    Paper: Belghazi, Baratin, Rajeswar, Ozair, Bengio, Courville, Hjelm, "MINE:
    Mutual Information Neural Estimation", ICML 2018, arXiv:1801.04062.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> t, tm = jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0])
      >>> loss, state = lossjax.losses.mine_lower_bound(t, tm)
      >>> float(loss), float(state.log_running_mean)  # -(1.5 - log 1); the first batch sets the EMA
      (-1.5, 0.0)
    """
    fn = "mine_lower_bound"
    C.check_one_of(fn, "variant", variant, _MINE_VARIANTS)
    C.check_in_range(fn, "decay", decay, 0.0, 1.0)
    C.check_positive(fn, "epsilon", epsilon, allow_zero=True)
    tj = C.check_array(fn, "joint_scores", joint_scores, ndim=1, dtype="float")
    tm = C.check_array(fn, "marginal_scores", marginal_scores, ndim=1, dtype="float")
    C.check_same_shape(fn, ("joint_scores", "marginal_scores"), tj, tm)
    dtype = C.compute_dtype(tj, tm)
    if state is None:
        state = MINEState.initial(dtype)
    if not isinstance(state, MINEState):
        if isinstance(state, tuple) and len(state) == 1:
            state = MINEState(*state)
        else:
            raise TypeError(f"{fn}: `state` must be a MINEState (log_running_mean,), got {type(state).__name__}.")
    old = C.check_array(fn, "state.log_running_mean", state.log_running_mean, ndim=0, dtype="float").astype(dtype)
    mask = C.prepare_where(fn, where, tj.shape)
    vf = jnp.ones(tj.shape, dtype) if mask is None else mask.astype(dtype)
    tj = C.fill_masked(C.as_compute(tj, dtype), mask)
    tm = C.fill_masked(C.as_compute(tm, dtype), mask)
    n = psum(jnp.sum(vf), axis_name)
    has = n > 0
    inv_n = 1.0 / jnp.maximum(n, jnp.ones((), dtype))
    first = psum(jnp.sum(vf * tj), axis_name) * inv_n
    if variant == "mine_f":
        second = psum(jnp.sum(vf * jnp.exp(tm - 1)), axis_name) * inv_n
        return jnp.where(has, second - first, jnp.zeros((), dtype)), MINEState(old)
    # log mean exp over the valid (global) rows, shifted by the global max.
    neg = jnp.asarray(-jnp.inf, dtype)
    top = jax.lax.stop_gradient(jnp.max(jnp.where(vf > 0, tm, neg), initial=neg))
    if axis_name is not None:
        top = jax.lax.pmax(top, axis_name)
    top = jnp.where(jnp.isfinite(top), top, jnp.zeros((), dtype))
    s = psum(jnp.sum(vf * jnp.exp(tm - top)), axis_name)
    log_mean = jnp.log(jnp.where(has, s, jnp.ones((), dtype))) + top + jnp.log(inv_n)
    if variant == "mine_biased":
        return jnp.where(has, log_mean - first, jnp.zeros((), dtype)), MINEState(old)
    log_t = jax.lax.stop_gradient(log_mean)
    # new = decay * old + (1 - decay) * mean exp(T~), in the log domain; the first batch initializes it.
    k = jnp.asarray(decay, dtype)
    log_k, log_1k = jnp.log(k), jnp.log1p(-k)
    new = jnp.where(jnp.isneginf(old), log_t, jnp.logaddexp(log_k + old, log_1k + log_t))
    new = jax.lax.stop_gradient(jnp.where(has, new, old))
    # The value is log_mean; the gradient w.r.t. T~_i is exp(T~_i) / (running + epsilon) / N (the reference's EMALoss).
    log_den = new if epsilon == 0 else jnp.logaddexp(new, jnp.asarray(math.log(epsilon), dtype))
    w = jax.lax.stop_gradient(jnp.exp(tm - log_den))
    surrogate = psum(jnp.sum(vf * w * tm), axis_name) * inv_n
    second = jax.lax.stop_gradient(log_mean - surrogate) + surrogate
    return jnp.where(has, second - first, jnp.zeros((), dtype)), MINEState(new)


# --------------------------------------------------------------------------
# Losses built on a divergence.
# --------------------------------------------------------------------------


def _is_sample() -> Sample:
    rng = np.random.default_rng(14)
    v = rng.normal(size=(6,)).astype(np.float32)
    g = (v + 0.8 * rng.normal(size=(6,))).astype(np.float32)
    return Sample(
        args=(v, g),
        diff_argnums=(0,),
        extremes=((g, g), (g - 1e4, g), (g + 20.0, g)),
        variants=({"risk_aversion": 0.3},),
        fuzz_scaled=(),  # exp(risk_aversion * (V - G)) overflows past ~88: the exponential utility itself
    )


@register(
    "itakura_saito_value_loss",
    aliases=("itakura_saito_loss",),
    family=FAMILY,
    kind="per_example",
    formula="exp(u) - u - 1,  u = risk_aversion (V - G)  (Itakura-Saito divergence of exp(-b G) from exp(-b V))",
    paper="Risk-Averse Reinforcement Learning with Itakura-Saito Loss (2025, arXiv:2505.16925)",
    reference="closed form (numpy; the Itakura-Saito divergence a/b - log(a/b) - 1 of the exponential utilities)",
    sample=_is_sample,
)
def itakura_saito_value_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    risk_aversion: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Itakura-Saito loss for risk-averse value learning with an exponential utility, element-wise.

    .. math::
        D_{IS}(a\,\|\,b) = \frac ab - \log\frac ab - 1 = e^{u} - u - 1,\qquad
        a = e^{-\beta G},\ b = e^{-\beta V},\ u = \log a - \log b = \beta\,(V - G)

    computed as ``expm1(u) - u`` (no exponentials of the utilities
    themselves, exact near ``u = 0`` where it behaves as ``u^2 / 2``).
    Non-negative, 0 iff ``V = G``; its minimizer over ``V`` is the certainty
    equivalent :math:`-\frac1\beta\log\mathbb E[e^{-\beta G}]`.

    Args:
      predictions: value estimates ``V`` (any shape).
      targets: returns / bootstrapped targets ``G`` (the shape of ``predictions``).
      risk_aversion: :math:`\beta > 0` (1.0).
      where: optional mask along the leading axes.

    Returns:
      The loss per element (the shape of ``predictions``).

    Paper: "Risk-Averse Reinforcement Learning with Itakura-Saito Loss" (2025, arXiv:2505.16925).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.itakura_saito_value_loss(jnp.array([1.0, 0.0]), jnp.array([1.0, 1.0])).round(4)
      Array([0.    , 0.3679], dtype=float32)
    """
    fn = "itakura_saito_value_loss"
    C.check_positive(fn, "risk_aversion", risk_aversion)
    v = C.check_array(fn, "predictions", predictions, dtype="float")
    g = C.check_array(fn, "targets", targets, dtype="float")
    C.check_same_shape(fn, ("predictions", "targets"), v, g)
    dtype = C.compute_dtype(v, g)
    mask = C.prepare_where(fn, where, v.shape)
    v = C.fill_masked(C.as_compute(v, dtype), mask)
    g = C.fill_masked(C.as_compute(g, dtype), mask)
    u = jnp.asarray(risk_aversion, dtype) * (v - g)
    return C.zero_masked(jnp.expm1(u) - u, mask)


def _bfn_sample() -> Sample:
    rng = np.random.default_rng(15)
    x = rng.normal(size=(6, 3)).astype(np.float32)
    xhat = (x + 0.3 * rng.normal(size=(6, 3))).astype(np.float32)
    times = rng.uniform(0.0, 1.0, size=(6,)).astype(np.float32)
    return Sample(
        args=(xhat, x, times),
        diff_argnums=(0,),
        variants=({"sigma_1": 0.02},),
        fuzz_scaled=(0,),
    )


@register(
    "bayesian_flow_loss",
    aliases=("bfn_continuous_time_loss",),
    family=FAMILY,
    kind="per_example",
    formula="-log(sigma_1) sigma_1^(-2 t) sum_d (x_d - xhat_d)^2",
    paper="Bayesian Flow Networks (2023, arXiv:2308.07037)",
    reference="nnaisense/bayesian-flow-networks@834d896 model.py::CtsBayesianFlowLoss.cts_time_loss "
    "(torch port; summed over the data dimensions)",
    sample=_bfn_sample,
)
def bayesian_flow_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    times: ArrayLike,
    *,
    sigma_1: float = 0.001,
    where: ArrayLike | None = None,
) -> Array:
    r"""Continuous-time loss of a Bayesian Flow Network on continuous data, per example.

    .. math:: L^\infty(x) = -\ln\sigma_1\;\sigma_1^{-2t}\,\|x - \hat x(\theta, t)\|^2

    the KL rate between sender and receiver distributions at time ``t``
    (sample ``t ~ U(0, 1)`` per example). Summed over the data dimensions
    (the reference returns it per element, ``C * mse / sigma_1^(2t)`` with
    ``C = -ln sigma_1 = -0.5 ln min_variance``). :math:`\sigma_1^{-2t}` is
    computed as ``exp(-2 t ln sigma_1)``.

    Args:
      predictions: the network's reconstruction :math:`\hat x` ``[B, ...]``.
      targets: the data ``x`` ``[B, ...]``.
      times: ``t`` in ``[0, 1]``, shape ``[B]`` (one time per example).
      sigma_1: the final standard deviation :math:`\sigma_1 \in (0, 1)` (0.001; the reference's
        ``min_variance`` is :math:`\sigma_1^2`).
      where: optional ``[B]`` mask.

    Returns:
      The loss per example ``[B]``.

    Paper: Graves, Srivastava, Atkinson, Gomez, "Bayesian Flow Networks", 2023, arXiv:2308.07037.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.zeros((1, 2))
      >>> lossjax.losses.bayesian_flow_loss(x + 1.0, x, jnp.array([0.0]), sigma_1=0.1).round(4)  # ln(10) * 2
      Array([4.6052], dtype=float32)
    """
    fn = "bayesian_flow_loss"
    C.check_in_range(fn, "sigma_1", sigma_1, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    xhat = C.check_array(fn, "predictions", predictions, min_ndim=1, dtype="float")
    x = C.check_array(fn, "targets", targets, min_ndim=1, dtype="float")
    C.check_same_shape(fn, ("predictions", "targets"), xhat, x)
    t = C.check_array(fn, "times", times, ndim=1, dtype="float")
    if t.shape[0] != x.shape[0]:
        raise ValueError(f"{fn}: `times` must have shape ({x.shape[0]},) (one per example), got {t.shape}.")
    dtype = C.compute_dtype(xhat, x, t)
    mask = C.prepare_where(fn, where, x.shape[:1])
    xhat = C.fill_masked(C.as_compute(xhat, dtype), mask)
    x = C.fill_masked(C.as_compute(x, dtype), mask)
    t = C.fill_masked(C.as_compute(t, dtype), mask)
    log_s = math.log(sigma_1)
    sq = jnp.sum(jnp.square(x - xhat).reshape(x.shape[0], -1), axis=-1)
    loss = jnp.asarray(-log_s, dtype) * jnp.exp(jnp.asarray(-2.0 * log_s, dtype) * t) * sq
    return C.zero_masked(loss, mask)
