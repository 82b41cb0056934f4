"""Pooled activations: equal to run_with_cache means, batching- and padding-invariant, one pass."""
from __future__ import annotations

import pytest
import torch

from lensteer.activations import collect_activations, resolve_sites
from lensteer.errors import ActivationError, LensteerError
from lensteer.generation import left_pad
from lensteer.hooks import HOOK_POINTS

ROWS = [
    [5, 6, 7, 8, 9, 10, 11],
    [11, 12, 13, 14],
    [20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32],
    [40, 41, 42],
]
SPANS = [(2, 7), (1, 3), (4, 13), (0, 3)]


def _cache_means(model, rows, spans, sites, batched: bool):
    """Reference: span means from a full run_with_cache (padded batch or one sequence each)."""
    out = torch.zeros(len(rows), len(sites), int(model.cfg.d_model))
    with torch.no_grad():
        if batched:
            tokens, mask = left_pad(rows, 0)
            _, cache = model.run_with_cache(tokens, attention_mask=mask, names_filter=list(sites))
        for i, (row, (a, b)) in enumerate(zip(rows, spans)):
            if batched:
                offset, k = tokens.shape[1] - len(row), i
            else:
                _, cache = model.run_with_cache(torch.tensor([row]), names_filter=list(sites))
                offset, k = 0, 0
            for j, site in enumerate(sites):
                out[i, j] = cache[site][k, offset + a: offset + b].float().mean(0)
    return out


def test_pooled_equals_run_with_cache_every_layer_and_point(tiny_model):
    sites = resolve_sites(tiny_model, points=HOOK_POINTS)
    assert len(sites) == 3 * 5
    acts = collect_activations(tiny_model, ROWS, SPANS, points=HOOK_POINTS, batch_size=1)
    assert acts.sites == sites and acts.means.dtype == torch.float32
    ref = _cache_means(tiny_model, ROWS, SPANS, sites, batched=False)
    torch.testing.assert_close(acts.means, ref, atol=1e-5, rtol=0)
    # the same tokens in one padded batch: equal to the cache of that batch
    batched = collect_activations(tiny_model, ROWS, SPANS, points=HOOK_POINTS, batch_size=4)
    ref_batched = _cache_means(tiny_model, ROWS, SPANS, sites, batched=True)
    torch.testing.assert_close(batched.means, ref_batched, atol=1e-5, rtol=0)
    assert batched.n_tokens.tolist() == [5, 2, 9, 3]


def test_batched_equals_unbatched_and_padding_never_enters(tiny_model):
    one = collect_activations(tiny_model, ROWS, SPANS, batch_size=1)
    many = collect_activations(tiny_model, ROWS, SPANS, batch_size=3)
    torch.testing.assert_close(many.means, one.means, rtol=1e-5, atol=1e-4)
    # lots of padding (a long partner) and a different pad token change nothing
    long_partner = [list(range(3, 60))]
    padded = collect_activations(tiny_model, long_partner + ROWS, [(0, 57)] + SPANS, batch_size=5)
    torch.testing.assert_close(padded.means[1:], one.means, rtol=1e-5, atol=1e-4)
    tok = tiny_model.tokenizer
    old = tok.pad_token
    try:
        tok.pad_token = tok.eos_token
        other_pad = collect_activations(tiny_model, long_partner + ROWS, [(0, 57)] + SPANS, batch_size=5)
    finally:
        tok.pad_token = old
    torch.testing.assert_close(other_pad.means, padded.means, rtol=1e-6, atol=1e-6)


def test_stop_early_changes_nothing(tiny_model):
    early = collect_activations(tiny_model, ROWS, SPANS, layers=[0, 1], points=["resid_post", "mlp_out"])
    full = collect_activations(tiny_model, ROWS, SPANS, layers=[0, 1], points=["resid_post", "mlp_out"],
                               stop_early=False)
    torch.testing.assert_close(early.means, full.means, rtol=0, atol=1e-6)


def test_one_forward_per_batch_whatever_the_number_of_sites(tiny_model, monkeypatch):
    calls = []
    original = tiny_model.run_with_hooks

    def counting(*args, **kwargs):
        calls.append(len(kwargs["fwd_hooks"]))
        return original(*args, **kwargs)

    monkeypatch.setattr(tiny_model, "run_with_hooks", counting)
    collect_activations(tiny_model, ROWS, SPANS, points=HOOK_POINTS, batch_size=2)
    assert calls == [15 + 1, 15 + 1]  # 15 pooling hooks and the hook that ends the pass


def test_per_token_projections_match_cache(tiny_model):
    g = torch.Generator().manual_seed(0)
    v = torch.randn(2, 32, generator=g)
    site = "blocks.1.hook_resid_mid"
    acts = collect_activations(tiny_model, ROWS, SPANS, sites=["blocks.2.hook_resid_post"],
                               directions={site: v}, batch_size=4)
    assert site in acts.sites  # added for the directions
    for i, (row, (a, b)) in enumerate(zip(ROWS, SPANS)):
        _, cache = tiny_model.run_with_cache(torch.tensor([row]))
        expected = cache[site][0, a:b].float() @ v.T
        torch.testing.assert_close(acts.projections[site][i], expected, atol=1e-4, rtol=1e-5)


def test_zero_token_response_names_the_scenario(tiny_model):
    with pytest.raises(ActivationError, match="capital-of-mars"):
        collect_activations(tiny_model, ROWS, [(2, 7), (3, 3), (4, 13), (0, 3)],
                            names=["a", "capital-of-mars", "c", "d"])
    with pytest.raises(ActivationError, match="outside"):
        collect_activations(tiny_model, ROWS[:1], [(2, 70)])
    with pytest.raises(ActivationError, match="one span each"):
        collect_activations(tiny_model, ROWS, SPANS[:2])
    assert issubclass(ActivationError, LensteerError)


def test_nan_activations_are_an_error(tiny_model):
    def poison(x, hook):
        return torch.full_like(x, float("nan"))

    with tiny_model.hooks(fwd_hooks=[("blocks.0.hook_resid_post", poison)]):
        with pytest.raises(ActivationError, match="Non-finite"):
            collect_activations(tiny_model, ROWS, SPANS, layers=[1])


def test_unknown_site_is_an_error(tiny_model):
    from lensteer.errors import HookNameError

    with pytest.raises(HookNameError):
        collect_activations(tiny_model, ROWS, SPANS, layers=[7])
    acts = collect_activations(tiny_model, ROWS, SPANS, layers=[0])
    with pytest.raises(ActivationError, match="was not collected"):
        acts.at((2, "resid_post"))


@pytest.mark.slow
def test_smollm2_pooled_equals_cache_all_layers(smollm2):
    tok = smollm2.tokenizer
    rows = [tok("The capital of France is Paris, a city on the Seine.")["input_ids"],
            tok("Two plus two is four.")["input_ids"]]
    spans = [(3, len(rows[0])), (1, len(rows[1]))]
    acts = collect_activations(smollm2, rows, spans, batch_size=2)
    assert acts.means.shape == (2, 30, 576)
    sites = resolve_sites(smollm2)
    ref = _cache_means(smollm2, rows, spans, sites, batched=True)
    scale = ref.abs().amax(dim=2, keepdim=True).clamp_min(1.0)
    torch.testing.assert_close(acts.means / scale, ref / scale, atol=1e-5, rtol=0)
    single = _cache_means(smollm2, rows, spans, sites, batched=False)
    torch.testing.assert_close(acts.means / scale, single / scale, atol=1e-4, rtol=0)
