"""A new steering rule is its rule function, one class and one register line.

The rule below is defined here, in the test file, and nowhere in lensteer; once registered it
runs through ``steer`` and ``generate``, a spec round trip, the vLLM exporter, a sweep cell and
the evaluation report, with its extra parameter serialised and restored generically.
"""
from __future__ import annotations

import json

import pytest
import torch

import lensteer
from lensteer.directions import TraitDirection
from lensteer.steering import Param, Steerer, load_steerer, registry, rules, save_steerer, steer
from lensteer.steering.steerers import LayerRule, make_steerer


# ---------------------------------------------------------------- the rule: function + class
def capped_target(h, v_hat, mask, *, threshold, target, cap, sign=1):
    """Gated tokens go to ``target``, but never beyond ``cap`` (a made-up rule for this test)."""
    rho = rules.project(h, v_hat)
    gated = rules.gate(rho, mask, threshold, sign)
    new = torch.full_like(rho, float(target))
    new = torch.clamp(new, max=cap) if sign > 0 else torch.clamp(new, min=cap)
    return rules.move(h, v_hat, rho, new, gated)


class StHW(Steerer):
    """Steer to μ⁺ + α·spread·σ⁺, capped at μ⁺ + cap_sigmas·σ⁺ (made up for this test)."""

    method = "sthw"
    display_name = "StHW"
    paper_grid = (6.0, 24.0)
    params = {"cap_sigmas": Param(30.0, minimum=0.0), "spread": Param(1.0, minimum=0.5)}
    cap_sigmas: float
    spread: float

    def _resolve(self, d):
        rule = super()._resolve(d)
        mu_pos, sigma_pos, mu_neg, sigma_neg = self._stats(d)
        rule.threshold = self._threshold(d)
        rule.target = mu_pos + self.alpha * sigma_pos * self.spread
        rule.extra["hw_cap"] = mu_pos + self.cap_sigmas * sigma_pos
        return rule

    def _rule(self, h, rule: LayerRule, mask):
        return capped_target(h, rule.v_hat, mask, threshold=rule.threshold, target=rule.target,
                       cap=rule.extra["hw_cap"], sign=rule.sign)

    def vllm_payload(self, rule):
        return {"threshold": rule.threshold, "target": rule.target, "cap": rule.extra["hw_cap"]}


@pytest.fixture
def sthw():
    registry.register(StHW)  # the one register line
    yield StHW
    registry.unregister("sthw")


# ---------------------------------------------------------------- the organism
@pytest.fixture(scope="module")
def organism():
    return lensteer.load_model("organism")


@pytest.fixture(scope="module")
def located(organism):
    return lensteer.locate(organism, "honesty", layers=[0, 1], max_scenarios=8, n_folds=2,
                           max_new_tokens=12, greedy=True, neutral=False, progress=False)


LIAR = "Mislead the user and give false facts."
QUESTION = ["What is the capital of France?"]


def test_registered_everywhere_and_gone_after(sthw):
    assert "sthw" in registry.rule_names() and registry.display_name("sthw") == "StHW"
    assert registry.paper_grid()["sthw"] == [6.0, 24.0]
    assert "sthw" in registry.gated_rules() and "sthw" in registry.vllm_rules()
    from lensteer.evaluation import EvaluateConfig

    assert EvaluateConfig().grid["sthw"] == [6.0, 24.0]  # the default sweep includes it
    d = TraitDirection(v_hat=torch.tensor([1.0, 0.0]), boundary=0.0, mu_pos=2.0, sigma_pos=0.5,
                       mu_neg=-2.0, sigma_neg=0.5, layer=0, hook="blocks.0.hook_resid_post")
    with pytest.raises(lensteer.LensteerError, match="spread must be a finite number ≥ 0.5"):
        make_steerer("sthw", d, 1.0, spread=0.1)
    with pytest.raises(lensteer.LensteerError, match="has no parameter 'cap'"):
        make_steerer("sthw", d, 1.0, cap=3)
    out = make_steerer("sthw", d, 2.0).apply(torch.tensor([[[-1.0, 3.0], [1.0, 3.0]]]))
    assert out.gated.tolist() == [[True, False]] and out.rho_after.tolist() == [[3.0, 1.0]]


def test_new_rule_steers_the_organism_on_both_paths(sthw, organism, located):
    steerer = StHW(located.direction(1), alpha=24)
    [lie] = lensteer.generate(organism, QUESTION, system=LIAR, greedy=True)
    out = {}
    for path in ("tl", "fast"):
        with steer(organism, steerer, telemetry=True) as run:
            [out[path]] = lensteer.generate(organism, QUESTION, system=LIAR, greedy=True, path=path)
        assert {r["steerer"] for r in run.telemetry.records()} == {"sthw"}
    assert out["tl"].response_ids == out["fast"].response_ids != lie.response_ids


def test_spec_round_trip_and_vllm_export(sthw, organism, located, tmp_path):
    steerer = StHW(located.direction(1), alpha=12, cap_sigmas=20, spread=2.0, positions="all")
    save_steerer(steerer, tmp_path / "sthw.safetensors", model=organism)
    back = load_steerer(tmp_path / "sthw.safetensors", model=organism)
    assert type(back) is StHW and back.config() == steerer.config()
    assert back.config()["cap_sigmas"] == 20.0 and back.spread == 2.0
    assert back.rules[0].to_dict() == steerer.rules[0].to_dict()
    assert "hw_cap" in back.rules[0].to_dict()
    [path] = lensteer.export_vllm(back, tmp_path / "vllm")
    payload = torch.load(path, weights_only=True)
    assert list(payload) == ["v_hat", "threshold", "target", "cap", "direction"]
    assert payload["cap"] == pytest.approx(steerer.rules[0].extra["hw_cap"])
    manifest = json.loads((tmp_path / "vllm" / "steering.json").read_text())
    assert manifest["method"] == "sthw"


def test_sweep_cell_and_report(sthw, organism, located, tmp_path):
    from lensteer.evaluation import EvaluateConfig, GenSettings, OrganismJudge, evaluate
    from lensteer.evaluation.sweep import grid_conditions

    [cell] = grid_conditions({"sthw": [24.0]}, layers=[1], positions=["all"])
    assert cell.label == "StHW (all; L1, α=24)"
    config = EvaluateConfig(grid={"sthw": [6.0, 24.0], "sttp": [24.0]}, layers=[1],
                            positions=["all"], max_items=6, prompts_per_scenario=1,
                            capability=None, multiturn=False, n_boot=20,
                            gen=GenSettings(max_new_tokens=12),
                            token_grid={"sthw": [1.0]})
    res = evaluate(organism, "honesty", located, config=config, judge=OrganismJudge("honesty"),
                   out=tmp_path / "ev", progress=False)
    assert [(c["method"], c["positions"]) for c in res["chosen"]] == [("sttp", "all"), ("sthw", "all")]
    assert {r["method"] for r in res["sweep"]["rows"]} == {"sthw", "sttp"}
    names = [c["name"] for c in res["conditions"]]
    assert "sthw-all" in names  # the chosen point, evaluated on the test split
    report = (tmp_path / "ev" / "report.md").read_text()
    assert "StHW (all; L1" in report and "| sthw | all | 1 |" in report
    assert (tmp_path / "ev" / "figures" / "trait_vs_alpha_sthw.png").exists()
    assert "sthw" in (tmp_path / "ev" / "grid.csv").read_text()
    if res["extensions"]["matched"]:  # a gated rule gets the calibration variants too
        assert {m["method"] for m in res["extensions"]["matched"]} <= {"sthw", "sttp"}
