"""Expected outputs of the policy_gradient family's conformance value cases (``lossjax/expected/policy_gradient.json``).

Independent float64 implementations, never lossjax (run in the reference environment)::

    python tests/reference/dump_inputs.py --family policy_gradient    # the inputs (lossjax env)
    python tests/reference/make_expected_policy_gradient.py            # torch 2.13.0, trl 1.16.0

- ``ppo_clip_loss``, ``grpo_loss``, ``gspo_loss``: ports of trl 1.16.0
  ``trainer/grpo_trainer.py::GRPOTrainer._compute_loss`` (the importance weights, token or sequence level, the
  two-sided ``delta`` clip, ``-min(coef_1 A, coef_2 A)``, the k3 ``per_token_kl`` and the ``loss_type``
  reductions ``grpo``/``bnpo``/``dr_grpo``/``dapo``, one process, no gradient accumulation, every completion
  token counted: the samples carry no masks);
- ``clip_fraction``: the same file's ``clip_ratio/{low,high,region}_mean`` metrics (``global_masked_mean``);
- ``group_relative_advantages``: the same file's ``_generate_and_score_completions`` (``nanmean``, trl's
  ``trainer/utils.py::nanstd`` called, ``1e-4``);
- ``token_entropy``: trl 1.16.0 ``trainer/utils.py::entropy_from_logits`` (called) where every logit is
  finite, else the closed form ``-sum p log p`` with ``0 log 0 = 0``;
- closed forms: Schulman's k1/k2/k3 (``kl_estimate``, ``approx_kl``), the unified policy gradient surrogate.

lossjax clamps every ``exp`` argument at 80 (documented: values stay finite for log-ratios of 1e4); the
references apply the same clamp so that the extreme cases have finite expected values.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expected_io as E

torch.set_default_dtype(torch.float64)
FAMILY = "policy_gradient"
TORCH = f"torch {torch.__version__} float64 autograd"
TRL_GRPO = "trl 1.16.0 trainer/grpo_trainer.py::GRPOTrainer._compute_loss"
CLAMP = 80.0


def _t(x):
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def _exp(x):
    return torch.exp(torch.clamp(x, max=CLAMP))


def _coefs(lp, old, level, clip_range, clip_range_high, delta):
    """trl: log_importance_weights, coef_1 = exp(.), coef_2 = clamp(coef_1, 1 - eps_low, 1 + eps_high)."""
    log_ratio = lp - _t(old)
    mask = torch.ones_like(lp)
    if level == "token":
        w = log_ratio
    else:
        w = ((log_ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).unsqueeze(-1)
    coef_1 = _exp(w)
    high = clip_range if clip_range_high is None else clip_range_high
    coef_2 = torch.clamp(coef_1, 1 - clip_range, 1 + high)
    if delta is not None:
        coef_1 = torch.clamp(coef_1, max=delta)
    return coef_1, coef_2


def _adv(adv):
    adv = _t(adv)
    return adv.unsqueeze(1) if adv.dim() == 1 else adv


def ppo_clip(lp, old, adv, *, clip_range=0.2, clip_range_high=None, delta=None, importance_sampling_level="token", **_):
    coef_1, coef_2 = _coefs(lp, old, importance_sampling_level, clip_range, clip_range_high, delta)
    a = _adv(adv)
    per_token_loss = -torch.min(coef_1 * a, coef_2 * a)
    return per_token_loss.expand_as(lp)


def grpo(
    lp,
    old,
    adv,
    ref=None,
    *,
    variant="grpo",
    beta=0.0,
    clip_range=0.2,
    clip_range_high=None,
    delta=None,
    importance_sampling_level="token",
    max_completion_length=None,
    **_,
):
    per_token_loss = ppo_clip(
        lp,
        old,
        adv,
        clip_range=clip_range,
        clip_range_high=clip_range_high,
        delta=delta,
        importance_sampling_level=importance_sampling_level,
    )
    if beta != 0.0:
        r = _t(ref)
        per_token_kl = _exp(r - lp) - (r - lp) - 1
        per_token_loss = per_token_loss + beta * per_token_kl
    mask = torch.ones_like(lp)
    if variant == "grpo":
        return ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if variant in ("bnpo", "dapo"):  # dapo: num_items_in_batch = the batch's token count (one process)
        return (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)
    length = lp.shape[1] if max_completion_length is None else max_completion_length
    return (per_token_loss * mask).sum() / (per_token_loss.size(0) * length)


def gspo(lp, old, adv, ref=None, *, clip_range=3e-4, clip_range_high=4e-4, **kw):
    kw.pop("importance_sampling_level", None)
    return grpo(
        lp,
        old,
        adv,
        ref,
        clip_range=clip_range,
        clip_range_high=clip_range_high,
        importance_sampling_level="sequence",
        **kw,
    )


def _k(lp, other, variant):
    """Schulman's estimators of KL(pi || other) with rho = log other - log pi."""
    rho = _t(other) - lp
    if variant == "k1":
        return -rho
    if variant == "k2":
        return 0.5 * rho**2
    return _exp(rho) - rho - 1  # trl per_token_kl


def kl_estimate(lp, ref, *, variant="k3", **_):
    return _k(lp, ref, variant)


def approx_kl(lp, old, *, variant="k3", **_):
    return _k(_t(lp), old, variant).mean()


def clip_fraction(
    lp, old, adv, *, variant="region", clip_range=0.2, clip_range_high=None, importance_sampling_level="token", **_
):
    coef_1, _ = _coefs(_t(lp), old, importance_sampling_level, clip_range, clip_range_high, None)
    high = clip_range if clip_range_high is None else clip_range_high
    a = _adv(adv)
    low_c = (coef_1 < 1 - clip_range) & (a < 0)
    high_c = (coef_1 > 1 + high) & (a > 0)
    x = {"low": low_c, "high": high_c, "region": low_c | high_c}[variant].double()
    if x.shape[1] == 1:  # trl global_masked_mean: one value per sequence
        return x.sum() / x.shape[0]
    x = x.expand(_t(lp).shape)
    return x.sum() / x.numel()


def group_relative_advantages(rewards, *, scale_rewards="group", epsilon=1e-4, **_):
    from trl.trainer.utils import nanstd

    rewards = _t(rewards)
    g, s = rewards.shape
    flat = rewards.reshape(-1)
    mean = torch.nanmean(flat.view(-1, s), dim=1).repeat_interleave(s, dim=0)
    if scale_rewards in ("group", "none"):
        std = nanstd(flat.view(-1, s), dim=1).repeat_interleave(s, dim=0)
    else:
        std = nanstd(flat).expand_as(flat)
    adv = flat - mean
    if scale_rewards != "none":
        adv = adv / (std + epsilon)
    return torch.nan_to_num(adv.reshape(g, s), nan=0.0)


def token_entropy(logits, **_):
    from trl.trainer.utils import entropy_from_logits

    z = _t(logits)
    if torch.all(torch.isfinite(z)):
        return entropy_from_logits(z)
    logp = torch.log_softmax(z, dim=-1)
    safe = torch.where(torch.isfinite(logp), logp, torch.zeros(()))
    return -(torch.exp(safe) * safe * torch.isfinite(logp)).sum(-1)


def unified_pg(lp, den, adv, *, clip_range=0.2, clip_range_high=None, **_):
    """Closed form: -1[stable] A exp(log pi - sg(log pi_den)), the PPO clip mask on the detached ratio."""
    ratio = _exp(lp - _t(den))
    a = _adv(adv).expand_as(lp)
    loss = -a * ratio
    if clip_range is not None:
        high = clip_range if clip_range_high is None else clip_range_high
        r = ratio.detach()
        unstable = ((r > 1 + high) & (a > 0)) | ((r < 1 - clip_range) & (a < 0))
        loss = torch.where(unstable, torch.zeros(()), loss)
    return loss


SOURCES = {
    "ppo_clip_loss": (ppo_clip, f"{TORCH}: port of {TRL_GRPO} per_token_loss (before the reduction)"),
    "grpo_loss": (grpo, f"{TORCH}: port of {TRL_GRPO} (loss_type grpo/bnpo/dr_grpo/dapo, k3 KL, delta)"),
    "gspo_loss": (gspo, f"{TORCH}: port of {TRL_GRPO} with importance_sampling_level='sequence'"),
    "kl_estimate": (kl_estimate, f"{TORCH}: closed forms k1/k2/k3 (k3 = trl's per_token_kl)"),
    "approx_kl": (approx_kl, f"{TORCH}: closed forms, token mean of k1/k2/k3"),
    "clip_fraction": (clip_fraction, f"{TORCH}: port of {TRL_GRPO} clip_ratio/*_mean (global_masked_mean)"),
    "group_relative_advantages": (
        group_relative_advantages,
        f"{TORCH}: port of trl 1.16.0 grpo_trainer.py::_generate_and_score_completions (trl.trainer.utils.nanstd "
        "called)",
    ),
    "token_entropy": (
        token_entropy,
        "trl 1.16.0 trainer/utils.py::entropy_from_logits (called, float64); -sum p log p with 0 log 0 = 0 "
        "where a logit is -inf",
    ),
    "unified_policy_gradient_loss": (unified_pg, f"{TORCH}: closed form of arXiv:2509.04419's estimator"),
}


def main() -> None:
    inputs = E.load_inputs(FAMILY)
    records = {}
    with contextlib.redirect_stderr(io.StringIO()):
        import trl.trainer.utils  # noqa: F401
    for name, entry in inputs.items():
        fn, source = SOURCES[name]
        cases = []
        for case in entry["cases"]:
            args, kw = E.case_inputs(case)
            value, grads = E.torch_value_and_grads(fn, list(args), entry["diff_argnums"], **kw)
            cases.append(E.expected_case(case, value, grads))
        records[name] = {"source": source, "cases": cases}
    path = E.write_expected(FAMILY, records)
    print(f"wrote {path}: {len(records)} entries")


if __name__ == "__main__":
    main()
