"""Figures of an evaluation (``results`` = what :func:`lensteer.evaluation.evaluate` returns).

Each function returns a matplotlib Figure and takes an optional ``ax``; nothing picks a backend.

Usage (``results`` from an evaluation run; ``tests/test_eval_sweep.py`` draws them all)::

    fig = plot_trait_vs_alpha(results, "sttp")
    fig.savefig("sttp.png")
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..locate.plots import _axes
from ..steering import registry

__all__ = ["plot_capability", "plot_drift", "plot_drift_panels", "plot_frontier", "plot_repetition",
           "plot_trait_vs_alpha"]

_MODE_STYLE = {"all": "-", "response": "--", "prompt": ":"}
#: Colours by the rule's place in the registry (SwFC orange, StTP blue, StMP green, …).
_PALETTE = ("tab:orange", "tab:blue", "tab:green", "tab:purple", "tab:brown", "tab:pink",
            "tab:olive", "tab:cyan")


def _color(method: str) -> str:
    names = registry.rule_names()
    return _PALETTE[names.index(method) % len(_PALETTE)] if method in names else "tab:gray"


def _methods(results: Mapping[str, Any]) -> list[str]:
    """The rules with sweep rows, in registry order."""
    present = {r["method"] for r in results["sweep"]["rows"]}
    known = [m for m in registry.rule_names() if m in present]
    return known + sorted(present - set(known))


def _baselines(ax: Any, results: Mapping[str, Any], key: str = "trait") -> None:
    base = results["sweep"]["baselines"]
    for side, color in (("aligned", "black"), ("malicious", "tab:red")):
        value = base[side].get(key)
        if value is not None:
            ax.axhline(value, color=color, lw=0.9, ls=":", label=f"{side} baseline")


def plot_trait_vs_alpha(results: Mapping[str, Any], method: str, ax: Any = None) -> Any:
    """Trait score vs α for one rule: one line per layer (solid: all tokens, dashed: response
    only), the baselines dotted; the chosen points starred."""
    import matplotlib

    fig, ax = _axes(ax, figsize=(6.4, 4))
    rows = [r for r in results["sweep"]["rows"] if r["method"] == method]
    layers = sorted({r["layer"] for r in rows})
    cmap = matplotlib.colormaps["viridis"]
    for i, layer in enumerate(layers):
        color = cmap(i / max(1, len(layers) - 1))
        for mode, style in _MODE_STYLE.items():
            pts = sorted((r["alpha"], r["trait"]) for r in rows
                         if r["layer"] == layer and r["positions"] == mode and r["trait"] is not None)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=color, marker="o",
                        ms=3, label=f"L{layer} {mode}")
    for c in results["chosen"]:
        if c["method"] == method and c["row"] is not None:
            ax.plot(c["row"]["alpha"], c["row"]["trait"], "*", ms=14, color="gold",
                    markeredgecolor="black", zorder=5)
    _baselines(ax, results)
    ax.set_xlabel("α")
    ax.set_ylabel(f"{results['trait']} score (0–100)")
    ax.set_title(f"{registry.display_name(method)}: {results['trait']} vs α (tune split)")
    ax.legend(fontsize=6, ncol=2, loc="best")
    return fig


def plot_frontier(results: Mapping[str, Any], ax: Any = None) -> Any:
    """Coherence (x) vs trait score (y) of every sweep cell, by rule and mode; the coherence
    floor of the selection rule as a vertical line, chosen points starred."""
    fig, ax = _axes(ax, figsize=(6.4, 4.4))
    for method in _methods(results):
        color = _color(method)
        for mode, marker in (("all", "o"), ("response", "^")):
            pts = [(r["coherence"], r["trait"]) for r in results["sweep"]["rows"]
                   if r["method"] == method and r["positions"] == mode
                   and r["trait"] is not None and r["coherence"] is not None]
            if pts:
                ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, color=color,
                           marker=marker, alpha=0.6, label=f"{registry.display_name(method)} {mode}")
    for c in results["chosen"]:
        r = c["row"]
        if r is not None and r["coherence"] is not None:
            ax.plot(r["coherence"], r["trait"], "*", ms=14, color=_color(c["method"]),
                    markeredgecolor="black", zorder=5)
    floor = results["sweep"].get("coherence_floor")
    if floor is not None:
        ax.axvline(floor, color="grey", ls="--", lw=0.9, label="90 % of aligned coherence")
    base = results["sweep"]["baselines"]
    for side, color in (("aligned", "black"), ("malicious", "tab:red")):
        b = base[side]
        if b.get("coherence") is not None and b.get("trait") is not None:
            ax.plot(b["coherence"], b["trait"], "s", color=color, ms=8, label=f"{side} baseline")
    ax.set_xlabel("coherence (0–100)")
    ax.set_ylabel(f"{results['trait']} score (0–100)")
    ax.set_title("coherence–trait frontier (all sweep cells)")
    ax.legend(fontsize=7)
    return fig


def plot_capability(results: Mapping[str, Any], ax: Any = None) -> Any:
    """Capability accuracy per condition (option log-likelihood and generated letter) with
    bootstrap intervals."""
    import numpy as np

    fig, ax = _axes(ax, figsize=(7.5, 4))
    conds = results["conditions"]
    keys = [k for k in ("capability_loglik", "capability_letter")
            if any(k in c["metrics"] for c in conds)]
    x = np.arange(len(conds))
    width = 0.8 / max(1, len(keys))
    for i, key in enumerate(keys):
        means, lo, hi = [], [], []
        for c in conds:
            e = c["metrics"].get(key) or {}
            m = e.get("mean")
            means.append(np.nan if m is None else m)
            lo.append(0 if m is None else m - e["lo"])
            hi.append(0 if m is None else e["hi"] - m)
        ax.bar(x + i * width, means, width, yerr=[lo, hi], capsize=2,
               label=key.replace("capability_", "by "))
    ax.set_xticks(x + width * (len(keys) - 1) / 2)
    ax.set_xticklabels([c["name"] for c in conds], rotation=35, ha="right", fontsize=7)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title("capability per condition (test split)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_repetition(results: Mapping[str, Any], key: str = "across_turns", ax: Any = None) -> Any:
    """A per-turn multi-turn metric (default: share of a turn's 3-grams repeated from earlier
    turns) for each condition."""
    fig, ax = _axes(ax, figsize=(6.4, 4))
    for mt in results.get("multiturn", []):
        turns = mt["per_turn"]
        ys = [t[key]["mean"] for t in turns]
        style = "--" if mt["condition"].get("positions") == "response" and mt["condition"].get("method") else "-"
        ax.plot([t["turn"] for t in turns], ys, style, marker="o", ms=3, label=mt["name"])
    ax.set_xlabel("turn")
    ax.set_ylabel(key.replace("_", " "))
    ax.set_title(f"multi-turn: {key.replace('_', ' ')} per turn")
    ax.legend(fontsize=7)
    return fig


_DRIFT_LABELS = {"trait": "trait score (0–100)", "cross_entropy": "CE under aligned model (nats)",
                 "across_turns": "3-grams repeated from earlier turns", "gate_rate": "gate rate (response)",
                 "coherence": "coherence (judge)", "within_turn": "repeated 3-grams within turn",
                 "length": "length (words)", "gate_rate_prompt": "gate rate (prompt)",
                 "distinct_n": "distinct 3-grams"}


def plot_drift(runs: Sequence[Any], metric: str = "trait", ax: Any = None) -> Any:
    """One per-turn metric of multi-turn runs (:class:`~lensteer.evaluation.multiturn.MultiturnResult`
    or their ``to_dict()``), one line per run: colour by rule (unsteered: black aligned, red
    malicious), solid for ``all`` and dashed for ``response`` positions, filled markers for a
    carried KV cache and open ones for re-encoding; a band shows each turn's 95 % interval."""
    fig, ax = _axes(ax, figsize=(6.4, 4))
    for run in runs:
        data = run if isinstance(run, Mapping) else run.to_dict()
        cond = data["condition"]
        method = cond.get("method")
        color = _color(method) if method else ("black" if cond.get("side") == "aligned" else "tab:red")
        style = _MODE_STYLE.get(cond.get("positions", "all"), "-") if method else "-"
        rows = [t for t in data["per_turn"] if t[metric]["mean"] is not None]
        if not rows:
            continue
        xs = [t["turn"] for t in rows]
        carry = data.get("cache") == "carry"
        ax.plot(xs, [t[metric]["mean"] for t in rows], style, color=color, marker="o", ms=4,
                mfc=color if carry else "white", label=f"{cond['name']} ({data.get('cache', 'reencode')})")
        lo = [t[metric]["lo"] for t in rows]
        hi = [t[metric]["hi"] for t in rows]
        if all(v is not None for v in lo + hi):
            ax.fill_between(xs, lo, hi, color=color, alpha=0.08, lw=0)
    ax.set_xlabel("turn")
    ax.set_ylabel(_DRIFT_LABELS.get(metric, metric.replace("_", " ")))
    ax.set_title(f"per turn: {metric.replace('_', ' ')}")
    return fig


def plot_drift_panels(runs: Sequence[Any], metrics: Sequence[str] = (
        "trait", "cross_entropy", "across_turns", "gate_rate"), axes: Sequence[Any] | None = None) -> Any:
    """:func:`plot_drift` for several metrics side by side, with one legend (below the panels,
    or on the first of the given ``axes``)."""
    own = axes is None
    if axes is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4.2 * len(metrics), 4.4))
        axes = [fig.add_subplot(1, len(metrics), i + 1) for i in range(len(metrics))]
    else:
        fig = axes[0].figure
    for metric, ax in zip(metrics, axes):
        plot_drift(runs, metric, ax=ax)
    if own:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(4, max(1, len(labels))), fontsize=7)
        rows = -(-len(labels) // 4)
        fig.tight_layout(rect=(0, min(0.45, 0.04 + 0.04 * rows), 1, 0.95))
    else:
        axes[0].legend(fontsize=6, ncol=2)
    return fig
