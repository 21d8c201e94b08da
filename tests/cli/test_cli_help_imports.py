"""``dare --help`` stays quick: the science stack is imported only by the commands that use it.

A test on the modules imported, not on wall-clock time (which depends on the machine's load).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Never imported to show help (each costs from 0.1 s to several seconds).
HEAVY = ("obspy", "numpy", "xarray", "icclim", "matplotlib", "scipy", "pandas", "dask",
         "xclim", "cartopy", "pygmm", "netCDF4", "h5py", "redis", "mpi4py",
         "pydantic")  # typer coerces non-boolean options with it: dare_cli.main avoids that

PROBE = """
import json, sys
heavy = json.loads(sys.argv[2])
sys.argv = ["dare", *json.loads(sys.argv[1])]
from dare_cli.main import app
code = None
try:
    app(prog_name="dare")
except SystemExit as done:
    code = done.code
print(json.dumps({"code": code, "heavy": sorted({m.split(".")[0] for m in sys.modules
                                                 if m.split(".")[0] in heavy}),
                  "science": sorted(m for m in sys.modules
                                    if m.startswith(("dare_cli.ra.", "dare_cli.climate.")))}),
      file=sys.stderr)
"""


def _imported(*args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)],
                          capture_output=True, text=True, timeout=120)
    return json.loads(done.stderr.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize("args", [
    ("--help",), ("ra", "--help"), ("climate", "--help"), ("graph", "--help"),
    ("run", "--help"), ("ra", "run", "--help"), ("ra", "simulate", "--help"),
    ("climate", "index", "--help"), ("--version",),
], ids=" ".join)
def test_help_imports_no_science_stack(args):
    imported = _imported(*args)
    assert imported["code"] == 0
    assert imported["heavy"] == []
    assert imported["science"] == []


def test_the_probe_sees_a_heavy_import():
    """The probe is not blind: a command that needs the stack does import it."""
    imported = _imported("ra", "examples", "--json")
    assert imported["code"] in (0, None)
    imported = _imported("ra", "run", "--example", "ridgecrest", "--mapping", "bogus")
    assert imported["code"] == 2 and "obspy" in imported["heavy"]
