"""SAM family: step time of each variant relative to one plain SGD-momentum step.

Same MLP, same data, one process. Every variant runs ``STEPS`` training steps
inside one jitted ``lax.scan`` (so LookSAM's ``interval=5`` period is amortised
exactly), and the ratio is per step. The floor is a hand-fused SAM step
written directly in one function (two gradients plus one update).
``optax.contrib.sam`` is timed in both modes: transparent (two ``update``
calls per SAM step, a params copy in its state) and opaque (``grad_fn``).
The note lists each optimizer state's size.

    python benchmarks/run.py --only sam --size small
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lossjax
from lossjax import transforms as T
from lossjax.benchmarking import Case

STEPS = 5
LR, MOMENTUM, RHO = 0.01, 0.9, 0.05


def _sizes(size: str):
    if size == "large":  # ~42M parameters
        return 256, (2048, 4096, 4096, 4096, 10)
    return 128, (256, 512, 512, 10)  # ~0.4M parameters


def _init(dims, seed=0):
    rng = np.random.default_rng(seed)
    return [
        {
            "w": jnp.asarray(rng.normal(size=(a, b)) / np.sqrt(a), jnp.float32),
            "b": jnp.zeros((b,), jnp.float32),
        }
        for a, b in itertools.pairwise(dims)
    ]


def _forward(params, x):
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"][None, :])
    return x @ params[-1]["w"] + params[-1]["b"][None, :]


def _ce(logits, y):
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))


def _loss(params, x, y):
    return _ce(_forward(params, x), y)


_grad = jax.grad(_loss)


def _tree_bytes(tree) -> int:
    return int(sum(np.asarray(x).nbytes for x in jax.tree.leaves(tree)))


def _scan(step, carry, xs, ys):
    def body(c, b):
        return step(c, *b), None

    return jax.lax.scan(body, carry, (xs, ys))[0]


def _chain_step(tx):
    """A train step of ``optax.chain(tx, sgd-momentum)`` with the gradient function as extra argument."""

    def step(carry, x, y):
        params, state = carry
        gf = lambda p: _grad(p, x, y)  # noqa: E731
        updates, state = tx.update(gf(params), state, params, grad_fn=gf)
        return optax.apply_updates(params, updates), state

    return step


def _hand_fused_sam(carry, x, y):
    params, mom = carry
    g = _grad(params, x, y)
    norm = jnp.sqrt(sum(jnp.sum(jnp.square(v)) for v in jax.tree.leaves(g)))
    scale = RHO / (norm + 1e-12)
    g2 = _grad(jax.tree.map(lambda w, v: w + scale * v, params, g), x, y)
    mom = jax.tree.map(lambda m, v: MOMENTUM * m + v, mom, g2)
    return jax.tree.map(lambda w, m: w - LR * m, params, mom), mom


def _saf_step(tx, batch):
    idx_all = jnp.arange(STEPS * batch, dtype=jnp.int32).reshape(STEPS, batch)

    def run(carry, xs, ys):
        def body(c, b):
            params, state = c
            x, y, idx = b
            targets, valid = T.saf_targets(state[0], idx)

            def loss(p):
                logits = _forward(p, x)
                kl = lossjax.losses.trajectory_loss(logits, targets, where=valid)
                return _ce(logits, y) + 0.3 * jnp.mean(kl), logits

            (_, logits), g = jax.value_and_grad(loss, has_aux=True)(params)
            updates, state = tx.update(g, state, params, logits=logits, indices=idx)
            return (optax.apply_updates(params, updates), state), None

        return jax.lax.scan(body, carry, (xs, ys, idx_all))[0]

    return run


def _mesa_step(tx):
    def step(carry, x, y):
        params, state = carry
        teacher = _forward(T.mesa_params(state), x)

        def loss(p):
            logits = _forward(p, x)
            return _ce(logits, y) + 0.3 * jnp.mean(lossjax.losses.trajectory_loss(logits, teacher))

        g = jax.grad(loss)(params)
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state

    return step


def cases(size: str) -> list[Case]:
    # The MLP at batch 256 is memory-bound (parameter-sized passes dominate); at a large batch the two
    # gradients dominate (compute-bound), where LookSAM's k=5 should approach 1 + 1/k of a plain step.
    return [_sam_case(size), _sam_case(size, batch=8192 if size == "large" else 2048, full=False)]


def _sam_case(size: str, batch: int | None = None, full: bool = True) -> Case:
    default_batch, dims = _sizes(size)
    batch = batch or default_batch
    params = _init(dims)
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
    rng = np.random.default_rng(1)
    xs = jnp.asarray(rng.normal(size=(STEPS, batch, dims[0])), jnp.float32)
    ys = jnp.asarray(rng.integers(0, dims[-1], size=(STEPS, batch)), jnp.int32)
    sgd = optax.sgd(LR, momentum=MOMENTUM)

    variants = {}
    state_bytes = {}

    def add(label, step, carry):
        variants[label] = ((lambda c, x, y, step=step: _scan(step, c, x, y)), (carry, xs, ys))
        state_bytes[label] = _tree_bytes(carry[1])

    def plain(carry, x, y):
        params, state = carry
        updates, state = sgd.update(_grad(params, x, y), state, params)
        return optax.apply_updates(params, updates), state

    add("sgd-momentum (baseline)", plain, (params, sgd.init(params)))
    add("hand-fused SAM (floor)", _hand_fused_sam, (params, jax.tree.map(jnp.zeros_like, params)))
    for label, tx in [
        ("lossjax sam", T.sam(rho=RHO)),
        ("lossjax asam", T.asam(rho=0.5)),
        ("lossjax gsam", T.gsam(rho=RHO, alpha=0.1)),
        ("lossjax friendly_sam", T.friendly_sam(rho=RHO)),
        ("lossjax awp", T.awp(gamma=5e-3)),
        ("lossjax rwp", T.random_weight_perturbation(gamma=0.01)),
        ("lossjax looksam interval=5", T.looksam(rho=RHO, interval=5)),
    ]:
        if not full and label not in ("lossjax sam", "lossjax looksam interval=5"):
            continue
        chained = optax.chain(tx, sgd)
        add(label, _chain_step(chained), (params, chained.init(params)))
    if not full:  # the compute-bound configuration: the SAM floor, SAM and LookSAM only
        return Case(
            f"SAM step, MLP {n_params / 1e6:.1f}M, batch {batch} (compute-bound)",
            variants,
            baseline="sgd-momentum (baseline)",
            key="sam-compute-bound",
            note=f"MLP {dims}, batch {batch}, {STEPS} steps per call; LookSAM target <= 1.25x the SGD step",
        )

    mesa_tx = optax.chain(T.mesa(decay=0.999), sgd)
    add("lossjax mesa", _mesa_step(mesa_tx), (params, mesa_tx.init(params)))
    saf_tx = optax.chain(T.saf(num_examples=STEPS * batch, num_classes=dims[-1], delay=1), sgd)
    variants["lossjax saf"] = (_saf_step(saf_tx, batch), ((params, saf_tx.init(params)), xs, ys))
    state_bytes["lossjax saf"] = _tree_bytes(saf_tx.init(params))

    opaque = optax.contrib.sam(
        sgd, optax.chain(optax.contrib.normalize(), optax.sgd(RHO)), sync_period=2, opaque_mode=True
    )

    def opaque_step(carry, x, y):
        params, state = carry
        gf = lambda p, _: _grad(p, x, y)  # noqa: E731
        updates, state = opaque.update(_grad(params, x, y), state, params, grad_fn=gf)
        return optax.apply_updates(params, updates), state

    add("optax.contrib.sam opaque", opaque_step, (params, opaque.init(params)))

    transparent = optax.contrib.sam(sgd, optax.chain(optax.contrib.normalize(), optax.sgd(RHO)), sync_period=2)

    def transparent_step(carry, x, y):  # one SAM step = two update calls (adversarial, then outer)
        params, state = carry
        for _ in range(2):
            updates, state = transparent.update(_grad(params, x, y), state, params)
            params = optax.apply_updates(params, updates)
        return params, state

    add("optax.contrib.sam transparent", transparent_step, (params, transparent.init(params)))

    p_bytes = _tree_bytes(params)
    note = (
        f"MLP {dims}, {n_params / 1e6:.2f}M params ({p_bytes / 2**20:.1f} MiB), batch {batch}, {STEPS} steps per call. "
        "Optimizer state, MiB (params = "
        f"{p_bytes / 2**20:.2f}): " + ", ".join(f"{k.split(' (')[0]} {v / 2**20:.2f}" for k, v in state_bytes.items())
    )
    return Case(f"SAM step, MLP {n_params / 1e6:.1f}M", variants, baseline="sgd-momentum (baseline)", note=note)
