"""The embedded analytical solver: physics checks and the SPECFEM3D benchmark."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
from obspy import read_events, read_inventory
from obspy.geodetics import gps2dist_azimuth
from scipy.integrate import cumulative_trapezoid, quad

from dare_cli.ra.errors import StationError
from dare_cli.ra.simulate.embedded import (
    EmbeddedConfig,
    Medium,
    SourceTimeFunction,
    displacement_cartesian,
    synthetics_for_station,
)
from dare_cli.ra.source import (
    double_couple_tensor,
    moment_from_magnitude,
    ned_to_enu,
    rtp_to_ned,
)

DATA = Path(__file__).parent / "data" / "specfem_analytic"
RIDGECREST = Path(__file__).parents[2] / "dare_cli" / "ra" / "examples" / "ridgecrest"
CRUST = Medium(6000.0, 3464.0, 2700.0)
M0 = 1.0e17  # N m
STRIKE_SLIP = double_couple_tensor(0.0, 90.0, 0.0, M0)  # M0 (x y + y x), NED


def unit(*v: float) -> np.ndarray:
    a = np.array(v, dtype=float)
    return a / np.linalg.norm(a)


def radial_and_transverse(u: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    radial = direction @ u
    return radial, np.linalg.norm(u - np.outer(direction, radial), axis=0)


# --- medium, configuration, source time functions ---

def test_medium_and_config_validation():
    with pytest.raises(ValueError, match="vp=3000"):
        Medium(3000.0, 3000.0, 2700.0)
    with pytest.raises(ValueError, match="rho must be finite and > 0"):
        Medium(6000.0, 3464.0, 0.0)
    with pytest.raises(ValueError, match="vs must be finite"):
        Medium(6000.0, float("nan"), 2700.0)
    with pytest.raises(ValueError, match="stf must be one of gaussian, triangle"):
        EmbeddedConfig(stf="boxcar")
    with pytest.raises(ValueError, match=r"half_duration must be >= 0\.1 s"):
        EmbeddedConfig(half_duration=0.05)  # one sample at 20 Hz
    with pytest.raises(ValueError, match="sampling_rate"):
        EmbeddedConfig(sampling_rate=0.0)
    assert EmbeddedConfig().npts == 3001
    with pytest.raises(ValueError, match="boxcar"):
        SourceTimeFunction("boxcar", 1.0)


@pytest.mark.parametrize("shape", ["gaussian", "triangle"])
def test_stf_antiderivatives_against_numerical_integration(shape):
    stf = SourceTimeFunction(shape, 1.5, centroid_time=4.0)
    t = np.linspace(-10.0, 20.0, 300_001)
    rate = stf.antiderivative(t, 0)
    assert np.trapezoid(rate, t) == pytest.approx(1.0, abs=1e-9)  # unit area
    previous = rate
    for order in (1, 2, 3):
        numerical = cumulative_trapezoid(previous, t, initial=0.0)
        exact = stf.antiderivative(t, order)
        # trapezoid error O(dt^2) = 1e-8; values up to 130 s^2 for order 3
        np.testing.assert_allclose(exact, numerical, atol=1e-7 * (1 + np.abs(exact).max()))
        previous = exact
    assert stf.antiderivative(np.array([20.0]), 1)[0] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("shape", ["gaussian", "triangle"])
def test_near_field_integral_matches_quadrature(shape):
    # integral of tau m(t - tau) over [a, b], as displacement_cartesian builds it from F2 and F3
    stf = SourceTimeFunction(shape, 0.8, centroid_time=0.8)
    a, b = 1.7, 2.9
    for t in (1.0, 2.0, 2.6, 3.5, 4.1, 30.0):
        kinks = [t - stf.centroid_time + k * stf.half_duration for k in (-1, 0, 1)]
        expected, _ = quad(lambda tau, t=t: tau * stf.antiderivative(np.array(t - tau), 1),
                           a, b, epsabs=1e-13, limit=200, points=kinks)
        f2 = stf.antiderivative(np.array([t - a, t - b]), 2)
        f3 = stf.antiderivative(np.array([t - a, t - b]), 3)
        value = a * f2[0] - b * f2[1] + f3[0] - f3[1]
        assert value == pytest.approx(expected, abs=1e-10)


# --- physics of the full-space solution ---

def test_p_and_s_arrival_times():
    # triangle starting at t = 0: the far-field P (radial) and S (transverse) pulses start at
    # r/vp and r/vs; tolerance 2 samples
    fs = 100.0
    stf = SourceTimeFunction("triangle", 0.3, centroid_time=0.3)
    direction = unit(2.0, 1.0, 0.5)  # off the nodes of P and S
    r = 30_000.0
    t = np.arange(0.0, 15.0, 1.0 / fs)
    u = displacement_cartesian(STRIKE_SLIP, np.zeros(3), r * direction, CRUST, t, stf,
                               terms=("far",))
    radial, transverse = radial_and_transverse(u, direction)
    onset_p = t[np.argmax(np.abs(radial) > 1e-6 * np.abs(radial).max())]
    onset_s = t[np.argmax(transverse > 1e-6 * transverse.max())]
    assert onset_p == pytest.approx(r / CRUST.vp, abs=2.0 / fs)
    assert onset_s == pytest.approx(r / CRUST.vs, abs=2.0 / fs)
    # and the complete solution is zero before P
    full = displacement_cartesian(STRIKE_SLIP, np.zeros(3), r * direction, CRUST, t, stf)
    assert np.all(full[:, t < r / CRUST.vp] == 0.0)


def test_far_field_amplitude_decays_as_one_over_r():
    # same direction, 200 km and 400 km: peak P (radial, in the P window) and S (transverse)
    # velocities. The far-field terms alone: ratio exactly 2 (1e-9). The complete solution:
    # within 2% of 2 (measured 1.3% for P, 0.5% for S: the 1/r^2 and 1/r^4 terms still add a
    # little at 200 km for a 0.25 s half duration).
    stf = SourceTimeFunction("gaussian", 0.25, centroid_time=1.0)
    direction = unit(1.0, 2.0, 0.7)
    tau = np.arange(-2.0, 4.0, 0.005)  # around each arrival, the same sampling at both r
    peaks = {}
    for terms in (("near", "intermediate", "far"), ("far",)):
        for r in (200e3, 400e3):
            peak = []
            for speed, component in ((CRUST.vp, 0), (CRUST.vs, 1)):
                u = displacement_cartesian(STRIKE_SLIP, np.zeros(3), r * direction, CRUST,
                                           r / speed + tau, stf, terms=terms)
                motion = radial_and_transverse(u, direction)[component]
                peak.append(np.abs(np.gradient(motion, tau)).max())
            peaks[terms, r] = peak
    for terms, rel in ((("near", "intermediate", "far"), 0.02), (("far",), 1e-9)):
        p_ratio = peaks[terms, 200e3][0] / peaks[terms, 400e3][0]
        s_ratio = peaks[terms, 200e3][1] / peaks[terms, 400e3][1]
        assert p_ratio == pytest.approx(2.0, rel=rel)
        assert s_ratio == pytest.approx(2.0, rel=rel)


def test_radiation_pattern_nodes():
    # strike-slip M0 (x y + y x): P nodal planes x = 0 and y = 0; T axis (1, 1, 0), P axis
    # (1, -1, 0). Tolerance: 1e-3 of the off-nodal amplitude (measured: round-off, < 1e-12).
    stf = SourceTimeFunction("gaussian", 0.5, centroid_time=1.0)
    t = np.arange(0.0, 20.0, 0.01)
    r = 20_000.0

    def amplitudes(direction: np.ndarray, terms=("far",)) -> tuple[float, float]:
        u = displacement_cartesian(STRIKE_SLIP, np.zeros(3), r * direction, CRUST, t, stf,
                                   terms=terms)
        radial, transverse = radial_and_transverse(u, direction)
        return np.abs(radial).max(), transverse.max()

    p_max, _ = amplitudes(unit(1.0, 1.0, 0.0))  # T axis: P is largest
    _, s_max = amplitudes(unit(1.0, 0.0, 0.0))  # on a P nodal plane: S is largest
    for direction in (unit(0.0, 1.0, 0.0), unit(0.0, 1.0, 1.0), unit(1.0, 0.0, -0.6)):
        assert amplitudes(direction)[0] < 1e-3 * p_max
    for direction in (unit(1.0, 1.0, 0.0), unit(1.0, -1.0, 0.0)):
        assert amplitudes(direction)[1] < 1e-3 * s_max
    # the complete solution has no radial motion on the nodal planes and no transverse motion
    # on the P and T axes either (every term's coefficient vanishes there)
    everything = ("near", "intermediate", "far")
    assert amplitudes(unit(0.0, 1.0, 1.0), everything)[0] < 1e-3 * p_max
    assert amplitudes(unit(1.0, -1.0, 0.0), everything)[1] < 1e-3 * s_max


def kelvin_greens_function(x: np.ndarray, medium: Medium) -> np.ndarray:
    """Static displacement of a unit point force in a full space (Kelvin; Aki & Richards 4.3)."""
    r = np.linalg.norm(x)
    g = x / r
    a2, b2 = medium.vp**2, medium.vs**2
    return ((1 / b2 + 1 / a2) * np.eye(3) + (1 / b2 - 1 / a2) * np.outer(g, g)) / (
        8 * math.pi * medium.rho * r)


def static_displacement(m: np.ndarray, source: np.ndarray, receiver: np.ndarray,
                        medium: Medium) -> np.ndarray:
    """u_n = M_pq dG_np/dxi_q, by central differences in the source position (step 1 m)."""
    u = np.zeros(3)
    for q in range(3):
        step = np.zeros(3)
        step[q] = 1.0
        derivative = (kelvin_greens_function(receiver - source - step, medium)
                      - kelvin_greens_function(receiver - source + step, medium)) / 2.0
        u += derivative @ m[:, q]
    return u


@pytest.mark.parametrize("shape", ["gaussian", "triangle"])
def test_permanent_displacement_matches_static_solution(shape):
    # after the S wave has passed, the displacement is the static field of the final moment
    # tensor; general tensor (with an isotropic part) and three receivers; tolerance 1e-6
    # relative (the finite-difference error of the reference is ~ (1 m / r)^2 < 1e-7)
    rng = np.random.default_rng(7)
    a = rng.normal(size=(3, 3))
    m = 1e16 * (a + a.T)
    source = np.array([100.0, -200.0, 5000.0])
    stf = SourceTimeFunction(shape, 1.0, centroid_time=1.0)
    t = np.array([0.0, 60.0])
    for position in ([3000.0, 1000.0, 0.0], [-8000.0, 2000.0, 9000.0], [0.0, 0.0, 0.0]):
        receiver = np.asarray(position)
        u = displacement_cartesian(m, source, receiver, CRUST, t, stf)
        if shape == "triangle":  # causal: nothing before P
            np.testing.assert_array_equal(u[:, 0], 0.0)
        expected = static_displacement(m, source, receiver, CRUST)
        np.testing.assert_allclose(u[:, 1], expected, rtol=0, atol=1e-6 * np.abs(expected).max())


# --- SPECFEM3D benchmark (tests/ra/data/specfem_analytic, see SOURCE.md there) ---

def read_key_values(path: Path, separator: str) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition(separator)
        if sep and not line.lstrip().startswith("#"):
            values[key.strip()] = value.split("#")[0].strip()
    return values


def specfem_benchmark() -> tuple[np.ndarray, np.ndarray, Medium, float, dict[str, np.ndarray]]:
    """Source tensor (N m, x east y north z up), source position, medium, half duration and
    receiver positions, from the benchmark's DATA files."""
    par = read_key_values(DATA / "DATA" / "Par_file", "=")
    assert par["SUPPRESS_UTM_PROJECTION"] == ".true."  # "latitude" = y, "longitude" = x
    assert par["USE_SOURCES_RECEIVERS_Z"] == ".true."  # depth/burial column = z (up)
    assert par["USE_RICKER_TIME_FUNCTION"] == ".false."  # Gaussian moment rate
    cmt = read_key_values(DATA / "DATA" / "CMTSOLUTION", ":")
    rtp = [float(cmt[k].replace("d", "e")) for k in ("Mrr", "Mtt", "Mpp", "Mrt", "Mrp", "Mtp")]
    tensor = ned_to_enu(rtp_to_ned(np.array(rtp) * 1e-7))  # dyne cm -> N m
    assert tensor[0, 2] == tensor[2, 0] == pytest.approx(1e16, rel=1e-12)  # SPECFEM: Mxz = Mrp
    assert float(cmt["time shift"]) == 0.0
    source = np.array([float(cmt["longitude"]), float(cmt["latitude"]), float(cmt["depth"])])
    lines = (DATA / "DATA" / "meshfem3D_files" / "Mesh_Par_file").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("NMATERIALS"))
    material = next(line for line in lines[start + 1:] if not line.startswith("#"))
    rho, vp, vs = (float(v) for v in material.split()[1:4])  # id rho vp vs Qkappa Qmu ...
    receivers = {}
    for line in (DATA / "DATA" / "STATIONS").read_text().splitlines():
        name, _, y, x, _, z = line.split()
        receivers[name] = np.array([float(x), float(y), float(z)])
    return tensor, source, Medium(vp, vs, rho), float(cmt["half duration"]), receivers


def correlation_and_peak_ratio(ours: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    return (float(np.corrcoef(ours, reference)[0, 1]),
            float(np.abs(ours).max() / np.abs(reference).max()))


def test_specfem_benchmark_geometry():
    _, source, medium, half_duration, receivers = specfem_benchmark()
    assert medium == Medium(2800.0, 1500.0, 2300.0)
    assert half_duration == 2.0
    np.testing.assert_array_equal(source, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(receivers["Z1"], [3000.0, 1000.0, 4000.0])  # output_solver.txt


@pytest.mark.parametrize("receiver", ["Z1", "Z2"])
def test_against_specfem_semi_analytical_solution(receiver):
    # REF_ANALYTIC (Aki & Richards 4.32/4.33, numerically integrated by the benchmark's script).
    # Measured: correlation > 0.999999, peak ratios 0.9994-1.0005, final static offsets within
    # 0.2% (ours equal Kelvin's static solution to 1e-6, see the static test).
    # Tolerances: correlation > 0.99999, peak ratio within 0.5%.
    tensor, source, medium, half_duration, receivers = specfem_benchmark()
    stf = SourceTimeFunction("gaussian", half_duration, centroid_time=0.0)
    for index, component in enumerate("XYZ"):
        reference = np.loadtxt(DATA / "REF_ANALYTIC" / f"DB.{receiver}.FX{component}.semd")
        t = reference[:, 0]
        u = displacement_cartesian(tensor, source, receivers[receiver], medium, t, stf)[index]
        cc, ratio = correlation_and_peak_ratio(u, reference[:, 1])
        assert cc > 0.99999, component
        assert ratio == pytest.approx(1.0, abs=0.005), component


@pytest.mark.parametrize("receiver", ["Z1", "Z2", "Z3", "Z4", "Z5", "Z6"])
def test_against_specfem_seismograms(receiver):
    # REF_SEIS: SPECFEM3D's own spectral-element seismograms (single precision, Stacey
    # boundaries). Measured: correlation > 0.99997, peak ratios 0.9992-1.0060.
    # Tolerances: correlation > 0.9999, peak ratio within 1%.
    tensor, source, medium, half_duration, receivers = specfem_benchmark()
    stf = SourceTimeFunction("gaussian", half_duration, centroid_time=0.0)
    for index, component in enumerate("XYZ"):
        reference = np.loadtxt(DATA / "REF_SEIS" / f"DB.{receiver}.FX{component}.semd")
        t = reference[:, 0]
        u = displacement_cartesian(tensor, source, receivers[receiver], medium, t, stf)[index]
        cc, ratio = correlation_and_peak_ratio(u, reference[:, 1])
        assert cc > 0.9999, component
        assert ratio == pytest.approx(1.0, abs=0.01), component


# --- synthetics for a station of the Ridgecrest example ---

@pytest.fixture(scope="module")
def ridgecrest():
    event = read_events(str(RIDGECREST / "event.xml"))[0]
    origin = event.preferred_origin()
    stations = {}
    for path in sorted((RIDGECREST / "stations").glob("*.xml")):
        inventory = read_inventory(str(path))
        seed_id = inventory.get_contents()["channels"][0]
        stations[seed_id] = inventory.get_coordinates(seed_id, origin.time)
    return origin, stations


def test_synthetics_for_station_ridgecrest(ridgecrest):
    origin, stations = ridgecrest
    coordinates = stations["CI.CCC..HNE"]
    tensor = double_couple_tensor(321.0, 81.0, 180.0, moment_from_magnitude(7.1))
    config = EmbeddedConfig(stf="triangle")
    stream = synthetics_for_station(origin, tensor, coordinates, "CI", "CCC", config)
    assert [tr.id for tr in stream] == ["CI.CCC..HXE", "CI.CCC..HXN", "CI.CCC..HXZ"]
    for trace in stream:
        assert trace.stats.starttime == origin.time
        assert trace.stats.sampling_rate == 20.0
        assert trace.stats.npts == 3001
        assert np.all(np.isfinite(trace.data))
        assert any("Aki & Richards" in p and "displacement in m" in p
                   for p in trace.stats.processing)
        assert any("8.667 s (GCMT scaling" in p for p in trace.stats.processing)
    # P arrival: hypocentral distance from obspy's WGS84 distance, depth and elevation
    distance, _, _ = gps2dist_azimuth(origin.latitude, origin.longitude,
                                      coordinates["latitude"], coordinates["longitude"])
    r = math.hypot(distance, origin.depth + coordinates["elevation"])
    motion = np.abs(np.array([tr.data for tr in stream])).max(axis=0)
    onset = stream[0].times()[np.argmax(motion > 1e-9 * motion.max())]
    assert onset == pytest.approx(r / config.medium.vp, abs=2 * stream[0].stats.delta)
    # the half-space option is the full-space solution times 2
    full = synthetics_for_station(origin, tensor, coordinates, "CI", "CCC",
                                  EmbeddedConfig(stf="triangle", half_space=False))
    for half, whole in zip(stream, full, strict=True):
        np.testing.assert_allclose(half.data, 2.0 * whole.data, rtol=1e-12)


def test_synthetics_orientation_z_up_and_north(ridgecrest):
    # an explosion pushes outwards: up at the epicentre, north at a station due north
    origin, _ = ridgecrest
    explosion = moment_from_magnitude(4.0) * np.eye(3)
    config = EmbeddedConfig(half_space=False)
    above = {"latitude": origin.latitude, "longitude": origin.longitude, "elevation": 0.0}
    stream = synthetics_for_station(origin, explosion, above, "XX", "UP", config)
    east, north, up = (tr.data for tr in stream)
    assert up.max() > 0 and up.max() > 1e6 * max(np.abs(east).max(), np.abs(north).max())
    north_station = {"latitude": origin.latitude + 0.5, "longitude": origin.longitude,
                     "elevation": 0.0}
    stream = synthetics_for_station(origin, explosion, north_station, "XX", "N", config,
                                    location="00")
    east, north, up = (tr.data for tr in stream)
    assert stream[0].id == "XX.N.00.HXE"
    assert north.max() > 0 and north.max() > 1e6 * np.abs(east).max()
    assert up.max() > 0  # the station is also above the source


def test_synthetics_small_event_half_duration_is_floored(ridgecrest):
    origin, stations = ridgecrest
    tensor = double_couple_tensor(0.0, 90.0, 0.0, moment_from_magnitude(2.0))  # hdur 0.02 s
    stream = synthetics_for_station(origin, tensor, stations["CI.CCC..HNE"], "CI", "CCC",
                                    EmbeddedConfig())
    assert any("raised to 0.1 s" in p for p in stream[0].stats.processing)


def test_synthetics_far_station_notes_flat_earth_limit(ridgecrest):
    origin, _ = ridgecrest
    far = {"latitude": origin.latitude + 4.0, "longitude": origin.longitude, "elevation": 0.0}
    stream = synthetics_for_station(origin, STRIKE_SLIP, far, "XX", "FAR", EmbeddedConfig())
    assert any("beyond 300 km: approximate" in p for p in stream[0].stats.processing)
    assert np.all(np.isfinite(stream[2].data))


def test_synthetics_bad_station_coordinates(ridgecrest):
    origin, _ = ridgecrest
    with pytest.raises(StationError, match=r"CI\.BAD: bad or missing station coordinates"):
        synthetics_for_station(origin, STRIKE_SLIP, {"latitude": 35.0}, "CI", "BAD",
                               EmbeddedConfig())
    with pytest.raises(StationError, match="non-finite"):
        synthetics_for_station(origin, STRIKE_SLIP,
                               {"latitude": float("nan"), "longitude": 0.0, "elevation": 0.0},
                               "CI", "BAD", EmbeddedConfig())


def test_synthetics_speed_for_ten_stations(ridgecrest):
    # the pipeline's use: 10 stations x 150 s x 20 Hz; target well under 0.5 s per station
    # (measured here: about 3 ms per station)
    origin, stations = ridgecrest
    tensor = double_couple_tensor(321.0, 81.0, 180.0, moment_from_magnitude(7.1))
    config = EmbeddedConfig()
    start = time.perf_counter()
    for seed_id, coordinates in stations.items():
        network, station = seed_id.split(".")[:2]
        synthetics_for_station(origin, tensor, coordinates, network, station, config)
    per_station = (time.perf_counter() - start) / len(stations)
    assert len(stations) == 10
    assert per_station < 0.1
