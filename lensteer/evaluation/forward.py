"""Teacher-forced scoring: log-probabilities of given continuations
(:func:`continuation_logprobs`, which lives in :mod:`lensteer.generation.forced` so the locate
wing can use it too), and the paper's judge-free coherence metric (cross-entropy of the first 50 response tokens under the unsteered model with
the aligned system prompt).

Rows are laid out as ``[left-padded prompt | continuation, right-padded]`` and their positions
are declared on the run-time seam (:func:`lensteer.runtime.positions`), so active
``lensteer.steer`` steerers see the prompt as prompt and the continuation as response: a
steerer in ``"response"`` mode edits exactly the tokens it would edit while generating them.

>>> import lensteer
>>> model = lensteer.load_model("organism")
>>> [lp] = continuation_logprobs(model, [[1, 2, 3]], [[4, 5]])
>>> lp.shape, bool((lp <= 0).all())
(torch.Size([2]), True)
"""
from __future__ import annotations

from collections.abc import Sequence

from ..chat import format_chat
from ..generation import Generation
from ..generation.forced import continuation_logprobs
from ..protocols import LensModel

__all__ = ["FIRST_TOKENS", "continuation_logprobs", "response_cross_entropy"]

#: How many response tokens the judge-free coherence metric reads (the paper's 50).
FIRST_TOKENS = 50


def response_cross_entropy(
    model: LensModel,
    generations: Sequence[Generation],
    systems: Sequence[str | None] | str | None,
    *,
    max_tokens: int = FIRST_TOKENS,
    batch_size: int = 16,
) -> list[float | None]:
    """Mean cross-entropy (nats) of each response's first ``max_tokens`` tokens under ``model``
    with the conversation's system prompt replaced by ``systems`` (the aligned prompt).

    Call it outside any ``steer`` block: the paper scores under the *unsteered* model. Empty
    responses give ``None``.
    """
    if systems is None or isinstance(systems, str):
        systems = [systems] * len(generations)
    prompts, conts, keep = [], [], []
    for g, system in zip(generations, systems):
        messages = [m for m in g.messages if m["role"] != "system"]
        if system:
            messages = [{"role": "system", "content": system}] + messages
        ids = list(g.response_ids[:max_tokens])
        keep.append(bool(ids))
        prompts.append(format_chat(model.tokenizer, messages).input_ids)
        conts.append(ids)
    rows = [i for i, k in enumerate(keep) if k]
    lps = continuation_logprobs(model, [prompts[i] for i in rows], [conts[i] for i in rows],
                                batch_size=batch_size)
    out: list[float | None] = [None] * len(generations)
    for i, lp in zip(rows, lps):
        out[i] = float(-lp.mean())
    return out
