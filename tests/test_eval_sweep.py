"""The operating-point sweep: the selection rule on a synthetic grid, resume after an
interruption (synthetic and on the tiny model) equals an uninterrupted run, and the whole
evaluation end to end on the tiny model (results.json, grid.csv, report.md, figures, CLI)."""
from __future__ import annotations

import csv
import json

import pytest
import torch

import lensteer
from lensteer.directions import TokenStats, TraitDirection
from lensteer.errors import LensteerError
from lensteer.evaluation import (
    Condition,
    EvaluateConfig,
    GenSettings,
    SweepCheckpoint,
    Verdict,
    build_items,
    choose_operating_points,
    evaluate,
    grid_conditions,
    run_cells,
    run_condition,
)
from lensteer.evaluation.conditions import split_scenarios
from lensteer.evaluation.report import GRID_COLUMNS


# ------------------------------------------------------------------ selection rule
def _row(method, positions, layer, alpha, trait, coherence):
    return dict(method=method, positions=positions, layer=layer, alpha=alpha, trait=trait,
                coherence=coherence)


def test_selection_rule_on_synthetic_grid():
    rows = [
        _row("sttp", "all", 0, 6, 70, 95),
        _row("sttp", "all", 0, 12, 90, 85),   # best trait but coherence < 0.9 * 100
        _row("sttp", "all", 1, 6, 80, 90),    # exactly at the floor: allowed
        _row("sttp", "all", 1, 12, 80, 92),   # ties on trait: higher coherence wins
        _row("sttp", "response", 0, 6, 40, 99),
        _row("sttp", "response", 0, 12, 40, 99),  # full tie: smaller alpha wins
        _row("swfc", "all", 0, 5, 99, 10),    # nothing qualifies
        _row("stmp", "all", 2, 1, None, 99),  # unscored cells are skipped
        _row("stmp", "all", 3, 2, 30, 95),
    ]
    chosen = choose_operating_points(rows, aligned_coherence=100)
    assert (chosen[("sttp", "all")]["layer"], chosen[("sttp", "all")]["alpha"]) == (1, 12)
    assert chosen[("sttp", "response")]["alpha"] == 6
    assert chosen[("swfc", "all")] is None
    assert chosen[("stmp", "all")]["layer"] == 3
    # a looser floor picks the high-trait cell
    assert choose_operating_points(rows, 100, ratio=0.8)[("sttp", "all")]["alpha"] == 12
    # no baseline coherence: the floor is off
    assert choose_operating_points(rows, None)[("swfc", "all")]["alpha"] == 5


def test_grid_conditions_cover_the_paper_grid():
    from lensteer.evaluation import PAPER_GRID

    cells = grid_conditions(PAPER_GRID, layers=range(4))
    assert len(cells) == (5 + 7 + 7) * 4 * 2 and len({c.key for c in cells}) == len(cells)
    assert PAPER_GRID["sttp"] == [0, 6, 12, 18, 24, 30, 36]
    assert PAPER_GRID["stmp"] == [1, 1.5, 2, 2.5, 3, 3.5, 4]


# ------------------------------------------------------------------ resume (synthetic)
class Interrupt(Exception):
    pass


def _fake_compute(calls, stop_after=None):
    def compute(cell: Condition):
        if stop_after is not None and len(calls) >= stop_after:
            raise Interrupt
        calls.append(cell.key)
        return {"trait": (cell.layer * 7 + cell.alpha * 3) % 11 / 3, "coherence": 90.0 + cell.alpha / 7}
    return compute


def test_resume_after_interruption_equals_uninterrupted(tmp_path):
    cells = grid_conditions({"swfc": [1, 2, 3], "stmp": [1, 1.5]}, layers=[0, 1])
    full_calls: list = []
    full = run_cells(cells, _fake_compute(full_calls), progress=False,
                     checkpoint=SweepCheckpoint(tmp_path / "a.jsonl", "fp"))
    calls: list = []
    with pytest.raises(Interrupt):
        run_cells(cells, _fake_compute(calls, stop_after=7), progress=False,
                  checkpoint=SweepCheckpoint(tmp_path / "b.jsonl", "fp"))
    assert len(calls) == 7
    # a torn last line (killed mid-write) is dropped, that cell recomputed
    with open(tmp_path / "b.jsonl", "ab") as f:
        f.write(b'{"key": "half-writ')
    resumed = run_cells(cells, _fake_compute(calls), progress=False,
                        checkpoint=SweepCheckpoint(tmp_path / "b.jsonl", "fp"))
    assert resumed == full
    assert sorted(calls) == sorted(full_calls)  # nothing computed twice, nothing lost
    # a third run computes nothing
    more: list = []
    assert run_cells(cells, _fake_compute(more), progress=False,
                     checkpoint=SweepCheckpoint(tmp_path / "b.jsonl", "fp")) == full
    assert more == []
    with pytest.raises(LensteerError, match="other settings"):
        SweepCheckpoint(tmp_path / "b.jsonl", "another-fingerprint")


# ------------------------------------------------------------------ tiny model
def _directions(model):
    info = lensteer.model_info(model).to_dict()
    out = {}
    for layer in range(model.cfg.n_layers):
        g = torch.Generator().manual_seed(layer)
        q = sorted((torch.randn(101, generator=g) * 2).tolist())
        out[layer] = TraitDirection(
            v_hat=torch.randn(model.cfg.d_model, generator=g), boundary=0.0, mu_pos=2.0,
            sigma_pos=0.5, mu_neg=-2.0, sigma_neg=0.5, layer=layer,
            hook=f"blocks.{layer}.hook_resid_post", model=info,
            token_stats=TokenStats(1.0, 2.0, -1.0, 2.0, q, q))
    return out


class WordJudge:
    """A deterministic stand-in judge: trait = share of words that are in an 'aligned' list."""

    name = "words"
    WORDS = {"kind", "honest", "four", "paris", "fine", "thank", "you"}

    def score(self, items):
        out = []
        for it in items:
            ws = it.response.lower().split()
            t = 100.0 * sum(w in self.WORDS for w in ws) / len(ws) if ws else 0.0
            out.append(Verdict(t, 100.0 if it.finished else 60.0))
        return out


def test_resume_on_tiny_model_equals_uninterrupted(tiny_model, tmp_path):
    tiny_model.reset_hooks()
    trait = lensteer.load_trait("honesty")
    items = build_items(trait, prompts_per_scenario=1, limit=3)
    dirs = _directions(tiny_model)
    gen = GenSettings(max_new_tokens=5, batch_size=4)
    cells = grid_conditions({"sttp": [6, 24], "swfc": [2]}, layers=[1], positions=["all", "response"])

    def compute(cell, box=[0], stop=None):
        if stop is not None and box[0] >= stop:
            raise Interrupt
        box[0] += 1
        return run_condition(tiny_model, cell, items, WordJudge(), dirs, gen=gen).summary()

    full = run_cells(cells, compute, progress=False)
    counter = [0]
    with pytest.raises(Interrupt):
        run_cells(cells, lambda c: compute(c, counter, 2), progress=False,
                  checkpoint=SweepCheckpoint(tmp_path / "c.jsonl", "fp"))
    resumed = run_cells(cells, compute, progress=False,
                        checkpoint=SweepCheckpoint(tmp_path / "c.jsonl", "fp"))
    assert resumed == full
    assert full[0]["gate_rate_response"] is not None and "ce" in full[0]


def test_evaluate_end_to_end_on_tiny_model(tiny_model, tmp_path):
    tiny_model.reset_hooks()
    config = EvaluateConfig(
        grid={"swfc": [2.0], "sttp": [6.0], "stmp": [1.0]}, layers=[1],
        gen=GenSettings(max_new_tokens=5, batch_size=8), prompts_per_scenario=1, max_items=4,
        capability="general", capability_limit=2, n_conversations=2, n_turns=2,
        token_grid={"sttp": [1.0], "stmp": [1.0]}, n_boot=50, coherence_ratio=0.0,
        multiturn_cache="carry")
    res = evaluate(tiny_model, "honesty", _directions(tiny_model), config=config,
                   judge=WordJudge(), out=tmp_path / "ev", progress=False)
    saved = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert saved["sweep"]["rows"] == res["sweep"]["rows"]
    names = [c["name"] for c in res["conditions"]]
    assert names[:2] == ["aligned", "malicious"]
    assert {"swfc-all", "sttp-all", "stmp-all", "swfc-response", "sttp-response", "stmp-response"} <= set(names)
    assert any(c["role"] == "extension" for c in res["conditions"])
    for c in res["conditions"]:
        m = c["metrics"]
        assert m["trait"]["n"] == 4 and m["ce"]["mean"] > 0
        assert "capability_loglik" in m and "capability_letter" in m
        assert c["name"] in ("aligned", "malicious") or m["intervention"]["gate_rate_response"] >= 0
    al_m, ma_m = (res["conditions"][i]["metrics"] for i in (0, 1))
    if al_m["trait"]["mean"] != ma_m["trait"]["mean"]:
        assert (al_m["recovery"]["mean"], ma_m["recovery"]["mean"]) == (pytest.approx(1.0), 0.0)
    else:
        assert al_m["recovery"]["mean"] is None
    assert len(res["multiturn"]) == 8 and len(res["multiturn"][0]["per_turn"]) == 2
    assert {m["cache"] for m in res["multiturn"]} == {"carry"}  # the KV cache kept across turns
    steered_mt = [m for m in res["multiturn"] if m["condition"]["method"]]
    assert steered_mt and all(t["gate_rate"]["n"] == 2 for m in steered_mt for t in m["per_turn"])
    # tune and test halves are disjoint scenarios
    trait = lensteer.load_trait("honesty")
    assert not {s.id for s in split_scenarios(trait, "tune")} & {s.id for s in split_scenarios(trait, "test")}
    # grid.csv: baselines + every sweep and extension cell
    with open(tmp_path / "ev" / "grid.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == GRID_COLUMNS
    assert len(rows) == 2 + len(res["sweep"]["rows"]) + len(res["extensions"]["rows"])
    # report: numbers come from the results
    report = (tmp_path / "ev" / "report.md").read_text()
    al = res["conditions"][0]["metrics"]["trait"]
    assert f"{al['mean']:.1f} [{al['lo']:.1f}, {al['hi']:.1f}]" in report
    assert "KV cache carried across turns" in report
    for fig in ("frontier", "capability", "repetition_per_turn", "trait_vs_alpha_sttp"):
        assert (tmp_path / "ev" / "figures" / f"{fig}.png").stat().st_size > 1000
        assert f"figures/{fig}.png" in report
    # rerun: every sweep cell comes from the checkpoint, same rows
    again = evaluate(tiny_model, "honesty", _directions(tiny_model), config=config,
                     judge=WordJudge(), out=tmp_path / "ev", progress=False, figures=False)
    assert again["sweep"]["rows"] == res["sweep"]["rows"]
    assert again["timings"]["sweep"] < res["timings"]["sweep"]


def test_cli_evaluate_with_probe_judge(tiny_model, tiny_dirs, tmp_path, capsys):
    from lensteer.cli import main

    tiny_model.reset_hooks()
    loc = lensteer.locate(tiny_model, "honesty", layers=[1], max_scenarios=4, n_folds=2,
                          max_new_tokens=4, neutral=False, progress=False)
    loc.save(tmp_path / "loc")
    out = tmp_path / "ev"
    args = ["evaluate", "--model", str(tiny_dirs["llama"]), "--trait", "honesty", "--locate",
            str(tmp_path / "loc"), "--out", str(out), "--preset", "quick", "--judge", "probe",
            "--max-items", "2", "--max-new-tokens", "4", "--capability", "none",
            "--no-multiturn", "--no-extensions", "--no-figures", "--layers", "1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| condition |" in printed and "report.md" in printed
    res = json.loads((out / "results.json").read_text())
    assert res["judge"] == "probe-L1" and res["sweep"]["n_cells"] == 12
    assert res["conditions"][0]["metrics"]["coherence_source"] == "ce"
    assert main(["evaluate", "--model", str(tiny_dirs["llama"]), "--trait", "no-such-trait",
                 "--out", str(out)]) == 2
