"""The HTTP front end: FastAPI routes speaking the OpenAI chat-completions API.

``GET /v1/models``, ``GET /v1/artifacts`` (lensteer's: the steering artifacts offered) and
``POST /v1/chat/completions`` (with ``stream``: server-sent events). A request is checked and
tokenized here, before it reaches the :class:`~lensteer.serve.scheduler.Scheduler`; anything
wrong comes back as the OpenAI error body with a 4xx status and the server goes on serving.
A streaming client that disconnects cancels its job (its row ends at the next step).
"""
from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse

from ..chat import format_chat
from ..errors import LensteerError
from ..protocols import LensModel
from .artifacts import ArtifactStore
from .protocol import (
    ChatRequest,
    RequestError,
    chunk_body,
    completion_body,
    completion_id,
    error_body,
    parse_chat,
    usage,
)
from .scheduler import Event, Job, JobResult, Scheduler


class ServeState:
    """What the routes share: the model, its id, the artifacts, the scheduler and limits."""

    def __init__(self, model: LensModel, model_id: str, artifacts: ArtifactStore,
                 scheduler: Scheduler, *, max_tokens: int = 256) -> None:
        self.model, self.model_id, self.artifacts = model, model_id, artifacts
        self.scheduler, self.max_tokens = scheduler, int(max_tokens)
        self.n_ctx = getattr(getattr(model, "cfg", None), "n_ctx", None)
        # the front end counts prompt tokens with its own copy: the worker thread uses the
        # model's tokenizer at the same time
        self.tokenizer = copy.deepcopy(model.tokenizer)

    def job(self, request: ChatRequest, emit: Any) -> Job:
        """Turn a checked request into a job (artifacts resolved, tokens counted) or raise
        :class:`RequestError`."""
        steerers = [self.artifacts.steerer(s.artifact, alpha=s.alpha, positions=s.positions)
                    for s in request.steering]
        monitor = None if request.monitor is None else self.artifacts.monitor(request.monitor)
        try:
            prompt_ids = format_chat(self.tokenizer, request.messages).input_ids
        except LensteerError as error:
            raise RequestError(f"messages cannot be formatted: {error}", param="messages") from None
        max_tokens = request.max_tokens
        if max_tokens is not None and max_tokens > self.max_tokens:
            raise RequestError(f"max_tokens is {max_tokens}, but this server allows at most "
                               f"{self.max_tokens} (--max-tokens).", param="max_tokens",
                               code="too_many_tokens")
        room = None if self.n_ctx is None else int(self.n_ctx) - len(prompt_ids)
        if room is not None and room < 1:
            raise RequestError(f"The prompt has {len(prompt_ids)} tokens; the model's context is "
                               f"{self.n_ctx} tokens: shorten the messages.",
                               param="messages", code="context_length_exceeded")
        if max_tokens is None:
            max_tokens = self.max_tokens if room is None else min(self.max_tokens, room)
        elif room is not None and max_tokens > room:
            raise RequestError(f"The prompt has {len(prompt_ids)} tokens and max_tokens is "
                               f"{max_tokens}, more than the model's context of {self.n_ctx} "
                               "tokens: lower max_tokens or shorten the messages.",
                               param="max_tokens", code="context_length_exceeded")
        return Job(request.messages, prompt_ids, max_tokens, emit,
                   temperature=request.temperature, top_p=request.top_p, seed=request.seed,
                   stop=request.stop, steerers=steerers,
                   steering=[s.to_dict() for s in request.steering], monitor=monitor,
                   monitor_name=request.monitor)


def create_app(state: ServeState, *, close_timeout: float = 30.0) -> Any:
    """The FastAPI application; on shutdown the scheduler finishes what is running (ends it
    after ``close_timeout`` seconds) and stops."""
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await asyncio.to_thread(_close, state.scheduler, close_timeout)

    app = FastAPI(title="lensteer serve", lifespan=lifespan)
    app.state.lensteer = state

    def error(status: int, message: str, **kw: Any) -> JSONResponse:
        return JSONResponse(error_body(message, **kw), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(400, f"Malformed request: {exc.errors()[:1]}")

    @app.exception_handler(404)
    async def _not_found(request: Request, exc: Exception) -> JSONResponse:
        return error(404, f"No route {request.method} {request.url.path}; this server has "
                          "/v1/models, /v1/artifacts and /v1/chat/completions.",
                     code="not_found")

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [
            {"id": state.model_id, "object": "model", "created": 0, "owned_by": "lensteer"}]}

    @app.get("/v1/artifacts")
    async def artifacts() -> dict[str, Any]:
        return {"object": "list", "data": state.artifacts.describe()}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return error(400, "The request body is not valid JSON.")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event] = asyncio.Queue()

        def emit(event: Event) -> None:  # called from the worker thread
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
                loop.call_soon_threadsafe(queue.put_nowait, event)

        try:
            parsed = parse_chat(body, served=state.model_id)
            job = state.job(parsed, emit)
            state.scheduler.submit(job)
        except RequestError as bad:
            return JSONResponse(bad.body(), status_code=bad.status)
        except RuntimeError as closing:
            return error(503, str(closing), kind="server_error", code="shutting_down")
        cid = completion_id()
        if parsed.stream:
            return StreamingResponse(_stream(state, job, queue, cid, parsed.include_usage),
                                     media_type="text/event-stream")
        try:
            result = await _result(job, queue, request)
        except _Failed as failed:
            return error(500, f"Generation failed: {failed.args[0]}", kind="server_error")
        if result is None:  # the client went away
            return error(499, "The client closed the request.", code="cancelled")
        return completion_body(cid, state.model_id, result.text, result.finish_reason,
                               result.prompt_tokens, result.completion_tokens, result.applied)

    return app


#: How often a request waiting for a whole answer checks whether its client is still there.
DISCONNECT_CHECK_S = 0.25


class _Failed(Exception):
    pass


def _close(scheduler: Scheduler, timeout: float) -> None:
    if not scheduler.drain(timeout):
        scheduler.close(timeout=10.0, cancel=True)
    else:
        scheduler.close(timeout=10.0)


async def _result(job: Job, queue: asyncio.Queue[Event], request: Any) -> JobResult | None:
    """Wait for the job's end; cancel it when the client disconnects."""
    loop = asyncio.get_running_loop()
    check_at = loop.time() + DISCONNECT_CHECK_S
    try:
        while True:
            try:
                kind, value = await asyncio.wait_for(queue.get(), timeout=DISCONNECT_CHECK_S)
            except asyncio.TimeoutError:
                kind, value = "wait", None
            if loop.time() >= check_at:  # pieces of text keep coming: check on the clock
                check_at = loop.time() + DISCONNECT_CHECK_S
                if await request.is_disconnected():
                    job.cancel()
                    return None
            if kind == "done":
                return value
            if kind == "error":
                raise _Failed(" ".join(str(value).split()) or type(value).__name__)
    except asyncio.CancelledError:
        job.cancel()
        raise


def _sse(data: Any) -> str:
    return f"data: {json.dumps(data)}\n\n"


async def _stream(state: ServeState, job: Job, queue: asyncio.Queue[Event], cid: str,
                  include_usage: bool) -> AsyncIterator[str]:
    """Server-sent events: a role chunk, one chunk per piece of text, a last chunk with the
    finish reason and ``lensteer`` (what was applied), a usage chunk if asked, ``[DONE]``."""
    model = state.model_id
    try:
        yield _sse(chunk_body(cid, model, {"role": "assistant", "content": ""}))
        while True:
            kind, value = await queue.get()
            if kind == "delta":
                yield _sse(chunk_body(cid, model, {"content": value}))
            elif kind == "error":
                yield _sse(error_body(f"Generation failed: {' '.join(str(value).split())}",
                                      kind="server_error"))
                break
            else:
                result: JobResult = value
                yield _sse(chunk_body(cid, model, {}, result.finish_reason,
                                      lensteer=result.applied))
                if include_usage:
                    yield _sse({**chunk_body(cid, model, None),
                                "usage": usage(result.prompt_tokens, result.completion_tokens)})
                break
        yield "data: [DONE]\n\n"
    finally:
        job.cancel()  # a no-op once the job is done; ends it when the client went away
