"""Vector norms of a station's components: the size of the ground motion whatever its direction.

Channel codes of the norms keep the band and instrument codes of the components (the first two
letters, e.g. ``HN`` for a strong-motion accelerometer, ``HX`` for synthetics) and end with:

- ``H``: the horizontal norm ``sqrt(N^2 + E^2)`` (or ``sqrt(1^2 + 2^2)``), e.g. ``HNH``;
- ``3``: the three-component norm ``sqrt(Z^2 + N^2 + E^2)``, e.g. ``HN3``.

The last letter is thus the "component" of the norm for matching observed with synthetic
traces (as for ``Z``, ``N``, ``E``). The peak of the horizontal norm is the largest horizontal
motion over all directions (RotD100 for peaks).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from obspy import Stream, Trace

from dare_cli import __version__

__all__ = ["HORIZONTAL", "NORM_CODES", "THREE_COMPONENT", "horizontal_and_vertical",
           "split_components", "station_norms", "vector_norm"]

#: Last letter of the channel code of the horizontal norm.
HORIZONTAL = "H"
#: Last letter of the channel code of the three-component norm.
THREE_COMPONENT = "3"
#: Last letters that mark a norm rather than a component.
NORM_CODES = (HORIZONTAL, THREE_COMPONENT)


def vector_norm(traces: Sequence[Trace], channel: str) -> Trace:
    """Sample-by-sample Euclidean norm ``sqrt(sum_i x_i(t)^2)`` of several components.

    Parameters
    ----------
    traces
        Components of one station, all with the same start time (within 1% of a sample),
        sampling rate and number of samples, in the same unit (e.g. m/s).
    channel
        Channel code of the result (e.g. ``"HNH"``).

    Returns
    -------
    Trace
        The norm (same unit as the components), with the network, station and location of
        the components, ``stats.coverage`` the smallest of theirs (when they have one), and
        a ``stats.processing`` entry naming the components.

    Raises
    ------
    ValueError
        No traces, or traces of different stations, start times, rates or lengths.
    """
    if not traces:
        raise ValueError("vector_norm needs at least one trace")
    first = traces[0]
    ids = ", ".join(tr.id for tr in traces)
    for tr in traces[1:]:
        for key in ("network", "station", "location"):
            if tr.stats[key] != first.stats[key]:
                raise ValueError(f"vector_norm: traces of different {key}s: {ids}")
        if tr.stats.sampling_rate != first.stats.sampling_rate:
            raise ValueError(f"vector_norm: different sampling rates ({ids}: "
                             f"{[t.stats.sampling_rate for t in traces]} Hz)")
        if tr.stats.npts != first.stats.npts:
            raise ValueError(f"vector_norm: different lengths ({ids}: "
                             f"{[t.stats.npts for t in traces]} samples)")
        if abs(tr.stats.starttime - first.stats.starttime) > 0.01 * first.stats.delta:
            raise ValueError(f"vector_norm: different start times ({ids}: "
                             f"{[str(t.stats.starttime) for t in traces]})")
    data = np.sqrt(np.sum([np.square(np.asarray(tr.data, dtype=np.float64))
                           for tr in traces], axis=0))
    out = Trace(data=data, header={
        "network": first.stats.network, "station": first.stats.station,
        "location": first.stats.location, "channel": channel,
        "starttime": first.stats.starttime, "sampling_rate": first.stats.sampling_rate,
    })
    coverages = [tr.stats.coverage for tr in traces if "coverage" in tr.stats]
    if coverages:
        out.stats.coverage = min(coverages)
    out.stats.processing = [f"dare {__version__}: vector_norm(components="
                            f"{','.join(tr.stats.channel for tr in traces)}::channel={channel})"]
    return out


def split_components(st: Stream) -> tuple[list[Trace], Trace | None]:
    """The horizontal components (at most two) and the vertical one of a station, if any.

    Parameters
    ----------
    st
        One to three traces of one station whose channel codes share band and instrument
        codes; horizontals end with ``N``/``E`` or ``1``/``2`` (or ``R``/``T``), the vertical
        with ``Z``.

    Returns
    -------
    horizontals, vertical
        Horizontals in ``N, E`` / ``1, 2`` / ``R, T`` order; ``None`` without a vertical.

    Raises
    ------
    ValueError
        No trace, a repeated component, an unknown component code, more than two
        horizontals, or different band/instrument codes.
    """
    ids = ", ".join(tr.id for tr in st) or "no traces"
    by_component = {tr.stats.channel[-1:]: tr for tr in st}
    if not st or len(by_component) != len(st):
        raise ValueError(f"need one to three distinct components, got {ids}")
    if len({tr.stats.channel[:2] for tr in st}) != 1:
        raise ValueError(f"components with different band/instrument codes: {ids}")
    unknown = set(by_component) - set("ZNE12RT")
    if unknown:
        raise ValueError(f"unknown component code(s) {sorted(unknown)} in {ids}")
    horizontals = [by_component[c] for c in "NE12RT" if c in by_component]
    letters = {tr.stats.channel[-1] for tr in horizontals}
    if len(horizontals) > 2 or (len(horizontals) == 2
                                and letters not in ({"N", "E"}, {"1", "2"}, {"R", "T"})):
        raise ValueError(f"horizontal components must be one of N/E, 1/2 or R/T, not {ids}")
    return horizontals, by_component.get("Z")


def horizontal_and_vertical(st: Stream) -> tuple[Trace, Trace, Trace]:
    """The two horizontal components and the vertical one of a three-component station.

    Raises
    ------
    ValueError
        Not exactly one vertical and two horizontal components (of the pairs N/E or 1/2).
    """
    ids = ", ".join(tr.id for tr in st) or "no traces"
    horizontals, vertical = split_components(st)
    codes = {tr.stats.channel[-1] for tr in horizontals}
    if vertical is None or codes not in ({"N", "E"}, {"1", "2"}):
        raise ValueError(f"need components Z and N/E or 1/2, got {ids}")
    return horizontals[0], horizontals[1], vertical


def station_norms(st: Stream) -> Stream:
    """Horizontal and three-component norms of one station's motion, where it has them.

    Parameters
    ----------
    st
        The components of one quantity (ACC, VEL or DISP) of one station, on a common time
        grid.

    Returns
    -------
    Stream
        The horizontal norm (channel ``<band><instrument>H``) when the station has two
        horizontals, and the three-component norm (``<band><instrument>3``) when it also has
        a vertical; empty for a single component.

    Raises
    ------
    ValueError
        The components are not those of one station, or not on a common grid.
    """
    horizontals, vertical = split_components(st)
    code = st[0].stats.channel[:2]
    norms = Stream()
    if len(horizontals) == 2:
        norms.append(vector_norm(horizontals, code + HORIZONTAL))
        if vertical is not None:
            norms.append(vector_norm([vertical, *horizontals], code + THREE_COMPONENT))
    return norms
