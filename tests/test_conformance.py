"""The conformance suite over the whole registry: every loss and transform added
later is covered here without new test code."""

import pytest

import lossjax
from lossjax import testing

# One xdist group per entry: its properties share compiled functions, so they run on one worker.
CASES = [
    pytest.param(name, prop, id=f"{name}-{prop}", marks=pytest.mark.xdist_group(name))
    for name in lossjax.available()
    for prop in testing.properties_for(name)
]


@pytest.mark.parametrize(("name", "prop"), CASES)
def test_conformance(name, prop):
    testing.check(name, prop)
