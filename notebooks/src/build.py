"""Write the notebooks (``notebooks/*.ipynb``) from their reviewable sources in this folder.

Each ``NN_name.py`` here is a notebook in "percent" format: ``# %%`` starts a code cell,
``# %% [markdown]`` a markdown cell whose lines are comments (``# `` is stripped). The
notebooks are written without outputs; ``tests/test_notebooks.py`` checks they are up to date
with these sources and executes them.

    python notebooks/src/build.py          # rewrite every notebook
    python notebooks/src/build.py --check  # exit 1 if a notebook differs from its source
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

SRC = Path(__file__).resolve().parent
OUT = SRC.parent
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def parse(text: str) -> list[tuple[str, str]]:
    """``[(kind, source)]`` cells of a percent-format file (kind: "code" or "markdown")."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# %%"):
            cells.append(("markdown" if "[markdown]" in line else "code", []))
        elif cells:
            cells[-1][1].append(line)
        elif line.strip() and not line.startswith("#"):
            raise ValueError("code before the first '# %%' marker")
    out = []
    for kind, lines in cells:
        if kind == "markdown":
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines]
        source = "\n".join(lines).strip("\n")
        if source:
            out.append((kind, source))
    return out


def build(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    for i, (kind, source) in enumerate(parse(path.read_text(encoding="utf-8"))):
        cell = (nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell)(source)
        cell["id"] = f"{path.stem[:2]}-{i:03d}"  # stable ids: rebuilding changes nothing
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def sources() -> list[Path]:
    return sorted(p for p in SRC.glob("[0-9][0-9]_*.py"))


def render(path: Path) -> str:
    return nbformat.writes(build(path)) + "\n"


def _content(text: str) -> list[tuple[str, str]]:
    """What a notebook says (cell types and sources), independent of nbformat's formatting."""
    nb = nbformat.reads(text, as_version=4)
    return [(c.cell_type, c.source) for c in nb.cells]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for src in sources():
        target = OUT / f"{src.stem}.ipynb"
        text = render(src)
        if args.check:
            if not target.exists() or _content(target.read_text(encoding="utf-8")) != _content(text):
                stale.append(target.name)
        else:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target}")
    if stale:
        print(f"out of date with notebooks/src: {', '.join(stale)}; run python notebooks/src/build.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
