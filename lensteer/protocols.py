"""What lensteer needs from the objects it is handed, as small structural types (checked by
pyright, not at run time). Imports nothing else of lensteer, so every layer may use it.

A :class:`LensModel` is a TransformerLens model with a tokenizer: TransformerLens 4's
``TransformerBridge`` or 3.9's ``HookedTransformer`` (what :func:`lensteer.load_model` returns).
Functions that only read the model's configuration take a :class:`HasConfig`.
:func:`model_device` is the one rule for where a model's inputs go.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

import torch

__all__ = ["HasConfig", "LensModel", "model_device"]


class HasConfig(Protocol):
    """Anything with a TransformerLens ``cfg`` (``n_layers``, ``d_model``, ``n_ctx``, …)."""

    @property
    def cfg(self) -> Any: ...


class LensModel(HasConfig, Protocol):
    """The hook API lensteer uses, shared by ``TransformerBridge`` and ``HookedTransformer``."""

    @property
    def tokenizer(self) -> Any: ...

    @property
    def hook_dict(self) -> Mapping[str, Any]: ...

    def hooks(self, *args: Any, **kwargs: Any) -> AbstractContextManager[Any]: ...

    def run_with_hooks(self, *args: Any, **kwargs: Any) -> Any: ...

    def run_with_cache(self, *args: Any, **kwargs: Any) -> Any: ...

    def generate(self, *args: Any, **kwargs: Any) -> Any: ...

    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...


def model_device(model: Any) -> torch.device:
    """The one device rule: where a model's first parameter lives (the CPU for a model without
    parameters). Inputs lensteer builds go there."""
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return torch.device("cpu")
