"""The HTML report of a Rapid Assessment run: self-contained, escaped, complete, and a page a
browser renders (headless Chromium) without any network request."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import tomllib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from ra_helpers import EXAMPLE, example_config

from dare_cli.ra import plots, report
from dare_cli.ra.config import load_config
from dare_cli.ra.outputs import STANDARD_GRAVITY
from dare_cli.ra.pipeline import run_assessment

EVENT = {"id": "ci38457511", "time": "2019-07-06T03:19:53.000000Z", "latitude": 35.77,
         "longitude": -117.599, "depth_km": 8.0, "magnitude": 7.1}
HOSTILE = "<script>alert('x')</script> & \"Site\""


class Page(HTMLParser):
    """The parts of a page the tests read: elements, section texts, table rows, images."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.sections: dict[str, list[str]] = {}
        self.rows: list[list[str]] = []
        self.images: list[dict[str, str | None]] = []
        self._section: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    BLOCKS = ("td", "th", "tr", "dt", "dd", "p", "div", "li", "h2", "h3", "br", "figcaption")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.append((tag, values))
        if tag in self.BLOCKS and self._section is not None:
            self.sections[self._section].append(" ")
        if tag == "section":
            self._section = values.get("id")
            self.sections.setdefault(str(self._section), [])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(values)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.BLOCKS and self._section is not None:
            self.sections[self._section].append(" ")
        if tag == "section":
            self._section = None
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._section is not None:
            self.sections[self._section].append(data)
        if self._cell is not None:
            self._cell.append(data)

    def text(self, section: str) -> str:
        return " ".join("".join(self.sections[section]).split())

    def station_row(self, station: str) -> list[str]:
        return next(r for r in self.rows if r and r[0].startswith(station))


def png(width: int = 200, height: int = 120) -> bytes:
    figure = Figure(figsize=(width / 100, height / 100), dpi=100)
    FigureCanvasAgg(figure)
    figure.add_subplot().plot([0, 1], [0, 1])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def small_run(folder: Path) -> Path:
    """A run folder as the stages leave it, by hand: two stations, one rejected."""
    base = {"network": "CI", "location": "", "latitude": 35.5, "longitude": -117.4,
            "distance_km": 34.5, "azimuth": 142.0}
    ccc = dict(base, station="CI.CCC", code="CCC", name=HOSTILE)
    rows = [
        dict(ccc, kind="observed", band="record", channel="rotd50", pga=4.9, pgv=0.5,
             flags=["partial"]),
        dict(ccc, kind="observed", band="record", channel="maxh", pga=5.3, pgv=0.6,
             flags=["partial"]),
        dict(ccc, kind="synthetic", band="common", channel="rotd50", pga=2.4, pgv=0.13),
        dict(ccc, kind="gmpe", band="record", channel="rotd50", pga=1.2, pgv=0.11,
             sigma_log10={"pga": 0.28, "pgv": 0.3},
             gmpe={"model": "BSSA14", "component": "RotD50", "vs30": 760.0, "rjb_km": 26.0}),
    ]
    pgm = {"event": EVENT, "rows": rows,
           "misfits": [{"station": "CI.CCC", "channel": "rotd50", "metric": "pga",
                        "misfit": -0.31}],
           "residuals": [{"station": "CI.CCC", "kind": "observed", "metric": "pga",
                          "log10": 0.61, "normalized": 2.15, "model": "BSSA14"}]}
    (folder / "pgm").mkdir(parents=True)
    (folder / "pgm" / "pgm.json").write_text(json.dumps(pgm))
    (folder / "preprocess").mkdir()
    (folder / "preprocess" / ".stage.json").write_text(json.dumps({
        "fingerprint": "f1", "mapping": "multi", "workers": 2,
        "summary": {"processed": ["CI.CCC"],
                    "rejected": [{"station": "CI.SLA", "stage": "preprocess",
                                  "category": "quality",
                                  "reason": "gap of <b>3 s</b> & more"}],
                    "flags": [{"station": "CI.CCC", "trace": "CI.CCC..HNE", "name": "partial",
                               "flag": "partial: CI.CCC..HNE: the record covers 20%"},
                              {"station": "CI.CCC", "trace": "CI.CCC..HNN", "name": "partial",
                               "flag": "partial: CI.CCC..HNN: the record covers 20%"}]}}))
    (folder / "report.json").write_text(json.dumps({"stages": [
        {"name": "preprocess", "status": "ran", "fingerprint": "f1", "seconds": 12.5}]}))
    (folder / "plot" / "waveforms").mkdir(parents=True)
    (folder / "plot" / "pga_map.png").write_bytes(png())
    (folder / "plot" / "waveforms" / "CI.CCC.png").write_bytes(png())
    return folder


# -- fast: a run folder made by hand -------------------------------------------------------------
def test_data_strings_are_escaped(tmp_path):
    run = small_run(tmp_path / "run")
    path = report.write_report(run / "plot" / "report.html", run,
                               plot_failures=[{"plot": "map:misfit",
                                               "reason": "no <i>misfits</i>"}])
    text = path.read_text()
    page = Page(text)
    assert not [t for t, _ in page.tags if t == "script"]
    assert "<script>alert" not in text and "&lt;script&gt;alert(&#x27;x&#x27;)" in text
    assert HOSTILE in page.text("stations")  # shown as text, whole
    assert "gap of <b>3 s</b> & more" in page.text("stations")
    assert not [t for t, _ in page.tags if t == "i"]
    assert "map:misfit: no <i>misfits</i>" in page.text("failures")
    for _, attributes in page.tags:  # no markup smuggled into attribute values
        assert not any(v and "<" in v and not v.startswith("data:")
                       for v in attributes.values())


def test_small_run_values(tmp_path):
    run = small_run(tmp_path / "run")
    page = Page(report.render_report(run, versions={"dare": "0.1.0", "obspy": "1.5.1"}))
    ccc = page.station_row("CI.CCC")
    assert ccc[1] == "processed"
    assert ccc[2:4] == ["34.5", "142"]
    percent_g = [f"{value / STANDARD_GRAVITY * 100:.3g}" for value in (4.9, 5.3, 2.4)]
    assert ccc[4:8] == [*percent_g[:2], "50", "60"]  # %g and cm/s
    assert ccc[8:10] == [percent_g[2], "13"]
    assert ccc[10] == "-0.31" and ccc[12] == "+0.61 (+2.1\u03c3)"
    assert ccc[15] == "partial"
    notes = next(r for r in page.rows if r and r[0] == "" and "partial (HNE, HNN)" in r[1])
    assert notes[1] == "partial (HNE, HNN): the record covers 20%"
    sla = page.station_row("CI.SLA")
    assert sla[1] == "rejected (quality)"
    assert "rejected at preprocess: gap of <b>3 s</b> & more" in page.text("stations")
    assert "partial the record covers only part of the analysis window" in page.text(
        "stations")
    # the figures there are embedded, those missing said to be missing
    assert len(page.images) == 2
    assert "Map of PGA misfits: no figure (misfit_map.png was not drawn)." in page.text("maps")
    # timings: from report.json when it recorded the run that made the stage's output
    preprocess = next(r for r in page.rows if r and r[0] == "preprocess")
    assert preprocess[:4] == ["preprocess", "done", "multi (2 workers)", "12.5"]
    assert page.text("event") == ("Event Event ci38457511 Origin time (UTC) 2019-07-06 "
                                         "03:19:53 Epicentre 35.770° N, 117.599° W Depth 8.0 km "
                                         "Magnitude M 7.1 Stations 1 processed, 1 rejected by "
                                         "quality checks Ground-motion model BSSA14, Vs30 760 m/s")
    assert "configuration" not in page.sections  # no config given
    # the stages of the run's report.json, once it is written, replace the markers' reading
    page = Page(report.render_report(run, stages=[
        {"name": "preprocess", "status": "skipped", "mapping": "multi", "workers": None,
         "seconds": 0.0, "summary": {"processed": ["CI.CCC"]}},
        {"name": "plot", "status": "ran", "mapping": "simple", "workers": None,
         "seconds": 4.25, "summary": {"files": ["pga_map.png"], "plot_failures": [
             {"plot": "map:residuals", "reason": "no residuals to plot"}]}}]))
    assert [r[:5] for r in page.rows if r and r[0] in ("preprocess", "plot")] == [
        ["preprocess", "skipped", "multi", "skipped", "1"],
        ["plot", "ran", "simple", "4.2", "1 figure"]]
    assert page.text("failures") == ("Figures that failed map:residuals: no residuals to "
                                     "plot")


def test_configuration_is_toml():
    config = load_config(EXAMPLE / "ridgecrest.toml")
    parsed = tomllib.loads(report.config_text(config))
    assert parsed["preprocess"]["snr_threshold"] == config.preprocess.snr_threshold
    assert parsed["pgm"]["periods"] == list(config.pgm.periods)
    assert parsed["simulate"]["solver"] == "embedded"
    assert parsed["simulate"]["medium"]["vs"] == config.simulate.medium.vs
    assert parsed["run"]["mappings"]["plot"] == "multi"
    assert parsed["gmpe"]["model"] == "BSSA14"
    assert "specfem" not in parsed["simulate"]


# -- slow: the example run through the pipeline ---------------------------------------------------
@pytest.fixture(scope="module")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], Any]:
    folder = tmp_path_factory.mktemp("example")
    config = load_config(example_config(folder, folder / "run"))  # plot on multi, as shipped
    return folder / "run", run_assessment(config), config


@pytest.mark.slow
def test_plot_stage_writes_the_report(example_run):
    run_dir, document, _ = example_run
    plot_stage = next(s for s in document["stages"] if s["name"] == "plot")
    assert plot_stage["summary"]["report"] == "report.html"
    assert plot_stage["summary"]["plot_failures"] == []
    assert plot_stage["mapping"] == "multi"
    path = run_dir / "plot" / "report.html"
    text = path.read_text()
    assert 2e6 < len(text) < 20e6  # twelve figures embedded
    page = Page(text)
    assert list(page.sections) == ["event", "stations", "maps", "residuals", "waveforms",
                                   "method", "configuration", "software", "timings"]
    # self-contained: no script, no style sheet or font to fetch, no http(s) address in any
    # attribute; every image a PNG inside the page
    assert not [t for t, _ in page.tags if t in ("script", "link", "iframe", "object")]
    for _, attributes in page.tags:
        for value in attributes.values():
            assert not (value or "").lower().startswith(("http:", "https:", "//")), value
    assert "@import" not in text and "url(" not in text
    assert len(page.images) == 3 + 9
    for image in page.images:
        source = str(image["src"])
        assert source.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))) as decoded:
            assert round(decoded.info["dpi"][0]) == plots.DPI
            assert decoded.size[0] > 1000
    # the event and the stations, with their values from pgm.json
    assert "2019 Ridgecrest, California earthquake (M7.1)" in text
    assert "Event ci38457511 Origin time (UTC) 2019-07-06 03:19:53" in page.text("event")
    assert "9 processed, 1 rejected by quality checks" in page.text("event")
    pgm = json.loads((run_dir / "pgm" / "pgm.json").read_text())
    row = next(r for r in pgm["rows"] if r["station"] == "CI.CCC" and r["kind"] == "observed"
               and r["band"] == "record" and r["channel"] == "rotd50")
    misfit = next(m for m in pgm["misfits"] if m["station"] == "CI.CCC"
                  and m["channel"] == "rotd50" and m["metric"] == "pga")
    residual = next(r for r in pgm["residuals"] if r["station"] == "CI.CCC"
                    and r["kind"] == "observed" and r["metric"] == "pga")
    ccc = page.station_row("CI.CCC")
    assert ccc[4] == f"{row['pga'] / STANDARD_GRAVITY * 100:.3g}"
    assert ccc[6] == f"{row['pgv'] * 100:.3g}"
    assert ccc[10] == f"{misfit['misfit']:+.2f}"
    assert ccc[12].startswith(f"{residual['log10']:+.2f} ")
    assert page.station_row("CI.SLA")[1] == "rejected (quality)"
    assert "signal-to-noise ratio 1.60 below 2" in page.text("stations")
    assert page.station_row("CI.MPM")[15] == "partial"
    assert len([r for r in page.rows if r and r[0].startswith("CI.")]) == 10
    # method, configuration, software, timings
    assert "gmprocess" in page.text("method") and "BSSA14" in page.text("method")
    assert "snr_threshold = 2.0" in page.text("configuration")
    import obspy

    assert f"obspy {obspy.__version__}" in page.text("software")
    stages = [r[0] for r in page.rows if r and r[0] in (
        "download", "simulate", "preprocess", "norm", "match", "pgm", "geojson", "plot")]
    assert stages == ["download", "simulate", "preprocess", "norm", "match", "pgm", "geojson",
                      "plot"]
    plot_row = next(r for r in page.rows if r and r[0] == "plot")
    assert plot_row[1] == "ran" and float(plot_row[3]) > 0 and plot_row[4] == "12 figures"


@pytest.mark.slow
def test_labels_of_the_example_never_overlap(example_run):
    """The maps and the residual plot of the real run: every station code written, no two
    labels overlapping (rendered bounding boxes)."""
    run_dir, _, _ = example_run
    pgm = json.loads((run_dir / "pgm" / "pgm.json").read_text())
    codes = sorted({r["code"] for r in pgm["rows"]})
    figures = [plots.pga_map_figure(pgm["event"], pgm["rows"]),
               plots.misfit_map_figure(pgm["event"], pgm["misfits"], rows=pgm["rows"]),
               plots.residuals_figure(pgm["event"], pgm["residuals"], pgm["rows"])]
    for figure in figures:
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        labels = [t for t in figure.findobj(lambda a: a.get_gid() == plots.LABEL_GID)]
        boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
        if figure is not figures[-1]:
            assert sorted(code for code, _ in boxes) == codes
        else:
            assert len(boxes) >= 5 * (len(codes) - 2)
        for ax in figure.axes:
            frame = ax.get_window_extent(renderer)
            inside = [(c, b) for c, b in boxes if frame.contains(b.x0, b.y0)]
            for i, (a, box_a) in enumerate(inside):
                for b, box_b in inside[i + 1:]:
                    assert not box_a.overlaps(box_b), f"{a} and {b} overlap"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("headless Chromium is needed (Debian package chromium)")
    pytest.skip("no chromium (apt-get install chromium)")


#: Headless Chromium with its own network stack shut: every host name unresolvable and every
#: request through a closed local proxy, so that nothing it tries leaves the machine.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--no-pings", "--disable-domain-reliability",
    "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate",
    "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)


def screenshot(page: Path, folder: Path, height: int = 4000) -> tuple[np.ndarray, list[str]]:
    """Render a page with headless Chromium: its screenshot, and the URLs the page asked for
    (from Chromium's network log: requests whose isolation key is the file's)."""
    shot, log = folder / "shot.png", folder / "net.json"
    subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={folder / 'profile'}",
                    f"--screenshot={shot}", f"--window-size=1280,{height}",
                    f"--log-net-log={log}", page.resolve().as_uri()],
                   check=True, capture_output=True, timeout=120)
    netlog = json.loads(log.read_text())
    names = {code: name for name, code in netlog["constants"]["logEventTypes"].items()}
    asked = [event["params"]["url"] for event in netlog["events"]
             if names.get(event["type"]) == "URL_REQUEST_START_JOB"
             and "file://" in str(event.get("params", {}).get("network_isolation_key", ""))]
    with Image.open(shot) as image:
        return np.asarray(image.convert("RGB")).astype(int), asked


@pytest.mark.slow
def test_the_network_log_sees_what_a_page_asks_for(tmp_path):
    """The check of the next test works: a page with an outside image and style sheet is
    caught asking for them (they go nowhere: no name resolves)."""
    page = tmp_path / "outside.html"
    page.write_text('<!DOCTYPE html><html><body><p>x</p><img src="https://dare.invalid/a.png">'
                    '<link rel="stylesheet" href="http://dare.invalid/s.css"></body></html>')
    _, asked = screenshot(page, tmp_path, height=300)
    assert sorted(asked) == ["http://dare.invalid/s.css", "https://dare.invalid/a.png"]


@pytest.mark.slow
def test_report_renders_in_chromium(example_run, tmp_path):
    run_dir, _, _ = example_run
    image, asked = screenshot(run_dir / "plot" / "report.html", tmp_path)
    assert asked == []  # the page asked for nothing: no network request
    assert image.shape == (4000, 1280, 3)
    # a real page: not blank, text and figures across it
    background = np.array([243, 241, 236])  # the margin colour of the page (#f3f1ec)
    content = (np.abs(image - background).sum(axis=-1) > 30)
    assert content.mean() > 0.5  # the white main column and what it holds
    dark = image.sum(axis=-1) < 200  # text and lines: 0.9 % of the pixels measured
    assert dark.mean() > 0.004
    rows_with_text = dark.any(axis=1)  # 22 % of the top 1000 rows (tables), 64 % lower down
    assert rows_with_text[:1000].mean() > 0.1 and rows_with_text[2000:4000].mean() > 0.3
    assert len(np.unique(image.reshape(-1, 3)[::7], axis=0)) > 2000  # figures, not flat
    # the title's blue (#1f4e79) at the top
    blue = (np.abs(image[:80] - np.array([31, 78, 121])).sum(axis=-1) < 40)
    assert blue.sum() > 500
