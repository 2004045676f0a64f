"""The conformance suite over the whole registry: every loss and transform added
later is covered here without new test code.

The README's test command runs the sample scope: every property of every entry
on its sample, and the `value` property (values and gradients against the
independent expected ones) on every hyperparameter variant too. The remaining
properties on the variants run as a second CI step of `.ci/run`
(`LOSSJAX_CONFORMANCE_SCOPE=variants`), so that together they are
`lossjax check`'s full run and the README command stays within its time budget.
"""

import os

import pytest

import lossjax
from lossjax import testing

SCOPE = os.environ.get("LOSSJAX_CONFORMANCE_SCOPE", "sample")
assert SCOPE in testing.SCOPES, f"LOSSJAX_CONFORMANCE_SCOPE must be one of {testing.SCOPES}, got {SCOPE!r}"

# One xdist group per entry: its properties share compiled functions, so they run on one worker.
CASES = [
    pytest.param(name, prop, id=f"{name}-{prop}", marks=pytest.mark.xdist_group(name))
    for name in lossjax.available()
    for prop in testing.properties_for(name)
    if SCOPE != "variants" or testing.has_variant_work(name, prop)
]


@pytest.mark.parametrize(("name", "prop"), CASES)
def test_conformance(name, prop):
    testing.check(name, prop, scope=SCOPE)
