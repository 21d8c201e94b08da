"""The installed ``dare`` console script, in a real subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from cli_helpers import workflow
from polling import group_members, poll_until, wait_until


def dare_script() -> str:
    """The ``dare`` script of this interpreter's environment (skip if not installed)."""
    candidate = Path(sysconfig.get_path("scripts")) / "dare"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("dare")
    if found is None:
        pytest.skip("the dare console script is not installed (pip install -e .)")
    return found


def test_console_script_run_json():
    completed = subprocess.run(
        [dare_script(), "run", workflow("wf_grouped"), "-m", "multi", "-n", "3", "-i", "2",
         "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    data = json.loads(completed.stdout)
    assert sorted(map(tuple, data["outputs"]["Count"]["output"])) == [
        ("a", 6), ("b", 4), ("c", 2)
    ]
    assert data["summary"]["mapping"] == "multi"
    assert "run summary" in completed.stderr


def test_console_script_usage_error():
    completed = subprocess.run(
        [dare_script(), "run", "no_such_pkg.flows"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip() == (
        "error: cannot import 'no_such_pkg.flows': No module named 'no_such_pkg'"
    )


def test_python_dash_m():
    completed = subprocess.run(
        [sys.executable, "-m", "dare_cli", "--version"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert completed.returncode == 0
    assert completed.stdout == "dare 0.1.0\n"


def _group_survivors(group: int) -> list[int]:
    """Live processes of a process group, waiting up to 5 s for them to end."""
    poll_until(lambda: not group_members(group), 5)
    return group_members(group)


@pytest.mark.parametrize(("stop", "status", "message"), [
    (signal.SIGINT, 130, "error: interrupted"),
    (signal.SIGTERM, 143, "error: terminated (SIGTERM)")], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("mapping_name", ["simple", "multi"])
def test_ctrl_c_stops_cleanly(tmp_path, mapping_name, stop, status, message):
    """Ctrl-C, or a batch system's SIGTERM: dare stops its workers, then exits."""
    marker = tmp_path / "started"
    process = subprocess.Popen(
        [dare_script(), "run", workflow("wf_slow"), "-m", mapping_name, "-n", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "DARE_TEST_MARKER": str(marker)},
        # A shell without job control starts background jobs with SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        # its own process group: whatever it leaves behind is killed below, so that a worker
        # holding the pipes open cannot hang the test suite
        start_new_session=True,
    )
    try:
        wait_until(marker.exists, 30, "the workflow to start (its marker file)")
        process.send_signal(stop)
        process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
        # workers still alive after dare exited are a failure, not a hang
        survivors = _group_survivors(process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate(timeout=20)
    assert survivors == [], f"dare left processes behind: {survivors}"
    assert process.returncode == status
    assert stderr.strip().splitlines()[-1] == message
