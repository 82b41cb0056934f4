"""Hook names resolve both ways, bad names get suggestions, and check_model catches lies."""
from __future__ import annotations

import pytest

import lensteer
from lensteer.errors import HookNameError, ModelCheckError
from lensteer.hooks import canonical_name, hook_name, legacy_name, parse_hook_name, resolve_hook


def test_hook_name_and_parse_round_trip(tiny_model):
    for layer in range(3):
        for point in lensteer.HOOK_POINTS:
            assert parse_hook_name(hook_name(tiny_model, layer, point)) == (layer, point)


@pytest.mark.parametrize("layer", [3, -1, 1.0, True])
def test_layer_out_of_range_names_the_range(tiny_model, layer):
    with pytest.raises(HookNameError, match="numbered 0 to 2"):
        hook_name(tiny_model, layer)


def test_unknown_point_suggests_nearest(tiny_model):
    with pytest.raises(HookNameError, match="resid_post"):
        hook_name(tiny_model, 0, "resid_pots")


def test_unknown_hook_name_suggests_nearest(tiny_model):
    with pytest.raises(HookNameError, match="Nearest names: blocks.1.hook_resid_post"):
        resolve_hook(tiny_model, "blocks.1.hook_resid_psot")
    with pytest.raises(HookNameError, match="numbered 0 to 2"):
        resolve_hook(tiny_model, "blocks.9.hook_resid_post")


def test_legacy_and_canonical_names_map_both_ways(tiny_model):
    pairs = {
        "blocks.1.hook_resid_pre": "blocks.1.hook_in",
        "blocks.1.hook_resid_post": "blocks.1.hook_out",
        "blocks.1.hook_resid_mid": "blocks.1.ln2.hook_in",
        "blocks.1.hook_attn_out": "blocks.1.attn.hook_out",
        "blocks.1.hook_mlp_out": "blocks.1.mlp.hook_out",
    }
    for legacy, canonical in pairs.items():
        assert canonical_name(tiny_model, legacy) == canonical
        assert legacy_name(tiny_model, canonical) == legacy
        assert tiny_model.hook_dict[legacy] is tiny_model.hook_dict[canonical]


def test_canonical_name_is_what_a_hook_sees(tiny_model):
    import torch

    seen = []
    name = "blocks.2.hook_resid_post"
    with tiny_model.hooks(fwd_hooks=[(name, lambda x, hook: seen.append(hook.name))]):
        tiny_model(torch.tensor([[1, 2, 3]]))
    assert seen == [canonical_name(tiny_model, name)]


def test_check_model_passes_on_sequential_blocks(tiny_model, smollm2):
    for model in (tiny_model, smollm2):
        assert max(lensteer.check_model(model).values()) < 1e-5


def test_check_model_catches_a_hook_point_that_lies(tiny_model):
    # A hook that shifts resid_mid breaks resid_pre + attn_out = resid_mid.
    with tiny_model.hooks(fwd_hooks=[("blocks.1.hook_resid_mid", lambda x, hook: x + 1.0)]):
        with pytest.raises(ModelCheckError, match="resid_pre \\+ attn_out = resid_mid"):
            lensteer.check_model(tiny_model)
