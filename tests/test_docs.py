"""The documentation site (issue 18 item 1): generated pages up to date, every public name documented, strict build.

``mkdocs build --strict`` runs offline into a temporary folder (a broken
reference, a missing page or a docstring that does not render fails it).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pathlib
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PUBLIC = (
    "lossjax",
    "lossjax.losses",
    "lossjax.transforms",
    "lossjax.miners",
    "lossjax.multiloss",
    "lossjax.metrics",
    "lossjax.toolkit",
    "lossjax.integrations",
)


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(f"_docs_tool_{name}", ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_generated_pages_are_up_to_date():
    assert _tool("gen_api_docs").main(["--check"]) == 0, "run python tools/gen_api_docs.py"


def test_rendered_notebooks_are_up_to_date():
    assert _tool("render_notebooks").main(["--check"]) == 0, "run python tools/render_notebooks.py"


def test_every_public_name_has_a_page():
    documented = set()
    for page in (DOCS / "api").glob("*.md"):
        documented |= {ln[4:].strip() for ln in page.read_text().splitlines() if ln.startswith("::: ")}
    missing = []
    for ns in PUBLIC:
        mod = importlib.import_module(ns)
        for name in getattr(mod, "__all__", ()):
            if inspect.ismodule(getattr(mod, name)):
                continue
            if f"{ns}.{name}" not in documented:
                missing.append(f"{ns}.{name}")
    assert not missing, f"public names without an API page (add the module to tools/gen_api_docs.py): {missing}"


def test_every_page_is_in_the_nav():
    yaml = pytest.importorskip("yaml")
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)

    def walk(node):
        if isinstance(node, str):
            yield node
        elif isinstance(node, list):
            for x in node:
                yield from walk(x)
        elif isinstance(node, dict):
            for x in node.values():
                yield from walk(x)

    in_nav = set(walk(config["nav"]))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages - in_nav == set(), f"pages missing from mkdocs.yml's nav: {sorted(pages - in_nav)}"
    assert in_nav - pages == set(), f"nav entries without a page: {sorted(in_nav - pages)}"


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    start = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    took = time.perf_counter() - start
    warnings = [ln for ln in res.stderr.splitlines() if "WARNING" in ln or "ERROR" in ln]
    assert res.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(warnings or [res.stderr[-3000:]])
    assert (tmp_path / "site" / "api" / "toolkit" / "index.html").exists()
    assert took < 120, f"the docs build took {took:.0f} s"
