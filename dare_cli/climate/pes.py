"""Thin PEs of the climate indices: tiles in, icclim per tile, one writer per output file.

``IndexTiles`` computes every requested index on one spatial tile (the seed's icclim PE, with
the parameters given when the workflow is created); ``WriteIndices`` (all-to-one) assembles the
tiles of each index, adds a ``history`` entry and writes the file atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dare_cli.climate.compute import (
    IndexRequest,
    Tile,
    add_history,
    assemble,
    compute_tile_requests,
    write_netcdf,
)
from engine import AllToOne, IterativePE, ProcessingElement

__all__ = ["IndexTiles", "WriteIndices", "icclim_version"]


def icclim_version() -> str:
    """Version of the installed icclim."""
    from importlib.metadata import version

    return version("icclim")


class IndexTiles(IterativePE):
    """Compute every request on one tile (read once); emit ``(request number, tile, result)``."""

    def __init__(self, paths: Sequence[str], requests: Sequence[IndexRequest]) -> None:
        super().__init__(id="index")
        self.paths = list(paths)
        self.requests = list(requests)

    def apply(self, tile: Tile) -> Any:
        """Compute every request on ``tile``."""
        results = compute_tile_requests(self.paths, self.requests, tile)
        for number, result in enumerate(results):
            yield number, tile, result


class WriteIndices(ProcessingElement):
    """Gather the tiles of each request; at the end write one netCDF file per request."""

    INPUTS = ()
    OUTPUTS = ("output",)
    STATEFUL = True

    def __init__(self, paths: Sequence[str], requests: Sequence[IndexRequest],
                 outputs: Sequence[Path], history: Sequence[str]) -> None:
        super().__init__(id="write", instances=1)
        self.add_input("input", grouping=AllToOne())
        self.paths = list(paths)
        self.requests = list(requests)
        self.outputs = list(outputs)
        self.history = list(history)

    def setup(self) -> None:
        """Start with no tile."""
        self.parts: dict[int, list[tuple[Tile, Any]]] = {i: [] for i in range(len(self.requests))}

    def process(self, port: str | None, data: Any) -> None:
        """Keep one computed tile."""
        number, tile, result = data
        self.parts[number].append((tile, result))

    def flush(self) -> None:
        """Assemble and write each index."""
        for number, request in enumerate(self.requests):
            parts = sorted(self.parts[number], key=lambda part: part[0].number)
            dataset = add_history(assemble(parts, self.paths, request), self.history[number])
            # icclim's own file writer records its version; so do we (its other run-context
            # attributes, command and git commit of the working folder, describe icclim's CLI
            # run and are not copied).
            dataset.attrs["icclim_version"] = icclim_version()
            path = write_netcdf(dataset, self.outputs[number])
            self.write("output", {"index": request.index, "output": str(path),
                                  "tiles": len(parts)})
