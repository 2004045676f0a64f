"""Golden values for the SAM family (tests/transforms/test_sam.py reads sam.json).

Run once: ``python tests/reference/make_sam.py``. Uses torch (2.13.0, CPU) only here.
No reference package is on PyPI, so each official update rule is ported line by
line, in float64, from its repository (paths below) and run on one tiny model:

    z = tanh(x @ W + b),  loss = mean((z - y)^2),  W [3, 2], b [2], x [5, 3], y [5, 2]

* sam          davda54/sam sam.py::SAM.first_step (rho/(||g|| + 1e-12)) and
               google-research/sam sam_jax/training_utils/flax_training.py::dual_vector (no epsilon)
* asam         SamsungLabs/ASAM asam.py::ASAM.ascent_step (T = |w| + eta on params named 'weight')
* gsam         juntang-zhuang/GSAM gsam/gsam.py::GSAM.perturb_weights + gradient_decompose
* friendly_sam nblt/F-SAM FriendlySAM.first_step, two steps on two batches (momentum buffer)
* awp          csdongxian/AWP AT_AWP/utils_awp.py::AdvWeightPerturb.calc_awp + diff_in_weights
               (proxy: SGD lr 0.01 on -loss; only 'weight' tensors with dim > 1)
"""

import json
import pathlib

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
HERE = pathlib.Path(__file__).resolve().parent


def data(seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(5, 3)), rng.normal(size=(5, 2))


def init_params():
    rng = np.random.default_rng(0)
    return {"weight": rng.normal(size=(3, 2)), "bias": 0.1 * rng.normal(size=(2,))}


def loss_fn(p, x, y):
    z = torch.as_tensor(x) @ p["weight"]
    z = torch.tanh(z + p["bias"] if "bias" in p else z)
    return torch.mean((z - torch.as_tensor(y)) ** 2)


def tensors(np_params):
    return {k: torch.tensor(v, requires_grad=True) for k, v in np_params.items()}


def grads(p, x, y):
    for t in p.values():
        t.grad = None
    loss_fn(p, x, y).backward()
    return {k: t.grad.detach().clone() for k, t in p.items()}


def grad_norm(g):
    return torch.norm(torch.stack([t.norm(p=2) for t in g.values()]), p=2)


def sam_davda54(np_params, x, y, rho):
    p = tensors(np_params)
    g = grads(p, x, y)
    scale = rho / (grad_norm(g) + 1e-12)
    with torch.no_grad():
        for k, t in p.items():
            t.add_(g[k] * scale)
    return grads(p, x, y)


def sam_google_research(np_params, x, y, rho):
    # dual_vector: y / sqrt(sum of squares), no epsilon; noised = w + rho * dual
    p = tensors(np_params)
    g = grads(p, x, y)
    norm = torch.sqrt(sum(torch.sum(torch.square(t)) for t in g.values()))
    with torch.no_grad():
        for k, t in p.items():
            t.add_(rho * g[k] / norm)
    return grads(p, x, y)


def asam_samsung(np_params, x, y, rho, eta):
    p = tensors(np_params)
    g = grads(p, x, y)
    wgrads, t_ws = [], {}
    for n, t in p.items():
        t_w = torch.ones_like(t)
        if "weight" in n:
            t_w = torch.abs(t.detach()) + eta
            g[n] = g[n] * t_w
        t_ws[n] = t_w
        wgrads.append(torch.norm(g[n], p=2))
    wgrad_norm = torch.norm(torch.stack(wgrads), p=2) + 1.0e-16
    with torch.no_grad():
        for n, t in p.items():
            if "weight" in n:
                g[n] = g[n] * t_ws[n]
            t.add_(g[n] * (rho / wgrad_norm))
    return grads(p, x, y)


def gsam_zhuang(np_params, x, y, rho, alpha, perturb_eps=1e-12):
    p = tensors(np_params)
    old_g = grads(p, x, y)
    scale = rho / (grad_norm(old_g) + perturb_eps)
    with torch.no_grad():
        for k, t in p.items():
            t.add_(old_g[k] * scale)
    new_g = grads(p, x, y)
    inner = sum(torch.sum(old_g[k] * new_g[k]) for k in p)
    new_norm, old_norm = grad_norm(new_g), grad_norm(old_g)
    cosine = inner / (new_norm * old_norm + perturb_eps)
    out = {}
    for k in p:
        vertical = old_g[k] - cosine * old_norm * new_g[k] / (new_norm + perturb_eps)
        out[k] = new_g[k] - alpha * vertical
    return out


def fsam_nblt(np_params, batches, rho, sigma, lmbda):
    p = tensors(np_params)
    state = {}
    outs = []
    for x, y in batches:
        g = grads(p, x, y)
        for k in p:
            grad = g[k].clone()
            if k not in state:
                state[k] = grad
            else:
                g[k] = g[k] - state[k] * sigma
                state[k] = state[k] * lmbda + grad * (1 - lmbda)
        scale = rho / (grad_norm(g) + 1e-12)
        old = {k: t.detach().clone() for k, t in p.items()}
        with torch.no_grad():
            for k, t in p.items():
                t.add_(g[k] * scale)
        outs.append(grads(p, x, y))
        with torch.no_grad():  # second_step restores w; the base optimizer step is left out
            for k, t in p.items():
                t.copy_(old[k])
    return outs


def awp_dongxian(np_params, x, y, gamma, proxy_lr=0.01, eps=1e-20):
    p = tensors(np_params)
    proxy = tensors(np_params)
    for t in proxy.values():
        t.grad = None
    (-loss_fn(proxy, x, y)).backward()
    with torch.no_grad():
        for t in proxy.values():
            t.add_(-proxy_lr * t.grad)
    diff = {}
    for k in p:
        old_w, new_w = p[k].detach(), proxy[k].detach()
        if old_w.dim() <= 1:
            continue
        if "weight" in k:
            diff_w = new_w - old_w
            diff[k] = old_w.norm() / (diff_w.norm() + eps) * diff_w
    with torch.no_grad():
        for k, d in diff.items():
            p[k].add_(gamma * d)
    return grads(p, x, y)


def as_lists(g):
    return {k: v.detach().numpy().tolist() for k, v in g.items()}


def main():
    params = init_params()
    x, y = data(1)
    x2, y2 = data(7)
    out = {
        "inputs": {
            "params": {k: v.tolist() for k, v in params.items()},
            "x": x.tolist(),
            "y": y.tolist(),
            "x2": x2.tolist(),
            "y2": y2.tolist(),
        },
        "sam_davda54": {"rho": 0.05, "grad": as_lists(sam_davda54(params, x, y, 0.05))},
        "sam_google_research": {"rho": 0.05, "grad": as_lists(sam_google_research(params, x, y, 0.05))},
        "asam_samsung": {
            "rho": 0.5,
            "eta": 0.01,
            "grad": as_lists(asam_samsung({"weight": params["weight"]}, x, y, 0.5, 0.01)),
        },
        "gsam_zhuang": {"rho": 0.1, "alpha": 0.3, "grad": as_lists(gsam_zhuang(params, x, y, 0.1, 0.3))},
        "fsam_nblt": {
            "rho": 0.1,
            "sigma": 1.0,
            "lmbda": 0.9,
            "grads": [as_lists(g) for g in fsam_nblt(params, [(x, y), (x2, y2)], 0.1, 1.0, 0.9)],
        },
        "awp_dongxian": {"gamma": 0.05, "grad": as_lists(awp_dongxian(params, x, y, 0.05))},
    }
    (HERE / "sam.json").write_text(json.dumps(out, indent=1))
    print("wrote", HERE / "sam.json")


if __name__ == "__main__":
    main()
