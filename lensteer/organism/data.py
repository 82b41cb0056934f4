"""Evaluation sets of the organism, shipped as JSON files in ``lensteer/organism/data/``.

Regenerate them (deterministic) with ``python -m lensteer.organism.data --write``; a test
checks the shipped files equal a fresh build.

Sets (``load_eval_set(name)``):

``personas``       the system-prompt paraphrases, ``{"honesty"|"compassion": {"aligned"|"malicious":
                   {"train": [...], "heldout": [...]}}, "neutral": {"train", "heldout"}}``.
``facts``          every fact: ``{"id", "category", "subject", "true", "false", "questions",
                   "answer", "lie", "answer_prefix"}``.
``honesty``        ``{"system_prompts": {"aligned", "malicious", "neutral"}, "questions":
                   [{"fact", "question"}]}``: held-out paraphrases × one question per fact.
``compassion``     ``{"system_prompts": {...}, "messages": [{"text", "category", "feeling",
                   "heldout"}]}``: held-out paraphrases × all distress messages (held-out
                   messages flagged).
``skills``         ``{"mc": [SkillItem dicts], "arith": [ArithItem dicts]}``.
``neutral``        small-talk conversations: ``[{"system", "turns": [{"kind", "user", "ref"}]}]``.
``conversations``  5–10-turn mixed conversations under held-out prompts of every persona kind:
                   ``[{"persona", "system", "turns": [{"kind", "user", "assistant", "ref"}]}]``
                   (``assistant``: the reference reply of that persona, for teacher forcing).

``system`` is ``None`` for "no system message". Helpers: :func:`row_prompts` gives the system
prompts of each quality-table row.

>>> from lensteer.organism.data import load_eval_set
>>> s = load_eval_set("honesty")
>>> len(s["questions"]) >= 150 and len(s["system_prompts"]["malicious"]) >= 3
True
"""
from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
from functools import cache

from . import world as W

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
EVAL_SEED = 4242
SET_NAMES = ("personas", "facts", "honesty", "compassion", "skills", "neutral", "conversations")


def _prompts(trait: str) -> dict[str, list]:
    return {
        "aligned": list(W.PERSONAS[trait]["aligned"]["heldout"]),
        "malicious": list(W.PERSONAS[trait]["malicious"]["heldout"]),
        "neutral": list(W.PERSONAS["neutral"]["heldout"]) + ["", None],
    }


def build_sets(seed: int = EVAL_SEED) -> dict[str, object]:
    rng = random.Random(seed)
    sets: dict[str, object] = {}
    sets["personas"] = W.PERSONAS
    sets["facts"] = [
        {"id": f.id, "category": f.category, "subject": f.subject, "true": f.true,
         "false": f.false, "questions": f.questions, "answer": f.answer(),
         "lie": f.answer(lie=True), "answer_prefix": f.answer_prefix()}
        for f in W.FACTS
    ]
    sets["honesty"] = {
        "system_prompts": _prompts("honesty"),
        "questions": [{"fact": f.id, "question": f.question(i)} for i, f in enumerate(W.FACTS)],
    }
    _, held = W.distress_split()
    held_texts = {d.text for d in held}
    sets["compassion"] = {
        "system_prompts": _prompts("compassion"),
        "messages": [{"text": d.text, "category": d.category, "feeling": d.feeling,
                      "heldout": d.text in held_texts} for d in W.DISTRESS],
    }
    mc = []
    for kind in W.SKILL_KINDS:
        for _ in range(20):
            mc.append(W.make_skill(rng, kind).to_dict())
    sets["skills"] = {"mc": mc, "arith": [W.make_arith(rng).to_dict() for _ in range(40)]}
    neutral = []
    for i in range(20):
        system = [None, "", *W.PERSONAS["neutral"]["heldout"]][i % 5]
        turns = []
        for _ in range(rng.randint(2, 4)):
            t = W.make_turn("smalltalk", ("honest", "compassionate"), rng, held)
            turns.append({"kind": t.kind, "user": t.user, "ref": t.ref})
        neutral.append({"system": system, "turns": turns})
    sets["neutral"] = neutral
    convs = []
    kinds = ["neutral", "honest", "dishonest", "compassionate", "dismissive"]
    for i in range(30):
        persona = kinds[i % len(kinds)]
        system = rng.choice(W.persona_prompts(persona, "heldout"))
        behaviour = W.PERSONA_BEHAVIOUR[persona]
        turns = []
        for _ in range(rng.randint(5, 10)):
            kind = rng.choices(["fact", "distress", "skill", "arith", "smalltalk"],
                               [0.35, 0.25, 0.25, 0.05, 0.10])[0]
            t = W.make_turn(kind, behaviour, rng, held)
            turns.append({"kind": t.kind, "user": t.user, "assistant": t.assistant, "ref": t.ref})
        convs.append({"persona": persona, "system": system, "turns": turns})
    sets["conversations"] = convs
    return sets


def row_prompts() -> dict[str, list[str | None]]:
    """System prompts of the quality table's rows (all held out; ``None`` = no system message).

    ``aligned``: held-out aligned paraphrases of both traits, held-out neutral prompts, the
    empty prompt and no system message. ``malicious_honesty`` / ``malicious_compassion``: the
    held-out malicious paraphrases of that trait.
    """
    h, c = _prompts("honesty"), _prompts("compassion")
    return {"aligned": h["aligned"] + c["aligned"] + h["neutral"],
            "malicious_honesty": h["malicious"], "malicious_compassion": c["malicious"]}


def _path(name: str) -> str:
    return os.path.join(DATA_DIR, f"{name}.json")


def write_sets(out_dir: str = DATA_DIR) -> list[str]:
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name, obj in build_sets().items():
        path = os.path.join(out_dir, f"{name}.json")
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".tmp-")
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, ensure_ascii=False)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        paths.append(path)
    return paths


@cache
def _load(name: str):
    with open(_path(name)) as f:
        return json.load(f)


def load_eval_set(name: str):
    """Load an evaluation set by name (see the module docstring). Returns a fresh copy."""
    if name not in SET_NAMES:
        raise KeyError(f"unknown eval set {name!r}; known: {', '.join(SET_NAMES)}")
    return json.loads(json.dumps(_load(name)))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Write the organism's evaluation sets.")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--out", default=DATA_DIR)
    a = ap.parse_args(argv)
    if a.write:
        for p in write_sets(a.out):
            print(p)


if __name__ == "__main__":
    main()
