"""The geojson stage: the ShakeMap-style ``stationlist.json`` of the pgm stage's rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dare_cli.ra import outputs
from engine.pipeline import StageContext, StageWork

__all__ = ["REJECTING_STAGES", "build", "rejected_so_far"]

#: The stages whose rejected stations the station list reports.
REJECTING_STAGES = ("download", "simulate", "preprocess", "norm", "match", "pgm")


def rejected_so_far(run_dir: Path) -> list[dict[str, Any]]:
    """Stations rejected by any finished stage (from the stage markers)."""
    rejected: dict[str, dict[str, Any]] = {}
    for name in REJECTING_STAGES:
        marker = run_dir / name / ".stage.json"
        if marker.exists():
            for record in json.loads(marker.read_text()).get("summary", {}).get("rejected", []):
                rejected.setdefault(record["station"], record)
    return sorted(rejected.values(), key=lambda r: r["station"])


def build(context: StageContext) -> StageWork:
    """Write the station list in the calling process (no graph)."""

    def finish(result: Any) -> dict[str, Any]:
        pgm = json.loads((context.stage_dir("pgm") / "pgm.json").read_text())
        rejected = rejected_so_far(context.run_dir)
        outputs.write_stationlist(context.out_dir / "stationlist.json", pgm["event"],
                                  pgm["rows"], pgm["misfits"], rejected,
                                  pgm.get("residuals", []))
        return {"processed": sorted({r["station"] for r in pgm["rows"]}), "rejected": [],
                "flags": []}

    return StageWork(None, finish=finish)
