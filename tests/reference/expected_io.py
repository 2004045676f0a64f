"""What every ``make_expected_<family>.py`` generator shares (no lossjax import here).

The protocol, which ``lossjax.testing`` checks against:

- inputs come from ``tests/reference/inputs/<family>.json`` (written by
  ``dump_inputs.py``); each entry lists ``cases`` with ``args``, ``kwargs``,
  ``variant`` (hyperparameters merged into the kwargs) and a ``fingerprint``;
- the expected ``value`` is the loss's primary output computed in float64 by an
  independent implementation; ``grads`` are the gradients, with respect to the
  arguments in ``diff_argnums``, of ``sum(cotangent(out.shape) * out)`` with
  :func:`cotangent` below (the same formula as ``lossjax.testing.cotangent``);
- transforms: ``steps_updates`` are the output updates of the
  ``lossjax.testing.transform_steps`` protocol (``state = init(params)``; each
  step ``out, state = update(updates, state, params, **extra_args)`` with the
  sample's fixed ``updates``, then ``params = params + out``);
- every entry names its ``source``: the upstream call (with its version), the
  port (with the upstream file and commit) or the closed form.
"""

from __future__ import annotations

import json
import math
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

HERE = pathlib.Path(__file__).parent
EXPECTED = HERE.parent.parent / "lossjax" / "expected"


def cotangent(shape) -> np.ndarray:
    """``1 + 0.5 cos(k)`` over the flat index (1 for a scalar); float64."""
    shape = tuple(shape)
    n = int(np.prod(shape)) if shape else 1
    ct = 1.0 + 0.5 * np.cos(np.arange(n, dtype=np.float64))
    return ct.reshape(shape) if shape else np.asarray(1.0)


def decode(x: Any) -> Any:
    """JSON form -> numpy (float arrays become float64; ``"inf"``/``"-inf"``/None become inf/-inf/NaN)."""
    if isinstance(x, Mapping) and "prng_key_data" in x:
        return {"prng_key_data": np.asarray(x["prng_key_data"], np.uint32)}
    if isinstance(x, Mapping) and "data" in x and "shape" in x:
        dt = np.dtype(x["dtype"]) if x["dtype"] != "bfloat16" else np.dtype(np.float32)
        if dt.kind == "f":
            data = [np.nan if v is None else float(v) for v in x["data"]]
            return np.asarray(data, np.float64).reshape(x["shape"])
        return np.asarray(x["data"], dt).reshape(x["shape"])
    if isinstance(x, Mapping) and "namedtuple" in x:
        return {k: decode(v) for k, v in x["fields"].items()}
    if isinstance(x, Mapping):
        return {k: decode(v) for k, v in x.items()}
    if isinstance(x, list):
        return [decode(v) for v in x]
    return x


def encode(x: Any) -> Any:
    """numpy / torch / nested -> JSON form (float64 values)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    if isinstance(x, (np.ndarray, np.generic, float, int)) and not isinstance(x, bool):
        a = np.asarray(x)
        if a.dtype.kind in "fc":
            data = [
                None if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else v
                for v in a.astype(np.float64).ravel().tolist()
            ]
            return {"dtype": "float64", "shape": list(a.shape), "data": data}
        return {"dtype": str(a.dtype), "shape": list(a.shape), "data": a.ravel().tolist()}
    if isinstance(x, Mapping):
        return {k: encode(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [encode(v) for v in x]
    return x


def load_inputs(family: str) -> dict[str, Any]:
    return json.loads((HERE / "inputs" / f"{family}.json").read_text())


def case_inputs(case: Mapping[str, Any]) -> tuple[list, dict]:
    """``(args, kwargs)`` of a case, decoded, with the variant merged into the kwargs."""
    args = decode(case["args"])
    kwargs = {**decode(case["kwargs"]), **decode(case.get("variant", {}))}
    return args, kwargs


def torch_value_and_grads(fn: Callable, args: list, diff_argnums, **kwargs) -> tuple[Any, list]:
    """Float64 torch value of ``fn(*args, **kwargs)`` and the gradients of ``sum(cotangent * out)``."""
    import torch

    targs = []
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray):
            t = torch.tensor(a, dtype=torch.float64 if a.dtype.kind == "f" else None)
            if i in diff_argnums:
                t.requires_grad_(True)
            targs.append(t)
        else:
            targs.append(a)
    out = fn(*targs, **kwargs)
    value = out[0] if isinstance(out, tuple) else out
    grads = []
    if diff_argnums:
        ct = torch.tensor(cotangent(tuple(value.shape)), dtype=torch.float64)
        total = (ct * value).sum()
        grads = list(torch.autograd.grad(total, [targs[i] for i in diff_argnums], allow_unused=True))
        grads = [torch.zeros_like(targs[i]) if g is None else g for g, i in zip(grads, diff_argnums, strict=True)]
    return out, grads


def numeric_grads(fn: Callable, args: list, diff_argnums, *, step: float = 1e-6) -> list[np.ndarray]:
    """Central differences of ``sum(cotangent * fn(*args))`` in float64 (for closed forms without autograd)."""
    base = np.asarray(fn(*args), np.float64)
    ct = cotangent(base.shape)
    out = []
    for i in diff_argnums:
        a = np.asarray(args[i], np.float64)
        g = np.zeros_like(a)
        for k in np.ndindex(a.shape):
            if not np.isfinite(a[k]):
                continue  # an infinite input gets a zero gradient
            hi, lo = a.copy(), a.copy()
            h = step * max(1.0, abs(a[k]))
            hi[k] += h
            lo[k] -= h
            fa = list(args)
            fa[i] = hi
            fb = list(args)
            fb[i] = lo
            g[k] = np.sum(ct * (np.asarray(fn(*fa), np.float64) - np.asarray(fn(*fb), np.float64))) / (2 * h)
        out.append(g)
    return out


def write_expected(family: str, records: Mapping[str, Any]) -> pathlib.Path:
    """Merges ``records`` (``{name: {"source", "cases"}}``) into ``lossjax/expected/<family>.json``."""
    EXPECTED.mkdir(exist_ok=True)
    path = EXPECTED / f"{family}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(records)
    path.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n")
    return path


def expected_case(case: Mapping[str, Any], value: Any, grads=(), aux: Any = None) -> dict[str, Any]:
    """One expected case in the file format (keeps the input case's name, variant and fingerprint)."""
    out = {"case": case["case"], "variant": case.get("variant", {}), "fingerprint": case["fingerprint"]}
    out["value"] = encode(value)
    if grads is not None and len(grads):
        out["grads"] = [encode(g) for g in grads]
    if aux is not None:
        out["aux"] = encode(aux)
    return out
