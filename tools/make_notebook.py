"""Builds a notebook from a Python file whose cells are separated by lines '# %%' ('# %% [markdown]' for text).

    python tools/make_notebook.py notebooks/src/00_quickstart.py notebooks/00_quickstart.ipynb

Keeping the source as a .py file makes notebooks diffable and reviewable; the
.ipynb is committed without outputs and executed by tests/test_notebooks.py.
"""

import pathlib
import sys

import nbformat


def build(src: pathlib.Path) -> nbformat.NotebookNode:
    cells = []
    kind, lines = "code", []

    def flush():
        text = "\n".join(lines).strip("\n")
        if text:
            if kind == "markdown":
                text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in text.splitlines())
                cells.append(nbformat.v4.new_markdown_cell(text))
            else:
                cells.append(nbformat.v4.new_code_cell(text))

    for line in src.read_text().splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        else:
            lines.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


if __name__ == "__main__":
    src, dst = map(pathlib.Path, sys.argv[1:3])
    nbformat.write(build(src), dst)
    print(f"wrote {dst}")
