"""Pair each observed trace with its synthetic: same network, station, component and window.

This is the seed's Match/Join step. The pipeline runs it as a PE whose two inputs (observed and
synthetic) are grouped by station, so both halves of a station meet in the same instance; the
pairing itself is this pure function. Unmatched traces are returned with a reason, never
dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from obspy import Stream, Trace

__all__ = ["Match", "Unmatched", "component_of", "match_traces", "station_key"]


def station_key(trace: Trace) -> str:
    """``NET.STA`` of a trace."""
    return f"{trace.stats.network}.{trace.stats.station}"


def component_of(trace: Trace) -> str:
    """Component code: the last letter of the channel (``Z``, ``N``, ``E``, or a norm code)."""
    return str(trace.stats.channel)[-1:]


@dataclass(frozen=True)
class Match:
    """An observed trace and the synthetic of the same station and component."""

    station: str
    component: str
    observed: Trace
    synthetic: Trace
    overlap: float  # seconds of common time window


@dataclass(frozen=True)
class Unmatched:
    """A trace without a partner, and why."""

    trace_id: str
    kind: str  # "observed" or "synthetic"
    reason: str


def _overlap(a: Trace, b: Trace) -> float:
    start = max(a.stats.starttime, b.stats.starttime)
    end = min(a.stats.endtime, b.stats.endtime)
    return max(0.0, float(end - start))


def match_traces(
    observed: Stream, synthetic: Stream, min_overlap: float = 1.0
) -> tuple[list[Match], list[Unmatched]]:
    """Pair observed and synthetic traces by network, station and component.

    Parameters
    ----------
    observed, synthetic
        Traces of any number of stations.
    min_overlap
        Seconds the two time windows must share.

    Returns
    -------
    matches, unmatched
        Sorted by station and component.
    """
    synthetic_by_key: dict[tuple[str, str], list[Trace]] = {}
    for trace in synthetic:
        synthetic_by_key.setdefault((station_key(trace), component_of(trace)), []).append(trace)
    matches: list[Match] = []
    unmatched: list[Unmatched] = []
    used: set[int] = set()
    for trace in sorted(observed, key=lambda t: (station_key(t), component_of(t), t.id)):
        key = (station_key(trace), component_of(trace))
        candidates = [t for t in synthetic_by_key.get(key, []) if id(t) not in used]
        if not candidates:
            unmatched.append(Unmatched(trace.id, "observed",
                                       f"no synthetic for component {key[1]} of {key[0]}"))
            continue
        best = max(candidates, key=lambda t: _overlap(trace, t))
        overlap = _overlap(trace, best)
        if overlap < min_overlap:
            unmatched.append(Unmatched(
                trace.id, "observed",
                f"time window does not overlap its synthetic {best.id} "
                f"({overlap:.1f} s < {min_overlap:.1f} s)",
            ))
            continue
        used.add(id(best))
        matches.append(Match(key[0], key[1], trace, best, overlap))
    for trace in sorted(synthetic, key=lambda t: t.id):
        if id(trace) not in used:
            unmatched.append(Unmatched(trace.id, "synthetic",
                                       f"no observed trace for component "
                                       f"{component_of(trace)} of {station_key(trace)}"))
    return matches, unmatched
