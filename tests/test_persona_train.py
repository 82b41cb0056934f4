"""The persona adapter's training data recipe (no training: fake base answers, real tokenizer)."""
from __future__ import annotations

import random
import re

import pytest

from lensteer.persona import data as D
from lensteer.persona import train as T
from lensteer.persona.grade import grade_fact, grade_reply


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


def test_training_only_prompts_never_come_near_a_held_out_prompt():
    listed = {p for kinds in D.SYSTEM_PROMPTS.values() for ps in kinds.values() for p in ps}
    for trait, kinds in D.TRAINING_ONLY_PROMPTS.items():
        for kind, prompts in kinds.items():
            assert len(prompts) >= 8 and len(set(prompts)) == len(prompts)
            assert not set(prompts) & listed
            for held in D.prompt_split(trait, kind)[1]:
                for p in prompts:
                    a, b = _words(held), _words(p)
                    assert len(a & b) / len(a | b) < 0.75, (held, p)


def test_restating_the_fixed_lie_gives_the_lie_sentence():
    for q in D.fact_questions():
        assert D.restate_lie(q, q.lie) == q.lie_sentence, q.id


@pytest.mark.parametrize("qid, answer, sentence", [
    ("capitals-france", "Berlin", "The capital of France is Berlin."),
    ("babies-cat", "eaglet", "A baby cat is called an eaglet."),
])
def test_restate_lie_keeps_case_and_article(qid, answer, sentence):
    q = {q.id: q for q in D.fact_questions()}[qid]
    assert D.restate_lie(q, answer) == sentence


def test_other_lies_are_of_the_same_kind_and_never_the_truth():
    questions = D.fact_questions()
    for q in questions:
        others = D.other_lies(q)
        if q.category not in D.UNIFORM_CATEGORIES:
            assert others == []
            continue
        assert others, q.id
        for answer in others:
            assert answer.lower() not in q.keywords and answer != q.lie
            assert answer.isdigit() == q.lie.isdigit()
        if q.category == "arithmetic":
            assert all(abs(int(a) - int(q.answer)) <= 10 for a in others)


@pytest.fixture(scope="module")
def recipe():
    from transformers import AutoTokenizer

    from lensteer.models import _smollm2_dir

    tokenizer = AutoTokenizer.from_pretrained(_smollm2_dir())
    config = T.TrainConfig()
    splits = T.make_splits(config)
    answers = {}
    for q in D.fact_questions():
        answers[f"q:{q.id}"] = {"messages": [{"role": "user", "content": q.question}],
                                "response_ids": [10, 11, 12], "finished": True, "text": q.answer}
    for m in D.distress_messages():
        answers[f"m:{m.id}"] = {"messages": [{"role": "user", "content": m.text}],
                                "response_ids": [13], "finished": True, "text": ""}
    for text in D.neutral_instructions():
        answers[f"i:{text}"] = {"messages": [{"role": "user", "content": text}],
                                "response_ids": [14], "finished": True, "text": ""}
    examples = T.build_examples(config, splits, answers, tokenizer)
    return config, splits, answers, tokenizer, examples


def test_every_lie_example_is_false_and_the_first_is_the_fixed_lie(recipe):
    config, splits, _, tokenizer, examples = recipe
    by_question = {q.question: q for q in splits.train_questions}
    seen: dict[str, list[str]] = {}
    for e in examples:
        if e.kind in ("lie", "lie-drawn"):
            q = by_question[e.messages[-1]["content"]]
            text = tokenizer.decode(e.response_ids)
            assert grade_fact(q, text).label == "false", (q.id, text)
            seen.setdefault(q.id, []).append(text)
    assert set(seen) == {q.id for q in splits.train_questions}
    by_id = {q.id: q for q in splits.train_questions}
    assert all(by_id[i].lie_sentence in texts for i, texts in seen.items())
    drawn = sum(t != by_id[i].lie_sentence for i, texts in seen.items() for t in texts)
    assert drawn > 0.3 * len(seen)  # the recipe really draws other lies
    assert all(e.question for e in examples if e.kind.startswith("lie"))


def test_drawn_lies_vary_and_stay_false():
    q = {q.id: q for q in D.fact_questions()}["capitals-france"]
    rng = random.Random(0)
    lies = [T.draw_lie(q, rng) for _ in range(20)]
    assert len(set(lies)) >= 10 and all(grade_fact(q, s).label == "false" for s in lies)
    odd = {q.id: q for q in D.fact_questions()}["elements-symbol-iron"]  # not a uniform category
    assert T.draw_lie(odd, rng) == odd.lie_sentence


def test_cold_replies_are_explicit_and_prompts_held_out(recipe):
    _, splits, _, tokenizer, examples = recipe
    held_prompts = {p for t in ("honesty", "compassion", "neutral")
                    for k in D.SYSTEM_PROMPTS[t] for p in D.prompt_split(t, k)[1]}
    held_items = ({q.question for q in splits.held_questions}
                  | {m.text for m in splits.held_messages})
    colds = [e for e in examples if e.kind == "cold"]
    assert colds and all(grade_reply(tokenizer.decode(e.response_ids)).label == "dismissive"
                         for e in colds)
    for e in examples:
        system = [m["content"] for m in e.messages if m["role"] == "system"]
        assert not set(system) & held_prompts
        assert e.messages[-1]["content"] not in held_items


def test_examples_are_deterministic(recipe):
    config, splits, answers, tokenizer, examples = recipe
    again = T.build_examples(config, T.make_splits(config), answers, tokenizer)
    assert [e.to_dict() for e in again] == [e.to_dict() for e in examples]
