"""The simulate stage with SPECFEM3D: one run for every station (:mod:`dare_cli.ra.simulate`).

Three ways to the seismograms: dare writes the inputs from the downloaded event and stations
(the default); ``[simulate.specfem] data_dir`` runs a hand-made ``DATA`` folder as it is (its
source and receivers); ``collect_from`` only collects the seismograms of a run made elsewhere.
SPECFEM3D's modules are imported when a run needs them, not when dare starts.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dare_cli import __version__
from dare_cli.ra.config import RAConfig
from dare_cli.ra.errors import ConfigError, RAError
from dare_cli.ra.names import station_path
from dare_cli.ra.stages.common import (
    SYNTHETICS_FILE,
    read_event,
    read_inventories,
    stations_in,
    write_json,
    write_stream,
)

__all__ = [
    "KUBERNETES_RUNS_NOTHING",
    "plan_specfem",
    "prepare_specfem",
    "simulate_specfem",
    "specfem_backend",
    "specfem_check_lines",
]

#: Why the ``kubernetes`` backend cannot run from dare, and what to do instead.
KUBERNETES_RUNS_NOTHING = (
    "[simulate.specfem] backend 'kubernetes' runs nothing from dare (it reaches no cluster): "
    "write the run's manifests with 'dare ra simulate --solver specfem --backend kubernetes "
    "--emit-manifests DIR', apply them with kubectl (DIR/README.md), then collect the "
    "seismograms with 'dare ra simulate --collect DIR/specfem/OUTPUT_FILES'")


def specfem_backend(config: RAConfig) -> Any:
    """The SPECFEM3D backend configured in ``[simulate.specfem]``."""
    from dare_cli.ra.simulate.specfem.backends import DockerBackend, LocalBackend

    specfem = config.specfem
    if specfem.backend == "docker":
        return DockerBackend(specfem)
    if specfem.backend == "kubernetes":
        raise ConfigError(KUBERNETES_RUNS_NOTHING)
    if not specfem.bin_dir:
        raise RAError("[simulate.specfem] bin_dir (or --specfem-bin DIR) is needed by the local "
                      "backend: the folder of xmeshfem3D, xgenerate_databases and xspecfem3D")
    return LocalBackend(specfem.bin_dir, launcher=specfem.launcher,
                        launcher_args=specfem.launcher_args)


def plan_specfem(config: RAConfig) -> Any | None:
    """The SPECFEM3D run the simulate stage would make, prepared in a temporary folder.

    For ``--dry-run``: the mesh, the set-up checks and the run-time estimate, from the
    download stage's event and stations in ``config.out`` (None if it has not run), or from
    ``[simulate.specfem] data_dir``. Nothing in the run folder is written.

    Raises
    ------
    ConfigError
        A check failed (the message lists each).
    """
    import tempfile

    from dare_cli.ra.simulate.specfem.backends import prepare_data_dir

    with tempfile.TemporaryDirectory(prefix="dare-plan-") as folder:
        work = Path(folder) / "specfem"
        if config.specfem.data_dir:
            return prepare_data_dir(work, config.specfem.data_dir, config.specfem)
        download_dir = Path(config.out) / "download"
        if not (download_dir / "event.xml").is_file():
            return None
        return prepare_specfem(download_dir, work, config)


def prepare_specfem(download_dir: Path, work_dir: Path, config: RAConfig) -> Any:
    """Write and check the inputs of the run's SPECFEM3D simulation in ``work_dir``."""
    from dare_cli.ra.simulate.specfem.backends import prepare_run, source_solution

    event = read_event(download_dir)
    source = config.source
    cmt = source_solution(event, strike=source.strike, dip=source.dip, rake=source.rake,
                          magnitude=source.magnitude, use_event_tensor=source.use_event_tensor)
    return prepare_run(work_dir, cmt=cmt, inventory=read_inventories(download_dir),
                       config=config.specfem, duration=config.simulate.duration)


def specfem_check_lines(run: Any) -> list[str]:
    """Log lines of a prepared SPECFEM3D run's set-up checks and its cost estimate."""
    lines = [f"SPECFEM3D warning ({finding.check}): {finding.message}"
             if finding.level == "warning" else
             f"SPECFEM3D check {finding.check}: {finding.level}: {finding.message}"
             for finding in run.findings]
    if run.estimate is not None:
        lines.append(f"SPECFEM3D estimate: {run.estimate.describe()}")
    return lines


@dataclass
class Seismograms:
    """Where a SPECFEM3D run left its seismograms, and what to record about them.

    Attributes
    ----------
    stations
        ``NET.STA`` of the receivers to collect.
    output_dir
        SPECFEM3D's ``OUTPUT_FILES``.
    origin_time
        The start of SPECFEM's time axis.
    notes
        Provenance lines for ``stats.processing``.
    backend
        The backend that ran SPECFEM3D, or ``"collected"``.
    run
        The prepared run (mesh, checks, estimate); ``None`` for collected seismograms.
    rejected
        Stations refused before the run (outside a hand-made mesh).
    """

    stations: list[str]
    output_dir: Path
    origin_time: Any
    notes: list[str]
    backend: str
    run: Any = None
    rejected: list[dict[str, Any]] = field(default_factory=list)


def collected_seismograms(download_dir: Path, config: RAConfig) -> Seismograms:
    """The seismograms of a run made elsewhere (``[simulate.specfem] collect_from``)."""
    from dare_cli.ra.simulate.specfem.cmtsolution import read_cmtsolution, simulation_origin_time

    stations = stations_in(download_dir / "stations")
    event = read_event(download_dir)
    origin_time = (event.preferred_origin() or event.origins[0]).time
    output_dir = Path(str(config.specfem.collect_from))
    if not output_dir.is_dir():
        raise RAError(f"[simulate.specfem] collect_from: no folder {output_dir}")
    notes = [f"dare {__version__}: SPECFEM3D Cartesian synthetics collected from "
             f"{output_dir}, displacement in m"]
    if (output_dir.parent / "DATA" / "CMTSOLUTION").is_file():
        origin_time = simulation_origin_time(
            read_cmtsolution(output_dir.parent / "DATA" / "CMTSOLUTION"))
    return Seismograms(stations, output_dir, origin_time, notes, "collected")


def _prepared_run(download_dir: Path, work_dir: Path, config: RAConfig,
                  log: Callable[[str], None]) -> tuple[Any, list[str], list[dict[str, Any]]]:
    """The run prepared in ``work_dir``, its stations, and the stations outside its mesh."""
    from dare_cli.ra.simulate.specfem.backends import prepare_data_dir

    specfem = config.specfem
    rejected: list[dict[str, Any]] = []
    if not specfem.data_dir:
        run = prepare_specfem(download_dir, work_dir, config)
        for note in run.notes:
            log(f"SPECFEM3D mesh: {note}")
        return run, stations_in(download_dir / "stations"), rejected
    run = prepare_data_dir(work_dir, specfem.data_dir, specfem)
    for line, where in run.outside:
        rejected.append({"station": f"{line.network}.{line.station}",
                         "stage": "simulate", "category": "quality",
                         "reason": f"outside the SPECFEM3D mesh ({where})"})
    outside = {(line.network, line.station) for line, _ in run.outside}
    stations = [f"{line.network}.{line.station}" for line in run.stations
                if (line.network, line.station) not in outside]
    for note in run.notes:
        log(f"SPECFEM3D: {note}")
    return run, stations, rejected


def run_specfem(download_dir: Path, work_dir: Path, config: RAConfig,
                log: Callable[[str], None]) -> Seismograms:
    """Prepare SPECFEM3D's inputs in ``work_dir`` and run it on the configured backend."""
    from dare_cli.ra.simulate.specfem.backends import provenance
    from dare_cli.ra.simulate.specfem.cmtsolution import simulation_origin_time

    run, stations, rejected = _prepared_run(download_dir, work_dir, config, log)
    backend = specfem_backend(config)
    mesh = (f"mesh NEX {run.mesh.nex_xi}x{run.mesh.nex_eta}" if run.mesh is not None
            else "hand-made mesh")
    log(f"SPECFEM3D: {len(stations)} stations, NPROC {run.nproc}, NSTEP "
        f"{run.par_values['NSTEP']}, DT {run.par_values['DT']} s, {mesh} "
        f"({backend.name} backend)")
    for text in specfem_check_lines(run):
        log(text)
    backend.run(run.work_dir, run.nproc, log)
    # SPECFEM's time axis starts at the CMTSOLUTION's origin plus its (smallest) shift.
    return Seismograms(stations, run.output_dir, simulation_origin_time(run.cmt),
                       provenance(run, backend.name), backend.name, run, rejected)


def simulate_specfem(
    download_dir: Path, out_dir: Path, config: RAConfig, *,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """One SPECFEM3D run for every station; per-station miniSEED like the embedded solver's.

    Three ways: dare writes the inputs from the downloaded event and stations (the default);
    ``[simulate.specfem] data_dir`` runs a hand-made ``DATA`` folder as it is (its source and
    receivers; the download stage is not needed); ``collect_from`` only collects the
    seismograms of a run made elsewhere. The run's folder is ``out_dir/specfem`` (inside the
    stage's temporary folder, so a failed run leaves nothing behind); after success it keeps
    ``DATA/`` and SPECFEM's logs and seismograms, and drops ``OUTPUT_FILES/DATABASES_MPI``
    unless ``keep_databases``.
    """
    from dare_cli.ra.simulate.specfem.backends import collect_seismograms

    log = log or (lambda line: None)
    work_dir = out_dir / "specfem"
    found = (collected_seismograms(download_dir, config) if config.specfem.collect_from
             else run_specfem(download_dir, work_dir, config, log))
    streams, missing = collect_seismograms(found.output_dir, found.origin_time, found.stations,
                                           processing=found.notes)
    for station, stream in streams.items():
        write_stream(station_path(out_dir, station, ".mseed"), stream)
    band = [0.0, _highest_frequency(found)]
    write_json(out_dir / SYNTHETICS_FILE, {"solver": "specfem", "band_hz": band,
                                           "quantity": "DISP"})
    if not config.specfem.keep_databases:
        shutil.rmtree(work_dir / "OUTPUT_FILES" / "DATABASES_MPI", ignore_errors=True)
    run = found.run
    return {
        "processed": sorted(streams),
        "rejected": found.rejected + [{"station": s, "stage": "simulate",
                                       "reason": f"SPECFEM3D wrote no seismogram for {s}"}
                                      for s in missing],
        "flags": [],
        "solver": "specfem",
        "backend": found.backend,
        "band_hz": band,
        "checks": [finding.as_dict() for finding in run.findings] if run is not None else [],
        "estimate": run.estimate.as_dict() if run is not None and run.estimate else None,
    }


def _highest_frequency(found: Seismograms) -> float | None:
    """1 / the shortest period resolved: SPECFEM's own figure for its mesh, else dare's."""
    min_period = _resolved_period(found.output_dir)
    if min_period is None and found.run is not None and found.run.resolution is not None:
        min_period = found.run.resolution.min_period
    return 1.0 / min_period if min_period else None


def _resolved_period(output_dir: Path) -> float | None:
    """The shortest period a SPECFEM3D mesh resolves, from xgenerate_databases' log."""
    log = output_dir / "output_generate_databases.txt"
    try:
        found = re.search(r"Minimum period resolved\s*=\s*([0-9.eE+-]+)", log.read_text())
    except OSError:
        return None
    return float(found.group(1)) if found else None
