"""The OpenAI chat-completions wire format: request checking, errors, response bodies, and the
incremental text of a streamed response.

A request is checked completely before it reaches the model; what is wrong comes back as the
OpenAI error body with a 4xx status (:class:`RequestError`). lensteer's own request fields sit
beside the standard ones (the openai client sends them with ``extra_body=``):

* ``steering``: an artifact name, ``{"artifact": name, "alpha": α, "positions": "response"}``,
  or a list of them (several steerers on one request); absent or ``null``: unsteered.
* ``monitor``: an artifact name (or ``{"artifact": name}``) whose direction is watched: the
  response's per-token projections, gate decisions and an alarm.

>>> req = parse_chat({"model": "organism", "messages": [{"role": "user", "content": "Hi"}],
...                   "temperature": 0, "max_tokens": 5, "stop": "."}, served="organism")
>>> req.greedy, req.max_tokens, req.stop, req.steering
(True, 5, ('.',), [])
>>> parse_chat({"model": "organism", "messages": []}, served="organism")
Traceback (most recent call last):
...
lensteer.serve.protocol.RequestError: messages must be a non-empty list of {"role", "content"} objects.
"""
from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..chat import ROLES, Message
from ..errors import LensteerError

#: Defaults of the OpenAI API.
DEFAULT_TEMPERATURE = 1.0
DEFAULT_TOP_P = 1.0
MAX_STOP = 4


class RequestError(LensteerError, ValueError):
    """A request the server refuses: the OpenAI error body with ``status``."""

    def __init__(self, message: str, *, status: int = 400, param: str | None = None,
                 code: str | None = None, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.message, self.status, self.param, self.code, self.kind = message, status, param, code, kind

    def body(self) -> dict[str, Any]:
        return error_body(self.message, kind=self.kind, param=self.param, code=self.code)


def error_body(message: str, *, kind: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}``, as the OpenAI API answers."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass
class SteeringRequest:
    """One steering entry of a request: an artifact with optional α and positions."""

    artifact: str
    alpha: float | None = None
    positions: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class ChatRequest:
    """A checked ``/v1/chat/completions`` request."""

    messages: list[Message]
    max_tokens: int | None = None
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    seed: int | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False
    include_usage: bool = False
    steering: list[SteeringRequest] = field(default_factory=list)
    monitor: str | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float,
            low_open: bool = False) -> float:
    value = body.get(key)
    if value is None:
        return default
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
    if bad or value > high or value < low or (low_open and value == low):
        side = "(" if low_open else "["
        raise RequestError(f"{key} must be a number in {side}{low:g}, {high:g}], got {value!r}.",
                           param=key)
    return float(value)


def _messages(value: Any) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise RequestError('messages must be a non-empty list of {"role", "content"} objects.',
                           param="messages")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise RequestError(f"messages[{i}] must be an object with a role among "
                               f"{', '.join(ROLES)}, got {m!r}.", param=f"messages[{i}]")
        content = m.get("content")
        if isinstance(content, list):  # content parts: only text is understood
            if not all(isinstance(p, dict) and p.get("type") == "text"
                       and isinstance(p.get("text"), str) for p in content):
                raise RequestError(f"messages[{i}].content parts must all be "
                                   '{"type": "text", "text": str}; this server reads text only.',
                                   param=f"messages[{i}].content")
            content = "".join(p["text"] for p in content)
        if not isinstance(content, str):
            raise RequestError(f"messages[{i}].content must be a string, got {content!r}.",
                               param=f"messages[{i}].content")
        out.append({"role": m["role"], "content": content})
    return out


def _steering(value: Any) -> list[SteeringRequest]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(SteeringRequest(item))
            continue
        if not isinstance(item, dict) or not isinstance(item.get("artifact"), str):
            raise RequestError('steering must be an artifact name, {"artifact": name, "alpha": α, '
                               f'"positions": ...}}, or a list of them; got {item!r}.',
                               param="steering")
        unknown = sorted(set(item) - {"artifact", "alpha", "positions"})
        if unknown:
            raise RequestError(f"steering has no field {unknown[0]!r} (fields: artifact, alpha, "
                               "positions).", param="steering")
        out.append(SteeringRequest(item["artifact"], item.get("alpha"), item.get("positions")))
    return out


def _monitor(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("artifact"), str) and set(value) == {"artifact"}:
        return value["artifact"]
    raise RequestError(f'monitor must be an artifact name or {{"artifact": name}}, got {value!r}.',
                       param="monitor")


def parse_chat(body: Any, *, served: str) -> ChatRequest:
    """Check a chat-completions body; raise :class:`RequestError` saying what is wrong."""
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str):
        raise RequestError("model is required: the served model's id (GET /v1/models).",
                           param="model")
    if model != served:
        raise RequestError(f"The model {model!r} does not exist here; this server serves "
                           f"{served!r}.", status=404, param="model", code="model_not_found")
    messages = _messages(body.get("messages"))
    n = body.get("n")
    if n is not None and n != 1:
        raise RequestError(f"n must be 1 (one choice per request), got {n!r}.", param="n")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                   or max_tokens < 1):
        raise RequestError(f"max_tokens must be an integer >= 1, got {max_tokens!r}.",
                           param="max_tokens")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise RequestError(f"seed must be an integer, got {seed!r}.", param="seed")
    stop = body.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(stop) if isinstance(stop, list) else stop
    if stops is None:
        stops = ()
    if (not isinstance(stops, tuple) or len(stops) > MAX_STOP
            or not all(isinstance(s, str) and s for s in stops)):
        raise RequestError(f"stop must be a non-empty string or a list of up to {MAX_STOP}, got "
                           f"{stop!r}.", param="stop")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError(f"stream must be true or false, got {stream!r}.", param="stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise RequestError("stream_options must be an object.", param="stream_options")
    return ChatRequest(
        messages=messages,
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", DEFAULT_TEMPERATURE, 0.0, 2.0),
        top_p=_number(body, "top_p", DEFAULT_TOP_P, 0.0, 1.0, low_open=True),
        seed=seed,
        stop=stops,
        stream=stream,
        include_usage=bool(options.get("include_usage", False)),
        steering=_steering(body.get("steering")),
        monitor=_monitor(body.get("monitor")),
    )


# ---------------------------------------------------------------------- response bodies
def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def completion_body(cid: str, model: str, text: str, finish_reason: str, prompt_tokens: int,
                    completion_tokens: int, extra: dict[str, Any]) -> dict[str, Any]:
    """A ``chat.completion`` object; ``extra`` goes under ``lensteer`` (what was applied)."""
    return {
        "id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": finish_reason, "logprobs": None}],
        "usage": usage(prompt_tokens, completion_tokens),
        "lensteer": extra,
    }


def chunk_body(cid: str, model: str, delta: dict[str, Any] | None, finish_reason: str | None = None,
               **more: Any) -> dict[str, Any]:
    """A ``chat.completion.chunk`` object of a streamed response (``delta=None``: no choice,
    the usage chunk)."""
    choices = [] if delta is None else [
        {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]
    return {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model, "choices": choices, **more}


# ---------------------------------------------------------------------- streamed text
class TextStream:
    """The response text of one row as tokens arrive: what may be sent so far, and whether a
    stop sequence ended it. The text is ``tokenizer.decode(tokens).strip()`` (what
    :func:`lensteer.generate` returns) cut before the first stop sequence; while streaming it
    holds back trailing whitespace, a half-decoded character and a possible stop-sequence
    start, so the pieces sent always add up to the final text.

    >>> class Chars:  # a tokenizer whose tokens are characters
    ...     def decode(self, ids, skip_special_tokens=True): return "".join(map(chr, ids))
    >>> s = TextStream(Chars(), stop=("END",))
    >>> [s.push(ord(c)) for c in " hi EN"], s.push(ord("D")), s.text, s.stopped
    (['', 'h', 'i', '', ' ', ''], '', 'hi ', True)
    """

    def __init__(self, tokenizer: Any, stop: tuple[str, ...] = ()) -> None:
        self.tokenizer, self.stop = tokenizer, stop
        self.tokens: list[int] = []
        self.sent = ""
        self.stopped = False
        self.text = ""

    def push(self, token: int) -> str:
        """Add one token; returns the new text that may be sent now."""
        self.tokens.append(int(token))
        full = self.tokenizer.decode(self.tokens, skip_special_tokens=True).strip()
        cut = min((i for i in (full.find(s) for s in self.stop) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped, self.text = True, full[:cut]
            return self._send(self.text)
        self.text = full
        safe = full.rstrip("\ufffd")
        for s in self.stop:  # hold back the longest tail that could start a stop sequence
            for k in range(min(len(s) - 1, len(safe)), 0, -1):
                if safe.endswith(s[:k]):
                    safe = safe[:-k]
                    break
        return self._send(safe)

    def finish(self) -> str:
        """The rest of the final text, once no token will come."""
        return self._send(self.text)

    def _send(self, upto: str) -> str:
        if not upto.startswith(self.sent) or len(upto) <= len(self.sent):
            return ""
        new, self.sent = upto[len(self.sent):], upto
        return new
