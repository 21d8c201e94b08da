"""The loop of one worker of a parallel mapping, independent of how bytes travel.

A :class:`Worker` hosts the PE instances a :class:`~engine.partition.Plan` gives to one worker:
it wires them (routing, batch buffers per link with their :class:`~engine.observe.LinkStats`),
drives its sources, processes incoming batches, counts end-of-stream markers per connection
and flushes an instance once every upstream instance has finished. Units between two instances
of the same worker stay in the process; everything else goes through a :class:`Transport`,
which the mapping supplies (``multi``: multiprocessing queues, ``mpi``: mpi4py).

Messages between workers are tuples: ``("D", dest, port, sender, seqs, payloads, worker)``
carries a batch of units for instance ``dest`` (a ``(pe_id, instance)`` pair) from the instance
labelled ``sender`` on worker ``worker``; ``seqs`` is a ``range`` when the sequence numbers are
contiguous. ``("R", dest, worker, sent)`` and ``("C", dest, processed)`` are the flow control
of :class:`Worker` (back-pressure).
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
from engine.runtime import (
    Deliver,
    InstanceRunner,
    clock,
    fan_out,
    paused_unit_timer,
    tearing_down,
)

__all__ = [
    "DEFAULT_QUEUE_DEPTH",
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
#: Batches one worker may have in flight to one PE instance before it waits for the receiver.
DEFAULT_QUEUE_DEPTH = 32


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


class _Credit:
    """Flow control of the batches one worker sends to one PE instance.

    ``sent`` batches have left, ``confirmed`` of them are known to be processed; ``asked`` is
    whether a request for confirmation (``"R"``) is waiting for its answer (``"C"``).
    """

    __slots__ = ("asked", "confirmed", "sent")

    def __init__(self) -> None:
        self.sent = 0
        self.confirmed = 0
        self.asked = False


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
    queue_depth
        Batches this worker may have in flight to one PE instance (see :meth:`_acquire`).

    Notes
    -----
    **Back-pressure.** A sender may have at most ``queue_depth`` unprocessed batches on its way
    to one instance, so a fast source cannot fill memory ahead of a slow consumer: every inbox
    holds at most ``senders x queue_depth x batch_size`` units. Halfway through its window the
    sender asks the receiver (``("R", dest, worker, sent)``) to confirm, and the receiver
    answers (``("C", dest, processed)``) once it has processed that many; so the sender
    rarely stops, and every request gets exactly one answer (none is left in a queue after
    the run). A sender that must wait keeps processing the units of instances *later* in the
    graph's topological order than the one emitting (nothing on its call stack), and keeps
    the others for later in arrival order. Two workers that send to each other (partitions)
    therefore cannot block each other: of all waiting workers, the one waiting at the latest
    position waits for an instance that every other worker is allowed to process.
    """

    def __init__(
        self,
        index: int,
        plan: Plan,
        location: dict[InstanceKey, int],
        transport: Transport,
        batch_size: int,
        queue_depth: int = DEFAULT_QUEUE_DEPTH,
    ) -> None:
        self.index = index
        self.plan = plan
        self.location = location
        self.transport = transport
        self.batch_size = batch_size
        self.queue_depth = queue_depth
        self.ask_at = max(1, queue_depth // 2)
        #: Messages received or sent within this worker, not processed yet, in arrival order.
        self.pending: deque[Message] = deque()
        self.flushers: dict[InstanceKey, list[Callable[[], None]]] = {}
        self.link_stats: dict[LinkKey, LinkStats] = {}
        self.last_progress = time.monotonic()
        graph = plan.graph
        #: Position of each PE in the graph's topological order: links go from low to high.
        self.position = {pe_id: number for number, pe_id in enumerate(graph.nodes)}
        self.credits: dict[InstanceKey, _Credit] = {}
        #: Batches processed per (sending worker, instance), and requests not answered yet.
        self.processed: dict[tuple[int, InstanceKey], int] = {}
        self.requests: dict[tuple[int, InstanceKey], int] = {}
        self.channels: dict[int, Send] = {}
        self.runners: dict[InstanceKey, InstanceRunner] = {}
        self.waiting: dict[InstanceKey, int] = {}
        self.active: set[InstanceKey] = set()
        for pe_id, instance in plan.workers[index]:
            node = graph.node(pe_id)
            self.runners[(pe_id, instance)] = InstanceRunner(
                node, instance, plan.instances[pe_id], worker=index
            )
            self.waiting[(pe_id, instance)] = sum(
                plan.instances[edge.src] for edge in graph.incoming(pe_id)
            )
        self.eos_targets: dict[InstanceKey, list[InstanceKey]] = {}
        for key, runner in self.runners.items():
            self._wire(key, runner)

    def _wire(self, key: InstanceKey, runner: InstanceRunner) -> None:
        """Route the outputs of instance ``key`` to batch buffers, one per receiving instance."""
        pe_id, instance = key
        targets: list[InstanceKey] = []
        self.flushers[key] = []
        for edge in self.plan.graph.outgoing(pe_id):
            delivers = []
            for j in range(self.plan.instances[edge.dst]):
                dest = (edge.dst, j)
                self.credits.setdefault(dest, _Credit())
                link = (edge.src, edge.src_port, edge.dst, edge.dst_port)
                header = ("D", dest, edge.dst_port, runner.label)
                delivers.append(self._buffer(key, header, link))
                targets.append(dest)
            router = self.plan.router(edge, instance)
            runner.routes[edge.src_port].append(fan_out(router, delivers))
        for port in runner.routes:
            if not runner.routes[port]:
                runner.routes[port].append(self._output_buffer(key, port))
        runner.wire()
        self.eos_targets[key] = targets

    # -- channels and batches ------------------------------------------------------------
    def _send(self, dest: InstanceKey, message: Message) -> int:
        """Send ``message`` to the worker hosting ``dest``; return the bytes sent."""
        worker = self.location[dest]
        if worker == self.index:
            self.pending.append(message)
            return 0
        return self._channel(worker)(message)

    def _channel(self, worker: int) -> Send:
        send = self.channels.get(worker)
        if send is None:
            send = self.channels[worker] = self.transport.channel(worker)
        return send

    def _buffer(self, key: InstanceKey, header: Message, link: LinkKey) -> Deliver:
        limit = self.batch_size
        stats = self.link_stats.setdefault(link, LinkStats(*link))
        dest: InstanceKey = header[1]
        position = self.position[key[0]]
        runner = self.runners[key]
        seqs: list[int] = []
        items: list[Any] = []

        def flush() -> None:
            nonlocal seqs, items
            if items:
                runner.waited += self._acquire(dest, position)  # not processing time
                start = clock()
                stats.units += len(items)
                stats.batches += 1
                batch, numbers = items, seqs
                seqs, items = [], []
                if numbers[-1] - numbers[0] == len(numbers) - 1:  # contiguous: send a range
                    numbers = range(numbers[0], numbers[-1] + 1)  # type: ignore[assignment]
                stats.bytes += self._send(dest, (*header, numbers, batch, self.index))
                stats.send_seconds += clock() - start
                self._sent(dest)

        def deliver(seq: int, data: Any) -> None:
            seqs.append(seq)
            items.append(data)
            if len(items) >= limit:
                flush()

        self.flushers[key].append(flush)
        return deliver

    def _output_buffer(self, key: InstanceKey, port: str) -> Deliver:
        limit = self.batch_size
        output = self.transport.output
        items: list[Any] = []

        def flush() -> None:
            nonlocal items
            if items:
                batch, items = items, []
                output(key[0], port, batch)

        def deliver(seq: int, data: Any) -> None:
            items.append(data)
            if len(items) >= limit:
                flush()

        self.flushers[key].append(flush)
        return deliver

    def flush_all(self) -> None:
        """Send every pending batch."""
        for flushers in self.flushers.values():
            for flush in flushers:
                flush()

    # -- flow control --------------------------------------------------------------------
    def _sent(self, dest: InstanceKey) -> None:
        """Count a batch sent to ``dest``; ask for confirmation halfway through the window."""
        credit = self.credits[dest]
        credit.sent += 1
        if not credit.asked and credit.sent - credit.confirmed >= self.ask_at:
            self._ask(dest, credit)

    def _ask(self, dest: InstanceKey, credit: _Credit) -> None:
        """Ask the worker hosting ``dest`` to confirm the batches sent so far.

        Only while a batch for ``dest`` is being sent: the request then travels ahead of the
        sender's end-of-stream marker, so the receiver is still there to answer it.
        """
        worker = self.location[dest]
        if worker != self.index:  # local batches are confirmed directly when processed
            credit.asked = True
            self._channel(worker)(("R", dest, self.index, credit.sent))

    def _acquire(self, dest: InstanceKey, position: int) -> float:
        """Wait until a batch may leave for ``dest``; return the seconds waited.

        While it waits, the worker processes units for instances after ``position`` (the
        emitting PE's place in the topological order) and keeps the others for later.
        """
        credit = self.credits[dest]
        if credit.sent - credit.confirmed < self.queue_depth:
            return 0.0
        start = clock()
        with paused_unit_timer():
            while credit.sent - credit.confirmed >= self.queue_depth:
                if not credit.asked:
                    self._ask(dest, credit)
                self._step(position)
        return clock() - start

    def _step(self, position: int) -> None:
        """Handle one message for an instance after ``position``, or wait for one to arrive."""
        for number, kept in enumerate(self.pending):
            if self.position[kept[1][0]] > position:
                del self.pending[number]
                self._handle(kept)
                return
        message = self.transport.receive(MAX_BATCH_AGE)
        if message is None:
            self._progress_due()
        elif message[0] in "DE":
            if self.position[message[1][0]] > position:
                self._handle(message)
            else:
                self.pending.append(message)
        else:
            self._control(message)

    def _control(self, message: Message) -> None:
        """Take a request for confirmation (``R``) or a confirmation (``C``)."""
        if message[0] == "C":
            _, dest, processed = message
            credit = self.credits[dest]
            credit.confirmed = max(credit.confirmed, processed)
            credit.asked = False  # asked again with the next batch (never after the last)
            return
        _, dest, worker, upto = message
        if self.processed.get((worker, dest), 0) >= upto:
            self._channel(worker)(("C", dest, upto))
        else:
            self.requests[(worker, dest)] = upto

    def _confirm(self, dest: InstanceKey, worker: int) -> None:
        """Count a processed batch from ``worker``; answer its request once it is met."""
        if worker == self.index:
            self.credits[dest].confirmed += 1
            return
        key = (worker, dest)
        processed = self.processed[key] = self.processed.get(key, 0) + 1
        upto = self.requests.get(key)
        if upto is not None and processed >= upto:
            del self.requests[key]
            self._channel(worker)(("C", dest, processed))

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
        self.active = set(self.runners)
        for key, runner in self.runners.items():
            if key[0] in self.plan.iterations:
                self._run_source(runner)
                self._finish(key)
        for key in [key for key in self.active if self.waiting[key] == 0]:
            self._finish(key)
        receive = self.transport.receive
        pending = self.pending
        message: Message | None
        while self.active or any(credit.asked for credit in self.credits.values()):
            if pending:
                message = pending.popleft()
            else:
                self.flush_all()
                message = receive(PROGRESS_INTERVAL)
                if message is None:
                    self._progress()
                    continue
            if message[0] in "DE":
                self._handle(message)
            else:
                self._control(message)
            self._progress_due()
        self.flush_all()
        self.transport.finish(list(self.link_stats.values()))

    def _handle(self, message: Message) -> None:
        """Process a batch (``D``) or an end-of-stream marker (``E``)."""
        if message[0] == "D":
            _, dest, port, sender, seqs, payloads, worker = message
            self.runners[dest].process_batch(port, sender, seqs, payloads)
            self._confirm(dest, worker)
            return
        dest = message[1]
        self.waiting[dest] -= 1
        if self.waiting[dest] == 0:
            self._finish(dest)

    def _run_source(self, runner: InstanceRunner) -> None:
        last = [clock()]
        poll = self.transport.poll

        def after_each() -> None:
            now = clock()
            if now - last[0] > MAX_BATCH_AGE:
                last[0] = now
                self.flush_all()
                poll()
                self._progress_due()

        runner.run_iterations(self.plan.iterations[runner.node.id], after_each)

    def _finish(self, key: InstanceKey) -> None:
        """Flush instance ``key``, send its last batches and its end-of-stream markers."""
        runner = self.runners[key]
        runner.flush()
        runner.teardown()
        for flush in self.flushers[key]:  # only its own: others may be on the call stack
            flush()
        for dest in self.eos_targets[key]:
            self._send(dest, ("E", dest, runner.label))
        self.active.discard(key)
        self.transport.report(("I", self.index, runner.finish_stats()))

    def _progress_due(self) -> None:
        if time.monotonic() - self.last_progress > PROGRESS_INTERVAL:
            self._progress()

    def _progress(self) -> None:
        self.last_progress = time.monotonic()
        counts = [
            (pe_id, instance, runner.stats.units_in, runner._emitted())
            for (pe_id, instance), runner in self.runners.items()
        ]
        self.transport.report(("P", self.index, counts))
