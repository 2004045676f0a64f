"""Expected outputs of issue 15's second batch: MSN/PMSN, SwAV's queue, GRAM, I-Con, Kernel-InfoNCE (family
selfsup) and the mean-field contrastive loss (family proxies), merged into ``lossjax/expected/<family>.json`` (the
other entries of each family are kept).

Independent float64 implementations, never lossjax (run in the reference environment)::

    python tests/reference/dump_inputs.py --family selfsup --family proxies   # the inputs (lossjax env)
    python tests/reference/make_expected_selfsup_p2.py             # refvenv (torch 2.13.0)

Sources: line-by-line torch ports of the official code, pinned to the commit, run in float64 with autograd for the
gradients of ``sum(cotangent * loss)``:

- ``msn_loss``: facebookresearch/msn@4388dc1eadbe3042b85d3296d41b9b207656e043 src/losses.py (``init_msn_loss``'s
  ``loss``: ``snn``, ``sharpen``, ``distributed_sinkhorn``, me-max ``rloss``, entropy ``sloss``; the total
  ``ploss + memax_weight * me_max + ent_weight * ent`` of src/msn_train.py), with the inputs L2-normalized (the
  reference's ``snn`` normalizes queries and supports; ``proto_labels`` = identity). PMSN's prior term (no official
  code): lightly-ai/lightly@31e44da7a818db1028e6f8b4142c403ec74bfe94 lightly/loss/pmsn_loss.py
  (``PMSNLoss.regularization_loss``: ``kl_div(log mean, power_law, reduction="sum")``);
- ``swav_queue_loss``: facebookresearch/swav@06b1b7cbaf6ba2a792300d79c7299db98b93b7f9 main_swav.py (the loss block
  of ``train`` with its ``queue``: used once ``queue[i, -1]`` is non-zero, rows scored with the current prototypes,
  ``distributed_sinkhorn`` over ``[queue; batch]`` and ``[-bs:]``); lossjax's ring buffer is laid out as the
  reference's shifted queue (newest first, unwritten rows zero) for the codes, and its next state is the ring
  written one row at a time (the same rows as the reference's shift);
- ``gramian_volume_contrastive_loss``: ispamm/GRAM@b70c5c213de7d5bbd5f453e22757583c8d0ad599 utils/volume.py
  (``volume_computation3``'s Gram matrix, for any number of modalities; ``sqrt(abs(det))``) and model/gram.py (the
  ``volume`` / ``volumeT`` cross-entropies with ``label_smoothing``; the gathered columns have no gradient,
  ``concat_all_gather`` is ``no_grad``). One numerical rewrite: ``sqrt`` is 0 with a 0 gradient at an exactly zero
  determinant (the zero-input extreme), where the reference's gradient is NaN;
- ``icon_kl_loss``: ShadeAlsha/ICon@afbf34f33e10bd3ddccb99aa48bf30e35ad37a72 distributions/distance.py
  (``DistanceKernel`` euclidean = squared distances, cosine = ``1 - cos``; ``Gaussian`` with ``mask_diagonal``:
  the diagonal distance is ``inf``; logits ``-d / (2 sigma^2)`` = ``-d / temperature``) and model/losses.py
  (``KernelLoss`` ``'kl'``: ``kl_div(q.clamp(1e-10).log(), p)``), per row (the reference's ``batchmean`` is the mean).
  One numerical rewrite: ``log q`` exactly (``log_softmax``), not ``log(max(q, 1e-10))``: they differ only where
  ``q < 1e-10`` (the 1e4-scaled extreme), where the clamp caps the divergence;
- ``kernel_mixture_contrastive_loss``: yifanzhang-pro/Kernel-InfoNCE@184f2df486e38e1cceb1934bb5a81e30f49b4857
  simclr_module.py (``Projection``'s ``F.normalize`` with ``mu = 1``, ``nt_xent_loss`` with ``loss_type`` ``'sum'``
  and ``'product'``, ``gamma_loss`` with ``distance_p = 2``; world size 1), per pair (the mean of the two rows).
  One numerical rewrite: ``cdist ** gamma`` as ``(squared distance) ** (gamma / 2)``, 0 with a 0 gradient at 0;
- ``mean_field_contrastive_loss``: st-tech/mft-in-dml@7a6aab15ea892058fc6c16fe2edb358546781565
  code/loss/mean_field_contrastive_loss.py (``MeanFieldContrastiveLoss``, ``mf_power = 2`` as code/train.py) and
  code/loss/base_mean_field_loss.py, per example (``get_loss`` before its batch mean; the regularizer added to each
  example, so that the mean is the reference's ``loss + reg``).
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expected_io as E
from make_expected_ssl_pml import distributed_sinkhorn  # main_swav.py::distributed_sinkhorn (world size 1)

FAMILY = "selfsup"
torch.set_default_dtype(torch.float64)
TORCH = f"torch {torch.__version__} float64 autograd"


# ----------------------------------------------------------------------------------------------
# MSN / PMSN
# ----------------------------------------------------------------------------------------------


def distributed_sinkhorn_msn(Q, num_itr=3):
    # facebookresearch/msn src/losses.py::distributed_sinkhorn (world size 1)
    Q = Q.T
    B = Q.shape[1]
    K = Q.shape[0]
    sum_Q = torch.sum(Q)
    Q /= sum_Q
    for _ in range(num_itr):
        sum_of_rows = torch.sum(Q, dim=1, keepdim=True)
        Q /= sum_of_rows
        Q /= K
        Q /= torch.sum(Q, dim=0, keepdim=True)
        Q /= B
    Q *= B
    return Q.T


def msn_loss(
    anchors,
    targets,
    prototypes,
    *,
    temperature=0.1,
    sharpen_temperature=0.25,
    num_iterations=3,
    me_max_weight=1.0,
    entropy_weight=0.0,
    power_law_exponent=None,
    **_,
):
    b, nv, d = anchors.shape
    anchor_views = anchors.permute(1, 0, 2).reshape(nv * b, d)  # the reference's [V * B, D]
    target_views = targets.detach()
    num_views = nv
    softmax = torch.nn.Softmax(dim=1)

    def sharpen(p, T):
        sharp_p = p ** (1.0 / T)
        sharp_p /= torch.sum(sharp_p, dim=1, keepdim=True)
        return sharp_p

    def snn(query, supports, temp=temperature):
        query = torch.nn.functional.normalize(query)
        supports = torch.nn.functional.normalize(supports)
        return softmax(query @ supports.T / temp)  # @ proto_labels (the identity)

    # init_msn_loss.loss
    probs = snn(anchor_views, prototypes)
    with torch.no_grad():
        targets_ = sharpen(snn(target_views, prototypes), T=sharpen_temperature)
        if num_iterations > 0:  # use_sinkhorn
            targets_ = distributed_sinkhorn_msn(targets_, num_itr=num_iterations)
        targets_ = torch.cat([targets_ for _ in range(num_views)], dim=0)
    loss = torch.mean(torch.sum(torch.log(probs ** (-targets_)), dim=1))
    avg_probs = torch.mean(probs, dim=0)  # AllReduce: world size 1
    if power_law_exponent is None:
        rloss = -torch.sum(torch.log(avg_probs ** (-avg_probs))) + math.log(float(len(avg_probs)))
    else:  # lightly PMSNLoss.regularization_loss / _power_law_distribution
        k = torch.arange(1, avg_probs.shape[0] + 1)
        power_dist = k ** (-power_law_exponent)
        power_dist = power_dist / power_dist.sum()
        rloss = F.kl_div(input=avg_probs.log(), target=power_dist, reduction="sum")
    sloss = torch.mean(torch.sum(torch.log(probs ** (-probs)), dim=1))
    return loss + me_max_weight * rloss + entropy_weight * sloss


# ----------------------------------------------------------------------------------------------
# SwAV with its queue
# ----------------------------------------------------------------------------------------------


def _official_queue(state):
    """The ring buffer as the reference's queue ``[A, Q, D]``: newest row first, unwritten rows zero."""
    keys = np.asarray(state["keys"])
    valid = np.asarray(state["valid"], bool)
    size = keys.shape[0]
    ptr = int(state["pointer"])
    rows = [(ptr - 1 - j) % size for j in range(size)]
    rows = [r for r in rows if valid[r]]
    queue = np.zeros((keys.shape[1], size, keys.shape[2]))
    for j, r in enumerate(rows):
        queue[:, j] = keys[r]
    return torch.tensor(queue)


def swav_queue_loss(
    embeddings,
    prototypes,
    *,
    state,
    num_assigned_views=2,
    temperature=0.1,
    regularization=0.05,
    num_iterations=3,
    holder=None,
    **_,
):
    bs, nv, d = embeddings.shape
    crops_for_assign = list(range(num_assigned_views))
    embedding = embeddings.permute(1, 0, 2).reshape(nv * bs, d)  # the reference's [V * B, D]
    output = embedding @ prototypes.t()  # model.module.prototypes(embedding)
    queue = _official_queue(state)
    use_the_queue = False
    loss = 0
    for i, crop_id in enumerate(crops_for_assign):
        with torch.no_grad():
            out = output[bs * crop_id : bs * (crop_id + 1)].detach()
            if queue is not None:
                if use_the_queue or not torch.all(queue[i, -1, :] == 0):
                    use_the_queue = True
                    out = torch.cat((torch.mm(queue[i], prototypes.detach().t()), out))
                # fill the queue (the reference shifts; lossjax's ring state is built below)
                queue[i, bs:] = queue[i, :-bs].clone()
                queue[i, :bs] = embedding[crop_id * bs : (crop_id + 1) * bs]
            q = distributed_sinkhorn(out, regularization, num_iterations)[-bs:]
        subloss = 0
        for v in np.delete(np.arange(nv), crop_id):
            x = output[bs * v : bs * (v + 1)] / temperature
            subloss -= torch.mean(torch.sum(q * F.log_softmax(x, dim=1), dim=1))
        loss += subloss / (nv - 1)
    loss /= len(crops_for_assign)
    # lossjax's ring buffer: the batch's rows of the assigned crops written one at a time at the pointer.
    keys = np.asarray(state["keys"]).copy()
    valid = np.asarray(state["valid"], bool).copy()
    ptr = int(state["pointer"])
    emb = embeddings.detach().numpy()
    for row in range(bs):
        keys[ptr] = emb[row, :num_assigned_views]
        valid[ptr] = True
        ptr = (ptr + 1) % keys.shape[0]
    holder["state"] = [keys, valid, np.int32(ptr)]
    return loss


# ----------------------------------------------------------------------------------------------
# GRAM
# ----------------------------------------------------------------------------------------------


def volume_computation(language, *others):
    # ispamm/GRAM utils/volume.py::volume_computation3 (its 4- and 5-modality versions extend it), for any M.
    batch_size1 = language.shape[0]
    batch_size2 = others[0].shape[0]
    ll = torch.einsum("bi,bi->b", language, language).unsqueeze(1).expand(-1, batch_size2)
    lo = [language @ o.T for o in others]
    oo = [[torch.einsum("bi,bi->b", a, b).unsqueeze(0).expand(batch_size1, -1) for b in others] for a in others]
    rows = [torch.stack([ll, *lo], dim=-1)]
    for m in range(len(others)):
        rows.append(torch.stack([lo[m], *oo[m]], dim=-1))
    G = torch.stack(rows, dim=-2)
    gram_det = torch.det(G)
    # torch.sqrt(torch.abs(gram_det)), with a zero gradient at an exactly zero determinant (see the module doc)
    a = torch.abs(gram_det)
    pos = a > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, a, torch.ones_like(a))), torch.zeros_like(a))


def gramian_volume_contrastive_loss(embeddings, *, temperature=0.07, label_smoothing=0.1, **_):
    feats = F.normalize(embeddings, dim=-1)  # model/gram.py normalizes every modality's features
    feat_t = feats[:, 0]
    others = [feats[:, m] for m in range(1, feats.shape[1])]
    feat_t_all = feat_t.detach()  # concat_all_gather (no_grad), world size 1
    others_all = [o.detach() for o in others]
    volume = volume_computation(feat_t, *others_all) / temperature
    volumeT = volume_computation(feat_t_all, *others).T / temperature
    bs = feat_t.size(0)
    targets = torch.arange(bs)
    # the reference's mean over rows, kept per row (reduction="none"): lossjax's mean is the reference's loss
    return (
        F.cross_entropy(-volume, targets, label_smoothing=label_smoothing, reduction="none")
        + F.cross_entropy(-volumeT, targets, label_smoothing=label_smoothing, reduction="none")
    ) / 2


# ----------------------------------------------------------------------------------------------
# I-Con
# ----------------------------------------------------------------------------------------------


def icon_kl_loss(embeddings, p, *, temperature=1.0, distance="squared_euclidean", **_):
    x1 = x2 = embeddings
    # distributions/distance.py::DistanceKernel
    if distance == "squared_euclidean":  # the reference's 'euclidean' metric
        x1_norm = (x1**2).sum(1).view(-1, 1)
        x2_norm = (x2**2).sum(1).view(1, -1)
        dist = torch.clamp(x1_norm + x2_norm - 2.0 * torch.mm(x1, x2.t()), 0.0, float("inf"))
    elif distance == "euclidean":
        diff = x1[:, None, :] - x2[None, :, :]
        sq = (diff**2).sum(-1)
        pos = sq > 0
        dist = torch.where(pos, torch.sqrt(torch.where(pos, sq, torch.ones_like(sq))), torch.zeros_like(sq))
    else:  # cosine
        dist = 1 - torch.mm(F.normalize(x1, p=2, dim=1), F.normalize(x2, p=2, dim=1).t())
    # Gaussian._compute with mask_diagonal (fill_diagonal(distances, inf)); -d / (2 sigma^2) = -d / temperature
    dist = dist.clone()
    dist.fill_diagonal_(float("inf"))
    # model/losses.py KernelLoss 'kl': kl_div(q.clamp(min=1e-10).log(), p, reduction='batchmean'), per row; log q
    # exactly (log_softmax) instead of the clamp of q at 1e-10 (a guard that caps log q at -23: the 1e4-scaled
    # extreme's far neighbours), the diagonal (p = 0 there) out of the sum.
    log_q = F.log_softmax(-dist / temperature, dim=1)
    eye = torch.eye(p.shape[0], dtype=torch.bool)
    log_q = torch.where(eye, torch.zeros_like(log_q), log_q)
    return (torch.xlogy(p, p) - p * log_q).sum(1)


# ----------------------------------------------------------------------------------------------
# Kernel-InfoNCE
# ----------------------------------------------------------------------------------------------


def _gamma_loss(out_1, out_2, gamma, temperature, eps):
    # yifanzhang-pro/Kernel-InfoNCE simclr_module.py::SimCLR.gamma_loss (world size 1, distance_p = 2), per row
    # (reduction: the reference's .mean() over the 2N rows is the mean of the per-pair values returned here).
    out = torch.cat([out_1, out_2], dim=0)
    out_dist = out
    diff = out[:, None, :] - out_dist[None, :, :]  # torch.cdist(out, out_dist, p=2), as differences (exact)
    sq = (diff**2).sum(-1)
    pos_sq = sq > 0
    # ||.||^gamma = (||.||^2)^(gamma / 2), 0 with a 0 gradient at 0 (cdist's own gradient at 0 is 0 too)
    dist_g = torch.where(pos_sq, torch.where(pos_sq, sq, torch.ones_like(sq)) ** (gamma / 2), torch.zeros_like(sq))
    cov = dist_g * -1.0
    sim = torch.exp(cov / temperature)
    neg = torch.clamp(sim.sum(dim=-1) - sim.diag(), min=eps)
    sim_adj = torch.pow(torch.norm(out_1 - out_2, dim=-1, p=2), gamma) * -1.0
    pos = torch.exp(sim_adj / temperature)
    pos = torch.cat([pos, pos], dim=0)
    rows = -torch.log(pos / (neg + eps))
    n = out_1.shape[0]
    return (rows[:n] + rows[n:]) / 2


def kernel_mixture_contrastive_loss(
    z1, z2, *, temperature=0.1, gamma=1.0, kernel_weight=0.5, variant="sum", epsilon=1e-6, **_
):
    # Projection: F.normalize(x, dim=1, p=2) * sqrt(mu), mu = 1; nt_xent_loss's loss_type 'sum' / 'product'
    out_1, out_2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    lam = kernel_weight
    if variant == "sum":
        return _gamma_loss(out_1, out_2, gamma, temperature, epsilon) * lam + _gamma_loss(
            out_1, out_2, 2.0, temperature, epsilon
        ) * (1.0 - lam)
    h = out_1.shape[1] // 2
    return _gamma_loss(out_1[:, :h], out_2[:, :h], gamma, temperature, epsilon) * lam + _gamma_loss(
        out_1[:, h:], out_2[:, h:], 2.0, temperature, epsilon
    ) * (1.0 - lam)


# ----------------------------------------------------------------------------------------------
# Mean-field contrastive (family proxies)
# ----------------------------------------------------------------------------------------------


def mean_field_contrastive_loss(embeddings, labels, proxies, *, pos_margin=0.02, neg_margin=0.3, mean_field_weight=0.0,
                                **_):  # fmt: skip
    # st-tech/mft-in-dml code/loss/base_mean_field_loss.py + mean_field_contrastive_loss.py; W = proxies.T [D, C]
    W = proxies.t()
    num_classes = W.shape[1]
    embeddings = torch.nn.functional.normalize(embeddings, dim=1, eps=1e-12)  # scale_embeddings
    batch_size = labels.shape[0]
    mask = torch.zeros(batch_size, num_classes, dtype=embeddings.dtype)  # get_target_mask
    mask[torch.arange(batch_size), torch.as_tensor(labels, dtype=torch.long)] = 1
    distance_from_class_vec = 1 - embeddings @ torch.nn.functional.normalize(W, dim=0)
    pos = F.relu(distance_from_class_vec - pos_margin) * mask
    neg = F.relu(neg_margin - distance_from_class_vec) * (1 - mask)
    per_example = torch.sum(pos + neg, dim=1)  # get_loss before its torch.mean over the batch
    W_scaled = torch.nn.functional.normalize(W, dim=0)  # get_class_distance_matrix
    class_matrix = 1 - torch.matmul(W_scaled.t(), W_scaled)
    eye = torch.eye(num_classes)
    reg = mean_field_weight * torch.mean(torch.sum(torch.pow(F.relu(neg_margin - class_matrix) * (1 - eye), 2), dim=1))
    return per_example + reg  # the mean over the batch is the reference's loss + reg


TABLE = {
    "msn_loss": (
        msn_loss,
        "port of facebookresearch/msn@4388dc1 src/losses.py::init_msn_loss (snn, sharpen, distributed_sinkhorn, "
        "me-max, entropy); PMSN prior term: port of lightly-ai/lightly@31e44da lightly/loss/pmsn_loss.py",
    ),
    "swav_queue_loss": (
        swav_queue_loss,
        "port of facebookresearch/swav@06b1b7c main_swav.py::train (swav loss with the queue), distributed_sinkhorn",
    ),
    "gramian_volume_contrastive_loss": (
        gramian_volume_contrastive_loss,
        "port of ispamm/GRAM@b70c5c2 utils/volume.py::volume_computation3 (any M) and model/gram.py (volume loss)",
    ),
    "icon_kl_loss": (
        icon_kl_loss,
        "port of ShadeAlsha/ICon@afbf34f distributions/distance.py::Gaussian (mask_diagonal), model/losses.py 'kl'",
    ),
    "kernel_mixture_contrastive_loss": (
        kernel_mixture_contrastive_loss,
        "port of yifanzhang-pro/Kernel-InfoNCE@184f2df simclr_module.py::SimCLR.gamma_loss, nt_xent_loss ('sum', "
        "'product')",
    ),
}

PROXIES = {
    "mean_field_contrastive_loss": (
        mean_field_contrastive_loss,
        "port of st-tech/mft-in-dml@7a6aab1 code/loss/mean_field_contrastive_loss.py (MeanFieldContrastiveLoss, "
        "mf_power 2), base_mean_field_loss.py",
    ),
}


def main() -> None:
    _run(FAMILY, TABLE)
    _run("proxies", PROXIES)


def _run(family: str, table: dict) -> None:
    inputs = E.load_inputs(family)
    records = {}
    for name, (fn, source) in table.items():
        if name not in inputs:
            print(f"{family}: {name} not in the inputs (dump them first)")
            continue
        entry = inputs[name]
        cases = []
        for case in entry["cases"]:
            args, kw = E.case_inputs(case)
            holder: dict = {}
            value, grads = E.torch_value_and_grads(fn, list(args), entry["diff_argnums"], holder=holder, **kw)
            value = value.detach().numpy()
            grads = [g.detach().numpy() for g in grads]
            assert np.all(np.isfinite(value)) and all(np.all(np.isfinite(g)) for g in grads), (name, case["case"])
            cases.append(E.expected_case(case, value, grads, aux=holder.get("state")))
        records[name] = {"source": f"{TORCH}: {source}", "cases": cases}
    path = E.write_expected(family, records)
    print(f"wrote {path}: {sorted(records)}")


if __name__ == "__main__":
    main()
