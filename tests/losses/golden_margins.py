"""Golden-case helpers shared by the margins, proxies, metric (OPL, TCM) and selfsup tests.

The cases come from tests/reference/margins.json (written by
tests/reference/make_margins.py). The JSON keeps the argument names of the
day it was written; :func:`kwargs_of` maps them to today's names.
"""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import lossjax
from lossjax.losses._margins import AdaFaceState

REF = json.loads((pathlib.Path(__file__).parents[1] / "reference" / "margins.json").read_text())["cases"]

# fn -> {name in the JSON: name today}
RENAMED = {
    "sphereface2_loss": {"margin_type": "variant"},
    "proxy_anchor_loss": {"alpha": "scale"},
    "soft_triple_loss": {"gamma": "center_temperature"},
    "soft_triple_regularizer": {"tau": "regularizer_weight"},
    "orthogonal_projection_loss": {"gamma": "neg_weight"},
    "threshold_consistent_margin_loss": {
        "margin_plus": "pos_margin",
        "margin_minus": "neg_margin",
        "lambda_plus": "pos_weight",
        "lambda_minus": "neg_weight",
    },
}


def case_names(fns) -> list[str]:
    """The names of the golden cases of the functions ``fns``."""
    return sorted(k for k, v in REF.items() if v["fn"] in fns)


def kwargs_of(case, dtype=None) -> dict:
    """The case's keyword arguments under today's names (AdaFace's ``t_alpha`` is ``1 - decay``)."""
    renamed = RENAMED.get(case["fn"], {})
    kwargs = {renamed.get(k, k): v for k, v in case["kwargs"].items()}
    if "t_alpha" in kwargs:
        kwargs["decay"] = 1.0 - kwargs.pop("t_alpha")
    if "state" in kwargs:
        kwargs["state"] = AdaFaceState(*(jnp.asarray(s, dtype) for s in kwargs["state"]))
    return kwargs


def run_case(case):
    """The loss's output and the gradient of its summed value w.r.t. the float inputs, in float64.

    Call inside ``jax.enable_x64(True)``. Returns ``(out, {input name: gradient})``.
    """
    fn = getattr(lossjax.losses, case["fn"])
    names = list(case["inputs"])
    arrays = {k: jnp.asarray(np.asarray(v)) for k, v in case["inputs"].items()}
    kwargs = kwargs_of(case, jnp.float64)
    floats = [k for k in names if jnp.issubdtype(arrays[k].dtype, jnp.floating)]

    def f(*fl):
        a = dict(arrays, **dict(zip(floats, fl, strict=True)))
        out = fn(*(a[k] for k in names), **kwargs)
        value = out[0] if isinstance(out, tuple) else out
        return jnp.sum(value), out

    # jitted: one compile per case instead of one eager compile per op and shape
    (_, out), grads = jax.jit(jax.value_and_grad(f, argnums=tuple(range(len(floats))), has_aux=True))(
        *(arrays[k] for k in floats)
    )
    return out, dict(zip(floats, grads, strict=True))


def run_case_float32(case):
    """The loss's value on the case's inputs cast to float32 (integers kept)."""
    fn = getattr(lossjax.losses, case["fn"])
    args = [
        np.asarray(v).astype(np.float32) if np.asarray(v).dtype.kind == "f" else np.asarray(v)
        for v in case["inputs"].values()
    ]
    out = fn(*args, **kwargs_of(case, jnp.float32))
    return out[0] if isinstance(out, tuple) else out
