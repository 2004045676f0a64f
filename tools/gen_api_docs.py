"""Writes the API reference pages of the documentation site from the registry and the public namespaces.

    python tools/gen_api_docs.py          # rewrite docs/api/*.md
    python tools/gen_api_docs.py --check  # exit 1 if they are out of date (tests/test_docs.py does this)

One page per registry family (every public name of its module, registered or
not, with its kind and paper linked), and one per public module (the top-level
API, metrics, miners, multiloss, registry, testing, benchmarking).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pathlib
import pkgutil
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
API = ROOT / "docs" / "api"

MODULE_PAGES = {
    "core": ("lossjax", "The top-level API: build losses from specs, compose them, reduce, check, parallelize."),
    "metrics": ("lossjax.metrics", "Ranking and retrieval metrics (not losses)."),
    "miners": ("lossjax.miners", "Pair and triplet miners for metric learning (static shapes, validity masks)."),
    "multiloss": ("lossjax.multiloss", "Per-loss gradients of a vector of losses, for the multi-task transforms."),
    "registry": ("lossjax.registry", "The registry: entries, samples, specs."),
    "testing": ("lossjax.testing", "The conformance suite (`lossjax check`)."),
    "benchmarking": ("lossjax.benchmarking", "The benchmark harness (`lossjax bench`)."),
    "toolkit": ("lossjax.toolkit", "Argument checks, masking, dtype and numerics helpers for writing your own loss."),
    "integrations": ("lossjax.integrations", "Flax NNX, Linen and Equinox helpers for the transforms' extra args."),
}


def _arxiv_link(paper: str) -> str:
    m = re.search(r"arXiv:\s*(\d{4}\.\d{4,5})", paper or "")
    if not m:
        return (paper or "").replace("|", "/")
    title = paper.split("(")[0].strip().replace("|", "/")
    return f"[{title}](https://arxiv.org/abs/{m.group(1)})"


def _summary(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0].replace("|", "/") if doc.strip() else ""


def _home(package: str, name: str, obj) -> object:
    """The module defining a public name (a constant has no ``__module__``: the family module holding it)."""
    module = getattr(obj, "__module__", None)
    if module:
        return importlib.import_module(module)
    pkg = importlib.import_module(f"lossjax.{package}")
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        mod = importlib.import_module(f"lossjax.{package}.{info.name}")
        if getattr(mod, "FAMILY", None) and getattr(mod, name, None) is obj:
            return mod
    return pkg


def pages() -> dict[str, str]:
    """``{file name: markdown}`` for every API page."""
    sys.path.insert(0, str(ROOT))
    import lossjax
    from lossjax import registry

    out: dict[str, str] = {}
    families: dict[str, list[tuple[str, str, object]]] = {}
    for package in ("losses", "transforms"):
        ns = importlib.import_module(f"lossjax.{package}")
        for name in ns.__all__:
            obj = getattr(ns, name)
            mod = _home(package, name, obj)
            family = getattr(mod, "FAMILY", None) or f"{package}-shared"  # helpers of a shared private module
            families.setdefault(family, []).append((package, name, obj))
    index = ["# API reference", "", "Every public name, by family (losses and transforms) and by module.", ""]
    index += ["| page | what |", "|---|---|"]
    for family in sorted(families):
        items = sorted(families[family], key=lambda t: t[1])
        lines = [f"# `{family}`", ""]
        entries = [registry.entry_of(obj) for _, _, obj in items]
        registered = [e for e in entries if e is not None]
        lines += [
            f"`lossjax list --family {family}` lists its {len(registered)} registered entries;",
            "every one passes the conformance suite (`lossjax check NAME`).",
            "",
            "| name | kind | paper |",
            "|---|---|---|",
        ]
        for (package, name, obj), e in zip(items, entries, strict=True):
            kind = e.kind if e is not None else ("class" if inspect.isclass(obj) else "helper")
            paper = _arxiv_link(e.paper) if e is not None else ""
            lines.append(f"| [`{name}`](#lossjax.{package}.{name}) | {kind} | {paper} |")
        lines.append("")
        for package, name, _ in items:
            lines += [f"::: lossjax.{package}.{name}", ""]
        out[f"{family}.md"] = "\n".join(lines)
        index.append(f"| [{family}]({family}.md) | {len(registered)} registered entries |")
    for page, (module, what) in MODULE_PAGES.items():
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        names = (
            sorted(mod.__all__)
            if module != "lossjax"
            else sorted(n for n in lossjax.__all__ if not inspect.ismodule(getattr(lossjax, n)))
        )
        lines = [f"# `{module}`", "", what, ""]
        for name in names:
            lines += [f"::: {module}.{name}", ""]
        out[f"{page}.md"] = "\n".join(lines)
        index.append(f"| [{page}]({page}.md) | {what} |")
    out["index.md"] = "\n".join(index) + "\n"
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if docs/api is out of date")
    args = p.parse_args(argv)
    want = pages()
    if args.check:
        have = {f.name: f.read_text() for f in API.glob("*.md")} if API.exists() else {}
        stale = sorted(set(want) ^ set(have) | {k for k in want if have.get(k) != want[k]})
        if stale:
            print(f"docs/api is out of date ({', '.join(stale)}): run python tools/gen_api_docs.py")
            return 1
        return 0
    API.mkdir(parents=True, exist_ok=True)
    for f in API.glob("*.md"):
        if f.name not in want:
            f.unlink()
    for name, text in want.items():
        (API / name).write_text(text)
    print(f"wrote {len(want)} pages to {API.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
