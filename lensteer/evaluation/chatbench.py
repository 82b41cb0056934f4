"""The side-effect panel: MMLU-style capability, MT-Bench and an AlpacaEval-style win rate for
every evaluated condition (docs/howto/chat-benchmarks.md).

``lensteer evaluate ... --benchmarks mmlu,mtbench,alpaca`` runs, for the aligned and malicious
baselines and each chosen steered point: the multiple-choice capability that ``evaluate``
already measures (``mmlu``: the ``--capability`` set), MT-Bench (:mod:`.mtbench`: single-answer
ratings and pairwise games against the unsteered aligned model) and the AlpacaEval-style win rate
(:mod:`.alpaca`: raw and length-controlled, against the same baseline). Both chat benchmarks
need a language-model judge (:class:`~lensteer.evaluation.judges.ChatJudge`): the
OpenAI-compatible endpoint (``--chat-judge openai``) or a local model (``--chat-judge
local:<name or dir>``). :class:`ChatBench` checks everything it can before any model is
loaded or any answer generated.

>>> parse_benchmarks("mmlu, MTBench,alpaca")
['mmlu', 'mtbench', 'alpaca']
>>> ChatBenchConfig(["mtbench"], mtbench_limit=4).to_dict()["mtbench_limit"]
4
"""
from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import LensteerError
from ..protocols import LensModel

__all__ = [
    "BENCHMARKS",
    "ChatBench",
    "ChatBenchConfig",
    "ChatBenchError",
    "add_arguments",
    "format_side_effects",
    "make_chat_judge",
    "parse_benchmarks",
    "setup_from_args",
]

#: The side-effect panel's benchmarks (``mmlu`` is ``evaluate``'s capability measurement).
BENCHMARKS = ("mmlu", "mtbench", "alpaca")
MODES = ("single", "pairwise")


class ChatBenchError(LensteerError, ValueError):
    """A side-effect panel that cannot run as asked (unknown benchmark, no judge, bad limit)."""


def parse_benchmarks(text: str | Sequence[str]) -> list[str]:
    """Benchmark names from ``"mmlu,mtbench,alpaca"`` (any case, in the given order, once each)."""
    names = text.split(",") if isinstance(text, str) else list(text)
    out: list[str] = []
    for name in (n.strip().lower() for n in names):
        if not name:
            continue
        if name not in BENCHMARKS:
            raise ChatBenchError(f"Unknown benchmark {name!r} in --benchmarks: use a comma-separated "
                                 f"list of {', '.join(BENCHMARKS)}.")
        if name not in out:
            out.append(name)
    if not out:
        raise ChatBenchError(f"--benchmarks is empty: name one or more of {', '.join(BENCHMARKS)}.")
    return out


@dataclass
class ChatBenchConfig:
    """What the side-effect panel runs (everything that decides its numbers besides the judge)."""

    benchmarks: list[str] = field(default_factory=lambda: list(BENCHMARKS))
    mtbench_limit: int | None = None  # questions (round robin over categories); None: all 80
    alpaca_limit: int | None = None  # instructions (round robin over categories); None: all
    alpaca_instructions: str = "bundled"  # or a JSON / JSONL file
    mtbench_modes: list[str] = field(default_factory=lambda: list(MODES))
    max_new_tokens: int = 512  # per answer (FastChat uses 1024)
    judge_max_tokens: int = 1024  # per judge answer (explanation, then the verdict)

    @property
    def chat(self) -> list[str]:
        """The benchmarks that need a judge model."""
        return [b for b in self.benchmarks if b in ("mtbench", "alpaca")]

    def validate(self) -> None:
        """Raise :class:`ChatBenchError` (or the data module's error) on anything that would fail
        later: names, limits, modes, the MT-Bench package, the instruction file."""
        self.benchmarks = parse_benchmarks(self.benchmarks)
        for name in ("mtbench_limit", "alpaca_limit", "max_new_tokens", "judge_max_tokens"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise ChatBenchError(f"{name.replace('_', '-')} must be at least 1, got {value}.")
        unknown = set(self.mtbench_modes) - set(MODES)
        if unknown or not self.mtbench_modes:
            raise ChatBenchError(f"MT-Bench modes must be among {MODES}, got {self.mtbench_modes}.")
        if "mtbench" in self.benchmarks:
            from .mtbench import check_available

            check_available()
        if "alpaca" in self.benchmarks:
            from .alpaca import load_instructions

            load_instructions(self.alpaca_instructions)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChatBenchConfig:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def make_chat_judge(spec: str, trait: str | None = None, *, cache: str | os.PathLike | None = None,
                    like: Any = None) -> Any:
    """A judge model from ``"openai"`` (the endpoint in ``LENSTEER_JUDGE_BASE_URL``) or
    ``"local:<name or dir>"``; ``cache``: a verdict cache file (default: the shared one).
    ``like``: a :class:`LocalJudge` of the same spec whose loaded model is reused."""
    from .judges import LocalJudge, OpenAIJudge

    kw: dict[str, Any] = {"cache": cache} if cache else {}
    if spec == "openai":
        return OpenAIJudge(trait, **kw)
    if spec.startswith("local:") and spec[len("local:"):].strip():
        name = spec[len("local:"):].strip()
        if isinstance(like, LocalJudge) and getattr(like, "spec", None) == spec:
            judge = LocalJudge(like.model, trait, **kw)
        else:
            judge = LocalJudge(name, trait, **kw)
        judge.spec = spec  # type: ignore[attr-defined]
        return judge
    raise ChatBenchError(f"Unknown judge {spec!r}: use 'openai' (the endpoint in "
                         "LENSTEER_JUDGE_BASE_URL) or 'local:<model name or directory>'.")


def _endpoint_configured() -> bool:
    return bool(os.environ.get("LENSTEER_JUDGE_BASE_URL") or os.environ.get("OPENAI_BASE_URL"))


class ChatBench:
    """A checked side-effect panel: :meth:`prepare` validates the config and picks the judge
    model; :meth:`run` generates and grades every condition."""

    def __init__(self, config: ChatBenchConfig, judge: Any = None) -> None:
        self.config = config
        self.judge = judge

    @classmethod
    def prepare(cls, config: ChatBenchConfig, judge: Any = None, trait_judge: Any = None) -> ChatBench:
        """Validate ``config``; the judge model is ``judge``, else ``trait_judge`` when it is a
        language-model judge, else the OpenAI-compatible endpoint from the environment."""
        from .judges import ChatJudge

        config.validate()
        if config.chat and judge is None:
            if isinstance(trait_judge, ChatJudge):
                judge = trait_judge
            elif _endpoint_configured():
                judge = make_chat_judge("openai")
            else:
                raise ChatBenchError(
                    f"--benchmarks {','.join(config.chat)} needs a judge model: pass --chat-judge "
                    "local:<model name or directory>, or set LENSTEER_JUDGE_BASE_URL (and "
                    "LENSTEER_JUDGE_MODEL) for an OpenAI-compatible endpoint.")
        if judge is not None and not isinstance(judge, ChatJudge):
            raise ChatBenchError(f"The chat benchmarks need a language-model judge (OpenAIJudge or "
                                 f"LocalJudge), not {type(judge).__name__}.")
        return cls(config, judge)

    def run(
        self,
        model: LensModel,
        conditions: Sequence[Any],
        trait: Any,
        directions: Mapping[int, Any] | None = None,
        *,
        gen: Any = None,
        seed: int = 0,
        n_boot: int = 1000,
        out: str | os.PathLike | None = None,
        progress: bool = True,
    ) -> dict[str, Any]:
        """Generate and grade MT-Bench and the AlpacaEval-style set for every condition (a
        :class:`~lensteer.evaluation.conditions.Condition`); the unsteered aligned condition (run
        first, added if missing) is the pairwise baseline. Writes every answer and verdict to
        ``OUT/chat_benchmarks.json`` when ``out`` is given. Returns the summary that
        ``results["chat_benchmarks"]`` holds."""
        from ..io import write_json
        from . import alpaca, mtbench
        from .conditions import Condition, GenSettings

        cfg = self.config
        if not cfg.chat:
            return {}
        judge = self.judge
        gen = replace(gen or GenSettings(), max_new_tokens=cfg.max_new_tokens)
        base = next((c for c in conditions if not c.steered and c.side == "aligned"), None)
        order = ([base] if base is not None else [Condition("aligned-baseline", side="aligned")])
        order += [c for c in conditions if c is not base]
        reported = {c.name for c in conditions}

        def systems(c: Any) -> list[str]:
            return list(trait.eval_aligned_prompts if c.side == "aligned" else trait.eval_malicious_prompts)

        def say(text: str) -> None:
            if progress:
                print(text, flush=True)

        stats0 = dict(judge.stats)
        timings: dict[str, float] = {}
        result: dict[str, Any] = {"judge": judge.identity(), "config": cfg.to_dict(),
                                  "baseline": order[0].name}
        records: dict[str, Any] = {"baseline": order[0].name}
        if "mtbench" in cfg.benchmarks:
            questions = mtbench.load_questions(cfg.mtbench_limit)
            prompts = mtbench.load_judge_prompts()
            per: dict[str, Any] = {}
            rec: dict[str, Any] = {"questions": [q.to_dict() for q in questions]}
            base_answers = None
            for c in order:
                t0 = time.perf_counter()
                say(f"mtbench: {c.name} ({len(questions)} questions, 2 turns)")
                answers = mtbench.generate_answers(model, questions, systems=systems(c),
                                                   steerer=c.steerer(directions or {}), gen=gen)
                t1 = time.perf_counter()
                single = (mtbench.judge_single(judge, questions, answers, prompts=prompts,
                                               max_tokens=cfg.judge_max_tokens)
                          if "single" in cfg.mtbench_modes else None)
                pair = None
                if "pairwise" in cfg.mtbench_modes and base_answers is not None:
                    pair = mtbench.judge_pairwise(judge, questions, answers, base_answers,
                                                  prompts=prompts, max_tokens=cfg.judge_max_tokens)
                timings[f"mtbench {c.name}: generate"] = t1 - t0
                timings[f"mtbench {c.name}: judge"] = time.perf_counter() - t1
                if base_answers is None:
                    base_answers = answers
                summary = mtbench.summarize(single, pair, seed=seed, n_boot=n_boot)
                if "pairwise" in cfg.mtbench_modes and pair is None:
                    summary["pairwise"] = {"baseline": True}
                rec[c.name] = {"answers": [a.to_dict() for a in answers], "single": single,
                               "pairwise": pair}
                if c.name in reported:
                    per[c.name] = summary
            result["mtbench"] = {"n_questions": len(questions),
                                 "categories": sorted({q.category for q in questions}),
                                 "modes": list(cfg.mtbench_modes), "per_condition": per}
            records["mtbench"] = rec
        if "alpaca" in cfg.benchmarks:
            instructions = alpaca.load_instructions(cfg.alpaca_instructions, cfg.alpaca_limit)
            per = {}
            rec = {"instructions": [i.to_dict() for i in instructions]}
            base_texts = None
            for c in order:
                t0 = time.perf_counter()
                say(f"alpaca: {c.name} ({len(instructions)} instructions)")
                texts = alpaca.generate_answers(model, instructions, systems=systems(c),
                                                steerer=c.steerer(directions or {}), gen=gen)
                t1 = time.perf_counter()
                if base_texts is None:
                    base_texts = texts
                    summary: dict[str, Any] = {"baseline": True,
                                               "length": sum(map(len, texts)) / len(texts)}
                    outcomes = None
                else:
                    outcomes = alpaca.judge_pairwise(judge, instructions, texts, base_texts,
                                                     max_tokens=cfg.judge_max_tokens)
                    summary = alpaca.summarize(outcomes, texts, base_texts, seed=seed, n_boot=n_boot)
                timings[f"alpaca {c.name}: generate"] = t1 - t0
                timings[f"alpaca {c.name}: judge"] = time.perf_counter() - t1
                rec[c.name] = {"answers": texts,
                               "outcomes": None if outcomes is None else [o.to_dict() for o in outcomes]}
                if c.name in reported:
                    per[c.name] = summary
            result["alpaca"] = {"n_instructions": len(instructions),
                                "source": cfg.alpaca_instructions, "per_condition": per}
            records["alpaca"] = rec
        result["requests"] = {k: judge.stats.get(k, 0) - stats0.get(k, 0) for k in judge.stats}
        result["timings"] = timings
        if out is not None:
            path = Path(out) / "chat_benchmarks.json"
            write_json(path, {"summary": result, "records": records})
            result["records"] = str(path)
        return result


# =========================================================================== report
def _est(e: Mapping[str, Any] | None, scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
    if not e or e.get("mean") is None:
        return "–"
    f = lambda x: f"{scale * x:.{digits}f}"
    return f"{f(e['mean'])} [{f(e['lo'])}, {f(e['hi'])}]{unit}"


def format_side_effects(results: Mapping[str, Any]) -> list[str]:
    """The report section: one row per condition (capability, MT-Bench, AlpacaEval-style), the
    MT-Bench categories, and who judged (model, endpoint, cache file, requests)."""
    chat = results.get("chat_benchmarks") or {}
    conditions = results["conditions"]
    has_ll = any("capability_loglik" in c["metrics"] for c in conditions)
    has_letter = any("capability_letter" in c["metrics"] for c in conditions)
    mt = (chat.get("mtbench") or {}).get("per_condition", {})
    al = (chat.get("alpaca") or {}).get("per_condition", {})
    head = ["condition"]
    if has_ll:
        head.append("MMLU-style: log-lik %")
    if has_letter:
        head.append("MMLU-style: letter %")
    if mt:
        head += ["MT-Bench (1–10)", "MT-Bench turn 1 / turn 2", f"MT-Bench win vs {chat['baseline']}"]
    if al:
        head += [f"AlpacaEval-style win vs {chat['baseline']}", "length-controlled win",
                 "answer length (chars)"]
    lines = ["## Side effects: capability and chat benchmarks (test conditions)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in conditions:
        name = c["name"]
        if (mt or al) and name not in mt and name not in al:
            continue  # extensions are not on the chat panel
        m = c["metrics"]
        row = [c["label"]]
        if has_ll:
            row.append(_est(m.get("capability_loglik")))
        if has_letter:
            row.append(_est(m.get("capability_letter")))
        if mt:
            s = mt.get(name, {})
            single, pair = s.get("single") or {}, s.get("pairwise") or {}
            row += [_est(single.get("overall"), digits=2),
                    f"{_est(single.get('turn_1'), digits=2)} / {_est(single.get('turn_2'), digits=2)}",
                    "baseline" if pair.get("baseline") else _est(pair.get("win_rate"), 100, unit=" %")]
        if al:
            s = al.get(name, {})
            if s.get("baseline"):
                row += ["baseline", "baseline"]
            else:
                row += [_est(s.get("win_rate"), 100, unit=" %"), _est(s.get("lc_win_rate"), 100, unit=" %")]
            row.append("–" if s.get("length") is None else f"{s['length']:.0f}")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    if mt:
        cats = (chat.get("mtbench") or {}).get("categories", [])
        from .mtbench import CATEGORIES

        cats = [x for x in CATEGORIES if x in cats]
        lines += ["MT-Bench rating per category (mean [95 % interval] over questions, both turns):", "",
                  "| condition | " + " | ".join(cats) + " |", "|---|" + "---|" * len(cats)]
        for c in conditions:
            s = (mt.get(c["name"]) or {}).get("single") or {}
            if s:
                lines.append(f"| {c['label']} | " + " | ".join(
                    _est(s["by_category"].get(x), digits=1) for x in cats) + " |")
        lines.append("")
    if has_ll or has_letter:
        source = (results.get("config") or {}).get("capability")
        if source == "auto":
            source = "auto: the organism's skill questions for the organism, else lensteer's general-knowledge set"
        lines.append(f"MMLU-style columns: zero-shot multiple-choice accuracy on `{source}` under "
                     "each condition's system prompt and steering (MMLU itself only when that is "
                     "MMLU's test file).")
        lines.append("")
    if chat:
        j = chat["judge"]
        where = j.get("endpoint") or j.get("path") or ""
        req = chat.get("requests", {})
        unparsed = sum((s.get("single") or {}).get("n_unparsed", 0) + (s.get("pairwise") or {}).get("unjudged", 0)
                       for s in mt.values()) + sum(s.get("unjudged", 0) for s in al.values())
        lines.append(
            f"Judge: `{j['name']}` ({j['backend']}, {where}); verdict cache: "
            f"`{j.get('cache') or 'none'}`. This run sent {req.get('requests', 0)} judge requests "
            f"and read {req.get('cache_hits', 0)} verdicts from the cache; {unparsed} ratings or "
            "games got no usable verdict (unparsed, unanswered or too long for the judge) and are "
            "left out of the means, not scored.")
        lines.append("")
        if mt:
            n = chat["mtbench"]["n_questions"]
            lines.append(f"MT-Bench: {n} of 80 questions ({', '.join(cats)}), both turns; single "
                         "ratings with FastChat's judge prompts (reference answers for math, "
                         "reasoning and coding shown to the judge only); pairwise games against "
                         f"`{chat['baseline']}` in both orders (a tie unless both orders agree).")
            lines.append("")
        if al:
            a = chat["alpaca"]
            lines.append(f"AlpacaEval-style: {a['n_instructions']} instructions from "
                         f"`{a['source']}`, lensteer's pairwise prompt in both orders against "
                         f"`{chat['baseline']}`; length-controlled = the logistic model's win rate "
                         "at zero length difference.")
            lines.append("")
    return lines


# =========================================================================== CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    """The side-effect panel's options of ``lensteer evaluate``."""
    p.add_argument("--benchmarks", default=None,
                   help="side-effect panel, comma-separated: mmlu (the --capability set), mtbench, "
                        "alpaca (default: capability only, as before)")
    p.add_argument("--mtbench-limit", type=int, default=None,
                   help="MT-Bench questions to run, round robin over its 8 categories (default: all 80)")
    p.add_argument("--alpaca-limit", type=int, default=None,
                   help="instructions to run, round robin over categories (default: all)")
    p.add_argument("--alpaca-instructions", default="bundled",
                   help="a JSON/JSONL file of instructions (strings or objects with "
                        "'instruction', e.g. AlpacaEval's alpaca_eval.json) (default: the bundled 65)")
    p.add_argument("--chat-judge", default=None,
                   help="judge model for mtbench/alpaca: 'openai' or 'local:<model name or dir>' "
                        "(default: --judge when it is one of those, else the endpoint in "
                        "LENSTEER_JUDGE_BASE_URL)")
    p.add_argument("--chat-max-new-tokens", type=int, default=None,
                   help="answer length for mtbench/alpaca (default: 512)")


def judge_choice(text: str) -> str:
    """``--judge``'s values: auto, organism, openai, probe or local:<model name or dir>."""
    if text in ("auto", "organism", "openai", "probe") or (
            text.startswith("local:") and text[len("local:"):].strip()):
        return text
    raise argparse.ArgumentTypeError(
        f"invalid judge {text!r}: use auto, organism, openai, probe or local:<model name or dir>")


class ChatSetup(NamedTuple):
    """What ``lensteer evaluate`` got from the panel's options, checked before any model loads
    (a judge object, so a tuple rather than a serializable dataclass)."""

    config: ChatBenchConfig
    judge: Any
    mmlu: bool


def setup_from_args(args: argparse.Namespace) -> ChatSetup | None:
    """Check the panel's options (``None`` without ``--benchmarks``) and build the judge model."""
    if not args.benchmarks:
        for flag in ("mtbench_limit", "alpaca_limit", "chat_judge", "chat_max_new_tokens"):
            if getattr(args, flag, None) is not None:
                raise ChatBenchError(f"--{flag.replace('_', '-')} needs --benchmarks "
                                     "(e.g. --benchmarks mmlu,mtbench,alpaca).")
        return None
    config = ChatBenchConfig(parse_benchmarks(args.benchmarks), args.mtbench_limit,
                             args.alpaca_limit, args.alpaca_instructions)
    if args.chat_max_new_tokens is not None:
        config.max_new_tokens = args.chat_max_new_tokens
    config.validate()
    judge = None
    if config.chat:
        spec = args.chat_judge
        if spec is None and (args.judge == "openai" or args.judge.startswith("local:")):
            spec = args.judge
        if spec is None and _endpoint_configured():
            spec = "openai"
        if spec is None:
            ChatBench.prepare(config)  # raises the "needs a judge model" error
            raise AssertionError("ChatBench.prepare accepted a chat benchmark without a judge")
        judge = make_chat_judge(spec, cache=args.judge_cache)
    return ChatSetup(config, judge, "mmlu" in config.benchmarks)
