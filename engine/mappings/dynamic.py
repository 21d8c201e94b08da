"""The ``dynamic`` mapping: an autoscaling pool of worker processes on one machine.

Stateless PEs (see :func:`engine.mappings.tasks.pooled_pes`) are served by an elastic *pool*:
their tasks (batches of at most ``batch_size`` units) go to one shared queue, and any pool
worker runs any of them, keeping one instance per PE it meets (set up at first use). Sources
and stateful PEs keep *dedicated* instances, one process each, routed by their groupings as in
``multi``: ``setup`` and ``flush`` run exactly once per instance and fan-out reaches every
consumer (what dispel4py 2.0's "hybrid" mapping set out to do). Termination is counted (see
:mod:`engine.mappings.tasks`), never inferred from idle time.

Autoscaling policy
------------------
Every ``tick`` seconds (default 0.1) the coordinator takes the pool's *load*: pool tasks
created and not yet completed, per running pool worker.

* **grow**: if the load exceeds ``threshold`` (default 2: each worker has one task running and
  more than one waiting) and the pool has fewer than ``max_workers`` processes, one worker is
  started (a fork: a few milliseconds);
* **shrink**: if the load has stayed below 1 (some worker is idle) for ``patience`` ticks in a
  row (default 5) and more than ``min_workers`` run, one worker is asked to retire: it takes a
  retirement notice from the shared queue after the tasks ahead of it, so it finishes its
  current task first, and exits.

The adaptive algorithm of Liang, Filgueira and Yan (WORKS 2020) also compares the queue length
with a threshold and adds a process while it is exceeded; it shrinks whenever it is not. Here
shrinking has its own, lower mark (idle capacity, not "below the growth threshold") and must
persist for ``patience`` ticks: with one mark the pool oscillates when the load sits near it,
and a retired process is expensive to restart. Parameters (``min_workers``, ``max_workers``,
``threshold``, ``tick``, ``patience``) are options, so they can come from a previous run's
monitoring record. ``workers`` is the default of ``max_workers``; ``min_workers`` defaults to 1.

The summary's ``scaling`` record holds the pool size over time (``sizes``: ``[seconds, n]`` at
every change), the process-seconds the pool used, and how often it grew and shrank.

Failures
--------
An exception in a PE ends the run with the same :class:`~engine.errors.PEError` as ``multi``.
A process that dies (dedicated or pool) ends it with :class:`~engine.errors.WorkerDied`
within a second: a pool worker may have sent part of a task's output before it died, and one
machine's queues cannot take it back, so its task is not re-queued (the ``redis`` mapping,
whose commits are transactional, does re-run such tasks).
"""

from __future__ import annotations

import math
import os
import pickle
import queue
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.errors import EngineError, WorkerDied
from engine.graph import Graph, WorkflowGraph
from engine.mappings.base import Enactment, Mapping, Prepared
from engine.mappings.tasks import (
    DestKey,
    Ledger,
    Pace,
    Ready,
    Report,
    RunSpec,
    TaskWorker,
    Throttle,
    backlog_limit,
    coordinated,
    dump_report,
    dump_task,
    failure_message,
    pace_of,
    partition_rows,
    plan_run,
    process_context,
    raise_failure,
    send_tasks,
    stop_processes,
)
from engine.mappings.worker import DEFAULT_QUEUE_DEPTH, detach_signals
from engine.monitor import MonitorRecord
from engine.observe import Observer
from engine.partition import InputSpec, Plan

__all__ = ["DynamicMapping", "Scaling"]

#: Default units per task: small enough to spread a burst of slow units over the pool, large
#: enough to keep the cost of a task (a few µs per unit at 32) small. Larger batches raise
#: the throughput of trivial stages (about 5x at 512), smaller ones the elasticity.
DEFAULT_BATCH = 32
#: How often an idle worker checks that its coordinator still exists.
ORPHAN_CHECK = 1.0


@dataclass(frozen=True)
class Scaling:
    """Autoscaling parameters of the pool (see the module docstring)."""

    min_workers: int = 1
    max_workers: int = 2
    threshold: float = 2.0
    tick: float = 0.1
    patience: int = 5

    def __post_init__(self) -> None:
        if self.min_workers < 1:
            raise EngineError(f"min_workers must be >= 1, not {self.min_workers}")
        if self.max_workers < self.min_workers:
            raise EngineError(f"max_workers ({self.max_workers}) must be >= min_workers "
                              f"({self.min_workers})")
        if self.threshold <= 0 or self.tick <= 0 or self.patience < 1:
            raise EngineError("threshold and tick must be > 0 and patience >= 1")

    @classmethod
    def from_record(cls, record: MonitorRecord, pooled: Iterable[str], cpus: int) -> Scaling:
        """Pool bounds from a previous run of the same graph.

        A record of a ``dynamic`` run gives its pool's peak as ``max_workers`` and its mean
        size (process-seconds over wall time) as ``min_workers``. Any other record gives the
        processes the stateless PEs kept busy on average (their processing time over the
        wall time), plus one for bursts, as ``max_workers``, and ``min_workers`` = 1. Both
        are kept between 1 and ``cpus``.
        """
        scaling, wall = record.scaling, max(record.wall_seconds, 1e-9)
        if scaling.get("peak"):
            high = int(scaling["peak"])
            low = round(float(scaling.get("pool_process_seconds", 0.0)) / wall)
        else:
            busy = sum(record.seconds_of(pe) for pe in pooled) / wall
            high, low = math.ceil(busy) + 1, 1
        high = max(1, min(high, cpus))
        return cls(min_workers=max(1, min(low, high)), max_workers=high)


class DynamicMapping(Mapping):
    """Autoscaling pool for stateless PEs, dedicated processes for the others."""

    name = "dynamic"
    description = ("autoscaling pool of worker processes on one machine; stateful PEs keep "
                   "dedicated instances")
    options = ("batch_size", "queue_depth", "min_workers", "max_workers", "threshold", "tick",
               "patience", "start_method", "record")

    def prepare(
        self,
        graph: Graph | WorkflowGraph,
        inputs: InputSpec,
        workers: int | None,
        options: dict[str, Any],
    ) -> Prepared:
        """Plan dedicated instances for ``workers`` processes, and size the pool.

        ``workers`` (default: the number of CPUs) is the default ``max_workers`` and the
        worker count dedicated instances are planned for (as in ``multi``). The pool has
        ``min_workers`` to ``max_workers`` processes; ``record``, a monitoring record of a
        previous run, sets the bounds not given explicitly (:meth:`Scaling.from_record`).
        """
        workers, plan, spec = plan_run(graph, inputs, workers,
                                       options.get("batch_size", DEFAULT_BATCH))
        min_workers, max_workers = options.get("min_workers"), options.get("max_workers")
        record: MonitorRecord | None = options.get("record")
        if record is not None:
            record.check_graph(plan.graph)
            learnt = Scaling.from_record(record, spec.pooled, os.cpu_count() or 1)
            min_workers = min_workers or learnt.min_workers
            max_workers = max_workers or max(learnt.max_workers, min_workers)
        min_workers = min_workers or 1
        scaling = Scaling(min_workers, max_workers or max(workers, min_workers),
                          options.get("threshold", 2.0), options.get("tick", 0.1),
                          options.get("patience", 5))
        placement = {pe: (scaling.max_workers if pe in spec.pooled else n)
                     for pe, n in plan.instances.items()}
        return Prepared(plan, instances=placement, state=(spec, scaling))

    def enact(
        self, prepared: Prepared, observers: Sequence[Observer], options: dict[str, Any]
    ) -> Enactment:
        """Run the pool and the dedicated processes until every PE is complete."""
        spec, scaling = prepared.state
        limit = backlog_limit(options.get("queue_depth", DEFAULT_QUEUE_DEPTH),
                              scaling.max_workers, spec.batch_size)
        coordinator = _Coordinator(prepared.plan, spec,
                                   process_context(options.get("start_method")), scaling,
                                   list(observers), Throttle(limit))
        return coordinated(coordinator)


@dataclass
class _PoolWorker:
    number: int
    process: Any
    started: float
    ended: float | None = None


@dataclass
class _Coordinator:
    """Starts the processes, counts reports, scales the pool and stops everything."""

    plan: Plan
    spec: RunSpec
    context: Any
    scaling: Scaling
    observers: Sequence[Observer]
    throttle: Throttle
    pool: list[_PoolWorker] = field(default_factory=list)
    sizes: list[list[float]] = field(default_factory=list)
    grown: int = 0
    retired: int = 0
    #: Retirement notices sent and not yet taken by a worker.
    retiring: int = 0
    peak_processes: int = 0

    def run(self) -> Ledger:
        spec, context = self.spec, self.context
        self.ledger = ledger = Ledger(spec, self.observers)
        self.started = time.monotonic()
        self.queue = context.Queue()
        self.results = context.Queue()
        dedicated = spec.dedicated()
        sources = [key for key in dedicated if key[0] in self.plan.iterations]
        #: The flow published to the sources (back-pressure), in shared memory: whether
        #: they pause, then the commits counted of each source.
        self.flow = context.Array("q", 1 + len(sources), lock=False)
        self.source_slots = {f"{pe}[{i}]": 1 + n for n, (pe, i) in enumerate(sources)}
        self.inboxes: dict[DestKey, Any] = {
            key: context.Queue() for key in dedicated if key[0] not in self.plan.iterations
        }
        self.dedicated = [
            context.Process(
                target=_dedicated_main,
                args=(number, key, spec, self.plan.iterations.get(key[0]), self.inboxes.get(key),
                      self.queue, self.inboxes, self.results,
                      (self.flow, self.source_slots.get(f"{key[0]}[{key[1]}]"),
                       self.throttle.limit)),
                name=f"dare-dynamic-{key[0]}[{key[1]}]", daemon=True,
            )
            for number, key in enumerate(dedicated)
        ]
        self.keys = dedicated
        self.next_number = len(dedicated)
        self.low_ticks = 0
        try:
            for process in self.dedicated:
                process.start()
            if spec.pooled:
                for _ in range(self.scaling.min_workers):
                    self._grow()
            self._send_markers()
            tick = self.scaling.tick
            next_tick = time.monotonic() + tick
            get = self.results.get
            while not ledger.done:
                try:
                    message = get(timeout=max(0.0, next_tick - time.monotonic()))
                except queue.Empty:
                    pass
                else:
                    self._handle(pickle.loads(message))
                if time.monotonic() >= next_tick:
                    self._check_alive()  # may handle messages too
                    self._scale()
                    ledger.progress()
                    next_tick = time.monotonic() + tick
                self._send_markers()
            self.finished = time.monotonic()
            self._stop()
        finally:
            self._cleanup()
        return ledger

    # -- messages ------------------------------------------------------------------------
    def _handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "R":
            self.ledger.apply(message[1])
            flow = self.throttle.flow(self.ledger)
            if flow is not None:
                paused, counted = flow
                for source, slot in self.source_slots.items():
                    self.flow[slot] = counted[source]
                self.flow[0] = int(paused)
        elif kind == "B":
            _, number, reason = message
            if reason == "retire":
                self.retiring -= 1
            for worker in self.pool:
                if worker.number == number and worker.ended is None:
                    worker.ended = time.monotonic()
                    self._record()
        elif kind == "E":
            raise_failure(*message[1:])
        else:  # pragma: no cover - a protocol error is a bug
            raise EngineError(f"unexpected message from a worker: {message!r}")

    def _send_markers(self) -> None:
        for key, count in self.ledger.advance():
            self.inboxes[key].put(pickle.dumps(("EOS", count)))

    # -- the pool ------------------------------------------------------------------------
    def _alive(self) -> int:
        return sum(1 for w in self.pool if w.ended is None)

    def _size(self) -> int:
        """Pool workers alive and not about to retire."""
        return self._alive() - self.retiring

    def _grow(self) -> None:
        number = self.next_number
        self.next_number += 1
        process = self.context.Process(
            target=_pool_main, args=(number, self.spec, self.queue, self.inboxes, self.results),
            name=f"dare-dynamic-pool-{number}", daemon=True,
        )
        process.start()
        self.pool.append(_PoolWorker(number, process, time.monotonic()))
        self.grown += 1
        self.peak_processes = max(self.peak_processes, self._alive() + len(self.dedicated))
        self._record()

    def _scale(self) -> None:
        if not self.spec.pooled:
            return
        scaling = self.scaling
        size = self._size()
        outstanding = self.ledger.pool_backlog()
        if outstanding > scaling.threshold * size and self._alive() < scaling.max_workers:
            self._grow()
            self.low_ticks = 0
        elif outstanding < size:
            self.low_ticks += 1
            if self.low_ticks >= scaling.patience and size > scaling.min_workers:
                # Whichever worker takes the notice retires, after the tasks queued before it.
                self.queue.put(pickle.dumps(("retire",)))
                self.retiring += 1
                self.retired += 1
                self.low_ticks = 0
                self._record()
        else:
            self.low_ticks = 0

    def _record(self) -> None:
        size = self._size()
        now = round(time.monotonic() - self.started, 4)
        if not self.sizes or self.sizes[-1][1] != size:
            self.sizes.append([now, size])

    def record(self) -> dict[str, Any]:
        """The scaling record of the run (for ``RunSummary.scaling``)."""
        end = getattr(self, "finished", time.monotonic())
        seconds = sum((w.ended or end) - w.started for w in self.pool)
        return {
            "min_workers": self.scaling.min_workers,
            "max_workers": self.scaling.max_workers,
            "threshold": self.scaling.threshold,
            "tick": self.scaling.tick,
            "patience": self.scaling.patience,
            "sizes": self.sizes,
            "peak": max((n for _, n in self.sizes), default=0),
            "grown": self.grown,
            "retired": self.retired,
            "pool_process_seconds": round(seconds, 4),
            "dedicated_processes": len(self.dedicated),
        }

    def partitions(self) -> list[list[str]]:
        """One entry per dedicated process, then the pool's PEs."""
        return partition_rows(self.spec, self.keys)

    def process_count(self) -> int:
        """The most processes that ran at once."""
        return self.peak_processes

    # -- liveness and shutdown -------------------------------------------------------------
    def _drain(self, until: Any, seconds: float = 1.0, process: Any = None) -> None:
        """Handle messages for up to ``seconds`` or until ``until()`` holds.

        A ``process`` that ended with a non-zero code has sent all it will send (a failing
        worker flushes its error before exiting; a killed one sends nothing more).
        """
        deadline = time.monotonic() + seconds
        while not until() and time.monotonic() < deadline:
            try:
                self._handle(pickle.loads(self.results.get(timeout=0.05)))
            except queue.Empty:
                if process is not None and process.exitcode:
                    return

    def _check_alive(self) -> None:
        ledger = self.ledger
        for number, (key, process) in enumerate(zip(self.keys, self.dedicated, strict=True)):
            if key in ledger.finished or process.exitcode is None:
                continue
            self._drain(lambda key=key: key in ledger.finished, process=process)
            if key not in ledger.finished:
                raise WorkerDied(number, process.exitcode, [f"{key[0]}[{key[1]}]"])
        for worker in self.pool:
            if worker.ended is not None or worker.process.exitcode is None:
                continue
            self._drain(lambda worker=worker: worker.ended is not None, process=worker.process)
            if worker.ended is None:
                hosted = [f"{node.id}[{worker.number}]" for node in self.spec.graph
                          if node.id in self.spec.pooled]
                raise WorkerDied(worker.number, worker.process.exitcode, hosted)

    def _stop(self) -> None:
        """Ask every pool worker to stop; wait (bounded) for every process to exit."""
        alive = [w for w in self.pool if w.ended is None]
        for _ in alive:
            self.queue.put(pickle.dumps(("stop",)))
        self._drain(lambda: all(w.ended is not None for w in alive), seconds=5.0)
        for process in [*self.dedicated, *(w.process for w in self.pool)]:
            process.join(timeout=5)

    def _cleanup(self) -> None:
        stop_processes([*self.dedicated, *(w.process for w in self.pool)])
        for channel in [self.queue, self.results, *self.inboxes.values()]:
            channel.close()
            channel.cancel_join_thread()


# -- worker processes -----------------------------------------------------------------------
class _Sender:
    """Commits of one worker process: tasks onto their queues, then the report."""

    def __init__(self, pool: Any, inboxes: dict[DestKey, Any], results: Any) -> None:
        self.pool = pool
        self.inboxes = inboxes
        self.results = results

    def commit(self, tasks: list[Ready], report: Callable[[], Report]) -> None:
        send_tasks(tasks, self._put)
        self.results.put(dump_report(report(), "R"))

    def _put(self, index: int, message: Any) -> int:
        data = dump_task(message)
        instance = message[2]
        (self.pool if instance is None else self.inboxes[(message[1], instance)]).put(data)
        return len(data)


def _get(channel: Any, parent: int) -> bytes | None:
    """Next message of ``channel``; ``None`` when the coordinator is gone."""
    while True:
        try:
            return channel.get(timeout=ORPHAN_CHECK)
        except queue.Empty:
            if os.getppid() != parent:
                return None


def _fail(results: Any, who: str, exc: BaseException) -> None:
    results.put(pickle.dumps(("E", who, *failure_message(exc))))
    results.close()
    results.join_thread()
    sys.exit(1)


def _pace(key: tuple[str, int], shared: Any, slot: int | None, limit: int) -> Pace | None:
    """The pace of source ``key`` from the coordinator's shared ``flow`` array."""
    if slot is None or limit <= 0:
        return None
    label = f"{key[0]}[{key[1]}]"
    return pace_of(label, limit, lambda: (bool(shared[0]), {label: shared[slot]}))


def _dedicated_main(
    number: int,
    key: tuple[str, int],
    spec: RunSpec,
    iterations: Sequence[Any] | None,
    inbox: Any,
    pool: Any,
    inboxes: dict[DestKey, Any],
    results: Any,
    flow: tuple[Any, int | None, int],
) -> None:
    detach_signals()
    parent = os.getppid()
    sender = _Sender(pool, inboxes, results)
    try:
        with TaskWorker(spec, number) as worker:
            if iterations is not None:
                worker.run_source(key, iterations, sender.commit, _pace(key, *flow))
            else:
                worker.runner(*key)  # set up before the first unit, even if none comes
                expected: int | None = None
                processed = 0
                while expected is None or processed < expected:
                    data = _get(inbox, parent)
                    if data is None:
                        return
                    message = pickle.loads(data)
                    if message[0] == "EOS":
                        expected = message[1]
                        continue
                    sender.commit(*worker.process(message))
                    processed += 1
                sender.commit(*worker.flush(key))
    except BaseException as exc:  # report everything, then exit non-zero
        _fail(results, f"{key[0]}[{key[1]}]", exc)
    results.close()
    results.join_thread()


def _pool_main(
    number: int, spec: RunSpec, pool: Any, inboxes: dict[DestKey, Any], results: Any
) -> None:
    detach_signals()
    parent = os.getppid()
    sender = _Sender(pool, inboxes, results)
    try:
        with TaskWorker(spec, number) as worker:
            while True:
                data = _get(pool, parent)
                if data is None:
                    return
                message = pickle.loads(data)
                if message[0] != "T":  # retire or stop
                    results.put(pickle.dumps(("B", number, message[0])))
                    break
                sender.commit(*worker.process(message))
    except BaseException as exc:
        _fail(results, f"pool worker {number}", exc)
    results.close()
    results.join_thread()
