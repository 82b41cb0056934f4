"""Conditions: who answers which prompts, steered how — and one run of a condition's metrics.

A :class:`Condition` is a system-prompt side (``"aligned"``/``"malicious"``) plus, optionally,
a steering rule at one layer with its α, position mode, threshold and calibration. The paper's
conditions: the aligned baseline, the malicious baseline, and SwFC / StTP / StMP under the
malicious prompt in ``all`` and ``response`` modes. :func:`run_condition` generates the
responses to a list of :class:`EvalItem` s under the condition, scores them with a judge, and
measures coherence, length and (optionally) the judge-free cross-entropy and the intervention
size from steering telemetry.

>>> Condition("sttp", method="sttp", layer=1, alpha=12).key
'malicious|sttp|L1|a12|all|boundary|response'
>>> Condition("aligned", side="aligned").steered
False
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..directions import TraitDirection
from ..generation import Generation, generate
from ..generation import settings as _settings
from ..protocols import LensModel
from ..steering import registry, steer
from ..steering.steerers import Steerer, make_steerer
from ..traits import Trait
from .forward import response_cross_entropy
from .judges import Judge, JudgeItem
from .metrics import intervention_size, response_length

__all__ = [
    "Condition",
    "ConditionRun",
    "EvalGenSettings",
    "EvalItem",
    "GenSettings",
    "baseline_conditions",
    "build_items",
    "finite_mean",
    "run_condition",
    "run_conditions",
    "split_scenarios",
]

@dataclass(frozen=True)
class Condition:
    """One evaluation condition (see the module docstring)."""

    name: str
    side: str = "malicious"
    method: str | None = None
    layer: int | None = None
    alpha: float = 0.0
    positions: str = "all"
    threshold: str = "boundary"
    calibration: str = "response"

    @property
    def steered(self) -> bool:
        return self.method is not None

    @property
    def key(self) -> str:
        """A stable id: equal keys mean equal conditions (names aside)."""
        if not self.steered:
            return f"{self.side}|none"
        return (f"{self.side}|{self.method}|L{self.layer}|a{self.alpha:g}|{self.positions}|"
                f"{self.threshold}|{self.calibration}")

    @property
    def label(self) -> str:
        if not self.steered:
            return f"{self.side} baseline"
        extra = "" if (self.threshold, self.calibration) == ("boundary", "response") else (
            f", {self.threshold}, {self.calibration}-calibrated")
        return (f"{registry.display_name(self.method or '')} ({self.positions}; L{self.layer}, "
                f"α={self.alpha:g}{extra})")

    def steerer(self, directions: Mapping[int, TraitDirection]) -> Steerer | None:
        if self.method is None or self.layer is None:
            return None
        if self.layer not in directions:
            raise KeyError(f"No direction for layer {self.layer}; have {sorted(directions)}.")
        return make_steerer(self.method, directions[self.layer], self.alpha,
                            positions=self.positions, threshold=self.threshold,
                            calibration=self.calibration)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Condition:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def baseline_conditions() -> tuple[Condition, Condition]:
    """The aligned and the malicious baselines (no steering)."""
    return Condition("aligned", side="aligned"), Condition("malicious", side="malicious")


@dataclass(frozen=True)
class EvalItem:
    """One prompt of an evaluation set, under one system-prompt paraphrase of each side."""

    scenario: str
    prompt: str
    aligned_system: str
    malicious_system: str
    reference: Any = None  # the scenario id: exact graders look the item up by it

    def system(self, side: str) -> str:
        return self.aligned_system if side == "aligned" else self.malicious_system


def split_scenarios(trait: Trait, part: str = "all", min_each: int = 4) -> list:
    """The trait's eval scenarios: ``"tune"`` (even indices), ``"test"`` (odd), or ``"all"``.

    With fewer than ``2·min_each`` scenarios both parts are the whole set (too few to split).
    """
    scenarios = list(trait.eval_scenarios)
    if part == "all" or len(scenarios) < 2 * min_each:
        return scenarios
    if part not in ("tune", "test"):
        raise ValueError(f"part must be 'tune', 'test' or 'all', not {part!r}.")
    return scenarios[0::2] if part == "tune" else scenarios[1::2]


def build_items(trait: Trait, scenarios: Sequence | None = None, *,
                prompts_per_scenario: int | None = None, limit: int | None = None) -> list[EvalItem]:
    """Scenario × eval paraphrase items: scenario ``j`` is asked under malicious paraphrases
    ``(j + r) mod n`` for ``r < prompts_per_scenario`` (default: all paraphrases), each paired
    with the aligned paraphrase of the same index (mod the aligned count)."""
    scenarios = list(trait.eval_scenarios if scenarios is None else scenarios)
    mal, al = trait.eval_malicious_prompts, trait.eval_aligned_prompts
    k = len(mal) if prompts_per_scenario is None else max(1, min(prompts_per_scenario, len(mal)))
    items = []
    for j, s in enumerate(scenarios):
        for r in range(k):
            p = (j + r) % len(mal)
            items.append(EvalItem(s.id, s.prompt, al[p % len(al)], mal[p], s.id))
    return items[:limit] if limit else items


@dataclass(frozen=True)
class EvalGenSettings(_settings.GenSettings):
    """:class:`lensteer.generation.GenSettings` with an evaluation's defaults: greedy (a sweep is
    then exactly reproducible and resumable; ``greedy=False`` samples with the paper's T and
    top-p), 40 new tokens, batches of 64."""

    max_new_tokens: int = 40
    greedy: bool = True
    batch_size: int = 64


#: Evaluation's name for its settings (``lensteer.evaluation.GenSettings``): the subclass above.
GenSettings = EvalGenSettings


def finite_mean(xs: Sequence[float | None]) -> float | None:
    """The mean of the finite numbers in ``xs`` (``None`` when there are none).

    >>> finite_mean([1.0, None, 3.0, float("nan")])
    2.0
    """
    v = [x for x in xs if x is not None and math.isfinite(x)]
    return sum(v) / len(v) if v else None


@dataclass
class ConditionRun:
    """Per-item results of one condition on one item list."""

    condition: Condition
    texts: list[str]
    finished: list[bool]
    trait: list[float | None]
    coherence: list[float | None]  # judge coherence, else 100·exp(−CE) when CE was computed
    coherence_source: str
    ce: list[float | None] = field(default_factory=list)
    length: list[int] = field(default_factory=list)
    intervention: dict[str, float] = field(default_factory=dict)
    generations: list[Generation] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        """Means (no intervals): the numbers a sweep cell keeps."""
        mean = finite_mean
        return {
            "trait": mean(self.trait), "coherence": mean(self.coherence),
            "coherence_source": self.coherence_source, "ce": mean(self.ce),
            "length": mean([float(x) for x in self.length]), "n": len(self.texts),
            "finished": mean([1.0 if f else 0.0 for f in self.finished]),
            "tokens": sum(self.tokens),
            **self.intervention,
        }

    @property
    def tokens(self) -> list[int]:
        """Tokens generated per item (the generation cost)."""
        return [len(g.response_ids) for g in self.generations]

    def per_item(self) -> dict[str, list[Any]]:
        """The per-item numbers a search merges across rungs (JSON-ready)."""
        n = len(self.texts)
        return {"trait": list(self.trait), "coherence": list(self.coherence),
                "ce": list(self.ce) if self.ce else [None] * n,
                "length": [int(x) for x in self.length],
                "finished": [bool(f) for f in self.finished], "tokens": self.tokens}


def _conversations(items: Sequence[EvalItem], side: str) -> list[list[dict[str, str]]]:
    return [[{"role": "system", "content": it.system(side)},
             {"role": "user", "content": it.prompt}] for it in items]


def run_condition(
    model: LensModel,
    condition: Condition,
    items: Sequence[EvalItem],
    judge: Judge,
    directions: Mapping[int, TraitDirection] | None = None,
    *,
    gen: GenSettings = GenSettings(),
    ce: bool | None = None,
    telemetry: bool = True,
) -> ConditionRun:
    """Generate under ``condition`` and score (see the module docstring).

    ``ce``: compute the cross-entropy of the first 50 response tokens under the unsteered model
    with each item's aligned system prompt (default: only when the judge gives no coherence).
    """
    convs = _conversations(items, condition.side)
    steerer = condition.steerer(directions or {})
    intervention: dict[str, float] = {}
    if steerer is None:
        gens = generate(model, convs, gen=gen, progress=False)
    else:
        with steer(model, steerer, telemetry=telemetry) as session:
            gens = generate(model, convs, gen=gen, progress=False)
        intervention = intervention_size(session.telemetry)
    return _score(model, condition, items, judge, gens, intervention, gen=gen, ce=ce)


def run_conditions(
    model: LensModel,
    conditions: Sequence[Condition],
    items: Sequence[EvalItem],
    judge: Judge,
    directions: Mapping[int, TraitDirection] | None = None,
    *,
    gen: GenSettings = GenSettings(),
    ce: bool | None = None,
    telemetry: bool = True,
) -> list[ConditionRun]:
    """:func:`run_condition` for several conditions on the same items, their generations
    *packed*: one :func:`~lensteer.generation.generate` call carries every condition's prompts,
    each row steered by its own condition (``lensteer.steer(model, rows=...)``: rule, α, layer,
    positions, threshold per row), then split back per condition for judging, cross-entropy and
    per-row telemetry.

    Greedy decoding gives every condition exactly the tokens, and so the scores, it gets alone
    (tests/test_search.py); intervention sizes agree to float rounding. Sampled decoding seeds
    each batch (``seed + batch index``), so its draws depend on which rows share a batch: then
    the conditions run one by one, as :func:`run_condition` would, and stay reproducible.
    """
    conditions = list(conditions)
    if len(conditions) <= 1 or gen.sampling:
        return [run_condition(model, c, items, judge, directions, gen=gen, ce=ce, telemetry=telemetry)
                for c in conditions]
    convs: list[list[dict[str, str]]] = []
    rows: list[Steerer | None] = []
    spans: list[range] = []
    for c in conditions:
        start = len(convs)
        convs += _conversations(items, c.side)
        rows += [c.steerer(directions or {})] * len(items)
        spans.append(range(start, len(convs)))
    telemetry_of = None
    if any(r is not None for r in rows):
        with steer(model, rows=rows, telemetry=telemetry) as session:
            gens = generate(model, convs, gen=gen, progress=False)
        telemetry_of = session.telemetry
    else:
        gens = generate(model, convs, gen=gen, progress=False)
    return [_score(model, c, items, judge, gens[span.start:span.stop],
                   intervention_size(telemetry_of, sequences=span) if c.steered else {},
                   gen=gen, ce=ce)
            for c, span in zip(conditions, spans)]


def _score(model: LensModel, condition: Condition, items: Sequence[EvalItem], judge: Judge,
           gens: list[Generation], intervention: dict[str, float], *, gen: GenSettings,
           ce: bool | None) -> ConditionRun:
    """Judge one condition's generations (and their cross-entropy when needed)."""
    verdicts = judge.score([JudgeItem(it.prompt, g.text, it.reference, g.finished, tuple(g.messages))
                            for it, g in zip(items, gens)])
    trait = [v.trait for v in verdicts]
    coherence = [v.coherence for v in verdicts]
    source = judge.name
    judge_coherence = any(c is not None for c in coherence)
    ces: list[float | None] = []
    if ce or (ce is None and not judge_coherence):
        ces = response_cross_entropy(model, gens, [it.aligned_system for it in items],
                                     batch_size=gen.batch_size)
    if not judge_coherence:
        source = "ce"
        coherence = [None if c is None else 100.0 * math.exp(-c) for c in ces]
    return ConditionRun(condition, [g.text for g in gens], [g.finished for g in gens], trait,
                        coherence, source, ces, response_length([g.text for g in gens]),
                        intervention, gens)


def with_name(condition: Condition, name: str) -> Condition:
    return replace(condition, name=name)
