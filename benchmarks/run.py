"""The one benchmark runner: discovers ``benchmarks/bench_*.py`` and prints a ratio table.

    python benchmarks/run.py                    # every case, CPU-sized
    python benchmarks/run.py --size large       # accelerator-sized
    python benchmarks/run.py --only focal --rounds 31

Each ``bench_<topic>.py`` defines ``cases(size: str) -> list[lossjax.benchmarking.Case]``.
Ratios are medians of interleaved rounds in this one process, relative to each
case's baseline; "temp mem" is the compiled temporary memory.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import pathlib
import sys

import jax

from lossjax import benchmarking

HERE = pathlib.Path(__file__).resolve().parent

# Memory bandwidth assumed for the "x floor" column, GB/s (overridable).
DEFAULT_BANDWIDTH = {"gpu": 3000.0, "cuda": 3000.0, "tpu": 1600.0, "cpu": 20.0}


def discover(only: str | None = None):
    for path in sorted(HERE.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        yield path.stem, mod


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", help="run cases whose module or case name contains this string")
    p.add_argument("--size", default=None, choices=["small", "large"], help="default: small on CPU, large otherwise")
    p.add_argument("--rounds", type=int, default=None, help="timing rounds (default 11 on CPU, 21 otherwise)")
    p.add_argument("--bandwidth", type=float, default=None, help="GB/s for the floor column")
    args = p.parse_args(argv)
    backend = jax.default_backend()
    size = args.size or ("small" if backend == "cpu" else "large")
    rounds = args.rounds or (11 if backend == "cpu" else 21)
    bw = args.bandwidth or DEFAULT_BANDWIDTH.get(backend)
    print(f"# lossjax benchmarks  {datetime.date.today()}  backend={backend}  device={jax.devices()[0].device_kind}")
    print(f"# size={size} rounds={rounds} bandwidth floor={bw} GB/s\n")
    failed = 0
    for modname, mod in discover():
        cases = mod.cases(size)
        for case in cases:
            if args.only and args.only not in modname and args.only not in case.name:
                continue
            try:
                rows = benchmarking.run_case(case, rounds=rounds, bandwidth_gbs=bw)
            except Exception as e:  # report and continue with the other cases
                failed += 1
                print(f"{case.name}: FAILED {type(e).__name__}: {e}\n")
                continue
            print(benchmarking.format_table(rows))
            if case.note:
                print(f"  note: {case.note}")
            print()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
