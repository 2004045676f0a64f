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
import numpy as np

__all__ = ["FLOOR", "Case", "Peer", "Row", "bandwidth_floor_ms", "copy_floor", "format_table", "run_case", "torch_peer"]

#: Label of the variant that copies a case's floor bytes (the bandwidth floor measured in the same run).
FLOOR = "floor: copy the same bytes"


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmark: several variants of the same computation.

    Attributes:
      name: what is measured ("focal fwd+bwd, N=2^22").
      variants: label -> ``(fn, args)``; ``fn(*args)`` is jitted by the harness.
        Use a list of argument tuples to rotate inputs between rounds. A
        :class:`Peer` instead of ``(fn, args)`` is a non-JAX implementation
        (a PyTorch library) timed in the same rounds.
      baseline: the label ratios are taken against.
      floor_bytes: bytes the computation must move at least (for a bandwidth floor).
      floor_flops: FLOPs it must do at least (for a compute floor): give the case a
        variant labelled ``"floor: ..."`` that does just those FLOPs (the matmuls)
        to have it measured in the same rounds.
      note: free text printed under the table.
      key: a short name ``benchmarks/run.py --only`` matches exactly (default: the module's topic).

    With ``floor_bytes`` the runner adds a variant that reads and writes that
    many bytes (:func:`copy_floor`), timed in the same rounds: the "x floor"
    column is then measured, not assumed. Otherwise a variant whose label
    starts with ``"floor:"`` (the bare matmuls of a compute-bound case) is the
    floor of that column.
    """

    name: str
    variants: Mapping[str, tuple[Callable[..., Any], Any]]
    baseline: str | None = None
    floor_bytes: float | None = None
    floor_flops: float | None = None
    note: str = ""
    key: str = ""


@dataclasses.dataclass(frozen=True)
class Peer:
    """A variant outside JAX (e.g. a PyTorch library), timed in the same interleaved rounds.

    The harness calls ``fn(*args)`` as it is (no ``jax.jit``), then ``sync()``
    before reading the clock; it never goes through a JAX host callback, so
    the peer runs on its own device at its own speed. Build one for PyTorch
    with :func:`torch_peer`.

    Attributes:
      fn: the call to time.
      args: one argument tuple, or a list of them (rotated between rounds like JAX variants).
      sync: waits for the device work ``fn`` queued (``torch.cuda.synchronize``).
      temp_bytes: ``temp_bytes(fn, args) -> int | None``: the peak memory one
        call allocates beyond its inputs and outputs, where the library can say.
    """

    fn: Callable[..., Any]
    args: Any
    sync: Callable[[], None] = lambda: None
    temp_bytes: Callable[[Callable[..., Any], tuple], int | None] | None = None


@dataclasses.dataclass(frozen=True)
class Row:
    case: str
    variant: str
    median_ms: float
    ratio: float
    temp_bytes: int | None
    floor_ratio: float | None
    #: Why the variant has no time (it raised while compiling or warming up); the other variants still run.
    error: str = ""


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


def _matches(label: str, variant_filter: str | Sequence[str] | None) -> bool:
    if not variant_filter:
        return True
    filters = [variant_filter] if isinstance(variant_filter, str) else variant_filter
    return any(f in label for f in filters)


def run_case(
    case: Case,
    *,
    rounds: int = 11,
    bandwidth_gbs: float | None = None,
    variant_filter: str | Sequence[str] | None = None,
    time_limit_s: float | None = None,
    min_round_s: float = 0.01,
) -> list[Row]:
    """Compiles all variants, times interleaved rounds, returns one :class:`Row` per variant.

    Sub-millisecond variants are timed over back-to-back calls (enough to
    last ``min_round_s`` per round) so launch overhead does not dominate.
    A variant that raises while compiling or warming up (a peer library's
    solver failing at a large size, say) gets a row with its ``error`` and no
    time; the others run. A failing baseline fails the case.

    Args:
      case: the case.
      rounds: timing rounds (interleaved across variants).
      bandwidth_gbs: an assumed bandwidth, used only when the case has no measured floor.
      variant_filter: only variants whose label contains this string (or any of these strings); the
        baseline and the floors (labels starting with ``"floor:"``) always run.
      time_limit_s: stop adding rounds once this much time has passed (at least 3 rounds run).
      min_round_s: the shortest timed interval of one round.

    Returns:
      One :class:`Row` per variant.
    """
    variants = dict(case.variants)
    if variant_filter:
        variants = {
            k: v
            for k, v in variants.items()
            if _matches(k, variant_filter) or k == case.baseline or k.startswith("floor:")
        }
    if case.floor_bytes:
        variants[FLOOR] = copy_floor(case.floor_bytes)
    calls: dict[str, Callable[..., Any]] = {}  # label -> a call that returns once the device is done
    arg_sets = {}
    temps = {}
    errors = {}
    for label, variant in variants.items():
        try:
            if isinstance(variant, Peer):
                fn, args, sync = variant.fn, variant.args, variant.sync
                sets = args if isinstance(args, list) else [args]
                temps[label] = variant.temp_bytes(fn, sets[0]) if variant.temp_bytes else None
                call = _peer_call(fn, sync)
            else:
                fn, args = variant
                sets = args if isinstance(args, list) else [args]
                exe = jax.jit(fn).lower(*sets[0]).compile()
                temps[label] = _temp_bytes(exe)
                call = _jax_call(exe)
            call(sets[0], 1)  # warm up
        except Exception as e:  # a variant that cannot run is reported, not fatal
            if label == case.baseline:
                raise
            errors[label] = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            continue
        calls[label], arg_sets[label] = call, sets
    repeats = {}
    for label, call in calls.items():  # back-to-back calls for sub-round variants
        t0 = time.perf_counter()
        call(arg_sets[label][0], 1)
        repeats[label] = max(1, math.ceil(min_round_s / max(time.perf_counter() - t0, 1e-7)))
    times: dict[str, list[float]] = {label: [] for label in calls}
    start = time.perf_counter()
    for r in range(rounds):
        if time_limit_s is not None and r >= 3 and time.perf_counter() - start > time_limit_s:
            break
        for label, call in calls.items():
            sets = arg_sets[label]
            k = repeats[label]
            t0 = time.perf_counter()
            call(sets[r % len(sets)], k)
            times[label].append((time.perf_counter() - t0) / k)
    medians = {label: statistics.median(ts) * 1e3 for label, ts in times.items()}
    base = case.baseline if case.baseline in medians else next(iter(medians))
    floor = medians.get(FLOOR, next((v for k, v in medians.items() if k.startswith("floor:")), None))
    if floor is None and case.floor_bytes and bandwidth_gbs:
        floor = bandwidth_floor_ms(case.floor_bytes, bandwidth_gbs)
    rows = [
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
    nan = float("nan")
    return rows + [Row(case.name, label, nan, nan, None, None, error) for label, error in errors.items()]


def _jax_call(exe):
    def call(args, k):
        out = None
        for _ in range(k):
            out = exe(*args)
        jax.block_until_ready(out)

    return call


def _peer_call(fn, sync):
    def call(args, k):
        for _ in range(k):
            fn(*args)
        sync()

    return call


def torch_peer(fn: Callable[..., Any], args: Any, *, requires_grad: Sequence[int] = ()) -> Peer | None:
    """A :class:`Peer` running ``fn`` on PyTorch tensors on the device JAX is using, or ``None``.

    ``None`` (the case simply has no peer row) when torch is not installed,
    when JAX runs on a device torch cannot use here (a TPU, or a GPU torch was
    not built for), or when JAX is on a GPU and torch has no CUDA. PyTorch is
    never a lossjax dependency: install it beside lossjax to get these rows.

    Args:
      fn: called with torch tensors (the JAX arguments moved by DLPack, or
        through NumPy where DLPack cannot take them); JAX int32 labels stay
        int32 (convert inside ``fn`` where the peer wants int64).
      args: one tuple of JAX arrays, or a list of them.
      requires_grad: positions of the arguments to mark ``requires_grad``
        (for a forward + backward through ``torch.autograd.grad``).

    Returns:
      The peer, or ``None``.

    Example:
      >>> import jax.numpy as jnp
      >>> from lossjax.benchmarking import torch_peer
      >>> peer = torch_peer(lambda x: x.sum(), (jnp.ones(4),))
      >>> peer is None or peer.fn(*peer.args).item() == 4.0
      True
    """
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    backend = jax.default_backend()
    if backend == "cpu":
        device = torch.device("cpu")
    elif backend in ("gpu", "cuda") and torch.cuda.is_available():
        device = torch.device("cuda")
    else:
        return None

    def move(i, x):
        if not isinstance(x, jax.Array):
            return x
        try:
            t = torch.from_dlpack(x).to(device)
        except Exception:  # a dtype or device DLPack cannot share here: copy through the host
            host = np.asarray(x)
            if x.dtype == jnp.bfloat16:  # NumPy has no bfloat16 torch knows: share the bits
                t = torch.from_numpy(host.view(np.uint16).copy()).view(torch.bfloat16)
            else:
                t = torch.from_numpy(host.copy())
            t = t.to(device)
        if i in requires_grad:
            t = t.detach().clone().requires_grad_(True)
        return t

    sets = args if isinstance(args, list) else [args]
    moved = [tuple(move(i, x) for i, x in enumerate(a)) for a in sets]
    cuda = device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def temp_bytes(fn, a):
        if not cuda:
            return None
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        out = fn(*a)
        torch.cuda.synchronize()
        outs = out if isinstance(out, (tuple, list)) else (out,)
        out_bytes = sum(t.numel() * t.element_size() for t in outs if isinstance(t, torch.Tensor))
        return max(0, int(torch.cuda.max_memory_allocated() - before - out_bytes))

    return Peer(fn, moved if isinstance(args, list) else moved[0], sync, temp_bytes)


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
        if r.error:
            lines.append(f"{r.case[:44]:<44} {r.variant[:28]:<28} FAILED {r.error}")
            continue
        mem = _fmt_bytes(r.temp_bytes)
        lines.append(f"{r.case[:44]:<44} {r.variant[:28]:<28} {r.median_ms:>10.3f} {r.ratio:>7.2f} {mem:>11} {fl:>8}")
    return "\n".join(lines)
