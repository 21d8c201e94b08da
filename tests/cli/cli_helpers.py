"""Helpers shared by the CLI tests (fixtures are in ``conftest.py``)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import Result

WORKFLOWS = Path(__file__).parent / "workflows"

#: Mappings every ``dare run`` test runs on (the engine's own tests cover the others).
MAPPINGS = ("simple", "multi")


def workflow(name: str, graph: str | None = None) -> str:
    """Path of ``workflows/<name>.py``, with ``:graph`` if given."""
    path = str(WORKFLOWS / f"{name}.py")
    return path if graph is None else f"{path}:{graph}"


def error_line(result: Result) -> str:
    """The last line of stderr (the ``error: ...`` line)."""
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else ""
