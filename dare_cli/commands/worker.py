"""``dare worker``: serve the pool of ``redis`` or ``kafka`` mapping runs from any host."""

from __future__ import annotations

from typing import Annotated

import typer

from dare_cli.context import exit_on_error, get_state
from dare_cli.errors import DareUsageError

app = typer.Typer()


@app.command("worker")
def worker(
    ctx: typer.Context,
    redis_url: Annotated[
        str | None,
        typer.Option("--redis", metavar="URL",
                     help="Redis server of the runs, redis://HOST:PORT/DB, or rediss:// for "
                     "TLS (default: $DARE_REDIS_URL, else redis://127.0.0.1:6379/0). Give a "
                     "URL with a password through $DARE_REDIS_URL, not here: the command "
                     "line is visible to every user of the host."),
    ] = None,
    kafka: Annotated[
        str | None,
        typer.Option("--kafka", metavar="HOST:PORT",
                     help="Serve kafka-mapping runs of this broker instead of Redis "
                     "(default: $DARE_KAFKA_BOOTSTRAP; SASL/TLS settings: a file of "
                     "librdkafka 'key = value' lines named by $DARE_KAFKA_CONFIG)."),
    ] = None,
    session_timeout: Annotated[
        float | None,
        typer.Option("--session-timeout", metavar="SECONDS", min=0.1,
                     help="With --kafka: the consumer-group session (a dead worker's tasks "
                     "move to others after about 1.5 times this)."),
    ] = None,
    run: Annotated[
        str | None,
        typer.Option("--run", metavar="RUN_ID",
                     help="Serve this run (its id is logged by 'dare -v run -m redis|kafka'), "
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
    """Serve the pool of redis- (or kafka-) mapping runs; the workflow must be importable here.

    Modules the run's coordinator loaded from a .py file are loaded from the same path, which
    must exist on this host. Exits when the run ends (with --run or --once); Ctrl-C stops it.

    Tasks are signed: set the deployment's secret, the same on the coordinator's host and
    every worker host, in the environment (never on the command line): DARE_QUEUE_SECRET,
    or DARE_QUEUE_SECRET_FILE naming a file only you can read (chmod 600; a Kubernetes or
    Docker secret), e.g. made with 'openssl rand -hex 32'. Messages without the right
    signature are refused before they are read. DARE_QUEUE_INSECURE=1 on every host turns
    signing off (trusted networks only).

    Redis with a password and TLS: DARE_REDIS_URL=redis://:PASSWORD@HOST:6379/0, or
    rediss://:PASSWORD@HOST:6380/0?ssl_ca_certs=/path/ca.pem (client certificates:
    &ssl_certfile=...&ssl_keyfile=...).
    """
    state = get_state(ctx)
    with exit_on_error(state):
        if kafka is not None:
            if redis_url is not None or visibility_timeout is not None:
                raise DareUsageError("--kafka cannot be combined with --redis or "
                                     "--visibility-timeout (Redis options)")
            from engine.mappings.kafka_queue import serve as serve_kafka

            served = serve_kafka(kafka, run, once=once, wait=wait,
                                 session_timeout=session_timeout)
        else:
            if session_timeout is not None:
                raise DareUsageError("--session-timeout is a Kafka option: give --kafka")
            from engine.mappings.redis_queue import serve

            served = serve(redis_url, run, once=once, wait=wait,
                           visibility_timeout=visibility_timeout)
    if not state.quiet:
        state.stderr.print(f"served {served} run{'s' if served != 1 else ''}")
