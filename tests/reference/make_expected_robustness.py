"""Expected outputs of the robustness family's conformance value cases (``lossjax/expected/robustness.json``).

Independent float64 torch implementations, never lossjax (run in the reference environment)::

    python tests/reference/dump_inputs.py --family robustness      # the inputs (lossjax env)
    python tests/reference/make_expected_robustness.py              # torch 2.13.0

Ports, each pinned to its upstream file:

- VAT: takerum/vat_tf@23c1610 ``vat.py`` (``generate_virtual_adversarial_perturbation``,
  ``virtual_adversarial_loss``, ``get_normalized_vector``) and ``layers.py::kl_divergence_with_logit``,
  per example instead of the batch mean (the batch mean only rescales the power-iteration gradient,
  which is normalized away).
- PGD / TRADES: yaodongyu/TRADES@9d308f1 ``trades.py::trades_loss`` (its ``l_inf`` loop and its ``l_2``
  branch: SGD on delta with normalized gradients, clamp, ``renorm``), per example.
- MART: YisenWang/MART@2514b7e ``mart.py::mart_loss``, per example.
- gradient_norm_penalty, parameter_gradient_norm_penalty: closed forms with torch double backprop
  (``create_graph=True``).
- kl_dro_instance_weights: the closed form (torch softmax); norm_loss_regularizer: the paper's formula.
- WEAT: OmnAI-Lab/Robust-Classifiers-under-the-lens-of-EBM@b58e362 ``Adversarial ML/WEAT_loss.py``
  (``WEAT_nat``, ``WEAT_adv``: TRADES's PGD on ``KLDivLoss(log(softmax + 1e-12), softmax)``, energy weights
  ``1 / log(1 + exp(|E|))``), per example instead of the batch mean.
- RIDG: liangchen527/RIDG@34501b2 ``domainbed/algorithms.py::RIDG.update`` (its per-class loop over the
  rationale tensor ``[K, N, D]``, the bank update, ``.sum(dim=2).mean()``), with the bank passed in and out.
- HR: RyanLucas3/HR_Neural_Networks@f6d952d ``HR_Neural_Networks/HR.py`` (``_initialise_HD_problem``, the default
  ``learning_approach="HD"``, and ``HR_criterion``'s ``dot(w[:N], loss) + max(loss) * w[N]`` with the solved
  weights as constants), the conic problem solved by cvxpy 1.9.3 with Clarabel at tight tolerances.
- SOVR: the paper's definition (no official code is public), written per example with a Python sort.

The random starts (VAT's ``d``, PGD's ``0.001 * N(0, I)``) are drawn from the case's PRNG key with
``jax.random.normal(key, shape, float32)`` (the injected randomness both implementations share), then
computed in float64. The samples' model is ``tanh(x W1) W2`` with the weights in the case's kwargs.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expected_io as E

FAMILY = "robustness"
torch.set_default_dtype(torch.float64)


def _noise(key: dict, shape) -> torch.Tensor:
    import jax
    import jax.numpy as jnp

    k = jax.random.wrap_key_data(jnp.asarray(key["prng_key_data"], jnp.uint32))
    return torch.tensor(np.asarray(jax.random.normal(k, tuple(shape), jnp.float32), np.float64))


def _model(w: dict):
    w1, w2 = torch.tensor(w["w1"]), torch.tensor(w["w2"])
    return lambda x: torch.tanh(x.reshape(x.shape[0], -1) @ w1) @ w2


def _objective(w: dict):
    f = _model(w)

    def obj(x):
        z = f(x)
        return torch.logsumexp(z, -1) - z[:, 0]

    return obj


def _kl_logit(q_logit, p_logit):  # vat_tf layers.kl_divergence_with_logit, per example
    q = torch.softmax(q_logit, 1)
    return (q * torch.log_softmax(q_logit, 1)).sum(1) - (q * torch.log_softmax(p_logit, 1)).sum(1)


def _normalized(d):  # vat_tf vat.get_normalized_vector
    axes = tuple(range(1, d.dim()))
    d = d / (1e-12 + d.abs().amax(dim=axes, keepdim=True))
    return d / torch.sqrt(1e-6 + (d**2).sum(dim=axes, keepdim=True))


def vat(x, logits, *, apply_fn, key, xi=1e-6, radius=8.0, num_iterations=1):
    forward = _model(apply_fn)
    logit = logits.detach()
    d = _noise(key, x.shape)
    for _ in range(num_iterations):
        d = (xi * _normalized(d)).requires_grad_(True)
        dist = _kl_logit(logit, forward(x.detach() + d)).sum()
        d = torch.autograd.grad(dist, [d])[0].detach()
    r_vadv = radius * _normalized(d)
    return _kl_logit(logit, forward(x + r_vadv.detach()))


def _pgd(objective, x_natural, key, radius, step_size, num_iterations, norm, clip_min, clip_max, random_start):
    """TRADES's two loops (objective per example, summed like criterion_kl(size_average=False))."""

    def clamp(t):
        if clip_min is not None:
            t = torch.clamp(t, min=clip_min)
        if clip_max is not None:
            t = torch.clamp(t, max=clip_max)
        return t

    x_natural = x_natural.detach()
    noise = random_start * _noise(key, x_natural.shape)
    if norm == "linf":
        x_adv = x_natural + noise
        for _ in range(num_iterations):
            x_adv.requires_grad_()
            grad = torch.autograd.grad(objective(x_adv).sum(), [x_adv])[0]
            x_adv = x_adv.detach() + step_size * torch.sign(grad.detach())
            x_adv = torch.min(torch.max(x_adv, x_natural - radius), x_natural + radius)
            x_adv = clamp(x_adv)
    else:
        delta = noise.clone().requires_grad_(True)
        optimizer = torch.optim.SGD([delta], lr=step_size)
        for _ in range(num_iterations):
            optimizer.zero_grad()
            loss = -objective(x_natural + delta).sum()
            loss.backward()
            norms = delta.grad.reshape(delta.shape[0], -1).norm(p=2, dim=1)
            shape = (-1,) + (1,) * (delta.dim() - 1)
            # TRADES replaces a zero gradient by a random one; lossjax takes no step there (none in the samples)
            assert bool((norms > 0).all())
            delta.grad.div_(norms.view(shape))
            optimizer.step()
            with torch.no_grad():
                delta.add_(x_natural)
                delta.copy_(clamp(delta)).sub_(x_natural)
                delta.renorm_(p=2, dim=0, maxnorm=radius)
        x_adv = x_natural + delta.detach()
    return clamp(x_adv).detach()


_PGD_DEFAULTS = dict(
    radius=0.031, step_size=0.007, num_iterations=10, norm="linf", clip_min=0.0, clip_max=1.0, random_start=0.001
)


def _pgd_kw(kw):
    return {k: kw.get(k, v) for k, v in _PGD_DEFAULTS.items()}


def pgd(x, *, objective_fn, key, **kw):
    return _pgd(_objective(objective_fn), x, key, **_pgd_kw(kw))


def trades(x, y, *, apply_fn, key, beta=6.0, **kw):
    model = _model(apply_fn)
    y = torch.as_tensor(y, dtype=torch.long)
    kl = torch.nn.KLDivLoss(reduction="none")
    p_nat = torch.softmax(model(x), 1).detach()
    x_adv = _pgd(lambda xa: kl(torch.log_softmax(model(xa), 1), p_nat).sum(1), x, key, **_pgd_kw(kw))
    logits = model(x)
    natural = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    robust = kl(torch.log_softmax(model(x_adv), 1), torch.softmax(model(x), 1)).sum(1)
    return natural + beta * robust


def mart(x, y, *, apply_fn, key, beta=6.0, **kw):
    model = _model(apply_fn)
    y = torch.as_tensor(y, dtype=torch.long)
    kw = {**_pgd_kw(kw), "norm": "linf"}
    x_adv = _pgd(lambda xa: torch.nn.functional.cross_entropy(model(xa), y, reduction="none"), x, key, **kw)
    kl = torch.nn.KLDivLoss(reduction="none")
    logits = model(x)
    logits_adv = model(x_adv)
    adv_probs = torch.softmax(logits_adv, dim=1)
    tmp1 = torch.argsort(adv_probs, dim=1)[:, -2:]
    new_y = torch.where(tmp1[:, -1] == y, tmp1[:, -2], tmp1[:, -1])
    loss_adv = torch.nn.functional.cross_entropy(logits_adv, y, reduction="none") + torch.nn.functional.nll_loss(
        torch.log(1.0001 - adv_probs + 1e-12), new_y, reduction="none"
    )
    nat_probs = torch.softmax(logits, dim=1)
    true_probs = torch.gather(nat_probs, 1, (y.unsqueeze(1)).long()).squeeze(1)
    loss_robust = torch.sum(kl(torch.log(adv_probs + 1e-12), nat_probs), dim=1) * (1.0000001 - true_probs)
    return loss_adv + float(beta) * loss_robust


def gnp(x, *, apply_fn, target_norm=0.0):
    f = _objective(apply_fn)
    g = torch.autograd.grad(f(x).sum(), [x], create_graph=True)[0]
    norm = g.reshape(g.shape[0], -1).norm(dim=1)
    return norm**2 if target_norm == 0 else (norm - target_norm) ** 2


def pgnp(params, *, loss_fn, target_norm=0.0):
    x, y = torch.tensor(loss_fn["x"]), torch.as_tensor(loss_fn["y"], dtype=torch.long)
    loss = torch.nn.functional.cross_entropy(x @ params, y)
    g = torch.autograd.grad(loss, [params], create_graph=True)[0]
    sq = (g**2).sum()
    return sq if target_norm == 0 else (sq.sqrt() - target_norm) ** 2


def kl_dro(losses, *, temperature=1.0, stop_gradient_weights=True):
    q = torch.softmax(losses / temperature, dim=-1)
    return q.detach() if stop_gradient_weights else q


def norm_loss(kernels, *, target_norm=1.0):
    return (target_norm - kernels.reshape(kernels.shape[0], -1).norm(dim=1)) ** 2


def weat(x, y, *, apply_fn, key, variant="nat", beta=6.0, **kw):
    model = _model(apply_fn)
    y = torch.as_tensor(y, dtype=torch.long)
    kw = {**_PGD_DEFAULTS, "radius": 8.0 / 255.0, "step_size": 2.0 / 255.0, **kw, "norm": "linf"}
    kl = torch.nn.KLDivLoss(reduction="none")
    p_nat = torch.softmax(model(x), 1).detach()
    x_adv = _pgd(lambda xa: kl(torch.log(torch.softmax(model(xa), 1) + 1e-12), p_nat).sum(1), x, key, **kw)
    logits = model(x)
    adv_logits = model(x_adv)
    e_x = (-torch.logsumexp(logits, dim=1)).detach()
    weights = 1 / torch.log(1 + torch.exp(torch.abs(e_x)))
    ce = torch.nn.functional.cross_entropy(logits if variant == "nat" else adv_logits, y, reduction="none")
    loss_kl = torch.sum(kl(torch.log(torch.softmax(adv_logits, dim=1) + 1e-12), torch.softmax(logits, dim=1)), dim=1)
    return weights * (ce + beta * loss_kl)


def ridg(features, all_y, weight, *, state, decay=0.999):
    momentum = 1.0 - decay  # the reference's hparams["momentum"]
    all_y = torch.as_tensor(all_y, dtype=torch.long)
    num_classes = weight.shape[0]
    rational_bank = torch.tensor(state["means"]).clone()
    init = torch.tensor(~np.asarray(state["initialized"], bool))
    rational = torch.zeros(num_classes, features.shape[0], features.shape[1])
    for i in range(num_classes):
        rational[i] = weight[i] * features
    classes = torch.unique(all_y)
    loss_rational = 0
    for i in range(classes.shape[0]):
        rational_mean = rational[:, all_y == classes[i]].mean(dim=1)
        if init[classes[i]]:
            rational_bank[classes[i]] = rational_mean
            init[classes[i]] = False
        else:
            rational_bank[classes[i]] = (1 - momentum) * rational_bank[classes[i]] + momentum * rational_mean
        diff = rational[:, all_y == classes[i]] - (rational_bank[classes[i]].unsqueeze(1)).detach()
        loss_rational += (diff**2).sum(dim=2).mean()
    return loss_rational, [rational_bank.detach(), (~init).numpy()]


def hr(losses, *, alpha=0.05, kl_radius=0.1, num_iterations=64):
    import cvxpy as cp

    n = losses.shape[0]
    nn_loss = losses.detach().numpy()
    pemp = 1 / n * np.ones(n)
    a = cp.Constant(alpha if alpha != 0 else 0.000001)  # HR_Neural_Networks.__init__
    r = cp.Constant(kl_radius)
    p = cp.Variable(shape=n + 1, nonneg=True)
    q = cp.Variable(shape=n + 1, nonneg=True)
    s = cp.Variable(shape=n, nonneg=True)
    worst = np.max(nn_loss)
    objective = cp.Maximize(cp.sum(cp.multiply(p[0:n], nn_loss)) + p[n] * worst)
    t = cp.Variable(name="t", shape=n + 1)
    constraints = [cp.sum(p) == 1, cp.sum(q) == 1, cp.constraints.exponential.ExpCone(-1 * t, q, p)]
    constraints += [cp.sum(t) <= r, cp.sum(s) <= a, q[0:n] + s == pemp]
    cp.Problem(objective=objective, constraints=constraints).solve(
        solver=cp.CLARABEL, tol_gap_abs=1e-13, tol_gap_rel=1e-13, tol_feas=1e-13, tol_ktratio=1e-10, max_iter=500
    )
    weights = torch.tensor(p.value)
    return torch.dot(weights[0:n], losses) + torch.max(losses) * weights[n]


def sovr(logits, labels, *, switch_fraction=0.4):
    """SOVR (Kanai et al. 2023, arXiv:2207.10283, eqs. of section 4) per example, written from the paper's
    definition: rank the batch by the logit margin z_y - max_{j != y} z_j (ties by position), the floor(M n)
    smallest get -log sigmoid(z_y) - sum_{j != y} log sigmoid(-z_j), the others cross-entropy."""
    labels = torch.as_tensor(np.asarray(labels)).long()
    n, c = logits.shape
    with torch.no_grad():
        margins = []
        for i in range(n):
            y = int(labels[i])
            others = [float(logits[i, j]) for j in range(c) if j != y]
            margins.append(float(logits[i, y]) - max(others))
    order = sorted(range(n), key=lambda i: (margins[i], i))
    chosen = set(order[: int(np.floor(switch_fraction * n))])
    out = []
    for i in range(n):
        y = int(labels[i])
        if i in chosen:
            rest = [torch.nn.functional.softplus(logits[i, j]) for j in range(c) if j != y]
            out.append(torch.nn.functional.softplus(-logits[i, y]) + torch.stack(rest).sum())
        else:
            out.append(-torch.log_softmax(logits[i], dim=0)[y])
    return torch.stack(out)


REFERENCES = {
    "one_vs_rest_switching_loss": (
        sovr,
        "closed form from the paper (Kanai et al. 2023, arXiv:2207.10283; no official code), torch 2.13.0 float64",
    ),
    "virtual_adversarial_loss": (vat, "takerum/vat_tf@23c1610 vat.py (torch float64 port, per example)"),
    "pgd_perturbation": (pgd, "yaodongyu/TRADES@9d308f1 trades.py PGD loops (torch float64 port)"),
    "trades_loss": (trades, "yaodongyu/TRADES@9d308f1 trades.py::trades_loss (torch float64 port, per example)"),
    "mart_loss": (mart, "YisenWang/MART@2514b7e mart.py::mart_loss (torch float64 port, per example)"),
    "gradient_norm_penalty": (gnp, "closed form, torch 2.13.0 float64 double backprop"),
    "parameter_gradient_norm_penalty": (pgnp, "closed form, torch 2.13.0 float64 double backprop of F.cross_entropy"),
    "kl_dro_instance_weights": (kl_dro, "closed form, torch 2.13.0 float64 softmax"),
    "norm_loss_regularizer": (norm_loss, "Norm Loss (arXiv:2103.06583) formula, torch 2.13.0 float64"),
    "weighted_energy_adversarial_training": (
        weat,
        "OmnAI-Lab/Robust-Classifiers-under-the-lens-of-EBM@b58e362 WEAT_loss.py (torch float64 port, per example)",
    ),
    "holistic_robust_loss": (
        hr,
        "RyanLucas3/HR_Neural_Networks@f6d952d HR.py HD problem (cvxpy 1.9.3 + Clarabel, float64)",
    ),
    "rationale_invariance_loss": (ridg, "liangchen527/RIDG@34501b2 algorithms.py::RIDG.update (torch float64 port)"),
}


def main() -> None:
    inputs = E.load_inputs(FAMILY)
    records = {}
    for name, entry in inputs.items():
        fn, source = REFERENCES[name]
        diff = entry["diff_argnums"]
        cases = []
        for case in entry["cases"]:
            args, kw = E.case_inputs(case)
            out, grads = E.torch_value_and_grads(fn, list(args), diff, **kw)
            out, aux = out if isinstance(out, tuple) else (out, None)
            assert np.all(np.isfinite(out.detach().numpy())), (name, case["case"])
            cases.append(E.expected_case(case, out, grads, aux))
        records[name] = {"source": source, "cases": cases}
    path = E.write_expected(FAMILY, records)
    print(f"wrote {path}: {len(records)} entries")


if __name__ == "__main__":
    main()
