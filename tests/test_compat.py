"""The hook API lensteer relies on, on whichever TransformerLens backend is installed.

`make test` runs this on TL 4's TransformerBridge; `make test-compat` runs it (and the
generation tests) on TL 3.9's HookedTransformer in `.venv-compat`.
"""
from __future__ import annotations

import pytest
import torch
from conftest import BACKEND

import lensteer
from lensteer.hooks import canonical_name, hook_name, legacy_name, parse_hook_name


def test_backend_is_the_installed_one(tiny_model):
    expected = "TransformerBridge" if BACKEND == "bridge" else "HookedTransformer"
    assert type(tiny_model).__name__ == expected
    assert lensteer.model_info(tiny_model).backend == BACKEND


def test_logits_equal_hugging_face(tiny_dirs, tiny_model):
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(tiny_dirs["llama"], attn_implementation="eager")
    tokens = torch.tensor([lensteer.format_chat(tiny_model.tokenizer, "hello there !").input_ids])
    with torch.no_grad():
        torch.testing.assert_close(tiny_model(tokens), hf(tokens).logits, atol=1e-4, rtol=0)


def test_self_check_and_names(tiny_model):
    assert max(lensteer.check_model(tiny_model).values()) < 1e-5
    name = hook_name(tiny_model, 1, "resid_post")
    assert legacy_name(tiny_model, canonical_name(tiny_model, name)) == name
    assert parse_hook_name(legacy_name(tiny_model, canonical_name(tiny_model, name))) == (1, "resid_post")


def test_hooks_fire_on_each_step_and_are_removed(tiny_model):
    seen = []
    name = hook_name(tiny_model, 0)
    with tiny_model.hooks(fwd_hooks=[(name, lambda x, hook: seen.append(tuple(x.shape)))]):
        [g] = lensteer.generate(tiny_model, ["hello there !"], greedy=True, max_new_tokens=5)
    assert seen[0][1] == len(g.prompt_ids) and all(s[1] == 1 for s in seen[1:])
    count = len(seen)
    tiny_model(torch.tensor([[1, 2, 3]]))
    assert len(seen) == count  # the context removed its hook


def test_run_with_cache_residuals_chain(tiny_model):
    names = [hook_name(tiny_model, layer, "resid_post") for layer in range(3)]
    _, cache = tiny_model.run_with_cache(torch.tensor([[1, 2, 3, 4]]), names_filter=lambda n: n in names
                                         or legacy_name(tiny_model, n) in names)
    key = lambda n: n if n in cache.cache_dict else canonical_name(tiny_model, n)  # noqa: E731
    assert all(cache[key(n)].shape == (1, 4, 32) for n in names)


def test_batched_generation_equals_unbatched(tiny_model):
    prompts = ["hello there !", "what is two plus two ? it is four . what is"]
    batched = lensteer.generate(tiny_model, prompts, greedy=True, max_new_tokens=8)
    single = [lensteer.generate(tiny_model, [p], greedy=True, max_new_tokens=8)[0] for p in prompts]
    assert [g.response_ids for g in batched] == [g.response_ids for g in single]


@pytest.mark.slow
def test_kv_cache_equals_no_cache_on_real_weights(smollm2):
    prompts = ["What is the capital of France?", "Name three colours."]
    cached = lensteer.generate(smollm2, prompts, greedy=True, max_new_tokens=16)
    uncached = lensteer.generate(smollm2, prompts, greedy=True, max_new_tokens=16, use_kv_cache=False)
    assert [g.response_ids for g in cached] == [g.response_ids for g in uncached]
    assert "Paris" in cached[0].text


def test_directory_named_llama_loads(tmp_path):
    # TL 3.9 sends local directories whose name contains "llama" down a hub-name branch.
    from conftest import build_tiny_model

    directory = build_tiny_model(tmp_path / "My-Llama-Model", "chatml", "llama", n_layers=2)
    model = lensteer.load_model(directory, backend=BACKEND)
    assert model.cfg.n_layers == 2 and lensteer.model_info(model).name == "My-Llama-Model"
