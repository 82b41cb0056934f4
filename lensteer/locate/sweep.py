"""The layer sweep: where is the trait linearly readable, and which directions does steering get?

:func:`locate` builds the contrastive set (on-policy generations under aligned and malicious
system prompts), pools response-mean activations for every requested layer and hook point in
one pass per batch, and for every site reports held-out probe accuracy and AUROC (GroupKFold,
grouped by scenario, so no scenario sits in both train and test), Cohen's d of the
projections, cos(direction, mean difference), the boundary m and μ±, σ±, and the per-token gate
rate on neutral text: the share of tokens of aligned, trait-free conversations whose projection
falls below m (the paper's untested worry that m, fit on response averages, fires on single
tokens). It fits one :class:`~lensteer.directions.TraitDirection` per site on all the data,
with per-token statistics for per-token calibration.

A small sweep of two layers on the bundled organism (a real one takes the defaults: every
layer, all scenarios, sampled answers, per-token statistics and neutral gate rates):

>>> import os, tempfile
>>> import lensteer
>>> model = lensteer.load_model("organism")
>>> result = lensteer.locate(model, "honesty", layers=[2, 3], max_scenarios=6, n_folds=2,
...                          max_new_tokens=12, greedy=True, per_token=False, neutral=False,
...                          progress=False)
>>> result.sites
['blocks.2.hook_resid_post', 'blocks.3.hook_resid_post']
>>> print(result.table())  # doctest: +ELLIPSIS
layer hook         acc auroc      d   cos        m      mu+     sd+      mu-     sd-  gate tgate     tf dcons   dsd split
    2 resid_post ...
    3 resid_post ...
>>> result.row(3).auroc
1.0
>>> d = result.direction(3)
>>> d.layer, d.trait, d.mu_pos > d.boundary > d.mu_neg
(3, 'honesty', True)
>>> path = os.path.join(tempfile.mkdtemp(), "honesty_L3.safetensors")
>>> d.save(path)
>>> lensteer.TraitDirection.load(path, model=model).boundary == d.boundary
True
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from ..directions import (
    FIT_METHODS,
    fit_direction,
    mean_difference,
    projection_stats,
    token_stats,
)
from ..errors import ActivationError, FitError, TraitFileError, UsageError
from ..generation import GenSettings
from ..hooks import parse_hook_name
from ..models import model_info
from ..protocols import LensModel
from ..traits import Trait, load_trait
from .activations import collect_activations, resolve_sites
from .contrastive import (
    ALIGNED,
    CONTRASTIVE_GEN,
    MALICIOUS,
    Sample,
    build_contrastive,
    build_neutral,
)
from .metrics import _auroc, cross_validate, recommend
from .predictors import (
    contrastive_pairs,
    difference_consistency,
    sign_split,
    small_push,
    teacher_forced_effect,
)
from .result import LocateResult, LocateRow

__all__ = ["locate"]


def _round(values: Tensor, digits: int = 5) -> list[float]:
    return [float(f"{v:.{digits}g}") for v in values.tolist()]


# ====================================================================== the sweep
def locate(
    model: LensModel,
    trait: str | os.PathLike | Trait,
    *,
    layers: Sequence[int] | None = None,
    hooks: Sequence[str] | str = ("resid_post",),
    method: str = "logistic",
    n_folds: int = 5,
    responses: Literal["on_policy", "given"] = "on_policy",
    prompts_per_scenario: int = 1,
    max_scenarios: int | None = None,
    gen: GenSettings | None = None,
    max_new_tokens: int | None = None,
    greedy: bool | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    per_token: bool = True,
    neutral: bool = True,
    evaluate: bool = False,
    samples: Sequence[Sample] | None = None,
    drop_empty: bool = False,
    token_percentile: float = 5.0,
    tf_effect: bool = True,
    push: Mapping[str, float] | None = None,
    tf_pairs: int | None = 32,
    progress: bool | None = None,
) -> LocateResult:
    """Sweep layers × hook points for ``trait`` on ``model`` (see the module docstring).

    Args:
        trait: a bundled name (the organism's files when ``model`` is the organism), a trait
            file path, or a :class:`~lensteer.traits.Trait`.
        layers, hooks: the sites (default: every layer's ``resid_post``).
        method: ``"logistic"`` (the paper's), ``"mean_diff"`` or ``"pca"``.
        n_folds: GroupKFold folds, grouped by scenario.
        gen: how the contrastive and neutral responses are generated (default
            :data:`~lensteer.locate.contrastive.CONTRASTIVE_GEN`: 48 new tokens, T = 0.6,
            top-p 0.9, seed 0, batches of 8; ``batch_size`` is also the forward passes' batch);
            ``max_new_tokens``, ``greedy``, ``temperature``, ``top_p``, ``seed`` and
            ``batch_size`` override it.
        responses: ``"on_policy"`` (generate; T = 0.6, top-p 0.9, seeded; ``greedy`` optional)
            or ``"given"`` (the trait file's responses).
        prompts_per_scenario, max_scenarios: how many paraphrases per scenario and scenarios.
        per_token: a second pass for per-token projections: each direction's
            :class:`~lensteer.directions.TokenStats` and the token gate rates.
        neutral: generate responses to the trait's ``neutral_scenarios`` for the neutral gate rate.
        evaluate: also score each all-data direction on the eval split (held-out paraphrases
            and scenarios): ``eval_accuracy``, ``eval_auroc``.
        samples: reuse a contrastive set (from :func:`~lensteer.contrastive.build_contrastive`).
        token_percentile: the per-token calibrated gate's threshold is this percentile of the
            aligned per-token projections (``token_threshold`` and its gate rates).
        tf_effect: compute the teacher-forced effect, a steerability predictor (forward passes
            over (sites × rules + 1) × 2 responses per pair; the most costly predictor). The
            cheap ones (difference consistency, sign split) are always computed; see
            :mod:`lensteer.locate.predictors`.
        push: ``{rule: α}``, the small push of the teacher-forced effect (default
            :func:`~lensteer.locate.predictors.small_push`).
        tf_pairs: score the teacher-forced effect on at most this many contrastive pairs,
            evenly spread over the set (``None``: all); its cost grows with pairs × sites × rules.
        drop_empty: drop aligned/malicious pairs in which a response has zero tokens (with a
            warning naming their scenarios) instead of raising.
    """
    if method not in FIT_METHODS:
        raise FitError(f"Unknown method {method!r}; choose from {FIT_METHODS}.")
    settings = (gen or CONTRASTIVE_GEN).override(
        max_new_tokens=max_new_tokens, greedy=greedy, temperature=temperature, top_p=top_p,
        seed=seed, batch_size=batch_size)
    trait = load_trait(trait, model=model)
    sites = resolve_sites(model, layers, hooks)  # bad layers and hooks fail before generating
    _check_settings(trait, n_folds=n_folds, responses=responses, max_scenarios=max_scenarios,
                    prompts_per_scenario=prompts_per_scenario, evaluate=evaluate,
                    token_percentile=token_percentile, check_scenarios=samples is None,
                    settings=settings)
    push = _check_push(push)
    if tf_pairs is not None and tf_pairs < 1:
        raise UsageError(f"tf_pairs must be at least 1 (or None for all pairs), got {tf_pairs}.")
    batch_size = settings.batch_size
    gen_kw: dict[str, Any] = dict(gen=settings, progress=progress)
    if samples is None:
        samples = build_contrastive(model, trait, responses=responses, max_scenarios=max_scenarios,
                                    prompts_per_scenario=prompts_per_scenario, **gen_kw)
    samples = _check_empty(list(samples), drop_empty)
    labels = torch.tensor([s.label for s in samples])
    groups = [s.scenario for s in samples]
    acts = collect_activations(model, [s.input_ids for s in samples], [s.span for s in samples],
                               sites=sites, batch_size=batch_size, progress=progress,
                               names=[s.scenario for s in samples])
    data_hash = _samples_hash(samples)
    info = model_info(model).to_dict()

    rows, directions, projections = [], {}, {}
    pos_mask, neg_mask = labels == ALIGNED, labels == MALICIOUS
    pairs = contrastive_pairs(samples)
    pair_pos, pair_neg = [a for a, _ in pairs], [m for _, m in pairs]
    for site in sites:
        layer, point = parse_hook_name(site)
        emb = acts.at(site)
        accuracy, auroc = cross_validate(emb, labels, groups, method=method, n_folds=n_folds)
        pos, neg = emb[pos_mask], emb[neg_mask]
        d = fit_direction(pos, neg, method=method, layer=layer, hook=site, model=model,
                          trait=trait.name, data_hash=data_hash)
        diff = mean_difference(pos, neg)
        cos = float(d.v_hat @ diff / diff.norm().clamp_min(1e-12))
        stats = projection_stats(d.project(pos), d.project(neg))
        d.extra.update(accuracy=accuracy, auroc=auroc, cos_mean_diff=cos)
        directions[site] = d
        projections[site] = {"pos": _round(d.project(pos)), "neg": _round(d.project(neg))}
        rows.append(LocateRow(
            layer=layer, hook=site, point=point, accuracy=accuracy, auroc=auroc,
            cohens_d=stats["cohens_d"] if math.isfinite(stats["cohens_d"]) else None,
            cos_mean_diff=cos, boundary=d.boundary, mu_pos=d.mu_pos, sigma_pos=d.sigma_pos,
            mu_neg=d.mu_neg, sigma_neg=d.sigma_neg, delta_mu=d.delta_mu,
        ))
        if pairs:
            row = rows[-1]
            row.diff_consistency, row.diff_consistency_sd = difference_consistency(
                emb[pair_pos], emb[pair_neg], d.v_hat)
            row.sign_split, row.sign_split_pairs = sign_split(
                d.project(emb[pair_pos]), d.project(emb[pair_neg]), d.boundary)

    if tf_effect and pairs:
        effects = teacher_forced_effect(model, samples, directions, push=push, max_pairs=tf_pairs,
                                        batch_size=max(batch_size, 16), progress=progress)
        for row in rows:
            row.tf_effect_rules = effects[row.hook]
            row.tf_effect = max(effects[row.hook].values())

    neutral_samples = build_neutral(model, trait, **gen_kw) if neutral and per_token else []
    token_projections: dict[str, dict[str, list[float]]] = {}
    if per_token:
        _per_token(model, samples, neutral_samples, rows, directions, token_projections,
                   batch_size=batch_size, progress=progress, percentile=token_percentile)
    if evaluate:
        eval_samples = build_contrastive(model, trait, split="eval", responses=responses,
                                         max_scenarios=max_scenarios,
                                         prompts_per_scenario=prompts_per_scenario, **gen_kw)
        eval_samples = _check_empty(eval_samples, drop_empty)
        ev = collect_activations(model, [s.input_ids for s in eval_samples],
                                 [s.span for s in eval_samples], sites=sites,
                                 batch_size=batch_size, progress=progress,
                                 names=[s.scenario for s in eval_samples])
        ev_labels = torch.tensor([s.label for s in eval_samples])
        for row in rows:
            score = directions[row.hook].project(ev.at(row.hook)) - row.boundary
            row.eval_accuracy = float(((score > 0).long() == ev_labels).float().mean())
            row.eval_auroc = _auroc(ev_labels, score)
        samples = samples + eval_samples

    v = torch.stack([directions[s].v_hat for s in sites])
    cosine = [[round(float(x), 6) for x in r] for r in (v @ v.T).clamp(-1, 1)]
    recommended, reason = recommend(rows, point=parse_hook_name(sites[0])[1])
    settings = dict(method=method, n_folds=n_folds, responses=responses,
                    prompts_per_scenario=prompts_per_scenario, max_scenarios=max_scenarios,
                    per_token=per_token, neutral=neutral, evaluate=evaluate, data_hash=data_hash,
                    token_percentile=token_percentile, tf_effect=tf_effect, push=push,
                    tf_pairs=tf_pairs if tf_effect else None,
                    trait_path=trait.path, **settings.to_dict())
    return LocateResult(
        trait=trait.name, model=info, method=method, n_folds=n_folds, rows=rows, cosine=cosine,
        recommended=recommended, recommendation=reason, directions=directions,
        samples=[s.to_dict() for s in samples] + [s.to_dict() for s in neutral_samples],
        projections=projections, token_projections=token_projections, settings=settings,
    )


def _check_settings(trait: Trait, *, n_folds: int, responses: str, max_scenarios: int | None,
                    prompts_per_scenario: int, evaluate: bool, token_percentile: float,
                    check_scenarios: bool, settings: GenSettings) -> None:
    """Everything :func:`locate` can check before generating a token."""
    minimum = {"n_folds": (n_folds, 2), "prompts_per_scenario": (prompts_per_scenario, 1),
               "max_new_tokens": (settings.max_new_tokens, 1), "batch_size": (settings.batch_size, 1),
               "max_scenarios": (max_scenarios, 1)}
    for name, (value, least) in minimum.items():
        if value is not None and value < least:
            raise UsageError(f"{name} must be at least {least}, got {value}.")
    if not settings.greedy and not settings.temperature >= 0:
        raise UsageError(
            f"temperature must be a number >= 0 (0 = greedy), got {settings.temperature}.")
    if not 0 <= token_percentile <= 100:
        raise UsageError(f"token_percentile must lie in [0, 100], got {token_percentile}.")
    if responses not in ("on_policy", "given"):
        raise UsageError(f"responses must be 'on_policy' or 'given', not {responses!r}.")
    if not check_scenarios:
        return
    n_scenarios = len(trait.scenarios[:max_scenarios])
    if n_scenarios < n_folds:
        raise FitError(
            f"Only {n_scenarios} scenarios for {n_folds}-fold cross-validation grouped by "
            f"scenario: use at least {n_folds} scenarios (max_scenarios, --max-scenarios) or fewer "
            "folds (n_folds, --folds)."
        )
    if responses == "given":
        splits = [trait.scenarios[:max_scenarios]] + ([trait.eval_scenarios[:max_scenarios]] if evaluate else [])
        missing = [s.id for split in splits for s in split if not s.has_responses]
        if missing:
            raise TraitFileError(
                f"responses='given' needs aligned_response and malicious_response on every "
                f"scenario of {trait.path or trait.name}; missing on {missing[:5]}. Use "
                "responses='on_policy' to generate them."
            )


def _check_push(push: Mapping[str, float] | None) -> dict[str, float]:
    """The teacher-forced effect's ``{rule: α}`` (default: each rule's smallest paper α), checked."""
    if push is None:
        return small_push()
    from ..steering import registry

    known = registry.rule_names()
    out = {}
    for rule, alpha in dict(push).items():
        if rule not in known:
            raise UsageError(f"push: unknown rule {rule!r}; choose from {', '.join(known)}.")
        if not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha < 0:
            raise UsageError(f"push: α of {rule} must be a finite number ≥ 0, got {alpha!r}.")
        out[rule] = float(alpha)
    if not out:
        raise UsageError("push needs at least one rule, e.g. {'stmp': 1.0}; or pass tf_effect=False.")
    return out


def _check_empty(samples: list[Sample], drop: bool) -> list[Sample]:
    """Raise on zero-token responses (naming their scenarios), or drop their pairs."""
    empty = [s for s in samples if s.n_tokens == 0]
    if not empty:
        return samples
    names = sorted({s.scenario for s in empty})
    if not drop:
        raise ActivationError(
            f"{len(empty)} responses have zero tokens (scenarios: {', '.join(names[:8])}), so they "
            "have no mean activation. Pass drop_empty=True to drop those pairs, or use more "
            "max_new_tokens / another seed."
        )
    warnings.warn(f"Dropping {len(empty)} zero-token responses and their pairs: scenarios {names}.")
    bad = {(s.scenario, s.paraphrase) for s in empty}
    return [s for s in samples if (s.scenario, s.paraphrase) not in bad]


def _per_token(model, samples, neutral_samples, rows, directions, out, *, batch_size, progress,
               percentile):
    """Second pass: per-token projections of training responses and neutral conversations."""
    everything = list(samples) + list(neutral_samples)
    # neutral conversations: every token (what all-mode steering gates); others: the response
    spans = [s.span for s in samples] + [(0, len(s.input_ids)) for s in neutral_samples]
    acts = collect_activations(
        model, [s.input_ids for s in everything], spans, sites=list(directions),
        directions=directions, batch_size=batch_size, progress=progress,
        names=[s.scenario for s in everything],
    )
    n = len(samples)
    for row in rows:
        per = acts.projections[row.hook]
        pos = torch.cat([per[i][:, 0] for i in range(n) if samples[i].label == ALIGNED])
        neg = torch.cat([per[i][:, 0] for i in range(n) if samples[i].label == MALICIOUS])
        direction = directions[row.hook]
        direction.token_stats = token_stats(pos, neg)
        m = row.boundary
        row.gate_rate_aligned_tokens = float((pos < m).float().mean())
        row.gate_rate_malicious_tokens = float((neg < m).float().mean())
        t = direction.token_stats.percentile_pos(percentile)
        row.token_threshold = t
        row.token_gate_rate_malicious = float((neg < t).float().mean())
        entry = {"pos": _round(pos), "neg": _round(neg)}
        if neutral_samples:
            full = [per[n + j][:, 0] for j in range(len(neutral_samples))]
            response = [p[s.span[0]:s.span[1]] for p, s in zip(full, neutral_samples)]
            all_tokens, resp_tokens = torch.cat(full), torch.cat(response)
            row.gate_rate_neutral = float((all_tokens < m).float().mean())
            row.gate_rate_neutral_response = (
                float((resp_tokens < m).float().mean()) if resp_tokens.numel() else None
            )
            row.token_gate_rate_neutral = float((all_tokens < t).float().mean())
            direction.extra["gate_rate_neutral"] = row.gate_rate_neutral
            entry["neutral"] = _round(all_tokens)
        out[row.hook] = entry


def _samples_hash(samples: Sequence[Sample]) -> str:
    h = hashlib.sha256()
    for s in samples:
        h.update(json.dumps([s.scenario, s.label, s.input_ids, list(s.span)]).encode())
    return h.hexdigest()[:16]
