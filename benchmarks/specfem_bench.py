"""Benchmark: SPECFEM3D's solver natively against the docker backend's compose cluster.

The same mesh and run (SPECFEM's socal1D example, the DATA folder in
tests/ra/data/specfem/socal1D, on 32 x 32 surface elements so that it splits over NPROC 2 =
2 x 1 slices, with ``--nstep`` steps) through
``dare ra simulate --solver specfem --specfem-data DATA``:

* ``native``: the local backend with the native build (``make specfem``: ``.specfem/bin``);
* ``docker, 1 worker``: the compose cluster, one head and one worker container with 2 MPI
  slots (shared memory between the ranks);
* ``docker, 2 workers``: one head and two worker containers of 1 slot each (MPI over TCP
  between containers).

The figure compared is SPECFEM's own: the mean elapsed time per time step of xspecfem3D
(``Mean elapsed time per time step`` of its last report in ``output_solver.txt``), which leaves
out meshing, databases and the cluster's set-up; the wall time of the whole stage (cluster up,
copies, three programs, cluster down) is printed beside it. The image is built first if it is
missing (not timed). Needs a Docker engine (``containers/with-dockerd.sh python
benchmarks/specfem_bench.py``).

Usage::

    python benchmarks/specfem_bench.py [--nstep 840] [--repeat 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SOCAL = ROOT / "tests" / "ra" / "data" / "specfem" / "socal1D"
PER_STEP = re.compile(r"Mean elapsed time per time step in seconds\s*=\s*(\S+)")


def socal_data(destination: Path, nstep: int, nproc_xi: int = 2, nproc_eta: int = 1,
               nex: int = 32) -> Path:
    """socal1D's DATA on ``nex`` surface elements (its 24, with two doublings, split over 1 or
    3 ranks per direction only), ``nstep`` steps, nproc_xi x nproc_eta ranks."""
    data = destination / "DATA"
    shutil.copytree(SOCAL / "DATA", data)
    par, mesh = data / "Par_file", data / "meshfem3D_files" / "Mesh_Par_file"
    text = re.sub(r"(?m)^(NSTEP\s*=\s*)\d+", rf"\g<1>{nstep}", par.read_text())
    par.write_text(re.sub(r"(?m)^(NPROC\s*=\s*)\d+", rf"\g<1>{nproc_xi * nproc_eta}", text))
    text = re.sub(r"(?m)^(NPROC_XI\s*=\s*)\d+", rf"\g<1>{nproc_xi}", mesh.read_text())
    text = re.sub(r"(?m)^(NPROC_ETA\s*=\s*)\d+", rf"\g<1>{nproc_eta}", text)
    text = re.sub(r"(?m)^(NEX_(?:XI|ETA)\s*=\s*)\d+", rf"\g<1>{nex}", text)
    mesh.write_text(re.sub(r"(?m)^1(\s+)24(\s+)1(\s+)24(\s)",
                           rf"1\g<1>{nex}\g<2>1\g<3>{nex}\g<4>", text))
    return data


def simulate(folder: Path, nstep: int, backend: str, workers: int = 0) -> dict[str, float]:
    """One run of the simulate stage; SPECFEM's time per step and the stage's wall time."""
    data = socal_data(folder, nstep)
    config = folder / "specfem.toml"
    text = '[simulate]\nsolver = "specfem"\n'
    if backend == "docker":
        text += f"[simulate.specfem]\nworkers = {workers}\n"
    config.write_text(text)
    argv = [sys.executable, "-m", "dare_cli", "ra", "simulate", str(config), "--out",
            str(folder / "run"), "--backend", backend, "--specfem-data", str(data)]
    if backend == "local":
        argv += ["--specfem-bin",
                 os.environ.get("DARE_SPECFEM_BIN") or str(ROOT / ".specfem" / "bin")]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{backend} run failed:\n{done.stderr[-3000:]}")
    log = (folder / "run" / "simulate" / "specfem" / "OUTPUT_FILES" /
           "output_solver.txt").read_text()
    per_step = float(PER_STEP.findall(log)[-1].replace("D", "E"))
    return {"per_step_s": per_step, "wall_s": wall}


def ensure_image() -> None:
    import docker

    from dare_cli import images

    client = docker.from_env()
    tag = images.IMAGES["specfem"].tag
    if not client.images.list(name=tag):
        print(f"building {tag} (not timed)", file=sys.stderr)
        images.build(client, "specfem")


def main() -> None:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nstep", type=int, default=840)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    ensure_image()
    cases: list[tuple[str, str, int]] = [("native", "local", 0),
                                         ("docker, 1 worker", "docker", 1),
                                         ("docker, 2 workers", "docker", 2)]
    results: dict[str, dict[str, Any]] = {}
    for name, backend, workers in cases:
        runs = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="specfem-bench-") as tmp:
                runs.append(simulate(Path(tmp), args.nstep, backend, workers))
        results[name] = {key: statistics.median(run[key] for run in runs)
                         for key in ("per_step_s", "wall_s")}
    native = results["native"]
    for result in results.values():
        result["per_step_ratio"] = result["per_step_s"] / native["per_step_s"]
        result["wall_ratio"] = result["wall_s"] / native["wall_s"]
    if args.json:
        print(json.dumps({"nstep": args.nstep, "nproc": 2, "results": results}, indent=2))
        return
    print(f"SPECFEM3D socal1D (32 x 32 elements), NPROC 2, {args.nstep} steps "
          f"(median of {args.repeat})")
    print(f"{'case':<20}{'s/step':>10}{'x native':>10}{'stage wall s':>14}{'x native':>10}")
    for name, result in results.items():
        print(f"{name:<20}{result['per_step_s']:>10.4f}{result['per_step_ratio']:>10.2f}"
              f"{result['wall_s']:>14.1f}{result['wall_ratio']:>10.2f}")


if __name__ == "__main__":
    main()
