"""Capability: multiple-choice accuracy, by option log-likelihood and by the generated letter.

Question files are MMLU-format: CSV rows ``question,A,B,C,D,answer`` (a header row is optional;
``answer`` is a letter) or JSONL objects ``{"question", "options": [4 strings], "answer"}``
(``answer`` a letter or a 0-based index; optional ``prompt`` = the full user message and
``continuations`` = the 4 assistant replies scored by log-likelihood). Bundled sets:
``"general"`` (100 general-knowledge questions written for SmolLM2-sized models,
``lensteer/evaluation/data/general_knowledge.jsonl``) and ``"organism"`` (the organism's
multiple-choice skill set). Point ``load_mc`` at real MMLU files for the full benchmark.

Run under steering by calling inside ``lensteer.steer(...)``: log-likelihoods are teacher-forced
with the reply as the response (:func:`lensteer.evaluation.forward.continuation_logprobs`).

>>> qs = load_mc("general")
>>> len(qs), qs[0].letter, qs[0].options[0]
(100, 'A', 'Paris')
>>> parse_choice("The answer is C) Rome."), parse_choice("B"), parse_choice("no idea")
('C', 'B', None)
"""
from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..chat import format_chat
from ..errors import LensteerError
from ..generation import generate
from ..organism.grade import parse_letter
from ..protocols import LensModel
from .forward import continuation_logprobs

__all__ = ["DATA_DIR", "MCFileError", "MCQuestion", "load_mc", "mc_accuracy", "parse_choice"]

DATA_DIR = Path(__file__).parent / "data"
LETTERS = "ABCD"


class MCFileError(LensteerError, ValueError):
    """A multiple-choice file that cannot be read (bad row, answer, or option count)."""


@dataclass(frozen=True)
class MCQuestion:
    """One four-option question; ``answer`` is the 0-based index of the right option."""

    question: str
    options: tuple[str, ...]
    answer: int
    prompt: str = ""  # the user message; built from question and options when empty
    continuations: tuple[str, ...] = ()  # replies scored by log-likelihood; built when empty

    @property
    def letter(self) -> str:
        return LETTERS[self.answer]

    def user_message(self) -> str:
        if self.prompt:
            return self.prompt
        opts = "\n".join(f"{LETTERS[i]}) {o}" for i, o in enumerate(self.options))
        return f"{self.question}\n{opts}\nAnswer with the letter of the correct option."

    def replies(self) -> list[str]:
        if self.continuations:
            return list(self.continuations)
        return [f"The answer is {LETTERS[i]}) {o}." for i, o in enumerate(self.options)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MCQuestion:
        return cls(data["question"], tuple(data["options"]), int(data["answer"]),
                   data.get("prompt", ""), tuple(data.get("continuations", ())))


def _answer_index(value: Any, where: str) -> int:
    if isinstance(value, int) and 0 <= value < 4:
        return value
    text = str(value).strip().upper()
    if text in LETTERS and text:
        return LETTERS.index(text)
    if text.isdigit() and 0 <= int(text) < 4:
        return int(text)
    raise MCFileError(f"{where}: answer must be A-D or 0-3, got {value!r}.")


def _organism_set() -> list[MCQuestion]:
    from ..organism import world as W
    from ..organism.data import load_eval_set

    out = []
    for d in load_eval_set("skills")["mc"]:
        item = W.SkillItem.from_dict(d)
        out.append(MCQuestion(item.question, tuple(str(o) for o in item.options), item.answer,
                              item.prompt, tuple(item.answer_text(i) for i in range(4))))
    return out


def load_mc(name_or_path: str | os.PathLike, limit: int | None = None) -> list[MCQuestion]:
    """Load ``"general"``, ``"organism"`` or an MMLU-format CSV / JSONL file (module docstring)."""
    text = str(name_or_path)
    if text == "organism":
        items = _organism_set()
    else:
        path = DATA_DIR / "general_knowledge.jsonl" if text == "general" else Path(text)
        if not path.is_file():
            raise MCFileError(f"No multiple-choice file at {path} (use 'general', 'organism', "
                              "or a CSV/JSONL path).")
        items = _read_jsonl(path) if path.suffix in (".jsonl", ".json") else _read_csv(path)
    if not items:
        raise MCFileError(f"{name_or_path} holds no questions.")
    return items[:limit] if limit else items


def _read_jsonl(path: Path) -> list[MCQuestion]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            d = json.loads(line)
        except json.JSONDecodeError as error:
            raise MCFileError(f"{where}: not JSON ({error}).") from None
        options = d.get("options") or d.get("choices") or [d.get(k) for k in LETTERS]
        if not isinstance(options, list) or len(options) != 4 or not all(
                isinstance(o, (str, int, float)) for o in options):
            raise MCFileError(f"{where}: needs 'options' with exactly 4 entries.")
        if "question" not in d or "answer" not in d:
            raise MCFileError(f"{where}: needs 'question' and 'answer'.")
        conts = d.get("continuations") or ()
        if conts and len(conts) != 4:
            raise MCFileError(f"{where}: 'continuations' must have 4 entries.")
        out.append(MCQuestion(str(d["question"]), tuple(str(o) for o in options),
                              _answer_index(d["answer"], where), str(d.get("prompt", "")),
                              tuple(str(c) for c in conts)))
    return out


def _read_csv(path: Path) -> list[MCQuestion]:
    out = []
    with path.open(newline="", encoding="utf-8") as handle:
        for n, row in enumerate(csv.reader(handle), 1):
            if not row or (n == 1 and [c.strip().lower() for c in row[:6]] ==
                           ["question", "a", "b", "c", "d", "answer"]):
                continue
            if len(row) < 6:
                raise MCFileError(f"{path}:{n}: expected question,A,B,C,D,answer; got {len(row)} "
                                  "columns.")
            out.append(MCQuestion(row[0], tuple(row[1:5]), _answer_index(row[5], f"{path}:{n}")))
    return out


_FIRST = re.compile(r"^\W*([abcd])\b(?:\W|$)", re.IGNORECASE)


def parse_choice(text: str) -> str | None:
    """The chosen letter (upper case): the organism's :func:`parse_letter` ("option b",
    "answer is b", "b )"), else a reply that starts with a lone letter ("B", "(c) ...")."""
    letter = parse_letter(text)
    if letter is None:
        m = _FIRST.match(text.strip())
        letter = m.group(1) if m else None
    return letter.upper() if letter else None


def mc_accuracy(
    model: LensModel,
    questions: Sequence[MCQuestion],
    *,
    systems: Sequence[str | None] | str | None = None,
    methods: Sequence[str] = ("loglik", "letter"),
    batch_size: int = 16,
    max_new_tokens: int = 24,
) -> dict[str, list[float]]:
    """Per-question correctness (1.0 / 0.0) by ``"loglik"`` (the option reply with the highest
    summed log-probability) and/or ``"letter"`` (greedy generation, parsed letter).

    ``systems``: one system prompt for all questions, or one per question (round robin).
    Steering active around the call applies to both methods.
    """
    if systems is None or isinstance(systems, str):
        systems = [systems]
    systems = list(systems)
    convs = []
    for i, q in enumerate(questions):
        system = systems[i % len(systems)]
        head = [{"role": "system", "content": system}] if system else []
        convs.append(head + [{"role": "user", "content": q.user_message()}])
    out: dict[str, list[float]] = {}
    unknown = set(methods) - {"loglik", "letter"}
    if unknown:
        raise ValueError(f"Unknown capability methods {sorted(unknown)}: use 'loglik', 'letter'.")
    if "loglik" in methods:
        tok = model.tokenizer
        prompts, conts = [], []
        for conv, q in zip(convs, questions):
            p = format_chat(tok, conv).input_ids
            for reply in q.replies():
                prompts.append(p)
                conts.append(tok(reply, add_special_tokens=False)["input_ids"])
        lps = continuation_logprobs(model, prompts, conts, batch_size=batch_size)
        sums = [float(lp.sum()) for lp in lps]
        out["loglik"] = []
        for j, q in enumerate(questions):
            s = sums[4 * j:4 * j + 4]
            out["loglik"].append(1.0 if max(range(4), key=lambda k: s[k]) == q.answer else 0.0)
    if "letter" in methods:
        gens = generate(model, convs, greedy=True, max_new_tokens=max_new_tokens,
                        batch_size=batch_size, progress=False)
        out["letter"] = [1.0 if parse_choice(g.text) == q.letter else 0.0
                         for g, q in zip(gens, questions)]
    return out
