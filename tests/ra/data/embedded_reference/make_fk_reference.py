"""Compute the FK reference seismograms of fk_halfspace.npz (run once, outside the project).

The reference is a complete wavenumber-integration solution for a point double couple in a
homogeneous elastic half-space (direct P and S, free-surface reflections and conversions, the
Rayleigh wave, near-field terms), computed with pyfk (Python/Cython port of Zhu & Rivera's FK,
https://github.com/ziyixi/pyfk). dare does not depend on pyfk; this script ran once in a scratch
virtual environment:

    python3 -m venv /tmp/fkvenv
    echo 'cython<3' > /tmp/c.txt
    PIP_CONSTRAINT=/tmp/c.txt /tmp/fkvenv/bin/pip install numpy obspy pyfk
    /tmp/fkvenv/bin/python make_fk_reference.py

(pyfk 0.2.0, numpy 2.4, obspy 1.5). See README.md for what is stored and the conventions.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from obspy import Trace, UTCDateTime
from pyfk import Config, SeisModel, SourceModel, calculate_gf, calculate_sync

HERE = Path(__file__).parent

# --- the problem -------------------------------------------------------------------------------
VP, VS, RHO = 6.0, 3.464, 2.7          # km/s, km/s, g/cm^3 (dare's default crust)
Q_ELASTIC = 1.0e6                      # Qs = Qp: effectively elastic
QS, QP = 50.0, 100.0                   # the anelastic model (constant Q, FK's dispersion law)
DEPTH = 10.0                           # km, source depth
DISTANCES = [2.0, 6.0, 10.0, 17.0, 30.0, 60.0]  # km, epicentral
AZIMUTHS = [25.0, 160.0]               # degrees clockwise from north
MW, STRIKE, DIP, RAKE = 4.0, 30.0, 60.0, 60.0
DT = 0.05                              # s, FK sampling interval
NPT = 2048                             # FK samples (102.4 s)
GAUSSIAN_H = 0.15                      # s: moment rate exp(-(t-tc)^2/h^2)/(h sqrt(pi))
CENTROID = 0.6                         # s after the origin time
KEEP = 30.0                            # s after the origin time stored


def model(qs: float, qp: float) -> SeisModel:
    # a 30 km layer over an identical half-space: one homogeneous half-space below a free
    # surface (FK's first layer has a vacuum above it when its thickness is > 0)
    return SeisModel(model=np.array([[30.0, VS, VP, RHO, qs, qp],
                                     [0.0, VS, VP, RHO, qs, qp]]))


def gaussian_rate(delta: float) -> Trace:
    """Unit-sum samples of the moment rate (pyfk convolves without a factor delta)."""
    t = np.arange(0.0, 2.0 * CENTROID + 1e-9, delta)
    rate = np.exp(-((t - CENTROID) / GAUSSIAN_H) ** 2) / (GAUSSIAN_H * math.sqrt(math.pi))
    trace = Trace(data=rate * delta)
    trace.stats.delta = delta
    return trace


def velocities(qs: float, qp: float) -> tuple[np.ndarray, float]:
    """FK seismograms (m/s) of both azimuths, and the Green's functions' computing time (s)."""
    start = time.perf_counter()
    source = SourceModel(sdep=DEPTH, srcType="dc")
    config = Config(model=model(qs, qp), source=source, receiver_distance=DISTANCES,
                    npt=NPT, dt=DT)
    gf = calculate_gf(config)
    seconds = time.perf_counter() - start
    source.update_source_mechanism([MW, STRIKE, DIP, RAKE])
    stf = gaussian_rate(DT)
    times = np.arange(0.0, KEEP + 1e-9, DT)
    data = np.zeros((len(AZIMUTHS), len(DISTANCES), 3, times.size))
    for ia, azimuth in enumerate(AZIMUTHS):
        streams = calculate_sync(gf, config, azimuth, stf)
        for ir, stream in enumerate(streams):
            for ic, trace in enumerate(stream):  # Z (up), R (outward), T (clockwise)
                begin = trace.stats.starttime - UTCDateTime(0)  # s after the origin
                t = begin + np.arange(trace.stats.npts) * trace.stats.delta
                # FK starts each trace 50 samples before P; before that the motion is zero
                data[ia, ir, ic] = np.interp(times, t, trace.data, left=0.0,
                                             right=np.nan) * 0.01  # cm/s -> m/s
    assert np.all(np.isfinite(data))
    return data, seconds


def main() -> int:
    elastic, seconds_elastic = velocities(Q_ELASTIC, Q_ELASTIC)
    anelastic, seconds_anelastic = velocities(QS, QP)
    metadata = {
        "generator": "pyfk 0.2.0 (FK of Zhu & Rivera 2002), calculate_gf + calculate_sync",
        "script": "make_fk_reference.py",
        "units": "ground VELOCITY in m/s (pyfk's output, cm/s, times 0.01); time in s after "
                 "the origin, first sample at 0; distances in km",
        "components": ["Z up", "R radial, away from the source",
                       "T transverse, clockwise (azimuth + 90 degrees)"],
        "medium": {"vp_km_s": VP, "vs_km_s": VS, "rho_g_cm3": RHO},
        "models": {"elastic": {"qs": Q_ELASTIC, "qp": Q_ELASTIC},
                   "anelastic": {"qs": QS, "qp": QP,
                                 "dispersion": "FK: v (1 + (ln(f / 1 Hz) / pi + i / 2) / Q)"}},
        "source": {"depth_km": DEPTH, "mw": MW, "m0_n_m": 10 ** (1.5 * MW + 9.1),
                   "m0_rule": "pyfk: M0 = 10**(1.5 Mw + 16.1) dyne cm",
                   "strike": STRIKE, "dip": DIP, "rake": RAKE,
                   "moment_rate": "Gaussian exp(-(t-tc)^2/h^2)/(h sqrt(pi)), unit area",
                   "h_s": GAUSSIAN_H, "tc_s": CENTROID},
        "fk": {"dt_s": DT, "npt": NPT, "dk": 0.3, "taper": 0.3, "kmax": 15.0, "pmax": 1.0,
               "samples_before_first_arrival": 50,
               "green_function_seconds": [round(seconds_elastic, 1),
                                          round(seconds_anelastic, 1)]},
        "shape": "data[model][azimuth][distance][component][sample]",
    }
    np.savez_compressed(HERE / "fk_halfspace.npz",
                        elastic=elastic.astype(np.float32), anelastic=anelastic.astype(np.float32),
                        distances_km=np.array(DISTANCES), azimuths_deg=np.array(AZIMUTHS),
                        delta=np.array(DT), metadata=np.array(json.dumps(metadata)))
    print(json.dumps(metadata, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
