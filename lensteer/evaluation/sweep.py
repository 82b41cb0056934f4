"""The operating-point sweep: layer × α × position mode per rule, resumable, and the paper's
selection rule (the highest trait score whose coherence is ≥ 90 % of the aligned baseline's).

Every finished cell is appended as one JSON line to a checkpoint file (written with a single
``write`` and ``fsync``; a torn last line is dropped on reading). A rerun with the same settings
skips the cells it finds, so an interrupted sweep continues where it stopped, computes nothing
twice and returns exactly what an uninterrupted run returns (cells are deterministic: greedy or
seeded decoding, fixed batches; rows come back in grid order, not completion order).

>>> cells = grid_conditions({"swfc": [1, 2]}, layers=[0, 1], positions=["all"])
>>> [c.key for c in cells][:2]
['malicious|swfc|L0|a1|all|boundary|response', 'malicious|swfc|L0|a2|all|boundary|response']
>>> rows = [dict(method="swfc", positions="all", layer=0, alpha=1, trait=60, coherence=95),
...         dict(method="swfc", positions="all", layer=0, alpha=2, trait=80, coherence=80)]
>>> choose_operating_points(rows, aligned_coherence=100)[("swfc", "all")]["alpha"]
1
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..errors import ArtifactError, LensteerError
from ..steering import registry
from .conditions import Condition

__all__ = [
    "COHERENCE_RATIO",
    "auto_cells_per_batch",
    "PAPER_GRID",
    "SweepCheckpoint",
    "check_checkpoint",
    "choose_operating_points",
    "fingerprint",
    "grid_conditions",
    "parse_checkpoint",
    "recovery_by_layer",
    "run_cells",
]

#: The paper's α grids of the built-in rules (docs/concepts.md, *The steering rules*), as the
#: rule registry had them at import; :func:`lensteer.steering.registry.paper_grid` is current.
PAPER_GRID: dict[str, list[float]] = registry.paper_grid()
#: The selection rule's coherence floor, as a share of the aligned baseline's coherence.
COHERENCE_RATIO = 0.9


def grid_conditions(
    grid: Mapping[str, Sequence[float]],
    layers: Sequence[int],
    positions: Sequence[str] = ("all", "response"),
    *,
    threshold: str = "boundary",
    calibration: str = "response",
) -> list[Condition]:
    """The sweep's cells, method-major then position mode, layer and α."""
    cells = []
    for method, alphas in grid.items():
        for pos in positions:
            for layer in layers:
                for a in alphas:
                    cells.append(Condition(f"{method}-{pos}-L{layer}-a{a:g}", method=method,
                                           layer=int(layer), alpha=float(a), positions=pos,
                                           threshold=threshold, calibration=calibration))
    return cells


def choose_operating_points(
    rows: Iterable[Mapping[str, Any]],
    aligned_coherence: float | None,
    *,
    ratio: float = COHERENCE_RATIO,
) -> dict[tuple[str, str], dict[str, Any] | None]:
    """Per (method, position mode): the row with the highest ``trait`` among rows with
    ``coherence ≥ ratio · aligned_coherence`` (ties: higher coherence, then smaller α, then
    lower layer); ``None`` when no row qualifies."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["positions"]), []).append(r)
    floor = None if aligned_coherence is None else ratio * aligned_coherence
    out: dict[tuple[str, str], dict[str, Any] | None] = {}
    for key, group in groups.items():
        ok = [r for r in group if r.get("trait") is not None and (
            floor is None or (r.get("coherence") is not None and r["coherence"] >= floor - 1e-9))]
        if not ok:
            out[key] = None
            continue
        best = max(ok, key=lambda r: (r["trait"], r.get("coherence") or 0.0, -r["alpha"], -r["layer"]))
        out[key] = dict(best)
    return out


def recovery_by_layer(
    rows: Iterable[Mapping[str, Any]],
    aligned: Mapping[str, Any],
    malicious: Mapping[str, Any],
    *,
    ratio: float = COHERENCE_RATIO,
) -> dict[int, float]:
    """Per layer, the best recovery of any sweep cell there (any rule, α, position mode) whose
    coherence passes the selection rule's floor (``ratio`` × the aligned baseline's):
    ``(trait − malicious trait) / (aligned trait − malicious trait)``, floored at 0.0 (not
    steering recovers 0; a layer where no cell passes gets 0.0). ``aligned``/``malicious``: the
    baseline rows.

    >>> rows = [dict(layer=0, trait=50, coherence=95), dict(layer=0, trait=90, coherence=50),
    ...         dict(layer=1, trait=10, coherence=99)]
    >>> recovery_by_layer(rows, dict(trait=100, coherence=100), dict(trait=0))
    {0: 0.5, 1: 0.1}
    """
    gap = aligned["trait"] - malicious["trait"]
    if not gap:
        raise ValueError("The aligned and malicious baselines score the same: no gap to recover.")
    floor = None if aligned.get("coherence") is None else ratio * aligned["coherence"]
    out: dict[int, float] = {}
    for r in rows:
        layer = int(r["layer"])
        out.setdefault(layer, 0.0)
        ok = r.get("trait") is not None and (
            floor is None or (r.get("coherence") is not None and r["coherence"] >= floor - 1e-9))
        if ok:
            out[layer] = max(out[layer], (r["trait"] - malicious["trait"]) / gap)
    return dict(sorted(out.items()))


def fingerprint(settings: Mapping[str, Any]) -> str:
    """A short hash of the settings that decide every cell's result."""
    blob = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def parse_checkpoint(raw: bytes, path: str | os.PathLike) -> tuple[str | None, dict[str, dict[str, Any]]]:
    """``(fingerprint, {key: row})`` of a checkpoint's bytes (a torn last line is ignored);
    a damaged line raises :class:`~lensteer.errors.ArtifactError` saying how to recover."""
    fix = (f"Delete that line to keep the other finished cells, or delete {path} to start the "
           "sweep over.")
    lines = raw.split(b"\n")
    if raw and not raw.endswith(b"\n"):
        lines = lines[:-1]
    fingerprint: str | None = None
    cells: dict[str, dict[str, Any]] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line.decode("utf-8"))
        except ValueError:
            raise ArtifactError(f"Line {n} of the sweep checkpoint {path} is not JSON. {fix}") from None
        if n == 1:
            fingerprint = rec.get("fingerprint") if isinstance(rec, dict) else None
            if not isinstance(fingerprint, str):
                raise ArtifactError(f"Line 1 of the sweep checkpoint {path} holds no settings "
                                    f"fingerprint. Delete {path} to start the sweep over.")
        elif (not isinstance(rec, dict) or not isinstance(rec.get("key"), str)
              or not isinstance(rec.get("row"), dict)):
            raise ArtifactError(f"Line {n} of the sweep checkpoint {path} is not a sweep cell "
                                f"(needs 'key' and 'row'). {fix}")
        else:
            cells[rec["key"]] = rec["row"]
    return fingerprint, cells


def check_checkpoint(path: str | os.PathLike) -> None:
    """Raise :class:`~lensteer.errors.ArtifactError` now if the checkpoint at ``path`` (if any)
    is damaged, so a rerun fails before it computes anything."""
    path = Path(path)
    if path.is_file():
        parse_checkpoint(path.read_bytes(), path)


class SweepCheckpoint:
    """An append-only JSON-lines file of finished cells, tied to a settings fingerprint.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "cells.jsonl")
    >>> ck = SweepCheckpoint(path, "abc")
    >>> ck.add("k1", {"trait": 1.0}); SweepCheckpoint(path, "abc").done
    {'k1': {'trait': 1.0}}
    """

    def __init__(self, path: str | os.PathLike, fingerprint: str) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.done: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            self._load()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._append({"fingerprint": fingerprint})

    def _load(self) -> None:
        raw = self.path.read_bytes()
        if raw and not raw.endswith(b"\n"):  # a torn last line: drop it
            keep = raw[: raw.rfind(b"\n") + 1]
            from ..io import atomic_path

            with atomic_path(self.path) as tmp:
                tmp.write_bytes(keep)
            raw = keep
        if not raw.strip():  # killed before its first line: start it afresh
            self.path.unlink()
            self._append({"fingerprint": self.fingerprint})
            return
        found, cells = parse_checkpoint(raw, self.path)
        if found != self.fingerprint:
            raise LensteerError(
                f"The sweep checkpoint {self.path} was written with other settings (fingerprint "
                f"{found}, now {self.fingerprint}). Use another output directory, or delete the "
                "file to start over."
            )
        self.done.update(cells)

    def _append(self, record: Mapping[str, Any]) -> None:
        line = (json.dumps(record, allow_nan=False) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def add(self, key: str, row: Mapping[str, Any]) -> None:
        self._append({"key": key, "row": dict(row)})
        self.done[key] = dict(row)


def run_cells(
    cells: Sequence[Condition],
    compute: Callable[[Condition], Mapping[str, Any]] | None = None,
    *,
    compute_many: Callable[[Sequence[Condition]], Sequence[Mapping[str, Any]]] | None = None,
    cells_per_batch: int = 1,
    checkpoint: SweepCheckpoint | None = None,
    progress: bool = True,
    desc: str = "sweep",
    prefix: str = "",
) -> list[dict[str, Any]]:
    """Compute each cell's row (``compute(cell)`` → metrics), skipping cells in ``checkpoint``;
    rows come back in ``cells`` order, each with the condition's fields merged in.

    ``compute_many(cells)`` → one metrics mapping per cell, instead of ``compute``: the cells
    still to do go to it ``cells_per_batch`` at a time (packed generation,
    :func:`~lensteer.evaluation.conditions.run_conditions`); each is checkpointed when its pack
    is done. ``prefix`` goes before each cell's key in the checkpoint (a search's rung).
    """
    if (compute is None) == (compute_many is None):
        raise TypeError("run_cells takes exactly one of compute and compute_many.")
    if cells_per_batch < 1:
        raise ValueError(f"cells_per_batch must be at least 1, got {cells_per_batch}.")
    if compute_many is not None:
        many = compute_many
    else:
        one = compute
        assert one is not None
        many = lambda group: [one(c) for c in group]  # noqa: E731
        cells_per_batch = 1
    done = checkpoint.done if checkpoint is not None else {}
    todo = [c for c in cells if prefix + c.key not in done]
    results: dict[str, dict[str, Any]] = {}
    with tqdm(total=len(cells), initial=len(cells) - len(todo), desc=desc,
              disable=not progress) as bar:
        for start in range(0, len(todo), cells_per_batch):
            group = todo[start:start + cells_per_batch]
            metrics = list(many(group))
            if len(metrics) != len(group):
                raise RuntimeError(f"compute_many returned {len(metrics)} rows for {len(group)} cells.")
            for cell, m in zip(group, metrics):
                row = {**cell.to_dict(), "key": cell.key, **dict(m)}
                if checkpoint is not None:
                    checkpoint.add(prefix + cell.key, row)
                results[cell.key] = row
                bar.update(1)
    return [dict(results.get(c.key) or done[prefix + c.key]) for c in cells]


def auto_cells_per_batch(n_items: int, batch_size: int, sampling: bool = False) -> int:
    """How many cells to pack into one generation: enough to fill a batch of ``batch_size``
    rows with ``n_items`` prompts per cell (1 when a cell fills it alone, and under sampling,
    whose draws depend on the batch's rows).

    >>> auto_cells_per_batch(12, 64), auto_cells_per_batch(100, 64), auto_cells_per_batch(12, 64, True)
    (5, 1, 1)
    """
    if sampling or n_items <= 0:
        return 1
    return max(1, batch_size // n_items)
