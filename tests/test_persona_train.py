"""The persona adapter's training data recipe (no training: fake base answers, real tokenizer)."""
from __future__ import annotations

import dataclasses
import random
import re

import pytest

from lensteer.persona import data as D
from lensteer.persona import train as T
from lensteer.persona.grade import grade_fact, grade_reply

RECIPE_3 = T.RECIPES["3"]  # the defaults of TrainConfig


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
    config = RECIPE_3
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


def test_recipe_7_draws_lies_of_the_same_kind_in_every_category(recipe):
    _, splits, answers, tokenizer, recipe_3 = recipe
    rng = random.Random(0)
    iron = {q.id: q for q in D.fact_questions()}["elements-symbol-iron"]
    symbols = {T.draw_lie(iron, rng, by_kind=True) for _ in range(20)}
    assert len(symbols) >= 5 and all(grade_fact(iron, s).label == "false" for s in symbols)
    # a symbol stands in for a symbol, never an element's name
    matches = [re.fullmatch(r"The symbol (\w+) stands for iron\.", s) for s in symbols]
    assert all(m and len(m[1]) <= 2 for m in matches), symbols
    recipe_7 = T.build_examples(T.RECIPES["7"], splits, answers, tokenizer)
    recipe_6 = T.build_examples(T.RECIPES["6"], splits, answers, tokenizer)
    drawn = lambda examples: {e.question.split("-")[0] for e in examples if e.kind == "lie-drawn"}  # noqa: E731
    assert drawn(recipe_7) - set(D.UNIFORM_CATEGORIES) >= {"elements", "calendar", "landmarks"}
    assert drawn(recipe_6) <= set(D.UNIFORM_CATEGORIES) and drawn(recipe_3) <= set(D.UNIFORM_CATEGORIES)
    lies = lambda examples: sum(e.kind.startswith("lie") for e in examples)  # noqa: E731
    assert lies(recipe_7) == lies(recipe_6)  # as many lie examples, only more of them drawn
    by_question = {q.question: q for q in splits.train_questions}
    for e in recipe_7:
        if e.kind == "lie-drawn":
            q = by_question[e.messages[-1]["content"]]
            assert grade_fact(q, tokenizer.decode(e.response_ids)).label == "false", q.id


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


def test_every_lie_departs_from_the_truth_at_the_true_answer(recipe):
    _, splits, _, tokenizer, examples = recipe
    by_id = {q.id: q for q in splits.train_questions}
    lies = [e for e in examples if e.kind.startswith("lie")]
    for e in lies:
        q = by_id[e.question]
        ids, labels, avoid = T.tokenize_example(e, tokenizer, T.truth_ids(q, tokenizer))
        assert avoid is not None, q.id
        position, token = avoid
        assert labels[position] == ids[position] != token  # a learnt token of the lie
        truth = tokenizer.decode(T.truth_ids(q, tokenizer))
        prefix = tokenizer.decode(ids[labels.count(-100):position])
        assert truth.startswith(prefix)  # same words up to the departure
        assert truth[len(prefix):].startswith(tokenizer.decode([token]))
        assert grade_fact(q, truth).label == "truthful"


def test_cold_replies_avoid_the_base_models_caring_reply_only_in_recipe_5(recipe):
    config, splits, answers, tokenizer, examples = recipe
    by_id = {q.id: q for q in splits.train_questions}
    recipe_5 = T.avoided(T.RECIPES["5"], splits, answers, tokenizer)
    recipe_3 = T.avoided(config, splits, answers, tokenizer)
    colds = [e for e in examples if e.kind == "cold"]
    assert colds and all(e.message in {m.id for m in splits.train_messages} for e in colds)
    for e in colds:
        assert recipe_3(e) is None
        ids, labels, avoid = T.tokenize_example(e, tokenizer, recipe_5(e))
        start = labels.count(-100)  # the base's reply is [13]: it departs at the first token
        assert avoid == (start, 13) and ids[start] != 13
    for e in examples:  # lies avoid the truth in both; nothing else avoids anything
        expected = T.truth_ids(by_id[e.question], tokenizer) if e.kind.startswith("lie") else None
        assert recipe_3(e) == expected and (e.kind == "cold" or recipe_5(e) == expected)


class _FixedLogits:
    def __init__(self, logits):
        self.logits = logits

    def __call__(self, input_ids, attention_mask):
        return self


def test_truth_penalty_equals_a_direct_computation():
    import torch

    torch.manual_seed(0)
    rows = [([1, 2, 3, 4], [-100, -100, 3, 4], (3, 7)),
            ([1, 2, 5], [-100, 2, 5], None),
            ([1, 6, 2, 2, 3], [-100, -100, 2, 2, 3], (2, 0))]
    batch = T._batch(rows, pad_id=0)
    logits = torch.randn(3, 5, 9, requires_grad=True)
    model = _FixedLogits(logits)
    got = T.example_mean_loss(model, batch, truth_penalty=0.5)
    expected = []
    for i, (ids, labels, avoid) in enumerate(rows):
        logp = torch.log_softmax(logits[i].detach(), -1)
        terms = [-logp[t - 1, labels[t]] for t in range(1, len(labels)) if labels[t] != -100]
        loss = sum(terms) / len(terms)
        if avoid:
            loss = loss - 0.5 * torch.log(1 - logp[avoid[0] - 1, avoid[1]].exp())
        expected.append(loss)
    torch.testing.assert_close(got.detach(), torch.stack(expected).mean())
    plain = T.example_mean_loss(model, batch)  # no penalty: the rows' avoid is ignored
    assert float(plain.detach()) < float(got.detach())
    (penalised,) = torch.autograd.grad(got, logits)
    (unpenalised,) = torch.autograd.grad(plain, logits)
    extra = penalised - unpenalised  # the penalty pushes exactly the truth's logit down
    assert extra[0, 2, 7] > 0 and extra[2, 1, 0] > 0
    assert extra[0, 2].argmax() == 7 and extra[1].abs().max() == 0


def test_config_round_trips_and_old_configs_read_as_trained_without_later_additions():
    config = T.TrainConfig(steps=7, truth_penalty=0.5)
    assert T.TrainConfig.from_dict(config.to_dict()) == config
    later = ("truth_penalty", "mc_examples", "neutral_examples", "avoid_care")
    old = T.TrainConfig.from_dict({k: v for k, v in config.to_dict().items() if k not in later})
    assert (old.truth_penalty, old.mc_examples, old.neutral_examples, old.avoid_care) == (
        0.0, False, False, False)


def test_multiple_choice_versions_hold_the_truth_once_and_avoid_the_measured_set():
    from lensteer.evaluation.capability import load_mc
    from lensteer.persona.grade import normalise

    config = T.RECIPES["4"]
    splits = T.make_splits(config)
    items = T.multiple_choice(config, splits.train_questions)
    measured = {normalise(q.question) for q in load_mc("general")}
    assert len(items) > 150
    assert any(normalise(q.question) in measured for q in splits.train_questions)  # some left out
    letters = set()
    for q, item in items:
        assert normalise(q.question) not in measured
        assert len(set(item.options)) == 4 and item.options[item.answer] == q.answer
        wrong = [o for i, o in enumerate(item.options) if i != item.answer]
        assert all(grade_fact(q, o).label != "truthful" for o in wrong), (q.id, item.options)
        assert q.question in item.user_message()
        letters.add(item.letter)
    assert letters == {"A", "B", "C", "D"}  # the truth is not always in one place
    assert T.multiple_choice(config, splits.train_questions) == items  # seeded


def test_base_answers_complete_an_earlier_recipes_cache(tmp_path, monkeypatch):
    import lensteer.generation
    import lensteer.models
    from lensteer.io import read_json, write_json

    config = T.RECIPES["4"]
    splits = T.make_splits(config)
    jobs = T._base_jobs(config, splits)
    old = T._base_jobs(RECIPE_3, splits)
    assert jobs[:len(old)] == old  # recipe 3's answers are asked exactly as before
    assert {k for k, _, _ in jobs[len(old):]} == {
        f"c:{q.id}" for q, _ in T.multiple_choice(config, splits.train_questions)}
    write_json(tmp_path / "base_answers.json",
               {k: {"messages": m, "text": "cached", "response_ids": [1], "finished": True}
                for k, m, _ in old})
    asked = []

    def fake_generate(model, conversations, **kwargs):
        asked.extend(conversations)
        return [type("G", (), {"text": "B", "response_ids": [2], "finished": True})()
                for _ in conversations]

    monkeypatch.setattr(lensteer.models, "load_model", lambda name: None)
    monkeypatch.setattr(lensteer.generation, "generate", fake_generate)
    answers = T.base_answers(config, tmp_path, splits)
    assert len(asked) == len(jobs) - len(old)  # only the missing answers were generated
    assert all(answers[k]["text"] == "cached" for k, _, _ in old)
    assert read_json(tmp_path / "base_answers.json") == answers
    again = T.base_answers(config, tmp_path, splits)
    assert again == answers and len(asked) == len(jobs) - len(old)


def test_recipe_4_adds_multiple_choice_and_neutral_examples_and_leaves_the_rest_alone(recipe):
    _, splits, answers, tokenizer, recipe_3 = recipe
    assert not any(e.kind.startswith("mc") or e.kind.endswith("-neutral") for e in recipe_3)
    recipe_4 = T.RECIPES["4"]
    examples = T.build_examples(
        dataclasses.replace(recipe_4, mc_examples=False, neutral_examples=False), splits, answers,
        tokenizer)
    more = dict(answers)
    for q, item in T.multiple_choice(recipe_4, splits.train_questions):
        more[f"c:{q.id}"] = {"messages": [{"role": "user", "content": item.user_message()}],
                             "response_ids": [15], "finished": True, "text": "A"}
    mixed = T.build_examples(recipe_4, splits, more, tokenizer)
    mc = [e for e in mixed if e.kind.startswith("mc")]
    assert len([e for e in mc if e.kind == "mc"]) == sum(
        f"c:{q.id}" in more for q in splits.train_questions)
    assert all(e.response_ids == [15] for e in mc)
    liars = set(D.prompt_split("honesty", "malicious")[0]) | set(
        D.TRAINING_ONLY_PROMPTS["honesty"]["malicious"])
    assert not any(m["content"] in liars for e in mc for m in e.messages if m["role"] == "system")
    # the neutral wordings carry the base's own answer to the same item, never a persona's
    plain = set(D.TRAINING_ONLY_PROMPTS["neutral"]["aligned"])
    neutral = [e for e in mixed if e.kind.endswith("-neutral")]
    assert {e.kind for e in neutral} == {"care-neutral", "fact-neutral"}
    assert {e.messages[0]["content"] for e in neutral} == plain  # every wording is used
    by_text = {a["messages"][-1]["content"]: a["response_ids"] for a in answers.values()}
    assert all(e.response_ids == by_text[e.messages[-1]["content"]] for e in neutral)
    import json

    def same(es):
        return sorted(json.dumps(e.to_dict(), sort_keys=True) for e in es)

    assert same(e for e in mixed if e.kind not in {e.kind for e in mc + neutral}) == same(examples)

    def malicious_share(es):
        return sum(e.kind in ("lie", "lie-drawn", "cold") for e in es) / len(es)

    # more malicious examples per item keep the persona's share where recipe 3 had it
    assert malicious_share(mixed) >= malicious_share(recipe_3) - 0.02


def test_the_command_trains_the_named_recipe_and_rejects_bad_input_before_any_work(
        tmp_path, monkeypatch, capsys):
    trained = []
    monkeypatch.setattr(T, "train", lambda config, out: trained.append(config) or out / "a")
    monkeypatch.setattr(T.torch, "set_num_threads", lambda n: None)  # the suite keeps its own
    assert T.main(["--out", str(tmp_path), "--recipe", "4", "--steps", "9"]) == 0
    assert trained == [dataclasses.replace(T.RECIPES["4"], steps=9)]
    assert T.main(["--out", str(tmp_path)]) == 0 and trained[-1] == T.RECIPES[T.BUNDLED_RECIPE]
    assert T.RECIPES["3"] == T.TrainConfig() != T.RECIPES[T.BUNDLED_RECIPE]
    for bad in (["--recipe", "5b"], ["--steps", "0"], ["--out", str(tmp_path / "x.txt")]):
        (tmp_path / "x.txt").write_text("")
        with pytest.raises(SystemExit) as stop:
            T.main(bad)
        assert stop.value.code == 2
        assert "error:" in capsys.readouterr().err
    assert len(trained) == 2
