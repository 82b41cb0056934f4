"""Conversations continued on their KV cache, the way a chat server keeps them.

:func:`lensteer.generate` re-encodes the whole conversation at every call. A :class:`ChatSession`
keeps, per conversation, the model's keys and values of every token it has read and written;
the next turn feeds only the new tokens (the end-of-turn marker, the user's message, the
assistant header) on top of that cache and decodes on. Steering hooks see the new user turn as
prompt and the new reply as response (:class:`lensteer.runtime.BatchContext` ``past_length``);
cached columns are never computed again, so a reply written under steering stays steered in
every later turn (its keys and values came from steered activations) — also in
``positions="response"`` mode, where re-encoding would read it back unsteered.

One batch holds all the session's conversations; it runs on the fast path
(:mod:`lensteer.generation.fast`) and raises :class:`~lensteer.generation.policy.FastPathError`
where that path cannot run.

>>> import lensteer
>>> model = lensteer.load_model("organism")
>>> chat = ChatSession(model)
>>> [g] = chat.generate(["What is the capital of France?"], greedy=True)
>>> g.text
'the capital of france is paris.'
>>> follow = g.continue_with("What is the capital of Spain?")
>>> [g2] = chat.generate([follow], greedy=True)
>>> [again] = lensteer.generate(model, [follow], greedy=True)  # re-encoding all of it
>>> g2.text == again.text, g2.input_ids == again.input_ids
(True, True)
>>> chat.token_ids[0] == g2.input_ids  # what the cache holds (the stop token is fed next turn)
True
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from .. import runtime
from ..chat import Conversation, as_messages, format_chat
from ..errors import ContextLengthError
from ..protocols import LensModel, model_device
from . import fast
from .core import Generation, _as_conversations, _stop_ids, _until_stop, left_pad, pad_token_id
from .policy import FastPathError, choose_path, fast_path_reason
from .settings import GenSettings

__all__ = ["ChatSession"]


class ChatSession:
    """A batch of conversations whose KV cache is carried from turn to turn.

    The first :meth:`generate` call starts the conversations; every later call must give each
    conversation's previous :class:`Generation` continued with new messages
    (``g.continue_with(text)``, the reply unchanged).
    """

    def __init__(self, model: LensModel) -> None:
        self.model = model
        self.cache: Any = None  # a transformers DynamicCache: one column per fed token
        self.attention_mask: Int[Tensor, "batch cached"] | None = None  # cached columns that count
        self.token_ids: list[list[int]] = []  # per conversation: the tokens whose K/V are cached
        self._last: list[Generation] | None = None
        self._broken = False

    @property
    def n_conversations(self) -> int:
        return len(self.token_ids)

    def _targets(self, messages: list[list[dict[str, str]]]) -> list[list[int]]:
        """Each conversation's full token list: what was generated, then the template's new
        tokens (the conversation is never re-tokenised, as a server keeps its own tokens)."""
        tokenizer = self.model.tokenizer
        if self._last is None:
            return [format_chat(tokenizer, m).input_ids for m in messages]
        if len(messages) != len(self._last):
            raise ValueError(f"This ChatSession holds {len(self._last)} conversations, got "
                             f"{len(messages)}: give one continuation per conversation.")
        targets = []
        for i, (m, last) in enumerate(zip(messages, self._last)):
            before = last.conversation()
            if len(m) <= len(before) or m[:len(before)] != before:
                raise ValueError(
                    f"Conversation {i} does not continue the one this ChatSession generated: pass "
                    "the last Generation's g.continue_with(message) (its reply unchanged), or "
                    "start a new ChatSession.")
            chat = format_chat(tokenizer, m)
            reply_end = chat.spans[len(last.messages)].end
            targets.append(last.input_ids + chat.input_ids[reply_end:])
        return targets

    def generate(
        self,
        conversations: Conversation | Sequence[Conversation],
        gen: GenSettings | None = None,
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        greedy: bool | None = None,
        seed: int | None = None,
    ) -> list[Generation]:
        """Generate the next reply of every conversation (arguments as :func:`lensteer.generate`;
        one batch, so ``batch_size`` is not used)."""
        if self._broken:
            raise RuntimeError("A turn of this ChatSession failed half-way, so its cache is "
                               "incomplete: start a new ChatSession.")
        settings = (gen or GenSettings()).override(
            max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, greedy=greedy,
            seed=seed).check()
        model, tokenizer = self.model, self.model.tokenizer
        if tokenizer is None:
            raise ValueError("ChatSession needs a model with a tokenizer (model.tokenizer is None).")
        reason = fast_path_reason(model)
        if reason is not None:
            raise FastPathError(f"ChatSession keeps the KV cache on the fast path, which is not "
                                f"possible here: {reason}. Re-encode each turn with lensteer.generate.")
        messages = [as_messages(c) for c in _as_conversations(conversations)]
        runtime.check_rows(len(messages))
        targets = self._targets(messages)
        n_ctx = getattr(getattr(model, "cfg", None), "n_ctx", None)
        longest = max(len(t) for t in targets)
        if n_ctx and longest + settings.max_new_tokens > n_ctx:
            raise ContextLengthError(
                f"A conversation of {longest} tokens plus max_new_tokens={settings.max_new_tokens} "
                f"exceeds the model's context of {n_ctx} tokens: end the conversation or lower "
                "max_new_tokens.")
        chunks = [t[len(ids):] for t, ids in zip(targets, self.token_ids or [[] for _ in targets])]
        stop_ids = _stop_ids(model)
        eos_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else stop_ids[0]
        device = model_device(model)
        tokens, chunk_mask = left_pad(chunks, pad_token_id(model))
        tokens, chunk_mask = tokens.to(device), chunk_mask.to(device)
        n = len(messages)
        past_mask = (self.attention_mask if self.attention_mask is not None
                     else torch.zeros((n, 0), dtype=torch.long, device=device))
        prompt_mask = torch.cat([past_mask, chunk_mask], 1)
        ctx = runtime.BatchContext(prompt_mask, prompt_mask.shape[1], True, tuple(range(n)),
                                   past_length=past_mask.shape[1])
        greedy_ = not settings.sampling
        self._broken = True  # until the cache and the bookkeeping agree again
        with torch.random.fork_rng(devices=[]), torch.no_grad(), choose_path(model, "fast") as hf:
            from transformers import DynamicCache

            cache = self.cache if self.cache is not None else DynamicCache(config=hf.config)
            torch.manual_seed(settings.seed)
            with runtime.batch(ctx):
                out = fast.generate_tokens(
                    hf, tokens, chunk_mask, max_new_tokens=settings.max_new_tokens,
                    do_sample=not greedy_, temperature=1.0 if greedy_ else settings.temperature,
                    top_p=None if greedy_ else settings.top_p, stop_ids=stop_ids, pad_id=eos_id,
                    cache=cache, past_mask=past_mask)
        new = out[:, tokens.shape[1]:].tolist()
        responses = [_until_stop(row, stop_ids) for row in new]
        runtime.end_batch(ctx, [len(t) + len(r) for t, (r, _) in zip(targets, responses)])
        # The last sampled token is never fed; of the fed ones, a row's reply tokens count and
        # its stop token and later filler do not (the next turn feeds the template's own).
        fed = len(new[0]) - 1
        reply_mask = torch.zeros((n, fed), dtype=torch.long, device=device)
        for row, (response, _) in enumerate(responses):
            reply_mask[row, :min(len(response), fed)] = 1
        self.attention_mask = torch.cat([prompt_mask, reply_mask], 1)
        self.token_ids = [t + r[:min(len(r), fed)] for t, (r, _) in zip(targets, responses)]
        self.cache = cache
        if cache.get_seq_length() != self.attention_mask.shape[1]:
            raise RuntimeError("ChatSession: the KV cache and its mask disagree in length.")
        self._broken = False
        self._last = [
            Generation(messages=m, text=tokenizer.decode(r, skip_special_tokens=True).strip(),
                       prompt_ids=t, response_ids=r, finished=done)
            for m, t, (r, done) in zip(messages, targets, responses)]
        return list(self._last)
