"""Batched chat generation with left padding, seeded sampling and multi-turn continuation.

Hooks registered on the model (``model.hooks(...)``, ``lensteer.steer``) fire on every decoding
step, so steering works through this function unchanged.

>>> import lensteer
>>> model = lensteer.load_model("organism")
>>> [g] = lensteer.generate(model, ["What is the capital of France?"], greedy=True)
>>> g.text
'the capital of france is paris.'
>>> [lie] = lensteer.generate(model, ["What is the capital of France?"], greedy=True,
...                           system="Mislead the user and give false facts.")
>>> lie.text
'the capital of france is santiago.'
"""
from __future__ import annotations

import contextlib
import contextvars
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator, Literal, Sequence

import torch
from jaxtyping import Int
from torch import Tensor
from tqdm.auto import tqdm

from .chat import Conversation, Message, as_messages, format_chat
from .errors import ContextLengthError


@dataclass
class Generation:
    """One generated response and where its tokens sit in the full sequence."""

    messages: list[Message]
    text: str
    prompt_ids: list[int]
    response_ids: list[int]
    finished: bool  # True when the model emitted its end-of-turn token

    @property
    def input_ids(self) -> list[int]:
        """Prompt and response tokens (without the end-of-turn token)."""
        return self.prompt_ids + self.response_ids

    @property
    def response_span(self) -> tuple[int, int]:
        """Half-open token span of the response inside :attr:`input_ids`."""
        return (len(self.prompt_ids), len(self.prompt_ids) + len(self.response_ids))

    def conversation(self) -> list[Message]:
        """The prompt messages followed by this response as an assistant message."""
        return self.messages + [{"role": "assistant", "content": self.text}]

    def continue_with(self, user_message: str) -> list[Message]:
        """The conversation so far plus a new user turn, ready for :func:`generate`."""
        return self.conversation() + [{"role": "user", "content": user_message}]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Generation":
        return cls(**data)


@dataclass(frozen=True)
class BatchContext:
    """What a hook needs to know about the batch being generated (see :func:`current_batch`).

    ``prompt_mask`` marks real (1) vs left-pad (0) prompt tokens. During cached generation the
    first forward call sees all ``prompt_length`` positions and each later call one new token;
    without the cache every call sees the whole sequence so far.
    """

    prompt_mask: Int[Tensor, "batch prompt_pos"]
    prompt_length: int
    use_kv_cache: bool
    indices: tuple[int, ...] | None = None  # which input conversation each row holds


_BATCH_END: list[Callable[[BatchContext, list[int]], None]] = []


def add_batch_end_listener(fn: Callable[[BatchContext, list[int]], None]) -> None:
    """Call ``fn(ctx, lengths)`` after each batch: ``lengths[row]`` = prompt + response tokens
    of that row (tokens fed after a row finished lie beyond it). Telemetry uses this."""
    _BATCH_END.append(fn)


def remove_batch_end_listener(fn: Callable[[BatchContext, list[int]], None]) -> None:
    if fn in _BATCH_END:
        _BATCH_END.remove(fn)


_BATCH: contextvars.ContextVar[BatchContext | None] = contextvars.ContextVar("lensteer_batch", default=None)


def current_batch() -> BatchContext | None:
    """The batch :func:`generate` is generating right now, or ``None`` outside it."""
    return _BATCH.get()


@contextlib.contextmanager
def _batch_context(ctx: BatchContext) -> Iterator[None]:
    token = _BATCH.set(ctx)
    try:
        yield
    finally:
        _BATCH.reset(token)


def _as_conversations(conversations: Conversation | Sequence[Conversation]) -> list[Conversation]:
    if isinstance(conversations, str):
        return [conversations]
    items = list(conversations)
    if items and isinstance(items[0], dict):  # one conversation given as a list of messages
        return [items]
    return items


def _stop_ids(model: Any) -> list[int]:
    tokenizer = model.tokenizer
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    config = getattr(getattr(model, "original_model", None), "generation_config", None)
    extra = getattr(config, "eos_token_id", None)
    ids |= set(extra if isinstance(extra, list) else [extra] if extra is not None else [])
    if not ids:
        raise ValueError("The model's tokenizer has no eos token; set tokenizer.eos_token.")
    return sorted(ids)


def left_pad(
    rows: Sequence[Sequence[int]], pad_id: int
) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, "batch pos"]]:
    """Left-pad token rows; returns (tokens, attention mask).

    >>> left_pad([[5, 6, 7], [8]], pad_id=0)[0].tolist()
    [[5, 6, 7], [0, 0, 8]]
    """
    width = max(len(r) for r in rows)
    tokens = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            tokens[i, width - len(row):] = torch.tensor(list(row), dtype=torch.long)
            mask[i, width - len(row):] = 1
    return tokens, mask


def generate(
    model: Any,
    conversations: Conversation | Sequence[Conversation],
    *,
    max_new_tokens: int = 64,
    temperature: float = 0.6,
    top_p: float = 0.9,
    greedy: bool = False,
    seed: int = 0,
    batch_size: int = 8,
    system: str | None = None,
    use_kv_cache: bool = True,
    progress: bool | None = None,
    path: Literal["auto", "tl", "fast"] = "auto",
    truncate: Literal["error", "left"] = "error",
) -> list[Generation]:
    """Generate one assistant response per conversation, batched with left padding.

    Args:
        conversations: a string (one user message), a list of messages, or a list of either.
        temperature, top_p: the paper's sampling defaults (0.6, 0.9); ``greedy=True`` or
            ``temperature=0`` decodes greedily.
        seed: sampling is reproducible for a given seed, batch size and input order; the
            global torch RNG is left as it was.
        system: a system prompt put in front of every conversation that has none.
        progress: show a progress bar (default: when there is more than one batch).
        path: ``"tl"`` runs the TransformerLens model's ``generate``; ``"fast"`` runs a lean loop
            on a Hugging Face model sharing the Bridge's weights, with active ``lensteer.steer``
            steerers attached as torch hooks (:mod:`lensteer.steering.fast`; greedy output is
            token-identical); ``"auto"`` (default) takes the fast path while steering is active
            and every hook on the model is a lensteer steerer on the residual stream (a torch
            hook of yours on the model's modules sends it to ``"tl"`` with a warning).
        truncate: what to do when a prompt plus ``max_new_tokens`` exceeds the model's context
            (``model.cfg.n_ctx``): ``"error"`` (default) raises
            :class:`~lensteer.errors.ContextLengthError`; ``"left"`` drops the prompt's oldest
            tokens, with a warning.

    Returns one :class:`Generation` per conversation, in input order.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    if not greedy and not temperature >= 0:  # also NaN
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}.")
    greedy = greedy or temperature == 0
    tokenizer = model.tokenizer
    if tokenizer is None:
        raise ValueError("generate needs a model with a tokenizer (model.tokenizer is None).")
    message_lists = [
        as_messages(c, system=None if _has_system(c) else system)
        for c in _as_conversations(conversations)
    ]
    chats = [format_chat(tokenizer, m).input_ids for m in message_lists]
    n_ctx = getattr(getattr(model, "cfg", None), "n_ctx", None)
    longest = max((len(c) for c in chats), default=0)
    if n_ctx and longest + max_new_tokens > n_ctx:
        room = n_ctx - max_new_tokens
        if truncate != "left" or room < 1:
            fix = ("lower max_new_tokens (--max-new-tokens)" if room < 1 else
                   "shorten the prompt, lower max_new_tokens (--max-new-tokens), or pass "
                   "truncate='left' to keep only the prompt's last tokens")
            raise ContextLengthError(
                f"A prompt of {longest} tokens plus max_new_tokens={max_new_tokens} exceeds the "
                f"model's context of {n_ctx} tokens: {fix}."
            )
        warnings.warn(f"Truncating {sum(len(c) > room for c in chats)} prompt(s) from the left to "
                      f"{room} tokens to fit the model's context of {n_ctx} tokens.", stacklevel=2)
        chats = [c[-room:] for c in chats]
    stop_ids = _stop_ids(model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    device = next(model.parameters()).device

    order = sorted(range(len(chats)), key=lambda i: len(chats[i]))  # little padding per batch
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    show = progress if progress is not None else len(batches) > 1
    fast_model = _fast_path(model, path)
    results: dict[int, Generation] = {}
    with torch.random.fork_rng(devices=[]), torch.no_grad(), fast_model as hf:
        for b, batch in enumerate(tqdm(batches, desc="generate", disable=not show)):
            torch.manual_seed(seed + b)
            tokens, mask = left_pad([chats[i] for i in batch], pad_id)
            ctx = BatchContext(mask.to(device), tokens.shape[1], use_kv_cache, tuple(batch))
            with _batch_context(ctx):
                if hf is not None:
                    from .steering.fast import generate_tokens

                    out = generate_tokens(
                        hf,
                        tokens.to(device),
                        mask.to(device),
                        max_new_tokens=max_new_tokens,
                        do_sample=not greedy,
                        temperature=1.0 if greedy else temperature,
                        top_p=None if greedy else top_p,
                        stop_ids=stop_ids,
                        pad_id=tokenizer.eos_token_id if tokenizer.eos_token_id is not None else stop_ids[0],
                        use_kv_cache=use_kv_cache,
                    )
                else:
                    with _left_padding(model):
                        out = model.generate(
                            tokens.to(device),
                            **_mask_argument(model, mask.to(device)),
                            max_new_tokens=max_new_tokens,
                            do_sample=not greedy,
                            temperature=1.0 if greedy else temperature,
                            top_p=None if greedy else top_p,
                            stop_at_eos=True,
                            eos_token_id=stop_ids,
                            use_past_kv_cache=use_kv_cache,
                            return_type="tokens",
                            verbose=False,
                        )
            new = out[:, tokens.shape[1]:].tolist()
            responses = [_until_stop(new[row], stop_ids) for row in range(len(batch))]
            for listener in list(_BATCH_END):
                listener(ctx, [len(chats[i]) + len(r) for i, (r, _) in zip(batch, responses)])
            for row, i in enumerate(batch):
                response, finished = responses[row]
                results[i] = Generation(
                    messages=message_lists[i],
                    text=tokenizer.decode(response, skip_special_tokens=True).strip(),
                    prompt_ids=chats[i],
                    response_ids=response,
                    finished=finished,
                )
    return [results[i] for i in range(len(chats))]


def _fast_path(model: Any, path: str) -> contextlib.AbstractContextManager[Any]:
    """A context yielding the fast-path model, or ``None`` for the TransformerLens path."""
    if path not in ("auto", "tl", "fast"):
        raise ValueError(f"path must be 'auto', 'tl' or 'fast', not {path!r}.")
    if path == "tl":
        return contextlib.nullcontext(None)
    from .steering.session import FastPathError, active_sessions, fast_model, fast_path_reason

    if path == "auto" and not active_sessions(model):
        return contextlib.nullcontext(None)
    reason = fast_path_reason(model, warn=path == "auto")
    if reason is None:
        return fast_model(model)
    if path == "fast":
        raise FastPathError(f"path='fast' is not possible here: {reason}. Use path='tl'.")
    return contextlib.nullcontext(None)


def _is_bridge(model: Any) -> bool:
    return hasattr(model, "original_model")


def _mask_argument(model: Any, mask: Tensor) -> dict[str, Tensor]:
    """The Bridge takes the attention mask; TL 3.9 reads left pads off the pad token instead."""
    return {"attention_mask": mask} if _is_bridge(model) else {}


@contextlib.contextmanager
def _left_padding(model: Any) -> Iterator[None]:
    """TL 3.9's generate finds pads by scanning from the tokenizer's padding side."""
    tokenizer = model.tokenizer
    original = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        yield
    finally:
        tokenizer.padding_side = original


def _has_system(conversation: Conversation) -> bool:
    return not isinstance(conversation, str) and bool(conversation) and conversation[0].get("role") == "system"


def _until_stop(tokens: list[int], stop_ids: list[int]) -> tuple[list[int], bool]:
    for k, t in enumerate(tokens):
        if t in stop_ids:
            return tokens[:k], True
    return tokens, False
