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
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["FLOOR", "Case", "Row", "bandwidth_floor_ms", "copy_floor", "format_table", "run_case"]

#: Label of the variant that copies a case's floor bytes (the bandwidth floor measured in the same run).
FLOOR = "floor: copy the same bytes"


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
      key: a short name ``benchmarks/run.py --only`` matches exactly (default: the module's topic).

    With ``floor_bytes`` the runner adds a variant that reads and writes that
    many bytes (:func:`copy_floor`), timed in the same rounds: the "x floor"
    column is then measured, not assumed.
    """

    name: str
    variants: Mapping[str, tuple[Callable[..., Any], Any]]
    baseline: str | None = None
    floor_bytes: float | None = None
    floor_flops: float | None = None
    note: str = ""
    key: str = ""


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


def copy_floor(nbytes: float) -> tuple[Callable[..., Any], tuple]:
    """A variant that reads ``nbytes / 2`` and writes ``nbytes / 2`` (float32): the memory floor of a case.

    Args:
      nbytes: the bytes a case must move at least (reads plus writes).

    Returns:
      ``(fn, args)`` for :class:`Case.variants`.

    Example:
      >>> from lossjax.benchmarking import copy_floor
      >>> fn, (x,) = copy_floor(8 * 1024)
      >>> x.shape
      (1024,)
    """
    n = max(1, int(nbytes // 8))
    x = jnp.arange(n, dtype=jnp.float32)
    return (lambda a: a * 1.0001 + 1.0), (x,)


def run_case(
    case: Case,
    *,
    rounds: int = 11,
    bandwidth_gbs: float | None = None,
    variant_filter: str | None = None,
    time_limit_s: float | None = None,
    min_round_s: float = 0.01,
) -> list[Row]:
    """Compiles all variants, times interleaved rounds, returns one :class:`Row` per variant.

    Sub-millisecond variants are timed over back-to-back calls (enough to
    last ``min_round_s`` per round) so launch overhead does not dominate.

    Args:
      case: the case.
      rounds: timing rounds (interleaved across variants).
      bandwidth_gbs: an assumed bandwidth, used only when the case has no measured floor.
      variant_filter: only variants whose label contains this (the baseline and the floor always run).
      time_limit_s: stop adding rounds once this much time has passed (at least 3 rounds run).
      min_round_s: the shortest timed interval of one round.

    Returns:
      One :class:`Row` per variant.
    """
    variants = dict(case.variants)
    if variant_filter:
        variants = {k: v for k, v in variants.items() if variant_filter in k or k == case.baseline}
    if case.floor_bytes:
        variants[FLOOR] = copy_floor(case.floor_bytes)
    compiled = {}
    arg_sets = {}
    temps = {}
    for label, (fn, args) in variants.items():
        sets = args if isinstance(args, list) else [args]
        arg_sets[label] = sets
        lowered = jax.jit(fn).lower(*sets[0])
        compiled[label] = lowered.compile()
        temps[label] = _temp_bytes(compiled[label])
        jax.block_until_ready(compiled[label](*sets[0]))  # warm up
    repeats = {}
    for label, exe in compiled.items():  # back-to-back calls for sub-round variants
        t0 = time.perf_counter()
        jax.block_until_ready(exe(*arg_sets[label][0]))
        repeats[label] = max(1, math.ceil(min_round_s / max(time.perf_counter() - t0, 1e-7)))
    times: dict[str, list[float]] = {label: [] for label in compiled}
    start = time.perf_counter()
    for r in range(rounds):
        if time_limit_s is not None and r >= 3 and time.perf_counter() - start > time_limit_s:
            break
        for label, exe in compiled.items():
            sets = arg_sets[label]
            args = sets[r % len(sets)]
            k = repeats[label]
            t0 = time.perf_counter()
            out = None
            for _ in range(k):
                out = exe(*args)
            jax.block_until_ready(out)
            times[label].append((time.perf_counter() - t0) / k)
    medians = {label: statistics.median(ts) * 1e3 for label, ts in times.items()}
    base = case.baseline if case.baseline in medians else next(iter(medians))
    floor = medians.get(FLOOR)
    if floor is None and case.floor_bytes and bandwidth_gbs:
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
