"""Command-line interface of ``dare``: run, inspect and list the ways to enact workflow graphs."""

from __future__ import annotations

from typing import Any

__all__ = ["__version__"]


def __getattr__(name: str) -> Any:
    """``__version__`` is looked up when first asked for (``importlib.metadata`` is slow)."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("dare")
    except PackageNotFoundError:  # a source tree that is not installed
        from engine import __version__ as value
    globals()["__version__"] = value
    return value
