# %% [markdown]
# # Post-training a toy language model: DPO vs IPO vs SimPO vs GRPO
#
# A tiny generated task, no downloads: the "language model" is a **bigram policy** on a toy
# vocabulary (a table of next-token logits per previous token), it writes sequences of a fixed
# length from a start token, and a **rule-based reward** scores a sequence by the fraction of
# its steps that go *up* (token larger than the previous one).
#
# * The reference policy `pi_ref` is the random initial table.
# * Preference data: pairs of completions sampled from `pi_ref`; the one with the larger reward is
#   *chosen*. Offline losses on these pairs: `dpo_loss`, `ipo_loss`, `simpo_loss`.
# * Online RL: `grpo_loss` on groups of fresh samples with `group_relative_advantages` of the
#   reward and a k3 KL penalty to `pi_ref`.
#
# Every loss takes per-token log-probabilities (`lossjax.losses.token_log_probs` of the logits);
# we plot the reward of fresh samples, the DPO-style reward margin on the preference pairs and
# the KL to the reference (`approx_kl`, k3, on fresh samples). `LOSSJAX_SMALL=1` makes it tiny.

# %%
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import lossjax
from lossjax import losses as L

SMALL = os.environ.get("LOSSJAX_SMALL") == "1"
V, T = 8, 6  # vocabulary, completion length
PAIRS = 64 if SMALL else 512
STEPS = 25 if SMALL else 300
GROUPS, SAMPLES = (8, 4) if SMALL else (32, 8)
print("backend:", jax.default_backend(), "| small:", SMALL)

# %% [markdown]
# ## The bigram policy, sampling and the reward

# %%
ref_table = jnp.asarray(np.random.default_rng(0).normal(size=(V, V)) * 0.5, jnp.float32)


def sample(table, key, n):
    """n sequences of T tokens after the start token 0; returns (previous tokens, tokens), each [n, T]."""

    def step(prev, k):
        tok = jax.random.categorical(k, table[prev])
        return tok, (prev, tok)

    _, (prev, tok) = jax.lax.scan(step, jnp.zeros((n,), jnp.int32), jax.random.split(key, T))
    return prev.T, tok.T


def token_logps(table, prev, tok):
    """[n, T] log-probabilities of the tokens under a bigram table (logits table[prev])."""
    return L.token_log_probs(table[prev], tok)


def reward(prev, tok):
    return jnp.mean((tok > prev).astype(jnp.float32), axis=-1)


prev, tok = sample(ref_table, jax.random.key(1), 1000)
print("reference policy: mean reward", float(reward(prev, tok).mean()))

# %% [markdown]
# ## Preference pairs from the reference policy

# %%
pa, ta = sample(ref_table, jax.random.key(2), PAIRS)
pb, tb = sample(ref_table, jax.random.key(3), PAIRS)
ra, rb = reward(pa, ta), reward(pb, tb)
a_wins = (ra >= rb)[:, None]
chosen = (jnp.where(a_wins, pa, pb), jnp.where(a_wins, ta, tb))
rejected = (jnp.where(a_wins, pb, pa), jnp.where(a_wins, tb, ta))
pair_mask = ra != rb  # ties carry no preference
ref_c, ref_r = token_logps(ref_table, *chosen), token_logps(ref_table, *rejected)
print("pairs", PAIRS, "with a preference:", int(pair_mask.sum()))


def offline_loss(name):
    def loss(table):
        pc, pr = token_logps(table, *chosen), token_logps(table, *rejected)
        if name == "dpo":
            per = L.dpo_loss(pc, pr, ref_c, ref_r, beta=0.5, where=pair_mask)
        elif name == "ipo":
            per = L.ipo_loss(pc, pr, ref_c, ref_r, beta=0.5, where=pair_mask)
        else:
            per = L.simpo_loss(pc, pr, beta=2.0, gamma=0.5, where=pair_mask)
        return jnp.sum(per) / jnp.sum(pair_mask)

    return loss


def grpo_step_loss(table, key):
    prev, tok = sample(jax.lax.stop_gradient(table), key, GROUPS * SAMPLES)
    adv = L.group_relative_advantages(reward(prev, tok).reshape(GROUPS, SAMPLES)).reshape(-1)
    lp = token_logps(table, prev, tok)
    ref = token_logps(ref_table, prev, tok)
    # One on-policy step per batch: the behaviour policy is the current one (ratio 1).
    return L.grpo_loss(lp, jax.lax.stop_gradient(lp), adv, ref, beta=0.04, variant="dapo")


# %% [markdown]
# ## Training: the same optimizer for every loss


# %%
def metrics(table, key):
    prev, tok = sample(table, key, 512)
    kl = L.approx_kl(token_logps(table, prev, tok), token_logps(ref_table, prev, tok))
    margin = L.implicit_rewards(token_logps(table, *chosen), ref_c, beta=0.5) - L.implicit_rewards(
        token_logps(table, *rejected), ref_r, beta=0.5
    )
    return reward(prev, tok).mean(), jnp.sum(jnp.where(pair_mask, margin, 0.0)) / jnp.sum(pair_mask), kl


def train(name):
    opt = optax.adam(0.05)
    table, state = ref_table, opt.init(ref_table)

    @jax.jit
    def step(table, state, key):
        k1, k2 = jax.random.split(key)
        if name == "grpo":
            loss, g = jax.value_and_grad(grpo_step_loss)(table, k1)
        else:
            loss, g = jax.value_and_grad(offline_loss(name))(table)
        updates, state = opt.update(g, state)
        return optax.apply_updates(table, updates), state, loss, metrics(table, k2)

    history = []
    for key in jax.random.split(jax.random.key(10), STEPS):
        table, state, loss, m = step(table, state, key)
        history.append([float(loss), *map(float, m)])
    return np.asarray(history)


runs = {name: train(name) for name in ("dpo", "ipo", "simpo", "grpo")}
for name, h in runs.items():
    print(f"{name:6s} final reward {h[-1, 1]:.3f}  margin {h[-1, 2]:+.3f}  KL to ref {h[-1, 3]:.3f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
for name, h in runs.items():
    for ax, k, title in zip(axes, (1, 2, 3), ("reward of fresh samples", "reward margin (beta=0.5)", "KL to ref (k3)")):
        ax.plot(h[:, k], label=name)
        ax.set_title(title)
        ax.set_xlabel("step")
axes[0].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# Every method raises the reward above the reference policy's; the offline losses widen the
# implicit reward margin on their fixed pairs (SimPO, reference-free, still moves away from the
# reference), while GRPO, trained on its own samples with a KL penalty, keeps the KL small for
# the reward it reaches.

# %%
ref_reward = float(reward(*sample(ref_table, jax.random.key(5), 2000)).mean())
for name, h in runs.items():
    assert np.all(np.isfinite(h)), name
    assert h[-1, 1] > ref_reward, (name, h[-1, 1], ref_reward)
print("reference reward", round(ref_reward, 3), "| all methods improve on it:", True)
# The same losses from hidden states and LM heads, fused (no [tokens, V] logits):
print([n for n in lossjax.available() if n.startswith("linear_") and "cross_entropy" not in n])
