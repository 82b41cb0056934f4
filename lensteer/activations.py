"""Moved to :mod:`lensteer.locate.activations` (the locate wing); the names stay importable from here."""
from .locate.activations import *  # noqa: F403
from .locate.activations import __all__  # noqa: F401
