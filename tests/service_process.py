"""A server process for tests (``redis-server``, a Kafka broker): a free port, start-wait-stop.

Subclasses start the process (:meth:`ServiceProcess.start`) and wait for it to answer with
:meth:`ServiceProcess.wait_ready`.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

__all__ = ["ServiceProcess", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServiceProcess:
    """One server process listening on 127.0.0.1.

    Parameters
    ----------
    directory
        Working directory of the server (its log, its data).
    port
        Port to listen on (default: a free one).
    """

    #: Names the server in errors.
    name = "server"
    #: The server's log file, in ``directory``.
    log_name = "server.log"

    def __init__(self, directory: Path, *, port: int | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and return once it answers (``RuntimeError`` if it does not)."""
        raise NotImplementedError

    def wait_ready(self, answers: Callable[[], object],
                   errors: tuple[type[BaseException], ...], timeout: float) -> None:
        """Poll ``answers()`` until it is true; ``errors`` it raises mean "not yet".

        Raises
        ------
        RuntimeError
            If the process exits, or does not answer within ``timeout`` seconds (it is
            killed then).
        """
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise RuntimeError(f"{self.name} exited with {code}; "
                                   f"see {self.directory / self.log_name}")
            try:
                if answers():
                    return
            except errors:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.name} did not answer within {timeout} s")
            time.sleep(0.01)  # polling readiness: the server gives no other signal

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (by default at once, as :meth:`kill`)."""
        self.kill()

    def kill(self) -> None:
        """End the server at once (SIGKILL)."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
