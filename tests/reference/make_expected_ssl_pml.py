"""Expected outputs for issue 15's entries (self-supervised objectives with state; the pytorch-metric-learning
losses added with them): writes their records into ``lossjax/expected/<family>.json`` (merged, other entries kept).

Independent float64 implementations, never lossjax (run in the reference environment)::

    python tests/reference/dump_inputs.py --family selfsup --family metric --family margins   # lossjax env
    python tests/reference/make_expected_ssl_pml.py                                         # refvenv

Sources: line-by-line torch ports of the official code, pinned to the commit:

- DINO: facebookresearch/dino@7c446df5b9f45747937fb0d72314eb9f7b66930a main_dino.py::DINOLoss
  (forward, update_center; world size 1; the inputs' ``[B, V, K]`` become the reference's ``[V * B, K]``);
- SwAV: facebookresearch/swav@06b1b7cbaf6ba2a792300d79c7299db98b93b7f9 main_swav.py (the loss block of
  ``train`` without the queue, and ``distributed_sinkhorn``, in float64 in the exponential domain);
- iBOT: bytedance/ibot@da316d82636a7a7356835ef224b13d5f3ace0489 main_ibot.py::iBOTLoss (the patch term,
  ``total_loss2`` with lambda2 = 1, and ``center2`` of update_center);
- MoCo v2: facebookresearch/moco@132aea9da9bb995a411c915c0420be3db62052f3 moco/builder.py
  (``MoCo.forward`` logits and ``_dequeue_and_enqueue``; the queue's unfilled slots are no negatives);
- MoCo v3: facebookresearch/moco-v3@c349e6e24f40d3fedb22d973f92defa4cedf37a7 moco/builder.py
  (``MoCo.contrastive_loss``, ``forward``; per example: the reference's mean is the mean of lossjax's rows);
- pytorch-metric-learning 2.9 losses, called (float64) where PML has them.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expected_io as E

torch.set_default_dtype(torch.float64)
TORCH = f"torch {torch.__version__} float64 autograd"


# ----------------------------------------------------------------------------------------------
# Self-supervised (ports).
# ----------------------------------------------------------------------------------------------


def dino_loss(
    student,
    teacher,
    *,
    state=None,
    student_temperature=0.1,
    teacher_temperature=0.04,
    center_momentum=0.9,
    holder=None,
    **_,
):
    b, nv, k = student.shape
    nt = teacher.shape[1]
    student_output = student.permute(1, 0, 2).reshape(nv * b, k)
    teacher_output = teacher.permute(1, 0, 2).reshape(nt * b, k)
    center = torch.zeros(1, k) if state is None else torch.tensor(np.asarray(state["center"]))[None, :]
    # main_dino.py::DINOLoss.forward
    student_out = student_output / student_temperature
    student_out = student_out.chunk(nv)
    temp = teacher_temperature
    teacher_out = F.softmax((teacher_output - center) / temp, dim=-1)
    teacher_out = teacher_out.detach().chunk(nt)  # the reference: chunk(2), its two global crops
    total_loss = 0
    n_loss_terms = 0
    for iq, q in enumerate(teacher_out):
        for v in range(len(student_out)):
            if v == iq:
                continue
            loss = torch.sum(-q * F.log_softmax(student_out[v], dim=-1), dim=-1)
            total_loss += loss.mean()
            n_loss_terms += 1
    total_loss /= n_loss_terms
    # update_center (world size 1)
    with torch.no_grad():
        batch_center = torch.sum(teacher_output, dim=0, keepdim=True)
        batch_center = batch_center / len(teacher_output)
        holder["center"] = (center * center_momentum + batch_center * (1 - center_momentum))[0].numpy()
    return total_loss


def distributed_sinkhorn(out, epsilon, sinkhorn_iterations):
    # main_swav.py::distributed_sinkhorn (world size 1)
    Q = torch.exp(out / epsilon).t()
    B = Q.shape[1]
    K = Q.shape[0]
    sum_Q = torch.sum(Q)
    Q /= sum_Q
    for _ in range(sinkhorn_iterations):
        sum_of_rows = torch.sum(Q, dim=1, keepdim=True)
        Q /= sum_of_rows
        Q /= K
        Q /= torch.sum(Q, dim=0, keepdim=True)
        Q /= B
    Q *= B
    return Q.t()


def swav_loss(scores, *, num_assigned_views=2, temperature=0.1, regularization=0.05, num_iterations=3, **_):
    epsilon, sinkhorn_iterations = regularization, num_iterations  # the reference's names
    bs, nv, k = scores.shape
    output = scores.permute(1, 0, 2).reshape(nv * bs, k)
    loss = 0
    for crop_id in range(num_assigned_views):
        with torch.no_grad():
            out = output[bs * crop_id : bs * (crop_id + 1)].detach()
            q = distributed_sinkhorn(out, epsilon, sinkhorn_iterations)[-bs:]
        subloss = 0
        for v in np.delete(np.arange(nv), crop_id):
            x = output[bs * v : bs * (v + 1)] / temperature
            subloss -= torch.mean(torch.sum(q * F.log_softmax(x, dim=1), dim=1))
        loss += subloss / (nv - 1)
    loss /= num_assigned_views
    return loss


def moco_loss(q, k, *, state, temperature=0.07, holder=None, **_):
    # moco/builder.py::MoCo.forward (the features; the queue is [D, K] there, [Q, D] here)
    q = F.normalize(q, dim=1)
    k = F.normalize(k, dim=1).detach()
    queue = torch.tensor(np.asarray(state["keys"]))
    filled = torch.tensor(np.asarray(state["valid"], bool))
    l_pos = torch.einsum("nc,nc->n", [q, k]).unsqueeze(-1)
    l_neg = torch.einsum("nc,ck->nk", [q, queue.t().clone().detach()])
    l_neg = l_neg.masked_fill(~filled[None, :], float("-inf"))  # unfilled slots: no negatives (lossjax's warm-up)
    logits = torch.cat([l_pos, l_neg], dim=1) / temperature
    labels = torch.zeros(logits.shape[0], dtype=torch.long)
    loss = F.cross_entropy(logits, labels, reduction="none")
    # _dequeue_and_enqueue, one key at a time (the reference writes a block with K % B == 0)
    ptr = int(state["pointer"])
    new_queue, new_filled = queue.clone(), filled.clone()
    for row in k:
        new_queue[ptr] = row
        new_filled[ptr] = True
        ptr = (ptr + 1) % queue.shape[0]
    holder["state"] = [new_queue.numpy(), new_filled.numpy(), np.int32(ptr)]
    return loss


def _ctr(q, k, temperature):
    # moco-v3 moco/builder.py::MoCo.contrastive_loss (world size 1), per example
    q = F.normalize(q, dim=1)
    k = F.normalize(k, dim=1)
    logits = torch.einsum("nc,mc->nm", [q, k]) / temperature
    N = logits.shape[0]
    labels = torch.arange(N, dtype=torch.long)
    return F.cross_entropy(logits, labels, reduction="none") * (2 * temperature)


def moco_v3_loss(q1, q2, k1, k2, *, temperature=1.0, **_):
    return _ctr(q1, k2.detach(), temperature) + _ctr(q2, k1.detach(), temperature)


def ibot_patch_loss(
    student,
    teacher,
    patch_mask,
    *,
    state=None,
    student_temperature=0.1,
    teacher_temperature=0.04,
    center_momentum=0.9,
    holder=None,
    **_,
):
    b, g, p, k = student.shape
    # the reference's layouts: patches [G * B, P, K] (views concatenated on the batch axis), masks per view [B, P]
    student_patch = student.permute(1, 0, 2, 3).reshape(g * b, p, k)
    teacher_patch = teacher.permute(1, 0, 2, 3).reshape(g * b, p, k)
    student_mask = [torch.as_tensor(np.asarray(patch_mask)[:, v]) for v in range(g)]
    center2 = torch.zeros(1, 1, k) if state is None else torch.tensor(np.asarray(state["center"]))[None, None, :]
    # main_ibot.py::iBOTLoss.forward, the patch term (the [CLS] term is dino_loss)
    student_patch = student_patch / student_temperature
    student_patch_c = student_patch.chunk(g)
    temp2 = teacher_temperature
    teacher_patch_c = F.softmax((teacher_patch - center2) / temp2, dim=-1).detach().chunk(g)
    total_loss2, n_loss_terms2 = 0, 0
    for q in range(g):
        v = q  # the reference computes the patch term where v == q
        loss2 = torch.sum(-teacher_patch_c[q] * F.log_softmax(student_patch_c[v], dim=-1), dim=-1)
        mask = student_mask[v].flatten(-1)
        loss2 = torch.sum(loss2 * mask.float(), dim=-1) / mask.sum(dim=-1).clamp(min=1.0)
        total_loss2 += loss2.mean()
        n_loss_terms2 += 1
    total_loss2 = total_loss2 / n_loss_terms2
    # update_center (center2; world size 1)
    with torch.no_grad():
        patch_center = torch.sum(teacher_patch.mean(1), dim=0, keepdim=True)
        patch_center = patch_center / len(teacher_patch)
        holder["center"] = (center2[0] * center_momentum + patch_center * (1 - center_momentum))[0].numpy()
    return total_loss2


SELFSUP = {
    "dino_loss": (dino_loss, "port of facebookresearch/dino@7c446df main_dino.py::DINOLoss (forward, update_center)"),
    "swav_loss": (swav_loss, "port of facebookresearch/swav@06b1b7c main_swav.py (train's loss, distributed_sinkhorn)"),
    "moco_loss": (moco_loss, "port of facebookresearch/moco@132aea9 moco/builder.py (forward, _dequeue_and_enqueue)"),
    "ibot_patch_loss": (ibot_patch_loss, "port of bytedance/ibot@da316d8 main_ibot.py::iBOTLoss (patch term, center2)"),
    "moco_v3_loss": (moco_v3_loss, "port of facebookresearch/moco-v3@c349e6e moco/builder.py (MoCo.contrastive_loss)"),
}

# ----------------------------------------------------------------------------------------------
# Metric learning: pytorch-metric-learning 2.9.
# ----------------------------------------------------------------------------------------------


def _pml_margin(x, labels, *, beta=1.2, margin=0.2, nu=0.0, holder=None):
    from pytorch_metric_learning import losses

    beta = np.asarray(beta, np.float64)
    kw = {"num_classes": beta.shape[0]} if beta.ndim else {}
    loss = losses.MarginLoss(margin=margin, nu=nu, beta=float(beta.ravel()[0]), learn_beta=nu > 0, **kw)
    if beta.ndim:
        loss.beta = torch.nn.Parameter(torch.tensor(beta))
    return loss(x, torch.as_tensor(np.asarray(labels)))


def tuplet_cosines(x, lab, margin):
    """``(c, cos(acos(c) - m), pos, neg)`` of TupletMarginLoss: cosines, margin-shifted cosines (with
    ``c cos m + sqrt(1 - c^2) sin m``, the sqrt's gradient 0 at 0) and the positive / negative pair masks."""
    xn = F.normalize(x, dim=1)
    c = xn @ xn.t()
    same = lab[:, None] == lab[None, :]
    pos = same & ~torch.eye(len(lab), dtype=torch.bool)
    m = np.radians(margin)
    one_m = 1 - c * c
    ok = one_m > 0
    sin = torch.where(ok, torch.sqrt(torch.where(ok, one_m, torch.ones_like(one_m))), torch.zeros_like(one_m))
    return c, c * np.cos(m) + sin * np.sin(m), pos, ~same


def _tuplet_port(x, labels, *, margin=5.73, scale=64.0, holder=None):
    """pytorch-metric-learning 2.9 losses/tuplet_margin_loss.py::TupletMarginLoss._compute_loss in torch, with
    ``cos(acos(c) - m)`` written ``c cos m + sqrt(1 - c^2) sin m`` (the sqrt's gradient taken as 0 at 0): PML's
    ``acos`` has an infinite derivative at ``c = +-1`` (NaN gradients for identical rows); equal elsewhere
    (checked against the PML call on every finite case)."""
    from pytorch_metric_learning import losses

    lab = torch.as_tensor(np.asarray(labels)).long()
    c, cos_m, pos, neg = tuplet_cosines(x, lab, margin)
    terms = []
    for a, p in zip(*torch.where(pos), strict=True):
        inside = scale * (c[a][neg[a]] - cos_m[a, p])
        terms.append(torch.logsumexp(torch.cat([inside, torch.zeros(1)]), dim=0))
    out = torch.stack(terms).mean() if terms else torch.zeros(())
    ref = losses.TupletMarginLoss(margin=margin, scale=scale)(x.detach(), lab)
    if torch.isfinite(ref):
        assert abs(float(ref) - float(out)) <= 1e-9 * max(1.0, abs(float(ref))), (float(ref), float(out))
    return out


def histogram_port(x, labels, *, num_bins=100, holder=None):
    """Torch port of PML 2.9 losses/histogram_loss.py::HistogramLoss (filter_pairs, compute_density): the
    density gets one more node, dropped after the scatter, so a similarity of exactly 1 (weight 0 on node
    ``num_bins + 1``) does not index out of bounds as in PML; checked against the PML call where it runs."""
    from pytorch_metric_learning import losses
    from pytorch_metric_learning.losses.histogram_loss import filter_pairs
    from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

    lab = torch.as_tensor(np.asarray(labels)).long()
    delta = 2 / num_bins
    a, p, n = lmu.convert_to_triplets(None, lab, lab, t_per_anchor="all")
    if len(a) == 0:
        return torch.zeros(()) * x.sum()
    xn = F.normalize(x, dim=1)
    mat = xn @ xn.t()
    ap, an = mat[tuple(filter_pairs(a, p))], mat[tuple(filter_pairs(a, n))]

    def density(d):
        r = torch.floor((d.detach() + 1) / delta).long()
        hi = (d + 1 - r * delta) / delta
        lo = ((r + 1) * delta - 1 - d) / delta
        out = torch.zeros(round(1 + 2 / delta) + 1)
        out = out.scatter_add(0, r + 1, hi).scatter_add(0, r, lo)
        return out[:-1] / d.size(0)

    out = torch.sum(density(an) * torch.cumsum(density(ap), dim=0))
    try:
        ref = float(losses.HistogramLoss(n_bins=num_bins)(x.detach(), lab))
    except RuntimeError:  # PML's index num_bins + 1 at a similarity of exactly 1
        ref = None
    if ref is not None:
        assert abs(ref - float(out)) <= 1e-9 * max(1.0, abs(ref)), (ref, float(out))
    return out


def contrastive_pair_loss(a, b, is_pos, *, pos_margin=0.0, neg_margin=1.0, distance="euclidean", normalize=True, **_):
    """PML 2.9 ContrastiveLoss's per-pair terms (pos_loss / neg_loss with LpDistance) on given pairs, in torch; the
    positive/negative means of the nonzero terms are checked against PML's ContrastiveLoss with indices_tuple."""
    from pytorch_metric_learning import distances, losses

    pos = torch.as_tensor(np.asarray(is_pos, bool))
    if normalize:
        a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    sq = ((a - b) ** 2).sum(1)
    ok = sq > 0
    d = sq if distance == "squared_euclidean" else torch.where(ok, torch.sqrt(torch.where(ok, sq, 1.0)), 0.0)
    out = torch.where(pos, torch.relu(d - pos_margin), torch.relu(neg_margin - d))
    if normalize and bool(ok.all()):
        n = len(pos)
        idx = torch.arange(n)
        emb = torch.cat([a, b]).detach()
        tup = (idx[pos], idx[pos] + n, idx[~pos], idx[~pos] + n)
        dist = distances.LpDistance(power=2 if distance == "squared_euclidean" else 1)
        ref = float(
            losses.ContrastiveLoss(pos_margin=pos_margin, neg_margin=neg_margin, distance=dist)(
                emb, torch.arange(2 * n), indices_tuple=tup
            )
        )
        o = out.detach()
        mine = sum(float(o[m][o[m] > 0].mean()) if bool((o[m] > 0).any()) else 0.0 for m in (pos, ~pos))
        assert abs(ref - mine) <= 1e-9 * max(1.0, abs(ref)), (ref, mine)
    return out


def _metric_table() -> dict:
    from pytorch_metric_learning import losses

    def renamed(cls, **names):
        def run(x, labels, *, holder=None, **kw):
            kw = {names.get(k, k): v for k, v in kw.items()}
            return cls(**kw)(x, torch.as_tensor(np.asarray(labels)))

        return run

    pml = "pytorch-metric-learning 2.9 (float64)"
    return {
        "margin_loss": (_pml_margin, f"{pml} losses.MarginLoss (learn_beta=nu > 0; per-class beta via num_classes)"),
        "nca_loss": (renamed(losses.NCALoss, scale="softmax_scale"), f"{pml} losses.NCALoss"),
        "fast_ap_loss": (renamed(losses.FastAPLoss), f"{pml} losses.FastAPLoss"),
        "contrastive_pair_loss": (
            contrastive_pair_loss,
            "closed form in torch (PML 2.9 ContrastiveLoss's pos/neg terms); PML's reduced value checked",
        ),
        "histogram_loss": (
            histogram_port,
            f"{pml} losses.HistogramLoss (torch port, value checked against the call; one spare density node)",
        ),
        "tuplet_margin_loss": (
            _tuplet_port,
            f"{pml} losses.TupletMarginLoss (value called; a torch port with a safe sqrt for the gradients at "
            "cos = +-1, where PML's acos gives NaN)",
        ),
        "generalized_lifted_structure_loss": (
            renamed(losses.GeneralizedLiftedStructureLoss),
            f"{pml} losses.GeneralizedLiftedStructureLoss",
        ),
        "intra_pair_variance_loss": (
            renamed(losses.IntraPairVarianceLoss, pos_epsilon="pos_eps", neg_epsilon="neg_eps"),
            f"{pml} losses.IntraPairVarianceLoss",
        ),
        "snr_contrastive_loss": (
            renamed(losses.SignalToNoiseRatioContrastiveLoss),
            f"{pml} losses.SignalToNoiseRatioContrastiveLoss",
        ),
    }


_COS_LIMIT = 1.0 - 1e-7  # lossjax's clamp before acos/sqrt (PML clamps to +-1: NaN gradients at cos = +-1)


def subcenter_arcface_loss(x, labels, proxies, *, scale=64.0, margin=0.5, holder=None):
    """Torch port of PML 2.9 SubCenterArcFaceLoss (get_cosine: max over sub-centres; ArcFaceLoss's
    modify_cosine_of_target_classes; cross-entropy per example), with lossjax's clamp; the mean is checked
    against the PML call (W = proxies as [D, C * K], margin in degrees)."""
    from pytorch_metric_learning import losses

    c, k, d = proxies.shape
    lab = torch.as_tensor(np.asarray(labels)).long()
    w = proxies.reshape(c * k, d)
    cos = F.normalize(x, dim=1) @ F.normalize(w, dim=1).t()
    cos = cos.view(-1, c, k).max(dim=2).values
    mask = F.one_hot(lab, c).to(cos.dtype)
    tc = cos[mask == 1]
    angles = torch.acos(torch.clamp(tc, -_COS_LIMIT, _COS_LIMIT))
    mod = torch.where(angles <= np.pi - margin, torch.cos(angles + margin), torch.cos(angles) - margin * np.sin(margin))
    logits = (cos + mask * (mod - tc).unsqueeze(1)) * scale
    out = F.cross_entropy(logits, lab, reduction="none")
    pml = losses.SubCenterArcFaceLoss(
        num_classes=c, embedding_size=d, sub_centers=k, margin=float(np.degrees(margin)), scale=scale
    )
    pml.W.data = w.detach().t().clone()
    ref = float(pml(x.detach(), lab))
    if np.all(np.abs(tc.detach().numpy()) < _COS_LIMIT) and np.all(np.linalg.norm(x.detach().numpy(), axis=1) > 0):
        assert abs(ref - float(out.mean())) <= 1e-9 * max(1.0, abs(ref)), (ref, float(out.mean()))
    return out


def p2sgrad_loss(x, labels, proxies, *, holder=None):
    """PML 2.9 P2SGradLoss per example (the MSE of the cosines and the one-hot target, mean over classes) with
    the gradient through the proxies' normalization (PML renormalizes ``W.data``, outside autograd); the mean
    is checked against the PML call."""
    from pytorch_metric_learning import losses

    lab = torch.as_tensor(np.asarray(labels)).long()
    cos = (F.normalize(x, dim=1) @ F.normalize(proxies, dim=1).t()).clamp(-1, 1)
    out = ((cos - F.one_hot(lab, proxies.shape[0]).to(cos.dtype)) ** 2).mean(dim=1)
    finite = np.linalg.norm(proxies.detach().numpy(), axis=1).min() > 1e-5
    if finite and np.linalg.norm(x.detach().numpy(), axis=1).min() > 0:  # PML asserts unit columns
        pml = losses.P2SGradLoss(descriptors_dim=x.shape[1], num_classes=proxies.shape[0])
        pml.weight.data = proxies.detach().t().clone()
        ref = float(pml(x.detach(), lab))
        # torch.renorm divides by (norm + 1e-7): PML's unit columns are off by ~1e-7 relative.
        assert abs(ref - float(out.mean())) <= 1e-6 * max(1.0, abs(ref)), (ref, float(out.mean()))
    return out


METRIC: dict = {}
MARGINS: dict = {
    "subcenter_arcface_loss": (
        subcenter_arcface_loss,
        "port of pytorch-metric-learning 2.9 SubCenterArcFaceLoss (value checked against the PML call)",
    ),
    "p2sgrad_loss": (p2sgrad_loss, "pytorch-metric-learning 2.9 P2SGradLoss per example (checked against the call)"),
}


def _run_family(family: str, table: dict) -> None:
    if not table:
        return
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
            aux = None
            if "center" in holder:
                aux = [holder["center"]]
            elif "state" in holder:
                aux = holder["state"]
            cases.append(E.expected_case(case, value, grads, aux=aux))
        records[name] = {"source": f"{TORCH}: {source}", "cases": cases}
    path = E.write_expected(family, records)
    print(f"wrote {path}: {sorted(records)}")


def main() -> None:
    _run_family("selfsup", SELFSUP)
    _run_family("metric", {**METRIC, **_metric_table()})
    _run_family("margins", MARGINS)


if __name__ == "__main__":
    main()
