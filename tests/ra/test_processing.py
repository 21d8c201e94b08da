"""Signal steps of the record processing, each against an independent answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from obspy import Trace
from scipy import signal

from dare_cli.ra import processing


@pytest.mark.parametrize("order", [2, 5, 8])
def test_butterworth_response_is_scipys_analog_butterworth(order: int) -> None:
    """|H| of high- and low-pass corners equals scipy's analog Butterworth filters."""
    f = np.logspace(-3, 2, 400)
    ours = processing.butterworth_response(f, highpass=0.05, lowpass=20.0, order=order)
    b, a = signal.butter(order, 2 * np.pi * 0.05, btype="highpass", analog=True)
    _, high = signal.freqs(b, a, worN=2 * np.pi * f)
    b, a = signal.butter(order, 2 * np.pi * 20.0, btype="lowpass", analog=True)
    _, low = signal.freqs(b, a, worN=2 * np.pi * f)
    np.testing.assert_allclose(ours, np.abs(high * low), rtol=1e-9)
    assert processing.butterworth_response(np.array([0.0]), highpass=0.1)[0] == 0.0


def test_filter_keeps_the_band_and_removes_the_rest() -> None:
    dt = 0.01
    t = np.arange(8192) * dt
    inside = np.sin(2 * np.pi * 2.0 * t)
    outside = np.sin(2 * np.pi * 0.01 * t) + np.sin(2 * np.pi * 45.0 * t)
    out = processing.filter_in_frequency(inside + outside, dt, highpass=0.2, lowpass=20.0,
                                         order=5)
    middle = slice(1000, 7000)  # away from the ends (the filter is circular)
    np.testing.assert_allclose(out[middle], inside[middle], atol=0.02)


def test_integration_and_differentiation_of_a_wavelet() -> None:
    """A Gaussian-enveloped sine and its exact integral and derivative."""
    dt = 0.005
    t = np.arange(0, 40, dt)
    sigma, f0, t0 = 1.0, 1.5, 20.0
    w = 2 * np.pi * f0
    env = np.exp(-((t - t0) ** 2) / (2 * sigma**2))
    disp = env * np.sin(w * (t - t0))
    vel = env * (w * np.cos(w * (t - t0)) - (t - t0) / sigma**2 * np.sin(w * (t - t0)))
    np.testing.assert_allclose(processing.differentiate_in_frequency(disp, dt), vel,
                               atol=1e-9 * np.abs(vel).max())
    integral = processing.integrate_in_frequency(vel, dt)
    assert integral[0] == 0.0
    np.testing.assert_allclose(integral, disp - disp[0], atol=1e-6)


def test_konno_ohmachi_smoothing_keeps_a_flat_spectrum_and_smooths_a_peak() -> None:
    dt, nfft = 0.01, 4096
    impulse = np.zeros(nfft)
    impulse[0] = 1.0 / dt  # |FFT| dt = 1 at every frequency
    freqs, smooth = processing.smoothed_spectrum(impulse, dt, nfft)
    assert freqs.size == 301
    assert freqs[0] == pytest.approx(1 / (nfft * dt)) and freqs[-1] == pytest.approx(50.0)
    np.testing.assert_allclose(smooth[np.isfinite(smooth)], 1.0, rtol=1e-12)
    t = np.arange(nfft) * dt
    tone = np.sin(2 * np.pi * 5.0 * t) * np.hanning(nfft)
    freqs, smooth = processing.smoothed_spectrum(tone, dt, nfft)
    assert freqs[np.nanargmax(smooth)] == pytest.approx(5.0, rel=0.03)


def test_snr_of_noise_alone_and_of_a_strong_signal() -> None:
    """Stationary noise in both windows: SNR near zero; a 100x louder 1-8 Hz signal in the
    event window: SNR near 100 in that band."""
    rng = np.random.default_rng(5)
    dt = 0.01
    noise = rng.standard_normal(3000)
    same = rng.standard_normal(10000)
    curve = processing.signal_to_noise(noise, same, dt, shaking=100.0)
    band = (curve.frequencies > 0.5) & (curve.frequencies < 20)
    assert np.nanmedian(np.abs(curve.snr[band])) < 0.5
    b, a = signal.butter(4, [1.0, 8.0], btype="bandpass", fs=1 / dt)
    loud = signal.filtfilt(b, a, rng.standard_normal(10000))
    loud *= 100 / loud.std() * np.sqrt(2 * 7.0 / 50.0)  # spectral density 100x the noise's
    curve = processing.signal_to_noise(noise, loud + rng.standard_normal(10000), dt,
                                       shaking=100.0)
    inside = (curve.frequencies > 2) & (curve.frequencies < 6)
    assert 50 < np.nanmedian(curve.snr[inside]) < 200
    assert curve.minimum(2.0, 6.0) > 20
    with pytest.raises(ValueError, match="noise window"):
        processing.signal_to_noise(noise[:5], loud, dt, shaking=100.0)


def test_corners_from_snr_on_a_known_curve() -> None:
    """SNR above 3 up to 12 Hz, peaking at 3 Hz, its smallest value below the peak at 0.15 Hz:
    the high-pass corner goes there; the low-pass where the SNR falls below 3. An SNR below
    the threshold under 0.08 Hz sets the high-pass at 0.08 Hz instead (the smallest SNR below
    the peak is then under the band, gmprocess's rule takes the larger)."""
    f = np.logspace(-2, 1.5, 301)
    snr = np.where(f < 12.0, 50.0, 1.0)
    snr[(f > 0.14) & (f < 0.16)] = 20.0
    snr[(f > 2.9) & (f < 3.1)] = 400.0
    curve = processing.SnrCurve(f, snr)
    high, low = processing.corners_from_snr(curve, threshold=3.0, fmin=0.2, fmax=5.0,
                                            duration=300.0)
    assert high == pytest.approx(f[(f > 0.14) & (f < 0.16)][0])
    assert low == pytest.approx(f[f < 12.0][-1])
    snr[f < 0.08] = 1.0
    high, _ = processing.corners_from_snr(curve, threshold=3.0, fmin=0.2, fmax=5.0,
                                          duration=300.0)
    assert high == pytest.approx(f[f > 0.08][0])
    with pytest.raises(ValueError, match=r"within 0\.05-5 Hz"):
        processing.corners_from_snr(curve, threshold=3.0, fmin=0.05, fmax=5.0, duration=300.0)
    with pytest.raises(ValueError, match="never above"):
        processing.corners_from_snr(processing.SnrCurve(f, np.ones_like(f)), threshold=3.0,
                                    fmin=0.2, fmax=5.0, duration=300.0)


def test_polyfit_highpass_finds_the_corner_that_removes_a_baseline_drift() -> None:
    """A clean pulse needs no adjustment; the same pulse with a baseline offset in the
    acceleration (a tilt or a sensor offset) drifts quadratically in displacement and needs a
    higher corner, at which the fitted trend falls to 2 % of the displacement's peak."""
    dt = 0.01
    t = np.arange(0, 120, dt)
    pulse = np.exp(-((t - 40) ** 2) / 2.0) * np.sin(2 * np.pi * 1.0 * (t - 40))
    assert processing.polyfit_highpass(pulse, dt) == pytest.approx(0.001)
    drifting = pulse + 0.003 * (t > 50)
    corner = processing.polyfit_highpass(drifting, dt)
    assert 0.01 < corner < 0.5
    data = signal.windows.tukey(t.size, 0.05) * (drifting - drifting.mean())
    ratio = processing._DisplacementTrend(data, dt, 5.0, 5).ratio(corner)
    assert ratio == pytest.approx(0.02, abs=1e-4)
    # the criterion seen through the band below 10 Hz equals the full-band one (0.3 %)
    full = np.fft.irfft(np.concatenate([[0.0], np.fft.rfft(data)[1:] / -(
        2 * np.pi * np.fft.rfftfreq(t.size, dt)[1:]) ** 2]) * processing.butterworth_response(
        np.fft.rfftfreq(t.size, dt), highpass=corner, order=5.0), n=t.size)
    times = np.linspace(0, dt * t.size, t.size)
    fit = np.polyval(np.polyfit(times, full, 5), times)
    assert np.abs(fit).max() / np.abs(full).max() == pytest.approx(ratio, rel=5e-3)


def test_brune_corner_and_shaking_duration() -> None:
    # gmprocess's form: 4.906e6 beta[km/s] (stress[bar] / M0[dyne cm])^(1/3)
    m0 = 10 ** (1.5 * 7.1 + 9.1)
    expected = 4.906e6 * 3.7 * (10.0 / (m0 * 1e7)) ** (1 / 3)
    assert processing.brune_corner_frequency(m0, 10e5, 3700.0) == pytest.approx(expected,
                                                                               rel=1e-3)
    assert processing.shaking_duration(7.1) == pytest.approx(183.0)
    with pytest.raises(ValueError, match="positive"):
        processing.brune_corner_frequency(0.0, 1e6, 3500.0)


def test_p_arrival_from_iasp91() -> None:
    """Near the source P travels at the upper-crust speed of iasp91 (5.8 km/s), beyond
    ~150 km as Pn; the travel time grows with distance."""
    near = processing.p_arrival_time(0.0, 10.0)
    assert near == pytest.approx(10.0 / 5.8, rel=0.01)
    at_50 = processing.p_arrival_time(50 / 111.19, 8.0)
    assert at_50 == pytest.approx(math.hypot(50.0, 8.0) / 5.8, rel=0.02)
    far = processing.p_arrival_time(3.0, 8.0)
    assert far is not None and at_50 is not None and far > at_50
    assert isinstance(Trace(), Trace)  # obspy is importable beside TauP
