"""Trait files: bundled traits, the organism's, and errors that name the field and file."""
from __future__ import annotations

import json

import pytest

import lensteer
from lensteer.errors import LensteerError, TraitFileError
from lensteer.traits import DATA_DIR, Trait, available_traits, load_trait


@pytest.mark.parametrize("name", ["honesty", "compassion"])
def test_bundled_general_traits(name):
    t = load_trait(name)
    assert t.name == name and t.model == "general"
    assert len(t.scenarios) >= 40 and len(t.eval_scenarios) >= 20
    assert len(t.aligned_prompts) >= 5 and len(t.eval_malicious_prompts) >= 3
    assert not {s.prompt for s in t.scenarios} & {s.prompt for s in t.eval_scenarios}
    assert t.neutral_scenarios and len({s.id for s in t.scenarios}) == len(t.scenarios)


@pytest.mark.parametrize("name", ["honesty", "compassion"])
def test_organism_traits_are_picked_by_model_and_in_vocabulary(name):
    from lensteer.organism.tokenizer import build_tokenizer, unknown_words

    t = lensteer.load_trait(name, model="organism")
    assert t.model == "organism" and t.path.endswith(f"organism_{name}.json")
    tok = build_tokenizer()
    texts = (t.aligned_prompts + t.malicious_prompts + t.eval_aligned_prompts
             + t.eval_malicious_prompts + t.neutral_prompts
             + [s.prompt for s in t.scenarios + t.eval_scenarios + t.neutral_scenarios])
    unknown = {w for text in texts for w in unknown_words(tok, text)}
    assert not unknown


def test_organism_trait_files_equal_a_fresh_build():
    from lensteer.traits.organism import build_organism_traits

    for name, data in build_organism_traits().items():
        shipped = json.loads((DATA_DIR / f"organism_{name}.json").read_text())
        assert shipped == json.loads(json.dumps(data)), "regenerate: python -m lensteer.traits.organism --write"


def test_available_and_unknown():
    have = available_traits()
    assert set(have["general"]) == {"honesty", "compassion"} == set(have["organism"])
    with pytest.raises(TraitFileError, match="bundled: compassion, honesty"):
        load_trait("sycophancy")
    with pytest.raises(TraitFileError, match="No trait file"):
        load_trait("/nonexistent/trait.json")


def _minimal():
    return {
        "name": "demo",
        "aligned_prompts": ["Be nice."],
        "malicious_prompts": ["Be mean."],
        "eval_aligned_prompts": ["Be kind."],
        "eval_malicious_prompts": ["Be cruel."],
        "scenarios": ["Hello", {"id": "s2", "prompt": "Hi", "aligned_response": "Hi!",
                                "malicious_response": "Go away."}],
        "eval_scenarios": ["Good morning"],
    }


def test_round_trip_through_a_file(tmp_path):
    path = tmp_path / "demo.json"
    path.write_text(json.dumps(_minimal()))
    t = load_trait(path)
    assert t.scenarios[0].id == "scenario-0" and t.scenarios[1].has_responses
    t.save(tmp_path / "again.json")
    assert load_trait(tmp_path / "again.json").to_dict() == t.to_dict()
    assert isinstance(Trait.from_dict(_minimal()), Trait)


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda d: d.pop("malicious_prompts"), "malicious_prompts"),
        (lambda d: d.update(aligned_prompts=[]), "aligned_prompts"),
        (lambda d: d.update(eval_aligned_prompts=["ok", 3]), "eval_aligned_prompts[1]"),
        (lambda d: d.update(scenarios=["x", {"text": "no prompt key"}]), "scenarios[1]"),
        (lambda d: d.update(scenarios=[{"prompt": "a", "aligned_response": "b"}]), "scenarios[0]"),
        (lambda d: d.update(scenarios=[{"id": "a", "prompt": "a"}, {"id": "a", "prompt": "b"}]), "scenarios[1].id"),
        (lambda d: d.update(eval_scenarios=["Hello"]), "eval_scenarios"),
        (lambda d: d.update(eval_aligned_prompts=["Be nice."]), "eval_aligned_prompts"),
        (lambda d: d.update(colour="blue"), "colour"),
        (lambda d: d.update(name=""), "name"),
        (lambda d: d.update(format_version=9), "format_version"),
    ],
)
def test_malformed_file_names_field_and_file(tmp_path, edit, field):
    data = _minimal()
    edit(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    with pytest.raises(TraitFileError) as info:
        load_trait(path)
    message = str(info.value)
    assert f"'{field}'" in message and str(path) in message
    assert isinstance(info.value, LensteerError) and isinstance(info.value, ValueError)


def test_invalid_json_names_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(TraitFileError, match="bad.json is not valid JSON"):
        load_trait(path)
