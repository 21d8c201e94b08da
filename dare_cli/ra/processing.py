"""Signal steps of strong-motion processing, after the method of USGS gmprocess.

Pure functions on numpy arrays and obspy objects (no I/O): the record processing of
:mod:`dare_cli.ra.preprocess` is a sequence of them. Each follows the step of gmprocess 2.8
(``config_production.yml``) named in its docstring; the references to gmprocess are to its
public source (``gmprocess/waveform_processing/*.py``), read, not copied:

- :func:`butterworth_response` / :func:`filter_in_frequency` -- gmprocess's frequency-domain
  Butterworth: the magnitude response of an order-``n`` Butterworth filter applied once to the
  spectrum (zero phase, acausal), the DC term removed (``StationTrace.filter``,
  ``frequency_domain=True``);
- :func:`integrate_in_frequency` / :func:`differentiate_in_frequency` -- division (multiplication)
  by ``2 pi i f`` of the spectrum, the integral starting at 0 (``StationTrace.integrate``);
- :func:`smoothed_spectrum` -- Fourier amplitude ``|FFT| * dt`` smoothed with the Konno & Ohmachi
  (1998) window (obspy's :func:`~obspy.signal.konnoohmachismoothing.konno_ohmachi_smoothing_window`)
  at 301 log-spaced frequencies (``fft.compute_and_smooth_spectrum``);
- :func:`signal_to_noise` -- the ratio of the signal's and the noise's smoothed spectra, each
  normalised by the square root of its duration, the noise inside the signal window removed
  (``snr.compute_snr_trace``);
- :func:`corners_from_snr` -- the band where the SNR exceeds the threshold around the band of
  interest (``corner_frequencies.from_snr``);
- :func:`polyfit_highpass` -- the high-pass corner at which a fifth-order polynomial fitted to
  the displacement holds a target fraction of its peak, found by Ridder's method
  (``adjust_highpass_ridder.ridder_fchp``; Ramos-Sepulveda et al., 2025, SRL);
- :func:`brune_corner_frequency`, :func:`shaking_duration`, :func:`p_arrival_time` --
  the event-dependent quantities the windows and checks need.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from obspy.signal.konnoohmachismoothing import konno_ohmachi_smoothing_window
from obspy.signal.util import next_pow_2
from scipy import optimize, signal

__all__ = [
    "KO_BANDWIDTH",
    "SnrCurve",
    "brune_corner_frequency",
    "butterworth_response",
    "corners_from_snr",
    "differentiate_in_frequency",
    "filter_in_frequency",
    "integrate_in_frequency",
    "p_arrival_time",
    "polyfit_highpass",
    "shaking_duration",
    "signal_to_noise",
    "smoothed_spectrum",
]

#: Konno-Ohmachi bandwidth of the SNR spectra (gmprocess's ``smoothing_parameter``).
KO_BANDWIDTH = 20.0
#: Number of Konno-Ohmachi centre frequencies (log-spaced), as gmprocess.
KO_FREQUENCIES = 301
#: Hann taper (fraction at each end) of the noise and signal windows before their FFT.
WINDOW_TAPER = 0.05
#: Fewest samples in a noise or signal window.
MIN_WINDOW_SAMPLES = 10


def brune_corner_frequency(moment: float, stress_drop: float, shear_velocity: float) -> float:
    """Corner frequency of Brune's (1970) omega-squared source.

    ``fc = 0.4906 beta (delta_sigma / M0)^(1/3)`` in SI units (Brune 1970, with 2.34/(2 pi)
    for the constant; gmprocess's ``brune_f0`` writes it as 4.906e6 with km/s, bar, dyne-cm).

    Parameters
    ----------
    moment
        Scalar seismic moment (N m).
    stress_drop
        Stress drop (Pa).
    shear_velocity
        Shear-wave velocity at the source (m/s).

    Returns
    -------
    float
        Corner frequency (Hz).
    """
    if not (moment > 0 and stress_drop > 0 and shear_velocity > 0):
        raise ValueError(f"moment, stress drop and shear velocity must be positive, not "
                         f"{moment}, {stress_drop}, {shear_velocity}")
    return 0.4906 * shear_velocity * (stress_drop / moment) ** (1.0 / 3.0)


def shaking_duration(magnitude: float) -> float:
    """Duration of strong shaking (s) used to normalise the signal spectrum: ``30 M - 30``.

    gmprocess's ``duration_from_magnitude`` (a generic record duration of ``M / 2`` minutes,
    30 s of pre-event noise taken off).
    """
    return magnitude / 2.0 * 60.0 - 30.0


@functools.lru_cache(maxsize=4)
def _taup_model(name: str) -> object:
    from obspy.taup import TauPyModel

    return TauPyModel(model=name)


def p_arrival_time(distance_deg: float, depth_km: float, model: str = "iasp91") -> float | None:
    """First P arrival (P, p or Pn) in s after the origin, from a 1-D travel-time model.

    Parameters
    ----------
    distance_deg
        Epicentral distance (degrees).
    depth_km
        Source depth (km); negative depths count as 0.
    model
        An obspy TauP model name (``iasp91``, ``ak135``, ``prem``...).

    Returns
    -------
    float or None
        Travel time (s), or ``None`` when the model has no such arrival.
    """
    taup = _taup_model(model)
    arrivals = taup.get_travel_times(  # type: ignore[attr-defined]
        source_depth_in_km=max(float(depth_km), 0.0), distance_in_degree=float(distance_deg),
        phase_list=["P", "p", "Pn"])
    return float(arrivals[0].time) if arrivals else None


def butterworth_response(
    frequencies: np.ndarray, *, highpass: float | None = None, lowpass: float | None = None,
    order: float = 5.0,
) -> np.ndarray:
    """Magnitude response of Butterworth high-, low- or band-pass filters.

    ``|H| = [1 + (f_hp / f)^(2n)]^(-1/2) [1 + (f / f_lp)^(2n)]^(-1/2)``; 0 at ``f = 0`` when
    there is a high-pass corner.
    """
    f = np.asarray(frequencies, dtype=np.float64)
    response = np.ones_like(f)
    if highpass is not None:
        with np.errstate(divide="ignore"):
            ratio = np.where(f > 0, highpass / np.where(f > 0, f, 1.0), np.inf)
        response /= np.sqrt(1.0 + ratio ** (2.0 * order))
    if lowpass is not None:
        response /= np.sqrt(1.0 + (f / lowpass) ** (2.0 * order))
    return response


def filter_in_frequency(
    data: np.ndarray, dt: float, *, highpass: float | None = None,
    lowpass: float | None = None, order: float = 5.0,
) -> np.ndarray:
    """Zero-phase Butterworth filter applied once to the spectrum (gmprocess's filter).

    The spectrum of the whole record (no padding, as gmprocess) is multiplied by
    :func:`butterworth_response` and its DC term removed.

    Parameters
    ----------
    data
        Samples.
    dt
        Sampling interval (s).
    highpass, lowpass
        Corner frequencies (Hz); ``None`` for none.
    order
        Filter order ``n`` (the response falls as ``f^n`` outside the band).

    Returns
    -------
    numpy.ndarray
        Filtered samples, same length.
    """
    npts = len(data)
    spectrum = np.fft.rfft(np.asarray(data, dtype=np.float64), n=npts)
    spectrum *= butterworth_response(np.fft.rfftfreq(npts, dt), highpass=highpass,
                                     lowpass=lowpass, order=order)
    spectrum[0] = 0.0
    return np.fft.irfft(spectrum, n=npts)


def integrate_in_frequency(data: np.ndarray, dt: float) -> np.ndarray:
    """Integral of a record by division of its spectrum by ``2 pi i f``, starting at 0.

    The DC term is dropped (a constant cannot be integrated over a finite record), then the
    result is shifted so that its first sample is 0 (gmprocess's ``integrate`` with
    ``frequency=True, initial=0``).
    """
    npts = len(data)
    spectrum = np.fft.rfft(np.asarray(data, dtype=np.float64), n=npts)
    freqs = np.fft.rfftfreq(npts, dt)
    spectrum[1:] /= 2j * np.pi * freqs[1:]
    spectrum[0] = 0.0
    result = np.fft.irfft(spectrum, n=npts)
    return result - result[0]


def differentiate_in_frequency(data: np.ndarray, dt: float) -> np.ndarray:
    """Derivative of a record by multiplication of its spectrum by ``2 pi i f``."""
    npts = len(data)
    spectrum = np.fft.rfft(np.asarray(data, dtype=np.float64), n=npts)
    spectrum *= 2j * np.pi * np.fft.rfftfreq(npts, dt)
    if npts % 2 == 0:  # the Nyquist term of a real signal has no derivative phase
        spectrum[-1] = 0.0
    return np.fft.irfft(spectrum, n=npts)


def smoothed_spectrum(
    data: np.ndarray, dt: float, nfft: int, bandwidth: float = KO_BANDWIDTH,
) -> tuple[np.ndarray, np.ndarray]:
    """Fourier amplitude spectrum ``|FFT| dt``, smoothed with the Konno-Ohmachi window.

    Evaluated at :data:`KO_FREQUENCIES` log-spaced frequencies from the first non-zero
    frequency of the FFT to the Nyquist frequency; each value is the average of the raw
    amplitudes weighted by the Konno-Ohmachi window, over the frequencies where
    ``|b log10(f / fc)| <= 3`` (beyond, the window is below 5e-6).

    Returns
    -------
    frequencies, amplitudes
        The smoothing frequencies (Hz) and the smoothed amplitudes (unit of data times s).
    """
    raw = np.abs(np.fft.rfft(np.asarray(data, dtype=np.float64), n=nfft)) * dt
    centres, windows = _konno_ohmachi_windows(int(nfft), float(dt), float(bandwidth))
    smoothed = np.full(centres.size, np.nan)
    for i, (lo, hi, window) in enumerate(windows):
        if window is not None:
            smoothed[i] = float(np.dot(window, raw[lo:hi]))
    return centres, smoothed


@functools.lru_cache(maxsize=8)
def _konno_ohmachi_windows(nfft: int, dt: float, bandwidth: float
                           ) -> tuple[np.ndarray, list[tuple[int, int, np.ndarray | None]]]:
    """Centre frequencies and their normalised windows over the FFT frequencies.

    The same for every spectrum of the same length and sampling (the noise and signal of
    every channel of a station): computed once per process.
    """
    freqs = np.fft.rfftfreq(nfft, dt)
    centres = np.logspace(math.log10(freqs[1]), math.log10(freqs[-1]),
                          min(nfft, KO_FREQUENCIES + 1) - 1)
    reach = 10.0 ** (3.0 / bandwidth)
    windows: list[tuple[int, int, np.ndarray | None]] = []
    for centre in centres:
        lo, hi = (int(i) for i in np.searchsorted(freqs, (centre / reach, centre * reach)))
        lo = max(lo, 1)
        window = None
        if hi > lo:
            values = konno_ohmachi_smoothing_window(freqs[lo:hi], centre, bandwidth=bandwidth)
            total = values.sum()
            window = values / total if total > 0 else None
        windows.append((lo, hi, window))
    return centres, windows


@dataclass(frozen=True)
class SnrCurve:
    """A smoothed signal-to-noise ratio: ``snr[i]`` at ``frequencies[i]`` (Hz), NaN undefined."""

    frequencies: np.ndarray
    snr: np.ndarray

    def minimum(self, fmin: float, fmax: float) -> float:
        """Smallest defined SNR within ``[fmin, fmax]`` (0 when none is defined there)."""
        mask = (self.frequencies >= fmin) & (self.frequencies <= fmax) & np.isfinite(self.snr)
        return float(self.snr[mask].min()) if mask.any() else 0.0


def _tapered(data: np.ndarray) -> np.ndarray:
    out = np.asarray(data, dtype=np.float64) - np.mean(data)
    half = int(WINDOW_TAPER * len(out))
    if half > 0:
        ramp = np.hanning(2 * half + 1)[:half]
        out[:half] *= ramp
        out[-half:] *= ramp[::-1]
    return out


def signal_to_noise(
    noise: np.ndarray, event: np.ndarray, dt: float, shaking: float,
    bandwidth: float = KO_BANDWIDTH,
) -> SnrCurve:
    """Smoothed SNR of an event window against the pre-event noise window.

    Both windows are demeaned and Hann-tapered (5 % each end), transformed with the same FFT
    length and smoothed (:func:`smoothed_spectrum`). Noise is taken as stationary and
    scaling as the square root of duration: the noise inside the event window is the
    pre-event spectrum times ``sqrt(T_event / T_noise)``, the signal spectrum is the event
    spectrum less that noise, and ``SNR = (S / sqrt(T_shaking)) / (N_event / sqrt(T_noise))``.
    Below ``1 / T_event`` the SNR is undefined (NaN).

    Parameters
    ----------
    noise, event
        Samples of the noise (before the P arrival) and of the event windows.
    dt
        Sampling interval (s).
    shaking
        Duration of shaking (s, :func:`shaking_duration`); the event window should have been
        cut to it.

    Raises
    ------
    ValueError
        A window has fewer than :data:`MIN_WINDOW_SAMPLES` samples.
    """
    for name, window in (("noise", noise), ("signal", event)):
        if len(window) < MIN_WINDOW_SAMPLES:
            raise ValueError(f"not enough samples in the {name} window ({len(window)})")
    nfft = max(next_pow_2(len(event)), next_pow_2(len(noise)))
    freqs, noise_spec = smoothed_spectrum(_tapered(noise), dt, nfft, bandwidth)
    _, event_spec = smoothed_spectrum(_tapered(event), dt, nfft, bandwidth)
    event_spec[freqs < 1.0 / (dt * len(event))] = np.nan
    t_noise = (len(noise) - 1) * dt
    t_event = (len(event) - 1) * dt
    shaking = min(shaking, t_event) if shaking > 0 else t_event
    event_noise = noise_spec * math.sqrt(t_event / t_noise)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = ((event_spec - event_noise) / math.sqrt(shaking)) / (event_noise
                                                                 / math.sqrt(t_noise))
    return SnrCurve(freqs, snr)


def corners_from_snr(
    curve: SnrCurve, *, threshold: float, fmin: float, fmax: float, duration: float,
) -> tuple[float, float]:
    """High- and low-pass corners from where the SNR crosses the threshold (gmprocess).

    The SNR must stay above ``threshold`` over a band that includes ``[fmin, fmax]``; the
    low corner is where it rises above the threshold below ``fmin`` (at least
    ``1 / duration``) and, below the frequency of the largest SNR, no lower than the frequency
    of the smallest SNR; the high corner is where it falls below the threshold above ``fmax``
    (or the last frequency).

    Parameters
    ----------
    curve
        The SNR.
    threshold
        Smallest acceptable SNR.
    fmin, fmax
        The band (Hz) where the SNR must exceed the threshold.
    duration
        Length of the record (s) from its start to the end of the signal window.

    Returns
    -------
    highpass, lowpass
        Corner frequencies (Hz).

    Raises
    ------
    ValueError
        The SNR never exceeds the threshold, or not over a band including ``[fmin, fmax]``.
    """
    defined = np.isfinite(curve.snr)
    snr, freq = curve.snr[defined], curve.frequencies[defined]
    if not snr.size:
        raise ValueError("the SNR is undefined at every frequency")
    steps = np.diff(np.sign(snr - threshold))
    crossings = np.flatnonzero(steps != 0)
    rising = steps[crossings] > 0
    lows = list(freq[crossings[rising] + 1])
    highs = list(freq[crossings[~rising]])
    if snr[0] > threshold:
        lows.insert(0, freq[0])
    if not lows:
        raise ValueError(f"SNR never above the threshold ({threshold:g})")
    if len(lows) > len(highs):
        highs.append(freq[-1])
    for low, high in zip(lows, highs, strict=False):
        if low <= fmin and high > fmax:
            break
    else:
        raise ValueError(f"SNR below {threshold:g} within {fmin:.3g}-{fmax:.3g} Hz")
    low = max(1.0 / duration, float(low))
    peak = int(np.argmax(snr))
    highpass = max(float(freq[int(np.argmin(snr[:peak]))]), low) if peak > 0 else low
    return highpass, float(high)


#: Highest frequency (Hz) kept in the displacement that the polynomial criterion inspects:
#: above it the displacement (acceleration / omega^2) holds nothing a trend fit can see, and
#: the series is 10 times shorter at 100 samples/s.
TREND_BAND = 10.0


class _DisplacementTrend:
    """The polynomial criterion of :func:`polyfit_highpass` for one record, any corner.

    The displacement is the acceleration's spectrum divided by ``-(2 pi f)^2`` (DC dropped),
    high-passed, and brought back to the time domain below :data:`TREND_BAND` (a band-limited
    decimation of the same series); a polynomial of ``poly_order`` is fitted to it by least
    squares.
    """

    def __init__(self, acc: np.ndarray, dt: float, order: float, poly_order: int) -> None:
        npts = acc.size
        freqs = np.fft.rfftfreq(npts, dt)
        keep = int(np.searchsorted(freqs, TREND_BAND, side="right"))
        keep = max(min(keep, freqs.size), 2)
        spectrum = np.fft.rfft(acc)[:keep]
        self.freqs = freqs[:keep]
        spectrum[0] = 0.0
        spectrum[1:] /= -((2 * np.pi * self.freqs[1:]) ** 2)
        self.displacement = spectrum
        self.npts = 2 * (keep - 1) if keep < freqs.size else npts
        self.times = np.linspace(0.0, dt * npts, self.npts)
        self.order = order
        self.poly_order = poly_order

    def ratio(self, corner: float) -> float:
        """Peak of the fitted polynomial over the displacement's peak, high-pass at ``corner``."""
        spectrum = self.displacement * butterworth_response(self.freqs, highpass=corner,
                                                            order=self.order)
        disp = np.fft.irfft(spectrum, n=self.npts)
        fit = np.polyval(np.polyfit(self.times, disp, self.poly_order), self.times)
        peak = np.abs(disp).max()
        return float(np.abs(fit).max() / peak) if peak > 0 else 0.0


def polyfit_highpass(
    acc: np.ndarray, dt: float, *, target: float = 0.02, fmin: float = 0.001,
    fmax: float = 0.5, order: float = 5.0, poly_order: int = 5, taper: float = 0.05,
) -> float:
    """High-pass corner that leaves no long-period trend in the displacement.

    The criterion of Ramos-Sepulveda et al. (2025), as gmprocess's ``ridder_fchp``: the
    acceleration (demeaned, Tukey window ``taper``) is high-passed at ``fc`` (the Butterworth of
    :func:`filter_in_frequency`) and integrated twice in the frequency domain; a polynomial of
    order ``poly_order`` is fitted to the displacement; ``fc`` is where the ratio of the fit's
    peak to the displacement's peak equals ``target``. The root is found in ``log fc`` by
    Ridder's method (:func:`scipy.optimize.ridder`) within ``[fmin, fmax]``; where the ratio
    has several roots (it need not be monotonic) the one found may differ from gmprocess's
    own iteration.

    Returns
    -------
    float
        ``fmin`` if the displacement has no trend even there; ``fmax`` if it keeps one even
        there (the caller should reject the record); else the root (Hz).
    """
    data = np.asarray(acc, dtype=np.float64)
    data = signal.windows.tukey(data.size, alpha=taper) * (data - data.mean())
    trend = _DisplacementTrend(data, dt, order, poly_order)

    def excess(log_corner: float) -> float:
        return trend.ratio(math.exp(log_corner)) - target

    low, high = math.log(fmin), math.log(fmax)
    if excess(low) < 0:
        return fmin
    if excess(high) > 0:
        return fmax
    # xtol in log fc: 0.2 % of the corner, far inside what changes a peak
    return math.exp(optimize.ridder(excess, low, high, xtol=2e-3, rtol=1e-6, maxiter=60))


def same_horizontal_corners(
    corners: Sequence[tuple[float, float]],
) -> tuple[float, float]:
    """The corners shared by two horizontals: the higher high-pass, the lower low-pass."""
    return max(c[0] for c in corners), min(c[1] for c in corners)
