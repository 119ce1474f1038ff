"""Outlines (polygons and circles) on the ground: validation, area and distance. Pure.

Distances are measured in a local plane, never in raw degrees. The plane is an
azimuthal equidistant projection of the *Gauss conformal sphere* (the sphere of the
Gaussian radius sqrt(M·N) at the centre's latitude, onto which the WGS84 ellipsoid is
mapped conformally). Unlike a plain sphere of that radius fed geodetic latitudes,
whose north-south and east-west scales differ by up to 0.34 % at the equator, this
plane has scale 1 in every direction at its centre; what is left is the azimuthal
equidistant distortion, a relative error below (ρ/R)²/6 at a distance ρ from the
centre (4·10⁻⁵ at 100 km), and third-order ellipsoid terms.

Two outlines are measured in a plane centred midway between them, so a separation
of d metres between shapes near each other is off by at most about d·(ρ/R)²/6,
ρ being half the distance between their centres: millimetres at the distances that
decide a conflict. Polygon edges are straight lines in that plane; a circle is the
set of points within `radius_m` of its centre, so the distance from a circle is the
distance from its centre minus its radius, exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

from deconflict.errors import InvalidInput
from deconflict.geometry.projection import LocalProjection, gaussian_radius_m, plane_xy
from deconflict.model.volume import Circle, Outline, Polygon

__all__ = [
    "ANTIMERIDIAN_RULE",
    "Projector",
    "area_m2",
    "horizontal_distance_m",
    "horizontal_distances_m",
    "outline_centre",
    "to_local",
    "validate_outline",
]

ANTIMERIDIAN_RULE = "volume crosses the antimeridian (±180° longitude); split it into two volumes"
POLE_RULE = "volume reaches a pole (latitude ±90°); such volumes are not supported"
#: Mean Earth radius (IUGG), for coarse bounds only.
MEAN_RADIUS_M = 6_371_008.8

_F64 = NDArray[np.float64]


class Projector(Protocol):
    def forward(self, lon: ArrayLike, lat: ArrayLike) -> tuple[_F64, _F64]: ...


# --- outlines ---------------------------------------------------------------------------


def _unit(lon: ArrayLike, lat: ArrayLike) -> _F64:
    lam = np.radians(np.asarray(lon, dtype=np.float64))
    phi = np.radians(np.asarray(lat, dtype=np.float64))
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=-1)


def _lon_lat(u: _F64) -> tuple[_F64, _F64]:
    lon = np.degrees(np.arctan2(u[..., 1], u[..., 0]))
    lat = np.degrees(np.arctan2(u[..., 2], np.hypot(u[..., 0], u[..., 1])))
    return lon, lat


def outline_centre(outline: Outline) -> tuple[float, float]:
    """A centre (lon, lat): a circle's centre, or the mean direction of a polygon's vertices."""
    if isinstance(outline, Circle):
        return outline.lon, outline.lat
    ring = np.asarray(outline.ring, dtype=np.float64)
    lon, lat = _centres(ring[:, 0], ring[:, 1], np.zeros(1, dtype=np.intp), np.zeros(1, dtype=bool))
    return float(lon[0]), float(lat[0])


def _centres(
    lon: _F64, lat: _F64, starts: NDArray[np.intp], is_point: NDArray[np.bool_]
) -> tuple[_F64, _F64]:
    """`outline_centre` of many shapes at once: shape i's vertices (a circle: its centre)
    are lon, lat from starts[i] to the next start; a circle's centre is its own, a
    polygon's the mean direction of its vertices, summed vertex after vertex."""
    mean_lon, mean_lat = _lon_lat(np.add.reduceat(_unit(lon, lat), starts, axis=0))
    return np.where(is_point, lon[starts], mean_lon), np.where(is_point, lat[starts], mean_lat)


def to_local(outline: Outline, proj: Projector) -> tuple[shapely.Geometry, float]:
    """The outline in `proj`'s plane: a Polygon and radius 0, or a circle's centre
    Point and its radius."""
    if isinstance(outline, Circle):
        x, y = proj.forward(outline.lon, outline.lat)
        return shapely.Point(float(x), float(y)), outline.radius_m
    ring = np.asarray(outline.ring, dtype=np.float64)
    x, y = proj.forward(ring[:, 0], ring[:, 1])
    return shapely.Polygon(np.column_stack([x, y])), 0.0


def _cap_area_m2(lat: float, radius_m: float) -> float:
    r = gaussian_radius_m(lat)
    return 2 * math.pi * r * r * (1 - math.cos(radius_m / r))


def area_m2(outline: Outline) -> float:
    """Area on the ground in m²: a spherical cap for a circle, the local-plane area
    for a polygon."""
    if isinstance(outline, Circle):
        return _cap_area_m2(outline.lat, outline.radius_m)
    geom, _ = to_local(outline, LocalProjection(*outline_centre(outline)))
    return float(shapely.area(geom))


def _area_rule(area: float, cap: float) -> str:
    return f"area {area / 1e6:,.1f} km² exceeds the agreement's cap of {cap / 1e6:,g} km²"


def _reach_rule(cap_m: float) -> str:
    return f"must lie within {cap_m / 1e3:,.0f} km of its centre"


def validate_outline(
    outline: Outline, *, max_area_m2: float | None, max_reach_m: float | None = None
) -> None:
    """Refuse outlines the detector cannot measure, and any larger than the caps given:
    `max_area_m2`, and `max_reach_m`, how far from its centre (`outline_centre`) it may
    reach (a circle's radius, a polygon's farthest vertex in the centre's plane). Field
    paths are relative to the GeoJSON Feature (``geometry.coordinates[0]`` for a
    polygon's ring, ``geometry.coordinates`` / ``properties.radius_m`` for a circle)."""
    if isinstance(outline, Circle):
        _validate_circle(outline, max_area_m2, max_reach_m)
    else:
        _validate_polygon(outline, max_area_m2, max_reach_m)


def _validate_circle(c: Circle, max_area_m2: float | None, max_reach_m: float | None) -> None:
    field = "geometry.coordinates"
    delta = c.radius_m / gaussian_radius_m(c.lat)  # angular radius
    if abs(c.lat) + math.degrees(delta) >= 90.0:
        raise InvalidInput.one(field, POLE_RULE)
    half_span = math.degrees(math.asin(min(1.0, math.sin(delta) / math.cos(math.radians(c.lat)))))
    if c.lon + half_span >= 180.0 or c.lon - half_span <= -180.0:
        raise InvalidInput.one(field, ANTIMERIDIAN_RULE)
    if max_area_m2 is not None:
        area = _cap_area_m2(c.lat, c.radius_m)
        if area > max_area_m2:
            raise InvalidInput.one("properties.radius_m", _area_rule(area, max_area_m2))
    if max_reach_m is not None and c.radius_m > max_reach_m:
        raise InvalidInput.one("properties.radius_m", _reach_rule(max_reach_m))


def _collinear(x: _F64, y: _F64) -> bool:
    """True when every vertex lies within 1e-9 of the ring's length of one line."""
    dx, dy = x - x[0], y - y[0]
    far = int(np.argmax(dx * dx + dy * dy))
    length = math.hypot(float(dx[far]), float(dy[far]))
    if length == 0:
        return True
    off = np.abs(dx * dy[far] - dy * dx[far]) / length
    return bool(off.max() <= 1e-9 * length)


def _validate_polygon(p: Polygon, max_area_m2: float | None, max_reach_m: float | None) -> None:
    field = "geometry.coordinates[0]"
    ring = np.asarray(p.ring, dtype=np.float64)
    lons, lats = ring[:, 0], ring[:, 1]
    jumps = np.abs(np.diff(np.append(lons, lons[0])))
    if float(lons.max() - lons.min()) > 180.0 or bool((jumps > 180.0).any()):
        raise InvalidInput.one(field, ANTIMERIDIAN_RULE)
    if bool((np.abs(lats) >= 90.0).any()):
        raise InvalidInput.one(field, POLE_RULE)
    # degenerate: all vertices on one line, judged where the user drew them (lon, lat
    # with lon scaled by cos(lat)) and in the plane
    mid = math.radians(float(lats.mean()))
    plane = LocalProjection(*outline_centre(p))
    geom, _ = to_local(p, plane)
    px, py = plane.forward(lons, lats)
    if _collinear(lons * math.cos(mid), lats) or _collinear(px, py):
        raise InvalidInput.one(field, "polygon has zero area (its vertices are collinear)")
    if not shapely.is_valid(geom):
        raise InvalidInput.one(field, "polygon is self-intersecting")
    for pole_lat in (90.0, -90.0):
        px, py = plane.forward(0.0, pole_lat)
        if shapely.dwithin(geom, shapely.Point(float(px), float(py)), 1.0):  # metres
            raise InvalidInput.one(field, POLE_RULE)
    if max_area_m2 is not None:
        area = float(shapely.area(geom))
        if area > max_area_m2:
            raise InvalidInput.one(field, _area_rule(area, max_area_m2))
    if max_reach_m is not None:
        x, y = shapely.get_coordinates(geom).T
        if float(np.hypot(x, y).max()) > max_reach_m:
            raise InvalidInput.one(field, _reach_rule(max_reach_m))


# --- distances ----------------------------------------------------------------------------


def horizontal_distances_m(a: Sequence[Outline], b: Sequence[Outline]) -> _F64:
    """For each pair (a[k], b[k]): the distance in metres between the two shapes,
    measured in a local plane centred midway between them; 0 when they touch or overlap."""
    n = len(a)
    if n != len(b):
        raise ValueError("a and b must have the same length")
    if n == 0:
        return np.zeros(0)
    shapes = list(a) + list(b)
    # every vertex (a circle: its centre) in one pass, then numpy over all of them
    lons: list[float] = []
    lats: list[float] = []
    counts: list[int] = []
    radii = np.zeros(2 * n)
    is_point = np.zeros(2 * n, dtype=bool)
    for k, s in enumerate(shapes):
        if isinstance(s, Circle):
            radii[k] = s.radius_m
            is_point[k] = True
            lons.append(s.lon)
            lats.append(s.lat)
            counts.append(1)
        else:
            for lon, lat in s.ring:
                lons.append(lon)
                lats.append(lat)
            counts.append(len(s.ring))
    lon_v = np.array(lons, dtype=np.float64)
    lat_v = np.array(lats, dtype=np.float64)
    starts = np.zeros(2 * n, dtype=np.intp)
    np.cumsum(counts[:-1], out=starts[1:])
    u = _unit(*_centres(lon_v, lat_v, starts, is_point))
    mid = u[:n] + u[n:]
    norm = np.linalg.norm(mid, axis=1)
    mid = np.where(norm[:, None] > 1e-9, mid / np.where(norm == 0, 1.0, norm)[:, None], u[:n])
    lon0, lat0 = _lon_lat(mid)
    lon0, lat0 = np.concatenate([lon0, lon0]), np.concatenate([lat0, lat0])

    idx = np.repeat(np.arange(2 * n), counts)
    x, y = plane_xy(lon_v, lat_v, lon0[idx], lat0[idx])
    xy = np.column_stack([x, y])
    point_mask = is_point[idx]
    geoms = np.empty(2 * n, dtype=object)
    if is_point.any():
        geoms[is_point] = shapely.points(xy[point_mask])
    if not is_point.all():
        ring_idx = idx[~point_mask]
        rings = shapely.linearrings(xy[~point_mask], indices=np.unique(ring_idx, return_inverse=True)[1])
        geoms[~is_point] = shapely.polygons(rings)
    dist = shapely.distance(geoms[:n], geoms[n:]) - radii[:n] - radii[n:]
    out: _F64 = np.maximum(np.asarray(dist, dtype=np.float64), 0.0)
    return out


def horizontal_distance_m(a: Outline, b: Outline) -> float:
    """The distance in metres between two outlines; 0 when they touch or overlap."""
    return float(horizontal_distances_m([a], [b])[0])
