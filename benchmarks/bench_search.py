"""Benchmark of the operating-point search: successive halving against the exhaustive grid.

For each trait: locate, then the exhaustive grid (every cell on every tune prompt) and
successive halving (``lensteer.evaluation.search``) on the same cells, prompts, judge and
decoding (greedy, packed generation); each search's chosen point per rule and position mode is
then scored on the *test* split. Reports, per (rule, mode), both chosen cells and their
test-split trait scores, and the generation cost of each search in tokens generated
(baselines included) and CPU seconds (one thread).

    python benchmarks/bench_search.py --model organism --traits honesty,compassion
    python benchmarks/bench_search.py --model smollm2-persona --traits honesty \\
        --layers 3,6,9,12,15,18,21 --grid "sttp=6,12,24,36;stmp=1,2,3;swfc=1,2,4" \\
        --positions all --max-items 24 --max-new-tokens 24 --start-items 2 --locate-scenarios 24

Defaults: the paper preset (the paper's α grids over every layer, both position modes, every
eval paraphrase; 40 new tokens).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def parse_grid(spec: str | None) -> dict[str, list[float]] | None:
    if not spec:
        return None
    grid = {}
    for part in spec.split(";"):
        rule, alphas = part.split("=")
        grid[rule.strip()] = [float(x) for x in alphas.split(",")]
    return grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="organism")
    ap.add_argument("--traits", default="honesty,compassion")
    ap.add_argument("--layers", default=None, help="comma-separated (default: every layer)")
    ap.add_argument("--grid", default=None, help="'rule=α,α;rule=α' (default: the paper's grids)")
    ap.add_argument("--positions", default="all,response")
    ap.add_argument("--prompts-per-scenario", type=int, default=None)
    ap.add_argument("--max-items", type=int, default=None, help="prompts per split at most")
    ap.add_argument("--max-new-tokens", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--start-items", type=int, default=4)
    ap.add_argument("--eta", type=int, default=3)
    ap.add_argument("--top-layers", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--locate-scenarios", type=int, default=None,
                    help="locate on this many scenarios (24 new tokens, no neutral pass); default: "
                         "locate's defaults")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    import lensteer
    from lensteer.evaluation import (
        GenSettings,
        HalvingConfig,
        build_items,
        choose_operating_points,
        grid_conditions,
        run_cells,
        run_conditions,
        successive_halving,
    )
    from lensteer.evaluation.conditions import Condition, baseline_conditions, split_scenarios
    from lensteer.evaluation.evaluate import default_judge, directions_by_layer, probe_prior
    from lensteer.evaluation.sweep import auto_cells_per_batch
    from lensteer.steering import registry

    model = lensteer.load_model(a.model)
    layers = None if a.layers is None else [int(x) for x in a.layers.split(",")]
    grid_spec = parse_grid(a.grid) or registry.paper_grid()
    positions = a.positions.split(",")
    gen = GenSettings(max_new_tokens=a.max_new_tokens, batch_size=a.batch_size)
    report = {"model": a.model, "args": vars(a), "traits": {},
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, 1 thread"}
    for name in a.traits.split(","):
        trait = lensteer.load_trait(name, model=model)
        t0 = time.process_time()
        loc = lensteer.locate(model, trait, layers=layers, progress=False,
                              **({"max_scenarios": a.locate_scenarios, "max_new_tokens": 24,
                                  "neutral": False} if a.locate_scenarios else {}))
        locate_s = time.process_time() - t0
        dirs = directions_by_layer(loc)
        judge = default_judge(model, trait, dirs)
        tune, test = (build_items(trait, split_scenarios(trait, part), prompts_per_scenario=a.prompts_per_scenario,
                                  limit=a.max_items) for part in ("tune", "test"))
        cells = grid_conditions(grid_spec, sorted(dirs), positions)
        aligned, malicious = baseline_conditions()

        def many(group, its=tune):
            return [r.summary() for r in run_conditions(model, group, its, judge, dirs, gen=gen)]

        t0 = time.process_time()
        base = run_cells([aligned, malicious], compute_many=many, cells_per_batch=2, progress=False)
        rows = run_cells(cells, compute_many=many, cells_per_batch=auto_cells_per_batch(len(tune), a.batch_size),
                         progress=True, desc=f"grid {name}")
        grid_chosen = choose_operating_points(rows, base[0]["coherence"])
        grid_s = time.process_time() - t0
        grid_tokens = sum(r["tokens"] for r in rows + base)

        def per_item(group, its):
            return [r.per_item() for r in run_conditions(model, group, its, judge, dirs, gen=gen)]

        t0 = time.process_time()
        cfg = HalvingConfig(start_items=a.start_items, eta=a.eta, top_layers=a.top_layers, seed=a.seed)
        found = successive_halving(cells, tune, per_item, baselines=(aligned, malicious), config=cfg,
                                   prior=probe_prior(loc),
                                   cells_per_batch=auto_cells_per_batch(a.start_items, a.batch_size),
                                   desc=f"halving {name}")
        halving_s = time.process_time() - t0

        # the chosen points on the test split (packed: one generation for all of them)
        chosen = {}
        for key in grid_chosen:
            g, h = grid_chosen[key], found.chosen.get(key)
            chosen[key] = (None if g is None else Condition.from_dict(g), None if h is None else Condition.from_dict(h))
        distinct = {c.key: c for pair in chosen.values() for c in pair if c is not None}
        on_test = run_conditions(model, [aligned, malicious, *distinct.values()], test, judge, dirs, gen=gen)
        base_test = [r.summary() for r in on_test[:2]]
        test_runs = dict(zip(distinct, on_test[2:]))
        points = []
        for (method, pos), (g, h) in chosen.items():
            gt = None if g is None else test_runs[g.key].summary()["trait"]
            ht = None if h is None else test_runs[h.key].summary()["trait"]
            points.append({"method": method, "positions": pos,
                           "grid": None if g is None else g.key, "grid_test_trait": gt,
                           "halving": None if h is None else h.key, "halving_test_trait": ht,
                           "difference": None if gt is None or ht is None else ht - gt})
        report["traits"][name] = {
            "cells": len(cells), "tune_items": len(tune), "test_items": len(test),
            "layers": sorted(dirs), "locate_cpu_s": locate_s,
            "grid": {"tokens": grid_tokens, "cpu_s": grid_s},
            "halving": {"tokens": found.tokens, "cpu_s": halving_s, "rungs": found.rungs,
                        "config": found.config},
            "cost_ratio_tokens": found.tokens / grid_tokens, "cost_ratio_cpu": halving_s / grid_s,
            "test_baselines": {"aligned": base_test[0]["trait"], "malicious": base_test[1]["trait"]},
            "points": points,
        }
        print(f"\n{name}: {len(cells)} cells, {len(tune)} tune / {len(test)} test prompts; "
              f"tokens grid {grid_tokens:,} vs halving {found.tokens:,} "
              f"({100 * found.tokens / grid_tokens:.1f} %); CPU {grid_s:.0f} s vs {halving_s:.0f} s")
        print("| rule | mode | grid point | test trait | halving point | test trait | Δ |")
        print("|---|---|---|---|---|---|---|")
        f = lambda x: "–" if x is None else f"{x:.1f}"
        short = lambda k: "–" if k is None else "/".join(k.split("|")[1:4])
        for p in points:
            print(f"| {p['method']} | {p['positions']} | {short(p['grid'])} | {f(p['grid_test_trait'])} | "
                  f"{short(p['halving'])} | {f(p['halving_test_trait'])} | {f(p['difference'])} |")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(report, fh, indent=1)


if __name__ == "__main__":
    main()
