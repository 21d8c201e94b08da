"""``dare mappings``: the installed ways of enacting a graph."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from dare_cli.context import exit_on_error, get_state

app = typer.Typer()


@app.command("mappings")
def mappings(
    ctx: typer.Context,
    json_output: Annotated[
        bool, typer.Option("--json", help='Print [{"name", "description"}] as JSON.')
    ] = False,
) -> None:
    """List the installed mappings (plugins of the 'dare.mappings' entry-point group)."""
    from rich.console import Console

    from dare_cli.tables import mappings_table
    from engine.mappings import available

    with exit_on_error(get_state(ctx)):
        found = available()
    if json_output:
        rows = [{"name": name, "description": text} for name, text in found.items()]
        typer.echo(json.dumps(rows, indent=2))
    else:
        Console().print(mappings_table(found))
