"""What every mapping does to a PE instance: bind it, count, time, and wrap its errors.

A mapping creates one :class:`InstanceRunner` per PE instance and gives it, for each output
port, the functions that deliver ``(seq, data)`` to the connections of that port. Units are
identified by ``"PE[instance]#seq"`` of the instance that emitted them (sequence numbers are
per emitting instance, shared by all its output ports), and source iterations by
``"PE[instance]@iteration"``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import GeneratorType
from typing import Any

from engine.errors import EngineError, PEError
from engine.graph import Node
from engine.observe import InstanceStats
from engine.pe import ConsumerPE, IterativePE, ProcessingElement
from engine.routing import BROADCAST

__all__ = [
    "Deliver",
    "InstanceRunner",
    "UnitTimeout",
    "fan_out",
    "paused_unit_timer",
    "teardown_after_failure",
    "tearing_down",
    "time_limited",
    "unit_kernel",
]

#: Delivers one unit, ``deliver(seq, data)``.
Deliver = Callable[[int, Any], None]

clock = time.perf_counter

logger = logging.getLogger(__name__)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class InstanceRunner:
    """One PE instance during a run.

    Parameters
    ----------
    node
        The graph node; its PE is deep-copied so that instances never share state.
    instance, n_instances
        Index of this instance and number of instances of the PE.
    worker
        Index of the worker process hosting it (for reports).
    """

    def __init__(self, node: Node, instance: int, n_instances: int, worker: int = 0) -> None:
        self.node = node
        self.pe = copy.deepcopy(node.pe)
        self.pe.id = node.id
        self.pe.instance = instance
        self.pe.n_instances = n_instances
        self.label = f"{node.id}[{instance}]"
        self.stats = InstanceStats(node.id, instance, worker)
        self.routes: dict[str, list[Deliver]] = {port.name: [] for port in node.outputs}
        self._compiled: dict[str, Deliver] = {}
        #: Set by mappings that run consumers inside their producer's call (``simple``): time
        #: spent in nested calls accumulates in ``nested[0]`` and is not charged here.
        self.nested: list[float] | None = None
        #: Seconds this instance waited for its receivers (back-pressure), added by the
        #: mapping; a wait during a call is not charged as the call's processing time.
        self.waited = 0.0
        #: ``"new"``, ``"set up"`` (teardown due) or ``"torn down"``.
        self.state = "new"
        self.unit_timeout = node.unit_timeout
        self.emit, self._emitted = self._make_emit()
        # Bind ``write`` on the object: PEs (and dispel4py PEs) call ``self.write``.
        self.pe.write = self.emit  # type: ignore[method-assign,assignment]

    def wire(self) -> None:
        """Freeze ``routes`` (port -> deliver functions) into one function per port.

        Called by the mapping once every connection has been added to ``routes``.
        """
        for port, targets in self.routes.items():
            self._compiled[port] = _combine(tuple(targets))

    def _make_emit(self) -> tuple[Callable[[str, Any], None], Callable[[], int]]:
        """Build ``emit(port, data)``: the hot path of every mapping, kept to a closure."""
        routes = self._compiled
        node_id = self.node.id
        seq = 0

        def emit(port: str, data: Any) -> None:
            nonlocal seq
            try:
                targets = routes[port]
            except KeyError:
                raise EngineError(
                    f"PE {node_id!r} wrote to unknown output port {port!r} "
                    f"(outputs: {', '.join(routes) or 'none'})"
                ) from None
            seq += 1
            targets(seq, data)

        def emitted() -> int:
            return seq

        return emit, emitted

    def finish_stats(self) -> InstanceStats:
        """Return the counters, with ``units_out`` taken from the emission count."""
        self.stats.units_out = self._emitted()
        return self.stats

    # -- lifecycle -------------------------------------------------------------------------
    def setup(self) -> None:
        """Run the PE's setup, wrapping its errors."""
        start = clock()
        try:
            with _termination_deferred():  # a setup is torn down whole or not at all
                self.pe.setup()
                self.state = "set up"
        except PEError:
            raise
        except Exception as exc:
            raise PEError(self.node.id, self.stats.instance, None, "setup", None,
                          _describe(exc)) from exc
        self.stats.process_seconds += clock() - start

    def teardown(self) -> None:
        """Run the PE's teardown once, if its setup succeeded; wrap its errors."""
        if self.state != "set up":
            return
        self.state = "torn down"
        start = clock()
        try:
            with _termination_deferred():
                self.pe.teardown()
        except PEError:
            raise
        except Exception as exc:
            raise PEError(self.node.id, self.stats.instance, None, "teardown", None,
                          _describe(exc)) from exc
        self.stats.process_seconds += clock() - start

    def flush(self) -> None:
        """Run the PE's flush (which may emit), wrapping its errors."""
        nested = self.nested or [0.0]
        outer, nested[0] = nested[0], 0.0
        waited = self.waited
        start = clock()
        try:
            self.pe._flush()
        except PEError:
            raise
        except Exception as exc:
            raise PEError(self.node.id, self.stats.instance, None, "flush", None,
                          _describe(exc)) from exc
        elapsed = clock() - start
        self.stats.process_seconds += elapsed - nested[0] - (self.waited - waited)
        nested[0] = outer + elapsed

    def kernel(self) -> Callable[[str | None, Any], None]:
        """``kernel(port, data)``: process one unit, within the PE's ``unit_timeout`` if any."""
        handle = unit_kernel(self.pe, self.emit)
        return handle if self.unit_timeout is None else time_limited(handle, self.unit_timeout)

    def error(self, unit_id: str, data: Any, exc: BaseException) -> PEError:
        """Build the error for a failure while processing one unit."""
        return PEError(self.node.id, self.stats.instance, unit_id, "process", data,
                       _describe(exc))

    def run_iterations(self, iterations: Sequence[Any], after_each: Callable[[], None]) -> None:
        """Drive a source instance through its iterations (each within ``unit_timeout``)."""
        handle: Callable[[str | None, Any], None] = self.pe._handle
        if self.unit_timeout is not None:
            handle = time_limited(handle, self.unit_timeout)
        stats = self.stats
        nested = self.nested or [0.0]
        for number, value in enumerate(iterations):
            nested[0] = 0.0
            waited = self.waited
            start = clock()
            try:
                handle(None, value)
            except PEError:
                raise
            except Exception as exc:
                raise self.error(f"{self.label}@{number}", value, exc) from exc
            stats.units_in += 1
            stats.process_seconds += clock() - start - nested[0] - (self.waited - waited)
            after_each()

    def process_batch(
        self, port: str, sender: str, seqs: Sequence[int], payloads: Sequence[Any]
    ) -> None:
        """Process a batch of units that arrived on ``port`` from instance ``sender``."""
        kernel = self.kernel()
        waited = self.waited
        start = clock()
        index = 0
        try:
            for index, data in enumerate(payloads):  # noqa: B007 (index used on error)
                kernel(port, data)
        except PEError:
            raise
        except Exception as exc:
            raise self.error(f"{sender}#{seqs[index]}", payloads[index], exc) from exc
        finally:
            self.stats.process_seconds += clock() - start - (self.waited - waited)
        self.stats.units_in += len(payloads)


def unit_kernel(pe: ProcessingElement, emit: Callable[[str, Any], None]) -> Callable[..., None]:
    """Return the fastest ``kernel(port, data)`` that processes one unit for ``pe``.

    For the standard shapes the kernel calls ``apply``/``consume``/``process`` directly
    (one Python call less per unit than going through ``pe._handle``); a PE class that
    overrides ``_handle`` (such as the dispel4py adapters) keeps its own.
    """
    handler = type(pe)._handle
    if handler is IterativePE._handle:
        apply = pe.apply  # type: ignore[attr-defined]

        def apply_kernel(port: str, data: Any) -> None:
            result = apply(data)
            if result is not None:
                if result.__class__ is GeneratorType:
                    for item in result:
                        emit("output", item)
                else:
                    emit("output", result)

        return apply_kernel
    if handler is ConsumerPE._handle:
        consume = pe.consume  # type: ignore[attr-defined]
        return lambda port, data: consume(data)
    if handler is ProcessingElement._handle:
        process = pe.process

        def process_kernel(port: str, data: Any) -> None:
            result = process(port, data)
            if result:
                for name, value in result.items():
                    emit(name, value)

        return process_kernel
    return pe._handle


def _combine(targets: tuple[Deliver, ...]) -> Deliver:
    if len(targets) == 1:
        return targets[0]

    def deliver_all(seq: int, data: Any) -> None:
        for target in targets:
            target(seq, data)

    return deliver_all


def fan_out(router: Callable[[Any], int], targets: Sequence[Deliver]) -> Deliver:
    """Return a deliver function that routes each unit to one (or every) target instance."""
    if len(targets) == 1:
        return targets[0]

    def deliver(seq: int, data: Any) -> None:
        index = router(data)
        if index == BROADCAST:
            for target in targets:
                target(seq, data)
        else:
            targets[index](seq, data)

    return deliver


@contextlib.contextmanager
def tearing_down(runners: Iterable[InstanceRunner]) -> Iterator[None]:
    """Tear down, when the block fails, every instance that was set up and not torn down.

    The block's exception goes on; a teardown that fails then is logged (it must not hide
    the failure that ended the run). On success the block tears its instances down itself,
    after each flush, so that a teardown's failure fails the run.
    """
    try:
        yield
    except BaseException:
        teardown_after_failure(runners)
        raise


def teardown_after_failure(runners: Iterable[InstanceRunner]) -> None:
    """Tear down every instance still set up; log (not raise) the teardowns that fail."""
    for runner in runners:
        try:
            runner.teardown()
        except Exception as exc:
            logger.warning("after the run's failure: %s", exc)


@contextlib.contextmanager
def _termination_deferred() -> Iterator[None]:
    """Hold SIGTERM until the block ends (POSIX), so that it never interrupts it halfway.

    Worker processes turn SIGTERM into ``SystemExit`` to tear their instances down
    (:func:`engine.mappings.worker.detach_signals`); a SIGTERM arriving during a setup would
    otherwise leave what the setup had acquired so far with nothing to release it.
    """
    mask = getattr(signal, "pthread_sigmask", None)
    if mask is None:
        yield
        return
    previous = mask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        mask(signal.SIG_SETMASK, previous)


class UnitTimeout(Exception):
    """A unit (or source iteration) took longer than its PE's ``unit_timeout``."""


#: The limits of the units in progress in this process, innermost last (``simple`` runs a
#: consumer's unit inside its producer's).
_LIMITS: list[float] = []


def _on_alarm(signum: int, frame: Any) -> None:
    limit = _LIMITS[-1] if _LIMITS else 0.0
    raise UnitTimeout(f"the unit took longer than unit_timeout = {limit:g} s")


def time_limited(
    handle: Callable[[str | None, Any], None], seconds: float
) -> Callable[[str | None, Any], None]:
    """``handle``, interrupted by :class:`UnitTimeout` when one call exceeds ``seconds``.

    A real-time interval timer (``setitimer``; two system calls per unit, about 1 µs) raises
    in the PE's code through SIGALRM, which also cuts a ``time.sleep`` or a blocking socket
    read short; code that holds the interpreter (a long C call) is interrupted when it
    returns. Signals reach only a process's main thread: elsewhere (a run started from
    another thread) the limit is not enforced, with a warning.
    """
    try:
        if signal.getsignal(signal.SIGALRM) is not _on_alarm:
            signal.signal(signal.SIGALRM, _on_alarm)
    except (ValueError, AttributeError):  # not the main thread, or no SIGALRM
        logger.warning("unit_timeout = %g s is not enforced: only a process's main thread "
                       "can be interrupted", seconds)
        return handle
    setitimer, timer = signal.setitimer, signal.ITIMER_REAL

    def limited(port: str | None, data: Any) -> None:
        outer, _ = setitimer(timer, seconds)
        _LIMITS.append(seconds)
        started = time.monotonic()
        try:
            handle(port, data)
        finally:
            _LIMITS.pop()
            # give an enclosing unit (simple: the producer's) what remains of its own limit
            setitimer(timer, max(outer - (time.monotonic() - started), 1e-6) if outer else 0)

    return limited


@contextlib.contextmanager
def paused_unit_timer() -> Iterator[None]:
    """Stop the clock of the unit in progress, if any, for the time of the ``with`` block.

    A worker waiting for a slow receiver (back-pressure) is not the PE's doing: the wait does
    not count against the emitting unit's ``unit_timeout``.
    """
    if not _LIMITS:
        yield
        return
    remaining, _ = signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        yield
    finally:
        if remaining:
            signal.setitimer(signal.ITIMER_REAL, remaining)
