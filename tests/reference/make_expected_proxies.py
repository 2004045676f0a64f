"""Expected outputs of the proxies family's conformance value cases (``lossjax/expected/proxies.json``).

Independent float64 implementations, never lossjax (run in the reference environment)::

    python tests/reference/dump_inputs.py --family proxies       # the inputs (lossjax env)
    python tests/reference/make_expected_proxies.py              # torch 2.13.0, pytorch-metric-learning 2.9.0

Torch float64 autograd gives the gradients of ``sum(cotangent * loss)``. Sources:

- pytorch-metric-learning 2.9.0 called, its learned parameters replaced by the case's proxies:
  ``ProxyNCALoss(softmax_scale=scale)`` (per example), ``ProxyAnchorLoss(margin, alpha=scale)`` (its default
  reducer), ``SoftTripleLoss(centers_per_class=K, la=scale, gamma=center_temperature, margin)`` (per example;
  its ``fc`` column ``c K + k`` is center ``k`` of class ``c``);
- ports: idstcv/SoftTriple ``loss/SoftTriple.py`` (the ``tau`` regularizer), jakesnell/prototypical-networks
  ``protonets/models/few_shot.py`` (``Protonet.loss``, squared Euclidean), clovaai/voxceleb_trainer
  ``loss/angleproto.py`` (with ``F.normalize`` cosines: a zero vector's cosine is 0);
- closed forms written here from the papers: the harmonic loss (arXiv:2502.01628: cross-entropy on
  ``-(n/2) log max(|x - w_c|^2, epsilon^2)``) and the ALE/WSABIE ranking loss with the exact WARP weight
  ``H_r / r`` (arXiv:1503.08677 eq. 7; the weight carries no gradient).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expected_io as E

FAMILY = "proxies"
torch.set_default_dtype(torch.float64)
PML = "pytorch-metric-learning 2.9.0"


def _set_plain(module, name, tensor):
    delattr(module, name)
    object.__setattr__(module, name, tensor)


def ref_proxy_nca(x, y, w, scale=1.0):
    from pytorch_metric_learning import losses
    from pytorch_metric_learning.reducers import DoNothingReducer

    loss = losses.ProxyNCALoss(num_classes=w.shape[0], embedding_size=w.shape[1], softmax_scale=scale,
                               reducer=DoNothingReducer())  # fmt: skip
    _set_plain(loss, "proxies", w)
    return loss(x, y.long())["loss"]["losses"]


def ref_proxy_anchor(x, y, w, margin=0.1, scale=32.0):
    from pytorch_metric_learning import losses

    loss = losses.ProxyAnchorLoss(num_classes=w.shape[0], embedding_size=w.shape[1], margin=margin, alpha=scale)
    _set_plain(loss, "proxies", w)
    return loss(x, y.long())


def ref_soft_triple(x, y, w, scale=20.0, center_temperature=0.1, margin=0.01):
    from pytorch_metric_learning import losses
    from pytorch_metric_learning.reducers import DoNothingReducer

    c, k, d = w.shape
    loss = losses.SoftTripleLoss(num_classes=c, embedding_size=d, centers_per_class=k, la=scale,
                                 gamma=center_temperature, margin=margin, reducer=DoNothingReducer())  # fmt: skip
    _set_plain(loss, "fc", w.reshape(c * k, d).T)
    return loss(x, y.long())["loss"]["losses"]


def ref_soft_triple_regularizer(w, regularizer_weight=0.2):
    # idstcv/SoftTriple loss/SoftTriple.py: the tau term (centers = normalized fc, [D, cN * K]).
    cn, k, d = w.shape
    weight = torch.zeros(cn * k, cn * k, dtype=torch.bool)
    for i in range(cn):
        for j in range(k):
            weight[i * k + j, i * k + j + 1 : (i + 1) * k] = 1
    centers = F.normalize(w.reshape(cn * k, d).T, p=2, dim=0)
    sim_center = centers.t().matmul(centers)
    reg = torch.sum(torch.sqrt(2.0 + 1e-5 - 2.0 * sim_center[weight])) / max(cn * k * (k - 1.0), 1.0)
    return regularizer_weight * reg


def ref_prototypical(xs, xq, distance="squared_euclidean"):
    # jakesnell/prototypical-networks few_shot.py::Protonet.loss with euclidean_dist (squared).
    assert distance == "squared_euclidean"
    n_class, n_query = xq.size(0), xq.size(1)
    target_inds = torch.arange(0, n_class).view(n_class, 1, 1).expand(n_class, n_query, 1).long()
    z_proto = xs.mean(1)
    zq = xq.reshape(n_class * n_query, -1)
    dists = torch.pow(zq.unsqueeze(1) - z_proto.unsqueeze(0), 2).sum(2)
    log_p_y = F.log_softmax(-dists, dim=1).view(n_class, n_query, -1)
    return -log_p_y.gather(2, target_inds).squeeze(-1).view(-1).mean()


def ref_angular_prototypical(x, scale=10.0, bias=-5.0):
    # clovaai/voxceleb_trainer loss/angleproto.py::LossFunction.forward (cosines of F.normalize'd vectors).
    out_anchor = torch.mean(x[:, 1:, :], 1)
    out_positive = x[:, 0, :]
    cos = F.normalize(out_positive, dim=1) @ F.normalize(out_anchor, dim=1).T
    logits = cos * max(scale, 1e-6) + bias
    return F.cross_entropy(logits, torch.arange(x.shape[0]))


def ref_harmonic(x, y, w, exponent=None, epsilon=1e-6):
    n = x.shape[-1] if exponent is None else exponent
    sq = ((x[:, None, :] - w[None, :, :]) ** 2).sum(-1)
    logits = -0.5 * n * torch.log(torch.clamp(sq, min=epsilon**2))
    return F.cross_entropy(logits, y.long(), reduction="none")


def ref_ale(x, y, phi, w, margin=1.0):
    scores = (x @ w) @ phi.T
    onehot = F.one_hot(y.long(), phi.shape[0]).bool()
    s_y = scores[onehot][:, None]
    viol = torch.where(onehot, torch.zeros_like(scores), margin + scores - s_y)
    r = (viol > 0).sum(-1)
    h = torch.tensor([sum(1.0 / k for k in range(1, int(ri) + 1)) for ri in r])
    weight = torch.where(r > 0, h / torch.clamp(r, min=1), torch.zeros_like(h))
    return weight.detach() * torch.relu(viol).sum(-1)


REFERENCES = {
    "proxy_nca_loss": (ref_proxy_nca, f"{PML} ProxyNCALoss(softmax_scale=scale), per example"),
    "proxy_anchor_loss": (ref_proxy_anchor, f"{PML} ProxyAnchorLoss(margin, alpha=scale)"),
    "soft_triple_loss": (ref_soft_triple, f"{PML} SoftTripleLoss(la=scale, gamma=center_temperature), per example"),
    "soft_triple_regularizer": (ref_soft_triple_regularizer, "idstcv/SoftTriple loss/SoftTriple.py tau term (port)"),
    "prototypical_loss": (ref_prototypical, "jakesnell/prototypical-networks few_shot.py Protonet.loss (port)"),
    "angular_prototypical_loss": (ref_angular_prototypical, "clovaai/voxceleb_trainer loss/angleproto.py (port)"),
    "harmonic_loss": (ref_harmonic, "harmonic loss closed form, arXiv:2502.01628 (torch)"),
    "label_embedding_ranking_loss": (ref_ale, "ALE/WSABIE ranking loss with exact WARP weight, arXiv:1503.08677"),
}


def main() -> None:
    inputs = E.load_inputs(FAMILY)
    records = {}
    for name, entry in inputs.items():
        if name not in REFERENCES:
            print(f"skipped {name}: not in this generator")
            continue
        fn, source = REFERENCES[name]
        cases = []
        for case in entry["cases"]:
            args, kw = E.case_inputs(case)
            out, grads = E.torch_value_and_grads(fn, list(args), entry["diff_argnums"], **kw)
            value = out.detach().numpy()
            grads = [g.detach().numpy() for g in grads]
            assert np.all(np.isfinite(value)), (name, case["case"])
            if not all(np.all(np.isfinite(g)) for g in grads):
                print(f"{name} {case['case']}: non-finite upstream gradient, value only")
                grads = None
            cases.append(E.expected_case(case, value, grads))
        records[name] = {"source": source, "cases": cases}
    path = E.write_expected(FAMILY, records)
    print(f"wrote {path}: {sorted(records)}")


if __name__ == "__main__":
    main()
