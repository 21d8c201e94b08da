"""The ``redis`` mapping against a real redis-server: exactly-once commits, dead workers,
remote workers started with ``dare worker``, and a Redis restart in the middle of a run."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
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
from polling import poll_until, wait_until
from queue_cases import FLOW, squares_graph
from redis_server import RedisServer, redis_server

from engine import IterativePE, ProducerPE, WorkflowGraph
from engine.errors import EngineError
from engine.mappings.redis_queue import RedisMapping, RunKeys, _Store
from engine.mappings.tasks import RunSpec
from engine.observe import Observer
from engine.partition import build_plan
from engine.signing import Signer
from engine.testing import Collect, ListSource

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
#: The deployment's secret of the tests that start ``dare worker`` (never in argv).
SECRET = "test-secret-" + "0123456789abcdef" * 2
WITH_SECRET = {**os.environ, "DARE_QUEUE_SECRET": SECRET}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis")) as running:
        yield running


def test_outputs_fan_out_and_stateful_once(server):
    items = list(range(300))
    result = RedisMapping().run(squares_graph(items), workers=2, redis_url=server.url,
                                batch_size=16)
    assert sorted(result.output("Collect")) == [i * i for i in items]
    assert result.output("Total") == [(0, sum(i * i for i in items), 1)]
    assert result.summary.pes["Square"].units_in == len(items)
    assert result.summary.scaling["pool_workers_used"] >= 1  # type: ignore[attr-defined]


def test_run_keys_are_removed_and_state_kept(server):
    run_id = f"t-{uuid.uuid4().hex[:8]}"
    RedisMapping().run(squares_graph([1, 2]), workers=1, redis_url=server.url, run_id=run_id)
    store = _Store(server.url, RunKeys(run_id), 5, Signer.generated())
    assert store.state() == b"done"
    assert store.client.keys(f"dare:{{{run_id}}}:*") == [RunKeys(run_id).state.encode()]
    with pytest.raises(EngineError, match="exists already"):
        RedisMapping().run(squares_graph([1]), workers=1, redis_url=server.url, run_id=run_id)


def test_a_commit_applies_once(server):
    """The commit script: a task id seen before changes nothing (a retry, or a re-run task)."""
    plan = build_plan(squares_graph([1]), None, workers=1)
    spec = RunSpec.from_plan(plan, 8)
    keys = RunKeys(f"t-{uuid.uuid4().hex[:8]}")
    store = _Store(server.url, keys, 5, Signer.generated())
    client = store.client
    client.set(keys.state, "running")
    client.xgroup_create(keys.pool, "pool", id="0", mkstream=True)
    entry = client.xadd(keys.pool, {"t": b"x"})
    client.xreadgroup("pool", "me", {keys.pool: ">"})
    counters = [0, 0, 0, 0.0]
    task = ("T", "Collect", None, "input", "Square[3]", range(1, 3), [1, 4])

    def report() -> tuple[Any, ...]:
        return (("Square", None), {("Collect", None): 1}, {}, [], {}, None)

    assert store.commit("p:1", (keys.pool, "pool", entry), [(counters, task)], report) == 1
    assert store.commit("p:1", (keys.pool, "pool", entry), [(counters, task)], report) == 0
    assert client.xlen(keys.reports) == 1
    assert client.xlen(keys.pool) == 1  # the new task; the committed one was deleted
    assert client.xpending(keys.pool, "pool")["pending"] == 0
    client.set(keys.state, "done")
    assert store.commit("p:2", None, [], report) == -1
    client.delete(*keys.all(spec), keys.state)


class SlowFirstAttempt(IterativePE):
    """Squares; the first attempt at unit 0 (in any process) takes ``delay`` seconds.

    Every attempt is logged as ``pid unit`` in ``log``.
    """

    def __init__(self, folder: str, delay: float) -> None:
        super().__init__()
        self.folder = folder
        self.delay = delay

    def apply(self, data: int) -> int:
        folder = Path(self.folder)
        with open(folder / "attempts", "a") as log:
            log.write(f"{os.getpid()} {data}\n")
        if data == 0:
            try:
                os.close(os.open(folder / "first", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                time.sleep(self.delay)  # a slow worker: its task is taken over meanwhile
        return data * data


class Ticker(ProducerPE):
    """Emit the iteration number; later iterations come every ``period`` seconds."""

    def __init__(self, period: float) -> None:
        super().__init__()
        self.period = period

    def produce(self, iteration: int) -> int:
        if iteration:
            time.sleep(self.period)
        return iteration


def test_a_task_run_twice_commits_once(server, tmp_path):
    graph = WorkflowGraph()
    source, slow, sink = Ticker(0.2), SlowFirstAttempt(str(tmp_path), 0.8), Collect()
    graph.connect(source, "output", slow, "input")
    graph.connect(slow, "output", sink, "input")
    result = RedisMapping().run(graph, {source: 8}, workers=2, redis_url=server.url,
                                batch_size=1, visibility_timeout=0.2)
    assert sorted(result.output("Collect")) == [i * i for i in range(8)]
    attempts = [line.split() for line in (tmp_path / "attempts").read_text().splitlines()]
    zero = [pid for pid, unit in attempts if unit == "0"]
    assert len(zero) == 2 and len(set(zero)) == 2, "unit 0 was not taken over"
    assert result.summary.pes["SlowFirstAttempt"].units_in == 8  # counted once


class Progress(Observer):
    """Sets ``halfway`` once some instance has processed ``mark`` units."""

    def __init__(self, pe: str, mark: int) -> None:
        self.pe, self.mark = pe, mark
        self.halfway = threading.Event()
        self.seen: list[tuple[float, int]] = []

    def progress(self, pe_id: str, instance: int, units_in: int, units_out: int) -> None:
        if pe_id == self.pe:
            self.seen.append((time.monotonic(), units_in))
            if units_in >= self.mark:
                self.halfway.set()


class Work(IterativePE):
    def apply(self, data: int) -> int:
        time.sleep(0.002)  # the work of one unit
        return data * data


@pytest.mark.slow
def test_redis_restart_with_persistence_mid_run(tmp_path):
    items = list(range(1000))
    server = RedisServer(tmp_path / "redis", persistent=True)
    server.start()
    progress = Progress("Total", 100)
    restarted: list[float] = []

    def restart() -> None:
        if progress.halfway.wait(timeout=30):
            server.restart()
            restarted.append(time.monotonic())

    thread = threading.Thread(target=restart)
    thread.start()
    try:
        result = RedisMapping().run(squares_graph(items, work=Work()), workers=2,
                                    redis_url=server.url, batch_size=10,
                                    observers=[progress])
    finally:
        thread.join(timeout=30)
        server.stop()
    assert restarted, "redis-server was not restarted"
    assert sorted(result.output("Collect")) == [i * i for i in items]
    assert result.output("Total") == [(0, sum(i * i for i in items), 1)]
    before = max(units for moment, units in progress.seen if moment < restarted[0])
    assert before < len(items), "the run had finished before the restart"


# -- remote workers: `dare worker` subprocesses ------------------------------------------------


COORDINATOR = textwrap.dedent(
    """
    import json, sys
    from dare_cli.loading import import_user_module
    from engine.mappings.redis_queue import RedisMapping

    flow_file, url, run_id, folder, stick, visibility = sys.argv[1:]
    flow = import_user_module(flow_file)
    graph = flow.make_graph(list(range(60)), folder, stick == "1")
    result = RedisMapping().run(graph, workers=2, redis_url=url, run_id=run_id,
                                local_workers=0, batch_size=4,
                                visibility_timeout=float(visibility))
    workers = sorted({s.worker for s in result.summary.instances if s.pe_id == "Cube"})
    print(json.dumps({"collect": result.output("Collect"), "sum": result.output("Sum"),
                      "cube_units": result.summary.pes["Cube"].units_in,
                      "cube_workers": workers}))
    """
)


def dare_worker(url: str, run_id: str) -> list[str]:
    """The command line of ``dare worker --redis URL --run RUN_ID`` in this interpreter."""
    from dare_cli.main import app

    registered = any(getattr(group.typer_instance, "registered_commands", None)
                     and any(c.name == "worker" for c in group.typer_instance.registered_commands)
                     for group in app.registered_groups)
    if registered:
        prefix = [sys.executable, "-m", "dare_cli"]
    else:  # until dare_cli/main.py adds the command group
        prefix = [sys.executable, "-c",
                  "from dare_cli.main import app; from dare_cli.commands import worker; "
                  "app.add_typer(worker.app); app()"]
    return [*prefix, "-q", "worker", "--redis", url, "--run", run_id]


def start(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=WITH_SECRET if env is None else env)


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=10)


@pytest.fixture
def flow_file(tmp_path: Path) -> Path:
    path = tmp_path / "flow_remote.py"
    path.write_text(FLOW)
    return path


def coordinator(flow_file: Path, url: str, run_id: str, folder: Path, stick: bool,
                visibility: float) -> subprocess.Popen[str]:
    script = folder / "coordinator.py"
    script.write_text(COORDINATOR)
    return start([sys.executable, str(script), str(flow_file), url, run_id, str(folder),
                  "1" if stick else "0", str(visibility)])


def test_dare_worker_joins_a_run_from_a_module_loaded_by_path(server, flow_file, tmp_path):
    run_id = f"remote-{uuid.uuid4().hex[:8]}"
    worker = start(dare_worker(server.url, run_id))  # waits for the run to appear
    coordinating = coordinator(flow_file, server.url, run_id, tmp_path, False, 5.0)
    try:
        out, err = coordinating.communicate(timeout=60)
        assert coordinating.returncode == 0, err
        _, worker_err = worker.communicate(timeout=20)
        assert worker.returncode == 0, worker_err
    finally:
        stop(coordinating)
        stop(worker)
    data = json.loads(out)
    assert sorted(data["collect"]) == [i**3 for i in range(60)]
    assert data["sum"] == [sum(i**3 for i in range(60))]
    assert data["cube_units"] == 60
    assert len(data["cube_workers"]) == 1  # local_workers=0: the remote worker did it all


@pytest.mark.slow
def test_killing_a_worker_mid_task_loses_nothing(server, flow_file, tmp_path):
    run_id = f"kill-{uuid.uuid4().hex[:8]}"
    workers = [start(dare_worker(server.url, run_id)) for _ in range(2)]
    coordinating = coordinator(flow_file, server.url, run_id, tmp_path, True, 1.0)
    try:
        stuck = tmp_path / "stuck"
        def reached() -> bool:  # the first worker to reach unit 0 hangs there
            assert coordinating.poll() is None, coordinating.communicate()[1]
            return stuck.exists()

        wait_until(reached, 30, "a worker to reach unit 0")
        victim = int(stuck.read_text())
        assert victim in {w.pid for w in workers}
        os.kill(victim, signal.SIGKILL)
        out, err = coordinating.communicate(timeout=60)
        assert coordinating.returncode == 0, err
        for process in workers:
            process.communicate(timeout=20)
    finally:
        stop(coordinating)
        for process in workers:
            stop(process)
    codes = sorted(process.returncode for process in workers)
    assert codes == [-signal.SIGKILL, 0]
    data = json.loads(out)
    assert sorted(data["collect"]) == [i**3 for i in range(60)]
    assert data["sum"] == [sum(i**3 for i in range(60))]
    assert data["cube_units"] == 60


def test_dare_worker_gives_up_when_no_run_appears(server):
    completed = subprocess.run([*dare_worker(server.url, "never-started"), "--wait", "0.3"],
                               cwd=ROOT, capture_output=True, text=True, timeout=30,
                               env=WITH_SECRET)
    assert completed.returncode == 1
    assert "no run 'never-started' appeared on redis://127.0.0.1:" in completed.stderr


def test_a_pe_error_names_the_unit(server):
    class Fail(IterativePE):
        def apply(self, data: int) -> int:
            if data == 7:
                raise ValueError("bad seven")
            return data

    graph = WorkflowGraph()
    graph.connect(ListSource(range(20)), "output", Fail(), "input")
    with pytest.raises(Exception) as caught:
        RedisMapping().run(graph, workers=2, redis_url=server.url, batch_size=4)
    error = caught.value
    assert type(error).__name__ == "PEError"
    assert error.unit_id == "ListSource[0]#8"  # type: ignore[attr-defined]
    assert "ValueError: bad seven" in str(error)
    assert pickle.loads(pickle.dumps(error)).unit_id == "ListSource[0]#8"


# -- signed messages ---------------------------------------------------------------------------
class Evil:
    """A pickle whose loading runs a shell command: what an intruder would push."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.path}",))


def test_a_worker_refuses_an_unsigned_graph_before_unpickling_it(server, tmp_path):
    """The old injection: no secret, a crafted pickle as a run's meta; no code runs."""
    import redis

    run_id = f"evil-{uuid.uuid4().hex[:8]}"
    worker = start(dare_worker(server.url, run_id))
    keys = RunKeys(run_id)
    client = redis.Redis.from_url(server.url)
    marker = tmp_path / "pwned"
    client.set(keys.meta, pickle.dumps(Evil(marker)))
    client.set(keys.spec, pickle.dumps(Evil(marker)))
    client.set(keys.state, "running", ex=60)
    try:
        _, err = worker.communicate(timeout=30)
    finally:
        stop(worker)
        client.delete(keys.meta, keys.spec, keys.state, keys.reports)
    assert worker.returncode == 1
    assert not marker.exists()
    assert f"refused an unsigned message on key dare:{{{run_id}}}:meta" in err
    assert "DARE_QUEUE_SECRET" in err and "Traceback" not in err


class Tick(ProducerPE):
    """Emit the iteration number, one every ``period`` seconds."""

    def __init__(self, period: float) -> None:
        super().__init__()
        self.period = period

    def produce(self, iteration: int) -> int:
        time.sleep(self.period)
        return iteration


def test_a_run_refuses_an_unsigned_task_and_fails_clearly(server, tmp_path):
    """A crafted pickle pushed onto a running run's pool stream ends the run; no code runs."""
    import redis

    run_id = f"evil-{uuid.uuid4().hex[:8]}"
    keys = RunKeys(run_id)
    marker = tmp_path / "pwned"
    client = redis.Redis.from_url(server.url)

    def inject() -> None:
        poll_until(lambda: client.get(keys.state) == b"running", 20)
        client.xadd(keys.pool, {"t": pickle.dumps(Evil(marker))})

    graph = WorkflowGraph()
    graph.connect(Tick(0.1), "output", Work(), "input")
    thread = threading.Thread(target=inject)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(EngineError) as caught:
            RedisMapping().run(graph, {"Tick": 300}, workers=2, redis_url=server.url,
                               run_id=run_id, batch_size=1)
    finally:
        thread.join(timeout=30)
    # 30 s of ticks: a run that went on after the injection would take them all
    assert time.monotonic() - started < 20, "the run went on after the injection"
    assert not marker.exists()
    assert f"refused an unsigned message on stream dare:{{{run_id}}}:pool" in str(caught.value)


def test_a_worker_with_another_secret_is_refused_both_ways(server, tmp_path, monkeypatch):
    run_id = f"other-{uuid.uuid4().hex[:8]}"
    worker = start(dare_worker(server.url, run_id),
                   env={**os.environ, "DARE_QUEUE_SECRET": "another-" + "9" * 32})
    monkeypatch.setenv("DARE_QUEUE_SECRET", SECRET)
    try:
        with pytest.raises(EngineError, match=r"reports signed with another secret \(key id"):
            RedisMapping().run(squares_graph(list(range(20))), workers=1, local_workers=0,
                               redis_url=server.url, run_id=run_id)
        _, err = worker.communicate(timeout=30)
    finally:
        stop(worker)
    assert worker.returncode == 1
    assert f"on key dare:{{{run_id}}}:meta signed with another secret" in err


def test_a_secret_gives_the_outputs_of_the_simple_mapping(server, monkeypatch):
    from engine.mappings.simple import SimpleMapping

    monkeypatch.setenv("DARE_QUEUE_SECRET", SECRET)
    items = list(range(100))
    expected = SimpleMapping().run(squares_graph(items))
    result = RedisMapping().run(squares_graph(items), workers=2, redis_url=server.url,
                                batch_size=8)
    assert sorted(result.output("Collect")) == sorted(expected.output("Collect"))
    assert result.output("Total") == expected.output("Total")


class Spy(Observer):
    """Reads the command lines of this process's children once the run has started."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def progress(self, pe_id: str, instance: int, units_in: int, units_out: int) -> None:
        if self.lines:
            return
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == os.getpid():
                    self.lines.append((stat.parent / "cmdline").read_bytes())


@pytest.mark.parametrize("secret", [True, False], ids=["secret", "per-run-key"])
def test_the_secret_is_not_in_the_argv_of_spawned_workers(server, monkeypatch, secret):
    from engine.mappings import redis_queue

    made: list[Signer] = []
    if secret:
        monkeypatch.setenv("DARE_QUEUE_SECRET", SECRET)
    else:
        monkeypatch.delenv("DARE_QUEUE_SECRET", raising=False)
        original = Signer.generated

        def generated() -> Signer:
            made.append(original())
            return made[-1]

        monkeypatch.setattr(redis_queue.Signer, "generated", staticmethod(generated))
    spy = Spy()
    graph = WorkflowGraph()
    graph.connect(Tick(0.05), "output", Work(), "input")
    RedisMapping().run(graph, {"Tick": 20}, workers=2, redis_url=server.url,
                       start_method="spawn", observers=[spy])
    assert spy.lines, "no child process seen"
    key = SECRET.encode() if secret else made[0].key
    assert key is not None
    for line in spy.lines:
        assert key not in line and key.hex().encode() not in line


# -- failing fast, and tasks that never finish --------------------------------------------------
def test_no_server_is_a_clear_error_within_seconds():
    from redis_server import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    with pytest.raises(EngineError, match=rf"cannot reach Redis at {url} .*DARE_REDIS_URL"):
        RedisMapping().run(squares_graph([1]), workers=1, redis_url=url)
    assert time.monotonic() - started < 15  # an error, never a hang (generous: no benchmark)
    completed = subprocess.run([*dare_worker(url, "r"), "--wait", "0"], cwd=ROOT,
                               capture_output=True, text=True, timeout=30, env=WITH_SECRET)
    assert completed.returncode == 1 and f"cannot reach Redis at {url}" in completed.stderr


def test_dare_worker_needs_a_secret(server):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DARE_QUEUE_")}
    completed = subprocess.run([*dare_worker(server.url, "r"), "--wait", "0"], cwd=ROOT,
                               capture_output=True, text=True, timeout=30, env=env)
    assert completed.returncode == 1
    assert "needs the deployment's queue secret" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_a_password_protected_server(tmp_path):
    from redis_server import free_port

    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--requirepass", "pass word", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"redis://:pass%20word@127.0.0.1:{port}/0"
        result = _run_once_up(redis_url=url)
        assert sorted(result.output("Collect")) == [1, 4, 9]
        with pytest.raises(EngineError, match=f"127.0.0.1:{port}/0 refused") as caught:
            RedisMapping().run(squares_graph([1]), workers=1,
                               redis_url=f"redis://:wrong@127.0.0.1:{port}/0")
        assert "wrong" not in str(caught.value)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _run_once_up(**options: Any) -> Any:
    """Run squares of 1, 2, 3 on the redis mapping, retrying while the server starts (10 s)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return RedisMapping().run(squares_graph([1, 2, 3]), workers=1, **options)
        except EngineError as exc:
            if "cannot reach" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # still starting


class Hang(IterativePE):
    """Squares; every attempt at unit 0 is logged in ``folder/attempts``, then hangs."""

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder

    def apply(self, data: int) -> int:
        if data == 0:
            with open(Path(self.folder) / "attempts", "a") as log:
                log.write(f"{os.getpid()}\n")
            time.sleep(120)
        return data * data


def test_a_task_that_hangs_fails_the_run_after_max_deliveries(server, tmp_path):
    graph = WorkflowGraph()
    graph.connect(ListSource(range(6)), "output", Hang(str(tmp_path)), "input")
    started = time.monotonic()
    with pytest.raises(EngineError) as caught:
        RedisMapping().run(graph, workers=3, redis_url=server.url, batch_size=1,
                           visibility_timeout=0.5, max_deliveries=2)
    assert time.monotonic() - started < 30  # an error, never a hang (generous: no benchmark)
    message = str(caught.value)
    assert "PE Hang (pool), units ListSource[0]#1" in message
    assert "delivered 2 times" in message and "max_deliveries=2" in message
    attempts = (tmp_path / "attempts").read_text().split()
    assert len(attempts) == 2 and len(set(attempts)) == 2  # two workers, then no more


def test_max_deliveries_must_be_positive(server):
    with pytest.raises(EngineError, match="max_deliveries must be >= 1"):
        RedisMapping().run(squares_graph([1]), redis_url=server.url, max_deliveries=0)


def _certificates(folder: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, in ``folder``."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "1", "-subj", "/CN=dare-test-ca")
    (folder / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", "/CN=127.0.0.1")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "1", "-extfile", "ext")


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl")
def test_tls_with_client_certificates_and_a_password(tmp_path, monkeypatch):
    """rediss:// URLs as documented, passed through $DARE_REDIS_URL (out of argv)."""
    from redis_server import free_port

    _certificates(tmp_path)
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", "server.pem", "--tls-key-file", "server.key",
         "--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "yes", "--requirepass", "pw",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = (f"rediss://:pw@127.0.0.1:{port}/0?ssl_ca_certs={tmp_path}/ca.pem"
               f"&ssl_certfile={tmp_path}/client.pem&ssl_keyfile={tmp_path}/client.key")
        monkeypatch.setenv("DARE_REDIS_URL", url)
        result = _run_once_up()
        assert sorted(result.output("Collect")) == [1, 4, 9]
        plain = f"redis://:pw@127.0.0.1:{port}/0"  # no TLS: the server hangs up
        with pytest.raises(EngineError, match=f"cannot reach Redis at redis://127.0.0.1:{port}"):
            RedisMapping().run(squares_graph([1]), workers=1, redis_url=plain)
    finally:
        process.terminate()
        process.wait(timeout=10)
