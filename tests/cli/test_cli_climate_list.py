"""``dare climate list``: every index with its definition and parameters, as a table or JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from dare_cli.commands.climate import parameters_text


def _dare(*args: str) -> subprocess.CompletedProcess[str]:
    # icclim and netCDF in their own process, as the climate tests do; a wide table
    env = {**os.environ, "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", "dare_cli", *args], capture_output=True,
                          text=True, timeout=600, env=env)


def test_list_shows_definitions_and_parameters():
    done = _dare("climate", "list", "--json")
    assert done.returncode == 0, done.stderr
    indices = {item["name"]: item for item in json.loads(done.stdout)}
    assert len(indices) >= 80
    assert all(item["definition"] for item in indices.values())
    assert indices["SU"]["definition"] == "Number of Summer Days (Tmax > 25C)."
    assert indices["SU"]["parameters"] == {"threshold": "> 25 degree_Celsius",
                                           "output_unit": "day"}
    tx90p = indices["TX90p"]
    assert tx90p["parameters"]["threshold"] == "> 90 doy_per"
    assert tx90p["parameters"]["doy_window_width"] == "5"
    assert tx90p["percentile_based"] and tx90p["needs_base_period"]
    assert "threshold" in indices["count_occurrences"]["parameters"]

    done = _dare("climate", "list")
    assert done.returncode == 0, done.stderr
    su = next(line for line in done.stdout.splitlines() if line.startswith("│ SU "))
    cells = [cell.strip() for cell in su.strip("│").split("│")]
    assert cells == ["SU", "ECA&D", "tasmax", "threshold: > 25 degree_Celsius; output_unit: day",
                     "Number of Summer Days (Tmax > 25C)."]


def test_parameters_text_names_the_base_period():
    item = {"parameters": {"threshold": "> 90 doy_per", "doy_window_width": "5"},
            "needs_base_period": True}
    assert parameters_text(item) == ("threshold: > 90 doy_per; doy_window_width: 5; "
                                     "base period (--base-period)")
