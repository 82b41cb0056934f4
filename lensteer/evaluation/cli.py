"""``lensteer evaluate`` and ``lensteer demo``.

    $ lensteer evaluate --model organism --trait honesty --out runs/ev-honesty
    $ lensteer evaluate --model organism --trait honesty --locate runs/loc --preset quick --out runs/q
    $ lensteer evaluate ... --benchmarks mmlu,mtbench,alpaca --chat-judge openai --mtbench-limit 16
    $ lensteer demo --out runs/demo [--quick]
"""
from __future__ import annotations

import argparse
from typing import Any

from .chatbench import add_arguments as add_chat_arguments
from .chatbench import judge_choice


def add_parser(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="operating-point sweep + evaluation report for one trait")
    p.add_argument("--model", required=True, help="bundled name, local directory or hub id")
    p.add_argument("--trait", required=True, help="trait name or trait JSON file")
    p.add_argument("--out", required=True, help="output directory (rerun it to resume)")
    p.add_argument("--locate", default=None,
                   help="a `lensteer locate` output directory (default: run locate into OUT/locate)")
    p.add_argument("--preset", default="paper", choices=["paper", "demo", "quick"],
                   help="grid and sizes (paper: the paper's α grids over every layer)")
    p.add_argument("--layers", default=None, help="layers to sweep, e.g. '0-3' (default: all)")
    p.add_argument("--judge", default="auto", type=judge_choice,
                   help="auto: organism graders for the organism, OpenAI-compatible judge when "
                        "LENSTEER_JUDGE_BASE_URL is set, else the (circular) probe judge; also "
                        "organism, openai, probe, local:<model name or dir>")
    p.add_argument("--judge-cache", default=None,
                   help="SQLite verdict cache of the openai and local judges")
    p.add_argument("--capability", default=None,
                   help="'general', 'organism', an MMLU-format CSV/JSONL path, or 'none'")
    p.add_argument("--capability-limit", type=int, default=None)
    p.add_argument("--max-items", type=int, default=None, help="prompts per split at most")
    p.add_argument("--prompts-per-scenario", type=int, default=None)
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--sample", action="store_true", help="sample (T=0.6, top-p 0.9) instead of greedy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--turns", type=int, default=None, help="multi-turn conversation length")
    p.add_argument("--conversations", type=int, default=None)
    p.add_argument("--no-multiturn", action="store_true")
    p.add_argument("--no-extensions", action="store_true")
    p.add_argument("--no-split", action="store_true",
                   help="sweep and report on the same held-out scenarios")
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    add_chat_arguments(p)  # --benchmarks, --mtbench-limit, --alpaca-limit, --chat-judge, ...
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("demo", help="the main job: locate + evaluate on the organism, one report")
    p.add_argument("--out", default="runs/demo", help="output directory (rerun it to resume)")
    p.add_argument("--quick", action="store_true", help="a CI-sized run (minutes)")
    p.add_argument("--traits", default="honesty,compassion")
    p.add_argument("--model", default="organism")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--no-figures", action="store_true")
    p.set_defaults(func=_cmd_demo)


def _threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def _config(args: argparse.Namespace) -> Any:
    from dataclasses import replace

    from .evaluate import EvaluateConfig

    cfg = EvaluateConfig.preset(args.preset)
    gen = cfg.gen
    if args.max_new_tokens:
        gen = replace(gen, max_new_tokens=args.max_new_tokens)
    if args.batch_size:
        gen = replace(gen, batch_size=args.batch_size)
    gen = replace(gen, greedy=not args.sample, seed=args.seed)
    cfg.gen, cfg.seed = gen, args.seed
    if args.capability is not None:
        cfg.capability = None if args.capability == "none" else args.capability
    for name in ("capability_limit", "max_items", "prompts_per_scenario"):
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    if args.turns is not None:
        cfg.n_turns = args.turns
    if args.conversations is not None:
        cfg.n_conversations = args.conversations
    cfg.multiturn = cfg.multiturn and not args.no_multiturn
    cfg.extensions = cfg.extensions and not args.no_extensions
    cfg.split = not args.no_split
    return cfg


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..locate import LocateResult, _parse_layers, locate
    from ..models import load_model
    from ..traits import load_trait
    from .chatbench import format_side_effects, make_chat_judge, setup_from_args
    from .evaluate import default_judge, directions_by_layer, evaluate
    from .judges import OpenAIJudge, OrganismJudge, ProbeJudge
    from .report import format_main_table

    _threads(args.threads)
    chat = setup_from_args(args)  # the side-effect panel's options, checked before any model loads
    model = load_model(args.model)
    trait = load_trait(args.trait, model=model)
    cfg = _config(args)
    if chat is not None and not chat.mmlu:
        cfg.capability = None
    cfg.layers = _parse_layers(args.layers, int(model.cfg.n_layers))
    out = Path(args.out)
    if args.locate:
        loc = LocateResult.load(args.locate)
    elif (out / "locate" / "sweep.json").exists():
        loc = LocateResult.load(out / "locate")
    else:
        print("no --locate given: running the layer sweep first (lensteer locate)")
        loc = locate(model, trait, layers=cfg.layers)
        loc.save(out / "locate")
    dirs = directions_by_layer(loc)
    if args.judge == "organism":
        judge = OrganismJudge(trait.name)
    elif args.judge == "openai":
        judge = OpenAIJudge(f"{trait.name}: {trait.description}",
                            **({"cache": args.judge_cache} if args.judge_cache else {}))
    elif args.judge.startswith("local:"):
        judge = make_chat_judge(args.judge, f"{trait.name}: {trait.description}",
                                cache=args.judge_cache, like=chat.judge if chat else None)
    elif args.judge == "probe":
        layers = sorted(dirs)
        judge = ProbeJudge(model, dirs[layers[len(layers) // 2]],
                           neutral_system=trait.neutral_prompts[0] if trait.neutral_prompts else None)
    else:
        judge = default_judge(model, trait, dirs)
    res = evaluate(model, trait, dirs, config=cfg, judge=judge, out=out, figures=not args.no_figures,
                   chat=chat.config if chat else None, chat_judge=chat.judge if chat else None)
    print(format_main_table(res))
    if res.get("chat_benchmarks"):
        print("\n" + "\n".join(format_side_effects(res)[2:]))
    print(f"wrote {out / 'results.json'}, {out / 'grid.csv'}, {out / 'report.md'}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .demo import run_demo

    _threads(args.threads)
    traits = [t for t in args.traits.split(",") if t]
    res = run_demo(args.out, quick=args.quick, traits=traits, model_name=args.model,
                   figures=not args.no_figures)
    print("\n" + "\n".join(f"{k:<32} {v:8.1f} s" for k, v in res["timings"].items()))
    print(f"report: {Path(args.out) / 'report.md'}")
    return 0
