"""What every ``lensteer`` command shares: the parser class (one-line errors, defaults in
``--help``), argument types that reject meaningless values at parse time, and the thread policy.

>>> positive_int("3"), finite_float("0.5"), threads("auto")
(3, 0.5, 'auto')
>>> default_threads(cpus=2, load=0.0), default_threads(cpus=16, load=0.0), default_threads(cpus=16, load=15.5)
(1, 2, 1)
"""
from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from typing import Any

from .errors import LayerSpecError, UsageError
from .layers import check_layer_spec

__all__ = [
    "THREADS_HELP",
    "HelpFormatter",
    "Parser",
    "add_model_options",
    "at_least",
    "backend",
    "default_threads",
    "device",
    "finite_float",
    "layer_spec",
    "load_model_from_args",
    "nonnegative_float",
    "positive_int",
    "threads",
]

#: ``--threads`` help, shared by every command.
THREADS_HELP = (
    "torch threads; 'auto' = 1 on machines with at most 2 usable cores, else min(2, cores left "
    "idle by the 1-minute load average), at least 1 (docs/performance.md)"
)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: …)`` after every option that has a meaningful default, unless its help
    already says it; a list default reads as the values one would type (``resid_post``)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help
        if "(default" in (action.help or ""):
            return action.help
        if isinstance(action.default, (list, tuple)):
            return f"{action.help} (default: {' '.join(map(str, action.default))})"
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one-line :class:`UsageError`\\ s (printed by the CLI
    as ``lensteer: error: …``, exit 2) and whose help shows defaults; subcommands inherit it."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer ≥ ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


positive_int = at_least(1)


def finite_float(text: str) -> float:
    """An argparse type: a finite number (no nan, no inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def nonnegative_float(text: str) -> float:
    """An argparse type: a finite number ≥ 0."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def ratio(text: str) -> float:
    """An argparse type: a number in [0, 1]."""
    value = finite_float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text!r}")
    return value


def layer_spec(text: str) -> str:
    """An argparse type: a layer spec whose syntax is valid (the model checks the range)."""
    try:
        return check_layer_spec(text)
    except LayerSpecError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def device(text: str) -> str:
    """An argparse type: a torch device name (``cpu``, ``cuda``, ``cuda:1``, ``mps``…)."""
    import torch

    try:
        torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"not a torch device: {text!r} (e.g. cpu, cuda, cuda:1)") from None
    return text


def backend(text: str) -> str:
    """An argparse type: ``bridge`` or ``hooked``, and only the one this environment can load
    (TransformerLens 4 has no ``HookedTransformer``, 3.9 no ``TransformerBridge``)."""
    from .models import installed_backend

    if text not in ("bridge", "hooked"):
        raise argparse.ArgumentTypeError(f"choose from 'bridge', 'hooked', not {text!r}")
    if text != installed_backend():
        need = "transformer-lens 4.x" if text == "bridge" else "transformer-lens 3.9"
        raise argparse.ArgumentTypeError(
            f"{text!r} needs {need}; this environment has the {installed_backend()!r} backend")
    return text


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--backend``, for every command that loads a model (its own ``--model``
    says which, with the command's default)."""
    parser.add_argument("--device", type=device, default="cpu", help="torch device")
    parser.add_argument("--backend", type=backend, default=None,
                        help="TransformerLens backend, bridge or hooked (default: the installed "
                             "one: bridge on TL 4, hooked on TL 3.9)")


def load_model_from_args(args: argparse.Namespace, name: str | None = None) -> Any:
    """``load_model(name or args.model)`` on ``args.device`` with ``args.backend`` (default: the
    installed backend, :func:`lensteer.models.installed_backend`) — how every command loads."""
    from . import models  # looked up at call time, so tests can stand in for load_model

    backend = args.backend or models.installed_backend()
    return models.load_model(args.model if name is None else name, device=args.device,
                             backend=backend)


def threads(text: str) -> int | str:
    """An argparse type: ``auto`` or a thread count ≥ 1."""
    if text == "auto":
        return text
    return at_least(1)(text)


def default_threads(cpus: int | None = None, load: float | None = None) -> int:
    """The ``auto`` thread count: 1 with ≤ 2 usable cores, else min(2, idle cores), ≥ 1.

    torch's default (one thread per core) spins when another process holds a core: on the
    2-core reference machine an evaluation took 2.7× longer with default threads next to one
    busy process than with one thread (docs/performance.md).
    """
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if cpus <= 2:
        return 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = 0.0
    return max(1, min(2, int(cpus - load)))
