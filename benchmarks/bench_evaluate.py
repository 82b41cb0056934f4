"""Benchmark of the Evaluate stage: ``lensteer demo`` per stage on the organism (the paper's α
grids over every layer and both position modes, for both traits), or one ``lensteer evaluate``
with the full ``paper`` preset (every held-out paraphrase).

    python benchmarks/bench_evaluate.py --out runs/bench-demo --json runs/bench_evaluate.json
    python benchmarks/bench_evaluate.py --paper --traits honesty --out runs/bench-paper

Timings are wall clock with ``--threads`` torch threads (default 1: the 2-core machine is shared).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/bench-evaluate")
    ap.add_argument("--traits", default="honesty,compassion")
    ap.add_argument("--model", default="organism", help="'organism' or an organism checkpoint dir")
    ap.add_argument("--paper", action="store_true", help="evaluate with the full paper preset")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from lensteer.evaluation.demo import run_demo

    traits = [t for t in a.traits.split(",") if t]
    t0 = time.perf_counter()
    if a.paper:
        import lensteer
        from lensteer.evaluation import EvaluateConfig, evaluate

        model = lensteer.load_model(a.model)
        timings, cells = {}, {}
        for trait in traits:
            s = time.perf_counter()
            spec = lensteer.load_trait(trait, model="organism")
            loc = lensteer.locate(model, spec, progress=False)
            timings[f"locate {trait}"] = time.perf_counter() - s
            res = evaluate(model, spec, loc, config=EvaluateConfig.preset("paper"),
                           out=f"{a.out}/{trait}", progress=False)
            for k, v in res["timings"].items():
                timings[f"{trait}: {k}"] = v
            cells[trait] = {"cells": res["sweep"]["n_cells"], "tune_items": res["items"]["tune"]}
        out = {"mode": "paper", "timings": timings, "cells": cells}
    else:
        res = run_demo(a.out, traits=traits, model_name=a.model, progress=False)
        out = {"mode": "demo", "timings": res["timings"],
               "cells": {t: {"cells": r["sweep"]["n_cells"], "tune_items": r["items"]["tune"],
                             "extension_cells": len(r["extensions"]["rows"])}
                         for t, r in res["results"].items()}}
    out["total_s"] = time.perf_counter() - t0
    out["threads"] = a.threads
    out["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    print(json.dumps(out, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
