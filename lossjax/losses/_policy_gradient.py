"""Policy-gradient losses for language-model RL: PPO's clipped surrogate, GRPO and its normalizations, GSPO,
KL estimators to a reference policy, group-relative advantages, the entropy bonus and the metrics users log.

Every loss takes per-token log-probabilities ``[B, T]`` of sampled completions
(``log_probs``, from :func:`lossjax.losses.token_log_probs` or
``-lossjax.losses.linear_cross_entropy``) with an optional ``token_where``
``[B, T]`` mask (completion tokens True; prompt and padding False, which may
hold anything, NaN included) and an optional ``where`` (``[B]`` sequences or
``[B, T]`` tokens, aligned with the leading axes). The behaviour policy's
``old_log_probs``, the reference's ``ref_log_probs`` and the ``advantages``
(``[B]`` per sequence or ``[B, T]`` per token) are constants
(``stop_gradient``). Conventions follow trl 1.16's ``GRPOTrainer._compute_loss``:
the importance ratio is ``exp(log_probs - old_log_probs)`` per token, or the
exponential of its per-sequence token mean (GSPO); the per-token loss is
``-min(ratio A, clip(ratio, 1 - clip_range, 1 + clip_range_high) A)`` plus
``beta`` times the k3 KL estimate to the reference; the batch reductions are
trl's ``loss_type`` (here ``variant``): ``"grpo"`` (mean over sequences of the
per-sequence token mean), ``"bnpo"`` and ``"dapo"`` (mean over all counted
tokens), ``"dr_grpo"`` (sum over tokens / (B * max completion length)).

The metrics trl and PPO implementations log are separate functions of the
same inputs (each returns one scalar): :func:`clip_fraction` (low / high /
region), :func:`approx_kl` (the k1/k2/k3 estimate between the new and the
old policy), and the per-token :func:`kl_estimate` / :func:`token_entropy`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax._parallel import psum
from lossjax.registry import Sample, register

__all__ = [
    "GRPO_VARIANTS",
    "KL_ESTIMATORS",
    "approx_kl",
    "clip_fraction",
    "group_relative_advantages",
    "grpo_loss",
    "gspo_loss",
    "kl_estimate",
    "ppo_clip_loss",
    "token_entropy",
    "unified_policy_gradient_loss",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

FAMILY = "policy_gradient"

#: trl's GRPO ``loss_type`` values: how per-token losses are reduced to the batch loss.
GRPO_VARIANTS = ("grpo", "bnpo", "dapo", "dr_grpo")
#: Schulman's estimators of ``KL(pi || ref)`` from samples of ``pi``.
KL_ESTIMATORS = ("k1", "k2", "k3")
_LEVELS = ("token", "sequence")
# exp() arguments are clamped here: ratios and KL estimates stay finite (exp(80) ~ 5.5e34) for any input.
_EXP_CLAMP = 80.0
_TRL_GRPO = "huggingface/trl 1.16.0 trainer/grpo_trainer.py::GRPOTrainer._compute_loss"


# ------------------------------ shared plumbing ------------------------------


def _tokens(fn, log_probs, token_where, where):
    """Checks ``log_probs [B, T]``; returns (log_probs, the combined bool token mask or None, compute dtype)."""
    lp = C.check_array(fn, "log_probs", log_probs, ndim=2, dtype="float")
    mask = C.prepare_where(fn, where, lp.shape)
    if token_where is not None:
        tw = C.check_array(fn, "token_where", token_where, ndim=2)
        if not (tw.dtype == jnp.bool_ or jnp.issubdtype(tw.dtype, jnp.number)):
            raise TypeError(f"{fn}: `token_where` must be a bool or 0/1 numeric mask, got {tw.dtype}.")
        if tw.shape != lp.shape:
            raise ValueError(f"{fn}: `token_where` must have the shape of `log_probs` {lp.shape}, got {tw.shape}.")
        tw = tw if tw.dtype == jnp.bool_ else tw != 0
        mask = tw if mask is None else mask & tw
    return lp, mask, C.compute_dtype(lp)


def _like(fn, arg, x, lp, dtype, mask):
    """A ``[B, T]`` float input with ``log_probs``' shape, masked entries replaced, held constant."""
    x = C.check_array(fn, arg, x, ndim=2, dtype="float")
    if x.shape != lp.shape:
        raise ValueError(f"{fn}: `{arg}` must have the shape of `log_probs` {lp.shape}, got {x.shape}.")
    return jax.lax.stop_gradient(C.fill_masked(C.as_compute(x, dtype), mask))


def _advantages(fn, advantages, lp, dtype, mask):
    """``[B]`` or ``[B, T]`` advantages as a constant ``[B, T]`` array (masked entries 0)."""
    a = C.check_array(fn, "advantages", advantages, ndim=(1, 2), dtype="float")
    if a.shape not in (lp.shape[:1], lp.shape):
        raise ValueError(
            f"{fn}: `advantages` must have shape ({lp.shape[0]},) (per sequence) or {lp.shape} (per token), "
            f"got {a.shape}."
        )
    a = C.as_compute(a, dtype)
    if a.ndim == 1:
        a = jnp.broadcast_to(a[:, None], lp.shape)
    return jax.lax.stop_gradient(C.fill_masked(a, mask))


def _check_clip(fn, clip_range, clip_range_high, delta):
    C.check_in_range(fn, "clip_range", clip_range, 0.0, 1.0)
    if clip_range_high is not None:
        C.check_positive(fn, "clip_range_high", clip_range_high, allow_zero=True)
    if delta is not None:
        C.check_positive(fn, "delta", delta)
    return clip_range if clip_range_high is None else clip_range_high


def _log_ratio(lp, old, mask, dtype, level):
    """Per-token log importance weights, or the per-sequence token mean broadcast over the tokens (GSPO)."""
    d = lp - old
    if level == "token":
        return d
    keep = jnp.ones(d.shape, bool) if mask is None else mask
    total = jnp.sum(jnp.where(keep, d, jnp.zeros((), dtype)), axis=-1, keepdims=True)
    count = jnp.sum(keep, axis=-1, keepdims=True).astype(dtype)
    return jnp.broadcast_to(total / jnp.maximum(count, jnp.ones((), dtype)), d.shape)


def _surrogate(log_ratio, adv, clip_range, clip_high, delta, dtype):
    """``-min(r A, clip(r, 1 - e_low, 1 + e_high) A)``, ``r`` optionally capped at ``delta`` (trl's two-sided clip)."""
    ratio = jnp.exp(jnp.minimum(log_ratio, _EXP_CLAMP))
    clipped = jnp.clip(ratio, 1 - jnp.asarray(clip_range, dtype), 1 + jnp.asarray(clip_high, dtype))
    if delta is not None:
        ratio = jnp.minimum(ratio, jnp.asarray(delta, dtype))
    return -jnp.minimum(ratio * adv, clipped * adv)


def _kl_terms(lp, ref, variant):
    """Schulman's k1 / k2 / k3 estimates of KL(pi || ref) per token, with ``log_r = log ref - log pi``."""
    log_r = ref - lp
    if variant == "k1":
        return -log_r
    if variant == "k2":
        return 0.5 * jnp.square(log_r)
    return jnp.exp(jnp.minimum(log_r, _EXP_CLAMP)) - log_r - 1


def _pg_sample(seed: int = 0, *, variants=(), with_ref: bool = False, entropies: bool = False) -> Sample:
    rng = np.random.default_rng(seed)
    b, t = 4, 3
    lp = (-rng.uniform(0.1, 2.0, size=(b, t))).astype(np.float32)
    # Ratios spread around 1 (some beyond the clip range on either side), advantages of both signs.
    old = (lp + rng.choice([-0.5, -0.1, 0.05, 0.3], size=(b, t))).astype(np.float32)
    adv = np.array([1.2, -0.7, 0.4, -1.5], np.float32)
    args = [lp, old, adv]
    if with_ref:
        args.append((lp + rng.normal(scale=0.3, size=(b, t))).astype(np.float32))
    # A policy that puts probability 1 (log 0) or ~0 on its samples; the behaviour and reference policies as given.
    extremes = (
        (np.zeros_like(lp), *args[1:]),
        (np.full_like(lp, -1e4), *args[1:]),
        (np.where(np.arange(lp.size).reshape(lp.shape) % 2 == 0, 0.0, -1e4).astype(np.float32), *args[1:]),
    )
    return Sample(args=tuple(args), diff_argnums=(0,), extremes=extremes, variants=tuple(variants), fuzz_scaled=())


def _pair_sample(seed: int, *, variants=()) -> Sample:
    """(log_probs, other policy's log_probs) of one shape: the KL estimators' inputs."""
    s = _pg_sample(seed, with_ref=True, variants=variants)
    ref = s.args[3]
    return dataclasses.replace(s, args=(s.args[0], ref), extremes=tuple((e[0], ref) for e in s.extremes))


# ------------------------------ PPO / GRPO / GSPO ------------------------------


@register(
    "ppo_clip_loss",
    aliases=("ppo_loss", "clipped_surrogate_loss"),
    family=FAMILY,
    kind="per_example",
    formula="-min(r A, clip(r, 1 - e_low, 1 + e_high) A),  r = exp(log pi - log pi_old) per token (or per sequence)",
    paper="Proximal Policy Optimization Algorithms (2017, arXiv:1707.06347)",
    reference=_TRL_GRPO + " (per_token_loss before the reduction)",
    sample=lambda: _pg_sample(
        0,
        variants=(
            {"clip_range": 0.1, "clip_range_high": 0.28},
            {"importance_sampling_level": "sequence"},
            {"delta": 1.2},
        ),
    ),
    runtime=("token_where",),
)
def ppo_clip_loss(
    log_probs: ArrayLike,
    old_log_probs: ArrayLike,
    advantages: ArrayLike,
    *,
    clip_range: float = 0.2,
    clip_range_high: float | None = None,
    delta: float | None = None,
    importance_sampling_level: str = "token",
    token_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""PPO's clipped surrogate per token, with clip-higher, a ratio cap and sequence-level (GSPO) ratios.

    .. math::
        r_t = \exp\big(\log\pi_\theta(y_t) - \log\pi_\mathrm{old}(y_t)\big),\qquad
        \ell_t = -\min\big(r_t A_t,\ \mathrm{clip}(r_t, 1-\epsilon_\mathrm{low}, 1+\epsilon_\mathrm{high}) A_t\big)

    ``importance_sampling_level="sequence"`` replaces ``r_t`` by GSPO's
    length-normalized sequence ratio ``s = \exp(\frac{1}{|y|}\sum_t
    (\log\pi_\theta(y_t) - \log\pi_\mathrm{old}(y_t)))`` for every token of
    the sequence. ``delta`` caps the unclipped ratio (``\min(r, \delta)``,
    trl's two-sided clipping for negative advantages). The log-ratio is
    clamped at 80 before ``exp`` (finite for any input). Reduce the per-token
    losses with a masked mean, or use :func:`grpo_loss`.

    Args:
      log_probs: ``[B, T]`` per-token log-probs of the sampled tokens under the policy.
      old_log_probs: ``[B, T]``, the same under the sampling (behaviour) policy (constant).
      advantages: ``[B]`` (per sequence) or ``[B, T]`` (per token) advantages (constant).
      clip_range: ``\epsilon_\mathrm{low}`` in ``[0, 1]`` (trl's ``epsilon``, PPO's 0.2).
      clip_range_high: ``\epsilon_\mathrm{high} \geq 0`` (trl's ``epsilon_high``; DAPO's clip-higher 0.28);
        None uses ``clip_range``.
      delta: optional cap ``\delta > 1`` of the unclipped ratio (trl's ``delta``).
      importance_sampling_level: ``"token"`` (PPO/GRPO) or ``"sequence"`` (GSPO).
      token_where: ``[B, T]`` completion-token mask (bool or 0/1).
      where: optional mask of sequences ``[B]`` or tokens ``[B, T]``.

    Returns:
      ``[B, T]`` per-token losses, 0 at masked tokens.

    Paper: Schulman et al., "Proximal Policy Optimization Algorithms", 2017,
    arXiv:1707.06347; clip-higher: Yu et al., "DAPO: An Open-Source LLM
    Reinforcement Learning System at Scale", 2025, arXiv:2503.14476; GSPO:
    Zheng et al., "Group Sequence Policy Optimization", 2025, arXiv:2507.18071.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp, old = jnp.log(jnp.array([[0.6, 0.3]])), jnp.log(jnp.array([[0.4, 0.3]]))
      >>> lossjax.losses.ppo_clip_loss(lp, old, jnp.array([1.0])).round(4)  # ratio 1.5 clipped at 1.2
      Array([[-1.2, -1. ]], dtype=float32)
    """
    fn = "ppo_clip_loss"
    C.check_one_of(fn, "importance_sampling_level", importance_sampling_level, _LEVELS)
    clip_high = _check_clip(fn, clip_range, clip_range_high, delta)
    lp, mask, dtype = _tokens(fn, log_probs, token_where, where)
    old = _like(fn, "old_log_probs", old_log_probs, lp, dtype, mask)
    adv = _advantages(fn, advantages, lp, dtype, mask)
    lp = C.fill_masked(C.as_compute(lp, dtype), mask)
    loss = _surrogate(
        _log_ratio(lp, old, mask, dtype, importance_sampling_level), adv, clip_range, clip_high, delta, dtype
    )
    return C.zero_masked(loss, mask)


def _grpo(
    fn,
    log_probs,
    old_log_probs,
    advantages,
    ref_log_probs,
    *,
    variant,
    beta,
    clip_range,
    clip_range_high,
    delta,
    importance_sampling_level,
    max_completion_length,
    entropy_weight,
    token_entropies,
    token_where,
    where,
    axis_name,
):
    C.check_one_of(fn, "variant", variant, GRPO_VARIANTS)
    C.check_one_of(fn, "importance_sampling_level", importance_sampling_level, _LEVELS)
    C.check_positive(fn, "beta", beta, allow_zero=True)
    C.check_positive(fn, "entropy_weight", entropy_weight, allow_zero=True)
    clip_high = _check_clip(fn, clip_range, clip_range_high, delta)
    if max_completion_length is not None:
        C.check_int(fn, "max_completion_length", max_completion_length, 1)
    lp, mask, dtype = _tokens(fn, log_probs, token_where, where)
    old = _like(fn, "old_log_probs", old_log_probs, lp, dtype, mask)
    adv = _advantages(fn, advantages, lp, dtype, mask)
    lp = C.fill_masked(C.as_compute(lp, dtype), mask)
    per_token = _surrogate(
        _log_ratio(lp, old, mask, dtype, importance_sampling_level), adv, clip_range, clip_high, delta, dtype
    )
    with_kl = isinstance(beta, jax.core.Tracer) or float(beta) != 0.0
    if with_kl:
        if ref_log_probs is None:
            raise ValueError(f"{fn}: `beta={beta!r}` adds a KL penalty to the reference: pass `ref_log_probs`.")
        ref = _like(fn, "ref_log_probs", ref_log_probs, lp, dtype, mask)
        per_token = per_token + jnp.asarray(beta, dtype) * _kl_terms(lp, ref, "k3")
    keep = jnp.ones(lp.shape, bool) if mask is None else mask
    zero, one = jnp.zeros((), dtype), jnp.ones((), dtype)
    per_token = jnp.where(keep, per_token, zero)
    n_tok = psum(jnp.sum(keep).astype(dtype), axis_name)
    if variant == "grpo":
        counts = jnp.sum(keep, axis=-1).astype(dtype)
        seq = jnp.sum(per_token, axis=-1) / jnp.maximum(counts, one)
        rows = jnp.ones(lp.shape[:1], bool) if where is None else jnp.any(C.prepare_where(fn, where, lp.shape), -1)
        loss = psum(jnp.sum(jnp.where(rows, seq, zero)), axis_name) / jnp.maximum(
            psum(jnp.sum(rows).astype(dtype), axis_name), one
        )
    elif variant == "dr_grpo":
        rows = jnp.ones(lp.shape[:1], bool) if where is None else jnp.any(C.prepare_where(fn, where, lp.shape), -1)
        length = lp.shape[1] if max_completion_length is None else max_completion_length
        den = psum(jnp.sum(rows).astype(dtype), axis_name) * length
        loss = psum(jnp.sum(per_token), axis_name) / jnp.maximum(den, one)
    else:  # bnpo, dapo: the mean over every counted token of the (global) batch
        loss = psum(jnp.sum(per_token), axis_name) / jnp.maximum(n_tok, one)
    with_entropy = isinstance(entropy_weight, jax.core.Tracer) or float(entropy_weight) != 0.0
    if with_entropy:
        if token_entropies is None:
            raise ValueError(
                f"{fn}: `entropy_weight={entropy_weight!r}` needs `token_entropies` [B, T] "
                "(lossjax.losses.token_entropy of the logits)."
            )
        h = C.check_array(fn, "token_entropies", token_entropies, ndim=2, dtype="float")
        if h.shape != lp.shape:
            raise ValueError(f"{fn}: `token_entropies` must have the shape of `log_probs` {lp.shape}, got {h.shape}.")
        h = jnp.where(keep, C.as_compute(h, dtype), zero)
        loss = loss - jnp.asarray(entropy_weight, dtype) * psum(jnp.sum(h), axis_name) / jnp.maximum(n_tok, one)
    return loss


@register(
    "grpo_loss",
    aliases=("grpo", "dapo_loss", "dr_grpo_loss", "bnpo_loss"),
    family=FAMILY,
    kind="batch",
    formula="reduce_variant(-min(r A, clip(r, 1 - e_low, 1 + e_high) A) + beta k3(pi, ref)) - entropy_weight mean H",
    paper="DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models (2024, arXiv:2402.03300)",
    reference=_TRL_GRPO,
    sample=lambda: _pg_sample(
        1,
        with_ref=True,
        variants=(
            {"variant": "bnpo"},
            {"variant": "dr_grpo", "max_completion_length": 5},
            {"variant": "dapo", "clip_range_high": 0.28, "beta": 0.04},
            {"beta": 0.1, "importance_sampling_level": "sequence", "delta": 1.5},
        ),
    ),
    runtime=("ref_log_probs", "token_where", "token_entropies", "axis_name"),
)
def grpo_loss(
    log_probs: ArrayLike,
    old_log_probs: ArrayLike,
    advantages: ArrayLike,
    ref_log_probs: ArrayLike | None = None,
    *,
    variant: str = "grpo",
    beta: float = 0.0,
    clip_range: float = 0.2,
    clip_range_high: float | None = None,
    delta: float | None = None,
    importance_sampling_level: str = "token",
    max_completion_length: int | None = None,
    entropy_weight: float = 0.0,
    token_entropies: ArrayLike | None = None,
    token_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""GRPO's batch loss with trl's normalizations (grpo, bnpo, dapo, dr_grpo), KL to a reference, entropy bonus.

    .. math::
        \ell_{it} = -\min\big(r_{it} A_{it},\ \mathrm{clip}(r_{it}, 1-\epsilon_\mathrm{low},
                    1+\epsilon_\mathrm{high}) A_{it}\big)
                    + \beta\big(e^{\rho_{it}} - \rho_{it} - 1\big),\quad
        \rho_{it} = \log\pi_\mathrm{ref}(y_{it}) - \log\pi_\theta(y_{it}) \\
        \mathcal L_\mathrm{grpo} = \frac1B\sum_i \frac{\sum_t m_{it}\ell_{it}}{\max(1, \sum_t m_{it})},\quad
        \mathcal L_\mathrm{bnpo,dapo} = \frac{\sum_{it} m_{it}\ell_{it}}{\max(1, \sum_{it} m_{it})},\quad
        \mathcal L_\mathrm{dr\_grpo} = \frac{\sum_{it} m_{it}\ell_{it}}{B\,L}

    minus ``entropy_weight`` times the mean token entropy (trl's entropy
    bonus, a mean over the counted tokens whatever the variant). ``r`` is the
    per-token ratio or GSPO's sequence ratio (:func:`ppo_clip_loss`), ``A``
    the advantages (e.g. :func:`group_relative_advantages`), ``m`` the token
    mask and ``L`` the maximum completion length (``T`` by default). ``B``
    counts the sequences not masked by ``where``. With ``axis_name`` every sum
    and count is over the global batch (trl gathers across processes; dapo's
    normalizer is the global token count). trl divides by the number of
    gradient-accumulation steps on top: do that outside.

    Args:
      log_probs: ``[B, T]`` per-token log-probs of the sampled completions under the policy.
      old_log_probs: ``[B, T]`` under the sampling policy (constant); pass ``stop_gradient(log_probs)``
        for a single on-policy step (trl's default, ratio 1).
      advantages: ``[B]`` or ``[B, T]`` (constant).
      ref_log_probs: ``[B, T]`` under the reference policy (constant); needed when ``beta > 0``.
      variant: trl's ``loss_type``: ``"grpo"``, ``"bnpo"``, ``"dapo"`` or ``"dr_grpo"``.
      beta: ``\beta \geq 0``, the weight of the k3 KL penalty (trl's default 0).
      clip_range, clip_range_high, delta, importance_sampling_level: as in :func:`ppo_clip_loss`.
      max_completion_length: ``L`` of ``"dr_grpo"`` (trl's ``max_completion_length``; default ``T``).
      entropy_weight: the entropy bonus coefficient ``\geq 0`` (trl's ``entropy_coef``).
      token_entropies: ``[B, T]`` per-token entropies of the policy (:func:`token_entropy`), needed
        with ``entropy_weight > 0`` (differentiable).
      token_where: ``[B, T]`` completion-token mask.
      where: optional mask of sequences ``[B]`` or tokens ``[B, T]``.
      axis_name: the mapped batch axis when the batch is sharded across devices.

    Returns:
      A scalar (0 for an all-masked batch). Metrics: :func:`clip_fraction`,
      :func:`approx_kl`, ``masked_mean(kl_estimate(log_probs, ref_log_probs))``
      (trl's logged ``kl``).

    Paper: Shao et al., "DeepSeekMath: Pushing the Limits of Mathematical
    Reasoning in Open Language Models", 2024, arXiv:2402.03300 (GRPO); Liu et
    al., "Understanding R1-Zero-Like Training: A Critical Perspective", 2025,
    arXiv:2503.20783 (Dr. GRPO); Yu et al., "DAPO", 2025, arXiv:2503.14476;
    Xiao et al., "BNPO: Beta Normalization Policy Optimization", 2025,
    arXiv:2506.02864.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.log(jnp.array([[0.5, 0.5], [0.2, 0.4]]))
      >>> m = jnp.array([[True, False], [True, True]])
      >>> float(lossjax.losses.grpo_loss(lp, lp, jnp.array([1.0, -1.0]), token_where=m))  # on-policy: -mean A
      0.0
    """
    return _grpo(
        "grpo_loss",
        log_probs,
        old_log_probs,
        advantages,
        ref_log_probs,
        variant=variant,
        beta=beta,
        clip_range=clip_range,
        clip_range_high=clip_range_high,
        delta=delta,
        importance_sampling_level=importance_sampling_level,
        max_completion_length=max_completion_length,
        entropy_weight=entropy_weight,
        token_entropies=token_entropies,
        token_where=token_where,
        where=where,
        axis_name=axis_name,
    )


@register(
    "gspo_loss",
    aliases=("gspo", "group_sequence_policy_optimization"),
    family=FAMILY,
    kind="batch",
    formula="mean_i -min(s_i A_i, clip(s_i, 1 - e_low, 1 + e_high) A_i),  s_i = exp(mean_t (log pi - log pi_old))",
    paper="Group Sequence Policy Optimization (2025, arXiv:2507.18071)",
    reference=_TRL_GRPO + " with importance_sampling_level='sequence'",
    sample=lambda: _pg_sample(
        2, with_ref=True, variants=({"clip_range": 0.1, "clip_range_high": 0.15, "beta": 0.05, "variant": "dapo"},)
    ),
    runtime=("ref_log_probs", "token_where", "token_entropies", "axis_name"),
)
def gspo_loss(
    log_probs: ArrayLike,
    old_log_probs: ArrayLike,
    advantages: ArrayLike,
    ref_log_probs: ArrayLike | None = None,
    *,
    variant: str = "grpo",
    beta: float = 0.0,
    clip_range: float = 3e-4,
    clip_range_high: float | None = 4e-4,
    delta: float | None = None,
    max_completion_length: int | None = None,
    entropy_weight: float = 0.0,
    token_entropies: ArrayLike | None = None,
    token_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""GSPO: GRPO with the length-normalized sequence likelihood ratio, clipped per sequence.

    .. math::
        s_i = \exp\Big(\frac{1}{|y_i|}\sum_t \log\frac{\pi_\theta(y_{it})}{\pi_\mathrm{old}(y_{it})}\Big),\qquad
        \mathcal L = \frac1B\sum_i -\min\big(s_i A_i,\ \mathrm{clip}(s_i, 1-\epsilon_\mathrm{low},
                     1+\epsilon_\mathrm{high}) A_i\big)

    :func:`grpo_loss` with ``importance_sampling_level="sequence"`` and the
    paper's clip ranges (``3 \cdot 10^{-4}``, ``4 \cdot 10^{-4}``); the other
    options (trl's variants, KL, entropy bonus) as there.

    Args:
      log_probs, old_log_probs, advantages, ref_log_probs: as in :func:`grpo_loss`.
      variant, beta, clip_range, clip_range_high, delta, max_completion_length, entropy_weight,
        token_entropies, token_where, where, axis_name: as in :func:`grpo_loss`.

    Returns:
      A scalar (0 for an all-masked batch).

    Paper: Zheng et al., "Group Sequence Policy Optimization", 2025, arXiv:2507.18071.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp, old = jnp.log(jnp.array([[0.5, 0.5]])), jnp.log(jnp.array([[0.4, 0.5]]))
      >>> float(lossjax.losses.gspo_loss(lp, old, jnp.array([1.0])).round(6))  # s = 1.118 clipped at 1.0004
      -1.0004
    """
    return _grpo(
        "gspo_loss",
        log_probs,
        old_log_probs,
        advantages,
        ref_log_probs,
        variant=variant,
        beta=beta,
        clip_range=clip_range,
        clip_range_high=clip_range_high,
        delta=delta,
        importance_sampling_level="sequence",
        max_completion_length=max_completion_length,
        entropy_weight=entropy_weight,
        token_entropies=token_entropies,
        token_where=token_where,
        where=where,
        axis_name=axis_name,
    )


# ------------------------------ KL estimators and metrics ------------------------------


@register(
    "kl_estimate",
    aliases=("kl_penalty", "token_kl_estimate"),
    family=FAMILY,
    kind="per_example",
    formula="k1 = -log r, k2 = (log r)^2 / 2, k3 = r - 1 - log r,  r = ref(y_t) / pi(y_t), per token",
    paper="Approximating KL Divergence (Schulman, 2020, blog; no arXiv id)",
    reference=_TRL_GRPO + " per_token_kl (k3); closed forms (k1, k2)",
    sample=lambda: _pair_sample(3, variants=({"variant": "k1"}, {"variant": "k2"})),
    runtime=("token_where",),
)
def kl_estimate(
    log_probs: ArrayLike,
    ref_log_probs: ArrayLike,
    *,
    variant: str = "k3",
    token_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Per-token estimates of ``KL(pi || ref)`` from tokens sampled from ``pi`` (Schulman's k1, k2, k3).

    .. math::
        \rho_t = \log\pi_\mathrm{ref}(y_t) - \log\pi_\theta(y_t),\qquad
        k_1 = -\rho_t,\quad k_2 = \tfrac12\rho_t^2,\quad k_3 = e^{\rho_t} - \rho_t - 1

    ``k1`` is unbiased with high variance (and can be negative), ``k2`` biased
    with low variance, ``k3`` unbiased, non-negative and low-variance (GRPO's
    penalty, trl's ``per_token_kl``). Gradients flow into ``log_probs``; the
    reference is constant. ``e^{\rho}`` is evaluated with ``\rho`` clamped at 80.

    Args:
      log_probs: ``[B, T]`` policy log-probs of the sampled tokens.
      ref_log_probs: ``[B, T]`` reference log-probs of the same tokens (constant).
      variant: ``"k1"``, ``"k2"`` or ``"k3"``.
      token_where: ``[B, T]`` token mask.
      where: optional mask of sequences ``[B]`` or tokens ``[B, T]``.

    Returns:
      ``[B, T]`` per-token estimates (0 at masked tokens); their masked mean is
      trl's logged ``kl`` (``lossjax.masked_mean``).

    Paper: Schulman, "Approximating KL Divergence", 2020 (blog post, no arXiv
    id); used by Shao et al., DeepSeekMath (GRPO), 2024, arXiv:2402.03300.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp, ref = jnp.log(jnp.array([[0.5, 0.25]])), jnp.log(jnp.array([[0.25, 0.25]]))
      >>> lossjax.losses.kl_estimate(lp, ref).round(4)  # 0.5 - 1 + log 2, 0
      Array([[0.1931, 0.    ]], dtype=float32)
    """
    fn = "kl_estimate"
    C.check_one_of(fn, "variant", variant, KL_ESTIMATORS)
    lp, mask, dtype = _tokens(fn, log_probs, token_where, where)
    ref = _like(fn, "ref_log_probs", ref_log_probs, lp, dtype, mask)
    lp = C.fill_masked(C.as_compute(lp, dtype), mask)
    return C.zero_masked(_kl_terms(lp, ref, variant), mask)


@register(
    "approx_kl",
    family=FAMILY,
    kind="function",
    formula="masked mean over tokens of k(pi_old / pi),  k = k1 | k2 | k3 (a logged metric)",
    paper="Approximating KL Divergence (Schulman, 2020, blog; no arXiv id)",
    reference="closed forms; CleanRL ppo.py approx_kl = ((ratio - 1) - logratio).mean() (k3), "
    "trl PPOTrainer approxkl = 0.5 * (logprobs_diff ** 2).mean() (k2)",
    sample=lambda: dataclasses.replace(
        _pair_sample(4, variants=({"variant": "k1"}, {"variant": "k2"})), diff_argnums=(), where=False, extremes=None
    ),
    runtime=("token_where", "axis_name"),
)
def approx_kl(
    log_probs: ArrayLike,
    old_log_probs: ArrayLike,
    *,
    variant: str = "k3",
    token_where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""The approximate KL between the sampling and the current policy that PPO/GRPO runs log (a scalar).

    .. math::
        \widehat{\mathrm{KL}} = \frac{\sum_t m_t\, k(\rho_t)}{\max(1, \sum_t m_t)},\qquad
        \rho_t = \log\pi_\mathrm{old}(y_t) - \log\pi_\theta(y_t)

    with ``k`` one of :func:`kl_estimate`'s estimators: ``"k3"`` is CleanRL's
    ``approx_kl``, ``"k2"`` trl ``PPOTrainer``'s ``approxkl``, ``"k1"`` the
    "old" approx KL. A metric: no gradient is meant to flow (it does, as
    :func:`kl_estimate`'s).

    Args:
      log_probs: ``[B, T]`` per-token log-probs under the current policy.
      old_log_probs: ``[B, T]`` under the sampling policy.
      variant: ``"k1"``, ``"k2"`` or ``"k3"``.
      token_where: ``[B, T]`` token mask.
      axis_name: average over the global batch across this mapped axis.

    Returns:
      A scalar (0 when no token counts).

    Paper: Schulman, "Approximating KL Divergence", 2020 (blog post, no arXiv id).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp, old = jnp.log(jnp.array([[0.5, 0.25]])), jnp.log(jnp.array([[0.25, 0.25]]))
      >>> float(lossjax.losses.approx_kl(lp, old).round(4))  # (0.1931 + 0) / 2
      0.0966
    """
    fn = "approx_kl"
    C.check_one_of(fn, "variant", variant, KL_ESTIMATORS)
    lp, mask, dtype = _tokens(fn, log_probs, token_where, None)
    old = _like(fn, "old_log_probs", old_log_probs, lp, dtype, mask)
    lp = C.fill_masked(C.as_compute(lp, dtype), mask)
    k = C.zero_masked(_kl_terms(lp, old, variant), mask)
    keep = jnp.ones(lp.shape, bool) if mask is None else mask
    count = psum(jnp.sum(keep).astype(dtype), axis_name)
    return psum(jnp.sum(k), axis_name) / jnp.maximum(count, jnp.ones((), dtype))


_CLIP_SIDES = ("region", "low", "high")


@register(
    "clip_fraction",
    aliases=("clip_ratio",),
    family=FAMILY,
    kind="function",
    formula="mean over tokens of [r < 1 - e_low and A < 0] (low), [r > 1 + e_high and A > 0] (high), or either",
    paper="Proximal Policy Optimization Algorithms (2017, arXiv:1707.06347)",
    reference=_TRL_GRPO + " clip_ratio/low_mean, high_mean, region_mean",
    sample=lambda: dataclasses.replace(
        _pg_sample(
            5,
            variants=(
                {"variant": "low"},
                {"variant": "high", "clip_range_high": 0.05},
                {"importance_sampling_level": "sequence"},
            ),
        ),
        diff_argnums=(),
        where=False,
        extremes=None,
    ),
    runtime=("token_where", "axis_name"),
)
def clip_fraction(
    log_probs: ArrayLike,
    old_log_probs: ArrayLike,
    advantages: ArrayLike,
    *,
    variant: str = "region",
    clip_range: float = 0.2,
    clip_range_high: float | None = None,
    importance_sampling_level: str = "token",
    token_where: ArrayLike | None = None,
    axis_name=None,
) -> Array:
    r"""The fraction of tokens whose ratio is clipped (where the clip removes the gradient): trl's ``clip_ratio``.

    .. math::
        \mathrm{low} = [r < 1-\epsilon_\mathrm{low}]\,[A < 0],\quad
        \mathrm{high} = [r > 1+\epsilon_\mathrm{high}]\,[A > 0],\quad
        \mathrm{region} = \mathrm{low} \lor \mathrm{high}

    averaged over the counted tokens (over the sequences for
    ``importance_sampling_level="sequence"``, as trl), with ``r`` as in
    :func:`ppo_clip_loss`.

    Args:
      log_probs, old_log_probs, advantages: as in :func:`ppo_clip_loss`.
      variant: ``"region"``, ``"low"`` or ``"high"`` (trl's ``clip_ratio/region_mean``, ``low_mean``,
        ``high_mean``).
      clip_range, clip_range_high, importance_sampling_level: as in :func:`ppo_clip_loss`.
      token_where: ``[B, T]`` token mask.
      axis_name: average over the global batch across this mapped axis.

    Returns:
      A scalar in ``[0, 1]`` (no gradient).

    Paper: Schulman et al., "Proximal Policy Optimization Algorithms", 2017, arXiv:1707.06347.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp, old = jnp.log(jnp.array([[0.6, 0.3]])), jnp.log(jnp.array([[0.4, 0.3]]))
      >>> float(lossjax.losses.clip_fraction(lp, old, jnp.array([1.0])))  # ratios 1.5 (clipped), 1
      0.5
    """
    fn = "clip_fraction"
    C.check_one_of(fn, "variant", variant, _CLIP_SIDES)
    C.check_one_of(fn, "importance_sampling_level", importance_sampling_level, _LEVELS)
    clip_high = _check_clip(fn, clip_range, clip_range_high, None)
    lp, mask, dtype = _tokens(fn, log_probs, token_where, None)
    old = _like(fn, "old_log_probs", old_log_probs, lp, dtype, mask)
    adv = _advantages(fn, advantages, lp, dtype, mask)
    lp = jax.lax.stop_gradient(C.fill_masked(C.as_compute(lp, dtype), mask))
    ratio = jnp.exp(jnp.minimum(_log_ratio(lp, old, mask, dtype, importance_sampling_level), _EXP_CLAMP))
    low = (ratio < 1 - jnp.asarray(clip_range, dtype)) & (adv < 0)
    high = (ratio > 1 + jnp.asarray(clip_high, dtype)) & (adv > 0)
    hit = {"low": low, "high": high, "region": low | high}[variant]
    keep = jnp.ones(lp.shape, bool) if mask is None else mask
    one = jnp.ones((), dtype)
    if importance_sampling_level == "sequence":  # one value per sequence (every token of it agrees)
        rows = jnp.any(keep, axis=-1)
        total, count = jnp.sum(hit[:, 0] & rows).astype(dtype), jnp.sum(rows).astype(dtype)
    else:
        total, count = jnp.sum(hit & keep).astype(dtype), jnp.sum(keep).astype(dtype)
    return psum(total, axis_name) / jnp.maximum(psum(count, axis_name), one)


# ------------------------------ advantages and entropy ------------------------------

_SCALE_REWARDS = ("group", "batch", "none")


@register(
    "group_relative_advantages",
    aliases=("grpo_advantages",),
    family=FAMILY,
    kind="function",
    formula="(r_gs - mean_s r_g) / (std + epsilon),  std over the group (or the whole batch), unbiased",
    paper="DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models (2024, arXiv:2402.03300)",
    reference="huggingface/trl 1.16.0 trainer/grpo_trainer.py::_generate_and_score_completions "
    "(scale_rewards, nanstd, nan_to_num)",
    sample=lambda: Sample(
        args=(np.array([[1.0, 0.0, 0.5, 1.0], [0.2, 0.2, 0.2, 0.9], [0.0, 1.0, 0.0, 0.0]], np.float32),),
        diff_argnums=(),
        where=False,
        variants=({"scale_rewards": "batch"}, {"scale_rewards": "none"}),
    ),
    allow_nonfinite=("rewards",),
)
def group_relative_advantages(
    rewards: ArrayLike,
    *,
    scale_rewards: str = "group",
    epsilon: float = 1e-4,
) -> Array:
    r"""GRPO's group-relative advantages: rewards centred on their group's mean, scaled by a std.

    .. math:: A_{gs} = \frac{r_{gs} - \bar r_g}{\sigma + \epsilon}

    over ``rewards [G, S]`` (``G`` prompts, ``S`` sampled completions each),
    with ``\bar r_g`` the group mean and ``\sigma`` the unbiased standard
    deviation of the group (``scale_rewards="group"``, GRPO), of the whole
    batch (``"batch"``), or no scaling (``"none"``, Dr. GRPO: ``\sigma +
    \epsilon`` replaced by 1). NaN rewards (completions no reward function
    could score) are left out of the means and deviations and get advantage 0,
    as trl's ``nanmean``/``nanstd``/``nan_to_num``. A group with one scored
    completion has deviation 0.

    Args:
      rewards: ``[G, S]`` rewards (NaN = unscorable); ``S >= 1``.
      scale_rewards: ``"group"``, ``"batch"`` or ``"none"`` (trl's ``scale_rewards``).
      epsilon: added to the deviation (trl's ``1e-4``), ``>= 0``.

    Returns:
      ``[G, S]`` advantages (no gradient flows to the rewards: they are data).

    Paper: Shao et al., "DeepSeekMath: Pushing the Limits of Mathematical
    Reasoning in Open Language Models", 2024, arXiv:2402.03300; Liu et al.,
    "Understanding R1-Zero-Like Training: A Critical Perspective", 2025,
    arXiv:2503.20783 (no std scaling).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.group_relative_advantages(jnp.array([[1.0, 0.0, 1.0, 0.0]]), epsilon=0.0).round(4)
      Array([[ 0.866, -0.866,  0.866, -0.866]], dtype=float32)
    """
    fn = "group_relative_advantages"
    C.check_one_of(fn, "scale_rewards", scale_rewards, _SCALE_REWARDS)
    C.check_positive(fn, "epsilon", epsilon, allow_zero=True)
    r = C.check_array(fn, "rewards", rewards, ndim=2, dtype="number")
    dtype = C.compute_dtype(r) if jnp.issubdtype(r.dtype, jnp.floating) else jnp.dtype(jnp.float32)
    r = jax.lax.stop_gradient(C.as_compute(r, dtype))
    ok = ~jnp.isnan(r)
    zero, one = jnp.zeros((), dtype), jnp.ones((), dtype)
    r0 = jnp.where(ok, r, zero)

    def mean_std(axis):
        n = jnp.sum(ok, axis=axis, keepdims=True).astype(dtype)
        mean = jnp.sum(r0, axis=axis, keepdims=True) / jnp.maximum(n, one)
        dev = jnp.where(ok, r0 - mean, zero)
        var = jnp.sum(jnp.square(dev), axis=axis, keepdims=True) / jnp.maximum(n - 1, one)
        return mean, jnp.where(n > 1, jnp.sqrt(var), zero)

    mean, std = mean_std(-1)
    adv = r0 - mean
    if scale_rewards != "none":
        if scale_rewards == "batch":
            _, std = mean_std(None)
        adv = adv / (std + jnp.asarray(epsilon, dtype))
    return jnp.where(ok, adv, zero)


@register(
    "token_entropy",
    family=FAMILY,
    kind="per_example",
    formula="H = -sum_v p_v log p_v,  p = softmax(logits)",
    paper="Beyond the 80/20 Rule: High-Entropy Minority Tokens Drive Effective Reinforcement Learning for LLM "
    "Reasoning (2025, arXiv:2506.01939)",
    reference="huggingface/trl 1.16.0 trainer/utils.py::entropy_from_logits",
    sample=lambda: Sample(args=(np.random.default_rng(6).normal(size=(3, 2, 5)).astype(np.float32),), class_axis=True),
)
def token_entropy(logits: ArrayLike, *, where: ArrayLike | None = None) -> Array:
    r"""The entropy of each token's predicted distribution (GRPO's entropy bonus, entropy-based token selection).

    .. math:: H_t = -\sum_v p_{tv}\log p_{tv},\qquad p_t = \mathrm{softmax}(z_t)

    computed from ``log_softmax`` with ``0 \log 0 = 0`` (finite value and
    gradient with ``-\infty`` logits). Differentiable: the entropy bonus of
    :func:`grpo_loss` (``entropy_weight``) takes it as ``token_entropies``.

    Args:
      logits: ``[..., V]`` unnormalized scores.
      where: optional mask aligned with the leading axes of ``[...]``.

    Returns:
      ``[...]`` entropies in nats (0 at masked positions).

    Paper: Wang et al., "Beyond the 80/20 Rule: High-Entropy Minority Tokens
    Drive Effective Reinforcement Learning for LLM Reasoning", 2025,
    arXiv:2506.01939 (token entropy in RLVR).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.token_entropy(jnp.zeros((1, 4))).round(4)  # log 4
      Array([1.3863], dtype=float32)
    """
    fn = "token_entropy"
    z = C.check_array(fn, "logits", logits, min_ndim=1, dtype="float")
    dtype = C.compute_dtype(z)
    mask = C.prepare_where(fn, where, z.shape[:-1])
    z = C.fill_masked(C.as_compute(z, dtype), mask)
    logp = jax.nn.log_softmax(z, axis=-1)
    finite = jnp.isfinite(logp)
    safe = jnp.where(finite, logp, jnp.zeros((), dtype))
    h = -jnp.sum(jnp.where(finite, jnp.exp(safe) * safe, jnp.zeros((), dtype)), axis=-1)
    return C.zero_masked(h, mask)


# ------------------------------ unified policy gradient ------------------------------


@register(
    "unified_policy_gradient_loss",
    aliases=("upge_loss",),
    family=FAMILY,
    kind="per_example",
    formula="-sg(mask_stable) A pi(y_t) / sg(pi_den(y_t)),  per token",
    paper="Towards a Unified View of Large Language Model Post-Training (2025, arXiv:2509.04419)",
    reference="closed form of the paper's unified policy gradient estimator (stabilization mask x 1/reference "
    "denominator x advantage x likelihood gradient)",
    sample=lambda: _pg_sample(7, variants=({"clip_range": None},)),
    runtime=("token_where",),
)
def unified_policy_gradient_loss(
    log_probs: ArrayLike,
    denominator_log_probs: ArrayLike,
    advantages: ArrayLike,
    *,
    clip_range: float | None = 0.2,
    clip_range_high: float | None = None,
    token_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""The unified policy gradient estimator of SFT and RL post-training, as a per-token surrogate loss.

    .. math::
        \ell_t = -\mathbb 1^\mathrm{stable}_t\, A_t\,
                 \frac{\pi_\theta(y_t)}{\mathrm{sg}[\pi_\mathrm{den}(y_t)]},\qquad
        \nabla\ell_t = -\mathbb 1^\mathrm{stable}_t\, \frac{1}{\pi_\mathrm{den}(y_t)}\, A_t\, \nabla\pi_\theta(y_t)

    The gradient is the paper's four parts: stabilization mask, reference
    policy denominator, advantage estimate, likelihood gradient. The
    denominator selects the method: the sampling policy ``\pi_\mathrm{old}``
    (PPO/GRPO; with the PPO clip mask ``\mathbb 1^\mathrm{stable}_t = 0``
    where ``r_t > 1 + \epsilon_\mathrm{high}, A_t > 0`` or ``r_t < 1 -
    \epsilon_\mathrm{low}, A_t < 0``, ``r_t = \pi_\theta/\pi_\mathrm{den}``)
    or the current policy itself (``stop_gradient(log_probs)``, ratio 1:
    with ``A = 1`` the SFT gradient ``-\nabla\log\pi_\theta``).
    ``clip_range=None`` drops the mask. The value at the current parameters
    is ``-\mathbb 1 A r``; only its gradient is meaningful.

    Args:
      log_probs: ``[B, T]`` per-token log-probs under the policy.
      denominator_log_probs: ``[B, T]`` log-probs of the denominator policy (constant).
      advantages: ``[B]`` or ``[B, T]`` advantage estimates (constant).
      clip_range: ``\epsilon_\mathrm{low}`` of the stabilization mask, or None for no mask.
      clip_range_high: ``\epsilon_\mathrm{high}`` (None: ``clip_range``).
      token_where: ``[B, T]`` token mask.
      where: optional mask of sequences ``[B]`` or tokens ``[B, T]``.

    Returns:
      ``[B, T]`` per-token surrogate losses (0 at masked tokens).

    Paper: Lv et al., "Towards a Unified View of Large Language Model
    Post-Training", 2025, arXiv:2509.04419.

    Example:
      >>> import jax, jax.numpy as jnp, lossjax
      >>> lp = jnp.log(jnp.array([[0.5, 0.25]]))
      >>> sft = lambda x: lossjax.losses.unified_policy_gradient_loss(x, jax.lax.stop_gradient(x), jnp.ones(1)).sum()
      >>> jax.grad(sft)(lp)  # the SFT (NLL) gradient: -1 per token
      Array([[-1., -1.]], dtype=float32)
    """
    fn = "unified_policy_gradient_loss"
    if clip_range is not None:
        clip_high = _check_clip(fn, clip_range, clip_range_high, None)
    lp, mask, dtype = _tokens(fn, log_probs, token_where, where)
    den = _like(fn, "denominator_log_probs", denominator_log_probs, lp, dtype, mask)
    adv = _advantages(fn, advantages, lp, dtype, mask)
    lp = C.fill_masked(C.as_compute(lp, dtype), mask)
    ratio = jnp.exp(jnp.minimum(lp - den, _EXP_CLAMP))
    loss = -adv * ratio
    if clip_range is not None:
        r = jax.lax.stop_gradient(ratio)
        unstable = ((r > 1 + jnp.asarray(clip_high, dtype)) & (adv > 0)) | (
            (r < 1 - jnp.asarray(clip_range, dtype)) & (adv < 0)
        )
        loss = jnp.where(unstable, jnp.zeros((), dtype), loss)
    return C.zero_masked(loss, mask)
