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
>>> with lensteer.steer(model, lensteer.StTP(direction, alpha=12)) as run:
...     [g] = lensteer.generate(model, question, system=liar, greedy=True)
...     [name for name, _ in run.hooks], fast_path_reason(model) is None
(['blocks.3.hook_out'], True)
>>> g.text
'the capital of france is paris.'

Per-row steering: one batch, each conversation with its own steerer, or none:

>>> with lensteer.steer(model, rows=[lensteer.StTP(direction, alpha=12), None], telemetry=True) as run:
...     gens = lensteer.generate(model, question * 2, system=liar, greedy=True)
>>> [g.text for g in gens], sorted({r["sequence"] for r in run.telemetry.records()})
(['the capital of france is paris.', 'the capital of france is santiago.'], [0])

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

from .. import runtime
from ..generation.policy import (
    FastPathError,
    fast_path_reason,
    foreign_hooks,
    foreign_torch_hooks,
)
from ..generation.policy import _hook_points as _hook_points  # the old import path, kept
from ..protocols import LensModel
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

    model: LensModel
    steerers: list[Steerer]
    hooks: list[tuple[str, SteerHook]] = field(default_factory=list)
    telemetry: Telemetry | None = None
    rows: list[list[Steerer]] | None = None  # per-row steering: the steerers of each input
    order: int = field(default_factory=lambda: next(_ORDER), repr=False)


#: The ``steer`` blocks open in this thread or task, outermost first (see :func:`active_sessions`).
_OPEN: contextvars.ContextVar[tuple[SteeringSession, ...]] = contextvars.ContextVar(
    "lensteer_steer_blocks", default=())


def active_sessions(model: LensModel) -> list[SteeringSession]:
    """The steering contexts open on ``model`` in this thread or task, outermost first.

    Introspection only: generation reads the hooks on the model, not this list."""
    return [s for s in _OPEN.get() if s.model is model]


RowSteering = Steerer | Sequence[Steerer] | None


@contextlib.contextmanager
def steer(
    model: LensModel,
    steerers: Steerer | Sequence[Steerer] | None = None,
    *,
    rows: Sequence[RowSteering] | None = None,
    telemetry: bool | Telemetry = False,
    strict: bool = True,
) -> Iterator[SteeringSession]:
    """Steer ``model`` with ``steerers`` inside the block; yields a :class:`SteeringSession`.

    ``None`` or an empty list steers nothing (the unsteered baseline of a sweep): no hook is
    added and generation takes its usual path.

    Args:
        rows: per-row steering — one entry per input of the :func:`lensteer.generate` calls
            inside the block (a steerer, a list of steerers, or ``None`` for an unsteered row),
            so one batch can mix rules, α, layers, positions and thresholds. Input ``i`` gets
            exactly what it would get alone under ``steer(model, rows[i])``; ``generate`` then
            refuses another number of conversations. Teacher-forced scoring and
            :func:`lensteer.runtime.positions` map rows through their ``indices``.
        telemetry: ``True`` (or a :class:`Telemetry`) records what every hook did per token
            (``telemetry.summary(by_sequence=True)`` per input).
        strict: refuse directions fitted on another model (name/depth); a different
            ``d_model`` or a missing layer is always an error.

    """
    items = _steerer_list(steerers)
    per_row = None if rows is None else [_steerer_list(r) for r in rows]
    tel = telemetry if isinstance(telemetry, Telemetry) else (Telemetry() if telemetry else None)
    session = SteeringSession(model, items, telemetry=tel, rows=per_row)
    for s in items:
        session.hooks.extend(s.hooks(model, telemetry=tel, strict=strict))
    for s, where in _rows_by_steerer(per_row or []):
        session.steerers.append(s)
        session.hooks.extend(s.hooks(model, telemetry=tel, strict=strict, rows=where))
    if not session.hooks and per_row is None:
        yield session  # the baseline: nothing registered, so generation's path is unchanged
        return
    token = _OPEN.set(_OPEN.get() + (session,))
    try:
        with contextlib.ExitStack() as stack:
            if per_row is not None:
                stack.enter_context(runtime.expect_rows(len(per_row)))
            if tel is not None:
                stack.enter_context(tel.recording())
            stack.enter_context(model.hooks(fwd_hooks=list(session.hooks)))
            yield session
    finally:
        _OPEN.reset(token)


def _steerer_list(value: RowSteering) -> list[Steerer]:
    items = [value] if isinstance(value, Steerer) else list(value or [])
    if not all(isinstance(s, Steerer) for s in items):
        raise TypeError("steer() takes a steerer (SwFC, StTP, StMP, Ablation) or a list of them "
                        "(per row: a steerer, a list of them, or None).")
    return items


def _rows_by_steerer(per_row: list[list[Steerer]]) -> list[tuple[Steerer, list[int]]]:
    """Each distinct steerer once (in order of first use) with the rows it steers."""
    groups: dict[int, tuple[Steerer, list[int]]] = {}
    for row, steerers in enumerate(per_row):
        for s in steerers:
            groups.setdefault(id(s), (s, []))[1].append(row)
    return list(groups.values())
