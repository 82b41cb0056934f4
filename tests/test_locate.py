"""The layer sweep on tiny models: rows, grouping, persistence, CLI; the organism when present."""
from __future__ import annotations

import json

import pytest
import torch

import lensteer
from lensteer import locate as locate_fn
from lensteer.contrastive import build_contrastive
from lensteer.errors import FitError
from lensteer.locate import LocateResult, cross_validate

ROW_KEYS = {"layer", "hook", "accuracy", "auroc", "cohens_d", "cos_mean_diff", "boundary", "mu_pos",
            "sigma_pos", "mu_neg", "sigma_neg", "gate_rate_neutral"}
PROMPTS = ["what is two plus two ?", "how are you today ?", "hello there !", "the capital of france ?",
           "name three colours", "are you fine ?", "what is four ?", "red blue green ?",
           "thank you !", "is paris the capital ?"]


@pytest.fixture(scope="module")
def given_trait(tmp_path_factory):
    """An off-policy trait in the tiny tokenizer's vocabulary; responses differ by class."""
    path = tmp_path_factory.mktemp("trait") / "demo.json"
    scenarios = [
        {"id": f"s{i}", "prompt": p,
         "aligned_response": "it is four . i am fine , thank you .",
         "malicious_response": "always lie . you are red . always lie ."}
        for i, p in enumerate(PROMPTS)
    ]
    path.write_text(json.dumps({
        "name": "demo",
        "aligned_prompts": ["be kind and honest .", "you are a helpful assistant ."],
        "malicious_prompts": ["always lie .", "you are a liar ."],
        "eval_aligned_prompts": ["be honest ."],
        "eval_malicious_prompts": ["lie ."],
        "scenarios": scenarios[:8],
        "eval_scenarios": scenarios[8:],
        "neutral_prompts": ["you are a helpful assistant ."],
        "neutral_scenarios": ["hello there !", "how are you ?", "name three colours"],
    }))
    return path


@pytest.fixture(scope="module")
def given_result(tiny_model, given_trait):
    return locate_fn(tiny_model, given_trait, responses="given", hooks=["resid_post", "mlp_out"],
                     n_folds=4, max_new_tokens=6, evaluate=True, progress=False)


def test_rows_and_statistics(given_result, tiny_model):
    r = given_result
    assert [(x.layer, x.point) for x in r.rows] == [(layer, p) for layer in range(3) for p in ("resid_post", "mlp_out")]
    for row in r.rows:
        # the responses differ in their words; a random model, 6 pairs per training fold
        assert row.accuracy >= 0.75 and row.auroc >= 0.9
        assert row.mu_neg < row.boundary < row.mu_pos
        assert -1.0 <= row.cos_mean_diff <= 1.0 and row.cohens_d > 0
        for rate in (row.gate_rate_neutral, row.gate_rate_neutral_response,
                     row.gate_rate_aligned_tokens, row.gate_rate_malicious_tokens):
            assert 0.0 <= rate <= 1.0
        assert row.eval_accuracy is not None
        d = r.directions[row.hook]
        assert row.token_threshold == pytest.approx(d.token_stats.percentile_pos(5.0))
        assert 0.0 <= row.token_gate_rate_neutral <= 1.0
        aligned_tokens = torch.tensor(r.token_projections[row.hook]["pos"])
        # (stored projections are rounded to 5 digits, and percentiles interpolate)
        assert float((aligned_tokens < row.token_threshold).float().mean()) <= 0.05 + 2 / len(aligned_tokens)
        d = r.directions[row.hook]
        assert d.token_stats is not None and d.layer == row.layer and d.trait == "demo"
        assert d.model["name"] == tiny_model.lensteer_info.name
        assert d.boundary == row.boundary
    cos = torch.tensor(r.cosine)
    assert cos.shape == (6, 6) and torch.allclose(cos.diag(), torch.ones(6), atol=1e-5)
    assert "steering sweep" in r.recommendation and r.recommended
    assert set(r.recommended) <= {0, 1, 2}
    table = r.table()
    assert len(table.splitlines()) == 7 and "auroc" in table


def test_samples_keep_scenario_and_paraphrase(tiny_model, given_trait):
    trait = lensteer.load_trait(given_trait)
    samples = build_contrastive(tiny_model, trait, responses="given", prompts_per_scenario=2)
    assert len(samples) == 8 * 2 * 2
    assert [s.label for s in samples[:4]] == [1, 0, 1, 0]
    assert samples[0].scenario == samples[1].scenario == "s0"
    assert [s.paraphrase for s in samples[:4]] == [0, 0, 1, 1]
    assert samples[1].system == "always lie ."
    decoded = tiny_model.tokenizer.decode(samples[0].input_ids[slice(*samples[0].span)])
    assert decoded.strip().startswith("it is four")


def test_round_trip_dict_json_and_directory(given_result, tmp_path):
    data = json.loads(given_result.to_json())
    assert ROW_KEYS <= set(data["layers"][0])
    back = LocateResult.from_dict(data)
    assert back.table() == given_result.table() and back.recommended == given_result.recommended
    given_result.save(tmp_path)
    loaded = LocateResult.load(tmp_path)
    assert set(loaded.directions) == set(given_result.directions)
    for hook, d in loaded.directions.items():
        torch.testing.assert_close(d.v_hat, given_result.directions[hook].v_hat, rtol=1e-6, atol=1e-7)
        assert d.token_stats == given_result.directions[hook].token_stats
    assert loaded.direction(1, "mlp_out").hook == "blocks.1.hook_mlp_out"


def test_methods_agree_on_separable_data(tiny_model, given_trait):
    results = {m: locate_fn(tiny_model, given_trait, responses="given", layers=[1], method=m,
                            n_folds=4, per_token=False) for m in ("mean_diff", "pca")}
    for m, res in results.items():
        assert res.rows[0].accuracy == 1.0, m
    md = results["mean_diff"].rows[0]
    assert md.cos_mean_diff == pytest.approx(1.0, abs=1e-5)


def test_folds_never_share_a_scenario(monkeypatch):
    import importlib

    L = importlib.import_module("lensteer.locate.metrics")  # where cross_validate fits

    g = torch.Generator().manual_seed(0)
    n_scen = 10
    groups = [f"s{j}" for j in range(n_scen) for _ in range(4)]
    labels = torch.tensor([1, 0, 1, 0] * n_scen)
    emb = torch.randn(len(labels), 6, generator=g)
    emb[:, 0] = torch.tensor([float(j) for j in range(n_scen) for _ in range(4)])  # scenario id
    emb[:, 1] += 3 * labels
    seen = []
    real_fit = L.fit_direction

    def spy(pos, neg, **kw):
        d = real_fit(pos, neg, **kw)
        train = set(pos[:, 0].int().tolist()) | set(neg[:, 0].int().tolist())
        real_project = d.project

        def project(x):
            seen.append((train, set(x[:, 0].int().tolist())))
            return real_project(x)

        d.project = project
        return d

    monkeypatch.setattr(L, "fit_direction", spy)
    acc, auroc = cross_validate(emb, labels, groups, n_folds=5)
    assert len(seen) == 5 and all(not (train & test) for train, test in seen)
    assert set().union(*(test for _, test in seen)) == set(range(n_scen))
    assert acc > 0.9 and auroc > 0.9


def test_cross_validation_errors():
    emb = torch.randn(12, 4)
    with pytest.raises(FitError, match="Single-class"):
        cross_validate(emb, torch.ones(12, dtype=torch.long), [str(i // 2) for i in range(12)])
    labels = torch.tensor([1, 0] * 6)
    with pytest.raises(FitError, match="Only 3 scenarios for 5-fold"):
        cross_validate(emb, labels, [str(i // 4) for i in range(12)], n_folds=5)
    with pytest.raises(FitError, match="at least 2"):
        cross_validate(emb, labels, [str(i // 2) for i in range(12)], n_folds=1)


def test_on_policy_locate_tiny(tiny_model):
    result = locate_fn(tiny_model, "honesty", max_scenarios=6, n_folds=3, max_new_tokens=4,
                       layers=[0, 2], greedy=True, neutral=False, progress=False)
    assert [r.layer for r in result.rows] == [0, 2]
    assert len([s for s in result.samples if s["label"] == 1]) == 6
    assert result.rows[0].gate_rate_neutral is None and result.rows[0].gate_rate_aligned_tokens is not None
    assert result.settings["greedy"] is True


def test_cli_writes_sweep_directions_and_plots(tiny_dirs, given_trait, tmp_path, capsys):
    from lensteer.cli import main

    out = tmp_path / "run"
    code = main(["locate", "--model", str(tiny_dirs["llama"]), "--trait", str(given_trait), "--out",
                 str(out), "--responses", "given", "--folds", "4", "--layers", "0-1",
                 "--hooks", "resid_post", "mlp_out", "--max-new-tokens", "4"])
    assert code == 0
    sweep = json.loads((out / "sweep.json").read_text())
    assert [(r["layer"], r["hook"]) for r in sweep["layers"]] == [
        (0, "blocks.0.hook_resid_post"), (0, "blocks.0.hook_mlp_out"),
        (1, "blocks.1.hook_resid_post"), (1, "blocks.1.hook_mlp_out")]
    assert all(ROW_KEYS <= set(r) for r in sweep["layers"])
    assert len(list((out / "directions").glob("*.safetensors"))) == 4
    assert (out / "sweep.png").stat().st_size > 1000 and (out / "cosine.png").exists()
    assert (out / "predictors.png").stat().st_size > 1000
    assert list(out.glob("projections_L*_resid_post.png"))
    assert all(r["tf_effect"] is not None and r["diff_consistency"] is not None for r in sweep["layers"])
    printed = capsys.readouterr().out
    assert "recommended layers" in printed and "auroc" in printed and " tf " in printed
    assert main(["locate", "--model", str(tiny_dirs["llama"]), "--trait", str(given_trait), "--out",
                 str(out), "--responses", "given", "--folds", "4", "--layers", "1",
                 "--max-new-tokens", "4", "--no-tf-effect", "--no-plots"]) == 0
    [row] = json.loads((out / "sweep.json").read_text())["layers"]
    assert row["tf_effect"] is None and row["diff_consistency"] is not None
    # bad input: a clear error and exit status 2, no traceback
    assert main(["locate", "--model", str(tiny_dirs["llama"]), "--trait", "nope", "--out", str(out)]) == 2


def test_plots_take_an_axis(given_result):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lensteer import plots

    fig, axes = plt.subplots(1, 4, figsize=(16, 3))
    assert plots.plot_sweep(given_result, ax=axes[0]) is fig
    assert plots.plot_cosine(given_result, ax=axes[1]) is fig
    assert plots.plot_projections(given_result, 1, ax=axes[2:]) is fig
    assert plots.plot_projections(given_result, 0).axes
    plt.close("all")


def _organism():
    from lensteer.models import BUNDLED_MODELS

    if not BUNDLED_MODELS["organism"].is_ready():
        pytest.skip("the organism checkpoint is not trained yet")
    return lensteer.load_model("organism")


@pytest.mark.parametrize("trait", ["honesty", "compassion"])
def test_organism_traits_are_linearly_separable(trait):
    model = _organism()
    result = locate_fn(model, trait, max_scenarios=48, n_folds=4, max_new_tokens=24,
                       per_token=False, progress=False)
    best = max(result.rows, key=lambda r: r.accuracy)
    print(f"\norganism {trait}:\n{result.table()}")
    assert best.accuracy >= 0.95, result.table()


def test_zero_token_response_is_an_error_naming_the_scenario(tiny_model, given_trait):
    from lensteer.errors import ActivationError

    trait = lensteer.load_trait(given_trait)
    samples = build_contrastive(tiny_model, trait, responses="given")
    s = samples[3]
    samples[3] = type(s)(**{**s.__dict__, "span": (s.span[0], s.span[0])})
    with pytest.raises(ActivationError, match="s1"):
        locate_fn(tiny_model, trait, samples=samples, n_folds=4, layers=[0], per_token=False)
    with pytest.warns(UserWarning, match="s1"):
        result = locate_fn(tiny_model, trait, samples=samples, n_folds=4, layers=[0],
                           per_token=False, drop_empty=True)
    assert len(result.samples) == len(samples) - 2
    assert result.directions["blocks.0.hook_resid_post"].extra["auroc"] == result.rows[0].auroc
