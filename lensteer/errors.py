"""Exceptions that say what went wrong and what to do about it.

Every error lensteer raises on bad input is a :class:`LensteerError`, so a notebook can catch
them all at once::

    >>> from lensteer.errors import LensteerError, UnknownModelError
    >>> issubclass(UnknownModelError, LensteerError) and issubclass(UnknownModelError, ValueError)
    True
"""
from __future__ import annotations


class LensteerError(Exception):
    """Base class of lensteer's errors."""


class UnknownModelError(LensteerError, ValueError):
    """The model name is neither a bundled model, a local directory nor a reachable hub id."""


class ModelNotAvailableError(LensteerError, RuntimeError):
    """A bundled model's files are missing (a package is not installed, or not trained yet)."""


class IncompatibleVersionsError(LensteerError, RuntimeError):
    """Installed library versions that are known to produce wrong results together."""


class HookNameError(LensteerError, ValueError):
    """A layer or hook point that does not exist on this model."""


class ModelCheckError(LensteerError, RuntimeError):
    """The model's hook points do not mean what lensteer assumes (see :func:`check_model`)."""


class ChatFormatError(LensteerError, ValueError):
    """Messages that cannot be formatted with the tokenizer's chat template."""


class FitError(LensteerError, ValueError):
    """Data that cannot define a direction or a held-out score (one class, NaN, too few samples)."""


class ActivationError(LensteerError, ValueError):
    """Sequences or spans that cannot be pooled (an empty response, a span outside the tokens)."""


class TraitFileError(LensteerError, ValueError):
    """A trait file that is missing, malformed, or names a trait that does not exist."""


class UsageError(LensteerError, ValueError):
    """A setting or command-line option whose value has no meaning (``--batch-size 0``, …) or
    does not fit the other inputs (a layer the directions do not cover, …)."""


class LayerSpecError(LensteerError, ValueError):
    """A layer spec such as ``"0-2,5"`` that is malformed or names layers the model lacks."""


class ArtifactError(LensteerError, ValueError):
    """A file lensteer wrote (direction, spec, sweep, checkpoint) that is corrupt, truncated or
    missing fields."""


class OutputDirError(LensteerError, RuntimeError):
    """An output folder that cannot be written: a file, not writable, another run's, or locked."""


class ContextLengthError(LensteerError, ValueError):
    """A prompt plus ``max_new_tokens`` longer than the model's context window."""


#: Packages whose frames a warning skips to reach the user's own call: lensteer, the libraries it
#: calls into (a hook runs inside torch and TransformerLens) and run-time type-checking wrappers.
_SKIPPED_PACKAGES = ("lensteer", "jaxtyping", "beartype", "typeguard", "torch", "transformer_lens",
                     "transformers", "contextlib", "tqdm")


def warn_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the first caller outside lensteer (and the libraries it
    runs inside), however deep the call sits — so the warning names the user's line."""
    import sys
    import warnings

    frame = sys._getframe(1)
    level = 2  # 1 would be this function, 2 its caller
    while frame.f_back is not None and (
            frame.f_globals.get("__name__", "").split(".")[0] in _SKIPPED_PACKAGES):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
