"""The ``multi`` mapping: PE instances spread over worker processes (multiprocessing).

Placement follows :func:`engine.partition.build_plan`: one process per PE instance when the
workers suffice, otherwise partitions of several instances per process. Each worker has one
inbox queue; units travel in batches (``batch_size`` units, or fewer when the worker is about
to wait for input, so that latency stays low when the workflow is not loaded). A batch from one
sender instance to one receiver instance travels on one queue, so order within a link is
preserved. End-of-stream markers follow the data of each link; an instance flushes when it has
one from every upstream instance.

The parent process only collects results, progress and errors. It polls the workers' exit codes
every 0.2 s, so a worker that dies (killed, segfault, ``os._exit``) ends the run with
:class:`~engine.errors.WorkerDied` within a second; an exception in a PE ends it with
:class:`~engine.errors.PEError`; Ctrl-C stops every worker before ``KeyboardInterrupt`` goes on.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from engine.errors import EngineError, PEError, RemoteTraceback, WorkerDied
from engine.graph import Graph, WorkflowGraph
from engine.mappings.base import Mapping
from engine.observe import InstanceStats, LinkStats, Observer, RunResult, RunSummary
from engine.optimise import Optimisation
from engine.partition import InputSpec, Plan, build_plan
from engine.runtime import Deliver, InstanceRunner, clock, fan_out

__all__ = ["MultiMapping"]

InstanceKey = tuple[str, int]

#: Seconds between progress reports from a worker, and the parent's liveness poll.
PROGRESS_INTERVAL = 0.5
POLL_INTERVAL = 0.2
#: A batch older than this is sent even if it is not full (sources, slow producers).
MAX_BATCH_AGE = 0.05


class MultiMapping(Mapping):
    """Enactment on ``workers`` local processes."""

    name = "multi"
    description = "multiprocessing on one machine; partitions PEs when workers are few"
    options = ("batch_size", "start_method", "optimisation")

    def run(
        self,
        graph: Graph | WorkflowGraph,
        inputs: InputSpec = None,
        *,
        workers: int | None = None,
        observers: Iterable[Observer] = (),
        batch_size: int = 1024,
        start_method: str | None = None,
        optimisation: Optimisation | None = None,
        **options: Any,
    ) -> RunResult:
        """Run ``graph`` on ``workers`` processes (default: the number of CPUs).

        ``optimisation`` (:class:`engine.optimise.Optimisation`) replaces the default placement.
        """
        self.check_options(options)
        if batch_size < 1:
            raise EngineError(f"batch_size must be >= 1, not {batch_size}")
        observers = list(observers)
        plan = build_plan(graph, inputs, workers=workers or os.cpu_count() or 1,
                          optimisation=optimisation)
        if start_method is None:
            start_method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(start_method)
        for observer in observers:
            observer.run_started(self.name, plan.graph, dict(plan.instances))
        started = time.perf_counter()
        try:
            outputs, stats, links = _Parent(plan, context, batch_size, observers).run()
        except BaseException as error:
            for observer in observers:
                observer.run_failed(error)
            raise
        summary = RunSummary.from_instances(
            self.name, len(plan.workers), time.perf_counter() - started, list(plan.graph.nodes),
            stats, links, plan.partitions(),
        )
        result = RunResult(outputs, summary)
        for observer in observers:
            observer.run_finished(result)
        return result


class _Parent:
    """Starts the workers, collects their messages, and stops them on failure."""

    def __init__(
        self, plan: Plan, context: Any, batch_size: int, observers: list[Observer]
    ) -> None:
        self.plan = plan
        self.context = context
        self.batch_size = batch_size
        self.observers = observers
        self.outputs: dict[str, dict[str, list[Any]]] = {}
        for pe_id, port in plan.graph.unconnected_outputs():
            self.outputs.setdefault(pe_id, {})[port] = []
        self.stats: list[InstanceStats] = []
        self.links: dict[tuple[str, str, str, str], LinkStats] = {}
        self.done: set[int] = set()

    def run(
        self,
    ) -> tuple[dict[str, dict[str, list[Any]]], list[InstanceStats], list[LinkStats]]:
        plan, context = self.plan, self.context
        inboxes = [context.Queue() for _ in plan.workers]
        results = context.Queue()
        self.results = results
        location = {key: index for index, keys in enumerate(plan.workers) for key in keys}
        processes = [
            context.Process(
                target=_worker_main,
                args=(index, plan, location, inboxes, results, self.batch_size),
                name=f"dare-multi-{index}",
                daemon=True,
            )
            for index in range(len(plan.workers))
        ]
        try:
            for process in processes:
                process.start()
            while len(self.done) < len(processes):
                try:
                    message = results.get(timeout=POLL_INTERVAL)
                except queue.Empty:
                    self._check_alive(processes)
                    continue
                self._handle(message)
            for process in processes:
                process.join(timeout=5)
        finally:
            for process in processes:
                if process.is_alive():
                    process.terminate()
            for process in processes:
                if process.pid is not None:
                    process.join(timeout=2)
                    if process.is_alive():
                        process.kill()
                        process.join(timeout=2)
            for channel in [*inboxes, results]:
                channel.close()
                channel.cancel_join_thread()
        return self.outputs, self.stats, list(self.links.values())

    def _handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "O":
            _, pe_id, port, items = message
            self.outputs[pe_id][port].extend(pickle.loads(items))
        elif kind == "P":
            for pe_id, instance, units_in, units_out in message[2]:
                for observer in self.observers:
                    observer.progress(pe_id, instance, units_in, units_out)
        elif kind == "I":
            stats = message[2]
            self.stats.append(stats)
            for observer in self.observers:
                observer.instance_finished(stats)
        elif kind == "done":
            _, worker, links = message
            for link in links:
                key = (link.src, link.src_port, link.dst, link.dst_port)
                total = self.links.setdefault(key, LinkStats(*key))
                total.units += link.units
                total.batches += link.batches
                total.bytes += link.bytes
                total.send_seconds += link.send_seconds
            self.done.add(worker)
        elif kind == "error":
            _, worker, pe_error, original, text = message
            remote = RemoteTraceback(text)
            if pe_error is not None:
                if original is not None:
                    original.__cause__ = remote
                raise pe_error from (original or remote)
            if isinstance(original, EngineError):
                raise original from remote
            last_line = text.strip().splitlines()[-1] if text.strip() else "unknown error"
            raise EngineError(f"worker process {worker} failed: {last_line}") from (
                original or remote
            )
        else:  # pragma: no cover - a protocol error is a bug
            raise EngineError(f"unexpected message from a worker: {message!r}")

    def _check_alive(self, processes: list[Any]) -> None:
        for index, process in enumerate(processes):
            if index in self.done or process.exitcode is None:
                continue
            # The worker may have said goodbye just before exiting: read what is left.
            deadline = time.monotonic() + 1.0
            while index not in self.done and time.monotonic() < deadline:
                try:
                    self._handle(self.results.get(timeout=0.05))
                except queue.Empty:
                    if process.exitcode != 0:
                        break
            if index not in self.done:
                hosted = [f"{pe}[{i}]" for pe, i in self.plan.workers[index]]
                raise WorkerDied(index, process.exitcode, hosted)


def _worker_main(
    index: int,
    plan: Plan,
    location: dict[InstanceKey, int],
    inboxes: list[Any],
    results: Any,
    batch_size: int,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    try:
        _Worker(index, plan, location, inboxes, results, batch_size).run()
    except BaseException as exc:  # report everything, then exit non-zero
        pe_error = exc if isinstance(exc, PEError) else None
        original = exc.__cause__ if pe_error is not None else exc
        text = "".join(traceback.format_exception(original)) if original is not None else ""
        try:
            pickle.dumps(original)
        except Exception:
            original = None
        results.put(("error", index, pe_error, original, text))
        results.close()
        results.join_thread()
        sys.exit(1)


class _Worker:
    """The loop of one worker process: its PE instances, inbox and outgoing batches."""

    def __init__(
        self,
        index: int,
        plan: Plan,
        location: dict[InstanceKey, int],
        inboxes: list[Any],
        results: Any,
        batch_size: int,
    ) -> None:
        self.index = index
        self.plan = plan
        self.inbox = inboxes[index]
        self.results = results
        self.batch_size = batch_size
        self.local: deque[tuple[Any, ...]] = deque()
        self.flushers: list[Callable[[], None]] = []
        self.link_stats: dict[tuple[str, str, str, str], LinkStats] = {}
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
        self.eos_targets: dict[InstanceKey, list[tuple[InstanceKey, Callable[..., int]]]] = {}
        for (pe_id, instance), runner in self.runners.items():
            targets: list[tuple[InstanceKey, Callable[..., int]]] = []
            for edge in graph.outgoing(pe_id):
                count = plan.instances[edge.dst]
                delivers = []
                for j in range(count):
                    dest = (edge.dst, j)
                    send = self._channel(location[dest], inboxes)
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
    def _channel(self, worker: int, inboxes: list[Any]) -> Callable[[tuple[Any, ...]], int]:
        """Return ``send(message)``, which returns the bytes sent (0 within the process)."""
        if worker == self.index:
            append = self.local.append

            def keep(message: tuple[Any, ...]) -> int:
                append(message)
                return 0

            return keep
        put = inboxes[worker].put

        def send(message: tuple[Any, ...]) -> int:
            try:
                data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                kind, dest, *rest = message
                raise EngineError(
                    f"units sent by {rest[1] if kind == 'D' else rest[0]} to "
                    f"{dest[0]}[{dest[1]}] cannot cross processes (pickle failed: {exc}); "
                    "emit picklable data, or run this PE with the simple mapping"
                ) from exc
            put(data)
            return len(data)

        return send

    def _buffer(
        self,
        send: Callable[[tuple[Any, ...]], int],
        header: tuple[Any, ...],
        link: tuple[str, str, str, str],
    ) -> Deliver:
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
        put = self.results.put
        items: list[Any] = []

        def flush() -> None:
            nonlocal items
            if items:
                batch, items = items, []
                put(("O", pe_id, port, pickle.dumps(batch, pickle.HIGHEST_PROTOCOL)))

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
        inbox_get = self.inbox.get
        local = self.local
        while active:
            if local:
                message = local.popleft()
            else:
                self.flush_all()
                try:
                    message = pickle.loads(inbox_get(timeout=PROGRESS_INTERVAL))
                except queue.Empty:
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
        self.results.put(("done", self.index, list(self.link_stats.values())))
        self.results.close()
        self.results.join_thread()

    def _run_source(self, runner: InstanceRunner) -> None:
        last = [clock()]

        def after_each() -> None:
            now = clock()
            if now - last[0] > MAX_BATCH_AGE:
                last[0] = now
                self.flush_all()
                if time.monotonic() - self.last_progress > PROGRESS_INTERVAL:
                    self._progress()

        runner.run_iterations(self.plan.iterations[runner.node.id], after_each)

    def _finish(self, key: InstanceKey) -> None:
        runner = self.runners[key]
        runner.flush()
        self.flush_all()
        for dest, send in self.eos_targets[key]:
            send(("E", dest, runner.label))
        self.results.put(("I", self.index, runner.finish_stats()))

    def _progress(self) -> None:
        self.last_progress = time.monotonic()
        counts = [
            (pe_id, instance, runner.stats.units_in, runner._emitted())
            for (pe_id, instance), runner in self.runners.items()
        ]
        self.results.put(("P", self.index, counts))


