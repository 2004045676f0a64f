"""lossjax: loss functions and optax gradient transformations for JAX.

>>> import lossjax
>>> loss = lossjax.get("softmax_cross_entropy(label_smoothing=0.1)")
>>> "softmax_cross_entropy" in lossjax.available()
True
"""

from lossjax import losses, miners, multiloss, transforms
from lossjax._checks import checked, debug_checks, masked_mean, masked_sum
from lossjax.registry import (
    ComposedLoss,
    ConfiguredLoss,
    available,
    describe,
    from_config,
    get,
    optimizer,
    register,
)

__version__ = "0.1.0"

__all__ = [
    "ComposedLoss",
    "ConfiguredLoss",
    "available",
    "checked",
    "debug_checks",
    "describe",
    "from_config",
    "get",
    "losses",
    "masked_mean",
    "masked_sum",
    "miners",
    "multiloss",
    "optimizer",
    "register",
    "transforms",
]
