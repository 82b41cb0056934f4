"""Multi-turn drift: does steering's effect decay or compound over turns? (docs/drift.md)

Ten-turn conversations under the malicious prompt, steered from the first token, with the KV
cache carried across turns as a chat server keeps it (``--caches carry``), and for comparison
with the conversation re-encoded every turn (``reencode``). Per turn: the trait's exact judge,
the cross-entropy of the reply under the unsteered model with the aligned prompt, 3-gram
repetition across turns and the gate rate. Conditions: aligned, malicious, and every rule in
``all`` and ``response`` modes at its operating point — chosen here by the paper's rule on the
tune split (``--layers``, the paper's α grids), or given with ``--points rule:alpha,...`` at
``--layers L``.

    python docs/drift_study.py --model organism --trait honesty --out runs/drift-organism-honesty
    python docs/drift_study.py --model smollm2-persona --trait honesty --layers 15 \\
        --points swfc:2,sttp:36,stmp:2 --reencode-response-only --conversations 4 \\
        --max-new-tokens 24 --out runs/drift-persona-honesty
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

import lensteer
from lensteer.evaluation import Condition
from lensteer.evaluation.conditions import (
    baseline_conditions,
    build_items,
    run_condition,
    split_scenarios,
)
from lensteer.evaluation.evaluate import default_judge
from lensteer.evaluation.multiturn import MultiturnResult, run_multiturn
from lensteer.evaluation.plots import plot_drift_panels
from lensteer.evaluation.sweep import choose_operating_points, grid_conditions, run_cells
from lensteer.io import write_json
from lensteer.steering import registry


def operating_points(model, trait, dirs, judge, gen, layers, points):
    """{(method, positions): Condition}: given α at one layer, or the paper's rule on the tune split."""
    if points:
        layer = layers[0]
        return {(m, pos): Condition(f"{m}-{pos}", method=m, layer=layer, alpha=a, positions=pos)
                for m, a in points.items() for pos in ("all", "response")}
    scen = split_scenarios(trait, "tune")
    tune = build_items(trait, scen, prompts_per_scenario=max(1, -(-24 // max(1, len(scen)))))

    def compute(cell):
        return run_condition(model, cell, tune, judge, dirs, gen=gen).summary()

    aligned_c, malicious_c = baseline_conditions()
    base = run_cells([aligned_c, malicious_c], compute, progress=False)
    rows = run_cells(grid_conditions(registry.paper_grid(), layers), compute, desc="sweep")
    chosen = choose_operating_points(rows, base[0]["coherence"])
    return {key: Condition(f"{key[0]}-{key[1]}", method=row["method"], layer=row["layer"],
                           alpha=row["alpha"], positions=row["positions"])
            for key, row in chosen.items() if row is not None}


def slope(ys):
    """Least-squares slope per turn of the non-missing values."""
    pts = [(x, y) for x, y in enumerate(ys, 1) if y is not None]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    den = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / den


def fmt(v, nd=1):
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}"


def table(runs: list[MultiturnResult]) -> str:
    """Markdown: per condition and cache, turns 1 / 5 / 10 (or the last) and the per-turn slope."""
    n = runs[0].n_turns
    marks = sorted({1, min(5, n), n})
    head = ("| condition | cache | " + " | ".join(f"trait t{t}" for t in marks) + " | trait slope/turn | "
            + " | ".join(f"CE t{t}" for t in marks) + " | CE slope | "
            + " | ".join(f"repeat t{t}" for t in marks) + " | " + " | ".join(f"gate t{t}" for t in marks) + " |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in runs:
        trait, ce = r.series("trait"), r.series("cross_entropy")
        rep, gate = r.series("across_turns"), r.series("gate_rate")
        cells = ([r.condition["name"], r.cache] + [fmt(trait[t - 1], 0) for t in marks] + [fmt(slope(trait), 2)]
                 + [fmt(ce[t - 1], 2) for t in marks] + [fmt(slope(ce), 3)]
                 + [fmt(rep[t - 1], 2) for t in marks] + [fmt(gate[t - 1], 2) for t in marks])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def recovery_table(runs: list[MultiturnResult]) -> str:
    """Per turn: share of the aligned–malicious trait gap each steered run closes (same cache)."""
    lines = []
    carried = {r.condition["name"]: r for r in runs if r.cache == "carry"}
    for cache in sorted({r.cache for r in runs}):
        group = {r.condition["name"]: r for r in runs if r.cache == cache}
        base = {name: group.get(name, carried.get(name)) for name in ("aligned", "malicious")}
        if None in base.values():
            continue
        al, ma = base["aligned"].series("trait"), base["malicious"].series("trait")
        n = len(al)
        lines.append(f"\n{cache}: recovery per turn (%), (steered − malicious) / (aligned − malicious)\n")
        lines.append("| condition | " + " | ".join(str(t + 1) for t in range(n)) + " | first half | second half |")
        lines.append("|---|" + "---|" * (n + 2))
        for name, r in group.items():
            if name in ("aligned", "malicious"):
                continue
            ys = r.series("trait")
            rec = [None if None in (y, a, m) or a == m else 100 * (y - m) / (a - m)
                   for y, a, m in zip(ys, al, ma)]
            half = n // 2
            first = [v for v in rec[:half] if v is not None]
            second = [v for v in rec[half:] if v is not None]
            lines.append(f"| {name} | " + " | ".join(fmt(v, 0) for v in rec) + f" | "
                         f"{fmt(sum(first) / len(first) if first else None, 0)} | "
                         f"{fmt(sum(second) / len(second) if second else None, 0)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="organism")
    ap.add_argument("--trait", default="honesty")
    ap.add_argument("--layers", default=None, help="comma-separated layers (default: all)")
    ap.add_argument("--points", default=None, help="rule:alpha,... at the first --layers layer")
    ap.add_argument("--caches", default="carry,reencode")
    ap.add_argument("--reencode-response-only", action="store_true",
                    help="re-encode only the response-mode conditions (unsteered and all-position "
                         "steering read the same either way; tests/test_chat_session.py)")
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--conversations", type=int, default=None,
                    help="default: the test split's scenario count, so every turn asks each once")
    ap.add_argument("--max-new-tokens", type=int, default=40)
    ap.add_argument("--locate-scenarios", type=int, default=24)
    ap.add_argument("--out", default="runs/drift")
    ap.add_argument("--figure", default=None, help="PNG path (default: OUT/drift.png)")
    ap.add_argument("--replot", action="store_true", help="only redraw the figure and tables from OUT/drift.json")
    args = ap.parse_args()
    if args.replot:
        saved = json.loads((Path(args.out) / "drift.json").read_text())
        runs = [MultiturnResult.from_dict(r) for r in saved["runs"]]
        report(runs, Path(args.out), args.figure, saved["args"])
        return
    torch.set_num_threads(1)
    t0 = time.process_time()
    out = Path(args.out)
    model = lensteer.load_model(args.model)
    trait = lensteer.load_trait(args.trait, model=model)
    layers = ([int(x) for x in args.layers.split(",")] if args.layers
              else list(range(model.cfg.n_layers)))
    points = ({k: float(v) for k, v in (p.split(":") for p in args.points.split(","))}
              if args.points else None)
    gen = lensteer.GenSettings(max_new_tokens=args.max_new_tokens, greedy=True, batch_size=64)
    loc = lensteer.locate(model, trait, layers=layers, max_scenarios=args.locate_scenarios,
                          n_folds=4, max_new_tokens=24, greedy=True, neutral=False, progress=False)
    dirs = {layer: loc.direction(layer) for layer in layers}
    judge = default_judge(model, trait, dirs)
    chosen = operating_points(model, trait, dirs, judge, gen, layers, points)
    aligned_c, malicious_c = baseline_conditions()
    conditions = [Condition("aligned", side="aligned"), Condition("malicious")]
    conditions += [chosen[(m, pos)] for pos in ("all", "response") for m in registry.rule_names()
                   if (m, pos) in chosen]
    print("conditions:", ", ".join(c.label for c in conditions), flush=True)
    scen = split_scenarios(trait, "test")
    args.conversations = args.conversations or len(scen)
    runs: list[MultiturnResult] = []
    for cache in args.caches.split(","):
        for cond in conditions:
            if cache == "reencode" and args.reencode_response_only and cond.positions != "response":
                continue
            runs.append(run_multiturn(model, cond, trait, judge, dirs, scenarios=scen,
                                      n_conversations=args.conversations, n_turns=args.turns,
                                      gen=gen, cache=cache, cross_entropy=True, plan="rotate",
                                      progress=True))
            r = runs[-1]
            print(f"{cache:8s} {cond.name:14s} trait/turn", [fmt(v, 0) for v in r.series("trait")],
                  "CE", [fmt(v, 2) for v in r.series("cross_entropy")], flush=True)
    cpu = time.process_time() - t0
    write_json(out / "drift.json", {"args": vars(args), "cpu_s": cpu,
                                    "conditions": [c.to_dict() for c in conditions],
                                    "runs": [r.to_dict() for r in runs]})
    report(runs, out, args.figure, vars(args))
    print(json.dumps({"cpu_s": round(cpu, 1)}))


def report(runs: list[MultiturnResult], out: Path, figure: str | None, args: dict) -> None:
    """The figure (every carried run, and the re-encoded runs that can differ: response mode)
    and the markdown tables (OUT/drift.md)."""
    shown = [r for r in runs if r.cache == "carry" or r.condition["positions"] == "response"
             and r.condition["method"]]
    fig = plot_drift_panels(shown)
    fig.suptitle(f"{args['model']} {args['trait']}: per-turn drift ({args['conversations']} "
                 f"conversations, {args['max_new_tokens']} new tokens, greedy; mean and 95 % "
                 "interval)", fontsize=9)
    path = Path(figure) if figure else out / "drift.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    text = table(runs) + "\n" + recovery_table(runs)
    (out / "drift.md").write_text(text + "\n")
    print(text)
    print("figure:", path)


if __name__ == "__main__":
    main()
