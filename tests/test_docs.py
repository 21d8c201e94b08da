"""The user documentation in docs/ agrees with the code it describes.

* docs/configuration.md: every table lists exactly the keys its loader accepts, with the code's
  defaults.
* docs/outputs.md: the files, pgm.csv columns, report.json keys and stationlist.json properties
  it lists are exactly those of the bundled example's run folder; the climate netCDF's
  attributes are those it lists.
* docs/writing-pes.md: its files are written, its Python blocks and ``dare`` commands run, and
  they print what the page shows.
* docs/troubleshooting.md: every dare message it quotes occurs in engine/ or dare_cli/, every
  environment variable it names is read there, and its exit codes are dare_cli.context's.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


# --- helpers ---------------------------------------------------------------------------------

def sections(path: Path) -> dict[str, str]:
    """``{heading: body}`` of every ``###`` section of a page."""
    text = path.read_text()
    parts = re.split(r"^(##|###) (.+)$", text, flags=re.M)
    return {parts[i + 1].strip(): parts[i + 2] for i in range(1, len(parts), 3)
            if parts[i] == "###"}


def table_rows(body: str) -> list[list[str]]:
    """The data rows of the first Markdown table in ``body`` (header and rule dropped)."""
    rows = [line for line in body.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in row.strip().strip("|").split("|")] for row in rows]
    return cells[2:]


def key_rows(body: str) -> dict[str, list[str]]:
    """``{key: row}`` of a ``| key | type | default | meaning |`` table."""
    return {row[0].strip("`"): row for row in table_rows(body)}


def normalise(value: Any) -> Any:
    """A code default as TOML would write it (tuples as arrays, mappings as tables)."""
    if isinstance(value, tuple):
        return [normalise(v) for v in value]
    if isinstance(value, Mapping):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


MISSING = object()
NOT_PLAIN = object()


def documented_default(cell: str) -> Any:
    """The value of a default cell: a TOML literal in backticks, unset (None) or required."""
    if cell.startswith("unset"):
        return None
    if cell.startswith("required"):
        return MISSING
    literal = re.fullmatch(r"`([^`]*)`", cell)
    if literal is None:
        return NOT_PLAIN
    return tomllib.loads(f"v = {literal.group(1)}")["v"]


def field_defaults(cls: Any) -> dict[str, Any]:
    """``{field: default}`` of a dataclass (MISSING for a required field)."""
    defaults = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
        else:
            defaults[f.name] = MISSING
    return defaults


# --- docs/configuration.md ---------------------------------------------------------------------

def _known_keys_from_error(data: dict[str, Any], parse: Any) -> list[str]:
    """The known keys a loader lists when it refuses an unknown key."""
    with pytest.raises(Exception) as caught:
        parse(data)
    message = str(caught.value)
    listed = re.search(r"known(?: keys)?: (.*)$", message)
    assert listed, message
    return [k.strip() for k in listed.group(1).split(",")]


def code_tables() -> dict[str, dict[str, Any]]:
    """``{heading: {key: default}}`` of every configuration table, read from the code."""
    from dare_cli.climate import config as climate
    from dare_cli.climate.compute import IndexRequest
    from dare_cli.commands.run import DEFAULT_MAPPING
    from dare_cli.config import RunDefaults
    from dare_cli.ra import config as ra
    from dare_cli.ra.download import DownloadConfig
    from dare_cli.ra.gmpe import GMPEConfig
    from dare_cli.ra.preprocess import PreprocessConfig
    from dare_cli.ra.simulate.embedded import EmbeddedConfig, Medium
    from dare_cli.ra.simulate.specfem.backends import SpecfemConfig
    from dare_cli.ra.simulate.specfem.kubernetes import KubernetesConfig

    def ra_parse(data: dict[str, Any]) -> Any:
        return ra.parse_config(data, Path("doc.toml"))

    defaults = ra.RAConfig()
    run_keys = _known_keys_from_error({"run": {"zzz": 1}}, ra_parse)
    assert set(run_keys) == {"out", "mapping", "mappings"}
    simulate_keys = _known_keys_from_error({"simulate": {"zzz": 1}}, ra_parse)
    simulate = {key: field_defaults(EmbeddedConfig).get(key, NOT_PLAIN) for key in simulate_keys}
    simulate["solver"] = defaults.solver
    simulate["specfem"] = {}
    # [simulate.specfem] accepts its dataclass's fields and the kubernetes table
    ra_parse({"simulate": {"specfem": {"kubernetes": {}}}})
    specfem = field_defaults(SpecfemConfig) | {"kubernetes": {}}
    index_defaults = field_defaults(IndexRequest)
    index = {key: MISSING if key in ("name", "output") else NOT_PLAIN
             for key in climate.INDEX_KEYS}
    index.update(slice_mode=index_defaults["slice_mode"], var=[],
                 time_range=None, base_period=None, threshold=None, out_unit=None,
                 stage_out=None)
    return {
        "`[run]`": {"out": defaults.out, "mapping": None, "mappings": dict(defaults.mappings)},
        "`[download]`": field_defaults(DownloadConfig),
        "`[source]`": field_defaults(ra.SourceConfig),
        "`[simulate]`": simulate,
        "`[simulate.medium]`": field_defaults(Medium),
        "`[simulate.specfem]`": specfem,
        "`[simulate.specfem.kubernetes]`": field_defaults(KubernetesConfig),
        "`[preprocess]`": field_defaults(PreprocessConfig),
        "`[pgm]`": field_defaults(ra.PGMConfig),
        "`[gmpe]`": field_defaults(GMPEConfig),
        "`[plot]`": field_defaults(ra.PlotConfig),
        "`[run]` (climate)": {"inputs": MISSING, "mapping": DEFAULT_MAPPING, "workers": None,
                              "tile": None} | {k: NOT_PLAIN for k in climate.RUN_KEYS
                                               if k not in ("inputs", "mapping", "workers",
                                                            "tile")},
        "`[[index]]` (climate; one per index, at least one)": index,
        "`[run]` (dare.toml)": {key: (dict(RunDefaults().options) if key == "options" else None)
                                for key in RunDefaults.KEYS},
    }


CONFIG_PAGE = DOCS / "configuration.md"


def test_configuration_page_has_every_table():
    assert set(code_tables()) <= set(sections(CONFIG_PAGE))


@pytest.mark.parametrize("heading", list(code_tables()))
def test_configuration_keys_are_the_codes(heading):
    page = key_rows(sections(CONFIG_PAGE)[heading])
    code = code_tables()[heading]
    assert not set(page) - set(code), f"{heading}: documented but unknown to the code"
    assert not set(code) - set(page), f"{heading}: accepted by the code but not documented"


@pytest.mark.parametrize("heading", list(code_tables()))
def test_configuration_defaults_are_the_codes(heading):
    page = key_rows(sections(CONFIG_PAGE)[heading])
    code = code_tables()[heading]
    for key, row in page.items():
        if key not in code:  # test_configuration_keys_are_the_codes reports it
            continue
        documented = documented_default(row[2])
        expected = code[key]
        if documented is NOT_PLAIN or expected is NOT_PLAIN:
            continue
        if expected is MISSING or documented is MISSING:
            assert documented is expected, f"{heading} {key}: required in one only"
        elif dataclasses.is_dataclass(expected):
            continue
        else:
            assert documented == normalise(expected), f"{heading} {key}: default {row[2]}"


def test_configuration_example_files_load():
    """The example TOML blocks of the page are accepted by their loaders."""
    from dare_cli.config import parse_config as parse_dare_toml
    from dare_cli.ra.config import parse_config as parse_ra

    text = CONFIG_PAGE.read_text()
    blocks = re.findall(r"```toml\n(.*?)```", text, re.S)
    assert len(blocks) == 3
    parse_ra(tomllib.loads(blocks[0]), Path("doc.toml"))
    climate = tomllib.loads(blocks[1])
    from dare_cli.climate import config as climate_command
    assert set(climate["run"]) <= set(climate_command.RUN_KEYS)
    parse_dare_toml(tomllib.loads(blocks[2]), "doc.toml")


def test_ridgecrest_example_uses_documented_keys():
    example = tomllib.loads((ROOT / "dare_cli/ra/examples/ridgecrest/ridgecrest.toml")
                            .read_text())
    documented = {heading: set(key_rows(body)) for heading, body in
                  sections(CONFIG_PAGE).items()}
    for table, keys in example.items():
        for key, value in keys.items():
            if isinstance(value, dict) and f"`[{table}.{key}]`" in documented:
                assert set(value) <= documented[f"`[{table}.{key}]`"]
            assert key in documented[f"`[{table}]`"], f"[{table}] {key}"


# --- docs/outputs.md ---------------------------------------------------------------------------

OUTPUTS_PAGE = DOCS / "outputs.md"
STAGES = ("download", "simulate", "preprocess", "norm", "match", "pgm", "geojson", "plot")


def run_command(*args: str, cwd: Path | None = None, timeout: float = 600
                ) -> subprocess.CompletedProcess[str]:
    """Run the ``dare`` console script of this environment."""
    dare = Path(sys.executable).with_name("dare")
    return subprocess.run([str(dare), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def ridgecrest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled example's run folder (run once for this module)."""
    run_dir = tmp_path_factory.mktemp("outputs") / "ra-ridgecrest"
    done = run_command("ra", "run", "--example", "ridgecrest", "--out", str(run_dir), "-q")
    assert done.returncode == 0, done.stderr
    return run_dir


def names_in(cell: str) -> list[str]:
    """The backticked names of a table cell."""
    return re.findall(r"`([^`]+)`", cell)


def test_outputs_top_level_files(ridgecrest):
    rows = table_rows(sections(OUTPUTS_PAGE)["Top-level files"])
    documented = set()
    for row in rows:
        if "..." in row[0]:
            documented.update(f"{stage}/" for stage in STAGES)
        else:
            documented.update(names_in(row[0]))
    produced = {p.name + ("/" if p.is_dir() else "") for p in ridgecrest.iterdir()}
    assert documented == produced


def _pattern(path: str) -> re.Pattern[str]:
    text = re.escape(path)
    text = text.replace(r"NET\.STA", r"[A-Z0-9]+\.[A-Z0-9]+").replace("CHA", "[A-Z0-9]{3}")
    return re.compile(text.replace(r"\.Q\.", r"\.(ACC|VEL|DISP)\."))


def test_outputs_stage_folders(ridgecrest):
    rows = table_rows(sections(OUTPUTS_PAGE)["Stage folders"])
    patterns = [_pattern(name) for row in rows for name in names_in(row[0])]
    produced = [str(p.relative_to(ridgecrest)) for stage in STAGES
                for p in (ridgecrest / stage).rglob("*") if p.is_file()]
    import json

    marker_text = re.search(r"holds a `\.stage\.json` marker with the keys (.*?)\. dare never",
                            OUTPUTS_PAGE.read_text(), re.S).group(1)
    marker_keys = {"fingerprint", "summary", "mapping", "workers"}
    assert marker_keys <= set(names_in(marker_text))
    for stage in STAGES:
        assert set(json.loads((ridgecrest / stage / ".stage.json").read_text())) == marker_keys
    for stage in ("simulate", "preprocess", "norm"):
        for mseed in (ridgecrest / stage).rglob("*.mseed"):
            assert mseed.with_name(mseed.name + ".json").is_file(), mseed
    listed = [p for p in produced
              if not p.endswith((".stage.json", ".mseed.json"))]
    unlisted = [p for p in listed if not any(pt.fullmatch(p) for pt in patterns)]
    assert not unlisted, "produced but not documented"
    unused = [pt.pattern for pt in patterns if not any(pt.fullmatch(p) for p in listed)]
    assert not unused, "documented but not produced"


def test_outputs_pgm_columns(ridgecrest):
    import csv

    periods = tomllib.loads((ROOT / "dare_cli/ra/examples/ridgecrest/ridgecrest.toml")
                            .read_text())["pgm"]["periods"]
    documented = []
    for row in table_rows(sections(OUTPUTS_PAGE)["`pgm.csv` columns"]):
        name = names_in(row[0])[0]
        documented += ([name.replace("<T>", str(float(t))) for t in periods] if "<T>" in name
                       else [name])
    with (ridgecrest / "pgm.csv").open() as handle:
        header = next(csv.reader(handle))
    assert documented == header


def test_outputs_report_json(ridgecrest):
    import json

    report = json.loads((ridgecrest / "report.json").read_text())
    body = sections(OUTPUTS_PAGE)["`report.json`"]
    top, stage = re.split(r"^Each entry of `stages`:$", body, flags=re.M)
    assert set(key_rows(top)) == set(report)
    for entry in report["stages"]:
        assert set(key_rows(stage)) == set(entry)
    assert [entry["name"] for entry in report["stages"]] == list(STAGES)


def test_outputs_stationlist(ridgecrest):
    import json

    stations = json.loads((ridgecrest / "stationlist.json").read_text())
    assert set(stations) == {"type", "event", "rejected", "features"}
    assert stations["type"] == "FeatureCollection"
    properties = set().union(*(f["properties"] for f in stations["features"]))
    assert set(key_rows(sections(OUTPUTS_PAGE)["`stationlist.json`"])) == properties


def test_outputs_pandas_example(ridgecrest, monkeypatch, capsys):
    text = OUTPUTS_PAGE.read_text()
    code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    shown = re.search(r"```python\n.*?```\n\n```text\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(ridgecrest.parent)
    exec(compile(code, str(OUTPUTS_PAGE), "exec"), {"__name__": "docs"})
    printed = capsys.readouterr().out
    assert printed.split()[:4] == shown.split()[:4]
    lines = [line.split() for line in printed.strip().splitlines()[2:]]
    expected = [line.split() for line in shown.strip().splitlines()[2:]]
    assert [line[0] for line in lines] == [line[0] for line in expected]
    for got, want in zip(lines, expected, strict=True):
        assert [float(v) for v in got[1:]] == pytest.approx([float(v) for v in want[1:]],
                                                            rel=1e-4)


def test_outputs_climate_netcdf(tmp_path):
    xarray = pytest.importorskip("xarray")
    data = ROOT / "tests/climate/data/tasmax_CanESM2_2095_12x12.nc"
    done = run_command("climate", "index", "SU", "--input", str(data), "--output",
                       str(tmp_path / "su.nc"), "--tile", "lat=6,lon=6", "-q")
    assert done.returncode == 0, done.stderr
    body = OUTPUTS_PAGE.read_text().split("## `dare climate`: the netCDF")[1]
    rows = table_rows(body)
    attributes = {name for row in rows[2:] for name in names_in(row[0])}
    with xarray.open_dataset(tmp_path / "su.nc") as dataset:
        assert set(dataset.attrs) == attributes
        assert list(dataset.data_vars) == ["SU"]
        assert {"time", "time_bounds"} <= set(dataset.variables)
        last = dataset.attrs["history"].strip().splitlines()[-1]
    assert re.fullmatch(r"\S+ dare \S+: dare climate index SU: icclim index SU over \S+ "
                        r"in spatial tiles \(mapping simple\)", last), last


# --- docs/writing-pes.md -----------------------------------------------------------------------

PES_PAGE = DOCS / "writing-pes.md"


def page_blocks(path: Path) -> list[tuple[str, str, str | None]]:
    """``(language, code, expected stdout or None)`` of every code block of a page.

    A ```` ```text ```` block right after a python or bash block is that block's output.
    """
    blocks = re.findall(r"```(\w+)\n(.*?)```", path.read_text(), re.S)
    result = []
    for number, (language, code) in enumerate(blocks):
        if language == "text":
            continue
        following = blocks[number + 1] if number + 1 < len(blocks) else None
        expected = following[1] if following and following[0] == "text" else None
        result.append((language, code, expected))
    return result


@pytest.fixture(scope="module")
def pes_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the page's files (``# file: NAME`` blocks)."""
    folder = tmp_path_factory.mktemp("writing-pes")
    for language, code, _ in page_blocks(PES_PAGE):
        first = code.splitlines()[0]
        if language == "python" and first.startswith("# file: "):
            (folder / first.removeprefix("# file: ").strip()).write_text(code)
    return folder


def _pes_cases(kind: str) -> list[Any]:
    cases = []
    for number, (language, code, expected) in enumerate(page_blocks(PES_PAGE)):
        if language == "python" and not code.startswith("# file: ") and kind == "python":
            cases.append(pytest.param(code, expected, id=f"python-{number}"))
        elif language == "bash" and kind == "bash":
            cases.append(pytest.param(code, expected, id=f"bash-{number}"))
    return cases


def test_writing_pes_page_has_its_blocks():
    blocks = page_blocks(PES_PAGE)
    files = [c for lang, c, _ in blocks if lang == "python" and c.startswith("# file: ")]
    assert len(files) == 2
    assert len(_pes_cases("python")) == 2
    assert len(_pes_cases("bash")) == 4
    assert all(expected is not None for _, code, expected in blocks
               if not code.startswith("# file: "))


def _same_output(printed: str, expected: str, code: str) -> None:
    got = [line.rstrip() for line in printed.strip().splitlines()]
    want = [line.rstrip() for line in expected.strip().splitlines()]
    if "multi" in code:  # instances finish in any order: the same lines, in any order
        got, want = sorted(got), sorted(want)
    assert got == want


@pytest.mark.parametrize(("code", "expected"), _pes_cases("python"))
def test_writing_pes_python_blocks(pes_folder, code, expected):
    script = pes_folder / "snippet.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], cwd=pes_folder, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    _same_output(done.stdout, expected, code)


@pytest.mark.parametrize(("code", "expected"), _pes_cases("bash"))
def test_writing_pes_commands(pes_folder, code, expected):
    printed = ""
    for line in code.strip().splitlines():
        args = shlex.split(line)
        assert args[0] == "dare", line
        done = run_command(*args[1:], cwd=pes_folder, timeout=300)
        assert done.returncode == 0, done.stderr
        printed += done.stdout
    _same_output(printed, expected, code)


# --- docs/troubleshooting.md -------------------------------------------------------------------

TROUBLE_PAGE = DOCS / "troubleshooting.md"


def source_text() -> str:
    """The Python source of engine/ and dare_cli/, adjacent string literals joined.

    Long messages are written as implicitly concatenated literals over several lines; joining
    ``"...␤    f"...`` lets a quoted message that spans them be found.
    """
    texts = [path.read_text() for package in ("engine", "dare_cli")
             for path in sorted((ROOT / package).rglob("*.py"))]
    joined = "\n".join(texts)
    return re.sub(r"""(["'])\s*\n\s*[rf]{0,2}(["'])""", "", joined)


def quoted_messages() -> list[str]:
    body = TROUBLE_PAGE.read_text().split("## Error messages", 1)[1]
    return [names_in(row[0])[0] for row in table_rows(body)]


def test_troubleshooting_quotes_messages():
    assert len(quoted_messages()) >= 20


@pytest.mark.parametrize("message", quoted_messages())
def test_troubleshooting_message_is_in_the_code(message):
    source = source_text()
    # '…' in the page is {value!r} in the code: the quotes belong to the varying part
    fragments = [f.strip() for f in message.replace("'…'", "…").split("…")]
    for fragment in filter(None, fragments):
        assert fragment in source, f"{fragment!r} not in engine/ or dare_cli/"


def test_troubleshooting_environment_variables_exist():
    named = set(re.findall(r"\b((?:DARE|OMPI|PMI|SLURM)_[A-Z0-9_]+)\b", TROUBLE_PAGE.read_text()))
    assert {"DARE_QUEUE_SECRET", "DARE_REDIS_URL", "DARE_KAFKA_BOOTSTRAP"} <= named
    source = source_text()
    missing = sorted(name for name in named if name not in source)
    assert not missing, f"named in the page, unknown to the code: {missing}"


def test_troubleshooting_exit_codes_are_the_codes():
    from dare_cli import context

    rows = table_rows(TROUBLE_PAGE.read_text().split("## Exit codes", 1)[1])
    documented = {int(row[0]) for row in rows if row[0].isdigit()}
    assert documented == {0, context.EXIT_FAILED, context.EXIT_USAGE, context.EXIT_INTERRUPTED,
                          context.EXIT_TERMINATED}


def test_troubleshooting_unit_timeout_example(pes_folder):
    """The page's unit_timeout error is what dare prints for a PE that hangs."""
    shown = re.search(r"```text\n(error: PE .*?)\n```", TROUBLE_PAGE.read_text(), re.S).group(1)
    (pes_folder / "slow.py").write_text(
        "import time\n"
        "from engine import IterativePE, WorkflowGraph\n"
        "from engine.testing import ListSource\n\n\n"
        "class Slow(IterativePE):\n"
        "    def apply(self, x):\n"
        "        time.sleep(30)\n"
        "        return x\n\n\n"
        "graph = WorkflowGraph()\n"
        "graph.connect(ListSource([1]), 'output', Slow(), 'input')\n")
    done = run_command("run", "slow.py", "--unit-timeout", "1", cwd=pes_folder, timeout=120)
    assert done.returncode == 1
    assert " ".join(done.stderr.split()) == " ".join(shown.split())
