"""Proxy and prototype losses: embeddings compared with one learned (or computed) point per class.

* per-example losses on ``embeddings [N, D]``, integer ``labels [N]`` and
  ``proxies [C, D]`` (one learned vector per class): proxy-NCA, SoftTriple
  (``[C, K, D]`` centers, with its center regularizer), the harmonic loss
  (Euclidean distances to class prototypes) and the label-embedding (ALE /
  WSABIE) ranking loss (bilinear compatibilities with class embeddings);
* proxy-anchor: one value for the batch (``axis_name`` for the global batch);
* prototype losses on few-shot episodes (prototypical networks, angular
  prototypical): one value per episode.

Similarities and distances come from :mod:`lossjax._pairwise` (one matmul);
the argument checks, cosines and cross-entropy shared with the margin
softmaxes from :mod:`lossjax._proxy_core`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax._pairwise import l2_normalize, masked_logsumexp, pairwise_distance, pairwise_similarity
from lossjax._parallel import psum
from lossjax._proxy_core import ce_from_logits, check_proxy_inputs, class_cosines, is_concrete, proxy_sample
from lossjax._targets import target_probs
from lossjax.registry import Sample, register

__all__ = [
    "angular_prototypical_loss",
    "harmonic_loss",
    "label_embedding_ranking_loss",
    "mean_field_contrastive_loss",
    "prototypical_loss",
    "proxy_anchor_loss",
    "proxy_nca_loss",
    "soft_triple_loss",
    "soft_triple_regularizer",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

FAMILY = "proxies"


# --------------------------------------------------------------------------
# Harmonic loss (distance-based logits).
# --------------------------------------------------------------------------


def _harmonic_sample() -> Sample:
    rng = np.random.default_rng(7)
    embeddings = rng.normal(size=(6, 3)).astype(np.float32)
    proxies = rng.normal(size=(4, 3)).astype(np.float32)
    labels = rng.integers(0, 4, size=(6,)).astype(np.int32)
    return Sample(args=(embeddings, labels, proxies), diff_argnums=(0, 2), batched_argnums=(0, 1))


@register(
    "harmonic_loss",
    aliases=("harmonic",),
    family=FAMILY,
    kind="per_example",
    formula="-log softmax(-n log d)_y,  d_c = max(||x - w_c||, epsilon)  (p_c = d_c^-n / sum_j d_j^-n)",
    paper="Harmonic Loss Trains Interpretable AI Models (2025, arXiv:2502.01628); "
    "Rethinking the Harmonic Loss via Non-Euclidean Distance Layers (2025)",
    reference="maxwellmg/rethinking-harmonic-loss llms/model/distance_layers.py::EuclideanDistLayer (pow_n = n_embd)",
    sample=_harmonic_sample,
)
def harmonic_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    proxies: ArrayLike,
    *,
    exponent: float | None = None,
    epsilon: float = 1e-6,
    where: ArrayLike | None = None,
) -> Array:
    r"""Harmonic loss: cross-entropy of the harmonic max over Euclidean distances to class prototypes.

    .. math::
        p_c = \frac{d_c^{-n}}{\sum_j d_j^{-n}},\quad d_c = \max(\|x - w_c\|_2, \epsilon),\quad
        \ell = -\log p_y

    i.e. cross-entropy on the logits ``-n log d_c``, computed in log space as
    ``-(n/2) log max(|x|^2 + |w|^2 - 2 x.w, epsilon^2)`` from
    :func:`lossjax._pairwise.pairwise_distance` (no ``[..., C, D]`` difference
    tensor, no square root, finite gradients at ``x = w_c``). The reference
    layer raises *squared* distances to ``-n``: that is ``exponent = 2n`` here.

    Args:
      embeddings: ``[..., D]`` inputs of the distance head (``x``).
      labels: integer class indices ``[...]`` or a target distribution ``[..., C]``.
      proxies: ``[C, D]`` class prototypes (the distance head's weight vectors ``w_c``).
      exponent: the harmonic exponent ``n > 0``; None means ``D`` (the reference's choice;
        the papers also suggest 1 and ``sqrt(D)``).
      epsilon: floor on the distance.
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Baek et al., "Harmonic Loss Trains Interpretable AI Models", 2025,
    arXiv:2502.01628; "Rethinking the Harmonic Loss via Non-Euclidean Distance Layers", 2025.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x, w = jnp.array([[1.0, 0.0]]), jnp.array([[2.0, 0.0], [-1.0, 0.0]])
      >>> lossjax.losses.harmonic_loss(x, jnp.array([0]), w, exponent=1.0).round(4)
      Array([0.4055], dtype=float32)
    """
    fn = "harmonic_loss"
    x = C.check_array(fn, "embeddings", embeddings, min_ndim=1, dtype="float")
    w = C.check_array(fn, "proxies", proxies, ndim=2, dtype="float")
    if w.shape[-1] != x.shape[-1]:
        raise ValueError(
            f"{fn}: `embeddings` [..., D] and `proxies` [C, D] must share D, "
            f"got embeddings.shape={x.shape} and proxies.shape={w.shape}."
        )
    n = x.shape[-1] if exponent is None else exponent
    C.check_positive(fn, "exponent", n)
    C.check_positive(fn, "epsilon", epsilon)
    dtype = C.compute_dtype(x, w)
    mask = C.prepare_where(fn, where, x.shape[:-1])
    x = C.fill_masked(C.as_compute(x, dtype), mask)
    w = C.as_compute(w, dtype)
    batch_shape = x.shape[:-1]
    sq = pairwise_distance(jnp.reshape(x, (-1, x.shape[-1])), w, distance="squared_euclidean")
    sq = jnp.reshape(sq, (*batch_shape, w.shape[0]))
    sq = jnp.maximum(sq, jnp.asarray(epsilon * epsilon, dtype))
    logits = -0.5 * jnp.asarray(n, dtype) * jnp.log(sq)
    t = target_probs(fn, logits, labels, where=mask)
    return t.expect(-t.log_p)


# --------------------------------------------------------------------------
# Label-embedding (ALE) ranking loss.
# --------------------------------------------------------------------------


def _ale_sample() -> Sample:
    rng = np.random.default_rng(12)
    embeddings = rng.normal(size=(5, 3)).astype(np.float32)
    projection = rng.normal(size=(3, 2)).astype(np.float32)
    proxies = rng.normal(size=(4, 2)).astype(np.float32)
    labels = rng.integers(0, 4, size=(5,)).astype(np.int32)
    # Extremes: embeddings at 1e4 (every class violates or clears the margin by far: scores ~1e4, where a
    # float32 ulp is 1e-3, so the margin 1 stays resolvable; with every input at 1e4 the scores reach 1e8 and
    # the margin is below float32's resolution), and all inputs zero (every class ties: r = C - 1).
    big = (np.where(embeddings >= 0, 1.0, -1.0) * 1e4).astype(np.float32)
    extremes = (
        (big, labels, proxies, projection),
        (np.zeros_like(embeddings), labels, np.zeros_like(proxies), np.zeros_like(projection)),
    )
    return Sample(
        args=(embeddings, labels, proxies, projection),
        diff_argnums=(0, 2, 3),
        batched_argnums=(0, 1),
        extremes=extremes,
    )


@register(
    "label_embedding_ranking_loss",
    aliases=("ale_loss", "wsabie_loss"),
    family=FAMILY,
    kind="per_example",
    formula="L(r)/r sum_{y' != y} [margin + F(x, y') - F(x, y)]_+,  F = x^T W phi(y),  "
    "r = #violating y',  L(r) = sum_{k<=r} 1/k",
    paper="Label-Embedding for Image Classification (2015, arXiv:1503.08677)",
    reference="closed form of the paper's rank-weighted (WARP) objective, deterministic all-classes version",
    sample=_ale_sample,
)
def label_embedding_ranking_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    proxies: ArrayLike,
    projection: ArrayLike,
    *,
    margin: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Label-embedding (ALE/WSABIE) ranking loss with the rank-dependent WARP weighting.

    .. math::
        F(x, c) = \theta(x)^\top W \varphi(c),\quad
        \ell = \frac{L(r)}{r}\sum_{c\ne y}\big[\Delta + F(x, c) - F(x, y)\big]_+,\quad
        r = \sum_{c\ne y}\mathbb 1\big[\Delta + F(x, c) > F(x, y)\big],\ L(r) = \sum_{k=1}^{r}\frac1k

    (0 when no class violates the margin). The paper estimates ``r`` by sampling;
    this is the exact all-classes version (``O(C)`` per example). ``r`` is
    piecewise constant, so the gradient flows through the hinge terms only.
    The compatibilities are the dot products of the projected embeddings
    ``theta(x)^T W`` with the class embeddings
    (:func:`lossjax._pairwise.pairwise_similarity`, ``distance="dot"``).

    Args:
      embeddings: image features ``theta(x)``, ``[..., D]``.
      labels: integer class indices ``[...]``.
      proxies: the label embeddings ``phi(c)``, ``[C, E]``.
      projection: the compatibility matrix ``W``, ``[D, E]``.
      margin: ``Delta(y, c)`` for ``c != y`` (the 0/1 label loss times ``margin``).
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]``.

    Paper: Akata, Perronnin, Harchaoui, Schmid, "Label-Embedding for Image
    Classification", TPAMI 2016, arXiv:1503.08677 (eq. 7, WARP weighting of Weston et al. 2011).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x, w, phi = jnp.array([[1.0, 0.0]]), jnp.eye(2), jnp.array([[1.0, 0.0], [0.5, 0.0], [0.8, 0.0]])
      >>> lossjax.losses.label_embedding_ranking_loss(x, jnp.array([0]), phi, w).round(4)
      Array([0.975], dtype=float32)
    """
    fn = "label_embedding_ranking_loss"
    x = C.check_array(fn, "embeddings", embeddings, min_ndim=1, dtype="float")
    phi = C.check_array(fn, "proxies", proxies, ndim=2, dtype="float")
    w = C.check_array(fn, "projection", projection, ndim=2, dtype="float")
    if w.shape[0] != x.shape[-1] or w.shape[1] != phi.shape[1]:
        raise ValueError(
            f"{fn}: need embeddings [..., D], proxies [C, E] and projection [D, E], "
            f"got embeddings.shape={x.shape}, proxies.shape={phi.shape}, projection.shape={w.shape}."
        )
    C.check_positive(fn, "margin", margin, allow_zero=True)
    labels = C.check_array(fn, "labels", labels, dtype="int")
    dtype = C.compute_dtype(x, w, phi)
    mask = C.prepare_where(fn, where, x.shape[:-1])
    x = C.fill_masked(C.as_compute(x, dtype), mask)
    batch_shape = x.shape[:-1]
    projected = jnp.matmul(
        jnp.reshape(x, (-1, x.shape[-1])), C.as_compute(w, dtype), precision=jax.lax.Precision.HIGHEST
    )
    scores = pairwise_similarity(projected, C.as_compute(phi, dtype), distance="dot")
    scores = jnp.reshape(scores, (*batch_shape, phi.shape[0]))
    onehot = C.class_targets(fn, scores, labels, dtype, where=mask)
    s_y = jnp.sum(onehot * scores, axis=-1, keepdims=True)
    viol = jnp.where(onehot > 0, jnp.zeros((), dtype), jnp.asarray(margin, dtype) + scores - s_y)
    hinge = jnp.maximum(viol, 0.0)
    r = jnp.sum(viol > 0, axis=-1).astype(dtype)
    # L(r) = H_r = sum_{k <= r} 1/k (exact, O(C)).
    k = jax.lax.broadcasted_iota(dtype, scores.shape, scores.ndim - 1) + 1
    harmonic = jnp.sum(jnp.where(k <= r[..., None], 1 / k, jnp.zeros((), dtype)), axis=-1)
    has = r > 0
    weight = jnp.where(has, harmonic / jnp.where(has, r, jnp.ones((), dtype)), jnp.zeros((), dtype))
    return C.zero_masked(jax.lax.stop_gradient(weight) * jnp.sum(hinge, axis=-1), mask)


# --------------------------------------------------------------------------
# Proxy losses.
# --------------------------------------------------------------------------


@register(
    "proxy_nca_loss",
    aliases=("proxy_nca",),
    family=FAMILY,
    kind="per_example",
    formula="-log softmax(-scale * ||x/|x| - p_j/|p_j| ||^2)_y",
    paper="No Fuss Distance Metric Learning using Proxies (2017, arXiv:1703.07464)",
    reference="pytorch_metric_learning.losses.ProxyNCALoss",
    sample=proxy_sample,
)
def proxy_nca_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    proxies: ArrayLike,
    *,
    scale: float = 1.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Proxy-NCA: NCA against one learnable proxy per class, on the unit sphere.

    .. math::
        \ell_i = -\log\frac{e^{-s\,d(\hat x_i, \hat p_{y_i})}}{\sum_j e^{-s\,d(\hat x_i, \hat p_j)}},\qquad
        d(a, b) = \|a - b\|^2

    Embeddings and proxies are L2-normalized. As in pytorch-metric-learning
    (and Proxy-NCA++), the positive proxy is in the denominator; the original
    paper leaves it out.

    Args:
      embeddings: ``[N, D]``.
      labels: ``[N]`` integer class indices.
      proxies: ``[C, D]`` learnable proxies (normalized inside).
      scale: ``s``, the softmax scale (1; Proxy-NCA++ uses ``1 / 9``-style temperatures).
      where: optional ``[N]`` boolean mask.

    Returns:
      Per-example loss ``[N]`` (pytorch-metric-learning reports its mean).

    Paper: Movshovitz-Attias et al., "No Fuss Distance Metric Learning using
    Proxies", ICCV 2017, arXiv:1703.07464.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> p = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> lossjax.losses.proxy_nca_loss(jnp.array([[2.0, 0.0]]), jnp.array([0]), p).round(4)
      Array([0.1269], dtype=float32)
    """
    fn = "proxy_nca_loss"
    C.check_positive(fn, "scale", scale)
    _, cos, onehot, mask, dtype = class_cosines(fn, embeddings, labels, proxies, where)
    # ||a - b||^2 of unit vectors; a masked (zero) row has cos 0 and a finite loss (then zeroed).
    sq = jnp.maximum(2 - 2 * cos, jnp.zeros((), dtype))
    loss = ce_from_logits(-jnp.asarray(scale, dtype) * sq, onehot)
    return C.zero_masked(loss, mask)


def _soft_triple_sample() -> Sample:
    rng = np.random.default_rng(0)
    c, k, d, n = 3, 2, 4, 6
    proxies = rng.normal(size=(c, k, d)).astype(np.float32)
    labels = (np.arange(n) % c).astype(np.int32)
    emb = (proxies[labels, 0] * 1.5 + 0.4 * rng.normal(size=(n, d))).astype(np.float32)
    return Sample(args=(emb, labels, proxies), diff_argnums=(0, 2), batched_argnums=(0, 1))


@register(
    "soft_triple_loss",
    aliases=("softtriple_loss", "softtriple"),
    family=FAMILY,
    kind="per_example",
    formula="-log softmax(la * (S_j - delta [j = y]))_y, S_j = sum_k softmax_k(cos_jk / t_c) cos_jk",
    paper="SoftTriple Loss: Deep Metric Learning Without Triplet Sampling (2019, arXiv:1909.05235)",
    reference="pytorch_metric_learning.losses.SoftTripleLoss (idstcv/SoftTriple without the center regularizer)",
    sample=_soft_triple_sample,
)
def soft_triple_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    proxies: ArrayLike,
    *,
    scale: float = 20.0,
    center_temperature: float = 0.1,
    margin: float = 0.01,
    where: ArrayLike | None = None,
) -> Array:
    r"""SoftTriple: a softmax over classes that each own ``K`` centers (soft max over centers).

    .. math::
        S_{ij} = \sum_k \frac{e^{\cos_{ijk}/t_c}}{\sum_{k'} e^{\cos_{ijk'}/t_c}}\cos_{ijk},\qquad
        \ell_i = -\log\frac{e^{\lambda(S_{iy_i} - \delta)}}
        {e^{\lambda(S_{iy_i} - \delta)} + \sum_{j\ne y_i} e^{\lambda S_{ij}}}

    The paper's regularizer that merges centers (``tau``) acts on the proxies
    alone: add :func:`soft_triple_regularizer` once per step (pytorch-metric-learning
    leaves it out). ``center_temperature`` is the paper's (and
    pytorch-metric-learning's) ``gamma``.

    Args:
      embeddings: ``[N, D]`` (normalized inside).
      labels: ``[N]`` integer class indices.
      proxies: ``[C, K, D]`` centers, ``K`` per class (normalized inside).
      scale: ``lambda`` (20; ``la`` in the reference).
      center_temperature: ``t_c`` (0.1; the paper's ``gamma``), the softmax temperature over a class's centers.
      margin: ``delta`` (0.01).
      where: optional ``[N]`` boolean mask.

    Returns:
      Per-example loss ``[N]``.

    Paper: Qian et al., "SoftTriple Loss: Deep Metric Learning Without Triplet
    Sampling", ICCV 2019, arXiv:1909.05235.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> p = jnp.array([[[1.0, 0.0], [0.0, 1.0]], [[-1.0, 0.0], [0.0, -1.0]]])
      >>> loss = lossjax.losses.soft_triple_loss(jnp.array([[1.0, 0.0]]), jnp.array([0]), p, scale=1.0)
      >>> round(float(loss[0]), 4)
      0.316
    """
    fn = "soft_triple_loss"
    C.check_positive(fn, "scale", scale)
    C.check_positive(fn, "center_temperature", center_temperature)
    C.check_positive(fn, "margin", margin, allow_zero=True)
    e, y, p = check_proxy_inputs(fn, embeddings, labels, proxies, proxies_ndim=3)
    num_classes, k, d = p.shape
    dtype = C.compute_dtype(e, p)
    mask = C.prepare_where(fn, where, e.shape[:1])
    x = C.fill_masked(C.as_compute(e, dtype), mask)
    cos = pairwise_similarity(x, jnp.reshape(C.as_compute(p, dtype), (num_classes * k, d)), distance="cosine")
    cos = jnp.reshape(cos, (x.shape[0], num_classes, k))
    prob = jax.nn.softmax(cos / jnp.asarray(center_temperature, dtype), axis=-1)
    sim = jnp.sum(prob * cos, axis=-1)
    onehot = C.class_targets(fn, sim, y, dtype, where=mask)
    logits = jnp.asarray(scale, dtype) * (sim - jnp.asarray(margin, dtype) * onehot)
    return C.zero_masked(ce_from_logits(logits, onehot), mask)


def _soft_triple_reg_sample() -> Sample:
    rng = np.random.default_rng(5)
    return Sample(args=(rng.normal(size=(3, 3, 4)).astype(np.float32),), where=False)


@register(
    "soft_triple_regularizer",
    aliases=("soft_triple_center_regularizer",),
    family=FAMILY,
    kind="function",
    formula="w * sum_c sum_{k<k'} sqrt(2 + 1e-5 - 2 <w_ck, w_ck'>) / (C K (K - 1))",
    paper="SoftTriple Loss: Deep Metric Learning Without Triplet Sampling (2019, arXiv:1909.05235)",
    reference="idstcv/SoftTriple loss/SoftTriple.py (the tau term; ported)",
    sample=_soft_triple_reg_sample,
)
def soft_triple_regularizer(proxies: ArrayLike, *, regularizer_weight: float = 0.2) -> Array:
    r"""SoftTriple's center regularizer: merges redundant centers of a class (adaptive number of centers).

    .. math::
        R = \frac{w}{CK(K-1)}\sum_c\sum_{k<k'}\sqrt{2 + 10^{-5} - 2\,\hat w_{ck}^\top\hat w_{ck'}}

    Add it once per step to the mean of :func:`soft_triple_loss` (the paper's
    ``loss + tau * reg``; pytorch-metric-learning leaves it out). 0 when ``K = 1``.

    Args:
      proxies: ``[C, K, D]`` centers (normalized inside).
      regularizer_weight: ``w`` (0.2), the paper's ``tau``.

    Returns:
      A scalar.

    Paper: Qian et al., "SoftTriple Loss", ICCV 2019, arXiv:1909.05235.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> w = jnp.array([[[1.0, 0.0], [0.0, 1.0]]])  # one class, two orthogonal centers
      >>> round(float(lossjax.losses.soft_triple_regularizer(w, regularizer_weight=1.0)), 4)  # sqrt(2 + 1e-5) / 2
      0.7071
    """
    fn = "soft_triple_regularizer"
    C.check_positive(fn, "regularizer_weight", regularizer_weight, allow_zero=True)
    p = C.check_array(fn, "proxies", proxies, ndim=3, dtype="float")
    num_classes, k, _ = p.shape
    if k < 2:
        return jnp.zeros((), C.compute_dtype(p))
    dtype = C.compute_dtype(p)
    w = l2_normalize(C.as_compute(p, dtype))
    sim = jnp.einsum("ckd,cld->ckl", w, w, precision=jax.lax.Precision.HIGHEST)
    upper = jnp.triu(jnp.ones((k, k), bool), 1)
    d = jnp.sqrt(jnp.maximum(2 + 1e-5 - 2 * sim, 1e-5))
    reg = jnp.sum(jnp.where(upper[None], d, jnp.zeros((), dtype))) / max(num_classes * k * (k - 1), 1)
    return jnp.asarray(regularizer_weight, dtype) * reg


def _proxy_anchor_sample() -> Sample:
    return proxy_sample(seed=2, n=8, c=3)


@register(
    "proxy_anchor_loss",
    aliases=("proxy_anchor",),
    family=FAMILY,
    kind="batch",
    formula="1/|P+| sum_{p in P+} log(1 + sum_{x in X_p+} e^{-s (cos(x,p) - m)}) + "
    "1/|P| sum_p log(1 + sum_{x in X_p-} e^{s (cos(x,p) + m)})",
    paper="Proxy Anchor Loss for Deep Metric Learning (2020, arXiv:2003.13911)",
    reference="pytorch_metric_learning.losses.ProxyAnchorLoss; tjddus9597/Proxy-Anchor-CVPR2020",
    sample=_proxy_anchor_sample,
    runtime=("axis_name",),
)
def proxy_anchor_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    proxies: ArrayLike,
    *,
    margin: float = 0.1,
    scale: float = 32.0,
    axis_name=None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Proxy-Anchor: each proxy is an anchor that pulls its batch positives and pushes the rest.

    .. math::
        \ell = \frac{1}{|P^+|}\sum_{p\in P^+}\log\Big(1 + \sum_{x\in X_p^+} e^{-\alpha(s(x,p) - \delta)}\Big)
        + \frac{1}{|P|}\sum_{p\in P}\log\Big(1 + \sum_{x\in X_p^-} e^{\alpha(s(x,p) + \delta)}\Big)

    with the scale :math:`\alpha` (``scale``; the paper's and pytorch-metric-learning's ``alpha``),

    cosine similarity :math:`s`, :math:`P^+` the proxies with at least one
    positive in the batch. Computed as masked log-sum-exps over the batch
    axis; with ``axis_name`` the sums run over the global batch (``pmax`` of
    the shift, ``psum`` of the sums), so every device gets the single-device
    value and gradient.

    Args:
      embeddings: ``[N, D]`` (normalized inside).
      labels: ``[N]`` integer class indices.
      proxies: ``[C, D]`` learnable proxies (normalized inside).
      margin: ``delta`` (0.1).
      scale: ``alpha`` (32), multiplies the cosines.
      axis_name: mapped axis name(s) when the batch is sharded across devices.
      where: optional ``[N]`` boolean mask; masked examples are left out of every sum.

    Returns:
      The scalar batch loss (0 for an all-masked batch).

    Paper: Kim, Kim, Cho, Kwak, "Proxy Anchor Loss for Deep Metric Learning",
    CVPR 2020, arXiv:2003.13911.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> p = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> x = jnp.array([[1.0, 0.1], [0.1, 1.0]])
      >>> round(float(lossjax.losses.proxy_anchor_loss(x, jnp.array([0, 1]), p, scale=1.0)), 4)
      1.1405
    """
    fn = "proxy_anchor_loss"
    C.check_positive(fn, "margin", margin, allow_zero=True)
    C.check_positive(fn, "scale", scale)
    _, cos, onehot, mask, dtype = class_cosines(fn, embeddings, labels, proxies, where)
    valid = jnp.ones(cos.shape[:1], bool) if mask is None else mask
    pos = (onehot > 0) & valid[:, None]
    neg = (onehot == 0) & valid[:, None]
    a = jnp.asarray(scale, dtype)
    m = jnp.asarray(margin, dtype)
    pos_term = masked_logsumexp(-a * (cos - m), pos, axis=0, axis_name=axis_name, add_one=True)
    neg_term = masked_logsumexp(a * (cos + m), neg, axis=0, axis_name=axis_name, add_one=True)
    with_pos = psum(jnp.sum(pos, axis=0), axis_name) > 0
    n_with_pos = jnp.sum(with_pos).astype(dtype)
    num_classes = cos.shape[-1]
    any_valid = psum(jnp.sum(valid), axis_name) > 0
    loss = jnp.sum(pos_term) / jnp.maximum(n_with_pos, 1) + jnp.sum(neg_term) / num_classes
    # An out-of-range label in an unmasked row (its one-hot row is NaN) makes the loss NaN, as JAX's
    # out-of-bounds gather does, instead of silently dropping the row from both terms.
    bad = psum(jnp.sum(valid & jnp.any(jnp.isnan(onehot), axis=-1)), axis_name) > 0
    loss = jnp.where(bad, jnp.full((), jnp.nan, dtype), loss)
    return jnp.where(any_valid, loss, jnp.zeros((), dtype))


# --------------------------------------------------------------------------
# Prototype losses (episodes).
# --------------------------------------------------------------------------


def _ce_over_valid_classes(logits: Array, valid: Array | None, labels_onehot: Array) -> Array:
    """Per-row CE where masked classes (columns) are left out of the softmax."""
    if valid is not None:
        low = jnp.asarray(jnp.finfo(logits.dtype).min, logits.dtype)
        logits = jnp.where(valid[None, :], logits, low)
    return ce_from_logits(logits, labels_onehot)


def _prototypical_sample() -> Sample:
    rng = np.random.default_rng(0)
    k, s, q, d = 4, 2, 2, 3
    centers = rng.normal(size=(k, 1, d)) * 1.5
    support = (centers + 0.5 * rng.normal(size=(k, s, d))).astype(np.float32)
    queries = (centers + 0.5 * rng.normal(size=(k, q, d))).astype(np.float32)
    return Sample(args=(support, queries), diff_argnums=(0, 1))


@register(
    "prototypical_loss",
    aliases=("prototypical_networks_loss", "protonet_loss"),
    family=FAMILY,
    kind="batch",
    formula="mean_q -log softmax_k(-||f(q) - c_k||^2)_{y_q}, c_k = mean of class k's support",
    paper="Prototypical Networks for Few-shot Learning (2017, arXiv:1703.05175)",
    reference="jakesnell/prototypical-networks protonets/models/few_shot.py (ported)",
    sample=_prototypical_sample,
)
def prototypical_loss(
    support: ArrayLike,
    queries: ArrayLike,
    *,
    distance: str = "squared_euclidean",
    where: ArrayLike | None = None,
) -> Array:
    r"""Prototypical networks: classify queries by distance to the mean support embedding of each class.

    .. math::
        c_k = \frac1S\sum_s f(x_{ks}),\qquad
        \ell = \frac{1}{KQ}\sum_{k,q} -\log\frac{e^{-d(f(q_{kq}), c_k)}}{\sum_{k'} e^{-d(f(q_{kq}), c_{k'})}}

    Args:
      support: ``[K, S, D]`` support embeddings, ``S`` shots for each of ``K`` classes.
      queries: ``[K, Q, D]`` query embeddings; the queries of row ``k`` belong to class ``k``.
      distance: ``"squared_euclidean"`` (the paper's; it matters: not Euclidean)
        or ``"cosine"`` (logits are cosine similarities).
      where: optional ``[K]`` boolean mask of classes (padded ways): a masked
        class is neither a candidate nor has queries.

    Returns:
      The mean loss over the queries of the valid classes (a scalar).

    Paper: Snell, Swersky, Zemel, "Prototypical Networks for Few-shot
    Learning", NeurIPS 2017, arXiv:1703.05175.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> support = jnp.array([[[0.0, 0.0], [2.0, 0.0]], [[0.0, 3.0], [0.0, 1.0]]])
      >>> queries = jnp.array([[[1.0, 0.0]], [[0.0, 2.0]]])
      >>> lossjax.losses.prototypical_loss(support, queries).round(4)
      Array(0.0067, dtype=float32)
    """
    fn = "prototypical_loss"
    C.check_one_of(fn, "distance", distance, ("squared_euclidean", "cosine"))
    s = C.check_array(fn, "support", support, ndim=3, dtype="float")
    q = C.check_array(fn, "queries", queries, ndim=3, dtype="float")
    if q.shape[0] != s.shape[0] or q.shape[2] != s.shape[2]:
        raise ValueError(
            f"{fn}: `queries` must have shape (K, Q, D)=({s.shape[0]}, *, {s.shape[2]}) to match "
            f"support.shape={s.shape}, got {q.shape}."
        )
    k, nq, d = q.shape
    dtype = C.compute_dtype(s, q)
    mask = C.prepare_where(fn, where, (k,))
    s = C.fill_masked(C.as_compute(s, dtype), mask)
    q = C.fill_masked(C.as_compute(q, dtype), mask)
    protos = jnp.mean(s, axis=1)
    flat = jnp.reshape(q, (k * nq, d))
    if distance == "squared_euclidean":
        logits = -pairwise_distance(flat, protos, distance="squared_euclidean")
    else:
        logits = pairwise_similarity(flat, protos, distance="cosine")
    target = jnp.repeat(jnp.eye(k, dtype=dtype), nq, axis=0)
    per_query = _ce_over_valid_classes(logits, mask, target)
    if mask is None:
        return jnp.sum(per_query) / max(per_query.size, 1)  # an empty episode gives 0
    qmask = jnp.repeat(mask, nq)
    return C.masked_mean(per_query, qmask)


def _angular_proto_sample() -> Sample:
    rng = np.random.default_rng(1)
    s, m, d = 4, 3, 3
    centers = rng.normal(size=(s, 1, d)) * 1.5
    x = (centers + 0.5 * rng.normal(size=(s, m, d))).astype(np.float32)
    return Sample(args=(x,), diff_argnums=(0,))


@register(
    "angular_prototypical_loss",
    aliases=("angleproto_loss", "angular_prototypical"),
    family=FAMILY,
    kind="batch",
    formula="mean_i -log softmax_j(w cos(x_{i,0}, mean_{m>=1} x_{j,m}) + b)_i",
    paper="In defence of metric learning for speaker recognition (2020, arXiv:2003.11982)",
    reference="clovaai/voxceleb_trainer loss/angleproto.py::LossFunction (ported)",
    sample=_angular_proto_sample,
)
def angular_prototypical_loss(
    embeddings: ArrayLike,
    *,
    scale: ArrayLike = 10.0,
    bias: ArrayLike = -5.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Angular prototypical loss: the first utterance of each speaker against the others' centroids.

    .. math::
        S_{ij} = w\cos\big(x_{i,0},\ \tfrac{1}{M-1}\textstyle\sum_{m\ge1} x_{j,m}\big) + b,\qquad
        \ell = \frac1S\sum_i -\log\frac{e^{S_{ii}}}{\sum_j e^{S_{ij}}}

    ``w`` and ``b`` are learnable in the reference (initial 10 and -5); pass
    arrays to learn them (``w`` is clamped at ``1e-6`` as there).

    Args:
      embeddings: ``[S, M, D]``: ``M >= 2`` utterances of each of ``S`` speakers.
      scale: ``w`` (10), a float or a scalar array.
      bias: ``b`` (-5), a float or a scalar array.
      where: optional ``[S]`` boolean mask of speakers (padding).

    Returns:
      The mean loss over the valid speakers (a scalar).

    Paper: Chung et al., "In defence of metric learning for speaker
    recognition", Interspeech 2020, arXiv:2003.11982.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[[1.0, 0.0], [1.0, 0.1]], [[0.0, 1.0], [0.1, 1.0]]])
      >>> lossjax.losses.angular_prototypical_loss(x).round(4)
      Array(0.0001, dtype=float32)
    """
    fn = "angular_prototypical_loss"
    x = C.check_array(fn, "embeddings", embeddings, ndim=3, dtype="float")
    if x.shape[1] < 2:
        raise ValueError(f"{fn}: `embeddings` must have shape (S, M, D) with M >= 2 utterances, got {x.shape}.")
    for name, v in (("scale", scale), ("bias", bias)):
        if not is_concrete(v) and np.ndim(v) != 0:
            raise ValueError(f"{fn}: `{name}` must be a scalar, got shape {np.shape(v)}.")
    C.check_positive(fn, "scale", scale)
    if is_concrete(bias) and not math.isfinite(float(bias)):
        raise ValueError(f"{fn}: `bias` must be finite, got {bias!r}.")
    dtype = C.compute_dtype(x)
    mask = C.prepare_where(fn, where, x.shape[:1])
    x = C.fill_masked(C.as_compute(x, dtype), mask)
    anchor = jnp.mean(x[:, 1:, :], axis=1)
    positive = x[:, 0, :]
    cos = pairwise_similarity(positive, anchor, distance="cosine")
    w = jnp.maximum(jnp.asarray(scale, dtype), jnp.asarray(1e-6, dtype))
    logits = w * cos + jnp.asarray(bias, dtype)
    per = _ce_over_valid_classes(logits, mask, jnp.eye(x.shape[0], dtype=dtype))
    if mask is None:
        return jnp.sum(per) / max(per.size, 1)  # no speaker gives 0
    return C.masked_mean(per, mask)


# --------------------------------------------------------------------------
# Mean-field contrastive loss (contrastive pairs with class "mean fields").
# --------------------------------------------------------------------------


def _mean_field_sample() -> Sample:
    return proxy_sample(
        seed=41,
        n=6,
        d=4,
        c=3,
        noise=0.9,
        variants=({"mean_field_weight": 0.5, "neg_margin": 1.2, "pos_margin": 0.1},),
    )


@register(
    "mean_field_contrastive_loss",
    aliases=("mean_field_contrastive", "mft_contrastive_loss"),
    family=FAMILY,
    kind="per_example",
    formula="sum_c [y = c] relu(d_ic - m_pos) + [y != c] relu(m_neg - d_ic)  "
    "+ lambda mean_c sum_{c' != c} relu(m_neg - (1 - cos(w_c, w_c')))^2,  d_ic = 1 - cos(x_i, w_c)",
    paper="Mean Field Theory in Deep Metric Learning (2023, arXiv:2306.15368)",
    reference="st-tech/mft-in-dml@7a6aab1 code/loss/mean_field_contrastive_loss.py::MeanFieldContrastiveLoss, "
    "code/loss/base_mean_field_loss.py (torch port)",
    sample=_mean_field_sample,
)
def mean_field_contrastive_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    proxies: ArrayLike,
    *,
    pos_margin: float = 0.02,
    neg_margin: float = 0.3,
    mean_field_weight: float = 0.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""Mean-field contrastive loss: the contrastive loss with every pair replaced by example-to-class-field pairs.

    .. math::
        d_{ic} = 1 - \cos(x_i, w_c),\qquad
        \ell_i = \sum_c \Big([y_i = c]\,[d_{ic} - m_+]_+ + [y_i \ne c]\,[m_- - d_{ic}]_+\Big)
          + \lambda\,\frac1C\sum_c\sum_{c'\ne c}\big[m_- - (1 - \cos(w_c, w_{c'}))\big]_+^2

    The mean-field approximation of the pairwise contrastive loss: the sum
    over the other examples of a class is replaced by its learned mean field
    ``w_c`` (one vector per class, like a proxy), which takes the cost from
    ``O(N^2)`` pairs to ``O(NC)``. The last term (the reference's ``mf_reg``,
    0 in its recipes) pushes the fields of different classes apart; it is the
    same for every example, so that the mean of ``ell`` is the reference's loss.

    Args:
      embeddings: ``[N, D]`` embeddings (L2-normalized inside).
      labels: ``[N]`` integer classes in ``[0, C)``.
      proxies: ``[C, D]`` the learned mean fields ``w`` (the reference's ``W`` transposed; normalized inside).
      pos_margin: ``m_+`` (0.02, the reference's ``--pos-mrg``).
      neg_margin: ``m_-`` (0.3, the reference's ``--neg-mrg``).
      mean_field_weight: ``lambda`` (0, the reference's ``mf_reg``; its power is 2).
      where: optional ``[N]`` mask.

    Returns:
      Per-example loss ``[N]``.

    Paper: Furusawa, "Mean Field Theory in Deep Metric Learning", ICLR 2024, arXiv:2306.15368.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> w = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> x = jnp.array([[1.0, 1.0]])  # d = 1 - 1/sqrt 2 to both fields
      >>> lossjax.losses.mean_field_contrastive_loss(x, jnp.array([0]), w).round(4)  # 0.2929 - 0.02 + 0.0071
      Array([0.28], dtype=float32)
    """
    fn = "mean_field_contrastive_loss"
    C.check_positive(fn, "pos_margin", pos_margin, allow_zero=True)
    C.check_positive(fn, "neg_margin", neg_margin, allow_zero=True)
    C.check_positive(fn, "mean_field_weight", mean_field_weight, allow_zero=True)
    cc = class_cosines(fn, embeddings, labels, proxies, where)
    dtype = cc.dtype
    d = 1 - cc.cos
    pos = jax.nn.relu(d - jnp.asarray(pos_margin, dtype)) * cc.onehot
    neg = jax.nn.relu(jnp.asarray(neg_margin, dtype) - d) * (1 - cc.onehot)
    w = l2_normalize(C.as_compute(proxies, dtype))
    k = w.shape[0]
    field = 1 - jnp.matmul(w, w.T, precision=jax.lax.Precision.HIGHEST)
    off = jnp.asarray(1 - np.eye(k), dtype)
    reg = jnp.sum(jnp.square(jax.nn.relu(jnp.asarray(neg_margin, dtype) - field)) * off) / max(k, 1)
    loss = jnp.sum(pos + neg, axis=-1) + jnp.asarray(mean_field_weight, dtype) * reg
    return C.zero_masked(loss, cc.mask)
