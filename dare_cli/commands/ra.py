"""``dare ra``: the Rapid Assessment of an earthquake, whole (``run``) or stage by stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from dare_cli.context import (
    EXIT_FAILED,
    EXIT_USAGE,
    CLIState,
    exit_on_error,
    get_state,
    report_error,
)
from dare_cli.errors import DareUsageError

app = typer.Typer(help="Rapid Assessment of an earthquake: observed vs simulated ground motion.",
                  no_args_is_help=True)

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "ra" / "examples"

ConfigArgument = Annotated[
    Path | None,
    typer.Argument(metavar="[CONFIG]", help="TOML configuration of the run.", show_default=False),
]
ExampleOption = Annotated[
    str | None,
    typer.Option("--example", metavar="NAME",
                 help="Run a bundled example instead of CONFIG (see 'dare ra examples')."),
]
OutOption = Annotated[
    Path | None, typer.Option("--out", "-o", help="Run directory (default: [run] out).")
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Redo stages even if current; also run in an --out folder "
                                       "dare did not make (only dare's own files are replaced).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
StageMappingOption = Annotated[
    str | None,
    typer.Option("--mapping", "-m", metavar="NAME[:N]",
                 help="Mapping (and workers) of this stage (simulate: embedded solver only)."),
]
WorkersOption = Annotated[
    int | None,
    typer.Option("--workers", "-n", min=1,
                 help="Worker processes (the N of --mapping NAME:N; alone: on the configured "
                      "mapping)."),
]


def examples() -> dict[str, Path]:
    """Bundled examples: ``{name: config file}``."""
    return {folder.name: config for folder in sorted(EXAMPLES_DIR.iterdir())
            if folder.is_dir() and (config := folder / f"{folder.name}.toml").exists()}


def _load(config: Path | None, example: str | None, out: Path | None,
          mappings: Any = None, stages: list[str] | None = None) -> Any:
    """The configuration, with ``--out`` and the parsed ``--mapping`` values over the file's.

    ``mappings`` is an :class:`engine.pipeline.StageMappings`, applied to ``stages`` (default
    every stage).
    """
    from dare_cli.ra.config import STAGES, load_config
    from dare_cli.ra.errors import ConfigError

    if (config is None) == (example is None):
        raise DareUsageError("give a CONFIG file or --example NAME (one of them)")
    if example is not None:
        found = examples()
        if example not in found:
            raise DareUsageError(f"unknown example {example!r}; examples: {', '.join(found)}")
        config = found[example]
    try:
        loaded = load_config(config)
    except ConfigError as error:
        raise DareUsageError(str(error)) from error
    chosen = (mappings.apply(loaded.mappings, stages or list(STAGES)) if mappings is not None
              else None)
    loaded = loaded.with_overrides(out=out, mappings=chosen)
    _check_mappings(dict(loaded.mappings))
    return loaded


def _parse_mappings(values: list[str] | None, workers: int | None = None,
                    stages: list[str] | None = None) -> Any:
    """``--mapping NAME[:N]`` / ``STAGE=NAME[:N]`` values and ``-n``: a ``StageMappings``.

    ``stages`` limits the stages that may be named (a stage command: its own).
    """
    from dare_cli.ra.config import STAGES
    from engine.pipeline import MappingSpecError, parse_stage_mappings

    try:
        parsed = parse_stage_mappings(values or [], stages or list(STAGES), workers=workers)
    except MappingSpecError as error:
        raise DareUsageError(str(error)) from error
    _check_mappings({**parsed.stages, **({"*": parsed.every} if parsed.every else {})})
    return parsed


def _check_mappings(mappings: dict[str, tuple[str, int | None]]) -> None:
    from engine.mappings import get_mapping

    for name in {name for name, _ in mappings.values()}:
        get_mapping(name)  # MappingNotFound lists the installed ones


def _observers(state: CLIState) -> Any:
    """The stage observer of a run: a line per stage (why it runs or was skipped, how long)."""
    from dare_cli.progress import RunReporter
    from engine.pipeline import StageObserver

    class StageLines(StageObserver):
        def __call__(self, stage: Any) -> list[RunReporter]:
            return [RunReporter(state.stderr, live=state.show_progress)]

        def stage_started(self, stage: Any, mapping: str, workers: int | None,
                          reason: str) -> None:
            if not state.quiet:
                count = "" if workers is None else f", {workers} workers"
                state.stderr.print(f"stage {stage.name}: running on {mapping}{count} ({reason})",
                                   style="bold", markup=False, highlight=False)

        def stage_finished(self, report: Any) -> None:
            if state.quiet or report.status == "failed":  # failures: the error line at the end
                return
            state.stderr.print(report.describe(), markup=False, highlight=False,
                               style="dim" if report.status == "skipped" else None)

    return StageLines()


#: Log lines of the simulate stage always shown (unless -q): the SPECFEM3D set-up's warnings
#: and its run-time estimate.
KEPT_LOG_LINES = ("SPECFEM3D warning", "SPECFEM3D estimate")


class _SolverLog:
    """Lines of external programs (SPECFEM3D): all of them with -v, else a live last line."""

    def __init__(self, state: CLIState) -> None:
        self.state = state
        self.status: Any = None

    def __call__(self, line: str) -> None:
        if self.state.quiet:
            return
        if line.startswith(KEPT_LOG_LINES) and not self.state.verbose:
            self.state.stderr.print(line, markup=False, highlight=False)
            return
        if self.state.verbose:
            self.state.stderr.print(line, style="dim", markup=False, highlight=False)
        elif self.state.show_progress:
            text = line if len(line) <= 100 else line[:97] + "..."
            if self.status is None:
                self.status = self.state.stderr.status(text)
                self.status.start()
            else:
                self.status.update(text)
        elif line.startswith("$ "):
            self.state.stderr.print(line, markup=False, highlight=False)

    def close(self) -> None:
        """Remove the live line."""
        if self.status is not None:
            self.status.stop()
            self.status = None


def _stations_table(report: dict[str, Any], run_dir: Path) -> Any:
    from rich.table import Table

    from dare_cli.ra.outputs import pga_summary

    table = Table(title=f"Rapid Assessment: {run_dir}")
    for column in ("station", "status", "obs PGA %g", "syn PGA %g", "misfit PGA", "notes"):
        table.add_column(column, justify="right" if "PGA" in column else "left")
    pgm_file = run_dir / "pgm" / "pgm.json"
    peaks = pga_summary(json.loads(pgm_file.read_text())) if pgm_file.exists() else {}
    for station, entry in report["stations"].items():
        values = peaks.get(station, {})
        flags = entry.get("flags", [])
        notes = entry.get("reason") or (
            flags[-1] + (f" (+{len(flags) - 1} more in report.json)" if len(flags) > 1 else "")
            if flags else "")
        if entry.get("stage") and entry.get("status") == "rejected":
            notes = f"{entry['stage']}: {notes}"
        table.add_row(station, entry.get("status", "?"),
                      *(f"{values[k]:.3g}" if k in values else "-"
                        for k in ("observed", "synthetic", "misfit")), notes)
    return table


def _finish(state: CLIState, report: dict[str, Any], run_dir: Path, json_output: bool) -> None:
    failed = report.pop("failed_stage", None)
    if json_output:
        typer.echo(json.dumps(report, indent=2, default=str))
    elif not state.quiet:
        typer.echo(f"run directory: {run_dir}")
        outputs = report.get("outputs", {})
        for name in ("report.html", "report.json", "pgm.csv", "stationlist.json",
                     "pga_map.png", "misfit_map.png", "residuals.png"):
            if (run_dir / name).exists():
                earlier = name in outputs and not outputs[name].get("this_run")
                typer.echo(f"  {run_dir / name}" + ("  (from an earlier run, still current)"
                                                     if earlier else ""))
    if not json_output and not state.quiet:
        state.stderr.print(_stations_table(report, run_dir))
    if failed is not None:
        from dare_cli.ra.errors import ConfigError

        report_error(state, f"stage {failed.name} failed: {failed.error}", failed.exception)
        # a configuration the stage found unusable (e.g. an implausible event): a usage error
        raise typer.Exit(EXIT_USAGE if isinstance(failed.exception, ConfigError)
                         else EXIT_FAILED)
    stations = report["stations"]
    rejected = [s for s, e in stations.items() if e.get("status") == "rejected"]
    errors = [s for s in rejected if stations[s].get("category") != "quality"]
    where = f"(reasons in {run_dir / 'report.json'})"
    if stations and len(rejected) == len(stations):
        report_error(state, f"every station was rejected: {', '.join(rejected)} {where}")
        raise typer.Exit(EXIT_FAILED)
    if errors:
        report_error(state, f"{len(errors)} station(s) rejected for bad input: "
                            f"{', '.join(errors)} {where}")
        raise typer.Exit(EXIT_FAILED)
    if rejected and not state.quiet:
        state.stderr.print(f"{len(rejected)} station(s) failed quality checks: "
                           f"{', '.join(rejected)} {where}", markup=False, highlight=False)


def _run_assessment(config: Any, **options: Any) -> dict[str, Any]:
    """``run_assessment``, its refusals (a foreign --out, an implausible event) as usage errors."""
    from dare_cli.ra.errors import ConfigError
    from dare_cli.ra.pipeline import run_assessment

    try:
        return run_assessment(config, **options)
    except ConfigError as error:
        raise DareUsageError(str(error)) from error


def _dry_run(state: CLIState, config: Any, only: list[str] | None, force: bool = False
             ) -> None:
    from rich.table import Table

    from dare_cli.ra.errors import ConfigError
    from dare_cli.ra.pipeline import build_pipeline
    from dare_cli.ra.runfolder import RA_FILES, RA_FOLDERS, check_run_folder

    pipeline = build_pipeline(config)
    run_dir = Path(config.out)
    try:
        check_run_folder(run_dir, stages=pipeline.names, files=RA_FILES, folders=RA_FOLDERS,
                         force=force)
    except ConfigError as error:
        raise DareUsageError(str(error)) from error
    table = Table(title=f"plan of {run_dir}")
    for column in ("stage", "mapping", "workers", "status"):
        table.add_column(column)
    for stage in pipeline.stages:
        if only is not None and stage.name not in only:
            continue
        mapping, workers = config.mappings.get(stage.name, ("simple", None))
        status = "current (skip)" if pipeline.is_current(stage, run_dir) else "to run"
        table.add_row(stage.name, mapping, str(workers or "auto"), status)
    typer.echo(f"config: {config.source_file}")
    typer.echo(f"run directory: {run_dir}")
    download = config.download
    typer.echo(f"event: {download.event or download.quakeml or download.event_id}")
    typer.echo(f"waveforms: {config.download.source} {config.download.directory or ''}")
    state.stderr.print(table)


ResolvePeriodOption = Annotated[
    float | None,
    typer.Option("--resolve-period", metavar="SECONDS",
                 help="SPECFEM3D: size the mesh's elements to resolve this period "
                      "([simulate.specfem] resolve_period)."),
]
VelocityModelOption = Annotated[
    Path | None,
    typer.Option("--velocity-model", metavar="FILE",
                 help="SPECFEM3D: a 1D layered model table (depth vp vs rho [qp qs]) instead "
                      "of [simulate.specfem] layers (model_file)."),
]


def _mesh_overrides(resolve_period: float | None, velocity_model: Path | None
                    ) -> dict[str, Any]:
    """``[simulate.specfem]`` keys of --resolve-period and --velocity-model."""
    overrides: dict[str, Any] = {}
    if resolve_period is not None:
        overrides["resolve_period"] = resolve_period
        overrides["element_size_km"] = None  # the period sizes the elements
    if velocity_model is not None:
        overrides["model_file"] = str(velocity_model.expanduser().resolve())
        overrides["layers"] = None  # the file replaces the configured layers
    return overrides


def _specfem_plan_lines(config: Any) -> list[str]:
    """Mesh, set-up checks and the run-time estimate of a SPECFEM3D simulate stage."""
    import os

    from dare_cli.ra.errors import ConfigError, RAError
    from dare_cli.ra.stages.specfem import plan_specfem, specfem_check_lines

    try:
        run = plan_specfem(config)
    except ConfigError as error:
        raise DareUsageError(str(error)) from error
    except RAError as error:
        return [f"estimate: not available ({error})"]
    if run is None:
        return ["estimate: needs the event and stations of the download stage: run 'dare ra "
                f"download' with --out {config.out} first"]
    lines = []
    if run.mesh is not None:
        mesh = run.mesh
        lines.append(f"mesh: NEX {mesh.nex_xi} x {mesh.nex_eta}, {mesh.nz} element layers, "
                     f"{len(mesh.layers)} layers, depth {mesh.depth_km:g} km, NPROC "
                     f"{mesh.nproc_xi} x {mesh.nproc_eta}; NSTEP {run.par_values['NSTEP']}, "
                     f"DT {run.par_values['DT']} s")
    lines += [f"mesh: {note}" for note in run.notes]
    lines += specfem_check_lines(run)
    if run.mesh is not None and config.specfem.backend == "local" and hasattr(os, "getloadavg"):
        from dare_cli.ra.simulate.specfem.estimate import estimate_from_par

        load = os.getloadavg()[0]
        if load >= 0.5:  # the machine is busy: the run will share it
            now = estimate_from_par(run.mesh, run.par_values, load=load)
            lines.append(f"SPECFEM3D estimate on this machine now: {now.describe()}")
    return lines


@app.command("run")
def run(
    ctx: typer.Context,
    config: ConfigArgument = None,
    example: ExampleOption = None,
    out: OutOption = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option("--mapping", "-m", metavar="[STAGE=]NAME[:N]",
                     help="NAME[:N]: mapping (and workers) of every stage; STAGE=NAME[:N]: of "
                          "one stage (repeatable, wins over the value for every stage)."),
    ] = None,
    workers: WorkersOption = None,
    force: ForceOption = False,
    resolve_period: ResolvePeriodOption = None,
    velocity_model: VelocityModelOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; run nothing.")]
    = False,
    json_output: JsonOption = False,
) -> None:
    """Run every stage: download, simulate, preprocess, norm, match, pgm, geojson, plot.

    Stages whose inputs and parameters did not change since the last run are skipped.
    Exit codes: 0 ok, 1 a stage failed or a station was rejected, 2 usage error.
    """
    state = get_state(ctx)
    with exit_on_error(state):
        loaded = _load(config, example, out, _parse_mappings(mapping, workers))
        mesh_overrides = _mesh_overrides(resolve_period, velocity_model)
        if mesh_overrides:
            from dare_cli.ra.errors import ConfigError

            try:
                loaded = loaded.with_overrides(specfem=mesh_overrides)
            except ConfigError as error:
                raise DareUsageError(str(error)) from error
        if dry_run:
            _dry_run(state, loaded, None, force)
            if loaded.solver == "specfem" and not loaded.specfem.collect_from:
                for line in _specfem_plan_lines(loaded):
                    typer.echo(line)
            return
        log = _SolverLog(state)
        try:
            report = _run_assessment(loaded, force=force, observers=_observers(state), log=log)
        finally:
            log.close()
        _finish(state, report, Path(loaded.out), json_output)


def _stage_command(stage: str, summary: str) -> None:
    def command(
        ctx: typer.Context,
        config: ConfigArgument = None,
        example: ExampleOption = None,
        out: OutOption = None,
        mapping: StageMappingOption = None,
        workers: WorkersOption = None,
        force: ForceOption = False,
        json_output: JsonOption = False,
    ) -> None:
        state = get_state(ctx)
        with exit_on_error(state):
            mappings = _parse_mappings([mapping] if mapping else None, workers, [stage])
            loaded = _load(config, example, out, mappings, [stage])
            report = _run_assessment(loaded, only=[stage], force=force,
                                     observers=_observers(state))
            _finish(state, report, Path(loaded.out), json_output)

    command.__doc__ = (f"{summary}\n\nRuns only this stage; the stages before it must have "
                       "run (with the same --out).")
    app.command(stage)(command)


def _specfem_overrides(backend: str | None, specfem_bin: Path | None, collect: Path | None,
                       data_dir: Path | None = None) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = str(data_dir.expanduser().resolve())
    if backend is not None:
        overrides["backend"] = backend
    if specfem_bin is not None:
        overrides["bin_dir"] = str(specfem_bin.expanduser().resolve())
    if collect is not None:
        overrides["collect_from"] = str(collect.expanduser().resolve())
    return overrides


def _simulate_plan(state: CLIState, config: Any) -> None:
    """Print the commands a SPECFEM3D simulate stage would run (``--dry-run``)."""
    import shlex

    from dare_cli.ra.errors import ConfigError
    from dare_cli.ra.simulate.specfem.backends import (
        DockerBackend,
        LocalBackend,
        compose_argv,
        compose_environment,
        specfem_steps,
    )

    specfem = config.specfem
    run_dir = Path(config.out)
    work = run_dir / "simulate" / "specfem"
    typer.echo(f"solver: {config.solver}")
    if config.solver != "specfem":
        typer.echo("embedded solver: one analytical computation per station (no commands)")
        return
    if specfem.collect_from:
        typer.echo(f"collect seismograms from {specfem.collect_from} (nothing runs)")
        return
    nproc = specfem.nproc
    if specfem.data_dir:
        from dare_cli.ra.simulate.specfem.backends import parfile_nproc
        from dare_cli.ra.simulate.specfem.parfile import read_parfile

        par_file = Path(specfem.data_dir) / "Par_file"
        try:
            nproc = parfile_nproc(read_parfile(par_file), par_file)
        except OSError as error:
            raise DareUsageError(f"{par_file}: cannot be read ({error.strerror})") from error
        except (ConfigError, ValueError) as error:
            raise DareUsageError(str(error)) from error
        typer.echo(f"backend: {specfem.backend}; NPROC {nproc} (the DATA folder's Par_file)")
        typer.echo(f"inputs: {specfem.data_dir} copied to {work / 'DATA'}")
    else:
        typer.echo(f"backend: {specfem.backend}; NPROC {nproc} "
                   f"({specfem.nproc_xi} x {specfem.nproc_eta})")
        typer.echo(f"inputs: {work / 'DATA'} (Par_file, CMTSOLUTION, STATIONS, "
                   "meshfem3D_files/)")
    if specfem.backend == "local":
        if specfem.bin_dir:  # the launcher that matches the build, as the run resolves it
            local = LocalBackend(specfem.bin_dir, launcher=specfem.launcher,
                                 launcher_args=specfem.launcher_args)
            try:
                steps = local.steps(nproc)
                typer.echo(f"MPI launcher: {local.resolved.path} "
                           f"({local.resolved.flavour or 'unknown MPI'})")
            except ConfigError as error:
                raise DareUsageError(str(error)) from error
        else:
            steps = specfem_steps("<--specfem-bin DIR>", nproc,
                                  launcher=specfem.launcher,
                                  launcher_args=specfem.launcher_args)
        for step in steps:
            typer.echo(f"(cd {shlex.quote(str(work))} && {shlex.join(step.argv)})")
        return
    backend = DockerBackend(specfem)
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in compose_environment(specfem).items())
    cli = ["docker", "compose"]
    typer.echo(f"image: {specfem.image} (built from specfem/Dockerfile if missing: "
               f"{specfem.build})")
    up = compose_argv(cli, backend.compose_file, backend.project, "up",
                      workers=specfem.workers)
    typer.echo(f"{env} {shlex.join(up)}")
    typer.echo(f"copy {work / 'DATA'} -> head:/work/DATA")
    typer.echo(f"head: {shlex.join(backend.hostfile_argv())}")
    for step in backend.steps(nproc):
        typer.echo(f"head: {shlex.join(step.argv)}")
    typer.echo("copy head:/work/OUTPUT_FILES -> " + str(work / "OUTPUT_FILES"))
    typer.echo(shlex.join(compose_argv(cli, backend.compose_file, backend.project, "down")))


def _emit_slurm(state: CLIState, config: Any, config_file: Path | None, example: str | None,
                options: Any) -> None:
    """Write the SPECFEM3D inputs and a Slurm script that runs them, then collects."""
    from dare_cli.ra.simulate.specfem.slurm import write_slurm_script
    from dare_cli.ra.stages.specfem import prepare_specfem

    run_dir = Path(config.out).resolve()
    download = run_dir / "download"
    if not (download / ".stage.json").exists():
        raise DareUsageError(f"--emit-batch needs the download stage in {run_dir}: run "
                             "'dare ra download' first")
    if not config.specfem.bin_dir:
        raise DareUsageError("--emit-batch slurm needs --specfem-bin DIR (SPECFEM3D's bin/ "
                             "on the cluster) or [simulate.specfem] bin_dir")
    work = run_dir / "specfem-batch"
    run = prepare_specfem(download, work, config)
    source = ["--example", example] if example else [str(Path(str(config_file)).resolve())]
    collect = ["dare", "ra", "simulate", *source, "--out", str(run_dir), "--solver",
               "specfem", "--collect", str(work / "OUTPUT_FILES")]
    script = write_slurm_script(work / "specfem.slurm", work, bin_dir=config.specfem.bin_dir,
                                nproc=run.nproc, options=options, after=[collect])
    typer.echo(str(script))
    if not state.quiet:
        state.stderr.print(f"inputs in {work / 'DATA'}; submit with: sbatch {script}\n"
                           f"(the job ends by collecting the seismograms into {run_dir}/"
                           "simulate; or run that last line of the script yourself)",
                           markup=False, highlight=False)


def _kubernetes_route(state: CLIState, config: Any, config_file: Path | None,
                      example: str | None, *, emit_manifests: Path | None,
                      k8s_form: str | None, namespace: str | None, backend: str | None,
                      emit_batch: str | None, force: bool) -> bool:
    """``--emit-manifests``: write the manifests (True); refuse the kubernetes backend without."""
    from dare_cli.ra.errors import ConfigError
    from dare_cli.ra.stages.specfem import KUBERNETES_RUNS_NOTHING

    if emit_manifests is None:
        if k8s_form is not None or namespace is not None:
            raise DareUsageError("--k8s-form and --namespace go with --emit-manifests DIR")
        chosen = backend == "kubernetes" or (config.specfem.backend == "kubernetes"
                                             and config.solver == "specfem")
        if chosen and not config.specfem.collect_from and emit_batch is None:
            raise DareUsageError(KUBERNETES_RUNS_NOTHING)
        return False
    if emit_batch is not None:
        raise DareUsageError("give --emit-batch or --emit-manifests, not both")
    if backend not in (None, "kubernetes"):
        raise DareUsageError(f"--emit-manifests writes Kubernetes manifests: it goes with "
                             f"--backend kubernetes, not {backend!r}")
    if config.solver != "specfem":
        raise DareUsageError("--emit-manifests needs --solver specfem")
    if config.specfem.collect_from:
        raise DareUsageError("--emit-manifests and --collect exclude each other")
    if config.specfem.data_dir:
        # its collection needs no download stage, which --collect does not know yet
        raise DareUsageError("--emit-manifests writes the inputs dare makes from the download "
                             "stage; a hand-made DATA folder (--specfem-data, data_dir) is not "
                             "supported there")
    chosen_k8s = {key: value for key, value in (("form", k8s_form), ("namespace", namespace))
                  if value is not None}
    try:
        config = config.with_overrides(specfem={"backend": "kubernetes"}, kubernetes=chosen_k8s)
    except ConfigError as error:
        raise DareUsageError(str(error)) from error
    _emit_manifests(state, config, config_file, example, emit_manifests, force)
    return True


def _emit_manifests(state: CLIState, config: Any, config_file: Path | None,
                    example: str | None, folder: Path, force: bool) -> None:
    """Write the SPECFEM3D inputs and the Kubernetes manifests that run them, then collect."""
    from dare_cli.ra.errors import ConfigError, RAError
    from dare_cli.ra.simulate.specfem.kubernetes import prepare_emit_folder, write_manifests
    from dare_cli.ra.stages.specfem import prepare_specfem

    run_dir = Path(config.out).resolve()
    download = run_dir / "download"
    if not (download / ".stage.json").exists():
        raise DareUsageError(f"--emit-manifests needs the download stage in {run_dir}: run "
                             "'dare ra download' first")
    target = folder.expanduser().resolve()
    source = ["--example", example] if example else [str(Path(str(config_file)).resolve())]
    try:
        work = prepare_emit_folder(target, force=force)
        run = prepare_specfem(download, work, config)
        collect = ["dare", "ra", "simulate", *source, "--out", str(run_dir), "--solver",
                   "specfem", "--collect", str(work / "OUTPUT_FILES")]
        written = write_manifests(target, run, config.specfem, config.kubernetes,
                                  run_name=run_dir.name, collect=collect)
    except ConfigError as error:
        raise DareUsageError(str(error)) from error
    except RAError as error:
        report_error(state, str(error), error)
        raise typer.Exit(EXIT_FAILED) from error
    for path in written:
        typer.echo(str(path))
    if not state.quiet:
        state.stderr.print(f"inputs in {work / 'DATA'}; on the cluster: kubectl apply -f "
                           f"{target}; then see {target / 'README.md'} (wait, kubectl cp "
                           "OUTPUT_FILES, collect)", markup=False, highlight=False)


SolverOption = Annotated[
    str | None,
    typer.Option("--solver", help="embedded or specfem (default: the configuration's)."),
]
BackendOption = Annotated[
    str | None, typer.Option("--backend", help="SPECFEM3D backend: local, docker or "
                                               "kubernetes (with --emit-manifests)."),
]
SpecfemBinOption = Annotated[
    Path | None, typer.Option("--specfem-bin", metavar="DIR",
                              help="Folder of xmeshfem3D, xgenerate_databases, xspecfem3D."),
]
CollectOption = Annotated[
    Path | None, typer.Option("--collect", metavar="DIR",
                              help="Only collect the seismograms of a SPECFEM3D run made "
                                   "elsewhere (its OUTPUT_FILES)."),
]
SpecfemDataOption = Annotated[
    Path | None, typer.Option("--specfem-data", metavar="DIR",
                              help="Run a hand-made SPECFEM3D DATA folder as it is (its "
                                   "Par_file, CMTSOLUTION, STATIONS, meshfem3D_files/); "
                                   "no download stage needed."),
]
EmitBatchOption = Annotated[
    str | None, typer.Option("--emit-batch", metavar="SCHEDULER",
                             help="Write the inputs and a batch script (slurm) instead of "
                                  "running."),
]
NodesOption = Annotated[int, typer.Option("--nodes", help="Slurm: nodes.")]
TasksOption = Annotated[int | None, typer.Option("--tasks", help="Slurm: tasks (= NPROC).")]
TimeLimitOption = Annotated[str, typer.Option("--time", help="Slurm: time limit.")]
PartitionOption = Annotated[str | None, typer.Option("--partition", help="Slurm: partition.")]
AccountOption = Annotated[str | None, typer.Option("--account", help="Slurm: account.")]
ModuleOption = Annotated[
    list[str] | None, typer.Option("--module", help="Slurm: module to load; repeatable."),
]
EmitManifestsOption = Annotated[
    Path | None, typer.Option("--emit-manifests", metavar="DIR",
                              help="Kubernetes: write the run's manifests, inputs and a "
                                   "README (kubectl commands) into DIR instead of running."),
]
K8sFormOption = Annotated[
    str | None, typer.Option("--k8s-form", metavar="FORM",
                             help="Kubernetes: mpijob (Kubeflow MPI Operator) or "
                                  "statefulset (no operator)."),
]
NamespaceOption = Annotated[str | None, typer.Option("--namespace", help="Kubernetes: namespace.")]
SimulateDryRunOption = Annotated[bool, typer.Option("--dry-run", help="Print the commands, the "
                                                                      "mesh, the checks and the "
                                                                      "run-time estimate; run "
                                                                      "nothing.")]


def _slurm_options(emit_batch: str, config: Any, **options: Any) -> Any:
    """The ``SlurmOptions`` of ``--emit-batch slurm`` and its ``--nodes``, ``--tasks``...

    Raises
    ------
    DareUsageError
        Another scheduler, the embedded solver, or a value Slurm would refuse.
    """
    from dare_cli.ra.errors import ConfigError
    from dare_cli.ra.simulate.specfem.slurm import SlurmOptions

    if emit_batch != "slurm":
        raise DareUsageError(f"--emit-batch {emit_batch!r}: only 'slurm' is supported")
    if config.solver != "specfem":
        raise DareUsageError("--emit-batch needs --solver specfem")
    try:
        return SlurmOptions(**options)
    except ConfigError as error:
        raise DareUsageError(str(error)) from error


@app.command("simulate")
def simulate(
    ctx: typer.Context,
    config: ConfigArgument = None,
    example: ExampleOption = None,
    out: OutOption = None,
    mapping: StageMappingOption = None,
    workers: WorkersOption = None,
    solver: SolverOption = None,
    backend: BackendOption = None,
    specfem_bin: SpecfemBinOption = None,
    collect: CollectOption = None,
    specfem_data: SpecfemDataOption = None,
    emit_batch: EmitBatchOption = None,
    nodes: NodesOption = 1,
    tasks: TasksOption = None,
    time_limit: TimeLimitOption = "01:00:00",
    partition: PartitionOption = None,
    account: AccountOption = None,
    module: ModuleOption = None,
    emit_manifests: EmitManifestsOption = None,
    k8s_form: K8sFormOption = None,
    namespace: NamespaceOption = None,
    force: ForceOption = False,
    resolve_period: ResolvePeriodOption = None,
    velocity_model: VelocityModelOption = None,
    dry_run: SimulateDryRunOption = False,
    json_output: JsonOption = False,
) -> None:
    """Compute synthetic seismograms at the stations (embedded solver or SPECFEM3D).

    With --solver specfem, one SPECFEM3D run covers every station: --backend local runs
    the programs of --specfem-bin with the local mpirun/srun, --backend docker on the
    docker-compose cluster of specfem/; --emit-batch slurm writes the inputs and a Slurm
    script instead, --backend kubernetes --emit-manifests DIR Kubernetes manifests (dare
    reaches no cluster). Runs only this stage; the download stage must have run (same --out).
    """
    state = get_state(ctx)
    with exit_on_error(state):
        mappings = _parse_mappings([mapping] if mapping else None, workers, ["simulate"])
        loaded = _load(config, example, out, mappings, ["simulate"])
        from dare_cli.ra.errors import ConfigError

        try:
            loaded = loaded.with_overrides(
                solver=solver, specfem={**_specfem_overrides(backend, specfem_bin, collect,
                                                             specfem_data),
                                        **_mesh_overrides(resolve_period, velocity_model)})
        except ConfigError as error:
            raise DareUsageError(str(error)) from error
        if _kubernetes_route(state, loaded, config, example, emit_manifests=emit_manifests,
                             k8s_form=k8s_form, namespace=namespace, backend=backend,
                             emit_batch=emit_batch, force=force):
            return
        if emit_batch is not None:
            options = _slurm_options(emit_batch, loaded, nodes=nodes, tasks=tasks,
                                     time=time_limit, partition=partition, account=account,
                                     modules=tuple(module or ()))
            _emit_slurm(state, loaded, config, example, options)
            return
        if dry_run:
            _simulate_plan(state, loaded)
            if loaded.solver == "specfem" and not loaded.specfem.collect_from:
                for line in _specfem_plan_lines(loaded):
                    typer.echo(line)
            return
        log = _SolverLog(state)
        try:
            report = _run_assessment(loaded, only=["simulate"], force=force,
                                     observers=_observers(state), log=log)
        finally:
            log.close()
        _finish(state, report, Path(loaded.out), json_output)


for _name, _summary in (
    ("download", "Fetch the event, stations and waveforms (FDSN, local folder or SDS)."),
    ("preprocess", "Process observed and synthetic traces alike (response, filter, window)."),
    ("norm", "Vector norms of three components and of the two horizontals."),
    ("match", "Pair each observed trace with its synthetic."),
    ("pgm", "Peak ground motion (PGA, PGV, PGD, PSA) and misfits; pgm.csv."),
    ("geojson", "ShakeMap-style station list (GeoJSON)."),
    ("plot", "Maps of PGA and misfit, and waveform plots."),
):
    _stage_command(_name, _summary)


@app.command("examples")
def list_examples(json_output: JsonOption = False) -> None:
    """List the bundled examples."""
    found = {name: str(path) for name, path in examples().items()}
    if json_output:
        typer.echo(json.dumps(found, indent=2))
    else:
        for name, path in found.items():
            typer.echo(f"{name}\t{path}")
