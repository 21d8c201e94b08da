"""Maps, residual and waveform plots of the Rapid Assessment: offline, in worker processes,
framed on the stations, labels that never overlap, colour bars that read values, gaps drawn
as gaps, synthetics visible whatever their amplitude.

Station coordinates are those of the bundled Ridgecrest example's StationXML (CI network).
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.image import imread
from obspy import Stream, Trace, UTCDateTime, read_inventory
from PIL import Image
from ra_helpers import EXAMPLE

from dare_cli.ra import plots
from dare_cli.ra.outputs import STANDARD_GRAVITY

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


def rows(stations: list[tuple[Any, ...]] = STATIONS) -> list[dict[str, Any]]:
    result = []
    for code, latitude, longitude, distance, pga in stations:
        base = {"station": f"CI.{code}", "network": "CI", "code": code, "name": code,
                "latitude": latitude, "longitude": longitude, "distance_km": distance,
                "location": ""}
        result.append(dict(base, channel="HNE", kind="observed", pga=pga, pgv=pga / 10))
        result.append(dict(base, channel="HNN", kind="observed", pga=pga * 0.7, pgv=pga / 12))
        result.append(dict(base, channel="HNZ", kind="observed", pga=pga * 2, pgv=pga / 5))
        result.append(dict(base, channel="HNE", kind="synthetic", pga=pga * 0.6, pgv=pga / 9))
    return result


def misfits(stations: list[tuple[Any, ...]] = STATIONS) -> list[dict[str, Any]]:
    return [{"station": f"CI.{code}", "channel": channel, "metric": "pga",
             "misfit": 0.3 * math.sin(index + len(channel))}
            for index, (code, *_) in enumerate(stations) for channel in ("HNE", "HNN", "maxh")]


def example_stations() -> list[tuple[str, float, float, float, float]]:
    """The ten stations of the bundled example (their StationXML), with made-up PGAs."""
    stations = []
    for index, path in enumerate(sorted((EXAMPLE / "stations").glob("*.xml"))):
        site = read_inventory(str(path))[0][0]
        distance = math.hypot((site.latitude - EVENT["latitude"]) * 111.2,
                              (site.longitude - EVENT["longitude"]) * 90.2)
        stations.append((site.code, site.latitude, site.longitude, distance,
                         1.0 + 0.5 * index))
    return stations


def check_png(path: Path, minimum_bytes: int = 10_000) -> np.ndarray:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > minimum_bytes
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left
    with Image.open(path) as image:  # written at 200 dpi
        assert [round(d) for d in image.info["dpi"]] == [plots.DPI, plots.DPI]
    return (imread(path)[..., :3] * 255).round().astype(int)


def map_frame(image: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of the map's background: the inside of the map frame."""
    ys, xs = np.nonzero((np.abs(image - BACKGROUND) <= 1).all(axis=-1))
    return slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)


def label_boxes(figure: Any) -> list[tuple[str, Any]]:
    """The station labels of a figure and their rendered bounding boxes (pixels)."""
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else \
        FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    return [(text.get_text(), text.get_window_extent(renderer))
            for text in figure.findobj(lambda a: a.get_gid() == plots.LABEL_GID)]


def assert_no_overlap(boxes: list[tuple[str, Any]]) -> None:
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        assert not box_a.overlaps(box_b), f"labels {a} and {b} overlap"


def marker_boxes(ax: Any, xy: np.ndarray, radius_points: float = 4.0) -> list[Any]:
    from matplotlib.transforms import Bbox

    radius = radius_points * ax.figure.dpi / 72.0
    return [Bbox.from_extents(x - radius, y - radius, x + radius, y + radius)
            for x, y in ax.transData.transform(xy)]


# -- maps ----------------------------------------------------------------------------------------
def test_pga_map_offline_and_sane(tmp_path, offline):
    path = tmp_path / "out" / "pga_map.png"
    assert plots.plot_pga_map(path, EVENT, rows()) == path  # its cost: benchmarks/costs_bench.py
    image = check_png(path)
    assert image.shape[0] > 1000 and image.shape[1] > 1200  # 200 dpi
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 200
    assert not any(p.is_file() for p in offline.rglob("*"))  # nothing cached by cartopy

    rows_, cols = map_frame(image)
    inside = image[rows_, cols]
    height, width = inside.shape[:2]
    # the epicentre's black star, and the stations' coloured markers (the only saturated
    # colours inside the frame) spread over it: it is zoomed on them
    assert (inside.sum(axis=-1) < 60).sum() > 100
    coloured = (inside.max(axis=-1) - inside.min(axis=-1)) > 80
    ys, xs = np.nonzero(coloured)
    assert coloured.sum() > 6 * 100
    assert np.ptp(ys) > 0.6 * height and np.ptp(xs) > 0.6 * width


def test_map_frame_zooms_on_the_stations(offline):
    figure = plots.pga_map_figure(EVENT, rows())
    ax = figure.axes[0]
    west, east, south, north = ax.get_extent(crs=ax.projection)
    # stations within 35 km of the epicentre: a frame about 90 km across, not 430 km
    # (the former minimum of 50 km * 2^(M-5) around the epicentre)
    assert 60e3 < east - west < 120e3 and 60e3 < north - south < 120e3
    xy = np.array([[o.get_offsets()[:, 0].min(), o.get_offsets()[:, 0].max()]
                   for o in ax.collections if len(o.get_offsets())])
    assert west < xy.min() and xy.max() < east
    # a minimum radius still holds when asked for
    wide = plots.pga_map_figure(EVENT, rows(), min_radius_km=250.0)
    west, east, south, north = wide.axes[0].get_extent(crs=wide.axes[0].projection)
    assert east - west >= 500e3 and north - south >= 500e3


def test_wide_map_draws_the_basemap(tmp_path, offline):
    image = check_png(plots.plot_pga_map(tmp_path / "wide.png", EVENT, rows(),
                                         min_radius_km=220.0))
    rows_, cols = map_frame(image)
    inside = image[rows_, cols]
    # the Pacific coast in the south-west corner: blue line pixels (not in the colour map)
    bluish = ((inside[..., 2] - inside[..., 0] > 40) & (inside[..., 1] > 60)
              & (inside[..., 1] < 200))
    height, width = bluish.shape
    assert bluish[height // 2:, : width // 2].sum() > 100


def test_pga_map_says_which_component_and_reads_values(offline):
    rotd50 = [dict(r, channel="rotd50", pga=r["pga"] * 0.8) for r in rows()
              if r["channel"] == "HNE" and r["kind"] == "observed"]
    figure = plots.pga_map_figure(EVENT, rows() + rotd50)
    ax, bar = figure.axes[0], figure.axes[1]
    assert "Observed PGA, RotD50, record band" in ax.get_title()
    assert bar.get_ylabel() == "observed PGA, RotD50 (%g)"
    # the colour bar's ticks span the data: the smallest and largest values are within
    # its first and last ticks, which are its ends
    values = [0.8 * pga / STANDARD_GRAVITY * 100 for *_, pga in STATIONS]
    ticks = [t for t in bar.get_yticks() if bar.get_ylim()[0] <= t <= bar.get_ylim()[1]]
    assert ticks[0] <= min(values) and ticks[-1] >= max(values)
    assert ticks[0] == pytest.approx(bar.get_ylim()[0]) and ticks[-1] == pytest.approx(
        bar.get_ylim()[1])
    assert len(ticks) >= 4
    labels = [t.get_text() for t in bar.get_yticklabels()]
    assert labels == ["2", "5", "10", "20", "50"]  # 1-2-5 over 3.7 to 29 %g, plain numbers
    # a station without RotD50 takes its larger horizontal; the title says so
    mixed = plots.pga_map_figure(EVENT, rows() + rotd50[1:])
    assert "1 station with one horizontal" in mixed.axes[0].get_title()
    maxh = plots.pga_map_figure(EVENT, rows())
    assert "larger horizontal component" in maxh.axes[0].get_title()
    with pytest.raises(ValueError, match="component must be"):
        plots.pga_map_figure(EVENT, rows(), component="geometric mean")


def test_misfit_map(tmp_path, offline):
    path = plots.plot_misfit_map(tmp_path / "misfit.png", EVENT, misfits(), rows=rows())
    image = check_png(path)
    rows_, cols = map_frame(image)
    inside = image[rows_, cols]
    reddish = (inside[..., 0] - inside[..., 2] > 60) & (inside[..., 1] < 200)
    blueish = (inside[..., 2] - inside[..., 0] > 60) & (inside[..., 1] < 200)
    assert reddish.sum() > 100 and blueish.sum() > 100  # misfits of both signs


def test_misfit_colour_bar_is_centred_and_spans_the_data(offline):
    figure = plots.misfit_map_figure(EVENT, misfits(), rows=rows())
    ax, bar = figure.axes[0], figure.axes[1]
    assert "PGA, larger horizontal, common band" in ax.get_title()
    largest = max(abs(m["misfit"]) for m in misfits() if m["channel"] == "maxh")
    low, high = bar.get_ylim()
    assert low == -high and largest <= high <= largest + 0.2
    ticks = [t for t in bar.get_yticks() if low - 1e-9 <= t <= high + 1e-9]
    assert ticks[0] == pytest.approx(low) and ticks[-1] == pytest.approx(high)
    assert 0.0 in [round(t, 9) for t in ticks]
    labels = [t.get_text() for t in bar.get_yticklabels()]
    assert "0  (\u00d71)" in labels
    assert any(re.fullmatch(r"\+0\.\d0  \(\u00d7\d\.?\d*\)", label) for label in labels)
    rotd50 = [dict(m, channel="rotd50") for m in misfits() if m["channel"] == "maxh"]
    assert "PGA, RotD50" in plots.misfit_map_figure(EVENT, rotd50, rows=rows()).axes[
        0].get_title()


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


@pytest.mark.parametrize("which", ["pga", "misfit"])
def test_labels_never_overlap_on_the_example(which, offline):
    """Every code of the example's ten stations is written, and no two labels, no label and
    a marker, no label and the epicentre overlap: measured on the rendered boxes."""
    stations = example_stations()
    figure = (plots.pga_map_figure(EVENT, rows(stations)) if which == "pga" else
              plots.misfit_map_figure(EVENT, misfits(stations), rows=rows(stations)))
    boxes = label_boxes(figure)
    assert sorted(code for code, _ in boxes) == sorted(s[0] for s in stations)
    assert_no_overlap(boxes)
    ax = figure.axes[0]
    frame = ax.get_window_extent()
    points = np.vstack([o.get_offsets() for o in ax.collections if len(o.get_offsets())])
    star = next(line for line in ax.get_lines() if line.get_label() == "epicentre")
    markers = marker_boxes(ax, np.vstack([points, star.get_xydata()]))
    for code, box in boxes:
        assert frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1), code
        assert not any(box.overlaps(marker) for marker in markers), code


def test_crowded_map_leaves_labels_out_rather_than_overlap(offline):
    generator = np.random.default_rng(7)
    crowd = [(f"S{i:03d}", EVENT["latitude"] + generator.normal(0, 0.25),
              EVENT["longitude"] + generator.normal(0, 0.3), 30.0,
              float(generator.uniform(0.5, 5.0))) for i in range(200)]
    figure = plots.pga_map_figure(EVENT, rows(crowd))  # its cost: benchmarks/costs_bench.py
    boxes = label_boxes(figure)
    assert 20 < len(boxes) < 200  # 79 measured
    assert_no_overlap(boxes)
    notes = [t.get_text() for t in figure.axes[0].texts if "left out" in t.get_text()]
    assert notes == [f"{200 - len(boxes)} codes left out where stations crowd"]


# -- residuals against the ground-motion model ---------------------------------------------------
METRICS = ("pga", "pgv", "psa0.3", "psa1", "psa3")


def gmpe_rows_and_residuals(stations: list[tuple[Any, ...]]
                            ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Motion rows with a gmpe row per station (Rjb, sigmas), and residuals of both kinds."""
    motion = rows(stations)
    residuals = []
    for index, (code, latitude, longitude, distance, _) in enumerate(stations):
        motion.append({"station": f"CI.{code}", "network": "CI", "code": code, "name": code,
                       "latitude": latitude, "longitude": longitude, "distance_km": distance,
                       "kind": "gmpe", "band": "record", "channel": "rotd50",
                       "sigma_log10": {m: 0.28 + 0.01 * k for k, m in enumerate(METRICS)},
                       "gmpe": {"model": "BSSA14", "component": "RotD50", "vs30": 760.0,
                                "rjb_km": distance - 8.0, "rrup_km": distance - 6.0}})
        for k, metric in enumerate(METRICS):
            for kind, shift in (("observed", 0.0), ("synthetic", 0.25)):
                value = 0.4 * math.sin(1.7 * index + k) + shift
                residuals.append({"station": f"CI.{code}", "kind": kind, "metric": metric,
                                  "log10": value, "normalized": value / 0.3,
                                  "model": "BSSA14"})
    return motion, residuals


def test_residuals_plot(tmp_path, offline):
    stations = example_stations()[:9]
    motion, residuals = gmpe_rows_and_residuals(stations)
    path = plots.plot_residuals(tmp_path / "residuals.png", EVENT, residuals, motion)
    image = check_png(path)
    assert image.shape[1] > 2000  # three panels across, 200 dpi
    figure = plots.residuals_figure(EVENT, residuals, motion)
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["PGA", "PGV", "PSA(0.3 s)", "PSA(1 s)",
                                                 "PSA(3 s)"]
    pga = panels[0]
    observed, synthetic = pga.collections[-1], pga.collections[-2]
    expected = {(s[3] - 8.0, r["log10"]) for s, r in zip(
        stations, [r for r in residuals if r["metric"] == "pga" and r["kind"] == "observed"],
        strict=True)}
    assert {tuple(np.round(p, 9)) for p in observed.get_offsets()} == {
        tuple(np.round(p, 9)) for p in expected}
    assert len(synthetic.get_offsets()) == 9
    assert panels[3].get_xlabel() == "Joyner-Boore distance Rjb (km)"  # the bottom panels
    assert panels[2].get_xlabel() == "Joyner-Boore distance Rjb (km)"  # nothing below it
    assert pga.get_xlabel() == ""
    low, high = pga.get_ylim()
    assert low == -high and high > 2 * 0.28  # the 2 sigma band fits
    band = pga.collections[0].get_paths()[0].vertices  # the +-1 sigma band: +-0.28
    assert band[:, 1].max() == pytest.approx(0.28) and band[:, 1].min() == pytest.approx(-0.28)
    assert "mean obs" in pga.texts[0].get_text()
    assert "BSSA14" in figure.get_suptitle()
    boxes = label_boxes(figure)
    assert len(boxes) >= 5 * 7  # codes placed in every panel (a few may lack room)
    for ax in panels:  # no overlap within a panel
        inside = [(c, b) for c, b in boxes if ax.get_window_extent().contains(b.x0, b.y0)]
        assert_no_overlap(inside)
    # epicentral distance on request
    assert plots.residuals_figure(EVENT, residuals, motion, distance="epicentral").axes[
        3].get_xlabel() == "epicentral distance (km)"


@pytest.mark.slow
def test_residuals_plot_reads_with_200_stations(tmp_path, offline):
    generator = np.random.default_rng(3)
    crowd = [(f"S{i:03d}", 35.0 + generator.uniform(-2, 2), -117.0 + generator.uniform(-2, 2),
              float(generator.uniform(12, 300)), 1.0) for i in range(200)]
    motion, residuals = gmpe_rows_and_residuals(crowd)
    figure = plots.residuals_figure(EVENT, residuals, motion)
    assert not label_boxes(figure)  # points only beyond 20 stations
    assert figure.axes[0].get_xscale() == "log"  # Rjb 4 to 292 km
    assert len(figure.axes[0].collections[-1].get_offsets()) == 200
    check_png(plots.plot_residuals(tmp_path / "many.png", EVENT, residuals, motion))
    with pytest.raises(ValueError, match="no residuals"):
        plots.residuals_figure(EVENT, [], motion)


# -- waveforms -----------------------------------------------------------------------------------
def _streams(synthetic_scale: float = 0.07, components: str = "ZNE") -> tuple[Stream, Stream]:
    origin = UTCDateTime(EVENT["time"])
    t = np.arange(0, 120, 0.01)
    observed, synthetic = Stream(), Stream()
    for index, component in enumerate(components):
        envelope = np.exp(-((t - 30) / 8) ** 2)
        observed += Trace(0.1 * envelope * np.sin(2 * np.pi * (0.5 + index) * t),
                          {"network": "CI", "station": "CCC", "channel": f"HN{component}",
                           "sampling_rate": 100.0, "starttime": origin - 20})
        observed[-1].stats.dare = {"highpass": 0.1, "lowpass": 20.0}
        synthetic += Trace(synthetic_scale * envelope
                           * np.sin(2 * np.pi * (0.5 + index) * (t - 1)),
                           {"network": "CI", "station": "CCC", "channel": f"HX{component}",
                            "sampling_rate": 20.0, "starttime": origin - 20})
        synthetic[-1].data = synthetic[-1].data[::5]
    return observed, synthetic


def test_waveforms(tmp_path, offline):
    observed, synthetic = _streams()
    path = plots.plot_waveforms(tmp_path / "CI.CCC.png", "CI.CCC", observed, synthetic, "VEL",
                                origin_time=EVENT["time"], distance_km=34.5, azimuth=142.4,
                                name="Christmas Canyon China Lake")
    image = check_png(path)
    assert image.shape[0] > image.shape[1] * 0.6  # three stacked panels
    red = (image[..., 0] > 180) & (image[..., 1] < 90) & (image[..., 2] < 90)
    dark = image.sum(axis=-1) < 120
    assert red.sum() > 2000 and dark.sum() > 2000  # both traces drawn
    with pytest.raises(ValueError, match="quantity must be one of"):
        plots.plot_waveforms(tmp_path / "x.png", "CI.CCC", observed, synthetic, "SPEED")
    with pytest.raises(ValueError, match=re.escape("CI.CCC: no traces")):
        plots.plot_waveforms(tmp_path / "x.png", "CI.CCC", Stream(), Stream())


def test_waveforms_say_where_and_which_band(offline):
    observed, synthetic = _streams()
    figure = plots.waveforms_figure("CI.CCC", observed, synthetic, "VEL",
                                    origin_time=EVENT["time"], distance_km=34.5,
                                    azimuth=142.4, name="Christmas Canyon China Lake")
    title = figure.get_suptitle()
    assert "CI.CCC (Christmas Canyon China Lake)" in title
    assert "epicentral distance 34.5 km, azimuth 142\u00b0" in title
    assert "same scale" in title  # peaks within a factor 2
    panels = [ax for ax in figure.axes if ax.get_title(loc="left")]
    assert len(panels) == 3
    assert [ax.get_title(loc="left").split()[0] for ax in panels] == [
        "HNZ/HXZ", "HNN/HXN", "HNE/HXE"]
    assert all("band compared 0.1\u201320 Hz" in ax.get_title(loc="left") for ax in panels)
    assert "log10(syn/obs) -0.15" in panels[0].get_title(loc="left")  # 0.07 / 0.1
    assert panels[-1].get_xlabel().startswith("time after origin (s), origin 2019-07-06")


def test_small_synthetics_get_their_own_scale(tmp_path, offline):
    """A synthetic 100 times smaller than the record is drawn on its own axis, at full
    height, not as a flat line."""
    observed, synthetic = _streams(synthetic_scale=0.001)
    figure = plots.waveforms_figure("CI.CCC", observed, synthetic, "VEL",
                                    origin_time=EVENT["time"])
    assert "each on its own scale (peaks differ by up to a factor 1e+02)" in \
        figure.get_suptitle()
    assert len(figure.axes) == 6  # a right axis per panel
    right = [ax for ax in figure.axes if ax.get_ylabel().startswith("synthetic")]
    assert len(right) == 3
    for ax in right:
        line = ax.get_lines()[0]
        peak = np.nanmax(np.abs(line.get_ydata()))
        assert ax.get_ylim()[1] == pytest.approx(1.12 * peak)
    assert right[0].get_ylabel() == "synthetic ($10^{-3}$ m/s)"
    image = check_png(plots.plot_waveforms(tmp_path / "small.png", "CI.CCC", observed,
                                           synthetic, origin_time=EVENT["time"]))
    red = (image[..., 0] > 180) & (image[..., 1] < 90) & (image[..., 2] < 90)
    ys = np.nonzero(red.any(axis=1))[0]
    panel = image.shape[0] / 3
    assert red.sum() > 2000
    # red spans most of each panel's height: rows with red pixels in every third
    for third in range(3):
        inside = ys[(ys > third * panel) & (ys < (third + 1) * panel)]
        assert np.ptp(inside) > 0.4 * panel


def test_zero_padding_and_gaps_are_drawn_as_gaps(tmp_path, offline):
    """A comparison copy zero-padded where the record does not reach (stats.coverage), and
    a record in two segments: no zeros drawn, the missing spans shaded."""
    origin = UTCDateTime(EVENT["time"])
    t = np.arange(0, 180, 0.02)
    signal = 0.05 * np.exp(-((t - 20) / 6) ** 2) * np.sin(2 * np.pi * t)
    padded = signal.copy()
    padded[t >= 36.0] = 0.0  # the record ends at 36 s: zeros after, coverage 0.2
    copy = Trace(padded, {"network": "CI", "station": "MPM", "channel": "HNE",
                          "sampling_rate": 50.0, "starttime": origin})
    copy.stats.coverage = 0.2
    syn = Trace(0.8 * signal, {"network": "CI", "station": "MPM", "channel": "HXE",
                               "sampling_rate": 50.0, "starttime": origin})
    samples = plots.recorded_samples(copy)
    assert np.isnan(samples[t >= 36.0]).all() and np.isfinite(samples[t < 36.0]).all()
    full = copy.copy()
    full.stats.coverage = 1.0  # zeros of a complete record are data
    assert np.isfinite(plots.recorded_samples(full)).all()
    figure = plots.waveforms_figure("CI.MPM", Stream([copy]), Stream([syn]), "VEL",
                                    origin_time=origin)
    ax = figure.axes[0]
    line = ax.get_lines()[1]  # after the zero line
    assert np.isnan(line.get_ydata()[t >= 36.0]).all()
    shaded = [p for p in ax.patches if p.get_hatch()]
    assert len(shaded) == 1
    x = shaded[0].get_path().vertices[:, 0]
    corners = shaded[0].get_transform().transform(shaded[0].get_path().vertices)
    data = ax.transData.inverted().transform(corners)[:, 0]
    assert data.min() == pytest.approx(36.0, abs=0.05) and data.max() == pytest.approx(180.0,
                                                                                       abs=0.05)
    assert len(x)
    assert "the record covers 20% of the window" in ax.get_title(loc="left")
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert "no observed data" in legend
    # two segments of one channel: the gap between them is shaded, not bridged
    first, second = copy.copy(), copy.copy()
    first.data = signal[:1000].copy()
    second.data = signal[1500:].copy()
    second.stats.starttime = origin + 30.0
    for trace in (first, second):
        trace.stats.coverage = 1.0
    figure = plots.waveforms_figure("CI.MPM", Stream([first, second]), Stream([syn]), "VEL",
                                    origin_time=origin)
    spans = []
    for patch in figure.axes[0].patches:
        if patch.get_hatch():
            corners = patch.get_transform().transform(patch.get_path().vertices)
            spans.append(figure.axes[0].transData.inverted().transform(corners)[:, 0])
    assert len(spans) == 1
    assert spans[0].min() == pytest.approx(20.0, abs=0.05)
    assert spans[0].max() == pytest.approx(30.0, abs=0.05)
    check_png(plots.plot_waveforms(tmp_path / "gaps.png", "CI.MPM", Stream([first, second]),
                                   Stream([syn]), origin_time=origin))


@pytest.mark.parametrize("components", ["E", "NE"])
def test_waveforms_of_one_or_two_components(components, tmp_path, offline):
    observed, synthetic = _streams(components=components)
    figure = plots.waveforms_figure("CI.CCC", observed, synthetic, origin_time=EVENT["time"])
    assert len([ax for ax in figure.axes if ax.get_title(loc="left")]) == len(components)
    image = check_png(plots.plot_waveforms(tmp_path / f"{components}.png", "CI.CCC", observed,
                                           synthetic, origin_time=EVENT["time"]))
    assert image.shape[1] == 2000 or image.shape[1] > 1900  # 10 inches at 200 dpi


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
