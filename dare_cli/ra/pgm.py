"""Peak ground motions and pseudo-spectral accelerations of a station, and their misfits.

Units are SI throughout: PGA and PSA in m/s^2, PGV in m/s, PGD in m (divide by :data:`G` for
g). The oscillator is the damped single-degree-of-freedom system

    u'' + 2 zeta omega u' + omega^2 u = -a(t),    omega = 2 pi / T,

and PSA(T) = omega^2 max|u| (ShakeMap and gmprocess convention: periods in seconds, 5%
damping).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np
from obspy import Stream, Trace
from scipy.signal import cont2discrete, lfilter, resample_poly, ss2tf
from scipy.spatial import ConvexHull, QhullError

from dare_cli.ra.norm import HORIZONTAL, NORM_CODES, split_components, station_norms

__all__ = [
    "DAMPING",
    "PERIODS",
    "G",
    "misfit",
    "oscillator_displacement",
    "peak",
    "psa_key",
    "rotd",
    "spectral_acceleration",
    "station_pgm",
]

#: Oscillator periods (s) of the pseudo-spectral accelerations.
PERIODS = (0.3, 1.0, 3.0)
#: Oscillator damping (fraction of critical).
DAMPING = 0.05
#: Standard gravity (m/s^2), to convert to g.
G = 9.80665
#: Largest sampling interval, as a fraction of the oscillator period, used without upsampling:
#: with 20 samples per cycle the oscillator's peak falls at most 1 - cos(pi / 20) = 1.2% above
#: the largest sample (with 10, 4.9%; measured 1.5% on a 4 Hz signal at T = 0.2 s).
MAX_DT_FRACTION = 0.05


def psa_key(period: float) -> str:
    """Key of a PSA in :func:`station_pgm` rows: ``psa0.3``, ``psa1``, ``psa3`` (``{:g}``)."""
    return f"psa{float(period):g}"


def _finite(tr: Trace) -> np.ndarray:
    data = np.asarray(tr.data, dtype=np.float64)
    if data.size == 0:
        raise ValueError(f"trace {tr.id} is empty")
    if not np.isfinite(data).all():
        raise ValueError(f"trace {tr.id} contains NaN or inf")
    return data


def peak(tr: Trace) -> float:
    """Largest absolute value of a trace (in the trace's unit).

    Raises
    ------
    ValueError
        The trace is empty or contains NaN/inf.
    """
    return float(np.abs(_finite(tr)).max())


@lru_cache(maxsize=128)
def _oscillator_filter(dt: float, period: float, damping: float) -> tuple[np.ndarray, np.ndarray]:
    """Recursive filter (b, a): ground acceleration -> relative displacement of the oscillator.

    The continuous state-space oscillator is discretised with a first-order (triangle) hold,
    which is exact when the input is linear between samples (as the Nigam-Jennings recursion).
    """
    omega = 2 * math.pi / period
    a_mat = np.array([[0.0, 1.0], [-omega**2, -2 * damping * omega]])
    b_mat = np.array([[0.0], [-1.0]])
    c_mat = np.array([[1.0, 0.0]])
    d_mat = np.array([[0.0]])
    ad, bd, cd, dd, _ = cont2discrete((a_mat, b_mat, c_mat, d_mat), dt, method="foh")
    num, den = ss2tf(ad, bd, cd, dd)
    return np.asarray(num[0], dtype=np.float64), np.asarray(den, dtype=np.float64)


def oscillator_displacement(
    acc: Trace, period: float, damping: float = DAMPING,
) -> tuple[np.ndarray, float]:
    """Relative displacement of a damped oscillator driven by a ground acceleration.

    The state-space oscillator is discretised exactly for an input that is linear between
    samples (first-order hold, ``scipy.signal.cont2discrete(method="foh")``; the same
    assumption as gmprocess's Nigam-Jennings recursion) and run as a recursive filter
    (``scipy.signal.lfilter``; identical to ``scipy.signal.lsim`` with linear interpolation to
    ~1e-13, 500 times faster). The oscillator is at rest before the first sample, which
    should be ~0 (tapered or padded records are). When the sampling interval exceeds
    ``period / 20`` (:data:`MAX_DT_FRACTION`) the peak of the response could fall between
    samples, so the record is first upsampled by an integer factor with a polyphase
    anti-imaging filter
    (``scipy.signal.resample_poly``; the record must be band-limited below its Nyquist
    frequency, which the preprocessing ensures).

    Parameters
    ----------
    acc
        Ground acceleration (m/s^2).
    period
        Natural period of the oscillator (s).
    damping
        Fraction of critical damping (0 < damping < 1).

    Returns
    -------
    tuple
        ``(u, dt)``: relative displacement (m) and its sampling interval (s), smaller than
        the trace's when it was upsampled.

    Raises
    ------
    ValueError
        Non-positive period, damping outside (0, 1), or an empty / non-finite trace.
    """
    if not period > 0:
        raise ValueError(f"oscillator period must be positive seconds, not {period}")
    if not 0 < damping < 1:
        raise ValueError(f"damping must be within (0, 1), not {damping}")
    data = _finite(acc)
    dt = float(acc.stats.delta)
    factor = math.ceil(dt / (MAX_DT_FRACTION * period) - 1e-9)
    if factor > 1:
        data = resample_poly(data, factor, 1)
        dt = dt / factor
    num, den = _oscillator_filter(dt, float(period), float(damping))
    return lfilter(num, den, data), dt


def spectral_acceleration(acc: Trace, period: float, damping: float = DAMPING) -> float:
    """Pseudo-spectral acceleration ``omega^2 max|u|`` of a damped oscillator (m/s^2).

    Parameters
    ----------
    acc
        Ground acceleration (m/s^2).
    period
        Natural period of the oscillator (s).
    damping
        Fraction of critical damping.

    Returns
    -------
    float
        PSA in m/s^2 (see :func:`oscillator_displacement` for the method).
    """
    u, _ = oscillator_displacement(acc, period, damping)
    return float((2 * math.pi / period) ** 2 * np.abs(u).max())


def _vector_psa(accs: Sequence[Trace], period: float, damping: float) -> float:
    """``omega^2 max_t |u(t)|`` of the vector of oscillator displacements of components.

    For two horizontals this is the largest PSA over all horizontal directions (RotD100).
    """
    disps = [oscillator_displacement(tr, period, damping)[0] for tr in accs]
    norm = np.sqrt(np.sum(np.square(disps), axis=0))
    return float((2 * math.pi / period) ** 2 * norm.max())


def rotd(first: np.ndarray, second: np.ndarray, percentile: float = 50.0) -> float:
    """RotD percentile of two orthogonal horizontal motions (Boore, 2010).

    The peaks of ``first cos(theta) + second sin(theta)`` for theta from 0 to 180 degrees in
    steps of one degree (181 angles, as gmprocess), and their ``percentile`` (50: RotD50,
    the median over directions, the component of NGA-West2 ground-motion models and of
    ShakeMap; 100: the largest over all directions).

    Parameters
    ----------
    first, second
        The two horizontals, same length and time grid.
    percentile
        0 to 100.
    """
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rotd needs two series of the same length, not {a.size} and {b.size}")
    angles = np.radians(np.linspace(0.0, 180.0, 181))
    # max_t |a cos + b sin| is reached at a vertex of the convex hull of the points +-(a, b):
    # the hull (tens of points) stands for the whole record, exactly
    points = np.column_stack([a, b])
    try:
        hull = ConvexHull(np.vstack([points, -points]))
        points = hull.points[hull.vertices]
    except QhullError:  # fewer than three distinct directions (silence, one polarisation)
        pass
    peaks = np.empty(angles.size)
    for start in range(0, angles.size, 32):  # 32 angles at a time: bounded memory
        chunk = angles[start:start + 32, None]
        peaks[start:start + 32] = np.abs(np.cos(chunk) * points[:, 0]
                                         + np.sin(chunk) * points[:, 1]).max(axis=1)
    return float(np.percentile(peaks, percentile))


def _rotd_psa(accs: Sequence[Trace], period: float, damping: float) -> float:
    """RotD50 of the PSA: the oscillator responses rotated (the oscillator is linear)."""
    first, second = (oscillator_displacement(tr, period, damping)[0] for tr in accs)
    return float((2 * math.pi / period) ** 2 * rotd(first, second))


def _coverage(traces: Sequence[Trace]) -> float:
    values = [float(tr.stats.coverage) for tr in traces if "coverage" in tr.stats]
    return min(values) if values else math.nan


def station_pgm(
    acc: Stream,
    vel: Stream,
    disp: Stream,
    periods: Sequence[float] = PERIODS,
    damping: float = DAMPING,
) -> list[dict[str, float | str]]:
    """Peak motions of one station: per component, and the horizontal combinations it has.

    Parameters
    ----------
    acc, vel, disp
        One to three components (Z and N/E, 1/2 or R/T) of acceleration (m/s^2), velocity
        (m/s) and displacement (m) of one station, with the same trace ids, on a common time
        grid (as returned by the preprocessing). Norm traces (channel codes ending with ``H``
        or ``3``) in these streams are ignored: the norms are computed here.
    periods
        Oscillator periods (s) of the PSAs.
    damping
        Oscillator damping (fraction of critical).

    Returns
    -------
    list of dict
        One row per component (horizontals first, then the vertical), then, where the
        station has them: ``"H"`` (horizontal norm ``sqrt(N^2 + E^2)``; its PSA from the
        vector of the two oscillators, i.e. RotD100) and ``"3"`` (three-component norm), both
        with two horizontals; ``"maxh"`` (the larger horizontal, metric by metric: ShakeMap's
        ``pga``/``pgv``), with at least one horizontal; ``"rotd50"`` (the median over
        horizontal directions, gmprocess's and the ground-motion models' component), with two.
        Keys: ``id`` (trace id; ``CI.CCC..HNH`` for the norm, ``CI.CCC..HN[NE]`` for maxh,
        ``CI.CCC..rotd50``), ``station`` (``NET.STA``),
        ``location``, ``channel`` (``HNE``, ``HNH``, ``HN[NE]``, ``rotd50``), ``component``,
        ``pga`` (m/s^2), ``pgv`` (m/s), ``pgd`` (m), ``psa<T>`` (m/s^2, see :func:`psa_key`)
        and ``coverage`` (the smallest fraction of the window covered by the records used;
        NaN when unknown).

    Raises
    ------
    ValueError
        No or repeated components, ids that differ between the quantities, or traces not on
        a common grid.
    """
    streams = {q: Stream([tr for tr in s if tr.stats.channel[-1:] not in NORM_CODES])
               for q, s in {"ACC": acc, "VEL": vel, "DISP": disp}.items()}
    parts = {q: split_components(s) for q, s in streams.items()}
    components = {q: [*h, *([v] if v is not None else [])] for q, (h, v) in parts.items()}
    ids = [tr.id for tr in components["ACC"]]
    for q in ("VEL", "DISP"):
        if [tr.id for tr in components[q]] != ids:
            raise ValueError(f"{q} traces {[tr.id for tr in components[q]]} do not match "
                             f"the ACC traces {ids}")
    norms = {q: station_norms(s) for q, s in streams.items()}
    first = components["ACC"][0]
    station = f"{first.stats.network}.{first.stats.station}"
    location = first.stats.location
    rows: list[dict[str, float | str]] = []
    for i, tr in enumerate(components["ACC"]):
        row: dict[str, float | str] = {
            "id": tr.id, "station": station, "location": tr.stats.location,
            "channel": tr.stats.channel, "component": tr.stats.channel[-1:],
            "pga": peak(tr), "pgv": peak(components["VEL"][i]),
            "pgd": peak(components["DISP"][i]),
        }
        for period in periods:
            row[psa_key(period)] = spectral_acceleration(tr, period, damping)
        row["coverage"] = _coverage([tr, components["VEL"][i], components["DISP"][i]])
        rows.append(row)
    horizontals, vertical = parts["ACC"]
    rows += _norm_rows(norms, horizontals, vertical, station, periods, damping)
    horizontal_rows = rows[:len(horizontals)]
    if horizontal_rows:
        rows.append(_maxh_row(horizontal_rows, horizontals, station, location, periods))
    if len(horizontals) == 2:
        rows.append(_rotd50_row(parts, horizontal_rows, station, location, periods, damping))
    return rows


def _norm_rows(norms: Mapping[str, Sequence[Trace]], horizontals: Sequence[Trace],
               vertical: Trace | None, station: str, periods: Sequence[float],
               damping: float) -> list[dict[str, float | str]]:
    """Rows of the horizontal (``H``) and three-component (``3``) norms.

    Their PSA is that of the vector of the oscillators of the components (RotD100 for ``H``).
    """
    rows: list[dict[str, float | str]] = []
    for k, norm_acc in enumerate(norms["ACC"]):
        norm_traces = [norm_acc, norms["VEL"][k], norms["DISP"][k]]
        code = norm_acc.stats.channel[-1]
        accs = horizontals if code == HORIZONTAL else [vertical, *horizontals]
        row: dict[str, float | str] = {
            "id": norm_acc.id, "station": station, "location": norm_acc.stats.location,
            "channel": norm_acc.stats.channel, "component": code,
            "pga": peak(norm_traces[0]), "pgv": peak(norm_traces[1]),
            "pgd": peak(norm_traces[2])}
        for period in periods:
            row[psa_key(period)] = _vector_psa(accs, period, damping)
        row["coverage"] = _coverage(norm_traces)
        rows.append(row)
    return rows


def _maxh_row(horizontal_rows: Sequence[Mapping[str, float | str]],
              horizontals: Sequence[Trace], station: str, location: str,
              periods: Sequence[float]) -> dict[str, float | str]:
    """The larger horizontal, metric by metric (its coverage: the smallest)."""
    metrics = ["pga", "pgv", "pgd", *(psa_key(p) for p in periods), "coverage"]
    letters = "".join(tr.stats.channel[-1] for tr in horizontals)
    maxh_channel = f"{horizontals[0].stats.channel[:-1]}[{letters}]"
    maxh: dict[str, float | str] = {
        "id": f"{station}.{location}.{maxh_channel}", "station": station,
        "location": location, "channel": maxh_channel, "component": "maxh",
    }
    for key in metrics:
        values = [float(r[key]) for r in horizontal_rows]
        maxh[key] = min(values) if key == "coverage" else max(values)
    return maxh


def _rotd50_row(parts: Mapping[str, tuple[Sequence[Trace], Trace | None]],
                horizontal_rows: Sequence[Mapping[str, float | str]], station: str,
                location: str, periods: Sequence[float], damping: float
                ) -> dict[str, float | str]:
    """The median over horizontal directions of the two horizontals (RotD50)."""
    horizontals = parts["ACC"][0]
    rotd50: dict[str, float | str] = {
        "id": f"{station}.{location}.rotd50", "station": station, "location": location,
        "channel": "rotd50", "component": "rotd50",
    }
    for key, quantity in (("pga", "ACC"), ("pgv", "VEL"), ("pgd", "DISP")):
        h1, h2 = parts[quantity][0]
        rotd50[key] = rotd(h1.data, h2.data)
    for period in periods:
        rotd50[psa_key(period)] = _rotd_psa(horizontals, period, damping)
    rotd50["coverage"] = min(float(r["coverage"]) for r in horizontal_rows)
    return rotd50


def misfit(synthetic: float, observed: float) -> float:
    """Logarithmic misfit ``log10(synthetic / observed)`` of two peak amplitudes.

    0 is a perfect match, +1 a synthetic ten times too large, -1 ten times too small.

    Parameters
    ----------
    synthetic, observed
        Positive amplitudes in the same unit.

    Raises
    ------
    ValueError
        An amplitude is zero, negative or not finite (a zero peak means a dead or empty
        trace: no meaningful ratio); the message names which one.
    """
    for name, value in (("synthetic", synthetic), ("observed", observed)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"misfit needs positive finite amplitudes; the {name} amplitude "
                             f"is {value!r} (synthetic={synthetic!r}, observed={observed!r})")
    return math.log10(synthetic / observed)
