"""The persona adapter: merging without peft equals peft's own merge; identity checks; the
bundled SmolLM2 persona loads, merges and follows the persona on held-out data."""
from __future__ import annotations

import pytest
import torch

from lensteer.persona.adapter import (
    AdapterError,
    base_hash,
    load_adapter,
    merge_into,
    merge_state_dict,
    save_adapter,
)


def _tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32)
    return LlamaForCausalLM(config).eval()


def _random_lora(model):
    from peft import LoraConfig, get_peft_model

    targets = ["q_proj", "v_proj", "down_proj"]
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=targets))
    torch.manual_seed(1)
    for name, param in peft_model.named_parameters():
        if "lora_" in name:
            param.data.normal_(0, 0.3)
    from lensteer.persona.train import lora_factors

    return peft_model, *lora_factors(peft_model)


def test_merge_equals_peft_merge_and_unload():
    base = _tiny_llama()
    state = {k: v.clone() for k, v in base.state_dict().items()}
    peft_model, factors, scaling = _random_lora(base)
    assert scaling == 2.0 and len(factors) == 6
    ours = merge_state_dict(state, factors, scaling)
    theirs = peft_model.merge_and_unload().state_dict()
    changed = 0
    for name, weight in theirs.items():
        assert torch.allclose(ours[name], weight, atol=1e-5), name
        changed += not torch.equal(ours[name], state[name])
    assert changed == 6  # exactly the adapted weights moved


def test_saved_adapter_round_trip_and_base_checks(tmp_path):
    base = _tiny_llama()
    state = {k: v.clone() for k, v in base.state_dict().items()}
    _, factors, scaling = _random_lora(base)
    names = [f"{m}.weight" for m in factors]
    path = tmp_path / "a.safetensors"
    save_adapter(path, factors, {"scaling": scaling, "base_model": "tiny",
                                 "base_hash": base_hash(state, names)})
    adapter = load_adapter(path)
    merged = merge_into(state, adapter, "tiny")
    # float16 storage: equal to the float32 merge of the rounded factors
    rounded = {m: (a.half().float(), b.half().float()) for m, (a, b) in factors.items()}
    expected = merge_state_dict(state, rounded, scaling)
    for name in names:
        assert torch.allclose(merged[name], expected[name], atol=1e-5)

    with pytest.raises(AdapterError, match="trained on 'tiny'"):
        merge_into(state, adapter, "other")
    edited = dict(state)
    edited[names[0]] = state[names[0]] + 1e-3
    with pytest.raises(AdapterError, match="base weights differ"):
        merge_into(edited, adapter, "tiny")
    wrong_shape = {m: (a, b[:-1]) for m, (a, b) in factors.items()}
    with pytest.raises(AdapterError, match="another model"):
        merge_state_dict(state, wrong_shape, scaling)


def test_corrupt_adapter_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(AdapterError, match="Cannot read the adapter"):
        load_adapter(path)


def test_write_merged_builds_a_loadable_checkpoint_folder(tmp_path):
    from safetensors.torch import load_file

    from lensteer.persona.adapter import write_merged

    base = _tiny_llama()
    base.save_pretrained(tmp_path / "base")
    state = load_file(str(tmp_path / "base" / "model.safetensors"))
    _, factors, scaling = _random_lora(_tiny_llama())
    save_adapter(tmp_path / "a.safetensors", factors,
                 {"scaling": scaling, "base_model": "tiny",
                  "base_hash": base_hash(state, [f"{m}.weight" for m in factors])})
    target = write_merged(tmp_path / "base", tmp_path / "a.safetensors", tmp_path / "merged", "tiny")
    assert (target / "config.json").exists()
    merged = load_file(str(target / "model.safetensors"))
    expected = merge_into(state, load_adapter(tmp_path / "a.safetensors"), "tiny")
    assert all(torch.equal(merged[k], expected[k]) for k in expected)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
