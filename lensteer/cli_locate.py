"""Moved to :mod:`lensteer.locate.cli`; the names stay importable from here."""
from .locate.cli import add_parser, locate_command

__all__ = ["add_parser", "locate_command"]
