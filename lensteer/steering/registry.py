"""The steering rules lensteer knows, in one place: evaluation, reports, plots, specs and the CLI
iterate over this registry instead of naming rules.

A rule is a :class:`~lensteer.steering.steerers.Steerer` subclass that declares, as class
attributes, everything the rest of lensteer asks of it — ``method`` (its name), ``display_name``,
``paper_grid`` (the paper's α grid; empty: not part of the default sweep), ``gated``,
``params`` (extra constructor parameters, each a :class:`Param`: serialised in specs and
restored generically) — and implements ``vllm_payload`` if the vLLM fork can serve it. Adding a
rule is the rule function, one class and one :func:`register` line (docs/architecture.md,
*Add a steering rule*).

>>> [r.method for r in rules()]
['swfc', 'sttp', 'stmp', 'ablate']
>>> display_name("stmp"), paper_grid()["swfc"], vllm_rules()
('StMP', [1.0, 2.0, 3.0, 4.0, 5.0], ['sttp', 'stmp'])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "Param",
    "RuleClass",
    "display_name",
    "get_rule",
    "gated_rules",
    "paper_grid",
    "register",
    "rule_names",
    "rules",
    "unregister",
    "vllm_rules",
]


@dataclass(frozen=True)
class Param:
    """An extra numeric parameter of a rule (beyond α, sign, threshold, calibration, positions).

    ``minimum``: the smallest allowed value (``None``: any finite number).
    """

    default: float
    minimum: float | None = None
    help: str = ""


class RuleClass(Protocol):
    """What the registry reads from a rule class (a ``Steerer`` subclass)."""

    method: str
    display_name: str
    paper_grid: tuple[float, ...]
    gated: bool
    params: dict[str, Param]
    aliases: tuple[str, ...]

    @classmethod
    def supports_vllm(cls) -> bool: ...

    def __call__(self, direction: Any, alpha: float = 1.0, **kwargs: Any) -> Any: ...


_RULES: dict[str, Any] = {}


def register(cls: Any) -> Any:
    """Add a rule class to the registry (returns it, so it also works as a decorator)."""
    name = str(cls.method)
    if not name or name != name.lower():
        raise ValueError(f"A rule needs a lower-case `method` name, not {name!r}.")
    taken = {n for c in _RULES.values() for n in (c.method, *c.aliases)} - {name, *cls.aliases}
    clash = {name, *cls.aliases} & taken
    if clash:
        raise ValueError(f"Rule name {sorted(clash)[0]!r} is already registered.")
    _RULES[name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a rule (tests that define their own rules clean up with it)."""
    _RULES.pop(name, None)


def rules() -> list[Any]:
    """The registered rule classes, in registration order."""
    return list(_RULES.values())


def rule_names() -> list[str]:
    """The registered rules' names, in registration order."""
    return list(_RULES)


def get_rule(name: str) -> Any:
    """The rule class called ``name`` (or one of its aliases); ``KeyError`` if none."""
    key = str(name).lower()
    for cls in _RULES.values():
        if key == cls.method or key in cls.aliases:
            return cls
    raise KeyError(name)


def display_name(name: str) -> str:
    """How reports write a rule (``"sttp"`` → ``"StTP"``); unknown names as given."""
    try:
        return get_rule(name).display_name or name
    except KeyError:
        return name


def paper_grid() -> dict[str, list[float]]:
    """The paper's α grid of every rule that has one: the default operating-point sweep."""
    return {c.method: [float(a) for a in c.paper_grid] for c in _RULES.values() if c.paper_grid}


def gated_rules() -> list[str]:
    """Rules whose gate uses a threshold (so the threshold and calibration variants apply)."""
    return [c.method for c in _RULES.values() if c.gated]


def vllm_rules() -> list[str]:
    """Rules the vLLM fork can serve (they implement ``vllm_payload``)."""
    return [c.method for c in _RULES.values() if c.supports_vllm()]
