"""The loop of one worker of a parallel mapping, independent of how bytes travel.

A :class:`Worker` hosts the PE instances a :class:`~engine.partition.Plan` gives to one worker:
it wires them (routing, batch buffers per link with their :class:`~engine.observe.LinkStats`),
drives its sources, processes incoming batches, counts end-of-stream markers per connection
and flushes an instance once every upstream instance has finished. Units between two instances
of the same worker stay in the process; everything else goes through a :class:`Transport`,
which the mapping supplies (``multi``: multiprocessing queues, ``mpi``: mpi4py).

Messages between workers are tuples: ``("D", dest, port, sender, seqs, payloads)`` carries a
batch of units for instance ``dest`` (a ``(pe_id, instance)`` pair) from the instance labelled
``sender``; ``seqs`` is a ``range`` when the sequence numbers are contiguous.
``("E", dest, sender)`` says that ``sender`` will send nothing more to ``dest``. A batch from
one sender instance to one receiver instance always travels on one channel, so order within a
link is preserved, and the end-of-stream marker follows the data.

Reports to whoever collects the results (the parent process, MPI rank 0) are tuples too:
``("P", worker, [(pe_id, instance, units_in, units_out), ...])`` (progress),
``("I", worker, InstanceStats)`` (an instance finished); outputs of unconnected ports go
through :meth:`Transport.output`, and the link counters through :meth:`Transport.finish`.
"""

from __future__ import annotations

import pickle
import signal
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from engine.errors import EngineError, PEError, RemoteTraceback
from engine.observe import InstanceStats, LinkStats, Observer
from engine.partition import Plan
from engine.runtime import Deliver, InstanceRunner, clock, fan_out, tearing_down

__all__ = [
    "MAX_BATCH_AGE",
    "PROGRESS_INTERVAL",
    "Collector",
    "InstanceKey",
    "LinkKey",
    "Message",
    "Send",
    "Transport",
    "Worker",
    "describe_failure",
    "detach_signals",
    "dump_message",
    "merge_links",
    "raise_failure",
]

InstanceKey = tuple[str, int]
LinkKey = tuple[str, str, str, str]
Message = tuple[Any, ...]
#: Sends one message to another worker and returns the number of bytes sent.
Send = Callable[[Message], int]

#: Seconds between progress reports from a worker (and the longest wait for one message).
PROGRESS_INTERVAL = 0.5
#: A batch older than this is sent even if it is not full (sources, slow producers).
MAX_BATCH_AGE = 0.05


class Transport:
    """How a worker reaches the other workers and the collector of results.

    A mapping subclasses it; the :class:`Worker` calls nothing else.
    """

    def channel(self, worker: int) -> Send:
        """Return ``send(message) -> bytes sent`` to worker ``worker`` (never this one)."""
        raise NotImplementedError

    def receive(self, timeout: float) -> Message | None:
        """Return the next message for this worker, or ``None`` after ``timeout`` seconds."""
        raise NotImplementedError

    def report(self, message: Message) -> None:
        """Send a progress (``"P"``) or instance (``"I"``) report to the collector."""
        raise NotImplementedError

    def output(self, pe_id: str, port: str, items: list[Any]) -> None:
        """Hand values emitted on an unconnected output port to the collector."""
        raise NotImplementedError

    def poll(self) -> None:
        """Called every :data:`MAX_BATCH_AGE` seconds or so while sources run (may raise)."""

    def finish(self, links: list[LinkStats]) -> None:
        """The worker is done: report the traffic of its links and say goodbye."""
        raise NotImplementedError


def dump_message(message: Message) -> bytes:
    """Pickle a message for another process, naming the sender and receiver on failure.

    Raises
    ------
    EngineError
        If the message cannot be pickled (a lambda, an open file, ... among the units).
    """
    try:
        return pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        kind, dest, *rest = message
        raise EngineError(
            f"units sent by {rest[1] if kind == 'D' else rest[0]} to "
            f"{dest[0]}[{dest[1]}] cannot cross processes (pickle failed: {exc}); "
            "emit picklable data, or run this PE with the simple mapping"
        ) from exc


def merge_links(totals: dict[LinkKey, LinkStats], links: Iterable[LinkStats]) -> None:
    """Add the counters of ``links`` (from one worker) to ``totals`` (over all workers)."""
    for link in links:
        key = (link.src, link.src_port, link.dst, link.dst_port)
        total = totals.setdefault(key, LinkStats(*key))
        total.units += link.units
        total.batches += link.batches
        total.bytes += link.bytes
        total.send_seconds += link.send_seconds


def detach_signals() -> None:
    """Signals of a worker process: the coordinator decides when to stop.

    Ctrl-C (SIGINT, sent to the whole terminal's process group) is ignored: the coordinator
    stops the workers itself, with SIGTERM, whose default action ends the worker at once
    (also when the process it was forked from handles SIGTERM otherwise, as ``dare`` does).
    A worker stopped so does not tear its instances down; the worker where a run failed does.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def describe_failure(
    exc: BaseException,
) -> tuple[PEError | None, BaseException | None, str]:
    """What a failing worker reports: ``(pe_error, original, traceback_text)``.

    ``pe_error`` is ``exc`` if it is a :class:`~engine.errors.PEError`; ``original`` is the
    exception it wraps (or ``exc`` itself), ``None`` if it cannot be pickled.
    """
    pe_error = exc if isinstance(exc, PEError) else None
    original = exc.__cause__ if pe_error is not None else exc
    text = "".join(traceback.format_exception(original)) if original is not None else ""
    try:
        pickle.dumps(original)
    except Exception:
        original = None
    return pe_error, original, text


def raise_failure(
    where: str, pe_error: PEError | None, original: BaseException | None, text: str
) -> NoReturn:
    """Raise, in the collecting process, what :func:`describe_failure` reported.

    A :class:`~engine.errors.PEError` is raised as it was, chained from the original
    exception, itself chained from its remote traceback; an engine error is raised as it
    was; anything else becomes an :class:`~engine.errors.EngineError` naming ``where``
    (``"worker process 3"``, ``"MPI rank 2"``) and the last line of the traceback.
    """
    remote = RemoteTraceback(text)
    if pe_error is not None:
        if original is not None:
            original.__cause__ = remote
        raise pe_error from (original or remote)
    if isinstance(original, EngineError):
        raise original from remote
    last_line = text.strip().splitlines()[-1] if text.strip() else "unknown error"
    raise EngineError(f"{where} failed: {last_line}") from (original or remote)


class Collector:
    """What the calling process gathers from the workers: outputs, counters, progress.

    Shared by the mappings whose workers report with the :class:`Worker` loop's messages.
    """

    def __init__(self, plan: Plan, observers: list[Observer]) -> None:
        self.observers = observers
        self.outputs: dict[str, dict[str, list[Any]]] = {}
        for pe_id, port in plan.graph.unconnected_outputs():
            self.outputs.setdefault(pe_id, {})[port] = []
        self.stats: list[InstanceStats] = []
        self.links: dict[LinkKey, LinkStats] = {}
        self.done: set[int] = set()

    def count(self, message: Message) -> bool:
        """Take a progress (``P``) or finished-instance (``I``) report; False for others."""
        kind = message[0]
        if kind == "P":
            for pe_id, instance, units_in, units_out in message[2]:
                for observer in self.observers:
                    observer.progress(pe_id, instance, units_in, units_out)
        elif kind == "I":
            stats = message[2]
            self.stats.append(stats)
            for observer in self.observers:
                observer.instance_finished(stats)
        else:
            return False
        return True


class Worker:
    """The PE instances of one worker, their outgoing batches, and the loop that runs them.

    Parameters
    ----------
    index
        Index of this worker in ``plan.workers``.
    plan
        The plan of the run.
    location
        Worker index hosting each PE instance.
    transport
        How messages and reports leave this worker.
    batch_size
        Units per batch on a link (a batch leaves earlier when the worker is about to wait).
    """

    def __init__(
        self,
        index: int,
        plan: Plan,
        location: dict[InstanceKey, int],
        transport: Transport,
        batch_size: int,
    ) -> None:
        self.index = index
        self.plan = plan
        self.transport = transport
        self.batch_size = batch_size
        self.local: deque[Message] = deque()
        self.flushers: list[Callable[[], None]] = []
        self.link_stats: dict[LinkKey, LinkStats] = {}
        self.last_progress = time.monotonic()
        graph = plan.graph
        self.runners: dict[InstanceKey, InstanceRunner] = {}
        self.waiting: dict[InstanceKey, int] = {}
        for pe_id, instance in plan.workers[index]:
            node = graph.node(pe_id)
            self.runners[(pe_id, instance)] = InstanceRunner(
                node, instance, plan.instances[pe_id], worker=index
            )
            self.waiting[(pe_id, instance)] = sum(
                plan.instances[edge.src] for edge in graph.incoming(pe_id)
            )
        channels: dict[int, Send] = {}
        self.eos_targets: dict[InstanceKey, list[tuple[InstanceKey, Send]]] = {}
        for (pe_id, instance), runner in self.runners.items():
            targets: list[tuple[InstanceKey, Send]] = []
            for edge in graph.outgoing(pe_id):
                count = plan.instances[edge.dst]
                delivers = []
                for j in range(count):
                    dest = (edge.dst, j)
                    worker = location[dest]
                    if worker not in channels:
                        channels[worker] = self._channel(worker)
                    send = channels[worker]
                    delivers.append(
                        self._buffer(send, ("D", dest, edge.dst_port, runner.label),
                                     (edge.src, edge.src_port, edge.dst, edge.dst_port))
                    )
                    targets.append((dest, send))
                router = plan.router(edge, instance)
                runner.routes[edge.src_port].append(fan_out(router, delivers))
            for port in runner.routes:
                if not runner.routes[port]:
                    runner.routes[port].append(self._output_buffer(pe_id, port))
            runner.wire()
            self.eos_targets[(pe_id, instance)] = targets

    # -- channels and batches ------------------------------------------------------------
    def _channel(self, worker: int) -> Send:
        """Return ``send(message)``, which returns the bytes sent (0 within the process)."""
        if worker != self.index:
            return self.transport.channel(worker)
        append = self.local.append

        def keep(message: Message) -> int:
            append(message)
            return 0

        return keep

    def _buffer(self, send: Send, header: Message, link: LinkKey) -> Deliver:
        limit = self.batch_size
        stats = self.link_stats.setdefault(link, LinkStats(*link))
        seqs: list[int] = []
        items: list[Any] = []

        def flush() -> None:
            nonlocal seqs, items
            if items:
                start = clock()
                stats.units += len(items)
                stats.batches += 1
                batch, numbers = items, seqs
                seqs, items = [], []
                if numbers[-1] - numbers[0] == len(numbers) - 1:  # contiguous: send a range
                    numbers = range(numbers[0], numbers[-1] + 1)  # type: ignore[assignment]
                stats.bytes += send((*header, numbers, batch))
                stats.send_seconds += clock() - start

        def deliver(seq: int, data: Any) -> None:
            seqs.append(seq)
            items.append(data)
            if len(items) >= limit:
                flush()

        self.flushers.append(flush)
        return deliver

    def _output_buffer(self, pe_id: str, port: str) -> Deliver:
        limit = self.batch_size
        output = self.transport.output
        items: list[Any] = []

        def flush() -> None:
            nonlocal items
            if items:
                batch, items = items, []
                output(pe_id, port, batch)

        def deliver(seq: int, data: Any) -> None:
            items.append(data)
            if len(items) >= limit:
                flush()

        self.flushers.append(flush)
        return deliver

    def flush_all(self) -> None:
        """Send every pending batch."""
        for flush in self.flushers:
            flush()

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> None:
        """Set up, run the sources, process until every instance has flushed, then finish.

        Every instance set up is torn down, after its flush, or when the loop fails.
        """
        with tearing_down(self.runners.values()):
            self._loop()

    def _loop(self) -> None:
        for runner in self.runners.values():
            runner.setup()
        self.last_progress = time.monotonic()
        active = set(self.runners)
        for key, runner in self.runners.items():
            if key[0] in self.plan.iterations:
                self._run_source(runner)
                self._finish(key)
                active.discard(key)
        for key in [key for key in active if self.waiting[key] == 0]:
            self._finish(key)
            active.discard(key)
        receive = self.transport.receive
        local = self.local
        message: Message | None
        while active:
            if local:
                message = local.popleft()
            else:
                self.flush_all()
                message = receive(PROGRESS_INTERVAL)
                if message is None:
                    self._progress()
                    continue
            if message[0] == "D":
                _, dest, port, sender, seqs, payloads = message
                self.runners[dest].process_batch(port, sender, seqs, payloads)
            else:
                dest = message[1]
                self.waiting[dest] -= 1
                if self.waiting[dest] == 0:
                    self._finish(dest)
                    active.discard(dest)
            if time.monotonic() - self.last_progress > PROGRESS_INTERVAL:
                self._progress()
        self.flush_all()
        self.transport.finish(list(self.link_stats.values()))

    def _run_source(self, runner: InstanceRunner) -> None:
        last = [clock()]
        poll = self.transport.poll

        def after_each() -> None:
            now = clock()
            if now - last[0] > MAX_BATCH_AGE:
                last[0] = now
                self.flush_all()
                poll()
                if time.monotonic() - self.last_progress > PROGRESS_INTERVAL:
                    self._progress()

        runner.run_iterations(self.plan.iterations[runner.node.id], after_each)

    def _finish(self, key: InstanceKey) -> None:
        runner = self.runners[key]
        runner.flush()
        runner.teardown()
        self.flush_all()
        for dest, send in self.eos_targets[key]:
            send(("E", dest, runner.label))
        self.transport.report(("I", self.index, runner.finish_stats()))

    def _progress(self) -> None:
        self.last_progress = time.monotonic()
        counts = [
            (pe_id, instance, runner.stats.units_in, runner._emitted())
            for (pe_id, instance), runner in self.runners.items()
        ]
        self.transport.report(("P", self.index, counts))
