"""Expected updates of the multitask family -> lossjax/expected/multitask.json (never imports lossjax).

Protocol (lossjax.testing.transform_steps): ``state = init(params)``; 2 steps of
``out, state = update(updates, state, params, **extra_args)`` with the sample's fixed
per-loss gradients ``updates`` (every leaf ``[m, *shape]``), then ``params += out``.
The combiners ignore ``params``, so only their state carries over.

Inputs: tests/reference/inputs/multitask.json (``python tests/reference/dump_inputs.py --family multitask``).
The per-loss gradients are flattened into a matrix ``J [m, P]`` (leaves in sorted key order, as JAX
flattens a dict) and each update is computed in float64 by:

- config        conflictfree==0.1.8 ConFIGOperator (length models, weights, allow_simplified_model)
- m_config      conflictfree==0.1.8 PseudoMomentumOperator (stateful over the 2 steps)
- pcgrad        torchjd==0.18.0 PCGrad with torch.randperm given the order (identity; or, with
                shuffle, jax.random.permutation(split(key, m)[i], m): the draw is an input);
                the fixed order also checked against conflictfree PCGradOperator
- imtl_g        conflictfree==0.1.8 IMTLGOperator (checked against torchjd IMTLG)
- upgrad        torchjd==0.18.0 UPGrad (quadprog), pref_vector=weights, norm_eps, reg_eps
- dualproj      torchjd==0.18.0 DualProj (quadprog)
- mgda          torchjd==0.18.0 MGDA (Frank-Wolfe, epsilon=tolerance, max_iters);
                solver="exact": cvxpy/CLARABEL min ||J^T w||^2 over the simplex
- cagrad        torchjd==0.18.0 CAGrad (cvxpy/CLARABEL); variant="paper": the official rule of
                Cranial-XIX/CAGrad@dc3d481 nyuv2/utils.py::cagrad (rescale=1) with its QP on the raw
                Gram solved by cvxpy/CLARABEL instead of scipy SLSQP (for precision)
- aligned_mtl   torchjd==0.18.0 AlignedMTL (pref_vector=weights, scale_mode)
- gradvac       torchjd==0.18.0 GradVac (beta = 1 - decay) with torch.randperm given the order
- graddrop      torchjd==0.18.0 GradDrop (leak) with torch.rand given the uniforms drawn by
                jax.random.uniform(split(key, #leaves)[leaf], leaf.shape[1:]) (an input)
- nash_mtl      the paper's fixed point alpha * (G alpha) = 1 solved in float64 to 1e-13
                (scipy.optimize.root), capped to max_norm; checked against torchjd NashMTL
                (cvxpy/ECOS, which stops at a residual norm of 1e-3: agreement ~1e-3 recorded)
- equal_weight  torchjd==0.18.0 Sum / Mean
- krum, trimmed_mean, constant_weights   torchjd==0.18.0 Krum, TrimmedMean, Constant
- fairgrad      torchjd==0.18.0 FairGrad (G w = w^(-1/alpha) by scipy least_squares)
- excess_mtl    torchjd==0.18.0 ExcessMTL (one object over the 2 steps: its state carries over)
- pcd           torchjd==0.18.0 PCD (tau = progress_fraction, beta = decay; stateful over the 2 steps)
- modo          torchjd==0.18.0 MoDoWeighting on A = J_a J_b^T (updates_a, updates_b), weights @ J
                (the same rule as LibMTL@4336804 LibMTL/weighting/MoDo.py)
- sdmgrad       torchjd==0.18.0 SDMGradWeighting on A = J_a J_b^T (lr, momentum, n_iter, lambda_ =
                preference_weight, pref_vector = weights), weights @ J
- cr_mogm       torchjd==0.18.0 GramianWeightedAggregator(CRMOGMWeighting(UPGradWeighting / MGDAWeighting,
                alpha = decay, initial_weights))
- imtl          LibMTL@4336804 LibMTL/weighting/IMTL.py ported to float64 torch (its IMTL-G formula on
                e^s g; the loss scales stepped by torch.optim.Adam on sum e^s L - s);
                gradient_balance=False: IMTL-L alone (alpha = 1)
- moco_mtl      LibMTL@4336804 LibMTL/weighting/MoCo.py ported to float64 torch
- db_mtl        LibMTL@4336804 LibMTL/weighting/DB_MTL.py ported to float64 torch (grad log(L + 1e-8) =
                g / (L + 1e-8))

Extra dependencies here only: pip install quadprog qpsolvers cvxpy clarabel ecos (into the refvenv).
Run: python tests/reference/make_expected_multitask.py
"""

from __future__ import annotations

import os
import sys
import warnings
from unittest import mock

os.environ.setdefault("JAX_PLATFORMS", "cpu")
warnings.filterwarnings("ignore")

import cvxpy as cp  # noqa: E402
import jax  # noqa: E402  (PRNG draws only: the random inputs of the shuffled/random variants)
import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from conflictfree import length_model as LM  # noqa: E402
from conflictfree.grad_operator import ConFIGOperator, IMTLGOperator, PCGradOperator  # noqa: E402
from conflictfree.momentum_operator import PseudoMomentumOperator  # noqa: E402
from conflictfree.weight_model import WeightModel  # noqa: E402
from torchjd import aggregation as A  # noqa: E402
from torchjd._linalg._dual_cone import QuadprogProjector  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from expected_io import decode, encode, load_inputs, write_expected  # noqa: E402

torch.set_default_dtype(torch.float64)
FAMILY = "multitask"
TORCHJD = "torchjd==0.18.0"
CONFLICTFREE = "conflictfree==0.1.8"


def t(x):
    return torch.tensor(np.asarray(x, np.float64))


# ------------------------------ the protocol ------------------------------


def flat(updates: dict) -> np.ndarray:
    keys = sorted(updates)
    m = updates[keys[0]].shape[0]
    return np.concatenate([np.asarray(updates[k], np.float64).reshape(m, -1) for k in keys], axis=1)


def unflat(vec: np.ndarray, like: dict) -> dict:
    out, i = {}, 0
    for k in sorted(like):
        n = int(np.prod(like[k].shape))
        out[k] = np.asarray(vec[i : i + n]).reshape(like[k].shape)
        i += n
    return out


def steps(case, step):
    """``step(J, k) -> update [P]`` for step k (the method keeps its own state); params += out each step."""
    params = decode(case["params"])
    J = flat(decode(case["updates"]))
    outs = []
    for k in range(case["steps"]):
        out = unflat(np.asarray(step(J, k), np.float64), params)
        outs.append(out)
        params = {key: params[key] + out[key] for key in params}
    return outs


def raw_key(case):
    return jax.numpy.asarray(np.asarray(decode(case["extra_args"])["key"], np.uint32))


class Fixed(WeightModel):
    def __init__(self, w):
        super().__init__()
        self.w = torch.tensor(w)

    def get_weights(self, gradients=None, losses=None, device=None):
        return self.w.to(device)


class Perms:
    """A stand-in for torch.randperm returning the given permutations in order."""

    def __init__(self, perms):
        self.perms = list(perms)

    def __call__(self, n, *args, **kwargs):
        p = self.perms.pop(0)
        assert len(p) == n, (len(p), n)
        return torch.tensor(np.asarray(p, np.int64))


LENGTHS = {
    "projection": LM.ProjectionLength,
    "min": LM.TrackMinimum,
    "max": LM.TrackMaximum,
    "harmonic": LM.TrackHarmonicAverage,
    "arithmetic": LM.TrackArithmeticAverage,
    "geometric": LM.TrackGeometricAverage,
}


def config_operator(hp):
    lm = hp.get("length_model", "projection")
    length = LM.TrackSpecific(int(lm)) if isinstance(lm, int) else LENGTHS[lm]()
    kw = {"length_model": length, "allow_simplified_model": hp.get("closed_form_two", True)}
    if hp.get("weights") is not None:
        kw["weight_model"] = Fixed(list(hp["weights"]))
    return ConFIGOperator(**kw)


# ------------------------------ the methods ------------------------------


def m_config(case, hp):
    m = hp["num_losses"]
    op = PseudoMomentumOperator(
        num_vectors=m,
        beta_1=hp.get("beta_1", 0.9),
        beta_2=hp.get("beta_2", 0.999),
        gradient_operator=config_operator(hp),
    )
    sel = np.asarray(decode(case["extra_args"])["selected"], bool)
    idx = [i for i in range(m) if sel[i]]
    return lambda J, k: op.calculate_gradient(idx, [t(J[i]) for i in idx]).numpy()


def pcgrad(case, hp):
    def step(J, k):
        m = J.shape[0]
        if hp.get("shuffle"):
            keys = jax.random.split(raw_key(case), m)
            perms = [np.asarray(jax.random.permutation(keys[i], m)) for i in range(m)]
        else:
            perms = [np.arange(m)] * m
            fixed = PCGradOperator().calculate_gradient(t(J)).numpy()
        with mock.patch("torch.randperm", Perms(perms)):
            out = A.PCGrad()(t(J)).numpy()
        if not hp.get("shuffle"):
            np.testing.assert_allclose(out, fixed, rtol=1e-10, atol=1e-12)
        return out

    return step


def imtl_g(case, hp):
    def step(J, k):
        out = IMTLGOperator().calculate_gradient(t(J)).numpy()
        np.testing.assert_allclose(out, A.IMTLG()(t(J)).numpy(), rtol=1e-8, atol=1e-10)
        return out

    return step


def _pref(hp):
    return None if hp.get("weights") is None else t(list(hp["weights"]))


def _projector(hp):
    return QuadprogProjector(norm_eps=hp.get("epsilon", 1e-4), reg_eps=hp.get("regularization", 1e-4))


def upgrad(case, hp):
    agg = A.UPGrad(pref_vector=_pref(hp), projector=_projector(hp))
    return lambda J, k: agg(t(J)).numpy()


def dualproj(case, hp):
    agg = A.DualProj(pref_vector=_pref(hp), projector=_projector(hp))
    return lambda J, k: agg(t(J)).numpy()


def mgda(case, hp):
    if hp.get("solver", "frank_wolfe") == "exact":

        def exact(J, k):
            w = cp.Variable(J.shape[0])
            prob = cp.Problem(cp.Minimize(cp.sum_squares(J.T @ w)), [w >= 0, cp.sum(w) == 1])
            prob.solve(cp.CLARABEL, tol_gap_abs=1e-14, tol_gap_rel=1e-14, tol_feas=1e-14)
            return np.asarray(w.value) @ J

        return exact
    agg = A.MGDA(epsilon=hp.get("tolerance", 1e-3), max_iters=hp.get("max_iterations", 100))
    return lambda J, k: agg(t(J)).numpy()


def cagrad(case, hp):
    c = hp.get("c", 0.4)
    if hp.get("variant", "torchjd") == "torchjd":
        agg = A.CAGrad(c=c, norm_eps=hp.get("epsilon", 1e-4))
        return lambda J, k: agg(t(J)).numpy()

    def paper(J, k):  # Cranial-XIX/CAGrad nyuv2/utils.py::cagrad(grads=J^T, alpha=c, rescale=1), no 1e-8 guards
        m = J.shape[0]
        GG = J @ J.T
        g0_norm = np.sqrt(GG.mean())
        cc = c * g0_norm
        b = np.ones(m) / m
        w = cp.Variable(m)
        prob = cp.Problem(cp.Minimize((GG @ b) @ w + cc * cp.norm(J.T @ w, 2)), [w >= 0, w <= 1, cp.sum(w) == 1])
        prob.solve(cp.CLARABEL, tol_gap_abs=1e-14, tol_gap_rel=1e-14, tol_feas=1e-14)
        gw = np.asarray(w.value) @ J
        gw_norm = np.linalg.norm(gw)
        lmbda = cc / gw_norm if gw_norm > 0 else 0.0
        g = J.mean(0) + lmbda * gw
        return g / (1 + c**2)

    return paper


def aligned_mtl(case, hp):
    agg = A.AlignedMTL(pref_vector=_pref(hp), scale_mode=hp.get("scale_mode", "min"))
    return lambda J, k: agg(t(J)).numpy()


def gradvac(case, hp):
    agg = A.GradVac(beta=1.0 - hp.get("decay", 0.5), eps=hp.get("epsilon", 1e-8))

    def step(J, k):
        m = J.shape[0]
        if hp.get("shuffle"):
            keys = jax.random.split(raw_key(case), m)
            perms = [np.asarray(jax.random.permutation(keys[i], m - 1)) for i in range(m)]
        else:
            perms = [np.arange(m - 1)] * m
        with mock.patch("torch.randperm", Perms(perms)):
            return agg(t(J)).numpy()

    return step


def graddrop(case, hp):
    upd = decode(case["updates"])
    keys = jax.random.split(raw_key(case), len(upd))
    us = [
        np.asarray(jax.random.uniform(keys[i], upd[k].shape[1:], jax.numpy.float32)) for i, k in enumerate(sorted(upd))
    ]
    U = np.concatenate([u.reshape(-1) for u in us]).astype(np.float64)
    leak = None if hp.get("leak") is None else t(list(hp["leak"]))
    agg = A.GradDrop(leak=leak)

    def step(J, k):
        with mock.patch("torch.rand", lambda *a, **kw: t(U)):
            return agg(t(J)).numpy()

    return step


def nash_alpha(G: np.ndarray) -> np.ndarray:
    """alpha > 0 with alpha * (G alpha) = 1 (Navon et al., eq. 3), float64, to ~1e-13."""
    f = np.linalg.norm(G)
    Gn = G / f
    x0 = 1.0 / np.sqrt(np.diag(Gn))
    sol = scipy.optimize.root(lambda a: a * (Gn @ a) - 1.0, x0, tol=1e-13, method="hybr")
    a = sol.x
    assert np.all(a > 0) and np.max(np.abs(a * (Gn @ a) - 1)) < 1e-12, sol
    return a / np.sqrt(f)


NASH_TORCHJD = {}


def nash_mtl(case, hp):
    max_norm = hp.get("max_norm", 1.0)
    interval = hp.get("interval", 1)
    state = {"alpha": None}
    ref = A.NashMTL(n_tasks=hp["num_losses"], max_norm=max_norm, update_weights_every=interval)

    def step(J, k):
        if k % interval == 0:
            state["alpha"] = nash_alpha(J @ J.T)
        alpha = state["alpha"]
        out = alpha @ J
        norm = np.linalg.norm(out)
        if max_norm > 0 and norm > max_norm:
            out = out * (max_norm / norm)
        theirs = ref(t(J)).numpy()
        key = (case["fingerprint"], k)
        NASH_TORCHJD[key] = float(np.max(np.abs(theirs - out)) / np.max(np.abs(out)))
        return out

    return step


def config(case, hp):
    op = config_operator(hp)
    return lambda J, k: op.calculate_gradient(t(J)).numpy()


def equal_weight(case, hp):
    agg = A.Mean() if hp.get("reduction", "sum") == "mean" else A.Sum()
    return lambda J, k: agg(t(J)).numpy()


def krum(case, hp):
    agg = A.Krum(n_byzantine=hp.get("num_byzantine", 0), n_selected=hp.get("num_selected", 1))
    return lambda J, k: agg(t(J)).numpy()


def trimmed_mean(case, hp):
    agg = A.TrimmedMean(trim_number=hp.get("num_trimmed", 1))
    return lambda J, k: agg(t(J)).numpy()


def constant_weights(case, hp):
    agg = A.Constant(t(hp["weights"]))
    return lambda J, k: agg(t(J)).numpy()


def fairgrad(case, hp):
    agg = A.FairGrad(alpha=hp.get("alpha", 1.0))  # scipy least_squares from the uniform start
    return lambda J, k: agg(t(J)).numpy()


def excess_mtl(case, hp):
    agg = A.ExcessMTL(robust_step_size=hp.get("robust_step_size", 1.0), n_warmup_steps=hp.get("num_warmup_steps", 0))
    return lambda J, k: agg(t(J)).numpy()  # one object over the steps: its state carries over


LIBMTL = "LibMTL@4336804847eaa5e0b924b743d76beec7ac3fdc97"


def pcd(case, hp):
    frac = hp.get("progress_fraction", 0.02)
    tau = t(list(frac)) if isinstance(frac, (list, tuple)) else float(frac)
    agg = A.PCD(tau=tau, beta=hp.get("decay", 0.999), eps=hp.get("epsilon", 1e-8))
    return lambda J, k: agg(t(J)).numpy()


def batches(case):
    extra = decode(case["extra_args"])
    return flat(extra["updates_a"]), flat(extra["updates_b"])


def modo(case, hp):
    weighting = A.MoDoWeighting(gamma=hp.get("gamma", 0.1), rho=hp.get("rho", 0.1))
    Ja, Jb = batches(case)
    return lambda J, k: weighting(t(Ja @ Jb.T)).numpy() @ J


def sdmgrad(case, hp):
    weighting = A.SDMGradWeighting(
        lr=hp.get("learning_rate", 10.0),
        momentum=hp.get("momentum", 0.5),
        n_iter=hp.get("num_iterations", 20),
        lambda_=hp.get("preference_weight", 0.3),
        pref_vector=_pref(hp),
    )
    Ja, Jb = batches(case)
    return lambda J, k: weighting(t(Ja @ Jb.T)).numpy() @ J


def cr_mogm(case, hp):
    base = hp.get("base", "upgrad")
    kw = hp.get("base_hyperparams") or {}
    if base == "upgrad":
        inner = A.UPGradWeighting()
    elif base == "mgda":
        inner = A.MGDAWeighting(epsilon=kw.get("tolerance", 1e-3), max_iters=kw.get("max_iterations", 100))
    else:
        raise NotImplementedError(base)
    init = None if hp.get("initial_weights") is None else t(list(hp["initial_weights"]))
    agg = A.GramianWeightedAggregator(A.CRMOGMWeighting(inner, alpha=hp.get("decay", 0.9), initial_weights=init))
    return lambda J, k: agg(t(J)).numpy()


def losses_of(case):
    return np.asarray(decode(case["extra_args"])["losses"], np.float64)


def imtl(case, hp):
    """LibMTL IMTL.backward on the fixed gradients: scaled losses e^s L - s, their gradients e^s g_i, IMTL-G."""
    m = hp["num_losses"]
    L = t(losses_of(case))
    s = torch.zeros(m, requires_grad=True)
    opt = torch.optim.Adam([s], lr=hp.get("learning_rate", 1e-2))

    def step(J, k):
        grads = torch.exp(s.detach())[:, None] * t(J)
        if hp.get("gradient_balance", True):
            grads_unit = grads / torch.norm(grads, p=2, dim=-1, keepdim=True)
            D = grads[0:1].repeat(m - 1, 1) - grads[1:]
            U = grads_unit[0:1].repeat(m - 1, 1) - grads_unit[1:]
            alpha = torch.matmul(torch.matmul(grads[0], U.t()), torch.inverse(torch.matmul(D, U.t())))
            alpha = torch.cat((1 - alpha.sum().unsqueeze(0), alpha), dim=0)
        else:
            alpha = torch.ones(m)
        out = (alpha @ grads).numpy()
        opt.zero_grad()
        (torch.exp(s) * L - s).sum().backward()
        opt.step()
        return out

    return step


def moco_mtl(case, hp):
    """LibMTL MoCo.backward (rep_grad=False) on the fixed gradients."""
    m = hp["num_losses"]
    L = t(losses_of(case))
    st = {"y": None, "lambd": torch.ones(m) / m}
    beta, beta_sigma = hp.get("beta", 0.5), hp.get("beta_sigma", 0.5)
    gamma, gamma_sigma, rho = hp.get("gamma", 0.1), hp.get("gamma_sigma", 0.5), hp.get("rho", 0.0)

    def step(J, k):
        grads = t(J).clone()
        if st["y"] is None:
            st["y"] = torch.zeros_like(grads)
        n = k + 1
        for tn in range(m):
            grads[tn] = grads[tn] / (grads[tn].norm() + 1e-8) * L[tn]
        st["y"] = st["y"] - (beta / n**beta_sigma) * (st["y"] - grads)
        y = st["y"]
        st["lambd"] = F.softmax(
            st["lambd"] - (gamma / n**gamma_sigma) * (y @ y.t() + rho * torch.eye(m)) @ st["lambd"], -1
        )
        return (y.t() @ st["lambd"]).numpy()

    return step


def db_mtl(case, hp):
    """LibMTL DB_MTL.backward (rep_grad=False) on the fixed gradients; grad log(L + 1e-8) = g / (L + 1e-8)."""
    m = hp["num_losses"]
    L = t(losses_of(case))
    st = {"buffer": None}
    beta, beta_sigma = hp.get("beta", 0.9), hp.get("beta_sigma", 0.0)

    def step(J, k):
        batch_grads = t(J) / (L + 1e-8)[:, None]
        if st["buffer"] is None:
            st["buffer"] = torch.zeros_like(batch_grads)
        n = k + 1
        st["buffer"] = batch_grads + (beta / n**beta_sigma) * (st["buffer"] - batch_grads)
        u_grad = st["buffer"].norm(dim=-1)
        alpha = u_grad.max() / (u_grad + 1e-8)
        return sum(alpha[i] * st["buffer"][i] for i in range(m)).numpy()

    return step


METHODS = {
    "pcd": pcd,
    "modo": modo,
    "sdmgrad": sdmgrad,
    "cr_mogm": cr_mogm,
    "imtl": imtl,
    "moco_mtl": moco_mtl,
    "db_mtl": db_mtl,
    "config": config,
    "m_config": m_config,
    "pcgrad": pcgrad,
    "imtl_g": imtl_g,
    "upgrad": upgrad,
    "dualproj": dualproj,
    "mgda": mgda,
    "cagrad": cagrad,
    "aligned_mtl": aligned_mtl,
    "gradvac": gradvac,
    "graddrop": graddrop,
    "nash_mtl": nash_mtl,
    "equal_weight": equal_weight,
    "krum": krum,
    "trimmed_mean": trimmed_mean,
    "constant_weights": constant_weights,
    "fairgrad": fairgrad,
    "excess_mtl": excess_mtl,
}

SOURCES = {
    "pcd": f"{TORCHJD} torchjd/aggregation/_pcd.py::PCD (tau = progress_fraction, beta = decay; stateful)",
    "modo": f"{TORCHJD} torchjd/aggregation/_modo.py::MoDoWeighting on J_a J_b^T "
    f"(== {LIBMTL} LibMTL/weighting/MoDo.py)",
    "sdmgrad": f"{TORCHJD} torchjd/aggregation/_sdmgrad.py::SDMGradWeighting on J_a J_b^T",
    "cr_mogm": f"{TORCHJD} torchjd/aggregation/_cr_mogm.py::CRMOGMWeighting around UPGradWeighting / MGDAWeighting",
    "imtl": f"{LIBMTL} LibMTL/weighting/IMTL.py ported to float64 torch (loss scales by torch.optim.Adam); "
    "gradient_balance=False: IMTL-L alone",
    "moco_mtl": f"{LIBMTL} LibMTL/weighting/MoCo.py ported to float64 torch",
    "db_mtl": f"{LIBMTL} LibMTL/weighting/DB_MTL.py ported to float64 torch",
    "config": f"{CONFLICTFREE} conflictfree/grad_operator.py::ConFIGOperator",
    "m_config": f"{CONFLICTFREE} conflictfree/momentum_operator.py::PseudoMomentumOperator",
    "pcgrad": f"{TORCHJD} torchjd/aggregation/_pcgrad.py::PCGrad (order given; fixed order == {CONFLICTFREE} "
    "PCGradOperator); shuffled orders drawn by jax.random.permutation from the sample's key",
    "imtl_g": f"{CONFLICTFREE} conflictfree/grad_operator.py::IMTLGOperator (== {TORCHJD} IMTLG)",
    "upgrad": f"{TORCHJD} torchjd/aggregation/_upgrad.py::UPGrad (quadprog)",
    "dualproj": f"{TORCHJD} torchjd/aggregation/_dualproj.py::DualProj (quadprog)",
    "mgda": f"{TORCHJD} torchjd/aggregation/_mgda.py::MGDA; solver='exact': cvxpy/CLARABEL min-norm QP",
    "cagrad": f"{TORCHJD} torchjd/aggregation/_cagrad.py::CAGrad (cvxpy/CLARABEL); variant='paper': "
    "Cranial-XIX/CAGrad@dc3d48152b6196945cfd56144879b9d42353b095 nyuv2/utils.py::cagrad (rescale=1), QP by cvxpy",
    "aligned_mtl": f"{TORCHJD} torchjd/aggregation/_aligned_mtl.py::AlignedMTL",
    "gradvac": f"{TORCHJD} torchjd/aggregation/_gradvac.py::GradVac (beta = 1 - decay; order given, shuffled "
    "orders drawn by jax.random.permutation from the sample's key)",
    "graddrop": f"{TORCHJD} torchjd/aggregation/_graddrop.py::GradDrop (uniforms drawn by jax.random.uniform "
    "from the sample's key)",
    "nash_mtl": "closed form: the Nash bargaining fixed point alpha*(G alpha)=1 of arXiv:2202.01017 solved in "
    f"float64 (scipy.optimize.root) + max_norm cap; {TORCHJD} NashMTL (cvxpy/ECOS) agrees to its 1e-3 stop",
    "equal_weight": f"{TORCHJD} torchjd/aggregation/_sum.py::Sum, _mean.py::Mean",
    "krum": f"{TORCHJD} torchjd/aggregation/_krum.py::Krum (n_byzantine, n_selected)",
    "trimmed_mean": f"{TORCHJD} torchjd/aggregation/_trimmed_mean.py::TrimmedMean (trim_number)",
    "constant_weights": f"{TORCHJD} torchjd/aggregation/_constant.py::Constant",
    "fairgrad": f"{TORCHJD} torchjd/aggregation/_fairgrad.py::FairGrad (scipy least_squares, default tolerances)",
    "excess_mtl": f"{TORCHJD} torchjd/aggregation/_excess_mtl.py::ExcessMTL (stateful over the 2 steps)",
}


def main():
    data = load_inputs(FAMILY)
    records = {}
    for name, entry in sorted(data.items()):
        cases = []
        for case in entry["cases"]:
            hp = decode(case["hyperparams"])
            outs = steps(case, METHODS[name](case, hp))
            cases.append(
                {
                    "case": case["case"],
                    "variant": case["variant"],
                    "fingerprint": case["fingerprint"],
                    "steps_updates": [encode(o) for o in outs],
                }
            )
        records[name] = {"source": SOURCES[name], "cases": cases}
        print(f"{name}: {len(cases)} cases")
    print("nash_mtl vs torchjd NashMTL (relative):", max(NASH_TORCHJD.values()))
    path = write_expected(FAMILY, records)
    print("wrote", path)


if __name__ == "__main__":
    main()
