"""A LoRA adapter as lensteer stores it, and merging it into a model's weights without ``peft``.

An adapter file is one safetensors file: for every adapted linear layer ``<module>`` the
tensors ``<module>.lora_A`` (``[r, in]``) and ``<module>.lora_B`` (``[out, r]``), stored in
float16, and JSON metadata with the scaling (``lora_alpha / r``), the base model's identity
(name and a hash of every weight the adapter changes), the training configuration, the data
hash and the training record. Merging computes, in float32,

    W' = W + scaling · B @ A

so the merged model is an ordinary checkpoint: TransformerLens hooks, the fast path and the
exports see a plain Llama.

>>> import torch
>>> A, B = torch.ones(2, 3), torch.full((4, 2), 0.5)
>>> merged = merge_state_dict({"l.weight": torch.zeros(4, 3)},
...                           {"l.lora_A": A, "l.lora_B": B}, scaling=2.0)
>>> merged["l.weight"][0].tolist()
[2.0, 2.0, 2.0]
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from safetensors import SafetensorError
from torch import Tensor

from ..errors import LensteerError
from ..io import load_tensors, publish_dir, save_tensors

FORMAT = "lensteer-lora-1"


class AdapterError(LensteerError, ValueError):
    """An adapter file that is malformed or was trained on another base model."""


@dataclass(frozen=True)
class Adapter:
    """LoRA factors per adapted weight and the metadata that identifies them."""

    factors: dict[str, tuple[Float[Tensor, "r d_in"], Float[Tensor, "d_out r"]]]
    meta: dict[str, Any]

    @property
    def scaling(self) -> float:
        return float(self.meta["scaling"])

    @property
    def weight_names(self) -> list[str]:
        """The base model's weights this adapter changes (``<module>.weight``)."""
        return sorted(f"{module}.weight" for module in self.factors)


def base_hash(state_dict: dict[str, Tensor], names: list[str]) -> str:
    """sha256 of the float32 bytes of ``names`` (sorted): the base identity an adapter records."""
    digest = hashlib.sha256()
    for name in sorted(names):
        if name not in state_dict:
            raise AdapterError(f"The base model has no weight {name!r} that the adapter changes.")
        digest.update(name.encode())
        digest.update(state_dict[name].detach().to(torch.float32).contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def save_adapter(
    path: str | os.PathLike,
    factors: dict[str, tuple[Tensor, Tensor]],
    meta: dict[str, Any],
) -> None:
    """Write an adapter (float16 factors + JSON metadata) atomically."""
    tensors: dict[str, Tensor] = {}
    for module, (a, b) in factors.items():
        tensors[f"{module}.lora_A"] = a.detach().to(torch.float16)
        tensors[f"{module}.lora_B"] = b.detach().to(torch.float16)
    save_tensors(path, tensors, {"format": FORMAT, **meta})


def load_adapter(path: str | os.PathLike) -> Adapter:
    """Read an adapter written by :func:`save_adapter`; a clear error when it is not one."""
    path = Path(path)
    try:
        tensors, meta = load_tensors(path)
    except (OSError, ValueError, SafetensorError) as error:  # missing, truncated, foreign
        raise AdapterError(f"Cannot read the adapter {path}: {error}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise AdapterError(f"{path} is not a lensteer LoRA adapter (format {FORMAT!r}).")
    for key in ("scaling", "base_model", "base_hash"):
        if key not in meta:
            raise AdapterError(f"The adapter {path} lacks {key!r} in its metadata.")
    modules = sorted({k.rsplit(".", 1)[0] for k in tensors})
    factors = {}
    for module in modules:
        a, b = tensors.get(f"{module}.lora_A"), tensors.get(f"{module}.lora_B")
        if a is None or b is None or a.shape[0] != b.shape[1]:
            raise AdapterError(f"The adapter {path} has no matching lora_A/lora_B for {module}.")
        factors[module] = (a, b)
    return Adapter(factors, meta)


def merge_state_dict(
    state_dict: dict[str, Tensor],
    factors: dict[str, tuple[Tensor, Tensor]],
    scaling: float,
) -> dict[str, Tensor]:
    """A new state dict with ``W + scaling · B @ A`` (float32 arithmetic) for every factor pair.

    ``factors`` maps ``<module>`` to ``(A, B)``, or takes the flat ``<module>.lora_A`` /
    ``<module>.lora_B`` keys of a stored adapter file.
    """
    if factors and not isinstance(next(iter(factors.values())), tuple):
        flat = factors
        modules = {k.rsplit(".", 1)[0] for k in flat}
        factors = {m: (flat[f"{m}.lora_A"], flat[f"{m}.lora_B"]) for m in modules}  # type: ignore[index]
    merged = dict(state_dict)
    for module, (a, b) in factors.items():
        name = f"{module}.weight"
        if name not in merged:
            raise AdapterError(f"The base model has no weight {name!r} that the adapter changes.")
        weight = merged[name]
        delta = scaling * (b.to(torch.float32) @ a.to(torch.float32))
        if delta.shape != weight.shape:
            raise AdapterError(
                f"The adapter's update for {name} has shape {tuple(delta.shape)} but the base "
                f"weight has {tuple(weight.shape)}: the adapter belongs to another model."
            )
        merged[name] = (weight.to(torch.float32) + delta).to(weight.dtype)
    return merged


def merge_into(state_dict: dict[str, Tensor], adapter: Adapter, base_name: str) -> dict[str, Tensor]:
    """Check that ``state_dict`` is the base the adapter was trained on, then merge."""
    if adapter.meta["base_model"] != base_name:
        raise AdapterError(
            f"This adapter was trained on {adapter.meta['base_model']!r}, not {base_name!r}."
        )
    found = base_hash(state_dict, adapter.weight_names)
    if found != adapter.meta["base_hash"]:
        raise AdapterError(
            f"The base weights differ from the ones the adapter was trained on (hash "
            f"{found[:12]} vs {adapter.meta['base_hash'][:12]}): a different conversion or "
            "version of the base model. Re-create the base (delete its cache folder) or retrain "
            "the adapter on this base."
        )
    return merge_state_dict(state_dict, adapter.factors, adapter.scaling)


def write_merged(
    base_dir: str | os.PathLike, adapter_path: str | os.PathLike, target: str | os.PathLike,
    base_name: str,
) -> Path:
    """Write ``base_dir``'s checkpoint with the adapter merged in to ``target``, atomically
    (a reader sees the whole folder or none; a concurrent writer's finished copy wins)."""
    from safetensors.torch import load_file, save_file

    base, target = Path(base_dir), Path(target)
    adapter = load_adapter(adapter_path)
    merged = merge_into(load_file(str(base / "model.safetensors")), adapter, base_name)
    with publish_dir(target) as tmp:
        for item in base.iterdir():
            if item.is_file() and item.name not in ("model.safetensors", "lensteer.json"):
                shutil.copy2(item, tmp / item.name)
        save_file({k: v.contiguous() for k, v in merged.items()}, str(tmp / "model.safetensors"),
                  metadata={"format": "pt"})
        (tmp / "lensteer.json").write_text(json.dumps(
            {"base": str(base), "adapter": str(adapter_path), "merged": "W + scaling * B @ A"}
        ))
    return target

