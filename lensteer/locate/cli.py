"""The ``lensteer locate`` subcommand: arguments, the run, the output folder and its plots."""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import io
from ..cli_args import add_model_options, at_least, layer_spec, load_model_from_args, positive_int
from ..errors import UsageError
from .result import LocateResult


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "locate",
        help="layer sweep: fit a trait direction at every layer and report how well it separates",
    )
    p.add_argument("--model", required=True, help="bundled name, local directory or hub id")
    p.add_argument("--trait", required=True, help="trait name (honesty, compassion) or a JSON file")
    p.add_argument("--out", required=True,
                   help="output folder (replaced as a whole when the sweep is done)")
    p.add_argument("--layers", type=layer_spec, default="all",
                   help="layers to sweep: '3', '0-2', '1,3,5', '-1' (the last) or 'all'")
    p.add_argument("--hooks", nargs="+", default=["resid_post"],
                   help="hook points: resid_pre resid_mid resid_post attn_out mlp_out")
    p.add_argument("--method", default="logistic", choices=["logistic", "mean_diff", "pca"],
                   help="how to fit a direction")
    p.add_argument("--folds", type=at_least(2), default=5, help="GroupKFold folds (grouped by scenario)")
    p.add_argument("--responses", default="on_policy", choices=["on_policy", "given"],
                   help="generate the responses, or use the trait file's")
    p.add_argument("--prompts-per-scenario", type=positive_int, default=1,
                   help="system-prompt paraphrases per scenario")
    p.add_argument("--max-scenarios", type=positive_int, default=None,
                   help="use at most this many scenarios (default: all)")
    p.add_argument("--max-new-tokens", type=positive_int, default=48, help="response length limit")
    p.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling (T=0.6, top-p 0.9)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--batch-size", type=positive_int, default=8, help="sequences per forward pass")
    add_model_options(p)
    p.add_argument("--evaluate", action="store_true",
                   help="also score each direction on the trait's eval split")
    p.add_argument("--no-per-token", action="store_true",
                   help="skip the per-token pass (token statistics and gate rates)")
    p.add_argument("--no-tf-effect", action="store_true",
                   help="skip the teacher-forced effect (the steerability predictor that costs "
                        "forward passes over every layer × rule; the cheap predictors stay)")
    p.add_argument("--tf-pairs", type=positive_int, default=32,
                   help="contrastive pairs the teacher-forced effect scores (evenly spread)")
    p.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    p.set_defaults(func=_cmd_locate)


def _cmd_locate(args: argparse.Namespace) -> int:
    return locate_command(args)


def locate_command(args: argparse.Namespace) -> int:
    """``lensteer locate``: check everything, run the sweep, then write sweep.json, directions/
    and plots into a fresh folder that replaces ``--out`` whole."""
    import torch

    from ..hooks import HOOK_POINTS
    from ..layers import parse_layers
    from ..outdir import check_out, lock_out, staged_dir, write_marker
    from .sweep import locate

    out = check_out(args.out, "locate")
    hooks = [h for part in args.hooks for h in part.split(",") if h]
    bad = [h for h in hooks if h not in HOOK_POINTS]
    if bad or not hooks:
        raise UsageError(f"--hooks: unknown hook point {bad[0] if bad else ''!r}; choose from "
                         f"{', '.join(HOOK_POINTS)}.")
    with lock_out(out):
        torch.manual_seed(args.seed)
        model = load_model_from_args(args)
        layers = parse_layers(args.layers, int(model.cfg.n_layers))
        result = locate(  # checks trait, layers, folds vs scenarios before generating
            model, args.trait, layers=layers, hooks=hooks, method=args.method, n_folds=args.folds,
            responses=args.responses, prompts_per_scenario=args.prompts_per_scenario,
            max_scenarios=args.max_scenarios, max_new_tokens=args.max_new_tokens,
            greedy=args.greedy, seed=args.seed, batch_size=args.batch_size,
            per_token=not args.no_per_token, evaluate=args.evaluate,
            tf_effect=not args.no_tf_effect, tf_pairs=args.tf_pairs,
        )
        with staged_dir(out) as tmp:
            result.save(tmp)
            names = ["sweep.json", "directions"]
            if not args.no_plots:
                names += [p.name for p in _write_plots(result, tmp)]
            write_marker(tmp, "locate")
    print(result.table())
    print(f"recommended layers: {result.recommended}")
    print(result.recommendation)
    print("wrote " + ", ".join(str(out / name) for name in names))
    return 0


def _write_plots(result: LocateResult, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import plots

    paths = []

    def save(fig, name):
        path = out / name
        with io.atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)

    save(plots.plot_sweep(result), "sweep.png")
    save(plots.plot_predictors(result), "predictors.png")
    save(plots.plot_cosine(result), "cosine.png")
    point = result.rows[0].point  # the recommendation's hook point
    for layer in result.recommended:
        save(plots.plot_projections(result, layer, point), f"projections_L{layer}_{point}.png")
    return paths
