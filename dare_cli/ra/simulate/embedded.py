"""Embedded synthetic seismograms: a point source in a homogeneous isotropic elastic medium.

The solver evaluates the complete analytical solution of Aki & Richards (2002, eq. 4.29) for a
general moment tensor ``M_pq(t) = M_pq * m(t)``: the near-field term, the intermediate-field
P and S terms and the far-field P and S terms, with ``m`` a normalised moment function (0 before
the source, 1 after it). The near-field term needs the integral of ``tau * m(t - tau)`` over
``tau`` from ``r/vp`` to ``r/vs``; it is computed exactly from the second and third
antiderivatives of ``m``, which are analytical for the source time functions offered here (see
:class:`SourceTimeFunction`), so nothing is integrated numerically and nothing depends on the
sampling.

Half-space approximation
    An exact half-space solution (Lamb's problem for a buried point source, with its reflected
    and converted phases and Rayleigh waves) is out of scope. With ``half_space=True`` the
    full-space displacement at the receiver is multiplied by :data:`FREE_SURFACE_FACTOR` = 2,
    the free-surface amplification of a plane wave at vertical incidence (exact for SH at any
    incidence; for P and SV it is only right near vertical incidence). There are no surface
    waves, no reflections, no head waves: use the synthetics for arrival times, radiation
    pattern and the order of magnitude of body-wave amplitudes near the source.

Geometry
    :func:`synthetics_for_station` places source and receiver on a local flat Earth: the
    horizontal offset is the WGS84 distance and azimuth of :func:`obspy.geodetics
    .gps2dist_azimuth`, the vertical offset is source depth + station elevation (minus the
    sensor depth). Earth curvature is ignored; this is adequate up to a few hundred km (< ~300 km).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from obspy import Stream, Trace
from obspy.core.event import Origin
from obspy.geodetics import gps2dist_azimuth
from scipy.special import erfc

from dare_cli import __version__
from dare_cli.ra.errors import StationError
from dare_cli.ra.source import half_duration_from_moment, magnitude_from_moment, scalar_moment

__all__ = [
    "CHANNELS",
    "FREE_SURFACE_FACTOR",
    "SOURCE_DECAY_MIMIC_TRIANGLE",
    "STF_SHAPES",
    "TERMS",
    "EmbeddedConfig",
    "Medium",
    "MomentFunction",
    "SourceTimeFunction",
    "displacement_cartesian",
    "source_receiver_vector",
    "synthetics_for_station",
]

#: Shapes of :class:`SourceTimeFunction`.
STF_SHAPES = ("gaussian", "triangle")
#: Terms of Aki & Richards eq. 4.29 that :func:`displacement_cartesian` can sum.
TERMS = ("near", "intermediate", "far")
#: Free-surface amplification applied when ``half_space`` is set.
FREE_SURFACE_FACTOR = 2.0
#: Ratio of the triangle's half duration to the Gaussian's ``h`` (SPECFEM3D, GCMT convention).
SOURCE_DECAY_MIMIC_TRIANGLE = 1.628
#: Channel codes of the east, north and up displacement (in this order).
CHANNELS = ("HXE", "HXN", "HXZ")
#: Smallest half duration, in samples, kept to avoid aliasing the source spectrum.
MIN_HALF_DURATION_SAMPLES = 2.0
#: Epicentral distance (m) beyond which the flat-Earth geometry is noted as approximate.
FLAT_EARTH_LIMIT = 300e3


@dataclass(frozen=True)
class Medium:
    """A homogeneous isotropic elastic medium.

    Attributes
    ----------
    vp, vs
        P and S velocities in m/s.
    rho
        Density in kg/m³.

    Raises
    ------
    ValueError
        Unless ``rho > 0``, ``vs > 0`` and ``vp > 2 vs / sqrt(3)`` (a positive bulk modulus,
        which implies ``vp > vs``).
    """

    vp: float
    vs: float
    rho: float

    def __post_init__(self) -> None:
        for name in ("vp", "vs", "rho"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"medium {name} must be a number, not {value!r}")
            if not math.isfinite(value) or value <= 0.0:
                raise ValueError(f"medium {name} must be finite and > 0, not {value!r}")
        if not self.vp > 2.0 * self.vs / math.sqrt(3.0):
            raise ValueError(
                f"medium vp={self.vp} m/s must exceed 2/sqrt(3)*vs = "
                f"{2.0 * self.vs / math.sqrt(3.0):.1f} m/s (positive bulk modulus)"
            )

    @property
    def mu(self) -> float:
        """Shear modulus in Pa."""
        return self.rho * self.vs**2

    def __str__(self) -> str:
        return f"vp={self.vp:g} m/s, vs={self.vs:g} m/s, rho={self.rho:g} kg/m^3"


class MomentFunction(Protocol):
    """A normalised source time function, as :func:`displacement_cartesian` uses it.

    ``antiderivative(t, 0)`` is the moment rate (1/s, unit area), ``1`` the moment function
    (dimensionless, 0 → 1), ``2`` and ``3`` its first and second time integrals (s, s²),
    each integrated from minus infinity.
    """

    def antiderivative(self, t: np.ndarray, order: int) -> np.ndarray:
        """Moment rate (``order=0``) or its ``order``-th antiderivative at times ``t`` (s)."""
        ...


@dataclass(frozen=True)
class SourceTimeFunction:
    """Moment-rate shapes of unit area with analytical antiderivatives.

    Shapes
        ``"triangle"``: isosceles triangle from ``centroid_time - half_duration`` to
        ``centroid_time + half_duration`` (compact support, a sharp onset).
        ``"gaussian"``: ``exp(-(t - tc)² / h²) / (h sqrt(pi))`` with
        ``h = half_duration / 1.628``, the Gaussian that SPECFEM3D and GCMT use for a given
        triangle half duration; its moment function is ``(1 + erf((t - tc) / h)) / 2``.

    Attributes
    ----------
    shape
        One of :data:`STF_SHAPES`.
    half_duration
        Half duration in s (> 0).
    centroid_time
        Time of the centre of the moment rate in s, on the time axis of the synthetics.
    """

    shape: str
    half_duration: float
    centroid_time: float = 0.0

    def __post_init__(self) -> None:
        if self.shape not in STF_SHAPES:
            raise ValueError(f"source time function {self.shape!r} is not one of "
                             f"{', '.join(STF_SHAPES)}")
        if not (math.isfinite(self.half_duration) and self.half_duration > 0.0):
            raise ValueError(f"half duration must be finite and > 0 s, not "
                             f"{self.half_duration!r}")
        if not math.isfinite(self.centroid_time):
            raise ValueError(f"centroid time must be finite, not {self.centroid_time!r}")

    @property
    def onset(self) -> float:
        """Start of the moment release in s (for the Gaussian: where the rate is 7% of peak)."""
        return self.centroid_time - self.half_duration

    def antiderivative(self, t: np.ndarray, order: int) -> np.ndarray:
        """Moment rate (``order=0``, 1/s) or its ``order``-th antiderivative (``order`` ≤ 3).

        Parameters
        ----------
        t
            Times in s.
        order
            0 rate (1/s), 1 moment function (dimensionless), 2 and 3 its integrals (s, s²).

        Returns
        -------
        numpy.ndarray
            Values at ``t``.
        """
        if order not in (0, 1, 2, 3):
            raise ValueError(f"antiderivative order must be 0..3, not {order!r}")
        s = np.asarray(t, dtype=float) - self.centroid_time
        if self.shape == "gaussian":
            return _gaussian_antiderivative(s, self.half_duration / SOURCE_DECAY_MIMIC_TRIANGLE,
                                            order)
        return _triangle_antiderivative(s, self.half_duration, order)

    def __str__(self) -> str:
        return (f"{self.shape} source time function, half duration {self.half_duration:.4g} s, "
                f"centred at {self.centroid_time:.4g} s")


def _gaussian_antiderivative(s: np.ndarray, h: float, order: int) -> np.ndarray:
    x = s / h
    bump = np.exp(-x * x)
    step = erfc(-x)  # = 1 + erf(x), accurate in the left tail
    if order == 0:
        return bump / (h * math.sqrt(math.pi))
    if order == 1:
        return 0.5 * step
    if order == 2:
        return 0.5 * s * step + h / (2.0 * math.sqrt(math.pi)) * bump
    return (0.25 * s * s + 0.125 * h * h) * step + h * s / (4.0 * math.sqrt(math.pi)) * bump


def _triangle_antiderivative(s: np.ndarray, d: float, order: int) -> np.ndarray:
    # Rate = (R(s + d) - 2 R(s) + R(s - d)) / d² with the ramp R(x) = max(x, 0); the k-th
    # antiderivative replaces R by max(x, 0)**(k + 1) / (k + 1)!. After the source (s >= d) the
    # closed forms 1, s and s²/2 + d²/12 (d²/6 being the variance of the triangle) avoid
    # cancellation.
    k = order + 1

    def ramp(x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0.0) ** k / math.factorial(k)

    value = (ramp(s + d) - 2.0 * ramp(s) + ramp(s - d)) / (d * d)
    if order == 0:
        after = np.zeros_like(s)
    elif order == 1:
        after = np.ones_like(s)
    elif order == 2:
        after = s
    else:
        after = 0.5 * s * s + d * d / 12.0
    return np.where(s >= d, after, value)


@dataclass(frozen=True)
class EmbeddedConfig:
    """Settings of the embedded analytical solver (the ``[simulate]`` table).

    Attributes
    ----------
    medium
        Homogeneous medium (default: a crustal 6 km/s, vp/vs = sqrt(3), 2.7 g/cm³).
    half_space
        True: full-space solution times the free-surface factor 2 (see the module docstring);
        False: the full-space solution.
    sampling_rate
        Sampling rate of the synthetics in Hz.
    duration
        Length after the origin time in s; ``npts = duration * sampling_rate + 1``.
    half_duration
        Half duration of the source time function in s; ``None`` scales it from the moment
        (:func:`dare_cli.ra.source.half_duration_from_moment`). An explicit value must be at
        least two samples; a scaled one shorter than that is raised to two samples (noted in
        the traces' processing) to keep the source spectrum below the Nyquist frequency.
    stf
        Shape of the moment rate, one of :data:`STF_SHAPES`; it starts at the origin time and
        is centred ``half_duration`` later.
    """

    medium: Medium = field(default=Medium(6000.0, 3464.0, 2700.0))
    half_space: bool = True
    sampling_rate: float = 20.0
    duration: float = 150.0
    half_duration: float | None = None
    stf: str = "gaussian"

    def __post_init__(self) -> None:
        if not isinstance(self.medium, Medium):
            raise ValueError(f"medium must be a Medium, not {self.medium!r}")
        for name in ("sampling_rate", "duration"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"{name} must be finite and > 0, not {value!r}")
        if self.stf not in STF_SHAPES:
            raise ValueError(f"stf must be one of {', '.join(STF_SHAPES)}, not {self.stf!r}")
        if self.half_duration is not None:
            shortest = MIN_HALF_DURATION_SAMPLES / self.sampling_rate
            if not (math.isfinite(self.half_duration) and self.half_duration >= shortest):
                raise ValueError(
                    f"half_duration must be >= {shortest:g} s (two samples at "
                    f"{self.sampling_rate:g} Hz), not {self.half_duration!r}"
                )

    @property
    def npts(self) -> int:
        """Number of samples of each synthetic trace."""
        return round(self.duration * self.sampling_rate) + 1


def displacement_cartesian(
    moment_tensor_xyz: np.ndarray,
    source_xyz: Any,
    receiver_xyz: Any,
    medium: Medium,
    times: np.ndarray,
    stf_function: MomentFunction,
    *,
    terms: Collection[str] = TERMS,
) -> np.ndarray:
    """Full-space displacement of a moment-tensor point source (Aki & Richards eq. 4.29).

    Any orthonormal Cartesian frame works (e.g. NED, or SPECFEM's x east, y north, z up), as
    long as the tensor and the positions use the same one; the result is in that frame.

    Parameters
    ----------
    moment_tensor_xyz
        3x3 moment tensor in N·m (its final value: ``M(t) = M * m(t)``).
    source_xyz, receiver_xyz
        Positions in m.
    medium
        Elastic medium.
    times
        Times in s, on the time axis of ``stf_function``.
    stf_function
        Normalised source time function ``m`` (see :class:`MomentFunction`), e.g. a
        :class:`SourceTimeFunction`.
    terms
        Which terms to sum: any of ``"near"`` (``1/r⁴``), ``"intermediate"`` (P and S,
        ``1/r²``), ``"far"`` (P and S, ``1/r``).

    Returns
    -------
    numpy.ndarray
        Displacement in m, shape ``(3, len(times))``.

    Raises
    ------
    ValueError
        For a bad tensor, coincident source and receiver, or unknown terms.
    """
    unknown = set(terms) - set(TERMS)
    if unknown:
        raise ValueError(f"unknown terms {sorted(unknown)}; choose from {', '.join(TERMS)}")
    m = np.asarray(moment_tensor_xyz, dtype=float)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        raise ValueError(f"the moment tensor must be a finite 3x3 array, got shape {m.shape}")
    offset = np.asarray(receiver_xyz, dtype=float) - np.asarray(source_xyz, dtype=float)
    if offset.shape != (3,) or not np.all(np.isfinite(offset)):
        raise ValueError("source and receiver positions must be 3 finite coordinates each")
    r = float(np.linalg.norm(offset))
    if r < 1e-6:
        raise ValueError("the receiver coincides with the source (distance < 1 µm)")
    t = np.asarray(times, dtype=float)
    alpha, beta, rho = medium.vp, medium.vs, medium.rho
    g = offset / r  # direction cosines gamma
    mg = m @ g  # M_nq g_q
    mtg = m.T @ g  # g_p M_pn
    gmg = float(g @ mg)  # g_p M_pq g_q
    trace = float(np.trace(m))  # M_pq delta_pq
    ta, tb = r / alpha, r / beta
    u = np.zeros((3, t.size))
    four_pi_rho = 4.0 * math.pi * rho
    if "near" in terms:
        coefficient = 15.0 * g * gmg - 3.0 * g * trace - 3.0 * mtg - 3.0 * mg
        # ∫_a^b τ m(t - τ) dτ = a F2(t - a) - b F2(t - b) + F3(t - a) - F3(t - b)
        integral = (ta * stf_function.antiderivative(t - ta, 2)
                    - tb * stf_function.antiderivative(t - tb, 2)
                    + stf_function.antiderivative(t - ta, 3)
                    - stf_function.antiderivative(t - tb, 3))
        u += np.outer(coefficient / (four_pi_rho * r**4), integral)
    if "intermediate" in terms:
        cp = 6.0 * g * gmg - g * trace - mtg - mg
        cs = -(6.0 * g * gmg - g * trace - mtg - 2.0 * mg)
        u += np.outer(cp / (four_pi_rho * alpha**2 * r**2), stf_function.antiderivative(t - ta, 1))
        u += np.outer(cs / (four_pi_rho * beta**2 * r**2), stf_function.antiderivative(t - tb, 1))
    if "far" in terms:
        cp = g * gmg
        cs = -(g * gmg - mg)
        u += np.outer(cp / (four_pi_rho * alpha**3 * r), stf_function.antiderivative(t - ta, 0))
        u += np.outer(cs / (four_pi_rho * beta**3 * r), stf_function.antiderivative(t - tb, 0))
    return u


def source_receiver_vector(origin: Origin, station_coordinates: dict[str, Any]) -> np.ndarray:
    """Receiver position relative to the source, local flat Earth, NED, in m.

    Horizontal: WGS84 distance and azimuth (source to station) of
    :func:`obspy.geodetics.gps2dist_azimuth`; vertical: ``-(depth + elevation - local_depth)``
    (the station is above the source by the source depth plus its elevation, less its sensor
    depth ``local_depth`` if given). Valid for distances up to a few hundred km.

    Parameters
    ----------
    origin
        Event origin with latitude, longitude (degrees) and depth (m).
    station_coordinates
        ``latitude``, ``longitude`` (degrees), ``elevation`` (m), optional ``local_depth`` (m).

    Returns
    -------
    numpy.ndarray
        ``[north, east, down]`` in m.
    """
    lat, lon = station_coordinates["latitude"], station_coordinates["longitude"]
    elevation = station_coordinates.get("elevation") or 0.0
    local_depth = station_coordinates.get("local_depth") or 0.0
    distance, azimuth, _ = gps2dist_azimuth(origin.latitude, origin.longitude, lat, lon)
    az = math.radians(azimuth)
    down = -(float(origin.depth) + float(elevation) - float(local_depth))
    return np.array([distance * math.cos(az), distance * math.sin(az), down])


def synthetics_for_station(
    event_origin: Origin,
    moment_tensor: np.ndarray,
    station_coordinates: dict[str, Any],
    network: str,
    station: str,
    config: EmbeddedConfig,
    location: str = "",
) -> Stream:
    """Synthetic displacement seismograms of one station from the analytical solution.

    Parameters
    ----------
    event_origin
        Origin: time, latitude, longitude (degrees), depth (m below sea level).
    moment_tensor
        3x3 moment tensor in N·m, NED frame (as from :mod:`dare_cli.ra.source`).
    station_coordinates
        ``latitude``, ``longitude`` (degrees), ``elevation`` (m), optional ``local_depth`` (m),
        e.g. from :meth:`obspy.core.inventory.Inventory.get_coordinates`.
    network, station, location
        Codes of the traces.
    config
        Solver settings.

    Returns
    -------
    obspy.Stream
        Three traces ``HXE``, ``HXN``, ``HXZ`` (east, north, up) of displacement in m, starting
        at the origin time, ``config.npts`` samples at ``config.sampling_rate``.

    Raises
    ------
    StationError
        For missing or non-finite station coordinates, or a station at the hypocentre.
    ValueError
        For an origin without time, position or depth, or a bad moment tensor.
    """
    station_id = f"{network}.{station}"
    for name in ("time", "latitude", "longitude", "depth"):
        if getattr(event_origin, name, None) is None:
            raise ValueError(f"the event origin has no {name}")
    try:
        coordinates = {key: float(station_coordinates[key])
                       for key in ("latitude", "longitude")}
        for key in ("elevation", "local_depth"):
            coordinates[key] = float(station_coordinates.get(key) or 0.0)
    except (KeyError, TypeError, ValueError) as error:
        raise StationError(station_id, f"bad or missing station coordinates: {error!r}") from None
    if not all(math.isfinite(v) for v in coordinates.values()):
        raise StationError(station_id, f"non-finite station coordinates {coordinates}")
    m = np.asarray(moment_tensor, dtype=float)
    m0 = scalar_moment(m)
    if m0 <= 0.0:
        raise ValueError("the moment tensor is zero")

    note = ""
    if config.half_duration is not None:
        half_duration = config.half_duration
        origin_of_hd = "configured"
    else:
        half_duration = half_duration_from_moment(m0)
        origin_of_hd = "GCMT scaling 1.05e-8*M0[dyne cm]^(1/3)"
        shortest = MIN_HALF_DURATION_SAMPLES / config.sampling_rate
        if half_duration < shortest:
            note = (f"; scaled half duration {half_duration:.4g} s raised to {shortest:.4g} s "
                    f"(two samples) against aliasing")
            half_duration = shortest
    stf = SourceTimeFunction(config.stf, half_duration, centroid_time=half_duration)

    receiver = source_receiver_vector(event_origin, coordinates)
    distance = float(np.linalg.norm(receiver))
    if distance < 1.0:
        raise StationError(station_id, "the station is less than 1 m from the hypocentre")
    note_geometry = ""
    if math.hypot(receiver[0], receiver[1]) > FLAT_EARTH_LIMIT:
        note_geometry = f" (beyond {FLAT_EARTH_LIMIT / 1e3:g} km: approximate)"
    times = np.arange(config.npts) / config.sampling_rate
    u = displacement_cartesian(m, np.zeros(3), receiver, config.medium, times, stf)
    if config.half_space:
        u *= FREE_SURFACE_FACTOR

    version = f"dare {__version__}"
    model = ("half space (full-space solution x free-surface factor "
             f"{FREE_SURFACE_FACTOR:g}, no surface waves)" if config.half_space
             else "full space")
    processing = [
        f"{version}: embedded analytical synthetics, Aki & Richards (2002) eq. 4.29 "
        "(near, intermediate and far field), displacement in m",
        f"{version}: medium {model}: {config.medium}",
        f"{version}: source M0={m0:.4g} N m (Mw {magnitude_from_moment(m0):.2f}), tensor NED "
        f"[Mxx Myy Mzz Mxy Mxz Myz]=[{m[0, 0]:.4g} {m[1, 1]:.4g} {m[2, 2]:.4g} {m[0, 1]:.4g} "
        f"{m[0, 2]:.4g} {m[1, 2]:.4g}] N m",
        f"{version}: {config.stf} moment rate, half duration {half_duration:.4g} s "
        f"({origin_of_hd}{note}), starting at the origin time, centred {half_duration:.4g} s "
        "after it",
        f"{version}: geometry flat Earth{note_geometry}, hypocentral distance {distance:.1f} m, "
        f"[north east down]=[{receiver[0]:.1f} {receiver[1]:.1f} {receiver[2]:.1f}] m",
    ]
    traces = []
    for channel, data in zip(CHANNELS, (u[1], u[0], -u[2]), strict=True):
        trace = Trace(data=np.ascontiguousarray(data), header={
            "network": network, "station": station, "location": location, "channel": channel,
            "starttime": event_origin.time, "sampling_rate": config.sampling_rate,
        })
        trace.stats.processing = list(processing)
        traces.append(trace)
    return Stream(traces)
