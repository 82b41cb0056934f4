"""Do the steerability predictors of ``lensteer locate`` rank layers the way steering does?

For each model and trait: ``locate`` every swept layer (probe metrics and predictors), measure
per layer the best recovery a steering grid reaches there
(:func:`lensteer.evaluation.sweep.recovery_by_layer`: the share of the aligned–malicious gap
closed by the best cell at that layer whose coherence is ≥ 90 % of the aligned baseline's), and
print Spearman's rank correlation of each predictor (and, for comparison, each probe metric)
with that recovery across layers.

- organism, honesty and compassion: every layer, the paper's grid (SwFC α 1–5, StTP α 0–36,
  StMP α 1–4) × position modes all/response, on the tune half of the eval scenarios with every
  eval paraphrase, exact judge, greedy (as ``lensteer evaluate`` sweeps).
- smollm2-persona, honesty: the locate settings of ``docs/persona_sweep.py`` (layers 3–21 step
  3, 24 training questions) and the per-layer truthful rates that script measured (recorded in
  docs/persona.md, *Where steering works*): 4 cells per layer (StTP α 12/36, StMP α 2, SwFC α 2)
  on 16 held-out questions, no coherence floor (the script grades truthfulness only). Pass
  ``--skip-persona`` to leave it out.

    python docs/predictors_study.py                 # prints the tables; about 4 CPU-min
"""
from __future__ import annotations

import argparse
import time

import torch

import lensteer
from lensteer.evaluation.conditions import (
    baseline_conditions,
    build_items,
    run_condition,
    split_scenarios,
)
from lensteer.evaluation.evaluate import default_judge, directions_by_layer
from lensteer.evaluation.sweep import grid_conditions, recovery_by_layer, run_cells
from lensteer.locate.predictors import spearman
from lensteer.steering import registry

COLUMNS = ["tf_effect", "diff_consistency", "sign_split_pairs", "auroc", "cohens_d", "cos_mean_diff"]

#: docs/persona.md, "Where steering works" (python docs/persona_sweep.py, bundled adapter,
#: recipe 7): truthful answers out of 16 per layer and cell (StTP α 12, StTP α 36, StMP α 2,
#: SwFC α 2) under a held-out malicious prompt (the page prints them as percentages:
#: 68.8 % = 11/16); aligned 11/16, malicious unsteered 0/16.
PERSONA_SWEEP = {3: [0, 0, 0, 0], 6: [0, 0, 0, 0], 9: [0, 1, 0, 0], 12: [0, 0, 0, 0],
                 15: [11, 5, 8, 7], 18: [8, 5, 6, 6], 21: [5, 3, 7, 5]}
PERSONA_BASELINES = (11, 0)


def organism_recovery(model, trait, located):
    dirs = directions_by_layer(located)
    judge = default_judge(model, trait, dirs)
    tune = build_items(trait, split_scenarios(trait, "tune"))
    compute = lambda cell: run_condition(model, cell, tune, judge, dirs).summary()  # noqa: E731
    aligned, malicious = run_cells(list(baseline_conditions()), compute, progress=False)
    cells = grid_conditions(registry.paper_grid(), sorted(dirs), ["all", "response"])
    rows = run_cells(cells, compute, desc=f"grid {trait.name}")
    return (recovery_by_layer(rows, aligned, malicious),
            recovery_by_layer(rows, {**aligned, "coherence": None}, malicious), len(cells), len(tune))


def persona_recovery():
    al, mal = PERSONA_BASELINES
    return {layer: max(0.0, (max(cells) - mal) / (al - mal)) for layer, cells in PERSONA_SWEEP.items()}


def ceiling(recovery):
    """The best ρ any predictor can reach: one that orders the layers exactly as the recovery
    does (ties in the recovery broken arbitrarily, which cannot be ranked right)."""
    layers = sorted(recovery)
    order = sorted(layers, key=lambda layer: recovery[layer])
    return spearman([order.index(layer) for layer in layers], [recovery[layer] for layer in layers])


def report(name, located, recovery, unfloored=None):
    layers = sorted(recovery)
    print(f"\n## {name}\n")
    extra = " recovery, no floor |" if unfloored else ""
    print("| layer | recovery |" + extra + " " + " | ".join(COLUMNS) + " |")
    print("|---:|---:|" + ("---:|" if unfloored else "") + "---:|" * len(COLUMNS))
    values = {c: located.predictor(c) for c in COLUMNS}
    for layer in layers:
        cells = [f"{values[c].get(layer, float('nan')):.3g}" for c in COLUMNS]
        more = f" {unfloored[layer]:.2f} |" if unfloored else ""
        print(f"| {layer} | {recovery[layer]:.2f} |{more} " + " | ".join(cells) + " |")
    rho = {}
    for c in COLUMNS + ["ceiling"]:
        xs = [values[c].get(layer, float("nan")) for layer in layers] if c != "ceiling" else None
        rho[c] = (ceiling(recovery) if xs is None else
                  spearman(xs, [recovery[layer] for layer in layers]))
    pad = " |" if unfloored else ""
    print(f"| **Spearman ρ** (ceiling {rho['ceiling']:+.2f}) | |{pad} "
          + " | ".join(f"**{rho[c]:+.2f}**" for c in COLUMNS) + " |")
    if unfloored:
        free = {c: spearman([values[c].get(layer, float("nan")) for layer in layers],
                            [unfloored[layer] for layer in layers]) for c in COLUMNS}
        print(f"| Spearman ρ, no floor (ceiling {ceiling(unfloored):+.2f}) | |{pad} "
              + " | ".join(f"{free[c]:+.2f}" for c in COLUMNS) + " |")
    return rho


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-persona", action="store_true")
    parser.add_argument("--tf-pairs", default="32",
                        help="pairs the teacher-forced effect scores ('all' or a number; locate's default 32)")
    args = parser.parse_args()
    tf_pairs = None if args.tf_pairs == "all" else int(args.tf_pairs)
    torch.set_num_threads(1)
    wall, cpu = time.time(), time.process_time()
    summary = {}
    model = lensteer.load_model("organism")
    for name in ("honesty", "compassion"):
        trait = lensteer.load_trait(name, model=model)
        located = lensteer.locate(model, trait, neutral=False, tf_pairs=tf_pairs, progress=False)
        recovery, unfloored, n_cells, n_items = organism_recovery(model, trait, located)
        print(f"\norganism {name}: {n_cells} grid cells × {n_items} tune items")
        summary[f"organism {name}"] = report(f"organism {name}", located, recovery, unfloored)
    if not args.skip_persona:
        model = lensteer.load_model("smollm2-persona")
        trait = lensteer.load_trait("honesty", model=model)
        located = lensteer.locate(model, trait, layers=sorted(PERSONA_SWEEP), max_scenarios=24,
                                  n_folds=4, max_new_tokens=24, greedy=True, neutral=False,
                                  tf_pairs=tf_pairs, progress=False)
        summary["smollm2-persona honesty"] = report("smollm2-persona honesty", located,
                                                    persona_recovery())
    print("\n## Spearman ρ of each column with the per-layer recovery\n")
    print("| model, trait | " + " | ".join(COLUMNS) + " | ceiling |")
    print("|---|" + "---:|" * (len(COLUMNS) + 1))
    for name, rho in summary.items():
        print(f"| {name} | " + " | ".join(f"{rho[c]:+.2f}" for c in COLUMNS + ["ceiling"]) + " |")
    print(f"\nwall {time.time() - wall:.0f} s, CPU {time.process_time() - cpu:.0f} s (one thread)")


if __name__ == "__main__":
    main()
