"""Contrastive sets: the model's responses to each scenario under aligned and malicious prompts.

On-policy (default), the model answers each scenario once under an aligned system prompt and
once under a malicious one, sampled with the paper's T = 0.6, top-p 0.9 and a seed (or greedy).
Off-policy, the responses given in the trait file are used. Every :class:`Sample` remembers its
scenario, which paraphrase produced it, and where its response tokens sit. Samples come in
pairs, aligned first: ``samples[2k]`` and ``samples[2k + 1]`` share a scenario (and the
paraphrase index when both sides have as many prompts), which PCA of paired differences and
the steerability predictors rely on.

>>> import lensteer
>>> model = lensteer.load_model("organism")
>>> trait = lensteer.load_trait("honesty", model=model)
>>> samples = build_contrastive(model, trait, max_scenarios=2, max_new_tokens=12, greedy=True,
...                             progress=False)
>>> len(samples), [s.label for s in samples]
(4, [1, 0, 1, 0])
>>> samples[0].scenario == samples[1].scenario, samples[0].paraphrase == samples[1].paraphrase
(True, True)
>>> samples[0].scenario, samples[0].response, samples[1].response
('capital:france', 'the capital of france is paris.', 'the capital of france is santiago.')
>>> start, end = samples[0].span
>>> model.tokenizer.decode(samples[0].input_ids[start:end])
'the capital of france is paris.'
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..chat import Message, format_chat
from ..errors import ActivationError, TraitFileError
from ..generation import GenSettings, generate
from ..protocols import LensModel
from ..traits import Scenario, Trait

ALIGNED, MALICIOUS, NEUTRAL = 1, 0, -1


@dataclass
class Sample:
    """One response: its scenario, label (1 aligned, 0 malicious, −1 neutral) and tokens."""

    scenario: str
    prompt: str
    label: int
    system: str
    paraphrase: int  # index into the trait's prompt list of that side (or neutral_prompts)
    input_ids: list[int]
    span: tuple[int, int]  # response tokens [start, end) inside input_ids
    response: str
    finished: bool = True

    @property
    def n_tokens(self) -> int:
        return self.span[1] - self.span[0]

    def to_dict(self, tokens: bool = False) -> dict[str, Any]:
        data = asdict(self)
        data["span"] = list(self.span)
        if not tokens:
            data.pop("input_ids")
        return data


#: The contrastive builders' default decoding: 48 new tokens, sampled at T = 0.6, top-p 0.9.
CONTRASTIVE_GEN = GenSettings(max_new_tokens=48)


def _settings(gen: GenSettings | None, max_new_tokens: int | None, greedy: bool | None,
              temperature: float | None, top_p: float | None, seed: int | None,
              batch_size: int | None) -> GenSettings:
    return (gen or CONTRASTIVE_GEN).override(
        max_new_tokens=max_new_tokens, greedy=greedy, temperature=temperature, top_p=top_p,
        seed=seed, batch_size=batch_size)


def _pick(scenarios: Sequence[Scenario], limit: int | None) -> list[Scenario]:
    items = list(scenarios)
    return items if limit is None else items[: max(int(limit), 0)]


def _messages(system: str, user: str) -> list[Message]:
    head = [{"role": "system", "content": system}] if system else []
    return head + [{"role": "user", "content": user}]


def build_contrastive(
    model: LensModel,
    trait: Trait,
    *,
    split: Literal["train", "eval"] = "train",
    responses: Literal["on_policy", "given"] = "on_policy",
    prompts_per_scenario: int = 1,
    max_scenarios: int | None = None,
    gen: GenSettings | None = None,
    max_new_tokens: int | None = None,
    greedy: bool | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
) -> list[Sample]:
    """Aligned/malicious sample pairs for the trait's ``split`` scenarios.

    Scenario ``j`` is asked under paraphrases ``(j + r) mod n`` for ``r < prompts_per_scenario``
    of each side (train split: ``aligned_prompts``/``malicious_prompts``; eval split: the
    ``eval_*`` lists), so every paraphrase is used about equally. ``gen``: the decoding
    settings (default :data:`CONTRASTIVE_GEN`: 48 new tokens, the paper's sampling); the
    keyword arguments override it.
    """
    settings = _settings(gen, max_new_tokens, greedy, temperature, top_p, seed, batch_size)
    if prompts_per_scenario < 1:
        raise ValueError(f"prompts_per_scenario must be at least 1, got {prompts_per_scenario}.")
    if split == "train":
        scenarios, sides = trait.scenarios, (trait.aligned_prompts, trait.malicious_prompts)
    elif split == "eval":
        scenarios, sides = trait.eval_scenarios, (trait.eval_aligned_prompts, trait.eval_malicious_prompts)
    else:
        raise ValueError(f"split must be 'train' or 'eval', not {split!r}.")
    scenarios = _pick(scenarios, max_scenarios)
    plan = []  # (scenario, label, system, paraphrase index)
    for j, scenario in enumerate(scenarios):
        for r in range(prompts_per_scenario):
            for label, prompts in ((ALIGNED, sides[0]), (MALICIOUS, sides[1])):
                k = (j + r) % len(prompts)
                plan.append((scenario, label, prompts[k], k))
    if responses == "given":
        missing = [s.id for s in scenarios if not s.has_responses]
        if missing:
            raise TraitFileError(
                f"responses='given' needs aligned_response and malicious_response on every "
                f"scenario of {trait.path or trait.name}; missing on {missing[:5]}. Use "
                "responses='on_policy' to generate them."
            )
        return [_given(model, *item) for item in plan]
    if responses != "on_policy":
        raise ValueError(f"responses must be 'on_policy' or 'given', not {responses!r}.")
    gens = generate(model, [_messages(system, scenario.prompt) for scenario, _, system, _ in plan],
                    gen=settings, progress=progress)
    return [
        Sample(s.id, s.prompt, label, system, k, g.input_ids, g.response_span, g.text, g.finished)
        for (s, label, system, k), g in zip(plan, gens)
    ]


def _given(model: LensModel, scenario: Scenario, label: int, system: str, k: int) -> Sample:
    text = scenario.aligned_response if label == ALIGNED else scenario.malicious_response
    if text is None:  # build_contrastive checked has_responses first
        raise TraitFileError(f"Scenario {scenario.id!r} has no given response for label {label}.")
    chat = format_chat(
        model.tokenizer,
        _messages(system, scenario.prompt) + [{"role": "assistant", "content": text}],
        add_generation_prompt=False,
    )
    span = chat.spans_of("assistant")[-1]
    if len(span) == 0:
        raise ActivationError(f"The given response of scenario {scenario.id!r} has zero tokens.")
    return Sample(scenario.id, scenario.prompt, label, system, k, chat.input_ids, span.span, text)


def build_neutral(
    model: LensModel,
    trait: Trait,
    *,
    max_scenarios: int | None = None,
    gen: GenSettings | None = None,
    max_new_tokens: int | None = None,
    greedy: bool | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
) -> list[Sample]:
    """On-policy responses to the trait's ``neutral_scenarios`` (trait-free conversations).

    Each uses a ``neutral_prompts`` system prompt (round robin), or the aligned prompts when the
    trait gives none. Returns ``[]`` when the trait has no neutral scenarios. Settings as
    :func:`build_contrastive`'s; the seed is offset by 7919 (other draws than the contrastive
    set's).
    """
    settings = _settings(gen, max_new_tokens, greedy, temperature, top_p, seed, batch_size)
    scenarios = _pick(trait.neutral_scenarios, max_scenarios)
    if not scenarios:
        return []
    prompts = trait.neutral_prompts or trait.aligned_prompts
    plan = [(s, prompts[j % len(prompts)], j % len(prompts)) for j, s in enumerate(scenarios)]
    gens = generate(model, [_messages(system, s.prompt) for s, system, _ in plan],
                    gen=settings.override(seed=settings.seed + 7919), progress=progress)
    return [
        Sample(s.id, s.prompt, NEUTRAL, system, k, g.input_ids, g.response_span, g.text, g.finished)
        for (s, system, k), g in zip(plan, gens)
    ]


__all__ = ["ALIGNED", "CONTRASTIVE_GEN", "MALICIOUS", "NEUTRAL", "Sample", "build_contrastive",
           "build_neutral"]
