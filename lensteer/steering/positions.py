"""Which tokens a hook call holds: prompt or response, pad or real, under any cache setting.

Positions come only from the run-time seam (:func:`lensteer.runtime.current_batch`), which
:func:`lensteer.generate` and teacher-forced scoring fill for every batch, and which a caller
fills for its own forward calls with :func:`lensteer.runtime.positions`. Within one declared
batch the first forward call (the prefill) holds positions ``0 … P−1`` (``past_length … P−1``
when a conversation continues on its cache); with the KV cache each
later call holds one new token at ``P + k − 1``; without it each call holds the whole sequence
so far.

Without a declaration a call is never guessed from its shape: it is one whole, unpadded prompt
of its own (``declared`` is False), so ``positions="response"`` steers nothing there.

>>> import torch
>>> from lensteer import runtime
>>> t = PositionTracker()
>>> with runtime.positions(response_start=3, use_kv_cache=True):
...     [t.step(1, n, "cpu").phase_counts() for n in (3, 1, 1)]
[(3, 0), (0, 1), (0, 1)]
>>> [t.step(1, n, "cpu").phase_counts() for n in (3, 1)]  # undeclared: each call all prompt
[(3, 0), (1, 0)]
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from ..runtime import BatchContext, current_batch, current_live_rows


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
    pad: Int[Tensor, " batch"]  # left-pad count per row
    row_ids: list[int] = field(default_factory=list)  # each row's row in the full batch

    def __post_init__(self) -> None:
        if not self.row_ids:
            self.row_ids = list(range(self.valid.shape[0]))

    @property
    def declared(self) -> bool:
        """Whether the positions were declared on the seam (not an undeclared forward call)."""
        return self.ctx is not None

    def select(self, positions: str) -> Bool[Tensor, "batch pos"]:
        """The tokens a steerer with position mode ``positions`` may touch."""
        if positions == "all":
            return self.valid
        if positions == "prompt":
            return self.valid & self.is_prompt
        return self.valid & ~self.is_prompt

    def sequences(self) -> list[int]:
        """The input index each row holds (its batch row when none was declared)."""
        return [r if self.ctx is None else self.ctx.sequence(r) for r in self.row_ids]

    def take(self, rows: list[int]) -> CallInfo:
        """This call restricted to some of its rows (per-row steering acts on those only)."""
        index = torch.tensor(rows, device=self.valid.device)
        return replace(self, valid=self.valid[index], is_prompt=self.is_prompt[index],
                       pad=self.pad[index], row_ids=[self.row_ids[r] for r in rows])

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
        self._ctx: BatchContext | None = None
        self._batches = -1
        self._call = 0

    def step(self, batch: int, seq: int, device: Any) -> CallInfo:
        ctx = current_batch()
        if ctx is None or ctx is not self._ctx:  # a new declared batch, or an undeclared call
            self._ctx, self._batches, self._call = ctx, self._batches + 1, 0
        else:
            self._call += 1
        call = self._call
        prompt_length = seq if ctx is None else int(ctx.prompt_length)
        if call > 0 and seq == 1:  # cached decoding: one new token
            start = prompt_length + call - 1
            new_from = 0
        elif call == 0:  # prefill (on top of the cached columns of a continued conversation)
            start = 0 if ctx is None else int(ctx.past_length)
            new_from = 0
        else:  # the whole sequence again without a cache
            start = 0
            new_from = seq - 1
        cols = torch.arange(start, start + seq, device=device)
        is_prompt = (cols < prompt_length).unsqueeze(0).expand(batch, seq)
        valid = torch.ones(batch, seq, dtype=torch.bool, device=device)
        pad = torch.zeros(batch, dtype=torch.long, device=device)
        live = current_live_rows() if ctx is not None else None
        prompt_mask = None if ctx is None else ctx.prompt_mask
        if prompt_mask is not None and live is not None:
            prompt_mask = prompt_mask[list(live)]
        if prompt_mask is not None and batch == prompt_mask.shape[0]:
            prompt_mask = prompt_mask.to(device=device, dtype=torch.bool)
            pad = (~prompt_mask).sum(1)  # left pads, and any masked cached columns: all lie
            # before the columns a call computes, so column − pad is the row's own index
            overlap = max(0, min(seq, prompt_length - start))
            if overlap:
                valid[:, :overlap] = prompt_mask[:, start:start + overlap]
        return CallInfo(ctx, max(self._batches, 0), call, start, prompt_length, valid, is_prompt,
                        new_from, pad, list(live) if live is not None else [])
