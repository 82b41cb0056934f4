"""``lensteer demo``: the main job — locate + evaluate on the bundled organism for both traits,
one combined report with per-stage timings.

Stages per trait: ``locate`` (the layer sweep: on-policy contrastive set, directions with
per-token statistics; reused from ``OUT/<trait>/locate`` when present) and ``evaluate`` (the
operating-point sweep on the paper's α grids over every layer, the chosen points, extensions,
capability and multi-turn; resumable). ``--quick`` shrinks everything for CI.

    $ lensteer demo --out runs/demo            # ≤ 15 minutes on 2 cores
    $ lensteer demo --out runs/demo-ci --quick
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..io import write_json, write_text
from ..models import Backend

__all__ = ["format_demo_report", "run_demo"]


def _banner(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def run_demo(
    out: str | Path = "runs/demo",
    *,
    quick: bool = False,
    traits: Sequence[str] = ("honesty", "compassion"),
    model_name: str = "organism",  # or an organism checkpoint directory
    progress: bool = True,
    device: str = "cpu",
    backend: Backend | None = None,
    figures: bool = True,
) -> dict[str, Any]:
    """Run the demo; returns ``{"timings": ..., "results": {trait: results}}`` and writes
    ``OUT/report.md``, ``OUT/timings.json`` and one evaluation directory per trait. The model
    loads on ``device`` with ``backend`` (default: the installed TransformerLens backend)."""
    from ..locate import LocateResult, locate
    from ..models import installed_backend, load_model
    from .evaluate import EvaluateConfig, evaluate

    out = Path(out)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    t0 = time.perf_counter()
    model = load_model(model_name, device=device, backend=backend or installed_backend())
    timings["load model"] = time.perf_counter() - t0
    config = EvaluateConfig.preset("quick" if quick else "demo")
    locate_kw: dict[str, Any] = dict(max_scenarios=12, n_folds=3) if quick else {}
    results: dict[str, Any] = {}
    n = len(traits)
    from ..traits import load_trait

    for i, trait in enumerate(traits, 1):
        spec = load_trait(trait, model="organism")  # the organism's trait files, whatever the path
        loc_dir = out / trait / "locate"
        _banner(f"[{i}/{n}] locate {trait} on {model_name}")
        t0 = time.perf_counter()
        if (loc_dir / "sweep.json").exists():
            loc = LocateResult.load(loc_dir)
            print(f"reusing {loc_dir}")
        else:
            loc = locate(model, spec, progress=progress, **locate_kw)
            loc.save(loc_dir)
        print(loc.table())
        timings[f"locate {trait}"] = time.perf_counter() - t0
        _banner(f"[{i}/{n}] evaluate {trait}: sweep, operating points, conditions, multi-turn")
        t0 = time.perf_counter()
        res = evaluate(model, spec, loc, config=config, out=out / trait, progress=progress,
                       figures=figures)
        results[trait] = res
        timings[f"evaluate {trait}"] = time.perf_counter() - t0
        for stage, seconds in res["timings"].items():
            timings[f"  {trait}: {stage}"] = seconds
    timings["total"] = time.perf_counter() - t_all
    write_json(out / "timings.json", timings)
    write_text(out / "report.md", format_demo_report(results, timings, quick=quick))
    return {"timings": timings, "results": results}


def format_demo_report(results: dict[str, Any], timings: dict[str, float], *, quick: bool = False) -> str:
    """The combined report: per trait, the paper-style table and the claims; then timings."""
    from .report import _chosen_table, _paper_claims, format_main_table

    lines = [
        "# lensteer demo: locating and steering the organism's misalignment",
        "",
        "The bundled organism turns dishonest or dismissive under malicious system prompts "
        "(docs/organism.md). For each trait lensteer located the trait direction at every layer "
        "(`locate/`), swept SwFC / StTP / StMP over layer × α × position mode on held-out "
        "scenarios, chose each rule's operating point by the paper's rule (highest trait score "
        "with coherence ≥ 90 % of the aligned baseline's), and evaluated every condition on the "
        "other half of the held-out scenarios with the organism's exact graders."
        + (" **Quick run (`--quick`): few cells and items; numbers are a smoke test.**" if quick else ""),
        "",
    ]
    for trait, res in results.items():
        lines += [
            f"## {trait}",
            "",
            f"Full report: [{trait}/report.md]({trait}/report.md) · grid: [{trait}/grid.csv]({trait}/grid.csv)",
            "",
            format_main_table(res),
            "",
            *[f"- {s}" for s in _paper_claims(res)],
            "",
            "Chosen operating points:",
            "",
            _chosen_table(res),
            "",
            f"![frontier]({trait}/figures/frontier.png)",
            "",
        ]
    lines += ["## Timings (wall clock, seconds)", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in timings.items()]
    return "\n".join(lines) + "\n"
