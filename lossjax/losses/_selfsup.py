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

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax._mining import paired_batch
from lossjax._pairwise import l2_normalize, masked_logsumexp, pairwise_distance
from lossjax._parallel import gather_batch, psum
from lossjax.registry import Sample, register

__all__ = [
    "barlow_twins_loss",
    "byol_loss",
    "dispersive_loss",
    "negative_cosine_loss",
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
    cov = (1 - eps) * cov + eps * eye
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
    cos = jnp.sum(l2_normalize(p) * l2_normalize(z), axis=-1)
    return cos, mask


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
    cos, mask = _pred_target("negative_cosine_loss", predictions, targets, where, stop_gradient_targets)
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
    by swapping the views and summing.

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
    cos, mask = _pred_target("byol_loss", predictions, targets, where, stop_gradient_targets)
    return C.zero_masked(2 - 2 * cos, mask)
