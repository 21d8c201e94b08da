"""Matching observed with synthetic traces by network, station, component and window."""

from __future__ import annotations

import numpy as np
from obspy import Stream, Trace, UTCDateTime

from dare_cli.ra.match import match_traces

T0 = UTCDateTime(2019, 7, 6, 3, 19, 53)


def trace(net: str, sta: str, cha: str, start: float = 0.0, seconds: float = 100.0) -> Trace:
    header = {"network": net, "station": sta, "channel": cha, "sampling_rate": 10.0,
              "starttime": T0 + start}
    return Trace(np.zeros(int(seconds * 10) + 1), header=header)


def test_pairs_by_network_station_and_component():
    observed = Stream([trace("CI", "CCC", c) for c in ("HNE", "HNN", "HNZ")])
    observed += trace("NC", "CCC", "HNZ")  # same station code, other network: not a match
    synthetic = Stream([trace("CI", "CCC", c) for c in ("HXZ", "HXN", "HXE")])
    matches, unmatched = match_traces(observed, synthetic)
    assert [(m.station, m.component, m.observed.id, m.synthetic.id) for m in matches] == [
        ("CI.CCC", "E", "CI.CCC..HNE", "CI.CCC..HXE"),
        ("CI.CCC", "N", "CI.CCC..HNN", "CI.CCC..HXN"),
        ("CI.CCC", "Z", "CI.CCC..HNZ", "CI.CCC..HXZ"),
    ]
    assert [(u.trace_id, u.kind, u.reason) for u in unmatched] == [
        ("NC.CCC..HNZ", "observed", "no synthetic for component Z of NC.CCC"),
    ]


def test_unmatched_synthetics_and_windows_are_reported():
    observed = Stream([trace("CI", "MPM", "HNZ", start=0, seconds=60),
                       trace("CI", "MPM", "HNN", start=500, seconds=60)])
    synthetic = Stream([trace("CI", "MPM", c, seconds=150) for c in ("HXZ", "HXN", "HXE")])
    matches, unmatched = match_traces(observed, synthetic)
    assert [(m.component, m.overlap) for m in matches] == [("Z", 60.0)]
    reasons = {u.trace_id: u.reason for u in unmatched}
    assert reasons == {
        "CI.MPM..HNN": "time window does not overlap its synthetic CI.MPM..HXN (0.0 s < 1.0 s)",
        "CI.MPM..HXN": "no observed trace for component N of CI.MPM",
        "CI.MPM..HXE": "no observed trace for component E of CI.MPM",
    }
