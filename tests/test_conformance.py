"""The conformance suite over the whole registry: every loss and transform added
later is covered here without new test code.

The README's test command runs the main scope: the numerical properties of every
entry on its sample, and `value` (values and gradients against the independent
expected ones) on the sample and every hyperparameter variant. `.ci/run` runs the
rest as a second step (`LOSSJAX_CONFORMANCE_SCOPE=rest`): the numerical
properties on the variants, and debug, export, parallel and fuzz. Together they
are `lossjax check`'s full run; the split keeps the README command within its
time budget.
"""

import os

import pytest

import lossjax
from lossjax import testing

SCOPE = os.environ.get("LOSSJAX_CONFORMANCE_SCOPE", "main")
assert SCOPE in testing.SCOPES, f"LOSSJAX_CONFORMANCE_SCOPE must be one of {testing.SCOPES}, got {SCOPE!r}"

# One xdist group per entry: its properties share compiled functions, so they run on one worker.
CASES = [
    pytest.param(name, prop, id=f"{name}-{prop}", marks=pytest.mark.xdist_group(name))
    for name in lossjax.available()
    for prop in testing.properties_for(name)
    if testing.in_scope(name, prop, SCOPE)
]


@pytest.mark.parametrize(("name", "prop"), CASES)
def test_conformance(name, prop):
    testing.check(name, prop, scope=SCOPE)
