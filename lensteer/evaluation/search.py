"""Successive halving over the operating-point grid: most cells see only a few prompts.

The exhaustive sweep (:mod:`lensteer.evaluation.sweep`) generates every cell on every tune
prompt. Halving runs *rungs* instead: every candidate cell on a few prompts, then, per rule and
position mode, only the best third (at least ``min_keep``) by the paper's selection rule
(coherence ≥ the floor first, then the highest trait score; below the floor, the most coherent)
goes on to three times the prompts, until the survivors have seen every tune prompt; the operating point is then chosen
among them exactly as the sweep chooses (:func:`~lensteer.evaluation.sweep.choose_operating_points`).

- Floor on few prompts: before the last rung a cell counts as meeting the coherence floor when
  its mean coherence plus ``floor_z`` standard errors does, so a good cell that a handful of
  prompts measure as just below the floor is not dropped; the last rung applies the floor as is.
  Cells that tie on trait score are pruned in favour of the larger α (``ties="stronger"``): on a
  few prompts a tie mostly means neither cell moved the trait yet; ``ties="both"`` keeps the
  best of each group by either tie-break (their union, so a few more cells go on). Whatever the
  ranking, the cell the plain selection rule ranks first on a rung's prompts (no slack, smaller
  α on ties) also goes on, so a rule whose only usable cells are weak ones keeps one to the
  last rung.
- Prompts: a permutation of the tune items fixed by ``seed``; rung ``r`` uses its first
  ``start_items · eta^r`` (the last rung all of them). A survivor generates only the prompts
  new to the rung and keeps its earlier per-prompt scores (greedy decoding makes them the
  same as a rerun's), so a cell that reaches the last rung costs what one grid cell costs.
- Baselines: the aligned and malicious baselines run on each rung's prompts too; the
  coherence floor of a rung is ``ratio ×`` the aligned baseline's coherence on that rung's
  prompts.
- Prior: an optional ``{layer: score}`` (a steerability predictor, or by default a probe
  metric of ``lensteer locate``) with ``top_layers`` keeps only the cells at the best-scored
  layers before rung 0; without ``top_layers`` every cell starts.
- Cost: tokens generated, per cell, per rung and in total (``tokens``).
- Resume: each finished cell of each rung is one checkpoint line (key ``r<rung>|<cell key>``),
  so a rerun continues where it stopped and returns what an uninterrupted run returns.

>>> rung_sizes(40, start=4, eta=3)
[4, 12, 36, 40]
>>> rung_sizes(10, start=16, eta=3)
[10]
>>> rows = [dict(method="swfc", positions="all", layer=0, alpha=a, trait=t, coherence=c)
...         for a, t, c in [(1, 50, 99), (2, 70, 95), (4, 90, 60)]]
>>> [r["alpha"] for r in rank_rows(rows, floor=90)]
[2, 1, 4]
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .conditions import Condition, EvalItem, finite_mean
from .sweep import COHERENCE_RATIO, SweepCheckpoint, choose_operating_points, run_cells

__all__ = [
    "HalvingConfig",
    "SearchResult",
    "prune_by_prior",
    "rank_rows",
    "replay",
    "rung_sizes",
    "successive_halving",
]

#: ``compute_items(cells, items)`` → per cell, per-item lists (``ConditionRun.per_item()``).
ComputeItems = Callable[[Sequence[Condition], Sequence[EvalItem]], Sequence[Mapping[str, Any]]]
PER_ITEM = ("trait", "coherence", "ce", "length", "finished", "tokens")
#: Tie-breaks among cells of equal trait score when a rung is pruned (``HalvingConfig.ties``).
TIES = ("stronger", "paper", "both")


@dataclass
class HalvingConfig:
    """Successive halving's settings (module docstring)."""

    start_items: int = 4  # prompts per cell in rung 0
    eta: int = 3  # keep 1/eta of each (rule, mode) group per rung; eta × the prompts next rung
    top_layers: int | None = None  # with a prior: start only the cells at the best-scored layers
    min_keep: int = 2  # survivors per (rule, mode) at least: one could fail the floor on more prompts
    floor_z: float = 1.0  # before the last rung, a cell meets the floor if coherence + z·SE does
    ties: str = "stronger"  # pruning among equal trait scores: "stronger" (larger α), "paper" or "both"
    seed: int = 0  # the prompt permutation

    def __post_init__(self) -> None:
        if self.start_items < 1:
            raise ValueError(f"start_items must be at least 1, got {self.start_items}.")
        if self.eta < 2:
            raise ValueError(f"eta must be at least 2, got {self.eta}.")
        if not self.floor_z >= 0:
            raise ValueError(f"floor_z must be >= 0, got {self.floor_z}.")
        if self.ties not in TIES:
            raise ValueError(f"ties must be one of {', '.join(TIES)}, not {self.ties!r}.")
        if self.min_keep < 1:
            raise ValueError(f"min_keep must be at least 1, got {self.min_keep}.")
        if self.top_layers is not None and self.top_layers < 1:
            raise ValueError(f"top_layers must be at least 1, got {self.top_layers}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HalvingConfig:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def rung_sizes(n_items: int, start: int, eta: int) -> list[int]:
    """Prompts per rung: ``start · eta^r`` below ``n_items``, then ``n_items``."""
    sizes, n = [], start
    while n < n_items:
        sizes.append(n)
        n *= eta
    return sizes + [n_items]


def rank_rows(rows: Sequence[Mapping[str, Any]], floor: float | None,
              z: float = 0.0, ties: str = "paper") -> list[Mapping[str, Any]]:
    """``rows`` best first by the selection rule: rows at or above the coherence ``floor`` by
    trait score (ties: coherence, smaller α, lower layer, as
    :func:`~lensteer.evaluation.sweep.choose_operating_points`), then rows below it by
    coherence, then rows without a trait score. With ``z > 0`` a row meets the floor when
    ``coherence + z · coherence_se`` does (a cell judged on few prompts is not dropped for
    falling just short). ``ties="stronger"``: among rows meeting the floor with equal trait
    scores, the larger α first (on few prompts a tie mostly means neither moved the trait yet,
    and the weaker cell is the less likely to).

    >>> rows = [dict(alpha=a, layer=0, trait=0.0, coherence=100.0) for a in (1, 4)]
    >>> [r["alpha"] for r in rank_rows(rows, 90)], [r["alpha"] for r in rank_rows(rows, 90, ties="stronger")]
    ([1, 4], [4, 1])
    """

    def key(r: Mapping[str, Any]) -> tuple:
        trait, coh = r.get("trait"), r.get("coherence")
        tie = (-float(r.get("alpha") or 0.0), -int(r.get("layer") or 0))
        if trait is None:
            return (0, 0.0, 0.0, *tie)
        reach = None if coh is None else coh + z * float(r.get("coherence_se") or 0.0)
        if floor is None or (reach is not None and reach >= floor - 1e-9):
            if ties == "stronger":
                return (2, trait, -tie[0], coh or 0.0, tie[1])
            return (2, trait, coh or 0.0, *tie)
        return (1, coh if coh is not None else -math.inf, trait, *tie)

    return sorted(rows, key=key, reverse=True)


def prune_by_prior(cells: Sequence[Condition], prior: Mapping[int, float] | None,
                   top_layers: int | None) -> list[Condition]:
    """The cells at the ``top_layers`` layers with the highest prior (ties: lower layer); all
    cells when either is ``None``. Layers the prior does not score rank last.

    >>> cells = [Condition("a", method="swfc", layer=l, alpha=1) for l in (0, 1, 2)]
    >>> [c.layer for c in prune_by_prior(cells, {0: 0.1, 1: 0.9, 2: 0.5}, 2)]
    [1, 2]
    """
    if prior is None or top_layers is None:
        return list(cells)
    layers = sorted({c.layer for c in cells if c.layer is not None},
                    key=lambda layer: (-prior.get(layer, -math.inf), layer))
    keep = set(layers[:top_layers])
    return [c for c in cells if c.layer in keep]


@dataclass
class SearchResult:
    """What a halving run found and what it cost."""

    chosen: dict[tuple[str, str], dict[str, Any] | None]
    rows: list[dict[str, Any]]  # every started cell's row at the last rung it reached
    baselines: dict[str, dict[str, Any]]  # aligned / malicious on every tune prompt
    rungs: list[dict[str, Any]] = field(default_factory=list)
    tokens: int = 0  # tokens generated in all, baselines included
    prior: dict[int, float] | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"method": "halving", "config": self.config, "tokens": self.tokens,
                "rungs": self.rungs,
                "prior": None if self.prior is None else {str(k): v for k, v in self.prior.items()},
                "chosen": [{"method": m, "positions": p, "row": r} for (m, p), r in self.chosen.items()]}


def _merge(earlier: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, list[Any]]:
    return {k: list((earlier or {}).get(k, [])) + list(new.get(k, [])) for k in PER_ITEM}


def _row(cell_row: Mapping[str, Any], items: Mapping[str, list[Any]], rung: int) -> dict[str, Any]:
    """A cell's summary row over all the prompts it has seen (as ``ConditionRun.summary``)."""
    row = {k: v for k, v in cell_row.items() if k not in PER_ITEM and k != "items"}
    row.update({
        "trait": finite_mean(items["trait"]), "coherence": finite_mean(items["coherence"]),
        "ce": finite_mean(items["ce"]), "length": finite_mean([float(x) for x in items["length"]]),
        "finished": finite_mean([1.0 if f else 0.0 for f in items["finished"]]),
        "n": len(items["trait"]), "tokens": sum(items["tokens"]), "rung": rung,
        "coherence_se": _standard_error(items["coherence"]),
    })
    return row


def _standard_error(xs: Sequence[float | None]) -> float | None:
    v = [x for x in xs if x is not None and math.isfinite(x)]
    if len(v) < 2:
        return None
    m = sum(v) / len(v)
    return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1) / len(v))


def replay(scores: Mapping[str, Mapping[str, Sequence[Any]]], items: Sequence[EvalItem]) -> ComputeItems:
    """A ``compute_items`` for :func:`successive_halving` that looks scores up instead of
    generating: ``scores`` maps a cell key to its ``ConditionRun.per_item()`` on every one of
    ``items`` (the exhaustive grid's, baselines included). Greedy decoding gives a cell the same
    score on a prompt in any rung, so a replayed search returns what a generating one does, and
    search settings (tie-breaks, floors, rung sizes) can be compared on one grid in seconds.

    >>> items = ["q0", "q1", "q2"]
    >>> scores = {"c": {k: [0, 1, 2] for k in PER_ITEM}}
    >>> Cell = type("Cell", (), {"key": "c"})
    >>> replay(scores, items)([Cell()], [items[2], items[0]])[0]["trait"]
    [2, 0]
    """
    position = {id(it): i for i, it in enumerate(items)}

    def compute(cells: Sequence[Condition], its: Sequence[EvalItem]) -> list[dict[str, list[Any]]]:
        missing = [c.key for c in cells if c.key not in scores]
        if missing:
            raise KeyError(f"no saved scores for cell {missing[0]!r}: replay needs the grid of every cell")
        if any(id(it) not in position for it in its):
            raise KeyError("replay was asked for a prompt outside the items it was given: pass it the "
                           "same item list the search runs on")
        return [{k: [scores[c.key][k][position[id(it)]] for it in its] for k in PER_ITEM} for c in cells]

    return compute


def successive_halving(
    cells: Sequence[Condition],
    items: Sequence[EvalItem],
    compute_items: ComputeItems,
    *,
    baselines: tuple[Condition, Condition],
    config: HalvingConfig | None = None,
    prior: Mapping[int, float] | None = None,
    ratio: float = COHERENCE_RATIO,
    checkpoint: SweepCheckpoint | None = None,
    cells_per_batch: int = 1,
    progress: bool = True,
    desc: str = "halving",
) -> SearchResult:
    """Successive halving over ``cells`` on the tune ``items`` (module docstring).

    ``compute_items(cells, items)`` runs the cells on those items (packed
    ``cells_per_batch`` at a time) and returns per cell the per-item lists of
    ``ConditionRun.per_item()``; ``baselines`` = (aligned, malicious).
    """
    config = config or HalvingConfig()
    order = list(range(len(items)))
    random.Random(config.seed).shuffle(order)
    shuffled = [items[i] for i in order]
    sizes = rung_sizes(len(shuffled), config.start_items, config.eta)
    survivors = prune_by_prior(cells, prior, config.top_layers)
    seen: dict[str, dict[str, list[Any]]] = {}  # cell key → per-item lists so far
    last: dict[str, dict[str, Any]] = {}  # cell key → row at its last rung
    rungs: list[dict[str, Any]] = []
    total = 0
    aligned, malicious = baselines
    chosen: dict[tuple[str, str], dict[str, Any] | None] = {}
    prev = 0
    for r, n in enumerate(sizes):
        new_items = shuffled[prev:n]

        def compute_many(group: Sequence[Condition], new_items=new_items) -> list[dict[str, Any]]:
            return [{"items": dict(x)} for x in compute_items(group, new_items)]

        todo = [aligned, malicious, *survivors]
        fresh = run_cells(todo, compute_many=compute_many, cells_per_batch=cells_per_batch,
                          checkpoint=checkpoint, progress=progress, prefix=f"r{r}|",
                          desc=f"{desc} rung {r + 1}/{len(sizes)} ({n} prompts)")
        tokens = 0
        for cell, got in zip(todo, fresh):
            seen[cell.key] = _merge(seen.get(cell.key), got["items"])
            last[cell.key] = _row(got, seen[cell.key], r)
            tokens += sum(got["items"]["tokens"])
        total += tokens
        floor = None
        if last[aligned.key]["coherence"] is not None:
            floor = ratio * last[aligned.key]["coherence"]
        rows = [last[c.key] for c in survivors]
        rung = {"rung": r, "items": n, "new_items": len(new_items), "cells": len(survivors),
                "tokens": tokens, "coherence_floor": floor}
        if n == len(shuffled):  # the last rung: choose as the sweep does
            chosen = choose_operating_points(rows, last[aligned.key]["coherence"], ratio=ratio)
            rungs.append(rung)
            break
        groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        for row in rows:
            groups.setdefault((row["method"], row["positions"]), []).append(row)
        keep: set[str] = set()
        for group in groups.values():
            k = max(config.min_keep, math.ceil(len(group) / config.eta))
            for ties in (("stronger", "paper") if config.ties == "both" else (config.ties,)):
                keep.update(row["key"] for row in rank_rows(group, floor, config.floor_z, ties)[:k])
            keep.add(rank_rows(group, floor)[0]["key"])  # the plain rule's pick goes on too
        survivors = [c for c in survivors if c.key in keep]
        rung["kept"] = len(survivors)
        rungs.append(rung)
        prev = n
    started = prune_by_prior(cells, prior, config.top_layers)
    return SearchResult(
        chosen=chosen, rows=[last[c.key] for c in started],
        baselines={"aligned": last[aligned.key], "malicious": last[malicious.key]},
        rungs=rungs, tokens=total, prior=None if prior is None else dict(prior),
        config=config.to_dict())
