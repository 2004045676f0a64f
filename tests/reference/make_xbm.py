"""Golden values for the cross-batch memory (``lossjax.losses.CrossBatchMemory`` with the pair losses).

Run once (not at test time), in the reference environment: ``python tests/reference/make_xbm.py``.
Writes ``tests/reference/xbm.json``: three batches in a row through pytorch-metric-learning 2.9's
``CrossBatchMemory(loss, embedding_size=3, memory_size=7)`` (float64), each step's loss and its gradient with
respect to that step's embeddings, for ContrastiveLoss, TripletMarginLoss, MultiSimilarityLoss, CircleLoss, MarginLoss,
TupletMarginLoss, GeneralizedLiftedStructureLoss, IntraPairVarianceLoss and SignalToNoiseRatioContrastiveLoss
with their defaults; the memory wraps around at the third batch. The first step is the warm-up (an empty
memory: the batch is paired with its own stop-gradient copy).

NCALoss is left out: under CrossBatchMemory PML keeps an example's own copy in its softmax (as a positive)
and weights each anchor by its pair count over the largest one (``convert_to_weights``); lossjax's
``nca_loss(memory=...)`` excludes the own copy and weights anchors equally, as without a memory.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytorch_metric_learning
import torch
from pytorch_metric_learning import losses

torch.set_default_dtype(torch.float64)
HERE = pathlib.Path(__file__).resolve().parent

rng = np.random.default_rng(15)
BATCHES = [
    (rng.normal(size=(4, 3)), np.array([0, 1, 0, 2])),
    (rng.normal(size=(3, 3)), np.array([1, 1, 2])),
    (rng.normal(size=(4, 3)), np.array([2, 0, 0, 1])),
]
LOSSES = {
    "pairwise_contrastive_loss": losses.ContrastiveLoss,
    "batch_triplet_loss": losses.TripletMarginLoss,
    "multi_similarity_loss": losses.MultiSimilarityLoss,
    "circle_loss": losses.CircleLoss,
    "margin_loss": losses.MarginLoss,
    "tuplet_margin_loss": losses.TupletMarginLoss,
    "generalized_lifted_structure_loss": losses.GeneralizedLiftedStructureLoss,
    "intra_pair_variance_loss": losses.IntraPairVarianceLoss,
    "snr_contrastive_loss": losses.SignalToNoiseRatioContrastiveLoss,
}


def main() -> None:
    out = {
        "generator": f"pytorch-metric-learning {pytorch_metric_learning.__version__} CrossBatchMemory, "
        f"torch {torch.__version__} float64",
        "memory_size": 7,
        "batches": [{"x": x.tolist(), "y": y.tolist()} for x, y in BATCHES],
        "cases": {},
    }
    for name, cls in LOSSES.items():
        xbm = losses.CrossBatchMemory(cls(), embedding_size=3, memory_size=7)
        steps = []
        for x, y in BATCHES:
            xt = torch.tensor(x, requires_grad=True)
            loss = xbm(xt, torch.tensor(y))
            (g,) = torch.autograd.grad(loss, xt)
            steps.append({"value": float(loss.detach()), "grad": g.numpy().tolist()})
        out["cases"][name] = steps
    (HERE / "xbm.json").write_text(json.dumps(out, indent=1) + "\n")
    print({k: [s["value"] for s in v] for k, v in out["cases"].items()})


if __name__ == "__main__":
    main()
