"""How to decode, as one object: :class:`GenSettings`.

:func:`lensteer.generate`, the contrastive builders and :func:`lensteer.locate` take one
(``gen=``); their keyword arguments (``max_new_tokens=``, ``greedy=`` …) stay as sugar that
override it. Evaluation uses a subclass with reproducible defaults
(:class:`lensteer.evaluation.conditions.EvalGenSettings`: greedy, 40 tokens, batches of 64).

>>> gen = GenSettings(max_new_tokens=12, greedy=True)
>>> gen.override(seed=3, batch_size=None).seed, gen.override(seed=None) == gen
(3, True)
>>> GenSettings(temperature=0).sampling
False
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

__all__ = ["GenSettings"]


@dataclass(frozen=True)
class GenSettings:
    """Decoding settings: the paper's sampling (T = 0.6, top-p 0.9) by default, or greedy.

    ``seed``: sampling is reproducible for a given seed, batch size and input order.
    """

    max_new_tokens: int = 64
    greedy: bool = False
    temperature: float = 0.6
    top_p: float = 0.9
    seed: int = 0
    batch_size: int = 8

    @property
    def sampling(self) -> bool:
        """Whether tokens are sampled (not greedy, and a temperature above 0)."""
        return not (self.greedy or self.temperature == 0)

    def override(self, **changes: Any) -> GenSettings:
        """A copy with the given fields changed; ``None`` values change nothing (so keyword
        arguments that were not passed leave the settings as they are)."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(f"GenSettings has no field {unknown[0]!r}.")
        given = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **given) if given else self

    def check(self) -> GenSettings:
        """Raise ``ValueError`` saying what is wrong with a setting; returns ``self``.

        >>> GenSettings(max_new_tokens=0).check()
        Traceback (most recent call last):
        ...
        ValueError: max_new_tokens must be at least 1, got 0.
        """
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}.")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}.")
        if not self.greedy and not self.temperature >= 0:  # also NaN
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}.")
        return self

    def kwargs(self) -> dict[str, Any]:
        """The settings as keyword arguments of :func:`lensteer.generate` (no progress bar)."""
        return dict(max_new_tokens=self.max_new_tokens, greedy=self.greedy,
                    temperature=self.temperature, top_p=self.top_p, seed=self.seed,
                    batch_size=self.batch_size, progress=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
