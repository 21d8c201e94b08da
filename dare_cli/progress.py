"""Run progress on the stderr console, as an engine :class:`~engine.observe.Observer`."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine.observe import InstanceStats, Observer, RunResult

__all__ = ["RunReporter"]


class RunReporter(Observer):
    """Count units per PE instance; on a terminal, show them live with rich.

    One line per PE: units in and out (summed over its instances), rate, elapsed time, and a
    tick once every instance has finished. After a failure, :meth:`partial_table` reports the
    counts reached, so that one can see which PEs did some work.

    Parameters
    ----------
    console
        Where the live display goes (stderr).
    live
        Whether to show the live display (only on a terminal, and not with ``-q``).
    """

    def __init__(self, console: Console, live: bool) -> None:
        self.console = console
        self.live = live
        self.placement: dict[str, int] = {}
        self.counts: dict[tuple[str, int], tuple[int, int]] = {}
        self.finished: dict[str, int] = {}
        self.sources: set[str] = set()
        self.started = time.monotonic()
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    # -- observer events -----------------------------------------------------------------
    def run_started(self, mapping: str, graph: Any, placement: Mapping[str, int]) -> None:
        """Create one line per visible PE (hidden feeders start with ``_``)."""
        self.started = time.monotonic()
        self.placement = {pe: n for pe, n in placement.items() if not pe.startswith("_")}
        nodes = getattr(graph, "nodes", {})
        self.sources = {pe for pe in self.placement
                        if pe in nodes and getattr(nodes[pe], "is_source", False)}
        if not self.live:
            return
        self._progress = Progress(
            SpinnerColumn(finished_text="[green]✓"),
            TextColumn("{task.description}"),
            TextColumn("{task.fields[units_in]:>9} in"),
            TextColumn("{task.fields[units_out]:>9} out"),
            TextColumn("{task.fields[rate]:>11}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        width = max((len(pe) for pe in self.placement), default=0)
        for pe, instances in self.placement.items():
            label = f"{pe:<{width}} \u00d7{instances}"
            self._tasks[pe] = self._progress.add_task(
                label, total=None, units_in=0, units_out=0, rate=""
            )
        self._progress.start()

    def progress(self, pe_id: str, instance: int, units_in: int, units_out: int) -> None:
        """Record cumulative counts of one instance."""
        self.counts[(pe_id, instance)] = (units_in, units_out)
        self._refresh(pe_id)

    def instance_finished(self, stats: InstanceStats) -> None:
        """Record final counts; tick the PE once all its instances have finished."""
        self.counts[(stats.pe_id, stats.instance)] = (stats.units_in, stats.units_out)
        self.finished[stats.pe_id] = self.finished.get(stats.pe_id, 0) + 1
        self._refresh(stats.pe_id)

    def run_finished(self, result: RunResult) -> None:
        """Remove the live display."""
        self.close()

    def run_failed(self, error: BaseException) -> None:
        """Remove the live display."""
        self.close()

    # -- helpers -------------------------------------------------------------------------
    def totals(self, pe_id: str) -> tuple[int, int]:
        """Units in and out of one PE so far, summed over its instances."""
        units_in = units_out = 0
        for (pe, _), (n_in, n_out) in self.counts.items():
            if pe == pe_id:
                units_in += n_in
                units_out += n_out
        return units_in, units_out

    def _refresh(self, pe_id: str) -> None:
        if self._progress is None or pe_id not in self._tasks:
            return
        units_in, units_out = self.totals(pe_id)
        elapsed = max(time.monotonic() - self.started, 1e-9)
        units = units_out if pe_id in self.sources else units_in
        done = self.finished.get(pe_id, 0) >= self.placement.get(pe_id, 1)
        task = self._tasks[pe_id]
        rate = f"{units / elapsed:,.0f}/s"
        self._progress.update(task, units_in=units_in, units_out=units_out, rate=rate)
        if done:
            self._progress.update(task, total=1, completed=1)

    def close(self) -> None:
        """Stop the live display (idempotent)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def partial_table(self) -> Table | None:
        """Counts reached before a failure, or ``None`` if no PE reported any."""
        if not self.counts:
            return None
        table = Table(title="before the failure")
        table.add_column("PE")
        for column in ("instances done", "units in", "units out"):
            table.add_column(column, justify="right")
        for pe_id, instances in self.placement.items():
            units_in, units_out = self.totals(pe_id)
            table.add_row(pe_id, f"{self.finished.get(pe_id, 0)}/{instances}", str(units_in),
                          str(units_out))
        return table
