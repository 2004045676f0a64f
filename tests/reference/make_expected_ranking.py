"""Independent expected outputs of the ranking family's conformance cases -> lossjax/expected/ranking.json.

Reads tests/reference/inputs/ranking.json (``python tests/reference/dump_inputs.py --family ranking``)
and computes every case in float64 with the references of make_ranking.py (never lossjax):

- rax 0.4.0 per list (``jax.vmap`` of the rax call) for the rax losses and lambda weights;
  ListMLE's gradient by central differences of rax's value (rax's ``logcumsumexp`` gradient
  is wrong at tied scores, e.g. the all-zero extreme case);
- rax's pairwise logistic loss on binarized labels for the Mann-Whitney AUC loss;
- torch 2.13.0 re-implementations (allRank NeuralNDCG, IR-Benchmark PSL, RecBox CCL,
  unbiased-implicit-rec Rel-MF, the LoL closed form), with torch autograd.

Run in the reference environment: ``python tests/reference/make_expected_ranking.py``.
"""

from __future__ import annotations

import expected_io as E
import make_ranking as MR
import numpy as np
import torch

jnp = MR.jnp
torch.set_default_dtype(torch.float64)

PORTS = {
    "pairwise_softmax_loss": (
        MR.psl_reference,
        "torch port of Tiny-Snow/IR-Benchmark@1dd8de9b src/itemrec/optimizer/optim_PSL.py (PSL1)",
    ),
    "cosine_contrastive_loss": (
        MR.ccl_reference,
        "torch port of reczoo/RecBox@99d488e5 matchbox/pytorch/losses/cosine_contrastive_loss.py",
    ),
    "unbiased_implicit_feedback_loss": (
        MR.relmf_reference,
        "torch port of usaito/unbiased-implicit-rec@414b98bd src/utils/models.py (weighted_ce)",
    ),
    "loss_over_loss_regularizer": (MR.lol_reference, "closed form sum_{i<j} relu(L_j - L_i) in torch"),
}


def _numeric(f, scores):
    """Central differences of ``sum(cotangent * f)`` with a step relative to each score (float64)."""
    scores = np.asarray(scores, np.float64)
    out = np.asarray(f(jnp.asarray(scores)))
    ct = E.cotangent(out.shape)
    grad = np.zeros_like(scores)
    for k in np.ndindex(scores.shape):
        h = 1e-6 * max(1.0, abs(scores[k]))
        hi, lo = scores.copy(), scores.copy()
        hi[k] += h
        lo[k] -= h
        grad[k] = np.sum(ct * (np.asarray(f(jnp.asarray(hi))) - np.asarray(f(jnp.asarray(lo))))) / (2 * h)
    return out, grad


def rax_case(name, case):
    args, kwargs = E.case_inputs(case)
    labels = jnp.asarray(args[1])
    fn, kw = MR.rax_loss(name, kwargs)

    def f(s):
        return MR.rax_per_list(fn, s, labels, **kw)

    if name == "listmle_loss":
        return _numeric(f, args[0])
    return MR.value_and_grad(f, args[0])


def neural_case(case):
    args, kwargs = E.case_inputs(case)
    return MR.neural_ndcg_reference(args[0], args[1], None, **kwargs)


def port_case(name, case, diff_argnums):
    args, kwargs = E.case_inputs(case)
    ref = PORTS[name][0]
    targs = [torch.tensor(a, requires_grad=i in diff_argnums) for i, a in enumerate(args)]
    out = ref(*targs, **kwargs)
    grads = torch.autograd.grad(
        (torch.tensor(E.cotangent(tuple(out.shape))) * out).sum(), [targs[i] for i in diff_argnums]
    )
    return out.detach().numpy(), [g.numpy() for g in grads]


def main():
    inputs = E.load_inputs("ranking")
    records = {}
    for name, entry in sorted(inputs.items()):
        cases = []
        diff = entry["diff_argnums"]
        for case in entry["cases"]:
            if name in PORTS:
                value, grads = port_case(name, case, diff)
            elif name == "neural_ndcg_loss":
                value, grad = neural_case(case)
                grads = [grad]
            else:
                value, grad = rax_case(name, case)
                grads = [grad]
            cases.append(E.expected_case(case, value, grads))
        if name in PORTS:
            source = PORTS[name][1]
        elif name == "neural_ndcg_loss":
            source = "torch port of allegro/allRank@c8847566 allrank/models/losses/neuralNDCG.py + loss_utils.py"
        elif name == "mann_whitney_auc_loss":
            source = f"{MR.RAX} rax.pairwise_logistic_loss on labels > 0, per list (jax.vmap), float64"
        elif name == "listmle_loss":
            source = f"{MR.RAX} rax.listmle_loss per list, float64; gradients by central differences of its value"
        else:
            source = f"{MR.RAX} per list (jax.vmap of the rax call), float64"
        records[name] = {"source": source, "cases": cases}
    path = E.write_expected("ranking", records)
    print(path, len(records), "entries")


if __name__ == "__main__":
    main()
