"""Margin softmaxes for face recognition: NormFace, CosFace, ArcFace, SphereFace and their kin.

Every loss here takes ``embeddings [N, D]``, integer ``labels [N]`` and the
classifier's class weights ``proxies [C, D]`` (one row per class, a parameter
of the model) and returns the per-example loss ``[N]``: NormFace, CosFace,
ArcFace, SphereFace, the combined margin of insightface, Partial FC's sampled
version of it, AdaFace and SphereFace2. The checks of those three arguments,
the cosine matrix and the cross-entropy are shared with the proxy losses in
:mod:`lossjax._proxy_core`.

All the angular margins (CosFace's ``cos - m``, ArcFace's ``cos(theta + m)``,
SphereFace's ``cos(m theta)``, their combination and AdaFace's per-example
margins) go through ONE private helper, :func:`_margin_target_cosine`, which
never evaluates ``arccos`` (or ``sqrt(1 - cos^2)``) at exactly +-1: the cosine
is clamped first, so gradients stay finite when an embedding coincides with
its class weight.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax._pairwise import pairwise_similarity
from lossjax._parallel import psum
from lossjax._proxy_core import ce_from_logits, check_proxy_inputs, class_cosines, is_concrete, proxy_sample
from lossjax.registry import Sample, register

__all__ = [
    "AdaFaceState",
    "adaface_loss",
    "additive_margin_softmax",
    "arcface_loss",
    "cosface_loss",
    "normalized_softmax_loss",
    "p2sgrad_loss",
    "partial_fc_sampled_softmax",
    "sphereface2_initial_bias",
    "sphereface2_loss",
    "sphereface_loss",
    "subcenter_arcface_loss",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

FAMILY = "margins"

_FACE_PAPER = "ArcFace: Additive Angular Margin Loss for Deep Face Recognition (2018, arXiv:1801.07698)"
# Largest |cos| fed to arccos / sqrt(1 - cos^2): 1 - 1e-7 rounds to 0.99999988 in float32,
# where d arccos / d cos = 1 / sqrt(1 - c^2) ~ 2.9e3 (finite).
_COS_LIMIT = 1.0 - 1e-7


# --------------------------------------------------------------------------
# Conformance samples: the edges of the margin functions.
# --------------------------------------------------------------------------

#: ``value`` tolerance of the losses that take the angle from the cosine (``sqrt(1 - c^2)``, ``arccos``): at the
#: edge row 0.75 degrees from its class weight, d psi / d cos ~ 1 / sin(theta) = 76 times the scale (64) gives
#: gradient terms of ~2e3 that cancel in the projection onto the sphere to ~0.25, so float32 rounding leaves
#: ~5e-4 relative there (and ~8e-4 at the 1e-4-magnitude row, whose 1 / ||x|| = 1e4 does the same). A clamp
#: moved to 1 - 1e-4 changes that row's value by 40% and its gradient by 100%.
_ANGLE_TOL = {"rtol": 2e-3, "atol": 1e-5}
#: SphereFace scales the logits by ||x||: at the 1e4 extreme (||x|| = 2e4) one float32 ulp of a logit is 2e-3,
#: which XLA's two evaluations of the target logit (max and difference) can pass on to a loss of 0.
_NORM_SCALED_TOL = {"rtol": 1e-4, "atol": 2e-3}

#: Angle (degrees) of the first edge row from its class weight: inside the 0.81 degrees where a clamp at
#: |cos| <= 1 - 1e-4 (instead of 1 - 1e-7) would change ArcFace's value and gradient.
_EDGE_DEGREES = 0.75


def _face_edges() -> tuple:
    """``(embeddings, labels, proxies)`` at the edges of the angular margins.

    Proxies (3 classes, 4 dims, not unit): ``e0``, ``2 (cos 30, sin 30, 0, 0)``,
    ``0.5 e2``. Rows (labels 0, 1, 2, 0, 1, 2): 0.75 degrees from the class
    weight with another class 30 degrees away (the loss is neither 0 nor
    saturated); exactly on the class weight (cos = +1); exactly opposite
    (cos = -1, theta = pi: the linear branch past pi - m); magnitude 1e4;
    magnitude 1e-4; a zero vector.
    """
    d = math.radians(_EDGE_DEGREES)
    r30 = math.radians(30.0)
    proxies = np.array([[1, 0, 0, 0], [2 * math.cos(r30), 2 * math.sin(r30), 0, 0], [0, 0, 0.5, 0]], np.float32)
    emb = np.array(
        [
            [math.cos(d), 0, 0, math.sin(d)],
            [3 * math.cos(r30), 3 * math.sin(r30), 0, 0],
            [0, 0, -1, 0],
            [2e3, 9e3, 3e3, -1e3],
            [5e-5, -3e-5, 2e-5, 8e-5],
            [0, 0, 0, 0],
        ],
        np.float32,
    )
    labels = np.array([0, 1, 2, 0, 1, 2], np.int32)
    return emb, labels, proxies


def _face_sample(**kwargs) -> Sample:
    """:func:`proxy_sample` with explicit extremes: the edge rows, every input at 1e4 (signs) and zeros."""
    s = proxy_sample(**kwargs)
    emb, labels, proxies = s.args
    big = tuple(np.where(np.sign(a) == 0, 1.0, np.sign(a)).astype(np.float32) * 1e4 for a in (emb, proxies))
    extremes = (_face_edges(), (big[0], labels, big[1]), (np.zeros_like(emb), labels, np.zeros_like(proxies)))
    return Sample(
        args=s.args,
        kwargs=s.kwargs,
        diff_argnums=s.diff_argnums,
        batched_argnums=s.batched_argnums,
        extremes=extremes,
        variants=s.variants,
        surrogate_grad=s.surrogate_grad,
        value_tol=s.value_tol,
    )


# --------------------------------------------------------------------------
# Shared pieces.
# --------------------------------------------------------------------------


def _margin_target_cosine(
    cos: Array,
    *,
    multiplicative: float = 1.0,
    angular: ArrayLike = 0.0,
    additive: ArrayLike = 0.0,
    extension: str = "threshold",
    clip_epsilon: float = 1e-3,
) -> Array:
    r"""The one margin helper: :math:`\psi(\theta) = \cos(m_1\theta + m_2) - m_3` for target cosines.

    ``cos`` holds target-class cosines (any shape); ``angular``/``additive``
    may be arrays broadcastable to it (AdaFace's per-example margins).
    ``extension`` says how :math:`\psi` continues where :math:`m_1\theta + m_2 > \pi`
    (there :math:`\cos(m_1\theta + m_2)` stops decreasing in :math:`\theta`):

    * ``"threshold"`` (insightface / ArcFace, ``m_1 = 1``):
      :math:`\cos\theta - m_2\sin m_2` when :math:`\theta > \pi - m_2`;
    * ``"easy"`` (insightface ``easy_margin``): the margin only where :math:`\cos\theta > 0`;
    * ``"clip"`` (AdaFace): :math:`\theta + m_2` clipped to :math:`[\epsilon, \pi - \epsilon]`;
    * ``"sphereface"`` (A-Softmax): :math:`(-1)^k\cos(m_1\theta + m_2) - 2k`,
      :math:`k = \lfloor (m_1\theta + m_2)/\pi \rfloor` (monotone, continuous).

    With :math:`m_1 = 1, m_2 = 0` (CosFace) no angle is computed at all.
    Otherwise the cosine is clamped to :math:`\pm(1 - 10^{-7})` before
    ``arccos``/``sqrt(1 - c^2)``, so the gradient is finite at :math:`\cos = \pm 1`.
    """
    dtype = cos.dtype
    angular = jnp.asarray(angular, dtype) if not is_concrete(angular) else angular
    additive = jnp.asarray(additive, dtype) if not is_concrete(additive) else additive
    if is_concrete(multiplicative) and multiplicative == 1 and is_concrete(angular) and angular == 0:
        return cos - jnp.asarray(additive, dtype)
    m2 = jnp.asarray(angular, dtype)
    m3 = jnp.asarray(additive, dtype)
    lim = jnp.asarray(_COS_LIMIT, dtype)
    c = jnp.clip(cos, -lim, lim)
    if extension in ("threshold", "easy"):
        # cos(theta + m) = c cos m - sin(theta) sin m, sin(theta) = sqrt(1 - c^2) > 0 after the clamp.
        sin = jnp.sqrt(1 - c * c)
        phi = c * jnp.cos(m2) - sin * jnp.sin(m2)
        if extension == "easy":
            phi = jnp.where(cos > 0, phi, cos)
        else:
            threshold = jnp.cos(jnp.asarray(math.pi, dtype) - m2)
            phi = jnp.where(cos > threshold, phi, cos - m2 * jnp.sin(m2))
        return phi - m3
    theta = jnp.arccos(c)
    m1 = jnp.asarray(multiplicative, dtype)
    if extension == "clip":
        eps = jnp.asarray(clip_epsilon, dtype)
        a = jnp.clip(m1 * theta + m2, eps, jnp.asarray(math.pi, dtype) - eps)
        return jnp.cos(a) - m3
    if extension == "sphereface":
        a = m1 * theta + m2
        k = jax.lax.stop_gradient(jnp.floor(a / jnp.asarray(math.pi, dtype)))
        sign = 1 - 2 * jnp.mod(k, 2)
        return sign * jnp.cos(a) - 2 * k - m3
    raise ValueError(f"_margin_target_cosine: unknown extension {extension!r}.")


def _replace_target(cos: Array, onehot: Array, target: Array) -> Array:
    """``cos`` with the target column replaced by ``target [N]`` (one-hot select, no scatter)."""
    return jnp.where(onehot > 0, target[:, None], cos)


def _target_column(x: Array, onehot: Array) -> Array:
    return jnp.sum(x * onehot, axis=-1)


# --------------------------------------------------------------------------
# Margin softmaxes.
# --------------------------------------------------------------------------


@register(
    "normalized_softmax_loss",
    aliases=("normface_loss", "normface", "cosine_softmax_loss"),
    family=FAMILY,
    kind="per_example",
    formula="-log softmax(s * cos(x, w_j))_y",
    paper="NormFace: L2 Hypersphere Embedding for Face Verification (2017, arXiv:1704.06369)",
    reference="pytorch_metric_learning.losses.NormalizedSoftmaxLoss (temperature = 1 / scale)",
    sample=lambda: _face_sample(variants=({"scale": 5.0},)),
)
def normalized_softmax_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    proxies: ArrayLike,
    *,
    scale: float = 20.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Softmax cross-entropy over scaled cosines to L2-normalized class weights (NormFace).

    .. math::
        \ell_i = -\log \frac{e^{s\cos\theta_{i y_i}}}{\sum_j e^{s\cos\theta_{ij}}},\qquad
        \cos\theta_{ij} = \frac{x_i\cdot w_j}{\|x_i\|\,\|w_j\|}

    Args:
      embeddings: ``[N, D]`` embeddings (normalized inside).
      labels: ``[N]`` integer class indices in ``[0, C)``.
      proxies: ``[C, D]`` class weights (the classifier's rows; normalized inside).
      scale: ``s``; pytorch-metric-learning's ``temperature`` is ``1 / s`` (0.05 = 20).
      where: optional ``[N]`` boolean mask; masked examples give 0.

    Returns:
      Per-example loss ``[N]``.

    Paper: Wang, Xiang, Cheng, Yuille, "NormFace: L2 Hypersphere Embedding for
    Face Verification", ACM MM 2017, arXiv:1704.06369.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> w = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> x = jnp.array([[2.0, 0.0], [1.0, 1.0]])
      >>> loss = lossjax.losses.normalized_softmax_loss(x, jnp.array([0, 1]), w, scale=1.0)
      >>> [round(float(v), 4) for v in loss]  # log(1 + e^-1), log 2
      [0.3133, 0.6931]
    """
    fn = "normalized_softmax_loss"
    C.check_positive(fn, "scale", scale)
    _, cos, onehot, mask, dtype = class_cosines(fn, embeddings, labels, proxies, where)
    loss = ce_from_logits(jnp.asarray(scale, dtype) * cos, onehot)
    return C.zero_masked(loss, mask)


@register(
    "cosface_loss",
    aliases=("am_softmax", "large_margin_cosine_loss", "lmcl"),
    family=FAMILY,
    kind="per_example",
    formula="-log softmax(s * (cos(theta_j) - m [j = y]))_y",
    paper="CosFace: Large Margin Cosine Loss for Deep Face Recognition (2018, arXiv:1801.09414)",
    reference="pytorch_metric_learning.losses.CosFaceLoss; insightface CombinedMarginLoss(m3)",
    sample=lambda: _face_sample(variants=({"scale": 16.0, "margin": 0.2},)),
)
def cosface_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    proxies: ArrayLike,
    *,
    scale: float = 64.0,
    margin: float = 0.35,
    where: ArrayLike | None = None,
) -> Array:
    r"""CosFace / additive-margin softmax: the target cosine minus a margin, scaled.

    .. math::
        \ell_i = -\log \frac{e^{s(\cos\theta_{y_i} - m)}}
        {e^{s(\cos\theta_{y_i} - m)} + \sum_{j\ne y_i} e^{s\cos\theta_j}}

    Args:
      embeddings: ``[N, D]`` embeddings (normalized inside).
      labels: ``[N]`` integer class indices.
      proxies: ``[C, D]`` class weights (normalized inside).
      scale: ``s`` (64).
      margin: ``m`` (0.35).
      where: optional ``[N]`` boolean mask.

    Returns:
      Per-example loss ``[N]``.

    Paper: Wang et al., "CosFace: Large Margin Cosine Loss for Deep Face
    Recognition", CVPR 2018, arXiv:1801.09414; Wang et al., "Additive Margin
    Softmax for Face Verification", 2018, arXiv:1801.05599.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> w = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> x = jnp.array([[2.0, 0.0]])
      >>> lossjax.losses.cosface_loss(x, jnp.array([0]), w, scale=1.0, margin=0.5).round(4)
      Array([0.4741], dtype=float32)
    """
    fn = "cosface_loss"
    C.check_positive(fn, "scale", scale)
    C.check_positive(fn, "margin", margin, allow_zero=True)
    _, cos, onehot, mask, dtype = class_cosines(fn, embeddings, labels, proxies, where)
    target = _margin_target_cosine(_target_column(cos, onehot), additive=margin)
    loss = ce_from_logits(jnp.asarray(scale, dtype) * _replace_target(cos, onehot, target), onehot)
    return C.zero_masked(loss, mask)


@register(
    "arcface_loss",
    aliases=("additive_angular_margin_loss", "arcface"),
    family=FAMILY,
    kind="per_example",
    formula="-log softmax(s * [cos(theta_y + m) if theta_y <= pi - m else cos(theta_y) - m sin m ; cos(theta_j)])_y",
    paper=_FACE_PAPER,
    reference="insightface arcface_torch ArcFace (threshold / easy_margin); pytorch_metric_learning.losses.ArcFaceLoss",
    sample=lambda: _face_sample(variants=({"easy_margin": True, "scale": 10.0, "margin": 0.3},), value_tol=_ANGLE_TOL),
)
def arcface_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    proxies: ArrayLike,
    *,
    scale: float = 64.0,
    margin: float = 0.5,
    easy_margin: bool = False,
    where: ArrayLike | None = None,
) -> Array:
    r"""ArcFace: an additive angular margin on the target class, ``cos(theta + m)``.

    .. math::
        \psi(\theta) = \begin{cases}\cos(\theta + m) & \theta \le \pi - m\\
        \cos\theta - m\sin m & \text{otherwise}\end{cases},\qquad
        \ell_i = -\log\frac{e^{s\psi(\theta_{y_i})}}{e^{s\psi(\theta_{y_i})} + \sum_{j\ne y_i} e^{s\cos\theta_j}}

    The linear continuation past :math:`\theta = \pi - m` is insightface's
    (``th = cos(pi - m)``, ``mm = sin(pi - m) m``); ``easy_margin=True`` applies
    the margin only where :math:`\cos\theta > 0`. The cosine is clamped to
    :math:`\pm(1 - 10^{-7})` before :math:`\sqrt{1 - \cos^2}`, so an embedding
    equal to its class weight has a finite gradient.

    Args:
      embeddings: ``[N, D]`` embeddings (normalized inside).
      labels: ``[N]`` integer class indices.
      proxies: ``[C, D]`` class weights (normalized inside).
      scale: ``s`` (64).
      margin: ``m`` in radians (0.5; pytorch-metric-learning takes degrees: 28.6).
      easy_margin: insightface's ``easy_margin``.
      where: optional ``[N]`` boolean mask.

    Returns:
      Per-example loss ``[N]``.

    Paper: Deng, Guo, Xue, Zafeiriou, "ArcFace: Additive Angular Margin Loss for
    Deep Face Recognition", CVPR 2019, arXiv:1801.07698.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> w = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> x = jnp.array([[1.0, 1.0]])
      >>> loss = lossjax.losses.arcface_loss(x, jnp.array([0]), w, scale=1.0, margin=0.5)
      >>> round(float(loss[0]), 4)  # log(1 + exp(cos(pi/4) - cos(pi/4 + 0.5)))
      0.9284
    """
    fn = "arcface_loss"
    C.check_positive(fn, "scale", scale)
    C.check_in_range(fn, "margin", margin, 0.0, math.pi / 2)
    _, cos, onehot, mask, dtype = class_cosines(fn, embeddings, labels, proxies, where)
    target = _margin_target_cosine(
        _target_column(cos, onehot), angular=margin, extension="easy" if easy_margin else "threshold"
    )
    loss = ce_from_logits(jnp.asarray(scale, dtype) * _replace_target(cos, onehot, target), onehot)
    return C.zero_masked(loss, mask)


@register(
    "sphereface_loss",
    aliases=("a_softmax", "angular_softmax_loss"),
    family=FAMILY,
    kind="per_example",
    formula="-log softmax(s ||x|| [(-1)^k cos(m theta_y) - 2k ; cos(theta_j)])_y, k = floor(m theta_y / pi)",
    paper="SphereFace: Deep Hypersphere Embedding for Face Recognition (2017, arXiv:1704.08063)",
    reference="pytorch_metric_learning.losses.SphereFaceLoss",
    sample=lambda: _face_sample(variants=({"margin": 3.0, "scale": 2.0},), value_tol=_NORM_SCALED_TOL),
)
def sphereface_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    proxies: ArrayLike,
    *,
    margin: float = 4.0,
    scale: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""SphereFace (A-Softmax): a multiplicative angular margin, logits scaled by the feature norm.

    .. math::
        \psi(\theta) = (-1)^k\cos(m\theta) - 2k,\quad k = \lfloor m\theta/\pi\rfloor,\qquad
        \ell_i = -\log\frac{e^{s\|x_i\|\psi(\theta_{y_i})}}
        {e^{s\|x_i\|\psi(\theta_{y_i})} + \sum_{j\ne y_i} e^{s\|x_i\|\cos\theta_j}}

    Class weights are normalized; the embedding norm stays in the logits (as in
    the paper and pytorch-metric-learning). The paper's annealing with plain
    softmax (``lambda``) is a training schedule, not part of the loss.

    Args:
      embeddings: ``[N, D]`` embeddings (their norm scales the logits).
      labels: ``[N]`` integer class indices.
      proxies: ``[C, D]`` class weights (normalized inside).
      margin: ``m`` >= 1 (4); need not be an integer.
      scale: extra scale ``s`` (1).
      where: optional ``[N]`` boolean mask.

    Returns:
      Per-example loss ``[N]``.

    Paper: Liu et al., "SphereFace: Deep Hypersphere Embedding for Face
    Recognition", CVPR 2017, arXiv:1704.08063.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> w = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> x = jnp.array([[1.0, 0.0]])
      >>> loss = lossjax.losses.sphereface_loss(x, jnp.array([0]), w, margin=2.0)
      >>> round(float(loss[0]), 4)  # theta = 0: psi = cos 0 = 1, other cos = 0: log(1 + e^-1)
      0.3133
    """
    fn = "sphereface_loss"
    C.check_positive(fn, "scale", scale)
    C.check_positive(fn, "margin", margin)
    if is_concrete(margin) and margin < 1:
        raise ValueError(f"{fn}: `margin` must be >= 1 (a multiplicative angular margin), got {margin!r}.")
    e, cos, onehot, mask, dtype = class_cosines(fn, embeddings, labels, proxies, where)
    target = _margin_target_cosine(_target_column(cos, onehot), multiplicative=margin, extension="sphereface")
    norms = C.safe_norm(e, axis=-1, keepdims=True)
    logits = jnp.asarray(scale, dtype) * norms * _replace_target(cos, onehot, target)
    return C.zero_masked(ce_from_logits(logits, onehot), mask)


@register(
    "additive_margin_softmax",
    aliases=("combined_margin_softmax", "combined_margin_loss"),
    family=FAMILY,
    kind="per_example",
    formula="-log softmax(s * [cos(m1 theta_y + m2) - m3 ; cos(theta_j)])_y",
    paper=_FACE_PAPER + " (the combined margin, Sec. 2.3)",
    reference="insightface arcface_torch/losses.py::CombinedMarginLoss; ydwen/opensphere heads",
    sample=lambda: _face_sample(
        kwargs={"angular_margin": 0.2, "additive_margin": 0.1},
        variants=({"multiplicative_margin": 2.0, "angular_margin": 0.1, "additive_margin": 0.1},),
        value_tol=_ANGLE_TOL,
    ),
)
def additive_margin_softmax(
    embeddings: ArrayLike,
    labels: ArrayLike,
    proxies: ArrayLike,
    *,
    scale: float = 64.0,
    multiplicative_margin: float = 1.0,
    angular_margin: float = 0.0,
    additive_margin: float = 0.35,
    easy_margin: bool = False,
    where: ArrayLike | None = None,
) -> Array:
    r"""The margin-softmax primitive: SphereFace, ArcFace and CosFace margins combined.

    .. math::
        \psi(\theta) = \cos(m_1\theta + m_2) - m_3,\qquad
        \ell_i = -\log\frac{e^{s\psi(\theta_{y_i})}}{e^{s\psi(\theta_{y_i})} + \sum_{j\ne y_i} e^{s\cos\theta_j}}

    ``(m1, m2, m3) = (1, 0, m)`` is CosFace (the default, ``m = 0.35``),
    ``(1, m, 0)`` ArcFace, ``(m, 0, 0)`` SphereFace's margin on a normalized
    embedding. Past :math:`m_1\theta + m_2 = \pi` the target logit is continued
    monotonically: insightface's threshold (``cos(theta) - m2 sin(m2)``, or
    ``easy_margin``) when ``m1 = 1``, SphereFace's :math:`(-1)^k\cos - 2k` otherwise.

    Args:
      embeddings: ``[N, D]`` embeddings (normalized inside).
      labels: ``[N]`` integer class indices.
      proxies: ``[C, D]`` class weights (normalized inside).
      scale: ``s`` (64).
      multiplicative_margin: ``m1`` >= 1 (1).
      angular_margin: ``m2`` in radians (0).
      additive_margin: ``m3`` (0.35).
      easy_margin: insightface's ``easy_margin`` (only with ``m1 = 1``).
      where: optional ``[N]`` boolean mask.

    Returns:
      Per-example loss ``[N]``.

    Paper: Deng et al., "ArcFace", arXiv:1801.07698 (combined margin); Wang et
    al., "Additive Margin Softmax for Face Verification", 2018, arXiv:1801.05599.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> w = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> x = jnp.array([[1.0, 1.0]])
      >>> loss = lossjax.losses.additive_margin_softmax(
      ...     x, jnp.array([0]), w, scale=1.0, angular_margin=0.5, additive_margin=0.0)
      >>> round(float(loss[0]), 4)  # = arcface_loss(x, [0], w, scale=1.0, margin=0.5)
      0.9284
    """
    fn = "additive_margin_softmax"
    margins = _check_combined_margins(fn, scale, multiplicative_margin, angular_margin, additive_margin, easy_margin)
    _, cos, onehot, mask, _ = class_cosines(fn, embeddings, labels, proxies, where)
    return C.zero_masked(_combined_margin_ce(cos, onehot, scale, *margins), mask)


def _check_combined_margins(fn, scale, m1, m2, m3, easy_margin):
    C.check_positive(fn, "scale", scale)
    C.check_positive(fn, "multiplicative_margin", m1)
    if not is_concrete(m1) or m1 < 1:
        raise ValueError(f"{fn}: `multiplicative_margin` must be a Python number >= 1, got {m1!r}.")
    C.check_in_range(fn, "angular_margin", m2, 0.0, math.pi / 2)
    C.check_positive(fn, "additive_margin", m3, allow_zero=True)
    if easy_margin and m1 != 1:
        raise ValueError(f"{fn}: `easy_margin=True` needs multiplicative_margin=1, got {m1!r}.")
    return m1, m2, m3, easy_margin


def _combined_margin_ce(cos, onehot, scale, m1, m2, m3, easy_margin):
    """Per-row CE of ``s * cos`` with the target column replaced by the combined-margin ``psi``."""
    extension = ("easy" if easy_margin else "threshold") if m1 == 1 else "sphereface"
    target = _margin_target_cosine(
        _target_column(cos, onehot), multiplicative=m1, angular=m2, additive=m3, extension=extension
    )
    return ce_from_logits(jnp.asarray(scale, cos.dtype) * _replace_target(cos, onehot, target), onehot)


def _partial_fc_sample() -> Sample:
    # C = 6 classes, sample_rate 0.5: 3 sampled, and the batch uses 2 of them, so every
    # label (of any slice of the batch) is kept and one negative is drawn at random.
    rng = np.random.default_rng(4)
    proxies = rng.normal(size=(6, 4)).astype(np.float32)
    labels = np.array([0, 1, 0, 1, 0, 1], np.int32)
    emb = (proxies[labels] * 1.5 + 0.4 * rng.normal(size=(6, 4))).astype(np.float32)
    return Sample(
        args=(emb, labels, proxies),
        kwargs={"key": jax.random.key(0), "sample_rate": 0.5},
        diff_argnums=(0, 2),
        batched_argnums=(0, 1),
    )


@register(
    "partial_fc_sampled_softmax",
    aliases=("partial_fc", "partial_fc_loss"),
    family=FAMILY,
    kind="per_example",
    formula="combined margin softmax over the batch's positive classes + random negatives, ceil(r C) classes in all",
    paper="Partial FC: Training 10 Million Identities on a Single Machine (2020, arXiv:2010.05222)",
    reference="deepinsight/insightface recognition/arcface_torch/partial_fc.py (sampling; single device)",
    sample=_partial_fc_sample,
    runtime=("key",),
)
def partial_fc_sampled_softmax(
    embeddings: ArrayLike,
    labels: ArrayLike,
    proxies: ArrayLike,
    *,
    key: ArrayLike,
    sample_rate: float = 0.1,
    scale: float = 64.0,
    multiplicative_margin: float = 1.0,
    angular_margin: float = 0.5,
    additive_margin: float = 0.0,
    easy_margin: bool = False,
    where: ArrayLike | None = None,
) -> Array:
    r"""Partial FC: the combined margin softmax over a random subset of the class weights.

    .. math::
        \mathcal S = \{y_i\}_i \cup \text{random negatives},\quad |\mathcal S| = \lceil rC \rceil,\qquad
        \ell_i = -\log\frac{e^{s\psi(\theta_{y_i})}}{e^{s\psi(\theta_{y_i})}
        + \sum_{j\in\mathcal S,\, j\ne y_i} e^{s\cos\theta_j}}

    Every class present in the (unmasked) batch is kept; the rest of the
    ``ceil(r C)`` sampled classes are drawn uniformly without replacement from
    the others (a static size, so it jits). Only the sampled rows of
    ``proxies`` get a gradient. ``psi`` is the combined margin of
    :func:`additive_margin_softmax` (ArcFace ``m2 = 0.5`` by default).
    ``ceil(r C)`` must be at least the number of distinct labels in the batch
    (the regime Partial FC is for: millions of classes); an example whose
    class was not sampled would get loss 0 (reported in debug mode).

    Args:
      embeddings: ``[N, D]`` (normalized inside).
      labels: ``[N]`` integer class indices.
      proxies: ``[C, D]`` class weights (normalized inside).
      key: PRNG key for the negative classes (draw a new one every step).
      sample_rate: ``r`` in ``(0, 1]`` (0.1); 1 is the full softmax.
      scale: ``s`` (64).
      multiplicative_margin: ``m1`` (1).
      angular_margin: ``m2`` (0.5).
      additive_margin: ``m3`` (0).
      easy_margin: insightface's ``easy_margin``.
      where: optional ``[N]`` boolean mask; masked labels are not forced into the sample.

    Returns:
      Per-example loss ``[N]``.

    Paper: An et al., "Partial FC: Training 10 Million Identities on a Single
    Machine", ICCV Workshops 2021, arXiv:2010.05222.

    Example:
      >>> import jax, jax.numpy as jnp, lossjax
      >>> w = jnp.eye(4)
      >>> x = jnp.array([[1.0, 0.2, 0.0, 0.0]])
      >>> full = lossjax.losses.arcface_loss(x, jnp.array([0]), w, scale=8.0)
      >>> part = lossjax.losses.partial_fc_sampled_softmax(x, jnp.array([0]), w, key=jax.random.key(0),
      ...                                                  sample_rate=1.0, scale=8.0)
      >>> bool(jnp.allclose(full, part))
      True
    """
    fn = "partial_fc_sampled_softmax"
    C.check_in_range(fn, "sample_rate", sample_rate, 0.0, 1.0, low_inclusive=False)
    margins = _check_combined_margins(fn, scale, multiplicative_margin, angular_margin, additive_margin, easy_margin)
    e, y, p = check_proxy_inputs(fn, embeddings, labels, proxies)
    num_classes = p.shape[0]
    k = min(num_classes, max(1, math.ceil(sample_rate * num_classes)))
    dtype = C.compute_dtype(e, p)
    mask = C.prepare_where(fn, where, e.shape[:1])
    valid = jnp.ones(e.shape[:1], bool) if mask is None else mask
    iota = jax.lax.broadcasted_iota(y.dtype, (e.shape[0], num_classes), 1)
    present = jnp.any((iota == y[:, None]) & valid[:, None], axis=0)
    # float32 draws whatever the input dtype: the same key samples the same classes (and no float64 under x64).
    score = jnp.where(present, 2.0, jax.random.uniform(key, (num_classes,), dtype=jnp.float32))
    _, idx = jax.lax.top_k(score, k)
    x = C.fill_masked(C.as_compute(e, dtype), mask)
    sub = jnp.take(C.as_compute(p, dtype), idx, axis=0)
    cos = pairwise_similarity(x, sub, distance="cosine")
    onehot = (y[:, None] == idx[None, :].astype(y.dtype)).astype(dtype)
    C.debug_check(
        jnp.all(~valid | (jnp.sum(onehot, axis=-1) > 0)),
        f"{fn}: a batch label was not sampled: ceil(sample_rate * C) = {k} is below the number of distinct labels",
    )
    return C.zero_masked(_combined_margin_ce(cos, onehot, scale, *margins), mask)


class AdaFaceState(NamedTuple):
    """AdaFace's running feature-norm statistics (exponential moving averages).

    Attributes:
      batch_mean: scalar EMA of the mean feature norm (initially 20).
      batch_std: scalar EMA of the standard deviation of the feature norm (initially 100).
    """

    batch_mean: Array
    batch_std: Array

    @classmethod
    def initial(cls, dtype=jnp.float32) -> AdaFaceState:
        """The reference's initial buffers: mean 20, std 100."""
        return cls(jnp.asarray(20.0, dtype), jnp.asarray(100.0, dtype))


def _adaface_sample() -> Sample:
    # A running std far below the batch's spread saturates the norm scaler at -1: the
    # margin's (stop-gradient) dependence on the norm is then locally constant, so
    # finite differences agree with the gradient.
    return _face_sample(
        seed=1,
        kwargs={"state": AdaFaceState(np.float32(20.0), np.float32(0.01))},
        variants=({"margin": 0.3, "h": 0.5, "decay": 0.5, "scale": 16.0},),
    )


@register(
    "adaface_loss",
    aliases=("adaface",),
    family=FAMILY,
    kind="per_example",
    formula="-log softmax(s [cos(clip(theta_y - m z, eps, pi - eps)) - (m + m z) ; cos(theta_j)])_y, "
    "z = clip(h (||x|| - mu) / (sigma + eps), -1, 1), mu <- decay mu + (1 - decay) mean||x||",
    paper="AdaFace: Quality Adaptive Margin for Face Recognition (2022, arXiv:2204.00964)",
    reference="mk-minchul/AdaFace head.py::AdaFace (ported; no PyPI package)",
    sample=_adaface_sample,
    runtime=("state", "axis_name"),
    has_aux=True,
)
def adaface_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    proxies: ArrayLike,
    *,
    state: AdaFaceState | None = None,
    margin: float = 0.4,
    h: float = 0.333,
    scale: float = 64.0,
    decay: float = 0.99,
    axis_name=None,
    where: ArrayLike | None = None,
) -> tuple[Array, AdaFaceState]:
    r"""AdaFace: a margin that adapts to image quality, measured by the feature norm.

    .. math::
        \hat z_i = \mathrm{clip}\Big(h\,\frac{\|x_i\| - \mu}{\sigma + \epsilon}, -1, 1\Big),\quad
        g_{angle} = -m\hat z_i,\quad g_{add} = m + m\hat z_i

    .. math::
        \ell_i = -\log\frac{e^{s[\cos(\mathrm{clip}(\theta_{y_i} + g_{angle}, \epsilon, \pi-\epsilon)) - g_{add}]}}
        {e^{s[\cdots]} + \sum_{j\ne y_i} e^{s\cos\theta_j}}

    :math:`\mu, \sigma` are exponential moving averages of the batch mean and
    (unbiased) standard deviation of the feature norms (clipped to
    ``[0.001, 100]``, without gradient):
    :math:`\mu \leftarrow \mathrm{decay}\,\mu + (1 - \mathrm{decay})\,\mathrm{mean}_i\|x_i\|`,
    likewise :math:`\sigma`. The reference's rate ``t_alpha`` is ``1 - decay``
    (its configs' ``t_alpha = 0.01`` is ``decay = 0.99``; its head's default
    ``t_alpha = 1`` is ``decay = 0``, no memory). They are updated with
    this batch first, then used, as in the reference. Cosines are clamped to
    :math:`\pm(1 - \epsilon)`, :math:`\epsilon = 10^{-3}`. With ``axis_name``
    the norm statistics are over the global batch; masked examples do not
    enter them, and an all-masked batch leaves the state unchanged.

    Args:
      embeddings: ``[N, D]`` unnormalized features (their norm is the quality proxy).
      labels: ``[N]`` integer class indices.
      proxies: ``[C, D]`` class weights (normalized inside).
      state: :class:`AdaFaceState`; ``None`` is the initial state (20, 100).
      margin: ``m`` (0.4).
      h: ``h`` (0.333), the concentration of the norm scaler.
      scale: ``s`` (64).
      decay: the EMA decay in ``[0, 1]`` (0.99, i.e. the paper's training configs' ``t_alpha = 0.01``).
      axis_name: mapped axis name(s) for global norm statistics under ``shard_map``.
      where: optional ``[N]`` boolean mask.

    Returns:
      ``(loss [N], new_state)``.

    Paper: Kim, Jain, Liu, "AdaFace: Quality Adaptive Margin for Face
    Recognition", CVPR 2022, arXiv:2204.00964.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> w = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> x = jnp.array([[3.0, 1.0], [0.5, 2.0]])
      >>> loss, state = lossjax.losses.adaface_loss(x, jnp.array([0, 1]), w, scale=1.0)
      >>> loss.shape, round(float(state.batch_mean), 4)  # 0.99 * 20 + 0.01 * mean(|x|)
      ((2,), 19.8261)
    """
    fn = "adaface_loss"
    C.check_positive(fn, "scale", scale)
    C.check_positive(fn, "margin", margin, allow_zero=True)
    C.check_positive(fn, "h", h)
    C.check_in_range(fn, "decay", decay, 0.0, 1.0)
    e, y, p = check_proxy_inputs(fn, embeddings, labels, proxies)
    dtype = C.compute_dtype(e, p)
    if state is None:
        state = AdaFaceState.initial(dtype)
    if not isinstance(state, AdaFaceState):
        if isinstance(state, tuple) and len(state) == 2:
            state = AdaFaceState(*state)
        else:
            raise TypeError(
                f"{fn}: `state` must be an AdaFaceState (batch_mean, batch_std), got {type(state).__name__}."
            )
    old_mean = C.check_array(fn, "state.batch_mean", state.batch_mean, ndim=0, dtype="float").astype(dtype)
    old_std = C.check_array(fn, "state.batch_std", state.batch_std, ndim=0, dtype="float").astype(dtype)
    mask = C.prepare_where(fn, where, e.shape[:1])
    x = C.fill_masked(C.as_compute(e, dtype), mask)
    cos = pairwise_similarity(x, C.as_compute(p, dtype), distance="cosine")
    eps = 1e-3
    cos = jnp.clip(cos, -1 + eps, 1 - eps)
    onehot = C.class_targets(fn, cos, y, dtype, where=mask)

    norms = jax.lax.stop_gradient(jnp.clip(C.safe_norm(x, axis=-1), 0.001, 100.0))
    valid = jnp.ones(norms.shape, bool) if mask is None else mask
    vf = valid.astype(dtype)
    count = psum(jnp.sum(vf), axis_name)
    mean = psum(jnp.sum(vf * norms), axis_name) / jnp.maximum(count, 1)
    var = psum(jnp.sum(vf * jnp.square(norms - mean)), axis_name) / jnp.maximum(count - 1, 1)
    std = jnp.sqrt(var)
    keep = jnp.asarray(decay, dtype)
    has_data = count > 0
    new_mean = jnp.where(has_data, (1 - keep) * mean + keep * old_mean, old_mean)
    new_std = jnp.where(has_data, (1 - keep) * std + keep * old_std, old_std)
    new_mean, new_std = jax.lax.stop_gradient(new_mean), jax.lax.stop_gradient(new_std)

    scaler = jnp.clip((norms - new_mean) / (new_std + eps) * jnp.asarray(h, dtype), -1.0, 1.0)
    m = jnp.asarray(margin, dtype)
    target = _margin_target_cosine(
        _target_column(cos, onehot), angular=-m * scaler, additive=m + m * scaler, extension="clip", clip_epsilon=eps
    )
    logits = jnp.asarray(scale, dtype) * _replace_target(cos, onehot, target)
    loss = C.zero_masked(ce_from_logits(logits, onehot), mask)
    return loss, AdaFaceState(new_mean, new_std)


def sphereface2_initial_bias(
    num_classes: int,
    *,
    alpha: float = 0.7,
    scale: float = 40.0,
    margin: float = 0.4,
    t: float = 3.0,
    variant: str = "C",
) -> float:
    r"""SphereFace2's initial bias ``b`` (a Python float), as in opensphere's ``SphereFace2.__init__``.

    .. math::
        z = \frac{\alpha}{(1 - \alpha)(C - 1)},\qquad
        b = \log(2z) - a_i - \log\Big(1 - z + \sqrt{(1 - z)^2 + 4z\,e^{a_y - a_i}}\Big)

    with :math:`a_y, a_i` the scaled adjusted logits of a target and a
    non-target at :math:`\cos\theta = 0` (``variant`` says which margin:
    ``"C"`` :math:`a_{y,i} = r(2 \cdot 0.5^t - 1 \mp m)`). The last logarithm is
    computed without the cancellation the reference suffers from when
    :math:`z > 1` (few classes).

    Args:
      num_classes: ``C`` (an integer >= 2).
      alpha: ``lambda`` (0.7), the weight of the positive term.
      scale: ``r`` (40), the hypersphere radius.
      margin: ``m`` (0.4).
      t: ``t`` (3), the power of the similarity adjustment.
      variant: ``"C"`` (cosine margin), ``"A"`` (additive angular), ``"M"`` (multiplicative).

    Returns:
      The initial value of the bias ``b`` (a Python float); initialize the
      learnable bias of :func:`sphereface2_loss` with it.

    Paper: Wen, Liu, Weller, Raj, Singh, "SphereFace2: Binary Classification is
    All You Need for Deep Face Recognition", ICLR 2022, arXiv:2108.01513.

    Example:
      >>> import lossjax
      >>> round(lossjax.losses.sphereface2_initial_bias(10), 3)
      12.95
    """
    fn = "sphereface2_initial_bias"
    C.check_one_of(fn, "variant", variant, ("C", "A", "M"))
    C.check_int(fn, "num_classes", num_classes, 2)
    num_classes = int(num_classes)
    z = alpha / ((1.0 - alpha) * (num_classes - 1.0))
    if variant == "C":
        ay = scale * (2.0 * 0.5**t - 1.0 - margin)
        ai = scale * (2.0 * 0.5**t - 1.0 + margin)
    else:
        theta_y = min(math.pi, math.pi / 2.0 + margin) if variant == "A" else min(math.pi, margin * math.pi / 2.0)
        ay = scale * (2.0 * ((math.cos(theta_y) + 1.0) / 2.0) ** t - 1.0)
        ai = scale * (2.0 * 0.5**t - 1.0)
    e = 4.0 * z * math.exp(ay - ai)
    root = math.sqrt((1.0 - z) ** 2 + e)
    # 1 - z + root, without the cancellation the reference suffers from when z > 1 (few classes).
    arg = 1.0 - z + root if z <= 1.0 else e / (root - (1.0 - z))
    return math.log(2.0 * z) - ai - math.log(arg)


@register(
    "sphereface2_loss",
    aliases=("sphereface2",),
    family=FAMILY,
    kind="per_example",
    formula="(lw / r) sum_j w_j BCE(r (g(cos theta_j) - m (2[j=y]-1)) + b, [j=y]), g(c) = 2((c+1)/2)^t - 1, "
    "w = lambda [j=y] + (1 - lambda) [j!=y]",
    paper="SphereFace2: Binary Classification is All You Need for Deep Face Recognition (2022, arXiv:2108.01513)",
    reference="ydwen/opensphere model/head/sphereface2.py::SphereFace2 (ported; no PyPI package)",
    # The reference's forward-only g makes the default gradient a surrogate by design; its
    # values are tested against opensphere, and stop_gradient_adjustment=False with check_grads.
    sample=lambda: _face_sample(surrogate_grad=True, variants=({"variant": "A"}, {"variant": "M", "margin": 1.5})),
)
def sphereface2_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    proxies: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    alpha: float = 0.7,
    scale: float = 40.0,
    margin: float = 0.4,
    t: float = 3.0,
    loss_weight: float = 50.0,
    variant: str = "C",
    stop_gradient_adjustment: bool = True,
    where: ArrayLike | None = None,
) -> Array:
    r"""SphereFace2: one binary (one-vs-all) logistic loss per class instead of a softmax.

    .. math::
        z_{ij} = r\,\big(g(\cos\theta_{ij}) - m(2\,[j = y_i] - 1)\big) + b,\qquad
        g(c) = 2\Big(\frac{c+1}{2}\Big)^t - 1

    .. math::
        \ell_i = \frac{lw}{r}\sum_j \big(\lambda[j = y_i]\,\mathrm{softplus}(-z_{ij})
        + (1-\lambda)[j \ne y_i]\,\mathrm{softplus}(z_{ij})\big)

    (``variant="C"``; ``"A"``/``"M"`` use an additive/multiplicative angular
    margin on the target, :math:`g(\cos(\theta \pm m))`, through the shared margin
    helper.) As in the reference (``stop_gradient_adjustment=True``), the similarity
    adjustment ``g`` and the margin are applied in the forward pass only: the
    gradient is that of :math:`r\cos\theta + b`; ``False`` differentiates
    through ``g``. The mean of :math:`\ell_i` over the batch equals
    opensphere's loss.

    Args:
      embeddings: ``[N, D]`` embeddings (normalized inside).
      labels: ``[N]`` integer class indices.
      proxies: ``[C, D]`` class weights (normalized inside), ``C >= 2``.
      bias: the learnable scalar bias ``b``; ``None`` uses the paper's initial
        value :func:`sphereface2_initial_bias` (initialize your parameter with it).
      alpha: ``lambda`` (0.7), the weight of the positive term.
      scale: ``r`` (40), the hypersphere radius.
      margin: ``m`` (0.4).
      t: ``t`` (3), the power in ``g``.
      loss_weight: ``lw`` (50).
      variant: ``"C"`` (cosine margin), ``"A"`` (additive angular), ``"M"`` (multiplicative):
        opensphere's ``magn_type``.
      stop_gradient_adjustment: hold the similarity adjustment ``g`` and the
        margin constant in the backward pass (forward only), as the reference (True).
      where: optional ``[N]`` boolean mask.

    Returns:
      Per-example loss ``[N]``.

    Paper: Wen, Liu, Weller, Raj, Singh, "SphereFace2: Binary Classification is
    All You Need for Deep Face Recognition", ICLR 2022, arXiv:2108.01513.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> w = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> x = jnp.array([[1.0, 0.2]])
      >>> loss = lossjax.losses.sphereface2_loss(x, jnp.array([0]), w)
      >>> round(float(loss[0]), 2)  # the initial bias of C = 2 classes makes the negative term large
      14.78
    """
    fn = "sphereface2_loss"
    C.check_in_range(fn, "alpha", alpha, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    C.check_positive(fn, "scale", scale)
    C.check_positive(fn, "margin", margin, allow_zero=True)
    C.check_positive(fn, "t", t)
    C.check_positive(fn, "loss_weight", loss_weight)
    C.check_one_of(fn, "variant", variant, ("C", "A", "M"))
    _, cos, onehot, mask, dtype = class_cosines(fn, embeddings, labels, proxies, where)
    num_classes = cos.shape[-1]
    if num_classes < 2:
        raise ValueError(f"{fn}: `proxies` must have at least 2 classes (rows), got shape {jnp.shape(proxies)}.")
    if bias is None:
        hp = {"alpha": alpha, "scale": scale, "margin": margin, "t": t, "variant": variant}
        b0 = sphereface2_initial_bias(num_classes, **hp)
        b = jnp.asarray(b0, dtype)
    else:
        b = C.check_array(fn, "bias", bias, ndim=(0, 1), dtype="float").astype(dtype)
        if b.ndim == 1:
            if b.shape != (1,):
                raise ValueError(f"{fn}: `bias` must be a scalar or shape (1,), got {b.shape}.")
            b = b[0]
    tt = jnp.asarray(t, dtype)
    m = jnp.asarray(margin, dtype)

    def g(c):
        # ((c + 1) / 2)^t with c in [-1, 1]: exp(t log(.)) with a safe log (no NaN at c = -1).
        base = jnp.clip((c + 1) / 2, 0.0, 1.0)
        return 2 * jnp.where(base > 0, jnp.exp(tt * C.safe_log(base)), jnp.zeros((), dtype)) - 1

    sg_cos = jax.lax.stop_gradient(cos) if stop_gradient_adjustment else cos
    if variant == "C":
        adjusted = g(sg_cos) - m * (2 * onehot - 1)
    else:
        # Reference: theta clamped from cos in [-1 + 1e-5, 1 - 1e-5], margin on the target, clip to [1e-5, 3.14159].
        c = jnp.clip(sg_cos, -1 + 1e-5, 1 - 1e-5)
        if variant == "A":
            shifted = _margin_target_cosine(c, angular=m, extension="clip", clip_epsilon=1e-5)
        else:
            shifted = _margin_target_cosine(c, multiplicative=margin, extension="clip", clip_epsilon=1e-5)
        # Non-targets go through acos -> cos unchanged (theta is already inside the clip range).
        adjusted = g(jnp.where(onehot > 0, shifted, c))
    delta = adjusted - cos
    if stop_gradient_adjustment:
        delta = jax.lax.stop_gradient(delta)
    r = jnp.asarray(scale, dtype)
    logits = r * (cos + delta) + b
    a = jnp.asarray(alpha, dtype)
    weight = a * onehot + (1 - a) * (1 - onehot)
    bce = onehot * jax.nn.softplus(-logits) + (1 - onehot) * jax.nn.softplus(logits)
    loss = jnp.asarray(loss_weight, dtype) / r * jnp.sum(weight * bce, axis=-1)
    return C.zero_masked(loss, mask)


# --------------------------------------------------------------------------
# More of pytorch-metric-learning's classification-style losses (issue 15).
# --------------------------------------------------------------------------


def _subcenter_sample() -> Sample:
    rng = np.random.default_rng(41)
    proxies = rng.normal(size=(3, 2, 4)).astype(np.float32)  # 3 classes, 2 sub-centres
    labels = (np.arange(6) % 3).astype(np.int32)
    emb = (proxies[labels, np.arange(6) % 2] * 1.5 + 0.4 * rng.normal(size=(6, 4))).astype(np.float32)
    return Sample(
        args=(emb, labels, proxies),
        diff_argnums=(0, 2),
        batched_argnums=(0, 1),
        # An embedding on its sub-centre (cos = 1: the clamp), every input at 1e4 (signs) and zeros.
        extremes=(
            (np.concatenate([proxies[labels[:1], 0], emb[1:]]), labels, proxies),
            (
                np.where(emb >= 0, 1e4, -1e4).astype(np.float32),
                labels,
                np.where(proxies >= 0, 1e4, -1e4).astype(np.float32),
            ),
            (np.zeros_like(emb), labels, np.zeros_like(proxies)),
        ),
        variants=({"scale": 10.0, "margin": 0.3},),
        value_tol=_ANGLE_TOL,
    )


@register(
    "subcenter_arcface_loss",
    aliases=("sub_center_arcface_loss",),
    family=FAMILY,
    kind="per_example",
    formula="arcface_loss on cos_ic = max_k cos(x_i, w_ck)",
    paper="Sub-center ArcFace: Boosting Face Recognition by Large-scale Noisy Web Faces (Deng et al., ECCV 2020)",
    reference="KevinMusgrave/pytorch-metric-learning::losses/subcenter_arcface_loss.py::SubCenterArcFaceLoss",
    sample=_subcenter_sample,
)
def subcenter_arcface_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    proxies: ArrayLike,
    *,
    scale: float = 64.0,
    margin: float = 0.5,
    where: ArrayLike | None = None,
) -> Array:
    r"""Sub-center ArcFace: ArcFace on the cosine of each class's closest sub-centre.

    .. math::
        \cos\theta_{ic} = \max_k \cos(x_i, w_{ck}),\qquad
        \ell_i = -\log\frac{e^{s\psi(\theta_{iy_i})}}{e^{s\psi(\theta_{iy_i})} + \sum_{c\ne y_i} e^{s\cos\theta_{ic}}}

    with ArcFace's :math:`\psi` (``cos(theta + m)``, continued linearly past
    :math:`\theta = \pi - m`; see :func:`arcface_loss`). Noisy examples pick a
    non-dominant sub-centre, so the dominant one stays clean.

    Args:
      embeddings: ``[N, D]`` embeddings (normalized inside).
      labels: ``[N]`` integer class indices.
      proxies: ``[C, K, D]`` the ``K`` sub-centres of each class (normalized inside;
        PML's ``W`` is ``[D, C * K]`` with column ``c * K + k``).
      scale: ``s`` (64).
      margin: ``m`` in radians (0.5; PML takes degrees: 28.6).
      where: optional ``[N]`` boolean mask.

    Returns:
      Per-example loss ``[N]`` (PML's value is the mean).

    Paper: Deng, Guo, Liu, Xue, Kotsia, Zafeiriou, "Sub-center ArcFace:
    Boosting Face Recognition by Large-scale Noisy Web Faces", ECCV 2020.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> w = jnp.array([[[1.0, 0.0], [0.0, -1.0]], [[0.0, 1.0], [-1.0, 0.0]]])  # 2 classes x 2 sub-centres
      >>> x = jnp.array([[1.0, 1.0]])
      >>> loss = lossjax.losses.subcenter_arcface_loss(x, jnp.array([0]), w, scale=1.0, margin=0.5)
      >>> round(float(loss[0]), 4)  # as arcface_loss with the closest sub-centres [1, 0] and [0, 1]
      0.9284
    """
    fn = "subcenter_arcface_loss"
    C.check_positive(fn, "scale", scale)
    C.check_in_range(fn, "margin", margin, 0.0, math.pi / 2)
    e, y, p = check_proxy_inputs(fn, embeddings, labels, proxies, proxies_ndim=3)
    dtype = C.compute_dtype(e, p)
    mask = C.prepare_where(fn, where, e.shape[:1])
    e = C.fill_masked(C.as_compute(e, dtype), mask)
    c, k, d = p.shape
    cos = pairwise_similarity(e, jnp.reshape(C.as_compute(p, dtype), (c * k, d)), distance="cosine")
    cos = jnp.reshape(cos, (e.shape[0], c, k))
    # The closest sub-centre by index (ties: the first, as torch's max): its cosine carries the whole gradient.
    best = jax.lax.stop_gradient(jnp.argmax(cos, axis=-1))
    cos = jnp.take_along_axis(cos, best[..., None], axis=-1)[..., 0]
    onehot = C.class_targets(fn, cos, y, dtype, where=mask)
    target = _margin_target_cosine(_target_column(cos, onehot), angular=margin, extension="threshold")
    loss = ce_from_logits(jnp.asarray(scale, dtype) * _replace_target(cos, onehot, target), onehot)
    return C.zero_masked(loss, mask)


@register(
    "p2sgrad_loss",
    aliases=("p2s_grad_loss",),
    family=FAMILY,
    kind="per_example",
    formula="1/C sum_c (cos(x_i, w_c) - [c = y_i])^2",
    paper="P2SGrad: Refined Gradients for Optimizing Deep Face Models (Zhang et al., CVPR 2019, arXiv:1905.02479)",
    reference="KevinMusgrave/pytorch-metric-learning::losses/p2s_grad_loss.py::P2SGradLoss "
    "(from nii-yamagishilab/project-NN-Pytorch-scripts core_modules/p2sgrad.py)",
    sample=lambda: proxy_sample(seed=42),
)
def p2sgrad_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    proxies: ArrayLike,
    *,
    where: ArrayLike | None = None,
) -> Array:
    r"""P2SGrad: the mean squared error between the class cosines and the one-hot target.

    .. math::
        \ell_i = \frac1C\sum_{c=1}^{C}\big(\cos\theta_{ic} - \mathbb 1[c = y_i]\big)^2

    Its gradient is the paper's probability-to-similarity gradient (Eq. 11):
    no scale or margin hyperparameters. PML's value is the mean of ``ell``
    (``nn.MSELoss`` over ``[N, C]``).

    Args:
      embeddings: ``[N, D]`` embeddings (normalized inside).
      labels: ``[N]`` integer class indices.
      proxies: ``[C, D]`` class weights (normalized inside, as PML's renormed columns).
      where: optional ``[N]`` boolean mask.

    Returns:
      Per-example loss ``[N]``.

    Paper: Zhang, Zhao, Yan, Yi, Wang, Li, "P2SGrad: Refined Gradients for
    Optimizing Deep Face Models", CVPR 2019, arXiv:1905.02479.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> w = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> lossjax.losses.p2sgrad_loss(jnp.array([[1.0, 1.0]]), jnp.array([0]), w).round(4)  # (0.2929^2 + 0.7071^2)/2
      Array([0.2929], dtype=float32)
    """
    _, cos, onehot, mask, _ = class_cosines("p2sgrad_loss", embeddings, labels, proxies, where)
    loss = jnp.mean(jnp.square(jnp.clip(cos, -1.0, 1.0) - onehot), axis=-1)
    return C.zero_masked(loss, mask)


# --------------------------------------------------------------------------
# Large-margin softmax (issue 15, second part).
# --------------------------------------------------------------------------

__all__ += ["large_margin_softmax_loss"]


def _large_margin_sample() -> Sample:
    s = proxy_sample(seed=43)
    emb, labels, proxies = s.args
    edge_emb, edge_labels, edge_proxies = _face_edges()
    # The logits are ||w_j|| ||x|| cos: every input at 1e4 makes them 1e8, where one float32 ulp is 8; the edges
    # (cos = +-1, 1e4 and 1e-4 rows, a zero row) and a scale of 1e2 on the embeddings only.
    return Sample(
        args=s.args,
        diff_argnums=s.diff_argnums,
        batched_argnums=s.batched_argnums,
        extremes=((edge_emb, edge_labels, edge_proxies), (emb * 100, labels, proxies), (0 * emb, labels, proxies)),
        variants=({"margin": 3, "scale": 2.0},),  # an odd margin (the sample's is 4)
        value_tol=_NORM_SCALED_TOL,
    )


@register(
    "large_margin_softmax_loss",
    aliases=("l_softmax_loss",),
    family=FAMILY,
    kind="per_example",
    formula="-log softmax(s ||w_j|| ||x|| [(-1)^k cos(m theta_y) - 2k ; cos(theta_j)])_y, k = floor(m theta_y / pi)",
    paper="Large-Margin Softmax Loss for Convolutional Neural Networks (Liu et al., ICML 2016, arXiv:1612.02295)",
    reference="KevinMusgrave/pytorch-metric-learning::losses/large_margin_softmax_loss.py::LargeMarginSoftmaxLoss",
    sample=_large_margin_sample,
)
def large_margin_softmax_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    proxies: ArrayLike,
    *,
    margin: int = 4,
    scale: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Large-margin softmax (L-Softmax): a multiplicative angular margin on the target logit of a linear classifier.

    .. math::
        \psi(\theta) = (-1)^k\cos(m\theta) - 2k,\quad k = \lfloor m\theta/\pi\rfloor,\qquad
        \ell_i = -\log\frac{e^{s\|w_{y_i}\|\|x_i\|\psi(\theta_{y_i})}}
        {e^{s\|w_{y_i}\|\|x_i\|\psi(\theta_{y_i})} + \sum_{j\ne y_i} e^{s\|w_j\|\|x_i\|\cos\theta_j}}

    The logits are those of the linear layer ``w_j . x_i`` (both norms kept,
    unlike :func:`sphereface_loss`, which normalizes the weights), with the
    target's angle multiplied by the integer ``m``; ``cos(m theta)`` is
    computed from the angle (equal to the paper's multiple-angle polynomial
    of ``cos theta``, which PML evaluates), the cosine clamped to
    :math:`\pm(1 - 10^{-7})` so the gradient is finite at :math:`\cos = \pm 1`.

    Args:
      embeddings: ``[N, D]`` embeddings.
      labels: ``[N]`` integer class indices.
      proxies: ``[C, D]`` the classifier's weights (PML's ``W`` transposed; not normalized).
      margin: ``m``, an integer >= 1 (4, the paper's best).
      scale: ``s`` multiplying the logits (1, the paper's).
      where: optional ``[N]`` boolean mask.

    Returns:
      Per-example loss ``[N]`` (PML's value is the mean).

    Paper: Liu, Wen, Yu, Yang, "Large-Margin Softmax Loss for Convolutional
    Neural Networks", ICML 2016, arXiv:1612.02295.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> w = jnp.array([[2.0, 0.0], [0.0, 1.0]])
      >>> loss = lossjax.losses.large_margin_softmax_loss(jnp.array([[1.0, 0.0]]), jnp.array([0]), w, margin=2)
      >>> round(float(loss[0]), 4)  # theta = 0: logits [2 cos 0, 0] = [2, 0]: log(1 + e^-2)
      0.1269
    """
    fn = "large_margin_softmax_loss"
    C.check_int(fn, "margin", margin, 1)
    C.check_positive(fn, "scale", scale)
    e, cos, onehot, mask, dtype = class_cosines(fn, embeddings, labels, proxies, where)
    target = _margin_target_cosine(_target_column(cos, onehot), multiplicative=margin, extension="sphereface")
    x_norms = C.safe_norm(e, axis=-1, keepdims=True)  # [N, 1]
    w_norms = C.safe_norm(C.as_compute(jnp.asarray(proxies), dtype), axis=-1)[None, :]  # [1, C]
    logits = jnp.asarray(scale, dtype) * x_norms * w_norms * _replace_target(cos, onehot, target)
    return C.zero_masked(ce_from_logits(logits, onehot), mask)
