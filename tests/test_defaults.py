"""Hyperparameter defaults are part of the contract: a changed default changes every user's numbers.

`tests/reference/defaults.json` pins every registered entry's defaults (as in its signature). A change
must be deliberate: regenerate with `LOSSJAX_UPDATE_DEFAULTS=1 python -m pytest tests/test_defaults.py`
and say so in CHANGELOG.md. (The conformance `value` property compares the values at the samples'
hyperparameters, which often name a default explicitly; this test is what notices the default itself.)
"""

import inspect
import json
import os
import pathlib

import lossjax
from lossjax import registry

SNAPSHOT = pathlib.Path(__file__).parent / "reference" / "defaults.json"


def _defaults() -> dict[str, dict[str, str]]:
    out = {}
    for name in lossjax.available():
        e = registry.get_entry(name)
        out[name] = {k: ("<required>" if v is inspect.Parameter.empty else repr(v)) for k, v in e.hyperparams.items()}
    return out


def test_defaults_match_the_pinned_snapshot():
    now = _defaults()
    if os.environ.get("LOSSJAX_UPDATE_DEFAULTS"):
        SNAPSHOT.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    pinned = json.loads(SNAPSHOT.read_text())
    changed = {
        n: {k: (pinned.get(n, {}).get(k), v) for k, v in hp.items() if pinned.get(n, {}).get(k) != v}
        for n, hp in now.items()
        if n in pinned and pinned[n] != hp
    }
    assert not changed, f"defaults changed (pinned, now); deliberate? regenerate and record in CHANGELOG.md: {changed}"
    new = sorted(set(now) - set(pinned))
    assert not new, f"entries without pinned defaults: {new}; regenerate the snapshot"
