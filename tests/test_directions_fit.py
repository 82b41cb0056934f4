"""Direction fitting: logistic regression, mean difference, PCA; statistics; persistence."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from lensteer.directions import (
    DirectionMismatchError,
    TraitDirection,
    fit_direction,
    fit_logistic,
    mean_difference,
    pca_direction,
    projection_stats,
    token_stats,
    unit_vector,
)
from lensteer.errors import FitError, LensteerError


def _data(n=40, d=16, gap=1.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    axis = torch.randn(d, generator=g)
    pos = torch.randn(n, d, generator=g) + gap * axis / axis.norm() + 3.0  # off-centre on purpose
    neg = torch.randn(n, d, generator=g) - gap * axis / axis.norm() + 3.0
    return pos, neg


def test_logistic_direction_equals_sklearn_and_boundary_is_zero_logit():
    pos, neg = _data()
    d = fit_direction(pos, neg, method="logistic")
    x = torch.cat([pos, neg]).double().numpy()
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    clf = LogisticRegression(C=1.0, solver="lbfgs", max_iter=5000).fit(x, y)
    w = clf.coef_[0]
    np.testing.assert_allclose(d.v_hat.numpy(), w / np.linalg.norm(w), atol=1e-6)
    # m is where the fitted logit is zero on the v̂ axis
    point = (d.boundary * d.v_hat).double().numpy()[None]
    assert abs(clf.decision_function(point)[0]) < 1e-5
    assert d.boundary == pytest.approx(-clf.intercept_[0] / np.linalg.norm(w), rel=1e-6)
    # v̂ points to the aligned side; statistics are float32 projections
    assert d.mu_pos > d.boundary > d.mu_neg
    proj = (pos @ d.v_hat).numpy()
    assert d.mu_pos == pytest.approx(float(proj.mean()), rel=1e-5)
    assert d.sigma_pos == pytest.approx(float(proj.std(ddof=1)), rel=1e-4)
    assert d.v_hat.dtype == torch.float32


def test_fit_logistic_returns_raw_weights():
    pos, neg = _data(seed=1)
    w, b = fit_logistic(pos, neg)
    clf = LogisticRegression(C=1.0, solver="lbfgs", max_iter=5000).fit(
        torch.cat([pos, neg]).double().numpy(), np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    )
    np.testing.assert_allclose(w.numpy(), clf.coef_[0], rtol=1e-5, atol=1e-6)
    assert b == pytest.approx(clf.intercept_[0], rel=1e-5)


def test_mean_difference_equals_numpy():
    pos, neg = _data(seed=2)
    expected = pos.numpy().mean(0) - neg.numpy().mean(0)
    np.testing.assert_allclose(mean_difference(pos, neg).numpy(), expected, atol=1e-6)
    d = fit_direction(pos, neg, method="mean_diff")
    np.testing.assert_allclose(d.v_hat.numpy(), expected / np.linalg.norm(expected), atol=1e-6)
    assert d.boundary == pytest.approx((d.mu_pos + d.mu_neg) / 2)


def test_pca_direction_is_top_component_of_paired_differences():
    pos, neg = _data(seed=3)
    diffs = (pos - neg).double().numpy()
    sym = np.concatenate([diffs, -diffs])  # RepE's random pair order, symmetrised
    cov = sym.T @ sym / len(sym)
    top = np.linalg.eigh(cov)[1][:, -1]
    top *= np.sign(diffs.mean(0) @ top)
    np.testing.assert_allclose(pca_direction(pos, neg).numpy(), top, atol=1e-5)
    with pytest.raises(FitError, match="one malicious sample per aligned"):
        pca_direction(pos, neg[:-1])


def test_directions_agree_where_classes_separate():
    pos, neg = _data(gap=4.0, seed=4)
    vs = [fit_direction(pos, neg, method=m).v_hat for m in ("logistic", "mean_diff", "pca")]
    assert float(vs[0] @ vs[1]) > 0.8 and float(vs[1] @ vs[2]) > 0.9


def test_projection_stats_cohens_d():
    a, b = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([-1.0, 0.0, 1.0])
    s = projection_stats(a, b)
    pooled = np.sqrt((3 * np.var(a.numpy(), ddof=1) + 2 * np.var(b.numpy(), ddof=1)) / 5)
    assert s["cohens_d"] == pytest.approx((2.5 - 0.0) / pooled, rel=1e-6)


def test_single_class_nan_and_too_few_samples_are_clear_errors():
    pos, neg = _data()
    with pytest.raises(FitError, match="Single-class"):
        fit_direction(pos, neg[:0])
    with pytest.raises(FitError, match="at least 2"):
        fit_direction(pos, neg[:1])
    bad = pos.clone()
    bad[3, 2] = float("nan")
    with pytest.raises(FitError, match="NaN"):
        fit_direction(bad, neg)
    with pytest.raises(FitError, match="same hook point"):
        fit_direction(pos, neg[:, :5])
    with pytest.raises(FitError, match="Unknown fitting method"):
        fit_direction(pos, neg, method="svm")
    assert issubclass(FitError, LensteerError) and issubclass(FitError, ValueError)


def test_token_stats_percentiles():
    ts = token_stats(torch.arange(101.0), torch.zeros(5))
    assert ts.quantiles_pos[25] == pytest.approx(25.0)
    assert ts.percentile_pos(12.5) == pytest.approx(12.5)
    with pytest.raises(FitError):
        token_stats(torch.zeros(0), torch.zeros(3))


def test_save_load_round_trip_and_model_check(tmp_path, tiny_model):
    pos, neg = _data(d=32)
    d = fit_direction(pos, neg, layer=1, hook="blocks.1.hook_resid_post", model=tiny_model, trait="honesty")
    d.token_stats = token_stats(torch.randn(50), torch.randn(50) - 1)
    from lensteer.hooks import canonical_name

    assert d.hook_canonical == canonical_name(tiny_model, "blocks.1.hook_resid_post")  # TL4: blocks.1.hook_out
    path = tmp_path / "d.safetensors"
    d.save(path)
    back = TraitDirection.load(path, model=tiny_model)
    assert torch.equal(back.v_hat, d.v_hat)
    for key in ("boundary", "mu_pos", "sigma_pos", "mu_neg", "sigma_neg", "layer", "hook", "method",
                "trait", "data_hash", "model"):
        assert getattr(back, key) == getattr(d, key), key
    assert back.token_stats == d.token_stats
    assert back.extra["cohens_d"] == pytest.approx(d.extra["cohens_d"])
    # another model with the same width: an error unless strict=False
    other = dict(d.model, name="another-model")
    foreign = TraitDirection.from_dict({**d.to_dict(), "model": other})
    foreign.save(tmp_path / "f.safetensors")
    with pytest.raises(DirectionMismatchError, match="strict=False"):
        TraitDirection.load(tmp_path / "f.safetensors", model=tiny_model)
    TraitDirection.load(tmp_path / "f.safetensors", model=tiny_model, strict=False)
    # a different width is always an error
    wide = fit_direction(*_data(d=48), layer=0)
    with pytest.raises(DirectionMismatchError, match="d_model"):
        wide.check_model(tiny_model, strict=False)


def test_a_unit_vector_is_kept_bit_for_bit_through_save_and_load(tmp_path):
    """Dividing a float32 unit vector by its norm again moves its last bits for about half of
    all vectors; a loaded direction then steered and fingerprinted unlike the one saved."""
    g = torch.Generator().manual_seed(0)
    raw = [torch.randn(576, generator=g) * 3 for _ in range(200)]
    units = [unit_vector(v) for v in raw]
    assert all(torch.equal(unit_vector(u), u) for u in units)
    assert all(abs(float(u.norm()) - 1) < 1e-6 for u in units)
    assert torch.allclose(units[0], raw[0] / raw[0].norm(), atol=0, rtol=0)  # the first pass divides
    for i, u in enumerate(units[:40]):
        d = TraitDirection(v_hat=u, boundary=0.1, mu_pos=1.0, sigma_pos=0.5, mu_neg=-1.0, sigma_neg=0.5,
                           layer=0, hook="blocks.0.hook_resid_post")
        d.save(tmp_path / f"{i}.safetensors")
        assert torch.equal(TraitDirection.load(tmp_path / f"{i}.safetensors").v_hat, d.v_hat), i


@pytest.mark.parametrize("v_hat", [[float("nan"), 1.0], [0.0, 0.0]])
def test_unusable_direction_is_a_lensteer_error(v_hat):
    from lensteer.directions import InvalidDirectionError
    from lensteer.errors import LensteerError

    with pytest.raises(InvalidDirectionError) as info:
        TraitDirection(v_hat=torch.tensor(v_hat), boundary=0.0, mu_pos=1.0, sigma_pos=0.1,
                       mu_neg=-1.0, sigma_neg=0.1, layer=0, hook="blocks.0.hook_resid_post")
    assert isinstance(info.value, LensteerError) and isinstance(info.value, ValueError)
