"""Layer specs: the one parser every command uses for ``--layers``.

A spec is ``"all"`` or comma-separated items, each a layer (``"3"``), an inclusive range
(``"0-2"``) or a negative index counted from the end as in Python (``"-1"`` is the last layer;
only ``-n`` to ``-1`` exist). The result is sorted, without repeats.

>>> parse_layers("0-2,5", 6), parse_layers("-1", 6), parse_layers("all", 3), parse_layers("-3--2", 6)
([0, 1, 2, 5], [5], [0, 1, 2], [3, 4])
>>> parse_layers("-100", 6)
Traceback (most recent call last):
...
lensteer.errors.LayerSpecError: Layer -100 does not exist: this model has 6 layers, 0 to 5 (or -6 to -1 from the end).
"""
from __future__ import annotations

import re

from .errors import LayerSpecError

__all__ = ["check_layer_spec", "parse_layers"]

_ITEM = re.compile(r"(-?\d+)(?:-(-?\d+))?")
_HOW = "Write layers as '3', '0-2', '1,3,5', '-1' (the last layer) or 'all'."


def _items(spec: str) -> list[tuple[int, int | None]] | None:
    """The spec's items as ``(start, end or None)``; ``None`` for ``"all"``."""
    text = str(spec).strip()
    if text.lower() == "all":
        return None
    if not text:
        raise LayerSpecError(f"The layer spec is empty. {_HOW}")
    items = []
    for part in text.split(","):
        part = part.strip()
        match = _ITEM.fullmatch(part)
        if not match:
            what = "an empty item" if not part else f"{part!r} is not a layer or a range"
            raise LayerSpecError(f"Layer spec {text!r}: {what}. {_HOW}")
        start, end = int(match.group(1)), match.group(2)
        if end is not None and (start >= 0) == (int(end) >= 0) and int(end) < start:
            raise LayerSpecError(
                f"Layer spec {text!r}: the range {part} is empty; write ranges low-high, e.g. "
                f"{end}-{start}."
            )
        items.append((start, None if end is None else int(end)))
    return items


def check_layer_spec(spec: str) -> str:
    """Check a spec's syntax without knowing the model (for argument parsing); returns it."""
    _items(spec)
    return spec


def _resolve(layer: int, n_layers: int) -> int:
    if not -n_layers <= layer < n_layers:
        raise LayerSpecError(
            f"Layer {layer} does not exist: this model has {n_layers} layers, 0 to {n_layers - 1} "
            f"(or {-n_layers} to -1 from the end)."
        )
    return layer % n_layers


def parse_layers(spec: str, n_layers: int) -> list[int]:
    """The layers ``spec`` names on a model with ``n_layers`` layers, sorted and unique.

    Raises :class:`~lensteer.errors.LayerSpecError` for malformed specs, empty ranges and layers
    outside ``[-n_layers, n_layers - 1]``.
    """
    items = _items(spec)
    if items is None:
        return list(range(n_layers))
    layers: set[int] = set()
    for start, end in items:
        a = _resolve(start, n_layers)
        b = a if end is None else _resolve(end, n_layers)
        if b < a:
            raise LayerSpecError(
                f"Layer spec {spec!r}: the range {start}-{end} is layers {a} to {b} of "
                f"{n_layers}, which is empty; write ranges low-high."
            )
        layers.update(range(a, b + 1))
    return sorted(layers)
