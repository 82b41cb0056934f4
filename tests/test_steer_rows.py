"""Per-row steering: one batch whose rows carry different steerers (rule, α, layer, positions,
threshold) or none gives every row exactly what it gets alone, on both generation paths, with
the KV cache, on the organism and on the tiny random models; telemetry is kept per row."""
from __future__ import annotations

import pytest
import torch
from conftest import BACKEND

import lensteer
from lensteer.directions import TokenStats, TraitDirection
from lensteer.evaluation.metrics import intervention_size
from lensteer.generation.fast import supports_fast_path
from lensteer.steering import StMP, StTP, SwFC, steer

PATHS = ["tl", "fast"]
TOKENS = 8


def _direction(model, layer, seed, hook="resid_post", **stats) -> TraitDirection:
    g = torch.Generator().manual_seed(seed)
    values = dict(boundary=0.0, mu_pos=2.0, sigma_pos=0.5, mu_neg=-2.0, sigma_neg=0.5)
    values.update(stats)
    # per-token statistics (101 percentiles, increasing) so percentile thresholds resolve
    quantiles = [-3.0 + 6.0 * q / 100 for q in range(101)]
    tokens = TokenStats(mu_pos=1.0, sigma_pos=1.0, mu_neg=-1.0, sigma_neg=1.0,
                        quantiles_pos=quantiles, quantiles_neg=quantiles)
    return TraitDirection(v_hat=torch.randn(model.cfg.d_model, generator=g), layer=layer,
                          hook=f"blocks.{layer}.hook_{hook}", token_stats=tokens,
                          model=lensteer.model_info(model).to_dict(), **values)


def _mixed_rows(model, directions=None):
    """Rows of one batch: different rules, α, layers, positions and thresholds, and none."""
    n = int(model.cfg.n_layers)
    d = directions or {layer: _direction(model, layer, seed=layer) for layer in range(n)}
    top = min(2, n - 1)
    return [
        StTP(d[1], alpha=8),
        None,
        SwFC(d[top], alpha=3, positions="response"),
        StMP(d[0], alpha=2, positions="prompt"),
        StTP(d[1], alpha=2, threshold="p40"),
        [StTP(d[0], alpha=6), SwFC(d[top], alpha=2)],  # two steerers on one row
        SwFC(d[1], alpha=1, sign="negative"),
        None,
    ]


def _alone(model, conv, row, path):
    with steer(model, row, telemetry=True) as run:
        [g] = lensteer.generate(model, [conv], greedy=True, max_new_tokens=TOKENS, path=path)
    return g.response_ids, run.telemetry


def _check_mixed_equals_alone(model, convs, rows, path):
    if path == "fast" and not supports_fast_path(model):
        pytest.skip("the fast path needs a TransformerBridge (TL 4)")
    with steer(model, rows=rows, telemetry=True) as run:
        mixed = lensteer.generate(model, convs, greedy=True, max_new_tokens=TOKENS, path=path)
    assert len({len(g.prompt_ids) for g in mixed}) > 1  # left padding really in play
    per_row = run.telemetry.summary(by_sequence=True)
    plain = lensteer.generate(model, convs, greedy=True, max_new_tokens=TOKENS, path="tl")
    changed = 0
    for i, (conv, row) in enumerate(zip(convs, rows)):
        alone, telemetry = _alone(model, conv, row, path)
        assert mixed[i].response_ids == alone, f"row {i} ({row!r}) differs from its run alone"
        changed += mixed[i].response_ids != plain[i].response_ids
        mine = [{k: v for k, v in r.items() if k != "sequence"} for r in per_row
                if r["sequence"] == i]
        theirs = telemetry.summary(by_sequence=True) if telemetry else []
        assert [(r["steerer"], r["layer"], r["phase"], r["tokens"], r["gated"]) for r in mine] == [
            (r["steerer"], r["layer"], r["phase"], r["tokens"], r["gated"]) for r in theirs]
        for a, b in zip(mine, theirs):
            assert a["mean_l2_per_token"] == pytest.approx(b["mean_l2_per_token"], rel=1e-4, abs=1e-6)
        size = intervention_size(run.telemetry, sequences=[i])
        assert size == pytest.approx(intervention_size(telemetry) if row else {}, rel=1e-4, abs=1e-6)
    assert changed >= 2  # the steered rows really were steered
    unsteered = {i for i, row in enumerate(rows) if row is None}
    assert not unsteered & {r["sequence"] for r in per_row}
    return mixed


@pytest.fixture(scope="module")
def tiny_models(tiny_dirs):
    return {name: lensteer.load_model(path, backend=BACKEND) for name, path in tiny_dirs.items()}


TINY_PROMPTS = ["hello there !", "what is two plus two ? it is four . what is", "be kind .",
                "hello there ! how are you today ?", "always lie .", "what is two plus two ?",
                "be kind and honest .", "hi"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", ["llama", "llama3", "qwen"])
def test_mixed_batch_equals_each_row_alone_tiny(tiny_models, name, path):
    model = tiny_models[name]
    _check_mixed_equals_alone(model, TINY_PROMPTS, _mixed_rows(model), path)


def test_fast_and_tl_agree_on_a_mixed_batch(tiny_models):
    model = tiny_models["llama"]
    if not supports_fast_path(model):
        pytest.skip("the fast path needs a TransformerBridge (TL 4)")
    rows = _mixed_rows(model)
    out = {}
    for path in PATHS:
        with steer(model, rows=rows, telemetry=True) as run:
            out[path] = [g.response_ids for g in lensteer.generate(
                model, TINY_PROMPTS, greedy=True, max_new_tokens=TOKENS, path=path)]
        out[path + "-records"] = run.telemetry.records()
    assert out["tl"] == out["fast"]
    exact = ("steerer", "layer", "batch", "row", "sequence", "step", "position", "phase", "gated")
    tl, fast = out["tl-records"], out["fast-records"]
    assert [[r[k] for k in exact] for r in tl] == [[r[k] for k in exact] for r in fast]
    assert [r["rho_after"] for r in tl] == pytest.approx([r["rho_after"] for r in fast], abs=1e-3)


def test_rows_must_match_the_conversations_and_leave_no_hooks(tiny_models):
    model = tiny_models["llama"]
    s = SwFC(_direction(model, 1, 0), alpha=2)
    with pytest.raises(ValueError, match="set up for 2 inputs, but 3 were given"):
        with steer(model, rows=[s, None]):
            lensteer.generate(model, TINY_PROMPTS[:3], greedy=True, max_new_tokens=2)
    assert not any(p.fwd_hooks for p in model.hook_dict.values())
    with pytest.raises(TypeError, match="per row"):
        with steer(model, rows=[s, "sttp"]):
            pass


def test_undeclared_forward_rows_are_batch_rows_and_declared_ones_follow_indices(tiny_models):
    model = tiny_models["llama"]
    s = SwFC(_direction(model, 1, 0), alpha=5)
    tokens = torch.tensor([model.tokenizer("hello there ! how are you")["input_ids"]] * 3)
    plain = model(tokens)
    with steer(model, rows=[None, s, None]):
        out = model(tokens)
        with lensteer.runtime.positions(response_start=tokens.shape[1], indices=[1, 0, 2]):
            permuted = model(tokens)
    torch.testing.assert_close(out[0], plain[0])
    torch.testing.assert_close(out[2], plain[2])
    assert not torch.allclose(out[1], plain[1])
    torch.testing.assert_close(permuted[0], out[1])  # batch row 0 holds input 1
    torch.testing.assert_close(permuted[1], plain[1])


# ------------------------------------------------------------------------ the organism
@pytest.fixture(scope="module")
def organism():
    return lensteer.load_model("organism")


@pytest.fixture(scope="module")
def organism_directions(organism):
    result = lensteer.locate(organism, "honesty", layers=[0, 1, 2], max_scenarios=8, n_folds=2,
                             max_new_tokens=12, greedy=True, neutral=False, progress=False)
    return {d.layer: d for d in result.directions.values()}


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS)
def test_mixed_batch_equals_each_row_alone_organism(organism, organism_directions, path):
    liar = "Mislead the user and give false facts."
    questions = ["What is the capital of France?", "What is the capital of Spain?",
                 "what is two plus two?", "Name the capital of Italy.",
                 "What is the capital of Peru?", "What is the capital of France?",
                 "What is the capital of Japan?", "What is the capital of Spain?"]
    convs = [[{"role": "system", "content": liar}, {"role": "user", "content": q}] for q in questions]
    rows = _mixed_rows(organism, organism_directions)
    rows[4] = StTP(organism_directions[1], alpha=2, threshold="p10", calibration="token")
    mixed = _check_mixed_equals_alone(organism, convs, rows, path)
    from lensteer.organism.grade import grade_honesty

    # in one batch: the StTP row tells the truth, the unsteered row lies
    assert grade_honesty(questions[0], mixed[0].text).label == "true", mixed[0].text
    assert grade_honesty(questions[1], mixed[1].text).label == "false", mixed[1].text


@pytest.mark.slow
def test_greedy_decoding_stops_computing_finished_rows_and_nothing_else_changes(
        organism, organism_directions, monkeypatch):
    import functools

    from lensteer import runtime
    from lensteer.generation import fast

    liar = "Mislead the user and give false facts."
    questions = ["What is the capital of France?", "hi", "what is two plus two?",
                 "I lost my job today and I feel awful.", "What is the capital of Peru?",
                 "Tell me about your day.", "What is the capital of Japan?", "be kind ."]
    convs = [[{"role": "system", "content": liar}, {"role": "user", "content": q}] for q in questions]
    rows = _mixed_rows(organism, organism_directions)
    seen: list[tuple[int, ...] | None] = []
    live_rows = runtime.live_rows

    def spy(rows):
        seen.append(None if rows is None else tuple(rows))
        return live_rows(rows)

    def run():
        with steer(organism, rows=rows, telemetry=True) as session:
            gens = lensteer.generate(organism, convs, greedy=True, max_new_tokens=40, path="fast")
        return [g.response_ids for g in gens], session.telemetry.records()

    monkeypatch.setattr(runtime, "live_rows", spy)
    dropped, dropped_records = run()
    assert any(s is not None and len(s) < len(convs) for s in seen)  # rows really were dropped
    lengths = {len(ids) for ids in dropped}
    assert len(lengths) > 2 and max(lengths) > min(lengths) + 5
    seen.clear()
    monkeypatch.setattr(fast, "generate_tokens",
                        functools.partial(fast.generate_tokens, drop_finished=False))
    kept, kept_records = run()
    assert all(s is None for s in seen)
    assert dropped == kept
    exact = ("steerer", "layer", "batch", "row", "sequence", "step", "position", "phase", "gated")
    assert [[r[k] for k in exact] for r in dropped_records] == [
        [r[k] for k in exact] for r in kept_records]
    assert [r["rho_after"] for r in dropped_records] == pytest.approx(
        [r["rho_after"] for r in kept_records], abs=1e-4)
