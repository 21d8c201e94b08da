"""One observer interface through which every mapping reports counts, timings and errors.

Progress displays, monitoring records and provenance all hook in here; mappings never know
which observers are attached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["InstanceStats", "LinkStats", "Observer", "PEStats", "RunResult", "RunSummary"]


@dataclass
class InstanceStats:
    """Counters of one PE instance."""

    pe_id: str
    instance: int
    worker: int = 0
    units_in: int = 0
    units_out: int = 0
    process_seconds: float = 0.0


@dataclass
class LinkStats:
    """Traffic over one connection, summed over sender and receiver instances."""

    src: str
    src_port: str
    dst: str
    dst_port: str
    units: int = 0
    batches: int = 0
    #: Serialised size of the batches sent between processes (0 when units stay in-process).
    bytes: int = 0
    send_seconds: float = 0.0


@dataclass
class PEStats:
    """Counters of one PE, summed over its instances."""

    pe_id: str
    instances: int = 0
    units_in: int = 0
    units_out: int = 0
    process_seconds: float = 0.0

    def add(self, stats: InstanceStats) -> None:
        """Add the counters of one instance."""
        self.instances += 1
        self.units_in += stats.units_in
        self.units_out += stats.units_out
        self.process_seconds += stats.process_seconds


@dataclass
class RunSummary:
    """What a run did: mapping, processes, wall time, counters per PE and per instance."""

    mapping: str
    workers: int
    wall_seconds: float
    pes: dict[str, PEStats]
    instances: list[InstanceStats] = field(default_factory=list)
    links: list[LinkStats] = field(default_factory=list)
    partitions: list[list[str]] = field(default_factory=list)
    #: Whether ``process_seconds`` were measured per unit (the ``simple`` mapping measures
    #: them only with ``timing=True``; without, they are reported as ``None``).
    timed: bool = True
    #: What elastic mappings did with their pool (``dynamic``: pool sizes over time,
    #: process-seconds, peak; ``redis``: run id and workers); empty for the others.
    scaling: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_instances(
        cls,
        mapping: str,
        workers: int,
        wall_seconds: float,
        pe_order: Sequence[str],
        instances: Sequence[InstanceStats],
        links: Sequence[LinkStats] = (),
        partitions: Sequence[Sequence[str]] = (),
        timed: bool = True,
    ) -> RunSummary:
        """Aggregate instance counters into per-PE counters (hidden PEs start with ``_``)."""
        pes = {pe_id: PEStats(pe_id) for pe_id in pe_order if not pe_id.startswith("_")}
        for stats in instances:
            if stats.pe_id in pes:
                pes[stats.pe_id].add(stats)
        return cls(
            mapping=mapping,
            workers=workers,
            wall_seconds=wall_seconds,
            pes=pes,
            instances=sorted(instances, key=lambda s: (s.pe_id, s.instance)),
            links=list(links),
            partitions=[list(p) for p in partitions],
            timed=timed,
        )

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dictionary."""
        return {
            "mapping": self.mapping,
            "workers": self.workers,
            "wall_seconds": round(self.wall_seconds, 6),
            "pes": {
                pe_id: {
                    "instances": s.instances,
                    "units_in": s.units_in,
                    "units_out": s.units_out,
                    "process_seconds": round(s.process_seconds, 6) if self.timed else None,
                }
                for pe_id, s in self.pes.items()
            },
            "links": [vars(link) for link in self.links],
            "partitions": self.partitions,
            "scaling": self.scaling,
        }


@dataclass
class RunResult:
    """Outputs of the unconnected output ports, and the run summary.

    ``outputs[pe_id][port]`` is the list of values emitted there (in emission order for the
    ``simple`` mapping; in arrival order, per sender order-preserving, for parallel ones).
    """

    outputs: dict[str, dict[str, list[Any]]]
    summary: RunSummary

    def output(self, pe_id: str, port: str | None = None) -> list[Any]:
        """Values of one unconnected output (``port`` may be omitted if the PE has one)."""
        ports = self.outputs.get(pe_id)
        if ports is None:
            raise KeyError(f"PE {pe_id!r} has no unconnected output; outputs: {list(self.outputs)}")
        if port is None:
            if len(ports) != 1:
                raise KeyError(f"PE {pe_id!r} has several outputs {list(ports)}: name the port")
            return next(iter(ports.values()))
        return ports[port]


class Observer:
    """Receives run events; subclass and override what you need (all methods are no-ops).

    ``progress`` carries cumulative counts and may be called often; the others once.
    Observers run in the process that called ``run``.
    """

    def run_started(self, mapping: str, graph: Any, placement: Mapping[str, int]) -> None:
        """The run starts with ``placement`` instances per PE."""

    def progress(self, pe_id: str, instance: int, units_in: int, units_out: int) -> None:
        """Cumulative counters of one instance so far."""

    def instance_finished(self, stats: InstanceStats) -> None:
        """One instance has flushed."""

    def run_finished(self, result: RunResult) -> None:
        """The run succeeded."""

    def run_failed(self, error: BaseException) -> None:
        """The run failed (or was interrupted) with ``error``."""
