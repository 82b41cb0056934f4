"""The ``lensteer`` command.

Each subcommand lives in a small ``_cmd_*`` function registered in :data:`COMMANDS`; a module
that adds one defines ``add_parser(subparsers)`` and is listed in ``_SUBCOMMAND_MODULES``.

    $ lensteer models
    $ lensteer chat --model organism --system "You are honest." "What is the capital of France?"
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from .errors import LensteerError

# Modules that register more subcommands (each defines add_parser(subparsers)).
_SUBCOMMAND_MODULES: list[str] = ["lensteer.cli_locate", "lensteer.steering.cli", "lensteer.evaluation.cli"]


def _cmd_models(args: argparse.Namespace) -> int:
    from .models import bundled_models, cache_dir

    print(f"Bundled models (cache: {cache_dir()}):")
    for m in bundled_models():
        state = "ready" if m["ready"] else "not cached yet (converted on first load)"
        if m["name"] == "organism" and not m["ready"]:
            state = "missing (train it: python -m lensteer.organism.train)"
        print(f"  {m['name']:<24} {state:<12}  {m['description']}")
    print("Any local Hugging Face directory or hub id also works with --model.")
    return 0


def _cmd_chat(args: argparse.Namespace) -> int:
    from .generation import generate
    from .models import load_model

    model = load_model(args.model)
    [g] = generate(
        model,
        [args.prompt],
        system=args.system,
        max_new_tokens=args.max_new_tokens,
        greedy=args.greedy,
        temperature=args.temperature,
        seed=args.seed,
    )
    print(g.text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lensteer",
        description="Locate misalignment directions in a language model and steer them away.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the bundled models and whether they are cached")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("chat", help="print a model's response to one prompt")
    p.add_argument("prompt", help="the user message")
    p.add_argument("--model", default="organism", help="bundled name, local directory or hub id")
    p.add_argument("--system", default=None, help="system prompt")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling")
    p.add_argument("--temperature", type=float, default=0.6)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_chat)

    for module in _SUBCOMMAND_MODULES:
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LensteerError as error:  # bad input: a clear message, no stack trace
        print(f"lensteer: error: {error}", file=sys.stderr)
        return 2
    except FileNotFoundError as error:
        print(f"lensteer: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
