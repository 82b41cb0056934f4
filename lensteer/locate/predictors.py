"""Steerability predictors: numbers per site that say where *steering* will work, not only
where the trait is readable (probes can be perfect at layers where no push changes behaviour).

- **teacher-forced effect** (``tf_effect``, the recommended default): push each rule at a
  fixed small strength (:func:`small_push`: the smallest α of its paper grid), and measure how
  much the push moves the log-likelihood margin between the aligned and the malicious response
  of each contrastive pair, both teacher-forced after the *malicious* prompt, per response
  token (nats). Per site, the largest effect over the rules. Forward passes only: per-row
  steering lets one batch carry rows steered at different sites and rules.
- **difference consistency** (``diff_consistency`` ± ``diff_consistency_sd``): the mean
  (and spread) over contrastive pairs of cos(aligned − malicious response means, v̂). High
  and tight: every scenario differs along v̂, so one push fits them all.
- **sign split** (``sign_split``): 1 when the class means project on opposite sides of the
  boundary m (μ⁺ > m > μ⁻), else 0; ``sign_split_pairs``: the share of pairs whose aligned
  response projects above m and whose malicious one below.

>>> import torch
>>> v = torch.tensor([1.0, 0.0])
>>> pos = torch.tensor([[2.0, 1.0], [3.0, -1.0]]); neg = torch.tensor([[0.0, 1.0], [1.0, -1.0]])
>>> difference_consistency(pos, neg, v)
(1.0, 0.0)
>>> sign_split(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0]), boundary=1.5)
(1.0, 1.0)
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TypeVar

import torch
from jaxtyping import Float
from torch import Tensor

from ..directions import TraitDirection
from ..errors import UsageError
from ..generation.forced import continuation_logprobs
from ..protocols import LensModel
from ..steering import make_steerer, registry, steer
from .contrastive import ALIGNED, MALICIOUS, Sample

__all__ = ["DEFAULT_PREDICTOR", "PREDICTORS", "contrastive_pairs", "difference_consistency",
           "sign_split", "small_push", "spearman", "spread", "teacher_forced_effect"]

T = TypeVar("T")

#: The predictors a :class:`~lensteer.locate.LocateResult` row can carry (higher = steer here).
PREDICTORS = ("tf_effect", "diff_consistency", "sign_split")
#: The one to use when only one is wanted (e.g. as a prior over layers).
DEFAULT_PREDICTOR = "tf_effect"


def small_push() -> dict[str, float]:
    """Each registered rule with a paper grid at the smallest α of that grid.

    >>> small_push()
    {'swfc': 1.0, 'sttp': 0.0, 'stmp': 1.0}
    """
    return {name: float(min(alphas)) for name, alphas in registry.paper_grid().items() if alphas}


def contrastive_pairs(samples: Sequence[Sample]) -> list[tuple[int, int]]:
    """``(aligned index, malicious index)`` of every pair: an aligned sample followed directly
    by a malicious one of the same scenario, the layout of
    :func:`~lensteer.locate.contrastive.build_contrastive`. The two ``paraphrase`` indices may
    differ: they index two prompt lists, which need not have one length.

    >>> s = lambda sc, label: Sample(sc, "", label, "", 0, [1, 2], (1, 2), "")
    >>> contrastive_pairs([s("a", 1), s("a", 0), s("b", 0), s("c", 1), s("c", 0), s("a", 1), s("a", 0)])
    [(0, 1), (3, 4), (5, 6)]
    """
    return [(i, i + 1) for i in range(len(samples) - 1)
            if samples[i].label == ALIGNED and samples[i + 1].label == MALICIOUS
            and samples[i].scenario == samples[i + 1].scenario]


def spread(items: Sequence[T], limit: int | None) -> list[T]:
    """At most ``limit`` of ``items``, evenly spaced, first and last included (all when
    ``limit`` is None or not smaller).

    >>> spread(list(range(10)), 4)
    [0, 3, 6, 9]
    """
    items = list(items)
    if limit is None or len(items) <= limit:
        return items
    if limit < 1:
        raise UsageError(f"max_pairs must be at least 1, got {limit}.")
    if limit == 1:
        return items[:1]
    return [items[round(i * (len(items) - 1) / (limit - 1))] for i in range(limit)]


def difference_consistency(
    pos: Float[Tensor, "pair d_model"],
    neg: Float[Tensor, "pair d_model"],
    v_hat: Float[Tensor, " d_model"],
) -> tuple[float, float]:
    """Mean and standard deviation (population) over pairs of cos(pos_i − neg_i, v̂)."""
    if pos.shape != neg.shape or pos.ndim != 2 or len(pos) == 0:
        raise UsageError(f"difference_consistency needs two [pairs, d_model] matrices of one "
                         f"shape with at least one pair; got {tuple(pos.shape)} and {tuple(neg.shape)}.")
    diff = (pos - neg).to(torch.float64)
    v = v_hat.to(torch.float64)
    cos = diff @ v / (diff.norm(dim=1) * v.norm()).clamp_min(1e-12)
    return float(cos.mean()), float(cos.std(unbiased=False))


def sign_split(
    pos_proj: Float[Tensor, " pair"],
    neg_proj: Float[Tensor, " pair"],
    boundary: float,
) -> tuple[float, float]:
    """``(1.0 if mean(pos) > m > mean(neg) else 0.0, share of pairs with pos_i > m > neg_i)``;
    ``pos_proj[i]`` and ``neg_proj[i]`` are the projections of pair ``i``'s two responses."""
    means = float(pos_proj.mean() > boundary and neg_proj.mean() < boundary)
    pairs = float(((pos_proj > boundary) & (neg_proj < boundary)).float().mean())
    return means, pairs


def teacher_forced_effect(
    model: LensModel,
    samples: Sequence[Sample],
    directions: Mapping[str, TraitDirection],
    *,
    push: Mapping[str, float] | None = None,
    positions: str = "all",
    max_pairs: int | None = None,
    batch_size: int = 16,
    progress: bool | None = None,
) -> dict[str, dict[str, float]]:
    """``{site: {rule: effect}}``: the mean over contrastive pairs of the change, under a small
    push of the rule at the site's direction, of the per-token log-likelihood margin

        mean log p(aligned response | malicious prompt) − mean log p(malicious response | malicious prompt)

    (steered minus unsteered, nats per token; positive = the push favours the aligned answer).
    ``push``: ``{rule: α}`` (default :func:`small_push`). ``max_pairs``: score at most this
    many pairs, evenly spread over the set (:func:`spread`). One teacher-forced pass over every
    row: the unsteered rows and one copy per (site, rule), steered per row.
    """
    push = dict(small_push() if push is None else push)
    if not push:
        raise UsageError("teacher_forced_effect needs at least one rule to push with.")
    pairs = spread(contrastive_pairs(samples), max_pairs)
    if not pairs:
        raise UsageError("teacher_forced_effect needs aligned/malicious pairs of one scenario "
                         "and paraphrase; the samples have none.")
    conditions: list[tuple[str, str] | None] = [None] + [(site, rule) for site in directions
                                                         for rule in push]
    steerers = {c: make_steerer(c[1], directions[c[0]], push[c[1]], positions=positions)
                for c in conditions if c is not None}
    prompts, conts, rows = [], [], []
    for cond in conditions:
        for a, m in pairs:
            prompt = samples[m].input_ids[:samples[m].span[0]]
            for k in (a, m):
                start, end = samples[k].span
                prompts.append(prompt)
                conts.append(samples[k].input_ids[start:end])
                rows.append(None if cond is None else steerers[cond])
    show = progress if progress is not None else len(prompts) > 4 * batch_size
    with steer(model, rows=rows):
        lps = continuation_logprobs(model, prompts, conts, batch_size=batch_size, progress=show)
    per = [float(lp.mean()) if lp.numel() else math.nan for lp in lps]
    n = len(pairs)
    margins = torch.tensor([per[2 * i] - per[2 * i + 1] for i in range(len(per) // 2)],
                           dtype=torch.float64).view(len(conditions), n)
    out: dict[str, dict[str, float]] = {}
    for j, cond in enumerate(conditions[1:], start=1):
        assert cond is not None
        out.setdefault(cond[0], {})[cond[1]] = float((margins[j] - margins[0]).nanmean())
    return out


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties get their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (Pearson on average ranks); NaN when either side is constant
    (a predictor that does not vary across layers ranks nothing).

    >>> round(spearman([1, 2, 3, 4], [10, 20, 40, 30]), 6)
    0.8
    >>> spearman([1, 1, 1], [1, 2, 3])
    nan
    """
    if len(x) != len(y) or len(x) < 2:
        raise ValueError(f"spearman needs two sequences of one length ≥ 2, got {len(x)} and {len(y)}.")
    rx, ry = torch.tensor(_ranks(list(x)), dtype=torch.float64), torch.tensor(_ranks(list(y)), dtype=torch.float64)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = float(rx.norm() * ry.norm())
    return float(rx @ ry) / denom if denom > 0 else math.nan
