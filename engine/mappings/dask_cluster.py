"""The ``dask`` mapping: the partitions of a plan on the workers of a Dask cluster.

Who uses it: anyone with a ``dask.distributed`` cluster (a ``LocalCluster``, dask-jobqueue on
Slurm/PBS, dask-kubernetes, or a scheduler address): the same graph runs there unchanged.

Design (why long-running partitions, not a task per batch)
---------------------------------------------------------
The plan is the one :func:`engine.partition.build_plan` makes for ``multi``; each partition
(the PE instances of one worker of the plan) runs the shared loop
:class:`engine.mappings.worker.Worker`, so this mapping keeps ``multi``'s semantics by
construction: setup/flush/teardown once per instance, group-by routing by the plan's routers,
end-of-stream markers after the data of each link, order within a link. A task per batch (as
``dynamic`` does) would put the Dask scheduler (a few hundred microseconds per task) on the
path of every batch and would need a ledger of tasks to terminate; streaming partitions use
Dask for what it is good at, placing work on the cluster's machines and noticing when they
go, and keep the data plane direct.

* **Control plane: Dask.** One task per partition, ``client.submit(..., workers=[w])``,
  round-robin over the cluster's worker processes, so that two partitions share a Python
  interpreter (and its GIL) only when the partitions outnumber the workers. The task
  calls ``secede()`` at once (it is long-running: partitions never wait for a free thread) and
  supervises one *partition process* (``python -c``, a fresh interpreter with the Dask
  worker's ``sys.path``). A process of its own, not a thread of the Dask worker, because a
  PE's ``unit_timeout`` is enforced with SIGALRM in a main thread, because a PE that crashes
  its process must not take the Dask worker with it, and because a hung PE can be killed.
* **Data plane: TCP between partition processes** (:mod:`multiprocessing.connection`, HMAC
  authenticated with a key made for the run, sent to the tasks through Dask). Each partition
  process listens on its Dask worker's host; a batch from one instance to another travels on
  the one connection between their two processes, so it keeps its order. Reports, outputs
  and failures go to the process that called ``run`` (the *driver*) on one connection per
  partition. Nothing flows through the scheduler, which Dask's docs advise against for data.
* **Failures.** A PE's exception comes back as the engine's :class:`~engine.errors.PEError`
  naming PE, instance and unit; the partition where it happened tears its instances down.
  The driver then closes its connections: every other partition process stops (tearing down
  what it set up), and is killed after :data:`STOP_GRACE` seconds if a PE hangs. A partition
  process that ends without saying goodbye (killed, ``os._exit``, its Dask worker killed:
  the kernel's parent-death signal ends it with its supervising thread) closes its
  connection, and the driver raises :class:`~engine.errors.WorkerDied` within a second.

The cluster: option ``scheduler`` (an address such as ``tcp://host:8786``, a
``distributed.Client``, or a cluster object such as ``LocalCluster`` or a dask-jobqueue
``SLURMCluster``), else the environment variable :data:`SCHEDULER_ENV`, else a
``LocalCluster`` of ``workers`` single-threaded worker processes, started for the run and
closed after it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Client as connect
from multiprocessing.connection import Connection, Listener, wait
from typing import IO, Any, NoReturn

from engine.errors import EngineError, WorkerDied
from engine.graph import Graph, WorkflowGraph
from engine.loading import pickle_with_modules, remember_files, user_code
from engine.mappings.base import DEFAULT_BATCH_SIZE, Enactment, Mapping, Prepared
from engine.mappings.multi import _die_with_parent
from engine.mappings.worker import (
    DEFAULT_QUEUE_DEPTH,
    Collector,
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
from engine.partition import InputSpec, Plan, build_plan

__all__ = ["SCHEDULER_ENV", "DaskMapping", "partition_main"]

#: The environment variable naming the scheduler when the ``scheduler`` option is not given.
SCHEDULER_ENV = "DARE_DASK_SCHEDULER"
#: Seconds to reach the scheduler before the run fails naming its address.
CONNECT_TIMEOUT = 10.0
#: Default seconds for every partition process to start and report (``start_timeout``).
START_TIMEOUT = 120.0
#: Seconds a partition process has to stop (tearing down) once the driver has gone.
STOP_GRACE = 3.0
#: Connections waiting to be accepted (all partitions connect to the driver at once).
BACKLOG = 128
#: Seconds between the driver's checks of the Dask tasks.
POLL_INTERVAL = 0.2

_BOOTSTRAP = (
    "import pickle, sys; sys.path[:] = pickle.load(sys.stdin.buffer); "
    "from engine.mappings.dask_cluster import partition_main; "
    "partition_main(sys.stdin.buffer)"
)


class DaskMapping(Mapping):
    """Enactment on the worker processes of a Dask cluster."""

    name = "dask"
    description = "a dask.distributed cluster (LocalCluster, dask-jobqueue, an address)"
    options = ("scheduler", "batch_size", "queue_depth", "optimisation", "start_timeout")

    def prepare(
        self,
        graph: Graph | WorkflowGraph,
        inputs: InputSpec,
        workers: int | None,
        options: dict[str, Any],
    ) -> Prepared:
        """Reach (or start) the cluster, then plan ``workers`` partitions.

        Without ``workers``: one partition per thread of the cluster (one per CPU for a
        ``LocalCluster`` started here).
        """
        cluster = _Cluster.open(options.get("scheduler"), workers)
        try:
            plan = build_plan(graph, inputs, workers=workers or cluster.threads(),
                              optimisation=options.get("optimisation"))
        except BaseException:
            cluster.close()
            raise
        return Prepared(plan, state=cluster)

    def enact(
        self, prepared: Prepared, observers: Sequence[Observer], options: dict[str, Any]
    ) -> Enactment:
        """Run every partition as a long-running task of the cluster; collect the results.

        Options: ``scheduler`` (see the module), ``batch_size`` (units per batch, default
        1024), ``queue_depth`` (batches in flight to one PE instance, default 32, as ``multi``),
        ``optimisation`` and ``start_timeout`` (seconds for every partition to start,
        default 120: a batch-system cluster may wait for its jobs).
        """
        cluster: _Cluster = prepared.state
        plan = prepared.plan
        try:
            flow = (options.get("batch_size", DEFAULT_BATCH_SIZE),
                    options.get("queue_depth", DEFAULT_QUEUE_DEPTH))
            driver = _Driver(plan, cluster, flow, list(observers),
                             float(options.get("start_timeout", START_TIMEOUT)))
            outputs, stats, links = driver.run()
        finally:
            cluster.close()
        return Enactment(outputs, stats, processes=len(plan.workers), links=links)


# -- the cluster -------------------------------------------------------------------------------
@dataclass
class _Cluster:
    """A client of the cluster, and what this mapping started (and so must close)."""

    client: Any
    address: str
    owned: list[Any] = field(default_factory=list)

    @classmethod
    def open(cls, scheduler: Any, workers: int | None) -> _Cluster:
        """Connect to ``scheduler``, :data:`SCHEDULER_ENV`, or start a ``LocalCluster``."""
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise EngineError("the dask mapping needs dask.distributed: "
                              "pip install 'dare[dask]' (or pip install distributed)") from exc
        if scheduler is None:
            scheduler = os.environ.get(SCHEDULER_ENV) or None
        if isinstance(scheduler, Client):
            return cls(scheduler, str(scheduler.scheduler_info()["address"]))
        if scheduler is None:
            local = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                 processes=True, dashboard_address=":0",
                                 silence_logs=logging.ERROR)
            client = Client(local)
            return cls(client, str(local.scheduler_address), [client, local])
        if isinstance(scheduler, str):
            _probe(scheduler)
            try:
                client = Client(scheduler, timeout=CONNECT_TIMEOUT)
            except OSError as exc:
                raise _unreachable(scheduler, exc) from exc
            return cls(client, scheduler, [client])
        if hasattr(scheduler, "scheduler_address"):  # LocalCluster, SLURMCluster, ...
            client = Client(scheduler)
            return cls(client, str(scheduler.scheduler_address), [client])
        raise EngineError(f"option scheduler must be an address, a distributed.Client or a "
                          f"Dask cluster object, not {type(scheduler).__name__}")

    def workers(self) -> list[str]:
        """Addresses of the cluster's worker processes, sorted."""
        return sorted(self.client.scheduler_info(n_workers=-1)["workers"])

    def threads(self) -> int:
        """Threads of the cluster's workers together (at least 1)."""
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        return max(1, sum(worker.get("nthreads", 1) for worker in info.values()))

    def close(self) -> None:
        """Close what this mapping started (clients, a ``LocalCluster``), not the others."""
        for thing in self.owned:
            with contextlib.suppress(Exception):
                thing.close()
        self.owned = []


def _probe(address: str) -> None:
    """Fail at once, naming ``address``, when nothing listens there (no 10-s retry loop)."""
    from distributed.comm import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme not in ("tcp", "tls"):
            return
        host, port = parse_host_port(location)
    except ValueError as exc:
        raise _unreachable(address, exc) from exc
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise _unreachable(address, exc) from exc


def _unreachable(address: str, exc: BaseException) -> EngineError:
    return EngineError(
        f"cannot reach the Dask scheduler at {address} ({exc}); start it (dask scheduler, or "
        f"a dask-jobqueue cluster) or give its address with --option scheduler=ADDRESS or "
        f"{SCHEDULER_ENV}=ADDRESS; with neither, the dask mapping starts a LocalCluster"
    )


# -- the driver: submits the partitions and collects what they report ------------------------
class _Driver(Collector):
    """Starts one task per partition, wires them together, collects, stops them on failure."""

    def __init__(self, plan: Plan, cluster: _Cluster, flow: tuple[int, int],
                 observers: list[Observer], start_timeout: float) -> None:
        super().__init__(plan, observers)
        self.plan = plan
        self.cluster = cluster
        self.flow = flow
        self.start_timeout = start_timeout
        self.authkey = os.urandom(32)
        self.hosts: dict[int, str] = {}
        self.futures: list[Any] = []

    def run(self) -> tuple[dict[str, dict[str, list[Any]]], list[InstanceStats], list[LinkStats]]:
        from distributed.comm import get_address_host
        from distributed.utils import get_ip

        host = get_ip(get_address_host(self.cluster.address))
        accepted: queue.Queue[Connection] = queue.Queue()
        acceptor = _Acceptor(host, self.authkey, accepted.put)
        connections: dict[int, Connection] = {}
        try:
            self._submit(acceptor.address)
            connections = self._handshake(accepted)
            self._collect(connections)
        finally:
            for connection in connections.values():
                connection.close()
            acceptor.close()
            self._stop()
        return self.outputs, self.stats, list(self.links.values())

    def _submit(self, address: tuple[str, int]) -> None:
        workers = self.cluster.workers()
        if not workers:
            self.cluster.client.wait_for_workers(1, timeout=self.start_timeout)
            workers = self.cluster.workers()
        location = {key: index for index, keys in enumerate(self.plan.workers) for key in keys}
        try:
            payload, files = pickle_with_modules((self.plan, location, self.flow))
        except Exception as exc:
            raise EngineError(f"the graph cannot be sent to the Dask workers (pickling failed: "
                              f"{type(exc).__name__}: {exc})") from exc
        blob = pickle.dumps((files, payload), pickle.HIGHEST_PROTOCOL)
        run_id = uuid.uuid4().hex[:12]
        for index in range(len(self.plan.workers)):
            worker = workers[index % len(workers)]
            self.hosts[index] = worker
            self.futures.append(self.cluster.client.submit(
                _supervise, index, blob, address, self.authkey, key=f"dare-{run_id}-{index}",
                workers=[worker], allow_other_workers=False, pure=False, retries=0))

    def _handshake(self, accepted: queue.Queue[Connection]) -> dict[int, Connection]:
        """Wait for every partition's hello; send each the addresses of all."""
        count = len(self.plan.workers)
        connections: dict[int, Connection] = {}
        addresses: dict[int, Any] = {}
        deadline = time.monotonic() + self.start_timeout
        while len(connections) < count:
            if time.monotonic() > deadline:
                raise EngineError(
                    f"{count - len(connections)} of {count} partitions did not start within "
                    f"{self.start_timeout:g} s on the Dask cluster at {self.cluster.address} "
                    "(too few workers? raise --option start_timeout=SECONDS)")
            self._check_tasks(set(connections))
            try:
                connection = accepted.get(timeout=POLL_INTERVAL)
            except queue.Empty:
                continue
            if not connection.poll(self.start_timeout):
                raise EngineError("a partition process connected but never said hello")
            message = pickle.loads(connection.recv_bytes())
            if message[0] == "error":
                raise_failure(f"dask partition {message[1]}", *message[2:])
            _, index, listening = message
            connections[index] = connection
            addresses[index] = listening
        for connection in connections.values():
            connection.send_bytes(pickle.dumps(("peers", addresses)))
        return connections

    def _collect(self, connections: dict[int, Connection]) -> None:
        open_ = {connection: index for index, connection in connections.items()}
        while len(self.done) < len(connections):
            for ready in wait(list(open_), timeout=POLL_INTERVAL):
                assert isinstance(ready, Connection)
                try:
                    data = ready.recv_bytes()
                except (EOFError, OSError):
                    index = open_.pop(ready)
                    if index not in self.done:
                        self._died(index)
                    continue
                self._handle(pickle.loads(data))

    def _handle(self, message: Message) -> None:
        if self.count(message):
            return
        kind = message[0]
        if kind == "O":
            _, pe_id, port, items = message
            self.outputs[pe_id][port].extend(items)
        elif kind == "done":
            _, index, links = message
            merge_links(self.links, links)
            self.done.add(index)
        elif kind == "error":
            index = message[1]
            raise_failure(f"dask partition {index} (on {self.hosts[index]})", *message[2:])
        else:  # pragma: no cover - a protocol error is a bug
            raise EngineError(f"unexpected message from a partition: {message!r}")

    def _check_tasks(self, started: set[int]) -> None:
        """A task that failed before its partition process connected fails the run."""
        for index, future in enumerate(self.futures):
            if index not in started and future.status in ("error", "finished", "lost"):
                detail = (repr(future.exception()) if future.status == "error"
                          else f"its task ended ({future.status}, result "
                               f"{future.result() if future.status == 'finished' else None})")
                raise EngineError(f"dask partition {index} (on {self.hosts[index]}) could "
                                  f"not start: {detail}")

    def _died(self, index: int) -> NoReturn:
        """Partition ``index`` closed its connection without finishing."""
        code: int | None = None
        with contextlib.suppress(Exception):
            code = self.futures[index].result(timeout=2.0)
        hosted = [f"{pe}[{i}]" for pe, i in self.plan.workers[index]]
        error = WorkerDied(index, code, hosted)
        worker = self.hosts[index]
        with contextlib.suppress(Exception):
            if worker not in self.cluster.workers():
                error.args = (f"{error}: its Dask worker {worker} left the cluster (killed, "
                              "out of memory, or its job ended)",)
        raise error

    def _stop(self) -> None:
        """Let the tasks end (their processes stop once the driver has gone), then cancel."""
        from distributed import wait as wait_futures

        with contextlib.suppress(Exception):
            wait_futures(self.futures, timeout=STOP_GRACE + 1)
        with contextlib.suppress(Exception):
            self.cluster.client.cancel(self.futures, force=True)


class _Acceptor:
    """Accepts authenticated connections on a listener, in a thread, until closed.

    A peer that fails the handshake (a wrong key, a reset) is dropped; only :meth:`close`
    ends the loop, so that one bad connection never leaves the others unaccepted.
    """

    def __init__(self, host: str, authkey: bytes, take: Callable[[Connection], None]) -> None:
        self.listener = Listener((host, 0), backlog=BACKLOG, authkey=authkey)
        self.address: tuple[str, int] = self.listener.address
        self.take = take
        self.closed = threading.Event()
        threading.Thread(target=self._loop, daemon=True, name="dare-dask-accept").start()

    def _loop(self) -> None:
        while not self.closed.is_set():
            try:
                connection = self.listener.accept()
            except Exception:  # AuthenticationError, a reset, or closed
                time.sleep(0.01)
                continue
            self.take(connection)

    def close(self) -> None:
        """Stop accepting (a blocked ``accept`` is woken by a connection that closes at once)."""
        self.closed.set()
        with contextlib.suppress(OSError):
            socket.create_connection(self.address, timeout=1.0).close()
        self.listener.close()


# -- on a Dask worker ----------------------------------------------------------------------------
def _supervise(index: int, blob: bytes, driver: tuple[str, int], authkey: bytes) -> int:
    """The Dask task of partition ``index``: run its process; return its exit code."""
    from distributed import get_worker, secede
    from distributed.comm import get_address_host

    host = get_address_host(get_worker().address)
    secede()  # long-running: never holds one of the worker's threads
    process = subprocess.Popen([sys.executable, "-c", _BOOTSTRAP], stdin=subprocess.PIPE)
    assert process.stdin is not None
    with contextlib.suppress(BrokenPipeError):
        pickle.dump(sys.path, process.stdin)
        pickle.dump((index, host, driver, authkey, blob, os.getpid()), process.stdin)
        process.stdin.close()
    return process.wait()


def partition_main(stream: IO[bytes]) -> None:
    """Body of a partition process: connect, load the plan, run the worker loop, report."""
    index, host, address, authkey, blob, parent = pickle.load(stream)
    detach_signals()
    _die_with_parent(parent)
    driver = connect(address, authkey=authkey)
    try:
        files, payload = pickle.loads(blob)
        remember_files(files)  # modules the driver loaded from files (dare run flow.py)
        with user_code():  # dispel4py modules get the engine's dispel4py, as on the driver
            plan, location, (batch_size, queue_depth) = pickle.loads(payload)
        inbox: queue.Queue[bytes | None] = queue.Queue()
        acceptor = _Acceptor(host, authkey, lambda connection: _read_into(inbox, connection))
        driver.send_bytes(pickle.dumps(("hello", index, acceptor.address)))
        _, peers = pickle.loads(driver.recv_bytes())
        transport = _TcpTransport(index, peers, acceptor, inbox, driver, authkey)
        Worker(index, plan, location, transport, batch_size, queue_depth).run()
    except BaseException as exc:  # report everything, then exit non-zero
        with contextlib.suppress(OSError):
            driver.send_bytes(pickle.dumps(("error", index, *describe_failure(exc))))
        driver.close()
        sys.exit(1)
    transport.close()
    driver.close()


def _read_into(inbox: queue.Queue[bytes | None], connection: Connection) -> None:
    """Put every message of ``connection`` into ``inbox`` (in a thread) until it closes."""

    def loop() -> None:
        while True:
            try:
                inbox.put(connection.recv_bytes())
            except (EOFError, OSError):  # the sender has finished
                return

    threading.Thread(target=loop, daemon=True).start()


class _Stopped(EngineError):
    """The driver has gone (the run failed elsewhere, or was interrupted)."""


class _TcpTransport(Transport):
    """Connections to the other partition processes, and one to the driver."""

    def __init__(self, index: int, peers: dict[int, Any], acceptor: _Acceptor,
                 inbox: queue.Queue[bytes | None], driver: Connection, authkey: bytes) -> None:
        self.index = index
        self.peers = peers
        self.acceptor = acceptor
        self.inbox = inbox
        self.driver = driver
        self.authkey = authkey
        self.outgoing: list[Connection] = []
        self.stopped = threading.Event()
        threading.Thread(target=self._watch_driver, daemon=True).start()

    def _watch_driver(self) -> None:
        """The driver sends nothing more after the peers: EOF means stop (then die)."""
        with contextlib.suppress(EOFError, OSError):
            self.driver.recv_bytes()
        self.stopped.set()
        self.inbox.put(None)
        time.sleep(STOP_GRACE)
        os._exit(1)  # a PE did not return in time: the teardown is abandoned

    def channel(self, worker: int) -> Send:
        connection = connect(self.peers[worker], authkey=self.authkey)
        self.outgoing.append(connection)

        def send(message: Message) -> int:
            data = dump_message(message)
            connection.send_bytes(data)
            return len(data)

        return send

    def receive(self, timeout: float) -> Message | None:
        self.poll()
        try:
            data = self.inbox.get(timeout=timeout)
        except queue.Empty:
            return None
        if data is None:
            self.poll()
        message: Message = pickle.loads(data)  # type: ignore[arg-type]
        return message

    def poll(self) -> None:
        if self.stopped.is_set():
            raise _Stopped(f"dask partition {self.index} was stopped: the run ended elsewhere")

    def report(self, message: Message) -> None:
        self.driver.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))

    def output(self, pe_id: str, port: str, items: list[Any]) -> None:
        self.report(("O", pe_id, port, items))

    def finish(self, links: list[LinkStats]) -> None:
        self.report(("done", self.index, links))

    def close(self) -> None:
        for connection in self.outgoing:
            connection.close()
        self.acceptor.close()

