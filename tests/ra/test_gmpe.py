"""GMPE baseline: pygmm against OpenQuake, ps2ff distances, Ridgecrest, errors, cost."""

from __future__ import annotations

import csv
import dataclasses
import math
import pickle
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from obspy import read_inventory

from dare_cli.ra import gmpe
from dare_cli.ra.errors import ConfigError
from dare_cli.ra.gmpe import (
    Earthquake,
    GMPEConfig,
    Scenario,
    Station,
    evaluate,
    mechanism_from_rake,
    predict,
    residual,
)

DATA = Path(__file__).parent / "data" / "gmpe_reference"
RIDGECREST = Path(__file__).parents[2] / "dare_cli" / "ra" / "examples" / "ridgecrest"
G = 9.80665
#: Tolerances against OpenQuake. Both implement the same published equations and
#: coefficients, so what is left is floating point and coefficient interpolation: 1% on
#: medians is 0.004 log10 units, far below any GMPE's sigma (0.25-0.35 log10) and any misfit
#: we would care about; 2% on sigma, because OpenQuake takes the published rounded total sigma
#: of AGA16 (0.74) where pygmm combines phi and tau (0.738). Measured: 0.31% (ASK14 PSA(0.3)
#: at M 7.1, 5 km, Vs30 270) and 0.25% (AGA16 sigma); all others below 0.01%.
MEDIAN_RTOL = 0.01
SIGMA_RTOL = 0.02
PERIODS = (0.3, 1.0, 3.0)
RIDGECREST_EVENT = Earthquake(7.1, 35.770, -117.599, 8.0, rake=180.0, dip=81.0)


def reference_rows() -> list[dict[str, str]]:
    with open(DATA / "reference.csv") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def reference_scenarios() -> dict[tuple, list[dict[str, str]]]:
    """Rows of reference.csv grouped by (model, scenario)."""
    groups: dict[tuple, list[dict[str, str]]] = defaultdict(list)
    keys = ("model", "mag", "mechanism", "dip", "ztor", "width", "hypo_depth", "rjb", "rrup",
            "rx", "ry0", "rhypo", "repi", "vs30", "vs30measured")
    for row in reference_rows():
        groups[tuple(row[k] for k in keys)].append(row)
    return groups


def scenario_of(row: dict[str, str]) -> Scenario:
    f = {k: float(row[k]) for k in ("mag", "dip", "ztor", "width", "hypo_depth", "rjb", "rrup",
                                    "rx", "ry0", "rhypo", "repi", "vs30")}
    return Scenario(magnitude=f["mag"], mechanism=row["mechanism"], dip=f["dip"],
                    ztor=f["ztor"], width=f["width"], hypo_depth=f["hypo_depth"], rjb=f["rjb"],
                    rrup=f["rrup"], rx=f["rx"], ry0=f["ry0"], rhypo=f["rhypo"], repi=f["repi"],
                    vs30=f["vs30"], vs30_measured=row["vs30measured"] == "1")


def dare_name(reference_model: str) -> tuple[str, str]:
    """(dare model, distance option) of a reference.csv model."""
    if reference_model == "ASB14-repi":
        return "ASB14", "epicentral"
    if reference_model == "ASB14-rhypo":
        return "ASB14", "hypocentral"
    return reference_model, "ps2ff"


def ridgecrest_stations() -> list[Station]:
    stations: list[Station] = []
    for path in sorted((RIDGECREST / "stations").glob("*.xml")):
        stations += gmpe.stations_from_inventory(read_inventory(str(path)))
    return stations


# ---------------------------------------------------------------------------------------------
# against OpenQuake hazardlib

def test_reference_table_covers_the_scenarios():
    rows = reference_rows()
    models = {r["model"] for r in rows}
    assert models == {"BSSA14", "ASK14", "CB14", "CY14", "ASB14", "ASB14-repi", "ASB14-rhypo",
                      "AGA16-interface", "AGA16-intraslab", "AB06"}
    crustal = [r for r in rows if r["model"] == "BSSA14"]
    assert {float(r["mag"]) for r in crustal} == {4.5, 6.0, 7.1}
    assert {float(r["rjb"]) for r in crustal} == {5, 20, 50, 100, 300}
    assert {float(r["vs30"]) for r in crustal} == {270, 760}
    assert {r["mechanism"] for r in crustal} == {"SS", "RS", "U"}
    assert {r["imt"] for r in crustal} == {"pga", "pgv", "psa0.3", "psa1", "psa3"}


def test_medians_and_sigmas_match_openquake():
    worst: dict[str, tuple[float, float]] = {}
    for rows in reference_scenarios().values():
        if rows[0]["model"] == "AB06":
            continue  # not offered: see test_pygmm_ab06_disagrees_with_openquake
        model, distance = dare_name(rows[0]["model"])
        got = evaluate(model, scenario_of(rows[0]), PERIODS, distance)
        for row in rows:
            value = got[row["imt"]]
            assert value is not None, (row["model"], row["imt"])
            median, sigma = math.exp(value[0]), value[1]
            dm = abs(median / float(row["median"]) - 1)
            ds = abs(sigma / float(row["sigma_ln"]) - 1)
            old = worst.get(row["model"], (0.0, 0.0))
            worst[row["model"]] = (max(old[0], dm), max(old[1], ds))
            assert dm < MEDIAN_RTOL, (row, median)
            assert ds < SIGMA_RTOL, (row, sigma)
    # a regression guard as well: every model agrees much better than the tolerance, except
    # the two known differences explained at MEDIAN_RTOL
    assert max(w[0] for w in worst.values()) < 0.004
    assert max(w[1] for w in worst.values()) < 0.003


def test_ngaw2_is_the_weighted_mean_of_the_four_openquake_models():
    groups = reference_scenarios()
    members = ("ASK14", "BSSA14", "CB14", "CY14")
    checked = 0
    for key, rows in groups.items():
        if key[0] != "BSSA14" or key[2] == "U":
            continue
        others = [groups[(m, *key[1:])] for m in members]
        got = evaluate("NGAW2", scenario_of(rows[0]), PERIODS)
        for imt in ("pga", "pgv", "psa1"):
            refs = [next(r for r in rs if r["imt"] == imt) for rs in others]
            ln_mean = sum(0.25 * math.log(float(r["median"])) for r in refs)
            sd = np.array([float(r["sigma_ln"]) for r in refs])
            rho = np.full((4, 4), 0.95)
            np.fill_diagonal(rho, 1.0)
            sigma = math.sqrt(float(0.0625 * sd @ rho @ sd))
            value = got[imt]
            assert value is not None
            assert math.exp(value[0]) == pytest.approx(math.exp(ln_mean), rel=MEDIAN_RTOL)
            assert value[1] == pytest.approx(sigma, rel=SIGMA_RTOL)
            checked += 1
    assert checked == 3 * 3 * 5 * 2 * 2  # imts x magnitudes x distances x vs30 x mechanisms


def test_pygmm_ab06_disagrees_with_openquake():
    """Why dare has no stable-continent model: pygmm 0.8's Atkinson & Boore (2006).

    OpenQuake's AtkinsonBoore2006Modified2011 (AB06 with Atkinson & Boore 2011's stress
    parameter) scales by log10(stress / 140) / log10(2); pygmm by min(2, stress / 140), so
    its medians are 1.5-2.3 times larger (M 4.5-7.1); it also takes the published sigma, 0.30
    in log10 units, as a natural-log one, and returns PGV divided by g. If this test fails,
    pygmm has been fixed and AB06 can be offered.
    """
    import warnings

    import pygmm

    rows = [r for r in reference_rows() if r["model"] == "AB06" and r["mechanism"] == "SS"
            and r["vs30"] == "760" and r["imt"] == "pga"]
    ratios = []
    for row in rows:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = pygmm.AtkinsonBoore2006(pygmm.Scenario(mag=float(row["mag"]),
                                                       dist_rup=float(row["rrup"]), v_s30=760.0))
        ratios.append(float(m.pga) * G / float(row["median"]))
        assert float(m.ln_std_pga) == pytest.approx(float(row["sigma_ln"]) / math.log(10),
                                                     rel=0.01)
    assert min(ratios) > 1.4  # 1.47-1.70 for PGA at 760 m/s; up to 2.3 for PSA(0.3 s)


def test_interpolated_period_lies_between_its_neighbours_in_log_log():
    import pygmm

    periods = pygmm.CampbellBozorgnia2014.PERIODS[pygmm.CampbellBozorgnia2014.INDICES_PSA]
    low, high = 4.0, 5.0
    assert low in periods and high in periods and not ((low < periods) & (periods < high)).any()
    mid = 4.5  # not a period of CB14: interpolated linearly in ln(T) - ln(PSA)
    s = scenario_of(next(r for r in reference_rows() if r["model"] == "CB14"))
    got = evaluate("CB14", s, (low, mid, high))
    ln = {k: v for k, v in got.items() if v is not None}
    w = math.log(mid / low) / math.log(high / low)
    for i in (0, 1):  # ln median and sigma
        expected = (1 - w) * ln["psa4"][i] + w * ln["psa5"][i]
        assert ln["psa4.5"][i] == pytest.approx(expected, abs=1e-12)


def test_pgv_is_none_where_the_model_has_none():
    s = scenario_of(next(r for r in reference_rows() if r["model"] == "AGA16-interface"))
    got = evaluate("AGA16-interface", s, PERIODS)
    assert got["pgv"] is None
    assert got["pga"] is not None


# ---------------------------------------------------------------------------------------------
# ps2ff distances

def ps2ff_table(dist_type: str, mech: str, repi: float, mag: float) -> tuple[float, float]:
    from ps2ff.constants import DistType, MagScaling, Mechanism
    from ps2ff.interpolate import PS2FF

    table = PS2FF.fromParams(DistType(dist_type), MagScaling.HB08, Mechanism(mech), 1.7, 0, 20)
    r, m = np.array([repi]), np.array([mag])
    return float(table.r2r(r, m)[0]), float(table.var(r, m)[0])


@pytest.mark.parametrize(("mag", "mech", "repi", "rel"), [
    # ShakeMap 4.0's tables average the hypocentre over 0-20 km depth; dare computes the
    # event's own depth (10 km here, mid-crust). The Rjb of both agree to a few percent:
    (7.1, "SS", 50.0, 0.08),
    (6.0, "SS", 20.0, 0.08),
    (6.0, "R", 100.0, 0.03),
    (7.1, "SS", 200.0, 0.05),
])
def test_ps2ff_rjb_close_to_shakemap_tables(mag, mech, repi, rel):
    ours = {"SS": "SS", "R": "RS"}[mech]
    rjb, _rrup, _vjb, _vrup = gmpe._ps2ff(mag, 10.0, ours, repi)
    table_rjb, _ = ps2ff_table("Rjb", mech, repi, mag)
    assert rjb == pytest.approx(table_rjb, rel=rel)
    assert rjb <= repi


def test_ps2ff_matches_ps2ff_at_grid_nodes_and_interpolates_within_half_a_percent():
    from ps2ff.constants import MagScaling, Mechanism
    from ps2ff.run import single_event_adjustment

    def direct(repi: float) -> tuple[float, float]:
        _, rjb, rrup, _, _ = single_event_adjustment(
            7.1, 8.0, ar=1.7, mechanism=Mechanism.SS, mag_scaling=MagScaling.HB08, n_repi=1,
            min_repi=repi, max_repi=repi, nxny=7, n_theta=19, n_dip=4,
            min_dip=math.radians(75), max_dip=math.radians(90), n_eps=5, trunc=2)
        return float(rjb[0]), float(rrup[0])

    node = 10 ** (12 / gmpe.PS2FF_NODES_PER_DECADE)  # 31.6 km
    assert gmpe._ps2ff(7.1, 8.0, "SS", node)[:2] == pytest.approx(direct(node), rel=1e-12)
    between = 10 ** (12.5 / gmpe.PS2FF_NODES_PER_DECADE)  # half-way to the next node
    assert gmpe._ps2ff(7.1, 8.0, "SS", between)[:2] == pytest.approx(direct(between), rel=5e-3)


def test_ps2ff_rjb_never_exceeds_repi_and_rrup_reaches_the_hypocentre_for_small_events():
    for mag in (4.5, 7.1):  # each new grid node costs about 0.2 s
        for repi in (0.05, 5.0, 700.0):
            rjb, rrup, vjb, vrup = gmpe._ps2ff(mag, 8.0, "U", repi)
            assert 0 <= rjb <= repi
            assert rrup >= rjb
            assert vjb >= 0 and vrup >= 0
    # a M 4.5 rupture is about 1 km wide: Rrup is nearly the hypocentral distance
    _rjb, rrup, _, _ = gmpe._ps2ff(4.5, 10.0, "SS", 2.0)
    assert rrup == pytest.approx(math.hypot(2.0, 10.0), rel=0.15)


def test_distance_variance_widens_sigma_to_first_order():
    station = [Station("XX.A", 35.77, -117.2)]
    p = predict(RIDGECREST_EVENT, station, PERIODS)[0]
    d = p.distances
    pga = p.motions["pga"]
    assert pga is not None
    assert d.rjb_var > 0
    assert pga.sigma_ln > pga.sigma_ln_model
    s = Scenario(7.1, "SS", 81.0, 0.0, 18.3, 8.0, d.rjb, d.rrup, -d.rjb, 0.0, d.rhypo, d.repi,
                 760.0)
    up = evaluate("BSSA14", Scenario(**{**s.__dict__, "rjb": d.rjb + 1}))["pga"]
    down = evaluate("BSSA14", Scenario(**{**s.__dict__, "rjb": d.rjb - 1}))["pga"]
    assert up is not None and down is not None
    slope = (up[0] - down[0]) / 2
    extra = pga.sigma_ln**2 - pga.sigma_ln_model**2
    assert extra == pytest.approx(slope**2 * d.rjb_var, rel=0.02)
    epi = predict(RIDGECREST_EVENT, station, PERIODS, GMPEConfig(distance="epicentral"))[0]
    assert epi.motions["pga"].sigma_ln == epi.motions["pga"].sigma_ln_model  # type: ignore


# ---------------------------------------------------------------------------------------------
# Ridgecrest

@pytest.fixture(scope="module")
def ridgecrest() -> list[gmpe.Prediction]:
    return predict(RIDGECREST_EVENT, ridgecrest_stations(), PERIODS)


def test_ridgecrest_predictions_are_finite_and_complete(ridgecrest):
    assert len(ridgecrest) == 10
    for p in ridgecrest:
        assert p.model == "BSSA14" and p.library.startswith("pygmm ")
        assert p.mechanism == "SS" and p.vs30 == 760.0 and p.component == "RotD50"
        assert p.outside_range == ()
        assert set(p.motions) == {"pga", "pgv", "psa0.3", "psa1", "psa3"}
        for m in p.motions.values():
            assert m is not None
            assert math.isfinite(m.median) and m.median > 0
            assert 0.5 < m.sigma_ln < 1.0  # BSSA14's 0.6-0.7 plus the distance term
            assert m.sigma_log10 == pytest.approx(m.sigma_ln / math.log(10))
        d = p.distances
        assert 0 < d.rjb <= d.repi < d.rhypo
        assert d.rjb <= d.rrup
        assert d.rhypo == pytest.approx(math.hypot(d.repi, 8.0))


def test_ridgecrest_predictions_decrease_with_distance(ridgecrest):
    by_distance = sorted(ridgecrest, key=lambda p: p.distances.repi)
    assert [p.distances.rjb for p in by_distance] == sorted(p.distances.rjb for p in by_distance)
    for key in ("pga", "pgv", "psa0.3", "psa1", "psa3"):
        values = [p.motions[key].median for p in by_distance]  # type: ignore[union-attr]
        assert values == sorted(values, reverse=True), key
    # and with a wider range of distances
    far = [Station(f"XX.D{i}", 35.77 + dlat, -117.599) for i, dlat in
           enumerate((0.1, 0.3, 0.9, 2.0))]
    pga = [p.motions["pga"].median for p in predict(  # type: ignore[union-attr]
        RIDGECREST_EVENT, far, PERIODS, GMPEConfig(distance="epicentral"))]
    assert pga == sorted(pga, reverse=True)


def test_ridgecrest_nearest_station_pga_is_plausible(ridgecrest):
    nearest = min(ridgecrest, key=lambda p: p.distances.repi)
    assert nearest.station == "CI.WVP2"  # Repi 28 km, expected Rjb 20 km
    pga_g = nearest.motions["pga"].median / G  # type: ignore[union-attr]
    # A Mw 7.1 strike-slip at Rjb 20 km on B/C rock: NGA-West2 medians are 0.12-0.2 g;
    # outside 0.08-0.3 g would mean a unit or distance error, not a model difference.
    assert 0.08 < pga_g < 0.3
    pgv = nearest.motions["pgv"].median * 100  # type: ignore[union-attr]
    assert 5 < pgv < 30  # cm/s


def test_ridgecrest_vs30_override_and_mechanism_from_config():
    stations = ridgecrest_stations()[:2]
    config = GMPEConfig(vs30_by_station={stations[0].code: 270.0}, distance="epicentral")
    soft, rock = predict(RIDGECREST_EVENT, stations, PERIODS, config)
    assert soft.vs30 == 270.0 and rock.vs30 == 760.0
    # softer ground amplifies: PSA(1 s) by about 2.5 in BSSA14 (linear term (270/760)^-1.05)
    ratio = soft.motions["psa1"].median / predict(  # type: ignore[union-attr]
        RIDGECREST_EVENT, stations[:1], PERIODS, GMPEConfig(distance="epicentral"))[0] \
        .motions["psa1"].median
    assert 2.0 < ratio < 3.0
    rs = predict(RIDGECREST_EVENT, stations[:1], PERIODS,
                 GMPEConfig(mechanism="RS", distance="epicentral"))[0]
    assert rs.mechanism == "RS"


def test_every_model_predicts_ridgecrest():
    stations = ridgecrest_stations()[:3]
    for model in gmpe.MODELS:
        for p in predict(RIDGECREST_EVENT, stations, PERIODS,
                         GMPEConfig(model=model, distance="epicentral")):
            pga = p.motions["pga"]
            assert pga is not None and 0.01 * G < pga.median < 1.0 * G, model
            if model.startswith("AGA16"):
                assert p.motions["pgv"] is None
                if model == "AGA16-intraslab":  # 8 km deep: not an intraslab event
                    assert p.outside_range == ("hypocentre depth 8 km < 20 km",)
            else:
                assert p.motions["pgv"] is not None


# ---------------------------------------------------------------------------------------------
# validity flags

def test_outside_range_is_flagged_not_refused():
    far = Station("XX.FAR", 35.77, -117.599 + 412 / 90.3)  # about 412 km east
    p = predict(RIDGECREST_EVENT, [far], PERIODS, GMPEConfig(distance="epicentral"))[0]
    assert p.outside_range == (f"distance Rjb {p.distances.rjb:.0f} km > 400 km",)
    assert 405 < p.distances.rjb < 420
    small = Earthquake(2.5, 35.77, -117.599, 8.0)
    q = predict(small, [Station("XX.NEAR", 35.8, -117.6)], PERIODS,
                GMPEConfig(vs30=100.0, distance="epicentral"))[0]
    assert q.outside_range == ("magnitude 2.5 < 3", "vs30 100 m/s < 150 m/s")
    assert q.mechanism == "U"
    normal = Earthquake(7.4, 35.77, -117.599, 8.0, rake=-90.0)
    r = predict(normal, [Station("XX.NEAR", 35.8, -117.6)], PERIODS,
                GMPEConfig(distance="epicentral"))[0]
    assert r.outside_range == ("normal-faulting magnitude 7.4 > 7",)


def test_ngaw2_flags_name_the_member_and_unspecified_mechanism_is_noted():
    small = Earthquake(3.2, 35.77, -117.599, 8.0)
    p = predict(small, [Station("XX.NEAR", 35.8, -117.6)], PERIODS,
                GMPEConfig(model="NGAW2", distance="epicentral"))[0]
    assert p.outside_range == ("CB14: magnitude 3.2 < 3.3", "CY14: magnitude 3.2 < 3.5")
    assert p.notes == ("ASK14 has no unspecified mechanism: strike-slip assumed",
                       "CB14 has no unspecified mechanism: strike-slip assumed")


def test_mechanism_from_rake():
    assert mechanism_from_rake(None) == "U"
    assert [mechanism_from_rake(r) for r in (0, 180, -180, 90, -90, 29, 31, 149, 151, -31,
                                              -149, 270, -270)] == \
        ["SS", "SS", "SS", "RS", "NS", "SS", "RS", "RS", "SS", "NS", "NS", "NS", "RS"]


# ---------------------------------------------------------------------------------------------
# residuals

def test_residual_is_log10_of_observed_over_median_and_normalised_by_sigma():
    m = gmpe.Motion("pga", None, 2.0, math.log(10) * 0.3, math.log(10) * 0.3)
    r = residual(20.0, m)
    assert r.log10 == pytest.approx(1.0)
    assert r.normalized == pytest.approx(1.0 / 0.3)
    assert residual(0.2, m).log10 == pytest.approx(-1.0)
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="positive and finite"):
            residual(bad, m)


# ---------------------------------------------------------------------------------------------
# errors

def test_unknown_model_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"\[gmpe\] model 'BSSA' is not known "
                                          r"\(did you mean 'BSSA14'\?\)"):
        GMPEConfig(model="BSSA")
    with pytest.raises(ConfigError, match="did you mean 'CY14'"):
        GMPEConfig(model="cy14")
    with pytest.raises(ConfigError, match="models: BSSA14, ASK14"):
        GMPEConfig(model="nonsense-model")


@pytest.mark.parametrize("vs30", [0, -760.0, math.nan, math.inf, "760", True])
def test_bad_vs30_rejected(vs30):
    with pytest.raises(ConfigError, match=r"\[gmpe\] vs30 must be a positive number of m/s"):
        GMPEConfig(vs30=vs30)


def test_bad_station_vs30_and_other_keys_rejected():
    with pytest.raises(ConfigError, match=r"vs30_by_station 'CI.CCC' must be a positive"):
        GMPEConfig(vs30_by_station={"CI.CCC": 0.0})
    with pytest.raises(ConfigError, match=r"key 'CCC' is not \"NET.STA\""):
        GMPEConfig(vs30_by_station={"CCC": 300.0})
    with pytest.raises(ConfigError, match=r"mechanism must be one of SS, NS, RS, U"):
        GMPEConfig(mechanism="strike-slip")
    with pytest.raises(ConfigError, match=r"distance must be one of ps2ff, epicentral, "
                                          r"hypocentral, not 'rjb'"):
        GMPEConfig(distance="rjb")
    with pytest.raises(ConfigError, match="enabled must be true or false"):
        GMPEConfig(enabled="yes")  # type: ignore[arg-type]


def test_config_keeps_its_own_copy_of_the_overrides_and_pickles():
    """Its own plain copy: later changes to the caller's table do not reach it, and it
    pickles (worker processes) and converts to JSON (the stage fingerprint)."""
    overrides = {"CI.CCC": 300}
    config = GMPEConfig(vs30_by_station=overrides)
    overrides["CI.CCC"] = 999
    assert config.vs30_of("CI.CCC") == (300.0, True)
    assert config.vs30_of("CI.SLA") == (760.0, False)
    assert pickle.loads(pickle.dumps(config)) == config
    assert dataclasses.asdict(config)["vs30_by_station"] == {"CI.CCC": 300.0}
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.vs30 = 1.0  # type: ignore[misc]


def test_period_outside_the_models_range_rejected_with_the_range():
    station = [Station("XX.A", 35.9, -117.6)]
    with pytest.raises(ConfigError, match=r"period 12 s is outside the PSA periods of BSSA14, "
                                          r"0.01-10 s"):
        predict(RIDGECREST_EVENT, station, (1.0, 12.0), GMPEConfig(distance="epicentral"))
    with pytest.raises(ConfigError, match=r"period 5 s is outside the PSA periods of ASB14, "
                                          r"0.01-4 s"):
        predict(RIDGECREST_EVENT, station, (5.0,), GMPEConfig(model="ASB14",
                                                              distance="epicentral"))
    with pytest.raises(ConfigError, match="periods must be positive"):
        predict(RIDGECREST_EVENT, station, (0.0,), GMPEConfig(distance="epicentral"))


# The cost of the imports and of ten stations: benchmarks/costs_bench.py (gmpe-*).
