"""Errors of SPECFEM3D's files and set-ups (imported by every other module of the package)."""

from __future__ import annotations

import os
from typing import Any

from dare_cli.ra.errors import ConfigError, RAError

__all__ = ["SpecfemConfigError", "SpecfemFileError"]


class SpecfemFileError(RAError, ValueError):
    """A SPECFEM3D file is malformed; the message names the file (and the line).

    Parameters
    ----------
    path
        The file (or a description of the text, e.g. ``"Par_file template"``).
    reason
        What is wrong.
    line
        Line number (1-based), if the problem is on one line.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str, line: int | None = None
                 ) -> None:
        where = f"{os.fspath(path)}, line {line}" if line is not None else os.fspath(path)
        super().__init__(f"{where}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason
        self.line = line

    def __reduce__(self) -> tuple[Any, ...]:
        return (SpecfemFileError, (self.path, self.reason, self.line))


class SpecfemConfigError(ConfigError, ValueError):
    """A SPECFEM3D set-up is wrong: the message says which value and what to change."""
