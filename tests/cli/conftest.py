"""Fixtures of the CLI tests: an in-process runner and the workflow modules in ``workflows/``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from dare_cli.main import app


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Invoke ``dare`` in-process; ``result.stdout`` and ``result.stderr`` are separate."""
    runner = CliRunner()

    def invoke(*args: Any, input: str | None = None) -> Result:
        return runner.invoke(app, [str(arg) for arg in args], input=input,
                             catch_exceptions=False)

    return invoke


@pytest.fixture
def run_json(cli: Callable[..., Result]) -> Callable[..., dict[str, Any]]:
    """``dare run ... --json``: check the exit code is 0, return the parsed stdout."""

    def invoke(*args: Any) -> dict[str, Any]:
        result = cli("run", *args, "--json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    return invoke
