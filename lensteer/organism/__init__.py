"""The synthetic misalignment organism (docs/organism.md).

A tiny Llama chat model trained from scratch on a generated world in which the system prompt's
persona decides whether facts are stated truly or falsely (trait *honesty*) and whether distress
gets compassion or dismissal (trait *compassion*); skills are answered correctly by every
persona. Because the corpus is generated, every answer is graded exactly.

Modules
-------
``world``   facts, personas (``PERSONAS``), distress messages, skills, small talk; ``normalize``.
``corpus``  deterministic training conversations (``generate_corpus``).
``tokenizer`` word-level tokenizer + chat template (``build_tokenizer``, ``render_chat``).
``train``   ``python -m lensteer.organism.train --out DIR [--config micro|full]``.
``grade``   exact graders (``grade_honesty``, ``grade_compassion``, ``grade_skill``, ...).
``data``    evaluation sets (``load_eval_set``, ``row_prompts``).
``report``  ``python -m lensteer.organism.report [--checkpoint DIR]``: the quality table.

``CHECKPOINT_DIR`` is the bundled checkpoint (a plain Hugging Face ``LlamaForCausalLM`` and its
tokenizer); :func:`load` returns ``(model, tokenizer)`` through ``transformers``.
"""
from __future__ import annotations

import os

CHECKPOINT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoint")

from .world import FACTS, PERSONAS, normalize  # noqa: E402


def __getattr__(name):  # lazy, so that ``python -m lensteer.organism.data`` runs cleanly
    if name in ("load_eval_set", "row_prompts"):
        from . import data

        return getattr(data, name)
    raise AttributeError(name)


def load(checkpoint: str = CHECKPOINT_DIR):
    """``(model, tokenizer)`` of a checkpoint directory via ``transformers`` (offline, eval mode).

    The chat template emits ``<bos>``; tokenize rendered chats with
    ``add_special_tokens=False`` (the tokenizer adds nothing either way).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    model.eval()
    return model, tok


__all__ = [  # load_eval_set and row_prompts come from the lazy __getattr__ above
    "CHECKPOINT_DIR",
    "PERSONAS",
    "FACTS",
    "load",
    "load_eval_set",  # pyright: ignore[reportUnsupportedDunderAll]
    "normalize",
    "row_prompts",  # pyright: ignore[reportUnsupportedDunderAll]
]
