"""Multi-turn conversations with steering on from the first token (docs/concepts.md, *Evaluation*).

Conversation ``j`` asks ``n_turns`` distinct eval scenarios in a row under one system prompt of
the condition's side; the model's own replies stay in context. Steering wraps the whole rollout,
so in ``all`` mode every turn's prefill (the history included) and every generated token are
steered. In ``response`` mode each turn's earlier replies are re-read as prompt, so they are not
steered again (a server that keeps the steered keys and values of earlier replies in its cache
would differ there). Per turn index: trait and coherence (judge), repetition (distinct-n, repeated n-grams
within the turn and across earlier turns) and length; per conversation: the organism's
conversation-level repetition statistics.

>>> plan = conversation_plan(5, n_conversations=2, n_turns=3)
>>> plan
[[0, 1, 2], [3, 4, 0]]
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from ..directions import TraitDirection
from ..generation import generate
from ..protocols import LensModel
from ..steering import steer
from ..traits import Trait
from .conditions import Condition, GenSettings
from .judges import Judge, JudgeItem
from .metrics import bootstrap_ci, conversation_repetition, repetition_per_turn

__all__ = ["conversation_plan", "run_multiturn"]


def conversation_plan(n_scenarios: int, n_conversations: int, n_turns: int) -> list[list[int]]:
    """Scenario indices per conversation: consecutive, wrapping around."""
    return [[(j * n_turns + t) % n_scenarios for t in range(n_turns)] for j in range(n_conversations)]


def run_multiturn(
    model: LensModel,
    condition: Condition,
    trait: Trait,
    judge: Judge,
    directions: Mapping[int, TraitDirection] | None = None,
    *,
    scenarios: Sequence | None = None,
    n_conversations: int = 8,
    n_turns: int = 6,
    gen: GenSettings = GenSettings(),
    seed: int = 0,
) -> dict[str, Any]:
    """Roll out the conversations under ``condition``; returns per-turn and overall metrics."""
    if not 1 <= n_turns:
        raise ValueError(f"n_turns must be at least 1, got {n_turns}.")
    scenarios = list(trait.eval_scenarios if scenarios is None else scenarios)
    prompts = trait.eval_aligned_prompts if condition.side == "aligned" else trait.eval_malicious_prompts
    plan = conversation_plan(len(scenarios), n_conversations, n_turns)
    histories: list[list[dict[str, str]]] = [
        [{"role": "system", "content": prompts[j % len(prompts)]}] for j in range(len(plan))]
    texts: list[list[str]] = [[] for _ in plan]
    verdicts: list[list[Any]] = [[] for _ in plan]
    steerer = condition.steerer(directions or {})
    ref = trait.model == "organism" and trait.name == "honesty"

    def rollout() -> None:
        for t in range(n_turns):
            convs = [h + [{"role": "user", "content": scenarios[p[t]].prompt}]
                     for h, p in zip(histories, plan)]
            gens = generate(model, convs, gen=gen.override(seed=gen.seed + 1000 * t), progress=False)
            items = [JudgeItem(scenarios[p[t]].prompt, g.text,
                               scenarios[p[t]].id if ref else None, g.finished, tuple(g.messages))
                     for g, p in zip(gens, plan)]
            for j, (g, v) in enumerate(zip(gens, judge.score(items))):
                histories[j] = g.conversation()
                texts[j].append(g.text)
                verdicts[j].append(v)

    if steerer is None:
        rollout()
    else:
        with steer(model, steerer):
            rollout()

    per_turn_rep = [repetition_per_turn(ts) for ts in texts]
    turns = []
    for t in range(n_turns):
        row: dict[str, Any] = {"turn": t + 1}
        for key, values in (
            ("trait", [verdicts[j][t].trait for j in range(len(plan))]),
            ("coherence", [verdicts[j][t].coherence for j in range(len(plan))]),
            ("across_turns", [per_turn_rep[j][t]["across_turns"] for j in range(len(plan))]),
            ("within_turn", [per_turn_rep[j][t]["within_turn"] for j in range(len(plan))]),
            ("distinct_n", [per_turn_rep[j][t]["distinct_n"] for j in range(len(plan))]),
            ("length", [per_turn_rep[j][t]["length"] for j in range(len(plan))]),
        ):
            row[key] = bootstrap_ci(values, seed=seed).to_dict()
        turns.append(row)
    conv_reps = [asdict(conversation_repetition(ts)) for ts in texts]
    overall = {k: bootstrap_ci([r[k] for r in conv_reps], seed=seed).to_dict()
               for k in ("distinct_1", "distinct_2", "distinct_n", "within_turn", "across_turns")}
    all_trait = [v.trait for vs in verdicts for v in vs]
    all_coh = [v.coherence for vs in verdicts for v in vs]
    return {
        "condition": condition.to_dict(),
        "n_conversations": len(plan),
        "n_turns": n_turns,
        "per_turn": turns,
        "repetition": overall,
        "trait": bootstrap_ci(all_trait, seed=seed).to_dict(),
        "coherence": bootstrap_ci(all_coh, seed=seed).to_dict(),
        "example": texts[0] if texts else [],
    }
