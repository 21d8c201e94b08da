"""Damaged miniSEED found, not silently read: truncated files, broken headers, undecodable data.

obspy (libmseed) reads damaged miniSEED without an error in three common cases:

* a file cut short in its last record (a copy stopped half-way): the partial record is
  dropped silently, and the trace simply ends earlier;
* a record whose fixed header is corrupted: libmseed skips it in 128-byte steps with a
  warning ("Not a SEED record. Will skip bytes ..."), leaving a gap; a corrupted day of year
  (e.g. 999) even moves the record to another year without a word;
* data that do not decode: an error, or only a warning when the Steim integrity check fails.

:func:`check_framing` walks the records of a file with libmseed's own record detection
(``ms_detect``, through obspy's binding): each record's declared length (blockette 1000) must
fit in the file, and its header's start time must be a valid date. :func:`read_checked` reads
with obspy and turns libmseed's warnings and errors into :class:`DamagedFileError` with
libmseed's own message.
"""

from __future__ import annotations

import re
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import obspy
from obspy import Stream
from obspy.io.mseed import InternalMSEEDError, InternalMSEEDWarning
from obspy.io.mseed.headers import clibmseed

__all__ = ["Damage", "DamagedFileError", "check_framing", "read_checked"]

#: libmseed looks for blockette 1000 and the next header within this many bytes.
_DETECT_WINDOW = 1 << 16
_FIXED_HEADER = 48


@dataclass(frozen=True)
class Damage:
    """What is wrong with a miniSEED file, and where.

    Attributes
    ----------
    offset
        Byte offset of the damaged record.
    detail
        One line, e.g. ``"truncated: 2 of 512 bytes of the last record (at byte 3584)"``.
    station
        ``NET.STA`` of the damaged record when its header names one, else ``None``.
    """

    offset: int
    detail: str
    station: str | None = None


class DamagedFileError(Exception):
    """A miniSEED file that is damaged: ``str(error)`` is ``"<path>: <detail>"``."""

    def __init__(self, path: Path, detail: str, station: str | None = None) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = Path(path)
        self.detail = detail
        self.station = station


def check_framing(path: Path) -> Damage | None:
    """Walk the records of a miniSEED file; report the first damaged one.

    Parameters
    ----------
    path
        A miniSEED (2.x) file.

    Returns
    -------
    Damage or None
        ``None`` when every record is whole and its header valid.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        return None
    data = np.memmap(path, dtype=np.int8, mode="r")
    try:
        return _walk(data, size)
    finally:
        del data


def read_checked(path: Path, known: Damage | None = None, **kwargs: Any) -> Stream:
    """``obspy.read(path, format="MSEED", **kwargs)``, raising on what libmseed only warns.

    ``known`` is a truncation already found and attributed to another station of the file:
    libmseed's warning about that last record is then expected, and not raised again.

    Raises
    ------
    DamagedFileError
        libmseed skipped bytes, failed an integrity check, or could not decode a record; the
        detail is libmseed's message (first two of them).
    """
    path = Path(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InternalMSEEDWarning)
        try:
            stream = obspy.read(str(path), format="MSEED", **kwargs)
        except InternalMSEEDError as error:
            raise DamagedFileError(path, _libmseed_message(str(error))) from error
    problems = [str(w.message) for w in caught if issubclass(w.category, InternalMSEEDWarning)]
    problems = [p for p in problems if not _skips_padding(path, p)]
    if known is not None and known.detail.startswith("truncated"):
        tail = f"Last record only has {path.stat().st_size - known.offset} byte(s)"
        problems = [p for p in problems if tail not in p]
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DamagedFileError(path, f"libmseed: {problems[0].strip()}{more}")
    for warning in caught:  # the others, as the caller would have seen them
        if not issubclass(warning.category, InternalMSEEDWarning):
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
    return stream


# -- the walk ---------------------------------------------------------------------------------


def _walk(data: np.ndarray, size: int) -> Damage | None:
    offset, previous = 0, 0
    while offset < size:
        rest = size - offset
        window = data[offset:offset + min(rest, _DETECT_WINDOW)]
        try:
            length = int(clibmseed.ms_detect(window, len(window)))
        except InternalMSEEDError as error:
            return Damage(offset, f"corrupted record header at byte {offset}: "
                                  f"{_libmseed_message(str(error))}", _codes(window))
        if length <= 0 and _is_padding(data[offset:]):
            return None  # NUL or blank padding after the last record
        if length <= 0 and previous and rest < previous:
            return Damage(offset, f"truncated: {rest} of {previous} bytes of the last record "
                                  f"(at byte {offset})", _codes(window))
        if length < 0:
            return Damage(offset, f"corrupted record header at byte {offset}: not a miniSEED "
                                  "record", None)
        if length == 0:  # a valid header without blockette 1000 and no record after it
            length = previous or rest
        problem = _header_problem(window)
        if problem:
            return Damage(offset, f"corrupted record header at byte {offset}: {problem}",
                          _codes(window))
        if length > rest:
            return Damage(offset, f"truncated: {rest} of {length} bytes of the last record "
                                  f"(at byte {offset})", _codes(window))
        offset += length
        previous = length
    return None


def _skips_padding(path: Path, message: str) -> bool:
    """Whether a libmseed "Will skip bytes A to B" warning is about NUL or blank padding."""
    match = re.search(r"Will skip bytes (\d+) to (\d+)", message)
    if match is None:
        return False
    start, end = int(match.group(1)), int(match.group(2))
    with open(path, "rb") as handle:
        handle.seek(start)
        skipped = np.frombuffer(handle.read(end - start + 1), dtype=np.int8)
    return len(skipped) > 0 and _is_padding(skipped)


def _is_padding(tail: np.ndarray) -> bool:
    return bool(np.all((tail == 0) | (tail == 0x20)))


def _header_problem(record: np.ndarray) -> str | None:
    """Why the start time of a record's fixed header is not a date, or ``None``."""
    if len(record) < _FIXED_HEADER:
        return None
    raw = record[20:30].tobytes()
    for order in (">", "<"):
        year, day, hour, minute, second, _, fraction = struct.unpack(f"{order}HHBBBBH", raw)
        if 1900 <= year <= 2100 and 1 <= day <= 366:
            if hour > 23 or minute > 59 or second > 60 or fraction > 10000:
                return (f"start time {year}-{day:03d} {hour:02d}:{minute:02d}:{second:02d}"
                        f".{fraction:04d} is not a time")
            return None
    year, day = struct.unpack(">HH", raw[:4])
    return f"start time year {year}, day of year {day} is not a date"


def _codes(record: np.ndarray) -> str | None:
    """``NET.STA`` named by a record's header (bytes 8-20), when it is printable."""
    if len(record) < 20:
        return None
    raw = record[8:20].tobytes()
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    station, network = text[0:5].strip(), text[10:12].strip()
    if not station or not network or not (station + network).isalnum():
        return None
    return f"{network}.{station}"


def _libmseed_message(text: str) -> str:
    """One line of libmseed's messages, without obspy's "Encountered N error(s)" preamble."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and lines[0].startswith("Encountered"):
        lines = lines[1:]
    if not lines:
        return text.strip() or "unreadable"
    more = f" (+{len(lines) - 2} more)" if len(lines) > 2 else ""
    return "libmseed: " + "; ".join(lines[:2]) + more
