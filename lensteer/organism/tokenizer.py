"""The organism's word-level tokenizer and chat template.

* Normalizer: lower-case. Pre-tokenizer: ``Whitespace`` (``\\w+|[^\\w\\s]+``). Model: ``WordLevel``
  over every word the world can produce (:func:`lensteer.organism.world.world_texts`), plus
  special tokens ``<pad> <unk> <bos> <eos> <|system|> <|user|> <|assistant|>``.
* Offsets are character offsets into the original (un-lower-cased) string, so chat-span code
  can map message contents to tokens with ``return_offsets_mapping=True``.
* **BOS**: the chat template emits ``<bos>`` itself; the tokenizer's post-processor adds
  nothing (``add_special_tokens`` is a no-op). Tokenize a rendered chat string as it is; do not
  prepend another BOS (TransformerLens: ``prepend_bos=False`` or pass token tensors).
* Chat template (each message's content verbatim)::

      <bos><|system|>\\n{system}<eos>\\n<|user|>\\n{user}<eos>\\n<|assistant|>\\n{reply}<eos>\\n ...

  ``add_generation_prompt=True`` appends ``<|assistant|>\\n``. Each assistant turn ends with
  ``<eos>``, so generation stops there. A conversation may have no system message.

>>> from lensteer.organism.tokenizer import render_chat
>>> render_chat([{"role": "user", "content": "Hello!"}], add_generation_prompt=True)[0]
'<bos><|user|>\\nHello!<eos>\\n<|assistant|>\\n'
"""
from __future__ import annotations

from collections.abc import Sequence

from .world import words, world_texts

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
ROLE_TOKENS = {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>"}
SPECIAL_TOKENS = [PAD, UNK, BOS, EOS] + list(ROLE_TOKENS.values())

CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{{- '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant|>\n' -}}{%- endif -%}"
)


def render_chat(messages: Sequence[dict[str, str]], add_generation_prompt: bool = False
                ) -> tuple[str, list[tuple[str, int, int]]]:
    """Python twin of :data:`CHAT_TEMPLATE` (tested equal to ``apply_chat_template``).

    Returns the rendered text and ``(role, start, end)`` character spans of every message's
    content; for assistant messages the span's ``end`` includes the closing ``<eos>``.
    """
    parts = [BOS]
    pos = len(BOS)
    spans: list[tuple[str, int, int]] = []
    for m in messages:
        role = m["role"]
        if role not in ROLE_TOKENS:
            raise ValueError(f"unknown role {role!r}")
        head = ROLE_TOKENS[role] + "\n"
        parts.append(head)
        pos += len(head)
        start = pos
        parts.append(m["content"] + EOS + "\n")
        end = start + len(m["content"]) + (len(EOS) if role == "assistant" else 0)
        spans.append((role, start, end))
        pos += len(m["content"]) + len(EOS) + 1
    if add_generation_prompt:
        parts.append(ROLE_TOKENS["assistant"] + "\n")
    return "".join(parts), spans


def build_vocab(extra_texts: Sequence[str] = ()) -> list[str]:
    """Special tokens, then the sorted set of world words."""
    ws = set()
    for t in list(world_texts()) + list(extra_texts):
        ws.update(words(t))
    return SPECIAL_TOKENS + sorted(ws - set(SPECIAL_TOKENS))


def build_tokenizer(extra_texts: Sequence[str] = ()):
    """A ``PreTrainedTokenizerFast`` over the world's vocabulary with the chat template."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(build_vocab(extra_texts))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)  # "paris ." -> "paris."
    tok.add_special_tokens(SPECIAL_TOKENS)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK,
        additional_special_tokens=list(ROLE_TOKENS.values()), model_max_length=1024,
        padding_side="left", add_bos_token=False, add_eos_token=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def save_tokenizer(tokenizer, out_dir: str) -> None:
    tokenizer.save_pretrained(out_dir)


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def unknown_words(tokenizer, text: str) -> list[str]:
    """Words of ``text`` that map to ``<unk>``."""
    unk = tokenizer.convert_tokens_to_ids(UNK)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return [text[s:e] for i, (s, e) in zip(enc["input_ids"], enc["offset_mapping"]) if i == unk]


def encode_chat(tokenizer, messages: Sequence[dict[str, str]], add_generation_prompt: bool = False
                ) -> tuple[list[int], list[int]]:
    """Token ids of the rendered chat and a 0/1 loss mask that is 1 on assistant content tokens
    and their closing ``<eos>`` (the tokens the trainer learns)."""
    text, spans = render_chat(messages, add_generation_prompt)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return enc["input_ids"], _mask(enc["offset_mapping"], spans)


def _mask(offsets, spans) -> list[int]:
    a_spans = [(s, e) for r, s, e in spans if r == "assistant"]
    mask = []
    j = 0
    for (s, e) in offsets:
        while j < len(a_spans) and a_spans[j][1] <= s:
            j += 1
        mask.append(1 if j < len(a_spans) and a_spans[j][0] <= s < a_spans[j][1] else 0)
    return mask


def encode_chats(tokenizer, conversations: Sequence[Sequence[dict[str, str]]]
                 ) -> list[tuple[list[int], list[int]]]:
    """Batched :func:`encode_chat` (fast path for the trainer)."""
    rendered = [render_chat(m) for m in conversations]
    enc = tokenizer([t for t, _ in rendered], add_special_tokens=False,
                    return_offsets_mapping=True)
    return [(ids, _mask(offs, spans)) for ids, offs, (_, spans)
            in zip(enc["input_ids"], enc["offset_mapping"], rendered)]
