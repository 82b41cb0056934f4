"""Which tokens a hook call holds: prompt or response, pad or real, under any cache setting.

Inside :func:`lensteer.generate` the batch context (:func:`lensteer.generation.current_batch`)
gives the prompt length and the pad mask. The first forward call of a batch (the prefill) holds
positions ``0 … P−1``; with the KV cache each later call holds one new token at ``P + k − 1``;
without it each call holds the whole sequence so far. Outside ``generate`` (a plain forward or
the model's own ``generate``) the tracker infers the same: a call with several positions starts
a sequence whose positions are all prompt, a one-token call continues it (KV cache), and a call
exactly one token longer than the previous continues it without a cache.

>>> t = PositionTracker()
>>> [t.step(1, n, "cpu").phase_counts() for n in (3, 1, 1)]
[(3, 0), (0, 1), (0, 1)]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from ..generation import BatchContext, current_batch


@dataclass
class CallInfo:
    """One hook call: where its columns sit and which tokens are real, prompt or new."""

    ctx: BatchContext | None
    batch_index: int  # how many batches this hook has seen before this one
    call: int  # forward call index within the batch (0 = prefill)
    start: int  # padded position of the first column
    prompt_length: int
    valid: Bool[Tensor, "batch pos"]  # real tokens (not left padding)
    is_prompt: Bool[Tensor, "batch pos"]
    new_from: int  # columns >= new_from are computed for the first time in this call
    pad: Int[Tensor, "batch"]  # left-pad count per row

    def select(self, positions: str) -> Bool[Tensor, "batch pos"]:
        """The tokens a steerer with position mode ``positions`` may touch."""
        if positions == "all":
            return self.valid
        if positions == "prompt":
            return self.valid & self.is_prompt
        return self.valid & ~self.is_prompt

    def unpadded_positions(self) -> Int[Tensor, "batch pos"]:
        """Each column's index in the row's own (unpadded) token list."""
        cols = torch.arange(self.start, self.start + self.valid.shape[1], device=self.valid.device)
        return cols.unsqueeze(0) - self.pad.unsqueeze(1)

    def phase_counts(self) -> tuple[int, int]:
        """(real prompt tokens, real response tokens) in this call — for tests and doctests."""
        prompt = int((self.valid & self.is_prompt).sum())
        return prompt, int(self.valid.sum()) - prompt


class PositionTracker:
    """Per-hook state that turns successive calls into :class:`CallInfo` records."""

    def __init__(self) -> None:
        self._ctx: Any = None
        self._batches = -1
        self._call = 0
        self._prompt_length = 0
        self._last_seq = 0

    def step(self, batch: int, seq: int, device: Any) -> CallInfo:
        ctx = current_batch()
        if ctx is not None:
            if ctx is not self._ctx:
                self._ctx, self._batches, self._call = ctx, self._batches + 1, 0
            else:
                self._call += 1
            prompt_length = int(ctx.prompt_length)
        else:
            continues = self._ctx is None and self._prompt_length > 0 and (
                seq == 1 or seq == self._last_seq + 1
            )
            if not continues:
                self._ctx, self._batches, self._call = None, self._batches + 1, 0
                self._prompt_length = seq
            else:
                self._call += 1
            prompt_length = self._prompt_length
        self._last_seq = seq
        call = self._call
        if call > 0 and seq == 1:  # cached decoding: one new token
            start = prompt_length + call - 1
            new_from = 0
        else:  # prefill, or the whole sequence again without a cache
            start = 0
            new_from = 0 if call == 0 else seq - 1
        cols = torch.arange(start, start + seq, device=device)
        is_prompt = (cols < prompt_length).unsqueeze(0).expand(batch, seq)
        if ctx is not None and batch == ctx.prompt_mask.shape[0]:
            prompt_mask = ctx.prompt_mask.to(device=device, dtype=torch.bool)
            pad = (~prompt_mask).sum(1)
            valid = torch.ones(batch, seq, dtype=torch.bool, device=device)
            overlap = max(0, min(seq, prompt_length - start))
            if overlap:
                valid[:, :overlap] = prompt_mask[:, start:start + overlap]
        else:
            pad = torch.zeros(batch, dtype=torch.long, device=device)
            valid = torch.ones(batch, seq, dtype=torch.bool, device=device)
        return CallInfo(ctx, max(self._batches, 0), call, start, prompt_length, valid, is_prompt,
                        new_from, pad)
