"""Compute the GMPE reference table with OpenQuake hazardlib (run once, not by the tests).

The tests of ``dare_cli.ra.gmpe`` compare dare's predictions (pygmm) with this table, made by an
independent implementation of the same models: OpenQuake's hazardlib. OpenQuake is not a
dependency of dare (it is large and pins GDAL), so this script runs in a scratch environment;
see README.md beside it for the exact commands and versions.

Every row gives the whole scenario explicitly (magnitude, rake, dip, depth to top of rupture,
down-dip width, hypocentral depth, the distances Rjb, Rrup, Rx, Ry0, Rhypo, Repi, and Vs30), so
that the test can feed the very same numbers to dare without depending on dare's own rules for
a point source. Sites are on the footwall side (Rx = -Rjb, Ry0 = 0, Rrup = sqrt(Rjb^2 + Ztor^2)),
so that no hanging-wall term applies. Basin depths are unknown (-999: each model's own Vs30-based
default). Medians are in SI units (m/s^2 for PGA and PSA, m/s for PGV) and the standard
deviation is the total one, in natural-log units.

Usage::

    python make_reference.py > reference.csv
"""

from __future__ import annotations

import csv
import math
import sys

import numpy as np
import openquake.baselib
from openquake.hazardlib import const, imt, valid
from openquake.hazardlib.contexts import RuptureContext, get_mean_stds

G = 9.80665
#: dare's model name -> OpenQuake GSIM (as written in an OpenQuake logic tree)
CRUSTAL = {
    "BSSA14": "BooreEtAl2014",
    "ASK14": "AbrahamsonEtAl2014",
    "CB14": "CampbellBozorgnia2014",
    "CY14": "ChiouYoungs2014",
    "ASB14": "AkkarEtAlRjb2014",
    "AB06": "AtkinsonBoore2006Modified2011",
}
SUBDUCTION = {
    "AGA16-interface": "AbrahamsonEtAl2015SInter",
    "AGA16-intraslab": "AbrahamsonEtAl2015SSlab",
}
#: ASB14 in its point-source forms (distance = "epicentral" / "hypocentral" in dare)
ASB14_POINT = {"ASB14-repi": "AkkarEtAlRepi2014", "ASB14-rhypo": "AkkarEtAlRhyp2014"}
PERIODS = (0.3, 1.0, 3.0)
DISTANCES = (5.0, 20.0, 50.0, 100.0, 300.0)
VS30 = (270.0, 760.0)
#: mechanism -> (rake, dip, hypocentral depth km)
MECHANISMS = {"SS": (0.0, 90.0, 8.0), "RS": (90.0, 45.0, 10.0), "U": (0.0, 90.0, 8.0)}
COLUMNS = ("model", "gsim", "mag", "mechanism", "rake", "dip", "ztor", "width", "hypo_depth",
           "rjb", "rrup", "rx", "ry0", "rhypo", "repi", "vs30", "vs30measured", "imt", "period",
           "median", "sigma_ln")


def geometry(mag: float, dip: float, hypo_depth: float, zbot: float = 20.0) -> tuple[float, float]:
    """Return (ztor, width) km of a rupture centred 60% down-dip on the hypocentre.

    Width from Wells & Coppersmith (1994, all mechanisms), limited by the seismogenic depth
    ``zbot``; ztor after Kaklamanos et al. (2011). Only a way to pick plausible numbers: the
    table stores them and dare is given the same.
    """
    sin = math.sin(math.radians(dip))
    width = 10 ** (-1.01 + 0.32 * mag)
    ztor = max(hypo_depth - 0.6 * width * sin, 0.0)
    width = min(width, (zbot - ztor) / sin)
    return round(ztor, 3), round(width, 3)


def imts() -> list[tuple[str, float, imt.IMT]]:
    out = [("pga", 0.0, imt.PGA()), ("pgv", -1.0, imt.PGV())]
    out += [(f"psa{p:g}", p, imt.SA(p)) for p in PERIODS]
    return out


def evaluate(gsim_name: str, rup: dict[str, float], sites: dict[str, np.ndarray]) -> dict:
    """Return {imt key: (median SI, sigma_ln)} arrays for one rupture and a set of sites."""
    gsim = valid.gsim(gsim_name)
    ctx = RuptureContext()
    for key, value in rup.items():
        setattr(ctx, key, value)
    for key, value in sites.items():
        setattr(ctx, key, value)
    n = len(sites["rjb"])
    ctx.sids = np.arange(n)
    ctx.z1pt0 = np.full(n, -999.0)
    ctx.z2pt5 = np.full(n, -999.0)
    ctx.backarc = np.zeros(n, dtype=bool)
    ctx.occurrence_rate = 0.0
    defined = {f.__name__ for f in gsim.DEFINED_FOR_INTENSITY_MEASURE_TYPES}
    wanted = [(key, period, im) for key, period, im in imts() if im.name in defined]
    assert const.StdDev.TOTAL in gsim.DEFINED_FOR_STANDARD_DEVIATION_TYPES
    mean, sig, _tau, _phi = get_mean_stds(gsim, ctx, [im for _, _, im in wanted])
    out = {}
    for m, (key, period, _) in enumerate(wanted):
        scale = 0.01 if key == "pgv" else G
        out[key] = (period, np.exp(mean[m]) * scale, sig[m])
    return out


def rows() -> list[dict]:
    out: list[dict] = []
    distances = np.array(DISTANCES)
    crustal = [(model, gsim, mech) for model, gsim in CRUSTAL.items() for mech in ("SS", "RS")]
    crustal.append(("BSSA14", "BooreEtAl2014", "U"))
    for model, gsim_name, mech in crustal:
        rake, dip, hypo = MECHANISMS[mech]
        if mech == "U":
            gsim_name = "[BooreEtAl2014]\nsof = false"
        for mag in (4.5, 6.0, 7.1):
            ztor, width = geometry(mag, dip, hypo)
            rjb = distances
            sites = dict(rjb=rjb, rrup=np.sqrt(rjb**2 + ztor**2), rx=-rjb,
                         ry0=np.zeros_like(rjb), repi=rjb, rhypo=np.sqrt(rjb**2 + hypo**2))
            rup = dict(mag=mag, rake=rake, dip=dip, ztor=ztor, width=width, hypo_depth=hypo)
            for vs30 in VS30:
                # ASK14 and CY14 have a larger phi for an inferred Vs30 than a measured one
                for measured in (True, False) if model in ("ASK14", "CY14") else (True,):
                    out += table(model, gsim_name, rup, mech, dict(
                        sites, vs30=np.full(len(rjb), vs30),
                        vs30measured=np.full(len(rjb), measured)))
    # ASB14 point-source forms: the distance fed is Repi or Rhypo itself
    for model, gsim_name in ASB14_POINT.items():
        rake, dip, hypo = MECHANISMS["SS"]
        for mag in (4.5, 6.0, 7.1):
            ztor, width = geometry(mag, dip, hypo)
            repi = distances
            sites = dict(rjb=repi, rrup=repi, rx=-repi, ry0=np.zeros_like(repi), repi=repi,
                         rhypo=np.sqrt(repi**2 + hypo**2))
            rup = dict(mag=mag, rake=rake, dip=dip, ztor=ztor, width=width, hypo_depth=hypo)
            for vs30 in VS30:
                out += table(model, gsim_name, rup, "SS", dict(
                    sites, vs30=np.full(len(repi), vs30), vs30measured=np.ones(len(repi), bool)))
    # subduction: interface at 25 km, intraslab at 60 km; distances Rrup (interface) and
    # Rhypo (intraslab) from 20 to 300 km
    for model, gsim_name in SUBDUCTION.items():
        hypo = 25.0 if "interface" in model else 60.0
        rake, dip = 90.0, 20.0
        for mag in (6.0, 7.1, 8.0):
            dist = np.array((20.0, 50.0, 100.0, 300.0)) if "interface" in model else \
                np.array((65.0, 100.0, 150.0, 300.0))
            repi = np.sqrt(np.maximum(dist**2 - hypo**2, 0.0))
            sites = dict(rjb=repi, rrup=dist, rx=-repi, ry0=np.zeros_like(dist), repi=repi,
                         rhypo=dist if "intraslab" in model else np.sqrt(repi**2 + hypo**2))
            rup = dict(mag=mag, rake=rake, dip=dip, ztor=hypo, width=10.0, hypo_depth=hypo)
            for vs30 in VS30:
                out += table(model, gsim_name, rup, "RS", dict(
                    sites, vs30=np.full(len(dist), vs30), vs30measured=np.ones(len(dist), bool)))
    return out


def table(model: str, gsim_name: str, rup: dict, mech: str, sites: dict) -> list[dict]:
    out = []
    result = evaluate(gsim_name, rup, sites)
    for key, (period, median, sigma) in result.items():
        for i in range(len(sites["rjb"])):
            out.append(dict(
                model=model, gsim=gsim_name.replace("\n", " "), mag=rup["mag"], mechanism=mech,
                rake=rup["rake"], dip=rup["dip"], ztor=rup["ztor"], width=rup["width"],
                hypo_depth=rup["hypo_depth"], rjb=f"{sites['rjb'][i]:.6g}",
                rrup=f"{sites['rrup'][i]:.6g}", rx=f"{sites['rx'][i]:.6g}",
                ry0=f"{sites['ry0'][i]:.6g}", rhypo=f"{sites['rhypo'][i]:.6g}",
                repi=f"{sites['repi'][i]:.6g}", vs30=f"{sites['vs30'][i]:g}",
                vs30measured=int(sites["vs30measured"][i]), imt=key,
                period=f"{period:g}", median=f"{median[i]:.8e}", sigma_ln=f"{sigma[i]:.6f}"))
    return out


def main() -> None:
    print(f"# OpenQuake hazardlib {openquake.baselib.__version__}; numpy {np.__version__}; "
          f"made by make_reference.py (see README.md)")
    writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows():
        writer.writerow(row)


if __name__ == "__main__":
    main()
