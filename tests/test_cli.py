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
