"""The ``multi`` mapping: PE instances spread over worker processes (multiprocessing).

Placement follows :func:`engine.partition.build_plan`: one process per PE instance when the
workers suffice, otherwise partitions of several instances per process. Each worker has one
inbox queue; units travel in batches (``batch_size`` units, or fewer when the worker is about
to wait for input, so that latency stays low when the workflow is not loaded). A batch from one
sender instance to one receiver instance travels on one queue, so order within a link is
preserved. End-of-stream markers follow the data of each link; an instance flushes when it has
one from every upstream instance. That loop, :class:`engine.mappings.worker.Worker`, is shared
with the ``mpi`` mapping; this module gives it its transport (multiprocessing queues).

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
from collections.abc import Sequence
from typing import Any

from engine.errors import EngineError, WorkerDied
from engine.mappings.base import DEFAULT_BATCH_SIZE, Enactment, Mapping, Prepared
from engine.mappings.worker import (
    DEFAULT_QUEUE_DEPTH,
    Collector,
    InstanceKey,
    Message,
    Send,
    Transport,
    Worker,
    describe_failure,
    detach_signals,
    dump_message,
    merge_links,
    raise_failure,
)
from engine.observe import InstanceStats, LinkStats, Observer
from engine.partition import Plan

__all__ = ["MultiMapping"]

#: Seconds between the parent's checks that every worker is alive.
POLL_INTERVAL = 0.2
#: Seconds the workers have, together, to exit after SIGTERM before they are killed.
STOP_GRACE = 3.0
#: The interpreter's switch interval in a worker (seconds; Python's default is 0.005).
FEEDER_SWITCH_INTERVAL = 0.001


class MultiMapping(Mapping):
    """Enactment on ``workers`` local processes."""

    name = "multi"
    description = "multiprocessing on one machine; partitions PEs when workers are few"
    options = ("batch_size", "queue_depth", "start_method", "optimisation")

    def enact(
        self, prepared: Prepared, observers: Sequence[Observer], options: dict[str, Any]
    ) -> Enactment:
        """Run the plan on its worker processes (``start_method``: fork where available).

        Options: ``batch_size`` (units per batch, default 1024), ``queue_depth`` (batches in
        flight to one PE instance from one worker, default 32: the back-pressure),
        ``start_method``, and ``optimisation`` (:class:`engine.optimise.Optimisation`), which
        replaces the default placement.
        """
        plan = prepared.plan
        start_method = options.get("start_method")
        if start_method is None:
            start_method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(start_method)
        flow = (options.get("batch_size", DEFAULT_BATCH_SIZE),
                options.get("queue_depth", DEFAULT_QUEUE_DEPTH))
        outputs, stats, links = _Parent(plan, context, flow, list(observers)).run()
        return Enactment(outputs, stats, processes=len(plan.workers), links=links)


class _Parent(Collector):
    """Starts the workers, collects their messages, and stops them on failure."""

    def __init__(
        self, plan: Plan, context: Any, flow: tuple[int, int], observers: list[Observer]
    ) -> None:
        super().__init__(plan, observers)
        self.plan = plan
        self.context = context
        self.flow = flow

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
                args=(index, plan, location, inboxes, results, self.flow,
                      os.getpid() if context.get_start_method() == "fork" else None),
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
            # one grace period for all (not 2 s each), then SIGKILL whatever is left
            deadline = time.monotonic() + STOP_GRACE
            for process in processes:
                if process.pid is not None:
                    process.join(timeout=max(0.0, deadline - time.monotonic()))
            for process in processes:
                if process.pid is not None and process.is_alive():
                    process.kill()
                    process.join(timeout=2)
            for channel in [*inboxes, results]:
                channel.close()
                channel.cancel_join_thread()
        return self.outputs, self.stats, list(self.links.values())

    def _handle(self, message: tuple[Any, ...]) -> None:
        if self.count(message):
            return
        kind = message[0]
        if kind == "O":
            _, pe_id, port, items = message
            self.outputs[pe_id][port].extend(pickle.loads(items))
        elif kind == "done":
            _, worker, links = message
            merge_links(self.links, links)
            self.done.add(worker)
        elif kind == "error":
            _, worker, pe_error, original, text = message
            raise_failure(f"worker process {worker}", pe_error, original, text)
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


def _die_with_parent(parent_pid: int | None) -> None:
    """Have the kernel end this worker when its parent ends (Linux ``PR_SET_PDEATHSIG``).

    The parent stops its workers itself on success, failure and Ctrl-C; this covers what it
    cannot: a parent killed outright, or interrupted between a fork and the bookkeeping of the
    new process (seen under load: workers left running after ``dare run`` exited on Ctrl-C).
    """
    if parent_pid is None or not sys.platform.startswith("linux"):
        return  # started by a fork server or spawned: their parent is not the run's
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:
        os._exit(1)  # the parent ended before the request took effect


def _worker_main(
    index: int,
    plan: Plan,
    location: dict[InstanceKey, int],
    inboxes: list[Any],
    results: Any,
    flow: tuple[int, int],
    parent_pid: int | None = None,
) -> None:
    detach_signals()
    _die_with_parent(parent_pid)
    # A queue's feeder thread needs the interpreter lock to send what the loop put: at the
    # default 5-ms switch interval a busy worker held back its flow-control confirmations
    # long enough to starve its senders (1M trivial units: 1.15 s, 1.05 s at 1 ms).
    sys.setswitchinterval(FEEDER_SWITCH_INTERVAL)
    try:
        transport = _QueueTransport(index, inboxes, results)
        Worker(index, plan, location, transport, *flow).run()
    except BaseException as exc:  # report everything, then exit non-zero
        results.put(("error", index, *describe_failure(exc)))
        results.close()
        results.join_thread()
        sys.exit(1)


class _QueueTransport(Transport):
    """Multiprocessing queues: one inbox per worker, one results queue to the parent."""

    def __init__(self, index: int, inboxes: list[Any], results: Any) -> None:
        self.index = index
        self.inboxes = inboxes
        self.inbox = inboxes[index]
        self.results = results

    def channel(self, worker: int) -> Send:
        put = self.inboxes[worker].put

        def send(message: Message) -> int:
            data = dump_message(message)
            put(data)
            return len(data)

        return send

    def receive(self, timeout: float) -> Message | None:
        try:
            message: Message = pickle.loads(self.inbox.get(timeout=timeout))
        except queue.Empty:
            return None
        return message

    def report(self, message: Message) -> None:
        self.results.put(message)

    def output(self, pe_id: str, port: str, items: list[Any]) -> None:
        self.results.put(("O", pe_id, port, pickle.dumps(items, pickle.HIGHEST_PROTOCOL)))

    def finish(self, links: list[LinkStats]) -> None:
        self.results.put(("done", self.index, links))
        self.results.close()
        self.results.join_thread()
