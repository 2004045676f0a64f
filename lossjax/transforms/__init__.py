"""Every lossjax gradient transformation and its State, at ``lossjax.transforms.NAME``."""

from lossjax._aggregation import *
from lossjax.transforms._sam import *
from lossjax.transforms._multitask import *
from lossjax.transforms._weighting import *
from lossjax.transforms._optimizers import *
from lossjax import _aggregation
from lossjax.transforms import _multitask, _optimizers, _sam, _weighting

__all__ = sorted(
    set(_aggregation.__all__)
    | set(_sam.__all__)
    | set(_multitask.__all__)
    | set(_weighting.__all__)
    | set(_optimizers.__all__)
)
