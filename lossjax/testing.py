"""The public conformance suite: every registered loss and transform, on your backend.

Run it from the shell with ``lossjax check [NAME ...]`` or from Python::

    import lossjax.testing
    results = lossjax.testing.run()          # every entry, every property
    lossjax.testing.print_table(results)

Each registered entry declares the inputs the suite uses (:class:`Sample` for
losses, :class:`TransformSample` for transforms). The properties checked for
a loss are:

==============  ==============================================================
``kind``        the output is what the registered kind promises: the batch
                shape (``per_example``), a scalar (``batch``), and a
                ``(value, state)`` pair exactly when ``has_aux``.
``jit``         ``jax.jit(f)(x)`` equals ``f(x)``.
``vmap``        ``vmap`` over an extra leading axis equals a Python loop.
``where``       a ``where`` mask equals slicing the batch; masked entries are 0.
``all_masked``  an all-masked batch gives 0 and finite (zero) gradients.
``extremes``    extreme inputs (logits of +-1e4, zeros, probabilities 0 and 1)
                give finite values and gradients.
``bf16``        bf16 inputs give a float32 result close to the float32 one.
``x64``         under ``jax_enable_x64`` float32 inputs give float32 and no
                float64 op is traced; float64 inputs give float64.
``grad``        ``jax.test_util.check_grads`` in float64.
``export``      the loss and its gradient lower for CPU, CUDA and TPU.
``registry``    ``from_config(get(name).to_config())`` gives the same values.
==============  ==============================================================

For transforms: ``jit``, ``finite`` (zero and random updates give finite
updates and state), ``state`` (a NamedTuple of arrays), ``export`` and
``registry``.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import registry
from lossjax.registry import Sample, TransformSample

__all__ = [
    "LOSS_PROPERTIES",
    "TRANSFORM_PROPERTIES",
    "CheckResult",
    "assert_close",
    "check",
    "print_table",
    "properties_for",
    "run",
    "tolerances",
]

PLATFORMS = ("cpu", "cuda", "tpu")
LOSS_PROPERTIES = (
    "kind",
    "jit",
    "vmap",
    "where",
    "all_masked",
    "extremes",
    "bf16",
    "x64",
    "grad",
    "export",
    "registry",
)
TRANSFORM_PROPERTIES = ("jit", "finite", "state", "export", "registry")


@dataclasses.dataclass(frozen=True)
class CheckResult:
    name: str
    prop: str
    ok: bool
    detail: str = ""
    seconds: float = 0.0


def tolerances(dtype: Any, backend: str | None = None) -> dict[str, float]:
    """The one place tolerances live: ``{"rtol": ..., "atol": ...}`` for a dtype and backend."""
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


def _is_number_list(x) -> bool:
    if isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):
        return len(x) > 0 and all(_is_number_list(v) for v in x)
    return isinstance(x, (int, float, np.number))


def assert_close(actual: Any, expected: Any, *, dtype: Any = jnp.float32, err: str = "", **override) -> None:
    """``np.testing.assert_allclose`` over pytrees with :func:`tolerances`."""
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
    """The mask broadcast to the loss's batch shape (leading axis only)."""
    out = _primary(jax.eval_shape(lambda a: _call(entry, sample, a), sample.args), entry)
    batch_ndim = max(len(out.shape), 1) if entry.kind == "per_example" else 1
    return jnp.asarray(mask.reshape(mask.shape + (1,) * (batch_ndim - 1)))


def _with_diff(sample: Sample, args, diff):
    args = list(args)
    for i, d in zip(sample.diff_argnums, diff, strict=True):
        args[i] = d
    return tuple(args)


def _diff(sample: Sample, args):
    return tuple(args[i] for i in sample.diff_argnums)


def _scalar_objective(entry, sample: Sample, args_fixed, where=None, kwargs=None):
    """A function of the differentiated args returning a scalar."""

    def f(*diff):
        out = _call(entry, sample, _with_diff(sample, args_fixed, diff), where=where, kwargs=kwargs)
        return jnp.sum(_primary(out, entry))

    return f


def _out_and_grads(entry, sample, args, where=None, kwargs=None):
    """``(output, gradients of sum(primary output) wrt the differentiated args)`` in one pass."""

    def f(*diff):
        out = _call(entry, sample, _with_diff(sample, args, diff), where=where, kwargs=kwargs)
        return jnp.sum(_primary(out, entry)), out

    if not sample.diff_argnums:
        return f()[1], ()
    (_, out), grads = jax.value_and_grad(f, argnums=tuple(range(len(sample.diff_argnums))), has_aux=True)(
        *_diff(sample, args)
    )
    return out, grads


def _all_finite(tree) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(x, np.float64)))) for x in jax.tree.leaves(tree) if _is_float(x))


def _auto_extremes(sample: Sample) -> tuple[tuple, ...]:
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
        out.append(tuple(args))
    return tuple(out)


# ------------------------------ properties --------------------------------
# Each property compiles as little as it can (one jit where possible, shapes
# from eval_shape): the suite runs ~10 properties for every registered entry.


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
    eager = _call(entry, sample, sample.args)
    jitted = jax.jit(lambda *a: _call(entry, sample, a))(*sample.args)
    assert_close(jitted, eager, err=f"{entry.name}: jit != eager")


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
    single = jax.jit(lambda *a: _call(entry, sample, a))
    loop = [single(*sample.args), single(*second)]
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
    out, grads = jax.jit(lambda a, w: _out_and_grads(entry, sample, a, where=w))(tuple(garbage), w)
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
    out, grads = jax.jit(lambda a, w: _out_and_grads(entry, sample, a, where=w))(sample.args, w)
    out = _primary(out, entry)
    assert np.all(np.asarray(out) == 0), f"{entry.name}: all-masked batch must give 0, got {out}"
    assert _all_finite(grads), f"{entry.name}: all-masked batch gave non-finite gradients"
    assert all(np.all(np.asarray(g) == 0) for g in jax.tree.leaves(grads)), f"{entry.name}: all-masked gradients != 0"


def _p_extremes(entry, sample):
    cases = sample.extremes if sample.extremes is not None else _auto_extremes(sample)
    fn = jax.jit(lambda a: _out_and_grads(entry, sample, a))
    for k, args in enumerate(cases):
        out, grads = fn(tuple(args))
        assert _all_finite(out), f"{entry.name}: extreme case {k} gave a non-finite value {out}"
        assert _all_finite(grads), f"{entry.name}: extreme case {k} gave a non-finite gradient"


def _float_argnums(sample):
    return [i for i, a in enumerate(sample.args) if _is_float(np.asarray(a))]


def _p_bf16(entry, sample):
    fl = _float_argnums(sample)
    if not fl:
        return "no float inputs"
    low = tuple(jnp.asarray(a, jnp.bfloat16) if i in fl else a for i, a in enumerate(sample.args))
    up = tuple(jnp.asarray(a, jnp.float32) if i in fl else a for i, a in enumerate(low))
    both = jax.jit(lambda lo, hi: (_call(entry, sample, lo), _call(entry, sample, hi)))
    out_low, out_up = (_primary(o, entry) for o in both(low, up))
    for leaf in jax.tree.leaves(out_low):
        assert leaf.dtype == jnp.float32, f"{entry.name}: bf16 inputs must give float32, got {leaf.dtype}"
    assert_close(out_low, out_up, rtol=sample.bf16_tol, atol=sample.bf16_tol, err=f"{entry.name}: bf16 result")


def _jaxpr_f64_ops(jaxpr) -> list[str]:
    bad = []

    def visit(jx):
        for eqn in jx.eqns:
            for v in eqn.outvars:
                if hasattr(v, "aval") and getattr(v.aval, "dtype", None) in (jnp.float64, jnp.complex128):
                    bad.append(str(eqn.primitive))
            for sub in jax.core.subjaxprs(eqn) if hasattr(jax.core, "subjaxprs") else []:
                visit(sub)
            for p in eqn.params.values():
                if hasattr(p, "jaxpr") and hasattr(p.jaxpr, "eqns"):
                    visit(p.jaxpr)
                elif hasattr(p, "eqns"):
                    visit(p)

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
    if not sample.diff_argnums:
        return "no differentiable input"
    from jax.test_util import check_grads

    with jax.enable_x64(True):
        args = _cast_floats(tuple(jnp.asarray(a) for a in sample.args), jnp.float64)
        kw = _cast_floats(dict(sample.kwargs), jnp.float64)
        f = jax.jit(_scalar_objective(entry, sample, args, kwargs=kw))
        if sample.surrogate_grad:
            argnums = tuple(range(len(sample.diff_argnums)))
            g64 = jax.jit(jax.grad(f, argnums=argnums))(*_diff(sample, args))
            assert _all_finite(g64), f"{entry.name}: non-finite float64 surrogate gradient"
            assert any(np.any(np.asarray(g) != 0) for g in g64), f"{entry.name}: surrogate gradient is all zeros"
            f32 = _scalar_objective(entry, sample, sample.args)
            g32 = jax.jit(jax.grad(f32, argnums=argnums))(*_diff(sample, sample.args))
            assert_close(g32, g64, err=f"{entry.name}: float32 surrogate gradient != float64", rtol=1e-4, atol=1e-5)
            return None
        check_grads(
            f,
            _diff(sample, args),
            order=1,
            modes=("rev",),
            eps=sample.grad_eps,
            atol=sample.grad_tol,
            rtol=sample.grad_tol,
        )


def _p_export(entry, sample):
    f = jax.jit(lambda *a: _call(entry, sample, a))
    jax.export.export(f, platforms=PLATFORMS)(*sample.args)
    if sample.diff_argnums:
        g = jax.jit(lambda *a: _out_and_grads(entry, sample, a))
        jax.export.export(g, platforms=PLATFORMS)(*sample.args)




def _p_registry(entry, sample):
    # Required hyperparameters (e.g. class counts) come from the sample's kwargs.
    hp = {k: sample.kwargs[k] for k in entry.required() if k in sample.kwargs}
    hp = {k: (np.asarray(v).tolist() if hasattr(v, "shape") else v) for k, v in hp.items()}
    configured = registry.get(entry.name, **hp)
    rebuilt = registry.from_config(configured.to_config())
    assert rebuilt.to_config() == configured.to_config(), f"{entry.name}: config does not round-trip"
    rest = {k: v for k, v in sample.kwargs.items() if k not in hp}
    a, b, c = jax.jit(lambda *x: (configured(*x, **rest), rebuilt(*x, **rest), entry.fn(*x, **sample.kwargs)))(
        *sample.args
    )
    assert_close(a, c, err=f"{entry.name}: registry-built loss != the function")
    assert_close(b, c, err=f"{entry.name}: rebuilt loss != the function")
    for alias in entry.aliases:
        assert registry.get_entry(alias) is entry
    assert registry.describe(entry.name)


_LOSS_CHECKS: dict[str, Callable] = {
    "kind": _p_kind,
    "jit": _p_jit,
    "vmap": _p_vmap,
    "where": _p_where,
    "all_masked": _p_all_masked,
    "extremes": _p_extremes,
    "bf16": _p_bf16,
    "x64": _p_x64,
    "grad": _p_grad,
    "export": _p_export,
    "registry": _p_registry,
}

# ------------------------------ transforms --------------------------------


def _tx_parts(entry, ts: TransformSample):
    tx = registry.get(entry.name, **ts.hyperparams)
    arrays = {k: v for k, v in ts.extra_args.items() if not callable(v)}
    fns = {k: v for k, v in ts.extra_args.items() if callable(v)}

    def step(updates, params, arrays):
        state = tx.init(params)
        return tx.update(updates, state, params, **arrays, **fns)

    return tx, step, arrays


def _t_jit(entry, ts):
    _, step, arrays = _tx_parts(entry, ts)
    eager = step(ts.updates, ts.params, arrays)
    jitted = jax.jit(step)(ts.updates, ts.params, arrays)
    assert_close(jitted, eager, err=f"{entry.name}: jitted update != eager", rtol=1e-4, atol=1e-5)


def _t_finite(entry, ts):
    _, step, arrays = _tx_parts(entry, ts)
    step = jax.jit(step)
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


def _t_export(entry, ts):
    _, step, arrays = _tx_parts(entry, ts)
    jax.export.export(jax.jit(step), platforms=PLATFORMS)(ts.updates, ts.params, arrays)


def _t_registry(entry, ts):
    tx, step, arrays = _tx_parts(entry, ts)
    rebuilt = registry.from_config(tx.to_config())
    assert rebuilt.to_config() == tx.to_config(), f"{entry.name}: config does not round-trip"
    fns = {k: v for k, v in ts.extra_args.items() if callable(v)}
    a = step(ts.updates, ts.params, arrays)
    b = rebuilt.update(ts.updates, rebuilt.init(ts.params), ts.params, **arrays, **fns)
    assert_close(a, b, err=f"{entry.name}: rebuilt transform differs", rtol=1e-4, atol=1e-5)
    assert registry.describe(entry.name)


_TRANSFORM_CHECKS: dict[str, Callable] = {
    "jit": _t_jit,
    "finite": _t_finite,
    "state": _t_state,
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
    """The properties that apply to an entry."""
    entry = registry.get_entry(name)
    if entry.kind == "transform":
        return TRANSFORM_PROPERTIES
    s = _sample(entry)
    props = list(LOSS_PROPERTIES)
    if not s.where or entry.kind == "function":
        props = [p for p in props if p not in ("where", "all_masked")]
    if not s.diff_argnums:
        props = [p for p in props if p not in ("grad", "extremes")]
    if not _float_argnums(s):
        props = [p for p in props if p != "bf16"]
    return tuple(props)


def check(name: str, prop: str) -> str | None:
    """Runs one property of one entry; raises AssertionError (or the loss's error) on failure."""
    entry = registry.get_entry(name)
    checks = _TRANSFORM_CHECKS if entry.kind == "transform" else _LOSS_CHECKS
    if prop not in checks:
        raise ValueError(f"lossjax.testing.check: unknown property {prop!r}; known: {sorted(checks)}")
    # As strict as the test session: implicit rank promotion is an error.
    with jax.numpy_rank_promotion("raise"):
        return checks[prop](entry, _sample(entry))


def run(names: Iterable[str] | None = None, properties: Sequence[str] | None = None) -> list[CheckResult]:
    """Runs the suite; returns one :class:`CheckResult` per (entry, property)."""
    names = list(names) if names else registry.available()
    results = []
    for name in names:
        canonical = registry.get_entry(name).name
        try:
            props = properties_for(canonical)
        except Exception as e:  # a broken sample is a failure of every property
            results.append(CheckResult(canonical, "sample", False, f"{type(e).__name__}: {e}"))
            continue
        for prop in props:
            if properties and prop not in properties:
                continue
            t0 = time.perf_counter()
            try:
                check(canonical, prop)
                results.append(CheckResult(canonical, prop, True, "", time.perf_counter() - t0))
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
    return results


def print_table(results: Sequence[CheckResult], *, file=None) -> bool:
    """Prints a name x property table of pass/fail; returns True if all passed."""
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
            cells.append(("-" if r is None else ("pass" if r.ok else "FAIL")).ljust(10))
        print(name.ljust(width) + "  " + "  ".join(cells), file=file)
    failures = [r for r in results if not r.ok]
    n_ok = sum(r.ok for r in results)
    print(f"\n{n_ok} passed, {len(failures)} failed", file=file)
    for r in failures:
        print(f"FAIL {r.name}.{r.prop}: {r.detail}", file=file)
    return not failures
