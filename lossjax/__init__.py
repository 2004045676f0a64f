"""lossjax: loss functions and optax gradient transformations for JAX.

>>> import lossjax
>>> loss = lossjax.get("softmax_cross_entropy(label_smoothing=0.1)")
>>> total_and_terms = lossjax.compose("softmax_cross_entropy + 1e-4 * z_loss")
>>> "softmax_cross_entropy" in lossjax.available()
True
"""

from importlib import metadata as _metadata

from lossjax import losses, metrics, miners, multiloss, transforms
from lossjax._checks import checked, debug_checks, masked_mean, masked_sum
from lossjax._parallel import data_parallel_value_and_grad
from lossjax.registry import (
    ComposedLoss,
    ConfiguredLoss,
    available,
    compose,
    describe,
    from_config,
    get,
    optimizer,
    register,
)

try:  # one source of truth: the installed package's metadata (pyproject.toml's version)
    __version__ = _metadata.version("lossjax")
except _metadata.PackageNotFoundError:  # a bare checkout on sys.path, not installed
    __version__ = "0+unknown"

__all__ = [
    "ComposedLoss",
    "ConfiguredLoss",
    "available",
    "checked",
    "compose",
    "data_parallel_value_and_grad",
    "debug_checks",
    "describe",
    "from_config",
    "get",
    "losses",
    "masked_mean",
    "masked_sum",
    "metrics",
    "miners",
    "multiloss",
    "optimizer",
    "register",
    "transforms",
]
