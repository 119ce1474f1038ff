"""Volumes as GeoJSON (RFC 7946) Features, in and out. Pure: dicts in, value objects out.

A volume is a Feature whose geometry is a Polygon (one closed outer ring of
[lon, lat] positions, no holes) or a Point with the property `radius_m` (a circle),
and whose properties carry `altitude_lower_m`, `altitude_upper_m` (metres, WGS84)
and `time_start`, `time_end` (RFC 3339, UTC). Every error names the field path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from deconflict.errors import FieldError, InvalidInput
from deconflict.model.volume import Circle, Outline, Polygon, Volume4D

_VOLUME_PROPS = frozenset({"altitude_lower_m", "altitude_upper_m", "time_start", "time_end", "radius_m"})
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def parse_time(value: Any, field: str) -> datetime:
    """An RFC 3339 time in UTC (`Z` or `+00:00`); anything else is refused."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() != timedelta(0):
            raise InvalidInput.one(field, "must be a UTC time (offset Z or +00:00)")
        return value.astimezone(UTC)
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise InvalidInput.one(field, "must be an RFC 3339 date-time string, e.g. 2026-11-26T12:00:00Z")
    text = value.upper().replace(" ", "T")
    frac = re.search(r"\.(\d+)", text)
    if frac and len(frac.group(1)) > 6:  # Python keeps microseconds
        text = text.replace(frac.group(0), "." + frac.group(1)[:6])
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput.one(field, "is not a valid date-time") from None
    if parsed.utcoffset() != timedelta(0):
        raise InvalidInput.one(field, "must be a UTC time (offset Z or +00:00)")
    return parsed.astimezone(UTC)


#: times formatted lately: a filing's conflicts and their warnings write the same few
#: times (now, the windows, the deadlines) many times over. Equal datetimes are the
#: same instant, so they format alike whatever their zone.
_FORMATTED: dict[datetime, str] = {}
_FORMATTED_KEPT = 4096


def format_time(value: datetime) -> str:
    """`value` as RFC 3339 in UTC (``Z``), microseconds only where there are some."""
    text = _FORMATTED.get(value)
    if text is None:
        utc = value if value.tzinfo is UTC else value.astimezone(UTC)  # ours are UTC already
        text = utc.isoformat().replace("+00:00", "Z")
        if len(_FORMATTED) >= _FORMATTED_KEPT:
            _FORMATTED.clear()
        _FORMATTED[value] = text
    return text


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput.one(field, "must be a finite number")
    return float(value)


def _position(value: Any, field: str) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise InvalidInput.one(
            field, "must be a [longitude, latitude] pair (altitudes go in altitude_lower_m/altitude_upper_m)"
        )
    return _number(value[0], f"{field}[0]"), _number(value[1], f"{field}[1]")


def outline_from_geometry(geometry: Any, radius_m: Any, field: str = "geometry") -> Outline:
    if not isinstance(geometry, Mapping):
        raise InvalidInput.one(field, "must be a GeoJSON Polygon or Point object")
    for key in geometry:
        if key not in ("type", "coordinates", "bbox"):
            raise InvalidInput.one(f"{field}.{key}", "unknown field")
    gtype = geometry.get("type")
    coords = geometry.get("coordinates")
    if gtype == "Point":
        lon, lat = _position(coords, f"{field}.coordinates")
        if radius_m is None:
            raise InvalidInput.one("properties.radius_m", "is required when the geometry is a Point (circle)")
        radius = _number(radius_m, "properties.radius_m")
        try:
            return Circle(lon, lat, radius)
        except InvalidInput as exc:
            raise InvalidInput(
                [
                    FieldError(
                        "properties.radius_m"
                        if e.field == "radius_m"
                        else f"{field}.coordinates" + e.field.removeprefix("center"),
                        e.rule,
                    )
                    for e in exc.errors
                ]
            ) from None
    if gtype == "Polygon":
        if radius_m is not None:
            raise InvalidInput.one("properties.radius_m", "is only allowed with a Point geometry")
        if not isinstance(coords, list) or not coords:
            raise InvalidInput.one(f"{field}.coordinates", "must be a list holding one linear ring")
        if len(coords) > 1:
            raise InvalidInput.one(f"{field}.coordinates", "polygons with holes are not supported")
        ring = coords[0]
        if not isinstance(ring, list) or len(ring) < 4:
            raise InvalidInput.one(
                f"{field}.coordinates[0]",
                "a linear ring needs at least 4 positions (3 distinct vertices, closed)",
            )
        points = [_position(p, f"{field}.coordinates[0][{i}]") for i, p in enumerate(ring)]
        if points[0] != points[-1]:
            raise InvalidInput.one(
                f"{field}.coordinates[0]", "a linear ring must be closed (last position equals the first)"
            )
        try:
            return Polygon(tuple(points[:-1]))
        except InvalidInput as exc:
            raise InvalidInput(
                [
                    FieldError(f"{field}.coordinates[0]" + e.field.removeprefix("vertices"), e.rule)
                    for e in exc.errors
                ]
            ) from None
    raise InvalidInput.one(f"{field}.type", "must be 'Polygon' or 'Point'")


def volume_from_feature(
    feature: Any, *, extra_properties: Collection[str] = ()
) -> tuple[Volume4D, dict[str, Any]]:
    """Parse one Feature. Returns the volume and the extra properties that were allowed."""
    if not isinstance(feature, Mapping):
        raise InvalidInput.one("", "must be a GeoJSON Feature object")
    for key in feature:
        if key not in ("type", "geometry", "properties", "id", "bbox"):
            raise InvalidInput.one(key, "unknown field")
    if feature.get("type") != "Feature":
        raise InvalidInput.one("type", "must be 'Feature'")
    props = feature.get("properties")
    if not isinstance(props, Mapping):
        raise InvalidInput.one("properties", "must be an object")
    allowed = _VOLUME_PROPS | set(extra_properties)
    for key in props:
        if key not in allowed:
            raise InvalidInput.one(f"properties.{key}", "unknown property")
    errors: list[FieldError] = []
    values: dict[str, Any] = {}
    for name in ("altitude_lower_m", "altitude_upper_m"):
        try:
            values[name] = _number(props.get(name), f"properties.{name}")
        except InvalidInput as exc:
            errors += exc.errors
    for name in ("time_start", "time_end"):
        try:
            values[name] = parse_time(props.get(name), f"properties.{name}")
        except InvalidInput as exc:
            errors += exc.errors
    try:
        values["outline"] = outline_from_geometry(feature.get("geometry"), props.get("radius_m"))
    except InvalidInput as exc:
        errors += exc.errors
    if errors:
        raise InvalidInput(errors)
    try:
        volume = Volume4D(**values)
    except InvalidInput as exc:
        raise exc.prefixed("properties") from None
    extras = {k: props[k] for k in extra_properties if k in props}
    return volume, extras


def outline_to_geometry(outline: Outline) -> dict[str, Any]:
    if isinstance(outline, Circle):
        return {"type": "Point", "coordinates": [outline.lon, outline.lat]}
    ring = [[lon, lat] for lon, lat in outline.ring]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


def volume_to_feature(volume: Volume4D, **properties: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "altitude_lower_m": volume.altitude_lower_m,
        "altitude_upper_m": volume.altitude_upper_m,
        "time_start": format_time(volume.time_start),
        "time_end": format_time(volume.time_end),
    }
    if isinstance(volume.outline, Circle):
        props["radius_m"] = volume.outline.radius_m
    props.update(properties)
    return {"type": "Feature", "geometry": outline_to_geometry(volume.outline), "properties": props}
