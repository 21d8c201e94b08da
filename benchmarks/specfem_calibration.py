"""Calibration of dare's SPECFEM3D run-time and memory estimate against real runs.

Runs SPECFEM3D Cartesian's three programs (``xmeshfem3D``, ``xgenerate_databases``,
``xspecfem3D``) on a ``DATA`` folder (one of SPECFEM's examples, or the ``DATA/`` dare wrote,
e.g. with ``dare ra simulate --emit-batch slurm``), optionally with another mesh size, NPROC,
NSTEP, DT or attenuation, each MPI rank under ``/usr/bin/time``, and appends one row per run to
a CSV table: the mesh (NEX, NPROC, element count from SPECFEM's own log), NSTEP, the wall time
and the CPU time (user + system, summed over the ranks) of each program, the largest resident
memory of a rank, SPECFEM's own memory estimate, and the load average before and after and the
mean load of the other processes while the solver ran (``load_during``: the 1-minute load
average sampled every 2 s after its first minute, minus the run's own ranks). The machine may
be shared: CPU time per element and step is the figure that travels.

Usage::

    python benchmarks/specfem_calibration.py DATA_DIR --bin .specfem/bin --work /tmp/cal/x \\
        [--nex 48] [--nproc-xi 2] [--nstep 300] [--dt 0.006] [--attenuation false] \\
        [--name socal-nex48] [--csv tests/ra/data/specfem/calibration.csv] \\
        [--mpirun /usr/bin/mpirun.openmpi]

The table in ``tests/ra/data/specfem/calibration.csv`` was measured this way; the test
``tests/ra/test_specfem_estimate.py`` checks that :mod:`dare_cli.ra.simulate.specfem.estimate`
reproduces it within a factor of 2.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from dare_cli.ra.simulate.specfem.mesh import read_mesh_spec, render_mesh_parfile
from dare_cli.ra.simulate.specfem.parfile import fortran_value, read_parfile, render_parfile

PROGRAMS = ("xmeshfem3D", "xgenerate_databases", "xspecfem3D")
COLUMNS = ("name", "nex_xi", "nex_eta", "nz", "ndoublings", "nproc", "nspec", "nstep", "dt",
           "attenuation", "anisotropy", "stations", "mesher_wall_s", "mesher_cpu_s",
           "databases_wall_s", "databases_cpu_s", "solver_wall_s", "solver_cpu_s",
           "solver_max_rss_mb", "specfem_memory_mb", "load_before", "load_after",
           "load_during", "cores", "date")

#: One MPI rank under /usr/bin/time: elapsed, user, system (s), max RSS (KiB) to a file.
WRAPPER = """#!/bin/sh
prog=$(basename "$1")
rank=${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}}
exec /usr/bin/time -f "%e %U %S %M" -o "$TIMING_DIR/$prog.$rank" "$@"
"""


def prepare(data: Path, work: Path, args: argparse.Namespace) -> None:
    """Copy ``data`` to ``work/DATA`` with the requested changes."""
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(data, work / "DATA")
    for path in (work / "DATA").rglob("*"):
        path.chmod(path.stat().st_mode | 0o200)
    (work / "DATA").chmod(0o755)
    (work / "OUTPUT_FILES" / "DATABASES_MPI").mkdir(parents=True)
    mesh_par = work / "DATA" / "meshfem3D_files" / "Mesh_Par_file"
    mesh = read_mesh_spec(mesh_par)
    changes = {}
    if args.nex:
        changes.update(nex_xi=args.nex, nex_eta=args.nex_eta or args.nex)
    if args.nproc_xi:
        changes.update(nproc_xi=args.nproc_xi, nproc_eta=args.nproc_eta or 1)
    if changes:
        mesh = dataclasses.replace(mesh, **changes)
        mesh_par.write_text(render_mesh_parfile(
            mesh_par.read_text(), mesh,
            interfaces_file=read_parfile(mesh_par)["INTERFACES_FILE"]))
    par = work / "DATA" / "Par_file"
    values: dict[str, object] = {"NPROC": mesh.nproc}
    if args.nstep:
        values["NSTEP"] = args.nstep
    if args.dt:
        values["DT"] = args.dt
    if args.attenuation is not None:
        values["ATTENUATION"] = args.attenuation == "true"
    par.write_text(render_parfile(par.read_text(), values))


def load() -> float:
    """One-minute load average."""
    return os.getloadavg()[0]


class LoadSampler:
    """The 1-minute load average every 2 s while a program runs, minus its own ranks."""

    def __init__(self, nproc: int) -> None:
        self.nproc = nproc
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.stop.wait(2.0):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def others(self) -> float:
        """Mean load of the other processes (the samples after the first minute, when the
        1-minute average has taken in the run's own ranks)."""
        settled = self.samples[30:] or self.samples
        if not settled:
            return 0.0
        return max(0.0, sum(settled) / len(settled) - self.nproc)


def run(work: Path, bin_dir: Path, mpirun: str, nproc: int) -> dict[str, float]:
    """Run the three programs; wall and CPU time of each, max RSS of the solver's ranks."""
    timing = work / "timing"
    timing.mkdir()
    wrapper = work / "rank.sh"
    wrapper.write_text(WRAPPER)
    wrapper.chmod(0o755)
    env = dict(os.environ, TIMING_DIR=str(timing), OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    extra = ["--oversubscribe"] if nproc > 2 and "openmpi" in mpirun else []
    export = ["-x", "TIMING_DIR"] if "openmpi" in mpirun else []
    out: dict[str, float] = {}
    for program, key in zip(PROGRAMS, ("mesher", "databases", "solver"), strict=True):
        for attempt in (1, 2):  # a shared machine: another job's clean-up may kill a run
            start = time.perf_counter()
            with (work / f"{program}.stdout").open("w") as log, LoadSampler(nproc) as load:
                code = subprocess.run([mpirun, "-np", str(nproc), *extra, *export,
                                       str(wrapper), str(bin_dir / program)], cwd=work,
                                      env=env, stdout=log, stderr=subprocess.STDOUT,
                                      check=False).returncode
            out[f"{key}_wall_s"] = time.perf_counter() - start
            if code == 0:
                break
            print(f"{program} failed ({code}), attempt {attempt}: see "
                  f"{work / (program + '.stdout')}", file=sys.stderr)
        else:
            sys.exit(f"{program} failed twice")
        if key == "solver":
            out["load_during"] = load.others()
        cpu, rss = 0.0, 0.0
        for path in timing.glob(f"{program}.*"):
            _, user, system, max_rss = path.read_text().split()[-4:]
            cpu += float(user) + float(system)
            rss = max(rss, float(max_rss) / 1024.0)
        out[f"{key}_cpu_s"] = cpu
        if key == "solver":
            out["solver_max_rss_mb"] = rss
    solver_log = (work / "OUTPUT_FILES" / "output_solver.txt").read_text()
    if "End of the simulation" not in solver_log:
        sys.exit(f"the solver did not finish: see {work / 'OUTPUT_FILES'}")
    return out


def log_value(text: str, label: str) -> float:
    """The number SPECFEM printed after ``label`` (the last occurrence)."""
    found = re.findall(re.escape(label) + r"\s*[=:]?\s*([0-9.eE+-]+)", text)
    if not found:
        raise ValueError(f"no {label!r} in the log")
    return float(found[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path, help="a SPECFEM3D DATA folder")
    parser.add_argument("--bin", type=Path, required=True, help="folder of the programs")
    parser.add_argument("--work", type=Path, required=True, help="run folder (replaced)")
    parser.add_argument("--name", default=None)
    parser.add_argument("--nex", type=int)
    parser.add_argument("--nex-eta", type=int)
    parser.add_argument("--nproc-xi", type=int)
    parser.add_argument("--nproc-eta", type=int)
    parser.add_argument("--nstep", type=int)
    parser.add_argument("--dt", type=float)
    parser.add_argument("--attenuation", choices=("true", "false"))
    parser.add_argument("--mpirun", default="/usr/bin/mpirun.openmpi")
    parser.add_argument("--csv", type=Path, default=None, help="append the row to this table")
    args = parser.parse_args()
    prepare(args.data, args.work, args)
    mesh = read_mesh_spec(args.work / "DATA" / "meshfem3D_files" / "Mesh_Par_file")
    par = {k: fortran_value(v) for k, v in read_parfile(args.work / "DATA" / "Par_file").items()}
    before = load()
    measured = run(args.work, args.bin.resolve(), args.mpirun, mesh.nproc)
    after = load()
    databases = (args.work / "OUTPUT_FILES" / "output_generate_databases.txt").read_text()
    stations = sum(1 for line in (args.work / "DATA" / "STATIONS").read_text().splitlines()
                   if line.strip())
    row = {
        "name": args.name or args.work.name, "nex_xi": mesh.nex_xi, "nex_eta": mesh.nex_eta,
        "nz": mesh.nz, "ndoublings": len(mesh.doublings), "nproc": mesh.nproc,
        "nspec": int(log_value(databases, "NSPEC_global_sum")),
        "nstep": par["NSTEP"], "dt": par["DT"],
        "attenuation": str(par["ATTENUATION"]).lower(),
        "anisotropy": str(par["ANISOTROPY"]).lower(), "stations": stations,
        **{key: round(value, 2) for key, value in measured.items()},
        "specfem_memory_mb": round(log_value(databases, "minimum total memory requested :"),
                                   1),
        "load_before": round(before, 2), "load_after": round(after, 2),
        "load_during": round(measured.pop("load_during"), 2),
        "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
    }
    print(", ".join(f"{key}={row[key]}" for key in COLUMNS))
    if args.csv:
        new = not args.csv.exists()
        with args.csv.open("a", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow(row)


if __name__ == "__main__":
    main()
