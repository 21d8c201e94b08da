"""Benchmark: the Rapid Assessment of the bundled Ridgecrest example against a plain script.

The baseline is what a seismologist writes with obspy alone, in one process, with no engine
and no stage files: for each of the 10 stations, the synthetics of the same analytical solver,
differentiated and band-passed with obspy; the observed records read, detrended, tapered,
deconvolved three times (to ACC, VEL and DISP, obspy's ``remove_response`` with a cosine
pre-filter up to 0.8 of the Nyquist frequency) and band-passed; then PGA/PGV/PGD and PSA at
0.3/1/3 s of every component (dare's oscillator). ``dare`` runs the stages download to geojson
(plots off) -- which do more: SNR windows and corners, the polynomial high-pass, RotD50, the
comparison copies on a common grid, norms, the GMPE baseline -- with every per-station stage
on ``simple``, then on ``multi`` with 2 workers; it deconvolves once, to acceleration, and
integrates in the frequency domain, as gmprocess does.

Every case runs in a fresh subprocess (imports included); the median of ``--repeat`` runs and
the peak resident memory of the process tree are reported.

Two more cases time the record processing alone, in one process after the imports: the
baseline's observed half (three deconvolutions per channel, a fixed band-pass, the peaks) and
dare's ``process_record`` (one deconvolution to acceleration, frequency-domain integrals, and
the SNR windows, corners and polynomial high-pass that the baseline does not do), then the
same peaks and RotD50.

Usage::

    python benchmarks/ra_bench.py [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXAMPLE = ROOT / "dare_cli" / "ra" / "examples" / "ridgecrest"
STAGES = ("download", "simulate", "preprocess", "norm", "match", "pgm", "geojson")
PER_STATION = ("simulate", "preprocess", "norm", "match", "pgm")


def observed_baseline(stream: Any, inventory: Any, t0: Any, t1: Any) -> dict[str, Any]:
    """The baseline's processing of one station's raw records: ACC, VEL and DISP streams."""
    from obspy import Stream

    observed: dict[str, Stream] = {q: Stream() for q in ("ACC", "VEL", "DISP")}
    for raw in stream:
        raw.trim(t0, t1)
        raw.detrend("linear")
        raw.detrend("demean")
        raw.taper(max_percentage=0.05, type="hann")
        nyquist = 0.5 * raw.stats.sampling_rate
        for quantity in observed:
            trace = raw.copy()
            trace.remove_response(inventory, output=quantity, water_level=60.0,
                                  pre_filt=(0.002, 0.005, 0.8 * nyquist, 0.9 * nyquist))
            trace.filter("bandpass", freqmin=0.05, freqmax=20.0, corners=4, zerophase=True)
            observed[quantity] += trace
    for quantity in observed.values():  # one span for the three components
        quantity.trim(max(tr.stats.starttime for tr in quantity),
                      min(tr.stats.endtime for tr in quantity), nearest_sample=True)
        npts = min(tr.stats.npts for tr in quantity)
        for tr in quantity:
            tr.data = tr.data[:npts]
    return observed


def baseline() -> int:
    """The plain script; returns the number of PGM rows computed."""
    from obspy import Stream, read, read_events, read_inventory

    from dare_cli.ra.config import load_config
    from dare_cli.ra.pgm import station_pgm
    from dare_cli.ra.simulate.embedded import synthetics_for_station
    from dare_cli.ra.source import double_couple_tensor, moment_from_magnitude

    config = load_config(EXAMPLE / "ridgecrest.toml")
    event = read_events(str(EXAMPLE / "event.xml"))[0]
    origin = event.preferred_origin() or event.origins[0]
    tensor = double_couple_tensor(321.0, 81.0, 180.0, moment_from_magnitude(7.1))
    t0, t1 = origin.time - 30.0, origin.time + 300.0
    freqmin, freqmax = 0.05, 20.0  # the baseline's band (observed_baseline's too)
    rows = 0
    for station_file in sorted((EXAMPLE / "stations").glob("*.xml")):
        inventory = read_inventory(str(station_file))
        net, sta = inventory[0].code, inventory[0][0].code
        raw = Stream()
        for path in sorted((EXAMPLE / "waveforms").glob(f"{net}.{sta}..*.mseed")):
            raw += read(str(path))
        observed = observed_baseline(raw, inventory, t0, t1)
        coordinates = inventory.get_coordinates(f"{net}.{sta}..HNZ", origin.time)
        disp = synthetics_for_station(origin, tensor, coordinates, net, sta, config.simulate)
        disp.taper(max_percentage=0.05, type="hann")
        disp.filter("bandpass", freqmin=freqmin, freqmax=freqmax, corners=4, zerophase=True)
        vel = disp.copy().differentiate()
        synthetic = {"ACC": vel.copy().differentiate(), "VEL": vel, "DISP": disp}
        for streams in (observed, synthetic):
            rows += len(station_pgm(streams["ACC"], streams["VEL"], streams["DISP"]))
    return rows


def _records() -> list[tuple[Any, Any]]:
    from obspy import read, read_inventory

    out = []
    for station_file in sorted((EXAMPLE / "stations").glob("*.xml")):
        inventory = read_inventory(str(station_file), format="STATIONXML")
        net, sta = inventory[0].code, inventory[0][0].code
        stream = read(str(EXAMPLE / "waveforms" / f"{net}.{sta}..*.mseed"), format="MSEED")
        out.append((stream, inventory))
    return out


def records_baseline() -> tuple[int, float]:
    """The baseline's record processing alone: (rows, seconds after the imports)."""
    from obspy import UTCDateTime

    from dare_cli.ra.pgm import station_pgm

    records = _records()
    origin = UTCDateTime("2019-07-06T03:19:53")
    start = time.perf_counter()
    rows = 0
    for stream, inventory in records:
        observed = observed_baseline(stream.copy(), inventory, origin - 30.0, origin + 300.0)
        rows += len(station_pgm(observed["ACC"], observed["VEL"], observed["DISP"]))
    return rows, time.perf_counter() - start


def records_dare() -> tuple[int, float]:
    """dare's record processing alone: (rows, seconds after the imports)."""
    from obspy import UTCDateTime

    from dare_cli.ra.errors import StationError
    from dare_cli.ra.pgm import station_pgm
    from dare_cli.ra.preprocess import Hypocentre, PreprocessConfig, process_record

    records = _records()
    hypo = Hypocentre(UTCDateTime("2019-07-06T03:19:53"), 35.770, -117.599, 8.0, 7.1)
    config = PreprocessConfig()
    start = time.perf_counter()
    rows = 0
    for stream, inventory in records:
        try:
            result = process_record(stream.copy(), inventory, hypo, config)
        except StationError:  # CI.SLA fails its SNR check
            continue
        rows += len(station_pgm(result.streams["ACC"], result.streams["VEL"],
                                result.streams["DISP"]))
    return rows, time.perf_counter() - start


def dare(mapping: str, workers: int | None, out: Path) -> int:
    """The pipeline, stages download..geojson; returns the number of PGM rows."""
    from dare_cli.ra.config import load_config
    from dare_cli.ra.pipeline import run_assessment

    config = load_config(EXAMPLE / "ridgecrest.toml").with_overrides(
        out=out, mappings={stage: (mapping, workers) for stage in PER_STATION})
    report = run_assessment(config, only=STAGES)
    if not report["ok"]:  # CI.SLA fails its SNR check, as in gmprocess: that is not a failure
        raise SystemExit(f"the run failed: {report}")
    pgm = json.loads((out / "pgm" / "pgm.json").read_text())
    return len(pgm["rows"])


def one_case(case: str) -> dict[str, Any]:
    """Run one case in this process and measure it."""
    start = time.perf_counter()
    kernel = None
    with tempfile.TemporaryDirectory() as folder:
        if case == "baseline":
            rows = baseline()
        elif case == "records-baseline":
            rows, kernel = records_baseline()
        elif case == "records-dare":
            rows, kernel = records_dare()
        elif case == "simple":
            rows = dare("simple", None, Path(folder) / "run")
        else:
            rows = dare("multi", int(case.split("-")[1]), Path(folder) / "run")
    seconds = time.perf_counter() - start
    peak_kb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return {"case": case, "seconds": seconds, "rows": rows, "peak_mb": peak_kb / 1024,
            "kernel_seconds": kernel}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(one_case(args.case)))
        return 0
    cases = ["baseline", "simple", "multi-2", "records-baseline", "records-dare"]
    samples: dict[str, list[dict[str, Any]]] = {case: [] for case in cases}
    for _ in range(args.repeat):  # rounds interleaved, so drifts hit every case alike
        for case in cases:
            wall = time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--case", case], check=True,
                                 capture_output=True, text=True, cwd=ROOT)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result["process_seconds"] = time.perf_counter() - wall
            samples[case].append(result)
    summary = {}
    for case, runs in samples.items():
        kernel = case.startswith("records")  # timed after the imports, inside the process
        key = "kernel_seconds" if kernel else "process_seconds"
        summary[case] = {
            "seconds": round(statistics.median(r[key] for r in runs), 3),
            "peak_mb": round(max(r["peak_mb"] for r in runs), 1),
            "rows": runs[-1]["rows"],
        }
    for case in cases:
        base = summary["records-baseline" if case.startswith("records") else "baseline"]
        summary[case]["ratio_to_baseline"] = round(summary[case]["seconds"]
                                                   / base["seconds"], 3)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{'case':16} {'seconds':>8} {'x baseline':>11} {'speed-up':>9} {'peak MB':>8}")
        for case in cases:
            s = summary[case]
            print(f"{case:16} {s['seconds']:8.2f} {s['ratio_to_baseline']:11.2f} "
                  f"{1 / s['ratio_to_baseline']:9.2f} {s['peak_mb']:8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
