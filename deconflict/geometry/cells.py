"""Space indexing: which integer H3 cells an outline (or its surroundings) touches.

The store indexes every volume under the cells returned by `volume_cells`, and a
search for neighbours asks for the cells of `search_cells(outline, reach_m)`.
Both covers are conservative: they never miss a cell the region overlaps, and may
hold a few extra (the index is a pre-filter; exact geometry is checked later).

How: the outline is drawn in a `LocalProjection` centred on it (metres). A cell is
in the cover when its boundary (H3's vertices, projected into the same plane)
comes within `reach_m` plus a margin of the outline there: a distance between two
plane polygons, or between a point and a polygon for a circle. The margin absorbs
the projection's distance error (`RELATIVE_MARGIN` of the extent) and the few
centimetres by which a cell's great-circle edge bows in the plane
(`SAFETY_MARGIN_M`, generous). The plane is azimuthal, so regions across the
antimeridian or around a pole need no special case.

Which cells are tested: the cells within k rings of a seed cell that overlaps the
region, for an estimated k, then ring k+1, k+2, ... while the outermost ring still
holds a cell of the cover. That stops at the right place whatever the estimate:
the cells that overlap a connected region are connected (three hexagons meet at a
vertex, and each two of them share an edge), so a cover cell k+1 rings out has a
chain of cover cells back to the seed that passes through ring k. A cell's centre
decides most tests (within the widened distance: in; farther than that plus the
largest res-5 centre-to-vertex distance: out); only the rest fetch their boundary.
Cell ids are Python ints (`h3.api.basic_int`) below 2**63, so they fit a signed
64-bit SQL column. Pure; no I/O, no caches.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import h3.api.basic_int as h3
import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import Polygon as ShapelyPolygon
from shapely.geometry.base import BaseGeometry

from deconflict.geometry.projection import LocalProjection
from deconflict.model.volume import Circle, Outline, Polygon

__all__ = ["INDEX_RESOLUTION", "search_cells", "volume_cells"]

#: H3 resolution of the space index. Resolution 5 cells have ~9.9 km edges and
#: ~253 km² area. Volumes range from 200 m circles (1 to 3 cells) to ~150 km
#: polygons capped at 20,000 km² (~80 cells, ~150 with a search buffer), so a
#: volume never needs more than a few hundred index rows, while a cell is still
#: small enough that a query's candidates are mostly real neighbours. Resolution
#: 4 would make small volumes share cells with seven times as many others;
#: resolution 6 would make the largest volumes write ~600 rows each.
INDEX_RESOLUTION = 5

#: Fixed widening (m): a cell's edges are great-circle arcs, drawn as straight
#: lines between its projected vertices; they bow by centimetres at most here.
SAFETY_MARGIN_M = 50.0
#: Widening relative to the region's extent from its centre: the local
#: projection's distances are within 0.5% of the geodesic (projection.py).
RELATIVE_MARGIN = 0.005
#: Upper bound (m) on the distance from a res-5 cell's centre to any point of it:
#: the largest centre-to-vertex great-circle distance over all 2,016,842 res-5
#: cells is 10,837 m on H3's sphere (measured once over every cell; the tests
#: re-check a sample); rounded up by ~10% for the plane and the ellipsoid.
CELL_RADIUS_M = 12_000.0
#: Rough distance (m) per ring of cells, to guess how many rings to test at once
#: (a guess only: the ring loop goes on while the outermost ring is in the cover).
_RING_STEP_M = 12_000.0
#: Most vertices in a res-5 cell boundary (hexagons crossing an icosahedron edge
#: carry distortion vertices).
_MAX_BOUNDARY_VERTICES = 10

_F64 = NDArray[np.float64]
#: Distances (m) from plane points (x, y) to the region's core.
_CentreDistance = Callable[[_F64, _F64], _F64]
#: Whether each ring of plane vertices (n, V, 2) comes within the widened distance.
_BoundaryWithin = Callable[[_F64], NDArray[np.bool_]]


def volume_cells(outline: Outline) -> frozenset[int]:
    """Every cell at INDEX_RESOLUTION that `outline` overlaps (conservative)."""
    return search_cells(outline, 0.0)


def search_cells(outline: Outline, reach_m: float) -> frozenset[int]:
    """Every cell at INDEX_RESOLUTION that a point within `reach_m` metres of
    `outline` (inside it included) lies in (conservative)."""
    if not math.isfinite(reach_m) or reach_m < 0:
        raise ValueError(f"reach_m must be a finite number >= 0, got {reach_m!r}")
    if isinstance(outline, Circle):
        return frozenset(_circle_cover(outline, reach_m))
    if isinstance(outline, Polygon):
        return frozenset(_polygon_cover(outline, reach_m))
    raise TypeError(f"not an outline: {type(outline).__name__}")


def _widening_m(reach_m: float, extent_m: float) -> float:
    return reach_m + SAFETY_MARGIN_M + RELATIVE_MARGIN * extent_m


def _circle_cover(circle: Circle, reach_m: float) -> set[int]:
    proj = LocalProjection.at(circle.lon, circle.lat)
    extent_m = circle.radius_m + reach_m
    within_m = circle.radius_m + _widening_m(reach_m, extent_m)

    def centre_distance(x: _F64, y: _F64) -> _F64:
        return np.hypot(x, y)

    def boundary_within(xy: _F64) -> NDArray[np.bool_]:
        return _origin_to_rings_m(xy) <= within_m

    seed = h3.latlng_to_cell(circle.lat, circle.lon, INDEX_RESOLUTION)
    return _ring_walk(proj, seed, within_m, within_m, centre_distance, boundary_within)


def _polygon_cover(outline: Polygon, reach_m: float) -> set[int]:
    ring = np.asarray(outline.ring, dtype=np.float64)
    lons, lats = ring[:, 0], ring[:, 1]
    # volumes never cross the antimeridian, so the mean longitude is their middle
    proj = LocalProjection.at(float(lons.mean()), float(lats.mean()))
    x, y = proj.forward(lons, lats)
    shape: BaseGeometry = ShapelyPolygon(np.column_stack([x, y]))
    if not shape.is_valid:
        # a bad ring is refused upstream; if one gets here, cover its hull (a superset)
        shape = shape.convex_hull
    shapely.prepare(shape)
    extent_m = float(np.hypot(x, y).max()) + reach_m
    within_m = _widening_m(reach_m, extent_m)
    # seed: the cell of the vertex nearest the centre (that cell overlaps the outline)
    i = int(np.argmin(np.hypot(x, y)))
    seed = h3.latlng_to_cell(float(lats[i]), float(lons[i]), INDEX_RESOLUTION)
    far_m = float(np.hypot(x - x[i], y - y[i]).max()) + within_m

    def centre_distance(cx: _F64, cy: _F64) -> _F64:
        return np.asarray(shapely.distance(shape, shapely.points(cx, cy)), dtype=np.float64)

    def boundary_within(xy: _F64) -> NDArray[np.bool_]:
        return np.asarray(shapely.dwithin(shape, shapely.polygons(xy), within_m), dtype=np.bool_)

    return _ring_walk(proj, seed, far_m, within_m, centre_distance, boundary_within)


def _ring_walk(
    proj: LocalProjection,
    seed: int,
    far_m: float,
    within_m: float,
    centre_distance: _CentreDistance,
    boundary_within: _BoundaryWithin,
) -> set[int]:
    """The cells around `seed` whose boundary is within `within_m` of the region's
    core (as `boundary_within` tells from their (n, V, 2) plane vertices), given
    that none lies farther than about `far_m` from the seed (a guess: see the module
    docstring for why walking on while the outer ring is in the cover is enough)."""
    k = max(1, math.ceil((far_m + CELL_RADIUS_M) / _RING_STEP_M))
    cover = {seed}
    seen = set(h3.grid_disk(seed, k - 1))
    batch = [c for c in seen if c != seed]
    outer = [c for c in h3.grid_disk(seed, k) if c not in seen]
    while True:
        cells = batch + outer
        seen.update(outer)
        kept = _test(proj, cells, within_m, centre_distance, boundary_within)
        cover.update(kept)
        if not kept.intersection(outer):
            return cover
        k += 1
        batch = []
        outer = [c for c in h3.grid_disk(seed, k) if c not in seen]


def _test(
    proj: LocalProjection,
    cells: list[int],
    within_m: float,
    centre_distance: _CentreDistance,
    boundary_within: _BoundaryWithin,
) -> set[int]:
    """The `cells` within `within_m` of the core: by centre where that decides, else
    by boundary."""
    if not cells:
        return set()
    centres = np.array([h3.cell_to_latlng(c) for c in cells], dtype=np.float64)
    cx, cy = proj.forward(centres[:, 1], centres[:, 0])
    d = centre_distance(cx, cy)
    inside = d <= within_m
    unsure = ~inside & (d <= within_m + CELL_RADIUS_M)
    kept = {c for c, keep in zip(cells, inside.tolist(), strict=True) if keep}
    if unsure.any():
        idx = np.flatnonzero(unsure).tolist()
        rings = []
        for j in idx:
            b = h3.cell_to_boundary(cells[j])
            rings.append(b + (b[0],) * (_MAX_BOUNDARY_VERTICES - len(b)))
        latlng = np.array(rings, dtype=np.float64)
        bx, by = proj.forward(latlng[..., 1], latlng[..., 0])
        near = boundary_within(np.stack([bx, by], axis=-1))
        kept.update(cells[j] for j, keep in zip(idx, near.tolist(), strict=True) if keep)
    return kept


def _origin_to_rings_m(xy: _F64) -> _F64:
    """Distance (m) from the origin to each closed ring of `xy` (n, V, 2): the
    nearest point of its edges, or 0 where the origin is inside (convex rings)."""
    p = xy
    q = np.roll(xy, -1, axis=1)
    d = q - p
    dd = np.einsum("nvk,nvk->nv", d, d)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(dd > 0, -np.einsum("nvk,nvk->nv", p, d) / np.where(dd > 0, dd, 1.0), 0.0)
    t = np.clip(t, 0.0, 1.0)
    nearest = p + t[..., None] * d
    dist = np.hypot(nearest[..., 0], nearest[..., 1]).min(axis=1)
    cross = p[..., 0] * q[..., 1] - p[..., 1] * q[..., 0]
    inside = np.all(cross >= 0, axis=1) | np.all(cross <= 0, axis=1)
    return np.where(inside, 0.0, dist)
