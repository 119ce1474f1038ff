"""How far a point in space and time lies outside a 4D volume, per dimension.

Used by conformance monitoring (is a track inside its intent's volumes, within the
agreement's tolerance?) and by the check for unannounced aircraft in a reservation.
Horizontal distances in a local plane centred on the point (good to 0.1 % within
500 km, far more than a tolerance needs). Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import shapely

from deconflict.geometry.outline import to_local
from deconflict.geometry.projection import LocalProjection
from deconflict.model.volume import Circle, Volume4D

__all__ = ["Outside", "outside", "within"]


@dataclass(frozen=True, slots=True)
class Outside:
    """Distance outside the volume: 0 in a dimension where the point is inside."""

    horizontal_m: float
    vertical_m: float
    time_s: float


def outside(volume: Volume4D, lon: float, lat: float, alt_m: float, at: datetime) -> Outside:
    proj = LocalProjection.at(lon, lat)
    geom, radius_m = to_local(volume.outline, proj)
    if isinstance(volume.outline, Circle):
        h = max(0.0, math.hypot(float(shapely.get_x(geom)), float(shapely.get_y(geom))) - radius_m)
    else:
        h = float(shapely.distance(geom, shapely.Point(0.0, 0.0)))
    v = max(0.0, volume.altitude_lower_m - alt_m, alt_m - volume.altitude_upper_m)
    t = max(0.0, (volume.time_start - at).total_seconds(), (at - volume.time_end).total_seconds())
    return Outside(h, v, t)


def within(
    volumes: tuple[Volume4D, ...] | list[Volume4D],
    lon: float,
    lat: float,
    alt_m: float,
    at: datetime,
    *,
    tolerance_m: float = 0.0,
    tolerance_s: float = 0.0,
) -> bool:
    """Whether the point is inside one of `volumes`, each widened by the tolerances
    (metres horizontally and vertically, seconds in time)."""
    for vol in volumes:
        o = outside(vol, lon, lat, alt_m, at)
        if o.horizontal_m <= tolerance_m and o.vertical_m <= tolerance_m and o.time_s <= tolerance_s:
            return True
    return False
