"""``-v``/``-q`` after the subcommand mean what they mean before it."""

from __future__ import annotations

import json

import typer
from cli_helpers import workflow

from dare_cli.main import add_global_options, app

LOGGING_FLOW = (
    "import logging\n"
    "from engine import IterativePE, WorkflowGraph\n"
    "from engine.testing import ListSource\n"
    "class Talk(IterativePE):\n"
    "    def apply(self, data):\n"
    "        logging.getLogger('talk').info(f'info {data}')\n"
    "        logging.getLogger('talk').debug(f'debug {data}')\n"
    "        return data\n"
    "graph = WorkflowGraph()\n"
    "graph.connect(ListSource([7]), 'output', Talk(), 'input')\n"
)


def _leaves(command, path=()):
    subcommands = getattr(command, "commands", None)
    if not subcommands:
        yield path, command
        return
    for name, sub in subcommands.items():
        yield from _leaves(sub, (*path, name))


def test_every_command_and_group_takes_v_and_q_once():
    root = typer.main.get_command(app)
    seen = 0
    for path, command in _leaves(root):
        opts = [opt for param in command.params for opt in param.opts]
        assert opts.count("-v") == 1 and opts.count("-q") == 1, path
        assert opts.count("--verbose") == 1 and opts.count("--quiet") == 1, path
        seen += 1
    assert seen >= 15
    for group in ("ra", "climate", "graph"):
        assert "-q" in [o for p in root.commands[group].params for o in p.opts]


def test_an_option_of_a_command_is_not_replaced():
    own = typer.Typer()

    @own.command()
    def show(level: int = typer.Option(0, "--verbose", "-v", help="its own")) -> None:
        """A command whose -v means something else."""

    command = typer.main.get_command(own)
    add_global_options(command)
    verbose = [p for p in command.params if "-v" in p.opts]
    assert len(verbose) == 1 and verbose[0].name == "level"
    assert any("-q" in p.opts for p in command.params)


def test_quiet_after_the_subcommand(cli):
    before = cli("-q", "run", workflow("wf_pipeline"))
    after = cli("run", workflow("wf_pipeline"), "-q")
    normal = cli("run", workflow("wf_pipeline"))
    assert before.exit_code == after.exit_code == normal.exit_code == 0
    assert "run summary" in normal.stderr
    assert after.stderr == before.stderr == ""
    assert after.stdout == before.stdout == normal.stdout


def test_verbose_after_the_subcommand_shows_tracebacks_and_logs(cli, tmp_path):
    result = cli("run", tmp_path / "missing.py", "-v")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: cannot import")
    assert "Traceback" not in cli("run", tmp_path / "missing.py").stderr

    module = tmp_path / "talk.py"
    module.write_text(LOGGING_FLOW)
    result = cli("run", module, "-v")
    assert "info 7" in result.stderr and "debug 7" not in result.stderr
    result = cli("-v", "run", module, "-v")  # counted together: -vv
    assert "debug 7" in result.stderr
    result = cli("run", module, "-vv")
    assert "debug 7" in result.stderr


def test_global_options_after_ra_and_climate_subcommands(cli):
    result = cli("ra", "run", "--example", "ridgecrest", "--mapping", "bogus", "-v")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    result = cli("ra", "examples", "-q", "--json")
    assert result.exit_code == 0 and "ridgecrest" in result.stdout
    result = cli("climate", "index", "--help")
    assert "--quiet" in result.stdout


def test_config_after_the_commands_that_read_it(cli, tmp_path):
    config = tmp_path / "dare.toml"
    config.write_text('[run]\nmapping = "multi:2"\n')
    result = cli("run", workflow("wf_pipeline"), "--config", config, "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)["summary"]
    assert (summary["mapping"], summary["workers"]) == ("multi", 2)
    other = tmp_path / "other.toml"
    other.write_text('[run]\nmapping = "simple"\n')
    result = cli("--config", other, "run", workflow("wf_pipeline"), "--config", config, "--json")
    assert json.loads(result.stdout)["summary"]["mapping"] == "multi"  # the later one wins
    result = cli("run", workflow("wf_pipeline"), "--config", tmp_path / "missing.toml")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: cannot read config file '{tmp_path / 'missing.toml'}': No such file or "
        "directory")
    config.write_text("[run]\nworkers = 3\n")
    result = cli("graph", "show", workflow("wf_pipeline"), "--partitions", "--config", config,
                 "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["plan"]["workers"] == 3
    # dare ra reads its own CONFIG argument: no --config there
    assert cli("ra", "run", "--example", "ridgecrest", "--config", config).exit_code == 2
