"""Golden values for lossjax.losses._language and lossjax.losses._preference.

Run once (not at test time): ``python tests/reference/make_language_preference.py``.
Writes ``tests/reference/language_preference.json`` (inputs, values, some
gradients), computed in float64 with torch 2.13.0 (CPU): trl 1.16.0's own loss
functions are called where they run without a model (SimPO, ORPO,
``selective_log_softmax``); the rest are faithful ports of the reference code,
transcribed line by line (DPO/IPO/KTO live inside trainer methods that need a
model forward; the other repositories are not packages):

- huggingface/trl 1.16.0 ``trl/trainer/dpo_trainer.py::_compute_loss`` loss
  types ``sigmoid`` (+ cDPO label smoothing as in trl < 1.0 ``dpo_loss``),
  ``robust``, ``ipo`` (per-token averaged log-ratios); the per-sequence
  log-probs are ``(per_token_logps * completion_mask).sum(1)``;
- trl ``experimental/cpo/cpo_trainer.py::CPOTrainer.cpo_loss`` (loss_type ``simpo``, called on a
  stand-in ``self``) on ``get_batch_logps(average_log_prob=True)``;
- trl ``experimental/orpo/orpo_trainer.py::ORPOTrainer.odds_ratio_loss`` (called, float64) and the
  policy NLL;
- trl ``trainer/utils.py::selective_log_softmax`` (called) for ``token_log_probs``;
- trl ``trainer/kto_trainer.py`` loss_type ``kto`` (chosen/rejected losses
  with the clamped KL reference point);
- licong-lin/negative-preference-optimization ``TOFU/dataloader.py`` (npo);
- tum-ai/number-token-loss ``number_token_loss.py`` (NTL-MSE),
  ``base_number_token_loss.py`` (abs-diff NTL-WAS) and
  ``wasserstein_distance_number_token_loss.py`` (CDF NTL-WAS);
- DRSY/EMO ``emo_patch.py`` (values and gradients w.r.t. the logits);
- sowmaster/Sample-Level-Loss-Reweighting-ICLR-2025 ``src/trainer.py``
  (``h_func``, ``f_func_*``, ``g_func``) and the README's normalization;
- collin-burns/discovering_latent_knowledge ``CCS.get_loss`` (per pair);
- tmlr-group/SatImp ``dataloader/dataloader_sat.py`` (loss_type ``satimp``);
- UCSC-REAL/FLAT ``dataloader.py`` (loss_type ``cl``: ``ProbLossStable`` + ``get_contrastive_loss``);
- closed forms (no official code): PaLM z-loss, the spherical Z-loss,
  pass@n coverage (mpmath at 400 digits), soft-preference cross-entropy.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pathlib
import types

import mpmath
import numpy as np
import torch
import torch.nn.functional as F

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
with contextlib.redirect_stderr(io.StringIO()):  # trl 1.16.0 (its loss functions are called where they run)
    from trl.experimental.cpo.cpo_trainer import CPOTrainer
    from trl.experimental.orpo.orpo_trainer import ORPOTrainer
    from trl.trainer.utils import selective_log_softmax

torch.set_default_dtype(torch.float64)
HERE = pathlib.Path(__file__).resolve().parent
rng = np.random.default_rng(20261122)
OUT: dict = {}


def t(x):
    return torch.tensor(np.asarray(x, np.float64))


def _trainer_self(**hp):
    """A stand-in `self` for trl's loss methods: the hyperparameters and an accelerator device."""
    return types.SimpleNamespace(accelerator=types.SimpleNamespace(device="cpu"), **hp)


@contextlib.contextmanager
def _float_is_identity():
    """trl casts log-probs with `.float()` (float32); keep float64 inputs float64 inside its code."""
    orig = torch.Tensor.float
    torch.Tensor.float = lambda self, *a, **k: self if self.dtype == torch.float64 else orig(self, *a, **k)
    try:
        yield
    finally:
        torch.Tensor.float = orig


def lst(x):
    return np.asarray(x.detach().numpy() if isinstance(x, torch.Tensor) else x, np.float64).tolist()


# --------------------------------------------------------------------------
# Preference losses.
# --------------------------------------------------------------------------
B, TC, TR = 5, 6, 4
tok = {k: -rng.uniform(0.05, 3.0, size=(B, T)) for k, T in (("pc", TC), ("rc", TC), ("pr", TR), ("rr", TR))}
cmask = np.ones((B, TC), bool)
rmask = np.ones((B, TR), bool)
for i, n in enumerate([6, 3, 5, 1, 4]):
    cmask[i, n:] = False
for i, n in enumerate([4, 2, 1, 3, 4]):
    rmask[i, n:] = False
masks = {"pc": cmask, "rc": cmask, "pr": rmask, "rr": rmask}
OUT["pref_inputs"] = {
    **{k: v.tolist() for k, v in tok.items()},
    "chosen_mask": cmask.tolist(),
    "rejected_mask": rmask.tolist(),
}


def seq(k, average):
    x, m = t(tok[k]), t(masks[k])
    s = (x * m).sum(1)
    return s / m.sum(1).clamp(min=1.0) if average else s


def dpo_trl(pc, pr, rc, rr, beta, label_smoothing=0.0, loss_type="sigmoid"):
    chosen_logratios = pc - rc
    rejected_logratios = pr - rr
    delta_score = chosen_logratios - rejected_logratios
    if loss_type == "sigmoid":  # trl < 1.0 dpo_loss: cDPO label smoothing
        losses = (
            -F.logsigmoid(beta * delta_score) * (1 - label_smoothing)
            - F.logsigmoid(-beta * delta_score) * label_smoothing
        )
    elif loss_type == "robust":
        clean_loss_term = -(1 - label_smoothing) * F.logsigmoid(beta * delta_score)
        flipped_loss_term = -label_smoothing * F.logsigmoid(-beta * delta_score)
        losses = (clean_loss_term - flipped_loss_term) / (1 - 2 * label_smoothing)
    return losses, beta * chosen_logratios.detach(), beta * rejected_logratios.detach()


dpo_cases = []
for beta, ls, lt in [(0.1, 0.0, "sigmoid"), (0.5, 0.2, "sigmoid"), (0.3, 0.15, "robust")]:
    pc = seq("pc", False).requires_grad_(True)
    pr = seq("pr", False).requires_grad_(True)
    losses, cr, rr_ = dpo_trl(pc, pr, seq("rc", False), seq("rr", False), beta, ls, lt)
    g = torch.autograd.grad(losses.sum(), (pc, pr))
    dpo_cases.append(
        {
            "beta": beta,
            "label_smoothing": ls,
            "robust": lt == "robust",
            "loss": lst(losses),
            "chosen_rewards": lst(cr),
            "rejected_rewards": lst(rr_),
            "grad_chosen_seq": lst(g[0]),
            "grad_rejected_seq": lst(g[1]),
        }
    )
OUT["dpo"] = dpo_cases

# IPO (trl >= 1.0: per-token averaged log-ratio scores).
ipo_cases = []
for beta in (0.1, 0.5):
    chosen_scores = seq("pc", False) - seq("rc", False)
    rejected_scores = seq("pr", False) - seq("rr", False)
    chosen_avg = chosen_scores / t(cmask).sum(1).clamp(min=1.0)
    rejected_avg = rejected_scores / t(rmask).sum(1).clamp(min=1.0)
    ipo_cases.append({"beta": beta, "loss": lst((chosen_avg - rejected_avg - 1 / (2 * beta)) ** 2)})
OUT["ipo"] = ipo_cases

# SimPO: trl 1.16.0 CPOTrainer.cpo_loss (loss_type="simpo") called on a stand-in `self`, average_log_prob=True.
simpo_cases = []
for beta, gamma, ls in [(2.0, 0.5, 0.0), (2.5, 1.4, 0.1)]:
    pc, pr = seq("pc", True), seq("pr", True)
    me = _trainer_self(alpha=0.0, loss_type="simpo", beta=beta, simpo_gamma=gamma, label_smoothing=ls)
    losses, _, _ = CPOTrainer.cpo_loss(me, pc, pr)
    simpo_cases.append(
        {
            "beta": beta,
            "gamma": gamma,
            "label_smoothing": ls,
            "loss": lst(losses),
            "chosen_rewards": lst(beta * pc),
            "rejected_rewards": lst(beta * pr),
        }
    )
OUT["simpo"] = simpo_cases


orpo_cases = []
for beta in (0.1, 0.25):
    pc = seq("pc", True).requires_grad_(True)
    pr = seq("pr", True).requires_grad_(True)
    # trl 1.16.0 ORPOTrainer.odds_ratio_loss (called; its .float() kept float64): losses = beta * logsigmoid(log odds).
    with _float_is_identity():
        or_losses, *_ = ORPOTrainer.odds_ratio_loss(_trainer_self(beta=beta), pc, pr)
    nll = -pc  # per example: the mean over the example's chosen tokens
    losses = nll - or_losses
    g = torch.autograd.grad(losses.sum(), (pc, pr))
    orpo_cases.append({"beta": beta, "loss": lst(losses), "grad_chosen_avg": lst(g[0]), "grad_rejected_avg": lst(g[1])})
OUT["orpo"] = orpo_cases

# KTO (KTOTrainer, loss_type "kto"): per-example in batch order.
kto_pol = -rng.uniform(0.5, 20.0, size=(8,))
kto_ref = kto_pol + rng.normal(scale=2.0, size=(8,))
kto_des = np.array([1, 0, 1, 1, 0, 0, 1, 0], bool)
kl_pol = -rng.uniform(1.0, 10.0, size=(8,))
kl_ref = kl_pol - rng.uniform(-0.5, 1.5, size=(8,))
kto_cases = []
for beta, wd, wu in [(0.1, 1.0, 1.0), (0.5, 1.33, 0.75)]:
    kl = (t(kl_pol) - t(kl_ref)).mean().clamp(min=0)
    logratios = t(kto_pol) - t(kto_ref)
    chosen_losses = 1 - F.sigmoid(beta * (logratios - kl))
    rejected_losses = 1 - F.sigmoid(beta * (kl - logratios))
    losses = torch.where(t(kto_des) > 0, wd * chosen_losses, wu * rejected_losses)
    kto_cases.append(
        {"beta": beta, "desirable_weight": wd, "undesirable_weight": wu, "kl": float(kl), "loss": lst(losses)}
    )
OUT["kto"] = {
    "policy": kto_pol.tolist(),
    "ref": kto_ref.tolist(),
    "desirable": kto_des.tolist(),
    "kl_policy": kl_pol.tolist(),
    "kl_ref": kl_ref.tolist(),
    "cases": kto_cases,
}

# NPO (licong-lin/negative-preference-optimization): forget_loss = -sum log p.
npo_cases = []
for beta in (0.1, 1.0):
    forget_loss_current = -seq("pc", False)
    forget_loss_oracle = -seq("rc", False)
    neg_log_ratios = forget_loss_current - forget_loss_oracle
    losses = -F.logsigmoid(beta * neg_log_ratios) * 2 / beta  # per example (the reference takes the mean)
    npo_cases.append({"beta": beta, "loss": lst(losses)})
OUT["npo"] = npo_cases

# Soft preference cross-entropy (closed form).
q = rng.uniform(0.0, 1.0, size=(B,))
delta = 0.1 * ((seq("pc", False) - seq("rc", False)) - (seq("pr", False) - seq("rr", False)))
OUT["soft_pref"] = {
    "beta": 0.1,
    "strengths": q.tolist(),
    "loss": lst(-t(q) * F.logsigmoid(delta) - (1 - t(q)) * F.logsigmoid(-delta)),
}

# token_log_probs: trl 1.16.0 trainer/utils.py::selective_log_softmax (called).
tl_logits = rng.normal(size=(2, 3, 7)) * 3
tl_labels = rng.integers(0, 7, size=(2, 3))
OUT["token_log_probs"] = {
    "logits": tl_logits.tolist(),
    "labels": tl_labels.tolist(),
    "value": lst(selective_log_softmax(t(tl_logits), torch.tensor(tl_labels))),
}

# --------------------------------------------------------------------------
# Language-model losses.
# --------------------------------------------------------------------------
N, V = 7, 11
lm_logits = rng.normal(size=(N, V)) * 2.5
lm_labels = rng.integers(0, V, size=(N,))
OUT["lm_inputs"] = {"logits": lm_logits.tolist(), "labels": lm_labels.tolist()}

OUT["z_loss"] = {"z_loss_coef": 1e-4, "value": lst(1e-4 * torch.logsumexp(t(lm_logits), -1) ** 2)}

sph = []
for a, b in [(1.0, 1.0), (0.1, 10.0), (2.0, 0.5)]:
    o = t(lm_logits)
    z = (o - o.mean(-1, keepdim=True)) / o.std(-1, unbiased=False, keepdim=True)
    zy = z.gather(-1, torch.tensor(lm_labels)[:, None])[:, 0]
    sph.append({"a": a, "b": b, "value": lst(F.softplus(a * (b - zy)) / a)})
OUT["spherical_z_loss"] = sph

# Number token loss: vocab of 14 with the digits 0..9 at shuffled ids.
NV = 14
perm = rng.permutation(NV)
nvocab = np.full((NV,), np.nan)
digit_ids = perm[:10]
nvocab[digit_ids] = np.arange(10.0)
ntl_logits = rng.normal(size=(2, 5, NV)) * 2
ntl_labels = np.array([[digit_ids[3], perm[10], digit_ids[9], digit_ids[0], -100], [digit_ids[5]] * 2 + [perm[12]] * 3])
is_number = ~np.isnan(nvocab)


def ntl_mse(logits, labels):  # number_token_loss.py (selector: logits of number tokens)
    nv = t(nvocab)
    lg = logits[..., torch.tensor(is_number)]
    softmaxed = F.softmax(lg, dim=-1)
    yhat = torch.sum(softmaxed * nv[torch.tensor(is_number)], dim=-1)
    lab = labels.masked_fill(labels == -100, 0)
    y = nv[lab]
    per = (yhat - y) ** 2
    return torch.where(torch.isnan(y), torch.zeros_like(per), per), ~torch.isnan(y)


def ntl_was_absdiff(logits, labels):  # base_number_token_loss.py, reduction="none"
    nv = t(nvocab)
    lab = labels.masked_fill(labels == -100, 0)
    y = nv[lab]
    valid = ~torch.isnan(y)
    probs = F.softmax(logits[..., torch.tensor(is_number)], dim=-1)
    abs_diff = torch.abs(y[valid].unsqueeze(-1) - nv[torch.tensor(is_number)])
    return (abs_diff * probs[valid]).sum(-1), valid


def ntl_was_cdf(logits, labels):  # wasserstein_distance_number_token_loss.py, order_numbers=True
    nv = t(nvocab)
    idx = torch.nonzero(torch.tensor(is_number)).squeeze()
    _, order = torch.sort(nv[idx])
    idx = idx[order]
    soft = F.softmax(logits[:, :, idx], dim=-1)
    lab = labels.masked_fill(labels == -100, 0)
    y = nv[lab]
    valid = ~torch.isnan(y)
    target = F.one_hot(lab, num_classes=NV).double()[:, :, idx]
    w = torch.sum(torch.abs(torch.cumsum(soft, -1) - torch.cumsum(target, -1)), -1)
    return w[valid], valid


L, LB = t(ntl_logits), torch.tensor(ntl_labels)
mse, valid = ntl_mse(L, LB)
was, _ = ntl_was_absdiff(L, LB)
cdf, _ = ntl_was_cdf(L, LB)
OUT["number_token_loss"] = {
    "token_values": [None if math.isnan(v) else v for v in nvocab.tolist()],
    "logits": ntl_logits.tolist(),
    "labels": ntl_labels.tolist(),
    "valid": lst(valid.double()),
    "mse": lst(mse),
    "was_valid_only": lst(was),
    "was_cdf_valid_only": lst(cdf),
}

# EMO (DRSY/EMO emo_patch.py), per token, with gradient of the masked mean w.r.t. the logits.
E = rng.normal(size=(V, 4))
emo_mask = np.ones(N, bool)
emo_mask[[2, 5]] = False
lg = t(lm_logits).requires_grad_(True)
labels = torch.tensor(np.where(emo_mask, lm_labels, -100))
mask = (labels != -100).double()
mle_loss = F.cross_entropy(lg, labels, reduction="none")
labels_tmp = labels.clone()
labels_tmp[labels_tmp == -100] = 0
one_hot = F.one_hot(labels_tmp, num_classes=V).double()
stable_onehot = (one_hot + 1e-15) / torch.linalg.vector_norm(one_hot + 1e-15, ord=1, dim=-1, keepdim=True)
emb = t(E) / torch.linalg.vector_norm(t(E), ord=2, dim=1, keepdim=True)
p_repr = stable_onehot @ emb
q_repr = torch.log_softmax(lg, dim=-1).exp() @ emb
emo_loss = 1 - torch.sum(p_repr * q_repr, dim=-1)
per_token = ((mle_loss / (emo_loss + 1e-10)).detach() * emo_loss + mle_loss) * 0.5
loss = (per_token * mask).sum() / (1e-15 + mask.sum())
(g,) = torch.autograd.grad(loss, lg)
OUT["emo"] = {
    "embeddings": E.tolist(),
    "mask": emo_mask.tolist(),
    "per_token": lst(per_token * mask),
    "mean_loss": loss.item(),
    "grad_mean_wrt_logits": lst(g),
}


# Loss-based sample reweighting (src/trainer.py + README normalization).
def h_func(losses, delta=1.0, l_min=0.75, l_max=1.8):
    return 2.0 * delta * losses / max(l_max - l_min, 1e-6) - delta * (l_max + l_min) / max(l_max - l_min, 1e-6)


F_FUNC = {
    "quadratic": lambda x, d=1.0: 1 - x**2 / d**2,  # f_func_mid
    "upper": lambda x, d=1.0: 0.5 * x + 0.5 * d,
    "linupper": lambda x, d=1.0: torch.minimum(x + d, d * torch.ones_like(x)),
    "extremes": lambda x, d=1.0: torch.abs(x),
}
rw_losses = rng.uniform(1.5, 5.0, size=(9,))
rw = []
for strategy in F_FUNC:
    for r, delta in [(1.0, 1.0), (0.3, 2.0)]:
        ls = t(rw_losses).requires_grad_(True)
        with torch.no_grad():
            hl = h_func(ls.detach(), delta=delta, l_min=ls.min().item(), l_max=ls.max().item())
            f = F_FUNC[strategy](hl, delta)
            scaled = torch.exp((f - f.max().item()) / r)  # g_func(f - max f, r)
            weights = scaled / scaled.sum()
        total = torch.sum(weights * ls)
        (g,) = torch.autograd.grad(total, ls)
        rw.append(
            {
                "strategy": strategy,
                "temperature": r,
                "delta": delta,
                "weights": lst(weights),
                "loss": total.item(),
                "grad": lst(g),
            }
        )
OUT["reweighting"] = {"losses": rw_losses.tolist(), "cases": rw}

# pass@n coverage: -log(1 - (1 - p)^N) at 50 digits.
mpmath.mp.dps = 400
logps = [-1e-8, -1e-3, -0.05, -0.7, -2.0, -8.0, -25.0, -60.0, -300.0]
pn = []
for n in (1, 4, 16, 256):
    vals = []
    for lp in logps:
        p = mpmath.exp(mpmath.mpf(lp))
        # -log1p(-(1-p)^n) at 400 digits: exact both for (1-p)^n ~ 1e-48 and for p ~ 1e-131.
        vals.append(float(-mpmath.log1p(-mpmath.exp(n * mpmath.log1p(-p)))))
    pn.append({"n": n, "value": vals})
OUT["pass_at_n"] = {"log_probs": logps, "cases": pn}

# CCS (Burns et al.): per pair, informative + consistent.
p0 = rng.uniform(0, 1, size=(8,))
p1 = rng.uniform(0, 1, size=(8,))
informative = torch.min(t(p0), t(p1)) ** 2
consistent = (t(p0) - (1 - t(p1))) ** 2
OUT["ccs"] = {"p_pos": p0.tolist(), "p_neg": p1.tolist(), "value": lst(informative + consistent)}

# SatImp (tmlr-group/SatImp dataloader_sat.py, loss_type "satimp"), per token and the masked mean.
sat_logits = rng.normal(size=(3, 5, 9)) * 2
sat_labels = rng.integers(0, 9, size=(3, 5))
sat_labels[0, :2] = -100
sat = []
for b1, b2 in [(5.0, 0.1), (1.0, 1.0), (0.5, 2.0)]:
    shift_logits, shift_labels = t(sat_logits), torch.tensor(sat_labels)
    lm_loss = torch.nn.CrossEntropyLoss(ignore_index=-100, reduction="none")(
        shift_logits.view(-1, shift_logits.size(-1)), shift_labels.view(-1)
    )
    weight_part = (-lm_loss).exp().detach() ** b1
    weight_ce = (1 - (-lm_loss).exp().detach()) ** b2
    per_token = -((weight_ce * weight_part) * lm_loss)
    loss = per_token[shift_labels.view(-1) != -100].mean()
    sat.append({"beta1": b1, "beta2": b2, "per_token": lst(per_token.view(3, 5)), "mean": loss.item()})
OUT["satimp"] = {"logits": sat_logits.tolist(), "labels": sat_labels.tolist(), "cases": sat}

# FLAT (UCSC-REAL/FLAT dataloader.py, loss_type "cl"): ProbLossStable per example, stacked mean,
# then get_contrastive_loss(prob_sum_unlearn, prob_sum_good, div). All tokens counted here.
FLAT_DIV = {
    "KL": (lambda x: -torch.mean(x), lambda x: -torch.mean(torch.exp(x - 1.0))),
    "Pearson": (lambda x: -torch.mean(x), lambda x: -torch.mean(torch.mul(x, x) / 4.0 + x)),
    "Jenson-Shannon": (
        lambda x: -torch.mean(-torch.log(1.0 + torch.exp(-x))) - torch.log(torch.tensor(2.0)),
        lambda x: -torch.mean(x + torch.log(1.0 + torch.exp(-x))) + torch.log(torch.tensor(2.0)),
    ),
    "Total-Variation": (lambda x: -torch.mean(torch.tanh(x) / 2.0), lambda x: -torch.mean(torch.tanh(x) / 2.0)),
}
flat_good_logits = rng.normal(size=(3, 4, 7)) * 2
flat_bad_logits = rng.normal(size=(3, 6, 7)) * 2
flat_good_labels = rng.integers(0, 7, size=(3, 4))
flat_bad_labels = rng.integers(0, 7, size=(3, 6))


def prob_loss_stable(outputs, labels):
    return torch.nn.NLLLoss(reduction="none", ignore_index=-100)(torch.softmax(outputs, -1), labels)


flat = []
for div, (activation, conjugate) in FLAT_DIV.items():
    lg_good, lg_bad = t(flat_good_logits).requires_grad_(True), t(flat_bad_logits).requires_grad_(True)
    losses_unlearn = [prob_loss_stable(lg_bad[b], torch.tensor(flat_bad_labels[b])) for b in range(3)]
    losses_good = [prob_loss_stable(lg_good[b], torch.tensor(flat_good_labels[b])) for b in range(3)]
    prob_sum_unlearn = torch.stack(losses_unlearn).mean()
    prob_sum_good = torch.stack(losses_good).mean()
    loss = activation(-prob_sum_good) - conjugate(-prob_sum_unlearn)
    g_good, g_bad = torch.autograd.grad(loss, (lg_good, lg_bad))
    flat.append(
        {"divergence": div, "loss": loss.item(), "grad_good_logits": lst(g_good), "grad_bad_logits": lst(g_bad)}
    )
OUT["flat"] = {
    "good_logits": flat_good_logits.tolist(),
    "bad_logits": flat_bad_logits.tolist(),
    "good_labels": flat_good_labels.tolist(),
    "bad_labels": flat_bad_labels.tolist(),
    "cases": flat,
}

path = HERE / "language_preference.json"
path.write_text(json.dumps(OUT, indent=1))
print(f"wrote {path} ({path.stat().st_size} bytes)")
