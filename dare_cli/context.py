"""What every command shares: global options, the stderr console, logging and exit codes.

Exit codes: 0 success; 1 the run failed (an engine error during the run); 2 usage error
(bad flags, module, graph, JSON, configuration; unknown mapping); 130 interrupted (Ctrl-C);
143 terminated (SIGTERM: a batch system's time limit, ``kill``).
An error is one line ``error: <message>`` on stderr; ``-v`` adds the traceback.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer

from dare_cli.config import Config

if TYPE_CHECKING:
    from rich.console import Console
from dare_cli.errors import DareUsageError
from engine.errors import EngineError, MappingNotFound, RunInterrupted

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "CLIState",
    "configure_logging",
    "exit_on_error",
    "get_state",
    "global_option",
]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: 128 + SIGTERM, as a shell reports a process SIGTERM ended.
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch system's time limit, ``kill``): stop as Ctrl-C stops, cleanly."""


def terminate_cleanly() -> None:
    """Turn SIGTERM into :class:`Terminated`, so that a run stops its workers and solvers.

    By default SIGTERM ends Python at once, leaving what it started (worker processes, an
    MPI launcher in its own session) running. Only in the main thread (where handlers live).
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def raise_terminated(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends it at once
        raise Terminated

    signal.signal(signal.SIGTERM, raise_terminated)


@dataclass
class CLIState:
    """Global options, set by the ``dare`` callback and read by every command.

    Attributes
    ----------
    verbose
        Number of ``-v``: 1 shows info logs and tracebacks, 2 debug logs.
    quiet
        ``-q``: no progress, no summary, only errors.
    config
        The ``--config`` file's contents (defaults without one).
    stderr
        Console for logs, progress and errors (results go to stdout).
    """

    verbose: int = 0
    quiet: bool = False
    config: Config = field(default_factory=Config)
    stderr: Console = field(default_factory=lambda: _stderr_console())
    _undo_logging: Callable[[], None] | None = field(default=None, repr=False)

    def apply_logging(self) -> None:
        """Send logs to :attr:`stderr` at the level of ``-v``/``-q`` (again, if they changed)."""
        self.close_logging()
        self._undo_logging = configure_logging(self)

    def close_logging(self) -> None:
        """Undo :meth:`apply_logging` (idempotent)."""
        if self._undo_logging is not None:
            self._undo_logging()
            self._undo_logging = None

    @property
    def show_progress(self) -> bool:
        """Whether to show live progress: stderr is a terminal and ``-q`` is not given."""
        return self.stderr.is_terminal and not self.quiet


def _stderr_console() -> Console:
    from rich.console import Console  # when a command runs: 'dare --help' needs no console

    return Console(stderr=True)


def get_state(ctx: typer.Context) -> CLIState:
    """Return the state set by the callback (defaults if a command is invoked alone)."""
    state = ctx.find_object(CLIState)
    return state if state is not None else CLIState()


def global_option(ctx: Any, param: Any, value: Any) -> None:
    """Callback of ``-v``/``-q``/``--config`` given after a subcommand: set the global state.

    ``dare run X -v`` is ``dare -v run X``; both together count (``dare -v run X -v``: -vv).
    """
    if not value or ctx.resilient_parsing:
        return
    state = ctx.find_object(CLIState)
    if state is None:  # a command invoked without the dare callback
        state = ctx.ensure_object(CLIState)
    if param.name == "verbose":
        state.verbose += int(value)
    elif param.name == "quiet":
        state.quiet = True
    elif param.name == "config":  # after the subcommand: it wins over one given before
        from pathlib import Path

        from dare_cli.config import load_config

        with exit_on_error(state):
            state.config = load_config(Path(value))
    if state._undo_logging is not None:
        state.apply_logging()


def report_error(state: CLIState, message: str, error: BaseException | None = None) -> None:
    """Print ``error: message`` on one line, preceded by the traceback with ``-v``."""
    from rich.text import Text
    from rich.traceback import Traceback

    if error is not None and state.verbose:
        state.stderr.print(Traceback.from_exception(type(error), error, error.__traceback__))
    line = Text.assemble(("error:", "bold red"), " ", message)
    state.stderr.print(line, soft_wrap=True, highlight=False)


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@contextmanager
def exit_on_error(state: CLIState) -> Iterator[None]:
    """Turn the errors of a command into its message and exit code."""
    try:
        yield
    except MappingNotFound as exc:
        report_error(state, str(exc) + _did_you_mean(exc.name, exc.available), exc)
        raise typer.Exit(EXIT_USAGE) from exc
    except DareUsageError as exc:
        report_error(state, str(exc), exc)
        raise typer.Exit(EXIT_USAGE) from exc
    except Terminated as exc:
        report_error(state, "terminated (SIGTERM)", exc)
        raise typer.Exit(EXIT_TERMINATED) from exc
    except (KeyboardInterrupt, RunInterrupted) as exc:
        report_error(state, "interrupted", exc)
        raise typer.Exit(EXIT_INTERRUPTED) from exc
    except EngineError as exc:
        report_error(state, str(exc), exc)
        raise typer.Exit(EXIT_FAILED) from exc


_LOG_FORMAT = "%(name)s: %(message)s"
#: Loggers of PEs' own messages (``self.log``), shown by default.
PE_LOGGERS = ("engine.pe", "dispel4py")


def configure_logging(state: CLIState) -> Callable[[], None]:
    """Send log records to the stderr console; return a function that undoes it.

    Levels: ``-q`` errors only; by default warnings, and the info messages PEs write with
    ``self.log`` (engine and dispel4py PEs); ``-v`` info; ``-vv`` debug.
    """
    if state.verbose >= 2:
        level, pe_level = logging.DEBUG, logging.DEBUG
    elif state.verbose == 1:
        level, pe_level = logging.INFO, logging.INFO
    elif state.quiet:
        level, pe_level = logging.ERROR, logging.ERROR
    else:
        level, pe_level = logging.WARNING, logging.INFO
    from rich.logging import RichHandler

    handler = RichHandler(console=state.stderr, show_time=False, show_path=False,
                          markup=False, rich_tracebacks=False)
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    root = logging.getLogger()
    pe_loggers = [logging.getLogger(name) for name in PE_LOGGERS]
    saved = [(logger, logger.level) for logger in (root, *pe_loggers)]
    root.addHandler(handler)
    root.setLevel(level)
    for logger in pe_loggers:
        logger.setLevel(pe_level)

    def undo() -> None:
        root.removeHandler(handler)
        for logger, saved_level in saved:
            logger.setLevel(saved_level)

    return undo
