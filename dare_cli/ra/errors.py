"""Errors of the Rapid Assessment: per-station failures are recorded and the others go on."""

from __future__ import annotations

from typing import Any

__all__ = ["ConfigError", "RAError", "StationError"]


class RAError(Exception):
    """Base class of the Rapid Assessment's errors."""


class ConfigError(RAError):
    """A configuration value or key is wrong; the message names the key and the file."""


class StationError(RAError):
    """One station (or one of its traces) cannot be processed.

    Parameters
    ----------
    station
        ``NET.STA`` (or a full trace id ``NET.STA.LOC.CHA``).
    reason
        What is wrong, for the run's report.
    quality
        The data failed a quality check (signal-to-noise ratio, clipping, a gap...), the
        routine outcome of processing real records, as opposed to an error (unreadable or
        inconsistent input): the report's ``category`` is ``"quality"`` or ``"error"``.
    """

    def __init__(self, station: str, reason: str, *, quality: bool = False) -> None:
        super().__init__(f"{station}: {reason}")
        self.station = station
        self.reason = reason
        self.quality = quality

    @property
    def category(self) -> str:
        """``"quality"`` or ``"error"``."""
        return "quality" if self.quality else "error"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (_station_error, (self.station, self.reason, self.quality))


def _station_error(station: str, reason: str, quality: bool) -> StationError:
    return StationError(station, reason, quality=quality)
