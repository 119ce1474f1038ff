"""Typed message fields: checking what a sender gives, and the normal JSON form kept.

Each :class:`~deconflict.hotline.catalogue.FieldType` has one JSON form; :func:`check`
turns a sender's ``fields`` object into exactly that form (times as RFC 3339 UTC with a
``Z``, numbers as floats) or raises :class:`InvalidInput` naming ``fields.<name>`` and
the rule, every broken rule at once. Pure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from deconflict.errors import FieldError, InvalidInput
from deconflict.hotline.catalogue import Code, FieldType
from deconflict.ledger.canonical import JSONValue
from deconflict.model.geojson import format_time, outline_from_geometry, parse_time
from deconflict.model.volume import MAX_ALTITUDE_M, MIN_ALTITUDE_M, Circle, Outline, check_lon_lat

__all__ = ["MAX_TEXT", "area_outline", "check", "check_value"]

MAX_TEXT = 2000
"""Most characters of a text field."""

_ID = re.compile(r"^[A-Za-z0-9@][A-Za-z0-9_.:-]{0,127}$")
#: bidirectional formatting characters: a sender's text must not break the isolates
#: the renderer puts around it
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_IDS = {
    FieldType.FILING,
    FieldType.CONFLICT,
    FieldType.MESSAGE,
    FieldType.TRACK,
    FieldType.PARTY,
    FieldType.KIND,
}


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput.one(field, "must be a finite number")
    return float(value)


def _altitude(value: Any, field: str) -> float:
    number = _number(value, field)
    if not MIN_ALTITUDE_M <= number <= MAX_ALTITUDE_M:
        raise InvalidInput.one(field, f"must be within [{MIN_ALTITUDE_M:g}, {MAX_ALTITUDE_M:g}] m (WGS84)")
    return number


def _object(value: Any, field: str, names: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput.one(field, f"must be an object with {', '.join(names)}")
    errors = [FieldError(f"{field}.{k}", "unknown field") for k in value if k not in names]
    errors += [FieldError(f"{field}.{k}", "is required") for k in names if k not in value]
    if errors:
        raise InvalidInput(errors)
    return value


def _time(value: Any, field: str) -> datetime:
    return parse_time(value, field)


def area_outline(value: Any, field: str = "area") -> Outline:
    """An area (GeoJSON Polygon, or Point with ``radius_m``) as an outline."""
    if not isinstance(value, Mapping):
        raise InvalidInput.one(field, "must be a GeoJSON Polygon, or a Point with radius_m (a circle)")
    geometry = {k: v for k, v in value.items() if k != "radius_m"}
    try:
        return outline_from_geometry(geometry, value.get("radius_m"), field)
    except InvalidInput as exc:
        raise InvalidInput(
            [
                FieldError(f"{field}.radius_m", e.rule) if e.field == "properties.radius_m" else e
                for e in exc.errors
            ]
        ) from None


def _area_json(outline: Outline) -> dict[str, JSONValue]:
    if isinstance(outline, Circle):
        return {"type": "Point", "coordinates": [outline.lon, outline.lat], "radius_m": outline.radius_m}
    ring: list[JSONValue] = [[lon, lat] for lon, lat in outline.ring]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def check_value(ftype: FieldType, value: Any, field: str) -> JSONValue:
    """One value in its normal JSON form."""
    if ftype in _IDS:
        if not isinstance(value, str) or not _ID.match(value):
            raise InvalidInput.one(field, "must be an id of 1-128 characters: A-Z a-z 0-9 _ . : -")
        return value
    if ftype is FieldType.AREA:
        return _area_json(area_outline(value, field))
    if ftype is FieldType.TIME_WINDOW:
        raw = _object(value, field, ("start", "end"))
        start, end = _time(raw["start"], f"{field}.start"), _time(raw["end"], f"{field}.end")
        if end <= start:
            raise InvalidInput.one(f"{field}.end", "must be after start")
        return {"start": format_time(start), "end": format_time(end)}
    if ftype is FieldType.ALTITUDE_BAND:
        raw = _object(value, field, ("lower_m", "upper_m"))
        lower = _altitude(raw["lower_m"], f"{field}.lower_m")
        upper = _altitude(raw["upper_m"], f"{field}.upper_m")
        if upper < lower:
            raise InvalidInput.one(f"{field}.upper_m", "must be >= lower_m")
        return {"lower_m": lower, "upper_m": upper}
    if ftype is FieldType.POSITION:
        if not isinstance(value, list) or len(value) != 2:
            raise InvalidInput.one(field, "must be a [longitude, latitude] pair in degrees")
        lon, lat = _number(value[0], f"{field}[0]"), _number(value[1], f"{field}[1]")
        errors = check_lon_lat(lon, lat, field)
        if errors:
            raise InvalidInput(errors)
        return [lon, lat]
    if ftype is FieldType.ALTITUDE:
        return _altitude(value, field)
    if ftype is FieldType.INSTANT:
        return format_time(_time(value, field))
    if ftype is FieldType.DISTANCE:
        number = _number(value, field)
        if number < 0:
            raise InvalidInput.one(field, "must be >= 0 (metres)")
        return number
    if ftype is FieldType.COUNT:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
            raise InvalidInput.one(field, "must be a whole number within [0, 1000000]")
        return value
    if ftype is FieldType.FLAG:
        if not isinstance(value, bool):
            raise InvalidInput.one(field, "must be true or false")
        return value
    if ftype is FieldType.TEXT:
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput.one(field, "must be a non-empty string")
        if len(value) > MAX_TEXT:
            raise InvalidInput.one(field, f"must be at most {MAX_TEXT} characters")
        if _CONTROL.search(value):
            raise InvalidInput.one(field, "must not hold control characters (newline and tab are allowed)")
        if _BIDI.search(value):
            raise InvalidInput.one(field, "must not hold bidirectional formatting characters")
        return value
    raise AssertionError(f"unhandled field type {ftype}")  # pragma: no cover


def check(code: Code, raw: Any, prefix: str = "fields") -> dict[str, JSONValue]:
    """A sender's fields for `code` in normal form; InvalidInput names every broken rule."""
    if not isinstance(raw, Mapping):
        raise InvalidInput.one(prefix, "must be an object")
    code = code.pick(raw)
    have = ", ".join(code.fields) or "none"
    errors = [
        FieldError(f"{prefix}.{k}", f"unknown field (the code {code.name} has: {have})")
        for k in raw
        if k not in code.fields
    ]
    out: dict[str, JSONValue] = {}
    for name, ftype in code.fields.items():
        if name not in raw:
            errors.append(FieldError(f"{prefix}.{name}", f"is required ({ftype.value})"))
            continue
        try:
            out[name] = check_value(ftype, raw[name], f"{prefix}.{name}")
        except InvalidInput as exc:
            errors += exc.errors
    if errors:
        raise InvalidInput(errors)
    return out
