"""The steering rules against independent per-token implementations (docs/concepts.md, *The steering rules*)."""
from __future__ import annotations

import math

import pytest
import torch

from lensteer.directions import TokenStats, TraitDirection
from lensteer.errors import LensteerError
from lensteer.steering import Ablation, StMP, StTP, SwFC, make_steerer
from lensteer.steering.steerers import SteeringConfigError, parse_threshold

D = 16


def direction(v=None, *, m=0.3, mu_pos=2.0, sigma_pos=0.25, mu_neg=-1.5, sigma_neg=0.4,
              token_stats=None, layer=1) -> TraitDirection:
    if v is None:
        v = torch.randn(D, generator=torch.Generator().manual_seed(1))
    return TraitDirection(v_hat=v, boundary=m, mu_pos=mu_pos, sigma_pos=sigma_pos, mu_neg=mu_neg,
                          sigma_neg=sigma_neg, layer=layer, hook=f"blocks.{layer}.hook_resid_post",
                          token_stats=token_stats)


def data(seed=0, shape=(3, 7, D), scale=3.0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(*shape, generator=g) * scale
    mask = torch.rand(shape[:2], generator=g) > 0.25
    return h, mask


# ---------------------------------------------------------------- reference implementation
def reference(method, h, mask, v, *, sign=1, alpha=1.0, m=0.0, mu_pos=0.0, sigma_pos=1.0,
              mu_neg=0.0, sigma_neg=1.0, cap_sigmas=40.0):
    """Per-token, float64, written from the paper's formulas."""
    v = v.double() / v.double().norm()
    out = h.double().clone()
    for b in range(h.shape[0]):
        for p in range(h.shape[1]):
            if not mask[b, p]:
                continue
            x = h[b, p].double()
            rho = float(x @ v)
            if method == "swfc":
                new = rho + sign * alpha * (mu_pos - mu_neg)
            elif method == "ablate":
                new = 0.0
            else:
                gated = rho < m if sign > 0 else rho > m
                if not gated:
                    continue
                if method == "sttp":
                    new = mu_pos + alpha * sigma_pos if sign > 0 else mu_neg - alpha * sigma_neg
                else:
                    new = rho + alpha * (2 * m - 2 * rho)
                    new = min(new, mu_pos + cap_sigmas * sigma_pos) if sign > 0 else max(
                        new, mu_neg - cap_sigmas * sigma_neg)
            out[b, p] = x + (new - rho) * v
    return out


STATS = dict(m=0.3, mu_pos=2.0, sigma_pos=0.25, mu_neg=-1.5, sigma_neg=0.4)


SIGNED = [("swfc", 2.0), ("sttp", 6.0), ("stmp", 1.5)]


@pytest.mark.parametrize(
    "method,alpha,sign",
    [(m, a, s) for m, a in SIGNED for s in ("positive", "negative")] + [("ablate", 1.0, "positive")],
)  # ablation has no sign
def test_rules_match_reference(method, alpha, sign):
    h, mask = data()
    d = direction()
    steerer = make_steerer(method, d, alpha, sign=sign)
    out = steerer.apply(h, mask)
    expected = reference(method, h, mask, d.v_hat, sign=1 if sign == "positive" else -1,
                         alpha=alpha, **STATS)
    torch.testing.assert_close(out.h.double(), expected, atol=1e-4, rtol=1e-5)
    assert out.h.dtype == h.dtype


def test_swfc_moves_every_selected_token_by_alpha_delta_mu():
    h, mask = data(1)
    d = direction()
    out = SwFC(d, alpha=3.0).apply(h, mask)
    diff = out.h - h
    expected = 3.0 * d.delta_mu * d.v_hat
    torch.testing.assert_close(diff[mask], expected.expand(int(mask.sum()), D), atol=1e-5, rtol=0)
    assert torch.equal(out.h[~mask], h[~mask])


def test_sttp_gated_tokens_land_exactly_on_target_and_others_are_bit_identical():
    h, mask = data(2)
    d = direction()
    out = StTP(d, alpha=6.0).apply(h, mask)
    s = d.mu_pos + 6.0 * d.sigma_pos
    rho = h @ d.v_hat
    gated = mask & (rho < d.boundary)
    assert out.gated.equal(gated) and gated.any() and (~gated).any()
    torch.testing.assert_close(out.h[gated] @ d.v_hat, torch.full((int(gated.sum()),), s), atol=1e-5, rtol=0)
    assert torch.equal(out.h[~gated], h[~gated])  # bit for bit


def test_orthogonal_complement_unchanged():
    h, mask = data(3)
    d = direction()
    v = d.v_hat
    for steerer in (StTP(d, alpha=9.0), StMP(d, alpha=2.0), SwFC(d, alpha=2.0), Ablation(d)):
        out = steerer.apply(h, mask).h
        perp_before = h - (h @ v).unsqueeze(-1) * v
        perp_after = out - (out @ v).unsqueeze(-1) * v
        torch.testing.assert_close(perp_after, perp_before, atol=1e-5, rtol=0)


def test_stmp_reflects_at_one_lands_on_boundary_at_half_and_respects_cap():
    h, mask = data(4)
    d = direction()
    rho = h @ d.v_hat
    gated = mask & (rho < d.boundary)
    reflect = StMP(d, alpha=1.0, cap_sigmas=1e6).apply(h, mask).h @ d.v_hat
    torch.testing.assert_close(reflect[gated], (2 * d.boundary - rho)[gated], atol=1e-5, rtol=0)
    half = StMP(d, alpha=0.5).apply(h, mask).h @ d.v_hat
    torch.testing.assert_close(half[gated], torch.full_like(rho[gated], d.boundary), atol=1e-5, rtol=0)
    capped = StMP(d, alpha=3.0, cap_sigmas=2.0).apply(h, mask).h @ d.v_hat
    cap = d.mu_pos + 2.0 * d.sigma_pos
    assert (capped[gated] <= cap + 1e-5).all()
    assert torch.isclose(capped[gated], torch.tensor(cap), atol=1e-5).any()  # the cap binds


def test_token_exactly_on_boundary_is_not_steered():
    v = torch.zeros(D)
    v[0] = 1.0
    d = direction(v, m=0.5)
    h, _ = data(5, shape=(1, 4, D))
    h[0, 1, 0] = 0.5  # ρ exactly m
    mask = torch.ones(1, 4, dtype=torch.bool)
    for s in (StTP(d, alpha=6), StMP(d, alpha=1), StTP(d, alpha=6, sign="negative"),
              StMP(d, alpha=1, sign="negative")):
        out = s.apply(h, mask)
        assert not out.gated[0, 1]
        assert torch.equal(out.h[0, 1], h[0, 1])


def mirrored(d: TraitDirection) -> TraitDirection:
    return TraitDirection(v_hat=-d.v_hat, boundary=-d.boundary, mu_pos=-d.mu_neg,
                          sigma_pos=d.sigma_neg, mu_neg=-d.mu_pos, sigma_neg=d.sigma_pos,
                          layer=d.layer, hook=d.hook)


@pytest.mark.parametrize("cls,alpha", [(SwFC, 2.0), (StTP, 6.0), (StMP, 1.5)])
def test_negative_sign_is_the_mirror_image(cls, alpha):
    h, mask = data(6)
    d = direction()
    negative = cls(d, alpha, sign="negative").apply(h, mask)
    positive_on_mirror = cls(mirrored(d), alpha).apply(h, mask)
    torch.testing.assert_close(negative.h, positive_on_mirror.h, atol=1e-5, rtol=0)
    assert negative.gated.equal(positive_on_mirror.gated)


def test_low_precision_is_computed_in_float32_and_cast_back():
    h, mask = data(7)
    hb = h.to(torch.bfloat16)
    d = direction()
    out = StTP(d, alpha=6.0).apply(hb, mask)
    assert out.h.dtype == torch.bfloat16
    expected = reference("sttp", hb.float(), mask, d.v_hat, alpha=6.0, **STATS).float().to(torch.bfloat16)
    assert torch.equal(out.h[~out.gated], hb[~out.gated])
    torch.testing.assert_close(out.h.float(), expected.float(), atol=0.07, rtol=0.02)


def token_stats():
    q_pos = [1.0 + 0.05 * i for i in range(101)]
    q_neg = [-3.0 + 0.03 * i for i in range(101)]
    return TokenStats(mu_pos=3.5, sigma_pos=1.2, mu_neg=-1.4, sigma_neg=0.9,
                      quantiles_pos=q_pos, quantiles_neg=q_neg)


def test_percentile_threshold_and_token_calibration():
    d = direction(token_stats=token_stats())
    rule = StTP(d, alpha=2.0, threshold="p10", calibration="token").rules[0]
    assert rule.threshold == pytest.approx(d.token_stats.percentile_pos(10))
    assert rule.target == pytest.approx(3.5 + 2.0 * 1.2)
    neg = StTP(d, alpha=2.0, threshold="p10", calibration="token", sign="negative").rules[0]
    assert neg.threshold == pytest.approx(-3.0 + 0.03 * 90)
    assert neg.target == pytest.approx(-1.4 - 2.0 * 0.9)
    swfc = SwFC(d, alpha=2.0, calibration="token").rules[0]
    assert swfc.amount == pytest.approx(2.0 * (3.5 + 1.4))
    stmp = StMP(d, alpha=1.0, cap_sigmas=10, calibration="token", threshold="percentile:25").rules[0]
    assert stmp.cap == pytest.approx(3.5 + 10 * 1.2)
    assert stmp.threshold == pytest.approx(d.token_stats.percentile_pos(25))
    # the percentile threshold really gates: tokens between boundary and p10 are steered
    h = torch.zeros(1, 1, D)
    h[0, 0] = d.v_hat * 1.2  # above m = 0.3, below p10 = 1.5
    assert StTP(d, alpha=2.0, threshold="p10").apply(h).gated.all()
    assert not StTP(d, alpha=2.0).apply(h).gated.any()


def test_parse_threshold():
    assert parse_threshold("boundary") == ("boundary", None)
    assert parse_threshold("p5") == ("percentile", 5.0)
    assert parse_threshold("p12.5") == ("percentile", 12.5)
    assert parse_threshold(("percentile", 30)) == ("percentile", 30.0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(alpha=-1.0), "sign='negative'"),
    (dict(alpha=float("nan")), "finite"),
    (dict(threshold="q10"), "Unknown threshold"),
    (dict(threshold="p150"), r"\[0, 100\]"),
    (dict(positions="middle"), "Unknown positions"),
    (dict(sign="up"), "Unknown sign"),
    (dict(calibration="batch"), "Unknown calibration"),
    (dict(calibration="token"), "per-token statistics"),
    (dict(threshold="p10"), "per-token statistics"),
])
def test_bad_settings_are_clear_errors(kwargs, match):
    kwargs = {"alpha": 1.0, **kwargs}
    with pytest.raises(LensteerError, match=match):
        StTP(direction(), **kwargs)


def test_unknown_method_and_bad_directions():
    with pytest.raises(SteeringConfigError, match="Unknown steering method"):
        make_steerer("sttq", direction(), 1.0)
    with pytest.raises(LensteerError, match="cap_sigmas"):
        StMP(direction(), 1.0, cap_sigmas=-1)
    with pytest.raises(LensteerError, match="no sign"):
        Ablation(direction(), sign="negative")
    with pytest.raises(ValueError, match="NaN"):
        direction(torch.full((D,), float("nan")))
    with pytest.raises(ValueError, match="zero"):
        direction(torch.zeros(D))
    d = direction()
    d.v_hat = torch.full((D,), float("nan"))  # corrupted after construction
    with pytest.raises(LensteerError, match="NaN"):
        StTP(d, 1.0)
    d.v_hat = torch.zeros(D)
    with pytest.raises(LensteerError, match="zero"):
        SwFC(d, 1.0)
    with pytest.raises(LensteerError, match="TraitDirection"):
        StTP("not a direction", 1.0)


def test_several_layers_and_layer_override():
    d1, d2 = direction(layer=0), direction(layer=2)
    s = StTP([d1, d2], alpha=6)
    assert [r.layer for r in s.rules] == [0, 2]
    s2 = SwFC(d1, alpha=1, layers=[0, 1, 2])
    assert [r.hook for r in s2.rules] == [f"blocks.{i}.hook_resid_post" for i in range(3)]
    with pytest.raises(LensteerError, match="same hook point"):
        StTP([d1, direction(layer=0)], alpha=1)
    assert math.isclose(s2.rules[1].amount, d1.delta_mu)
