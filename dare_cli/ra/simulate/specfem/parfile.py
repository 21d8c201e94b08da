"""SPECFEM3D's ``KEY = value`` parameter files (``Par_file``, ``Mesh_Par_file``) as text.

Lines ``KEY = value`` (an inline ``# comment`` may follow the value) between comment lines; the
``Mesh_Par_file`` also holds two tables (materials, regions) after ``NMATERIALS`` and
``NREGIONS`` (read by :mod:`.mesh`). :func:`read_parfile` reads the values as text;
:func:`render_parfile` fills a template (e.g. the ``Par_file`` shipped with the SPECFEM3D
version that will run) keeping every comment and the layout; :func:`fortran_value` and
:func:`format_fortran` convert between Fortran literals (``.true.``, ``840``, ``0.05d0``) and
Python values.
"""

from __future__ import annotations

import difflib
import math
import numbers
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dare_cli.ra.simulate.specfem.errors import SpecfemConfigError, SpecfemFileError

__all__ = [
    "format_fortran",
    "fortran_value",
    "parfile_entries",
    "parse_number",
    "parse_parfile",
    "read_parfile",
    "render_parfile",
    "table_rows",
]

_INT = re.compile(r"[+-]?\d+")
_REAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][+-]?\d+)?")
_ENTRY = re.compile(r"^(?P<head>[ \t]*(?P<key>[A-Za-z_]\w*)[ \t]*=[ \t]*)"
                    r"(?P<value>[^#]*?)(?P<tail>[ \t]*(?:#.*)?)$")


def fortran_value(text: str) -> bool | int | float | str:
    """Python value of a Fortran literal of a parameter file.

    Parameters
    ----------
    text
        ``.true.``/``.false.`` (any case), an integer, a real (``0.012``, ``60.d0``,
        ``1.d23``, ``1e-3``) or anything else (returned stripped, as text).

    Returns
    -------
    bool, int, float or str
    """
    t = text.strip()
    low = t.lower()
    if low in (".true.", ".false."):
        return low == ".true."
    if _INT.fullmatch(t):
        return int(t)
    if _REAL.fullmatch(t):
        return float(t.replace("d", "e").replace("D", "e"))
    return t


def format_fortran(value: Any) -> str:
    """Fortran literal of a Python value, as SPECFEM's parameter readers expect it.

    Booleans become ``.true.``/``.false.``, integers stay integers, reals become
    double-precision literals (``0.05`` -> ``0.05d0``, ``1e-05`` -> ``1.0d-5``; the shortest
    text that reads back as the same double), paths and text are written as they are.

    Parameters
    ----------
    value
        bool, integer, real, str or path.

    Returns
    -------
    str
    """
    if isinstance(value, bool | np.bool_):
        return ".true." if value else ".false."
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        if not math.isfinite(x):
            raise ValueError(f"cannot write the non-finite number {x!r} to a parameter file")
        text = repr(x)
        if "e" in text:
            mantissa, exponent = text.split("e")
            if "." not in mantissa:
                mantissa += ".0"
            return f"{mantissa}d{int(exponent)}"
        return text + "d0"
    if isinstance(value, str | os.PathLike):
        text = os.fspath(value)
        if "\n" in text or "\r" in text or "#" in text:
            raise ValueError(f"a parameter value cannot contain a line break or '#': {text!r}")
        return text
    raise TypeError(f"cannot write a {type(value).__name__} to a parameter file: {value!r}")


def parfile_entries(lines: Sequence[str], source: str) -> dict[str, tuple[int, re.Match[str]]]:
    """``KEY = value`` lines of a parameter file: key -> (line index, match)."""
    found: dict[str, tuple[int, re.Match[str]]] = {}
    for index, raw in enumerate(lines):
        line = raw.rstrip("\r\n")
        if line.lstrip().startswith("#"):
            continue
        match = _ENTRY.match(line)
        if match is None:
            continue
        key = match["key"]
        if key in found:
            raise SpecfemFileError(source, f"{key} is set twice (also on line "
                                           f"{found[key][0] + 1})", index + 1)
        found[key] = (index, match)
    return found


def parse_parfile(text: str, *, source: str = "Par_file") -> dict[str, str]:
    """Values of a SPECFEM parameter file's text (see :func:`read_parfile`).

    Parameters
    ----------
    text
        Content of a ``Par_file`` or ``Mesh_Par_file``.
    source
        Name of the text for error messages.

    Returns
    -------
    dict of str to str
        ``KEY`` -> value text (stripped, without the inline comment), in file order.
    """
    return {key: match["value"].strip()
            for key, (_, match) in parfile_entries(text.splitlines(), source).items()}


def read_parfile(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read SPECFEM's ``KEY = value`` parameter file (``Par_file``, ``Mesh_Par_file``).

    Comment lines (``#`` first) and lines without ``=`` (the material and region tables of a
    ``Mesh_Par_file``) are skipped; an inline ``# comment`` after a value is dropped.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    dict of str to str
        ``KEY`` -> value as written (convert with :func:`fortran_value`).

    Raises
    ------
    SpecfemFileError
        A key is set twice (the message names both lines).
    """
    return parse_parfile(Path(path).read_text(), source=os.fspath(path))


def _nearest(key: str, known: Sequence[str]) -> str:
    lower = {k.lower(): k for k in known}
    if key.lower() in lower:
        return f"; did you mean {lower[key.lower()]}?"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    return f"; did you mean {close[0]}?" if close else ""


def _render_value(key: str, value: Any, old: str, source: str) -> str | None:
    """New value text for ``key``, or None to keep the template's text (same value)."""
    current = fortran_value(old)
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        text = format_fortran(value)
        return None if text == old.strip() else text
    if isinstance(value, bool | np.bool_):
        if not isinstance(current, bool):
            raise SpecfemConfigError(f"{key} is not a logical in {source} (its value there is "
                                     f"{old.strip()!r}), got {value!r}")
        return None if current == bool(value) else format_fortran(bool(value))
    if isinstance(value, numbers.Real):
        if isinstance(current, bool):
            raise SpecfemConfigError(f"{key} is a logical in {source} ({old.strip()}): give "
                                     f"True or False, not {value!r}")
        if isinstance(current, int) and not isinstance(value, numbers.Integral):
            if not float(value).is_integer():
                raise SpecfemConfigError(f"{key} takes an integer (its value in {source} is "
                                         f"{old.strip()}), got {value!r}")
            value = int(float(value))
        if isinstance(current, int | float) and current == value:
            return None
        try:
            return format_fortran(value)
        except ValueError as exc:
            raise SpecfemConfigError(f"{key}: {exc}") from None
    raise SpecfemConfigError(f"{key}: cannot write a {type(value).__name__} ({value!r}) to "
                             f"a parameter file")


def render_parfile(template: str, values: Mapping[str, Any], *, source: str = "template"
                   ) -> str:
    """Fill a SPECFEM parameter file template with new values.

    Only the values of the given keys change; every comment line, inline comment, blank line,
    table row and the alignment stay as they are. A value equal to the template's (e.g.
    ``33.79`` for ``33.790d0``) keeps the template's text.

    Parameters
    ----------
    template
        Text of a ``Par_file`` or ``Mesh_Par_file``.
    values
        ``KEY`` -> value: bool (``.true.``/``.false.``), int, float (written as a Fortran
        double, e.g. ``0.05d0``; an integral float is accepted for an integer key), str or path
        (written as given). Every key must exist in the template.
    source
        Name of the template for error messages.

    Returns
    -------
    str
        The filled file.

    Raises
    ------
    SpecfemConfigError
        An unknown key (the message names the nearest known key) or a value of the wrong kind
        (a number for a logical, a fraction for an integer).
    """
    lines = template.splitlines(keepends=True)
    entries = parfile_entries(lines, source)
    unknown = [key for key in values if key not in entries]
    if unknown:
        hints = "; ".join(f"{key}{_nearest(key, list(entries))}" for key in unknown)
        raise SpecfemConfigError(f"unknown key(s) for {source}: {hints}")
    for key, value in values.items():
        index, match = entries[key]
        text = _render_value(key, value, match["value"], source)
        if text is None:
            continue
        tail = match["tail"]
        if tail.startswith("#"):
            tail = " " + tail
        ending = lines[index][len(lines[index].rstrip("\r\n")):]
        lines[index] = f"{match['head']}{text}{tail}{ending}"
    return "".join(lines)


def table_rows(lines: Sequence[str], start: int, count: int, source: str, what: str
               ) -> list[tuple[int, list[str]]]:
    """The ``count`` table rows after line ``start`` (comments and blank lines skipped)."""
    rows: list[tuple[int, list[str]]] = []
    index = start + 1
    while len(rows) < count:
        if index >= len(lines):
            raise SpecfemFileError(source, f"expected {count} {what} rows after line "
                                           f"{start + 1}, found {len(rows)}")
        text = lines[index].strip()
        if text and not text.startswith("#"):
            rows.append((index, text.split()))
        index += 1
    return rows


def parse_number(text: str, source: str, line: int, what: str, kind: type = float) -> Any:
    """A number of a parameter file or table, as ``kind`` (int or float).

    Raises
    ------
    SpecfemFileError
        Not a number (or not an integer), naming ``what`` and the line.
    """
    value = fortran_value(text)
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise SpecfemFileError(source, f"{what}: expected an integer, found {text!r}", line)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecfemFileError(source, f"{what}: expected a number, found {text!r}", line)
    return float(value)
