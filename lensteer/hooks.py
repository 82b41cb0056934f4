"""Hook names: validation, legacy ↔ canonical resolution, and a self-check of their meaning.

lensteer speaks the legacy TransformerLens names (``blocks.{L}.hook_resid_post``), which are
aliases on TransformerLens 4's ``TransformerBridge`` and real names on TransformerLens 3.9's
``HookedTransformer``. Inside a Bridge hook, ``hook.name`` is the canonical name
(``blocks.{L}.hook_out``); :func:`canonical_name` and :func:`legacy_name` map both ways.

>>> hook_name(_FakeModel(n_layers=4), 2)
'blocks.2.hook_resid_post'
>>> parse_hook_name("blocks.2.hook_resid_mid")
(2, 'resid_mid')
"""
from __future__ import annotations

import difflib
import re
import weakref
from typing import Any

import torch

from .errors import HookNameError, ModelCheckError
from .protocols import HasConfig, LensModel, model_device

#: The residual-stream and sublayer-output hook points lensteer collects and steers.
HOOK_POINTS = ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out")
_LEGACY = re.compile(r"^blocks\.(\d+)\.hook_(resid_pre|resid_mid|resid_post|attn_out|mlp_out)$")


class _FakeModel:  # for the doctests above: anything with cfg.n_layers
    def __init__(self, n_layers: int):
        self.cfg = type("cfg", (), {"n_layers": n_layers})()


def check_layer(model: HasConfig, layer: int) -> int:
    """Return ``layer`` if the model has it, else raise :class:`HookNameError` with the range."""
    n_layers = int(model.cfg.n_layers)
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < n_layers:
        raise HookNameError(
            f"Layer {layer!r} does not exist: this model has {n_layers} layers, numbered 0 to "
            f"{n_layers - 1}."
        )
    return layer


def hook_name(model: HasConfig, layer: int, point: str = "resid_post") -> str:
    """The legacy hook name of ``point`` at ``layer``, after checking both exist."""
    if point not in HOOK_POINTS:
        close = difflib.get_close_matches(point, HOOK_POINTS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise HookNameError(f"Unknown hook point {point!r}; choose from {HOOK_POINTS}.{hint}")
    return f"blocks.{check_layer(model, layer)}.hook_{point}"


def parse_hook_name(name: str) -> tuple[int, str]:
    """``"blocks.3.hook_resid_post"`` → ``(3, "resid_post")``; other names raise."""
    match = _LEGACY.match(name)
    if not match:
        raise HookNameError(
            f"{name!r} is not a per-layer residual hook name like 'blocks.3.hook_resid_post' "
            f"(points: {', '.join(HOOK_POINTS)})."
        )
    return int(match.group(1)), match.group(2)


_ALIASES: weakref.WeakKeyDictionary[Any, tuple[dict[str, str], dict[str, str]]] = (
    weakref.WeakKeyDictionary()
)


def _alias_tables(model: LensModel) -> tuple[dict[str, str], dict[str, str]]:
    """(name → canonical, canonical → preferred legacy name), computed once per model."""
    if model not in _ALIASES:
        to_canonical: dict[str, str] = {}
        to_legacy: dict[str, str] = {}
        for name, point in model.hook_dict.items():
            canonical = getattr(point, "name", None) or name
            to_canonical[name] = canonical
            if name != canonical and (canonical not in to_legacy or _LEGACY.match(name)):
                to_legacy[canonical] = name
        _ALIASES[model] = (to_canonical, to_legacy)
    return _ALIASES[model]


def resolve_hook(model: LensModel, name: str) -> str:
    """Return ``name`` if it is a hook point of ``model`` (legacy or canonical), else raise.

    The error names the nearest valid names, and the layer range for an out-of-range layer.
    """
    to_canonical, _ = _alias_tables(model)
    if name in to_canonical:
        return name
    match = re.match(r"^blocks\.(\d+)\.", name)
    if match:
        check_layer(model, int(match.group(1)))
    close = difflib.get_close_matches(name, list(to_canonical), n=3, cutoff=0.6)
    hint = f" Nearest names: {', '.join(close)}." if close else ""
    raise HookNameError(f"{name!r} is not a hook point of this model.{hint}")


def canonical_name(model: LensModel, name: str) -> str:
    """The name ``hook.name`` reports inside a hook (TL4 canonical; itself on TL 3.9)."""
    return _alias_tables(model)[0][resolve_hook(model, name)]


def legacy_name(model: LensModel, name: str) -> str:
    """The legacy alias of a canonical hook name (the name itself where there is none)."""
    canonical = canonical_name(model, name)
    return _alias_tables(model)[1].get(canonical, canonical)


def check_model(model: LensModel, *, atol: float = 1e-4) -> dict[str, float]:
    """One forward pass that checks the hook points mean what lensteer assumes.

    On sequential pre-norm blocks: ``resid_pre + attn_out = resid_mid``, ``resid_mid + mlp_out =
    resid_post``, ``resid_post[L] = resid_pre[L+1]``, and the last ``resid_post`` is what the
    final norm reads. Returns the largest deviation of each identity (relative to the residual
    scale); raises :class:`ModelCheckError` naming the identity that fails.
    """
    n_layers = int(model.cfg.n_layers)
    names = [hook_name(model, layer, point) for layer in range(n_layers) for point in HOOK_POINTS]
    final = "ln_final.hook_in" if "ln_final.hook_in" in model.hook_dict else None
    tokens = torch.tensor([[min(i + 1, int(model.cfg.d_vocab) - 1) for i in range(8)]])
    wanted = {canonical_name(model, n) for n in names} | set(names) | {final}
    with torch.no_grad():
        _, cache = model.run_with_cache(
            tokens.to(model_device(model)), names_filter=lambda n: n in wanted
        )

    def get(layer: int, point: str) -> torch.Tensor:
        name = hook_name(model, layer, point)
        if name in cache.cache_dict:
            return cache[name].float()
        return cache[canonical_name(model, name)].float()

    deviations: dict[str, float] = {}

    def compare(label: str, a: torch.Tensor, b: torch.Tensor) -> None:
        scale = max(float(a.abs().max()), float(b.abs().max()), 1.0)
        deviation = float((a - b).abs().max()) / scale
        deviations[label] = max(deviations.get(label, 0.0), deviation)

    for layer in range(n_layers):
        compare("resid_pre + attn_out = resid_mid", get(layer, "resid_pre") + get(layer, "attn_out"),
                get(layer, "resid_mid"))
        compare("resid_mid + mlp_out = resid_post", get(layer, "resid_mid") + get(layer, "mlp_out"),
                get(layer, "resid_post"))
        if layer + 1 < n_layers:
            compare("resid_post[L] = resid_pre[L+1]", get(layer, "resid_post"),
                    get(layer + 1, "resid_pre"))
    if final is not None:
        final_in = cache[final] if final in cache.cache_dict else None
        if final_in is not None:
            compare("resid_post[last] = ln_final input", get(n_layers - 1, "resid_post"),
                    final_in.float())
    failed = {k: v for k, v in deviations.items() if v > atol}
    if failed:
        detail = "; ".join(f"{k} off by {v:.2e}" for k, v in failed.items())
        raise ModelCheckError(
            f"This model's hook points do not behave like sequential pre-norm blocks ({detail}). "
            "lensteer's residual-stream conventions (docs/concepts.md) would be wrong here: use a "
            "sequential-block architecture or report the architecture to the lensteer authors."
        )
    return deviations
