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
>>> payload = torch.load(paths[0], weights_only=True)  # a pickle: never load it otherwise
>>> sorted(payload), payload["threshold"], payload["target"], payload["direction"]
(['direction', 'target', 'threshold', 'v_hat'], -1.0, 8.0, 'positive')

The exporter writes what the vLLM fork of the paper's authors reads (docs/vllm.md): one
``torch.save`` file per steered layer — a pickle, the only one lensteer writes, because the fork
loads that format; read it with ``torch.load(path, weights_only=True)`` — holding only plain
tensors, floats and strings —
StTP ``{v_hat, threshold, target, direction}``, StMP ``{v_hat, threshold, coefficient, cap,
direction}`` — and a ``steering.json`` manifest. See ``docs/vllm.md``.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .. import io
from ..directions import TraitDirection, artifact_fields
from ..errors import ArtifactError, LensteerError
from ..models import ModelInfo, model_info
from ..protocols import LensModel
from . import registry
from .steerers import Steerer, SteeringConfigError, make_steerer

FORMAT_VERSION = 1
KIND = "lensteer.SteeringSpec"


class SpecMismatchError(LensteerError, ValueError):
    """A steering spec used on a model it was not made for, or one that cannot be exported."""


class ExportTargetError(LensteerError, ValueError):
    """An export folder that holds something other than an earlier export."""


def _model_identity(steerer: Steerer, model: LensModel | None) -> dict[str, Any]:
    if model is not None:
        return model_info(model).to_dict()
    return dict(steerer.directions[0].model)


def check_spec(steerer: Steerer, identity: Mapping[str, Any] | None, *, where: str = "") -> None:
    """Raise :class:`SpecMismatchError` unless every steered layer exists on the model the spec
    records and every v̂ has that model's ``d_model`` (fields it does not record go unchecked)."""
    info = dict(identity or {})
    name = info.get("name") or "the recorded model"
    n_layers, d_model = info.get("n_layers"), info.get("d_model")
    prefix = f"{where}: " if where else ""
    for rule in steerer.rules:
        if n_layers is not None and not 0 <= rule.layer < int(n_layers):
            raise SpecMismatchError(
                f"{prefix}the spec steers layer {rule.layer}, but {name!r} has layers 0 to "
                f"{int(n_layers) - 1}; save the spec again from a direction fitted on that model."
            )
        if d_model is not None and rule.v_hat.shape[-1] != int(d_model):
            raise SpecMismatchError(
                f"{prefix}the spec's v̂ for layer {rule.layer} has {rule.v_hat.shape[-1]} "
                f"dimensions, but {name!r} has d_model {int(d_model)}; save the spec again from a "
                "direction fitted on that model."
            )


def save_steerer(steerer: Steerer, path: str | os.PathLike, *, model: LensModel | None = None) -> None:
    """Write ``steerer`` as one ``.safetensors`` file (v̂ per layer; settings as JSON).

    The model identity comes from ``model`` if given, else from the directions.
    """
    if model is not None:
        steerer.check_model(model)
    identity = _model_identity(steerer, model)
    check_spec(steerer, identity)
    meta = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "steerer": steerer.config(),
        "model": identity,
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


def load_steerer(path: str | os.PathLike, *, model: LensModel | None = None, strict: bool = True) -> Steerer:
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
        rule = _rule_class(method)
        settings = ("sign", "threshold", "calibration", "positions", *rule.params)
        kwargs = {k: config[k] for k in settings if k in config}
        alpha = config["alpha"]
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise TypeError(f"alpha must be a number, got {alpha!r}")
        steerer = make_steerer(method, directions, alpha, **kwargs)
        mine = ModelInfo.from_dict(meta["model"]) if meta.get("model") else None
    check_spec(steerer, meta.get("model"), where=str(path))
    if model is not None:
        why = mine.mismatch(model_info(model)) if mine is not None and strict else None
        if why is not None:
            raise SpecMismatchError(
                f"This steering spec was made for {why}. Pass strict=False to apply it anyway."
            )
        steerer.check_model(model, strict=strict)
    return steerer


def _rule_class(method: str) -> Any:
    try:
        return registry.get_rule(method)
    except KeyError:
        raise SteeringConfigError(
            f"Unknown steering method {method!r}: choose from {', '.join(registry.rule_names())}."
        ) from None


def vllm_payloads(steerer: Steerer) -> dict[int, dict[str, Any]]:
    """The per-layer payloads of the paper's vLLM fork, for a rule that declares one
    (``Steerer.vllm_payload``: StTP and StMP among the built-in rules)."""
    if not type(steerer).supports_vllm():
        served = " and ".join(registry.display_name(m) for m in registry.vllm_rules())
        raise SpecMismatchError(
            f"The vllm-steer format carries {served} only, not {steerer.method!r}."
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
        numbers = steerer.vllm_payload(rule) or {}
        payloads[rule.layer] = {
            "v_hat": rule.v_hat.detach().to(torch.float32).cpu().clone(),
            **{k: float(v) for k, v in numbers.items()},
            "direction": steerer.sign,
        }
    return payloads


_PAYLOAD = re.compile(r"layer_\d+\.pt")


def _check_out_dir(out: Path) -> None:
    """Refuse an output path that is a file or a folder holding anything but an earlier export."""
    if not (out.exists() or out.is_symlink()):
        return
    if not out.is_dir():
        raise ExportTargetError(f"{out} is a file; pass a folder for the export (new or empty).")
    names = sorted(p.name for p in out.iterdir())
    own = ("steering.json", ".lensteer-run.json")  # the manifest; the CLI's run marker
    strangers = [n for n in names if n not in own and not _PAYLOAD.fullmatch(n)]
    if strangers or (names and "steering.json" not in names):
        shown = ", ".join(strangers[:3] or names[:3])
        raise ExportTargetError(
            f"{out} holds files that are not a vllm-steer export ({shown}); export into a new or "
            "empty folder, or into one holding an earlier export (which is replaced)."
        )


def export_vllm(
    spec: Steerer | str | os.PathLike, out_dir: str | os.PathLike, *, model: LensModel | None = None
) -> list[Path]:
    """Write ``layer_{L}.pt`` per steered layer and ``steering.json`` into ``out_dir``.

    The ``.pt`` files are ``torch.save`` pickles, the vLLM fork's format (plain tensors, floats
    and strings only: ``torch.load(path, weights_only=True)`` reads them).

    The spec is checked against the model it records (and ``model``, if given) first. The
    folder is written as one unit: built next to ``out_dir``, then swapped in, so an earlier
    export there is replaced whole (no stale ``layer_*.pt``) and a failure leaves it untouched.
    """
    steerer = spec if isinstance(spec, Steerer) else load_steerer(spec, model=model)
    if model is not None:
        steerer.check_model(model)
    identity = _model_identity(steerer, model)
    check_spec(steerer, identity, where="" if isinstance(spec, Steerer) else str(spec))
    payloads = vllm_payloads(steerer)
    out = Path(out_dir)
    _check_out_dir(out)
    with io.atomic_dir(out) as tmp:
        for layer, payload in sorted(payloads.items()):
            torch.save(payload, tmp / f"layer_{layer}.pt")
        io.write_json(tmp / "steering.json", {
            "format": "vllm-steer",
            "method": steerer.method,
            "model": identity,
            "steerer": steerer.config(),
            "files": {str(layer): f"layer_{layer}.pt" for layer in sorted(payloads)},
        })
    return [out / f"layer_{layer}.pt" for layer in sorted(payloads)]
