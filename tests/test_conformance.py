"""The conformance suite over the whole registry: every loss and transform added
later is covered here without new test code."""

import pytest

import lossjax
from lossjax import testing

CASES = [(name, prop) for name in lossjax.available() for prop in testing.properties_for(name)]


@pytest.mark.parametrize(("name", "prop"), CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_conformance(name, prop):
    testing.check(name, prop)
