"""Golden index sets for ``lossjax.miners.triplet_margin_miner``, ``pair_margin_miner`` and ``angular_miner``.

Run once (not at test time), in the reference environment: ``python tests/reference/make_miners_pml.py``.
Writes ``tests/reference/miners_pml.json``: pytorch-metric-learning 2.9's ``TripletMarginMiner`` (each
``type_of_triplets``, margin 0.2 and 0.6), ``PairMarginMiner`` (defaults and 0.5 / 1.2) and ``AngularMiner``
(20 and 40 degrees) index tuples on one clustered batch (float64, default distances), in PML's order.

Also (``distance_weighted``, ``uniform_histogram``, ``hdc``, ``batch_easy_hard``) for the miners of
``lossjax.miners`` with the same names: ``DistanceWeightedMiner``'s sampling weights (captured from the call
it makes to ``get_random_triplet_indices``) and the anchors of its triplets (the part of its output that does
not depend on torch's random draws); ``UniformHistogramMiner``'s nonempty bins and their member pairs, in
order (``torch.multinomial`` replaced by "every member once" while recording, so the bins come from PML's own
loop); ``HDCMiner``'s index tuples (several ``filter_percentage``); ``BatchEasyHardMiner``'s index tuples for
every allowed pair of strategies and two allowed ranges.
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
    out.update(_newer_miners(x, y))
    (HERE / "miners_pml.json").write_text(json.dumps(out) + "\n")
    print({t["type_of_triplets"] + str(t["margin"]): len(t["indices"][0]) for t in out["triplet"]})


def _newer_miners(x, y) -> dict:
    from pytorch_metric_learning.miners import distance_weighted_miner as dwm_module
    from pytorch_metric_learning.miners import uniform_histogram_miner as uhm_module

    out = {"distance_weighted": [], "uniform_histogram": [], "hdc": [], "batch_easy_hard": []}
    for cutoff, nzc in ((0.5, 1.4), (0.5, 0.9)):
        seen = {}
        original = dwm_module.lmu.get_random_triplet_indices

        def capture(labels, ref_labels=None, weights=None, _orig=original, _seen=seen):
            _seen["weights"] = weights.clone()
            return _orig(labels, ref_labels=ref_labels, weights=weights)

        dwm_module.lmu.get_random_triplet_indices = capture
        try:
            torch.manual_seed(0)
            a, p, n = miners.DistanceWeightedMiner(cutoff=cutoff, nonzero_loss_cutoff=nzc)(x, y)
        finally:
            dwm_module.lmu.get_random_triplet_indices = original
        w = torch.nan_to_num(seen["weights"], nan=0.0)  # PML's 0/0 rows (no weight) are NaN: it skips them
        out["distance_weighted"].append(
            {"cutoff": cutoff, "nonzero_loss_cutoff": nzc, "weights": w.tolist(), "anchors": a.tolist(),
             "positives": p.tolist(), "negatives": n.tolist()}
        )  # fmt: skip

    for num_bins in (3, 8):
        bins = []
        real = torch.multinomial

        def every_member(w, k, replacement=False, _bins=bins):
            _bins.append(len(w))
            return torch.arange(len(w))

        uhm_module.torch.multinomial = every_member
        try:
            a1, p, a2, n = miners.UniformHistogramMiner(num_bins=num_bins, pos_per_bin=1, neg_per_bin=1)(x, y)
        finally:
            uhm_module.torch.multinomial = real
        # The first calls are the positive bins (their members sum to the positive pairs), then the negative ones.
        sizes, total, split = bins, len(a1), 0
        acc = 0
        for i, s_ in enumerate(sizes):
            acc += s_
            if acc == total:
                split = i + 1
                break
        pairs = {
            "pos": list(zip(a1.tolist(), p.tolist(), strict=True)),
            "neg": list(zip(a2.tolist(), n.tolist(), strict=True)),
        }
        groups = {}
        for side, sz in (("pos", sizes[:split]), ("neg", sizes[split:])):
            start, groups[side] = 0, []
            for s_ in sz:
                groups[side].append(pairs[side][start : start + s_])
                start += s_
        torch.manual_seed(0)
        counts = [len(t) for t in miners.UniformHistogramMiner(num_bins=num_bins, pos_per_bin=3, neg_per_bin=2)(x, y)]
        out["uniform_histogram"].append({"num_bins": num_bins, "pos_bins": groups["pos"], "neg_bins": groups["neg"],
                                         "lengths_3_2": counts})  # fmt: skip

    for f in (0.5, 0.1, 0.3, 1.0):
        idx = miners.HDCMiner(filter_percentage=f)(x, y)
        out["hdc"].append({"filter_percentage": f, "indices": [t.tolist() for t in idx]})

    strategies = ("easy", "semihard", "hard", "all")
    for ps in strategies:
        for ns in strategies:
            if (ps == ns == "semihard") or ("semihard" in (ps, ns) and "all" in (ps, ns)):
                continue
            idx = miners.BatchEasyHardMiner(pos_strategy=ps, neg_strategy=ns)(x, y)
            out["batch_easy_hard"].append(
                {"pos_strategy": ps, "neg_strategy": ns, "indices": [t.tolist() for t in idx]}
            )
    for ps, ns, pr, nr in (("hard", "hard", (0.3, 0.9), (0.6, 1.2)), ("easy", "semihard", (0.5, 2.0), (0.0, 1.1))):
        idx = miners.BatchEasyHardMiner(pos_strategy=ps, neg_strategy=ns, allowed_pos_range=pr, allowed_neg_range=nr)(
            x, y
        )
        case = {"pos_strategy": ps, "neg_strategy": ns, "allowed_pos_range": list(pr), "allowed_neg_range": list(nr)}
        out["batch_easy_hard"].append({**case, "indices": [t.tolist() for t in idx]})
    return out


if __name__ == "__main__":
    main()
