"""Expected outputs of the ``classification`` family for the conformance ``value`` property.

Run (reference env, never at test time)::

    python tests/reference/dump_inputs.py --family classification     # lossjax env: the inputs
    python tests/reference/make_expected_classification.py             # reference env: this file

It reads ``tests/reference/inputs/classification.json`` and writes
``lossjax/expected/classification.json``: for every entry and case (the sample,
each hyperparameter variant, the extremes) the float64 value and the gradients
of ``sum(cotangent * out)`` (``expected_io``), computed WITHOUT lossjax by:

- upstream calls, run in float64: optax 0.2.8 (``jax_enable_x64``:
  ``sigmoid_focal_loss``, ``poly_loss_cross_entropy``, ``safe_softmax_cross_entropy``,
  ``hinge_loss``, ``perceptron_loss``, ``sparsemax_loss``, ``multiclass_hinge_loss``,
  ``multiclass_perceptron_loss``, ``multiclass_sparsemax_loss``, ``smooth_labels``),
  torch 2.13.0 (``F.cross_entropy(weight=, label_smoothing=)`` incl. probability
  targets, ``F.binary_cross_entropy_with_logits(pos_weight=)``,
  ``nn.MultiMarginLoss(p=1, 2)``) and MONAI 1.6 (``losses.focal_loss.softmax_focal_loss``);
- ports pinned to their upstream file and commit (torch, float64):
  lancopku/well-classified-examples-are-underestimated ``EncouragingLoss.py@1474bc3``,
  Like-Hui/Squentropy-for-classification ``main.py@67764eb`` (loss_type 'mixed', per example),
  statmlben/ensLoss ``losses.py@051d87d`` (``ensLoss``, with the key's normal draws),
  cvlab-yonsei/RankMixup ``calibrate/losses/rankmixup.py@e4a37c8`` (``RankMixup_MRL``, ``RankMixup_MNDCG``);
- closed forms written independently of lossjax's code: the PolyLoss eq. 4 focal
  variant, comp-sum as ``Phi^tau(u)`` of ``log(1 + u) = logsumexp(z - z_y)``, the
  smooth adversarial margin-change norm, one-vs-rest hinge sums, top-k sparse
  softmax, AnyLoss's soft confusion matrix and metrics.

Conventions shared with lossjax's documentation:

- a logit of ``-inf`` is evaluated as the limit ``z -> -inf`` of the upstream
  formula, by substituting ``-1e150`` (exact in float64 for every loss here:
  its softmax probability, its softplus, its hinge terms are exactly 0);
- label smoothing spreads its mass over the classes whose logit is finite
  (``optax.smooth_labels(where=z > -inf)``), the only difference from torch,
  which is infinite there.
"""

from __future__ import annotations

import math
import pathlib
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).parent))

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from expected_io import case_inputs, cotangent, expected_case, load_inputs, write_expected  # noqa: E402

torch.set_default_dtype(torch.float64)
FAMILY = "classification"
NEG = -1e150  # stands in for -inf: the limit of the upstream formula
TORCH = f"torch {torch.__version__.split('+')[0]}"
OPTAX = f"optax {optax.__version__} (float64)"


# ----------------------------------- helpers -----------------------------------


def stand_in(x: np.ndarray) -> np.ndarray:
    """-inf -> -1e150 (the limit, in float64)."""
    x = np.array(x, np.float64)
    x[np.isneginf(x)] = NEG
    return x


def torch_vg(fn, args, diff):
    """Float64 torch value of ``fn(*args)`` and gradients of ``sum(cotangent * out)`` w.r.t. ``diff``."""
    ts = []
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            ts.append(torch.tensor(stand_in(a), requires_grad=i in diff))
        elif isinstance(a, np.ndarray):
            ts.append(torch.tensor(a.astype(np.int64)))
        else:
            ts.append(a)
    out = fn(*ts)
    grads = []
    if diff:
        total = (torch.tensor(cotangent(tuple(out.shape))) * out).sum()
        got = torch.autograd.grad(total, [ts[i] for i in diff], allow_unused=True)
        grads = [np.zeros(args[i].shape) if g is None else g.numpy() for g, i in zip(got, diff, strict=True)]
    return out.detach().numpy(), grads


def jax_vg(fn, args, diff):
    """Float64 jax value of ``fn(*args)`` and gradients of ``sum(cotangent * out)`` w.r.t. ``diff``."""
    jargs = [jnp.asarray(stand_in(a)) if a.dtype.kind == "f" else jnp.asarray(a) for a in args]
    out = fn(*jargs)
    ct = jnp.asarray(cotangent(out.shape))

    def total(*d):
        a = list(jargs)
        for i, x in zip(diff, d, strict=True):
            a[i] = x
        return jnp.sum(ct * fn(*a))

    grads = jax.grad(total, argnums=tuple(range(len(diff))))(*[jargs[i] for i in diff]) if diff else ()
    return np.asarray(out), [np.asarray(g) for g in grads]


def onehot(y, c):
    return F.one_hot(y, c).double()


def targets(y, c):
    """One-hot for integer labels (torch int64), the distribution itself otherwise."""
    return onehot(y, c) if not torch.is_floating_point(y) else y


def smoothed(y: np.ndarray, logits: np.ndarray, a: float) -> np.ndarray:
    """Label smoothing over the classes with a finite logit: optax.smooth_labels(where=z > -inf), zero elsewhere."""
    c = logits.shape[-1]
    q = np.eye(c)[y] if y.dtype.kind in "iu" else y
    possible = ~np.isneginf(logits)
    q = np.asarray(optax.losses.smooth_labels(jnp.asarray(q), a, where=jnp.asarray(possible)))
    return np.where(possible, q, 0.0)


# ------------------------------- cross-entropy --------------------------------


def softmax_cross_entropy(args, kw, diff):
    z, _y = args
    a = kw.get("label_smoothing", 0.0)
    w = kw.get("class_weights")
    assert not (a and np.isneginf(z).any()), "smoothing with -inf: not a value case"
    weight = None if w is None else torch.tensor(np.asarray(w, np.float64))
    src = f"{TORCH} F.cross_entropy(weight=, label_smoothing=)"
    return src, torch_vg(
        lambda z, y: F.cross_entropy(z, y, weight=weight, label_smoothing=a, reduction="none"), args, diff
    )


def label_smoothing_cross_entropy(args, kw, diff):
    z, y = args
    a = kw.get("label_smoothing", 0.1)
    if not np.isneginf(z).any():
        src = f"{TORCH} F.cross_entropy(label_smoothing=)"
        return src, torch_vg(lambda z, y: F.cross_entropy(z, y, label_smoothing=a, reduction="none"), args, diff)
    q = torch.tensor(smoothed(y, z, a))
    src = f"{OPTAX} smooth_labels(where=z > -inf) + {TORCH} F.cross_entropy(probability targets)"
    return src, torch_vg(lambda z: F.cross_entropy(z, q, reduction="none"), [z], diff)


def safe_softmax_cross_entropy(args, kw, diff):
    z, y = args
    q = np.eye(z.shape[-1])[y]

    def f(z):
        # the upstream function with its own -inf handling: pass the infinities through
        return optax.losses.safe_softmax_cross_entropy(z, jnp.asarray(q))

    zj = jnp.asarray(np.asarray(z, np.float64))
    out = f(zj)
    ct = jnp.asarray(cotangent(out.shape))
    g = jax.grad(lambda z: jnp.sum(ct * f(z)))(zj)
    return f"{OPTAX} safe_softmax_cross_entropy (-inf passed as is)", (np.asarray(out), [np.asarray(g)])


def sigmoid_binary_cross_entropy(args, kw, diff):
    pw = torch.tensor(kw.get("pos_weight", 1.0))
    src = f"{TORCH} F.binary_cross_entropy_with_logits(pos_weight=)"
    return src, torch_vg(
        lambda z, y: F.binary_cross_entropy_with_logits(z, y, pos_weight=pw, reduction="none"), args, diff
    )


# ----------------------------------- focal ------------------------------------


def focal_loss(args, kw, diff):
    from monai.losses.focal_loss import softmax_focal_loss

    z, _y = args
    c = z.shape[-1]
    gamma = kw.get("gamma", 2.0)
    w = kw.get("class_weights")
    alpha = None if w is None else torch.tensor(np.broadcast_to(np.asarray(w, np.float64), (c,)).copy())
    src = "MONAI 1.6 losses.focal_loss.softmax_focal_loss(gamma, alpha=per-class weights), summed over classes"
    return src, torch_vg(lambda z, y: softmax_focal_loss(z, onehot(y, c), gamma, alpha).sum(-1), args, diff)


def sigmoid_focal_loss(args, kw, diff):
    alpha, gamma = kw.get("alpha", 0.25), kw.get("gamma", 2.0)
    src = f"{OPTAX} sigmoid_focal_loss(alpha, gamma)"
    return src, jax_vg(lambda z, y: optax.losses.sigmoid_focal_loss(z, y, alpha=alpha, gamma=gamma), args, diff)


def poly1_cross_entropy(args, kw, diff):
    z, y = args
    eps = kw.get("poly_coefficient", 2.0)
    q = jnp.asarray(np.eye(z.shape[-1])[y])
    src = f"{OPTAX} poly_loss_cross_entropy(epsilon=poly_coefficient)"
    return src, jax_vg(lambda z: optax.losses.poly_loss_cross_entropy(z, q, epsilon=eps), [z], diff)


def poly1_focal_loss(args, kw, diff):
    z, _y = args
    c = z.shape[-1]
    eps, gamma = kw.get("poly_coefficient", 1.0), kw.get("gamma", 2.0)
    w = kw.get("class_weights")

    def f(z, y):
        # PolyLoss (arXiv:2204.12511) eq. 4: FL_gamma + eps (1 - p_t)^(gamma + 1), per-class weight on both terms.
        logp = F.log_softmax(z, -1)
        q = onehot(y, c)
        pt = (q * logp.exp()).sum(-1)
        logpt = (q * logp).sum(-1)
        out = -((1 - pt) ** gamma) * logpt + eps * (1 - pt) ** (gamma + 1)
        return out if w is None else out * (q * torch.tensor(np.asarray(w, np.float64))).sum(-1)

    return "PolyLoss eq. 4 closed form (torch float64)", torch_vg(f, args, diff)


# --------------------------------- comp-sum -----------------------------------


def _comp_sum(z, y, tau):
    # Phi^tau(u) with u = sum_{y' != y} exp(z_y' - z_y): log(1 + u) = logsumexp(z - z_y) (the definition in log space).
    log1pu = torch.logsumexp(z - z.gather(-1, y[..., None]), -1)
    if tau == 1.0:
        return log1pu
    return (torch.exp((1 - tau) * log1pu) - 1) / (1 - tau)


def comp_sum_loss(args, kw, diff):
    tau = kw.get("tau", 1.0)
    src = "comp-sum definition Phi^tau(sum_{y' != y} exp(z_y' - z_y)) (Mao et al. 2023), torch float64"
    return src, torch_vg(lambda z, y: _comp_sum(z, y, tau), args, diff)


def smooth_adversarial_comp_sum_loss(args, kw, diff):
    tau, nu = kw.get("tau", 1.0), kw.get("nu", 1.0)

    def f(z, y, zp):
        delta = lambda v: v - v.gather(-1, y[..., None])  # noqa: E731  (margin vector of Mao et al.)
        return _comp_sum(z, y, tau) + nu * torch.linalg.vector_norm(delta(zp) - delta(z), dim=-1)

    return "comp-sum + nu ||Delta(z') - Delta(z)||_2 (Mao et al. 2023 sec. 6), torch float64", torch_vg(f, args, diff)


# ------------------------------ encouraging, squentropy ------------------------------


def encouraging_loss(args, kw, diff):
    log_end = kw.get("log_end", 0.75)

    def f(input, target):
        # lancopku EncouragingLoss.py@1474bc3 EncouragingLoss.forward, reduction='none'.
        lprobs = F.log_softmax(input, dim=-1)
        probs = torch.exp(lprobs)
        bonus = torch.log(torch.clamp((torch.ones_like(probs) - probs), min=1e-5))
        if log_end != 1.0:
            y_log_end = torch.log(torch.ones_like(probs) - log_end)
            bonus_after_log_end = 1 / (log_end - torch.ones_like(probs)) * (probs - log_end) + y_log_end
            bonus = torch.where(probs > log_end, bonus_after_log_end, bonus)
        return F.nll_loss(lprobs - bonus, target.view(-1), reduction="none")

    return "lancopku/well-classified-examples-are-underestimated EncouragingLoss.py@1474bc3 (port)", torch_vg(
        f, args, diff
    )


def squentropy(args, kw, diff):
    c = args[0].shape[-1]

    def f(output, target):
        # Like-Hui/Squentropy-for-classification main.py@67764eb, loss_type 'mixed', kept per example.
        target_final = onehot(target, c)
        square = ((output**2) * (1 - target_final)).sum(-1) / (c - 1)
        return square + F.cross_entropy(output, target, reduction="none")

    return "Like-Hui/Squentropy-for-classification main.py@67764eb 'mixed' (port)", torch_vg(f, args, diff)


# ----------------------------------- hinge ------------------------------------


def _ovr(z, q, m, squared):
    pos, neg = torch.relu(m - z), torch.relu(m + z)
    if squared:
        pos, neg = pos**2, neg**2
    return (q * pos + (1 - q) * neg).sum(-1)


def _multiclass_hinge(args, kw, diff, squared):
    z, _y = args
    c = z.shape[-1]
    variant = kw.get("variant", "weston_watkins" if squared else "crammer_singer")
    m = kw.get("margin", 1.0)
    if variant == "crammer_singer":
        assert m == 1.0
        f = optax.losses.multiclass_hinge_loss
        if squared:
            f = lambda z, y: optax.losses.multiclass_hinge_loss(z, y) ** 2  # noqa: E731
        return f"{OPTAX} multiclass_hinge_loss" + (" ** 2" if squared else ""), jax_vg(f, args, diff)
    if variant == "weston_watkins":
        p = 2 if squared else 1
        crit = torch.nn.MultiMarginLoss(p=p, margin=m, reduction="none")
        return f"{TORCH} nn.MultiMarginLoss(p={p}, margin) * C", torch_vg(lambda z, y: crit(z, y) * c, args, diff)
    return "one-vs-rest hinge sum (closed form, torch)", torch_vg(
        lambda z, y: _ovr(z, onehot(y, c), m, squared), args, diff
    )


def multiclass_hinge_loss(args, kw, diff):
    return _multiclass_hinge(args, kw, diff, False)


def multiclass_squared_hinge_loss(args, kw, diff):
    return _multiclass_hinge(args, kw, diff, True)


def multiclass_perceptron_loss(args, kw, diff):
    return f"{OPTAX} multiclass_perceptron_loss", jax_vg(optax.losses.multiclass_perceptron_loss, args, diff)


def _scaled_hinge(m):
    # max(0, m - y z) = m * hinge(z / m, y): optax's hinge at another margin (exact in float64 for m = 2).
    return lambda z, y: m * optax.losses.hinge_loss(z / m, y)


def hinge_loss(args, kw, diff):
    m = kw.get("margin", 1.0)
    return f"{OPTAX} hinge_loss (margin m: m * hinge_loss(z / m, y))", jax_vg(_scaled_hinge(m), args, diff)


def squared_hinge_loss(args, kw, diff):
    m = kw.get("margin", 1.0)
    return f"{OPTAX} hinge_loss ** 2 (margin m: m * hinge_loss(z / m, y))", jax_vg(
        lambda z, y: _scaled_hinge(m)(z, y) ** 2, args, diff
    )


def perceptron_loss(args, kw, diff):
    return f"{OPTAX} perceptron_loss", jax_vg(optax.losses.perceptron_loss, args, diff)


def sparsemax_loss(args, kw, diff):
    return f"{OPTAX} sparsemax_loss (binary)", jax_vg(optax.losses.sparsemax_loss, args, diff)


def multiclass_sparsemax_loss(args, kw, diff):
    return f"{OPTAX} multiclass_sparsemax_loss", jax_vg(optax.losses.multiclass_sparsemax_loss, args, diff)


# ------------------------------ sparse softmax, OVR ------------------------------


def sparse_softmax_cross_entropy(args, kw, diff):
    z, _y = args
    c = z.shape[-1]
    k = kw.get("k", 10)
    if k >= c:
        return f"{TORCH} F.cross_entropy (k >= C)", torch_vg(
            lambda z, y: F.cross_entropy(z, y, reduction="none"), args, diff
        )

    def f(z, y):
        # Sun et al. 2021 sparse-softmax: cross-entropy over the top-k logits, the target always kept.
        kth = torch.topk(z.detach(), k, dim=-1).values[..., -1:]
        keep = (z >= kth) | (onehot(y, c) > 0)
        lse = torch.logsumexp(torch.where(keep, z, torch.tensor(-torch.inf)), -1)
        return lse - z.gather(-1, y[..., None])[..., 0]

    return "top-k restricted cross-entropy with the target kept (closed form, torch)", torch_vg(f, args, diff)


def one_vs_rest_loss(args, kw, diff):
    c = args[0].shape[-1]
    return f"{TORCH} F.binary_cross_entropy_with_logits(z, onehot).sum(-1)", torch_vg(
        lambda z, y: F.binary_cross_entropy_with_logits(z, onehot(y, c), reduction="none").sum(-1), args, diff
    )


# ---------------------------------- EnsLoss -----------------------------------


def ensloss(args, kw, diff):
    z, _y = args
    lam = kw.get("boxcox_lambda", 0.0)
    key = jax.random.wrap_key_data(np.asarray(kw["key"]["prng_key_data"], np.uint32))
    # lossjax draws its normals in the compute dtype (float32 for float32 logits): the same draws here.
    draws = np.asarray(jax.random.normal(key, (z.shape[0],), jnp.float32), np.float64)

    def f(output, target):
        # statmlben/ensLoss losses.py@051d87d ensLoss.forward (CPU), torch.randn replaced by the key's draws,
        # BC_inv with self.lam = lam, and a stable sort (ties broken by index, as lossjax).
        target = 2.0 * target - 1.0
        s_batch = output.flatten() * target.flatten()
        g_batch = torch.zeros(len(target))
        rd_grad = torch.tensor(draws)
        if lam == 0.0:
            rd_grad = -torch.exp(rd_grad)
        else:
            diff_ = 1.0 + lam * rd_grad
            rd_grad = -((torch.where(diff_ > 0.0, diff_, 0.0)) ** (1.0 / lam))
        rd_grad, _ = torch.sort(rd_grad)
        rd_grad = torch.maximum(rd_grad, torch.tensor(-1.0))
        _, ind_tmp = torch.sort(s_batch.detach(), stable=True)
        g_batch[ind_tmp] = rd_grad
        s_batch_no_grad = s_batch.detach()
        pos_ind = s_batch_no_grad > 1.0
        g_batch[pos_ind] *= 1 / s_batch_no_grad[pos_ind]
        g_batch = g_batch.detach() - 1e-6
        return (g_batch * s_batch).mean()

    return "statmlben/ensLoss losses.py@051d87d ensLoss (port; the key's float32 normals)", torch_vg(f, args, diff)


# ---------------------------------- AnyLoss -----------------------------------


def anyloss(args, kw, diff):
    metric, beta = kw.get("metric", "f_beta"), kw.get("beta", 1.0)
    big_l, e = kw.get("amplification", 73.0), kw.get("epsilon", 1e-7)

    def f(p, y):
        # Han et al. 2024 (arXiv:2405.14745): A = sigmoid(L (p - 1/2)), soft confusion matrix, 1 - metric,
        # every denominator + epsilon (as lossjax documents).
        a = torch.sigmoid(big_l * (p - 0.5))
        tp, fn = (y * a).sum(), (y * (1 - a)).sum()
        fp, tn = ((1 - y) * a).sum(), ((1 - y) * (1 - a)).sum()
        if metric == "accuracy":
            m = (tp + tn) / (tp + tn + fp + fn + e)
        elif metric == "f_beta":
            m = (1 + beta**2) * tp / ((1 + beta**2) * tp + beta**2 * fn + fp + e)
        else:
            tpr, tnr = tp / (tp + fn + e), tn / (tn + fp + e)
            if metric == "balanced_accuracy":
                m = (tpr + tnr) / 2
            elif metric == "g_mean":
                m = torch.sqrt(tpr * tnr)
            else:
                m = (tp * tn - fp * fn) / (torch.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)) + e)
        return 1 - m

    return "AnyLoss formulas (arXiv:2405.14745), torch float64", torch_vg(f, args, diff)


# --------------------------------- RankMixup ----------------------------------


def rankmixup_loss(args, kw, diff):
    _z, _y, zm, _qm = args
    n, m_count, c = zm.shape
    variant, margin, alpha = kw.get("variant", "mrl"), kw.get("margin", 0.1), kw.get("ranking_weight", 0.1)

    def f(inputs, targets, mixed, target_re):
        # cvlab-yonsei/RankMixup calibrate/losses/rankmixup.py@e4a37c8 RankMixup_MRL / RankMixup_MNDCG.forward,
        # the CE kept per example (the reference means it), mixups laid out mixup-major [M * N, C];
        # max as torch.amax (tied maxima share the subgradient, as JAX's max; .max(dim) picks one).
        mixup = mixed.transpose(0, 1).reshape(-1, c)
        target_re = target_re.transpose(0, 1).reshape(-1, c)
        loss_ce = F.cross_entropy(inputs, targets, reduction="none")
        if variant == "mrl":
            terms = []
            for k in range(m_count):
                mix, tre = mixup[k * n : (k + 1) * n], target_re[k * n : (k + 1) * n]
                self_mixup_mask = (tre == 1.0).sum(dim=1).reshape(1, -1)
                self_mixup_mask = self_mixup_mask.sum(dim=0) == 0.0
                d = torch.amax(mix, dim=1) - torch.amax(inputs, dim=1)
                terms.append(self_mixup_mask * F.relu(d + margin))
            return loss_ce + alpha * torch.stack(terms).mean(0)
        lam = torch.ones(m_count)
        mixup = F.softmax(mixup.reshape(len(lam), -1, c), dim=2)
        target_re = target_re.reshape(len(lam), -1, c)
        probs = F.softmax(inputs, dim=1)
        inputs_lam = torch.ones(probs.size(0), 1)
        max_values = torch.amax(probs, dim=1, keepdim=True)
        max_mixup = torch.amax(mixup, dim=2).t()
        max_lam = torch.amax(target_re, dim=2).t()
        sort_index = torch.argsort(max_lam, descending=True, stable=True)
        max_mixup_sorted = torch.gather(max_mixup, 1, sort_index)
        dcg_order = torch.log2(torch.arange(1, 2 + len(lam)) + 1)
        max_mixup_sorted = torch.cat((max_values, max_mixup_sorted), dim=1)
        dcg = (max_mixup_sorted / dcg_order).sum(dim=1)
        max_lam_sorted = torch.cat((inputs_lam, torch.gather(max_lam, 1, sort_index)), dim=1)
        idcg = (max_lam_sorted / dcg_order).sum(dim=1)
        ndcg_mask = idcg > dcg
        ndcg = ndcg_mask * (dcg / idcg) + (~ndcg_mask) * (idcg / dcg)
        return loss_ce + alpha * (1.0 - ndcg)

    src = f"cvlab-yonsei/RankMixup calibrate/losses/rankmixup.py@e4a37c8 RankMixup_{variant.upper()} (port)"
    return src, torch_vg(f, args, diff)


# -------------------------------- smooth_labels --------------------------------


def smooth_labels(args, kw, diff):
    (_q,) = args
    a, where = kw["label_smoothing"], kw.get("where")

    def f(q):
        return optax.losses.smooth_labels(q, a, where=None if where is None else jnp.asarray(where))

    return f"{OPTAX} smooth_labels(labels, alpha=label_smoothing, where=)", jax_vg(f, args, diff)


# ----------------------------------- driver -----------------------------------

REFERENCES = {
    name: globals()[name]
    for name in (
        "anyloss",
        "comp_sum_loss",
        "encouraging_loss",
        "ensloss",
        "focal_loss",
        "hinge_loss",
        "label_smoothing_cross_entropy",
        "multiclass_hinge_loss",
        "multiclass_perceptron_loss",
        "multiclass_sparsemax_loss",
        "multiclass_squared_hinge_loss",
        "one_vs_rest_loss",
        "perceptron_loss",
        "poly1_cross_entropy",
        "poly1_focal_loss",
        "rankmixup_loss",
        "safe_softmax_cross_entropy",
        "sigmoid_binary_cross_entropy",
        "sigmoid_focal_loss",
        "smooth_adversarial_comp_sum_loss",
        "smooth_labels",
        "softmax_cross_entropy",
        "sparse_softmax_cross_entropy",
        "sparsemax_loss",
        "squared_hinge_loss",
        "squentropy",
    )
}


def make(family: str, references: dict) -> dict:
    """Runs every reference on every case of ``inputs/<family>.json``; returns the records."""
    inputs = load_inputs(family)
    missing = sorted(set(inputs) - set(references))
    assert not missing, f"no reference for {missing}"
    records = {}
    for name, entry in sorted(inputs.items()):
        diff = tuple(entry["diff_argnums"])
        cases, sources = [], []
        for case in entry["cases"]:
            args, kwargs = case_inputs(case)
            src, result = references[name](args, kwargs, diff)
            value, grads, aux = (*result, None) if len(result) == 2 else result
            assert np.all(np.isfinite(np.asarray(value, np.float64))), (name, case["case"], case["variant"])
            assert all(np.all(np.isfinite(g)) for g in grads), (name, case["case"], case["variant"], "grad")
            cases.append(expected_case(case, value, grads, aux))
            sources.append(src)
        records[name] = {"source": "; ".join(dict.fromkeys(sources)), "cases": cases}
    return records


if __name__ == "__main__":
    recs = make(FAMILY, REFERENCES)
    path = write_expected(FAMILY, recs)
    print(f"{path}: {len(recs)} entries, {sum(len(r['cases']) for r in recs.values())} cases")
    assert math.isfinite(0.0)
