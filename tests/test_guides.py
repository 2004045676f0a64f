"""Every code block of the documentation marked ``<!-- test -->`` runs (tiny sizes), so a broken example fails.

The blocks of one page run in order in one namespace (a later block may use an
earlier one's names), in this process (conftest gives 8 CPU devices, which the
data-parallel guide uses).
"""

from __future__ import annotations

import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"<!-- test -->\s*\n```python\n(.*?)\n```", re.S)
PAGES = sorted(p for p in DOCS.rglob("*.md") if BLOCK.search(p.read_text()))


def test_the_guides_have_tested_examples():
    names = {p.relative_to(DOCS).as_posix() for p in PAGES}
    for page in (
        "guides/flax-nnx.md",
        "guides/linen.md",
        "guides/equinox.md",
        "guides/optax.md",
        "guides/data-parallel.md",
        "guides/writing-a-loss.md",
    ):
        assert page in names, f"{page} has no <!-- test --> block"


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(DOCS).as_posix() for p in PAGES])
def test_page_examples_run(page, tmp_path, monkeypatch):
    if "equinox" in page.name:
        pytest.importorskip("equinox")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict = {"__name__": f"guide_{page.stem.replace('-', '_')}"}
    for i, code in enumerate(BLOCK.findall(page.read_text())):
        exec(compile(code, f"{page.relative_to(DOCS)}[block {i}]", "exec"), namespace)


def test_every_loss_named_in_the_choosing_guide_exists():
    import lossjax

    text = (DOCS / "guides" / "choosing-a-loss.md").read_text()
    named = set(re.findall(r"`([a-z][a-z0-9_]*_[a-z0-9_]+)`", text)) - {"axis_name"}
    public = set(lossjax.available()) | set(lossjax.losses.__all__) | set(lossjax.transforms.__all__)
    assert named and not named - public, f"names in choosing-a-loss.md that do not exist: {sorted(named - public)}"
