"""The HTML report of a Rapid Assessment run: one self-contained page (``report.html``).

:func:`write_report` reads the files of a run folder -- ``pgm/pgm.json`` (event, motion rows,
misfits, GMPE residuals), the stage markers ``<stage>/.stage.json`` (statuses, rejections,
flags), ``report.json`` (timings of stages that did not run this time) and the figures of the
plot stage -- and writes one HTML file, atomically. Figures are embedded as base64 PNG and the
style sheet is inline: the page needs no network, no other file and no script, so it opens
offline and can be mailed. Every string that comes from data (station names, reasons, flags,
configuration values) is escaped.

Sections: the event; the stations table (status, distance, observed PGA and PGV -- RotD50 and
larger horizontal, record band --, synthetic, misfit, GMPE residual, flags, rejection
reasons); the maps; the residual plot; the waveform plots; the method in two sentences; the
configuration (TOML-like); the software versions; the stages with their timings; the figures
that failed.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import math
import platform
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from dare_cli import __version__
from dare_cli.ra.outputs import STANDARD_GRAVITY, canonical_metric, psa_period
from dare_cli.ra.preprocess import FLAGS
from engine.files import write_atomic

__all__ = [
    "FLAG_MEANINGS",
    "SOFTWARE",
    "config_text",
    "render_report",
    "software_versions",
    "station_statuses",
    "write_report",
]

#: Stages of a run, in order (as :data:`dare_cli.ra.config.STAGES`).
STAGE_ORDER = ("download", "simulate", "preprocess", "norm", "match", "pgm", "geojson", "plot")
#: Meaning of each flag a record can carry.
FLAG_MEANINGS: dict[str, str] = dict(FLAGS)
#: Distributions whose versions the report lists, after dare and Python.
SOFTWARE = ("obspy", "numpy", "scipy", "matplotlib", "cartopy", "shapely", "pyproj", "pygmm",
            "ps2ff")
_MARKER = ".stage.json"


# -- reading the run folder ----------------------------------------------------------------------
def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _stages(run_dir: Path, overrides: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Stage records (name, status, mapping, workers, seconds, summary), in pipeline order.

    From the stage markers; a stage's time comes from ``report.json`` when it records the run
    that made the stage's current output (same fingerprint, status ``ran``). ``overrides``
    (e.g. the stage being run, whose marker is not written yet) replace or add records.
    """
    previous = _read_json(run_dir / "report.json") or {}
    timed = {s.get("name"): s for s in previous.get("stages", []) if isinstance(s, dict)}
    records: dict[str, dict[str, Any]] = {}
    for name in STAGE_ORDER:
        marker = _read_json(run_dir / name / _MARKER)
        if not isinstance(marker, dict):
            continue
        record = {"name": name, "status": "done", "mapping": marker.get("mapping"),
                  "workers": marker.get("workers"), "seconds": marker.get("seconds"),
                  "summary": marker.get("summary") or {}}
        old = timed.get(name)
        if (record["seconds"] is None and old and old.get("status") == "ran"
                and old.get("fingerprint") == marker.get("fingerprint")):
            record["seconds"] = old.get("seconds")
        records[name] = record
    for override in overrides:
        records[str(override["name"])] = {**records.get(str(override["name"]), {}),
                                          **override}
    order = {name: index for index, name in enumerate(STAGE_ORDER)}
    return sorted(records.values(), key=lambda r: order.get(r["name"], len(order)))


def station_statuses(stages: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The status of each station, from the stages' summaries.

    Per station: ``status`` (processed or rejected), ``stage``, ``reason``, ``category`` and
    ``flags`` (list of ``{"name", "text"}``). The same reading as the run's
    ``report.json``: a station rejected by any stage is rejected; ``category`` is
    ``quality`` (it failed a quality check) or ``error``.
    """
    stations: dict[str, dict[str, Any]] = {}
    for stage in stages:
        summary = stage.get("summary") or {}
        for station in summary.get("processed", []):
            stations.setdefault(str(station), {"status": "processed", "flags": []})
        for record in summary.get("rejected", []):
            entry = stations.setdefault(str(record["station"]), {"flags": []})
            entry.update(status="rejected", stage=record.get("stage", stage.get("name")),
                         reason=str(record.get("reason", "")),
                         category=record.get("category", "error"))
        for flag in summary.get("flags", []):
            entry = stations.setdefault(str(flag["station"]), {"status": "processed",
                                                               "flags": []})
            text = str(flag.get("flag", ""))
            name = flag.get("name") or (text.split(":")[0].split() or [""])[-1]
            entry["flags"].append({"name": str(name), "text": text})
    return dict(sorted(stations.items()))


# -- software and configuration ------------------------------------------------------------------
def software_versions() -> dict[str, str]:
    """Versions of dare, Python and the libraries that shaped the results."""
    versions = {"dare": __version__, "python": platform.python_version()}
    for name in SOFTWARE:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}"
                               for k, v in value.items()) + "}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _toml_value({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _toml_key(key: Any) -> str:
    text = str(key)
    return text if text.replace("_", "").replace("-", "").isalnum() else json.dumps(text)


def _table(name: str, values: Mapping[str, Any]) -> list[str]:
    lines = [f"[{name}]"]
    subtables = []
    for key, value in values.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            subtables.append((f"{name}.{key}", {f.name: getattr(value, f.name)
                                                for f in dataclasses.fields(value)}))
        elif value is None:
            lines.append(f"# {key}: not set")
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for sub, table in subtables:
        lines += ["", *_table(sub, table)]
    return lines


def config_text(config: Any) -> str:
    """The configuration of a run (a :class:`~dare_cli.ra.config.RAConfig`) as TOML-like text.

    One table per stage as in the configuration file, every value in force (defaults
    included); unset optional values are comments.
    """
    def fields(obj: Any) -> dict[str, Any]:
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}

    mappings = {stage: mapping if workers is None else f"{mapping}:{workers}"
                for stage, (mapping, workers) in dict(config.mappings).items()}
    lines = _table("run", {"out": config.out, "mappings": mappings})
    lines += ["", *_table("download", fields(config.download))]
    lines += ["", *_table("source", fields(config.source))]
    simulate = {"solver": config.solver, **fields(config.simulate)}
    lines += ["", *_table("simulate", simulate)]
    if config.solver == "specfem":
        lines += ["", *_table("simulate.specfem", fields(config.specfem))]
    for name in ("preprocess", "pgm", "gmpe", "plot"):
        lines += ["", *_table(name, fields(getattr(config, name)))]
    return "\n".join(lines) + "\n"


def _method(config: Any, pgm: Mapping[str, Any]) -> str:
    """The processing method in two sentences."""
    periods = ", ".join(f"{p:g}" for p in config.pgm.periods) if config is not None else ""
    solver = ("the analytical point source in a homogeneous half-space (embedded solver)"
              if config is None or config.solver == "embedded" else "SPECFEM3D Cartesian")
    snr = f" above {config.preprocess.snr_threshold:g}" if config is not None else ""
    first = ("The observed records were processed as USGS gmprocess does, at their own "
             "sampling rate: instrument response removed, band-pass corners where the "
             f"signal-to-noise ratio stays{snr}, zero-phase Butterworth filters and integration "
             "in the frequency domain; their peak motions (PGA, PGV, PGD, and 5 %-damped PSA"
             + (f" at {periods} s" if periods else "")
             + "; per component, larger horizontal and RotD50) are those of this record band.")
    gmpe = next((r.get("gmpe") for r in pgm.get("rows", []) if r.get("kind") == "gmpe"), None)
    baseline = ""
    if isinstance(gmpe, Mapping):
        vs30 = gmpe.get("vs30")
        site = "" if vs30 is None else f" (Vs30 {float(vs30):g} m/s)"
        baseline = (f"; the ground-motion model {gmpe.get('model')}{site} gives the baseline, "
                    "residuals being log10(motion / predicted median)")
    grid = ""
    if config is not None:
        pre = config.preprocess
        grid = (f" on a common {pre.sampling_rate:g} Hz grid from {pre.window_start:g} to "
                f"{pre.window_start + pre.window_length:g} s after the origin")
    second = (f"Synthetic seismograms from {solver} were passed through the same filters, "
              "in the band each record shares with them, and compared with the record's copy "
              f"in that band{grid}, the misfit being log10(synthetic / observed){baseline}.")
    return f"{first} {second}"


# -- formatting ----------------------------------------------------------------------------------
def _e(value: Any) -> str:
    """Escaped text (also inside attribute values)."""
    return html.escape(str(value), quote=True)


def _number(value: Any, digits: int = 3) -> str:
    if value is None:
        return ""
    number = float(value)
    if not math.isfinite(number):
        return ""
    return f"{number:.{digits}g}"


def _signed(value: Any, digits: int = 2) -> str:
    if value is None or not math.isfinite(float(value)):
        return ""
    return f"{float(value):+.{digits}f}"


def _metric_label(metric: str) -> str:
    period = psa_period(metric)
    return metric.upper() if period is None else f"PSA({period:g} s)"


def _image(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _figure(path: Path, alt: str, caption: str, anchor: str = "") -> str:
    source = _image(path)
    ident = f' id="{_e(anchor)}"' if anchor else ""
    if source is None:
        return (f'<figure class="missing"{ident}><p>{_e(alt)}: no figure '
                f"({_e(path.name)} was not drawn).</p></figure>")
    return (f'<figure{ident}><img src="{source}" alt="{_e(alt)}">'
            f"<figcaption>{caption}</figcaption></figure>")


# -- the stations table ----------------------------------------------------------------------------
def _values(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per station: coordinates, name, and the values the table shows."""
    table: dict[str, dict[str, Any]] = {}
    for row in rows:
        station = str(row.get("station"))
        entry = table.setdefault(station, {"name": row.get("name"),
                                           "distance_km": row.get("distance_km"),
                                           "azimuth": row.get("azimuth"),
                                           "maxh": {}, "flags": set()})
        kind, band, channel = row.get("kind"), row.get("band"), row.get("channel")
        for key, value in row.items():
            metric = canonical_metric(str(key))
            if metric is None or value is None:
                continue
            if kind == "observed" and band == "record":
                if channel == "rotd50":
                    entry.setdefault("obs_rotd50", {})[metric] = value
                elif channel == "maxh":
                    entry["maxh"][metric] = value
            elif kind == "synthetic" and band == "common" and channel == "rotd50":
                entry.setdefault("syn_rotd50", {})[metric] = value
            elif kind == "synthetic" and band == "common" and channel == "maxh":
                entry.setdefault("syn_maxh", {})[metric] = value
        if kind == "observed":
            entry["flags"].update(str(f) for f in row.get("flags") or ())
            if row.get("unusable"):
                entry.setdefault("unusable", set()).update(
                    canonical_metric(str(m)) or str(m) for m in row["unusable"])
        if kind == "gmpe" and isinstance(row.get("gmpe"), Mapping):
            entry["rjb_km"] = row["gmpe"].get("rjb_km")
    return table


def _misfits(misfits: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Misfit per station and metric: of RotD50, else of the larger horizontal."""
    chosen: dict[str, dict[str, tuple[int, float]]] = {}
    for item in misfits:
        metric = canonical_metric(str(item.get("metric")))
        rank = {"rotd50": 0, "maxh": 1}.get(str(item.get("channel")))
        if metric is None or rank is None or item.get("misfit") is None:
            continue
        station = chosen.setdefault(str(item["station"]), {})
        if metric not in station or rank < station[metric][0]:
            station[metric] = (rank, float(item["misfit"]))
    return {s: {m: v for m, (_, v) in metrics.items()} for s, metrics in chosen.items()}


def _residuals(residuals: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, str], Any]:
    return {(str(r["station"]), str(r["kind"]), canonical_metric(str(r["metric"])) or ""): r
            for r in residuals}


def _pga(value: Any) -> str:
    return "" if value is None else _number(float(value) / STANDARD_GRAVITY * 100.0)


def _pgv(value: Any) -> str:
    return "" if value is None else _number(float(value) * 100.0)


def _residual_cell(item: Mapping[str, Any] | None) -> str:
    if item is None or item.get("log10") is None:
        return "<td></td>"
    normalized = item.get("normalized")
    sigmas = ("" if normalized is None
              else f' <span class="dim">({float(normalized):+.1f}&sigma;)</span>')
    return f'<td class="num">{_signed(item["log10"])}{sigmas}</td>'


def _misfit_cell(value: float | None) -> str:
    if value is None:
        return "<td></td>"
    shade = "pos" if value > 0.3 else "neg" if value < -0.3 else ""
    return f'<td class="num {shade}">{_signed(value)}</td>'


def _stations_table(pgm: Mapping[str, Any], statuses: Mapping[str, Mapping[str, Any]],
                    coordinates: Mapping[str, Mapping[str, Any]]) -> str:
    values = _values(pgm.get("rows", []))
    misfits = _misfits(pgm.get("misfits", []))
    residuals = _residuals(pgm.get("residuals", []))
    names = sorted(set(values) | set(statuses))
    body = []
    for station in names:
        entry = values.get(station, {"maxh": {}, "flags": set()})
        status = statuses.get(station, {"status": "processed", "flags": []})
        extra = coordinates.get(station, {})
        distance = entry.get("distance_km", extra.get("distance_km"))
        azimuth = entry.get("azimuth", extra.get("azimuth"))
        name = entry.get("name") or extra.get("name") or ""
        rejected = status.get("status") == "rejected"
        label = ("processed" if not rejected else
                 f"rejected ({status.get('category', 'error')})")
        klass = "rejected" if rejected else "flagged" if entry["flags"] else ""
        obs = entry.get("obs_rotd50", {})
        syn = entry.get("syn_rotd50", {})
        flag_names = sorted(entry["flags"] | {f["name"] for f in status.get("flags", [])
                                              if f.get("name") in FLAG_MEANINGS})
        flags = " ".join(f'<span class="flag" title="{_e(FLAG_MEANINGS.get(f, ""))}">'
                         f"{_e(f)}</span>" for f in flag_names)
        notes = []
        if rejected:
            notes.append(f"<b>rejected at {_e(status.get('stage', ''))}</b>: "
                         f"{_e(status.get('reason', ''))}")
        notes += [_e(text) for text in _grouped_flags(status.get("flags", []))]
        if entry.get("unusable"):
            notes.append("PSA outside the usable band: " + _e(", ".join(
                _metric_label(m) for m in sorted(entry["unusable"]))))
        cells = [
            f'<td class="sta"><b>{_e(station)}</b><br><span class="dim">{_e(name)}</span></td>',
            f'<td class="{"bad" if rejected else "ok"}">{_e(label)}</td>',
            f'<td class="num">{"" if distance is None else f"{float(distance):.1f}"}</td>',
            f'<td class="num">{"" if azimuth is None else f"{float(azimuth):.0f}"}</td>',
            f'<td class="num">{_pga(obs.get("pga"))}</td>',
            f'<td class="num">{_pga(entry["maxh"].get("pga"))}</td>',
            f'<td class="num">{_pgv(obs.get("pgv"))}</td>',
            f'<td class="num">{_pgv(entry["maxh"].get("pgv"))}</td>',
            f'<td class="num">{_pga(syn.get("pga"))}</td>',
            f'<td class="num">{_pgv(syn.get("pgv"))}</td>',
            _misfit_cell(misfits.get(station, {}).get("pga")),
            _misfit_cell(misfits.get(station, {}).get("pgv")),
            _residual_cell(residuals.get((station, "observed", "pga"))),
            _residual_cell(residuals.get((station, "observed", "pgv"))),
            _residual_cell(residuals.get((station, "synthetic", "pga"))),
            f"<td>{flags}</td>",
        ]
        body.append(f'<tr class="{klass}">' + "".join(cells) + "</tr>")
        if notes:
            body.append(f'<tr class="{klass} note"><td></td><td colspan="{len(cells) - 1}" '
                        f'class="notes">{"<br>".join(notes)}</td></tr>')
    head = (
        '<thead><tr><th rowspan="2">Station</th><th rowspan="2">Status</th>'
        '<th rowspan="2">Dist.<br>km</th><th rowspan="2">Az.<br>°</th>'
        '<th colspan="4">Observed, record band</th>'
        '<th colspan="2">Synthetic, RotD50</th>'
        '<th colspan="2">Misfit log10(syn/obs)</th>'
        '<th colspan="3">GMPE residual log10</th>'
        '<th rowspan="2">Flags</th></tr>'
        "<tr><th>PGA RotD50<br>%g</th><th>PGA max-H<br>%g</th>"
        "<th>PGV RotD50<br>cm/s</th><th>PGV max-H<br>cm/s</th>"
        "<th>PGA<br>%g</th><th>PGV<br>cm/s</th><th>PGA</th><th>PGV</th>"
        "<th>obs PGA</th><th>obs PGV</th><th>syn PGA</th></tr></thead>")
    return f'<div class="scroll"><table class="stations">{head}<tbody>{"".join(body)}' \
           "</tbody></table></div>"


_TRACE_ID = re.compile(r"\b[A-Z0-9]{1,2}\.[A-Z0-9]{1,5}\.[A-Z0-9]{0,2}\.([A-Z0-9]{3})\b:?\s*")


def _grouped_flags(flags: Iterable[Mapping[str, Any]]) -> list[str]:
    """Flag texts of a station, the same text for several channels written once.

    ``"partial: CI.MPM..HNE: the record covers 20%"`` for HNE, HNN and HNZ becomes
    ``"partial (HNE, HNN, HNZ): the record covers 20%"``.
    """
    grouped: dict[str, list[str]] = {}
    for flag in flags:
        text = str(flag.get("text", ""))
        channels = _TRACE_ID.findall(text)
        rest = _TRACE_ID.sub("", text).strip()
        grouped.setdefault(rest, []).extend(channels)
    lines = []
    for rest, channels in grouped.items():
        name, colon, detail = rest.partition(":")
        where = f" ({', '.join(sorted(set(channels)))})" if channels else ""
        lines.append(f"{name}{where}{colon}{detail}" if colon else f"{rest}{where}")
    return lines


def _rejected_coordinates(run_dir: Path, event: Mapping[str, Any],
                          stations: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Name, distance and azimuth of stations without pgm rows, from their StationXML."""
    found: dict[str, dict[str, Any]] = {}
    wanted = [s for s in stations if (run_dir / "download" / "stations" / f"{s}.xml").exists()]
    if not wanted or "latitude" not in event:
        return found
    from obspy import read_inventory
    from obspy.geodetics import gps2dist_azimuth

    for station in wanted:
        try:
            site = read_inventory(str(run_dir / "download" / "stations" / f"{station}.xml")
                                  ).networks[0].stations[0]
        except Exception:  # an unreadable StationXML: the table shows no distance
            continue
        metres, azimuth, _ = gps2dist_azimuth(float(event["latitude"]),
                                              float(event["longitude"]),
                                              site.latitude, site.longitude)
        found[station] = {"distance_km": metres / 1e3, "azimuth": azimuth,
                          "name": site.site.name if site.site and site.site.name else ""}
    return found


# -- the page --------------------------------------------------------------------------------------
_STYLE = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 "DejaVu Sans","Helvetica Neue",Arial,sans-serif;color:#1d232b;
background:#f3f1ec}
main{max-width:1500px;margin:0 auto;padding:20px 28px 40px;background:#fff;
box-shadow:0 0 0 1px #e2ddd3}
header{border-bottom:3px solid #1f4e79;padding-bottom:10px;margin-bottom:14px}
h1{font-size:24px;margin:4px 0 2px;color:#1f4e79}
h2{font-size:18px;margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid #d6d0c4;
color:#1f4e79}
.sub{color:#5a6470;margin:0}
nav{font-size:13px;margin:8px 0 0}
nav a{color:#1f4e79;margin-right:14px;text-decoration:none}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0}
.card{border:1px solid #ddd6c9;border-radius:6px;padding:8px 14px;background:#faf8f4;
min-width:150px}
.card .k{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:#6b7480}
.card .v{font-size:17px;font-weight:600}
table{border-collapse:collapse;font-size:12.5px}
th,td{border:1px solid #ddd6c9;padding:4px 7px;vertical-align:top}
th{background:#eef2f6;font-weight:600;text-align:center}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.sta{white-space:nowrap}
td.ok{color:#276b2c}
td.bad{color:#a61b1b;font-weight:600}
tr.rejected td{background:#fbf0ef}
tr.flagged td{background:#fdf8ea}
td.pos{color:#b2182b}
td.neg{color:#2166ac}
td.notes{font-size:11.5px;color:#39424d;border-top:none}
tr.note td{border-top:none}
.dim{color:#6b7480;font-size:11px}
.flag{display:inline-block;background:#f5e7c4;border:1px solid #e0c98c;border-radius:3px;
padding:0 4px;margin:1px;font-size:11px;white-space:nowrap}
.scroll{overflow-x:auto}
.figs{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0 0 14px;flex:1 1 560px;max-width:100%}
figure img{width:100%;height:auto;border:1px solid #e2ddd3}
figcaption{font-size:12.5px;color:#39424d;margin-top:4px}
figure.wide{flex-basis:100%}
figure.missing{border:1px dashed #c9a0a0;padding:10px;color:#a61b1b}
pre{background:#f7f5f0;border:1px solid #e2ddd3;padding:8px 10px;font-size:11.5px;
overflow-x:auto;line-height:1.35;margin:0 0 10px;white-space:pre-wrap;word-break:break-all}
.config{column-width:330px;column-gap:14px}
.config pre{break-inside:avoid}
dl.flags dt{font-weight:600;float:left;clear:left;width:140px}
dl.flags dd{margin:0 0 4px 150px}
.failures li{color:#a61b1b}
footer{margin-top:30px;font-size:12px;color:#6b7480}
"""


def _event_section(event: Mapping[str, Any], statuses: Mapping[str, Mapping[str, Any]],
                   pgm: Mapping[str, Any]) -> str:
    latitude, longitude = event.get("latitude"), event.get("longitude")
    place = ""
    if latitude is not None and longitude is not None:
        place = (f"{abs(float(latitude)):.3f}° {'N' if float(latitude) >= 0 else 'S'}, "
                 f"{abs(float(longitude)):.3f}° {'E' if float(longitude) >= 0 else 'W'}")
    magnitude = event.get("magnitude")
    time = str(event.get("time", ""))
    processed = sum(1 for s in statuses.values() if s.get("status") == "processed")
    quality = sum(1 for s in statuses.values()
                  if s.get("status") == "rejected" and s.get("category") == "quality")
    errors = sum(1 for s in statuses.values()
                 if s.get("status") == "rejected" and s.get("category") != "quality")
    gmpe = next((r.get("gmpe") for r in pgm.get("rows", []) if r.get("kind") == "gmpe"), None)
    cards = [
        ("Event", event.get("id", "")),
        ("Origin time (UTC)", time[:19].replace("T", " ")),
        ("Epicentre", place),
        ("Depth", "" if event.get("depth_km") is None
         else f"{float(event['depth_km']):.1f} km"),
        ("Magnitude", "" if magnitude is None else f"M {float(magnitude):.1f}"),
        ("Stations", f"{processed} processed, {quality} rejected by quality checks"
         + (f", {errors} rejected for errors" if errors else "")),
    ]
    if isinstance(gmpe, Mapping):
        vs30 = gmpe.get("vs30")
        cards.append(("Ground-motion model", f"{gmpe.get('model')}"
                      + ("" if vs30 is None else f", Vs30 {float(vs30):g} m/s")))
    body = "".join(f'<div class="card"><div class="k">{_e(k)}</div><div class="v">{_e(v)}'
                   "</div></div>" for k, v in cards)
    return f'<section id="event"><h2>Event</h2><div class="cards">{body}</div></section>'


def _event_description(run_dir: Path) -> str | None:
    """The region name of the event (QuakeML ``description``), when the download has one."""
    path = run_dir / "download" / "event.xml"
    if not path.exists():
        return None
    try:
        from obspy import read_events

        event = read_events(str(path))[0]
    except Exception:  # no description then
        return None
    for description in event.event_descriptions:
        if description.text:
            return str(description.text)
    return None


def _seconds(status: Any, seconds: Any) -> str:
    if status == "skipped":
        return "skipped"
    return "not recorded" if seconds is None else f"{float(seconds):.1f}"


def _workers(workers: Any) -> str:
    if workers is None:
        return ""
    return f" ({int(workers)} worker{'s' if int(workers) != 1 else ''})"


def _done(summary: Mapping[str, Any]) -> str:
    """Stations processed by a stage, or figures drawn by the plot stage."""
    if "files" in summary and not summary.get("processed"):
        count = len(summary["files"])
        return f"{count} figure{'s' if count != 1 else ''}"
    return str(len(summary.get("processed", [])))


def _timings_section(stages: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    total = 0.0
    for stage in stages:
        summary = stage.get("summary") or {}
        seconds = stage.get("seconds")
        if stage.get("status") == "skipped":  # its output was current: nothing ran
            seconds = None
        if seconds is not None:
            total += float(seconds)
        workers = stage.get("workers")
        mapping = str(stage.get("mapping") or "")
        rows.append(
            f"<tr><td>{_e(stage['name'])}</td><td>{_e(stage.get('status', ''))}</td>"
            f"<td>{_e(mapping)}{_workers(workers)}</td>"
            f'<td class="num">{_seconds(stage.get("status"), seconds)}'
            f'</td><td class="num">{_done(summary)}</td>'
            f'<td class="num">{len(summary.get("rejected", []))}</td></tr>')
    rows.append(f'<tr><th colspan="3">total</th><td class="num"><b>{total:.1f}</b></td>'
                "<td></td><td></td></tr>")
    return ('<section id="timings"><h2>Stages and timings</h2><table><thead><tr><th>Stage</th>'
            "<th>Status</th><th>Mapping</th><th>Seconds</th><th>Done</th><th>Rejected</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            '<p class="dim">"ran": run now; "skipped": its output was current; "done": its '
            "output is current, and its time that of the run that made it, when recorded.</p>"
            "</section>")


def _stations_section(pgm: Mapping[str, Any], statuses: Mapping[str, Mapping[str, Any]],
                      coordinates: Mapping[str, Any]) -> str:
    """The stations table, and what each flag shown means."""
    rows = pgm.get("rows", [])
    flags_used = sorted({f for r in rows if r.get("kind") == "observed"
                         for f in r.get("flags") or ()}
                        | {f["name"] for s in statuses.values() for f in s.get("flags", [])
                           if f.get("name") in FLAG_MEANINGS})
    flag_list = "".join(f"<dt>{_e(f)}</dt><dd>{_e(FLAG_MEANINGS.get(f, ''))}</dd>"
                        for f in flags_used)
    return (
        '<section id="stations"><h2>Stations</h2>'
        "<p>Observed values are those of the record in its own band (as a network reports "
        "them): RotD50 and the larger horizontal component (max-H); synthetic values and "
        "misfits are of RotD50 in the band observed and synthetic share (max-H where a station "
        "has no RotD50). GMPE residuals are log10(motion / predicted median), in units of the "
        "model's sigma in brackets. Distance: epicentral.</p>"
        + _stations_table(pgm, statuses, coordinates)
        + (f'<h3>Flags</h3><dl class="flags">{flag_list}</dl>' if flag_list else "")
        + "</section>")


def _maps_section(plot_dir: Path) -> str:
    """The PGA and misfit maps."""
    return ('<section id="maps"><h2>Maps</h2><div class="figs">'
            + _figure(plot_dir / "pga_map.png", "Map of observed PGA",
                      "Observed PGA of the record (RotD50; the larger horizontal where a "
                      "station has one horizontal), %g, log scale. Dotted circles: epicentral "
                      "distance.")
            + _figure(plot_dir / "misfit_map.png", "Map of PGA misfits",
                      "Misfit of the synthetics, log10(synthetic / observed) of PGA in the "
                      "common band: red where the synthetic is larger, blue where smaller.")
            + "</div></section>")


def _residuals_section(pgm: Mapping[str, Any], plot_dir: Path) -> str:
    """The GMPE residuals figure; empty without a ground-motion model."""
    if not pgm.get("residuals"):
        return ""
    return ('<section id="residuals"><h2>Residuals against the ground-motion '
            'model</h2><div class="figs">'
            + _figure(plot_dir / "residuals.png", "GMPE residuals versus distance",
                      "log10(motion / predicted median) of the observed records "
                      "(black) and the synthetics (red) versus distance; grey: the "
                      "model's ±1 sigma.").replace("<figure", '<figure class="wide"', 1)
            + "</div></section>")


def _waveforms_section(plot_dir: Path) -> str:
    """One waveform figure per station drawn."""
    waves = []
    for path in sorted((plot_dir / "waveforms").glob("*.png")):
        station = path.stem
        waves.append(_figure(path, f"Waveforms of {station}",
                             f"{_e(station)}: observed (black) and synthetic (red) traces in "
                             "the band they share.", anchor=f"wf-{station}"))
    return ('<section id="waveforms"><h2>Waveforms</h2><div class="figs">'
            + ("".join(waves) or "<p>No waveform plots.</p>") + "</div></section>")


def _failures_section(plot_failures: Sequence[Mapping[str, Any]]) -> str:
    """The figures that could not be drawn, and why; empty when none failed."""
    if not plot_failures:
        return ""
    items = "".join(f"<li><b>{_e(f.get('plot', ''))}</b>: {_e(f.get('reason', ''))}</li>"
                    for f in plot_failures)
    return (f'<section id="failures"><h2>Figures that failed</h2>'
            f'<ul class="failures">{items}</ul></section>')


def _configuration_section(config: Any) -> str:
    """The run's configuration as TOML blocks; empty without one."""
    if config is None:
        return ""
    return ('<section id="configuration"><h2>Configuration</h2>'
            '<div class="config">'
            + "".join(f"<pre>{_e(block)}</pre>"
                      for block in config_text(config).split("\n\n"))
            + "</div></section>")


def _software_section(versions: Mapping[str, str]) -> str:
    """The versions of the software that made the run."""
    return ('<section id="software"><h2>Software</h2><table><tbody>'
            + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>"
                      for k, v in versions.items())
            + "</tbody></table></section>")


def _title(run_dir: Path, event: Mapping[str, Any]) -> str:
    """The event's description (else its id and magnitude), for the page's title."""
    description = _event_description(run_dir)
    magnitude = event.get("magnitude")
    return (description or str(event.get("id", "event"))) + (
        "" if magnitude is None or description else f" M{float(magnitude):.1f}")


def _nav(*, with_residuals: bool) -> str:
    """Links to the page's sections (to the residuals only when it has them)."""
    return "".join(f'<a href="#{anchor}">{label}</a>' for anchor, label in (
        ("event", "Event"), ("stations", "Stations"), ("maps", "Maps"),
        ("residuals", "Residuals"), ("waveforms", "Waveforms"), ("method", "Method"),
        ("configuration", "Configuration"), ("software", "Software"),
        ("timings", "Timings")) if anchor != "residuals" or with_residuals)


def render_report(
    run_dir: str | Path,
    *,
    plot_dir: str | Path | None = None,
    config: Any = None,
    stages: Sequence[Mapping[str, Any]] = (),
    plot_failures: Sequence[Mapping[str, Any]] | None = None,
    versions: Mapping[str, str] | None = None,
    generated: datetime | None = None,
) -> str:
    """The HTML page of a run (see the module docstring).

    Parameters
    ----------
    run_dir
        The run folder.
    plot_dir
        Folder of the figures (``pga_map.png``, ``misfit_map.png``, ``residuals.png``,
        ``waveforms/NET.STA.png``); by default ``run_dir/plot``.
    config
        The run's :class:`~dare_cli.ra.config.RAConfig`, for the configuration and method
        sections (left out when ``None``).
    stages
        Stage records that replace or add to those read from the stage markers: ``name``,
        ``status``, ``mapping``, ``workers``, ``seconds``, ``summary`` (e.g. the stage being
        run, or the stages of the run's ``report.json``).
    plot_failures
        Figures that could not be drawn: ``{"plot", "reason"}``; by default the
        ``plot_failures`` of the plot stage's summary.
    versions
        Software versions; by default :func:`software_versions`.
    generated
        Time of writing (UTC), default now.

    Returns
    -------
    str
        The whole page.
    """
    run_dir = Path(run_dir)
    plot_dir = Path(plot_dir) if plot_dir is not None else run_dir / "plot"
    pgm = _read_json(run_dir / "pgm" / "pgm.json") or {}
    event = pgm.get("event") or {}
    records = _stages(run_dir, stages)
    statuses = station_statuses(records)
    if plot_failures is None:
        plot_stage = next((r for r in records if r["name"] == "plot"), {})
        plot_failures = list((plot_stage.get("summary") or {}).get("plot_failures", []))
    rows = pgm.get("rows", [])
    listed = {str(r.get("station")) for r in rows}
    coordinates = _rejected_coordinates(run_dir, event, [s for s in statuses if s not in listed])
    versions = dict(versions or software_versions())
    when = (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    title = _title(run_dir, event)
    residuals = _residuals_section(pgm, plot_dir)
    nav = _nav(with_residuals=bool(residuals))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Rapid Assessment: {_e(title)}</title><style>{_STYLE}</style></head><body><main>"
        f"<header><h1>EPOS Rapid Assessment: {_e(title)}</h1>"
        f'<p class="sub">Event {_e(event.get("id", ""))}; report written {_e(when)} by dare '
        f"{_e(versions.get('dare', __version__))}</p><nav>{nav}</nav></header>"
        + _event_section(event, statuses, pgm)
        + _stations_section(pgm, statuses, coordinates) + _maps_section(plot_dir) + residuals
        + _waveforms_section(plot_dir) + _failures_section(plot_failures)
        + f'<section id="method"><h2>Method</h2><p>{_e(_method(config, pgm))}</p></section>'
        + _configuration_section(config) + _software_section(versions)
        + _timings_section(records)
        + f"<footer>Run folder: {_e(run_dir)}</footer></main></body></html>\n")


def write_report(
    path: str | Path,
    run_dir: str | Path,
    *,
    plot_dir: str | Path | None = None,
    config: Any = None,
    stages: Sequence[Mapping[str, Any]] = (),
    plot_failures: Sequence[Mapping[str, Any]] | None = None,
    versions: Mapping[str, str] | None = None,
    generated: datetime | None = None,
) -> Path:
    """Write the HTML report of a run (:func:`render_report`) to ``path``, atomically.

    Returns
    -------
    Path
        ``path``.
    """
    page = render_report(run_dir, plot_dir=plot_dir, config=config, stages=stages,
                         plot_failures=plot_failures, versions=versions, generated=generated)
    return Path(write_atomic(Path(path), page))
