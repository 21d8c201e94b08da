"""A real ``redis-server`` on 127.0.0.1 for tests: started on a free port in a directory.

>>> with redis_server(tmp_path) as server:          # doctest: +SKIP
...     engine.run(graph, mapping="redis", redis_url=server.url)

With ``persistent=True`` the server keeps an append-only file (``appendfsync always``) in its
directory, so :meth:`RedisServer.restart` brings back every acknowledged write.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from service_process import ServiceProcess, free_port

__all__ = ["RedisServer", "free_port", "have_redis_server", "redis_server"]


def have_redis_server() -> bool:
    """Whether a ``redis-server`` binary is on the PATH."""
    return shutil.which("redis-server") is not None


class RedisServer(ServiceProcess):
    """One ``redis-server`` process.

    Parameters
    ----------
    directory
        Working directory of the server (its log and, if persistent, its append-only file).
    persistent
        Keep an append-only file, fsynced on every write.
    port
        Port to listen on (default: a free one).
    """

    name = "redis-server"
    log_name = "redis.log"

    def __init__(self, directory: Path, *, persistent: bool = False,
                 port: int | None = None) -> None:
        super().__init__(directory, port=port)
        self.persistent = persistent

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and return once it answers PING (``RuntimeError`` if it does not)."""
        command = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.directory), "--save", "", "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"), "--protected-mode", "no",
        ]
        if self.persistent:
            command += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            command += ["--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2,
                             socket_timeout=0.5)
        try:
            self.wait_ready(client.ping, (redis.ConnectionError, redis.TimeoutError,
                                          redis.BusyLoadingError), timeout)
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down (SIGTERM: it writes its append-only file), killing if stuck."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        self.process = None

    def restart(self, timeout: float = 10.0) -> None:
        """Stop and start again on the same port and directory."""
        self.stop(timeout)
        self.start(timeout)



@contextmanager
def redis_server(directory: Path, *, persistent: bool = False) -> Iterator[RedisServer]:
    """Run a ``redis-server`` in ``directory`` for the duration of the block."""
    server = RedisServer(directory, persistent=persistent)
    server.start()
    try:
        yield server
    finally:
        server.stop()
