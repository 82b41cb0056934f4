"""``lensteer.steer``: attach steerers to a model for the length of a ``with`` block.

The context manager registers one TransformerLens hook per steerer and layer through the
model's own ``model.hooks(...)`` context, so on exit — normal or by exception — exactly these
hooks are removed and hooks the user added stay. Contexts nest. Generation needs nothing else:
it finds the steering hooks on the model (:mod:`lensteer.generation.policy`) and may take the
fast path, where the same hook objects run as torch hooks on a Hugging Face model sharing the
Bridge's weights; a torch hook of yours on any module of the Bridge, its ``original_model`` or
the shared model (say ``model.original_model.model.layers[1].register_forward_hook(...)``)
would not run there, so ``generate`` then takes the TransformerLens path and warns once.
Telemetry hears the end of each generated batch through :mod:`lensteer.runtime`, scoped to the
block.

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
import contextvars
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..generation.policy import (
    FastPathError,
    _hook_points,
    fast_path_reason,
    foreign_hooks,
    foreign_torch_hooks,
)
from .steerers import Steerer, SteerHook
from .telemetry import Telemetry

__all__ = [
    "FastPathError",
    "SteeringSession",
    "active_sessions",
    "fast_path_reason",
    "foreign_hooks",
    "foreign_torch_hooks",
    "steer",
]

_ORDER = itertools.count()


@dataclass(eq=False)
class SteeringSession:
    """What one ``steer(...)`` context attached: its steerers, hooks and telemetry."""

    model: Any
    steerers: list[Steerer]
    hooks: list[tuple[str, SteerHook]] = field(default_factory=list)
    telemetry: Telemetry | None = None
    order: int = field(default_factory=lambda: next(_ORDER), repr=False)


#: The ``steer`` blocks open in this thread or task, outermost first (see :func:`active_sessions`).
_OPEN: contextvars.ContextVar[tuple[SteeringSession, ...]] = contextvars.ContextVar(
    "lensteer_steer_blocks", default=())


def active_sessions(model: Any) -> list[SteeringSession]:
    """The steering contexts open on ``model`` in this thread or task, outermost first.

    Introspection only: generation reads the hooks on the model, not this list."""
    return [s for s in _OPEN.get() if s.model is model]


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
    token = _OPEN.set(_OPEN.get() + (session,))
    try:
        with contextlib.ExitStack() as stack:
            if tel is not None:
                stack.enter_context(tel.recording())
            stack.enter_context(model.hooks(fwd_hooks=list(session.hooks)))
            yield session
    finally:
        _OPEN.reset(token)
