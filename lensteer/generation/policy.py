"""Which path :func:`lensteer.generate` takes: the TransformerLens model's own ``generate`` or the
fast path (:mod:`lensteer.generation.fast`).

The fast path runs a plain Hugging Face model that shares the Bridge's weights, with the
steering hooks found on the Bridge attached as torch hooks. It reproduces the TransformerLens
path token for token only when every hook that would run there runs here too, so the policy
reads the model itself — no registry of who steers what:

* a hook is lensteer's when its function carries ``lensteer_steering`` (the
  :class:`~lensteer.runtime.SteeringHook` protocol: a layer, a hook point and ``on_tensor``);
* any other TransformerLens hook, a steering hook on a point without a module equivalent, or a
  torch hook of the user's on a module of the Bridge, its ``original_model`` or the shared
  model (say ``model.original_model.model.layers[1].register_forward_hook(...)``) rules the fast
  path out.

``path="auto"`` takes the fast path whenever nothing rules it out, steered or not (greedy
tokens are identical on both paths, and seeded samples draw from the same random stream with the
same sampling function), and warns once when steering would run on the slower path only because
of a torch hook of the user's. ``path="fast"`` raises :class:`FastPathError` saying why when it
cannot be taken; ``path="tl"`` never takes it.
"""
from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Iterator
from typing import Any

import torch

from ..errors import LensteerError, warn_caller
from ..protocols import LensModel
from ..runtime import SteeringHook
from . import fast

__all__ = [
    "PATHS",
    "FastPathError",
    "choose_path",
    "fast_path_reason",
    "foreign_hooks",
    "foreign_torch_hooks",
    "steering_hooks",
]

#: The values of ``generate(path=...)``.
PATHS = ("auto", "tl", "fast")


class FastPathError(LensteerError, RuntimeError):
    """The fast generation path was requested where it cannot reproduce the hooked model."""


def _hook_points(model: LensModel) -> list[Any]:
    """The model's hook points, each once (aliases resolve to the same object)."""
    registry = getattr(model, "_hook_registry", None)
    points = registry.values() if isinstance(registry, dict) else model.hook_dict.values()
    seen: dict[int, Any] = {}
    for p in points:
        seen.setdefault(id(p), p)
    return list(seen.values())


def _is_steering(fn: Any) -> bool:
    return bool(getattr(fn, "lensteer_steering", False)) and isinstance(fn, SteeringHook)


def steering_hooks(model: LensModel) -> list[SteeringHook]:
    """lensteer's steering hooks registered on ``model``, in registration order per hook point
    (hook points in model order). Handles that do not say which function they wrap
    (TransformerLens 3.9) are never counted as lensteer's."""
    found = []
    for point in _hook_points(model):
        for handle in list(point.fwd_hooks):
            fn = getattr(handle, "user_hook", None)
            if _is_steering(fn):
                found.append(fn)
    return found


def foreign_hooks(model: LensModel) -> int:
    """How many TransformerLens hooks on ``model`` are not lensteer steering hooks (the fast
    path would silently drop them, so any of them forces the TransformerLens path)."""
    count = 0
    for point in _hook_points(model):
        for handle in list(point.fwd_hooks) + list(point.bwd_hooks):
            if not _is_steering(getattr(handle, "user_hook", None)):
                count += 1
    return count


#: Packages whose own torch hooks behave alike on both paths: Hugging Face's output capture and
#: TransformerLens's wiring and hook points (hook-point hooks are counted by foreign_hooks).
_INTERNAL_HOOK_PACKAGES = ("transformers.", "transformer_lens.")


def _hook_label(fn: Any) -> tuple[str, str]:
    """(module, name) of a torch hook function, seen through functools.partial."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    module = getattr(fn, "__module__", None) or getattr(type(fn), "__module__", "") or ""
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return module, name


def _is_foreign_torch_hook(fn: Any) -> bool:
    if getattr(fn, "_lensteer_fast", False):
        return False
    module, _ = _hook_label(fn)
    return not (module + ".").startswith(_INTERNAL_HOOK_PACKAGES)


def foreign_torch_hooks(model: LensModel) -> list[str]:
    """Torch forward and forward-pre hooks that are not lensteer's (nor Hugging Face's or
    TransformerLens's own) on the Bridge, its ``original_model`` or the shared fast-path model,
    and global module hooks: the fast path would skip or add calls to them. Each as
    ``"forward hook fn on original_model.model.layers.1"``."""
    roots = [("original_model", getattr(model, "original_model", None)), ("model", model),
             ("the fast path's shared model", fast.shared_if_built(model))]
    seen: set[int] = set()
    found = []
    for prefix, root in roots:
        if not isinstance(root, torch.nn.Module):
            continue
        for name, module in root.named_modules():
            if id(module) in seen:
                continue
            seen.add(id(module))
            where = f"{prefix}.{name}" if name else prefix
            for kind, table in (("forward", module._forward_hooks),
                                ("forward-pre", module._forward_pre_hooks)):
                for fn in list(table.values()):
                    if _is_foreign_torch_hook(fn):
                        found.append(f"{kind} hook {_hook_label(fn)[1]} on {where}")
    for kind, attr in (("forward", "_global_forward_hooks"),
                       ("forward-pre", "_global_forward_pre_hooks")):
        for fn in list(getattr(torch.nn.modules.module, attr, {}).values()):
            if _is_foreign_torch_hook(fn):
                found.append(f"global {kind} hook {_hook_label(fn)[1]} on every module")
    return found


_WARNED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def fast_path_reason(model: LensModel, *, warn: bool = False) -> str | None:
    """Why the fast path cannot serve ``model`` now (``None`` when it can).

    With ``warn``, a fallback caused by a torch hook of the user's is announced with
    ``warnings.warn`` (pointing at the caller of :func:`lensteer.generate`), once per model and
    hook.
    """
    if not fast.supports_fast_path(model):
        return "the model is not a TransformerBridge over a Hugging Face decoder"
    for hook in steering_hooks(model):
        if hook.point not in fast.FAST_POINTS:
            return f"a steerer sits on {hook.point}, which has no module equivalent"
    if foreign_hooks(model):
        return "other TransformerLens hooks are active on the model"
    torch_hooks = foreign_torch_hooks(model)
    if torch_hooks:
        more = f" (and {len(torch_hooks) - 1} more)" if len(torch_hooks) > 1 else ""
        reason = f"a torch {torch_hooks[0]}{more} would not run on the fast path"
        warned = _WARNED.setdefault(model, set())
        if warn and reason not in warned:
            warned.add(reason)
            warn_caller(f"lensteer.generate steers on the slower TransformerLens path: {reason}.")
        return reason
    return None


@contextlib.contextmanager
def _fast_model(model: LensModel, hooks: list[SteeringHook]) -> Iterator[Any]:
    """The shared Hugging Face model with ``hooks`` attached as torch hooks, removed on exit."""
    hf = fast.shared_hf_model(model)
    handles = []
    try:
        for hook in hooks:
            handles.append(fast.attach(hf, hook.layer, hook.point, hook.on_tensor))
        yield hf
    finally:
        for handle in handles:
            handle.remove()


def choose_path(model: LensModel, path: str) -> contextlib.AbstractContextManager[Any]:
    """A context yielding the fast-path model (steering attached), or ``None`` for the
    TransformerLens path; see the module docstring for the policy."""
    if path not in PATHS:
        raise ValueError(f"path must be 'auto', 'tl' or 'fast', not {path!r}.")
    if path == "tl" or (path == "auto" and not fast.supports_fast_path(model)):
        return contextlib.nullcontext(None)
    hooks = steering_hooks(model) if fast.supports_fast_path(model) else []
    reason = fast_path_reason(model, warn=path == "auto" and bool(hooks))
    if reason is None:
        return _fast_model(model, hooks)
    if path == "fast":
        raise FastPathError(f"path='fast' is not possible here: {reason}. Use path='tl'.")
    return contextlib.nullcontext(None)
