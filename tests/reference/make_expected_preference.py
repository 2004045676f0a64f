"""Expected outputs of the preference family's conformance value cases (``lossjax/expected/preference.json``).

Independent float64 implementations, never lossjax (run in the reference environment)::

    python tests/reference/dump_inputs.py --family preference    # the inputs (lossjax env)
    python tests/reference/make_expected_preference.py            # torch 2.13.0, trl 1.16.0

trl 1.16.0's loss functions are called where they run without a model (``CPOTrainer.cpo_loss`` for
SimPO, ``ORPOTrainer.odds_ratio_loss`` for ORPO, on a stand-in ``self`` holding the hyperparameters, in
float64); DPO, IPO and KTO live inside trainer methods that need a model forward, so their loss blocks
are ported line by line from trl 1.16.0 ``trainer/dpo_trainer.py::_compute_loss`` (loss types
``sigmoid``, ``robust``, ``ipo``; conservative DPO's label smoothing from trl 0.x ``dpo_loss``) and
``trainer/kto_trainer.py::_compute_loss`` (``kto``). Per-token inputs ``[B, T]`` are summed (or
averaged, for the length-normalized losses) as trl's ``(per_token_logps * completion_mask).sum(1)``.
Other sources: licong-lin/negative-preference-optimization ``TOFU/dataloader.py`` (NPO),
UCSC-REAL/FLAT ``dataloader.py`` (``get_contrastive_loss``), and closed forms (soft-preference
cross-entropy, the noisy-verifier backward correction).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import types

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expected_io as E

torch.set_default_dtype(torch.float64)
FAMILY = "preference"
TORCH = f"torch {torch.__version__} float64 autograd"
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def _t(x):
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def seq(x, average=False, mask=None):
    """trl: (per_token_logps * completion_mask).sum(1) (/ mask.sum(1).clamp(min=1) when averaged)."""
    if x.ndim == 1:
        return x
    m = torch.ones_like(x) if mask is None else _t(mask).double()
    s = (torch.where(m > 0, x, torch.zeros(())) * m).sum(1)
    return s / m.sum(1).clamp(min=1.0) if average else s


@contextlib.contextmanager
def _float_is_identity():
    """trl casts log-probs with ``.float()`` (float32); keep the float64 inputs float64 inside its code."""
    orig = torch.Tensor.float
    torch.Tensor.float = lambda self, *a, **k: self if self.dtype == torch.float64 else orig(self, *a, **k)
    try:
        yield
    finally:
        torch.Tensor.float = orig


def _trainer_self(**hp):
    return types.SimpleNamespace(accelerator=types.SimpleNamespace(device="cpu"), **hp)


# ----------------------------------- DPO family -----------------------------------


def soft_pref(pc, pr, rc, rr, q, *, beta=0.1, **_):
    """Closed form: -q log s(b D) - (1 - q) log s(-b D), D the DPO margin."""
    d = beta * ((seq(pc) - seq(rc).detach()) - (seq(pr) - seq(rr).detach()))
    q = _t(q)
    return -q * F.logsigmoid(d) - (1 - q) * F.logsigmoid(-d)


def ipo(pc, pr, rc, rr, *, beta=0.1, **_):
    """trl 1.16.0 dpo_trainer.py loss 'ipo': token-averaged log-ratio scores."""
    chosen_scores = seq(pc) - seq(rc).detach()
    rejected_scores = seq(pr) - seq(rr).detach()
    chosen_avg_score = chosen_scores / (pc.shape[1] if pc.ndim == 2 else 1)
    rejected_avg_score = rejected_scores / (pr.shape[1] if pr.ndim == 2 else 1)
    ipo_delta = chosen_avg_score - rejected_avg_score
    return (ipo_delta - 1 / (2 * beta)) ** 2


def simpo(pc, pr, *, beta=2.0, gamma=0.5, label_smoothing=0.0, **_):
    """trl 1.16.0 experimental/cpo/cpo_trainer.py CPOTrainer.cpo_loss (loss_type 'simpo'), called."""
    from trl.experimental.cpo.cpo_trainer import CPOTrainer

    me = _trainer_self(alpha=0.0, loss_type="simpo", beta=beta, simpo_gamma=gamma, label_smoothing=label_smoothing)
    losses, _, _ = CPOTrainer.cpo_loss(me, seq(pc, True), seq(pr, True))
    return losses


def orpo(pc, pr, *, beta=0.1, **_):
    """trl 1.16.0 experimental/orpo/orpo_trainer.py ORPOTrainer.odds_ratio_loss (called) + the policy NLL."""
    from trl.experimental.orpo.orpo_trainer import ORPOTrainer

    c, r = seq(pc, True), seq(pr, True)
    with _float_is_identity():
        losses, *_ = ORPOTrainer.odds_ratio_loss(_trainer_self(beta=beta), c, r)
    return -c - losses  # trl: policy_nll_loss - losses.mean(); the NLL per example


def implicit_rewards(policy, ref=None, *, beta=0.1, token_where=None, average=False, **_):
    """trl DPOTrainer/KTOTrainer chosen_rewards = beta * (logps - ref_logps).detach() (CPO/ORPO: no ref)."""
    lr = seq(policy, average, token_where)
    if ref is not None:
        lr = lr - seq(ref, average, token_where)
    return (beta * lr).detach()


def kto(pol, ref, desirable, kl, *, beta=0.1, desirable_weight=1.0, undesirable_weight=1.0, **_):
    """trl 1.16.0 kto_trainer.py _compute_loss (loss_type 'kto'), per example in batch order."""
    kl = _t(kl).clamp(min=0).detach()
    logratios = seq(pol) - seq(ref).detach()
    chosen_losses = 1 - F.sigmoid(beta * (logratios - kl))
    rejected_losses = 1 - F.sigmoid(beta * (kl - logratios))
    return torch.where(_t(desirable), desirable_weight * chosen_losses, undesirable_weight * rejected_losses)


def kto_kl(pol, ref, **_):
    """trl 1.16.0 kto_trainer.py: (KL_logps - ref_KL_logps).mean().detach() ... .clamp(min=0)."""
    return (pol - ref).mean().detach().clamp(min=0)


def npo(pol, ref, *, beta=0.1, **_):
    """licong-lin/negative-preference-optimization TOFU/dataloader.py loss_type 'npo', per example."""
    forget_loss_current = -seq(pol)
    forget_loss_oracle = -seq(ref).detach()
    neg_log_ratios = forget_loss_current - forget_loss_oracle
    return -F.logsigmoid(beta * neg_log_ratios) * 2 / beta


def nvrc(rewards, *, false_positive_rate=0.0, false_negative_rate=0.0, **_):
    """Closed form (r - rho0) / (1 - rho0 - rho1) of arXiv:2510.00915."""
    return (_t(rewards) - false_positive_rate) / (1 - false_positive_rate - false_negative_rate)


_FLAT = {  # UCSC-REAL/FLAT dataloader.py get_contrastive_loss: (activation, conjugate)
    "KL": (lambda x: -torch.mean(x), lambda x: -torch.mean(torch.exp(x - 1.0))),
    "Pearson": (lambda x: -torch.mean(x), lambda x: -torch.mean(torch.mul(x, x) / 4.0 + x)),
    "Jenson-Shannon": (
        lambda x: -torch.mean(-torch.log(1.0 + torch.exp(-x))) - torch.log(torch.tensor(2.0)),
        lambda x: -torch.mean(x + torch.log(1.0 + torch.exp(-x))) + torch.log(torch.tensor(2.0)),
    ),
    "Total-Variation": (lambda x: -torch.mean(torch.tanh(x) / 2.0), lambda x: -torch.mean(torch.tanh(x) / 2.0)),
}


def flat(good, bad, *, divergence="Total-Variation", **_):
    """UCSC-REAL/FLAT dataloader.py loss_type 'cl': ProbLossStable (-p per token), stacked mean, then
    activation(-prob_sum_good) - conjugate(-prob_sum_unlearn); all tokens counted."""
    activation, conjugate = _FLAT[divergence]
    prob_sum_unlearn = torch.stack([-torch.exp(bad[b]) for b in range(bad.shape[0])]).mean()
    prob_sum_good = torch.stack([-torch.exp(good[b]) for b in range(good.shape[0])]).mean()
    return activation(-prob_sum_good) - conjugate(-prob_sum_unlearn)


# ------------------------- every trl DPO loss_type (trl 1.16.0) -------------------------


def _f_scores(lr, f_divergence="reverse_kl", alpha=0.5):
    """trl 1.16.0 dpo_trainer.py _compute_loss: f_divergence_type scores of a summed log-ratio."""
    if f_divergence == "reverse_kl":
        return lr
    if f_divergence == "forward_kl":
        return 1 - torch.exp(-lr)
    if f_divergence == "js_divergence":
        return np.log(2.0) + F.logsigmoid(lr)
    if abs(alpha - 1.0) < 1e-6:
        return lr
    t = torch.clamp((alpha - 1.0) * lr, max=80.0)  # trl: float32 clamp_max 80
    return (torch.exp(t) - 1.0) / (alpha - 1.0)


def trl_dpo(
    pc,
    pr,
    rc,
    rr,
    *,
    beta=0.1,
    label_smoothing=0.0,
    robust=False,
    variant="sigmoid",
    f_divergence="reverse_kl",
    f_divergence_alpha=0.5,
    temperature=0.05,
    reference_free=False,
    nll_weight=0.0,
    **_,
):
    """Port of trl 1.16.0 trainer/dpo_trainer.py::DPOTrainer._compute_loss, per sequence (before .mean()).

    Every completion token counted (completion_mask all ones: the samples carry no masks). 'sigmoid' with
    label smoothing is trl 0.x's cDPO; 'sft' (and RPO's NLL term) per example: the mean of the example's chosen
    token log-probs (trl averages all chosen tokens of the batch: the same mean over equal lengths).
    reference_free: trl 0.x's reference_free (reference log-probs 0).
    """
    if robust:
        variant = "robust"
    if reference_free:
        rc, rr = torch.zeros_like(rc), torch.zeros_like(rr)
    chosen_logratios = seq(pc) - seq(rc).detach()
    rejected_logratios = seq(pr) - seq(rr).detach()
    chosen_scores = _f_scores(chosen_logratios, f_divergence, f_divergence_alpha)
    rejected_scores = _f_scores(rejected_logratios, f_divergence, f_divergence_alpha)
    delta_score = chosen_scores - rejected_scores
    n_c = pc.shape[1] if pc.ndim == 2 else 1
    n_r = pr.shape[1] if pr.ndim == 2 else 1
    b, e = beta, label_smoothing
    if variant == "sigmoid":
        loss = -F.logsigmoid(b * delta_score) * (1 - e) - F.logsigmoid(-b * delta_score) * e
    elif variant == "hinge":
        loss = torch.relu(1 - b * delta_score)
    elif variant == "ipo":
        loss = (chosen_scores / n_c - rejected_scores / n_r - 1 / (2 * b)) ** 2
    elif variant == "exo_pair":
        eps = torch.tensor(e)
        qw, log_qw = torch.sigmoid(b * delta_score), F.logsigmoid(b * delta_score)
        ql, log_ql = torch.sigmoid(-b * delta_score), F.logsigmoid(-b * delta_score)
        loss = qw * (log_qw - torch.log1p(-eps)) + ql * (log_ql - torch.log(eps))
    elif variant == "nca_pair":
        cr, rj = b * chosen_logratios, b * rejected_logratios
        loss = -F.logsigmoid(cr) - 0.5 * F.logsigmoid(-cr) - 0.5 * F.logsigmoid(-rj)
    elif variant == "robust":
        clean = -(1 - e) * F.logsigmoid(b * delta_score)
        flipped = -e * F.logsigmoid(-b * delta_score)
        loss = (clean - flipped) / (1 - 2 * e)
    elif variant == "bco_pair":
        loss = -F.logsigmoid(b * chosen_logratios) - F.logsigmoid(-b * rejected_logratios)
    elif variant == "sppo_hard":
        loss = (chosen_logratios - 0.5 / b) ** 2 + (rejected_logratios + 0.5 / b) ** 2
    elif variant == "apo_zero":
        loss = (1 - torch.sigmoid(b * chosen_logratios)) + torch.sigmoid(b * rejected_logratios)
    elif variant == "apo_down":
        loss = torch.sigmoid(b * chosen_logratios) + (1 - torch.sigmoid(b * (chosen_logratios - rejected_logratios)))
    elif variant == "discopop":
        logits = delta_score * b
        mod = torch.sigmoid(logits / temperature)
        loss = -F.logsigmoid(logits) * (1 - mod) + torch.exp(-logits) * mod
    elif variant == "sft":
        loss = -seq(pc, True)
    elif variant == "sigmoid_norm":
        loss = -F.logsigmoid(b * (chosen_scores / n_c - rejected_scores / n_r))
    else:
        raise ValueError(variant)
    if nll_weight:
        loss = loss + nll_weight * (-seq(pc, True))
    return loss


def _fixed(variant, **defaults):
    """trl_dpo with one loss_type and the lossjax entry's own defaults (the cases carry only the overrides)."""

    def fn(*args, **kw):
        return trl_dpo(*args, **{**defaults, **kw, "variant": variant})

    return fn


def trl_aot(pc, pr, rc, rr, *, beta=0.1, label_smoothing=0.0, unpaired=False, **_):
    """Port of trl 1.16.0 dpo_trainer.py _compute_loss 'aot' / 'aot_unpaired', then .mean() over the batch."""
    chosen_logps, rejected_logps, ref_chosen, ref_rejected = seq(pc), seq(pr), seq(rc).detach(), seq(rr).detach()
    if unpaired:
        a, _ = torch.sort(chosen_logps - ref_chosen, dim=0)
        c, _ = torch.sort(rejected_logps - ref_rejected, dim=0)
    else:
        a, _ = torch.sort(chosen_logps - rejected_logps, dim=0)
        c, _ = torch.sort(ref_chosen - ref_rejected, dim=0)
    delta = a - c
    loss = -F.logsigmoid(beta * delta) * (1 - label_smoothing) - F.logsigmoid(-beta * delta) * label_smoothing
    return loss.mean()


def cpo(pc, pr, *, beta=0.1, label_smoothing=0.0, nll_weight=1.0, alpha=0.0, variant="sigmoid", gamma=0.5, **_):
    """trl 1.16.0 experimental/cpo/cpo_trainer.py::CPOTrainer.cpo_loss (called, float64) + cpo_alpha * NLL.

    trl's average_log_prob for 'ipo'/'simpo'; the NLL per example: the mean of the chosen token log-probs
    (trl's cross-entropy over all chosen tokens of the batch, the same mean over equal lengths).
    """
    from trl.experimental.cpo.cpo_trainer import CPOTrainer

    average = variant in ("ipo", "simpo")
    me = _trainer_self(alpha=alpha, loss_type=variant, beta=beta, simpo_gamma=gamma, label_smoothing=label_smoothing)
    losses, _, _ = CPOTrainer.cpo_loss(me, seq(pc, average), seq(pr, average))
    if nll_weight:
        losses = losses + nll_weight * (-seq(pc, True))
    return losses


def bco(pol, ref, desirable, *, state=None, beta=0.1, **_):
    """Port of trl 0.19 trainer/bco_trainer.py::BCOTrainer.bco_loss + trainer/utils.py::RunningMoments.update.

    The batch's rewards update the running mean first (no_grad), then -logsigmoid(+-(r - delta)); the state is
    (mean, count) (trl starts at count 1e-24: a zero count here). Returns (losses, new state).
    """
    mean, count = (0.0, 0.0) if state is None else (float(state["mean"]), float(state["count"]))
    rewards = beta * (seq(pol) - seq(ref).detach())
    with torch.no_grad():
        xs = rewards.detach()
        xs_count = xs.numel()
        xs_mean = xs.mean()
        delta = xs_mean - mean
        tot_count = count + xs_count
        new_mean = mean + (delta * xs_count / tot_count).item()
    d = torch.as_tensor(new_mean)
    desirable = _t(desirable)
    loss = torch.where(desirable, -F.logsigmoid(rewards - d), -F.logsigmoid(-(rewards - d)))
    return loss, [np.float64(new_mean), np.float64(tot_count)]  # BCOState(mean, count)


# ------------------------- fused linear preference heads (materialized here) -------------------------


def _head_logps(hidden, weight, labels, ignore_index=-100):
    """log_softmax(hidden @ weight.T) gathered at the labels, 0 at ignored tokens; (log-probs, mask)."""
    labels = torch.as_tensor(np.asarray(labels)).long()
    mask = labels != ignore_index
    logp = torch.log_softmax(_t(hidden) @ _t(weight).T, -1)
    tok = torch.gather(logp, -1, torch.where(mask, labels, 0).unsqueeze(-1)).squeeze(-1)
    return torch.where(mask, tok, torch.zeros(())), mask


def _masked_seq(x, mask, average=False):
    s = (x * mask).sum(1)
    return s / mask.sum(1).clamp(min=1) if average else s


def linear_dpo(h, w, y, rh, rw, *, beta=0.1, label_smoothing=0.0, variant="sigmoid", nll_weight=0.0, **_):
    """Materialized heads (float64) on hidden [B, 2, T, D], then the trl 1.16.0 DPO port on the masked sums
    (ipo: per-token means over each response's counted tokens) + nll_weight * the chosen mean NLL."""
    lp, m = _head_logps(h, w, y)
    ref, _ = _head_logps(rh, rw, y)
    ref = ref.detach()
    cm, rm = m[:, 0], m[:, 1]
    c = _masked_seq(lp[:, 0], cm) - _masked_seq(ref[:, 0], cm)
    r = _masked_seq(lp[:, 1], rm) - _masked_seq(ref[:, 1], rm)
    b, e = beta, label_smoothing
    if variant == "ipo":
        loss = (c / cm.sum(1).clamp(min=1) - r / rm.sum(1).clamp(min=1) - 1 / (2 * b)) ** 2
    else:
        loss = -F.logsigmoid(b * (c - r)) * (1 - e) - F.logsigmoid(-b * (c - r)) * e
    return loss + nll_weight * (-_masked_seq(lp[:, 0], cm, True))


def linear_pref(h, w, y, *, loss="simpo", beta=None, gamma=0.5, label_smoothing=0.0, nll_weight=1.0, **_):
    """Materialized head (float64), then trl 1.16.0 CPOTrainer.cpo_loss ('simpo' / 'sigmoid', called) or
    ORPOTrainer.odds_ratio_loss (called) on the masked (averaged) sums."""
    from trl.experimental.cpo.cpo_trainer import CPOTrainer
    from trl.experimental.orpo.orpo_trainer import ORPOTrainer

    lp, m = _head_logps(h, w, y)
    pc, pr, cm, rm = lp[:, 0], lp[:, 1], m[:, 0], m[:, 1]
    if loss == "orpo":
        c, r = _masked_seq(pc, cm, True), _masked_seq(pr, rm, True)
        with _float_is_identity():
            losses, *_ = ORPOTrainer.odds_ratio_loss(_trainer_self(beta=0.1 if beta is None else beta), c, r)
        return -c - losses
    if loss == "simpo":
        me = _trainer_self(
            alpha=0.0,
            loss_type="simpo",
            beta=2.0 if beta is None else beta,
            simpo_gamma=gamma,
            label_smoothing=label_smoothing,
        )
        losses, _, _ = CPOTrainer.cpo_loss(me, _masked_seq(pc, cm, True), _masked_seq(pr, rm, True))
        return losses
    me = _trainer_self(
        alpha=0.0,
        loss_type="sigmoid",
        beta=0.1 if beta is None else beta,
        simpo_gamma=gamma,
        label_smoothing=label_smoothing,
    )
    losses, _, _ = CPOTrainer.cpo_loss(me, _masked_seq(pc, cm), _masked_seq(pr, rm))
    return losses + nll_weight * (-_masked_seq(pc, cm, True))


def linear_kto(h, w, y, desirable, rh, rw, *, kl=0.0, **kw):
    """Materialized heads (float64), then the trl 1.16.0 KTO port on the masked sums."""
    lp, m = _head_logps(h, w, y)
    ref, _ = _head_logps(rh, rw, y)
    return kto(_masked_seq(lp, m), _masked_seq(ref, m), desirable, kl, **kw)


TRL_DPO = f"{TORCH}: port of trl 1.16.0 trainer/dpo_trainer.py::_compute_loss loss_type "
SOURCES = {
    "dpo_loss": (
        trl_dpo,
        f"{TORCH}: port of trl 1.16.0 trainer/dpo_trainer.py::_compute_loss (every per-pair loss_type, "
        "f_divergence_type; + trl 0.x cDPO label smoothing and reference_free)",
    ),
    "robust_dpo_loss": (_fixed("robust", label_smoothing=0.1), TRL_DPO + "'robust'"),
    "dpo_hinge_loss": (_fixed("hinge"), TRL_DPO + "'hinge'"),
    "length_normalized_dpo_loss": (_fixed("sigmoid_norm"), TRL_DPO + "'sigmoid_norm'"),
    "exo_pair_loss": (_fixed("exo_pair", label_smoothing=1e-3), TRL_DPO + "'exo_pair'"),
    "nca_pair_loss": (_fixed("nca_pair"), TRL_DPO + "'nca_pair'"),
    "bco_pair_loss": (_fixed("bco_pair"), TRL_DPO + "'bco_pair'"),
    "sppo_hard_loss": (_fixed("sppo_hard"), TRL_DPO + "'sppo_hard'"),
    "apo_zero_loss": (_fixed("apo_zero"), TRL_DPO + "'apo_zero'"),
    "apo_down_loss": (_fixed("apo_down"), TRL_DPO + "'apo_down'"),
    "discopop_loss": (_fixed("discopop"), TRL_DPO + "'discopop'"),
    "rpo_loss": (
        _fixed("sigmoid", nll_weight=1.0),
        TRL_DPO + "['sigmoid', 'sft'] with loss_weights [1, nll_weight] (NLL per example)",
    ),
    "aot_loss": (trl_aot, TRL_DPO + "'aot' (.mean())"),
    "aot_unpaired_loss": (lambda *a, **k: trl_aot(*a, unpaired=True, **k), TRL_DPO + "'aot_unpaired' (.mean())"),
    "cpo_loss": (
        cpo,
        "trl 1.16.0 experimental/cpo/cpo_trainer.py::CPOTrainer.cpo_loss (called, float64) + cpo_alpha * the "
        "per-example chosen NLL",
    ),
    "linear_dpo_loss": (
        linear_dpo,
        f"{TORCH}: materialized heads log_softmax(h @ W.T) gathered, then the port of trl 1.16.0 "
        "dpo_trainer.py::_compute_loss ('sigmoid'/'ipo') + the chosen mean NLL (Liger's unfused reference)",
    ),
    "linear_preference_loss": (
        linear_pref,
        "materialized head (torch float64), then trl 1.16.0 CPOTrainer.cpo_loss ('simpo'/'sigmoid') and "
        "ORPOTrainer.odds_ratio_loss (called) + the chosen mean NLL",
    ),
    "linear_kto_loss": (
        linear_kto,
        f"{TORCH}: materialized heads, then the port of trl 1.16.0 kto_trainer.py::_compute_loss 'kto'",
    ),
    "bco_loss": (
        bco,
        f"{TORCH}: port of trl 0.19 trainer/bco_trainer.py::BCOTrainer.bco_loss + trainer/utils.py::RunningMoments",
    ),
    "soft_preference_cross_entropy": (soft_pref, f"{TORCH}: closed form -q log s(b D) - (1-q) log s(-b D)"),
    "ipo_loss": (ipo, f"{TORCH}: port of trl 1.16.0 trainer/dpo_trainer.py::_compute_loss 'ipo' (token-averaged)"),
    "simpo_loss": (
        simpo,
        "trl 1.16.0 experimental/cpo/cpo_trainer.py::CPOTrainer.cpo_loss 'simpo' (called, "
        "float64) on token-averaged log-probs",
    ),
    "orpo_loss": (
        orpo,
        "trl 1.16.0 experimental/orpo/orpo_trainer.py::ORPOTrainer.odds_ratio_loss (called, "
        "float64) + the per-example policy NLL",
    ),
    "implicit_rewards": (
        implicit_rewards,
        f"{TORCH}: trl 1.16.0 DPOTrainer/KTOTrainer rewards beta * (logps - "
        "ref_logps).detach(); CPO/ORPO beta * logps.detach() (averaged)",
    ),
    "kto_loss": (kto, f"{TORCH}: port of trl 1.16.0 trainer/kto_trainer.py::_compute_loss 'kto'"),
    "kto_reference_kl": (
        kto_kl,
        f"{TORCH}: trl 1.16.0 trainer/kto_trainer.py (KL_logps - ref_KL_logps).mean().clamp(min=0)",
    ),
    "negative_preference_optimization": (
        npo,
        f"{TORCH}: port of licong-lin/negative-preference-optimization TOFU/dataloader.py 'npo'",
    ),
    "noisy_verifier_reward_correction": (nvrc, "closed form (r - rho_FP) / (1 - rho_FP - rho_FN), arXiv:2510.00915"),
    "forget_only_f_divergence_unlearning": (
        flat,
        f"{TORCH}: port of UCSC-REAL/FLAT dataloader.py 'cl' (ProbLossStable + get_contrastive_loss)",
    ),
}


def main() -> None:
    inputs = E.load_inputs(FAMILY)
    records = {}
    with contextlib.redirect_stderr(io.StringIO()):
        import trl.experimental.cpo.cpo_trainer
        import trl.experimental.orpo.orpo_trainer  # noqa: F401
    for name, entry in inputs.items():
        fn, source = SOURCES[name]
        cases = []
        for case in entry["cases"]:
            args, kw = E.case_inputs(case)
            value, grads = E.torch_value_and_grads(fn, list(args), entry["diff_argnums"], **kw)
            if name == "orpo_loss" and not torch.all(torch.isfinite(value)):
                # Both responses of probability exactly 1: trl's log1mexp(0) = -inf gives inf - inf. The
                # limit along p_w = p_l -> 1 is log-odds 0, loss -log p_w + beta log 2 = beta log 2; the
                # gradient diverges there (d log1mexp / dx = -inf at 0), so only the value is expected.
                c, r = (seq(torch.as_tensor(a), True) for a in args[:2])
                assert torch.all((c == 0) & (r == 0)), case["case"]
                value, grads = -c + kw.get("beta", 0.1) * np.log(2.0), None
            if name == "bco_loss":
                value, aux = value
                cases.append(E.expected_case(case, value, grads, aux))
                continue
            cases.append(E.expected_case(case, value, grads))
        records[name] = {"source": source, "cases": cases}
    path = E.write_expected(FAMILY, records)
    print(f"wrote {path}: {len(records)} entries")


if __name__ == "__main__":
    main()
