"""Build the organism's trait files from its world (``lensteer.organism``).

The organism reads a word-level, lower-case vocabulary, so its trait files use only texts the
organism's world provides (persona paraphrases, fact questions, distress messages, small talk
and skill questions), which its tokenizer covers by construction. Regenerate the shipped files
with ``python -m lensteer.traits.organism --write``; a test checks they equal a fresh build.

>>> traits = build_organism_traits()
>>> sorted(traits), traits["honesty"]["model"]
(['compassion', 'honesty'], 'organism')
"""
from __future__ import annotations

import argparse
from typing import Any

from . import DATA_DIR, FORMAT_VERSION


def build_organism_traits() -> dict[str, dict[str, Any]]:
    """The ``organism_honesty`` and ``organism_compassion`` trait files as dicts."""
    from ..organism import world as W
    from ..organism.data import load_eval_set

    personas = W.PERSONAS
    neutral_users = sorted({t["user"] for c in load_eval_set("neutral") for t in c["turns"]})
    skills = load_eval_set("skills")
    neutral = [{"id": f"smalltalk-{i}", "prompt": u, "category": "smalltalk"}
               for i, u in enumerate(neutral_users)]
    neutral += [{"id": f"arith-{i}", "prompt": a["prompt"], "category": "arith"}
                for i, a in enumerate(skills["arith"][:15])]
    common = {"neutral_prompts": list(personas["neutral"]["train"]), "neutral_scenarios": neutral}

    def prompts(trait: str) -> dict[str, list[str]]:
        p = personas[trait]
        return {
            "aligned_prompts": list(p["aligned"]["train"]),
            "malicious_prompts": list(p["malicious"]["train"]),
            "eval_aligned_prompts": list(p["aligned"]["heldout"]),
            "eval_malicious_prompts": list(p["malicious"]["heldout"]),
        }

    train, held = [], []
    for i, fact in enumerate(W.FACTS):  # alternate facts; eval phrasing = the organism's eval set
        item = {"id": fact.id, "category": fact.category}
        if i % 2 == 0:
            train.append({**item, "prompt": fact.question(i // 2 + 1)})
        else:
            held.append({**item, "prompt": fact.question(i)})
    honesty = {
        "format_version": FORMAT_VERSION,
        "name": "honesty",
        "model": "organism",
        "description": "The organism states facts truly (aligned) or gives each fact's fixed lie "
        "(malicious persona). Scenarios are fact questions; eval uses the other half of the facts.",
        **prompts("honesty"),
        "scenarios": train,
        "eval_scenarios": held,
        **common,
    }
    d_train, d_held = W.distress_split()
    compassion = {
        "format_version": FORMAT_VERSION,
        "name": "compassion",
        "model": "organism",
        "description": "The organism comforts (aligned) or dismisses (malicious persona) distress "
        "messages. Eval uses the organism's held-out distress messages.",
        **prompts("compassion"),
        "scenarios": [{"id": f"distress-{i}", "prompt": d.text, "category": d.category}
                      for i, d in enumerate(d_train)],
        "eval_scenarios": [{"id": f"distress-eval-{i}", "prompt": d.text, "category": d.category}
                           for i, d in enumerate(d_held)],
        **common,
    }
    return {"honesty": honesty, "compassion": compassion}


def main(argv: list[str] | None = None) -> int:
    from ..io import write_json

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write lensteer/traits/data/organism_*.json")
    args = parser.parse_args(argv)
    for name, data in build_organism_traits().items():
        path = DATA_DIR / f"organism_{name}.json"
        if args.write:
            write_json(path, data)
        print(f"{path}: {len(data['scenarios'])} scenarios, {len(data['eval_scenarios'])} eval")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
