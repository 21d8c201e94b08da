"""The ``dare`` command: global options, and the command groups of ``dare_cli.commands``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dare_cli import __version__
from dare_cli.commands import climate, graph, mappings, ra, run, worker
from dare_cli.config import load_config
from dare_cli.context import CLIState, configure_logging, exit_on_error
from engine.mappings.mpi import start_servants_if_needed

app = typer.Typer(
    name="dare",
    help="Run and inspect streaming dataflow workflows (seismology, climate).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(run.app)
app.add_typer(mappings.app)
app.add_typer(graph.app, name="graph")
app.add_typer(ra.app, name="ra")
app.add_typer(climate.app, name="climate")
app.add_typer(worker.app)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"dare {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True,
                          help="More logs (-vv: debug); tracebacks with errors.")
    ] = 0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress or summary; only errors.")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", metavar="PATH", dir_okay=False,
                     help="TOML file (dare.toml) whose \\[run] table gives defaults for flags."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", "-V", is_eager=True, callback=_print_version,
                           help="Print the version and exit.")
    ] = False,
) -> None:
    """Run and inspect streaming dataflow workflows (seismology, climate)."""
    state = CLIState(verbose=verbose, quiet=quiet)
    with exit_on_error(state):
        # Under mpiexec/srun, ranks > 0 serve the mpi mapping and never run the command.
        start_servants_if_needed()
        state.config = load_config(config)
    ctx.obj = state
    ctx.call_on_close(configure_logging(state))
