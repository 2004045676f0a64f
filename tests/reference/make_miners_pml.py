"""Golden index sets for ``lossjax.miners.triplet_margin_miner``, ``pair_margin_miner`` and ``angular_miner``.

Run once (not at test time), in the reference environment: ``python tests/reference/make_miners_pml.py``.
Writes ``tests/reference/miners_pml.json``: pytorch-metric-learning 2.9's ``TripletMarginMiner`` (each
``type_of_triplets``, margin 0.2 and 0.6), ``PairMarginMiner`` (defaults and 0.5 / 1.2) and ``AngularMiner``
(20 and 40 degrees) index tuples on one clustered batch (float64, default distances), in PML's order.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytorch_metric_learning
import torch
from pytorch_metric_learning import miners

torch.set_default_dtype(torch.float64)
HERE = pathlib.Path(__file__).resolve().parent

rng = np.random.default_rng(1515)
LABELS = np.array([0, 0, 1, 1, 2, 2, 0, 1, 2, 3])
X = rng.normal(size=(4, 5))[LABELS] + 0.8 * rng.normal(size=(10, 5))


def main() -> None:
    x, y = torch.tensor(X), torch.tensor(LABELS)
    out = {
        "generator": f"pytorch-metric-learning {pytorch_metric_learning.__version__}, torch {torch.__version__} f64",
        "x": X.tolist(),
        "labels": LABELS.tolist(),
        "triplet": [],
        "pair": [],
    }
    for kind in ("all", "hard", "semihard", "easy"):
        for margin in (0.2, 0.6):
            idx = miners.TripletMarginMiner(margin=margin, type_of_triplets=kind)(x, y)
            out["triplet"].append({"type_of_triplets": kind, "margin": margin, "indices": [t.tolist() for t in idx]})
    out["angular"] = []
    for angle in (20, 40):
        idx = miners.AngularMiner(angle=angle)(x, y)
        out["angular"].append({"angle": angle, "indices": [t.tolist() for t in idx]})
    for pm, nm in ((0.2, 0.8), (0.5, 1.2)):
        idx = miners.PairMarginMiner(pos_margin=pm, neg_margin=nm)(x, y)
        out["pair"].append({"pos_margin": pm, "neg_margin": nm, "indices": [t.tolist() for t in idx]})
    (HERE / "miners_pml.json").write_text(json.dumps(out) + "\n")
    print({t["type_of_triplets"] + str(t["margin"]): len(t["indices"][0]) for t in out["triplet"]})


if __name__ == "__main__":
    main()
