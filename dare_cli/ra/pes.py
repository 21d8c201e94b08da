"""Thin PEs wrapping the Rapid Assessment's functions; every mapping can run them.

A per-station step never stops the run for one bad station: a failure becomes a record on the
``rejected`` output (station, stage, reason) that the pipeline writes into the run's report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from obspy import Stream

from dare_cli.ra.errors import StationError
from dare_cli.ra.match import match_traces
from engine import GroupBy, ProcessingElement

__all__ = ["MatchStations", "StationStep"]

log = logging.getLogger(__name__)


def rejection(stage: str, station: str, error: BaseException) -> dict[str, str]:
    """The report record of a station that failed a stage.

    ``category`` is ``"quality"`` for a record that failed a quality check (a routine outcome
    of processing), ``"error"`` for bad input or an unexpected exception.
    """
    if isinstance(error, StationError):
        reason, category = error.reason, error.category
    else:
        reason, category = f"unexpected {type(error).__name__}: {error}", "error"
    return {"station": station, "stage": stage, "reason": reason, "category": category}


class StationStep(ProcessingElement):
    """Run ``step(station) -> record`` for each station id received.

    Records go to ``output``; a station whose step raises goes to ``rejected`` with the reason
    (a :class:`StationError`'s own, or the unexpected exception's type and message).
    """

    INPUTS = ("input",)
    OUTPUTS = ("output", "rejected")

    def __init__(self, stage: str, step: Callable[[Any], Any],
                 *, id: str | None = None) -> None:
        super().__init__(id=id or stage)
        self.stage = stage
        self.step = step

    def process(self, port: str | None, data: Any) -> dict[str, Any] | None:
        """Process one station."""
        try:
            record = self.step(data)
        except Exception as error:  # one station never stops the others
            log.warning("%s: %s rejected: %s", self.stage, data, error)
            return {"rejected": rejection(self.stage, data, error)}
        return {"output": record} if record is not None else None


class MatchStations(ProcessingElement):
    """Join observed and synthetic streams of each station (group-by station on both inputs).

    Inputs ``observed`` and ``synthetic`` receive ``(station, Stream)``; when both halves of a
    station have arrived their traces are paired with :func:`match_traces`. At the end, a
    station that only one side delivered is reported, not dropped.
    """

    INPUTS = ()
    OUTPUTS = ("output",)
    STATEFUL = True

    def __init__(self, min_overlap: float = 1.0, *, id: str | None = None) -> None:
        super().__init__(id=id or "match")
        self.add_input("observed", grouping=GroupBy(0))
        self.add_input("synthetic", grouping=GroupBy(0))
        self.min_overlap = min_overlap

    def setup(self) -> None:
        """Start with no station waiting."""
        self.waiting: dict[str, dict[str, Stream]] = {}

    def process(self, port: str | None, data: Any) -> dict[str, Any] | None:
        """Keep one half; pair the station when both are here."""
        station, stream = data
        halves = self.waiting.setdefault(station, {})
        halves[str(port)] = stream
        if len(halves) < 2:
            return None
        del self.waiting[station]
        return {"output": self._pair(station, halves["observed"], halves["synthetic"])}

    def flush(self) -> None:
        """Report stations that only one side delivered."""
        for station in sorted(self.waiting):
            halves = self.waiting[station]
            self.write("output", self._pair(station, halves.get("observed", Stream()),
                                            halves.get("synthetic", Stream())))

    def _pair(self, station: str, observed: Stream, synthetic: Stream) -> dict[str, Any]:
        matches, unmatched = match_traces(observed, synthetic, self.min_overlap)
        return {
            "station": station,
            "pairs": [
                {"component": m.component, "observed": m.observed.id,
                 "synthetic": m.synthetic.id, "overlap_s": round(m.overlap, 3)}
                for m in matches
            ],
            "unmatched": [vars(u) for u in unmatched],
        }
