"""The TransformerLens path: the model's own ``generate`` on left-padded token tensors.

Works on TransformerLens 4's ``TransformerBridge`` (which takes the attention mask) and on 3.9's
``HookedTransformer`` (which finds left pads by scanning from the tokenizer's padding side).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from jaxtyping import Int
from torch import Tensor

from ..protocols import LensModel

__all__ = ["generate_tokens"]


def generate_tokens(
    model: LensModel,
    tokens: Int[Tensor, "batch pos"],
    attention_mask: Int[Tensor, "batch pos"],
    *,
    max_new_tokens: int,
    do_sample: bool,
    temperature: float,
    top_p: float | None,
    stop_ids: Sequence[int],
    use_kv_cache: bool = True,
) -> Int[Tensor, "batch total"]:
    """Prompt and generated tokens from ``model.generate`` (rows that stopped are padded by it)."""
    with _left_padding(model):
        return model.generate(
            tokens,
            **_mask_argument(model, attention_mask),
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            temperature=temperature,
            top_p=top_p,
            stop_at_eos=True,
            eos_token_id=list(stop_ids),
            use_past_kv_cache=use_kv_cache,
            return_type="tokens",
            verbose=False,
        )


def _is_bridge(model: LensModel) -> bool:
    return hasattr(model, "original_model")


def _mask_argument(model: LensModel, mask: Tensor) -> dict[str, Tensor]:
    """The Bridge takes the attention mask; TL 3.9 reads left pads off the pad token instead."""
    return {"attention_mask": mask} if _is_bridge(model) else {}


@contextlib.contextmanager
def _left_padding(model: LensModel) -> Iterator[None]:
    """TL 3.9's generate finds pads by scanning from the tokenizer's padding side."""
    tokenizer = model.tokenizer
    original = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        yield
    finally:
        tokenizer.padding_side = original
