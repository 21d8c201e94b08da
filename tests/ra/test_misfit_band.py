"""Misfits only where the band observed and synthetic share lets an oscillator respond."""

from __future__ import annotations

from dare_cli.ra.stages.pgm import _psa_outside_band

PERIODS = (0.3, 1.0, 3.0)


def test_a_4_km_specfem_mesh_compares_psa3_only() -> None:
    # the common band of the Ridgecrest example simulated by SPECFEM3D on a 4 km mesh
    # (minimum period resolved 2.59 s, record high-pass 0.037 Hz)
    assert _psa_outside_band(PERIODS, 0.0368, 1 / 2.5926) == {"psa0.3", "psa1"}


def test_a_broadband_solver_compares_every_period() -> None:
    assert _psa_outside_band(PERIODS, 0.0368, 20.0) == set()


def test_a_high_pass_above_the_usable_frequency_drops_long_periods() -> None:
    # usable down to 1.25 times the high-pass corner: 0.333 Hz < 1.25 x 0.3 Hz
    assert _psa_outside_band(PERIODS, 0.3, 20.0) == {"psa3"}
    assert _psa_outside_band(PERIODS, 0.26, 20.0) == set()
    assert _psa_outside_band(PERIODS, None, None) == set()
