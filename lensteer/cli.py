"""The ``lensteer`` command.

Each subcommand lives in a small ``_cmd_*`` function; a module that adds some defines
``add_parser(subparsers)`` and is listed in ``_SUBCOMMAND_MODULES``. Every command checks its
arguments and files before the first forward pass; bad input ends in one line
``lensteer: error: …`` and exit status 2, Ctrl-C (or SIGTERM) in ``lensteer: interrupted`` and
exit status 130, after the running command's ``finally`` blocks cleaned up.

    $ lensteer models
    $ lensteer chat --model organism --system "You are honest." "What is the capital of France?"
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from .cli_args import (
    THREADS_HELP,
    Parser,
    add_model_options,
    default_threads,
    load_model_from_args,
    nonnegative_float,
    positive_int,
    threads,
)
from .errors import LensteerError

# Modules that register more subcommands (each defines add_parser(subparsers)).
_SUBCOMMAND_MODULES: list[str] = ["lensteer.locate.cli", "lensteer.steering.cli", "lensteer.evaluation.cli",
                                   "lensteer.serve.cli"]


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

    model = load_model_from_args(args)
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
    parser = Parser(
        prog="lensteer",
        description="Locate misalignment directions in a language model and steer them away.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("models", help="list the bundled models and whether they are cached")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("chat", help="print a model's response to one prompt")
    p.add_argument("prompt", help="the user message")
    p.add_argument("--model", default="organism", help="bundled name, local directory or hub id")
    p.add_argument("--system", default=None, help="system prompt")
    p.add_argument("--max-new-tokens", type=positive_int, default=64, help="response length limit")
    p.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling")
    p.add_argument("--temperature", type=nonnegative_float, default=0.6,
                   help="sampling temperature (0 = greedy)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    add_model_options(p)
    p.set_defaults(func=_cmd_chat)

    for module in _SUBCOMMAND_MODULES:
        importlib.import_module(module).add_parser(sub)
    for command in sub.choices.values():  # every command takes --threads
        command.add_argument("--threads", type=threads, default="auto", help=THREADS_HELP)
    return parser


@contextlib.contextmanager
def _torch_threads(n: int | str) -> Iterator[None]:
    """Run with ``n`` torch threads (``"auto"``: :func:`default_threads`), then restore."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(default_threads() if n == "auto" else int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, so ``finally`` blocks remove temporary files."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _error(message: object) -> int:
    print(f"lensteer: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    with _sigterm_interrupts():
        try:
            args = build_parser().parse_args(argv)
            with _torch_threads(args.threads):
                return int(args.func(args) or 0)
        except LensteerError as error:  # bad input: one clear line, no stack trace
            return _error(error)
        except OSError as error:  # a path that cannot be read or written
            return _error(error)
        except KeyboardInterrupt:
            print("lensteer: interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":
    raise SystemExit(main())
