"""The run-time shape checker the test suite runs lensteer under (tests/conftest.py installs it
with ``jaxtyping.install_import_hook``, as TransformerLens checks its own code).

Every function and dataclass of lensteer is wrapped by ``jaxtyping.jaxtyped``: on each call the
arguments and the return value annotated with jaxtyping arrays (``Float[Tensor, "batch pos
d_model"]``, also inside ``| None``, ``list[...]`` and the like) are checked by beartype —
dtype, rank and every named dimension consistent across the call. Other annotations are left
to pyright: lensteer checks user-facing settings itself and answers a bad one with a
``LensteerError`` naming it (``lensteer: error: …`` on the command line), which a generic type
error raised first would replace.
"""
from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

from beartype import BeartypeConf, beartype
from jaxtyping import AbstractArray

_check = beartype(conf=BeartypeConf(is_pep484_tower=True))


def _has_array(hint: Any) -> bool:
    if isinstance(hint, type) and issubclass(hint, AbstractArray):
        return True
    return any(_has_array(arg) for arg in typing.get_args(hint))


def typechecked(fn: Callable[..., Any]) -> Callable[..., Any]:
    """beartype on the jaxtyping-annotated parameters and return value of ``fn`` (a signature
    stub jaxtyping generated, with annotations already resolved)."""
    fn.__annotations__ = {k: v for k, v in fn.__annotations__.items() if _has_array(v)}
    return _check(fn)
