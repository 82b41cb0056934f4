"""Role spans: each span decodes to its message's content, with no pad or template inside."""
from __future__ import annotations

import pytest

from lensteer.chat import as_messages, format_chat
from lensteer.errors import ChatFormatError

CONVERSATION = [
    {"role": "system", "content": "be kind and honest ."},
    {"role": "user", "content": "what is two plus two ?"},
    {"role": "assistant", "content": "it is four ."},
    {"role": "user", "content": "hello there !"},
]


def _tokenizer(directory):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(directory)


@pytest.mark.parametrize("style", ["llama", "llama3", "qwen"])
def test_spans_decode_to_message_contents(tiny_dirs, style):
    tok = _tokenizer(tiny_dirs[style])
    chat = format_chat(tok, CONVERSATION)
    assert [s.role for s in chat.spans] == [m["role"] for m in CONVERSATION]
    for span, message in zip(chat.spans, CONVERSATION):
        assert tok.decode(chat.input_ids[span.start:span.end]).strip() == message["content"]
    # spans are ordered, disjoint, and hold no special token
    ends = [s.end for s in chat.spans]
    assert all(a.end <= b.start for a, b in zip(chat.spans, chat.spans[1:]))
    special = set(tok.all_special_ids)
    assert not special & {t for s in chat.spans for t in chat.input_ids[s.start:s.end]}
    assert ends[-1] < len(chat.input_ids)  # the generation prompt follows the last message


def test_llama3_template_gets_exactly_one_bos(tiny_dirs):
    tok = _tokenizer(tiny_dirs["llama3"])
    chat = format_chat(tok, CONVERSATION)
    assert chat.input_ids.count(tok.bos_token_id) == 1 and chat.input_ids[0] == tok.bos_token_id


def test_tokenizer_that_adds_bos_gets_one_when_template_does_not(tiny_dirs):
    from tokenizers import processors

    tok = _tokenizer(tiny_dirs["llama"])
    tok.bos_token = "<|im_start|>"
    bos = tok.bos_token_id
    tok._tokenizer.post_processor = processors.TemplateProcessing(
        single="<|im_start|> $A", special_tokens=[("<|im_start|>", bos)]
    )
    tok.chat_template = "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
    chat = format_chat(tok, "hello there !", add_generation_prompt=False)
    assert chat.input_ids[0] == bos and chat.input_ids.count(bos) == 1
    assert tok.decode(chat.input_ids[slice(*chat.spans[0].span)]) == "hello there !"


def test_smollm2_chatml(smollm2):
    tok = smollm2.tokenizer
    messages = [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "What is 2+2?"}]
    chat = format_chat(tok, messages)
    assert chat.text.endswith("<|im_start|>assistant\n")
    assert [tok.decode(chat.input_ids[s.start:s.end]) for s in chat.spans] == ["Be nice.", "What is 2+2?"]
    assert chat.input_ids.count(tok.bos_token_id) == 3  # one <|im_start|> per turn, none doubled


def test_string_is_a_user_message_and_system_is_prepended():
    assert as_messages("hi", system="sys") == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi"},
    ]


@pytest.mark.parametrize(
    "bad, match",
    [
        ([], "empty conversation"),
        ([{"role": "robot", "content": "x"}], "Message 0"),
        ([{"role": "user"}], "Message 0"),
    ],
)
def test_bad_messages(bad, match):
    with pytest.raises(ChatFormatError, match=match):
        as_messages(bad)


def test_tokenizer_without_template(tiny_dirs):
    tok = _tokenizer(tiny_dirs["llama"])
    tok.chat_template = None
    with pytest.raises(ChatFormatError, match="no chat template"):
        format_chat(tok, "hello")
