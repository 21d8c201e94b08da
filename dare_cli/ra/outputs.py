"""Outputs of the Rapid Assessment: a ShakeMap-style station list (GeoJSON) and a PGM table (CSV).

The pipeline hands over plain rows (mappings); this module documents their keys, checks them,
converts units and writes the files atomically (a temporary file in the same folder, then
:func:`os.replace`), so a reader never sees half a file.

Motion rows
-----------
One mapping per station, channel and kind. Keys (other keys are ignored):

``station``      ``"NET.STA"``
``network``      network code, ``"CI"``
``code``         station code, ``"CCC"``
``name``         site name (optional; the station code when missing or empty)
``latitude``     degrees north (WGS84)
``longitude``    degrees east
``distance_km``  epicentral distance, km
``location``     SEED location code (optional; ``""`` when missing)
``channel``      a SEED channel whose last letter is its orientation (``"HNE"``, ``"HNN"``,
                 ``"HN1"``, ``"HNR"``... horizontal; ``"HNZ"`` vertical), or a derived channel:
                 ``"maxh"`` (the greater of the two horizontals), ``"??H"`` (horizontal vector
                 norm, e.g. ``"HNH"``) or ``"??3"`` (three-component vector norm, e.g.
                 ``"HN3"``). NB: ``?3`` is therefore never read as a SEED orientation code.
``kind``         ``"observed"``, ``"synthetic"`` or ``"gmpe"`` (the median a ground-motion model
                 predicts, channel ``rotd50`` (or the model's component), with
                 ``sigma_log10``: ``{metric: standard deviation of log10}`` and ``gmpe``:
                 ``{"model", "component", "vs30", "rjb_km", "rrup_km", "outside_range"}``)
``band``         ``"record"`` (the observed record in its own band, at its own rate: what a
                 network reports) or ``"common"`` (observed and synthetic copies in the band
                 they share, on one time grid: what the misfits compare); default ``"record"``
``freqmin``, ``freqmax``  the band-pass corners (Hz) of the row (optional)
``flags``        names of the record's flags (optional): ``partial``, ``clipped``,
                 ``sensitivity_only``, ``anomalous``, ``snr_limited``
``unusable``     metrics outside the record's usable band (optional), e.g. ``["psa3"]``
``pga``          peak ground acceleration, m/s²
``pgv``          peak ground velocity, m/s
``pgd``          peak ground displacement, m
``psa<T>``       5 %-damped pseudo-spectral acceleration at period ``T`` seconds, m/s²
                 (``"psa0.3"``, ``"psa1.0"``, ``"psa3.0"``; ``"psa1"`` is read as ``"psa1.0"``)

A metric may be missing, ``None`` or NaN when it was not computed.

Residual rows
-------------
Observed and synthetic RotD50 against the ground-motion model: ``station``, ``kind``
(``observed`` or ``synthetic``), ``band``, ``metric``, ``log10`` = log10(motion / predicted
median) and ``normalized`` = ``log10`` / the prediction's log10 sigma.

Misfit rows
-----------
``station``, ``channel``, ``metric`` (``"pga"``, ``"pgv"``, ``"pgd"`` or ``"psa<T>"``) and
``misfit`` = log10(synthetic / observed), dimensionless, of the ``"common"`` band rows (``band``
may say so). Optional: ``location`` (when missing the
misfit applies to the channel at any location), ``latitude`` and ``longitude`` (used by the
misfit map when no motion rows are given). A motion row takes the misfits of its own channel,
or else those of the single channel with its component (last letter, or ``maxh``): a
synthetic ``HXE`` row shares the misfits given for the observed ``HNE``. A misfit that fits no
motion row is an error.

Event and rejected stations
---------------------------
The event is an :class:`EventInfo` or a mapping with ``id``, ``time`` (or ``origin_time``; ISO
string, :class:`~obspy.UTCDateTime` or :class:`datetime.datetime`), ``latitude``, ``longitude``,
``depth_km`` and ``magnitude`` (may be ``None``). Rejected stations are mappings
``{"station": "NET.STA", "reason": "...", "stage": "..."}`` (``stage`` optional),
``(station, reason)`` pairs or :class:`~dare_cli.ra.errors.StationError` instances.

The station list (``stationlist.json``)
---------------------------------------
The layout of USGS ShakeMap 4's ``stationlist.json``, as read by shakelib's
``StationList.loadFromFiles``: a FeatureCollection of Point features ``[lon, lat]`` with
``id`` ``"NET.STA"`` and properties ``code``, ``name``, ``network``, ``source``, ``distance``
(km), ``pga`` (%g) and ``pgv`` (cm/s) -- the observed maxima over the horizontal channels -- and
``channels``: ``[{"name": "LOC.CHA", "amplitudes": [{"name": "pga" | "pgv" | "sa(0.3)" | ...,
"value", "units": "%g" | "cm/s", "flag": "0"}]}]``, one entry per observed SEED channel (an
empty location is written ``"--"``), from the ``record`` rows. Amplitudes that were not computed
are left out, not written as null. An amplitude's ``flag`` is ``"0"`` for a sound one, else the
letters ShakeMap knows (shakelib's ``station.py``; ShakeMap does not use flagged amplitudes):
``I`` incomplete record (``partial``), ``G`` glitch (``clipped``, or ``snr_limited``: a PSA
period outside the band the signal-to-noise ratio allows), ``T`` outlier (``anomalous``),
``M`` for review (``sensitivity_only``); ``reasons`` lists dare's names. Our extensions (ignored
by ShakeMap):

- ``pgd``: observed maximum horizontal PGD, cm; each channel has ``extra_amplitudes`` with
  ``pgd`` (cm), because ShakeMap readers reject an unknown ``pgd`` amplitude;
- ``derived_channels``: the derived channels (``maxh``, norms), same structure as ``channels``,
  kept apart so that ShakeMap never takes a norm for a component;
- ``synthetic``: ``{"pga", "pgv", "pgd", "channels", "derived_channels"}`` of the synthetics
  (``common`` band);
- ``observed_common``: the same for the observed ``common`` band rows, which the misfits compare;
- ``misfit``: ``{"units": "log10(synthetic/observed)", "channels": [{"name": "LOC.CHA",
  "values": {"pga": ..., "sa(0.3)": ...}}]}``;
- ``gmpe``: the baseline, ``{"model", "component", "vs30", "rjb_km", "rrup_km",
  "outside_range", "amplitudes": [{"name", "value", "units", "log10_sigma"}], "residuals":
  {"units": "log10(motion/median)", "observed": {"pga": ...}, "synthetic": {...}},
  "normalized_residuals": {...}}`` (absent when the pgm stage computed none).

Rejected stations are not features (ShakeMap would ingest any feature as data, and a rejected
station may have no coordinates): they are listed in the top-level foreign member
``rejected``: ``[{"id": "NET.STA", "reason": "...", "stage": "..."}]``, and motion rows of a
rejected station are left out of the features. The event is the top-level member ``event``.

The PGM table (``pgm.csv``)
---------------------------
One line per station, location, channel, kind and band, sorted by these five keys; columns
:data:`CSV_BASE_COLUMNS`, then ``psa<T>_m_s2`` for every period found (ascending), then
``misfit_<metric>_log10`` for ``pga``, ``pgv``, ``pgd`` and each period (the misfit of the
station/component, on both its observed and synthetic lines). Floats are written with
``repr`` (shortest round-trip form), missing values as empty fields, so the same rows give a
byte-identical file whatever their order.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import geojson
from obspy import UTCDateTime
from scipy.constants import g as STANDARD_GRAVITY

from dare_cli.ra.errors import StationError
from engine.files import write_atomic

__all__ = [
    "CSV_BASE_COLUMNS",
    "KINDS",
    "STANDARD_GRAVITY",
    "EventInfo",
    "Rejection",
    "StationMotion",
    "atomic_write",
    "canonical_metric",
    "channel_role",
    "component",
    "percent_g",
    "pga_summary",
    "psa_period",
    "station_peaks",
    "write_pgm_csv",
    "write_stationlist",
]

#: Kinds of motion rows: recorded, simulated, predicted by a ground-motion model.
KINDS = ("observed", "synthetic", "gmpe")
#: Bands of motion rows: the record's own, or the band observed and synthetic share.
BANDS = ("record", "common")
#: ShakeMap's amplitude flag letter of each dare flag (shakelib: I incomplete, G glitch,
#: T outlier, M manual review).
SHAKEMAP_FLAGS = {"partial": "I", "clipped": "G", "snr_limited": "G", "anomalous": "T",
                  "sensitivity_only": "M"}
#: Metrics other than spectral accelerations, in output order.
BASE_METRICS = ("pga", "pgv", "pgd")
#: The first columns of the PGM table (units in the names).
CSV_BASE_COLUMNS = (
    "station", "network", "code", "location", "channel", "kind", "band", "name",
    "latitude_deg", "longitude_deg", "distance_km", "freqmin_hz", "freqmax_hz", "flags",
    "pga_m_s2", "pgv_m_s", "pgd_m",
)
#: Units written in the station list, per metric family.
PERCENT_G, CM_S, CM = "%g", "cm/s", "cm"
MISFIT_UNITS = "log10(synthetic/observed)"

_PSA_KEY = re.compile(r"^psa(\d+(?:\.\d*)?|\.\d+)$")


# -- typed structures ----------------------------------------------------------------------------
@dataclass(frozen=True)
class EventInfo:
    """The event an assessment is about.

    Attributes
    ----------
    id
        Event id (e.g. ComCat's ``"ci38457511"``).
    time
        Origin time, ISO 8601 UTC string (``"2019-07-06T03:19:53.000000Z"``).
    latitude, longitude
        Epicentre, degrees.
    depth_km
        Hypocentral depth, km.
    magnitude
        Magnitude, or ``None`` when unknown.
    """

    id: str
    time: str
    latitude: float
    longitude: float
    depth_km: float
    magnitude: float | None = None

    @classmethod
    def coerce(cls, event: EventInfo | Mapping[str, Any]) -> EventInfo:
        """An :class:`EventInfo` from itself or from a mapping (see the module docstring)."""
        if isinstance(event, EventInfo):
            return event
        try:
            when = event["time"] if "time" in event else event["origin_time"]
            magnitude = event.get("magnitude")
            return cls(
                id=str(event["id"]),
                time=str(UTCDateTime(when.isoformat() if isinstance(when, datetime) else when)),
                latitude=float(event["latitude"]),
                longitude=float(event["longitude"]),
                depth_km=float(event.get("depth_km") or 0.0),
                magnitude=None if magnitude is None else float(magnitude),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"event information is incomplete or wrong: {error!r}") from error

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {"id": self.id, "time": self.time, "latitude": self.latitude,
                "longitude": self.longitude, "depth_km": self.depth_km,
                "magnitude": self.magnitude}


@dataclass(frozen=True)
class StationMotion:
    """One motion row, checked: peak motions of one channel of one station (SI units).

    ``values`` maps metric names (``"pga"``, ``"pgv"``, ``"pgd"``, ``"psa<T>"``) to m/s², m/s,
    m and m/s² respectively; metrics not computed are absent.
    """

    station: str
    network: str
    code: str
    name: str
    latitude: float
    longitude: float
    distance_km: float
    location: str
    channel: str
    kind: Literal["observed", "synthetic"]
    values: Mapping[str, float] = field(default_factory=dict)
    band: str = "record"
    flags: tuple[str, ...] = ()
    unusable: tuple[str, ...] = ()
    freqmin: float | None = None
    freqmax: float | None = None
    sigma_log10: Mapping[str, float] = field(default_factory=dict)
    gmpe: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StationMotion:
        """Check a motion row; a missing or wrong key raises ValueError naming the station."""
        station = str(row.get("station", "?"))
        try:
            kind = row["kind"]
            if kind not in KINDS:
                raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
            band = str(row.get("band") or "record")
            if band not in BANDS:
                raise ValueError(f"band must be one of {BANDS}, not {band!r}")
            unusable = tuple(sorted(filter(None, (canonical_metric(str(m))
                                                  for m in row.get("unusable") or ()))))
            channel = str(row["channel"])
            channel_role(channel)
            values = {}
            for key, value in row.items():
                metric = canonical_metric(str(key))
                if metric is not None:
                    number = _finite(value)
                    if number is not None:
                        values[metric] = number
            return cls(
                station=str(row["station"]), network=str(row["network"]),
                code=str(row["code"]), name=str(row.get("name") or row["code"]),
                latitude=float(row["latitude"]), longitude=float(row["longitude"]),
                distance_km=float(row["distance_km"]), location=str(row.get("location") or ""),
                channel=channel, kind=kind, values=values, band=band,
                flags=tuple(sorted(str(f) for f in row.get("flags") or ())), unusable=unusable,
                freqmin=_finite(row.get("freqmin")), freqmax=_finite(row.get("freqmax")),
                sigma_log10={m: float(v) for m, v in (
                    (canonical_metric(str(k)), _finite(v))
                    for k, v in (row.get("sigma_log10") or {}).items()) if m and v is not None},
                gmpe=dict(row.get("gmpe") or {}),
            )
        except KeyError as error:
            raise ValueError(f"motion row of {station} lacks the key {error}") from error
        except (TypeError, ValueError) as error:
            raise ValueError(f"motion row of {station} is wrong: {error}") from error


@dataclass(frozen=True)
class Rejection:
    """A station left out of the assessment, why, and at which stage (when known)."""

    station: str
    reason: str
    stage: str | None = None

    @classmethod
    def coerce(cls, item: Rejection | StationError | Mapping[str, Any] | Sequence[Any]
               ) -> Rejection:
        """A :class:`Rejection` from a mapping, a ``(station, reason)`` pair or a StationError."""
        if isinstance(item, Rejection):
            return item
        if isinstance(item, StationError):
            return cls(item.station, item.reason)
        if isinstance(item, Mapping):
            stage = item.get("stage")
            return cls(str(item["station"]), str(item.get("reason", "")),
                       None if stage is None else str(stage))
        station, reason = item
        return cls(str(station), str(reason))


# -- small pure helpers --------------------------------------------------------------------------
def _finite(value: Any) -> float | None:
    """``float(value)`` or ``None`` when missing or not finite."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def psa_period(metric: str) -> float | None:
    """Period (s) of a ``"psa<T>"`` metric name, ``None`` for other names."""
    match = _PSA_KEY.match(metric)
    return float(match.group(1)) if match else None


def canonical_metric(name: str) -> str | None:
    """The canonical name of a metric, ``None`` for a name that is not a metric.

    ``"pga"``, ``"pgv"``, ``"pgd"``, or ``"psa<T>"`` with ``T`` as ``repr(float(T))``:
    ``"psa1"`` -> ``"psa1.0"``.
    """
    if name in BASE_METRICS:
        return name
    period = psa_period(name)
    return None if period is None else f"psa{period!r}"


def component(channel: str) -> str:
    """Component of a channel: its last letter, or ``"maxh"`` / ``"rotd50"``."""
    return channel if channel in ("maxh", "rotd50") else channel[-1:]


def shakemap_flag(flags: Iterable[str], metric: str, unusable: Iterable[str] = ()) -> str:
    """ShakeMap's flag of one amplitude: ``"0"`` when sound, else its letters (sorted).

    ``snr_limited`` applies only to the metrics in ``unusable``; the other flags to all.
    """
    names = {f for f in flags if f != "snr_limited"}
    if metric in set(unusable):
        names.add("snr_limited")
    letters = sorted({SHAKEMAP_FLAGS[name] for name in names if name in SHAKEMAP_FLAGS})
    return "".join(letters) or "0"


def channel_role(channel: str) -> Literal["horizontal", "vertical", "derived"]:
    """Whether a channel name is a horizontal or vertical component or a derived channel.

    Raises
    ------
    ValueError
        For a name that is none of these (see the module docstring).
    """
    if channel in ("maxh", "rotd50") or (len(channel) == 3 and channel[2] in "H3"):
        return "derived"
    if len(channel) == 3 and channel[2] in "NE12RT":
        return "horizontal"
    if len(channel) == 3 and channel[2] == "Z":
        return "vertical"
    raise ValueError(f"unknown channel {channel!r}: expected a SEED channel (??Z, ??N, ??E, "
                     "??1, ??2, ??R, ??T) or a derived channel (maxh, rotd50, ??H, ??3)")


def _shakemap_metric(metric: str) -> str:
    """ShakeMap's name of a metric: ``psa0.3`` -> ``sa(0.3)``."""
    period = psa_period(metric)
    return metric if period is None else f"sa({period!r})"


def _convert(metric: str, value: float) -> tuple[float, str]:
    """A value in SI units converted to ShakeMap's units (%g, cm/s, cm)."""
    if metric == "pgv":
        return value * 100.0, CM_S
    if metric == "pgd":
        return value * 100.0, CM
    return percent_g(value), PERCENT_G


def percent_g(acceleration: float) -> float:
    """An acceleration in m/s² as a percentage of standard gravity (%g)."""
    return acceleration / STANDARD_GRAVITY * 100.0


def _channel_name(location: str, channel: str) -> str:
    return f"{location or '--'}.{channel}"


def _metric_order(metrics: Iterable[str]) -> list[str]:
    """Base metrics first, then spectral accelerations by period."""
    present = set(metrics)
    psa = sorted((m for m in present if psa_period(m) is not None),
                 key=lambda m: psa_period(m) or 0.0)
    return [m for m in BASE_METRICS if m in present] + psa


def station_peaks(
    motions: Iterable[StationMotion | Mapping[str, Any]], kind: str = "observed",
    band: str | None = None,
) -> dict[str, dict[str, float]]:
    """Maxima over the horizontal channels of one kind, per station and metric (SI units).

    The horizontal components are used when a station has any; otherwise its ``maxh`` channel.
    ``band`` selects the rows of one band (default: the observed record's, the synthetics'
    common band).

    Returns
    -------
    dict
        ``{"NET.STA": {"pga": m/s², "pgv": m/s, ...}}``; metrics never computed are absent.
    """
    horizontal: dict[str, dict[str, float]] = {}
    maxh: dict[str, dict[str, float]] = {}
    band = band or ("record" if kind == "observed" else "common")
    for item in motions:
        motion = item if isinstance(item, StationMotion) else StationMotion.from_row(item)
        if motion.kind != kind or motion.band != band:
            continue
        if motion.channel == "maxh":
            target = maxh.setdefault(motion.station, {})
        elif channel_role(motion.channel) == "horizontal":
            target = horizontal.setdefault(motion.station, {})
        else:
            continue
        for metric, value in motion.values.items():
            target[metric] = max(value, target.get(metric, -math.inf))
    return {station: horizontal.get(station) or maxh.get(station, {})
            for station in sorted(horizontal.keys() | maxh.keys())}


def pga_summary(pgm: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """PGA per station for a run's summary table, from the pgm stage's ``pgm.json``.

    The maximum horizontal (``maxh``) of the observed record as a network reports it and of
    the synthetics in the common band, in %g, and their PGA misfit.

    Returns
    -------
    dict
        ``{"NET.STA": {"observed": %g, "synthetic": %g, "misfit": log10(syn/obs)}}``; values
        never computed are absent.
    """
    peaks: dict[str, dict[str, float]] = {}
    for row in pgm["rows"]:
        if row.get("component") == "maxh" and (row["kind"], row.get("band", "record")) in (
                ("observed", "record"), ("synthetic", "common")):
            peaks.setdefault(row["station"], {})[row["kind"]] = percent_g(row["pga"])
    for item in pgm["misfits"]:
        if item["component"] == "maxh" and item["metric"] == "pga":
            peaks.setdefault(item["station"], {})["misfit"] = item["misfit"]
    return peaks


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` to a temporary file next to ``path``, then rename it onto ``path``."""
    return write_atomic(path, data)


# -- residuals against the ground-motion model ---------------------------------------------------
@dataclass(frozen=True)
class _Residual:
    station: str
    kind: str
    band: str
    metric: str
    log10: float | None
    normalized: float | None


def _residuals(rows: Iterable[Mapping[str, Any]]) -> list[_Residual]:
    result = []
    for row in rows:
        station = str(row.get("station", "?"))
        try:
            metric = canonical_metric(str(row["metric"]))
            if metric is None:
                raise ValueError(f"unknown metric {row['metric']!r}")
            result.append(_Residual(station, str(row["kind"]), str(row.get("band") or "record"),
                                    metric, _finite(row["log10"]),
                                    _finite(row.get("normalized"))))
        except KeyError as error:
            raise ValueError(f"residual row of {station} lacks the key {error}") from error
        except (TypeError, ValueError) as error:
            raise ValueError(f"residual row of {station} is wrong: {error}") from error
    return result


# -- misfits -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Misfit:
    station: str
    location: str | None
    channel: str
    metric: str
    misfit: float | None
    band: str = "common"


def _misfits(rows: Iterable[Mapping[str, Any]]) -> list[_Misfit]:
    result = []
    for row in rows:
        station = str(row.get("station", "?"))
        try:
            metric = canonical_metric(str(row["metric"]))
            if metric is None:
                raise ValueError(f"unknown metric {row['metric']!r}")
            location = row.get("location")
            result.append(_Misfit(str(row["station"]), None if location is None else str(location),
                                  str(row["channel"]), metric, _finite(row["misfit"]),
                                  str(row.get("band") or "common")))
        except KeyError as error:
            raise ValueError(f"misfit row of {station} lacks the key {error}") from error
        except (TypeError, ValueError) as error:
            raise ValueError(f"misfit row of {station} is wrong: {error}") from error
    return result


def _misfit_lookup(
    motions: Sequence[StationMotion], misfits: Sequence[_Misfit]
) -> dict[tuple[str, str, str, str], dict[str, float | None]]:
    """Misfits per (station, location, channel, band) of the motion rows of their band.

    A row takes the misfits of its own channel; failing that, those of the one channel with
    its component (a synthetic ``HXE`` takes the misfits given for the observed ``HNE``).
    A misfit that fits no row is an error.
    """
    by_station: dict[str, list[_Misfit]] = {}
    for misfit in misfits:
        by_station.setdefault(misfit.station, []).append(misfit)
    own_channels: dict[tuple[str, str, str], set[str]] = {}
    for motion in motions:
        own_channels.setdefault((motion.station, motion.location, motion.kind), set()).add(
            motion.channel)
    lookup: dict[tuple[str, str, str, str], dict[str, float | None]] = {}
    used: set[int] = set()
    for motion in motions:
        candidates = [m for m in by_station.get(motion.station, [])
                      if m.location in (None, motion.location) and m.band == motion.band]
        chosen = [m for m in candidates if m.channel == motion.channel]
        if not chosen:
            # by component, from channels that rows of this kind do not have themselves
            # (an observed HHE never takes the misfits of the observed HNE)
            mine = own_channels[(motion.station, motion.location, motion.kind)]
            same = [m for m in candidates if m.channel not in mine
                    and component(m.channel) == component(motion.channel)]
            if len({m.channel for m in same}) == 1:
                chosen = same
        for misfit in chosen:
            lookup.setdefault((motion.station, motion.location, motion.channel, motion.band),
                              {})[misfit.metric] = misfit.misfit
            used.add(id(misfit))
    for misfit in misfits:
        if id(misfit) not in used:
            raise ValueError(f"misfit of {misfit.station} channel {misfit.channel} "
                             f"({misfit.metric}) has no motion row")
    return lookup


# -- the station list ----------------------------------------------------------------------------
def _amplitudes(motion: StationMotion, metrics: Sequence[str]) -> list[dict[str, Any]]:
    amplitudes = []
    for metric in metrics:
        if metric in motion.values:
            value, units = _convert(metric, motion.values[metric])
            flag = shakemap_flag(motion.flags, metric, motion.unusable)
            amplitude = {"name": _shakemap_metric(metric), "value": value, "units": units,
                         "flag": flag}
            if flag != "0":
                amplitude["reasons"] = sorted(
                    {f for f in motion.flags if f != "snr_limited"}
                    | ({"snr_limited"} if metric in motion.unusable else set()))
            amplitudes.append(amplitude)
    return amplitudes


def _channel_entries(motions: Sequence[StationMotion], derived: bool) -> list[dict[str, Any]]:
    entries = []
    for motion in sorted(motions, key=lambda m: (m.location, m.channel)):
        if (channel_role(motion.channel) == "derived") != derived:
            continue
        shakemap = [m for m in _metric_order(motion.values) if m != "pgd"]
        entry: dict[str, Any] = {"name": _channel_name(motion.location, motion.channel),
                                 "amplitudes": _amplitudes(motion, shakemap)}
        entry["extra_amplitudes"] = _amplitudes(motion, ["pgd"])
        if motion.freqmin is not None and motion.freqmax is not None:
            entry["band_hz"] = [motion.freqmin, motion.freqmax]
        entries.append(entry)
    return entries


def _peak(peaks: Mapping[str, float], metric: str) -> float | None:
    return _convert(metric, peaks[metric])[0] if metric in peaks else None


def _gmpe_block(motions: Sequence[StationMotion], residuals: Sequence[_Residual]
                ) -> dict[str, Any] | None:
    predicted = [m for m in motions if m.kind == "gmpe"]
    if not predicted:
        return None
    row = predicted[0]
    amplitudes = []
    for metric in _metric_order(row.values):
        value, units = _convert(metric, row.values[metric])
        amplitudes.append({"name": _shakemap_metric(metric), "value": value, "units": units,
                           "log10_sigma": row.sigma_log10.get(metric)})
    block: dict[str, Any] = {key: row.gmpe.get(key) for key in (
        "model", "component", "vs30", "rjb_km", "rrup_km", "outside_range")}
    block["amplitudes"] = amplitudes
    by_kind: dict[str, dict[str, Any]] = {}
    normalized: dict[str, dict[str, Any]] = {}
    for item in residuals:
        by_kind.setdefault(item.kind, {})[_shakemap_metric(item.metric)] = item.log10
        normalized.setdefault(item.kind, {})[_shakemap_metric(item.metric)] = item.normalized
    block["residuals"] = {"units": "log10(motion/median)", **by_kind}
    block["normalized_residuals"] = normalized
    return block


def _feature(
    station: str, motions: Sequence[StationMotion],
    misfits: Mapping[tuple[str, str, str, str], Mapping[str, float | None]],
    residuals: Sequence[_Residual] = (),
) -> geojson.Feature:
    observed = [m for m in motions if m.kind == "observed" and m.band == "record"]
    observed_common = [m for m in motions if m.kind == "observed" and m.band == "common"]
    synthetic = [m for m in motions if m.kind == "synthetic"]
    first = (observed or observed_common or synthetic)[0]
    observed_peaks = station_peaks(observed, "observed").get(station, {})
    synthetic_peaks = station_peaks(synthetic, "synthetic").get(station, {})
    common_peaks = station_peaks(observed_common, "observed", "common").get(station, {})
    misfit_channels = []
    observed_keys = {(m.station, m.location, m.channel, m.band) for m in observed_common}
    for key in sorted(k for k in misfits if k in observed_keys):
        _, location, channel, _ = key
        values = misfits[key]
        misfit_channels.append({
            "name": _channel_name(location, channel),
            "values": {_shakemap_metric(m): values[m] for m in _metric_order(values)},
        })
    properties = {
        "code": first.code,
        "name": first.name,
        "network": first.network,
        "source": first.network,
        "station_type": "seismic",
        "instrumentType": "OBSERVED",
        "commType": "UNK",
        "distance": first.distance_km,
        "pga": _peak(observed_peaks, "pga"),
        "pgv": _peak(observed_peaks, "pgv"),
        "channels": _channel_entries(observed, derived=False),
        "pgd": _peak(observed_peaks, "pgd"),
        "derived_channels": _channel_entries(observed, derived=True),
        "synthetic": {
            "pga": _peak(synthetic_peaks, "pga"),
            "pgv": _peak(synthetic_peaks, "pgv"),
            "pgd": _peak(synthetic_peaks, "pgd"),
            "channels": _channel_entries(synthetic, derived=False),
            "derived_channels": _channel_entries(synthetic, derived=True),
        },
        "observed_common": {
            "pga": _peak(common_peaks, "pga"),
            "pgv": _peak(common_peaks, "pgv"),
            "pgd": _peak(common_peaks, "pgd"),
            "channels": _channel_entries(observed_common, derived=False),
            "derived_channels": _channel_entries(observed_common, derived=True),
        },
        "misfit": {"units": MISFIT_UNITS, "channels": misfit_channels},
    }
    gmpe = _gmpe_block(motions, residuals)
    if gmpe is not None:
        properties["gmpe"] = gmpe
    return geojson.Feature(id=station, geometry=geojson.Point((first.longitude, first.latitude)),
                           properties=properties)


def write_stationlist(
    path: str | os.PathLike[str],
    event: EventInfo | Mapping[str, Any],
    rows: Iterable[Mapping[str, Any]],
    misfits: Iterable[Mapping[str, Any]] = (),
    rejected: Iterable[Any] = (),
    residuals: Iterable[Mapping[str, Any]] = (),
) -> geojson.FeatureCollection:
    """Write the ShakeMap-style station list (see the module docstring) and return it.

    Parameters
    ----------
    path
        Output file, usually ``stationlist.json``.
    event
        The event (:class:`EventInfo` or mapping).
    rows
        Motion rows (SI units; converted to %g, cm/s and cm).
    misfits
        Misfit rows, log10(synthetic/observed).
    rejected
        Rejected stations with reasons.
    residuals
        Residual rows against the ground-motion model.

    Returns
    -------
    geojson.FeatureCollection
        What was written; features sorted by id.

    Raises
    ------
    ValueError
        For a malformed row (naming the station) or a misfit without a motion row.
    """
    info = EventInfo.coerce(event)
    rejections = sorted(set(map(Rejection.coerce, rejected)),
                        key=lambda r: (r.station, r.stage or "", r.reason))
    excluded = {r.station for r in rejections}
    motions = [m for m in map(StationMotion.from_row, rows) if m.station not in excluded]
    misfit_rows = [m for m in _misfits(misfits) if m.station not in excluded]
    lookup = _misfit_lookup(motions, misfit_rows)
    by_station: dict[str, list[StationMotion]] = {}
    for motion in motions:
        by_station.setdefault(motion.station, []).append(motion)
    residual_rows: dict[str, list[_Residual]] = {}
    for item in _residuals(residuals):
        residual_rows.setdefault(item.station, []).append(item)
    features = [_feature(station, by_station[station], lookup, residual_rows.get(station, []))
                for station in sorted(by_station)]
    collection = geojson.FeatureCollection(
        features,
        event=info.as_dict(),
        rejected=[{"id": r.station, "reason": r.reason}
                  | ({"stage": r.stage} if r.stage is not None else {}) for r in rejections],
    )
    if not collection.is_valid:
        raise ValueError(f"invalid GeoJSON station list: {collection.errors()}")
    text = geojson.dumps(collection, indent=1, allow_nan=False, ensure_ascii=False)
    atomic_write(path, text + "\n")
    return collection


# -- the PGM table -------------------------------------------------------------------------------
def _csv_float(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def write_pgm_csv(
    path: str | os.PathLike[str],
    rows: Iterable[Mapping[str, Any]],
    misfits: Iterable[Mapping[str, Any]] = (),
    residuals: Iterable[Mapping[str, Any]] = (),
) -> list[str]:
    """Write the PGM table (see the module docstring): byte-identical for the same rows.

    Parameters
    ----------
    path
        Output file, usually ``pgm.csv``.
    rows
        Motion rows, SI units (written unchanged: m/s², m/s, m).
    misfits
        Misfit rows, log10(synthetic/observed).
    residuals
        Residual rows against the ground-motion model: on the RotD50 line of their kind and
        band (columns ``gmpe_residual_<metric>_log10``); the ``gmpe`` lines carry the
        prediction's ``sigma_<metric>_log10``.

    Returns
    -------
    list of str
        The header (column names).

    Raises
    ------
    ValueError
        For a malformed row, two rows with the same station, location, channel and kind, or a
        misfit without a motion row.
    """
    motions = sorted(map(StationMotion.from_row, rows),
                     key=lambda m: (m.station, m.location, m.channel, m.kind, m.band))
    for before, after in itertools.pairwise(motions):
        key = (after.station, after.location, after.channel, after.kind, after.band)
        if key == (before.station, before.location, before.channel, before.kind, before.band):
            raise ValueError(f"two {after.kind} {after.band} rows for {after.station} "
                             f"{_channel_name(after.location, after.channel)}")
    misfit_rows = _misfits(misfits)
    lookup = _misfit_lookup(motions, misfit_rows)
    residual_lookup = {(r.station, r.kind, r.band, r.metric): r.log10
                       for r in _residuals(residuals)}
    metrics = _metric_order({key for m in motions for key in m.values}
                            | {m.metric for m in misfit_rows} | set(BASE_METRICS))
    psa = [m for m in metrics if psa_period(m) is not None]
    with_gmpe = any(m.kind == "gmpe" for m in motions) or bool(residual_lookup)
    gmpe_metrics = [m for m in metrics if m != "pgd"] if with_gmpe else []
    header = [*CSV_BASE_COLUMNS, *(f"{m}_m_s2" for m in psa),
              *(f"misfit_{m}_log10" for m in metrics),
              *(f"sigma_{m}_log10" for m in gmpe_metrics),
              *(f"gmpe_residual_{m}_log10" for m in gmpe_metrics)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for m in motions:
        misfit = lookup.get((m.station, m.location, m.channel, m.band), {})
        writer.writerow([
            m.station, m.network, m.code, m.location, m.channel, m.kind, m.band, m.name,
            _csv_float(m.latitude), _csv_float(m.longitude), _csv_float(m.distance_km),
            _csv_float(m.freqmin), _csv_float(m.freqmax),
            ";".join([*m.flags, *(f"unusable:{u}" for u in m.unusable)]),
            *(_csv_float(m.values.get(metric)) for metric in (*BASE_METRICS, *psa)),
            *(_csv_float(misfit.get(metric)) for metric in metrics),
            *(_csv_float(m.sigma_log10.get(metric)) for metric in gmpe_metrics),
            *(_csv_float(residual_lookup.get((m.station, m.kind, m.band, metric))
                         if m.channel == "rotd50" else None) for metric in gmpe_metrics),
        ])
    atomic_write(path, buffer.getvalue())
    return header
