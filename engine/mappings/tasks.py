"""The core shared by the task-based mappings (``dynamic`` and ``redis``).

A *coordinator* (the process that called ``run``) and *workers* exchange **tasks** through a
broker. A task is a batch of units for one PE::

    ("T", pe_id, instance, port, sender, seqs, payloads)

``instance`` is ``None`` for a PE served by the elastic *pool* (any worker runs it), or the
index of a *dedicated* instance. Which PEs go to the pool is decided once per run by
:func:`pooled_pes`: a PE is pooled when it is stateless, that is

* it is not a source (sources run their iterations in dedicated instances),
* it asks for no particular number of instances (a PE that asks for *k* gets *k* dedicated
  instances, routed as in ``multi``, which also keeps the order of each link),
* no input has a group-by, all-to-one or one-to-all grouping,
* it is not declared ``STATEFUL``, and it overrides neither ``flush`` nor (for dispel4py PEs)
  ``postprocess``: a PE that emits at the end has state.

Every other PE keeps the instances :func:`engine.partition.build_plan` gives it, each run by
one dedicated process, so ``setup`` and ``flush`` run exactly once per instance and every unit
reaches the instance its grouping routes it to.

Termination is counted, never timed out. Each finished task sends one *report*::

    (done, created, outputs, stats, links, finished)

``done`` is the ``(pe, instance)`` the task was for (for a source's batch, the source's own
``(pe, instance)``: the coordinator counts them to pace the source, see :class:`Throttle`),
``created`` counts the tasks it sent to each ``(pe, instance)``, ``outputs`` holds the units
of unconnected output ports, ``stats``/``links`` are counter increments and ``finished`` names
a dedicated instance that has flushed. The :class:`Ledger` (on the coordinator) declares a PE
complete when all its upstream PEs are complete and, for a pooled PE, as many of its tasks
completed as were created; a dedicated instance gets an end-of-stream marker carrying the
exact number of tasks sent to it, and flushes once it has processed that many.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self

from engine.errors import EngineError, PEError, WorkerDied
from engine.graph import Edge, Graph, Node, WorkflowGraph
from engine.loading import load_modules, user_code
from engine.mappings import worker as _shared
from engine.mappings.base import DEFAULT_BATCH_SIZE, Enactment, Prepared
from engine.mappings.base import Mapping as _Mapping
from engine.observe import InstanceStats, LinkStats, Observer
from engine.partition import InputSpec, Plan, build_plan
from engine.pe import ProcessingElement
from engine.routing import AllToOne, GroupBy, OneToAll, make_router
from engine.runtime import (
    Deliver,
    InstanceRunner,
    clock,
    fan_out,
    paused_unit_timer,
    teardown_after_failure,
)
from engine.signing import Signer

__all__ = [
    "BrokerCoordinator",
    "BrokerMapping",
    "DestKey",
    "Ledger",
    "Outbox",
    "Pace",
    "RunSpec",
    "TaskWorker",
    "Throttle",
    "backlog_limit",
    "coordinated",
    "coordinator_signer",
    "dump_report",
    "dump_task",
    "failure_message",
    "load_spec",
    "modules_of",
    "pace_of",
    "plan_run",
    "pooled_pes",
    "raise_failure",
    "stateless",
    "wait_while",
]

logger = logging.getLogger(__name__)

#: ``(pe_id, instance)``; instance ``None`` is the pool.
DestKey = tuple[str, int | None]
LinkKey = tuple[str, str, str, str]
#: ``("T", pe, instance, port, sender, seqs, payloads)``.
TaskMessage = tuple[Any, ...]
#: ``(done, created, outputs, stats, links, finished)``.
Report = tuple[Any, ...]
#: A task ready to send, with the counters of its link: units, batches, bytes, seconds.
Ready = tuple[list[float], TaskMessage]

#: A source's batch older than this is sent even if it is not full.
MAX_BATCH_AGE = 0.05


# -- which PEs the pool may serve ---------------------------------------------------------
def _emits_at_end(pe: ProcessingElement) -> bool:
    """Whether ``pe`` does something in its flush (engine ``flush`` or dispel4py's)."""
    cls = type(pe)
    if cls.flush is not ProcessingElement.flush:
        return True
    if cls._flush is ProcessingElement._flush:
        return False
    from engine.compat.dispel4py import GenericPE

    if isinstance(pe, GenericPE) and cls._flush is GenericPE._flush:
        generic: Any = cls
        return (generic.postprocess is not GenericPE.postprocess
                or generic._postprocess is not GenericPE._postprocess)
    return True


def stateless(graph: Graph, node: Node) -> bool:
    """Whether any worker may process any unit of ``node`` (see the module docstring)."""
    if node.is_source or node.instances is not None:
        return False
    if getattr(node.pe, "STATEFUL", False):
        return False
    for edge in graph.incoming(node.id):
        if isinstance(edge.grouping, (GroupBy, AllToOne, OneToAll)):
            return False
    return not _emits_at_end(node.pe)


def pooled_pes(graph: Graph) -> frozenset[str]:
    """Ids of the PEs the elastic pool serves."""
    return frozenset(node.id for node in graph if stateless(graph, node))


@dataclass(frozen=True)
class RunSpec:
    """What a worker needs to run tasks: the graph, instance counts and the pooled PEs.

    It carries no input data (sources run on the coordinator's machine), so it is small
    enough to send to remote workers.
    """

    graph: Graph
    instances: Mapping[str, int]
    pooled: frozenset[str]
    batch_size: int

    @classmethod
    def from_plan(cls, plan: Plan, batch_size: int) -> RunSpec:
        """Build the spec of ``plan``."""
        return cls(plan.graph, dict(plan.instances), pooled_pes(plan.graph), batch_size)

    def dedicated(self) -> list[tuple[str, int]]:
        """``(pe, instance)`` of every dedicated instance, in topological order."""
        return [(node.id, i) for node in self.graph if node.id not in self.pooled
                for i in range(self.instances[node.id])]


# -- the worker side ----------------------------------------------------------------------
class Outbox:
    """Buffers the units a worker emits, cut into tasks of at most ``batch_size`` units."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        #: Tasks ready to send: ``(link counters, message)``; a broker adds the bytes and
        #: seconds it spends sending to the counters.
        self.ready: list[Ready] = []
        self.outputs: dict[tuple[str, str], list[Any]] = {}
        self.created: Counter[DestKey] = Counter()
        #: Counter increments per link since the last drain: units, batches, bytes, seconds.
        self.links: dict[LinkKey, list[float]] = {}
        self._cutters: list[Callable[[], None]] = []
        #: Called when a task is cut because it is full (sources send it at once).
        self.on_full: Callable[[], None] | None = None

    def buffer(self, dest: DestKey, port: str, sender: str, link: LinkKey) -> Deliver:
        """Return ``deliver(seq, data)`` that batches units for ``dest``'s ``port``."""
        limit = self.batch_size
        seqs: list[int] = []
        items: list[Any] = []
        ready, created = self.ready, self.created
        pe, instance = dest

        def cut() -> None:
            nonlocal seqs, items
            if items:
                numbers: Sequence[int] = seqs
                if seqs[-1] - seqs[0] == len(seqs) - 1:  # contiguous: send a range
                    numbers = range(seqs[0], seqs[-1] + 1)
                counters = self.links.get(link)
                if counters is None:
                    counters = self.links[link] = [0, 0, 0, 0.0]
                ready.append((counters, ("T", pe, instance, port, sender, numbers, items)))
                created[dest] += 1
                counters[0] += len(items)
                counters[1] += 1
                seqs, items = [], []

        def deliver(seq: int, data: Any) -> None:
            seqs.append(seq)
            items.append(data)
            if len(items) >= limit:
                cut()
                if self.on_full is not None:
                    self.on_full()

        self._cutters.append(cut)
        return deliver

    def output(self, pe: str, port: str) -> Deliver:
        """Return ``deliver(seq, data)`` collecting the units of an unconnected output."""
        append = self.outputs.setdefault((pe, port), []).append

        def deliver(seq: int, data: Any) -> None:
            append(data)

        return deliver

    def drain(self) -> tuple[list[Ready], dict[DestKey, int],
                             dict[tuple[str, str], list[Any]], dict[LinkKey, list[float]]]:
        """Cut every partial batch; return and forget the tasks, counts, outputs and links."""
        for cut in self._cutters:
            cut()
        ready = self.ready[:]
        self.ready.clear()  # cleared in place: the buffers' closures hold these objects
        created = dict(self.created)
        self.created.clear()
        outputs = {key: list(values) for key, values in self.outputs.items() if values}
        for values in self.outputs.values():
            values.clear()
        links, self.links = self.links, {}
        return ready, created, outputs, links


Commit = Callable[[list[Ready], Callable[[], Report]], None]


class TaskWorker:
    """Runs tasks for one worker process (pool worker or dedicated instance).

    Parameters
    ----------
    spec
        The run.
    number
        The worker's number: the instance index of its pool instances.
    """

    def __init__(self, spec: RunSpec, number: int) -> None:
        self.spec = spec
        self.number = number
        self.outbox = Outbox(spec.batch_size)
        self.runners: dict[DestKey, InstanceRunner] = {}
        self._marks: dict[DestKey, tuple[int, int, float]] = {}
        self._touched: set[DestKey] = set()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        """Tear down the instances still set up (the pool's) when the worker is done.

        When it fails, a failing teardown is logged so as not to hide the failure.
        """
        if kind is None:
            for runner in self.runners.values():
                runner.teardown()
            return
        teardown_after_failure(self.runners.values())

    def runner(self, pe_id: str, instance: int | None) -> InstanceRunner:
        """The runner of ``(pe_id, instance)``, made, wired and set up at first use."""
        key = (pe_id, instance)
        runner = self.runners.get(key)
        if runner is not None:
            return runner
        spec = self.spec
        node = spec.graph.node(pe_id)
        index = self.number if instance is None else instance
        runner = InstanceRunner(node, index, spec.instances[pe_id], worker=self.number)
        outbox = self.outbox
        for edge in spec.graph.outgoing(pe_id):
            link = (edge.src, edge.src_port, edge.dst, edge.dst_port)
            if edge.dst in spec.pooled:
                deliver = outbox.buffer((edge.dst, None), edge.dst_port, runner.label, link)
            else:
                count = spec.instances[edge.dst]
                targets = [outbox.buffer((edge.dst, j), edge.dst_port, runner.label, link)
                           for j in range(count)]
                deliver = fan_out(self.router(edge, count, instance), targets)
            runner.routes[edge.src_port].append(deliver)
        for port, delivers in runner.routes.items():
            if not delivers:
                delivers.append(outbox.output(pe_id, port))
        runner.wire()
        self.runners[key] = runner
        self._marks[key] = (0, 0, 0.0)
        runner.setup()
        self._touched.add(key)
        return runner

    def router(self, edge: Edge, count: int, instance: int | None) -> Callable[[Any], int]:
        """The router of ``edge`` towards its ``count`` dedicated instances.

        ``instance`` is the sending runner's (``None`` for a pooled one, which routes as
        this worker's instance). Subclasses may route otherwise.
        """
        start = self.number if instance is None else instance
        return make_router(edge.grouping, count, start=start)

    def _stats(self) -> list[tuple[str, int, int, int, int, float]]:
        """Counter increments of the runners used since the last report."""
        rows = []
        for key in self._touched:
            runner = self.runners[key]
            units_in, units_out, seconds = self._marks[key]
            now = (runner.stats.units_in, runner._emitted(), runner.stats.process_seconds)
            self._marks[key] = now
            rows.append((key[0], runner.stats.instance, self.number, now[0] - units_in,
                         now[1] - units_out, now[2] - seconds))
        self._touched.clear()
        return rows

    def _report(self, done: DestKey | None, finished: DestKey | None = None,
                ) -> tuple[list[Ready], Callable[[], Report]]:
        """Drain the outbox: the tasks to send, and a function building the report.

        The report is built after the tasks are sent, so that it carries their bytes.
        """
        tasks, created, outputs, links = self.outbox.drain()

        def report() -> Report:
            return (done, created, outputs, self._stats(), links, finished)

        return tasks, report

    def process(self, message: TaskMessage) -> tuple[list[Ready],
                                                      Callable[[], Report]]:
        """Process one task; return what to commit."""
        _, pe_id, instance, port, sender, seqs, payloads = message
        runner = self.runner(pe_id, instance)
        self._touched.add((pe_id, instance))
        runner.process_batch(port, sender, seqs, payloads)
        return self._report((pe_id, instance))

    def flush(self, key: DestKey) -> tuple[list[Ready],
                                           Callable[[], Report]]:
        """Flush a dedicated instance; return what to commit (its last report)."""
        runner = self.runner(*key)
        runner.flush()
        runner.teardown()
        self._touched.add(key)
        return self._report(None, finished=key)

    def run_source(self, key: DestKey, iterations: Sequence[Any], commit: Commit,
                   pace: Pace | None = None) -> None:
        """Run a source instance's iterations and flush, committing batches as they fill.

        After each commit the source waits while ``pace(commits)`` says so (back-pressure).
        """
        runner = self.runner(*key)
        self._touched.add(key)
        last = [clock()]
        commits = 0

        def send() -> None:
            nonlocal commits
            last[0] = clock()
            has_outputs = any(self.outbox.outputs.values())
            tasks, report = self._report(key)
            if tasks or has_outputs:
                self._touched.add(key)
                commit(tasks, report)
                commits += 1
                if pace is not None:
                    wait_while(lambda: pace(commits))

        def after_each() -> None:
            if clock() - last[0] > MAX_BATCH_AGE:
                send()

        self.outbox.on_full = send
        try:
            runner.run_iterations(iterations, after_each)
            runner.flush()
            runner.teardown()
        finally:
            self.outbox.on_full = None
        self._touched.add(key)
        commit(*self._report(None, finished=key))


# -- errors crossing processes ------------------------------------------------------------
#: ``(pe_error, original, traceback text)`` of a worker's exception, picklable.
failure_message = _shared.describe_failure


def raise_failure(worker: str, pe_error: PEError | None, original: BaseException | None,
                  text: str) -> None:
    """Raise, in the coordinator, the error a worker reported."""
    _shared.raise_failure(f"worker {worker}", pe_error, original, text)


def cannot_cross(message: TaskMessage, exc: Exception) -> EngineError:
    """The error for a task whose units cannot be pickled."""
    _, pe, instance, _, sender, _, _ = message
    where = f"{pe}[{instance}]" if instance is not None else f"{pe} (pool)"
    return EngineError(
        f"units sent by {sender} to {where} cannot cross processes (pickle failed: {exc}); "
        "emit picklable data, or run this PE with the simple mapping"
    )


# -- the coordinator side -----------------------------------------------------------------
@dataclass
class Ledger:
    """The coordinator's counts: when is each PE complete, what the run returns.

    Parameters
    ----------
    spec
        The run.
    observers
        Told of progress and of finished instances.
    """

    spec: RunSpec
    observers: Sequence[Observer] = ()
    created: Counter[DestKey] = field(default_factory=Counter)
    completed: Counter[DestKey] = field(default_factory=Counter)
    finished: set[DestKey] = field(default_factory=set)
    complete: set[str] = field(default_factory=set)
    eos_sent: set[str] = field(default_factory=set)
    stats: dict[tuple[str, int], InstanceStats] = field(default_factory=dict)
    links: dict[LinkKey, LinkStats] = field(default_factory=dict)
    outputs: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    _changed: set[tuple[str, int]] = field(default_factory=set)
    _last_progress: float = 0.0

    def __post_init__(self) -> None:
        for pe_id, port in self.spec.graph.unconnected_outputs():
            self.outputs.setdefault(pe_id, {})[port] = []
        graph = self.spec.graph
        self._upstream = {node.id: sorted({edge.src for edge in graph.incoming(node.id)})
                          for node in graph}

    @property
    def done(self) -> bool:
        """Whether every PE is complete."""
        return len(self.complete) == len(self.spec.graph)

    def apply(self, report: Report) -> None:
        """Count one report."""
        done, created, outputs, stats, links, finished = report
        if done is not None:
            self.completed[done] += 1
        if created:
            self.created.update(created)
        for (pe_id, port), values in outputs.items():
            self.outputs[pe_id][port].extend(values)
        for pe_id, instance, worker, units_in, units_out, seconds in stats:
            key = (pe_id, instance)
            record = self.stats.get(key)
            if record is None:
                record = self.stats[key] = InstanceStats(pe_id, instance, worker)
            record.units_in += units_in
            record.units_out += units_out
            record.process_seconds += seconds
            self._changed.add(key)
        for link, (units, batches, size, seconds) in links.items():
            total = self.links.get(link)
            if total is None:
                total = self.links[link] = LinkStats(*link)
            total.units += int(units)
            total.batches += int(batches)
            total.bytes += int(size)
            total.send_seconds += seconds
        if finished is not None:
            self.finished.add(finished)
            key = (finished[0], finished[1])
            record = self.stats.setdefault(key, InstanceStats(key[0], key[1]))
            for observer in self.observers:
                observer.instance_finished(record)

    def advance(self) -> list[tuple[DestKey, int]]:
        """Mark the PEs that are now complete; return the end-of-stream markers to send.

        Each marker is ``((pe, instance), tasks)``: the number of tasks sent to that instance.
        """
        markers: list[tuple[DestKey, int]] = []
        spec = self.spec
        for node in spec.graph:  # topological order: completion propagates in one pass
            pe_id = node.id
            if pe_id in self.complete:
                continue
            if not all(up in self.complete for up in self._upstream[pe_id]):
                continue
            if pe_id in spec.pooled:
                if self.created[(pe_id, None)] == self.completed[(pe_id, None)]:
                    self.complete.add(pe_id)
                    self._pool_finished(pe_id)
                continue
            count = spec.instances[pe_id]
            if not node.is_source and pe_id not in self.eos_sent:
                self.eos_sent.add(pe_id)
                markers.extend(((pe_id, i), self.created[(pe_id, i)]) for i in range(count))
            if all((pe_id, i) in self.finished for i in range(count)):
                self.complete.add(pe_id)
        return markers

    def backlog(self) -> int:
        """Tasks created and not yet completed, for every PE."""
        return sum(n - self.completed[key] for key, n in self.created.items())

    def source_commits(self) -> dict[str, int]:
        """Commits of each source instance counted so far, by ``"PE[i]"``."""
        return {f"{pe}[{i}]": self.completed[(pe, i)] for pe in self.spec.graph.nodes
                if self.spec.graph.node(pe).is_source for i in range(self.spec.instances[pe])}

    def pool_backlog(self) -> int:
        """Pool tasks created and not yet completed (waiting or running)."""
        return sum(n - self.completed[key] for key, n in self.created.items() if key[1] is None)

    def progress(self, interval: float = 0.5) -> None:
        """Tell observers the counters that changed (at most every ``interval`` seconds)."""
        now = time.monotonic()
        if not self.observers or now - self._last_progress < interval:
            return
        self._last_progress = now
        for key in self._changed:
            record = self.stats[key]
            for observer in self.observers:
                observer.progress(record.pe_id, record.instance, record.units_in,
                                  record.units_out)
        self._changed.clear()

    def _pool_finished(self, pe_id: str) -> None:
        """Tell observers that a pooled PE's instances (one per worker used) have finished."""
        for (stats_pe, _), record in self.stats.items():
            if stats_pe == pe_id:
                for observer in self.observers:
                    observer.instance_finished(record)

    def instance_stats(self) -> list[InstanceStats]:
        """Counters of every instance that ran (pool instances once per worker)."""
        return list(self.stats.values())

    def pending_instances(self) -> Iterable[DestKey]:
        """Dedicated instances that have not flushed yet."""
        return (key for key in self.spec.dedicated() if key not in self.finished)


# -- back-pressure ------------------------------------------------------------------------
#: Seconds between two looks of a paused source at whether it may go on.
PAUSE_NAP = 0.002


#: ``pace(commits) -> bool``: whether a source that has committed ``commits`` batches waits.
Pace = Callable[[int], bool]


@dataclass
class Throttle:
    """When the sources of a task-based run must wait: the coordinator's side.

    The sources pause once more than ``limit`` tasks are waiting or running (the
    :meth:`Ledger.backlog`) and go on once the backlog is down to half of it. The coordinator
    learns of tasks from reports, which may lag behind a fast source; so a source also waits
    while more than ``limit`` of its own commits are not yet counted by the coordinator
    (:meth:`Ledger.source_commits`, published with the pause). The tasks of other PEs are
    never held back: the backlog always drains, and no worker waits on another. The run then
    holds at most about ``2 x limit`` tasks, whatever the sources' rate.
    """

    limit: int
    paused: bool = False
    published: dict[str, int] = field(default_factory=dict)

    def update(self, backlog: int) -> bool:
        """Take the current backlog; return whether the pause state changed.

        With a ``limit`` of 0 it never does (no back-pressure).
        """
        if not self.paused and 0 < self.limit < backlog:
            self.paused = True
            return True
        if self.paused and backlog <= self.limit // 2:
            self.paused = False
            return True
        return False

    def flow(self, ledger: Ledger) -> tuple[bool, dict[str, int]] | None:
        """What to publish to the sources now, or ``None`` if nothing that matters changed.

        Published when the pause starts or ends, and when a source's counted commits have
        moved by a quarter of ``limit`` since last published.
        """
        if self.limit <= 0:
            return None
        changed = self.update(ledger.backlog())
        counted = ledger.source_commits()
        step = max(1, self.limit // 4)
        if changed or any(n - self.published.get(source, 0) >= step
                          for source, n in counted.items()):
            self.published = counted
            return self.paused, counted
        return None


def backlog_limit(queue_depth: int, workers: int, batch_size: int) -> int:
    """Tasks a task-based run may hold before its sources pause.

    ``queue_depth`` batches of :data:`~engine.mappings.base.DEFAULT_BATCH_SIZE` units per
    worker the run was planned for, in tasks of ``batch_size`` units (smaller tasks, as the
    ``dynamic`` mapping's, are more of them, for the same memory).
    """
    return queue_depth * max(1, workers) * max(1, -(-DEFAULT_BATCH_SIZE // batch_size))


def pace_of(source: str, limit: int, flow: Callable[[], tuple[bool, dict[str, int]]]) -> Pace:
    """The pace of source instance ``source`` (``"PE[i]"``).

    ``flow()`` returns what the coordinator published: ``(paused, commits counted per
    source)``. The source waits while paused, or while more than ``limit`` of its commits
    are not counted yet.
    """

    def pace(commits: int) -> bool:
        paused, counted = flow()
        return paused or commits - counted.get(source, 0) > limit
    return pace


def wait_while(paused: Callable[[], bool]) -> None:
    """Sleep while ``paused()``; the wait does not count against a unit's time limit."""
    if not paused():
        return
    with paused_unit_timer():
        while paused():
            time.sleep(PAUSE_NAP)


# -- what the task-based mappings share ---------------------------------------------------
def dump_task(message: TaskMessage, *head: Any) -> bytes:
    """Pickle a task (after ``head``, when given); say which units cannot cross processes."""
    try:
        return pickle.dumps((*head, message) if head else message, pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise cannot_cross(message, exc) from exc


def dump_report(report: Report, *head: Any) -> bytes:
    """Pickle ``(*head, report)``; say which outputs cannot cross processes."""
    try:
        return pickle.dumps((*head, report), pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        ports = ", ".join(f"{pe}.{port}" for pe, port in report[2])
        raise EngineError(
            f"outputs of {ports} cannot cross processes (pickle failed: {exc}); "
            "emit picklable data, or run with the simple mapping"
        ) from exc


def send_tasks(tasks: list[Ready], send: Callable[[int, TaskMessage], int]) -> None:
    """Send each task with ``send(index, message) -> bytes sent``, counting bytes and time."""
    for index, (counters, message) in enumerate(tasks):
        start = clock()
        counters[2] += send(index, message)
        counters[3] += clock() - start


def run_source(worker: TaskWorker, key: tuple[str, int], iterations: Sequence[Any],
               commit: Callable[[str, list[Ready], Callable[[], Report]], object],
               pace: Pace | None = None) -> None:
    """Run a source instance; its commits get ids ``s:PE:INSTANCE:N`` (N from 1).

    ``pace(commits)`` says whether the source must wait before going on (back-pressure).
    """
    tag = f"{key[0]}:{key[1]}"
    batches = 0

    def numbered(tasks: list[Ready], report: Callable[[], Report]) -> None:
        nonlocal batches
        batches += 1
        commit(f"s:{tag}:{batches}", tasks, report)

    worker.run_source(key, iterations, numbered, pace)


def in_worker_process(label: str, body: Callable[[], None],
                      report_error: Callable[[str, BaseException], None]) -> None:
    """Run a worker process's ``body``; report its failure as ``label`` and exit 1."""
    _shared.detach_signals()
    try:
        body()
    except BaseException as exc:
        report_error(label, exc)
        sys.exit(1)


def stop_processes(processes: Iterable[Any]) -> None:
    """Terminate the started ``processes`` still alive; kill those that do not exit."""
    started = [process for process in processes if process.pid is not None]
    for process in started:
        if process.is_alive():
            process.terminate()
    for process in started:
        process.join(timeout=2)
        if process.is_alive():
            process.kill()
            process.join(timeout=2)


def partition_rows(spec: RunSpec, dedicated: Iterable[tuple[str, int]]) -> list[list[str]]:
    """One entry per dedicated process, then the pool's PEs."""
    rows = [[f"{pe}[{i}]"] for pe, i in dedicated]
    if spec.pooled:
        rows.append([f"{node.id}[pool]" for node in spec.graph if node.id in spec.pooled])
    return rows


# -- running a task-based mapping ---------------------------------------------------------
def plan_run(graph: Graph | WorkflowGraph, inputs: InputSpec, workers: int | None,
             batch_size: int) -> tuple[int, Plan, RunSpec]:
    """The worker count (default: the CPUs), the plan and the spec of a task-based run."""
    workers = workers or os.cpu_count() or 1
    plan = build_plan(graph, inputs, workers=workers)
    return workers, plan, RunSpec.from_plan(plan, batch_size)


def local_count(workers: int, local_workers: int | None) -> int:
    """The local pool workers: ``local_workers``, by default ``workers``."""
    local = workers if local_workers is None else local_workers
    if local < 0:
        raise EngineError(f"local_workers must be >= 0, not {local}")
    return local


def process_context(start_method: str | None) -> Any:
    """The multiprocessing context of ``start_method`` (default: fork where available)."""
    if start_method is None:
        start_method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(start_method)


class Coordinator(Protocol):
    """What :func:`enact` needs of a mapping's coordinator."""

    def run(self) -> Ledger:
        """Run to completion; return the counts."""

    def process_count(self) -> int:
        """Processes the run used (for the summary)."""

    def record(self) -> dict[str, Any]:
        """The summary's ``scaling`` record."""

    def partitions(self) -> list[list[str]]:
        """The summary's partitions."""


def coordinated(coordinator: Coordinator) -> Enactment:
    """Run ``coordinator`` to completion; return what the run did."""
    ledger = coordinator.run()
    return Enactment(ledger.outputs, ledger.instance_stats(),
                     processes=coordinator.process_count(), links=list(ledger.links.values()),
                     partitions=coordinator.partitions(), scaling=coordinator.record())


class BrokerMapping(_Mapping):
    """A mapping whose workers share the run through a broker (``redis``, ``kafka``).

    Subclasses plan in :meth:`prepare`, with ``Prepared.state = (spec, settings)``, and make
    their :class:`BrokerCoordinator` in :meth:`coordinator`.
    """

    def coordinator(self, plan: Plan, spec: RunSpec, context: Any, settings: Any,
                    observers: list[Observer]) -> Coordinator:
        """The run's coordinator."""
        raise NotImplementedError

    def enact(
        self, prepared: Prepared, observers: Sequence[Observer], options: dict[str, Any]
    ) -> Enactment:
        """Coordinate the run until every PE is complete."""
        spec, settings = prepared.state
        return coordinated(self.coordinator(prepared.plan, spec,
                                            process_context(options.get("start_method")),
                                            settings, list(observers)))


def coordinator_signer(spec: RunSpec, local_workers: int) -> Signer:
    """The coordinator's :class:`~engine.signing.Signer`, refusing a pool no worker may serve.

    Raises
    ------
    EngineError
        With ``local_workers=0`` and no deployment secret: remote workers could not check the
        run's messages (only a per-run key would sign them).
    """
    signer = Signer.for_coordinator()
    if not signer.shared and not signer.insecure and local_workers == 0 and spec.pooled:
        raise EngineError(
            "local_workers=0 leaves the pool to workers on other hosts ('dare worker'), which "
            "need the deployment's secret: set $DARE_QUEUE_SECRET (or $DARE_QUEUE_SECRET_FILE) "
            "to the same value here and on every worker host"
        )
    return signer


#: Seconds between a broker coordinator's liveness checks.
TICK = 0.2
CLEAN_EXIT_GRACE = 30.0  # seconds to wait for the report of a process that exited with 0


@dataclass
class BrokerCoordinator:
    """The coordinator of a mapping whose workers share the run through a broker.

    It starts one process per dedicated instance and ``settings.local_workers`` pool
    workers, counts reports until every PE is complete, replaces dead pool workers and
    stops everything. Subclasses talk to the broker: :meth:`_open`, :meth:`_read`,
    :meth:`_send_markers`, :meth:`_close_run`, :meth:`_close` and :meth:`_targets`.
    """

    plan: Plan
    spec: RunSpec
    context: Any
    settings: Any
    observers: Sequence[Observer]
    processes: list[Any] = field(default_factory=list)
    replaced: int = 0
    #: Names processes ``dare-KIND-...``.
    kind: ClassVar[str] = "broker"

    def run(self) -> Ledger:
        """Run to completion; return the counts."""
        self.ledger = ledger = Ledger(self.spec, self.observers)
        self.pool: list[Any] = []
        self.dedicated: list[tuple[tuple[str, int], Any]] = []
        status = "failed"
        try:
            self._open()
            self._send_markers()
            next_tick = time.monotonic() + TICK
            throttle = Throttle(getattr(self.settings, "backlog_limit", 0))
            while not ledger.done:
                self._read(0.1)
                flow = throttle.flow(ledger)
                if flow is not None:
                    self._publish_flow(*flow)
                self._send_markers()
                now = time.monotonic()
                if now >= next_tick:
                    self._check()
                    ledger.progress()
                    next_tick = now + TICK
                self._idle(now)
            status = "done"
        finally:
            self._finish(status)
        return ledger

    # -- what subclasses provide -----------------------------------------------------------
    def _open(self) -> None:
        """Create the run on the broker and start the processes (:meth:`_start`)."""
        raise NotImplementedError

    def _read(self, timeout: float) -> None:
        """Handle the reports that arrive within ``timeout`` seconds."""
        raise NotImplementedError

    def _send_markers(self) -> None:
        """Send the end-of-stream markers the ledger says are due."""
        raise NotImplementedError

    def _targets(self) -> tuple[Callable[..., None], Callable[..., None]]:
        """The functions of dedicated processes and of pool worker processes."""
        raise NotImplementedError

    def _publish_flow(self, paused: bool, counted: dict[str, int]) -> None:
        """Tell the sources whether to pause and how many of their commits are counted."""

    def _pool_args(self) -> tuple[Any, ...]:
        """Arguments of a new pool worker process."""
        return (self.spec, self.settings)

    def _launch(self, process: Any) -> None:
        """Start a process."""
        process.start()

    def _idle(self, now: float) -> None:
        """Called at every turn of the loop."""

    def _pool_exited(self, process: Any) -> None:
        """Called when a local pool worker has exited, before it is replaced."""

    def _close_run(self, status: str) -> None:
        """Record the run's end on the broker (failures suppressed)."""

    def _close(self) -> None:
        """Close the broker clients (failures suppressed)."""

    # -- processes ---------------------------------------------------------------------------
    def _start(self) -> None:
        spec, settings = self.spec, self.settings
        dedicated_main, _ = self._targets()
        for number, key in enumerate(spec.dedicated()):
            process = self.context.Process(
                target=dedicated_main,
                args=(number, key, spec, self.plan.iterations.get(key[0]), settings),
                name=f"dare-{self.kind}-{key[0]}[{key[1]}]", daemon=True,
            )
            self._launch(process)
            self.dedicated.append((key, process))
            self.processes.append(process)
        if spec.pooled:
            for _ in range(settings.local_workers):
                self._add_worker()

    def _add_worker(self) -> None:
        _, pool_main = self._targets()
        process = self.context.Process(target=pool_main, args=self._pool_args(),
                                       name=f"dare-{self.kind}-pool", daemon=True)
        self._launch(process)
        self.pool.append(process)
        self.processes.append(process)

    def _check(self) -> None:
        """Dedicated processes must finish their work; dead pool workers are replaced."""
        ledger = self.ledger
        for number, (key, process) in enumerate(self.dedicated):
            if key in ledger.finished or process.exitcode is None:
                continue
            # It may have reported just before exiting. A clean exit means its report was sent
            # (flushed to the broker), which a loaded machine may take seconds to deliver.
            grace = CLEAN_EXIT_GRACE if process.exitcode == 0 else 1.0
            deadline = time.monotonic() + grace
            while key not in ledger.finished and time.monotonic() < deadline:
                self._read(0.05)
            if key not in ledger.finished:
                raise WorkerDied(number, process.exitcode, [f"{key[0]}[{key[1]}]"])
        for index, process in enumerate(self.pool):
            if process.exitcode is not None:
                self._pool_exited(process)
                logger.warning("local pool worker (pid %s) exited with %s; starting another",
                               process.pid, process.exitcode)
                self.replaced += 1
                if self.replaced > 10 * max(1, self.settings.local_workers):
                    raise WorkerDied(index, process.exitcode, ["pool"])
                self.pool.pop(index)
                self._add_worker()
                break

    def _finish(self, status: str) -> None:
        for process in self.pool:
            if process.is_alive():
                process.terminate()
        self._close_run(status)
        for _, process in self.dedicated:
            if process.is_alive():
                process.join(timeout=5 if status == "done" else 0)
        stop_processes(self.processes)
        self._close()

    # -- the summary -------------------------------------------------------------------------
    def process_count(self) -> int:
        """Processes this coordinator started."""
        return len(self.processes)

    def record(self) -> dict[str, Any]:
        """Who served the run (for ``RunSummary.scaling``)."""
        pool_workers = {stats.worker for stats in self.ledger.stats.values()
                        if stats.pe_id in self.spec.pooled}
        return {
            "run_id": self.settings.run_id,
            "local_workers": self.settings.local_workers,
            "pool_workers_used": len(pool_workers),
            "replaced": self.replaced,
            "dedicated_processes": len(self.dedicated),
        }

    def partitions(self) -> list[list[str]]:
        """One entry per dedicated process, then the pool's PEs."""
        return partition_rows(self.spec, (key for key, _ in self.dedicated))


# -- remote workers: the graph's code -----------------------------------------------------
def modules_of(spec: RunSpec) -> list[tuple[str, str]]:
    """``(name, file)`` of the modules defining the graph's PEs and functions.

    A worker imports each by name if it can, else loads the file (a module the coordinator
    loaded by path, such as ``dare run flow.py``).
    """
    names: dict[str, None] = {}
    for node in spec.graph:
        for cls in type(node.pe).__mro__:
            names[cls.__module__] = None
        for attribute in ("func", "compute_fn"):
            function = getattr(node.pe, attribute, None)
            if function is not None and getattr(function, "__module__", None):
                names[function.__module__] = None
        for function in getattr(node.pe, "functions", ()) or ():
            if getattr(function, "__module__", None):
                names[function.__module__] = None
    found = []
    for name in names:
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if module is None or not path or name == "__main__" or name.startswith("engine."):
            continue
        if name.split(".")[0] in sys.stdlib_module_names or name == "builtins":
            continue
        found.append((name, str(Path(path).resolve())))
    return found


def shareable(spec: RunSpec, run_id: str) -> bytes:
    """``spec`` by cloudpickle for remote workers; empty (with a warning) if it cannot be."""
    try:
        import cloudpickle

        data: bytes = cloudpickle.dumps(spec)
        return data
    except Exception as exc:  # only local workers can serve such a run
        logger.warning("the graph cannot be sent to remote workers (%s); "
                       "only local workers will serve run %s", exc, run_id)
        return b""


def load_spec(run: str, modules: Sequence[tuple[str, str]], shared: bytes | None) -> RunSpec:
    """The spec a coordinator shared (:func:`shareable`), its modules loaded first.

    ``run`` names the run in errors (``"redis run 'ID'"``).
    """
    if not shared:
        raise EngineError(f"{run} has no graph for remote workers "
                          "(it could not be pickled; see the coordinator's log)")
    load_modules(modules)
    with user_code():
        spec = pickle.loads(shared)
    if not isinstance(spec, RunSpec):
        raise EngineError(f"{run}: unexpected graph record")
    return spec
