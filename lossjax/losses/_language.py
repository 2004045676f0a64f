"""Language-model losses: the fused large-vocabulary cross-entropy, token and sequence
log-probabilities, z-losses, number tokens, EMO, sample reweighting, pass@n coverage,
probing and unlearning weights, and CTC for unsegmented sequence labelling.

Token-level losses take ``logits [..., V]`` and integer ``labels [...]`` and
return a loss per token ``[...]``; sequence-level ones take log-probabilities
``[B]`` (summed per sequence) or ``[B, T]`` with a ``token_where`` mask. The
plain cross-entropy of a large vocabulary is :func:`linear_cross_entropy`
(fused with the output head, no ``[N, V]`` logits; the machinery lives in
``lossjax/_fused.py``), with two siblings that return something else:
:func:`linear_cross_entropy_with_lse` (also the per-token log-sum-exp) and
:func:`reduced_linear_cross_entropy` (a scalar, with the faster
gradient-in-forward path). Its negation is the per-token log-probability that
the sequence-level losses here and in the preference family accept.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax._fused import DEFAULT_MEMORY_BUDGET, MODES, SCALAR_REDUCTIONS, fused_cross_entropy, fused_distillation
from lossjax._parallel import axis_size, gather_batch, psum
from lossjax._sequence import check_log_probs, reduce_sequence, token_mask_of
from lossjax._targets import SoftmaxInputs, label_log_softmax
from lossjax.registry import Sample, register

__all__ = [
    "contrast_consistent_search_loss",
    "ctc_loss",
    "earth_mover_distance_optimization",
    "linear_cross_entropy",
    "linear_cross_entropy_with_lse",
    "linear_distillation_loss",
    "loss_based_sample_reweighting",
    "loss_based_sample_weights",
    "number_token_loss",
    "pass_at_n_coverage_loss",
    "reduced_linear_cross_entropy",
    "saturation_importance_unlearning_loss",
    "sequence_log_probs",
    "spherical_z_loss",
    "token_log_probs",
    "z_loss",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

FAMILY = "language"


# ------------------- fused large-vocabulary cross-entropy -------------------

_LCE_PAPER = "Cut Your Losses in Large-Vocabulary Language Models (2024, arXiv:2411.09009)"
_LCE_REFERENCE = (
    "naive: log_softmax(hidden @ weight.T) cross-entropy (torch.nn.functional.cross_entropy); "
    "apple/ml-cross-entropy cut_cross_entropy/cce.py; linkedin/Liger-Kernel fused_linear_cross_entropy"
)
_LCE_FORMULA = "l_i = LSE_v(c tanh(h_i.w_v/c) + b_v) - z_{i,y_i} (+ z_loss_weight LSE^2, label smoothing), streamed"


def _linear_ce(
    fn: str,
    hidden,
    weight,
    labels,
    *,
    bias,
    ignore_index,
    label_smoothing,
    z_loss_weight,
    logit_softcap,
    reduction: str,
    with_lse: bool,
    mode: str,
    block_size,
    chunk_size,
    memory_budget,
    vocab_axis_name,
    where,
):
    """The one implementation of the three linear cross-entropy entries: checks, masks, the fused head."""
    hidden = C.check_array(fn, "hidden", hidden, min_ndim=1, dtype="float")
    weight = C.check_array(fn, "weight", weight, ndim=2, dtype="float")
    labels = C.check_array(fn, "labels", labels, dtype="int")
    if weight.shape[1] != hidden.shape[-1]:
        raise ValueError(
            f"{fn}: `weight` must have shape (V, D) with D = hidden.shape[-1] = {hidden.shape[-1]}, "
            f"got weight.shape={weight.shape}."
        )
    if labels.shape != hidden.shape[:-1]:
        raise ValueError(f"{fn}: `labels` must have shape hidden.shape[:-1]={hidden.shape[:-1]}, got {labels.shape}.")
    v_local, d = weight.shape
    if v_local == 0:
        raise ValueError(f"{fn}: `weight` must have at least one row (vocabulary entry), got shape {weight.shape}.")
    C.check_in_range(fn, "label_smoothing", label_smoothing, 0.0, 1.0, high_inclusive=False)
    C.check_positive(fn, "z_loss_weight", z_loss_weight, allow_zero=True)
    if logit_softcap is not None:
        C.check_positive(fn, "logit_softcap", logit_softcap)
    C.check_one_of(fn, "mode", mode, MODES)
    if ignore_index is not None:
        C.check_int(fn, "ignore_index", ignore_index)
    for arg, val in (("block_size", block_size), ("chunk_size", chunk_size), ("memory_budget", memory_budget)):
        if val is not None:
            C.check_int(fn, arg, val, 1, static=True)
    if vocab_axis_name is not None and mode == "in_forward":
        raise ValueError(
            f"{fn}: `mode='in_forward'` does not support a vocab-sharded weight (vocab_axis_name="
            f"{vocab_axis_name!r}); use mode='recompute' or 'auto'."
        )

    batch_shape = labels.shape
    mask = C.prepare_where(fn, where, batch_shape)
    b = None if bias is None else C.check_array(fn, "bias", bias, shape=(v_local,), dtype="float")
    y = jnp.reshape(labels, (-1,))
    valid = jnp.ones(y.shape, bool) if ignore_index is None else y != ignore_index
    if mask is not None:
        valid = valid & jnp.reshape(mask, (-1,))
    if vocab_axis_name is None:  # a vocab-sharded weight only knows its local rows
        C.debug_check(
            jnp.all(((y >= 0) & (y < v_local)) | ~valid),
            f"{fn}: labels must lie in [0, {v_local}) or equal ignore_index={ignore_index}",
        )
    out = fused_cross_entropy(
        jnp.reshape(hidden, (-1, d)),
        weight,
        b,
        y,
        valid,
        label_smoothing=label_smoothing,
        z_loss_weight=z_loss_weight,
        logit_softcap=logit_softcap,
        reduction=reduction,
        with_lse=with_lse,
        mode=mode,
        block_size=block_size,
        chunk_size=chunk_size,
        memory_budget=memory_budget,
        vocab_axis_name=vocab_axis_name,
    )
    # An out-of-range label of a counted token gives NaN, loudly, as JAX's out-of-bounds gather does
    # (ignore_index keeps its meaning: ignored, never an error). The fused pass itself never sees it:
    # it only compares an iota with the label, so the NaN is added here (no gradient through it).
    n_vocab = v_local * axis_size(vocab_axis_name)
    bad = valid & ((y < 0) | (y >= n_vocab))
    if reduction != "none":
        return out + jnp.where(jnp.any(bad), jnp.asarray(jnp.nan, out.dtype), jnp.zeros((), out.dtype))

    def nan_bad(a):
        return jnp.where(bad, jnp.asarray(jnp.nan, a.dtype), a)

    out = (nan_bad(out[0]), out[1]) if with_lse else nan_bad(out)
    return jax.tree.map(lambda a: jnp.reshape(a, batch_shape), out)


def _lce_sample() -> Sample:
    rng = np.random.default_rng(0)
    n, d, v = 6, 4, 5
    hidden = rng.normal(size=(n, d)).astype(np.float32)
    weight = (rng.normal(size=(v, d)) * 0.7).astype(np.float32)
    labels = rng.integers(0, v, size=(n,)).astype(np.int32)
    labels[3] = -100  # the default ignore_index: ignored in every property
    bias = (rng.normal(size=(v,)) * 0.5).astype(np.float32)
    # Large logits (|z| up to ~1e2, beyond float32 exp's range) and a zero head (uniform softmax).
    extremes = ((hidden * 30, weight, labels), (np.zeros_like(hidden), weight, labels), (hidden, weight * 0, labels))
    # block_size=2 exercises the streaming loop and its remainder block; each option is a variant.
    return Sample(
        args=(hidden, weight, labels),
        kwargs={"block_size": 2},
        diff_argnums=(0, 1),
        batched_argnums=(0, 2),
        extremes=extremes,
        variants=(
            {"z_loss_weight": 0.05},
            {"label_smoothing": 0.2},
            {"logit_softcap": 2.0},
            {"bias": bias},
            {"bias": bias, "label_smoothing": 0.1, "z_loss_weight": 0.01, "logit_softcap": 3.0},
        ),
        # float32 log-sum-exp of logits near 1e2 (the extremes) carries ulp(1e2) ~ 8e-6 absolute error.
        value_tol={"rtol": 1e-4, "atol": 5e-5},
    )


def _reduced_lce_sample() -> Sample:
    s = _lce_sample()
    # chunk_size=4 over 6 tokens: one full token chunk of the in-forward path and a remainder.
    return dataclasses.replace(
        s,
        kwargs={"block_size": 2, "chunk_size": 4},
        variants=(
            *s.variants,
            # (reduction="sum" is exercised by the family tests: "reduction" is a reserved word of the registry's
            # specs, so the registry property cannot configure it)
            {"mode": "in_forward"},
            {"mode": "recompute"},
            {"mode": "in_forward", "z_loss_weight": 0.05, "label_smoothing": 0.2},
            {"mode": "recompute", "z_loss_weight": 0.05, "logit_softcap": 2.0, "bias": s.variants[3]["bias"]},
        ),
    )


@register(
    "linear_cross_entropy",
    aliases=("fused_linear_cross_entropy", "chunked_cross_entropy"),
    family=FAMILY,
    kind="per_example",
    formula=_LCE_FORMULA,
    paper=_LCE_PAPER,
    reference=_LCE_REFERENCE,
    sample=_lce_sample,
    runtime=("bias",),
)
def linear_cross_entropy(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    ignore_index: int | None = -100,
    label_smoothing: float = 0.0,
    z_loss_weight: float = 0.0,
    logit_softcap: float | None = None,
    block_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    vocab_axis_name: str | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Per-token cross-entropy of ``hidden @ weight.T`` without materializing the ``[N, V]`` logits.

    .. math::
        z_{iv} = c \tanh\!\big((h_i^\top w_v + b_v)/c\big),\qquad
        \mathrm{lse}_i = \log\textstyle\sum_v e^{z_{iv}},

        \ell_i = \mathrm{lse}_i - (1-a)\,z_{i y_i} - \tfrac{a}{V}\textstyle\sum_v z_{iv}
                 + \lambda_z\,\mathrm{lse}_i^2

    (no cap when ``logit_softcap`` is None; ``a`` is the label smoothing,
    ``\lambda_z`` the ``z_loss_weight``, PaLM's z-loss coefficient). Tokens whose label equals
    ``ignore_index`` or whose ``where`` is False get exactly 0 loss and 0
    gradient. The forward pass streams vocabulary blocks (a streaming
    log-sum-exp); the backward pass recomputes each block, so the logits exist
    only one tile at a time and any per-token cotangent works (8 N D V FLOPs).
    For a scalar loss use :func:`reduced_linear_cross_entropy` (it may compute
    the gradient during the forward pass, 6 N D V FLOPs); for the per-token
    log-sum-exp as well, :func:`linear_cross_entropy_with_lse`.

    Sequence-level losses (DPO, KTO, ...) get per-token log-likelihoods
    ``log p(y_t) = -linear_cross_entropy(hidden, weight, labels)`` (no smoothing,
    no z-loss) with gradients, through the same fused path.

    Args:
      hidden: ``[..., D]`` final hidden states (any float dtype; bf16 stays
        bf16 in the matmuls, with float32 accumulation).
      weight: ``[V, D]`` output embedding (classifier) matrix.
      labels: ``[...]`` integer targets in ``[0, V)`` or ``ignore_index``; any other value in a
        counted token gives a NaN loss (as JAX's out-of-bounds gather), ``lossjax.checked`` names it.
      bias: optional ``[V]`` output bias (given per call).
      ignore_index: label value of tokens to ignore (PyTorch's ``-100``), an int; None ignores none.
      label_smoothing: ``a`` in ``[0, 1)``, mixes the target with the uniform
        distribution over the ``V`` classes.
      z_loss_weight: ``\lambda_z >= 0``, the weight of the auxiliary ``lse^2`` term (PaLM: ``1e-4``).
      logit_softcap: ``c > 0``: logits become ``c * tanh(logits / c)`` (Gemma 2).
      block_size: vocabulary block, a positive int (default: from
        ``memory_budget``; multiples of 128 recommended).
      memory_budget: bytes for one float32 logit tile (default 512 MiB), used
        to pick the block size (``lossjax._fused.tile_sizes``). A smaller
        budget is the memory-lean setting.
      vocab_axis_name: name of a ``shard_map`` axis over which ``weight`` (and
        ``bias``) are sharded along the vocabulary; ``labels`` are global
        indices and ``hidden`` is replicated over that axis. Each shard streams
        its local blocks; the log-sum-exp is combined with ``pmax``/``psum`` and
        the hidden gradient with one ``psum``.
      where: optional boolean mask broadcastable to ``labels.shape``.

    Returns:
      Per-token losses of shape ``labels.shape`` (0 for ignored or masked
      tokens); float32 for half-precision inputs.

    Paper: Wijmans, Huval, Hertzberg, Koltun, Krähenbühl, "Cut Your Losses in
    Large-Vocabulary Language Models", 2024, arXiv:2411.09009; z-loss: Chowdhery
    et al., "PaLM", 2022, arXiv:2204.02311; soft-capping: Gemma Team, "Gemma 2",
    2024, arXiv:2408.00118.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> hidden = jnp.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
      >>> weight = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
      >>> labels = jnp.array([0, 1, -100])
      >>> lossjax.losses.linear_cross_entropy(hidden, weight, labels).round(4)
      Array([0.5514, 0.2395, 0.    ], dtype=float32)
    """
    return _linear_ce(
        "linear_cross_entropy",
        hidden,
        weight,
        labels,
        bias=bias,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        z_loss_weight=z_loss_weight,
        logit_softcap=logit_softcap,
        reduction="none",
        with_lse=False,
        mode="recompute",
        block_size=block_size,
        chunk_size=None,
        memory_budget=memory_budget,
        vocab_axis_name=vocab_axis_name,
        where=where,
    )


@register(
    "linear_cross_entropy_with_lse",
    family=FAMILY,
    kind="per_example",
    formula=_LCE_FORMULA + ";  aux: lse_i = LSE_v z_{iv}",
    paper=_LCE_PAPER,
    reference=_LCE_REFERENCE,
    sample=_lce_sample,
    runtime=("bias",),
    has_aux=True,
)
def linear_cross_entropy_with_lse(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    ignore_index: int | None = -100,
    label_smoothing: float = 0.0,
    z_loss_weight: float = 0.0,
    logit_softcap: float | None = None,
    block_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    vocab_axis_name: str | None = None,
    where: ArrayLike | None = None,
) -> tuple[Array, Array]:
    r"""Per-token fused cross-entropy and the per-token log-sum-exp of the (capped) logits, both differentiable.

    .. math::
        \mathrm{lse}_i = \log\textstyle\sum_v e^{z_{iv}},\qquad
        \ell_i = \mathrm{lse}_i - (1-a)\,z_{i y_i} - \tfrac{a}{V}\textstyle\sum_v z_{iv}
                 + \lambda_z\,\mathrm{lse}_i^2

    with ``z`` as in :func:`linear_cross_entropy`, computed by the same
    streaming pass. The log-sum-exp is what a z-loss, a logit-norm monitor or a
    distillation term needs without the ``[N, V]`` logits; gradients flow
    through both outputs (the backward pass adds ``g_lse * softmax``).

    Args:
      hidden, weight, labels, bias, ignore_index, label_smoothing,
        z_loss_weight, logit_softcap, block_size, memory_budget,
        vocab_axis_name, where: as in :func:`linear_cross_entropy`.

    Returns:
      ``(losses, lse)``, each of shape ``labels.shape`` (0 for ignored or
      masked tokens); float32 for half-precision inputs.

    Paper: Wijmans et al., "Cut Your Losses in Large-Vocabulary Language
    Models", 2024, arXiv:2411.09009.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> hidden = jnp.array([[1.0, 0.0], [0.0, 2.0]])
      >>> weight = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
      >>> losses, lse = lossjax.losses.linear_cross_entropy_with_lse(hidden, weight, jnp.array([0, 1]))
      >>> losses.round(4), lse.round(4)
      (Array([0.5514, 0.2395], dtype=float32), Array([1.5514, 2.2395], dtype=float32))
    """
    return _linear_ce(
        "linear_cross_entropy_with_lse",
        hidden,
        weight,
        labels,
        bias=bias,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        z_loss_weight=z_loss_weight,
        logit_softcap=logit_softcap,
        reduction="none",
        with_lse=True,
        mode="recompute",
        block_size=block_size,
        chunk_size=None,
        memory_budget=memory_budget,
        vocab_axis_name=vocab_axis_name,
        where=where,
    )


@register(
    "reduced_linear_cross_entropy",
    family=FAMILY,
    kind="batch",
    formula="mean (or sum) over counted tokens of " + _LCE_FORMULA,
    paper=_LCE_PAPER,
    reference=_LCE_REFERENCE,
    sample=_reduced_lce_sample,
    runtime=("bias",),
)
def reduced_linear_cross_entropy(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    reduction: str = "mean",
    bias: ArrayLike | None = None,
    ignore_index: int | None = -100,
    label_smoothing: float = 0.0,
    z_loss_weight: float = 0.0,
    logit_softcap: float | None = None,
    mode: str = "auto",
    block_size: int | None = None,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    vocab_axis_name: str | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""The fused cross-entropy reduced to a scalar (mean over counted tokens, or sum), fastest gradient.

    .. math::
        \mathcal L_\mathrm{mean} = \frac{\sum_i m_i \ell_i}{\max(1, \sum_i m_i)},\qquad
        \mathcal L_\mathrm{sum} = \textstyle\sum_i m_i \ell_i

    with ``\ell_i`` the per-token loss of :func:`linear_cross_entropy` and
    ``m_i`` 1 for tokens that are neither ignored nor masked. A scalar
    cotangent lets the gradient be computed during the forward pass
    (``mode="in_forward"``: token chunks ``[Nc, V]``, 6 N D V FLOPs, the
    naive head's cost, plus a float32 ``[V, D]`` weight-gradient
    accumulator); ``mode="recompute"`` streams vocabulary blocks twice (8 N D V
    FLOPs, least memory). ``"auto"`` takes the in-forward path when the weight
    is not vocab-sharded and the accumulator fits ``memory_budget``.

    Args:
      hidden, weight, labels, bias, ignore_index, label_smoothing,
        z_loss_weight, logit_softcap, block_size, memory_budget,
        vocab_axis_name, where: as in :func:`linear_cross_entropy`.
      reduction: ``"mean"`` (over counted tokens, ``sum / max(count, 1)``) or ``"sum"``.
      mode: ``"auto"``, ``"in_forward"`` (6NDV; not with ``vocab_axis_name``)
        or ``"recompute"`` (8NDV, least memory).
      chunk_size: token chunk of the in-forward path, a positive int (default:
        from ``memory_budget``).

    Returns:
      A scalar (0 when every token is ignored or masked); float32 for
      half-precision inputs.

    Paper: Wijmans et al., "Cut Your Losses in Large-Vocabulary Language
    Models", 2024, arXiv:2411.09009; z-loss: Chowdhery et al., "PaLM", 2022,
    arXiv:2204.02311.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> hidden = jnp.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
      >>> weight = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
      >>> labels = jnp.array([0, 1, -100])
      >>> float(lossjax.losses.reduced_linear_cross_entropy(hidden, weight, labels, reduction="sum").round(4))
      0.791
      >>> float(lossjax.losses.reduced_linear_cross_entropy(hidden, weight, labels).round(4))  # mean of 2 tokens
      0.3955
    """
    fn = "reduced_linear_cross_entropy"
    C.check_one_of(fn, "reduction", reduction, SCALAR_REDUCTIONS)
    return _linear_ce(
        fn,
        hidden,
        weight,
        labels,
        bias=bias,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        z_loss_weight=z_loss_weight,
        logit_softcap=logit_softcap,
        reduction=reduction,
        with_lse=False,
        mode=mode,
        block_size=block_size,
        chunk_size=chunk_size,
        memory_budget=memory_budget,
        vocab_axis_name=vocab_axis_name,
        where=where,
    )


# ----------------------- token and sequence log-probs -----------------------


def _token_log_probs_sample() -> Sample:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 4, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=(3, 4)).astype(np.int32)
    return Sample(args=(logits, labels), class_axis=True)


@register(
    "token_log_probs",
    family=FAMILY,
    kind="per_example",
    formula="log softmax(z)_y (NaN for labels outside [0, V), 0 where masked)",
    reference="trl 1.16 trainer/utils.py::selective_log_softmax (log_softmax + gather)",
    sample=_token_log_probs_sample,
)
def token_log_probs(logits: ArrayLike, labels: ArrayLike, *, where: ArrayLike | None = None) -> Array:
    r"""Log-probability of each label token: ``log softmax(logits)[..., label]``.

    .. math:: \log p_t = z_{t, y_t} - \log\sum_v e^{z_{t, v}}

    A label outside ``[0, V)`` gives NaN, as JAX's out-of-bounds gather
    (``lossjax.checked`` names it); positions masked out by ``where`` (prompt
    tokens, padding, the ``-100`` ignore index) may carry any label and give
    exactly 0, so a masked sum over tokens needs no extra gather. The target
    logit is picked by comparing an iota with the label (no gather on the
    vocabulary axis). For large vocabularies, ``-lossjax.losses.linear_cross_entropy(hidden,
    weight, labels)`` gives the same values without materializing the logits.

    Args:
      logits: ``[..., V]`` unnormalized scores.
      labels: integer token ids ``[...]``.
      where: optional mask broadcastable to ``[...]`` along its leading axes
        (e.g. ``labels != -100``); masked positions give 0.

    Returns:
      ``[...]`` per-token log-probabilities (float32 for half-precision logits).

    Paper: none (a helper); the log-likelihood used by every sequence-level
    preference loss (e.g. DPO, Rafailov et al., 2023, arXiv:2305.18290).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> labels = jnp.array([[1, -100]])
      >>> lossjax.losses.token_log_probs(jnp.zeros((1, 2, 4)), labels, where=labels != -100).round(4)
      Array([[-1.3863,  0.    ]], dtype=float32)
    """
    fn = "token_log_probs"
    logits = C.check_array(fn, "logits", logits, min_ndim=1, dtype="float")
    labels = C.check_array(fn, "labels", labels, dtype="int")
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"{fn}: `labels` must have shape logits.shape[:-1]={logits.shape[:-1]}, got {labels.shape}.")
    dtype = C.compute_dtype(logits)
    mask = C.prepare_where(fn, where, labels.shape)
    q = C.class_targets(fn, logits, labels, dtype, where=mask)  # checks the labels in debug mode; else unused
    z = C.fill_masked(C.as_compute(logits, dtype), mask)
    # z_y - log sum exp(z) from row reductions: nothing [..., V] is stored for the backward pass
    # (log_softmax + gather kept 3 arrays of the logits' size; trl's selective_log_softmax keeps 1-2).
    t = label_log_softmax(SoftmaxInputs(z, q, mask, dtype, True, labels))
    lp = jnp.where(t.ok, t.target - t.log_norm, jnp.asarray(jnp.nan, dtype))
    return C.zero_masked(lp, mask)


def _sequence_log_probs_sample() -> Sample:
    rng = np.random.default_rng(1)
    log_probs = -rng.uniform(0.1, 3.0, size=(4, 5)).astype(np.float32)
    token_where = np.ones((4, 5), bool)
    token_where[:, 3:] = False
    token_where[2, 1:] = False
    # A token mask is a variant, not a kwarg: the fuzz property changes the batch size of the args.
    return Sample(
        args=(log_probs,),
        where=False,
        variants=({"average": True}, {"token_where": token_where}, {"token_where": token_where, "average": True}),
    )


@register(
    "sequence_log_probs",
    family=FAMILY,
    kind="function",
    formula="sum_t m_t log p_t   (or / sum_t m_t with average=True)",
    reference="trl DPOTrainer (per_token_logps * completion_mask).sum(1)",
    sample=_sequence_log_probs_sample,
    runtime=("token_where",),
)
def sequence_log_probs(
    token_log_probs: ArrayLike, *, token_where: ArrayLike | None = None, average: bool = False
) -> Array:
    r"""Per-sequence log-probability from per-token log-probabilities and a token mask.

    .. math:: \log \pi(y) = \sum_t m_t \log p_t \qquad
              \text{(average: } \textstyle\sum_t m_t \log p_t / \max(1, \sum_t m_t)\text{)}

    Masked tokens are replaced by 0 before the sum, so padding may hold any
    value (``-inf``, NaN) without affecting the value or the gradient.

    Args:
      token_log_probs: ``[B, T]`` per-token log-probabilities.
      token_where: optional ``[B, T]`` token mask ``m`` (bool or 0/1); True/1 counts the token.
      average: divide by the number of counted tokens (length normalization,
        as SimPO, ORPO and IPO use); an all-masked row gives 0.

    Returns:
      ``[B]`` per-sequence log-probabilities.

    Paper: none (a helper); the sequence log-likelihood of DPO (Rafailov et
    al., 2023, arXiv:2305.18290); length normalization of SimPO (Meng et al.,
    2024, arXiv:2405.14734).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.array([[-1.0, -2.0, jnp.nan]])
      >>> m = jnp.array([[True, True, False]])
      >>> lossjax.losses.sequence_log_probs(lp, token_where=m)
      Array([-3.], dtype=float32)
      >>> lossjax.losses.sequence_log_probs(lp, token_where=m, average=True)
      Array([-1.5], dtype=float32)
    """
    fn = "sequence_log_probs"
    x = C.check_array(fn, "token_log_probs", token_log_probs, ndim=2, dtype="float")
    m = token_mask_of(fn, "token_where", token_where, x, "token_log_probs")
    return reduce_sequence(x, m, None, C.compute_dtype(x), average=average)


# --------------------------------- z-losses ---------------------------------


def _z_sample() -> Sample:
    rng = np.random.default_rng(0)
    return Sample(args=((rng.normal(size=(6, 5)) * 2).astype(np.float32),), class_axis=True)


@register(
    "z_loss",
    aliases=("auxiliary_z_loss", "palm_z_loss", "logsumexp_z_penalty"),
    family=FAMILY,
    kind="per_example",
    formula="(log sum_v exp z_v)^2   (weighted in the sum: CE + 1e-4 * z_loss, PaLM)",
    paper="PaLM: Scaling Language Modeling with Pathways (2022, arXiv:2204.02311)",
    reference="closed form; PaLM/T5X z_loss = z_loss_coef * logsumexp(logits)^2 (t5x.losses.cross_entropy_with_logits)",
    sample=_z_sample,
)
def z_loss(logits: ArrayLike, *, where: ArrayLike | None = None) -> Array:
    r"""PaLM's auxiliary z-loss, unweighted: the squared log-normalizer ``(\log Z)^2``.

    .. math:: \ell = \big(\log\textstyle\sum_v e^{z_v}\big)^2

    It keeps the softmax normalizer ``\log Z`` close to 0. The weight belongs
    to the composed sum, not to this function: PaLM's recipe is
    ``softmax_cross_entropy + 1e-4 * z_loss``
    (``lossjax.compose("softmax_cross_entropy + 1e-4 * z_loss")``). The fused
    :func:`linear_cross_entropy` has the same term as its ``z_loss_weight=``
    option (computed from its streamed log-sum-exp, without the ``[N, V]``
    logits); use this function when the logits exist anyway.

    Args:
      logits: ``[..., V]`` unnormalized scores.
      where: optional mask broadcastable to ``[...]``.

    Returns:
      ``[...]`` per-token penalties ``(\log Z)^2`` (float32 for half-precision logits).

    Paper: Chowdhery et al., "PaLM: Scaling Language Modeling with Pathways",
    2022, arXiv:2204.02311 (Sec. 5, "z_loss").

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.z_loss(jnp.zeros((2, 4))).round(4)  # (log 4)^2
      Array([1.9218, 1.9218], dtype=float32)
      >>> logits, labels = jnp.zeros((2, 4)), jnp.array([0, 1])
      >>> ce = lossjax.losses.softmax_cross_entropy(logits, labels)
      >>> (ce + 1e-4 * lossjax.losses.z_loss(logits)).round(4)  # the PaLM recipe, per token
      Array([1.3865, 1.3865], dtype=float32)
    """
    fn = "z_loss"
    logits = C.check_array(fn, "logits", logits, min_ndim=1, dtype="float")
    dtype = C.compute_dtype(logits)
    mask = C.prepare_where(fn, where, logits.shape[:-1])
    z = C.fill_masked(C.as_compute(logits, dtype), mask)
    lse = jax.nn.logsumexp(z, axis=-1)
    return C.zero_masked(jnp.square(lse), mask)


def _spherical_sample() -> Sample:
    rng = np.random.default_rng(0)
    logits = (rng.normal(size=(6, 5)) * 2).astype(np.float32)
    labels = rng.integers(0, 5, size=(6,)).astype(np.int32)
    # Not a softmax: -inf logits have no meaning here (the standardization needs finite outputs), so
    # the class-axis edge cases are spelled out without it: 1e4 beside 1e-4 in every row, confidently
    # wrong rows, constant rows (sigma = 0: the epsilon floor).
    mixed = logits.copy()
    mixed[:, 0], mixed[:, 1] = 1e4, 1e-4
    wrong = logits.copy()
    wrong[np.arange(6), labels] = -20.0
    wrong[np.arange(6), (labels + 1) % 5] = 20.0
    extremes = ((mixed, labels), (wrong, labels), (np.zeros_like(logits), labels), (logits * 1e4, labels))
    variants = ({"sharpness": 2.0, "offset": 0.5}, {"sharpness": 0.3, "offset": 3.0})
    return Sample(args=(logits, labels), extremes=extremes, variants=variants)


@register(
    "spherical_z_loss",
    aliases=("z_normalized_loss", "brebisson_z_loss"),
    family=FAMILY,
    kind="per_example",
    formula="(1/a) softplus(a (b - z_y)),  z = (o - mean(o)) / std(o),  a = sharpness, b = offset",
    paper="The Z-loss: a shift and scale invariant classification loss belonging to the Spherical Family "
    "(2016, arXiv:1604.08859)",
    reference="closed form from the paper (no official code); hand-derived values in the tests",
    sample=_spherical_sample,
)
def spherical_z_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    sharpness: float = 1.0,
    offset: float = 1.0,
    epsilon: float = 1e-6,
    where: ArrayLike | None = None,
) -> Array:
    r"""The Z-loss of de Brébisson & Vincent: softplus of the standardized target score.

    .. math::
        z_c = \frac{o_c - \mu(o)}{\sigma(o)},\qquad
        \ell(o, y) = \frac{1}{a}\log\big(1 + e^{a(b - z_y)}\big)

    with ``a`` the ``sharpness`` and ``b`` the ``offset`` (the paper's names are ``a`` and ``b``).
    Invariant to shifting and (positively) scaling the outputs, and a member of
    the spherical family: it depends on ``o`` only through ``\sum o``,
    ``\sum o^2`` and ``o_y``. Not PaLM's ``\log^2 Z`` penalty (that is
    :func:`z_loss`). With a target distribution ``q`` the loss is
    ``\sum_c q_c \ell(o, c)``.

    Args:
      logits: ``[..., C]`` outputs ``o``.
      labels: integer ``[...]`` or a target distribution ``[..., C]``.
      sharpness: ``a > 0``.
      offset: ``b``, a finite number: ``z_y`` is pushed past ``b`` standard deviations.
        The paper tunes ``a`` and ``b`` per task by grid search and publishes
        no universal default; ``a = b = 1`` here are neutral starting values.
      epsilon: floor of ``\sigma`` (constant outputs give ``z = 0``, finite gradients).
      where: optional mask broadcastable to ``[...]``.

    Returns:
      ``[...]`` per-example losses.

    Paper: de Brébisson, Vincent, "The Z-loss: a shift and scale invariant
    classification loss belonging to the Spherical Family", 2016, arXiv:1604.08859.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.spherical_z_loss(jnp.array([[1.0, -1.0]]), jnp.array([0]), offset=1.0).round(4)
      Array([0.6931], dtype=float32)
    """
    fn = "spherical_z_loss"
    logits = C.check_array(fn, "logits", logits, min_ndim=1, dtype="float")
    C.check_positive(fn, "sharpness", sharpness)
    C.check_positive(fn, "epsilon", epsilon)
    if not isinstance(offset, jax.core.Tracer) and not (isinstance(offset, (int, float)) and math.isfinite(offset)):
        raise ValueError(f"{fn}: `offset` must be a finite number, got {offset!r}.")
    dtype = C.compute_dtype(logits)
    mask = C.prepare_where(fn, where, logits.shape[:-1])
    q = C.fill_masked(C.class_targets(fn, logits, labels, dtype, where=mask), mask)
    o = C.fill_masked(C.as_compute(logits, dtype), mask)
    centered = o - jnp.mean(o, axis=-1, keepdims=True)
    std = C.safe_norm(centered, axis=-1, keepdims=True) / math.sqrt(logits.shape[-1])
    z = centered / jnp.maximum(std, jnp.asarray(epsilon, dtype))
    a_, b_ = jnp.asarray(sharpness, dtype), jnp.asarray(offset, dtype)
    if C.has_integer_labels(fn, logits, labels):
        # Only the target's standardized score is needed: one softplus per example.
        z_y = jnp.sum(q * z, axis=-1)
        return C.zero_masked(jax.nn.softplus(a_ * (b_ - z_y)) / a_, mask)
    per_class = jax.nn.softplus(a_ * (b_ - z)) / a_
    return C.zero_masked(jnp.sum(q * per_class, axis=-1), mask)


# ---------------------------- number token loss -----------------------------


def _ntl_sample() -> Sample:
    rng = np.random.default_rng(1)
    values = np.array([np.nan, 0.0, 1.0, 2.0, 3.0, np.nan, 4.0, 5.0], np.float32)
    logits = rng.normal(size=(3, 4, 8)).astype(np.float32)
    labels = np.array([[1, 2, 0, 7], [6, 5, 3, 4], [2, 2, 1, 0]], np.int32)
    return Sample(
        args=(logits, labels, values), batched_argnums=(0, 1), class_axis=True, variants=({"variant": "was"},)
    )


@register(
    "number_token_loss",
    aliases=("ntl",),
    family=FAMILY,
    kind="per_example",
    formula="mse: (sum_k p_k v_k - y)^2;  was: sum_k p_k |v_k - y|;  p = softmax over the number tokens",
    paper="Regress, Don't Guess -- A Regression-like Loss on Number Tokens for Language Models "
    "(2024, arXiv:2411.02083)",
    reference="tum-ai/number-token-loss src/ntl/loss_functions/number_token_loss.py (NTL-MSE), "
    "base_number_token_loss.py / wasserstein_distance_number_token_loss.py (NTL-WAS)",
    sample=_ntl_sample,
    allow_nonfinite=("token_values",),  # NaN marks the non-number tokens
)
def number_token_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    token_values: ArrayLike,
    *,
    variant: str = "mse",
    where: ArrayLike | None = None,
) -> Array:
    r"""Number Token Loss: a regression loss on the numeric value of number tokens.

    With ``p`` the softmax of the logits restricted to the number tokens
    ``\mathcal N`` (tokens whose ``token_values`` entry is not NaN) and ``y``
    the value of the label token:

    .. math::
        \text{NTL-MSE} = \Big(\sum_{k\in\mathcal N} p_k v_k - y\Big)^2,\qquad
        \text{NTL-WAS} = \sum_{k\in\mathcal N} p_k\,|v_k - y|

    NTL-WAS is the Wasserstein-1 distance between the predicted distribution
    over values and the point mass at ``y`` (for the digits 0-9 it equals the
    reference's CDF form ``\sum |F_p - F_y|``). Positions whose label is not a
    number token get 0; the reference averages over number positions only. A
    label outside ``[0, V)`` (e.g. the ignore index -100) gives NaN unless
    masked out by ``where`` (as JAX's out-of-bounds gather; ``lossjax.checked``
    names it). Train with ``CE + \lambda\,NTL``
    (reference ``\lambda = 0.5``, or 0.3). For a large vocabulary, only the
    number tokens' logits are needed: slice the head (``hidden @
    weight[number_ids].T``) and pass ``token_values[number_ids]`` with labels
    remapped to that slice.

    Args:
      logits: ``[..., V]``.
      labels: integer token ids ``[...]``.
      token_values: ``[V]`` numeric value of each token, NaN for non-number tokens.
      variant: ``"mse"`` or ``"was"``.
      where: optional mask broadcastable to ``[...]``.

    Returns:
      ``[...]`` per-token losses (0 where the label is not a number token).

    Paper: Zausinger et al., "Regress, Don't Guess -- A Regression-like Loss on
    Number Tokens for Language Models", ICML 2025, arXiv:2411.02083.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> values = jnp.array([jnp.nan, 0.0, 1.0, 2.0])
      >>> logits = jnp.array([[5.0, 0.0, 0.0, 0.0]])      # uniform over the digits 0, 1, 2
      >>> lossjax.losses.number_token_loss(logits, jnp.array([3]), values).round(4)
      Array([1.], dtype=float32)
      >>> lossjax.losses.number_token_loss(logits, jnp.array([3]), values, variant="was").round(4)
      Array([1.], dtype=float32)
    """
    fn = "number_token_loss"
    logits = C.check_array(fn, "logits", logits, min_ndim=1, dtype="float")
    labels = C.check_array(fn, "labels", labels, dtype="int")
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"{fn}: `labels` must have shape logits.shape[:-1]={logits.shape[:-1]}, got {labels.shape}.")
    v = logits.shape[-1]
    token_values = C.check_array(fn, "token_values", token_values, shape=(v,), dtype="float")
    C.check_one_of(fn, "variant", variant, ("mse", "was"))
    dtype = C.compute_dtype(logits)
    mask = C.prepare_where(fn, where, logits.shape[:-1])
    values = C.as_compute(token_values, dtype)
    bshape = (1,) * (logits.ndim - 1) + (v,)
    is_num = jnp.reshape(~jnp.isnan(values), bshape)
    vals = jnp.reshape(jnp.where(jnp.isnan(values), jnp.zeros((), dtype), values), bshape)
    z = C.fill_masked(C.as_compute(logits, dtype), mask)
    # Softmax restricted to the number tokens, safe when a row or the vocabulary has none.
    zmax = jnp.max(jnp.where(is_num, z, -jnp.inf), axis=-1, keepdims=True)
    zmax = jax.lax.stop_gradient(jnp.where(jnp.isfinite(zmax), zmax, jnp.zeros((), dtype)))
    e = jnp.where(is_num, jnp.exp(jnp.where(is_num, z, zmax) - zmax), jnp.zeros((), dtype))
    denom = jnp.sum(e, axis=-1, keepdims=True)
    p = e / jnp.maximum(denom, jnp.asarray(jnp.finfo(dtype).tiny, dtype))
    y = jnp.take(values, labels, mode="fill", fill_value=jnp.nan)
    counted = jnp.ones(labels.shape, bool) if mask is None else mask
    in_range = (labels >= 0) & (labels < v)
    C.debug_check(jnp.all(in_range | ~counted), f"{fn}: integer labels must lie in [0, {v})")
    valid = ~jnp.isnan(y) & counted
    y = jnp.where(valid, y, jnp.zeros((), dtype))
    if variant == "mse":
        loss = jnp.square(jnp.sum(p * vals, axis=-1) - y)
    else:
        loss = jnp.sum(p * jnp.abs(vals - y[..., None]), axis=-1)
    loss = jnp.where(valid, loss, jnp.zeros((), dtype))
    # An out-of-range label of a counted position is NaN, as JAX's out-of-bounds gather.
    return jnp.where(counted & ~in_range, jnp.asarray(jnp.nan, dtype), loss)


# ------------------------------------ EMO ------------------------------------


def _emo_sample() -> Sample:
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(6, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=(6,)).astype(np.int32)
    emb = rng.normal(size=(5, 3)).astype(np.float32)
    # The gradient is a surrogate by design (stop_gradient of the CE/EMO ratio), so finite
    # differences of the value cannot match it; tests/losses/test_language.py checks it against the reference.
    return Sample(
        args=(logits, labels, emb),
        batched_argnums=(0, 1),
        surrogate_grad=True,
        class_axis=True,
        # At the mixed extreme (a logit of 1e4 off the label) the ratio CE/EMO is ~1e4 and multiplies the
        # float32 rounding of dEMO (exactly 0 there): 2e-4 relative on one gradient entry.
        value_tol={"rtol": 5e-4, "atol": 1e-5},
    )


@register(
    "earth_mover_distance_optimization",
    aliases=("emo", "emo_loss"),
    family=FAMILY,
    kind="per_example",
    formula="0.5 (CE + sg(CE / (EMO + eps)) EMO),  EMO = 1 - <E^T p, E^T q>,  E row-normalized (frozen)",
    paper="EMO: Earth Mover Distance Optimization for Auto-Regressive Language Modeling (2023, arXiv:2310.04691)",
    reference="DRSY/EMO emo_patch.py / language_modeling/gpt2.py (mode 'emo')",
    sample=_emo_sample,
)
def earth_mover_distance_optimization(
    logits: ArrayLike,
    labels: ArrayLike,
    proxies: ArrayLike,
    *,
    epsilon: float = 1e-10,
    where: ArrayLike | None = None,
) -> Array:
    r"""EMO: cross-entropy mixed with a differentiable upper bound of the earth mover distance.

    With the cost ``C(i, j) = 1 - \cos(e_i, e_j)`` between token embeddings
    ``e`` (the frozen, row-normalized LM-head matrix ``E``), the target
    distribution ``p`` (one-hot) and the model distribution ``q = softmax(z)``,
    the EMD upper bound is ``\sum_{ij} p_i q_j C(i, j)``:

    .. math::
        \mathrm{EMO} = 1 - \langle E^\top p,\ E^\top q\rangle,\qquad
        \ell = \tfrac12\Big(\mathrm{CE}
            + \mathrm{sg}\Big[\frac{\mathrm{CE}}{\mathrm{EMO} + \epsilon}\Big]\mathrm{EMO}\Big)

    The value equals the cross-entropy; the gradient mixes CE's with EMO's,
    rescaled to the same magnitude (the official code's ``emo`` mode). The
    proxies are a constant (``stop_gradient``): pass a frozen copy of the
    LM head (the reference clones it at initialization).

    Args:
      logits: ``[..., V]``.
      labels: integer ``[...]`` or a target distribution ``[..., V]``.
      proxies: ``[V, D]`` one cost embedding per token (the frozen LM-head
        rows ``E``; rows are L2-normalized here).
      epsilon: added to EMO in the ratio (reference ``1e-10``).
      where: optional mask broadcastable to ``[...]`` (e.g. ``labels != -100``).

    Returns:
      ``[...]`` per-token losses; the reference averages them over unmasked tokens.

    Paper: Ren et al., "EMO: Earth Mover Distance Optimization for
    Auto-Regressive Language Modeling", ICLR 2024, arXiv:2310.04691.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.array([[2.0, 0.0, -1.0]])
      >>> emb = jnp.eye(3)
      >>> lossjax.losses.earth_mover_distance_optimization(logits, jnp.array([0]), emb).round(4)
      Array([0.1698], dtype=float32)
    """
    fn = "earth_mover_distance_optimization"
    logits = C.check_array(fn, "logits", logits, min_ndim=1, dtype="float")
    v = logits.shape[-1]
    proxies = C.check_array(fn, "proxies", proxies, ndim=2, dtype="float")
    if proxies.shape[0] != v:
        raise ValueError(f"{fn}: `proxies` must have shape ({v}, D) to match logits [..., {v}], got {proxies.shape}.")
    C.check_positive(fn, "epsilon", epsilon)
    dtype = C.compute_dtype(logits, proxies)
    mask = C.prepare_where(fn, where, logits.shape[:-1])
    p = C.fill_masked(C.class_targets(fn, logits, labels, dtype, where=mask), mask)
    z = C.fill_masked(C.as_compute(logits, dtype), mask)
    e = jax.lax.stop_gradient(C.as_compute(proxies, dtype))
    norm = C.safe_norm(e, axis=-1, keepdims=True)
    e = e / jnp.maximum(norm, jnp.asarray(jnp.finfo(dtype).tiny, dtype))
    # EMO = sum_ij p_i q_j (1 - <e_i, e_j>) with 1 - <e_i, e_j> = |e_i - e_j|^2 / 2 + r_i + r_j for rows
    # of norm 1 (r = 0) or 0 (r = 1/2: a zero row costs 1 against every token, as 1 - cos = 1 - 0).
    # The squared distances are translation invariant, so they are taken about the mean row: with
    # near-identical embeddings EMO is then tiny and accurate instead of float32 rounding noise of
    # 1 - <p_repr, q_repr>, which the CE/EMO ratio would amplify into inf and NaN.
    e = e - jnp.mean(e, axis=0, keepdims=True)
    sq = jnp.sum(jnp.square(e), axis=-1) + jnp.where(norm[:, 0] > 0, jnp.zeros((), dtype), jnp.ones((), dtype))
    logq = jax.nn.log_softmax(z, axis=-1)
    q = jnp.exp(logq)
    # 0 * log 0 = 0 for a class of probability 0 whose logit is -inf (an out-of-range label's NaN stays NaN).
    mle = -jnp.sum(jnp.where(p == 0, jnp.zeros((), dtype), p * logq), axis=-1)
    if C.has_integer_labels(fn, logits, labels):
        # E^T onehot(y) is the label's embedding row: a gather, not a [N, V] x [V, D] matmul.
        y = C.fill_masked(jnp.asarray(labels), mask, 0)
        p_repr = jnp.take(e, y, axis=0, mode="fill", fill_value=0)
        p_sq = jnp.take(sq, y, axis=0, mode="fill", fill_value=0)
    else:
        p_repr = jnp.einsum("...v,vd->...d", p, e)
        p_sq = jnp.einsum("...v,v->...", p, sq)
    q_repr = jnp.einsum("...v,vd->...d", q, e)
    q_sq = jnp.einsum("...v,v->...", q, sq)
    emo = jnp.maximum(0.5 * (p_sq + q_sq) - jnp.sum(p_repr * q_repr, axis=-1), jnp.zeros((), dtype))
    ratio = jax.lax.stop_gradient(mle / (emo + jnp.asarray(epsilon, dtype)))
    # Value: exactly the cross-entropy; gradient: (dCE + ratio dEMO) / 2, as the reference.
    sg = jax.lax.stop_gradient
    return C.zero_masked(mle + 0.5 * (ratio * (emo - sg(emo)) - (mle - sg(mle))), mask)


# ------------------------ loss-based sample reweighting ----------------------

_VARIANTS = ("linupper", "quadratic", "extremes", "upper")


def _variant_f(h: Array, variant: str, delta: Array) -> Array:
    if variant == "linupper":
        return jnp.minimum(h + delta, delta)
    if variant == "quadratic":
        return 1 - jnp.square(h) / jnp.square(delta)
    if variant == "extremes":
        return jnp.abs(h)
    return 0.5 * h + 0.5 * delta  # "upper"


def _sample_weights(fn, losses, variant, temperature, delta, where, axis_name):
    losses = C.check_array(fn, "losses", losses, ndim=1, dtype="float")
    C.check_one_of(fn, "variant", variant, _VARIANTS)
    C.check_positive(fn, "temperature", temperature)
    C.check_positive(fn, "delta", delta)
    dtype = C.compute_dtype(losses)
    mask = C.prepare_where(fn, where, losses.shape)
    valid = jnp.ones(losses.shape, bool) if mask is None else mask
    x = C.fill_masked(C.as_compute(losses, dtype), mask)
    l_ = jax.lax.stop_gradient(x)
    lo = jnp.min(jnp.where(valid, l_, jnp.inf), initial=jnp.inf)
    hi = jnp.max(jnp.where(valid, l_, -jnp.inf), initial=-jnp.inf)
    if axis_name is not None:
        lo = jax.lax.pmin(lo, axis_name)
        hi = jax.lax.pmax(hi, axis_name)
    lo = jnp.where(jnp.isfinite(lo), lo, jnp.zeros((), dtype))
    hi = jnp.where(jnp.isfinite(hi), hi, jnp.zeros((), dtype))
    d = jnp.asarray(delta, dtype)
    span = jnp.maximum(hi - lo, jnp.asarray(1e-6, dtype))
    h = 2 * d * l_ / span - d * (hi + lo) / span
    s = _variant_f(h, variant, d) / jnp.asarray(temperature, dtype)
    smax = jnp.max(jnp.where(valid, s, -jnp.inf), initial=-jnp.inf)
    if axis_name is not None:
        smax = jax.lax.pmax(smax, axis_name)
    smax = jnp.where(jnp.isfinite(smax), smax, jnp.zeros((), dtype))
    w = jnp.where(valid, jnp.exp(jnp.where(valid, s, smax) - smax), jnp.zeros((), dtype))
    total = psum(jnp.sum(w), axis_name)
    w = w / jnp.maximum(total, jnp.asarray(jnp.finfo(dtype).tiny, dtype))
    return jax.lax.stop_gradient(w), x, mask


def _reweight_sample(where: bool = True) -> Sample:
    rng = np.random.default_rng(3)
    losses = rng.uniform(0.5, 4.0, size=(7,)).astype(np.float32)
    # The weights are constants (stop_gradient) by design, so the gradient is sum_i w_i dl_i, not the
    # derivative of the value; the tests check it exactly.
    variants = (
        {"variant": "quadratic"},
        {"variant": "extremes", "temperature": 0.3},
        {"variant": "upper", "delta": 2.0},
        {"variant": "linupper", "temperature": 0.5, "delta": 0.5},
    )
    return Sample(
        args=(losses,), where=where, diff_argnums=(0,) if where else (), surrogate_grad=True, variants=variants
    )


_REWEIGHT_PAPER = (
    "Dynamic Loss-Based Sample Reweighting for Improved Large Language Model Pretraining (2025, arXiv:2502.06733)"
)
_REWEIGHT_DOC_FORMULA = "w = softmax(f(h(l)) / r),  h(l) = delta (2 l - l_max - l_min) / (l_max - l_min)"


@register(
    "loss_based_sample_weights",
    family=FAMILY,
    kind="function",
    formula=_REWEIGHT_DOC_FORMULA,
    paper=_REWEIGHT_PAPER,
    reference="sowmaster/Sample-Level-Loss-Reweighting-ICLR-2025 README / src/trainer.py (h_func, f_func_*, g_func)",
    sample=lambda: _reweight_sample(where=False),
    runtime=("axis_name",),
)
def loss_based_sample_weights(
    losses: ArrayLike,
    *,
    variant: str = "linupper",
    temperature: float = 1.0,
    delta: float = 1.0,
    where: ArrayLike | None = None,
    axis_name: str | None = None,
) -> Array:
    r"""Per-sample weights from the current per-sample losses (constant; they sum to 1).

    .. math::
        h_i = \delta\,\frac{2\ell_i - \ell_{\max} - \ell_{\min}}{\max(\ell_{\max} - \ell_{\min}, 10^{-6})},\qquad
        w_i = \frac{\exp(f(h_i)/r)}{\sum_j \exp(f(h_j)/r)}

    with ``f`` the ``variant``: ``linupper`` ``\min(h + \delta, \delta)``
    (down-weights low-loss, redundant samples; the paper's default),
    ``quadratic`` ``1 - h^2/\delta^2`` (favors medium losses; "mid" in the
    code), ``extremes`` ``|h|``, ``upper`` ``(h + \delta)/2``. Min, max and the
    normalization run over the unmasked samples and, with ``axis_name``, over
    all devices (the reference all-gathers the losses).

    Args:
      losses: ``[B]`` per-sample losses (e.g. token-averaged cross-entropy).
      variant: ``f``: ``"linupper"``, ``"quadratic"``, ``"extremes"`` or ``"upper"``.
      temperature: ``r`` (the code's ``kl_reg``, 1.0); large ``r`` -> uniform
        weights (the paper warms up with a large ``r``).
      delta: ``\delta`` (1.0).
      where: optional ``[B]`` mask of real samples (others get weight 0).
      axis_name: mapped axis name to normalize across devices.

    Returns:
      ``[B]`` weights (``stop_gradient``) summing to 1 over all valid samples.

    Paper: Sow et al., "Dynamic Loss-Based Sample Reweighting for Improved
    Large Language Model Pretraining", ICLR 2025, arXiv:2502.06733.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> losses = jnp.array([1.0, 2.0, 3.0])
      >>> lossjax.losses.loss_based_sample_weights(losses, variant="quadratic").round(4)
      Array([0.2119, 0.5761, 0.2119], dtype=float32)
      >>> print(lossjax.losses.loss_based_sample_weights(losses).tolist())  # linupper  # doctest: +ELLIPSIS
      [0.155..., 0.422..., 0.422...]
    """
    w, _, _ = _sample_weights("loss_based_sample_weights", losses, variant, temperature, delta, where, axis_name)
    return w


@register(
    "loss_based_sample_reweighting",
    family=FAMILY,
    kind="batch",
    formula="sum_i sg(w_i) l_i,  " + _REWEIGHT_DOC_FORMULA,
    paper=_REWEIGHT_PAPER,
    reference="sowmaster/Sample-Level-Loss-Reweighting-ICLR-2025 README (loss = sum(weights * losses))",
    sample=_reweight_sample,
    runtime=("axis_name",),
)
def loss_based_sample_reweighting(
    losses: ArrayLike,
    *,
    variant: str = "linupper",
    temperature: float = 1.0,
    delta: float = 1.0,
    where: ArrayLike | None = None,
    axis_name: str | None = None,
) -> Array:
    r"""The reweighted batch loss ``\sum_i w_i \ell_i`` with :func:`loss_based_sample_weights`.

    .. math:: \mathcal L = \sum_i \mathrm{sg}(w_i)\,\ell_i,\qquad \textstyle\sum_i w_i = 1

    a weighted mean of the per-sample losses whose gradient is
    ``\sum_i w_i \nabla\ell_i``. With ``axis_name`` the weights are normalized
    over all devices and every device returns the loss of the whole batch
    (the losses are gathered, as the reference's ``all_gather``), like the
    other batch-level losses: under ``shard_map`` the gradient of
    ``pmean(loss)`` is the one-device gradient.

    Args:
      losses: ``[B]`` per-sample losses.
      variant, temperature, delta, where, axis_name: as in
        :func:`loss_based_sample_weights`.

    Returns:
      A scalar (0 for an all-masked batch).

    Paper: Sow et al., ICLR 2025, arXiv:2502.06733.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.loss_based_sample_reweighting(jnp.array([1.0, 2.0, 3.0])).round(4)
      Array(2.2669, dtype=float32)
    """
    fn = "loss_based_sample_reweighting"
    if axis_name is not None:  # the whole batch on every device (a [B] vector: cheap), as the reference
        losses = C.check_array(fn, "losses", losses, ndim=1, dtype="float")
        if where is not None:
            where = gather_batch(jnp.broadcast_to(jnp.asarray(where), losses.shape), axis_name)
        losses = gather_batch(losses, axis_name)
    w, x, _ = _sample_weights(fn, losses, variant, temperature, delta, where, None)
    return jnp.sum(w * x)


# -------------------------- pass@n coverage loss ----------------------------


def _pass_sample() -> Sample:
    rng = np.random.default_rng(4)
    lp = (-rng.uniform(0.02, 1.0, size=(6, 3))).astype(np.float32)
    extremes = ((np.zeros_like(lp),), (np.full_like(lp, -1e4),), (np.full_like(lp, -30.0),))
    return Sample(args=(lp,), extremes=extremes, variants=({"num_samples": 1}, {"num_samples": 4.5}))


@register(
    "pass_at_n_coverage_loss",
    aliases=("direct_coverage_optimization", "dco_loss"),
    family=FAMILY,
    kind="per_example",
    formula="-log(1 - (1 - p(y|x))^N),  p = exp(sum_t log p_t)",
    paper="Rethinking Fine-Tuning when Scaling Test-Time Compute: Limiting Confidence Improves Mathematical "
    "Reasoning (2025, arXiv:2502.07154)",
    reference="closed form from the paper (no official code); float64 numpy in the make_ script",
    sample=_pass_sample,
    runtime=("token_where",),
)
def pass_at_n_coverage_loss(
    log_probs: ArrayLike,
    *,
    num_samples: float = 16,
    token_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Direct Coverage Optimization: the negative log pass@N of a correct answer.

    .. math:: \ell = -\log\big(1 - (1 - p(y\mid x))^N\big)

    ``N = 1`` is the cross-entropy ``-\log p``; for larger ``N`` the loss
    stops pushing ``p`` toward 1 once ``N`` samples would find the answer
    (gradient factor ``N (1-p)^{N-1} p / (1 - (1-p)^N)`` of CE's).
    Computed in log space: ``-\mathrm{log1mexp}(N\,\mathrm{log1mexp}(\log p))``,
    and ``-\log N - \log p`` when ``N p < e^{-20}``; finite at ``\log p = 0``
    and at very negative ``\log p``.

    Args:
      log_probs: ``[B]`` sequence log-likelihoods ``\log p(y|x)``, or ``[B, T]``
        per-token log-probs (summed under ``token_where``).
      num_samples: the test-time sample budget ``N >= 1`` (a real number is
        accepted; the paper trains for the budget it evaluates at; 16 is a typical value).
      token_where: ``[B, T]`` token mask (bool or 0/1) for per-token inputs.
      where: optional ``[B]`` example mask.

    Returns:
      ``[B]`` per-example losses.

    Paper: Chen et al., "Rethinking Fine-Tuning when Scaling Test-Time Compute:
    Limiting Confidence Improves Mathematical Reasoning", 2025, arXiv:2502.07154.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.log(jnp.array([0.5, 0.1]))
      >>> lossjax.losses.pass_at_n_coverage_loss(lp, num_samples=1).round(4)  # the cross-entropy
      Array([0.6931, 2.3026], dtype=float32)
      >>> lossjax.losses.pass_at_n_coverage_loss(lp, num_samples=2).round(4)
      Array([0.2877, 1.6607], dtype=float32)
    """
    fn = "pass_at_n_coverage_loss"
    x = check_log_probs(fn, "log_probs", log_probs)
    C.check_positive(fn, "num_samples", num_samples)
    if not isinstance(num_samples, jax.core.Tracer) and float(num_samples) < 1:
        raise ValueError(f"{fn}: `num_samples` must be >= 1, got {num_samples!r}.")
    m = token_mask_of(fn, "token_where", token_where, x, "log_probs")
    dtype = C.compute_dtype(x)
    batch_mask = C.prepare_where(fn, where, x.shape[:1])
    lp = reduce_sequence(x, m, batch_mask, dtype, average=False)
    lp = jnp.where(lp <= 0, lp, jnp.zeros((), dtype))  # log p <= 0; the gradient at exactly 0 stays whole
    n_ = jnp.asarray(num_samples, dtype)
    log_n = jnp.log(n_)
    tail = lp + log_n < jnp.asarray(-20.0, dtype)
    lp_main = jnp.where(tail, jnp.asarray(-1.0, dtype), lp)
    main = -C.log1mexp(n_ * C.log1mexp(lp_main))
    # N = 1 is the cross-entropy -log p, also at p = 1 where log1mexp's derivative is -inf (gradient -1, not 0).
    main = jnp.where(n_ == 1, -lp_main, main)
    asym = -(log_n + jnp.where(tail, lp, jnp.asarray(-30.0, dtype)))
    return C.zero_masked(jnp.where(tail, asym, main), batch_mask)


# ------------------------------ probing (CCS) -------------------------------


def _ccs_sample() -> Sample:
    rng = np.random.default_rng(5)
    positive = rng.uniform(0.05, 0.95, size=(6,)).astype(np.float32)
    negative = np.clip(
        positive + rng.uniform(0.1, 0.3, size=(6,)) * np.where(np.arange(6) % 2, 1, -1), 0.01, 0.99
    ).astype(np.float32)
    extremes = ((np.zeros(6, np.float32), np.ones(6, np.float32)), (np.ones(6, np.float32), np.zeros(6, np.float32)))
    return Sample(args=(positive, negative), diff_argnums=(0, 1), extremes=extremes, fuzz_scaled=())


@register(
    "contrast_consistent_search_loss",
    aliases=("ccs_loss",),
    family=FAMILY,
    kind="per_example",
    formula="(p+ - (1 - p-))^2 + min(p+, p-)^2",
    paper="Discovering Latent Knowledge in Language Models Without Supervision (2022, arXiv:2212.03827)",
    reference="collin-burns/discovering_latent_knowledge CCS.get_loss (consistent + informative)",
    sample=_ccs_sample,
)
def contrast_consistent_search_loss(
    positive_probs: ArrayLike, negative_probs: ArrayLike, *, where: ArrayLike | None = None
) -> Array:
    r"""Contrast-Consistent Search (CCS): an unsupervised probe loss on contrast pairs.

    .. math:: \ell = \big(p^+ - (1 - p^-)\big)^2 + \min(p^+, p^-)^2

    for the probe's probabilities on a statement (``p^+``) and its negation
    (``p^-``): consistency (they should sum to 1) plus confidence (not both
    0.5). PA-CCS (polarity-aware probing) evaluates the same loss under
    polarity inversion. The reference averages both terms over the batch.

    Args:
      positive_probs: ``[...]`` the probe's probabilities ``p^+`` of the statements, in ``[0, 1]``.
      negative_probs: ``[...]`` its probabilities ``p^-`` of their negations, same shape.
      where: optional mask broadcastable to ``[...]``.

    Returns:
      ``[...]`` per-pair losses.

    Paper: Burns, Ye, Klein, Steinhardt, "Discovering Latent Knowledge in
    Language Models Without Supervision", ICLR 2023, arXiv:2212.03827.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.contrast_consistent_search_loss(jnp.array([0.9, 0.5]), jnp.array([0.2, 0.5])).round(4)
      Array([0.05, 0.25], dtype=float32)
    """
    fn = "contrast_consistent_search_loss"
    a = C.check_array(fn, "positive_probs", positive_probs, dtype="float")
    b = C.check_array(fn, "negative_probs", negative_probs, dtype="float")
    C.check_same_shape(fn, ("positive_probs", "negative_probs"), a, b)
    dtype = C.compute_dtype(a, b)
    mask = C.prepare_where(fn, where, a.shape)
    a = C.fill_masked(C.as_compute(a, dtype), mask)
    b = C.fill_masked(C.as_compute(b, dtype), mask)
    loss = jnp.square(a - (1 - b)) + jnp.square(jnp.minimum(a, b))
    return C.zero_masked(loss, mask)


# ------------------------- SatImp unlearning weights -------------------------


def _satimp_sample() -> Sample:
    rng = np.random.default_rng(6)
    lp = (-rng.uniform(0.05, 3.0, size=(4, 3))).astype(np.float32)
    extremes = ((np.zeros_like(lp),), (np.full_like(lp, -1e4),))
    # Constant (stop_gradient) weights by design; the tests check the gradient (= the weights) exactly.
    variants = ({"beta_1": 1.0, "beta_2": 1.0}, {"beta_1": 0.5, "beta_2": 0.0})
    return Sample(args=(lp,), extremes=extremes, surrogate_grad=True, variants=variants)


@register(
    "saturation_importance_unlearning_loss",
    aliases=("saturation_importance_unlearning_weights", "satimp", "satimp_loss"),
    family=FAMILY,
    kind="per_example",
    formula="sg(p^b1 (1 - p)^b2) * log p,  p = exp(log p) per token (gradient ascent on the forget set)",
    paper="Exploring Criteria of Loss Reweighting to Enhance LLM Unlearning (2025, arXiv:2505.11953)",
    reference="tmlr-group/SatImp dataloader/dataloader_sat.py (loss_type 'satimp')",
    sample=_satimp_sample,
)
def saturation_importance_unlearning_loss(
    log_probs: ArrayLike,
    *,
    beta_1: float = 5.0,
    beta_2: float = 0.1,
    where: ArrayLike | None = None,
) -> Array:
    r"""SatImp: token-reweighted gradient ascent for LLM unlearning (saturation x importance).

    .. math::
        w_t = \mathrm{sg}\big(p_t^{\beta_1}(1 - p_t)^{\beta_2}\big),\qquad
        \ell_t = w_t \log p_t = -w_t\,\mathrm{CE}_t

    on forget-set tokens, ``p_t`` the probability of the token. Minimizing
    ``\ell`` raises the cross-entropy of the forget data; ``p^{\beta_1}``
    (saturation) down-weights tokens that are already forgotten and
    ``(1-p)^{\beta_2}`` (importance) emphasizes the not-yet-certain ones. The
    weights are computed in log space (``\beta_1 \log p + \beta_2
    \mathrm{log1mexp}(\log p)``) and are constants. The reference averages
    over non-ignored tokens and adds a retain loss; unbounded below, so stop
    early. Takes per-token log-probabilities, e.g.
    :func:`lossjax.losses.token_log_probs` or ``-linear_cross_entropy(...)``
    (no ``[N, V]`` logits).

    Args:
      log_probs: ``[...]`` per-token log-probabilities of the forget targets.
      beta_1: saturation exponent ``\beta_1`` (the code's ``hyper_param``; recommended 5.0).
      beta_2: importance exponent ``\beta_2`` (the code's ``beta``; recommended 0.1).
      where: optional mask broadcastable to ``[...]`` (ignored tokens).

    Returns:
      ``[...]`` per-token losses (``<= 0``).

    Paper: Yang et al., "Exploring Criteria of Loss Reweighting to Enhance LLM
    Unlearning", ICML 2025, arXiv:2505.11953.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.log(jnp.array([0.5, 0.9]))
      >>> lossjax.losses.saturation_importance_unlearning_loss(lp, beta_1=1.0, beta_2=1.0).round(4)
      Array([-0.1733, -0.0095], dtype=float32)
    """
    fn = "saturation_importance_unlearning_loss"
    x = C.check_array(fn, "log_probs", log_probs, dtype="float")
    C.check_positive(fn, "beta_1", beta_1, allow_zero=True)
    C.check_positive(fn, "beta_2", beta_2, allow_zero=True)
    dtype = C.compute_dtype(x)
    mask = C.prepare_where(fn, where, x.shape)
    lp = C.fill_masked(C.as_compute(x, dtype), mask)
    lp_c = jnp.minimum(jax.lax.stop_gradient(lp), jnp.zeros((), dtype))
    b2 = jnp.asarray(beta_2, dtype)
    log_w = jnp.asarray(beta_1, dtype) * lp_c + b2 * C.log1mexp(lp_c)
    # (1 - p)^beta_2 is exactly 0 at p = 1 (log1mexp is clamped there), 1 when beta_2 = 0 (torch's 0**0).
    p_is_one = (lp_c >= 0) & (b2 > 0)
    w = jax.lax.stop_gradient(jnp.where(p_is_one, jnp.zeros((), dtype), jnp.exp(log_w)))
    return C.zero_masked(w * lp, mask)


# ------------------------------------ CTC ------------------------------------


def _ctc_sample() -> Sample:
    rng = np.random.default_rng(7)
    b, t, k = 4, 6, 5
    logits = rng.normal(size=(b, t, k)).astype(np.float32)
    logit_paddings = np.zeros((b, t), np.float32)
    logit_paddings[1, 5:] = 1.0
    logit_paddings[3, 4:] = 1.0
    # Labels avoid both blanks (0 and the variant's 4); a repeat needs a blank between.
    labels = np.array([[1, 2, 2], [3, 1, 0], [1, 1, 3], [2, 0, 0]], np.int32)
    label_paddings = np.array([[0, 0, 0], [0, 0, 1], [0, 0, 0], [0, 1, 1]], np.float32)
    rest = (logit_paddings, labels, label_paddings)
    extremes = ((logits * 30, *rest), (np.zeros_like(logits), *rest))
    return Sample(
        args=(logits, *rest),
        diff_argnums=(0,),
        extremes=extremes,
        variants=({"blank_id": 4},),
        # log-probabilities of ~1e2 (the first extreme) summed over 6 steps: float32 ulps of ~1e3.
        value_tol={"rtol": 1e-4, "atol": 5e-4},
    )


@register(
    "ctc_loss",
    aliases=("connectionist_temporal_classification",),
    family=FAMILY,
    kind="per_example",
    formula="-log sum_{alignments a -> labels} prod_t softmax(z_t)_{a_t}  (blanks, repeats collapsed)",
    paper="Connectionist Temporal Classification: Labelling Unsegmented Sequence Data with Recurrent Neural "
    "Networks (2006, ICML; no arXiv id)",
    reference="optax.losses.ctc_loss (same arguments and semantics); torch.nn.functional.ctc_loss",
    sample=_ctc_sample,
)
def ctc_loss(
    logits: ArrayLike,
    logit_paddings: ArrayLike,
    labels: ArrayLike,
    label_paddings: ArrayLike,
    *,
    blank_id: int = 0,
    log_epsilon: float = -1e5,
    where: ArrayLike | None = None,
) -> Array:
    r"""Connectionist temporal classification: the negative log-likelihood of a label sequence.

    .. math::
        \ell = -\log \sum_{\pi \in \mathcal B^{-1}(y)} \prod_{t=1}^{T'} \mathrm{softmax}(z_t)_{\pi_t}

    over the alignments ``\pi`` of the ``T'`` unpadded frames that collapse to the
    ``N'`` unpadded labels ``y`` (merge repeats, then drop blanks), computed by
    the forward (alpha) recursion in log space. Same arguments, padding
    convention and values as ``optax.losses.ctc_loss`` (paddings are 1.0 on
    padded positions, at the end of each row) and, for feasible label
    sequences, as ``torch.nn.functional.ctc_loss(..., reduction="none")``. An
    infeasible sequence (too few frames) gives a large finite value (about
    ``-log_epsilon``), where torch gives ``inf``. Labels in padded positions may
    hold anything; an out-of-range label in an unpadded position of a counted
    sequence gives NaN (as JAX's out-of-bounds gather).

    Args:
      logits: ``[B, T, K]`` frame scores over ``K`` classes (the blank included).
      logit_paddings: ``[B, T]`` 1.0 (or True) on padded frames.
      labels: ``[B, N]`` integer label ids in ``[0, K)``, never ``blank_id`` in unpadded positions.
      label_paddings: ``[B, N]`` 1.0 (or True) on padded label positions.
      blank_id: the blank class, an int in ``[0, K)``.
      log_epsilon: a finite log-probability standing for ``log 0`` (optax's ``-1e5``).
      where: optional ``[B]`` mask of counted sequences.

    Returns:
      ``[B]`` per-sequence losses (float32 for half-precision logits).

    Paper: Graves, Fernández, Gomez, Schmidhuber, "Connectionist Temporal
    Classification: Labelling Unsegmented Sequence Data with Recurrent Neural
    Networks", ICML 2006 (no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> logits = jnp.zeros((1, 2, 3))  # 2 frames, uniform over {blank, a, b}
      >>> labels, pads = jnp.array([[1]]), jnp.zeros((1, 1))
      >>> # 3 alignments (a a, a -, - a) of probability 1/9 each: -log(1/3)
      >>> lossjax.losses.ctc_loss(logits, jnp.zeros((1, 2)), labels, pads).round(4)
      Array([1.0986], dtype=float32)
    """
    fn = "ctc_loss"
    logits = C.check_array(fn, "logits", logits, ndim=3, dtype="float")
    b, t, k = logits.shape
    logit_paddings = C.check_array(fn, "logit_paddings", logit_paddings, shape=(b, t), dtype=None)
    labels = C.check_array(fn, "labels", labels, ndim=2, dtype="int")
    if labels.shape[0] != b:
        raise ValueError(f"{fn}: `labels` must have batch size {b} (logits.shape[0]), got shape {labels.shape}.")
    n = labels.shape[1]
    label_paddings = C.check_array(fn, "label_paddings", label_paddings, shape=(b, n), dtype=None)
    C.check_int(fn, "blank_id", blank_id, 0, static=True)
    if blank_id >= k:
        raise ValueError(f"{fn}: `blank_id` must lie in [0, {k}) (the number of classes), got {blank_id!r}.")
    C.check_in_range(fn, "log_epsilon", log_epsilon, -math.inf, 0.0, low_inclusive=False, high_inclusive=False)
    if not isinstance(log_epsilon, jax.core.Tracer) and not math.isfinite(float(log_epsilon)):
        raise ValueError(f"{fn}: `log_epsilon` must be a finite number < 0, got {log_epsilon!r}.")
    dtype = C.compute_dtype(logits)
    mask = C.prepare_where(fn, where, (b,))
    frame_pad = logit_paddings != 0
    label_pad = label_paddings != 0
    counted = jnp.ones((b,), bool) if mask is None else mask
    in_range = (labels >= 0) & (labels < k)
    C.debug_check(jnp.all(in_range | label_pad | ~counted[:, None]), f"{fn}: labels must lie in [0, {k})")
    bad = jnp.any(~in_range & ~label_pad, axis=1) & counted
    y = jnp.where(in_range & ~label_pad, labels, jnp.zeros((), labels.dtype))  # padding: any valid id
    z = C.fill_masked(C.as_compute(logits, dtype), mask)
    logp = jax.nn.log_softmax(z, axis=-1)  # [B, T, K]
    eps = jnp.asarray(log_epsilon, dtype)
    zero = jnp.zeros((), dtype)
    label_len = n - jnp.sum(label_pad, axis=1)
    # repeat[b, j]: label j equals label j + 1 (the emit -> emit transition needs a blank between).
    repeat = jnp.pad(y[:, :-1] == y[:, 1:], ((0, 0), (0, 1)))
    logp_blank = jnp.transpose(logp[:, :, blank_id : blank_id + 1], (1, 0, 2))  # [T, B, 1]
    hit = jax.lax.broadcasted_iota(y.dtype, (b, n, k), 2) == y[:, :, None]
    logp_emit = jnp.einsum("btk,bnk->tbn", logp, hit.astype(dtype))  # [T, B, N]
    # alpha over the states "blank before label j" (phi, N + 1) and "on label j" (emit, N).
    phi0 = jnp.concatenate([jnp.zeros((b, 1), dtype), jnp.full((b, n), log_epsilon, dtype)], axis=1)
    emit0 = jnp.full((b, n), log_epsilon, dtype)

    def add_phi(phi, score):
        return jnp.concatenate([phi[:, :1], jnp.logaddexp(phi[:, 1:], score)], axis=-1)

    def step(carry, xs):
        prev_phi, prev_emit = carry
        lp_emit, lp_blank, pad = xs
        # emit -> blank (epsilon) transition, except into a repeated label
        phi = add_phi(prev_phi, prev_emit + jnp.where(repeat, eps, zero))
        next_emit = jnp.logaddexp(phi[:, :-1] + lp_emit, prev_emit + lp_emit)
        next_phi = add_phi(phi + lp_blank, prev_emit + lp_blank + jnp.where(repeat, zero, eps))
        pad = pad[:, None]
        return (jnp.where(pad, prev_phi, next_phi), jnp.where(pad, prev_emit, next_emit)), None

    (phi, emit), _ = jax.lax.scan(step, (phi0, emit0), (logp_emit, logp_blank, jnp.transpose(frame_pad)))
    last = add_phi(phi, emit)  # the final emit -> blank transition
    pick = jax.lax.broadcasted_iota(label_len.dtype, (b, n + 1), 1) == label_len[:, None]
    loss = -jnp.sum(jnp.where(pick, last, zero), axis=1)
    loss = jnp.where(bad, jnp.asarray(jnp.nan, dtype), loss)
    return C.zero_masked(loss, mask)


# ------------------------- fused linear distillation -------------------------


def _distill_sample() -> Sample:
    rng = np.random.default_rng(30)
    n, d, dt, v = 6, 4, 3, 5
    hidden = rng.normal(size=(n, d)).astype(np.float32)
    weight = (rng.normal(size=(v, d)) * 0.7).astype(np.float32)
    teacher_hidden = rng.normal(size=(n, dt)).astype(np.float32)
    teacher_weight = (rng.normal(size=(v, dt)) * 0.9).astype(np.float32)
    args = (hidden, weight, teacher_hidden, teacher_weight)
    # Large logits (|z| ~ 1e2: probabilities of exactly 0 and 1 in float32), a uniform student, a uniform teacher.
    extremes = (
        (hidden * 30, weight, teacher_hidden * 30, teacher_weight),
        (np.zeros_like(hidden), weight, teacher_hidden, teacher_weight),
        (hidden, weight, teacher_hidden, teacher_weight * 0),
    )
    # block_size=2 streams three vocabulary blocks (two full, one remainder); every divergence is a variant.
    return Sample(
        args=args,
        kwargs={"block_size": 2},
        diff_argnums=(0, 1),
        batched_argnums=(0, 2),
        extremes=extremes,
        variants=(
            {"divergence": "reverse_kl", "temperature": 2.0},
            {"divergence": "jsd", "beta": 0.3},
            {"divergence": "tvd", "temperature": 1.5},
            {"divergence": "jsd", "beta": 1.0},
        ),
        # float32 log-softmax of logits near 1e2 (the extremes) carries ulp(1e2) ~ 8e-6 absolute error.
        value_tol={"rtol": 1e-4, "atol": 5e-5},
    )


_DISTILL_DIVERGENCES = ("kl", "reverse_kl", "jsd", "tvd")


@register(
    "linear_distillation_loss",
    aliases=("fused_linear_distillation", "fused_linear_jsd", "linear_jsd_loss"),
    family=FAMILY,
    kind="per_example",
    formula="D(softmax(h_t W_t^T / T), softmax(h W^T / T)) per token, D = KL | reverse KL | generalized JSD(beta) | "
    "TVD, streamed over vocabulary blocks",
    paper="On-Policy Distillation of Language Models: Learning from Self-Generated Mistakes (2023, arXiv:2306.13649)",
    reference="huggingface/trl 1.16.0 experimental/gkd/gkd_trainer.py::GKDTrainer.generalized_jsd_loss; "
    "linkedin/Liger-Kernel 0.8.5 chunked_loss/jsd_loss.py::LigerFusedLinearJSDLoss",
    sample=_distill_sample,
    runtime=("bias", "teacher_bias"),
)
def linear_distillation_loss(
    hidden: ArrayLike,
    weight: ArrayLike,
    teacher_hidden: ArrayLike,
    teacher_weight: ArrayLike,
    *,
    divergence: str = "kl",
    beta: float = 0.5,
    temperature: float = 1.0,
    bias: ArrayLike | None = None,
    teacher_bias: ArrayLike | None = None,
    block_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    where: ArrayLike | None = None,
) -> Array:
    r"""Per-token distillation between a student head and a teacher head without their ``[N, V]`` logits.

    .. math::
        q_i = \mathrm{softmax}\big((W h_i + b)/T\big),\quad
        p_i = \mathrm{softmax}\big((W_t h^t_i + b_t)/T\big) \\
        \mathrm{kl} = \textstyle\sum_v p\log\frac{p}{q},\quad
        \mathrm{reverse\_kl} = \sum_v q\log\frac{q}{p},\quad
        \mathrm{jsd} = \beta\,\mathrm{KL}(p\,\|\,m) + (1-\beta)\,\mathrm{KL}(q\,\|\,m),\ m = \beta p + (1-\beta) q,\quad
        \mathrm{tvd} = \tfrac12\sum_v |p - q|

    ``jsd`` is trl GKD's generalized Jensen-Shannon divergence with its
    ``beta``: ``beta = 0`` is the forward KL ``KL(p || q)`` and ``beta = 1``
    the reverse KL ``KL(q || p)`` (trl's special cases), and Liger's
    ``LigerFusedLinearJSDLoss``. The logits of both heads exist one
    vocabulary block ``[N, Vb]`` at a time (a ``custom_vjp`` over
    ``lossjax._fused``'s tiles: two streaming forward passes, one recomputing
    backward pass), so memory stays flat as the vocabulary grows. The teacher
    is a constant (no gradient flows to ``teacher_hidden``, ``teacher_weight``,
    ``teacher_bias``). No ``T^2`` factor is applied (trl and Liger do not).
    Tokens masked by ``where`` (e.g. ``labels != -100``) get exactly 0 loss and
    gradient; trl and Liger average over the counted tokens: ``sum / count``.

    Args:
      hidden: ``[..., D]`` student hidden states (bf16 stays bf16 in the matmuls, float32 accumulation).
      weight: ``[V, D]`` student output embedding.
      teacher_hidden: ``[..., D_t]`` teacher hidden states (same leading shape).
      teacher_weight: ``[V, D_t]`` teacher output embedding (same ``V``).
      divergence: ``"kl"``, ``"reverse_kl"``, ``"jsd"`` or ``"tvd"``.
      beta: the JSD interpolation ``\beta`` in ``[0, 1]`` (``"jsd"`` only; trl GKD's default 0.5).
      temperature: ``T > 0``, divides both heads' logits.
      bias, teacher_bias: optional ``[V]`` output biases.
      block_size: vocabulary block (default: from ``memory_budget``, ``lossjax._fused.tile_sizes``).
      memory_budget: bytes for one float32 logit tile (default 512 MiB).
      where: optional mask aligned with the leading axes of ``hidden``'s ``[...]``.

    Returns:
      ``[...]`` per-token divergences (0 at masked tokens); float32 for half-precision inputs.

    Paper: Agarwal et al., "On-Policy Distillation of Language Models:
    Learning from Self-Generated Mistakes", ICLR 2024, arXiv:2306.13649 (GKD,
    generalized JSD); Hinton, Vinyals, Dean, "Distilling the Knowledge in a
    Neural Network", 2015, arXiv:1503.02531.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> h, w = jnp.array([[1.0, 0.0]]), jnp.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
      >>> lossjax.losses.linear_distillation_loss(h, w, h, w).round(4)  # the same head: 0
      Array([0.], dtype=float32)
      >>> lossjax.losses.linear_distillation_loss(h, w, h * 3, w, divergence="tvd").round(4)
      Array([0.3333], dtype=float32)
    """
    fn = "linear_distillation_loss"
    hidden = C.check_array(fn, "hidden", hidden, min_ndim=1, dtype="float")
    weight = C.check_array(fn, "weight", weight, ndim=2, dtype="float")
    teacher_hidden = C.check_array(fn, "teacher_hidden", teacher_hidden, min_ndim=1, dtype="float")
    teacher_weight = C.check_array(fn, "teacher_weight", teacher_weight, ndim=2, dtype="float")
    if weight.shape[1] != hidden.shape[-1]:
        raise ValueError(
            f"{fn}: `weight` must have shape (V, D) with D = hidden.shape[-1] = {hidden.shape[-1]}, "
            f"got weight.shape={weight.shape}."
        )
    if teacher_weight.shape[1] != teacher_hidden.shape[-1]:
        raise ValueError(
            f"{fn}: `teacher_weight` must have shape (V, D_t) with D_t = teacher_hidden.shape[-1] = "
            f"{teacher_hidden.shape[-1]}, got teacher_weight.shape={teacher_weight.shape}."
        )
    if teacher_weight.shape[0] != weight.shape[0]:
        raise ValueError(
            f"{fn}: the student and teacher vocabularies differ: weight has {weight.shape[0]} rows, "
            f"teacher_weight {teacher_weight.shape[0]}."
        )
    if teacher_hidden.shape[:-1] != hidden.shape[:-1]:
        raise ValueError(
            f"{fn}: `teacher_hidden` must have the leading shape of `hidden` {hidden.shape[:-1]}, "
            f"got {teacher_hidden.shape[:-1]}."
        )
    v = weight.shape[0]
    if v == 0:
        raise ValueError(f"{fn}: `weight` must have at least one row (vocabulary entry), got shape {weight.shape}.")
    C.check_one_of(fn, "divergence", divergence, _DISTILL_DIVERGENCES)
    C.check_in_range(fn, "beta", beta, 0.0, 1.0)
    if isinstance(beta, jax.core.Tracer):
        raise ValueError(f"{fn}: `beta` must be a static number (0 and 1 select the KL divergences).")
    C.check_positive(fn, "temperature", temperature)
    for arg, val in (("block_size", block_size), ("memory_budget", memory_budget)):
        if val is not None:
            C.check_int(fn, arg, val, 1, static=True)
    b = None if bias is None else C.check_array(fn, "bias", bias, shape=(v,), dtype="float")
    bt = None if teacher_bias is None else C.check_array(fn, "teacher_bias", teacher_bias, shape=(v,), dtype="float")
    if divergence == "jsd" and float(beta) in (0.0, 1.0):  # trl GKD: beta 0 / 1 are the forward / reverse KL
        divergence = "kl" if float(beta) == 0.0 else "reverse_kl"
    batch_shape = hidden.shape[:-1]
    mask = C.prepare_where(fn, where, batch_shape)
    valid = jnp.ones((math.prod(batch_shape),), bool) if mask is None else jnp.reshape(mask, (-1,))
    out = fused_distillation(
        jnp.reshape(hidden, (-1, hidden.shape[-1])),
        weight,
        b,
        jnp.reshape(teacher_hidden, (-1, teacher_hidden.shape[-1])),
        teacher_weight,
        bt,
        valid,
        divergence=divergence,
        beta=beta,
        temperature=temperature,
        block_size=block_size,
        memory_budget=memory_budget,
    )
    return jnp.reshape(out, batch_shape)
