"""Moved to :mod:`lensteer.locate.contrastive` (the locate wing); the names stay importable from here."""
from .locate.contrastive import *  # noqa: F403
from .locate.contrastive import __all__  # noqa: F401
