"""Command-line interface of ``dare``: run, inspect and list the ways to enact workflow graphs."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("dare")
except PackageNotFoundError:  # a source tree that is not installed
    from engine import __version__
