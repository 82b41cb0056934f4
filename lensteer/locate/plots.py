"""Matplotlib figures of a layer sweep. Each function returns a Figure and takes an optional ``ax``.

Nothing here picks a backend: scripts and the CLI select Agg; notebooks keep theirs.

>>> import os, tempfile
>>> import lensteer
>>> model = lensteer.load_model("organism")
>>> result = lensteer.locate(model, "honesty", layers=[1, 2, 3], max_scenarios=6, n_folds=2,
...                          max_new_tokens=12, greedy=True, per_token=False, neutral=False,
...                          progress=False)
>>> fig = plot_sweep(result)
>>> type(fig).__name__, len(fig.axes), fig.axes[0].get_title()
('Figure', 2, 'honesty on organism (resid_post, logistic)')
>>> fig.savefig(os.path.join(tempfile.mkdtemp(), "sweep.png"))
>>> fig = plot_predictors(result)
>>> [text.get_text() for text in fig.axes[0].get_legend().get_texts()]  # doctest: +NORMALIZE_WHITESPACE
['teacher-forced effect (nats/token)', '  stmp', '  sttp', '  swfc', 'pairs split by m',
 'held-out AUROC', 'difference consistency']
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .result import LocateResult


def _axes(ax: Any, **subplots: Any) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(**subplots)
    return fig, fig.add_subplot(1, 1, 1)


def plot_sweep(result: LocateResult, point: str | None = None, ax: Any = None) -> Any:
    """Held-out accuracy and AUROC (left axis) and Cohen's d (right axis) vs layer."""
    point = point or result.rows[0].point
    rows = sorted((r for r in result.rows if r.point == point), key=lambda r: r.layer)
    fig, ax = _axes(ax, figsize=(7, 3.8))
    layers = [r.layer for r in rows]
    ax.plot(layers, [r.accuracy for r in rows], "o-", label="held-out accuracy")
    ax.plot(layers, [r.auroc for r in rows], "s--", label="held-out AUROC")
    if any(r.eval_accuracy is not None for r in rows):
        ax.plot(layers, [r.eval_accuracy for r in rows], "^:", label="eval-split accuracy")
    ax.set_ylim(0.4, 1.02)
    ax.set_xlabel("layer")
    ax.set_ylabel("probe score")
    twin = ax.twinx()
    twin.plot(layers, [r.cohens_d if r.cohens_d is not None else float("nan") for r in rows],
              "d-", color="tab:red", alpha=0.7, label="Cohen's d (fit data)")
    twin.set_ylabel("Cohen's d", color="tab:red")
    for layer in result.recommended:
        ax.axvline(layer, color="grey", lw=0.8, ls=":")
    handles = ax.get_legend_handles_labels()
    extra = twin.get_legend_handles_labels()
    ax.legend(handles[0] + extra[0], handles[1] + extra[1], loc="lower right", fontsize=8)
    ax.set_title(f"{result.trait} on {result.model.get('name', '?')} ({point}, {result.method})")
    return fig


def plot_predictors(result: LocateResult, point: str | None = None, ax: Any = None) -> Any:
    """The steerability predictors vs layer (docs/predictors.md): the teacher-forced effect
    (left axis; a marker per rule, the line is the best rule), difference consistency with its
    spread and the share of pairs split by m (right axis, 0–1); held-out AUROC dotted for
    comparison. Predictors not computed are left out."""
    point = point or result.rows[0].point
    rows = sorted((r for r in result.rows if r.point == point), key=lambda r: r.layer)
    fig, ax = _axes(ax, figsize=(7, 3.8))
    layers = [r.layer for r in rows]
    nan = float("nan")
    ax.plot(layers, [nan if r.tf_effect is None else r.tf_effect for r in rows], "o-",
            color="tab:purple", label="teacher-forced effect (nats/token)")
    rules = sorted({k for r in rows for k in (r.tf_effect_rules or {})})
    for marker, rule in zip("v^<>sp*", rules):
        ax.plot(layers, [(r.tf_effect_rules or {}).get(rule, nan) for r in rows], marker,
                color="tab:purple", alpha=0.45, ls="none", label=f"  {rule}")
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xlabel("layer")
    ax.set_ylabel("Δ log-lik margin (nats/token)", color="tab:purple")
    twin = ax.twinx()
    mean = [nan if r.diff_consistency is None else r.diff_consistency for r in rows]
    sd = [0.0 if r.diff_consistency_sd is None else r.diff_consistency_sd for r in rows]
    twin.errorbar(layers, mean, yerr=sd, fmt="s--", color="tab:green", capsize=3,
                  label="difference consistency")
    twin.plot(layers, [nan if r.sign_split_pairs is None else r.sign_split_pairs for r in rows],
              "d:", color="tab:orange", label="pairs split by m")
    twin.plot(layers, [r.auroc for r in rows], ".:", color="grey", label="held-out AUROC")
    twin.set_ylim(-0.05, 1.05)
    twin.set_ylabel("cosine / share / AUROC")
    handles = ax.get_legend_handles_labels()
    extra = twin.get_legend_handles_labels()
    ax.legend(handles[0] + extra[0], handles[1] + extra[1], loc="best", fontsize=7)
    ax.set_title(f"steerability predictors: {result.trait} ({point})")
    return fig


def plot_projection_histogram(
    result: LocateResult,
    layer: int,
    point: str = "resid_post",
    kind: str = "response",
    ax: Any = None,
    bins: int = 30,
) -> Any:
    """Histogram of projections at one site, with m and μ⁺ ± σ⁺ marked.

    ``kind="response"``: response-averaged projections (what m and μ±, σ± are fitted on);
    ``kind="token"``: per-token projections of aligned, malicious and neutral tokens (what a
    per-token gate sees).
    """
    row = result.row(layer, point)
    source = result.projections if kind == "response" else result.token_projections
    if row.hook not in source:
        raise KeyError(f"No {kind} projections for {row.hook} (run locate with per_token=True).")
    data = source[row.hook]
    fig, ax = _axes(ax, figsize=(5, 3.5))
    colours = {"pos": ("tab:blue", "aligned"), "neg": ("tab:orange", "malicious"),
               "neutral": ("tab:green", "neutral (all tokens)")}
    values = [v for key in colours if key in data for v in data[key]]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    edges = [lo + (hi - lo) * i / bins for i in range(bins + 1)] if hi > lo else bins
    for key, (colour, label) in colours.items():
        if data.get(key):
            ax.hist(data[key], bins=edges, alpha=0.5, color=colour, label=label, density=True)
    ax.axvline(row.boundary, color="black", lw=1.5, label=f"m = {row.boundary:.3g}")
    ax.axvline(row.mu_pos, color="tab:blue", lw=1, ls="--", label="μ⁺ ± σ⁺")
    ax.axvspan(row.mu_pos - row.sigma_pos, row.mu_pos + row.sigma_pos, color="tab:blue", alpha=0.1)
    ax.set_xlabel("projection on v̂")
    ax.set_title(f"layer {layer} {point}: {'response means' if kind == 'response' else 'per token'}",
                 fontsize=10)
    ax.legend(fontsize=7)
    return fig


def plot_projections(
    result: LocateResult, layer: int, point: str = "resid_post", ax: Sequence[Any] | None = None
) -> Any:
    """Response-averaged and per-token projection histograms side by side (``ax``: two axes)."""
    if ax is None:
        from matplotlib.figure import Figure

        ax = Figure(figsize=(10, 3.6)).subplots(1, 2)
    assert ax is not None
    fig = ax[0].figure
    plot_projection_histogram(result, layer, point, "response", ax=ax[0])
    if result.row(layer, point).hook in result.token_projections:
        plot_projection_histogram(result, layer, point, "token", ax=ax[1])
    else:
        ax[1].text(0.5, 0.5, "no per-token projections", ha="center", va="center")
        ax[1].set_axis_off()
    return fig


def plot_cosine(result: LocateResult, ax: Any = None) -> Any:
    """Heatmap of cos(v̂_i, v̂_j) between every pair of swept sites."""
    fig, ax = _axes(ax, figsize=(5.5, 4.6))
    image = ax.imshow(result.cosine, vmin=-1, vmax=1, cmap="RdBu_r")
    labels = [f"{r.layer}" if len({x.point for x in result.rows}) == 1 else f"{r.layer}:{r.point}"
              for r in result.rows]
    step = max(1, len(labels) // 15)
    ticks = list(range(0, len(labels), step))
    ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=90, fontsize=7)
    ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize=7)
    ax.set_xlabel("site")
    ax.set_ylabel("site")
    ax.set_title("cosine between directions")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return fig


__all__ = ["plot_cosine", "plot_predictors", "plot_projection_histogram", "plot_projections",
           "plot_sweep"]
