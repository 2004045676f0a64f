"""Expected updates of the SAM family -> lossjax/expected/sam.json (never imports lossjax).

Protocol (lossjax.testing.transform_steps): ``state = init(params)``; 2 steps of
``out, state = update(updates, state, params, grad_fn=grad_fn)`` with the sample's fixed
``updates`` (the toy gradient at the initial params), then ``params += out``. ``grad_fn`` is the
toy model's gradient, ported here to float64 torch (lossjax/transforms/_sam.py::_toy_loss):

    z = tanh(x @ w + b),  loss = mean((z - y)^2),  x = rng(1).normal(5, 3), y = rng(2).normal(5, 2)  (float32 draws)

Inputs: tests/reference/inputs/sam.json (``python tests/reference/dump_inputs.py --family sam``).
Each official update rule is ported line by line (float64 torch), pinned to its commit:

- sam                 davda54/sam@3c3afdb sam.py::SAM.first_step (rho/(||g|| + 1e-12); epsilon = the 1e-12)
- asam                SamsungLabs/ASAM@f156a68 asam.py::ASAM.ascent_step, T = |w| + eta on EVERY leaf
                      (upstream: tensors named 'weight' only; lossjax documents it), epsilon = the 1e-16
- gsam                juntang-zhuang/GSAM@a770275 gsam/gsam.py::GSAM.perturb_weights + gradient_decompose
- looksam             the paper's Algorithm 1 (arXiv:2203.02714; no official code), with the epsilons where
                      lossjax's docstring puts them
- friendly_sam        nblt/F-SAM@2e2f989 utils.py::FriendlySAM.first_step (momentum state over the steps)
- awp                 csdongxian/AWP@a7acf5d AT_AWP/utils_awp.py::AdvWeightPerturb (proxy: one SGD ascent step
                      of lr 1 with the given gradient; diff_in_weights on tensors with ndim >= min_ndim)
- random_weight_perturbation  nblt/RWP@cb0acb0 train_rwp_parallel.py::train (filter-wise std gamma ||W_i||,
                      1-D: gamma (||w|| + 1e-16)); the filter axis is lossjax's filter_axis; the standard
                      normal draws come from jax.random with the transform's key schedule (an input);
                      the mix (1 - alpha) g + alpha g(w + e) (upstream: 2(1-alpha), 2 alpha on half batches)
- bayesian_sam        team-approx-bayes/bayesian-sam@99d9942 optim.py::build_bsam_optimizer (msharpness=1):
                      noisy gradient, SAM point rho g / s, momentum, precision; normal draws by jax.random
                      from the transform's key schedule (an input)
- robust_weight_perturbation  ChaojianYu/Robust-Weight-Perturbation@4cb190b AT_AWP_RWP/utils_rwp.py::
                      RobustWeightPerturb.calc_awp (K proxy SGD steps of lr 0.01 on the examples with loss < c,
                      the accumulated difference rescaled to ||w|| over all perturbed leaves)
- saf, mesa           closed form: the updates pass through unchanged (their output is their state)

Run: python tests/reference/make_expected_sam.py
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

sys.path.insert(0, os.path.dirname(__file__))
from expected_io import decode, encode, load_inputs, write_expected  # noqa: E402

torch.set_default_dtype(torch.float64)
FAMILY = "sam"

X = torch.tensor(np.asarray(np.random.default_rng(1).normal(size=(5, 3)), np.float32).astype(np.float64))
Y = torch.tensor(np.asarray(np.random.default_rng(2).normal(size=(5, 2)), np.float32).astype(np.float64))


def toy_grad(p: dict) -> dict:
    tp = {k: torch.tensor(np.asarray(v, np.float64), requires_grad=True) for k, v in p.items()}
    z = torch.tanh(X @ tp["w"] + tp["b"])
    loss = torch.mean((z - Y) ** 2)
    gs = torch.autograd.grad(loss, [tp[k] for k in sorted(tp)])
    return {k: g.numpy() for k, g in zip(sorted(tp), gs, strict=True)}


def norm(tree: dict) -> float:  # torch.norm(torch.stack([norm(t) for t in tensors]))
    return float(np.linalg.norm([np.linalg.norm(v) for v in tree.values()]))


def add(a, b, s=1.0):
    return {k: a[k] + s * b[k] for k in a}


def dot(a, b):
    return float(sum(np.sum(a[k] * b[k]) for k in a))


# ------------------------------ the rules: (g, params, state) -> (out, state) ------------------------------


def sam(hp):
    rho, eps = hp.get("rho", 0.05), hp.get("epsilon", 1e-12)

    def rule(g, p, state):
        scale = rho / (norm(g) + eps)  # SAM.first_step
        return toy_grad(add(p, g, scale)), state

    return rule


def asam(hp):
    rho, eta, eps = hp.get("rho", 0.5), hp.get("eta", 0.01), hp.get("epsilon", 1e-12)

    def rule(g, p, state):  # ASAM.ascent_step with every leaf treated as a 'weight'
        t_w = {k: np.abs(p[k]) + eta for k in p}
        grad = {k: g[k] * t_w[k] for k in g}
        wgrad_norm = norm(grad) + eps
        e = {k: grad[k] * t_w[k] * (rho / wgrad_norm) for k in g}
        return toy_grad(add(p, e)), state

    return rule


def gsam(hp):
    rho, alpha, eps = hp.get("rho", 0.05), hp.get("alpha", 0.1), hp.get("epsilon", 1e-12)

    def rule(old_g, p, state):
        new_g = toy_grad(add(p, old_g, rho / (norm(old_g) + eps)))  # perturb_weights
        inner = dot(old_g, new_g)  # gradient_decompose
        new_norm, old_norm = norm(new_g), norm(old_g)
        cosine = inner / (new_norm * old_norm + eps)
        out = {}
        for k in p:
            vertical = old_g[k] - cosine * old_norm * new_g[k] / (new_norm + eps)
            out[k] = new_g[k] - alpha * vertical
        return out, state

    return rule


def looksam(hp):
    rho, interval = hp.get("rho", 0.05), hp.get("interval", 5)
    alpha, eps = hp.get("alpha", 0.7), hp.get("epsilon", 1e-12)

    def rule(g, p, state):
        count, g_v = state
        if count % interval == 0:  # Algorithm 1: the SAM gradient and its part orthogonal to g
            g_s = toy_grad(add(p, g, rho / (norm(g) + eps)))
            coef = dot(g, g_s) / (norm(g) ** 2 + eps)
            g_v = add(g_s, g, -coef)
            return g_s, (count + 1, g_v)
        scale = alpha * norm(g) / (norm(g_v) + eps)
        return add(g, g_v, scale), (count + 1, g_v)

    return rule


def friendly_sam(hp):
    rho, sigma, lmbda = hp.get("rho", 0.05), hp.get("sigma", 1.0), hp.get("decay", 0.9)
    eps = hp.get("epsilon", 1e-12)

    def rule(g, p, state):  # FriendlySAM.first_step (state: the momentum buffer)
        grad = {k: g[k].copy() for k in g}
        d = {k: g[k].copy() for k in g}
        if state is None:
            state = grad
        else:
            d = {k: d[k] - state[k] * sigma for k in d}
            state = {k: state[k] * lmbda + grad[k] * (1 - lmbda) for k in d}
        scale = rho / (norm(d) + eps)
        return toy_grad(add(p, d, scale)), state

    return rule


def awp(hp):
    gamma, min_ndim, eps = hp.get("gamma", 5e-3), hp.get("min_ndim", 2), hp.get("epsilon", 1e-20)

    def rule(g, p, state):
        proxy = {k: p[k] - 1.0 * (-g[k]) for k in p}  # one SGD step of lr 1 on -loss (its gradient is -g)
        diff = {}
        for k in p:  # diff_in_weights
            if p[k].ndim < min_ndim:
                continue
            diff_w = proxy[k] - p[k]
            diff[k] = np.linalg.norm(p[k]) / (np.linalg.norm(diff_w) + eps) * diff_w
        point = {k: p[k] + gamma * diff[k] if k in diff else p[k] for k in p}  # add_into_weights(coeff=gamma)
        return toy_grad(point), state

    return rule


def random_weight_perturbation(hp):
    gamma, alpha = hp.get("gamma", 0.01), hp.get("alpha", 0.5)
    filter_axis, seed = hp.get("filter_axis", -1), hp.get("seed", 0)

    def rule(g, p, state):
        key = jax.random.PRNGKey(seed) if state is None else state
        key, sub = jax.random.split(key)
        names = sorted(p)
        keys = jax.random.split(sub, max(len(names), 1))
        point = {}
        for i, k in enumerate(names):
            w = p[k]
            z = np.asarray(jax.random.normal(keys[i], w.shape, jax.numpy.float32), np.float64)
            if w.ndim > 1:  # the filter-wise norm (upstream: filters on axis 0)
                ax = filter_axis % w.ndim
                axes = tuple(a for a in range(w.ndim) if a != ax)
                std = gamma * np.sqrt(np.sum(w**2, axis=axes, keepdims=True))
            else:
                std = gamma * (np.linalg.norm(w.reshape(-1)) + 1e-16)
            point[k] = w + std * z
        g_e = toy_grad(point)
        return {k: (1 - alpha) * g[k] + alpha * g_e[k] for k in g}, key

    return rule


def multistep_sam(hp):
    """optax.contrib.sam in opaque mode, run in float64: identity outer optimizer, normalize + sgd(rho) ascent."""
    import jax.numpy as jnp
    import optax
    import optax.contrib

    rho, period = hp.get("rho", 0.05), hp.get("sync_period", 2)

    def rule(g, p, state):
        with jax.enable_x64(True):
            adv = optax.chain(optax.contrib.normalize(), optax.sgd(rho))
            tx = optax.contrib.sam(optax.identity(), adv, sync_period=period, opaque_mode=True)
            params = {k: jnp.asarray(v, jnp.float64) for k, v in p.items()}
            grads = {k: jnp.asarray(v, jnp.float64) for k, v in g.items()}

            def grad_fn(q, i):
                del i
                return {k: jnp.asarray(v) for k, v in toy_grad({k: np.asarray(x) for k, x in q.items()}).items()}

            out, _ = tx.update(grads, tx.init(params), params, grad_fn=grad_fn)
            return {k: np.asarray(v, np.float64) for k, v in out.items()}, state

    return rule


def weighted_sam(hp):
    """atorch WeightedSAM.first_step / second_step with decouple=False."""
    rho, gamma, eps = hp.get("rho", 0.05), hp.get("gamma", 0.9), hp.get("epsilon", 1e-12)
    alpha = gamma / (1 - gamma)

    def rule(g, p, state):
        scale = rho / (norm(g) + eps)
        g_e = toy_grad(add(p, g, scale))
        return {k: alpha * g_e[k] + (1.0 - alpha) * g[k] for k in g}, state

    return rule


def toy_per_example_loss(p: dict, tp: dict | None = None):
    """Per-row mean squared error of the toy model (lossjax/transforms/_sam.py::_toy_per_example_loss)."""
    tp = tp if tp is not None else {k: torch.tensor(np.asarray(v, np.float64)) for k, v in p.items()}
    z = torch.tanh(X @ tp["w"] + tp["b"])
    return torch.mean((z - Y) ** 2, dim=1)


def bayesian_sam(hp):
    """team-approx-bayes/bayesian-sam@99d9942 optim.py::build_bsam_optimizer, msharpness=1 (one sub-batch)."""
    n_data, lr, rho = hp["num_examples"], hp.get("learning_rate", 0.5), hp.get("rho", 0.05)
    beta1, beta2, wdecay = hp.get("b1", 0.9), hp.get("b2", 0.999), hp.get("weight_decay", 1e-4)
    damping, s_init, seed = hp.get("damping", 0.1), hp.get("init_precision", 1.0), hp.get("seed", 0)

    def rule(g, p, state):
        del g  # bSAM takes its own gradients
        if state is None:
            state = {
                "key": jax.random.PRNGKey(seed),
                "gm": {k: np.zeros_like(v) for k, v in p.items()},
                "s": {k: s_init * np.ones_like(v) for k, v in p.items()},
            }
        key, sub = jax.random.split(state["key"])
        names = sorted(p)  # jax.tree order of a dict
        keys = jax.random.split(sub, len(names))
        s = state["s"]
        noise = {
            k: np.asarray(jax.random.normal(keys[i], p[k].shape, jax.numpy.float32), np.float64)
            for i, k in enumerate(names)
        }
        noisy = {k: p[k] + np.sqrt(1.0 / (n_data * s[k])) * noise[k] for k in p}  # _bsam_gradient
        grad = toy_grad(noisy)
        perturbed = {k: p[k] + rho * grad[k] / s[k] for k in p}
        perturbed_grad = toy_grad(perturbed)
        gs = {k: np.sqrt(s[k] * grad[k] ** 2.0) for k in p}
        gm = {k: beta1 * state["gm"][k] + (1 - beta1) * (perturbed_grad[k] + wdecay * p[k]) for k in p}  # step
        out = {k: -lr * gm[k] / s[k] for k in p}
        new_s = {k: beta2 * s[k] + (1 - beta2) * (gs[k] + damping + wdecay) for k in p}
        return out, {"key": key, "gm": gm, "s": new_s}

    return rule


def robust_weight_perturbation(hp):
    """ChaojianYu/Robust-Weight-Perturbation@4cb190b AT_AWP_RWP/utils_rwp.py::RobustWeightPerturb.calc_awp
    (proxy SGD lr 0.01, EPS 1e-20; LSC_loss = loss_threshold; K = steps; weights of ndim >= min_ndim)."""
    gamma, c, steps_k = hp.get("gamma", 0.01), hp.get("loss_threshold", 1.7), hp.get("steps", 10)
    min_ndim, eps, proxy_lr = hp.get("min_ndim", 2), hp.get("epsilon", 1e-20), 0.01

    def rule(g, p, state):
        del g
        names = [k for k in sorted(p) if p[k].ndim >= min_ndim]
        diff, diff_scale = None, {}
        for _ in range(steps_k):
            start = {k: p[k] + gamma * diff_scale.get(k, 0.0) for k in p}  # proxies at w + gamma diff_scale
            tp = {k: torch.tensor(v, requires_grad=True) for k, v in start.items()}
            loss = toy_per_example_loss(None, tp)
            indicator = (loss < c).double()
            loss = -1 * loss.mul(indicator).mean()
            grads = torch.autograd.grad(loss, [tp[k] for k in names], allow_unused=True)
            diff_step = {}
            for k, gk in zip(names, grads, strict=True):  # proxy_2_optim.step(), then diff_in_weights
                gk = np.zeros_like(p[k]) if gk is None else gk.numpy()
                diff_step[k] = (start[k] - proxy_lr * gk) - start[k]
            diff = diff_step if diff is None else {k: diff[k] + diff_step[k] for k in names}  # add_into_diff
            w_all = np.concatenate([p[k].ravel() for k in names])
            d_all = np.concatenate([diff[k].ravel() for k in names])
            scale_value = np.linalg.norm(w_all) / (np.linalg.norm(d_all) + eps)
            diff_scale = {k: scale_value * diff[k] for k in names}
        point = {k: p[k] + gamma * diff_scale.get(k, 0.0) for k in p}  # perturb(diff) with coeff gamma
        return toy_grad(point), state

    return rule


def passthrough(hp):
    return lambda g, p, state: ({k: np.array(v) for k, v in g.items()}, state)


RULES = {
    "sam": (sam, None),
    "asam": (asam, None),
    "gsam": (gsam, None),
    "looksam": (looksam, (0, None)),
    "friendly_sam": (friendly_sam, None),
    "awp": (awp, None),
    "random_weight_perturbation": (random_weight_perturbation, None),
    "saf": (passthrough, None),
    "mesa": (passthrough, None),
    "multistep_sam": (multistep_sam, None),
    "weighted_sam": (weighted_sam, None),
    "bayesian_sam": (bayesian_sam, None),
    "robust_weight_perturbation": (robust_weight_perturbation, None),
}
SOURCES = {
    "sam": "davda54/sam@3c3afdbd71cff2462ec91c734b3d1170bd0f3707 sam.py::SAM.first_step (port, float64 torch)",
    "asam": "SamsungLabs/ASAM@f156a680171db16d551c0d85cba2514fa3bff6a2 asam.py::ASAM.ascent_step (port; T on "
    "every leaf)",
    "gsam": "juntang-zhuang/GSAM@a770275b3324a3ed4bf4a1cddb976b2782ba852b gsam/gsam.py::GSAM.perturb_weights, "
    "gradient_decompose (port)",
    "looksam": "closed form: Algorithm 1 of arXiv:2203.02714 (no official code) in numpy",
    "friendly_sam": "nblt/F-SAM@2e2f9899ab473880430640fa5def4ad8f5aa2401 utils.py::FriendlySAM.first_step (port)",
    "awp": "csdongxian/AWP@a7acf5d842fccf1bbb4b91644352ce157d370a26 AT_AWP/utils_awp.py::AdvWeightPerturb, "
    "diff_in_weights (port)",
    "random_weight_perturbation": "nblt/RWP@cb0acb0708720a40c441915b275fd2d5e70c734c train_rwp_parallel.py::train "
    "noise rule (port; normal draws by jax.random from the transform's key)",
    "saf": "closed form: the updates pass through (arXiv:2205.14083; the memory bank is the state)",
    "mesa": "closed form: the updates pass through (arXiv:2205.14083; the EMA is the state)",
    "multistep_sam": "optax 0.2.8 optax.contrib.sam(identity(), chain(contrib.normalize(), sgd(rho)), sync_period, "
    "opaque_mode=True) run in float64 (jax.enable_x64)",
    "weighted_sam": "intelligent-machine-learning/dlrover@19e5d79036f93a4d71cd34382e39667fed3b64ca "
    "atorch/atorch/optimizers/wsam.py::WeightedSAM first_step/second_step, decouple=False (port)",
    "bayesian_sam": "team-approx-bayes/bayesian-sam@99d994281083f156cef5809101ca3806f7edb501 "
    "optim.py::build_bsam_optimizer, msharpness=1 (port, float64; the standard normal draws by jax.random "
    "from the transform's key schedule, an input)",
    "robust_weight_perturbation": "ChaojianYu/Robust-Weight-Perturbation@4cb190b3468ca5ceb6bbeeb9f590e885c9f54088 "
    "AT_AWP_RWP/utils_rwp.py::RobustWeightPerturb.calc_awp, perturb (port, float64 torch; proxy SGD lr 0.01)",
}


def main():
    data = load_inputs(FAMILY)
    records = {}
    for name, entry in sorted(data.items()):
        make, state0 = RULES[name]
        cases = []
        for case in entry["cases"]:
            hp = decode(case["hyperparams"])
            rule = make(hp)
            params = decode(case["params"])
            g = decode(case["updates"])
            if name not in ("saf", "mesa"):  # the sample's updates are the toy gradient at its params
                np.testing.assert_allclose(
                    np.concatenate([v.ravel() for v in g.values()]),
                    np.concatenate([v.ravel() for v in toy_grad(params).values()]),
                    rtol=1e-5,
                    atol=1e-7,
                )
            state, outs = state0, []
            for _ in range(case["steps"]):
                out, state = rule(g, params, state)
                outs.append(out)
                params = add(params, out)
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
