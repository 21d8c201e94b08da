"""SPECFEM3D's ASCII seismograms (``NET.STA.CHA.semd`` and friends) as ObsPy traces.

Each file holds two columns: time (s) and the value. The time counts from the source's origin
time - the ``CMTSOLUTION`` header time plus its (smallest) time shift, see
:func:`~dare_cli.ra.simulate.specfem.cmtsolution.simulation_origin_time` - and starts before
zero, at ``-t0`` so that the source time function starts from rest (``t0`` = 2 half durations
in SPECFEM's examples). SPECFEM writes both columns in single precision (``write(*,*)``), so
the times carry float32 rounding (7 significant digits).

File names
    ``NET.STA.CHA.EXT``: the channel is a band code set by the time step (``L`` DT >= 1 s,
    ``M`` > 0.1 s, ``B`` > 0.0125 s, ``H`` > 0.004 s, ``C`` > 0.001 s, ``F`` otherwise: see
    :func:`band_code`), the instrument code ``X`` (synthetic) and the component: ``E``, ``N``,
    ``Z`` with UTM/geographic coordinates, ``X``, ``Y``, ``Z`` with
    ``SUPPRESS_UTM_PROJECTION``, ``P`` for pressure. The extension gives the quantity:
    ``semd`` displacement (m), ``semv`` velocity (m/s), ``sema`` acceleration (m/s²),
    ``semp`` pressure (Pa).

The traces get ``stats.units`` (``"m"``, ``"m/s"``, ``"m/s**2"``, ``"Pa"``) and
``stats.quantity`` (``"DISP"``, ``"VEL"``, ``"ACC"``, ``"PRESSURE"``; the first three are the
quantity names of :func:`dare_cli.ra.preprocess.preprocess_synthetic`), an empty location code
and a ``stats.processing`` note naming the file.
"""

from __future__ import annotations

import fnmatch
import os
import warnings
from pathlib import Path

import numpy as np
from obspy import Stream, Trace, UTCDateTime

from dare_cli import __version__
from dare_cli.ra.simulate.specfem.errors import SpecfemFileError

__all__ = [
    "BANDS",
    "COMPONENTS",
    "QUANTITIES",
    "band_code",
    "read_seismogram",
    "read_seismograms",
]

#: Band codes SPECFEM3D writes (by decreasing time step).
BANDS = "LMBHCF"
#: Component codes SPECFEM3D writes.
COMPONENTS = "ENZXYP"
#: Extension -> (quantity, units, description).
QUANTITIES = {
    "semd": ("DISP", "m", "displacement"),
    "semv": ("VEL", "m/s", "velocity"),
    "sema": ("ACC", "m/s**2", "acceleration"),
    "semp": ("PRESSURE", "Pa", "pressure"),
}
_FLOAT32_EPS = float(np.finfo(np.float32).eps)


def band_code(dt: float) -> str:
    """Band and instrument code SPECFEM3D gives to seismograms sampled every ``dt`` s.

    Parameters
    ----------
    dt
        Sampling interval, s.

    Returns
    -------
    str
        ``"LX"``, ``"MX"``, ``"BX"``, ``"HX"``, ``"CX"`` or ``"FX"`` (IRIS band codes,
        ``X`` = synthetic).
    """
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt!r}")
    if dt >= 1.0:
        return "LX"
    for limit, band in ((0.1, "MX"), (0.0125, "BX"), (0.004, "HX"), (0.001, "CX")):
        if dt > limit:
            return band
    return "FX"


def _clean(value: float, uncertainty: float) -> float:
    """The shortest decimal within ``uncertainty`` of ``value``.

    This undoes SPECFEM's float32 rounding of times, e.g. 0.011999999955 -> 0.012 or
    -0.622799993 -> -0.6228, without moving a value by more than its rounding error.
    """
    for digits in range(1, 18):
        rounded = float(f"{value:.{digits}g}")
        if abs(rounded - value) <= uncertainty:
            return rounded
    return value


def _seismogram_codes(file: Path, source: str, network: str | None, station: str | None,
                      channel: str | None) -> tuple[str, str, str, str]:
    """The extension and the codes of a seismogram, given or from its ``NET.STA.CHA.EXT`` name."""
    parts = file.name.split(".")
    extension = parts[-1].lower() if len(parts) > 1 else ""
    if extension not in QUANTITIES:
        raise SpecfemFileError(source, f"unknown extension {extension!r}: expected one of "
                                       f"{', '.join(QUANTITIES)}")
    if len(parts) == 4:
        network = parts[0] if network is None else network
        station = parts[1] if station is None else station
        channel = parts[2] if channel is None else channel
        from_name = True
    else:
        from_name = False
    if network is None or station is None or channel is None:
        raise SpecfemFileError(source, "the file name is not NET.STA.CHA.EXT: give network, "
                                       "station and channel")
    if from_name and not (len(channel) == 3 and channel[0] in BANDS and channel[1] == "X"
                          and channel[2] in COMPONENTS):
        raise SpecfemFileError(source, f"channel {channel!r} is not a SPECFEM3D code "
                                       f"([{BANDS}]X[{COMPONENTS}]): pass channel= to override")
    return extension, network, station, channel


def _two_columns(file: Path, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Times and finite values of a two-column ASCII seismogram of at least two samples."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            table = np.loadtxt(file, dtype=float, comments="#", ndmin=2)
    except (OSError, ValueError) as exc:
        raise SpecfemFileError(source, f"not a two-column ASCII seismogram ({exc})") from None
    columns = table.shape[1] if table.size else 0
    if columns != 2:
        raise SpecfemFileError(source, f"expected 2 columns (time, value), found {columns}")
    npts = table.shape[0]
    if npts < 2:
        raise SpecfemFileError(source, f"{npts} sample(s): need at least 2 to know the "
                                       "sampling")
    times, data = table[:, 0], table[:, 1]
    if not np.all(np.isfinite(times)):
        raise SpecfemFileError(source, "non-finite times")
    bad = ~np.isfinite(data)
    if bad.any():
        first = int(np.argmax(bad))
        raise SpecfemFileError(source, f"{int(bad.sum())} non-finite value(s) from t = "
                                       f"{times[first]:g} s (line {first + 1}): the simulation "
                                       "was probably unstable (check DT against the mesh)")
    return times, data


def _sampling(times: np.ndarray, source: str) -> tuple[float, float]:
    """The sampling interval and the first time (s), cleaned of float32 rounding.

    Each is rounded to the shortest decimal within the float32 rounding error of SPECFEM's
    time column; the steps must be uniform within that error (or 1 %).
    """
    npts = times.size
    span = float(times[-1] - times[0])
    if not span > 0:
        raise SpecfemFileError(source, "times do not increase")
    reach = float(np.abs(times).max())
    delta = span / (npts - 1)
    # float32 time column: each time is within eps/2 * |t| of the exact one
    jitter = _FLOAT32_EPS * reach
    steps = np.diff(times)
    worst = int(np.argmax(np.abs(steps - delta)))
    if abs(steps[worst] - delta) > max(0.01 * delta, 2.0 * jitter):
        raise SpecfemFileError(source, f"the sampling is not uniform: step {steps[worst]:g} s "
                                       f"against {delta:g} s on average", worst + 2)
    delta = _clean(delta, jitter / (npts - 1))
    start = _clean(float(times[0]), 0.5 * _FLOAT32_EPS * abs(float(times[0])))
    return delta, start


def read_seismogram(
    path: str | os.PathLike[str],
    origin_time: UTCDateTime,
    *,
    network: str | None = None,
    station: str | None = None,
    channel: str | None = None,
) -> Trace:
    """Read one SPECFEM3D ASCII seismogram.

    Parameters
    ----------
    path
        ``NET.STA.CHA.sem[dvap]`` file.
    origin_time
        The time column's zero (UTC): the ``CMTSOLUTION`` header time plus its smallest time
        shift (:func:`~dare_cli.ra.simulate.specfem.cmtsolution.simulation_origin_time`).
    network, station, channel
        Codes to use instead of those of the file name (then the name may be anything, but
        the extension must still be one of ``semd``, ``semv``, ``sema``, ``semp``).

    Returns
    -------
    obspy.Trace
        Data as float64 in the file's units; start time = ``origin_time`` + first time;
        sampling interval = (last time - first time) / (npts - 1); both are rounded to the
        shortest decimal within the float32 rounding error of SPECFEM's time column.

    Raises
    ------
    SpecfemFileError
        The file name is not ``NET.STA.CHA.EXT`` (and no codes were given), the channel is not
        a SPECFEM one, the file has not two numeric columns or fewer than two samples, the
        times are not increasing at a constant step, or the values are not finite (e.g. an
        unstable run: check DT).
    """
    file = Path(path)
    source = os.fspath(path)
    extension, network, station, channel = _seismogram_codes(file, source, network, station,
                                                             channel)
    times, data = _two_columns(file, source)
    delta, start = _sampling(times, source)
    quantity, units, description = QUANTITIES[extension]
    trace = Trace(data=np.ascontiguousarray(data), header={
        "network": network, "station": station, "location": "", "channel": channel,
        "starttime": UTCDateTime(origin_time) + start, "delta": delta,
    })
    trace.stats.units = units
    trace.stats.quantity = quantity
    trace.stats.processing = [
        f"dare {__version__}: read SPECFEM3D ASCII seismogram {file.name} ({description} in "
        f"{units}); time zero = origin time {UTCDateTime(origin_time)}, first sample at "
        f"{start:+.6g} s"]
    return trace


def read_seismograms(folder: str | os.PathLike[str], origin_time: UTCDateTime,
                     pattern: str = "*.sem?") -> Stream:
    """Read every SPECFEM3D ASCII seismogram of a folder (e.g. ``OUTPUT_FILES``).

    Parameters
    ----------
    folder
        The folder.
    origin_time
        The time column's zero (see :func:`read_seismogram`).
    pattern
        Shell pattern of the file names (default: every ``.semd``, ``.semv``, ``.sema`` and
        ``.semp`` file).

    Returns
    -------
    obspy.Stream
        One trace per file, in file-name order.

    Raises
    ------
    SpecfemFileError
        The folder is missing, no file matches, or a file is bad (the message names it).
    """
    directory = Path(folder)
    if not directory.is_dir():
        raise SpecfemFileError(directory, "no such folder")
    files = sorted(p for p in directory.iterdir()
                   if p.is_file() and fnmatch.fnmatchcase(p.name, pattern)
                   and p.suffix.lstrip(".").lower() in QUANTITIES)
    if not files:
        raise SpecfemFileError(directory, f"no SPECFEM3D seismogram matches {pattern!r}")
    return Stream([read_seismogram(p, origin_time) for p in files])
