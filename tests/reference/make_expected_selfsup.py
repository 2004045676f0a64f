"""Expected outputs of B2's selfsup entries' conformance value cases (into ``lossjax/expected/selfsup.json``).

Independent float64 implementations, never lossjax (run in the reference environment)::

    python tests/reference/dump_inputs.py --family selfsup       # the inputs (lossjax env)
    python tests/reference/make_expected_selfsup.py              # torch 2.13.0, pytorch-metric-learning 2.9.0

(``make_expected_ssl_pml.py`` writes the stateful objectives of the same family: DINO, SwAV, MoCo, iBOT.)
Torch float64 autograd gives the gradients of ``sum(cotangent * loss)``. Sources:

- ``vicreg_loss``: pytorch-metric-learning 2.9.0 ``VICRegLoss`` called (``invariance_lambda``, ``variance_mu``,
  ``covariance_v``, ``eps``), cross-checked against a port of facebookresearch/vicreg ``main_vicreg.py``
  ``VICReg.forward`` to 1e-12;
- ``barlow_twins_loss``: facebookresearch/barlowtwins ``main.py::BarlowTwins.forward`` (projector = identity,
  one process; ``torch.nn.BatchNorm1d(affine=False)`` in training mode);
- ``whitening_mse_loss``: htdt/self-supervised ``methods/whitening.py::Whitening2d`` + ``methods/w_mse.py``
  (``w_size`` = the batch, ``w_iter`` = 1, ``norm_mse_loss``), ``torch.linalg`` for the deprecated solve;
- ``dispersive_loss``: raywang4/DispLoss InfoNCE-L2: ``log mean exp(-||z_i - z_j||^2 / (D tau))`` over the full
  ``B x B`` matrix (``pdist(z)^2`` written as the squared differences, so the zero extreme has the gradient 0 of
  a squared distance instead of ``pdist``'s NaN at 0);
- ``negative_cosine_loss`` (facebookresearch/simsiam ``-CosineSimilarity(dim=1)(p, z.detach())``) and
  ``byol_loss`` (BYOL's ``regression_loss`` ``||p/|p| - z/|z|||^2`` = ``2 - 2 cos``), with
  ``torch.nn.functional.normalize`` (``x / max(|x|, 1e-12)``: a zero vector's unit vector is 0).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expected_io as E

FAMILY = "selfsup"
torch.set_default_dtype(torch.float64)
PML = "pytorch-metric-learning 2.9.0"


def ref_vicreg(x, y, invariance_weight=25.0, variance_weight=25.0, covariance_weight=1.0, epsilon=1e-4):
    from pytorch_metric_learning import losses

    loss = losses.VICRegLoss(invariance_lambda=invariance_weight, variance_mu=variance_weight,
                             covariance_v=covariance_weight, eps=epsilon)  # fmt: skip
    return loss(x, ref_emb=y)


def vicreg_paper(x, y, invariance_weight=25.0, variance_weight=25.0, covariance_weight=1.0, epsilon=1e-4):
    # facebookresearch/vicreg main_vicreg.py::VICReg.forward (single process: FullGatherLayer = identity).
    batch_size, num_features = x.shape
    repr_loss = F.mse_loss(x, y)
    x = x - x.mean(dim=0)
    y = y - y.mean(dim=0)
    std_x = torch.sqrt(x.var(dim=0) + epsilon)
    std_y = torch.sqrt(y.var(dim=0) + epsilon)
    std_loss = torch.mean(F.relu(1 - std_x)) / 2 + torch.mean(F.relu(1 - std_y)) / 2
    cov_x = (x.T @ x) / (batch_size - 1)
    cov_y = (y.T @ y) / (batch_size - 1)
    off = ~torch.eye(num_features, dtype=torch.bool)
    cov_loss = cov_x[off].pow(2).sum().div(num_features) + cov_y[off].pow(2).sum().div(num_features)
    return invariance_weight * repr_loss + variance_weight * std_loss + covariance_weight * cov_loss


def ref_barlow(z1, z2, off_diagonal_weight=0.0051, epsilon=1e-5):
    bn = torch.nn.BatchNorm1d(z1.shape[1], affine=False, eps=epsilon).double()
    bn.train()
    c = bn(z1).T @ bn(z2) / z1.shape[0]
    on_diag = torch.diagonal(c).add(-1).pow(2).sum()
    off = ~torch.eye(c.shape[0], dtype=torch.bool)
    return on_diag + off_diagonal_weight * c[off].pow(2).sum()


def _whitening2d(x, eps):
    # htdt/self-supervised methods/whitening.py::Whitening2d.forward (training mode), as matrices.
    xn = x - x.mean(0, keepdim=True)
    f_cov = xn.T @ xn / (x.shape[0] - 1)
    eye = torch.eye(x.shape[1])
    shrunk = (1 - eps) * f_cov + eps * eye
    inv_sqrt = torch.linalg.solve_triangular(torch.linalg.cholesky(shrunk), eye, upper=False)
    return xn @ inv_sqrt.T


def ref_wmse(h, epsilon=1e-4, whitening_size=None, num_iterations=1, key=None):
    assert whitening_size is None and num_iterations == 1, "the sample's settings only"
    z = [_whitening2d(h[:, i], epsilon) for i in range(h.shape[1])]
    loss, pairs = 0.0, 0
    for i in range(len(z) - 1):
        for j in range(i + 1, len(z)):
            loss = loss + (2 - 2 * (F.normalize(z[i]) * F.normalize(z[j])).sum(dim=-1).mean())
            pairs += 1
    return loss / pairs


def ref_dispersive(x, temperature=0.5, scale_by_dim=True):
    z = x.reshape(x.shape[0], -1)
    sq = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1) / (z.shape[1] if scale_by_dim else 1)
    return torch.log(torch.exp(-sq / temperature).mean())


def ref_negative_cosine(p, t, stop_gradient_targets=True):
    t = t.detach() if stop_gradient_targets else t
    return -(F.normalize(p, dim=-1) * F.normalize(t, dim=-1)).sum(-1)


def ref_byol(p, t, stop_gradient_targets=True):
    t = t.detach() if stop_gradient_targets else t
    return (F.normalize(p, dim=-1) - F.normalize(t, dim=-1)).pow(2).sum(-1)


REFERENCES = {
    "vicreg_loss": (ref_vicreg, f"{PML} VICRegLoss (checked against facebookresearch/vicreg VICReg.forward port)"),
    "barlow_twins_loss": (ref_barlow, "facebookresearch/barlowtwins main.py BarlowTwins.forward (torch port)"),
    "whitening_mse_loss": (ref_wmse, "htdt/self-supervised Whitening2d + w_mse norm_mse_loss (torch port)"),
    "dispersive_loss": (ref_dispersive, "raywang4/DispLoss InfoNCE-L2 (torch port, squared differences)"),
    "negative_cosine_loss": (ref_negative_cosine, "facebookresearch/simsiam -CosineSimilarity(p, z.detach())"),
    "byol_loss": (ref_byol, "BYOL regression_loss ||p/|p| - z/|z|||^2 (torch, F.normalize)"),
}


def main() -> None:
    inputs = E.load_inputs(FAMILY)
    records, worst = {}, 0.0
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
            assert np.all(np.isfinite(value)) and all(np.all(np.isfinite(g)) for g in grads), (name, case["case"])
            if name == "vicreg_loss":
                check = float(vicreg_paper(*(torch.as_tensor(a) for a in args), **kw))
                worst = max(worst, abs(check - float(value)) / max(1.0, abs(check)))
                assert worst < 1e-9, (name, case["case"], check, float(value))
            cases.append(E.expected_case(case, value, grads))
        records[name] = {"source": source, "cases": cases}
    path = E.write_expected(FAMILY, records)
    print(f"wrote {path}: {sorted(records)}; VICReg PML vs paper port: {worst:.1e}")


if __name__ == "__main__":
    main()
