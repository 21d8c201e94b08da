"""Global options, ``dare --version``, ``dare mappings`` and the configuration file."""

from __future__ import annotations

import json

import pytest
from cli_helpers import error_line, workflow

from dare_cli import __version__
from engine.mappings import available


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(cli, flag):
    result = cli(flag)
    assert result.exit_code == 0
    assert result.stdout == f"dare {__version__}\n"
    assert __version__ == "0.1.0"


def test_help_lists_commands(cli):
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("run", "mappings", "graph"):
        assert command in result.stdout


def test_mappings_json(cli):
    result = cli("mappings", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert {row["name"]: row["description"] for row in rows} == available()
    assert {"simple", "multi"} <= {row["name"] for row in rows}


def test_mappings_table(cli):
    result = cli("mappings")
    assert result.exit_code == 0
    assert "simple" in result.stdout and "multi" in result.stdout
    assert available()["multi"].split(";")[0] in result.stdout


def test_missing_config(cli, tmp_path):
    path = tmp_path / "absent.toml"
    result = cli("--config", path, "mappings")
    assert result.exit_code == 2
    assert error_line(result) == (
        f"error: cannot read config file '{path}': No such file or directory"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[run]\nmaping = "multi"\n',
         "unknown key 'run.maping' in config file '{path}' "
         "(known keys of [run]: iterations, mapping, options, workers)"),
        ("[ruun]\nworkers = 2\n",
         "unknown key 'ruun' in config file '{path}' (known sections: run)"),
        ('[run]\nworkers = "two"\n',
         "key 'run.workers' in config file '{path}' must be an integer, not a string"),
        ("[run]\nworkers = 0\n",
         "key 'run.workers' in config file '{path}' must be >= 1, not 0"),
        ("[run]\niterations = true\n",
         "key 'run.iterations' in config file '{path}' must be an integer, not a boolean"),
        ("run = 3\n", "key 'run' in config file '{path}' must be a table [run]"),
    ],
)
def test_invalid_config(cli, tmp_path, text, message):
    path = tmp_path / "dare.toml"
    path.write_text(text)
    result = cli("--config", path, "run", workflow("wf_pipeline"))
    assert result.exit_code == 2
    assert error_line(result) == "error: " + message.format(path=path)
    assert result.stdout == ""


def test_config_that_is_not_toml(cli, tmp_path):
    path = tmp_path / "dare.toml"
    path.write_text("[run\n")
    result = cli("--config", path, "mappings")
    assert result.exit_code == 2
    assert error_line(result).startswith(f"error: config file '{path}' is not valid TOML: ")
