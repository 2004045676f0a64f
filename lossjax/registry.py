"""Names -> losses and transforms; config specs; weighted sums.

Every public loss and transform of lossjax is recorded here by
:func:`register`. A config file can then name any of them:

>>> import lossjax
>>> ce = lossjax.get("softmax_cross_entropy(label_smoothing=0.1)")
>>> ce.to_config()
{'name': 'softmax_cross_entropy', 'label_smoothing': 0.1}
>>> combo = lossjax.compose("softmax_cross_entropy + 0.5 * focal_loss(gamma=1.0)")
>>> combo.to_config()["terms"][1]
{'name': 'focal_loss', 'weight': 0.5, 'gamma': 1.0}

Specs are plain data: a string, a dict (``{"name": "focal_loss", "gamma": 2.0}``),
or a weighted sum (a string with ``+``/``*``, a list of terms, or
``{"terms": [...]}``). Strings are parsed with :mod:`ast` into literals only;
nothing is evaluated.

One return contract: :func:`get` builds ONE loss (or transform) and the result
returns exactly what the loss returns, whatever its weight; :func:`compose`
builds a weighted sum and it always returns ``(total, terms)``, even for one term.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import json
import math
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from lossjax import _checks

__all__ = [
    "KINDS",
    "ComposedLoss",
    "ConfiguredLoss",
    "Entry",
    "Sample",
    "TransformSample",
    "available",
    "compose",
    "describe",
    "entry_of",
    "from_config",
    "get",
    "get_entry",
    "optimizer",
    "parse_spec",
    "register",
    "spec_schema",
]

#: Kinds of registered objects.
#: per_example: returns a loss per example (the batch shape), unreduced.
#: batch: returns one value for the whole batch (metric learning, listwise, set overlap).
#: function: a pure helper computed from data (weights, margins, state updates); no `where`.
#: transform: an optax GradientTransformation factory.
KINDS = ("per_example", "batch", "function", "transform")

_RUNTIME_DEFAULT = ("where",)


# ----------------- samples: the inputs the conformance suite uses -----------------


@dataclasses.dataclass(frozen=True)
class Sample:
    """Inputs the conformance suite calls a loss with.

    Attributes:
      args: positional arrays (numpy, float32 for floats). Batched arguments
        carry the batch on their leading axis.
      kwargs: keyword arguments passed on every call (extra arrays such as
        class counts, a PRNG ``key``, a ``state``), never batched.
      diff_argnums: positional arguments the gradient checks differentiate
        (floating point). Empty for losses with no differentiable input.
      batched_argnums: positional arguments that carry the batch axis
        (default: all of them). ``where`` masks their leading axis.
      extremes: tuples of positional args with extreme values; ``None`` means
        automatic: every differentiated argument scaled to magnitude 1e4, and
        set to zeros.
      where: whether the loss takes ``where`` (False for kind ``function``).
      grad_eps: finite-difference step for ``check_grads`` (float64).
      grad_tol: tolerance for ``check_grads``.
      surrogate_grad: the gradient is a surrogate by design (``stop_gradient``
        weights, EnsLoss-style derivatives), so finite differences of the value
        cannot match it; ``grad`` then checks that the float64 gradient is
        finite, nonzero and equal to the float32 one (the family tests check
        its value against the reference).
      bf16_tol: relative/absolute tolerance of the ``bf16`` check, which
        compares bf16 inputs with the same (bf16-rounded) values in float32.
        ``None`` (the default) means float32 tolerances: the dtype policy
        computes in float32, so the two must agree to float32 precision. Only
        a loss that keeps half-precision operands on purpose (a fused matmul)
        declares a looser one, and says why.
      variants: hyperparameter dicts; every property runs on the sample with
        each of them too (e.g. z-loss and soft-capping switched on).
      class_axis: the first argument is ``logits [..., C]`` with classes on the
        last axis (and the second, when integer, the labels): the suite then
        adds the softmax edge cases (``-inf`` in a non-target class, mixed
        magnitudes in one row, a confidently wrong row).
      value_tol: ``{"rtol": ..., "atol": ...}`` for the ``value`` check when the
        float32 computation legitimately loses more than the backend's default
        (large logit scales); documented where used.
      expected: independent expected outputs for user-registered losses (the
        library's own live in ``lossjax/expected/*.json``): a mapping in the
        same format as one entry of those files.
      fuzz_scaled: the arguments the ``fuzz`` property may rescale (default:
        the differentiated ones); ``()`` for inputs with a bounded domain
        (probabilities, log-probabilities of a fixed sum).
      batched_kwargs: keyword arguments that carry the batch on their leading
        axis (e.g. a per-token mask ``token_where``): ``fuzz`` resamples their
        rows with the positional arguments'.
      fuzz_batch: ``fuzz`` may change the batch size (False when an input's
        shape ties two batch axes together, e.g. a ``[B, B]`` prior).
    """

    args: tuple
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    diff_argnums: tuple[int, ...] = (0,)
    batched_argnums: tuple[int, ...] | None = None
    extremes: tuple[tuple, ...] | None = None
    where: bool = True
    grad_eps: float = 1e-4
    grad_tol: float = 1e-4
    bf16_tol: float | None = None
    surrogate_grad: bool = False
    variants: tuple[Mapping[str, Any], ...] = ()
    class_axis: bool = False
    value_tol: Mapping[str, float] | None = None
    expected: Mapping[str, Any] | None = None
    fuzz_scaled: tuple[int, ...] | None = None
    batched_kwargs: tuple[str, ...] = ()
    fuzz_batch: bool = True


@dataclasses.dataclass(frozen=True)
class TransformSample:
    """Inputs the conformance suite runs a transform with.

    Attributes:
      params: a parameter pytree.
      updates: what ``update`` takes: a gradient pytree like ``params``, or
        per-loss gradients stacked on a leading axis for aggregators.
      hyperparams: factory arguments for ``lossjax.get(name, **hyperparams)``.
      extra_args: keyword arguments for ``update`` (e.g. ``grad_fn`` or loss
        values); callables are closed over, arrays traced.
      variants: more hyperparameter dicts; every property runs on each.
      value_tol: ``{"rtol": ..., "atol": ...}`` for the ``value`` check.
      expected: independent expected updates for user-registered transforms
        (the library's own live in ``lossjax/expected/*.json``).
    """

    params: Any
    updates: Any
    hyperparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    extra_args: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    variants: tuple[Mapping[str, Any], ...] = ()
    value_tol: Mapping[str, float] | None = None
    expected: Mapping[str, Any] | None = None


# ------------------------------- the registry -------------------------------


@dataclasses.dataclass(frozen=True)
class Entry:
    """What the registry knows about one loss or transform."""

    name: str
    fn: Callable[..., Any]
    family: str
    kind: str
    aliases: tuple[str, ...]
    paper: str
    reference: str
    formula: str
    hyperparams: Mapping[str, Any]  # name -> default (inspect.Parameter.empty if required)
    runtime: tuple[str, ...]  # keyword arguments given per call, not configured
    sample: Callable[[], Any] | None
    has_aux: bool
    allow_nonfinite: tuple[str, ...] = ()  # inputs that may legitimately hold NaN/inf (debug mode skips them)

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.fn) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    def required(self) -> list[str]:
        return [k for k, v in self.hyperparams.items() if v is inspect.Parameter.empty]


_REGISTRY: dict[str, Entry] = {}
_ALIASES: dict[str, str] = {}


def register(
    name: str,
    *,
    family: str,
    kind: str,
    aliases: Sequence[str] = (),
    paper: str = "",
    reference: str = "",
    formula: str = "",
    sample: Callable[[], Any] | None = None,
    runtime: Sequence[str] = (),
    has_aux: bool = False,
    allow_nonfinite: Sequence[str] = (),
):
    """Decorator that records a loss or transform factory under ``name``.

    Args:
      name: the identifier (the catalog's, for catalog entries).
      family: the family (``classification``, ``metric``, ``sam`` ...).
      kind: one of :data:`KINDS`.
      aliases: other names that resolve to this entry.
      paper: title, year and arXiv id of the paper.
      reference: the trusted implementation its values are tested against.
      formula: the formula in one line (plain text or LaTeX).
      sample: zero-argument callable returning the
        :class:`Sample` (losses) or
        :class:`TransformSample` (transforms) the conformance
        suite runs on.
      runtime: keyword-only arguments given per call rather than configured
        (``where`` always is; e.g. ``key`` for a PRNG key, ``state``).
      has_aux: the function returns ``(loss, aux)`` (e.g. a new state).
      allow_nonfinite: arguments that may legitimately hold NaN or inf (e.g. a
        lookup table marking entries that do not apply with NaN); debug mode's
        finite-input check skips them.

    Returns:
      The decorator; it returns the function unchanged.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> @lossjax.register("my_l1", family="examples", kind="per_example", paper="none")
      ... def my_l1(predictions, targets, *, where=None):
      ...     return jnp.abs(predictions - targets)
      >>> lossjax.get("my_l1")(jnp.array([1.0]), jnp.array([3.0]))
      Array([2.], dtype=float32)
      >>> lossjax.registry.unregister("my_l1")
    """
    if kind not in KINDS:
        raise ValueError(f"register: `kind` must be one of {KINDS}, got {kind!r}.")

    def deco(fn):
        runtime_all = tuple(dict.fromkeys(_RUNTIME_DEFAULT + tuple(runtime)))
        sig = inspect.signature(fn)
        hyper: dict[str, Any] = {}
        for p in sig.parameters.values():
            if kind == "transform":
                if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in runtime_all:
                    continue
                hyper[p.name] = p.default
            elif p.kind == p.KEYWORD_ONLY and p.name not in runtime_all:
                hyper[p.name] = p.default
        entry = Entry(
            name=name,
            fn=fn,
            family=family,
            kind=kind,
            aliases=tuple(aliases),
            paper=paper,
            reference=reference,
            formula=formula,
            hyperparams=hyper,
            runtime=runtime_all,
            sample=sample,
            has_aux=has_aux,
            allow_nonfinite=tuple(allow_nonfinite),
        )
        previous = _REGISTRY.get(name)
        if previous is not None and _same_function(previous.fn, fn):
            unregister(name)  # the same module imported again (importlib.reload, doctest collection)
        for key in (name, *aliases):
            if key in _REGISTRY or key in _ALIASES:
                raise ValueError(f"register: the name {key!r} is already registered.")
        _REGISTRY[name] = entry
        for a in aliases:
            _ALIASES[a] = name
        return fn

    return deco


def _same_function(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    return (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def entry_of(fn: Callable[..., Any]) -> Entry | None:
    """The :class:`Entry` a function is registered as, or None.

    Args:
      fn: a function.

    Returns:
      Its registry entry, or None when it is not registered.

    Example:
      >>> import lossjax
      >>> lossjax.registry.entry_of(lossjax.losses.focal_loss).name
      'focal_loss'
    """
    _ensure_loaded()
    return next((e for e in _REGISTRY.values() if e.fn is fn), None)


def unregister(name: str) -> None:
    """Removes an entry (for tests that register throw-away losses)."""
    entry = _REGISTRY.pop(name)
    for a in entry.aliases:
        _ALIASES.pop(a, None)


def _ensure_loaded() -> None:
    # Importing the subpackages runs their @register decorators.
    import lossjax.losses
    import lossjax.transforms  # noqa: F401


def _all_names() -> list[str]:
    return sorted(set(_REGISTRY) | set(_ALIASES))


_MAX_NAME = 200  # longer names are answered at once, without a similarity search
_MAX_SPEC = 20_000  # characters of a spec string
_MAX_TERMS = 256  # terms of a weighted sum
# Words a spec gives meaning to: `name` and `weight` in a term; `terms` and `chain` make a dict a sum or a
# chain. (`reduction` is a composed loss's option at the top of a sum, and may be a loss's own hyperparameter.)
_RESERVED = ("name", "weight", "terms", "chain")


def _normalize(name: str) -> str:
    """NFKC: look-alike Unicode spellings name the same entry in strings and dicts (as Python identifiers do)."""
    return unicodedata.normalize("NFKC", name)


def get_entry(name: str) -> Entry:
    """The :class:`Entry` for a name or alias; raises with close matches if unknown."""
    _ensure_loaded()
    if not isinstance(name, str):
        raise TypeError(f"lossjax.get: a name must be a string, got {type(name).__name__}.")
    if len(name) > _MAX_NAME:
        raise KeyError(f"lossjax: unknown loss or transform {name[:40]!r}... (a name of {len(name)} characters).")
    name = _normalize(name)
    canonical = _ALIASES.get(name, name)
    if canonical in _REGISTRY:
        return _REGISTRY[canonical]
    close = difflib.get_close_matches(name, _all_names(), n=5, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise KeyError(f"lossjax: unknown loss or transform {name!r}.{hint} `lossjax.available()` lists every name.")


def available(family: str | None = None, kind: str | None = None) -> list[str]:
    """Sorted names of the registered entries, optionally of one family and/or kind.

    Args:
      family: only this family (``lossjax list`` shows the families).
      kind: only this kind (one of :data:`KINDS`).

    Returns:
      A sorted list of canonical names (aliases are not listed).

    Raises:
      ValueError: an unknown family (with close matches) or kind.

    Example:
      >>> import lossjax
      >>> "focal_loss" in lossjax.available(family="classification")
      True
    """
    _ensure_loaded()
    if family is not None:
        families = sorted({e.family for e in _REGISTRY.values()})
        if family not in families:
            close = difflib.get_close_matches(family, families, n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(f"lossjax.available: unknown family {family!r}.{hint} Families: {', '.join(families)}.")
    if kind is not None:
        _checks.check_one_of("lossjax.available", "kind", kind, KINDS)
    return sorted(
        n for n, e in _REGISTRY.items() if (family is None or e.family == family) and (kind is None or e.kind == kind)
    )


def describe(name: str) -> str:
    """A human-readable description: formula, arguments and defaults, paper, reference.

    Args:
      name: a registered name or alias.

    Returns:
      The description as text (what ``lossjax describe NAME`` prints).

    Example:
      >>> import lossjax
      >>> lossjax.describe("ce").splitlines()[0]
      'softmax_cross_entropy  (classification, per_example)'
    """
    e = get_entry(name)
    lines = [f"{e.name}  ({e.family}, {e.kind})"]
    if e.aliases:
        lines.append(f"aliases: {', '.join(e.aliases)}")
    lines.append("")
    lines.append(e.summary)
    if e.formula:
        lines += ["", f"formula: {e.formula}"]
    sig = inspect.signature(e.fn)
    lines += ["", f"signature: {e.fn.__name__}{sig}"]
    if e.hyperparams:
        lines.append("hyperparameters:")
        for k, v in e.hyperparams.items():
            lines.append(f"  {k} = {'(required)' if v is inspect.Parameter.empty else repr(v)}")
    if e.kind == "transform" and e.sample is not None:
        extra = sorted(getattr(e.sample(), "extra_args", {}) or {})
        if extra:
            call = ", ".join(f"{k}=..." for k in extra)
            lines.append(f"update-time arguments: tx.update(updates, state, params, {call})")
    if e.paper:
        lines += ["", f"paper: {e.paper}"]
    if e.reference:
        lines.append(f"reference: {e.reference}")
    return "\n".join(lines)


def _check_hyperparams(entry: Entry, hp: Mapping[str, Any]) -> None:
    for k in hp:
        if k not in entry.hyperparams:
            allowed = sorted(entry.hyperparams)
            close = difflib.get_close_matches(k, allowed, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise TypeError(
                f"lossjax.get: {entry.name!r} has no hyperparameter {k!r}.{hint} Allowed: {allowed or 'none'}."
            )
    if entry.kind != "transform":
        missing = [k for k in entry.required() if k not in hp]
        if missing:
            raise TypeError(f"lossjax.get: {entry.name!r} needs the hyperparameter(s) {missing}.")


def _jsonable(v: Any) -> Any:
    if isinstance(v, (jax.Array,)) or hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    return v


def _as_static(v: Any) -> Any:
    # Lists from a config become arrays of their natural dtype when used.
    return jnp.asarray(v) if isinstance(v, list) else v


def _scale_primary(out: Any, weight: float, has_aux: bool) -> Any:
    if weight == 1.0:
        return out
    if has_aux:
        value, aux = out
        return jnp.asarray(weight, value.dtype) * value, aux
    return jnp.asarray(weight, out.dtype) * out


@dataclasses.dataclass(frozen=True)
class ConfiguredLoss:
    """A registered loss with its hyperparameters (and an optional weight) bound.

    Call it exactly like the loss: it returns what the loss returns (per-example
    values, a batch value, or ``(value, new_state)`` for a stateful loss), times
    ``weight``. A weight never changes the return type; weighted *sums* are
    built by :func:`compose`.
    """

    entry: Entry
    hyperparams: Mapping[str, Any]
    weight: float = 1.0

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def kind(self) -> str:
        return self.entry.kind

    def __call__(self, *args, **kwargs):
        hp = {k: _as_static(v) for k, v in self.hyperparams.items()}
        return _scale_primary(self.entry.fn(*args, **hp, **kwargs), self.weight, self.entry.has_aux)

    def to_config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"name": self.entry.name}
        if self.weight != 1.0:
            cfg["weight"] = self.weight
        cfg.update({k: _jsonable(v) for k, v in self.hyperparams.items()})
        return cfg

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparams.items())
        prefix = "" if self.weight == 1.0 else f"{self.weight!r} * "
        return f"{prefix}{self.entry.name}({args})"

    def __hash__(self):
        return hash(json.dumps(self.to_config(), sort_keys=True, default=str))


def _parameters(entry: Entry) -> tuple[tuple[str, ...], frozenset[str]]:
    """``(positional data names in order, every name the function accepts)``."""
    sig = inspect.signature(entry.fn)
    positional = tuple(
        p.name for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    )
    accepted = frozenset(
        p.name for p in sig.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY)
    )
    return positional, accepted


def _union_order(orders: Sequence[tuple[str, ...]]) -> tuple[tuple[str, ...], bool]:
    """The ordered union of the terms' positional names, and whether every term's order agrees with it."""
    union: list[str] = []
    for order in orders:
        for n in order:
            if n not in union:
                union.append(n)
    consistent = all([union.index(n) for n in order] == sorted(union.index(n) for n in order) for order in orders)
    return tuple(union), consistent


@dataclasses.dataclass(frozen=True)
class ComposedLoss:
    """A weighted sum of registered losses; always returns ``(total, terms)``.

    Built by :func:`compose`. Calling it routes every argument only to the
    terms that take it: positional arguments bind, in order, to the union of
    the terms' data arguments (``"softmax_cross_entropy + 1e-4 * z_loss"``
    called with ``(logits, labels)`` gives ``z_loss`` only the logits); keyword
    arguments go to the terms whose signature has them; a PRNG ``key`` is split
    so that every term that takes one gets its own. The result is
    ``(total, terms)``: the weighted total (a scalar, or the batch shape with
    ``reduction="none"``) and a dict of every term's unweighted, reduced value.
    Per-example terms are reduced with a masked mean (``reduction="mean"``,
    counting the ``where`` mask) or a masked sum; batch-level terms are already
    scalars. Stateful terms (those that return ``(value, new_state)``) put
    their new state in ``terms["states"][term_name]``.
    """

    terms: tuple[tuple[float, ConfiguredLoss], ...]
    reduction: str = "mean"

    def __post_init__(self):
        _checks.check_one_of("lossjax.compose", "reduction", self.reduction, ("mean", "sum", "none"))
        if not self.terms:
            raise SpecError("lossjax.compose: a composed loss needs at least one term.")
        for _, t in self.terms:
            if not isinstance(t, ConfiguredLoss):
                raise TypeError(f"lossjax.compose: terms must be losses, got {type(t).__name__}.")
            if self.reduction == "none" and t.kind != "per_example":
                raise ValueError(f"lossjax.compose: reduction='none' needs per-example terms; {t.name!r} is {t.kind}.")

    @property
    def names(self) -> tuple[str, ...]:
        """The term names used as keys of ``terms`` (repeated losses get ``_1``, ``_2`` ...)."""
        seen: dict[str, int] = {}
        out = []
        for _, t in self.terms:
            n = seen.get(t.name, 0)
            seen[t.name] = n + 1
            out.append(t.name if n == 0 else f"{t.name}_{n}")
        return tuple(out)

    def arguments(self) -> tuple[str, ...]:
        """The positional arguments a call takes, in order (the union of the terms' data arguments)."""
        return _union_order([_parameters(t.entry)[0] for _, t in self.terms])[0]

    def _route(self, args: tuple, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        params = [_parameters(t.entry) for _, t in self.terms]
        union, consistent = _union_order([p[0] for p in params])
        if len(args) > len(union):
            raise TypeError(
                f"lossjax.compose: the composed loss takes at most {len(union)} positional arguments "
                f"{list(union)}, got {len(args)}."
            )
        if args and not consistent:
            raise TypeError(
                "lossjax.compose: the terms order their data arguments differently "
                f"({[p[0] for p in params]}); pass them by keyword."
            )
        named = dict(zip(union, args, strict=False))
        for k, v in kwargs.items():
            if k in named:
                raise TypeError(f"lossjax.compose: argument {k!r} given both positionally and by keyword.")
            named[k] = v
        accepted_any = frozenset().union(*(p[1] for p in params)) | {"where"}
        unknown = sorted(set(named) - accepted_any)
        if unknown:
            raise TypeError(
                f"lossjax.compose: no term takes {unknown}; the terms take {sorted(accepted_any - {'where'})}."
            )
        key = named.pop("key", None)
        takes_key = [i for i, p in enumerate(params) if "key" in p[1]]
        keys = {}
        if key is not None and takes_key:
            split = jax.random.split(key, len(takes_key))
            keys = {i: split[j] for j, i in enumerate(takes_key)}
        routed = []
        for i, ((_, term), (positional, accepted)) in enumerate(zip(self.terms, params, strict=True)):
            call = {k: v for k, v in named.items() if k in accepted}
            if i in keys:
                call["key"] = keys[i]
            missing = [n for n in positional if n not in call and _required(term.entry, n)]
            if missing:
                raise TypeError(f"lossjax.compose: term {term.name!r} needs the argument(s) {missing}.")
            routed.append(call)
        return routed

    def _reduce(self, value, term, where):
        if term.kind != "per_example" or self.reduction == "none":
            return value
        mask = None if where is None else jnp.broadcast_to(jnp.asarray(where, bool), value.shape)
        if self.reduction == "sum":
            return _checks.masked_sum(value, mask)
        return _checks.masked_mean(value, mask)

    def __call__(self, *args, **kwargs):
        where = kwargs.get("where")
        values: dict[str, Any] = {}
        states: dict[str, Any] = {}
        total = None
        for (w, term), name, call in zip(self.terms, self.names, self._route(args, kwargs), strict=True):
            out = term(**call)
            if term.entry.has_aux:
                out, states[name] = out
            v = self._reduce(out, term, where)
            values[name] = v
            contrib = jnp.asarray(w, v.dtype) * v
            total = contrib if total is None else total + contrib
        if states:
            values["states"] = states
        return total, values

    def stacked(self, *args, **kwargs):
        """``(total, vector)``: the term values stacked in a vector (for the multi-loss transforms).

        Stateful terms need their new states: call the composed loss itself.
        """
        total, values = self(*args, **kwargs)
        if "states" in values:
            raise ValueError("ComposedLoss.stacked: stateful terms return new states; call the composed loss.")
        return total, jnp.stack(list(values.values()))

    def to_config(self) -> dict[str, Any]:
        terms = []
        for w, t in self.terms:
            cfg = t.to_config()
            cfg.pop("weight", None)
            terms.append({"name": cfg.pop("name"), "weight": w, **cfg})
        out: dict[str, Any] = {"terms": terms}
        if self.reduction != "mean":
            out["reduction"] = self.reduction
        return out


def _required(entry: Entry, name: str) -> bool:
    p = inspect.signature(entry.fn).parameters.get(name)
    return p is not None and p.default is inspect.Parameter.empty


_CONFIGURED_TYPES: dict[type, type] = {}


def _configured_transform(tx, entry: Entry, hp: Mapping[str, Any]):
    """Returns ``tx`` as an instance of a subclass of its own type carrying ``to_config``."""
    base = type(tx)
    sub = _CONFIGURED_TYPES.get(base)
    if sub is None:
        sub = type(f"Configured{base.__name__}", (base,), {"to_config": _transform_config})
        _CONFIGURED_TYPES[base] = sub
    out = sub(*tx)
    out._lossjax_entry = entry
    out._lossjax_hp = dict(hp)
    return out


def _coerce(entry: Entry, hp: Mapping[str, Any]) -> dict[str, Any]:
    """Numeric strings (YAML reads ``1e-4`` as a string) become numbers where the default is a number."""
    out = dict(hp)
    for k, v in hp.items():
        default = entry.hyperparams.get(k)
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        if numeric and isinstance(v, str):
            try:
                num = float(v.strip())
            except ValueError:
                raise TypeError(f"lossjax.get: {entry.name}: `{k}` must be a number, got the string {v!r}.") from None
            out[k] = int(num) if isinstance(default, int) and num.is_integer() else num
        value = out[k]
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"lossjax.get: {entry.name}: `{k}` must be finite, got {value!r}.")
    return out


def _validate(entry: Entry, hp: Mapping[str, Any]) -> None:
    """Traces the entry once on its sample with ``hp`` so hyperparameter errors surface at build time.

    Only errors naming one of the given hyperparameters are raised (a shape that
    fits the user's data but not the sample's is not an error here).
    """
    if entry.kind == "transform" or entry.sample is None or not hp:
        return
    try:
        sample = entry.sample()
        jax.eval_shape(lambda *a: entry.fn(*a, **{**sample.kwargs, **hp}), *sample.args)
    except (ValueError, TypeError) as e:
        msg = str(e)
        shape_dependent = "shape" in msg or "rank" in msg  # fits the user's data, maybe not the sample's
        if any(f"`{k}`" in msg for k in hp) and not shape_dependent:
            raise type(e)(f"lossjax.get: {msg}") from None


def _build_term(name: str, hp: Mapping[str, Any]):
    entry = get_entry(name)
    _check_hyperparams(entry, hp)
    hp = _coerce(entry, hp)
    _validate(entry, hp)
    if entry.kind == "transform":
        return _configured_transform(entry.fn(**hp), entry, hp)
    return ConfiguredLoss(entry, dict(hp))


# -------------------------- spec parsing (no eval) --------------------------


class SpecError(ValueError):
    """A malformed spec string or dict."""


def _literal(node: ast.AST, text: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise SpecError(
            f"lossjax: in spec {text!r}, {ast.unparse(node)!r} is not a literal "
            "(hyperparameters must be numbers, strings, booleans, None, lists or tuples)."
        ) from None


def _number(node: ast.AST) -> float | None:
    """A numeric literal, with any number of leading signs; None if ``node`` is not one."""
    sign = 1.0
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -sign if isinstance(node.op, ast.USub) else sign
        node = node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return sign * float(node.value)
    return None


def _weight(value: Any, where: str) -> float:
    """A term weight: a finite number (a numeric string from YAML is converted)."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise SpecError(f"lossjax: {where}: a weight must be a number, got {value!r}.") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise SpecError(f"lossjax: {where}: a weight must be a finite number, got {value!r}.")
    return float(value)


def _parse_term(node: ast.AST, text: str) -> tuple[float, dict[str, Any]]:
    weight = 1.0
    sign = 1.0
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -sign if isinstance(node.op, ast.USub) else sign
        node = node.operand
    if sign != 1.0:
        w, t = _parse_term(node, text)
        return sign * w, t
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        left, right = node.left, node.right
        for num, other in ((_number(left), right), (_number(right), left)):
            if num is not None:
                w, t = _parse_term(other, text)
                return _weight(num * w, f"in spec {_clip(text)!r}"), t
        raise SpecError(f"lossjax: in spec {_clip(text)!r}, a product must be a number times a loss.")
    if isinstance(node, ast.Name):
        return weight, {"name": node.id}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        hp = {}
        if node.args:
            first = _first_positional(node.func.id) if len(node.args) == 1 else None
            if first is None:
                raise SpecError(
                    f"lossjax: in spec {_clip(text)!r}, {node.func.id}(...) takes keyword hyperparameters only "
                    "(name=value); only an optax transform takes one positional value, e.g. adamw(3e-3)."
                )
            hp[first] = _literal(node.args[0], text)
        hp.update({kw.arg: _literal(kw.value, text) for kw in node.keywords})
        if None in hp:
            raise SpecError(f"lossjax: in spec {_clip(text)!r}, `**` is not allowed.")
        reserved = sorted(set(hp) & set(_RESERVED))
        if reserved:
            raise SpecError(f"lossjax: in spec {_clip(text)!r}, {reserved} are reserved words, not hyperparameters.")
        return weight, {"name": node.func.id, **hp}
    raise SpecError(
        f"lossjax: cannot parse spec {text!r}: expected `name`, `name(key=value, ...)`, "
        "or a weighted sum like `1.0 * a + 0.5 * b(key=value)`."
    )


def _first_positional(name: str) -> str | None:
    """The first parameter of an optax (or optax.contrib) factory ``name`` (``adamw(3e-3)``: learning_rate);
    None for lossjax's own entries, whose hyperparameters are keyword-only."""
    try:
        get_entry(name)
        return None
    except KeyError:
        pass
    f = _optax_factory(name)
    if f is None:
        return None
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return params[0].name if params and params[0].kind in positional else None


def _clip(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def _flatten_sum(node: ast.AST, text: str, sign: float = 1.0) -> list[tuple[float, dict[str, Any]]]:
    # Iterative over the left spine of a long sum (no recursion depth per term).
    terms: list[tuple[float, ast.AST]] = []
    stack = [(node, sign)]
    while stack:
        n, sg = stack.pop()
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub)):
            stack.append((n.right, sg if isinstance(n.op, ast.Add) else -sg))
            stack.append((n.left, sg))
            if len(stack) + len(terms) > _MAX_TERMS:
                raise SpecError(f"lossjax: spec {_clip(text)!r} has more than {_MAX_TERMS} terms.")
        else:
            terms.append((sg, n))
    out = []
    for sg, n in terms:
        w, t = _parse_term(n, text)
        out.append((sg * w, t))
    return out


def parse_spec(text: str) -> list[tuple[float, dict[str, Any]]]:
    """Parses a spec string into ``[(weight, {"name": ..., **hyperparams}), ...]``.

    >>> parse_spec("focal_loss(gamma=2.0)")
    [(1.0, {'name': 'focal_loss', 'gamma': 2.0})]
    >>> parse_spec("ce + 0.5*focal_loss")
    [(1.0, {'name': 'ce'}), (0.5, {'name': 'focal_loss'})]
    """
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"lossjax: a spec string must be non-empty, got {text!r}.")
    if len(text) > _MAX_SPEC:
        raise SpecError(f"lossjax: a spec string of {len(text)} characters is too long (at most {_MAX_SPEC}).")
    text = _normalize(text)
    try:
        tree = ast.parse(text.strip(), mode="eval")
        return _flatten_sum(tree.body, text)
    except SyntaxError as e:
        raise SpecError(f"lossjax: cannot parse spec {_clip(text)!r}: {e.msg} at column {e.offset}.") from None
    except (RecursionError, MemoryError):
        raise SpecError(f"lossjax: spec {_clip(text)!r} is nested too deeply.") from None


def _terms_from(spec: Any) -> tuple[list[tuple[float, dict[str, Any]]], str]:
    """Normalizes any spec to ``(terms, reduction)``: ``[(weight, {"name": ..., **hyperparams}), ...]``."""
    if isinstance(spec, str):
        return parse_spec(spec), "mean"
    if isinstance(spec, Mapping):
        spec = dict(spec)
        if "terms" in spec:
            reduction = spec.pop("reduction", "mean")
            if spec.keys() - {"terms"}:
                raise SpecError(f"lossjax: a sum spec takes only 'terms' and 'reduction', got {sorted(spec)}.")
            terms, _ = _terms_from(list(spec["terms"]))
            return terms, reduction
        if "name" not in spec:
            raise SpecError(f"lossjax: a dict spec needs a 'name' (or 'terms'), got keys {sorted(spec)}.")
        if not isinstance(spec["name"], str):
            raise SpecError(f"lossjax: a spec's 'name' must be a string, got {type(spec['name']).__name__}.")
        weight = _weight(spec.pop("weight", 1.0), f"the spec of {spec['name'][:40]!r}")
        reserved = sorted(set(spec) & (set(_RESERVED) - {"name"}))
        if reserved:
            raise SpecError(f"lossjax: {reserved} are reserved words, not hyperparameters of {spec['name'][:40]!r}.")
        return [(weight, spec)], "mean"
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise SpecError("lossjax: an empty list is not a spec.")
        if len(spec) > _MAX_TERMS:
            raise SpecError(f"lossjax: a sum of {len(spec)} terms is too long (at most {_MAX_TERMS}).")
        terms = []
        for item in spec:
            t, _ = _terms_from(item)
            terms += t
        return terms, "mean"
    raise SpecError(f"lossjax: a spec must be a string, dict or list, got {type(spec).__name__}.")


def get(spec: Any, **hyperparams: Any):
    """Returns one configured loss or transform, named by a spec.

    Args:
      spec: a name (``"focal_loss"``), a call string (``"focal_loss(gamma=2.0)"``),
        a dict (``{"name": "focal_loss", "gamma": 2.0}``), optionally weighted
        (``"0.5 * focal_loss"``, ``{"name": ..., "weight": 0.5}``).
      **hyperparams: more hyperparameters.

    Returns:
      A :class:`ConfiguredLoss`, which returns exactly what the loss returns
      (times its weight), or, for a transform, the optax transformation (with
      ``to_config()``). Weighted sums of several losses are built by
      :func:`compose`, which always returns ``(total, terms)``.

    Raises:
      KeyError: unknown name (the message lists close matches).
      TypeError: unknown or missing hyperparameter (the message lists the allowed ones).
      SpecError: a malformed spec, or a sum of several terms (use :func:`compose`).

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> ce = lossjax.get("0.5 * softmax_cross_entropy(label_smoothing=0.1)")
      >>> ce(jnp.zeros((2, 3)), jnp.array([0, 1])).shape  # per-example, like the loss
      (2,)
    """
    terms, _ = _terms_from(spec)
    if len(terms) != 1 or isinstance(spec, (list, tuple)) or (isinstance(spec, Mapping) and "terms" in spec):
        raise SpecError(
            f"lossjax.get: {_short(spec)} is a sum of terms; build it with lossjax.compose(...), "
            "which returns (total, terms)."
        )
    weight, t = terms[0]
    t = {**t, **hyperparams}
    name = t.pop("name")
    built = _build_term(name, t)
    if isinstance(built, ConfiguredLoss):
        return dataclasses.replace(built, weight=float(weight))
    if weight != 1.0:
        raise SpecError(f"lossjax.get: {name!r} is a transform; a transform takes no weight, got {weight!r}.")
    return built


def compose(spec: Any, *, reduction: str = "mean") -> ComposedLoss:
    """A weighted sum of losses that always returns ``(total, terms)``, even for one term.

    Args:
      spec: a sum string (``"softmax_cross_entropy + 1e-4 * z_loss"``), a list
        of term specs (strings or dicts with an optional ``"weight"``), a dict
        ``{"terms": [...], "reduction": ...}``, or a single loss spec.
      reduction: how per-example terms are reduced before they are summed:
        ``"mean"`` (a masked mean over ``where``), ``"sum"``, or ``"none"``
        (per-example totals; every term must be per-example). A ``"reduction"``
        in a dict spec takes precedence.

    Returns:
      A :class:`ComposedLoss`. Calling it routes each argument only to the
      terms that take it (a ``key`` is split per term) and returns
      ``(total, terms)``: ``terms`` maps each term's name to its unweighted
      reduced value, and ``terms["states"]`` holds the new states of stateful
      terms, if any.

    Example:
      >>> import jax.numpy as jnp, lossjax
      >>> loss = lossjax.compose("softmax_cross_entropy + 1e-4 * z_loss")
      >>> total, terms = loss(jnp.zeros((2, 3)), jnp.array([0, 1]))  # z_loss gets the logits only
      >>> sorted(terms)
      ['softmax_cross_entropy', 'z_loss']
    """
    terms, spec_reduction = _terms_from(spec)
    if isinstance(spec, Mapping) and "terms" in spec:
        reduction = spec_reduction
    built = []
    for w, t in terms:
        t = dict(t)
        name = t.pop("name")
        term = _build_term(name, t)
        if not isinstance(term, ConfiguredLoss):
            raise SpecError(f"lossjax.compose: {name!r} is a transform, not a loss.")
        built.append((float(w), term))
    return ComposedLoss(tuple(built), reduction=reduction)


def _short(spec: Any) -> str:
    text = repr(spec)
    return text if len(text) <= 80 else text[:77] + "..."


def from_config(config: Any):
    """Inverse of ``to_config()``: ``from_config(x.to_config())`` rebuilds ``x``.

    Args:
      config: what a ``to_config()`` returned (plain data: a dict for a loss or
        transform, ``{"terms": [...]}`` for a composed loss, ``{"chain": [...]}``
        for an optimizer).

    Returns:
      The loss, composed loss, transform or optimizer chain.

    Example:
      >>> import lossjax
      >>> loss = lossjax.compose("softmax_cross_entropy + 0.5 * focal_loss")
      >>> lossjax.from_config(loss.to_config()).to_config() == loss.to_config()
      True
    """
    if isinstance(config, Mapping) and "chain" in config:
        return optimizer(config["chain"])
    if isinstance(config, Mapping) and "terms" in config:
        return compose(config)
    return get(config)


# ---------------------------- optimizer specs -----------------------------


_OPTAX_PREFIXES = (("optax.contrib.", "contrib"), ("contrib.", "contrib"), ("optax.", "optax"))


def _optax_namespaces() -> dict[str, Any]:
    import optax.contrib  # a subpackage: make sure it is loaded

    return {"optax": optax, "contrib": optax.contrib}


def _optax_names() -> list[str]:
    ns = _optax_namespaces()
    return [n for n in dir(ns["optax"]) if not n.startswith("_")] + [
        f"contrib.{n}" for n in dir(ns["contrib"]) if not n.startswith("_")
    ]


def _optax_factory(name: str) -> Callable[..., Any] | None:
    """``optax.<name>``, else ``optax.contrib.<name>``; ``contrib.<name>`` (``optax.contrib.<name>``): contrib only."""
    ns = _optax_namespaces()
    for prefix, where in _OPTAX_PREFIXES:
        if name.startswith(prefix):
            f = getattr(ns[where], name[len(prefix) :], None)
            return f if callable(f) and "." not in name[len(prefix) :] else None
    for where in ("optax", "contrib"):
        if name in dir(ns[where]):  # not getattr: optax's deprecated aliases of contrib names warn
            f = getattr(ns[where], name)
            if callable(f) and not isinstance(f, type):
                return f
    return None


def _build_value(value: Any, context: str) -> Any:
    """A hyperparameter from plain data: a nested spec (``{"name": ...}``) is built, a ``{"chain": [...]}`` chained."""
    if isinstance(value, Mapping) and "chain" in value:
        if set(value) != {"chain"}:
            raise SpecError(f"lossjax.optimizer: {context}: a chain takes only 'chain', got {sorted(value)}.")
        return optimizer(value["chain"])
    if isinstance(value, Mapping) and "name" in value:
        return _build_optimizer_part(dict(value), context)[0]
    return value


def _build_optimizer_part(cfg: dict[str, Any], context: str = "") -> tuple[Any, dict[str, Any]]:
    """One named part (a lossjax transform, an optax or optax.contrib function, a schedule) and its plain config."""
    raw = {k: v for k, v in cfg.items()}
    name = cfg.pop("name")
    if not isinstance(name, str):
        raise SpecError(f"lossjax.optimizer: a spec's 'name' must be a string, got {type(name).__name__}.")
    inject = cfg.pop("inject_hyperparams", False)
    if not isinstance(inject, (bool, Mapping)):
        raise SpecError(
            f"lossjax.optimizer: {name}: 'inject_hyperparams' must be true/false or a dict of "
            f"optax.inject_hyperparams options (static_args, hyperparam_dtype), got {inject!r}."
        )
    where = f"{context}{name}"
    kwargs = {k: _build_value(v, f"{where}.{k}") for k, v in cfg.items()}
    _ensure_loaded()
    if name in _REGISTRY or name in _ALIASES:
        entry = get_entry(name)
        if entry.kind != "transform":
            raise SpecError(f"lossjax.optimizer: {name!r} is a loss, not a transform.")
        _check_hyperparams(entry, kwargs)
        factory = entry.fn
    else:
        factory = _optax_factory(name)
        if factory is None:
            close = difflib.get_close_matches(name, _all_names() + _optax_names())
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise KeyError(
                f"lossjax.optimizer: {name!r} is neither a lossjax transform nor an optax function "
                f"(optax, optax.contrib, a schedule).{hint}"
            )
    if inject:
        opts = dict(inject) if isinstance(inject, Mapping) else {}
        unknown = set(opts) - {"static_args", "hyperparam_dtype"}
        if unknown:
            raise SpecError(f"lossjax.optimizer: {name}: unknown inject_hyperparams options {sorted(unknown)}.")
        if "static_args" in opts:
            opts["static_args"] = tuple(opts["static_args"])
        if "hyperparam_dtype" in opts:
            opts["hyperparam_dtype"] = jnp.dtype(opts["hyperparam_dtype"])
        factory = optax.inject_hyperparams(factory, **opts)
    try:
        built = factory(**kwargs)
    except TypeError as e:
        raise TypeError(f"lossjax.optimizer: {name}: {e}") from None
    return built, {k: _jsonable(v) for k, v in raw.items()}


def optimizer(spec: Any) -> optax.GradientTransformation:
    """Chains registered transforms and optax optimizers, named in a spec.

    Every name is looked up in the lossjax registry, then in ``optax``, then in
    ``optax.contrib`` (``"contrib.sam"`` or ``"optax.contrib.sam"`` names the
    contrib one explicitly, e.g. when lossjax has a transform of the same
    name). A hyperparameter given as a nested spec is built first: a learning
    rate schedule (``{"name": "warmup_cosine_decay_schedule", ...}``), an inner
    optimizer (``sam``'s ``optimizer``/``adv_optimizer``, ``mechanize``'s
    ``base_optimizer``, ...) or a chain (``{"chain": [...]}``).
    ``"inject_hyperparams": true`` (or a dict of ``optax.inject_hyperparams``'
    options: ``static_args``, ``hyperparam_dtype``) wraps the factory in
    ``optax.inject_hyperparams``, so its numeric hyperparameters live in the
    state (``state.hyperparams``) and can be changed between steps. Specs are
    plain data (JSON/YAML): nothing is evaluated.

    Args:
      spec: one spec or a list of specs (strings or dicts); a name not in the
        registry is looked up in optax and optax.contrib (``"adam(learning_rate=1e-3)"``,
        ``"clip_by_global_norm(max_norm=1.0)"``, ``{"name": "prodigy"}``).

    Returns:
      ``optax.chain`` of them, with ``to_config()`` (``{"chain": [...]}``, the
      specs as given: ``from_config`` rebuilds it).

    Example:
      >>> import lossjax
      >>> tx = lossjax.optimizer(["clip_by_global_norm(max_norm=1.0)", {"name": "sgd", "learning_rate": 0.1}])
      >>> tx.to_config()["chain"][1]
      {'name': 'sgd', 'learning_rate': 0.1}
      >>> sched = {"name": "cosine_decay_schedule", "init_value": 1e-3, "decay_steps": 100}
      >>> tx = lossjax.optimizer({"name": "contrib.sam", "optimizer": {"name": "adamw", "learning_rate": sched},
      ...                         "adv_optimizer": {"name": "sgd", "learning_rate": 0.05}, "sync_period": 2})
      >>> tx = lossjax.optimizer({"name": "adam", "learning_rate": 1e-3, "inject_hyperparams": True})
    """
    items = [spec] if isinstance(spec, (str, Mapping)) else list(spec)
    parts = []
    configs = []
    for item in items:
        terms, _ = _terms_from(item)
        if len(terms) != 1 or terms[0][0] != 1.0 or not isinstance(item, (str, Mapping)):
            raise SpecError(f"lossjax.optimizer: {item!r} is a weighted sum; an optimizer spec chains single names.")
        tx, cfg = _build_optimizer_part(dict(terms[0][1]))
        if not isinstance(tx, (optax.GradientTransformation, optax.GradientTransformationExtraArgs)):
            raise SpecError(
                f"lossjax.optimizer: {cfg['name']!r} built a {type(tx).__name__}, not a gradient transformation "
                "(a schedule goes inside a spec, as a hyperparameter such as learning_rate)."
            )
        parts.append(tx)
        configs.append(cfg)
    chained = optax.chain(*parts)
    entry = Entry("chain", optax.chain, "optax", "transform", (), "", "", "", {}, (), None, False)
    out = _configured_transform(chained, entry, {})
    out._lossjax_chain = configs
    return out


def _transform_config(self) -> dict[str, Any]:
    """``to_config`` of a registry-built transform or optimizer chain."""
    chain = getattr(self, "_lossjax_chain", None)
    if chain is not None:
        return {"chain": [dict(c) for c in chain]}
    return {"name": self._lossjax_entry.name, **{k: _jsonable(v) for k, v in self._lossjax_hp.items()}}


# ------------------------------- JSON Schema -------------------------------


def _hyperparameter_schema(default: Any) -> dict[str, Any]:
    """A JSON Schema for one hyperparameter, from its default (any value when required or not plain data)."""
    if default is inspect.Parameter.empty:
        return {}
    if isinstance(default, bool):
        return {"type": "boolean", "default": default}
    if isinstance(default, int):
        return {"type": "integer", "default": default}
    if isinstance(default, float):
        return {"type": "number", "default": default} if math.isfinite(default) else {"type": "number"}
    if isinstance(default, str):
        return {"type": "string", "default": default}
    return {}  # None, tuples, arrays: the entry validates them when the config is built


def spec_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of the plain-data specs, for editors and config validation.

    It covers what :func:`from_config` accepts: a spec string, one loss or transform
    (``{"name": ..., "weight": ..., <hyperparameters>}``, names and aliases
    enumerated, each hyperparameter typed from its default), a composed loss
    (``{"terms": [...]}``) and an optimizer chain (``{"chain": [...]}``, whose
    parts may also name optax and optax.contrib transforms). Values are still
    validated by the entries when the config is built; the schema catches typos
    in names and keys while the file is edited (``lossjax schema > spec.schema.json``).

    Returns:
      The schema as a dict (``json.dumps`` it).

    Example:
      >>> import lossjax
      >>> schema = lossjax.registry.spec_schema()
      >>> "focal_loss" in schema["$defs"]["names"]["enum"]
      True
    """
    _ensure_loaded()
    terms, names = [], []
    for name in sorted(_REGISTRY):
        e = _REGISTRY[name]
        if e.name != name:
            continue  # aliases share their entry's schema
        own = [e.name, *e.aliases]
        names += own
        props: dict[str, Any] = {"name": {"enum": own}, "weight": {"type": "number"}}
        props.update({k: _hyperparameter_schema(v) for k, v in e.hyperparams.items()})
        required = ["name", *e.required()]
        terms.append(
            {
                "title": e.name,
                "description": e.summary,
                "type": "object",
                "properties": props,
                "required": required,
                "additionalProperties": False,
            }
        )
    optax_part = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "inject_hyperparams": {}},
        "required": ["name"],
        "description": "an optax or optax.contrib transform by name, with its arguments",
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "lossjax spec",
        "description": "A loss, composed loss, transform or optimizer chain for lossjax.from_config.",
        "oneOf": [
            {"type": "string", "description": "a spec string, e.g. 'softmax_cross_entropy + 0.5 * focal_loss'"},
            {"$ref": "#/$defs/entry"},
            {
                "type": "object",
                "properties": {"terms": {"type": "array", "items": {"$ref": "#/$defs/entry"}, "minItems": 1}},
                "required": ["terms"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {"chain": {"type": "array", "items": {"anyOf": [{"$ref": "#/$defs/entry"}, optax_part]}}},
                "required": ["chain"],
                "additionalProperties": False,
            },
        ],
        "$defs": {"names": {"enum": names}, "entry": {"oneOf": terms}},
    }
