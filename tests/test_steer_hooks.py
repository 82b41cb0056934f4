"""Steering hooks on a tiny Bridge: lifecycle, position modes, telemetry, fast path, specs, CLI."""
from __future__ import annotations

import json
import os
import re
import warnings

import pytest
import torch

import lensteer
from lensteer.directions import DirectionMismatchError, TraitDirection
from lensteer.errors import LensteerError
from lensteer.steering import (
    FastPathError,
    SpecMismatchError,
    StMP,
    StTP,
    SwFC,
    active_sessions,
    export_vllm,
    load_steerer,
    save_steerer,
    steer,
)
from lensteer.steering.fast import shared_hf_model, supports_fast_path
from lensteer.steering.session import _hook_points, fast_path_reason

PROMPTS = ["hello there !", "what is two plus two ? it is four . what is", "be kind ."]


def needs_fast(model, path="fast"):
    if path == "fast" and not supports_fast_path(model):
        pytest.skip("the fast path needs a TransformerBridge (TL 4)")


def n_hooks(model) -> int:
    return sum(len(p.fwd_hooks) + len(p.bwd_hooks) for p in _hook_points(model))


def make_direction(model, layer=1, seed=0, **stats) -> TraitDirection:
    g = torch.Generator().manual_seed(seed)
    defaults = dict(boundary=0.0, mu_pos=2.0, sigma_pos=0.5, mu_neg=-2.0, sigma_neg=0.5)
    defaults.update(stats)
    return TraitDirection(v_hat=torch.randn(model.cfg.d_model, generator=g), layer=layer,
                          hook=f"blocks.{layer}.hook_resid_post",
                          model=lensteer.model_info(model).to_dict(), **defaults)


def tokens_of(model, text="hello there ! how are you"):
    return torch.tensor([model.tokenizer(text)["input_ids"]])


def ids(gens):
    return [g.response_ids for g in gens]


@pytest.fixture
def clean(tiny_model):
    tiny_model.reset_hooks()
    yield tiny_model
    assert not active_sessions(tiny_model)
    tiny_model.reset_hooks()


# ------------------------------------------------------------------------ lifecycle
def test_hooks_change_the_output_and_are_gone_after_exit(clean):
    model = clean
    tokens = tokens_of(model)
    plain = model(tokens)
    with steer(model, SwFC(make_direction(model), alpha=5)) as run:
        assert n_hooks(model) == 1 and active_sessions(model) == [run]
        steered = model(tokens)
    assert n_hooks(model) == 0
    assert not torch.allclose(plain, steered)
    torch.testing.assert_close(model(tokens), plain)


def test_hooks_gone_after_exception_in_context(clean):
    model = clean
    with pytest.raises(KeyError):
        with steer(model, StTP(make_direction(model), alpha=6)):
            raise KeyError("boom")
    assert n_hooks(model) == 0


class Exploding(StTP):
    calls = 0

    def _rule(self, h, rule, mask):
        Exploding.calls += 1
        if Exploding.calls == 3:
            raise RuntimeError("rule failed mid-generation")
        return super()._rule(h, rule, mask)


@pytest.mark.parametrize("path", ["tl", "fast"])
def test_hooks_gone_after_exception_inside_generation(clean, path):
    model = clean
    fast = supports_fast_path(model)
    hf = shared_hf_model(model) if fast else None
    if fast:
        lensteer.generate(model, PROMPTS[:1], greedy=True, max_new_tokens=2, path="fast")
        before = [(dict(m._forward_hooks), dict(m._forward_pre_hooks)) for m in hf.model.layers]
    else:
        needs_fast(model, path)
    Exploding.calls = 0
    with pytest.raises(RuntimeError, match="mid-generation"):
        with steer(model, Exploding(make_direction(model), alpha=6), telemetry=True):
            lensteer.generate(model, PROMPTS, greedy=True, max_new_tokens=6, path=path)
    assert n_hooks(model) == 0
    if fast:
        after = [(dict(m._forward_hooks), dict(m._forward_pre_hooks)) for m in hf.model.layers]
        assert after == before  # Hugging Face's own output-capturing hooks only


def test_user_hook_survives_and_nested_contexts_unwind_in_order(clean):
    model = clean
    seen = []

    def user_hook(x, hook):
        seen.append(hook.name)
        return x

    model.add_hook("blocks.0.hook_resid_post", user_hook)
    outer = StTP(make_direction(model, layer=1), alpha=6)
    inner = SwFC(make_direction(model, layer=2, seed=1), alpha=1)
    with steer(model, outer) as a:
        assert n_hooks(model) == 2
        with steer(model, inner) as b:
            assert n_hooks(model) == 3 and active_sessions(model) == [a, b]
        assert n_hooks(model) == 2 and active_sessions(model) == [a]
    assert n_hooks(model) == 1
    model(tokens_of(model))
    assert seen  # the user's hook still fires


def test_raw_hooks_api_matches_context_manager(clean):
    model = clean
    s = StMP(make_direction(model), alpha=1.5)
    tokens = tokens_of(model)
    with steer(model, s):
        a = model(tokens)
    b = model.run_with_hooks(tokens, fwd_hooks=s.hooks(model))
    with model.hooks(fwd_hooks=s.hooks(model)):
        c = model(tokens)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)
    assert n_hooks(model) == 0


# ------------------------------------------------------------------------ generation
def test_fast_path_is_taken_automatically_and_matches_tl(clean):
    model = clean
    needs_fast(model)
    s = StTP(make_direction(model), alpha=8)
    plain = lensteer.generate(model, PROMPTS, greedy=True, max_new_tokens=8)
    with steer(model, s):
        fast = lensteer.generate(model, PROMPTS, greedy=True, max_new_tokens=8, path="fast")
        auto = lensteer.generate(model, PROMPTS, greedy=True, max_new_tokens=8)
        tl = lensteer.generate(model, PROMPTS, greedy=True, max_new_tokens=8, path="tl")
        sampled_fast = lensteer.generate(model, PROMPTS, max_new_tokens=8, seed=3, path="fast")
        sampled_tl = lensteer.generate(model, PROMPTS, max_new_tokens=8, seed=3, path="tl")
    assert ids(fast) == ids(tl) == ids(auto)
    assert ids(fast) != ids(plain)  # steering really changed something
    assert ids(sampled_fast) == ids(sampled_tl)  # same sampling function, same random stream


def test_foreign_hook_forces_the_tl_path(clean):
    model = clean
    fired = []
    model.add_hook("blocks.0.hook_resid_pre", lambda x, hook: fired.append(1))
    with steer(model, StTP(make_direction(model), alpha=8)):
        lensteer.generate(model, PROMPTS[:1], greedy=True, max_new_tokens=3)
        assert fired  # the user's hook ran, so generation went through the Bridge
        expected = "other TransformerLens hooks" if supports_fast_path(model) else "TransformerBridge"
        with pytest.raises(FastPathError, match=expected):
            lensteer.generate(model, PROMPTS[:1], greedy=True, max_new_tokens=3, path="fast")


def test_user_torch_hook_forces_the_tl_path_instead_of_the_fast_path(clean):
    model = clean
    assert supports_fast_path(model)  # this environment is the Bridge one (compat deselects)
    s = StTP(make_direction(model), alpha=8)
    calls = []
    layer = model.original_model.model.layers[1]

    def count_calls(module, args, output):
        calls.append(1)

    handle = layer.register_forward_hook(count_calls)
    try:
        plain = lensteer.generate(model, PROMPTS[:1], greedy=True, max_new_tokens=8)
        unsteered = len(calls)
        with steer(model, s):
            calls.clear()
            tl = lensteer.generate(model, PROMPTS[:1], greedy=True, max_new_tokens=8, path="tl")
            with_tl = len(calls)
            calls.clear()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                auto = lensteer.generate(model, PROMPTS[:1], greedy=True, max_new_tokens=8)
                with_auto = len(calls)
                lensteer.generate(model, PROMPTS[:1], greedy=True, max_new_tokens=8)
            with pytest.raises(FastPathError, match=r"count_calls on original_model\.model\.layers\.1"):
                lensteer.generate(model, PROMPTS[:1], greedy=True, max_new_tokens=8, path="fast")
        mine = [w for w in caught if "TransformerLens path" in str(w.message)]
        assert len(mine) == 1 and "count_calls" in str(mine[0].message)  # said once, with why
        assert mine[0].filename == __file__  # points at the caller's generate
        assert len(plain[0].response_ids) == len(tl[0].response_ids) == 8  # same number of steps
        assert unsteered == with_tl == with_auto == 8  # the hook runs on every step when steered
        assert ids(auto) == ids(tl) and ids(auto) != ids(plain)
    finally:
        handle.remove()
    # a hook on the shared fast-path model is just as foreign; without hooks the fast path is back
    hf = shared_hf_model(model)
    handle = hf.model.layers[0].register_forward_pre_hook(lambda module, args: None)
    try:
        with steer(model, s):
            assert "forward-pre hook" in fast_path_reason(model)
    finally:
        handle.remove()
    with steer(model, s):
        assert fast_path_reason(model) is None


@pytest.mark.parametrize("path", ["tl", "fast"])
def test_steered_kv_cache_equals_no_cache_and_batched_equals_unbatched(clean, path):
    model = clean
    needs_fast(model, path)
    s = StMP(make_direction(model), alpha=2)
    with steer(model, s):
        cached = lensteer.generate(model, PROMPTS, greedy=True, max_new_tokens=8, path=path)
        uncached = lensteer.generate(model, PROMPTS, greedy=True, max_new_tokens=8, path=path,
                                     use_kv_cache=False)
        single = [lensteer.generate(model, [p], greedy=True, max_new_tokens=8, path=path)[0]
                  for p in PROMPTS]
    assert ids(cached) == ids(uncached) == ids(single)


@pytest.mark.parametrize("use_kv_cache", [True, False])
@pytest.mark.parametrize("path", ["tl", "fast"])
def test_position_modes_through_telemetry(clean, use_kv_cache, path):
    model = clean
    needs_fast(model, path)
    d = make_direction(model)
    gens = {}
    records = {}
    for mode in ("all", "response", "prompt"):
        with steer(model, SwFC(d, alpha=1, positions=mode), telemetry=True) as run:
            gens[mode] = lensteer.generate(model, PROMPTS, greedy=True, max_new_tokens=6,
                                           use_kv_cache=use_kv_cache, path=path)
        records[mode] = run.telemetry.records()
    for mode, recs in records.items():
        for i, g in enumerate(gens[mode]):
            mine = [r for r in recs if r["sequence"] == i]
            prompt = [r for r in mine if r["phase"] == "prompt"]
            response = [r for r in mine if r["phase"] == "response"]
            # every real token exactly once: no pads, no tokens after the row finished (the
            # last sampled token of an unfinished row is never fed back through the model)
            fed = len(g.input_ids) - (0 if g.finished else 1)
            assert sorted(r["position"] for r in prompt) == list(range(len(g.prompt_ids)))
            assert sorted(r["position"] for r in response) == list(range(len(g.prompt_ids), fed))
            touched_prompt = [r["gated"] for r in prompt]
            touched_response = [r["gated"] for r in response]
            if mode == "response":
                assert not any(touched_prompt) and all(touched_response)
                assert all(r["rho_after"] == r["rho_before"] for r in prompt)
            elif mode == "prompt":
                assert all(touched_prompt) and not any(touched_response)
                assert all(r["rho_after"] == r["rho_before"] for r in response)
            else:
                assert all(touched_prompt) and all(touched_response)
    assert any(len(g.response_ids) for g in gens["all"])


def test_telemetry_summary_strip_and_bounded_memory(clean, tmp_path):
    model = clean
    d = make_direction(model)
    with steer(model, StTP(d, alpha=6), telemetry=True) as run:
        gens = lensteer.generate(model, PROMPTS, greedy=True, max_new_tokens=6)
    summary = run.telemetry.summary()
    assert {r["phase"] for r in summary} == {"prompt", "response"}
    recs = run.telemetry.records()
    for row in summary:
        mine = [r for r in recs if r["phase"] == row["phase"]]
        assert row["tokens"] == len(mine)
        assert row["gated"] == sum(r["gated"] for r in mine)
        gated = [abs(r["rho_after"] - r["rho_before"]) for r in mine if r["gated"]]
        assert row["mean_abs_delta_gated"] == pytest.approx(sum(gated) / max(len(gated), 1), rel=1e-5)
    frame = run.telemetry.to_frame()
    assert len(frame) == len(recs)
    html = run.telemetry.strip_html(gens[1], model.tokenizer, sequence=1)
    assert html.count("<span") == len(gens[1].response_ids)
    assert html.count("gated") == sum(
        r["gated"] for r in recs if r["sequence"] == 1 and r["phase"] == "response")
    fig = run.telemetry.strip_figure(gens[1], model.tokenizer, sequence=1)
    fig.savefig(tmp_path / "strip.png")
    assert (tmp_path / "strip.png").stat().st_size > 0
    # bounded: beyond max_tokens only the summaries keep counting
    small = lensteer.Telemetry(max_tokens=10)
    with pytest.warns(UserWarning, match="at most 10"):
        with steer(model, StTP(d, alpha=6), telemetry=small):
            lensteer.generate(model, PROMPTS, greedy=True, max_new_tokens=6)
    assert len(small.records()) == 10
    assert sum(r["tokens"] for r in small.summary()) == len(recs)


# ------------------------------------------------------------------------ bad input
def test_bad_models_and_layers_are_clear_errors(clean, tiny_dirs):
    model = clean
    other = make_direction(model)
    other.model = {**other.model, "name": "someone-else"}
    with pytest.raises(DirectionMismatchError, match="strict=False"):
        with steer(model, StTP(other, alpha=1)):
            pass
    with steer(model, StTP(other, alpha=1), strict=False):
        pass
    wide = TraitDirection(v_hat=torch.ones(64), boundary=0, mu_pos=1, sigma_pos=1, mu_neg=-1,
                          sigma_neg=1, layer=1, hook="blocks.1.hook_resid_post")
    with pytest.raises(LensteerError, match="d_model 64"):
        with steer(model, StTP(wide, alpha=1), strict=False):
            pass
    with pytest.raises(LensteerError, match="layers"):
        with steer(model, SwFC(make_direction(model), alpha=1, layers=[7])):
            pass
    with pytest.raises(LensteerError):
        SwFC(make_direction(model), alpha=1, layers=[-1])
    with pytest.raises(TypeError, match="steerer"):
        with steer(model, [make_direction(model)]):
            pass
    assert n_hooks(model) == 0


def test_no_steerers_is_the_unsteered_baseline(clean):
    model = clean
    plain = lensteer.generate(model, PROMPTS, greedy=True, max_new_tokens=8)
    for nothing in (None, []):
        with steer(model, nothing) as session:
            assert n_hooks(model) == 0 and session.steerers == []
            assert not active_sessions(model)  # so generate keeps its own path
            again = lensteer.generate(model, PROMPTS, greedy=True, max_new_tokens=8)
        assert [g.response_ids for g in again] == [g.response_ids for g in plain]


# ------------------------------------------------------------------------ artifacts
def test_spec_roundtrip_strict_check_and_vllm_export(clean, tmp_path):
    model = clean
    d = make_direction(model)
    s = StMP(d, alpha=2.5, cap_sigmas=30, sign="negative")
    save_steerer(s, tmp_path / "spec.safetensors", model=model)
    back = load_steerer(tmp_path / "spec.safetensors", model=model)
    assert type(back) is StMP and back.config() == s.config()
    assert torch.equal(back.rules[0].v_hat, s.rules[0].v_hat)
    assert back.rules[0].to_dict() == s.rules[0].to_dict()

    d_other = make_direction(model)
    d_other.model = {**d_other.model, "name": "another-model"}
    save_steerer(StTP(d_other, alpha=6), tmp_path / "other.safetensors")
    with pytest.raises(SpecMismatchError, match="strict=False"):
        load_steerer(tmp_path / "other.safetensors", model=model)
    assert load_steerer(tmp_path / "other.safetensors", model=model, strict=False).alpha == 6

    paths = export_vllm(tmp_path / "spec.safetensors", tmp_path / "vllm")
    assert [p.name for p in paths] == ["layer_1.pt"]
    payload = torch.load(paths[0], weights_only=True)
    assert set(payload) == {"v_hat", "threshold", "coefficient", "cap", "direction"}
    assert payload["direction"] == "negative" and payload["coefficient"] == 2.5
    assert payload["cap"] == pytest.approx(d.mu_neg - 30 * d.sigma_neg)
    assert torch.equal(payload["v_hat"], s.rules[0].v_hat)
    assert type(payload["threshold"]) is float
    manifest = json.loads((tmp_path / "vllm" / "steering.json").read_text())
    assert manifest["files"] == {"1": "layer_1.pt"}

    two = StTP([make_direction(model, 0), make_direction(model, 2)], alpha=6)
    paths = export_vllm(two, tmp_path / "vllm2")
    assert [p.name for p in paths] == ["layer_0.pt", "layer_2.pt"]
    sttp = torch.load(paths[1], weights_only=True)
    assert set(sttp) == {"v_hat", "threshold", "target", "direction"}
    assert sttp["target"] == pytest.approx(2.0 + 6 * 0.5)
    with pytest.raises(SpecMismatchError, match="StTP and StMP"):
        export_vllm(SwFC(d, alpha=1), tmp_path / "bad")
    with pytest.raises(SpecMismatchError, match="positions"):
        export_vllm(StTP(d, alpha=1, positions="response"), tmp_path / "bad")


def test_cli_steer_and_export(clean, tiny_dirs, tmp_path, capsys, monkeypatch):
    from lensteer.cli import main

    model = clean
    d = make_direction(model)
    d.save(tmp_path / "dir.safetensors")
    monkeypatch.setattr("lensteer.models.load_model", lambda name, **kw: model)
    code = main(["steer", "--model", str(tiny_dirs["llama"]), "--direction",
                 str(tmp_path / "dir.safetensors"), "--method", "sttp", "--alpha", "6",
                 "--max-new-tokens", "5", "--system", "be kind .", "--save-spec",
                 str(tmp_path / "spec.safetensors"), "hello there !"])
    out = capsys.readouterr().out
    assert code == 0 and "unsteered" in out and "steered" in out and "rate" in out
    assert "prompt" in out and "response" in out
    code = main(["export", "--format", "vllm-steer", "--spec", str(tmp_path / "spec.safetensors"),
                 "--out", str(tmp_path / "out")])
    assert code == 0 and (tmp_path / "out" / "layer_1.pt").exists()
    code = main(["steer", "--model", "x", "--direction", str(tmp_path / "dir.safetensors"),
                 "--method", "nope", "hello"])
    assert code == 2 and "Unknown steering method" in capsys.readouterr().err


def test_export_checks_the_spec_and_writes_the_folder_as_one_unit(clean, tmp_path, capsys,
                                                                   monkeypatch):
    from lensteer import io
    from lensteer.cli import main

    model = clean
    good = tmp_path / "good.safetensors"
    save_steerer(StTP(make_direction(model, layer=1), alpha=6), good, model=model)
    tensors, meta = io.load_tensors(good)
    far = json.loads(json.dumps(meta))
    far["directions"][0].update(layer=99, hook="blocks.99.hook_resid_post")
    io.save_tensors(tmp_path / "layer99.safetensors", tensors, far)
    io.save_tensors(tmp_path / "dim100.safetensors", {"v_hat.0": torch.randn(100)}, meta)
    for name, says in (("layer99", "steers layer 99, but .* has layers 0 to 2"),
                       ("dim100", "has 100 dimensions, but .* has d_model 32")):
        out = tmp_path / f"out-{name}"
        code = main(["export", "--format", "vllm-steer", "--spec",
                     str(tmp_path / f"{name}.safetensors"), "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("lensteer: error: ") and err.count("\n") == 1, err
        assert re.search(says, err), err
        assert not out.exists()  # refused before writing anything
        with pytest.raises(SpecMismatchError, match=says):
            load_steerer(tmp_path / f"{name}.safetensors")

    # a second export into the same folder replaces the first whole: no stale payloads
    out = tmp_path / "payloads"
    two = StTP([make_direction(model, 0), make_direction(model, 2)], alpha=6)
    export_vllm(two, out)
    assert sorted(p.name for p in out.iterdir()) == ["layer_0.pt", "layer_2.pt", "steering.json"]
    assert main(["export", "--format", "vllm-steer", "--spec", str(good), "--out", str(out)]) == 0
    visible = lambda: sorted(p.name for p in out.iterdir() if p.name != ".lensteer-run.json")
    assert visible() == ["layer_1.pt", "steering.json"]
    assert json.loads((out / "steering.json").read_text())["files"] == {"1": "layer_1.pt"}
    assert os.stat(out).st_mode & 0o777 == 0o777 & ~io.current_umask()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries

    # a failure half-way leaves the earlier export as it was, and no temporary folder
    real_save = torch.save
    calls = []

    def failing_save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        export_vllm(two, out)
    monkeypatch.undo()
    assert visible() == ["layer_1.pt", "steering.json"]
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]

    # a folder holding anything else is never overwritten
    from lensteer.steering import ExportTargetError

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ExportTargetError, match="notes.txt"):
        export_vllm(good, mine)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_several_layers_and_resid_pre_fast_path_equals_tl(clean):
    model = clean
    needs_fast(model)
    pre = make_direction(model, layer=1, seed=3)
    pre.hook = "blocks.1.hook_resid_pre"
    s1 = StTP([pre, make_direction(model, layer=2, seed=4)], alpha=8)
    s2 = SwFC(make_direction(model, layer=0, seed=5), alpha=1, positions="response")
    with steer(model, [s1, s2], telemetry=True) as run:
        fast = lensteer.generate(model, PROMPTS, greedy=True, max_new_tokens=6, path="fast")
        tl = lensteer.generate(model, PROMPTS, greedy=True, max_new_tokens=6, path="tl")
    assert ids(fast) == ids(tl)
    layers = {(r["steerer"], r["layer"]) for r in run.telemetry.summary()}
    assert layers == {("sttp", 1), ("sttp", 2), ("swfc", 0)}


def test_models_own_generate_with_and_without_cache(clean):
    # outside lensteer.generate the caller declares the positions on the seam
    model = clean
    tokens = torch.tensor([lensteer.format_chat(model.tokenizer, "hello there !").input_ids])
    s = SwFC(make_direction(model), alpha=2, positions="response")
    outs, recs = {}, {}
    for kv in (True, False):
        with steer(model, s, telemetry=True) as run, warnings.catch_warnings():
            warnings.simplefilter("error")  # declared positions: no warning
            with lensteer.runtime.positions(prompt_mask=torch.ones_like(tokens), use_kv_cache=kv):
                outs[kv] = model.generate(tokens, max_new_tokens=5, do_sample=False,
                                          stop_at_eos=False, use_past_kv_cache=kv,
                                          return_type="tokens", verbose=False)
        recs[kv] = run.telemetry.records()
    assert torch.equal(outs[True], outs[False])
    for kv in (True, False):
        prompt = [r for r in recs[kv] if r["phase"] == "prompt"]
        response = [r for r in recs[kv] if r["phase"] == "response"]
        assert sorted(r["position"] for r in prompt) == list(range(tokens.shape[1]))
        assert not any(r["gated"] for r in prompt) and all(r["gated"] for r in response)
        assert len(response) == 4  # the 5th sampled token is never fed back


def test_undeclared_forward_calls_are_one_whole_prompt_each(clean):
    # no guessing from shapes: without runtime.positions every call is its own prompt, so a
    # response-mode steerer leaves it alone and says so once
    model = clean
    tokens = tokens_of(model)
    plain = model(tokens)
    with steer(model, SwFC(make_direction(model), alpha=5, positions="response"),
               telemetry=True) as run:
        with pytest.warns(UserWarning, match="runtime.positions"):
            response_mode = model(tokens)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # once per hook
            model(tokens[:, :1])
    torch.testing.assert_close(response_mode, plain)
    recs = run.telemetry.records()
    assert {r["phase"] for r in recs} == {"prompt"} and [r["step"] for r in recs] == [0] * len(recs)
    assert sorted({r["batch"] for r in recs}) == [0, 1]  # two calls, two batches
    with steer(model, SwFC(make_direction(model), alpha=5, positions="response")):
        with lensteer.runtime.positions(response_start=3):
            declared = model(tokens)
    assert not torch.allclose(declared[:, 3:], plain[:, 3:])
    torch.testing.assert_close(declared[:, :3], plain[:, :3])


def test_raw_steering_hooks_outside_steer_are_found_by_the_fast_path(clean):
    # generation reads the hooks on the model, not a registry of steer blocks: lensteer's own
    # steering hooks registered by hand take the fast path too, with the same tokens
    model = clean
    needs_fast(model)
    s = StTP(make_direction(model), alpha=8)
    with steer(model, s):
        reference = lensteer.generate(model, PROMPTS, greedy=True, max_new_tokens=6, path="tl")
    with model.hooks(fwd_hooks=s.hooks(model)):
        assert fast_path_reason(model) is None
        auto = lensteer.generate(model, PROMPTS, greedy=True, max_new_tokens=6)
        fast = lensteer.generate(model, PROMPTS, greedy=True, max_new_tokens=6, path="fast")
    assert ids(auto) == ids(fast) == ids(reference)
