#!/usr/bin/env python3
"""Make the gmprocess reference tables (<eventid>.csv, <eventid>_snr.csv) beside this file.

This script documents the ORACLE; dare's tests never run it (dare does not depend on
gmprocess). It needs a separate virtualenv holding gmprocess 2.8.0, see README.md:

    python3 -m venv /work/gmprocess-venv
    /work/gmprocess-venv/bin/pip install gmprocess==2.8.0
    /work/gmprocess-venv/bin/python tests/ra/data/gmprocess_reference/make_reference.py

What it does, per event:

1. Lays out a gmprocess project in a scratch directory (default /tmp/gmprocess_reference):
   `.gmprocess/projects.conf`, `conf/user.yml`, `conf/config.yml` (a copy of config.yml
   beside this file: the only deviations from gmprocess's config_production.yml) and
   `data/<eventid>/event.json` + `data/<eventid>/raw/` (the raw miniSEED and StationXML
   files, copied unchanged).
2. Runs gmprocess's own command line on it, exactly as a user would, and times it:
   `gmrecords -e <eventid> assemble`, `... process_waveforms`,
   `... compute_waveform_metrics`.
3. Opens the resulting workspace with gmprocess's StreamWorkspace and reads, per trace,
   the pass/fail state, the failure reason, the corners, the noise/signal split, the
   signal end, the SNR curve, the clipping probability and the provenance.
4. Recomputes the waveform metrics at full float precision with
   WaveformMetricCollection.from_streams (the very call `compute_waveform_metrics` makes;
   the workspace stores them as "%.8g" text) on the processed streams read back from the
   workspace, and checks them against the stored values (relative difference < 1e-6).
5. Writes the CSV tables.

`--reuse` skips steps 1-2 for events whose scratch workspace already exists.
"""

import argparse
import csv
import glob
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTDATA = HERE.parent  # tests/ra/data
REPO = HERE.parents[3]  # project root
RIDGECREST = REPO / "dare_cli" / "ra" / "examples" / "ridgecrest"
SHARED_HV = Path("/work/shared/data/seismo/hv70907436")

# Raw inputs per event: event.json, then globs of waveform and StationXML files.
EVENTS = {
    "ci38457511": (
        RIDGECREST / "event.json",
        [RIDGECREST / "waveforms" / "*.mseed", RIDGECREST / "stations" / "*.xml"],
    ),
    # All six stations of the shared copy (the project's tests hold two of them,
    # HV.HOVE and HV.MLOD, in tests/ra/data/hv70907436/: the same files). Each station
    # is processed on its own, so HOVE's and MLOD's rows do not depend on the others.
    "hv70907436": (
        (SHARED_HV if SHARED_HV.is_dir() else TESTDATA / "hv70907436") / "event.json",
        [
            (SHARED_HV if SHARED_HV.is_dir() else TESTDATA / "hv70907436") / "*.mseed",
            (SHARED_HV if SHARED_HV.is_dir() else TESTDATA / "hv70907436") / "*.xml",
        ],
    ),
    "nc72282711": (
        TESTDATA / "nc72282711" / "event.json",
        [
            TESTDATA / "nc72282711" / "waveforms" / "*.mseed",
            TESTDATA / "nc72282711" / "stations" / "*.xml",
        ],
    ),
    "nc51194936": (
        TESTDATA / "nc51194936" / "event.json",
        [
            TESTDATA / "nc51194936" / "waveforms" / "*.mseed",
            TESTDATA / "nc51194936" / "stations" / "*.xml",
        ],
    ),
}

# PSA periods written as columns (all 21 production periods are in the table).
SA_COLUMNS = [0.3, 1.0, 3.0]


def run(cmd, cwd, log):
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed, see {log}")
    return dt


def setup_project(work, event_id):
    proj = work / event_id
    if proj.exists():
        shutil.rmtree(proj)
    (proj / ".gmprocess").mkdir(parents=True)
    (proj / ".gmprocess" / "projects.conf").write_text(
        "project = reference\n[projects]\n[[reference]]\n"
        "conf_path = ../conf\ndata_path = ../data\n"
    )
    (proj / "conf").mkdir()
    (proj / "conf" / "user.yml").write_text(
        "user:\n    name: dare\n    email: dare@example.org\n"
    )
    shutil.copy(HERE / "config.yml", proj / "conf" / "config.yml")
    event_json, globs = EVENTS[event_id]
    raw = proj / "data" / event_id / "raw"
    raw.mkdir(parents=True)
    shutil.copy(event_json, proj / "data" / event_id / "event.json")
    for g in globs:
        files = sorted(glob.glob(str(g)))
        if not files:
            raise SystemExit(f"no files for {g}")
        for f in files:
            shutil.copy(f, raw / Path(f).name)
    return proj


def iso(t):
    if t is None or t == "":
        return ""
    from obspy import UTCDateTime

    return UTCDateTime(t).isoformat() + "Z"


def fmt(x):
    """Full float precision (repr), empty for missing."""
    if x is None:
        return ""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        return repr(x)
    try:
        import numpy as np

        if isinstance(x, np.floating):
            return repr(float(x))
        if isinstance(x, np.integer):
            return str(int(x))
        if isinstance(x, np.bool_):
            return "true" if bool(x) else "false"
    except ImportError:
        pass
    return str(x)


def metric_values(wml, channels):
    """{(imt, period_or_interval, component): value} from a WaveformMetricList.

    component is the channel code (e.g. HNE) or ROTD50 / GEOMETRIC_MEAN.
    """
    out = {}
    for wm in wml:
        imt = wm.type.upper()
        attrs = wm.metric_attributes or {}
        key2 = None
        if "period" in attrs:
            key2 = float(attrs["period"])
        elif "interval" in attrs:
            key2 = str(attrs["interval"])
        for comp in wm.components:
            s = str(comp)
            if s.startswith("Channels"):
                name = s.split("=")[1].rstrip(")")
                if wm.component_to_channel and name in wm.component_to_channel:
                    name = wm.component_to_channel[name]
                if name not in channels and name.lower() in ("h1", "h2", "z"):
                    name = {"h1": channels[0], "h2": channels[1], "z": channels[-1]}[
                        name.lower()
                    ]
                cname = name
            elif s.startswith("RotD"):
                cname = "ROTD" + str(int(float(s.split("=")[1].rstrip(")"))))
            else:
                cname = s.replace("()", "").upper()
            val = wm.value(comp)
            if imt == "FAS":
                continue
            out[(imt, key2, cname)] = float(val)
    return out


def provenance_attrs(tr, prov_id):
    try:
        sel = tr.provenance.select(prov_id)
    except Exception:
        return []
    res = []
    for p in sel:
        if isinstance(p, dict) and "prov_attributes" in p:
            res.append(p["prov_attributes"])
        else:
            res.append(p)
    return res


def process_event(event_id, work, timings, reuse=False):
    import numpy as np
    from gmprocess.io.asdf.stream_workspace import StreamWorkspace
    from gmprocess.metrics.waveform_metric_collection import WaveformMetricCollection
    from gmprocess.utils.config import get_config
    from gmprocess.waveform_processing.clipping.histogram import Histogram
    from gmprocess.waveform_processing.clipping.max_amp import MaxAmp
    from gmprocess.waveform_processing.clipping.ping import Ping
    from gmprocess.waveform_processing.phase import pick_travel
    from obspy.taup import TauPyModel

    t = {}
    if reuse and (work / event_id / "data" / event_id / "workspace.h5").is_file():
        # --reuse: read the workspace left by an earlier run of this script.
        proj = work / event_id
        steps = ()
    else:
        proj = setup_project(work, event_id)
        steps = ("assemble", "process_waveforms", "compute_waveform_metrics")
    gmrecords = str(Path(sys.executable).parent / "gmrecords")
    for step in steps:
        t[step] = run(
            [gmrecords, "-e", event_id, step], proj, proj / f"{step}.log"
        )
        print(f"{event_id}: gmrecords {step}: {t[step]:.1f} s", flush=True)

    config = get_config(proj / "conf")
    ws = StreamWorkspace.open(str(proj / "data" / event_id / "workspace.h5"))
    event = ws.get_event(event_id)
    raw_sc = ws.get_streams(event_id, labels=["unprocessed"], config=config)
    proc_sc = ws.get_streams(event_id, labels=["default"], config=config)
    stored = WaveformMetricCollection.from_workspace(ws)
    stored_by_path = {
        p.split("/")[-1]: wml
        for p, wml in zip(stored.stream_paths, stored.waveform_metrics, strict=True)
    }

    raw_by_id = {st.get_id(): st for st in raw_sc}
    model = TauPyModel(config["pickers"]["travel_time"]["model"])

    rows = []
    snr_rows = []
    t0 = time.perf_counter()
    n_checked = 0
    for st in proc_sc:
        sid = st.get_id()
        raw = raw_by_id.get(sid)
        # The travel-time P arrival (iasp91, first of P/p/Pn) that gmprocess centres
        # its pickers on; same function gmprocess calls in signal_split.
        p_tt = ""
        clip_flags = {}
        if raw is not None:
            loc, _ = pick_travel(raw.copy(), event, config, model)
            if loc > 0:
                p_tt = iso(raw[0].stats.starttime + loc)
            try:
                clip_flags = {
                    "clip_max_amp": bool(MaxAmp(raw.copy(), max_amp_thresh=6e6).is_clipped),
                    "clip_histogram": bool(Histogram(raw.copy()).is_clipped),
                    "clip_ping": bool(Ping(raw.copy()).is_clipped),
                }
            except Exception as exc:
                clip_flags = {"clip_error": str(exc)}
        channels = [tr.stats.channel for tr in st]
        metrics = {}
        if st.passed:
            wmc = WaveformMetricCollection.from_streams([st], event, config, "default")
            metrics = metric_values(wmc.waveform_metrics[0], channels)
            path = wmc.stream_paths[0].split("/")[-1]
            if path in stored_by_path:
                ref = metric_values(stored_by_path[path], channels)
                for k, v in ref.items():
                    w = metrics.get(k)
                    if w is None or abs(w - v) > 1e-6 * max(abs(v), 1e-12) + 1e-12:
                        raise SystemExit(
                            f"{sid} {k}: recomputed {w} != stored {v}"
                        )
                    n_checked += 1
            else:
                raise SystemExit(f"no stored metrics for {path}")
        for tr in st:
            p = tr.parameters
            fail = p.get("failure") or {}
            split = p.get("signal_split") or {}
            end = p.get("signal_end") or {}
            cf = p.get("corner_frequencies") or {}
            clip = (p.get("clipping_probability") or {}).get("probability")
            zc = (p.get("ZeroCrossingRate") or {}).get("crossing_rate")
            snr_conf = p.get("snr_conf") or {}
            rr = provenance_attrs(tr, "remove_response")
            rr = rr[0] if rr else {}
            # Final bandpass = the bandpass_filter entries after remove_response (the
            # one before it is remove_response's custom pre-filter).
            prov_ids = [d["prov_id"] for d in tr.provenance]
            bp = []
            seen_rr = False
            for d in tr.provenance:
                if d["prov_id"] == "remove_response":
                    seen_rr = True
                elif d["prov_id"] == "bandpass_filter" and seen_rr:
                    bp.append(d["prov_attributes"])
            warnings = "; ".join(
                f"{w.get('module')}: {w.get('reason')}" for w in p.get("warnings", [])
            )
            stream_passed = bool(st.passed)
            trace_passed = bool(tr.passed)
            ch = tr.stats.channel
            row = {
                "event_id": event_id,
                "station": f"{tr.stats.network}.{tr.stats.station}",
                "network": tr.stats.network,
                "station_code": tr.stats.station,
                "location": tr.stats.location,
                "channel": ch,
                "component": ch,
                "passed": stream_passed and trace_passed,
                "trace_passed": trace_passed,
                "stream_passed": stream_passed,
                "failure_reason": fail.get("reason", ""),
                "failure_module": fail.get("module", ""),
                "sampling_rate_hz": float(tr.stats.sampling_rate),
                "units_type": tr.stats.standard.units_type,
                # Corners actually applied: only when the final band-pass ran (a stream
                # that failed keeps the corners selected for its passed traces, but is
                # never filtered).
                "highpass_hz": cf.get("highpass") if bp else None,
                "lowpass_hz": cf.get("lowpass") if bp else None,
                "corner_type": cf.get("type", ""),
                "selected_highpass_hz": cf.get("highpass"),
                "selected_lowpass_hz": cf.get("lowpass"),
                "p_travel_time": p_tt,
                "split_time": iso(split.get("split_time")),
                "picker": split.get("picker_type", ""),
                "signal_end": iso(end.get("end_time")),
                "record_start": iso(tr.stats.starttime),
                "record_end": iso(tr.stats.endtime),
                "npts": int(tr.stats.npts),
                "snr_threshold": snr_conf.get("threshold"),
                "snr_band_min_hz": snr_conf.get("min_freq"),
                "snr_band_max_hz": snr_conf.get("max_freq"),
                "clipping_probability": clip,
                "clip_max_amp": clip_flags.get("clip_max_amp"),
                "clip_histogram": clip_flags.get("clip_histogram"),
                "clip_ping": clip_flags.get("clip_ping"),
                "zero_crossing_rate": zc,
                "response_method": rr.get("method", ""),
                "water_level": rr.get("water_level"),
                "filter": (bp[-1].get("filter_type", "") if bp else ""),
                "filter_order": (bp[-1].get("filter_order") if bp else None),
                "filter_passes": (bp[-1].get("number_of_passes") if bp else None),
                "pga_pctg": metrics.get(("PGA", None, ch)),
                "pgv_cms": metrics.get(("PGV", None, ch)),
            }
            for per in SA_COLUMNS:
                row[f"sa{per:g}_pctg"] = metrics.get(("PSA", per, ch))
            row["arias_ms"] = metrics.get(("ARIAS", None, ch))
            row["cav_gs"] = metrics.get(("CAV", None, ch))
            row["duration_5_75_s"] = metrics.get(("DURATION", "5-75", ch))
            row["duration_5_95_s"] = metrics.get(("DURATION", "5-95", ch))
            for (imt, per, comp), v in sorted(
                metrics.items(), key=lambda kv: (kv[0][0], str(kv[0][1]), kv[0][2])
            ):
                if imt == "PSA" and comp == ch:
                    row[f"psa_{per:g}_pctg"] = v
            row["provenance"] = ";".join(prov_ids)
            row["warnings"] = warnings
            rows.append(row)

            if tr.has_cached("snr"):
                snr = tr.get_cached("snr")
                freq = np.asarray(snr["freq"], dtype=float)
                val = np.asarray(snr["snr"], dtype=float)
                fmin = snr_conf.get("min_freq")
                fmax = snr_conf.get("max_freq")
                if fmin is not None and fmax is not None:
                    mask = (freq >= fmin) & (freq <= fmax)
                    sel = val[mask]
                    if sel.size:
                        i = int(np.nanargmin(sel)) if np.any(~np.isnan(sel)) else 0
                        min_snr = float(np.min(sel))  # as snr_check (NaN propagates)
                        f_at = float(freq[mask][i])
                    else:
                        min_snr, f_at = None, None
                    snr_rows.append(
                        {
                            "event_id": event_id,
                            "station": row["station"],
                            "location": tr.stats.location,
                            "channel": ch,
                            "passed": row["passed"],
                            "failure_reason": row["failure_reason"],
                            "threshold": snr_conf.get("threshold"),
                            "band_min_hz": fmin,
                            "band_max_hz": fmax,
                            "n_freqs_in_band": int(mask.sum()),
                            "min_snr_in_band": min_snr,
                            "freq_at_min_snr_hz": f_at,
                            "highpass_hz": row["highpass_hz"],
                            "lowpass_hz": row["lowpass_hz"],
                        }
                    )
        # Derived rows: what gmprocess computes across components (RotD50; the
        # geometric mean is only configured for durations in production).
        if st.passed:
            comps = sorted({k[2] for k in metrics} - set(channels))
            for comp in comps:
                row = {
                    "event_id": event_id,
                    "station": f"{st[0].stats.network}.{st[0].stats.station}",
                    "network": st[0].stats.network,
                    "station_code": st[0].stats.station,
                    "location": st[0].stats.location,
                    "channel": channels[0][:2],
                    "component": comp,
                    "passed": True,
                    "trace_passed": True,
                    "stream_passed": True,
                    "failure_reason": "",
                    "sampling_rate_hz": float(st[0].stats.sampling_rate),
                    "pga_pctg": metrics.get(("PGA", None, comp)),
                    "pgv_cms": metrics.get(("PGV", None, comp)),
                    "duration_5_75_s": metrics.get(("DURATION", "5-75", comp)),
                    "duration_5_95_s": metrics.get(("DURATION", "5-95", comp)),
                }
                for per in SA_COLUMNS:
                    row[f"sa{per:g}_pctg"] = metrics.get(("PSA", per, comp))
                for (imt, per, c), v in metrics.items():
                    if imt == "PSA" and c == comp:
                        row[f"psa_{per:g}_pctg"] = v
                rows.append(row)
    t["metrics_recomputed"] = time.perf_counter() - t0
    ws.close()
    print(
        f"{event_id}: recomputed metrics match the {n_checked} stored values; "
        f"{t['metrics_recomputed']:.1f} s",
        flush=True,
    )
    timings[event_id] = t
    return rows, snr_rows


def write_csv(path, rows):
    cols = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    # PSA columns in period order at the end, before warnings
    psa = sorted(
        [c for c in cols if c.startswith("psa_")],
        key=lambda c: float(c[4:].replace("_pctg", "")),
    )
    tail = [c for c in ("provenance", "warnings") if c in cols]
    cols = [c for c in cols if not c.startswith("psa_") and c not in tail] + psa + tail
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: fmt(r.get(k)) for k in cols})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("events", nargs="*", default=list(EVENTS))
    ap.add_argument("--work", default="/tmp/gmprocess_reference")
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="do not rerun gmrecords where the scratch workspace already exists",
    )
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    import gmprocess.metrics.waveform_metric_calculator
    import gmprocess.waveform_processing.processing  # noqa: F401

    print(f"import gmprocess (processing + metrics): {time.perf_counter() - t0:.1f} s")
    timings = {"import_gmprocess_s": time.perf_counter() - t0}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for event_id in args.events:
        rows, snr_rows = process_event(event_id, work, timings, args.reuse)
        write_csv(Path(args.out) / f"{event_id}.csv", rows)
        write_csv(Path(args.out) / f"{event_id}_snr.csv", snr_rows)
    with open(work / ("timings_reuse.json" if args.reuse else "timings.json"), "w") as f:
        json.dump(timings, f, indent=2)
    print(json.dumps(timings, indent=2))


if __name__ == "__main__":
    main()
