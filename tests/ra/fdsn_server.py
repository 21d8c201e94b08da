"""A small FDSN web service (event, station, dataselect) over local files, for tests.

It speaks enough of the FDSN web service specifications for obspy's
``obspy.clients.fdsn.Client`` to work against it unchanged: service discovery
(``application.wadl``, ``version``, ``catalogs``, ``contributors``), GET
queries, POST bulk queries, HTTP 204 when nothing matches and HTTP 400 for
parameters it does not know. obspy does the selecting, trimming and writing.

Use the ``fdsn_server`` fixture (yields the base URL) or ``fdsn_service``
(yields the running :class:`FDSNServer`, whose ``data`` a test may change
before its first request, and whose ``requests`` log what was asked).
"""

from __future__ import annotations

import copy
import io
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import product
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

import obspy
import pytest
from obspy import Catalog, Inventory, Stream, UTCDateTime
from obspy.clients.fdsn.header import (
    DEFAULT_PARAMETERS,
    DEFAULT_TYPES,
    OPTIONAL_PARAMETERS,
    PARAMETER_ALIASES,
)

import dare_cli.ra

EXAMPLE = Path(dare_cli.ra.__file__).parent / "examples" / "ridgecrest"

#: Versions reported by ``/fdsnws/{service}/1/version``.
VERSIONS = {"event": "1.2.0", "station": "1.1.0", "dataselect": "1.1.0"}
#: Parameters each service accepts beyond obspy's standard ones.
EXTRA_PARAMETERS = {"event": ["nodata"], "station": ["nodata"], "dataselect": ["nodata"]}
_XSD = {UTCDateTime: "xs:dateTime", float: "xs:double", int: "xs:int", bool: "xs:boolean"}


class BadRequest(Exception):
    """A request the service refuses with HTTP 400."""


@dataclass
class FDSNData:
    """What the service serves: events, station metadata (with responses) and waveforms."""

    catalog: Catalog
    inventory: Inventory
    stream: Stream

    def copy(self) -> FDSNData:
        return FDSNData(self.catalog.copy(), copy.deepcopy(self.inventory), self.stream.copy())


def load_directory(root: Path = EXAMPLE) -> FDSNData:
    """Read ``event.xml``, ``stations/*.xml`` and ``waveforms/*.mseed`` under ``root``."""
    catalog = obspy.read_events(str(root / "event.xml"))
    inventory = Inventory(networks=[], source="dare-test-fdsn")
    for path in sorted((root / "stations").glob("*.xml")):
        for network in obspy.read_inventory(str(path)):
            same = [n for n in inventory.networks if n.code == network.code]
            if same:
                same[0].stations.extend(network.stations)
            else:
                inventory.networks.append(network)
    stream = Stream()
    for path in sorted((root / "waveforms").glob("*.mseed")):
        stream += obspy.read(str(path), format="MSEED")
    return FDSNData(catalog, inventory, stream)


def wadl(service: str, base_url: str) -> bytes:
    """The WADL of one service, listing obspy's standard parameters of that service."""
    names = DEFAULT_PARAMETERS[service] + OPTIONAL_PARAMETERS[service]
    params = "\n".join(
        f'<param name="{name}" style="query" type="{_XSD.get(DEFAULT_TYPES[name], "xs:string")}"/>'
        for name in names
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<application xmlns="http://wadl.dev.java.net/2009/02" '
        'xmlns:xs="http://www.w3.org/2001/XMLSchema">\n'
        f'<resources base="{escape(base_url)}/fdsnws/{service}/1/">\n'
        '<resource path="query"><method id="query" name="GET"><request>\n'
        f"{params}\n"
        '</request></method><method id="queryBulk" name="POST"/></resource>\n'
        '<resource path="version"><method name="GET"/></resource>\n'
        "</resources></application>\n"
    ).encode()


def _parameters(service: str, pairs: list[tuple[str, str]]) -> dict[str, str]:
    allowed = set(DEFAULT_PARAMETERS[service] + OPTIONAL_PARAMETERS[service])
    allowed |= set(EXTRA_PARAMETERS[service])
    out: dict[str, str] = {}
    for key, value in pairs:
        name = PARAMETER_ALIASES.get(key.lower(), key.lower())
        if name not in allowed:
            raise BadRequest(f"unknown parameter {key!r} for the {service} service")
        out[name] = value
    return out


def _patterns(value: str | None) -> list[str]:
    """Comma-separated FDSN codes; ``--`` is the empty location code."""
    if not value:
        return ["*"]
    return ["" if code.strip() == "--" else code.strip() for code in value.split(",")]


def _time(params: dict[str, str], name: str) -> UTCDateTime | None:
    try:
        return UTCDateTime(params[name]) if name in params else None
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"{name}={params[name]!r} is not a time") from exc


def _float(params: dict[str, str], name: str) -> float | None:
    try:
        return float(params[name]) if name in params else None
    except ValueError as exc:
        raise BadRequest(f"{name}={params[name]!r} is not a number") from exc


def _bulk(body: str) -> tuple[list[tuple[str, str]], list[list[str]]]:
    """Split a POST body into its ``key=value`` lines and its request lines."""
    pairs, lines = [], []
    for raw in body.splitlines():
        line = raw.strip()
        if not line:
            continue
        if "=" in line:
            key, value = line.split("=", 1)
            pairs.append((key.strip(), value.strip()))
        else:
            fields = line.split()
            if len(fields) != 6:
                raise BadRequest(f"bulk line {line!r} needs NET STA LOC CHA START END")
            lines.append(fields)
    return pairs, lines


class FDSNServer:
    """An FDSN web service on ``127.0.0.1`` at a free port, run in a daemon thread.

    Parameters
    ----------
    data
        What to serve.
    """

    def __init__(self, data: FDSNData) -> None:
        self.data = data
        self.requests: list[tuple[str, str, str]] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FDSNServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    # -- services -----------------------------------------------------------------------

    def event(self, params: dict[str, str]) -> tuple[bytes, str] | None:
        catalog = Catalog()
        wanted = params.get("eventid")
        start, end = _time(params, "starttime"), _time(params, "endtime")
        for event in self.data.catalog:
            rid = str(event.resource_id)
            if wanted and not (rid == wanted or rid.endswith(("/" + wanted, "=" + wanted))):
                continue
            origin = event.preferred_origin() or (event.origins[0] if event.origins else None)
            if origin is not None and (
                (start and origin.time < start) or (end and origin.time > end)
            ):
                continue
            catalog.append(event)
        if not catalog:
            return None
        buf = io.BytesIO()
        catalog.write(buf, format="QUAKEML")
        return buf.getvalue(), "application/xml"

    def station(self, params: dict[str, str], lines: list[list[str]]) -> tuple[bytes, str] | None:
        level = params.get("level", "station").lower()
        if level not in ("network", "station", "channel", "response"):
            raise BadRequest(f"level={level!r} is not one of network, station, channel, response")
        fmt = params.get("format", "xml").lower()
        if fmt not in ("xml", "text"):
            raise BadRequest(f"format={fmt!r} is not xml or text")
        geo: dict[str, Any] = {
            name: _float(params, name)
            for name in ("minlatitude", "maxlatitude", "minlongitude", "maxlongitude")
        }
        if "latitude" in params or "longitude" in params or "maxradius" in params:
            geo.update(
                latitude=_float(params, "latitude") or 0.0,
                longitude=_float(params, "longitude") or 0.0,
                minradius=_float(params, "minradius"),
                maxradius=_float(params, "maxradius"),
            )
        keys: set[tuple[str, str, str, str, str]] = set()
        for net, sta, loc, cha, start, end in self._requests(params, lines):
            chosen = self.data.inventory.select(
                network=net,
                station=sta,
                location=loc,
                channel=cha,
                starttime=start,
                endtime=end,
                **geo,
            )
            keys.update(
                (n.code, s.code, c.location_code, c.code, str(c.start_date))
                for n in chosen
                for s in n
                for c in s
            )
        networks = []
        for network in self.data.inventory:
            stations = []
            for station in network:
                channels = [
                    c
                    for c in station
                    if (network.code, station.code, c.location_code, c.code, str(c.start_date))
                    in keys
                ]
                if not channels:
                    continue
                if level == "channel":
                    channels = [copy.copy(c) for c in channels]
                    for channel in channels:
                        channel.response = None
                stations.append(copy.copy(station))
                stations[-1].channels = channels if level in ("channel", "response") else []
            if stations:
                networks.append(copy.copy(network))
                networks[-1].stations = stations if level != "network" else []
        inventory = Inventory(networks=networks, source=self.data.inventory.source)
        if not inventory.networks:
            return None
        buf = io.BytesIO()
        if fmt == "text":
            inventory.write(
                buf, format="STATIONTXT", level=level if level != "response" else "channel"
            )
            return buf.getvalue(), "text/plain"
        inventory.write(buf, format="STATIONXML")
        return buf.getvalue(), "application/xml"

    def dataselect(
        self, params: dict[str, str], lines: list[list[str]]
    ) -> tuple[bytes, str] | None:
        if params.get("format", "miniseed").lower() != "miniseed":
            raise BadRequest("only format=miniseed is served")
        minimum = _float(params, "minimumlength") or 0.0
        longest = params.get("longestonly", "false").lower() == "true"
        out = Stream()
        for net, sta, loc, cha, start, end in self._requests(params, lines):
            if start is None or end is None:
                raise BadRequest("dataselect needs starttime and endtime")
            chosen = self.data.stream.select(network=net, station=sta, location=loc, channel=cha)
            piece = chosen.slice(start, end, nearest_sample=False)
            out += Stream([tr for tr in piece if tr.stats.npts > 0])
        out = Stream([tr for tr in out if tr.stats.endtime - tr.stats.starttime >= minimum])
        if longest:
            out = Stream(
                max(out.select(id=tid), key=lambda tr: tr.stats.npts)
                for tid in sorted({tr.id for tr in out})
            )
        if not out:
            return None
        buf = io.BytesIO()
        out.write(buf, format="MSEED", reclen=512, encoding="STEIM2")
        return buf.getvalue(), "application/vnd.fdsn.mseed"

    def _requests(
        self, params: dict[str, str], lines: list[list[str]]
    ) -> Iterator[tuple[str, str, str, str, UTCDateTime | None, UTCDateTime | None]]:
        if lines:
            for net, sta, loc, cha, start, end in lines:
                t1 = _time({"starttime": start}, "starttime")
                t2 = _time({"endtime": end}, "endtime")
                for n, s, lo, c in product(*map(_patterns, (net, sta, loc, cha))):
                    yield n, s, lo, c, t1, t2
            return
        t1, t2 = _time(params, "starttime"), _time(params, "endtime")
        fields = ("network", "station", "location", "channel")
        for n, s, lo, c in product(*(_patterns(params.get(f)) for f in fields)):
            yield n, s, lo, c, t1, t2

    # -- HTTP ---------------------------------------------------------------------------

    def respond(self, method: str, raw_path: str, body: str) -> tuple[int, bytes, str]:
        """Answer one request: ``(HTTP status, body, content type)``."""
        split = urlsplit(raw_path)
        self.requests.append((method, split.path, split.query if method == "GET" else body))
        parts = split.path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "fdsnws" or parts[2] != "1" or parts[1] not in VERSIONS:
            return 404, b"not found\n", "text/plain"
        service, resource = parts[1], parts[3]
        if resource == "version" and method == "GET":
            return 200, VERSIONS[service].encode(), "text/plain"
        if resource == "application.wadl" and method == "GET":
            return 200, wadl(service, self.url), "application/xml"
        if service == "event" and resource in ("catalogs", "contributors") and method == "GET":
            tag = resource[:-1].capitalize()
            xml = f"<{tag}s><{tag}>dare-test</{tag}></{tag}s>"
            return 200, xml.encode(), "application/xml"
        if resource != "query":
            return 404, b"not found\n", "text/plain"
        try:
            if method == "POST":
                pairs, lines = _bulk(body)
                if service == "event":
                    raise BadRequest("the event service takes no POST")
            else:
                pairs, lines = parse_qsl(split.query, keep_blank_values=True), []
            params = _parameters(service, pairs)
            handler: Callable[..., tuple[bytes, str] | None]
            if service == "event":
                answer = self.event(params)
            else:
                handler = self.station if service == "station" else self.dataselect
                answer = handler(params, lines)
        except BadRequest as exc:
            return 400, f"Error 400: Bad Request\n\n{exc}\n".encode(), "text/plain"
        if answer is None:
            nodata = int(params.get("nodata", "204"))
            return nodata, b"", "text/plain"
        return 200, answer[0], answer[1]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("ascii", "replace") if length else ""
                try:
                    status, payload, ctype = server.respond(method, self.path, body)
                except Exception as exc:  # report the server's own bugs to the client
                    status, payload, ctype = (
                        500,
                        f"{type(exc).__name__}: {exc}".encode(),
                        "text/plain",
                    )
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if payload and status != 204:
                    self.wfile.write(payload)

            def do_GET(self) -> None:
                self._reply("GET")

            def do_POST(self) -> None:
                self._reply("POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture(scope="session")
def fdsn_example_data() -> FDSNData:
    """The bundled Ridgecrest example, read once per session (do not modify: copy)."""
    return load_directory(EXAMPLE)


@pytest.fixture
def fdsn_service(fdsn_example_data: FDSNData) -> Iterator[FDSNServer]:
    """A running FDSN service over a private copy of the Ridgecrest example."""
    with FDSNServer(fdsn_example_data.copy()) as server:
        yield server


@pytest.fixture
def fdsn_server(fdsn_example_data: FDSNData) -> Iterator[str]:
    """Base URL of a running FDSN service serving the Ridgecrest example."""
    with FDSNServer(fdsn_example_data) as server:
        yield server.url
