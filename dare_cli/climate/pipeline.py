"""Climate indices through the engine: plan tiles, compute them on a mapping, write the files."""

from __future__ import annotations

import multiprocessing
import os
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import icclim  # noqa: F401  (3 s to import: once here, before the workers fork)

from dare_cli.climate.compute import IndexRequest, Tile, index_variables, open_inputs, plan_tiles
from dare_cli.climate.pes import IndexTiles, WriteIndices
from dare_cli.climate.remote import stage_out
from engine import WorkflowGraph, run
from engine.observe import Observer

__all__ = ["IndexJob", "Plan", "plan_job", "run_job"]


@dataclass(frozen=True)
class IndexJob:
    """Several indices over the same inputs, written to one file each."""

    inputs: tuple[str, ...]
    requests: tuple[IndexRequest, ...]
    outputs: tuple[Path, ...]
    tile: Mapping[str, int] | None = None
    mapping: str = "simple"
    workers: int | None = None
    command: str = "dare climate"
    stage_out: tuple[str | None, ...] = field(default=())


@dataclass(frozen=True)
class Plan:
    """What a job will do: its tiles and where it writes."""

    job: IndexJob
    local_inputs: tuple[str, ...]
    tiles: tuple[Tile, ...]
    input_bytes: int = 0
    largest_tile_bytes: int = 0

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description (for ``--dry-run``)."""
        return {
            "inputs": list(self.job.inputs),
            "indices": [r.index for r in self.job.requests],
            "outputs": [str(p) for p in self.job.outputs],
            "tiles": len(self.tiles),
            "tile_selections": [dict((d, [a, b]) for d, a, b in t.selection)
                                for t in self.tiles[:5]],
            "mapping": self.job.mapping,
            "workers": self.job.workers,
            "input_mb": round(self.input_bytes / 2**20, 1),
            # One tile of the index variables in memory per worker, plus icclim's intermediates
            # (about as large again, measured on SU and TX90p).
            "estimated_memory_per_worker_mb": round(2 * self.largest_tile_bytes / 2**20, 1),
        }


#: Automatic tiles hold between these many bytes of input.
MIN_TILE_BYTES = 16 * 2**20
MAX_TILE_BYTES = 256 * 2**20


def automatic_tile_bytes(input_bytes: int, parallelism: int) -> int:
    """Input bytes per tile when none are given: two tiles per worker, within 16-256 MiB.

    icclim's set-up costs about a second per call, so tiles should be few; two per worker
    balance the load, and the cap bounds the memory of each worker.
    """
    share = -(-input_bytes // (2 * max(parallelism, 1)))
    return min(MAX_TILE_BYTES, max(MIN_TILE_BYTES, share))


def plan_job(job: IndexJob, local_inputs: Sequence[str]) -> Plan:
    """Plan the tiles of a job whose inputs are already local paths (or OPeNDAP URLs)."""
    paths = list(local_inputs)
    dataset = open_inputs(paths)
    try:
        names = list(dict.fromkeys(
            name for request in job.requests
            for name in index_variables(dataset, request, paths)))
        input_bytes = sum(int(dataset[name].nbytes) for name in names)
        parallelism = 1 if job.mapping == "simple" else (job.workers or os.cpu_count() or 1)
        tiles = plan_tiles(paths, job.requests[0], job.tile,
                           automatic_tile_bytes(input_bytes, parallelism))
        largest = 0
        for tile in tiles:
            selected = dataset[names].isel(tile.indexers())
            largest = max(largest, sum(int(selected[name].nbytes) for name in names))
    finally:
        dataset.close()
    return Plan(job, tuple(paths), tuple(tiles), input_bytes, largest)


def history_entry(job: IndexJob, request: IndexRequest) -> str:
    """What ``dare`` did, for the output's ``history`` attribute."""
    return (f"{job.command}: icclim index {request.index} over "
            f"{' '.join(shlex.quote(i) for i in job.inputs)} in spatial tiles "
            f"(mapping {job.mapping})")


def run_job(plan: Plan, observers: Iterable[Observer] = ()) -> list[dict[str, Any]]:
    """Compute the plan on its mapping, then stage out; return one record per written file.

    A file with a stage-out target (``IndexJob.stage_out``) is uploaded there once written,
    and its record gains ``"staged_out"``: the target.

    Raises
    ------
    ClimateError
        A tile failed, or an upload did (nothing partial appears under the target's name).
    """
    job = plan.job
    graph = WorkflowGraph("climate-index")
    compute = IndexTiles(plan.local_inputs, job.requests)
    writer = WriteIndices(plan.local_inputs, job.requests, job.outputs,
                          [history_entry(job, r) for r in job.requests])
    graph.connect(compute, "output", writer, "input")
    options: dict[str, Any] = {}
    if job.mapping == "multi":
        # Workers start from a clean fork server, not from this process: HDF5 keeps one
        # shared handle per open file, so a worker forked while this process has a netCDF
        # file open would share its file offset and crash. The server preloads icclim once.
        multiprocessing.set_forkserver_preload(["dare_cli.climate.pes"])
        options["start_method"] = "forkserver"
    result = run(graph, {compute: list(plan.tiles)}, mapping=job.mapping, workers=job.workers,
                 observers=observers, **options)
    records = sorted(result.output("write"), key=lambda record: record["output"])
    targets = dict(zip((str(path) for path in job.outputs), job.stage_out, strict=False))
    for record in records:
        target = targets.get(str(record["output"]))
        if target:
            stage_out(Path(record["output"]), target)
            record["staged_out"] = target
    return records
