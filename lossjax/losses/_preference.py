"""Preference-optimization losses: DPO, IPO, SimPO, ORPO, KTO, NPO and relatives.

Every loss here takes log-probabilities of responses in one of two forms,
decided at trace time from the rank:

* per-sequence ``[B]``: the summed (or, for the length-normalized methods
  SimPO, ORPO and IPO, the averaged) response log-probabilities, used as given;
* per-token ``[B, T]`` with an optional token mask ``chosen_where`` /
  ``rejected_where`` / ``token_where`` ``[B, T]`` (bool or 0/1; padding and
  prompt tokens off): the loss sums the masked tokens, or averages them for the
  length-normalized methods (:func:`lossjax.losses.sequence_log_probs`).
  Padded tokens may hold anything (``-inf``, NaN): they are replaced before
  the sum.

Chosen and rejected responses may have different lengths ``T``, and forms may
be mixed per argument: e.g. per-token policy log-probs ``[B, T]`` with
reference log-probs precomputed per sequence ``[B]`` (summed, or averaged for
the length-normalized methods). Reference
log-probabilities are treated as constants (``stop_gradient``). The losses
return per-example values ``[B]`` (kind ``per_example``); the implicit rewards
trl's trainers log (``beta * (policy - ref)``, ``stop_gradient``) come from
:func:`implicit_rewards`, called on the chosen and on the rejected
log-probabilities. Per-token log-probabilities come from
:func:`lossjax.losses.token_log_probs` or, for large vocabularies without the
``[tokens, vocab]`` logits, ``-lossjax.losses.linear_cross_entropy(...)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax._fused import DEFAULT_MEMORY_BUDGET
from lossjax._parallel import psum
from lossjax._sequence import check_log_probs, reduce_sequence, token_mask_of
from lossjax.losses._language import linear_cross_entropy
from lossjax.registry import Sample, register

__all__ = [
    "CPO_VARIANTS",
    "DPO_VARIANTS",
    "F_DIVERGENCES",
    "BCOState",
    "aot_loss",
    "aot_unpaired_loss",
    "apo_down_loss",
    "apo_zero_loss",
    "bco_loss",
    "bco_pair_loss",
    "cpo_loss",
    "discopop_loss",
    "dpo_hinge_loss",
    "dpo_loss",
    "exo_pair_loss",
    "forget_only_f_divergence_unlearning",
    "implicit_rewards",
    "ipo_loss",
    "kto_loss",
    "kto_reference_kl",
    "length_normalized_dpo_loss",
    "linear_dpo_loss",
    "linear_kto_loss",
    "linear_preference_loss",
    "nca_pair_loss",
    "negative_preference_optimization",
    "noisy_verifier_reward_correction",
    "orpo_loss",
    "robust_dpo_loss",
    "rpo_loss",
    "simpo_loss",
    "soft_preference_cross_entropy",
    "sppo_hard_loss",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

FAMILY = "preference"
_RUNTIME = ("chosen_where", "rejected_where")


# ------------------------------ shared plumbing ------------------------------


def _pair_inputs(fn, names, arrays, masks, mask_names, where, *, average):
    """Checks and reduces (policy/reference) x (chosen/rejected) log-probs to ``[B]`` each.

    ``names``/``arrays``: the log-prob arguments in order; ``masks[i]`` is the
    token mask of ``arrays[i]`` (chosen arrays share the chosen mask, ...).
    Returns (reduced arrays, batch mask, dtype).
    """
    xs = [check_log_probs(fn, n, a) for n, a in zip(names, arrays, strict=True)]
    first = xs[0]
    for n, x in zip(names[1:], xs[1:], strict=True):
        if x.shape[0] != first.shape[0]:
            raise ValueError(
                f"{fn}: every log-prob argument needs the same batch size; "
                f"`{names[0]}` has shape {first.shape}, `{n}` has shape {x.shape}."
            )
    dtype = C.compute_dtype(*xs)
    batch_mask = C.prepare_where(fn, where, (first.shape[0],))
    # A token mask is checked against the first per-token array of its group; per-sequence
    # arrays of the group (e.g. precomputed reference log-probs) are used as given.
    checked = {}
    for mn in dict.fromkeys(mask_names):
        group = [(n, x) for n, x, g in zip(names, xs, mask_names, strict=True) if g == mn]
        token = [(n, x) for n, x in group if x.ndim == 2]
        m = masks[mask_names.index(mn)]
        checked[mn] = token_mask_of(
            fn, mn, m, token[0][1] if token else group[0][1], token[0][0] if token else group[0][0]
        )
        for n, x in token[1:]:
            if x.shape != token[0][1].shape:
                raise ValueError(
                    f"{fn}: per-token `{n}` must have the shape of `{token[0][0]}` {token[0][1].shape} "
                    f"(they share `{mn}`), got {x.shape}."
                )
    out = [
        reduce_sequence(x, checked[mn] if x.ndim == 2 else None, batch_mask, dtype, average=average)
        for x, mn in zip(xs, mask_names, strict=True)
    ]
    return out, batch_mask, dtype


def _smoothed_logistic(logits: Array, label_smoothing, *, robust: bool = False) -> Array:
    """``-(1-e) log s(x) - e log s(-x)``; robust: ``(-(1-e) log s(x) + e log s(-x)) / (1 - 2e)``."""
    e = jnp.asarray(label_smoothing, logits.dtype)
    pos = -jax.nn.log_sigmoid(logits)
    neg = -jax.nn.log_sigmoid(-logits)
    if robust:
        return ((1 - e) * pos - e * neg) / (1 - 2 * e)
    return (1 - e) * pos + e * neg


_POLICY_REF = ("policy_chosen_log_probs", "policy_rejected_log_probs", "ref_chosen_log_probs", "ref_rejected_log_probs")


def _policy_ref_inputs(fn, arrays, chosen_where, rejected_where, where, *, average):
    """:func:`_pair_inputs` for the four (policy/reference) x (chosen/rejected) log-prob arguments."""
    return _pair_inputs(
        fn,
        _POLICY_REF,
        arrays,
        (chosen_where, rejected_where, chosen_where, rejected_where),
        ("chosen_where", "rejected_where", "chosen_where", "rejected_where"),
        where,
        average=average,
    )


def _paired_sample(
    n: int = 6, t: int = 4, seed: int = 0, *, token_level: bool = True, with_ref: bool = True, variants=()
) -> Sample:
    rng = np.random.default_rng(seed)
    k = 4 if with_ref else 2
    if token_level:
        arrs = tuple((-rng.uniform(0.05, 2.0, size=(n, t))).astype(np.float32) for _ in range(k))
    else:
        arrs = tuple((-rng.uniform(0.5, 8.0, size=(n,))).astype(np.float32) for _ in range(k))
    extremes = (
        tuple(np.zeros_like(a) for a in arrs),  # probability 1
        tuple(np.full_like(a, -1e4) for a in arrs),  # probability ~0
        tuple(np.where(np.arange(a.size).reshape(a.shape) % 2 == 0, 0.0, -1e4).astype(np.float32) for a in arrs),
    )
    return Sample(args=arrs, diff_argnums=(0, 1), extremes=extremes, variants=tuple(variants))


# ----------------------------------- DPO -----------------------------------


def _dpo_sample() -> Sample:
    return _paired_sample(
        token_level=True,
        variants=(
            {"beta": 0.5, "label_smoothing": 0.2},
            {"beta": 0.3, "label_smoothing": 0.15, "robust": True},
            {"f_divergence": "forward_kl", "beta": 0.5},
            {"f_divergence": "js_divergence", "variant": "hinge", "beta": 0.4},
            {"f_divergence": "alpha_divergence", "f_divergence_alpha": 0.3, "variant": "ipo", "beta": 0.5},
            {"reference_free": True, "variant": "sigmoid_norm", "beta": 0.5},
        ),
    )


def _ipo_sample() -> Sample:
    return _paired_sample(token_level=True, variants=({"beta": 0.5},))


@register(
    "dpo_loss",
    aliases=("dpo", "direct_preference_optimization"),
    family=FAMILY,
    kind="per_example",
    formula="-(1-e) log s(b D) - e log s(-b D),  D = (log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l)); "
    "variant: every per-pair trl loss_type, f_divergence: f-DPO",
    paper="Direct Preference Optimization: Your Language Model is Secretly a Reward Model (2023, arXiv:2305.18290)",
    reference="huggingface/trl 1.16.0 trainer/dpo_trainer.py::DPOTrainer._compute_loss (every per-pair loss_type, "
    "f_divergence_type) (+ trl 0.x cDPO label smoothing)",
    sample=_dpo_sample,
    runtime=_RUNTIME,
)
def dpo_loss(
    policy_chosen_log_probs: ArrayLike,
    policy_rejected_log_probs: ArrayLike,
    ref_chosen_log_probs: ArrayLike,
    ref_rejected_log_probs: ArrayLike,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    robust: bool = False,
    variant: str = "sigmoid",
    f_divergence: str = "reverse_kl",
    f_divergence_alpha: float = 0.5,
    temperature: float = 0.05,
    reference_free: bool = False,
    chosen_where: ArrayLike | None = None,
    rejected_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Direct Preference Optimization, with every per-pair loss type of trl's ``DPOTrainer``.

    .. math::
        c = \log\pi_\theta(y_w) - \log\pi_\mathrm{ref}(y_w),\quad
        r = \log\pi_\theta(y_l) - \log\pi_\mathrm{ref}(y_l),\quad
        \Delta = f'(c) - f'(r) \\
        \ell_\mathrm{sigmoid} = -(1-\varepsilon)\log\sigma(\beta\Delta) - \varepsilon\log\sigma(-\beta\Delta)

    with log-probabilities summed over the response tokens and ``f' = id``
    (``f_divergence="reverse_kl"``, standard DPO). ``variant`` is trl's
    ``loss_type`` (each is also registered on its own, with its paper):

    * ``"sigmoid"``: the formula above; ``label_smoothing`` ``\varepsilon > 0``
      is conservative DPO (cDPO, trl 0.x);
    * ``"robust"`` (:func:`robust_dpo_loss`):
      ``((1-\varepsilon)(-\log\sigma(\beta\Delta)) - \varepsilon(-\log\sigma(-\beta\Delta))) / (1-2\varepsilon)``;
      ``robust=True`` is the same;
    * ``"hinge"`` (:func:`dpo_hinge_loss`): ``\max(0, 1 - \beta\Delta)``;
    * ``"ipo"`` (:func:`ipo_loss`): ``(\Delta_c/|y_w| - \Delta_r/|y_l| - 1/(2\beta))^2`` (per-token averages);
    * ``"sigmoid_norm"`` (:func:`length_normalized_dpo_loss`): ``-\log\sigma(\beta(f'(c)/|y_w| - f'(r)/|y_l|))``;
    * ``"exo_pair"`` (:func:`exo_pair_loss`), ``"nca_pair"`` (:func:`nca_pair_loss`),
      ``"bco_pair"`` (:func:`bco_pair_loss`), ``"sppo_hard"`` (:func:`sppo_hard_loss`),
      ``"apo_zero"`` (:func:`apo_zero_loss`), ``"apo_down"`` (:func:`apo_down_loss`),
      ``"discopop"`` (:func:`discopop_loss`, ``temperature`` is its ``\tau``);
    * ``"sft"``: the chosen response's length-normalized NLL ``-\log\pi_\theta(y_w)/|y_w|`` (trl's
      ``"sft"`` term; DPO plus it is :func:`rpo_loss`).

    trl's ``aot`` and ``aot_unpaired`` sort the batch and give one value per
    batch: :func:`aot_loss`, :func:`aot_unpaired_loss`. ``f_divergence`` is
    trl's ``f_divergence_type`` (f-DPO): ``"forward_kl"``
    ``f'(t) = 1 - 1/t``, ``"js_divergence"`` ``f'(t) = \log 2 + \log\sigma(\log t)``,
    ``"alpha_divergence"`` ``f'(t) = (t^{\alpha-1} - 1)/(\alpha - 1)``; the
    exponents are clamped at 80 (as trl clamps the alpha divergence's), so
    extreme log-ratios stay finite. Only the variants built on ``\Delta``
    take one (sigmoid, sigmoid_norm, hinge, ipo, exo_pair, robust, discopop,
    sft), as in trl.

    Args:
      policy_chosen_log_probs, policy_rejected_log_probs: policy log-probs of the chosen
        / rejected responses, ``[B]`` (summed) or ``[B, T]`` (per token).
      ref_chosen_log_probs, ref_rejected_log_probs: the reference model's, same shapes
        (treated as constants).
      beta: ``\beta``, the inverse KL strength (IPO's ``\tau``).
      label_smoothing: ``\varepsilon``: the label-flip rate in ``[0, 0.5)`` (sigmoid, robust), EXO's
        ``\varepsilon`` in ``(0, 1)``; must be 0 for the other variants.
      robust: use the robust (unbiased) estimator instead of cDPO (``variant="robust"``).
      variant: trl's ``loss_type``, one of :data:`DPO_VARIANTS`.
      f_divergence: trl's ``f_divergence_type``, one of :data:`F_DIVERGENCES`.
      f_divergence_alpha: ``\alpha`` of ``"alpha_divergence"`` (trl's ``f_alpha_divergence_coef``), static.
      temperature: DiscoPOP's ``\tau`` (trl's ``discopop_tau``), ``> 0``.
      reference_free: ignore the reference log-probs (an implicit uniform reference, trl 0.x
        ``reference_free``).
      chosen_where, rejected_where: ``[B, T]`` token masks (bool or 0/1) for
        per-token inputs.
      where: optional ``[B]`` example mask.

    Returns:
      ``[B]`` per-example losses (trl averages them). The rewards trl logs are
      ``implicit_rewards(policy, ref, beta=beta)`` of the chosen and of the
      rejected responses (:func:`implicit_rewards`).

    Paper: Rafailov et al., "Direct Preference Optimization: Your Language
    Model is Secretly a Reward Model", NeurIPS 2023, arXiv:2305.18290; f-DPO:
    Wang et al., "Beyond Reverse KL: Generalizing Direct Preference
    Optimization with Diverse Divergence Constraints", 2023, arXiv:2309.16240.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.array([-1.0]), jnp.array([-3.0]), jnp.array([-2.0]), jnp.array([-2.0])
      >>> lossjax.losses.dpo_loss(*lp).round(4)
      Array([0.5981], dtype=float32)
      >>> lossjax.losses.dpo_loss(*lp, variant="hinge").round(4)  # max(0, 1 - 0.1 * 2)
      Array([0.8], dtype=float32)
    """
    fn = "dpo_loss"
    if robust:
        if variant not in ("sigmoid", "robust"):
            raise ValueError(f"{fn}: `robust=True` is variant='robust'; it cannot combine with variant={variant!r}.")
        variant = "robust"
    return _dpo_family(
        fn,
        variant,
        (policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs, ref_rejected_log_probs),
        chosen_where,
        rejected_where,
        where,
        beta=beta,
        label_smoothing=label_smoothing,
        f_divergence=f_divergence,
        f_divergence_alpha=f_divergence_alpha,
        temperature=temperature,
        reference_free=reference_free,
    )


# ---------------------------- the DPO loss family ----------------------------

#: trl's ``DPOConfig.loss_type`` values that give one loss per pair (``aot`` / ``aot_unpaired`` sort the
#: batch: :func:`aot_loss`, :func:`aot_unpaired_loss`).
DPO_VARIANTS = (
    "sigmoid",
    "hinge",
    "ipo",
    "exo_pair",
    "nca_pair",
    "robust",
    "bco_pair",
    "sppo_hard",
    "apo_zero",
    "apo_down",
    "discopop",
    "sft",
    "sigmoid_norm",
)
#: trl's ``f_divergence_type`` values (f-DPO); the reward difference goes through ``f'``.
F_DIVERGENCES = ("reverse_kl", "forward_kl", "js_divergence", "alpha_divergence")
# Loss types built on the chosen-rejected score difference: the only ones trl lets take an f-divergence.
_F_DIVERGENCE_VARIANTS = ("sigmoid", "sigmoid_norm", "hinge", "ipo", "exo_pair", "robust", "discopop", "sft")
# Loss types that read label_smoothing, and its allowed range (low, high, low_inclusive).
_SMOOTHING = {
    "sigmoid": (0.0, 0.5, True),
    "robust": (0.0, 0.5, True),
    "exo_pair": (0.0, 1.0, False),
}
# exp() arguments are clamped here (trl clamps the alpha-divergence's at 80 for float32/bf16).
_EXP_CLAMP = 80.0


def _f_scores(log_ratio: Array, f_divergence: str, f_divergence_alpha) -> Array:
    """trl's f-DPO scores ``f'(pi / ref)`` of a (summed) log-ratio."""
    if f_divergence == "reverse_kl":
        return log_ratio
    if f_divergence == "forward_kl":  # f'(t) = 1 - 1/t
        return 1 - jnp.exp(jnp.minimum(-log_ratio, _EXP_CLAMP))
    if f_divergence == "js_divergence":  # f'(t) = log 2 + log sigmoid(log t)
        return math.log(2.0) + jax.nn.log_sigmoid(log_ratio)
    if isinstance(f_divergence_alpha, jax.core.Tracer):
        raise ValueError("dpo_loss: `f_divergence_alpha` must be a static number (it selects the formula's branch).")
    a = float(f_divergence_alpha)
    if abs(a - 1.0) < 1e-6:  # the limit f'(t) -> log t
        return log_ratio
    t = jnp.minimum((a - 1.0) * log_ratio, _EXP_CLAMP)
    return jnp.expm1(t) / (a - 1.0)


def _check_dpo_options(fn, variant, beta, label_smoothing, f_divergence, f_divergence_alpha, temperature):
    C.check_one_of(fn, "variant", variant, DPO_VARIANTS)
    C.check_positive(fn, "beta", beta)
    C.check_one_of(fn, "f_divergence", f_divergence, F_DIVERGENCES)
    C.check_positive(fn, "f_divergence_alpha", f_divergence_alpha, allow_zero=True)
    C.check_positive(fn, "temperature", temperature)
    if f_divergence != "reverse_kl" and variant not in _F_DIVERGENCE_VARIANTS:
        raise ValueError(
            f"{fn}: `f_divergence={f_divergence!r}` has no generalization for variant={variant!r} (trl rejects it "
            f"too); it needs one of {_F_DIVERGENCE_VARIANTS}."
        )
    if variant in _SMOOTHING:
        low, high, low_inclusive = _SMOOTHING[variant]
        C.check_in_range(
            fn, "label_smoothing", label_smoothing, low, high, low_inclusive=low_inclusive, high_inclusive=False
        )
    elif not isinstance(label_smoothing, jax.core.Tracer) and float(label_smoothing) != 0.0:
        raise ValueError(
            f"{fn}: `label_smoothing` is only read by variants {tuple(_SMOOTHING)}; variant={variant!r} got "
            f"label_smoothing={label_smoothing!r} (needs 0)."
        )


_POLICY_REF_MASKS = ("chosen_where", "rejected_where", "chosen_where", "rejected_where")


def _pair_counts(fn, arrays, masks, mask_names, batch_mask, dtype):
    """Counted tokens per example of the chosen and the rejected response (1 for per-sequence inputs)."""
    out = []
    for group in ("chosen_where", "rejected_where"):
        token = [(n, a) for n, a, g in zip(_POLICY_REF, arrays, mask_names, strict=True) if g == group and a.ndim == 2]
        if not token:
            out.append(reduce_sequence(jnp.ones(arrays[0].shape[:1], dtype), None, batch_mask, dtype, average=False))
            continue
        name, x = token[0]
        m = token_mask_of(fn, group, masks[mask_names.index(group)], x, name)
        out.append(reduce_sequence(jnp.ones(x.shape, dtype), m, batch_mask, dtype, average=False))
    return out


def _dpo_family(
    fn,
    variant,
    arrays,
    chosen_where,
    rejected_where,
    where,
    *,
    beta,
    label_smoothing=0.0,
    f_divergence="reverse_kl",
    f_divergence_alpha=0.5,
    temperature=0.05,
    reference_free=False,
    nll_weight=0.0,
):
    """Every per-pair DPO loss type of trl 1.16 ``DPOTrainer._compute_loss`` on ``[B]`` log-ratio sums."""
    _check_dpo_options(fn, variant, beta, label_smoothing, f_divergence, f_divergence_alpha, temperature)
    C.check_positive(fn, "nll_weight", nll_weight, allow_zero=True)
    (pc, pr, rc, rr), batch_mask, dtype = _policy_ref_inputs(
        fn, arrays, chosen_where, rejected_where, where, average=False
    )
    if reference_free:
        rc, rr = jnp.zeros_like(rc), jnp.zeros_like(rr)
    c = pc - jax.lax.stop_gradient(rc)  # chosen log-ratio (summed)
    r = pr - jax.lax.stop_gradient(rr)  # rejected log-ratio
    with_nll = isinstance(nll_weight, jax.core.Tracer) or float(nll_weight) != 0.0
    if variant in ("ipo", "sigmoid_norm", "sft") or with_nll:
        # Length-normalized forms: per-token inputs averaged over their counted tokens, per-sequence
        # inputs used as given (already averaged), as ipo_loss / simpo_loss do.
        (apc, apr, arc, arr), _, _ = _policy_ref_inputs(fn, arrays, chosen_where, rejected_where, where, average=True)
        if reference_free:
            arc, arr = jnp.zeros_like(arc), jnp.zeros_like(arr)
        c_avg, r_avg = apc - jax.lax.stop_gradient(arc), apr - jax.lax.stop_gradient(arr)
        if f_divergence == "reverse_kl":
            sc_avg, sr_avg = c_avg, r_avg
        else:  # trl: f'(summed log-ratio) / count
            checked = [check_log_probs(fn, n, a) for n, a in zip(_POLICY_REF, arrays, strict=True)]
            masks = (chosen_where, rejected_where, chosen_where, rejected_where)
            n_c, n_r = (
                jnp.maximum(n, jnp.ones((), dtype))
                for n in _pair_counts(fn, checked, masks, _POLICY_REF_MASKS, batch_mask, dtype)
            )
            sc_avg = _f_scores(c_avg * n_c, f_divergence, f_divergence_alpha) / n_c
            sr_avg = _f_scores(r_avg * n_r, f_divergence, f_divergence_alpha) / n_r
    b = jnp.asarray(beta, dtype)
    e = jnp.asarray(label_smoothing, dtype)
    sc, sr = _f_scores(c, f_divergence, f_divergence_alpha), _f_scores(r, f_divergence, f_divergence_alpha)
    delta = sc - sr
    if variant == "sigmoid":
        loss = _smoothed_logistic(b * delta, label_smoothing)
    elif variant == "robust":
        loss = _smoothed_logistic(b * delta, label_smoothing, robust=True)
    elif variant == "hinge":
        loss = jax.nn.relu(1 - b * delta)
    elif variant == "ipo":
        loss = jnp.square(sc_avg - sr_avg - 1 / (2 * b))
    elif variant == "sigmoid_norm":
        loss = -jax.nn.log_sigmoid(b * (sc_avg - sr_avg))
    elif variant == "exo_pair":
        x = b * delta
        qw, ql = jax.nn.sigmoid(x), jax.nn.sigmoid(-x)
        loss = qw * (jax.nn.log_sigmoid(x) - jnp.log1p(-e)) + ql * (jax.nn.log_sigmoid(-x) - jnp.log(e))
    elif variant == "nca_pair":
        loss = -jax.nn.log_sigmoid(b * c) - 0.5 * jax.nn.log_sigmoid(-b * c) - 0.5 * jax.nn.log_sigmoid(-b * r)
    elif variant == "bco_pair":
        loss = -jax.nn.log_sigmoid(b * c) - jax.nn.log_sigmoid(-b * r)
    elif variant == "sppo_hard":
        loss = jnp.square(c - 0.5 / b) + jnp.square(r + 0.5 / b)
    elif variant == "apo_zero":
        loss = jax.nn.sigmoid(-b * c) + jax.nn.sigmoid(b * r)
    elif variant == "apo_down":
        loss = jax.nn.sigmoid(b * c) + jax.nn.sigmoid(-b * (c - r))
    elif variant == "discopop":
        x = b * delta
        tau = jnp.asarray(temperature, dtype)
        # logistic * (1 - s(x / tau)) + exp(-x) * s(x / tau), the product in the log domain (no inf * 0)
        loss = -jax.nn.log_sigmoid(x) * jax.nn.sigmoid(-x / tau) + jnp.exp(
            jnp.minimum(-x + jax.nn.log_sigmoid(x / tau), _EXP_CLAMP)
        )
    else:  # "sft": the chosen response's NLL, length-normalized
        loss = -apc
    if with_nll:
        loss = loss + jnp.asarray(nll_weight, dtype) * (-apc)
    return C.zero_masked(loss, batch_mask)


def _variant_sample(seed: int, variants=({"beta": 0.5},)) -> Sample:
    return _paired_sample(token_level=True, seed=seed, variants=variants)


@register(
    "robust_dpo_loss",
    aliases=("rdpo",),
    family=FAMILY,
    kind="per_example",
    formula="((1-e)(-log s(b D)) - e (-log s(-b D))) / (1 - 2e),  D the DPO margin",
    paper="Provably Robust DPO: Aligning Language Models with Noisy Feedback (2024, arXiv:2403.00409)",
    reference="huggingface/trl 1.16.0 trainer/dpo_trainer.py::_compute_loss loss_type 'robust'",
    sample=lambda: _variant_sample(11, ({"beta": 0.5, "label_smoothing": 0.3},)),
    runtime=_RUNTIME,
)
def robust_dpo_loss(
    policy_chosen_log_probs: ArrayLike,
    policy_rejected_log_probs: ArrayLike,
    ref_chosen_log_probs: ArrayLike,
    ref_rejected_log_probs: ArrayLike,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.1,
    f_divergence: str = "reverse_kl",
    chosen_where: ArrayLike | None = None,
    rejected_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Robust DPO: the unbiased DPO loss under a known preference-flip rate.

    .. math::
        \ell = \frac{(1-\varepsilon)\big(-\log\sigma(\beta\Delta)\big) - \varepsilon\big(-\log\sigma(-\beta\Delta)\big)}
                    {1 - 2\varepsilon}

    with ``\Delta`` the DPO margin (:func:`dpo_loss`) and ``\varepsilon``
    the probability that a preference label is flipped. Its expectation over
    the label noise is the clean DPO loss. trl's ``loss_type="robust"``
    (``dpo_loss(..., variant="robust")``).

    Args:
      policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs,
        ref_rejected_log_probs: as in :func:`dpo_loss` (``[B]`` summed or ``[B, T]`` per token).
      beta: ``\beta``.
      label_smoothing: the flip rate ``\varepsilon`` in ``[0, 0.5)`` (the paper's typical 0.1).
      f_divergence: trl's ``f_divergence_type`` (:func:`dpo_loss`).
      chosen_where, rejected_where, where: as in :func:`dpo_loss`.

    Returns:
      ``[B]`` per-example losses (may be negative for a large margin).

    Paper: Chowdhury, Kini, Natarajan, "Provably Robust DPO: Aligning Language
    Models with Noisy Feedback", ICML 2024, arXiv:2403.00409.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.array([-1.0]), jnp.array([-3.0]), jnp.array([-2.0]), jnp.array([-2.0])
      >>> lossjax.losses.robust_dpo_loss(*lp).round(4)
      Array([0.5731], dtype=float32)
    """
    return _dpo_family(
        "robust_dpo_loss",
        "robust",
        (policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs, ref_rejected_log_probs),
        chosen_where,
        rejected_where,
        where,
        beta=beta,
        label_smoothing=label_smoothing,
        f_divergence=f_divergence,
    )


@register(
    "dpo_hinge_loss",
    aliases=("slic_hinge_loss",),
    family=FAMILY,
    kind="per_example",
    formula="max(0, 1 - b D),  D the DPO margin",
    paper="SLiC-HF: Sequence Likelihood Calibration with Human Feedback (2023, arXiv:2305.10425)",
    reference="huggingface/trl 1.16.0 trainer/dpo_trainer.py::_compute_loss loss_type 'hinge'",
    sample=lambda: _variant_sample(12, ({"beta": 0.5},)),
    runtime=_RUNTIME,
)
def dpo_hinge_loss(
    policy_chosen_log_probs: ArrayLike,
    policy_rejected_log_probs: ArrayLike,
    ref_chosen_log_probs: ArrayLike,
    ref_rejected_log_probs: ArrayLike,
    *,
    beta: float = 0.1,
    f_divergence: str = "reverse_kl",
    chosen_where: ArrayLike | None = None,
    rejected_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""The hinge preference loss of SLiC on the DPO log-ratio margin (trl's ``"hinge"``).

    .. math:: \ell = \max(0,\ 1 - \beta\Delta)

    with ``\Delta`` the DPO margin of summed log-ratios (:func:`dpo_loss`);
    ``1/\beta`` is SLiC's margin ``\delta``.

    Args:
      policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs,
        ref_rejected_log_probs: as in :func:`dpo_loss` (``[B]`` summed or ``[B, T]`` per token).
      beta: ``\beta`` (the inverse margin).
      f_divergence: trl's ``f_divergence_type`` (:func:`dpo_loss`).
      chosen_where, rejected_where, where: as in :func:`dpo_loss`.

    Returns:
      ``[B]`` per-example losses.

    Paper: Zhao et al., "SLiC-HF: Sequence Likelihood Calibration with Human
    Feedback", 2023, arXiv:2305.10425.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.array([-1.0]), jnp.array([-3.0]), jnp.array([-2.0]), jnp.array([-2.0])
      >>> lossjax.losses.dpo_hinge_loss(*lp, beta=0.25).round(4)
      Array([0.5], dtype=float32)
    """
    return _dpo_family(
        "dpo_hinge_loss",
        "hinge",
        (policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs, ref_rejected_log_probs),
        chosen_where,
        rejected_where,
        where,
        beta=beta,
        f_divergence=f_divergence,
    )


@register(
    "length_normalized_dpo_loss",
    aliases=("dpo_norm_loss", "sigmoid_norm_dpo_loss"),
    family=FAMILY,
    kind="per_example",
    formula="-log s(b (c / |y_w| - r / |y_l|)),  c, r the summed chosen / rejected log-ratios",
    paper="Tulu 3: Pushing Frontiers in Open Language Model Post-Training (2024, arXiv:2411.15124)",
    reference="huggingface/trl 1.16.0 trainer/dpo_trainer.py::_compute_loss loss_type 'sigmoid_norm'",
    sample=lambda: _variant_sample(13, ({"beta": 2.0},)),
    runtime=_RUNTIME,
)
def length_normalized_dpo_loss(
    policy_chosen_log_probs: ArrayLike,
    policy_rejected_log_probs: ArrayLike,
    ref_chosen_log_probs: ArrayLike,
    ref_rejected_log_probs: ArrayLike,
    *,
    beta: float = 0.1,
    f_divergence: str = "reverse_kl",
    chosen_where: ArrayLike | None = None,
    rejected_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Length-normalized DPO: the sigmoid loss on per-token averaged log-ratios (trl's ``"sigmoid_norm"``).

    .. math::
        \ell = -\log\sigma\Big(\beta\Big(\frac{f'(c)}{|y_w|} - \frac{f'(r)}{|y_l|}\Big)\Big)

    with ``c``, ``r`` the chosen and rejected log-ratios summed over their
    ``|y_w|``, ``|y_l|`` counted tokens (per-sequence ``[B]`` inputs are used
    as given: pass averaged log-probs). Tulu 3's DPO-norm.

    Args:
      policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs,
        ref_rejected_log_probs: as in :func:`dpo_loss` (``[B]`` averaged or ``[B, T]`` per token).
      beta: ``\beta`` (Tulu 3 uses 5 with averaged log-ratios).
      f_divergence: trl's ``f_divergence_type`` (:func:`dpo_loss`).
      chosen_where, rejected_where, where: as in :func:`dpo_loss`.

    Returns:
      ``[B]`` per-example losses.

    Paper: Lambert et al., "Tulu 3: Pushing Frontiers in Open Language Model
    Post-Training", 2024, arXiv:2411.15124.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> pc, pr = jnp.array([[-1.0, -1.0]]), jnp.array([[-3.0, -3.0]])
      >>> lossjax.losses.length_normalized_dpo_loss(pc, pr, pc * 0 - 2, pr * 0 - 2, beta=1.0).round(4)
      Array([0.1269], dtype=float32)
    """
    return _dpo_family(
        "length_normalized_dpo_loss",
        "sigmoid_norm",
        (policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs, ref_rejected_log_probs),
        chosen_where,
        rejected_where,
        where,
        beta=beta,
        f_divergence=f_divergence,
    )


@register(
    "exo_pair_loss",
    aliases=("exo_pair", "exo_loss"),
    family=FAMILY,
    kind="per_example",
    formula="KL([s(b D), s(-b D)] || [1 - e, e]),  D the DPO margin",
    paper="Towards Efficient Exact Optimization of Language Model Alignment (2024, arXiv:2402.00856)",
    reference="huggingface/trl 1.16.0 trainer/dpo_trainer.py::_compute_loss loss_type 'exo_pair'",
    sample=lambda: _variant_sample(14, ({"beta": 0.5, "label_smoothing": 0.1},)),
    runtime=_RUNTIME,
)
def exo_pair_loss(
    policy_chosen_log_probs: ArrayLike,
    policy_rejected_log_probs: ArrayLike,
    ref_chosen_log_probs: ArrayLike,
    ref_rejected_log_probs: ArrayLike,
    *,
    beta: float = 0.1,
    label_smoothing: float = 1e-3,
    f_divergence: str = "reverse_kl",
    chosen_where: ArrayLike | None = None,
    rejected_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""EXO (pairwise): the reverse KL from the policy's to the labels' preference distribution.

    .. math::
        q_w = \sigma(\beta\Delta),\ q_l = \sigma(-\beta\Delta),\qquad
        \ell = q_w\big(\log q_w - \log(1-\varepsilon)\big) + q_l\big(\log q_l - \log\varepsilon\big)

    with ``\Delta`` the DPO margin (:func:`dpo_loss`): ``\mathrm{KL}(p_{f_\theta}\,\|\,p_{r_h})``
    over ``\{y_w, y_l\}`` with the smoothed label distribution
    ``[1-\varepsilon, \varepsilon]`` (Eq. 16, ``K = 2``).

    Args:
      policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs,
        ref_rejected_log_probs: as in :func:`dpo_loss` (``[B]`` summed or ``[B, T]`` per token).
      beta: ``\beta_\pi``.
      label_smoothing: ``\varepsilon`` in ``(0, 1)`` (the paper recommends ``10^{-3}``; 0 would be infinite).
      f_divergence: trl's ``f_divergence_type`` (:func:`dpo_loss`).
      chosen_where, rejected_where, where: as in :func:`dpo_loss`.

    Returns:
      ``[B]`` per-example losses (``>= 0``).

    Paper: Ji et al., "Towards Efficient Exact Optimization of Language Model
    Alignment", ICML 2024, arXiv:2402.00856.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.array([-1.0]), jnp.array([-3.0]), jnp.array([-2.0]), jnp.array([-2.0])
      >>> lossjax.losses.exo_pair_loss(*lp, label_smoothing=0.1).round(4)
      Array([0.4063], dtype=float32)
    """
    return _dpo_family(
        "exo_pair_loss",
        "exo_pair",
        (policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs, ref_rejected_log_probs),
        chosen_where,
        rejected_where,
        where,
        beta=beta,
        label_smoothing=label_smoothing,
        f_divergence=f_divergence,
    )


@register(
    "nca_pair_loss",
    aliases=("nca_pair",),
    family=FAMILY,
    kind="per_example",
    formula="-log s(b c) - 0.5 log s(-b c) - 0.5 log s(-b r),  c, r the chosen / rejected log-ratios",
    paper="Noise Contrastive Alignment of Language Models with Explicit Rewards (2024, arXiv:2402.05369)",
    reference="huggingface/trl 1.16.0 trainer/dpo_trainer.py::_compute_loss loss_type 'nca_pair'",
    sample=lambda: _variant_sample(15),
    runtime=_RUNTIME,
)
def nca_pair_loss(
    policy_chosen_log_probs: ArrayLike,
    policy_rejected_log_probs: ArrayLike,
    ref_chosen_log_probs: ArrayLike,
    ref_rejected_log_probs: ArrayLike,
    *,
    beta: float = 0.1,
    chosen_where: ArrayLike | None = None,
    rejected_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""NCA (pairwise): noise-contrastive alignment on the absolute implicit rewards.

    .. math::
        \ell = -\log\sigma(\beta c) - \tfrac12\log\sigma(-\beta c) - \tfrac12\log\sigma(-\beta r)

    with ``c = \log\pi_\theta(y_w) - \log\pi_\mathrm{ref}(y_w)`` and ``r`` the
    same for ``y_l`` (summed log-probs). Unlike DPO it raises the chosen
    likelihood in absolute terms, not only relative to the rejected one.

    Args:
      policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs,
        ref_rejected_log_probs: as in :func:`dpo_loss` (``[B]`` summed or ``[B, T]`` per token).
      beta: ``\beta``.
      chosen_where, rejected_where, where: as in :func:`dpo_loss`.

    Returns:
      ``[B]`` per-example losses.

    Paper: Chen, Zhou, Zhu, "Noise Contrastive Alignment of Language Models
    with Explicit Rewards", NeurIPS 2024, arXiv:2402.05369.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.array([-1.0]), jnp.array([-3.0]), jnp.array([-2.0]), jnp.array([-2.0])
      >>> lossjax.losses.nca_pair_loss(*lp, beta=1.0).round(4)
      Array([1.1265], dtype=float32)
    """
    return _dpo_family(
        "nca_pair_loss",
        "nca_pair",
        (policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs, ref_rejected_log_probs),
        chosen_where,
        rejected_where,
        where,
        beta=beta,
    )


@register(
    "bco_pair_loss",
    aliases=("bco_pair",),
    family=FAMILY,
    kind="per_example",
    formula="-log s(b c) - log s(-b r),  c, r the chosen / rejected log-ratios",
    paper="Binary Classifier Optimization for Large Language Model Alignment (2024, arXiv:2404.04656)",
    reference="huggingface/trl 1.16.0 trainer/dpo_trainer.py::_compute_loss loss_type 'bco_pair'",
    sample=lambda: _variant_sample(16),
    runtime=_RUNTIME,
)
def bco_pair_loss(
    policy_chosen_log_probs: ArrayLike,
    policy_rejected_log_probs: ArrayLike,
    ref_chosen_log_probs: ArrayLike,
    ref_rejected_log_probs: ArrayLike,
    *,
    beta: float = 0.1,
    chosen_where: ArrayLike | None = None,
    rejected_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""BCO on paired data: a binary classifier on the implicit rewards, without the running baseline.

    .. math:: \ell = -\log\sigma(\beta c) - \log\sigma(-\beta r)

    with ``c``, ``r`` the chosen and rejected log-ratios (summed). The
    unpaired form with its running reward baseline is :func:`bco_loss`.

    Args:
      policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs,
        ref_rejected_log_probs: as in :func:`dpo_loss` (``[B]`` summed or ``[B, T]`` per token).
      beta: ``\beta``.
      chosen_where, rejected_where, where: as in :func:`dpo_loss`.

    Returns:
      ``[B]`` per-example losses.

    Paper: Jung et al., "Binary Classifier Optimization for Large Language
    Model Alignment", 2024, arXiv:2404.04656.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.array([-1.0]), jnp.array([-3.0]), jnp.array([-2.0]), jnp.array([-2.0])
      >>> lossjax.losses.bco_pair_loss(*lp, beta=1.0).round(4)
      Array([0.6265], dtype=float32)
    """
    return _dpo_family(
        "bco_pair_loss",
        "bco_pair",
        (policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs, ref_rejected_log_probs),
        chosen_where,
        rejected_where,
        where,
        beta=beta,
    )


@register(
    "sppo_hard_loss",
    aliases=("sppo_hard",),
    family=FAMILY,
    kind="per_example",
    formula="(c - 1/(2b))^2 + (r + 1/(2b))^2,  c, r the chosen / rejected log-ratios",
    paper="Self-Play Preference Optimization for Language Model Alignment (2024, arXiv:2405.00675)",
    reference="huggingface/trl 1.16.0 trainer/dpo_trainer.py::_compute_loss loss_type 'sppo_hard'",
    sample=lambda: _variant_sample(17),
    runtime=_RUNTIME,
)
def sppo_hard_loss(
    policy_chosen_log_probs: ArrayLike,
    policy_rejected_log_probs: ArrayLike,
    ref_chosen_log_probs: ArrayLike,
    ref_rejected_log_probs: ArrayLike,
    *,
    beta: float = 0.1,
    chosen_where: ArrayLike | None = None,
    rejected_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""SPPO with hard preference probabilities: squared log-ratios regressed to ``\pm 1/(2\beta)``.

    .. math:: \ell = \Big(c - \frac{1}{2\beta}\Big)^2 + \Big(r + \frac{1}{2\beta}\Big)^2

    (Eq. 4.7 with the win probability set to 1 for the chosen and 0 for the
    rejected response; ``c``, ``r`` summed log-ratios.) The soft-probability
    SPPO estimates the probabilities with a preference model outside the loss.

    Args:
      policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs,
        ref_rejected_log_probs: as in :func:`dpo_loss` (``[B]`` summed or ``[B, T]`` per token).
      beta: ``\beta`` (the paper's ``\eta^{-1}``).
      chosen_where, rejected_where, where: as in :func:`dpo_loss`.

    Returns:
      ``[B]`` per-example losses.

    Paper: Wu et al., "Self-Play Preference Optimization for Language Model
    Alignment", 2024, arXiv:2405.00675.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.array([-1.0]), jnp.array([-3.0]), jnp.array([-2.0]), jnp.array([-2.0])
      >>> lossjax.losses.sppo_hard_loss(*lp, beta=0.5).round(4)  # (1 - 1)^2 + (-1 + 1)^2
      Array([0.], dtype=float32)
    """
    return _dpo_family(
        "sppo_hard_loss",
        "sppo_hard",
        (policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs, ref_rejected_log_probs),
        chosen_where,
        rejected_where,
        where,
        beta=beta,
    )


@register(
    "apo_zero_loss",
    aliases=("apo_zero",),
    family=FAMILY,
    kind="per_example",
    formula="(1 - s(b c)) + s(b r),  c, r the chosen / rejected log-ratios",
    paper="Anchored Preference Optimization and Contrastive Revisions: Addressing Underspecification in "
    "Alignment (2024, arXiv:2408.06266)",
    reference="huggingface/trl 1.16.0 trainer/dpo_trainer.py::_compute_loss loss_type 'apo_zero'",
    sample=lambda: _variant_sample(18),
    runtime=_RUNTIME,
)
def apo_zero_loss(
    policy_chosen_log_probs: ArrayLike,
    policy_rejected_log_probs: ArrayLike,
    ref_chosen_log_probs: ArrayLike,
    ref_rejected_log_probs: ArrayLike,
    *,
    beta: float = 0.1,
    chosen_where: ArrayLike | None = None,
    rejected_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""APO-zero: raise the chosen likelihood and lower the rejected one, anchored at the reference.

    .. math:: \ell = \big(1 - \sigma(\beta c)\big) + \sigma(\beta r)

    (Eq. 7; ``c``, ``r`` summed log-ratios), for chosen outputs better than
    the model's own. ``1 - \sigma(x)`` is evaluated as ``\sigma(-x)``.

    Args:
      policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs,
        ref_rejected_log_probs: as in :func:`dpo_loss` (``[B]`` summed or ``[B, T]`` per token).
      beta: ``\beta``.
      chosen_where, rejected_where, where: as in :func:`dpo_loss`.

    Returns:
      ``[B]`` per-example losses in ``[0, 2]``.

    Paper: D'Oosterlinck et al., "Anchored Preference Optimization and
    Contrastive Revisions: Addressing Underspecification in Alignment", 2024,
    arXiv:2408.06266.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.array([-1.0]), jnp.array([-3.0]), jnp.array([-2.0]), jnp.array([-2.0])
      >>> lossjax.losses.apo_zero_loss(*lp, beta=1.0).round(4)
      Array([0.5379], dtype=float32)
    """
    return _dpo_family(
        "apo_zero_loss",
        "apo_zero",
        (policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs, ref_rejected_log_probs),
        chosen_where,
        rejected_where,
        where,
        beta=beta,
    )


@register(
    "apo_down_loss",
    aliases=("apo_down",),
    family=FAMILY,
    kind="per_example",
    formula="s(b c) + (1 - s(b (c - r))),  c, r the chosen / rejected log-ratios",
    paper="Anchored Preference Optimization and Contrastive Revisions: Addressing Underspecification in "
    "Alignment (2024, arXiv:2408.06266)",
    reference="huggingface/trl 1.16.0 trainer/dpo_trainer.py::_compute_loss loss_type 'apo_down'",
    sample=lambda: _variant_sample(19),
    runtime=_RUNTIME,
)
def apo_down_loss(
    policy_chosen_log_probs: ArrayLike,
    policy_rejected_log_probs: ArrayLike,
    ref_chosen_log_probs: ArrayLike,
    ref_rejected_log_probs: ArrayLike,
    *,
    beta: float = 0.1,
    chosen_where: ArrayLike | None = None,
    rejected_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""APO-down: lower both likelihoods, the rejected one more (chosen outputs worse than the model's own).

    .. math:: \ell = \sigma(\beta c) + \big(1 - \sigma(\beta(c - r))\big)

    (Eq. 8; ``c``, ``r`` summed log-ratios; ``1 - \sigma(x)`` as ``\sigma(-x)``).

    Args:
      policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs,
        ref_rejected_log_probs: as in :func:`dpo_loss` (``[B]`` summed or ``[B, T]`` per token).
      beta: ``\beta``.
      chosen_where, rejected_where, where: as in :func:`dpo_loss`.

    Returns:
      ``[B]`` per-example losses in ``[0, 2]``.

    Paper: D'Oosterlinck et al., "Anchored Preference Optimization and
    Contrastive Revisions: Addressing Underspecification in Alignment", 2024,
    arXiv:2408.06266.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.array([-1.0]), jnp.array([-3.0]), jnp.array([-2.0]), jnp.array([-2.0])
      >>> lossjax.losses.apo_down_loss(*lp, beta=1.0).round(4)
      Array([0.8503], dtype=float32)
    """
    return _dpo_family(
        "apo_down_loss",
        "apo_down",
        (policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs, ref_rejected_log_probs),
        chosen_where,
        rejected_where,
        where,
        beta=beta,
    )


@register(
    "discopop_loss",
    aliases=("discopop", "log_ratio_modulated_loss"),
    family=FAMILY,
    kind="per_example",
    formula="-log s(x) (1 - s(x / tau)) + exp(-x) s(x / tau),  x = b D",
    paper="Discovering Preference Optimization Algorithms with and for Large Language Models (2024, arXiv:2406.08414)",
    reference="huggingface/trl 1.16.0 trainer/dpo_trainer.py::_compute_loss loss_type 'discopop'",
    sample=lambda: _variant_sample(20, ({"beta": 0.5, "temperature": 0.5},)),
    runtime=_RUNTIME,
)
def discopop_loss(
    policy_chosen_log_probs: ArrayLike,
    policy_rejected_log_probs: ArrayLike,
    ref_chosen_log_probs: ArrayLike,
    ref_rejected_log_probs: ArrayLike,
    *,
    beta: float = 0.1,
    temperature: float = 0.05,
    f_divergence: str = "reverse_kl",
    chosen_where: ArrayLike | None = None,
    rejected_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""DiscoPOP: the log-ratio modulated loss, a blend of the logistic and the exponential losses.

    .. math::
        x = \beta\Delta,\quad m = \sigma(x/\tau),\qquad
        \ell = -\log\sigma(x)\,(1 - m) + e^{-x}\,m

    (Eq. 5; ``\Delta`` the DPO margin). ``e^{-x} m`` is evaluated as
    ``\exp(-x + \log\sigma(x/\tau))`` (no ``\infty \cdot 0`` for very
    negative margins; the exponent is clamped at 80).

    Args:
      policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs,
        ref_rejected_log_probs: as in :func:`dpo_loss` (``[B]`` summed or ``[B, T]`` per token).
      beta: ``\beta``.
      temperature: ``\tau > 0`` (trl's ``discopop_tau``; the paper's 0.05).
      f_divergence: trl's ``f_divergence_type`` (:func:`dpo_loss`).
      chosen_where, rejected_where, where: as in :func:`dpo_loss`.

    Returns:
      ``[B]`` per-example losses.

    Paper: Lu et al., "Discovering Preference Optimization Algorithms with and
    for Large Language Models", NeurIPS 2024, arXiv:2406.08414.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.array([-1.0]), jnp.array([-3.0]), jnp.array([-2.0]), jnp.array([-2.0])
      >>> lossjax.losses.discopop_loss(*lp).round(4)
      Array([0.8148], dtype=float32)
    """
    return _dpo_family(
        "discopop_loss",
        "discopop",
        (policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs, ref_rejected_log_probs),
        chosen_where,
        rejected_where,
        where,
        beta=beta,
        temperature=temperature,
        f_divergence=f_divergence,
    )


@register(
    "rpo_loss",
    aliases=("rpo", "dpo_sft_loss"),
    family=FAMILY,
    kind="per_example",
    formula="-log s(b D) + nll_weight * (-log pi(y_w) / |y_w|)",
    paper="Iterative Reasoning Preference Optimization (2024, arXiv:2404.19733)",
    reference="huggingface/trl 1.16.0 trainer/dpo_trainer.py::_compute_loss loss_type ['sigmoid', 'sft'] with "
    "loss_weights [1, nll_weight]",
    sample=lambda: _variant_sample(21, ({"beta": 0.5, "nll_weight": 0.3},)),
    runtime=_RUNTIME,
)
def rpo_loss(
    policy_chosen_log_probs: ArrayLike,
    policy_rejected_log_probs: ArrayLike,
    ref_chosen_log_probs: ArrayLike,
    ref_rejected_log_probs: ArrayLike,
    *,
    beta: float = 0.1,
    nll_weight: float = 1.0,
    chosen_where: ArrayLike | None = None,
    rejected_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""RPO: DPO plus the chosen response's negative log-likelihood (trl's ``"sft"`` term mixed in).

    .. math::
        \ell = -\log\sigma(\beta\Delta) + \alpha\,\Big(-\frac{\log\pi_\theta(y_w)}{|y_w|}\Big)

    with ``\Delta`` the DPO margin (summed log-ratios) and the NLL averaged
    over the chosen response's counted tokens (per-sequence ``[B]`` chosen
    log-probs are used as given). trl's ``loss_type=["sigmoid", "sft"]``,
    ``loss_weights=[1, \alpha]`` averages the NLL over all chosen tokens of the
    batch instead, the same for equal lengths.

    Args:
      policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs,
        ref_rejected_log_probs: as in :func:`dpo_loss` (``[B]`` summed or ``[B, T]`` per token).
      beta: ``\beta``.
      nll_weight: ``\alpha \geq 0``, the weight of the NLL term (trl 0.x's ``rpo_alpha``; the paper's 1).
      chosen_where, rejected_where, where: as in :func:`dpo_loss`.

    Returns:
      ``[B]`` per-example losses.

    Paper: Pang et al., "Iterative Reasoning Preference Optimization", NeurIPS
    2024, arXiv:2404.19733.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> pc, pr = jnp.array([[-1.0, -1.0]]), jnp.array([[-3.0, -3.0]])
      >>> lossjax.losses.rpo_loss(pc, pr, pc * 0 - 2, pr * 0 - 2).round(4)  # DPO 0.5130 + mean NLL 1
      Array([1.513], dtype=float32)
    """
    return _dpo_family(
        "rpo_loss",
        "sigmoid",
        (policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs, ref_rejected_log_probs),
        chosen_where,
        rejected_where,
        where,
        beta=beta,
        nll_weight=nll_weight,
    )


def _aot(fn, arrays, chosen_where, rejected_where, where, *, beta, label_smoothing, unpaired):
    C.check_positive(fn, "beta", beta)
    C.check_in_range(fn, "label_smoothing", label_smoothing, 0.0, 0.5, high_inclusive=False)
    (pc, pr, rc, rr), batch_mask, dtype = _policy_ref_inputs(
        fn, arrays, chosen_where, rejected_where, where, average=False
    )
    rc, rr = jax.lax.stop_gradient(rc), jax.lax.stop_gradient(rr)
    if unpaired:  # the chosen log-ratios' distribution against the rejected ones'
        a, b = pc - rc, pr - rr
    else:  # the policy's chosen-rejected log-ratios against the reference's
        a, b = pc - pr, rc - rr
    n = a.shape[0]
    valid = jnp.ones((n,), bool) if batch_mask is None else batch_mask
    count = jnp.sum(valid)
    # Masked rows sort last (+inf); the first `count` ranks pair the valid rows' order statistics.
    inf = jnp.asarray(jnp.inf, dtype)
    ranked = jnp.arange(n) < count
    zero = jnp.zeros((), dtype)
    sa = jnp.where(ranked, jnp.sort(jnp.where(valid, a, inf)), zero)
    sb = jnp.where(ranked, jnp.sort(jnp.where(valid, b, inf)), zero)
    loss = _smoothed_logistic(jnp.asarray(beta, dtype) * (sa - sb), label_smoothing)
    total = jnp.sum(jnp.where(ranked, loss, zero))
    return total / jnp.maximum(count.astype(dtype), jnp.ones((), dtype))


@register(
    "aot_loss",
    aliases=("aot",),
    family=FAMILY,
    kind="batch",
    formula="mean_k -(1-e) log s(b (sort(log pi(y_w) - log pi(y_l))_k - sort(log ref(y_w) - log ref(y_l))_k)) - e ...",
    paper="Distributional Preference Alignment of LLMs via Optimal Transport (2024, arXiv:2406.05882)",
    reference="huggingface/trl 1.16.0 trainer/dpo_trainer.py::_compute_loss loss_type 'aot'",
    sample=lambda: _variant_sample(22, ({"beta": 0.5, "label_smoothing": 0.1},)),
    runtime=_RUNTIME,
)
def aot_loss(
    policy_chosen_log_probs: ArrayLike,
    policy_rejected_log_probs: ArrayLike,
    ref_chosen_log_probs: ArrayLike,
    ref_rejected_log_probs: ArrayLike,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    chosen_where: ArrayLike | None = None,
    rejected_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""AOT (paired): first-order stochastic dominance of the policy's margins over the reference's, via sorting.

    .. math::
        u = \mathrm{sort}\big(\log\pi_\theta(y_w) - \log\pi_\theta(y_l)\big),\quad
        v = \mathrm{sort}\big(\log\pi_\mathrm{ref}(y_w) - \log\pi_\mathrm{ref}(y_l)\big) \\
        \mathcal L = \frac1B\sum_k -(1-\varepsilon)\log\sigma\big(\beta(u_k - v_k)\big)
                     - \varepsilon\log\sigma\big(-\beta(u_k - v_k)\big)

    The one-dimensional optimal transport between the batch's policy and
    reference margin distributions is the pairing of their order statistics,
    so the loss couples the whole batch: one value per batch (trl averages
    its per-rank losses). Masked pairs are left out of both sorts.

    Args:
      policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs,
        ref_rejected_log_probs: as in :func:`dpo_loss` (``[B]`` summed or ``[B, T]`` per token).
      beta: ``\beta``.
      label_smoothing: ``\varepsilon`` in ``[0, 0.5)`` (cDPO smoothing, as trl).
      chosen_where, rejected_where: ``[B, T]`` token masks.
      where: optional ``[B]`` pair mask.

    Returns:
      A scalar: the mean over the valid ranks (0 for an all-masked batch).

    Paper: Melnyk et al., "Distributional Preference Alignment of LLMs via
    Optimal Transport", NeurIPS 2024, arXiv:2406.05882.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> pc, pr = jnp.array([-1.0, -2.0]), jnp.array([-3.0, -2.0])
      >>> lossjax.losses.aot_loss(pc, pr, jnp.full(2, -2.0), jnp.full(2, -2.0), beta=1.0).round(4)
      Array(0.41, dtype=float32)
    """
    return _aot(
        "aot_loss",
        (policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs, ref_rejected_log_probs),
        chosen_where,
        rejected_where,
        where,
        beta=beta,
        label_smoothing=label_smoothing,
        unpaired=False,
    )


@register(
    "aot_unpaired_loss",
    aliases=("aot_pair_loss", "aot_unpaired", "aot_pair"),
    family=FAMILY,
    kind="batch",
    formula="mean_k -(1-e) log s(b (sort(c)_k - sort(r)_k)) - e ...,  c, r the chosen / rejected log-ratios",
    paper="Distributional Preference Alignment of LLMs via Optimal Transport (2024, arXiv:2406.05882)",
    reference="huggingface/trl 1.16.0 trainer/dpo_trainer.py::_compute_loss loss_type 'aot_unpaired' "
    "('aot_pair' in trl 0.x)",
    sample=lambda: _variant_sample(23, ({"beta": 0.5, "label_smoothing": 0.1},)),
    runtime=_RUNTIME,
)
def aot_unpaired_loss(
    policy_chosen_log_probs: ArrayLike,
    policy_rejected_log_probs: ArrayLike,
    ref_chosen_log_probs: ArrayLike,
    ref_rejected_log_probs: ArrayLike,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    chosen_where: ArrayLike | None = None,
    rejected_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""AOT (unpaired): dominance of the chosen log-ratio distribution over the rejected one, via sorting.

    .. math::
        u = \mathrm{sort}(c),\quad v = \mathrm{sort}(r),\qquad
        \mathcal L = \frac1B\sum_k -(1-\varepsilon)\log\sigma\big(\beta(u_k - v_k)\big)
                     - \varepsilon\log\sigma\big(-\beta(u_k - v_k)\big)

    with ``c``, ``r`` the chosen and rejected log-ratios
    (``\log\pi_\theta - \log\pi_\mathrm{ref}``, summed): the chosen and
    rejected responses need not come in pairs. trl 0.x called it
    ``"aot_pair"``, trl 1.16 ``"aot_unpaired"``.

    Args:
      policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs,
        ref_rejected_log_probs: as in :func:`dpo_loss` (``[B]`` summed or ``[B, T]`` per token).
      beta: ``\beta``.
      label_smoothing: ``\varepsilon`` in ``[0, 0.5)``.
      chosen_where, rejected_where: ``[B, T]`` token masks.
      where: optional ``[B]`` mask (masked rows leave both sorts).

    Returns:
      A scalar: the mean over the valid ranks (0 for an all-masked batch).

    Paper: Melnyk et al., "Distributional Preference Alignment of LLMs via
    Optimal Transport", NeurIPS 2024, arXiv:2406.05882.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> pc, pr = jnp.array([-1.0, -2.0]), jnp.array([-3.0, -2.0])
      >>> lossjax.losses.aot_unpaired_loss(pc, pr, jnp.full(2, -2.0), jnp.full(2, -2.0), beta=1.0).round(4)
      Array(0.3133, dtype=float32)
    """
    return _aot(
        "aot_unpaired_loss",
        (policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs, ref_rejected_log_probs),
        chosen_where,
        rejected_where,
        where,
        beta=beta,
        label_smoothing=label_smoothing,
        unpaired=True,
    )


def _soft_pref_sample() -> Sample:
    s = _paired_sample(n=6, token_level=False, seed=3)
    q = np.array([1.0, 0.9, 0.7, 0.5, 0.8, 0.0], np.float32)
    return Sample(
        args=(*s.args, q),
        diff_argnums=(0, 1),
        extremes=tuple((*e, q) for e in s.extremes),
        variants=({"beta": 0.5},),
    )


@register(
    "soft_preference_cross_entropy",
    aliases=("osp_loss",),
    family=FAMILY,
    kind="per_example",
    formula="-q log s(b D) - (1 - q) log s(-b D)   (D as in DPO, q the soft preference strength)",
    paper="Online Self-Preferring Language Models (2024, arXiv:2405.14103)",
    reference="closed form: DPO with per-example label smoothing 1 - q (trl dpo_loss, cDPO form)",
    sample=_soft_pref_sample,
    runtime=_RUNTIME,
)
def soft_preference_cross_entropy(
    policy_chosen_log_probs: ArrayLike,
    policy_rejected_log_probs: ArrayLike,
    ref_chosen_log_probs: ArrayLike,
    ref_rejected_log_probs: ArrayLike,
    preference_probs: ArrayLike,
    *,
    beta: float = 0.1,
    chosen_where: ArrayLike | None = None,
    rejected_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Soft-preference cross-entropy (OSP): DPO's logistic loss with soft targets.

    .. math::
        \ell = -q\log\sigma(\beta\Delta) - (1-q)\log\sigma(-\beta\Delta)

    with ``\Delta`` the DPO log-ratio margin and ``q \in [0, 1]`` the
    (self-judged) strength of the preference of ``y_w`` over ``y_l``; ``q = 1``
    is DPO, ``q = 1 - \varepsilon`` is conservative DPO.

    Args:
      policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs,
        ref_rejected_log_probs: as in :func:`dpo_loss`.
      preference_probs: ``[B]`` soft preference targets ``q`` in ``[0, 1]``, the probability
        that ``y_w`` is preferred over ``y_l`` (constants).
      beta: ``\beta``.
      chosen_where, rejected_where, where: as in :func:`dpo_loss`.

    Returns:
      ``[B]`` per-example losses (rewards: :func:`implicit_rewards`, as for :func:`dpo_loss`).

    Paper: Zhai et al., "Online Self-Preferring Language Models", 2024, arXiv:2405.14103.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lp = jnp.array([-1.0]), jnp.array([-3.0]), jnp.array([-2.0]), jnp.array([-2.0])
      >>> lossjax.losses.soft_preference_cross_entropy(*lp, jnp.array([0.5])).round(4)
      Array([0.6981], dtype=float32)
    """
    fn = "soft_preference_cross_entropy"
    C.check_positive(fn, "beta", beta)
    (pc, pr, rc, rr), batch_mask, dtype = _policy_ref_inputs(
        fn,
        (policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs, ref_rejected_log_probs),
        chosen_where,
        rejected_where,
        where,
        average=False,
    )
    q = C.check_array(fn, "preference_probs", preference_probs, ndim=1, dtype="float")
    if q.shape[0] != pc.shape[0]:
        raise ValueError(f"{fn}: `preference_probs` must have shape ({pc.shape[0]},), got {q.shape}.")
    q = jax.lax.stop_gradient(C.fill_masked(C.as_compute(q, dtype), batch_mask))
    b = jnp.asarray(beta, dtype)
    chosen = b * (pc - jax.lax.stop_gradient(rc))
    rejected = b * (pr - jax.lax.stop_gradient(rr))
    logits = chosen - rejected
    loss = -q * jax.nn.log_sigmoid(logits) - (1 - q) * jax.nn.log_sigmoid(-logits)
    return C.zero_masked(loss, batch_mask)


# ----------------------------------- IPO -----------------------------------


@register(
    "ipo_loss",
    aliases=("ipo", "identity_preference_optimization"),
    family=FAMILY,
    kind="per_example",
    formula="(D - 1/(2 b))^2,  D = DPO margin on length-averaged log-probs",
    paper="A General Theoretical Paradigm to Understand Learning from Human Preferences (2023, arXiv:2310.12036)",
    reference="huggingface/trl DPOTrainer loss_type 'ipo' (per-token averaged log-ratios)",
    sample=_ipo_sample,
    runtime=_RUNTIME,
)
def ipo_loss(
    policy_chosen_log_probs: ArrayLike,
    policy_rejected_log_probs: ArrayLike,
    ref_chosen_log_probs: ArrayLike,
    ref_rejected_log_probs: ArrayLike,
    *,
    beta: float = 0.1,
    chosen_where: ArrayLike | None = None,
    rejected_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Identity Preference Optimization (IPO): a squared loss on the DPO margin.

    .. math::
        \ell = \Big(\Delta - \frac{1}{2\beta}\Big)^2,\qquad
        \Delta = \overline{\log\tfrac{\pi_\theta}{\pi_\mathrm{ref}}}(y_w)
               - \overline{\log\tfrac{\pi_\theta}{\pi_\mathrm{ref}}}(y_l)

    where the bar is the mean over response tokens (trl's normalization,
    confirmed with the IPO authors). Per-sequence ``[B]`` inputs are used as
    given: pass length-averaged log-probs to match.

    Args:
      policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs,
        ref_rejected_log_probs: as in :func:`dpo_loss`.
      beta: ``\beta`` (``\tau`` in the paper); the target margin is ``1/(2\beta)``.
      chosen_where, rejected_where, where: as in :func:`dpo_loss`.

    Returns:
      ``[B]`` per-example losses. trl's logged rewards are ``beta * (policy - ref)``
      of the averaged log-probs: ``implicit_rewards(policy, ref, beta=beta, average=True)``.

    Paper: Azar et al., "A General Theoretical Paradigm to Understand Learning
    from Human Preferences", AISTATS 2024, arXiv:2310.12036 (Eq. 17).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.ipo_loss(jnp.array([-1.0]), jnp.array([-3.0]), jnp.array([-2.0]), jnp.array([-2.0]))
      Array([9.], dtype=float32)
    """
    fn = "ipo_loss"
    C.check_positive(fn, "beta", beta)
    (pc, pr, rc, rr), batch_mask, dtype = _policy_ref_inputs(
        fn,
        (policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs, ref_rejected_log_probs),
        chosen_where,
        rejected_where,
        where,
        average=True,
    )
    b = jnp.asarray(beta, dtype)
    chosen = pc - jax.lax.stop_gradient(rc)
    rejected = pr - jax.lax.stop_gradient(rr)
    loss = jnp.square(chosen - rejected - 1 / (2 * b))
    return C.zero_masked(loss, batch_mask)


# ---------------------------------- SimPO ----------------------------------


def _simpo_sample() -> Sample:
    return _paired_sample(
        token_level=True, with_ref=False, seed=1, variants=({"beta": 2.5, "gamma": 1.4, "label_smoothing": 0.1},)
    )


def _orpo_sample() -> Sample:
    return _paired_sample(token_level=True, with_ref=False, seed=1, variants=({"beta": 0.25}, {"beta": 0.0}))


@register(
    "simpo_loss",
    aliases=("simpo", "simple_preference_optimization"),
    family=FAMILY,
    kind="per_example",
    formula="-(1-e) log s(b (avg log pi(y_w) - avg log pi(y_l)) - g) - e log s(-(...))",
    paper="SimPO: Simple Preference Optimization with a Reference-Free Reward (2024, arXiv:2405.14734)",
    reference="huggingface/trl CPOTrainer loss_type 'simpo' (average_log_prob=True)",
    sample=_simpo_sample,
    runtime=_RUNTIME,
)
def simpo_loss(
    policy_chosen_log_probs: ArrayLike,
    policy_rejected_log_probs: ArrayLike,
    *,
    beta: float = 2.0,
    gamma: float = 0.5,
    label_smoothing: float = 0.0,
    chosen_where: ArrayLike | None = None,
    rejected_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""SimPO: reference-free, length-normalized preference loss with a target margin.

    .. math::
        x = \frac{\beta}{|y_w|}\log\pi_\theta(y_w) - \frac{\beta}{|y_l|}\log\pi_\theta(y_l) - \gamma,\qquad
        \ell = -(1-\varepsilon)\log\sigma(x) - \varepsilon\log\sigma(-x)

    Per-token inputs are averaged over their masked tokens; per-sequence
    ``[B]`` inputs must already be averaged (trl's ``average_log_prob=True``).

    Args:
      policy_chosen_log_probs, policy_rejected_log_probs: ``[B]`` (averaged) or ``[B, T]``.
      beta: ``\beta`` (the official code's default 2.0).
      gamma: the target reward margin ``\gamma`` (official default
        ``gamma_beta_ratio = 0.25`` with ``beta = 2``: 0.5). trl's
        ``simpo_gamma`` is the same quantity.
      label_smoothing: ``\varepsilon`` in ``[0, 0.5)``.
      chosen_where, rejected_where, where: as in :func:`dpo_loss`.

    Returns:
      ``[B]`` per-example losses. trl's logged rewards are ``beta`` times the
      averaged log-probs: ``implicit_rewards(policy, beta=beta, average=True)``.

    Paper: Meng, Xia, Chen, "SimPO: Simple Preference Optimization with a
    Reference-Free Reward", NeurIPS 2024, arXiv:2405.14734.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.simpo_loss(jnp.array([-0.5]), jnp.array([-0.75])).round(4)  # margin exactly gamma
      Array([0.6931], dtype=float32)
    """
    fn = "simpo_loss"
    C.check_positive(fn, "beta", beta)
    C.check_positive(fn, "gamma", gamma, allow_zero=True)
    C.check_in_range(fn, "label_smoothing", label_smoothing, 0.0, 0.5, high_inclusive=False)
    (pc, pr), batch_mask, dtype = _pair_inputs(
        fn,
        ("policy_chosen_log_probs", "policy_rejected_log_probs"),
        (policy_chosen_log_probs, policy_rejected_log_probs),
        (chosen_where, rejected_where),
        ("chosen_where", "rejected_where"),
        where,
        average=True,
    )
    b = jnp.asarray(beta, dtype)
    chosen, rejected = b * pc, b * pr
    loss = _smoothed_logistic(chosen - rejected - jnp.asarray(gamma, dtype), label_smoothing)
    return C.zero_masked(loss, batch_mask)


# ----------------------------------- ORPO -----------------------------------


@register(
    "orpo_loss",
    aliases=("orpo", "odds_ratio_preference_optimization"),
    family=FAMILY,
    kind="per_example",
    formula="-avg log pi(y_w) - b log s(log odds(y_w) - log odds(y_l)),  odds(y) = p / (1 - p), p = exp(avg log pi(y))",
    paper="ORPO: Monolithic Preference Optimization without Reference Model (2024, arXiv:2403.07691)",
    reference="huggingface/trl ORPOTrainer.odds_ratio_loss + policy NLL (average_log_prob=True)",
    sample=_orpo_sample,
    runtime=_RUNTIME,
)
def orpo_loss(
    policy_chosen_log_probs: ArrayLike,
    policy_rejected_log_probs: ArrayLike,
    *,
    beta: float = 0.1,
    chosen_where: ArrayLike | None = None,
    rejected_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""ORPO: supervised NLL on the chosen response plus an odds-ratio preference term.

    .. math::
        \log\mathrm{odds}(y) = \bar\ell(y) - \log(1 - e^{\bar\ell(y)}),\qquad
        \ell = -\bar\ell(y_w) - \beta\log\sigma\big(\log\mathrm{odds}(y_w) - \log\mathrm{odds}(y_l)\big)

    with ``\bar\ell(y)`` the token-averaged log-probability of a response.
    ``log(1 - e^x)`` is computed with a stable ``log1mexp`` (finite at
    ``\bar\ell = 0``). The NLL term is per example (the mean over that
    example's chosen tokens); trl averages it over all chosen tokens of the
    batch, which is the same for equal lengths. Per-sequence inputs must be
    token-averaged.

    Args:
      policy_chosen_log_probs, policy_rejected_log_probs: ``[B]`` (averaged) or ``[B, T]``.
      beta: ``\lambda`` of the paper (trl's ``beta``), the weight of the odds-ratio term.
      chosen_where, rejected_where, where: as in :func:`dpo_loss`.

    Returns:
      ``[B]`` per-example losses. trl's logged rewards are ``beta`` times the
      averaged log-probs: ``implicit_rewards(policy, beta=beta, average=True)``.

    Paper: Hong, Lee, Thorne, "ORPO: Monolithic Preference Optimization without
    Reference Model", EMNLP 2024, arXiv:2403.07691.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.orpo_loss(jnp.array([-0.5]), jnp.array([-1.5])).round(4)
      Array([0.5171], dtype=float32)
    """
    fn = "orpo_loss"
    C.check_positive(fn, "beta", beta, allow_zero=True)
    (pc, pr), batch_mask, dtype = _pair_inputs(
        fn,
        ("policy_chosen_log_probs", "policy_rejected_log_probs"),
        (policy_chosen_log_probs, policy_rejected_log_probs),
        (chosen_where, rejected_where),
        ("chosen_where", "rejected_where"),
        where,
        average=True,
    )
    # Log-probabilities are <= 0; clamp so garbage > 0 cannot make log1mexp NaN.
    zero = jnp.zeros((), dtype)
    # (where, not minimum: the gradient at exactly 0 is the identity's, not split with the constant)
    c, r = jnp.where(pc <= 0, pc, zero), jnp.where(pr <= 0, pr, zero)
    log_odds = (c - r) - (C.log1mexp(c) - C.log1mexp(r))
    b = jnp.asarray(beta, dtype)
    loss = -pc - b * jax.nn.log_sigmoid(log_odds)
    return C.zero_masked(loss, batch_mask)


# ----------------------------- implicit rewards -----------------------------


def _rewards_sample() -> Sample:
    rng = np.random.default_rng(9)
    policy = (-rng.uniform(0.05, 2.0, size=(6, 4))).astype(np.float32)
    ref = (-rng.uniform(0.5, 8.0, size=(6,))).astype(np.float32)
    token_where = np.ones((6, 4), bool)
    token_where[::2, 3] = False
    extremes = ((np.zeros_like(policy), np.zeros_like(ref)), (np.full_like(policy, -1e4), np.full_like(ref, -1e4)))
    # The rewards are stop_gradient values for logging: no gradient to check. The token mask is a
    # variant, not a kwarg (the fuzz property changes the batch size of the args).
    return Sample(
        args=(policy, ref),
        diff_argnums=(),
        where=False,
        extremes=extremes,
        variants=(
            {"token_where": token_where},
            {"token_where": token_where, "average": True, "beta": 2.0},
            {"average": True},
        ),
    )


@register(
    "implicit_rewards",
    family=FAMILY,
    kind="function",
    formula="sg(b (log pi(y) - log ref(y))),  log pi(y) summed (or averaged) over the response tokens",
    paper="Direct Preference Optimization: Your Language Model is Secretly a Reward Model (2023, arXiv:2305.18290)",
    reference="huggingface/trl DPOTrainer / KTOTrainer chosen_rewards = beta * (logps - ref_logps).detach(); "
    "CPOTrainer (simpo) / ORPOTrainer chosen_rewards = beta * policy_logps.detach() (averaged)",
    sample=_rewards_sample,
    runtime=("token_where",),
)
def implicit_rewards(
    policy_log_probs: ArrayLike,
    ref_log_probs: ArrayLike | None = None,
    *,
    beta: float = 0.1,
    token_where: ArrayLike | None = None,
    average: bool = False,
) -> Array:
    r"""The implicit rewards preference trainers log: ``beta * (log pi(y) - log ref(y))``, constant.

    .. math::
        r(y) = \mathrm{sg}\Big[\beta\big(\log\pi_\theta(y) - \log\pi_\mathrm{ref}(y)\big)\Big]
        \quad\text{(}\log\pi_\mathrm{ref} = 0\text{ without a reference)}

    with ``\log\pi(y)`` the response log-probability, summed over the counted
    tokens of ``[B, T]`` inputs (or their mean with ``average=True``) and
    used as given for ``[B]`` inputs. Call it once on the chosen and once on
    the rejected log-probabilities; trl logs the batch means
    (``rewards/chosen``, ``rewards/rejected``), their difference
    (``rewards/margins``) and ``mean(chosen > rejected)``
    (``rewards/accuracies``). Which call matches trl's logged rewards:

    * :func:`dpo_loss`, :func:`soft_preference_cross_entropy`, :func:`kto_loss`:
      ``implicit_rewards(policy, ref, beta=beta)`` (summed log-probs);
    * :func:`ipo_loss`: ``implicit_rewards(policy, ref, beta=beta, average=True)``
      (trl averages the IPO log-probs over tokens);
    * :func:`simpo_loss`, :func:`orpo_loss`: ``implicit_rewards(policy,
      beta=beta, average=True)`` (no reference; trl's CPO/SimPO and ORPO
      trainers log ``beta`` times the averaged log-probs).

    Args:
      policy_log_probs: ``[B]`` (summed or averaged) or ``[B, T]`` (per token)
        log-probs of the responses under the policy.
      ref_log_probs: the same under the reference model, ``[B]`` or ``[B, T]``,
        or None for the reference-free losses (SimPO, ORPO).
      beta: ``\beta >= 0``, the loss's ``beta``.
      token_where: ``[B, T]`` token mask (bool or 0/1) of the per-token inputs.
      average: length-normalize per-token inputs (mean over counted tokens).

    Returns:
      ``[B]`` rewards (``stop_gradient``: no gradient flows into them).

    Paper: Rafailov et al., "Direct Preference Optimization: Your Language
    Model is Secretly a Reward Model", NeurIPS 2023, arXiv:2305.18290 (Sec. 5,
    the implicit reward ``beta log pi / pi_ref``).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.implicit_rewards(jnp.array([-1.0, -2.0]), jnp.array([-2.0, -2.0]), beta=0.5)
      Array([0.5, 0. ], dtype=float32)
      >>> lp, m = jnp.array([[-1.0, -3.0, jnp.nan]]), jnp.array([[True, True, False]])
      >>> lossjax.losses.implicit_rewards(lp, beta=2.0, token_where=m, average=True)  # SimPO / ORPO
      Array([-4.], dtype=float32)
    """
    fn = "implicit_rewards"
    C.check_positive(fn, "beta", beta, allow_zero=True)
    if ref_log_probs is None:
        (policy,), _, dtype = _pair_inputs(
            fn, ("policy_log_probs",), (policy_log_probs,), (token_where,), ("token_where",), None, average=average
        )
        log_ratio = policy
    else:
        (policy, ref), _, dtype = _pair_inputs(
            fn,
            ("policy_log_probs", "ref_log_probs"),
            (policy_log_probs, ref_log_probs),
            (token_where, token_where),
            ("token_where", "token_where"),
            None,
            average=average,
        )
        log_ratio = policy - ref
    return jax.lax.stop_gradient(jnp.asarray(beta, dtype) * log_ratio)


# ----------------------------------- KTO -----------------------------------


def _kto_sample() -> Sample:
    rng = np.random.default_rng(2)
    pol = (-rng.uniform(0.05, 2.0, size=(6, 4))).astype(np.float32)
    ref = (-rng.uniform(0.05, 2.0, size=(6, 4))).astype(np.float32)
    desirable = np.array([True, False, True, True, False, False])
    kl = np.float32(0.3)
    extremes = (
        (np.zeros_like(pol), np.zeros_like(ref), desirable, kl),
        (np.full_like(pol, -1e4), np.zeros_like(ref), desirable, kl),
        (np.zeros_like(pol), np.full_like(ref, -1e4), desirable, kl),
    )
    return Sample(
        args=(pol, ref, desirable, kl),
        diff_argnums=(0,),
        batched_argnums=(0, 1, 2),
        extremes=extremes,
        variants=({"beta": 0.5, "desirable_weight": 1.33, "undesirable_weight": 0.75}, {"desirable_weight": 0.0}),
    )


@register(
    "kto_loss",
    aliases=("kto", "kahneman_tversky_optimization"),
    family=FAMILY,
    kind="per_example",
    formula="w_D (1 - s(b (r - z0))) if desirable else w_U (1 - s(b (z0 - r))),  r = log pi(y) - log ref(y)",
    paper="KTO: Model Alignment as Prospect Theoretic Optimization (2024, arXiv:2402.01306)",
    reference="huggingface/trl KTOTrainer.kto_loss (loss_type 'kto')",
    sample=_kto_sample,
    runtime=("token_where",),
)
def kto_loss(
    policy_log_probs: ArrayLike,
    ref_log_probs: ArrayLike,
    desirable: ArrayLike,
    kl: ArrayLike,
    *,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
    token_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Kahneman-Tversky Optimization on unpaired desirable/undesirable responses.

    .. math::
        r = \log\pi_\theta(y) - \log\pi_\mathrm{ref}(y),\qquad
        \ell = \begin{cases}
          \lambda_D\,\big(1 - \sigma(\beta(r - z_0))\big) & y \text{ desirable} \\
          \lambda_U\,\big(1 - \sigma(\beta(z_0 - r))\big) & y \text{ undesirable}
        \end{cases}

    ``z_0`` is the reference point, an estimate of
    ``\mathrm{KL}(\pi_\theta\,\|\,\pi_\mathrm{ref})`` on mismatched
    prompt/completion pairs, given as an input (constant, clamped at 0):
    compute it with :func:`kto_reference_kl`. ``1 - \sigma(x)`` is evaluated as
    ``\sigma(-x)``.

    Args:
      policy_log_probs: ``[B]`` summed or ``[B, T]`` per-token policy log-probs.
      ref_log_probs: the reference model's, same shape (constant).
      desirable: ``[B]`` bool, True for desirable (chosen) responses.
      kl: the reference point ``z_0``, a scalar (or ``[B]``), constant.
      beta: ``\beta``.
      desirable_weight, undesirable_weight: ``\lambda_D``, ``\lambda_U``.
      token_where: ``[B, T]`` token mask (bool or 0/1) for per-token inputs.
      where: optional ``[B]`` example mask.

    Returns:
      ``[B]`` per-example losses (trl concatenates the chosen then the rejected
      ones; here they stay in batch order). trl's logged rewards are
      ``implicit_rewards(policy, ref, beta=beta)`` (:func:`implicit_rewards`).

    Paper: Ethayarajh et al., "KTO: Model Alignment as Prospect Theoretic
    Optimization", ICML 2024, arXiv:2402.01306.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.kto_loss(jnp.array([-1.0, -1.0]), jnp.array([-2.0, -2.0]),
      ...                         jnp.array([True, False]), 0.0).round(4)
      Array([0.475, 0.525], dtype=float32)
    """
    fn = "kto_loss"
    C.check_positive(fn, "beta", beta)
    C.check_positive(fn, "desirable_weight", desirable_weight, allow_zero=True)
    C.check_positive(fn, "undesirable_weight", undesirable_weight, allow_zero=True)
    (pol, ref), batch_mask, dtype = _pair_inputs(
        fn,
        ("policy_log_probs", "ref_log_probs"),
        (policy_log_probs, ref_log_probs),
        (token_where, token_where),
        ("token_where", "token_where"),
        where,
        average=False,
    )
    n = pol.shape[0]
    desirable = C.check_array(fn, "desirable", desirable, shape=(n,))
    if desirable.dtype != jnp.bool_:
        raise TypeError(f"{fn}: `desirable` must be a boolean array of shape ({n},), got {desirable.dtype}.")
    kl = C.check_array(fn, "kl", kl, ndim=(0, 1), dtype="float")
    if kl.ndim == 1 and kl.shape != (n,):
        raise ValueError(f"{fn}: `kl` must be a scalar or have shape ({n},), got {kl.shape}.")
    z0 = jax.lax.stop_gradient(jnp.maximum(C.as_compute(kl, dtype), jnp.zeros((), dtype)))
    b = jnp.asarray(beta, dtype)
    r = pol - jax.lax.stop_gradient(ref)
    loss_d = jnp.asarray(desirable_weight, dtype) * jax.nn.sigmoid(-b * (r - z0))
    loss_u = jnp.asarray(undesirable_weight, dtype) * jax.nn.sigmoid(-b * (z0 - r))
    return C.zero_masked(jnp.where(desirable, loss_d, loss_u), batch_mask)


def _kto_kl_sample() -> Sample:
    rng = np.random.default_rng(4)
    return Sample(
        args=(
            (-rng.uniform(0.5, 3.0, size=(5,))).astype(np.float32),
            (-rng.uniform(1.0, 4.0, size=(5,))).astype(np.float32),
        ),
        diff_argnums=(),
        where=False,
    )


@register(
    "kto_reference_kl",
    family=FAMILY,
    kind="function",
    formula="z0 = max(0, mean_i (log pi(y_i') - log ref(y_i'))), stop-gradient",
    paper="KTO: Model Alignment as Prospect Theoretic Optimization (2024, arXiv:2402.01306)",
    reference="huggingface/trl KTOTrainer: (KL_logps - ref_KL_logps).mean().clamp(min=0)",
    sample=_kto_kl_sample,
    runtime=("axis_name",),
)
def kto_reference_kl(
    policy_kl_log_probs: ArrayLike,
    ref_kl_log_probs: ArrayLike,
    *,
    where: ArrayLike | None = None,
    axis_name: str | None = None,
) -> Array:
    r"""KTO's reference point: the batch KL estimate on mismatched (prompt, completion) pairs.

    .. math:: z_0 = \max\Big(0,\ \frac{1}{|B|}\sum_i \log\pi_\theta(y'_i|x_i) - \log\pi_\mathrm{ref}(y'_i|x_i)\Big)

    a constant (``stop_gradient``) scalar, averaged across devices over
    ``axis_name`` when given (trl gathers it across processes).

    Args:
      policy_kl_log_probs, ref_kl_log_probs: ``[B]`` summed log-probs of completions
        paired with unrelated prompts, under the policy and the reference.
      where: optional ``[B]`` mask of real examples.
      axis_name: a mapped axis to average over (inside ``shard_map``/``pmap``).

    Returns:
      A scalar ``z_0 >= 0``.

    Paper: Ethayarajh et al., 2024, arXiv:2402.01306.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.kto_reference_kl(jnp.array([-1.0, -2.0]), jnp.array([-2.0, -2.5]))
      Array(0.75, dtype=float32)
    """
    fn = "kto_reference_kl"
    p = C.check_array(fn, "policy_kl_log_probs", policy_kl_log_probs, ndim=1, dtype="float")
    r = C.check_array(fn, "ref_kl_log_probs", ref_kl_log_probs, ndim=1, dtype="float")
    C.check_same_shape(fn, ("policy_kl_log_probs", "ref_kl_log_probs"), p, r)
    dtype = C.compute_dtype(p, r)
    mask = C.prepare_where(fn, where, p.shape)
    d = C.fill_masked(C.as_compute(p, dtype) - C.as_compute(r, dtype), mask)
    total = jnp.sum(d)
    count = jnp.asarray(p.shape[0], dtype) if mask is None else jnp.sum(mask).astype(dtype)
    if axis_name is not None:
        total = jax.lax.psum(total, axis_name)
        count = jax.lax.psum(count, axis_name)
    z0 = total / jnp.maximum(count, jnp.ones((), dtype))
    return jax.lax.stop_gradient(jnp.maximum(z0, jnp.zeros((), dtype)))


# ----------------------------------- NPO -----------------------------------


def _npo_sample() -> Sample:
    rng = np.random.default_rng(5)
    pol = (-rng.uniform(0.05, 2.0, size=(6, 4))).astype(np.float32)
    ref = (-rng.uniform(0.05, 2.0, size=(6, 4))).astype(np.float32)
    extremes = ((np.zeros_like(pol), np.full_like(ref, -1e4)), (np.full_like(pol, -1e4), np.zeros_like(ref)))
    return Sample(args=(pol, ref), diff_argnums=(0,), extremes=extremes, variants=({"beta": 1.0},))


@register(
    "negative_preference_optimization",
    aliases=("npo", "npo_loss"),
    family=FAMILY,
    kind="per_example",
    formula="-(2/b) log s(b (log ref(y) - log pi(y)))   on forget data",
    paper="Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning "
    "(2024, arXiv:2404.05868)",
    reference="licong-lin/negative-preference-optimization TOFU/dataloader.py (loss_type 'npo')",
    sample=_npo_sample,
    runtime=("token_where",),
)
def negative_preference_optimization(
    policy_log_probs: ArrayLike,
    ref_log_probs: ArrayLike,
    *,
    beta: float = 0.1,
    token_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Negative Preference Optimization (NPO) for unlearning: DPO with only a rejected response.

    .. math:: \ell = -\frac{2}{\beta}\log\sigma\Big(\beta\big(\log\pi_\mathrm{ref}(y|x) - \log\pi_\theta(y|x)\big)\Big)

    on forget-set responses ``y`` (log-probs summed over the response tokens,
    as the reference's ``get_batch_loss``). As ``\beta \to 0`` its gradient is
    gradient ascent's, scaled by a weight that vanishes once ``\pi_\theta(y)``
    falls below ``\pi_\mathrm{ref}(y)``. Add a retain loss yourself.

    Args:
      policy_log_probs: ``[B]`` summed or ``[B, T]`` per-token log-probs of forget responses.
      ref_log_probs: the reference (pre-unlearning) model's, same shape (constant).
      beta: ``\beta``.
      token_where: ``[B, T]`` token mask (bool or 0/1) for per-token inputs.
      where: optional ``[B]`` example mask.

    Returns:
      ``[B]`` per-example losses; the reference averages them over the batch.

    Paper: Zhang, Lin, Bai, Mei, "Negative Preference Optimization: From
    Catastrophic Collapse to Effective Unlearning", COLM 2024, arXiv:2404.05868.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.negative_preference_optimization(jnp.array([-2.0]), jnp.array([-2.0])).round(4)
      Array([13.8629], dtype=float32)
    """
    fn = "negative_preference_optimization"
    C.check_positive(fn, "beta", beta)
    (pol, ref), batch_mask, dtype = _pair_inputs(
        fn,
        ("policy_log_probs", "ref_log_probs"),
        (policy_log_probs, ref_log_probs),
        (token_where, token_where),
        ("token_where", "token_where"),
        where,
        average=False,
    )
    b = jnp.asarray(beta, dtype)
    loss = -(2 / b) * jax.nn.log_sigmoid(b * (jax.lax.stop_gradient(ref) - pol))
    return C.zero_masked(loss, batch_mask)


# ------------------------- noisy verifier correction -------------------------


def _nvrc_sample() -> Sample:
    rng = np.random.default_rng(6)
    rewards = rng.integers(0, 2, size=(3, 4)).astype(np.float32)
    return Sample(
        args=(rewards,),
        kwargs={"false_positive_rate": 0.1, "false_negative_rate": 0.25},
        diff_argnums=(),
        where=False,
        variants=({"false_positive_rate": 0.0, "false_negative_rate": 0.4},),
    )


@register(
    "noisy_verifier_reward_correction",
    aliases=("verifier_backward_correction",),
    family=FAMILY,
    kind="function",
    formula="(r - rho_FP) / (1 - rho_FP - rho_FN)",
    paper="Reinforcement Learning with Verifiable yet Noisy Rewards under Imperfect Verifiers (2025, arXiv:2510.00915)",
    reference="closed form (backward correction of the paper); unbiasedness derived by hand in the tests",
    sample=_nvrc_sample,
)
def noisy_verifier_reward_correction(
    rewards: ArrayLike,
    *,
    false_positive_rate: float = 0.0,
    false_negative_rate: float = 0.0,
) -> Array:
    r"""Backward correction of binary verifier rewards for known false-positive/negative rates.

    .. math:: \hat r = \frac{\tilde r - \rho_0}{1 - \rho_0 - \rho_1}

    with ``\rho_0`` the verifier's false-positive rate (accepts a wrong
    answer) and ``\rho_1`` its false-negative rate (rejects a right one). Given
    the true reward ``r \in \{0, 1\}``,
    ``E[\hat r \mid r] = r``: the corrected rewards (then GRPO advantages,
    e.g. ``(r - mean) / std`` over a group) give an unbiased policy gradient.
    The paper's forward correction (reweighting the score-function terms with
    the FN rate only) is not included here.

    Args:
      rewards: observed rewards ``\tilde r`` in ``{0, 1}``, any shape (e.g. ``[B, G]``).
      false_positive_rate: ``\rho_0`` in ``[0, 1)``.
      false_negative_rate: ``\rho_1`` in ``[0, 1)``, with ``\rho_0 + \rho_1 < 1``.

    Returns:
      Corrected rewards of the same shape (float).

    Paper: Cai et al., "Reinforcement Learning with Verifiable yet Noisy
    Rewards under Imperfect Verifiers", 2025, arXiv:2510.00915.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.noisy_verifier_reward_correction(
      ...     jnp.array([0.0, 1.0]), false_positive_rate=0.1, false_negative_rate=0.3)
      Array([-0.16666667,  1.5       ], dtype=float32)
    """
    fn = "noisy_verifier_reward_correction"
    r = C.check_array(fn, "rewards", rewards, dtype=None)
    if not (r.dtype == jnp.bool_ or jnp.issubdtype(r.dtype, jnp.number)):
        raise TypeError(f"{fn}: `rewards` must be numeric or bool, got {r.dtype}.")
    C.check_in_range(fn, "false_positive_rate", false_positive_rate, 0.0, 1.0, high_inclusive=False)
    C.check_in_range(fn, "false_negative_rate", false_negative_rate, 0.0, 1.0, high_inclusive=False)
    concrete = not any(isinstance(v, jax.core.Tracer) for v in (false_positive_rate, false_negative_rate))
    if concrete and float(false_positive_rate) + float(false_negative_rate) >= 1:
        raise ValueError(
            f"{fn}: `false_positive_rate` + `false_negative_rate` must be < 1 (the verifier must carry signal), "
            f"got {false_positive_rate!r} + {false_negative_rate!r}."
        )
    dtype = C.compute_dtype(r) if jnp.issubdtype(r.dtype, jnp.floating) else jnp.dtype(jnp.float32)
    r = C.as_compute(r, dtype)
    rho0 = jnp.asarray(false_positive_rate, dtype)
    rho1 = jnp.asarray(false_negative_rate, dtype)
    return (r - rho0) / (1 - rho0 - rho1)


# ------------------------------ FLAT unlearning ------------------------------

# (activation of the template term, minus the conjugate of the forget term), as in FLAT's
# get_contrastive_loss: loss = act(g) - conj(f), g and f the mean token probabilities.
_F_DIVERGENCES = {
    "Total-Variation": (lambda g: -jnp.tanh(g) / 2, lambda f: -jnp.tanh(f) / 2),
    "KL": (lambda g: -g, lambda f: -jnp.exp(f - 1)),
    "Pearson": (lambda g: -g, lambda f: -(jnp.square(f) / 4 + f)),
    "Jenson-Shannon": (
        lambda g: jax.nn.softplus(-g) - math.log(2.0),
        lambda f: -jax.nn.softplus(f) + math.log(2.0),
    ),
}


def _flat_sample() -> Sample:
    rng = np.random.default_rng(8)
    good = (-rng.uniform(0.05, 3.0, size=(4, 3))).astype(np.float32)
    bad = (-rng.uniform(0.05, 3.0, size=(4, 5))).astype(np.float32)
    extremes = ((np.zeros_like(good), np.zeros_like(bad)), (np.full_like(good, -1e4), np.full_like(bad, -1e4)))
    variants = tuple({"divergence": d} for d in ("KL", "Pearson", "Jenson-Shannon"))
    return Sample(args=(good, bad), diff_argnums=(0, 1), extremes=extremes, variants=variants)


@register(
    "forget_only_f_divergence_unlearning",
    aliases=("flat_loss", "flat"),
    family=FAMILY,
    kind="batch",
    formula="act(mean p(template tokens)) - conj(mean p(forget tokens))   (variational f-divergence)",
    paper="LLM Unlearning via Loss Adjustment with Only Forget Data (2024, arXiv:2410.11143)",
    reference="UCSC-REAL/FLAT dataloader.py (loss_type 'cl': ProbLossStable + get_contrastive_loss)",
    sample=_flat_sample,
    runtime=("template_where", "forget_where"),
)
def forget_only_f_divergence_unlearning(
    template_log_probs: ArrayLike,
    forget_log_probs: ArrayLike,
    *,
    divergence: str = "Total-Variation",
    template_where: ArrayLike | None = None,
    forget_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""FLAT: unlearning with only forget data by maximizing a variational f-divergence.

    With ``g`` the mean token probability of template (e.g. "I don't know")
    answers and ``f`` that of the forget answers, both on the forget prompts:

    .. math:: \mathcal L = \mathrm{act}(g) - \mathrm{conj}(f)

    where (act, conj) are the f-GAN activation and conjugate of the chosen
    divergence: Total-Variation ``(-\tanh(g)/2, -\tanh(f)/2)`` (the
    reference's default), KL ``(-g, -e^{f-1})``, Pearson
    ``(-g, -(f^2/4 + f))``, Jenson-Shannon
    ``(\mathrm{softplus}(-g) - \log 2, \log 2 - \mathrm{softplus}(f))``.
    Minimizing raises the template answers' probability and lowers the forget
    answers'. The means run over the counted tokens (the reference divides by
    every position, ignored prompt tokens included, i.e. rescales ``g`` and
    ``f`` by the answer fraction). The reference's Reverse-KL, Jeffrey,
    Neyman and Squared-Hellinger variants are not included.

    Args:
      template_log_probs: per-token log-probs of the template answers, ``[B, T1]`` (or ``[B]``).
      forget_log_probs: per-token log-probs of the forget answers, ``[B, T2]`` (or ``[B]``).
      divergence: ``"Total-Variation"``, ``"KL"``, ``"Pearson"`` or ``"Jenson-Shannon"``.
      template_where, forget_where: token masks of the same shapes (bool or 0/1).
      where: optional ``[B]`` example mask.

    Returns:
      A scalar (0 for an all-masked batch).

    Paper: Wang et al., "LLM Unlearning via Loss Adjustment with Only Forget
    Data", ICLR 2025, arXiv:2410.11143.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> good, bad = jnp.log(jnp.array([[0.5, 0.5]])), jnp.log(jnp.array([[0.2, 0.2]]))
      >>> lossjax.losses.forget_only_f_divergence_unlearning(good, bad, divergence="KL").round(4)
      Array(-0.0507, dtype=float32)
    """
    fn = "forget_only_f_divergence_unlearning"
    C.check_one_of(fn, "divergence", divergence, tuple(_F_DIVERGENCES))
    g_lp = check_log_probs(fn, "template_log_probs", template_log_probs)
    f_lp = check_log_probs(fn, "forget_log_probs", forget_log_probs)
    if g_lp.shape[0] != f_lp.shape[0]:
        raise ValueError(
            f"{fn}: `template_log_probs` and `forget_log_probs` need the same batch size, "
            f"got shapes {g_lp.shape} and {f_lp.shape}."
        )
    dtype = C.compute_dtype(g_lp, f_lp)
    batch_mask = C.prepare_where(fn, where, (g_lp.shape[0],))

    def mean_prob(x, m, arg, mask_arg):
        m = token_mask_of(fn, mask_arg, m, x, arg)
        keep = jnp.ones(x.shape, bool) if m is None else m
        if batch_mask is not None:
            keep = keep & jnp.reshape(batch_mask, batch_mask.shape + (1,) * (x.ndim - 1))
        lp = jnp.where(keep, C.as_compute(x, dtype), jnp.zeros((), dtype))
        # log p <= 0 (where, not minimum: at exactly 0 the gradient is exp's, not split with the clamp)
        p = jnp.where(keep, jnp.exp(jnp.where(lp <= 0, lp, jnp.zeros((), dtype))), jnp.zeros((), dtype))
        count = jnp.sum(keep).astype(dtype)
        return jnp.sum(p) / jnp.maximum(count, jnp.ones((), dtype)), count

    g, n_g = mean_prob(g_lp, template_where, "template_log_probs", "template_where")
    f, n_f = mean_prob(f_lp, forget_where, "forget_log_probs", "forget_where")
    act, conj = _F_DIVERGENCES[divergence]
    loss = act(g) - conj(f)
    return jnp.where((n_g > 0) & (n_f > 0), loss, jnp.zeros((), dtype))


# ----------------------------------- CPO -----------------------------------

#: trl ``CPOConfig.loss_type`` values (``"alphapo"`` is ``"simpo"`` with ``alpha`` and ``nll_weight=0``).
CPO_VARIANTS = ("sigmoid", "hinge", "ipo", "simpo")


def _cpo(fn, arrays, chosen_where, rejected_where, where, *, beta, label_smoothing, nll_weight, alpha, variant, gamma):
    """trl 1.16 ``CPOTrainer.cpo_loss`` (+ ``cpo_alpha`` times the NLL) on ``[B]`` or ``[B, T]`` log-probs."""
    C.check_one_of(fn, "variant", variant, CPO_VARIANTS)
    C.check_positive(fn, "beta", beta)
    C.check_positive(fn, "nll_weight", nll_weight, allow_zero=True)
    C.check_positive(fn, "gamma", gamma, allow_zero=True)
    if isinstance(alpha, jax.core.Tracer):
        raise ValueError(f"{fn}: `alpha` must be a static number (0 selects the log-probability reward).")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.number)) or not math.isfinite(alpha):
        raise ValueError(f"{fn}: `alpha` must be a finite number, got {alpha!r}.")
    if variant in ("sigmoid", "simpo"):
        C.check_in_range(fn, "label_smoothing", label_smoothing, 0.0, 0.5, high_inclusive=False)
    elif not isinstance(label_smoothing, jax.core.Tracer) and float(label_smoothing) != 0.0:
        raise ValueError(
            f"{fn}: `label_smoothing` is only read by variants 'sigmoid' and 'simpo'; variant={variant!r} got "
            f"label_smoothing={label_smoothing!r} (needs 0)."
        )
    names = ("policy_chosen_log_probs", "policy_rejected_log_probs")
    masks, mask_names = (chosen_where, rejected_where), ("chosen_where", "rejected_where")
    (pc, pr), batch_mask, dtype = _pair_inputs(
        fn, names, arrays, masks, mask_names, where, average=variant in ("ipo", "simpo")
    )
    if alpha != 0:
        a = float(alpha)

        def reward(lp):  # (1 - p^-a) / a = -expm1(-a log p) / a
            return -jnp.expm1(jnp.minimum(-a * lp, _EXP_CLAMP)) / a

        x = reward(pc) - reward(pr)
    else:
        x = pc - pr
    b = jnp.asarray(beta, dtype)
    if variant == "sigmoid":
        loss = _smoothed_logistic(b * x, label_smoothing)
    elif variant == "simpo":
        loss = _smoothed_logistic(b * (x - jnp.asarray(gamma, dtype) / b), label_smoothing)
    elif variant == "hinge":
        loss = jax.nn.relu(1 - b * x)
    else:
        loss = jnp.square(x - 1 / (2 * b))
    if isinstance(nll_weight, jax.core.Tracer) or float(nll_weight) != 0.0:
        if variant in ("ipo", "simpo"):
            nll = -pc
        else:
            (avg,), _, _ = _pair_inputs(fn, names[:1], arrays[:1], masks[:1], mask_names[:1], where, average=True)
            nll = -avg
        loss = loss + jnp.asarray(nll_weight, dtype) * nll
    return C.zero_masked(loss, batch_mask)


def _cpo_sample() -> Sample:
    return _paired_sample(
        token_level=True,
        with_ref=False,
        seed=24,
        variants=(
            {"beta": 0.5, "label_smoothing": 0.1, "nll_weight": 0.0},
            {"variant": "simpo", "beta": 2.0, "gamma": 0.8, "alpha": -0.5},
            {"variant": "hinge", "beta": 0.4},
            {"variant": "ipo", "beta": 0.5, "nll_weight": 0.5},
        ),
    )


@register(
    "cpo_loss",
    aliases=("cpo", "contrastive_preference_optimization", "alphapo_loss"),
    family=FAMILY,
    kind="per_example",
    formula="-(1-e) log s(b (R(y_w) - R(y_l))) - e log s(-b (...)) + nll_weight * (-log pi(y_w) / |y_w|),  "
    "R = log pi (or AlphaPO's (1 - pi^-alpha) / alpha)",
    paper="Contrastive Preference Optimization: Pushing the Boundaries of LLM Performance in Machine "
    "Translation (2024, arXiv:2401.08417)",
    reference="huggingface/trl 1.16.0 experimental/cpo/cpo_trainer.py::CPOTrainer.cpo_loss + cpo_alpha * NLL",
    sample=_cpo_sample,
    runtime=_RUNTIME,
)
def cpo_loss(
    policy_chosen_log_probs: ArrayLike,
    policy_rejected_log_probs: ArrayLike,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    nll_weight: float = 1.0,
    alpha: float = 0.0,
    variant: str = "sigmoid",
    gamma: float = 0.5,
    chosen_where: ArrayLike | None = None,
    rejected_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""CPO: a reference-free preference loss plus behaviour cloning of the chosen response (and AlphaPO).

    .. math::
        x = R(y_w) - R(y_l),\qquad
        \ell = -(1-\varepsilon)\log\sigma(\beta x) - \varepsilon\log\sigma(-\beta x)
               + \lambda\Big(-\frac{\log\pi_\theta(y_w)}{|y_w|}\Big)

    with ``R(y) = \log\pi_\theta(y)`` (summed over the response tokens for
    ``"sigmoid"`` and ``"hinge"``, averaged for ``"ipo"`` and ``"simpo"``,
    as trl's ``average_log_prob``) or, with ``alpha != 0``, AlphaPO's reward
    ``R = (1 - \pi_\theta(y)^{-\alpha})/\alpha`` (evaluated as
    ``-\mathrm{expm1}(-\alpha\log\pi)/\alpha``, exponent clamped at 80).
    ``variant`` is trl's ``CPOConfig.loss_type``: ``"sigmoid"`` (the formula),
    ``"hinge"`` ``\max(0, 1 - \beta x)``, ``"ipo"`` ``(x - 1/(2\beta))^2``,
    ``"simpo"`` the sigmoid loss of ``x - \gamma/\beta`` (SimPO with a BC
    term; trl's ``"alphapo"`` is ``variant="simpo"``, ``alpha != 0``,
    ``nll_weight=0``). The NLL term is per example (the mean over the chosen
    tokens); trl averages it over all chosen tokens of the batch, the same for
    equal lengths.

    Args:
      policy_chosen_log_probs, policy_rejected_log_probs: ``[B]`` or ``[B, T]`` policy log-probs
        (``[B]`` inputs are used as given: summed, or averaged for ipo/simpo).
      beta: ``\beta > 0``.
      label_smoothing: ``\varepsilon`` in ``[0, 0.5)`` (sigmoid and simpo only).
      nll_weight: ``\lambda \geq 0``, the behaviour-cloning weight (trl's ``cpo_alpha``, default 1).
      alpha: AlphaPO's reward-shape ``\alpha`` (trl's ``alpha``; 0 is the log-probability reward).
      variant: ``"sigmoid"``, ``"hinge"``, ``"ipo"`` or ``"simpo"``.
      gamma: SimPO's target margin ``\gamma`` (trl's ``simpo_gamma``), used by ``"simpo"``.
      chosen_where, rejected_where: ``[B, T]`` token masks.
      where: optional ``[B]`` example mask.

    Returns:
      ``[B]`` per-example losses. trl's logged rewards are ``beta * R(y)``
      (:func:`implicit_rewards` with ``average`` as above, for ``alpha = 0``).

    Paper: Xu et al., "Contrastive Preference Optimization: Pushing the
    Boundaries of LLM Performance in Machine Translation", ICML 2024,
    arXiv:2401.08417; AlphaPO: Gupta et al., "AlphaPO: Reward Shape Matters
    for LLM Alignment", 2025, arXiv:2501.03884.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.cpo_loss(jnp.array([-1.0]), jnp.array([-3.0]), nll_weight=0.0).round(4)  # -log s(0.2)
      Array([0.5981], dtype=float32)
    """
    return _cpo(
        "cpo_loss",
        (policy_chosen_log_probs, policy_rejected_log_probs),
        chosen_where,
        rejected_where,
        where,
        beta=beta,
        label_smoothing=label_smoothing,
        nll_weight=nll_weight,
        alpha=alpha,
        variant=variant,
        gamma=gamma,
    )


# ----------------------------------- BCO -----------------------------------


class BCOState(NamedTuple):
    """BCO's running reward baseline (trl's ``RunningMoments``): the mean of every reward seen and their count.

    Attributes:
      mean: scalar running mean ``\\delta`` of the implicit rewards ``beta * (log pi - log ref)``.
      count: scalar number of rewards averaged so far (0: no reward seen; the first batch sets the mean).
    """

    mean: Array
    count: Array

    @classmethod
    def initial(cls, dtype=jnp.float32) -> BCOState:
        """No reward seen yet (trl starts at mean 0 and count 1e-24: the first batch sets the mean)."""
        return cls(jnp.zeros((), dtype), jnp.zeros((), dtype))


def _bco_sample() -> Sample:
    rng = np.random.default_rng(25)
    pol = (-rng.uniform(0.05, 2.0, size=(6, 4))).astype(np.float32)
    ref = (-rng.uniform(0.05, 2.0, size=(6, 4))).astype(np.float32)
    desirable = np.array([True, False, True, True, False, False])
    extremes = (
        (np.zeros_like(pol), np.zeros_like(ref), desirable),
        (np.full_like(pol, -1e4), np.zeros_like(ref), desirable),
        (np.zeros_like(pol), np.full_like(ref, -1e4), desirable),
    )
    return Sample(
        args=(pol, ref, desirable),
        kwargs={"state": BCOState(np.float32(0.05), np.float32(12.0))},
        diff_argnums=(0,),
        # The baseline is updated with this batch's rewards but held constant in the gradient (trl detaches it):
        # finite differences of the value move the baseline too.
        surrogate_grad=True,
        batched_argnums=(0, 1, 2),
        extremes=extremes,
        variants=({"state": BCOState(np.float32(0.0), np.float32(0.0)), "beta": 0.5},),
    )


@register(
    "bco_loss",
    aliases=("bco", "binary_classifier_optimization"),
    family=FAMILY,
    kind="per_example",
    formula="-log s(r - delta) if desirable else -log s(-(r - delta)),  r = b (log pi(y) - log ref(y)), "
    "delta the running mean of r (state)",
    paper="Binary Classifier Optimization for Large Language Model Alignment (2024, arXiv:2404.04656)",
    reference="huggingface/trl 0.19 trainer/bco_trainer.py::BCOTrainer.bco_loss + trainer/utils.py::RunningMoments",
    sample=_bco_sample,
    runtime=("token_where", "state", "weights", "axis_name"),
    has_aux=True,
)
def bco_loss(
    policy_log_probs: ArrayLike,
    ref_log_probs: ArrayLike,
    desirable: ArrayLike,
    *,
    state: BCOState | None = None,
    beta: float = 0.1,
    weights: ArrayLike | None = None,
    token_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
    axis_name=None,
) -> tuple[Array, BCOState]:
    r"""BCO: a binary classifier on unpaired desirable/undesirable responses with a running reward baseline.

    .. math::
        r_i = \beta\big(\log\pi_\theta(y_i) - \log\pi_\mathrm{ref}(y_i)\big),\qquad
        \ell_i = \begin{cases} -\log\sigma(r_i - \delta) & y_i \text{ desirable} \\
                               -\log\sigma(-(r_i - \delta)) & y_i \text{ undesirable} \end{cases}

    ``\delta`` is the running mean of every reward seen so far, updated with
    this batch's rewards first (``stop_gradient``), as trl's
    ``RunningMoments``: ``\delta \leftarrow \delta + (\bar r - \delta)\,n / (N + n)``,
    ``N \leftarrow N + n``, carried in :class:`BCOState`. ``weights`` multiply
    the per-example losses (trl's underlying-distribution matching weights
    the undesirable ones by a density ratio from a prompt classifier: pass
    those, and 1 for the desirable ones).

    Args:
      policy_log_probs: ``[B]`` summed or ``[B, T]`` per-token policy log-probs.
      ref_log_probs: the reference model's, same shape (constant).
      desirable: ``[B]`` bool, True for desirable (chosen) responses.
      state: :class:`BCOState` (None: :meth:`BCOState.initial`).
      beta: ``\beta > 0``.
      weights: optional ``[B]`` non-negative per-example weights (e.g. UDM density ratios).
      token_where: ``[B, T]`` token mask for per-token inputs.
      where: optional ``[B]`` example mask (masked rows leave the baseline alone).
      axis_name: update the baseline with the global batch's rewards across this mapped axis (trl gathers them).

    Returns:
      ``(losses [B], new_state)``; trl averages the losses (``nanmean``) and
      logs ``delta = new_state.mean``.

    Paper: Jung et al., "Binary Classifier Optimization for Large Language
    Model Alignment", 2024, arXiv:2404.04656.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> loss, st = lossjax.losses.bco_loss(jnp.array([-1.0, -3.0]), jnp.array([-2.0, -2.0]),
      ...                                    jnp.array([True, False]), beta=1.0)
      >>> loss.round(4), float(st.mean)  # rewards 1, -1: delta 0
      (Array([0.3133, 0.3133], dtype=float32), 0.0)
    """
    fn = "bco_loss"
    C.check_positive(fn, "beta", beta)
    (pol, ref), batch_mask, dtype = _pair_inputs(
        fn,
        ("policy_log_probs", "ref_log_probs"),
        (policy_log_probs, ref_log_probs),
        (token_where, token_where),
        ("token_where", "token_where"),
        where,
        average=False,
    )
    n = pol.shape[0]
    desirable = C.check_array(fn, "desirable", desirable, shape=(n,))
    if desirable.dtype != jnp.bool_:
        raise TypeError(f"{fn}: `desirable` must be a boolean array of shape ({n},), got {desirable.dtype}.")
    if state is None:
        state = BCOState.initial(dtype)
    if not isinstance(state, BCOState):
        if isinstance(state, tuple) and len(state) == 2:
            state = BCOState(*state)
        else:
            raise TypeError(f"{fn}: `state` must be a BCOState (mean, count), got {type(state).__name__}.")
    mean = C.check_array(fn, "state.mean", state.mean, ndim=0, dtype="float").astype(dtype)
    count = C.check_array(fn, "state.count", state.count, ndim=0, dtype="float").astype(dtype)
    rewards = jnp.asarray(beta, dtype) * (pol - jax.lax.stop_gradient(ref))
    valid = jnp.ones((n,), bool) if batch_mask is None else batch_mask
    zero = jnp.zeros((), dtype)
    r_sg = jax.lax.stop_gradient(jnp.where(valid, rewards, zero))
    batch_n = psum(jnp.sum(valid).astype(dtype), axis_name)
    batch_sum = psum(jnp.sum(r_sg), axis_name)
    total = count + batch_n
    new_mean = jnp.where(
        batch_n > 0, mean + (batch_sum - batch_n * mean) / jnp.maximum(total, jnp.ones((), dtype)), mean
    )
    new_state = BCOState(jax.lax.stop_gradient(new_mean), jax.lax.stop_gradient(total))
    x = rewards - new_state.mean
    loss = jnp.where(desirable, -jax.nn.log_sigmoid(x), -jax.nn.log_sigmoid(-x))
    if weights is not None:
        w = C.check_array(fn, "weights", weights, shape=(n,), dtype="float")
        loss = loss * jax.lax.stop_gradient(C.fill_masked(C.as_compute(w, dtype), batch_mask))
    return C.zero_masked(loss, batch_mask), new_state


# ------------------------- fused linear preference heads -------------------------

#: Reference-free losses of :func:`linear_preference_loss`.
LINEAR_PREFERENCE_LOSSES = ("simpo", "orpo", "cpo")


def _head_log_probs(fn, hidden, weight, labels, bias, ignore_index, block_size, memory_budget, where, *, name=""):
    """Per-token log-probs of ``hidden [B, ..., T, D]`` / ``labels [B, ..., T]`` under one fused head.

    All sequences (e.g. a pair's chosen and rejected one, ``[B, 2, T, D]``) go
    through ONE fused :func:`~lossjax.losses.linear_cross_entropy` call (no
    ``[tokens, V]`` logits); returns ``(log_probs [B, ..., T], token mask)``
    with the mask ``labels != ignore_index`` (and the example mask ``where``).
    """
    weight = C.check_array(fn, f"{name}weight", weight, ndim=2, dtype="float")
    hidden = C.check_array(fn, f"{name}hidden", hidden, min_ndim=3, dtype="float")
    labels = C.check_array(fn, "labels", labels, min_ndim=2, dtype="int")
    if hidden.shape[:-1] != labels.shape:
        raise ValueError(
            f"{fn}: `{name}hidden` must be `labels`' shape {labels.shape} plus the hidden size, got {hidden.shape}."
        )
    if hidden.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"{fn}: `{name}weight` must be (V, D) with D = {hidden.shape[-1]} (the hidden size), got {weight.shape}."
        )
    valid = labels != ignore_index if ignore_index is not None else jnp.ones(labels.shape, bool)
    mask = C.prepare_where(fn, where, labels.shape[:1])
    if mask is not None:
        valid = valid & jnp.reshape(mask, mask.shape + (1,) * (labels.ndim - 1))
    ce = linear_cross_entropy(
        hidden,
        weight,
        jnp.where(valid, labels, jnp.zeros((), labels.dtype)),
        bias=bias,
        ignore_index=None,
        block_size=block_size,
        memory_budget=memory_budget,
        where=valid,
    )
    return -ce, valid


def _check_pairs(fn, hidden, labels):
    labels = C.check_array(fn, "labels", labels, ndim=3, dtype="int")
    if labels.shape[1] != 2:
        raise ValueError(
            f"{fn}: `labels` must be [B, 2, T] (each pair's chosen then rejected sequence), got {labels.shape}."
        )
    return labels


def _linear_pref_sample(*, with_ref: bool, variants=()) -> Sample:
    rng = np.random.default_rng(31)
    b, t, d, v = 3, 3, 4, 5
    h = rng.normal(size=(b, 2, t, d)).astype(np.float32)
    w = (rng.normal(size=(v, d)) * 0.6).astype(np.float32)
    y = rng.integers(0, v, size=(b, 2, t)).astype(np.int32)
    y[1, 0, 2], y[0, 1, 0] = -100, -100  # ignored tokens (prompt / padding)
    args = [h, w, y]
    if with_ref:
        args += [
            (h + 0.3 * rng.normal(size=h.shape)).astype(np.float32),
            (w + 0.2 * rng.normal(size=w.shape)).astype(np.float32),
        ]
    big = tuple(a * 30 if a.ndim == 4 else a for a in args)
    zero = (np.zeros_like(h), *args[1:])
    return Sample(
        args=tuple(args),
        kwargs={"block_size": 2},
        diff_argnums=(0, 1),
        batched_argnums=(0, 2, 3) if with_ref else (0, 2),
        extremes=(big, zero),
        variants=tuple(variants),
        # float32 log-softmax of logits near 1e2 (the first extreme) carries ulp(1e2) ~ 8e-6 absolute error.
        value_tol={"rtol": 1e-4, "atol": 5e-5},
    )


@register(
    "linear_dpo_loss",
    aliases=("fused_linear_dpo_loss",),
    family=FAMILY,
    kind="per_example",
    formula="dpo_loss(log pi(y_w), log pi(y_l), log ref(y_w), log ref(y_l)) with log pi = -linear_cross_entropy "
    "of the policy head and log ref that of the reference head (chosen and rejected in one fused call)",
    paper="Direct Preference Optimization: Your Language Model is Secretly a Reward Model (2023, arXiv:2305.18290)",
    reference="linkedin/Liger-Kernel 0.8.5 chunked_loss/dpo_loss.py::LigerFusedLinearDPOLoss (its unfused "
    "reference: the materialized logits' log_softmax, gathered and summed, then trl's DPO loss)",
    sample=lambda: _linear_pref_sample(
        with_ref=True, variants=({"variant": "ipo", "beta": 0.5}, {"beta": 0.5, "nll_weight": 0.7})
    ),
    runtime=("bias", "ref_bias"),
)
def linear_dpo_loss(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    ref_hidden: ArrayLike,
    ref_weight: ArrayLike,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    variant: str = "sigmoid",
    nll_weight: float = 0.0,
    bias: ArrayLike | None = None,
    ref_bias: ArrayLike | None = None,
    ignore_index: int | None = -100,
    block_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    where: ArrayLike | None = None,
) -> Array:
    r"""DPO (any trl ``loss_type``) from hidden states and LM heads, never materializing ``[tokens, V]`` logits.

    .. math::
        \log\pi(y) = \sum_{t:\,y_t \neq \mathrm{ignore}} \log\mathrm{softmax}(W h_t + b)_{y_t},\qquad
        \ell = \mathrm{dpo}\big(\log\pi(y_w), \log\pi(y_l), \log\pi_\mathrm{ref}(y_w), \log\pi_\mathrm{ref}(y_l)\big)
               + \lambda\Big(-\frac{\log\pi(y_w)}{|y_w|}\Big)

    ``hidden [B, 2, T, D]`` holds each pair's chosen (``[:, 0]``) and rejected
    (``[:, 1]``) sequence: both go through the policy head in one fused
    :func:`~lossjax.losses.linear_cross_entropy` call (vocabulary blocks,
    ``custom_vjp``: compiled temporaries flat in ``V``), the reference head
    likewise (a constant); :func:`dpo_loss` then applies ``variant`` (trl's
    ``loss_type``) to the per-token log-probs with the token masks
    ``labels != ignore_index``. ``nll_weight`` ``\lambda`` adds the chosen
    response's mean NLL (RPO; Liger's ``compute_nll_loss``).

    Args:
      hidden: ``[B, 2, T, D]`` policy hidden states of the chosen / rejected sequences
        (position ``t`` predicts ``labels[..., t]``: shift them before).
      weight: ``[V, D]`` the policy's LM head.
      labels: ``[B, 2, T]`` integer next tokens; ``ignore_index`` marks prompt and padding.
      ref_hidden: ``[B, 2, T, D_ref]`` the reference model's hidden states (constant).
      ref_weight: ``[V, D_ref]`` the reference LM head (constant).
      beta, label_smoothing, variant: as :func:`dpo_loss`.
      nll_weight: ``\lambda \geq 0``.
      bias, ref_bias: optional ``[V]`` head biases.
      ignore_index: the label of uncounted tokens (None: every token counts).
      block_size, memory_budget: the fused head's vocabulary tiling (:func:`~lossjax.losses.linear_cross_entropy`).
      where: optional ``[B]`` pair mask.

    Returns:
      ``[B]`` per-pair losses (0 for masked pairs).

    Paper: Rafailov et al., "Direct Preference Optimization: Your Language
    Model is Secretly a Reward Model", NeurIPS 2023, arXiv:2305.18290; the
    fused head: Hsu et al., "Liger Kernel: Efficient Triton Kernels for LLM
    Training", 2024, arXiv:2410.10989.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> h = jnp.ones((1, 2, 2, 3)); w = jnp.eye(4, 3); y = jnp.array([[[0, 1], [0, 1]]])
      >>> lossjax.losses.linear_dpo_loss(h, w, y, h, w).round(4)  # equal margins: log 2
      Array([0.6931], dtype=float32)
    """
    fn = "linear_dpo_loss"
    C.check_positive(fn, "nll_weight", nll_weight, allow_zero=True)
    labels = _check_pairs(fn, hidden, labels)
    lp, m = _head_log_probs(fn, hidden, weight, labels, bias, ignore_index, block_size, memory_budget, where)
    ref, _ = _head_log_probs(
        fn, ref_hidden, ref_weight, labels, ref_bias, ignore_index, block_size, memory_budget, where, name="ref_"
    )
    ref = jax.lax.stop_gradient(ref)
    pc, pr, cm = lp[:, 0], lp[:, 1], m[:, 0]
    loss = dpo_loss(
        pc,
        pr,
        ref[:, 0],
        ref[:, 1],
        beta=beta,
        label_smoothing=label_smoothing,
        variant=variant,
        chosen_where=cm,
        rejected_where=m[:, 1],
        where=where,
    )
    if isinstance(nll_weight, jax.core.Tracer) or float(nll_weight) != 0.0:
        dtype = loss.dtype
        count = jnp.maximum(jnp.sum(cm, axis=1).astype(dtype), jnp.ones((), dtype))
        nll = -jnp.sum(jnp.where(cm, pc, jnp.zeros((), dtype)), axis=1) / count
        loss = loss + jnp.asarray(nll_weight, dtype) * nll
    return loss


@register(
    "linear_preference_loss",
    aliases=("fused_linear_preference_loss", "linear_simpo_loss", "linear_orpo_loss", "linear_cpo_loss"),
    family=FAMILY,
    kind="per_example",
    formula="simpo_loss | orpo_loss | cpo_loss of the per-token log-probs -linear_cross_entropy(h, W, y) of the "
    "chosen and rejected sequences (one fused call)",
    paper="SimPO: Simple Preference Optimization with a Reference-Free Reward (2024, arXiv:2405.14734)",
    reference="linkedin/Liger-Kernel 0.8.5 chunked_loss/{simpo,orpo,cpo}_loss.py::LigerFusedLinear*Loss (their "
    "unfused references: materialized logits, then trl's losses)",
    sample=lambda: _linear_pref_sample(
        with_ref=False, variants=({"loss": "orpo", "beta": 0.3}, {"loss": "cpo", "beta": 0.5, "label_smoothing": 0.1})
    ),
    runtime=("bias",),
)
def linear_preference_loss(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    loss: str = "simpo",
    beta: float | None = None,
    gamma: float = 0.5,
    label_smoothing: float = 0.0,
    nll_weight: float = 1.0,
    bias: ArrayLike | None = None,
    ignore_index: int | None = -100,
    block_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    where: ArrayLike | None = None,
) -> Array:
    r"""Reference-free preference losses (SimPO, ORPO, CPO) from hidden states and the LM head, fused.

    .. math::
        \log\pi(y) = \sum_{t:\,y_t \neq \mathrm{ignore}} \log\mathrm{softmax}(W h_t + b)_{y_t},\qquad
        \ell = \mathrm{loss}\big(\log\pi(y_w), \log\pi(y_l)\big)

    with ``loss`` :func:`simpo_loss` (``beta`` default 2, ``gamma``,
    ``label_smoothing``), :func:`orpo_loss` (``beta`` default 0.1; includes
    the chosen NLL) or :func:`cpo_loss` (``beta`` default 0.1,
    ``label_smoothing``, ``nll_weight``). Each pair's chosen (``[:, 0]``) and
    rejected (``[:, 1]``) sequences go through one fused
    :func:`~lossjax.losses.linear_cross_entropy` call (no ``[tokens, V]``
    logits; temporaries flat in ``V``); tokens labelled ``ignore_index`` are
    left out.

    Args:
      hidden: ``[B, 2, T, D]`` hidden states of the chosen / rejected sequences (position ``t`` predicts
        ``labels[..., t]``).
      weight: ``[V, D]`` the LM head.
      labels: ``[B, 2, T]`` integer next tokens (``ignore_index``: not counted).
      loss: ``"simpo"``, ``"orpo"`` or ``"cpo"``.
      beta: the loss's ``\beta`` (None: its default).
      gamma: SimPO's target margin.
      label_smoothing: SimPO's / CPO's ``\varepsilon`` (must be 0 for ORPO).
      nll_weight: CPO's behaviour-cloning weight (CPO only).
      bias: optional ``[V]`` head bias.
      ignore_index: the label of uncounted tokens (None: every token counts).
      block_size, memory_budget: the fused head's vocabulary tiling.
      where: optional ``[B]`` pair mask.

    Returns:
      ``[B]`` per-pair losses (0 for masked pairs).

    Paper: Meng et al., "SimPO: Simple Preference Optimization with a
    Reference-Free Reward", NeurIPS 2024, arXiv:2405.14734; Hong et al.,
    "ORPO: Monolithic Preference Optimization without Reference Model", 2024,
    arXiv:2403.07691; Xu et al., "Contrastive Preference Optimization", 2024,
    arXiv:2401.08417.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> h = jnp.ones((1, 2, 2, 3)); w = jnp.eye(4, 3); y = jnp.array([[[0, 1], [0, 1]]])
      >>> lossjax.losses.linear_preference_loss(h, w, y, gamma=0.0).round(4)  # equal rewards: log 2
      Array([0.6931], dtype=float32)
    """
    fn = "linear_preference_loss"
    C.check_one_of(fn, "loss", loss, LINEAR_PREFERENCE_LOSSES)
    if loss == "orpo" and not isinstance(label_smoothing, jax.core.Tracer) and float(label_smoothing) != 0.0:
        raise ValueError(f"{fn}: loss='orpo' has no `label_smoothing`; got {label_smoothing!r} (needs 0).")
    labels = _check_pairs(fn, hidden, labels)
    lp, m = _head_log_probs(fn, hidden, weight, labels, bias, ignore_index, block_size, memory_budget, where)
    pc, pr = lp[:, 0], lp[:, 1]
    masks = {"chosen_where": m[:, 0], "rejected_where": m[:, 1], "where": where}
    if loss == "simpo":
        b = 2.0 if beta is None else beta
        return simpo_loss(pc, pr, beta=b, gamma=gamma, label_smoothing=label_smoothing, **masks)
    if loss == "orpo":
        return orpo_loss(pc, pr, beta=0.1 if beta is None else beta, **masks)
    return cpo_loss(
        pc, pr, beta=0.1 if beta is None else beta, label_smoothing=label_smoothing, nll_weight=nll_weight, **masks
    )


@register(
    "linear_kto_loss",
    aliases=("fused_linear_kto_loss",),
    family=FAMILY,
    kind="per_example",
    formula="kto_loss(log pi(y), log ref(y), desirable, kl) with both log-probs from fused linear heads",
    paper="KTO: Model Alignment as Prospect Theoretic Optimization (2024, arXiv:2402.01306)",
    reference="linkedin/Liger-Kernel 0.8.5 chunked_loss/kto_loss.py::LigerFusedLinearKTOLoss (its unfused "
    "reference: materialized logits, then trl's KTO loss)",
    sample=lambda: _linear_kto_sample(),
    runtime=("bias", "ref_bias"),
)
def linear_kto_loss(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    desirable: ArrayLike,
    ref_hidden: ArrayLike,
    ref_weight: ArrayLike,
    *,
    kl: ArrayLike = 0.0,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
    bias: ArrayLike | None = None,
    ref_bias: ArrayLike | None = None,
    ignore_index: int | None = -100,
    block_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    where: ArrayLike | None = None,
) -> Array:
    r"""KTO from hidden states and the policy / reference LM heads, never materializing ``[tokens, V]`` logits.

    .. math::
        r = \log\pi(y) - \log\pi_\mathrm{ref}(y),\qquad
        \ell = \begin{cases} w_D\,(1 - \sigma(\beta(r - z_0))) & \text{desirable} \\
                             w_U\,(1 - \sigma(\beta(z_0 - r))) & \text{undesirable} \end{cases}

    :func:`kto_loss` on the summed log-probs of fused
    :func:`~lossjax.losses.linear_cross_entropy` heads (tokens labelled
    ``ignore_index`` left out); ``kl`` is the reference point ``z_0``
    (:func:`kto_reference_kl` of a mismatched batch; Liger's default 0).

    Args:
      hidden: ``[B, T, D]`` policy hidden states (position ``t`` predicts ``labels[:, t]``).
      weight: ``[V, D]`` policy LM head.
      labels: ``[B, T]`` integer next tokens.
      desirable: ``[B]`` bool.
      ref_hidden: ``[B, T, D_ref]`` reference hidden states (constant).
      ref_weight: ``[V, D_ref]`` reference LM head (constant).
      kl: the scalar reference point ``z_0`` (clamped at 0, constant).
      beta, desirable_weight, undesirable_weight: as :func:`kto_loss`.
      bias, ref_bias: optional ``[V]`` head biases.
      ignore_index: the label of uncounted tokens (None: every token counts).
      block_size, memory_budget: the fused head's vocabulary tiling.
      where: optional ``[B]`` example mask.

    Returns:
      ``[B]`` per-example losses.

    Paper: Ethayarajh et al., "KTO: Model Alignment as Prospect Theoretic
    Optimization", ICML 2024, arXiv:2402.01306.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> h = jnp.ones((1, 2, 3)); w = jnp.eye(4, 3); y = jnp.array([[0, 1]])
      >>> lossjax.losses.linear_kto_loss(h, w, y, jnp.array([True]), h, w).round(4)  # r = 0: 1 - s(0)
      Array([0.5], dtype=float32)
    """
    fn = "linear_kto_loss"
    lp, m = _head_log_probs(fn, hidden, weight, labels, bias, ignore_index, block_size, memory_budget, where)
    ref, _ = _head_log_probs(
        fn, ref_hidden, ref_weight, labels, ref_bias, ignore_index, block_size, memory_budget, where, name="ref_"
    )
    return kto_loss(
        lp,
        jax.lax.stop_gradient(ref),
        desirable,
        kl,
        beta=beta,
        desirable_weight=desirable_weight,
        undesirable_weight=undesirable_weight,
        token_where=m,
        where=where,
    )


def _linear_kto_sample() -> Sample:
    s = _linear_pref_sample(with_ref=True)
    h, w, y, rh, rw = s.args
    h, y, rh = h[:, 0], y[:, 0], rh[:, 0]
    desirable = np.array([True, False, True])
    return Sample(
        args=(h, w, y, desirable, rh, rw),
        kwargs={"block_size": 2, "kl": np.float32(0.2)},
        diff_argnums=(0, 1),
        batched_argnums=(0, 2, 3, 4),
        extremes=((h * 30, w, y, desirable, rh * 30, rw), (np.zeros_like(h), w, y, desirable, rh, rw)),
        variants=({"beta": 0.5, "desirable_weight": 1.33, "undesirable_weight": 0.75},),
        value_tol=s.value_tol,
    )
