"""``lensteer evaluate`` and ``lensteer demo``.

    $ lensteer evaluate --model organism --trait honesty --out runs/ev-honesty
    $ lensteer evaluate --model organism --trait honesty --locate runs/loc --preset quick --out runs/q
    $ lensteer evaluate ... --benchmarks mmlu,mtbench,alpaca --chat-judge openai --mtbench-limit 16
    $ lensteer demo --out runs/demo [--quick]
"""
from __future__ import annotations

import argparse
import contextlib
from typing import Any

from ..cli_args import add_model_options, layer_spec, load_model_from_args, positive_int, ratio
from ..errors import UsageError
from .chatbench import add_arguments as add_chat_arguments
from .chatbench import judge_choice
from .search import TIES


def add_parser(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="operating-point sweep + evaluation report for one trait")
    p.add_argument("--model", required=True, help="bundled name, local directory or hub id")
    p.add_argument("--trait", required=True, help="trait name or trait JSON file")
    p.add_argument("--out", required=True,
                   help="output folder (rerun the same command to resume; results.json marks a "
                        "finished run)")
    p.add_argument("--locate", default=None,
                   help="a `lensteer locate` output directory (default: run locate into OUT/locate)")
    p.add_argument("--preset", default="paper", choices=["paper", "demo", "quick"],
                   help="grid and sizes (paper: the paper's α grids over every layer)")
    p.add_argument("--layers", type=layer_spec, default=None,
                   help="layers to sweep: '3', '0-2', '1,3,5', '-1' or 'all' "
                        "(default: every layer with a direction)")
    p.add_argument("--judge", default="auto", type=judge_choice,
                   help="auto: organism graders for the organism, OpenAI-compatible judge when "
                        "LENSTEER_JUDGE_BASE_URL is set, else the (circular) probe judge; also "
                        "organism, openai, probe, local:<model name or dir>")
    p.add_argument("--judge-cache", default=None,
                   help="SQLite verdict cache of the openai and local judges (default: "
                        "$LENSTEER_JUDGE_CACHE, else $LENSTEER_CACHE/judge/verdicts.sqlite)")
    p.add_argument("--capability", default=None,
                   help="'general', 'organism', an MMLU-format CSV/JSONL path, or 'none' "
                        "(default: the preset's)")
    p.add_argument("--capability-limit", type=positive_int, default=None,
                   help="capability questions at most (default: the preset's)")
    p.add_argument("--max-items", type=positive_int, default=None,
                   help="prompts per split at most (default: the preset's)")
    p.add_argument("--prompts-per-scenario", type=positive_int, default=None,
                   help="eval paraphrases per scenario (default: the preset's)")
    p.add_argument("--max-new-tokens", type=positive_int, default=None,
                   help="response length limit (default: the preset's)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="sequences per batch (default: the preset's)")
    p.add_argument("--search", default="grid", choices=["grid", "halving"],
                   help="grid: every cell on every tune prompt; halving: successive halving (all "
                        "cells on a few prompts, the best third per rule and mode on 3× the "
                        "prompts, ...; see docs/search.md)")
    p.add_argument("--halving-start", type=positive_int, default=None,
                   help="with --search halving: prompts per cell in the first rung (default: 4)")
    p.add_argument("--coherence-ratio", type=ratio, default=None,
                   help="the selection rule's floor: a cell must reach this share of the aligned "
                        "baseline's coherence (default: 0.9, the paper's; 0: no floor)")
    p.add_argument("--halving-ties", choices=TIES, default=None,
                   help="with --search halving: how a rung prunes cells of equal trait score — "
                        "stronger: the larger α goes on (default); paper: the selection rule's "
                        "order; both: the survivors of either (1.1-1.5x the tokens on the measured grids; "
                        "docs/search.md)")
    p.add_argument("--top-layers", type=positive_int, default=None,
                   help="with --search halving: start only the cells at the K layers the prior "
                        "(the teacher-forced effect, else the probe's Cohen's d) scores best")
    p.add_argument("--cells-per-batch", type=positive_int, default=None,
                   help="sweep cells packed into one generation (default: as many as fill a "
                        "batch; 1: one cell per generation; sampling always runs one by one)")
    p.add_argument("--sample", action="store_true", help="sample (T=0.6, top-p 0.9) instead of greedy")
    p.add_argument("--seed", type=int, default=0, help="sampling and bootstrap seed")
    p.add_argument("--turns", type=positive_int, default=None,
                   help="multi-turn conversation length (default: the preset's)")
    p.add_argument("--conversations", type=positive_int, default=None,
                   help="multi-turn conversations (default: the preset's)")
    p.add_argument("--no-multiturn", action="store_true", help="skip the multi-turn rollouts")
    p.add_argument("--multiturn-cache", choices=("reencode", "carry"), default=None,
                   help="multi-turn context: re-encode the conversation each turn (default) or "
                        "carry the KV cache across turns, as a chat server does")
    p.add_argument("--no-extensions", action="store_true",
                   help="skip per-token calibration and percentile thresholds")
    p.add_argument("--no-split", action="store_true",
                   help="sweep and report on the same held-out scenarios")
    p.add_argument("--no-figures", action="store_true", help="write no figures")
    add_chat_arguments(p)  # --benchmarks, --mtbench-limit, --alpaca-limit, --chat-judge, ...
    add_model_options(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("demo", help="the main job: locate + evaluate on the organism, one report")
    p.add_argument("--out", default="runs/demo", help="output folder (rerun it to resume)")
    p.add_argument("--quick", action="store_true", help="a CI-sized run (minutes)")
    p.add_argument("--traits", default="honesty,compassion", help="comma-separated organism traits")
    p.add_argument("--model", default="organism", help="'organism' or an organism checkpoint folder")
    p.add_argument("--no-figures", action="store_true", help="write no figures")
    add_model_options(p)
    p.set_defaults(func=_cmd_demo)


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
    if args.search != "halving" and (args.halving_start or args.top_layers or args.halving_ties):
        raise UsageError("--halving-start, --halving-ties and --top-layers only apply to --search "
                         "halving: add --search halving or drop them.")
    cfg.search = args.search
    cfg.halving = replace(cfg.halving, seed=args.seed,
                          **({"start_items": args.halving_start} if args.halving_start else {}),
                          **({"top_layers": args.top_layers} if args.top_layers else {}),
                          **({"ties": args.halving_ties} if args.halving_ties else {}))
    cfg.cells_per_batch = args.cells_per_batch
    if args.coherence_ratio is not None:
        cfg.coherence_ratio = args.coherence_ratio
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
    if args.multiturn_cache is not None:
        cfg.multiturn_cache = args.multiturn_cache
    cfg.extensions = cfg.extensions and not args.no_extensions
    cfg.split = not args.no_split
    return cfg


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ..layers import parse_layers
    from ..locate import LocateResult, locate
    from ..outdir import check_out, claim, lock_out
    from ..traits import load_trait
    from .capability import load_mc
    from .chatbench import format_side_effects, make_chat_judge, setup_from_args
    from .evaluate import default_judge, directions_by_layer, evaluate
    from .judges import OpenAIJudge, OrganismJudge, ProbeJudge
    from .report import format_main_table
    from .sweep import check_checkpoint

    # files and settings first: nothing below may fail after the sweep has started
    out = check_out(args.out, "evaluate")
    chat = setup_from_args(args)  # the side-effect panel's options, checked before any model loads
    cfg = _config(args)
    if chat is not None and not chat.mmlu:
        cfg.capability = None
    if cfg.capability not in (None, "auto"):
        load_mc(cfg.capability, limit=cfg.capability_limit)
    loc = None
    if args.locate:
        loc = LocateResult.load(args.locate)
    elif (out / "locate" / "sweep.json").exists():
        loc = LocateResult.load(out / "locate")
    check_checkpoint(out / "sweep_cells.jsonl")
    check_checkpoint(out / "search_cells.jsonl")
    with lock_out(out):
        model = load_model_from_args(args)
        trait = load_trait(args.trait, model=model)
        if args.layers:
            cfg.layers = parse_layers(args.layers, int(model.cfg.n_layers))
        if loc is not None:
            dirs = directions_by_layer(loc)
            for d in dirs.values():
                d.check_model(model)
            missing = [layer for layer in cfg.layers or [] if layer not in dirs]
            if missing:
                raise UsageError(
                    f"--layers {args.layers}: the locate result has no direction at layer(s) "
                    f"{missing}; it has {sorted(dirs)}. Pick from those, or locate the others."
                )
        judge = None
        if args.judge == "organism":
            judge = OrganismJudge(trait.name)
        elif args.judge == "openai":
            judge = OpenAIJudge(f"{trait.name}: {trait.description}",
                                **({"cache": args.judge_cache} if args.judge_cache else {}))
        elif args.judge.startswith("local:"):
            judge = make_chat_judge(args.judge, f"{trait.name}: {trait.description}",
                                    cache=args.judge_cache, like=chat.judge if chat else None)
        claim(out, "evaluate")
        if loc is None:
            print("no --locate given: running the layer sweep first (lensteer locate)")
            loc = locate(model, trait, layers=cfg.layers)
            loc.save(out / "locate")
        dirs = directions_by_layer(loc)
        if args.judge == "probe":
            layers = sorted(dirs)
            judge = ProbeJudge(model, dirs[layers[len(layers) // 2]],
                               neutral_system=trait.neutral_prompts[0] if trait.neutral_prompts else None)
        elif judge is None:
            judge = default_judge(model, trait, dirs)
        res = evaluate(model, trait, loc, config=cfg, judge=judge, out=out,
                       figures=not args.no_figures,
                       chat=chat.config if chat else None, chat_judge=chat.judge if chat else None)
    print(format_main_table(res))
    if res.get("chat_benchmarks"):
        print("\n" + "\n".join(format_side_effects(res)[2:]))
    print(f"wrote {out / 'results.json'}, {out / 'grid.csv'}, {out / 'report.md'}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..locate import LocateResult
    from ..models import _resolve
    from ..outdir import check_out, claim, lock_out
    from ..traits import load_trait
    from .demo import run_demo
    from .sweep import check_checkpoint

    out = check_out(args.out, "demo")
    traits = [t.strip() for t in args.traits.split(",") if t.strip()]
    if not traits:
        raise UsageError("--traits names no trait: pass e.g. 'honesty,compassion'.")
    for trait in traits:  # names, earlier runs' files: everything that can fail cheaply
        load_trait(trait, model="organism")
        if (out / trait / "locate" / "sweep.json").exists():
            LocateResult.load(out / trait / "locate")
        check_checkpoint(out / trait / "sweep_cells.jsonl")
    _resolve(args.model)  # a model that does not exist fails here, not after claiming OUT
    with lock_out(out), contextlib.ExitStack() as stack:
        claim(out, "demo")
        for trait in traits:  # a `lensteer evaluate` into a trait folder waits its turn too
            stack.enter_context(lock_out(out / trait))
        res = run_demo(out, quick=args.quick, traits=traits, model_name=args.model,
                       device=args.device, backend=args.backend,
                       figures=not args.no_figures)
    print("\n" + "\n".join(f"{k:<32} {v:8.1f} s" for k, v in res["timings"].items()))
    print(f"report: {out / 'report.md'}")
    return 0
