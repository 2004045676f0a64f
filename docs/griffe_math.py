"""A griffe extension for the docs build: docstrings' ``.. math::`` blocks and ``:math:`` roles as MathJax.

lossjax docstrings keep the reST-style math that reads well in ``help()``;
this rewrites it, at docs-build time only, into the ``$$ ... $$`` / ``$...$``
that ``pymdownx.arithmatex`` renders. Sources are not changed.
"""

from __future__ import annotations

import re

import griffe

_BLOCK = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*\n(?P<body>(?:(?P=indent)[ \t]+\S.*\n|[ \t]*\n)+)", re.M)
_ROLE = re.compile(r":math:`([^`]+)`")
_INLINE_BLOCK = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]+(?P<body>\S.*)$", re.M)
_EXAMPLE = re.compile(r"^(?P<indent>[ \t]*)Example:[ \t]*$", re.M)


def to_mathjax(text: str) -> str:
    """Rewrites reST math in a docstring into arithmatex's delimiters (and ``Example:`` into ``Examples:``)."""

    def block(m: re.Match) -> str:
        indent = m.group("indent")
        lines = [ln.strip() for ln in m.group("body").splitlines() if ln.strip()]
        return f"{indent}$$\n" + "".join(f"{indent}{ln}\n" for ln in lines) + f"{indent}$$\n\n"

    text = _BLOCK.sub(block, text if text.endswith("\n") else text + "\n")
    text = _INLINE_BLOCK.sub(lambda m: "{0}$$\n{0}{1}\n{0}$$\n".format(m.group("indent"), m.group("body")), text)
    # griffe's examples section is spelled "Examples:": with it the doctests render as code, not markdown
    text = _EXAMPLE.sub(lambda m: f"{m.group('indent')}Examples:", text)
    return _ROLE.sub(lambda m: f"${m.group(1)}$", text)


class MathExtension(griffe.Extension):
    """Applies :func:`to_mathjax` to every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:  # griffe >= 1.0
        if obj.docstring is not None:
            obj.docstring.value = to_mathjax(obj.docstring.value)
