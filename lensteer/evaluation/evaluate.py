"""The paper's protocol end to end: sweep, choose operating points, evaluate, report.

:func:`evaluate` runs, for one model and trait and a set of per-layer directions:

1. the operating-point sweep (layer × α × position mode per rule) on the *tune* half of the
   held-out scenarios, with the aligned and malicious baselines; resumable through
   ``out/sweep_cells.jsonl``;
2. the selection rule per rule and mode (highest trait score with coherence ≥ 90 % of the
   aligned baseline's);
3. the extensions: StTP/StMP with per-token calibration and a percentile threshold, swept over α
   at each rule's chosen layer, and the α that matches the paper-calibrated point's trait score;
4. every condition on the *test* half: trait score, coherence, recovery of the aligned–malicious
   gap, judge-free cross-entropy, length, capability (option log-likelihood and generated
   letter) and intervention size, all with bootstrap intervals;
5. multi-turn rollouts (trait, coherence, repetition per turn) of the baselines and the chosen
   points;

and, with ``out``, writes ``results.json``, ``grid.csv``, ``report.md`` and figures
(:mod:`lensteer.evaluation.report`).

Usage (a minute or more on a CPU, so shown rather than run here; ``lensteer demo --quick``
and ``tests/test_eval_organism.py`` run it)::

    import lensteer
    model = lensteer.load_model("organism")
    loc = lensteer.locate(model, "honesty")
    res = evaluate(model, "honesty", loc, config=EvaluateConfig.preset("quick"), out="ev")
"""
from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..directions import TraitDirection
from ..errors import UsageError
from ..generation.fast import supports_fast_path
from ..io import write_json
from ..models import model_info
from ..protocols import LensModel
from ..steering import registry, steer
from ..traits import Trait, load_trait
from .capability import load_mc, mc_accuracy
from .conditions import (
    Condition,
    ConditionRun,
    EvalItem,
    GenSettings,
    baseline_conditions,
    build_items,
    run_condition,
    run_conditions,
    split_scenarios,
)
from .judges import Judge
from .metrics import bootstrap_ci, recovery
from .multiturn import CACHE_MODES, run_multiturn
from .search import HalvingConfig, successive_halving
from .sweep import (
    COHERENCE_RATIO,
    SweepCheckpoint,
    auto_cells_per_batch,
    choose_operating_points,
    fingerprint,
    grid_conditions,
    run_cells,
)

__all__ = ["FORMAT_VERSION", "SEARCHES", "EvaluateConfig", "default_judge", "directions_by_layer",
           "evaluate", "layer_table", "default_prior"]

#: How the operating point is searched: every cell on every tune prompt, or successive halving.
SEARCHES = ("grid", "halving")

FORMAT_VERSION = 1


def _swept(grid: Mapping[str, Any]) -> list[str]:
    """The rules of ``grid`` in registry order (rules the registry does not know last)."""
    known = [m for m in registry.rule_names() if m in grid]
    return known + [m for m in grid if m not in known]


@dataclass
class EvaluateConfig:
    """Everything that decides an evaluation's numbers (presets: :meth:`preset`)."""

    grid: dict[str, list[float]] = field(default_factory=registry.paper_grid)  # every rule's paper grid
    layers: list[int] | None = None  # default: every layer with a direction
    max_layers: int | None = None  # sweep at most this many evenly spaced layers
    positions: list[str] = field(default_factory=lambda: ["all", "response"])
    gen: GenSettings = field(default_factory=GenSettings)
    prompts_per_scenario: int | None = None  # eval paraphrases per scenario (default: all)
    min_items: int | None = None  # raise prompts_per_scenario until a split has this many items
    max_items: int | None = None  # cap on items per split
    split: bool = True  # tune the sweep on half the scenarios, report on the other half
    capability: str | None = "auto"  # "auto" (organism skills / general set), a path, or None
    capability_limit: int | None = None
    capability_methods: list[str] = field(default_factory=lambda: ["loglik", "letter"])
    multiturn: bool = True
    n_conversations: int = 8
    n_turns: int = 6
    multiturn_cache: str = "reencode"  # or "carry": the KV cache kept across turns
    extensions: bool = True
    percentile: str = "p10"
    token_grid: dict[str, list[float]] = field(default_factory=lambda: {
        "sttp": [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0],
        "stmp": [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0],
    })
    coherence_ratio: float = COHERENCE_RATIO
    n_boot: int = 1000
    seed: int = 0
    search: str = "grid"  # "grid" (every cell on every tune prompt) or "halving" (lensteer.evaluation.search)
    halving: HalvingConfig = field(default_factory=HalvingConfig)
    cells_per_batch: int | None = None  # cells packed into one generation (None: fill a batch; 1: no packing)

    def __post_init__(self) -> None:
        if self.search not in SEARCHES:
            raise ValueError(f"search must be one of {', '.join(SEARCHES)}, not {self.search!r}.")
        if self.cells_per_batch is not None and self.cells_per_batch < 1:
            raise ValueError(f"cells_per_batch must be at least 1, got {self.cells_per_batch}.")
        if not 0 <= self.coherence_ratio <= 1:
            raise ValueError(f"coherence_ratio must be in [0, 1] (0: no floor), got {self.coherence_ratio}.")

    @classmethod
    def preset(cls, name: str) -> EvaluateConfig:
        """``"paper"`` (the paper's α grids over every layer), ``"demo"`` (the paper's grids,
        fewer items and conversations: sized for ``lensteer demo`` on 2 cores) or ``"quick"``
        (a few cells, for CI)."""
        if name == "paper":
            return cls()
        if name == "demo":
            return cls(prompts_per_scenario=1, min_items=24, n_conversations=6, n_turns=5, capability_limit=60,
                       token_grid={"sttp": [0.0, 1.0, 2.0, 4.0], "stmp": [1.0, 2.0, 3.0, 4.0]})
        if name == "quick":
            return cls(grid={"swfc": [2.0, 4.0], "sttp": [6.0, 24.0], "stmp": [1.0, 3.0]},
                       max_layers=2, prompts_per_scenario=1, max_items=16, capability_limit=12,
                       n_conversations=3, n_turns=5, gen=GenSettings(max_new_tokens=24),
                       token_grid={"sttp": [1.0, 4.0], "stmp": [1.0, 3.0]}, n_boot=200)
        raise ValueError(f"Unknown preset {name!r}: use 'paper', 'demo' or 'quick'.")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["gen"] = self.gen.to_dict()
        data["halving"] = self.halving.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluateConfig:
        data = dict(data)
        data["gen"] = GenSettings(**data.get("gen", {}))
        data["halving"] = HalvingConfig.from_dict(data.get("halving", {}))
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def directions_by_layer(directions: Any, point: str = "resid_post") -> dict[int, TraitDirection]:
    """``{layer: TraitDirection}`` from a LocateResult, ``{layer: direction}``, ``{hook name:
    direction}`` or a list of directions (only hook point ``point`` when hook names are mixed)."""
    if hasattr(directions, "directions") and hasattr(directions, "rows"):  # LocateResult
        return {r.layer: directions.directions[r.hook] for r in directions.rows if r.point == point}
    if isinstance(directions, TraitDirection):
        return {int(directions.layer): directions}
    if isinstance(directions, Mapping) and all(isinstance(k, int) for k in directions):
        return {int(k): v for k, v in directions.items()}
    items = list(directions.values() if isinstance(directions, Mapping) else directions)
    from ..hooks import parse_hook_name

    points = {parse_hook_name(d.hook)[1] for d in items}
    keep = [d for d in items if len(points) == 1 or parse_hook_name(d.hook)[1] == point]
    return {int(d.layer): d for d in keep}


def default_prior(directions: Any, point: str = "resid_post") -> dict[int, float] | None:
    """The halving search's default layer prior from a LocateResult: the teacher-forced effect
    (the steerability predictor that ranked layers as the full grid did, docs/predictors.md)
    where locate computed it for every layer, else the probe's Cohen's d (the held-out AUROC
    where d is missing); ``None`` for anything else. ``evaluate(prior=...)`` replaces it."""
    if not (hasattr(directions, "directions") and hasattr(directions, "rows")):
        return None
    rows = [r for r in directions.rows if r.point == point]
    effect = directions.predictor("tf_effect", point) if hasattr(directions, "predictor") else {}
    if rows and len(effect) == len(rows):
        return effect
    return {r.layer: float(r.cohens_d if r.cohens_d is not None else r.auroc) for r in rows}


#: The per-layer numbers of a locate result that the report shows beside the chosen layers:
#: probe metrics, then the steerability predictors.
LOCATE_COLUMNS = ("accuracy", "auroc", "cohens_d", "tf_effect", "diff_consistency",
                  "diff_consistency_sd", "sign_split_pairs")


def layer_table(directions: Any, layers: list[int], rows: list[dict[str, Any]],
                chosen: Mapping[tuple[str, str], dict[str, Any] | None],
                prior: Mapping[int, float] | None, floor: float | None,
                point: str = "resid_post") -> list[dict[str, Any]]:
    """Per swept layer: the prior, the locate probe metrics and steerability predictors, how many of the layer's cells
    reached the search's last rung (all of them for the grid), the best trait score at or above
    the coherence floor among those, and which (rule, mode) chose the layer — so a report shows
    why that layer."""
    probe: dict[int, Any] = {}
    if hasattr(directions, "rows"):
        probe = {r.layer: r for r in directions.rows if r.point == point}
    top = max((r.get("rung", 0) for r in rows), default=0)
    out = []
    for layer in layers:
        mine = [r for r in rows if r["layer"] == layer and r.get("rung", 0) == top
                and r.get("trait") is not None
                and (floor is None or (r.get("coherence") or 0.0) >= floor - 1e-9)]
        entry: dict[str, Any] = {"layer": layer,
                                 "prior": None if prior is None else prior.get(layer)}
        for name in LOCATE_COLUMNS:
            entry[name] = getattr(probe[layer], name, None) if layer in probe else None
        entry["finalists"] = sum(1 for r in rows if r["layer"] == layer and r.get("rung", 0) == top)
        entry["best_trait"] = max((r["trait"] for r in mine), default=None)
        entry["chosen_by"] = [f"{m}/{p}" for (m, p), r in chosen.items()
                              if r is not None and r["layer"] == layer]
        out.append(entry)
    return out


def default_judge(model: LensModel, trait: Trait, directions: Mapping[int, TraitDirection] | None = None) -> Judge:
    """The exact graders of a bundled model with its own trait files; an :class:`OpenAIJudge` when
    ``LENSTEER_JUDGE_BASE_URL`` (or ``OPENAI_BASE_URL``) is set; else a :class:`ProbeJudge` at
    the middle layer (circular: see :mod:`lensteer.evaluation.judges`)."""
    from .judges import EXACT_JUDGES, OpenAIJudge, ProbeJudge

    if trait.model in EXACT_JUDGES and trait.name in ("honesty", "compassion"):
        return EXACT_JUDGES[trait.model](trait.name)
    if os.environ.get("LENSTEER_JUDGE_BASE_URL") or os.environ.get("OPENAI_BASE_URL"):
        return OpenAIJudge(f"{trait.name}: {trait.description}")
    if not directions:
        raise ValueError("No judge: set LENSTEER_JUDGE_BASE_URL, or give directions for a probe judge.")
    layers = sorted(directions)
    neutral = trait.neutral_prompts[0] if trait.neutral_prompts else None
    return ProbeJudge(model, directions[layers[len(layers) // 2]], neutral_system=neutral)


def _estimates(run: ConditionRun, seed: int, n_boot: int) -> dict[str, Any]:
    ci = lambda xs: bootstrap_ci(xs, seed=seed, n_boot=n_boot).to_dict()
    return {
        "trait": ci(run.trait),
        "coherence": ci(run.coherence),
        "coherence_source": run.coherence_source,
        "ce": ci(run.ce) if run.ce else None,
        "length": ci([float(x) for x in run.length]),
        "finished": ci([1.0 if f else 0.0 for f in run.finished]),
        "intervention": dict(run.intervention),
        "n": len(run.texts),
    }


def evaluate(
    model: LensModel,
    trait: str | os.PathLike | Trait,
    directions: Any,
    *,
    config: EvaluateConfig | None = None,
    judge: Judge | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = True,
    figures: bool = True,
    chat: Any = None,
    chat_judge: Any = None,
    prior: Mapping[int, float] | None = None,
) -> dict[str, Any]:
    """Run the protocol (module docstring); returns the ``results.json`` content.

    ``chat``: a :class:`~lensteer.evaluation.chatbench.ChatBenchConfig` adds the side-effect
    panel (MT-Bench, AlpacaEval-style win rate) for every non-extension condition, judged by
    ``chat_judge`` (default: ``judge`` when it is a language model, else the endpoint in
    ``LENSTEER_JUDGE_BASE_URL``); checked before the sweep starts.

    ``prior``: ``{layer: score}`` for ``config.search == "halving"`` (a steerability predictor;
    default: :func:`default_prior` of a LocateResult), used with ``config.halving.top_layers``
    and shown beside the probe metrics in the report.
    """
    config = config or EvaluateConfig()
    trait = load_trait(trait, model=model)
    dirs = directions_by_layer(directions)
    if not dirs:
        raise ValueError("No directions to steer with: pass a LocateResult or {layer: TraitDirection}.")
    layers = [int(x) for x in (config.layers if config.layers is not None else sorted(dirs))]
    missing = [layer for layer in layers if layer not in dirs]
    if missing:
        raise UsageError(
            f"No direction for layer(s) {missing}: the directions cover layers {sorted(dirs)}. "
            "Sweep only those layers, or locate the others first."
        )
    if config.multiturn and config.multiturn_cache not in CACHE_MODES:
        raise UsageError(f"multiturn_cache must be one of {', '.join(CACHE_MODES)}, not "
                         f"{config.multiturn_cache!r}.")
    if config.multiturn and config.multiturn_cache == "carry" and not supports_fast_path(model):
        raise UsageError("multiturn_cache='carry' keeps the KV cache on the fast path, which "
                         "needs a TransformerBridge over a Hugging Face decoder: use 'reencode'.")
    if config.max_layers and len(layers) > config.max_layers:
        k = config.max_layers
        layers = sorted({layers[round(i * (len(layers) - 1) / max(1, k - 1))] for i in range(k)})
    judge = judge or default_judge(model, trait, dirs)
    bench = None
    if chat is not None:  # the side-effect panel: checked now, run after the conditions
        from .chatbench import ChatBench

        bench = ChatBench.prepare(chat, chat_judge, judge)
    gen = config.gen
    seed, n_boot = config.seed, config.n_boot
    timings: dict[str, float] = {}
    out_dir = Path(out) if out is not None else None

    def items(part: str) -> list[EvalItem]:
        scenarios = split_scenarios(trait, part if config.split else "all")
        k = config.prompts_per_scenario
        if k is not None and config.min_items and scenarios:
            k = max(k, -(-config.min_items // len(scenarios)))  # ceil
        return build_items(trait, scenarios, prompts_per_scenario=k, limit=config.max_items)

    tune, test = items("tune"), items("test")
    mc = None  # the capability set is read now, so a bad file fails before the sweep
    if config.capability:
        source = config.capability
        if source == "auto":
            source = "organism" if trait.model == "organism" else "general"
        mc = load_mc(source, limit=config.capability_limit)
    needs_ce = None  # run_condition decides: CE only when the judge gives no coherence

    # ------------------------------------------------------------------ 1. sweep
    t0 = time.perf_counter()
    settings = {"model": model_info(model).to_dict(), "trait": trait.to_dict(), "judge": judge.name,
                "gen": gen.to_dict(), "items": [asdict(i) for i in tune],
                "directions": {str(k): [d.data_hash, d.method, d.hook, round(float(d.v_hat.sum()), 6),
                                          round(d.boundary, 6)] for k, d in sorted(dirs.items())}}
    checkpoint = SweepCheckpoint(out_dir / "sweep_cells.jsonl", fingerprint(settings)) if out_dir else None

    # packed generation (run_conditions); never under sampling, whose draws depend on a batch's rows
    pack = 1 if gen.sampling else (config.cells_per_batch or auto_cells_per_batch(len(tune), gen.batch_size))

    def compute_many(group: Any) -> list[dict[str, Any]]:
        return [r.summary() for r in run_conditions(model, group, tune, judge, dirs, gen=gen, ce=needs_ce)]

    aligned_c, malicious_c = baseline_conditions()
    cells = grid_conditions(config.grid, layers, config.positions)
    if prior is None:
        prior = default_prior(directions)
    if config.search == "halving":
        settings["halving"] = config.halving.to_dict()
        settings["prior"] = None if prior is None else {str(k): v for k, v in sorted(prior.items())}
        search_pack = 1 if gen.sampling else (config.cells_per_batch or auto_cells_per_batch(
            config.halving.start_items, gen.batch_size))
        search_ck = (SweepCheckpoint(out_dir / "search_cells.jsonl", fingerprint(settings))
                     if out_dir else None)

        def compute_items(group: Any, its: Any) -> list[dict[str, Any]]:
            return [r.per_item() for r in run_conditions(model, group, its, judge, dirs, gen=gen,
                                                         ce=needs_ce)]

        found = successive_halving(
            cells, tune, compute_items, baselines=(aligned_c, malicious_c), config=config.halving,
            prior=prior, ratio=config.coherence_ratio, checkpoint=search_ck,
            cells_per_batch=search_pack, progress=progress, desc=f"halving {trait.name}")
        base_rows = [found.baselines["aligned"], found.baselines["malicious"]]
        rows, chosen = found.rows, found.chosen
        search_info = found.to_dict()
        search_info["cells_per_batch"] = search_pack
    else:
        base_rows = run_cells([aligned_c, malicious_c], compute_many=compute_many,
                              cells_per_batch=pack, checkpoint=checkpoint, progress=False)
        rows = run_cells(cells, compute_many=compute_many, cells_per_batch=pack,
                         checkpoint=checkpoint, progress=progress, desc=f"sweep {trait.name}")
        chosen = choose_operating_points(rows, base_rows[0]["coherence"], ratio=config.coherence_ratio)
        search_info = {"method": "grid", "tokens": sum(int(r.get("tokens") or 0) for r in rows + base_rows),
                       "prior": None if prior is None else {str(k): v for k, v in prior.items()},
                       "cells_per_batch": pack}
    aligned_coh = base_rows[0]["coherence"]
    floor = None if aligned_coh is None else config.coherence_ratio * aligned_coh
    search_info["layers"] = layer_table(directions, layers, rows, chosen, prior, floor)
    timings["sweep"] = time.perf_counter() - t0

    # ------------------------------------------------------------------ 2. extensions
    t0 = time.perf_counter()
    ext_rows: list[dict[str, Any]] = []
    matched: list[dict[str, Any]] = []
    ext_note = ""
    if config.extensions:
        variants = [("boundary", "token"), (config.percentile, "response")]
        ext_cells = []
        for method in registry.gated_rules():
            paper = chosen.get((method, "all"))
            if paper is None:
                continue
            d = dirs[paper["layer"]]
            if d.token_stats is None:
                ext_note = "directions have no per-token statistics (locate with per_token=True)"
                continue
            for threshold, calibration in variants:
                alphas = config.token_grid.get(method, []) if calibration == "token" else config.grid.get(method, [])
                ext_cells += grid_conditions({method: alphas}, [paper["layer"]], ["all"],
                                             threshold=threshold, calibration=calibration)
        ext_rows = run_cells(ext_cells, compute_many=compute_many, cells_per_batch=pack,
                             checkpoint=checkpoint, progress=progress,
                             desc=f"extensions {trait.name}")
        for method in registry.gated_rules():
            paper = chosen.get((method, "all"))
            if paper is None:
                continue
            for threshold, calibration in variants:
                group = [r for r in ext_rows if r["method"] == method and r["threshold"] == threshold
                         and r["calibration"] == calibration and r["trait"] is not None]
                if not group:
                    continue
                paper_trait = paper["trait"]
                best = min(group, key=lambda r: (abs(r["trait"] - paper_trait),
                                                 -(r["coherence"] or 0.0), r["alpha"]))
                matched.append({"method": method, "threshold": threshold,
                                "calibration": calibration, "paper": paper, "variant": best})
    timings["extensions"] = time.perf_counter() - t0

    # ------------------------------------------------------------------ 3. conditions on test
    t0 = time.perf_counter()
    final: list[tuple[str, Condition]] = [("baseline", replace(aligned_c, name="aligned")),
                                          ("baseline", replace(malicious_c, name="malicious"))]
    for pos in config.positions:
        for method in _swept(config.grid):
            row = chosen.get((method, pos))
            if row is not None:
                final.append(("paper", replace(Condition.from_dict(row), name=f"{method}-{pos}")))
    for m in matched:
        c = Condition.from_dict(m["variant"])
        final.append(("extension", replace(c, name=f"{m['method']}-{m['threshold']}-{m['calibration']}")))
    runs: dict[str, ConditionRun] = {}
    conditions_out = []
    for role, cond in final:
        run = run_condition(model, cond, test, judge, dirs, gen=gen, ce=True)
        runs[cond.name] = run
        metrics = _estimates(run, seed, n_boot)
        if mc is not None:
            systems = trait.eval_aligned_prompts if cond.side == "aligned" else trait.eval_malicious_prompts
            steerer = cond.steerer(dirs)
            if steerer is None:
                cap = mc_accuracy(model, mc, systems=systems, methods=config.capability_methods,
                                  batch_size=gen.batch_size)
            else:
                with steer(model, steerer):
                    cap = mc_accuracy(model, mc, systems=systems, methods=config.capability_methods,
                                      batch_size=gen.batch_size)
            for k, v in cap.items():
                metrics[f"capability_{k}"] = bootstrap_ci([100.0 * x for x in v], seed=seed,
                                                          n_boot=n_boot).to_dict()
        conditions_out.append({"name": cond.name, "role": role, "label": cond.label,
                               "condition": cond.to_dict(), "metrics": metrics,
                               "examples": run.texts[:3]})
    al, ma = runs["aligned"], runs["malicious"]
    for entry in conditions_out:
        run = runs[entry["name"]]
        entry["metrics"]["recovery"] = recovery(run.trait, al.trait, ma.trait, seed=seed,
                                                n_boot=n_boot).to_dict()
    timings["conditions"] = time.perf_counter() - t0
    chat_results = None
    if bench is not None:
        t0 = time.perf_counter()
        chat_results = bench.run(model, [c for role, c in final if role != "extension"], trait, dirs,
                                 gen=gen, seed=seed, n_boot=n_boot, out=out_dir, progress=progress)
        timings["chat benchmarks"] = time.perf_counter() - t0

    # ------------------------------------------------------------------ 4. multi-turn
    t0 = time.perf_counter()
    multiturn = []
    if config.multiturn:
        scen = split_scenarios(trait, "test" if config.split else "all")
        for role, cond in final:
            if role == "extension":
                continue
            multiturn.append({"name": cond.name, "label": cond.label, **run_multiturn(
                model, cond, trait, judge, dirs, scenarios=scen,
                n_conversations=config.n_conversations, n_turns=config.n_turns, gen=gen, seed=seed,
                cache=config.multiturn_cache).to_dict()})
    timings["multiturn"] = time.perf_counter() - t0

    results = {
        "format_version": FORMAT_VERSION,
        "model": model_info(model).to_dict(),
        "trait": trait.name,
        "trait_path": trait.path,
        "judge": judge.name,
        "config": config.to_dict(),
        "items": {"tune": len(tune), "test": len(test), "split": config.split,
                  "scenarios_tune": len({i.scenario for i in tune}),
                  "scenarios_test": len({i.scenario for i in test})},
        "sweep": {"baselines": {"aligned": base_rows[0], "malicious": base_rows[1]},
                  "coherence_floor": None if aligned_coh is None else config.coherence_ratio * aligned_coh,
                  "n_cells": len(rows), "layers": layers, "rows": rows},
        "search": search_info,
        "chosen": [{"method": m, "positions": p, "row": chosen.get((m, p))}
                   for p in config.positions for m in _swept(config.grid)],
        "extensions": {"rows": ext_rows, "matched": matched, "note": ext_note},
        "conditions": conditions_out,
        "multiturn": multiturn,
        "timings": timings,
    }
    if chat_results:
        results["chat_benchmarks"] = chat_results
    if out_dir is not None:
        from .report import write_report

        t0 = time.perf_counter()
        # results.json marks a finished run: it goes first and comes back last, so a run
        # killed while writing leaves no results.json and a rerun finishes the job
        (out_dir / "results.json").unlink(missing_ok=True)
        write_report(results, out_dir, figures=figures)
        timings["report"] = time.perf_counter() - t0
        write_json(out_dir / "results.json", results)
    return results
