"""Remote inputs and outputs for ``dare climate``: WebDAV (e.g. B2DROP) and OPeNDAP.

Reference convention (unambiguous between the two protocols):

* ``webdav+https://host/path`` (or the short alias ``davs://host/path``) is a file on a WebDAV
  server reached over HTTPS; ``webdav+http://`` (alias ``dav://``) over plain HTTP. B2DROP's
  WebDAV base is ``https://b2drop.eudat.eu/remote.php/webdav/``, so a B2DROP file is
  ``webdav+https://b2drop.eudat.eu/remote.php/webdav/dir/file.nc``.
* A plain ``http://`` or ``https://`` URL is an OPeNDAP endpoint, handed to xarray as it is
  (opened lazily by the netCDF4 engine; nothing is downloaded here).
* Anything else without ``://`` (or a ``file://`` URL) is a local path.

Credentials for WebDAV never come from the command line or the URL: they are read from the
environment (``DARE_WEBDAV_USER`` with ``DARE_WEBDAV_PASSWORD``, or with ``DARE_WEBDAV_TOKEN``,
e.g. a B2DROP app password), else from a netrc file (``$NETRC``, else ``~/.netrc``) entry whose
``machine`` is the server's host name. They are never logged nor put in an error message.
"""

from __future__ import annotations

import hashlib
import json
import netrc
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import requests

from dare_cli.climate.errors import ClimateError, ClimateUsageError
from engine.files import atomic_path, write_atomic

__all__ = [
    "RemoteLocation",
    "credentials_for",
    "default_cache_dir",
    "fetch",
    "is_opendap",
    "is_webdav",
    "resolve_inputs",
    "stage_out",
]

USER_VAR = "DARE_WEBDAV_USER"
PASSWORD_VAR = "DARE_WEBDAV_PASSWORD"
TOKEN_VAR = "DARE_WEBDAV_TOKEN"

#: WebDAV reference scheme -> HTTP scheme used on the wire.
_WEBDAV_SCHEMES = {
    "webdav+https": "https",
    "davs": "https",
    "webdav+http": "http",
    "dav": "http",
}
_TIMEOUT = (10.0, 300.0)  # seconds: connect, read
_CHUNK = 1 << 20  # bytes per streamed chunk


def _scheme(ref: str) -> str | None:
    if "://" not in ref:
        return None
    return ref.split("://", 1)[0].lower()


def is_webdav(ref: str) -> bool:
    """Return whether ``ref`` is a WebDAV reference (``webdav+http(s)://``, ``dav(s)://``)."""
    return _scheme(ref) in _WEBDAV_SCHEMES


def is_opendap(ref: str) -> bool:
    """Return whether ``ref`` is an OPeNDAP URL: plain ``http(s)://``, not marked WebDAV."""
    return _scheme(ref) in ("http", "https")


@dataclass(frozen=True)
class RemoteLocation:
    """A file on a WebDAV server, as written by the user (see the module docstring).

    Parameters
    ----------
    url
        ``webdav+https://``, ``davs://``, ``webdav+http://`` or ``dav://`` reference, without
        credentials.
    """

    url: str

    def __post_init__(self) -> None:
        if not is_webdav(self.url):
            raise ClimateUsageError(
                f"not a WebDAV reference: {self.url!r} "
                "(use webdav+https://host/path or davs://host/path)"
            )
        parts = urlsplit(self.url)
        if parts.username is not None or parts.password is not None:
            raise ClimateUsageError(
                f"WebDAV reference {_redact(self.url)} contains credentials; set "
                f"{USER_VAR} and {PASSWORD_VAR} (or {TOKEN_VAR}) or use a netrc file instead"
            )
        if not parts.hostname:
            raise ClimateUsageError(f"WebDAV reference {self.url!r} has no host")
        if not parts.path or parts.path.endswith("/"):
            raise ClimateUsageError(f"WebDAV reference {self.url!r} does not name a file")

    @property
    def http_url(self) -> str:
        """The ``http(s)://`` URL used on the wire."""
        parts = urlsplit(self.url)
        return urlunsplit((_WEBDAV_SCHEMES[parts.scheme.lower()], *parts[1:]))

    @property
    def host(self) -> str:
        """Host name (lower case, no port), as matched against netrc ``machine`` entries."""
        return urlsplit(self.url).hostname or ""

    @property
    def name(self) -> str:
        """File name (last path segment, percent-decoded)."""
        return unquote(urlsplit(self.url).path.rsplit("/", 1)[-1])


def _redact(url: str) -> str:
    """Return ``url`` without any user information, for messages."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def credentials_for(url: str) -> tuple[str, str] | None:
    """Return ``(user, password)`` for a WebDAV ``url``, or None if none are configured.

    The environment wins (``DARE_WEBDAV_USER`` with ``DARE_WEBDAV_PASSWORD``, else with
    ``DARE_WEBDAV_TOKEN``); otherwise the netrc file (``$NETRC``, else ``~/.netrc``) entry
    for the URL's host name is used.

    Raises
    ------
    ClimateUsageError
        Only one half of the environment pair is set.
    ClimateError
        The netrc file cannot be parsed (its contents are not quoted).
    """
    user = os.environ.get(USER_VAR)
    secret = os.environ.get(PASSWORD_VAR) or os.environ.get(TOKEN_VAR)
    if user and secret:
        return user, secret
    if user or secret:
        missing = f"{PASSWORD_VAR} (or {TOKEN_VAR})" if user else USER_VAR
        raise ClimateUsageError(f"WebDAV credentials incomplete: {missing} is not set")
    host = urlsplit(url).hostname
    path = Path(os.environ["NETRC"]) if os.environ.get("NETRC") else Path.home() / ".netrc"
    if not host or not path.is_file():
        return None
    try:
        entry = netrc.netrc(str(path)).authenticators(host)
    except (netrc.NetrcParseError, OSError) as exc:
        # The parse error may quote a line of the file: keep only where it is.
        raise ClimateError(f"cannot read netrc file {path}: {type(exc).__name__}") from None
    if entry is None or not entry[0] or not entry[2]:
        return None
    return entry[0], entry[2]


def _session(location: RemoteLocation) -> requests.Session:
    session = requests.Session()
    session.trust_env = True  # proxies and CA bundles from the environment
    creds = credentials_for(location.url)
    if creds is not None:
        session.auth = creds
    return session


def _http_error(response: requests.Response, what: str, location: RemoteLocation) -> ClimateError:
    url = _redact(location.url)
    code = response.status_code
    if code == 401:
        hint = (
            f"authentication failed; check {USER_VAR}/{PASSWORD_VAR} (or {TOKEN_VAR}) "
            "or the netrc entry for this host"
        )
    elif code == 403:
        hint = "access forbidden"
    elif code == 404:
        hint = "not found"
    else:
        hint = response.reason or "unexpected response"
    return ClimateError(f"WebDAV {what} {url} failed: HTTP {code} ({hint})")


@contextmanager
def _requesting(what: str, location: RemoteLocation) -> Iterator[None]:
    """Turn connection-level failures into a ClimateError naming the (redacted) URL."""
    try:
        yield
    except requests.RequestException as exc:
        raise ClimateError(
            f"WebDAV {what} {_redact(location.url)} failed: {type(exc).__name__}"
        ) from exc


def _cache_paths(location: RemoteLocation, cache_dir: Path) -> tuple[Path, Path]:
    key = hashlib.sha256(location.http_url.encode("utf-8")).hexdigest()[:24]
    folder = Path(cache_dir) / key
    return folder / (location.name or "data"), folder / ".meta.json"


def _read_meta(meta_path: Path, data_path: Path, url: str) -> dict[str, Any] | None:
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("url") != url or not data_path.is_file():
        return None
    if data_path.stat().st_size != meta.get("size"):
        return None
    return meta


def fetch(ref: str, cache_dir: Path) -> Path:
    """Download a WebDAV file into ``cache_dir`` (if not cached and current); return its path.

    The cache is keyed by the URL; a cached copy is revalidated with a conditional GET
    (``If-None-Match`` with the stored ETag, ``If-Modified-Since`` with the stored
    Last-Modified) and reused on ``304 Not Modified``. A server that sends neither validator
    is downloaded every time; validators are only as fine as the server makes them (often
    whole seconds), so a file replaced by one of the same size within the same second may
    be seen as unchanged. The download is streamed to a temporary file, checked against
    ``Content-Length`` and renamed into place, so a cached file is always whole.

    Parameters
    ----------
    ref
        WebDAV reference (``webdav+https://...``, ``davs://...``).
    cache_dir
        Folder for cached downloads (created if missing).

    Raises
    ------
    ClimateError
        HTTP errors (401/403/404 and others), connection failures or a truncated download;
        the message names the URL, never the credentials.
    """
    location = RemoteLocation(ref)
    data_path, meta_path = _cache_paths(location, Path(cache_dir))
    meta = _read_meta(meta_path, data_path, location.http_url)
    headers: dict[str, str] = {}
    if meta is not None:
        if meta.get("etag"):
            headers["If-None-Match"] = meta["etag"]
        if meta.get("last_modified"):
            headers["If-Modified-Since"] = meta["last_modified"]
    with _session(location) as session, _requesting("download of", location):
        response = session.get(location.http_url, headers=headers, stream=True, timeout=_TIMEOUT)
        with response:
            if response.status_code == 304 and meta is not None:
                return data_path
            if response.status_code != 200:
                raise _http_error(response, "download of", location)
            expected = response.headers.get("Content-Length")
            with atomic_path(data_path) as temporary:
                size = 0
                with temporary.open("wb") as handle:
                    for chunk in response.iter_content(_CHUNK):
                        handle.write(chunk)
                        size += len(chunk)
                if expected is not None and int(expected) != size:
                    raise ClimateError(
                        f"WebDAV download of {_redact(location.url)} truncated: "
                        f"{size} of {expected} bytes"
                    )
            new_meta = {
                "url": location.http_url,
                "etag": response.headers.get("ETag"),
                "last_modified": response.headers.get("Last-Modified"),
                "size": size,
            }
    write_atomic(meta_path, json.dumps(new_meta, indent=1, sort_keys=True))
    return data_path


def default_cache_dir() -> Path:
    """Where remote (WebDAV) inputs are cached: ``$XDG_CACHE_HOME/dare/climate``.

    ``XDG_CACHE_HOME`` defaults to ``~/.cache``.
    """
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dare" / "climate"


def resolve_inputs(refs: Sequence[str], cache_dir: Path) -> list[str]:
    """Turn input references into what :func:`xarray.open_dataset` can open.

    Local paths are returned unchanged (``file://`` URLs as their path), WebDAV references
    are fetched into ``cache_dir`` (see :func:`fetch`) and replaced by the local path, and
    OPeNDAP URLs are returned as they are (xarray opens them lazily).

    Raises
    ------
    ClimateUsageError
        A reference with an unsupported URL scheme.
    """
    resolved: list[str] = []
    for ref in refs:
        scheme = _scheme(ref)
        if scheme is None:
            resolved.append(ref)
        elif scheme == "file":
            resolved.append(unquote(urlsplit(ref).path))
        elif is_webdav(ref):
            resolved.append(str(fetch(ref, cache_dir)))
        elif is_opendap(ref):
            resolved.append(ref)
        else:
            raise ClimateUsageError(
                f"unsupported input {ref!r}: use a local path, an OPeNDAP http(s):// URL or "
                "a WebDAV webdav+https:// (davs://) reference"
            )
    return resolved


def _parent(url: str) -> str:
    """Return the collection URL (with trailing slash) that contains ``url``."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/").rsplit("/", 1)[0] + "/"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _ensure_collection(
    session: requests.Session, url: str, location: RemoteLocation, depth: int = 0
) -> None:
    """Create the collection ``url`` and any missing ancestors (MKCOL, bottom-up on 409)."""
    if urlsplit(url).path in ("", "/"):
        return
    if depth > 64:
        raise ClimateError(f"WebDAV upload to {_redact(location.url)}: path too deep")
    response = session.request("MKCOL", url, timeout=_TIMEOUT)
    if response.status_code in (200, 201, 405):  # 405: it exists already
        return
    if response.status_code == 409:  # an ancestor is missing
        _ensure_collection(session, _parent(url), location, depth + 1)
        response = session.request("MKCOL", url, timeout=_TIMEOUT)
        if response.status_code in (200, 201, 405):
            return
    raise _http_error(response, f"creation of collection {urlsplit(url).path} for", location)


def _remote_size(session: requests.Session, url: str) -> int | None:
    response = session.head(url, timeout=_TIMEOUT)
    if response.status_code != 200:
        return None
    length = response.headers.get("Content-Length")
    return int(length) if length is not None else None


def stage_out(local: Path, ref: str) -> None:
    """Upload ``local`` to the WebDAV reference ``ref``, whole or not at all.

    Missing parent collections are created (MKCOL). The file is PUT under a temporary name
    (``.<name>.<random>.part``) in the target collection, its size checked, then MOVEd onto
    the final name (overwriting), and the final size checked; on any failure the temporary
    file is deleted, so no partial file appears under the final name.

    Raises
    ------
    ClimateError
        ``local`` is not a file, or an HTTP/connection failure (message names the URL, never
        the credentials), or a size mismatch.
    """
    local = Path(local)
    if not local.is_file():
        raise ClimateError(f"cannot stage out {local}: not a file")
    location = RemoteLocation(ref)
    final_url = location.http_url
    parent = _parent(final_url)
    last = urlsplit(final_url).path.rsplit("/", 1)[-1]
    temp_url = f"{parent}.{last}.{uuid.uuid4().hex}.part"
    size = local.stat().st_size
    with _session(location) as session, _requesting("upload to", location):
        _ensure_collection(session, parent, location)
        try:
            with local.open("rb") as handle:
                response = session.put(temp_url, data=handle, timeout=_TIMEOUT)
            if response.status_code not in (200, 201, 204):
                raise _http_error(response, "upload to", location)
            got = _remote_size(session, temp_url)
            if got != size:
                raise ClimateError(
                    f"WebDAV upload to {_redact(location.url)}: server holds {got} bytes of {size}"
                )
            response = session.request(
                "MOVE",
                temp_url,
                headers={"Destination": final_url, "Overwrite": "T"},
                timeout=_TIMEOUT,
            )
            if response.status_code not in (201, 204):
                raise _http_error(response, "rename (MOVE) onto", location)
        except BaseException:
            with suppress(requests.RequestException):  # the original failure is reported
                session.delete(temp_url, timeout=_TIMEOUT)
            raise
        got = _remote_size(session, final_url)
        if got != size:
            raise ClimateError(
                f"WebDAV upload to {_redact(location.url)}: final file has {got} bytes of {size}"
            )
