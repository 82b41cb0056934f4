"""llama.cpp control vectors from SwFC steerers.

llama.cpp adds a control vector — a GGUF file with ``general.architecture = "controlvector"``
and one float32 tensor ``direction.N`` per block — to the output of 0-based block ``N`` at every
position, prompt included, times the scale given on its command line. That is TransformerLens
``blocks.N.hook_resid_post`` (Hugging Face ``hidden_states[N + 1]``), so an SwFC steerer on
``resid_post`` with ``positions="all"`` is exactly expressible; llama.cpp's loader has no slot
for block 0 and refuses it. StTP and StMP are not: they compare each token's projection with a
threshold, and llama.cpp only adds a constant.

The file holds ``Δμ·v̂`` per layer (the SwFC step for α = 1, signed); the scale is α:

    llama-cli -m model.gguf --control-vector-scaled honesty.gguf:2.0 \\
        --control-vector-layer-range 14 14

reproduces ``SwFC(direction, alpha=2.0)`` at layer 14. Metadata records the operation, the
site, the layer convention, the model identity and α's unit.

>>> import tempfile, torch, lensteer
>>> from lensteer.directions import TraitDirection
>>> d = TraitDirection(v_hat=torch.tensor([0.6, 0.8]), boundary=0.0, mu_pos=1.0, sigma_pos=0.1,
...                    mu_neg=-1.0, sigma_neg=0.1, layer=1, hook="blocks.1.hook_resid_post")
>>> path = tempfile.mkdtemp() + "/honesty.gguf"
>>> _ = write_control_vector(lensteer.SwFC(d, alpha=2.0), path, model_hint="demo", n_layers=4)
>>> vectors, meta = read_control_vector(path)
>>> vectors[1].tolist(), meta["lensteer.alpha"], meta["controlvector.layer_count"]
([1.2000000476837158, 1.600000023841858], 2.0, 1)
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import LensteerError
from .steerers import Steerer


class ControlVectorError(LensteerError, ValueError):
    """A steerer that a llama.cpp control vector cannot express, or a file that is not one."""


def control_vectors(steerer: Steerer) -> dict[int, Tensor]:
    """``{block: Δμ·v̂ (signed)}`` for an SwFC steerer; a clear error for anything else."""
    if steerer.method != "swfc":
        raise ControlVectorError(
            f"A llama.cpp control vector only adds a constant vector; {steerer.method.upper()} "
            "compares each token's projection with a threshold, which llama.cpp cannot do. "
            "Export SwFC, or serve StTP/StMP with `lensteer serve` or the vLLM fork "
            "(--format vllm-steer)."
        )
    if steerer.positions != "all":
        raise ControlVectorError(
            "llama.cpp adds a control vector at every position; this steerer uses "
            f"positions={steerer.positions!r}. Use positions='all'."
        )
    out: dict[int, Tensor] = {}
    for rule in steerer.rules:
        if rule.point != "resid_post":
            raise ControlVectorError(
                f"llama.cpp adds to a block's output (resid_post); layer {rule.layer} uses {rule.point}."
            )
        if rule.layer == 0:
            raise ControlVectorError(
                "llama.cpp has no control-vector slot for block 0 (its loader refuses "
                "direction.0): steer at layer 1 or later."
            )
        assert rule.amount is not None  # SwFC resolves it
        step = rule.amount / steerer.alpha if steerer.alpha else 0.0  # Δμ, signed
        out[rule.layer] = (step * rule.v_hat.detach().to(torch.float32).cpu()).contiguous()
    return out


def write_control_vector(steerer: Steerer, path: str | os.PathLike, *, model_hint: str,
                         n_layers: int, model: dict[str, Any] | None = None) -> Path:
    """Write the steerer as a llama.cpp control vector (GGUF), atomically."""
    import gguf

    from ..io import atomic_path

    vectors = control_vectors(steerer)
    path = Path(path)
    with atomic_path(path) as tmp:
        writer = gguf.GGUFWriter(str(tmp), arch="controlvector")
        writer.add_string("controlvector.model_hint", model_hint)
        writer.add_uint32("controlvector.layer_count", len(vectors))
        writer.add_string("lensteer.operation", "add: h' = h + scale * direction.N at every position")
        writer.add_string("lensteer.site", "output of block N = TransformerLens blocks.N.hook_resid_post"
                                           " = Hugging Face hidden_states[N + 1]")
        writer.add_string("lensteer.layer_convention", "0-based block index")
        writer.add_string("lensteer.alpha_unit", "scale = SwFC alpha (the file holds delta_mu * v_hat)")
        writer.add_float32("lensteer.alpha", float(steerer.alpha))
        writer.add_uint32("lensteer.n_layers", int(n_layers))
        writer.add_string("lensteer.model", json.dumps(model or {}))
        writer.add_string("lensteer.steerer", json.dumps(steerer.config()))
        for layer, vector in sorted(vectors.items()):
            writer.add_tensor(f"direction.{layer}", vector.numpy())
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return path


def read_control_vector(path: str | os.PathLike) -> tuple[dict[int, Tensor], dict[str, Any]]:
    """``({block: vector}, metadata)`` of a control-vector GGUF file."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except (OSError, ValueError) as error:
        raise ControlVectorError(f"Cannot read the control vector {path}: {error}") from None
    meta: dict[str, Any] = {}
    for name, field in reader.fields.items():
        if name.startswith(("controlvector.", "lensteer.", "general.architecture")):
            value = field.contents()
            meta[name] = value
    if meta.get("general.architecture") != "controlvector":
        raise ControlVectorError(f"{path} is not a llama.cpp control vector (architecture "
                                 f"{meta.get('general.architecture')!r}).")
    vectors = {}
    for tensor in reader.tensors:
        if tensor.name.startswith("direction."):
            vectors[int(tensor.name.split(".")[1])] = torch.tensor(tensor.data.copy(), dtype=torch.float32)
    return vectors, meta
