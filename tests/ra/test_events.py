"""Events as users have them: QuakeML, USGS ComCat GeoJSON, gmprocess event.json; implausible
events refused (exit 2) before anything runs, from files and from an FDSN event service.

The USGS documents are written here in ComCat's "detail" layout (values as strings in the
products, as ComCat serves them); the expected moment tensor is computed independently with
:func:`dare_cli.ra.source.double_couple_tensor`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import obspy
import pytest
from fdsn_server import EXAMPLE, FDSNServer
from obspy import UTCDateTime
from obspy.core.event import Catalog, Event, Magnitude, Origin
from typer.testing import CliRunner, Result

from dare_cli.main import app
from dare_cli.ra.config import load_config
from dare_cli.ra.download import DownloadConfig, download, preflight_event
from dare_cli.ra.errors import ConfigError, RAError
from dare_cli.ra.events import check_event, detect_event_format, read_event_file
from dare_cli.ra.pipeline import run_assessment
from dare_cli.ra.source import (
    double_couple_tensor,
    moment_from_magnitude,
    ned_to_rtp,
    tensor_from_event,
)

T0 = UTCDateTime("2019-07-06T03:19:53.040Z")
STRIKE, DIP, RAKE, MW = 321.0, 81.0, 180.0, 7.1
M0 = moment_from_magnitude(MW)
TENSOR = double_couple_tensor(STRIKE, DIP, RAKE, M0)
MRR, MTT, MPP, MRT, MRP, MTP = ned_to_rtp(TENSOR)


def usgs_detail(*, depth_km: float = 8.0, with_tensor: bool = True, mag: float = 7.1,
                event_id: str = "ci38457511") -> dict[str, Any]:
    """A ComCat detail GeoJSON Feature of Ridgecrest (two moment-tensor products)."""
    def tensor_product(source: str, weight: int, scale: float) -> dict[str, Any]:
        return {
            "id": f"urn:usgs-product:{source}:moment-tensor:{event_id}:1", "type":
            "moment-tensor", "source": source, "preferredWeight": weight,
            "properties": {
                "tensor-mrr": f"{MRR * scale:.6E}", "tensor-mtt": f"{MTT * scale:.6E}",
                "tensor-mpp": f"{MPP * scale:.6E}", "tensor-mrt": f"{MRT * scale:.6E}",
                "tensor-mrp": f"{MRP * scale:.6E}", "tensor-mtp": f"{MTP * scale:.6E}",
                "scalar-moment": f"{M0 * scale:.6E}", "derived-depth": "11.5",
                "nodal-plane-1-strike": str(STRIKE), "nodal-plane-1-dip": str(DIP),
                "nodal-plane-1-rake": str(RAKE),
                "nodal-plane-2-strike": "51.0", "nodal-plane-2-dip": "90.0",
                "nodal-plane-2-rake": "9.0",
            },
        }

    products: dict[str, Any] = {
        "origin": [{"source": "ci", "preferredWeight": 156, "properties": {
            "latitude": "35.7695", "longitude": "-117.5993333", "depth": str(depth_km),
            "eventtime": "2019-07-06T03:19:53.040Z", "magnitude": str(mag),
            "magnitude-type": "mw"}}],
    }
    if with_tensor:  # the preferred one (weight 150) second, scaled apart from the other
        products["moment-tensor"] = [tensor_product("us", 50, 2.0),
                                     tensor_product("ci", 150, 1.0)]
    return {
        "type": "Feature", "id": event_id,
        "properties": {"mag": mag, "place": "Ridgecrest Earthquake Sequence",
                       "time": 1562383193040, "magType": "mw", "type": "earthquake",
                       "products": products},
        "geometry": {"type": "Point", "coordinates": [-117.5993333, 35.7695, depth_km]},
    }


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=2))
    return path


# -- formats ----------------------------------------------------------------------------------


def test_usgs_geojson_gives_origin_magnitude_and_the_preferred_moment_tensor(tmp_path):
    path = write_json(tmp_path / "event.json", usgs_detail())
    assert detect_event_format(path) == "usgs-geojson"
    event = read_event_file(path)
    origin = event.preferred_origin()
    assert origin.time == T0
    assert (origin.latitude, origin.longitude) == (35.7695, -117.5993333)
    assert origin.depth == pytest.approx(8000.0)  # km -> m
    magnitude = event.preferred_magnitude()
    assert (magnitude.mag, magnitude.magnitude_type) == (7.1, "mw")
    assert str(event.resource_id) == "quakeml:us.anss.org/event/ci38457511"
    mechanism = event.preferred_focal_mechanism()
    assert str(mechanism.resource_id).endswith("/focalmechanism/ci")  # weight 150 wins
    np.testing.assert_allclose(tensor_from_event(event), TENSOR, rtol=1e-6)
    assert mechanism.moment_tensor.scalar_moment == pytest.approx(M0, rel=1e-6)
    plane = mechanism.nodal_planes.nodal_plane_1
    assert (plane.strike, plane.dip, plane.rake) == (STRIKE, DIP, RAKE)


def test_usgs_moment_tensor_survives_the_download_stage(tmp_path):
    path = write_json(tmp_path / "event.json", usgs_detail())
    config = DownloadConfig(source="local", directory=str(EXAMPLE), event=str(path),
                            radius_km=31.0, before=30.0, after=360.0)
    result = download(config, tmp_path / "out")
    written = obspy.read_events(str(tmp_path / "out" / "event.xml"))[0]  # QuakeML round trip
    np.testing.assert_allclose(tensor_from_event(written), TENSOR, rtol=1e-6)
    event = result.manifest["event"]
    assert event["source"] == {"file": str(path), "format": "usgs-geojson"}
    assert event["moment_tensor"] is True and event["depth_km"] == pytest.approx(8.0)
    assert len(result.stations) == 3


def test_usgs_nodal_plane_slip_and_no_tensor(tmp_path):
    data = usgs_detail()
    for product in data["properties"]["products"]["moment-tensor"]:
        properties = product["properties"]
        properties["nodal-plane-1-slip"] = properties.pop("nodal-plane-1-rake")
        for key in [k for k in properties if k.startswith("tensor-")]:
            del properties[key]
    event = read_event_file(write_json(tmp_path / "e.json", data))
    assert tensor_from_event(event) is None  # no components: the [source] angles are used
    assert event.preferred_focal_mechanism().nodal_planes.nodal_plane_1.rake == RAKE
    no_tensor = read_event_file(write_json(tmp_path / "n.json", usgs_detail(with_tensor=False)))
    assert no_tensor.focal_mechanisms == []


def test_usgs_feature_collection_picks_by_id(tmp_path):
    collection = {"type": "FeatureCollection",
                  "features": [usgs_detail(event_id="ci38443183", mag=6.4),
                               usgs_detail(event_id="ci38457511")]}
    path = write_json(tmp_path / "query.geojson", collection)
    assert read_event_file(path, "ci38443183").preferred_magnitude().mag == 6.4
    with pytest.raises(RAError, match=r"has 2 events .*; set event_id"):
        read_event_file(path)


def test_gmprocess_event_json_of_the_example(tmp_path):
    path = EXAMPLE / "event.json"
    assert detect_event_format(path) == "gmprocess-json"
    event = read_event_file(path)
    origin = event.preferred_origin()
    assert origin.time == UTCDateTime(2019, 7, 6, 3, 19, 53)
    assert (origin.latitude, origin.longitude, origin.depth) == (35.770, -117.599, 8000.0)
    assert event.preferred_magnitude().mag == 7.1
    assert read_event_file(path, "ci38457511") is not None
    with pytest.raises(RAError, match=r"event file .*event\.json has no event 'us1000abcd'"):
        read_event_file(path, "us1000abcd")


def test_quakeml_detected_by_content_whatever_its_name(tmp_path):
    path = tmp_path / "ridgecrest.txt"
    path.write_bytes((EXAMPLE / "event.xml").read_bytes())
    assert detect_event_format(path) == "quakeml"
    assert read_event_file(path).preferred_origin().depth == 8000.0


def test_event_key_in_a_configuration_file_is_resolved_and_used(tmp_path):
    config_path = tmp_path / "ra.toml"
    config_path.write_text(f'[download]\nsource = "local"\ndirectory = "{EXAMPLE}"\n'
                           f'event = "{EXAMPLE / "event.json"}"\n')
    relative = tmp_path / "sub" / "ra.toml"
    relative.parent.mkdir()
    write_json(tmp_path / "sub" / "quake.json", usgs_detail())
    relative.write_text('[download]\nsource = "local"\ndirectory = "."\nevent = "quake.json"\n')
    assert load_config(relative).download.event == str(tmp_path / "sub" / "quake.json")
    assert preflight_event(load_config(config_path).download) is not None


@pytest.mark.parametrize(("content", "message"), [
    ("", r"event file .*bad\.json is empty"),
    ("{not json", r"event file .*bad\.json: invalid JSON: "),
    ('{"type": "Point"}', r"event file .*bad\.json: JSON, but neither a USGS GeoJSON Feature "
                          r"nor a gmprocess event\.json"),
    ('{"id": "x", "time": "2019-07-06", "latitude": 35.0}',
     r"event file .*bad\.json: missing longitude, depth_km, magnitude"),
    ('{"time": "yesterday", "latitude": 1, "longitude": 2, "depth_km": 3, "magnitude": 4}',
     r"event file .*bad\.json: time 'yesterday' is not a time"),
    ('{"time": "2019-07-06", "latitude": "north", "longitude": 2, "depth_km": 3, '
     '"magnitude": 4}', r"event file .*bad\.json: latitude must be a number, not 'north'"),
    ("# a CMTSOLUTION?\n", r"event file .*bad\.json: neither QuakeML \(XML\) nor JSON"),
])
def test_unreadable_event_files_are_named(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(RAError, match=message):
        read_event_file(path)


# -- implausible events -----------------------------------------------------------------------


def gmprocess(**changes: Any) -> dict[str, Any]:
    data = json.loads((EXAMPLE / "event.json").read_text())
    data.update(changes)
    return data


@pytest.mark.parametrize(("data", "message"), [
    (gmprocess(depth_km=9000.0), "depth 9000 km (QuakeML depth 9e+06 m) is outside -10..800 km; "
                                 "a km/m mix-up in the event file?"),
    (gmprocess(depth_km=-12.0), "depth -12 km (QuakeML depth -12000 m) is outside -10..800 km"),
    (gmprocess(magnitude=12.5), "magnitude 12.5 is outside -2..10"),
    (gmprocess(magnitude=-3.0), "magnitude -3 is outside -2..10"),
    (gmprocess(latitude=95.0), "latitude 95.0 is outside -90..90 degrees"),
    (gmprocess(longitude=-200.0), "longitude -200.0 is outside -180..180 degrees"),
    (usgs_detail(depth_km=8000.0), "depth 8000 km (QuakeML depth 8e+06 m) is outside -10..800 "
                                   "km; a km/m mix-up in the event file?"),
])
def test_implausible_json_events_are_refused_naming_file_and_value(tmp_path, data, message):
    path = write_json(tmp_path / "event.json", data)
    with pytest.raises(ConfigError) as error:
        preflight_event(DownloadConfig(source="local", directory=str(tmp_path), event=str(path)))
    assert str(error.value) == f"event file {path}: {message}"


def quakeml(tmp_path: Path, *, depth_m: float | None = 8000.0, time: Any = T0) -> Path:
    origin = Origin(time=time, latitude=35.77, longitude=-117.599, depth=depth_m)
    event = Event(origins=[origin], magnitudes=[Magnitude(mag=7.1, magnitude_type="Mw")])
    path = tmp_path / "event.xml"
    Catalog([event]).write(str(path), format="QUAKEML")
    return path


def test_quakeml_depth_in_km_by_mistake_is_plausible_but_metres_for_km_is_not(tmp_path):
    check_event(read_event_file(quakeml(tmp_path, depth_m=8.0)), "x")  # 8 m: shallow, allowed
    path = quakeml(tmp_path, depth_m=9.0e6)  # 9,000 km
    with pytest.raises(ConfigError, match=r"depth 9000 km \(QuakeML depth 9e\+06 m\) is outside"):
        check_event(read_event_file(path), f"event file {path}")


def test_an_origin_without_time_is_refused(tmp_path):
    origin = Origin(latitude=35.77, longitude=-117.599, depth=8000.0)
    with pytest.raises(ConfigError, match=r"^somewhere: the event's origin has no time$"):
        check_event(Event(origins=[origin]), "somewhere")
    with pytest.raises(ConfigError, match=r"^somewhere: the event has no origin$"):
        check_event(Event(), "somewhere")
    nowhere = Origin(time=T0, longitude=0.0)
    with pytest.raises(ConfigError, match=r"^somewhere: the event's origin has no latitude$"):
        check_event(Event(origins=[nowhere]), "somewhere")
    with pytest.raises(ValueError, match="not a finite"):  # obspy itself refuses NaN
        Origin(time=T0, latitude=math.nan, longitude=0.0)


# -- through the command line and the pipeline ------------------------------------------------


@pytest.fixture
def cli() -> Callable[..., Result]:
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_cli_refuses_an_implausible_event_file_with_exit_2_and_writes_nothing(tmp_path, cli):
    event = write_json(tmp_path / "event.json", gmprocess(depth_km=9000.0))
    config = tmp_path / "ra.toml"
    config.write_text(f'[run]\nout = "{tmp_path / "run"}"\n[download]\nsource = "local"\n'
                      f'directory = "{EXAMPLE}"\nevent = "event.json"\n')
    result = cli("ra", "run", config)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: event file {event}: depth 9000 km (QuakeML depth 9e+06 m) is outside "
        "-10..800 km; a km/m mix-up in the event file?")
    assert not (tmp_path / "run").exists()
    result = cli("ra", "download", config)
    assert result.exit_code == 2 and not (tmp_path / "run").exists()


def test_fdsn_event_id_still_works_and_an_implausible_served_event_exits_2(
        fdsn_service: FDSNServer, tmp_path, cli):
    config = tmp_path / "ra.toml"
    config.write_text(f'[run]\nout = "{tmp_path / "run"}"\n[download]\nsource = "fdsn"\n'
                      f'provider = "{fdsn_service.url}"\nevent_id = "ci38457511"\n'
                      'radius_km = 31.0\nbefore = 30.0\nafter = 360.0\n')
    report = run_assessment(load_config(config), only=["download"])
    assert report["stages"][0]["status"] == "ran"
    assert sorted(report["stations"]) == ["CI.JRC2", "CI.WNM", "CI.WVP2"]
    fdsn_service.data.catalog[0].preferred_origin().depth = 9.0e6
    asked_before = len(fdsn_service.requests)
    result = cli("ra", "download", config, "--force")
    assert result.exit_code == 2
    assert ("error: stage download failed: event 'ci38457511' from the event service of "
            f"'{fdsn_service.url}': depth 9000 km (QuakeML depth 9e+06 m) is outside") \
        in result.stderr
    asked = {path for _, path, _ in fdsn_service.requests[asked_before:]}
    assert asked <= {"/fdsnws/event/1/query", "/fdsnws/event/1/application.wadl",
                     "/fdsnws/event/1/version", "/fdsnws/station/1/application.wadl",
                     "/fdsnws/station/1/version", "/fdsnws/dataselect/1/application.wadl",
                     "/fdsnws/dataselect/1/version", "/fdsnws/event/1/catalogs",
                     "/fdsnws/event/1/contributors"}  # no station or waveform query
    assert (tmp_path / "run" / "download" / "manifest.json").exists()  # the earlier one kept
