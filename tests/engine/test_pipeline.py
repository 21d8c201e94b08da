"""Pipelines: stages on their own mappings, atomic stage folders, skipping unchanged stages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine import IterativePE, WorkflowGraph
from engine.errors import EngineError
from engine.pipeline import Pipeline, Stage, StageContext, StageWork
from engine.testing import Collect


class WriteSquare(IterativePE):
    """Write n*n to <out>/<n>.txt (in whichever process runs it); emit the file name."""

    def __init__(self, out: Path, fail_on: int | None = None) -> None:
        super().__init__(instances=2)
        self.out = out
        self.fail_on = fail_on

    def apply(self, n: int) -> str:
        if n == self.fail_on:
            raise ValueError(f"cannot square {n}")
        path = self.out / f"{n}.txt"
        path.write_text(str(n * n))
        return path.name


def squares_stage(count: int, fail_on: int | None = None) -> Stage:
    def build(context: StageContext) -> StageWork:
        graph = WorkflowGraph()
        writer, sink = WriteSquare(context.out_dir, fail_on), Collect()
        graph.connect(writer, "output", sink, "input")

        def finish(result: Any) -> dict[str, Any]:
            return {"files": sorted(result.output("Collect"))}

        return StageWork(graph, {writer: list(range(count))}, finish)

    return Stage("squares", build, params={"count": count})


def total_stage(calls: list[str]) -> Stage:
    def build(context: StageContext) -> StageWork:
        def finish(result: Any) -> dict[str, Any]:
            calls.append("total")
            folder = context.stage_dir("squares")
            total = sum(int(p.read_text()) for p in folder.glob("*.txt"))
            (context.out_dir / "total.json").write_text(json.dumps(total))
            return {"total": total}

        return StageWork(None, finish=finish)

    return Stage("total", build, depends=("squares",))


@pytest.mark.parametrize("mapping", [
    ("simple", None), ("multi", 2), ("dynamic", 2),
    pytest.param(("redis", 2), marks=pytest.mark.redis),
    pytest.param(("kafka", 2), marks=pytest.mark.kafka),
])
def test_stages_run_in_order_on_their_mapping(tmp_path, mapping, request):
    if mapping[0] == "redis":
        request.getfixturevalue("redis_url")
    elif mapping[0] == "kafka":
        request.getfixturevalue("kafka_bootstrap")
    calls: list[str] = []
    pipeline = Pipeline([squares_stage(5), total_stage(calls)])
    report = pipeline.run(tmp_path, mappings={"squares": mapping})
    assert report.ok
    assert [(s.name, s.status) for s in report.stages] == [("squares", "ran"), ("total", "ran")]
    assert report.stages[0].mapping == mapping[0]
    assert report.stages[1].summary == {"total": 0 + 1 + 4 + 9 + 16}
    assert json.loads((tmp_path / "total" / "total.json").read_text()) == 30
    assert not list(tmp_path.glob(".*.partial"))


def test_unchanged_stages_are_skipped_and_changes_propagate(tmp_path):
    calls: list[str] = []
    report = Pipeline([squares_stage(3), total_stage(calls)]).run(tmp_path)
    report = Pipeline([squares_stage(3), total_stage(calls)]).run(tmp_path)
    assert [s.status for s in report.stages] == ["skipped", "skipped"]
    assert report.stages[1].summary == {"total": 5}  # the summary is kept from the last run
    assert calls == ["total"]
    report = Pipeline([squares_stage(4), total_stage(calls)]).run(tmp_path)  # parameter change
    assert [s.status for s in report.stages] == ["ran", "ran"]
    assert report.stages[1].summary == {"total": 14}
    report = Pipeline([squares_stage(4), total_stage(calls)]).run(tmp_path, force=["squares"])
    # squares redone with identical output: total is still current
    assert [s.status for s in report.stages] == ["ran", "skipped"]
    report = Pipeline([squares_stage(4), total_stage(calls)]).run(tmp_path, force=True)
    assert [s.status for s in report.stages] == ["ran", "ran"]


def test_a_failed_stage_leaves_no_partial_output(tmp_path):
    calls: list[str] = []
    Pipeline([squares_stage(3), total_stage(calls)]).run(tmp_path)
    before = sorted(p.name for p in (tmp_path / "squares").iterdir())
    report = Pipeline([squares_stage(6, fail_on=4), total_stage(calls)]).run(tmp_path)
    assert not report.ok
    failed = report.stages[0]
    assert failed.status == "failed" and "cannot square 4" in (failed.error or "")
    assert [s.name for s in report.stages] == ["squares"]  # stops at the failure
    assert sorted(p.name for p in (tmp_path / "squares").iterdir()) == before  # old output kept
    assert not list(tmp_path.glob(".*.partial"))


def test_input_files_are_fingerprinted(tmp_path):
    source = tmp_path / "input.txt"
    source.write_text("1")
    seen: list[str] = []

    def build(context: StageContext) -> StageWork:
        return StageWork(None, finish=lambda result: {"read": seen.append(source.read_text())})

    stage = Stage("read", build, inputs=(source,))
    Pipeline([stage]).run(tmp_path / "run")
    Pipeline([stage]).run(tmp_path / "run")
    source.write_text("2")
    Pipeline([stage]).run(tmp_path / "run")
    assert seen == ["1", "2"]


def test_running_a_stage_alone_needs_its_inputs(tmp_path):
    report = Pipeline([squares_stage(2), total_stage([])]).run(tmp_path, only=["total"])
    assert report.stages[0].status == "failed"
    assert report.stages[0].error == "needs the output of stage(s) squares: run them first"


def test_bad_pipeline_definitions(tmp_path):
    with pytest.raises(EngineError, match="depends on 'squares', which is not an earlier stage"):
        Pipeline([total_stage([]), squares_stage(1)])
    with pytest.raises(EngineError, match=r"unknown stage\(s\) nope; stages: squares"):
        Pipeline([squares_stage(1)]).run(tmp_path, mappings={"nope": ("multi", 2)})


@pytest.mark.redis
def test_a_pipeline_mixes_mappings_stage_by_stage(tmp_path, redis_url):
    """squares on the autoscaling pool, then the same squares redone on Redis, then a total."""
    calls: list[str] = []
    first = Pipeline([squares_stage(6), total_stage(calls)])
    report = first.run(tmp_path / "a", mappings={"squares": ("dynamic", 2)})
    again = Pipeline([squares_stage(6), total_stage(calls)])
    other = again.run(tmp_path / "b", mappings={"squares": ("redis", 2), "total": ("multi", 2)})
    assert report.ok and other.ok
    assert [s.mapping for s in report.stages] == ["dynamic", "simple"]
    assert [s.mapping for s in other.stages] == ["redis", "multi"]
    for run in ("a", "b"):
        assert json.loads((tmp_path / run / "total" / "total.json").read_text()) == 55
        names = sorted(p.name for p in (tmp_path / run / "squares").glob("*.txt"))
        assert names == [f"{n}.txt" for n in range(6)]
