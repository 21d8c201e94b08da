"""The ground-motion model's side of the pgm stage: its medians as rows, and residuals.

What :mod:`dare_cli.ra.gmpe` predicts for the run's event at its stations becomes pgm rows of
kind ``gmpe``, and the observed and synthetic RotD50 are compared with those medians.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from obspy.core.event import Event

from dare_cli.ra import gmpe
from dare_cli.ra.config import RAConfig
from dare_cli.ra.stages.preprocess import hypocentre

__all__ = ["gmpe_earthquake", "gmpe_residuals", "gmpe_rows"]


def gmpe_earthquake(event: Event, config: RAConfig) -> gmpe.Earthquake:
    """The event for the ground-motion model: Mw, hypocentre, and rake and dip if known.

    The rake and dip are those of ``[source]`` when given, else of the event's preferred
    focal mechanism (its first nodal plane).
    """
    hypo = hypocentre(event, config)
    rake, dip = config.source.rake, config.source.dip
    if rake is None:
        mechanism = event.preferred_focal_mechanism() or (
            event.focal_mechanisms[0] if event.focal_mechanisms else None)
        planes = getattr(mechanism, "nodal_planes", None)
        plane = getattr(planes, "nodal_plane_1", None)
        if plane is not None and plane.rake is not None and plane.dip is not None:
            rake, dip = float(plane.rake), float(plane.dip)
    if dip is not None and not 0 < dip <= 90:  # a horizontal plane: no dip for the model
        dip = None
    return gmpe.Earthquake(hypo.magnitude, hypo.latitude, hypo.longitude,
                           max(hypo.depth_km, 0.0), rake, dip)


def gmpe_rows(predictions: Sequence[gmpe.Prediction],
              infos: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The predicted medians as pgm rows (kind ``gmpe``), with their sigmas."""
    rows = []
    for prediction in predictions:
        motions = {k: m for k, m in prediction.motions.items() if m is not None}
        rows.append({
            **infos[prediction.station], "kind": "gmpe", "band": "record",
            "channel": "rotd50", "component": "rotd50", "location": "",
            **{key: motion.median for key, motion in motions.items()},
            "sigma_log10": {key: motion.sigma_log10 for key, motion in motions.items()},
            "gmpe": {"model": prediction.model, "library": prediction.library,
                     "component": prediction.component, "vs30": prediction.vs30,
                     "mechanism": prediction.mechanism,
                     "rjb_km": round(prediction.distances.rjb, 3),
                     "rrup_km": round(prediction.distances.rrup, 3),
                     "outside_range": list(prediction.outside_range),
                     "notes": list(prediction.notes)},
        })
    return rows


def gmpe_residuals(rows: Sequence[Mapping[str, Any]],
                   predictions: Sequence[gmpe.Prediction]) -> list[dict[str, Any]]:
    """Observed (record band) and synthetic RotD50 against the predicted medians."""
    by_station = {p.station: p for p in predictions}
    out = []
    for row in rows:
        prediction = by_station.get(row["station"])
        if prediction is None or row["component"] != "rotd50" or row["kind"] == "gmpe":
            continue
        if (row["kind"], row["band"]) not in (("observed", "record"), ("synthetic", "common")):
            continue
        for metric, motion in prediction.motions.items():
            value = row.get(metric)
            if motion is None or value is None or not value > 0:
                continue
            result = gmpe.residual(float(value), motion)
            out.append({"station": row["station"], "kind": row["kind"], "band": row["band"],
                        "metric": metric, "log10": result.log10,
                        "normalized": result.normalized, "model": prediction.model})
    return out
