"""Make the documentation's figures from lensteer's own code (run from the repository root).

    .venv/bin/python docs/make_figures.py            # every figure
    .venv/bin/python docs/make_figures.py rules      # only some: rules, sweep, strip

Writes PNGs into ``docs/img/``. ``rules`` needs no model (the steerers act on synthetic
activations); ``sweep`` and ``strip`` run on the bundled organism (about a minute on one core).
Every number in a figure comes from a run of the code, none is typed in.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

OUT = Path(__file__).resolve().parent / "img"
DPI = 100


def _save(fig, name: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    return path


def figure_rules() -> Path:
    """ρ → ρ' transfer curves of the rules, run through the real steerers."""
    import lensteer

    d = lensteer.TraitDirection(
        v_hat=torch.tensor([1.0, 0.0]), boundary=0.0, mu_pos=2.0, sigma_pos=0.5,
        mu_neg=-2.0, sigma_neg=0.5, layer=0, hook="blocks.0.hook_resid_post",
    )
    rho = torch.linspace(-4.5, 4.5, 361)
    # Tokens: the projection on v̂ plus an orthogonal component the rules must leave alone.
    h = torch.stack([rho, torch.full_like(rho, 0.7)], dim=-1)[None]
    steerers = [
        (lensteer.SwFC(d, alpha=1), "SwFC α=1:  ρ' = ρ + αΔμ"),
        (lensteer.StTP(d, alpha=2), "StTP α=2:  ρ < m → μ⁺ + ασ⁺"),
        (lensteer.StMP(d, alpha=1), "StMP α=1:  ρ < m → ρ + α(2m − 2ρ)"),
        (lensteer.StMP(d, alpha=0.5), "StMP α=0.5: lands on m"),
        (lensteer.Ablation(d), "Ablation:  ρ' = 0"),
    ]
    fig, axes = plt.subplots(1, 5, figsize=(16, 3.4), sharey=True)
    gen = torch.Generator().manual_seed(0)
    pos = d.mu_pos + d.sigma_pos * torch.randn(400, generator=gen)
    neg = d.mu_neg + d.sigma_neg * torch.randn(400, generator=gen)
    for ax, (steerer, title) in zip(axes, steerers):
        out = steerer.apply(h)
        after = out.rho_after[0]
        assert torch.equal(out.h[0, :, 1], h[0, :, 1]), "the orthogonal part must not move"
        ax.hist(pos.numpy(), bins=30, density=True, alpha=0.25, color="tab:blue",
                bottom=-4.5, label="aligned ρ")
        ax.hist(neg.numpy(), bins=30, density=True, alpha=0.25, color="tab:orange",
                bottom=-4.5, label="malicious ρ")
        ax.plot(rho, rho, color="grey", lw=0.8, ls=":", label="unchanged")
        gated = out.gated[0]
        ax.plot(rho[gated], after[gated], ".", ms=2, color="tab:red", label="gated / moved")
        ax.plot(rho[~gated], after[~gated], ".", ms=2, color="black", label="untouched")
        ax.axvline(d.boundary, color="black", lw=0.8)
        ax.axhline(d.mu_pos, color="tab:blue", lw=0.8, ls="--")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("ρ before = ⟨h, v̂⟩")
        ax.set_xlim(-4.5, 4.5)
        ax.set_ylim(-4.5, 6.5)
    axes[0].set_ylabel("ρ after")
    axes[0].legend(fontsize=6.5, loc="upper left")
    fig.suptitle("The steering rules as maps of the projection (m = 0, μ± = ±2, σ± = 0.5; "
                 "black line: m, dashed: μ⁺)", fontsize=10)
    fig.tight_layout()
    return _save(fig, "rules.png")


def _organism():
    import lensteer

    return lensteer.load_model("organism")


def figure_sweep(model=None) -> list[Path]:
    """Layer sweep of the honesty trait on the organism: probe curves and projections."""
    import lensteer
    from lensteer import plots

    model = model or _organism()
    t0 = time.time()
    result = lensteer.locate(model, "honesty", max_scenarios=24, n_folds=4, max_new_tokens=24,
                             greedy=True, progress=False)
    print(f"locate: {time.time() - t0:.0f} s; recommended {result.recommended}")
    paths = [_save(plots.plot_sweep(result), "sweep_organism.png")]
    layer = result.recommended[0]
    paths.append(_save(plots.plot_projections(result, layer), "projections_organism.png"))
    return paths


def figure_strip(model=None) -> Path:
    """A token strip: StTP at an early layer under a malicious prompt, gated tokens boxed."""
    import lensteer

    model = model or _organism()
    trait = lensteer.load_trait("honesty", model=model)
    result = lensteer.locate(model, trait, layers=[1], max_scenarios=24, n_folds=4,
                             max_new_tokens=24, greedy=True, progress=False, neutral=False)
    steerer = lensteer.StTP(result.direction(1), alpha=12, calibration="token")
    question = trait.eval_scenarios[0].prompt
    with lensteer.steer(model, steerer, telemetry=True) as run:
        [g] = lensteer.generate(model, [question], system=trait.eval_malicious_prompts[0],
                                greedy=True, max_new_tokens=24)
    fig = run.telemetry.strip_figure(g, model.tokenizer, per_line=12, include_prompt=False)
    return _save(fig, "strip_organism.png")


FIGURES = {"rules": figure_rules, "sweep": figure_sweep, "strip": figure_strip}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"figures to make: {', '.join(FIGURES)} (default: all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(FIGURES))
    if unknown:
        parser.error(f"unknown figures {unknown}; choose from {', '.join(FIGURES)}")
    torch.set_num_threads(1)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for name in args.names or list(FIGURES):
        FIGURES[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
