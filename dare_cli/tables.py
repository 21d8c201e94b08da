"""Rich tables of the command line: a finished run's counters, the installed mappings."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table

from engine.observe import RunSummary

__all__ = ["mappings_table", "summary_table"]


def summary_table(summary: RunSummary) -> Table:
    """Per-PE counters of a finished run, with mapping, workers and wall time as caption."""
    table = Table(
        title="run summary",
        caption=f"mapping {summary.mapping}, {summary.workers} worker(s), "
        f"{summary.wall_seconds:.3f} s wall",
    )
    table.add_column("PE")
    for column in ("instances", "units in", "units out", "process s"):
        table.add_column(column, justify="right")
    for pe_id, stats in summary.pes.items():
        seconds = f"{stats.process_seconds:.3f}" if summary.timed else "-"
        table.add_row(pe_id, str(stats.instances), str(stats.units_in), str(stats.units_out),
                      seconds)
    return table


def mappings_table(mappings: Mapping[str, str]) -> Table:
    """Installed mappings and their descriptions."""
    table = Table(title="mappings")
    table.add_column("name", style="bold")
    table.add_column("description")
    for name, description in mappings.items():
        table.add_row(name, description)
    return table
