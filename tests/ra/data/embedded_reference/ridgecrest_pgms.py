"""Peak motions of the embedded synthetics at the Ridgecrest example's stations (not a test).

Synthetics with the example's configuration (dare_cli/ra/examples/ridgecrest/ridgecrest.toml,
[source] and [simulate]: Brune source, attenuation and plane-wave free surface by default),
differentiated to velocity and acceleration, then PGA, PGV, PGD and PSA(0.3, 1, 3 s) with 5%
damping from dare_cli.ra.pgm. No band-pass: the raw synthetics. Prints the larger horizontal
(ShakeMap's "maxh") and the vertical of each station; ``--old`` uses the previous model
(Gaussian, elastic, free-surface factor 2) for comparison.

    .venv/bin/python tests/ra/data/embedded_reference/ridgecrest_pgms.py [--old]
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from obspy import Stream, read_events, read_inventory

from dare_cli.ra.config import load_config
from dare_cli.ra.pgm import psa_key, station_pgm
from dare_cli.ra.simulate.embedded import (
    incidence_angle,
    source_receiver_vector,
    synthetics_for_station,
)
from dare_cli.ra.source import double_couple_tensor, moment_from_magnitude

EXAMPLE = Path(__file__).resolve().parents[4] / "dare_cli" / "ra" / "examples" / "ridgecrest"


def main(argv: list[str]) -> int:
    config = load_config(EXAMPLE / "ridgecrest.toml")
    simulate = config.simulate
    if "--old" in argv:
        simulate = dataclasses.replace(simulate, stf="gaussian", attenuation=False,
                                       free_surface="factor2")
    origin = read_events(str(EXAMPLE / "event.xml"))[0].preferred_origin()
    source = config.source
    tensor = double_couple_tensor(source.strike, source.dip, source.rake,
                                  moment_from_magnitude(source.magnitude))
    print(f"# {simulate.stf} source, attenuation {simulate.attenuation}, free surface "
          f"{simulate.surface_model}; {simulate.sampling_rate:g} Hz, {simulate.duration:g} s")
    print(f"{'station':8} {'comp':5} {'R km':>6} {'j deg':>5} {'PGA m/s2':>9} {'PGV m/s':>8} "
          f"{'PGD m':>7} {'PSA0.3':>7} {'PSA1.0':>7} {'PSA3.0':>7}")
    seconds = 0.0
    for path in sorted((EXAMPLE / "stations").glob("*.xml")):
        inventory = read_inventory(str(path))
        seed_id = inventory.get_contents()["channels"][0]
        network, station = seed_id.split(".")[:2]
        coordinates = inventory.get_coordinates(seed_id, origin.time)
        start = time.perf_counter()
        disp = synthetics_for_station(origin, tensor, coordinates, network, station, simulate)
        seconds += time.perf_counter() - start
        vel = Stream([tr.copy().differentiate() for tr in disp])
        acc = Stream([tr.copy().differentiate() for tr in vel])
        receiver = source_receiver_vector(origin, coordinates)
        rows = {row["component"]: row for row in station_pgm(acc, vel, disp)}
        distance = float(sum(receiver**2) ** 0.5) / 1e3
        for component in ("maxh", "Z"):
            row = rows[component]
            print(f"{network}.{station:5} {component:5} {distance:6.1f} "
                  f"{incidence_angle(receiver):5.1f} {row['pga']:9.3g} {row['pgv']:8.3g} "
                  f"{row['pgd']:7.3g} {row[psa_key(0.3)]:7.3g} {row[psa_key(1.0)]:7.3g} "
                  f"{row[psa_key(3.0)]:7.3g}")
    print(f"# {seconds / 10:.3f} s per station")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
