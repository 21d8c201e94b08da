"""The ``dare`` command: global options, and the command groups of ``dare_cli.commands``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup, TyperOption

from dare_cli import __version__
from dare_cli.commands import climate, graph, mappings, ra, run, worker
from dare_cli.config import load_config
from dare_cli.context import CLIState, exit_on_error, global_option, terminate_cleanly

#: Options of the ``dare`` callback also accepted after any subcommand (``dare run X -v``).
GLOBAL_OPTIONS = ("verbose", "quiet")
#: The commands that read the ``--config`` file (``[run]``), which also take it after them.
CONFIG_COMMANDS = (("run",), ("graph", "show"))


class _Uncoerced(TyperOption):
    """A typer option whose value is used as click parses it (a count, a flag, a path).

    typer coerces the value of each of its non-boolean options with pydantic, whose import
    alone (~0.2 s) every 'dare GROUP --help' would pay for the callback's -v and --config
    and the group's own -v. These need no coercion: click's parser gives the count, the flag
    and the text of the path (made a ``Path`` by the callback).
    """

    def process_value(self, ctx: Any, value: Any) -> Any:
        """Run the callback on the parsed value, without typer's coercion."""
        return self.callback(ctx, self, value) if self.callback is not None else value


def _uncoerced(params: list[Any], names: tuple[str, ...]) -> list[Any]:
    for param in params:
        if param.name in names and type(param) is TyperOption:
            param.__class__ = _Uncoerced  # same fields: a subclass that only skips coercion
    return params


def _uncoerced_help(command: Any) -> None:
    """``--help`` of ``command`` uncoerced too (click makes it on first use, unset: ``None``)."""
    make = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        option = make(ctx)
        return _uncoerced([option], ("help",))[0] if option is not None else None

    command.get_help_option = get_help_option


def _global_params(config: bool = False) -> list[Any]:
    """Fresh ``-v``/``-q`` (and ``--config``) parameters, feeding :func:`global_option`."""

    def options(
        verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                             help="More logs (-vv: debug), as 'dare -v'.")] = 0,
        quiet: Annotated[bool, typer.Option("--quiet", "-q",
                                            help="Only errors, as 'dare -q'.")] = False,
        config: Annotated[str | None, typer.Option(
            "--config", metavar="PATH",
            help="dare.toml whose \\[run] table gives defaults, as 'dare --config'.")] = None,
    ) -> None:
        """Never called: only its parameters are used."""

    holder = typer.Typer(add_completion=False)
    holder.command()(options)
    params = [param for param in typer.main.get_command(holder).params
              if config or param.name != "config"]
    for param in params:
        param.expose_value = False
        param.callback = global_option
        param.rich_help_panel = "Global options"  # type: ignore[attr-defined]
    return _uncoerced(params, (*GLOBAL_OPTIONS, "config"))


def add_global_options(command: Any, path: tuple[str, ...] = ()) -> None:
    """Give ``command`` and its subcommands ``-v``/``-q`` (where they do not mean else).

    The commands that read the ``--config`` file (:data:`CONFIG_COMMANDS`) take it too.
    """
    taken = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for param in _global_params(config=path in CONFIG_COMMANDS):
        if not taken & {*param.opts, *param.secondary_opts}:
            command.params.append(param)
    _uncoerced_help(command)
    for name, sub in getattr(command, "commands", {}).items():
        add_global_options(sub, (*path, name))


class DareGroup(TyperGroup):
    """The ``dare`` group: the global options are also accepted after any subcommand."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        _uncoerced_help(self)
        for name, command in self.commands.items():
            add_global_options(command, (name,))

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Parse, the callback's options uncoerced (typer adds the completion ones late)."""
        _uncoerced(self.params, ("verbose", "config", "install_completion", "show_completion"))
        return super().parse_args(ctx, args)


app = typer.Typer(
    name="dare",
    cls=DareGroup,
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
    state = CLIState(verbose=verbose or 0, quiet=quiet)
    with exit_on_error(state):
        # The mappings' start-up hooks: under mpiexec/srun, ranks > 0 serve the mpi mapping
        # and never run the command.
        from engine.mappings import run_startup_hooks

        run_startup_hooks()
        terminate_cleanly()
        state.config = load_config(Path(config) if config is not None else None)
    ctx.obj = state
    state.apply_logging()  # again if -v/-q come after the subcommand
    ctx.call_on_close(state.close_logging)
