"""The one benchmark runner: discovers the ``bench_*.py`` cases and prints a ratio table.

    python benchmarks/run.py                          # every case, CPU-sized
    python benchmarks/run.py --size large             # accelerator-sized
    python benchmarks/run.py --only classification    # one topic (a bench_<topic>.py), or a case key
    python benchmarks/run.py --only metric --variant lossjax --json results.jsonl
    python benchmarks/run.py --only large_vocab --variant default --variant peer   # lossjax vs the peers
    lossjax bench ...                                 # the same, from an installed package

Each ``bench_<topic>.py`` defines ``cases(size: str) -> list[lossjax.benchmarking.Case]``.
Ratios are medians of interleaved rounds in this one process, relative to each
case's baseline; "temp mem" is the compiled temporary memory; "x floor" is the
time over that of copying the case's minimum bytes, measured in the same rounds.

Rows labelled ``peer: ...`` are PyTorch libraries (torch naive, Liger, CCE,
torchvision, PML, MONAI, conflictfree), present only where torch and the library
are installed beside lossjax; they run on the device JAX uses, in this process,
timed in the same rounds (never through a host callback). With peers on a GPU,
JAX's memory preallocation is turned off (``XLA_PYTHON_CLIENT_PREALLOCATE=false``,
unless already set) so that both frameworks can allocate.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import importlib.util
import json
import os
import pathlib
import pkgutil
import sys
import time

import jax

from lossjax import benchmarking

HERE = pathlib.Path(__file__).resolve().parent

# Assumed memory bandwidth (GB/s), only for cases without a measured floor.
DEFAULT_BANDWIDTH = {"gpu": 4800.0, "cuda": 4800.0, "tpu": 1600.0, "cpu": 20.0}


def discover():
    """``(topic, module)`` for every ``bench_<topic>`` module of this package (or folder)."""
    package = __package__ or ""
    if package:
        names = sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))
        for name in names:
            yield name[len("bench_") :], importlib.import_module(f"{package}.{name}")
    else:  # run as a script from a checkout
        for path in sorted(HERE.glob("bench_*.py")):
            spec = importlib.util.spec_from_file_location(path.stem, path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            yield path.stem[len("bench_") :], mod


def _selected(only: list[str] | None, topic: str, case) -> bool:
    if not only:
        return True
    return topic in only or (case.key or topic) in only


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="lossjax bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--only", action="append", help="a topic (bench_<topic>.py) or case key, matched whole; repeatable")
    p.add_argument(
        "--variant",
        action="append",
        help="only variants whose label contains this; repeatable (any may match); the baseline and floor always run",
    )
    p.add_argument("--size", default=None, choices=["small", "large"], help="default: small on CPU, large otherwise")
    p.add_argument("--rounds", type=int, default=None, help="timing rounds (default 11 on CPU, 21 otherwise)")
    p.add_argument("--case-timeout", type=float, default=None, help="seconds of timing per case (>= 3 rounds)")
    p.add_argument("--bandwidth", type=float, default=None, help="GB/s, for cases without a measured floor")
    p.add_argument("--json", help="append one JSON line per case (device, JAX version, date) to this file")
    p.add_argument("--list", action="store_true", help="list topics and cases, run nothing")
    args = p.parse_args(argv)
    if importlib.util.find_spec("torch") is not None:  # before JAX creates its client: leave memory for torch
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    backend = jax.default_backend()
    size = args.size or ("small" if backend == "cpu" else "large")
    rounds = args.rounds or (11 if backend == "cpu" else 21)
    bw = args.bandwidth or DEFAULT_BANDWIDTH.get(backend)
    modules = list(discover())
    topics = [t for t, _ in modules]
    if args.only and set(args.only) <= set(topics):  # whole topics: build only their cases
        modules = [(t, m) for t, m in modules if t in args.only]
    plan = [(t, c) for t, mod in modules for c in mod.cases(size) if _selected(args.only, t, c)]
    if args.only and not plan:
        print(f"lossjax bench: nothing matches --only {args.only}; topics: {', '.join(topics)}", file=sys.stderr)
        return 2
    if args.list:
        for t, c in plan:
            print(f"{t:16s} {c.key or t:16s} {c.name}  [{', '.join(c.variants)}]")
        return 0
    device = jax.devices()[0].device_kind
    print(f"# lossjax benchmarks  {datetime.date.today()}  backend={backend}  device={device}  jax={jax.__version__}")
    print(f"# size={size} rounds={rounds}\n")
    failed = 0
    for i, (topic, case) in enumerate(plan, 1):
        print(f"[{i}/{len(plan)}] {topic}: {case.name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            rows = benchmarking.run_case(
                case, rounds=rounds, bandwidth_gbs=bw, variant_filter=args.variant, time_limit_s=args.case_timeout
            )
        except Exception as e:  # report and continue with the other cases
            failed += 1
            print(f"{case.name}: FAILED {type(e).__name__}: {e}\n")
            continue
        print(benchmarking.format_table(rows))
        failed += any(r.error and not r.variant.startswith("peer:") for r in rows)
        if case.note:
            print(f"  note: {case.note}")
        print(f"  ({time.perf_counter() - t0:.1f} s)\n", flush=True)
        if args.json:
            record = {
                "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "backend": backend,
                "device": device,
                "jax": jax.__version__,
                "size": size,
                "topic": topic,
                "case": case.name,
                "rows": [dataclasses.asdict(r) for r in rows],
            }
            with open(args.json, "a") as f:
                f.write(json.dumps(record) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
