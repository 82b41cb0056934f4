"""The ``lensteer locate`` subcommand (see :mod:`lensteer.locate`)."""
from __future__ import annotations

import argparse

from .cli_args import at_least, layer_spec, positive_int


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
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--backend", default=None, choices=["bridge", "hooked"],
                   help="TransformerLens backend (default: bridge on TL 4, hooked on TL 3.9)")
    p.add_argument("--evaluate", action="store_true",
                   help="also score each direction on the trait's eval split")
    p.add_argument("--no-per-token", action="store_true",
                   help="skip the per-token pass (token statistics and gate rates)")
    p.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    p.set_defaults(func=_cmd_locate)


def _cmd_locate(args: argparse.Namespace) -> int:
    from .locate import locate_command

    return locate_command(args)
