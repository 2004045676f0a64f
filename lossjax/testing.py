"""The public conformance suite: every registered loss and transform, on your backend.

Run it from the shell with ``lossjax check [NAME ...]`` or from Python::

    import lossjax.testing
    results = lossjax.testing.run()          # every entry, every property
    lossjax.testing.print_table(results)

Each registered entry declares the inputs the suite uses (:class:`~lossjax.registry.Sample`
for losses, :class:`~lossjax.registry.TransformSample` for transforms), and
the library ships, for every entry, the outputs an *independent* source gives
on those inputs (``lossjax/expected/<family>.json``: an upstream library call,
a port pinned to its upstream commit, or a closed form, computed in float64
by the scripts in ``tests/reference/``). The properties checked for a loss,
on the sample and on each of its hyperparameter ``variants`` (``debug`` on the
sample only; ``grad`` on variants without expected values):

==============  ==============================================================
``kind``        the output is what the registered kind promises: the batch
                shape (``per_example``), a scalar (``batch``), and a
                ``(value, state)`` pair exactly when ``has_aux``.
``jit``         ``jax.jit(f)(x)`` equals ``f(x)`` (eager, op by op), on the
                sample and at every extreme case.
``vmap``        ``vmap`` over an extra leading axis equals a Python loop.
``where``       a ``where`` mask equals slicing the batch; masked entries are 0.
``all_masked``  an all-masked batch gives 0 and finite (zero) gradients.
``extremes``    extreme inputs (logits of +-1e4, zeros; for losses with a
                class axis ``-inf`` in a non-target class, 1e4 beside 1e-4 in
                one row, confidently wrong rows) give finite values and
                gradients (compiled; ``jit`` compares eager there).
``value``       values and gradients equal the independent expected ones (at
                the sample, its variants and the extremes), within the
                backend's float32 tolerance.
``bf16``        bf16 inputs give float32 results equal, to float32 precision,
                to float32 inputs holding the same values (the dtype policy
                computes in float32).
``x64``         under ``jax_enable_x64`` float32 inputs give float32 and no
                float64 op is traced; float64 inputs give float64.
``grad``        ``jax.test_util.check_grads`` in float64.
``export``      the loss and its gradient lower for CPU, CUDA and TPU.
``registry``    ``from_config(get(name).to_config())`` gives the same values.
``debug``       ``lossjax.checked(loss)`` (debug mode) returns the plain values,
                and accepts NaN padding in masked rows.
``parallel``    (losses taking ``axis_name``) on the available devices, the
                gradient of ``pmean(loss)`` under ``shard_map`` and ``pmap``
                with ``pmean`` of the gradients both equal the one-device
                gradient of the whole batch.
``fuzz``        seeded random valid calls (random batch sizes, 1 and 0
                included; scales up to 1e3 and spreads down to 1e-6; NaN in
                masked rows; float32 and bf16) give finite values and
                gradients, or a clear error for an empty batch. Every failure
                prints the seed that reproduces it.
==============  ==============================================================

For transforms: ``jit``, ``finite`` (zero and random updates give finite
updates and state), ``state`` (a NamedTuple of arrays), ``value`` (two steps
equal the independent expected updates), ``export`` and ``registry``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import os
import pathlib
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import registry
from lossjax.registry import Sample, TransformSample

__all__ = [
    "LOSS_PROPERTIES",
    "SCOPES",
    "TRANSFORM_PROPERTIES",
    "CheckResult",
    "assert_close",
    "check",
    "cotangent",
    "dump_inputs",
    "fingerprint",
    "has_variant_work",
    "in_scope",
    "print_table",
    "properties_for",
    "run",
    "tolerances",
    "value_errors",
]

PLATFORMS = ("cpu", "cuda", "tpu")
LOSS_PROPERTIES = (
    "kind",
    "jit",
    "vmap",
    "where",
    "all_masked",
    "extremes",
    "value",
    "bf16",
    "x64",
    "grad",
    "export",
    "registry",
    "debug",
    "parallel",
    "fuzz",
)
TRANSFORM_PROPERTIES = ("jit", "finite", "state", "value", "export", "registry")
EXPECTED_DIR = pathlib.Path(__file__).parent / "expected"
#: Number of random calls per entry in the ``fuzz`` property (``LOSSJAX_FUZZ_BUDGET`` raises it).
FUZZ_BUDGET = int(os.environ.get("LOSSJAX_FUZZ_BUDGET", "1"))
#: Steps of the transform ``value`` protocol.
TRANSFORM_STEPS = 2


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One (entry, property) outcome of :func:`run`."""

    name: str
    prop: str
    ok: bool
    detail: str = ""
    seconds: float = 0.0


def tolerances(dtype: Any, backend: str | None = None) -> dict[str, float]:
    """The one place tolerances live: ``{"rtol": ..., "atol": ...}`` for a dtype and backend.

    Args:
      dtype: the dtype of the computation compared.
      backend: ``"cpu"``, ``"gpu"``, ``"tpu"`` (default: JAX's default backend).

    Returns:
      A dict for :func:`numpy.testing.assert_allclose`.

    Example:
      >>> from lossjax.testing import tolerances
      >>> tolerances("float32", "cpu")
      {'rtol': 2e-05, 'atol': 2e-06}
    """
    backend = backend or jax.default_backend()
    dt = jnp.dtype(dtype)
    if dt == jnp.float64:
        return {"rtol": 1e-9, "atol": 1e-11}
    if dt.itemsize <= 2:
        return {"rtol": 3e-2, "atol": 3e-2}
    if backend == "cpu":
        return {"rtol": 2e-5, "atol": 2e-6}
    # GPU/TPU reorder reductions and may use reduced-precision matmul passes.
    return {"rtol": 2e-4, "atol": 2e-5}


def _value_tolerances(backend: str | None = None) -> dict[str, float]:
    """float32 result vs a float64 independent reference: a few float32 ulps per operation on CPU."""
    backend = backend or jax.default_backend()
    if backend == "cpu":
        return {"rtol": 1e-4, "atol": 1e-5}
    return {"rtol": 2e-3, "atol": 2e-4}  # TF32-class matmul passes


def _is_number_list(x) -> bool:
    if isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):
        return len(x) > 0 and all(_is_number_list(v) for v in x)
    return isinstance(x, (int, float, np.number))


def assert_close(actual: Any, expected: Any, *, dtype: Any = jnp.float32, err: str = "", **override) -> None:
    """``np.testing.assert_allclose`` over pytrees with :func:`tolerances`.

    Args:
      actual: a pytree of arrays.
      expected: a pytree of the same structure (or a nested list of numbers for one array).
      dtype: the dtype whose tolerances apply.
      err: a message prefix.
      **override: ``rtol`` / ``atol`` overrides.

    Returns:
      None; raises AssertionError on a mismatch.

    Example:
      >>> import numpy as np
      >>> from lossjax.testing import assert_close
      >>> assert_close(np.float32(1.0), [1.0])
    """
    tol = {**tolerances(dtype), **override}
    la, lb = jax.tree.leaves(actual), jax.tree.leaves(expected)
    if len(la) == 1 and _is_number_list(expected):
        lb = [np.asarray(expected)]  # a plain (nested) list of numbers compared with one array
    if len(la) != len(lb):
        raise AssertionError(f"{err}: pytrees differ ({len(la)} vs {len(lb)} leaves)")
    for a, b in zip(la, lb, strict=True):
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), err_msg=err, **tol)


# ------------------------------- helpers ----------------------------------


def _is_float(x) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _cast_floats(tree, dtype):
    return jax.tree.map(lambda x: jnp.asarray(x, dtype) if _is_float(x) else x, tree)


def _primary(out, entry):
    return out[0] if entry.has_aux else out


def _call(entry, sample: Sample, args, where=None, kwargs=None):
    kw = dict(sample.kwargs if kwargs is None else kwargs)
    if where is not None:
        kw["where"] = where
    return entry.fn(*args, **kw)


def _batched(sample: Sample) -> tuple[int, ...]:
    return tuple(range(len(sample.args))) if sample.batched_argnums is None else sample.batched_argnums


def _batch_size(sample: Sample) -> int:
    return int(np.shape(sample.args[_batched(sample)[0]])[0])


def _mask(sample: Sample) -> np.ndarray:
    n = _batch_size(sample)
    m = np.ones(n, bool)
    m[1::3] = False  # drop every third example, keep the first
    return m


def _where_arg(sample: Sample, entry, mask: np.ndarray):
    """The mask of the loss's leading batch axis (``where`` aligns with leading axes)."""
    del entry
    return jnp.asarray(mask)


def _with_diff(sample: Sample, args, diff):
    args = list(args)
    for i, d in zip(sample.diff_argnums, diff, strict=True):
        args[i] = d
    return tuple(args)


def _diff(sample: Sample, args):
    return tuple(args[i] for i in sample.diff_argnums)


def cotangent(shape: Sequence[int], dtype: Any = np.float64) -> np.ndarray:
    """The fixed cotangent the expected gradients are taken with: ``1 + 0.5 cos(k)`` over the flat index.

    Expected gradients are those of ``sum(cotangent(out.shape) * out)``:
    uneven weights catch a wrong per-element gradient that a plain sum hides.

    Args:
      shape: the output's shape (``()`` for a scalar: the cotangent is 1).
      dtype: its dtype.

    Returns:
      An array of ``shape``.

    Example:
      >>> from lossjax.testing import cotangent
      >>> cotangent((3,)).round(4).tolist()
      [1.5, 1.2702, 0.7919]
    """
    n = int(np.prod(shape)) if len(shape) else 1
    ct = 1.0 + 0.5 * np.cos(np.arange(n, dtype=np.float64))
    return (ct.reshape(shape) if len(shape) else np.asarray(1.0)).astype(dtype)


def _objective(entry, sample: Sample, args_fixed, where=None, kwargs=None, weighted: bool = False):
    """A function of the differentiated args returning ``(scalar, output)``."""

    def f(*diff):
        out = _call(entry, sample, _with_diff(sample, args_fixed, diff), where=where, kwargs=kwargs)
        p = _primary(out, entry)
        if weighted:
            return jnp.sum(jnp.asarray(cotangent(p.shape), p.dtype) * p), out
        return jnp.sum(p), out

    return f


def _scalar_objective(entry, sample: Sample, args_fixed, where=None, kwargs=None):
    f = _objective(entry, sample, args_fixed, where=where, kwargs=kwargs)
    return lambda *diff: f(*diff)[0]


def _out_and_grads(entry, sample, args, where=None, kwargs=None, weighted: bool = False):
    """``(output, gradients of sum([cotangent *] primary output) wrt the differentiated args)`` in one pass."""
    f = _objective(entry, sample, args, where=where, kwargs=kwargs, weighted=weighted)
    if not sample.diff_argnums:
        return f()[1], ()
    (_, out), grads = jax.value_and_grad(f, argnums=tuple(range(len(sample.diff_argnums))), has_aux=True)(
        *_diff(sample, args)
    )
    return out, grads


def _all_finite(tree) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(x, np.float64)))) for x in jax.tree.leaves(tree) if _is_float(x))


# ------------------------------ variants and cases ------------------------------


def _with_variant(sample, variant: Mapping[str, Any]):
    if isinstance(sample, TransformSample):
        return dataclasses.replace(sample, hyperparams={**sample.hyperparams, **variant})
    return dataclasses.replace(sample, kwargs={**sample.kwargs, **variant})


def _variants(sample) -> list[tuple[dict, Any]]:
    """``[(variant hyperparameters, sample with them), ...]``: the plain sample first."""
    return [({}, sample)] + [(dict(v), _with_variant(sample, v)) for v in sample.variants]


def _auto_extremes(sample: Sample) -> list[tuple[str, tuple]]:
    out = []
    for fill in ("big", "zero"):
        args = list(sample.args)
        for i in sample.diff_argnums:
            a = np.asarray(args[i])
            if fill == "big":
                s = np.sign(a)
                args[i] = np.where(s == 0, 1.0, s).astype(a.dtype) * 1e4
            else:
                args[i] = np.zeros_like(a)
        out.append((fill, tuple(args)))
    return out


def _class_axis_extremes(sample: Sample) -> list[tuple[str, tuple]]:
    """Softmax edge cases: -inf in a non-target class, 1e4 beside 1e-4 in a row, confidently wrong rows."""
    logits = np.asarray(sample.args[0], np.float32)
    labels = np.asarray(sample.args[1]) if len(sample.args) > 1 else None
    if logits.ndim < 1 or logits.shape[-1] < 3:
        return []
    c = logits.shape[-1]
    integer = labels is not None and np.issubdtype(labels.dtype, np.integer) and labels.shape == logits.shape[:-1]
    target = labels if integer else np.argmax(labels, -1) if labels is not None else np.zeros(logits.shape[:-1], int)
    onehot = np.eye(c, dtype=bool)[target]
    other = np.eye(c, dtype=bool)[(target + 1) % c]
    rest = list(sample.args[1:])
    cases = []
    if integer:  # a target distribution may put mass on any class: -inf only against integer labels
        z = logits.copy()
        z[other] = -np.inf
        cases.append(("neg_inf", (z, *rest)))
    z = logits.copy()
    z[..., 0] = 1e4
    z[..., 1] = 1e-4
    cases.append(("mixed", (z, *rest)))
    z = logits.copy()
    z[onehot] = -20.0
    z[other] = 20.0
    cases.append(("confident_wrong", (z, *rest)))
    return cases


def _extreme_cases(sample: Sample) -> list[tuple[str, tuple]]:
    if sample.extremes is not None:
        base = [(f"extreme_{k}", tuple(a)) for k, a in enumerate(sample.extremes)]
    else:
        base = _auto_extremes(sample)
    if sample.class_axis:
        base += _class_axis_extremes(sample)
    return base


def _value_cases(sample: Sample) -> list[tuple[str, dict, Sample, tuple]]:
    """``(case, variant, sample, args)``: the sample under each variant, then the extremes (plain)."""
    cases = [("sample", v, s, s.args) for v, s in _variants(sample)]
    if sample.diff_argnums:
        cases += [(label, {}, sample, args) for label, args in _extreme_cases(sample)]
    return cases


# ------------------------------ expected values ------------------------------


def _encode(x) -> Any:
    if _is_key(x):
        return {"prng_key_data": np.asarray(jax.random.key_data(x)).tolist()}
    if hasattr(x, "dtype") and hasattr(x, "shape"):
        a = np.asarray(x)
        data = a.astype(np.float64).ravel().tolist() if a.dtype.kind == "f" else a.ravel().tolist()
        data = [None if isinstance(v, float) and not np.isfinite(v) and np.isnan(v) else v for v in data]
        data = [("inf" if v > 0 else "-inf") if isinstance(v, float) and np.isinf(v) else v for v in data]
        return {"dtype": str(a.dtype), "shape": list(a.shape), "data": data}
    if isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):
        return [_encode(v) for v in x]
    if isinstance(x, Mapping):
        return {k: _encode(v) for k, v in x.items()}
    if hasattr(x, "_fields"):
        return {"namedtuple": type(x).__name__, "fields": {f: _encode(getattr(x, f)) for f in x._fields}}
    return x


def fingerprint(*trees: Any) -> str:
    """A short hash of arrays' dtypes, shapes and values: which inputs an expected value was made from.

    Args:
      *trees: pytrees of arrays and Python scalars.

    Returns:
      16 hexadecimal characters.

    Example:
      >>> import numpy as np
      >>> from lossjax.testing import fingerprint
      >>> fingerprint(np.zeros(2, np.float32)) == fingerprint(np.zeros(2, np.float32))
      True
    """
    text = json.dumps(_encode(list(trees)), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_EXPECTED_CACHE: dict[tuple, dict[str, dict]] = {}


def _expected_files() -> dict[str, dict]:
    """Every shipped expected record by entry name (parsed once per set of file versions)."""
    paths = sorted(EXPECTED_DIR.glob("*.json")) if EXPECTED_DIR.is_dir() else []
    key = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    if key not in _EXPECTED_CACHE:
        out: dict[str, dict] = {}
        for path in paths:
            for name, rec in json.loads(path.read_text()).items():
                out[name] = rec
        _EXPECTED_CACHE.clear()
        _EXPECTED_CACHE[key] = out
    return _EXPECTED_CACHE[key]


def _expected(entry, sample) -> Mapping[str, Any]:
    rec = sample.expected if sample.expected is not None else _expected_files().get(entry.name)
    if rec is None:
        raise AssertionError(
            f"{entry.name}: no independent expected value: add it to lossjax/expected/{entry.family}.json "
            "(tests/reference/README.md says how) or pass Sample(expected=...)"
        )
    assert rec.get("source"), f"{entry.name}: the expected values do not name their independent source"
    return rec


def _find_case(entry, rec, case: str, variant: Mapping[str, Any]) -> Mapping[str, Any]:
    want = json.dumps(_encode(dict(variant)), sort_keys=True)
    for c in rec.get("cases", ()):
        if c.get("case") == case and json.dumps(c.get("variant", {}), sort_keys=True) == want:
            return c
    raise AssertionError(f"{entry.name}: no expected value for case {case!r} with variant {dict(variant)}")


def _input_fingerprint(sample: Sample, args) -> str:
    return fingerprint(tuple(args), {k: v for k, v in sample.kwargs.items()})


def dump_inputs(names: Iterable[str] | None = None) -> dict[str, Any]:
    """The inputs of every value case, in JSON form, for the scripts that compute expected values.

    The generators in ``tests/reference/`` read this (they never import
    lossjax) and write ``lossjax/expected/<family>.json``.

    Args:
      names: entries (default: all).

    Returns:
      ``{name: {"family", "kind", "has_aux", "diff_argnums", "cases": [...]}}``; each case holds
      ``case``, ``variant``, ``args``, ``kwargs``, ``fingerprint`` (transforms: ``params``,
      ``updates``, ``extra_args``, ``hyperparams``, ``steps``).

    Example:
      >>> from lossjax.testing import dump_inputs
      >>> sorted(dump_inputs(["softmax_cross_entropy"])["softmax_cross_entropy"]["cases"][0])[:3]
      ['args', 'case', 'fingerprint']
    """
    out: dict[str, Any] = {}
    for name in names or registry.available():
        entry = registry.get_entry(name)
        sample = _sample(entry)
        if entry.kind == "transform":
            cases = []
            for v, s in _variants(sample):
                arrays = {k: x for k, x in s.extra_args.items() if not callable(x)}
                cases.append(
                    {
                        "case": "sample",
                        "variant": _encode(v),
                        "hyperparams": _encode(dict(s.hyperparams)),
                        "params": _encode(s.params),
                        "updates": _encode(s.updates),
                        "extra_args": _encode(arrays),
                        "callables": sorted(k for k, x in s.extra_args.items() if callable(x)),
                        "steps": TRANSFORM_STEPS,
                        "fingerprint": fingerprint(s.params, s.updates, arrays, dict(s.hyperparams)),
                    }
                )
        else:
            cases = [
                {
                    "case": case,
                    "variant": _encode(v),
                    "args": _encode(list(args)),
                    "kwargs": _encode(dict(s.kwargs)),
                    "fingerprint": _input_fingerprint(s, args),
                }
                for case, v, s, args in _value_cases(sample)
            ]
        out[entry.name] = {
            "family": entry.family,
            "kind": entry.kind,
            "has_aux": entry.has_aux,
            "diff_argnums": list(getattr(sample, "diff_argnums", ())),
            "cases": cases,
        }
    return out


# ------------------------------ properties --------------------------------
# Compiles are the suite's cost: one jitted function per (entry, variant,
# purpose) is built once and shared by the properties that need it (where and
# all_masked share one; extremes and value share another).

_JIT_CACHE: dict[tuple, Callable] = {}


def _cached_jit(key: tuple, build: Callable[[], Callable]) -> Callable:
    """The jitted function of ``key = (entry name, ...)``, built once; only the current entry's are kept.

    A compiled CPU executable holds about a dozen memory mappings until its jitted function is
    freed. Kept for every entry, the whole registry's reached Linux's default limit of 65530
    mappings per process in a test worker, where XLA's compiler then crashed (segfault). The
    suite runs an entry's properties together (one xdist group per entry), so dropping the
    previous entry's functions costs no recompiles.
    """
    if key not in _JIT_CACHE:
        if any(k[0] != key[0] for k in _JIT_CACHE):
            _JIT_CACHE.clear()
        _JIT_CACHE[key] = build()
    return _JIT_CACHE[key]


def _jitted(entry, sample, purpose: str) -> Callable:
    if purpose not in ("masked", "weighted"):
        raise ValueError(purpose)

    def build():
        if purpose == "masked":
            return jax.jit(lambda a, w: _out_and_grads(entry, sample, a, where=w))
        return jax.jit(lambda a: _out_and_grads(entry, sample, a, weighted=True))

    return _cached_jit((entry.name, fingerprint(dict(sample.kwargs)), purpose), build)


def _p_kind(entry, sample):
    out = jax.eval_shape(lambda a: _call(entry, sample, a), sample.args)
    if entry.has_aux:
        assert isinstance(out, tuple) and len(out) == 2, (
            f"{entry.name}: registered with has_aux=True but returns {type(out).__name__}, not (value, state)"
        )
        out = out[0]
    leaves = jax.tree.leaves(out)
    assert len(leaves) == 1 and hasattr(out, "shape"), (
        f"{entry.name}: a {entry.kind} entry must return one array"
        + (" (and its state)" if entry.has_aux else "")
        + f", got {jax.tree.structure(out)}"
    )
    if entry.kind == "batch":
        assert out.shape == (), f"{entry.name}: kind 'batch' must return a scalar, got shape {out.shape}"
    elif entry.kind == "per_example" and sample.where:
        n = _batch_size(sample)
        assert out.ndim >= 1 and out.shape[0] == n, (
            f"{entry.name}: kind 'per_example' must return the batch shape (leading axis {n}), got shape {out.shape}"
        )
    if entry.kind != "function":
        assert jnp.issubdtype(out.dtype, jnp.floating), f"{entry.name}: a loss must return floats, got {out.dtype}"


def _p_jit(entry, sample):
    # The compiled value-and-gradient function (which `value` and `extremes` use too) holds
    # the forward pass: one compile per sample serves all three. Eager execution compiles
    # op by op (the costliest part of the suite): every eager comparison is here, so that
    # the README's test command can leave this property to .ci/run's second step.
    fn = _jitted(entry, sample, "weighted")
    eager = _call(entry, sample, sample.args)
    assert_close(fn(sample.args)[0], eager, err=f"{entry.name}: jit != eager")
    if not sample.diff_argnums:
        return
    for label, args in _extreme_cases(sample):
        out = _primary(fn(tuple(args))[0], entry)
        eager = _primary(_call(entry, sample, tuple(args)), entry)
        # Rounding differs between fused and unfused code by a few ulps of the
        # largest intermediate (logits of 1e4 times a scale of 64 cancel): compare
        # at the inputs' magnitude. A NaN on one side only always fails.
        magnitude = max(
            [1.0]
            + [float(np.max(np.abs(x[np.isfinite(x)]), initial=0.0)) for x in map(np.asarray, args) if _is_float(x)]
        )
        assert_close(
            out,
            eager,
            err=f"{entry.name}: jit != eager at extreme case {label!r}",
            rtol=_value_tolerances()["rtol"],
            atol=1e-4 * magnitude,
        )


def _perturb(args, batched):
    out = list(args)
    for i in batched:
        a = np.asarray(out[i])
        if _is_float(a):
            out[i] = (a * 0.5 + 0.1 * np.cos(np.arange(a.size).reshape(a.shape))).astype(a.dtype)
        else:
            out[i] = np.roll(a, 1, axis=0)
    return tuple(out)


def _p_vmap(entry, sample):
    batched = _batched(sample)
    second = _perturb(sample.args, batched)
    stacked = tuple(
        np.stack([a, b]) if i in batched else a for i, (a, b) in enumerate(zip(sample.args, second, strict=True))
    )
    in_axes = tuple(0 if i in batched else None for i in range(len(sample.args)))
    vm = jax.jit(jax.vmap(lambda *a: _call(entry, sample, a), in_axes=in_axes))(*stacked)
    single = _jitted(entry, sample, "weighted")
    loop = [single(sample.args)[0], single(second)[0]]
    assert_close(vm, jax.tree.map(lambda *xs: np.stack(xs), *loop), err=f"{entry.name}: vmap != loop")


def _p_where(entry, sample):
    mask = _mask(sample)
    w = _where_arg(sample, entry, mask)
    idx = np.nonzero(mask)[0]
    sliced = tuple(np.asarray(a)[idx] if i in _batched(sample) else a for i, a in enumerate(sample.args))
    # Masked examples of the differentiated inputs hold garbage (NaN): values
    # elsewhere and all gradients must not notice.
    garbage = list(sample.args)
    for i in sample.diff_argnums:
        if i in _batched(sample):
            a = np.array(garbage[i], copy=True)
            a[~mask] = np.nan
            garbage[i] = a
    out, grads = _jitted(entry, sample, "masked")(tuple(garbage), w)
    masked = _primary(out, entry)
    ref = _primary(jax.jit(lambda a: _call(entry, sample, a))(sliced), entry)
    if entry.kind == "per_example":
        masked = np.asarray(masked)
        assert np.all(masked[~mask] == 0), f"{entry.name}: masked entries must be exactly 0, got {masked[~mask]}"
        assert_close(masked[mask], ref, err=f"{entry.name}: where=mask != slicing")
    else:
        assert_close(masked, ref, err=f"{entry.name}: where=mask != slicing the batch")
    for k, i in enumerate(sample.diff_argnums):
        g = np.asarray(grads[k])
        assert np.all(np.isfinite(g)), f"{entry.name}: NaN/inf gradient with NaN in masked examples of arg {i}"
        if i in _batched(sample):
            assert np.all(g[~mask] == 0), f"{entry.name}: masked examples of arg {i} got nonzero gradient"


def _p_all_masked(entry, sample):
    mask = np.zeros(_batch_size(sample), bool)
    w = _where_arg(sample, entry, mask)
    out, grads = _jitted(entry, sample, "masked")(sample.args, w)
    out = _primary(out, entry)
    assert np.all(np.asarray(out) == 0), f"{entry.name}: all-masked batch must give 0, got {out}"
    assert _all_finite(grads), f"{entry.name}: all-masked batch gave non-finite gradients"
    assert all(np.all(np.asarray(g) == 0) for g in jax.tree.leaves(grads)), f"{entry.name}: all-masked gradients != 0"


def _p_extremes(entry, sample):
    fn = _jitted(entry, sample, "weighted")
    for label, args in _extreme_cases(sample):
        out, grads = fn(tuple(args))
        assert _all_finite(out), f"{entry.name}: extreme case {label!r} gave a non-finite value {out}"
        assert _all_finite(grads), f"{entry.name}: extreme case {label!r} gave a non-finite gradient"


def _p_value(entry, sample):
    rec = _expected(entry, sample)
    for case, variant, s, args in _value_cases(sample):
        exp = _find_case(entry, rec, case, variant)
        got_fp = _input_fingerprint(s, args)
        assert exp.get("fingerprint") == got_fp, (
            f"{entry.name}: the expected value of case {case!r} {variant or ''} was made from other inputs "
            f"(fingerprint {exp.get('fingerprint')} != {got_fp}); the sample changed: regenerate it"
        )
        out, grads = _jitted(entry, s, "weighted")(tuple(args))
        tol = {**_value_tolerances(), **(sample.value_tol or {})}
        what = f"{entry.name}: case {case!r} {variant or ''} vs {rec['source']}"
        assert_close(_primary(out, entry), _decode(exp["value"]), err=f"{what}: value", **tol)
        if "aux" in exp and entry.has_aux:
            assert_close(out[1], _decode(exp["aux"]), err=f"{what}: state", **tol)
        if "grads" in exp:
            for k, g in enumerate(grads):
                assert_close(g, _decode(exp["grads"][k]), err=f"{what}: gradient of arg {s.diff_argnums[k]}", **tol)


def _rel_err(got, expected) -> float:
    got_leaves, exp_leaves = jax.tree.leaves(got), jax.tree.leaves(expected)
    if len(got_leaves) != 1 or len(exp_leaves) != 1:  # pytrees (a transform's updates): leaf by leaf
        return max([_rel_err(g, e) for g, e in zip(got_leaves, exp_leaves, strict=True)], default=0.0)
    got, expected = np.asarray(got_leaves[0], np.float64), np.asarray(exp_leaves[0], np.float64)
    finite = np.isfinite(expected)
    if not np.any(finite):
        return 0.0
    den = np.maximum(np.abs(expected[finite]), 1e-6)
    return float(np.max(np.abs(got[finite] - expected[finite]) / den, initial=0.0))


def value_errors(name: str) -> dict[str, float]:
    """The largest relative errors of an entry's float32 values and gradients against its expected ones.

    Over every value case (the sample, its variants, the extremes); the
    denominator is floored at 1e-6 (values near 0 count absolutely).

    Args:
      name: a registered loss with expected values.

    Returns:
      ``{"value": ..., "grad": ...}`` (``grad`` is 0 without differentiated inputs).

    Example:
      >>> from lossjax.testing import value_errors
      >>> sorted(value_errors("softmax_cross_entropy"))  # doctest: +SKIP
      ['grad', 'value']
    """
    entry = registry.get_entry(name)
    sample = _sample(entry)
    rec = _expected(entry, sample)
    worst = {"value": 0.0, "grad": 0.0}
    if entry.kind == "transform":  # the updates of every step, every variant ("grad" stays 0)
        for variant, s in _variants(sample):
            exp = _find_case(entry, rec, "sample", variant)
            tx = registry.get(entry.name, **s.hyperparams)
            outs = jax.jit(functools.partial(transform_steps, tx, s))()
            for o, e in zip(outs, exp["steps_updates"], strict=True):
                worst["value"] = max(worst["value"], _rel_err(o, _decode(e)))
        return worst
    with jax.numpy_rank_promotion("raise"):
        for case, variant, s, args in _value_cases(sample):
            exp = _find_case(entry, rec, case, variant)
            out, grads = _jitted(entry, s, "weighted")(tuple(args))
            worst["value"] = max(worst["value"], _rel_err(_primary(out, entry), _decode(exp["value"])))
            for k, g in enumerate(grads):
                if "grads" in exp:
                    worst["grad"] = max(worst["grad"], _rel_err(g, _decode(exp["grads"][k])))
    return worst


def _decode(x) -> Any:
    if isinstance(x, Mapping) and "data" in x and "shape" in x:
        data = [np.nan if v is None else float(v) if isinstance(v, str) else v for v in x["data"]]
        return np.asarray(data, dtype=x.get("dtype", "float64")).reshape(x["shape"])
    if isinstance(x, Mapping) and "fields" in x:
        return tuple(_decode(v) for v in x["fields"].values())
    if isinstance(x, Mapping):
        return {k: _decode(v) for k, v in x.items()}
    if isinstance(x, list) and x and not _is_number_list(x):
        return [_decode(v) for v in x]
    return np.asarray(x, np.float64) if _is_number_list(x) or isinstance(x, (int, float)) else x


def _float_argnums(sample):
    return [i for i, a in enumerate(sample.args) if _is_float(np.asarray(a))]


def _p_bf16(entry, sample):
    fl = _float_argnums(sample)
    if not fl:
        return "no float inputs"
    low = tuple(jnp.asarray(a, jnp.bfloat16) if i in fl else a for i, a in enumerate(sample.args))
    up = tuple(jnp.asarray(a, jnp.float32) if i in fl else a for i, a in enumerate(low))
    out_low = _primary(jax.jit(lambda lo: _call(entry, sample, lo))(low), entry)
    out_up = _primary(_jitted(entry, sample, "weighted")(up)[0], entry)  # float32 args: the compiled one
    for leaf in jax.tree.leaves(out_low):
        assert leaf.dtype == jnp.float32, f"{entry.name}: bf16 inputs must give float32, got {leaf.dtype}"
    tol = tolerances(jnp.float32) if sample.bf16_tol is None else {"rtol": sample.bf16_tol, "atol": sample.bf16_tol}
    assert_close(out_low, out_up, err=f"{entry.name}: bf16 inputs are not computed in float32", **tol)


def _jaxpr_f64_ops(jaxpr) -> list[str]:
    bad = []

    def visit_param(p):  # sub-jaxprs hide in params: Jaxpr, ClosedJaxpr, or tuples of them (cond branches)
        if isinstance(p, (tuple, list)):
            for q in p:
                visit_param(q)
        elif hasattr(p, "jaxpr") and hasattr(p.jaxpr, "eqns"):
            visit(p.jaxpr)
        elif hasattr(p, "eqns") and hasattr(p, "outvars") and not hasattr(p, "primitive"):
            visit(p)

    def visit(jx):
        for eqn in jx.eqns:
            for v in eqn.outvars:
                if hasattr(v, "aval") and getattr(v.aval, "dtype", None) in (jnp.float64, jnp.complex128):
                    bad.append(str(eqn.primitive))
            for p in eqn.params.values():
                visit_param(p)

    visit(jaxpr.jaxpr)
    return bad


def _p_x64(entry, sample):
    with jax.enable_x64(True):
        args32 = _cast_floats(tuple(jnp.asarray(a) for a in sample.args), jnp.float32)
        kw32 = _cast_floats(dict(sample.kwargs), jnp.float32)
        jaxpr = jax.make_jaxpr(lambda a: _out_and_grads(entry, sample, a, kwargs=kw32))(args32)
        bad = _jaxpr_f64_ops(jaxpr)
        assert not bad, f"{entry.name}: float32 inputs traced float64 ops under x64: {sorted(set(bad))}"
        out = _primary(jax.eval_shape(lambda a: _call(entry, sample, a, kwargs=kw32), args32), entry)
        for leaf in jax.tree.leaves(out):
            if jnp.issubdtype(leaf.dtype, jnp.floating):
                assert leaf.dtype == jnp.float32, f"{entry.name}: float32 inputs gave {leaf.dtype} under x64"
        if _float_argnums(sample):
            args64 = _cast_floats(args32, jnp.float64)
            kw64 = _cast_floats(kw32, jnp.float64)
            out64 = _primary(jax.eval_shape(lambda a: _call(entry, sample, a, kwargs=kw64), args64), entry)
            for leaf in jax.tree.leaves(out64):
                if jnp.issubdtype(leaf.dtype, jnp.floating):
                    assert leaf.dtype == jnp.float64, f"{entry.name}: float64 inputs gave {leaf.dtype}"


def _p_grad(entry, sample):
    """Float64 reverse-mode gradients against central differences along random directions.

    ``jax.test_util.check_grads(order=1, modes=("rev",))``'s test, with one
    compile (value-and-gradient, whose value also serves the differences)
    instead of one per call.
    """
    if not sample.diff_argnums:
        return "no differentiable input"
    with jax.enable_x64(True):
        args = _cast_floats(tuple(jnp.asarray(a) for a in sample.args), jnp.float64)
        kw = _cast_floats(dict(sample.kwargs), jnp.float64)
        f = _scalar_objective(entry, sample, args, kwargs=kw)
        argnums = tuple(range(len(sample.diff_argnums)))
        value_and_grad = jax.jit(jax.value_and_grad(f, argnums=argnums))
        primals = _diff(sample, args)
        _, g64 = value_and_grad(*primals)
        if sample.surrogate_grad:
            assert _all_finite(g64), f"{entry.name}: non-finite float64 surrogate gradient"
            assert any(np.any(np.asarray(g) != 0) for g in g64), f"{entry.name}: surrogate gradient is all zeros"
            f32 = _scalar_objective(entry, sample, sample.args)
            g32 = jax.jit(jax.grad(f32, argnums=argnums))(*_diff(sample, sample.args))
            assert_close(g32, g64, err=f"{entry.name}: float32 surrogate gradient != float64", rtol=1e-4, atol=1e-5)
            return None

        def value(*p):
            return value_and_grad(*p)[0]

        rng = np.random.default_rng(0)
        eps = sample.grad_eps
        for _ in range(2):
            tangent = tuple(rng.normal(size=np.shape(p)) for p in primals)
            plus = value(*(p + eps * t for p, t in zip(primals, tangent, strict=True)))
            minus = value(*(p - eps * t for p, t in zip(primals, tangent, strict=True)))
            numeric = float(plus - minus) / (2 * eps)
            analytic = float(sum(np.sum(np.asarray(g) * t) for g, t in zip(g64, tangent, strict=True)))
            tol = sample.grad_tol * (1 + abs(numeric))
            assert abs(numeric - analytic) <= tol, (
                f"{entry.name}: float64 gradient along a random direction is {analytic:.8g}, "
                f"central differences give {numeric:.8g}"
            )


def _p_export(entry, sample):
    # The value-and-gradient function holds the forward pass too: one lowering per platform.
    f = _jitted(entry, sample, "weighted")
    jax.export.export(f, platforms=PLATFORMS)(sample.args)


def _registry_round_trip(entry, kwargs):
    """``get(name, **hyperparameters)`` and ``from_config(to_config())`` agree; returns both."""
    # Required hyperparameters (e.g. class counts) come from the sample's kwargs.
    hp = {k: kwargs[k] for k in entry.hyperparams if k in kwargs}
    hp = {k: (np.asarray(v).tolist() if hasattr(v, "shape") else v) for k, v in hp.items()}
    configured = registry.get(entry.name, **hp)
    rebuilt = registry.from_config(configured.to_config())
    assert rebuilt.to_config() == configured.to_config(), f"{entry.name}: config {hp} does not round-trip"
    return hp, configured, rebuilt


def _p_registry(entry, sample):
    hp, configured, rebuilt = _registry_round_trip(entry, sample.kwargs)
    rest = {k: v for k, v in sample.kwargs.items() if k not in hp}
    a, b = jax.jit(lambda *x: (configured(*x, **rest), rebuilt(*x, **rest)))(*sample.args)
    c = _jitted(entry, sample, "weighted")(sample.args)[0]  # compiled already (value, extremes)
    assert_close(a, c, err=f"{entry.name}: registry-built loss != the function")
    assert_close(b, c, err=f"{entry.name}: rebuilt loss != the function")
    for alias in entry.aliases:
        assert registry.get_entry(alias) is entry
    assert registry.describe(entry.name)


def _p_debug(entry, sample):
    from lossjax import _checks as C

    plain = _jitted(entry, sample, "weighted")(sample.args)[0]
    checked = C.checked(entry.fn)
    try:
        got = checked(*sample.args, **sample.kwargs)
    except ValueError as e:
        raise AssertionError(
            f"{entry.name}: debug mode rejects the sample: {e} (an input that may legitimately hold NaN/inf is "
            "declared with register(..., allow_nonfinite=(name,)))"
        ) from None
    assert_close(_primary(got, entry), _primary(plain, entry), err=f"{entry.name}: lossjax.checked changes the value")
    if sample.where and entry.kind != "function":
        mask = _mask(sample)
        garbage = list(sample.args)
        for i in sample.diff_argnums:
            if i in _batched(sample):
                a = np.array(garbage[i], copy=True)
                a[~mask] = np.nan
                garbage[i] = a
        try:
            checked(*garbage, **sample.kwargs, where=_where_arg(sample, entry, mask))
        except ValueError as e:
            raise AssertionError(
                f"{entry.name}: debug mode rejects NaN padding in masked rows (the contract allows it): {e}"
            ) from None


def _takes_axis_name(entry) -> bool:
    return "axis_name" in inspect.signature(entry.fn).parameters


def _repeat_rows(sample: Sample, n: int, *, seed: int = 0) -> tuple:
    """The sample's batched arguments with ``n`` rows drawn (cyclically, then shuffled) from its own.

    Repeated float rows of the differentiated arguments are nudged (by 1% of
    their scale) so that no two rows coincide: duplicates would put pair losses
    on the kink of a distance at 0.
    """
    n0 = _batch_size(sample)
    rows = np.random.default_rng(seed).permutation(np.arange(n) % n0)
    repeated = np.zeros(n, bool)
    seen: set[int] = set()
    for k, r in enumerate(rows):
        repeated[k] = r in seen
        seen.add(int(r))
    out = []
    for i, a in enumerate(sample.args):
        if i not in _batched(sample):
            out.append(a)
            continue
        a = np.asarray(a)[rows]
        if i in sample.diff_argnums and _is_float(a):
            bump = 0.01 * (np.std(a) + 1e-3) * np.cos(np.arange(a.size).reshape(a.shape))
            a = np.where(np.reshape(repeated, (n,) + (1,) * (a.ndim - 1)), a + bump, a).astype(a.dtype)
        out.append(a)
    return tuple(out)


def _p_parallel(entry, sample):
    """Data parallelism in a train step: the parameter gradient equals the one-device one.

    The batch is sharded over all devices and the parameters are replicated:
    a per-feature scale ``theta`` on every differentiated batched input
    (``x * theta``, ``theta = 1``) and every differentiated input without a
    batch axis (proxies, class weights) as is. Checked: ``shard_map`` with the
    gradient of ``pmean(loss)`` (:func:`lossjax.data_parallel_value_and_grad`),
    and ``pmap`` with ``pmean`` of the per-device gradients.
    """
    from jax.sharding import Mesh, PartitionSpec

    from lossjax._parallel import data_parallel_value_and_grad

    shard_map = getattr(jax, "shard_map", None)
    if shard_map is None:  # older jax
        from jax.experimental.shard_map import shard_map
    devices = jax.devices()
    nd = len(devices)
    if nd < 2:
        return "skipped: one device (run with XLA_FLAGS=--xla_force_host_platform_device_count=8 on CPU)"
    if not sample.diff_argnums:
        return "no differentiable input"
    if sample.fuzz_batch:
        args = _repeat_rows(sample, 2 * nd)
    else:  # an input ties two batch axes together ([B, B]): the sample's own batch must shard evenly
        assert _batch_size(sample) % nd == 0, (
            f"{entry.name}: the sample's batch ({_batch_size(sample)}) cannot be resized (fuzz_batch=False) and "
            f"does not split over {nd} devices: give the sample a batch that is a multiple of 8"
        )
        args = sample.args
    batched = _batched(sample)
    diff = sample.diff_argnums
    reduce = jnp.mean if entry.kind == "per_example" else (lambda x: x)
    params = tuple(
        jnp.ones(np.shape(args[i])[1:], jnp.asarray(args[i]).dtype) if i in batched else jnp.asarray(args[i])
        for i in diff
    )

    def loss(params, data, axis_name):
        full = list(data)
        for i, p in zip(diff, params, strict=True):
            full[i] = full[i] * p[None] if i in batched else p
        return reduce(_primary(entry.fn(*full, **sample.kwargs, axis_name=axis_name), entry))

    data = tuple(jnp.asarray(a) for a in args)
    single = jax.jit(jax.grad(lambda p: loss(p, data, None)))(params)
    mesh = Mesh(np.asarray(devices), ("d",))
    spec = tuple(PartitionSpec("d") if i in batched else PartitionSpec() for i in range(len(args)))
    step = data_parallel_value_and_grad(lambda p, d: loss(p, d, "d"), axis_name="d")
    replicated = tuple(PartitionSpec() for _ in params)
    f = shard_map(lambda p, d: step(p, d)[1], mesh=mesh, in_specs=(replicated, spec), out_specs=replicated)
    assert_close(jax.jit(f)(params, data), single, err=f"{entry.name}: shard_map grad of pmean(loss) != one device")

    def per_device(p, d):  # pmap: local loss, pmean of the gradients
        return jax.lax.pmean(jax.grad(lambda pp: loss(pp, d, "d"))(p), "d")

    def split(a, i):
        a = np.asarray(a)
        return a.reshape((nd, a.shape[0] // nd, *a.shape[1:])) if i in batched else np.broadcast_to(a, (nd, *a.shape))

    g = jax.pmap(per_device, axis_name="d", in_axes=(None, 0))(params, tuple(split(a, i) for i, a in enumerate(args)))
    assert_close(jax.tree.map(lambda x: x[0], g), single, err=f"{entry.name}: pmap + pmean(grads) != one device")


def _fuzz_case(entry, sample: Sample, seed: int):
    """One random valid call: batch size, scale, mask with NaN rows, dtype; returns a description."""
    rng = np.random.default_rng(seed)
    n0 = _batch_size(sample)
    n = int(rng.choice([0, 1, 2, n0, n0 + 3])) if sample.fuzz_batch else n0
    dtype = jnp.bfloat16 if rng.random() < 0.3 else jnp.float32
    scale = float(rng.choice([1e-6, 1e-3, 1.0, 1e2, 1e3]))
    rows = np.random.default_rng(seed).permutation(np.arange(n) % n0) if n > 0 else np.arange(0)
    args = [np.asarray(a)[rows] if i in _batched(sample) else a for i, a in enumerate(sample.args)]
    kwargs = {k: (np.asarray(v)[rows] if k in sample.batched_kwargs else v) for k, v in sample.kwargs.items()}
    for i in sample.diff_argnums if sample.fuzz_scaled is None else sample.fuzz_scaled:
        a = np.asarray(args[i])
        args[i] = (a * scale).astype(a.dtype)
    where = None
    if sample.where and n > 0 and rng.random() < 0.7:
        where = rng.random(n) < 0.7
        for i in sample.diff_argnums:
            if i in _batched(sample):
                a = np.array(args[i], copy=True)
                a[~where] = np.nan
                args[i] = a
    args = [
        jnp.asarray(a, dtype) if _is_float(np.asarray(a)) and i in sample.diff_argnums else a
        for i, a in enumerate(args)
    ]
    desc = f"seed={seed} batch={n} scale={scale} dtype={jnp.dtype(dtype).name} masked={where is not None}"
    return tuple(args), kwargs, (None if where is None else jnp.asarray(where)), n, desc


def _fuzz_call(entry, sample, args, kwargs, where):
    """Jitted value and gradients; array keyword arguments traced, settings (numbers, strings) static."""
    arrays = {k: v for k, v in kwargs.items() if hasattr(v, "shape") and np.ndim(v) >= 1 and not _is_key(v)}
    settings = {k: v for k, v in kwargs.items() if k not in arrays}
    fn = jax.jit(lambda a, k, w: _out_and_grads(entry, sample, a, where=w, kwargs={**settings, **k}))
    return fn(args, arrays, where)


def _p_fuzz(entry, sample):
    base = int(hashlib.sha256(entry.name.encode()).hexdigest()[:6], 16)
    for k in range(FUZZ_BUDGET):
        seed = base + k
        args, kwargs, where, n, desc = _fuzz_case(entry, sample, seed)
        repro = f"reproduce: lossjax.testing.fuzz({entry.name!r}, seed={seed}) [{desc}]"
        try:
            out, grads = _fuzz_call(entry, sample, args, kwargs, where)
        except (ValueError, TypeError) as e:
            if n == 0 and entry.fn.__name__ in str(e):
                continue  # an empty batch may be a clear error naming the function
            raise AssertionError(f"{entry.name}: {type(e).__name__}: {e} | {repro}") from None
        p = _primary(out, entry)
        assert _all_finite(p), f"{entry.name}: non-finite value | {repro}"
        assert _all_finite(grads), f"{entry.name}: non-finite gradient | {repro}"
        if n == 0 and entry.kind == "batch":
            assert float(p) == 0.0, f"{entry.name}: an empty batch must give 0, got {p} | {repro}"


def fuzz(name: str, seed: int) -> None:
    """Reruns one fuzz case of an entry (the seed is printed by a failing ``fuzz`` property).

    Args:
      name: the registered entry.
      seed: the seed from the failure message.

    Returns:
      None; raises the failure.

    Example:
      >>> from lossjax.testing import fuzz
      >>> fuzz("softmax_cross_entropy", seed=3)
    """
    entry = registry.get_entry(name)
    sample = _sample(entry)
    args, kwargs, where, _, desc = _fuzz_case(entry, sample, seed)
    out, grads = _fuzz_call(entry, sample, args, kwargs, where)
    if not (_all_finite(_primary(out, entry)) and _all_finite(grads)):
        raise AssertionError(f"{name}: non-finite value or gradient [{desc}]")


_LOSS_CHECKS: dict[str, Callable] = {
    "kind": _p_kind,
    "jit": _p_jit,
    "vmap": _p_vmap,
    "where": _p_where,
    "all_masked": _p_all_masked,
    "extremes": _p_extremes,
    "value": _p_value,
    "bf16": _p_bf16,
    "x64": _p_x64,
    "grad": _p_grad,
    "export": _p_export,
    "registry": _p_registry,
    "debug": _p_debug,
    "parallel": _p_parallel,
    "fuzz": _p_fuzz,
}
#: While the library's expected values are being produced family by family, ``value`` runs for the
#: entries that have them (``LOSSJAX_REQUIRE_EXPECTED=1``: for every entry, a missing one fails).
_REQUIRE_EXPECTED = os.environ.get("LOSSJAX_REQUIRE_EXPECTED", "0") == "1"
#: Properties that run once per entry (they iterate over the cases themselves).
# Every property runs on every hyperparameter variant, made cheaper where the
# work would repeat: ``debug`` checks the checkify wrapper (the variant's own
# checks run in every other property) on the sample only; the float64 gradient
# check runs on the variants only where no expected values cover them
# (``value`` compares every variant's gradients with independent ones);
# ``registry`` round-trips every variant's config but compiles once.
_ONCE = {"value", "parallel", "fuzz", "debug"}

# ------------------------------ transforms --------------------------------


def _tx_parts(entry, ts: TransformSample):
    tx = registry.get(entry.name, **ts.hyperparams)
    arrays = {k: v for k, v in ts.extra_args.items() if not callable(v)}
    fns = {k: v for k, v in ts.extra_args.items() if callable(v)}

    def step(updates, params, arrays):
        state = tx.init(params)
        return tx.update(updates, state, params, **arrays, **fns)

    return tx, step, arrays


def _tx_jitted(entry, ts: TransformSample) -> Callable:
    """The compiled first step of the sample's transform (one compile serves jit, finite and registry)."""
    key = (entry.name, fingerprint(dict(ts.hyperparams)), "tx_step")
    return _cached_jit(key, lambda: jax.jit(_tx_parts(entry, ts)[1]))


def _t_jit(entry, ts):
    _, step, arrays = _tx_parts(entry, ts)
    eager = step(ts.updates, ts.params, arrays)
    jitted = _tx_jitted(entry, ts)(ts.updates, ts.params, arrays)
    assert_close(jitted, eager, err=f"{entry.name}: jitted update != eager", rtol=1e-4, atol=1e-5)


def _t_finite(entry, ts):
    _, _, arrays = _tx_parts(entry, ts)
    step = _tx_jitted(entry, ts)
    for label, upd in (("random", ts.updates), ("zero", jax.tree.map(jnp.zeros_like, ts.updates))):
        out = step(upd, ts.params, arrays)
        assert _all_finite(out), f"{entry.name}: {label} updates gave non-finite updates or state"


def _t_state(entry, ts):
    tx, _, _ = _tx_parts(entry, ts)
    state = tx.init(ts.params)

    def visit(s, path):
        if isinstance(s, tuple) and hasattr(s, "_fields"):
            for f in s._fields:
                visit(getattr(s, f), f"{path}.{f}")
        elif isinstance(s, (tuple, list)):
            for i, x in enumerate(s):
                visit(x, f"{path}[{i}]")
        elif isinstance(s, dict):
            for k, x in s.items():
                visit(x, f"{path}[{k!r}]")
        else:
            assert hasattr(s, "dtype") or s is None, (
                f"{entry.name}: state leaf {path} is {type(s).__name__}, not an array"
            )

    visit(state, "state")


def transform_steps(tx, ts: TransformSample, steps: int = TRANSFORM_STEPS):
    """The transform ``value`` protocol: ``steps`` updates with the sample's inputs, applying each.

    ``state = tx.init(params)``; then ``steps`` times: ``out, state =
    tx.update(updates, state, params, **extra_args)`` with the sample's (fixed)
    ``updates`` and ``params = params + out``. The expected-value scripts
    implement the same protocol.

    Args:
      tx: the transformation.
      ts: its sample.
      steps: how many updates.

    Returns:
      The list of the ``steps`` output updates.

    Example:
      >>> import optax, numpy as np
      >>> from lossjax.registry import TransformSample
      >>> from lossjax.testing import transform_steps
      >>> ts = TransformSample(params={"w": np.ones(2, np.float32)}, updates={"w": np.ones(2, np.float32)})
      >>> [u["w"].tolist() for u in transform_steps(optax.sgd(0.5), ts)]
      [[-0.5, -0.5], [-0.5, -0.5]]
    """
    import optax

    params = ts.params
    state = tx.init(params)
    outs = []
    for _ in range(steps):
        out, state = tx.update(ts.updates, state, params, **ts.extra_args)
        outs.append(out)
        params = optax.apply_updates(params, out)
    return outs


def _t_value(entry, ts):
    rec = _expected(entry, ts)
    for variant, s in _variants(ts):
        exp = _find_case(entry, rec, "sample", variant)
        arrays = {k: x for k, x in s.extra_args.items() if not callable(x)}
        got_fp = fingerprint(s.params, s.updates, arrays, dict(s.hyperparams))
        assert exp.get("fingerprint") == got_fp, (
            f"{entry.name}: the expected updates {variant or ''} were made from other inputs; regenerate them"
        )
        tx = registry.get(entry.name, **s.hyperparams)
        outs = jax.jit(functools.partial(transform_steps, tx, s))()
        tol = {**_value_tolerances(), **(ts.value_tol or {})}
        for k, (o, e) in enumerate(zip(outs, exp["steps_updates"], strict=True)):
            assert_close(o, _decode(e), err=f"{entry.name}: step {k + 1} {variant or ''} vs {rec['source']}", **tol)


def _t_export(entry, ts):
    _, step, arrays = _tx_parts(entry, ts)
    jax.export.export(jax.jit(step), platforms=PLATFORMS)(ts.updates, ts.params, arrays)


def _t_registry(entry, ts):
    tx, _, arrays = _tx_parts(entry, ts)
    rebuilt = registry.from_config(tx.to_config())
    assert rebuilt.to_config() == tx.to_config(), f"{entry.name}: config does not round-trip"
    fns = {k: v for k, v in ts.extra_args.items() if callable(v)}
    a = _tx_jitted(entry, ts)(ts.updates, ts.params, arrays)
    b = jax.jit(lambda u, p, arr: rebuilt.update(u, rebuilt.init(p), p, **arr, **fns))(ts.updates, ts.params, arrays)
    assert_close(a, b, err=f"{entry.name}: rebuilt transform differs", rtol=1e-4, atol=1e-5)
    assert registry.describe(entry.name)


_TRANSFORM_CHECKS: dict[str, Callable] = {
    "jit": _t_jit,
    "finite": _t_finite,
    "state": _t_state,
    "value": _t_value,
    "export": _t_export,
    "registry": _t_registry,
}

# -------------------------------- driver ----------------------------------

_SAMPLE_CACHE: dict[str, Any] = {}


def _sample(entry):
    if entry.name not in _SAMPLE_CACHE:
        if entry.sample is None:
            raise AssertionError(f"{entry.name}: registered without a sample; the conformance suite needs one")
        _SAMPLE_CACHE[entry.name] = entry.sample()
    return _SAMPLE_CACHE[entry.name]


def properties_for(name: str) -> tuple[str, ...]:
    """The properties that apply to an entry.

    Args:
      name: a registered name or alias.

    Returns:
      A tuple of property names (see the module docstring).

    Example:
      >>> from lossjax.testing import properties_for
      >>> "jit" in properties_for("softmax_cross_entropy")
      True
    """
    entry = registry.get_entry(name)
    s = _sample(entry)
    has_expected = _REQUIRE_EXPECTED or s.expected is not None or entry.name in _expected_files()
    if entry.kind == "transform":
        return tuple(p for p in TRANSFORM_PROPERTIES if p != "value" or has_expected)
    props = [p for p in LOSS_PROPERTIES if p != "value" or has_expected]
    if not s.where or entry.kind == "function":
        props = [p for p in props if p not in ("where", "all_masked")]
    if not s.diff_argnums:
        props = [p for p in props if p not in ("grad", "extremes", "parallel")]
    if not _float_argnums(s):
        props = [p for p in props if p != "bf16"]
    if not _takes_axis_name(entry) or entry.kind == "function":
        props = [p for p in props if p != "parallel"]
    return tuple(props)


SCOPES = ("all", "main", "rest")
#: Properties that guard plumbing and robustness (eager execution, the checkify wrapper,
#: lowering for every platform, the data-parallel gradient, random valid calls): the ``rest``
#: scope runs them.
_REST = ("jit", "debug", "export", "parallel", "fuzz")


def check(name: str, prop: str, *, scope: str = "all") -> str | None:
    """Runs one property of one entry, on its sample and every variant.

    Args:
      name: a registered name or alias.
      prop: a property from :func:`properties_for`.
      scope: ``"all"``; ``"main"``: the numerical properties on the sample, and
        ``value`` on the sample and every variant; ``"rest"``: the numerical
        properties on the variants, and ``jit`` (eager against compiled),
        ``debug``, ``export``, ``parallel`` and ``fuzz`` (the two halves together
        are ``"all"``; the test suite runs them as two CI steps).

    Returns:
      None, or a note (e.g. ``"skipped: ..."``); raises AssertionError (or the
      loss's own error) on failure.

    Example:
      >>> from lossjax.testing import check
      >>> check("softmax_cross_entropy", "jit")
    """
    entry = registry.get_entry(name)
    checks = _TRANSFORM_CHECKS if entry.kind == "transform" else _LOSS_CHECKS
    if prop not in checks:
        raise ValueError(f"lossjax.testing.check: unknown property {prop!r}; known: {sorted(checks)}")
    if scope not in SCOPES:
        raise ValueError(f"lossjax.testing.check: `scope` must be one of {SCOPES}, got {scope!r}")
    sample = _sample(entry)
    # As strict as the test session: implicit rank promotion is an error.
    with jax.numpy_rank_promotion("raise"):
        if scope != "all" and not in_scope(name, prop, scope):
            return f"skipped: runs in the {'main' if scope == 'rest' else 'rest'} scope"
        if prop in _REST:
            scope = "all"  # the rest scope runs these whole
        if prop in _ONCE or entry.kind == "transform":
            return checks[prop](entry, sample)
        variants = _variants(sample)
        if scope == "main":
            variants = variants[:1]
        elif scope == "rest":
            variants = [({}, None), *variants[1:]]  # the placeholder keeps the per-property rules below
        if prop == "grad" and (sample.expected is not None or entry.name in _expected_files()):
            variants = variants[:1]
        if prop == "registry":
            for _, s in variants[1:]:
                _registry_round_trip(entry, s.kwargs)
            variants = variants[:1]
        notes = [checks[prop](entry, s) for _, s in variants if s is not None]
        return next((n for n in notes if n), None)


def in_scope(name: str, prop: str, scope: str) -> bool:
    """Whether ``check(name, prop, scope=scope)`` checks anything.

    Args:
      name: a registered name or alias.
      prop: a property from :func:`properties_for`.
      scope: one of :data:`SCOPES`.

    Returns:
      True when the property has work in that scope for this entry.

    Example:
      >>> from lossjax.testing import in_scope
      >>> in_scope("softmax_cross_entropy", "value", "main"), in_scope("softmax_cross_entropy", "fuzz", "main")
      (True, False)
    """
    entry = registry.get_entry(name)
    if scope == "all":
        return True
    if prop in _REST:
        return scope == "rest"
    if prop in _ONCE or entry.kind == "transform":
        return scope == "main"
    return scope == "main" or has_variant_work(name, prop)


def has_variant_work(name: str, prop: str) -> bool:
    """Whether ``check(name, prop, scope="rest")`` checks the property on variants (the entry has variants it runs on).

    Args:
      name: a registered name or alias.
      prop: a property from :func:`properties_for`.

    Returns:
      True when the property runs on at least one hyperparameter variant outside the sample scope.

    Example:
      >>> from lossjax.testing import has_variant_work
      >>> has_variant_work("softmax_cross_entropy", "value")  # value compares every variant in the sample scope
      False
    """
    entry = registry.get_entry(name)
    if prop in _ONCE or entry.kind == "transform":
        return False
    sample = _sample(entry)
    if not sample.variants:
        return False
    if prop == "grad" and (sample.expected is not None or entry.name in _expected_files()):
        return False
    return True


def run(
    names: Iterable[str] | None = None,
    properties: Sequence[str] | None = None,
    *,
    progress: Callable[[CheckResult], None] | None = None,
) -> list[CheckResult]:
    """Runs the suite; returns one :class:`CheckResult` per (entry, property).

    Args:
      names: entries to check (default: every registered entry).
      properties: only these properties (default: all that apply).
      progress: called with each result as soon as it is known.

    Returns:
      The results, in order.

    Example:
      >>> from lossjax.testing import run
      >>> [r.ok for r in run(["softmax_cross_entropy"], ["jit", "kind"])]
      [True, True]
    """
    names = list(names) if names else registry.available()
    results = []
    for name in names:
        canonical = registry.get_entry(name).name
        try:
            props = properties_for(canonical)
        except Exception as e:  # a broken sample is a failure of every property
            results.append(CheckResult(canonical, "sample", False, f"{type(e).__name__}: {e}"))
            if progress:
                progress(results[-1])
            continue
        for prop in props:
            if properties and prop not in properties:
                continue
            t0 = time.perf_counter()
            try:
                note = check(canonical, prop)
                results.append(CheckResult(canonical, prop, True, note or "", time.perf_counter() - t0))
            except Exception as e:
                detail = f"{type(e).__name__}: {e}".strip().splitlines()
                tb = traceback.format_exc(limit=-2).strip().splitlines()
                results.append(
                    CheckResult(
                        canonical,
                        prop,
                        False,
                        (detail[0] if detail else "") + " | " + (tb[-3] if len(tb) > 2 else ""),
                        time.perf_counter() - t0,
                    )
                )
            if progress:
                progress(results[-1])
    return results


def print_table(results: Sequence[CheckResult], *, file=None) -> bool:
    """Prints a name x property table of pass/fail; returns True if all passed.

    Args:
      results: from :func:`run`.
      file: where to print (default: stdout).

    Returns:
      True when every result passed.

    Example:
      >>> import io
      >>> from lossjax.testing import CheckResult, print_table
      >>> print_table([CheckResult("x", "jit", True)], file=io.StringIO())
      True
    """
    import sys

    file = file or sys.stdout
    props = list(dict.fromkeys(LOSS_PROPERTIES + TRANSFORM_PROPERTIES + ("sample",)))
    present = [p for p in props if any(r.prop == p for r in results)]
    by_name: dict[str, dict[str, CheckResult]] = {}
    for r in results:
        by_name.setdefault(r.name, {})[r.prop] = r
    width = max([len(n) for n in by_name] + [4])
    header = "name".ljust(width) + "  " + "  ".join(p[:10].ljust(10) for p in present)
    print(f"backend: {jax.default_backend()}  devices: {jax.device_count()}", file=file)
    print(header, file=file)
    print("-" * len(header), file=file)
    for name, row in by_name.items():
        cells = []
        for p in present:
            r = row.get(p)
            cell = "-" if r is None else ("FAIL" if not r.ok else "skip" if r.detail.startswith("skipped") else "pass")
            cells.append(cell.ljust(10))
        print(name.ljust(width) + "  " + "  ".join(cells), file=file)
    failures = [r for r in results if not r.ok]
    skipped = [r for r in results if r.ok and r.detail.startswith("skipped")]
    n_ok = sum(r.ok for r in results) - len(skipped)
    print(f"\n{n_ok} passed, {len(failures)} failed, {len(skipped)} skipped", file=file)
    for r in skipped[:5]:
        print(f"skip {r.name}.{r.prop}: {r.detail}", file=file)
    for r in failures:
        print(f"FAIL {r.name}.{r.prop}: {r.detail}", file=file)
    return not failures
