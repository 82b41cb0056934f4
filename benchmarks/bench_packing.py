"""Benchmark of packed sweep cells: cells per second with several cells' prompts in one
generation (``run_conditions``) against one generation per cell (``run_condition``), on the same
cells and prompts, interleaved, in one process on one thread; CPU time (``time.process_time``).

    python benchmarks/bench_packing.py --model organism --trait honesty
    python benchmarks/bench_packing.py --model smollm2-persona --trait honesty --layers 6,12,18 \\
        --cells 12 --items 8 --max-new-tokens 24 --repeats 2

Each cell is a (rule, α, layer) of a small grid (SwFC, StTP, StMP; ``--cells`` of them) under the
malicious prompt with ``--items`` tune prompts, generated greedily with the KV cache and scored
by the model's exact judge; packing puts ``batch_size // items`` cells into one generation. The
script also checks that both ways give every cell the same tokens and scores. A third arm,
``packed, rows kept``, runs the packed generations with finished rows still computed to the end
(``drop_finished=False``): the ratio ``packed, rows kept`` / ``packed`` is what dropping finished
rows from greedy decoding saves.
"""
from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import platform
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--model", default="organism")
    ap.add_argument("--trait", default="honesty")
    ap.add_argument("--layers", default=None, help="layers to locate and steer (default: all)")
    ap.add_argument("--cells", type=int, default=24)
    ap.add_argument("--items", type=int, default=8, help="prompts per cell")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    import lensteer
    from lensteer.evaluation import GenSettings, build_items, run_condition, run_conditions
    from lensteer.evaluation.conditions import split_scenarios
    from lensteer.evaluation.evaluate import default_judge, directions_by_layer
    from lensteer.evaluation.sweep import auto_cells_per_batch, grid_conditions

    model = lensteer.load_model(a.model)
    trait = lensteer.load_trait(a.trait, model=model)
    layers = None if a.layers is None else [int(x) for x in a.layers.split(",")]
    loc = lensteer.locate(model, trait, layers=layers, max_scenarios=16, n_folds=2,
                          max_new_tokens=16, greedy=True, neutral=False, per_token=False,
                          progress=False)
    dirs = directions_by_layer(loc)
    judge = default_judge(model, trait, dirs)
    items = build_items(trait, split_scenarios(trait, "tune"), prompts_per_scenario=1)[:a.items]
    grid = {"swfc": [2.0, 4.0], "sttp": [12.0, 24.0], "stmp": [1.0, 2.0]}
    every = grid_conditions(grid, sorted(dirs), ["all", "response"])
    # a spread of rules, layers, α and modes: every k-th cell of the grid
    step = max(1, len(every) // a.cells)
    cells = list(itertools.islice(every[::step], a.cells))
    gen = GenSettings(max_new_tokens=a.max_new_tokens, batch_size=a.batch_size)
    pack = auto_cells_per_batch(len(items), a.batch_size)

    def unpacked():
        return [run_condition(model, c, items, judge, dirs, gen=gen).summary() for c in cells]

    def packed():
        out = []
        for i in range(0, len(cells), pack):
            out += [r.summary() for r in run_conditions(model, cells[i:i + pack], items, judge, dirs, gen=gen)]
        return out

    from lensteer.generation import fast

    dropping = fast.generate_tokens

    def packed_rows_kept():
        fast.generate_tokens = functools.partial(dropping, drop_finished=False)
        try:
            return packed()
        finally:
            fast.generate_tokens = dropping

    arms = {"unpacked": unpacked, "packed": packed, "packed, rows kept": packed_rows_kept}
    times: dict[str, list[float]] = {name: [] for name in arms}
    results = {}
    for rep in range(a.repeats):  # interleaved, the order rotating
        names = list(arms)[rep % 3:] + list(arms)[:rep % 3]
        for name in names:
            t0 = time.process_time()
            results[name] = arms[name]()
            times[name].append(time.process_time() - t0)
    keys = ("trait", "coherence", "length", "finished", "n", "tokens")
    same = all(all(u[k] == p[k] == q[k] for k in keys) for u, p, q in zip(
        results["unpacked"], results["packed"], results["packed, rows kept"]))
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {
        "model": a.model, "trait": a.trait, "cells": len(cells), "prompts_per_cell": len(items),
        "batch_size": a.batch_size, "cells_per_batch": pack, "max_new_tokens": a.max_new_tokens,
        "tokens": sum(r["tokens"] for r in results["packed"]),
        "cpu_s": times, "cells_per_s": {k: len(cells) / v for k, v in med.items()},
        "speedup": med["unpacked"] / med["packed"],
        "dropping_finished_rows_speedup": med["packed, rows kept"] / med["packed"],
        "identical_scores": same,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, 1 thread",
    }
    print(json.dumps(out, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
