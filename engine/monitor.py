"""Monitoring records: what a run measured, per PE and per connection, written as JSON.

A record is written by the :class:`MonitorWriter` observer (``dare run --monitor FILE``) under
any mapping, and read back by the optimisations of :mod:`engine.optimise` and by the autoscaling
mappings, which take their parameters from a previous run. Its layout (``format`` =
``"dare-monitor/1"``)::

    {"format": "dare-monitor/1", "graph": NAME, "mapping": M, "workers": N,
     "wall_seconds": S, "timed": true, "created": ISO-8601 UTC,
     "pes": {PE: {"instances", "units_in", "units_out", "process_seconds",
                  "seconds_per_unit"}},
     "connections": [{"src", "src_port", "dst", "dst_port", "grouping",
                      "units", "batches", "bytes", "send_seconds"}],
     "partitions": [[PE[i], ...] per worker],
     "scaling": {...}}   # elastic mappings: pool sizes over time, peak, process-seconds

``process_seconds`` is the time spent inside the PE (summed over its instances);
``send_seconds`` the time the senders spent serialising and sending the connection's batches
(0 when the units never left their process).
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.files import write_atomic
from engine.graph import Graph
from engine.observe import Observer, RunResult

__all__ = [
    "FORMAT",
    "MonitorRecord",
    "MonitorRecordError",
    "MonitorWriter",
    "monitoring_record",
    "parse_record",
    "read_record",
    "write_record",
]

FORMAT = "dare-monitor/1"

#: A connection as ``(src, src_port, dst, dst_port)``.
LinkKey = tuple[str, str, str, str]


class MonitorRecordError(EngineError):
    """A monitoring record cannot be read or does not fit the graph."""


def monitoring_record(result: RunResult, graph: Graph | None = None) -> dict[str, Any]:
    """Return the JSON-serialisable monitoring record of a finished run.

    Parameters
    ----------
    result
        The run's result.
    graph
        The graph that ran; adds its name and the grouping of each connection.
    """
    summary = result.summary
    groupings: dict[LinkKey, str] = {}
    if graph is not None:
        for edge in graph.edges:
            groupings[(edge.src, edge.src_port, edge.dst, edge.dst_port)] = (
                edge.grouping.describe()
            )
    pes: dict[str, dict[str, Any]] = {}
    for pe_id, stats in summary.pes.items():
        seconds = stats.process_seconds if summary.timed else None
        per_unit = (
            seconds / stats.units_in if seconds is not None and stats.units_in else None
        )
        pes[pe_id] = {
            "instances": stats.instances,
            "units_in": stats.units_in,
            "units_out": stats.units_out,
            "process_seconds": None if seconds is None else round(seconds, 9),
            "seconds_per_unit": None if per_unit is None else round(per_unit, 12),
        }
    connections = []
    for link in summary.links:
        if link.src.startswith("_"):
            continue
        key = (link.src, link.src_port, link.dst, link.dst_port)
        connections.append({
            "src": link.src,
            "src_port": link.src_port,
            "dst": link.dst,
            "dst_port": link.dst_port,
            "grouping": groupings.get(key),
            "units": link.units,
            "batches": link.batches,
            "bytes": link.bytes,
            "send_seconds": round(link.send_seconds, 9),
        })
    return {
        "format": FORMAT,
        "graph": graph.name if graph is not None else None,
        "mapping": summary.mapping,
        "workers": summary.workers,
        "wall_seconds": round(summary.wall_seconds, 6),
        "timed": summary.timed,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "pes": pes,
        "connections": connections,
        "partitions": summary.partitions,
        "scaling": summary.scaling,
    }


def write_record(path: str | Path, record: Mapping[str, Any]) -> Path:
    """Write ``record`` to ``path`` as indented JSON, atomically; return the path."""
    return write_atomic(path, json.dumps(record, indent=2, sort_keys=False) + "\n")


class MonitorWriter(Observer):
    """Observer that writes the monitoring record of a successful run to ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.graph: Graph | None = None

    def run_started(self, mapping: str, graph: Any, placement: Mapping[str, int]) -> None:
        """Keep the graph for the connection groupings."""
        self.graph = graph if isinstance(graph, Graph) else None

    def run_finished(self, result: RunResult) -> None:
        """Write the record."""
        write_record(self.path, monitoring_record(result, self.graph))


@dataclass(frozen=True)
class MonitorRecord:
    """The parts of a record that the optimisations use.

    Attributes
    ----------
    path
        Where it was read from (for messages).
    mapping, workers, wall_seconds
        How the recorded run was enacted.
    process_seconds
        Time spent in each PE, summed over its instances.
    units_in
        Units each PE received.
    send_seconds, bytes_sent
        Time spent sending and bytes sent over each connection ``(src, src_port, dst,
        dst_port)``.
    """

    path: str
    mapping: str
    workers: int
    wall_seconds: float
    process_seconds: Mapping[str, float]
    units_in: Mapping[str, int]
    send_seconds: Mapping[LinkKey, float]
    bytes_sent: Mapping[LinkKey, int]
    scaling: Mapping[str, Any] = field(default_factory=dict)

    def seconds_of(self, pe_id: str) -> float:
        """Processing time of ``pe_id`` (0 if the record does not know it)."""
        return self.process_seconds.get(pe_id, 0.0)

    def link_seconds(self, key: LinkKey) -> float:
        """Sending time over one connection (0 if unknown)."""
        return self.send_seconds.get(key, 0.0)

    def check_graph(self, graph: Graph) -> None:
        """Raise if the record names PEs that ``graph`` lacks (a record of another graph)."""
        known = {node.id for node in graph}
        foreign = sorted(set(self.process_seconds) - known)
        if foreign:
            raise MonitorRecordError(
                f"monitoring record {self.path} is not of this graph: it names PE(s) "
                f"{', '.join(foreign)}, which graph {graph.name!r} does not have "
                f"(its PEs: {', '.join(sorted(known))})"
            )


def _number(value: Any, where: str, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MonitorRecordError(f"monitoring record {path}: {where} must be a number, "
                                 f"not {value!r}")
    if value < 0:
        raise MonitorRecordError(f"monitoring record {path}: {where} is negative ({value})")
    return float(value)


def read_record(path: str | Path) -> MonitorRecord:
    """Read and check a monitoring record.

    Raises
    ------
    MonitorRecordError
        The file is missing, not JSON, of another format, or a field is missing or invalid
        (the message names the file and the field).
    """
    where = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MonitorRecordError(f"monitoring record {where} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MonitorRecordError(f"monitoring record {where} cannot be read: {exc}") from exc
    return parse_record(data, where)


def parse_record(data: Any, where: str = "<record>") -> MonitorRecord:
    """Check a record already loaded from JSON (``where`` names it in messages)."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise MonitorRecordError(
            f"{where} is not a dare monitoring record (format {found!r}, expected {FORMAT!r}); "
            "write one with 'dare run --monitor FILE'"
        )
    if not data.get("timed", True):
        raise MonitorRecordError(
            f"monitoring record {where} has no processing times (the run was not timed)"
        )
    try:
        pes = data["pes"]
        connections = data["connections"]
    except KeyError as exc:
        raise MonitorRecordError(f"monitoring record {where} lacks the field {exc}") from None
    process_seconds: dict[str, float] = {}
    units_in: dict[str, int] = {}
    for pe_id, fields in pes.items():
        process_seconds[pe_id] = _number(fields.get("process_seconds"),
                                         f"pes.{pe_id}.process_seconds", where)
        units_in[pe_id] = int(_number(fields.get("units_in", 0), f"pes.{pe_id}.units_in", where))
    send_seconds: dict[LinkKey, float] = {}
    bytes_sent: dict[LinkKey, int] = {}
    for index, link in enumerate(connections):
        try:
            key = (link["src"], link["src_port"], link["dst"], link["dst_port"])
        except (KeyError, TypeError):
            raise MonitorRecordError(
                f"monitoring record {where}: connections[{index}] needs src, src_port, dst "
                "and dst_port"
            ) from None
        send_seconds[key] = _number(link.get("send_seconds", 0.0),
                                    f"connections[{index}].send_seconds", where)
        bytes_sent[key] = int(_number(link.get("bytes", 0), f"connections[{index}].bytes",
                                      where))
    return MonitorRecord(
        path=where,
        mapping=str(data.get("mapping")),
        workers=int(_number(data.get("workers", 1), "workers", where)),
        wall_seconds=_number(data.get("wall_seconds", 0.0), "wall_seconds", where),
        process_seconds=process_seconds,
        units_in=units_in,
        send_seconds=send_seconds,
        bytes_sent=bytes_sent,
        scaling=scaling if isinstance(scaling := data.get("scaling"), dict) else {},
    )
