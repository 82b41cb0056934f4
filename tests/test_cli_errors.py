"""Bad arguments and bad files for every command: one line `lensteer: error: …`, exit status 2,
before any generation, and nothing left behind (the output folder is not created, no lock or
temporary file remains)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import lensteer
from lensteer import io
from lensteer.cli import main
from lensteer.directions import TraitDirection
from lensteer.steering import StTP, SwFC
from lensteer.steering.spec import save_steerer

D_MODEL = 128  # the organism's
#: The TransformerLens backend this environment cannot load.
OTHER_BACKEND = "hooked" if lensteer.models.installed_backend() == "bridge" else "bridge"


def _direction(layer: int = 2, d_model: int = D_MODEL) -> TraitDirection:
    return TraitDirection(v_hat=torch.ones(d_model), boundary=0.0, mu_pos=1.0, sigma_pos=0.1,
                          mu_neg=-1.0, sigma_neg=0.1, layer=layer,
                          hook=f"blocks.{layer}.hook_resid_post", trait="honesty")


def _meta_variant(src: Path, dst: Path, edit) -> None:
    tensors, meta = io.load_tensors(src)
    edit(meta)
    io.save_tensors(dst, tensors, meta)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """Good and bad input files, outside the folder each case runs in."""
    root = tmp_path_factory.mktemp("inputs")
    good = root / "dir.safetensors"
    _direction().save(good)
    raw = good.read_bytes()
    (root / "garbage.safetensors").write_bytes(os.urandom(300))
    (root / "truncated.safetensors").write_bytes(raw[: len(raw) // 2])
    save_file({"v_hat": torch.ones(D_MODEL)}, str(root / "plain.safetensors"))  # no metadata
    _meta_variant(good, root / "no_boundary.safetensors", lambda m: m.pop("boundary"))
    _meta_variant(good, root / "bad_boundary.safetensors", lambda m: m.update(boundary="high"))
    _meta_variant(good, root / "bad_layer.safetensors", lambda m: m.update(layer="two"))
    _direction(d_model=4).save(root / "narrow.safetensors")
    save_steerer(StTP(_direction(), alpha=2), root / "spec.safetensors")
    save_steerer(SwFC(_direction(), alpha=2), root / "swfc_spec.safetensors")
    save_steerer(StTP(_direction(), alpha=2, positions="response"), root / "response_spec.safetensors")
    spec = root / "spec.safetensors"
    _meta_variant(spec, root / "spec_no_steerer.safetensors", lambda m: m.pop("steerer"))
    _meta_variant(spec, root / "spec_bad_alpha.safetensors", lambda m: m["steerer"].update(alpha="x"))
    _meta_variant(spec, root / "spec_no_dirs.safetensors", lambda m: m.update(directions=[]))
    (root / "trait_bad.json").write_text("{not json")
    (root / "trait_incomplete.json").write_text(json.dumps({"name": "x", "description": "y"}))
    (root / "mc_bad.jsonl").write_text('{"question": "q", "options": ["a", "b"], "answer": "A"}\n')
    (root / "a_file").write_text("not a folder")
    bad_sweep = root / "loc_bad"
    bad_sweep.mkdir()
    (bad_sweep / "sweep.json").write_text('{"kind": "lensteer.LocateResult", "sites": [')
    no_fields = root / "loc_fields"
    no_fields.mkdir()
    (no_fields / "sweep.json").write_text(json.dumps({"kind": "lensteer.LocateResult", "sites": []}))
    model = lensteer.load_model("organism")
    loc = lensteer.locate(model, "honesty", layers=[0, 1], max_scenarios=4, n_folds=2,
                          max_new_tokens=3, greedy=True, per_token=False, neutral=False,
                          progress=False)
    loc.save(root / "loc01")
    return root


def _sweep_checkpoint(run: Path, second_line: str) -> None:
    run.mkdir()
    (run / "sweep_cells.jsonl").write_text('{"fingerprint": "abc"}\n' + second_line + "\n")


M = ["--model", "organism"]
LOC = [*M, "--trait", "honesty", "--out", "{out}"]
EV = [*M, "--trait", "honesty", "--out", "{out}"]
STEER = [*M, "--direction", "{files}/dir.safetensors"]
EXPORT = ["--format", "vllm-steer", "--spec", "{files}/spec.safetensors", "--out", "{out}"]

# (id, argv, what to create first in the run folder: None or a function of the folder)
CASES = [
    ("models-unknown-option", ["models", "--bogus"], None),
    ("models-threads-0", ["models", "--threads", "0"], None),
    ("chat-no-prompt", ["chat"], None),
    ("chat-max-new-tokens-0", ["chat", "--max-new-tokens", "0", "hi"], None),
    ("chat-temperature-nan", ["chat", "--temperature", "nan", "hi"], None),
    ("chat-temperature-negative", ["chat", "--temperature", "-1", "hi"], None),
    ("chat-threads-word", ["chat", "--threads", "many", "hi"], None),
    ("chat-unknown-model", ["chat", "--model", "no-such-model", "hi"], None),
    ("chat-too-long", ["chat", "word " * 1100], None),
    ("chat-no-room-to-generate", ["chat", "--max-new-tokens", "2000", "hi"], None),
    ("chat-device-unknown", ["chat", "--device", "warp-drive", "hi"], None),
    ("chat-backend-not-installed", ["chat", "--backend", OTHER_BACKEND, "hi"], None),
    ("locate-layers-wrap", ["locate", *LOC, "--layers=-100"], None),
    ("locate-layers-past-end", ["locate", *LOC, "--layers", "6"], None),
    ("locate-layers-reversed", ["locate", *LOC, "--layers", "5-3"], None),
    ("locate-layers-word", ["locate", *LOC, "--layers", "a"], None),
    ("locate-layers-empty", ["locate", *LOC, "--layers", ""], None),
    ("locate-layers-empty-item", ["locate", *LOC, "--layers", "1,,2"], None),
    ("locate-folds-1", ["locate", *LOC, "--folds", "1"], None),
    ("locate-folds-vs-scenarios", ["locate", *LOC, "--max-scenarios", "3"], None),
    ("locate-folds-too-many", ["locate", *LOC, "--folds", "200"], None),
    ("locate-method", ["locate", *LOC, "--method", "magic"], None),
    ("locate-hook", ["locate", *LOC, "--hooks", "resid_pots"], None),
    ("locate-max-new-tokens-0", ["locate", *LOC, "--max-new-tokens", "0"], None),
    ("locate-batch-size-0", ["locate", *LOC, "--batch-size", "0"], None),
    ("locate-prompts-0", ["locate", *LOC, "--prompts-per-scenario", "0"], None),
    ("locate-given-without-responses", ["locate", *LOC, "--responses", "given"], None),
    ("locate-trait-unknown", ["locate", *M, "--trait", "nope", "--out", "{out}"], None),
    ("locate-trait-missing-file", ["locate", *M, "--trait", "{files}/none.json", "--out", "{out}"], None),
    ("locate-trait-not-json", ["locate", *M, "--trait", "{files}/trait_bad.json", "--out", "{out}"], None),
    ("locate-trait-incomplete", ["locate", *M, "--trait", "{files}/trait_incomplete.json", "--out", "{out}"], None),
    ("locate-model-unknown", ["locate", "--model", "nope", "--trait", "honesty", "--out", "{out}"], None),
    ("locate-out-is-file", ["locate", *M, "--trait", "honesty", "--out", "{files}/a_file"], None),
    ("locate-out-under-file", ["locate", *M, "--trait", "honesty", "--out", "{files}/a_file/run"], None),
    ("locate-out-not-writable", ["locate", *M, "--trait", "honesty", "--out", "/sys/lensteer-run"], None),
    ("locate-out-foreign", ["locate", *LOC], lambda out: (out.mkdir(), (out / "notes.txt").write_text("mine"))),
    ("locate-out-evaluate-run", ["locate", *LOC], lambda out: _sweep_checkpoint(out, "")),
    ("locate-out-deep", ["locate", *M, "--trait", "nope", "--out", "{tmp}/a/b/run"], None),
    ("steer-missing-file", ["steer", *M, "--direction", "{files}/none.safetensors", "hi"], None),
    ("steer-folder", ["steer", *M, "--direction", "{files}", "hi"], None),
    ("steer-garbage", ["steer", *M, "--direction", "{files}/garbage.safetensors", "hi"], None),
    ("steer-truncated", ["steer", *M, "--direction", "{files}/truncated.safetensors", "hi"], None),
    ("steer-not-lensteer", ["steer", *M, "--direction", "{files}/plain.safetensors", "hi"], None),
    ("steer-missing-field", ["steer", *M, "--direction", "{files}/no_boundary.safetensors", "hi"], None),
    ("steer-wrong-type", ["steer", *M, "--direction", "{files}/bad_boundary.safetensors", "hi"], None),
    ("steer-wrong-layer-type", ["steer", *M, "--direction", "{files}/bad_layer.safetensors", "hi"], None),
    ("steer-spec-as-direction", ["steer", *M, "--direction", "{files}/spec.safetensors", "hi"], None),
    ("steer-other-width", ["steer", *M, "--direction", "{files}/narrow.safetensors", "hi"], None),
    ("steer-method", ["steer", *STEER, "--method", "nope", "hi"], None),
    ("steer-alpha-nan", ["steer", *STEER, "--alpha", "nan", "hi"], None),
    ("steer-alpha-negative", ["steer", *STEER, "--alpha", "-1", "hi"], None),
    ("steer-sign", ["steer", *STEER, "--sign", "sideways", "hi"], None),
    ("steer-positions", ["steer", *STEER, "--positions", "nowhere", "hi"], None),
    ("steer-threshold", ["steer", *STEER, "--threshold", "p200", "hi"], None),
    ("steer-token-calibration-without-stats", ["steer", *STEER, "--calibration", "token", "hi"], None),
    ("steer-layers-past-end", ["steer", *STEER, "--layers", "9", "hi"], None),
    ("steer-layers-wrap", ["steer", *STEER, "--layers=-7", "hi"], None),
    ("steer-max-new-tokens-0", ["steer", *STEER, "--max-new-tokens", "0", "hi"], None),
    ("steer-save-spec-folder", ["steer", *STEER, "--save-spec", "{files}", "hi"], None),
    ("steer-save-spec-unwritable", ["steer", *STEER, "--save-spec", "/sys/x.safetensors", "hi"], None),
    ("steer-too-long", ["steer", *STEER, "word " * 1100], None),
    ("export-format", ["export", "--format", "gguf", "--spec", "{files}/spec.safetensors", "--out", "{out}"], None),
    ("export-missing", ["export", "--format", "vllm-steer", "--spec", "{files}/none", "--out", "{out}"], None),
    ("export-garbage", ["export", "--format", "vllm-steer", "--spec", "{files}/garbage.safetensors", "--out", "{out}"], None),
    ("export-truncated", ["export", "--format", "vllm-steer", "--spec", "{files}/truncated.safetensors", "--out", "{out}"], None),
    ("export-direction-as-spec", ["export", "--format", "vllm-steer", "--spec", "{files}/dir.safetensors", "--out", "{out}"], None),
    ("export-spec-no-steerer", ["export", "--format", "vllm-steer", "--spec", "{files}/spec_no_steerer.safetensors", "--out", "{out}"], None),
    ("export-spec-bad-alpha", ["export", "--format", "vllm-steer", "--spec", "{files}/spec_bad_alpha.safetensors", "--out", "{out}"], None),
    ("export-spec-no-directions", ["export", "--format", "vllm-steer", "--spec", "{files}/spec_no_dirs.safetensors", "--out", "{out}"], None),
    ("export-swfc", ["export", "--format", "vllm-steer", "--spec", "{files}/swfc_spec.safetensors", "--out", "{out}"], None),
    ("export-response-positions", ["export", "--format", "vllm-steer", "--spec", "{files}/response_spec.safetensors", "--out", "{out}"], None),
    ("export-out-is-file", ["export", "--format", "vllm-steer", "--spec", "{files}/spec.safetensors", "--out", "{files}/a_file"], None),
    ("export-out-foreign", ["export", *EXPORT], lambda out: (out.mkdir(), (out / "x.txt").write_text("mine"))),
    ("evaluate-preset", ["evaluate", *EV, "--preset", "huge"], None),
    ("evaluate-layers-wrap", ["evaluate", *EV, "--layers=-100"], None),
    ("evaluate-layers-reversed", ["evaluate", *EV, "--layers", "5-3"], None),
    ("evaluate-layers-word", ["evaluate", *EV, "--layers", "a"], None),
    ("evaluate-layers-not-located", ["evaluate", *EV, "--locate", "{files}/loc01", "--layers", "4"], None),
    ("evaluate-max-new-tokens-0", ["evaluate", *EV, "--max-new-tokens", "0"], None),
    ("evaluate-batch-size-0", ["evaluate", *EV, "--batch-size", "0"], None),
    ("evaluate-turns-0", ["evaluate", *EV, "--turns", "0"], None),
    ("evaluate-multiturn-cache", ["evaluate", *EV, "--multiturn-cache", "keep"], None),
    ("evaluate-conversations-0", ["evaluate", *EV, "--conversations", "0"], None),
    ("evaluate-max-items-0", ["evaluate", *EV, "--max-items", "0"], None),
    ("evaluate-capability-missing", ["evaluate", *EV, "--capability", "{files}/none.csv"], None),
    ("evaluate-capability-bad", ["evaluate", *EV, "--capability", "{files}/mc_bad.jsonl"], None),
    ("evaluate-locate-missing", ["evaluate", *EV, "--locate", "{files}/nowhere"], None),
    ("evaluate-locate-corrupt", ["evaluate", *EV, "--locate", "{files}/loc_bad"], None),
    ("evaluate-locate-fields", ["evaluate", *EV, "--locate", "{files}/loc_fields"], None),
    ("evaluate-judge-openai-unset", ["evaluate", *EV, "--locate", "{files}/loc01", "--judge", "openai"], None),
    ("evaluate-trait-unknown", ["evaluate", *M, "--trait", "nope", "--out", "{out}", "--locate", "{files}/loc01"], None),
    ("evaluate-out-is-file", ["evaluate", *M, "--trait", "honesty", "--out", "{files}/a_file"], None),
    ("evaluate-out-is-locate-run", ["evaluate", *M, "--trait", "honesty", "--out", "{files}/loc01"], None),
    ("evaluate-corrupt-checkpoint", ["evaluate", *EV], lambda out: _sweep_checkpoint(out, "{not json")),
    ("evaluate-checkpoint-not-a-cell", ["evaluate", *EV], lambda out: _sweep_checkpoint(out, '{"key": 3}')),
    ("evaluate-search-unknown", ["evaluate", *EV, "--search", "beam"], None),
    ("evaluate-top-layers-without-halving", ["evaluate", *EV, "--top-layers", "2"], None),
    ("evaluate-coherence-ratio-above-1", ["evaluate", *EV, "--coherence-ratio", "1.5"], None),
    ("evaluate-coherence-ratio-negative", ["evaluate", *EV, "--coherence-ratio=-0.1"], None),
    ("evaluate-halving-ties-without-halving", ["evaluate", *EV, "--halving-ties", "both"], None),
    ("evaluate-halving-ties-unknown", ["evaluate", *EV, "--search", "halving", "--halving-ties", "weaker"], None),
    ("evaluate-halving-start-zero", ["evaluate", *EV, "--search", "halving", "--halving-start", "0"], None),
    ("evaluate-cells-per-batch-zero", ["evaluate", *EV, "--cells-per-batch", "0"], None),
    ("evaluate-corrupt-search-checkpoint", ["evaluate", *EV, "--search", "halving"],
     lambda out: (_sweep_checkpoint(out, ""),
                  (out / "search_cells.jsonl").write_text('{"fingerprint": "abc"}\n{not json\n'))),
    ("demo-trait-unknown", ["demo", "--out", "{out}", "--traits", "honesty,nope"], None),
    ("demo-traits-empty", ["demo", "--out", "{out}", "--traits", ","], None),
    ("demo-model-unknown", ["demo", "--out", "{out}", "--model", "nope"], None),
    ("demo-out-is-file", ["demo", "--out", "{files}/a_file"], None),
    ("demo-threads-0", ["demo", "--out", "{out}", "--threads", "0"], None),
    ("demo-backend-not-installed", ["demo", "--out", "{out}", "--backend", OTHER_BACKEND], None),
    ("demo-device-unknown", ["demo", "--out", "{out}", "--device", "warp-drive"], None),
    ("evaluate-backend-unknown", ["evaluate", *EV, "--backend", "turbo"], None),
    ("locate-device-unknown", ["locate", *LOC, "--device", "warp-drive"], None),
    ("steer-backend-not-installed", ["steer", *STEER, "--backend", OTHER_BACKEND, "hi"], None),
    ("demo-corrupt-checkpoint", ["demo", "--out", "{out}"],
     lambda out: (out.mkdir(), _sweep_checkpoint(out / "honesty", "{not json"))),
]


def _snapshot(folder: Path) -> dict[str, tuple[int, int] | None]:
    """Every file and folder under ``folder``, files with their size and mtime."""
    return {str(p.relative_to(folder)): None if p.is_dir() else (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*")}


def test_cases_cover_every_command():
    commands = {argv[0] for _, argv, _ in CASES}
    assert commands == {"models", "chat", "locate", "steer", "evaluate", "demo", "export"}


@pytest.mark.parametrize("argv, setup", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(argv, setup, files, tmp_path, capsys,
                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LENSTEER_JUDGE_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)

    def no_generation(*args, **kwargs):
        raise AssertionError("generation started before the bad input was found")

    monkeypatch.setattr("lensteer.generation.core.choose_path", no_generation)  # generate's first step
    out = tmp_path / "run"
    if setup is not None:
        setup(out)
    before, inputs = _snapshot(tmp_path), _snapshot(files)
    args = [a.format(out=out, files=files, tmp=tmp_path) for a in argv]
    code = main(args)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("lensteer: error: "), err
    assert "Traceback" not in err
    assert _snapshot(tmp_path) == before  # no output folder, lock, probe or temporary file
    assert _snapshot(files) == inputs
