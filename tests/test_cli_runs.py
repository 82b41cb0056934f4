"""Runs of the `lensteer` command: an output folder holds one run (replaced or resumed, never
mixed), a second writer is refused, an interrupted run leaves no half result and a rerun
finishes it; every command takes --threads and shows its defaults in --help."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import lensteer
from lensteer.cli import build_parser, main
from lensteer.cli_args import default_threads
from lensteer.outdir import MARKER, lock_out

ROOT = Path(__file__).resolve().parents[1]
LOCATE = ["locate", "--model", "organism", "--trait", "honesty", "--max-scenarios", "4",
          "--folds", "2", "--max-new-tokens", "3", "--greedy", "--no-per-token"]


def _hidden_leftovers(folder: Path) -> list[str]:
    """Temporary files, staging folders and locks under ``folder`` (the run marker aside)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*") if p.name != MARKER)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def _child(code: str, *argv: str) -> subprocess.Popen:
    """``python -c code`` with ``argv``: patches first, then ``lensteer.cli.main(argv)``."""
    script = f"import sys\n{code}\nfrom lensteer.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", script, *argv], env=_env(), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# ------------------------------------------------------------------ one run per folder
def test_locate_rerun_replaces_the_folder_instead_of_mixing(tmp_path, capsys):
    out = tmp_path / "loc"
    assert main([*LOCATE, "--out", str(out)]) == 0
    assert len(list((out / "directions").glob("*.safetensors"))) == 6
    (out / "directions" / "stray.safetensors").write_bytes(b"from an older version")
    assert main([*LOCATE, "--out", str(out), "--layers", "0-2"]) == 0
    sweep = json.loads((out / "sweep.json").read_text())
    assert [r["layer"] for r in sweep["layers"]] == [0, 1, 2]
    assert sorted(p.name for p in (out / "directions").iterdir()) == [
        f"blocks.{layer}.hook_resid_post.safetensors" for layer in range(3)]
    layers = {int(p.name.split("_L")[1].split("_")[0]) for p in out.glob("projections_L*.png")}
    assert layers and layers <= {0, 1, 2}  # no plots of the first run's layers 3-5
    assert _hidden_leftovers(tmp_path) == []
    assert json.loads((out / MARKER).read_text())["command"] == "locate"
    printed = capsys.readouterr().out
    assert f"wrote {out / 'sweep.json'}" in printed


def test_locate_result_save_replaces_stale_directions(tmp_path):
    model = lensteer.load_model("organism")
    kw = {"max_scenarios": 4, "n_folds": 2, "max_new_tokens": 3, "greedy": True,
          "per_token": False, "neutral": False, "progress": False}
    lensteer.locate(model, "honesty", layers=[0, 1, 2], **kw).save(tmp_path)
    lensteer.locate(model, "honesty", layers=[4], **kw).save(tmp_path)
    assert [p.name for p in (tmp_path / "directions").iterdir()] == ["blocks.4.hook_resid_post.safetensors"]
    assert lensteer.LocateResult.load(tmp_path).sites == ["blocks.4.hook_resid_post"]


def test_export_replaces_an_earlier_export(tmp_path, capsys):
    from lensteer.directions import TraitDirection
    from lensteer.steering import StTP
    from lensteer.steering.spec import save_steerer

    def direction(layer):
        return TraitDirection(v_hat=torch.ones(8), boundary=0.0, mu_pos=1.0, sigma_pos=0.1,
                              mu_neg=-1.0, sigma_neg=0.1, layer=layer,
                              hook=f"blocks.{layer}.hook_resid_post")

    save_steerer(StTP([direction(0), direction(2)], alpha=1), tmp_path / "two.safetensors")
    save_steerer(StTP(direction(1), alpha=1), tmp_path / "one.safetensors")
    out = tmp_path / "payloads"
    for spec in ("two", "one"):
        assert main(["export", "--format", "vllm-steer", "--spec",  # no model to verify on
                     str(tmp_path / f"{spec}.safetensors"), "--out", str(out), "--no-verify"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "layer_1.pt", "steering.json"]
    assert json.loads((out / "steering.json").read_text())["files"] == {"1": "layer_1.pt"}
    assert _hidden_leftovers(tmp_path) == []


def test_second_writer_is_refused_with_the_holders_pid(tmp_path, capsys):
    """Two `lensteer locate` into one folder: the second stops at once; the first finishes."""
    out = tmp_path / "loc"
    slow = ("import time, lensteer.locate\nL = sys.modules['lensteer.locate']\n_run = L.locate\n"
            "L.locate = lambda *a, **k: (time.sleep(4), _run(*a, **k))[1]")
    first = _child(slow, *LOCATE, "--out", str(out))
    lock = tmp_path / ".loc.lock"
    deadline = time.time() + 120
    while not (lock.exists() and lock.read_text().strip()) and first.poll() is None:
        assert time.time() < deadline
        time.sleep(0.05)
    assert first.poll() is None, first.communicate()
    assert main([*LOCATE, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"lensteer: error: {out} is being written by another lensteer run "
                   f"(pid {first.pid}): wait for it to finish, or pass another --out.")
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert len(list((out / "directions").glob("*.safetensors"))) == 6
    assert _hidden_leftovers(tmp_path) == []  # the lock went with its holder
    with lock_out(out):  # the same refusal inside one process (flock is per open file)
        assert main([*LOCATE, "--out", str(out)]) == 2
    assert f"(pid {os.getpid()})" in capsys.readouterr().err


# ------------------------------------------------------------------ evaluate: resume, interrupts
EVALUATE = ["evaluate", "--model", "organism", "--trait", "honesty", "--preset", "quick",
            "--max-items", "4", "--max-new-tokens", "6", "--capability", "none", "--no-multiturn",
            "--no-extensions", "--layers", "1,2"]


@pytest.fixture(scope="module")
def located(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("located") / "loc"
    assert main([*LOCATE, "--out", str(out)]) == 0
    return out


def test_evaluate_resumes_in_its_own_folder(located, tmp_path, capsys):
    out = tmp_path / "ev"
    args = [*EVALUATE, "--locate", str(located), "--out", str(out)]
    assert main(args) == 0
    first = json.loads((out / "results.json").read_text())
    cells = (out / "sweep_cells.jsonl").read_text()
    assert main(args) == 0  # a rerun reads every cell back
    again = json.loads((out / "results.json").read_text())
    assert again["sweep"]["rows"] == first["sweep"]["rows"]
    assert (out / "sweep_cells.jsonl").read_text() == cells  # nothing computed twice
    assert main([*args, "--no-figures"]) == 0
    assert not (out / "figures").exists()  # a run's report never sits beside older figures
    assert _hidden_leftovers(tmp_path) == []


def test_sigterm_while_writing_leaves_no_half_result_and_a_rerun_finishes(located, tmp_path, capsys):
    out = tmp_path / "ev"
    args = [*EVALUATE, "--locate", str(located), "--out", str(out)]
    assert main(args) == 0  # a finished run, then a rerun killed mid-write
    kill = ("import os, signal, lensteer.evaluation.report as R\nfrom lensteer.io import atomic_path\n"
            "def _save(fig, path):\n"
            "    with atomic_path(path) as tmp:\n"
            "        tmp.write_bytes(b'half a png')\n"
            "        os.kill(os.getpid(), signal.SIGTERM)\n"
            "        raise AssertionError('SIGTERM did not interrupt')\n"
            "R._save = _save")
    child = _child(kill, *args)
    _, stderr = child.communicate(timeout=300)
    assert child.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "lensteer: interrupted"
    assert (out / "grid.csv").exists() and not (out / "results.json").exists()  # not finished
    assert _hidden_leftovers(tmp_path) == []  # no temporary png, staging folder or lock
    assert main(args) == 0  # the rerun finishes the job
    assert json.loads((out / "results.json").read_text())["trait"] == "honesty"
    assert (out / "figures" / "frontier.png").stat().st_size > 1000
    assert _hidden_leftovers(tmp_path) == []


def test_ctrl_c_is_one_line_exit_130_and_releases_the_folder(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("lensteer.models.load_model", interrupted)
    out = tmp_path / "loc"
    assert main([*LOCATE, "--out", str(out)]) == 130
    assert capsys.readouterr().err == "lensteer: interrupted\n"
    assert list(tmp_path.iterdir()) == []  # no lock file, no folder


# ------------------------------------------------------------------ threads and help
def test_thread_policy():
    assert default_threads(cpus=1, load=0.0) == 1
    assert default_threads(cpus=2, load=0.0) == 1  # a 2-core machine never gets 2 threads
    assert default_threads(cpus=8, load=0.0) == 2
    assert default_threads(cpus=8, load=6.5) == 1  # one core idle
    assert default_threads(cpus=8, load=12.0) == 1  # overloaded: still one
    assert 1 <= default_threads() <= 2


def test_every_command_sets_threads_before_work_and_restores_them(monkeypatch, capsys):
    seen = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), real(n))[1])
    before = torch.get_num_threads()
    assert main(["models", "--threads", "3"]) == 0
    assert seen == [3, before] and torch.get_num_threads() == before
    seen.clear()
    monkeypatch.setattr("lensteer.cli.default_threads", lambda: 1)
    assert main(["models"]) == 0
    assert seen == [1, before]
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert set(commands) == {"models", "chat", "locate", "steer", "export", "evaluate", "demo",
                             "serve"}
    for name, command in commands.items():
        assert command.get_default("threads") == "auto", name


def test_help_shows_defaults_for_every_command(capsys):
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in commands:
        with pytest.raises(SystemExit) as done:
            main([name, "--help"])
        assert done.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "--threads THREADS torch threads; 'auto' = 1 on machines with at most 2" in text, name
        assert "(default: auto)" in text, name
    for name, option, default in [("chat", "--max-new-tokens", 64), ("locate", "--folds", 5),
                                  ("locate", "--layers", "all"), ("steer", "--alpha", 1.0),
                                  ("evaluate", "--preset", "paper"), ("demo", "--out", "runs/demo")]:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        text = " ".join(capsys.readouterr().out.split()).split("options:", 1)[1]
        after = text.split(f" {option} ", 1)[1].split(" --", 1)[0]
        assert f"(default: {default})" in after, (name, option, after)


def test_next_writer_removes_a_killed_runs_leftovers_only(tmp_path):
    out = tmp_path / "ev"
    (out / "figures").mkdir(parents=True)
    stale = [out / ".grid.csv.tmp-abc", out / "figures" / ".frontier.png.tmp-1", tmp_path / ".ev.tmp-9-x"]
    for path in stale[:2]:
        path.write_text("half")
    stale[2].mkdir()
    (out / ".figures.tmp-3-y").mkdir()
    other = out / "honesty"  # a folder that holds a run of its own is not ours to clean
    other.mkdir()
    (other / MARKER).write_text('{"command": "evaluate"}')
    (other / ".report.md.tmp-z").write_text("someone else's")
    with lock_out(out):
        assert (tmp_path / ".ev.lock").read_text().strip() == str(os.getpid())
    assert _hidden_leftovers(tmp_path) == ["ev/honesty/.report.md.tmp-z"]


def test_evaluate_search_options_reach_the_config():
    from lensteer.evaluation.cli import _config

    args = build_parser().parse_args(["evaluate", "--model", "organism", "--trait", "honesty", "--out", "x", "--search", "halving",
                                      "--halving-start", "3", "--halving-ties", "both", "--top-layers", "2",
                                      "--seed", "5", "--coherence-ratio", "0.85"])
    halving = _config(args).halving
    assert (halving.start_items, halving.ties, halving.top_layers, halving.seed) == (3, "both", 2, 5)
    assert _config(args).coherence_ratio == 0.85
    plain = _config(build_parser().parse_args(["evaluate", "--model", "organism", "--trait", "honesty", "--out", "x",
                                               "--search", "halving"])).halving
    assert (plain.start_items, plain.ties, plain.top_layers) == (4, "stronger", None)
    assert _config(build_parser().parse_args(["evaluate", "--model", "organism", "--trait", "honesty",
                                              "--out", "x"])).coherence_ratio == 0.9
