"""Regression family, forward+backward: lossjax vs the direct jnp transcriptions of the references.

- Cox partial likelihood on ``N`` examples with tied times: lossjax sorts once and
  takes a reverse cumulative log-sum-exp (``O(N log N)``, ``O(N)`` memory); the
  reference (pycox's ``cox_ph_loss`` / the risk-set definition) builds the
  ``[N, N]`` at-risk matrix and a masked log-sum-exp per row.
- Multi-resolution STFT loss on ``[B, T]`` waveforms at Parallel WaveGAN's three
  resolutions: lossjax frames with one gather and ``rfft``; the reference
  multiplies the frames by an explicit ``[n_fft, n_fft/2+1]`` DFT matrix (what a
  port without an FFT does).
- Pinball loss with 9 quantile levels on ``[N, 9]``: lossjax's one ``maximum``
  vs the per-level Python loop of the TFT/quantile-aggregation code.
"""

import jax
import jax.numpy as jnp
import numpy as np

import lossjax
from lossjax.benchmarking import Case


def _grad(loss):
    return jax.value_and_grad(loss)


def _cox_pairwise(eta, times, events):
    at_risk = times[None, :] >= times[:, None]  # [N, N]
    log_risk = jax.nn.logsumexp(jnp.where(at_risk, eta[None, :], -jnp.inf), axis=1)
    return -jnp.sum(events * (eta - log_risk)) / jnp.sum(events)


def _dft_stft_loss(x, y, ffts=(1024, 2048, 512), hops=(120, 240, 50), wins=(600, 1200, 240)):
    total = 0.0
    for n_fft, hop, win in zip(ffts, hops, wins, strict=True):
        w = np.zeros(n_fft)
        left = (n_fft - win) // 2
        w[left : left + win] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
        k = np.arange(n_fft // 2 + 1)
        ang = 2 * np.pi * np.outer(np.arange(n_fft), k) / n_fft
        cos, sin = jnp.asarray(np.cos(ang) * w[:, None], x.dtype), jnp.asarray(np.sin(ang) * w[:, None], x.dtype)

        def mag(s, n_fft=n_fft, hop=hop, cos=cos, sin=sin):
            s = jnp.pad(s, ((0, 0), (n_fft // 2, n_fft // 2)), mode="reflect")
            n = 1 + (s.shape[-1] - n_fft) // hop
            frames = s[:, np.arange(n)[:, None] * hop + np.arange(n_fft)[None, :]]
            return jnp.sqrt(jnp.maximum((frames @ cos) ** 2 + (frames @ sin) ** 2, 1e-8))

        xm, ym = mag(x), mag(y)
        sc = jnp.linalg.norm(ym - xm) / jnp.linalg.norm(ym)
        total = total + sc + jnp.mean(jnp.abs(jnp.log(ym) - jnp.log(xm)))
    return total / len(ffts)


def _pinball_loop(q, y, levels):
    total = 0.0
    for i, tau in enumerate(levels):
        e = y - q[:, i]
        total = total + jnp.mean(tau * jnp.maximum(e, 0.0) + (1 - tau) * jnp.maximum(-e, 0.0))
    return total / len(levels)


def cases(size: str):
    n_cox, (b, t), n_q = (2048, (4, 16000), 1 << 16) if size == "small" else (16384, (32, 48000), 1 << 22)
    rng = np.random.default_rng(0)
    eta = jnp.asarray(rng.normal(size=n_cox), jnp.float32)
    times = jnp.asarray(rng.integers(0, n_cox // 4, size=n_cox), jnp.float32)  # ties
    events = jnp.asarray(rng.random(n_cox) < 0.6, jnp.float32)
    cox_args = (eta, times, events)  # arguments, not closed-over constants (XLA would fold the sort)
    x = jnp.asarray(rng.normal(size=(b, t)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(b, t)), jnp.float32)
    levels = tuple(np.linspace(0.1, 0.9, 9).tolist())
    q = jnp.asarray(rng.normal(size=(n_q, 9)), jnp.float32)
    yq = jnp.asarray(rng.normal(size=(n_q,)), jnp.float32)
    note = "ratios < 1 are faster than the direct transcription of the reference"
    return [
        Case(
            f"cox partial likelihood fwd+bwd N={n_cox} (tied times)",
            {
                "lossjax (sort + cumlogsumexp)": (_grad(lossjax.losses.cox_partial_likelihood_loss), cox_args),
                "reference (N x N risk sets)": (_grad(_cox_pairwise), cox_args),
            },
            baseline="reference (N x N risk sets)",
            note=note,
        ),
        Case(
            f"multi-resolution STFT fwd+bwd B={b} T={t}",
            {
                "lossjax (gather + rfft)": (_grad(lossjax.losses.multi_resolution_stft_loss), (x, y)),
                "reference (DFT matrices)": (_grad(_dft_stft_loss), (x, y)),
            },
            baseline="reference (DFT matrices)",
            note=note,
        ),
        Case(
            f"pinball 9 quantiles fwd+bwd N={n_q}",
            {
                "lossjax.pinball_loss": (
                    _grad(lambda a, b: jnp.mean(lossjax.losses.pinball_loss(a, b, quantiles=levels))),
                    (q, yq),
                ),
                "per-level loop (TFT)": (_grad(lambda a, b: _pinball_loop(a, b, levels)), (q, yq)),
            },
            baseline="per-level loop (TFT)",
            floor_bytes=8 * n_q * 9 + 4 * n_q,
            note=note,
        ),
    ]
