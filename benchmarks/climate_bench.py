"""Benchmark: ``dare climate index`` against icclim alone, on synthetic daily tasmax grids.

For each index, in the same run and each in a fresh subprocess (imports included):

(a) **icclim alone**: ``icclim.index(in_files=FILE, index_name=NAME, out_file=OUT,
    base_period_time_range=...)`` with icclim's default dask settings;
(b) **dare**: ``dare climate index NAME --input FILE --output OUT.nc --mapping multi -n 2``
    (skipped, with a message, while that command does not exist).

Reported: wall time, peak resident memory of the process tree (sum over the process and its
descendants, sampled every 50 ms with psutil when it is installed) and the largest resident
memory of any single process of the tree (``os.wait4``'s ``ru_maxrss``, always available), and
the ratios dare / icclim.

Problem sizes (years from 1981 x ny x nx, daily, float32; files are generated once into
``--data-dir`` by ``make_climate_data.py`` and reused):

* SU (and other indices): 30 years x 100 x 100 (438 MB), the full problem;
* percentile indices (TX90p, TN10p, R95p, ...: names ending in ``<digits>p`` or
  ``<digits>ptot``): 30 years x 25 x 25 (27 MB), because their bootstrapped base-period
  percentiles are slow: icclim alone took 741 s for TX90p on 30 y x 100 x 100 with a 10-year
  base period on this 2-core machine; on 30 y x 25 x 25 it took 156 s (dare multi -n 2:
  116 s), measured while other tests shared the 2 cores: both cases in about 4.5 minutes.
  The cost does not fall in proportion to the grid (per-chunk bootstrap overheads).

``--years/--ny/--nx`` override the sizes of every index. The base period (default 1981-1990)
is passed to percentile indices only (icclim ignores it for the others).

Usage::

    python benchmarks/climate_bench.py [--years 30] [--ny 100] [--nx 100]
        [--indices SU,TX90p] [--base-period 1981 1990] [--data-dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_climate_data import file_name, make_tasmax  # noqa: E402

#: Default (years, ny, nx) of the full problem and of percentile indices.
FULL_SIZE = (30, 100, 100)
PERCENTILE_SIZE = (30, 25, 25)
_PERCENTILE = re.compile(r"\d+p(tot)?$", re.IGNORECASE)

ICCLIM_SCRIPT = """
import json, sys
import icclim
kwargs = json.loads(sys.argv[1])
icclim.index(**kwargs)
"""


def is_percentile_index(name: str) -> bool:
    """True for percentile-based ECA&D indices (TX90p, TN10p, R95p, R95pTOT, ...)."""
    return bool(_PERCENTILE.search(name))


@dataclass
class Measurement:
    """One case: wall time (s), peak RSS of the tree and of one process (MB), exit status."""

    index: str
    case: str
    size: str
    wall_s: float | None = None
    peak_tree_mb: float | None = None
    peak_process_mb: float | None = None
    returncode: int | None = None
    skipped: str | None = None
    error: str | None = None


def measure(command: list[str], cwd: Path) -> tuple[float, float | None, float, int, str]:
    """Run ``command``; return wall (s), peak tree RSS (MB or None), peak process RSS (MB),
    exit code and the tail of stderr.
    """
    try:
        import psutil
    except ImportError:
        psutil = None
    with tempfile.TemporaryFile() as stderr_file:
        return _measure(command, cwd, stderr_file, psutil)


def _measure(command: list[str], cwd: Path, stderr_file: Any,
             psutil: Any) -> tuple[float, float | None, float, int, str]:
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr_file)
    peak_tree = [0]
    done = threading.Event()

    def sample() -> None:
        assert psutil is not None
        try:
            root = psutil.Process(process.pid)
        except psutil.Error:
            return
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            total = 0
            for member in tree:
                with contextlib.suppress(psutil.Error):
                    total += member.memory_info().rss
            peak_tree[0] = max(peak_tree[0], total)
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True) if psutil is not None else None
    if sampler is not None:
        sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    done.set()
    if sampler is not None:
        sampler.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr_file.seek(0)
    tail = stderr_file.read().decode("utf-8", "replace")[-2000:]
    tree_mb = peak_tree[0] / 1e6 if psutil is not None else None
    return wall, tree_mb, usage.ru_maxrss * 1024 / 1e6, process.returncode, tail


def dare_command() -> list[str] | None:
    """The ``dare`` executable (or ``python -m dare_cli``), or None without ``climate index``."""
    executable = shutil.which("dare")
    base = [executable] if executable else [sys.executable, "-m", "dare_cli"]
    probe = subprocess.run([*base, "climate", "index", "--help"], capture_output=True,
                           cwd=HERE.parent, timeout=120)
    return base if probe.returncode == 0 else None


def run(indices: list[str], size: tuple[int, int, int] | None, base_period: tuple[int, int],
        data_dir: Path, verbose: bool = True) -> list[Measurement]:
    """Measure every index with icclim alone and with dare."""
    dare = dare_command()
    results: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="climate_bench.") as scratch:
        work = Path(scratch)
        for name in indices:
            percentile = is_percentile_index(name)
            years, ny, nx = size or (PERCENTILE_SIZE if percentile else FULL_SIZE)
            label = f"{years}y x {ny} x {nx}"
            path = data_dir / file_name(years, ny, nx)
            if not path.exists():
                if verbose:
                    print(f"generating {path.name} ...", file=sys.stderr)
                make_tasmax(data_dir, years, ny, nx)
            base = (f"{base_period[0]}-01-01", f"{base_period[1]}-12-31")
            kwargs: dict[str, Any] = {"in_files": str(path), "index_name": name,
                                      "out_file": str(work / f"{name}_icclim.nc")}
            if percentile:
                kwargs["base_period_time_range"] = list(base)
            cases: list[tuple[str, list[str] | None, str | None]] = [
                ("icclim", [sys.executable, "-c", ICCLIM_SCRIPT, json.dumps(kwargs)], None)]
            if dare is None:
                cases.append(("dare multi -n 2", None,
                              "`dare climate index` is not available yet"))
            else:
                dare_case = [*dare, "climate", "index", name, "--input", str(path), "--output",
                           str(work / f"{name}_dare.nc"), "--mapping", "multi", "-n", "2"]
                if percentile:
                    dare_case += ["--base-period", *base]
                cases.append(("dare multi -n 2", dare_case, None))
            for case, command, skipped in cases:
                result = Measurement(name, case, label, skipped=skipped)
                if command is not None:
                    if verbose:
                        print(f"{name} [{label}] {case} ...", file=sys.stderr, flush=True)
                    wall, tree, single, code, tail = measure(command, work)
                    result.wall_s, result.peak_tree_mb = round(wall, 2), _round(tree)
                    result.peak_process_mb, result.returncode = round(single, 1), code
                    if code != 0:
                        result.error = tail.strip().splitlines()[-1] if tail.strip() else ""
                results.append(result)
    return results


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def ratios(results: list[Measurement]) -> dict[str, dict[str, float]]:
    """dare / icclim ratios of wall time and peak memory per index, when both ran."""
    out: dict[str, dict[str, float]] = {}
    for icclim in (r for r in results if r.case == "icclim" and r.returncode == 0):
        for other in results:
            if (other.index == icclim.index and other.case != "icclim"
                    and other.returncode == 0):
                entry = {"wall": other.wall_s / icclim.wall_s}  # type: ignore[operator]
                if other.peak_tree_mb and icclim.peak_tree_mb:
                    entry["peak_tree_memory"] = other.peak_tree_mb / icclim.peak_tree_mb
                out[f"{icclim.index}: {other.case} / icclim"] = {
                    k: round(v, 2) for k, v in entry.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, help="years of data (default: per index)")
    parser.add_argument("--ny", type=int, help="latitudes (default: per index)")
    parser.add_argument("--nx", type=int, help="longitudes (default: per index)")
    parser.add_argument("--indices", default="SU,TX90p", help="comma-separated icclim names")
    parser.add_argument("--base-period", nargs=2, type=int, default=(1981, 1990),
                        metavar=("FIRST", "LAST"), help="years of the base period")
    parser.add_argument("--data-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "dare_climate_bench",
                        help="where synthetic files are generated and reused")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    size = None
    if any(v is not None for v in (args.years, args.ny, args.nx)):
        size = (args.years or FULL_SIZE[0], args.ny or FULL_SIZE[1], args.nx or FULL_SIZE[2])
    indices = [name.strip() for name in args.indices.split(",") if name.strip()]
    results = run(indices, size, tuple(args.base_period), args.data_dir,
                  verbose=not args.json)
    summary = ratios(results)
    if args.json:
        print(json.dumps({"results": [asdict(r) for r in results], "ratios": summary},
                         indent=2))
    else:
        print(f"{'index':8} {'size':16} {'case':18} {'wall (s)':>9} {'tree MB':>9} "
              f"{'proc MB':>9}")
        for r in results:
            if r.skipped:
                print(f"{r.index:8} {r.size:16} {r.case:18} skipped: {r.skipped}")
                continue
            tree = "-" if r.peak_tree_mb is None else f"{r.peak_tree_mb:.0f}"
            print(f"{r.index:8} {r.size:16} {r.case:18} {r.wall_s:9.2f} {tree:>9} "
                  f"{r.peak_process_mb:9.0f}" + (f"  FAILED ({r.returncode}): {r.error}"
                                                 if r.returncode else ""))
        for key, entry in summary.items():
            print(f"{key}: " + ", ".join(f"{k} x{v}" for k, v in entry.items()))
    return 1 if any(r.returncode for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
