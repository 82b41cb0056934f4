"""Benchmark of the operating-point search: successive halving against the exhaustive grid.

For each trait: locate, then the exhaustive grid (every cell on every tune prompt) and
successive halving (``lensteer.evaluation.search``) on the same cells, prompts, judge and
decoding (greedy, packed generation); each search's chosen point per rule and position mode is
then scored on the *test* split. Reports, per (rule, mode), both chosen cells and their
test-split trait scores, and the generation cost of each search in tokens generated
(baselines included) and CPU seconds (one thread).

The grid's per-prompt scores go into ``--json``; ``--grid-from that.json --replay`` then runs
the halving variants on them without generating (greedy decoding gives a cell the same score
on a prompt in any rung), so tie-breaks and floors can be compared in seconds: tokens are
exact, CPU seconds are not measured.

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


def from_key(key: str):
    """The condition of a cell key ``side|rule|L<layer>|a<α>|positions|threshold|calibration``."""
    from lensteer.evaluation.conditions import Condition

    side, method, layer, alpha, positions, threshold, calibration = key.split("|")
    return Condition(key, side=side, method=method, layer=int(layer[1:]), alpha=float(alpha[1:]),
                     positions=positions, threshold=threshold, calibration=calibration)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
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
    ap.add_argument("--variants", default="1:stronger,0:paper",
                    help="halving variants, comma-separated floor_z:ties (the first: the defaults)")
    ap.add_argument("--locate-scenarios", type=int, default=None,
                    help="locate on this many scenarios (24 new tokens, no neutral pass); default: "
                         "locate's defaults")
    ap.add_argument("--json", default=None)
    ap.add_argument("--grid-from", default=None,
                    help="take the grid's cost and chosen points from an earlier --json of the same "
                         "settings (greedy decoding makes them the same) and run only halving")
    ap.add_argument("--replay", action="store_true",
                    help="with --grid-from: run halving on the grid's saved per-prompt scores "
                         "instead of generating")
    a = ap.parse_args()
    if a.replay and not a.grid_from:
        ap.error("--replay replays an earlier grid: give it with --grid-from FILE.json")
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
    from lensteer.evaluation.evaluate import default_judge, default_prior, directions_by_layer
    from lensteer.evaluation.search import replay
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

        def many(group, its=tune):  # a cell's means, and its per-prompt scores for --replay
            return [{**r.summary(), "items": r.per_item()}
                    for r in run_conditions(model, group, its, judge, dirs, gen=gen)]

        grid_items = None
        if a.grid_from:  # the grid of an earlier run with the same settings (greedy: the same rows)
            with open(a.grid_from) as fh:
                earlier = json.load(fh)["traits"][name]
            grid_tokens, grid_s = earlier["grid"]["tokens"], earlier["grid"]["cpu_s"]
            grid_chosen = {(p["method"], p["positions"]): None if p["grid"] is None else
                           {**from_key(p["grid"]).to_dict(), "key": p["grid"]} for p in earlier["points"]}
            grid_items = earlier.get("grid_items")
            if a.replay and (grid_items is None or len(grid_items[aligned.key]["trait"]) != len(tune)):
                raise SystemExit(f"{a.grid_from} holds no per-prompt scores for these {len(tune)} tune "
                                 "prompts: rerun its grid with this version of the script.")
        else:
            t0 = time.process_time()
            base = run_cells([aligned, malicious], compute_many=many, cells_per_batch=2, progress=False)
            rows = run_cells(cells, compute_many=many,
                             cells_per_batch=auto_cells_per_batch(len(tune), a.batch_size),
                             progress=True, desc=f"grid {name}")
            grid_chosen = choose_operating_points(rows, base[0]["coherence"])
            grid_s = time.process_time() - t0
            grid_tokens = sum(r["tokens"] for r in rows + base)
            grid_items = {r["key"]: r["items"] for r in base + rows}

        def per_item(group, its):
            return [r.per_item() for r in run_conditions(model, group, its, judge, dirs, gen=gen)]

        if a.replay:  # the grid's scores on these prompts: what generating them would give
            assert grid_items is not None
            per_item = replay(grid_items, tune)

        variants = []
        for variant in a.variants.split(","):
            z_text, ties = variant.split(":")
            t0 = time.process_time()
            cfg = HalvingConfig(start_items=a.start_items, eta=a.eta, top_layers=a.top_layers,
                                seed=a.seed, floor_z=float(z_text), ties=ties)
            z = variant
            found = successive_halving(cells, tune, per_item, baselines=(aligned, malicious), config=cfg,
                                       prior=default_prior(loc),
                                       cells_per_batch=auto_cells_per_batch(a.start_items, a.batch_size),
                                       desc=f"halving {name} {variant}")
            variants.append((z, found, time.process_time() - t0))

        # the chosen points on the test split (packed: one generation for all of them)
        picks = [grid_chosen] + [found.chosen for _, found, _ in variants]
        distinct = {c.key: c for chosen in picks for c in
                    (Condition.from_dict(r) for r in chosen.values() if r is not None)}
        on_test = run_conditions(model, [aligned, malicious, *distinct.values()], test, judge, dirs, gen=gen)
        base_test = [r.summary() for r in on_test[:2]]
        test_trait = {k: r.summary()["trait"] for k, r in zip(distinct, on_test[2:])}
        key_of = lambda r: None if r is None else r["key"]
        points = []
        for group, g in grid_chosen.items():
            gk = key_of(g)
            entry = {"method": group[0], "positions": group[1], "grid": gk,
                     "grid_test_trait": None if gk is None else test_trait[gk], "halving": []}
            for z, found, _ in variants:
                hk = key_of(found.chosen.get(group))
                ht = None if hk is None else test_trait[hk]
                entry["halving"].append({"variant": z, "point": hk, "test_trait": ht, "difference":
                                         None if ht is None or gk is None else ht - test_trait[gk]})
            points.append(entry)
        report["traits"][name] = {
            "cells": len(cells), "tune_items": len(tune), "test_items": len(test),
            "layers": sorted(dirs), "locate_cpu_s": locate_s,
            "grid": {"tokens": grid_tokens, "cpu_s": grid_s},
            "halving": [{"variant": z, "tokens": found.tokens, "cpu_s": None if a.replay else s,
                         "rungs": found.rungs, "config": found.config,
                         "cost_ratio_tokens": found.tokens / grid_tokens,
                         "cost_ratio_cpu": None if a.replay else s / grid_s} for z, found, s in variants],
            "test_baselines": {"aligned": base_test[0]["trait"], "malicious": base_test[1]["trait"]},
            "points": points,
            "grid_items": grid_items,
        }
        print(f"\n{name}: {len(cells)} cells, {len(tune)} tune / {len(test)} test prompts; "
              f"test baselines aligned {base_test[0]['trait']:.1f}, malicious {base_test[1]['trait']:.1f}; "
              f"grid {grid_tokens:,} tokens, {grid_s:.0f} CPU s")
        for z, found, s in variants:
            print(f"halving {z}: {found.tokens:,} tokens ({100 * found.tokens / grid_tokens:.1f} %), "
                  + ("replayed" if a.replay else f"{s:.0f} CPU s"))
        f = lambda x: "–" if x is None else f"{x:.1f}"
        short = lambda k: "–" if k is None else "/".join(k.split("|")[1:4])
        print("| rule | mode | grid point | test trait | " + " | ".join(
            f"halving {z} | test trait | Δ" for z, _, _ in variants) + " |")
        print("|---|---|---|---|" + "---|---|---|" * len(variants))
        for p in points:
            print(f"| {p['method']} | {p['positions']} | {short(p['grid'])} | {f(p['grid_test_trait'])} | "
                  + " | ".join(f"{short(h['point'])} | {f(h['test_trait'])} | {f(h['difference'])}"
                               for h in p["halving"]) + " |")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(report, fh, indent=1)


if __name__ == "__main__":
    main()
