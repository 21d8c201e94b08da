"""Earthquakes as users have them: QuakeML, USGS ComCat GeoJSON, gmprocess ``event.json``.

:func:`read_event_file` detects the format by content (not by the file name) and returns an
obspy :class:`~obspy.core.event.Event` with a preferred origin and magnitude, and a focal
mechanism with the moment tensor when the file carries one:

QuakeML
    Any QuakeML 1.2 file obspy reads (``event_id`` picks one of several events).
USGS ComCat GeoJSON
    The event page's "detail" document (``https://earthquake.usgs.gov/fdsnws/event/1/query?
    eventid=ID&format=geojson``): a ``Feature`` whose ``properties`` hold ``mag``,
    ``magType``, ``time`` (ms since 1970) and ``products``, and whose ``geometry`` holds
    ``[longitude, latitude, depth_km]`` (the preferred origin). The preferred
    ``moment-tensor`` product (highest ``preferredWeight``) gives the tensor
    (``tensor-mrr`` ... ``tensor-mtp`` in N·m, r up, t south, p east), ``scalar-moment`` and
    ``nodal-plane-1-strike``/``-dip``/``-rake`` (or ``-slip``). A ``FeatureCollection`` of
    one event (or picked by ``event_id``) is read likewise.
gmprocess ``event.json``
    ``{"id", "time", "latitude", "longitude", "depth_km", "magnitude"[, "magnitude_type"]}``.

:func:`check_event` refuses implausible events (:class:`~dare_cli.ra.errors.ConfigError`,
exit 2): a depth outside ``DEPTH_RANGE_KM`` (QuakeML depths are in m, the JSON formats' in
km: a 9,000 km depth from a mix-up is refused, not run), a magnitude outside
``MAGNITUDE_RANGE``, a latitude or longitude out of range, no origin time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import obspy
from obspy import Catalog, UTCDateTime
from obspy.core.event import (
    Event,
    FocalMechanism,
    Magnitude,
    MomentTensor,
    NodalPlane,
    NodalPlanes,
    Origin,
    ResourceIdentifier,
    Tensor,
)

from dare_cli.ra.errors import ConfigError, RAError

__all__ = [
    "DEPTH_RANGE_KM",
    "EVENT_FORMATS",
    "MAGNITUDE_RANGE",
    "check_event",
    "detect_event_format",
    "event_summary",
    "read_event_file",
    "select_event",
]

#: Plausible hypocentre depths (km below sea level; negative above it).
DEPTH_RANGE_KM = (-10.0, 800.0)
#: Plausible magnitudes.
MAGNITUDE_RANGE = (-2.0, 10.0)
#: Formats :func:`read_event_file` recognises.
EVENT_FORMATS = ("quakeml", "usgs-geojson", "gmprocess-json")
_TENSOR_KEYS = ("tensor-mrr", "tensor-mtt", "tensor-mpp", "tensor-mrt", "tensor-mrp",
                "tensor-mtp")
_GMPROCESS_KEYS = ("time", "latitude", "longitude", "depth_km", "magnitude")


def detect_event_format(path: Path) -> str:
    """``"quakeml"``, ``"usgs-geojson"`` or ``"gmprocess-json"``, from the file's content.

    Raises
    ------
    RAError
        The file is missing, empty, not JSON nor XML, or JSON of another kind.
    """
    text = _read_text(path)
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("<"):
        return "quakeml"
    if stripped.startswith(("{", "[")):
        return _json_format(path, _load_json(path, text))
    raise RAError(f"event file {path}: neither QuakeML (XML) nor JSON (USGS GeoJSON or "
                  "gmprocess event.json)")


def read_event_file(path: Path, event_id: str | None = None) -> Event:
    """Read an event file in any of the formats of :data:`EVENT_FORMATS`.

    Parameters
    ----------
    path
        QuakeML, USGS ComCat GeoJSON or gmprocess ``event.json``.
    event_id
        Which event, when the file holds several (QuakeML, GeoJSON FeatureCollection); matches
        the whole id or its last part (``ci38457511`` for
        ``quakeml:us.anss.org/event/ci38457511``). With one event, it must match too.

    Returns
    -------
    obspy.core.event.Event
        With a preferred origin (depth in m) and magnitude, and a preferred focal mechanism
        when the file has a moment tensor.

    Raises
    ------
    RAError
        The file is missing or unreadable, of no known format, misses a needed field, or
        holds no (or several) matching events; the message names the file.
    """
    path = Path(path)
    kind = detect_event_format(path)
    if kind == "quakeml":
        try:
            catalog = obspy.read_events(str(path))
        except Exception as exc:
            raise RAError(f"cannot read QuakeML file {path}: {_first_line(exc)}") from exc
        return select_event(catalog, event_id, where=f"QuakeML {path}")
    data = _load_json(path, _read_text(path))
    if kind == "gmprocess-json":
        event = _gmprocess_event(path, data)
        return select_event(Catalog([event]), event_id, where=f"event file {path}")
    features = data["features"] if data.get("type") == "FeatureCollection" else [data]
    catalog = Catalog([_usgs_event(path, feature) for feature in features])
    return select_event(catalog, event_id, where=f"USGS GeoJSON {path}")


def select_event(catalog: Catalog, event_id: str | None = None, *, where: str = "") -> Event:
    """Pick one event from a catalog, by id if given.

    Parameters
    ----------
    catalog
        Events (e.g. from a QuakeML file or an event service).
    event_id
        Matches the whole resource id or its last part (after ``/``, ``=`` or ``:``), e.g.
        ``ci38457511`` for ``quakeml:us.anss.org/event/ci38457511``.
    where
        Where the catalog came from, for error messages.

    Raises
    ------
    RAError
        No event, no match, several events and no id, or an event without origin.
    """
    events = list(catalog)
    if event_id is not None:
        events = [e for e in events if _id_matches(str(e.resource_id), event_id)]
    if not events:
        wanted = f"event {event_id!r}" if event_id else "an event"
        raise RAError(f"{where or 'catalog'} has no {wanted}")
    if len(events) > 1:
        ids = ", ".join(str(e.resource_id) for e in events[:5])
        raise RAError(f"{where or 'catalog'} has {len(events)} events ({ids}); set event_id")
    if not events[0].origins:
        raise RAError(f"event {events[0].resource_id} in {where or 'catalog'} has no origin")
    return events[0]


def check_event(event: Event, where: str) -> None:
    """Refuse an implausible event before anything runs.

    Parameters
    ----------
    event
        The event (QuakeML conventions: depth in m).
    where
        Where it came from (a file, an FDSN provider), for the message.

    Raises
    ------
    ConfigError
        No origin time; latitude outside -90..90 or longitude outside -180..180 degrees;
        depth outside :data:`DEPTH_RANGE_KM`; magnitude outside :data:`MAGNITUDE_RANGE`.
    """
    origin = event.preferred_origin() or (event.origins[0] if event.origins else None)
    if origin is None:
        raise ConfigError(f"{where}: the event has no origin")
    if origin.time is None:
        raise ConfigError(f"{where}: the event's origin has no time")
    for name, value, limit in (("latitude", origin.latitude, 90.0),
                               ("longitude", origin.longitude, 180.0)):
        if value is None:
            raise ConfigError(f"{where}: the event's origin has no {name}")
        if not math.isfinite(value) or abs(value) > limit:
            raise ConfigError(f"{where}: {name} {value} is outside -{limit:g}..{limit:g} "
                              "degrees")
    if origin.depth is not None:
        depth_km = float(origin.depth) / 1000.0
        low, high = DEPTH_RANGE_KM
        if not math.isfinite(depth_km) or not low <= depth_km <= high:
            hint = "; a km/m mix-up in the event file?" if depth_km > high else ""
            raise ConfigError(
                f"{where}: depth {depth_km:g} km (QuakeML depth {float(origin.depth):g} m) is "
                f"outside {low:g}..{high:g} km{hint}")
    magnitude = event.preferred_magnitude() or (event.magnitudes[0] if event.magnitudes
                                                else None)
    if magnitude is not None and magnitude.mag is not None:
        low, high = MAGNITUDE_RANGE
        if not math.isfinite(magnitude.mag) or not low <= magnitude.mag <= high:
            raise ConfigError(f"{where}: magnitude {magnitude.mag:g} is outside "
                              f"{low:g}..{high:g}")


def event_summary(event: Event) -> dict[str, Any]:
    """Id, origin (depth in km), magnitude and whether a moment tensor came with the event."""
    origin = event.preferred_origin() or event.origins[0]
    magnitude = event.preferred_magnitude() or (event.magnitudes[0] if event.magnitudes
                                                else None)
    mechanism = event.preferred_focal_mechanism() or (
        event.focal_mechanisms[0] if event.focal_mechanisms else None)
    return {
        "id": str(event.resource_id),
        "time": str(origin.time),
        "latitude": origin.latitude,
        "longitude": origin.longitude,
        "depth_km": origin.depth / 1e3 if origin.depth is not None else None,
        "magnitude": magnitude.mag if magnitude else None,
        "magnitude_type": magnitude.magnitude_type if magnitude else None,
        "moment_tensor": bool(mechanism is not None and mechanism.moment_tensor is not None
                              and mechanism.moment_tensor.tensor is not None),
    }


# -- formats ----------------------------------------------------------------------------------


def _json_format(path: Path, data: Any) -> str:
    if isinstance(data, Mapping):
        if data.get("type") == "Feature":
            return "usgs-geojson"
        if data.get("type") == "FeatureCollection":
            if not isinstance(data.get("features"), list) or not data["features"]:
                raise RAError(f"USGS GeoJSON {path}: the FeatureCollection has no features")
            return "usgs-geojson"
        if any(key in data for key in _GMPROCESS_KEYS):
            return "gmprocess-json"
    raise RAError(f"event file {path}: JSON, but neither a USGS GeoJSON Feature nor a "
                  f"gmprocess event.json (keys {', '.join(_GMPROCESS_KEYS)})")


def _gmprocess_event(path: Path, data: Mapping[str, Any]) -> Event:
    where = f"event file {path}"
    missing = [key for key in _GMPROCESS_KEYS if data.get(key) is None]
    if missing:
        raise RAError(f"{where}: missing {', '.join(missing)} (a gmprocess event.json has "
                      f"{', '.join(('id', *_GMPROCESS_KEYS))})")
    event_id = str(data.get("id") or path.stem)
    return _build_event(
        event_id,
        time=_time(where, "time", data["time"]),
        latitude=_number(where, "latitude", data["latitude"]),
        longitude=_number(where, "longitude", data["longitude"]),
        depth_km=_number(where, "depth_km", data["depth_km"]),
        magnitude=_number(where, "magnitude", data["magnitude"]),
        magnitude_type=data.get("magnitude_type"), authority="dare",
    )


def _usgs_event(path: Path, feature: Any) -> Event:
    where = f"USGS GeoJSON {path}"
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        raise RAError(f"{where}: expected a GeoJSON Feature, not {str(feature)[:60]!r}")
    properties = feature.get("properties")
    if not isinstance(properties, Mapping):
        raise RAError(f"{where}: the Feature has no 'properties'")
    products: Mapping[str, Any] = (
        properties["products"] if isinstance(properties.get("products"), Mapping) else {})
    origin_product = _preferred(products.get("origin"))
    origin_properties: Mapping[str, Any] = (
        (origin_product.get("properties") or {}) if origin_product else {})
    coordinates = (feature.get("geometry") or {}).get("coordinates") or []
    event_id = str(feature.get("id") or properties.get("code") or path.stem)

    def pick(geometry_index: int, product_key: str, name: str) -> float:
        if len(coordinates) > geometry_index and coordinates[geometry_index] is not None:
            return _number(where, name, coordinates[geometry_index])
        if origin_properties.get(product_key) not in (None, ""):
            return _number(where, name, origin_properties[product_key])
        raise RAError(f"{where}: no {name} (geometry.coordinates[{geometry_index}] or the "
                      f"origin product's {product_key!r})")

    if properties.get("time") is not None:
        time = _time(where, "properties.time", properties["time"], milliseconds=True)
    elif origin_properties.get("eventtime"):
        time = _time(where, "origin eventtime", origin_properties["eventtime"])
    else:
        raise RAError(f"{where}: no origin time (properties.time)")
    magnitude: float | None = None
    if properties.get("mag") is not None:
        magnitude = _number(where, "properties.mag", properties["mag"])
    elif origin_properties.get("magnitude") not in (None, ""):
        magnitude = _number(where, "origin magnitude", origin_properties["magnitude"])
    event = _build_event(
        event_id, time=time,
        latitude=pick(1, "latitude", "latitude"),
        longitude=pick(0, "longitude", "longitude"),
        depth_km=pick(2, "depth", "depth_km"),
        magnitude=magnitude,
        magnitude_type=properties.get("magType") or origin_properties.get("magnitude-type"),
        authority="us.anss.org",
    )
    tensor_product = _preferred(products.get("moment-tensor"))
    if tensor_product:
        mechanism = _mechanism(where, tensor_product, event)
        if mechanism is not None:
            event.focal_mechanisms.append(mechanism)
            event.preferred_focal_mechanism_id = mechanism.resource_id
    return event


def _mechanism(where: str, product: Mapping[str, Any], event: Event) -> FocalMechanism | None:
    """Focal mechanism of a ComCat ``moment-tensor`` product (N·m, r/t/p frame)."""
    properties = product.get("properties") or {}
    source = product.get("source", "?")
    where = f"{where} moment-tensor product of {source!r}"
    moment_tensor = None
    if all(properties.get(key) not in (None, "") for key in _TENSOR_KEYS):
        m_rr, m_tt, m_pp, m_rt, m_rp, m_tp = (
            _number(where, key, properties[key]) for key in _TENSOR_KEYS)
        scalar = properties.get("scalar-moment")
        moment_tensor = MomentTensor(
            tensor=Tensor(m_rr=m_rr, m_tt=m_tt, m_pp=m_pp, m_rt=m_rt, m_rp=m_rp, m_tp=m_tp),
            scalar_moment=_number(where, "scalar-moment", scalar)
            if scalar not in (None, "") else None,
            derived_origin_id=event.preferred_origin_id,
        )
    nodal_planes = None
    rake = properties.get("nodal-plane-1-rake", properties.get("nodal-plane-1-slip"))
    angles = (properties.get("nodal-plane-1-strike"), properties.get("nodal-plane-1-dip"), rake)
    if all(value not in (None, "") for value in angles):
        strike, dip, slip = (_number(where, name, value)
                             for name, value in zip(("strike", "dip", "rake"), angles,
                                                    strict=True))
        nodal_planes = NodalPlanes(
            nodal_plane_1=NodalPlane(strike=strike, dip=dip, rake=slip), preferred_plane=1)
    if moment_tensor is None and nodal_planes is None:
        return None
    return FocalMechanism(
        resource_id=ResourceIdentifier(f"{event.resource_id}/focalmechanism/{source}"),
        moment_tensor=moment_tensor, nodal_planes=nodal_planes,
        triggering_origin_id=event.preferred_origin_id,
    )


def _build_event(event_id: str, *, time: UTCDateTime, latitude: float,
                 longitude: float, depth_km: float, magnitude: float | None,
                 magnitude_type: Any, authority: str) -> Event:
    base = f"quakeml:{authority}/event/{event_id}"
    origin = Origin(resource_id=ResourceIdentifier(f"{base}/origin"), time=time,
                    latitude=latitude, longitude=longitude, depth=depth_km * 1000.0)
    event = Event(resource_id=ResourceIdentifier(base), origins=[origin])
    event.preferred_origin_id = origin.resource_id
    if magnitude is not None:
        mag = Magnitude(resource_id=ResourceIdentifier(f"{base}/magnitude"), mag=magnitude,
                        magnitude_type=str(magnitude_type) if magnitude_type else None,
                        origin_id=origin.resource_id)
        event.magnitudes.append(mag)
        event.preferred_magnitude_id = mag.resource_id
    return event


def _preferred(products: Any) -> Mapping[str, Any] | None:
    """The product of highest ``preferredWeight`` (the first on a tie, as ComCat sorts)."""
    if not isinstance(products, list) or not products:
        return None
    candidates = [p for p in products if isinstance(p, Mapping)]
    if not candidates:
        return None
    return max(candidates, key=lambda p: float(p.get("preferredWeight") or 0.0))


# -- small helpers ----------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise RAError(f"event file {path} does not exist")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RAError(f"cannot read event file {path}: {exc.strerror or exc}") from exc
    if not data.strip():
        raise RAError(f"event file {path} is empty")
    return data.decode("utf-8", errors="replace")


def _load_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise RAError(f"event file {path}: invalid JSON: {exc}") from None


def _number(where: str, name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RAError(f"{where}: {name} must be a number, not {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise RAError(f"{where}: {name} must be a finite number, not {value!r}")
    return number


def _time(where: str, name: str, value: Any, *, milliseconds: bool = False) -> UTCDateTime:
    try:
        if milliseconds and isinstance(value, (int, float)) and not isinstance(value, bool):
            return UTCDateTime(value / 1000.0)
        return UTCDateTime(str(value))
    except Exception:
        raise RAError(f"{where}: {name} {value!r} is not a time") from None


def _id_matches(resource_id: str, wanted: str) -> bool:
    return resource_id == wanted or resource_id.endswith(("/" + wanted, "=" + wanted, ":" + wanted))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
