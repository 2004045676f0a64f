"""Expected values of the weighting family -> lossjax/expected/weighting.json (never imports lossjax).

Inputs: tests/reference/inputs/weighting.json (``python tests/reference/dump_inputs.py --family weighting``).
The transforms follow the protocol of lossjax.testing.transform_steps (2 steps, fixed per-loss
gradients and ``losses=``; see make_expected_multitask.py, whose helpers are reused), in float64 torch:

- uncertainty_weighted_loss  LibMTL@4336804 LibMTL/weighting/UW.py: sum(L/(2 exp(s)) + s/2) for regression
                             terms; classification terms exp(-s) L + s/2 (Kendall et al. 2018, eq. 10);
                             value and gradients by torch autograd
- uncertainty_weighting      the same total; update = dTotal/dL-weighted gradients, then torch.optim.Adam
                             on s (the log-variances)
- dwa                        LibMTL@4336804 LibMTL/weighting/DWA.py (weights 1 for the first two calls)
- rlw                        LibMTL@4336804 LibMTL/weighting/RLW.py: softmax(z); z drawn by jax.random
                             (normal / uniform / dirichlet) from the sample's key (an input)
- gradnorm                   LibMTL@4336804 LibMTL/weighting/GradNorm.py with torch.optim.Adam on the logits
- famo                       Cranial-XIX/FAMO@0a6ad06 famo.py::FAMO (get_weighted_loss, update;
                             torch.optim.Adam(weight_decay)); the weights by autograd of its weighted loss
- gls                        LibMTL@4336804 LibMTL/weighting/GLS.py: its loss (prod L)^(1/m) differentiated
                             by torch autograd with respect to the losses, times the gradients

- vae_balanced_elbo          asperti/BalancingVAE@6fcdfc3 computed_gamma.py (stage-1 loss and running-MSE
                             gamma), float64 torch autograd; the new state as aux

Run: python tests/reference/make_expected_weighting.py
"""

from __future__ import annotations

import os
import sys
import warnings

os.environ.setdefault("JAX_PLATFORMS", "cpu")
warnings.filterwarnings("ignore")

import jax  # noqa: E402  (PRNG draws only)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from expected_io import (  # noqa: E402
    case_inputs,
    decode,
    encode,
    expected_case,
    load_inputs,
    torch_value_and_grads,
    write_expected,
)
from make_expected_multitask import raw_key, steps, t  # noqa: E402

torch.set_default_dtype(torch.float64)
FAMILY = "weighting"
LIBMTL = "LibMTL@4336804847eaa5e0b924b743d76beec7ac3fdc97"


def scale_of(classification, m):
    """c_i: 1/2 for regression terms (LibMTL's UW), 1 for classification terms (Kendall et al.)."""
    if classification is None:
        return torch.full((m,), 0.5)
    return torch.tensor([1.0 if f else 0.5 for f in classification])


def uw_total(losses, log_vars, classification=None):
    c = scale_of(classification, losses.shape[0])
    return (c * losses * torch.exp(-log_vars) + log_vars / 2).sum()


def uncertainty_weighted_loss(entry):
    cases = []
    for case in entry["cases"]:
        args, kwargs = case_inputs(case)
        out, grads = torch_value_and_grads(uw_total, args, entry["diff_argnums"], **kwargs)
        cases.append(expected_case(case, out, grads))
    return cases


def stch(losses, mu=1.0, weights=None, ideal_point=None):
    x = losses
    if ideal_point is not None:
        x = x - t(ideal_point)
    if weights is not None:
        x = x * t(weights)
    return mu * torch.logsumexp(x / mu, dim=-1)


def smooth_tchebycheff_loss(entry):
    cases = []
    for case in entry["cases"]:
        args, kwargs = case_inputs(case)
        out, grads = torch_value_and_grads(stch, args, entry["diff_argnums"], **kwargs)
        cases.append(expected_case(case, out, grads))
    return cases


def losses_of(case):
    return t(decode(case["extra_args"])["losses"])


def uncertainty_weighting(case, hp):
    m = hp["num_losses"]
    s = torch.full((m,), float(hp.get("init_log_var", 0.0)), requires_grad=True)
    opt = torch.optim.Adam([s], lr=hp.get("learning_rate", 1e-2))
    L = losses_of(case)
    cls = hp.get("classification")

    def step(J, k):
        w = (scale_of(cls, m) * torch.exp(-s)).detach()  # dTotal/dL_i: the weight of g_i
        opt.zero_grad()
        uw_total(L, s, cls).backward()
        opt.step()
        return w.numpy() @ J

    return step


def dwa(case, hp):
    m, T = hp["num_losses"], hp.get("temperature", 2.0)
    buffer = []  # LibMTL's train_loss_buffer columns (one per call)

    def step(J, k):
        epoch = len(buffer)
        if epoch > 1:
            w_i = torch.tensor(buffer[epoch - 1] / buffer[epoch - 2])
            w = m * F.softmax(w_i / T, dim=-1)
        else:
            w = torch.ones(m)
        buffer.append(decode(case["extra_args"])["losses"])
        return w.numpy() @ J

    return step


def rlw(case, hp):
    dist = hp.get("distribution", "normal")
    key = raw_key(case)

    def step(J, k):
        m = J.shape[0]
        if dist == "normal":
            z = jax.random.normal(key, (m,), jax.numpy.float32)
        elif dist == "uniform":
            z = jax.random.uniform(key, (m,), jax.numpy.float32)
        else:
            z = jax.random.dirichlet(key, jax.numpy.ones((m,), jax.numpy.float32))
        w = F.softmax(t(np.asarray(z)), dim=-1)  # LibMTL RLW: softmax of the draw
        return w.numpy() @ J

    return step


def gradnorm(case, hp):
    m, alpha = hp["num_losses"], hp.get("alpha", 1.5)
    scale = torch.zeros(m, requires_grad=True)  # LibMTL inits 1.0: the same softmax, the same Adam steps
    opt = torch.optim.Adam([scale], lr=hp.get("learning_rate", 1e-2))
    L = decode(case["extra_args"])["losses"]
    first = {}

    def step(J, k):
        g = t(J)
        if k == 0:  # LibMTL's epoch 0: weights 1, the loss buffer's first column recorded
            first["L0"] = L
            return np.ones(m) @ J
        opt.zero_grad()
        loss_scale = m * F.softmax(scale, dim=-1)
        G_per_loss = torch.norm(loss_scale.unsqueeze(1) * g, p=2, dim=-1)
        G = G_per_loss.mean(0)
        L_i = t(L / first["L0"])
        r_i = L_i / L_i.mean()
        constant_term = (G * (r_i**alpha)).detach()
        (G_per_loss - constant_term).abs().sum(0).backward()
        w = loss_scale.detach().clone()
        opt.step()
        return w.numpy() @ J

    return step


class FAMO:
    """Cranial-XIX/FAMO@0a6ad06 famo.py::FAMO, verbatim but for the device and the configurable epsilon."""

    def __init__(self, n_tasks, gamma=1e-5, w_lr=0.025, min_losses=None, epsilon=1e-8):
        self.min_losses = torch.zeros(n_tasks) if min_losses is None else t(min_losses)
        self.w = torch.tensor([0.0] * n_tasks, requires_grad=True)
        self.w_opt = torch.optim.Adam([self.w], lr=w_lr, weight_decay=gamma)
        self.eps = epsilon

    def get_weighted_loss(self, losses):
        self.prev_loss = losses
        z = F.softmax(self.w, -1)
        D = losses - self.min_losses + self.eps
        c = (z / D).sum().detach()
        loss = (D.log() * z / c).sum()
        return loss

    def update(self, curr_loss):
        delta = (self.prev_loss - self.min_losses + self.eps).log() - (curr_loss - self.min_losses + self.eps).log()
        with torch.enable_grad():
            d = torch.autograd.grad(F.softmax(self.w, -1), self.w, grad_outputs=delta.detach())[0]
        self.w_opt.zero_grad()
        self.w.grad = d
        self.w_opt.step()


def famo(case, hp):
    m = hp["num_losses"]
    ref = FAMO(
        m,
        gamma=hp.get("weight_decay", 1e-3),
        w_lr=hp.get("learning_rate", 0.025),
        min_losses=hp.get("min_losses"),
        epsilon=hp.get("epsilon", 1e-8),
    )

    def step(J, k):
        L = losses_of(case).requires_grad_(True)
        if k > 0:
            ref.update(L.detach())
        (w,) = torch.autograd.grad(ref.get_weighted_loss(L), L)  # d loss / d L_i: the weight of g_i
        return w.numpy() @ J

    return step


def gls(case, hp):
    L = losses_of(case).clone().requires_grad_(True)
    m = L.shape[0]
    (w,) = torch.autograd.grad(torch.pow(L.prod(), 1.0 / m), L)  # LibMTL GLS.backward's loss
    return lambda J, k: w.numpy() @ J


METHODS = {
    "gls": gls,
    "uncertainty_weighting": uncertainty_weighting,
    "dwa": dwa,
    "rlw": rlw,
    "gradnorm": gradnorm,
    "famo": famo,
}
SOURCES = {
    "gls": f"{LIBMTL} LibMTL/weighting/GLS.py: torch autograd of (prod L)^(1/m) with respect to the losses",
    "uncertainty_weighted_loss": f"{LIBMTL} LibMTL/weighting/UW.py (regression terms L/(2 exp(s)) + s/2); "
    "classification terms exp(-s) L + s/2 (Kendall et al. 2018, eq. 10); torch autograd",
    "uncertainty_weighting": f"{LIBMTL} LibMTL/weighting/UW.py total, weights exp(-s)/2 (1 for classification), "
    "torch.optim.Adam on s",
    "smooth_tchebycheff_loss": "closed form mu * logsumexp(w (L - z) / mu) (arXiv:2402.19078 eq. 6), torch float64",
    "dwa": f"{LIBMTL} LibMTL/weighting/DWA.py",
    "rlw": f"{LIBMTL} LibMTL/weighting/RLW.py (softmax of the draw; draws by jax.random from the sample's key)",
    "gradnorm": f"{LIBMTL} LibMTL/weighting/GradNorm.py with torch.optim.Adam on the weight logits",
    "famo": "Cranial-XIX/FAMO@0a6ad06dbdd55fce73ec01e3a175c2498cd1e5e9 famo.py::FAMO (torch.optim.Adam(weight_decay))",
}


def balanced_elbo(predictions, targets, kl, *, state=None, decay=0.99, kl_weight=1.0, epsilon=1e-12):
    """asperti/BalancingVAE@6fcdfc3 computed_gamma.py: TwoStageVaeModel.__build_loss (gen_loss1, loss1 with
    k = kl_weight) and main's stage-1 update mseloss = min(mseloss, .99 mseloss + .01 batch mse), gamma = sqrt(mse).
    Upstream rounds log(2 pi) / 2 to 0.91893; the exact constant here."""
    import math

    mse = 1.0 if state is None else float(np.asarray(state["mse"]))
    gamma_x = math.sqrt(max(mse, epsilon))
    b = predictions.shape[0]
    half_log_two_pi = 0.5 * math.log(2.0 * math.pi)
    gen_loss = torch.sum(((targets - predictions) / gamma_x) ** 2 / 2.0 + math.log(gamma_x) + half_log_two_pi) / b
    kl_loss = torch.sum(kl) / b
    batch_mse = float(torch.mean((targets - predictions) ** 2))
    return kl_weight * kl_loss + gen_loss, min(mse, mse * decay + batch_mse * (1 - decay))


def vae_balanced_elbo(entry):
    cases = []
    for case in entry["cases"]:
        args, kwargs = case_inputs(case)
        holder = {}

        def run(*a, _kw=kwargs, _holder=holder):
            loss, new = balanced_elbo(*a, **_kw)
            _holder["new"] = new
            return loss

        out, grads = torch_value_and_grads(run, args, entry["diff_argnums"])
        cases.append(expected_case(case, out, grads, aux=[np.float64(holder["new"])]))
    return cases


SOURCES["vae_balanced_elbo"] = (
    "asperti/BalancingVAE@6fcdfc3997ffc913ecd79fe22cbac1c46fdec33f computed_gamma.py::TwoStageVaeModel.__build_loss, "
    "main (stage-1 running MSE) ported to float64 torch; value, gradients (autograd) and the new state"
)


def main():
    data = load_inputs(FAMILY)
    records = {}
    for name, entry in sorted(data.items()):
        if name == "uncertainty_weighted_loss":
            cases = uncertainty_weighted_loss(entry)
        elif name == "smooth_tchebycheff_loss":
            cases = smooth_tchebycheff_loss(entry)
        elif name == "vae_balanced_elbo":
            cases = vae_balanced_elbo(entry)
        else:
            cases = []
            for case in entry["cases"]:
                outs = steps(case, METHODS[name](case, decode(case["hyperparams"])))
                cases.append(
                    {
                        "case": case["case"],
                        "variant": case["variant"],
                        "fingerprint": case["fingerprint"],
                        "steps_updates": [encode(o) for o in outs],
                    }
                )
        records[name] = {"source": SOURCES[name], "cases": cases}
        print(f"{name}: {len(cases)} cases")
    print("wrote", write_expected(FAMILY, records))


if __name__ == "__main__":
    main()
