"""Packed sweep cells and successive halving on the organism.

Packed: several cells' prompts in one generation (rows steered by their own rule, α, layer,
positions, threshold) give each cell exactly the tokens and scores it gets alone (greedy, KV
cache on), with per-row telemetry. Halving: deterministic given a seed, an interrupted run
resumed equals an uninterrupted one, its survivors' last-rung rows equal the exhaustive grid's
rows, and on a small grid it picks the grid's best at a fraction of the tokens. CLI:
``--search`` options are checked before any work (one line, exit 2)."""
from __future__ import annotations

import json

import pytest

import lensteer
from lensteer.cli import main
from lensteer.evaluation import (
    Condition,
    EvaluateConfig,
    GenSettings,
    HalvingConfig,
    SweepCheckpoint,
    build_items,
    choose_operating_points,
    evaluate,
    grid_conditions,
    run_cells,
    run_condition,
    run_conditions,
    successive_halving,
)
from lensteer.evaluation import conditions as conditions_module
from lensteer.evaluation.conditions import baseline_conditions, split_scenarios
from lensteer.evaluation.judges import OrganismJudge
from lensteer.evaluation.search import prune_by_prior, rank_rows, replay, rung_sizes

GEN = GenSettings(max_new_tokens=16, batch_size=64)


@pytest.fixture(scope="module")
def organism():
    return lensteer.load_model("organism")


@pytest.fixture(scope="module")
def located(organism):
    return lensteer.locate(organism, "honesty", max_scenarios=8, n_folds=2, max_new_tokens=12,
                           greedy=True, neutral=False, progress=False)


@pytest.fixture(scope="module")
def dirs(located):
    return {r.layer: located.directions[r.hook] for r in located.rows if r.point == "resid_post"}


@pytest.fixture(scope="module")
def tune(organism):
    trait = lensteer.load_trait("honesty", model=organism)
    return build_items(trait, split_scenarios(trait, "tune"), prompts_per_scenario=1, limit=12)


JUDGE = OrganismJudge("honesty")


def _mixed_cells() -> list[Condition]:
    aligned, malicious = baseline_conditions()
    return [
        aligned,
        Condition("a", method="sttp", layer=1, alpha=12),
        Condition("b", method="swfc", layer=3, alpha=4, positions="response"),
        malicious,
        Condition("c", method="stmp", layer=2, alpha=2, positions="response"),
        Condition("d", method="sttp", layer=0, alpha=6, threshold="p40"),
        Condition("e", method="swfc", layer=1, alpha=8),
    ]


# ------------------------------------------------------------------ packing
def test_packed_cells_equal_each_cell_alone(organism, dirs, tune, monkeypatch):
    calls = []
    real = conditions_module.generate

    def counting(model, convs, **kw):
        calls.append(len(convs))
        assert kw["gen"].greedy and kw.get("use_kv_cache", True)
        return real(model, convs, **kw)

    monkeypatch.setattr(conditions_module, "generate", counting)
    cells = _mixed_cells()
    packed = run_conditions(organism, cells, tune, JUDGE, dirs, gen=GEN)
    assert calls == [len(cells) * len(tune)]  # one generation carried every cell
    calls.clear()
    alone = [run_condition(organism, c, tune, JUDGE, dirs, gen=GEN) for c in cells]
    assert calls == [len(tune)] * len(cells)
    for p, a in zip(packed, alone):
        assert p.condition == a.condition
        assert [g.response_ids for g in p.generations] == [g.response_ids for g in a.generations]
        ps, as_ = p.summary(), a.summary()
        for key in ("trait", "coherence", "length", "finished", "n", "tokens"):
            assert ps[key] == as_[key], (p.condition.key, key)
        assert p.trait == a.trait and p.coherence == a.coherence
        # telemetry per row: each cell's intervention size from its own rows only
        assert set(p.intervention) == set(a.intervention)
        assert p.intervention == pytest.approx(a.intervention, rel=1e-4, abs=1e-6)
        assert bool(p.intervention) == p.condition.steered
    # the cells really differ: steering changed the answers, so rows were not mixed up
    assert len({tuple(r.texts) for r in packed}) >= 5
    assert packed[0].summary()["trait"] > packed[3].summary()["trait"]  # aligned beats malicious


def test_sampling_runs_cells_one_by_one(organism, dirs, tune, monkeypatch):
    calls = []
    real = conditions_module.generate
    monkeypatch.setattr(conditions_module, "generate",
                        lambda model, convs, **kw: calls.append(len(convs)) or real(model, convs, **kw))
    cells = _mixed_cells()[:3]
    sampled = GenSettings(max_new_tokens=8, greedy=False, seed=3)
    packed = run_conditions(organism, cells, tune[:4], JUDGE, dirs, gen=sampled)
    assert calls == [4, 4, 4]
    again = [run_condition(organism, c, tune[:4], JUDGE, dirs, gen=sampled) for c in cells]
    assert [r.texts for r in packed] == [r.texts for r in again]


def test_run_cells_packed_equals_unpacked_and_resumes(organism, dirs, tune, tmp_path):
    cells = grid_conditions({"sttp": [4.0, 12.0], "swfc": [2.0]}, [1, 3], ["all", "response"])
    one = lambda c: run_condition(organism, c, tune, JUDGE, dirs, gen=GEN).summary()
    many = lambda group: [r.summary() for r in run_conditions(organism, group, tune, JUDGE, dirs, gen=GEN)]
    plain = run_cells(cells, one, progress=False)
    ck = SweepCheckpoint(tmp_path / "c.jsonl", "fp")
    seen = []

    def interrupted(group):
        seen.append(len(group))
        if len(seen) == 2:
            raise KeyboardInterrupt
        return many(group)

    with pytest.raises(KeyboardInterrupt):
        run_cells(cells, compute_many=interrupted, cells_per_batch=3, checkpoint=ck, progress=False)
    assert len(SweepCheckpoint(tmp_path / "c.jsonl", "fp").done) == 3
    packed = run_cells(cells, compute_many=many, cells_per_batch=3,
                       checkpoint=SweepCheckpoint(tmp_path / "c.jsonl", "fp"), progress=False)
    assert [r["key"] for r in packed] == [r["key"] for r in plain]
    for p, a in zip(packed, plain):
        for key in ("trait", "coherence", "length", "tokens", "n"):
            assert p[key] == a[key]


# ------------------------------------------------------------------ halving: pure parts
def test_rung_sizes_rank_and_prior():
    assert rung_sizes(100, 4, 3) == [4, 12, 36, 100]
    assert rung_sizes(12, 4, 3) == [4, 12]
    assert rung_sizes(3, 4, 3) == [3]
    rows = [dict(method="m", positions="all", layer=l, alpha=a, trait=t, coherence=c, key=k)
            for k, l, a, t, c in [("lo", 0, 1, 10, 99), ("hi", 1, 2, 80, 91), ("bad", 2, 8, 99, 50),
                                  ("tie", 0, 1, 80, 91), ("none", 3, 1, None, 99)]]
    # at/above the floor (90) by trait (tie: lower layer), then below it by coherence, then no score
    assert [r["key"] for r in rank_rows(rows, 90)] == ["tie", "hi", "lo", "bad", "none"]
    assert [r["key"] for r in rank_rows(rows, None)][0] == "bad"
    # floor_z: a cell measured on few prompts as just below the floor still counts as meeting it
    near = dict(rows[2], coherence=85.0, coherence_se=6.0)
    assert rank_rows([rows[0], near], 90, z=0)[0]["key"] == "lo"
    assert rank_rows([rows[0], near], 90, z=1)[0]["key"] == "bad"
    best = choose_operating_points(rows, 100)[("m", "all")]
    assert best is not None and best["key"] == rank_rows(rows, 90)[0]["key"]
    cells = grid_conditions({"swfc": [1.0]}, [0, 1, 2, 3], ["all"])
    assert [c.layer for c in prune_by_prior(cells, {0: 0.5, 1: 2.0, 3: 1.0}, 2)] == [1, 3]
    assert prune_by_prior(cells, None, 2) == cells and prune_by_prior(cells, {0: 1.0}, None) == cells
    with pytest.raises(ValueError, match="eta"):
        HalvingConfig(eta=1)


def test_halving_keeps_the_best_third_on_synthetic_scores():
    """A fake compute: cell quality known, so the survivors and the pick are checkable."""
    cells = grid_conditions({"swfc": [float(a) for a in range(1, 10)]}, [0], ["all"])
    items = list(range(27))
    calls = []

    def compute(group, its):
        calls.append((len(group), len(its)))
        out = []
        for c in group:
            t = 50.0 if not c.steered else 10.0 * c.alpha
            coh = 100.0 if not c.steered else 100.0 - 3.0 * c.alpha  # floor 90: α ≤ 3
            out.append({"trait": [t] * len(its), "coherence": [coh] * len(its),
                        "ce": [None] * len(its), "length": [5] * len(its),
                        "finished": [True] * len(its), "tokens": [4] * len(its)})
        return out

    res = successive_halving(cells, items, compute, baselines=baseline_conditions(),  # type: ignore[arg-type]
                             config=HalvingConfig(start_items=3, eta=3), cells_per_batch=100,
                             progress=False)
    assert [r["cells"] for r in res.rungs] == [9, 3, 2]  # a third, but min_keep=2
    assert [r["items"] for r in res.rungs] == [3, 9, 27]
    assert (res.chosen[("swfc", "all")] or {}).get("alpha") == 3.0
    # cost: 9 cells × 3 + 3 × 6 new + 2 × 18 new, plus both baselines on all 27, × 4 tokens
    assert res.tokens == 4 * (27 + 18 + 36 + 2 * 27)
    one = successive_halving(cells, items, compute, baselines=baseline_conditions(),  # type: ignore[arg-type]
                             config=HalvingConfig(start_items=3, eta=3, min_keep=1), progress=False)
    assert [r["cells"] for r in one.rungs] == [9, 3, 1] and one.chosen == res.chosen
    assert calls[0] == (11, 3)  # one packed call per rung: baselines + survivors


def test_halving_keeps_the_plain_rules_pick_when_stronger_ties_would_drop_it():
    """On the first prompts nothing moves the trait, so the larger-α tie-break keeps α 7-9;
    on the rest every α above 1 breaks coherence. Only α 1 is usable: it must survive."""
    cells = grid_conditions({"stmp": [float(a) for a in range(1, 10)]}, [0], ["all"])

    def compute(group, its):
        first = len(its) == 3  # rung 0's prompts
        out = []
        for c in group:
            if not c.steered:
                t, coh = (100.0 if c.side == "aligned" else 0.0), 100.0
            else:
                t = 0.0 if first else 50.0
                coh = 100.0 if first or c.alpha == 1 else 50.0
            out.append({"trait": [t] * len(its), "coherence": [coh] * len(its),
                        "ce": [None] * len(its), "length": [5] * len(its),
                        "finished": [True] * len(its), "tokens": [4] * len(its)})
        return out

    kept = {"stronger": {9, 8, 7, 1}, "paper": {1, 2, 3}, "both": {9, 8, 7, 1, 2, 3}}  # the union
    for ties, alphas in kept.items():
        res = successive_halving(cells, list(range(27)), compute, baselines=baseline_conditions(),  # type: ignore[arg-type]
                                 config=HalvingConfig(start_items=3, eta=3, ties=ties),
                                 progress=False)
        assert (res.chosen[("stmp", "all")] or {}).get("alpha") == 1.0, ties
        assert {r["alpha"] for r in res.rows if r["rung"] >= 1} == alphas, ties


# ------------------------------------------------------------------ halving on the organism
def _compute_items(organism, dirs):
    def compute(group, its):
        return [r.per_item() for r in run_conditions(organism, group, its, JUDGE, dirs, gen=GEN)]
    return compute


SMALL = {"sttp": [1.0, 6.0, 12.0, 24.0], "swfc": [2.0, 4.0, 8.0]}


def test_halving_deterministic_resumable_and_agrees_with_the_grid(organism, dirs, tune, tmp_path):
    cells = grid_conditions(SMALL, [1, 2, 3], ["all"])
    compute = _compute_items(organism, dirs)
    cfg = HalvingConfig(start_items=4, eta=3, seed=1)
    run = lambda ck=None, f=compute: successive_halving(
        cells, tune, f, baselines=baseline_conditions(), config=cfg, checkpoint=ck,
        cells_per_batch=8, progress=False)
    first = run(SweepCheckpoint(tmp_path / "a.jsonl", "fp")).to_dict()
    assert run().to_dict() == first  # deterministic given the seed

    calls, done = [], []

    def dies(group, its):
        calls.append(1)
        if len(calls) == 5:  # in the middle of rung 1
            raise KeyboardInterrupt
        done.append(len(group))
        return compute(group, its)

    with pytest.raises(KeyboardInterrupt):
        run(SweepCheckpoint(tmp_path / "b.jsonl", "fp"), dies)
    resumed_calls = []

    def counted(group, its):
        resumed_calls.append(len(group))
        return compute(group, its)

    resumed = run(SweepCheckpoint(tmp_path / "b.jsonl", "fp"), counted)
    assert resumed.to_dict() == first  # resume == uninterrupted
    # nothing computed twice: the resumed run did exactly what the interrupted one had not
    assert first["rungs"][1]["items"] == 12 and len(done) == 4
    assert sum(done) + sum(resumed_calls) == sum(r["cells"] + 2 for r in first["rungs"])

    # the exhaustive grid on every tune prompt
    grid_runs = run_conditions(organism, [*baseline_conditions(), *cells], tune, JUDGE, dirs, gen=GEN)
    grid: list[dict] = [r.summary() | c.to_dict() | {"key": c.key} for c, r in zip(cells, grid_runs[2:])]
    aligned = grid_runs[0].summary()
    grid_best = choose_operating_points(grid, aligned["coherence"])
    again = run()
    assert {k: (r or {}).get("key") for k, r in again.chosen.items()} == {
        k: (r or {}).get("key") for k, r in grid_best.items()}
    # survivors of the last rung saw every prompt: their rows are the grid's rows
    last = [r for r in again.rows if r["rung"] == len(again.rungs) - 1]
    assert last and all(r["n"] == len(tune) for r in last)
    by_key = {r["key"]: r for r in grid}
    for r in last:
        assert r["trait"] == pytest.approx(by_key[r["key"]]["trait"], abs=1e-9)
        assert r["coherence"] == pytest.approx(by_key[r["key"]]["coherence"], abs=1e-9)
        assert r["tokens"] == by_key[r["key"]]["tokens"]
    grid_tokens = sum(r["tokens"] for r in grid) + 2 * aligned["tokens"]
    assert again.tokens < 0.7 * grid_tokens
    # halving replayed on the grid's per-prompt scores is the halving that generates
    scores = {r.condition.key: r.per_item() for r in grid_runs}
    replayed = successive_halving(cells, tune, replay(scores, tune), baselines=baseline_conditions(),
                                  config=cfg, cells_per_batch=8, progress=False)
    assert replayed.to_dict() == first and replayed.rows == again.rows
    with pytest.raises(KeyError, match="outside the items"):
        replay(scores, tune[1:])(cells[:1], tune[:1])
    with pytest.raises(KeyError, match="no saved scores for cell"):
        successive_halving(cells, tune, replay({}, tune), baselines=baseline_conditions(), config=cfg,
                           progress=False)
    other = successive_halving(cells, tune, compute, baselines=baseline_conditions(),
                               config=HalvingConfig(start_items=4, eta=3, seed=2),
                               cells_per_batch=8, progress=False)
    assert other.rungs[0]["tokens"] != first["rungs"][0]["tokens"] or other.rows != again.rows


def test_evaluate_with_halving_writes_search_report_and_resumes(organism, located, tmp_path):
    cfg = EvaluateConfig(grid=SMALL, layers=[1, 2, 3], positions=["all"], search="halving",
                         halving=HalvingConfig(start_items=2, top_layers=2), max_items=12,
                         prompts_per_scenario=1, capability=None, multiturn=False,
                         extensions=False, gen=GenSettings(max_new_tokens=16), n_boot=50)
    res = evaluate(organism, "honesty", located, config=cfg, out=tmp_path / "ev", figures=True,
                   progress=False)
    search = res["search"]
    floor = res["sweep"]["coherence_floor"]
    prior = located.predictor("tf_effect")  # the default prior: the teacher-forced effect
    assert sorted(prior) == [r.layer for r in located.rows if r.point == "resid_post"]
    top2 = sorted(sorted([1, 2, 3], key=lambda layer: -prior[layer])[:2])
    assert search["method"] == "halving" and search["tokens"] == sum(r["tokens"] for r in search["rungs"])
    assert sorted({r["layer"] for r in res["sweep"]["rows"]}) == top2  # the prior pruned layers
    table = {e["layer"]: e for e in search["layers"]}
    assert table[1]["prior"] == pytest.approx(prior[1]) and table[1]["auroc"] is not None
    last = len(search["rungs"]) - 1
    for layer, e in table.items():
        mine = [r for r in res["sweep"]["rows"] if r["layer"] == layer and r["rung"] == last]
        assert e["finalists"] == len(mine)
        assert e["best_trait"] == max((r["trait"] for r in mine if r["coherence"] >= floor), default=None)
    for c in res["chosen"]:
        if c["row"] is not None:
            assert f"{c['method']}/{c['positions']}" in table[c["row"]["layer"]]["chosen_by"]
    report = (tmp_path / "ev" / "report.md").read_text()
    assert "## Search and layer choice" in report and "| rung | prompts |" in report
    assert (tmp_path / "ev" / "grid.csv").is_file() and "![" in report  # figures from rung rows
    again = evaluate(organism, "honesty", located, config=cfg, out=tmp_path / "ev", figures=False,
                     progress=False)
    drop = lambda r: {k: v for k, v in r.items() if k != "timings"}
    assert json.loads(json.dumps(drop(again))) == json.loads(json.dumps(drop(res)))


# ------------------------------------------------------------------ CLI
# (tests/test_cli_errors.py runs these and more through its no-leftovers check)
@pytest.mark.parametrize("extra, message", [
    (["--search", "beam"], "invalid choice"),
    (["--top-layers", "2"], "only apply to --search halving"),
    (["--halving-start", "3"], "only apply to --search halving"),
])
def test_cli_search_options_fail_in_one_line(tmp_path, capsys, extra, message):
    out = tmp_path / "ev"
    code = main(["evaluate", "--model", "organism", "--trait", "honesty", "--out", str(out), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("lensteer: error:"), err
    assert message in err[0]
    assert not out.exists()


# ------------------------------------------------------------------ a real model
class _LengthJudge:
    """Scores a response by its length: cheap, and any changed token shows."""

    name = "length"

    def score(self, items):
        from lensteer.evaluation import Verdict

        return [Verdict(trait=float(len(it.response)), coherence=100.0) for it in items]


@pytest.mark.slow
def test_packed_cells_equal_each_cell_alone_smollm2(smollm2):
    import torch

    from lensteer.directions import TraitDirection
    from lensteer.evaluation import EvalItem

    def direction(layer):
        g = torch.Generator().manual_seed(layer)
        return TraitDirection(v_hat=torch.randn(smollm2.cfg.d_model, generator=g), layer=layer,
                              hook=f"blocks.{layer}.hook_resid_post", boundary=0.0, mu_pos=2.0,
                              sigma_pos=0.5, mu_neg=-2.0, sigma_neg=0.5,
                              model=lensteer.model_info(smollm2).to_dict())

    dirs = {layer: direction(layer) for layer in (3, 9, 15)}
    items = [EvalItem("s", q, "Answer truthfully.", "Mislead the user.")
             for q in ("What is the capital of France?", "Name a primary colour.",
                       "How many legs does a spider have?")]
    cells = [baseline_conditions()[1], Condition("a", method="sttp", layer=9, alpha=8),
             Condition("b", method="swfc", layer=3, alpha=4, positions="response"),
             Condition("c", method="stmp", layer=15, alpha=2)]
    gen = GenSettings(max_new_tokens=10)
    packed = run_conditions(smollm2, cells, items, _LengthJudge(), dirs, gen=gen)  # type: ignore[arg-type]
    alone = [run_condition(smollm2, c, items, _LengthJudge(), dirs, gen=gen) for c in cells]  # type: ignore[arg-type]
    for p, a in zip(packed, alone):
        assert [g.response_ids for g in p.generations] == [g.response_ids for g in a.generations]
        assert p.summary()["trait"] == a.summary()["trait"]
    assert len({tuple(r.texts) for r in packed}) >= 3  # the steering changed the answers
