"""Benchmark: the cost of single science steps, against the budgets the tests once asserted.

The tests check what these steps compute; how long they take is measured here, where a slow
machine makes a slow report rather than a failed test. Each case runs in this process after
its imports: the first call (``cold_s``: lazy imports, caches) and the median of ``--repeat``
more (``warm_s``); ``budget_s`` is the bound the tests held the cold call to (a 2-core CI
machine), and ``within`` says whether it held. The import of pygmm and ps2ff is timed in a
fresh process.

Cases: ``gmpe-imports``; ``gmpe-ps2ff`` and ``gmpe-epicentral`` (10 Ridgecrest stations x 5
metrics, with ps2ff's finite-fault distances or epicentral ones); ``embedded-synthetics``
(10 stations x 200 s x 50 Hz, every default: the time per station); ``pga-map`` (the offline
PGA map of 11 stations at 200 dpi); ``crowded-map`` (200 stations: label placement and a
draw); ``climate-whole`` and ``climate-tile`` (SU on the 12 x 12 x 365 test grid: icclim on
the lazy input vs one loaded tile with dask's synchronous scheduler).

Nothing here is a test: no budget fails. Usage::

    python benchmarks/costs_bench.py [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from timing import ROOT, TESTS, median_time

RIDGECREST = ROOT / "dare_cli" / "ra" / "examples" / "ridgecrest"
TASMAX_GRID = TESTS / "climate" / "data" / "tasmax_CanESM2_2095_12x12.nc"
PERIODS = (0.3, 1.0, 3.0)
#: The tests' former bounds on the cold call, in seconds.
BUDGETS = {"gmpe-imports": 10.0, "gmpe-ps2ff": 15.0, "gmpe-epicentral": 2.0,
           "embedded-synthetics": 1.0, "pga-map": 20.0, "crowded-map": 30.0,
           "climate-whole": 60.0, "climate-tile": 60.0}


def gmpe_imports() -> float:
    """Seconds to import pygmm and ps2ff in a fresh interpreter."""
    code = ("import time; t = time.perf_counter(); import pygmm, ps2ff.run; "
            "print(time.perf_counter() - t)")
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                text=True, check=True).stdout)


def gmpe_cases() -> dict[str, Callable[[], Any]]:
    """Predictions at the 10 Ridgecrest stations, with ps2ff distances or epicentral ones."""
    from obspy import read_inventory

    from dare_cli.ra import gmpe

    stations: list[Any] = []
    for path in sorted((RIDGECREST / "stations").glob("*.xml")):
        stations += gmpe.stations_from_inventory(read_inventory(str(path)))
    event = gmpe.Earthquake(6.4, 35.705, -117.504, 10.7, rake=5.0)
    epicentral = gmpe.GMPEConfig(distance="epicentral")
    return {"gmpe-ps2ff": lambda: gmpe.predict(event, stations, PERIODS),
            "gmpe-epicentral": lambda: gmpe.predict(event, stations, PERIODS, epicentral)}


def embedded_case() -> Callable[[], int]:
    """The example's synthetics (10 stations x 200 s x 50 Hz); returns the station count."""
    from obspy import read_events, read_inventory

    from dare_cli.ra.simulate.embedded import EmbeddedConfig, synthetics_for_station
    from dare_cli.ra.source import double_couple_tensor, moment_from_magnitude

    origin = read_events(str(RIDGECREST / "event.xml"))[0].preferred_origin()
    stations = {}
    for path in sorted((RIDGECREST / "stations").glob("*.xml")):
        inventory = read_inventory(str(path))
        seed_id = inventory.get_contents()["channels"][0]
        stations[seed_id] = inventory.get_coordinates(seed_id, origin.time)
    tensor = double_couple_tensor(321.0, 81.0, 180.0, moment_from_magnitude(7.1))
    config = EmbeddedConfig(sampling_rate=50.0, duration=200.0)

    def run() -> int:
        for seed_id, coordinates in stations.items():
            network, station = seed_id.split(".")[:2]
            synthetics_for_station(origin, tensor, coordinates, network, station, config)
        return len(stations)

    return run


def map_cases(folder: Path) -> dict[str, Callable[[], Any]]:
    """The offline PGA map (the tests' 11 stations) and a crowded one (200 stations)."""
    import cartopy
    import numpy as np

    for key in ("data_dir", "pre_existing_data_dir", "cache_dir"):  # offline, as the tests
        (folder / key).mkdir()
        cartopy.config[key] = folder / key
    sys.path[:0] = [str(TESTS), str(TESTS / "ra")]
    import test_plots  # the tests' event, station rows and label boxes

    from dare_cli.ra import plots

    generator = np.random.default_rng(7)
    event = test_plots.EVENT
    crowd = [(f"S{i:03d}", event["latitude"] + generator.normal(0, 0.25),
              event["longitude"] + generator.normal(0, 0.3), 30.0,
              float(generator.uniform(0.5, 5.0))) for i in range(200)]
    return {
        "pga-map": lambda: plots.plot_pga_map(folder / "pga_map.png", event, test_plots.rows()),
        "crowded-map": lambda: len(test_plots.label_boxes(
            plots.pga_map_figure(event, test_plots.rows(crowd)))),
    }


def climate_cases() -> dict[str, Callable[[], Any]]:
    """SU on the test grid: icclim on the whole lazy input, and one loaded tile."""
    from dare_cli.climate.compute import IndexRequest, Tile, compute_tile, compute_whole

    request = IndexRequest("SU")
    return {"climate-whole": lambda: compute_whole([str(TASMAX_GRID)], request),
            "climate-tile": lambda: compute_tile([str(TASMAX_GRID)], request, Tile(0, ()))}


def measure(name: str, function: Callable[[], Any], repeat: int, per: int = 1) -> dict[str, Any]:
    """Cold and warm seconds of one case (divided by ``per`` items), with its budget."""
    cold, _ = median_time(function, 1)
    warm, _ = median_time(function, repeat)
    cold, warm = cold / per, warm / per
    return {"case": name, "cold_s": round(cold, 3), "warm_s": round(warm, 3),
            "budget_s": BUDGETS[name], "within": cold < BUDGETS[name]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    imports = gmpe_imports()
    rows = [{"case": "gmpe-imports", "cold_s": round(imports, 3), "warm_s": None,
             "budget_s": BUDGETS["gmpe-imports"], "within": imports < BUDGETS["gmpe-imports"]}]
    with tempfile.TemporaryDirectory() as folder:
        cases = {**gmpe_cases(), "embedded-synthetics": embedded_case(),
                 **map_cases(Path(folder)), **climate_cases()}
        for name, function in cases.items():
            per = 10 if name == "embedded-synthetics" else 1  # per station, as its budget
            rows.append(measure(name, function, args.repeat, per))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'case':22} {'cold s':>8} {'warm s':>8} {'budget s':>9}  within")
        for row in rows:
            warm = "" if row["warm_s"] is None else f"{row['warm_s']:8.3f}"
            print(f"{row['case']:22} {row['cold_s']:8.3f} {warm:>8} {row['budget_s']:9.1f}  "
                  f"{'yes' if row['within'] else 'NO'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
