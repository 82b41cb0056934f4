"""Exports that prove themselves: vLLM payloads and llama.cpp control vectors are applied from
the file alone and compared with lensteer's hooks on the organism's real activations."""
from __future__ import annotations

import pytest
import torch

import lensteer
from lensteer.directions import TraitDirection
from lensteer.steering.conformance import apply_vllm_payload, verify_control_vector, verify_vllm
from lensteer.steering.llamacpp import ControlVectorError, read_control_vector, write_control_vector
from lensteer.steering.spec import vllm_payloads
from lensteer.steering.steerers import make_steerer


@pytest.fixture(scope="module")
def organism():
    return lensteer.load_model("organism")


def direction(model, layer, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TraitDirection(v_hat=torch.randn(model.cfg.d_model, generator=g), boundary=0.0,
                          mu_pos=1.5, sigma_pos=0.2, mu_neg=-1.5, sigma_neg=0.2, layer=layer,
                          hook=f"blocks.{layer}.hook_resid_post",
                          model=lensteer.model_info(model).to_dict())


@pytest.mark.parametrize("method", ["sttp", "stmp"])
@pytest.mark.parametrize("sign", ["positive", "negative"])
def test_vllm_payloads_mean_what_the_hooks_do(organism, method, sign):
    steerer = make_steerer(method, [direction(organism, 1), direction(organism, 3, 1)],
                                    alpha=6.0 if method == "sttp" else 1.5, sign=sign)
    payloads = vllm_payloads(steerer)
    report = verify_vllm(steerer, payloads, organism)
    assert report.ok, report
    assert report.gated_tokens > 10  # the comparison covers tokens the rule moved
    assert set(report.checked) == {"1", "3"}

    wrong = {k: dict(v) for k, v in payloads.items()}
    wrong[3]["direction"] = "negative" if sign == "positive" else "positive"
    assert not verify_vllm(steerer, wrong, organism).ok
    shifted = {k: dict(v) for k, v in payloads.items()}
    shifted[1]["threshold"] += 3.0  # tokens with 0 <= ρ < 3 now count as wrong-side
    assert not verify_vllm(steerer, shifted, organism).ok


def test_payload_rule_against_hand_computed_values():
    v = torch.tensor([1.0, 0.0])
    h = torch.tensor([[-2.0, 1.0], [0.5, 1.0], [-0.5, 3.0]])
    mirror = {"v_hat": v, "threshold": 0.0, "coefficient": 1.0, "cap": 1.0, "direction": "positive"}
    assert apply_vllm_payload(h, mirror).tolist() == [[1.0, 1.0], [0.5, 1.0], [0.5, 3.0]]
    negative = {"v_hat": v, "threshold": 0.0, "target": -1.0, "direction": "negative"}
    assert apply_vllm_payload(h, negative).tolist() == [[-2.0, 1.0], [-1.0, 1.0], [-0.5, 3.0]]


def test_control_vector_round_trip_and_forward_equivalence(organism, tmp_path):
    steerer = lensteer.SwFC([direction(organism, 2), direction(organism, 4, 1)], alpha=1.5)
    path = write_control_vector(steerer, tmp_path / "cv.gguf", model_hint="organism", n_layers=6)
    vectors, meta = read_control_vector(path)
    assert sorted(vectors) == [2, 4]
    rule = steerer.rule_for(2)
    assert torch.allclose(1.5 * vectors[2], rule.amount * rule.v_hat.float(), atol=1e-6)
    for key in ("controlvector.model_hint", "controlvector.layer_count", "lensteer.operation",
                "lensteer.site", "lensteer.layer_convention", "lensteer.alpha_unit", "lensteer.model"):
        assert key in meta
    assert meta["controlvector.layer_count"] == 2
    report = verify_control_vector(path, steerer, organism)
    assert report.ok, report
    assert not verify_control_vector(path, steerer, organism, scale=3.0).ok  # α's unit matters


def test_control_vector_refuses_what_llamacpp_cannot_express(organism, tmp_path):
    with pytest.raises(ControlVectorError, match="only adds a constant"):
        write_control_vector(lensteer.StTP(direction(organism, 2), alpha=6), tmp_path / "a.gguf",
                             model_hint="organism", n_layers=6)
    with pytest.raises(ControlVectorError, match="no control-vector slot for block 0"):
        write_control_vector(lensteer.SwFC(direction(organism, 0), alpha=1), tmp_path / "b.gguf",
                             model_hint="organism", n_layers=6)
    with pytest.raises(ControlVectorError, match="every position"):
        write_control_vector(lensteer.SwFC(direction(organism, 2), alpha=1, positions="response"),
                             tmp_path / "c.gguf", model_hint="organism", n_layers=6)
    assert not list(tmp_path.iterdir())


def test_export_command_verifies_by_default(organism, tmp_path, capsys):
    from lensteer.cli import main

    swfc, sttp = tmp_path / "swfc.safetensors", tmp_path / "sttp.safetensors"
    lensteer.save_steerer(lensteer.SwFC(direction(organism, 2), alpha=1.5), swfc, model=organism)
    lensteer.save_steerer(lensteer.StTP(direction(organism, 2), alpha=6), sttp, model=organism)
    assert main(["export", "--format", "llamacpp", "--spec", str(swfc), "--out",
                 str(tmp_path / "cv.gguf"), "--threads", "1"]) == 0
    assert "verified: max |difference|" in capsys.readouterr().out
    assert main(["export", "--format", "vllm-steer", "--spec", str(sttp), "--out",
                 str(tmp_path / "payloads"), "--threads", "1"]) == 0
    assert "verified" in capsys.readouterr().out
    assert main(["export", "--format", "llamacpp", "--spec", str(sttp), "--out",
                 str(tmp_path / "no.gguf"), "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lensteer: error: ") and err.count("\n") == 1 and "SWFC" not in err
    assert not (tmp_path / "no.gguf").exists()
