"""Golden values for lossjax.transforms multi-task combiners and weightings -> multitask.json.

References (run once, by hand; tests read only the JSON):

- ``conflictfree==0.1.8`` (the official ConFIG package, tum-pbs/ConFIG):
  ConFIGOperator with every length model, weighted and two-loss forms,
  PseudoMomentumOperator (M-ConFIG), PCGradOperator, IMTLGOperator.
- ``torchjd==0.18.0`` (with quadprog/qpsolvers, cvxpy + clarabel + ecos):
  UPGrad, DualProj, MGDA, CAGrad, AlignedMTL, NashMTL, IMTLG, GradVac, GradDrop.
- LibMTL's formulas, ported here in torch (LibMTL itself is a training
  framework, not a pip-installable function library): UW
  (LibMTL/weighting/UW.py), DWA (DWA.py), GradNorm (GradNorm.py, with
  torch.optim.Adam on ``loss_scale``), and FAMO (Cranial-XIX/FAMO
  ``famo.py``@0a6ad06: get_weighted_loss / update with torch.optim.Adam(weight_decay), i.e. L2 decay).

pip install --no-deps conflictfree==0.1.8 torchjd==0.18.0 quadprog qpsolvers cvxpy clarabel ecos osqp scs qdldl
python tests/reference/make_multitask.py
"""

from __future__ import annotations

import json
import pathlib
import warnings

import numpy as np
import torch
from conflictfree import length_model as LM
from conflictfree.grad_operator import ConFIGOperator, IMTLGOperator, PCGradOperator
from conflictfree.momentum_operator import PseudoMomentumOperator
from conflictfree.weight_model import WeightModel
from torchjd import aggregation as A

warnings.filterwarnings("ignore")
torch.set_default_dtype(torch.float64)
OUT = pathlib.Path(__file__).with_name("multitask.json")
rng = np.random.default_rng(2024)


def grads(m, p, scale=1.0):
    return (rng.normal(size=(m, p)) * scale).astype(np.float32)


def t(x):
    return torch.tensor(np.asarray(x, np.float64))


def ls(x):
    return np.asarray(x, np.float64).tolist()


class Fixed(WeightModel):
    def __init__(self, w):
        super().__init__()
        self.w = torch.tensor(w)

    def get_weights(self, gradients=None, losses=None, device=None):
        return self.w.to(device)


LENGTHS = {
    "projection": LM.ProjectionLength,
    "min": LM.TrackMinimum,
    "max": LM.TrackMaximum,
    "harmonic": LM.TrackHarmonicAverage,
    "arithmetic": LM.TrackArithmeticAverage,
    "geometric": LM.TrackGeometricAverage,
}

cases = []

# ---------------- ConFIG (conflictfree) ----------------
for m, p in [(2, 6), (3, 8), (4, 10), (5, 3)]:
    g = grads(m, p)
    for name, cls in [*LENGTHS.items(), ("1", None)]:
        model = LM.TrackSpecific(1) if cls is None else cls()
        out = ConFIGOperator(length_model=model).calculate_gradient(t(g)).numpy()
        cases.append(
            {
                "method": "config",
                "hyper": {"length_model": 1 if cls is None else name},
                "grads": ls(g),
                "expected": ls(out),
            }
        )
for m, p, w in [(2, 6, [1.0, 2.0]), (3, 7, [1.0, 2.0, 0.5])]:
    g = grads(m, p)
    out = ConFIGOperator(weight_model=Fixed(w)).calculate_gradient(t(g)).numpy()
    cases.append({"method": "config", "hyper": {"weights": w}, "grads": ls(g), "expected": ls(out)})
# two losses through the general least-squares path (allow_simplified_model=False)
g = grads(2, 5)
out = ConFIGOperator(allow_simplified_model=False).calculate_gradient(t(g)).numpy()
cases.append({"method": "config", "hyper": {"closed_form_two": False}, "grads": ls(g), "expected": ls(out)})
# degenerate two-loss case: parallel gradients. The reference's closed form returns NaN
# (0/0 in transfer_coef_double); the exact answer is g1 + g2 (see the test).
g = np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0]], np.float32)
out = ConFIGOperator().calculate_gradient(t(g)).numpy()
cases.append({"method": "config_parallel_reference", "grads": ls(g), "expected": ls(np.nan_to_num(out, nan=-999.0))})

# ---------------- M-ConFIG (conflictfree PseudoMomentumOperator) ----------------
m, p = 3, 5
seq = [grads(m, p) for _ in range(7)]
op = PseudoMomentumOperator(num_vectors=m)
outs, sel = [], []
for step, g in enumerate(seq):
    i = step % m
    outs.append(ls(op.calculate_gradient(i, t(g[i])).numpy()))
    sel.append([j == i for j in range(m)])
cases.append(
    {
        "method": "m_config",
        "hyper": {"num_losses": m},
        "grads_seq": [ls(g) for g in seq],
        "selected": sel,
        "expected_seq": outs,
    }
)
# all losses every step, two losses (closed form inside)
m = 2
seq = [grads(m, p) for _ in range(4)]
op = PseudoMomentumOperator(num_vectors=m)
outs = [ls(op.calculate_gradient([0, 1], [t(g[0]), t(g[1])]).numpy()) for g in seq]
cases.append(
    {
        "method": "m_config",
        "hyper": {"num_losses": m},
        "grads_seq": [ls(g) for g in seq],
        "selected": [[True, True]] * 4,
        "expected_seq": outs,
    }
)

# ---------------- PCGrad, IMTL-G (conflictfree) ----------------
for m, p in [(2, 5), (3, 6), (4, 8)]:
    g = grads(m, p)
    cases.append(
        {"method": "pcgrad", "grads": ls(g), "expected": ls(PCGradOperator().calculate_gradient(t(g)).numpy())}
    )
    cases.append({"method": "imtl_g", "grads": ls(g), "expected": ls(IMTLGOperator().calculate_gradient(t(g)).numpy())})
    cases.append({"method": "imtl_g", "ref": "torchjd", "grads": ls(g), "expected": ls(A.IMTLG()(t(g)).numpy())})
# more losses than parameters: torchjd's pinv(G) form is fine, conflictfree's form is not (see the test)
g = grads(5, 3)
cases.append({"method": "imtl_g", "ref": "torchjd", "grads": ls(g), "expected": ls(A.IMTLG()(t(g)).numpy())})
cases.append(
    {
        "method": "imtl_g_conflictfree_m_gt_p",
        "grads": ls(g),
        "expected": ls(IMTLGOperator().calculate_gradient(t(g)).numpy()),
    }
)

# ---------------- torchjd aggregators ----------------
for m, p in [(2, 5), (3, 7), (4, 6), (5, 3)]:
    g = grads(m, p)
    tg = t(g)
    cases.append({"method": "upgrad", "grads": ls(g), "expected": ls(A.UPGrad()(tg).numpy())})
    cases.append({"method": "dualproj", "grads": ls(g), "expected": ls(A.DualProj()(tg).numpy())})
    cases.append({"method": "mgda", "grads": ls(g), "expected": ls(A.MGDA()(tg).numpy())})
    cases.append({"method": "cagrad", "hyper": {"c": 0.4}, "grads": ls(g), "expected": ls(A.CAGrad(c=0.4)(tg).numpy())})
    cases.append({"method": "cagrad", "hyper": {"c": 1.0}, "grads": ls(g), "expected": ls(A.CAGrad(c=1.0)(tg).numpy())})
    for mode in ("min", "median", "rmse"):
        cases.append(
            {
                "method": "aligned_mtl",
                "hyper": {"scale_mode": mode},
                "grads": ls(g),
                "expected": ls(A.AlignedMTL(scale_mode=mode)(tg).numpy()),
            }
        )
    cases.append(
        {
            "method": "nash_mtl",
            "hyper": {"num_losses": m},
            "grads": ls(g),
            "expected": ls(A.NashMTL(n_tasks=m)(tg).numpy()),
        }
    )
g = grads(3, 6)
pref = [0.2, 0.3, 0.5]
cases.append(
    {
        "method": "upgrad",
        "hyper": {"pref_vector": pref},
        "grads": ls(g),
        "expected": ls(A.UPGrad(pref_vector=t(pref))(t(g)).numpy()),
    }
)
cases.append(
    {
        "method": "dualproj",
        "hyper": {"pref_vector": pref},
        "grads": ls(g),
        "expected": ls(A.DualProj(pref_vector=t(pref))(t(g)).numpy()),
    }
)
# Nash-MTL without the norm cap (the raw bargaining solution)
g = grads(3, 6)
cases.append(
    {
        "method": "nash_mtl",
        "hyper": {"num_losses": 3, "max_norm": 0.0},
        "grads": ls(g),
        "expected": ls(A.NashMTL(n_tasks=3, max_norm=0.0)(t(g)).numpy()),
    }
)

# GradVac, two losses (no random order), three steps with its EMA state
gv = A.GradVac(beta=0.5)
seq = [grads(2, 5) for _ in range(3)]
seq[0][1] = -seq[0][0] + 0.3 * seq[0][1]  # a conflicting first step
cases.append(
    {
        "method": "gradvac",
        "hyper": {"num_losses": 2, "beta": 0.5},
        "grads_seq": [ls(g) for g in seq],
        "expected_seq": [ls(gv(t(g)).numpy()) for g in seq],
    }
)

# GradDrop with given uniforms (torch.rand patched to return them)
g = grads(3, 8)
u = rng.uniform(size=(8,))
leak = [0.0, 0.2, 0.5]
orig = torch.rand
torch.rand = lambda *a, **k: t(u)
out = A.GradDrop()(t(g)).numpy()
out_leak = A.GradDrop(leak=t(leak))(t(g)).numpy()
torch.rand = orig
cases.append({"method": "graddrop", "grads": ls(g), "uniforms": ls(u), "expected": ls(out)})
cases.append({"method": "graddrop", "grads": ls(g), "uniforms": ls(u), "leak": leak, "expected": ls(out_leak)})

# ---------------- LibMTL formulas (ported) ----------------
# UW: loss = sum(L / (2 exp(s)) + s / 2); its value and gradient wrt s.
L = rng.uniform(0.2, 3.0, size=(4,))
s0 = rng.normal(size=(4,)) * 0.7
s = t(s0).requires_grad_(True)
total = (t(L) / (2 * s.exp()) + s / 2).sum()
total.backward()
cases.append({"method": "uw_loss", "losses": ls(L), "log_vars": ls(s0), "expected": float(total), "grad": ls(s.grad)})

# DWA: weights from the two previous loss vectors (LibMTL train_loss_buffer columns).
hist = rng.uniform(0.5, 2.0, size=(4, 3))  # 4 "epochs" x 3 tasks
T_ = 2.0
w_seq = []
for epoch in range(4):
    if epoch > 1:
        w = 3 * torch.softmax(t(hist[epoch - 1] / hist[epoch - 2]) / T_, dim=-1)
    else:
        w = torch.ones(3)
    w_seq.append(ls(w.numpy()))
cases.append({"method": "dwa", "losses_seq": ls(hist), "expected_weights": w_seq})

# GradNorm: LibMTL's backward with torch.optim.Adam on loss_scale, 3 steps (first = "epoch 0").
m, p = 3, 6
seq = [grads(m, p) for _ in range(3)]
lseq = rng.uniform(0.5, 2.0, size=(3, m))
scale = torch.zeros(m, requires_grad=True)  # lossjax parametrises m*softmax(xi); LibMTL inits 1.0 (same softmax)
opt = torch.optim.Adam([scale], lr=1e-2)
weights_seq, logits_seq = [], []
L0 = None
for step in range(3):
    g = t(seq[step])
    if step == 0:
        L0 = t(lseq[0])
        w = torch.ones(m)
    else:
        opt.zero_grad()
        loss_scale = m * torch.softmax(scale, dim=-1)
        G_per = torch.norm(loss_scale.unsqueeze(1) * g, p=2, dim=-1)
        Gm = G_per.mean(0)
        Li = t(lseq[step]) / L0
        r = Li / Li.mean()
        const = (Gm * r**1.5).detach()
        (G_per - const).abs().sum().backward()
        w = loss_scale.detach().clone()
        opt.step()
    weights_seq.append(ls((w.unsqueeze(1) * g).sum(0).numpy()))
    logits_seq.append(ls(scale.detach().numpy()))
cases.append(
    {
        "method": "gradnorm",
        "hyper": {"num_losses": m, "alpha": 1.5, "learning_rate": 1e-2},
        "grads_seq": [ls(g) for g in seq],
        "losses_seq": ls(lseq),
        "expected_seq": weights_seq,
        "logits_seq": logits_seq,
    }
)

# FAMO (official famo.py): weights z/(c D) and the Adam (weight_decay: L2) update of the logits from the log decrease.
m, p = 3, 5
seq = [grads(m, p) for _ in range(3)]
lseq = rng.uniform(0.5, 2.0, size=(3, m))
w_logit = torch.zeros(m, requires_grad=True)
opt = torch.optim.Adam([w_logit], lr=0.025, weight_decay=1e-3)  # as famo.py (not AdamW)
outs = []
prev = None
for step in range(3):
    cur = t(lseq[step])
    if prev is not None:
        delta = (prev + 1e-8).log() - (cur + 1e-8).log()
        with torch.enable_grad():
            d = torch.autograd.grad(torch.softmax(w_logit, -1), w_logit, grad_outputs=delta.detach())[0]
        opt.zero_grad()
        w_logit.grad = d
        opt.step()
    z = torch.softmax(w_logit.detach(), -1)
    D = cur + 1e-8
    c = (z / D).sum()
    wts = z / (c * D)
    outs.append(ls((wts.unsqueeze(1) * t(seq[step])).sum(0).numpy()))
    prev = cur
cases.append(
    {
        "method": "famo",
        "hyper": {"num_losses": m},
        "grads_seq": [ls(g) for g in seq],
        "losses_seq": ls(lseq),
        "expected_seq": outs,
    }
)

OUT.write_text(json.dumps({"cases": cases}, indent=1))
print(f"wrote {len(cases)} cases to {OUT}")
