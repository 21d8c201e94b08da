"""A real WebDAV server (wsgidav on cheroot) in a thread on 127.0.0.1, for tests.

It serves a folder with HTTP basic authentication for one user, records every request
(method, path, status) and can be told to refuse some methods, to simulate a server that
fails half-way through an upload.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cheroot import wsgi
from wsgidav.wsgidav_app import WsgiDAVApp

USER = "alice"
PASSWORD = "s3cret-Pa55"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class WebDAVServer:
    """A running server: ``base`` is ``http://127.0.0.1:<port>``, ``root`` the served folder."""

    base: str
    root: Path
    user: str = USER
    password: str = PASSWORD
    log: list[tuple[str, str, int]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    def ref(self, path: str) -> str:
        """Return the ``webdav+http://`` reference of ``path`` (relative to the root)."""
        return "webdav+" + self.base + "/" + path.lstrip("/")

    def count(self, method: str, path: str | None = None) -> int:
        """Number of logged requests with ``method`` (and ``path``, if given)."""
        return sum(1 for m, p, _ in self.log if m == method and (path is None or p == path))


def _recording(app: WsgiApp, server: WebDAVServer) -> WsgiApp:
    """Wrap ``app``: log each request and answer 500 to methods in ``server.refuse``."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")

        def recording_start(code: str, headers: list[Any], *args: Any) -> Any:
            # Logged here, before any byte of the response is sent, so a client that has
            # its answer always finds its request in the log.
            server.log.append((method, path, int(code.split()[0])))
            return start_response(code, headers, *args)

        if method in server.refuse:
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            del body
            recording_start("500 Internal Server Error", [("Content-Length", "0")])
            return [b""]
        return app(environ, recording_start)

    return wrapped


@contextmanager
def serve_webdav(root: Path) -> Iterator[WebDAVServer]:
    """Serve ``root`` over WebDAV with basic auth (:data:`USER`/:data:`PASSWORD`)."""
    config = {
        "host": "127.0.0.1",
        "port": 0,
        "provider_mapping": {"/": str(root)},
        "simple_dc": {"user_mapping": {"*": {USER: {"password": PASSWORD}}}},
        "http_authenticator": {
            "domain_controller": None,
            "accept_basic": True,
            "accept_digest": False,
            "default_to_digest": False,
        },
        "verbose": 0,
        "logging": {"enable": False},
        "dir_browser": {"enable": False},
        "lock_storage": True,
        "property_manager": True,
    }
    state = WebDAVServer(base="", root=root)
    app = _recording(WsgiDAVApp(config), state)
    server = wsgi.Server(("127.0.0.1", 0), app, numthreads=4)
    server.expiration_interval = 0.02  # seconds between polls; the default 0.5 slows stop()
    server.prepare()
    port = server.bind_addr[1]
    state.base = f"http://127.0.0.1:{port}"
    thread = threading.Thread(target=server.serve, name="webdav-test-server", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.stop()
        thread.join(timeout=5)


@pytest.fixture
def webdav(tmp_path: Path) -> Iterator[WebDAVServer]:
    """A WebDAV server on 127.0.0.1 serving an empty ``tmp_path / "dav"`` folder."""
    root = tmp_path / "dav"
    root.mkdir()
    with serve_webdav(root) as server:
        yield server


@pytest.fixture
def webdav_credentials(webdav: WebDAVServer, monkeypatch: pytest.MonkeyPatch) -> WebDAVServer:
    """The :func:`webdav` server with its credentials in the environment; no netrc file."""
    monkeypatch.setenv("DARE_WEBDAV_USER", webdav.user)
    monkeypatch.setenv("DARE_WEBDAV_PASSWORD", webdav.password)
    monkeypatch.delenv("DARE_WEBDAV_TOKEN", raising=False)
    monkeypatch.setenv("NETRC", str(webdav.root.parent / "no-netrc"))
    return webdav
