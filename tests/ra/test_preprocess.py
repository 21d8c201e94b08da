"""Preprocessing on real records: checks, the gmprocess-style record, the comparison copies.

Ridgecrest (ci38457511) records ship with the package (dare_cli/ra/examples/ridgecrest); the
clipped Hawaii records are in tests/ra/data/hv70907436 (see SOURCE.md there). The values of
gmprocess itself are checked in test_gmprocess_reference.py.
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
    Hypocentre,
    PreprocessConfig,
    check_trace,
    comparison_copies,
    detect_clipping,
    process_record,
    synthetic_for_channels,
)

RIDGECREST = Path(dare_cli.ra.__file__).parent / "examples" / "ridgecrest"
HAWAII = Path(__file__).parent / "data" / "hv70907436"
ORIGIN = UTCDateTime("2019-07-06T03:19:53")
HYPO = Hypocentre(ORIGIN, 35.770, -117.599, 8.0, 7.1)
HAWAII_HYPO = Hypocentre(UTCDateTime("2019-04-14T03:09:02"), 19.742, -155.791, 13.3, 5.3)
CONFIG = PreprocessConfig()


def read_station(code: str) -> tuple[Stream, obspy.Inventory]:
    st = obspy.read(str(RIDGECREST / "waveforms" / f"CI.{code}..HN?.mseed"))
    return st, obspy.read_inventory(str(RIDGECREST / "stations" / f"CI.{code}.xml"))


@pytest.fixture(scope="module")
def records() -> dict[str, object]:
    out = {}
    for code in ("CCC", "WBM", "MPM"):
        st, inv = read_station(code)
        out[code] = process_record(st, inv, HYPO, CONFIG)
    return out


# --- configuration ---------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "message"), [
    ({"snr_threshold": 0.0}, "snr_threshold"),
    ({"snr_min_frequency": 6.0}, "snr_min_frequency"),
    ({"lowpass_nyquist_fraction": 1.5}, "lowpass_nyquist_fraction"),
    ({"polyfit_target": 1.0}, "polyfit_target"),
    ({"clipped": "ignore"}, "clipped"),
    ({"compare_freqmax": 30.0}, "compare_freqmax"),
    ({"compare_freqmin": 2.0, "compare_freqmax": 1.0}, "compare_freqmin < compare_freqmax"),
    ({"window_length": 0.0}, "window_length"),
    ({"min_duration": 500.0}, "min_duration"),
])
def test_config_rejects_inconsistent_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PreprocessConfig(**kwargs)


def test_config_defaults_are_gmprocess_production() -> None:
    assert (CONFIG.snr_threshold, CONFIG.snr_max_frequency) == (2.0, 5.0)
    assert (CONFIG.lowpass_nyquist_fraction, CONFIG.lowpass_max) == (0.75, 40.0)
    assert (CONFIG.polyfit_target, CONFIG.highpass_max, CONFIG.filter_order) == (0.02, 0.5, 5)
    assert (CONFIG.p_arrival_shift, CONFIG.water_level) == (-2.0, 60.0)
    assert CONFIG.reject_whole_station
    assert CONFIG.npts == 7501  # 150 s at 50 Hz, both ends included


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
def test_clipped_station_is_rejected_or_flagged(code: str) -> None:
    st = obspy.read(str(HAWAII / f"HV.{code}..HH?__*.mseed"))
    inv = obspy.read_inventory(str(HAWAII / f"HV.{code}.xml"))
    with pytest.raises(StationError, match="clipped") as err:
        process_record(st, inv, HAWAII_HYPO, CONFIG)
    assert err.value.station == f"HV.{code}"
    kept = process_record(st, inv, HAWAII_HYPO, PreprocessConfig(clipped="flag"))
    clipped = {f["trace"] for f in kept.flags if f["flag"] == "clipped"}
    assert clipped == {tr.id for tr in st if detect_clipping(tr)}
    for tr in kept.streams["ACC"]:
        assert ("clipped" in tr.stats.dare["flags"]) == (tr.id in clipped)
        assert tr.stats.channel[:2] == "HH"  # a seismometer: velocity, then differentiated
        assert any("differentiate" in p for p in tr.stats.processing)


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


def test_bad_channel_rejects_the_station_or_only_itself() -> None:
    """A NaN channel: gmprocess's default fails the station; reject_whole_station = false
    keeps the two good channels and names the bad one."""
    st, inv = read_station("WBM")
    st.select(channel="HNZ")[0].data = np.full(st[0].stats.npts, np.nan)
    with pytest.raises(StationError, match=r"CI\.WBM\.\.HNZ contains NaN") as err:
        process_record(st, inv, HYPO, CONFIG)
    assert err.value.station == "CI.WBM"
    result = process_record(st, inv, HYPO, PreprocessConfig(reject_whole_station=False))
    assert [tr.id for tr in result.streams["ACC"]] == ["CI.WBM..HNE", "CI.WBM..HNN"]
    assert "contains NaN" in result.rejected["CI.WBM..HNZ"]


def test_dead_and_anomalous_channels() -> None:
    """A zeroed channel is dead (rejected); one with 80 times fewer counts than its
    siblings at the same gain passes its checks but is flagged anomalous."""
    st, inv = read_station("WBM")
    zeroed = st.copy()
    zeroed.select(channel="HNE")[0].data[:] = 0
    with pytest.raises(StationError, match=r"CI.WBM..HNE is dead: every sample is 0 counts"):
        process_record(zeroed, inv, HYPO, CONFIG)
    weak = st.copy()
    east = weak.select(channel="HNE")[0]
    east.data = np.round(east.data / 80.0).astype(np.int32)
    result = process_record(weak, inv, HYPO, CONFIG)
    flags = {f["trace"]: f for f in result.flags}
    assert list(flags) == ["CI.WBM..HNE"]
    assert flags["CI.WBM..HNE"]["flag"] == "anomalous"
    assert "times below the median" in flags["CI.WBM..HNE"]["detail"]
    assert "anomalous" in result.streams["VEL"].select(channel="HNE")[0].stats.dare["flags"]


def test_missing_response_names_the_channel() -> None:
    st, inv = read_station("WBM")
    without_z = inv.select(channel="HN[EN]")
    with pytest.raises(StationError, match=r"no instrument response for channel CI.WBM..HNZ"):
        process_record(st, without_z, HYPO, CONFIG)


def test_sensitivity_only_metadata_of_an_accelerometer() -> None:
    """Strong-motion StationXML often gives a sensitivity only: accepted for accelerometers,
    flagged. CI.CCC's accelerometers are flat (the full response equals the sensitivity within
    0.2 % from 0.03 to 30 Hz), so PGV, PGD and PSA(0.3-3 s) agree within 1 %; the PGA differs
    by up to 12 %: without the response its digitizer's FIR filters keep their phase, which
    shifts the high frequencies that make the peak. Hence the flag."""
    st, inv = read_station("CCC")
    full = process_record(st.copy(), inv, HYPO, CONFIG)
    stripped = inv.copy()
    for channel in stripped[0][0]:
        channel.response.response_stages = []
    result = process_record(st, stripped, HYPO, CONFIG)
    assert {f["flag"] for f in result.flags} == {"sensitivity_only"}
    for quantity, tolerance in (("ACC", 0.13), ("VEL", 0.01), ("DISP", 0.01)):
        for a, b in zip(full.streams[quantity], result.streams[quantity], strict=True):
            assert b.stats.dare["response"] == "sensitivity"
            assert "sensitivity_only" in b.stats.dare["flags"]
            assert np.abs(b.data).max() == pytest.approx(np.abs(a.data).max(), rel=tolerance)
    rows_full = station_pgm(*(full.streams[q] for q in QUANTITIES))
    rows_sens = station_pgm(*(result.streams[q] for q in QUANTITIES))
    for a, b in zip(rows_full, rows_sens, strict=True):
        for key in ("psa0.3", "psa1", "psa3"):
            assert float(b[key]) == pytest.approx(float(a[key]), rel=0.01)


def test_small_gap_is_interpolated_large_gap_rejected(records: dict) -> None:
    st, inv = read_station("WBM")
    full = records["WBM"].streams["ACC"].select(channel="HNE")[0]
    tr = st.select(channel="HNE")[0]
    quiet = ORIGIN - 20  # pre-event noise, far from the strong motion
    gappy = st.copy()
    gappy.remove(gappy.select(channel="HNE")[0])
    gappy += Stream([tr.slice(endtime=quiet), tr.slice(starttime=quiet + 0.5)])
    out = process_record(gappy, inv, HYPO, CONFIG).streams["ACC"].select(channel="HNE")[0]
    assert any("gaps_filled=1" in p for p in out.stats.processing)
    # interpolating 0.5 s of noise changes the peak by less than 0.1%
    np.testing.assert_allclose(np.abs(out.data).max(), np.abs(full.data).max(), rtol=1e-3)
    gappy = st.copy()
    gappy.remove(gappy.select(channel="HNE")[0])
    gappy += Stream([tr.slice(endtime=quiet), tr.slice(starttime=quiet + 5.0)])
    with pytest.raises(StationError, match=r"gap of (4.9\d|5.0\d) s in CI.WBM..HNE"):
        process_record(gappy, inv, HYPO, CONFIG)


def test_traces_of_two_stations_are_a_caller_error() -> None:
    st = obspy.read(str(RIDGECREST / "waveforms" / "CI.[CW][CB][CM]..HNZ.mseed"))
    with pytest.raises(ValueError, match="one station"):
        process_record(st, obspy.Inventory(), HYPO, CONFIG)


def test_low_snr_station_is_rejected_with_the_reason() -> None:
    """CI.SLA, which gmprocess also rejects: its north channel's SNR is below 2."""
    st, inv = read_station("SLA")
    with pytest.raises(StationError, match=r"CI.SLA..HNN: signal-to-noise ratio 1\.\d+ below "
                                           r"2 within 0\.1-5 Hz"):
        process_record(st, inv, HYPO, CONFIG)


# --- the record ----------------------------------------------------------------------------

def test_record_at_its_own_rate_on_one_grid(records: dict) -> None:
    for code, result in records.items():
        assert set(result.streams) == set(QUANTITIES)
        for quantity in QUANTITIES:
            st = result.streams[quantity]
            assert [tr.id for tr in st] == [f"CI.{code}..HN{c}" for c in "ENZ"]
            assert {tr.stats.sampling_rate for tr in st} == {100.0}
            assert len({(str(tr.stats.starttime), tr.stats.npts) for tr in st}) == 1
            for tr in st:
                info = tr.stats.dare
                assert 0 < info["highpass"] < info["lowpass"] == 37.5  # 0.75 x Nyquist
                assert info["snr_min"] >= 2.0
                assert info["usable_periods"] == [round(1 / 37.5, 4),
                                                  round(1 / (1.25 * info["highpass"]), 3)]
                steps = "\n".join(tr.stats.processing)
                for step in ("check_trace", "merge", "prefilter", "remove_response",
                             "output='ACC'", "corner_frequencies(snr", "bandpass",
                             "detrend(pre_event_mean)"):
                    assert step in steps
        horizontals = [tr.stats.dare["highpass"] for tr in result.streams["ACC"]
                       if tr.stats.channel[-1] != "Z"]
        assert len(set(horizontals)) == 1  # the two horizontals share their corners
    # the record starts 30 s before the P arrival (iasp91, shifted by -2 s)
    wbm = records["WBM"]
    assert wbm.p_arrival == pytest.approx(math.hypot(wbm.distance_km, 8.0) / 5.8, rel=0.02)
    split = UTCDateTime(wbm.streams["ACC"][0].stats.dare["split_time"])
    assert abs(split - (ORIGIN + wbm.p_arrival - 2.0)) < 1e-6
    assert abs(wbm.streams["ACC"][0].stats.starttime - (split - 30.0)) < 0.01


def test_velocity_and_displacement_are_integrals_of_the_acceleration(records: dict) -> None:
    """Independent check: obspy's trapezoidal integrals of the record's acceleration give the
    same peaks as its frequency-domain integrals (within 2 % and 5 %)."""
    for acc, vel, disp in zip(*(records["CCC"].streams[q] for q in QUANTITIES), strict=True):
        v = acc.copy().integrate()
        d = v.copy().integrate()
        v.data -= v.data[0]
        np.testing.assert_allclose(np.abs(vel.data).max(), np.abs(v.data).max(), rtol=0.02)
        d.detrend("linear")  # the trapezoidal integral keeps the DC the FFT drops
        np.testing.assert_allclose(np.abs(disp.data).max(), np.abs(d.data).max(), rtol=0.05)


def test_ridgecrest_peaks_at_ccc(records: dict) -> None:
    rows = {r["component"]: r for r in station_pgm(*(records["CCC"].streams[q]
                                                     for q in QUANTITIES))}
    # measured: CI.CCC (34.5 km from the epicentre, near the rupture's south-east end):
    # 0.50 g on its east component, 78 cm/s on its north (gmprocess's values: see
    # test_gmprocess_reference.py)
    assert float(rows["maxh"]["pga"]) / G == pytest.approx(0.50, abs=0.01)
    assert float(rows["maxh"]["pgv"]) == pytest.approx(0.78, abs=0.01)
    # RotD50 may exceed both recorded components (motion polarised between them), never
    # the largest over all directions (the horizontal norm's peak)
    assert float(rows["rotd50"]["pga"]) <= float(rows["H"]["pga"])


def test_partial_record_is_kept_and_flagged(records: dict) -> None:
    mpm = records["MPM"]
    assert {f["flag"] for f in mpm.flags} == {"partial"}
    for tr in mpm.streams["ACC"]:
        assert tr.stats.dare["flags"] == ["partial"]
        assert tr.stats.endtime < ORIGIN + 40  # the real record stops early


def test_two_and_one_component_records_are_processed() -> None:
    st, inv = read_station("WBM")
    two = process_record(st.select(channel="HN[EN]"), inv, HYPO, CONFIG)
    assert [tr.id for tr in two.streams["ACC"]] == ["CI.WBM..HNE", "CI.WBM..HNN"]
    rows = station_pgm(*(two.streams[q] for q in QUANTITIES))
    assert [r["component"] for r in rows] == ["N", "E", "H", "maxh", "rotd50"]
    one = process_record(st.select(channel="HNZ"), inv, HYPO, CONFIG)
    assert [tr.id for tr in one.streams["ACC"]] == ["CI.WBM..HNZ"]


# --- the comparison copies -------------------------------------------------------------------

def wavelet_synthetics(code: str, f0: float = 2.0, t0: float = 10.0) -> tuple[Stream, dict]:
    """A Gaussian-enveloped 2 Hz wavelet of displacement, its exact velocity and acceleration
    (by finite differences at a 100 times finer sampling)."""
    dt, sigma = 0.01, 0.5
    t = np.arange(0, 200.0, dt)
    w = 2 * np.pi * f0
    env = np.exp(-((t - t0) ** 2) / (2 * sigma**2))
    disp = 0.01 * env * np.sin(w * (t - t0))
    fine = np.arange(0, 200.0, dt / 100)
    envf = np.exp(-((fine - t0) ** 2) / (2 * sigma**2))
    dispf = 0.01 * envf * np.sin(w * (fine - t0))
    velf = np.gradient(dispf, dt / 100)
    exact = {"DISP": np.abs(disp).max(), "VEL": np.abs(velf).max(),
             "ACC": np.abs(np.gradient(velf, dt / 100)).max()}
    st = Stream([Trace(disp * (1.0 if c == "Z" else 0.5), header={
        "network": "CI", "station": code, "channel": f"HX{c}", "starttime": ORIGIN,
        "delta": dt}) for c in "ENZ"])
    return st, exact


def test_synthetic_copies_keep_an_in_band_wavelet(records: dict) -> None:
    """A 2 Hz wavelet is inside the record's band: its peaks survive the record's filters,
    the derivatives and the 50 Hz grid within 1 %."""
    st, exact = wavelet_synthetics("CCC")
    _, inv = read_station("CCC")
    observed, synthetic = comparison_copies(records["CCC"], st, inv, ORIGIN, (0.0, 20.0),
                                            CONFIG)
    for quantity in QUANTITIES:
        assert [tr.id for tr in synthetic[quantity]] == ["CI.CCC..HXE", "CI.CCC..HXN",
                                                         "CI.CCC..HXZ"]
        z = synthetic[quantity].select(channel="HXZ")[0]
        assert np.abs(z.data).max() == pytest.approx(exact[quantity], rel=0.01)
        for tr in (*observed[quantity], *synthetic[quantity]):
            assert tr.stats.starttime == ORIGIN and tr.stats.sampling_rate == 50.0
            assert tr.stats.npts == 7501 and tr.data.dtype == np.float64
            assert tr.stats.dare["lowpass"] == 20.0  # 0.4 x the grid's rate
    assert all(tr.stats.coverage == 1.0 for tr in observed["ACC"])


def test_common_band_follows_what_the_synthetics_resolve(records: dict) -> None:
    """Synthetics resolving up to 0.5 Hz (a coarse mesh): both copies are low-passed there,
    with the same filters, so that their peaks compare like with like."""
    st, _ = wavelet_synthetics("WBM", f0=0.2, t0=40.0)
    _, inv = read_station("WBM")
    observed, synthetic = comparison_copies(records["WBM"], st, inv, ORIGIN, (0.0, 0.5),
                                            CONFIG)
    for tr in (*observed["ACC"], *synthetic["ACC"]):
        assert tr.stats.dare["lowpass"] == 0.5
        spectrum = np.abs(np.fft.rfft(tr.data))
        freqs = np.fft.rfftfreq(tr.stats.npts, tr.stats.delta)
        assert spectrum[freqs > 4.0].max() < 1e-3 * spectrum.max()
    record_pga = np.abs(records["WBM"].streams["ACC"][1].data).max()
    assert np.abs(observed["ACC"][1].data).max() < 0.5 * record_pga
    with pytest.raises(StationError, match="no common band"):
        comparison_copies(records["WBM"], st, inv, ORIGIN, (0.0, 0.01), CONFIG)


def test_partial_record_copies_are_zero_padded(records: dict) -> None:
    st, _ = wavelet_synthetics("MPM")
    _, inv = read_station("MPM")
    observed, _ = comparison_copies(records["MPM"], st, inv, ORIGIN, (0.0, 20.0), CONFIG)
    for tr in observed["ACC"]:
        end = records["MPM"].streams["ACC"][0].stats.endtime
        covered = math.floor((end - ORIGIN) * 50) + 1
        assert tr.stats.coverage == pytest.approx(covered / 7501)
        assert np.abs(tr.data[:covered]).max() > 0.1  # m/s^2: real motion
        assert not tr.data[covered:].any()
        assert tr.stats.dare["flags"] == ["partial"]


def test_synthetics_projected_onto_rotated_channels() -> None:
    """Channels 1/2 at azimuths 30 and 120 degrees: the synthetic along each is the
    horizontal motion's projection; a vertical with dip -90 is 'up'."""
    east = np.array([1.0, 0.0, 2.0])
    north = np.array([0.0, 1.0, 2.0])
    up = np.array([5.0, 6.0, 7.0])
    syn = Stream([Trace(d.copy(), header={"network": "XX", "station": "S", "channel": f"HX{c}"})
                  for c, d in zip("ENZ", (east, north, up), strict=True)])
    inv = obspy.read_inventory(str(RIDGECREST / "stations" / "CI.CCC.xml")).copy()
    channels = []
    for code, azimuth, dip in (("HN1", 30.0, 0.0), ("HN2", 120.0, 0.0), ("HNZ", 0.0, -90.0)):
        for channel in inv[0][0]:
            if channel.code == f"HN{'E' if code == 'HN1' else 'N' if code == 'HN2' else 'Z'}":
                channel.code, channel.azimuth, channel.dip = code, azimuth, dip
        channels.append(Trace(header={"network": "CI", "station": "CCC", "channel": code,
                                      "starttime": UTCDateTime("2019-07-06")}))
    out = synthetic_for_channels(syn, channels, inv)
    az = np.radians([30.0, 120.0])
    np.testing.assert_allclose(out[0].data, np.sin(az[0]) * east + np.cos(az[0]) * north)
    np.testing.assert_allclose(out[1].data, np.sin(az[1]) * east + np.cos(az[1]) * north)
    np.testing.assert_allclose(out[2].data, up)
    assert [tr.stats.channel for tr in out] == ["HX1", "HX2", "HXZ"]


def test_long_period_noise_is_caught_not_turned_into_pga() -> None:
    """A vertical with a strong long-period disturbance (a 0.03 Hz oscillation at 40 % of the
    record's peak counts, e.g. a tilting broadband): a fixed 0.02-37.5 Hz band-pass keeps it
    and raises the PGA by 7 %; the SNR check sees it in the noise window and rejects the
    channel, naming it, while the horizontals go on."""
    st, inv = read_station("WBM")
    z = st.select(channel="HNZ")[0]
    t = np.arange(z.stats.npts) * z.stats.delta
    amplitude = np.abs(z.data - np.median(z.data)).max()
    noisy = st.copy()
    noisy.select(channel="HNZ")[0].data = (
        z.data + 0.4 * amplitude * np.sin(2 * np.pi * 0.03 * t + 0.3)).astype(np.int32)

    def fixed_band_pga(stream: Stream) -> float:
        tr = stream.select(channel="HNZ")[0].copy()
        tr.detrend("linear")
        tr.taper(0.05)
        tr.remove_response(inv, output="ACC", water_level=60)
        tr.filter("bandpass", freqmin=0.02, freqmax=37.5, corners=4, zerophase=True)
        return float(np.abs(tr.data).max())

    assert fixed_band_pga(noisy) / fixed_band_pga(st) == pytest.approx(1.07, abs=0.01)
    result = process_record(noisy, inv, HYPO, PreprocessConfig(reject_whole_station=False))
    assert [tr.stats.channel for tr in result.streams["ACC"]] == ["HNE", "HNN"]
    assert "signal-to-noise ratio" in result.rejected["CI.WBM..HNZ"]
    with pytest.raises(StationError, match=r"CI\.WBM\.\.HNZ: signal-to-noise ratio") as err:
        process_record(noisy, inv, HYPO, CONFIG)
    assert err.value.quality
