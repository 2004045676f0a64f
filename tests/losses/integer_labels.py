"""Logit rows shared by the tests that compare a loss's integer-label path with its one-hot distribution path.

Ties, confident rows (``z_y = 30``, ``|z| = 1e4``) and ``-inf`` logits of non-target classes: where the row
reductions of ``lossjax._targets.label_log_softmax`` could differ from the plain ``log_softmax`` formulas.
"""

import numpy as np

#: case -> (logits ``[3, 5]``, integer labels ``[3]``)
ONE_HOT_CASES = {
    "ties": (np.zeros((3, 5)), [0, 2, 4]),
    "confident": (
        np.array([[30.0, 0.0, 0.0, 0.0, 0.0], [0.0, -20.0, 0.0, 0.0, 40.0], [1e4, -1e4, 0.0, 3.0, 2.0]]),
        [0, 4, 1],
    ),
    "-inf non-target": (
        np.array([[2.0, -np.inf, 0.5, 0.0, 1.0], [0.0, 0.0, -np.inf, -np.inf, 3.0], [1.0, 2.0, 3.0, 4.0, 5.0]]),
        [0, 4, 2],
    ),
}
