"""The download stage: the event, StationXML and waveforms (:mod:`dare_cli.ra.download`)."""

from __future__ import annotations

from typing import Any

from dare_cli.ra.config import RAConfig
from dare_cli.ra.download import download
from dare_cli.ra.stages.common import stations_in
from engine.pipeline import StageContext, StageWork

__all__ = ["build", "download_summary"]


def download_summary(manifest: Any, stations: list[str]) -> dict[str, Any]:
    """The stage summary of a download's manifest.

    Stations outside the radius are ``excluded``, not rejected; the others that failed are
    rejected with the manifest's reason.
    """
    failed = manifest.get("failed", [])
    return {
        "processed": stations,
        "rejected": [
            {"station": f["station"], "stage": "download",
             "reason": f"{f['reason']}: {f.get('detail', '')}".rstrip(": ")}
            for f in failed if f["reason"] != "outside_radius"
        ],
        "excluded": [f["station"] for f in failed if f["reason"] == "outside_radius"],
        "flags": [{"station": f["station"],
                   "flag": f"{f.get('channel', '')} {f.get('flag', '')}: "
                           f"{f.get('detail', '')}".strip(": ")}
                  for f in manifest.get("flags", [])],
        # trace ids kept with an InstrumentSensitivity only (divide, do not deconvolve)
        "sensitivity_only": sorted(f["channel"] for f in manifest.get("flags", [])
                                   if f.get("flag") == "sensitivity_only"),
    }


def build(context: StageContext, *, config: RAConfig) -> StageWork:
    """Download in the calling process (no graph): one client, one manifest."""

    def finish(result: Any) -> dict[str, Any]:
        outcome = download(config.download, context.out_dir)
        return download_summary(outcome.manifest, stations_in(context.out_dir / "stations"))

    return StageWork(None, finish=finish)
