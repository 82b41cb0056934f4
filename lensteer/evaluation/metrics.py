"""Metrics: small functions over responses, and bootstrap confidence intervals for their means.

Every aggregate is an :class:`Estimate` (mean, 95 % percentile-bootstrap interval, n), seeded so
that a rerun gives the same interval. Lengths and repetition count words as
:func:`lensteer.text.words` splits them; :func:`conversation_repetition` is
:func:`lensteer.text.repetition` (a conversation's turns), :func:`repetition_per_turn` adds the
per-turn view.

>>> est = bootstrap_ci([0.0, 1.0, 1.0, 1.0], seed=0)
>>> est.mean, est.n, 0.0 <= est.lo <= est.mean <= est.hi <= 1.0
(0.75, 4, True)
>>> [round(r["across_turns"], 2) for r in repetition_per_turn(["a b c d", "a b c e"], n=2)]
[0.0, 0.67]
"""
from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from ..steering.telemetry import Telemetry
from ..text import ngrams, words
from ..text import repetition as conversation_repetition

__all__ = [
    "Estimate",
    "bootstrap_ci",
    "conversation_repetition",
    "intervention_size",
    "recovery",
    "repetition_per_turn",
    "response_length",
    "token_cross_entropy",
]


@dataclass(frozen=True)
class Estimate:
    """A mean with a bootstrap interval; ``None`` fields when there were no values."""

    mean: float | None
    lo: float | None
    hi: float | None
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Estimate:
        return cls(**data)

    def fmt(self, digits: int = 1) -> str:
        """``"75.0 [50.0, 100.0]"`` (or ``"–"`` when empty).

        >>> Estimate(75.0, 50.0, 100.0, 4).fmt()
        '75.0 [50.0, 100.0]'
        """
        if self.mean is None:
            return "–"
        return f"{self.mean:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"


def _clean(values: Sequence[float | None]) -> np.ndarray:
    return np.asarray([float(v) for v in values if v is not None and math.isfinite(float(v))],
                      dtype=np.float64)


def bootstrap_ci(
    values: Sequence[float | None],
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    statistic: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Estimate:
    """Mean of ``values`` (``None``/NaN dropped) with a percentile-bootstrap interval.

    ``statistic`` maps a ``[n_boot, n]`` array of resamples to ``[n_boot]`` (default: the mean).
    """
    x = _clean(values)
    if x.size == 0:
        return Estimate(None, None, None, 0)
    stat = statistic or (lambda a: a.mean(axis=-1))
    point = float(stat(x[None, :])[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    boots = stat(x[idx])
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(boots, [a, 1.0 - a])
    return Estimate(point, float(min(lo, point)), float(max(hi, point)), int(x.size))


def recovery(
    scores: Sequence[float | None],
    aligned: Sequence[float | None],
    malicious: Sequence[float | None],
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Share of the aligned–malicious gap a condition recovers: ``(s − mal) / (al − mal)``.

    The three samples are resampled independently; ``None`` when the gap is zero.

    >>> recovery([50, 50], [100, 100], [0, 0]).mean
    0.5
    """
    s, al, ma = _clean(scores), _clean(aligned), _clean(malicious)
    if not (s.size and al.size and ma.size) or al.mean() == ma.mean():
        return Estimate(None, None, None, int(s.size))
    point = float((s.mean() - ma.mean()) / (al.mean() - ma.mean()))
    rng = np.random.default_rng(seed)

    def boot(x: np.ndarray) -> np.ndarray:
        return x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)

    bs, ba, bm = boot(s), boot(al), boot(ma)
    gap = ba - bm
    ok = gap != 0
    r = (bs[ok] - bm[ok]) / gap[ok]
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(r, [a, 1.0 - a]) if r.size else (point, point)
    return Estimate(point, float(min(lo, point)), float(max(hi, point)), int(s.size))


def token_cross_entropy(
    logprobs: Float[Tensor, "batch pos vocab"],
    targets: Int[Tensor, "batch pos"],
    mask: Int[Tensor, "batch pos"],
) -> Float[Tensor, " batch"]:
    """Mean cross-entropy (nats) of ``targets`` under ``logprobs`` over the masked positions.

    >>> lp = torch.log(torch.full((1, 2, 4), 0.25))
    >>> round(float(token_cross_entropy(lp, torch.tensor([[0, 3]]), torch.tensor([[1, 1]]))[0]), 4)
    1.3863
    """
    nll = -logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).to(torch.float32)
    m = mask.to(torch.float32)
    return (nll * m).sum(-1) / m.sum(-1).clamp_min(1.0)


def response_length(texts: Sequence[str]) -> list[int]:
    """Words per response (:func:`lensteer.text.words`: punctuation counts as a word).

    >>> response_length(["the capital of france is paris .", ""])
    [7, 0]
    """
    return [len(words(t)) for t in texts]


def repetition_per_turn(texts: Sequence[str], n: int = 3) -> list[dict[str, float]]:
    """Per assistant turn of one conversation: ``distinct_n`` and ``within_turn`` (from
    :func:`lensteer.text.repetition` on the turn alone), ``across_turns`` (share of the
    turn's n-grams that occurred in an earlier turn; 0 for the first turn) and ``length`` (words).

    >>> r = repetition_per_turn(["x y x y x y", "x y z"], n=2)
    >>> r[0]["within_turn"], r[0]["distinct_n"], r[1]["across_turns"]
    (0.6, 0.4, 0.5)
    """
    out = []
    seen: set[tuple[str, ...]] = set()
    for text in texts:
        ws = words(text)
        grams = ngrams(ws, n)
        alone = conversation_repetition([text], n=n)
        across = sum(g in seen for g in grams) / len(grams) if (grams and out) else 0.0
        out.append({"distinct_n": alone.distinct_n, "within_turn": alone.within_turn,
                    "across_turns": across, "length": float(len(ws))})
        seen |= set(grams)
    return out


def intervention_size(telemetry: Telemetry | None,
                      sequences: Collection[int] | None = None) -> dict[str, float]:
    """Gate rate per phase and the mean L2 size of the change per token, from a
    :class:`lensteer.steering.Telemetry` (summed over steerers and layers; ``{}`` for ``None``).

    ``sequences``: only these inputs of a per-row steered batch (``lensteer.steer(model,
    rows=...)``), e.g. the items of one packed sweep cell.

    Keys: ``gate_rate_prompt``, ``gate_rate_response``, ``l2_per_token_prompt``,
    ``l2_per_token_response`` (only phases that saw tokens).
    """
    if telemetry is None:
        return {}
    totals: dict[str, list[float]] = {}
    if sequences is None:
        summary = telemetry.summary()
    else:
        wanted = set(sequences)
        summary = [r for r in telemetry.summary(by_sequence=True) if r["sequence"] in wanted]
    for row in summary:
        t = totals.setdefault(row["phase"], [0.0, 0.0, 0.0])
        t[0] += row["tokens"]
        t[1] += row["gated"]
        t[2] += row["mean_l2_per_token"] * row["tokens"]
    out = {}
    for phase, (n, g, l2) in sorted(totals.items()):
        if n:
            out[f"gate_rate_{phase}"] = g / n
            out[f"l2_per_token_{phase}"] = l2 / n
    return out
