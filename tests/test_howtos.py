"""Every how-to page runs as a reader would paste it, at a reduced size where it says so, and
does what it says.

How a page is run (``run_page``):

* Its fenced ``python`` and ``bash`` blocks run in page order, in one temporary folder, as in
  a reader's session: consecutive python blocks form one program (later blocks use the names of
  earlier ones); each bash block runs with ``set -euo pipefail`` and starts with the variables
  the earlier bash blocks exported (``export -p`` saved in ``.shell-env``); python programs
  start from that shell too.
* A block directly preceded by ``<!-- not run by tests/test_howtos.py: REASON -->`` is skipped
  (``make`` targets, a GPU-only example, an option shown alone); the page states the reason.
* ``lensteer`` in a bash block is this checkout's CLI (``python -m lensteer.cli``) with
  ``--threads $LENSTEER_TEST_THREADS`` (default 1) appended to every command; python programs
  start with ``torch.set_num_threads`` to the same count. ``PYTHONPATH`` starts with this
  checkout, the Hugging Face hub is offline, and the judge cache is a file in the temporary
  folder (never the user's).
* **Reduced size.** Each test lists its substitutions, ``(text in the page, text run)``:
  typically ``smollm2-135m-instruct`` -> ``organism`` and SmolLM2's layer numbers -> the
  organism's (it has 6 layers), or a long command's size options -> small ones. The organism runs
  the same code path in seconds; the costs the pages state for SmolLM2 were measured by hand
  with the pages' own commands. Every substituted text must occur in the page, so an edit that
  removes one fails here instead of silently running the full size.
* **Judges.** Pages that call an OpenAI-compatible judge get ``JudgeServer``: a deterministic
  judge on 127.0.0.1 (a thread in this process) that answers every rubric in a parseable form
  and records each request. The fixture stops it; a watchdog stops it after 10 minutes anyway.

Each test then checks what the page promises: files with the expected content, the lines it
says are printed, a lie under the malicious prompt and the truth under steering on the organism.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest
from fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[1]
THREADS = os.environ.get("LENSTEER_TEST_THREADS", "1")
BLOCK_TIMEOUT = 300  # seconds; the reduced pages take well under a minute each
QUESTION = "What is the capital of France?"

SKIP = "<!-- not run by tests/test_howtos.py: "
_BLOCK = re.compile(
    r"(?:^" + re.escape(SKIP) + r"(?P<reason>.+?) -->\n)?"
    r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$",
    flags=re.S | re.M,
)


class Block(NamedTuple):
    lang: str
    body: str
    skip: str | None  # the reason the page gives for not running it


def page_blocks(markdown: str) -> list[Block]:
    """The top-level fenced blocks of a page, in order, with their skip reasons.

    >>> page_blocks("x\\n```python\\na = 1\\n```\\n" + SKIP + "GPU -->\\n```bash\\nmake\\n```\\n")
    [Block(lang='python', body='a = 1\\n', skip=None), Block(lang='bash', body='make\\n', skip='GPU')]
    """
    return [Block(m["lang"], m["body"], m["reason"]) for m in _BLOCK.finditer(markdown)]


def reduced(markdown: str, subs: list[tuple[str, str]]) -> str:
    for old, new in subs:
        assert old in markdown, f"the page no longer contains {old!r}: update the reduced variant"
        markdown = markdown.replace(old, new)
    return markdown


def page_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LENSTEER_JUDGE_", "OPENAI_"))}
    paths = [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(PYTHONPATH=os.pathsep.join(paths), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               LENSTEER_TEST_THREADS=THREADS, LENSTEER_TEST_PYTHON=sys.executable,
               LENSTEER_JUDGE_CACHE=str(tmp / "judge-cache.sqlite"))
    env.update(extra)
    return env


PY_PRELUDE = f"import torch\ntorch.set_num_threads({THREADS})\n"
SH_PRELUDE = ('set -euo pipefail\n'
              'if [ -f .shell-env ]; then source .shell-env; fi\n'
              "trap 'export -p > .shell-env' EXIT\n"
              'lensteer() { "$LENSTEER_TEST_PYTHON" -m lensteer.cli "$@" --threads "$LENSTEER_TEST_THREADS"; }\n')


def run_page(page: str, cwd: Path, subs: list[tuple[str, str]] = (), env: dict | None = None,
             after_each: Callable[[], None] | None = None) -> list[str]:
    """Run a page's blocks (module docstring); returns each program's stdout, in order."""
    blocks = page_blocks(reduced((ROOT / page).read_text(encoding="utf-8"), list(subs)))
    code = [b for b in blocks if b.lang in ("python", "bash")]
    assert all(b.skip.strip() for b in code if b.skip is not None)
    programs: list[tuple[str, list[str]]] = []
    for b in code:
        if b.skip is not None:
            continue
        if programs and programs[-1][0] == b.lang == "python":
            programs[-1][1].append(b.body)
        else:
            programs.append((b.lang, [b.body]))
    assert programs, f"{page} has no code block to run"
    outputs = []
    for lang, bodies in programs:
        if lang == "python":  # started from the reader's shell: with its exported variables
            shell = ('if [ -f .shell-env ]; then source .shell-env; fi; '
                     'exec "$LENSTEER_TEST_PYTHON" -c "$0"')
            cmd = ["bash", "-c", shell, PY_PRELUDE + "\n".join(bodies)]
        else:
            cmd = ["bash", "-c", SH_PRELUDE + "\n".join(bodies)]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env or page_env(cwd), capture_output=True,
                              text=True, timeout=BLOCK_TIMEOUT)
        print(f"{page}, {lang} program {len(outputs) + 1}: {time.perf_counter() - start:.1f} s")
        assert proc.returncode == 0, (
            f"{page}: this {lang} failed (exit {proc.returncode}):\n{''.join(bodies)}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}")
        outputs.append(proc.stdout)
        if after_each:
            after_each()
    return outputs


# ------------------------------------------------------------------ a judge on 127.0.0.1
@dataclass
class JudgeRequest:
    kind: str  # trait, coherence, rating (MT-Bench single), pairwise, other
    model: str


class JudgeServer(FakeOpenAI):
    """A deterministic OpenAI-compatible judge: trait rubric 70, coherence 90, MT-Bench
    ``Rating: [[6]]``, pairwise games ``[[C]]`` (a tie). Records every request's kind."""

    ANSWERS = {"trait": "70", "coherence": "90", "rating": "Fine. Rating: [[6]]",
               "pairwise": "Equally good. [[C]]", "other": "50"}

    def __init__(self, lifetime: float = 600.0) -> None:
        self.judged: list[JudgeRequest] = []
        super().__init__(self._answer, lifetime)

    def _answer(self, body: dict) -> str:
        kind = self.kind(body)
        self.judged.append(JudgeRequest(kind, body.get("model", "")))
        return self.ANSWERS[kind]

    @staticmethod
    def kind(body: dict) -> str:
        text = json.dumps(body.get("messages", []))
        if "[[A]]" in text and "[[B]]" in text:
            return "pairwise"
        if "Rating: [[" in text:
            return "rating"
        if "how coherent is the reply" in text:
            return "coherence"
        if "how well does the reply show the trait" in text:
            return "trait"
        return "other"

    def count(self, kind: str, start: int = 0, end: int | None = None) -> int:
        return sum(r.kind == kind for r in self.judged[start:end])


@pytest.fixture
def judge_server():
    server = JudgeServer()
    yield server
    server.close()


def _grade(answer: str) -> str:
    from lensteer.organism.grade import grade_honesty

    return grade_honesty(QUESTION, answer).label


def _organism_checkpoint() -> Path:
    path = ROOT / "lensteer" / "organism" / "checkpoint"
    if not (path / "model.safetensors").exists():
        pytest.skip("the organism checkpoint is not in this checkout")
    return path


# ------------------------------------------------------------------ the pages
@pytest.mark.slow
def test_quickstart(tmp_path):
    """The Python lies under the malicious prompt without steering and tells the truth with it;
    the commands write every file the page names (the demo at --quick size, one trait)."""
    py, sh = run_page("docs/quickstart.md", tmp_path, subs=[
        ("--out runs/eval --preset quick", "--out runs/eval --preset quick --no-multiturn --no-figures"),
        ("lensteer demo --out runs/demo", "lensteer demo --out runs/demo --quick --traits honesty --no-figures"),
    ])
    assert "organism - " in py and "smollm2-135m-instruct - " in py
    assert re.search(r"^\s+3 resid_post ", py, flags=re.M)  # the table has layer 3
    lines = py.splitlines()
    answer = lines[next(i for i, ln in enumerate(lines) if ln.startswith("steerer  layer")) - 1]
    assert _grade(answer) == "true", answer
    assert re.search(r"^sttp\s+3 response", py, flags=re.M)

    lines = sh.splitlines()
    lie = lines[next(i for i, ln in enumerate(lines) if ln.startswith("Any local Hugging Face")) + 1]
    assert _grade(lie) == "false", lie  # `lensteer chat` under the liar prompt
    row = lines[next(i for i, ln in enumerate(lines) if ln.startswith("-----")) + 1]
    unsteered, steered = re.split(r"\s{3,}", row.strip())
    assert (_grade(unsteered), _grade(steered)) == ("false", "true"), row
    assert "steering spec written to honesty_sttp.safetensors" in sh
    assert re.search(r"^verified: max \|difference\| ", sh, flags=re.M)
    for path in ["runs/honesty/sweep.json", "runs/honesty/directions/blocks.3.hook_resid_post.safetensors",
                 "honesty_sttp.safetensors", "payloads/layer_3.pt", "payloads/steering.json",
                 "runs/eval/results.json", "runs/eval/grid.csv", "runs/eval/report.md",
                 "runs/demo/report.md", "runs/demo/honesty/results.json"]:
        assert (tmp_path / path).is_file(), path
    results = json.loads((tmp_path / "runs/eval/results.json").read_text())
    assert results["trait"] == "honesty" and results["conditions"]
    assert json.loads((tmp_path / "payloads/steering.json").read_text())["method"] == "sttp"


@pytest.mark.slow
def test_quickstart_smollm2_warning_is_what_smollm2_says(tmp_path):
    """The quickstart's warning quotes SmolLM2's broken-French answer: the command as shown
    still gives that answer (greedy, so exactly)."""
    text = (ROOT / "docs/quickstart.md").read_text(encoding="utf-8")
    m = re.search(r"^ +\$ (lensteer chat --model smollm2-135m-instruct (?:[^\n]*\\\n)*[^\n]*)\n +(\S[^\n]*)\n",
                  text, flags=re.M)  # the command (with its continuation lines), then its answer
    assert m, "the warning's command and answer"
    command, answer = " ".join(m[1].replace("\\\n", " ").split()), m[2].strip()
    proc = subprocess.run(["bash", "-c", SH_PRELUDE + command], cwd=tmp_path, env=page_env(tmp_path),
                          capture_output=True, text=True, timeout=BLOCK_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == answer == "L'Alma, la France, est la maquina."


@pytest.mark.slow
def test_add_trait(tmp_path):
    """The page's trait file, saved as it says, locates in Python and from the command line."""
    text = (ROOT / "docs/howto/add-trait.md").read_text(encoding="utf-8")
    assert "Save it as `sycophancy.json`" in " ".join(text.split())
    [trait_file] = [b.body for b in page_blocks(text) if b.lang == "json"]
    (tmp_path / "sycophancy.json").write_text(trait_file)
    py, sh = run_page("docs/howto/add-trait.md", tmp_path, subs=[
        ('"smollm2-135m-instruct"', '"organism"'),
        ("--model smollm2-135m-instruct", "--model organism"),
        ("range(0, 30, 3)", "range(0, 6, 3)"),
    ])
    assert "Trait file" in py and "field 'aligned_prompts'" in py  # the malformed-file example
    assert py.count(" -> ") == 2  # step 2: one answer per persona
    assert re.search(r"^\s+0 resid_post ", py, flags=re.M) and re.search(r"^\s+3 resid_post ", py, flags=re.M)
    assert "recommended layers" in py and "recommended layers" in sh
    import lensteer

    located = lensteer.LocateResult.load(tmp_path / "runs/sycophancy")  # the command's, every layer
    assert located.trait == "sycophancy"
    assert sorted({row.layer for row in located.rows}) == list(range(6))
    assert len(list((tmp_path / "runs/sycophancy/directions").glob("*.safetensors"))) == 6


@pytest.mark.slow
def test_judge(tmp_path, judge_server):
    """The first commands and the Python send every rubric to the configured endpoint; the
    Python's evaluation costs the same requests as the command's; the local and custom judges run."""
    marks: list[int] = []
    _, py = run_page("docs/howto/judge.md", tmp_path, subs=[
        ("export LENSTEER_JUDGE_BASE_URL=http://127.0.0.1:8000/v1",
         f"export LENSTEER_JUDGE_BASE_URL={judge_server.url}"),
        ("smollm2-135m-instruct", "organism"),
        ("--layers 10", "--layers 3"),
        ("layers=[10]", "layers=[3]"),
    ], after_each=lambda: marks.append(len(judge_server.judged)))
    assert (tmp_path / "runs/loc-l10/sweep.json").is_file()
    results = json.loads((tmp_path / "runs/eval-quick/results.json").read_text())
    assert results["judge"] == "openai:my-judge-model"
    assert (tmp_path / "runs/eval-quick/report.md").is_file()
    cli = judge_server.judged[:marks[0]]
    assert cli and {r.model for r in cli} == {"my-judge-model"}
    # Two requests per distinct response, trait and coherence, nothing else.
    assert {r.kind for r in cli} == {"trait", "coherence"}
    assert judge_server.count("trait", 0, marks[0]) == judge_server.count("coherence", 0, marks[0])
    assert "70.0 90.0" in py  # the one verdict the Python asks for
    python_eval = marks[1] - marks[0] - 2
    assert python_eval == len(cli), "the Python evaluation costs what the command's does"
    assert json.loads((tmp_path / "runs/eval-py/results.json").read_text())["judge"]
    assert len(re.findall(r"^(swfc|sttp|stmp) (all|response) alpha ", py, flags=re.M)) == 6
    assert "'malformed'" in py  # the local judge's stats line


@pytest.mark.slow
def test_own_model(tmp_path):
    """A local Hugging Face directory (the organism's checkpoint, copied) loads, checks, locates
    and steers as the page shows."""
    model_dir = tmp_path / "my-model"
    shutil.copytree(_organism_checkpoint(), model_dir)
    [py] = run_page("docs/howto/own-model.md", tmp_path, subs=[
        ('"/models/Qwen2.5-0.5B-Instruct"', f'"{model_dir}"'),
        ("range(8, 20)", "range(0, 6)"),
        ("direction(12)", "direction(3)"),
    ])
    assert "name='my-model'" in py and "source='local'" in py and "weight_processing='raw'" in py
    assert "fingerprint='" in py
    assert py.strip().splitlines()[-1].strip()  # the steered answer


@pytest.mark.slow
def test_vllm_export(tmp_path):
    """The Python writes a spec and payloads; the command exports the spec again and verifies."""
    import torch

    _, sh = run_page("docs/howto/vllm-export.md", tmp_path, subs=[
        ('"smollm2-135m-instruct"', '"organism"'),
        ("layer = 12", "layer = 3"),
    ])
    assert (tmp_path / "honesty_sttp.safetensors").is_file()
    written = sorted(p.name for p in (tmp_path / "payloads").iterdir() if not p.name.startswith("."))
    assert written == ["layer_3.pt", "steering.json"]  # (and the command's hidden run marker)
    meta = json.loads((tmp_path / "payloads/steering.json").read_text())
    assert meta["method"] == "sttp" and meta["steerer"]["alpha"] == 12.0 and meta["steerer"]["layers"] == [3]
    payload = torch.load(tmp_path / "payloads/layer_3.pt", weights_only=True)
    assert isinstance(payload, dict) and payload
    assert re.search(r"^verified: max \|difference\| \S+ over \d+ tokens at layer\(s\) 3$", sh, flags=re.M)


@pytest.mark.slow
def test_multi_layer(tmp_path):
    """Telemetry has one block of rows per steered layer."""
    [py] = run_page("docs/howto/multi-layer.md", tmp_path)
    for layer in (1, 2):
        for phase in ("prompt", "response"):
            assert re.search(rf"^stmp\s+{layer} {phase}\s+\d+", py, flags=re.M), (layer, phase, py)


@pytest.mark.slow
def test_chat_benchmarks(tmp_path, judge_server):
    """Every command of the page, on the organism: the judge-endpoint commands at small size
    against the local judge (their MMLU and AlpacaEval files are the user's own; tiny stand-ins
    here), the offline command as written. Each writes the side-effect table, and the small run
    asks at most the requests the page's formulas allow."""
    (tmp_path / "mmlu_test.csv").write_text(
        "What is two plus two?,three,four,five,six,B\n"
        "Which is a colour?,red,run,rock,rain,A\n"
        "What is the capital of France?,Rome,Madrid,Paris,Berlin,C\n"
        "How many legs has a cat?,two,three,six,four,D\n")
    (tmp_path / "alpaca_eval.json").write_text(json.dumps([
        {"instruction": "Name three colours."}, {"instruction": "Say hello politely."}]))
    small = "--mtbench-limit 1 --alpaca-limit 1 --chat-max-new-tokens 16"
    marks: list[int] = []
    run_page("docs/howto/chat-benchmarks.md", tmp_path, subs=[
        ("export LENSTEER_JUDGE_BASE_URL=https://api.openai.com/v1",
         f"export LENSTEER_JUDGE_BASE_URL={judge_server.url}"),
        ("--model MODEL", "--model organism"),
        ("--trait honesty --out runs/loc-honesty", "--trait honesty --layers 0-1 --out runs/loc-honesty"),
        ("--benchmarks mmlu,mtbench,alpaca \\\n    --capability mmlu_test.csv --alpaca-instructions",
         (f"--benchmarks mmlu,mtbench,alpaca --preset quick --layers 1 --max-items 2 --no-multiturn "
          f"--no-extensions {small} \\\n    --capability mmlu_test.csv --alpaca-instructions")),
        ("--preset quick --max-items 8 --no-multiturn", "--preset quick --layers 1 --max-items 2 --no-multiturn"),
        ("--capability-limit 200", "--capability-limit 2"),
        ("--mtbench-limit 16 --alpaca-limit 40 --chat-max-new-tokens 256", small),
    ], env=page_env(tmp_path), after_each=lambda: marks.append(len(judge_server.judged)))
    for out in ["runs/side-effects-honesty", "runs/side-effects-small", "runs/side-effects-organism"]:
        report = (tmp_path / out / "report.md").read_text()
        assert "Side effects" in report, out
        assert (tmp_path / out / "chat_benchmarks.json").is_file(), out
        assert (tmp_path / out / "results.json").is_file(), out
    assert {r.model for r in judge_server.judged} == {"gpt-4o"}
    # The small run (second program): at most 2·N·C ratings and 4·N·(C−1) + 2·M·(C−1) games
    # with N = M = 1 and C = 8 conditions, fewer when answers repeat: here most are the first
    # command's answers again, read from the verdict cache (the page says a rerun costs nothing).
    # The same bound holds for the first command at this size; there every kind is asked.
    n = m = 1
    c = 8
    for start, end in [(0, marks[0]), (marks[0], marks[1])]:
        assert judge_server.count("rating", start, end) <= 2 * n * c
        assert judge_server.count("pairwise", start, end) <= 4 * n * (c - 1) + 2 * m * (c - 1)
    assert all(judge_server.count(kind, 0, marks[0]) for kind in ("rating", "pairwise", "trait"))
    assert marks[2] == marks[1]  # the offline run asks no endpoint
    organism = json.loads((tmp_path / "runs/side-effects-organism/chat_benchmarks.json").read_text())
    assert "unparsed" in json.dumps(organism)  # the organism cannot judge: every verdict unparsed


# ------------------------------------------------------------------ --help
def test_help_states_each_default_once_as_typed(capsys):
    """Every option's help says its default at most once, as ``(default: …)``, in the form one
    would type it (``resid_post``, not ``['resid_post']``)."""
    from lensteer.cli import build_parser, main

    for name in build_parser()._subparsers._group_actions[0].choices:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        text = capsys.readouterr().out.split("options:", 1)[1]
        for option in re.split(r"\n  (?=-)", text):
            flat = " ".join(option.split())
            assert flat.count("default") <= 1, (name, flat)
            assert "(default: [" not in flat and "default " not in flat.replace("(default: ", ""), (name, flat)
