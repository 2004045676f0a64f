"""Imbalance / long-tail losses: class-balanced weights and margin-adjusted cross-entropies.

LDAM, logit adjustment, balanced softmax and the VS loss are one operation:
a cross-entropy on per-class adjusted logits

.. math:: \\tilde z = s\\,(\\Delta \\odot z + \\iota - m \\odot q)

(multiplicative scale ``Delta``, additive offset ``iota``, a margin ``m``
subtracted from the target logit, a global scale ``s``). They all go through
:func:`_adjusted_cross_entropy`. Class counts/priors are keyword arrays
``[C]`` (constants: no gradient flows into them). Empty classes (count 0) are
handled explicitly in every recipe (see each docstring).

The asymmetric losses (ASL) handle the positive/negative imbalance of
multi-label problems.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax import _elementwise
from lossjax._elementwise import static_numbers
from lossjax._targets import binary_terms, check_logits, class_terms, labels_in_range, smoothed_class_targets
from lossjax.registry import Sample, register

__all__ = [
    "asymmetric_loss",
    "asymmetric_single_label_loss",
    "balanced_softmax_cross_entropy",
    "class_balanced_weights",
    "classification_aux_for_regression",
    "integrated_risk_loss",
    "ldam_loss",
    "logit_adjusted_cross_entropy",
    "vs_loss",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

FAMILY = "imbalance"

_COUNTS = np.array([40, 20, 8, 2], np.int32)


# ------------------------------- helpers ----------------------------------


def _per_class(fn: str, arg: str, values: ArrayLike, num_classes: int, dtype) -> Array:
    """A per-class constant ``[C]`` (counts, priors) checked and cast to ``dtype``."""
    v = C.check_array(fn, arg, values, shape=(num_classes,), dtype="number")
    v = jax.lax.stop_gradient(v.astype(dtype))
    C.debug_check(jnp.all(v >= 0), f"{fn}: `{arg}` must be >= 0")
    return v


def _bcast(v: Array, ndim: int) -> Array:
    """A ``[C]`` vector reshaped to broadcast against ``[..., C]`` (explicit rank)."""
    return jnp.reshape(v, (1,) * (ndim - 1) + v.shape)


def _log_priors(counts: Array, epsilon: float) -> Array:
    """``log(max(n_c / sum(n), epsilon))``: class log-priors from counts or priors."""
    total = jnp.sum(counts)
    priors = counts / jnp.where(total > 0, total, jnp.ones((), total.dtype))
    return jnp.log(jnp.maximum(priors, C.const(epsilon, priors)))


def _adjusted_cross_entropy(
    fn: str,
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    scale: float = 1.0,
    multiplier: Array | None = None,
    offset: Array | None = None,
    target_margin: Array | None = None,
    class_weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    """Cross-entropy on ``s * (multiplier * z + offset - target_margin * q)`` (the shared core).

    ``multiplier``, ``offset`` and ``target_margin`` are ``[C]`` constants in the
    compute dtype (or None); ``q`` is the target distribution (one-hot for integer
    labels). ``class_weights`` weighs each class of the target as in
    ``softmax_cross_entropy(class_weights=...)``.
    """
    z, q, mask, dtype = class_terms(fn, logits, labels, where, min_classes=2)
    if multiplier is None:
        # Shift invariance: subtract the largest raw logit first, so that the offsets and margins
        # (O(1)) are added to O(1) numbers, not rounded away at |z| ~ 1e4 (or scale * 1e4).
        z = z - jax.lax.stop_gradient(jnp.max(z, axis=-1, keepdims=True))
    else:
        z = z * _bcast(multiplier, z.ndim)
    if offset is not None:
        z = z + _bcast(offset, z.ndim)
    if target_margin is not None:
        z = z - q * _bcast(target_margin, z.ndim)
    if not (isinstance(scale, (int, float)) and scale == 1.0):
        z = z * jnp.asarray(scale, dtype)
    weights = None
    if class_weights is not None:
        weights = C.check_array(fn, "class_weights", class_weights, shape=(logits.shape[-1],), dtype="number")
        weights = weights.astype(dtype)
    # Everything relative to the largest adjusted logit m: log sum exp(z - m) - (z_y - m) keeps its
    # precision when the logits are large (scale * z ~ 1e5), where lse(z) - z_y would cancel.
    z = z - jax.lax.stop_gradient(jnp.max(z, axis=-1, keepdims=True))
    lse = jnp.log(jnp.sum(jnp.exp(z), axis=-1))
    if C.has_integer_labels(fn, logits, labels):
        # lse(z) - z_y with the target logit gathered: on CPU this keeps XLA from
        # materializing the [..., C] adjusted logits (it fuses into the one reduction).
        # An out-of-range label (unmasked) gives NaN, as JAX's out-of-bounds gather does.
        labels = jnp.asarray(labels)
        ok = labels_in_range(labels, logits.shape[-1], mask)
        safe = jnp.clip(labels, 0, logits.shape[-1] - 1)
        loss = lse - jnp.take_along_axis(z, safe[..., None], axis=-1)[..., 0]
        if weights is not None:
            loss = loss * weights[safe]
        loss = jnp.where(ok, loss, jnp.asarray(jnp.nan, dtype))
    else:
        # -sum_k wq_k log softmax(z)_k = lse(z) sum_k wq_k - sum_k wq_k z_k (0 * -inf = 0).
        wq = q if weights is None else q * _bcast(weights, q.ndim)
        wz = jnp.where(wq != 0, wq * z, jnp.zeros((), dtype))
        loss = lse * jnp.sum(wq, axis=-1) - jnp.sum(wz, axis=-1)
    return C.zero_masked(loss, mask)


def _ldam_margins(class_counts: Array, max_margin) -> Array:
    """LDAM margins ``Delta_j = max_margin * (n_min / n_j)^(1/4)`` (``n_min``: smallest nonzero count).

    This is ``C / n_j^{1/4}`` rescaled so the largest margin is ``max_margin``;
    empty classes (``n_j = 0``) get the largest margin ``max_margin``.
    """
    present = class_counts > 0
    safe = jnp.where(present, class_counts, jnp.ones((), class_counts.dtype))
    inv = jnp.where(present, safe ** C.const(-0.25, class_counts), jnp.zeros((), class_counts.dtype))
    top = jnp.max(inv)
    top = jnp.where(top > 0, top, jnp.ones((), top.dtype))
    m = jnp.asarray(max_margin, class_counts.dtype)
    return jnp.where(present, inv * (m / top), m)


# ------------------------------- samples ----------------------------------


#: Per-class weights of the 4-class samples (the DRW-style ``class_weights`` variant).
_W4 = np.array([0.25, 0.5, 1.25, 2.0], np.float32)


def _counts_sample(seed: int = 1, kwargs=None, variants=(), n: int = 6, c: int = 4) -> Sample:
    """``logits [n, c]`` and integer labels with the class counts; the softmax edge cases on."""
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(n, c)) * 0.5).astype(np.float32)
    labels = rng.integers(0, c, size=(n,)).astype(np.int32)
    kwargs = {"class_counts": _COUNTS} if kwargs is None else kwargs
    return Sample(args=(logits, labels), kwargs=kwargs, class_axis=True, variants=tuple(variants))


def _ldam_sample() -> Sample:
    return _counts_sample(variants=({"max_margin": 0.3, "scale": 5.0}, {"class_weights": _W4}))


def _la_sample() -> Sample:
    priors = (_COUNTS / _COUNTS.sum()).astype(np.float32)
    return _counts_sample(
        seed=2,
        kwargs={"class_priors": priors},
        variants=({"prior_exponent": 2.0}, {"prior_exponent": 0.5, "class_weights": _W4}),
    )


def _balanced_sample() -> Sample:
    return _counts_sample(seed=7)


def _vs_sample() -> Sample:
    s = _counts_sample(seed=8, variants=({"gamma": 0.5, "prior_exponent": 0.5}, {"class_weights": _W4}))
    # The class scaling Delta_j < 1 multiplies the extremes' logits of 1e4: float32 rounds each adjusted
    # logit Delta_j z_j to ~5e-4 (half an ulp of 8192), which no formula can undo: 1e-3 absolute.
    return dataclasses.replace(s, value_tol={"rtol": 1e-4, "atol": 1e-3})


def _multilabel_sample() -> Sample:
    rng = np.random.default_rng(3)
    # keep sigmoid(z) away from the clip kink p = clip (z = logit(0.05) ~ -2.94)
    logits = rng.uniform(-2.0, 2.5, size=(6, 3)).astype(np.float32)
    labels = rng.integers(0, 2, size=(6, 3)).astype(np.float32)
    return Sample(args=(logits, labels), variants=({"gamma_neg": 2.0, "gamma_pos": 0.0, "margin": 0.0},))


def _asl_single_sample() -> Sample:
    return _counts_sample(seed=5, kwargs={}, variants=({"gamma_pos": 1.0, "gamma_neg": 2.0, "label_smoothing": 0.0},))


def _weights_sample() -> Sample:
    return Sample(
        args=(np.array([500, 120, 30, 0, 7], np.int32),),
        diff_argnums=(),
        where=False,
        variants=(
            {"variant": "inverse_frequency"},
            {"variant": "inverse_sqrt", "normalize": False},
            {"beta": 0.9},
        ),
    )


def _risk_sample() -> Sample:
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(6, 3)).astype(np.float32)
    labels = rng.integers(0, 3, size=(6,)).astype(np.int32)
    matrix = np.array([[0.0, 1.0, 1.0], [2.0, 0.0, 1.0], [4.0, 4.0, 0.0]], np.float32)
    return Sample(args=(logits, labels), kwargs={"loss_matrix": matrix}, class_axis=True)


def _aux_regression_sample() -> Sample:
    rng = np.random.default_rng(6)
    targets = np.array([-1.2, -0.3, 0.2, 0.9, 1.7, -0.8], np.float32)
    predictions = (targets + 0.3 * rng.normal(size=6)).astype(np.float32)
    bin_logits = rng.normal(size=(6, 3)).astype(np.float32)
    return Sample(
        args=(predictions, bin_logits, targets),
        kwargs={"bin_edges": [-0.5, 0.5]},
        diff_argnums=(0, 1),
        variants=({"aux_weight": 0.3},),
    )


# ----------------------------- weight recipes ------------------------------


@register(
    "class_balanced_weights",
    aliases=("effective_number_weights",),
    family=FAMILY,
    kind="function",
    formula="w_c ∝ 1/n_c | 1/sqrt(n_c) | (1-beta)/(1-beta^n_c) (variant); sum_c w_c = C; w_c = 0 if n_c = 0",
    paper="Class-Balanced Loss Based on Effective Number of Samples (2019, arXiv:1901.05555)",
    reference="richardaecn/class-balanced-loss src/cifar_main.py (effective_num, weights); "
    "kaidic/LDAM-DRW cifar_train.py (DRW per_cls_weights)",
    sample=_weights_sample,
)
def class_balanced_weights(
    class_counts: ArrayLike,
    *,
    variant: str = "effective_number",
    beta: float = 0.9999,
    normalize: bool = True,
) -> Array:
    r"""Per-class weights from class counts (inverse frequency, inverse sqrt or effective number).

    .. math::
        w_c \propto \frac{1}{n_c},\quad \frac{1}{\sqrt{n_c}},\quad\text{or}\quad
        \frac{1-\beta}{1-\beta^{n_c}} = \frac{1-\beta}{-\mathrm{expm1}(n_c\log\beta)},
        \qquad \sum_c w_c = C\ \text{(if normalize)}

    The effective number uses ``-expm1(n log beta)`` so ``beta -> 1`` does not
    cancel. Empty classes (``n_c = 0``) get weight exactly 0 (they never occur
    as a target); the others are normalized so all weights sum to ``C``.
    Feed the result to ``softmax_cross_entropy(class_weights=...)``,
    ``ldam_loss(class_weights=...)`` (LDAM-DRW) or a focal loss.

    Args:
      class_counts: number of training examples per class ``[C]`` (int or float, >= 0).
      variant: ``"effective_number"``, ``"inverse_frequency"`` or ``"inverse_sqrt"``.
      beta: ``beta`` in ``[0, 1)`` of the effective number (0.9, 0.99, 0.999, 0.9999).
      normalize: rescale so that the weights sum to ``C`` (the reference's convention).

    Returns:
      Weights ``[C]`` (float32, or float64 for float64 counts).

    Paper: Cui, Jia, Lin, Song, Belongie, "Class-Balanced Loss Based on Effective
    Number of Samples", CVPR 2019, arXiv:1901.05555.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.class_balanced_weights(jnp.array([3, 1, 0]), variant="inverse_frequency")
      Array([0.75, 2.25, 0.  ], dtype=float32)
    """
    fn = "class_balanced_weights"
    counts = C.check_array(fn, "class_counts", class_counts, ndim=1, dtype="number")
    C.check_one_of(fn, "variant", variant, ("effective_number", "inverse_frequency", "inverse_sqrt"))
    C.check_in_range(fn, "beta", beta, 0.0, 1.0, high_inclusive=False)
    dtype = C.compute_dtype(counts)
    n = counts.astype(dtype)
    C.debug_check(jnp.all(n >= 0), f"{fn}: `class_counts` must be >= 0")
    present = n > 0
    safe = jnp.where(present, n, jnp.ones((), dtype))
    if variant == "inverse_frequency":
        w = 1.0 / safe
    elif variant == "inverse_sqrt":
        w = jax.lax.rsqrt(safe)
    else:
        b = jnp.asarray(beta, dtype)
        w = (1 - b) / -jnp.expm1(safe * jnp.log(b))
    w = jnp.where(present, w, jnp.zeros((), dtype))
    if normalize:
        total = jnp.sum(w)
        w = w * (n.shape[0] / jnp.where(total > 0, total, jnp.ones((), dtype)))
    return w


# ------------------------- margin-adjusted CE family -------------------------


@register(
    "ldam_loss",
    aliases=("ldam",),
    family=FAMILY,
    kind="per_example",
    formula="CE(scale * (z - Delta ⊙ onehot(y)), y),  Delta_j = max_margin * (n_min / n_j)^(1/4)",
    paper="Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss (2019, arXiv:1906.07413)",
    reference="kaidic/LDAM-DRW losses.py::LDAMLoss(max_m=0.5, s=30)",
    sample=_ldam_sample,
)
def ldam_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    class_counts: ArrayLike,
    max_margin: float = 0.5,
    scale: float = 30.0,
    class_weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Label-distribution-aware margin (LDAM) loss.

    .. math::
        \ell = -\log\frac{e^{s(z_y-\Delta_y)}}{e^{s(z_y-\Delta_y)}+\sum_{j\ne y}e^{s z_j}},
        \qquad \Delta_j = \frac{\texttt{max\_margin}}{\max_k n_k^{-1/4}}\, n_j^{-1/4}

    with ``s = scale``. The margins are constants (no gradient). The reference
    (``LDAMLoss(max_m, s)``) applies it to cosine logits (``NormedLinear``) where
    ``scale = 30`` makes sense; with raw logits use a smaller ``scale``. Empty
    classes get the largest margin ``max_margin``. For a
    target distribution ``q`` the margin is ``Delta * q`` (the one-hot case is
    the paper's). With ``class_weights`` (e.g. :func:`class_balanced_weights`
    switched on late in training) this is LDAM-DRW.

    Args:
      logits: ``[..., C]`` (normalized/cosine logits in the paper).
      labels: integer labels ``[...]`` or a target distribution ``[..., C]``.
      class_counts: training examples per class ``[C]``.
      max_margin: the largest margin (the rarest class's; the reference's ``max_m``).
      scale: ``s``, multiplies the adjusted logits (the reference's ``s``).
      class_weights: optional per-class weights ``[C]`` (deferred re-weighting).
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Cao, Wei, Gaidon, Arechiga, Ma, "Learning Imbalanced Datasets with
    Label-Distribution-Aware Margin Loss", NeurIPS 2019, arXiv:1906.07413.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.array([[0.5, 0.1], [0.2, 0.3]])
      >>> lossjax.losses.ldam_loss(z, jnp.array([0, 1]), class_counts=jnp.array([16, 1]), scale=1.0).round(4)
      Array([0.621, 0.913], dtype=float32)
    """
    fn = "ldam_loss"
    logits = check_logits(fn, logits, min_classes=2)
    C.check_positive(fn, "max_margin", max_margin, allow_zero=True)
    C.check_positive(fn, "scale", scale)
    dtype = C.compute_dtype(logits)
    counts = _per_class(fn, "class_counts", class_counts, logits.shape[-1], dtype)
    margins = _ldam_margins(counts, max_margin)
    return _adjusted_cross_entropy(
        fn, logits, labels, scale=scale, target_margin=margins, class_weights=class_weights, where=where
    )


@register(
    "logit_adjusted_cross_entropy",
    aliases=("logit_adjustment_loss", "la_loss"),
    family=FAMILY,
    kind="per_example",
    formula="CE(z + prior_exponent * log(max(pi, epsilon)), y)",
    paper="Long-Tail Learning via Logit Adjustment (2020, arXiv:2007.07314)",
    reference="google-research/google-research logit_adjustment/main.py (logits + tau * log(base_probs)); "
    "hand-derived closed forms",
    sample=_la_sample,
)
def logit_adjusted_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    class_priors: ArrayLike,
    prior_exponent: float = 1.0,
    epsilon: float = 1e-12,
    class_weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Logit-adjusted softmax cross-entropy (train-time logit adjustment).

    .. math::
        \ell = -\log\frac{e^{z_y+\tau\log\pi_y}}{\sum_j e^{z_j+\tau\log\pi_j}}

    with ``tau = prior_exponent`` (the paper's and the reference's ``tau``).
    ``class_priors`` may be priors or raw counts: they are normalized to sum to
    one (a constant shift of every logit, which the softmax ignores) and
    clamped at ``epsilon`` before the log, so an empty class gives a finite
    ``tau * log(epsilon)`` instead of ``-inf``. At test time predict with the raw
    logits (the post-hoc variant subtracts ``tau * log(pi)`` from a model trained
    with plain CE instead).

    Args:
      logits: ``[..., C]``.
      labels: integer labels ``[...]`` or a target distribution ``[..., C]``.
      class_priors: class priors or counts ``[C]`` (>= 0).
      prior_exponent: ``tau``, the adjustment strength.
      epsilon: floor of the priors.
      class_weights: optional per-class weights ``[C]``.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Menon, Jayasumana, Rawat, Jain, Veit, Kumar, "Long-Tail Learning via
    Logit Adjustment", ICLR 2021, arXiv:2007.07314.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.zeros((1, 2))
      >>> lossjax.losses.logit_adjusted_cross_entropy(z, jnp.array([1]), class_priors=jnp.array([0.75, 0.25])).round(4)
      Array([1.3863], dtype=float32)
    """
    fn = "logit_adjusted_cross_entropy"
    logits = check_logits(fn, logits, min_classes=2)
    C.check_positive(fn, "prior_exponent", prior_exponent, allow_zero=True)
    C.check_positive(fn, "epsilon", epsilon)
    dtype = C.compute_dtype(logits)
    priors = _per_class(fn, "class_priors", class_priors, logits.shape[-1], dtype)
    offset = jnp.asarray(prior_exponent, dtype) * _log_priors(priors, epsilon)
    return _adjusted_cross_entropy(fn, logits, labels, offset=offset, class_weights=class_weights, where=where)


@register(
    "balanced_softmax_cross_entropy",
    aliases=("balanced_softmax",),
    family=FAMILY,
    kind="per_example",
    formula="CE(z + log(n), y)  (logit adjustment with prior_exponent = 1 and the class counts)",
    paper="Balanced Meta-Softmax for Long-Tailed Visual Recognition (2020, arXiv:2007.10740)",
    reference="jiawei-ren/BalancedMetaSoftmax loss/BalancedSoftmaxLoss.py (logits + log(sample_per_class))",
    sample=_balanced_sample,
)
def balanced_softmax_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    class_counts: ArrayLike,
    epsilon: float = 1e-12,
    where: ArrayLike | None = None,
) -> Array:
    r"""Balanced softmax: cross-entropy on ``z + log n`` (the class counts).

    .. math:: \ell = -\log\frac{n_y e^{z_y}}{\sum_j n_j e^{z_j}}

    Identical to :func:`logit_adjusted_cross_entropy` with ``prior_exponent = 1`` (shared
    code); empty classes are floored at ``epsilon`` of the prior.

    Args:
      logits: ``[..., C]``.
      labels: integer labels ``[...]`` or a target distribution ``[..., C]``.
      class_counts: training examples per class ``[C]``.
      epsilon: floor of the priors ``n_c / sum(n)``.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Ren, Yu, Ma, Zhao, Yi, Li, "Balanced Meta-Softmax for Long-Tailed
    Visual Recognition", NeurIPS 2020, arXiv:2007.10740.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.zeros((1, 2))
      >>> lossjax.losses.balanced_softmax_cross_entropy(z, jnp.array([0]), class_counts=jnp.array([3, 1])).round(4)
      Array([0.2877], dtype=float32)
    """
    fn = "balanced_softmax_cross_entropy"
    logits = check_logits(fn, logits, min_classes=2)
    C.check_positive(fn, "epsilon", epsilon)
    dtype = C.compute_dtype(logits)
    counts = _per_class(fn, "class_counts", class_counts, logits.shape[-1], dtype)
    return _adjusted_cross_entropy(fn, logits, labels, offset=_log_priors(counts, epsilon), where=where)


@register(
    "vs_loss",
    aliases=("vector_scaling_loss",),
    family=FAMILY,
    kind="per_example",
    formula="CE(Delta ⊙ z + iota, y),  Delta_j = (n_j / n_max)^gamma,  iota_j = prior_exponent * log(pi_j)",
    paper="Label-Imbalanced and Group-Sensitive Classification under Overparameterization (2021, arXiv:2103.01550)",
    reference="orparask/VS-Loss class_imbalance/losses.py::VSLoss(gamma=0.3, tau=1.0); "
    "val-iisc/Saddle-LongTail losses.py::VSLoss",
    sample=_vs_sample,
)
def vs_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    class_counts: ArrayLike,
    gamma: float = 0.3,
    prior_exponent: float = 1.0,
    epsilon: float = 1e-12,
    class_weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Vector-scaling (VS) loss: multiplicative and additive per-class logit adjustment.

    .. math::
        \ell = -\log\mathrm{softmax}(\Delta\odot z + \iota)_y,\qquad
        \Delta_j = (n_j / n_{\max})^{\gamma},\quad \iota_j = \tau\log\pi_j

    with ``tau = prior_exponent`` (the reference's ``tau``). ``gamma = 0`` is
    logit adjustment; ``prior_exponent = 0`` the pure multiplicative
    (CDT-like) form. An empty class gets ``Delta_j = 0`` and a prior floored at
    ``epsilon``. The reference writes ``z / ((1/n)^gamma / min (1/n)^gamma)``,
    the same ``Delta``.

    Args:
      logits: ``[..., C]``.
      labels: integer labels ``[...]`` or a target distribution ``[..., C]``.
      class_counts: training examples per class ``[C]``.
      gamma: exponent of the multiplicative scaling.
      prior_exponent: ``tau``, the strength of the additive (logit-adjustment) term.
      epsilon: floor of the priors.
      class_weights: optional per-class weights ``[C]``.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Kini, Paraskevas, Oymak, Thrampoulidis, "Label-Imbalanced and
    Group-Sensitive Classification under Overparameterization", NeurIPS 2021,
    arXiv:2103.01550; defaults from Rangwani et al. 2022 (arXiv:2212.13827).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z, counts = jnp.array([[1.0, 1.0]]), jnp.array([8, 1])
      >>> lossjax.losses.vs_loss(z, jnp.array([1]), class_counts=counts, gamma=1.0, prior_exponent=0.0).round(4)
      Array([1.2234], dtype=float32)
    """
    fn = "vs_loss"
    logits = check_logits(fn, logits, min_classes=2)
    C.check_positive(fn, "gamma", gamma, allow_zero=True)
    C.check_positive(fn, "prior_exponent", prior_exponent, allow_zero=True)
    C.check_positive(fn, "epsilon", epsilon)
    dtype = C.compute_dtype(logits)
    counts = _per_class(fn, "class_counts", class_counts, logits.shape[-1], dtype)
    top = jnp.max(counts)
    ratio = counts / jnp.where(top > 0, top, jnp.ones((), dtype))
    multiplier = jnp.where(counts > 0, C.safe_power(ratio, gamma), jnp.zeros((), dtype))
    offset = jnp.asarray(prior_exponent, dtype) * _log_priors(counts, epsilon)
    return _adjusted_cross_entropy(
        fn, logits, labels, multiplier=multiplier, offset=offset, class_weights=class_weights, where=where
    )


# ------------------------------ asymmetric ---------------------------------


@register(
    "asymmetric_loss",
    aliases=("asl",),
    family=FAMILY,
    kind="per_example",
    formula="-y (1-p)^g+ log p - (1-y) p_m^g- log(1-p_m),  p_m = max(p - margin, 0)",
    paper="Asymmetric Loss For Multi-Label Classification (2020, arXiv:2009.14119)",
    reference="Alibaba-MIIL/ASL src/loss_functions/losses.py::AsymmetricLoss",
    sample=_multilabel_sample,
)
def asymmetric_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    gamma_neg: float = 4.0,
    gamma_pos: float = 1.0,
    margin: float = 0.05,
    epsilon: float = 1e-8,
    stop_gradient_weight: bool = False,
    where: ArrayLike | None = None,
) -> Array:
    r"""Asymmetric loss (ASL) for multi-label classification, per element.

    .. math::
        \ell = -y\,(1-p)^{\gamma_+}\log p \;-\; (1-y)\,p_m^{\gamma_-}\log(1-p_m),
        \qquad p=\sigma(z),\; p_m=\max(p-m, 0)

    with the logs clamped at ``epsilon`` as in the reference
    (``log(max(p, epsilon))``); ``log p`` is computed as ``log_sigmoid(z)``.
    Probability shifting by the margin ``m`` (the reference's ``clip``; the
    paper's probability margin) discards easy negatives (``p < m`` gives
    exactly zero loss and gradient). By default the gradient flows through the
    focusing weight, as in both reference classes' defaults
    (``AsymmetricLoss``'s no-grad lines are commented out);
    ``stop_gradient_weight=True`` treats the weight as a constant
    (``disable_torch_grad_focal_loss=True`` in ``AsymmetricLossOptimized``).
    Soft targets in ``[0, 1]`` use the reference's interpolated formula.

    Args:
      logits: scores ``[...]`` (e.g. ``[N, C]`` for C labels).
      labels: binary targets of the same shape (float, int or bool).
      gamma_neg: focusing exponent of the negatives.
      gamma_pos: focusing exponent of the positives.
      margin: probability margin ``m`` of the negatives (the reference's ``clip``; 0 disables shifting).
      epsilon: clamp of the log arguments.
      stop_gradient_weight: treat the focusing weight as a constant.
      where: optional boolean mask broadcastable to ``logits.shape``.

    Returns:
      Per-element loss ``logits.shape`` (the reference returns ``-sum``).

    Paper: Ben-Baruch, Ridnik, Zamir, Noy, Friedman, Protter, Zelnik-Manor,
    "Asymmetric Loss For Multi-Label Classification", ICCV 2021, arXiv:2009.14119.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.asymmetric_loss(jnp.array([0.0, 0.0, -5.0]), jnp.array([1.0, 0.0, 0.0])).round(4)
      Array([0.3466, 0.0245, 0.    ], dtype=float32)
    """
    fn = "asymmetric_loss"
    z, y, mask, dtype = binary_terms(fn, logits, labels, where)
    C.check_positive(fn, "gamma_neg", gamma_neg, allow_zero=True)
    C.check_positive(fn, "gamma_pos", gamma_pos, allow_zero=True)
    C.check_in_range(fn, "margin", margin, 0.0, 1.0, high_inclusive=False)
    C.check_in_range(fn, "epsilon", epsilon, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    if static_numbers(gamma_neg, gamma_pos, margin, epsilon):  # a value pass and a closed-form gradient pass
        loss = _elementwise.asymmetric(
            z,
            y,
            gamma_neg=gamma_neg,
            gamma_pos=gamma_pos,
            margin=margin,
            epsilon=epsilon,
            stop_gradient_weight=stop_gradient_weight,
        )
        return C.zero_masked(loss, mask)
    # Traced hyperparameters: the same formula, differentiated by autodiff.
    log_eps = jnp.log(C.const(epsilon, z))
    # Positive part: log(max(p, eps)) computed from log_sigmoid.
    log_pos = jnp.maximum(jax.nn.log_sigmoid(z), log_eps)
    # Negative part: 1 - p_m = min(1 - p + m, 1), clamped like the reference.
    if isinstance(margin, (int, float)) and margin == 0:
        log_neg = jnp.maximum(jax.nn.log_sigmoid(-z), log_eps)
        one_minus_pt_neg = jax.nn.sigmoid(z)
    else:
        m = jnp.asarray(margin, dtype)
        p = jax.nn.sigmoid(z)
        log_neg = jnp.maximum(C.safe_log(jnp.minimum(jax.nn.sigmoid(-z) + m, 1)), log_eps)
        one_minus_pt_neg = jnp.maximum(p - m, 0)  # p_m
    # 1 - pt with pt = p y + (1 - p_m)(1 - y), written without cancellation.
    base = y * jax.nn.sigmoid(-z) + (1 - y) * one_minus_pt_neg
    exponent = jnp.asarray(gamma_pos, dtype) * y + jnp.asarray(gamma_neg, dtype) * (1 - y)
    weight = C.safe_power(base, exponent)
    if stop_gradient_weight:
        weight = jax.lax.stop_gradient(weight)
    loss = weight * (-y * log_pos - (1 - y) * log_neg)
    return C.zero_masked(loss, mask)


@register(
    "asymmetric_single_label_loss",
    aliases=("asl_single_label",),
    family=FAMILY,
    kind="per_example",
    formula="-sum_k q_k w_k log p_k,  w_y = (1-p_y)^g+,  w_k = p_k^g- (k != y),  q = smoothed one-hot",
    paper="Asymmetric Loss For Multi-Label Classification (2020, arXiv:2009.14119)",
    reference="Alibaba-MIIL/ASL src/loss_functions/losses.py::ASLSingleLabel",
    sample=_asl_single_sample,
)
def asymmetric_single_label_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    gamma_pos: float = 0.0,
    gamma_neg: float = 4.0,
    label_smoothing: float = 0.1,
    where: ArrayLike | None = None,
) -> Array:
    r"""Single-label (softmax) asymmetric loss with label smoothing.

    .. math::
        \ell = -\sum_k q_k\, w_k \log p_k,\qquad
        w_k = \begin{cases}(1-p_k)^{\gamma_+} & k = y\\ p_k^{\gamma_-} & k\ne y\end{cases},\qquad
        q = (1-a)\,\mathrm{onehot}(y) + a/C

    ``p = softmax(z)``. The weights use the hard target (before smoothing), as
    in the reference; the gradient flows through them. For a target
    distribution ``t`` the weight is the reference's interpolation
    ``(1 - p t - (1-p)(1-t))^{gamma_+ t + gamma_- (1 - t)}``.

    Args:
      logits: ``[..., C]``.
      labels: integer labels ``[...]`` or a target distribution ``[..., C]``.
      gamma_pos: focusing exponent of the target class.
      gamma_neg: focusing exponent of the other classes.
      label_smoothing: ``a`` in ``[0, 1)`` (the reference's ``eps=0.1``).
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Ben-Baruch et al., "Asymmetric Loss For Multi-Label Classification",
    ICCV 2021, arXiv:2009.14119.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.log(jnp.array([[0.5, 0.25, 0.25]]))
      >>> lossjax.losses.asymmetric_single_label_loss(z, jnp.array([0]), label_smoothing=0.0).round(4)
      Array([0.6931], dtype=float32)
    """
    fn = "asymmetric_single_label_loss"
    z, t, mask, dtype = class_terms(fn, logits, labels, where, min_classes=2)
    C.check_positive(fn, "gamma_pos", gamma_pos, allow_zero=True)
    C.check_positive(fn, "gamma_neg", gamma_neg, allow_zero=True)
    C.check_in_range(fn, "label_smoothing", label_smoothing, 0.0, 1.0, high_inclusive=False)
    # Smoothing spreads over the classes whose logit is not -inf (such a class gets no target mass).
    q = C.fill_masked(smoothed_class_targets(fn, z, labels, label_smoothing, dtype, where=mask), mask)
    log_p = jax.nn.log_softmax(z, axis=-1)
    p = jnp.exp(log_p)
    one_minus_p = -jnp.expm1(log_p)
    base = t * one_minus_p + (1 - t) * p
    exponent = jnp.asarray(gamma_pos, dtype) * t + jnp.asarray(gamma_neg, dtype) * (1 - t)
    weight = C.safe_power(base, exponent)
    zero = jnp.zeros((), dtype)
    log_p = jnp.where(q != 0, log_p, zero)  # 0 * log 0 = 0, also in the gradient
    loss = -jnp.sum(jnp.where(q != 0, q * weight * log_p, zero), axis=-1)
    return C.zero_masked(loss, mask)


# ---------------------------- decision-theoretic ----------------------------


@register(
    "integrated_risk_loss",
    family=FAMILY,
    kind="per_example",
    formula="sum_c softmax(z)_c * L[y, c]  (q^T L p for a target distribution q)",
    paper="Long-tailed Classification from a Bayesian-decision-theory Perspective (2023, arXiv:2303.06075)",
    reference="hand-derived closed forms (no public implementation located)",
    sample=_risk_sample,
)
def integrated_risk_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    loss_matrix: ArrayLike,
    where: ArrayLike | None = None,
) -> Array:
    r"""Integrated (Bayes) risk of the predictive distribution under a decision-loss matrix.

    .. math:: \ell(z, y) = \sum_c p(c\mid x)\, L_{y c},\qquad p = \mathrm{softmax}(z)

    ``L[y, c]`` is the cost of deciding ``c`` when the truth is ``y`` (zero
    diagonal; larger costs on tail rows make errors on tail classes
    expensive). For a target distribution ``q`` the loss is ``q^T L p``.
    Averaging over an ensemble posterior is done outside (average the
    per-member losses).

    Args:
      logits: ``[..., C]``.
      labels: integer labels ``[...]`` or a target distribution ``[..., C]``.
      loss_matrix: decision-loss matrix ``[C, C]`` (rows: true class).
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Li, Fan, Lin, Kwok, Xiong, Hauptmann, "Long-tailed Classification
    from a Bayesian-decision-theory Perspective", 2023, arXiv:2303.06075.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> L = jnp.array([[0.0, 1.0], [4.0, 0.0]])
      >>> lossjax.losses.integrated_risk_loss(jnp.zeros((2, 2)), jnp.array([0, 1]), loss_matrix=L)
      Array([0.5, 2. ], dtype=float32)
    """
    fn = "integrated_risk_loss"
    z, q, mask, dtype = class_terms(fn, logits, labels, where, min_classes=2)
    c = z.shape[-1]
    matrix = C.check_array(fn, "loss_matrix", loss_matrix, shape=(c, c), dtype="number")
    matrix = jax.lax.stop_gradient(matrix.astype(dtype))
    cost = jnp.einsum("...y,yc->...c", q, matrix)  # expected cost of each decision
    loss = jnp.sum(cost * jax.nn.softmax(z, axis=-1), axis=-1)
    return C.zero_masked(loss, mask)


# ------------------------------ regression aux ------------------------------


@register(
    "classification_aux_for_regression",
    aliases=("regression_with_classification_aux",),
    family=FAMILY,
    kind="per_example",
    formula="(f - y)^2 + aux_weight * CE(bin_logits, bin(y)),  bin(y) = #{edges <= y}",
    paper="A step towards understanding why classification helps regression (2023, arXiv:2308.10603)",
    reference="hand-derived closed forms (no public implementation located)",
    sample=_aux_regression_sample,
)
def classification_aux_for_regression(
    predictions: ArrayLike,
    bin_logits: ArrayLike,
    targets: ArrayLike,
    *,
    bin_edges: ArrayLike,
    aux_weight: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Squared error plus an auxiliary cross-entropy on the discretized target.

    .. math::
        \ell = (f - y)^2 + \lambda\,\mathrm{CE}\big(b, \mathrm{bin}(y)\big),\qquad
        \mathrm{bin}(y) = \#\{k : e_k \le y\}

    ``bin_edges`` are the ``B - 1`` sorted interior edges ``e_k`` fixed up front
    (e.g. quantiles of the training targets, which balances the bins of an
    imbalanced target distribution); bin ``k`` is ``[e_{k-1}, e_k)``. The bin
    index is computed by comparisons (no gradient into ``targets`` through it).

    Args:
      predictions: regression outputs ``f`` ``[...]``.
      bin_logits: classification head over the bins ``[..., B]``.
      targets: real targets ``y`` ``[...]``.
      bin_edges: sorted interior bin edges ``[B - 1]``.
      aux_weight: ``lambda``, the weight of the auxiliary classification term.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Pintea, Lin, Dijkstra, van Gemert, "A step towards understanding why
    classification helps regression", ICCV 2023, arXiv:2308.10603.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> loss = lossjax.losses.classification_aux_for_regression(
      ...     jnp.array([0.5]), jnp.zeros((1, 3)), jnp.array([1.0]), bin_edges=[0.0, 2.0])
      >>> loss.round(4)
      Array([1.3486], dtype=float32)
    """
    fn = "classification_aux_for_regression"
    predictions = C.check_array(fn, "predictions", predictions, dtype="float")
    bin_logits = check_logits(fn, bin_logits, min_classes=2, arg="bin_logits")
    targets = C.check_array(fn, "targets", targets, dtype="number")
    C.check_same_shape(fn, ("predictions", "targets"), predictions, targets)
    if bin_logits.shape[:-1] != predictions.shape:
        raise ValueError(
            f"{fn}: `bin_logits` must have shape predictions.shape + (B,) = {predictions.shape} + (B,), "
            f"got {bin_logits.shape}."
        )
    num_bins = bin_logits.shape[-1]
    C.check_positive(fn, "aux_weight", aux_weight, allow_zero=True)
    dtype = C.compute_dtype(predictions, bin_logits, targets)
    edges = C.check_array(fn, "bin_edges", bin_edges, shape=(num_bins - 1,), dtype="number")
    edges = jax.lax.stop_gradient(edges.astype(dtype))
    C.debug_check(jnp.all(edges[1:] >= edges[:-1]), f"{fn}: `bin_edges` must be sorted")
    mask = C.prepare_where(fn, where, predictions.shape)
    f = C.fill_masked(C.as_compute(predictions, dtype), mask)
    y = C.fill_masked(C.as_compute(targets, dtype), mask)
    b = C.fill_masked(C.as_compute(bin_logits, dtype), mask)
    y_const = jax.lax.stop_gradient(y)
    bins = jnp.sum(y_const[..., None] >= _bcast(edges, y.ndim + 1), axis=-1)
    onehot = (jax.lax.broadcasted_iota(bins.dtype, b.shape, b.ndim - 1) == bins[..., None]).astype(dtype)
    ce = -jnp.sum(onehot * jax.nn.log_softmax(b, axis=-1), axis=-1)
    loss = jnp.square(f - y) + jnp.asarray(aux_weight, dtype) * ce
    return C.zero_masked(loss, mask)
