"""Expected outputs of the regression family's conformance value cases (``lossjax/expected/regression.json``).

Independent float64 implementations, never lossjax (run in the reference environment)::

    python tests/reference/dump_inputs.py --family regression       # the inputs (lossjax env)
    python tests/reference/make_expected_regression.py               # torch 2.13.0, optax, sklearn, ...

The reference functions live in ``make_regression.py`` (``REFERENCES``: the
upstream call or the pinned port, named in each entry's ``source``). Values and
gradients come from torch float64 autograd of those functions (properscoring's
analytic gradient for ``crps_gaussian_loss``); every value is also checked
against the upstream library where one exists (``CROSS_CHECKS``: optax run in
float64, scikit-learn, scikit-survival, properscoring, scipy), to 1e-9.
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expected_io as E
import make_regression as R

FAMILY = "regression"


def main() -> None:
    inputs = E.load_inputs(FAMILY)
    records, worst = {}, {}
    for name, entry in inputs.items():
        diff = entry["diff_argnums"]
        _, source = R.REFERENCES[name]
        if name in R.CROSS_CHECKS:
            source += f"; values checked against {R.CROSS_CHECKS[name][0]}"
        cases = []
        for case in entry["cases"]:
            args, kw = E.case_inputs(case)
            value, grads = R.value_and_grads(name, list(args), kw, diff)
            err = R.cross_check(name, list(args), kw, value)
            worst[name] = max(worst.get(name, 0.0), err)
            assert err < 1e-9, (name, case["case"], case.get("variant"), err)
            assert np.all(np.isfinite(value)), (name, case["case"])
            cases.append(E.expected_case(case, value, grads))
        records[name] = {"source": source, "cases": cases}
    missing = set(inputs) - set(records)
    assert not missing, missing
    path = E.write_expected(FAMILY, records)
    checked = {k: f"{v:.1e}" for k, v in worst.items() if k in R.CROSS_CHECKS or k == "crps_gaussian_loss"}
    print(f"wrote {path}: {len(records)} entries; upstream cross-checks (max rel. diff): {checked}")


if __name__ == "__main__":
    main()
