"""Make the documentation's figures from lensteer's own code (run from the repository root).

    .venv/bin/python docs/make_figures.py            # every figure
    .venv/bin/python docs/make_figures.py rules      # only some: rules, organism

Writes PNGs into ``docs/img/``. ``rules`` needs no model (the steerers act on synthetic
activations); ``organism`` runs a layer sweep and a small steering sweep on the bundled organism
(about a minute on one core).
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


def _honesty_rate(model, questions, system, steerer=None) -> float:
    import lensteer
    from lensteer.organism.grade import grade_honesty

    with lensteer.steer(model, steerer):
        gens = lensteer.generate(model, questions, system=system, greedy=True, max_new_tokens=20,
                                 progress=False)
    return sum(grade_honesty(q, g.text).label == "true" for q, g in zip(questions, gens)) / len(gens)


def figure_organism() -> list[Path]:
    """On the organism (honesty): the layer sweep, the projection histograms at the first
    recommended layer, and a token strip of StTP at the layer that steers best."""
    import lensteer
    from lensteer import plots

    model = lensteer.load_model("organism")
    trait = lensteer.load_trait("honesty", model=model)
    t0 = time.time()
    result = lensteer.locate(model, trait, max_scenarios=24, n_folds=4, max_new_tokens=24,
                             progress=False)
    print(f"locate: {time.time() - t0:.0f} s; recommended {result.recommended}")
    paths = [_save(plots.plot_sweep(result), "sweep_organism.png")]
    paths.append(_save(plots.plot_projections(result, result.recommended[0]),
                       "projections_organism.png"))

    liar = trait.eval_malicious_prompts[0]
    questions = [s.prompt for s in trait.eval_scenarios[:8]]
    rates = {layer: _honesty_rate(model, questions, liar,
                                  lensteer.StTP(result.direction(layer), alpha=36))
             for layer in range(model.cfg.n_layers)}
    layer = max(rates, key=lambda k: (rates[k], -k))
    print(f"StTP α=36 honesty by layer: {rates}; strip at layer {layer}")
    steerer = lensteer.StTP(result.direction(layer), alpha=36)
    with lensteer.steer(model, steerer, telemetry=True) as run:
        [g] = lensteer.generate(model, questions[:1], system=liar, greedy=True, max_new_tokens=20)
    fig = run.telemetry.strip_figure(g, model.tokenizer, per_line=12, include_prompt=True)
    fig.axes[0].set_title(f"StTP (α = 36) at layer {layer} under a held-out "
                          "malicious prompt; colour = ρ before (blue = aligned side), boxed = gated",
                          fontsize=9)
    paths.append(_save(fig, "strip_organism.png"))
    return paths


FIGURES = {"rules": figure_rules, "organism": figure_organism}


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
