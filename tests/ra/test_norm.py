"""Vector norms of a station's components."""

from __future__ import annotations

import numpy as np
import pytest
from obspy import Stream, Trace, UTCDateTime

from dare_cli.ra.norm import horizontal_and_vertical, station_norms, vector_norm

T0 = UTCDateTime("2019-07-06T03:19:53")


def trace(channel: str, data: list[float] | np.ndarray, **header: object) -> Trace:
    stats = {"network": "CI", "station": "CCC", "location": "", "channel": channel,
             "starttime": T0, "sampling_rate": 50.0}
    stats.update(header)
    return Trace(np.asarray(data, dtype=float), header=stats)


def test_known_vectors() -> None:
    e = trace("HNE", [3.0, 0.0, -1.0, 0.0])
    n = trace("HNN", [4.0, 0.0, 2.0, -5.0])
    z = trace("HNZ", [0.0, 0.0, -2.0, 12.0])
    out = vector_norm([e, n, z], "HN3")
    np.testing.assert_allclose(out.data, [5.0, 0.0, 3.0, 13.0], rtol=1e-12)
    assert out.id == "CI.CCC..HN3"
    assert out.stats.starttime == T0 and out.stats.sampling_rate == 50.0
    assert "vector_norm(components=HNE,HNN,HNZ::channel=HN3)" in out.stats.processing[0]


def test_coverage_is_the_smallest() -> None:
    a, b = trace("HNE", [1.0, 2.0]), trace("HNN", [1.0, 2.0])
    a.stats.coverage, b.stats.coverage = 1.0, 0.25
    assert vector_norm([a, b], "HNH").stats.coverage == 0.25
    assert "coverage" not in vector_norm([trace("HNE", [1.0]), trace("HNN", [1.0])], "HNH").stats


@pytest.mark.parametrize(("other", "message"), [
    (trace("HNN", [1.0, 2.0]), "different lengths"),
    (trace("HNN", [1.0, 2.0, 3.0], sampling_rate=100.0), "different sampling rates"),
    (trace("HNN", [1.0, 2.0, 3.0], starttime=T0 + 0.01), "different start times"),
    (trace("HNN", [1.0, 2.0, 3.0], station="WBM"), "different stations"),
])
def test_mismatched_traces_are_rejected(other: Trace, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        vector_norm([trace("HNE", [1.0, 2.0, 3.0]), other], "HNH")
    with pytest.raises(ValueError, match="at least one"):
        vector_norm([], "HNH")


def test_station_norms_of_circular_motion() -> None:
    t = np.arange(500) / 50.0
    w = 2 * np.pi * 0.5
    st = Stream([trace("HNZ", 4.0 * np.ones_like(t)), trace("HNN", 3.0 * np.cos(w * t)),
                 trace("HNE", 3.0 * np.sin(w * t))])
    horizontal, three = station_norms(st)
    assert (horizontal.id, three.id) == ("CI.CCC..HNH", "CI.CCC..HN3")
    np.testing.assert_allclose(horizontal.data, 3.0, rtol=1e-12)
    np.testing.assert_allclose(three.data, 5.0, rtol=1e-12)


def test_components_one_two_and_errors() -> None:
    st = Stream([trace("HN1", [1.0]), trace("HN2", [2.0]), trace("HNZ", [3.0])])
    h1, h2, z = horizontal_and_vertical(st)
    assert (h1.stats.channel, h2.stats.channel, z.stats.channel) == ("HN1", "HN2", "HNZ")
    # two horizontals: their norm only; one component: no norm
    two = station_norms(Stream([trace("HNN", [3.0]), trace("HNE", [4.0])]))
    assert [tr.id for tr in two] == ["CI.CCC..HNH"] and two[0].data[0] == 5.0
    assert len(station_norms(Stream([trace("HNZ", [1.0])]))) == 0
    with pytest.raises(ValueError, match="Z and N/E or 1/2"):
        horizontal_and_vertical(Stream([trace("HNN", [1.0]), trace("HNE", [1.0])]))
    with pytest.raises(ValueError, match="N/E, 1/2 or R/T"):
        station_norms(Stream([trace("HN1", [1.0]), trace("HNE", [1.0]), trace("HNZ", [1.0])]))
    with pytest.raises(ValueError, match="distinct components"):
        station_norms(Stream([trace("HNE", [1.0]), trace("HNE", [1.0])]))
    with pytest.raises(ValueError, match="band/instrument"):
        station_norms(Stream([trace("HNN", [1.0]), trace("HHE", [1.0]), trace("HNZ", [1.0])]))
