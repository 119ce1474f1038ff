"""Volume4D, as in ASTM F3548-21: an outline, an altitude band and a time window.

Units: longitudes and latitudes in WGS84 degrees, lengths in metres, times
timezone-aware UTC. Construction checks the rules that need no geometry
library; `deconflict.geometry.validate_outline` checks the rest
(self-intersection, antimeridian, area).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from deconflict.errors import FieldError, InvalidInput

_T = TypeVar("_T")

#: Altitudes outside this band (metres, WGS84) are refused as nonsense.
MIN_ALTITUDE_M = -1_000.0
MAX_ALTITUDE_M = 100_000.0


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_lon_lat(lon: float, lat: float, field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if not _finite(lon) or not -180.0 <= lon <= 180.0:
        errors.append(FieldError(f"{field}[0]", "longitude must be a number within [-180, 180]"))
    if not _finite(lat) or not -90.0 <= lat <= 90.0:
        errors.append(FieldError(f"{field}[1]", "latitude must be a number within [-90, 90]"))
    return errors


def _unchecked(cls: type[_T], **fields: object) -> _T:
    """An instance of the frozen dataclass `cls` with these fields, without running its
    `__post_init__` checks (the `stored` constructors: values checked when filed)."""
    obj = object.__new__(cls)
    for name, value in fields.items():
        object.__setattr__(obj, name, value)
    return obj


def is_utc(value: datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() == timedelta(0)


@dataclass(frozen=True, slots=True)
class Circle:
    """A circle on the ground: centre in degrees, radius in metres."""

    lon: float
    lat: float
    radius_m: float

    def __post_init__(self) -> None:
        errors = check_lon_lat(self.lon, self.lat, "center")
        if not _finite(self.radius_m) or self.radius_m <= 0:
            errors.append(FieldError("radius_m", "must be a number > 0"))
        if errors:
            raise InvalidInput(errors)

    @classmethod
    def stored(cls, lon: float, lat: float, radius_m: float) -> Circle:
        """From a document the service wrote after these checks: built without them."""
        return _unchecked(cls, lon=lon, lat=lat, radius_m=radius_m)


@dataclass(frozen=True, slots=True)
class Polygon:
    """A simple polygon: vertices (lon, lat) in degrees, ring not closed (the
    first vertex is not repeated at the end)."""

    ring: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        errors: list[FieldError] = []
        for i, (lon, lat) in enumerate(self.ring):
            errors += check_lon_lat(lon, lat, f"vertices[{i}]")
        if errors:
            raise InvalidInput(errors)
        if len(set(self.ring)) < 3:
            raise InvalidInput.one("vertices", "needs at least 3 distinct vertices")
        if any(self.ring[i] == self.ring[i - 1] for i in range(len(self.ring))):
            # consecutive duplicates are harmless but make the ring ambiguous
            ring = [self.ring[i] for i in range(len(self.ring)) if self.ring[i] != self.ring[i - 1]]
            object.__setattr__(self, "ring", tuple(ring))

    @classmethod
    def stored(cls, ring: tuple[tuple[float, float], ...]) -> Polygon:
        """From a document the service wrote after these checks: built without them."""
        return _unchecked(cls, ring=ring)


Outline = Circle | Polygon


@dataclass(frozen=True, slots=True)
class Volume4D:
    outline: Outline
    altitude_lower_m: float
    altitude_upper_m: float
    time_start: datetime
    time_end: datetime

    def __post_init__(self) -> None:
        errors: list[FieldError] = []
        lo, hi = self.altitude_lower_m, self.altitude_upper_m
        for name, v in (("altitude_lower_m", lo), ("altitude_upper_m", hi)):
            if not _finite(v) or not MIN_ALTITUDE_M <= v <= MAX_ALTITUDE_M:
                errors.append(
                    FieldError(
                        name, f"must be a number within [{MIN_ALTITUDE_M:.0f}, {MAX_ALTITUDE_M:.0f}] m"
                    )
                )
        if not errors and lo >= hi:
            errors.append(FieldError("altitude_upper_m", "must be greater than altitude_lower_m"))
        for name, t in (("time_start", self.time_start), ("time_end", self.time_end)):
            if not isinstance(t, datetime) or not is_utc(t):
                errors.append(FieldError(name, "must be a timezone-aware UTC time"))
        if not errors and self.time_end <= self.time_start:
            errors.append(FieldError("time_end", "must be later than time_start"))
        if errors:
            raise InvalidInput(errors)

    @classmethod
    def stored(
        cls, outline: Outline, lower_m: float, upper_m: float, start: datetime, end: datetime
    ) -> Volume4D:
        """From a document the service wrote after these checks: built without them
        (decoding a neighbour is on every filing's path; checking it again is not)."""
        return _unchecked(
            cls,
            outline=outline,
            altitude_lower_m=lower_m,
            altitude_upper_m=upper_m,
            time_start=start,
            time_end=end,
        )

    @property
    def duration_s(self) -> float:
        return (self.time_end - self.time_start).total_seconds()
