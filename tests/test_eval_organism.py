"""The evaluation on the bundled organism (skipped until its checkpoint is there): the report
shows each rule's recovery of the aligned–malicious gap, capability, coherence and repetition,
for all-token and response-only steering — whichever way they fall."""
from __future__ import annotations

import re

import pytest

import lensteer
from lensteer.evaluation import EvaluateConfig, GenSettings, OrganismJudge, evaluate
from lensteer.models import BUNDLED_MODELS


@pytest.fixture(scope="module")
def organism():
    if not BUNDLED_MODELS["organism"].is_ready():
        pytest.skip("the organism checkpoint is not trained yet")
    return lensteer.load_model("organism")


def test_report_on_organism(organism, tmp_path):
    loc = lensteer.locate(organism, "honesty", layers=[0, 1], max_scenarios=12, n_folds=3,
                          neutral=False, progress=False)
    config = EvaluateConfig(
        grid={"swfc": [3.0], "sttp": [12.0], "stmp": [2.0]}, layers=[0, 1],
        gen=GenSettings(max_new_tokens=32), prompts_per_scenario=1, max_items=24,
        capability="organism", capability_limit=16, n_conversations=3, n_turns=5,
        token_grid={"sttp": [1.0], "stmp": [2.0]}, n_boot=200)
    res = evaluate(organism, "honesty", loc, config=config, out=tmp_path, progress=False)
    assert res["judge"] == OrganismJudge("honesty").name
    by = {c["name"]: c["metrics"] for c in res["conditions"]}
    # the organism lies under the malicious prompt and tells the truth under the aligned one
    assert by["aligned"]["trait"]["mean"] > by["malicious"]["trait"]["mean"] + 30
    report = (tmp_path / "report.md").read_text()
    head = [ln for ln in report.splitlines() if ln.startswith("| condition")][0]
    for column in ("recovery of gap", "coherence", "capability: log-lik %", "capability: letter %",
                   "multi-turn repeat"):
        assert column in head
    for mode in ("all", "response"):
        for rule in ("SwFC", "StTP", "StMP"):
            if any(c["method"] == rule.lower() and c["positions"] == mode and c["row"]
                   for c in res["chosen"]):
                line = [ln for ln in report.splitlines() if ln.startswith(f"| {rule} ({mode};")][0]
                assert re.search(r"-?\d+ \[-?\d+, -?\d+\] %", line)  # recovery with its interval
    assert "Recovery of the aligned–malicious gap, all tokens" in report
    assert "Repetition across turns" in report
    # the chosen layers beside their probe metrics and steerability predictors
    table = {e["layer"]: e for e in res["search"]["layers"]}
    assert sorted(table) == [0, 1]
    chosen = {c["row"]["layer"] for c in res["chosen"] if c["row"]}
    for layer in (0, 1):
        row = loc.row(layer)
        # the default prior is the teacher-forced effect, which locate computed for every layer
        assert table[layer]["prior"] == pytest.approx(row.tf_effect)
        mark = "**" if layer in chosen else ""
        line = [ln for ln in report.splitlines() if ln.startswith(f"| {mark}{layer}{mark} |")][0]
        assert f"| {row.auroc:.3f} |" in line and f"| {row.tf_effect:.3f} |" in line
        assert f"{row.diff_consistency:.2f} ± {row.diff_consistency_sd:.2f}" in line


@pytest.mark.slow
def test_demo_quick_on_organism(organism, tmp_path, capsys):
    """`lensteer demo --quick`: locate + evaluate for both traits, one report, stage timings."""
    import json

    from lensteer.cli import main

    assert main(["demo", "--quick", "--out", str(tmp_path), "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert "total" in printed and "report:" in printed
    report = (tmp_path / "report.md").read_text()
    for trait in ("honesty", "compassion"):
        assert f"## {trait}" in report
        assert (tmp_path / trait / "results.json").exists() and (tmp_path / trait / "grid.csv").exists()
        assert (tmp_path / trait / "locate" / "sweep.json").exists()
    timings = json.loads((tmp_path / "timings.json").read_text())
    assert {"load model", "locate honesty", "evaluate honesty", "locate compassion",
            "evaluate compassion", "total"} <= set(timings)
    assert "| stage | seconds |" in report and "Quick run" in report
