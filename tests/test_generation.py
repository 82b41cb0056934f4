"""Batched generation: KV cache == no cache, batched == unbatched, seeds, hooks, multi-turn."""
from __future__ import annotations

import pytest
import torch

import lensteer
from lensteer.generation import current_batch, left_pad

PROMPTS = ["hello there !", "what is two plus two ? it is four . what is", "be kind ."]
SMOL_PROMPTS = ["What is the capital of France?", "Name three colours, one per line, and explain each."]


def _ids(gens):
    return [g.response_ids for g in gens]


def test_batched_equals_unbatched_greedy_tiny(tiny_model):
    batched = lensteer.generate(tiny_model, PROMPTS, greedy=True, max_new_tokens=10, batch_size=3)
    single = [lensteer.generate(tiny_model, [p], greedy=True, max_new_tokens=10)[0] for p in PROMPTS]
    assert _ids(batched) == _ids(single)
    assert len({len(g.prompt_ids) for g in batched}) == 3  # mixed prompt lengths really padded


def test_kv_cache_equals_no_cache_tiny(tiny_model):
    cached = lensteer.generate(tiny_model, PROMPTS, greedy=True, max_new_tokens=10)
    uncached = lensteer.generate(tiny_model, PROMPTS, greedy=True, max_new_tokens=10, use_kv_cache=False)
    assert _ids(cached) == _ids(uncached)


@pytest.mark.slow
def test_kv_cache_equals_no_cache_smollm2_real_weights(smollm2):
    cached = lensteer.generate(smollm2, SMOL_PROMPTS, greedy=True, max_new_tokens=20)
    uncached = lensteer.generate(smollm2, SMOL_PROMPTS, greedy=True, max_new_tokens=20, use_kv_cache=False)
    assert _ids(cached) == _ids(uncached)
    assert cached[0].text.startswith("The capital of France is Paris")


@pytest.mark.slow
def test_batched_equals_unbatched_smollm2(smollm2):
    batched = lensteer.generate(smollm2, SMOL_PROMPTS, greedy=True, max_new_tokens=16)
    single = [lensteer.generate(smollm2, [p], greedy=True, max_new_tokens=16)[0] for p in SMOL_PROMPTS]
    assert _ids(batched) == _ids(single)


def test_seeded_sampling_is_reproducible_and_leaves_global_rng(tiny_model):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = lensteer.generate(tiny_model, PROMPTS, max_new_tokens=12, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    b = lensteer.generate(tiny_model, PROMPTS, max_new_tokens=12, seed=7)
    c = lensteer.generate(tiny_model, PROMPTS, max_new_tokens=12, seed=8)
    assert _ids(a) == _ids(b)
    assert _ids(a) != _ids(c)


def test_hooks_fire_on_every_decoding_step(tiny_model):
    calls = []

    def record(x, hook):
        calls.append(x.shape[1])
        batch = current_batch()
        assert batch is not None and batch.prompt_length == calls[0]

    with tiny_model.hooks(fwd_hooks=[("blocks.1.hook_resid_post", record)]):
        [g] = lensteer.generate(tiny_model, ["hello there !"], greedy=True, max_new_tokens=6)
    steps = len(g.response_ids) + (1 if g.finished else 0)
    assert calls[0] == len(g.prompt_ids) and calls[1:] == [1] * (len(calls) - 1)
    assert len(calls) >= steps - 1 and current_batch() is None


def test_response_span_and_stop_token(tiny_model):
    gens = lensteer.generate(tiny_model, PROMPTS, greedy=True, max_new_tokens=30, batch_size=3)
    eos = tiny_model.tokenizer.eos_token_id
    pad = tiny_model.tokenizer.pad_token_id
    for g in gens:
        start, end = g.response_span
        assert g.input_ids[start:end] == g.response_ids
        assert eos not in g.response_ids and pad not in g.input_ids
        assert g.finished or len(g.response_ids) == 30


def test_multi_turn_continuation(tiny_model):
    [first] = lensteer.generate(tiny_model, ["hello there !"], greedy=True, max_new_tokens=5, system="be kind .")
    follow = first.continue_with("what is two plus two ?")
    assert [m["role"] for m in follow] == ["system", "user", "assistant", "user"]
    [second] = lensteer.generate(tiny_model, [follow], greedy=True, max_new_tokens=5)
    assert second.messages == follow
    chat = lensteer.format_chat(tiny_model.tokenizer, follow)
    assert second.prompt_ids == chat.input_ids


def test_left_pad_masks_pads():
    tokens, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert tokens.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]


@pytest.mark.parametrize(
    "kwargs, match",
    [({"max_new_tokens": 0}, "max_new_tokens"), ({"batch_size": 0}, "batch_size"), ({"temperature": -1}, "temperature")],
)
def test_bad_arguments(tiny_model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        lensteer.generate(tiny_model, ["hi"], **kwargs)


def test_prompt_longer_than_the_context_is_refused_or_truncated_on_request(tiny_model):
    from lensteer.errors import ContextLengthError

    n_ctx = tiny_model.cfg.n_ctx
    long = "hello there ! " * n_ctx  # far more tokens than the context holds
    with pytest.raises(ContextLengthError, match=rf"exceeds the model's context of {n_ctx} tokens") as info:
        lensteer.generate(tiny_model, [long, "be kind ."], greedy=True, max_new_tokens=4)
    assert "max_new_tokens=4" in str(info.value) and "truncate='left'" in str(info.value)
    with pytest.raises(ContextLengthError, match="lower max_new_tokens"):  # no room to generate
        lensteer.generate(tiny_model, ["be kind ."], greedy=True, max_new_tokens=n_ctx)
    with pytest.warns(UserWarning, match=rf"Truncating 1 prompt\(s\) from the left to {n_ctx - 4} tokens"):
        long_gen, short_gen = lensteer.generate(tiny_model, [long, "be kind ."], greedy=True,
                                                max_new_tokens=4, truncate="left")
    assert len(long_gen.prompt_ids) == n_ctx - 4 and len(long_gen.response_ids) <= 4
    [alone] = lensteer.generate(tiny_model, ["be kind ."], greedy=True, max_new_tokens=4)
    assert short_gen.prompt_ids == alone.prompt_ids  # prompts that fit are untouched
    # exactly at the limit is fine
    fits = lensteer.generate(tiny_model, ["be kind ."], greedy=True,
                             max_new_tokens=n_ctx - len(alone.prompt_ids))
    assert fits[0].prompt_ids == alone.prompt_ids
