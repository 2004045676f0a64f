"""Writes the inputs of every conformance value case to ``tests/reference/inputs/<family>.json``.

This is the only script here that imports lossjax, and only to read the
entries' samples (the inputs, never an output). The ``make_expected_*.py``
generators read these files, compute the expected outputs with an independent
implementation in float64, and write ``lossjax/expected/<family>.json``:

    python tests/reference/dump_inputs.py [--family F ...]
    python tests/reference/make_expected_<family>.py
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import lossjax
from lossjax import registry, testing

HERE = pathlib.Path(__file__).parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", action="append", help="only these families (repeatable)")
    args = p.parse_args()
    by_family: dict[str, list[str]] = {}
    for name in lossjax.available():
        by_family.setdefault(registry.get_entry(name).family, []).append(name)
    for family, names in sorted(by_family.items()):
        if args.family and family not in args.family:
            continue
        data = testing.dump_inputs(names)
        path = HERE / "inputs" / f"{family}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(f"{path.relative_to(HERE.parent.parent)}: {len(names)} entries")


if __name__ == "__main__":
    main()
