"""Every lossjax loss, at ``lossjax.losses.NAME`` (the one public path).

Each family lives in a private module; this package re-exports their public
names. ``lossjax.available()`` lists them with their registry names.
"""

from lossjax.losses._classification import *
from lossjax.losses._imbalance import *
from lossjax.losses._noisy import *
from lossjax.losses._metric import *
from lossjax.losses._margins import *
from lossjax.losses._language import *
from lossjax.losses._large_vocab import *
from lossjax.losses._selfsup import *
from lossjax.losses._preference import *
from lossjax.losses import (
    _classification,
    _imbalance,
    _noisy,
    _metric,
    _margins,
    _language,
    _large_vocab,
    _preference,
    _selfsup,
)

__all__ = sorted(
    set(_classification.__all__)
    | set(_imbalance.__all__)
    | set(_noisy.__all__)
    | set(_metric.__all__)
    | set(_margins.__all__)
    | set(_language.__all__)
    | set(_large_vocab.__all__)
    | set(_selfsup.__all__)
    | set(_preference.__all__)
)
