"""A mapping is a plugin: its module and its distribution's entry point, nothing else.

The test installs, the way pip would (a ``.dist-info`` folder with ``entry_points.txt`` on
``sys.path``), a distribution that dare has never heard of, with one mapping and one start-up
hook, and runs the command line on it in a fresh process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.errors import EngineError
from engine.mappings import available, get_mapping

PLUGIN = '''
"""A third-party mapping: every instance in this process, breadth-first, by the contract."""

import os
from pathlib import Path

from engine.mappings.base import Enactment, Mapping, collect_outputs
from engine.mappings.simple import SimpleMapping


class Reversed(Mapping):
    name = "reversed"
    description = "the simple mapping, outputs reversed (a plugin test)"
    options = ("timing",)

    def enact(self, prepared, observers, options):
        done = SimpleMapping().enact(prepared, observers, options)
        outputs = {pe: {port: values[::-1] for port, values in ports.items()}
                   for pe, ports in done.outputs.items()}
        return Enactment(outputs, done.instances, processes=1)


def start():
    marker = os.environ.get("PLUGIN_STARTED")
    if marker:
        Path(marker).write_text("started")
'''


@pytest.fixture
def plugin_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "thirdparty_mapping").mkdir(parents=True)
    (site / "thirdparty_mapping" / "__init__.py").write_text(PLUGIN)
    info = site / "thirdparty_mapping-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-mapping\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [dare.mappings]
        reversed = thirdparty_mapping:Reversed

        [dare.startup]
        thirdparty = thirdparty_mapping:start
        """))
    return site


def _dare(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(site), **env}
    return subprocess.run([sys.executable, "-m", "dare_cli", *args], capture_output=True,
                          text=True, env=environment, timeout=120, check=False)


def test_an_installed_plugin_mapping_runs_from_the_command_line(plugin_site: Path,
                                                                 tmp_path: Path) -> None:
    marker = tmp_path / "started.txt"
    listed = _dare(plugin_site, "mappings", "--json", PLUGIN_STARTED=str(marker))
    assert listed.returncode == 0, listed.stderr
    assert "reversed" in {row["name"] for row in json.loads(listed.stdout)}
    assert marker.read_text() == "started"  # its start-up hook ran first thing
    ran = _dare(plugin_site, "run", "engine.examples.wordcount", "--mapping", "reversed",
                "--json")
    assert ran.returncode == 0, ran.stderr
    reference = _dare(plugin_site, "run", "engine.examples.wordcount", "--json")
    ours, theirs = json.loads(ran.stdout), json.loads(reference.stdout)
    assert ours["summary"]["mapping"] == "reversed"
    for pe, ports in theirs["outputs"].items():
        for port, values in ports.items():
            assert ours["outputs"][pe][port] == values[::-1]


def test_the_registry_is_the_entry_points() -> None:
    assert set(available()) >= {"simple", "multi", "mpi", "dynamic", "redis", "kafka"}
    assert type(get_mapping("multi")).__module__ == "engine.mappings.multi"


def test_an_entry_point_that_is_not_a_mapping_is_refused(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    from importlib.metadata import EntryPoint

    import engine.mappings as registry

    fake = EntryPoint("notamapping", "os.path:join", "dare.mappings")
    monkeypatch.setattr(registry, "_registry", lambda: {"notamapping": fake})
    with pytest.raises(EngineError, match=r"is not a subclass of engine\.mappings\.Mapping"):
        get_mapping("notamapping")
