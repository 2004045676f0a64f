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

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax._sequence import check_log_probs, reduce_sequence, token_mask_of
from lossjax.registry import Sample, register

__all__ = [
    "dpo_loss",
    "forget_only_f_divergence_unlearning",
    "implicit_rewards",
    "ipo_loss",
    "kto_loss",
    "kto_reference_kl",
    "negative_preference_optimization",
    "noisy_verifier_reward_correction",
    "orpo_loss",
    "simpo_loss",
    "soft_preference_cross_entropy",
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
        variants=({"beta": 0.5, "label_smoothing": 0.2}, {"beta": 0.3, "label_smoothing": 0.15, "robust": True}),
    )


def _ipo_sample() -> Sample:
    return _paired_sample(token_level=True, variants=({"beta": 0.5},))


@register(
    "dpo_loss",
    aliases=("dpo", "direct_preference_optimization"),
    family=FAMILY,
    kind="per_example",
    formula="-(1-e) log s(b D) - e log s(-b D),  D = (log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l))",
    paper="Direct Preference Optimization: Your Language Model is Secretly a Reward Model (2023, arXiv:2305.18290)",
    reference="huggingface/trl DPOTrainer loss_type 'sigmoid' / 'robust' (+ cDPO label smoothing)",
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
    chosen_where: ArrayLike | None = None,
    rejected_where: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Direct Preference Optimization (sigmoid loss), with conservative and robust label smoothing.

    .. math::
        \Delta = \big(\log\pi_\theta(y_w) - \log\pi_\mathrm{ref}(y_w)\big)
               - \big(\log\pi_\theta(y_l) - \log\pi_\mathrm{ref}(y_l)\big) \\
        \ell = -(1-\varepsilon)\log\sigma(\beta\Delta) - \varepsilon\log\sigma(-\beta\Delta)

    ``label_smoothing`` ``\varepsilon > 0`` is conservative DPO (cDPO, Mitchell
    2023); ``robust=True`` is the unbiased robust DPO of Chowdhury et al.
    (2024, arXiv:2403.00409):
    ``((1-\varepsilon)(-\log\sigma(\beta\Delta)) - \varepsilon(-\log\sigma(-\beta\Delta))) / (1-2\varepsilon)``.
    Log-probabilities are summed over the response tokens.

    Args:
      policy_chosen_log_probs, policy_rejected_log_probs: policy log-probs of the chosen
        / rejected responses, ``[B]`` (summed) or ``[B, T]`` (per token).
      ref_chosen_log_probs, ref_rejected_log_probs: the reference model's, same shapes
        (treated as constants).
      beta: ``\beta``, the inverse KL strength.
      label_smoothing: ``\varepsilon`` in ``[0, 0.5)``, the assumed label-flip rate.
      robust: use the robust (unbiased) estimator instead of cDPO.
      chosen_where, rejected_where: ``[B, T]`` token masks (bool or 0/1) for
        per-token inputs.
      where: optional ``[B]`` example mask.

    Returns:
      ``[B]`` per-example losses. The rewards trl logs are
      ``implicit_rewards(policy, ref, beta=beta)`` of the chosen and of the
      rejected responses (:func:`implicit_rewards`).

    Paper: Rafailov et al., "Direct Preference Optimization: Your Language
    Model is Secretly a Reward Model", NeurIPS 2023, arXiv:2305.18290.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> lossjax.losses.dpo_loss(jnp.array([-1.0]), jnp.array([-3.0]), jnp.array([-2.0]), jnp.array([-2.0])).round(4)
      Array([0.5981], dtype=float32)
    """
    fn = "dpo_loss"
    C.check_positive(fn, "beta", beta)
    C.check_in_range(fn, "label_smoothing", label_smoothing, 0.0, 0.5, high_inclusive=False)
    (pc, pr, rc, rr), batch_mask, dtype = _policy_ref_inputs(
        fn,
        (policy_chosen_log_probs, policy_rejected_log_probs, ref_chosen_log_probs, ref_rejected_log_probs),
        chosen_where,
        rejected_where,
        where,
        average=False,
    )
    b = jnp.asarray(beta, dtype)
    chosen = b * (pc - jax.lax.stop_gradient(rc))
    rejected = b * (pr - jax.lax.stop_gradient(rr))
    loss = _smoothed_logistic(chosen - rejected, label_smoothing, robust=robust)
    return C.zero_masked(loss, batch_mask)


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
