"""Steerability predictors: each checked against an independent computation (numpy for the
activation statistics, a one-condition-at-a-time loop with manual log-prob sums for the
teacher-forced effect), batched == one at a time, persistence, and the per-layer recovery."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import lensteer
from lensteer.errors import UsageError
from lensteer.evaluation.sweep import recovery_by_layer
from lensteer.locate import LocateResult, Sample, build_contrastive, collect_activations
from lensteer.locate.predictors import (
    DEFAULT_PREDICTOR,
    PREDICTORS,
    contrastive_pairs,
    difference_consistency,
    sign_split,
    small_push,
    spearman,
    teacher_forced_effect,
)
from lensteer.steering import make_steerer

LAYERS = [1, 4]


@pytest.fixture(scope="module")
def organism():
    return lensteer.load_model("organism")


@pytest.fixture(scope="module")
def located(organism):
    return lensteer.locate(organism, "honesty", layers=LAYERS, max_scenarios=4, n_folds=2,
                           max_new_tokens=12, greedy=True, per_token=False, neutral=False,
                           progress=False)


@pytest.fixture(scope="module")
def samples(organism):
    trait = lensteer.load_trait("honesty", model=organism)
    return build_contrastive(organism, trait, max_scenarios=4,
                                                  max_new_tokens=12, greedy=True, progress=False)


# ---------------------------------------------------------------- activation statistics
def test_difference_consistency_matches_numpy():
    g = np.random.default_rng(0)
    pos, neg, v = g.normal(size=(9, 16)), g.normal(size=(9, 16)), g.normal(size=16)
    d = pos - neg
    cos = d @ v / (np.linalg.norm(d, axis=1) * np.linalg.norm(v))
    mean, sd = difference_consistency(torch.tensor(pos, dtype=torch.float32),
                                      torch.tensor(neg, dtype=torch.float32),
                                      torch.tensor(v, dtype=torch.float32))
    assert mean == pytest.approx(cos.mean(), abs=1e-6) and sd == pytest.approx(cos.std(), abs=1e-6)
    # scale-free in v̂, and flipping v̂ flips the mean
    mean2, sd2 = difference_consistency(torch.tensor(pos), torch.tensor(neg), -3 * torch.tensor(v))
    assert mean2 == pytest.approx(-mean, abs=1e-6) and sd2 == pytest.approx(sd, abs=1e-6)
    with pytest.raises(UsageError):
        difference_consistency(torch.zeros(0, 3), torch.zeros(0, 3), torch.ones(3))


def test_sign_split_matches_numpy():
    g = np.random.default_rng(1)
    for shift in (0.0, 0.5, 3.0):
        pos, neg = g.normal(shift, 1, 50), g.normal(-shift, 1, 50)
        m = float(g.normal(0, 0.3))
        means, share = sign_split(torch.tensor(pos), torch.tensor(neg), m)
        assert means == float(pos.mean() > m > neg.mean())
        assert share == pytest.approx(np.mean((pos > m) & (neg < m)))
    assert sign_split(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0]), 2.5) == (0.0, 0.0)


def test_pairs_are_adjacent_aligned_then_malicious_of_one_scenario(organism):
    s = lambda sc, k, label: Sample(sc, "", label, "", k, [1, 2], (1, 2), "")  # noqa: E731
    samples = [s("a", 0, 1), s("a", 0, 0), s("a", 1, 1), s("a", 1, 0), s("b", 0, 0), s("b", 0, 1),
               s("c", 0, 1), s("d", 0, 0), s("d", 1, 1), s("d", 2, 0)]
    assert contrastive_pairs(samples) == [(0, 1), (2, 3), (8, 9)]
    # compassion's prompt lists differ in length (9 aligned, 10 malicious), so a pair's two
    # paraphrase indices differ; every scenario still gives its pair
    trait = lensteer.load_trait("compassion", model=organism)
    assert len(trait.aligned_prompts) != len(trait.malicious_prompts)
    built = build_contrastive(organism, trait, max_new_tokens=4, greedy=True, progress=False)
    assert any(built[2 * k].paraphrase != built[2 * k + 1].paraphrase for k in range(len(built) // 2))
    assert contrastive_pairs(built) == [(2 * k, 2 * k + 1) for k in range(len(trait.scenarios))]


def test_spearman_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    g = np.random.default_rng(2)
    for _ in range(5):
        x, y = g.integers(0, 4, 9).tolist(), g.normal(size=9).tolist()
        assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert math.isnan(spearman([2, 2, 2], [1, 2, 3]))


def test_recovery_by_layer_floor_and_none_coherence():
    rows = [dict(layer=2, trait=80, coherence=70), dict(layer=2, trait=40, coherence=90),
            dict(layer=3, trait=5, coherence=None), dict(layer=3, trait=None, coherence=99),
            dict(layer=4, trait=-20, coherence=99)]
    got = recovery_by_layer(rows, dict(trait=100.0, coherence=100.0), dict(trait=0.0))
    # layer 2: the 80 cell fails the 90 floor; layer 3: nothing passes; 4: worse than unsteered
    assert got == {2: 0.4, 3: 0.0, 4: 0.0}
    no_floor = recovery_by_layer(rows, dict(trait=100.0, coherence=None), dict(trait=0.0))
    assert no_floor == {2: 0.8, 3: 0.05, 4: 0.0}
    with pytest.raises(ValueError):
        recovery_by_layer(rows, dict(trait=1.0), dict(trait=1.0))


# ---------------------------------------------------------------- teacher-forced effect
def _logprob_mean(model, prompt, response):
    tokens = torch.tensor([list(prompt) + list(response)])
    with torch.no_grad():
        logits = model(tokens)
    lp = torch.log_softmax(logits[0].float(), -1)
    P = len(prompt)
    return float(sum(lp[P - 1 + k, t] for k, t in enumerate(response)) / len(response))


def _margins(model, samples):
    out = []
    for a, m in contrastive_pairs(samples):
        prompt = samples[m].input_ids[:samples[m].span[0]]
        resp = [samples[k].input_ids[slice(*samples[k].span)] for k in (a, m)]
        out.append(_logprob_mean(model, prompt, resp[0]) - _logprob_mean(model, prompt, resp[1]))
    return np.array(out)


def test_teacher_forced_effect_matches_a_direct_loop(organism, located, samples):
    push = {"swfc": 1.0, "stmp": 1.0}
    got = teacher_forced_effect(organism, samples, located.directions, push=push, progress=False)
    base = _margins(organism, samples)
    for site, direction in located.directions.items():
        for rule, alpha in push.items():
            # one site, one rule, one unpadded sequence at a time ("all" positions: no declaration)
            with lensteer.steer(organism, make_steerer(rule, direction, alpha)):
                steered = _margins(organism, samples)
            assert got[site][rule] == pytest.approx(float((steered - base).mean()), abs=1e-4)
    # the push matters: StMP at a middle layer favours the aligned answer on the organism
    assert got["blocks.1.hook_resid_post"]["stmp"] > 0.1


def test_teacher_forced_effect_batched_equals_one_at_a_time(organism, located, samples):
    batched = teacher_forced_effect(organism, samples, located.directions, batch_size=64,
                                    progress=False)
    alone = teacher_forced_effect(organism, samples, located.directions, batch_size=1,
                                  progress=False)
    one_site = teacher_forced_effect(organism, samples,
                                     {"blocks.4.hook_resid_post": located.directions["blocks.4.hook_resid_post"]},
                                     batch_size=7, progress=False)
    assert set(batched) == set(located.directions) and set(batched[located.sites[0]]) == set(small_push())
    for site in batched:
        for rule in batched[site]:
            assert batched[site][rule] == pytest.approx(alone[site][rule], abs=1e-4)
    for rule, value in one_site["blocks.4.hook_resid_post"].items():
        assert value == pytest.approx(batched["blocks.4.hook_resid_post"][rule], abs=1e-4)


def test_max_pairs_scores_an_even_spread_of_pairs(organism, located, samples):
    pairs = contrastive_pairs(samples)
    assert len(pairs) == 4
    capped = teacher_forced_effect(organism, samples, located.directions, max_pairs=2, progress=False)
    kept = [samples[k] for a, m in (pairs[0], pairs[-1]) for k in (a, m)]  # first and last pair
    direct = teacher_forced_effect(organism, kept, located.directions, progress=False)
    for site in capped:
        for rule in capped[site]:
            assert capped[site][rule] == pytest.approx(direct[site][rule], abs=1e-5)
    with pytest.raises(UsageError, match="tf_pairs"):
        lensteer.locate(organism, "honesty", layers=[2], max_scenarios=4, n_folds=2, tf_pairs=0)


def test_no_hooks_left_after_an_error(organism, located, samples):
    bad = [Sample("x", "", 1, "", 0, [1, 2], (1, 2), "")]  # no malicious side
    with pytest.raises(UsageError):
        teacher_forced_effect(organism, bad, located.directions)
    with pytest.raises(UsageError):
        teacher_forced_effect(organism, samples, located.directions, push={})
    assert not any(h.fwd_hooks for h in organism.hook_dict.values())


# ---------------------------------------------------------------- in locate and its result
def test_locate_rows_carry_the_predictors(located, organism):
    for row in located.rows:
        assert row.tf_effect is not None and row.tf_effect_rules is not None
        assert row.tf_effect == max(row.tf_effect_rules.values())
        assert set(row.tf_effect_rules) == set(small_push())
        assert -1 <= row.diff_consistency <= 1 and row.diff_consistency_sd >= 0
        assert row.sign_split == 1.0 and 0 <= row.sign_split_pairs <= 1
    assert located.settings["push"] == small_push() and located.settings["tf_effect"] is True
    assert located.settings["tf_pairs"] == 32
    assert DEFAULT_PREDICTOR in PREDICTORS
    assert located.predictor() == {r.layer: r.tf_effect for r in located.rows}
    assert set(located.predictor("diff_consistency")) == set(LAYERS)
    with pytest.raises(KeyError, match="Unknown predictor"):
        located.predictor("nope")
    header = located.table().splitlines()[0].split()
    assert header[-4:] == ["tf", "dcons", "dsd", "split"]


def test_diff_consistency_in_locate_matches_pooled_activations(located, organism):
    trait = lensteer.load_trait("honesty", model=organism)
    fresh = build_contrastive(organism, trait, max_scenarios=4,
                                                   max_new_tokens=12, greedy=True, progress=False)
    acts = collect_activations(organism, [s.input_ids for s in fresh], [s.span for s in fresh],
                               layers=LAYERS)
    for row in located.rows:
        x = acts.at(row.hook).numpy()
        v = located.directions[row.hook].v_hat.numpy()
        d = x[0::2] - x[1::2]  # samples come aligned first, in pairs
        cos = d @ v / (np.linalg.norm(d, axis=1) * np.linalg.norm(v))
        assert row.diff_consistency == pytest.approx(cos.mean(), abs=1e-5)


def test_skip_tf_effect_and_bad_push(organism):
    r = lensteer.locate(organism, "honesty", layers=[2], max_scenarios=4, n_folds=2,
                        max_new_tokens=6, greedy=True, per_token=False, neutral=False,
                        tf_effect=False, progress=False)
    assert r.rows[0].tf_effect is None and r.rows[0].diff_consistency is not None
    assert r.predictor("tf_effect") == {}
    for push, match in (({"nope": 1.0}, "unknown rule"), ({"stmp": -1.0}, "finite number"),
                        ({}, "at least one rule")):
        with pytest.raises(UsageError, match=match):
            lensteer.locate(organism, "honesty", layers=[2], max_scenarios=2, n_folds=2,
                            push=push, progress=False)


def test_round_trip_and_old_json(located):
    data = json.loads(located.to_json())
    back = LocateResult.from_dict(data)
    assert back.rows == located.rows and back.table() == located.table()
    for row in data["layers"]:  # a sweep.json written before the predictors existed
        for key in ("tf_effect", "tf_effect_rules", "diff_consistency", "diff_consistency_sd",
                    "sign_split", "sign_split_pairs"):
            row.pop(key)
    old = LocateResult.from_dict(data)
    assert old.rows[0].tf_effect is None and old.predictor() == {}
    assert old.table().splitlines()[1].split()[-4:] == ["-", "-", "-", "-"]


def test_recommendation_names_the_most_steerable_layer():
    from lensteer.locate import LocateRow, recommend

    def row(layer, auroc, tf):
        return LocateRow(layer=layer, hook=f"blocks.{layer}.hook_resid_post", point="resid_post",
                         accuracy=auroc, auroc=auroc, cohens_d=layer + 1.0, cos_mean_diff=0.9,
                         boundary=0.0, mu_pos=1.0, sigma_pos=1.0, mu_neg=-1.0, sigma_neg=1.0,
                         delta_mu=2.0, tf_effect=tf)

    rows = [row(0, 0.6, 0.9), row(1, 0.7, 0.5), row(2, 1.0, 0.1), row(3, 1.0, 0.2), row(4, 1.0, 0.0)]
    layers, text = recommend(rows)
    assert layers == [0, 2, 3, 4] and "most at layer 0" in text
    without = [row(r.layer, r.auroc, None) for r in rows]
    layers, text = recommend(without)
    assert layers == [2, 3, 4] and "teacher-forced" not in text
    layers, text = recommend([row(0, 0.5, 0.1), row(1, 0.6, 0.3)])  # nothing separable
    assert layers == [1] and "most at layer 1" in text
