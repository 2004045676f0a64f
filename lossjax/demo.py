"""``lossjax demo``: a short real experiment on scikit-learn's digits (no downloads).

A Flax NNX MLP is trained in a jitted step with a registry-built, composed
loss and an optax optimizer; every run in :data:`RUNS` trains the same model
from the same initialization and the results are printed as a table. Later
features add their runs (SAM, ConFIG) as functions in :data:`RUNS`.

Defaults finish in well under 2 minutes on 2 CPU cores; ``--steps``,
``--hidden`` and ``--batch-size`` make it bigger.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm.auto import tqdm

import lossjax

DEFAULT_LOSS = "softmax_cross_entropy(label_smoothing=0.1) + 0.5 * focal_loss(gamma=2.0)"


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    steps: int = 300
    batch_size: int = 128
    hidden: int = 128
    learning_rate: float = 3e-3
    seed: int = 0
    label_noise: float = 0.2  # fraction of training labels flipped at random
    loss: str = DEFAULT_LOSS
    quiet: bool = False


@dataclasses.dataclass(frozen=True)
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int


def load_data(cfg: DemoConfig) -> Data:
    """Digits (8x8, 10 classes) standardized, split 75/25, with some training labels flipped."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(cfg.seed)
    perm = rng.permutation(len(x))
    x = (x[perm] / 16.0).astype(np.float32)
    y = y[perm].astype(np.int32)
    n_train = int(0.75 * len(x))
    x_train, y_train = x[:n_train], y[:n_train].copy()
    flip = rng.random(n_train) < cfg.label_noise
    y_train[flip] = rng.integers(0, 10, size=int(flip.sum()))
    mean, std = x_train.mean(0), x_train.std(0) + 1e-3
    return Data((x_train - mean) / std, y_train, (x[n_train:] - mean) / std, y[n_train:], 10)


class MLP(nnx.Module):
    """Two hidden layers with ReLU."""

    def __init__(self, din: int, hidden: int, dout: int, *, rngs: nnx.Rngs):
        self.l1 = nnx.Linear(din, hidden, rngs=rngs)
        self.l2 = nnx.Linear(hidden, hidden, rngs=rngs)
        self.out = nnx.Linear(hidden, dout, rngs=rngs)

    def __call__(self, x):
        return self.out(jax.nn.relu(self.l2(jax.nn.relu(self.l1(x)))))


def make_model(cfg: DemoConfig, data: Data) -> MLP:
    return MLP(data.x_train.shape[1], cfg.hidden, data.num_classes, rngs=nnx.Rngs(cfg.seed))


def batches(cfg: DemoConfig, data: Data):
    """An endless stream of shuffled minibatches (fixed seed: every run sees the same data)."""
    rng = np.random.default_rng(cfg.seed + 1)
    n = len(data.x_train)
    while True:
        perm = rng.permutation(n)
        for i in range(0, n - cfg.batch_size + 1, cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            yield data.x_train[idx], data.y_train[idx]


def accuracy(model: nnx.Module, x: np.ndarray, y: np.ndarray) -> float:
    return float(jnp.mean(jnp.argmax(model(jnp.asarray(x)), -1) == jnp.asarray(y)))


def progress(cfg: DemoConfig, desc: str):
    return tqdm(range(cfg.steps), desc=desc, disable=cfg.quiet, leave=False, ncols=80)


def run_composed_loss(cfg: DemoConfig, data: Data) -> dict:
    """Baseline: the composed registry loss with AdamW, one jitted step."""
    loss_fn = lossjax.compose(cfg.loss)  # always (total, terms), whatever the spec
    model = make_model(cfg, data)
    optimizer = nnx.Optimizer(model, optax.adamw(cfg.learning_rate), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, x, y):
        (loss, terms), grads = nnx.value_and_grad(lambda m: loss_fn(m(x), y), has_aux=True)(model)
        optimizer.update(model, grads)
        return loss, terms

    stream = batches(cfg, data)
    loss = jnp.nan
    terms = {}
    for _ in progress(cfg, "composed loss"):
        x, y = next(stream)
        loss, terms = step(model, optimizer, jnp.asarray(x), jnp.asarray(y))
    term_str = ", ".join(f"{k}={float(v):.3f}" for k, v in terms.items())
    return {
        "run": "adamw + composed loss",
        "final loss": float(loss),
        "test acc": accuracy(model, data.x_test, data.y_test),
        "note": term_str,
    }


def run_sam(cfg: DemoConfig, data: Data, rho: float = 0.05) -> dict:
    """The same loss and AdamW behind ``lossjax.transforms.sam``: the gradient at ``w + rho g/|g|``."""
    loss_fn = lossjax.compose(cfg.loss)
    model = make_model(cfg, data)
    tx = optax.chain(lossjax.transforms.sam(rho=rho), optax.adamw(cfg.learning_rate))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    def scalar_loss(m, x, y):
        return loss_fn(m(x), y)[0]

    @nnx.jit
    def step(model, optimizer, x, y):
        loss, grads = nnx.value_and_grad(scalar_loss)(model, x, y)
        graphdef, _, rest = nnx.split(model, nnx.Param, ...)
        rest = nnx.as_pure(rest)

        def grad_fn(params):  # second gradient, at the perturbed weights
            return jax.grad(lambda p: scalar_loss(nnx.merge(graphdef, p, rest), x, y))(params)

        optimizer.update(model, grads, grad_fn=grad_fn)
        return loss

    stream = batches(cfg, data)
    loss = jnp.nan
    for _ in progress(cfg, "sam"):
        x, y = next(stream)
        loss = step(model, optimizer, jnp.asarray(x), jnp.asarray(y))
    return {
        "run": f"sam(rho={rho}) + adamw",
        "final loss": float(loss),
        "test acc": accuracy(model, data.x_test, data.y_test),
        "note": "2 gradients per step",
    }


def run_config(cfg: DemoConfig, data: Data) -> dict:
    """The composed loss's terms as separate losses, combined by ConFIG (``lossjax.transforms.config``) + AdamW.

    The m per-term gradients come from one forward pass
    (``lossjax.multiloss.per_loss_value_and_grad``); ConFIG gives every term the
    same cosine (the terms' weights are not used: weighted cosines of nearly
    parallel gradients, as CE and focal are, point along their difference).
    """
    import lossjax.multiloss as ml

    loss_fn = lossjax.compose(cfg.loss)
    model = make_model(cfg, data)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = optax.chain(lossjax.transforms.config(), optax.adamw(cfg.learning_rate))
    opt_state = tx.init(params)

    def losses(p, x, y):
        total, vec = loss_fn.stacked(nnx.merge(graphdef, p, rest)(x), y)
        return vec, total

    @jax.jit
    def step(params, opt_state, x, y):
        (_, total), grads = ml.per_loss_value_and_grad(losses, has_aux=True)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, total

    stream = batches(cfg, data)
    loss = jnp.nan
    for _ in progress(cfg, "config"):
        x, y = next(stream)
        params, opt_state, loss = step(params, opt_state, jnp.asarray(x), jnp.asarray(y))
    nnx.update(model, params)
    m = len(loss_fn.terms)
    return {
        "run": "config + adamw",
        "final loss": float(loss),
        "test acc": accuracy(model, data.x_test, data.y_test),
        "note": f"{m} per-term gradients, one forward",
    }


#: Name -> run function. Each takes (DemoConfig, Data) and returns a result row.
RUNS: dict[str, Callable[[DemoConfig, Data], dict]] = {
    "composed": run_composed_loss,
    "sam": run_sam,
    "config": run_config,
}


def format_results(rows: list[dict]) -> str:
    cols = ["run", "final loss", "test acc", "seconds", "note"]
    widths = {c: max(len(c), *(len(_fmt(r.get(c, ""))) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols), "  ".join("-" * widths[c] for c in cols)]
    for r in rows:
        lines.append("  ".join(_fmt(r.get(c, "")).ljust(widths[c]) for c in cols))
    return "\n".join(lines)


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lossjax demo", description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=DemoConfig.steps)
    p.add_argument("--batch-size", type=int, default=DemoConfig.batch_size)
    p.add_argument("--hidden", type=int, default=DemoConfig.hidden)
    p.add_argument("--learning-rate", type=float, default=DemoConfig.learning_rate)
    p.add_argument("--label-noise", type=float, default=DemoConfig.label_noise)
    p.add_argument("--seed", type=int, default=DemoConfig.seed)
    p.add_argument("--loss", default=DEFAULT_LOSS, help="a lossjax spec for the composed-loss run")
    p.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated subset of {list(RUNS)}")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    a = p.parse_args(argv)
    cfg = DemoConfig(
        steps=a.steps,
        batch_size=a.batch_size,
        hidden=a.hidden,
        learning_rate=a.learning_rate,
        seed=a.seed,
        label_noise=a.label_noise,
        loss=a.loss,
        quiet=a.quiet,
    )
    names = [n.strip() for n in a.runs.split(",") if n.strip()]
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        p.error(f"unknown run(s) {unknown}; available: {list(RUNS)}")
    try:
        lossjax.compose(cfg.loss)
    except (KeyError, ValueError, TypeError) as e:  # one line, no traceback
        p.error(f"--loss {cfg.loss!r}: {e.args[0] if e.args else e}")
    data = load_data(cfg)
    print(
        f"lossjax demo: digits, {len(data.x_train)} train / {len(data.x_test)} test, "
        f"{cfg.label_noise:.0%} label noise, MLP hidden={cfg.hidden}, {cfg.steps} steps, "
        f"backend={jax.default_backend()}"
    )
    rows = []
    for name in names:
        t0 = time.perf_counter()
        row = RUNS[name](cfg, data)
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
    print()
    print(format_results(rows))
    return 0
