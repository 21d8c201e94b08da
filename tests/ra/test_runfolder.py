"""Safe run folders: dare's marker, foreign folders refused, stale top-level outputs removed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from obspy import UTCDateTime
from ra_helpers import example_config

from dare_cli import __version__
from dare_cli.ra.config import load_config
from dare_cli.ra.errors import ConfigError
from dare_cli.ra.pipeline import DELIVERABLES, run_assessment
from dare_cli.ra.runfolder import (
    RA_FILES,
    RUN_FORMAT,
    RUN_MARKER,
    check_run_folder,
    is_dare_run,
    prepare_run_folder,
    publish_outputs,
    read_run_marker,
    record_files,
)
from engine.pipeline import MARKER, Pipeline, Stage, StageContext, StageWork

STAGES = ("download", "simulate", "preprocess", "norm", "match", "pgm", "geojson", "plot")


def listing(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def foreign_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("my notes")
    (path / "figures").mkdir()
    (path / "figures" / "fig1.png").write_bytes(b"\x89PNG")
    return path


# -- the marker and the checks ----------------------------------------------------------------


def test_a_new_run_folder_gets_the_marker(tmp_path):
    config = load_config(example_config(tmp_path, tmp_path / "run", ["CI.CCC"]))
    before = UTCDateTime()
    report = run_assessment(config, only=["download"])
    marker = read_run_marker(tmp_path / "run")
    assert marker is not None
    assert set(marker) == {"format", "kind", "dare", "created", "updated", "files"}
    assert (marker["format"], marker["kind"], marker["dare"]) == (RUN_FORMAT, "ra", __version__)
    assert UTCDateTime(marker["created"]) >= before
    assert marker["files"] == ["report.json"]
    assert report["outputs"]["pgm.csv"] == {
        "stage": "pgm", "stage_status": "not run", "this_run": False, "status": "absent",
        "note": "stage pgm did not run, and its earlier output (or one it depends on) is out of "
                "date or missing"}
    created = marker["created"]
    run_assessment(config, only=["download"])
    assert read_run_marker(tmp_path / "run")["created"] == created  # kept across runs


def test_a_non_empty_folder_that_is_not_dares_is_refused_unless_force(tmp_path):
    run = foreign_folder(tmp_path / "mine")
    before = listing(run)
    config = load_config(example_config(tmp_path, run, ["CI.CCC"]))
    with pytest.raises(ConfigError) as error:
        run_assessment(config, only=["download"])
    assert str(error.value) == (
        f"--out {run} is not empty and is not a dare run folder (no .dare-run.json): choose a "
        "new or empty folder, or add --force to run in it (dare then writes only its own files "
        "and never replaces yours)")
    assert listing(run) == before  # nothing written, not even the marker
    report = run_assessment(config, only=["download"], force=True)
    assert report["stages"][0]["status"] == "ran"
    after = listing(run)
    assert {k: after[k] for k in before} == before
    assert RUN_MARKER in after and "download/manifest.json" in after
    run_assessment(config, only=["download"])  # now dare's: no --force needed


@pytest.mark.parametrize("force", [False, True])
def test_a_users_folder_or_file_named_like_dares_is_refused_even_with_force(tmp_path, force):
    config = load_config(example_config(tmp_path, tmp_path / "run", ["CI.CCC"]))
    run_assessment(config, only=["download"])
    (tmp_path / "run" / "plot").mkdir()
    (tmp_path / "run" / "plot" / "my-map.png").write_bytes(b"\x89PNG")
    (tmp_path / "run" / "pgm.csv").write_text("station,pga\nmine,1\n")
    before = listing(tmp_path / "run")
    with pytest.raises(ConfigError) as error:
        run_assessment(config, only=["download"], force=force)
    assert str(error.value) == (
        f"--out {tmp_path / 'run'}: dare would replace what it did not make: plot/ (not a stage "
        "folder dare made: no .stage.json); pgm.csv (not written by dare); move them away or "
        "choose another --out (--force never replaces them)")
    assert listing(tmp_path / "run") == before


def test_a_run_folder_of_an_earlier_dare_without_the_marker_is_adopted(tmp_path):
    run = tmp_path / "old"
    (run / "download").mkdir(parents=True)
    (run / "download" / MARKER).write_text("{}")
    (run / ".plot.partial").mkdir()
    (run / "report.json").write_text("{}")
    (run / "pgm.csv").write_text("old")
    assert is_dare_run(run, stages=STAGES, files=RA_FILES)
    check_run_folder(run, stages=STAGES, files=RA_FILES)  # no --force needed
    marker = prepare_run_folder(run, stages=STAGES, files=RA_FILES)
    assert marker["files"] == ["pgm.csv", "report.json"]  # dare's, so dare may replace them
    (run / "thesis.tex").write_text("x")
    (run / RUN_MARKER).unlink()
    assert not is_dare_run(run, stages=STAGES, files=RA_FILES)
    with pytest.raises(ConfigError, match="is not empty and is not a dare run folder"):
        check_run_folder(run, stages=STAGES, files=RA_FILES)


def test_out_that_is_a_file_or_a_broken_link_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"^--out .*file exists and is not a folder$"):
        check_run_folder(tmp_path / "file", stages=STAGES, files=RA_FILES, force=True)
    (tmp_path / "broken").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match=r"^--out .*broken is a broken symbolic link$"):
        check_run_folder(tmp_path / "broken", stages=STAGES, files=RA_FILES)


# -- top-level outputs: current or removed ----------------------------------------------------


def stage_writing(name: str, file: str, *, fail: bool = False, depends: tuple[str, ...] = (),
                  value: str = "1") -> Stage:
    def build(context: StageContext) -> StageWork:
        def finish(result: Any) -> dict[str, Any]:
            if fail:
                raise RuntimeError(f"{name} broke")
            (context.out_dir / file).write_text(value)
            return {}

        return StageWork(None, finish=finish)

    return Stage(name, build, depends=depends, params={"value": value})


def pipeline(*, fail_b: bool = False, value: str = "1") -> Pipeline:
    return Pipeline([stage_writing("a", "a.csv", value=value),
                     stage_writing("b", "b.csv", fail=fail_b, depends=("a",))])


def publish(run: Path, pipe: Pipeline, report: Any) -> dict[str, Any]:
    return publish_outputs(pipe, report, run, {"a": ("a.csv",), "b": ("b.csv",)})


def test_top_level_outputs_follow_their_stage_and_stale_ones_go(tmp_path):
    run = tmp_path / "run"
    prepare_run_folder(run, stages=("a", "b"), files=("a.csv", "b.csv"))
    pipe = pipeline()
    outputs = publish(run, pipe, pipe.run(run))
    assert outputs["b.csv"] == {"stage": "b", "stage_status": "ran", "this_run": True,
                                "status": "current", "note": "made by this run"}
    record_files(run, ["a.csv", "b.csv"])
    outputs = publish(run, pipe, pipe.run(run))  # nothing changed: both skipped, still current
    assert outputs["b.csv"]["this_run"] is False and outputs["b.csv"]["status"] == "current"
    assert outputs["b.csv"]["note"] == ("made by an earlier run; its inputs and parameters are "
                                        "unchanged")
    broken = pipeline(fail_b=True, value="2")  # a changed: b must run again, and fails
    outputs = publish(run, broken, broken.run(run))
    assert outputs["a.csv"]["this_run"] is True and (run / "a.csv").read_text() == "2"
    assert outputs["b.csv"] == {"stage": "b", "stage_status": "failed", "this_run": False,
                                "status": "removed", "note": "stage b failed in this run"}
    assert not (run / "b.csv").exists()  # the old copy does not pass for a new one
    assert (run / "b" / "b.csv").read_text() == "1"  # the stage folder of the old run stays
    only_a = pipeline(value="3")
    outputs = publish(run, only_a, only_a.run(run, only=["a"]))
    assert outputs["b.csv"]["status"] == "absent"
    assert outputs["b.csv"]["note"] == ("stage b did not run, and its earlier output (or one it "
                                        "depends on) is out of date or missing")


def test_a_file_dare_did_not_write_is_not_removed_as_stale(tmp_path):
    run = tmp_path / "run"
    prepare_run_folder(run, stages=("a", "b"), files=("a.csv", "b.csv"))
    pipe = pipeline(fail_b=True)
    (run / "b.csv").write_text("the user's")  # not in the marker
    outputs = publish(run, pipe, pipe.run(run))
    assert outputs["b.csv"]["status"] == "absent"
    assert (run / "b.csv").read_text() == "the user's"


@pytest.mark.slow
def test_a_failed_rerun_never_lists_stale_outputs_as_new(tmp_path):
    config = load_config(example_config(tmp_path, tmp_path / "run", ["CI.CCC", "CI.WBM"]))
    run = tmp_path / "run"
    first = run_assessment(config)
    assert first["failed_stage"] is None
    deliverables = ("pgm.csv", "stationlist.json", "pga_map.png", "misfit_map.png",
                    "residuals.png", "report.html")
    for name in deliverables:
        assert first["outputs"][name]["this_run"] is True and (run / name).exists()
    assert set(read_run_marker(run)["files"]) == {"report.json", *deliverables}
    again = run_assessment(config)  # nothing changed: copies current, from the earlier run
    assert {o["this_run"] for o in again["outputs"].values()} == {False}
    assert {o["status"] for o in again["outputs"].values()} == {"current"}
    (run / "match" / "pairs.json").unlink()  # the match output is damaged: pgm cannot run
    broken = run_assessment(config)
    assert broken["failed_stage"].name == "pgm"
    assert not any((run / name).exists() for names in DELIVERABLES.values() for name in names)
    assert broken["outputs"]["pgm.csv"]["note"] == "stage pgm failed in this run"
    assert broken["outputs"]["stationlist.json"]["note"] == (
        "stage geojson did not run: stage pgm failed")
    saved = json.loads((run / "report.json").read_text())
    assert saved["outputs"]["pga_map.png"]["status"] == "removed"
    assert read_run_marker(run)["files"] == ["report.json"]
    assert (run / "pgm" / "pgm.csv").exists()  # the earlier stage folder itself is kept
