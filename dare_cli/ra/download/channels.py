"""Per channel: can its response be removed, how much of the window do its traces cover."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any

import numpy as np
import obspy
from obspy import UTCDateTime

__all__ = [
    "ACCELERATION_UNITS",
    "PARTIAL_BELOW",
    "coverage",
    "is_active",
    "matches_codes",
    "response_kind",
    "sensitivity_entry",
]

#: Input units of an accelerometer's sensitivity (normalised: upper case, no spaces).
ACCELERATION_UNITS = ("M/S**2", "M/S^2", "M/S2", "M/SEC**2", "M/SEC2", "M/S/S")
#: A kept trace covering less than this fraction of the window is flagged ``partial_coverage``.
PARTIAL_BELOW = 0.99


def response_kind(channel: Any) -> tuple[str | None, str]:
    """How a channel's instrument response can be removed.

    Returns
    -------
    kind, detail
        ``("full", "")`` with response stages; ``("sensitivity_only", detail)`` for an
        accelerometer (instrument code ``N`` or sensitivity input units m/s**2) whose
        StationXML has an ``InstrumentSensitivity`` but no stages; else ``(None, why)``.
    """
    response = getattr(channel, "response", None)
    if response is None:
        return None, "no response in the station metadata"
    if response.response_stages:
        return "full", ""
    sensitivity = response.instrument_sensitivity
    value = getattr(sensitivity, "value", None)
    if sensitivity is None or value is None or not np.isfinite(value) or value <= 0:
        return None, "no response in the station metadata"
    units = (sensitivity.input_units or "").upper().replace(" ", "")
    code = str(getattr(channel, "code", ""))
    accelerometer = (len(code) == 3 and code[1] == "N") or units in ACCELERATION_UNITS
    if accelerometer and units in ACCELERATION_UNITS:
        frequency = sensitivity.frequency
        return "sensitivity_only", (
            f"kept: sensitivity only ({value:g} {sensitivity.output_units or 'counts'} per "
            f"{sensitivity.input_units}"
            + (f" at {frequency:g} Hz" if frequency is not None else "")
            + "), no response stages: the preprocessing divides by the sensitivity")
    if accelerometer:
        return None, (f"sensitivity only, in {sensitivity.input_units or 'no units'} (not "
                      "m/s**2), no response stages")
    return None, "sensitivity only, no response stages (only accelerometers are accepted so)"


def sensitivity_entry(channel: Any) -> dict[str, Any]:
    """The manifest entry of a channel's ``InstrumentSensitivity``."""
    sensitivity = channel.response.instrument_sensitivity
    return {"value": float(sensitivity.value), "frequency_hz": sensitivity.frequency,
            "input_units": sensitivity.input_units, "output_units": sensitivity.output_units}


def coverage(
    traces: Iterable[obspy.Trace], start: UTCDateTime, end: UTCDateTime
) -> tuple[float, float]:
    """Time of a window covered by traces, counted once where they overlap.

    Each trace covers ``[starttime, endtime + delta)``.

    Parameters
    ----------
    traces
        Segments of one channel.
    start, end
        The window.

    Returns
    -------
    covered_s, fraction
        Covered time (s) and its fraction of the window (0..1).
    """
    length = float(end - start)
    spans = sorted(
        (
            max(float(tr.stats.starttime - start), 0.0),
            min(float(tr.stats.endtime - start) + tr.stats.delta, length),
        )
        for tr in traces
    )
    covered, reach = 0.0, 0.0
    for lo, hi in spans:
        lo = max(lo, reach)
        if hi > lo:
            covered += hi - lo
            reach = hi
    return covered, (covered / length if length > 0 else 0.0)


def matches_codes(code: str, patterns: str) -> bool:
    """Whether a code matches one of comma-separated patterns (``"CI,N?"``)."""
    return any(fnmatch.fnmatchcase(code, p.strip()) for p in patterns.split(","))


def is_active(channel: Any, start: UTCDateTime, end: UTCDateTime) -> bool:
    """Whether a channel's epoch overlaps the window."""
    begins, ends = channel.start_date, channel.end_date
    return (begins is None or begins <= end) and (ends is None or ends >= start)
