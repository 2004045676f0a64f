"""Classification losses: cross-entropy and the losses that modify it.

Every multiclass loss here takes ``logits [..., C]`` and either integer
``labels [...]`` or a target distribution ``labels [..., C]`` (decided at trace
time), and returns the per-example loss ``[...]`` unreduced (optax convention);
the binary ones (sigmoid BCE/focal, squared hinge) work element-wise; EnsLoss and
AnyLoss return one value for the batch.

Shared code lives in :mod:`lossjax._targets` (the softmax core every
``(logits, labels)`` family uses): ``target_probs`` turns ``(logits, labels)`` into
the target probabilities ``log p_y``, ``p_y`` and an exact ``1 - p_y``; focal,
poly-1, comp-sum, encouraging, squentropy, the hinge and sparsemax losses are all
``f(p_y)`` or ``f(z, q)`` on top of it, and a target distribution always means the
expectation of the integer-label loss under ``q``. Label smoothing is
``smoothed_class_targets``; ``comp_sum_phi`` is shared with
``generalized_cross_entropy`` (``comp_sum_loss`` with ``tau = 1 + q``, in the
noisy-label module).

optax names (``optax.losses.X`` -> ``lossjax.losses.Y``):
``softmax_cross_entropy`` and ``softmax_cross_entropy_with_integer_labels`` ->
``softmax_cross_entropy`` (integer or distribution labels; ``where`` of the batch
shape masks examples, of the logits' shape masks classes, as in optax);
``safe_softmax_cross_entropy``, ``smooth_labels`` (``alpha`` is
``label_smoothing``), ``sigmoid_binary_cross_entropy``, ``sigmoid_focal_loss``,
``hinge_loss``, ``perceptron_loss``, ``multiclass_hinge_loss``,
``multiclass_perceptron_loss`` keep their names (``predictor_outputs``/``scores``
are ``logits``, ``targets`` are ``labels``); ``poly_loss_cross_entropy`` ->
``poly1_cross_entropy`` (``epsilon`` is ``poly_coefficient``). The sparsemax
losses follow optax: ``sparsemax_loss`` is the BINARY loss (labels 0/1 of the
logits' shape) and ``multiclass_sparsemax_loss`` the multiclass one (``logits
[..., C]``; before this rename lossjax's ``sparsemax_loss`` was the multiclass
loss, now reachable as ``multiclass_sparsemax_loss`` or its alias
``sparsemax_multiclass_loss``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax import _elementwise
from lossjax._targets import (
    binary_terms,
    class_terms,
    comp_sum_phi,
    integer_cross_entropy,
    label_log_softmax,
    softmax_inputs,
    target_probs,
)
from lossjax.registry import Sample, register

__all__ = [
    "anyloss",
    "comp_sum_loss",
    "encouraging_loss",
    "ensloss",
    "focal_loss",
    "hinge_loss",
    "label_smoothing_cross_entropy",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "multiclass_sparsemax_loss",
    "multiclass_squared_hinge_loss",
    "one_vs_rest_loss",
    "perceptron_loss",
    "poly1_cross_entropy",
    "poly1_focal_loss",
    "rankmixup_loss",
    "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "smooth_adversarial_comp_sum_loss",
    "smooth_labels",
    "softmax_cross_entropy",
    "sparse_softmax_cross_entropy",
    "sparsemax_loss",
    "squared_hinge_loss",
    "squentropy",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

FAMILY = "classification"


def _check_real(fn: str, arg: str, value) -> None:
    """A scalar hyperparameter that may be negative: a finite number (NaN and +-inf rejected)."""
    C.check_array(fn, arg, value, ndim=0, dtype="number")
    C.check_in_range(fn, arg, value, -math.inf, math.inf, low_inclusive=False, high_inclusive=False)


#: Per-class weights of the 4-class samples (a variant of every loss taking ``class_weights``).
_W4 = np.array([0.5, 1.0, 2.0, 1.5], np.float32)


def _multiclass_sample(n: int = 6, c: int = 4, seed: int = 0, **kwargs) -> Sample:
    """``logits [n, c]`` and integer labels; the softmax edge cases (``class_axis``) on."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)).astype(np.float32) * 2
    labels = rng.integers(0, c, size=(n,)).astype(np.int32)
    return Sample(args=(logits, labels), class_axis=True, **kwargs)


def _binary_sample(n: int = 6, seed: int = 0, **kwargs) -> Sample:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n,)).astype(np.float32) * 2
    labels = rng.integers(0, 2, size=(n,)).astype(np.float32)
    return Sample(args=(logits, labels), **kwargs)


def _finite_class_extremes(args: tuple, diff_argnums: tuple[int, ...]) -> tuple[tuple, ...]:
    """The conformance extremes of a ``(logits [..., C], labels, ...)`` loss whose value at a ``-inf``
    logit is infinite by definition: every differentiated input at +-1e4 and at 0, then 1e4 beside
    1e-4 in one row and confidently wrong rows (the ``class_axis`` cases but ``-inf``)."""
    out = []
    for fill in ("big", "zero"):
        a = list(args)
        for i in diff_argnums:
            x = np.asarray(a[i])
            a[i] = (np.where(np.sign(x) == 0, 1.0, np.sign(x)) * 1e4 if fill == "big" else np.zeros_like(x)).astype(
                x.dtype
            )
        out.append(tuple(a))
    logits, labels = np.asarray(args[0]), np.asarray(args[1])
    c = logits.shape[-1]
    mixed = logits.copy()
    mixed[..., 0], mixed[..., 1] = 1e4, 1e-4
    wrong = logits.copy()
    wrong[np.eye(c, dtype=bool)[labels]] = -20.0
    wrong[np.eye(c, dtype=bool)[(labels + 1) % c]] = 20.0
    out += [(mixed, *args[1:]), (wrong, *args[1:])]
    return tuple(out)


@register(
    "softmax_cross_entropy",
    aliases=("cross_entropy", "ce", "weighted_cross_entropy"),
    family=FAMILY,
    kind="per_example",
    formula="-sum_c w_c q_c log softmax(z)_c,  q = (1 - a) onehot(y) + a / C",
    paper="Cross-Entropy Loss Functions: Theoretical Analysis and Applications (2023, arXiv:2304.07288)",
    reference="optax.softmax_cross_entropy(_with_integer_labels) + optax.smooth_labels; "
    "torch.nn.functional.cross_entropy(weight=, label_smoothing=)",
    sample=lambda: _multiclass_sample(
        variants=({"label_smoothing": 0.1}, {"label_smoothing": 0.2, "class_weights": _W4})
    ),
)
def softmax_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    label_smoothing: float = 0.0,
    class_weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Softmax cross-entropy with integer or distribution labels, label smoothing and class weights.

    .. math::
        \ell(z, y) = -\sum_c w_c\, q_c \log \mathrm{softmax}(z)_c,\qquad
        q = (1-a)\,\mathrm{onehot}(y) + a / C

    With ``class_weights`` this is PyTorch's ``cross_entropy(weight=w)`` per
    example; PyTorch's ``"mean"`` reduction then divides by the summed weight
    of the targets, ``sum_i w_{y_i}`` (use :func:`lossjax.masked_sum` for both).

    Args:
      logits: unnormalized scores ``[..., C]``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      label_smoothing: ``a`` in ``[0, 1)``; mixes the targets with the uniform distribution.
      class_weights: optional per-class weights ``[C]``.
      where: optional boolean mask broadcastable to ``[...]``; masked examples get 0.

    Returns:
      Per-example loss ``[...]`` (float32 for half-precision inputs).

    Paper: Mao, Mohri, Zhong, "Cross-Entropy Loss Functions: Theoretical Analysis
    and Applications", ICML 2023, arXiv:2304.07288 (the comp-sum analysis);
    label smoothing: Szegedy et al. 2016, arXiv:1512.00567.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
      >>> lossjax.losses.softmax_cross_entropy(logits, jnp.array([0, 1])).round(4)
      Array([0.2395, 1.0986], dtype=float32)
    """
    fn = "softmax_cross_entropy"
    t = softmax_inputs(fn, logits, labels, where, label_smoothing=label_smoothing, class_where=True)
    w = None
    if class_weights is not None:
        w = C.check_array(fn, "class_weights", class_weights, shape=(t.logits.shape[-1],), dtype="number")
        w = w.astype(t.dtype)
    if t.integer:  # row reductions only: no [..., C] log-probabilities stored for the backward pass
        return C.zero_masked(integer_cross_entropy(t, w), t.mask)
    q = t.targets if w is None else t.targets * jnp.reshape(w, (1,) * (t.targets.ndim - 1) + w.shape)
    return C.zero_masked(_cross_entropy(t.logits, q), t.mask)


def _cross_entropy(z: Array, q: Array) -> Array:
    """``-sum_c q_c log softmax(z)_c`` with ``0 * log 0 = 0`` (a ``-inf`` logit without target mass adds 0)."""
    log_p = jax.nn.log_softmax(z, axis=-1)
    return -jnp.sum(jnp.where(q != 0, q * log_p, jnp.zeros((), log_p.dtype)), axis=-1)


@register(
    "safe_softmax_cross_entropy",
    family=FAMILY,
    kind="per_example",
    formula="-sum_c q_c log softmax(z)_c  with 0 log 0 = 0 (a -inf logit without target mass adds 0)",
    paper="Cross-Entropy Loss Functions: Theoretical Analysis and Applications (2023, arXiv:2304.07288)",
    reference="optax.safe_softmax_cross_entropy",
    sample=lambda: _multiclass_sample(seed=8),
)
def safe_softmax_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
) -> Array:
    r"""Softmax cross-entropy with the convention ``0 log 0 = 0`` (optax's ``safe_softmax_cross_entropy``).

    .. math::
        \ell(z, q) = -\sum_{c:\,q_c \ne 0} q_c \log \mathrm{softmax}(z)_c

    A class whose logit is ``-inf`` and whose target is 0 contributes exactly 0
    and gets a zero gradient. Every softmax loss of lossjax follows this
    convention (:func:`softmax_cross_entropy` included): this entry is the
    optax name, with integer or distribution labels and ``where`` as in
    :func:`softmax_cross_entropy`.

    Args:
      logits: unnormalized scores ``[..., C]`` (``-inf`` allowed where the target is 0).
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      where: optional mask: of the batch shape (masks examples) or of the logits'
        shape (masks classes, as in optax).

    Returns:
      Per-example loss ``[...]``.

    Paper: none (the cross-entropy; optax ``safe_softmax_cross_entropy``); see Mao,
    Mohri, Zhong, arXiv:2304.07288.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.array([[2.0, -jnp.inf, 0.5]])
      >>> lossjax.losses.safe_softmax_cross_entropy(z, jnp.array([[1.0, 0.0, 0.0]])).round(4)
      Array([0.2014], dtype=float32)
    """
    fn = "safe_softmax_cross_entropy"
    t = softmax_inputs(fn, logits, labels, where, class_where=True)
    ce = integer_cross_entropy(t) if t.integer else _cross_entropy(t.logits, t.targets)
    return C.zero_masked(ce, t.mask)


@register(
    "sigmoid_binary_cross_entropy",
    aliases=("binary_cross_entropy", "bce"),
    family=FAMILY,
    kind="per_example",
    formula="softplus(z) - y z = -y log sigmoid(z) - (1 - y) log(1 - sigmoid(z))",
    reference="optax.sigmoid_binary_cross_entropy; torch.nn.functional.binary_cross_entropy_with_logits",
    sample=lambda: _binary_sample(variants=({"pos_weight": 2.5},)),
)
def sigmoid_binary_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    pos_weight: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Element-wise sigmoid binary cross-entropy on logits.

    .. math::
        \ell(z, y) = -\,p\,y \log\sigma(z) - (1-y)\log(1-\sigma(z))

    computed as ``p*y*softplus(-z) + (1-y)*softplus(z)`` (finite for any ``z``).

    Args:
      logits: scores ``[...]``.
      labels: targets in ``[0, 1]`` of the same shape (float, int or bool).
      pos_weight: ``p``, the weight of the positive term (PyTorch's ``pos_weight``).
      where: optional boolean mask broadcastable to ``logits.shape``.

    Returns:
      Per-element loss, ``logits.shape``.

    Paper: none (the logistic loss: Cox, "The Regression Analysis of Binary
    Sequences", 1958; no arXiv id); reference: ``optax.sigmoid_binary_cross_entropy``.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.sigmoid_binary_cross_entropy(jnp.array([0.0, 3.0]), jnp.array([1.0, 0.0])).round(4)
      Array([0.6931, 3.0486], dtype=float32)
    """
    fn = "sigmoid_binary_cross_entropy"
    C.check_positive(fn, "pos_weight", pos_weight, allow_zero=True)
    z, y, mask, dtype = binary_terms(fn, logits, labels, where)
    p = jnp.asarray(pos_weight, dtype)
    loss = p * y * jax.nn.softplus(-z) + (1 - y) * jax.nn.softplus(z)
    return C.zero_masked(loss, mask)


# --------------------------------------------------------------------------
# Focal and poly-1.
# --------------------------------------------------------------------------


def _focal_sample() -> Sample:
    # Confidently wrong rows (a logit gap of 40) are among the class-axis extremes: a floor on
    # log p (log p >= log 1e-7) would cap their loss at 16.1 and their gradient at ~0.
    # The plain sample (gamma = 2) carries the extremes; gamma = 0.5 (an infinite slope of (1 - p)^gamma
    # at p = 1) is a variant on the ordinary rows.
    return _multiclass_sample(
        seed=2, variants=({"gamma": 0.5, "class_weights": _W4}, {"gamma": 0.0, "class_weights": 0.25})
    )


@register(
    "focal_loss",
    aliases=("focal", "softmax_focal_loss"),
    family=FAMILY,
    kind="per_example",
    formula="sum_c q_c w_c (1 - p_c)^gamma (-log p_c),  p = softmax(z),  w = class_weights (alpha_c in the paper)",
    paper="Focal Loss for Dense Object Detection (2017, arXiv:1708.02002)",
    reference="closed form (gamma=0: optax.softmax_cross_entropy); torch port of the softmax focal formula",
    sample=_focal_sample,
)
def focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    gamma: float = 2.0,
    class_weights: float | ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Softmax focal loss: cross-entropy down-weighted on well-classified examples.

    .. math::
        \ell(z, y) = -w_y\,(1 - p_y)^\gamma \log p_y,\qquad p = \mathrm{softmax}(z)

    ``w = class_weights`` is the paper's ``alpha`` (per class, or one scalar);
    :func:`sigmoid_focal_loss` keeps the name ``alpha`` for its different
    positive-class weight. With a target distribution ``q`` the loss is its expectation,
    :math:`\sum_c q_c w_c (1-p_c)^\gamma(-\log p_c)`. ``(1 - p)`` is
    computed as the sum of the other classes' probabilities (exact when ``p``
    rounds to 1) and raised to ``gamma`` in log space, so the gradient is finite
    for ``0 < gamma < 1`` at ``p = 1``. ``gamma = 0`` is cross-entropy.

    Args:
      logits: unnormalized scores ``[..., C]``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      gamma: focusing parameter ``>= 0``.
      class_weights: None (no weighting), a scalar weight ``>= 0``, or per-class weights ``[C]``.
      where: optional boolean mask broadcastable to ``[...]``; masked examples get 0.

    Returns:
      Per-example loss ``[...]``.

    Paper: Lin, Goyal, Girshick, He, Dollár, "Focal Loss for Dense Object
    Detection", ICCV 2017, arXiv:1708.02002.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
      >>> lossjax.losses.focal_loss(logits, jnp.array([0, 1])).round(4)
      Array([0.0109, 0.4883], dtype=float32)
    """
    fn = "focal_loss"
    C.check_positive(fn, "gamma", gamma, allow_zero=True)
    t = target_probs(fn, logits, labels, where=where, class_weights=class_weights, class_where=True)
    return t.expect(C.safe_power(t.one_minus_p, gamma) * -t.log_p)


def _sigmoid_sample() -> Sample:
    # The automatic zero extreme puts every logit at exactly 0, where the gradient once was wrong.
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(6, 3)).astype(np.float32) * 2
    labels = rng.integers(0, 2, size=(6, 3)).astype(np.float32)
    return Sample(args=(logits, labels), variants=({"alpha": None}, {"alpha": 0.4, "gamma": 0.5}))


@register(
    "sigmoid_focal_loss",
    aliases=("binary_focal_loss",),
    family=FAMILY,
    kind="per_example",
    formula="alpha_t (1 - p_t)^gamma BCE(z, y),  p_t = y sigmoid(z) + (1 - y)(1 - sigmoid(z))",
    paper="Focal Loss for Dense Object Detection (2017, arXiv:1708.02002)",
    reference="optax.sigmoid_focal_loss (alpha=None); torchvision.ops.sigmoid_focal_loss (alpha=0.25)",
    sample=_sigmoid_sample,
)
def sigmoid_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Element-wise sigmoid focal loss (RetinaNet), for binary or multi-label targets.

    .. math::
        \ell(z, y) = \alpha_t (1 - p_t)^\gamma\,\mathrm{BCE}(z, y),\quad
        p_t = y\,\sigma(z) + (1-y)(1-\sigma(z)),\quad \alpha_t = \alpha y + (1-\alpha)(1-y)

    ``1 - p_t = y\,\sigma(-z) + (1-y)\,\sigma(z)`` is a sum of non-negative terms
    (no cancellation) and is raised to ``gamma`` in log space: finite gradients for
    any ``gamma >= 0`` and logits of any size. Soft labels in ``[0, 1]`` are allowed.

    Args:
      logits: scores ``[...]``.
      labels: targets in ``[0, 1]`` with the shape of ``logits``.
      alpha: weight of the positive class in ``[0, 1]`` (0.25 as in RetinaNet and
        torchvision); ``None`` means no weighting (optax's default).
      gamma: focusing parameter ``>= 0``.
      where: optional boolean mask broadcastable to ``logits.shape``.

    Returns:
      Per-element loss with the shape of ``logits``.

    Paper: Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017, arXiv:1708.02002.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.sigmoid_focal_loss(jnp.array([0.0, 2.0]), jnp.array([1.0, 0.0])).round(4)
      Array([0.0433, 1.2376], dtype=float32)
    """
    fn = "sigmoid_focal_loss"
    C.check_positive(fn, "gamma", gamma, allow_zero=True)
    if alpha is not None:
        C.check_in_range(fn, "alpha", alpha, 0.0, 1.0)
    z, y, mask, dtype = binary_terms(fn, logits, labels, where)
    if _elementwise.focal_custom_vjp(alpha, gamma):  # a value pass + a closed-form gradient pass (accelerators)
        return C.zero_masked(_elementwise.focal(z, y, alpha=alpha, gamma=gamma), mask)
    # CPU or traced hyperparameters: the same formula through autodiff (gradients w.r.t. alpha, gamma too).
    # One exp, one log1p and one reciprocal per element (memory-bound: keep it one fusible expression).
    # Every kink is taken on the same side (z >= 0) so that the derivatives of the two branches
    # agree at z = 0: |z|, max(z, 0) and max(-z, 0) written with jnp.abs/jnp.maximum would each
    # get JAX's tie rule there (d|z| = 0, d max = 1/2) and the gradient at a zero logit was wrong.
    nonneg = z >= 0
    zero = jnp.zeros((), dtype)
    e = jnp.exp(-jnp.where(nonneg, z, -z))  # exp(-|z|)
    log1p_e = jnp.log1p(e)
    sp_neg = jnp.where(nonneg, zero, -z) + log1p_e  # -log sigmoid(z), exact for any z
    sp_pos = jnp.where(nonneg, z, zero) + log1p_e  # -log sigmoid(-z)
    inv = 1 / (1 + e)
    sig_pos, sig_neg = jnp.where(nonneg, inv, e * inv), jnp.where(nonneg, e * inv, inv)  # sigmoid(+-z)
    bce = y * sp_neg + (1 - y) * sp_pos
    one_minus_pt = y * sig_neg + (1 - y) * sig_pos
    loss = C.safe_power(one_minus_pt, gamma) * bce
    if alpha is not None:
        a = jnp.asarray(alpha, dtype)
        loss = (a * y + (1 - a) * (1 - y)) * loss
    return C.zero_masked(loss, mask)


@register(
    "poly1_cross_entropy",
    aliases=("poly1", "poly_loss_cross_entropy"),
    family=FAMILY,
    kind="per_example",
    formula="CE(z, q) + poly_coefficient (1 - sum_c q_c p_c)",
    paper="PolyLoss: A Polynomial Expansion Perspective of Classification Loss Functions (2022, arXiv:2204.12511)",
    reference="optax.poly_loss_cross_entropy",
    sample=lambda: _multiclass_sample(seed=1, variants=({"poly_coefficient": -1.0},)),
)
def poly1_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    poly_coefficient: float = 2.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Poly-1 cross-entropy: cross-entropy plus ``poly_coefficient`` times the first polynomial term.

    .. math::
        \ell(z, y) = -\log p_y + \epsilon_1\,(1 - p_y)

    With a target distribution ``q``: :math:`\sum_c q_c(-\log p_c) + \epsilon_1(1 - \sum_c q_c p_c)`
    (optax's convention; it is the expectation of the integer-label loss).
    ``poly_coefficient`` is the paper's ``epsilon_1``, which
    ``optax.poly_loss_cross_entropy`` calls ``epsilon``; in lossjax ``epsilon``
    only ever names a numerical guard.

    Args:
      logits: unnormalized scores ``[..., C]``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      poly_coefficient: coefficient ``epsilon_1`` of ``(1 - p_y)``; 2.0 for ImageNet (the paper
        and optax), -1.0 for detection. Values below -1 make the loss non-monotone.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Leng et al., "PolyLoss: A Polynomial Expansion Perspective of
    Classification Loss Functions", ICLR 2022, arXiv:2204.12511.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.poly1_cross_entropy(jnp.array([[2.0, 0.0, 0.0]]), jnp.array([0])).round(4)
      Array([0.6656], dtype=float32)
    """
    fn = "poly1_cross_entropy"
    _check_real(fn, "poly_coefficient", poly_coefficient)
    t = target_probs(fn, logits, labels, where=where, class_where=True)
    coef = jnp.asarray(poly_coefficient, t.logits.dtype)
    return t.expect(-t.log_p + coef * t.one_minus_p)


@register(
    "poly1_focal_loss",
    aliases=("poly1_focal",),
    family=FAMILY,
    kind="per_example",
    formula="w_y [focal_gamma(z, y) + poly_coefficient (1 - p_y)^(gamma + 1)],  w = class_weights",
    paper="PolyLoss: A Polynomial Expansion Perspective of Classification Loss Functions (2022, arXiv:2204.12511)",
    reference="closed form: focal_loss + poly_coefficient (1 - p_y)^(gamma+1) (paper eq. 4)",
    sample=lambda: _multiclass_sample(
        seed=3, variants=({"poly_coefficient": -1.0, "gamma": 0.5, "class_weights": _W4},)
    ),
)
def poly1_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    poly_coefficient: float = 1.0,
    gamma: float = 2.0,
    class_weights: float | ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Poly-1 focal loss (softmax): the focal loss plus ``poly_coefficient (1 - p_y)^(gamma + 1)``.

    .. math::
        \ell(z, y) = w_y\left[-(1 - p_y)^\gamma \log p_y + \epsilon_1\,(1 - p_y)^{\gamma+1}\right]

    The class weighting ``w = class_weights`` (the focal paper's ``alpha``)
    multiplies both terms; a target distribution takes the expectation over
    ``q``. ``poly_coefficient = 0`` is :func:`focal_loss`. ``poly_coefficient``
    is the paper's ``epsilon_1`` (optax's ``epsilon`` in ``poly_loss_cross_entropy``).

    Args:
      logits: unnormalized scores ``[..., C]``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      poly_coefficient: coefficient ``epsilon_1`` of the added polynomial term (the
        paper used -1 for detection, 1 as a generic first try).
      gamma: focusing parameter ``>= 0``.
      class_weights: None, a scalar weight ``>= 0``, or per-class weights ``[C]``.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Leng et al., "PolyLoss", ICLR 2022, arXiv:2204.12511 (Poly-1 focal, eq. 4).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.poly1_focal_loss(jnp.array([[0.0, 0.0]]), jnp.array([0])).round(4)
      Array([0.2983], dtype=float32)
    """
    fn = "poly1_focal_loss"
    C.check_positive(fn, "gamma", gamma, allow_zero=True)
    _check_real(fn, "poly_coefficient", poly_coefficient)
    t = target_probs(fn, logits, labels, where=where, class_weights=class_weights, class_where=True)
    w = C.safe_power(t.one_minus_p, gamma)
    coef = jnp.asarray(poly_coefficient, t.logits.dtype)
    return t.expect(w * (-t.log_p + coef * t.one_minus_p))


@register(
    "label_smoothing_cross_entropy",
    aliases=("label_smoothing_ce", "smoothed_cross_entropy"),
    family=FAMILY,
    kind="per_example",
    formula="-sum_c q_c log p_c,  q = (1 - a) onehot(y) + a / C",
    paper="Rethinking the Inception Architecture for Computer Vision (2015, arXiv:1512.00567)",
    reference="optax.smooth_labels + optax.softmax_cross_entropy; torch cross_entropy(label_smoothing=)",
    sample=lambda: _multiclass_sample(seed=7, variants=({"label_smoothing": 0.3},)),
)
def label_smoothing_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    label_smoothing: float = 0.1,
    where: ArrayLike | None = None,
) -> Array:
    r"""Cross-entropy against targets mixed with the uniform distribution (default 0.1).

    .. math::
        \ell(z, y) = -\sum_c q_c \log \mathrm{softmax}(z)_c,\qquad q = (1-a)\,\mathrm{onehot}(y) + a/C

    :func:`softmax_cross_entropy` with ``label_smoothing=0.1`` by default.

    Args:
      logits: unnormalized scores ``[..., C]``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``
        (smoothed too, as ``optax.smooth_labels`` does).
      label_smoothing: ``a`` in ``[0, 1)``.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Szegedy et al., "Rethinking the Inception Architecture for Computer
    Vision", CVPR 2016, arXiv:1512.00567 (section 7).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.label_smoothing_cross_entropy(jnp.array([[2.0, 0.0, 0.0]]), jnp.array([0])).round(4)
      Array([0.3729], dtype=float32)
    """
    fn = "label_smoothing_cross_entropy"
    t = softmax_inputs(fn, logits, labels, where, label_smoothing=label_smoothing, class_where=True)
    ce = integer_cross_entropy(t) if t.integer else _cross_entropy(t.logits, t.targets)
    return C.zero_masked(ce, t.mask)


def _smooth_labels_sample() -> Sample:
    rng = np.random.default_rng(13)
    labels = rng.dirichlet(np.ones(4), size=6).astype(np.float32)
    classes = np.ones((6, 4), bool)
    classes[::2, 3] = False
    classes[1, 0] = False
    return Sample(
        args=(labels,),
        kwargs={"label_smoothing": 0.2},
        where=False,
        variants=({"label_smoothing": 0.5, "where": classes},),
    )


@register(
    "smooth_labels",
    family=FAMILY,
    kind="function",
    formula="(1 - a) q + a / K,  K = #classes (#classes where `where` is True)",
    paper="When Does Label Smoothing Help? (2019, arXiv:1906.02629)",
    reference="optax.smooth_labels",
    sample=_smooth_labels_sample,
)
def smooth_labels(labels: ArrayLike, label_smoothing, *, where: ArrayLike | None = None) -> Array:
    r"""Label smoothing of a target distribution (``optax.smooth_labels``).

    .. math:: \tilde q = (1 - a)\,q + a / K

    with ``K = C`` classes, or ``K`` the number of classes where ``where`` is
    True (a class mask of the labels' shape, as in optax: the uniform share goes
    to every entry, and the masked entries are meant to be ignored by a loss
    that takes the same mask). optax's ``alpha`` is ``label_smoothing`` here
    (positional as in optax). A row whose mask is all False keeps
    ``(1 - a) q + a`` (optax divides by 0 there). The losses apply smoothing
    themselves (``softmax_cross_entropy(label_smoothing=a)``), also with integer labels.

    Args:
      labels: a target distribution (e.g. one-hot) ``[..., C]``, float.
      label_smoothing: ``a`` in ``[0, 1]``.
      where: optional boolean class mask broadcastable to ``labels.shape`` (same rank).

    Returns:
      The smoothed targets ``[..., C]`` (float32 for half-precision labels).

    Paper: Müller, Kornblith, Hinton, "When Does Label Smoothing Help?", NeurIPS
    2019, arXiv:1906.02629; Szegedy et al., arXiv:1512.00567.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.smooth_labels(jnp.array([[1.0, 0.0, 0.0, 0.0]]), 0.2)
      Array([[0.85, 0.05, 0.05, 0.05]], dtype=float32)
    """
    fn = "smooth_labels"
    labels = C.check_array(fn, "labels", labels, min_ndim=1, dtype="float")
    C.check_in_range(fn, "label_smoothing", label_smoothing, 0.0, 1.0)
    dtype = C.compute_dtype(labels)
    q = C.as_compute(labels, dtype)
    a = jnp.asarray(label_smoothing, dtype)
    if where is None:
        count = jnp.asarray(labels.shape[-1], dtype)
    else:
        w = jnp.asarray(where)
        if w.dtype != jnp.bool_:
            raise TypeError(f"{fn}: `where` must be a boolean mask, got dtype {w.dtype}.")
        if w.ndim != labels.ndim or not all(a_ in (1, b) for a_, b in zip(w.shape, labels.shape, strict=True)):
            raise ValueError(
                f"{fn}: `where` must be a class mask broadcastable to labels.shape={labels.shape} "
                f"with the same rank, got shape {w.shape}."
            )
        count = jnp.sum(jnp.broadcast_to(w, labels.shape), axis=-1, keepdims=True).astype(dtype)
        count = jnp.maximum(count, jnp.ones((), dtype))
    return (1 - a) * q + a / count


# --------------------------------------------------------------------------
# Comp-sum family (CE, GCE, MAE, sum-exponential) and its adversarial variant.
# --------------------------------------------------------------------------


def _comp_sum_sample() -> Sample:
    # The plain sample (whose extremes are valued) has tau >= 1: for tau < 1 the loss grows like
    # p_y^(tau - 1) and saturates (documented) at the mixed-magnitude extreme.
    return _multiclass_sample(seed=4, kwargs={"tau": 1.5}, variants=({"tau": 0.0}, {"tau": 1.0}, {"tau": 2.0}))


@register(
    "comp_sum_loss",
    aliases=("comp_sum",),
    family=FAMILY,
    kind="per_example",
    formula="Phi^tau(sum_{y' != y} exp(z_y' - z_y)) = (1 - p_y^(tau-1)) / (tau - 1);  tau=1: -log p_y",
    paper="Cross-Entropy Loss Functions: Theoretical Analysis and Applications (2023, arXiv:2304.07288)",
    reference="closed forms: tau=0 sum-exponential, tau=1 optax.softmax_cross_entropy, tau=2 1 - p_y, tau=1+q GCE",
    sample=_comp_sum_sample,
)
def comp_sum_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    tau: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""The comp-sum family: cross-entropy, sum-exponential, GCE and MAE under one ``tau``.

    .. math::
        \ell_\tau(z, y) = \Phi^\tau\Big(\sum_{y'\ne y} e^{z_{y'} - z_y}\Big),\quad
        \Phi^\tau(u) = \begin{cases}\log(1+u) & \tau = 1\\
        \frac{(1+u)^{1-\tau} - 1}{1-\tau} & \tau \ne 1\end{cases}

    Since ``1 + u = 1 / p_y`` this is ``(1 - p_y^{tau-1}) / (tau - 1)``, computed
    in log space from ``log_softmax``: ``tau = 0`` the sum-exponential loss
    ``1/p_y - 1``, ``tau = 1`` cross-entropy, ``tau in (1, 2)`` generalized
    cross-entropy with ``q = tau - 1`` (exactly :func:`generalized_cross_entropy`),
    ``tau = 2`` the MAE-like ``1 - p_y``. A target distribution takes the
    expectation over ``q``. For ``tau < 1`` the loss is unbounded; it saturates
    at ``p_y^(tau-1) = e^80`` instead of overflowing.

    Args:
      logits: unnormalized scores ``[..., C]``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      tau: the family parameter in ``[0, 2]`` (the paper compares 0, 1, 1.5, 2).
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Mao, Mohri, Zhong, "Cross-Entropy Loss Functions: Theoretical Analysis
    and Applications", ICML 2023, arXiv:2304.07288.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[2.0, 0.0, 0.0]])
      >>> [round(float(lossjax.losses.comp_sum_loss(logits, jnp.array([0]), tau=t)[0]), 4) for t in (0.0, 1.0, 2.0)]
      [0.2707, 0.2395, 0.213]
    """
    fn = "comp_sum_loss"
    C.check_in_range(fn, "tau", tau, 0.0, 2.0)
    t = target_probs(fn, logits, labels, where=where)
    return t.expect(comp_sum_phi(t.log_p, tau))


def _adv_sample() -> Sample:
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(6, 4)).astype(np.float32) * 2
    perturbed = logits + rng.normal(size=(6, 4)).astype(np.float32)
    labels = rng.integers(0, 4, size=(6,)).astype(np.int32)
    args = (logits, labels, perturbed)
    # A -inf clean logit against a finite perturbed one changes the margin vector infinitely:
    # the loss is +inf there, so the class-axis extremes are taken without -inf.
    return Sample(
        args=args,
        diff_argnums=(0, 2),
        kwargs={"tau": 1.5},
        variants=({"tau": 0.5, "nu": 0.3},),
        extremes=_finite_class_extremes(args, (0, 2)),
    )


@register(
    "smooth_adversarial_comp_sum_loss",
    aliases=("adv_comp_sum", "adversarial_comp_sum_loss"),
    family=FAMILY,
    kind="per_example",
    formula="comp_sum_tau(z, y) + nu || (z' - z'_y) - (z - z_y) ||_2,  z' = logits at the caller's perturbed input",
    paper="Cross-Entropy Loss Functions: Theoretical Analysis and Applications (2023, arXiv:2304.07288)",
    reference="closed form: comp_sum_loss + nu * norm of the change of the margin vector",
    sample=_adv_sample,
)
def smooth_adversarial_comp_sum_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    perturbed_logits: ArrayLike,
    *,
    tau: float = 1.0,
    nu: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Smooth adversarial comp-sum loss: comp-sum on clean logits plus a smooth margin-change penalty.

    .. math::
        \ell(z, z', y) = \ell_\tau(z, y) + \nu\,\big\|\bar\Delta(z', y) - \bar\Delta(z, y)\big\|_2,
        \qquad \bar\Delta(z, y) = (z_{y'} - z_y)_{y'}

    ``z'`` are the logits at the perturbed input the caller's attack found (the
    paper's supremum over ``\|x' - x\| \le \gamma``, e.g. by PGD on this penalty).
    The norm is zero-safe (finite gradient when ``z' = z``). A target
    distribution takes the expectation over ``q`` of both terms.

    Args:
      logits: clean logits ``[..., C]``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      perturbed_logits: logits of the perturbed inputs, same shape as ``logits``.
      tau: the comp-sum parameter in ``[0, 2]`` (see :func:`comp_sum_loss`).
      nu: weight of the smooth adversarial term ``>= 0``.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Mao, Mohri, Zhong, "Cross-Entropy Loss Functions: Theoretical Analysis
    and Applications", ICML 2023, arXiv:2304.07288 (section 6, smooth adversarial
    comp-sum losses).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.array([[2.0, 0.0, 0.0]])
      >>> lossjax.losses.smooth_adversarial_comp_sum_loss(z, jnp.array([0]), z + jnp.array([[0.0, 1.0, 0.0]])).round(4)
      Array([1.2395], dtype=float32)
    """
    fn = "smooth_adversarial_comp_sum_loss"
    C.check_in_range(fn, "tau", tau, 0.0, 2.0)
    C.check_positive(fn, "nu", nu, allow_zero=True)
    logits = C.check_array(fn, "logits", logits, min_ndim=1, dtype="float")
    perturbed = C.check_array(fn, "perturbed_logits", perturbed_logits, min_ndim=1, dtype="float")
    C.check_same_shape(fn, ("logits", "perturbed_logits"), logits, perturbed)
    t = target_probs(fn, logits, labels, where=where)
    dtype = t.logits.dtype
    zp = C.fill_masked(C.as_compute(perturbed, jnp.promote_types(dtype, C.compute_dtype(perturbed))), t.mask).astype(
        dtype
    )
    d = zp - t.logits  # change of every logit, [..., C]
    # ||d - d_c 1||^2 = sum_j d_j^2 - 2 d_c sum_j d_j + C d_c^2 for each candidate label c.
    num_classes = d.shape[-1]
    s1 = jnp.sum(d, axis=-1, keepdims=True)
    s2 = jnp.sum(jnp.square(d), axis=-1, keepdims=True)
    if t.log_p.shape[-1] == 1:  # integer labels: only the label's column
        d_c = jnp.sum(t.targets * d, axis=-1, keepdims=True)
    else:
        d_c = d
    sq = jnp.maximum(s2 - 2 * d_c * s1 + num_classes * jnp.square(d_c), 0.0)
    penalty = C.safe_sqrt(sq)
    return t.expect(comp_sum_phi(t.log_p, tau) + jnp.asarray(nu, dtype) * penalty)


# --------------------------------------------------------------------------
# Encouraging loss, squentropy.
# --------------------------------------------------------------------------


@register(
    "encouraging_loss",
    aliases=("el",),
    family=FAMILY,
    kind="per_example",
    formula="-log p_y + log(1 - p_y); for p_y > log_end the bonus is its tangent line at log_end",
    paper="Well-classified Examples are Underestimated in Classification with Deep Neural Networks "
    "(2021, arXiv:2110.06537)",
    reference="lancopku/well-classified-examples-are-underestimated EncouragingLoss.py::EncouragingLoss(log_end=0.75)",
    sample=lambda: _multiclass_sample(seed=9, variants=({"log_end": 1.0}, {"log_end": 0.5})),
)
def encouraging_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    log_end: float = 0.75,
    epsilon: float = 1e-5,
    where: ArrayLike | None = None,
) -> Array:
    r"""Encouraging loss: cross-entropy plus a bonus that keeps rewarding well-classified examples.

    .. math::
        \ell(z, y) = -\log p_y + b(p_y),\quad
        b(p) = \begin{cases}\log\max(1 - p, \epsilon) & p \le e\\
        \frac{p - e}{e - 1} + \log(1 - e) & p > e\end{cases}

    ``e = log_end``: past it the bonus ``log(1 - p)`` is replaced by its tangent
    line (the "conservative" bonus of the reference, bounded below);
    ``log_end = 1`` is the full bonus, clamped at ``epsilon`` as in the reference.
    ``1 - p`` is computed without cancellation. A target distribution takes the
    expectation over ``q`` (the reference's label-smoothed variant).

    Args:
      logits: unnormalized scores ``[..., C]``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      log_end: where the log bonus turns linear, in ``(0, 1]`` (0.75 in the reference).
      epsilon: the clamp of ``1 - p`` in the log bonus (the reference's 1e-5).
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]`` (can be negative: the bonus is a reward).

    Paper: Zhao et al., "Well-classified Examples are Underestimated in
    Classification with Deep Neural Networks", AAAI 2022, arXiv:2110.06537.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.encouraging_loss(jnp.array([[0.0, 0.0], [4.0, 0.0]]), jnp.array([0, 0])).round(4)
      Array([ 0.    , -2.2962], dtype=float32)
    """
    fn = "encouraging_loss"
    C.check_in_range(fn, "log_end", log_end, 0.0, 1.0, low_inclusive=False)
    C.check_positive(fn, "epsilon", epsilon)
    t = target_probs(fn, logits, labels, where=where)
    dtype = t.logits.dtype
    e = jnp.asarray(log_end, dtype)
    bonus = jnp.log(jnp.maximum(t.one_minus_p, jnp.asarray(epsilon, dtype)))
    linear_tail = e < 1
    e_safe = jnp.where(linear_tail, e, jnp.asarray(0.5, dtype))
    tail = (t.p - e_safe) / (e_safe - 1) + jnp.log1p(-e_safe)
    bonus = jnp.where(linear_tail & (t.p > e_safe), tail, bonus)
    return t.expect(-t.log_p + bonus)


def _squentropy_sample() -> Sample:
    # z_j^2 of a -inf logit is +inf: the class-axis extremes without -inf.
    s = _multiclass_sample(seed=10)
    return Sample(args=s.args, extremes=_finite_class_extremes(s.args, (0,)))


@register(
    "squentropy",
    aliases=("squentropy_loss",),
    family=FAMILY,
    kind="per_example",
    formula="CE(z, y) + 1/(C-1) sum_{j != y} z_j^2",
    paper="Cut your Losses with Squentropy (2023, arXiv:2302.03952)",
    reference="Like-Hui/Squentropy-for-classification main.py (--loss_type mixed)",
    sample=_squentropy_sample,
)
def squentropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
) -> Array:
    r"""Squentropy: cross-entropy plus the mean square of the incorrect classes' logits.

    .. math::
        \ell(z, y) = -\log p_y + \frac{1}{C-1}\sum_{j \ne y} z_j^2

    With a target distribution ``q`` (its expectation):
    :math:`\sum_c q_c(-\log p_c) + \frac{1}{C-1}\sum_j (1 - q_j) z_j^2`.

    Args:
      logits: unnormalized scores ``[..., C]`` with ``C >= 2``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Hui, Belkin, Wright, "Cut your Losses with Squentropy", ICML 2023, arXiv:2302.03952.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.squentropy(jnp.array([[2.0, 1.0, -1.0]]), jnp.array([0])).round(4)
      Array([1.349], dtype=float32)
    """
    fn = "squentropy"
    t = target_probs(fn, logits, labels, where=where, min_classes=2)
    num_classes = t.logits.shape[-1]
    square = jnp.sum((1 - t.targets) * jnp.square(t.logits), axis=-1) / (num_classes - 1)
    return t.expect(-t.log_p) + C.zero_masked(square, t.mask)


# --------------------------------------------------------------------------
# Hinge losses.
# --------------------------------------------------------------------------

_HINGE_VARIANTS = ("crammer_singer", "weston_watkins", "one_vs_rest")


def _multiclass_hinge(fn: str, logits, labels, margin, variant, squared: bool, where) -> Array:
    C.check_one_of(fn, "variant", variant, _HINGE_VARIANTS)
    _check_real(fn, "margin", margin)
    t = target_probs(fn, logits, labels, where=where, min_classes=2)
    z, q = t.logits, t.targets
    m = jnp.asarray(margin, z.dtype)
    zero = jnp.zeros((), z.dtype)

    def h(x):
        x = jnp.maximum(x, zero)
        return jnp.square(x) if squared else x

    # A logit of -inf (a class that cannot be predicted) enters only through terms
    # that vanish: z_j = -inf gives h(m + z_j - z_y) = 0, and a class without target
    # mass never appears as "the target" (its logit is replaced by 0 there).
    z_target = jnp.where(q != 0, z, zero)
    if variant == "one_vs_rest":
        # sum_j [q_j h(m - z_j) + (1 - q_j) h(m + z_j)]: the expectation of the
        # integer-label form, and the multi-label form for multi-hot targets.
        z_other = jnp.where(q != 1, z, zero)
        loss = jnp.sum(q * h(m - z_target) + (1 - q) * h(m + z_other), axis=-1)
        return C.zero_masked(loss, t.mask)
    if t.log_p.shape[-1] == 1:  # integer labels
        z_y = jnp.sum(q * z_target, axis=-1, keepdims=True)
        terms = jnp.where(q > 0, zero, m + z - z_y)  # [..., C], j != y
        if variant == "weston_watkins":
            loss = jnp.sum(h(terms), axis=-1)
        else:
            loss = h(jnp.max(jnp.where(q > 0, zero, terms), axis=-1))
        return C.zero_masked(loss, t.mask)
    # Distribution labels: the expectation over the target class c ([..., C, C]).
    pair = m + z[..., None, :] - z_target[..., :, None]  # [c, j] = m + z_j - z_c
    eye = jnp.reshape(jnp.eye(z.shape[-1], dtype=jnp.bool_), (1,) * (z.ndim - 1) + (z.shape[-1],) * 2)
    pair = jnp.where(eye, zero, pair)
    per_c = jnp.sum(h(pair), axis=-1) if variant == "weston_watkins" else h(jnp.max(pair, axis=-1))
    return C.zero_masked(jnp.sum(q * per_c, axis=-1), t.mask)


def _hinge_sample(*variants) -> Sample:
    # Margins kept away from the kinks (|m + z_j - z_y| > 0.1) for the gradient check.
    logits = np.array(
        [
            [2.0, 0.3, -1.2, 0.9],
            [-0.6, 1.7, 0.2, -2.1],
            [0.5, -0.4, 2.2, 1.1],
            [1.4, 2.6, -0.3, 0.2],
            [-1.5, 0.4, 0.9, 2.5],
        ],
        np.float32,
    )
    labels = np.array([0, 1, 3, 2, 1], np.int32)
    return Sample(args=(logits, labels), class_axis=True, variants=tuple(variants))


@register(
    "multiclass_hinge_loss",
    aliases=("multiclass_hinge", "multiclass_svm_loss"),
    family=FAMILY,
    kind="per_example",
    formula="crammer_singer: max(0, max_{j!=y} m + z_j - z_y); weston_watkins: sum_{j!=y} max(0, m + z_j - z_y); "
    "one_vs_rest: sum_j max(0, m - y~_j z_j)",
    paper="On the Algorithmic Implementation of Multiclass Kernel-based Vector Machines (Crammer & Singer, JMLR 2001)",
    reference="optax.multiclass_hinge_loss (= crammer_singer, margin 1)",
    sample=lambda: _hinge_sample({"variant": "weston_watkins"}, {"variant": "one_vs_rest", "margin": 1.3}),
)
def multiclass_hinge_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    variant: str = "crammer_singer",
    margin: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Multiclass hinge loss in the Crammer-Singer, Weston-Watkins or one-vs-rest variant.

    .. math::
        \ell_{CS} = \max\big(0, \max_{j\ne y} m + z_j - z_y\big),\quad
        \ell_{WW} = \sum_{j\ne y}\max(0, m + z_j - z_y),\quad
        \ell_{OVR} = \sum_j \max(0, m - \tilde y_j z_j),\ \tilde y = 2\,\mathrm{onehot}(y) - 1

    ``crammer_singer`` (the default) equals ``optax.multiclass_hinge_loss``. A
    target distribution takes the expectation over ``q`` (``one_vs_rest`` then
    also covers multi-hot targets; ``crammer_singer``/``weston_watkins`` build a
    ``[..., C, C]`` table).

    Args:
      logits: scores ``[..., C]`` with ``C >= 2``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      variant: ``"crammer_singer"``, ``"weston_watkins"`` or ``"one_vs_rest"``.
      margin: the margin ``m``.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Crammer, Singer, "On the Algorithmic Implementation of Multiclass
    Kernel-based Vector Machines", JMLR 2001; Weston, Watkins, "Support Vector
    Machines for Multi-Class Pattern Recognition", ESANN 1999 (neither has an arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z, y = jnp.array([[2.0, 1.5, 0.0]]), jnp.array([0])
      >>> hinge = lossjax.losses.multiclass_hinge_loss
      >>> [float(hinge(z, y, variant=v)[0]) for v in ("crammer_singer", "weston_watkins")]
      [0.5, 0.5]
    """
    return _multiclass_hinge("multiclass_hinge_loss", logits, labels, margin, variant, False, where)


@register(
    "multiclass_squared_hinge_loss",
    aliases=("l2_svm_loss", "multiclass_squared_hinge"),
    family=FAMILY,
    kind="per_example",
    formula="weston_watkins: sum_{j!=y} max(0, m + z_j - z_y)^2 (also crammer_singer, one_vs_rest)",
    paper="Deep Learning using Linear Support Vector Machines (2013, arXiv:1306.0239)",
    reference="closed form; squared version of optax.multiclass_hinge_loss (crammer_singer)",
    sample=lambda: _hinge_sample({"variant": "crammer_singer"}, {"variant": "one_vs_rest"}),
)
def multiclass_squared_hinge_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    variant: str = "weston_watkins",
    margin: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Multiclass squared hinge (L2-SVM) loss: each hinge term of :func:`multiclass_hinge_loss` squared.

    .. math::
        \ell_{WW} = \sum_{j\ne y}\max(0, m + z_j - z_y)^2,\quad
        \ell_{CS} = \max(0, \max_{j\ne y} m + z_j - z_y)^2,\quad
        \ell_{OVR} = \sum_j \max(0, m - \tilde y_j z_j)^2

    Smooth (continuously differentiable) but unbounded. Default variant: Weston-Watkins.

    Args:
      logits: scores ``[..., C]`` with ``C >= 2``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      variant: ``"weston_watkins"``, ``"crammer_singer"`` or ``"one_vs_rest"`` (Tang's L2-SVM).
      margin: the margin ``m``.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Tang, "Deep Learning using Linear Support Vector Machines", 2013,
    arXiv:1306.0239; Agarap, GRU-SVM, 2017, arXiv:1709.03082.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.multiclass_squared_hinge_loss(jnp.array([[2.0, 1.5, 1.8]]), jnp.array([0])).round(4)
      Array([0.89], dtype=float32)
    """
    return _multiclass_hinge("multiclass_squared_hinge_loss", logits, labels, margin, variant, True, where)


@register(
    "multiclass_perceptron_loss",
    aliases=("multiclass_perceptron",),
    family=FAMILY,
    kind="per_example",
    formula="max_j z_j - z_y  (expectation over q for a target distribution)",
    paper="Discriminative Training Methods for Hidden Markov Models: Theory and Experiments with Perceptron "
    "Algorithms (Collins, EMNLP 2002)",
    reference="optax.multiclass_perceptron_loss",
    sample=_hinge_sample,
)
def multiclass_perceptron_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
) -> Array:
    r"""Multiclass perceptron loss: how far the target's score is below the best score.

    .. math:: \ell(z, y) = \max_j z_j - z_y

    (``optax.multiclass_perceptron_loss``). A target distribution ``q`` gives
    :math:`\max_j z_j - q^\top z`, the expectation of the integer-label loss.

    Args:
      logits: scores ``[..., C]``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Collins, "Discriminative Training Methods for Hidden Markov Models:
    Theory and Experiments with Perceptron Algorithms", EMNLP 2002 (no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.multiclass_perceptron_loss(jnp.array([[2.0, 1.5, 0.0]]), jnp.array([1]))
      Array([0.5], dtype=float32)
    """
    z, q, mask, dtype = class_terms("multiclass_perceptron_loss", logits, labels, where)
    # q != 0 keeps a -inf logit without target mass out of the product (0 * -inf).
    z_y = jnp.sum(q * jnp.where(q != 0, z, jnp.zeros((), dtype)), axis=-1)
    return C.zero_masked(jnp.max(z, axis=-1) - z_y, mask)


def _binary_pm_sample(*variants) -> Sample:
    # y z = 1.7, -0.4, -0.3, 2.2, 0.6, -1.3: away from the kinks at y z = 0, 1 and 2.
    logits = np.array([1.7, -0.4, 0.3, -2.2, 0.6, 1.3], np.float32)
    labels = np.array([1.0, 1.0, -1.0, -1.0, 1.0, -1.0], np.float32)
    return Sample(args=(logits, labels), variants=tuple(variants))


@register(
    "squared_hinge_loss",
    aliases=("l2_hinge_loss",),
    family=FAMILY,
    kind="per_example",
    formula="max(0, 1 - y z)^2,  y in {-1, +1}",
    paper="Deep Learning using Linear Support Vector Machines (2013, arXiv:1306.0239)",
    reference="optax.hinge_loss squared (closed form)",
    sample=lambda: _binary_pm_sample({"margin": 2.0}),
)
def squared_hinge_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Binary squared hinge loss with labels in ``{-1, +1}`` (optax's ``hinge_loss`` convention).

    .. math::
        \ell(z, y) = \max(0, m - y z)^2

    Labels in ``{0, 1}`` must be converted first (``2 * y - 1``).

    Args:
      logits: scores ``[...]``.
      labels: ``-1`` or ``+1`` targets with the shape of ``logits``.
      margin: the margin ``m``.
      where: optional boolean mask broadcastable to ``logits.shape``.

    Returns:
      Per-element loss with the shape of ``logits``.

    Paper: Tang 2013, arXiv:1306.0239 (L2-SVM); Agarap 2017, arXiv:1709.03082 (GRU-SVM).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.squared_hinge_loss(jnp.array([0.5, 2.0, 0.5]), jnp.array([1.0, 1.0, -1.0]))
      Array([0.25, 0.  , 2.25], dtype=float32)
    """
    fn = "squared_hinge_loss"
    _check_real(fn, "margin", margin)
    z, y, mask, dtype = binary_terms(fn, logits, labels, where)
    valid = jnp.abs(y) == 1
    C.debug_check(jnp.all(valid if mask is None else valid | ~mask), f"{fn}: labels must be -1 or +1")
    loss = jnp.square(jnp.maximum(jnp.asarray(margin, dtype) - y * z, 0.0))
    return C.zero_masked(loss, mask)


@register(
    "hinge_loss",
    aliases=("binary_hinge_loss",),
    family=FAMILY,
    kind="per_example",
    formula="max(0, m - y z),  y in {-1, +1}",
    paper="Support-Vector Networks (Cortes & Vapnik, Machine Learning 1995)",
    reference="optax.hinge_loss (margin 1)",
    sample=lambda: _binary_pm_sample({"margin": 2.0}),
)
def hinge_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Binary hinge loss with labels in ``{-1, +1}`` (``optax.hinge_loss``).

    .. math:: \ell(z, y) = \max(0, m - y z)

    optax's ``predictor_outputs`` and ``targets`` are ``logits`` and ``labels``;
    ``margin = 1`` is optax's loss. At the kink ``y z = m`` the gradient is half
    the one-sided slopes, ``-y / 2`` (JAX's ``maximum`` rule, as in optax).
    Labels in ``{0, 1}`` must be converted first (``2 * y - 1``).

    Args:
      logits: scores ``[...]``.
      labels: ``-1`` or ``+1`` targets with the shape of ``logits``.
      margin: the margin ``m`` (a finite number).
      where: optional boolean mask broadcastable to ``logits.shape``.

    Returns:
      Per-element loss with the shape of ``logits``.

    Paper: Cortes, Vapnik, "Support-Vector Networks", Machine Learning 20, 1995 (no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.hinge_loss(jnp.array([0.5, 2.0, 0.5]), jnp.array([1.0, 1.0, -1.0]))
      Array([0.5, 0. , 1.5], dtype=float32)
    """
    fn = "hinge_loss"
    _check_real(fn, "margin", margin)
    z, y, mask, dtype = binary_terms(fn, logits, labels, where)
    valid = jnp.abs(y) == 1
    C.debug_check(jnp.all(valid if mask is None else valid | ~mask), f"{fn}: labels must be -1 or +1")
    loss = jnp.maximum(jnp.zeros((), dtype), jnp.asarray(margin, dtype) - z * y)
    return C.zero_masked(loss, mask)


@register(
    "perceptron_loss",
    aliases=("binary_perceptron_loss",),
    family=FAMILY,
    kind="per_example",
    formula="max(0, -y z),  y in {-1, +1}",
    paper="The Perceptron: A Probabilistic Model for Information Storage and Organization in the Brain "
    "(Rosenblatt, 1958)",
    reference="optax.perceptron_loss",
    sample=_binary_pm_sample,
)
def perceptron_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
) -> Array:
    r"""Binary perceptron loss with labels in ``{-1, +1}`` (``optax.perceptron_loss``).

    .. math:: \ell(z, y) = \max(0, -y z)

    The hinge loss with margin 0; at ``z = 0`` the gradient is ``-y / 2`` (JAX's
    ``maximum`` rule, as in optax).

    Args:
      logits: scores ``[...]``.
      labels: ``-1`` or ``+1`` targets with the shape of ``logits``.
      where: optional boolean mask broadcastable to ``logits.shape``.

    Returns:
      Per-element loss with the shape of ``logits``.

    Paper: Rosenblatt, "The Perceptron: A Probabilistic Model for Information
    Storage and Organization in the Brain", Psychological Review, 1958 (no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.perceptron_loss(jnp.array([0.5, -2.0]), jnp.array([1.0, 1.0]))
      Array([0., 2.], dtype=float32)
    """
    fn = "perceptron_loss"
    z, y, mask, dtype = binary_terms(fn, logits, labels, where)
    valid = jnp.abs(y) == 1
    C.debug_check(jnp.all(valid if mask is None else valid | ~mask), f"{fn}: labels must be -1 or +1")
    return C.zero_masked(jnp.maximum(jnp.zeros((), dtype), -z * y), mask)


# --------------------------------------------------------------------------
# Sparse alternatives to softmax.
# --------------------------------------------------------------------------


def _finite_max(z: Array) -> Array:
    """``stop_gradient(max_c z_c)`` ``[..., 1]``, 0 where it is not finite: a shift that changes no loss value."""
    m = jax.lax.stop_gradient(jnp.max(z, axis=-1, keepdims=True))
    return jnp.where(jnp.isfinite(m), m, jnp.zeros((), z.dtype))


def _sparsemax_threshold(z: Array) -> Array:
    """The sparsemax threshold ``tau(z)`` ``[..., 1]``: ``sparsemax(z) = max(z - tau, 0)``."""
    zs = -jnp.sort(-z, axis=-1)  # descending
    cs = jnp.cumsum(zs, axis=-1)
    k = jax.lax.broadcasted_iota(z.dtype, z.shape, z.ndim - 1) + 1
    support = 1 + k * zs > cs
    k_z = jnp.sum(support, axis=-1, keepdims=True).astype(z.dtype)  # >= 1 always
    cs_k = jnp.sum(jnp.where(k == k_z, cs, jnp.zeros((), z.dtype)), axis=-1, keepdims=True)
    return (cs_k - 1) / k_z


@register(
    "multiclass_sparsemax_loss",
    aliases=("sparsemax_multiclass_loss",),
    family=FAMILY,
    kind="per_example",
    formula="-<q, z> + 1/2 sum_{j in S(z)} (z_j^2 - tau(z)^2) + 1/2 ||q||^2",
    paper="From Softmax to Sparsemax: A Sparse Model of Attention and Multi-Label Classification "
    "(2016, arXiv:1602.02068)",
    reference="optax.multiclass_sparsemax_loss",
    sample=_hinge_sample,
)
def multiclass_sparsemax_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
) -> Array:
    r"""Multiclass sparsemax loss (the Fenchel-Young loss of sparsemax), integer or distribution labels.

    .. math::
        \ell(z, q) = -q^\top z + \tfrac12\sum_{j\in S(z)}\big(z_j^2 - \tau(z)^2\big) + \tfrac12\|q\|^2

    where ``tau(z)`` and the support ``S(z)`` come from the sorted-threshold
    sparsemax projection. Its gradient is ``sparsemax(z) - q``; it is zero
    exactly when ``sparsemax(z) = q``.

    Args:
      logits: scores ``[..., C]``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``
        (the multi-label form of the paper).
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Martins, Astudillo, "From Softmax to Sparsemax: A Sparse Model of
    Attention and Multi-Label Classification", ICML 2016, arXiv:1602.02068.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
      >>> lossjax.losses.multiclass_sparsemax_loss(z, jnp.array([0, 1])).round(4)
      Array([0.    , 0.3333], dtype=float32)
    """
    fn = "multiclass_sparsemax_loss"
    t = target_probs(fn, logits, labels, where=where)
    z, q = t.logits, t.targets
    zero = jnp.zeros((), z.dtype)
    # The loss is shift invariant (tau shifts with z, sum_S (z_j - tau) = 1, sum q = 1): relative to the
    # largest logit, z_j^2 - tau^2 stays O(1) instead of cancelling at |z| ~ 1e4 (1e8 +- 8 in float32).
    z = z - _finite_max(z)
    tau = _sparsemax_threshold(z)
    inside = z > tau  # a -inf logit is never in the support
    z_in = jnp.where(inside, z, zero)
    half_sq = jnp.sum(jnp.where(inside, jnp.square(z_in) - jnp.square(tau), zero), axis=-1)
    linear = jnp.sum(q * jnp.where(q != 0, z, zero), axis=-1)
    loss = -linear + 0.5 * half_sq + 0.5 * jnp.sum(jnp.square(q), axis=-1)
    return C.zero_masked(loss, t.mask)


@register(
    "sparsemax_loss",
    aliases=("binary_sparsemax_loss",),
    family=FAMILY,
    kind="per_example",
    formula="sparse_plus(-z) if y else sparse_plus(z);  sparse_plus(x) = 0 | (x + 1)^2 / 4 | x",
    paper="Learning with Fenchel-Young Losses (2019, arXiv:1901.02324)",
    reference="optax.sparsemax_loss (binary)",
    sample=lambda: _binary_sample(seed=11),
)
def sparsemax_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
) -> Array:
    r"""Binary sparsemax loss (``optax.sparsemax_loss``): zero iff ``sparse_sigmoid(z)`` equals the label.

    .. math::
        \ell(z, y) = \mathrm{sparseplus}(s),\quad s = \begin{cases}-z & y \ne 0\\ z & y = 0\end{cases},\quad
        \mathrm{sparseplus}(s) = \begin{cases}0 & s \le -1\\ (s+1)^2/4 & |s| < 1\\ s & s \ge 1\end{cases}

    Names as in optax: ``sparsemax_loss`` is the binary loss (labels 0/1 of the
    logits' shape; any nonzero label counts as 1, as optax's ``where(labels, ...)``)
    and :func:`multiclass_sparsemax_loss` the multiclass one (``logits [..., C]``).

    Args:
      logits: scores ``[...]``.
      labels: ``{0, 1}`` targets with the shape of ``logits``.
      where: optional boolean mask broadcastable to ``logits.shape``.

    Returns:
      Per-element loss with the shape of ``logits``.

    Paper: Blondel, Martins, Niculae, "Learning with Fenchel-Young Losses", JMLR
    2020, arXiv:1901.02324 (section 4.4).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.sparsemax_loss(jnp.array([2.0, 0.0, 0.5]), jnp.array([1.0, 1.0, 0.0]))
      Array([0.    , 0.25  , 0.5625], dtype=float32)
    """
    z, y, mask, _ = binary_terms("sparsemax_loss", logits, labels, where)
    return C.zero_masked(jax.nn.sparse_plus(jnp.where(y != 0, -z, z)), mask)


def _sparse_softmax_sample() -> Sample:
    return _multiclass_sample(n=6, c=6, seed=6, kwargs={"k": 3}, variants=({"k": 1}, {"k": 10}))


@register(
    "sparse_softmax_cross_entropy",
    aliases=("sparse_softmax_ce",),
    family=FAMILY,
    kind="per_example",
    formula="log sum_{j in top_k(z) U {y}} exp(z_j) - z_y",
    paper="Sparse-softmax: A Simpler and Faster Alternative Softmax Transformation (2021, arXiv:2112.12433)",
    reference="closed form: cross-entropy over the kept logits (k >= C is optax.softmax_cross_entropy)",
    sample=_sparse_softmax_sample,
)
def sparse_softmax_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    k: int = 10,
    where: ArrayLike | None = None,
) -> Array:
    r"""Cross-entropy over the top-``k`` logits only (sparse-softmax), with the target always kept.

    .. math::
        \ell(z, y) = \log\!\sum_{j\in\Omega_k(z)\cup\{y\}} e^{z_j} - z_y

    ``Omega_k`` holds the ``k`` largest logits (ties at the ``k``-th value are all
    kept). With a target distribution every class with ``q_c > 0`` is kept and the
    loss is ``-sum_c q_c log p~_c``. ``k >= C`` is plain cross-entropy.

    Args:
      logits: unnormalized scores ``[..., C]``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      k: how many logits to keep (``>= 1``).
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Sun et al., "Sparse-softmax: A Simpler and Faster Alternative Softmax
    Transformation", 2021, arXiv:2112.12433.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.sparse_softmax_cross_entropy(jnp.array([[3.0, 1.0, 0.0, -1.0]]), jnp.array([3]), k=1).round(4)
      Array([4.0182], dtype=float32)
    """
    fn = "sparse_softmax_cross_entropy"
    C.check_int(fn, "k", k, 1, static=True)
    z, q, mask, dtype = class_terms(fn, logits, labels, where)
    k_eff = min(int(k), z.shape[-1])
    kth = jax.lax.top_k(jax.lax.stop_gradient(z), k_eff)[0][..., k_eff - 1 : k_eff]
    keep = (z >= kth) | (q > 0)
    # lse(z) - z_y relative to the largest logit: at |z| ~ 1e4 float32 rounds lse(z) itself to 1e-3.
    z = z - _finite_max(z)
    lse = jax.nn.logsumexp(z, axis=-1, where=keep, keepdims=True)
    # q != 0 (not q > 0): an out-of-range label's NaN row stays NaN.
    loss = jnp.sum(jnp.where(q != 0, q * (lse - z), jnp.zeros((), dtype)), axis=-1)
    return C.zero_masked(loss, mask)


# --------------------------------------------------------------------------
# One-vs-rest.
# --------------------------------------------------------------------------


@register(
    "one_vs_rest_loss",
    aliases=("ovr_loss", "one_vs_the_rest_loss"),
    family=FAMILY,
    kind="per_example",
    formula="-log sigmoid(z_y) - sum_{j != y} log sigmoid(-z_j) = sum_j BCE(z_j, onehot_j)",
    paper="One-vs-the-Rest Loss to Focus on Important Samples in Adversarial Training (2022, arXiv:2207.10283)",
    reference="closed form: sum of optax.sigmoid_binary_cross_entropy over classes",
    sample=lambda: _multiclass_sample(seed=12),
)
def one_vs_rest_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
) -> Array:
    r"""One-vs-the-rest loss: an independent logistic loss per class, positive for the label.

    .. math::
        \ell(z, y) = -\log\sigma(z_y) - \sum_{j\ne y}\log\sigma(-z_j)

    With a target distribution (or multi-hot targets) ``q``:
    :math:`\sum_j q_j\,\mathrm{softplus}(-z_j) + (1-q_j)\,\mathrm{softplus}(z_j)`.

    Args:
      logits: scores ``[..., C]``.
      labels: integer class indices ``[...]`` or targets ``[..., C]`` in ``[0, 1]``.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Kanai et al., "One-vs-the-Rest Loss to Focus on Important Samples in
    Adversarial Training", ICML 2023, arXiv:2207.10283.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.one_vs_rest_loss(jnp.array([[0.0, 0.0, 0.0]]), jnp.array([0])).round(4)
      Array([2.0794], dtype=float32)
    """
    s = softmax_inputs("one_vs_rest_loss", logits, labels, where)
    z, q, dtype = s.logits, s.targets, s.dtype
    if s.integer:
        # One row sum of softplus(-z_y) and softplus(z_j), j != y: the one-hot is never built (it made XLA
        # store 3 arrays of the logits' size for the backward pass; this stores none).
        t = label_log_softmax(s)
        loss = jnp.sum(jax.nn.softplus(jnp.where(t.label_mask, -z, z)), axis=-1)
        return C.zero_masked(jnp.where(t.ok, loss, jnp.asarray(jnp.nan, dtype)), s.mask)
    zero = jnp.zeros((), dtype)
    # softplus(+inf) only ever meets a zero weight: a -inf logit of a negative class adds exactly 0.
    z_pos, z_neg = jnp.where(q != 0, z, zero), jnp.where(q != 1, z, zero)
    loss = jnp.sum(q * jax.nn.softplus(-z_pos) + (1 - q) * jax.nn.softplus(z_neg), axis=-1)
    return C.zero_masked(loss, s.mask)


# --------------------------------------------------------------------------
# EnsLoss (random calibrated loss-derivatives) and AnyLoss (soft confusion matrix).
# --------------------------------------------------------------------------


def _ensloss_sample() -> Sample:
    rng = np.random.default_rng(8)
    # |margins| < 1 (the 1/s tail is a stop-gradient rescale, see the docstring).
    logits = rng.uniform(-0.9, 0.9, size=(7,)).astype(np.float32)
    labels = rng.integers(0, 2, size=(7,)).astype(np.float32)
    return Sample(args=(logits, labels), kwargs={"key": jax.random.key(0)}, variants=({"boxcox_lambda": 0.5},))


@register(
    "ensloss",
    aliases=("ens_loss",),
    family=FAMILY,
    kind="batch",
    formula="mean_i sg(g_i) s_i,  s = (2y-1) z,  g = sorted(max(-BCinv(eps), -1)) by margin rank, g /= s where s > 1",
    paper="EnsLoss: Stochastic Calibrated Loss Ensembles for Preventing Overfitting in Classification "
    "(2024, arXiv:2409.00908)",
    reference="statmlben/ensLoss losses.py::ensLoss (lam=0)",
    sample=_ensloss_sample,
    runtime=("key",),
)
def ensloss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    key: ArrayLike,
    boxcox_lambda: float = 0.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""EnsLoss: a surrogate whose gradient is a random, calibrated (convex) binary loss-derivative.

    With margins ``s_i = (2 y_i - 1) z_i``, draw ``eps ~ N(0, 1)`` per example,
    ``g = max(-BCinv_lambda(eps), -1)`` (``-exp(eps)`` for ``lambda = 0``), sort
    the draws and give the most negative one to the smallest margin (derivatives
    increase with the margin: a convex loss), divide by ``s`` where ``s > 1`` (a
    superlinear tail: calibration), subtract ``1e-6`` (strictly negative), and return

    .. math::
        \ell = \frac1n\sum_i \mathrm{sg}(g_i)\, s_i,\qquad \frac{\partial\ell}{\partial s_i} = \frac{g_i}{n}.

    The value is not a loss (log a fixed loss alongside); the gradient is the
    point. Masked examples take no draw and no rank: the result equals the one
    on the sliced batch (the first ``count`` normals of ``key`` are used).

    Args:
      logits: binary scores ``[N]``.
      labels: ``{0, 1}`` targets ``[N]``.
      key: a PRNG key (new every step).
      boxcox_lambda: ``lambda >= 0`` of the inverse Box-Cox map (0: log-normal derivatives).
      where: optional boolean mask ``[N]``.

    Returns:
      A scalar.

    Paper: Wang, Dai et al., "EnsLoss: Stochastic Calibrated Loss Ensembles for
    Preventing Overfitting in Classification", 2024, arXiv:2409.00908.

    Example:
      >>> import jax, jax.numpy as jnp, lossjax
      >>> g = jax.grad(lossjax.losses.ensloss)(jnp.array([0.3, -0.2]), jnp.array([1, 1]), key=jax.random.key(0))
      >>> bool(jnp.all(g < 0))
      True
    """
    fn = "ensloss"
    C.check_positive(fn, "boxcox_lambda", boxcox_lambda, allow_zero=True)
    C.check_array(fn, "logits", logits, ndim=1, dtype="float")
    z, y, mask, dtype = binary_terms(fn, logits, labels, where)
    n = z.shape[0]
    valid = jnp.ones((n,), jnp.bool_) if mask is None else mask
    count = jnp.sum(valid)
    s = (2 * y - 1) * z
    eps = jax.random.normal(key, (n,), dtype)
    lam = jnp.asarray(boxcox_lambda, dtype)
    is_log = lam == 0
    lam_safe = jnp.where(is_log, jnp.ones((), dtype), lam)
    base = jnp.maximum(1 + lam_safe * eps, 0.0)
    g = -jnp.where(is_log, jnp.exp(eps), C.safe_power(base, 1 / lam_safe))
    # Draws 0..count-1 (the sliced batch's draws), sorted ascending; the rest last.
    big = jnp.asarray(jnp.finfo(dtype).max, dtype)
    g = jnp.sort(jnp.where(jnp.arange(n) < count, g, big))
    g = jnp.maximum(g, -1.0)
    s_sg = jax.lax.stop_gradient(s)
    order = jnp.argsort(jnp.where(valid, s_sg, big), stable=True)
    rank = jnp.argsort(order, stable=True)
    g = jnp.take(g, rank)
    tail = s_sg > 1
    g = jnp.where(tail, g / jnp.where(tail, s_sg, jnp.ones((), dtype)), g) - 1e-6
    total = jnp.sum(jnp.where(valid, jax.lax.stop_gradient(g) * s, jnp.zeros((), dtype)))
    return total / jnp.maximum(count, 1).astype(dtype)


_ANYLOSS_METRICS = ("accuracy", "f_beta", "balanced_accuracy", "g_mean", "mcc")


def _anyloss_sample() -> Sample:
    rng = np.random.default_rng(9)
    probs = rng.uniform(0.35, 0.65, size=(8,)).astype(np.float32)
    labels = np.array([1, 0, 1, 1, 0, 0, 1, 0], np.float32)
    extremes = ((np.array([0, 1, 1, 0, 0, 1, 0, 1], np.float32), labels), (np.full((8,), 0.5, np.float32), labels))
    variants = (
        {"metric": "f_beta", "beta": 2.0},
        {"metric": "accuracy"},
        {"metric": "balanced_accuracy"},
        {"metric": "g_mean"},
    )
    return Sample(args=(probs, labels), extremes=extremes, kwargs={"metric": "mcc"}, variants=variants)


@register(
    "anyloss",
    aliases=("any_loss",),
    family=FAMILY,
    kind="batch",
    formula="1 - M(TP, FN, FP, TN),  A = sigmoid(L (p - 1/2)),  TP = sum y A, FN = sum y (1 - A), "
    "FP = sum (1 - y) A, TN = sum (1 - y)(1 - A)",
    paper="AnyLoss: Transforming Classification Metrics into Loss Functions (2024, arXiv:2405.14745)",
    reference="closed form of the paper (soft confusion matrix; no official implementation located)",
    sample=_anyloss_sample,
)
def anyloss(
    probs: ArrayLike,
    labels: ArrayLike,
    *,
    metric: str = "f_beta",
    beta: float = 1.0,
    amplification: float = 73.0,
    epsilon: float = 1e-7,
    where: ArrayLike | None = None,
) -> Array:
    r"""AnyLoss: one minus a confusion-matrix metric computed on amplified probabilities.

    .. math::
        A_i = \sigma\big(L\,(p_i - \tfrac12)\big),\quad
        TP = \sum y A,\ FN = \sum y(1-A),\ FP = \sum (1-y)A,\ TN = \sum(1-y)(1-A),\quad
        \ell = 1 - M(TP, FN, FP, TN)

    Metrics: ``accuracy`` ``(TP+TN)/n``; ``f_beta``
    ``(1+b^2)TP / ((1+b^2)TP + b^2 FN + FP)``; ``balanced_accuracy``
    ``(TPR + TNR)/2``; ``g_mean`` ``sqrt(TPR * TNR)``; ``mcc``
    ``(TP TN - FP FN)/sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))`` (loss in ``[0, 2]``).
    Every denominator gets ``+ epsilon``; square roots are zero-safe.

    Args:
      probs: probabilities ``p`` in ``[0, 1]`` (sigmoid outputs), ``[N]`` or any shape.
      labels: ``{0, 1}`` targets with the shape of ``probs``.
      metric: one of ``accuracy``, ``f_beta``, ``balanced_accuracy``, ``g_mean``, ``mcc``.
      beta: the ``beta`` of ``f_beta``.
      amplification: ``L`` of the approximation function (73 in the paper).
      epsilon: added to every denominator.
      where: optional boolean mask with the shape of ``probs``.

    Returns:
      A scalar: the loss of the whole batch (0 for an all-masked or empty batch).

    Paper: Han, Moniz, Chawla, "AnyLoss: Transforming Classification Metrics into
    Loss Functions", KDD 2024, arXiv:2405.14745.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> p, y = jnp.array([0.9, 0.2, 0.7, 0.4]), jnp.array([1.0, 0.0, 0.0, 1.0])
      >>> round(float(lossjax.losses.anyloss(p, y, metric="accuracy")), 4)
      0.4998
    """
    fn = "anyloss"
    C.check_one_of(fn, "metric", metric, _ANYLOSS_METRICS)
    C.check_positive(fn, "beta", beta)
    C.check_positive(fn, "amplification", amplification)
    C.check_positive(fn, "epsilon", epsilon, allow_zero=True)
    p, y, mask, dtype = binary_terms(fn, probs, labels, where, logits_name="probs")
    a = jax.nn.sigmoid(jnp.asarray(amplification, dtype) * (p - 0.5))
    zero = jnp.zeros((), dtype)
    valid = (lambda v: v) if mask is None else (lambda v: jnp.where(mask, v, zero))
    tp = jnp.sum(valid(y * a))
    fn_ = jnp.sum(valid(y * (1 - a)))
    fp = jnp.sum(valid((1 - y) * a))
    tn = jnp.sum(valid((1 - y) * (1 - a)))
    e = jnp.asarray(epsilon, dtype)
    if metric == "accuracy":
        score = (tp + tn) / (tp + tn + fp + fn_ + e)
    elif metric == "f_beta":
        b2 = jnp.asarray(beta, dtype) ** 2
        score = (1 + b2) * tp / ((1 + b2) * tp + b2 * fn_ + fp + e)
    else:
        tpr = tp / (tp + fn_ + e)
        tnr = tn / (tn + fp + e)
        if metric == "balanced_accuracy":
            score = (tpr + tnr) / 2
        elif metric == "g_mean":
            score = C.safe_sqrt(tpr * tnr)
        else:
            score = (tp * tn - fp * fn_) / (C.safe_sqrt((tp + fp) * (tp + fn_) * (tn + fp) * (tn + fn_)) + e)
    if p.size == 0:
        return zero  # an empty batch gives 0 (no confusion matrix to score)
    if mask is None:
        return 1 - score
    return jnp.where(jnp.any(mask), 1 - score, zero)  # an all-masked batch gives 0


# --------------------------------------------------------------------------
# RankMixup (calibration with mixup ranking).
# --------------------------------------------------------------------------


def _rankmixup_sample() -> Sample:
    rng = np.random.default_rng(10)
    n, m, c = 5, 3, 4
    logits = rng.normal(size=(n, c)).astype(np.float32) * 2
    labels = rng.integers(0, c, size=(n,)).astype(np.int32)
    mixed = rng.normal(size=(n, m, c)).astype(np.float32) * 2
    lam = rng.uniform(0.55, 0.95, size=(n, m))
    other = (labels[:, None] + 1 + rng.integers(0, c - 1, size=(n, m))) % c
    targets = lam[..., None] * np.eye(c)[labels][:, None] + (1 - lam)[..., None] * np.eye(c)[other]
    args = (logits, labels, mixed, targets.astype(np.float32))
    return Sample(
        args=args,
        diff_argnums=(0, 2),
        kwargs={"variant": "mndcg"},
        class_axis=True,
        variants=({"variant": "mrl", "margin": 1.5, "ranking_weight": 0.3},),
    )


@register(
    "rankmixup_loss",
    aliases=("rankmixup",),
    family=FAMILY,
    kind="per_example",
    formula="CE(z, y) + ranking_weight * mean_m [mask_m relu(max z~_m - max z + margin)]  (mrl);  "
    "CE(z, y) + ranking_weight * (1 - NDCG(max p, max p~_m; relevance 1, lambda_m))  (mndcg)",
    paper="RankMixup: Ranking-Based Mixup Training for Network Calibration (2023, arXiv:2308.11990)",
    reference="cvlab-yonsei/RankMixup calibrate/losses/rankmixup.py::RankMixup_MRL, RankMixup_MNDCG",
    sample=_rankmixup_sample,
)
def rankmixup_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    mixed_logits: ArrayLike,
    mixed_targets: ArrayLike,
    *,
    variant: str = "mrl",
    margin: float = 0.1,
    ranking_weight: float = 0.1,
    where: ArrayLike | None = None,
) -> Array:
    r"""RankMixup: cross-entropy plus a ranking term that keeps mixed samples less confident than raw ones.

    ``mrl`` (mixup ranking loss, on logits as the reference does):

    .. math::
        \ell = \mathrm{CE}(z, y) + w\,\frac1M\sum_m \mathbb 1[\tilde q_m \ne \text{one-hot}]\,
        \big[\max_c \tilde z_{m,c} - \max_c z_c + \text{margin}\big]_+

    ``mndcg``: the raw sample (relevance 1) and its ``M`` mixups (relevance
    ``lambda_m = max_c q~_{m,c}``) are ranked by relevance; with confidences
    ``s = max softmax``, ``DCG = sum_k s_(k) / log2(k + 1)`` and ``IDCG`` the same
    with the relevances; ``NDCG = DCG/IDCG`` if ``IDCG > DCG`` else ``IDCG/DCG``, and
    ``\ell = CE + w (1 - NDCG)``, with ``w = ranking_weight`` (the reference's
    ``alpha``). The batch mean of this per-example loss is the reference's loss.

    Args:
      logits: logits of the raw samples ``[..., C]``.
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]`` (for the CE term).
      mixed_logits: logits of ``M`` mixups of each sample, ``[..., M, C]`` (batch first;
        the reference stacks them mixup-major as ``[M * N, C]``).
      mixed_targets: their mixed label distributions ``[..., M, C]``.
      variant: ``"mrl"`` or ``"mndcg"``.
      margin: the MRL margin (0.1 in the reference).
      ranking_weight: ``w``, the weight of the ranking term (the reference's ``alpha = 0.1``).
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Noh et al., "RankMixup: Ranking-Based Mixup Training for Network
    Calibration", ICCV 2023, arXiv:2308.11990.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z, zm = jnp.array([[2.0, 0.0]]), jnp.array([[[1.5, 0.5]]])
      >>> lossjax.losses.rankmixup_loss(z, jnp.array([0]), zm, jnp.array([[[0.7, 0.3]]])).round(4)
      Array([0.1269], dtype=float32)
    """
    fn = "rankmixup_loss"
    C.check_one_of(fn, "variant", variant, ("mrl", "mndcg"))
    C.check_positive(fn, "margin", margin, allow_zero=True)
    C.check_positive(fn, "ranking_weight", ranking_weight, allow_zero=True)
    t = target_probs(fn, logits, labels, where=where)
    z = t.logits
    dtype = z.dtype
    zm = C.check_array(fn, "mixed_logits", mixed_logits, ndim=z.ndim + 1, dtype="float")
    qm = C.check_array(fn, "mixed_targets", mixed_targets, ndim=z.ndim + 1, dtype="float")
    C.check_same_shape(fn, ("mixed_logits", "mixed_targets"), zm, qm)
    if zm.shape[:-2] != z.shape[:-1] or zm.shape[-1] != z.shape[-1]:
        raise ValueError(
            f"{fn}: `mixed_logits` must have shape [..., M, C] with [...] = {z.shape[:-1]} and C = {z.shape[-1]} "
            f"(the batch and classes of `logits`), got {zm.shape}."
        )
    zm = C.fill_masked(C.as_compute(zm, dtype), t.mask)
    qm = C.fill_masked(C.as_compute(qm, dtype), t.mask)
    ce = t.expect(-t.log_p)
    if variant == "mrl":
        not_self = jnp.all(qm != 1.0, axis=-1)  # the reference skips mixups with a one-hot target
        diff = jnp.max(zm, axis=-1) - jnp.max(z, axis=-1, keepdims=True)
        rank = jnp.mean(jnp.where(not_self, jax.nn.relu(diff + margin), jnp.zeros((), dtype)), axis=-1)
    else:
        conf = jnp.max(jax.nn.softmax(z, axis=-1), axis=-1, keepdims=True)  # [..., 1]
        conf_m = jnp.max(jax.nn.softmax(zm, axis=-1), axis=-1)  # [..., M]
        lam = jnp.max(qm, axis=-1)  # [..., M]
        order = jnp.argsort(-lam, axis=-1, stable=True)
        conf_sorted = jnp.concatenate([conf, jnp.take_along_axis(conf_m, order, axis=-1)], axis=-1)
        rel_sorted = jnp.concatenate([jnp.ones_like(conf), jnp.take_along_axis(lam, order, axis=-1)], axis=-1)
        k = jnp.arange(1, conf_sorted.shape[-1] + 1, dtype=dtype)
        discount = jnp.reshape(jnp.log2(k + 1), (1,) * (conf_sorted.ndim - 1) + k.shape)
        dcg = jnp.sum(conf_sorted / discount, axis=-1)
        idcg = jnp.sum(rel_sorted / discount, axis=-1)
        ndcg = jnp.where(idcg > dcg, dcg / idcg, idcg / dcg)
        rank = 1 - ndcg
    return ce + C.zero_masked(jnp.asarray(ranking_weight, dtype) * rank, t.mask)
