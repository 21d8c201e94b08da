"""``dare worker``: serve the pool of ``redis`` mapping runs from any host."""

from __future__ import annotations

from typing import Annotated

import typer

from dare_cli.context import exit_on_error, get_state

app = typer.Typer()


@app.command("worker")
def worker(
    ctx: typer.Context,
    redis_url: Annotated[
        str | None,
        typer.Option("--redis", metavar="URL",
                     help="Redis server of the runs, redis://HOST:PORT/DB "
                     "(default: $DARE_REDIS_URL, else redis://127.0.0.1:6379/0)."),
    ] = None,
    run: Annotated[
        str | None,
        typer.Option("--run", metavar="RUN_ID",
                     help="Serve this run (its id is logged by 'dare run -m redis -v'), "
                     "waiting for it to start; default: serve every run that appears."),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Without --run: exit after serving one run.")
    ] = False,
    wait: Annotated[
        float | None,
        typer.Option("--wait", metavar="SECONDS", min=0,
                     help="Give up if no run appears within SECONDS (default: wait forever)."),
    ] = None,
    visibility_timeout: Annotated[
        float | None,
        typer.Option("--visibility-timeout", metavar="SECONDS", min=0.01,
                     help="Take over tasks pending this long on a dead worker "
                     "(default: the run's visibility_timeout option)."),
    ] = None,
) -> None:
    """Serve the pool of redis-mapping runs; the workflow code must be importable here.

    Modules the run's coordinator loaded from a .py file are loaded from the same path, which
    must exist on this host. Exits when the run ends (with --run or --once); Ctrl-C stops it.
    """
    from engine.mappings.redis_queue import serve

    state = get_state(ctx)
    with exit_on_error(state):
        served = serve(redis_url, run, once=once, wait=wait,
                       visibility_timeout=visibility_timeout)
    if not state.quiet:
        state.stderr.print(f"served {served} run{'s' if served != 1 else ''}")
