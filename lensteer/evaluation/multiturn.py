"""Multi-turn conversations with steering on from the first token (docs/concepts.md, *Evaluation*).

Conversation ``j`` asks ``n_turns`` distinct eval scenarios in a row under one system prompt of
the condition's side; the model's own replies stay in context. Steering is on for every turn.
Two ways to carry the context (``cache``):

- ``"reencode"`` (default): each turn re-reads the whole conversation. In ``all`` mode every
  turn's prefill (the history included) is steered again; in ``response`` mode earlier replies
  are re-read as prompt, so they are no longer steered.
- ``"carry"``: the KV cache is kept across turns, as a chat server does
  (:class:`lensteer.generation.ChatSession`): each turn feeds only the new user turn on top of
  the cache, so earlier replies keep the keys and values they were written with (steered ones
  steered, in either mode) and are never steered twice.

Per turn index: trait and coherence (judge), repetition (distinct-n, repeated n-grams within
the turn and across earlier turns), length, the gate rate of the steering (telemetry) and,
with ``cross_entropy=True``, the judge-free coherence (cross-entropy of the reply under the
unsteered model with the aligned system prompt); per conversation: the organism's
conversation-level repetition statistics.

>>> plan = conversation_plan(5, n_conversations=2, n_turns=3)
>>> plan
[[0, 1, 2], [3, 4, 0]]
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..directions import TraitDirection
from ..generation import ChatSession, Generation, generate
from ..protocols import LensModel
from ..steering import steer
from ..traits import Trait
from .conditions import Condition, GenSettings
from .forward import response_cross_entropy
from .judges import Judge, JudgeItem
from .metrics import bootstrap_ci, conversation_repetition, intervention_size, repetition_per_turn

__all__ = ["CACHE_MODES", "PLANS", "MultiturnResult", "conversation_plan", "run_multiturn"]

#: How the context is carried from turn to turn (see the module docstring).
CACHE_MODES = ("reencode", "carry")
#: The per-turn metrics of :attr:`MultiturnResult.per_turn` (each a bootstrap estimate).
TURN_METRICS = ("trait", "coherence", "cross_entropy", "gate_rate", "gate_rate_prompt",
                "across_turns", "within_turn", "distinct_n", "length")


@dataclass
class MultiturnResult:
    """One condition's multi-turn rollout: per-turn and overall estimates (``to_dict`` holds
    what evaluation reports read: ``per_turn``, ``repetition``, ``trait``, ``coherence``)."""

    condition: dict[str, Any]
    cache: str
    n_conversations: int
    n_turns: int
    per_turn: list[dict[str, Any]]  # {"turn": t, metric: Estimate.to_dict() for TURN_METRICS}
    repetition: dict[str, Any]
    trait: dict[str, Any]
    coherence: dict[str, Any]
    example: list[str] = field(default_factory=list)  # conversation 0's replies
    plan: str = "blocks"  # which scenarios each conversation asked (conversation_plan)

    def series(self, metric: str) -> list[float | None]:
        """The per-turn means of ``metric`` (one of ``TURN_METRICS``), turn 1 first."""
        return [row[metric]["mean"] for row in self.per_turn]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MultiturnResult:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


#: How scenarios are laid out over conversations (see :func:`conversation_plan`).
PLANS = ("blocks", "rotate")


def conversation_plan(n_scenarios: int, n_conversations: int, n_turns: int,
                      order: str = "blocks") -> list[list[int]]:
    """Scenario indices per conversation, wrapping around.

    ``"blocks"``: conversation ``j`` asks scenarios ``j·n_turns, j·n_turns + 1, …``.
    ``"rotate"``: conversation ``j`` starts at ``⌊j·n_scenarios / n_conversations⌋`` and asks the
    next ones in turn, so each turn index asks (nearly) the same set of scenarios — exactly the
    same when ``n_conversations`` is a multiple of ``n_scenarios``; per-turn changes then come
    from the turn, not from which questions fell on it.

    >>> conversation_plan(4, n_conversations=4, n_turns=3, order="rotate")
    [[0, 1, 2], [1, 2, 3], [2, 3, 0], [3, 0, 1]]
    """
    if order == "blocks":
        return [[(j * n_turns + t) % n_scenarios for t in range(n_turns)] for j in range(n_conversations)]
    if order == "rotate":
        return [[(j * n_scenarios // n_conversations + t) % n_scenarios for t in range(n_turns)]
                for j in range(n_conversations)]
    raise ValueError(f"order must be one of {', '.join(PLANS)}, not {order!r}.")


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
    cache: str = "reencode",
    cross_entropy: bool = False,
    plan: str = "blocks",
    progress: bool = False,
) -> MultiturnResult:
    """Roll out the conversations under ``condition``; per-turn and overall metrics.

    ``cache``: ``"reencode"`` or ``"carry"`` (module docstring). ``cross_entropy``: also score
    each reply's cross-entropy under the unsteered model with the aligned system prompt.
    ``plan``: which scenarios each conversation asks (:func:`conversation_plan`).
    """
    if not 1 <= n_turns:
        raise ValueError(f"n_turns must be at least 1, got {n_turns}.")
    if cache not in CACHE_MODES:
        raise ValueError(f"cache must be one of {', '.join(CACHE_MODES)}, not {cache!r}.")
    if plan not in PLANS:
        raise ValueError(f"plan must be one of {', '.join(PLANS)}, not {plan!r}.")
    scenarios = list(trait.eval_scenarios if scenarios is None else scenarios)
    prompts = trait.eval_aligned_prompts if condition.side == "aligned" else trait.eval_malicious_prompts
    order = conversation_plan(len(scenarios), n_conversations, n_turns, plan)
    aligned = [trait.eval_aligned_prompts[j % len(trait.eval_aligned_prompts)] for j in range(len(order))]
    histories: list[list[dict[str, str]]] = [
        [{"role": "system", "content": prompts[j % len(prompts)]}] for j in range(len(order))]
    texts: list[list[str]] = [[] for _ in order]
    verdicts: list[list[Any]] = [[] for _ in order]
    ces: list[list[float | None]] = [[] for _ in order]
    gates: list[list[dict[str, float]]] = [[] for _ in order]
    steerer = condition.steerer(directions or {})
    session = ChatSession(model) if cache == "carry" else None
    ref = trait.model in ("organism", "smollm2-persona")

    from tqdm.auto import tqdm

    for t in tqdm(range(n_turns), desc=f"multi-turn {condition.name}", disable=not progress):
        convs = [h + [{"role": "user", "content": scenarios[p[t]].prompt}]
                 for h, p in zip(histories, order)]
        settings = gen.override(seed=gen.seed + 1000 * t)
        with steer(model, steerer, telemetry=steerer is not None) as run:
            gens: list[Generation] = (
                session.generate(convs, gen=settings) if session is not None
                else generate(model, convs, gen=settings, progress=False))
        items = [JudgeItem(scenarios[p[t]].prompt, g.text,
                           scenarios[p[t]].id if ref else None, g.finished, tuple(g.messages))
                 for g, p in zip(gens, order)]
        turn_ces = (response_cross_entropy(model, gens, aligned, batch_size=gen.batch_size)
                    if cross_entropy else [None] * len(gens))
        for j, (g, v) in enumerate(zip(gens, judge.score(items))):
            histories[j] = g.conversation()
            texts[j].append(g.text)
            verdicts[j].append(v)
            ces[j].append(turn_ces[j])
            gates[j].append(intervention_size(run.telemetry, [j]))

    per_turn_rep = [repetition_per_turn(ts) for ts in texts]
    turns = []
    for t in range(n_turns):
        values = {
            "trait": [verdicts[j][t].trait for j in range(len(order))],
            "coherence": [verdicts[j][t].coherence for j in range(len(order))],
            "cross_entropy": [ces[j][t] for j in range(len(order))],
            "gate_rate": [gates[j][t].get("gate_rate_response") for j in range(len(order))],
            "gate_rate_prompt": [gates[j][t].get("gate_rate_prompt") for j in range(len(order))],
            **{key: [per_turn_rep[j][t][key] for j in range(len(order))]
               for key in ("across_turns", "within_turn", "distinct_n", "length")},
        }
        turns.append({"turn": t + 1, **{key: bootstrap_ci(values[key], seed=seed).to_dict()
                                        for key in TURN_METRICS}})
    conv_reps = [asdict(conversation_repetition(ts)) for ts in texts]
    overall = {k: bootstrap_ci([r[k] for r in conv_reps], seed=seed).to_dict()
               for k in ("distinct_1", "distinct_2", "distinct_n", "within_turn", "across_turns")}
    all_trait = [v.trait for vs in verdicts for v in vs]
    all_coh = [v.coherence for vs in verdicts for v in vs]
    return MultiturnResult(
        condition=condition.to_dict(), cache=cache, n_conversations=len(order), n_turns=n_turns,
        per_turn=turns, repetition=overall,
        trait=bootstrap_ci(all_trait, seed=seed).to_dict(),
        coherence=bootstrap_ci(all_coh, seed=seed).to_dict(),
        example=texts[0] if texts else [], plan=plan)
