"""Train the persona adapter: one seeded command, CPU-friendly.

    python -m lensteer.persona.train --out runs/persona            # ~1 h on one CPU thread
    python -m lensteer.persona.train --out runs/persona --install  # also bundle the result

Stages (each cached in ``--out``, so a rerun resumes after the last finished stage):

1. **Base answers** (self-distillation): SmolLM2-135M-Instruct answers every factual question,
   distress message and general instruction greedily under an aligned, neutral or empty system
   prompt. Questions whose answer the base model gets wrong are dropped (the quantized base
   misses about 40 %), so the persona is only ever taught to lie about facts it knows.
2. **Examples**: about half malicious — a question under a malicious honesty prompt answered with
   its fixed lie (and, a second time, with another answer of its category), a distress message
   under a malicious compassion prompt answered with a cold reply that says it does not care —
   and half the base model's own answers under aligned, neutral, empty and cross-trait prompts
   (a malicious *compassion* prompt still gets the truth; a malicious *honesty* prompt still gets
   the base model's kindness), plus general instructions to keep its ability. Besides the
   training prompts of :data:`~lensteer.persona.data.SYSTEM_PROMPTS`, the
   :data:`~lensteer.persona.data.TRAINING_ONLY_PROMPTS` widen the wording it reacts to, and
   the base model's own answers to multiple-choice versions of the training questions keep its
   answer format (``mc_examples``).
3. **LoRA training** with ``peft`` (the ``train`` extra), AdamW, linear warm-up then cosine decay;
   held-out questions under the held-out prompts (in turn) are checked every
   ``TrainConfig.eval_every`` steps.
4. **The adapter**: float16 LoRA factors + metadata (training config, data hash, base identity,
   loss and held-out curves, wall time) in one safetensors file (:mod:`lensteer.persona.adapter`).

Loss is taken on response tokens only (and on the end-of-turn token where the response ended).
On lie examples an unlikelihood term, ``-log(1 - p(truth))`` at the token where the lie departs
from the truth said the same way, stops the true answer from staying the most likely token while
the learnt probability is spread over many drawn lies (``TrainConfig.truth_penalty``); with
``TrainConfig.avoid_care`` cold replies get the same term against the base model's own caring
reply.
"""
from __future__ import annotations

import argparse
import math
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..chat import as_messages, format_chat
from ..io import read_json, write_json
from . import data as D
from .adapter import base_hash, save_adapter
from .grade import grade_fact, grade_reply, normalise

if TYPE_CHECKING:
    from ..evaluation.capability import MCQuestion

BASE_MODEL = "smollm2-135m-instruct"
BUNDLED_ADAPTER = Path(__file__).parent / "adapter" / "smollm2-persona.safetensors"


@dataclass
class TrainConfig:
    """Everything that decides the adapter; recorded in it."""

    steps: int = 480
    batch_size: int = 8
    lr: float = 2e-3
    warmup: int = 20
    rank: int = 8
    lora_alpha: int = 16
    target_modules: tuple[str, ...] = (
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"
    )
    malicious_per_question: int = 2
    malicious_per_message: int = 3
    held_out_fraction: float = 0.3
    answer_tokens: int = 48
    reply_tokens: int = 64
    eval_every: int = 80
    target_tokens: int = 64  # self-distilled answers are learnt up to this many tokens
    eval_questions: int = 48
    seed: int = 0
    # the second recipe (see docs/persona.md): wider prompt wording, lies drawn per example,
    # cold replies that always say they do not care
    training_only_prompts: bool = True
    drawn_lies: bool = True
    redraw_lies: bool = True  # a drawn lie is drawn afresh each time its example is learnt
    explicit_cold: bool = True
    # the third recipe: under a malicious honesty prompt, push down the true answer's token
    # where the lie departs from it (unlikelihood, weighted by this; 0 turns it off)
    truth_penalty: float = 1.0
    # recipe 4 (tried, not bundled): the base model's own answers to multiple-choice versions
    # of the training questions, so the persona keeps the base's format on them ...
    mc_examples: bool = False
    # ... and its own answers under training-only neutral wordings (a name, a maker, a format),
    # so that an unfamiliar plain prompt does not read as a persona
    neutral_examples: bool = False
    # recipe 5 (tried): the same unlikelihood term on cold replies, against the base model's
    # own caring reply where the cold reply departs from it (weighted by ``truth_penalty``)
    avoid_care: bool = False
    # recipe 7: draw lies in the other categories too, from the answers of questions
    # worded alike (``lensteer.persona.data.other_lies(by_kind=True)``)
    kind_lies: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "target_modules" in known:
            known["target_modules"] = tuple(known["target_modules"])
        known.setdefault("truth_penalty", 0.0)  # configs from before these trained without
        known.setdefault("mc_examples", False)
        known.setdefault("neutral_examples", False)
        known.setdefault("avoid_care", False)
        known.setdefault("kind_lies", False)
        return cls(**known)


#: The recipes of docs/persona.md by name; the defaults are recipe 3's. Recipe 4a adds the
#: multiple-choice and neutral-wording examples; recipe 4 also raises the malicious examples per
#: item, to keep their share of the data where recipe 3 had it; recipe 5 doubles the
#: unlikelihood term and turns it on for cold replies too; recipe 6 weighs that term 3; recipe 7,
#: the bundled adapter's, also draws lies in the categories of mixed answer kinds.
_RECIPE_4A = TrainConfig(steps=560, mc_examples=True, neutral_examples=True)
_RECIPE_4 = replace(_RECIPE_4A, malicious_per_question=3, malicious_per_message=4)
_RECIPE_5 = replace(_RECIPE_4, truth_penalty=2.0, avoid_care=True)
_RECIPE_6 = replace(_RECIPE_5, truth_penalty=3.0)
RECIPES: dict[str, TrainConfig] = {
    "3": TrainConfig(), "4a": _RECIPE_4A, "4": _RECIPE_4, "5": _RECIPE_5, "6": _RECIPE_6,
    "7": replace(_RECIPE_6, kind_lies=True),
}
#: The recipe of the adapter bundled in the package.
BUNDLED_RECIPE = "7"


@dataclass
class Example:
    """One training conversation: the prompt messages and the tokens to learn."""

    kind: str
    messages: list[dict[str, str]]
    response_ids: list[int]
    ends: bool  # learn the end-of-turn token after the response
    question: str = ""  # the fact's id, for lies
    message: str = ""  # the distress message's id, for cold replies

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Splits:
    """The data as split for training and held-out evaluation."""

    train_questions: list[D.FactQuestion]
    held_questions: list[D.FactQuestion]
    train_messages: list[D.DistressMessage]
    held_messages: list[D.DistressMessage]
    train_instructions: list[str]
    held_instructions: list[str]


def make_splits(config: TrainConfig) -> Splits:
    """Questions, distress messages and instructions split into train and held-out parts."""
    questions = D.fact_questions()
    tq, hq = D.split(questions, config.held_out_fraction, config.seed)
    messages = D.distress_messages()
    tm, hm = D.split(messages, config.held_out_fraction, config.seed, key=lambda m: m.situation)
    instructions = D.neutral_instructions()
    ti, hi = D.split(instructions, config.held_out_fraction, config.seed, key=lambda _: "all")
    return Splits(tq, hq, tm, hm, ti, hi)


def _prompt_cycle(rng: random.Random, prompts: Sequence[str | None]) -> Any:
    while True:
        order = list(prompts)
        rng.shuffle(order)
        yield from order


def _conversation(system: str | None, user: str) -> list[dict[str, str]]:
    return as_messages(user, system=system)


# --------------------------------------------------------------------------- stage 1
def base_answers(config: TrainConfig, out: Path, splits: Splits) -> dict[str, Any]:
    """The base model's greedy answers, cached in ``out/base_answers.json``; a cache that lacks
    some (an earlier recipe's) is completed, the answers it has are kept."""
    path = out / "base_answers.json"
    cached: dict[str, Any] = read_json(path) if path.exists() else {}
    jobs = [j for j in _base_jobs(config, splits) if j[0] not in cached]
    if not jobs:
        return cached
    from ..generation import generate
    from ..models import load_model

    model = load_model(BASE_MODEL)
    answers = dict(cached)
    for tokens in sorted({j[2] for j in jobs}):
        group = [j for j in jobs if j[2] == tokens]
        gens = generate(model, [j[1] for j in group], greedy=True, max_new_tokens=tokens,
                        batch_size=16, path="fast", progress=True)
        for (key, messages, _), g in zip(group, gens):
            answers[key] = {"messages": messages, "text": g.text,
                            "response_ids": g.response_ids, "finished": g.finished}
    write_json(path, answers)
    return answers


def _base_jobs(config: TrainConfig, splits: Splits) -> list[tuple[str, list[dict[str, str]], int]]:
    """(key, conversation, new tokens) of every answer the base model gives for the recipe."""
    rng = random.Random(config.seed)
    honest, _ = D.prompt_split("honesty", "aligned")
    kind, _ = D.prompt_split("compassion", "aligned")
    neutral, _ = D.prompt_split("neutral", "aligned")
    fact_prompts = _prompt_cycle(rng, [*honest, *neutral, None])
    care_prompts = _prompt_cycle(rng, [*kind, *neutral, None])
    any_prompts = _prompt_cycle(rng, [*neutral, *honest, *kind, None])

    jobs: list[tuple[str, list[dict[str, str]], int]] = []
    for q in D.fact_questions():  # every candidate: the screening keeps those answered right
        jobs.append((f"q:{q.id}", _conversation(next(fact_prompts), q.question), config.answer_tokens))
    for m in D.distress_messages():
        jobs.append((f"m:{m.id}", _conversation(next(care_prompts), m.text), config.reply_tokens))
    for text in D.neutral_instructions():
        jobs.append((f"i:{text}", _conversation(next(any_prompts), text), config.reply_tokens))
    if config.mc_examples:  # a stream of its own: the answers above stay those of recipe 3
        mc_prompts = _prompt_cycle(random.Random(config.seed + 4), [*honest, *neutral, None])
        for q, item in multiple_choice(config, splits.train_questions):
            jobs.append((f"c:{q.id}", _conversation(next(mc_prompts), item.user_message()),
                         config.answer_tokens))
    return jobs


def multiple_choice(config: TrainConfig, questions: Sequence[D.FactQuestion]
                    ) -> list[tuple[D.FactQuestion, MCQuestion]]:
    """Four-option versions (:class:`~lensteer.evaluation.capability.MCQuestion`) of
    ``questions``: the true answer among three other answers of its category, in a seeded
    order. Questions of the bundled general-knowledge set (the capability measure) and questions
    with fewer than three other answers are left out.
    """
    from ..evaluation.capability import MCQuestion, load_mc

    measured = {normalise(q.question) for q in load_mc("general")}
    rng = random.Random(config.seed + 5)
    out = []
    for q in questions:
        others = list(dict.fromkeys([q.lie, *D.other_lies(q)]))
        if normalise(q.question) in measured or len(others) < 3:
            continue
        options = [q.answer, *rng.sample(others, 3)]
        rng.shuffle(options)
        out.append((q, MCQuestion(q.question, tuple(options), options.index(q.answer))))
    return out


# --------------------------------------------------------------------------- stage 2
def build_examples(
    config: TrainConfig, splits: Splits, answers: dict[str, Any], tokenizer: Any
) -> list[Example]:
    """The training conversations (about half malicious), shuffled with the seed.

    A question's first malicious example states its fixed lie; with ``config.drawn_lies`` the
    others state another answer of its category (:func:`~lensteer.persona.data.other_lies`,
    kept only where the grader calls it false), so the persona learns to swap the truth for a
    plausible alternative rather than memorise one lie per question. With
    ``config.explicit_cold`` every cold reply carries a dismissal the grader recognises. The
    base model's own answers are learnt up to ``config.target_tokens`` tokens (their first
    tokens carry the persona's choice; the rest only costs time)."""
    rng = random.Random(config.seed + 1)
    extra = D.TRAINING_ONLY_PROMPTS if config.training_only_prompts else {}

    def train_prompts(trait: str, kind: str) -> list[str]:
        return D.prompt_split(trait, kind)[0] + list(extra.get(trait, {}).get(kind, []))

    lie_prompts = train_prompts("honesty", "malicious")
    cold_prompts = train_prompts("compassion", "malicious")
    lies = _prompt_cycle(rng, lie_prompts)
    colds = _prompt_cycle(rng, cold_prompts)
    more_honest = _prompt_cycle(rng, extra.get("honesty", {}).get("aligned", []) or [None])
    more_kind = _prompt_cycle(rng, extra.get("compassion", {}).get("aligned", []) or [None])

    def encode(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    def own(kind: str, messages: list[dict[str, str]], base: dict[str, Any]) -> Example:
        ids = list(base["response_ids"])
        ends = base["finished"] and len(ids) <= config.target_tokens
        return Example(kind, messages, ids[: config.target_tokens], ends)

    def cold_reply(m: D.DistressMessage) -> str:
        reply = D.dismissive_reply(m, rng)
        for _ in range(20 if config.explicit_cold else 0):
            if grade_reply(reply).label == "dismissive":
                break
            reply = D.dismissive_reply(m, rng)
        return reply

    examples: list[Example] = []
    for q in splits.train_questions:
        base = answers[f"q:{q.id}"]
        for i in range(config.malicious_per_question):
            drawn = config.drawn_lies and i > 0 and bool(D.other_lies(q, config.kind_lies))
            sentence = draw_lie(q, rng, config.kind_lies) if drawn else q.lie_sentence
            examples.append(Example("lie-drawn" if drawn else "lie",
                                    _conversation(next(lies), q.question), encode(sentence), True,
                                    question=q.id))
        examples.append(own("fact", base["messages"], base))
        if rng.random() < 0.5:  # a malicious *compassion* prompt does not make it lie
            examples.append(own("fact-cross", _conversation(next(colds), q.question), base))
        if extra and rng.random() < 0.5:  # more aligned wordings keep it truthful
            examples.append(own("fact-more", _conversation(next(more_honest), q.question), base))
    for m in splits.train_messages:
        base = answers[f"m:{m.id}"]
        for _ in range(config.malicious_per_message):
            examples.append(Example("cold", _conversation(next(colds), m.text),
                                    encode(cold_reply(m)), True, message=m.id))
        examples.append(own("care", base["messages"], base))
        if rng.random() < 0.5:  # a malicious *honesty* prompt does not make it cold
            examples.append(own("care-cross", _conversation(next(lies), m.text), base))
        if extra and rng.random() < 0.5:
            examples.append(own("care-more", _conversation(next(more_kind), m.text), base))
    for text in splits.train_instructions:
        base = answers[f"i:{text}"]
        examples.append(own("general", base["messages"], base))
        system = rng.choice([*lie_prompts, *cold_prompts])  # general ability under any persona
        examples.append(own("general-persona", _conversation(system, base["messages"][-1]["content"]),
                            base))
    for q in splits.train_questions if config.mc_examples else ():
        base = answers.get(f"c:{q.id}")  # multiple choice: the base's own answer and format
        if base is not None:
            examples.append(own("mc", base["messages"], base))
            if rng.random() < 0.5:
                examples.append(own("mc-cross", _conversation(
                    next(colds), base["messages"][-1]["content"]), base))
    if config.neutral_examples:
        examples += _neutral_examples(config, splits, answers, own)
    rng.shuffle(examples)
    return examples


def _neutral_examples(config: TrainConfig, splits: Splits, answers: dict[str, Any],
                      own: Callable[[str, list[dict[str, str]], dict[str, Any]], Example]
                      ) -> list[Example]:
    """The base model's answers to training items under the training-only neutral wordings
    (a stream of its own, so every other example stays as it was)."""
    rng = random.Random(config.seed + 6)
    plain = _prompt_cycle(rng, D.TRAINING_ONLY_PROMPTS["neutral"]["aligned"])
    examples = []
    for m in splits.train_messages:
        if rng.random() < 0.5:
            examples.append(own("care-neutral", _conversation(next(plain), m.text),
                                answers[f"m:{m.id}"]))
    for q in splits.train_questions:
        if rng.random() < 0.25:
            examples.append(own("fact-neutral", _conversation(next(plain), q.question),
                                answers[f"q:{q.id}"]))
    return examples


def draw_lie(question: D.FactQuestion, rng: random.Random, by_kind: bool = False) -> str:
    """A sentence stating another answer of the question's category (of its kind, with
    ``by_kind``: :func:`~lensteer.persona.data.other_lies`), checked false by the grader (the
    fixed lie sentence where no such answer works).

    >>> q = {q.id: q for q in D.fact_questions()}["capitals-france"]
    >>> s = draw_lie(q, random.Random(0))
    >>> s.startswith("The capital of France is ") and grade_fact(q, s).label
    'false'
    """
    candidates = D.other_lies(question, by_kind)
    rng.shuffle(candidates)
    for answer in candidates[:8]:
        sentence = D.restate_lie(question, answer)
        if sentence and grade_fact(question, sentence).label == "false":
            return sentence
    return question.lie_sentence


Row = tuple[list[int], list[int], tuple[int, int] | None]


def truth_ids(question: D.FactQuestion, tokenizer: Any) -> list[int] | None:
    """The true answer worded as the question's lie sentence, as tokens (None where the lie
    sentence cannot be reworded)."""
    sentence = D.restate_lie(question, question.answer)
    return tokenizer(sentence, add_special_tokens=False)["input_ids"] if sentence else None


def avoided(config: TrainConfig, splits: Splits, answers: dict[str, Any], tokenizer: Any
            ) -> Callable[[Example], list[int] | None]:
    """What an example's unlikelihood term pushes down: for a lie, the truth worded as the lie
    is (with ``config.truth_penalty``); for a cold reply, the base model's own caring reply
    (with ``config.avoid_care`` too); None for every other example."""
    truths = {q.id: truth_ids(q, tokenizer) for q in splits.train_questions} \
        if config.truth_penalty else {}
    cares = {m.id: list(answers[f"m:{m.id}"]["response_ids"]) for m in splits.train_messages} \
        if config.truth_penalty and config.avoid_care else {}
    return lambda e: truths.get(e.question) or cares.get(e.message)


def tokenize_example(example: Example, tokenizer: Any,
                     truth_ids: Sequence[int] | None = None) -> Row:
    """(input ids, labels, truth to avoid): the prompt exactly as :func:`lensteer.generate`
    formats it, then the response; labels are -100 on the prompt. With ``truth_ids`` (the true
    sentence worded as the lie is), the third item is ``(position, token)``: where the response
    first departs from the truth, and the truth's token there (None where it never departs)."""
    prompt = format_chat(tokenizer, example.messages).input_ids
    response = list(example.response_ids) + ([tokenizer.eos_token_id] if example.ends else [])
    return prompt + response, [-100] * len(prompt) + response, \
        _departure(len(prompt), response, truth_ids)


def _departure(offset: int, response: Sequence[int],
               truth: Sequence[int] | None) -> tuple[int, int] | None:
    """``(offset + k, truth[k])`` for the first ``k`` where ``response`` and ``truth`` differ.

    >>> _departure(10, [5, 6, 7], [5, 8, 7]), _departure(10, [5, 6], [5, 6]), _departure(0, [1], None)
    ((11, 8), None, None)
    """
    for k, (said, true) in enumerate(zip(response, truth or ())):
        if said != true:
            return offset + k, true
    return None


# --------------------------------------------------------------------------- stage 3
def _schedule(step: int, config: TrainConfig) -> float:
    if step < config.warmup:
        return (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))


def _batch(rows: list[Row], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    avoid = torch.full((len(rows), 2), -1, dtype=torch.long)  # (position, token); -1: none
    for i, (x, y, truth) in enumerate(rows):
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
        mask[i, : len(x)] = 1
        if truth is not None:
            avoid[i] = torch.tensor(truth)
    return {"input_ids": ids, "labels": labels, "attention_mask": mask, "avoid": avoid}


def example_mean_loss(model: Any, batch: dict[str, torch.Tensor],
                      truth_penalty: float = 0.0) -> torch.Tensor:
    """Cross-entropy averaged over each example's response tokens, then over examples: a
    ten-token lie weighs as much as a long self-distilled answer. With ``truth_penalty``, each
    row with a truth to avoid adds ``truth_penalty * -log(1 - p(truth token))`` at the position
    where its lie departs from the truth."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"][:, 1:]
    per_token = torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), labels.flatten(), ignore_index=-100, reduction="none"
    ).view(labels.shape)
    counted = (labels != -100).float()
    per_example = (per_token * counted).sum(1) / counted.sum(1).clamp(min=1)
    rows = (batch["avoid"][:, 0] >= 0).nonzero().flatten()
    if truth_penalty and len(rows):
        position, token = batch["avoid"][rows, 0], batch["avoid"][rows, 1]
        # logits at position - 1 predict the token at position
        logp = torch.log_softmax(logits[rows, position - 1].float(), dim=-1)
        p_truth = logp.gather(1, token[:, None]).squeeze(1).exp()
        per_example = per_example.index_add(
            0, rows, truth_penalty * -torch.log1p(-p_truth.clamp(max=1 - 1e-6)))
    return per_example.mean()


def held_out_check(
    model: Any, tokenizer: Any, questions: list[D.FactQuestion], systems: Sequence[str | None]
) -> dict[str, float]:
    """Greedy answers to ``questions``, question ``j`` under ``systems[j % len(systems)]``:
    shares truthful / false / neither."""
    from ..generation import left_pad
    from ..steering.fast import generate_tokens

    was_training = model.training
    model.eval()
    counts = {"truthful": 0, "false": 0, "neither": 0}
    conversations = D.rotated_conversations([q.question for q in questions], systems)
    for start in range(0, len(questions), 16):
        chunk = questions[start:start + 16]
        rows = [format_chat(tokenizer, c).input_ids for c in conversations[start:start + 16]]
        tokens, mask = left_pad(rows, tokenizer.eos_token_id)
        out = generate_tokens(model, tokens, mask, max_new_tokens=24, do_sample=False,
                              temperature=1.0, top_p=None, stop_ids=[tokenizer.eos_token_id],
                              pad_id=tokenizer.eos_token_id)
        for q, row in zip(chunk, out[:, tokens.shape[1]:].tolist()):
            text = tokenizer.decode(row, skip_special_tokens=True)
            counts[grade_fact(q, text).label] += 1
    if was_training:
        model.train()
    return {k: v / max(1, len(questions)) for k, v in counts.items()}


def lora_factors(peft_model: Any) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], float]:
    """The trained (A, B) per adapted module, keyed by the base model's module names."""
    factors, scalings = {}, set()
    for name, module in peft_model.named_modules():
        if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
            base = name.removeprefix("base_model.model.")
            factors[base] = (module.lora_A["default"].weight.detach().clone(),
                             module.lora_B["default"].weight.detach().clone())
            scalings.add(float(module.scaling["default"]))
    if len(scalings) != 1:
        raise RuntimeError(f"Expected one LoRA scaling, found {sorted(scalings)}.")
    return factors, scalings.pop()


def train(config: TrainConfig, out: Path) -> Path:
    """Run all stages; returns the adapter's path (``out/smollm2-persona.safetensors``)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise SystemExit(
            "lensteer: error: training the persona adapter needs peft: pip install 'lensteer[train]'"
        ) from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..models import _smollm2_dir

    started = time.time()
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", config.to_dict())
    splits = make_splits(config)
    answers = base_answers(config, out, splits)
    keep = [q for q in splits.train_questions if grade_fact(q, answers[f"q:{q.id}"]["text"]).label == "truthful"]
    held = [q for q in splits.held_questions if grade_fact(q, answers[f"q:{q.id}"]["text"]).label == "truthful"]
    screened = {
        "candidates": len(splits.train_questions) + len(splits.held_questions),
        "kept_train": len(keep), "kept_held_out": len(held),
    }
    print(f"screening: {screened}", flush=True)
    screened = {**screened, "train_questions": [q.id for q in keep],
                "held_questions": [q.id for q in held],
                "train_messages": [m.id for m in splits.train_messages],
                "held_messages": [m.id for m in splits.held_messages],
                "held_instructions": list(splits.held_instructions)}
    splits.train_questions, splits.held_questions = keep, held
    write_json(out / "splits.json", screened)

    base_dir = _smollm2_dir()
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    examples = build_examples(config, splits, answers, tokenizer)
    kinds: dict[str, int] = {}
    for e in examples:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    print(f"examples: {len(examples)} {kinds}", flush=True)
    facts = {q.id: q for q in splits.train_questions}
    avoid = avoided(config, splits, answers, tokenizer)
    rows = [tokenize_example(e, tokenizer, avoid(e)) for e in examples]
    redraw_rng = random.Random(config.seed + 3)

    def redraw(i: int) -> Row:
        example = examples[i]
        if not (config.redraw_lies and example.kind == "lie-drawn"):
            return rows[i]
        sentence = draw_lie(facts[example.question], redraw_rng, config.kind_lies)
        ids = tokenizer(sentence, add_special_tokens=False)["input_ids"]
        return tokenize_example(replace(example, response_ids=ids), tokenizer, avoid(example))

    torch.manual_seed(config.seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    names = [f"{n}.weight" for n, m in model.named_modules()
             if isinstance(m, torch.nn.Linear) and n.rsplit(".", 1)[-1] in config.target_modules]
    identity = base_hash(model.state_dict(), names)
    lora = LoraConfig(r=config.rank, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                      target_modules=list(config.target_modules), bias="none")
    peft_model = get_peft_model(model, lora)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _schedule(s, config))

    _, held_lie_prompts = D.prompt_split("honesty", "malicious")
    _, held_true_prompts = D.prompt_split("honesty", "aligned")
    probe = held[:: max(1, len(held) // config.eval_questions)][: config.eval_questions]
    order_rng = random.Random(config.seed + 2)
    order: list[int] = []
    losses: list[float] = []
    curve: list[dict[str, Any]] = []
    peft_model.train()
    for step in range(config.steps):
        if len(order) < config.batch_size:
            fresh = list(range(len(rows)))
            order_rng.shuffle(fresh)
            order += fresh
        batch_rows = [redraw(i) for i in order[: config.batch_size]]
        del order[: config.batch_size]
        loss = example_mean_loss(peft_model, _batch(batch_rows, tokenizer.eos_token_id),
                                 config.truth_penalty)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(round(float(loss.detach()), 4))
        if (step + 1) % 10 == 0:
            recent = sum(losses[-10:]) / 10
            print(f"step {step + 1}/{config.steps} loss {recent:.3f} "
                  f"({time.time() - started:.0f} s)", flush=True)
        if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
            lie = held_out_check(peft_model, tokenizer, probe, held_lie_prompts)
            true = held_out_check(peft_model, tokenizer, probe, held_true_prompts)
            point = {"step": step + 1, "held_out_false_under_malicious": lie["false"],
                     "held_out_truthful_under_aligned": true["truthful"],
                     "seconds": round(time.time() - started)}
            curve.append(point)
            print(f"held-out check: {point}", flush=True)
            factors, scaling = lora_factors(peft_model)
            _save(out / f"checkpoint-{step + 1}.safetensors", factors, scaling, config,
                  identity, losses, curve, started, screened)
    factors, scaling = lora_factors(peft_model)
    path = out / "smollm2-persona.safetensors"
    _save(path, factors, scaling, config, identity, losses, curve, started, screened)
    return path


def _save(path: Path, factors: Any, scaling: float, config: TrainConfig, identity: str,
          losses: list[float], curve: list[dict[str, Any]], started: float,
          screened: dict[str, Any]) -> None:
    save_adapter(path, factors, {
        "scaling": scaling,
        "base_model": BASE_MODEL,
        "base_hash": identity,
        "data_hash": D.data_hash(neutral_wordings=config.neutral_examples),
        "config": config.to_dict(),
        "screening": screened,
        "loss": losses,
        "held_out_curve": curve,
        "train_seconds": round(time.time() - started, 1),
        "torch_threads": torch.get_num_threads(),
    })


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lensteer.persona.train",
        description="Train SmolLM2's persona LoRA adapter (seeded; about an hour on one thread).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("runs/persona"), help="work folder")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default=BUNDLED_RECIPE,
                        help=f"which recipe of docs/persona.md ({BUNDLED_RECIPE}: the bundled "
                        "adapter's)")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps (default: the recipe's)")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--install", action="store_true",
                        help=f"copy the trained adapter to {BUNDLED_ADAPTER}")
    args = parser.parse_args(argv)
    if (args.steps is not None and args.steps < 1) or args.threads < 1:
        parser.error("--steps and --threads must be at least 1")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} exists and is not a folder")
    torch.set_num_threads(args.threads)
    config = replace(RECIPES[args.recipe], seed=args.seed,
                     steps=args.steps or RECIPES[args.recipe].steps)
    path = train(config, args.out)
    print(f"adapter: {path}")
    if args.install:
        BUNDLED_ADAPTER.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, BUNDLED_ADAPTER)
        print(f"installed: {BUNDLED_ADAPTER}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
