"""Distillation losses: a student's outputs matched to a teacher's (or to its own past outputs).

* :func:`trajectory_loss`: SAF / MESA's KL from past (or EMA-weight) outputs
  to the current ones, the self-distillation term of the trajectory
  sharpness-aware methods (:func:`lossjax.transforms.saf`, :func:`lossjax.transforms.mesa`).

* Logit distillation from a teacher: :func:`kd_kl_loss` (Hinton, with the
  ``T^2`` factor), :func:`decoupled_kd_loss` (DKD), :func:`dist_loss` (DIST),
  :func:`plackett_luce_distillation` (PLD), :func:`squared_logit_distillation`,
  :func:`dual_head_distillation`, :func:`class_relation_distillation` (Cr-KD),
  :func:`margin_preserving_focal_distillation` (MPT),
  :func:`mahalanobis_logit_regression_loss` (RECALL).

Teacher inputs (``teacher_logits``, ``teacher_log_probs``) never receive a
gradient by default (``stop_gradient_teacher=True``; :func:`trajectory_loss`
always stops it).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax._parallel import psum
from lossjax.registry import Sample, register

__all__ = [
    "class_relation_distillation",
    "decoupled_kd_loss",
    "dist_loss",
    "dual_head_distillation",
    "kd_kl_loss",
    "mahalanobis_logit_regression_loss",
    "margin_preserving_focal_distillation",
    "plackett_luce_distillation",
    "squared_logit_distillation",
    "trajectory_loss",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

FAMILY = "distillation"


def _traj_sample() -> Sample:
    rng = np.random.default_rng(0)
    logits = (2 * rng.normal(size=(6, 4))).astype(np.float32)
    teacher_logits = (2 * rng.normal(size=(6, 4))).astype(np.float32)
    return Sample(
        args=(logits, teacher_logits),
        diff_argnums=(0,),
        class_axis=True,
        variants=({"temperature": 1.0},),
        # The automatic extreme scales the logits to 1e4: log-softmax of 1e4 / tau = 2e3 carries ulp(2e3) = 1.2e-4
        # absolute error in float32, on a KL that can be ~5e-2 there.
        value_tol={"rtol": 1e-4, "atol": 3e-4},
    )


@register(
    "trajectory_loss",
    aliases=("saf_trajectory_loss", "mesa_loss"),
    family=FAMILY,
    kind="per_example",
    formula="KL(softmax(t / tau) || softmax(z / tau)),  t = stop_gradient(teacher_logits)",
    paper="Sharpness-Aware Training for Free (2022, arXiv:2205.14083)",
    reference="closed form (KL of softmaxes); tested against a float64 numpy evaluation",
    sample=_traj_sample,
)
def trajectory_loss(
    logits: ArrayLike,
    teacher_logits: ArrayLike,
    *,
    temperature: float = 5.0,
    where: ArrayLike | None = None,
) -> Array:
    r"""SAF/MESA trajectory loss: KL from past (or EMA) outputs to the current ones, per example.

    .. math::
        \ell_i = \mathrm{KL}\Big(\mathrm{softmax}(t_i/\tau)\,\Big\|\,\mathrm{softmax}(z_i/\tau)\Big),
        \qquad t = \mathrm{stop\_gradient}(\text{teacher\_logits})

    SAF's objective is ``L(w) + lambda * mean_i l_i`` with ``t`` the outputs
    recorded ``E`` epochs earlier (:func:`lossjax.transforms.saf`, :func:`lossjax.transforms.saf_targets`); MESA uses
    the outputs of an EMA of the weights (:func:`lossjax.transforms.mesa`, :func:`lossjax.transforms.mesa_params`).
    Minimizing it penalizes a sudden drop of the loss along the trajectory,
    the sharpness proxy of the paper, at the cost of no extra gradient.

    Args:
      logits: current outputs ``[..., C]``.
      teacher_logits: the "teacher": past / EMA outputs ``[..., C]`` (no gradient flows into them).
      temperature: ``tau`` (softens both distributions).
      where: optional boolean mask broadcastable to ``[...]`` (e.g. examples
        without a recorded past output); masked examples give 0.

    Returns:
      Per-example loss ``[...]`` (float32 for half-precision inputs).

    Paper: Du, Zhou, Feng, Tan, Zhou, "Sharpness-Aware Training for Free",
    NeurIPS 2022, arXiv:2205.14083.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.array([[0.0, 0.0], [1.0, -1.0]])
      >>> lossjax.losses.trajectory_loss(z, z, temperature=1.0)  # identical outputs: 0
      Array([0., 0.], dtype=float32)
      >>> lossjax.losses.trajectory_loss(z[:1], jnp.array([[2.0, 0.0]]), temperature=1.0).round(4)
      Array([0.3278], dtype=float32)
    """
    fn = "trajectory_loss"
    logits = C.check_array(fn, "logits", logits, min_ndim=1, dtype="float")
    teacher_logits = C.check_array(fn, "teacher_logits", teacher_logits, min_ndim=1, dtype="float")
    C.check_same_shape(fn, ("logits", "teacher_logits"), logits, teacher_logits)
    C.check_positive(fn, "temperature", temperature)
    dtype = C.compute_dtype(logits, teacher_logits)
    mask = C.prepare_where(fn, where, logits.shape[:-1])
    inv_t = 1.0 / temperature
    z = C.fill_masked(C.as_compute(logits, dtype), mask) * inv_t
    t = C.fill_masked(jax.lax.stop_gradient(C.as_compute(teacher_logits, dtype)), mask) * inv_t
    log_p = jax.nn.log_softmax(t, axis=-1)
    log_q = jax.nn.log_softmax(z, axis=-1)
    loss = jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)
    return C.zero_masked(loss, mask)


# --------------------------------------------------------------------------
# Logit distillation (teacher -> student). Shared input handling.
# --------------------------------------------------------------------------


def _student_teacher(fn: str, logits, teacher_logits, stop_gradient_teacher: bool, *, same_shape: bool = True):
    """Checked student / teacher logits in the compute dtype (teacher behind ``stop_gradient`` by default)."""
    z = C.check_array(fn, "logits", logits, min_ndim=1, dtype="float")
    t = C.check_array(fn, "teacher_logits", teacher_logits, min_ndim=1, dtype="float")
    if same_shape:
        C.check_same_shape(fn, ("logits", "teacher_logits"), z, t)
    else:
        C.check_shape_prefix(fn, ("logits", "teacher_logits"), z, t, z.ndim - 1)
    if not isinstance(stop_gradient_teacher, (bool, np.bool_)):
        raise ValueError(f"{fn}: `stop_gradient_teacher` must be a bool, got {stop_gradient_teacher!r}.")
    dtype = C.compute_dtype(z, t)
    z = C.as_compute(z, dtype)
    t = C.as_compute(t, dtype)
    if stop_gradient_teacher:
        t = jax.lax.stop_gradient(t)
    return z, t, dtype


def _kl_rows(log_p: Array, log_q: Array) -> Array:
    """``sum_c p_c (log p_c - log q_c)`` over the last axis, ``0 log 0 = 0`` (also against ``log q = -inf``)."""
    p = jnp.exp(log_p)
    pos = p > 0
    zero = jnp.zeros((), log_p.dtype)
    return jnp.sum(jnp.where(pos, p * (jnp.where(pos, log_p, zero) - jnp.where(pos, log_q, zero)), zero), axis=-1)


def _cross_entropy_rows(log_q: Array, targets: Array) -> Array:
    """``-sum_c y_c log q_c`` with ``0 * log 0 = 0`` (a target of 0 never multiplies ``-inf``)."""
    pos = targets != 0
    zero = jnp.zeros((), log_q.dtype)
    return -jnp.sum(jnp.where(pos, targets * jnp.where(pos, log_q, zero), zero), axis=-1)


def _integer_labels(fn: str, logits: Array, labels) -> Array:
    labels = jnp.asarray(labels)
    if not C.has_integer_labels(fn, logits, labels):
        raise ValueError(f"{fn}: `labels` must be integer class indices of shape {logits.shape[:-1]}, got floats.")
    return labels


def _kd_sample(seed: int, n: int = 6, c: int = 5, variants=(), extra=()) -> Sample:
    rng = np.random.default_rng(seed)
    z = (2 * rng.normal(size=(n, c))).astype(np.float32)
    t = (2 * rng.normal(size=(n, c))).astype(np.float32)
    y = rng.integers(0, c, size=(n,)).astype(np.int32)
    # Extremes: a -inf logit in both models (a masked class), 1e4-scale logits, a confidently wrong student.
    zi, ti = z.copy(), t.copy()
    other = (y + 1) % c
    zi[np.arange(n), other] = -np.inf
    ti[np.arange(n), other] = -np.inf
    zw = z.copy()
    zw[np.arange(n), y] = -20.0
    zw[np.arange(n), other] = 20.0
    extremes = ((zi, y, ti, *extra), (z * 1e3, y, t * 1e3, *extra), (zw, y, t, *extra))
    return Sample(args=(z, y, t, *extra), diff_argnums=(0,), extremes=extremes, variants=tuple(variants))


@register(
    "kd_kl_loss",
    aliases=("hinton_kd", "knowledge_distillation_loss"),
    family=FAMILY,
    kind="per_example",
    formula="(1 - alpha) CE(z, y) + alpha T^2 KL(softmax(t / T) || softmax(z / T))",
    paper="Distilling the Knowledge in a Neural Network (2015, arXiv:1503.02531)",
    reference="torch F.cross_entropy + F.kl_div(log_softmax(z / T), softmax(t / T), reduction='none').sum(-1) * T^2 "
    "(haitongli/knowledge-distillation-pytorch loss_fn_kd with batchmean KL)",
    sample=lambda: _kd_sample(20, variants=({"alpha": 0.3, "temperature": 1.0},)),
)
def kd_kl_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    teacher_logits: ArrayLike,
    *,
    temperature: float = 4.0,
    alpha: float = 0.9,
    stop_gradient_teacher: bool = True,
    where: ArrayLike | None = None,
) -> Array:
    r"""Hinton knowledge distillation: cross-entropy plus the temperature-softened KL to the teacher.

    .. math::
        \ell = (1-\alpha)\,\mathrm{CE}(z, y) + \alpha\,T^2\,
        \mathrm{KL}\big(\mathrm{softmax}(t/T)\,\big\|\,\mathrm{softmax}(z/T)\big)

    The :math:`T^2` factor keeps the soft term's gradient magnitude
    independent of ``T``. ``labels`` are integer classes or a distribution.
    The KL is per example (torch's ``kl_div(..., reduction="none").sum(-1)``;
    haitongli/knowledge-distillation-pytorch's ``nn.KLDivLoss()`` default
    ``reduction="mean"`` also divides by the number of classes, which the
    paper's loss does not). A class both models give ``-inf`` contributes 0.

    Args:
      logits: student logits ``[..., C]``.
      labels: integer labels ``[...]`` or a target distribution ``[..., C]``.
      teacher_logits: teacher logits ``[..., C]``.
      temperature: ``T > 0`` (4).
      alpha: weight of the distillation term, in ``[0, 1]`` (0.9).
      stop_gradient_teacher: no gradient into ``teacher_logits`` (True).
      where: optional mask of the examples ``[...]``.

    Returns:
      The loss per example ``[...]``.

    Paper: Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural
    Network", 2015, arXiv:1503.02531.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.array([[2.0, 0.0, -1.0]])
      >>> lossjax.losses.kd_kl_loss(z, jnp.array([0]), z, alpha=0.5).round(4)  # teacher == student: CE / 2
      Array([0.0849], dtype=float32)
    """
    fn = "kd_kl_loss"
    C.check_positive(fn, "temperature", temperature)
    C.check_in_range(fn, "alpha", alpha, 0.0, 1.0)
    z, t, dtype = _student_teacher(fn, logits, teacher_logits, stop_gradient_teacher)
    mask = C.prepare_where(fn, where, z.shape[:-1])
    y = C.class_targets(fn, z, labels, dtype, where=mask)
    z = C.fill_masked(z, mask)
    t = C.fill_masked(t, mask)
    y = C.fill_masked(y, mask)
    inv_t = 1.0 / temperature
    ce = _cross_entropy_rows(jax.nn.log_softmax(z, axis=-1), y)
    kd = _kl_rows(jax.nn.log_softmax(t * inv_t, axis=-1), jax.nn.log_softmax(z * inv_t, axis=-1))
    a = jnp.asarray(alpha, dtype)
    loss = (1 - a) * ce + a * jnp.asarray(temperature**2, dtype) * kd
    return C.zero_masked(loss, mask)


def _binary_log_probs(log_p: Array, onehot: Array) -> tuple[Array, Array]:
    """``log p_y`` and ``log(1 - p_y)`` from log-probabilities (the second as a log-sum-exp over the other classes)."""
    neg = jnp.asarray(-jnp.inf, log_p.dtype)
    log_pt = jnp.sum(jnp.where(onehot, log_p, jnp.zeros((), log_p.dtype)), axis=-1)
    others = jnp.where(onehot, neg, log_p)
    top = jax.lax.stop_gradient(jnp.max(others, axis=-1, keepdims=True))
    top = jnp.where(jnp.isfinite(top), top, jnp.zeros((), log_p.dtype))
    s = jnp.sum(jnp.exp(others - top), axis=-1)
    log_rest = jnp.where(s > 0, jnp.log(jnp.where(s > 0, s, jnp.ones((), s.dtype))) + top[..., 0], neg)
    return log_pt, log_rest


@register(
    "decoupled_kd_loss",
    aliases=("dkd_loss", "dkd"),
    family=FAMILY,
    kind="per_example",
    formula="T^2 [alpha KL(b_t || b_s) + beta KL(p~_t || p~_s)], b = (p_y, 1 - p_y), "
    "p~ = softmax over non-target classes",
    paper="Decoupled Knowledge Distillation (2022, arXiv:2203.08679)",
    reference="megvii-research/mdistiller@e8c5bb3 mdistiller/distillers/DKD.py::dkd_loss (torch port, per example)",
    sample=lambda: _kd_sample(21, variants=({"alpha": 0.5, "beta": 2.0, "temperature": 1.0},)),
)
def decoupled_kd_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    teacher_logits: ArrayLike,
    *,
    alpha: float = 1.0,
    beta: float = 8.0,
    temperature: float = 4.0,
    stop_gradient_teacher: bool = True,
    where: ArrayLike | None = None,
) -> Array:
    r"""Decoupled KD (DKD): target-class and non-target-class distillation with separate weights.

    .. math::
        \ell = T^2\Big[\alpha\,\mathrm{KL}(b^{\mathcal T}\|\,b^{\mathcal S})
        + \beta\,\mathrm{KL}(\hat p^{\mathcal T}\|\,\hat p^{\mathcal S})\Big]

    :math:`b = (p_y, 1 - p_y)` is the binary target / non-target split of
    ``softmax(z / T)`` (TCKD) and :math:`\hat p` the softmax over the
    non-target classes only (NCKD). The official ``dkd_loss`` averages over the
    batch; this returns the per-example terms (their mean is ``dkd_loss``).
    The official code masks the target with ``-1000`` and takes ``log`` of
    summed probabilities; here the target is excluded exactly and
    :math:`\log(1-p_y)` is a log-sum-exp over the other classes, which agree
    to float precision and stay finite for confident students. DKD's training
    loss adds ``CE(z, y)`` and a linear warm-up of this term (compose them).

    Args:
      logits: student logits ``[..., C]`` (``C >= 2``).
      labels: integer labels ``[...]``.
      teacher_logits: teacher logits ``[..., C]``.
      alpha: TCKD weight (1.0).
      beta: NCKD weight (8.0; the paper's CIFAR-100 setting).
      temperature: ``T > 0`` (4).
      stop_gradient_teacher: no gradient into ``teacher_logits`` (True).
      where: optional mask of the examples ``[...]``.

    Returns:
      The loss per example ``[...]``.

    Paper: Zhao, Cui, Song, Qiu, Liang, "Decoupled Knowledge Distillation",
    CVPR 2022, arXiv:2203.08679.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.array([[2.0, 0.0, -1.0]])
      >>> float(lossjax.losses.decoupled_kd_loss(z, jnp.array([0]), z)[0])  # identical models
      0.0
    """
    fn = "decoupled_kd_loss"
    C.check_positive(fn, "temperature", temperature)
    C.check_positive(fn, "alpha", alpha, allow_zero=True)
    C.check_positive(fn, "beta", beta, allow_zero=True)
    z, t, dtype = _student_teacher(fn, logits, teacher_logits, stop_gradient_teacher)
    if z.shape[-1] < 2:
        raise ValueError(f"{fn}: `logits` needs at least 2 classes, got shape {z.shape}.")
    y = _integer_labels(fn, z, labels)
    mask = C.prepare_where(fn, where, z.shape[:-1])
    onehot = C.class_targets(fn, z, y, dtype, where=mask) > 0
    z = C.fill_masked(z, mask) / temperature
    t = C.fill_masked(t, mask) / temperature
    ls, lt = jax.nn.log_softmax(z, axis=-1), jax.nn.log_softmax(t, axis=-1)
    bs = jnp.stack(_binary_log_probs(ls, onehot), axis=-1)
    bt = jnp.stack(_binary_log_probs(lt, onehot), axis=-1)
    tckd = _kl_rows(bt, bs)
    neg = jnp.asarray(-jnp.inf, dtype)
    nckd = _kl_rows(
        jax.nn.log_softmax(jnp.where(onehot, neg, t), axis=-1), jax.nn.log_softmax(jnp.where(onehot, neg, z), axis=-1)
    )
    loss = jnp.asarray(temperature**2, dtype) * (jnp.asarray(alpha, dtype) * tckd + jnp.asarray(beta, dtype) * nckd)
    return C.zero_masked(loss, mask)


@register(
    "plackett_luce_distillation",
    aliases=("pld_loss",),
    family=FAMILY,
    kind="per_example",
    formula="sum_k w_k [log sum_{j >= k} exp(z_pi_j) - z_pi_k], pi = (y, then classes by descending t), "
    "w = softmax(t / T)_pi",
    paper="PLD: A Choice-Theoretic List-Wise Knowledge Distillation (2025, arXiv:2506.12542)",
    reference="closed form (numpy: explicit permutation and suffix log-sum-exp; no official code located)",
    sample=lambda: _kd_sample(22, variants=({"temperature": 3.0},)),
)
def plackett_luce_distillation(
    logits: ArrayLike,
    labels: ArrayLike,
    teacher_logits: ArrayLike,
    *,
    temperature: float = 1.0,
    stop_gradient_teacher: bool = True,
    where: ArrayLike | None = None,
) -> Array:
    r"""Plackett-Luce distillation (PLD): a teacher-weighted list-wise ranking loss on the student's logits.

    .. math::
        \ell = \sum_{k=1}^{C} w_k\Big[\log\sum_{j\ge k}e^{z_{\pi_j}} - z_{\pi_k}\Big],\qquad
        w_k = \mathrm{softmax}(t/T)_{\pi_k}

    :math:`\pi` is the teacher-optimal permutation: the true label first, then
    the other classes by descending teacher logit (ties by class index). The
    first term is the weighted cross-entropy; the whole is convex in ``z`` and
    invariant to shifting it. Suffix log-sum-exps by a reversed
    ``cumlogsumexp``; the permutation carries no gradient.

    Args:
      logits: student logits ``[..., C]``.
      labels: integer labels ``[...]``.
      teacher_logits: teacher logits ``[..., C]``.
      temperature: ``T > 0`` of the teacher's confidence weights (1.0).
      stop_gradient_teacher: no gradient into ``teacher_logits`` (True).
      where: optional mask of the examples ``[...]``.

    Returns:
      The loss per example ``[...]``.

    Paper: Bassam, Zhu, Bian, "PLD: A Choice-Theoretic List-Wise Knowledge
    Distillation", 2025, arXiv:2506.12542.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.array([[0.0, 0.0]])
      >>> t = jnp.array([[0.0, 0.0]])  # weights 1/2, 1/2: (1/2) log 2 + (1/2) * 0
      >>> lossjax.losses.plackett_luce_distillation(z, jnp.array([1]), t).round(4)
      Array([0.3466], dtype=float32)
    """
    fn = "plackett_luce_distillation"
    C.check_positive(fn, "temperature", temperature)
    z, t, dtype = _student_teacher(fn, logits, teacher_logits, stop_gradient_teacher)
    y = _integer_labels(fn, z, labels)
    mask = C.prepare_where(fn, where, z.shape[:-1])
    onehot = C.class_targets(fn, z, y, dtype, where=mask) > 0
    z = C.fill_masked(z, mask)
    t = C.fill_masked(t, mask)
    key = jnp.where(onehot, jnp.asarray(jnp.inf, dtype), jax.lax.stop_gradient(t))
    order = jnp.argsort(-key, axis=-1, stable=True)
    zs = jnp.take_along_axis(z, order, axis=-1)
    w = jnp.take_along_axis(jax.nn.softmax(t / temperature, axis=-1), order, axis=-1)
    suffix = jax.lax.cumlogsumexp(zs, axis=zs.ndim - 1, reverse=True)
    finite = jnp.isfinite(zs)
    zero = jnp.zeros((), dtype)
    terms = jnp.where(finite, suffix - jnp.where(finite, zs, zero), jnp.where(w > 0, jnp.asarray(jnp.inf, dtype), zero))
    terms = jnp.where(w > 0, w * terms, zero)
    return C.zero_masked(jnp.sum(terms, axis=-1), mask)


def _sld_sample() -> Sample:
    rng = np.random.default_rng(23)
    z = (2 * rng.normal(size=(6, 4))).astype(np.float32)
    y = rng.integers(0, 4, size=(6,)).astype(np.int32)
    t = rng.normal(size=(6, 4))
    t_log_probs = (t - np.log(np.exp(t).sum(-1, keepdims=True))).astype(np.float32)
    return Sample(args=(z, y, t_log_probs), diff_argnums=(0,))  # centered logits: no -inf logits (class_axis)


@register(
    "squared_logit_distillation",
    aliases=("squared_error_logit_loss",),
    family=FAMILY,
    kind="per_example",
    formula="(z_y - mean_c z_c - (log p_t(y) - mean_c log p_t(c)))^2;  [...] teacher log-probs: (z_y - log p_t(y))^2",
    paper="Towards the Fundamental Limits of Knowledge Transfer over Finite Domains (2023, arXiv:2310.07838)",
    reference="closed form (numpy; no official code located)",
    sample=_sld_sample,
)
def squared_logit_distillation(
    logits: ArrayLike,
    labels: ArrayLike,
    teacher_log_probs: ArrayLike,
    *,
    stop_gradient_teacher: bool = True,
    where: ArrayLike | None = None,
) -> Array:
    r"""Squared-error logit loss on sampled labels with the teacher's log-probabilities (unbiased KD).

    .. math::
        \ell = \Big(z_a - \bar z - \big(\log p_t(a) - \overline{\log p_t}\big)\Big)^2,
        \qquad \bar z = \tfrac1C\textstyle\sum_c z_c

    on a sampled label ``a`` (``labels``). With the teacher's full
    log-probabilities ``[..., C]`` both sides are centered over the classes
    (softmax logits are defined up to a shift). With only the teacher's
    log-probability of the sampled label ``[...]`` (the paper's second level
    of privileged information) the loss regresses the student's logit on it
    directly, :math:`(z_a - \log p_t(a))^2`, whose minimizer ``z = log p_t``
    makes the student equal the teacher, unlike the naive ``-p_t(a) log q(a)``
    adaptation of cross-entropy, which is biased.

    Args:
      logits: student logits ``[..., C]``.
      labels: sampled integer labels ``[...]``.
      teacher_log_probs: the teacher's log-probabilities ``[..., C]`` or those of the sampled labels ``[...]``.
      stop_gradient_teacher: no gradient into ``teacher_log_probs`` (True).
      where: optional mask of the examples ``[...]``.

    Returns:
      The loss per example ``[...]``.

    Paper: Zhao, Zhu, "Towards the Fundamental Limits of Knowledge Transfer
    over Finite Domains", 2023, arXiv:2310.07838.

    Example:
      >>> import jax, jax.numpy as jnp, lossjax
      >>> t = jax.nn.log_softmax(jnp.array([[1.0, 0.0, -1.0]]))
      >>> float(lossjax.losses.squared_logit_distillation(t + 3.0, jnp.array([2]), t)[0])  # a shift is free
      0.0
    """
    fn = "squared_logit_distillation"
    z = C.check_array(fn, "logits", logits, min_ndim=1, dtype="float")
    lt = C.check_array(fn, "teacher_log_probs", teacher_log_probs, dtype="float")
    full = lt.shape == z.shape
    if not full and lt.shape != z.shape[:-1]:
        raise ValueError(
            f"{fn}: `teacher_log_probs` must have shape {z.shape} (all classes) or {z.shape[:-1]} "
            f"(the sampled labels'), got {lt.shape}."
        )
    if not isinstance(stop_gradient_teacher, (bool, np.bool_)):
        raise ValueError(f"{fn}: `stop_gradient_teacher` must be a bool, got {stop_gradient_teacher!r}.")
    dtype = C.compute_dtype(z, lt)
    y = _integer_labels(fn, z, labels)
    mask = C.prepare_where(fn, where, z.shape[:-1])
    onehot = C.class_targets(fn, z, y, dtype, where=mask)
    z = C.fill_masked(C.as_compute(z, dtype), mask)
    lt = C.fill_masked(C.as_compute(lt, dtype), mask)
    if stop_gradient_teacher:
        lt = jax.lax.stop_gradient(lt)
    onehot = C.fill_masked(onehot, mask)
    z_a = jnp.sum(onehot * z, axis=-1)
    if full:
        t_a = jnp.sum(onehot * lt, axis=-1)
        diff = z_a - jnp.mean(z, axis=-1) - (t_a - jnp.mean(lt, axis=-1))
    else:
        diff = z_a - lt
    return C.zero_masked(jnp.square(diff), mask)


def _mahal_sample() -> Sample:
    rng = np.random.default_rng(24)
    z = (2 * rng.normal(size=(6, 4))).astype(np.float32)
    t = (2 * rng.normal(size=(6, 4))).astype(np.float32)
    var = rng.uniform(0.5, 2.0, size=(4,)).astype(np.float32)
    return Sample(
        args=(z, t, var),
        diff_argnums=(0,),
        batched_argnums=(0, 1),
        variants=({"epsilon": 1.0},),
    )


@register(
    "mahalanobis_logit_regression_loss",
    aliases=("recall_mahalanobis_loss",),
    family=FAMILY,
    kind="per_example",
    formula="mean_c (z_c - t_c)^2 / max(var_c, epsilon)",
    paper="RECALL: Rehearsal-free Continual Learning for Object Classification (2022, arXiv:2209.14774)",
    reference="closed form (numpy; no official loss code located)",
    sample=_mahal_sample,
)
def mahalanobis_logit_regression_loss(
    logits: ArrayLike,
    teacher_logits: ArrayLike,
    variances: ArrayLike,
    *,
    epsilon: float = 1e-6,
    stop_gradient_teacher: bool = True,
    where: ArrayLike | None = None,
) -> Array:
    r"""RECALL's Mahalanobis regression of the old classes' logits onto their recorded values.

    .. math:: \ell = \frac1C\sum_c\frac{(z_c - t_c)^2}{\max(\sigma_c^2, \epsilon)}

    A diagonal Mahalanobis distance: per-class variances of the recorded
    logits rescale each class (the MSE regression of RECALL is ``variances =
    1``). Pass only the old classes' logits.

    Args:
      logits: current logits of the old classes ``[..., C]``.
      teacher_logits: the recorded logits ``[..., C]`` (no gradient).
      variances: per-class variances ``[C]`` (or ``[..., C]``), non-negative.
      epsilon: the variance floor (1e-6).
      stop_gradient_teacher: no gradient into ``teacher_logits`` (True).
      where: optional mask of the examples ``[...]``.

    Returns:
      The loss per example ``[...]``.

    Paper: Knauer, Denninger, Triebel, "RECALL: Rehearsal-free Continual
    Learning for Object Classification", IROS 2022, arXiv:2209.14774.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z, t = jnp.array([[1.0, 2.0]]), jnp.array([[0.0, 0.0]])
      >>> lossjax.losses.mahalanobis_logit_regression_loss(z, t, jnp.array([1.0, 4.0]))  # (1 + 4 / 4) / 2
      Array([1.], dtype=float32)
    """
    fn = "mahalanobis_logit_regression_loss"
    C.check_positive(fn, "epsilon", epsilon)
    z, t, dtype = _student_teacher(fn, logits, teacher_logits, stop_gradient_teacher)
    v = C.check_array(fn, "variances", variances, min_ndim=1, dtype="float")
    if v.shape != z.shape[-1:] and v.shape != z.shape:
        raise ValueError(f"{fn}: `variances` must have shape {z.shape[-1:]} or {z.shape}, got {v.shape}.")
    mask = C.prepare_where(fn, where, z.shape[:-1])
    v = jnp.maximum(jax.lax.stop_gradient(C.as_compute(v, dtype)), jnp.asarray(epsilon, dtype))
    if v.ndim < z.ndim:
        v = jnp.reshape(v, (1,) * (z.ndim - 1) + v.shape)
    else:
        v = C.fill_masked(v, mask, 1.0)
    z = C.fill_masked(z, mask)
    t = C.fill_masked(t, mask)
    return C.zero_masked(jnp.mean(jnp.square(z - t) / v, axis=-1), mask)


def _mpt_sample() -> Sample:
    rng = np.random.default_rng(25)
    n, c, c_old = 6, 5, 3
    z = (2 * rng.normal(size=(n, c))).astype(np.float32)
    y = np.array([0, 1, 2, 3, 4, 1], np.int32)
    old = (2 * rng.normal(size=(n, c_old))).astype(np.float32)
    old[0, 0] = old[1, 1] = 9.0  # the old model is right on rows 0 and 1 (focal weight 1 + 5)
    new = (2 * rng.normal(size=(n, c))).astype(np.float32)
    new[3, 3] = 9.0
    return Sample(
        args=(z, y, old, new),
        diff_argnums=(0,),
        variants=({"variant": "lm", "distillation_weight": 0.4}, {"margin": 0.0, "temperature": 1.0}),
    )


@register(
    "margin_preserving_focal_distillation",
    aliases=("mpt_loss",),
    family=FAMILY,
    kind="per_example",
    formula="CE(z + margin 1[c >= C_old], y) + w_d sum_{m in old, new} (alpha + beta 1[argmax t_m = y]) "
    "KL(softmax(t_m / T) || softmax(z_m / T))  (variant 'lm': mean_c (z_m - t_m)^2 / 2)",
    paper="Mitigating Negative Flips via Margin Preserving Training (2025, arXiv:2511.08322)",
    reference="miccunifi/negative_flip_MPT@912595d loss.py::focal_distillation_fdkl_loss / fdlm_loss + main.py "
    "'MPT_KL' / 'MPT_LM' (torch port, per example)",
    sample=_mpt_sample,
)
def margin_preserving_focal_distillation(
    logits: ArrayLike,
    labels: ArrayLike,
    teacher_logits: ArrayLike,
    new_teacher_logits: ArrayLike,
    *,
    margin: float = 4.0,
    alpha: float = 1.0,
    beta: float = 5.0,
    temperature: float = 5.0,
    variant: str = "kl",
    distillation_weight: float = 1.0,
    stop_gradient_teacher: bool = True,
    where: ArrayLike | None = None,
) -> Array:
    r"""Margin Preserving Training (MPT): margin-calibrated CE plus double-source focal distillation.

    .. math::
        \ell = \mathrm{CE}\big(z + b\,\mathbb 1[c \ge C_{old}],\,y\big)
        + w_d\sum_{m\in\{old,\,new\}}\big(\alpha + \beta\,\mathbb 1[\arg\max t^{m} = y]\big)\,
        \mathrm{KL}\big(\mathrm{softmax}(t^{m}/T)\,\big\|\,\mathrm{softmax}(z^{m}/T)\big)

    The previous model ``teacher_logits`` covers the first :math:`C_{old}`
    classes (:math:`z^{old} = z_{:C_{old}}`); the independently trained new
    model ``new_teacher_logits`` covers all of them (:math:`z^{new} = z`).
    The focal weight is larger where that model is right. The logit bias
    ``margin`` on the new classes enters only the cross-entropy (as in the
    reference, which adds it after distilling). ``variant="lm"`` replaces the
    KL by logit matching :math:`\frac12\,\mathrm{mean}_c(z^m - t^m)^2` (the
    reference weighs it ``w_d = 0.4``).

    Args:
      logits: the updated model's logits ``[..., C]``.
      labels: integer labels ``[...]``.
      teacher_logits: the previous model's logits ``[..., C_old]`` (``C_old <= C``).
      new_teacher_logits: the independently trained new model's logits ``[..., C]``.
      margin: the logit bias ``b`` added to the new classes in the cross-entropy (4.0).
      alpha: the focal weights' base (1.0).
      beta: their extra weight where the reference model is right (5.0).
      temperature: ``T`` of the KL (5.0).
      variant: ``"kl"`` or ``"lm"`` (logit matching).
      distillation_weight: ``w_d`` (1.0).
      stop_gradient_teacher: no gradient into either teacher (True).
      where: optional mask of the examples ``[...]``.

    Returns:
      The loss per example ``[...]``.

    Paper: Ricci, Biondi, Pernici, Del Bimbo, "Mitigating Negative Flips via
    Margin Preserving Training", AAAI 2026, arXiv:2511.08322.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.array([[1.0, 0.0, 0.0]])
      >>> loss = lossjax.losses.margin_preserving_focal_distillation(z, jnp.array([0]), z[:, :2], z, margin=0.0)
      >>> loss.round(4)  # identical teachers: the cross-entropy only
      Array([0.5514], dtype=float32)
    """
    fn = "margin_preserving_focal_distillation"
    C.check_one_of(fn, "variant", variant, ("kl", "lm"))
    C.check_positive(fn, "temperature", temperature)
    for name, v in (("margin", margin), ("alpha", alpha), ("beta", beta), ("distillation_weight", distillation_weight)):
        C.check_positive(fn, name, v, allow_zero=True)
    z, t_new, dtype = _student_teacher(fn, logits, new_teacher_logits, stop_gradient_teacher)
    t_old = C.check_array(fn, "teacher_logits", teacher_logits, min_ndim=1, dtype="float")
    c, c_old = z.shape[-1], t_old.shape[-1]
    if t_old.shape[:-1] != z.shape[:-1] or c_old > c:
        raise ValueError(
            f"{fn}: `teacher_logits` must have shape {z.shape[:-1]} + (C_old,) with C_old <= {c}, got {t_old.shape}."
        )
    t_old = C.as_compute(t_old, dtype)
    if stop_gradient_teacher:
        t_old = jax.lax.stop_gradient(t_old)
    y = _integer_labels(fn, z, labels)
    mask = C.prepare_where(fn, where, z.shape[:-1])
    onehot = C.class_targets(fn, z, y, dtype, where=mask)
    z, t_new, t_old = C.fill_masked(z, mask), C.fill_masked(t_new, mask), C.fill_masked(t_old, mask)
    onehot = C.fill_masked(onehot, mask)
    bias = jnp.where(jnp.arange(c) >= c_old, jnp.asarray(margin, dtype), jnp.zeros((), dtype))
    bias = jnp.reshape(bias, (1,) * (z.ndim - 1) + (c,))
    ce = _cross_entropy_rows(jax.nn.log_softmax(z + bias, axis=-1), onehot)

    def focal(zs, ts):
        right = (jnp.argmax(ts, axis=-1) == jnp.asarray(y)).astype(dtype)
        w = jnp.asarray(alpha, dtype) + jnp.asarray(beta, dtype) * right
        if variant == "kl":
            d = _kl_rows(jax.nn.log_softmax(ts / temperature, axis=-1), jax.nn.log_softmax(zs / temperature, axis=-1))
        else:
            d = 0.5 * jnp.mean(jnp.square(zs - ts), axis=-1)
        return w * d

    dist = focal(z[..., :c_old], t_old) + focal(z, t_new)
    return C.zero_masked(ce + jnp.asarray(distillation_weight, dtype) * dist, mask)


def _crkd_sample() -> Sample:
    rng = np.random.default_rng(26)
    z = (2 * rng.normal(size=(6, 5))).astype(np.float32)  # 3 known + 2 novel classes
    t = (2 * rng.normal(size=(6, 3))).astype(np.float32)
    return Sample(args=(z, t), diff_argnums=(0,), variants=({"temperature": 1.0},))


@register(
    "class_relation_distillation",
    aliases=("crkd_loss",),
    family=FAMILY,
    kind="batch",
    formula="mean_i w_i T^2 sum_{c<K} -softmax(t_i / T)_c log softmax(z_i,:K / T)_c, "
    "w_i = m_i / mean_j m_j, m_i = sum_{c<K} softmax(z_i / T)_c",
    paper="Class-relation Knowledge Distillation for Novel Class Discovery (2023, arXiv:2307.09158)",
    reference="kleinzcy/Cr-KD-NCD@29fad3d model/losses.py::KD (torch port; one view and head)",
    sample=_crkd_sample,
    runtime=("axis_name",),
)
def class_relation_distillation(
    logits: ArrayLike,
    teacher_logits: ArrayLike,
    *,
    temperature: float = 4.0,
    stop_gradient_teacher: bool = True,
    axis_name=None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Cr-KD: distill the known-class relations of novel-class samples, weighted by their known-class mass.

    .. math::
        \mathcal L = \frac1N\sum_i w_i\,T^2\sum_{c<K} -q_{ic}\log p_{ic},\quad
        q_i = \mathrm{softmax}(t_i/T),\ p_i = \mathrm{softmax}(z_{i,:K}/T),\quad
        w_i = \frac{m_i}{\frac1N\sum_j m_j},\ m_i = \sum_{c<K}\mathrm{softmax}(z_i/T)_c

    ``teacher_logits`` are the frozen known-class model's logits ``[N, K]``
    on novel-class samples; ``logits`` are the current model's ``[N, C]``
    over known (first ``K``) and novel classes. The weight :math:`w_i` (the
    "learnable weighting function") is the current model's probability of the
    known classes, normalized by its batch mean, and carries gradient, as in
    the reference. The reference's cross-entropy form (the KL plus the
    teacher's entropy) is kept; its prior division of both logits by the
    model temperature (0.1) is part of ``logits`` here. With ``axis_name`` the
    batch means are global.

    Args:
      logits: the current model's logits ``[N, C]`` (known classes first).
      teacher_logits: the frozen known-class model's logits ``[N, K]``, ``K <= C``.
      temperature: ``T > 0`` (4, the reference's ``kd_temperature``).
      stop_gradient_teacher: no gradient into ``teacher_logits`` (True).
      axis_name: mapped axis name(s) when the batch is sharded across devices.
      where: optional ``[N]`` mask.

    Returns:
      The scalar batch loss.

    Paper: Gu, Zhang, Xu, He, "Class-relation Knowledge Distillation for Novel
    Class Discovery", ICCV 2023, arXiv:2307.09158.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.array([[0.0, 0.0, -50.0], [0.0, 0.0, -50.0]])  # no novel-class mass: w = 1
      >>> lossjax.losses.class_relation_distillation(z, jnp.zeros((2, 2)), temperature=1.0).round(4)  # log 2
      Array(0.6931, dtype=float32)
    """
    fn = "class_relation_distillation"
    C.check_positive(fn, "temperature", temperature)
    z, t, dtype = _student_teacher(fn, logits, teacher_logits, stop_gradient_teacher, same_shape=False)
    if z.ndim != 2 or t.shape[-1] > z.shape[-1]:
        raise ValueError(
            f"{fn}: `logits` must be [N, C] and `teacher_logits` [N, K] with K <= C, got {z.shape} and {t.shape}."
        )
    k = t.shape[-1]
    mask = C.prepare_where(fn, where, z.shape[:1])
    vf = jnp.ones(z.shape[:1], dtype) if mask is None else mask.astype(dtype)
    z = C.fill_masked(z, mask) / temperature
    t = C.fill_masked(t, mask) / temperature
    q = jax.nn.softmax(t, axis=-1)
    ce = _cross_entropy_rows(jax.nn.log_softmax(z[:, :k], axis=-1), q)
    m = jnp.sum(jax.nn.softmax(z, axis=-1)[:, :k], axis=-1)
    n = psum(jnp.sum(vf), axis_name)
    one = jnp.ones((), dtype)
    mean_m = psum(jnp.sum(vf * m), axis_name) / jnp.maximum(n, one)
    w = m / jnp.where(n > 0, mean_m, one)
    total = psum(jnp.sum(vf * w * ce), axis_name) * jnp.asarray(temperature**2, dtype)
    return jnp.where(n > 0, total / jnp.maximum(n, one), jnp.zeros((), dtype))


def _dual_head_sample() -> Sample:
    base = _kd_sample(27)
    rng = np.random.default_rng(28)
    z, y, t = base.args
    aux = (2 * rng.normal(size=z.shape)).astype(np.float32)
    zi, yi, ti = base.extremes[0]
    big = base.extremes[1]
    return Sample(
        args=(z, aux, y, t),
        diff_argnums=(0, 1),
        extremes=((zi, aux, yi, ti), (big[0], aux * 1e3, big[1], big[2])),
        variants=({"temperature": 1.0, "aux_weight": 0.5, "kd_weight": 2.0},),
    )


@register(
    "dual_head_distillation",
    aliases=("dhkd_loss",),
    family=FAMILY,
    kind="per_example",
    formula="ce_w CE(z, y) + kd_w T^2 KL(softmax(t/T) || softmax(z/T)) "
    "+ aux_w T^2 sum_c KL(Bern(sigmoid(t_c/T)) || Bern(sigmoid(a_c/T)))",
    paper="Dual-Head Knowledge Distillation: Enhancing Logits Utilization with an Auxiliary Head (2024, "
    "arXiv:2411.08937)",
    reference="closed form (numpy): head 1 = Hinton KD, head 2 = binary KL on sigmoid logits (mdistiller-style "
    "BinaryKL, without its 1e-8 clamp)",
    sample=_dual_head_sample,
)
def dual_head_distillation(
    logits: ArrayLike,
    aux_logits: ArrayLike,
    labels: ArrayLike,
    teacher_logits: ArrayLike,
    *,
    temperature: float = 4.0,
    ce_weight: float = 1.0,
    kd_weight: float = 1.0,
    aux_weight: float = 1.0,
    stop_gradient_teacher: bool = True,
    where: ArrayLike | None = None,
) -> Array:
    r"""Dual-head KD: a probability-level loss on the main head, a logit-level loss on an auxiliary head.

    .. math::
        \ell = \lambda_{ce}\,\mathrm{CE}(z, y) + \lambda_{kd}\,T^2\,
        \mathrm{KL}\big(\mathrm{softmax}(t/T)\,\|\,\mathrm{softmax}(z/T)\big)
        + \lambda_{aux}\,T^2\sum_c \mathrm{KL}\big(\mathcal B(\sigma(t_c/T))\,\|\,\mathcal B(\sigma(a_c/T))\big)

    The linear classifier is split into two heads on one backbone: the main
    head ``z`` (used at test time) gets cross-entropy and the softmax KD term;
    the auxiliary head ``a`` gets the logit-level binary KL, which would
    collapse a shared head. Binary KLs use ``log_sigmoid`` (no clamping).

    Args:
      logits: main-head logits ``[..., C]``.
      aux_logits: auxiliary-head logits ``[..., C]``.
      labels: integer labels ``[...]`` or a target distribution ``[..., C]``.
      teacher_logits: teacher logits ``[..., C]``.
      temperature: ``T > 0`` (4).
      ce_weight: :math:`\lambda_{ce}` (1.0).
      kd_weight: :math:`\lambda_{kd}` (1.0).
      aux_weight: :math:`\lambda_{aux}` (1.0).
      stop_gradient_teacher: no gradient into ``teacher_logits`` (True).
      where: optional mask of the examples ``[...]``.

    Returns:
      The loss per example ``[...]``.

    Paper: Yang, Zong, Huang, Feng, An, "Dual-Head Knowledge Distillation:
    Enhancing Logits Utilization with an Auxiliary Head", 2024, arXiv:2411.08937.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.array([[2.0, 0.0]])
      >>> lossjax.losses.dual_head_distillation(z, z, jnp.array([0]), z).round(4)  # teacher == both heads: CE
      Array([0.1269], dtype=float32)
    """
    fn = "dual_head_distillation"
    C.check_positive(fn, "temperature", temperature)
    for name, v in (("ce_weight", ce_weight), ("kd_weight", kd_weight), ("aux_weight", aux_weight)):
        C.check_positive(fn, name, v, allow_zero=True)
    z, t, dtype = _student_teacher(fn, logits, teacher_logits, stop_gradient_teacher)
    a = C.check_array(fn, "aux_logits", aux_logits, min_ndim=1, dtype="float")
    C.check_same_shape(fn, ("logits", "aux_logits"), z, a)
    dtype = C.compute_dtype(z, a)
    z, t, a = C.as_compute(z, dtype), C.as_compute(t, dtype), C.as_compute(a, dtype)
    mask = C.prepare_where(fn, where, z.shape[:-1])
    y = C.fill_masked(C.class_targets(fn, z, labels, dtype, where=mask), mask)
    z, t, a = C.fill_masked(z, mask), C.fill_masked(t, mask), C.fill_masked(a, mask)
    ce = _cross_entropy_rows(jax.nn.log_softmax(z, axis=-1), y)
    kd = _kl_rows(jax.nn.log_softmax(t / temperature, axis=-1), jax.nn.log_softmax(z / temperature, axis=-1))
    ts, as_ = t / temperature, a / temperature
    s_t = jax.nn.sigmoid(ts)
    lt1, lt0 = jax.nn.log_sigmoid(ts), jax.nn.log_sigmoid(-ts)
    la1, la0 = jax.nn.log_sigmoid(as_), jax.nn.log_sigmoid(-as_)
    zero = jnp.zeros((), dtype)
    pos1, pos0 = s_t > 0, (1 - s_t) > 0
    bkl = jnp.where(pos1, s_t * (lt1 - jnp.where(pos1, la1, zero)), zero) + jnp.where(
        pos0, jnp.exp(lt0) * (lt0 - jnp.where(pos0, la0, zero)), zero
    )
    t2 = jnp.asarray(temperature**2, dtype)
    loss = (
        jnp.asarray(ce_weight, dtype) * ce
        + jnp.asarray(kd_weight, dtype) * t2 * kd
        + jnp.asarray(aux_weight, dtype) * t2 * jnp.sum(bkl, axis=-1)
    )
    return C.zero_masked(loss, mask)


def _dist_sample() -> Sample:
    rng = np.random.default_rng(29)
    z = (2 * rng.normal(size=(8, 4))).astype(np.float32)
    t = (2 * rng.normal(size=(8, 4))).astype(np.float32)
    return Sample(args=(z, t), diff_argnums=(0,), variants=({"beta": 2.0, "gamma": 0.5, "temperature": 4.0},))


def _centered_cosine(a: Array, b: Array, vf: Array, axis: int, epsilon: float, axis_name=None) -> Array:
    """Pearson correlation of ``a`` and ``b`` along ``axis`` (batch axis 0: masked rows out, ``psum`` over devices)."""
    dtype = a.dtype
    if axis == 0:
        n = jnp.maximum(psum(jnp.sum(vf), axis_name), jnp.ones((), dtype))
        ma = psum(jnp.sum(vf[:, None] * a, axis=0), axis_name) / n
        mb = psum(jnp.sum(vf[:, None] * b, axis=0), axis_name) / n
        ac, bc = (a - ma[None, :]) * vf[:, None], (b - mb[None, :]) * vf[:, None]
        dot = psum(jnp.sum(ac * bc, axis=0), axis_name)
        na = C.safe_sqrt(psum(jnp.sum(jnp.square(ac), axis=0), axis_name))
        nb = C.safe_sqrt(psum(jnp.sum(jnp.square(bc), axis=0), axis_name))
    else:
        ac = a - jnp.mean(a, axis=-1, keepdims=True)
        bc = b - jnp.mean(b, axis=-1, keepdims=True)
        dot = jnp.sum(ac * bc, axis=-1)
        na, nb = C.safe_norm(ac, axis=-1), C.safe_norm(bc, axis=-1)
    return dot / (na * nb + jnp.asarray(epsilon, dtype))


@register(
    "dist_loss",
    aliases=("dist_kd_loss",),
    family=FAMILY,
    kind="batch",
    formula="T^2 [beta (1 - mean_i pearson(y_s[i, :], y_t[i, :])) + gamma (1 - mean_c pearson(y_s[:, c], y_t[:, c]))], "
    "y = softmax(logits / T)",
    paper="Knowledge Distillation from A Stronger Teacher (2022, arXiv:2205.10536)",
    reference="hunto/image_classification_sota@2bc4832 lib/models/losses/dist_kd.py::DIST (torch port; "
    "T^2 scaling as in the paper and hunto/DIST_KD's later versions)",
    sample=_dist_sample,
    runtime=("axis_name",),
)
def dist_loss(
    logits: ArrayLike,
    teacher_logits: ArrayLike,
    *,
    beta: float = 1.0,
    gamma: float = 1.0,
    temperature: float = 1.0,
    epsilon: float = 1e-8,
    stop_gradient_teacher: bool = True,
    axis_name=None,
    where: ArrayLike | None = None,
) -> Array:
    r"""DIST: match the teacher's inter-class (per example) and intra-class (per class) Pearson relations.

    .. math::
        \mathcal L = T^2\Big[\beta\Big(1 - \frac1N\sum_i\rho(Y^s_{i,:}, Y^t_{i,:})\Big)
        + \gamma\Big(1 - \frac1C\sum_c\rho(Y^s_{:,c}, Y^t_{:,c})\Big)\Big],\qquad
        Y = \mathrm{softmax}(\text{logits}/T)

    :math:`\rho(a, b) = \frac{(a-\bar a)\cdot(b-\bar b)}{\|a-\bar a\|\,\|b-\bar b\| + \epsilon}`
    (the official ``pearson_correlation``, ``eps = 1e-8``). The intra-class
    term couples the batch: a ``where`` mask drops rows from every column
    statistic, and with ``axis_name`` they are over the global batch.

    Args:
      logits: student logits ``[N, C]``.
      teacher_logits: teacher logits ``[N, C]``.
      beta: inter-class weight (1.0).
      gamma: intra-class weight (1.0).
      temperature: ``T > 0`` (1.0; the paper uses 1 on ImageNet, 4 on CIFAR-100).
      epsilon: added to the norms' product (1e-8, as the reference).
      stop_gradient_teacher: no gradient into ``teacher_logits`` (True).
      axis_name: mapped axis name(s) when the batch is sharded across devices.
      where: optional ``[N]`` mask.

    Returns:
      The scalar batch loss.

    Paper: Huang, You, Wang, Qian, Xu, "Knowledge Distillation from A Stronger
    Teacher", NeurIPS 2022, arXiv:2205.10536.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> z = jnp.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.5]])
      >>> lossjax.losses.dist_loss(z, z).round(4)  # identical relations
      Array(0., dtype=float32)
    """
    fn = "dist_loss"
    C.check_positive(fn, "temperature", temperature)
    C.check_positive(fn, "beta", beta, allow_zero=True)
    C.check_positive(fn, "gamma", gamma, allow_zero=True)
    C.check_positive(fn, "epsilon", epsilon, allow_zero=True)
    z, t, dtype = _student_teacher(fn, logits, teacher_logits, stop_gradient_teacher)
    if z.ndim != 2:
        raise ValueError(f"{fn}: `logits` must have shape [N, C], got {z.shape}.")
    mask = C.prepare_where(fn, where, z.shape[:1])
    vf = jnp.ones(z.shape[:1], dtype) if mask is None else mask.astype(dtype)
    ys = jax.nn.softmax(C.fill_masked(z, mask) / temperature, axis=-1)
    yt = jax.nn.softmax(C.fill_masked(t, mask) / temperature, axis=-1)
    n = psum(jnp.sum(vf), axis_name)
    one = jnp.ones((), dtype)
    inter = 1 - psum(jnp.sum(vf * _centered_cosine(ys, yt, vf, -1, epsilon)), axis_name) / jnp.maximum(n, one)
    intra = 1 - jnp.mean(_centered_cosine(ys, yt, vf, 0, epsilon, axis_name))
    loss = jnp.asarray(temperature**2, dtype) * (jnp.asarray(beta, dtype) * inter + jnp.asarray(gamma, dtype) * intra)
    return jnp.where(n > 0, loss, jnp.zeros((), dtype))
