"""Batching for the server: one worker thread runs the model, requests wait in a queue.

The worker takes the oldest waiting job, gathers for up to ``wait_s`` more jobs that may share
its batch (up to ``max_batch``), and runs them as one per-row steered
:func:`lensteer.generate` call: each row carries its request's steerers and monitor
(``lensteer.steer(model, rows=...)``), so a row gets exactly what it would get alone. Which
jobs may share a batch:

* greedy jobs (``temperature`` 0) batch with any greedy job: greedy rows do not interact, and a
  row's first ``max_tokens`` tokens are the same whatever the batch's longest ``max_tokens``;
* sampled jobs with a ``seed`` run alone, so the seed reproduces the same answer every time
  (and equals ``lensteer.generate(..., seed=seed)`` on that one conversation);
* sampled jobs without a seed batch with jobs of the same temperature and top-p.

Tokens reach each job as they are decoded (:func:`lensteer.runtime.on_step`, on the fast
path; on the TransformerLens path all of a response's pieces come at the end of its batch). A job
whose client went away (:meth:`Job.cancel`) is ended at the next step and its row padded; a
batch ends when all its rows have ended. The steering hooks live for one ``generate`` call:
none is on the model between batches, also when a batch fails.
"""
from __future__ import annotations

import collections
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from .. import runtime
from ..generation import GenSettings, generate
from ..protocols import LensModel
from ..steering.session import steer
from ..steering.steerers import Monitor, Steerer
from .protocol import TextStream

#: What a job hears: ("delta", text), ("done", JobResult) or ("error", exception).
Event = tuple[str, Any]


@dataclass
class JobResult:
    """A finished job: its text, why it ended, token counts and what was applied."""

    text: str
    finish_reason: str  # "stop" (end of turn or a stop sequence), "length", "cancelled"
    prompt_tokens: int
    completion_tokens: int
    response_ids: list[int]
    applied: dict[str, Any]


@dataclass(eq=False)
class Job:
    """One request as the worker sees it. ``emit`` is called from the worker thread."""

    messages: list[dict[str, str]]
    prompt_ids: list[int]
    max_tokens: int
    emit: Callable[[Event], None]
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    steerers: list[Steerer] = field(default_factory=list)
    steering: list[dict[str, Any]] = field(default_factory=list)  # what the request asked for
    monitor: Monitor | None = None
    monitor_name: str | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def batch_key(self) -> tuple[Any, ...]:
        """Jobs with equal keys may share a batch (see the module docstring)."""
        if self.greedy:
            return ("greedy",)
        if self.seed is not None:
            return ("alone", id(self))
        return ("sample", self.temperature, self.top_p)

    def cancel(self) -> None:
        """The client went away: end the job at the next decoding step (or never start it)."""
        self.cancelled.set()


class _Row:
    """A running job's tokens and text."""

    def __init__(self, job: Job, tokenizer: Any, stop_ids: Sequence[int]) -> None:
        self.job, self.stop_ids = job, set(stop_ids)
        self.text = TextStream(tokenizer, job.stop)
        self.reason: str | None = None
        self.end_of_turn = False  # ended by the model's end-of-turn token

    def push(self, token: int) -> None:
        if self.reason is not None:
            return
        if self.job.cancelled.is_set():
            self.reason = "cancelled"
            return
        if token in self.stop_ids:
            self.reason, self.end_of_turn = "stop", True
            return
        delta = self.text.push(token)
        if delta:
            self.job.emit(("delta", delta))
        if self.text.stopped:
            self.reason = "stop"
        elif len(self.text.tokens) >= self.job.max_tokens:
            self.reason = "length"


@dataclass
class SchedulerStats:
    """Counters for tests and benchmarks."""

    batches: int = 0
    rows: int = 0
    largest_batch: int = 0
    cancelled: int = 0
    failed_batches: int = 0
    completion_tokens: int = 0


class Scheduler:
    """The worker thread and its queue. ``max_batch=1`` serves requests one at a time.

    >>> import lensteer
    >>> model = lensteer.load_model("organism")
    >>> events = []
    >>> with Scheduler(model, max_batch=4) as scheduler:
    ...     ids = lensteer.chat.format_chat(model.tokenizer, "What is the capital of France?")
    ...     scheduler.submit(Job([{"role": "user", "content": "What is the capital of France?"}],
    ...                          ids.input_ids, max_tokens=8, emit=events.append))
    ...     scheduler.drain(timeout=60)
    True
    >>> kind, result = events[-1]
    >>> kind, result.text, result.finish_reason
    ('done', 'the capital of france is paris.', 'stop')
    """

    def __init__(self, model: LensModel, *, max_batch: int = 16, wait_s: float = 0.005) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}.")
        self.model, self.max_batch, self.wait_s = model, int(max_batch), float(wait_s)
        self.stats = SchedulerStats()
        self._waiting: collections.deque[Job] = collections.deque()
        self._running: list[Job] = []
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._work, name="lensteer-serve-worker", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ front end
    def submit(self, job: Job) -> None:
        with self._cond:
            if self._closing:
                raise RuntimeError("The server is shutting down.")
            self._waiting.append(job)
            self._cond.notify_all()

    @property
    def busy(self) -> bool:
        """Whether a job is waiting or running."""
        with self._cond:
            return bool(self._waiting or self._running)

    def drain(self, timeout: float) -> bool:
        """Wait until no job is waiting or running; ``False`` if ``timeout`` passed first."""
        end = time.monotonic() + timeout
        with self._cond:
            while self._waiting or self._running:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop_taking(self) -> None:
        """Refuse new jobs from now on (:meth:`submit` raises); those already in go on."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()

    def end_all(self) -> None:
        """End every waiting and running job now (at the next decoding step), as if its client
        had gone: each gets its text so far with finish reason ``"cancelled"``."""
        with self._cond:
            for job in [*self._waiting, *self._running]:
                job.cancel()
            self._cond.notify_all()

    def close(self, timeout: float = 30.0, *, cancel: bool = False) -> None:
        """Stop taking jobs, finish those waiting and running (``cancel``: end them at the next
        step), and stop the worker within ``timeout`` seconds."""
        with self._cond:
            self._closing = True
            if cancel:
                for job in [*self._waiting, *self._running]:
                    job.cancel()
            self._cond.notify_all()
        self._thread.join(timeout)

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ worker
    def _take(self) -> list[Job] | None:
        """The next batch, or None when closing with nothing left."""
        with self._cond:
            while True:
                while self._waiting and self._waiting[0].cancelled.is_set():
                    self._drop(self._waiting.popleft())
                if self._waiting:
                    break
                if self._closing:
                    return None
                self._cond.wait()
            batch = [self._waiting.popleft()]
            key = batch[0].batch_key()
            deadline = time.monotonic() + self.wait_s
            while len(batch) < self.max_batch:
                for job in list(self._waiting):
                    if len(batch) < self.max_batch and job.batch_key() == key:
                        self._waiting.remove(job)
                        if job.cancelled.is_set():
                            self._drop(job)
                        else:
                            batch.append(job)
                left = deadline - time.monotonic()
                if len(batch) >= self.max_batch or left <= 0 or key[0] == "alone":
                    break
                self._cond.wait(left)
            self._running = batch
            return batch

    def _drop(self, job: Job) -> None:
        self.stats.cancelled += 1
        job.emit(("done", JobResult("", "cancelled", len(job.prompt_ids), 0, [], {})))

    def _work(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                self._run(batch)
            except Exception as error:  # the batch failed: its jobs get the error, serving goes on
                self.stats.failed_batches += 1
                for job in batch:
                    job.emit(("error", error))
            finally:
                with self._cond:
                    self._running = []
                    self._cond.notify_all()

    def _run(self, batch: list[Job]) -> None:
        tokenizer = self.model.tokenizer
        from ..generation.core import _stop_ids

        stop_ids = _stop_ids(self.model)
        live = [_Row(job, tokenizer, stop_ids) for job in batch]

        def on_step(ctx: runtime.BatchContext, tokens: Tensor) -> list[int]:
            ended = []
            for row, token in enumerate(tokens.tolist()):
                state = live[ctx.sequence(row)]
                state.push(token)
                if state.reason is not None:
                    ended.append(row)
            return ended

        first = batch[0]
        settings = GenSettings(
            max_new_tokens=max(job.max_tokens for job in batch), greedy=first.greedy,
            temperature=first.temperature, top_p=first.top_p,
            seed=first.seed if first.seed is not None else random.randrange(2**31),
            batch_size=len(batch))
        rows = [([job.monitor] if job.monitor is not None else []) + list(job.steerers)
                for job in batch]
        with steer(self.model, rows=rows, telemetry=True) as session, runtime.on_step(on_step):
            gens = generate(self.model, [job.messages for job in batch], gen=settings,
                            progress=False)
        telemetry = session.telemetry
        assert telemetry is not None
        records = telemetry.records()
        self.stats.batches += 1
        self.stats.rows += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        for i, (job, state, gen) in enumerate(zip(batch, live, gens)):
            for token in gen.response_ids[len(state.text.tokens):]:  # the TL path: no steps
                state.push(token)
            if state.reason is None:
                state.reason = "stop" if gen.finished else "length"
                state.end_of_turn = gen.finished
            if state.reason == "cancelled":
                self.stats.cancelled += 1
            delta = state.text.finish()
            if delta:
                job.emit(("delta", delta))
            tokens = state.text.tokens
            self.stats.completion_tokens += len(tokens)
            # Tokens the model read back: all of them before an end-of-turn token, else all but
            # the last (a row decoded alone never reads its last token; in a batch it may).
            read = len(tokens) if state.end_of_turn else max(len(tokens) - 1, 0)
            mine = [r for r in records if r["sequence"] == i
                    and r["position"] < len(gen.prompt_ids) + read]
            applied = describe(job, mine, tokenizer, tokens, len(gen.prompt_ids))
            job.emit(("done", JobResult(state.text.text, state.reason, len(gen.prompt_ids),
                                        len(tokens), list(tokens), applied)))


def describe(job: Job, records: list[dict[str, Any]], tokenizer: Any, tokens: list[int],
             prompt_length: int) -> dict[str, Any]:
    """What a response carries under ``lensteer``: the steering applied (with its gate counts
    on the response) and the monitor's per-token projections, gate decisions and alarm."""
    steering = []
    for asked, steerer in zip(job.steering, job.steerers):
        layers = {r.layer for r in steerer.rules}
        mine = [r for r in records if r["steerer"] == steerer.method and r["layer"] in layers
                and r["phase"] == "response"]
        config = steerer.config()
        steering.append({**asked, "method": config["method"], "alpha": config["alpha"],
                         "positions": config["positions"], "layers": config["layers"],
                         "response_tokens_gated": sum(r["gated"] for r in mine)})
    out: dict[str, Any] = {"steering": steering}
    if job.monitor is not None:
        by_position: dict[tuple[int, int], dict[str, Any]] = {
            (r["layer"], r["position"]): r for r in records if r["steerer"] == Monitor.method}
        layers_out = []
        alarm_at: int | None = None
        for rule in job.monitor.rules:
            projections: list[float | None] = []
            gated: list[bool] = []
            for k in range(len(tokens)):
                r = by_position.get((rule.layer, prompt_length + k))
                projections.append(None if r is None else r["rho_before"])
                gated.append(False if r is None else bool(r["gated"]))
            first = next((k for k, g in enumerate(gated) if g), None)
            if first is not None and (alarm_at is None or first < alarm_at):
                alarm_at = first
            layers_out.append({"layer": rule.layer, "threshold": rule.threshold,
                               "projections": projections, "gated": gated})
        out["monitor"] = {
            "artifact": job.monitor_name,
            "side": "positive" if job.monitor.rules[0].sign > 0 else "negative",
            "tokens": [tokenizer.decode([t]) for t in tokens],
            "layers": layers_out,
            "alarm": alarm_at is not None,
            "first_alarm_token": alarm_at,
        }
    return out
