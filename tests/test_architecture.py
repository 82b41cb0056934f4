"""The import graph is one-way: no circle, no import from a lower layer into a higher one (the
layer order is declared in docs/make_import_graph.py), and docs/architecture.md shows the graph
of the code as it is."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graphs():
    spec = importlib.util.spec_from_file_location("make_import_graph",
                                                  ROOT / "docs" / "make_import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_import_circle(graphs):
    assert graphs.circles(graphs.import_graph()) == []


def test_no_import_reaches_up_a_layer(graphs):
    assert graphs.upward(graphs.import_graph()) == []


def test_every_module_has_a_layer(graphs):
    for name in graphs.modules():
        graphs.layer_of(name)  # raises for a module no layer claims


def test_the_checks_catch_what_they_should(graphs):
    graph = graphs.import_graph()
    bad = {k: set(v) for k, v in graph.items()}
    bad["lensteer.runtime"].add("lensteer.generation.core")  # a circle through the seam
    bad["lensteer.generation.core"].add("lensteer.steering.session")  # upward, as before #14
    problems = graphs.problems(bad)
    assert any(p.startswith("import circle:") and "lensteer.runtime" in p for p in problems)
    assert ("lensteer.generation.core (generation) imports lensteer.steering.session (steering), "
            "a higher layer") in problems


def test_lazy_and_relative_imports_count(graphs, tmp_path):
    pkg = tmp_path / "lensteer"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("def f():\n    from .sub.deep import g\n")
    (pkg / "sub" / "__init__.py").write_text("from . import deep\n")
    (pkg / "sub" / "deep.py").write_text("from ..errors import f\n")
    graph = graphs.import_graph(pkg)
    # errors imports sub.deep inside a function, and through it the package sub
    assert graph["lensteer.errors"] == {"lensteer.sub", "lensteer.sub.deep"}
    assert graphs.circles(graph) == [["lensteer.errors", "lensteer.sub", "lensteer.sub.deep"]]


def test_the_architecture_page_is_generated_from_the_code(graphs):
    page = graphs.PAGE.read_text(encoding="utf-8")
    assert graphs.page_text(graphs.import_graph(), page) == page, (
        "docs/architecture.md is stale: run python docs/make_import_graph.py")
