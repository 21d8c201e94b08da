"""``dare ra`` and --out/--force: a folder dare did not make is refused (exit 2) unless --force,
and even then only dare's own files are written; what the user made is never replaced."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ra"))
from cli_helpers import error_line
from ra_helpers import example_config


def user_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "paper.tex").write_text("draft")
    return path


def test_run_into_a_users_folder_exits_2_and_touches_nothing(cli, tmp_path):
    mine = user_folder(tmp_path / "mine")
    result = cli("ra", "run", "--example", "ridgecrest", "--out", mine)
    assert result.exit_code == 2
    assert error_line(result) == (
        f"error: --out {mine} is not empty and is not a dare run folder (no .dare-run.json): "
        "choose a new or empty folder, or add --force to run in it (dare then writes only its "
        "own files and never replaces yours)")
    assert sorted(p.name for p in mine.iterdir()) == ["paper.tex"]
    dry = cli("ra", "run", "--example", "ridgecrest", "--out", mine, "--dry-run")
    assert dry.exit_code == 2 and "is not a dare run folder" in error_line(dry)
    assert cli("ra", "run", "--example", "ridgecrest", "--out", mine, "--dry-run",
               "--force").exit_code == 0


def test_force_runs_in_a_users_folder_and_keeps_the_users_files(cli, tmp_path):
    mine = user_folder(tmp_path / "mine")
    config = example_config(tmp_path, mine, ["CI.CCC"])
    result = cli("ra", "download", config, "--force", "--json")
    assert result.exit_code == 0, result.stderr
    assert (mine / "paper.tex").read_text() == "draft"
    marker = json.loads((mine / ".dare-run.json").read_text())
    assert marker["format"] == "dare-run/1" and marker["files"] == ["report.json"]
    assert cli("ra", "download", config).exit_code == 0  # now a dare run folder


def test_a_users_stage_named_folder_is_refused_even_with_force(cli, tmp_path):
    run = tmp_path / "run"
    config = example_config(tmp_path, run, ["CI.CCC"])
    assert cli("ra", "download", config).exit_code == 0
    user_folder(run / "pgm")
    for extra in ((), ("--force",)):
        result = cli("ra", "run", config, *extra)
        assert result.exit_code == 2
        assert error_line(result) == (
            f"error: --out {run}: dare would replace what it did not make: pgm/ (not a stage "
            "folder dare made: no .stage.json); move them away or choose another --out "
            "(--force never replaces them)")
    assert sorted(p.name for p in (run / "pgm").iterdir()) == ["paper.tex"]


def test_help_says_what_force_allows(cli):
    result = cli("ra", "run", "--help")
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "also run in an --out folder dare did not make" in text
