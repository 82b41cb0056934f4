"""Teacher-forced scoring: per-token log-probabilities of given continuations, no generation.

Rows are laid out as ``[left-padded prompt | continuation, right-padded]`` and their positions
are declared on the run-time seam (:func:`lensteer.runtime.positions`, with ``indices`` = the
input order), so active ``lensteer.steer`` steerers see the prompt as prompt and the
continuation as response — a steerer in ``"response"`` mode edits exactly the tokens it would
edit while generating them — and per-row steering (``steer(model, rows=[...])``) steers each
input as it would alone. The evaluation's scoring and the locate wing's teacher-forced
steerability both use it.

>>> import lensteer
>>> model = lensteer.load_model("organism")
>>> [lp] = continuation_logprobs(model, [[1, 2, 3]], [[4, 5]])
>>> lp.shape, bool((lp <= 0).all())
(torch.Size([2]), True)
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from .. import runtime
from ..protocols import LensModel, model_device
from .core import left_pad, pad_token_id

__all__ = ["continuation_logprobs"]


def continuation_logprobs(
    model: LensModel,
    prompts: Sequence[Sequence[int]],
    continuations: Sequence[Sequence[int]],
    *,
    batch_size: int = 16,
    progress: bool = False,
) -> list[Float[Tensor, " n_tokens"]]:
    """Per-token log-probabilities of each continuation after its prompt, one tensor per row.

    Active steering applies (see the module docstring); nothing is generated.
    """
    if len(prompts) != len(continuations):
        raise ValueError(f"Got {len(prompts)} prompts but {len(continuations)} continuations.")
    pad = pad_token_id(model)
    device = model_device(model)
    out: list[Tensor | None] = [None] * len(prompts)
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), len(continuations[i])))
    starts = range(0, len(order), batch_size)
    with torch.no_grad():
        for b in tqdm(starts, desc="teacher-forced", disable=not progress):
            batch = order[b:b + batch_size]
            p_tok, p_mask = left_pad([list(prompts[i]) for i in batch], pad)
            width = max(max(len(continuations[i]) for i in batch), 1)
            c_tok = torch.full((len(batch), width), pad, dtype=torch.long)
            c_mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, i in enumerate(batch):
                c = list(continuations[i])
                if c:
                    c_tok[r, :len(c)] = torch.tensor(c, dtype=torch.long)
                    c_mask[r, :len(c)] = 1
            tokens = torch.cat([p_tok, c_tok], 1).to(device)
            mask = torch.cat([p_mask, c_mask], 1).to(device)
            with runtime.positions(prompt_mask=p_mask.to(device), indices=batch):
                logits = model(tokens, attention_mask=mask)
            logits = getattr(logits, "logits", logits)
            P = p_tok.shape[1]
            # logits at position t predict token t + 1: continuation token k sits at P + k
            lp = torch.log_softmax(logits[:, P - 1:P - 1 + width].to(torch.float32), -1)
            got = lp.gather(-1, c_tok.to(device).unsqueeze(-1)).squeeze(-1).cpu()
            for r, i in enumerate(batch):
                out[i] = got[r, :len(continuations[i])]
    return out  # type: ignore[return-value]
