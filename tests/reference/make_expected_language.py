"""Expected outputs of the language family's conformance value cases (``lossjax/expected/language.json``).

Independent float64 implementations, never lossjax (run in the reference environment)::

    python tests/reference/dump_inputs.py --family language      # the inputs (lossjax env)
    python tests/reference/make_expected_language.py              # torch 2.13.0, trl 1.16.0, optax, mpmath

Each entry names its ``source``:

- the fused cross-entropy entries: the naive head in torch float64 autograd (``F.cross_entropy`` with
  ``ignore_index``/``label_smoothing``, PaLM's z-loss on the log-sum-exp, Gemma 2 soft-capping, bias);
- ``token_log_probs``: trl 1.16.0 ``trainer/utils.py::selective_log_softmax`` (called);
- ``sequence_log_probs``: trl's masked sum ``(per_token_logps * completion_mask).sum(1)`` (and its mean);
- ``ctc_loss``: ``torch.nn.functional.ctc_loss`` (called, float64, ``reduction="none"``), checked against
  ``optax.losses.ctc_loss`` run in float64;
- ports pinned to upstream files (named in each ``source``): tum-ai/number-token-loss, DRSY/EMO,
  sowmaster/Sample-Level-Loss-Reweighting-ICLR-2025, collin-burns/discovering_latent_knowledge,
  tmlr-group/SatImp;
- closed forms: PaLM z-loss, the spherical Z-loss (population std), pass@n coverage (mpmath, 60 digits,
  with its analytic derivative).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

import mpmath
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expected_io as E

torch.set_default_dtype(torch.float64)
FAMILY = "language"
TORCH = f"torch {torch.__version__} float64 autograd"


def _t(x):
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def _long(x):
    return _t(x).long()


# ------------------------------ fused cross-entropy ------------------------------


def naive_head(
    hidden,
    weight,
    labels,
    *,
    bias=None,
    ignore_index=-100,
    label_smoothing=0.0,
    z_loss_weight=0.0,
    logit_softcap=None,
    **_,
):
    """Per-token losses and log-sum-exp of ``hidden @ weight.T (+ bias)``, soft-capped, with torch's CE."""
    logits = hidden @ weight.T
    if bias is not None:
        logits = logits + _t(bias)
    if logit_softcap is not None:
        logits = logit_softcap * torch.tanh(logits / logit_softcap)
    y = _long(labels)
    ii = -100 if ignore_index is None else ignore_index
    loss = F.cross_entropy(logits, y, ignore_index=ii, label_smoothing=label_smoothing, reduction="none")
    valid = y != ii
    lse = torch.where(valid, torch.logsumexp(logits, dim=-1), torch.zeros(()))
    return loss + z_loss_weight * lse**2, lse, valid


def linear_cross_entropy(hidden, weight, labels, **kw):
    loss, _, _ = naive_head(hidden, weight, labels, **kw)
    return loss


def linear_cross_entropy_with_lse(hidden, weight, labels, **kw):
    loss, lse, _ = naive_head(hidden, weight, labels, **kw)
    return loss, lse


def reduced_linear_cross_entropy(hidden, weight, labels, *, reduction="mean", **kw):
    loss, _, valid = naive_head(hidden, weight, labels, **kw)
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / valid.sum().clamp(min=1)


# ------------------------------ log-probabilities ------------------------------


def _trl_selective_log_softmax():
    with contextlib.redirect_stderr(io.StringIO()):
        from trl.trainer.utils import selective_log_softmax
    return selective_log_softmax


def token_log_probs(logits, labels, **_):
    return _trl_selective_log_softmax()(logits, _long(labels))


def sequence_log_probs(token_log_probs, *, token_where=None, average=False, **_):
    m = torch.ones_like(token_log_probs) if token_where is None else _t(token_where).double()
    x = torch.where(m > 0, token_log_probs, torch.zeros(()))  # trl: per_token_logps * completion_mask
    s = (x * m).sum(1)
    return s / m.sum(1).clamp(min=1.0) if average else s


# ----------------------------------- z-losses -----------------------------------


def z_loss(logits, **_):
    return torch.logsumexp(logits, dim=-1) ** 2


def spherical_z_loss(logits, labels, *, sharpness=1.0, offset=1.0, epsilon=1e-6, **_):
    o = logits
    std = o.std(-1, unbiased=False, keepdim=True).clamp(min=epsilon)
    z = (o - o.mean(-1, keepdim=True)) / std
    zy = z.gather(-1, _long(labels)[..., None])[..., 0]
    return F.softplus(sharpness * (offset - zy)) / sharpness


# ------------------------------ number token loss ------------------------------


def number_token_loss(logits, labels, token_values, *, variant="mse", **_):
    """tum-ai/number-token-loss (commit main@2025-02) src/ntl/loss_functions/number_token_loss.py (NTL-MSE) and
    base_number_token_loss.py (NTL-WAS, abs-diff form), per token; non-number labels give 0."""
    nv = _t(token_values)
    is_number = ~torch.isnan(nv)
    probs = F.softmax(logits[..., is_number], dim=-1)
    values = nv[is_number]
    y = nv[_long(labels)]
    valid = ~torch.isnan(y)
    y0 = torch.where(valid, y, torch.zeros(()))
    if variant == "mse":
        per = (torch.sum(probs * values, dim=-1) - y0) ** 2
    else:
        per = torch.sum(probs * torch.abs(y0[..., None] - values), dim=-1)
    return torch.where(valid, per, torch.zeros(()))


# ------------------------------------- EMO -------------------------------------


def emo(logits, labels, proxies, *, epsilon=1e-10, **_):
    """DRSY/EMO emo_patch.py (mode 'emo'), per token: 0.5 (CE + sg(CE / (EMO + 1e-10)) EMO)."""
    y = _long(labels)
    mle_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none").reshape(y.shape)
    one_hot = F.one_hot(y, num_classes=logits.shape[-1]).double()
    stable_onehot = (one_hot + 1e-15) / torch.linalg.vector_norm(one_hot + 1e-15, ord=1, dim=-1, keepdim=True)
    emb = proxies / torch.linalg.vector_norm(proxies, ord=2, dim=1, keepdim=True)
    p_repr = stable_onehot @ emb
    q_repr = torch.log_softmax(logits, dim=-1).exp() @ emb
    emo_loss = 1 - torch.sum(p_repr * q_repr, dim=-1)
    return ((mle_loss / (emo_loss + epsilon)).detach() * emo_loss + mle_loss) * 0.5


# ------------------------------ loss-based reweighting ------------------------------

_F_FUNC = {  # sowmaster/Sample-Level-Loss-Reweighting-ICLR-2025 src/trainer.py f_func_*
    "quadratic": lambda x, d: 1 - x**2 / d**2,
    "upper": lambda x, d: 0.5 * x + 0.5 * d,
    "linupper": lambda x, d: torch.minimum(x + d, d * torch.ones_like(x)),
    "extremes": lambda x, d: torch.abs(x),
}


def _weights(losses, variant, temperature, delta):
    """trainer.py h_func / f_func / g_func and the README's normalization (weights sum to 1)."""
    with torch.no_grad():
        lo, hi = losses.min().item(), losses.max().item()
        span = max(hi - lo, 1e-6)
        h = 2.0 * delta * losses / span - delta * (hi + lo) / span
        f = _F_FUNC[variant](h, delta)
        scaled = torch.exp((f - f.max()) / temperature)
        return scaled / scaled.sum()


def loss_based_sample_weights(losses, *, variant="linupper", temperature=1.0, delta=1.0, **_):
    return _weights(losses, variant, temperature, delta)


def loss_based_sample_reweighting(losses, *, variant="linupper", temperature=1.0, delta=1.0, **_):
    return torch.sum(_weights(losses.detach(), variant, temperature, delta) * losses)


# ---------------------------------- pass@n coverage ----------------------------------


def pass_at_n(log_probs, num_samples=16.0):
    """-log(1 - (1 - p)^N) and its derivative in log p, p = exp(sum_t log p_t), at 60 digits (mpmath)."""
    mpmath.mp.dps = 60
    lp = np.asarray(log_probs, np.float64)
    seq = lp.sum(-1) if lp.ndim == 2 else lp
    n = mpmath.mpf(num_samples)
    vals, ders = [], []
    for s in seq:
        p = mpmath.exp(mpmath.mpf(float(s)))
        # 1 - (1 - p)^N without cancellation (p may be 1e-13000): -expm1(N log1p(-p)); 1 at p = 1.
        one_minus_q = -mpmath.expm1(n * mpmath.log1p(-p)) if p < 1 else mpmath.mpf(1)
        vals.append(float(-mpmath.log(one_minus_q)))
        q1 = mpmath.exp((n - 1) * mpmath.log1p(-p)) if p < 1 else mpmath.mpf(1 if n == 1 else 0)  # (1 - p)^(N-1)
        ders.append(float(-n * q1 * p / one_minus_q))
    value = np.asarray(vals)
    ct = E.cotangent(value.shape)
    grad = ct * np.asarray(ders)
    if lp.ndim == 2:
        grad = np.broadcast_to(grad[:, None], lp.shape).copy()
    return value, [grad]


# --------------------------------------- CCS / SatImp ---------------------------------------


def ccs(positive_probs, negative_probs, **_):
    """collin-burns/discovering_latent_knowledge utils.py CCS.get_loss, per pair (informative + consistent)."""
    informative = torch.min(positive_probs, negative_probs) ** 2
    consistent = (positive_probs - (1 - negative_probs)) ** 2
    return informative + consistent


def satimp(log_probs, *, beta_1=5.0, beta_2=0.1, **_):
    """tmlr-group/SatImp dataloader/dataloader_sat.py loss_type 'satimp', per token (lm_loss = -log p)."""
    lm_loss = -log_probs
    weight_part = (-lm_loss).exp().detach() ** beta_1
    weight_ce = (1 - (-lm_loss).exp().detach()) ** beta_2
    return -((weight_ce * weight_part) * lm_loss)


# ------------------------------------------ CTC ------------------------------------------


def ctc(logits, logit_paddings, labels, label_paddings, *, blank_id=0, **_):
    """torch.nn.functional.ctc_loss (reduction="none") with optax's padding convention."""
    input_lengths = (1 - _t(logit_paddings)).sum(1).long()
    target_lengths = (1 - _t(label_paddings)).sum(1).long()
    log_probs = torch.log_softmax(logits, dim=-1).transpose(0, 1)  # [T, B, K]
    return F.ctc_loss(log_probs, _long(labels), input_lengths, target_lengths, blank=blank_id, reduction="none")


def optax_ctc_f64(args, kwargs):
    import jax

    jax.config.update("jax_enable_x64", True)
    import optax

    logits, lp, labels, lpad = args
    return np.asarray(optax.losses.ctc_loss(logits, lp, np.asarray(labels), lpad, blank_id=kwargs.get("blank_id", 0)))


def _trl_generalized_jsd_loss():
    """trl 1.16.0's GKDTrainer.generalized_jsd_loss, its source executed alone: importing gkd_trainer needs psutil
    (absent from the reference environment), the function itself only torch and F."""
    import ast
    import importlib.util

    path = os.path.join(
        os.path.dirname(importlib.util.find_spec("trl").origin), "experimental", "gkd", "gkd_trainer.py"
    )
    tree = ast.parse(open(path).read())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "GKDTrainer")
    fn = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "generalized_jsd_loss")
    fn.decorator_list = []
    ns = {"torch": torch, "F": F}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), path, "exec"), ns)
    return ns["generalized_jsd_loss"]


def linear_distillation(
    hidden,
    weight,
    teacher_hidden,
    teacher_weight,
    *,
    divergence="kl",
    beta=0.5,
    temperature=1.0,
    bias=None,
    teacher_bias=None,
    **_,
):
    """trl 1.16.0 experimental/gkd/gkd_trainer.py::GKDTrainer.generalized_jsd_loss (called, reduction="none",
    summed over the vocabulary) on the materialized float64 logits of both heads; beta 0 / 1 are its forward /
    reverse KL; TVD as the closed form 0.5 sum |p - q|. The teacher is detached."""
    jsd_loss = _trl_generalized_jsd_loss()
    zs = hidden @ weight.T
    zt = (_t(teacher_hidden) @ _t(teacher_weight).T).detach()
    if divergence == "tvd":
        p = torch.softmax(zt / temperature, -1)
        q = torch.softmax(zs / temperature, -1)
        return 0.5 * torch.abs(p - q).sum(-1)
    b = {"kl": 0.0, "reverse_kl": 1.0}.get(divergence, beta)
    jsd = jsd_loss(zs, zt, beta=b, temperature=temperature, reduction="none")
    return jsd.sum(-1)


# ------------------------------------------ driver ------------------------------------------

SOURCES = {
    "linear_cross_entropy": (
        linear_cross_entropy,
        f"{TORCH}: naive head x @ w.T + b, c tanh(./c), F.cross_entropy "
        "(ignore_index, label_smoothing) + z_loss_weight * logsumexp^2",
    ),
    "linear_cross_entropy_with_lse": (
        linear_cross_entropy_with_lse,
        f"{TORCH}: naive head + F.cross_entropy; aux torch.logsumexp of the (capped) logits",
    ),
    "reduced_linear_cross_entropy": (
        reduced_linear_cross_entropy,
        f"{TORCH}: naive head + F.cross_entropy, sum / max(count, 1) over non-ignored tokens (or sum)",
    ),
    "token_log_probs": (token_log_probs, "trl 1.16.0 trainer/utils.py::selective_log_softmax (called), torch float64"),
    "sequence_log_probs": (
        sequence_log_probs,
        f"{TORCH}: trl DPOTrainer (per_token_logps * completion_mask).sum(1) (/ mask.sum(1).clamp(min=1) for average)",
    ),
    "z_loss": (z_loss, f"{TORCH}: PaLM z-loss closed form torch.logsumexp(z)^2"),
    "spherical_z_loss": (
        spherical_z_loss,
        f"{TORCH}: closed form of arXiv:1604.08859 (population std, floor epsilon), softplus(a (b - z_y)) / a",
    ),
    "number_token_loss": (
        number_token_loss,
        f"{TORCH}: port of tum-ai/number-token-loss src/ntl/loss_functions/"
        "number_token_loss.py (MSE) and base_number_token_loss.py (WAS abs-diff), per token",
    ),
    "earth_mover_distance_optimization": (emo, f"{TORCH}: port of DRSY/EMO emo_patch.py (mode 'emo'), per token"),
    "loss_based_sample_weights": (
        loss_based_sample_weights,
        f"{TORCH}: port of sowmaster/Sample-Level-Loss-"
        "Reweighting-ICLR-2025 src/trainer.py h_func/f_func_*/g_func + README normalization",
    ),
    "loss_based_sample_reweighting": (
        loss_based_sample_reweighting,
        f"{TORCH}: sum(sg(w) * l) with the weights of sowmaster/Sample-Level-Loss-Reweighting-ICLR-2025 src/trainer.py",
    ),
    "contrast_consistent_search_loss": (
        ccs,
        f"{TORCH}: port of collin-burns/discovering_latent_knowledge CCS.get_loss, per pair",
    ),
    "saturation_importance_unlearning_loss": (
        satimp,
        f"{TORCH}: port of tmlr-group/SatImp dataloader/dataloader_sat.py loss_type 'satimp', per token",
    ),
    "linear_distillation_loss": (
        linear_distillation,
        "trl 1.16.0 experimental/gkd/gkd_trainer.py::GKDTrainer.generalized_jsd_loss (its source run alone, float64, "
        "reduction='none' summed over V) on the materialized logits of both heads; TVD closed form",
    ),
    "ctc_loss": (
        ctc,
        "torch.nn.functional.ctc_loss (torch 2.13.0 float64, reduction='none', called); "
        "agrees with optax 0.2.8 optax.losses.ctc_loss run in float64",
    ),
}


def main() -> None:
    inputs = E.load_inputs(FAMILY)
    records = {}
    worst = {}
    for name, entry in inputs.items():
        diff = entry["diff_argnums"]
        cases = []
        if name == "pass_at_n_coverage_loss":
            source = "closed form -log(1 - (1 - p)^N) and its derivative, mpmath at 60 digits (no official code)"
            for case in entry["cases"]:
                args, kw = E.case_inputs(case)
                value, grads = pass_at_n(args[0], kw.get("num_samples", 16.0))
                cases.append(E.expected_case(case, value, grads))
            records[name] = {"source": source, "cases": cases}
            continue
        fn, source = SOURCES[name]
        for case in entry["cases"]:
            args, kw = E.case_inputs(case)
            out, grads = E.torch_value_and_grads(fn, list(args), diff, **kw)
            if entry["has_aux"]:
                value, aux = out
            else:
                value, aux = out, None
            if name == "ctc_loss":
                other = optax_ctc_f64(args, kw)
                err = float(np.max(np.abs(other - value.detach().numpy()) / np.maximum(1.0, np.abs(other))))
                worst[name] = max(worst.get(name, 0.0), err)
                assert err < 1e-9, (case["case"], err)
            cases.append(E.expected_case(case, value, grads, aux))
        records[name] = {"source": source, "cases": cases}
    missing = set(inputs) - set(records)
    assert not missing, missing
    path = E.write_expected(FAMILY, records)
    print(f"wrote {path}: {len(records)} entries; cross-checks: {worst}")


if __name__ == "__main__":
    main()
