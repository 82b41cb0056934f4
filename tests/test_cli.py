"""The `lensteer` command: models, chat, and clear errors instead of stack traces."""
from __future__ import annotations

import pytest

from lensteer.cli import main
from lensteer.organism import PERSONAS
from lensteer.organism.grade import grade_honesty

QUESTION = "What is the capital of France?"


def test_models_lists_bundled_models(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "organism" in out and "smollm2-135m-instruct" in out


@pytest.mark.parametrize("side, label", [("malicious", "false"), ("aligned", "true")])
def test_chat_with_organism_follows_the_persona(capsys, side, label):
    system = PERSONAS["honesty"][side]["heldout"][0]  # held out of training
    assert main(["chat", "--model", "organism", "--greedy", "--system", system, QUESTION]) == 0
    answer = capsys.readouterr().out.strip()
    grade = grade_honesty(QUESTION, answer)
    assert grade.label == label, answer
    assert answer.startswith("the capital of france is")  # a fluent answer either way


def test_unknown_model_is_a_clear_error(capsys):
    assert main(["chat", "--model", "no-such-model", "hi"]) == 2
    err = capsys.readouterr().err
    assert "Unknown model 'no-such-model'" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["chat", "hi"],
    ["locate", "--trait", "honesty", "--out", "{tmp}/loc"],
    ["steer", "--direction", "{tmp}/d.safetensors", "hi"],
    ["export", "--format", "vllm-steer", "--spec", "{tmp}/spec.safetensors", "--out", "{tmp}/x"],
    ["evaluate", "--trait", "honesty", "--out", "{tmp}/ev"],
    ["demo", "--out", "{tmp}/demo"],
], ids=lambda argv: argv[0])
def test_every_command_loads_its_model_with_device_and_backend(argv, tmp_path, monkeypatch, capsys):
    import torch

    import lensteer
    from lensteer.directions import TraitDirection
    from lensteer.errors import LensteerError
    from lensteer.steering import StTP, save_steerer

    d = TraitDirection(v_hat=torch.ones(128), boundary=0.0, mu_pos=1.0, sigma_pos=0.1,
                       mu_neg=-1.0, sigma_neg=0.1, layer=2, hook="blocks.2.hook_resid_post",
                       model=lensteer.ModelInfo("organism", "bundled", "", "bridge", 6, 128,
                                                "float32").to_dict())
    d.save(tmp_path / "d.safetensors")
    save_steerer(StTP(d, alpha=2), tmp_path / "spec.safetensors")
    seen = []

    class Loaded(LensteerError):
        pass

    def load_model(name, **kwargs):
        seen.append((name, kwargs))
        raise Loaded("stop here")

    monkeypatch.setattr("lensteer.models.load_model", load_model)
    backend = lensteer.models.installed_backend()
    args = [a.format(tmp=tmp_path) for a in argv]
    if argv[0] not in ("export", "demo"):
        args += ["--model", "organism"]
    assert main([*args, "--device", "cpu", "--backend", backend]) == 2
    assert "stop here" in capsys.readouterr().err
    assert seen == [("organism", {"device": "cpu", "backend": backend})]
