"""Errors of the climate-index pipeline: run failures and bad requests."""

from __future__ import annotations

__all__ = ["ClimateError", "ClimateUsageError"]


class ClimateError(Exception):
    """A climate run failed; the message names the file, variable or index concerned."""


class ClimateUsageError(ClimateError):
    """The request is wrong (unknown index, missing variable, bad unit, time range outside data).

    The command line reports it as a usage error (exit status 2).
    """
