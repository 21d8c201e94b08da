"""The ``redis`` mapping: the task core of ``dynamic``, shared across machines through Redis.

A run is a set of keys under ``dare:{RUN_ID}:`` (the braces make it a Redis Cluster hash tag,
so every key of a run lives in one slot and one Lua script may touch them all):

=====================  ============================================================
``state``              ``running``, then ``done`` or ``failed`` (kept for an hour)
``spec``, ``meta``     the graph (cloudpickle); the modules to load first, and options
``pool``               stream of the pooled PEs' tasks, consumer group ``pool``
``inst:PE:I``          stream of one dedicated instance, consumer group ``inst``
``reports``            stream of task reports and errors, read by the coordinator
``done``               set of committed task ids
``workers``            counter giving each worker its number
=====================  ============================================================

The coordinator (the process that called ``run``) creates them, starts ``local_workers`` pool
worker processes and one process per dedicated instance (sources and stateful PEs, see
:mod:`engine.mappings.tasks`), and counts reports until every PE is complete. More pool
workers may join from any host::

    dare worker --redis redis://HOST:PORT/DB --run RUN_ID

(the run id is logged by the coordinator, or chosen with the ``run_id`` option; without
``--run`` a worker serves whatever runs appear). Their code must be importable there: the
graph travels by cloudpickle, which refers to classes by module name; modules the coordinator
loaded from a ``.py`` file are loaded by the worker from the same path, which must therefore
exist on the worker's host (a shared file system, or the same checkout).

Exactly once
------------
A pool worker takes a task with ``XREADGROUP`` and commits it with one Lua script: if the task
id is new in ``done``, the script appends the emitted tasks to their streams and the report to
``reports``; in every case it acknowledges (and deletes) the task. A worker killed mid-task
leaves its task pending; after ``visibility_timeout`` seconds (default 5) another worker takes
it over with ``XAUTOCLAIM`` and runs it again. When both finish (a slow worker, not a dead
one), only the first commit counts, so every unit reaches the outputs once. Sources and
dedicated instances commit the same way with deterministic ids, so a commit retried after a
lost reply is applied once.

Redis restarts
--------------
Every client retries (redis-py ``Retry``, exponential back-off) for ``reconnect_timeout``
seconds (default 30), so a Redis server restarted with persistence (``appendonly yes``,
``appendfsync always``) loses no acknowledged task and the run completes with exact outputs.
A server that comes back empty (no persistence) is detected and ends the run with an error.

Signed messages
---------------
Tasks, graphs and reports travel as pickles, and unpickling runs code: every message is
signed (HMAC-SHA256, :mod:`engine.signing`) and checked before it is unpickled, so whoever can
write to the server but lacks the secret cannot run code on the workers or the coordinator; a
message that fails the check ends the run with an error naming its stream or key. The secret
is ``$DARE_QUEUE_SECRET`` or the file named by ``$DARE_QUEUE_SECRET_FILE``, the same on every
host. Without one, the coordinator makes a key for the run, shared with the local workers it
starts (through the process's memory, never argv), so a run on one machine needs no set-up;
``dare worker`` on another host then cannot join (it refuses to start without a secret).
``$DARE_QUEUE_INSECURE=1`` turns signing off on every host, for trusted networks.

Retries
-------
A pool task is delivered at most ``max_deliveries`` times (default 3): when its last delivery
has also been pending for ``visibility_timeout`` seconds (its worker hung or died each time),
the run fails, naming the PE, the units and the attempts, rather than repeat its side effects
on every worker of the pool.

Limits
------
Signatures prove who wrote a message, not that it is fresh: use a server that only the
deployment's hosts can write to (a password, TLS with ``rediss://``).

Dedicated instances and sources live in processes on the coordinator's machine: if that
machine dies the run is lost. The coordinator keeps the run's ``state`` key alive with a time
to live of ``reconnect_timeout`` + 30 s, so workers stop serving a run whose coordinator is
gone; its other keys stay until deleted (``redis-cli --scan --pattern 'dare:{RUN_ID}:*'``).

A task that
takes longer than ``visibility_timeout`` is run again by another worker (committed once):
raise the timeout for slow PEs. After a Redis restart, a task whose delivery reply was lost is
processed later than its successors, so order within a link is then not guaranteed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import socket
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.errors import EngineError, PEError
from engine.graph import Graph, WorkflowGraph
from engine.mappings.base import Prepared
from engine.mappings.tasks import (
    BrokerCoordinator,
    BrokerMapping,
    Coordinator,
    Pace,
    Ready,
    Report,
    RunSpec,
    TaskWorker,
    backlog_limit,
    coordinator_signer,
    dump_report,
    dump_task,
    failure_message,
    in_worker_process,
    load_spec,
    local_count,
    modules_of,
    pace_of,
    plan_run,
    raise_failure,
    run_source,
    send_tasks,
    shareable,
)
from engine.mappings.worker import DEFAULT_QUEUE_DEPTH, detach_signals
from engine.observe import Observer
from engine.partition import InputSpec, Plan
from engine.signing import SignatureError, Signer

__all__ = ["RedisMapping", "RunKeys", "connect", "serve"]

logger = logging.getLogger(__name__)

DEFAULT_URL = "redis://127.0.0.1:6379/0"
#: Environment variable giving the default ``redis_url`` (and ``dare worker --redis``).
URL_VARIABLE = "DARE_REDIS_URL"
#: Units per task (a task costs about two Redis round trips; see ``dynamic``).
DEFAULT_BATCH = 32
#: Milliseconds a worker blocks on an empty stream before checking the run's state.
BLOCK_MS = 1000
#: How long a finished run's ``state`` key is kept, so late workers learn that it ended.
STATE_TTL = 3600
#: Deliveries of a pool task before the run fails (a mapping option).
DEFAULT_MAX_DELIVERIES = 3
#: Seconds within which a first connection must succeed.
CONNECT_TIMEOUT = 3.0
RUNS_KEY = "dare:runs"

# KEYS: state, done, reports, ack stream, destination streams...
# ARGV: task id, group, entry id to ack ('' for none), report, payloads...
_COMMIT = """
if redis.call('GET', KEYS[1]) ~= 'running' then return -1 end
local new = redis.call('SADD', KEYS[2], ARGV[1])
if new == 1 then
  for i = 5, #KEYS do redis.call('XADD', KEYS[i], '*', 't', ARGV[i]) end
  redis.call('XADD', KEYS[3], '*', 'r', ARGV[4])
end
if ARGV[3] ~= '' then
  redis.call('XACK', KEYS[4], ARGV[2], ARGV[3])
  redis.call('XDEL', KEYS[4], ARGV[3])
end
return new
"""


def default_url() -> str:
    """``$DARE_REDIS_URL``, else ``redis://127.0.0.1:6379/0``."""
    return os.environ.get(URL_VARIABLE) or DEFAULT_URL


def connect(url: str, reconnect_timeout: float = 30.0) -> Any:
    """A Redis client that retries every command for about ``reconnect_timeout`` seconds."""
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    cap = 0.5
    retry = Retry(ExponentialBackoff(cap=cap, base=0.02), int(reconnect_timeout / cap) + 5,
                  supported_errors=(redis.ConnectionError, redis.TimeoutError, TimeoutError))
    return redis.Redis.from_url(
        url, retry=retry, socket_connect_timeout=2, socket_timeout=BLOCK_MS / 1000 + 10,
        socket_keepalive=True,
    )


def check_reachable(url: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail fast if the Redis server at ``url`` does not answer a PING within ``timeout``.

    Raises
    ------
    EngineError
        Naming the URL (without its password) and how to give another.
    """
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout,
                                      socket_timeout=timeout)
    except ValueError as exc:
        raise EngineError(f"bad Redis URL {_describe_url(url)}: {exc}") from exc
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        raise EngineError(
            f"Redis at {_describe_url(url)} refused the login ({exc}): give the password "
            f"in the URL, redis://:PASSWORD@HOST:PORT/DB, preferably through ${URL_VARIABLE}"
        ) from exc
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        raise EngineError(
            f"cannot reach Redis at {_describe_url(url)} ({exc}): start a server there, or "
            f"give its URL with ${URL_VARIABLE} (or the redis_url option, 'dare run -m redis "
            "--option redis_url=redis://HOST:PORT/DB'; 'dare worker --redis URL')"
        ) from exc
    except redis.ResponseError as exc:  # e.g. NOAUTH from a server that wants a password
        raise EngineError(f"Redis at {_describe_url(url)} refused a PING: {exc}") from exc
    finally:
        client.close()


def _describe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    return f"{parts.scheme}://{host}:{parts.port or 6379}{parts.path}"


@dataclass(frozen=True)
class RunKeys:
    """Names of a run's keys."""

    run_id: str

    @property
    def prefix(self) -> str:
        """``dare:{RUN_ID}:``."""
        return f"dare:{{{self.run_id}}}:"

    def __getattr__(self, name: str) -> str:
        if name in ("state", "spec", "meta", "pool", "reports", "done", "workers", "flow"):
            return self.prefix + name
        raise AttributeError(name)

    def instance(self, pe_id: str, instance: int) -> str:
        """Stream of one dedicated instance."""
        return f"{self.prefix}inst:{pe_id}:{instance}"

    def all(self, spec: RunSpec) -> list[str]:
        """Every key of the run but ``state``."""
        return [self.spec, self.meta, self.pool, self.reports, self.done, self.workers,
                self.flow,
                *(self.instance(pe, i) for pe, i in spec.dedicated())]


class _Store:
    """One process's access to a run: commits, reads, errors, with reconnection."""

    def __init__(self, url: str, keys: RunKeys, reconnect_timeout: float,
                 signer: Signer) -> None:
        self.url = url
        self.keys = keys
        self.reconnect_timeout = reconnect_timeout
        self.signer = signer
        self.client = connect(url, reconnect_timeout)
        self._commit = self.client.register_script(_COMMIT)

    def seal(self, payload: bytes, kind: str) -> bytes:
        """``payload`` signed for this run and ``kind`` (``task``, ``report``, ``meta``...)."""
        return self.signer.sign(payload, f"redis:{self.keys.run_id}:{kind}")

    def open(self, data: bytes, kind: str, where: str) -> bytes:
        """The payload of ``data`` read from ``where``, its signature checked.

        Raises
        ------
        SignatureError
            Naming ``where``, the run and what to do.
        """
        try:
            return self.signer.open(data, f"redis:{self.keys.run_id}:{kind}", where)
        except SignatureError as exc:
            raise SignatureError(f"redis run {self.keys.run_id!r}: {exc}") from None

    def load(self, data: bytes, kind: str, where: str) -> Any:
        """Unpickle ``data`` read from ``where`` once its signature is checked."""
        return pickle.loads(self.open(data, kind, where))

    def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a client method; a connection lost for good becomes an EngineError."""
        import redis

        try:
            return function(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise EngineError(
                f"lost the connection to Redis at {_describe_url(self.url)} for more than "
                f"{self.reconnect_timeout:g} s: {exc}"
            ) from exc

    def state(self) -> bytes | None:
        """The run's state (``None`` if the run does not exist)."""
        return self.call(self.client.get, self.keys.state)

    def running(self) -> bool:
        """Whether the run is still running."""
        return self.state() == b"running"

    def commit(self, task_id: str, ack: tuple[str, str, bytes] | None, tasks: list[Ready],
               report: Callable[[], Report]) -> int:
        """Commit a task: 1 if applied, 0 if it was committed before, -1 if the run ended."""
        keys = self.keys
        stream_keys = [keys.state, keys.done, keys.reports, ack[0] if ack else keys.reports]
        arguments: list[Any] = [task_id, ack[1] if ack else "", ack[2] if ack else "", b""]

        def add(index: int, message: Any) -> int:
            data = self.seal(dump_task(message), "task")
            instance = message[2]
            stream_keys.append(keys.pool if instance is None
                               else keys.instance(message[1], instance))
            arguments.append(data)
            return len(data)

        send_tasks(tasks, add)
        arguments[3] = self.seal(dump_report(report(), "R"), "report")
        return int(self.call(self._commit, keys=stream_keys, args=arguments))

    def report_error(self, who: str, exc: BaseException) -> None:
        """Send a worker's failure to the coordinator."""
        data = self.seal(pickle.dumps(("E", who, *failure_message(exc))), "report")
        with contextlib.suppress(EngineError):
            self.call(self.client.xadd, self.keys.reports, {"r": data})


# -- the mapping ---------------------------------------------------------------------------
class RedisMapping(BrokerMapping):
    """Pool workers on any host, sharing the run through Redis streams."""

    name = "redis"
    description = ("workers on any host share the run through Redis streams "
                   "(dare worker --redis URL --run RUN_ID)")
    options = ("redis_url", "local_workers", "batch_size", "queue_depth", "visibility_timeout",
               "run_id", "reconnect_timeout", "start_method", "max_deliveries")

    def coordinator(self, plan: Plan, spec: RunSpec, context: Any, settings: Any,
                    observers: list[Observer]) -> Coordinator:
        """A coordinator of this broker."""
        return _Coordinator(plan, spec, context, settings, observers)

    def prepare(
        self,
        graph: Graph | WorkflowGraph,
        inputs: InputSpec,
        workers: int | None,
        options: dict[str, Any],
    ) -> Prepared:
        """Plan the run through the Redis server at ``redis_url`` (default ``$DARE_REDIS_URL``).

        ``workers`` (default: the number of CPUs) plans the dedicated instances as in
        ``multi`` and is the default of ``local_workers``, the pool workers this process
        starts (0: only workers started with ``dare worker`` serve the pool, which needs
        ``$DARE_QUEUE_SECRET``). A pool task whose worker hangs or dies is taken over after
        ``visibility_timeout`` seconds, and the run fails after ``max_deliveries`` attempts.
        The sources pause while more than ``queue_depth`` (default 32) batches per worker wait.
        """
        visibility_timeout = options.get("visibility_timeout", 5.0)
        max_deliveries = options.get("max_deliveries", DEFAULT_MAX_DELIVERIES)
        if visibility_timeout <= 0:
            raise EngineError(f"visibility_timeout must be > 0, not {visibility_timeout}")
        if int(max_deliveries) < 1:
            raise EngineError(f"max_deliveries must be >= 1, not {max_deliveries}")
        workers, plan, spec = plan_run(graph, inputs, workers,
                                       options.get("batch_size", DEFAULT_BATCH))
        local = local_count(workers, options.get("local_workers"))
        signer = coordinator_signer(spec, local)
        settings = _Settings(options.get("redis_url") or default_url(), local,
                             visibility_timeout, options.get("reconnect_timeout", 30.0),
                             options.get("run_id") or uuid.uuid4().hex[:12], signer,
                             int(max_deliveries),
                             backlog_limit(options.get("queue_depth", DEFAULT_QUEUE_DEPTH),
                                           workers, spec.batch_size))
        placement = {pe: (local if pe in spec.pooled else n) for pe, n in plan.instances.items()}
        return Prepared(plan, instances=placement, state=(spec, settings))


@dataclass(frozen=True)
class _Settings:
    url: str
    local_workers: int
    visibility_timeout: float
    reconnect_timeout: float
    run_id: str
    signer: Signer
    max_deliveries: int = DEFAULT_MAX_DELIVERIES
    #: Tasks waiting or running above which the sources pause (back-pressure).
    backlog_limit: int = 8


@dataclass
class _Coordinator(BrokerCoordinator):
    kind = "redis"

    def _open(self) -> None:
        settings = self.settings
        self.keys = RunKeys(settings.run_id)
        self.created = False
        check_reachable(settings.url)
        self.store = _Store(settings.url, self.keys, settings.reconnect_timeout, settings.signer)
        self._create()
        self.created = True
        signer = settings.signer
        if signer.insecure:
            logger.warning("redis run %s: messages are not signed ($DARE_QUEUE_INSECURE=1): "
                           "whoever can write to %s can run code in this run's processes",
                           settings.run_id, _describe_url(settings.url))
        elif not signer.shared:
            logger.info("redis run %s on %s is signed with a key made for it: only its local "
                        "workers serve it (for 'dare worker' on other hosts, set the same "
                        "$DARE_QUEUE_SECRET on every host)", settings.run_id,
                        _describe_url(settings.url))
        else:
            logger.info("redis run %s on %s (secret from %s, key id %s): join with "
                        "'dare worker --redis %s --run %s'", settings.run_id,
                        _describe_url(settings.url), signer.origin, signer.key_id,
                        _describe_url(settings.url), settings.run_id)
        self._start()
        self.last = b"0-0"
        self.next_claim_check = time.monotonic()

    def _targets(self) -> tuple[Callable[..., None], Callable[..., None]]:
        return _dedicated_main, _pool_main

    @property
    def ttl(self) -> int:
        """Seconds the ``running`` state lives unless the coordinator refreshes it."""
        return int(self.settings.reconnect_timeout) + 30

    def _create(self) -> None:
        store, keys, spec = self.store, self.keys, self.spec
        client = store.client
        if store.call(client.exists, keys.state):
            raise EngineError(f"redis run {self.settings.run_id!r} exists already: "
                              "choose another run_id")
        shared = shareable(spec, self.settings.run_id)
        pipe = client.pipeline(transaction=True)
        meta = {"modules": modules_of(spec),
                "visibility_timeout": self.settings.visibility_timeout,
                "max_deliveries": self.settings.max_deliveries}
        pipe.set(keys.meta, store.seal(pickle.dumps(meta), "meta"))
        pipe.set(keys.spec, store.seal(shared, "spec"))
        pipe.set(keys.workers, len(spec.dedicated()))
        pipe.xgroup_create(keys.pool, "pool", id="0", mkstream=True)
        for pe, i in spec.dedicated():
            if pe not in self.plan.iterations:
                pipe.xgroup_create(keys.instance(pe, i), "inst", id="0", mkstream=True)
        pipe.set(keys.state, "running", ex=self.ttl)
        pipe.sadd(RUNS_KEY, self.settings.run_id)
        store.call(pipe.execute)

    def _read(self, timeout: float) -> None:
        """Handle the reports that arrive within ``timeout`` seconds."""
        store = self.store
        response = store.call(store.client.xread, {self.keys.reports: self.last}, count=512,
                              block=int(timeout * 1000))
        for _, entries in response or ():
            for entry_id, fields in entries:
                self.last = entry_id
                self._handle(store.load(fields[b"r"], "report",
                                        f"stream {self.keys.reports}"))

    def _handle(self, message: tuple[Any, ...]) -> None:
        if message[0] == "R":
            self.ledger.apply(message[1])
        elif message[0] == "E":
            raise_failure(*message[1:])
        else:  # pragma: no cover - a protocol error is a bug
            raise EngineError(f"unexpected message in the reports stream: {message!r}")

    def _publish_flow(self, paused: bool, counted: dict[str, int]) -> None:
        self.store.call(self.store.client.hset, self.keys.flow,
                        mapping={"paused": int(paused), **counted})

    def _send_markers(self) -> None:
        for (pe, instance), count in self.ledger.advance():
            assert instance is not None
            self.store.call(self.store.client.xadd, self.keys.instance(pe, instance),
                            {"eos": self.store.seal(str(count).encode(), "eos")})

    def _check(self) -> None:
        """The run must still exist; then as :meth:`BrokerCoordinator._check`.

        A dead pool worker's pending task is claimed by another after the visibility timeout.
        """
        store = self.store
        if not store.call(store.client.expire, self.keys.state, self.ttl) or (
            store.state() != b"running"
        ):
            raise EngineError(
                f"redis run {self.settings.run_id!r} vanished from "
                f"{_describe_url(self.settings.url)} (was the server restarted without "
                "persistence?)"
            )
        now = time.monotonic()
        if self.spec.pooled and now >= self.next_claim_check:
            self.next_claim_check = now + min(1.0, self.settings.visibility_timeout / 2)
            self._check_deliveries()
        super()._check()

    def _check_deliveries(self) -> None:
        """Fail the run if a pool task's last allowed delivery is stuck too.

        Workers refuse a task claimed once too often (:func:`serve_run`), but when every pool
        worker hangs on it, none is left to claim it: the coordinator looks itself.
        """
        store, settings = self.store, self.settings
        stuck = store.call(store.client.xpending_range, self.keys.pool, "pool", min="-",
                           max="+", count=100, idle=int(settings.visibility_timeout * 1000))
        for entry in stuck or ():
            if entry["times_delivered"] >= settings.max_deliveries:
                raise EngineError(_exhausted(store, entry["message_id"],
                                             entry["times_delivered"], settings.max_deliveries,
                                             settings.visibility_timeout))

    def _close_run(self, status: str) -> None:
        with contextlib.suppress(Exception):
            if not self.created:
                raise EngineError("nothing to clean: the run was not created")
            keys = self.keys
            pipe = self.store.client.pipeline(transaction=True)
            pipe.set(keys.state, status, ex=STATE_TTL)
            pipe.delete(*keys.all(self.spec))
            pipe.srem(RUNS_KEY, self.settings.run_id)
            pipe.execute()

    def _close(self) -> None:
        with contextlib.suppress(Exception):
            self.store.client.close()

    def record(self) -> dict[str, Any]:
        """Who served the run (for ``RunSummary.scaling``)."""
        return {"redis": _describe_url(self.settings.url), **super().record()}


# -- worker processes -----------------------------------------------------------------------
def _dedicated_main(number: int, key: tuple[str, int], spec: RunSpec,
                    iterations: Sequence[Any] | None, settings: _Settings) -> None:
    store = _Store(settings.url, RunKeys(settings.run_id), settings.reconnect_timeout,
                   settings.signer)
    in_worker_process(f"{key[0]}[{key[1]}]",
                      lambda: _run_dedicated(store, number, key, spec, iterations,
                                             settings.backlog_limit),
                      store.report_error)


def _run_dedicated(store: _Store, number: int, key: tuple[str, int], spec: RunSpec,
                   iterations: Sequence[Any] | None, limit: int = 0) -> None:
    with TaskWorker(spec, number) as worker:  # tears the instance down, also on failure
        _serve_dedicated(store, worker, key, iterations, limit)


def _pace(store: _Store, key: tuple[str, int], limit: int) -> Pace | None:
    """The pace of source ``key``, from the flow the coordinator keeps in a hash."""
    if limit <= 0:
        return None
    label = f"{key[0]}[{key[1]}]"

    def flow() -> tuple[bool, dict[str, int]]:
        paused, counted = store.call(store.client.hmget, store.keys.flow, ["paused", label])
        return paused == b"1", {label: int(counted or 0)}

    return pace_of(label, limit, flow)


def _serve_dedicated(store: _Store, worker: TaskWorker, key: tuple[str, int],
                     iterations: Sequence[Any] | None, limit: int = 0) -> None:
    pe_id, instance = key
    if iterations is not None:
        run_source(worker, key, iterations,
                   lambda task_id, tasks, report: store.commit(task_id, None, tasks, report),
                   _pace(store, key, limit))
        return
    tag = f"{pe_id}:{instance}"
    stream = store.keys.instance(pe_id, instance)
    client = store.client
    worker.runner(pe_id, instance)  # set up before the first unit, even if none comes
    expected: int | None = None
    processed = 0
    pending = True  # first look at entries delivered to us before (replies lost)
    while expected is None or processed < expected:
        start = "0" if pending else ">"
        response = store.call(client.xreadgroup, "inst", "owner", {stream: start},
                              count=256, block=None if pending else BLOCK_MS)
        entries = response[0][1] if response else []
        if not entries:
            if not pending and not store.running():
                return
            pending = not pending
            continue
        for entry_id, fields in entries:
            if b"eos" in fields:
                expected = int(store.open(fields[b"eos"], "eos", f"stream {stream}"))
                store.call(client.xack, stream, "inst", entry_id)
                continue
            tasks, report = worker.process(store.load(fields[b"t"], "task", f"stream {stream}"))
            if store.commit(f"i:{tag}:{entry_id.decode()}", (stream, "inst", entry_id),
                            tasks, report) < 0:
                return
            processed += 1
    tasks, report = worker.flush(key)
    store.commit(f"f:{tag}", None, tasks, report)


def _pool_main(spec: RunSpec, settings: _Settings) -> None:
    detach_signals()
    store = _Store(settings.url, RunKeys(settings.run_id), settings.reconnect_timeout,
                   settings.signer)
    if not serve_run(store, spec, settings.visibility_timeout, settings.max_deliveries):
        sys.exit(1)


def _exhausted(store: _Store, entry_id: bytes | str, deliveries: int, limit: int,
               visibility_timeout: float) -> str:
    """The error for a pool task delivered ``deliveries`` times without a commit."""
    entry = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    what = f"pool task {entry}"
    with contextlib.suppress(Exception):
        found = store.call(store.client.xrange, store.keys.pool, entry, entry, count=1)
        message = store.load(found[0][1][b"t"], "task", f"stream {store.keys.pool}")
        _, pe, instance, _, sender, seqs, _ = message
        where = f"{pe}[{instance}]" if instance is not None else f"{pe} (pool)"
        units = (f"{sender}#{seqs[0]}" if len(seqs) == 1
                 else f"{sender}#{seqs[0]}..{sender}#{seqs[-1]}")
        what = f"PE {where}, units {units} (pool task {entry})"
    return (f"{what} was delivered {deliveries} times and no attempt finished within "
            f"visibility_timeout={visibility_timeout:g} s (each worker hung or died on it); "
            f"the run stops rather than run it again (max_deliveries={limit}): fix the PE, "
            "or raise visibility_timeout if it is only slow")


def _claim(store: _Store, consumer: str, min_idle: int, limit: int,
           visibility_timeout: float) -> list[Any]:
    """Claim at most one pool task pending for ``min_idle`` ms on another worker.

    Raises
    ------
    EngineError
        If the task was delivered more than ``limit`` times (it is not run again).
    """
    keys, client = store.keys, store.client
    claimed = store.call(client.xautoclaim, keys.pool, "pool", consumer, min_idle, "0-0",
                         count=1)
    entries = [entry for entry in claimed[1] if entry and entry[1]]
    for entry_id, _ in entries:
        found = store.call(client.xpending_range, keys.pool, "pool", min=entry_id,
                           max=entry_id, count=1)
        deliveries = found[0]["times_delivered"] if found else 1
        if deliveries > limit:
            raise EngineError(_exhausted(store, entry_id, deliveries - 1, limit,
                                         visibility_timeout))
    return entries


def serve_run(store: _Store, spec: RunSpec, visibility_timeout: float,
              max_deliveries: int = DEFAULT_MAX_DELIVERIES,
              stop: Callable[[], bool] = lambda: False) -> bool:
    """Serve the pool of one run until it ends; ``False`` if a task failed here."""
    keys, client = store.keys, store.client
    number = int(store.call(client.incr, keys.workers))
    consumer = f"{socket.gethostname()}:{os.getpid()}:{number}"
    with TaskWorker(spec, number) as worker:  # tears the pool's instances down at the end
        return _serve_pool(store, worker, consumer, visibility_timeout, max_deliveries, stop)


def _serve_pool(store: _Store, worker: TaskWorker, consumer: str, visibility_timeout: float,
                max_deliveries: int, stop: Callable[[], bool]) -> bool:
    keys, client, number = store.keys, store.client, worker.number
    claim_every = min(1.0, visibility_timeout / 2)
    min_idle = int(visibility_timeout * 1000)
    block = max(10, min(BLOCK_MS, int(claim_every * 1000)))  # wake up in time to claim
    next_claim = time.monotonic() + claim_every
    try:
        while not stop():
            entries: list[Any] = []
            if time.monotonic() >= next_claim:
                next_claim = time.monotonic() + claim_every
                entries = _claim(store, consumer, min_idle, max_deliveries, visibility_timeout)
            if not entries:
                response = store.call(client.xreadgroup, "pool", consumer, {keys.pool: ">"},
                                      count=1, block=block)
                entries = response[0][1] if response else []
            if not entries:
                if not store.running():
                    return True
                continue
            for entry_id, fields in entries:
                task = store.load(fields[b"t"], "task", f"stream {keys.pool}")
                tasks, report = worker.process(task)
                result = store.commit(f"p:{entry_id.decode()}", (keys.pool, "pool", entry_id),
                                      tasks, report)
                if result < 0:
                    return True
    except PEError as exc:
        store.report_error(f"pool worker {number} ({consumer})", exc)
        return False
    except Exception as exc:
        import redis

        if isinstance(exc, redis.ResponseError) and not store.running():
            return True  # the run ended and its streams were removed under us
        store.report_error(f"pool worker {number} ({consumer})", exc)
        return False
    return True


def serve(url: str | None = None, run_id: str | None = None, *, once: bool = False,
          wait: float | None = None, visibility_timeout: float | None = None,
          reconnect_timeout: float = 30.0, poll: float = 0.5,
          signer: Signer | None = None) -> int:
    """Serve the pool of run ``run_id`` (or of every run that appears); return runs served.

    This is what ``dare worker`` runs. With ``run_id`` it waits for that run to start (at
    most ``wait`` seconds, if given), serves it and returns. Without, it serves runs as they
    are announced, one at a time, until interrupted (or after one with ``once``), skipping
    runs signed with another secret. ``visibility_timeout`` defaults to the run's own (an
    option of the mapping); ``signer`` to :meth:`Signer.for_worker` (``$DARE_QUEUE_SECRET``).

    Raises
    ------
    EngineError
        If there is no secret, Redis does not answer within a few seconds, the run does not
        appear in time, its graph cannot be loaded here (or is not signed with this host's
        secret), or Redis stays unreachable for more than ``reconnect_timeout`` seconds.
    """
    import redis

    url = url or default_url()
    signer = signer or Signer.for_worker()
    check_reachable(url)
    try:
        return _serve(url, run_id, once, wait, visibility_timeout, reconnect_timeout, poll,
                      signer)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise EngineError(f"lost the connection to Redis at {_describe_url(url)}: {exc}") from exc


def _serve(url: str, run_id: str | None, once: bool, wait: float | None,
           visibility_timeout: float | None, reconnect_timeout: float, poll: float,
           signer: Signer) -> int:
    client = connect(url, reconnect_timeout)
    deadline = None if wait is None else time.monotonic() + wait
    served = 0
    failed = False
    skipped: set[str] = set()
    while True:
        current = run_id or _next_run(client, skipped)
        state = client.get(RunKeys(current).state) if current else None
        if current is None or state is None:
            if deadline is not None and time.monotonic() > deadline:
                what = f"run {run_id!r}" if run_id else "a run"
                raise EngineError(f"no {what} appeared on {_describe_url(url)} within {wait:g} s")
            time.sleep(poll)  # nothing to serve yet: look again
            continue
        if state == b"running":
            store = _Store(url, RunKeys(current), reconnect_timeout, signer)
            try:
                spec, options = _load_spec(store)
            except SignatureError as exc:
                if run_id is None:  # another deployment's run (or one for local workers)
                    logger.warning("skipping %s", exc)
                    skipped.add(current)
                    continue
                store.report_error(f"worker on {socket.gethostname()} (pid {os.getpid()})", exc)
                raise
            except Exception as exc:  # the run cannot be served as configured: say so there
                store.report_error(f"worker on {socket.gethostname()} (pid {os.getpid()})", exc)
                raise
            logger.info("serving redis run %s", current)
            timeout = visibility_timeout or options["visibility_timeout"]
            failed = not serve_run(store, spec, timeout, options.get(
                "max_deliveries", DEFAULT_MAX_DELIVERIES)) or failed
            served += 1
        if run_id is not None or once:
            break
        deadline = None if wait is None else time.monotonic() + wait
        _wait_until_gone(client, current, poll)
    if failed:
        raise EngineError("a task failed on this worker (the run reports the error)")
    return served


def _next_run(client: Any, skipped: set[str]) -> str | None:
    members = sorted(client.smembers(RUNS_KEY))
    for member in members:
        run = member.decode()
        if run not in skipped and client.get(RunKeys(run).state) == b"running":
            return run
    return None


def _wait_until_gone(client: Any, run: str, poll: float) -> None:
    while client.get(RunKeys(run).state) == b"running":
        time.sleep(poll)


def _load_spec(store: _Store) -> tuple[RunSpec, dict[str, Any]]:
    keys = store.keys
    meta, shared = store.call(store.client.mget, keys.meta, keys.spec)
    if not meta:
        return load_spec(f"redis run {keys.run_id!r}", [], None), {}
    options = store.load(meta, "meta", f"key {keys.meta}")
    graph = store.open(shared or b"", "spec", f"key {keys.spec}")
    return load_spec(f"redis run {keys.run_id!r}", options["modules"], graph), options
