"""Errors of the Rapid Assessment: per-station failures are recorded and the others go on."""

from __future__ import annotations

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
    """

    def __init__(self, station: str, reason: str) -> None:
        super().__init__(f"{station}: {reason}")
        self.station = station
        self.reason = reason

    def __reduce__(self) -> tuple[type[StationError], tuple[str, str]]:
        return (StationError, (self.station, self.reason))
