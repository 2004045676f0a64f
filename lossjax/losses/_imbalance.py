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
    "cisir_loss",
    "class_balanced_weights",
    "classification_aux_for_regression",
    "generalized_focal_equity_loss",
    "gml_loss",
    "integrated_risk_loss",
    "ldam_loss",
    "logit_adjusted_cross_entropy",
    "subclass_balancing_contrastive_loss",
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
    scaled = not (isinstance(scale, (int, float)) and scale == 1.0)
    s = jnp.asarray(scale, dtype)
    weights = None
    if class_weights is not None:
        weights = C.check_array(fn, "class_weights", class_weights, shape=(logits.shape[-1],), dtype="number")
        weights = weights.astype(dtype)

    def adjust(a, mult, off, margin):
        """``s * (mult * a + off - margin)``: elementwise, so XLA fuses it into every pass."""
        a = a if mult is None else a * mult
        a = a if off is None else a + off
        a = a if margin is None else a - margin
        return a * s if scaled else a

    shift = None
    if multiplier is None:
        # Shift invariance: subtract the largest raw logit first, so that the offsets and margins
        # (O(1)) are added to O(1) numbers, not rounded away at |z| ~ 1e4 (or scale * 1e4).
        shift = jax.lax.stop_gradient(jnp.max(z, axis=-1, keepdims=True))
    per_class = [None if v is None else _bcast(v, z.ndim) for v in (multiplier, offset, target_margin)]
    mult, off, margin = per_class
    za = adjust(z if shift is None else z - shift, mult, off, None if margin is None else q * margin)
    # Everything relative to the largest adjusted logit m: log sum exp(z - m) - (z_y - m) keeps its
    # precision when the logits are large (scale * z ~ 1e5), where lse(z) - z_y would cancel. Nothing
    # [..., C] is gathered from or stored after the shift by m: XLA then fuses the adjustment into each
    # pass (max, sum of exp, gradient) instead of materializing the adjusted logits (2 x 16 MiB and
    # 2.9x the reference's time at N=4096, C=1000 on CPU before).
    m = jax.lax.stop_gradient(jnp.max(za, axis=-1))
    lse = jnp.log(jnp.sum(jnp.exp(za - m[..., None]), axis=-1))  # lse(za) - m
    if C.has_integer_labels(fn, logits, labels):
        # lse(za) - za_y, with za_y rebuilt from the gathered raw logit and the class constants.
        # An out-of-range label (unmasked) gives NaN, as JAX's out-of-bounds gather does.
        labels = jnp.asarray(labels)
        ok = labels_in_range(labels, logits.shape[-1], mask)
        safe = jnp.clip(labels, 0, logits.shape[-1] - 1)[..., None]

        def at_label(v):
            return None if v is None else jnp.take_along_axis(jnp.broadcast_to(v, z.shape), safe, axis=-1)

        zy = at_label(z)  # gathered before the shift: see above
        zy = adjust(zy if shift is None else zy - shift, *map(at_label, per_class))[..., 0]
        loss = lse - (zy - m)
        if weights is not None:
            loss = loss * weights[safe[..., 0]]
        loss = jnp.where(ok, loss, jnp.asarray(jnp.nan, dtype))
    else:
        # -sum_k wq_k log softmax(za)_k = (lse(za) - m) sum_k wq_k - sum_k wq_k (za_k - m) (0 * -inf = 0).
        wq = q if weights is None else q * _bcast(weights, q.ndim)
        wz = jnp.where(wq != 0, wq * (za - m[..., None]), jnp.zeros((), dtype))
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


# --------------------- issue 16: CISIR, DatasetEquity, GML ---------------------


def _cisir_sample():
    rng = np.random.default_rng(26)
    y = rng.normal(size=(6,)).astype(np.float32)
    f = (0.7 * y + 0.5 * rng.normal(size=(6,))).astype(np.float32)
    w = rng.uniform(0.05, 0.3, size=(6,)).astype(np.float32)
    v = rng.uniform(0.05, 0.3, size=(6,)).astype(np.float32)
    return Sample(
        args=(f, y, w, v),
        diff_argnums=(0,),
        fuzz_scaled=(0, 1),  # the importance weights are weights, not a scale
        variants=({"normalized_weights": False, "correlation_weight": 0.5},),
        # not the automatic all-zero predictions: the reference's sqrt has a NaN gradient at zero variance
        # (lossjax's is 0 there, tests/losses/test_imbalance.py); large and tiny spreads instead
        extremes=((f * 1e4, y, w, v), (f * 1e-4, y, w, v)),
    )


@register(
    "cisir_loss",
    family=FAMILY,
    kind="batch",
    formula="sum_i w_i (f_i - y_i)^2 [/ N] + lambda (1 - sum_i v_i f~_i y~_i / (sqrt(sum_i v_i f~_i^2 "
    "sum_i v_i y~_i^2) + epsilon)), f~ = f - mean f, y~ = y - mean y",
    paper="Highly Imbalanced Regression with Tabular Data in SEP and Other Applications (2025, arXiv:2509.16339)",
    reference="Machine-Earning/CISIR@5f3ddd2 modules/training/ts_modeling.py::cmse, coreg (ported to torch float64)",
    sample=_cisir_sample,
)
def cisir_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    weights: ArrayLike,
    pcc_weights: ArrayLike,
    *,
    correlation_weight: float = 1.0,
    normalized_weights: bool = True,
    epsilon: float = 1e-7,
    where: ArrayLike | None = None,
) -> Array:
    r"""CISIR: importance-weighted squared error plus one minus a weighted Pearson correlation of the batch.

    .. math::
        \mathcal L = \sum_i w_i (f_i - y_i)^2 \Big[\,/N\Big]
        + \lambda\Big(1 - \frac{\sum_i v_i \tilde f_i \tilde y_i}
        {\sqrt{\sum_i v_i \tilde f_i^2\,\sum_i v_i \tilde y_i^2} + \epsilon}\Big),
        \quad \tilde f = f - \bar f,\ \tilde y = y - \bar y

    (unweighted batch means :math:`\bar f, \bar y`, as in the reference
    ``coreg``; the division by :math:`N` only when ``normalized_weights=False``).
    The importance weights come from outside the loss: the paper's
    Monotonically Decreasing Involution importance of the target density
    :math:`w = (1 - \hat\rho(y)^\alpha)^{1/\alpha}` normalized to sum 1 over the
    training set (``MDI``; a KDE of the training targets with
    :math:`\hat\rho` the density scaled by its maximum), and stratified
    mini-batches. A batch with constant predictions or targets has
    correlation 0 (gradient 0 through the square root there).

    Args:
      predictions: ``f`` ``[N]``.
      targets: ``y`` ``[N]``.
      weights: importance weights of the squared error ``w`` ``[N]`` (held constant).
      pcc_weights: importance weights of the correlation term ``v`` ``[N]`` (ones: the reference ``coreg``'s
        default; its scripts use MDI weights with their own ``alpha``).
      correlation_weight: :math:`\lambda` (the reference's ``lambda_factor``; 1 in its dataset configs).
      normalized_weights: the weights are normalized over the training set: sum the weighted squared errors
        instead of averaging them (the reference's ``NORMALIZED_WEIGHTS = True``).
      epsilon: the reference's guard ``K.epsilon()`` added to the correlation's denominator.
      where: boolean mask ``[N]``; masked rows are out of every sum and mean.

    Returns:
      The scalar batch loss (0 for an empty or all-masked batch).

    Paper:
      Moukpe, Chan, Zhang. Highly Imbalanced Regression with Tabular Data in SEP and Other Applications
      (2025, arXiv:2509.16339).

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.losses import cisir_loss
      >>> f, y = jnp.array([1.0, 2.0, 3.0]), jnp.array([1.0, 2.0, 4.0])
      >>> round(float(cisir_loss(f, y, jnp.full(3, 0.5), jnp.ones(3), epsilon=0.0)), 4)  # 0.5 + (1 - 0.9820)
      0.518
    """
    fn = "cisir_loss"
    predictions = C.check_array(fn, "predictions", predictions, ndim=1, dtype="float")
    n = predictions.shape[0]
    targets = C.check_array(fn, "targets", targets, dtype="number", shape=(n,))
    weights = C.check_array(fn, "weights", weights, dtype="number", shape=(n,))
    pcc_weights = C.check_array(fn, "pcc_weights", pcc_weights, dtype="number", shape=(n,))
    C.check_positive(fn, "correlation_weight", correlation_weight, allow_zero=True)
    C.check_positive(fn, "epsilon", epsilon, allow_zero=True)
    dtype = C.compute_dtype(predictions, targets)
    mask = C.prepare_where(fn, where, (n,))
    valid = jnp.ones((n,), dtype) if mask is None else mask.astype(dtype)
    f = C.fill_masked(C.as_compute(predictions, dtype), mask)
    y = C.fill_masked(C.as_compute(targets, dtype), mask)
    w = jax.lax.stop_gradient(C.fill_masked(weights.astype(dtype), mask)) * valid
    v = jax.lax.stop_gradient(C.fill_masked(pcc_weights.astype(dtype), mask)) * valid
    count = jnp.sum(valid)
    safe_count = jnp.maximum(count, jnp.ones((), dtype))
    sse = jnp.sum(w * jnp.square(f - y))
    mse = sse if normalized_weights else sse / safe_count
    fc = (f - jnp.sum(valid * f) / safe_count) * valid
    yc = (y - jnp.sum(valid * y) / safe_count) * valid
    cov = jnp.sum(v * fc * yc)
    denominator = C.safe_sqrt(jnp.sum(v * jnp.square(yc)) * jnp.sum(v * jnp.square(fc))) + C.const(epsilon, cov)
    ok = denominator > 0
    pcc = jnp.where(ok, cov / jnp.where(ok, denominator, jnp.ones_like(denominator)), jnp.zeros_like(cov))
    loss = mse + C.const(correlation_weight, mse) * (1 - pcc)
    return jnp.where(count > 0, loss, jnp.zeros_like(loss))


def _equity_sample():
    rng = np.random.default_rng(28)
    return Sample(
        args=(rng.uniform(0.1, 3.0, size=(6,)).astype(np.float32), rng.uniform(0.0, 1.0, size=(6,)).astype(np.float32)),
        diff_argnums=(0,),
        fuzz_scaled=(0,),  # likelihoods live in [0, 1]
        variants=({"eta": 0.5, "gamma": 2.0},),
        extremes=((np.full(6, 1e4, np.float32), np.array([0.0, 1.0, 0.5, 1e-7, 1.0, 0.0], np.float32)),),
    )


@register(
    "generalized_focal_equity_loss",
    aliases=("dataset_equity_loss",),
    family=FAMILY,
    kind="per_example",
    formula="(eta + (1 - p)^gamma) / (eta + 1) * loss  (p: the sample's likelihood, held constant)",
    paper="DatasetEquity: Are All Samples Created Equal? In The Quest For Equity Within Datasets (2023, "
    "arXiv:2308.09878)",
    reference="towardsautonomy/DatasetEquity@d6898ad README.md::dequity_loss_weight (closed form, numpy float64)",
    sample=_equity_sample,
)
def generalized_focal_equity_loss(
    losses: ArrayLike,
    likelihoods: ArrayLike,
    *,
    eta: float = 1.0,
    gamma: float = 5.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""DatasetEquity's generalized focal loss: per-example losses reweighted by how rare each sample looks.

    .. math:: \ell_i' = \frac{\eta + (1 - p_i)^\gamma}{\eta + 1}\,\ell_i

    with :math:`p_i \in [0, 1]` the sample's likelihood (the paper clusters
    deep perceptual embeddings of the training images and takes the size of a
    sample's cluster relative to the largest; computed once, before training)
    and :math:`\ell_i` any per-example task loss (a detector's loss in the
    paper). Rare samples (:math:`p \to 0`) keep weight 1, frequent ones
    (:math:`p \to 1`) go down to :math:`\eta / (\eta + 1)`. The weight is held
    constant.

    Args:
      losses: per-example task losses ``[...]``.
      likelihoods: per-example likelihoods ``p`` in ``[0, 1]`` ``[...]``.
      eta: :math:`\eta \ge 0`, the floor of the weight (official: 1.0).
      gamma: :math:`\gamma \ge 0`, the focusing exponent (official: 5.0).
      where: boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example weighted losses ``[...]``.

    Paper:
      Shrivastava, Zhang, Nagesh, Parchami. DatasetEquity: Are All Samples Created Equal? In The Quest For
      Equity Within Datasets (ICCV 2023 workshops, arXiv:2308.09878).

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.losses import generalized_focal_equity_loss
      >>> generalized_focal_equity_loss(jnp.array([2.0, 2.0]), jnp.array([0.0, 1.0])).tolist()
      [2.0, 1.0]
    """
    fn = "generalized_focal_equity_loss"
    losses = C.check_array(fn, "losses", losses, dtype="float")
    likelihoods = C.check_array(fn, "likelihoods", likelihoods, dtype="number", shape=losses.shape)
    C.check_positive(fn, "eta", eta, allow_zero=True)
    C.check_positive(fn, "gamma", gamma, allow_zero=True)
    dtype = C.compute_dtype(losses)
    mask = C.prepare_where(fn, where, losses.shape)
    loss = C.fill_masked(C.as_compute(losses, dtype), mask)
    p = jax.lax.stop_gradient(C.fill_masked(likelihoods.astype(dtype), mask))
    C.debug_check(jnp.all((p >= 0) & (p <= 1)), f"{fn}: `likelihoods` must lie in [0, 1]")
    e = C.const(eta, p)
    weight = (e + jnp.power(1 - p, C.const(gamma, p))) / (e + 1)
    return C.zero_masked(weight * loss, mask)


def _class_log_mean_exp(sims: Array, key_labels: Array, key_onehot: Array, pair_weights: Array) -> Array:
    """``log( sum_j w_ij [y_j = c] exp(s_ij) / sum_j w_ij [y_j = c] )`` ``[N, C]``, -inf for a class with no key.

    Shifted by each class's own (constant) maximum, so no class underflows to ``log 0`` when the
    similarities spread widely (the reference shifts by the row maximum, the same value in exact arithmetic).
    Memory O(N M + N C): a segment maximum over the keys, then one ``[N, M] @ [M, C]`` product.
    """
    num_classes = key_onehot.shape[-1]
    neg = jnp.full_like(sims, -jnp.inf)
    live = jnp.where(pair_weights > 0, sims, neg)
    top = jax.ops.segment_max(live.T, key_labels, num_segments=num_classes).T  # [N, C]; -inf: no key
    has = jnp.isfinite(top)
    top = jax.lax.stop_gradient(jnp.where(has, top, jnp.zeros_like(top)))
    key_top = jnp.take(top, key_labels, axis=1, mode="fill", fill_value=jnp.nan)  # [N, M]
    shifted = jnp.exp(jnp.where(pair_weights > 0, sims - key_top, neg))
    total = (pair_weights * shifted) @ key_onehot  # [N, C]
    count = pair_weights @ key_onehot
    ok = has & (count > 0) & (total > 0)
    safe = jnp.where(ok, total / jnp.where(ok, count, jnp.ones_like(count)), jnp.ones_like(total))
    return jnp.where(ok | jnp.isnan(total), jnp.log(safe) + top, -jnp.inf)


def _gml_sample():
    rng = np.random.default_rng(29)

    def unit(x):
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)

    q = unit(rng.normal(size=(5, 3)))
    k = unit(rng.normal(size=(7, 3)))
    labels = np.array([0, 2, 1, 0, 2], np.int32)
    key_labels = np.array([0, 1, 2, 0, 1, 2, 2], np.int32)
    logits = (0.1 * rng.normal(size=(5, 3))).astype(np.float32)
    teacher = (0.1 * rng.normal(size=(5, 3))).astype(np.float32)
    query_ids = np.arange(5, dtype=np.int32)
    key_ids = np.array([0, 9, 1, 3, 11, 12, 4], np.int32)  # queries 0, 1, 3, 4 meet their own keys
    return Sample(
        args=(q, labels, logits, k, key_labels, query_ids, key_ids, teacher),
        kwargs={"class_priors": np.array([0.5, 0.3, 0.2], np.float32), "temperature": 0.2},
        batched_argnums=(0, 1, 2, 5, 7),
        diff_argnums=(0, 2, 3),
        surrogate_grad=True,  # the self-excluding term holds the similarities constant (official): not d value / d q
        fuzz_scaled=(),  # unit embeddings; logits scaled by 30 inside
        variants=(
            {
                "distill_weight": 0.5,
                "contrastive_weight": 0.7,
                "ce_weight": 1.5,
                "logit_temperature": 0.1,
            },
        ),
        extremes=(
            (q * 4.0, labels, logits * 300.0, k * 4.0, key_labels, query_ids, key_ids, teacher * 300.0),
            (np.zeros_like(q), labels, np.zeros_like(logits), k, key_labels, query_ids, key_ids, teacher),
        ),
    )


@register(
    "gml_loss",
    family=FAMILY,
    kind="per_example",
    formula="ce_weight CE(z / T_s + log pi, y) + contrastive_weight [CE(logS + log pi, y) + CE(logS' + log pi, y)] "
    "+ distill_weight T_d^2 KL(teacher || student); logS_c = log mean_{j: k_j = c} exp(q . k_j / T)",
    paper="Long-Tailed Recognition by Mutual Information Maximization between Latent Features and Ground-Truth "
    "Labels (2023, arXiv:2305.01160)",
    reference="bluecdm/Long-tailed-recognition@1ff816c losses.py::GMLLoss.forward (ported to torch float64)",
    sample=_gml_sample,
)
def gml_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    logits: ArrayLike,
    key_embeddings: ArrayLike,
    key_labels: ArrayLike,
    query_ids: ArrayLike,
    key_ids: ArrayLike,
    teacher_logits: ArrayLike | None = None,
    *,
    class_priors: ArrayLike,
    temperature: float | ArrayLike = 0.07,
    logit_temperature: float = 1.0 / 30.0,
    contrastive_weight: float = 1.0,
    ce_weight: float = 1.0,
    distill_weight: float = 0.0,
    distill_temperature: float = 4.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""GML: logit-adjusted cross-entropy plus a class-conditional contrastive term over a queue of keys.

    With similarities :math:`s_{ij} = q_i\cdot k_j / T` and the keys of class
    :math:`c` (a class-balanced queue in the paper), the contrastive logits are
    log-mean-exps per class:

    .. math::
        \log S_{ic} = \log\frac{\sum_{j: y_j = c} w_{ij}\,e^{s_{ij}}}{\sum_{j: y_j = c} w_{ij}}

    .. math::
        \ell_i = \gamma\,\mathrm{CE}\big(z_i / T_s + \log\pi,\ y_i\big)
        + \beta\,\Big[\mathrm{CE}\big(\log S_i + \log\pi,\ y_i\big)
        + \mathrm{CE}\big(\log S'_i + \log\pi,\ y_i\big)\Big]
        + \alpha\,T_d^2\,\mathrm{KL}\big(\mathrm{softmax}(z^t_i/(T_s T_d)) \,\|\, \mathrm{softmax}(z_i/(T_s T_d))\big)

    where :math:`\log S` uses every key (:math:`w = 1`) with :math:`T` held
    constant, and :math:`\log S'` leaves out a query's own key (:math:`w_{ij} =
    [\mathrm{id}_i \ne \mathrm{id}_j]`) with the similarities held constant, so
    that it trains only the (learnable) temperature :math:`T`, as in the
    official code. :math:`\pi` are the class priors (training frequencies).
    A class with no key gets the contrastive logit :math:`-\infty` (the queue
    holds keys of every class; a query whose own class has none gets an
    infinite loss).

    Args:
      embeddings: normalized query embeddings ``q`` ``[N, D]``.
      labels: integer labels of the queries ``[N]``.
      logits: the classifier's logits ``z`` ``[N, C]``.
      key_embeddings: normalized key embeddings ``k`` ``[M, D]`` (the momentum encoder's queue).
      key_labels: integer labels of the keys ``[M]``.
      query_ids: dataset indices of the queries ``[N]``: a key with the same index is left out of
        :math:`\log S'` (pass indices no key has, e.g. ``-1 - arange(N)``, to leave none out).
      key_ids: dataset indices of the keys ``[M]``.
      teacher_logits: a teacher's logits ``[N, C]`` for the distillation term (None: no term).
      class_priors: class frequencies or counts ``[C]`` (normalized to sum 1; held constant).
      temperature: :math:`T` of the contrastive logits (official: 0.07, learned); a float or a traced scalar.
      logit_temperature: :math:`T_s` dividing the classifier's logits (official: 1/30, fixed).
      contrastive_weight: :math:`\beta` (official: 1.0).
      ce_weight: :math:`\gamma` (official: 1.0).
      distill_weight: :math:`\alpha` (official: 0.0, or its teacher-student stage's weight).
      distill_temperature: :math:`T_d` of the distillation (official: 4).
      where: boolean mask ``[N]`` of the queries.

    Returns:
      Per-query losses ``[N]`` (the official code averages them).

    Paper:
      Suh, Seo. Long-Tailed Recognition by Mutual Information Maximization between Latent Features and
      Ground-Truth Labels (ICML 2023, arXiv:2305.01160).

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.losses import gml_loss
      >>> q = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> y, ids = jnp.array([0, 1]), jnp.arange(2)
      >>> loss = gml_loss(q, y, jnp.zeros((2, 2)), q, y, ids, -1 - ids, class_priors=[0.5, 0.5])
      >>> loss.shape
      (2,)
    """
    fn = "gml_loss"
    q = C.check_array(fn, "embeddings", embeddings, ndim=2, dtype="float")
    n, d = q.shape
    labels = C.check_array(fn, "labels", labels, ndim=1, dtype="int", shape=(n,))
    z = check_logits(fn, logits, min_classes=2)
    if z.shape != (n, z.shape[-1]):
        raise ValueError(f"{fn}: `logits` must have shape ({n}, C) like the embeddings, got {z.shape}.")
    c = z.shape[-1]
    k = C.check_array(fn, "key_embeddings", key_embeddings, ndim=2, dtype="float")
    if k.shape[1] != d:
        raise ValueError(f"{fn}: `key_embeddings` must have shape (M, {d}) like the embeddings, got {k.shape}.")
    m = k.shape[0]
    key_labels = C.check_array(fn, "key_labels", key_labels, ndim=1, dtype="int", shape=(m,))
    for arg, v in (("logit_temperature", logit_temperature), ("distill_temperature", distill_temperature)):
        C.check_positive(fn, arg, v)
    C.check_positive(fn, "temperature", temperature)
    for arg, v in (("contrastive_weight", contrastive_weight), ("ce_weight", ce_weight)):
        C.check_positive(fn, arg, v, allow_zero=True)
    C.check_positive(fn, "distill_weight", distill_weight, allow_zero=True)
    dtype = C.compute_dtype(q, z, k)
    mask = C.prepare_where(fn, where, (n,))
    q = C.fill_masked(C.as_compute(q, dtype), mask)
    z = C.fill_masked(C.as_compute(z, dtype), mask)
    k = C.as_compute(k, dtype)
    priors = _per_class(fn, "class_priors", class_priors, c, dtype)
    log_prior = _bcast(jnp.log(priors / jnp.sum(priors)), 2)
    onehot = C.class_targets(fn, z, labels, dtype, where=mask)
    key_onehot = jax.lax.stop_gradient(C.class_targets(fn, jnp.zeros((m, c), dtype), key_labels, dtype))
    t = jnp.asarray(temperature, dtype)
    dots = q @ k.T  # [N, M]
    every = jnp.ones((n, m), dtype)
    qi = C.check_array(fn, "query_ids", query_ids, dtype="int", shape=(n,))
    ki = C.check_array(fn, "key_ids", key_ids, dtype="int", shape=(m,))
    others = (qi[:, None] != ki[None, :]).astype(dtype)
    log_s = _class_log_mean_exp(dots / jax.lax.stop_gradient(t), key_labels, key_onehot, every)
    log_s_t = _class_log_mean_exp(jax.lax.stop_gradient(dots) / t, key_labels, key_onehot, others)

    def ce(x):  # a class with no key (or prior 0) has a -inf logit: keep 0 * -inf out of the sum
        log_p = jax.nn.log_softmax(x + log_prior, axis=-1)
        return -jnp.sum(jnp.where(onehot != 0, onehot * log_p, jnp.zeros_like(log_p)), axis=-1)

    zs = z / C.const(logit_temperature, z)
    loss = C.const(ce_weight, z) * ce(zs)
    loss = loss + C.const(contrastive_weight, z) * (ce(log_s) + ce(log_s_t))
    if teacher_logits is not None and distill_weight != 0:
        zt = C.check_array(fn, "teacher_logits", teacher_logits, dtype="float", shape=(n, c))
        zt = C.fill_masked(C.as_compute(zt, dtype), mask) / C.const(logit_temperature, z)
        td = C.const(distill_temperature, z)
        log_ps = jax.nn.log_softmax(zs / td, axis=-1)
        log_pt = jax.nn.log_softmax(zt / td, axis=-1)
        kl = jnp.sum(jnp.exp(log_pt) * (log_pt - log_ps), axis=-1)
        loss = loss + C.const(distill_weight, z) * td * td * kl
    return C.zero_masked(loss, mask)


def _masked_log_softmax(x: Array, keep: Array) -> Array:
    """``x - log sum_{keep} exp(x)`` per row (the sum over the kept entries only; 0 where a row keeps none)."""
    any_kept = jnp.any(keep, axis=-1, keepdims=True)
    keep = keep | ~any_kept  # a row with nothing kept: a finite dummy normalizer, zeroed by the caller's masks
    neg = jnp.full_like(x, -jnp.inf)
    top = jax.lax.stop_gradient(jnp.max(jnp.where(keep, x, neg), axis=-1, keepdims=True, initial=-jnp.inf))
    total = jnp.sum(jnp.where(keep, jnp.exp(jnp.where(keep, x - top, jnp.zeros_like(x))), jnp.zeros_like(x)), -1)
    return x - (jnp.log(total)[..., None] + top)


def _sbcl_sample():
    rng = np.random.default_rng(34)

    def unit(x):
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)

    a = unit(rng.normal(size=(6, 3)))
    b = unit(a + 0.4 * rng.normal(size=(6, 3)))
    labels = np.array([0, 0, 0, 1, 2, 1], np.int32)
    subclasses = np.array([0, 1, 1, 2, 3, 2], np.int32)  # class 0 split in two subclasses
    return Sample(
        args=(a, b, labels, subclasses),
        kwargs={"class_temperatures": np.array([0.1, 0.15, 0.08], np.float32)},
        diff_argnums=(0, 1),
        fuzz_scaled=(),  # normalized embeddings divided by temperatures of 0.1
        variants=({"class_temperatures": None, "temperature": 0.2, "class_level_weight": 0.5},),
        extremes=((a * 3.0, b * 3.0, labels, subclasses), (np.zeros_like(a), np.zeros_like(b), labels, subclasses)),
    )


@register(
    "subclass_balancing_contrastive_loss",
    aliases=("sbcl_loss",),
    family=FAMILY,
    kind="batch",
    formula="mean_i [-(T / T_base) mean_{p: s_p = s_i} log softmax_{j != i}(a_i . a_j / T)_p "
    "- w mean_{p in P_i} log softmax_{j in D_i}(a_i . a_j / tau_{y_i})_p], D_i = {other view} + {s_j != s_i}, "
    "P_i = {other view} + {s_j != s_i, y_j = y_i}",
    paper="Subclass-balancing Contrastive Learning for Long-tailed Recognition (2023, arXiv:2306.15925)",
    reference="JackHck/SBCL@3b9047a SimCLR/loss.py::SupConLoss_rank (ported to torch float64)",
    sample=_sbcl_sample,
)
def subclass_balancing_contrastive_loss(
    embeddings_a: ArrayLike,
    embeddings_b: ArrayLike,
    labels: ArrayLike,
    subclass_labels: ArrayLike,
    *,
    class_temperatures: ArrayLike | None = None,
    temperature: float = 0.1,
    base_temperature: float = 0.07,
    class_level_weight: float = 0.25,
    where: ArrayLike | None = None,
) -> Array:
    r"""SBCL: supervised contrastive learning on subclasses plus a class-level term over the other subclasses.

    The two views are stacked into :math:`2B` anchors :math:`a_i` (view a, then
    view b). With subclass labels :math:`s` (clusters of the head classes,
    computed outside the loss) and class labels :math:`y`:

    .. math::
        \ell_i = -\frac{T}{T_b}\,\frac{1}{|S_i|}\sum_{p \in S_i}
        \log\frac{e^{a_i\cdot a_p/T}}{\sum_{j \ne i} e^{a_i\cdot a_j/T}}
        - w\,\frac{1}{|P_i|}\sum_{p \in P_i}
        \log\frac{e^{a_i\cdot a_p/\tau_{y_i}}}{\sum_{j \in D_i} e^{a_i\cdot a_j/\tau_{y_i}}}

    with :math:`S_i = \{j \ne i: s_j = s_i\}`, :math:`D_i` = the other view
    of :math:`i` plus every anchor of another subclass, and :math:`P_i` = the
    other view plus the anchors of another subclass of the same class. The
    loss is the mean over the :math:`2B` anchors. :math:`\tau_c` are the
    class-level ("ranking") temperatures: the reference sets them from each
    class's feature spread, :math:`\tau_c = T\,d_c / \bar d` (clipped to the
    20-80th percentiles, :math:`T` for single-cluster classes), outside the loss.

    Args:
      embeddings_a: first views ``[B, D]`` (normalized).
      embeddings_b: second views ``[B, D]``; row ``i`` is the other view of row ``i`` of ``embeddings_a``.
      labels: class labels ``[B]``.
      subclass_labels: subclass (cluster) labels ``[B]``, globally unique across classes.
      class_temperatures: :math:`\tau_c` ``[C]`` (None: ``temperature`` for every class).
      temperature: :math:`T` (official: 0.1 on CIFAR, 0.07 on ImageNet-LT).
      base_temperature: :math:`T_b` (official: 0.07).
      class_level_weight: :math:`w`, the weight of the class-level term (the reference's ``grama``, 0.25).
      where: boolean mask ``[B]`` of the valid pairs of views (a masked row is out of every anchor's sums).

    Returns:
      The scalar batch loss (0 for an empty or all-masked batch).

    Paper:
      Hou, Zhang, Wang, Zhou. Subclass-balancing Contrastive Learning for Long-tailed Recognition (ICCV
      2023, arXiv:2306.15925).

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.losses import subclass_balancing_contrastive_loss
      >>> a = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
      >>> loss = subclass_balancing_contrastive_loss(a, a, jnp.array([0, 0, 1]), jnp.array([0, 1, 2]))
      >>> loss.shape
      ()
    """
    fn = "subclass_balancing_contrastive_loss"
    ea = C.check_array(fn, "embeddings_a", embeddings_a, ndim=2, dtype="float")
    eb = C.check_array(fn, "embeddings_b", embeddings_b, ndim=2, dtype="float", shape=ea.shape)
    b = ea.shape[0]
    labels = C.check_array(fn, "labels", labels, ndim=1, dtype="int", shape=(b,))
    subclass_labels = C.check_array(fn, "subclass_labels", subclass_labels, ndim=1, dtype="int", shape=(b,))
    for arg, v in (("temperature", temperature), ("base_temperature", base_temperature)):
        C.check_positive(fn, arg, v)
    C.check_positive(fn, "class_level_weight", class_level_weight, allow_zero=True)
    dtype = C.compute_dtype(ea, eb)
    mask = C.prepare_where(fn, where, (b,))
    valid = jnp.ones((b,), bool) if mask is None else mask
    x = jnp.concatenate([C.fill_masked(C.as_compute(ea, dtype), mask), C.fill_masked(C.as_compute(eb, dtype), mask)])
    y = jnp.concatenate([labels, labels])
    s = jnp.concatenate([subclass_labels, subclass_labels])
    ok = jnp.concatenate([valid, valid])
    n = 2 * b
    eye = jnp.eye(n, dtype=bool)
    other_view = jnp.roll(eye, b, axis=1)  # [i, i + B mod 2B]
    pair_ok = ok[:, None] & ok[None, :]
    same_sub = s[:, None] == s[None, :]
    same_cls = y[:, None] == y[None, :]
    sims = x @ x.T
    t = C.const(temperature, sims)
    if class_temperatures is None:
        tau = jnp.full((n,), temperature, dtype)
    else:
        temps = C.check_array(fn, "class_temperatures", class_temperatures, ndim=1, dtype="number")
        temps = jax.lax.stop_gradient(temps.astype(dtype))
        C.debug_check(jnp.all(temps > 0), f"{fn}: `class_temperatures` must be > 0")
        onehot = C.class_targets(fn, jnp.zeros((n, temps.shape[0]), dtype), y, dtype, where=ok)
        tau = jnp.where(ok, onehot @ temps, jnp.ones((n,), dtype))  # NaN for an out-of-range label
    keep = ~eye & pair_ok
    positives = same_sub & keep
    log_prob = _masked_log_softmax(sims / t, keep)
    count = jnp.sum(positives, axis=-1).astype(dtype)
    sub_term = jnp.sum(jnp.where(positives, log_prob, jnp.zeros_like(log_prob)), -1) / jnp.maximum(count, 1.0)
    rank_keep = (other_view | ~same_sub) & pair_ok
    rank_pos = (other_view | (~same_sub & same_cls)) & pair_ok
    log_prob_rank = _masked_log_softmax(sims / tau[:, None], rank_keep)
    rank_count = jnp.sum(rank_pos, axis=-1).astype(dtype)
    zeros = jnp.zeros_like(log_prob_rank)
    cls_term = jnp.sum(jnp.where(rank_pos, log_prob_rank, zeros), -1) / jnp.maximum(rank_count, 1.0)
    per_anchor = -(temperature / base_temperature) * sub_term - C.const(class_level_weight, sims) * cls_term
    per_anchor = jnp.where(ok, per_anchor, jnp.zeros_like(per_anchor))
    total = jnp.sum(ok).astype(dtype)
    return jnp.sum(per_anchor) / jnp.maximum(total, jnp.ones((), dtype))
