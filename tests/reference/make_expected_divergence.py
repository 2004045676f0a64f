"""Expected outputs of the divergence family's conformance value cases (``lossjax/expected/divergence.json``).

Independent float64 implementations, never lossjax (run in the reference environment)::

    python tests/reference/dump_inputs.py --family divergence     # the inputs (lossjax env)
    python tests/reference/make_expected_divergence.py            # torch 2.13.0, optax 0.2.8, scipy 1.17

Each entry names its ``source``. The probability-vector divergences are written in torch float64
autograd and checked here against the upstream call where one exists (``torch.nn.functional.kl_div``,
``optax.losses.kl_divergence`` / ``kl_divergence_with_log_targets`` / ``generalized_kl_divergence`` run in
float64, ``scipy.special.rel_entr`` / ``kl_div``, ``scipy.spatial.distance.jensenshannon``,
``scipy.stats.entropy``) on every finite case; where a target is 0 against a log-prediction of ``-inf``
(``0 log 0 = 0``), torch and optax give NaN, so that element's term is 0 with a zero gradient (the
documented lossjax convention) and the upstream check skips it. Ports pinned to upstream files:
gtegner/mine-pytorch (MINE), SJYuCNEL/Cauchy-Schwarz-Information-Bottleneck (CS divergence),
nnaisense/bayesian-flow-networks (BFN). Sinkhorn: the same fixed-count log-domain Sinkhorn in torch.
Bures-Wasserstein: ``scipy.linalg.sqrtm`` with central differences.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import scipy
import scipy.linalg
import scipy.spatial.distance
import scipy.special
import scipy.stats
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expected_io as E

torch.set_default_dtype(torch.float64)
FAMILY = "divergence"
TORCH = f"torch {torch.__version__} float64 autograd"
ZERO = torch.tensor(0.0)


def _w(cond, x, fill=0.0):
    return torch.where(cond, x, torch.full_like(x, fill))


def _targets(targets, log_target):
    """``(t, log t)`` with ``log t = -inf`` where ``t = 0``."""
    if log_target:
        lt = targets
        return torch.exp(lt), lt
    pos = targets > 0
    return targets, _w(pos, torch.log(_w(pos, targets, 1.0)), -math.inf)


def _xlogx_ratio(a, la, lb):
    pos = a > 0
    return _w(pos, a * (_w(pos, la) - _w(pos, lb)))


def kl_divergence(lp, targets, *, log_target=False, axis=-1, **_):
    t, _lt = _targets(targets, log_target)
    # torch's own kl_div where every input is finite; the 0 log 0 elements masked to exactly 0.
    zero_t = t == 0
    lp_s, tt = _w(~zero_t, lp), _w(~zero_t, targets)
    out = F.kl_div(lp_s, tt, reduction="none", log_target=log_target)
    return _w(~zero_t, out).sum(axis)


def kl_divergence_with_log_targets(lp, log_targets, *, axis=-1, **_):
    return kl_divergence(lp, log_targets, log_target=True, axis=axis)


def generalized_kl_divergence(lp, targets, *, log_target=False, axis=-1, **_):
    t, _ = _targets(targets, log_target)
    return kl_divergence(lp, targets, log_target=log_target, axis=axis) + (torch.exp(lp) - t).sum(axis)


def reverse_kl_divergence(lp, targets, *, log_target=False, axis=-1, **_):
    _t, lt = _targets(targets, log_target)
    return _xlogx_ratio(torch.exp(lp), lp, lt).sum(axis)


def jensen_shannon_divergence(lp, targets, *, alpha=0.5, log_target=False, axis=-1, **_):
    t, lt = _targets(targets, log_target)
    p = torch.exp(lp)
    m = alpha * p + (1 - alpha) * t
    either = m > 0
    lm = _w(either, torch.log(_w(either, m, 1.0)))
    return (alpha * _xlogx_ratio(p, lp, lm) + (1 - alpha) * _xlogx_ratio(t, lt, lm)).sum(axis)


def total_variation_distance(lp, targets, *, log_target=False, axis=-1, **_):
    t, _ = _targets(targets, log_target)
    return 0.5 * (torch.exp(lp) - t).abs().sum(axis)


def hellinger_distance(lp, targets, *, squared=False, log_target=False, axis=-1, **_):
    t, _ = _targets(targets, log_target)
    sqrt_t = torch.exp(0.5 * targets) if log_target else torch.sqrt(t)
    h2 = 0.5 * ((torch.exp(0.5 * lp) - sqrt_t) ** 2).sum(axis)  # sqrt(p) = exp(lp / 2): finite gradient at p = 0
    return h2 if squared else torch.sqrt(h2)


def alpha_divergence(lp, targets, *, alpha=0.5, log_target=False, axis=-1, **_):
    t, lt = _targets(targets, log_target)
    p = torch.exp(lp)
    if alpha == 1:
        terms = _xlogx_ratio(t, lt, lp) - t + p
    elif alpha == 0:
        terms = _xlogx_ratio(p, lp, lt) - p + t
    else:
        pos = t > 0
        mix = _w(pos, torch.exp(alpha * _w(pos, lt) + (1 - alpha) * _w(pos, lp)))
        terms = (mix - alpha * t + (alpha - 1) * p) / (alpha * (alpha - 1))
    return terms.sum(axis)


def renyi_divergence(lp, targets, *, alpha=0.5, log_target=False, axis=-1, **_):
    t, lt = _targets(targets, log_target)
    if alpha == 1:
        return _xlogx_ratio(t, lt, lp).sum(axis)
    pos = t > 0
    expo = lp if alpha == 0 else alpha * _w(pos, lt) + (1 - alpha) * _w(pos, lp)
    expo = _w(pos, expo, -math.inf)
    return torch.logsumexp(expo, dim=axis) / (alpha - 1)


def tsallis_entropy(logits, *, q=2.0, **_):
    lp = F.log_softmax(logits, -1)
    p = torch.exp(lp)
    if q == 1:
        return _w(p > 0, -p * lp).sum(-1)
    return ((p - torch.exp(q * lp)) / (q - 1)).sum(-1)


# ------------------------------ samples ------------------------------


def _sq(x, y):
    return ((x[..., :, None, :] - y[..., None, :, :]) ** 2).sum(-1)


def _ot(cost, n, m, eps, iters):
    la = torch.full(cost.shape[:-1], -math.log(n))
    lb = torch.full(cost.shape[:-2] + cost.shape[-1:], -math.log(m))
    f = torch.zeros_like(la)
    g = torch.zeros_like(lb)
    for _ in range(iters):
        f = -eps * torch.logsumexp(lb[..., None, :] + (g[..., None, :] - cost) / eps, dim=-1)
        g = -eps * torch.logsumexp(la[..., :, None] + (f[..., :, None] - cost) / eps, dim=-2)
    return (f / n).sum(-1) + (g / m).sum(-1)


def sinkhorn_divergence(x, y, *, regularization=0.1, num_iterations=100, **_):
    n, m = x.shape[-2], y.shape[-2]
    ab = _ot(_sq(x, y), n, m, regularization, num_iterations)
    aa = _ot(_sq(x, x), n, n, regularization, num_iterations)
    bb = _ot(_sq(y, y), m, m, regularization, num_iterations)
    return ab - 0.5 * aa - 0.5 * bb


def _cs_compute_kernel(x1, x2, sigma):
    # SJYuCNEL/Cauchy-Schwarz-Information-Bottleneck@ee3142f Two_Gaussian_example/cs_two_gaussian.py::compute_kernel
    sqnorm1 = (x1**2).sum(dim=-1, keepdim=True)
    sqnorm2 = (x2**2).sum(dim=-1, keepdim=True)
    inner = x1 @ x2.T
    return torch.exp(-1.0 / (2 * sigma**2) * (sqnorm1 + sqnorm2.T - 2 * inner))


def _cs_loss(k1, k2, k12):
    # ...::CauchySchwarzLoss._compute_cs
    return -2 * torch.log(torch.sum(k12)) + torch.log(torch.sum(k1)) + torch.log(torch.sum(k2))


def cauchy_schwarz_divergence(x, y, *, bandwidth=1.0, **_):
    out = []
    for b in range(x.shape[0]):
        kxx = _cs_compute_kernel(x[b], x[b], bandwidth)
        kyy = _cs_compute_kernel(y[b], y[b], bandwidth)
        kxy = _cs_compute_kernel(x[b], y[b], bandwidth)
        out.append(_cs_loss(kxx, kyy, kxy))
    return torch.stack(out)


def bures_wasserstein_np(a, b, squared=True):
    a = 0.5 * (a + np.swapaxes(a, -1, -2))
    b = 0.5 * (b + np.swapaxes(b, -1, -2))
    out = []
    for ai, bi in zip(a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:]), strict=True):
        ra = np.real(scipy.linalg.sqrtm(ai))
        cross = np.real(np.trace(scipy.linalg.sqrtm(ra @ bi @ ra)))
        out.append(max(np.trace(ai) + np.trace(bi) - 2 * cross, 0.0))
    out = np.asarray(out).reshape(a.shape[:-2])
    return out if squared else np.sqrt(out)


class _EMALoss(torch.autograd.Function):
    # gtegner/mine-pytorch@4335819 mine/models/mine.py::EMALoss
    @staticmethod
    def forward(ctx, input, running_ema):
        ctx.save_for_backward(input, running_ema)
        return input.exp().mean().log()

    @staticmethod
    def backward(ctx, grad_output):
        input, running_mean = ctx.saved_tensors
        eps = 1e-6
        return grad_output * input.exp().detach() / (running_mean + eps) / input.shape[0], None


def mine_lower_bound(joint, marginal, *, state=None, variant="mine", decay=0.99, **_):
    # mine/models/mine.py::ema, ema_loss, Mine.forward (alpha = 1 - decay)
    running = math.exp(float(np.asarray(state["log_running_mean"]))) if state is not None else 0.0
    t = joint.mean()
    if variant == "mine":
        t_exp = torch.exp(torch.logsumexp(marginal, 0) - math.log(marginal.shape[0])).detach()
        running = t_exp if running == 0 else (1 - decay) * t_exp + decay * running
        second = _EMALoss.apply(marginal, torch.as_tensor(running))
        new = float(running)
    elif variant == "mine_f":
        second = torch.exp(marginal - 1).mean()
        new = running
    else:
        second = torch.logsumexp(marginal, 0) - math.log(marginal.shape[0])
        new = running
    return -t + second, np.log(np.float64(new)) if new > 0 else -np.inf


def itakura_saito_value_loss(v, g, *, risk_aversion=1.0, **_):
    u = risk_aversion * (v - g)
    return torch.expm1(u) - u


def bayesian_flow_loss(xhat, x, times, *, sigma_1=0.001, **_):
    # nnaisense/bayesian-flow-networks@834d896 model.py::CtsBayesianFlowLoss.cts_time_loss (min_variance = sigma_1^2),
    # summed over the data dimensions.
    min_variance = sigma_1**2
    c = -0.5 * math.log(min_variance)
    posterior_var = torch.pow(torch.tensor(min_variance), times)[:, None]
    mse = (xhat - x).reshape(x.shape[0], -1).square()
    return (c * mse / posterior_var).sum(-1)


# ------------------------------ upstream checks ------------------------------


def _optax_check(name, args, kw, value):
    """optax's own loss in float64 equals the generator's value (finite cases only)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import optax

    fn = {
        "kl_divergence": optax.losses.kl_divergence,
        "kl_divergence_with_log_targets": optax.losses.kl_divergence_with_log_targets,
        "generalized_kl_divergence": optax.losses.generalized_kl_divergence,
    }.get(name)
    if fn is None or kw.get("log_target") or not all(np.all(np.isfinite(a)) for a in args):
        return
    got = np.asarray(fn(np.asarray(args[0]), np.asarray(args[1])))
    np.testing.assert_allclose(got, value, rtol=1e-12, atol=1e-14, err_msg=f"{name}: optax disagrees")


def _scipy_check(name, args, kw, value):
    if name == "tsallis_entropy":
        if kw.get("q", 2.0) == 1:
            z = np.asarray(args[0])
            ref = scipy.stats.entropy(scipy.special.softmax(z, -1), axis=-1)
            np.testing.assert_allclose(ref, value, rtol=1e-9, atol=1e-12, err_msg=f"{name}: scipy disagrees")
        return
    if len(args) != 2 or np.ndim(args[0]) != 2:
        return
    lp, t = np.asarray(args[0]), np.asarray(args[1])
    if kw.get("log_target"):
        t = np.exp(t)
    p = np.exp(lp)
    ref = None
    if name == "kl_divergence":
        ref = scipy.special.rel_entr(t, p).sum(-1)
    elif name == "reverse_kl_divergence":
        ref = scipy.special.rel_entr(p, t).sum(-1)
    elif name == "generalized_kl_divergence":
        ref = scipy.special.kl_div(t, p).sum(-1)
    elif name == "jensen_shannon_divergence" and kw.get("alpha", 0.5) == 0.5 and not kw.get("log_target"):
        ref = scipy.spatial.distance.jensenshannon(p, t, axis=-1) ** 2
    if ref is not None and np.all(np.isfinite(ref)) and np.all(np.isfinite(lp)):
        # scipy renormalizes (jensenshannon): the float32-rounded inputs sum to 1 within ~1e-7.
        np.testing.assert_allclose(ref, value, rtol=1e-6, atol=1e-9, err_msg=f"{name}: scipy disagrees")


SOURCES = {
    "kl_divergence": (
        kl_divergence,
        f"{TORCH}: F.kl_div(lp, t, reduction='none', log_target=...).sum(-1) "
        "(= optax 0.2.8 kl_divergence and scipy rel_entr, checked; 0 log 0 = 0)",
    ),
    "kl_divergence_with_log_targets": (
        kl_divergence_with_log_targets,
        f"{TORCH}: F.kl_div(lp, lt, log_target=True)"
        " (= optax 0.2.8 kl_divergence_with_log_targets, checked; -inf log-targets 0)",
    ),
    "generalized_kl_divergence": (
        generalized_kl_divergence,
        f"{TORCH}: F.kl_div + sum(exp(lp) - t) (= optax 0.2.8 "
        "generalized_kl_divergence and scipy.special.kl_div, checked)",
    ),
    "reverse_kl_divergence": (reverse_kl_divergence, f"{TORCH} closed form (= scipy.special.rel_entr(p, t), checked)"),
    "jensen_shannon_divergence": (
        jensen_shannon_divergence,
        f"{TORCH} closed form (alpha = 0.5: = scipy.spatial."
        f"distance.jensenshannon ** 2, scipy {scipy.__version__}, checked)",
    ),
    "total_variation_distance": (total_variation_distance, f"{TORCH} closed form"),
    "hellinger_distance": (hellinger_distance, f"{TORCH} closed form"),
    "alpha_divergence": (alpha_divergence, f"{TORCH} closed form (Cichocki-Amari 2010, Eq. 4; limits alpha = 0, 1)"),
    "renyi_divergence": (renyi_divergence, f"{TORCH} closed form (torch.logsumexp over the target's support)"),
    "tsallis_entropy": (tsallis_entropy, f"{TORCH} closed form (q = 1: = scipy.stats.entropy, checked)"),
    "sinkhorn_divergence": (
        sinkhorn_divergence,
        f"{TORCH}: the same fixed-count log-domain Sinkhorn (f then g "
        "updates from 0, value <a,f> + <b,g>), debiased as ott-jax tools/sinkhorn_divergence.py",
    ),
    "cauchy_schwarz_divergence": (
        cauchy_schwarz_divergence,
        f"{TORCH}: port of SJYuCNEL/Cauchy-Schwarz-Information-"
        "Bottleneck@ee3142f Two_Gaussian_example/cs_two_gaussian.py (compute_kernel, "
        "CauchySchwarzLoss), per batch entry",
    ),
    "mine_lower_bound": (
        mine_lower_bound,
        f"{TORCH}: port of gtegner/mine-pytorch@4335819 mine/models/mine.py "
        "(Mine.forward, ema_loss, EMALoss with EPS = 1e-6; alpha = 1 - decay); state = log running "
        "mean",
    ),
    "itakura_saito_value_loss": (itakura_saito_value_loss, f"{TORCH} closed form: expm1(u) - u, u = b (V - G)"),
    "bayesian_flow_loss": (
        bayesian_flow_loss,
        f"{TORCH}: port of nnaisense/bayesian-flow-networks@834d896 "
        "model.py::CtsBayesianFlowLoss.cts_time_loss, summed over the data dimensions",
    ),
}


def main() -> None:
    inputs = E.load_inputs(FAMILY)
    records = {}
    for name, entry in inputs.items():
        cases = []
        if name == "bures_wasserstein_distance":
            for case in entry["cases"]:
                args, kw = E.case_inputs(case)
                squared = kw.get("squared", True)
                f = lambda a, b, s=squared: bures_wasserstein_np(a, b, s)  # noqa: E731
                value = f(*args)
                grads = E.numeric_grads(f, list(args), entry["diff_argnums"], step=1e-6)
                cases.append(E.expected_case(case, value, grads))
            records[name] = {
                "source": f"scipy {scipy.__version__} linalg.sqrtm closed form on the symmetrized inputs (float64); "
                "gradients by central differences",
                "cases": cases,
            }
            continue
        if name not in SOURCES:
            print(f"skipped {name}: no generator here")
            continue
        fn, source = SOURCES[name]
        for case in entry["cases"]:
            args, kw = E.case_inputs(case)
            if name == "mine_lower_bound":
                state = kw.get("state")
                holder = {}

                def run(*a, _kw=kw, _holder=holder, _fn=fn):
                    loss, new = _fn(*a, **_kw)
                    _holder["new"] = new
                    return loss

                value, grads = E.torch_value_and_grads(run, list(args), entry["diff_argnums"])
                del state
                cases.append(E.expected_case(case, value, grads, aux=[np.float64(holder["new"])]))
                continue
            value, grads = E.torch_value_and_grads(fn, list(args), entry["diff_argnums"], **kw)
            v = value.detach().numpy()
            _optax_check(name, args, kw, v)
            _scipy_check(name, args, kw, v)
            cases.append(E.expected_case(case, value, grads))
        records[name] = {"source": source, "cases": cases}
    path = E.write_expected(FAMILY, records)
    print(f"wrote {path}: {sorted(records)}")


if __name__ == "__main__":
    main()
