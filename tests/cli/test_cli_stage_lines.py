"""Each pipeline stage is announced: why it ran or was skipped, and its wall time."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from engine.pipeline import (
    CHANGED,
    FORCED,
    NOT_RUN_BEFORE,
    UP_TO_DATE,
    Pipeline,
    Stage,
    StageContext,
    StageObserver,
    StageReport,
    StageWork,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ra"))
from ra_helpers import example_config


def _writer(name: str, depends: tuple[str, ...] = (), value: int = 1) -> Stage:
    def build(context: StageContext) -> StageWork:
        def finish(result: Any) -> dict[str, Any]:
            (context.out_dir / "value.txt").write_text(str(context.params["value"]))
            return {"value": context.params["value"]}

        return StageWork(None, finish=finish)

    return Stage(name, build, params={"value": value}, depends=depends)


class Recorder(StageObserver):
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def stage_started(self, stage: Stage, mapping: str, workers: int | None,
                      reason: str) -> None:
        self.events.append(("started", stage.name, mapping, reason))

    def stage_finished(self, report: StageReport) -> None:
        self.events.append(("finished", report.name, report.status, str(report.reason)))


def test_the_pipeline_says_why_each_stage_runs_or_is_skipped(tmp_path):
    recorder = Recorder()
    first = Pipeline([_writer("a"), _writer("b", ("a",))])
    report = first.run(tmp_path, observers=recorder)
    assert [(s.status, s.reason) for s in report.stages] == [
        ("ran", NOT_RUN_BEFORE), ("ran", NOT_RUN_BEFORE)]
    assert recorder.events[:2] == [("started", "a", "simple", NOT_RUN_BEFORE),
                                   ("finished", "a", "ran", NOT_RUN_BEFORE)]

    recorder.events.clear()
    report = first.run(tmp_path, observers=recorder)
    assert [(s.status, s.reason) for s in report.stages] == [
        ("skipped", UP_TO_DATE), ("skipped", UP_TO_DATE)]
    assert [e[0] for e in recorder.events] == ["finished", "finished"]  # never started
    assert report.stages[0].describe() == ("stage a: skipped (up to date: same inputs and "
                                           "configuration)")
    assert report.as_dict()["stages"][0]["reason"] == UP_TO_DATE

    changed = Pipeline([_writer("a", value=2), _writer("b", ("a",))])
    report = changed.run(tmp_path)
    assert [(s.status, s.reason) for s in report.stages] == [
        ("ran", CHANGED), ("ran", "out of date: stage(s) a ran again")]
    ran = report.stages[0]
    assert ran.seconds > 0
    assert ran.describe() == f"stage a: ran in {ran.seconds:.2f} s on simple ({CHANGED})"
    report = changed.run(tmp_path, force=["b"])
    assert [(s.status, s.reason) for s in report.stages] == [
        ("skipped", UP_TO_DATE), ("ran", FORCED)]


def test_a_missing_upstream_is_the_reason_of_a_failure(tmp_path):
    report = Pipeline([_writer("a"), _writer("b", ("a",))]).run(tmp_path, only=["b"])
    (stage,) = report.stages
    assert (stage.status, stage.reason) == ("failed", "needs the output of stage(s) a")
    assert stage.describe().startswith("stage b: failed after 0.00 s: needs the output")


def test_ra_stage_lines_and_json(cli, tmp_path):
    config = example_config(tmp_path, tmp_path / "run", ["CI.CCC"])
    result = cli("ra", "download", config, "--json")
    assert result.exit_code == 0, result.stderr
    (stage,) = json.loads(result.stdout)["stages"]
    assert (stage["name"], stage["status"], stage["reason"]) == ("download", "ran",
                                                                 NOT_RUN_BEFORE)
    assert stage["seconds"] > 0
    lines = result.stderr.splitlines()
    assert "stage download: running on simple (no earlier output)" in lines
    ran = re.fullmatch(r"stage download: ran in (\d+\.\d\d) s on simple \(no earlier output\)",
                       lines[-1])
    assert ran is not None and abs(float(ran[1]) - stage["seconds"]) <= 0.01

    result = cli("ra", "download", config, "--json")
    (stage,) = json.loads(result.stdout)["stages"]
    assert (stage["status"], stage["reason"]) == ("skipped", UP_TO_DATE)
    assert isinstance(stage["seconds"], float)
    assert ("stage download: skipped (up to date: same inputs and configuration)"
            in result.stderr.splitlines())

    result = cli("ra", "download", config, "--force", "--json")
    (stage,) = json.loads(result.stdout)["stages"]
    assert (stage["status"], stage["reason"]) == ("ran", FORCED)
    result = cli("ra", "download", config, "-q")
    assert result.exit_code == 0 and "stage download" not in result.stderr
