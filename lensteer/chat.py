"""Chat formatting with role spans: which tokens belong to which message.

:func:`format_chat` renders messages with the tokenizer's own chat template, tokenizes the
result once (never adding a second BOS), and finds, for every message, the half-open token span
``[start, end)`` that holds its content. Assistant spans are what activation pooling uses.

>>> from transformers import AutoTokenizer
>>> from lensteer.organism import CHECKPOINT_DIR
>>> tokenizer = AutoTokenizer.from_pretrained(CHECKPOINT_DIR)
>>> chat = format_chat(tokenizer, [{"role": "system", "content": "Be kind."},
...                                {"role": "user", "content": "Hello there!"}])
>>> [(s.role, tokenizer.decode(chat.input_ids[s.start:s.end])) for s in chat.spans]
[('system', 'be kind.'), ('user', 'hello there!')]
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ChatFormatError

Message = dict[str, str]
#: A conversation is a list of ``{"role": ..., "content": ...}`` messages; a bare string is a
#: single user message.
Conversation = str | Sequence[Message]
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class MessageSpan:
    """The tokens ``[start, end)`` holding the content of one message."""

    role: str
    start: int
    end: int

    @property
    def span(self) -> tuple[int, int]:
        return (self.start, self.end)

    def __len__(self) -> int:
        return self.end - self.start


@dataclass
class ChatTokens:
    """A formatted conversation: its text, its token ids and one span per message."""

    text: str
    input_ids: list[int]
    spans: list[MessageSpan] = field(default_factory=list)

    def spans_of(self, role: str) -> list[MessageSpan]:
        return [s for s in self.spans if s.role == role]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatTokens:
        return cls(data["text"], list(data["input_ids"]), [MessageSpan(**s) for s in data["spans"]])


def as_messages(conversation: Conversation, system: str | None = None) -> list[Message]:
    """Normalise a conversation (a string is one user message), checking roles and contents.

    >>> as_messages("Hello", system="Be kind.")
    [{'role': 'system', 'content': 'Be kind.'}, {'role': 'user', 'content': 'Hello'}]
    """
    if isinstance(conversation, str):
        messages = [{"role": "user", "content": conversation}]
    else:
        messages = [dict(m) for m in conversation]
    if system is not None:
        if messages and messages[0].get("role") == "system":
            raise ChatFormatError("The conversation already has a system message; drop `system=`.")
        messages.insert(0, {"role": "system", "content": system})
    if not messages:
        raise ChatFormatError("An empty conversation cannot be formatted: give at least one message.")
    for i, m in enumerate(messages):
        if m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise ChatFormatError(
                f"Message {i} must be {{'role': one of {ROLES}, 'content': str}}, got {m!r}."
            )
    return messages


def _bos_to_prepend(tokenizer: Any, text: str) -> list[int]:
    """[bos] when the tokenizer normally adds a BOS and the template did not write one."""
    bos_id, bos = tokenizer.bos_token_id, tokenizer.bos_token
    if bos_id is None or (bos and text.startswith(bos)):
        return []
    probe = tokenizer("a", add_special_tokens=True)["input_ids"]
    return [bos_id] if probe and probe[0] == bos_id else []


def format_chat(
    tokenizer: Any, conversation: Conversation, *, add_generation_prompt: bool = True
) -> ChatTokens:
    """Render ``conversation`` with the chat template and locate every message's tokens.

    A token belongs to a message's span when its characters overlap the message's content;
    template tokens (role headers, end-of-turn markers) and any BOS fall outside all spans.
    """
    messages = as_messages(conversation)
    if not getattr(tokenizer, "chat_template", None):
        raise ChatFormatError(
            "This tokenizer has no chat template. Set `tokenizer.chat_template` (a Jinja "
            "string) or load an instruction-tuned model."
        )
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    prefix = _bos_to_prepend(tokenizer, text)
    ids = prefix + list(encoded["input_ids"])
    offsets = [(0, 0)] * len(prefix) + [tuple(o) for o in encoded["offset_mapping"]]

    spans, cursor = [], 0
    for i, message in enumerate(messages):
        content = message["content"]
        start_char = text.find(content, cursor) if content else -1
        if content and start_char < 0 and content.strip():
            content = content.strip()  # templates such as Llama 3's strip message contents
            start_char = text.find(content, cursor)
        if content.strip() and start_char < 0:
            raise ChatFormatError(
                f"Message {i} ({message['role']}) does not appear verbatim in the rendered chat "
                "template, so its tokens cannot be located."
            )
        if start_char < 0:  # empty content: an empty span where the next search starts
            token = next((t for t, (a, _) in enumerate(offsets) if a >= cursor and t >= len(prefix)), len(ids))
            spans.append(MessageSpan(message["role"], token, token))
            continue
        end_char = start_char + len(content)
        inside = [t for t, (a, b) in enumerate(offsets) if a < end_char and b > start_char and b > a]
        spans.append(MessageSpan(message["role"], inside[0], inside[-1] + 1))
        cursor = end_char
    return ChatTokens(text=text, input_ids=ids, spans=spans)
