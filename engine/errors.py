"""Errors raised by the engine: each one says which PE, which instance, which data unit."""

from __future__ import annotations

from typing import Any

__all__ = [
    "EngineError",
    "GraphError",
    "MappingNotFound",
    "PEError",
    "RemoteTraceback",
    "RunInterrupted",
    "WorkerDied",
]


class EngineError(Exception):
    """Base class of every error raised by the engine."""


class GraphError(EngineError):
    """A workflow graph is invalid (raised when it is built, never when it runs)."""


class MappingNotFound(EngineError):
    """No mapping is installed under the requested name."""

    def __init__(self, name: str, available: list[str]) -> None:
        self.name = name
        self.available = sorted(available)
        super().__init__(
            f"unknown mapping {name!r}; available mappings: {', '.join(self.available)}"
        )


def _short_repr(value: Any, limit: int = 120) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__} with a failing __repr__>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class PEError(EngineError):
    """An exception raised inside a processing element.

    Parameters
    ----------
    pe_id
        Id of the PE in the graph.
    instance
        Index of the PE instance (0-based).
    unit_id
        Id of the data unit being processed, or ``None`` during setup or flush.
    phase
        ``"setup"``, ``"process"`` or ``"flush"``.
    data
        The payload being processed (only its short repr is kept).
    cause
        Text of the original exception, ``"TypeName: message"``.
    """

    def __init__(
        self,
        pe_id: str,
        instance: int,
        unit_id: str | None,
        phase: str,
        data: Any = None,
        cause: str = "",
    ) -> None:
        self.pe_id = pe_id
        self.instance = instance
        self.unit_id = unit_id
        self.phase = phase
        self.data_repr = _short_repr(data) if phase == "process" else None
        self.cause = cause
        where = f"PE {pe_id!r} instance {instance}"
        if phase == "process":
            what = f"while processing unit {unit_id} (data: {self.data_repr})"
        else:
            what = f"during {phase}"
        super().__init__(f"{where} failed {what}: {cause}")

    def __reduce__(self) -> tuple[Any, ...]:
        state = (self.pe_id, self.instance, self.unit_id, self.phase, None, self.cause)
        return (_rebuild_pe_error, (state, self.data_repr))


def _rebuild_pe_error(state: tuple[Any, ...], data_repr: str | None) -> PEError:
    error = PEError(*state)
    error.data_repr = data_repr
    error.args = (str(error).replace("(data: None)", f"(data: {data_repr})"),)
    return error


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in another process.

    Used as the ``__cause__`` of a :class:`PEError` when the original exception could not be
    sent back from a worker process.
    """

    def __init__(self, traceback_text: str) -> None:
        super().__init__(traceback_text)
        self.traceback_text = traceback_text

    def __str__(self) -> str:
        return f'\n"""\n{self.traceback_text}"""'


class WorkerDied(EngineError):
    """A worker process ended without finishing its work (killed, crashed, ``os._exit``)."""

    def __init__(self, worker: int, exitcode: int | None, hosted: list[str]) -> None:
        self.worker = worker
        self.exitcode = exitcode
        self.hosted = hosted
        if exitcode is not None and exitcode < 0:
            import signal

            try:
                how = f"was killed by signal {signal.Signals(-exitcode).name}"
            except ValueError:
                how = f"was killed by signal {-exitcode}"
        else:
            how = f"exited with code {exitcode} before finishing"
        super().__init__(f"worker process {worker} {how} (hosting {', '.join(hosted)})")


class RunInterrupted(EngineError):
    """The run was interrupted (Ctrl-C); every worker has been stopped."""
