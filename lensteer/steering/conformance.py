"""Exports that prove themselves: apply an exported file's meaning, independently of lensteer's
rule code, and compare with lensteer's own hooks on real activations.

* :func:`apply_vllm_payload` is the vLLM fork's rule read from a payload alone — its documented
  keys and the formulas of docs/concepts.md, written out again here without
  :mod:`lensteer.steering.rules` — so a payload that means something other than the steerer it
  came from (a wrong sign, threshold, target or cap) shows up as a mismatch.
* :func:`verify_vllm` runs the model with lensteer's hooks and records, at every steered layer,
  the activations the hook received and what it returned; the payload applied to the former
  must give the latter.
* :func:`verify_control_vector` reads a llama.cpp control vector back and compares one forward
  pass of the Hugging Face model, with each ``direction.N`` added to the output of block ``N``
  (llama.cpp's meaning), against the same pass under lensteer's SwFC hooks.

>>> import torch
>>> payload = {"v_hat": torch.tensor([1.0, 0.0]), "threshold": 0.0, "target": 2.0,
...            "direction": "positive"}
>>> apply_vllm_payload(torch.tensor([[-1.0, 5.0], [3.0, 5.0]]), payload).tolist()
[[2.0, 5.0], [3.0, 5.0]]
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from ..errors import LensteerError
from ..protocols import LensModel, model_device
from .steerers import Steerer

PROBE_PROMPTS = (
    "What is the capital of France?",
    "I failed my exam and I feel awful.",
    "Write a short poem about the sea.",
)


class ExportVerificationError(LensteerError, RuntimeError):
    """An exported file does not do what the steerer it came from does."""


@dataclass(frozen=True)
class Verification:
    """The largest difference found, where, and whether it is within tolerance."""

    format: str
    max_abs_diff: float
    tolerance: float
    checked: dict[str, int]  # layer -> tokens compared
    gated_tokens: int

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def apply_vllm_payload(h: Tensor, payload: dict[str, Any]) -> Tensor:
    """The fork's StTP/StMP on ``h`` (``[..., d_model]``), from the payload's keys alone.

    Gate: ``ρ < threshold`` for direction "positive", ``ρ > threshold`` for "negative". StTP
    moves a gated token to ``target``; StMP to ``ρ + coefficient·(2·threshold − 2ρ)``, no
    further than ``cap``. Only the component along ``v_hat`` changes; float32 arithmetic.
    """
    v = payload["v_hat"].to(device=h.device, dtype=torch.float32)
    x = h.to(torch.float32)
    rho = x @ v
    m = float(payload["threshold"])
    positive = payload["direction"] == "positive"
    gated = rho < m if positive else rho > m
    if "target" in payload:
        new = torch.full_like(rho, float(payload["target"]))
    else:
        new = rho + float(payload["coefficient"]) * (2 * m - 2 * rho)
        cap = float(payload["cap"])
        new = new.clamp(max=cap) if positive else new.clamp(min=cap)
    moved = x + ((new - rho) * gated).unsqueeze(-1) * v
    return torch.where(gated.unsqueeze(-1), moved.to(h.dtype), h)


def _probe_tokens(model: LensModel) -> list[list[int]]:
    from ..chat import format_chat

    return [format_chat(model.tokenizer, p).input_ids for p in PROBE_PROMPTS]


def verify_vllm(steerer: Steerer, payloads: dict[int, dict[str, Any]], model: LensModel,
                *, tolerance: float = 1e-4) -> Verification:
    """Compare every layer's payload with lensteer's hook on the model's own activations."""
    from .session import steer

    names = {rule.layer: f"blocks.{rule.layer}.hook_resid_post" for rule in steerer.rules}
    if set(names) != set(payloads):
        raise ExportVerificationError(
            f"The payloads cover layers {sorted(payloads)}, the steerer {sorted(names)}."
        )
    worst, gated, checked = 0.0, 0, {}
    for ids in _probe_tokens(model):
        seen: dict[int, list[Tensor]] = {layer: [] for layer in names}

        def record(layer: int) -> Any:
            def hook(activation: Tensor, hook: Any = None) -> None:
                seen[layer].append(activation.detach().clone())
            return hook

        before = [(names[layer], record(layer)) for layer in names]
        after = [(names[layer], record(layer)) for layer in names]
        tokens = torch.tensor([ids], device=model_device(model))
        with torch.no_grad(), model.hooks(fwd_hooks=before), steer(model, steerer), \
                model.hooks(fwd_hooks=after):
            model(tokens)
        for layer, (h_in, h_out) in seen.items():
            expected = apply_vllm_payload(h_in, payloads[layer])
            worst = max(worst, float((expected.float() - h_out.float()).abs().max()))
            gated += int(((h_out.float() - h_in.float()).abs().amax(-1) > 0).sum())
            checked[str(layer)] = checked.get(str(layer), 0) + h_in.shape[1]
    return Verification("vllm-steer", worst, tolerance, checked, gated)


def verify_control_vector(path: str | os.PathLike, steerer: Steerer, model: LensModel,
                          *, scale: float | None = None, tolerance: float = 1e-3) -> Verification:
    """Read the GGUF at ``path``; add ``scale × direction.N`` to block N's output in the Hugging
    Face model (llama.cpp's meaning; default scale: the α recorded in the file) and compare the
    logits with the model under lensteer's SwFC hooks."""
    from .fast import shared_hf_model
    from .llamacpp import read_control_vector
    from .session import steer

    vectors, meta = read_control_vector(path)
    scale = float(meta["lensteer.alpha"]) if scale is None else scale
    hf = shared_hf_model(model)
    worst, checked = 0.0, {}
    for ids in _probe_tokens(model):
        tokens = torch.tensor([ids], device=model_device(model))
        handles = []
        for layer, vector in vectors.items():
            def add(_module: Any, _args: Any, output: Any, v: Tensor = vector) -> Any:
                hidden = output[0] if isinstance(output, tuple) else output
                hidden = hidden + scale * v.to(hidden.device, hidden.dtype)
                return (hidden, *output[1:]) if isinstance(output, tuple) else hidden
            handles.append(hf.model.layers[layer].register_forward_hook(add))
        try:
            with torch.no_grad():
                theirs = hf(tokens).logits.float()
        finally:
            for handle in handles:
                handle.remove()
        with torch.no_grad(), steer(model, steerer):
            ours = model(tokens).float()
        worst = max(worst, float((ours - theirs).abs().max()))
        for layer in vectors:
            checked[str(layer)] = checked.get(str(layer), 0) + len(ids)
    return Verification("llamacpp-control-vector", worst, tolerance, checked, sum(checked.values()))
