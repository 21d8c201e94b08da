"""Safe file names from seismological codes: SEED codes are checked before any path is built.

File names of the Rapid Assessment are built from data: ``NET.STA.xml``,
``NET.STA.LOC.CHA.mseed``, ``NET.STA.ACC.mseed``... The codes come from StationXML and
miniSEED files that anybody can write, and obspy reads and writes codes such as ``/``,
``..`` or ``../x`` without complaint. A name built from such codes could climb out of the
run folder (``stations/../x.xml``) or be absolute (``waveforms//.STA..HNZ.mseed``). Every
per-station path is therefore made by :func:`station_path`, which checks the codes against the
rules below and that the path stays inside the run folder, before anything is created.

Code rules (SEED 2.4 lengths, FDSN Source Identifier characters)
----------------------------------------------------------------
=========  ========  ==========================================
code       length    characters
=========  ========  ==========================================
network    1-2       letters, digits
station    1-5       letters, digits, ``-``
location   0-2       letters, digits, ``-`` (not ``--``)
channel    3         letters, digits
=========  ========  ==========================================

The lengths are those of SEED 2.4 (the fixed header of a miniSEED 2 record has no room for
more); the characters are those of the FDSN Source Identifiers specification (v1.0, "Definition
of identifiers": uppercase ASCII letters and digits, and the dash in station and location
codes; the location ``--`` is forbidden there as it conflicts with the web services' notation
of the empty location). Lowercase ASCII letters are tolerated (older data carry them; they are
as safe in a file name). Nothing else passes: no ``.``, ``/``, backslash, NUL, whitespace, glob
characters or non-ASCII letters, so ``..``, a leading ``.`` and absolute paths cannot arise.
"""

from __future__ import annotations

import re
from pathlib import Path

from dare_cli.ra.errors import RAError, StationError

__all__ = [
    "CODE_RULES",
    "OutsideRunFolderError",
    "UnsafeNameError",
    "check_code",
    "check_station_id",
    "contained_path",
    "is_station_id",
    "station_path",
]

#: ``kind -> (shortest, longest, pattern of one character, what the rule says)``.
CODE_RULES: dict[str, tuple[int, int, str, str]] = {
    "network": (1, 2, "[A-Za-z0-9]", "1-2 letters or digits"),
    "station": (1, 5, "[A-Za-z0-9-]", "1-5 letters, digits or '-'"),
    "location": (0, 2, "[A-Za-z0-9-]", "0-2 letters, digits or '-', not '--'"),
    "channel": (3, 3, "[A-Za-z0-9]", "3 letters or digits"),
}
_PATTERNS = {
    kind: re.compile(rf"{char}{{{low},{high}}}", re.ASCII)
    for kind, (low, high, char, _) in CODE_RULES.items()
}
#: What may follow the codes in a file name: ``.xml``, ``.ACC.mseed``, ``.mseed.json``...
_SUFFIX = re.compile(r"(\.[A-Za-z0-9_-]+)*", re.ASCII)


class UnsafeNameError(StationError):
    """A station or trace whose codes cannot be part of a file name; the station is rejected.

    ``station`` is the id as given (``repr``-quoted in the message), ``reason`` says which code
    breaks which rule.
    """


class OutsideRunFolderError(RAError):
    """A path would be written or removed outside the run folder."""


def check_code(kind: str, code: str) -> None:
    """Check one SEED code against the rules of its kind.

    Parameters
    ----------
    kind
        ``"network"``, ``"station"``, ``"location"`` or ``"channel"``.
    code
        The code (the empty string is the empty location code).

    Raises
    ------
    ValueError
        The code breaks the rule; the message quotes the code and states the rule.
    """
    if kind not in CODE_RULES:
        raise ValueError(f"unknown kind of code {kind!r}; kinds: {', '.join(CODE_RULES)}")
    if not isinstance(code, str) or not _PATTERNS[kind].fullmatch(code) or (
        kind == "location" and code == "--"
    ):
        raise ValueError(f"{kind} code {code!r} is not a SEED {kind} code "
                         f"({CODE_RULES[kind][3]})")


def check_station_id(station_id: str) -> tuple[str, ...]:
    """Split and check ``NET.STA`` or a trace id ``NET.STA.LOC.CHA``.

    Returns
    -------
    tuple of str
        The two or four codes.

    Raises
    ------
    UnsafeNameError
        Neither form, or a code breaks its rule.
    """
    parts = station_id.split(".") if isinstance(station_id, str) else []
    if len(parts) == 2:
        kinds: tuple[str, ...] = ("network", "station")
    elif len(parts) == 4:
        kinds = ("network", "station", "location", "channel")
    else:
        raise UnsafeNameError(repr(station_id),
                              "not a station id NET.STA or a trace id NET.STA.LOC.CHA")
    try:
        for kind, code in zip(kinds, parts, strict=True):
            check_code(kind, code)
    except ValueError as error:
        raise UnsafeNameError(repr(station_id), str(error)) from None
    return tuple(parts)


def is_station_id(station_id: str) -> bool:
    """Whether ``station_id`` is a valid ``NET.STA`` or ``NET.STA.LOC.CHA``."""
    try:
        check_station_id(station_id)
    except UnsafeNameError:
        return False
    return True


def contained_path(path: Path, root: Path) -> Path:
    """Return ``path`` if it stays inside ``root`` once symbolic links are resolved.

    Call it before creating, writing or removing ``path``: a folder inside the run folder
    that is a symbolic link to elsewhere is caught, as are ``..`` components.

    Raises
    ------
    OutsideRunFolderError
        ``path`` resolves outside ``root``.
    """
    resolved_root = Path(root).resolve()
    resolved = Path(path).resolve()
    if resolved != resolved_root and not resolved.is_relative_to(resolved_root):
        raise OutsideRunFolderError(
            f"refusing to write {path}: it resolves to {resolved}, outside {resolved_root}")
    return Path(path)


def station_path(folder: Path, station_id: str, suffix: str = "", *,
                 root: Path | None = None) -> Path:
    """The file ``folder/<station_id><suffix>``, built only from checked codes.

    The one way the stages make a per-station path: the codes are checked (see the module
    docstring), the suffix must be dot-separated letters, digits, ``_`` or ``-``, and the
    path must resolve inside ``root`` (the run folder; default ``folder``). Nothing is created.

    Parameters
    ----------
    folder
        Folder of the file (e.g. ``context.out_dir / "observed"``).
    station_id
        ``NET.STA`` or ``NET.STA.LOC.CHA``.
    suffix
        What follows the id: ``".xml"``, ``".ACC.mseed"``, ``".png"``...
    root
        The folder nothing may leave (the run folder); default ``folder``.

    Returns
    -------
    pathlib.Path
        ``folder / (station_id + suffix)``.

    Raises
    ------
    UnsafeNameError
        A code or the suffix is unsafe, or the path resolves outside ``root`` (e.g. through a
        symbolic link); a :class:`~dare_cli.ra.errors.StationError`, so a per-station step
        rejects that station and the others go on.
    """
    check_station_id(station_id)
    if not isinstance(suffix, str) or not _SUFFIX.fullmatch(suffix):
        raise UnsafeNameError(station_id, f"unsafe file name suffix {suffix!r}")
    path = Path(folder) / f"{station_id}{suffix}"
    try:
        contained_path(path, Path(root) if root is not None else Path(folder))
    except OutsideRunFolderError as error:
        raise UnsafeNameError(station_id, str(error)) from None
    return path
