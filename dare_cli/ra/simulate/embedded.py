"""Embedded synthetic seismograms: a point source in a homogeneous medium, with a free surface.

Full-space solution
    The solver evaluates the complete analytical solution of Aki & Richards (2002, eq. 4.29) for
    a general moment tensor ``M_pq(t) = M_pq * m(t)``: the near-field term, the intermediate-field
    P and S terms and the far-field P and S terms, with ``m`` a normalised moment function (0
    before the source, 1 after it). The near-field term needs the integral of ``tau * m(t - tau)``
    over ``tau`` from ``r/vp`` to ``r/vs``; it is computed exactly from the second and third
    antiderivatives of ``m``, which are analytical for the source time functions offered here
    (:class:`BruneSourceTimeFunction`, :class:`SourceTimeFunction`), so nothing is integrated
    numerically and nothing depends on the sampling (:func:`displacement_cartesian`).

Source
    The default moment rate is Brune's (1970) omega-squared pulse
    ``dm/dt = wc**2 t exp(-wc t)`` (``wc = 2 pi fc``), whose amplitude spectrum is
    ``1 / (1 + (f/fc)**2)``; the corner frequency follows from the moment and a stress drop,
    ``fc = 0.4906 vs (stress_drop / M0)**(1/3)`` (:func:`brune_corner_frequency`). Gaussian and
    triangle pulses (no omega-squared spectrum: for long-period work and the SPECFEM3D
    benchmark) remain available.

Anelastic attenuation and site diminution
    Each wave type is attenuated over its own travel time ``T`` (``r/vp`` for the far- and
    intermediate-field P terms, ``r/vs`` for the S terms and for the near-field term, which
    arrives between P and S) and the site's ``kappa0``: the amplitude
    spectrum is multiplied by ``exp(-pi f (T / Q(f) + kappa0))`` with
    ``Qs(f) = Q0 max(1, f / 1 Hz)**eta`` and ``Qp = ratio * Qs`` (:class:`Attenuation`). The
    operator is causal: its phase is the minimum phase of that amplitude (the Hilbert transform
    of its logarithm, i.e. the Kramers-Kronig relation), which contains the velocity dispersion of
    constant Q (Futterman 1962; Aki & Richards eq. 5.81: ``c(f) = c_r (1 + ln(f/f_r) / (pi Q))``)
    referenced to the Nyquist frequency of the synthetics: nothing arrives before ``r/v``, lower
    frequencies arrive later. It is applied in the frequency domain to the P-type and S-type
    parts separately (:meth:`Attenuation.spectrum`).

Free surface (``free_surface``)
    ``"plane_wave"`` (default) treats the far-field wave at the station as a plane wave incident
    on the free surface of a homogeneous half-space, at the angle ``j`` of the straight ray from
    vertical (the same for P and S), and replaces the full-space displacement by the sum of the
    incident and the reflected P and SV waves at ``z = 0`` (:func:`free_surface_response`). The
    far-field displacement is split by wave type and polarisation: the far-field P term
    (travelling with ``vp``, along the ray) takes the P response; of the far-field S term
    (``vs``, transverse), the component in the vertical plane takes the SV response and the
    horizontal one the SH response (exactly 2) (:func:`free_surface_matrix`). Beyond the
    critical angle of SV, ``sin j > vs/vp``, the SV response is complex; with the time
    dependence ``exp(-i w t)`` of Aki & Richards, ``C u`` is applied as ``Re(C) u + Im(C) H[u]``
    (``H`` the Hilbert transform, :func:`scipy.signal.hilbert`). ``"factor2"`` multiplies
    everything by 2 (exact at vertical incidence and for SH only; the old behaviour), ``"none"``
    gives the full space.

    Exact: the far-field body waves, as plane waves at the surface (the dominant part at a few
    wavelengths from the source). Approximate: the near- and intermediate-field terms, which are
    not plane waves, are doubled as at vertical incidence. (Giving them the plane-wave
    coefficients of their polarisation instead would send their permanent displacement to 0 at
    grazing incidence, where a half-space's static field is not 0, and a post-critical phase
    shift of a permanent offset is not defined: the Hilbert transform of a step diverges. Against
    the FK reference, tests/ra/data/embedded_reference, doubling fits better: mean
    ``|log10(peak ratio)|`` 0.056 against 0.075 in the direct P and S windows at 0.5-3 Hz.)
    A plane wave's post-critical phase shift is acausal: the ``1/t`` tail of ``H[u]`` reaches
    back before P (in the Ridgecrest example, 16 s Brune pulses at 71-76 degrees, up to 13% of
    the peak vertical displacement, so that the traces did not start at rest). For a point
    source the post-critical S is preceded by the S-to-P head wave and nothing comes before P:
    ``Im(C) H[u]`` is faded in from 0 at the P arrival to 1 at the head wave's
    (:func:`head_wave_taper`), which leaves the S pulse itself untouched. Missing: surface
    (Rayleigh, Love) waves, head waves, the spherical-wave effects near the critical angle and
    grazing incidence, reflections from layers (the medium is homogeneous), the static field of a
    half-space (Okada), finite-fault effects.

Geometry
    :func:`synthetics_for_station` places source and receiver on a local flat Earth: the
    horizontal offset is the WGS84 distance and azimuth of :func:`obspy.geodetics
    .gps2dist_azimuth`, the vertical offset is source depth + station elevation (minus the
    sensor depth). Earth curvature is ignored; this is adequate up to a few hundred km (< ~300 km).

References
----------
Aki, K. & Richards, P. G. (2002). Quantitative Seismology, 2nd ed., University Science Books
(eq. 4.29; section 5.2.4, the free surface; eq. 5.81, dispersion).
Boore, D. M. & Joyner, W. B. (1997). Site amplifications for generic rock sites. BSSA 87,
327-341.
Brune, J. N. (1970). Tectonic stress and the spectra of seismic shear waves from earthquakes.
J. Geophys. Res. 75, 4997-5009.
Futterman, W. I. (1962). Dispersive body waves. J. Geophys. Res. 67, 5279-5291.
Kanamori, H. & Anderson, D. L. (1975). Theoretical basis of some empirical relations in
seismology. BSSA 65, 1073-1095.
Raoof, M., Herrmann, R. B. & Malagnini, L. (1999). Attenuation and excitation of
three-component ground motion in southern California. BSSA 89, 888-902.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import numpy as np
from obspy import Stream, Trace
from obspy.core.event import Origin
from obspy.geodetics import gps2dist_azimuth
from scipy.fft import next_fast_len
from scipy.integrate import cumulative_trapezoid
from scipy.signal import hilbert
from scipy.special import erfc, gammainc

from dare_cli import __version__
from dare_cli.ra.errors import StationError
from dare_cli.ra.source import half_duration_from_moment, magnitude_from_moment, scalar_moment

__all__ = [
    "BRUNE_CONSTANT",
    "CHANNELS",
    "DEFAULT_KAPPA",
    "DEFAULT_Q0",
    "DEFAULT_Q_EXPONENT",
    "DEFAULT_STRESS_DROP",
    "FREE_SURFACE_FACTOR",
    "FREE_SURFACE_MODELS",
    "PULSE_SHAPES",
    "SOURCE_DECAY_MIMIC_TRIANGLE",
    "STF_SHAPES",
    "TERMS",
    "Attenuation",
    "BruneSourceTimeFunction",
    "EmbeddedConfig",
    "Medium",
    "MomentFunction",
    "PlaneWaveResponse",
    "SourceTimeFunction",
    "brune_corner_frequency",
    "displacement_cartesian",
    "free_surface_matrix",
    "free_surface_response",
    "head_wave_taper",
    "incidence_angle",
    "source_receiver_vector",
    "station_displacement",
    "synthetics_for_station",
]

#: Shapes of the moment rate that :class:`EmbeddedConfig` offers.
STF_SHAPES = ("brune", "gaussian", "triangle")
#: Shapes of :class:`SourceTimeFunction` (symmetric pulses with a half duration).
PULSE_SHAPES = ("gaussian", "triangle")
#: Terms of Aki & Richards eq. 4.29 that :func:`displacement_cartesian` can sum.
TERMS = ("near", "intermediate", "far")
#: Free-surface models of :func:`station_displacement` (see the module docstring).
FREE_SURFACE_MODELS = ("plane_wave", "factor2", "none")
#: Free-surface amplification of the ``"factor2"`` model (exact for SH, and at vertical
#: incidence for P and SV).
FREE_SURFACE_FACTOR = 2.0
#: Ratio of the triangle's half duration to the Gaussian's ``h`` (SPECFEM3D, GCMT convention).
SOURCE_DECAY_MIMIC_TRIANGLE = 1.628
#: Channel codes of the east, north and up displacement (in this order).
CHANNELS = ("HXE", "HXN", "HXZ")
#: Smallest half duration, in samples, kept to avoid aliasing the source spectrum.
MIN_HALF_DURATION_SAMPLES = 2.0
#: Largest Brune corner frequency as a fraction of the sampling rate (half the Nyquist
#: frequency), against aliasing of the sampled moment rate.
MAX_CORNER_FRACTION = 0.25
#: Epicentral distance (m) beyond which the flat-Earth geometry is noted as approximate.
FLAT_EARTH_LIMIT = 300e3

#: Brune's (1970) constant in ``fc = BRUNE_CONSTANT * vs * (stress_drop / M0)**(1/3)`` (SI
#: units): ``fc = 2.34 vs / (2 pi r)`` with the source radius from
#: ``stress_drop = 7 M0 / (16 r**3)``, i.e. ``2.34 / (2 pi) * (16/7)**(1/3) = 0.4906``; the
#: same as ``4.906e6 * vs[km/s] * (stress_drop[bar] / M0[dyne cm])**(1/3)`` (Boore 1983; USGS
#: gmprocess ``brune_f0``).
BRUNE_CONSTANT = 2.34 / (2.0 * math.pi) * (16.0 / 7.0) ** (1.0 / 3.0)
#: Default stress drop, MPa: 3 MPa (30 bar) for interplate earthquakes (Kanamori & Anderson
#: 1975, from the moment-area scaling of large shallow earthquakes; 6 MPa on average, 10 MPa
#: intraplate).
DEFAULT_STRESS_DROP = 3.0
#: Default S-wave quality factor at 1 Hz and its frequency exponent, ``Qs = 180 f**0.45``,
#: southern California (Raoof et al. 1999; the ``REA99`` model of USGS gmprocess).
DEFAULT_Q0 = 180.0
DEFAULT_Q_EXPONENT = 0.45
#: Frequency (Hz) at which ``Q0`` is given; below it Q is held at ``Q0``.
Q_REFERENCE_FREQUENCY = 1.0
#: Default site diminution ``kappa0``, s: generic western North American rock (Boore & Joyner
#: 1997, 0.035 s; also the default of USGS gmprocess's spectral fits, which quotes 0.03-0.04 s
#: for active crustal regions).
DEFAULT_KAPPA = 0.035
#: Travel-time labels of the two wave types.
WAVE_TYPES = ("P", "S")


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

    @property
    def critical_angle(self) -> float:
        """Critical angle of SV at a free surface, ``asin(vs/vp)``, in degrees from vertical."""
        return math.degrees(math.asin(self.vs / self.vp))

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


def _check_order(order: int) -> None:
    if order not in (0, 1, 2, 3):
        raise ValueError(f"antiderivative order must be 0..3, not {order!r}")


@dataclass(frozen=True)
class SourceTimeFunction:
    """Symmetric moment-rate pulses of unit area with analytical antiderivatives.

    Shapes
        ``"triangle"``: isosceles triangle from ``centroid_time - half_duration`` to
        ``centroid_time + half_duration`` (compact support, a sharp onset).
        ``"gaussian"``: ``exp(-(t - tc)² / h²) / (h sqrt(pi))`` with
        ``h = half_duration / 1.628``, the Gaussian that SPECFEM3D and GCMT use for a given
        triangle half duration; its moment function is ``(1 + erf((t - tc) / h)) / 2``.

    Their spectra fall off faster than any power of the frequency (Gaussian) or as ``f**-2``
    with notches (triangle); for high-frequency ground motion use
    :class:`BruneSourceTimeFunction`.

    Attributes
    ----------
    shape
        One of :data:`PULSE_SHAPES`.
    half_duration
        Half duration in s (> 0).
    centroid_time
        Time of the centre of the moment rate in s, on the time axis of the synthetics.
    """

    shape: str
    half_duration: float
    centroid_time: float = 0.0

    def __post_init__(self) -> None:
        if self.shape not in PULSE_SHAPES:
            raise ValueError(f"source time function {self.shape!r} is not one of "
                             f"{', '.join(PULSE_SHAPES)}")
        if not (math.isfinite(self.half_duration) and self.half_duration > 0.0):
            raise ValueError(f"half duration must be finite and > 0 s, not "
                             f"{self.half_duration!r}")
        if not math.isfinite(self.centroid_time):
            raise ValueError(f"centroid time must be finite, not {self.centroid_time!r}")

    @property
    def onset(self) -> float:
        """Start of the moment release in s (for the Gaussian: where the rate is 7% of peak)."""
        return self.centroid_time - self.half_duration

    @property
    def end_time(self) -> float:
        """Time (s) after which the moment rate is negligible (< 1e-15 of its peak)."""
        if self.shape == "triangle":
            return self.centroid_time + self.half_duration
        return self.centroid_time + 6.0 * self.half_duration / SOURCE_DECAY_MIMIC_TRIANGLE

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
        _check_order(order)
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


def brune_corner_frequency(moment: float, stress_drop: float, shear_velocity: float) -> float:
    """Brune's (1970) corner frequency of the S-wave spectrum.

    ``fc = 0.4906 vs (stress_drop / M0)**(1/3)``, see :data:`BRUNE_CONSTANT`.

    Parameters
    ----------
    moment
        Scalar moment in N·m.
    stress_drop
        Stress drop in Pa.
    shear_velocity
        Shear-wave velocity at the source in m/s.

    Returns
    -------
    float
        Corner frequency in Hz.
    """
    for name, value in (("moment", moment), ("stress_drop", stress_drop),
                        ("shear_velocity", shear_velocity)):
        if not (math.isfinite(value) and value > 0.0):
            raise ValueError(f"{name} must be finite and > 0, not {value!r}")
    return BRUNE_CONSTANT * shear_velocity * (stress_drop / moment) ** (1.0 / 3.0)


@dataclass(frozen=True)
class BruneSourceTimeFunction:
    """Brune's (1970) omega-squared moment rate, with analytical antiderivatives.

    ``dm/dt = wc² s exp(-wc s)`` for ``s = t - onset >= 0`` (0 before), ``wc = 2 pi fc``:
    unit area, peak at ``s = 1/wc``, mean delay ``2/wc``; its Fourier transform is
    ``1 / (1 - i w/wc)²`` (``exp(-i w t)`` convention), of amplitude ``1 / (1 + (f/fc)²)``.

    The antiderivatives are moments of the Gamma(2, wc) distribution truncated at ``s``,
    written with the regularised lower incomplete gamma function ``P(a, x)``
    (:func:`scipy.special.gammainc`, for integer ``a`` ``1 - exp(-x) sum_{k<a} x^k/k!``),
    ``x = wc s``::

        F1 = P(2, x)
        F2 = (x P(2, x) - 2 P(3, x)) / wc
        F3 = (x² P(2, x) - 4 x P(3, x) + 6 P(4, x)) / (2 wc²)

    which tend to ``1``, ``s - 2/wc`` and ``((x - 2)² + 2) / (2 wc²)`` without cancellation at
    large ``s`` and keep their relative accuracy near the onset (``F_k ~ x^(k+1)/(k+1)!``).

    Attributes
    ----------
    corner_frequency
        ``fc`` in Hz (> 0).
    onset
        Start of the moment release in s, on the time axis of the synthetics.
    """

    corner_frequency: float
    onset: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.corner_frequency) and self.corner_frequency > 0.0):
            raise ValueError(f"corner frequency must be finite and > 0 Hz, not "
                             f"{self.corner_frequency!r}")
        if not math.isfinite(self.onset):
            raise ValueError(f"onset must be finite, not {self.onset!r}")

    @property
    def angular_corner(self) -> float:
        """``wc = 2 pi fc`` in rad/s."""
        return 2.0 * math.pi * self.corner_frequency

    @property
    def end_time(self) -> float:
        """Time (s) after which the moment rate is negligible (< 1e-15 of its peak)."""
        return self.onset + 40.0 / self.angular_corner

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
            Values at ``t`` (0 before the onset).
        """
        _check_order(order)
        wc = self.angular_corner
        x = np.maximum(np.asarray(t, dtype=float) - self.onset, 0.0) * wc
        if order == 0:
            return wc * x * np.exp(-x)
        p2 = gammainc(2.0, x)
        if order == 1:
            return p2
        p3 = gammainc(3.0, x)
        if order == 2:
            return (x * p2 - 2.0 * p3) / wc
        return (x * x * p2 - 4.0 * x * p3 + 6.0 * gammainc(4.0, x)) / (2.0 * wc * wc)

    def __str__(self) -> str:
        return (f"Brune omega-squared moment rate, corner frequency "
                f"{self.corner_frequency:.4g} Hz, starting at {self.onset:.4g} s")


@dataclass(frozen=True)
class Attenuation:
    """Anelastic attenuation along the ray and site diminution (``kappa0``).

    ``Qs(f) = q0 * max(1, f / 1 Hz)**q_exponent``, ``Qp(f) = ratio * Qs(f)``; a wave with travel
    time ``T`` has the amplitude spectrum ``exp(-pi f (T / Q(f) + kappa))``. Below 1 Hz Q is
    held at ``q0``: a power law down to 0 Hz would send Q to 0 and the dispersion delay of the
    long periods to infinity, and the power laws are fitted to data above about 1 Hz.

    Attributes
    ----------
    q0
        S-wave quality factor at (and below) 1 Hz (> 0).
    q_exponent
        Exponent ``eta`` of the frequency dependence above 1 Hz, ``0 <= eta < 1``.
    qp_qs_ratio
        ``Qp / Qs``; ``None``: ``(3/4) (vp/vs)²``, no loss in pure compression: from
        ``1/Qp = L/Qs + (1 - L)/Qkappa`` with ``L = (4/3)(vs/vp)²`` and ``1/Qkappa = 0``; 2.25
        for a Poisson solid.
    kappa
        Site diminution ``kappa0`` in s (>= 0), the same for P and S.
    """

    q0: float = DEFAULT_Q0
    q_exponent: float = DEFAULT_Q_EXPONENT
    qp_qs_ratio: float | None = None
    kappa: float = DEFAULT_KAPPA

    def __post_init__(self) -> None:
        if not (math.isfinite(self.q0) and self.q0 > 0.0):
            raise ValueError(f"q0 must be finite and > 0, not {self.q0!r}")
        if not (math.isfinite(self.q_exponent) and 0.0 <= self.q_exponent < 1.0):
            raise ValueError(f"q_exponent must be in [0, 1), not {self.q_exponent!r}")
        if self.qp_qs_ratio is not None and not (math.isfinite(self.qp_qs_ratio)
                                                 and self.qp_qs_ratio > 0.0):
            raise ValueError(f"qp_qs_ratio must be finite and > 0, not {self.qp_qs_ratio!r}")
        if not (math.isfinite(self.kappa) and self.kappa >= 0.0):
            raise ValueError(f"kappa must be finite and >= 0 s, not {self.kappa!r}")

    def p_ratio(self, medium: Medium) -> float:
        """``Qp / Qs`` for ``medium``."""
        if self.qp_qs_ratio is not None:
            return self.qp_qs_ratio
        return 0.75 * (medium.vp / medium.vs) ** 2

    def quality_factor(self, frequency: np.ndarray, wave: str, medium: Medium) -> np.ndarray:
        """Q of ``wave`` (``"P"`` or ``"S"``) at ``frequency`` (Hz, its absolute value)."""
        if wave not in WAVE_TYPES:
            raise ValueError(f"wave must be one of {', '.join(WAVE_TYPES)}, not {wave!r}")
        f = np.abs(np.asarray(frequency, dtype=float))
        qs = self.q0 * np.maximum(f / Q_REFERENCE_FREQUENCY, 1.0) ** self.q_exponent
        return qs * self.p_ratio(medium) if wave == "P" else qs

    def t_star(self, frequency: np.ndarray, travel_time: float, wave: str,
               medium: Medium) -> np.ndarray:
        """``t* = T / Q(f) + kappa`` in s at ``frequency`` (Hz)."""
        return travel_time / self.quality_factor(frequency, wave, medium) + self.kappa

    def spectrum(self, n: int, delta: float, travel_time: float, wave: str,
                 medium: Medium) -> np.ndarray:
        """Causal attenuation operator on the frequencies of :func:`numpy.fft.rfft`.

        Amplitude ``exp(-pi |f| t*(f))``; phase the minimum phase of that amplitude, computed
        with :func:`scipy.signal.hilbert` applied to the log-amplitude over the ``n`` DFT
        frequencies (the discrete Kramers-Kronig relation). Multiply ``numpy.fft.rfft(x, n)``
        by it (numpy's ``exp(-i w t)`` forward transform) and invert with
        :func:`numpy.fft.irfft`: the impulse response is causal (zero before ``t = 0`` up to
        the time-aliasing of its tail) and delays every frequency below the Nyquist frequency.

        Parameters
        ----------
        n
            FFT length (samples).
        delta
            Sampling interval in s.
        travel_time
            Travel time ``T`` of the wave in s (>= 0).
        wave
            ``"P"`` or ``"S"``.
        medium
            Medium (for the default ``Qp / Qs``).

        Returns
        -------
        numpy.ndarray
            Complex array of ``n // 2 + 1`` values.
        """
        if n < 2 or not (math.isfinite(delta) and delta > 0.0):
            raise ValueError(f"need n >= 2 and delta > 0, got n={n!r}, delta={delta!r}")
        if not (math.isfinite(travel_time) and travel_time >= 0.0):
            raise ValueError(f"travel time must be finite and >= 0 s, not {travel_time!r}")
        f = np.fft.fftfreq(n, delta)
        log_amplitude = -math.pi * np.abs(f) * self.t_star(f, travel_time, wave, medium)
        # analytic signal of the (even) log-amplitude across the frequency index: its
        # imaginary part is the discrete Hilbert transform; with numpy's sign convention the
        # minimum phase is minus it
        phase = -np.imag(hilbert(log_amplitude))
        return np.exp(log_amplitude + 1j * phase)[: n // 2 + 1]

    def describe(self, medium: Medium) -> str:
        """One line for the traces' processing history."""
        return (f"Qs(f)={self.q0:g}*max(1, f/1Hz)^{self.q_exponent:g}, "
                f"Qp={self.p_ratio(medium):.4g}*Qs, kappa0={self.kappa:g} s")


class PlaneWaveResponse(NamedTuple):
    """Free-surface displacement for unit incident plane waves (``exp(-i w t)`` convention).

    For an incident P wave of unit displacement along the ray (pointing up and away from the
    source): ``p_radial``, ``p_vertical``; for an incident SV wave of unit displacement along
    ``e_SV = -cos(j) e_radial + sin(j) e_up``: ``sv_radial``, ``sv_vertical``; SH: ``sh`` = 2.
    Radial is horizontal, away from the source; vertical is up. Complex beyond the critical
    angle of SV.
    """

    p_radial: complex
    p_vertical: complex
    sv_radial: complex
    sv_vertical: complex
    sh: complex


def _plane_wave_surface_motion(p: float, incident: str, medium: Medium) -> tuple[complex, complex]:
    # Frame x horizontal (away from the source), z down; plane waves d exp(i w (s.x - t)).
    # Unknowns: amplitudes of the reflected (down-going) P and SV; conditions: zero traction
    # sigma_xz and sigma_zz at z = 0. Vertical slownesses take the root with Im >= 0 so that
    # evanescent waves decay with depth.
    alpha, beta = medium.vp, medium.vs
    mu = medium.rho * beta**2
    lam = medium.rho * alpha**2 - 2.0 * mu
    qa = np.sqrt(complex(1.0 / alpha**2 - p * p, 0.0))
    qb = np.sqrt(complex(1.0 / beta**2 - p * p, 0.0))

    def traction(s: tuple[complex, complex], d: tuple[complex, complex]) -> np.ndarray:
        return np.array([mu * (s[0] * d[1] + s[1] * d[0]),
                         lam * (s[0] * d[0] + s[1] * d[1]) + 2.0 * mu * s[1] * d[1]])

    p_down = ((p, qa), (alpha * p, alpha * qa))
    sv_down = ((p, qb), (beta * qb, -beta * p))
    if incident == "P":
        s_in, d_in = (p, -qa), (alpha * p, -alpha * qa)
    else:  # SV, polarised along -cos(j) e_x - sin(j) e_z (e_z down)
        s_in, d_in = (p, -qb), (-beta * qb, -beta * p)
    matrix = np.column_stack([traction(*p_down), traction(*sv_down)])
    b, c = np.linalg.solve(matrix, -traction(s_in, d_in))
    x = d_in[0] + b * p_down[1][0] + c * sv_down[1][0]
    z = d_in[1] + b * p_down[1][1] + c * sv_down[1][1]
    return complex(x), complex(-z)


def free_surface_response(incidence: float, medium: Medium) -> PlaneWaveResponse:
    """Exact free-surface response of a homogeneous half-space to incident plane waves.

    Solves the two traction-free conditions for the reflected P and SV waves and sums incident
    and reflected displacements at the surface (Aki & Richards 2002, section 5.2.4), for P and
    SV incident at ``incidence`` from vertical (horizontal slownesses ``sin j / vp`` and
    ``sin j / vs``); SH gives exactly 2. At vertical incidence every response is 2, at grazing
    incidence 0.

    Parameters
    ----------
    incidence
        Angle of the incident ray from vertical in degrees, 0..90.
    medium
        The half-space.

    Returns
    -------
    PlaneWaveResponse
        Surface displacement per unit incident displacement.
    """
    if not (math.isfinite(incidence) and 0.0 <= incidence <= 90.0):
        raise ValueError(f"incidence must be within 0..90 degrees, not {incidence!r}")
    sin_j = math.sin(math.radians(incidence))
    p_radial, p_vertical = _plane_wave_surface_motion(sin_j / medium.vp, "P", medium)
    sv_radial, sv_vertical = _plane_wave_surface_motion(sin_j / medium.vs, "SV", medium)
    return PlaneWaveResponse(p_radial, p_vertical, sv_radial, sv_vertical, 2.0 + 0.0j)


def incidence_angle(receiver_ned: Any) -> float:
    """Angle (degrees) from vertical of the straight ray from the source (origin) to a receiver.

    Parameters
    ----------
    receiver_ned
        Receiver position relative to the source, ``[north, east, down]`` in m.

    Returns
    -------
    float
        0 directly above the source, 90 at the source's depth, > 90 below it.
    """
    offset = np.asarray(receiver_ned, dtype=float)
    r = float(np.linalg.norm(offset))
    if r == 0.0:
        raise ValueError("the receiver coincides with the source")
    return math.degrees(math.acos(max(-1.0, min(1.0, -offset[2] / r))))


def free_surface_matrix(receiver_ned: Any, medium: Medium) -> np.ndarray:
    """Linear map from the full-space displacement at a receiver to the free-surface motion.

    ``Phi = r_P gamma^T + r_SV e_SV^T + 2 e_SH e_SH^T`` with ``gamma`` the ray direction,
    ``e_SV = -cos j e_radial + sin j e_up``, ``e_SH`` horizontal and transverse, and ``r_P``,
    ``r_SV`` the surface displacements of :func:`free_surface_response`. Applied to a far-field
    P or S displacement it gives the exact plane-wave free-surface motion.

    Parameters
    ----------
    receiver_ned
        Receiver position relative to the source, ``[north, east, down]`` in m; the receiver
        must be above the source.
    medium
        The half-space.

    Returns
    -------
    numpy.ndarray
        Complex 3x3 matrix (NED).
    """
    angle = incidence_angle(receiver_ned)
    if angle >= 90.0:
        raise ValueError(f"the plane-wave free surface needs the receiver above the source "
                         f"(ray at {angle:.1f} degrees from vertical)")
    offset = np.asarray(receiver_ned, dtype=float)
    gamma = offset / np.linalg.norm(offset)
    up = np.array([0.0, 0.0, -1.0])
    cos_j, sin_j = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    horizontal = gamma - cos_j * up
    if np.linalg.norm(horizontal) < 1e-12:
        radial = np.array([1.0, 0.0, 0.0])  # vertical incidence: any horizontal basis
    else:
        radial = horizontal / np.linalg.norm(horizontal)
    e_sv = -cos_j * radial + sin_j * up
    e_sh = np.cross(up, radial)
    response = free_surface_response(angle, medium)
    r_p = response.p_radial * radial + response.p_vertical * up
    r_sv = response.sv_radial * radial + response.sv_vertical * up
    return (np.outer(r_p, gamma) + np.outer(r_sv, e_sv)
            + response.sh * np.outer(e_sh, e_sh))


class _Terms(NamedTuple):
    """Coefficient vectors (N·m / (kg/m³ ...) -> m per unit time function) of eq. 4.29."""

    far_p: np.ndarray
    far_s: np.ndarray
    intermediate_p: np.ndarray
    intermediate_s: np.ndarray
    near: np.ndarray
    tp: float
    ts: float


def _wave_terms(m: np.ndarray, offset: np.ndarray, medium: Medium) -> _Terms:
    r = float(np.linalg.norm(offset))
    alpha, beta, rho = medium.vp, medium.vs, medium.rho
    g = offset / r  # direction cosines gamma
    mg = m @ g  # M_nq g_q
    mtg = m.T @ g  # g_p M_pn
    gmg = float(g @ mg)  # g_p M_pq g_q
    trace = float(np.trace(m))  # M_pq delta_pq
    four_pi_rho = 4.0 * math.pi * rho
    return _Terms(
        far_p=g * gmg / (four_pi_rho * alpha**3 * r),
        far_s=-(g * gmg - mg) / (four_pi_rho * beta**3 * r),
        intermediate_p=(6.0 * g * gmg - g * trace - mtg - mg) / (four_pi_rho * alpha**2 * r**2),
        intermediate_s=-(6.0 * g * gmg - g * trace - mtg - 2.0 * mg)
        / (four_pi_rho * beta**2 * r**2),
        near=(15.0 * g * gmg - 3.0 * g * trace - 3.0 * mtg - 3.0 * mg) / (four_pi_rho * r**4),
        tp=r / alpha,
        ts=r / beta,
    )


def _near_field_time_function(stf: MomentFunction, t: np.ndarray, a: float, b: float,
                              order: int) -> np.ndarray:
    # ∫_a^b τ m(t - τ) dτ = a F2(t - a) - b F2(t - b) + F3(t - a) - F3(t - b) (order 2); its
    # time derivative uses F1 and F2 (order 1)
    return (a * stf.antiderivative(t - a, order) - b * stf.antiderivative(t - b, order)
            + stf.antiderivative(t - a, order + 1) - stf.antiderivative(t - b, order + 1))


def _check_tensor_and_offset(moment_tensor: np.ndarray, source: Any,
                             receiver: Any) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(moment_tensor, dtype=float)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        raise ValueError(f"the moment tensor must be a finite 3x3 array, got shape {m.shape}")
    offset = np.asarray(receiver, dtype=float) - np.asarray(source, dtype=float)
    if offset.shape != (3,) or not np.all(np.isfinite(offset)):
        raise ValueError("source and receiver positions must be 3 finite coordinates each")
    if float(np.linalg.norm(offset)) < 1e-6:
        raise ValueError("the receiver coincides with the source (distance < 1 µm)")
    return m, offset


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

    Elastic, no free surface. Any orthonormal Cartesian frame works (e.g. NED, or SPECFEM's x
    east, y north, z up), as long as the tensor and the positions use the same one; the result
    is in that frame.

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
        :class:`BruneSourceTimeFunction` or :class:`SourceTimeFunction`.
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
    m, offset = _check_tensor_and_offset(moment_tensor_xyz, source_xyz, receiver_xyz)
    c = _wave_terms(m, offset, medium)
    t = np.asarray(times, dtype=float)
    u = np.zeros((3, t.size))
    if "near" in terms:
        u += np.outer(c.near, _near_field_time_function(stf_function, t, c.tp, c.ts, 2))
    if "intermediate" in terms:
        u += np.outer(c.intermediate_p, stf_function.antiderivative(t - c.tp, 1))
        u += np.outer(c.intermediate_s, stf_function.antiderivative(t - c.ts, 1))
    if "far" in terms:
        u += np.outer(c.far_p, stf_function.antiderivative(t - c.tp, 0))
        u += np.outer(c.far_s, stf_function.antiderivative(t - c.ts, 0))
    return u


def station_displacement(
    moment_tensor_ned: np.ndarray,
    receiver_ned: Any,
    medium: Medium,
    times: np.ndarray,
    stf_function: MomentFunction,
    *,
    free_surface: str = "plane_wave",
    attenuation: Attenuation | None = None,
) -> np.ndarray:
    """Displacement at a receiver on the free surface, with attenuation (see the module doc).

    The terms of eq. 4.29 are grouped by wave type: far-field and intermediate-field P travel
    with ``vp`` and take the P attenuation over ``r/vp``; far-field and intermediate-field S
    take the S attenuation over ``r/vs``; the near-field term (arriving between the two) takes
    the S attenuation. The attenuation operator acts on the moment rate (far field) or on the
    time derivative of the intermediate- and near-field time functions, which is then
    integrated back (the operator passes zero frequency unchanged: the permanent offsets stay).
    The free surface is applied with :func:`free_surface_matrix` to the far field and a factor
    2 to the near and intermediate fields (``"plane_wave"``), a factor 2 to everything
    (``"factor2"``) or not at all (``"none"``).

    Parameters
    ----------
    moment_tensor_ned
        3x3 moment tensor in N·m, NED.
    receiver_ned
        Receiver position relative to the source, ``[north, east, down]`` in m.
    medium
        Homogeneous medium.
    times
        Evenly spaced times in s, on the time axis of ``stf_function``, starting before the P
        arrival (the FFTs see the window as periodic).
    stf_function
        Normalised source time function. An ``end_time`` attribute (s), if present, is used to
        pad the FFTs beyond the pulses.
    free_surface
        One of :data:`FREE_SURFACE_MODELS`.
    attenuation
        Attenuation, or ``None`` for an elastic medium.

    Returns
    -------
    numpy.ndarray
        Displacement in m, NED, shape ``(3, len(times))``.

    Raises
    ------
    ValueError
        For a bad tensor, unevenly spaced times, a receiver not above the source
        (``"plane_wave"``) or an unknown free-surface model.
    """
    if free_surface not in FREE_SURFACE_MODELS:
        raise ValueError(f"free_surface must be one of {', '.join(FREE_SURFACE_MODELS)}, "
                         f"not {free_surface!r}")
    m, offset = _check_tensor_and_offset(moment_tensor_ned, np.zeros(3), receiver_ned)
    t = np.asarray(times, dtype=float)
    factor = 1.0 if free_surface == "none" else FREE_SURFACE_FACTOR
    if free_surface == "plane_wave":
        operator = free_surface_matrix(offset, medium)
    elif attenuation is None:
        return factor * displacement_cartesian(m, np.zeros(3), offset, medium, t, stf_function)
    else:
        operator = factor * np.eye(3, dtype=complex)
    delta = _time_step(t)
    c = _wave_terms(m, offset, medium)
    te = _padded_times(t, delta, stf_function)
    rate_p, rate_s, step_p, step_s, near = _time_functions(stf_function, te, delta, c.tp,
                                                           c.ts, attenuation, medium)
    u = (np.outer(operator.real @ c.far_p, rate_p) + np.outer(operator.real @ c.far_s, rate_s)
         + factor * (np.outer(c.intermediate_p, step_p) + np.outer(c.intermediate_s, step_s)
                     + np.outer(c.near, near)))
    # the P responses are real; a post-critical SV response is not: Re(C) u + Im(C) H[u],
    # with H[u] faded in between the P and the head-wave arrivals (see head_wave_taper)
    imaginary = operator.imag @ c.far_s
    if np.any(imaginary):
        taper = head_wave_taper(te, offset, medium)
        u += np.outer(imaginary, taper * np.imag(hilbert(rate_s)))
    return u[:, :t.size]


def _padded_times(t: np.ndarray, delta: float, stf_function: MomentFunction) -> np.ndarray:
    """The times ``t`` extended for the FFTs (a fast length).

    Padded beyond the window: the pulses arriving near its end (until the source time
    function's ``end_time``), the attenuation operators' and the Hilbert transform's tails
    must not wrap around onto its start.
    """
    n = t.size
    end_time = float(getattr(stf_function, "end_time", t[-1]))
    pad = n + max(0, math.ceil((end_time - t[0]) / delta))
    n_fft = next_fast_len(n + pad, real=True)
    return t[0] + delta * np.arange(n_fft)


def _time_step(t: np.ndarray) -> float:
    """The step (s) of evenly spaced, increasing times; :class:`ValueError` otherwise."""
    if t.size < 2:
        raise ValueError("need at least two evenly spaced times")
    delta = float(t[1] - t[0])
    if not (delta > 0.0 and np.allclose(np.diff(t), delta, rtol=1e-9, atol=0.0)):
        raise ValueError("times must be evenly spaced and increasing")
    return delta


def _time_functions(stf_function: MomentFunction, te: np.ndarray, delta: float, tp: float,
                    ts: float, attenuation: Attenuation | None, medium: Medium
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The time functions of the P, S and near-field terms on the padded times ``te``.

    ``te`` is evenly spaced by ``delta`` (s).

    Returns
    -------
    rate_p, rate_s, step_p, step_s, near
        Moment rate and moment (normalised) delayed by the P and S travel times ``tp`` and
        ``ts``, and the near-field time function; attenuated when ``attenuation`` is given
        (the operator acts on the rates, and the others are integrated back from them).
    """
    rate_p = stf_function.antiderivative(te - tp, 0)
    rate_s = stf_function.antiderivative(te - ts, 0)
    step_p = stf_function.antiderivative(te - tp, 1)
    step_s = stf_function.antiderivative(te - ts, 1)
    near = _near_field_time_function(stf_function, te, tp, ts, 2)
    if attenuation is None:
        return rate_p, rate_s, step_p, step_s, near
    n_fft = te.size
    operators = {wave: attenuation.spectrum(n_fft, delta, travel, wave, medium)
                 for wave, travel in (("P", tp), ("S", ts))}

    def attenuate(x: np.ndarray, wave: str) -> np.ndarray:
        return np.fft.irfft(np.fft.rfft(x) * operators[wave], n_fft)

    def integral(x: np.ndarray) -> np.ndarray:
        return cumulative_trapezoid(x, dx=delta, initial=0.0)

    attenuated_p, attenuated_s = attenuate(rate_p, "P"), attenuate(rate_s, "S")
    step_p = step_p + integral(attenuated_p - rate_p)
    step_s = step_s + integral(attenuated_s - rate_s)
    near_rate = _near_field_time_function(stf_function, te, tp, ts, 1)
    near = near + integral(attenuate(near_rate, "S") - near_rate)
    return attenuated_p, attenuated_s, step_p, step_s, near


def head_wave_taper(times: np.ndarray, receiver_ned: Any, medium: Medium) -> np.ndarray:
    """Causal window of the post-critical phase shift: 0 before P, 1 after the head wave.

    A plane wave's post-critical phase shift ``Im(C) H[u]`` has a ``1/t`` tail that reaches
    back indefinitely; for a point source beyond the critical distance the S wave is preceded
    by its S-to-P head wave, arriving at ``x/vp + h cos(ic)/vs`` (``x`` epicentral distance,
    ``h`` source depth below the receiver, ``sin ic = vs/vp``), and nothing arrives before P.
    The window rises as a half cosine from 0 at the P arrival ``r/vp`` to 1 at the head wave
    (a step at P if they coincide).

    Parameters
    ----------
    times
        Times in s after the origin.
    receiver_ned
        Receiver position relative to the source, ``[north, east, down]`` in m.
    medium
        The half-space.

    Returns
    -------
    numpy.ndarray
        Window values in [0, 1] at ``times``.
    """
    offset = np.asarray(receiver_ned, dtype=float)
    x, h = math.hypot(offset[0], offset[1]), max(-float(offset[2]), 0.0)
    tp = float(np.linalg.norm(offset)) / medium.vp
    cos_ic = math.sqrt(1.0 - (medium.vs / medium.vp) ** 2)
    t_head = max(x / medium.vp + h * cos_ic / medium.vs, tp)
    t = np.asarray(times, dtype=float)
    if t_head - tp < 1e-9:
        return np.where(t >= tp, 1.0, 0.0)
    phase = np.clip((t - tp) / (t_head - tp), 0.0, 1.0)
    return 0.5 * (1.0 - np.cos(math.pi * phase))


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


def _finite_positive(name: str, value: Any, *, allow_zero: bool = False) -> None:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float))
          and math.isfinite(value) and (value >= 0.0 if allow_zero else value > 0.0))
    if not ok:
        raise ValueError(f"{name} must be a finite number {'>=' if allow_zero else '>'} 0, "
                         f"not {value!r}")


@dataclass(frozen=True)
class EmbeddedConfig:
    """Settings of the embedded analytical solver (the ``[simulate]`` table).

    Attributes
    ----------
    medium
        Homogeneous medium (default: a crustal 6 km/s, vp/vs = sqrt(3), 2.7 g/cm³).
    half_space
        True: the stations are on the free surface of a half-space, modelled as
        ``free_surface`` says; False: a full space (the same as ``free_surface = "none"``).
    free_surface
        One of :data:`FREE_SURFACE_MODELS`; ``None`` (default): ``"plane_wave"`` if
        ``half_space`` else ``"none"``. ``"plane_wave"`` or ``"factor2"`` with
        ``half_space = false`` is a contradiction and rejected.
    sampling_rate
        Sampling rate of the synthetics in Hz.
    duration
        Length after the origin time in s; ``npts = duration * sampling_rate + 1``.
    stf
        Shape of the moment rate, one of :data:`STF_SHAPES` (default ``"brune"``); it starts at
        the origin time.
    stress_drop
        Brune stress drop in MPa (default :data:`DEFAULT_STRESS_DROP`), for the corner
        frequency ``fc = 0.4906 vs (stress_drop / M0)**(1/3)`` (``"brune"`` only). A scaled
        ``fc`` above a quarter of the sampling rate is lowered to it (noted in the traces'
        processing) against aliasing.
    corner_frequency
        Brune corner frequency in Hz, overriding ``stress_drop``; at most a quarter of the
        sampling rate (``"brune"`` only).
    half_duration
        Half duration of a ``"gaussian"`` or ``"triangle"`` pulse in s, centred
        ``half_duration`` after the origin; ``None`` scales it from the moment
        (:func:`dare_cli.ra.source.half_duration_from_moment`). An explicit value must be at
        least two samples; a scaled one shorter than that is raised to two samples (noted).
    attenuation
        Apply anelastic attenuation and site diminution (default True); False: elastic.
    q0, q_exponent, qp_qs_ratio, kappa
        The :class:`Attenuation` parameters: Qs at 1 Hz (default 180), its frequency exponent
        above 1 Hz (0.45), ``Qp/Qs`` (``None``: ``(3/4)(vp/vs)²``), ``kappa0`` in s (0.035).
    """

    medium: Medium = field(default=Medium(6000.0, 3464.0, 2700.0))
    half_space: bool = True
    free_surface: str | None = None
    sampling_rate: float = 20.0
    duration: float = 150.0
    stf: str = "brune"
    stress_drop: float = DEFAULT_STRESS_DROP
    corner_frequency: float | None = None
    half_duration: float | None = None
    attenuation: bool = True
    q0: float = DEFAULT_Q0
    q_exponent: float = DEFAULT_Q_EXPONENT
    qp_qs_ratio: float | None = None
    kappa: float = DEFAULT_KAPPA

    def __post_init__(self) -> None:
        if not isinstance(self.medium, Medium):
            raise ValueError(f"medium must be a Medium, not {self.medium!r}")
        for name in ("sampling_rate", "duration", "stress_drop"):
            _finite_positive(name, getattr(self, name))
        for name in ("half_space", "attenuation"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, not {getattr(self, name)!r}")
        if self.stf not in STF_SHAPES:
            raise ValueError(f"stf must be one of {', '.join(STF_SHAPES)}, not {self.stf!r}")
        if self.free_surface is not None and self.free_surface not in FREE_SURFACE_MODELS:
            raise ValueError(f"free_surface must be one of {', '.join(FREE_SURFACE_MODELS)}, "
                             f"not {self.free_surface!r}")
        if not self.half_space and self.free_surface not in (None, "none"):
            raise ValueError(f"free_surface = {self.free_surface!r} contradicts "
                             "half_space = false (a full space); drop one of them")
        if self.half_duration is not None:
            if self.stf == "brune":
                raise ValueError("half_duration applies to the gaussian and triangle pulses; "
                                 "the brune source takes corner_frequency or stress_drop")
            shortest = MIN_HALF_DURATION_SAMPLES / self.sampling_rate
            if not (math.isfinite(self.half_duration) and self.half_duration >= shortest):
                raise ValueError(
                    f"half_duration must be >= {shortest:g} s (two samples at "
                    f"{self.sampling_rate:g} Hz), not {self.half_duration!r}"
                )
        if self.corner_frequency is not None:
            if self.stf != "brune":
                raise ValueError(f"corner_frequency applies to stf = 'brune', not {self.stf!r}")
            highest = MAX_CORNER_FRACTION * self.sampling_rate
            _finite_positive("corner_frequency", self.corner_frequency)
            if self.corner_frequency > highest:
                raise ValueError(f"corner_frequency must be <= {highest:g} Hz (a quarter of "
                                 f"the sampling rate), not {self.corner_frequency!r}")
        # the attenuation parameters are checked even when attenuation is off
        Attenuation(self.q0, self.q_exponent, self.qp_qs_ratio, self.kappa)

    @property
    def npts(self) -> int:
        """Number of samples of each synthetic trace."""
        return round(self.duration * self.sampling_rate) + 1

    @property
    def surface_model(self) -> str:
        """The free-surface model in effect, one of :data:`FREE_SURFACE_MODELS`."""
        if self.free_surface is not None:
            return self.free_surface
        return "plane_wave" if self.half_space else "none"

    @property
    def attenuation_model(self) -> Attenuation | None:
        """The :class:`Attenuation` in effect, or ``None`` (elastic)."""
        if not self.attenuation:
            return None
        return Attenuation(self.q0, self.q_exponent, self.qp_qs_ratio, self.kappa)


def _source_time_function(config: EmbeddedConfig, m0: float) -> tuple[MomentFunction, str]:
    """The moment-rate function of a station's synthetics and its processing line."""
    if config.stf == "brune":
        highest = MAX_CORNER_FRACTION * config.sampling_rate
        if config.corner_frequency is not None:
            fc = config.corner_frequency
            how = "configured"
        else:
            fc = brune_corner_frequency(m0, config.stress_drop * 1e6, config.medium.vs)
            how = (f"Brune (1970) fc=0.4906*vs*(stress_drop/M0)^(1/3) with stress drop "
                   f"{config.stress_drop:g} MPa, vs={config.medium.vs:g} m/s")
            if fc > highest:
                how += (f"; {fc:.4g} Hz lowered to {highest:.4g} Hz (a quarter of the sampling "
                        "rate) against aliasing")
                fc = highest
        brune = BruneSourceTimeFunction(fc, onset=0.0)
        return brune, (f"Brune omega-squared moment rate w^2 t exp(-w t), corner frequency "
                       f"fc={fc:.4g} Hz ({how}), starting at the origin time")
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
    pulse = SourceTimeFunction(config.stf, half_duration, centroid_time=half_duration)
    return pulse, (f"{config.stf} moment rate, half duration {half_duration:.4g} s "
                   f"({origin_of_hd}{note}), starting at the origin time, centred "
                   f"{half_duration:.4g} s after it")


def _surface_description(config: EmbeddedConfig, receiver: np.ndarray) -> str:
    model = config.surface_model
    if model == "none":
        return "free surface none (full space)"
    if model == "factor2":
        return (f"free surface factor2 (full-space solution x {FREE_SURFACE_FACTOR:g}; exact "
                "for SH and at vertical incidence only)")
    angle = incidence_angle(receiver)
    medium = config.medium
    response = free_surface_response(angle, medium)
    critical = medium.critical_angle
    beyond = (f"SV beyond the critical angle {critical:.1f} deg: complex, phase shift "
              "Re(C)u+Im(C)H[u] (exp(-iwt) convention) on the far field"
              if angle > critical else f"SV within the critical angle {critical:.1f} deg")

    def show(value: complex) -> str:
        return f"{value.real:.3f}{value.imag:+.3f}i" if value.imag else f"{value.real:.3f}"

    return (f"free surface plane_wave: exact plane-wave response of a homogeneous half-space; "
            f"incidence angle from vertical of P {angle:.2f} deg and of S {angle:.2f} deg "
            f"(straight rays); P->(radial, up)=({show(response.p_radial)}, "
            f"{show(response.p_vertical)}), SV->({show(response.sv_radial)}, "
            f"{show(response.sv_vertical)}), SH x2; {beyond}; near and intermediate fields "
            f"x{FREE_SURFACE_FACTOR:g}; no surface or head waves")


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
        at the origin time, ``config.npts`` samples at ``config.sampling_rate``; each trace's
        ``stats.processing`` records the source, attenuation and free-surface models used.

    Raises
    ------
    StationError
        For missing or non-finite station coordinates, a station at the hypocentre, or (with
        the plane-wave free surface) a station not above the hypocentre.
    ValueError
        For an origin without time, position or depth, or a bad moment tensor.
    """
    station_id = f"{network}.{station}"
    for name in ("time", "latitude", "longitude", "depth"):
        if getattr(event_origin, name, None) is None:
            raise ValueError(f"the event origin has no {name}")
    coordinates = _station_position(station_id, station_coordinates)
    m = np.asarray(moment_tensor, dtype=float)
    m0 = scalar_moment(m)
    if m0 <= 0.0:
        raise ValueError("the moment tensor is zero")
    stf, stf_note = _source_time_function(config, m0)

    receiver = source_receiver_vector(event_origin, coordinates)
    distance = float(np.linalg.norm(receiver))
    if distance < 1.0:
        raise StationError(station_id, "the station is less than 1 m from the hypocentre")
    if config.surface_model == "plane_wave" and incidence_angle(receiver) >= 90.0:
        raise StationError(station_id, "the plane-wave free surface needs the station above "
                           "the hypocentre")
    times = np.arange(config.npts) / config.sampling_rate
    u = station_displacement(m, receiver, config.medium, times, stf,
                             free_surface=config.surface_model,
                             attenuation=config.attenuation_model)
    processing = _synthetics_processing(config, m, m0, stf_note, receiver, distance)
    traces = []
    for channel, data in zip(CHANNELS, (u[1], u[0], -u[2]), strict=True):
        trace = Trace(data=np.ascontiguousarray(data), header={
            "network": network, "station": station, "location": location, "channel": channel,
            "starttime": event_origin.time, "sampling_rate": config.sampling_rate,
        })
        trace.stats.processing = list(processing)
        traces.append(trace)
    return Stream(traces)


def _synthetics_processing(config: EmbeddedConfig, m: np.ndarray, m0: float, stf_note: str,
                           receiver: np.ndarray, distance: float) -> list[str]:
    """The ``stats.processing`` entries of the synthetics: solution, medium, source, models."""
    medium = config.medium
    attenuation = config.attenuation_model
    note_geometry = ""
    if math.hypot(receiver[0], receiver[1]) > FLAT_EARTH_LIMIT:
        note_geometry = f" (beyond {FLAT_EARTH_LIMIT / 1e3:g} km: approximate)"
    tp, ts = distance / medium.vp, distance / medium.vs
    if attenuation is None:
        attenuation_note = "attenuation none (elastic)"
    else:
        one_hz = np.array([Q_REFERENCE_FREQUENCY])
        attenuation_note = (
            f"attenuation {attenuation.describe(medium)}; travel times P {tp:.3f} s, S "
            f"{ts:.3f} s; t* at 1 Hz P {attenuation.t_star(one_hz, tp, 'P', medium)[0]:.4g} s, "
            f"S {attenuation.t_star(one_hz, ts, 'S', medium)[0]:.4g} s (with kappa0); causal "
            "minimum-phase operator (dispersion referenced to the Nyquist frequency)")
    version = f"dare {__version__}"
    return [
        f"{version}: embedded analytical synthetics, Aki & Richards (2002) eq. 4.29 "
        "(near, intermediate and far field), displacement in m",
        f"{version}: medium homogeneous {medium}",
        f"{version}: source M0={m0:.4g} N m (Mw {magnitude_from_moment(m0):.2f}), tensor NED "
        f"[Mxx Myy Mzz Mxy Mxz Myz]=[{m[0, 0]:.4g} {m[1, 1]:.4g} {m[2, 2]:.4g} {m[0, 1]:.4g} "
        f"{m[0, 2]:.4g} {m[1, 2]:.4g}] N m",
        f"{version}: {stf_note}",
        f"{version}: {attenuation_note}",
        f"{version}: {_surface_description(config, receiver)}",
        f"{version}: geometry flat Earth{note_geometry}, hypocentral distance {distance:.1f} m, "
        f"[north east down]=[{receiver[0]:.1f} {receiver[1]:.1f} {receiver[2]:.1f}] m",
    ]


def _station_position(station_id: str, station_coordinates: Mapping[str, Any]
                      ) -> dict[str, float]:
    """``latitude``, ``longitude``, ``elevation`` and ``local_depth`` as finite floats.

    Raises
    ------
    StationError
        A coordinate missing, not a number, or not finite.
    """
    try:
        coordinates = {key: float(station_coordinates[key])
                       for key in ("latitude", "longitude")}
        for key in ("elevation", "local_depth"):
            coordinates[key] = float(station_coordinates.get(key) or 0.0)
    except (KeyError, TypeError, ValueError) as error:
        raise StationError(station_id, f"bad or missing station coordinates: {error!r}") from None
    if not all(math.isfinite(v) for v in coordinates.values()):
        raise StationError(station_id, f"non-finite station coordinates {coordinates}")
    return coordinates
