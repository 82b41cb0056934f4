"""Probe metrics of a layer sweep: held-out accuracy and AUROC with folds grouped by scenario,
and the recommendation of candidate steering layers.

>>> import torch
>>> x = torch.cat([torch.randn(12, 4) + 3, torch.randn(12, 4) - 3])
>>> y = torch.tensor([1] * 12 + [0] * 12)
>>> accuracy, auroc = cross_validate(x, y, [f"s{i % 6}" for i in range(24)], n_folds=3)
>>> accuracy, auroc
(1.0, 1.0)
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ..directions import fit_direction
from ..errors import FitError
from .contrastive import ALIGNED, MALICIOUS
from .result import LocateRow

__all__ = ["SEPARABLE_AUROC", "cross_validate", "recommend"]

#: Held-out AUROC from which a site counts as separating the classes (for the recommendation).
SEPARABLE_AUROC = 0.9


def cross_validate(
    embeddings: Tensor,
    labels: Tensor,
    groups: Sequence[str],
    *,
    method: str = "logistic",
    n_folds: int = 5,
) -> tuple[float, float]:
    """Held-out (accuracy, AUROC) with GroupKFold over ``groups`` (scenarios).

    Accuracy is pooled over the out-of-fold predictions (score = projection − m > 0); AUROC is
    the mean of the per-fold AUROCs of the projection.
    """
    import numpy as np
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    labels = torch.as_tensor(labels)
    classes = set(labels.tolist())
    if classes != {ALIGNED, MALICIOUS}:
        raise FitError(
            f"Cross-validation needs aligned (1) and malicious (0) samples; got labels {sorted(classes)}. "
            "Single-class data cannot be probed."
        )
    n_groups = len(set(groups))
    if n_folds < 2:
        raise FitError(f"n_folds must be at least 2, got {n_folds}.")
    if n_groups < n_folds:
        raise FitError(
            f"Only {n_groups} scenarios for {n_folds}-fold cross-validation grouped by scenario: "
            f"use at least {n_folds} scenarios (max_scenarios) or fewer folds (n_folds)."
        )
    scores = torch.zeros(len(labels), dtype=torch.float32)
    aurocs = []
    splitter = GroupKFold(n_splits=n_folds)
    group_ids = np.unique(np.asarray(groups), return_inverse=True)[1]
    for train, test in splitter.split(np.zeros(len(labels)), labels.numpy(), group_ids):
        tr, te = torch.from_numpy(train), torch.from_numpy(test)
        y_tr = labels[tr]
        pos, neg = embeddings[tr][y_tr == ALIGNED], embeddings[tr][y_tr == MALICIOUS]
        if len(pos) < 2 or len(neg) < 2:
            raise FitError(
                f"A training fold has {len(pos)} aligned and {len(neg)} malicious samples: too few "
                "samples for the folds. Add scenarios or use fewer folds."
            )
        d = fit_direction(pos, neg, method=method)
        s = d.project(embeddings[te]) - d.boundary
        scores[te] = s
        y_te = labels[te].numpy()
        if len(set(y_te.tolist())) == 2:
            aurocs.append(float(roc_auc_score(y_te, s.numpy())))
    accuracy = float(((scores > 0).long() == labels).float().mean())
    auroc = float(np.mean(aurocs)) if aurocs else float("nan")
    return accuracy, auroc


def _auroc(labels: Tensor, scores: Tensor) -> float:
    from sklearn.metrics import roc_auc_score

    if len(set(labels.tolist())) < 2:
        return float("nan")
    return float(roc_auc_score(labels.numpy(), scores.numpy()))


def recommend(rows: Sequence[LocateRow], point: str | None = None) -> tuple[list[int], str]:
    """A short list of candidate steering layers and why (docs/concepts.md, *Calibration*).

    Candidates: the first layer whose held-out AUROC reaches 0.9, the middle of the separable
    range, the layer with the largest Cohen's d, and — when the rows carry it — the layer with
    the largest teacher-forced effect (the steerability predictor that ordered the layers as the
    full steering grid did on the organism and the persona model, docs/predictors.md). Probe metrics say where the trait
    is readable, not where steering changes behaviour, so the reason says to run a steering sweep.
    """
    point = point or (rows[0].point if rows else "resid_post")
    rows = sorted((r for r in rows if r.point == point), key=lambda r: r.layer)
    if not rows:
        return [], "Nothing was swept."
    caveat = (
        "Probe accuracy shows where the trait is linearly readable, not where steering changes "
        "behaviour (on a 4-layer prototype organism probes were perfect at layers 2–3 but only "
        "steering at layers 0–1 restored honesty; see docs/concepts.md, 'Choosing a layer'). Choose the steering layer with a steering "
        "sweep over these candidates and the layers before them."
    )
    pushed = [r for r in rows if r.tf_effect is not None and math.isfinite(r.tf_effect)]
    steerable = max(pushed, key=lambda r: r.tf_effect or 0.0) if pushed else None
    push_note = "" if steerable is None else (
        f" A small push moves the aligned-vs-malicious log-likelihood margin most at layer "
        f"{steerable.layer} (teacher-forced effect {steerable.tf_effect:.3g} nats/token; the "
        "steerability predictor, docs/predictors.md).")
    good = [r for r in rows if not math.isnan(r.auroc) and r.auroc >= SEPARABLE_AUROC]
    if not good:
        best = max(rows, key=lambda r: -1 if math.isnan(r.auroc) else r.auroc)
        return sorted({best.layer} | ({steerable.layer} if steerable else set())), (
            f"No {point} layer separates the classes (best held-out AUROC {best.auroc:.2f} at "
            f"layer {best.layer}); the trait may not be expressed under these prompts (check the "
            f"responses) or not linearly.{push_note} {caveat}"
        )
    first = good[0]
    middle = good[len(good) // 2]
    strongest = max(good, key=lambda r: r.cohens_d if r.cohens_d is not None else math.inf)
    layers = sorted({first.layer, middle.layer, strongest.layer}
                    | ({steerable.layer} if steerable else set()))
    span = f"{good[0].layer}–{good[-1].layer}" if len(good) > 1 else f"{good[0].layer}"
    gate = ""
    if first.gate_rate_neutral is not None:
        gate = (f" At layer {first.layer} the gate ρ < m fires on {first.gate_rate_neutral:.0%} of "
                "neutral tokens.")
    text = (
        f"{len(good)} {point} layers ({span}) separate the classes with held-out AUROC ≥ "
        f"{SEPARABLE_AUROC}. Candidates: first separable layer {first.layer}, middle "
        f"{middle.layer}, largest Cohen's d {strongest.layer}.{push_note}{gate} {caveat}"
    )
    return layers, text
