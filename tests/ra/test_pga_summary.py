"""dare_cli.ra.outputs.pga_summary: the PGA of ``dare ra``'s summary table, in %g."""

from __future__ import annotations

import pytest

from dare_cli.ra.outputs import STANDARD_GRAVITY, percent_g, pga_summary


def test_percent_g_of_standard_gravity_is_100():
    assert percent_g(STANDARD_GRAVITY) == pytest.approx(100.0, rel=1e-15)
    assert percent_g(0.0980665) == pytest.approx(1.0, rel=1e-12)


def row(station: str, kind: str, band: str, component: str, pga: float) -> dict:
    return {"station": station, "kind": kind, "band": band, "component": component,
            "pga": pga}


def test_observed_record_and_common_band_synthetic_maxh_only():
    pgm = {
        "rows": [
            row("CI.A", "observed", "record", "maxh", 0.5 * STANDARD_GRAVITY),
            row("CI.A", "observed", "common", "maxh", 9.0),  # the comparison copy: not shown
            row("CI.A", "synthetic", "common", "maxh", 0.1 * STANDARD_GRAVITY),
            row("CI.A", "synthetic", "record", "maxh", 9.0),
            row("CI.A", "observed", "record", "E", 9.0),  # one component: not the table's
            row("CI.B", "gmpe", "record", "maxh", 9.0),
        ],
        "misfits": [
            {"station": "CI.A", "component": "maxh", "metric": "pga", "misfit": -0.7},
            {"station": "CI.A", "component": "maxh", "metric": "pgv", "misfit": 0.2},
            {"station": "CI.B", "component": "rotd50", "metric": "pga", "misfit": 0.3},
        ],
    }
    peaks = pga_summary(pgm)
    assert set(peaks) == {"CI.A"}
    assert peaks["CI.A"]["observed"] == pytest.approx(50.0)
    assert peaks["CI.A"]["synthetic"] == pytest.approx(10.0)
    assert peaks["CI.A"]["misfit"] == -0.7


def test_a_row_without_band_counts_as_the_record():
    pgm = {"rows": [row("CI.C", "observed", "record", "maxh", 1.0)], "misfits": []}
    del pgm["rows"][0]["band"]
    assert pga_summary(pgm) == {"CI.C": {"observed": pytest.approx(100 / STANDARD_GRAVITY)}}
