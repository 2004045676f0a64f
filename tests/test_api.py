"""The public surface: CONTRIBUTING's naming table, family = module, one home per helper, docstrings.

Every check reads the live registry and the public namespaces, so an entry or
function added later is held to the same rules without new test code. There is
no allow-list: a violation is fixed in the code (or the naming table changes).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib
import re
import subprocess
import sys

import pytest

import lossjax
from lossjax import registry

ROOT = pathlib.Path(lossjax.__file__).parent
NAMESPACES = (
    "lossjax",
    "lossjax.losses",
    "lossjax.transforms",
    "lossjax.miners",
    "lossjax.multiloss",
    "lossjax.toolkit",
    "lossjax.integrations",
)

# ------------------------------ the naming table ------------------------------

#: Data arguments (positional): CONTRIBUTING's table, plus role prefixes/suffixes.
DATA_NAMES = {
    "logits",
    "labels",
    "predictions",
    "targets",
    "embeddings",
    "embeddings_a",
    "embeddings_b",
    "anchors",
    "positives",
    "negatives",
    "support",
    "queries",
    "proxies",
    "scores",
    "log_probs",
    "probs",
    "hidden",
    "weight",
    "bias",
    "losses",
}
DATA_SUFFIXES = ("_logits", "_log_probs", "_probs", "_embeddings", "_labels", "_targets", "_scores")
DISTANCES = {"euclidean", "squared_euclidean", "cosine", "dot"}

#: (pattern on a parameter name, the table's word for that concept).
FORBIDDEN = [
    (r"^eps$|_eps$|^eps_", "`epsilon` (a numerical guard only)"),
    (r"mask", "`where` or `<input>_where`"),
    (r"logps?$|logps|logprob", "`log_probs` (`*_log_probs`)"),
    (r"^s$", "`scale`"),
    (r"^(a|b|x1|x2|view1|view2|view_a|view_b|keys)$", "`embeddings_a`, `embeddings_b`"),
    (r"^detach", "`stop_gradient_<what>`"),
    (r"^n_[a-z]", "`num_<what>`"),
    (r"^(form|strategy|margin_type|loss_type)$", "`variant`"),
    (r"^pref_vector$", "`weights`"),
    (r"^(max_iters|iterations|n_iter|iters)$", "`max_iterations` / `num_iterations`"),
    (r"^(lmbda|t_alpha|ema|momentum_decay)$", "`decay`"),
    (r"^(temp|tmp|t_temp)$", "`temperature`"),
    (r"^(rng|rngs|prng_key|rng_key)$", "`key`"),
    (r"^(class_weight|cls_weights|class_weighting)$", "`class_weights`"),
    (r"^(features|feats|prototypes|class_embeddings)$", "`embeddings` / `proxies`"),
]


def _public_functions() -> dict[str, object]:
    """Every public function of the library (by its qualified public path) and every registered entry."""
    out: dict[str, object] = {}
    for ns in NAMESPACES:
        mod = importlib.import_module(ns)
        for name in getattr(mod, "__all__", ()):
            obj = getattr(mod, name)
            if inspect.isfunction(obj):
                out[f"{ns}.{name}"] = obj
    for name in lossjax.available():
        e = registry.get_entry(name)
        out.setdefault(f"registry:{name}", e.fn)
    return out


FUNCTIONS = _public_functions()
ENTRIES = [registry.get_entry(n) for n in lossjax.available()]


def _violations(path: str, fn) -> list[str]:
    out = []
    sig = inspect.signature(fn)
    names = list(sig.parameters)
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        for pattern, word in FORBIDDEN:
            if re.search(pattern, p.name):
                out.append(f"{path}: argument `{p.name}` -> {word}")
        if p.name == "epsilon" and isinstance(p.default, (int, float)) and not isinstance(p.default, bool):
            if p.default > 1e-2:
                out.append(f"{path}: `epsilon={p.default}` is not a numerical guard; name the hyperparameter")
        if p.name == "metric" and p.default in DISTANCES:
            out.append(f"{path}: `metric={p.default!r}` is a geometry -> `distance`")
        if p.name == "tau" and "comp_sum" not in path:
            out.append(f"{path}: `tau` means the comp-sum index only; name this hyperparameter")
        if p.name == "weight" and "hidden" not in names:
            out.append(f"{path}: `weight` is a fused head's matrix; a term's weight is `<term>_weight`")
        if p.name == "queries" and "support" not in names:
            out.append(f"{path}: `queries` belongs to a few-shot episode; two views are `embeddings_a/_b`")
    return out


def test_naming_table_holds_for_every_public_signature():
    problems = [v for path, fn in sorted(FUNCTIONS.items()) for v in _violations(path, fn)]
    assert not problems, "naming-table violations:\n" + "\n".join(problems)


def test_the_checker_catches_what_it_should():
    def bad(a, b, *, eps=1e-8, mask=None, chosen_logps=None, s=30.0, detach=True, form="x", epsilon=2.0):
        """Nothing."""

    found = "\n".join(_violations("bad", bad))
    for needle in ("`a`", "`b`", "`eps`", "`mask`", "`chosen_logps`", "`s`", "`detach`", "`form`", "epsilon=2.0"):
        assert needle in found, needle


def _is_data(name: str) -> bool:
    return name in DATA_NAMES or name.endswith(DATA_SUFFIXES)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_hyperparameters_are_keyword_only(entry):
    sig = inspect.signature(entry.fn)
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if entry.kind == "transform":
            assert p.kind == p.KEYWORD_ONLY, f"{entry.name}: transform hyperparameter `{p.name}` must be keyword-only"
        elif p.kind != p.KEYWORD_ONLY and p.default is not inspect.Parameter.empty:
            assert _is_data(p.name), (
                f"{entry.name}: `{p.name}` has a default but is positional; hyperparameters are keyword-only "
                "(optional data arguments use the naming table's data names)"
            )


# ------------------------------- family = module -------------------------------


def _family_module(entry) -> str:
    package = "transforms" if entry.fn.__module__.startswith("lossjax.transforms.") else "losses"
    return f"lossjax.{package}._{entry.family}"


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_every_entry_lives_in_the_module_named_after_its_family(entry):
    assert entry.fn.__module__ == _family_module(entry), (
        f"{entry.name} (family {entry.family!r}) lives in {entry.fn.__module__}, not {_family_module(entry)}"
    )
    module = importlib.import_module(entry.fn.__module__)
    assert module.FAMILY == entry.family, f"{module.__name__} declares FAMILY={module.FAMILY!r}"


def test_each_family_module_holds_one_family_declared_once():
    modules = sorted(
        p for p in (ROOT / "losses").glob("_*.py") if p.name != "__init__.py" and "FAMILY =" in p.read_text()
    ) + sorted(p for p in (ROOT / "transforms").glob("_*.py") if "FAMILY =" in p.read_text())
    families = {}
    for path in modules:
        text = path.read_text()
        assert len(re.findall(r"^FAMILY = ", text, re.M)) == 1, f"{path.name}: FAMILY declared more than once"
        assert not re.search(r"family=\"", text), f"{path.name}: register with family=FAMILY, not a literal"
        pkg = "transforms" if path.parent.name == "transforms" else "losses"
        mod = importlib.import_module(f"lossjax.{pkg}.{path.stem}")
        assert path.stem == f"_{mod.FAMILY}", f"{path.name} declares FAMILY={mod.FAMILY!r}: the module is its name"
        families[mod.FAMILY] = path.name
    registered = {e.family for e in ENTRIES}
    assert registered <= set(families), f"families without a module: {registered - set(families)}"


# ------------------------------ one home per helper -----------------------------


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lossjax"):
            yield node.module, [a.name for a in node.names]


def _is_module(dotted: str) -> bool:
    rel = pathlib.Path(*dotted.split(".")[1:])
    return (ROOT / rel).with_suffix(".py").exists() or (ROOT / rel / "__init__.py").exists()


def test_no_module_imports_another_modules_private_names():
    problems = []
    for path in sorted(ROOT.rglob("*.py")):
        for module, names in _imports(path):
            private = [
                n for n in names if n.startswith("_") and not n.startswith("__") and not _is_module(f"{module}.{n}")
            ]
            if private:
                problems.append(f"{path.relative_to(ROOT.parent)}: from {module} import {private}")
    assert not problems, "private helpers imported across modules (move them to a shared module):\n" + "\n".join(
        problems
    )


def test_family_modules_import_no_other_family_module_helpers():
    """A family module may use another family's *public losses*, never its helpers or samples."""
    public = set(lossjax.losses.__all__) | set(lossjax.transforms.__all__)
    problems = []
    paths = sorted((ROOT / "losses").glob("_*.py")) + sorted((ROOT / "transforms").glob("_*.py"))
    for path in (p for p in paths if p.name != "__init__.py"):
        for module, names in _imports(path):
            own = f"lossjax.{path.parent.name}.{path.stem}"
            if re.match(r"lossjax\.(losses|transforms)\._", module) and module != own:
                leaked = [n for n in names if n not in public]
                if leaked:
                    problems.append(f"{path.name}: from {module} import {leaked}")
    assert not problems, "\n".join(problems)


def test_import_lossjax_imports_no_test_code():
    code = (
        "import sys, lossjax, lossjax.losses, lossjax.transforms; "
        "bad = [m for m in sys.modules if m == 'lossjax.testing' or m.split('.')[0] in ('pytest', 'hypothesis')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"import lossjax imported test code: {res.stdout} {res.stderr[-2000:]}"


# ---------------------------------- docstrings ----------------------------------


def _doc_problems(path: str, fn, *, needs_paper: bool) -> list[str]:
    doc = inspect.getdoc(fn) or ""
    out = []
    if not doc.strip():
        return [f"{path}: no docstring"]
    if inspect.signature(fn).parameters and "Args:" not in doc:
        out.append(f"{path}: no `Args:` section")
    if "Returns:" not in doc:
        out.append(f"{path}: no `Returns:` section")
    if ">>>" not in doc:
        out.append(f"{path}: no `Example:` doctest")
    if needs_paper and not re.search(r"Paper|arXiv|paper", doc):
        out.append(f"{path}: no paper")
    return out


def test_every_public_function_documents_args_returns_paper_and_example():
    problems = []
    for path, fn in sorted(FUNCTIONS.items()):
        needs_paper = path.startswith(("registry:", "lossjax.losses.", "lossjax.transforms."))
        problems += _doc_problems(path, fn, needs_paper=needs_paper)
    for e in ENTRIES:
        if not e.paper and not re.search(r"Paper|arXiv", inspect.getdoc(e.fn) or ""):
            problems.append(f"registry:{e.name}: no paper in the registration or the docstring")
    assert not problems, "docstring sections missing:\n" + "\n".join(problems)
