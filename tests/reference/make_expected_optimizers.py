"""Expected updates of the optimizers family -> lossjax/expected/optimizers.json (never imports lossjax).

Protocol (lossjax.testing.transform_steps): ``state = init(params)``; 2 steps of
``out, state = update(updates, state, params, **extra_args)`` with the sample's fixed ``updates``,
then ``params += out``.

- momo: optax 0.2.8 ``optax.contrib.momo`` run in float64 (``jax.enable_x64``); lossjax's ``decay``
  is its ``beta``.
- decoupled_weight_decay: the closed form ``updates - schedule_multiplier * weight_decay * params`` in numpy.
- max_norm_projection: the closed form (each unit's column of ``params + updates`` rescaled to norm <= c).

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


RULES = {
    "momo": (momo_steps, "optax 0.2.8 optax.contrib.momo run in float64 (decay = its beta)"),
    "decoupled_weight_decay": (dwd_steps, "closed form in numpy: updates - schedule_multiplier * weight_decay * w"),
    "max_norm_projection": (max_norm_steps, "closed form in numpy: per-unit rescaling of w + u to norm <= max_norm"),
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
