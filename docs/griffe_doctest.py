"""A griffe extension for the API reference: show bare doctest blocks as code.

lensteer's docstrings carry short runnable examples as bare ``>>>`` blocks (they run under
``pytest --doctest-modules``). Google-style parsing only treats them as code inside an
``Examples:`` section; elsewhere Markdown would read ``d["a"]["b"]`` as a link. This wraps every
bare doctest block (from a ``>>>`` line to the next blank line) in a ``pycon`` fence and drops
doctest directives such as ``# doctest: +SKIP``; Sphinx roles (``:class:`X```) become code
spans. Loaded by mkdocs.yml; changes no source file.
"""
from __future__ import annotations

import re
from typing import Any

import griffe

_DIRECTIVE = re.compile(r"\s*#\s*doctest:.*$")
_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|obj|exc):`~?\.?([^`]+)`")


def plain_roles(text: str) -> str:
    """Sphinx cross-reference roles as plain code spans (Markdown shows them verbatim).

    >>> plain_roles("returns a :class:`~lensteer.Generation` from :func:`generate`")
    'returns a `lensteer.Generation` from `generate`'
    """
    return _ROLE.sub(lambda m: f"`{m.group(1)}`", text)


def fence_doctests(text: str) -> str:
    r"""Wrap bare ``>>>`` blocks of a docstring in fenced ``pycon`` code blocks.

    >>> fence_doctests("Intro.\n\n>>> x  # doctest: +SKIP\n1\n\nMore.").splitlines()
    ['Intro.', '', '```pycon', '>>> x', '1', '```', '', 'More.']
    """
    out: list[str] = []
    in_fence = in_doctest = False
    indent = ""
    for line in text.splitlines():
        stripped = line.strip()
        if in_doctest:
            if not stripped:
                out.append(f"{indent}```")
                in_doctest = False
            else:
                out.append(_DIRECTIVE.sub("", line))
                continue
        if stripped.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and stripped.startswith(">>>"):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}```pycon")
            out.append(_DIRECTIVE.sub("", line))
            in_doctest = True
            continue
        out.append(line)
    if in_doctest:
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fence the bare doctest blocks of every docstring griffe loads; plain Sphinx roles."""

    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain_roles(fence_doctests(obj.docstring.value))
