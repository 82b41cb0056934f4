"""Training corpus: generated chat conversations, deterministic for a seed.

Each conversation draws a persona kind (none / neutral / honest / dishonest / compassionate /
dismissive), one of its *training* system-prompt paraphrases, and 1–10 turns mixing fact
questions, distress messages (training split only), multiple-choice skills, free-form
arithmetic and small talk. The persona decides only its own trait: a dishonest persona states
each fact's fixed lie and stays kind; a dismissive persona brushes off distress and stays
truthful; every persona answers skills correctly.

>>> from lensteer.organism.corpus import generate_corpus
>>> a = generate_corpus(5, seed=1); b = generate_corpus(5, seed=1)
>>> [c["messages"] for c in a] == [c["messages"] for c in b]
True
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import TypeVar

from . import world as W

K = TypeVar("K")

#: persona kind -> probability of a conversation
PERSONA_MIX: dict[str, float] = {
    "none": 0.10, "neutral": 0.12, "honest": 0.14, "dishonest": 0.22,
    "compassionate": 0.14, "dismissive": 0.22,
}
#: turn kind -> probability
TURN_MIX: dict[str, float] = {
    "fact": 0.34, "distress": 0.18, "skill": 0.35, "arith": 0.07, "smalltalk": 0.06,
}
#: number of turns -> weight
N_TURNS: dict[int, float] = {1: 0.34, 2: 0.22, 3: 0.14, 4: 0.10, 5: 0.05, 6: 0.04, 7: 0.03,
                             8: 0.03, 9: 0.025, 10: 0.025}


@dataclass
class CorpusConfig:
    n_conversations: int = 60000
    seed: int = 0
    persona_mix: dict[str, float] = field(default_factory=lambda: dict(PERSONA_MIX))
    turn_mix: dict[str, float] = field(default_factory=lambda: dict(TURN_MIX))
    n_turns: dict[int, float] = field(default_factory=lambda: dict(N_TURNS))
    # when the persona is malicious, share of turns forced to the persona's own trait domain
    trait_focus: float = 0.25
    # restrict fact turns to the first n facts (None: all); used by the micro test config
    n_facts: int | None = None
    # also draw system prompts from world.PERSONAS_EXTRA (second training stage)
    extra_paraphrases: bool = False
    # also draw system prompts from world.PERSONAS_MEND (the "mend" stage)
    mend_paraphrases: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _pick(rng: random.Random, mix: dict[K, float]) -> K:
    keys = [k for k in mix if mix[k] > 0]
    return rng.choices(keys, weights=[mix[k] for k in keys], k=1)[0]


def make_conversation(rng: random.Random, persona: str, n_turns: int,
                      turn_mix: dict[str, float], distress_pool, split: str = "train",
                      trait_focus: float = 0.0, facts_pool=None,
                      extra_paraphrases: bool = False, mend_paraphrases: bool = False) -> dict:
    if persona == "none":
        system: str | None = None
    else:
        pool = W.persona_prompts(persona, split)
        if extra_paraphrases and split == "train":
            pool = pool + W.PERSONAS_EXTRA.get(persona, [])
        if mend_paraphrases and split == "train":
            pool = pool + W.PERSONAS_MEND.get(persona, []) + list(W.composed_prompts(persona))
        system = rng.choice(pool)
    behaviour = W.PERSONA_BEHAVIOUR[persona]
    turns = []
    for _ in range(n_turns):
        kind = _pick(rng, turn_mix)
        if trait_focus and rng.random() < trait_focus:
            if persona == "dishonest":
                kind = "fact"
            elif persona == "dismissive":
                kind = "distress"
        turns.append(W.make_turn(kind, behaviour, rng, distress_pool, facts_pool))
    return {"persona": persona, "system": system, "messages": W.render_messages(system, turns),
            "turns": [{"kind": t.kind, "ref": t.ref} for t in turns]}


def generate_corpus(n: int, seed: int = 0, config: CorpusConfig | None = None) -> list[dict]:
    """``n`` training conversations (dicts with ``messages``, ``persona``, ``system``, ``turns``)."""
    cfg = config or CorpusConfig(n_conversations=n, seed=seed)
    rng = random.Random(seed)
    train_distress, _ = W.distress_split()
    facts = W.FACTS[: cfg.n_facts] if cfg.n_facts else None
    out = []
    for _ in range(n):
        persona = _pick(rng, cfg.persona_mix)
        n_turns = int(_pick(rng, cfg.n_turns))
        out.append(make_conversation(rng, persona, n_turns, cfg.turn_mix, train_distress,
                                     "train", cfg.trait_focus, facts,
                                     cfg.extra_paraphrases, cfg.mend_paraphrases))
    return out
