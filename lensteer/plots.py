"""Moved to :mod:`lensteer.locate.plots` (the locate wing); the names stay importable from here."""
from .locate.plots import *  # noqa: F403
from .locate.plots import __all__  # noqa: F401
