"""dare's record processing against USGS gmprocess 2.8.0, the reference software.

The oracle is tests/ra/data/gmprocess_reference/ (its README says how it was made: gmprocess
2.8.0, production configuration, run once in its own virtualenv on the same raw files). For
every channel gmprocess accepts, dare must give the same PGA, PGV and PSA(0.3, 1, 3 s) within
5 %, and the same RotD50 within 5 % (the issue's target). Measured when written: on the
Ridgecrest example every channel within 0.7 % (PGA 0.3 %, PGV 0.7 %, PSA 0.13 %), RotD50 within
1.3 %; the corners within 5 % except where noted.

Where dare differs on purpose, and why (asserted below, so that a change is noticed):

- the noise/signal split: gmprocess takes the median of five P pickers (TauP, AR, Baer, power,
  Kalkan), dare the iasp91 P arrival alone (shifted by -2 s as gmprocess). On BK.CMB (South
  Napa) the pickers are 1.1 s earlier: the record starts 1.1 s later in dare, and the
  polynomial high-pass corner of its vertical comes out 0.209 instead of 0.141 Hz (dare finds
  0.141 with gmprocess's split), which lowers its PGV by 29 % and PSA(3 s) by 13 %;
- PSA of records sampled coarsely: gmprocess upsamples for the oscillator only below 10
  samples per period, dare below 20, so at 40 Hz (BK.GASB) dare's PSA(0.3 s) is 3-5 % larger
  (closer to the continuous-time peak: see test_pgm.py's upsampling test);
- a station with a single component: gmprocess rejects it ("Less than 2 traces in stream"),
  dare processes it (NN.SBT, SHZ).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import obspy
import pytest
from obspy import UTCDateTime

import dare_cli.ra
from dare_cli.ra.errors import StationError
from dare_cli.ra.pgm import G, station_pgm
from dare_cli.ra.preprocess import QUANTITIES, Hypocentre, PreprocessConfig, process_record

DATA = Path(__file__).parent / "data"
REFERENCE = DATA / "gmprocess_reference"
FOLDERS = {"ci38457511": Path(dare_cli.ra.__file__).parent / "examples" / "ridgecrest",
           "nc72282711": DATA / "nc72282711", "nc51194936": DATA / "nc51194936"}
#: dare metric, gmprocess column, factor from dare's SI unit to gmprocess's
METRICS = (("pga", "pga_pctg", 100 / G), ("pgv", "pgv_cms", 100.0),
           ("psa0.3", "sa0.3_pctg", 100 / G), ("psa1", "sa1_pctg", 100 / G),
           ("psa3", "sa3_pctg", 100 / G))
TOLERANCE = 0.05
#: (channel or station ROTD50, metric): measured difference with its explanation above
KNOWN = {("BK.CMB.00.HNZ", "pgv"): -0.30, ("BK.CMB.00.HNZ", "psa3"): -0.14,
         ("BK.GASB..BHE", "psa0.3"): 0.028, ("BK.GASB..BHN", "psa0.3"): 0.046}


def reference(event: str) -> dict[tuple[str, str], dict[str, str]]:
    with open(REFERENCE / f"{event}.csv", newline="") as handle:
        return {(row["station"], row["component"]): row for row in csv.DictReader(handle)}


def dare_records(event: str) -> dict[str, object]:
    folder = FOLDERS[event]
    info = json.loads((folder / "event.json").read_text())
    hypo = Hypocentre(UTCDateTime(info["time"]), info["latitude"], info["longitude"],
                      info["depth_km"], info["magnitude"])
    out: dict[str, object] = {}
    for station_file in sorted((folder / "stations").glob("*.xml")):
        station = station_file.stem
        stream = obspy.Stream()
        for path in sorted((folder / "waveforms").glob(f"{station}.*")):
            stream += obspy.read(str(path))
        try:
            out[station] = process_record(stream, obspy.read_inventory(str(station_file)), hypo,
                                          PreprocessConfig())
        except StationError as error:
            out[station] = error
    return out


@pytest.fixture(scope="module", params=sorted(FOLDERS))
def event(request: pytest.FixtureRequest) -> tuple[str, dict, dict]:
    return request.param, reference(request.param), dare_records(request.param)


def compare(expected: dict[str, str], row: dict, name: str) -> list[str]:
    problems = []
    for metric, column, factor in METRICS:
        ours = float(row[metric]) * factor
        theirs = float(expected[column])
        difference = ours / theirs - 1
        known = KNOWN.get((name, metric))
        if known is not None:
            if abs(difference - known) > 0.02:
                problems.append(f"{name} {metric}: {difference:+.1%}, known {known:+.1%}")
        elif abs(difference) > TOLERANCE:
            problems.append(f"{name} {metric}: dare {ours:.6g}, gmprocess {theirs:.6g} "
                            f"({difference:+.1%})")
    return problems


@pytest.mark.slow
def test_channels_gmprocess_accepts_agree_within_five_percent(event: tuple) -> None:
    name, expected, records = event
    problems: list[str] = []
    compared = 0
    for station, result in records.items():
        if isinstance(result, StationError):
            continue
        rows = station_pgm(*(result.streams[q] for q in QUANTITIES))  # type: ignore[attr-defined]
        by_channel = {row["channel"]: row for row in rows}
        for trace in result.streams["ACC"]:  # type: ignore[attr-defined]
            accepted = expected.get((station, trace.stats.channel))
            if accepted is None or accepted["passed"] != "true":
                continue
            problems += compare(accepted, by_channel[trace.stats.channel], trace.id)
            compared += 1
        rotd = expected.get((station, "ROTD50"))
        if rotd is not None and rotd["passed"] == "true":
            problems += compare(rotd, by_channel["rotd50"], f"{station} ROTD50")
            compared += 1
    assert not problems, "\n".join(problems)
    assert compared == {"ci38457511": 36, "nc72282711": 8, "nc51194936": 3}[name]


@pytest.mark.slow
def test_same_stations_rejected_for_the_same_reasons(event: tuple) -> None:
    """Rejections agree: CI.SLA fails its SNR check on HNN (1.52 there, 1.53 here); the one
    station of a single component that gmprocess refuses, dare processes."""
    name, expected, records = event
    rejected_by_gmprocess = {station for (station, _), row in expected.items()
                             if row["passed"] == "false"}
    rejected_by_dare = {s for s, r in records.items() if isinstance(r, StationError)}
    if name == "nc51194936":
        assert rejected_by_gmprocess == {"NN.SBT"} and rejected_by_dare == set()
        assert expected[("NN.SBT", "SHZ")]["failure_reason"] == "Less than 2 traces in stream."
        return
    assert rejected_by_dare == rejected_by_gmprocess
    if name == "ci38457511":
        reason = records["CI.SLA"].reason  # type: ignore[attr-defined]
        assert "CI.SLA..HNN: signal-to-noise ratio 1.5" in reason
        assert expected[("CI.SLA", "HNN")]["failure_reason"] == "Failed SNR check."


@pytest.mark.slow
def test_corners_agree(event: tuple) -> None:
    """The corners gmprocess applied: low-pass equal (0.75 of the Nyquist frequency or the SNR's
    high crossing), high-pass within 5 % (SNR crossing and polynomial fit) but on two
    verticals explained below."""
    _name, expected, records = event
    for station, result in records.items():
        if isinstance(result, StationError):
            continue
        for trace in result.streams["ACC"]:  # type: ignore[attr-defined]
            row = expected.get((station, trace.stats.channel))
            if row is None or row["passed"] != "true":
                continue
            info = trace.stats.dare
            assert info["lowpass"] == pytest.approx(float(row["lowpass_hz"]), rel=0.04), trace.id
            if trace.id in ("BK.CMB.00.HNZ", "CI.WRV2..HNZ"):
                # CMB: the polynomial fit on another window (the split). WRV2: the fit's
                # criterion has two roots, 0.020 and 0.031 Hz (ratio 0.0201 at both, 0.028
                # between); gmprocess's own Ridder iteration stops near the first (0.0146,
                # within its tolerance), scipy's at the second; the peaks differ by < 0.5 %
                continue
            assert info["highpass"] == pytest.approx(float(row["highpass_hz"]), rel=0.05), \
                trace.id
