"""Renders the notebooks, executed with their outputs, as markdown pages of the documentation site.

    python tools/render_notebooks.py           # execute notebooks/*.ipynb (LOSSJAX_SMALL=1), write docs/notebooks/
    python tools/render_notebooks.py --check   # exit 1 if a page is missing or older than its notebook

Lightest offline approach: nbclient (already needed by tests/test_notebooks.py)
executes each notebook at small size; cells become markdown and fenced code,
stdout/results become text blocks, figures PNG files next to the page. Each page
records the sha256 of the notebook it came from, so a changed notebook makes
``--check`` (tests/test_docs.py) fail until it is re-rendered. No mkdocs plugin,
no network.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
OUT = ROOT / "docs" / "notebooks"
NOTE = (
    '!!! note "Rendered at small size"\n    Executed by `tools/render_notebooks.py` with `LOSSJAX_SMALL=1` (the size '
    "the test suite runs); run the notebook from `notebooks/` for the full-size results."
)
MARK = "<!-- rendered from {name} sha256={digest} by tools/render_notebooks.py -->"


def _digest(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _text(x) -> str:
    return "".join(x) if isinstance(x, list) else str(x)


def render(path: pathlib.Path) -> str:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    os.environ.setdefault("LOSSJAX_SMALL", "1")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # figures as PNG outputs
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    lines = [MARK.format(name=path.name, digest=_digest(path)), "", NOTE, ""]
    images = 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            lines += [cell.source, ""]
            continue
        lines += ["```python", cell.source, "```", ""]
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                lines += ["```text", _text(out.text).rstrip("\n"), "```", ""]
            elif out.output_type in ("execute_result", "display_data"):
                data = out.get("data", {})
                if "image/png" in data:
                    images += 1
                    img = OUT / "img" / f"{path.stem}_{images}.png"
                    img.parent.mkdir(parents=True, exist_ok=True)
                    img.write_bytes(base64.b64decode(_text(data["image/png"])))
                    lines += [f"![figure {images}](img/{img.name})", ""]
                elif "text/plain" in data:
                    lines += ["```text", _text(data["text/plain"]).rstrip("\n"), "```", ""]
            elif out.output_type == "error":
                raise RuntimeError(f"{path.name}: {out.ename}: {out.evalue}")
    return "\n".join(lines).rstrip("\n") + "\n"


def stale() -> list[str]:
    out = []
    for nb in sorted(NOTEBOOKS.glob("*.ipynb")):
        page = OUT / f"{nb.stem}.md"
        mark = MARK.format(name=nb.name, digest=_digest(nb))
        if not page.exists() or not page.read_text().startswith(mark):
            out.append(nb.name)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if a rendered page is missing or stale")
    p.add_argument("--all", action="store_true", help="re-render every notebook")
    p.add_argument("names", nargs="*", help="notebook stems to render (default: the stale ones)")
    args = p.parse_args(argv)
    todo = stale()
    if args.check:
        if todo:
            print(f"docs/notebooks is out of date ({', '.join(todo)}): run python tools/render_notebooks.py")
            return 1
        return 0
    names = args.names or [n.removesuffix(".ipynb") for n in todo]
    if args.all:
        names = [p.stem for p in sorted(NOTEBOOKS.glob("*.ipynb"))]
    OUT.mkdir(parents=True, exist_ok=True)
    for stem in names:
        path = NOTEBOOKS / f"{stem}.ipynb"
        (OUT / f"{stem}.md").write_text(render(path))
        print(f"rendered {path.name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
