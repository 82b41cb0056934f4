"""Moved to :mod:`lensteer.generation.fast` (generation owns its paths); these names stay
importable from here."""
from ..generation.fast import (
    FAST_POINTS,
    attach,
    decoder_layers,
    generate_tokens,
    shared_hf_model,
    shared_if_built,
    supports_fast_path,
)

__all__ = [
    "FAST_POINTS",
    "attach",
    "decoder_layers",
    "generate_tokens",
    "shared_hf_model",
    "shared_if_built",
    "supports_fast_path",
]
