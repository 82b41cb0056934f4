"""Batched chat generation with left padding, seeded sampling and multi-turn continuation.

:func:`generate` formats and tokenizes the conversations, sorts them by length into batches,
declares each batch on the run-time seam (:mod:`lensteer.runtime`: prompt, pad and response
positions, which conversation each row holds) and decodes it on the path
:mod:`lensteer.generation.policy` chooses: the TransformerLens model's ``generate``
(:mod:`lensteer.generation.tl`) or the fast Hugging Face loop (:mod:`lensteer.generation.fast`).
Hooks on the model fire on every decoding step of either path.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

import torch
from jaxtyping import Int
from torch import Tensor
from tqdm.auto import tqdm

from .. import runtime
from ..chat import Conversation, Message, as_messages, format_chat
from ..errors import ContextLengthError, warn_caller
from ..protocols import LensModel, model_device
from . import fast, tl
from .policy import choose_path
from .settings import GenSettings


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
    def from_dict(cls, data: dict[str, Any]) -> Generation:
        return cls(**data)


def _as_conversations(conversations: Conversation | Sequence[Conversation]) -> list[Conversation]:
    if isinstance(conversations, str):
        return [conversations]
    items = list(conversations)
    if items and isinstance(items[0], dict):  # one conversation given as a list of messages
        return [cast(Conversation, items)]
    return cast(list[Conversation], items)


def _stop_ids(model: LensModel) -> list[int]:
    tokenizer = model.tokenizer
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    config = getattr(getattr(model, "original_model", None), "generation_config", None)
    extra = getattr(config, "eos_token_id", None)
    ids |= set(extra if isinstance(extra, list) else [extra] if extra is not None else [])
    if not ids:
        raise ValueError("The model's tokenizer has no eos token; set tokenizer.eos_token.")
    return sorted(ids)


def pad_token_id(model: LensModel) -> int:
    """The one id lensteer left-pads with, everywhere (generation, pooled activations,
    teacher-forced scoring): the tokenizer's pad token, else the model's first stop token, else 0
    for a model without a tokenizer. Pads are masked, so the id never changes a result; one rule
    keeps every batch lensteer builds the same.

    >>> import lensteer
    >>> pad_token_id(lensteer.load_model("organism"))
    0
    """
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        return 0
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    try:
        return _stop_ids(model)[0]
    except ValueError:  # no eos either
        return 0


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
    model: LensModel,
    conversations: Conversation | Sequence[Conversation],
    gen: GenSettings | None = None,
    *,
    max_new_tokens: int | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    greedy: bool | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    system: str | None = None,
    use_kv_cache: bool = True,
    progress: bool | None = None,
    path: Literal["auto", "tl", "fast"] = "auto",
    truncate: Literal["error", "left"] = "error",
) -> list[Generation]:
    """Generate one assistant response per conversation, batched with left padding.

    Args:
        conversations: a string (one user message), a list of messages, or a list of either.
        gen: the decoding settings (:class:`GenSettings`; default: 64 new tokens, the paper's
            sampling T = 0.6, top-p 0.9, seed 0, batches of 8). ``max_new_tokens``,
            ``temperature``, ``top_p``, ``greedy``, ``seed`` and ``batch_size`` override it.
        temperature, top_p: ``greedy=True`` or ``temperature=0`` decodes greedily.
        seed: sampling is reproducible for a given seed, batch size and input order; the
            global torch RNG is left as it was.
        system: a system prompt put in front of every conversation that has none.
        progress: show a progress bar (default: when there is more than one batch).
        path: ``"tl"`` runs the TransformerLens model's ``generate``; ``"fast"`` runs a lean loop
            on a Hugging Face model sharing the Bridge's weights, with the steering hooks found
            on the model attached as torch hooks (:mod:`lensteer.generation.fast`; greedy output
            is token-identical), and raises :class:`~lensteer.generation.policy.FastPathError` saying why when it cannot;
            ``"auto"`` (default) takes the fast path whenever it can reproduce the TL path:
            every hook on the model is a lensteer steering hook on the residual stream, and no
            torch hook of yours sits on the model's modules (one sends steered generation to
            ``"tl"`` with a warning).
            :mod:`lensteer.generation.policy` is the whole policy.
        truncate: what to do when a prompt plus ``max_new_tokens`` exceeds the model's context
            (``model.cfg.n_ctx``): ``"error"`` (default) raises
            :class:`~lensteer.errors.ContextLengthError`; ``"left"`` drops the prompt's oldest
            tokens, with a warning.

    Returns one :class:`Generation` per conversation, in input order.
    """
    settings = (gen or GenSettings()).override(
        max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, greedy=greedy,
        seed=seed, batch_size=batch_size).check()
    max_new_tokens, batch_size, seed = settings.max_new_tokens, settings.batch_size, settings.seed
    temperature, top_p = settings.temperature, settings.top_p
    greedy = not settings.sampling
    tokenizer = model.tokenizer
    if tokenizer is None:
        raise ValueError("generate needs a model with a tokenizer (model.tokenizer is None).")
    message_lists = [
        as_messages(c, system=None if _has_system(c) else system)
        for c in _as_conversations(conversations)
    ]
    runtime.check_rows(len(message_lists))  # per-row steering: one setting per conversation
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
        warn_caller(f"Truncating {sum(len(c) > room for c in chats)} prompt(s) from the left to "
                    f"{room} tokens to fit the model's context of {n_ctx} tokens.")
        chats = [c[-room:] for c in chats]
    stop_ids = _stop_ids(model)
    pad_id = pad_token_id(model)
    device = model_device(model)

    eos_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else stop_ids[0]

    order = sorted(range(len(chats)), key=lambda i: len(chats[i]))  # little padding per batch
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    show = progress if progress is not None else len(batches) > 1
    results: dict[int, Generation] = {}
    with torch.random.fork_rng(devices=[]), torch.no_grad(), choose_path(model, path) as hf:
        for b, batch in enumerate(tqdm(batches, desc="generate", disable=not show)):
            torch.manual_seed(seed + b)
            tokens, mask = left_pad([chats[i] for i in batch], pad_id)
            tokens, mask = tokens.to(device), mask.to(device)
            ctx = runtime.BatchContext(mask, tokens.shape[1], use_kv_cache, tuple(batch))
            decode: dict[str, Any] = dict(max_new_tokens=max_new_tokens, do_sample=not greedy,
                          temperature=1.0 if greedy else temperature,
                          top_p=None if greedy else top_p, stop_ids=stop_ids,
                          use_kv_cache=use_kv_cache)
            with runtime.batch(ctx):
                if hf is not None:
                    out = fast.generate_tokens(hf, tokens, mask, pad_id=eos_id, **decode)
                else:
                    out = tl.generate_tokens(model, tokens, mask, **decode)
            new = out[:, tokens.shape[1]:].tolist()
            responses = [_until_stop(new[row], stop_ids) for row in range(len(batch))]
            runtime.end_batch(ctx, [len(chats[i]) + len(r) for i, (r, _) in zip(batch, responses)])
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


def _has_system(conversation: Conversation) -> bool:
    return not isinstance(conversation, str) and bool(conversation) and conversation[0].get("role") == "system"


def _until_stop(tokens: list[int], stop_ids: list[int]) -> tuple[list[int], bool]:
    for k, t in enumerate(tokens):
        if t in stop_ids:
            return tokens[:k], True
    return tokens, False
