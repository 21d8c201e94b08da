"""Maps and waveform plots of the Rapid Assessment: offline, in worker processes, sane images.

Station coordinates are those of the bundled Ridgecrest example's StationXML (CI network).
"""

from __future__ import annotations

import math
import multiprocessing
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from matplotlib.image import imread
from obspy import Stream, Trace, UTCDateTime

from dare_cli.ra import plots

EVENT = {"id": "ci38457511", "time": "2019-07-06T03:19:53", "latitude": 35.770,
         "longitude": -117.599, "depth_km": 8.0, "magnitude": 7.1}
STATIONS = [  # code, latitude, longitude, distance (km), observed PGA of the larger horizontal
    ("CCC", 35.52495, -117.36453, 34.5, 0.45),
    ("JRC2", 35.98249, -117.80885, 30.2, 2.9),
    ("LRL", 35.479542, -117.682121, 33.1, 2.0),
    ("MPM", 36.057991, -117.489014, 33.5, 1.5),
    ("SLA", 35.890949, -117.283318, 31.5, 0.9),
    ("WBM", 35.60839, -117.89049, 31.9, 3.6),
]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BACKGROUND = np.array([247, 245, 240])  # the map's background colour, plots._BACKGROUND


def rows() -> list[dict[str, Any]]:
    result = []
    for code, latitude, longitude, distance, pga in STATIONS:
        base = {"station": f"CI.{code}", "network": "CI", "code": code, "name": code,
                "latitude": latitude, "longitude": longitude, "distance_km": distance,
                "location": ""}
        result.append(dict(base, channel="HNE", kind="observed", pga=pga, pgv=pga / 10))
        result.append(dict(base, channel="HNN", kind="observed", pga=pga * 0.7, pgv=pga / 12))
        result.append(dict(base, channel="HNZ", kind="observed", pga=pga * 2, pgv=pga / 5))
        result.append(dict(base, channel="HNE", kind="synthetic", pga=pga * 0.6, pgv=pga / 9))
    return result


def misfits() -> list[dict[str, Any]]:
    return [{"station": f"CI.{code}", "channel": channel, "metric": "pga",
             "misfit": 0.3 * math.sin(index + len(channel))}
            for index, (code, *_) in enumerate(STATIONS) for channel in ("HNE", "HNN", "maxh")]


def check_png(path: Path, minimum_bytes: int = 10_000) -> np.ndarray:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > minimum_bytes
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left
    return (imread(path)[..., :3] * 255).round().astype(int)


def map_frame(image: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of the map's background: the inside of the map frame."""
    ys, xs = np.nonzero((np.abs(image - BACKGROUND) <= 1).all(axis=-1))
    return slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)


def test_pga_map_offline_and_sane(tmp_path, offline):
    path = tmp_path / "out" / "pga_map.png"
    started = time.perf_counter()
    assert plots.plot_pga_map(path, EVENT, rows()) == path
    elapsed = time.perf_counter() - started
    assert elapsed < 3.0 * 2  # 0.3 to 1.2 s measured; generous under a loaded machine
    image = check_png(path)
    assert image.shape[0] > 500 and image.shape[1] > 700
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 200
    assert not any(p.is_file() for p in offline.rglob("*"))  # nothing cached by cartopy

    rows_, cols = map_frame(image)
    inside = image[rows_, cols]
    # the epicentre is the frame's centre here (stations within the default 214 km radius):
    # a black star
    cy, cx = inside.shape[0] // 2, inside.shape[1] // 2
    assert inside[cy - 2:cy + 3, cx - 2:cx + 3].sum(axis=-1).min() < 100
    # the Pacific coast in the south-west corner: blue line pixels (not in the colour map)
    bluish = ((inside[..., 2] - inside[..., 0] > 40) & (inside[..., 1] > 60)
              & (inside[..., 1] < 200))
    height, width = bluish.shape
    assert bluish[height // 2:, : width // 2].sum() > 100
    # stations: coloured pixels of the plasma colour map (strong red or blue, weak green)
    plasma = (np.maximum(inside[..., 0], inside[..., 2]) - inside[..., 1]) > 120
    assert plasma[height // 4: 3 * height // 4, width // 4: 3 * width // 4].sum() > 6 * 15


def test_basemap_layers_hold_california():
    box = (-121.0, 32.5, -114.0, 38.5)
    coast = shapely.MultiLineString([g for g in plots.clipped_layer("coastline", box)])
    states = shapely.union_all(plots.clipped_layer("states", box))
    # Santa Monica pier on the coast; the California-Nevada line at 36 N near 115.97 W
    assert coast.distance(shapely.Point(-118.497, 34.009)) < 0.03
    assert states.distance(shapely.Point(-115.97, 36.0)) < 0.05
    assert plots.clipped_layer("borders", box)  # Mexico
    lakes = shapely.union_all(plots.clipped_layer("lakes", box))
    assert lakes.contains(shapely.Point(-115.83, 33.30))  # the Salton Sea
    assert lakes.contains(shapely.Point(-114.60, 36.15))  # Lake Mead
    assert coast.bounds[0] >= -121.0 and coast.bounds[2] <= -114.0  # clipped to the box


def test_basemap_wraps_the_antimeridian():
    # Fiji: Viti Levu at 178 E, Lau islands at 178.5 W; asked for as -183 .. -176 degrees
    parts = plots.clipped_layer("coastline", (-183.0, -19.5, -176.0, -15.0))
    bounds = shapely.bounds(np.array(parts, dtype=object))
    assert bounds[:, 0].min() < -180.0 < bounds[:, 2].max()
    assert bounds[:, 0].min() >= -183.0 and bounds[:, 2].max() <= -176.0


def test_misfit_map(tmp_path, offline):
    path = plots.plot_misfit_map(tmp_path / "misfit.png", EVENT, misfits(), rows=rows())
    image = check_png(path)
    rows_, cols = map_frame(image)
    inside = image[rows_, cols]
    reddish = (inside[..., 0] - inside[..., 2] > 60) & (inside[..., 1] < 200)
    blueish = (inside[..., 2] - inside[..., 0] > 60) & (inside[..., 1] < 200)
    assert reddish.sum() > 30 and blueish.sum() > 30  # misfits of both signs


def test_misfit_map_takes_coordinates_from_misfit_rows(tmp_path):
    located = [dict(m, latitude=lat, longitude=lon)
               for m, (_, lat, lon, *_) in zip(misfits()[::3], STATIONS, strict=True)]
    check_png(plots.plot_misfit_map(tmp_path / "m.png", EVENT, located, channel="HNE"))
    with pytest.raises(ValueError, match=re.escape("no coordinates for stations CI.CCC")):
        plots.plot_misfit_map(tmp_path / "n.png", EVENT, misfits()[:1])
    spectral = [dict(m, metric="psa1") for m in misfits()]  # "psa1" is "psa1.0"
    check_png(plots.plot_misfit_map(tmp_path / "s.png", EVENT, spectral, "psa1.0", rows=rows()))
    with pytest.raises(ValueError, match=re.escape("no psa1.0 misfits")):
        plots.plot_misfit_map(tmp_path / "n.png", EVENT, misfits(), "psa1.0")
    with pytest.raises(ValueError, match="unknown metric"):
        plots.plot_misfit_map(tmp_path / "n.png", EVENT, misfits(), metric="mmi", rows=rows())


def _streams() -> tuple[Stream, Stream]:
    origin = UTCDateTime(EVENT["time"])
    t = np.arange(0, 120, 0.01)
    observed, synthetic = Stream(), Stream()
    for index, component in enumerate("ZNE"):
        envelope = np.exp(-((t - 30) / 8) ** 2)
        observed += Trace(0.1 * envelope * np.sin(2 * np.pi * (0.5 + index) * t),
                          {"network": "CI", "station": "CCC", "channel": f"HN{component}",
                           "sampling_rate": 100.0, "starttime": origin - 20})
        synthetic += Trace(0.07 * envelope * np.sin(2 * np.pi * (0.5 + index) * (t - 1)),
                           {"network": "CI", "station": "CCC", "channel": f"HX{component}",
                            "sampling_rate": 20.0, "starttime": origin - 20})
        synthetic[-1].data = synthetic[-1].data[::5]
    return observed, synthetic


def test_waveforms(tmp_path, offline):
    observed, synthetic = _streams()
    path = plots.plot_waveforms(tmp_path / "CI.CCC.png", "CI.CCC", observed, synthetic, "VEL",
                                origin_time=EVENT["time"])
    image = check_png(path)
    assert image.shape[0] > image.shape[1] * 0.6  # three stacked panels
    red = (image[..., 0] > 180) & (image[..., 1] < 90) & (image[..., 2] < 90)
    dark = image.sum(axis=-1) < 120
    assert red.sum() > 500 and dark.sum() > 500  # both traces drawn
    with pytest.raises(ValueError, match="quantity must be one of"):
        plots.plot_waveforms(tmp_path / "x.png", "CI.CCC", observed, synthetic, "SPEED")
    with pytest.raises(ValueError, match=re.escape("CI.CCC: no traces")):
        plots.plot_waveforms(tmp_path / "x.png", "CI.CCC", Stream(), Stream())


@pytest.mark.parametrize("method", [
    "fork", pytest.param("spawn", marks=pytest.mark.slow)])
def test_plots_in_worker_processes(tmp_path, method):
    context = multiprocessing.get_context(method)
    observed, synthetic = _streams()
    with context.Pool(1) as pool:
        maps = pool.apply_async(plots.plot_pga_map, (tmp_path / "map.png", EVENT, rows()))
        waves = pool.apply_async(plots.plot_waveforms,
                                 (tmp_path / "wf.png", "CI.CCC", observed, synthetic),
                                 {"origin_time": EVENT["time"]})
        assert maps.get(timeout=120) == tmp_path / "map.png"
        assert waves.get(timeout=120) == tmp_path / "wf.png"
    check_png(tmp_path / "map.png")
    check_png(tmp_path / "wf.png")
