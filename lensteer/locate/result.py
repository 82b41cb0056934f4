"""What a layer sweep found: one :class:`LocateRow` per site, and the :class:`LocateResult` that
holds them with the fitted directions, the samples and the projections; its table and its
persistence (``sweep.json`` and ``directions/*.safetensors``).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .. import io
from ..directions import TraitDirection, artifact_fields
from ..errors import ArtifactError

__all__ = ["FORMAT_VERSION", "LocateResult", "LocateRow"]

FORMAT_VERSION = 1


@dataclass
class LocateRow:
    """The sweep's numbers at one (layer, hook point). ``None`` where not computed.

    ``accuracy``/``auroc`` are held out (GroupKFold by scenario). ``cohens_d``, m, μ±, σ± are
    those of the direction fitted on all the data, on that same data (what steering uses); with
    few samples in many dimensions they look better than the held-out scores.
    """

    layer: int
    hook: str
    point: str
    accuracy: float
    auroc: float
    cohens_d: float | None
    cos_mean_diff: float
    boundary: float
    mu_pos: float
    sigma_pos: float
    mu_neg: float
    sigma_neg: float
    delta_mu: float
    gate_rate_neutral: float | None = None  # all tokens (prompt + response), what all-mode gates see
    gate_rate_neutral_response: float | None = None  # response tokens only
    gate_rate_aligned_tokens: float | None = None  # aligned training response tokens below m
    gate_rate_malicious_tokens: float | None = None  # malicious training response tokens below m
    # the per-token calibrated gate (docs/concepts.md, *Calibration*): threshold = a low percentile of aligned
    # per-token projections (``token_percentile``), and how often it fires
    token_threshold: float | None = None
    token_gate_rate_neutral: float | None = None
    token_gate_rate_malicious: float | None = None
    eval_accuracy: float | None = None  # direction fit on all train data, on the eval split
    eval_auroc: float | None = None
    # steerability predictors (lensteer.locate.predictors): where a push changes behaviour
    tf_effect: float | None = None  # largest teacher-forced margin change over the rules (nats/token)
    tf_effect_rules: dict[str, float] | None = None  # the same per rule, at its small α
    diff_consistency: float | None = None  # mean cos(aligned − malicious per pair, v̂)
    diff_consistency_sd: float | None = None  # its spread (population standard deviation)
    sign_split: float | None = None  # 1.0 when μ⁺ > m > μ⁻, else 0.0
    sign_split_pairs: float | None = None  # share of pairs with aligned > m > malicious

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LocateRow:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class LocateResult:
    """What :func:`locate` found; ``rows`` are layer-major, in the order of ``sites``."""

    trait: str
    model: dict[str, Any]
    method: str
    n_folds: int
    rows: list[LocateRow]
    cosine: list[list[float]]  # cos between the directions of every pair of sites
    recommended: list[int]
    recommendation: str
    directions: dict[str, TraitDirection] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    projections: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # response means
    token_projections: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def sites(self) -> list[str]:
        return [r.hook for r in self.rows]

    def row(self, layer: int, point: str = "resid_post") -> LocateRow:
        for r in self.rows:
            if r.layer == layer and r.point == point:
                return r
        raise KeyError(f"No sweep row for layer {layer}, {point}; swept: {', '.join(self.sites)}.")

    def predictor(self, name: str = "tf_effect", point: str = "resid_post") -> dict[int, float]:
        """``{layer: value}`` of a steerability predictor at ``point`` (higher = steer here);
        layers where it was not computed are left out. Names: ``tf_effect`` (the recommended
        default, :data:`~lensteer.locate.predictors.DEFAULT_PREDICTOR`), ``diff_consistency``,
        ``sign_split``, or any numeric row field (``auroc``, ``cohens_d``, ...)."""
        known = {f.name for f in fields(LocateRow) if f.name not in ("layer", "hook", "point", "tf_effect_rules")}
        if name not in known:
            raise KeyError(f"Unknown predictor {name!r}; choose from {', '.join(sorted(known))}.")
        out = {}
        for r in self.rows:
            value = getattr(r, name)
            if r.point == point and value is not None and math.isfinite(value):
                out[r.layer] = float(value)
        return out

    def direction(self, layer: int, point: str = "resid_post") -> TraitDirection:
        """The direction fitted on all the data at ``layer`` / ``point``."""
        return self.directions[self.row(layer, point).hook]

    # ------------------------------------------------------------------ reporting
    def table(self, point: str | None = None) -> str:
        """A fixed-width table, one line per site (only ``point`` when given).

        ``gate``: share of neutral tokens with ρ < m; ``tgate``: share below the per-token
        threshold (``token_threshold``). The steerability predictors: ``tf`` teacher-forced
        effect (nats/token), ``dcons``/``dsd`` difference consistency and its spread, ``split``
        the share of pairs split by m (``-``: not computed).
        """
        head = (f"{'layer':>5} {'hook':<10} {'acc':>5} {'auroc':>5} {'d':>6} {'cos':>5} "
                f"{'m':>8} {'mu+':>8} {'sd+':>7} {'mu-':>8} {'sd-':>7} {'gate':>5} {'tgate':>5} "
                f"{'tf':>6} {'dcons':>5} {'dsd':>5} {'split':>5}")
        lines = [head]
        for r in self.rows:
            if point and r.point != point:
                continue
            lines.append(
                f"{r.layer:>5} {r.point:<10} {r.accuracy:>5.2f} {r.auroc:>5.2f} "
                f"{_fmt(r.cohens_d, 6, 2)} {r.cos_mean_diff:>5.2f} {r.boundary:>8.3g} "
                f"{r.mu_pos:>8.3g} {r.sigma_pos:>7.3g} {r.mu_neg:>8.3g} {r.sigma_neg:>7.3g} "
                f"{_fmt(r.gate_rate_neutral, 5, 2)} {_fmt(r.token_gate_rate_neutral, 5, 2)} "
                f"{_fmt(r.tf_effect, 6, 3)} {_fmt(r.diff_consistency, 5, 2)} "
                f"{_fmt(r.diff_consistency_sd, 5, 2)} {_fmt(r.sign_split_pairs, 5, 2)}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return f"{self.table()}\nrecommended layers: {self.recommended}\n{self.recommendation}"

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: everything but the direction tensors (see :meth:`save`)."""
        return {
            "format_version": FORMAT_VERSION,
            "kind": "lensteer.LocateResult",
            "trait": self.trait,
            "model": self.model,
            "method": self.method,
            "n_folds": self.n_folds,
            "recommended": self.recommended,
            "recommendation": self.recommendation,
            "settings": self.settings,
            "sites": self.sites,
            "layers": [_finite(asdict(r)) for r in self.rows],
            "cosine": self.cosine,
            "samples": self.samples,
            "projections": self.projections,
            "token_projections": self.token_projections,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], directions: dict[str, TraitDirection] | None = None) -> LocateResult:
        return cls(
            trait=data["trait"],
            model=data["model"],
            method=data["method"],
            n_folds=data["n_folds"],
            rows=[LocateRow.from_dict(r) for r in data["layers"]],
            cosine=data["cosine"],
            recommended=data["recommended"],
            recommendation=data["recommendation"],
            directions=directions or {},
            samples=data.get("samples", []),
            projections=data.get("projections", {}),
            token_projections=data.get("token_projections", {}),
            settings=data.get("settings", {}),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``sweep.json`` and ``directions/<hook>.safetensors``; returns the sweep path.

        ``directions/`` is written aside and swapped in whole, so it never keeps directions of
        an earlier sweep; ``sweep.json`` is written last.
        """
        from ..outdir import staged_dir

        directory = Path(directory)
        with staged_dir(directory / "directions") as tmp:
            for hook, direction in self.directions.items():
                direction.save(tmp / f"{hook}.safetensors")
        path = directory / "sweep.json"
        io.write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> LocateResult:
        """Read what :meth:`save` wrote; a missing or damaged result raises a LensteerError."""
        directory = Path(directory)
        sweep = directory / "sweep.json"
        if not sweep.is_file():
            raise ArtifactError(f"No locate result in {directory} (no sweep.json): pass a folder "
                                "written by `lensteer locate`.")
        data = io.read_json(sweep)
        if not isinstance(data, dict) or data.get("kind") != "lensteer.LocateResult":
            raise ArtifactError(f"{sweep} is not a lensteer locate result.")
        directions = {}
        with artifact_fields(sweep):
            for hook in data["sites"]:
                path = directory / "directions" / f"{hook}.safetensors"
                if path.exists():
                    directions[hook] = TraitDirection.load(path)
            return cls.from_dict(data, directions)


def _fmt(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    """Non-finite floats become ``None`` (JSON has no NaN), also inside nested dicts."""
    return {k: _finite(v) if isinstance(v, dict) else
            (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


