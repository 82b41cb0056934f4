"""One generation-settings object (GenSettings, keywords as sugar) and one pad and device rule."""
from __future__ import annotations

import pytest
import torch

import lensteer
from lensteer.evaluation import EvaluateConfig
from lensteer.evaluation.conditions import EvalGenSettings
from lensteer.evaluation.forward import continuation_logprobs
from lensteer.generation import GenSettings, pad_token_id
from lensteer.locate import build_contrastive, collect_activations
from lensteer.protocols import model_device

PROMPTS = ["hello there !", "what is two plus two ? it is four . what is", "be kind ."]


def ids(gens):
    return [g.response_ids for g in gens]


def test_generate_takes_settings_and_keywords_override_them(tiny_model):
    gen = GenSettings(max_new_tokens=5, seed=3, batch_size=2)
    by_object = lensteer.generate(tiny_model, PROMPTS, gen)
    by_keywords = lensteer.generate(tiny_model, PROMPTS, max_new_tokens=5, seed=3, batch_size=2)
    assert ids(by_object) == ids(by_keywords)
    overridden = lensteer.generate(tiny_model, PROMPTS, gen, greedy=True, max_new_tokens=4)
    assert ids(overridden) == ids(lensteer.generate(tiny_model, PROMPTS, greedy=True,
                                                    max_new_tokens=4, batch_size=2))
    assert all(len(g.response_ids) <= 4 for g in overridden)
    with pytest.raises(ValueError, match="max_new_tokens"):
        lensteer.generate(tiny_model, PROMPTS, GenSettings(max_new_tokens=0))


def test_evaluation_settings_are_generation_settings_with_reproducible_defaults():
    assert issubclass(EvalGenSettings, GenSettings)
    assert lensteer.evaluation.GenSettings is EvalGenSettings
    assert EvalGenSettings().to_dict() == {"max_new_tokens": 40, "greedy": True,
                                           "temperature": 0.6, "top_p": 0.9, "seed": 0,
                                           "batch_size": 64}
    assert EvaluateConfig.from_dict(EvaluateConfig().to_dict()).gen == EvalGenSettings()


def test_contrastive_and_locate_take_settings(given_trait_path, tiny_model):
    trait = lensteer.load_trait(given_trait_path)
    gen = GenSettings(max_new_tokens=4, greedy=True)
    a = build_contrastive(tiny_model, trait, max_scenarios=4, gen=gen, progress=False)
    b = build_contrastive(tiny_model, trait, max_scenarios=4, max_new_tokens=4, greedy=True,
                          progress=False)
    assert [s.input_ids for s in a] == [s.input_ids for s in b]
    kw = dict(layers=[1], n_folds=2, max_scenarios=4, per_token=False, neutral=False,
              progress=False)
    r1 = lensteer.locate(tiny_model, trait, gen=gen, **kw)
    r2 = lensteer.locate(tiny_model, trait, max_new_tokens=4, greedy=True, **kw)
    assert r1.table() == r2.table() and r1.settings == r2.settings
    assert r1.settings["max_new_tokens"] == 4 and r1.settings["batch_size"] == 8


@pytest.fixture
def given_trait_path(tmp_path):
    import json

    prompts = ["what is two plus two ?", "how are you today ?", "hello there !", "red blue green ?"]
    path = tmp_path / "t.json"
    path.write_text(json.dumps({
        "name": "t", "aligned_prompts": ["be kind and honest ."],
        "malicious_prompts": ["always lie ."], "eval_aligned_prompts": ["be honest ."],
        "eval_malicious_prompts": ["lie ."],
        "scenarios": [{"id": f"s{i}", "prompt": p} for i, p in enumerate(prompts)],
        "eval_scenarios": ["thank you !", "is paris the capital ?"],
    }))
    return path


def test_one_pad_rule_and_pads_never_change_a_result(tiny_model):
    tok = tiny_model.tokenizer
    assert pad_token_id(tiny_model) == tok.pad_token_id
    rows = [[1, 5, 6, 7, 8], [1, 9, 10]]
    spans = [(2, 5), (1, 3)]
    before = collect_activations(tiny_model, rows, spans, layers=[1])
    lp_before = continuation_logprobs(tiny_model, [r[:2] for r in rows], [r[2:] for r in rows])
    saved = tok.pad_token
    try:
        tok.pad_token = None  # no pad token: the first stop token pads, in every batch
        assert pad_token_id(tiny_model) == tok.eos_token_id
        after = collect_activations(tiny_model, rows, spans, layers=[1])
        lp_after = continuation_logprobs(tiny_model, [r[:2] for r in rows], [r[2:] for r in rows])
    finally:
        tok.pad_token = saved
    torch.testing.assert_close(after.means, before.means)
    for a, b in zip(lp_after, lp_before):
        torch.testing.assert_close(a, b)


def test_one_device_rule(tiny_model):
    assert model_device(tiny_model) == next(tiny_model.parameters()).device
    assert model_device(object()) == torch.device("cpu")
