"""Policy-gradient losses (lossjax/losses/_policy_gradient.py): hand-derived values and gradients, trl's GRPO
normalizations under token masks, the KL estimators' bias, the advantages, the logged metrics and the errors.

The conformance suite compares every entry with trl 1.16.0's formulas on its sample
(lossjax/expected/policy_gradient.json, tests/reference/make_expected_policy_gradient.py)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossjax import losses as L
from lossjax.testing import assert_close


def _inputs():
    lp = np.log(np.array([[0.6, 0.3, 0.5], [0.2, 0.4, 0.1]], np.float32))
    old = np.log(np.array([[0.4, 0.3, 0.6], [0.3, 0.2, 0.1]], np.float32))
    adv = np.array([1.0, -2.0], np.float32)
    mask = np.array([[True, True, False], [True, True, True]])
    return lp, old, adv, mask


def test_ppo_clip_values_and_gradients_by_hand():
    lp, old, adv, _ = _inputs()
    r = np.exp(lp - old)  # [[1.5, 1, 0.833], [0.667, 2, 1]]
    a = adv[:, None]
    want = -np.minimum(r * a, np.clip(r, 0.8, 1.2) * a)
    got = L.ppo_clip_loss(lp, old, adv)
    assert_close(got, want, rtol=1e-6)
    # Clipped tokens (r > 1.2 with A > 0; r < 0.8 with A < 0) get no gradient; the others d/dlp (-r A) = -r A.
    g = jax.grad(lambda x: L.ppo_clip_loss(x, old, adv).sum())(lp)
    clipped = ((r > 1.2) & (a > 0)) | ((r < 0.8) & (a < 0))
    assert_close(g, np.where(clipped, 0.0, -r * a), rtol=1e-6)
    # Clip-higher widens the upper range only; delta caps the unclipped ratio of a negative advantage.
    assert_close(L.ppo_clip_loss(lp, old, adv, clip_range_high=0.6)[0, 0], -1.5, rtol=1e-6)
    capped = L.ppo_clip_loss(lp, old, adv, delta=1.5)  # r = 2, A = -2: min(r, delta) A = -3 -> loss 3
    assert_close(capped[1, 1], 3.0, rtol=1e-6)


def test_sequence_level_ratio_is_the_token_mean():
    lp, old, adv, mask = _inputs()
    s = np.exp([(lp[0, :2] - old[0, :2]).mean(), (lp[1] - old[1]).mean()])
    a = adv
    want = -np.minimum(s * a, np.clip(s, 0.8, 1.2) * a)
    got = L.ppo_clip_loss(lp, old, adv, importance_sampling_level="sequence", token_where=mask)
    assert_close(got, np.where(mask, want[:, None], 0.0), rtol=1e-6)
    # GSPO: grpo_loss at the sequence level with its tiny clip ranges.
    gspo = L.gspo_loss(lp, old, adv, token_where=mask)
    want = np.mean(-np.minimum(s * a, np.clip(s, 1 - 3e-4, 1 + 4e-4) * a))
    assert_close(gspo, want, rtol=1e-6)


@pytest.mark.parametrize("variant", ["grpo", "bnpo", "dapo", "dr_grpo"])
def test_grpo_normalizations_under_masks(variant):
    lp, old, adv, mask = _inputs()
    lp = lp.copy()
    lp[0, 2] = np.nan  # padding may hold garbage
    ref = (np.nan_to_num(lp) + 0.3).astype(np.float32)
    per = np.asarray(L.ppo_clip_loss(lp, old, adv, token_where=mask), np.float64)
    rho = ref - np.nan_to_num(lp)
    per = np.where(mask, per + 0.1 * (np.exp(rho) - rho - 1), 0.0)
    want = {
        "grpo": np.mean(per.sum(1) / mask.sum(1)),
        "bnpo": per.sum() / mask.sum(),
        "dapo": per.sum() / mask.sum(),
        "dr_grpo": per.sum() / (2 * 7),
    }[variant]
    kw = {"max_completion_length": 7} if variant == "dr_grpo" else {}

    def f(x):
        return L.grpo_loss(x, old, adv, ref, variant=variant, beta=0.1, token_where=mask, **kw)

    val, g = jax.jit(jax.value_and_grad(f))(lp)
    assert_close(val, want, rtol=1e-5)
    assert np.all(np.isfinite(g)) and g[0, 2] == 0.0


def test_grpo_entropy_bonus_and_on_policy_value():
    lp, _, adv, mask = _inputs()
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 5)), jnp.float32)
    h = L.token_entropy(logits)
    base = L.grpo_loss(lp, lp, adv, token_where=mask, variant="bnpo")
    # On-policy (ratio 1): the loss is minus the token-weighted mean advantage.
    assert_close(base, -(2 * 1.0 + 3 * -2.0) / 5, rtol=1e-6)
    got = L.grpo_loss(lp, lp, adv, token_where=mask, variant="bnpo", entropy_weight=0.01, token_entropies=h)
    assert_close(got, base - 0.01 * jnp.sum(jnp.where(mask, h, 0.0)) / 5, rtol=1e-6)
    # The bonus is differentiable through the logits: raising the entropy lowers the loss.
    gz = jax.grad(lambda z: L.grpo_loss(lp, lp, adv, entropy_weight=1.0, token_entropies=L.token_entropy(z)))(logits)
    assert np.all(np.isfinite(gz)) and float(jnp.abs(gz).sum()) > 0


def test_token_entropy_edges():
    assert_close(L.token_entropy(jnp.zeros((2, 4))), jnp.full((2,), math.log(4)), rtol=1e-6)
    z = jnp.array([[0.0, -jnp.inf, 0.0]])
    assert_close(L.token_entropy(z), [math.log(2)], rtol=1e-6)
    g = jax.grad(lambda x: L.token_entropy(x).sum())(z)
    assert np.all(np.isfinite(g))
    assert_close(L.token_entropy(jnp.array([[1e4, 0.0, 0.0]])), [0.0], atol=1e-6)


def test_kl_estimators_are_unbiased_where_claimed():
    rng = np.random.default_rng(1)
    p = np.array([0.5, 0.3, 0.2])
    q = np.array([0.3, 0.3, 0.4])
    y = rng.choice(3, size=(1, 40000), p=p)
    lp, lq = np.log(p)[y].astype(np.float32), np.log(q)[y].astype(np.float32)
    true_kl = float(np.sum(p * np.log(p / q)))
    k1, k2, k3 = (float(L.approx_kl(lp, lq, variant=v)) for v in ("k1", "k2", "k3"))
    assert abs(k1 - true_kl) < 0.01 and abs(k3 - true_kl) < 0.01
    assert k2 > 0 and abs(k2 - true_kl) < 0.05  # biased, close for nearby distributions
    assert np.all(np.asarray(L.kl_estimate(lp, lq)) >= 0)  # k3 is non-negative per token
    # k3 at a log-ratio of 1e4 stays finite (exponent clamped at 80), and equals the plain formula elsewhere.
    assert np.isfinite(float(L.kl_estimate(jnp.array([[-1e4]]), jnp.array([[0.0]]))[0, 0]))
    assert_close(L.kl_estimate(jnp.array([[-1.0]]), jnp.array([[-0.5]])), [[math.exp(0.5) - 0.5 - 1]], rtol=1e-6)


def test_group_relative_advantages():
    r = np.array([[1.0, 0.0, 0.5, np.nan], [2.0, 2.0, 2.0, 2.0], [3.0, np.nan, np.nan, np.nan]], np.float32)
    got = np.asarray(L.group_relative_advantages(r))
    m = np.nanmean(r[0])
    s = np.nanstd(r[0], ddof=1)
    assert_close(got[0], np.append((r[0, :3] - m) / (s + 1e-4), 0.0), rtol=1e-5)
    assert np.all(got[1] == 0) and np.all(got[2] == 0)  # equal rewards; one scored completion
    none = np.asarray(L.group_relative_advantages(r, scale_rewards="none"))
    assert_close(none[0, :3], r[0, :3] - m, rtol=1e-6)
    batch = np.asarray(L.group_relative_advantages(r, scale_rewards="batch", epsilon=0.0))
    assert_close(batch[0, :3], (r[0, :3] - m) / np.nanstd(r, ddof=1), rtol=1e-5)


def test_clip_fraction_and_approx_kl_metrics():
    lp, old, adv, mask = _inputs()
    # ratios [[1.5, 1, 0.833], [0.667, 2, 1]], A = [1, -2]: high-clipped (0, 0); low-clipped (1, 0).
    assert_close(L.clip_fraction(lp, old, adv, token_where=mask, variant="high"), 1 / 5)
    assert_close(L.clip_fraction(lp, old, adv, token_where=mask, variant="low"), 1 / 5)
    assert_close(L.clip_fraction(lp, old, adv, token_where=mask), 2 / 5)
    rho = (old - lp)[mask]
    assert_close(L.approx_kl(lp, old, token_where=mask), np.mean(np.exp(rho) - rho - 1), rtol=1e-5)
    assert_close(L.approx_kl(lp, old, token_where=mask, variant="k2"), np.mean(rho**2 / 2), rtol=1e-5)


def test_unified_policy_gradient_equals_sft_and_ppo_gradients():
    lp, old, adv, _ = _inputs()
    sft = jax.grad(lambda x: L.unified_policy_gradient_loss(x, jax.lax.stop_gradient(x), jnp.ones(2)).sum())(lp)
    assert_close(sft, -np.ones_like(lp))
    upg = jax.grad(lambda x: L.unified_policy_gradient_loss(x, old, adv).sum())(lp)
    ppo = jax.grad(lambda x: L.ppo_clip_loss(x, old, adv).sum())(lp)
    assert_close(upg, ppo, rtol=1e-6)


def test_errors_name_the_function_and_argument():
    lp, old, adv, _ = _inputs()
    with pytest.raises(ValueError, match=r"grpo_loss: `beta=0.1`.*ref_log_probs"):
        L.grpo_loss(lp, old, adv, beta=0.1)
    with pytest.raises(ValueError, match=r"grpo_loss: `entropy_weight=0.1` needs `token_entropies`"):
        L.grpo_loss(lp, old, adv, entropy_weight=0.1)
    with pytest.raises(ValueError, match=r"ppo_clip_loss: `advantages` must have shape"):
        L.ppo_clip_loss(lp, old, np.ones(3, np.float32))
    with pytest.raises(ValueError, match=r"variant"):
        L.grpo_loss(lp, old, adv, variant="ppo")
