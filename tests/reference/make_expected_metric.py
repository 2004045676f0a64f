"""Expected outputs of the metric family's conformance value cases (``lossjax/expected/metric.json``).

Independent float64 implementations, never lossjax (run in the reference environment)::

    python tests/reference/dump_inputs.py --family metric        # the inputs (lossjax env)
    python tests/reference/make_expected_metric.py               # torch 2.13.0, PML 2.9.0, optax (float64)

Sources (torch float64 autograd gives the gradients of ``sum(cotangent * loss)``):

- pytorch-metric-learning 2.9.0 called (its ``LpDistance``/``CosineSimilarity``/``DotProductSimilarity``
  with the entry's ``distance``/``normalize``, its default reducers): ``ContrastiveLoss``, ``TripletMarginLoss``
  (+ ``BatchHardMiner`` / ``TripletMarginMiner(type_of_triplets="semihard")``), ``LiftedStructureLoss``,
  ``NPairsLoss``, ``MultiSimilarityLoss`` (+ ``MultiSimilarityMiner``), ``SupConLoss``, ``NTXentLoss``,
  ``ThresholdConsistentMarginLoss``; ``CircleLoss`` as a port of its ``_compute_loss`` (the same code, with
  its ``.detach()`` of the weights only when ``stop_gradient_weights``), its value checked against the call;
- optax (float64, jax x64) called: ``triplet_margin_loss``, ``cosine_similarity``, ``cosine_distance``
  (where optax divides 0 by 0 at a zero vector, the documented convention: the unit vector of 0 is 0, so the
  cosine is 0 with a zero gradient); ``ntxent`` as a cross-check of ``NTXentLoss``;
- torch ``cross_entropy`` for InfoNCE and the two-way CLIP loss (open_clip's ``ClipLoss``); ports of
  google-research/big_vision ``big_vision/trainers/proj/image_text/siglip.py`` (the sigmoid loss),
  Alex-HaochenLi/Soft-InfoNCE ``CodeBERT/models.py`` (the softinfonce branch), kahnchana/opl ``loss.py``
  (``OrthogonalProjectionLoss``), and CWCL's equation (arXiv:2309.14580, no official code).

Where an upstream gradient is not finite at an extreme (PML's ``sqrt`` of a zero distance between identical
rows, its ``acos``), the case records the value only: lossjax's gradient there is a documented convention
(the subgradient 0 of the distance at 0) that the family tests check in closed form.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expected_io as E

FAMILY = "metric"
torch.set_default_dtype(torch.float64)
PML = "pytorch-metric-learning 2.9.0"


def _pml():
    from pytorch_metric_learning import distances, losses, miners

    return distances, losses, miners


def _lp(distance="euclidean", normalize=True):
    distances, _, _ = _pml()
    return distances.LpDistance(normalize_embeddings=normalize, power=2 if distance == "squared_euclidean" else 1)


def _labels(y):
    return torch.as_tensor(np.asarray(y)).long()


# ------------------------------ labelled batches (PML) ------------------------------


def ref_pairwise_contrastive(x, y, pos_margin=0.0, neg_margin=1.0, distance="euclidean", normalize=True):
    _, losses, _ = _pml()
    return losses.ContrastiveLoss(pos_margin=pos_margin, neg_margin=neg_margin, distance=_lp(distance, normalize))(
        x, _labels(y)
    )


def ref_batch_triplet(
    x, y, margin=0.05, mining="all", distance="euclidean", normalize=True, smooth_loss=False, swap=False
):
    _, losses, miners = _pml()
    d = _lp(distance, normalize)
    loss = losses.TripletMarginLoss(margin=margin, distance=d, smooth_loss=smooth_loss, swap=swap)
    y = _labels(y)
    if mining == "all":
        return loss(x, y)
    if mining == "hard":
        return loss(x, y, miners.BatchHardMiner(distance=d)(x, y))
    return loss(x, y, miners.TripletMarginMiner(margin=margin, type_of_triplets="semihard", distance=d)(x, y))


def _do_nothing():
    from pytorch_metric_learning import reducers

    return reducers.DoNothingReducer()


def _per_anchor_mean(losses_, anchors, n):
    """PML ``reducers/per_anchor_reducer.py::aggregation_func``: the mean of each anchor's tuples, 0 if none."""
    total = torch.zeros(n).index_add(0, anchors, losses_)
    count = torch.bincount(anchors, minlength=n).to(total.dtype)
    return torch.where(count > 0, total / count.clamp(min=1), torch.zeros(()))


def ref_batch_triplet_per_anchor(
    x, y, margin=0.05, mining="all", distance="euclidean", normalize=True, smooth_loss=False, swap=False
):
    """PML's per-triplet losses (``DoNothingReducer``) averaged per anchor (``PerAnchorReducer`` refuses triplets)."""
    _, losses, miners = _pml()
    d = _lp(distance, normalize)
    loss = losses.TripletMarginLoss(
        margin=margin, distance=d, smooth_loss=smooth_loss, swap=swap, reducer=_do_nothing()
    )
    y = _labels(y)
    if mining == "all":
        out = loss(x, y)
    elif mining == "hard":
        out = loss(x, y, miners.BatchHardMiner(distance=d)(x, y))
    else:
        out = loss(x, y, miners.TripletMarginMiner(margin=margin, type_of_triplets="semihard", distance=d)(x, y))
    info = out["loss"]
    if info["indices"] is None:  # no triplet at all: PML's zero loss
        return (x * 0).sum(dim=1)
    return _per_anchor_mean(info["losses"], info["indices"][0], x.shape[0])


def ref_contrastive_per_anchor(x, y, pos_margin=0.0, neg_margin=1.0, distance="euclidean", normalize=True):
    """``ContrastiveLoss(reducer=DoNothingReducer())``; each sub-loss through ``PerAnchorReducer(DoNothingReducer())``.

    The two per-anchor sub-losses are summed.
    """
    from pytorch_metric_learning import reducers

    _, losses, _ = _pml()
    d = _lp(distance, normalize)
    y = _labels(y)
    out = losses.ContrastiveLoss(pos_margin=pos_margin, neg_margin=neg_margin, distance=d, reducer=_do_nothing())(x, y)
    total = (x * 0).sum(dim=1)
    for name, info in out.items():
        if info["indices"] is None:  # no pair of this kind
            continue
        per = reducers.PerAnchorReducer(_do_nothing())({name: info}, x, y)
        total = total + per["loss"]["losses"]
    return total


def ref_intra_pair_variance_per_anchor(x, y, pos_epsilon=0.01, neg_epsilon=0.01):
    """``IntraPairVarianceLoss(reducer=DoNothingReducer())``; each sub-loss through ``PerAnchorReducer``, summed."""
    from pytorch_metric_learning import reducers

    _, losses, _ = _pml()
    y = _labels(y)
    out = losses.IntraPairVarianceLoss(pos_eps=pos_epsilon, neg_eps=neg_epsilon, reducer=_do_nothing())(x, y)
    total = (x * 0).sum(dim=1)
    for name, info in out.items():
        if info["indices"] is None or len(info["indices"][0]) == 0:  # no pair of this kind
            continue
        total = total + reducers.PerAnchorReducer(_do_nothing())({name: info}, x, y)["loss"]["losses"]
    return total


def ref_multi_similarity_per_anchor(x, y, alpha=2.0, beta=50.0, base=0.5, mining_margin=0.1):
    _, losses, miners = _pml()
    loss = losses.MultiSimilarityLoss(alpha=alpha, beta=beta, base=base, reducer=_do_nothing())
    y = _labels(y)
    tup = None if mining_margin is None else miners.MultiSimilarityMiner(epsilon=mining_margin)(x, y)
    out = loss(x, y, tup)["loss"]
    if out["indices"] is None:
        return (x * 0).sum(dim=1)
    return torch.zeros(x.shape[0]).index_add(0, out["indices"], out["losses"].reshape(-1))


def ref_lifted(x, y, neg_margin=1.0, pos_margin=0.0, distance="euclidean", normalize=True):
    _, losses, _ = _pml()
    d = _lp(distance, normalize)
    return losses.LiftedStructureLoss(neg_margin=neg_margin, pos_margin=pos_margin, distance=d)(x, _labels(y))


def ref_npair(x, y, normalize=True):
    distances, losses, _ = _pml()
    return losses.NPairsLoss(distance=distances.DotProductSimilarity(normalize_embeddings=normalize))(x, _labels(y))


def ref_multi_similarity(x, y, alpha=2.0, beta=50.0, base=0.5, mining_margin=0.1):
    _, losses, miners = _pml()
    loss = losses.MultiSimilarityLoss(alpha=alpha, beta=beta, base=base)
    y = _labels(y)
    if mining_margin is None:
        return loss(x, y)
    return loss(x, y, miners.MultiSimilarityMiner(epsilon=mining_margin)(x, y))


def ref_circle(x, y, margin=0.4, scale=80.0, stop_gradient_weights=True):
    # pytorch_metric_learning/losses/circle_loss.py::CircleLoss._compute_loss (2.9.0), cosine similarities,
    # all pairs, AvgNonZeroReducer; `.detach()` of the weights as there when stop_gradient_weights.
    losses = _circle_rows(x, y, margin, scale, stop_gradient_weights)
    return losses.sum() / torch.clamp((losses > 0).sum(), min=1)


def _circle_rows(x, y, margin, scale, stop_gradient_weights):
    """The element losses of ``CircleLoss._compute_loss`` (port), before the reducer."""
    y = _labels(y)
    xn = F.normalize(x, dim=1)
    mat = xn @ xn.T
    same = y[:, None] == y[None, :]
    eye = torch.eye(len(y), dtype=torch.bool)
    pos, neg = same & ~eye, ~same
    op, on, dp, dn = 1 + margin, -margin, 1 - margin, margin
    w = mat.detach() if stop_gradient_weights else mat
    new = torch.where(pos, -scale * torch.relu(op - w) * (mat - dp), torch.zeros_like(mat))
    new = torch.where(neg, scale * torch.relu(w - on) * (mat - dn), new)

    def lse(keep):
        m = torch.where(keep, new, torch.full_like(new, -torch.inf)).amax(1, keepdim=True).detach()
        m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
        s = torch.where(keep, torch.exp(new - m), torch.zeros_like(new)).sum(1)
        return torch.log(s) + m[:, 0]

    ok = pos.any(1) & neg.any(1)
    return torch.where(ok, F.softplus(lse(pos) + lse(neg)), torch.zeros(len(y)))


def _pml_per_anchor(loss, x, y):
    """``loss`` (built with ``reducer=PerAnchorReducer(DoNothingReducer())``) called: its ``[N]`` per-anchor losses.

    An ``element`` loss comes back with its own indices (NCALoss keeps only the anchors with a positive): scattered,
    0 elsewhere; a ``pos_pair`` loss comes back averaged per anchor by ``PerAnchorReducer``; PML's zero loss (no
    pair at all) is 0 for every anchor.
    """
    out = loss(x, _labels(y))
    zeros = (x * 0).sum(dim=1)
    if torch.is_tensor(out):  # BaseReducer.zero_loss
        return zeros + out
    (info,) = out.values()  # "loss" ("ap_loss" for SmoothAPLoss)
    assert info["reduction_type"] == "element", info["reduction_type"]
    return zeros.index_add(0, info["indices"], info["losses"].reshape(-1))


def _per_anchor_reducer():
    from pytorch_metric_learning import reducers

    return reducers.PerAnchorReducer(_do_nothing())


def ref_circle_per_anchor(x, y, margin=0.4, scale=80.0, stop_gradient_weights=True):
    """The port's element losses; the value checked against ``CircleLoss(reducer=PerAnchorReducer(...))``."""
    _, losses, _ = _pml()
    out = _circle_rows(x, y, margin, scale, stop_gradient_weights)
    check = _pml_per_anchor(losses.CircleLoss(m=margin, gamma=scale, reducer=_per_anchor_reducer()), x.detach(), y)
    assert torch.allclose(check, out.detach(), rtol=1e-9, atol=1e-9), (check, out)
    return out


def ref_supcon_per_anchor(x, y, temperature=0.1):
    _, losses, _ = _pml()
    return _pml_per_anchor(losses.SupConLoss(temperature=temperature, reducer=_per_anchor_reducer()), x, y)


def ref_ntxent_per_anchor(x, y, temperature=0.07):
    _, losses, _ = _pml()
    return _pml_per_anchor(losses.NTXentLoss(temperature=temperature, reducer=_per_anchor_reducer()), x, y)


def ref_nca_per_anchor(x, y, scale=1.0, normalize=True):
    distances, losses, _ = _pml()
    d = distances.LpDistance(normalize_embeddings=normalize, power=2)
    return _pml_per_anchor(losses.NCALoss(softmax_scale=scale, distance=d, reducer=_per_anchor_reducer()), x, y)


def ref_fast_ap_per_anchor(x, y, num_bins=10):
    _, losses, _ = _pml()
    return _pml_per_anchor(losses.FastAPLoss(num_bins=num_bins, reducer=_per_anchor_reducer()), x, y)


def ref_npair_per_anchor(x, y, normalize=True):
    distances, losses, _ = _pml()
    d = distances.DotProductSimilarity(normalize_embeddings=normalize)
    return _pml_per_anchor(losses.NPairsLoss(distance=d, reducer=_per_anchor_reducer()), x, y)


def ref_lifted_per_anchor(x, y, neg_margin=1.0, pos_margin=0.0, distance="euclidean", normalize=True):
    """``LiftedStructureLoss(reducer=DoNothingReducer())``'s pos-pair losses through ``PerAnchorReducer``.

    PML 2.9's ``LiftedStructureLoss(reducer=PerAnchorReducer(...))`` raises (its pair losses are ``[P, 1]``, which
    ``tuple_reduction_helper`` cannot assign into its ``[N, N]`` table): the losses are flattened to ``[P]`` first.
    """
    _, losses, _ = _pml()
    loss = losses.LiftedStructureLoss(
        neg_margin=neg_margin, pos_margin=pos_margin, distance=_lp(distance, normalize), reducer=_do_nothing()
    )
    return _pml_pairs_per_anchor(loss, x, y)


def _pml_pairs_per_anchor(loss, x, y):
    """``loss`` (built with ``reducer=DoNothingReducer()``)'s pair losses, flattened, through ``PerAnchorReducer``."""
    info = loss(x, _labels(y))["loss"]
    if info["indices"] is None:  # no positive or no negative pair: PML's zero loss
        return (x * 0).sum(dim=1)
    info = {**info, "losses": info["losses"].reshape(-1)}
    return (x * 0).sum(dim=1) + _per_anchor_reducer()({"loss": info}, x, _labels(y))["loss"]["losses"]


def ref_generalized_lifted_per_anchor(x, y, pos_margin=0.0, neg_margin=1.0, normalize=True):
    _, losses, _ = _pml()
    loss = losses.GeneralizedLiftedStructureLoss(
        neg_margin=neg_margin,
        pos_margin=pos_margin,
        distance=_lp("euclidean", normalize),
        reducer=_per_anchor_reducer(),
    )
    return _pml_per_anchor(loss, x, y)


def ref_angular_per_anchor(x, y, alpha=40.0):
    _, losses, _ = _pml()
    return _pml_pairs_per_anchor(losses.AngularLoss(alpha=alpha, reducer=_do_nothing()), x, y)


def ref_smooth_ap_per_anchor(x, y, temperature=0.01):
    _, losses, _ = _pml()
    return _pml_per_anchor(losses.SmoothAPLoss(temperature=temperature, reducer=_per_anchor_reducer()), x, y)


def ref_ranked_list_per_anchor(
    x, y, margin=0.4, alpha=None, imbalance=0.5, pos_scale=0.0, neg_scale=10.0, normalize=True
):
    distances, losses, _ = _pml()
    loss = losses.RankedListLoss(
        margin=margin, Tn=neg_scale, imbalance=imbalance, alpha=alpha, Tp=pos_scale,
        distance=distances.LpDistance(normalize_embeddings=normalize), reducer=_per_anchor_reducer(),
    )  # fmt: skip
    return _pml_per_anchor(loss, x, y)


def ref_instance_per_anchor(x, y, scale=64.0):
    _, losses, _ = _pml()
    return _pml_per_anchor(losses.InstanceLoss(gamma=scale, reducer=_per_anchor_reducer()), x, y)


def ref_tuplet_per_anchor(x, y, margin=5.73, scale=64.0):
    """Port of ``TupletMarginLoss._compute_loss`` (2.9.0) per positive pair, averaged per anchor as PerAnchorReducer.

    ``cos(acos(c) - m)`` is written ``c cos m + sqrt(1 - c^2) sin m`` (the sqrt's gradient 0 at 0): PML's ``acos``
    has NaN gradients at ``c = +-1`` (identical rows). The value is checked against
    ``TupletMarginLoss(reducer=DoNothingReducer())``'s pair losses through ``PerAnchorReducer(DoNothingReducer())``.
    """
    _, losses, _ = _pml()
    from make_expected_ssl_pml import tuplet_cosines  # the batch loss's port: one copy

    c, cos_m, pos, neg = tuplet_cosines(x, _labels(y), margin)
    lab = _labels(y)
    out = []
    for a in range(len(lab)):
        terms = [
            torch.logsumexp(torch.cat([scale * (c[a][neg[a]] - cos_m[a, p]), torch.zeros(1, dtype=x.dtype)]), dim=0)
            for p in torch.where(pos[a])[0]
        ]
        out.append(torch.stack(terms).mean() if terms and bool(neg.any()) else (x[a] * 0).sum())
    out = torch.stack(out)
    check = _pml_pairs_per_anchor(
        losses.TupletMarginLoss(margin=margin, scale=scale, reducer=_do_nothing()), x.detach(), y
    )
    if bool(torch.isfinite(check).all()):
        assert torch.allclose(check, out.detach(), rtol=1e-9, atol=1e-9), (check, out)
    return out


def pml_circle(x, y, margin=0.4, scale=80.0, stop_gradient_weights=True):
    _, losses, _ = _pml()
    return losses.CircleLoss(m=margin, gamma=scale)(x, _labels(y))


def ref_supcon(x, y, temperature=0.1):
    _, losses, _ = _pml()
    return losses.SupConLoss(temperature=temperature)(x, _labels(y))


def ref_ntxent(x, y, temperature=0.07):
    _, losses, _ = _pml()
    return losses.NTXentLoss(temperature=temperature)(x, _labels(y))


def optax_ntxent(x, y, temperature=0.07):
    import jax
    import optax

    with jax.enable_x64(True):
        return float(optax.losses.ntxent(np.asarray(x), np.asarray(y), temperature=temperature))


def ref_tcm(x, y, pos_margin=0.9, neg_margin=0.5, pos_weight=1.0, neg_weight=1.0):
    _, losses, _ = _pml()
    loss = losses.ThresholdConsistentMarginLoss(lambda_plus=pos_weight, lambda_minus=neg_weight, margin_plus=pos_margin,
                                                margin_minus=neg_margin)  # fmt: skip
    return loss(x, _labels(y))


def ref_opl(x, y, neg_weight=0.5, absolute=False):
    # kahnchana/opl loss.py::OrthogonalProjectionLoss.forward (gamma = neg_weight; the abs variant).
    y = _labels(y)
    features = F.normalize(x, p=2, dim=1)
    labels = y[:, None]
    mask = torch.eq(labels, labels.t()).bool()
    eye = torch.eye(mask.shape[0], mask.shape[1]).bool()
    mask_pos = mask.masked_fill(eye, 0).float()
    mask_neg = (~mask).float()
    dot = torch.matmul(features, features.t())
    pos_mean = (mask_pos * dot).sum() / (mask_pos.sum() + 1e-6)
    neg = torch.abs(mask_neg * dot) if absolute else mask_neg * dot
    neg_mean = neg.sum() / (mask_neg.sum() + 1e-6)
    return (1.0 - pos_mean) + neg_weight * neg_mean


# ------------------------------ triplets and paired views ------------------------------


def ref_triplet_optax(a, p, n, margin=1.0, norm_degree=2.0, epsilon=1e-6):
    import jax
    import optax

    with jax.enable_x64(True):
        f = lambda a, p, n: optax.losses.triplet_margin_loss(  # noqa: E731
            a, p, n, margin=margin, norm_degree=norm_degree, eps=epsilon
        )
        a, p, n = (np.asarray(t, np.float64) for t in (a, p, n))
        value = np.asarray(f(a, p, n))
        ct = E.cotangent(value.shape)
        grads = jax.grad(lambda a, p, n: (ct * f(a, p, n)).sum(), argnums=(0, 1, 2))(a, p, n)
        return value, [np.asarray(g) for g in grads]


def ref_optax_cosine(p, t, kind, epsilon=0.0, axis=-1):
    import jax
    import jax.numpy as jnp
    import optax

    fn = optax.losses.cosine_similarity if kind == "similarity" else optax.losses.cosine_distance

    def f(p, t):
        # optax's formula; the documented deviation at a zero vector (0/0 in optax): its unit vector is 0.
        zp = jnp.sum(p * p, axis=axis) == 0
        zt = jnp.sum(t * t, axis=axis) == 0
        degenerate = (zp | zt) & (epsilon == 0)
        safe_p = jnp.where(jnp.expand_dims(zp, axis), 1.0, p)
        safe_t = jnp.where(jnp.expand_dims(zt, axis), 1.0, t)
        out = fn(safe_p, safe_t, epsilon=epsilon, axis=axis)
        return jnp.where(degenerate, 0.0 if kind == "similarity" else 1.0, out)

    with jax.enable_x64(True):
        p, t = np.asarray(p, np.float64), np.asarray(t, np.float64)
        value = np.asarray(f(p, t))
        ct = E.cotangent(value.shape)
        grads = jax.grad(lambda p, t: (ct * f(p, t)).sum(), argnums=(0, 1))(p, t)
        return value, [np.asarray(g) for g in grads]


def ref_infonce(a, b, temperature=0.07, distance="cosine"):
    if distance == "cosine":
        a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    return F.cross_entropy(a @ b.T / temperature, torch.arange(a.shape[0]), reduction="none")


def ref_clip(a, b, temperature=0.07, label_smoothing=0.0):
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    y = torch.arange(a.shape[0])
    s = a @ b.T / temperature
    ce = lambda z: F.cross_entropy(z, y, reduction="none", label_smoothing=label_smoothing)  # noqa: E731
    return 0.5 * (ce(s) + ce(s.T))


def ref_siglip(a, b, temperature=0.1, bias=-10.0):
    # big_vision siglip.py: logits = zimg @ ztxt.T * t + b, labels = 2 eye - 1, -sum log_sigmoid(labels * logits)
    # per row (the reference's mean over rows is the mean of these).
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    logits = a @ b.T / temperature + bias
    z = 2 * torch.eye(a.shape[0]) - 1
    return -F.logsigmoid(z * logits).sum(dim=1)


def ref_soft_infonce(q, k, prior, alpha=1.0, beta=1.0, prior_temperature=1.0, temperature=1.0, min_weight=0.1,
                     distance="dot"):  # fmt: skip
    # Alex-HaochenLi/Soft-InfoNCE CodeBERT/models.py (softinfonce branch), labels = eye, per example.
    prior = torch.as_tensor(prior)
    if distance == "cosine":
        q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    logits = q @ k.T / temperature
    eye = torch.eye(q.shape[0], dtype=torch.bool)
    w = torch.softmax(prior[~eye].view(prior.size(0), -1) / prior_temperature, dim=1)
    w = torch.clip((beta - alpha * w) / (beta - alpha / w.size(1)), min=min_weight)
    w = torch.cat([torch.ones((w.size(0), 1)), w], dim=1)
    scores = torch.cat([logits[eye].unsqueeze(1), logits[~eye].view(logits.size(0), -1)], dim=1)
    # -log(e^s_ii / sum_j w_j e^s_ij), without the reference's 1e-15 inside the log.
    return -(scores[:, 0] - torch.logsumexp(scores + torch.log(w), dim=1))


def ref_cwcl(p, q, temperature=0.07):
    pn, qn = F.normalize(p, dim=1), F.normalize(q, dim=1)
    w = ((1 + qn @ qn.T) / 2).detach()
    s = pn @ qn.T / temperature
    l_pq = -(w * F.log_softmax(s, dim=1)).sum(1) / w.sum(1)
    l_qp = -(w * F.log_softmax(s.T, dim=1)).sum(1) / w.sum(1)
    return 0.5 * (l_pq + l_qp)


TORCH_REFERENCES = {
    "pairwise_contrastive_loss": (ref_pairwise_contrastive, f"{PML} ContrastiveLoss(distance=LpDistance(...))"),
    "batch_triplet_loss": (
        ref_batch_triplet,
        f"{PML} TripletMarginLoss(smooth_loss, swap) + BatchHardMiner / TripletMarginMiner('semihard') "
        "(mining='all': no miner)",
    ),
    "batch_triplet_loss_per_anchor": (
        ref_batch_triplet_per_anchor,
        f"{PML} TripletMarginLoss(reducer=DoNothingReducer()) per-triplet losses (+ BatchHardMiner / "
        "TripletMarginMiner('semihard')), averaged per anchor as reducers/per_anchor_reducer.py::aggregation_func",
    ),
    "pairwise_contrastive_loss_per_anchor": (
        ref_contrastive_per_anchor,
        f"{PML} ContrastiveLoss(reducer=DoNothingReducer()), each sub-loss through "
        "PerAnchorReducer(DoNothingReducer()), summed",
    ),
    "multi_similarity_loss_per_anchor": (
        ref_multi_similarity_per_anchor,
        f"{PML} MultiSimilarityLoss(reducer=DoNothingReducer()) element losses + MultiSimilarityMiner(epsilon)",
    ),
    "lifted_structure_loss": (ref_lifted, f"{PML} LiftedStructureLoss(distance=LpDistance(...))"),
    "npair_loss": (ref_npair, f"{PML} NPairsLoss(distance=DotProductSimilarity(normalize_embeddings=normalize))"),
    "multi_similarity_loss": (
        ref_multi_similarity,
        f"{PML} MultiSimilarityLoss + MultiSimilarityMiner(epsilon=mining_margin)",
    ),
    "circle_loss": (ref_circle, f"{PML} CircleLoss._compute_loss (port; value checked against the call)"),
    "supervised_contrastive_loss": (ref_supcon, f"{PML} SupConLoss"),
    "circle_loss_per_anchor": (
        ref_circle_per_anchor,
        f"{PML} CircleLoss._compute_loss element losses (port; value checked against "
        "CircleLoss(reducer=PerAnchorReducer(DoNothingReducer())))",
    ),
    "supervised_contrastive_loss_per_anchor": (
        ref_supcon_per_anchor,
        f"{PML} SupConLoss(reducer=PerAnchorReducer(DoNothingReducer()))",
    ),
    "ntxent_loss_per_anchor": (
        ref_ntxent_per_anchor,
        f"{PML} NTXentLoss(reducer=PerAnchorReducer(DoNothingReducer()))",
    ),
    "nca_loss_per_anchor": (
        ref_nca_per_anchor,
        f"{PML} NCALoss(distance=LpDistance(power=2), reducer=PerAnchorReducer(DoNothingReducer())) element "
        "losses, 0 at the anchors it leaves out",
    ),
    "fast_ap_loss_per_anchor": (
        ref_fast_ap_per_anchor,
        f"{PML} FastAPLoss(distance=LpDistance(power=2), reducer=PerAnchorReducer(DoNothingReducer())) element "
        "losses, 0 at the anchors it leaves out",
    ),
    "npair_loss_per_anchor": (
        ref_npair_per_anchor,
        f"{PML} NPairsLoss(distance=DotProductSimilarity(normalize_embeddings=normalize), "
        "reducer=PerAnchorReducer(DoNothingReducer())) element losses, 0 at the examples that are no class's anchor",
    ),
    "generalized_lifted_structure_loss_per_anchor": (
        ref_generalized_lifted_per_anchor,
        f"{PML} GeneralizedLiftedStructureLoss(distance=LpDistance(normalize_embeddings=normalize), "
        "reducer=PerAnchorReducer(DoNothingReducer()))",
    ),
    "tuplet_margin_loss_per_anchor": (
        ref_tuplet_per_anchor,
        f"{PML} TupletMarginLoss._compute_loss pair losses (port with a safe sqrt for the gradients at cos = +-1, "
        "where PML's acos gives NaN; value checked against TupletMarginLoss(reducer=DoNothingReducer()) through "
        "PerAnchorReducer(DoNothingReducer()))",
    ),
    "intra_pair_variance_loss_per_anchor": (
        ref_intra_pair_variance_per_anchor,
        f"{PML} IntraPairVarianceLoss(CosineSimilarity, reducer=DoNothingReducer()), each sub-loss through "
        "PerAnchorReducer(DoNothingReducer()), summed",
    ),
    "angular_loss_per_anchor": (
        ref_angular_per_anchor,
        f"{PML} AngularLoss(reducer=DoNothingReducer()) pos-pair losses (flattened to [P]: PML's own "
        "PerAnchorReducer raises on their [P, 1] shape) through PerAnchorReducer(DoNothingReducer())",
    ),
    "smooth_ap_loss_per_anchor": (
        ref_smooth_ap_per_anchor,
        f"{PML} SmoothAPLoss(reducer=PerAnchorReducer(DoNothingReducer()))",
    ),
    "ranked_list_loss_per_anchor": (
        ref_ranked_list_per_anchor,
        f"{PML} RankedListLoss(Tp, Tn = pos_scale, neg_scale, distance=LpDistance(normalize_embeddings=normalize), "
        "reducer=PerAnchorReducer(DoNothingReducer()))",
    ),
    "instance_loss_per_anchor": (
        ref_instance_per_anchor,
        f"{PML} InstanceLoss(gamma=scale, reducer=PerAnchorReducer(DoNothingReducer()))",
    ),
    "lifted_structure_loss_per_anchor": (
        ref_lifted_per_anchor,
        f"{PML} LiftedStructureLoss(distance=LpDistance(...), reducer=DoNothingReducer()) pos-pair losses "
        "(flattened to [P]: PML's own PerAnchorReducer raises on their [P, 1] shape) through "
        "PerAnchorReducer(DoNothingReducer())",
    ),
    "ntxent_loss": (ref_ntxent, f"{PML} NTXentLoss (value checked against optax.losses.ntxent in float64)"),
    "threshold_consistent_margin_loss": (ref_tcm, f"{PML} ThresholdConsistentMarginLoss"),
    "orthogonal_projection_loss": (ref_opl, "kahnchana/opl loss.py::OrthogonalProjectionLoss (torch port)"),
    "infonce_loss": (ref_infonce, "torch cross_entropy(sim / t, arange)"),
    "symmetric_infonce_loss": (ref_clip, "open_clip ClipLoss == two-way torch cross_entropy (label_smoothing)"),
    "sigmoid_contrastive_loss": (ref_siglip, "google-research/big_vision siglip.py sigmoid loss (torch port)"),
    "soft_infonce_loss": (ref_soft_infonce, "Alex-HaochenLi/Soft-InfoNCE CodeBERT/models.py softinfonce (torch port)"),
    "continuously_weighted_contrastive_loss": (ref_cwcl, "CWCL paper equation, arXiv:2309.14580 (torch port)"),
}
JAX_REFERENCES = {
    "triplet_margin_loss": (ref_triplet_optax, "optax.losses.triplet_margin_loss, float64"),
    "cosine_similarity": (
        lambda p, t, **kw: ref_optax_cosine(p, t, "similarity", **kw),
        "optax.losses.cosine_similarity, float64 (zero vector: 0, zero gradient, where optax gives 0/0)",
    ),
    "cosine_distance": (
        lambda p, t, **kw: ref_optax_cosine(p, t, "distance", **kw),
        "optax.losses.cosine_distance, float64 (zero vector: 1, zero gradient, where optax gives 0/0)",
    ),
}


def _finite(x) -> bool:
    return all(np.all(np.isfinite(np.asarray(g))) for g in (x if isinstance(x, list) else [x]))


def main() -> None:
    inputs = E.load_inputs(FAMILY)
    records, notes = {}, {}
    for name, entry in inputs.items():
        diff = entry["diff_argnums"]
        cases = []
        if name in JAX_REFERENCES:
            fn, source = JAX_REFERENCES[name]
            for case in entry["cases"]:
                args, kw = E.case_inputs(case)
                value, grads = fn(*args, **kw)
                assert _finite(value) and _finite(grads), (name, case["case"])
                cases.append(E.expected_case(case, value, grads))
        elif name in TORCH_REFERENCES:
            fn, source = TORCH_REFERENCES[name]
            for case in entry["cases"]:
                args, kw = E.case_inputs(case)
                out, grads = E.torch_value_and_grads(fn, list(args), diff, **kw)
                value = out.detach().numpy()
                assert _finite(value), (name, case["case"], value)
                if name == "circle_loss":
                    check = float(pml_circle(torch.as_tensor(args[0]), args[1], **kw))
                    assert abs(check - float(value)) <= 1e-9 * max(1.0, abs(check)), (name, check, float(value))
                if name == "ntxent_loss":
                    check = optax_ntxent(args[0], args[1], **kw)
                    assert abs(check - float(value)) <= 1e-9 * max(1.0, abs(check)), (name, check, float(value))
                grads = [g.detach().numpy() for g in grads]
                if not _finite(grads):
                    notes.setdefault(name, []).append(case["case"])
                    grads = None
                cases.append(E.expected_case(case, value, grads))
            if name in notes:
                source += f"; value only at {sorted(set(notes[name]))} (the upstream gradient is not finite there)"
        else:
            print(f"skipped {name}: not in this generator")
            continue
        records[name] = {"source": source, "cases": cases}
    path = E.write_expected(FAMILY, records)
    print(f"wrote {path}: {len(records)} entries; value only: {notes}")


if __name__ == "__main__":
    main()
