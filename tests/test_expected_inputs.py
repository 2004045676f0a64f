"""The inputs behind the shipped expected values do not depend on the backend or on XLA's flags.

The conformance `value` property refuses expected values made from other inputs (a fingerprint per
case). A sample computed with JAX ops (rather than numpy) holds XLA's last bits, which differ between
the test session's flags (backend optimizations off), a user's default flags and a GPU: `lossjax check`
would then fail for the user. Rebuilding every sample in a fresh process with default flags must give
the fingerprints the expected files were made from.
"""

import os
import subprocess
import sys

CODE = r"""
import lossjax
from lossjax import registry, testing as T

exp = T._expected_files()
bad = []


def recorded(e, rec, case, variant):
    try:
        return T._find_case(e, rec, case, variant).get("fingerprint")
    except AssertionError:  # a case without expected values: the value property reports it
        return None


for n in lossjax.available():
    if n not in exp:
        continue
    e, rec = registry.get_entry(n), exp[n]
    s = T._sample(e)
    if e.kind == "transform":
        for variant, vs in T._variants(s):
            arrays = {k: x for k, x in vs.extra_args.items() if not callable(x)}
            fp = T.fingerprint(vs.params, vs.updates, arrays, dict(vs.hyperparams))
            if recorded(e, rec, "sample", variant) not in (None, fp):
                bad.append(f"{n} {variant}")
    else:
        for case, variant, vs, args in T._value_cases(s):
            if recorded(e, rec, case, variant) not in (None, T._input_fingerprint(vs, args)):
                bad.append(f"{n} {case} {variant}")
print("MISMATCH", bad)
"""


def test_sample_fingerprints_hold_under_default_xla_flags():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    res = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("MISMATCH")][-1]
    assert line == "MISMATCH []", (
        f"samples built with JAX ops give other inputs under default XLA flags (build them with numpy): {line}"
    )


def test_every_registered_entry_has_independent_expected_values():
    """Every entry lossjax ships brings expected values (`lossjax/expected/<family>.json`), so its `value`
    property runs; an entry added later without them fails here."""
    import lossjax
    from lossjax import registry, testing

    expected = testing._expected_files()
    missing = [
        n for n in lossjax.available() if n not in expected and testing._sample(registry.get_entry(n)).expected is None
    ]
    assert not missing, f"no independent expected values (see tests/reference/README.md) for {missing}"
    assert all("value" in testing.properties_for(n) for n in lossjax.available())
