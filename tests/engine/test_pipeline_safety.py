"""A pipeline replaces only the stage folders it made: never a user's folder, file or link."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.pipeline import MARKER, Pipeline, Stage, StageContext, StageWork


def writing_stage(name: str = "squares", content: str = "4") -> Stage:
    def build(context: StageContext) -> StageWork:
        def finish(result: Any) -> dict[str, Any]:
            (context.out_dir / "out.txt").write_text(content)
            return {"wrote": content}

        return StageWork(None, finish=finish)

    return Stage(name, build, params={"content": content})


def user_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "thesis.tex").write_text("chapter 1")
    return path


@pytest.mark.parametrize("force", [False, True])
def test_a_users_folder_named_like_a_stage_is_never_replaced(tmp_path, force):
    mine = user_folder(tmp_path / "squares")
    report = Pipeline([writing_stage()]).run(tmp_path, force=force)
    [stage] = report.stages
    assert stage.status == "failed"
    assert stage.error == (f"refusing to replace {mine}: a folder without {MARKER}, not a stage "
                           "folder made by dare; move it away")
    assert (mine / "thesis.tex").read_text() == "chapter 1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["squares"]  # no partial left


def test_a_link_or_a_file_named_like_a_stage_is_never_replaced(tmp_path):
    target = user_folder(tmp_path / "data")
    run = tmp_path / "run"
    run.mkdir()
    (run / "squares").symlink_to(target)
    (target / MARKER).write_text("{}")  # even a marker behind the link does not make it ours
    report = Pipeline([writing_stage()]).run(run, force=True)
    assert report.stages[0].error == (f"refusing to replace {run / 'squares'}: a symbolic link, "
                                      "not a stage folder made by dare; move it away")
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "thesis.tex"]
    (run / "squares").unlink()
    (run / "squares").mkdir()  # even empty, a folder the pipeline did not make stays
    report = Pipeline([writing_stage()]).run(run)
    assert report.stages[0].status == "failed" and (run / "squares").is_dir()
    (run / "squares").rmdir()
    (run / "squares").write_text("notes")
    report = Pipeline([writing_stage()]).run(run)
    assert "a file, not a stage folder made by dare" in (report.stages[0].error or "")
    assert (run / "squares").read_text() == "notes"


def test_a_foreign_partial_folder_is_refused_an_empty_or_own_one_is_cleared(tmp_path):
    partial = user_folder(tmp_path / ".squares.partial")
    report = Pipeline([writing_stage()]).run(tmp_path)
    assert report.stages[0].error == (f"refusing to replace {partial}: a folder without "
                                      f"{MARKER}, not a temporary stage folder made by dare; "
                                      "move it away")
    assert (partial / "thesis.tex").exists()
    (partial / "thesis.tex").unlink()  # empty: made by a pipeline that died before its marker
    assert Pipeline([writing_stage()]).run(tmp_path).ok
    crashed = tmp_path / ".squares.partial"  # left by a killed run: has the partial marker
    crashed.mkdir()
    (crashed / MARKER).write_text(json.dumps({"status": "partial"}))
    (crashed / "half.txt").write_text("half")
    report = Pipeline([writing_stage(content="9")]).run(tmp_path)
    assert report.ok and not crashed.exists()
    assert (tmp_path / "squares" / "out.txt").read_text() == "9"


def test_replacing_a_stage_folder_does_not_follow_links_out_of_it(tmp_path):
    outside = user_folder(tmp_path / "outside")
    run = tmp_path / "run"
    assert Pipeline([writing_stage()]).run(run).ok
    (run / "squares" / "link").symlink_to(outside)  # a link inside dare's own stage folder
    (run / "squares" / "file-link").symlink_to(outside / "thesis.tex")
    report = Pipeline([writing_stage(content="16")]).run(run, force=True)
    assert report.ok
    assert sorted(p.name for p in (run / "squares").iterdir()) == [MARKER, "out.txt"]
    assert (outside / "thesis.tex").read_text() == "chapter 1"


def test_the_partial_folder_carries_a_marker_from_the_start(tmp_path):
    seen: list[dict[str, Any]] = []

    def build(context: StageContext) -> StageWork:
        seen.append(json.loads((context.out_dir / MARKER).read_text()))
        return StageWork(None, finish=lambda result: {})

    assert Pipeline([Stage("look", build)]).run(tmp_path).ok
    assert seen == [{"status": "partial"}]
    final = json.loads((tmp_path / "look" / MARKER).read_text())
    assert set(final) == {"fingerprint", "summary", "mapping", "workers"}
