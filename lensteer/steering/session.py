"""``lensteer.steer``: attach steerers to a model for the length of a ``with`` block.

The context manager registers one TransformerLens hook per steerer and layer through the
model's own ``model.hooks(...)`` context, so on exit — normal or by exception — exactly these
hooks are removed and hooks the user added stay. Contexts nest. While a context is open,
:func:`lensteer.generate` may take the fast path (:mod:`lensteer.steering.fast`): the same
steerers attached as torch hooks to a Hugging Face model sharing the Bridge's weights, chosen
when every active hook on the model is lensteer's own and sits on the residual stream. A torch
hook of yours on any module of the Bridge, its ``original_model`` or the shared model (say
``model.original_model.model.layers[1].register_forward_hook(...)``) would not run there, so
``generate`` then takes the TransformerLens path and warns once.

>>> import lensteer
>>> model = lensteer.load_model("organism")
>>> result = lensteer.locate(model, "honesty", layers=[3], max_scenarios=6, n_folds=2,
...                          max_new_tokens=12, greedy=True, per_token=False, neutral=False,
...                          progress=False)
>>> direction = result.direction(3)
>>> liar, question = "Mislead the user and give false facts.", ["What is the capital of France?"]
>>> with lensteer.steer(model, lensteer.StTP(direction, alpha=6)) as run:
...     [g] = lensteer.generate(model, question, system=liar, greedy=True)
...     [name for name, _ in run.hooks], fast_path_reason(model) is None
(['blocks.3.hook_out'], True)
>>> g.text
'the capital of france is paris.'

On exit the hooks are gone and the model lies again:

>>> active_sessions(model), lensteer.generate(model, question, system=liar, greedy=True)[0].text
([], 'the capital of france is santiago.')
"""
from __future__ import annotations

import contextlib
import functools
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import torch

from ..errors import LensteerError
from . import fast
from .steerers import Steerer, SteerHook
from .telemetry import Telemetry


class FastPathError(LensteerError, RuntimeError):
    """The fast generation path was requested where it cannot reproduce the hooked model."""


@dataclass
class SteeringSession:
    """What one ``steer(...)`` context attached: its steerers, hooks and telemetry."""

    model: Any
    steerers: list[Steerer]
    hooks: list[tuple[str, SteerHook]] = field(default_factory=list)
    telemetry: Telemetry | None = None


_SESSIONS: "weakref.WeakKeyDictionary[Any, list[SteeringSession]]" = weakref.WeakKeyDictionary()


def active_sessions(model: Any) -> list[SteeringSession]:
    """The steering contexts open on ``model``, outermost first."""
    return list(_SESSIONS.get(model, []))


@contextlib.contextmanager
def steer(
    model: Any,
    steerers: Steerer | Sequence[Steerer] | None,
    *,
    telemetry: bool | Telemetry = False,
    strict: bool = True,
) -> Iterator[SteeringSession]:
    """Steer ``model`` with ``steerers`` inside the block; yields a :class:`SteeringSession`.

    ``None`` or an empty list steers nothing (the unsteered baseline of a sweep): no hook is
    added and generation takes its usual path.

    Args:
        telemetry: ``True`` (or a :class:`Telemetry`) records what every hook did per token.
        strict: refuse directions fitted on another model (name/depth); a different
            ``d_model`` or a missing layer is always an error.
    """
    items = [steerers] if isinstance(steerers, Steerer) else list(steerers or [])
    if not all(isinstance(s, Steerer) for s in items):
        raise TypeError("steer() takes a steerer (SwFC, StTP, StMP, Ablation) or a list of them.")
    tel = telemetry if isinstance(telemetry, Telemetry) else (Telemetry() if telemetry else None)
    session = SteeringSession(model, items, telemetry=tel)
    if not items:  # the baseline: nothing registered, so generation's path is unchanged
        yield session
        return
    for s in items:
        session.hooks.extend(s.hooks(model, telemetry=tel, strict=strict))
    if tel is not None:
        tel.start()
    _SESSIONS.setdefault(model, []).append(session)
    try:
        with model.hooks(fwd_hooks=list(session.hooks)):
            yield session
    finally:
        stack = _SESSIONS.get(model, [])
        if session in stack:
            stack.remove(session)
        if tel is not None:
            tel.stop()


# --------------------------------------------------------------------------- fast path
def _hook_points(model: Any) -> list[Any]:
    registry = getattr(model, "_hook_registry", None)
    points = registry.values() if isinstance(registry, dict) else model.hook_dict.values()
    seen: dict[int, Any] = {}
    for p in points:
        seen.setdefault(id(p), p)
    return list(seen.values())


def foreign_hooks(model: Any) -> int:
    """How many hooks on ``model`` do not belong to an open ``steer`` context (the fast path
    would silently drop them, so any of them forces the TransformerLens path)."""
    ours = {id(hook) for s in active_sessions(model) for _, hook in s.hooks}
    total = unknown = foreign = 0
    for point in _hook_points(model):
        for handle in list(point.fwd_hooks) + list(point.bwd_hooks):
            total += 1
            user = getattr(handle, "user_hook", None)
            if user is None:
                unknown += 1
            elif id(user) not in ours:
                foreign += 1
    if unknown:  # handles that do not say which function they wrap (TL 3.9): compare counts
        return max(foreign, total - len(ours))
    return foreign


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


def foreign_torch_hooks(model: Any) -> list[str]:
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


def fast_path_reason(model: Any, *, warn: bool = False) -> str | None:
    """Why the fast path cannot serve ``model`` now (``None`` when it can).

    With ``warn``, a fallback caused by a torch hook of the user's is announced with
    ``warnings.warn``, once per model and hook.
    """
    if not fast.supports_fast_path(model):
        return "the model is not a TransformerBridge over a Hugging Face decoder"
    for session in active_sessions(model):
        for _, hook in session.hooks:
            if hook.rule.point not in fast.FAST_POINTS:
                return f"a steerer sits on {hook.rule.point}, which has no module equivalent"
    if foreign_hooks(model):
        return "other TransformerLens hooks are active on the model"
    torch_hooks = foreign_torch_hooks(model)
    if torch_hooks:
        more = f" (and {len(torch_hooks) - 1} more)" if len(torch_hooks) > 1 else ""
        reason = f"a torch {torch_hooks[0]}{more} would not run on the fast path"
        warned = _WARNED.setdefault(model, set())
        if warn and reason not in warned:
            warned.add(reason)
            warnings.warn(f"lensteer.generate steers on the slower TransformerLens path: {reason}.",
                          stacklevel=4)
        return reason
    return None


@contextlib.contextmanager
def fast_model(model: Any) -> Iterator[Any]:
    """The shared Hugging Face model with every active steerer attached as a torch hook."""
    hf = fast.shared_hf_model(model)
    handles = []
    try:
        for session in active_sessions(model):
            for _, hook in session.hooks:
                twin = SteerHook(hook.steerer, hook.rule, session.telemetry)
                handles.append(fast.attach(hf, hook.rule.layer, hook.rule.point, twin.on_tensor))
        yield hf
    finally:
        for handle in handles:
            handle.remove()
