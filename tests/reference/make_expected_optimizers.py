"""Expected updates of the optimizers family -> lossjax/expected/optimizers.json (never imports lossjax).

Protocol (lossjax.testing.transform_steps): ``state = init(params)``; 2 steps of
``out, state = update(updates, state, params, **extra_args)`` with the sample's fixed ``updates``,
then ``params += out``.

- momo: optax 0.2.8 ``optax.contrib.momo`` run in float64 (``jax.enable_x64``); lossjax's ``decay``
  is its ``beta``.
- decoupled_weight_decay: the closed form ``updates - schedule_multiplier * weight_decay * params`` in numpy.
- max_norm_projection: the closed form (each unit's column of ``params + updates`` rescaled to norm <= c).
- loss_normalized_gradient_descent: the paper's rule (arXiv:2412.08424, Normalized LR+GD) in numpy.
- singular_value_descent: sambt/sven@21830ba Sven.step / pinv(mode='full') in numpy, the toy residuals' Jacobian
  by torch.func.jacrev (float64).
- softmax_singularity_step_limiter: piyush314/ghosts-of-softmax@1450f40 experiments/lrspike/run.py (the
  rho_ctrl controller, lr 1) with torch.func.jvp (float64).
- classp: oswaldoludwig/CLASSP@5fe00a0 README.md pseudo-code, weight by weight in numpy (the official CLASSP.py
  tests the threshold on whole tensors and drops the power; lossjax follows the pseudo-code, see its docstring).

Inputs: tests/reference/inputs/optimizers.json (``python tests/reference/dump_inputs.py --family optimizers``).
Run: python tests/reference/make_expected_optimizers.py
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from expected_io import decode, encode, load_inputs, write_expected

FAMILY = "optimizers"


def momo_steps(params, updates, hp, extra, steps):
    import optax
    import optax.contrib

    with jax.enable_x64(True):
        tx = optax.contrib.momo(
            learning_rate=hp.get("learning_rate", 1.0),
            beta=hp.get("decay", 0.9),
            lower_bound=hp.get("lower_bound", 0.0),
            weight_decay=hp.get("weight_decay", 0.0),
            adapt_lower_bound=hp.get("adapt_lower_bound", False),
        )
        p = {k: jnp.asarray(v, jnp.float64) for k, v in params.items()}
        g = {k: jnp.asarray(v, jnp.float64) for k, v in updates.items()}
        state = tx.init(p)
        outs = []
        for _ in range(steps):
            out, state = tx.update(g, state, p, value=jnp.asarray(extra["value"], jnp.float64))
            outs.append({k: np.asarray(v, np.float64) for k, v in out.items()})
            p = {k: p[k] + out[k] for k in p}
    return outs


def dwd_steps(params, updates, hp, extra, steps):
    del extra
    scale = hp.get("schedule_multiplier", 1.0) * hp.get("weight_decay", 1e-4)
    outs = []
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    for _ in range(steps):
        out = {k: np.asarray(updates[k], np.float64) - scale * p[k] for k in p}
        outs.append(out)
        p = {k: p[k] + out[k] for k in p}
    return outs


def max_norm_steps(params, updates, hp, extra, steps):
    del extra
    c = hp.get("max_norm", 3.0)
    outs = []
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    for _ in range(steps):
        out = {}
        for k in p:
            new = p[k] + np.asarray(updates[k], np.float64)
            if new.ndim >= 2:
                norm = np.sqrt(np.sum(new**2, axis=tuple(range(new.ndim - 1)), keepdims=True))
                new = new * np.minimum(1.0, c / norm)
            out[k] = new - p[k]
        outs.append(out)
        p = {k: p[k] + out[k] for k in p}
    return outs


# The samples' toy models (lossjax/transforms/_optimizers.py::_linear_logits, _toy_residuals), float32 draws.
TOY_X = np.asarray(np.random.default_rng(5).normal(size=(5, 3)), np.float32).astype(np.float64)
RES_X = np.asarray(np.random.default_rng(11).normal(size=(3, 3)), np.float32).astype(np.float64)
RES_Y = np.asarray(np.random.default_rng(6).normal(size=(3, 2)), np.float32).astype(np.float64)


def lngd_steps(params, updates, hp, extra, steps):
    """arXiv:2412.08424 section 6 (Normalized LR+GD): theta - gamma beta_t grad f, beta_t = 1/mean_i sigmoid(-m_i)."""
    lr, eps = hp.get("learning_rate", 1.0), hp.get("epsilon", 1e-30)
    beta = 1.0 / max(np.mean(1.0 / (1.0 + np.exp(np.asarray(extra["margins"], np.float64)))), eps)
    outs = []
    for _ in range(steps):
        outs.append({k: -lr * beta * np.asarray(updates[k], np.float64) for k in params})
    return outs


def sven_steps(params, updates, hp, extra, steps):
    """sambt/sven@21830ba sven/jax/sven.py::Sven.step + pinv.py::pinv(mode='full'), ported to numpy/torch float64;
    residuals = per-example losses (kappa = 2), the Jacobian by torch.func.jacrev over the flat parameters."""
    import torch

    del updates, extra
    lr, k, rtol, tol = hp.get("learning_rate", 0.1), hp.get("rank", 64), hp.get("rtol", 1e-3), hp.get("epsilon", 1e-10)
    names = sorted(params)  # ravel_pytree order of a dict
    shapes = [np.shape(params[n]) for n in names]
    sizes = [int(np.prod(sh)) for sh in shapes]
    x, y = torch.tensor(RES_X), torch.tensor(RES_Y)

    def residuals(flat):
        parts, i = {}, 0
        for n, sh, sz in zip(names, shapes, sizes, strict=True):
            parts[n] = flat[i : i + sz].reshape(sh)
            i += sz
        return torch.sum((torch.tanh(x @ parts["w"] + parts["b"]) - y) ** 2, dim=1)

    flat = np.concatenate([np.asarray(params[n], np.float64).ravel() for n in names])
    outs = []
    for _ in range(steps):
        tf = torch.tensor(flat)
        r = residuals(tf).numpy()
        jac = torch.func.jacrev(residuals)(tf).numpy()
        u, s, vh = np.linalg.svd(jac, full_matrices=False)  # _full_truncated_svd
        u, s, vh = u[:, :k], s[:k], vh[:k, :]
        cutoff = max(rtol * s[0], tol)
        keep = s > cutoff
        assert np.all(np.abs(s - cutoff) > 1e-3 * s[0]), "a singular value sits at the cutoff: pick other inputs"
        s_inv = np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0)
        delta = vh.T @ (s_inv * (u.T @ r))  # _compute_delta
        step = -lr * delta  # apply_update(-lr * delta)
        out, i = {}, 0
        for n, sh, sz in zip(names, shapes, sizes, strict=True):
            out[n] = step[i : i + sz].reshape(sh)
            i += sz
        outs.append(out)
        flat = flat + step
    return outs


def limiter_steps(params, updates, hp, extra, steps):
    """piyush314/ghosts-of-softmax@1450f40 experiments/lrspike/run.py::compute_rho_jvp and run_one (rho_ctrl) with
    lr = 1 and the proposed step p = updates: pnorm = ||p|| + eps, rho = pi / (max spread of the JVP + eps),
    step = p if pnorm <= rho else rho p / pnorm (torch.func.jvp, float64)."""
    import math

    import torch
    from torch.func import jvp

    del extra
    eps = hp.get("epsilon", 1e-12)
    x = torch.tensor(3.0 * TOY_X)
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    plist = {k: torch.tensor(np.asarray(updates[k], np.float64)) for k in p}
    outs = []
    for _ in range(steps):
        pnorm = math.sqrt(sum(float(v.pow(2).sum()) for v in plist.values())) + eps
        pu = {k: v / pnorm for k, v in plist.items()}

        def fwd(pd):
            return x @ pd["w"] + pd["b"]

        _, dlogits = jvp(fwd, ({k: torch.tensor(v) for k, v in p.items()},), (pu,))
        spread = dlogits.max(1).values - dlogits.min(1).values
        rho = math.pi / (float(spread.max()) + eps)
        lr_eff = rho / pnorm if pnorm > rho else 1.0
        out = {k: lr_eff * v.numpy() for k, v in plist.items()}
        outs.append(out)
        p = {k: p[k] + out[k] for k in p}
    return outs


def classp_steps(params, updates, hp, extra, steps):
    """oswaldoludwig/CLASSP@5fe00a0 README.md pseudo-code of CLASSP.py, per weight: if grad^2 > threshold,
    grad_sum += |grad|^p and w -= alpha grad / (eps + grad_sum)^(1/p) (alpha grad without apply_scaling)."""
    del extra
    lr, threshold = hp.get("learning_rate", 0.2), hp.get("threshold", 0.5)
    power, eps, scaling = hp.get("power", 1.0), hp.get("epsilon", 1e-5), hp.get("apply_scaling", True)
    grad_sum = {k: np.zeros_like(np.asarray(v, np.float64)) for k, v in params.items()}
    outs = []
    for _ in range(steps):
        out = {}
        for k in params:
            grad = np.asarray(updates[k], np.float64)
            out[k] = np.zeros_like(grad)
            for i in np.ndindex(grad.shape):  # weight by weight, as the pseudo-code's "if grad^2 > threshold"
                if grad[i] ** 2 > threshold:
                    grad_sum[k][i] += abs(grad[i]) ** power
                    factor = lr / (grad_sum[k][i] + eps) ** (1.0 / power) if scaling else lr
                    out[k][i] = -factor * grad[i]
        outs.append(out)
    return outs


RULES = {
    "momo": (momo_steps, "optax 0.2.8 optax.contrib.momo run in float64 (decay = its beta)"),
    "decoupled_weight_decay": (dwd_steps, "closed form in numpy: updates - schedule_multiplier * weight_decay * w"),
    "max_norm_projection": (max_norm_steps, "closed form in numpy: per-unit rescaling of w + u to norm <= max_norm"),
    "loss_normalized_gradient_descent": (
        lngd_steps,
        "closed form in numpy: arXiv:2412.08424 section 6 (Normalized LR+GD), beta_t = 1 / mean_i sigmoid(-m_i)",
    ),
    "singular_value_descent": (
        sven_steps,
        "sambt/sven@21830bab918a67ab35c89e7cb245677715d6b775 sven/jax/sven.py::Sven.step, sven/jax/pinv.py::pinv "
        "(mode='full') ported to numpy float64; Jacobian by torch.func.jacrev",
    ),
    "classp": (
        classp_steps,
        "oswaldoludwig/CLASSP@5fe00a0a686ab8d873e917b295e07775ee0f470a README.md pseudo-code of CLASSP.py "
        "(per-weight threshold, |g|^p sum) in numpy float64",
    ),
    "softmax_singularity_step_limiter": (
        limiter_steps,
        "piyush314/ghosts-of-softmax@1450f406e758aae4fc601e1221d145a74eaecc86 experiments/lrspike/run.py::"
        "compute_rho_jvp, run_one (rho_ctrl, lr 1) ported with torch.func.jvp in float64",
    ),
}


def main():
    data = load_inputs(FAMILY)
    records = {}
    for name, entry in sorted(data.items()):
        steps_fn, source = RULES[name]
        cases = []
        for case in entry["cases"]:
            outs = steps_fn(
                decode(case["params"]),
                decode(case["updates"]),
                decode(case["hyperparams"]),
                decode(case["extra_args"]),
                case["steps"],
            )
            cases.append(
                {
                    "case": case["case"],
                    "variant": case["variant"],
                    "fingerprint": case["fingerprint"],
                    "steps_updates": [encode(o) for o in outs],
                }
            )
        records[name] = {"source": source, "cases": cases}
    print("wrote", write_expected(FAMILY, records))


if __name__ == "__main__":
    main()
