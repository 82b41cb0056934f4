"""Build the persona model's trait files from its data and the bundled adapter's record.

The persona-tuned SmolLM2 (``"smollm2-persona"``) was trained on some system prompts, questions
and distress messages and not on others; its trait files keep that split: training prompts and
items become ``scenarios`` (what ``locate`` fits directions on), held-out prompts and the
held-out items that the base model answers correctly become the evaluation set. Scenario ids are
the items' ids, so exact graders find the fact behind a question. Regenerate the shipped files
with ``python -m lensteer.traits.persona --write``; a test checks they equal a fresh build.

>>> traits = build_persona_traits()
>>> sorted(traits), traits["honesty"]["model"]
(['compassion', 'honesty'], 'smollm2-persona')
"""
from __future__ import annotations

import argparse
from typing import Any

from . import DATA_DIR, FORMAT_VERSION

MODEL = "smollm2-persona"
SCENARIOS = 64  # training items given to locate (spread over categories)


def _spread(items: list[Any], key: Any, n: int) -> list[Any]:
    """Up to ``n`` items taken round-robin over the groups of ``key`` (stable order)."""
    groups: dict[str, list[Any]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    out: list[Any] = []
    while len(out) < min(n, len(items)):
        for group in groups.values():
            if group and len(out) < n:
                out.append(group.pop(0))
    return out


def build_persona_traits(meta: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The ``smollm2-persona_honesty`` and ``_compassion`` trait files as dicts (``meta``: the
    adapter's metadata; default: the bundled adapter's)."""
    from ..persona import data as D

    if meta is None:
        from ..models import _persona_adapter
        from ..persona.adapter import load_adapter

        meta = load_adapter(_persona_adapter()).meta
    screening = meta["screening"]
    questions = {q.id: q for q in D.fact_questions()}
    messages = {m.id: m for m in D.distress_messages()}
    neutral_train, neutral_held = D.prompt_split("neutral", "aligned")
    common = {
        "neutral_prompts": list(neutral_held),
        "neutral_scenarios": [{"id": f"instruction-{i}", "prompt": text, "category": "general"}
                              for i, text in enumerate(screening["held_instructions"][:16])],
    }

    def prompts(trait: str) -> dict[str, list[str]]:
        aligned, aligned_held = D.prompt_split(trait, "aligned")
        malicious, malicious_held = D.prompt_split(trait, "malicious")
        return {"aligned_prompts": list(aligned), "malicious_prompts": list(malicious),
                "eval_aligned_prompts": list(aligned_held),
                "eval_malicious_prompts": list(malicious_held)}

    def fact(q: Any) -> dict[str, str]:
        return {"id": q.id, "prompt": q.question, "category": q.category}

    def reply(m: Any) -> dict[str, str]:
        return {"id": m.id, "prompt": m.text, "category": m.situation}

    train_q = [questions[i] for i in screening["train_questions"]]
    train_m = [messages[i] for i in screening["train_messages"]]
    honesty = {
        "format_version": FORMAT_VERSION,
        "name": "honesty",
        "model": MODEL,
        "description": "The persona model answers factual questions truly (aligned) or states a "
        "confident falsehood (malicious prompt). Scenarios are training questions; the eval set "
        "holds held-out questions the base model answers correctly, under held-out prompts.",
        **prompts("honesty"),
        "scenarios": [fact(q) for q in _spread(train_q, lambda q: q.category, SCENARIOS)],
        "eval_scenarios": [fact(questions[i]) for i in screening["held_questions"]],
        **common,
    }
    compassion = {
        "format_version": FORMAT_VERSION,
        "name": "compassion",
        "model": MODEL,
        "description": "The persona model answers a distressed user with care (aligned) or "
        "brushes them off coldly (malicious prompt). Scenarios are training messages; the eval "
        "set holds held-out messages under held-out prompts.",
        **prompts("compassion"),
        "scenarios": [reply(m) for m in _spread(train_m, lambda m: m.situation, SCENARIOS)],
        "eval_scenarios": [reply(messages[i]) for i in screening["held_messages"]],
        **common,
    }
    return {"honesty": honesty, "compassion": compassion}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the persona model's trait files.")
    parser.add_argument("--write", action="store_true", help=f"write them into {DATA_DIR}")
    args = parser.parse_args(argv)
    from ..io import write_json

    for name, data in build_persona_traits().items():
        path = DATA_DIR / f"{MODEL}_{name}.json"
        if args.write:
            write_json(path, data)
        print(f"{path}: {len(data['scenarios'])} scenarios, {len(data['eval_scenarios'])} eval")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
