"""The ``lensteer locate`` subcommand (see :mod:`lensteer.locate`)."""
from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "locate",
        help="layer sweep: fit a trait direction at every layer and report how well it separates",
    )
    p.add_argument("--model", required=True, help="bundled name, local directory or hub id")
    p.add_argument("--trait", required=True, help="trait name (honesty, compassion) or a JSON file")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=_cmd_locate)


def _cmd_locate(args: argparse.Namespace) -> int:
    from .locate import locate_command

    return locate_command(args)
