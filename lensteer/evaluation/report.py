"""Reports: ``grid.csv`` (every sweep cell), ``report.md`` (the paper-style table, chosen points,
extensions, multi-turn, figures) and the figures themselves. Every number is read from the
``results`` of this run; nothing is typed in.

>>> print(fmt_pct(0.4567), fmt_pct(None))
45.7 % –
"""
from __future__ import annotations

import csv
import io as _io
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..io import atomic_path, write_text

__all__ = [
    "GRID_COLUMNS",
    "swept_rules",
    "fmt_pct",
    "format_main_table",
    "format_report",
    "write_grid_csv",
    "write_report",
]

GRID_COLUMNS = ["stage", "method", "positions", "layer", "alpha", "threshold", "calibration",
                "trait", "coherence", "coherence_source", "ce", "length", "finished", "n",
                "gate_rate_prompt", "gate_rate_response", "l2_per_token_prompt",
                "l2_per_token_response", "key"]


def swept_rules(results: Mapping[str, Any]) -> list[str]:
    """The rules this run swept, in the order of its chosen points (read from ``results``)."""
    rules = dict.fromkeys(c["method"] for c in results.get("chosen", []))
    rules.update(dict.fromkeys(r["method"] for r in results["sweep"]["rows"]))
    return list(rules)


def fmt_pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f} %"


def _num(x: float, digits: int) -> str:
    s = f"{x:.{digits}f}"
    return s.lstrip("-") if float(s) == 0 else s  # no "-0"


def _e(est: Mapping[str, Any] | None, digits: int = 1, scale: float = 1.0) -> str:
    if not est or est.get("mean") is None:
        return "–"
    return (f"{_num(scale * est['mean'], digits)} [{_num(scale * est['lo'], digits)}, "
            f"{_num(scale * est['hi'], digits)}]")


def _f(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else _num(x, digits)


def write_grid_csv(results: Mapping[str, Any], path: str | Path) -> None:
    """The sweep's cells (and the baselines and extension cells) as CSV, one row per cell."""
    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=GRID_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for side, row in results["sweep"]["baselines"].items():
        w.writerow({**row, "stage": "baseline", "method": side})
    for row in results["sweep"]["rows"]:
        w.writerow({**row, "stage": "sweep"})
    for row in results["extensions"]["rows"]:
        w.writerow({**row, "stage": "extension"})
    write_text(path, buf.getvalue())


def format_main_table(results: Mapping[str, Any]) -> str:
    """The paper-style table: conditions × metrics on the test split, with 95 % intervals."""
    has_ll = any("capability_loglik" in c["metrics"] for c in results["conditions"])
    has_letter = any("capability_letter" in c["metrics"] for c in results["conditions"])
    mt = {m["name"]: m for m in results.get("multiturn", [])}
    head = ["condition", f"{results['trait']} (0–100)", "recovery of gap", "coherence",
            "CE first 50 (nats)", "length (words)"]
    if has_ll:
        head.append("capability: log-lik %")
    if has_letter:
        head.append("capability: letter %")
    head += ["gate rate prompt / response", "L2 per token (resp.)", "multi-turn repeat (3-gram, across turns)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in results["conditions"]:
        m = c["metrics"]
        iv = m.get("intervention", {})
        gate = ("–" if not iv else
                f"{fmt_pct(iv.get('gate_rate_prompt'))} / {fmt_pct(iv.get('gate_rate_response'))}")
        rep = mt.get(c["name"], {}).get("repetition", {}).get("across_turns")
        row = [c["label"], _e(m["trait"]), _e(m.get("recovery"), 0, 100.0) + (" %" if m.get("recovery", {}).get("mean") is not None else ""),
               _e(m["coherence"]), _e(m.get("ce"), 2), _e(m["length"])]
        if has_ll:
            row.append(_e(m.get("capability_loglik")))
        if has_letter:
            row.append(_e(m.get("capability_letter")))
        row += [gate, _f(iv.get("l2_per_token_response"), 3), _e(rep, 3)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _chosen_table(results: Mapping[str, Any]) -> str:
    malicious = results["sweep"]["baselines"]["malicious"].get("trait")
    lines = ["| rule | mode | layer | α | trait (tune) | coherence (tune) | note |",
             "|---|---|---|---|---|---|---|"]
    for c in results["chosen"]:
        r = c["row"]
        if r is None:
            lines.append(f"| {c['method']} | {c['positions']} | – | – | – | – | no cell met the "
                         "coherence floor |")
            continue
        rows = [x for x in results["sweep"]["rows"] if x["method"] == c["method"]
                and x["positions"] == c["positions"] and x["trait"] is not None]
        note = ""
        if malicious is not None and r["trait"] <= malicious:
            best = max(rows, key=lambda x: x["trait"]) if rows else None
            note = "no cell above the coherence floor beat the malicious baseline"
            if best is not None and best["trait"] > r["trait"]:
                note += (f" (best cell: L{best['layer']} α={best['alpha']:g}, trait "
                         f"{_f(best['trait'])} at coherence {_f(best['coherence'])})")
        lines.append(f"| {c['method']} | {c['positions']} | {r['layer']} | {r['alpha']:g} | "
                     f"{_f(r['trait'])} | {_f(r['coherence'])} | {note} |")
    return "\n".join(lines)


def _search_section(results: Mapping[str, Any]) -> list[str]:
    """How the operating points were searched, what it cost, and why each chosen layer: the
    layer prior (a steerability predictor, else the probe's Cohen's d) beside the probe metrics
    and the best trait score the layer reached above the coherence floor."""
    search = results.get("search")
    if not search:
        return []
    lines = ["## Search and layer choice", ""]
    if search["method"] == "halving":
        cfg = search["config"]
        lines += [f"Successive halving (start {cfg['start_items']} prompts, keep 1/{cfg['eta']} per "
                  f"rule and mode, {cfg['eta']}× the prompts per rung"
                  + (f", only the {cfg['top_layers']} best-prior layers" if cfg.get("top_layers") else "")
                  + f", seed {cfg['seed']}): {search['tokens']:,} tokens generated.", "",
                  "| rung | prompts | cells | kept | tokens | coherence floor |",
                  "|---|---|---|---|---|---|"]
        for r in search["rungs"]:
            lines.append(f"| {r['rung']} | {r['items']} | {r['cells']} | {r.get('kept', '–')} | "
                         f"{r['tokens']:,} | {_f(r['coherence_floor'])} |")
    else:
        lines.append(f"Exhaustive grid: every cell on every tune prompt, {search['tokens']:,} "
                     "tokens generated.")
    lines.append("")
    table = search.get("layers") or []
    if table:
        lines += ["Why the chosen layers: the layer prior (by default the teacher-forced effect, "
                  "else the probe's Cohen's d) beside the probe metrics and the other steerability "
                  "predictors from `locate`, the layer's cells that reached the last rung (all of "
                  "them for the grid) and the best tune trait score among those above the "
                  "coherence floor. Probe metrics say where the trait is readable; the "
                  "teacher-forced effect (how far a small push moves the aligned-vs-malicious "
                  "log-likelihood margin, nats/token) says where a push changes the answer "
                  "(docs/predictors.md). Chosen layers in bold.",
                  "", "| layer | prior | probe accuracy | probe AUROC | Cohen's d | teacher-forced "
                  "effect | difference consistency | pairs split by m | last-rung cells "
                  "| best trait | chosen by |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for e in table:
            mark = "**" if e["chosen_by"] else ""
            dcons = ("–" if e.get("diff_consistency") is None else
                     f"{_num(e['diff_consistency'], 2)} ± {_num(e.get('diff_consistency_sd') or 0.0, 2)}")
            lines.append(f"| {mark}{e['layer']}{mark} | {_f(e['prior'], 3)} | {_f(e['accuracy'], 3)} | "
                         f"{_f(e['auroc'], 3)} | {_f(e['cohens_d'], 2)} | {_f(e.get('tf_effect'), 3)} | "
                         f"{dcons} | {fmt_pct(e.get('sign_split_pairs'), 0)} | "
                         f"{e.get('finalists', '–')} | {_f(e['best_trait'])} | "
                         f"{', '.join(e['chosen_by']) or ''} |")
        lines.append("")
    return lines


def _extension_table(results: Mapping[str, Any]) -> str:
    ext = results["extensions"]
    if not ext["matched"]:
        return "No extension run" + (f" ({ext['note']})." if ext.get("note") else ".")
    by_name = {c["name"]: c for c in results["conditions"]}
    lines = ["| rule | variant | α (paper → variant) | trait tune (paper → variant) | "
             "trait test | coherence test | capability LL test | gate rate resp. | L2/token resp. |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m in ext["matched"]:
        p, v = m["paper"], m["variant"]
        paper_c = by_name.get(f"{m['method']}-all", {}).get("metrics", {})
        var_c = by_name.get(f"{m['method']}-{m['threshold']}-{m['calibration']}", {}).get("metrics", {})

        def pair(key: str, digits: int = 1, sub: str | None = None) -> str:
            a = paper_c.get(key, {}) if sub is None else paper_c.get("intervention", {})
            b = var_c.get(key, {}) if sub is None else var_c.get("intervention", {})
            if sub is not None:
                x, y = a.get(sub), b.get(sub)
                fmt = (lambda z: fmt_pct(z)) if sub.startswith("gate") else (lambda z: _f(z, 3))
                return f"{fmt(x)} → {fmt(y)}"
            return f"{_f((a or {}).get('mean'), digits)} → {_f((b or {}).get('mean'), digits)}"

        lines.append(
            f"| {m['method']} | threshold {m['threshold']}, {m['calibration']} calibration | "
            f"{p['alpha']:g} → {v['alpha']:g} | {_f(p['trait'])} → {_f(v['trait'])} | "
            f"{pair('trait')} | {pair('coherence')} | {pair('capability_loglik')} | "
            f"{pair('', sub='gate_rate_response')} | {pair('', sub='l2_per_token_response')} |")
    return "\n".join(lines)


def _multiturn_table(results: Mapping[str, Any]) -> str:
    mts = results.get("multiturn", [])
    if not mts:
        return "Multi-turn not run."
    n_turns = mts[0]["n_turns"]
    lines = []
    if mts[0].get("cache") == "carry":
        lines += ["KV cache carried across turns (earlier replies keep the keys and values they "
                  "were written with).", ""]
    lines += ["| condition | " + " | ".join(f"turn {t + 1}: trait / repeat" for t in range(n_turns)) + " |",
              "|---|" + "---|" * n_turns]
    for mt in mts:
        cells = [f"{_f(t['trait']['mean'], 0)} / {_f(t['across_turns']['mean'], 2)}" for t in mt["per_turn"]]
        lines.append(f"| {mt['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _paper_claims(results: Mapping[str, Any]) -> list[str]:
    """Sentences on the paper's claims, decided by this run's numbers."""
    by = {c["name"]: c["metrics"] for c in results["conditions"]}
    out = []

    def rec(name: str) -> float | None:
        return (by.get(name, {}).get("recovery") or {}).get("mean")

    methods = swept_rules(results)
    for mode in ("all", "response"):
        vals = {m: rec(f"{m}-{mode}") for m in methods}
        have = {m: v for m, v in vals.items() if v is not None}
        if have:
            order = " > ".join(f"{m} {_num(100 * v, 0)} %" for m, v in sorted(have.items(), key=lambda kv: -kv[1]))
            out.append(f"Recovery of the aligned–malicious gap, {mode} tokens: {order}.")
    both = [(m, r, s) for m in methods
            if (r := rec(f"{m}-all")) is not None and (s := rec(f"{m}-response")) is not None]
    if both:
        ratio = [f"{m} {_num(100 * r, 0)} % vs {_num(100 * s, 0)} %" for m, r, s in both]
        out.append("All-token vs response-only recovery (the paper found response-only recovers "
                   "about half): " + "; ".join(ratio) + ".")
    al = by.get("aligned", {})
    for key, what in (("capability_loglik", "capability (log-lik)"), ("coherence", "coherence")):
        base = (al.get(key) or {}).get("mean")
        if base is None:
            continue
        parts = []
        for m in methods:
            v = (by.get(f"{m}-all", {}).get(key) or {}).get("mean")
            if v is not None:
                parts.append(f"{m} {v:.1f}")
        if parts:
            out.append(f"{what.capitalize()} kept (aligned {base:.1f}): " + ", ".join(parts) + ".")
    mt = {m["name"]: m for m in results.get("multiturn", [])}
    reps = [(n, mt[n]["repetition"]["across_turns"]["mean"]) for n in
            ["aligned", "malicious"] + [f"{m}-all" for m in methods] if n in mt]
    if reps:
        out.append("Repetition across turns (share of 3-grams repeated from earlier turns): " +
                   ", ".join(f"{n} {v:.3f}" for n, v in reps if v is not None) + ".")
    return out


def _side_effects(results: Mapping[str, Any]) -> list[str]:
    from .chatbench import format_side_effects

    return format_side_effects(results)


def format_report(results: Mapping[str, Any], figures: Sequence[str] = ()) -> str:
    """``report.md`` as a string."""
    model = results["model"]
    items = results["items"]
    cfg = results["config"]
    base = results["sweep"]["baselines"]
    grid = ", ".join(f"{k} {{{', '.join(f'{a:g}' for a in v)}}}" for k, v in cfg["grid"].items())
    lines = [
        f"# lensteer evaluation: {results['trait']} on {model['name']}",
        "",
        f"Judge: `{results['judge']}`. Decoding: {'greedy' if cfg['gen']['greedy'] else 'sampled'}, "
        f"≤ {cfg['gen']['max_new_tokens']} new tokens. Sweep on the tune split "
        f"({items['scenarios_tune']} scenarios, {items['tune']} prompts); every table below the "
        f"sweep is on the test split ({items['scenarios_test']} scenarios, {items['test']} prompts)"
        + ("" if items["split"] else " (no split: the same items)") + ".",
        f"Grid: layers {results['sweep']['layers']} × α {grid} × modes {cfg['positions']} "
        f"({results['sweep']['n_cells']} cells). Selection: the highest trait score whose coherence is ≥ "
        f"{100 * cfg['coherence_ratio']:.0f} % of the aligned baseline's "
        f"({_f(base['aligned']['coherence'])} → floor {_f(results['sweep']['coherence_floor'])}).",
        "",
        "## Results (test split; mean [95 % bootstrap interval])",
        "",
        format_main_table(results),
        "",
        "Recovery = (condition − malicious) / (aligned − malicious) trait score. Coherence source: "
        f"`{results['conditions'][0]['metrics']['coherence_source']}`. CE = mean cross-entropy of the "
        "first 50 response tokens under the unsteered model with the aligned system prompt.",
        "",
        "### What happened to the paper's claims",
        "",
        *[f"- {s}" for s in _paper_claims(results)],
        "",
        *(_side_effects(results) if results.get("chat_benchmarks") else []),
        "## Chosen operating points (tune split)",
        "",
        _chosen_table(results),
        "",
        *_search_section(results),
        "## Extensions: per-token calibration and percentile threshold at matched trait score",
        "",
        _extension_table(results),
        "",
        "## Multi-turn (trait score / share of 3-grams repeated from earlier turns, per turn)",
        "",
        _multiturn_table(results),
        "",
    ]
    if figures:
        lines += ["## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in figures] + [""]
    t = results.get("timings", {})
    if t:
        lines += ["## Timings", "", " · ".join(f"{k} {v:.1f} s" for k, v in t.items()), ""]
    return "\n".join(lines)


def _save(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")


def write_figures(results: Mapping[str, Any], out: Path, prefix: str = "",
                  folder: Path | None = None) -> list[str]:
    """Write the figures into ``folder`` (default ``out/figures``); returns their paths as
    ``figures/<name>`` relative to ``out``."""
    from . import plots

    names = []
    for method in swept_rules(results):
        if any(r["method"] == method for r in results["sweep"]["rows"]):
            names.append((f"{prefix}trait_vs_alpha_{method}.png", plots.plot_trait_vs_alpha(results, method)))
    names.append((f"{prefix}frontier.png", plots.plot_frontier(results)))
    if any(k.startswith("capability_") for c in results["conditions"] for k in c["metrics"]):
        names.append((f"{prefix}capability.png", plots.plot_capability(results)))
    if results.get("multiturn"):
        names.append((f"{prefix}repetition_per_turn.png", plots.plot_repetition(results)))
    written = []
    folder = out / "figures" if folder is None else folder
    for name, fig in names:
        _save(fig, folder / name)
        written.append(f"figures/{name}")
    return written


def write_report(results: Mapping[str, Any], out: str | Path, *, figures: bool = True) -> Path:
    """Write ``grid.csv``, ``report.md`` and (optionally) ``figures/*.png`` into ``out``.

    ``figures/`` is drawn aside and swapped in whole (or removed when ``figures=False``), so
    it never holds an earlier run's figures.
    """
    from ..outdir import staged_dir

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_grid_csv(results, out / "grid.csv")
    figs: list[str] = []
    if figures:
        with staged_dir(out / "figures") as tmp:
            figs = write_figures(results, out, folder=tmp)
    else:
        shutil.rmtree(out / "figures", ignore_errors=True)
    write_text(out / "report.md", format_report(results, figs))
    return out / "report.md"
