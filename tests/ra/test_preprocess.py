"""Preprocessing: checks, clipping, gaps, response removal and the common grid, on real records.

Ridgecrest (ci38457511) records ship with the package (dare_cli/ra/examples/ridgecrest); the
clipped Hawaii records are in tests/ra/data/hv70907436 (see SOURCE.md there).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import obspy
import pytest
from obspy import Stream, Trace, UTCDateTime

import dare_cli.ra
from dare_cli.ra.errors import ConfigError, StationError
from dare_cli.ra.pgm import G, station_pgm
from dare_cli.ra.preprocess import (
    QUANTITIES,
    PreprocessConfig,
    check_trace,
    detect_clipping,
    preprocess_real,
    preprocess_synthetic,
)

RIDGECREST = Path(dare_cli.ra.__file__).parent / "examples" / "ridgecrest"
HAWAII = Path(__file__).parent / "data" / "hv70907436"
ORIGIN = UTCDateTime("2019-07-06T03:19:53")
CONFIG = PreprocessConfig()


def read_station(code: str) -> tuple[Stream, obspy.Inventory]:
    st = obspy.read(str(RIDGECREST / "waveforms" / f"CI.{code}..HN?.mseed"))
    return st, obspy.read_inventory(str(RIDGECREST / "stations" / f"CI.{code}.xml"))


@pytest.fixture(scope="module")
def processed() -> dict[str, dict[str, Stream]]:
    out = {}
    for code in ("CCC", "WBM", "MPM"):
        st, inv = read_station(code)
        out[code] = preprocess_real(st, inv, ORIGIN, CONFIG)
    return out


def plain_obspy(code: str, output: str, *, grid: bool = True,
                water_level: float | None = None) -> Stream:
    """The same steps written out with plain obspy calls, independently of preprocess.py."""
    st, inv = read_station(code)
    t0, t1 = ORIGIN, ORIGIN + 150.0
    st.merge(method=1, fill_value="interpolate")
    st.trim(t0 - 60.0, t1 + 60.0)
    st.detrend("demean")
    st.detrend("linear")
    st.taper(max_percentage=0.05, type="hann")
    st.remove_response(inventory=inv, output=output, pre_filt=(0.02, 0.05, 20.0, 25.0),
                       water_level=water_level, zero_mean=False, taper=False)
    st.filter("bandpass", freqmin=0.05, freqmax=20.0, corners=4, zerophase=True)
    if not grid:
        return st
    for tr in st:
        # 50 Hz grid from the origin time, Lanczos (a=20) interpolation, as in the docs
        first = math.ceil((tr.stats.starttime - t0) * 50.0)
        last = min(7500, math.floor((tr.stats.endtime - t0) * 50.0))
        tr.interpolate(50.0, method="lanczos", a=20, starttime=t0 + first / 50.0,
                       npts=last - first + 1)
    return st


# --- configuration ---------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "message"), [
    ({"pre_filt": (0.05, 0.02, 20.0, 25.0)}, "pre_filt"),
    ({"pre_filt": (0.02, 0.05, 20.0, 30.0)}, "Nyquist"),
    ({"freqmin": 2.0, "freqmax": 1.0}, "freqmin"),
    ({"sampling_rate": 20.0, "pre_filt": (0.02, 0.05, 8.0, 10.0)}, "freqmax"),
    ({"taper_fraction": 0.7}, "taper_fraction"),
    ({"window_length": 0.0}, "window_length"),
    ({"min_duration": 500.0}, "min_duration"),
])
def test_config_rejects_inconsistent_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PreprocessConfig(**kwargs)


def test_config_defaults() -> None:
    assert CONFIG.npts == 7501  # 150 s at 50 Hz, both ends included
    assert CONFIG.water_level is None


# --- checks --------------------------------------------------------------------------------

def test_clipped_hawaii_records_are_detected() -> None:
    reasons = {}
    for path in sorted(HAWAII.glob("*.mseed")):
        tr = obspy.read(str(path))[0]
        reasons[tr.id] = detect_clipping(tr) or ""
    # every channel that reached full scale is flagged, each with its signature
    assert "run(s) of >= 3" in reasons["HV.HOVE..HHE"]
    assert "wrap-around" in reasons["HV.HOVE..HHE"]
    assert "wrap-around" in reasons["HV.HOVE..HHZ"]
    assert "flat top of 813 identical samples at -8261230 counts" in reasons["HV.MLOD..HHE"]
    assert "run(s) of >= 3" in reasons["HV.MLOD..HHN"]
    assert "wrap-around" in reasons["HV.MLOD..HHZ"]
    # HOVE's north channel stays below 0.67 of full scale, with no flat top and no wrap: not
    # clipped by itself; the station is rejected through its other channels (below).
    hove_n = obspy.read(str(HAWAII / "HV.HOVE..HHN__20190414T030832Z__20190414T031602Z.mseed"))
    assert np.abs(hove_n[0].data).max() / 2**23 == pytest.approx(0.6697, abs=1e-4)
    assert reasons["HV.HOVE..HHN"] == ""
    assert sum(bool(r) for r in reasons.values()) == 5


@pytest.mark.parametrize("code", ["HOVE", "MLOD"])
def test_clipped_station_is_rejected(code: str) -> None:
    st = obspy.read(str(HAWAII / f"HV.{code}..HH?__*.mseed"))
    inv = obspy.read_inventory(str(HAWAII / f"HV.{code}.xml"))
    with pytest.raises(StationError, match="clipped") as err:
        preprocess_real(st, inv, UTCDateTime("2019-04-14T03:09:02"), CONFIG)
    assert err.value.station == f"HV.{code}"


def test_ridgecrest_records_are_not_clipped() -> None:
    st = obspy.read(str(RIDGECREST / "waveforms" / "*.mseed"))
    assert len(st) == 30
    assert {tr.id: detect_clipping(tr) for tr in st} == {tr.id: None for tr in st}


def test_flat_top_below_full_scale_is_detected() -> None:
    t = np.arange(2000) * 0.01
    data = (1e5 * np.sin(2 * np.pi * 0.5 * t)).astype(np.int32)
    data = np.clip(data, -80000, 80000)  # a sensor limit far below the digitizer's
    assert "flat top" in (detect_clipping(Trace(data)) or "")
    assert detect_clipping(Trace((1e5 * np.sin(2 * np.pi * 0.5 * t)).astype(np.int32))) is None


def counts_trace(npts: int = 6000) -> Trace:
    rng = np.random.default_rng(1)
    return Trace(rng.normal(0, 1000, npts).astype(np.int32),
                 header={"network": "CI", "station": "WBM", "channel": "HNZ",
                         "starttime": ORIGIN - 10, "sampling_rate": 100.0})


def test_nan_inf_empty_short_traces_are_rejected() -> None:
    tr = counts_trace()
    tr.data = tr.data.astype(float)
    tr.data[100:110] = np.nan
    with pytest.raises(StationError, match=r"CI.WBM..HNZ contains NaN \(10 of 6000"):
        check_trace(tr)
    tr.data[100:110] = np.inf
    with pytest.raises(StationError, match="contains inf"):
        check_trace(tr)
    with pytest.raises(StationError, match="is empty") as err:
        check_trace(Trace(np.array([], dtype=np.int32), header={"network": "CI",
                                                                "station": "WBM"}))
    assert err.value.station == "CI.WBM"
    with pytest.raises(StationError, match=r"too short: 10.00 s"):
        check_trace(counts_trace(npts=1000))


def test_nan_trace_rejects_the_station() -> None:
    st, inv = read_station("WBM")
    st[0].data = np.full(st[0].stats.npts, np.nan)
    with pytest.raises(StationError, match="contains NaN") as err:
        preprocess_real(st, inv, ORIGIN, CONFIG)
    assert err.value.station == "CI.WBM"


def test_missing_response_names_the_channel() -> None:
    st, inv = read_station("WBM")
    without_z = inv.select(channel="HN[EN]")
    with pytest.raises(StationError, match=r"no instrument response for channel CI.WBM..HNZ"):
        preprocess_real(st, without_z, ORIGIN, CONFIG)
    check_trace(st.select(channel="HNE")[0].copy(), without_z)  # the others are fine


def test_small_gap_is_interpolated_large_gap_rejected(
    processed: dict[str, dict[str, Stream]],
) -> None:
    st, inv = read_station("WBM")
    full = processed["WBM"]
    tr = st.select(channel="HNE")[0]
    quiet = ORIGIN - 20  # pre-event noise, far from the strong motion
    gappy = st.copy()
    gappy.remove(gappy.select(channel="HNE")[0])
    gappy += Stream([tr.slice(endtime=quiet), tr.slice(starttime=quiet + 0.5)])
    out = preprocess_real(gappy, inv, ORIGIN, CONFIG)
    e_full, e_gap = full["ACC"].select(channel="HNE")[0], out["ACC"].select(channel="HNE")[0]
    assert any("gaps_filled=1" in p for p in e_gap.stats.processing)
    # interpolating 0.5 s of noise changes the peak by less than 0.1%
    np.testing.assert_allclose(np.abs(e_gap.data).max(), np.abs(e_full.data).max(), rtol=1e-3)
    gappy = st.copy()
    gappy.remove(gappy.select(channel="HNE")[0])
    gappy += Stream([tr.slice(endtime=quiet), tr.slice(starttime=quiet + 5.0)])
    with pytest.raises(StationError, match=r"gap of (4.9\d|5.0\d) s in CI.WBM..HNE"):
        preprocess_real(gappy, inv, ORIGIN, CONFIG)


def test_traces_of_two_stations_are_a_caller_error() -> None:
    st = obspy.read(str(RIDGECREST / "waveforms" / "CI.[CW][CB][CM]..HNZ.mseed"))
    with pytest.raises(ValueError, match="one station"):
        preprocess_real(st, obspy.Inventory(), ORIGIN, CONFIG)


# --- outputs -------------------------------------------------------------------------------

def test_outputs_on_the_common_grid(processed: dict[str, dict[str, Stream]]) -> None:
    for code, out in processed.items():
        assert set(out) == set(QUANTITIES)
        for quantity in QUANTITIES:
            st = out[quantity]
            assert sorted(tr.id for tr in st) == [f"CI.{code}..HN{c}" for c in "ENZ"]
            for tr in st:
                assert tr.stats.starttime == ORIGIN
                assert tr.stats.sampling_rate == 50.0
                assert tr.stats.npts == 7501
                assert tr.data.dtype == np.float64
                steps = "\n".join(tr.stats.processing)
                for step in ("check_trace", "merge", "detrend", "taper", "remove_response",
                             f"output='{quantity}'", "bandpass", "lanczos", "cut(window"):
                    assert step in steps


def test_pga_pgv_pgd_match_plain_obspy(processed: dict[str, dict[str, Stream]]) -> None:
    for code in ("CCC", "WBM"):
        rows = {r["id"]: r for r in station_pgm(processed[code]["ACC"], processed[code]["VEL"],
                                                processed[code]["DISP"])}
        for output, key in (("ACC", "pga"), ("VEL", "pgv"), ("DISP", "pgd")):
            for tr in plain_obspy(code, output):
                # identical steps: only floating-point round-off may differ
                np.testing.assert_allclose(float(rows[tr.id][key]), np.abs(tr.data).max(),
                                           rtol=1e-6)
    ccc = {r["component"]: r for r in station_pgm(*(processed["CCC"][q] for q in QUANTITIES))}
    # measured: CI.CCC (34.5 km from the epicentre, near the rupture's south-east end)
    # 0.483 g and 77.8 cm/s on the larger horizontal: strong near-fault motion of an Mw 7.1
    assert float(ccc["maxh"]["pga"]) / G == pytest.approx(0.483, abs=0.001)
    assert float(ccc["maxh"]["pgv"]) == pytest.approx(0.778, abs=0.001)


def test_response_removal_to_vel_disp_agrees_with_integrated_acceleration() -> None:
    """Independent physics: VEL and DISP by response removal = time integrals of ACC.

    Checked at 100 Hz before the window cut (integrating a cut record adds an unknown
    constant of integration). With obspy's 60 dB water level (relative to the response's
    maximum in the requested output units) the displacements of CI.CCC are 2.8 to 11 times
    too small: the reason why the default is no water level.
    """
    code = "CCC"
    q = {out: plain_obspy(code, out, grid=False) for out in ("ACC", "VEL", "DISP")}
    q["DISP60"] = plain_obspy(code, "DISP", grid=False, water_level=60.0)
    for acc, vel, disp, disp60 in zip(q["ACC"], q["VEL"], q["DISP"], q["DISP60"], strict=True):
        v = acc.copy().integrate()  # trapezoidal rule
        d = v.copy().integrate()
        np.testing.assert_allclose(np.abs(vel.data).max(), np.abs(v.data).max(), rtol=0.01)
        np.testing.assert_allclose(np.abs(disp.data).max(), np.abs(d.data).max(), rtol=0.03)
        assert np.abs(d.data).max() / np.abs(disp60.data).max() > 2.5


def test_short_record_is_kept_with_its_coverage(processed: dict[str, dict[str, Stream]]) -> None:
    for tr in processed["MPM"]["ACC"]:
        raw_end = obspy.read(str(RIDGECREST / "waveforms" / f"{tr.id}.mseed"))[0].stats.endtime
        expected = (math.floor((raw_end - ORIGIN) * 50) + 1) / 7501
        assert tr.stats.coverage == pytest.approx(expected)
        assert 0.24 < tr.stats.coverage < 0.26  # about 37 s of the 150 s window
        n = round(tr.stats.coverage * 7501)
        assert np.abs(tr.data[:n]).max() > 0.1  # m/s^2: real motion
        assert not tr.data[n:].any()  # zero padding after the record's end
    assert all(tr.stats.coverage == 1.0 for tr in processed["CCC"]["ACC"])


def test_synthetic_derivatives_are_exact() -> None:
    """A 2 Hz Gaussian wavelet of displacement 4 s after the origin: its peaks.

    Early: were the synthetic tapered from its first sample at the origin (5% of 150 s =
    7.5 s), the wavelet would lose most of its amplitude; padded with zeros in front, it keeps
    it.
    """
    dt, f0, t0, sigma = 0.01, 2.0, 4.0, 0.5
    t = np.arange(0, 150.0, dt)
    w = 2 * np.pi * f0
    env = np.exp(-((t - t0) ** 2) / (2 * sigma**2))
    disp = 0.01 * env * np.sin(w * (t - t0))
    vel = 0.01 * env * (w * np.cos(w * (t - t0)) - (t - t0) / sigma**2 * np.sin(w * (t - t0)))
    st = Stream([Trace(disp.copy(), header={"network": "CI", "station": "CCC",
                                            "channel": f"HX{c}", "starttime": ORIGIN,
                                            "delta": dt}) for c in "ENZ"])
    out = preprocess_synthetic(st, ORIGIN, CONFIG)
    # acceleration by finite differences at a 100 times finer sampling (error ~1e-5)
    fine = np.arange(0, 150.0, dt / 100)
    envf = np.exp(-((fine - t0) ** 2) / (2 * sigma**2))
    dispf = 0.01 * envf * np.sin(w * (fine - t0))
    acc = np.gradient(np.gradient(dispf, dt / 100), dt / 100)
    tr = out["DISP"][0]
    assert tr.stats.npts == 7501 and tr.stats.coverage == pytest.approx(7500 / 7501)
    # the 2 Hz wavelet is well inside the 0.05-20 Hz band: peaks within 0.5%
    np.testing.assert_allclose(np.abs(out["DISP"][0].data).max(), np.abs(disp).max(), rtol=5e-3)
    np.testing.assert_allclose(np.abs(out["VEL"][0].data).max(), np.abs(vel).max(), rtol=5e-3)
    np.testing.assert_allclose(np.abs(out["ACC"][0].data).max(), np.abs(acc).max(), rtol=5e-3)
    assert sorted(tr.id for tr in out["ACC"]) == ["CI.CCC..HXE", "CI.CCC..HXN", "CI.CCC..HXZ"]
    assert any("zero_pad_front(samples=6000" in p for p in out["ACC"][0].stats.processing)


def test_synthetic_nan_rejected() -> None:
    tr = Trace(np.full(10000, np.nan), header={"network": "XX", "station": "S1",
                                               "channel": "HXZ", "starttime": ORIGIN})
    with pytest.raises(StationError, match="contains NaN"):
        preprocess_synthetic(Stream([tr]), ORIGIN, CONFIG)
    with pytest.raises(ValueError, match="quantity"):
        preprocess_synthetic(Stream([tr]), ORIGIN, CONFIG, quantity="STRAIN")
