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

``done`` is the ``(pe, instance)`` the task was for (``None`` for a source's batch),
``created`` counts the tasks it sent to each ``(pe, instance)``, ``outputs`` holds the units
of unconnected output ports, ``stats``/``links`` are counter increments and ``finished`` names
a dedicated instance that has flushed. The :class:`Ledger` (on the coordinator) declares a PE
complete when all its upstream PEs are complete and, for a pooled PE, as many of its tasks
completed as were created; a dedicated instance gets an end-of-stream marker carrying the
exact number of tasks sent to it, and flushes once it has processed that many.
"""

from __future__ import annotations

import pickle
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.errors import EngineError, PEError, RemoteTraceback
from engine.graph import Graph, Node
from engine.observe import InstanceStats, LinkStats, Observer
from engine.partition import Plan
from engine.pe import ProcessingElement
from engine.routing import AllToOne, GroupBy, OneToAll, make_router
from engine.runtime import Deliver, InstanceRunner, clock, fan_out

__all__ = [
    "DestKey",
    "Ledger",
    "Outbox",
    "RunSpec",
    "TaskWorker",
    "failure_message",
    "pooled_pes",
    "raise_failure",
    "stateless",
]

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
                deliver = fan_out(make_router(edge.grouping, count, start=index), targets)
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
        self._touched.add(key)
        return self._report(None, finished=key)

    def run_source(self, key: DestKey, iterations: Sequence[Any], commit: Commit) -> None:
        """Run a source instance's iterations and flush, committing batches as they fill."""
        runner = self.runner(*key)
        self._touched.add(key)
        last = [clock()]

        def send() -> None:
            last[0] = clock()
            has_outputs = any(self.outbox.outputs.values())
            tasks, report = self._report(None)
            if tasks or has_outputs:
                self._touched.add(key)
                commit(tasks, report)

        def after_each() -> None:
            if clock() - last[0] > MAX_BATCH_AGE:
                send()

        self.outbox.on_full = send
        try:
            runner.run_iterations(iterations, after_each)
            runner.flush()
        finally:
            self.outbox.on_full = None
        self._touched.add(key)
        commit(*self._report(None, finished=key))


# -- errors crossing processes ------------------------------------------------------------
def failure_message(exc: BaseException) -> tuple[PEError | None, BaseException | None, str]:
    """Describe a worker's exception as ``(pe_error, original, traceback text)``, picklable."""
    pe_error = exc if isinstance(exc, PEError) else None
    original = exc.__cause__ if pe_error is not None else exc
    text = "".join(traceback.format_exception(original)) if original is not None else ""
    try:
        pickle.dumps(original)
    except Exception:
        original = None
    return pe_error, original, text


def raise_failure(worker: str, pe_error: PEError | None, original: BaseException | None,
                  text: str) -> None:
    """Raise, in the coordinator, the error a worker reported."""
    remote = RemoteTraceback(text)
    if pe_error is not None:
        if original is not None:
            original.__cause__ = remote
        raise pe_error from (original or remote)
    if isinstance(original, EngineError):
        raise original from remote
    last_line = text.strip().splitlines()[-1] if text.strip() else "unknown error"
    raise EngineError(f"worker {worker} failed: {last_line}") from (original or remote)


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
