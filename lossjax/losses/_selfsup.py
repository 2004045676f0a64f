"""Self-supervised objectives: VICReg, Barlow Twins, W-MSE, the dispersive loss, BYOL/SimSiam.

The batch-statistics losses (:func:`vicreg_loss`, :func:`barlow_twins_loss`,
:func:`whitening_mse_loss`) and the dispersive loss couple every example of
the batch. They take ``axis_name``: under ``jax.shard_map`` (or ``pmap``) the
means, variances, covariances and cross-correlations are ``psum``-reduced over
the named axis, so the loss and its gradient are those of the single-device
computation on the global batch (as the references' ``all_reduce`` /
``SyncBatchNorm`` / ``FullGatherLayer``). A ``where`` mask drops padded
examples from every statistic; an all-masked batch gives 0.

:func:`negative_cosine_loss` (SimSiam) and :func:`byol_loss` are per example.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax._mining import gather_replicated, paired_batch, ring_slots
from lossjax._pairwise import l2_normalize, masked_logsumexp, pairwise_distance
from lossjax._parallel import axis_offset, gather_batch, psum
from lossjax.registry import Sample, register

__all__ = [
    "DINOState",
    "MoCoQueue",
    "barlow_twins_loss",
    "byol_loss",
    "dino_loss",
    "dispersive_loss",
    "gramian_volume_contrastive_loss",
    "ibot_patch_loss",
    "icon_kl_loss",
    "kernel_mixture_contrastive_loss",
    "moco_loss",
    "moco_v3_loss",
    "msn_loss",
    "negative_cosine_loss",
    "swav_loss",
    "swav_queue_loss",
    "vicreg_loss",
    "whitening_mse_loss",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

FAMILY = "selfsup"

_HI = jax.lax.Precision.HIGHEST


def _gram(x: Array, y: Array) -> Array:
    """``x^T y`` (``[D, D]``) at full precision."""
    return jnp.matmul(x.T, y, precision=_HI)


def _two_views(fn: str, a, b, where):
    a, b, mask, dtype = paired_batch(fn, a, b, where)
    vf = jnp.ones(a.shape[:1], dtype) if mask is None else mask.astype(dtype)
    return a, b, vf, dtype


def _centered(x: Array, vf: Array, n: Array, axis_name) -> Array:
    """``x`` minus the global (masked) mean over the batch; masked rows are 0."""
    one = jnp.ones((), x.dtype)
    mean = psum(jnp.sum(vf[:, None] * x, axis=0), axis_name) / jnp.maximum(n, one)
    return (x - mean[None, :]) * vf[:, None]


def _off_diagonal_sq_sum(m: Array) -> Array:
    off = m * (1 - jnp.eye(m.shape[0], dtype=m.dtype))
    return jnp.sum(jnp.square(off))


def _views_sample(seed: int = 0, n: int = 8, d: int = 3, std: float = 0.5) -> Sample:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d)) * std
    b = a + 0.3 * std * rng.normal(size=(n, d))
    return Sample(args=(a.astype(np.float32), b.astype(np.float32)), diff_argnums=(0, 1))


@register(
    "vicreg_loss",
    aliases=("vicreg",),
    family=FAMILY,
    kind="batch",
    formula="lambda mean||z - z'||^2 + mu [v(z) + v(z')] + nu [c(z) + c(z')], "
    "v = mean_d relu(1 - sqrt(Var_d + eps)) / 2, c = sum_{i!=j} Cov_ij^2 / D",
    paper="VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised Learning (2021, arXiv:2105.04906)",
    reference="facebookresearch/vicreg main_vicreg.py::VICReg.forward; pytorch_metric_learning.losses.VICRegLoss",
    sample=_views_sample,
    runtime=("axis_name",),
)
def vicreg_loss(
    embeddings_a: ArrayLike,
    embeddings_b: ArrayLike,
    *,
    invariance_weight: float = 25.0,
    variance_weight: float = 25.0,
    covariance_weight: float = 1.0,
    epsilon: float = 1e-4,
    axis_name=None,
    where: ArrayLike | None = None,
) -> Array:
    r"""VICReg: invariance between two views, variance above 1 and decorrelation within each view.

    .. math::
        \ell = \lambda\,\frac{1}{ND}\sum_i\|z_i - z'_i\|^2 + \mu\,[v(Z) + v(Z')] + \nu\,[c(Z) + c(Z')]

    .. math::
        v(Z) = \frac{1}{2D}\sum_d \max\big(0, 1 - \sqrt{\mathrm{Var}(z_{\cdot d}) + \epsilon}\big),\qquad
        c(Z) = \frac1D\sum_{d\ne d'} \mathrm{Cov}(Z)_{dd'}^2

    with unbiased (``N - 1``) variance and covariance, as the reference. The
    ``/2`` inside ``v`` averages the two views (the reference's
    ``std_loss = mean(relu(1 - std_x)) / 2 + mean(relu(1 - std_y)) / 2``).
    With ``axis_name`` every statistic is over the global batch (the
    reference gathers the batch with ``FullGatherLayer``).

    Args:
      embeddings_a: ``[N, D]`` first view (``Z``).
      embeddings_b: ``[N, D]`` second view (``Z'``).
      invariance_weight: ``lambda`` (25).
      variance_weight: ``mu`` (25).
      covariance_weight: ``nu`` (1).
      epsilon: added to the variance under the square root (1e-4), > 0.
      axis_name: mapped axis name(s) when the batch is sharded across devices.
      where: optional ``[N]`` boolean mask.

    Returns:
      The scalar batch loss.

    Paper: Bardes, Ponce, LeCun, "VICReg: Variance-Invariance-Covariance
    Regularization for Self-Supervised Learning", ICLR 2022, arXiv:2105.04906.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.array([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0], [-1.0, -1.0]]) * 2.0
      >>> lossjax.losses.vicreg_loss(z, z).round(4)
      Array(0., dtype=float32)
    """
    fn = "vicreg_loss"
    for name, v in (
        ("invariance_weight", invariance_weight),
        ("variance_weight", variance_weight),
        ("covariance_weight", covariance_weight),
    ):
        C.check_positive(fn, name, v, allow_zero=True)
    C.check_positive(fn, "epsilon", epsilon)
    a, b, vf, dtype = _two_views(fn, embeddings_a, embeddings_b, where)
    d = a.shape[1]
    one = jnp.ones((), dtype)
    n = psum(jnp.sum(vf), axis_name)
    invariance = psum(jnp.sum(vf[:, None] * jnp.square(a - b)), axis_name) / jnp.maximum(n * d, one)

    def variance_and_covariance(x):
        xc = _centered(x, vf, n, axis_name)
        cov = psum(_gram(xc, xc), axis_name) / jnp.maximum(n - 1, one)
        std = jnp.sqrt(jnp.diagonal(cov) + jnp.asarray(epsilon, dtype))
        var_term = jnp.mean(jax.nn.relu(1 - std)) / 2
        cov_term = _off_diagonal_sq_sum(cov) / d
        return var_term, cov_term

    va, ca = variance_and_covariance(a)
    vb, cb = variance_and_covariance(b)
    loss = (
        jnp.asarray(invariance_weight, dtype) * invariance
        + jnp.asarray(variance_weight, dtype) * (va + vb)
        + jnp.asarray(covariance_weight, dtype) * (ca + cb)
    )
    return jnp.where(n > 0, loss, jnp.zeros((), dtype))


@register(
    "barlow_twins_loss",
    aliases=("barlow_twins",),
    family=FAMILY,
    kind="batch",
    formula="sum_i (1 - C_ii)^2 + lambda sum_{i!=j} C_ij^2, C = BN(z)^T BN(z') / N",
    paper="Barlow Twins: Self-Supervised Learning via Redundancy Reduction (2021, arXiv:2103.03230)",
    reference="facebookresearch/barlowtwins main.py::BarlowTwins.forward (ported: BatchNorm1d(affine=False) + c / N)",
    sample=_views_sample,
    runtime=("axis_name",),
)
def barlow_twins_loss(
    embeddings_a: ArrayLike,
    embeddings_b: ArrayLike,
    *,
    off_diagonal_weight: float = 0.0051,
    epsilon: float = 1e-5,
    axis_name=None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Barlow Twins: the cross-correlation of two views' batch-normalized embeddings towards identity.

    .. math::
        \mathcal C = \frac1N \hat Z^\top \hat Z',\quad
        \hat z_{id} = \frac{z_{id} - \mu_d}{\sqrt{\sigma_d^2 + \epsilon}},\qquad
        \ell = \sum_d (1 - \mathcal C_{dd})^2 + \lambda\sum_{d\ne d'}\mathcal C_{dd'}^2

    :math:`\mu, \sigma^2` are the batch mean and biased variance (training-mode
    ``BatchNorm1d(affine=False)``, ``eps = 1e-5``). With ``axis_name`` they and
    :math:`\mathcal C` are over the global batch (the reference uses
    ``SyncBatchNorm`` and ``all_reduce(c)``).

    Args:
      embeddings_a: ``[N, D]`` first view.
      embeddings_b: ``[N, D]`` second view.
      off_diagonal_weight: ``lambda`` (0.0051, the reference's default; the paper quotes 5e-3).
      epsilon: the batch-norm epsilon (1e-5), > 0.
      axis_name: mapped axis name(s) when the batch is sharded across devices.
      where: optional ``[N]`` boolean mask.

    Returns:
      The scalar batch loss.

    Paper: Zbontar, Jing, Misra, LeCun, Deny, "Barlow Twins: Self-Supervised
    Learning via Redundancy Reduction", ICML 2021, arXiv:2103.03230.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.array([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0], [-1.0, -1.0]])
      >>> lossjax.losses.barlow_twins_loss(z, z).round(4)
      Array(0., dtype=float32)
    """
    fn = "barlow_twins_loss"
    C.check_positive(fn, "off_diagonal_weight", off_diagonal_weight, allow_zero=True)
    C.check_positive(fn, "epsilon", epsilon)
    a, b, vf, dtype = _two_views(fn, embeddings_a, embeddings_b, where)
    one = jnp.ones((), dtype)
    n = psum(jnp.sum(vf), axis_name)

    def batch_norm(x):
        xc = _centered(x, vf, n, axis_name)
        var = psum(jnp.sum(jnp.square(xc), axis=0), axis_name) / jnp.maximum(n, one)
        return xc / jnp.sqrt(var + jnp.asarray(epsilon, dtype))[None, :]

    c = psum(_gram(batch_norm(a), batch_norm(b)), axis_name) / jnp.maximum(n, one)
    on_diag = jnp.sum(jnp.square(jnp.diagonal(c) - 1))
    loss = on_diag + jnp.asarray(off_diagonal_weight, dtype) * _off_diagonal_sq_sum(c)
    return jnp.where(n > 0, loss, jnp.zeros((), dtype))


def _whiten(x: Array, vf: Array, n: Array, epsilon, axis_name) -> Array:
    """W-MSE's Whitening2d: ``L^{-1}(x - mu)`` with ``L L^T = (1 - eps) Cov + eps I`` (Cholesky)."""
    dtype = x.dtype
    d = x.shape[-1]
    one = jnp.ones((), dtype)
    xc = _centered(x, vf, n, axis_name)
    cov = psum(_gram(xc, xc), axis_name) / jnp.maximum(n - 1, one)
    eye = jnp.eye(d, dtype=dtype)
    eps = jnp.asarray(epsilon, dtype)
    # The added diagonal is at least 4 D ulp of the mean variance (a numerical guard, no gradient): with no
    # more rows than dimensions the covariance is singular, and at large scales (x1000) eps would fall below
    # the Cholesky's rounding error (NaN pivots). It changes nothing where eps is resolvable (unit scale).
    floor = jax.lax.stop_gradient(jnp.trace(cov) / d) * (4 * d * jnp.finfo(dtype).eps)
    cov = (1 - eps) * cov + jnp.maximum(eps, floor) * eye
    # Double where: an empty batch whitens with the identity (no NaN from Cholesky of 0).
    cov = jnp.where(n > 1, cov, eye)
    chol = jnp.linalg.cholesky(cov)
    return jax.scipy.linalg.solve_triangular(chol, xc.T, lower=True).T


def _wmse_sample() -> Sample:
    rng = np.random.default_rng(0)
    n, v, d = 8, 2, 3
    base = rng.normal(size=(n, 1, d))
    x = base + 0.4 * rng.normal(size=(n, v, d))
    return Sample(args=(x.astype(np.float32),), diff_argnums=(0,))


@register(
    "whitening_mse_loss",
    aliases=("w_mse_loss", "wmse_loss"),
    family=FAMILY,
    kind="batch",
    formula="mean_{v<w} mean_i (2 - 2 cos(W(z_i^v - mu), W(z_i^w - mu))), W = chol((1-eps) Cov + eps I)^{-1}",
    paper="Whitening for Self-Supervised Representation Learning (2021, arXiv:2007.06346)",
    reference="htdt/self-supervised methods/w_mse.py + methods/whitening.py::Whitening2d (ported)",
    sample=_wmse_sample,
    runtime=("key", "axis_name"),
)
def whitening_mse_loss(
    embeddings: ArrayLike,
    *,
    epsilon: float = 1e-4,
    whitening_size: int | None = None,
    num_iterations: int = 1,
    key: ArrayLike | None = None,
    axis_name=None,
    where: ArrayLike | None = None,
) -> Array:
    r"""W-MSE: whiten each view's batch, then the MSE of L2-normalized positives.

    .. math::
        \tilde z^v = L_v^{-1}(z^v - \mu_v),\quad L_vL_v^\top = (1-\epsilon)\,\mathrm{Cov}(Z^v) + \epsilon I,\qquad
        \ell = \frac{1}{\binom V2}\sum_{v<w}\frac1N\sum_i \big\|\hat{\tilde z}^v_i - \hat{\tilde z}^w_i\big\|^2

    (:math:`\|\hat a - \hat b\|^2 = 2 - 2\cos(a, b)`), with the unbiased
    covariance. With ``whitening_size = w < N`` the batch is split into random
    sub-batches of ``w`` (the same split for every view), each whitened on its
    own, and the loss averaged over ``num_iterations`` random splits (needs
    ``key``; the reference's ``w_size``/``w_iter``). Whitening the whole batch
    (``whitening_size=None``) is deterministic and supports ``where`` and
    ``axis_name`` (global covariance).

    Args:
      embeddings: ``[N, V, D]``: ``V >= 2`` views of each of ``N`` examples.
        Whitening needs more examples per (sub-)batch than ``D`` unless ``epsilon > 0``.
      epsilon: covariance shrinkage (1e-4; the reference's ``w_eps`` defaults to 0,
        which fails on rank-deficient batches).
      whitening_size: sub-batch size ``w`` (a divisor of ``N``), or None for the whole batch.
      num_iterations: random splits to average (with ``whitening_size``).
      key: PRNG key for the splits (required when ``whitening_size < N``).
      axis_name: mapped axis name(s) when the batch is sharded (whole-batch whitening only).
      where: optional ``[N]`` boolean mask (whole-batch whitening only).

    Returns:
      The scalar batch loss.

    Paper: Ermolov, Siarohin, Sangineto, Sebe, "Whitening for Self-Supervised
    Representation Learning", ICML 2021, arXiv:2007.06346.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [0.5, 0.5]])
      >>> lossjax.losses.whitening_mse_loss(jnp.stack([z, z], axis=1)).round(4)
      Array(0., dtype=float32)
    """
    fn = "whitening_mse_loss"
    x = C.check_array(fn, "embeddings", embeddings, ndim=3, dtype="float")
    n_local, v, _ = x.shape
    if v < 2:
        raise ValueError(f"{fn}: `embeddings` must have shape (N, V, D) with V >= 2 views, got {x.shape}.")
    C.check_in_range(fn, "epsilon", epsilon, 0.0, 1.0, high_inclusive=False)
    C.check_int(fn, "num_iterations", num_iterations, 1, static=True)
    if whitening_size is not None:
        C.check_int(fn, "whitening_size", whitening_size, 2, static=True)
        if n_local % whitening_size:
            raise ValueError(
                f"{fn}: `whitening_size` must be an integer >= 2 that divides N={n_local}, got {whitening_size!r}."
            )
    split = whitening_size is not None and whitening_size != n_local
    if split:
        if key is None:
            raise ValueError(f"{fn}: `key` is required when whitening_size ({whitening_size}) < N ({n_local}).")
        if where is not None or axis_name is not None:
            raise ValueError(
                f"{fn}: `where` and `axis_name` need whole-batch whitening (whitening_size=None), "
                f"got whitening_size={whitening_size}."
            )
    dtype = C.compute_dtype(x)
    mask = C.prepare_where(fn, where, (n_local,))
    x = C.fill_masked(C.as_compute(x, dtype), mask)
    pairs = [(i, j) for i in range(v) for j in range(i + 1, v)]

    def pair_loss(z, vf, n):
        # z: [V, M, D] whitened views; mean over pairs of 2 - 2 mean_i cos.
        zn = l2_normalize(z)
        total = jnp.zeros((), dtype)
        for i, j in pairs:
            cos_sum = psum(jnp.sum(vf * jnp.sum(zn[i] * zn[j], axis=-1)), axis_name)
            total = total + (2 - 2 * cos_sum / jnp.maximum(n, jnp.ones((), dtype)))
        return total / len(pairs)

    views = jnp.moveaxis(x, 1, 0)  # [V, N, D]
    if not split:
        vf = jnp.ones((n_local,), dtype) if mask is None else mask.astype(dtype)
        n = psum(jnp.sum(vf), axis_name)
        z = jnp.stack([_whiten(views[i], vf, n, epsilon, axis_name) for i in range(v)])
        return jnp.where(n > 0, pair_loss(z, vf, n), jnp.zeros((), dtype))

    w = int(whitening_size)
    groups = n_local // w
    keys = jax.random.split(key, num_iterations)
    vf = jnp.ones((w,), dtype)
    n = jnp.asarray(w, dtype)

    def one_iteration(k):
        perm = jnp.reshape(jax.random.permutation(k, n_local), (groups, w))
        sub = views[:, perm, :]  # [V, G, w, D]
        white = jax.vmap(jax.vmap(lambda s: _whiten(s, vf, n, epsilon, None)))(sub)
        return jnp.mean(jax.vmap(lambda zg: pair_loss(zg, vf, n), in_axes=1)(white))

    return jnp.mean(jax.vmap(one_iteration)(keys))


def _dispersive_sample() -> Sample:
    rng = np.random.default_rng(0)
    return Sample(args=(rng.normal(size=(6, 2, 3)).astype(np.float32),), diff_argnums=(0,))


@register(
    "dispersive_loss",
    aliases=("disp_loss", "infonce_l2_dispersive_loss"),
    family=FAMILY,
    kind="batch",
    formula="log mean_{i,j} exp(-||z_i - z_j||^2 / (tau D))",
    paper="Diffuse and Disperse: Image Generation with Representation Regularization (2025, arXiv:2506.09027)",
    reference="raywang4/DispLoss (InfoNCE-L2 variant; ported: pdist^2 / D over the full B x B matrix)",
    sample=_dispersive_sample,
    runtime=("axis_name",),
)
def dispersive_loss(
    embeddings: ArrayLike,
    *,
    temperature: float = 0.5,
    scale_by_dim: bool = True,
    axis_name=None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Dispersive loss: InfoNCE without positives, pushing a batch's representations apart.

    .. math::
        \ell = \log\frac{1}{N^2}\sum_{i,j}\exp\Big(-\frac{\|z_i - z_j\|^2}{\tau\,D}\Big)

    over all ordered pairs including :math:`i = j` (the full :math:`N\times N`
    matrix, as the official code), computed as a log-sum-exp
    (:func:`lossjax._pairwise.masked_logsumexp`: ``pmax``/``psum`` across
    devices with ``axis_name``). ``scale_by_dim`` divides the squared
    distances by the flattened feature size ``D`` as the official code does.
    A regularizer added to the diffusion loss with weight ``lambda`` (0.5 in
    the paper). Its minimum over a bounded set is reached by spreading out.

    Args:
      embeddings: ``[N, ...]`` intermediate activations (flattened to ``[N, D]``).
      temperature: ``tau`` (0.5).
      scale_by_dim: divide squared distances by ``D`` (True).
      axis_name: mapped axis name(s) when the batch is sharded across devices.
      where: optional ``[N]`` boolean mask.

    Returns:
      The scalar batch loss (<= 0; 0 when all embeddings coincide).

    Paper: Wang, He, "Diffuse and Disperse: Image Generation with
    Representation Regularization", 2025, arXiv:2506.09027.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.array([[0.0], [1.0]])
      >>> round(float(lossjax.losses.dispersive_loss(z, temperature=1.0)), 4)  # log((2 + 2 e^-1) / 4)
      -0.3799
    """
    fn = "dispersive_loss"
    C.check_positive(fn, "temperature", temperature)
    x = C.check_array(fn, "embeddings", embeddings, min_ndim=2, dtype="float")
    n_local = x.shape[0]
    x = jnp.reshape(x, (n_local, math.prod(x.shape[1:])))  # not -1: an empty batch has no size to infer
    d = x.shape[1]
    dtype = C.compute_dtype(x)
    mask = C.prepare_where(fn, where, (n_local,))
    x = C.fill_masked(C.as_compute(x, dtype), mask)
    valid = jnp.ones((n_local,), bool) if mask is None else mask
    xg = gather_batch(x, axis_name)
    vg = gather_batch(valid, axis_name)
    sq = pairwise_distance(x, xg, distance="squared_euclidean")
    denom = jnp.asarray(temperature * (d if scale_by_dim else 1), dtype)
    logits = -sq / denom
    keep = valid[:, None] & vg[None, :]
    lse = masked_logsumexp(logits, keep, axis=None, axis_name=axis_name)
    n = psum(jnp.sum(valid.astype(dtype)), axis_name)
    loss = lse - 2 * jnp.log(jnp.maximum(n, jnp.ones((), dtype)))
    return jnp.where(n > 0, loss, jnp.zeros((), dtype))


def _pred_target(fn: str, predictions, targets, where, stop_gradient_targets: bool):
    p = C.check_array(fn, "predictions", predictions, min_ndim=1, dtype="float")
    z = C.check_array(fn, "targets", targets, min_ndim=1, dtype="float")
    C.check_same_shape(fn, ("predictions", "targets"), p, z)
    dtype = C.compute_dtype(p, z)
    mask = C.prepare_where(fn, where, p.shape[:-1])
    p = C.fill_masked(C.as_compute(p, dtype), mask)
    z = C.fill_masked(C.as_compute(z, dtype), mask)
    if stop_gradient_targets:
        z = jax.lax.stop_gradient(z)
    return l2_normalize(p), l2_normalize(z), mask


def _pred_target_sample() -> Sample:
    rng = np.random.default_rng(0)
    p = rng.normal(size=(6, 4)).astype(np.float32)
    z = (p + 0.5 * rng.normal(size=(6, 4))).astype(np.float32)
    # The target branch is stop-gradient by default: differentiate the predictions only.
    return Sample(args=(p, z), diff_argnums=(0,))


@register(
    "negative_cosine_loss",
    aliases=("simsiam_loss", "negative_cosine_similarity"),
    family=FAMILY,
    kind="per_example",
    formula="-cos(p, stop_gradient(z))",
    paper="Exploring Simple Siamese Representation Learning (2020, arXiv:2011.10566)",
    reference="facebookresearch/simsiam simsiam/builder.py (criterion = -CosineSimilarity(p, z.detach()))",
    sample=_pred_target_sample,
)
def negative_cosine_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    stop_gradient_targets: bool = True,
    where: ArrayLike | None = None,
) -> Array:
    r"""SimSiam's negative cosine similarity between a prediction and a stop-gradient target.

    .. math::
        \ell = -\frac{p}{\|p\|}\cdot\frac{\mathrm{sg}(z)}{\|\mathrm{sg}(z)\|}

    The symmetrized SimSiam loss is
    ``0.5 * (negative_cosine_loss(p1, z2) + negative_cosine_loss(p2, z1))``.

    Args:
      predictions: ``[..., D]`` predictor outputs ``p``.
      targets: ``[..., D]`` projections ``z`` of the other view.
      stop_gradient_targets: stop the gradient through ``targets`` (True, the paper's key ingredient).
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]`` in ``[-1, 1]``.

    Paper: Chen, He, "Exploring Simple Siamese Representation Learning", CVPR 2021, arXiv:2011.10566.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.negative_cosine_loss(jnp.array([[1.0, 0.0]]), jnp.array([[1.0, 1.0]])).round(4)
      Array([-0.7071], dtype=float32)
    """
    p, z, mask = _pred_target("negative_cosine_loss", predictions, targets, where, stop_gradient_targets)
    cos = jnp.sum(p * z, axis=-1)
    return C.zero_masked(-cos, mask)


@register(
    "byol_loss",
    aliases=("normalized_mse_loss", "byol"),
    family=FAMILY,
    kind="per_example",
    formula="||p/|p| - sg(z)/|sg(z)| ||^2 = 2 - 2 cos(p, sg(z))",
    paper="Bootstrap your own latent: A new approach to self-supervised Learning (2020, arXiv:2006.07733)",
    reference="deepmind/deepmind-research byol/utils/helpers.py::regression_loss (ported)",
    sample=_pred_target_sample,
)
def byol_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    stop_gradient_targets: bool = True,
    where: ArrayLike | None = None,
) -> Array:
    r"""BYOL's regression loss: the squared distance of L2-normalized prediction and target.

    .. math::
        \ell = \Big\|\frac{p}{\|p\|} - \frac{\mathrm{sg}(z)}{\|\mathrm{sg}(z)\|}\Big\|^2 = 2 - 2\cos(p, \mathrm{sg}(z))

    The target ``z`` comes from the momentum (target) network; BYOL symmetrizes
    by swapping the views and summing. Computed as the squared distance (exact
    near ``cos = 1``); a zero vector's unit vector is 0 (so a zero prediction
    gives 1, as the reference's ``regression_loss``).

    Args:
      predictions: ``[..., D]`` online predictions ``q(z)``.
      targets: ``[..., D]`` target projections ``z'``.
      stop_gradient_targets: stop the gradient through ``targets`` (True: the target network gets no gradient).
      where: optional boolean mask broadcastable to ``[...]``.

    Returns:
      Per-example loss ``[...]`` in ``[0, 4]``.

    Paper: Grill et al., "Bootstrap your own latent: A new approach to
    self-supervised Learning", NeurIPS 2020, arXiv:2006.07733.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.byol_loss(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 3.0]]))
      Array([2.], dtype=float32)
    """
    p, z, mask = _pred_target("byol_loss", predictions, targets, where, stop_gradient_targets)
    # The squared distance itself, not 2 - 2 cos: no cancellation near cos = 1, and a zero vector (unit vector 0)
    # gives the reference's 1, not 2.
    return C.zero_masked(jnp.sum(jnp.square(p - z), axis=-1), mask)


# --------------------------------------------------------------------------
# Objectives with state across steps: DINO (teacher center), SwAV (Sinkhorn
# codes), MoCo (a key queue) and MoCo v3 (symmetric, in-batch).
# --------------------------------------------------------------------------


def _global_row_mean(per_row: Array, valid: Array, axis_name) -> Array:
    """``psum(sum of valid rows) / max(psum(valid count), 1)``: 0 for an empty or all-masked batch."""
    zero = jnp.zeros((), per_row.dtype)
    total = psum(jnp.sum(jnp.where(valid, per_row, zero)), axis_name)
    count = psum(jnp.sum(valid).astype(per_row.dtype), axis_name)
    return total / jnp.maximum(count, jnp.ones((), per_row.dtype))


def _multi_view(fn: str, name: str, x: ArrayLike) -> Array:
    return C.check_array(fn, name, x, ndim=3, dtype="float")


class DINOState(NamedTuple):
    """DINO's teacher center, the exponential moving average of the teacher outputs.

    Attributes:
      center: ``[K]`` the center subtracted from the teacher logits (the
        reference's ``center`` buffer, initially 0).
    """

    center: Array

    @classmethod
    def initial(cls, num_prototypes: int, dtype=jnp.float32) -> DINOState:
        """The reference's initial buffer: a center of zeros ``[K]``."""
        return cls(jnp.zeros((num_prototypes,), dtype))


def _dino_sample() -> Sample:
    rng = np.random.default_rng(21)
    s = rng.normal(size=(5, 3, 4)).astype(np.float32)  # 2 global crops + 1 local crop, K = 4
    t = (s[:, :2] + 0.3 * rng.normal(size=(5, 2, 4))).astype(np.float32)
    center = (0.2 * rng.normal(size=(4,))).astype(np.float32)
    return Sample(
        args=(s, t),
        kwargs={"state": DINOState(center)},
        diff_argnums=(0,),  # the teacher is stop-gradient
        variants=({"teacher_temperature": 0.07, "student_temperature": 0.2, "center_momentum": 0.5},),
    )


@register(
    "dino_loss",
    aliases=("dino",),
    family=FAMILY,
    kind="batch",
    formula="1/n_terms sum_{t, v != t} mean_b -softmax((g_t - c)/tau_t) . log_softmax(s_v/tau_s);  "
    "c <- m c + (1 - m) mean_{b,t} g_t",
    paper="Emerging Properties in Self-Supervised Vision Transformers (DINO, 2021, arXiv:2104.14294)",
    reference="facebookresearch/dino@7c446df main_dino.py::DINOLoss.forward, update_center (torch port)",
    sample=_dino_sample,
    runtime=("state", "axis_name"),
    has_aux=True,
)
def dino_loss(
    student_logits: ArrayLike,
    teacher_logits: ArrayLike,
    *,
    state: DINOState | None = None,
    student_temperature: float = 0.1,
    teacher_temperature: float = 0.04,
    center_momentum: float = 0.9,
    where: ArrayLike | None = None,
    axis_name=None,
) -> tuple[Array, DINOState]:
    r"""DINO's self-distillation loss with teacher centering and sharpening, multi-crop.

    .. math::
        \mathcal L = \frac{1}{n_{\text{terms}}}\sum_{t=1}^{T}\sum_{v \ne t}
          \frac1B\sum_b -\sum_k q_{btk}\,\log\operatorname{softmax}_k(s_{bv}/\tau_s),\qquad
        q_{bt} = \operatorname{softmax}\big((g_{bt} - c)/\tau_t\big)

    with :math:`n_{\text{terms}} = T\,V - T` (student view ``v`` and teacher
    view ``t`` are the same crop when ``v = t`` and that pair is skipped). The
    teacher output is stop-gradient. The center is then updated by EMA with
    the mean teacher output over the (global) batch and the teacher views,
    :math:`c \leftarrow m\,c + (1 - m)\,\frac{1}{BT}\sum_{b,t} g_{bt}`, and
    returned as the new state (the loss uses the center from ``state``, as the
    reference, which updates it after the loss).

    Multi-crop: the ``V`` student views are the ``T`` global crops the teacher
    saw (first, in the same order) followed by the local crops. The reference
    concatenates the views along the batch axis (``[V * B, K]``); here they sit
    on axis 1 so that ``where`` and the device sharding split the batch:
    ``x.reshape(V, B, K).swapaxes(0, 1)`` converts. The teacher temperature
    warm-up of the reference is the caller's schedule (pass each step's value).

    Args:
      student_logits: ``[B, V, K]`` student head outputs, ``V >= 2`` views.
      teacher_logits: ``[B, T, K]`` teacher head outputs, ``1 <= T <= V`` global views.
      state: :class:`DINOState` (``None``: a zero center, the reference's initial buffer).
      student_temperature: ``tau_s`` (0.1).
      teacher_temperature: ``tau_t`` (0.04; the reference warms it up from 0.04 to 0.04-0.07).
      center_momentum: ``m`` in ``[0, 1]`` (0.9).
      where: optional ``[B]`` mask of real examples (out of the loss and the center).
      axis_name: mapped axis the batch is sharded over: the mean and the center
        are over the global batch (the reference's ``all_reduce``).

    Returns:
      ``(loss, new_state)``: the scalar loss and the updated :class:`DINOState`
      (unchanged for an empty or all-masked batch).

    Paper: Caron, Touvron, Misra, Jegou, Mairal, Bojanowski, Joulin, "Emerging
    Properties in Self-Supervised Vision Transformers", ICCV 2021, arXiv:2104.14294.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> s = jnp.zeros((2, 3, 4))  # uniform student: -log(1/4) per pair
      >>> t = jnp.ones((2, 2, 4))
      >>> loss, state = lossjax.losses.dino_loss(s, t)
      >>> round(float(loss), 4), state.center.round(2).tolist()
      (1.3863, [0.1, 0.1, 0.1, 0.1])
    """
    fn = "dino_loss"
    C.check_positive(fn, "student_temperature", student_temperature)
    C.check_positive(fn, "teacher_temperature", teacher_temperature)
    C.check_in_range(fn, "center_momentum", center_momentum, 0.0, 1.0)
    s = _multi_view(fn, "student_logits", student_logits)
    t = _multi_view(fn, "teacher_logits", teacher_logits)
    b, nv, k = s.shape
    nt = t.shape[1]
    if t.shape[0] != b or t.shape[2] != k or not 1 <= nt <= nv or nv < 2:
        raise ValueError(
            f"{fn}: `student_logits` [B, V, K] and `teacher_logits` [B, T, K] need the same B and K, V >= 2 and "
            f"1 <= T <= V, got shapes {s.shape} and {t.shape}."
        )
    dtype = C.compute_dtype(s, t)
    if state is None:
        state = DINOState.initial(k, dtype)
    if not isinstance(state, DINOState):
        raise TypeError(f"{fn}: `state` must be a DINOState, got {type(state).__name__}.")
    center = jax.lax.stop_gradient(C.as_compute(state.center, dtype))
    if center.shape != (k,):
        raise ValueError(f"{fn}: `state.center` must have shape ({k},), got {center.shape}.")
    mask = C.prepare_where(fn, where, (b,))
    valid = jnp.ones((b,), bool) if mask is None else mask
    s = C.fill_masked(C.as_compute(s, dtype), mask)
    t = jax.lax.stop_gradient(C.fill_masked(C.as_compute(t, dtype), mask))
    q = jax.nn.softmax((t - center[None, None, :]) / jnp.asarray(teacher_temperature, dtype), axis=-1)
    logp = jax.nn.log_softmax(s / jnp.asarray(student_temperature, dtype), axis=-1)
    pairs = jnp.asarray(np.arange(nv)[None, :] != np.arange(nt)[:, None], dtype)  # [T, V]: skip v == t
    per_row = -jnp.einsum("btk,bvk,tv->b", q, logp, pairs, precision=_HI) / (nt * nv - nt)
    loss = _global_row_mean(per_row, valid, axis_name)
    vf = valid.astype(dtype)
    count = psum(jnp.sum(vf), axis_name)
    batch_center = psum(jnp.einsum("b,btk->k", vf, t, precision=_HI), axis_name) / jnp.maximum(
        count * nt, jnp.ones((), dtype)
    )
    m = jnp.asarray(center_momentum, dtype)
    new_center = jnp.where(count > 0, center * m + batch_center * (1 - m), center)
    return loss, DINOState(new_center)


def _sinkhorn_codes(scores: Array, valid: Array, epsilon: float, iterations: int, axis_name) -> Array:
    """SwAV's Sinkhorn-Knopp codes ``[B, K]`` (each row sums to 1; prototypes equipartitioned over the
    global batch), in the log domain; padded rows are 0 and out of every sum. No gradient."""
    x = jax.lax.stop_gradient(scores) / jnp.asarray(epsilon, scores.dtype)
    sel = jnp.broadcast_to(valid[:, None], x.shape)
    dtype = x.dtype
    n = psum(jnp.sum(valid).astype(dtype), axis_name)
    log_n = jnp.log(jnp.maximum(n, jnp.ones((), dtype)))
    log_k = jnp.log(jnp.asarray(x.shape[-1], dtype))
    logq = x - masked_logsumexp(x, sel, axis=None, axis_name=axis_name)
    for _ in range(iterations):
        logq = logq - masked_logsumexp(logq, sel, axis=0, axis_name=axis_name)[None, :] - log_k
        logq = logq - masked_logsumexp(logq, sel, axis=1)[:, None] - log_n
    return jnp.where(sel, jnp.exp(jnp.where(sel, logq + log_n, jnp.zeros((), dtype))), jnp.zeros((), dtype))


def _swav_sample() -> Sample:
    rng = np.random.default_rng(22)
    z = rng.normal(size=(6, 3, 3))
    c = rng.normal(size=(4, 3))
    z = z / np.linalg.norm(z, axis=-1, keepdims=True)
    scores = np.einsum("bvd,kd->bvk", z, c / np.linalg.norm(c, axis=1)[:, None])
    scores = scores.astype(np.float32)  # cosines of 3 crops with 4 prototypes
    # Scores are cosines in [-1, 1] (the reference exponentiates scores / epsilon): edges at +-1 and 0.
    edge = np.where(np.arange(4)[None, None, :] == (np.arange(6)[:, None, None] % 4), 1.0, -1.0) * np.ones((6, 3, 4))
    return Sample(
        args=(scores,),
        extremes=((edge.astype(np.float32),), (np.zeros_like(scores),)),
        fuzz_scaled=(),
        # The codes are targets without gradient (the reference computes them under no_grad), but they depend on
        # the scores: finite differences of the value see them move, the gradient does not by design.
        surrogate_grad=True,
        variants=({"temperature": 0.2, "regularization": 0.1, "num_iterations": 1, "num_assigned_views": 1},),
    )


@register(
    "swav_loss",
    aliases=("swav",),
    family=FAMILY,
    kind="batch",
    formula="1/|A| sum_{a in A} 1/(V-1) sum_{v != a} mean_b -q_{ba} . log_softmax(z_{bv}/tau),  "
    "q_a = SinkhornKnopp(exp(sg(z_a)/epsilon), n_iter)",
    paper="Unsupervised Learning of Visual Features by Contrasting Cluster Assignments (SwAV, 2020, arXiv:2006.09882)",
    reference="facebookresearch/swav@06b1b7c main_swav.py::train (swav loss), distributed_sinkhorn (torch port)",
    sample=_swav_sample,
    runtime=("axis_name",),
)
def swav_loss(
    scores: ArrayLike,
    *,
    num_assigned_views: int = 2,
    temperature: float = 0.1,
    regularization: float = 0.05,
    num_iterations: int = 3,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""SwAV's swapped prediction loss with Sinkhorn-Knopp codes (a fixed number of iterations).

    .. math::
        \mathcal L = \frac{1}{|A|}\sum_{a\in A}\frac{1}{V-1}\sum_{v\ne a}
          \frac1B\sum_b -\sum_k q_{abk}\log\operatorname{softmax}_k(z_{bv}/\tau)

    ``z_bv`` are the scores of view ``v`` of example ``b`` against the ``K``
    prototypes (normalized embedding times normalized prototypes), ``A`` the
    first ``num_assigned_views`` views (the reference's ``crops_for_assign``).
    The codes :math:`q_a` are computed without gradient by Sinkhorn-Knopp on
    :math:`\exp(z_a/\epsilon)`: normalize to total 1, then ``n`` times make each
    prototype's total ``1/K`` and each example's ``1/B``; finally multiply by
    ``B`` (rows sum to 1). It runs in the log domain (exactly the reference's
    iterations without its overflow of ``exp`` past ``z/epsilon ~ 88``). With
    ``axis_name`` the sums over the batch run over all devices (the
    reference's ``distributed_sinkhorn``: equipartition over the global batch).

    The reference's optional queue of past embeddings (extra rows in the
    Sinkhorn problem) is :func:`swav_queue_loss`.

    Args:
      scores: ``[B, V, K]`` prototype scores of ``V >= 2`` views.
      num_assigned_views: ``|A|``, the first views that get codes (2), ``1 <= |A| <= V``.
      temperature: ``tau`` of the predicted distribution (0.1).
      regularization: ``epsilon``, the entropic regularization of the codes (0.05; the reference's ``epsilon``).
      num_iterations: the fixed number of Sinkhorn-Knopp iterations (3; the reference's ``sinkhorn_iterations``).
      where: optional ``[B]`` mask of real examples (out of the loss and the codes' sums).
      axis_name: mapped axis the batch is sharded over.

    Returns:
      Scalar loss (0 for an empty or all-masked batch).

    Paper: Caron, Misra, Mairal, Goyal, Bojanowski, Joulin, "Unsupervised
    Learning of Visual Features by Contrasting Cluster Assignments", NeurIPS
    2020, arXiv:2006.09882.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.zeros((4, 2, 3))  # uniform scores: uniform codes and predictions, loss log 3
      >>> round(float(lossjax.losses.swav_loss(z)), 4)
      1.0986
    """
    fn = "swav_loss"
    C.check_positive(fn, "temperature", temperature)
    C.check_positive(fn, "regularization", regularization)
    C.check_int(fn, "num_iterations", num_iterations, 0, static=True)
    C.check_int(fn, "num_assigned_views", num_assigned_views, 1, static=True)
    z = _multi_view(fn, "scores", scores)
    b, nv, _ = z.shape
    if nv < 2 or num_assigned_views > nv:
        raise ValueError(
            f"{fn}: `scores` [B, V, K] needs V >= 2 views and num_assigned_views <= V, got shape {z.shape} and "
            f"num_assigned_views={num_assigned_views}."
        )
    dtype = C.compute_dtype(z)
    mask = C.prepare_where(fn, where, (b,))
    valid = jnp.ones((b,), bool) if mask is None else mask
    z = C.fill_masked(C.as_compute(z, dtype), mask)
    logp = jax.nn.log_softmax(z / jnp.asarray(temperature, dtype), axis=-1)  # [B, V, K]
    codes = jnp.stack(
        [_sinkhorn_codes(z[:, a], valid, regularization, num_iterations, axis_name) for a in range(num_assigned_views)],
        axis=1,
    )  # [B, A, K]
    pairs = jnp.asarray(np.arange(nv)[None, :] != np.arange(num_assigned_views)[:, None], dtype)  # [A, V]
    per_row = -jnp.einsum("bak,bvk,av->b", codes, logp, pairs, precision=_HI) / ((nv - 1) * num_assigned_views)
    return _global_row_mean(per_row, valid, axis_name)


class MoCoQueue(NamedTuple):
    """MoCo's queue of past (normalized) keys, a ring buffer.

    Attributes:
      keys: ``[Q, D]`` the stored keys (``[Q, |A|, D]`` for :func:`swav_queue_loss`).
      valid: ``[Q]`` bool, the slots filled so far (all True once the queue
        has wrapped around; an empty queue at the start: the warm-up).
      pointer: int32 scalar, the next slot to write (the reference's ``queue_ptr``).
    """

    keys: Array
    valid: Array
    pointer: Array

    @classmethod
    def initial(cls, size: int, dim: int | tuple[int, ...], dtype=jnp.float32) -> MoCoQueue:
        """An empty queue of ``size`` slots for keys of shape ``dim`` (an int ``D``, or a tuple such as
        :func:`swav_queue_loss`'s ``(|A|, D)``)."""
        shape = (dim,) if isinstance(dim, int) else tuple(dim)
        return cls(jnp.zeros((size, *shape), dtype), jnp.zeros((size,), bool), jnp.zeros((), jnp.int32))


def _moco_sample() -> Sample:
    rng = np.random.default_rng(23)
    q = rng.normal(size=(4, 3)).astype(np.float32)
    k = (q + 0.5 * rng.normal(size=(4, 3))).astype(np.float32)
    # A queue of 6 slots, 5 filled, the pointer at 5: this batch of 4 wraps around (slots 5, 0, 1, 2).
    mem = rng.normal(size=(6, 3)).astype(np.float32)
    mem = mem / np.linalg.norm(mem, axis=1, keepdims=True)
    filled = np.arange(6) < 5
    state = MoCoQueue(np.where(filled[:, None], mem, 0).astype(np.float32), filled, np.int32(5))
    empty = MoCoQueue(np.zeros((8, 3), np.float32), np.zeros((8,), bool), np.int32(0))
    return Sample(
        args=(q, k),
        kwargs={"state": state},
        diff_argnums=(0,),  # keys come from the momentum encoder (stop-gradient)
        variants=({"temperature": 0.2, "state": empty},),
    )


@register(
    "moco_loss",
    aliases=("moco_v2_loss", "moco"),
    family=FAMILY,
    kind="per_example",
    formula="-log( e^{q.k/T} / (e^{q.k/T} + sum_{j in queue} e^{q.k_j/T}) ),  q, k L2-normalized, "
    "then the gathered keys are enqueued",
    paper="Momentum Contrast for Unsupervised Visual Representation Learning (MoCo, 2019, arXiv:1911.05722); "
    "Improved Baselines with Momentum Contrastive Learning (MoCo v2, 2020, arXiv:2003.04297)",
    reference="facebookresearch/moco@132aea9 moco/builder.py::MoCo.forward, _dequeue_and_enqueue (torch port)",
    sample=_moco_sample,
    runtime=("state", "axis_name"),
    has_aux=True,
)
def moco_loss(
    embeddings_a: ArrayLike,
    embeddings_b: ArrayLike,
    *,
    state: MoCoQueue | None = None,
    temperature: float = 0.07,
    where: ArrayLike | None = None,
    axis_name=None,
) -> tuple[Array, MoCoQueue]:
    r"""MoCo (v1/v2) InfoNCE against a queue of past keys, with the queue as explicit state.

    .. math::
        \ell_i = -\log\frac{e^{q_i\cdot k_i/T}}{e^{q_i\cdot k_i/T} + \sum_{j\in\text{queue}} e^{q_i\cdot \kappa_j/T}}

    with ``q`` and ``k`` L2-normalized and the keys stop-gradient (they come
    from the momentum encoder). Only the filled slots of the queue are
    negatives (an empty queue at the start, where the reference starts from
    random vectors: the warm-up has no negatives and a loss of 0). After the
    loss, the keys of the whole (global, with ``axis_name``) batch are
    normalized and written at the pointer, wrapping around; padded rows are
    not enqueued. The mean of ``ell`` is the reference's cross-entropy.

    Args:
      embeddings_a: ``[B, D]`` the queries ``q`` (the encoder's features).
      embeddings_b: ``[B, D]`` the keys ``k`` of the other view (the momentum encoder's features).
      state: :class:`MoCoQueue` (``MoCoQueue.initial(size, D)`` to start;
        required). With more (global) rows than slots only the last ones stay.
      temperature: ``T`` (0.07; MoCo v2 trains with 0.2).
      where: optional ``[B]`` mask of real examples.
      axis_name: mapped axis the batch is sharded over: every device enqueues
        the gathered keys (the reference's ``concat_all_gather``).

    Returns:
      ``(loss, new_state)``: the per-example loss ``[B]`` and the updated queue.

    Paper: He, Fan, Wu, Xie, Girshick, "Momentum Contrast for Unsupervised
    Visual Representation Learning", CVPR 2020, arXiv:1911.05722; Chen, Fan,
    Girshick, He, "Improved Baselines with Momentum Contrastive Learning",
    2020, arXiv:2003.04297.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> state = lossjax.losses.MoCoQueue.initial(4, 2)
      >>> q = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> loss, state = lossjax.losses.moco_loss(q, q, state=state)  # empty queue: no negatives yet
      >>> loss.tolist(), int(state.pointer), state.valid.tolist()
      ([0.0, 0.0], 2, [True, True, False, False])
      >>> loss, state = lossjax.losses.moco_loss(q, q, state=state, temperature=1.0)
      >>> loss.round(4).tolist()  # log(e + e + 1) - 1: the queue holds this key and the other one
      [0.862, 0.862]
    """
    fn = "moco_loss"
    C.check_positive(fn, "temperature", temperature)
    q, k, mask, dtype = paired_batch(fn, embeddings_a, embeddings_b, where)
    if not isinstance(state, MoCoQueue):
        raise TypeError(f"{fn}: `state` must be a MoCoQueue (MoCoQueue.initial(size, D)), got {type(state).__name__}.")
    size = state.keys.shape[0]
    if state.keys.ndim != 2 or state.keys.shape[1] != q.shape[1] or state.valid.shape != (size,):
        raise ValueError(
            f"{fn}: `state.keys` must be [Q, {q.shape[1]}] with `state.valid` [Q], got {state.keys.shape} and "
            f"{state.valid.shape}."
        )
    n = q.shape[0]
    valid = jnp.ones((n,), bool) if mask is None else mask
    q = l2_normalize(q)
    k = jax.lax.stop_gradient(l2_normalize(k))
    mem = jax.lax.stop_gradient(C.as_compute(state.keys, dtype))
    mem_ok = jnp.asarray(state.valid, bool)
    t = jnp.asarray(temperature, dtype)
    pos = jnp.sum(q * k, axis=-1) / t
    neg = jnp.matmul(q, mem.T, precision=_HI) / t
    # Relative to the positive logit (its column exactly 0): no cancellation of lse - pos when the
    # negatives are far below it (a loss near 0 keeps its relative precision).
    logits = jnp.concatenate([jnp.zeros((n, 1), dtype), neg - pos[:, None]], axis=1)
    sel = jnp.concatenate([jnp.ones((n, 1), bool), jnp.broadcast_to(mem_ok[None, :], neg.shape)], axis=1)
    loss = C.zero_masked(masked_logsumexp(logits, sel, axis=1), mask)
    # Enqueue the gathered keys (valid rows, in order) at the pointer.
    kg, vg = gather_replicated(k, axis_name), gather_replicated(valid, axis_name)
    slot, _, new_ptr = ring_slots(state.pointer, vg, size)
    new_keys = jnp.asarray(state.keys).at[slot].set(kg.astype(state.keys.dtype), mode="drop")
    new_valid = mem_ok.at[slot].set(True, mode="drop")
    return loss, MoCoQueue(new_keys, new_valid, new_ptr)


def _moco_v3_sample() -> Sample:
    rng = np.random.default_rng(24)
    q1, q2 = (rng.normal(size=(6, 4)).astype(np.float32) for _ in range(2))
    k1 = (q1 + 0.5 * rng.normal(size=(6, 4))).astype(np.float32)
    k2 = (q2 + 0.5 * rng.normal(size=(6, 4))).astype(np.float32)
    return Sample(args=(q1, q2, k1, k2), diff_argnums=(0, 1), variants=({"temperature": 0.2},))


def _ctr_rows(q: Array, kg: Array, diag: Array, cols: Array, t: Array) -> Array:
    """Per row: cross-entropy of ``q kg^T / t`` over the valid columns against the diagonal."""
    logits = jnp.matmul(q, kg.T, precision=_HI) / t
    target = jnp.sum(jnp.where(diag, logits, jnp.zeros((), logits.dtype)), axis=-1)
    return masked_logsumexp(logits, cols, axis=1) - target


@register(
    "moco_v3_loss",
    aliases=("moco_v3",),
    family=FAMILY,
    kind="per_example",
    formula="2T [CE(q1 . sg(k2)^T / T, i) + CE(q2 . sg(k1)^T / T, i)],  all vectors L2-normalized, "
    "keys gathered over the batch",
    paper="An Empirical Study of Training Self-Supervised Vision Transformers (MoCo v3, 2021, arXiv:2104.02057)",
    reference="facebookresearch/moco-v3@c349e6e moco/builder.py::MoCo.contrastive_loss, forward (torch port)",
    sample=_moco_v3_sample,
    runtime=("axis_name",),
)
def moco_v3_loss(
    queries_a: ArrayLike,
    queries_b: ArrayLike,
    keys_a: ArrayLike,
    keys_b: ArrayLike,
    *,
    temperature: float = 1.0,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""MoCo v3's symmetric in-batch contrastive loss (no queue), per example.

    .. math::
        \ell_i = 2T\Big[-\log\frac{e^{q^a_i\cdot k^b_i/T}}{\sum_j e^{q^a_i\cdot k^b_j/T}}
                        -\log\frac{e^{q^b_i\cdot k^a_i/T}}{\sum_j e^{q^b_i\cdot k^a_j/T}}\Big]

    ``q^a, q^b``: the predictor outputs of the two views; ``k^a, k^b``: the
    momentum encoder's (stop-gradient); all L2-normalized; ``j`` runs over the
    global batch (with ``axis_name`` the keys are gathered from every device).
    The mean of ``ell`` is the reference's loss (its ``2T`` factor included).

    Args:
      queries_a, queries_b: ``[B, D]`` query features of views a and b.
      keys_a, keys_b: ``[B, D]`` momentum-encoder features of views a and b.
      temperature: ``T`` (1.0, the reference's default; its ViT recipes use 0.2).
      where: optional ``[B]`` mask of real examples (padded rows are no negatives).
      axis_name: mapped axis the batch is sharded over.

    Returns:
      Per-example loss ``[B]``.

    Paper: Chen, Xie, He, "An Empirical Study of Training Self-Supervised
    Vision Transformers", ICCV 2021, arXiv:2104.02057.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> lossjax.losses.moco_v3_loss(x, x, x, x).round(4)  # 2 * 2 * log(1 + e^-1)
      Array([1.2530, 1.2530], dtype=float32)
    """
    fn = "moco_v3_loss"
    C.check_positive(fn, "temperature", temperature)
    qa, qb, mask, dtype = paired_batch(fn, queries_a, queries_b, where, names=("queries_a", "queries_b"))
    ka, kb, _, kdtype = paired_batch(fn, keys_a, keys_b, where, names=("keys_a", "keys_b"))
    C.check_same_shape(fn, ("queries_a", "keys_a"), qa, ka)
    dtype = jnp.promote_types(dtype, kdtype)
    n = qa.shape[0]
    valid = jnp.ones((n,), bool) if mask is None else mask
    qa, qb = (l2_normalize(C.as_compute(x, dtype)) for x in (qa, qb))
    ka, kb = (jax.lax.stop_gradient(l2_normalize(C.as_compute(x, dtype))) for x in (ka, kb))
    kag, kbg, vg = (gather_batch(x, axis_name) for x in (ka, kb, valid))
    m = kag.shape[0]
    diag = jnp.arange(m)[None, :] == (jnp.arange(n) + axis_offset(axis_name, n))[:, None]
    cols = valid[:, None] & vg[None, :]
    t = jnp.asarray(temperature, dtype)
    loss = 2 * t * (_ctr_rows(qa, kbg, diag, cols, t) + _ctr_rows(qb, kag, diag, cols, t))
    return C.zero_masked(loss, mask)


def _ibot_sample() -> Sample:
    rng = np.random.default_rng(25)
    s = rng.normal(size=(4, 2, 3, 5)).astype(np.float32)  # B = 4, 2 global crops, 3 patches, K = 5
    t = (s + 0.3 * rng.normal(size=s.shape)).astype(np.float32)
    mask = rng.random(size=(4, 2, 3)) < 0.5
    mask[0, 1] = False  # a view without masked patches: its term is 0 (the reference's clamp(min=1))
    center = (0.2 * rng.normal(size=(5,))).astype(np.float32)
    return Sample(
        args=(s, t, mask),
        kwargs={"state": DINOState(center)},
        diff_argnums=(0,),
        variants=({"teacher_temperature": 0.07, "center_momentum": 0.5},),
    )


@register(
    "ibot_patch_loss",
    aliases=("ibot_mim_loss",),
    family=FAMILY,
    kind="batch",
    formula="mean_g mean_b sum_p m_bgp CE(softmax((t_bgp - c)/tau_t), s_bgp/tau_s) / max(sum_p m_bgp, 1);  "
    "c <- m c + (1 - m) mean_{b,g} mean_p t_bgp",
    paper="iBOT: Image BERT Pre-Training with Online Tokenizer (2021, arXiv:2111.07832)",
    reference="bytedance/ibot@da316d8 main_ibot.py::iBOTLoss.forward (the patch term, total_loss2), "
    "update_center (center2) (torch port)",
    sample=_ibot_sample,
    runtime=("state", "axis_name"),
    has_aux=True,
)
def ibot_patch_loss(
    student_patches: ArrayLike,
    teacher_patches: ArrayLike,
    patch_where: ArrayLike,
    *,
    state: DINOState | None = None,
    student_temperature: float = 0.1,
    teacher_temperature: float = 0.04,
    center_momentum: float = 0.9,
    where: ArrayLike | None = None,
    axis_name=None,
) -> tuple[Array, DINOState]:
    r"""iBOT's masked-image-modeling term: self-distillation on the masked patches, with a patch center as state.

    .. math::
        \mathcal L = \frac1G\sum_g\frac1B\sum_b
          \frac{\sum_p m_{bgp}\,\big(-\sum_k q_{bgpk}\log\operatorname{softmax}_k(s_{bgp}/\tau_s)\big)}
               {\max(\sum_p m_{bgp},\,1)},\qquad
        q_{bgp} = \operatorname{softmax}\big((t_{bgp} - c)/\tau_t\big)

    Student and teacher see the same global crop ``g`` (the student with the
    masked patches replaced by a mask token); only masked patches count.
    The patch center is updated by EMA with the mean over patches, then over
    examples and views, of the teacher's patch outputs (the reference's
    ``center2``). Add :func:`dino_loss` on the [CLS] outputs for iBOT's
    full objective (the reference's ``lambda1``/``lambda2`` weights: 1, 1).

    Args:
      student_patches: ``[B, G, P, K]`` student patch-head outputs of ``G`` global crops.
      teacher_patches: ``[B, G, P, K]`` teacher patch-head outputs (stop-gradient).
      patch_where: ``[B, G, P]`` bool, the patches masked in the student's input (the ones that count).
      state: :class:`DINOState` holding the patch center ``[K]`` (``None``: zeros).
      student_temperature: ``tau_s`` (0.1).
      teacher_temperature: ``tau_t`` (the reference's ``teacher_temp2``, 0.04 warming up to 0.04-0.07).
      center_momentum: ``m`` (the reference's ``center_momentum2``, 0.9).
      where: optional ``[B]`` mask of real examples.
      axis_name: mapped axis the batch is sharded over.

    Returns:
      ``(loss, new_state)``.

    Paper: Zhou, Wei, Wang, Shen, Xie, Yuille, Kong, "iBOT: Image BERT
    Pre-Training with Online Tokenizer", ICLR 2022, arXiv:2111.07832.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> s, t = jnp.zeros((1, 1, 2, 4)), jnp.ones((1, 1, 2, 4))
      >>> loss, state = lossjax.losses.ibot_patch_loss(s, t, jnp.array([[[True, False]]]))
      >>> round(float(loss), 4), state.center.round(2).tolist()  # log 4 on the masked patch
      (1.3863, [0.1, 0.1, 0.1, 0.1])
    """
    fn = "ibot_patch_loss"
    C.check_positive(fn, "student_temperature", student_temperature)
    C.check_positive(fn, "teacher_temperature", teacher_temperature)
    C.check_in_range(fn, "center_momentum", center_momentum, 0.0, 1.0)
    s = C.check_array(fn, "student_patches", student_patches, ndim=4, dtype="float")
    t = C.check_array(fn, "teacher_patches", teacher_patches, ndim=4, dtype="float")
    pm = C.check_array(fn, "patch_where", patch_where, ndim=3)
    C.check_same_shape(fn, ("student_patches", "teacher_patches"), s, t)
    if pm.shape != s.shape[:3]:
        raise ValueError(f"{fn}: `patch_where` must have shape {s.shape[:3]} ([B, G, P]), got {pm.shape}.")
    b, g, _, k = s.shape
    dtype = C.compute_dtype(s, t)
    if state is None:
        state = DINOState.initial(k, dtype)
    if not isinstance(state, DINOState):
        raise TypeError(f"{fn}: `state` must be a DINOState, got {type(state).__name__}.")
    center = jax.lax.stop_gradient(C.as_compute(state.center, dtype))
    if center.shape != (k,):
        raise ValueError(f"{fn}: `state.center` must have shape ({k},), got {center.shape}.")
    mask = C.prepare_where(fn, where, (b,))
    valid = jnp.ones((b,), bool) if mask is None else mask
    s = C.fill_masked(C.as_compute(s, dtype), mask)
    t = jax.lax.stop_gradient(C.fill_masked(C.as_compute(t, dtype), mask))
    q = jax.nn.softmax((t - center[None, None, None, :]) / jnp.asarray(teacher_temperature, dtype), axis=-1)
    logp = jax.nn.log_softmax(s / jnp.asarray(student_temperature, dtype), axis=-1)
    ce = -jnp.sum(q * logp, axis=-1)  # [B, G, P]
    pmf = jnp.asarray(pm, bool).astype(dtype)
    per_view = jnp.sum(ce * pmf, axis=-1) / jnp.maximum(jnp.sum(pmf, axis=-1), jnp.ones((), dtype))
    loss = _global_row_mean(jnp.mean(per_view, axis=-1), valid, axis_name)
    vf = valid.astype(dtype)
    count = psum(jnp.sum(vf), axis_name)
    patch_mean = jnp.mean(t, axis=2)  # [B, G, K]
    batch_center = psum(jnp.einsum("b,bgk->k", vf, patch_mean, precision=_HI), axis_name) / jnp.maximum(
        count * g, jnp.ones((), dtype)
    )
    m = jnp.asarray(center_momentum, dtype)
    new_center = jnp.where(count > 0, center * m + batch_center * (1 - m), center)
    return loss, DINOState(new_center)


# --------------------------------------------------------------------------
# MSN / PMSN (prototype assignments with a prior over the mean prediction),
# SwAV with its queue of past embeddings, GRAM's volume contrast and I-Con.
# --------------------------------------------------------------------------


def _msn_sample() -> Sample:
    rng = np.random.default_rng(31)
    b, v, d, k = 4, 2, 3, 5
    targets = rng.normal(size=(b, d))
    anchors = targets[:, None, :] + 0.4 * rng.normal(size=(b, v, d))
    proxies = rng.normal(size=(k, d))
    return Sample(
        args=(anchors.astype(np.float32), targets.astype(np.float32), proxies.astype(np.float32)),
        diff_argnums=(0, 2),
        batched_argnums=(0, 1),
        # The targets are computed without gradient (the reference's no_grad) from the proxies too: finite
        # differences in the proxies see them move, the gradient does not by design.
        surrogate_grad=True,
        variants=({"power_law_exponent": 0.25, "num_iterations": 0, "entropy_weight": 0.5, "temperature": 0.2},),
    )


@register(
    "msn_loss",
    aliases=("msn", "masked_siamese_loss"),
    family=FAMILY,
    kind="batch",
    formula="mean_{b,v} H(sg(Sinkhorn(sharpen(p(t_b), T))), p(a_bv)) + lambda R(mean_{b,v} p(a_bv)) + "
    "mu mean_{b,v} H(p(a_bv)),  p(x) = softmax(cos(x, proxies) / tau);  R = KL(pbar || U) (MSN) or "
    "KL(pi || pbar), pi_k ~ k^-alpha (PMSN)",
    paper="Masked Siamese Networks for Label-Efficient Learning (MSN, 2022, arXiv:2204.07141); The Hidden Uniform "
    "Cluster Prior in Self-Supervised Learning (PMSN, 2022, arXiv:2210.07277)",
    reference="facebookresearch/msn@4388dc1 src/losses.py::init_msn_loss, distributed_sinkhorn (torch port); PMSN's "
    "prior term: lightly-ai/lightly@31e44da lightly/loss/pmsn_loss.py::PMSNLoss.regularization_loss",
    sample=_msn_sample,
    runtime=("axis_name",),
)
def msn_loss(
    anchor_embeddings: ArrayLike,
    target_embeddings: ArrayLike,
    proxies: ArrayLike,
    *,
    temperature: float = 0.1,
    sharpen_temperature: float = 0.25,
    num_iterations: int = 3,
    me_max_weight: float = 1.0,
    entropy_weight: float = 0.0,
    power_law_exponent: float | None = None,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""MSN's prototype-assignment loss with the me-max regularizer, or PMSN's power-law prior.

    .. math::
        p(x) = \operatorname{softmax}\big(\cos(x, c_{1..K})/\tau\big),\qquad
        q_b = \mathrm{SK}\big(\operatorname{sharpen}(p(t_b), T)\big),\quad
        \operatorname{sharpen}(p, T)_k = \frac{p_k^{1/T}}{\sum_j p_j^{1/T}}

    .. math::
        \mathcal L = \frac{1}{BV}\sum_{b,v} H\big(q_b, p(a_{bv})\big)
          + \lambda\,R(\bar p) + \mu\,\frac{1}{BV}\sum_{b,v} H\big(p(a_{bv})\big),\qquad
        \bar p = \frac{1}{BV}\sum_{b,v} p(a_{bv})

    with the MSN me-max regularizer :math:`R(\bar p) = \sum_k \bar p_k\log\bar p_k + \log K`
    (:math:`\mathrm{KL}(\bar p\,\|\,U)`, maximizing the entropy of the mean
    prediction) or, with ``power_law_exponent = alpha``, PMSN's prior matching
    :math:`R(\bar p) = \mathrm{KL}(\pi\,\|\,\bar p)`, :math:`\pi_k \propto k^{-\alpha}`
    (the direction of lightly's ``PMSNLoss``, the public implementation). The
    targets ``q`` are stop-gradient (the reference's ``no_grad``): sharpened
    predictions of the target view, then ``num_iterations`` Sinkhorn-Knopp
    steps (0: none, the reference's ``use_sinkhorn=False``; in the log domain,
    as :func:`swav_loss`'s codes). ``H(q, p) = -sum_k q_k log p_k``. Anchor
    views, targets and proxies are L2-normalized inside (the reference's
    ``snn``; its ``proto_labels`` are the identity). With ``axis_name`` the
    means, the Sinkhorn sums and the mean prediction are over the global batch
    (the reference's ``AllReduce``).

    The reference concatenates the ``V`` masked anchor views on the batch axis
    (``[V * B, D]``); here they sit on axis 1 (``x.reshape(V, B, D).swapaxes(0, 1)``
    converts).

    Args:
      anchor_embeddings: ``[B, V, D]`` the student's outputs for ``V`` (masked) anchor views.
      target_embeddings: ``[B, D]`` the target encoder's outputs (stop-gradient).
      proxies: ``[K, D]`` the learned prototypes.
      temperature: ``tau`` of the prototype softmax (0.1).
      sharpen_temperature: ``T`` of the target sharpening (0.25).
      num_iterations: Sinkhorn-Knopp iterations on the targets (3; 0 turns it off).
      me_max_weight: ``lambda``, the weight of the regularizer (1).
      entropy_weight: ``mu``, the weight of the mean anchor entropy (0, the reference's ``ent_weight``).
      power_law_exponent: None for MSN's me-max; ``alpha > 0`` for PMSN's power-law prior (0.25 in lightly).
      where: optional ``[B]`` mask of real examples.
      axis_name: mapped axis the batch is sharded over.

    Returns:
      The scalar loss (0 for an empty or all-masked batch).

    Paper: Assran, Caron, Misra, Bojanowski, Bordes, Vincent, Joulin, Rabbat,
    Ballas, "Masked Siamese Networks for Label-Efficient Learning", ECCV 2022,
    arXiv:2204.07141; Assran et al., "The Hidden Uniform Cluster Prior in
    Self-Supervised Learning", ICLR 2023, arXiv:2210.07277.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> c = jnp.eye(2)  # two prototypes
      >>> a = jnp.array([[[1.0, 1.0]], [[1.0, 1.0]]])  # anchors halfway: p = (1/2, 1/2)
      >>> round(float(lossjax.losses.msn_loss(a, jnp.array([[1.0, 0.0], [0.0, 1.0]]), c)), 4)  # log 2
      0.6931
    """
    fn = "msn_loss"
    C.check_positive(fn, "temperature", temperature)
    C.check_positive(fn, "sharpen_temperature", sharpen_temperature)
    C.check_int(fn, "num_iterations", num_iterations, 0, static=True)
    C.check_positive(fn, "me_max_weight", me_max_weight, allow_zero=True)
    C.check_positive(fn, "entropy_weight", entropy_weight, allow_zero=True)
    if power_law_exponent is not None:
        C.check_positive(fn, "power_law_exponent", power_law_exponent, allow_zero=True)
    a = C.check_array(fn, "anchor_embeddings", anchor_embeddings, ndim=3, dtype="float")
    t = C.check_array(fn, "target_embeddings", target_embeddings, ndim=2, dtype="float")
    c = C.check_array(fn, "proxies", proxies, ndim=2, dtype="float")
    b, nv, d = a.shape
    k = c.shape[0]
    if t.shape != (b, d) or c.shape[1] != d or k < 1:
        raise ValueError(
            f"{fn}: `anchor_embeddings` [B, V, D], `target_embeddings` [B, D] and `proxies` [K, D] need the same B "
            f"and D, got shapes {a.shape}, {t.shape} and {c.shape}."
        )
    dtype = C.compute_dtype(a, t, c)
    mask = C.prepare_where(fn, where, (b,))
    valid = jnp.ones((b,), bool) if mask is None else mask
    a = l2_normalize(C.fill_masked(C.as_compute(a, dtype), mask))
    t = jax.lax.stop_gradient(l2_normalize(C.fill_masked(C.as_compute(t, dtype), mask)))
    c = l2_normalize(C.as_compute(c, dtype))
    tau = jnp.asarray(temperature, dtype)
    logp = jax.nn.log_softmax(jnp.einsum("bvd,kd->bvk", a, c, precision=_HI) / tau, axis=-1)  # [B, V, K]
    # sharpen(softmax(s / tau), T) = softmax(s / (tau T)): its log is the Sinkhorn's log-domain input.
    t_scores = jnp.matmul(t, jax.lax.stop_gradient(c).T, precision=_HI) / (
        tau * jnp.asarray(sharpen_temperature, dtype)
    )
    q = _sinkhorn_codes(jax.nn.log_softmax(t_scores, axis=-1), valid, 1.0, num_iterations, axis_name)  # [B, K]
    q = jax.lax.stop_gradient(q)
    vf = valid.astype(dtype)
    zero = jnp.zeros((), dtype)
    ce = -jnp.einsum("bk,bvk->b", q, logp, precision=_HI)
    rows = psum(jnp.sum(vf), axis_name) * nv
    denom = jnp.maximum(rows, jnp.ones((), dtype))
    loss = psum(jnp.sum(jnp.where(valid, ce, zero)), axis_name) / denom
    p = jnp.exp(logp)
    pbar = psum(jnp.einsum("b,bvk->k", vf, p, precision=_HI), axis_name) / denom
    if power_law_exponent is None:
        reg = jnp.sum(pbar * C.safe_log(pbar)) + jnp.log(jnp.asarray(k, dtype))
    else:
        prior = np.arange(1, k + 1, dtype=np.float64) ** (-float(power_law_exponent))
        prior = jnp.asarray(prior / prior.sum(), dtype)
        reg = jnp.sum(prior * (jnp.log(prior) - C.safe_log(pbar)))
    ent = -jnp.sum(p * logp, axis=-1)  # [B, V]
    ent = psum(jnp.sum(jnp.where(valid[:, None], ent, zero)), axis_name) / denom
    total = loss + jnp.asarray(me_max_weight, dtype) * reg + jnp.asarray(entropy_weight, dtype) * ent
    return jnp.where(rows > 0, total, zero)


def _swav_queue_sample() -> Sample:
    rng = np.random.default_rng(32)
    b, v, d, k, size = 4, 3, 3, 4, 6

    def unit(x):
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    z = unit(rng.normal(size=(b, v, d)))
    c = unit(rng.normal(size=(k, d)))
    # A full queue of 6 slots (it takes part in the codes), the pointer at 4: this batch wraps around.
    full = MoCoQueue(unit(rng.normal(size=(size, 2, d))).astype(np.float32), np.ones((size,), bool), np.int32(4))
    # Not full yet (5 of 6 slots): the codes come from the batch alone, as the reference's warm-up.
    partial_keys = np.where((np.arange(size) < 5)[:, None, None], unit(rng.normal(size=(size, 1, d))), 0.0)
    partial = MoCoQueue(partial_keys.astype(np.float32), np.arange(size) < 5, np.int32(5))
    # Extremes: scores of exactly 1 (each embedding on a prototype) and 0 (zero embeddings); larger inputs are not
    # unit vectors (the reference exponentiates scores / epsilon).
    on_proxy = c[(np.arange(b)[:, None] + np.arange(v)[None, :]) % k]
    return Sample(
        args=(z.astype(np.float32), c.astype(np.float32)),
        extremes=(
            (on_proxy.astype(np.float32), c.astype(np.float32)),
            (np.zeros_like(z, np.float32), c.astype(np.float32)),
        ),
        kwargs={"state": full},
        diff_argnums=(0, 1),
        batched_argnums=(0,),
        fuzz_scaled=(),
        surrogate_grad=True,  # the codes are targets without gradient (see swav_loss)
        variants=({"state": partial, "num_assigned_views": 1, "temperature": 0.2, "regularization": 0.1},),
    )


@register(
    "swav_queue_loss",
    aliases=("swav_with_queue",),
    family=FAMILY,
    kind="batch",
    formula="swav_loss on z_bv = e_bv . c, with the codes q_a = SinkhornKnopp over [queue_a c^T; z_a] "
    "(the queue rows only once it is full), then the batch's embeddings of the assigned views are enqueued",
    paper="Unsupervised Learning of Visual Features by Contrasting Cluster Assignments (SwAV, 2020, arXiv:2006.09882)",
    reference="facebookresearch/swav@06b1b7c main_swav.py::train (the queue block), distributed_sinkhorn (torch port)",
    sample=_swav_queue_sample,
    runtime=("state", "axis_name"),
    has_aux=True,
)
def swav_queue_loss(
    embeddings: ArrayLike,
    proxies: ArrayLike,
    *,
    state: MoCoQueue,
    num_assigned_views: int = 2,
    temperature: float = 0.1,
    regularization: float = 0.05,
    num_iterations: int = 3,
    where: ArrayLike | None = None,
    axis_name=None,
) -> tuple[Array, MoCoQueue]:
    r"""SwAV with its queue of past embeddings: more rows in the Sinkhorn-Knopp problem of the codes.

    .. math::
        z_{bv} = e_{bv}\,C^\top,\qquad
        q_a = \Big[\mathrm{SK}\Big(\exp\big(\big[\begin{smallmatrix}Q_a C^\top\\ z_{\cdot a}\end{smallmatrix}\big]
              /\epsilon\big)\Big)\Big]_{\text{batch rows}},\qquad
        \mathcal L = \frac{1}{|A|}\sum_{a\in A}\frac{1}{V-1}\sum_{v\ne a}
          \frac1B\sum_b -q_{ab}\cdot\log\operatorname{softmax}(z_{bv}/\tau)

    The loss is :func:`swav_loss` on the scores ``z``, except that the codes
    of each assigned view ``a`` are computed jointly with the queue's stored
    embeddings of that view, scored against the *current* prototypes (the
    reference's ``queue``, switched on after ``epoch_queue_starts``; the caller
    decides when to pass it). As in the reference, the queue takes part only
    once it is full (every slot written; before that the codes come from the
    batch alone). After the loss the batch's embeddings of the assigned views
    (the global batch with ``axis_name``, padded rows left out) are written at
    the pointer, wrapping around: the :class:`MoCoQueue` ring buffer, whose
    ``keys`` here are ``[Q, |A|, D]`` (``MoCoQueue.initial(Q, (|A|, D))``). The
    reference keeps ``Q / world_size`` rows per device and shifts them; the
    ring keeps the same last ``Q`` rows of the global batch, replicated, and
    the Sinkhorn sums count each once. Embeddings and prototypes are used as
    given: the reference's model L2-normalizes the embeddings and the
    prototypes before each step.

    Args:
      embeddings: ``[B, V, D]`` the (L2-normalized) embeddings of ``V >= 2`` crops.
      proxies: ``[K, D]`` the (L2-normalized) prototypes ``C``.
      state: :class:`MoCoQueue` with ``keys [Q, |A|, D]`` (required; before ``epoch_queue_starts`` use
        :func:`swav_loss`).
      num_assigned_views: ``|A|``, the first views that get codes (2; the reference's ``crops_for_assign``).
      temperature: ``tau`` of the predicted distribution (0.1).
      regularization: ``epsilon`` of the codes (0.05).
      num_iterations: Sinkhorn-Knopp iterations (3).
      where: optional ``[B]`` mask of real examples.
      axis_name: mapped axis the batch is sharded over.

    Returns:
      ``(loss, new_state)``: the scalar loss and the updated queue.

    Paper: Caron, Misra, Mairal, Goyal, Bojanowski, Joulin, "Unsupervised
    Learning of Visual Features by Contrasting Cluster Assignments", NeurIPS
    2020, arXiv:2006.09882.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> e = jnp.zeros((2, 2, 3))  # zero embeddings: uniform scores, codes and predictions
      >>> state = lossjax.losses.MoCoQueue.initial(4, (2, 3))
      >>> loss, state = lossjax.losses.swav_queue_loss(e, jnp.eye(3), state=state)
      >>> round(float(loss), 4), int(state.pointer), state.valid.tolist()  # log 3
      (1.0986, 2, [True, True, False, False])
    """
    fn = "swav_queue_loss"
    C.check_positive(fn, "temperature", temperature)
    C.check_positive(fn, "regularization", regularization)
    C.check_int(fn, "num_iterations", num_iterations, 0, static=True)
    C.check_int(fn, "num_assigned_views", num_assigned_views, 1, static=True)
    e = _multi_view(fn, "embeddings", embeddings)
    c = C.check_array(fn, "proxies", proxies, ndim=2, dtype="float")
    b, nv, d = e.shape
    na = num_assigned_views
    if nv < 2 or na > nv or c.shape[1] != d:
        raise ValueError(
            f"{fn}: `embeddings` [B, V, D] needs V >= 2 views, num_assigned_views <= V and `proxies` [K, D] the same "
            f"D, got shapes {e.shape}, {c.shape} and num_assigned_views={na}."
        )
    if not isinstance(state, MoCoQueue):
        raise TypeError(
            f"{fn}: `state` must be a MoCoQueue (MoCoQueue.initial(size, ({na}, {d}))), got {type(state).__name__}."
        )
    size = state.keys.shape[0]
    if state.keys.shape[1:] != (na, d) or state.valid.shape != (size,):
        raise ValueError(
            f"{fn}: `state.keys` must be [Q, {na}, {d}] ([Q, num_assigned_views, D]) with `state.valid` [Q], got "
            f"{state.keys.shape} and {state.valid.shape}."
        )
    dtype = C.compute_dtype(e, c)
    mask = C.prepare_where(fn, where, (b,))
    valid = jnp.ones((b,), bool) if mask is None else mask
    e = C.fill_masked(C.as_compute(e, dtype), mask)
    c = C.as_compute(c, dtype)
    z = jnp.einsum("bvd,kd->bvk", e, c, precision=_HI)
    logp = jax.nn.log_softmax(z / jnp.asarray(temperature, dtype), axis=-1)
    zs = jax.lax.stop_gradient(z)
    codes = []
    for a in range(na):
        mem = jax.lax.stop_gradient(C.as_compute(state.keys[:, a], dtype))
        mem_scores = jnp.matmul(mem, jax.lax.stop_gradient(c).T, precision=_HI)
        # The replicated queue joins the global Sinkhorn sums once (on the first device), and only when full.
        first = jnp.asarray(True) if axis_name is None else axis_offset(axis_name, 1) == 0
        mem_ok = jnp.asarray(state.valid, bool) & jnp.all(jnp.asarray(state.valid, bool)) & first
        both = _sinkhorn_codes(
            jnp.concatenate([mem_scores, zs[:, a]], axis=0),
            jnp.concatenate([mem_ok, valid]),
            regularization,
            num_iterations,
            axis_name,
        )
        codes.append(both[mem.shape[0] :])
    codes = jnp.stack(codes, axis=1)  # [B, A, K]
    pairs = jnp.asarray(np.arange(nv)[None, :] != np.arange(na)[:, None], dtype)  # [A, V]
    per_row = -jnp.einsum("bak,bvk,av->b", codes, logp, pairs, precision=_HI) / ((nv - 1) * na)
    loss = _global_row_mean(per_row, valid, axis_name)
    eg, vg = gather_replicated(e[:, :na], axis_name), gather_replicated(valid, axis_name)
    slot, _, new_ptr = ring_slots(state.pointer, vg, size)
    new_keys = jnp.asarray(state.keys).at[slot].set(eg.astype(state.keys.dtype), mode="drop")
    new_valid = jnp.asarray(state.valid, bool).at[slot].set(True, mode="drop")
    return loss, MoCoQueue(new_keys, new_valid, new_ptr)


def _gram_sample() -> Sample:
    rng = np.random.default_rng(33)
    base = rng.normal(size=(5, 1, 4))
    x = base + 0.7 * rng.normal(size=(5, 3, 4))  # 5 examples, 3 modalities (the first the anchor), D = 4
    return Sample(
        args=(x.astype(np.float32),),
        # The columns (the other examples) are stop-gradient as in the reference (concat_all_gather has no
        # gradient): finite differences of the value see them move, the gradient does not by design.
        surrogate_grad=True,
        variants=({"temperature": 0.5, "label_smoothing": 0.0},),
    )


def _smoothed_ce_rows(logits: Array, diag: Array, cols: Array, label_smoothing) -> Array:
    """Per row: torch's ``cross_entropy(logits, target, label_smoothing=ls)`` over the valid columns."""
    dtype = logits.dtype
    zero = jnp.zeros((), dtype)
    logp = logits - masked_logsumexp(logits, cols, axis=1)[:, None]
    target = jnp.sum(jnp.where(diag & cols, logp, zero), axis=1)
    count = jnp.maximum(jnp.sum(cols.astype(dtype), axis=1), jnp.ones((), dtype))
    uniform = jnp.sum(jnp.where(cols, logp, zero), axis=1) / count
    ls = jnp.asarray(label_smoothing, dtype)
    return -(1 - ls) * target - ls * uniform


def _gram_volumes(anchors: Array, others: Array) -> Array:
    """``[n, m]``: ``sqrt|det G|`` of the Gram matrix of ``(anchors_i, others_j^1, ..., others_j^{M-1})``."""
    n, m = anchors.shape[0], others.shape[0]
    aa = jnp.broadcast_to(jnp.sum(anchors * anchors, axis=-1)[:, None, None, None], (n, m, 1, 1))
    ao = jnp.einsum("id,jkd->ijk", anchors, others, precision=_HI)  # [n, m, M-1]
    k = others.shape[1]
    oo = jnp.broadcast_to(jnp.einsum("jkd,jld->jkl", others, others, precision=_HI)[None], (n, m, k, k))
    top = jnp.concatenate([aa, ao[:, :, None, :]], axis=-1)  # [n, m, 1, M]
    bottom = jnp.concatenate([ao[:, :, :, None], oo], axis=-1)  # [n, m, M-1, M]
    det = jnp.linalg.det(jnp.concatenate([top, bottom], axis=-2))
    return C.safe_sqrt(jnp.abs(det))


@register(
    "gramian_volume_contrastive_loss",
    aliases=("gram_loss", "gram_volume_loss"),
    family=FAMILY,
    kind="per_example",
    formula="(CE_ls(-V/tau, i) + CE_ls(-V^T/tau, i)) / 2,  V_ij = sqrt|det Gram(x_i^1, sg(x_j^2), ..., sg(x_j^M))| "
    "(rows: the anchor modality; V^T: the other modalities' rows against stop-gradient anchors)",
    paper="Gramian Multimodal Representation Learning and Alignment (GRAM, 2024, arXiv:2412.11959)",
    reference="ispamm/GRAM@b70c5c2 utils/volume.py::volume_computation3-5, model/gram.py (volume contrastive loss) "
    "(torch port)",
    sample=_gram_sample,
    runtime=("axis_name",),
)
def gramian_volume_contrastive_loss(
    embeddings: ArrayLike,
    *,
    temperature: float = 0.07,
    label_smoothing: float = 0.1,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""GRAM: contrast the volume of the parallelotope spanned by one example's modality embeddings.

    .. math::
        V_{ij} = \sqrt{\big|\det G(x_i^1, x_j^2, \dots, x_j^M)\big|},\qquad
        \ell_i = \tfrac12\big[\mathrm{CE}_{\epsilon}(-V_{i\cdot}/\tau,\ i)
                  + \mathrm{CE}_{\epsilon}(-V_{\cdot i}/\tau,\ i)\big]

    ``G`` is the ``M x M`` Gram matrix of the L2-normalized vectors: the anchor
    modality (the reference's text) of example ``i`` with the other
    modalities of example ``j``. Aligned modalities span a small volume, so
    the matching example gets the largest logit ``-V/tau``. ``CE_eps`` is
    cross-entropy with label smoothing ``eps`` over the (global) batch
    (``torch.nn.functional.cross_entropy(label_smoothing=...)``). As in the
    reference, the columns are gathered without gradient (``concat_all_gather``):
    the first term differentiates the anchors of row ``i`` only, the second
    the other modalities of row ``i`` only. ``sqrt`` has a zero gradient at a
    zero volume (the reference's is infinite there). The mean of ``ell`` is
    the reference's loss.

    Args:
      embeddings: ``[B, M, D]`` the ``M >= 2`` modality embeddings of each example; modality 0 is the anchor.
      temperature: ``tau`` (0.07; a learnable scalar in the reference: pass its value).
      label_smoothing: ``eps`` in ``[0, 1)`` (0.1, the reference's).
      where: optional ``[B]`` mask of real examples (padded rows are no negatives either).
      axis_name: mapped axis the batch is sharded over (the columns are gathered).

    Returns:
      Per-example loss ``[B]``.

    Paper: Cicchetti, Grassucci, Sigillo, Comminiello, "Gramian Multimodal
    Representation Learning and Alignment", ICLR 2025, arXiv:2412.11959.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])  # aligned pairs: V = I - 1
      >>> loss = lossjax.losses.gramian_volume_contrastive_loss(x, temperature=1.0, label_smoothing=0.0)
      >>> [round(float(v), 4) for v in loss]  # log(1 + e^-1)
      [0.3133, 0.3133]
    """
    fn = "gramian_volume_contrastive_loss"
    C.check_positive(fn, "temperature", temperature)
    C.check_in_range(fn, "label_smoothing", label_smoothing, 0.0, 1.0, high_inclusive=False)
    x = _multi_view(fn, "embeddings", embeddings)
    n, m, _ = x.shape
    if m < 2:
        raise ValueError(f"{fn}: `embeddings` must have shape (B, M, D) with M >= 2 modalities, got {x.shape}.")
    dtype = C.compute_dtype(x)
    mask = C.prepare_where(fn, where, (n,))
    valid = jnp.ones((n,), bool) if mask is None else mask
    x = l2_normalize(C.fill_masked(C.as_compute(x, dtype), mask))
    xg = jax.lax.stop_gradient(gather_batch(x, axis_name))
    vg = gather_batch(valid, axis_name)
    diag = jnp.arange(xg.shape[0])[None, :] == (jnp.arange(n) + axis_offset(axis_name, n))[:, None]
    cols = valid[:, None] & vg[None, :]
    t = jnp.asarray(temperature, dtype)
    forward = -_gram_volumes(x[:, 0], xg[:, 1:]) / t  # local anchors against all the other modalities
    backward = -_gram_volumes(xg[:, 0], x[:, 1:]).T / t  # local other modalities against all anchors
    loss = (
        _smoothed_ce_rows(forward, diag, cols, label_smoothing)
        + _smoothed_ce_rows(backward, diag, cols, label_smoothing)
    ) / 2
    return C.zero_masked(loss, mask)


def _icon_sample() -> Sample:
    rng = np.random.default_rng(34)
    n = 5
    x = rng.normal(size=(n, 3))
    # A supervisory neighbourhood: each row a distribution over the other examples (the diagonal 0).
    p = rng.random(size=(n, n)) + np.where(rng.random(size=(n, n)) < 0.3, 0.0, 0.5)
    np.fill_diagonal(p, 0.0)
    p[0, 2] = 0.0  # an exact zero: no contribution (0 log 0 = 0)
    p = p / p.sum(axis=1, keepdims=True)
    return Sample(
        args=(x.astype(np.float32), p.astype(np.float32)),
        diff_argnums=(0,),
        # `targets` is pairwise [N, N]: the suite's `where` check slices batched arguments along axis 0 only, which
        # cannot express it, so `where` and `all_masked` are tested in tests/losses/test_selfsup_p2.py (masking ==
        # slicing targets[idx][:, idx]); for the same reason `fuzz` keeps the batch size.
        where=False,
        fuzz_batch=False,
        variants=({"distance": "cosine", "temperature": 0.5},),
    )


@register(
    "icon_kl_loss",
    aliases=("icon_loss", "i_con_loss"),
    family=FAMILY,
    kind="per_example",
    formula="KL(p(.|i) || q(.|i)),  q(j|i) = softmax_{j != i}(-d(f_i, f_j) / temperature)",
    paper="I-Con: A Unifying Framework for Representation Learning (2025, arXiv:2504.16929)",
    reference="ShadeAlsha/ICon@afbf34f distributions/distance.py::Gaussian (mask_diagonal), "
    "model/losses.py::KernelLoss 'kl' (torch port)",
    sample=_icon_sample,
)
def icon_kl_loss(
    embeddings: ArrayLike,
    targets: ArrayLike,
    *,
    temperature: float = 1.0,
    distance: str = "squared_euclidean",
    where: ArrayLike | None = None,
) -> Array:
    r"""I-Con: the KL divergence from a supervisory neighbour distribution to the learned one, per anchor.

    .. math::
        q(j\mid i) = \frac{\exp(-d(f_i, f_j)/t)}{\sum_{k\ne i}\exp(-d(f_i, f_k)/t)}\ (j \ne i),\qquad
        \ell_i = \mathrm{KL}\big(p(\cdot\mid i)\,\|\,q(\cdot\mid i)\big)
               = \sum_{j\ne i} p_{ij}\,\big(\log p_{ij} - \log q(j\mid i)\big)

    The choice of ``p`` recovers many methods (the paper's table): a Gaussian
    neighbourhood in input space gives SNE; ``p`` uniform over the other
    views of the same image gives SimCLR/InfoNCE (with ``distance="cosine"``);
    uniform over the same class gives SupCon; cluster co-membership gives
    k-means-like objectives. ``p``'s rows should sum to 1 over ``j != i``;
    ``p(i|i)`` and the columns of padded examples are ignored, and
    ``0 log 0 = 0``. The mean of ``ell`` is the reference's
    ``kl_div(log q, p, reduction="batchmean")``. The reference's Gaussian kernel
    of width ``sigma`` on squared Euclidean distances is ``temperature = 2 sigma^2``.

    Args:
      embeddings: ``[N, D]`` the learned representations ``f``.
      targets: ``[N, N]`` the supervisory conditional distributions ``p(j|i)`` (row ``i``), no gradient.
      temperature: ``t`` (1.0).
      distance: ``d``: ``"squared_euclidean"`` (default, the reference's Gaussian), ``"euclidean"`` or
        ``"cosine"`` (``1 - cos``).
      where: optional ``[N]`` mask of real examples (rows and columns).

    Returns:
      Per-anchor loss ``[N]``.

    Paper: Alshammari, Hershey, Feldmann, Freeman, Hamilton, "I-Con: A
    Unifying Framework for Representation Learning", ICLR 2025, arXiv:2504.16929.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> f = jnp.array([[0.0], [1.0], [3.0]])
      >>> p = jnp.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5], [0.0, 1.0, 0.0]])
      >>> [round(float(v), 4) for v in lossjax.losses.icon_kl_loss(f, p)]  # row 0: log(1 + e^-8)
      [0.0003, 0.8554, 0.0067]
    """
    fn = "icon_kl_loss"
    C.check_positive(fn, "temperature", temperature)
    C.check_one_of(fn, "distance", distance, ("squared_euclidean", "euclidean", "cosine"))
    f = C.check_array(fn, "embeddings", embeddings, ndim=2, dtype="float")
    p = C.check_array(fn, "targets", targets, ndim=2, dtype="float")
    n = f.shape[0]
    if p.shape != (n, n):
        raise ValueError(f"{fn}: `targets` must have shape ({n}, {n}) ([N, N] for `embeddings` [N, D]), got {p.shape}.")
    dtype = C.compute_dtype(f, p)
    mask = C.prepare_where(fn, where, (n,))
    valid = jnp.ones((n,), bool) if mask is None else mask
    f = C.fill_masked(C.as_compute(f, dtype), mask)
    p = jax.lax.stop_gradient(C.fill_masked(C.as_compute(p, dtype), mask))
    cols = valid[:, None] & valid[None, :] & ~jnp.eye(n, dtype=bool)
    logits = -pairwise_distance(f, f, distance=distance) / jnp.asarray(temperature, dtype)
    logq = logits - masked_logsumexp(logits, cols, axis=1)[:, None]
    zero = jnp.zeros((), dtype)
    p = jnp.where(cols, p, zero)
    kl = jnp.sum(jnp.where(cols, jax.scipy.special.xlogy(p, p) - p * logq, zero), axis=1)
    return C.zero_masked(kl, mask)


def _kernel_mixture_sample() -> Sample:
    rng = np.random.default_rng(35)
    a = rng.normal(size=(5, 4))
    b = a + 0.6 * rng.normal(size=(5, 4))
    return Sample(
        args=(a.astype(np.float32), b.astype(np.float32)),
        diff_argnums=(0, 1),
        variants=({"variant": "product", "gamma": 0.5, "kernel_weight": 0.3, "temperature": 0.5, "epsilon": 0.0},),
    )


def _kernel_infonce_rows(a, b, ag, bg, valid, vg, gamma, temperature, epsilon, axis_name) -> Array:
    """Per example ``[n]``: the mean of its two rows' ``-log(pos / (max(neg, eps) + eps))`` with the kernel
    ``exp(-||x - y||^gamma / t)``; ``neg`` sums the kernel over every valid column but the row itself."""
    n, dtype = a.shape[0], a.dtype
    t = jnp.asarray(temperature, dtype)
    out, out_all = jnp.concatenate([a, b]), jnp.concatenate([ag, bg])
    m = ag.shape[0]
    logits = -C.safe_power(pairwise_distance(out, out_all, distance="squared_euclidean"), gamma / 2) / t
    self_col = jnp.concatenate([jnp.arange(n), jnp.arange(n) + m]) + axis_offset(axis_name, n)
    cols = (jnp.arange(2 * m)[None, :] != self_col[:, None]) & jnp.concatenate([vg, vg])[None, :]
    cols = cols & jnp.concatenate([valid, valid])[:, None]
    lse = masked_logsumexp(logits, cols, axis=1)
    pos = -C.safe_power(jnp.sum(jnp.square(a - b), axis=-1), gamma / 2) / t
    if epsilon > 0:
        log_eps = jnp.log(jnp.asarray(epsilon, dtype))
        lse = jnp.logaddexp(jnp.maximum(lse, log_eps), log_eps)
    rows = lse - jnp.concatenate([pos, pos])
    return (rows[:n] + rows[n:]) / 2


@register(
    "kernel_mixture_contrastive_loss",
    aliases=("kernel_infonce_loss", "kernel_mixture_infonce_loss"),
    family=FAMILY,
    kind="per_example",
    formula="lambda L_gamma + (1 - lambda) L_2,  L_g = -log( k_g(z_i, z'_i) / sum_{j != i} k_g(o_i, o_j) ) over the "
    "2N views o, k_g(x, y) = exp(-||x - y||^g / t)  (variant 'product': L_gamma and L_2 on the two halves of z)",
    paper="Contrastive Learning Is Spectral Clustering On Similarity Graph (Kernel-InfoNCE, 2023, arXiv:2303.15103)",
    reference="yifanzhang-pro/Kernel-InfoNCE@184f2df simclr_module.py::SimCLR.gamma_loss, nt_xent_loss "
    "(loss_type 'sum' / 'product') (torch port)",
    sample=_kernel_mixture_sample,
    runtime=("axis_name",),
)
def kernel_mixture_contrastive_loss(
    embeddings_a: ArrayLike,
    embeddings_b: ArrayLike,
    *,
    temperature: float = 0.1,
    gamma: float = 1.0,
    kernel_weight: float = 0.5,
    variant: str = "sum",
    epsilon: float = 1e-6,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""Kernel-InfoNCE: InfoNCE whose Gaussian similarity kernel is replaced by a mixture of kernels.

    .. math::
        \mathcal L_g = -\log\frac{k_g(z_i, z'_i)}{\sum_{j\ne i} k_g(o_i, o_j)},\quad
        k_g(x, y) = \exp\big(-\|x - y\|^g / t\big),\qquad
        \ell = \lambda\,\mathcal L_\gamma + (1 - \lambda)\,\mathcal L_2

    over the ``2N`` L2-normalized views ``o = (z, z')`` (SimCLR's NT-Xent
    layout: each view's row runs over every other view of the batch, the
    positive included); ``ell_i`` averages the rows of ``z_i`` and ``z'_i``.
    ``g = 2`` is the Gaussian kernel (NT-Xent up to a constant), ``g = 1`` the
    Laplacian: ``variant="sum"`` (the paper's *simple sum*) adds the two
    InfoNCE losses; ``variant="product"`` (the paper's *concatenation*, a
    product kernel) takes ``L_gamma`` on the first half of the normalized
    features and ``L_2`` on the second. ``epsilon`` is the reference's guard
    ``-log(pos / (max(neg, eps) + eps))`` (0 for the exact ratio). With
    ``axis_name`` the columns are the global batch (the reference's
    ``SyncFunction`` gather, with gradient).

    Args:
      embeddings_a: ``[N, D]`` first views ``z``.
      embeddings_b: ``[N, D]`` second views ``z'``.
      temperature: ``t`` (0.1, the reference's).
      gamma: the exponent ``gamma`` of the first kernel, ``0 < gamma <= 2`` (1: Laplacian; the reference searches
        0.5 and 1).
      kernel_weight: ``lambda`` in ``[0, 1]`` (0.5; the reference's ``gamma_lambd``, searched uniformly in [0, 1]).
      variant: ``"sum"`` or ``"product"`` (``D`` even).
      epsilon: the reference's guard (1e-6), >= 0.
      where: optional ``[N]`` mask of real pairs (padded rows are no negatives either).
      axis_name: mapped axis the batch is sharded over.

    Returns:
      Per-pair loss ``[N]`` (its mean is the reference's loss).

    Paper: Tan, Zhang, Yang, Yuan, "Contrastive Learning Is Spectral
    Clustering On Similarity Graph", ICLR 2024, arXiv:2303.15103.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> x = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> loss = lossjax.losses.kernel_mixture_contrastive_loss(x, x, temperature=1.0, epsilon=0.0)
      >>> [round(float(v), 4) for v in loss]  # log(1 + 2 exp(-sqrt 2)) / 2 + log(1 + 2 exp(-2)) / 2
      [0.3179, 0.3179]
    """
    fn = "kernel_mixture_contrastive_loss"
    C.check_positive(fn, "temperature", temperature)
    C.check_in_range(fn, "gamma", gamma, 0.0, 2.0, low_inclusive=False)
    C.check_in_range(fn, "kernel_weight", kernel_weight, 0.0, 1.0)
    C.check_one_of(fn, "variant", variant, ("sum", "product"))
    C.check_positive(fn, "epsilon", epsilon, allow_zero=True)
    a, b, mask, dtype = paired_batch(fn, embeddings_a, embeddings_b, where)
    d = a.shape[1]
    if variant == "product" and d % 2:
        raise ValueError(f"{fn}: variant='product' splits the features in two halves: D must be even, got D={d}.")
    n = a.shape[0]
    valid = jnp.ones((n,), bool) if mask is None else mask
    a, b = l2_normalize(a), l2_normalize(b)
    ag, bg, vg = gather_batch(a, axis_name), gather_batch(b, axis_name), gather_batch(valid, axis_name)
    lam = jnp.asarray(kernel_weight, dtype)

    def term(sl, g):
        return _kernel_infonce_rows(
            a[:, sl], b[:, sl], ag[:, sl], bg[:, sl], valid, vg, g, temperature, epsilon, axis_name
        )

    if variant == "sum":
        loss = lam * term(slice(None), gamma) + (1 - lam) * term(slice(None), 2.0)
    else:
        loss = lam * term(slice(0, d // 2), gamma) + (1 - lam) * term(slice(d // 2, d), 2.0)
    return C.zero_masked(loss, mask)
