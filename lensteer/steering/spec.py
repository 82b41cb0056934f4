"""Steering specs (safetensors + JSON) and the ``vllm-steer`` exporter.

A spec is everything needed to rebuild a steerer — its directions, rule, α, sign, threshold
source, calibration, positions and layers — plus the identity of the model it was made for.
Loading it onto another model is an error unless ``strict=False``.

>>> import os, tempfile
>>> from lensteer.directions import TraitDirection
>>> from lensteer.steering import StTP
>>> direction = TraitDirection(v_hat=torch.tensor([3.0, 4.0, 0.0, 0.0]), boundary=-1.0,
...                            mu_pos=2.0, sigma_pos=0.5, mu_neg=-4.0, sigma_neg=1.0, layer=14,
...                            hook="blocks.14.hook_resid_post", trait="honesty")
>>> tmp = tempfile.mkdtemp()
>>> path = os.path.join(tmp, "honesty_sttp.safetensors")
>>> save_steerer(StTP(direction, alpha=12), path)
>>> steerer = load_steerer(path)  # pass model= to check that the spec fits it
>>> steerer.method, steerer.alpha, steerer.rules[0].layer, steerer.rules[0].target
('sttp', 12.0, 14, 8.0)
>>> steerer.rules[0].v_hat
tensor([0.6000, 0.8000, 0.0000, 0.0000])
>>> paths = export_vllm(path, os.path.join(tmp, "vllm_payloads"))
>>> [p.name for p in paths], sorted(os.listdir(os.path.join(tmp, "vllm_payloads")))
(['layer_14.pt'], ['layer_14.pt', 'steering.json'])
>>> payload = torch.load(paths[0])
>>> sorted(payload), payload["threshold"], payload["target"], payload["direction"]
(['direction', 'target', 'threshold', 'v_hat'], -1.0, 8.0, 'positive')

The exporter writes what the vLLM fork of the paper's authors reads (DESIGN.md §5): one
``torch.save`` file per steered layer holding only plain tensors, floats and strings —
StTP ``{v_hat, threshold, target, direction}``, StMP ``{v_hat, threshold, coefficient, cap,
direction}`` — and a ``steering.json`` manifest. See ``docs/vllm.md``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .. import io
from ..directions import TraitDirection, artifact_fields
from ..errors import ArtifactError, LensteerError
from ..models import ModelInfo, model_info
from .steerers import Steerer, make_steerer

FORMAT_VERSION = 1
KIND = "lensteer.SteeringSpec"


class SpecMismatchError(LensteerError, ValueError):
    """A steering spec used on a model it was not made for, or one that cannot be exported."""


def _model_identity(steerer: Steerer, model: Any) -> dict[str, Any]:
    if model is not None:
        return model_info(model).to_dict()
    return dict(steerer.directions[0].model)


def save_steerer(steerer: Steerer, path: str | os.PathLike, *, model: Any = None) -> None:
    """Write ``steerer`` as one ``.safetensors`` file (v̂ per layer; settings as JSON).

    The model identity comes from ``model`` if given, else from the directions.
    """
    if model is not None:
        steerer.check_model(model)
    meta = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "steerer": steerer.config(),
        "model": _model_identity(steerer, model),
        "directions": [{k: v for k, v in d.to_dict().items() if k != "v_hat"} for d in steerer.directions],
        "rules": [r.to_dict() for r in steerer.rules],
    }
    io.save_tensors(path, {f"v_hat.{i}": d.v_hat for i, d in enumerate(steerer.directions)}, meta)


def read_spec(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, meta = io.load_tensors(path)
    kind = meta.get("kind") if isinstance(meta, dict) else None
    if kind != KIND:
        raise SpecMismatchError(f"{path} is not a lensteer steering spec (kind {kind!r}).")
    version = meta.get("format_version", 0)
    if type(version) is not int:
        raise ArtifactError(f"{path} has a damaged format_version ({version!r}): write it again.")
    if version > FORMAT_VERSION:
        raise SpecMismatchError(
            f"{path} was written by a newer lensteer (format {meta['format_version']}); upgrade."
        )
    return tensors, meta


def load_steerer(path: str | os.PathLike, *, model: Any = None, strict: bool = True) -> Steerer:
    """Rebuild the steerer saved at ``path``; with ``model``, check it was made for that model."""
    tensors, meta = read_spec(path)
    with artifact_fields(path):
        directions = [
            TraitDirection.from_dict({**d, "v_hat": tensors[f"v_hat.{i}"]})
            for i, d in enumerate(meta["directions"])
        ]
        if not directions:
            raise ValueError("the spec holds no directions")
        config = dict(meta["steerer"])
        method = config.pop("method")
        kwargs = {k: config[k] for k in ("sign", "threshold", "calibration", "positions") if k in config}
        if "cap_sigmas" in config:
            kwargs["cap_sigmas"] = config["cap_sigmas"]
        alpha = config["alpha"]
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise TypeError(f"alpha must be a number, got {alpha!r}")
        steerer = make_steerer(method, directions, alpha, **kwargs)
        mine = ModelInfo.from_dict(meta["model"]) if meta.get("model") else None
    if model is not None:
        info = model_info(model)
        if mine is not None and strict and not mine.same_model(info):
            raise SpecMismatchError(
                f"This steering spec was made for {mine.name!r} ({mine.n_layers} layers, d_model "
                f"{mine.d_model}) but the model is {info.name!r} ({info.n_layers} layers, d_model "
                f"{info.d_model}). Pass strict=False to apply it anyway."
            )
        steerer.check_model(model, strict=strict)
    return steerer


def vllm_payloads(steerer: Steerer) -> dict[int, dict[str, Any]]:
    """The per-layer payloads of the paper's vLLM fork for an StTP or StMP steerer."""
    if steerer.method not in ("sttp", "stmp"):
        raise SpecMismatchError(
            f"The vllm-steer format carries StTP and StMP only, not {steerer.method!r}."
        )
    if steerer.positions != "all":
        raise SpecMismatchError(
            "The vllm-steer format steers every token (positions='all'); this steerer uses "
            f"positions={steerer.positions!r}."
        )
    payloads: dict[int, dict[str, Any]] = {}
    for rule in steerer.rules:
        if rule.point != "resid_post":
            raise SpecMismatchError(
                f"vLLM steers the output of decoder layers (resid_post); layer {rule.layer} uses "
                f"{rule.point}."
            )
        payload: dict[str, Any] = {
            "v_hat": rule.v_hat.detach().to(torch.float32).cpu().clone(),
            "threshold": float(rule.threshold),
        }
        if steerer.method == "sttp":
            payload["target"] = float(rule.target)
        else:
            payload["coefficient"] = float(rule.coefficient)
            payload["cap"] = float(rule.cap)
        payload["direction"] = steerer.sign
        payloads[rule.layer] = payload
    return payloads


def export_vllm(
    spec: Steerer | str | os.PathLike, out_dir: str | os.PathLike, *, model: Any = None
) -> list[Path]:
    """Write ``layer_{L}.pt`` per steered layer and ``steering.json`` into ``out_dir``."""
    steerer = spec if isinstance(spec, Steerer) else load_steerer(spec, model=model)
    payloads = vllm_payloads(steerer)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for layer, payload in sorted(payloads.items()):
        path = out / f"layer_{layer}.pt"
        with io.atomic_path(path) as tmp:
            torch.save(payload, tmp)
        paths.append(path)
    io.write_json(out / "steering.json", {
        "format": "vllm-steer",
        "method": steerer.method,
        "model": _model_identity(steerer, model),
        "steerer": steerer.config(),
        "files": {str(layer): f"layer_{layer}.pt" for layer in sorted(payloads)},
    })
    return paths
