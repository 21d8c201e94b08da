"""TEST DOUBLES standing in for SPECFEM3D's xmeshfem3D, xgenerate_databases and xspecfem3D.

They are not SPECFEM3D and compute nothing. Started by a real MPI launcher (``mpiexec -np N``),
each rank checks what the real program would need and fails the way it would (a message in
``OUTPUT_FILES/error_message*.txt``, a non-zero exit):

* the launcher's world size (PMI_SIZE, OMPI_COMM_WORLD_SIZE or SLURM_NTASKS) equals the
  Par_file's NPROC, and NPROC = NPROC_XI x NPROC_ETA of the Mesh_Par_file;
* xmeshfem3D: DATA/Par_file, DATA/meshfem3D_files/Mesh_Par_file, its interfaces file and the
  files that one names exist; it writes ``proc<rank>_Database`` per rank;
* xgenerate_databases: every rank's ``proc*_Database`` exists; it writes
  ``proc<rank>_external_mesh.bin``;
* xspecfem3D: every rank's mesh file exists; DATA/CMTSOLUTION has its 13 lines with the six
  moment-tensor components; every DATA/STATIONS line has 6 fields with numeric coordinates.
  Rank 0 then writes, for each station of STATIONS found in the archive named by
  ``SPECFEM_DOUBLE_SEISMOGRAMS`` (a tar of real SPECFEM3D ``NET.STA.CHA.semd`` files), those
  real files into OUTPUT_FILES, unchanged.

Each program logs to SPECFEM's OUTPUT_FILES/output_*.txt (rank 0), as SPECFEM does.
``SPECFEM_DOUBLE_FAIL=<program>`` makes that program fail after writing part of its log;
``SPECFEM_DOUBLE_HANG=<program>`` makes each of its ranks write its pid into
``OUTPUT_FILES/hung.<rank>`` and wait for days (a solver still running when dare is stopped).
"""

from __future__ import annotations

import os
import re
import sys
import tarfile
import time
from pathlib import Path

LOGS = {"xmeshfem3D": "output_meshfem3D.txt",
        "xgenerate_databases": "output_generate_databases.txt",
        "xspecfem3D": "output_solver.txt"}


class Failure(Exception):
    """What the real program would stop on."""


def world() -> tuple[int, int]:
    for size, rank in (("PMI_SIZE", "PMI_RANK"),
                       ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),
                       ("SLURM_NTASKS", "SLURM_PROCID")):
        if size in os.environ:
            return int(os.environ[size]), int(os.environ.get(rank, "0"))
    raise Failure("not started by an MPI launcher (no PMI_SIZE/OMPI_COMM_WORLD_SIZE)")


def parfile(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise Failure(f"cannot open {path}")
    values = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^\s*([A-Za-z_]\w*)\s*=\s*([^#]*?)\s*(#.*)?$", line)
        if match and not line.lstrip().startswith("#"):
            values[match[1]] = match[2]
    return values


def check_common(rank: int, size: int) -> dict[str, str]:
    par = parfile(Path("DATA/Par_file"))
    mesh = parfile(Path("DATA/meshfem3D_files/Mesh_Par_file"))
    nproc = int(par["NPROC"])
    if nproc != size:
        raise Failure(f"NPROC = {nproc} in DATA/Par_file but the run has {size} MPI ranks")
    split = int(mesh["NPROC_XI"]) * int(mesh["NPROC_ETA"])
    if split != nproc:
        raise Failure(f"NPROC_XI x NPROC_ETA = {split} differs from NPROC = {nproc}")
    if not Path(par["LOCAL_PATH"]).is_dir():
        raise Failure(f"LOCAL_PATH {par['LOCAL_PATH']} does not exist")
    return par


def mesher(rank: int, size: int, par: dict[str, str], log: list[str]) -> None:
    folder = Path("DATA/meshfem3D_files")
    mesh = parfile(folder / "Mesh_Par_file")
    interfaces = folder / mesh["INTERFACES_FILE"]
    if not interfaces.is_file():
        raise Failure(f"cannot open interfaces file {interfaces}")
    names = [line.split()[0] for line in interfaces.read_text().splitlines()
             if line.strip().endswith(".dat") and not line.lstrip().startswith("#")]
    for name in names:
        if not (folder / name).is_file():
            raise Failure(f"cannot open interface file {folder / name}")
    log += [f"  NEX_XI = {mesh['NEX_XI']}", f"  NEX_ETA = {mesh['NEX_ETA']}",
            f"  {len(names)} interfaces"]
    Path(par["LOCAL_PATH"], f"proc{rank:06d}_Database").write_text("test double\n")


def databases(rank: int, size: int, par: dict[str, str], log: list[str]) -> None:
    for other in range(size):
        if not Path(par["LOCAL_PATH"], f"proc{other:06d}_Database").is_file():
            raise Failure(f"no mesh database of slice {other}: run xmeshfem3D first")
    Path(par["LOCAL_PATH"], f"proc{rank:06d}_external_mesh.bin").write_text("test double\n")
    log.append(f"  {size} slices read")


def solver(rank: int, size: int, par: dict[str, str], log: list[str]) -> None:
    for other in range(size):
        if not Path(par["LOCAL_PATH"], f"proc{other:06d}_external_mesh.bin").is_file():
            raise Failure(f"no external mesh of slice {other}: run xgenerate_databases first")
    cmt = Path("DATA/CMTSOLUTION").read_text().splitlines()
    if len(cmt) < 13:
        raise Failure(f"DATA/CMTSOLUTION has {len(cmt)} lines, not 13")
    for line, key in zip(cmt[7:13], ("Mrr", "Mtt", "Mpp", "Mrt", "Mrp", "Mtp"), strict=True):
        name, value = line.split(":")
        if name.strip() != key:
            raise Failure(f"DATA/CMTSOLUTION: expected {key}, found {line!r}")
        float(value)
    stations = []
    for number, line in enumerate(Path("DATA/STATIONS").read_text().splitlines(), 1):
        fields = line.split()
        if len(fields) != 6:
            raise Failure(f"DATA/STATIONS line {number}: {len(fields)} fields, not 6")
        [float(v) for v in fields[2:]]
        stations.append(f"{fields[1]}.{fields[0]}")
    log.append(f"  {len(stations)} stations, NSTEP = {par['NSTEP']}, DT = {par['DT']}")
    for step in range(0, int(par["NSTEP"]), max(1, int(par["NSTEP"]) // 4)):
        log.append(f"  Time step # {step + 1}")
    if rank != 0:
        return
    archive_path = os.environ.get("SPECFEM_DOUBLE_SEISMOGRAMS")
    if not archive_path:
        raise Failure("SPECFEM_DOUBLE_SEISMOGRAMS is not set (test double)")
    written = 0
    with tarfile.open(archive_path) as archive:
        for member in archive.getmembers():
            name = Path(member.name).name
            if ".".join(name.split(".")[:2]) in stations and name.endswith(".semd"):
                source = archive.extractfile(member)
                assert source is not None
                Path("OUTPUT_FILES", name).write_bytes(source.read())
                written += 1
    log.append(f"  {written} seismograms written")
    log.append("End of the simulation")  # what SPECFEM3D's solver prints when it ends normally


def main(program: str) -> int:
    log_path = Path("OUTPUT_FILES") / LOGS[program]
    log = [f"TEST DOUBLE of {program} (not SPECFEM3D)"]
    rank = 0
    try:
        size, rank = world()
        par = check_common(rank, size)
        if os.environ.get("SPECFEM_DOUBLE_HANG") == program:
            Path("OUTPUT_FILES", f"hung.{rank}").write_text(str(os.getpid()))
            time.sleep(1e6)
        if os.environ.get("SPECFEM_DOUBLE_FAIL") == program:
            log.append("  half-way through")
            raise Failure(f"{program} failed on purpose (SPECFEM_DOUBLE_FAIL)")
        {"xmeshfem3D": mesher, "xgenerate_databases": databases,
         "xspecfem3D": solver}[program](rank, size, par, log)
        log.append("End of the program")
        status = 0
    except (Failure, KeyError, ValueError, OSError) as error:
        Path("OUTPUT_FILES", f"error_message{rank:06d}.txt").write_text(f"Error: {error}\n")
        print(f"Error detected, aborting MPI... proc {rank}: {error}", file=sys.stderr)
        status = 30
    if rank == 0:
        with log_path.open("a") as handle:
            for line in log:
                handle.write(line + "\n")
                handle.flush()
                time.sleep(0.01)
    print(f"{program} rank {rank}: {'ok' if status == 0 else 'failed'}")
    return status
