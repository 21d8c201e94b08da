"""``dare graph``: inspect a workflow graph without running it."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from dare_cli.context import exit_on_error, get_state
from dare_cli.errors import DareUsageError

app = typer.Typer(help="Inspect workflow graphs without running them.", no_args_is_help=True)


class GraphFormat(StrEnum):
    """Renderings of ``dare graph show``."""

    text = "text"
    mermaid = "mermaid"
    json = "json"


@app.command("show")
def show(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(metavar="MODULE_OR_FILE[:GRAPH]", show_default=False,
                       help="Dotted module name or .py file; GRAPH names the graph in it."),
    ],
    output_format: Annotated[
        GraphFormat, typer.Option("--format", help="text, mermaid (flowchart) or json.")
    ] = GraphFormat.text,
    workers: Annotated[
        int | None,
        typer.Option("--workers", "-n", min=1,
                     help="Workers for --partitions (default: \\[run] workers, else the CPUs); "
                     "implies --partitions."),
    ] = None,
    partitions: Annotated[
        bool, typer.Option("--partitions", help="Show the placement of PE instances on workers.")
    ] = False,
    optimise: Annotated[
        str | None,
        typer.Option("--optimise", metavar="naive|staging",
                     help="Show the placement this optimisation makes from --record; "
                     "implies --partitions."),
    ] = None,
    record: Annotated[
        Path | None,
        typer.Option("--record", metavar="FILE",
                     help="Monitoring record of a previous run ('dare run --monitor FILE')."),
    ] = None,
) -> None:
    """Show PEs, ports, instances and connections (with groupings); nothing is run."""
    from dare_cli.loading import load_graph, load_optimisation
    from engine.errors import GraphError
    from engine.partition import build_plan
    from engine.render import RENDERERS

    state = get_state(ctx)
    with exit_on_error(state):
        graph = load_graph(target)
        plan = None
        optimisation = load_optimisation(optimise, record, graph) if optimise else None
        if partitions or workers is not None or optimisation is not None:
            count = workers or state.config.run.workers or os.cpu_count() or 1
            try:
                plan = build_plan(graph, None, workers=count, optimisation=optimisation)
            except GraphError as exc:
                raise DareUsageError(str(exc)) from exc
    typer.echo(RENDERERS[output_format.value](graph, plan))
