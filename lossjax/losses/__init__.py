"""Every lossjax loss, at ``lossjax.losses.NAME`` (the one public path).

Each registry family lives in one private module named after it
(``_classification``, ``_metric``, ...); this package re-exports their public
names. ``lossjax.available()`` lists them with their registry names.
"""

from lossjax.losses._classification import *
from lossjax.losses._imbalance import *
from lossjax.losses._noisy import *
from lossjax.losses._proxies import *
from lossjax.losses._metric import *
from lossjax.losses._margins import *
from lossjax.losses._selfsup import *
from lossjax.losses._distillation import *
from lossjax.losses._divergence import *
from lossjax.losses._language import *
from lossjax.losses._preference import *
from lossjax.losses._policy_gradient import *
from lossjax.losses._segmentation import *
from lossjax.losses._ranking import *
from lossjax.losses._regression import *
from lossjax.losses._robustness import *
from lossjax.losses import (
    _classification,
    _distillation,
    _divergence,
    _imbalance,
    _language,
    _margins,
    _metric,
    _noisy,
    _policy_gradient,
    _preference,
    _proxies,
    _ranking,
    _regression,
    _robustness,
    _segmentation,
    _selfsup,
)

#: The family modules, in import order (each declares ``FAMILY``).
FAMILY_MODULES = (
    _classification,
    _imbalance,
    _noisy,
    _proxies,
    _metric,
    _margins,
    _selfsup,
    _distillation,
    _divergence,
    _language,
    _preference,
    _policy_gradient,
    _ranking,
    _regression,
    _segmentation,
    _robustness,
)

__all__ = sorted({name for module in FAMILY_MODULES for name in module.__all__})
