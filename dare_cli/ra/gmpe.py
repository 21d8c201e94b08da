"""GMPE baseline: the peak motions a ground-motion model predicts at each station.

ShakeMap starts from a ground-motion prediction equation (GMPE, or ground-motion model): the
median and the standard deviation of PGA, PGV and PSA(T) expected at a site for an earthquake
of a given magnitude, distance, mechanism and site condition. The Rapid Assessment compares
the observed and the synthetic peak motions with this baseline: :func:`predict` gives it for
each station and :func:`residual` measures an observation against it. Everything here is a
pure function of its arguments; the models come from ``pygmm`` (Kottke, MIT) and the point-
source distance corrections from ``ps2ff`` (USGS, public domain).

Models
------
:data:`MODELS` lists the names accepted by ``[gmpe] model``:

* ``BSSA14`` (default): Boore, Stewart, Seyhan & Atkinson (2014, Earthquake Spectra 30,
  1057-1085), NGA-West2, active shallow crust, RotD50. It is one of the four models of
  ShakeMap's active-crust set and the only one of them that needs no rupture geometry beyond
  Rjb, magnitude and mechanism, so it asks the least of a point source. Valid for M 3-8.5
  (strike-slip, reverse, unspecified) and M 3-7 (normal), Rjb 0-400 km, Vs30 150-1500 m/s,
  T 0.01-10 s.
* ``ASK14``, ``CB14``, ``CY14``: the other NGA-West2 models (Abrahamson, Silva & Kamai 2014;
  Campbell & Bozorgnia 2014; Chiou & Youngs 2014), active shallow crust, RotD50. They also
  need the depth to the top of the rupture, its width and dip (see "Rupture of a point
  source" below). ASK14: M 3-8.5, Rrup 0-300 km, Vs30 180-1000 m/s; CB14: M 3.3-8.5
  (reverse 3.3-8, normal 3.3-7.5), Rrup 0-300 km, Vs30 150-1500 m/s, hypocentre 0-20 km;
  CY14: M 3.5-8.5 (reverse and normal 3.5-8), Rrup 0-300 km, Vs30 180-1500 m/s.
* ``NGAW2``: the four NGA-West2 models with equal weights, ShakeMap's and the 2014 USGS
  hazard model's ``active_crustal_nshmp2014`` set. The median is the weighted mean of the
  log medians; the standard deviation is ShakeMap's (MultiGMPE) combination of correlated
  variables, sigma^2 = sum_ij w_i w_j rho_ij sigma_i sigma_j with rho = 0.95 between models
  (ShakeMap's value for fewer than ten sites; used here always, so that a station's baseline
  does not depend on the other stations). Its validity is the intersection of the four.
* ``ASB14``: Akkar, Sandikkaya & Bommer (2014, Bull. Earthq. Eng. 12, 359-387), active
  shallow crust of Europe and the Middle East (RESORCE data), geometric mean of the two
  horizontal components. Published in three forms, fed with Rjb, Repi or Rhypo: with
  ``distance = "epicentral"`` or ``"hypocentral"`` dare uses the model's own point-source
  form (with its larger sigma) instead of substituting a point distance for Rjb. M 4-8,
  R 0-200 km, Vs30 150-1200 m/s, T 0.01-4 s.
* ``AGA16-interface``, ``AGA16-intraslab``: Abrahamson, Gregor & Addo (2016, Earthquake
  Spectra 32, 23-44), the BC Hydro subduction model, forearc sites, geometric mean, with the
  central magnitude-scaling break (delta C1). Interface events use Rrup (M 6-9.5, hypocentre
  shallower than 60 km), intraslab events Rhypo (M 5-8, hypocentre 20-120 km); R 0-300 km,
  Vs30 150-1000 m/s, T 0.02-10 s. No PGV: its PGV is ``None``.

There is no stable-continent model: pygmm's only one with a site term, Atkinson & Boore
(2006), disagrees with OpenQuake's by factors of 1.5-2.3 (its stress-parameter factor is
min(2, stress/140) instead of log10(stress/140)/log10(2)), takes the published log10 sigma
(0.30) as a natural-log one and returns PGV divided by g. ShakeMap uses NGA-East there, which
pygmm lacks.

Distances
---------
``distance = "ps2ff"`` (default) is what ShakeMap 4.0-4.1 and gmprocess do for an event
without a rupture model: Rjb and Rrup are the expected values of the finite-rupture distances
given the epicentral distance, magnitude, hypocentral depth and mechanism, averaged over
rupture sizes, dips and strikes and positions of the hypocentre on the rupture (Thompson &
Worden 2018, Bull. Seism. Soc. Am. 108, 371-379; ``ps2ff.run.single_event_adjustment`` with
ShakeMap's active-crust settings: Hanks & Bakun 2008 rupture areas, aspect ratio 1.7, dips
75-90 (strike-slip), 35-50 (reverse), 40-60 (normal) degrees, or Wells & Coppersmith 1994 and
dips 10-90 for an unknown mechanism). They are computed on a fixed grid of epicentral
distances, eight nodes a decade, and interpolated in log distance (within 0.5% of computing
each station's own); a node costs about 0.2 s and is cached per event, so ten stations between
28 and 37 km (three nodes) cost under a second. The variance
of the distance is carried into the standard deviation to first order,
``sigma_ln^2 = sigma_model^2 + (d lnY / dR)^2 var(R)``; ``sigma_ln_model`` keeps the model's
own. (ShakeMap 4.2 and later simulate random finite ruptures instead; ps2ff remains what
gmprocess uses.) ``"epicentral"`` uses Rjb = Repi and Rrup = Rhypo, the distances of a point
(what ShakeMap's point rupture returns today); ``"hypocentral"`` uses Rjb = Rrup = Rhypo. Both
underestimate the distances' contribution to the uncertainty. Repi is geodesic (WGS84) and
``Rhypo = sqrt(Repi^2 + depth^2)``; station elevations are ignored.

Rupture of a point source
-------------------------
The mechanism is ``[gmpe] mechanism`` if given, else it follows the rake (normal for
-150 < rake < -30, reverse for 30 < rake < 150, strike-slip otherwise), else it is unspecified
(``"U"``). Models without an unspecified form (ASK14, CB14, ASB14) then take strike-slip, as
ShakeMap does with its default rake of 0, and say so in the prediction's notes. Without a dip,
90 (strike-slip), 40 (reverse) or 50 (normal) degrees (Kaklamanos et al. 2011). The rupture
width is Wells & Coppersmith's (1994, all mechanisms), log10 W = -1.01 + 0.32 M, limited to a
20 km thick seismogenic crust, and the top of the rupture Ztor = max(Zhyp - 0.6 W sin(dip), 0)
(Kaklamanos et al. 2011). Stations are taken on the footwall (Rx = -Rjb): no hanging-wall
term, since a point source does not say on which side they are. Basin depths take each model's
Vs30-based default.

Site condition
--------------
Vs30 defaults to 760 m/s: the B/C boundary, ShakeMap's ``vs30default`` when it has no Vs30
map, and BSSA14's reference velocity, where its site term is zero, so that the default baseline
is the model's own reference rock and not an extrapolation of its site model. Observations on
softer ground then sit above it, by a factor of about 1.4-2 at 300 m/s. Give measured or
mapped values per station in ``vs30_by_station``; they are treated as measured by the models
whose sigma depends on it (ASK14, CY14), the default as inferred.

Validity
--------
Outside the magnitude, distance, Vs30 or depth range of a model the prediction is still
computed (the functional forms extrapolate smoothly) but each :class:`Prediction` lists why in
``outside_range``, e.g. ``"distance Rjb 412 km > 400 km"``: a baseline there is a guess and
must not be read as a fact. A period outside the model's PSA periods is refused
(:class:`~dare_cli.ra.errors.ConfigError` naming the range); between the model's periods the
PSA and its sigma are interpolated linearly in log period - log amplitude.

Units: SI throughout. PGA and PSA (5% damping) in m/s^2, PGV in m/s, distances in km, Vs30 in
m/s; standard deviations of the natural log (``sigma_ln``) and of log10 (``sigma_log10``).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from dare_cli.ra.errors import ConfigError
from dare_cli.ra.pgm import G, psa_key

__all__ = [
    "DISTANCES",
    "MECHANISMS",
    "MODELS",
    "Distances",
    "Earthquake",
    "GMPEConfig",
    "Motion",
    "Prediction",
    "Residual",
    "Scenario",
    "Station",
    "evaluate",
    "mechanism_from_rake",
    "point_source_rupture",
    "predict",
    "residual",
    "stations_from_inventory",
    "validity",
]

#: The models of ``[gmpe] model`` and what each is for (details in the module docstring).
MODELS: Mapping[str, str] = MappingProxyType({
    "BSSA14": "Boore, Stewart, Seyhan & Atkinson 2014 (NGA-West2): active shallow crust; "
              "default",
    "ASK14": "Abrahamson, Silva & Kamai 2014 (NGA-West2): active shallow crust",
    "CB14": "Campbell & Bozorgnia 2014 (NGA-West2): active shallow crust",
    "CY14": "Chiou & Youngs 2014 (NGA-West2): active shallow crust",
    "NGAW2": "ASK14, BSSA14, CB14 and CY14 with equal weights: ShakeMap's active-crust set "
             "(active_crustal_nshmp2014)",
    "ASB14": "Akkar, Sandikkaya & Bommer 2014: active shallow crust of Europe and the "
             "Middle East",
    "AGA16-interface": "Abrahamson, Gregor & Addo 2016 (BC Hydro): subduction interface "
                       "events",
    "AGA16-intraslab": "Abrahamson, Gregor & Addo 2016 (BC Hydro): subduction intraslab "
                       "events",
})
#: Mechanisms of ``[gmpe] mechanism``: strike-slip, normal, reverse, unspecified.
MECHANISMS = ("SS", "NS", "RS", "U")
#: Distance options of ``[gmpe] distance``.
DISTANCES = ("ps2ff", "epicentral", "hypocentral")

#: Members and weights of the NGAW2 set.
NGAW2_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"ASK14": 0.25, "BSSA14": 0.25, "CB14": 0.25, "CY14": 0.25})
#: Correlation between the models of a weighted set (ShakeMap's value for < 10 sites).
NGAW2_CORRELATION = 0.95
#: Bottom of the seismogenic crust (km) for the width of a point source's rupture.
SEISMOGENIC_DEPTH = 20.0
#: ps2ff grid: nodes per decade of epicentral distance, and the smallest node (km).
PS2FF_NODES_PER_DECADE = 8
PS2FF_MIN_REPI = 0.1
_LN10 = math.log(10.0)


@dataclass(frozen=True)
class _Limits:
    """Validity of a model (inclusive ranges; ``None``: no limit)."""

    magnitude: tuple[float, float]
    distance: float  # km, largest distance of the model's own metric
    vs30: tuple[float, float]
    depth: tuple[float, float] = (0.0, 35.0)  # hypocentre, km
    magnitude_by_mechanism: Mapping[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Model:
    """How one pygmm model is called."""

    name: str
    pygmm_class: str
    distance: str  # the model's distance metric: "rjb", "rrup" or "rhypo"
    component: str
    limits: _Limits
    has_unspecified: bool  # has an unspecified-mechanism form


_SINGLE: Mapping[str, _Model] = MappingProxyType({
    "BSSA14": _Model("BSSA14", "BooreStewartSeyhanAtkinson2014", "rjb", "RotD50",
                     _Limits((3.0, 8.5), 400.0, (150.0, 1500.0),
                             magnitude_by_mechanism={"NS": (3.0, 7.0)}), True),
    "ASK14": _Model("ASK14", "AbrahamsonSilvaKamai2014", "rrup", "RotD50",
                    _Limits((3.0, 8.5), 300.0, (180.0, 1000.0)), False),
    "CB14": _Model("CB14", "CampbellBozorgnia2014", "rrup", "RotD50",
                   _Limits((3.3, 8.5), 300.0, (150.0, 1500.0), (0.0, 20.0),
                           {"RS": (3.3, 8.0), "NS": (3.3, 7.5)}), False),
    "CY14": _Model("CY14", "ChiouYoungs2014", "rrup", "RotD50",
                   _Limits((3.5, 8.5), 300.0, (180.0, 1500.0),
                           magnitude_by_mechanism={"RS": (3.5, 8.0), "NS": (3.5, 8.0)}), True),
    "ASB14": _Model("ASB14", "AkkarSandikkayaBommer2014", "rjb", "geometric mean",
                    _Limits((4.0, 8.0), 200.0, (150.0, 1200.0)), False),
    "AGA16-interface": _Model("AGA16-interface", "AbrahamsonGregorAddo2016", "rrup",
                              "geometric mean",
                              _Limits((6.0, 9.5), 300.0, (150.0, 1000.0), (0.0, 60.0)), True),
    "AGA16-intraslab": _Model("AGA16-intraslab", "AbrahamsonGregorAddo2016", "rhypo",
                              "geometric mean",
                              _Limits((5.0, 8.0), 300.0, (150.0, 1000.0), (20.0, 120.0)), True),
})


def _suggest(name: str, known: Iterable[str]) -> str:
    known = list(known)
    by_upper = {k.upper(): k for k in known}
    close = difflib.get_close_matches(name.upper(), list(by_upper), n=1, cutoff=0.5)
    return f" (did you mean {by_upper[close[0]]!r}?)" if close else ""


def _is_station_code(code: str) -> bool:
    net, sep, sta = code.partition(".")
    return bool(sep and net and sta and "." not in sta)


@dataclass(frozen=True)
class GMPEConfig:
    """The ``[gmpe]`` table: which ground-motion model, site condition and distances.

    Attributes
    ----------
    model
        A name of :data:`MODELS`; ``BSSA14`` by default.
    vs30
        Vs30 (m/s) of the stations without an entry in ``vs30_by_station``; 760 m/s (B/C
        boundary, ShakeMap's default, BSSA14's reference) by default.
    vs30_by_station
        Vs30 (m/s) per station, ``{"NET.STA": m/s}``; treated as measured.
    mechanism
        ``SS``, ``NS``, ``RS`` or ``U``; ``None`` takes it from the event's rake if known,
        else unspecified.
    distance
        ``ps2ff`` (default), ``epicentral`` or ``hypocentral``: see the module docstring.
    enabled
        Whether the pgm stage computes the baseline (read by the stage, not by
        :func:`predict`).
    """

    model: str = "BSSA14"
    vs30: float = 760.0
    vs30_by_station: Mapping[str, float] = field(default_factory=dict)
    mechanism: str | None = None
    distance: str = "ps2ff"
    enabled: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or self.model not in MODELS:
            raise ConfigError(f"[gmpe] model {self.model!r} is not known"
                              f"{_suggest(str(self.model), MODELS)}; models: "
                              f"{', '.join(MODELS)}")
        _check_vs30(self.vs30, "[gmpe] vs30")
        if not isinstance(self.vs30_by_station, Mapping):
            raise ConfigError(f"[gmpe] vs30_by_station must be a table of \"NET.STA\" = m/s, "
                              f"not {self.vs30_by_station!r}")
        for code, value in self.vs30_by_station.items():
            if not isinstance(code, str) or not _is_station_code(code):
                raise ConfigError(f"[gmpe] vs30_by_station: key {code!r} is not \"NET.STA\"")
            _check_vs30(value, f"[gmpe] vs30_by_station {code!r}")
        # a plain dict (sorted): pickled to worker processes and fingerprinted as JSON
        object.__setattr__(self, "vs30_by_station", {
            code: float(value) for code, value in sorted(self.vs30_by_station.items())})
        if self.mechanism is not None and self.mechanism not in MECHANISMS:
            raise ConfigError(f"[gmpe] mechanism must be one of {', '.join(MECHANISMS)} "
                              f"(strike-slip, normal, reverse, unspecified), not "
                              f"{self.mechanism!r}{_suggest(str(self.mechanism), MECHANISMS)}")
        if self.distance not in DISTANCES:
            raise ConfigError(f"[gmpe] distance must be one of {', '.join(DISTANCES)}, not "
                              f"{self.distance!r}{_suggest(str(self.distance), DISTANCES)}")
        if not isinstance(self.enabled, bool):
            raise ConfigError(f"[gmpe] enabled must be true or false, not {self.enabled!r}")

    def vs30_of(self, station: str) -> tuple[float, bool]:
        """Return ``(vs30 m/s, measured)`` of a station ``NET.STA``."""
        if station in self.vs30_by_station:
            return self.vs30_by_station[station], True
        return float(self.vs30), False


def _check_vs30(value: Any, key: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{key} must be a positive number of m/s, not {value!r}")


@dataclass(frozen=True)
class Earthquake:
    """The event: moment magnitude, hypocentre and (optional) mechanism.

    Attributes
    ----------
    magnitude
        Mw.
    latitude, longitude
        Epicentre (degrees).
    depth_km
        Hypocentral depth (km, positive down).
    rake, dip
        Degrees (Aki & Richards), ``None`` if unknown.
    """

    magnitude: float
    latitude: float
    longitude: float
    depth_km: float
    rake: float | None = None
    dip: float | None = None

    def __post_init__(self) -> None:
        for name in ("magnitude", "latitude", "longitude", "depth_km"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"earthquake {name} must be finite, not {getattr(self, name)}")
        if not -90 <= self.latitude <= 90:
            raise ValueError(f"earthquake latitude {self.latitude} is not within -90..90")
        if self.depth_km < 0:
            raise ValueError(f"earthquake depth {self.depth_km} km is negative")
        if self.dip is not None and not 0 < self.dip <= 90:
            raise ValueError(f"earthquake dip {self.dip} is not within (0, 90] degrees")


@dataclass(frozen=True)
class Station:
    """A station: ``NET.STA`` and coordinates (degrees)."""

    code: str
    latitude: float
    longitude: float


def stations_from_inventory(inventory: Any) -> list[Station]:
    """Return the stations of an ObsPy ``Inventory`` (one per ``NET.STA``, first epoch)."""
    out: dict[str, Station] = {}
    for network in inventory:
        for station in network:
            code = f"{network.code}.{station.code}"
            out.setdefault(code, Station(code, float(station.latitude),
                                         float(station.longitude)))
    return list(out.values())


@dataclass(frozen=True)
class Scenario:
    """Everything a model is given for one site: rupture, distances (km) and site.

    :func:`predict` builds it from an event and a station; the tests give it directly.
    ``mechanism`` is ``SS``, ``NS``, ``RS`` or ``U``; ``ztor`` and ``width`` (km) are the
    depth to the top and the down-dip width of the rupture, ``hypo_depth`` the hypocentre's
    depth (km); ``rx`` and ``ry0`` the GC2 coordinates (km; Rx < 0 on the footwall).
    """

    magnitude: float
    mechanism: str
    dip: float
    ztor: float
    width: float
    hypo_depth: float
    rjb: float
    rrup: float
    rx: float
    ry0: float
    rhypo: float
    repi: float
    vs30: float
    vs30_measured: bool = False


@dataclass(frozen=True)
class Motion:
    """The predicted distribution of one metric at one station (log-normal).

    Attributes
    ----------
    metric
        ``pga``, ``pgv`` or ``psa{T:g}`` (as :func:`dare_cli.ra.pgm.psa_key`).
    period
        Oscillator period (s) of a PSA, ``None`` for PGA and PGV.
    median
        m/s^2 (PGA, PSA at 5% damping) or m/s (PGV).
    sigma_ln
        Total standard deviation of ln(motion), including the distance approximation's.
    sigma_ln_model
        The model's own total standard deviation of ln(motion).
    """

    metric: str
    period: float | None
    median: float
    sigma_ln: float
    sigma_ln_model: float

    @property
    def unit(self) -> str:
        """``m/s`` for PGV, ``m/s^2`` otherwise."""
        return "m/s" if self.metric == "pgv" else "m/s^2"

    @property
    def sigma_log10(self) -> float:
        """Total standard deviation of log10(motion)."""
        return self.sigma_ln / _LN10

    @property
    def sigma_log10_model(self) -> float:
        """The model's standard deviation of log10(motion)."""
        return self.sigma_ln_model / _LN10

    @property
    def log10_median(self) -> float:
        """log10 of the median (in SI units)."""
        return math.log10(self.median)


@dataclass(frozen=True)
class Distances:
    """Distances of a station (km) and how Rjb and Rrup were obtained.

    ``rjb_var`` and ``rrup_var`` (km^2) are the ps2ff variances, 0 for point distances.
    """

    repi: float
    rhypo: float
    rjb: float
    rrup: float
    rjb_var: float
    rrup_var: float
    method: str


@dataclass(frozen=True)
class Prediction:
    """The baseline at one station.

    Attributes
    ----------
    station
        ``NET.STA``.
    model
        The model's name in :data:`MODELS`.
    library
        Library and version that evaluated it, e.g. ``pygmm 0.8.0``.
    component
        Horizontal component the model predicts (``RotD50`` or ``geometric mean``).
    vs30
        m/s used.
    mechanism
        Mechanism given to the model (``SS``, ``NS``, ``RS`` or ``U``).
    distances
        :class:`Distances` used.
    motions
        ``{"pga": Motion, "pgv": Motion | None, "psa0.3": Motion, ...}``; ``None`` where
        the model does not predict the metric.
    outside_range
        Why the station is outside the model's validity (empty if it is not).
    notes
        Assumptions made for this station (e.g. a mechanism the model lacks).
    """

    station: str
    model: str
    library: str
    component: str
    vs30: float
    mechanism: str
    distances: Distances
    motions: Mapping[str, Motion | None]
    outside_range: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Residual:
    """An observation against its prediction.

    ``log10`` is log10(observed / predicted median) (positive: observed above the baseline;
    dare's misfits are log10(synthetic / observed)); ``normalized`` is it divided by the
    prediction's total log10 sigma, the number of standard deviations.
    """

    log10: float
    normalized: float


def residual(observed: float, predicted: Motion) -> Residual:
    """Compare an observed (or synthetic) peak motion with a prediction.

    Parameters
    ----------
    observed
        The motion in the prediction's SI unit (m/s^2 for PGA and PSA, m/s for PGV).
    predicted
        The :class:`Motion` of the same metric at the same station.

    Returns
    -------
    Residual
        log10(observed / median) and that over ``predicted.sigma_log10``.

    Raises
    ------
    ValueError
        ``observed`` is not a positive finite number.
    """
    if not math.isfinite(observed) or observed <= 0:
        raise ValueError(f"observed {predicted.metric} must be positive and finite, "
                         f"not {observed}")
    value = math.log10(observed / predicted.median)
    return Residual(value, value / predicted.sigma_log10)


def mechanism_from_rake(rake: float | None) -> str:
    """Return ``NS`` for -150 < rake < -30, ``RS`` for 30 < rake < 150, ``SS`` otherwise.

    ``None`` gives ``U`` (unspecified). The rake is wrapped into (-180, 180] first.
    """
    if rake is None:
        return "U"
    rake = (rake + 180.0) % 360.0 - 180.0
    if -150 < rake < -30:
        return "NS"
    if 30 < rake < 150:
        return "RS"
    return "SS"


#: Dip (degrees) of a point source without one, by mechanism (Kaklamanos et al. 2011).
DEFAULT_DIP: Mapping[str, float] = MappingProxyType(
    {"SS": 90.0, "RS": 40.0, "NS": 50.0, "U": 90.0})


def point_source_rupture(magnitude: float, depth_km: float, dip: float) -> tuple[float, float]:
    """Return ``(ztor, width)`` km of the rupture assumed around a point source.

    Width of Wells & Coppersmith (1994, all mechanisms), log10 W = -1.01 + 0.32 M, limited
    to the seismogenic crust (:data:`SEISMOGENIC_DEPTH`); Ztor = max(Zhyp - 0.6 W sin(dip), 0)
    (Kaklamanos et al. 2011).
    """
    sin = math.sin(math.radians(dip))
    width = 10 ** (-1.01 + 0.32 * magnitude)
    ztor = max(depth_km - 0.6 * width * sin, 0.0)
    if ztor < SEISMOGENIC_DEPTH:
        width = min(width, (SEISMOGENIC_DEPTH - ztor) / sin)
    return ztor, width


def _metric_keys(periods: Sequence[float]) -> list[tuple[str, float | None]]:
    return [("pga", None), ("pgv", None)] + [(psa_key(p), float(p)) for p in periods]


def _pygmm_scenario(model: _Model, s: Scenario, mechanism: str) -> dict[str, Any]:
    """Keyword arguments of ``pygmm.Scenario`` for one model."""
    source = "measured" if s.vs30_measured else "inferred"
    if model.name == "BSSA14":
        return dict(mag=s.magnitude, dist_jb=s.rjb, v_s30=s.vs30, mechanism=mechanism,
                    region="global")
    if model.name == "ASK14":
        return dict(mag=s.magnitude, dist_rup=s.rrup, dist_jb=s.rjb, dist_x=s.rx,
                    dist_y0=s.ry0, v_s30=s.vs30, dip=s.dip, depth_tor=s.ztor, width=s.width,
                    mechanism=mechanism, region="global", vs_source=source,
                    on_hanging_wall=False)
    if model.name == "CB14":
        return dict(mag=s.magnitude, dist_rup=s.rrup, dist_jb=s.rjb, dist_x=s.rx,
                    v_s30=s.vs30, dip=s.dip, depth_tor=s.ztor, width=s.width,
                    depth_hyp=s.hypo_depth, mechanism=mechanism, region="global")
    if model.name == "CY14":
        return dict(mag=s.magnitude, dist_rup=s.rrup, dist_jb=s.rjb, dist_x=s.rx,
                    v_s30=s.vs30, dip=s.dip, depth_tor=s.ztor, mechanism=mechanism,
                    region="california", vs_source=source, on_hanging_wall=False)
    if model.name == "ASB14":
        return dict(mag=s.magnitude, dist_jb=s.rjb, v_s30=s.vs30, mechanism=mechanism)
    # AGA16
    event_type = "interface" if model.name.endswith("interface") else "intraslab"
    return dict(mag=s.magnitude, dist_rup=s.rrup, dist_hyp=s.rhypo, depth_hyp=s.hypo_depth,
                v_s30=s.vs30, event_type=event_type, tectonic_region="forearc")


def _model_mechanism(model: _Model, mechanism: str) -> str:
    return mechanism if mechanism != "U" or model.has_unspecified else "SS"


def _ln_values(model: _Model, s: Scenario, keys: Sequence[tuple[str, float | None]],
               asb14_form: str = "rjb") -> dict[str, tuple[float, float] | None]:
    """Return ``{metric: (ln median SI, sigma_ln)}`` of one pygmm model (``None``: absent)."""
    import pygmm

    kwargs = _pygmm_scenario(model, s, _model_mechanism(model, s.mechanism))
    if model.name == "ASB14" and asb14_form != "rjb":
        del kwargs["dist_jb"]
        kwargs["dist_epi" if asb14_form == "repi" else "dist_hyp"] = \
            s.repi if asb14_form == "repi" else s.rhypo
    with warnings.catch_warnings():
        # pygmm warns about parameters outside its limits: validity() reports them instead
        warnings.filterwarnings("ignore", category=UserWarning, module=r"pygmm(\.|$)")
        gmm = getattr(pygmm, model.pygmm_class)(pygmm.Scenario(**kwargs))
    out: dict[str, tuple[float, float] | None] = {}
    periods = np.asarray(gmm.periods, dtype=float)
    for key, period in keys:
        if key == "pga":
            out[key] = (math.log(float(gmm.pga) * G), float(gmm.ln_std_pga))
        elif key == "pgv":
            if gmm.INDEX_PGV is None:
                out[key] = None
            else:  # pygmm gives cm/s
                out[key] = (math.log(float(gmm.pgv) / 100.0), float(gmm.ln_std_pgv))
        else:
            assert period is not None
            if not periods.min() <= period <= periods.max():
                raise ConfigError(f"[pgm] period {period:g} s is outside the PSA periods of "
                                  f"{model.name}, {periods.min():g}-{periods.max():g} s")
            ln_sa = float(gmm.interp_ln_spec_accels([period])[0])
            out[key] = (ln_sa + math.log(G), float(gmm.interp_ln_stds([period])[0]))
    return out


def _combine(members: Mapping[str, dict[str, tuple[float, float] | None]],
             weights: Mapping[str, float]) -> dict[str, tuple[float, float] | None]:
    """Weighted set: mean of the ln medians, sigma of correlated variables (ShakeMap)."""
    out: dict[str, tuple[float, float] | None] = {}
    first = next(iter(members.values()))
    for key in first:
        values = [(weights[name], v[key]) for name, v in members.items()]
        present = [(w, mv) for w, mv in values if mv is not None]
        if len(present) != len(values):
            out[key] = None
            continue
        w = np.array([p[0] for p in present])
        mu = np.array([p[1][0] for p in present])
        sd = np.array([p[1][1] for p in present])
        rho = np.full((len(w), len(w)), NGAW2_CORRELATION)
        np.fill_diagonal(rho, 1.0)
        var = float(np.einsum("i,j,ij,i,j->", w, w, rho, sd, sd))
        out[key] = (float(np.dot(w, mu)), math.sqrt(var))
    return out


def evaluate(model: str, scenario: Scenario, periods: Sequence[float] = (),
             distance: str = "ps2ff") -> dict[str, tuple[float, float] | None]:
    """Evaluate a model for one explicit scenario, without distance uncertainty.

    Parameters
    ----------
    model
        A name of :data:`MODELS`.
    scenario
        Rupture, distances and site.
    periods
        PSA periods (s).
    distance
        ``ps2ff`` / ``epicentral`` / ``hypocentral``: only selects ASB14's form (Rjb, Repi or
        Rhypo); the other models read the scenario's Rjb and Rrup as they are.

    Returns
    -------
    dict
        ``{"pga": (ln median, sigma_ln), "pgv": ... or None, "psa0.3": ...}``: natural log
        of the median in SI units (m/s^2, m/s) and the model's total sigma of ln.

    Raises
    ------
    ConfigError
        Unknown model, or a period outside the model's PSA periods.
    """
    if model not in MODELS:
        raise ConfigError(f"[gmpe] model {model!r} is not known{_suggest(model, MODELS)}; "
                          f"models: {', '.join(MODELS)}")
    keys = _metric_keys(periods)
    form = {"ps2ff": "rjb", "epicentral": "repi", "hypocentral": "rhypo"}[distance]
    if model == "NGAW2":
        members = {name: _ln_values(_SINGLE[name], scenario, keys)
                   for name in NGAW2_WEIGHTS}
        return _combine(members, NGAW2_WEIGHTS)
    return _ln_values(_SINGLE[model], scenario, keys, form)


def _members(model: str) -> list[_Model]:
    return [_SINGLE[name] for name in NGAW2_WEIGHTS] if model == "NGAW2" else [_SINGLE[model]]


def validity(model: str, scenario: Scenario, distance: str = "ps2ff") -> tuple[str, ...]:
    """Return why a scenario is outside a model's validity (empty tuple: it is not).

    Checks magnitude (per mechanism where the model says so), the model's own distance
    metric, Vs30 and hypocentral depth. For ``NGAW2`` the reasons of all four models.
    """
    reasons: list[str] = []
    for m in _members(model):
        lim = m.limits
        prefix = f"{m.name}: " if model == "NGAW2" else ""
        mech = _model_mechanism(m, scenario.mechanism)
        low, high = lim.magnitude_by_mechanism.get(mech, lim.magnitude)
        what = {"NS": "normal-faulting ", "RS": "reverse-faulting "}.get(
            mech, "") if mech in lim.magnitude_by_mechanism else ""
        mag = scenario.magnitude
        if mag < low:
            reasons.append(f"{prefix}{what}magnitude {mag:g} < {low:g}")
        elif mag > high:
            reasons.append(f"{prefix}{what}magnitude {mag:g} > {high:g}")
        metric = m.distance
        if m.name == "ASB14" and distance != "ps2ff":
            metric = "repi" if distance == "epicentral" else "rhypo"
        value = getattr(scenario, metric)
        label = {"rjb": "Rjb", "rrup": "Rrup", "rhypo": "Rhypo", "repi": "Repi"}[metric]
        if value > lim.distance:
            reasons.append(f"{prefix}distance {label} {value:.0f} km > {lim.distance:g} km")
        if scenario.vs30 < lim.vs30[0]:
            reasons.append(f"{prefix}vs30 {scenario.vs30:g} m/s < {lim.vs30[0]:g} m/s")
        elif scenario.vs30 > lim.vs30[1]:
            reasons.append(f"{prefix}vs30 {scenario.vs30:g} m/s > {lim.vs30[1]:g} m/s")
        if scenario.hypo_depth < lim.depth[0]:
            reasons.append(f"{prefix}hypocentre depth {scenario.hypo_depth:g} km < "
                           f"{lim.depth[0]:g} km")
        elif scenario.hypo_depth > lim.depth[1]:
            reasons.append(f"{prefix}hypocentre depth {scenario.hypo_depth:g} km > "
                           f"{lim.depth[1]:g} km")
    return tuple(reasons)


# ---------------------------------------------------------------------------------------------
# ps2ff distances

@dataclass(frozen=True)
class _Ps2ffSettings:
    scaling: str  # ps2ff MagScaling value
    mechanism: str  # ps2ff Mechanism value
    aspect: float
    min_dip: float  # degrees
    max_dip: float


#: ShakeMap's active-crust ps2ff settings by mechanism.
_PS2FF_ACTIVE: Mapping[str, _Ps2ffSettings] = MappingProxyType({
    "SS": _Ps2ffSettings("HB08", "SS", 1.7, 75.0, 90.0),
    "RS": _Ps2ffSettings("HB08", "R", 1.7, 35.0, 50.0),
    "NS": _Ps2ffSettings("HB08", "N", 1.7, 40.0, 60.0),
    "U": _Ps2ffSettings("WC94", "A", 1.7, 10.0, 90.0),
})


@functools.lru_cache(maxsize=4096)
def _ps2ff_node(magnitude: float, depth_km: float, settings: _Ps2ffSettings,
                node: int) -> tuple[float, float, float, float]:
    """(Rjb, Rrup, var Rjb, var Rrup) at the grid node ``10**(node/N)`` km of one event."""
    from ps2ff.constants import MagScaling
    from ps2ff.constants import Mechanism as Ps2ffMechanism
    from ps2ff.run import single_event_adjustment

    repi = 10.0 ** (node / PS2FF_NODES_PER_DECADE)
    _, rjb, rrup, rjb_var, rrup_var = single_event_adjustment(
        magnitude, depth_km, ar=settings.aspect, mechanism=Ps2ffMechanism(settings.mechanism),
        mag_scaling=MagScaling(settings.scaling), n_repi=1, min_repi=repi, max_repi=repi,
        nxny=7, n_theta=19, n_dip=4, min_dip=math.radians(settings.min_dip),
        max_dip=math.radians(settings.max_dip), n_eps=5, trunc=2)
    return float(rjb[0]), float(rrup[0]), float(rjb_var[0]), float(rrup_var[0])


def _ps2ff(magnitude: float, depth_km: float, mechanism: str,
           repi: float) -> tuple[float, float, float, float]:
    """Return (Rjb, Rrup, var Rjb, var Rrup) at ``repi`` km for one event.

    The ratios R/Repi and the variances are interpolated linearly in ln(Repi) between the two
    grid nodes around ``repi``.
    """
    settings = _PS2FF_ACTIVE[mechanism]
    r = max(repi, PS2FF_MIN_REPI)
    x = math.log10(r) * PS2FF_NODES_PER_DECADE
    low = math.floor(x)
    a = _ps2ff_node(magnitude, depth_km, settings, low)
    if x == low:
        frac, b = 0.0, a
    else:
        frac, b = x - low, _ps2ff_node(magnitude, depth_km, settings, low + 1)
    r_low = 10.0 ** (low / PS2FF_NODES_PER_DECADE)
    r_high = 10.0 ** ((low + 1) / PS2FF_NODES_PER_DECADE)
    rjb = r * ((1 - frac) * a[0] / r_low + frac * b[0] / r_high)
    rrup = r * ((1 - frac) * a[1] / r_low + frac * b[1] / r_high)
    rjb_var = (1 - frac) * a[2] + frac * b[2]
    rrup_var = (1 - frac) * a[3] + frac * b[3]
    # below the grid's first node, keep Rjb <= Repi and Rrup >= depth-ish as the node says
    return min(rjb, repi), rrup, rjb_var, rrup_var


def _distances(event: Earthquake, station: Station, mechanism: str, method: str,
               model: str) -> Distances:
    """Repi, Rhypo and the Rjb and Rrup of ``method`` (see the module docstring)."""
    from obspy.geodetics import gps2dist_azimuth

    repi = gps2dist_azimuth(event.latitude, event.longitude, station.latitude,
                            station.longitude)[0] / 1000.0
    rhypo = math.hypot(repi, event.depth_km)
    if method == "epicentral":
        return Distances(repi, rhypo, repi, rhypo, 0.0, 0.0, "epicentral: Rjb = Repi, "
                         "Rrup = Rhypo")
    if method == "hypocentral":
        return Distances(repi, rhypo, rhypo, rhypo, 0.0, 0.0, "hypocentral: Rjb = Rrup = "
                         "Rhypo")
    if all(m.distance == "rhypo" for m in _members(model)):
        return Distances(repi, rhypo, repi, rhypo, 0.0, 0.0, f"{model} uses Rhypo: Rjb = Repi, "
                         "Rrup = Rhypo")
    settings = _PS2FF_ACTIVE[mechanism]
    rjb, rrup, rjb_var, rrup_var = _ps2ff(event.magnitude, event.depth_km, mechanism, repi)
    return Distances(repi, rhypo, rjb, rrup, rjb_var, rrup_var,
                     f"ps2ff {_version('ps2ff')} ({settings.scaling}, mechanism "
                     f"{settings.mechanism}, dip {settings.min_dip:g}-{settings.max_dip:g}, depth "
                     f"{event.depth_km:g} km)")


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def _with_distance_sigma(model: str, scenario: Scenario, distances: Distances,
                         periods: Sequence[float], distance: str,
                         values: dict[str, tuple[float, float] | None]) -> dict[str, Motion | None]:
    """Return the motions, adding the ps2ff distance variance to sigma to first order.

    ``sigma_ln^2 = sigma_model^2 + (d lnY / dR)^2 var(R)``, with R the model's distance
    (Rjb, or Rrup if any member uses it) and the slope a finite difference over about 1%
    of R (Rjb and Rrup shifted together).
    """
    uses_rjb = all(m.distance == "rjb" for m in _members(model))
    var = distances.rjb_var if uses_rjb else distances.rrup_var
    plus: dict[str, tuple[float, float] | None] = {}
    minus: dict[str, tuple[float, float] | None] = {}
    span = 0.0
    if var > 0:
        up = max(0.01 * (scenario.rjb if uses_rjb else scenario.rrup), 0.05)
        down = min(up, scenario.rjb, scenario.rrup)

        def shifted(delta: float) -> Scenario:
            rjb = max(scenario.rjb + delta, 0.0)
            return dataclasses.replace(scenario, rjb=rjb, rrup=max(scenario.rrup + delta, 0.0),
                                       rx=-rjb)

        plus = evaluate(model, shifted(up), periods, distance)
        minus = evaluate(model, shifted(-down), periods, distance)
        span = up + down
    out: dict[str, Motion | None] = {}
    for key, period in _metric_keys(periods):
        value = values[key]
        if value is None:
            out[key] = None
            continue
        ln_median, sigma = value
        total = sigma
        if span > 0:
            p, m = plus[key], minus[key]
            assert p is not None and m is not None
            slope = (p[0] - m[0]) / span
            total = math.sqrt(sigma**2 + slope**2 * var)
        out[key] = Motion(key, period, math.exp(ln_median), total, sigma)
    return out


def predict(event: Earthquake, stations: Iterable[Station], periods: Sequence[float],
            config: GMPEConfig | None = None) -> list[Prediction]:
    """Predict PGA, PGV and PSA(periods) at each station.

    Parameters
    ----------
    event
        Magnitude (Mw), hypocentre and, if known, rake and dip.
    stations
        ``NET.STA`` and coordinates.
    periods
        PSA periods (s), 5% damping.
    config
        :class:`GMPEConfig`; the defaults if ``None``. ``config.enabled`` is not read here.

    Returns
    -------
    list of Prediction
        One per station, in the order given: medians in SI units, ``sigma_ln`` and
        ``sigma_log10``, distances, Vs30, model, library version and validity flags.

    Raises
    ------
    ConfigError
        A period outside the model's PSA periods (with the range), or a non-positive period.
    """
    config = config or GMPEConfig()
    periods = [float(p) for p in periods]
    if any(not math.isfinite(p) or p <= 0 for p in periods):
        raise ConfigError(f"[pgm] periods must be positive seconds, not {periods}")
    mechanism = config.mechanism or mechanism_from_rake(event.rake)
    dip = event.dip if event.dip is not None else DEFAULT_DIP[mechanism]
    ztor, width = point_source_rupture(event.magnitude, event.depth_km, dip)
    library = f"pygmm {_version('pygmm')}"
    members = _members(config.model)
    component = members[0].component
    notes: list[str] = []
    for m in members:
        if mechanism == "U" and not m.has_unspecified:
            notes.append(f"{m.name} has no unspecified mechanism: strike-slip assumed")
    if config.model.startswith("AGA16") and config.distance == "ps2ff":
        notes.append("ps2ff distances use ShakeMap's active-crust settings; a subduction "
                     "rupture may be larger")
    out: list[Prediction] = []
    for station in stations:
        vs30, measured = config.vs30_of(station.code)
        dist = _distances(event, station, mechanism, config.distance, config.model)
        scenario = Scenario(
            magnitude=event.magnitude, mechanism=mechanism, dip=dip, ztor=ztor, width=width,
            hypo_depth=event.depth_km, rjb=dist.rjb, rrup=dist.rrup, rx=-dist.rjb, ry0=0.0,
            rhypo=dist.rhypo, repi=dist.repi, vs30=vs30, vs30_measured=measured)
        values = evaluate(config.model, scenario, periods, config.distance)
        motions = _with_distance_sigma(config.model, scenario, dist, periods,
                                       config.distance, values)
        out.append(Prediction(
            station=station.code, model=config.model, library=library, component=component,
            vs30=vs30, mechanism=mechanism, distances=dist,
            motions=dict(motions),
            outside_range=validity(config.model, scenario, config.distance),
            notes=tuple(notes)))
    return out
