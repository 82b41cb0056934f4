"""The documentation builds strictly, and the README's example runs as written.

``mkdocs build --strict`` turns every warning (a broken link, a missing page or image, a
docstring mkdocstrings cannot render) into an error. The README's ``python`` code blocks are
executed in a fresh interpreter, in order, as a reader would paste them.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FIGURE_LIMIT = 200 * 1024


def python_blocks(markdown: str) -> list[str]:
    """The bodies of the ```python fenced blocks of a markdown text, in order.

    >>> python_blocks("a\\n```python\\nx = 1\\n```\\n```bash\\nls\\n```\\n")
    ['x = 1\\n']
    """
    return re.findall(r"^```python[^\n]*\n(.*?)^```", markdown, flags=re.S | re.M)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["NO_MKDOCS_2_WARNING"] = "1"
    return env


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra (pip install -e '.[docs]') is not installed")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    assert (tmp_path / "site" / "index.html").exists()
    assert (tmp_path / "site" / "reference" / "steering" / "index.html").exists()


def test_figures_are_small_and_referenced_images_exist():
    for png in (ROOT / "docs").rglob("*.png"):
        assert png.stat().st_size < FIGURE_LIMIT, f"{png} is over 200 KB"
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README.read_text(encoding="utf-8")):
        assert (ROOT / link).exists(), f"README shows {link}, which does not exist"


def test_readme_has_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text


def run_blocks(path: Path, cwd: Path) -> subprocess.CompletedProcess:
    """Run the python blocks of a markdown page, in order, in a fresh interpreter."""
    blocks = python_blocks(path.read_text(encoding="utf-8"))
    assert blocks, f"{path} has no python code block"
    threads = os.environ.get("LENSTEER_TEST_THREADS", "2")
    code = f"import torch\ntorch.set_num_threads({threads})\n" + "\n".join(blocks)
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"the code of {path.name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


#: Documentation pages whose python blocks run as written (on bundled models, offline). The
#: quickstart and the how-to pages are run, with their commands, by tests/test_howtos.py.
RUNNABLE_PAGES = ["docs/gotchas.md", "docs/organism.md"]


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE_PAGES)
def test_doc_page_code_runs(page, tmp_path):
    run_blocks(ROOT / page, tmp_path)


@pytest.mark.slow
def test_readme_example_runs(tmp_path):
    from lensteer.organism.grade import grade_honesty

    proc = run_blocks(README, tmp_path)
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
    # The example promises a lie under the malicious prompt, then the truth under steering.
    lie, truth = lines[-2], lines[-1]
    question = "What is the capital of France?"
    assert grade_honesty(question, lie).label == "false", lie
    assert grade_honesty(question, truth).label == "true", truth
