"""Long-tail and noisy-label losses, forward+backward: lossjax vs a direct jnp port of the reference.

- LDAM on ``[N, C]`` logits: the reference builds the per-example margin with a
  one-hot matmul and a ``where``; lossjax subtracts ``margin * onehot`` inside the
  shared adjusted cross-entropy (one fusion).
- ASL (multi-label) on ``[N, C]``: the reference's clamps and ``pow`` written in jnp.
- Negative learning on ``[N, C]``: the NLNL reference ``log(clamp(1 - softmax, 1e-5))``
  vs lossjax's exact ``log(1 - p)`` (an extra log-sum-exp over the classes).

The floor is reading the logits and writing their gradient: 8 N C bytes (float32).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lossjax
from lossjax.benchmarking import Case


def _fwd_bwd(loss):
    return jax.value_and_grad(lambda z, y: jnp.sum(loss(z, y)))


def _ldam_reference(counts, max_m=0.5, s=30.0):  # kaidic/LDAM-DRW LDAMLoss's own argument names
    m_list = 1.0 / np.sqrt(np.sqrt(counts))
    m_list = jnp.asarray(m_list * (max_m / np.max(m_list)), jnp.float32)

    def loss(x, target):
        index = jax.nn.one_hot(target, x.shape[-1], dtype=x.dtype)
        batch_m = (m_list[None, :] @ index.T).reshape(-1, 1)
        output = jnp.where(index > 0, x - batch_m, x)
        return optax.softmax_cross_entropy_with_integer_labels(s * output, target)

    return loss


def _asl_reference(x, y, gamma_neg=4.0, gamma_pos=1.0, clip=0.05, eps=1e-8):  # Alibaba-MIIL/ASL's names
    xs_pos = jax.nn.sigmoid(x)
    xs_neg = jnp.minimum(1 - xs_pos + clip, 1.0)
    loss = y * jnp.log(jnp.maximum(xs_pos, eps)) + (1 - y) * jnp.log(jnp.maximum(xs_neg, eps))
    pt = xs_pos * y + xs_neg * (1 - y)
    return -loss * jnp.power(1 - pt, gamma_pos * y + gamma_neg * (1 - y))


def _nlnl_reference(x, y):
    s_neg = jnp.log(jnp.clip(1.0 - jax.nn.softmax(x, axis=-1), 1e-5, 1.0))
    return -jnp.take_along_axis(s_neg, y[:, None], axis=-1)[:, 0]


def cases(size: str):
    n, c = (4096, 1000) if size == "small" else (65536, 4096)
    rng = np.random.default_rng(0)
    counts = np.maximum(1, np.round(1000 * 0.01 ** (np.arange(c) / (c - 1)))).astype(np.int32)
    keys = jax.random.split(jax.random.key(0), 4)
    logits = [jax.random.normal(k, (n, c), jnp.float32) for k in keys[:2]]
    int_labels = [jnp.asarray(rng.integers(0, c, size=n), jnp.int32) for _ in range(2)]
    ml_labels = [jax.random.bernoulli(k, 0.05, (n, c)).astype(jnp.float32) for k in keys[2:]]
    single = list(zip(logits, int_labels, strict=True))
    multi = list(zip(logits, ml_labels, strict=True))
    floor = 8 * n * c
    note = "ratios < 1 are faster than the direct port of the reference"
    return [
        Case(
            f"ldam fwd+bwd N={n} C={c}",
            {
                "lossjax.ldam_loss": (
                    _fwd_bwd(
                        lambda z, y: lossjax.losses.ldam_loss(z, y, class_counts=counts, max_margin=0.5, scale=30.0)
                    ),
                    single,
                ),
                "reference port (jnp)": (_fwd_bwd(_ldam_reference(counts)), single),
            },
            baseline="reference port (jnp)",
            floor_bytes=floor,
            note=note,
        ),
        Case(
            f"asymmetric_loss fwd+bwd N={n} C={c}",
            {
                "lossjax.asymmetric_loss": (
                    _fwd_bwd(lambda z, y: lossjax.losses.asymmetric_loss(z, y, margin=0.05, epsilon=1e-8)),
                    multi,
                ),
                "lossjax autodiff (traced gamma_neg)": (
                    _fwd_bwd(
                        lambda z, y: lossjax.losses.asymmetric_loss(
                            z, y, gamma_neg=jnp.float32(4.0), margin=0.05, epsilon=1e-8
                        )
                    ),
                    multi,
                ),
                "reference port (jnp)": (_fwd_bwd(_asl_reference), multi),
            },
            baseline="reference port (jnp)",
            floor_bytes=floor + 4 * n * c,
            note=note + " (floor includes reading the float labels)",
        ),
        Case(
            f"negative_learning fwd+bwd N={n} C={c}",
            {
                "lossjax.negative_learning_loss": (_fwd_bwd(lossjax.losses.negative_learning_loss), single),
                "NLNL port (clamped, jnp)": (_fwd_bwd(_nlnl_reference), single),
            },
            baseline="NLNL port (clamped, jnp)",
            floor_bytes=floor,
            note=note,
        ),
    ]
