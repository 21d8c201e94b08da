"""``dare run``: run a workflow graph with a mapping and print its outputs."""

from __future__ import annotations

import collections.abc
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dare_cli.context import CLIState, exit_on_error, get_state
from dare_cli.errors import DareUsageError

if TYPE_CHECKING:
    from engine.graph import Graph
    from engine.mappings import Mapping
    from engine.observe import Observer, RunResult

app = typer.Typer()

DEFAULT_MAPPING = "simple"


TargetArgument = Annotated[
    str,
    typer.Argument(
        metavar="MODULE_OR_FILE[:GRAPH]",
        help="Dotted module name or .py file; GRAPH names the graph in it "
        "(default: 'graph', else the module's only WorkflowGraph).",
        show_default=False,
    ),
]
MappingOption = Annotated[
    str | None,
    typer.Option("--mapping", "-m", metavar="NAME[:N]",
                 help="Mapping that enacts the graph, and N worker processes (see 'dare "
                 f"mappings'; default: \\[run] mapping, else {DEFAULT_MAPPING})."),
]
WorkersOption = Annotated[
    int | None, typer.Option("--workers", "-n", min=1,
                             help="Number of worker processes (the N of --mapping NAME:N).")
]
IterationsOption = Annotated[
    int | None,
    typer.Option("--iterations", "-i", min=0, help="Iterations of every source PE."),
]
DataOption = Annotated[
    str | None,
    typer.Option("--data", "-d", metavar="JSON",
                 help='Inputs as JSON: {"PE": count | \\[items] | [{"port": item}, ...]}.'),
]
FileOption = Annotated[
    Path | None,
    typer.Option("--file", "-f", metavar="FILE", help="Read the inputs JSON from FILE."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print outputs and summary as JSON.")]
MappingOptionsOption = Annotated[
    list[str] | None,
    typer.Option("--option", metavar="KEY=VALUE",
                 help="Mapping option (repeatable), e.g. batch_size=64, queue_depth=32 "
                 "(batches in flight per PE instance: the back-pressure), "
                 "redis_url=redis://HOST:6379/0 (default $DARE_REDIS_URL), "
                 "kafka_url=HOST:9092 (default $DARE_KAFKA_BOOTSTRAP), max_deliveries=3; "
                 "VALUE is JSON, else text ('dare mappings' lists the mappings)."),
]
UnitTimeoutOption = Annotated[
    float | None,
    typer.Option("--unit-timeout", metavar="SECONDS",
                 help="Fail the run, naming the PE, instance and unit, when one unit "
                 "takes longer (PEs with their own unit_timeout keep theirs)."),
]
MonitorOption = Annotated[
    Path | None,
    typer.Option("--monitor", metavar="FILE",
                 help="Write the run's monitoring record (JSON: per PE units and time, "
                 "per connection units, bytes and send time)."),
]
OptimiseOption = Annotated[
    str | None,
    typer.Option("--optimise", metavar="naive|staging",
                 help="Place PEs from a monitoring record (--record): 'naive' fuses PEs "
                 "that communicate more than they compute, 'staging' fuses one-to-one "
                 "chains into replicated stages (multi, mpi)."),
]
RecordOption = Annotated[
    Path | None,
    typer.Option("--record", metavar="FILE",
                 help="Monitoring record of a previous run, read by --optimise."),
]


@app.command("run")
def run(
    ctx: typer.Context,
    target: TargetArgument,
    mapping: MappingOption = None,
    workers: WorkersOption = None,
    iterations: IterationsOption = None,
    data: DataOption = None,
    file: FileOption = None,
    json_output: JsonOption = False,
    option: MappingOptionsOption = None,
    unit_timeout: UnitTimeoutOption = None,
    monitor: MonitorOption = None,
    optimise: OptimiseOption = None,
    record: RecordOption = None,
) -> None:
    """Run a workflow graph and print the outputs of its unconnected ports.

    Results go to stdout; progress (on a terminal), the summary table and errors to stderr.
    Exit codes: 0 ok, 1 the run failed, 2 usage error, 130 interrupted.
    """
    # the engine and the user's module only when the command runs ('dare --help' stays quick)
    from dare_cli.loading import inputs_from_options, load_graph
    from dare_cli.tables import summary_table
    from engine.mappings import get_mapping
    from engine.render import outputs_to_text, result_to_json

    state = get_state(ctx)
    defaults = state.config.run
    with exit_on_error(state):
        mapping_name, workers = choose_mapping(mapping, workers, defaults.mapping,
                                               defaults.workers, state.config.path)
        enactor = get_mapping(mapping_name)  # unknown: MappingNotFound, listing the others
        options = _mapping_options(enactor, defaults.options, option or [], unit_timeout)
        graph = load_graph(target)
        count = iterations if iterations is not None else defaults.iterations
        inputs = inputs_from_options(graph, count, data, file)
        options.update(_placement_options(enactor, optimise, record, graph))
        observers: list[Observer] = []
        if monitor is not None:
            from engine.monitor import MonitorWriter

            observers.append(MonitorWriter(monitor))
            if "timing" in enactor.options:  # simple measures per-unit time only if asked
                options.setdefault("timing", True)
        result = _run_with_progress(state, graph, inputs, mapping_name, workers, observers,
                                    options)
        if json_output:
            typer.echo(result_to_json(result))
        elif result.outputs:
            typer.echo(outputs_to_text(result.outputs))
        if not state.quiet:
            state.stderr.print(summary_table(result.summary))


def _mapping_options(enactor: Mapping, configured: collections.abc.Mapping[str, Any],
                     given: list[str],
                     unit_timeout: float | None) -> dict[str, Any]:
    """The ``[run.options]`` under ``--option KEY=VALUE`` and ``--unit-timeout``, checked.

    Raises
    ------
    DareUsageError
        An option the mapping does not take, or a value it refuses.
    """
    from dare_cli.loading import merged_options
    from engine.errors import EngineError

    options = merged_options(configured, given)
    if unit_timeout is not None:
        options["unit_timeout"] = unit_timeout
    try:
        enactor.check_options(options)
    except EngineError as exc:
        raise DareUsageError(str(exc)) from exc
    return options


def _run_with_progress(state: CLIState, graph: Graph, inputs: Any, mapping: str,
                       workers: int | None, observers: list[Observer],
                       options: dict[str, Any]) -> RunResult:
    """Run the graph with live progress on stderr; after a failure, the counts reached."""
    import engine
    from dare_cli.progress import RunReporter
    from engine.errors import EngineError

    reporter = RunReporter(state.stderr, live=state.show_progress)
    try:
        return engine.run(graph, inputs, mapping=mapping, workers=workers,
                          observers=[reporter, *observers], **options)
    except (EngineError, KeyboardInterrupt):
        reporter.close()
        partial = reporter.partial_table()
        if partial is not None and not state.quiet:
            state.stderr.print(partial)
        raise
    finally:
        reporter.close()


def choose_mapping(mapping: str | None, workers: int | None, default_mapping: str | None,
                   default_workers: int | None, config_file: Path | None = None
                   ) -> tuple[str, int | None]:
    """The mapping and workers of ``--mapping NAME[:N]`` and ``-n``, over the ``[run]`` table's.

    Flags win over the file; within each, ``NAME:N`` and a worker count must agree.

    Raises
    ------
    DareUsageError
        A value off the ``NAME[:N]`` grammar, or ``NAME:N`` and ``-n`` disagreeing.
    """
    from engine.pipeline import MappingSpecError, parse_mapping, with_workers

    try:
        file_name, file_workers = DEFAULT_MAPPING, None
        if default_mapping is not None:
            where = f"key 'run.mapping' in config file '{config_file}'"
            file_name, file_workers = with_workers(parse_mapping(default_mapping, where),
                                                   default_workers, where)
        elif default_workers is not None:
            file_workers = default_workers
        if mapping is None:
            return file_name, workers if workers is not None else file_workers
        name, count = with_workers(parse_mapping(mapping), workers)
        return name, count if count is not None else file_workers
    except MappingSpecError as error:
        raise DareUsageError(str(error)) from error


def _placement_options(
    enactor: Mapping, strategy: str | None, record: Path | None, graph: Graph
) -> dict[str, Any]:
    """Turn ``--optimise``/``--record`` into the mapping's ``optimisation`` or ``record``."""
    from dare_cli.loading import load_optimisation

    if strategy is None:
        if record is None:
            return {}
        if "record" in enactor.options:  # elastic mappings size their pool from it
            return {"record": load_optimisation("staging", record, graph).record}
        raise DareUsageError(
            "--record is read by --optimise (give --optimise naive|staging) or by the "
            "dynamic mapping (its pool bounds)"
        )
    if "optimisation" not in enactor.options:
        raise DareUsageError(
            f"mapping {enactor.name!r} has a single placement; --optimise applies to the "
            "mappings that place PEs on processes (multi, mpi)"
        )
    return {"optimisation": load_optimisation(strategy, record, graph)}
