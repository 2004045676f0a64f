"""Expected outputs for the rest of pytorch-metric-learning's losses (issue 15, second part): writes their
records into ``lossjax/expected/metric.json`` and ``lossjax/expected/margins.json`` (merged, other entries kept).

Independent float64 implementations, never lossjax (run in the reference environment)::

    python tests/reference/dump_inputs.py --family metric --family margins   # lossjax env
    python tests/reference/make_expected_pml2.py                             # refvenv

Sources (torch float64 autograd gives the gradients of ``sum(cotangent * loss)``), pytorch-metric-learning 2.9.0:

- called: ``AngularLoss``, ``SmoothAPLoss``, ``PNPLoss`` (``b`` = boundary, ``anneal`` = temperature),
  ``RankedListLoss`` (``Tp``/``Tn`` = pos_scale/neg_scale, ``LpDistance(normalize_embeddings=normalize)``),
  ``InstanceLoss`` (``gamma`` = scale), ``LargeMarginSoftmaxLoss`` (``W`` = proxies transposed,
  ``DoNothingReducer`` for the per-example losses);
- ``CentroidTripletLoss`` (PML 1.7, removed in 2.0): a torch port of KevinMusgrave/pytorch-metric-learning
  ``src/pytorch_metric_learning/losses/centroid_triplet_loss.py@1732bae`` (its rounds of queries, positive
  centroids without the query, every class's centroid as negatives) on classes of equal size, whose triplets go
  to PML 2.9's ``TripletMarginLoss`` (called, AvgNonZero); with ``PML_CHECKOUT`` set to a clone of that
  repository, also checked against that file executed on PML 2.9's base classes;
- torch ports checked against the call: ``DynamicSoftMarginLoss`` (``compute_loss_with_labels``,
  ``update_histogram``, ``weigh_loss``; the scatter drops a bin index past the last bin where PML raises, and
  the histogram state comes in and goes out explicitly), ``ManifoldLoss.compute_loss`` (the meta-classes are
  the labels; the inverse in float64 where PML casts it to float32, so the call agrees to ~1e-6 only).
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
PML = "pytorch-metric-learning 2.9.0"


def _labels(y):
    return torch.as_tensor(np.asarray(y)).long()


def _close(ref: float, got: float, rtol: float = 1e-9) -> None:
    assert abs(ref - got) <= rtol * max(1.0, abs(ref)), (ref, got)


# ------------------------------------- metric -------------------------------------


def angular(x, labels, *, alpha=40.0, holder=None):
    from pytorch_metric_learning import losses

    return losses.AngularLoss(alpha=alpha)(x, _labels(labels))


def smooth_ap(x, labels, *, temperature=0.01, holder=None):
    from pytorch_metric_learning import losses

    return losses.SmoothAPLoss(temperature=temperature)(x, _labels(labels))


def pnp(x, labels, *, variant="O", temperature=0.01, alpha=1.0, boundary=2.0, holder=None):
    from pytorch_metric_learning import losses

    return losses.PNPLoss(b=boundary, alpha=alpha, anneal=temperature, variant=variant)(x, _labels(labels))


def ranked_list(x, labels, *, margin=0.4, alpha=None, imbalance=0.5, pos_scale=0.0, neg_scale=10.0, normalize=True,
                holder=None):  # fmt: skip
    from pytorch_metric_learning import distances, losses

    loss = losses.RankedListLoss(
        margin=margin, Tn=neg_scale, imbalance=imbalance, alpha=alpha, Tp=pos_scale,
        distance=distances.LpDistance(normalize_embeddings=normalize),
    )  # fmt: skip
    return loss(x, _labels(labels))


def instance(x, labels, *, scale=64.0, holder=None):
    from pytorch_metric_learning import losses

    return losses.InstanceLoss(gamma=scale)(x, _labels(labels))


def centroid_triplet(x, labels, *, margin=0.05, normalize=True, holder=None):
    from pytorch_metric_learning import distances, losses

    lab = np.asarray(labels)
    classes = list(dict.fromkeys(lab.tolist()))  # in order of first appearance, as PML's labels_dict
    members = [np.flatnonzero(lab == c) for c in classes]
    size = len(members[0])
    assert all(len(m) == size for m in members) and size > 1, "the reference needs classes of equal size > 1"
    k = len(classes)
    embs, labs, a, p, n = [], [], [], [], []
    start = 0
    for r in range(size):  # PML's instance rounds: the r-th example of every class is a query
        queries = x[[int(m[r]) for m in members]]
        pos = torch.stack([x[[int(i) for j, i in enumerate(m) if j != r]].mean(0) for m in members])
        neg = torch.stack([x[[int(i) for i in m]].mean(0) for m in members])
        embs.append(torch.cat([queries, pos, neg]))
        labs.append(torch.tensor(classes * 3))
        for qi in range(k):
            for ki in range(k):
                if ki != qi:
                    a.append(start + qi)
                    p.append(start + k + qi)
                    n.append(start + 2 * k + ki)
        start += 3 * k
    loss = losses.TripletMarginLoss(margin=margin, distance=distances.LpDistance(normalize_embeddings=normalize))
    tup = tuple(torch.tensor(t) for t in (a, p, n))
    out = loss(torch.cat(embs), torch.cat(labs), indices_tuple=tup)
    checkout = os.environ.get("PML_CHECKOUT")
    if checkout:
        import subprocess

        code = subprocess.run(
            ["git", "-C", checkout, "show", "1732bae:src/pytorch_metric_learning/losses/centroid_triplet_loss.py"],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        code = code.replace("from ..", "from pytorch_metric_learning.").replace(
            "from .", "from pytorch_metric_learning.losses."
        )
        ns: dict = {"__name__": "centroid_triplet_loss_1732bae"}
        exec(compile(code, "centroid_triplet_loss.py@1732bae", "exec"), ns)
        upstream = ns["CentroidTripletLoss"](
            margin=margin, distance=distances.LpDistance(normalize_embeddings=normalize)
        )
        _close(float(upstream(x.detach(), _labels(labels))), float(out))
    return out


def dynamic_soft_margin(x, labels, *, state=None, min_value=-2.0, num_bins=10, decay=0.99, holder=None):
    """Torch port of PML 2.9 losses/dynamic_soft_margin_loss.py::DynamicSoftMarginLoss (with labels: all
    triplets by ``lmu.convert_to_triplets(t_per_anchor="all")``, LpDistance of normalized embeddings), the
    histogram given as state; checked against the call (``hist_`` set to the state) where PML's bins suffice."""
    from pytorch_metric_learning import losses
    from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

    lab = _labels(labels)
    hist = torch.zeros(num_bins) if state is None else torch.tensor(np.asarray(state["histogram"]))
    a, p, n = lmu.convert_to_triplets(None, lab, lab, t_per_anchor="all")
    if len(a) == 0:
        holder["state"] = [hist]
        return torch.zeros(()) * x.sum()
    xn = F.normalize(x, dim=1)
    sq = ((xn[:, None, :] - xn[None, :, :]) ** 2).sum(-1)
    ok = sq > 0
    mat = torch.where(ok, torch.sqrt(torch.where(ok, sq, torch.ones_like(sq))), torch.zeros_like(sq))
    data = mat[a, p] - mat[a, n]
    delta = 2 * abs(min_value) / num_bins
    idx = torch.floor((data - min_value) / delta).long()
    alpha = torch.frac((data - min_value) / delta)
    momentum = (1 - decay) if hist.sum() != 0 else 1.0
    new = torch.zeros(num_bins + 2)  # two spare bins: an index past the last bin adds to a dropped bin
    new = new.scatter_add(0, idx.clamp(0, num_bins + 1), momentum * (1 - alpha))
    new = new.scatter_add(0, (idx + 1).clamp(0, num_bins + 1), momentum * alpha)
    h = (1.0 - momentum) * hist + new[:num_bins]
    h = h / h.sum()
    cdf = torch.cumsum(h, 0)
    out = (cdf[idx.clamp(0, num_bins - 1)] * data).mean()
    holder["state"] = [h.detach()]
    if bool((idx >= 0).all()) and bool((idx + 1 < num_bins).all()):
        pml = losses.DynamicSoftMarginLoss(min_val=min_value, num_bins=num_bins, momentum=1 - decay)
        pml.hist_ = hist.clone()
        _close(float(pml(x.detach(), lab)), float(out))
        assert torch.allclose(pml.hist_.detach(), h.detach(), rtol=1e-12, atol=1e-14)
    return out


def manifold(x, labels, proxies, *, context_weight=1.0, alpha=0.8, margin=5e-4, holder=None):
    """Torch port of PML 2.9 losses/manifold_loss.py::ManifoldLoss.compute_loss with ``indices_tuple`` = the
    labels (the meta-classes) and the inverse in float64 (PML inverts in float32); checked against the call."""
    from pytorch_metric_learning import losses

    meta = _labels(labels)
    n, k = len(x), len(proxies)
    z = torch.cat([x, proxies])
    zn = F.normalize(z, dim=1)
    s = torch.exp((zn @ zn.t()).clamp(0, np.inf) / 0.5)
    y = torch.eye(n + k)
    s = s - s * y
    d_inv_half = torch.pow(torch.sum(s, dim=1), -1 / 2).diag()
    s_bar = d_inv_half.mm(s).mm(d_inv_half)
    f = (1 - alpha) * torch.inverse(y - alpha * s_bar)
    f_p, f_e = f[n:, :], f[:n, :]

    def term(v):
        v = v - v[torch.arange(n), meta].view(-1, 1) + margin
        keep = torch.ones_like(v, dtype=torch.bool)
        keep[torch.arange(n), meta] = False
        keep = keep & (v >= 0)
        e = torch.where(keep, torch.exp(torch.where(keep, v, torch.zeros_like(v))), torch.zeros_like(v))
        return torch.log(1 + e.sum(dim=1)).mean()

    out = term(f[:n, n:])
    if context_weight:
        out = out + context_weight * term(F.cosine_similarity(f_e, f_p.unsqueeze(1), dim=-1).t())
    pml = losses.ManifoldLoss(l=x.shape[1], K=k, lambdaC=context_weight, alpha=alpha, margin=margin)
    del pml._parameters["proxies"]
    pml.proxies = proxies.detach()
    _close(float(pml(x.detach(), indices_tuple=meta)), float(out), rtol=1e-5)
    return out


METRIC = {
    "angular_loss": (angular, f"{PML} losses.AngularLoss"),
    "smooth_ap_loss": (smooth_ap, f"{PML} losses.SmoothAPLoss"),
    "pnp_loss": (pnp, f"{PML} losses.PNPLoss (b = boundary, anneal = temperature)"),
    "ranked_list_loss": (ranked_list, f"{PML} losses.RankedListLoss (Tp, Tn = pos_scale, neg_scale)"),
    "instance_loss": (instance, f"{PML} losses.InstanceLoss (gamma = scale)"),
    "centroid_triplet_loss": (
        centroid_triplet,
        "torch port of pytorch-metric-learning@1732bae losses/centroid_triplet_loss.py (PML 1.7) with PML 2.9.0's "
        "TripletMarginLoss called; checked against that file run on PML 2.9",
    ),
    "dynamic_soft_margin_loss": (
        dynamic_soft_margin,
        f"torch port of {PML} losses.DynamicSoftMarginLoss (value and histogram checked against the call)",
    ),
    "manifold_loss": (
        manifold,
        f"torch port of {PML} losses.ManifoldLoss.compute_loss (meta-classes = labels; float64 inverse; "
        "checked against the call to 1e-5)",
    ),
}


# ------------------------------------- margins -------------------------------------


def large_margin_softmax(x, labels, proxies, *, margin=4, scale=1.0, holder=None):
    from pytorch_metric_learning import losses, reducers

    c, d = proxies.shape
    loss = losses.LargeMarginSoftmaxLoss(
        num_classes=c, embedding_size=d, margin=margin, scale=scale, reducer=reducers.DoNothingReducer()
    )
    del loss._parameters["W"]
    loss.W = proxies.t()
    return loss(x, _labels(labels))["loss"]["losses"]


MARGINS = {
    "large_margin_softmax_loss": (
        large_margin_softmax,
        f"{PML} losses.LargeMarginSoftmaxLoss (W = proxies.T; DoNothingReducer: per example)",
    ),
}


def _finite(xs) -> bool:
    return all(bool(torch.isfinite(torch.as_tensor(g)).all()) for g in xs)


def _run_family(family: str, table: dict) -> None:
    inputs = E.load_inputs(family)
    records = {}
    for name, (fn, source) in table.items():
        if name not in inputs:
            print(f"{family}: {name} not in the inputs (dump them first)")
            continue
        entry = inputs[name]
        cases, value_only = [], []
        for case in entry["cases"]:
            args, kw = E.case_inputs(case)
            holder: dict = {}
            out, grads = E.torch_value_and_grads(fn, list(args), entry["diff_argnums"], holder=holder, **kw)
            value = out.detach().numpy()
            assert np.all(np.isfinite(value)), (name, case["case"], value)
            grads = [g.detach().numpy() for g in grads]
            if not _finite(grads):
                value_only.append(case["case"])
                grads = None
            cases.append(E.expected_case(case, value, grads, aux=holder.get("state")))
        if value_only:
            source += f"; value only at {sorted(set(value_only))} (the upstream gradient is not finite there)"
        records[name] = {"source": f"{TORCH}: {source}", "cases": cases}
    path = E.write_expected(family, records)
    print(f"wrote {path}: {sorted(records)}")


def main() -> None:
    _run_family("metric", METRIC)
    _run_family("margins", MARGINS)


if __name__ == "__main__":
    main()
