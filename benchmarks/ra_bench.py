"""Benchmark: the Rapid Assessment of the bundled Ridgecrest example against a plain script.

The baseline is a plain sequential obspy script doing the same processing with no engine and
no stage files: for each of the 10 stations, synthetics from the same analytical solver, the
observed records read, trimmed, detrended, tapered, deconvolved to ACC/VEL/DISP with the same
pre-filter, band-passed and resampled to the common grid, the synthetics processed alike,
vector norms, PGA/PGV/PGD and PSA at 0.3/1/3 s. ``dare`` runs the stages download to geojson
(plots off) with every per-station stage on ``simple``, then on ``multi`` with 2 workers.

Every case runs in a fresh subprocess (imports included); the median of ``--repeat`` runs and
the peak resident memory of the process tree are reported.

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


def baseline() -> int:
    """The plain script; returns the number of PGM rows computed."""
    import numpy as np
    from obspy import Stream, read, read_events, read_inventory

    from dare_cli.ra.config import load_config
    from dare_cli.ra.norm import station_norms
    from dare_cli.ra.pgm import station_pgm
    from dare_cli.ra.preprocess import preprocess_synthetic
    from dare_cli.ra.simulate.embedded import synthetics_for_station
    from dare_cli.ra.source import double_couple_tensor, moment_from_magnitude

    config = load_config(EXAMPLE / "ridgecrest.toml")
    p = config.preprocess
    event = read_events(str(EXAMPLE / "event.xml"))[0]
    origin = event.preferred_origin() or event.origins[0]
    tensor = double_couple_tensor(321.0, 81.0, 180.0, moment_from_magnitude(7.1))
    t0 = origin.time + p.window_start
    rows = 0
    for station_file in sorted((EXAMPLE / "stations").glob("*.xml")):
        inventory = read_inventory(str(station_file))
        net, sta = inventory[0].code, inventory[0][0].code
        observed: dict[str, Stream] = {q: Stream() for q in ("ACC", "VEL", "DISP")}
        for path in sorted((EXAMPLE / "waveforms").glob(f"{net}.{sta}..*.mseed")):
            raw = read(str(path))[0]
            raw.trim(t0 - p.margin, t0 + p.window_length + p.margin)
            raw.detrend("demean")
            raw.detrend("linear")
            raw.taper(max_percentage=p.taper_fraction, type="hann")
            for quantity in observed:
                trace = raw.copy()
                trace.remove_response(inventory, output=quantity, pre_filt=p.pre_filt,
                                      water_level=p.water_level, zero_mean=False, taper=False)
                trace.filter("bandpass", freqmin=p.freqmin, freqmax=p.freqmax,
                             corners=p.corners, zerophase=p.zerophase)
                start = max(t0, trace.stats.starttime)
                npts = int((min(t0 + p.window_length, trace.stats.endtime) - start)
                           * p.sampling_rate) + 1
                trace.interpolate(p.sampling_rate, method="lanczos", a=20, starttime=start,
                                  npts=npts)
                data = np.zeros(p.npts)
                offset = round((start - t0) * p.sampling_rate)
                data[offset:offset + npts] = trace.data[: p.npts - offset]
                trace.data, trace.stats.starttime = data, t0
                observed[quantity] += trace
        coordinates = inventory.get_coordinates(f"{net}.{sta}..HNZ", origin.time)
        synthetic = preprocess_synthetic(
            synthetics_for_station(origin, tensor, coordinates, net, sta, config.simulate),
            origin.time, p)
        for streams in (observed, synthetic):
            norms = {q: station_norms(streams[q]) for q in streams}
            values = station_pgm(streams["ACC"] + norms["ACC"], streams["VEL"] + norms["VEL"],
                                 streams["DISP"] + norms["DISP"])
            rows += len(values)
    return rows


def dare(mapping: str, workers: int | None, out: Path) -> int:
    """The pipeline, stages download..geojson; returns the number of PGM rows."""
    from dare_cli.ra.config import load_config
    from dare_cli.ra.pipeline import run_assessment

    config = load_config(EXAMPLE / "ridgecrest.toml").with_overrides(
        out=out, mappings={stage: (mapping, workers) for stage in PER_STATION})
    report = run_assessment(config, only=STAGES)
    if not report["ok"]:
        raise SystemExit(f"the run failed: {report}")
    pgm = json.loads((out / "pgm" / "pgm.json").read_text())
    return len(pgm["rows"])


def one_case(case: str) -> dict[str, Any]:
    """Run one case in this process and measure it."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        if case == "baseline":
            rows = baseline()
        elif case == "simple":
            rows = dare("simple", None, Path(folder) / "run")
        else:
            rows = dare("multi", int(case.split("-")[1]), Path(folder) / "run")
    seconds = time.perf_counter() - start
    peak_kb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return {"case": case, "seconds": seconds, "rows": rows, "peak_mb": peak_kb / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(one_case(args.case)))
        return 0
    cases = ["baseline", "simple", "multi-2"]
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
        summary[case] = {
            "seconds": round(statistics.median(r["process_seconds"] for r in runs), 3),
            "peak_mb": round(max(r["peak_mb"] for r in runs), 1),
            "rows": runs[-1]["rows"],
        }
    base = summary["baseline"]["seconds"]
    for case in cases:
        summary[case]["ratio_to_baseline"] = round(summary[case]["seconds"] / base, 3)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{'case':10} {'seconds':>8} {'x baseline':>11} {'speed-up':>9} {'peak MB':>8}")
        for case in cases:
            s = summary[case]
            print(f"{case:10} {s['seconds']:8.2f} {s['ratio_to_baseline']:11.2f} "
                  f"{base / s['seconds']:9.2f} {s['peak_mb']:8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
