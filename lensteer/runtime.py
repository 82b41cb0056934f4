"""The run-time seam: what the code that runs a forward pass tells the hooks that act during it.

Generation (:func:`lensteer.generate`) and teacher-forced scoring declare, for every batch they
run, which columns are prompt, left padding and response, and which input row each batch row
holds (a :class:`BatchContext`); steering hooks read it with :func:`current_batch`. Code that
wants to hear when a batch is done (token telemetry) registers a callback with
:func:`on_batch_end` for the length of a ``with`` block. Everything here is scoped with
:mod:`contextvars`: a declaration made in one thread or task is invisible to another, and
nothing stays registered after its block ends.

This module imports nothing else of lensteer, so every layer may use it: it is the one place
generation and steering meet (docs/architecture.md, *The seam*).

A forward call outside :func:`lensteer.generate` declares its positions with :func:`positions`;
without a declaration, a steering hook takes each call as one whole, unpadded prompt (so
``positions="response"`` steers nothing there, and says so once with a warning):

>>> import torch
>>> with positions(prompt_mask=torch.tensor([[0, 1, 1], [1, 1, 1]])) as ctx:
...     current_batch() is ctx, ctx.prompt_length
(True, 3)
>>> current_batch() is None
True
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from jaxtyping import Int
from torch import Tensor

__all__ = [
    "BatchContext",
    "BatchEnd",
    "SteeringHook",
    "batch",
    "check_rows",
    "current_batch",
    "current_live_rows",
    "end_batch",
    "expect_rows",
    "live_rows",
    "on_batch_end",
    "on_step",
    "positions",
    "step_done",
]


@dataclass(frozen=True)
class BatchContext:
    """What a hook needs to know about the batch being run.

    ``prompt_mask`` marks real (1) vs left-pad (0) prompt tokens (``None``: no padding). Columns
    ``0 … prompt_length − 1`` of the padded batch are prompt, later ones response. During
    cached generation the first forward call sees all ``prompt_length`` columns and each later
    call one new token; without the cache every call sees the whole sequence so far.
    ``indices[row]`` is the input (conversation) a batch row holds, which per-row steering
    (``lensteer.steer(model, rows=...)``) and telemetry's ``sequence`` use; ``None`` means
    row ``r`` is input ``r``.

    ``past_length``: columns ``0 … past_length − 1`` are already in the model's KV cache (a
    conversation continued on its cache, :class:`lensteer.generation.ChatSession`); the first
    forward call then holds only columns ``past_length … prompt_length − 1``, and
    ``prompt_mask`` covers the cached columns too (0 also marks cached tokens that no longer
    count, such as tokens fed after a row finished its reply).
    """

    prompt_mask: Int[Tensor, "batch prompt_pos"] | None
    prompt_length: int
    use_kv_cache: bool = False
    indices: tuple[int, ...] | None = None
    past_length: int = 0

    def sequence(self, row: int) -> int:
        """The input index batch row ``row`` holds."""
        return row if self.indices is None else self.indices[row]


_BATCH: contextvars.ContextVar[BatchContext | None] = contextvars.ContextVar(
    "lensteer_batch", default=None)


def current_batch() -> BatchContext | None:
    """The batch declared around the forward call running now, or ``None``."""
    return _BATCH.get()


@contextlib.contextmanager
def batch(ctx: BatchContext) -> Iterator[BatchContext]:
    """Declare ``ctx`` for the forward calls inside the block (what :func:`lensteer.generate`
    does for each batch)."""
    token = _BATCH.set(ctx)
    try:
        yield ctx
    finally:
        _BATCH.reset(token)


def positions(
    *,
    prompt_mask: Tensor | Sequence[Sequence[int]] | None = None,
    response_start: int | None = None,
    use_kv_cache: bool = False,
    indices: Sequence[int] | None = None,
) -> contextlib.AbstractContextManager[BatchContext]:
    """Declare the positions of forward calls made outside :func:`lensteer.generate`.

    Args:
        prompt_mask: ``[batch, prompt_len]``, 1 for real prompt tokens and 0 for left padding
            (default: no padding).
        response_start: the padded column where the response begins (default: the width of
            ``prompt_mask``). Columns from here on are response tokens.
        use_kv_cache: the calls inside continue one sequence with a KV cache (the first call
            is the prefill, each later one-token call the next position); without it every
            call after the first holds the whole sequence so far.
        indices: which input each batch row holds (for per-row steering and telemetry).

    The first forward call inside the block is the prefill; later calls continue it (see
    :class:`BatchContext`). Open one block per sequence or batch.
    """
    mask = None if prompt_mask is None else torch.as_tensor(prompt_mask, dtype=torch.long)
    if mask is not None and mask.dim() != 2:
        raise ValueError(f"prompt_mask must be [batch, prompt_pos], got shape {tuple(mask.shape)}.")
    if response_start is None:
        if mask is None:
            raise ValueError("positions() needs prompt_mask or response_start.")
        response_start = int(mask.shape[1])
    if response_start < 0 or (mask is not None and mask.shape[1] != response_start):
        raise ValueError(f"response_start ({response_start}) must equal the prompt_mask width "
                         f"({None if mask is None else mask.shape[1]}).")
    rows = None if indices is None else tuple(int(i) for i in indices)
    return batch(BatchContext(mask, int(response_start), bool(use_kv_cache), rows))


# ------------------------------------------------------------------ rows still computed
_LIVE: contextvars.ContextVar[tuple[int, ...] | None] = contextvars.ContextVar(
    "lensteer_live_rows", default=None)


@contextlib.contextmanager
def live_rows(rows: Sequence[int] | None) -> Iterator[None]:
    """Inside the block, forward calls compute only ``rows`` of the declared batch, in this
    order (greedy generation stops computing rows that finished); ``None``: every row.

    >>> with live_rows([0, 2]):
    ...     current_live_rows()
    (0, 2)
    >>> current_live_rows() is None
    True
    """
    token = _LIVE.set(None if rows is None else tuple(int(r) for r in rows))
    try:
        yield
    finally:
        _LIVE.reset(token)


def current_live_rows() -> tuple[int, ...] | None:
    """The rows of the declared batch the running forward call computes (None: all of them)."""
    return _LIVE.get()


# ------------------------------------------------------------------ batch-end callbacks
#: ``fn(ctx, lengths)``: ``lengths[row]`` = prompt + response tokens of that row (tokens fed
#: after a row finished lie beyond it).
BatchEnd = Callable[[BatchContext, Sequence[int]], None]

_LISTENERS: contextvars.ContextVar[tuple[BatchEnd, ...]] = contextvars.ContextVar(
    "lensteer_batch_end", default=())


@contextlib.contextmanager
def on_batch_end(fn: BatchEnd) -> Iterator[None]:
    """Call ``fn(ctx, lengths)`` after each batch generated inside the block."""
    token = _LISTENERS.set(_LISTENERS.get() + (fn,))
    try:
        yield
    finally:
        _LISTENERS.reset(token)


def end_batch(ctx: BatchContext, lengths: Sequence[int]) -> None:
    """Tell the callbacks of the enclosing :func:`on_batch_end` blocks that ``ctx`` is done."""
    for fn in _LISTENERS.get():
        fn(ctx, lengths)


# ------------------------------------------------------------------ per-step callbacks
#: ``fn(ctx, tokens)``: called after each decoding step with the token each batch row just got
#: (``tokens[row]``; rows that already finished get the pad id); returns the batch rows to end
#: early (they are padded from the next step on, as if they had emitted end-of-turn), or None.
StepListener = Callable[[BatchContext, Tensor], "Collection[int] | None"]

_STEP_LISTENERS: contextvars.ContextVar[tuple[StepListener, ...]] = contextvars.ContextVar(
    "lensteer_step", default=())


@contextlib.contextmanager
def on_step(fn: StepListener) -> Iterator[None]:
    """Call ``fn(ctx, tokens)`` after each decoding step of the batches generated inside the
    block (the fast path's loop reports every step; the TransformerLens path reports none), so a
    caller can stream tokens as they come and end rows early (``lensteer serve``).

    >>> seen = []
    >>> with on_step(lambda ctx, tokens: seen.append(tokens.tolist()) or [1]):
    ...     with positions(prompt_mask=torch.ones(2, 3)) as ctx:
    ...         stop = step_done(torch.tensor([7, 8]))
    >>> seen, stop, step_done(torch.tensor([7, 8]))
    ([[7, 8]], {1}, set())
    """
    token = _STEP_LISTENERS.set(_STEP_LISTENERS.get() + (fn,))
    try:
        yield
    finally:
        _STEP_LISTENERS.reset(token)


def step_done(tokens: Tensor) -> set[int]:
    """Tell the :func:`on_step` callbacks the tokens of one decoding step of the batch declared
    now; returns the batch rows they want ended (empty when nobody listens)."""
    listeners, ctx = _STEP_LISTENERS.get(), _BATCH.get()
    if not listeners or ctx is None:
        return set()
    stop: set[int] = set()
    for fn in listeners:
        stop.update(int(r) for r in fn(ctx, tokens) or ())
    return stop


# ------------------------------------------------------------------ per-row steering
_ROWS: contextvars.ContextVar[tuple[int, ...]] = contextvars.ContextVar("lensteer_rows", default=())


@contextlib.contextmanager
def expect_rows(n: int) -> Iterator[None]:
    """Inside the block, generation must be given exactly ``n`` inputs (per-row steering
    assigns one setting to each input)."""
    token = _ROWS.set(_ROWS.get() + (int(n),))
    try:
        yield
    finally:
        _ROWS.reset(token)


def check_rows(n: int) -> None:
    """Raise ``ValueError`` unless ``n`` inputs is what every enclosing :func:`expect_rows`
    block expects."""
    for expected in _ROWS.get():
        if expected != n:
            raise ValueError(
                f"Per-row steering was set up for {expected} inputs, but {n} were given: pass "
                "one steerer (or None) per conversation to lensteer.steer(model, rows=...)."
            )


# ------------------------------------------------------------------ the hooks generation finds
@runtime_checkable
class SteeringHook(Protocol):
    """What generation needs from a steering hook it finds on a model: where it acts and a body
    that maps an activation to its replacement. ``lensteer_steering`` tells it from a user's
    hook; generation attaches ``on_tensor`` to the equivalent module on its fast path."""

    lensteer_steering: bool

    @property
    def layer(self) -> int: ...

    @property
    def point(self) -> str: ...

    def on_tensor(self, h: Tensor) -> Tensor: ...
