"""Preprocessing of a station: its record processed as gmprocess does, and comparable copies.

Two products per station:

**The record** (``process_record``): every channel of the observed record, processed at its own
sampling rate the way USGS gmprocess 2.8 does in its production configuration, so that its peak
motions are the ones a strong-motion network would report:

1. checks: empty, NaN/inf, dead (constant) or too short channels; gaps (up to ``max_gap``
   filled by linear interpolation, longer ones rejected); clipping (:func:`detect_clipping`);
   instrument response (full response, or the sensitivity alone for accelerometers, flagged);
2. linear detrend and demean of the raw counts; an order-40 band-pass (0.005 Hz to 0.8 of
   the Nyquist frequency, frequency domain) before response removal; obspy
   ``remove_response`` to acceleration (accelerometers) or to velocity then differentiation
   (seismometers), water level 60 dB;
3. windows: the P arrival from a 1-D travel-time model (obspy TauP, ``iasp91``) shifted by
   ``p_arrival_shift`` splits noise from signal; the signal ends after the source duration
   (Brune corner, 10 bar), 150 s and 0.6 s per km of epicentral distance (gmprocess's
   ``source_path`` method); the record is cut from 30 s before the split to the end,
   Hann-tapered (5 %);
4. the signal-to-noise ratio (Konno-Ohmachi smoothed spectra) must exceed ``snr_threshold``
   from the Brune corner of the event (clamped to 0.1-2 Hz) to ``snr_max_frequency``; the
   high-pass and low-pass corners come from where it crosses the threshold (the two
   horizontals share theirs), the low-pass is capped at ``lowpass_nyquist_fraction`` of the
   Nyquist frequency and ``lowpass_max``, and the high-pass is raised until a fifth-order
   polynomial fitted to the displacement holds no more than ``polyfit_target`` of its peak
   (Ridder's method; rejected when that needs more than ``highpass_max``);
5. an order-5 zero-phase Butterworth band-pass in the frequency domain, the pre-event mean
   removed; velocity and displacement by integration in the frequency domain (one response
   removal, then integrals: 3x faster than removing the response once per quantity).

A channel that fails a check is reported with the reason; by default (gmprocess's
``any_trace_failures``) it rejects its station, else the station goes on with the channels
that passed. Stations with one or two components are processed for what they have.

**The comparison copies** (``comparison_copies``): the observed record and the synthetic
seismograms (projected onto the orientation of each observed channel) passed through the same
filters -- the record's corners, narrowed to the band the synthetics resolve -- and
interpolated (Lanczos) onto one time grid ``origin + window_start + k / sampling_rate``, so that
their peaks can be compared sample for sample. Samples of the window that a record does not
cover are zeros; the covered fraction is ``stats.coverage``.

Per-channel results travel in ``tr.stats.dare`` (corners, split time, SNR, flags); every step
is in ``tr.stats.processing``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from obspy import Inventory, Stream, Trace, UTCDateTime
from obspy.geodetics import gps2dist_azimuth, kilometers2degrees

from dare_cli import __version__
from dare_cli.ra import processing
from dare_cli.ra.errors import ConfigError, StationError

__all__ = [
    "QUANTITIES",
    "Hypocentre",
    "PreprocessConfig",
    "RecordResult",
    "channel_orientation",
    "check_trace",
    "comparison_copies",
    "detect_clipping",
    "process_record",
    "station_id",
    "synthetic_for_channels",
]

#: Output quantities: acceleration (m/s^2), velocity (m/s), displacement (m).
QUANTITIES = ("ACC", "VEL", "DISP")

#: Half-width (in input samples) of the Lanczos interpolation kernel; obspy recommends >= 20.
LANCZOS_A = 20
#: Flags a channel can carry (``tr.stats.dare["flags"]``), with their meaning.
FLAGS = {
    "partial": "the record covers only part of the analysis window",
    "clipped": "the record is clipped; kept because [preprocess] clipped = 'flag'",
    "sensitivity_only": "the response is known as a sensitivity only (accelerometer)",
    "anomalous": "amplitude far from the station's other channels",
    "snr_limited": "the signal-to-noise ratio restricts the usable band (see usable periods)",
}
#: gmprocess's stress drop (bar = 1e5 Pa) and shear velocity (m/s) for the Brune corner of
#: the SNR band and of the source duration.
WINDOW_STRESS_DROP = 10e5
WINDOW_SHEAR_VELOCITY = 3700.0
#: Signal duration of gmprocess's ``source_path`` method: path duration at zero distance (s)
#: and per km.
PATH_DURATION = 150.0
PATH_DURATION_PER_KM = 0.6
#: Instrument codes of accelerometers and of velocity seismometers (SEED).
ACCELEROMETERS = "NGL"
SEISMOMETERS = "HL"


@dataclass(frozen=True)
class PreprocessConfig:
    """Parameters of the preprocessing (the ``[preprocess]`` table of a run's configuration).

    Record processing (gmprocess production defaults):

    Attributes
    ----------
    snr_threshold
        Smallest signal-to-noise ratio over the check band.
    snr_min_frequency
        Lower end (Hz) of the SNR check band; ``None`` (default) takes the Brune corner
        frequency of the event (10 bar, 3.7 km/s) clamped to 0.1-2 Hz, as gmprocess.
    snr_max_frequency
        Upper end (Hz) of the SNR check band.
    lowpass_nyquist_fraction, lowpass_max
        Caps of the low-pass corner: a fraction of the Nyquist frequency, and Hz.
    polyfit_target
        Largest ratio of a fifth-order polynomial fit of the displacement to its peak; the
        high-pass corner is raised until it holds (0 disables the adjustment).
    highpass_max
        Largest acceptable high-pass corner (Hz); a record that needs more is rejected.
    filter_order
        Order of the Butterworth filters (frequency domain, zero phase).
    p_arrival_shift
        Seconds added to the P arrival time to place the noise/signal split.
    seconds_before_split
        Seconds of noise kept before the split.
    min_noise_duration, min_signal_duration
        Shortest acceptable noise and signal windows (s).
    travel_time_model
        obspy TauP model of the P arrival (``iasp91``, ``ak135``, ...).
    water_level
        Water level (dB) of the response removal, or ``None``.
    reject_whole_station
        A channel that fails a check rejects its whole station (gmprocess's
        ``any_trace_failures``); ``False`` keeps the station's other channels.
    anomaly_ratio
        A channel whose PGA differs from the median of its station's other channels by more
        than this factor is flagged ``anomalous``.
    max_gap
        Gaps up to this length (s) are filled by linear interpolation; longer ones reject the
        channel.
    clipped
        ``"reject"`` (default) a clipped record, or ``"flag"`` it and keep it.
    clip_fraction, full_scale
        The clipping check: fraction of the digitizer's full scale (counts) counted as at full
        scale.
    min_duration
        Channels shorter than this (s) are rejected.

    Comparison with the synthetics:

    sampling_rate
        Rate (Hz) of the common time grid of the comparison copies; their low-pass corner is
        at most 0.4 times it.
    window_start, window_length
        The comparison window, seconds after the origin time.
    compare_freqmin, compare_freqmax
        Optional narrower band (Hz) for the comparison; the band is otherwise the record's,
        narrowed to what the synthetics resolve.
    taper_fraction
        Hann taper (fraction at each end) of the synthetics before filtering.
    """

    snr_threshold: float = 2.0
    snr_min_frequency: float | None = None
    snr_max_frequency: float = 5.0
    lowpass_nyquist_fraction: float = 0.75
    lowpass_max: float = 40.0
    polyfit_target: float = 0.02
    highpass_max: float = 0.5
    filter_order: int = 5
    p_arrival_shift: float = -2.0
    seconds_before_split: float = 30.0
    min_noise_duration: float = 1.0
    min_signal_duration: float = 5.0
    travel_time_model: str = "iasp91"
    water_level: float | None = 60.0
    reject_whole_station: bool = True
    anomaly_ratio: float = 10.0
    max_gap: float = 1.0
    clipped: str = "reject"
    clip_fraction: float = 0.9
    full_scale: float = 2.0**23
    min_duration: float = 20.0
    sampling_rate: float = 50.0
    window_start: float = 0.0
    window_length: float = 150.0
    compare_freqmin: float | None = None
    compare_freqmax: float | None = None
    taper_fraction: float = 0.05

    def __post_init__(self) -> None:
        def positive(name: str) -> None:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"[preprocess] {name} must be positive, not {value}")

        for name in ("snr_threshold", "snr_max_frequency", "lowpass_max", "highpass_max",
                     "sampling_rate", "window_length", "anomaly_ratio", "full_scale"):
            positive(name)
        if not 0 < self.lowpass_nyquist_fraction <= 1:
            raise ConfigError("[preprocess] lowpass_nyquist_fraction must be within (0, 1], "
                              f"not {self.lowpass_nyquist_fraction}")
        if self.snr_min_frequency is not None and not (
                0 < self.snr_min_frequency < self.snr_max_frequency):
            raise ConfigError(f"[preprocess] need 0 < snr_min_frequency < snr_max_frequency, "
                              f"not {self.snr_min_frequency} and {self.snr_max_frequency}")
        if not 0 <= self.polyfit_target < 1:
            raise ConfigError(f"[preprocess] polyfit_target must be within [0, 1), "
                              f"not {self.polyfit_target}")
        if self.filter_order < 1:
            raise ConfigError(f"[preprocess] filter_order must be >= 1, not {self.filter_order}")
        for name in ("seconds_before_split", "min_noise_duration", "min_signal_duration",
                     "max_gap"):
            if getattr(self, name) < 0:
                raise ConfigError(f"[preprocess] {name} must be >= 0 s, not "
                                  f"{getattr(self, name)}")
        if self.water_level is not None and self.water_level <= 0:
            raise ConfigError(f"[preprocess] water_level must be positive dB or omitted, "
                              f"not {self.water_level}")
        if self.clipped not in ("reject", "flag"):
            raise ConfigError(f"[preprocess] clipped must be 'reject' or 'flag', "
                              f"not {self.clipped!r}")
        if not 0 < self.clip_fraction <= 1:
            raise ConfigError(f"[preprocess] clip_fraction must be within (0, 1], "
                              f"not {self.clip_fraction}")
        if not 0 <= self.min_duration <= self.window_length:
            raise ConfigError(f"[preprocess] min_duration must be within 0..window_length "
                              f"({self.window_length} s), not {self.min_duration}")
        if not 0 <= self.taper_fraction <= 0.5:
            raise ConfigError(f"[preprocess] taper_fraction must be within 0..0.5, "
                              f"not {self.taper_fraction}")
        low, high = self.compare_freqmin, self.compare_freqmax
        if low is not None and low <= 0:
            raise ConfigError(f"[preprocess] compare_freqmin must be positive, not {low}")
        if high is not None and not 0 < high <= 0.4 * self.sampling_rate:
            raise ConfigError(f"[preprocess] compare_freqmax must be within (0, "
                              f"{0.4 * self.sampling_rate:g}] Hz (0.4 x sampling_rate), "
                              f"not {high}")
        if low is not None and high is not None and low >= high:
            raise ConfigError(f"[preprocess] need compare_freqmin < compare_freqmax, not "
                              f"{low} and {high}")

    @property
    def npts(self) -> int:
        """Samples of the comparison window (both ends included)."""
        return round(self.window_length * self.sampling_rate) + 1


@dataclass(frozen=True)
class Hypocentre:
    """What the processing needs of the event: origin time and place, magnitude (Mw)."""

    time: UTCDateTime
    latitude: float
    longitude: float
    depth_km: float
    magnitude: float

    @property
    def moment(self) -> float:
        """Scalar moment (N m) of the magnitude (IASPEI: 10^(1.5 M + 9.1))."""
        return float(10.0 ** (1.5 * self.magnitude + 9.1))


def station_id(tr: Trace) -> str:
    """``NET.STA`` of a trace."""
    return f"{tr.stats.network}.{tr.stats.station}"


def _note(tr: Trace, text: str) -> None:
    """Append a dare entry to ``tr.stats.processing`` (obspy's format: ``Tool version: ...``)."""
    if "processing" not in tr.stats:
        tr.stats.processing = []
    tr.stats.processing.append(f"dare {__version__}: {text}")


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start indices and lengths of the runs of ``True`` in a boolean array."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    return starts, np.flatnonzero(edges == -1) - starts


def detect_clipping(
    tr: Trace,
    *,
    full_scale: float = 2.0**23,
    clip_fraction: float = 0.9,
    min_run: int = 3,
    flat_run: int = 10,
) -> str | None:
    """Why a raw record looks clipped, or ``None``.

    Three signatures of a digitizer or sensor driven beyond its range, each common in real
    clipped records (the HVO records of the 2019-04-14 Hawaii Mw 5.3 show all three):

    - **full-scale runs**: ``min_run`` or more consecutive samples with
      ``|count| >= clip_fraction * full_scale``;
    - **wrap-around**: a jump of more than the full scale between two consecutive samples of
      opposite sign, one of them at full scale: the signal leaves the range at one end and
      comes back at the other (the counter overflowed), a swing that an anti-alias-filtered
      signal within range does not make;
    - **flat top**: ``flat_run`` or more identical consecutive counts at an extreme of the
      record (``|x - median| >= clip_fraction * max|x - median|``): the signal was cut at a
      level that need not be the digitizer's (e.g. the sensor's own limit).

    This takes the place of gmprocess's clipping check (maximum amplitude, histogram, ping and
    jerk tests combined by a neural network), which this code does not reuse.

    Parameters
    ----------
    tr
        Raw record in digitizer counts (before any processing).
    full_scale
        Largest count of the digitizer (2**23 for 24 bits).
    clip_fraction
        Fraction of ``full_scale`` that counts as "at full scale".
    min_run
        Consecutive full-scale samples that make a full-scale run.
    flat_run
        Identical consecutive samples at an extreme that make a flat top.

    Returns
    -------
    str or None
        The reason (every signature found, with counts), or ``None`` if none is found.
    """
    data = np.asarray(tr.data, dtype=np.float64)
    if data.size < 2:
        return None
    reasons = []
    level = clip_fraction * full_scale
    at_full = np.abs(data) >= level
    _, lengths = _runs(at_full)
    long_runs = lengths[lengths >= min_run]
    if long_runs.size:
        reasons.append(
            f"{int(long_runs.sum())} samples in {long_runs.size} run(s) of >= {min_run} at "
            f">= {clip_fraction:g} of full scale ({full_scale:.0f} counts), "
            f"longest {int(long_runs.max())}")
    flips = ((at_full[:-1] | at_full[1:]) & (np.sign(data[:-1]) != np.sign(data[1:]))
             & (np.abs(np.diff(data)) > full_scale))
    if flips.any():
        reasons.append(f"{int(flips.sum())} full-scale sign reversal(s) between consecutive "
                       "samples (wrap-around)")
    dev = data - np.median(data)
    peak = np.abs(dev).max()
    if peak > 0:
        same = np.diff(data) == 0
        starts, lengths = _runs(same)
        values = np.abs(dev[starts])
        flat = (lengths + 1 >= flat_run) & (values >= clip_fraction * peak)
        if flat.any():
            k = int(np.argmax(np.where(flat, lengths, -1)))
            reasons.append(f"flat top of {int(lengths[k]) + 1} identical samples at "
                           f"{data[starts[k]]:.0f} counts")
    return "clipped: " + "; ".join(reasons) if reasons else None


def _check_samples(tr: Trace) -> None:
    """Reject an empty trace or one with NaN or inf samples."""
    sta = station_id(tr)
    if tr.stats.npts == 0 or len(tr.data) == 0:
        raise StationError(sta, f"trace {tr.id} is empty")
    data = np.asarray(tr.data)
    if np.issubdtype(data.dtype, np.inexact):
        n_nan = int(np.isnan(data).sum())
        if n_nan:
            raise StationError(sta, f"trace {tr.id} contains NaN ({n_nan} of {data.size} "
                                    "samples)")
        n_inf = int(np.isinf(data).sum())
        if n_inf:
            raise StationError(sta, f"trace {tr.id} contains inf ({n_inf} of {data.size} "
                                    "samples)")


def check_trace(
    tr: Trace,
    inventory: Inventory | None = None,
    config: PreprocessConfig | None = None,
    *,
    raw: bool = True,
) -> None:
    """Reject a trace that cannot give ground motions; record the check in its processing.

    Parameters
    ----------
    tr
        One record (one channel, one segment).
    inventory
        When given, the trace's channel must have an instrument response at its start time.
    config
        Thresholds (``min_duration``, ``clip_fraction``, ``full_scale``); defaults if omitted.
    raw
        The data are raw counts: check for clipping (synthetics pass ``False``).

    Raises
    ------
    StationError
        ``station`` is ``NET.STA``; ``reason`` names the trace and says what is wrong: empty,
        contains NaN / inf, shorter than ``min_duration``, clipped, or no response.
    """
    config = config or PreprocessConfig()
    sta = station_id(tr)
    _check_samples(tr)
    duration = tr.stats.npts * tr.stats.delta
    if duration < config.min_duration:
        raise StationError(sta, f"trace {tr.id} is too short: {duration:.2f} s of data, "
                                f"at least {config.min_duration:g} s needed")
    clipping = None
    if raw:
        clipping = detect_clipping(tr, full_scale=config.full_scale,
                                   clip_fraction=config.clip_fraction)
        if clipping:
            raise StationError(sta, f"trace {tr.id} is {clipping}")
    if inventory is not None:
        try:
            inventory.get_response(tr.id, tr.stats.starttime)
        except Exception as exc:  # obspy raises a bare Exception when nothing matches
            raise StationError(sta, f"no instrument response for channel {tr.id} at "
                                    f"{tr.stats.starttime}: {exc}") from exc
    _note(tr, f"check_trace(npts={tr.stats.npts}::duration={duration:.2f}s::finite=True"
              f"::clipping={'checked' if raw else 'not checked (not raw counts)'}"
              f"::response={'found' if inventory is not None else 'not checked'})")


def _single_station(st: Stream) -> str:
    stations = {station_id(tr) for tr in st}
    if len(stations) != 1:
        raise ValueError(f"expected the traces of one station, got {sorted(stations) or 'none'}")
    return stations.pop()


def _merge(st: Stream, max_gap: float) -> Stream:
    """One trace per channel: gaps up to ``max_gap`` (s) filled by linear interpolation."""
    sta = _single_station(st)
    st = st.copy()
    st.sort()
    gaps = st.get_gaps()
    for net, stn, loc, cha, t1, _t2, delta, _n in gaps:
        if delta > max_gap:
            raise StationError(sta, f"gap of {delta:.2f} s in {net}.{stn}.{loc}.{cha} at {t1}; "
                                    f"gaps up to {max_gap:g} s are interpolated")
    segments: dict[str, int] = {}
    for tr in st:
        segments[tr.id] = segments.get(tr.id, 0) + 1
    try:
        st.merge(method=1, fill_value="interpolate")
    except Exception as exc:  # obspy raises bare Exceptions (e.g. differing sampling rates)
        raise StationError(sta, f"cannot merge the segments: {exc}") from exc
    for tr in st:
        tr.data = np.require(tr.data, dtype=np.float64)
        n = segments[tr.id]
        filled = [g for g in gaps if ".".join(g[:4]) == tr.id]
        _note(tr, f"merge(segments={n}::gaps_filled={sum(1 for g in filled if g[6] > 0)}"
                  f"::overlaps={sum(1 for g in filled if g[6] <= 0)}::fill='interpolate')")
    return st




# -- the record --------------------------------------------------------------------------------
class _ChannelFailure(Exception):
    """One channel cannot be processed (the message says why).

    ``quality``: it failed a quality check (by default); else its input is wrong.
    """

    def __init__(self, message: str, *, quality: bool = True) -> None:
        super().__init__(message)
        self.quality = quality


@dataclass
class RecordResult:
    """The processed record of one station.

    Attributes
    ----------
    station
        ``NET.STA``.
    streams
        ``{"ACC": Stream (m/s^2), "VEL": Stream (m/s), "DISP": Stream (m)}``: the channels that
        passed, at their own sampling rate, on one time grid (same start and length), each
        with ``stats.dare``: ``highpass``, ``lowpass`` (Hz), ``split_time``, ``signal_end``
        (ISO), ``snr_min`` (over the check band), ``snr_band`` (Hz), ``usable_periods``
        (``[T_min, T_max]`` s), ``flags`` (names of :data:`FLAGS`), ``response``
        (``"full"`` or ``"sensitivity"``).
    rejected
        ``{trace id: reason}`` of the channels that failed.
    flags
        ``[{"trace", "flag", "detail"}]`` of the channels that passed with a flag.
    distance_km, p_arrival
        Epicentral distance and the model's P travel time (s).
    """

    station: str
    streams: dict[str, Stream]
    rejected: dict[str, str] = field(default_factory=dict)
    flags: list[dict[str, str]] = field(default_factory=list)
    distance_km: float = math.nan
    p_arrival: float = math.nan


def _flag(tr: Trace, name: str, detail: str, flags: list[dict[str, str]]) -> None:
    tr.stats.dare.setdefault("flags", [])
    if name not in tr.stats.dare["flags"]:
        tr.stats.dare["flags"].append(name)
        flags.append({"trace": tr.id, "flag": name, "detail": detail})


#: Sensitivity input units of accelerometers, and their factor to m/s^2.
_ACC_UNITS = {"M/S**2": 1.0, "M/S/S": 1.0, "M/S2": 1.0, "CM/S**2": 0.01, "CM/S/S": 0.01,
              "CM/S2": 0.01, "MM/S**2": 1e-3, "NM/S**2": 1e-9, "G": 9.80665}


def _response(tr: Trace, inventory: Inventory) -> tuple[Any, str]:
    """The channel's response and how it is known: ``"full"`` or ``"sensitivity"``."""
    try:
        response = inventory.get_response(tr.id, tr.stats.starttime)
    except Exception as exc:  # obspy raises a bare Exception when nothing matches
        raise _ChannelFailure(f"no instrument response for channel {tr.id} at "
                              f"{tr.stats.starttime}: {exc}", quality=False) from exc
    sensitivity = response.instrument_sensitivity
    if response.response_stages:
        return response, "full"
    units = str(getattr(sensitivity, "input_units", "") or "").upper()
    if (sensitivity is None or not sensitivity.value or units not in _ACC_UNITS):
        raise _ChannelFailure(f"no instrument response for channel {tr.id}: no response "
                              "stages, and no sensitivity of an accelerometer (input units "
                              f"{units or 'not given'})", quality=False)
    return response, "sensitivity"


def _to_motion(tr: Trace, response: Any, how: str, config: PreprocessConfig) -> str:
    """Counts to ground motion in place; returns ``"ACC"`` or ``"VEL"``."""
    instrument = tr.stats.channel[1:2]
    sensitivity = response.instrument_sensitivity
    units = str(getattr(sensitivity, "input_units", "") or "").upper()
    if how == "sensitivity" or instrument in ACCELEROMETERS or units in _ACC_UNITS:
        output = "ACC"
    elif instrument in SEISMOMETERS or units in ("M/S", "CM/S", "NM/S"):
        output = "VEL"
    else:
        raise _ChannelFailure(f"channel {tr.id}: instrument code {instrument!r} with input "
                              f"units {units or 'not given'} is neither an accelerometer nor "
                              "a velocity seismometer", quality=False)
    # the band near the Nyquist frequency, where the response (known or not) is least
    # reliable, is removed first; gmprocess applies this to full responses only: applied to
    # sensitivities too, an accelerometer gives the same peaks whichever the metadata
    nyquist = 0.5 * tr.stats.sampling_rate
    tr.data = processing.filter_in_frequency(tr.data, tr.stats.delta, highpass=0.005,
                                             lowpass=0.8 * nyquist, order=40)
    _note(tr, f"prefilter(butterworth_frequency_domain::highpass=0.005::lowpass="
              f"{0.8 * nyquist:g}::order=40)")
    if how == "sensitivity":
        factor = _ACC_UNITS[units]
        tr.data = tr.data / float(sensitivity.value) * factor
        _note(tr, f"remove_sensitivity(value={sensitivity.value:g}::units="
                  f"{sensitivity.input_units}::factor_to_m_s2={factor:g})")
        return "ACC"
    tr.stats.response = response
    try:
        tr.remove_response(output=output, water_level=config.water_level, pre_filt=None,
                           zero_mean=True, taper=False)
    except Exception as exc:  # obspy raises bare Exceptions / ValueErrors here
        raise _ChannelFailure(f"response removal failed for channel {tr.id}: {exc}",
                              quality=False) from exc
    finally:
        del tr.stats.response
    if not np.isfinite(tr.data).all():
        raise _ChannelFailure(f"channel {tr.id}: response removal gave non-finite values",
                              quality=False)
    return output


def _merge_channels(st: Stream, max_gap: float, failures: dict[str, _ChannelFailure]
                    ) -> Stream:
    """One trace per channel; a channel with a gap longer than ``max_gap`` fails."""
    kept = Stream()
    for channel_id in sorted({tr.id for tr in st}):
        segments = st.select(id=channel_id)
        try:
            kept += _merge(segments, max_gap)
        except StationError as error:
            failures[channel_id] = _ChannelFailure(error.reason)
    return kept


def _check_channel(tr: Trace, config: PreprocessConfig, flags: list[dict[str, str]]) -> None:
    """Samples, duration, dead channel and clipping checks of one raw channel."""
    try:
        _check_samples(tr)
    except StationError as error:
        raise _ChannelFailure(error.reason, quality=False) from None
    duration = tr.stats.npts * tr.stats.delta
    if duration < config.min_duration:
        raise _ChannelFailure(f"trace {tr.id} is too short: {duration:.2f} s of data, at "
                              f"least {config.min_duration:g} s needed")
    if np.ptp(tr.data) == 0:
        raise _ChannelFailure(f"trace {tr.id} is dead: every sample is {tr.data[0]:g} counts")
    clipping = detect_clipping(tr, full_scale=config.full_scale,
                               clip_fraction=config.clip_fraction)
    if clipping and config.clipped == "reject":
        raise _ChannelFailure(f"trace {tr.id} is {clipping}")
    tr.stats.dare = {"flags": []}
    if clipping:
        _flag(tr, "clipped", clipping, flags)
    _note(tr, f"check_trace(npts={tr.stats.npts}::duration={duration:.2f}s::finite=True::"
              f"clipping={'flagged' if clipping else 'none found'})")


def _coordinates(inventory: Inventory, tr: Trace) -> dict[str, float]:
    try:
        return dict(inventory.get_coordinates(tr.id, tr.stats.starttime))
    except Exception as exc:  # obspy raises bare Exceptions
        raise StationError(station_id(tr), f"no coordinates for channel {tr.id}: {exc}") from exc


def _snr_band(hypo: Hypocentre, config: PreprocessConfig) -> tuple[float, float]:
    if config.snr_min_frequency is not None:
        return config.snr_min_frequency, config.snr_max_frequency
    f0 = processing.brune_corner_frequency(hypo.moment, WINDOW_STRESS_DROP,
                                           WINDOW_SHEAR_VELOCITY)
    return min(max(f0, 0.1), 2.0), config.snr_max_frequency


def _is_horizontal(tr: Trace) -> bool:
    return tr.stats.channel[-1:] not in ("Z", "3", "H")


def process_record(
    st: Stream, inventory: Inventory, hypo: Hypocentre, config: PreprocessConfig,
) -> RecordResult:
    """Ground acceleration, velocity and displacement of one station's record (see module).

    Parameters
    ----------
    st
        Raw records (counts) of one station, one to three components; several segments per
        channel are merged.
    inventory
        StationXML of the station: coordinates, and responses (or sensitivities).
    hypo
        The event.
    config
        Processing parameters.

    Returns
    -------
    RecordResult
        The channels that passed, processed, with the reasons of those that failed.

    Raises
    ------
    StationError
        No channel passed, or one failed and ``config.reject_whole_station`` (the reason names
        every failed channel).
    ValueError
        The traces belong to more than one station (a caller's error).
    """
    sta = _single_station(st)
    failures: dict[str, _ChannelFailure] = {}
    flags: list[dict[str, str]] = []
    channels = _usable_channels(_merge_channels(st, config.max_gap, failures), inventory,
                                config, failures, flags)
    _stop_if_failed(sta, failures, bool(channels), config)
    _trim_to_common_span(sta, [tr for tr, _, _ in channels], config)
    distance_km, p_travel, split, end = _signal_window(sta, inventory, channels, hypo, config)
    snr_band = _snr_band(hypo, config)

    processed: list[tuple[Trace, processing.SnrCurve]] = []
    for tr, response, how in channels:
        try:
            processed.append(_window_and_snr(tr, response, how, hypo, split, end, snr_band,
                                             config, flags))
        except _ChannelFailure as failure:
            failures[tr.id] = failure
    _stop_if_failed(sta, failures, bool(processed), config)
    traces = _align([tr for tr, _ in processed])
    _choose_corners(processed, split, end, snr_band, config, failures)
    _stop_if_failed(sta, failures, any(tr.id not in failures for tr in traces), config)
    traces = [tr for tr in traces if tr.id not in failures]
    _note_coverage(traces, hypo, config, flags)
    streams = _ground_motions(traces, split, config, flags)
    return RecordResult(sta, streams, rejected={k: str(v) for k, v in sorted(failures.items())},
                        flags=flags, distance_km=distance_km, p_arrival=p_travel)


def _usable_channels(merged: Stream, inventory: Inventory, config: PreprocessConfig,
                     failures: dict[str, _ChannelFailure], flags: list[dict[str, str]]
                     ) -> list[tuple[Trace, Any, str]]:
    """The channels that pass the checks, with their response and how it was found.

    A channel that fails is recorded in ``failures`` (by trace id).
    """
    channels: list[tuple[Trace, Any, str]] = []
    for tr in merged:
        try:
            _check_channel(tr, config, flags)
            response, how = _response(tr, inventory)
        except _ChannelFailure as failure:
            failures[tr.id] = failure
            continue
        channels.append((tr, response, how))
    return channels


def _trim_to_common_span(sta: str, traces: Sequence[Trace], config: PreprocessConfig) -> None:
    """Trim every channel to the span they share (at least ``config.min_duration``).

    One span for every channel, as gmprocess's stream assembly does: components of different
    lengths (CI.MPM: 66.1 to 68.2 s) are processed over the same window.
    """
    common_start = max(tr.stats.starttime for tr in traces)
    common_end = min(tr.stats.endtime for tr in traces)
    if common_end - common_start < config.min_duration:
        raise StationError(sta, f"the channels share only {max(common_end - common_start, 0):.1f}"
                                f" s of record, at least {config.min_duration:g} s needed",
                           quality=True)
    for tr in traces:
        tr.trim(common_start, common_end, nearest_sample=True)


def _signal_window(sta: str, inventory: Inventory, channels: Sequence[tuple[Trace, Any, str]],
                   hypo: Hypocentre, config: PreprocessConfig
                   ) -> tuple[float, float, UTCDateTime, UTCDateTime]:
    """Epicentral distance (km), P travel time (s), and the start and end of the signal.

    The signal starts at the P arrival (shifted by ``config.p_arrival_shift``, not before the
    record) and lasts the source duration (Brune) plus the path duration.
    """
    coordinates = _coordinates(inventory, channels[0][0])
    distance_m, _, _ = gps2dist_azimuth(hypo.latitude, hypo.longitude,
                                        coordinates["latitude"], coordinates["longitude"])
    distance_km = distance_m / 1000.0
    p_travel = processing.p_arrival_time(kilometers2degrees(distance_km), hypo.depth_km,
                                         config.travel_time_model)
    if p_travel is None:
        raise StationError(sta, f"no P arrival in {config.travel_time_model} at "
                                f"{distance_km:.1f} km")
    starts = [tr.stats.starttime for tr, _, _ in channels]
    split = max(hypo.time + p_travel + config.p_arrival_shift, min(starts))
    source_duration = 1.0 / processing.brune_corner_frequency(
        hypo.moment, WINDOW_STRESS_DROP, WINDOW_SHEAR_VELOCITY)
    end = split + source_duration + PATH_DURATION + PATH_DURATION_PER_KM * distance_km
    return distance_km, p_travel, split, end


def _note_coverage(traces: Sequence[Trace], hypo: Hypocentre, config: PreprocessConfig,
                   flags: list[dict[str, str]]) -> None:
    """``stats.coverage``: the fraction of the analysis window recorded (flagged under 99 %)."""
    window = (hypo.time + config.window_start,
              hypo.time + config.window_start + config.window_length)
    for tr in traces:
        covered = max(0.0, float(min(tr.stats.endtime, window[1])
                                 - max(tr.stats.starttime, window[0])))
        tr.stats.coverage = round(min(1.0, covered / config.window_length), 4)
        if covered < 0.99 * config.window_length:
            _flag(tr, "partial", f"{tr.id}: the record covers "
                                 f"{covered / config.window_length:.0%} of the analysis window",
                  flags)


def _ground_motions(traces: Sequence[Trace], split: UTCDateTime, config: PreprocessConfig,
                    flags: list[dict[str, str]]) -> dict[str, Stream]:
    """Band-pass the accelerations, remove the pre-event mean, integrate: ``{quantity: Stream}``.

    Anomalies are flagged on the accelerations; their flags hold for all three quantities.
    """
    streams: dict[str, Stream] = {q: Stream() for q in QUANTITIES}
    for tr in traces:
        info = tr.stats.dare
        tr.data = processing.filter_in_frequency(tr.data, tr.stats.delta,
                                                 highpass=info["highpass"],
                                                 lowpass=info["lowpass"],
                                                 order=config.filter_order)
        _note(tr, f"bandpass(butterworth_frequency_domain::zerophase=True::highpass="
                  f"{info['highpass']:.5g}::lowpass={info['lowpass']:.5g}::"
                  f"order={config.filter_order})")
        noise = tr.slice(endtime=split).data
        if noise.size:
            tr.data = tr.data - noise.mean()
        _note(tr, "detrend(pre_event_mean)")
        vel = tr.copy()
        vel.data = processing.integrate_in_frequency(tr.data, tr.stats.delta)
        disp = vel.copy()
        disp.data = processing.integrate_in_frequency(vel.data, vel.stats.delta)
        _note(vel, "integrate(frequency_domain::initial=0) of the acceleration")
        _note(disp, "integrate(frequency_domain::initial=0) twice of the acceleration")
        for quantity, trace in zip(QUANTITIES, (tr, vel, disp), strict=True):
            trace.stats.dare = {**info, "flags": list(info.get("flags", [])),
                                "quantity": quantity}
            streams[quantity].append(trace)
    _flag_anomalies(streams["ACC"], config.anomaly_ratio, flags)
    for quantity in ("VEL", "DISP"):  # the flags of the acceleration hold for all three
        for trace, acc in zip(streams[quantity], streams["ACC"], strict=True):
            trace.stats.dare["flags"] = list(acc.stats.dare["flags"])
    return streams


def _stop_if_failed(sta: str, failures: Mapping[str, _ChannelFailure], any_left: bool,
                    config: PreprocessConfig) -> None:
    if failures and (config.reject_whole_station or not any_left):
        reasons = "; ".join(str(reason) if channel in str(reason) else f"{channel}: {reason}"
                            for channel, reason in sorted(failures.items()))
        raise StationError(sta, reasons,
                           quality=all(failure.quality for failure in failures.values()))


def _window_and_snr(
    tr: Trace, response: Any, how: str, hypo: Hypocentre, split: UTCDateTime,
    end: UTCDateTime, snr_band: tuple[float, float], config: PreprocessConfig,
    flags: list[dict[str, str]],
) -> tuple[Trace, processing.SnrCurve]:
    """Response removal, cut, taper, acceleration, and the SNR of one channel."""
    tr.data = np.require(tr.data, dtype=np.float64)
    tr.detrend("linear")
    tr.detrend("demean")
    output = _to_motion(tr, response, how, config)
    tr.stats.dare["response"] = how
    if how == "sensitivity":
        _flag(tr, "sensitivity_only", f"{tr.id}: response known as a sensitivity only",
              flags)
    tr.trim(split - config.seconds_before_split, end)
    noise_duration = float(split - tr.stats.starttime)
    signal_duration = float(tr.stats.endtime - split)
    if noise_duration < config.min_noise_duration:
        raise _ChannelFailure(f"channel {tr.id}: {noise_duration:.1f} s of noise before the P "
                              f"arrival, at least {config.min_noise_duration:g} s needed")
    if signal_duration < config.min_signal_duration:
        raise _ChannelFailure(f"channel {tr.id}: {signal_duration:.1f} s of signal after the P "
                              f"arrival, at least {config.min_signal_duration:g} s needed")
    tr.taper(max_percentage=0.05, type="hann")
    if output == "VEL":
        tr.data = processing.differentiate_in_frequency(tr.data, tr.stats.delta)
        _note(tr, "differentiate(frequency_domain) to acceleration")
    shaking = processing.shaking_duration(hypo.magnitude)
    event = tr.slice(starttime=split)
    if shaking > 0:
        event = event.slice(endtime=split + shaking)
    try:
        curve = processing.signal_to_noise(tr.slice(endtime=split).data, event.data,
                                           tr.stats.delta, shaking)
    except ValueError as error:
        raise _ChannelFailure(f"channel {tr.id}: SNR: {error}") from None
    low, high = snr_band
    worst = curve.minimum(low, high)
    tr.stats.dare.update({"split_time": str(split), "signal_end": str(end),
                          "snr_min": round(worst, 3), "snr_band": [round(low, 4), high]})
    if worst < config.snr_threshold:
        raise _ChannelFailure(f"channel {tr.id}: signal-to-noise ratio {worst:.2f} below "
                              f"{config.snr_threshold:g} within {low:.3g}-{high:.3g} Hz")
    return tr, curve


def _align(traces: Sequence[Trace]) -> list[Trace]:
    """Put the channels on the first one's time grid, over their common span.

    Channels sampled at the same instants (within 1 % of a sample) are cut; others are
    interpolated onto the grid (Lanczos).
    """
    first = traces[0]
    dt = first.stats.delta
    start = max(tr.stats.starttime for tr in traces)
    end = min(tr.stats.endtime for tr in traces)
    grid_start = first.stats.starttime + dt * math.ceil(
        (start - first.stats.starttime) / dt - 1e-6)
    npts = math.floor((end - grid_start) / dt + 1e-6) + 1
    if npts < 2:
        raise StationError(station_id(first), "the channels share no time span")
    for tr in traces:
        shift = float(grid_start - tr.stats.starttime) / dt
        if tr.stats.sampling_rate == first.stats.sampling_rate and abs(
                shift - round(shift)) <= 0.01:
            index = round(shift)
            tr.data = tr.data[index:index + npts]
        else:
            tr.interpolate(first.stats.sampling_rate, method="lanczos", a=LANCZOS_A,
                           starttime=grid_start, npts=npts)
        tr.stats.starttime = grid_start
    return list(traces)


def _choose_corners(
    processed: Sequence[tuple[Trace, processing.SnrCurve]], split: UTCDateTime,
    end: UTCDateTime, snr_band: tuple[float, float], config: PreprocessConfig,
    failures: dict[str, _ChannelFailure],
) -> None:
    """SNR corners, shared by the horizontals, capped low-pass, polynomial high-pass."""
    low, high = snr_band
    corners: dict[str, tuple[float, float]] = {}
    for tr, curve in processed:
        duration = float(end - tr.stats.starttime)
        try:
            corners[tr.id] = processing.corners_from_snr(
                curve, threshold=config.snr_threshold, fmin=low, fmax=high,
                duration=duration)
        except ValueError as error:
            failures[tr.id] = _ChannelFailure(f"channel {tr.id}: {error}")
    horizontals = [tr.id for tr, _ in processed if _is_horizontal(tr) and tr.id in corners]
    if len(horizontals) > 1:
        shared = processing.same_horizontal_corners([corners[h] for h in horizontals])
        corners.update(dict.fromkeys(horizontals, shared))
    raised = False
    for tr, _ in processed:
        if tr.id not in corners:
            continue
        highpass, lowpass = corners[tr.id]
        nyquist = 0.5 * tr.stats.sampling_rate
        lowpass = min(lowpass, config.lowpass_nyquist_fraction * nyquist, config.lowpass_max)
        snr_highpass = highpass
        if config.polyfit_target > 0:
            polyfit = processing.polyfit_highpass(tr.data, tr.stats.delta,
                                                  target=config.polyfit_target,
                                                  fmax=config.highpass_max,
                                                  order=config.filter_order)
            if config.highpass_max - polyfit < 1e-9:
                failures[tr.id] = _ChannelFailure(
                    f"channel {tr.id}: no high-pass corner up to {config.highpass_max:g} Hz "
                    "removes the displacement's long-period trend")
                continue
            if polyfit > highpass:
                highpass = polyfit
                raised = raised or _is_horizontal(tr)
        if highpass >= lowpass:
            failures[tr.id] = _ChannelFailure(
                f"channel {tr.id}: high-pass corner {highpass:.3g} Hz is not below the "
                f"low-pass corner {lowpass:.3g} Hz")
            continue
        corners[tr.id] = (highpass, lowpass)
        tr.stats.dare["highpass_snr"] = round(snr_highpass, 6)
    if raised:
        kept = [h for h in horizontals if h not in failures]
        if len(kept) > 1:
            shared_high = max(corners[h][0] for h in kept)
            for h in kept:
                corners[h] = (shared_high, corners[h][1])
    for tr, _ in processed:
        if tr.id in failures or tr.id not in corners:
            continue
        highpass, lowpass = corners[tr.id]
        tr.stats.dare.update({"highpass": float(highpass), "lowpass": float(lowpass),
                              "usable_periods": [round(1.0 / lowpass, 4),
                                                 round(1.0 / (1.25 * highpass), 3)]})
        _note(tr, f"corner_frequencies(snr::threshold={config.snr_threshold:g}::"
                  f"band={low:.3g}-{high:.3g}Hz::highpass={highpass:.5g}::"
                  f"lowpass={lowpass:.5g}::polyfit_target={config.polyfit_target:g})")


def _flag_anomalies(acc: Stream, ratio: float, flags: list[dict[str, str]]) -> None:
    """Flag a channel whose PGA is ``ratio`` times off the median of its siblings'."""
    if len(acc) < 2:
        return
    peaks = {tr.id: float(np.abs(tr.data).max()) for tr in acc}
    for tr in acc:
        others = [p for i, p in peaks.items() if i != tr.id]
        reference = float(np.median(others))
        mine = peaks[tr.id]
        if reference <= 0 or mine <= 0:
            continue
        factor = max(mine / reference, reference / mine)
        if factor > ratio and (len(acc) > 2 or mine < reference):
            where = "below" if mine < reference else "above"
            _flag(tr, "anomalous", f"{tr.id}: PGA {factor:.0f} times {where} the median of "
                                   f"the station's other channels", flags)


# -- synthetics and the comparison copies ------------------------------------------------------
def channel_orientation(inventory: Inventory, trace_id: str, when: UTCDateTime
                        ) -> tuple[float, float]:
    """Azimuth (degrees from north) and dip (degrees down) of a channel, from StationXML.

    Channel codes stand in when the metadata lack them: ``Z`` (0, -90), ``N`` (0, 0),
    ``E`` (90, 0).
    """
    try:
        orientation = inventory.get_orientation(trace_id, when)
        azimuth, dip = orientation.get("azimuth"), orientation.get("dip")
    except Exception:  # obspy raises a bare Exception when nothing matches
        azimuth = dip = None
    if azimuth is None or dip is None:
        defaults = {"Z": (0.0, -90.0), "N": (0.0, 0.0), "E": (90.0, 0.0)}
        component = trace_id[-1:]
        if component not in defaults:
            raise StationError(".".join(trace_id.split(".")[:2]),
                               f"no azimuth/dip for channel {trace_id} in the metadata")
        return defaults[component]
    return float(azimuth), float(dip)


def synthetic_for_channels(
    synthetic: Stream, channels: Sequence[Trace], inventory: Inventory,
) -> Stream:
    """The synthetic displacement projected onto the orientation of each observed channel.

    Parameters
    ----------
    synthetic
        Displacement (m) of one station with components ending ``E``, ``N`` and ``Z`` (up),
        on one time grid.
    channels
        The observed channels (their ids and start times select the orientation).
    inventory
        StationXML with the channels' azimuth and dip (SEED convention: dip positive down).

    Returns
    -------
    Stream
        One trace per observed channel, channel code ``<band>X<component>`` of the synthetic's
        band code and the observed component letter (``HXE``, ``BX1``...).
    """
    sta = station_id(channels[0]) if channels else "?"
    by_component = {tr.stats.channel[-1:]: tr for tr in synthetic}
    if not {"E", "N", "Z"} <= set(by_component):
        raise StationError(sta, f"synthetic components E, N and Z needed, got "
                                f"{sorted(by_component)}")
    east, north, up = (by_component[c] for c in "ENZ")
    if len({tr.stats.npts for tr in (east, north, up)}) != 1:
        raise StationError(sta, "synthetic components of different lengths")
    out = Stream()
    for channel in channels:
        azimuth, dip = channel_orientation(inventory, channel.id, channel.stats.starttime)
        az, dp = math.radians(azimuth), math.radians(dip)
        data = (math.cos(dp) * (math.sin(az) * east.data + math.cos(az) * north.data)
                - math.sin(dp) * up.data)
        trace = east.copy()
        trace.data = np.asarray(data, dtype=np.float64)
        trace.stats.channel = east.stats.channel[:1] + "X" + channel.stats.channel[-1]
        trace.stats.location = channel.stats.location
        _note(trace, f"projected onto {channel.id} (azimuth {azimuth:g}, dip {dip:g})")
        out.append(trace)
    return out


def _comparison_band(
    record: Trace, synthetic_band: tuple[float, float], config: PreprocessConfig,
) -> tuple[float, float]:
    """The band compared: the record's, narrowed to the synthetics' and the grid's."""
    highpass = max(record.stats.dare["highpass"], synthetic_band[0],
                   config.compare_freqmin or 0.0)
    lowpass = min(record.stats.dare["lowpass"], synthetic_band[1],
                  0.4 * config.sampling_rate, config.compare_freqmax or math.inf)
    if highpass >= lowpass:
        raise StationError(station_id(record), f"no common band for {record.id}: record "
                                               f"{record.stats.dare['highpass']:.3g}-"
                                               f"{record.stats.dare['lowpass']:.3g} Hz, "
                                               f"synthetics {synthetic_band[0]:.3g}-"
                                               f"{synthetic_band[1]:.3g} Hz", quality=True)
    return highpass, lowpass


def _on_grid(tr: Trace, origin_time: UTCDateTime, config: PreprocessConfig) -> Trace:
    """Interpolate onto ``origin + window_start + k / sampling_rate`` and cut the window.

    Samples of the window outside the record are zeros; ``tr.stats.coverage`` is the fraction
    of the window's samples that come from the record.
    """
    sta = station_id(tr)
    dt = 1.0 / config.sampling_rate
    t0 = origin_time + config.window_start
    n = config.npts
    eps = 1e-6 * dt
    first = max(0, math.ceil((tr.stats.starttime - t0 - eps) / dt))
    last = min(n - 1, math.floor((tr.stats.endtime - t0 + eps) / dt))
    if last < first:
        raise StationError(sta, f"trace {tr.id} ({tr.stats.starttime} - {tr.stats.endtime}) has "
                                f"no data in the window {t0} - {t0 + config.window_length}")
    start = max(t0 + first * dt, tr.stats.starttime)  # obspy's rule: not before the record
    offset = float(start - tr.stats.starttime) / tr.stats.delta
    if tr.stats.sampling_rate == config.sampling_rate and abs(offset - round(offset)) < 1e-6:
        # already on the grid (synthetics computed at the grid's rate from the origin)
        index = round(offset)
        tr.data = tr.data[index:index + last - first + 1]
        tr.stats.starttime = start
    else:
        tr.interpolate(config.sampling_rate, method="lanczos", a=LANCZOS_A, starttime=start,
                       npts=last - first + 1)
    data = np.zeros(n)
    data[first:last + 1] = tr.data
    tr.data = data
    tr.stats.starttime = t0
    tr.stats.coverage = (last - first + 1) / n
    _note(tr, f"cut(window=[{t0}, {t0 + config.window_length}]::npts={n}::samples_from_record="
              f"{last - first + 1}::zero_padded={n - (last - first + 1)}"
              f"::coverage={tr.stats.coverage:.4f})")
    return tr


def _three_quantities(acc: Trace) -> dict[str, Trace]:
    vel = acc.copy()
    vel.data = processing.integrate_in_frequency(acc.data, acc.stats.delta)
    disp = vel.copy()
    disp.data = processing.integrate_in_frequency(vel.data, vel.stats.delta)
    return {"ACC": acc, "VEL": vel, "DISP": disp}


def _synthetic_acceleration(syn: Trace, pad_start: UTCDateTime, band: tuple[float, float],
                            extra: tuple[float | None, float | None], info: Mapping[str, Any],
                            config: PreprocessConfig) -> Trace:
    """A synthetic displacement as acceleration through the observed record's filters.

    Zero-padded before ``pad_start`` (the ground is at rest before the origin), tapered at its
    end, differentiated twice in the frequency domain and filtered in the record's band
    (``info``), then in the narrower common ``band`` where ``extra`` gives a corner.
    """
    (highpass, lowpass), (extra_high, extra_low) = band, extra
    syn = syn.copy()
    if syn.stats.starttime > pad_start:
        syn.trim(starttime=pad_start, pad=True, fill_value=0.0, nearest_sample=False)
        _note(syn, "zero_pad_front(reason='at rest before the origin')")
    syn.taper(max_percentage=config.taper_fraction, type="hann", side="right")
    npts = syn.stats.npts
    padded = np.concatenate([syn.data, np.zeros(npts)])  # no wrap-around of the filters
    acc = processing.differentiate_in_frequency(
        processing.differentiate_in_frequency(padded, syn.stats.delta), syn.stats.delta)
    for h, lo in ((info["highpass"], info["lowpass"]), (extra_high, extra_low)):
        if h or lo:
            acc = processing.filter_in_frequency(acc, syn.stats.delta, highpass=h,
                                                 lowpass=lo, order=config.filter_order)
    syn.data = acc[:npts]
    _note(syn, f"differentiate(frequency_domain) twice; bandpass(record band "
               f"{info['highpass']:.5g}-{info['lowpass']:.5g} Hz, then common band "
               f"{highpass:.5g}-{lowpass:.5g} Hz)")
    return syn


def comparison_copies(
    record: RecordResult, synthetic: Stream, inventory: Inventory, origin_time: UTCDateTime,
    synthetic_band: tuple[float, float], config: PreprocessConfig,
) -> tuple[dict[str, Stream], dict[str, Stream]]:
    """Observed and synthetic motions in the same band, on the same time grid.

    For each observed channel the band is the record's (:func:`process_record`), narrowed to
    ``synthetic_band`` (what the synthetics resolve), to 0.4 times ``config.sampling_rate``
    and to ``compare_freqmin``/``compare_freqmax``. The observed acceleration is filtered
    further where the band is narrower than its own; the synthetic (projected onto the
    channel, :func:`synthetic_for_channels`) is zero-padded before the origin (the ground is
    at rest), tapered at its end, turned into acceleration in the frequency domain and passed
    through the very same filters. Both are integrated in the frequency domain and
    interpolated onto the comparison grid.

    Parameters
    ----------
    record
        The station's processed record.
    synthetic
        Synthetic displacement (m) of the station, components E, N, Z.
    inventory
        StationXML (channel orientations).
    origin_time
        Origin time of the event.
    synthetic_band
        ``(fmin, fmax)`` (Hz) resolved by the synthetics.
    config
        Processing parameters.

    Returns
    -------
    observed, synthetic
        ``{"ACC", "VEL", "DISP"}`` -> Stream on the comparison grid, one trace per observed
        channel (synthetic channels ``?X<component>``), with ``stats.coverage`` and
        ``stats.dare`` (the band compared as ``highpass``/``lowpass``, the record's flags).
    """
    acc_record = record.streams["ACC"]
    sta = record.station
    for tr in synthetic:
        _check_samples(tr)
    projected = synthetic_for_channels(synthetic, list(acc_record), inventory)
    observed_out: dict[str, Stream] = {q: Stream() for q in QUANTITIES}
    synthetic_out: dict[str, Stream] = {q: Stream() for q in QUANTITIES}
    pad_start = origin_time + config.window_start - max(60.0, 0.2 * config.window_length)
    for observed, syn in zip(acc_record, projected, strict=True):
        info = observed.stats.dare
        highpass, lowpass = _comparison_band(observed, synthetic_band, config)
        extra_high = highpass if highpass > info["highpass"] else None
        extra_low = lowpass if lowpass < info["lowpass"] else None
        obs = observed.copy()
        if extra_high or extra_low:
            obs.data = processing.filter_in_frequency(obs.data, obs.stats.delta,
                                                      highpass=extra_high, lowpass=extra_low,
                                                      order=config.filter_order)
            _note(obs, f"bandpass(common band::highpass={highpass:.5g}::lowpass="
                       f"{lowpass:.5g}::order={config.filter_order})")
        syn = _synthetic_acceleration(syn, pad_start, (highpass, lowpass),
                                      (extra_high, extra_low), info, config)
        band = {"highpass": highpass, "lowpass": lowpass,
                "record_band": [info["highpass"], info["lowpass"]]}
        for kind, acc_trace, out in (("observed", obs, observed_out),
                                     ("synthetic", syn, synthetic_out)):
            for quantity, trace in _three_quantities(acc_trace).items():
                trace = _on_grid(trace, origin_time, config)
                trace.stats.dare = {**band, "quantity": quantity,
                                    "flags": list(info.get("flags", []))
                                    if kind == "observed" else []}
                out[quantity].append(trace)
    if not observed_out["ACC"]:
        raise StationError(sta, "no channel to compare")
    return observed_out, synthetic_out
