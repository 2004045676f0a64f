"""A small side-by-side benchmark harness (used by ``benchmarks/run.py`` and ``lossjax bench``).

Method (PERFORMANCE.md): compile every variant first, then time them in
interleaved rounds in one process, synchronizing before reading the clock,
and report the ratio of medians to a baseline, plus the compiled temporary
memory (``lower(...).compile().memory_analysis().temp_size_in_bytes``).

>>> import jax.numpy as jnp
>>> from lossjax.benchmarking import Case, run_case
>>> x = jnp.ones((256,))
>>> case = Case("demo", {"sum": (jnp.sum, (x,)), "mean": (jnp.mean, (x,))}, baseline="sum")
>>> rows = run_case(case, rounds=3)
>>> sorted(r.variant for r in rows)
['mean', 'sum']
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax

__all__ = ["Case", "Row", "bandwidth_floor_ms", "format_table", "run_case"]


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmark: several variants of the same computation.

    Attributes:
      name: what is measured ("focal fwd+bwd, N=2^22").
      variants: label -> ``(fn, args)``; ``fn(*args)`` is jitted by the harness.
        Use a list of argument tuples to rotate inputs between rounds.
      baseline: the label ratios are taken against.
      floor_bytes: bytes the computation must move at least (for a bandwidth floor).
      floor_flops: FLOPs it must do at least (for a compute floor).
      note: free text printed under the table.
    """

    name: str
    variants: Mapping[str, tuple[Callable[..., Any], Any]]
    baseline: str | None = None
    floor_bytes: float | None = None
    floor_flops: float | None = None
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Row:
    case: str
    variant: str
    median_ms: float
    ratio: float
    temp_bytes: int | None
    floor_ratio: float | None


def _temp_bytes(compiled) -> int | None:
    try:
        ma = compiled.memory_analysis()
        return None if ma is None else int(ma.temp_size_in_bytes)
    except Exception:  # some backends do not report memory
        return None


def bandwidth_floor_ms(nbytes: float, gbytes_per_s: float) -> float:
    """Time to move ``nbytes`` at ``gbytes_per_s``, in milliseconds."""
    return nbytes / (gbytes_per_s * 1e9) * 1e3


def run_case(case: Case, *, rounds: int = 11, bandwidth_gbs: float | None = None) -> list[Row]:
    """Compiles all variants, times interleaved rounds, returns one :class:`Row` per variant."""
    compiled = {}
    arg_sets = {}
    temps = {}
    for label, (fn, args) in case.variants.items():
        sets = args if isinstance(args, list) else [args]
        arg_sets[label] = sets
        lowered = jax.jit(fn).lower(*sets[0])
        compiled[label] = lowered.compile()
        temps[label] = _temp_bytes(compiled[label])
        jax.block_until_ready(compiled[label](*sets[0]))  # warm up
    times: dict[str, list[float]] = {label: [] for label in compiled}
    for r in range(rounds):
        for label, exe in compiled.items():
            sets = arg_sets[label]
            args = sets[r % len(sets)]
            t0 = time.perf_counter()
            jax.block_until_ready(exe(*args))
            times[label].append(time.perf_counter() - t0)
    medians = {label: statistics.median(ts) * 1e3 for label, ts in times.items()}
    base = case.baseline if case.baseline in medians else next(iter(medians))
    floor = None
    if case.floor_bytes and bandwidth_gbs:
        floor = bandwidth_floor_ms(case.floor_bytes, bandwidth_gbs)
    return [
        Row(
            case.name,
            label,
            medians[label],
            medians[label] / medians[base],
            temps[label],
            None if floor is None else medians[label] / floor,
        )
        for label in medians
    ]


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def format_table(rows: Sequence[Row], baseline_label: str | None = None) -> str:
    """A plain-text table of rows (ratios are vs each case's baseline)."""
    head = f"{'case':<44} {'variant':<28} {'median ms':>10} {'ratio':>7} {'temp mem':>11} {'x floor':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        fl = "" if r.floor_ratio is None else f"{r.floor_ratio:.2f}"
        mem = _fmt_bytes(r.temp_bytes)
        lines.append(f"{r.case[:44]:<44} {r.variant[:28]:<28} {r.median_ms:>10.3f} {r.ratio:>7.2f} {mem:>11} {fl:>8}")
    return "\n".join(lines)
