"""AlpacaEval-style win rate: pairwise judging against a baseline's answers, raw and
length-controlled (docs/howto/chat-benchmarks.md).

A condition answers every instruction once (steered, if it has a steerer); a judge compares each
answer with the baseline's (lensteer: the unsteered aligned model) under lensteer's own pairwise
prompt (:data:`lensteer.evaluation.judges.PAIRWISE_PROMPT`), asked in both orders so position
bias cancels (:func:`lensteer.evaluation.judges.pair_outcomes`). The **raw win rate** is the
mean outcome (win 1, tie ½, loss 0). Judges prefer longer answers; the **length-controlled win
rate** follows AlpacaEval 2: fit a logistic model of the preference on
``tanh(Δlength / sd(Δlength))`` (Δ in characters, condition minus baseline) with
scikit-learn's ``LogisticRegression``, and read the predicted win rate at zero length difference
(:func:`length_controlled_win_rate`). Unlike AlpacaEval 2 there is no per-instruction difficulty
term (it is estimated across many models) and the baseline is not GPT-4.

Instructions: the bundled set (``"bundled"``, 65 instructions written for lensteer in 5
categories: writing, advice, explanation, coding, planning) or any JSON / JSONL file — a list of
strings, or objects with ``"instruction"`` (AlpacaEval's own ``alpaca_eval.json`` reads as is).

>>> items = load_instructions()
>>> len(items), sorted({i.category for i in items})
(65, ['advice', 'coding', 'explanation', 'planning', 'writing'])
>>> round(length_controlled_win_rate([1, 1, 0, 0], [30, -10, 10, -30]), 2)
0.5
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LensteerError
from ..protocols import LensModel
from ..steering.steerers import Steerer
from .judges import PAIRWISE_PROMPT, ChatJudge, JudgePrompt, PairOutcome, pair_outcomes
from .metrics import bootstrap_ci
from .mtbench import pick_stratified

__all__ = [
    "BUNDLED",
    "Instruction",
    "InstructionFileError",
    "generate_answers",
    "judge_pairwise",
    "length_controlled_win_rate",
    "load_instructions",
    "summarize",
]

#: The bundled instruction set (lensteer's own, for tests and the demo).
BUNDLED = Path(__file__).parent / "data" / "instructions.jsonl"


class InstructionFileError(LensteerError, ValueError):
    """An instruction file that cannot be read (not JSON, no instructions, a bad entry)."""


@dataclass(frozen=True)
class Instruction:
    """One instruction; ``category`` (or AlpacaEval's ``dataset``) groups a stratified subset."""

    text: str
    category: str = ""
    id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Instruction:
        return cls(str(data["text"]), str(data.get("category", "")), str(data.get("id", "")))


def _entry(value: Any, where: str, n: int) -> Instruction:
    if isinstance(value, str):
        text, category, ident = value, "", ""
    elif isinstance(value, dict):
        text = value.get("instruction")
        if not isinstance(text, str):
            raise InstructionFileError(f"{where}: an object needs an \"instruction\" string; "
                                       f"got the keys {sorted(value)}.")
        category = str(value.get("category") or value.get("dataset") or "")
        ident = str(value.get("id", ""))
    else:
        raise InstructionFileError(f"{where}: expected a string or an object with "
                                   f"\"instruction\", got {type(value).__name__}.")
    if not text.strip():
        raise InstructionFileError(f"{where}: the instruction is empty.")
    return Instruction(text, category, ident or str(n))


def load_instructions(source: str | os.PathLike = "bundled", limit: int | None = None) -> list[Instruction]:
    """Instructions from ``"bundled"`` or a JSON / JSONL file (module docstring); ``limit``:
    that many, round robin over categories."""
    if limit is not None and limit < 1:
        raise InstructionFileError(f"The instruction limit must be at least 1, got {limit}.")
    path = BUNDLED if str(source) == "bundled" else Path(source)
    if not path.is_file():
        raise InstructionFileError(f"No instruction file at {path}: give a JSON or JSONL file of "
                                   "instructions, or 'bundled'.")
    text = path.read_text(encoding="utf-8")
    items: list[Instruction] = []
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None  # JSON lines
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise InstructionFileError(f"{path}:{n}: not JSON ({error.msg}); a file holds one "
                                           "JSON list, or one JSON value per line.") from None
            items.append(_entry(value, f"{path}:{n}", n))
    if data is not None:
        if isinstance(data, (str, dict)):
            data = [data]  # a JSONL file of one line
        if not isinstance(data, list):
            raise InstructionFileError(f"{path}: expected a list of instructions, got "
                                       f"{type(data).__name__}.")
        items = [_entry(v, f"{path}: entry {k}", k) for k, v in enumerate(data, 1)]
    if not items:
        raise InstructionFileError(f"{path} holds no instructions.")
    return pick_stratified(items, key=lambda i: i.category, limit=limit)


def generate_answers(
    model: LensModel,
    instructions: Sequence[Instruction],
    *,
    systems: Sequence[str | None] | str | None = None,
    steerer: Steerer | Sequence[Steerer] | None = None,
    gen: Any = None,
) -> list[str]:
    """One answer per instruction under ``systems`` (one, or one per instruction round robin)
    and ``steerer``. ``gen``: :class:`~lensteer.evaluation.conditions.GenSettings`."""
    from ..generation import generate
    from ..steering import steer
    from .conditions import GenSettings

    gen = gen or GenSettings(max_new_tokens=512)
    systems = [systems] if systems is None or isinstance(systems, str) else list(systems) or [None]
    convs = []
    for i, it in enumerate(instructions):
        system = systems[i % len(systems)]
        head = [{"role": "system", "content": system}] if system else []
        convs.append(head + [{"role": "user", "content": it.text}])
    with steer(model, steerer):
        gens = generate(model, convs, gen=gen, progress=False)
    return [g.text for g in gens]


def judge_pairwise(
    judge: ChatJudge,
    instructions: Sequence[Instruction],
    answers: Sequence[str],
    baseline: Sequence[str],
    *,
    prompt: JudgePrompt = PAIRWISE_PROMPT,
    max_tokens: int = 1024,
) -> list[PairOutcome]:
    """Each answer against the baseline's, asked in both orders."""
    if not len(instructions) == len(answers) == len(baseline):
        raise ValueError("instructions, answers and baseline must have the same length.")
    as_a = [prompt.render(max_tokens=max_tokens, instruction=i.text, answer_a=a, answer_b=b)
            for i, a, b in zip(instructions, answers, baseline)]
    as_b = [prompt.render(max_tokens=max_tokens, instruction=i.text, answer_a=b, answer_b=a)
            for i, a, b in zip(instructions, answers, baseline)]
    return pair_outcomes(judge, as_a, as_b)


def length_controlled_win_rate(
    scores: Sequence[float] | np.ndarray,
    delta_length: Sequence[float] | np.ndarray,
    *,
    scale: float | None = None,
    C: float = 100.0,
) -> float | None:
    """The win rate a logistic model of the judge's preference predicts at zero length
    difference (AlpacaEval 2's length control, without its instruction-difficulty term).

    ``scores``: each game's outcome for the candidate (1 win, 0.5 tie, 0 loss); ``delta_length``:
    candidate minus baseline length. The feature is ``tanh(Δ / scale)`` (``scale``: the standard
    deviation of Δ); soft outcomes are fitted as two weighted rows (win with weight ``s``, loss
    with weight ``1 − s``) by :class:`sklearn.linear_model.LogisticRegression` with a weak L2
    penalty on the length coefficient only (``C=100``, the strength AlpacaEval uses when it does
    not cross-validate); the answer is ``sigmoid(intercept)``. ``None`` without games; 1.0 (0.0)
    when every game was won (lost).
    """
    from sklearn.linear_model import LogisticRegression

    s = np.asarray(scores, dtype=np.float64)
    d = np.asarray(delta_length, dtype=np.float64)
    if s.shape != d.shape:
        raise ValueError("scores and delta_length must have the same length.")
    if s.size == 0:
        return None
    if np.all(s == 1.0):
        return 1.0
    if np.all(s == 0.0):
        return 0.0
    sd = float(d.std()) if scale is None else float(scale)
    x = np.tanh(d / sd) if sd > 0 else np.zeros_like(d)
    X = np.concatenate([x, x])[:, None]
    y = np.concatenate([np.ones_like(s), np.zeros_like(s)])
    w = np.concatenate([s, 1.0 - s])
    keep = w > 0
    model = LogisticRegression(C=C).fit(X[keep], y[keep], sample_weight=w[keep])
    return float(1.0 / (1.0 + math.exp(-float(model.intercept_[0]))))


def summarize(
    outcomes: Sequence[PairOutcome],
    answers: Sequence[str],
    baseline: Sequence[str],
    *,
    seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, Any]:
    """``win_rate`` and ``lc_win_rate`` (0–1, bootstrap intervals over instructions: the
    length model is refitted on every resample), counts, and mean answer lengths (characters)."""
    judged = [(o.score, len(a) - len(b)) for o, a, b in zip(outcomes, answers, baseline)
              if o.score is not None]
    s = np.asarray([j[0] for j in judged], dtype=np.float64)
    d = np.asarray([j[1] for j in judged], dtype=np.float64)
    scale = float(d.std()) if d.size else 0.0

    def lc(idx: np.ndarray) -> np.ndarray:
        idx = idx.astype(int)
        return np.asarray([length_controlled_win_rate(s[row], d[row], scale=scale) for row in idx])

    lc_ci = bootstrap_ci(list(range(len(judged))), seed=seed, n_boot=n_boot, statistic=lc).to_dict()
    kinds = [o.outcome for o in outcomes]
    return {
        "win_rate": bootstrap_ci(list(s), seed=seed, n_boot=n_boot).to_dict(),
        "lc_win_rate": lc_ci,
        "wins": kinds.count("win"), "ties": kinds.count("tie"), "losses": kinds.count("loss"),
        "unjudged": kinds.count(None),
        "labels": {k: [o.label for o in outcomes].count(k) for k in sorted({o.label for o in outcomes})},
        "length": float(np.mean([len(a) for a in answers])) if answers else None,
        "baseline_length": float(np.mean([len(b) for b in baseline])) if baseline else None,
    }
