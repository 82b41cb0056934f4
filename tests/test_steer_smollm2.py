"""Steered generation on SmolLM2-135M real weights: cache, batching and the fast path agree."""
from __future__ import annotations

import pytest
import torch

import lensteer
from lensteer.directions import TraitDirection
from lensteer.steering import StTP, steer
from lensteer.steering.fast import supports_fast_path

pytestmark = pytest.mark.slow

PROMPTS = ["What is the capital of France?", "Name three colours, one per line."]
N = 10


@pytest.fixture(scope="module")
def smol_steerer(smollm2):
    g = torch.Generator().manual_seed(0)
    d = TraitDirection(v_hat=torch.randn(576, generator=g), boundary=0.0, mu_pos=1.0, sigma_pos=0.5,
                       mu_neg=-1.0, sigma_neg=0.5, layer=10, hook="blocks.10.hook_resid_post",
                       model=lensteer.model_info(smollm2).to_dict())
    return StTP(d, alpha=30)


def ids(gens):
    return [g.response_ids for g in gens]


@pytest.fixture(scope="module")
def runs(smollm2, smol_steerer):
    fast = supports_fast_path(smollm2)
    out = {"plain": lensteer.generate(smollm2, PROMPTS, greedy=True, max_new_tokens=N,
                                      path="fast" if fast else "tl")}
    with steer(smollm2, smol_steerer):
        for kv in (True, False):
            out["tl", kv] = lensteer.generate(smollm2, PROMPTS, greedy=True, max_new_tokens=N,
                                              path="tl", use_kv_cache=kv)
        if fast:
            out["fast", True] = lensteer.generate(smollm2, PROMPTS, greedy=True, max_new_tokens=N,
                                                  path="fast")
        out["single"] = [lensteer.generate(smollm2, [p], greedy=True, max_new_tokens=N)[0]
                         for p in PROMPTS]
    return out


def test_steering_changes_real_generations(runs):
    assert ids(runs["tl", True]) != ids(runs["plain"])


def test_steered_kv_cache_equals_no_cache_real_weights(runs):
    assert ids(runs["tl", True]) == ids(runs["tl", False])


def test_fast_path_equals_transformerlens_path_real_weights(runs):
    if ("fast", True) not in runs:
        pytest.skip("the fast path needs a TransformerBridge (TL 4)")
    assert ids(runs["fast", True]) == ids(runs["tl", True])


def test_batched_equals_unbatched_real_weights(runs):
    assert ids(runs["single"]) == ids(runs.get(("fast", True), runs["tl", True]))


def test_fast_model_shares_the_bridges_weights(smollm2):
    from lensteer.steering.fast import shared_hf_model

    if not supports_fast_path(smollm2):
        pytest.skip("the fast path needs a TransformerBridge (TL 4)")
    hf = shared_hf_model(smollm2)
    bridge = dict(smollm2.original_model.named_parameters())
    ptrs = {p.data_ptr() for p in bridge.values()}
    assert all(p.data_ptr() in ptrs for p in hf.parameters())
    tokens = torch.tensor([smollm2.tokenizer("The capital of France is")["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(hf(tokens).logits, smollm2(tokens), atol=1e-4, rtol=1e-4)
