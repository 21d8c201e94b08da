"""The shared offline basemap (:mod:`dare_cli.maps`): real coastlines and borders, clipped."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from dare_cli.maps import BASEMAP_LAYERS, basemap_geometries, clipped_layer


def test_basemap_layers_hold_california():
    box = (-121.0, 32.5, -114.0, 38.5)
    coast = shapely.MultiLineString([g for g in clipped_layer("coastline", box)])
    states = shapely.union_all(clipped_layer("states", box))
    # Santa Monica pier on the coast; the California-Nevada line at 36 N near 115.97 W
    assert coast.distance(shapely.Point(-118.497, 34.009)) < 0.03
    assert states.distance(shapely.Point(-115.97, 36.0)) < 0.05
    assert clipped_layer("borders", box)  # Mexico
    lakes = shapely.union_all(clipped_layer("lakes", box))
    assert lakes.contains(shapely.Point(-115.83, 33.30))  # the Salton Sea
    assert lakes.contains(shapely.Point(-114.60, 36.15))  # Lake Mead
    assert coast.bounds[0] >= -121.0 and coast.bounds[2] <= -114.0  # clipped to the box


def test_basemap_wraps_the_antimeridian():
    # Fiji: Viti Levu at 178 E, Lau islands at 178.5 W; asked for as -183 .. -176 degrees
    parts = clipped_layer("coastline", (-183.0, -19.5, -176.0, -15.0))
    bounds = shapely.bounds(np.array(parts, dtype=object))
    assert bounds[:, 0].min() < -180.0 < bounds[:, 2].max()
    assert bounds[:, 0].min() >= -183.0 and bounds[:, 2].max() <= -176.0


def test_every_layer_ships_and_an_unknown_one_is_named():
    for layer in BASEMAP_LAYERS:
        geometries, bounds = basemap_geometries(layer)
        assert len(geometries) == len(bounds) > 10
    with pytest.raises(ValueError, match="unknown basemap layer 'rivers'; known: "):
        basemap_geometries("rivers")
