"""Peaks, oscillator response (against closed-form solutions and scipy's lsim) and misfits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from obspy import Stream, Trace, UTCDateTime
from scipy.signal import butter, lsim, sosfiltfilt

from dare_cli.ra.norm import station_norms
from dare_cli.ra.pgm import (
    DAMPING,
    G,
    misfit,
    oscillator_displacement,
    peak,
    psa_key,
    rotd,
    spectral_acceleration,
    station_pgm,
)

T0 = UTCDateTime("2019-07-06T03:19:53")


def trace(data: np.ndarray, dt: float, channel: str = "HNE") -> Trace:
    return Trace(np.asarray(data, dtype=float), header={
        "network": "CI", "station": "CCC", "channel": channel, "starttime": T0, "delta": dt})


def ramped_sine(period_in: float, amplitude: float, dt: float, cycles: int = 60) -> np.ndarray:
    """A sine whose amplitude rises smoothly over 20 cycles, then stays (steady state)."""
    t = np.arange(0, cycles * period_in, dt)
    ramp = np.clip(t / (20 * period_in), 0, 1)
    return amplitude * 0.5 * (1 - np.cos(np.pi * ramp)) * np.sin(2 * np.pi * t / period_in)


def test_peak() -> None:
    assert peak(trace(np.array([0.5, -2.5, 1.0]), 0.01)) == 2.5
    with pytest.raises(ValueError, match="NaN"):
        peak(trace(np.array([np.nan, 1.0]), 0.01))
    with pytest.raises(ValueError, match="empty"):
        peak(trace(np.array([]), 0.01))


@pytest.mark.parametrize("period", [0.3, 1.0, 3.0])
def test_resonance_amplification_is_one_over_two_zeta(period: float) -> None:
    """Input at the oscillator's own period: PSA / input amplitude = 1 / (2 zeta) = 10."""
    acc = trace(ramped_sine(period, 2.0, period / 200), period / 200)
    ratio = spectral_acceleration(acc, period, 0.05) / 2.0
    assert ratio == pytest.approx(1 / (2 * 0.05), rel=0.01)


@pytest.mark.parametrize("r", [0.5, 0.8, 1.25, 2.0])
def test_off_resonance_amplification(r: float) -> None:
    """Steady state: PSA / A = 1 / sqrt((1 - r^2)^2 + (2 zeta r)^2), r = T_oscillator / T_input."""
    period = 1.0
    period_in = period / r
    acc = trace(ramped_sine(period_in, 1.5, 0.002, cycles=int(60 * max(1, r))), 0.002)
    expected = 1 / math.sqrt((1 - r**2) ** 2 + (2 * DAMPING * r) ** 2)
    assert spectral_acceleration(acc, period) / 1.5 == pytest.approx(expected, rel=0.01)


def test_zero_input_and_impulse() -> None:
    assert spectral_acceleration(trace(np.zeros(1000), 0.01), 1.0) == 0.0
    period, dt, a0 = 1.0, 0.001, 3.0
    data = np.zeros(5000)
    data[10] = a0  # a triangle of area a0 * dt: an impulse for dt << period
    omega = 2 * math.pi / period
    omega_d = omega * math.sqrt(1 - DAMPING**2)
    t_peak = math.atan(math.sqrt(1 - DAMPING**2) / DAMPING) / omega_d
    u_max = a0 * dt / omega_d * math.exp(-DAMPING * omega * t_peak) * math.sin(omega_d * t_peak)
    psa = spectral_acceleration(trace(data, dt), period)
    assert psa == pytest.approx(omega**2 * u_max, rel=0.01)


@pytest.mark.parametrize("period", [0.3, 1.0, 3.0])
def test_same_as_scipy_lsim(period: float) -> None:
    """The recursive filter equals scipy's lsim (linear interpolation between samples)."""
    dt = 0.01  # <= period / 20: no upsampling
    rng = np.random.default_rng(7)
    sos = butter(4, [0.1, 10.0], btype="bandpass", fs=1 / dt, output="sos")
    data = sosfiltfilt(sos, rng.standard_normal(3000)) * np.hanning(3000)
    u, dt_used = oscillator_displacement(trace(data, dt), period)
    omega = 2 * math.pi / period
    system = (np.array([[0, 1], [-omega**2, -2 * DAMPING * omega]]), np.array([[0], [-1]]),
              np.array([[1, 0]]), np.array([[0]]))
    _, expected, _ = lsim(system, data, np.arange(data.size) * dt)
    assert dt_used == dt
    np.testing.assert_allclose(u, expected, rtol=0, atol=1e-9 * np.abs(expected).max())


def test_coarse_sampling_is_upsampled() -> None:
    """dt > period / 20: upsampled first; same PSA as from 10x finer samples within 1%.

    Without upsampling (5 samples per oscillator period) the PSA came out 11% low.
    """
    period = 0.2
    fine_dt, coarse_dt = 0.005, 0.05
    t = np.arange(0, 60, fine_dt)
    signal = (np.sin(2 * np.pi * 4.0 * t) + 0.5 * np.sin(2 * np.pi * 1.3 * t + 1)) \
        * np.hanning(t.size)
    fine = spectral_acceleration(trace(signal, fine_dt), period)
    _, dt_used = oscillator_displacement(trace(signal[::10], coarse_dt), period)
    assert dt_used == pytest.approx(coarse_dt / 5)
    assert spectral_acceleration(trace(signal[::10], coarse_dt), period) == pytest.approx(
        fine, rel=0.01)


def test_bad_oscillator_parameters() -> None:
    acc = trace(np.ones(10), 0.01)
    with pytest.raises(ValueError, match="period"):
        spectral_acceleration(acc, 0.0)
    with pytest.raises(ValueError, match="damping"):
        spectral_acceleration(acc, 1.0, damping=1.5)


def test_station_pgm_rows() -> None:
    """Circular horizontal motion N = A cos, E = A sin, vertical B sin: known peaks."""
    dt, period_in, a, b = 0.01, 2.0, 3.0, 4.0
    t = np.arange(0, 60 * period_in, dt)
    envelope = np.clip(t / (20 * period_in), 0, 1)
    envelope = 0.5 * (1 - np.cos(np.pi * envelope))
    w = 2 * np.pi / period_in
    shapes = {"N": a * np.cos(w * t), "E": a * np.sin(w * t), "Z": b * np.sin(w * t)}
    streams = [Stream([trace(envelope * shapes[c] / w**k, dt, f"HN{c}") for c in "ZNE"])
               for k in range(3)]
    for st in streams:
        for tr in st:
            tr.stats.coverage = 1.0
    streams[0][0].stats.coverage = 0.5  # the vertical acceleration: partial
    rows = station_pgm(*streams)
    assert [r["component"] for r in rows] == ["N", "E", "Z", "H", "3", "maxh", "rotd50"]
    assert [r["id"] for r in rows] == ["CI.CCC..HNN", "CI.CCC..HNE", "CI.CCC..HNZ",
                                       "CI.CCC..HNH", "CI.CCC..HN3", "CI.CCC..HN[NE]",
                                       "CI.CCC..rotd50"]
    by = {r["component"]: r for r in rows}
    # circular motion: every horizontal direction has the same peak, so RotD50 = A
    for comp, amp in (("N", a), ("E", a), ("Z", b), ("H", a), ("3", math.hypot(a, b)),
                      ("rotd50", a)):
        assert by[comp]["pga"] == pytest.approx(amp, rel=1e-4)
        assert by[comp]["pgv"] == pytest.approx(amp / w, rel=1e-4)
        assert by[comp]["pgd"] == pytest.approx(amp / w**2, rel=1e-4)
        assert by[comp]["station"] == "CI.CCC"
    # circular motion: the oscillators move in circles too, so RotD100 PSA = component PSA
    for period in (0.3, 1.0, 3.0):
        key = psa_key(period)
        assert by["H"][key] == pytest.approx(by["N"][key], rel=0.01)
        assert by["maxh"][key] == max(by["N"][key], by["E"][key])
        assert by["rotd50"][key] == pytest.approx(by["N"][key], rel=0.01)
    assert by["maxh"]["pga"] == max(by["N"]["pga"], by["E"]["pga"])
    assert by["Z"]["coverage"] == by["3"]["coverage"] == 0.5
    assert by["N"]["coverage"] == by["H"]["coverage"] == by["maxh"]["coverage"] == 1.0
    assert psa_key(0.3) == "psa0.3" and psa_key(1) == "psa1"
    assert [r["channel"] for r in rows] == ["HNN", "HNE", "HNZ", "HNH", "HN3", "HN[NE]",
                                            "rotd50"]
    # norm traces given with the components (as a pipeline may) are ignored: same rows
    with_norms = [st + station_norms(st) for st in streams]
    assert station_pgm(*with_norms) == rows


def test_rotd_of_linear_motion() -> None:
    """Motion along one direction: the peak along theta is A |cos(theta - phi)|.

    Over 181 angles (0..180 degrees) the median of |cos| is cos(45 degrees); the largest is
    A, the smallest 0: independent of the direction phi of the motion.
    """
    t = np.linspace(0, 10, 2001)
    shape = np.sin(2 * np.pi * 0.7 * t) * np.hanning(t.size)
    amplitude = shape.max()
    for phi in (0.0, 30.0, 90.0):
        first = math.cos(math.radians(phi)) * shape
        second = math.sin(math.radians(phi)) * shape
        assert rotd(first, second) == pytest.approx(amplitude * math.cos(math.pi / 4),
                                                    rel=2e-3)
        assert rotd(first, second, 100) == pytest.approx(amplitude, rel=2e-3)
        assert rotd(first, second, 0) == pytest.approx(0.0, abs=0.02 * amplitude)
    with pytest.raises(ValueError, match="same length"):
        rotd(shape, shape[:-1])


def test_station_pgm_with_two_or_one_component() -> None:
    """Records with fewer components give the rows they can: no norm or RotD without two."""
    dt = 0.01
    t = np.arange(0, 40, dt)
    shape = np.sin(2 * np.pi * 1.5 * t) * np.hanning(t.size)
    two = [Stream([trace(2.0 * shape / (k + 1), dt, "HNN"), trace(shape / (k + 1), dt, "HNE")])
           for k in range(3)]
    rows = {r["component"]: r for r in station_pgm(*two)}
    assert list(rows) == ["N", "E", "H", "maxh", "rotd50"]
    assert rows["maxh"]["pga"] == rows["N"]["pga"]
    # N = 2s, E = s: along theta the peak is |2 cos + sin| max, a known ellipse of axes
    angles = np.radians(np.linspace(0, 180, 181))
    expected = np.median(np.abs(2 * np.cos(angles) + np.sin(angles))) * np.abs(shape).max()
    assert rows["rotd50"]["pga"] == pytest.approx(expected, rel=1e-3)
    one = [Stream([trace(shape, dt, "HNZ")]) for _ in range(3)]
    assert [r["component"] for r in station_pgm(*one)] == ["Z"]
    single_horizontal = [Stream([trace(shape, dt, "HN1")]) for _ in range(3)]
    rows1 = station_pgm(*single_horizontal)
    assert [r["component"] for r in rows1] == ["1", "maxh"]
    assert rows1[1]["channel"] == "HN[1]"


def test_station_pgm_rejects_mismatched_ids() -> None:
    st = Stream([trace(np.ones(10), 0.01, f"HN{c}") for c in "ZNE"])
    other = Stream([trace(np.ones(10), 0.01, f"HX{c}") for c in "ZNE"])
    with pytest.raises(ValueError, match="do not match"):
        station_pgm(st, other, st)


def test_misfit() -> None:
    assert misfit(2.0, 1.0) == pytest.approx(math.log10(2))
    assert misfit(0.1 * G, G) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match=r"observed amplitude is 0\.0"):
        misfit(1.0, 0.0)
    with pytest.raises(ValueError, match=r"synthetic amplitude is -1\.0"):
        misfit(-1.0, 1.0)
    with pytest.raises(ValueError, match="nan"):
        misfit(float("nan"), 1.0)
