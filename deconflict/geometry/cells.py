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
decides most tests (within the widened distance plus the smallest res-5
centre-to-edge distance: in; farther than that plus the largest res-5
centre-to-vertex distance: out); only the rest fetch their boundary.

`cell_covers` gives the own cover (reach 0) and a search cover from one walk: the
search walk tests every cell the own walk tests, so each cell is measured once and
compared with both widened distances; each cover is exactly what its own walk
gives (`volume_cells`, `search_cells` are the same walk with one distance).
Cell ids are Python ints (`h3.api.basic_int`) below 2**63, so they fit a signed
64-bit SQL column. Pure; no I/O, no caches.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import chain

import h3.api.basic_int as h3
import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import Polygon as ShapelyPolygon
from shapely.geometry.base import BaseGeometry

from deconflict.geometry.projection import LocalProjection
from deconflict.model.volume import Circle, Outline, Polygon

__all__ = ["INDEX_RESOLUTION", "cell_covers", "search_cells", "volume_cells"]

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
#: Lower bound (m) on the radius of the disc around a res-5 cell's centre that the
#: cell holds: the smallest centre-to-edge distance (to the edges' great circles)
#: over all 2,016,842 res-5 cells is 5,414 m on H3's sphere (cell 854c0013fffffff;
#: measured once over every cell, the tests re-check a sample), rounded down by ~8%
#: for the plane, the ellipsoid and edges drawn as chords. A cell whose centre is
#: within the widened distance plus this is in the cover without its boundary.
CELL_INNER_RADIUS_M = 5_000.0
#: Rough distance (m) per ring of cells, to guess how many rings to test at once
#: (a guess only: the ring loop goes on while the outermost ring is in the cover).
_RING_STEP_M = 12_000.0

_F64 = NDArray[np.float64]
#: Distances (m) from plane points (x, y) to the region's core.
_CentreDistance = Callable[[_F64, _F64], _F64]
#: Distances (m) from the region's core to each cell boundary, given as plane
#: vertices (x, y) flat, cell i's from starts[i] to the next start.
_BoundaryDistance = Callable[[_F64, _F64, NDArray[np.intp]], _F64]


def volume_cells(outline: Outline) -> frozenset[int]:
    """Every cell at INDEX_RESOLUTION that `outline` overlaps (conservative)."""
    return frozenset(_covers(outline, (0.0,))[0])


def search_cells(outline: Outline, reach_m: float) -> frozenset[int]:
    """Every cell at INDEX_RESOLUTION that a point within `reach_m` metres of
    `outline` (inside it included) lies in (conservative)."""
    return frozenset(_covers(outline, (reach_m,))[0])


def cell_covers(outline: Outline, reach_m: float) -> tuple[frozenset[int], frozenset[int]]:
    """`(volume_cells(outline), search_cells(outline, reach_m))`, the same two sets,
    from one ring walk: each cell is measured once and kept by either threshold."""
    own, search = _covers(outline, (0.0, reach_m))
    return frozenset(own), frozenset(search)


def _covers(outline: Outline, reaches_m: tuple[float, ...]) -> list[set[int]]:
    """The cover of `outline` for each reach, from one walk."""
    for reach_m in reaches_m:
        if not math.isfinite(reach_m) or reach_m < 0:
            raise ValueError(f"reach_m must be a finite number >= 0, got {reach_m!r}")
    if isinstance(outline, Circle):
        return _circle_covers(outline, reaches_m)
    if isinstance(outline, Polygon):
        return _polygon_covers(outline, reaches_m)
    raise TypeError(f"not an outline: {type(outline).__name__}")


def _widening_m(reach_m: float, extent_m: float) -> float:
    return reach_m + SAFETY_MARGIN_M + RELATIVE_MARGIN * extent_m


def _circle_covers(circle: Circle, reaches_m: tuple[float, ...]) -> list[set[int]]:
    proj = LocalProjection.at(circle.lon, circle.lat)
    walks = []
    for reach_m in reaches_m:
        within_m = circle.radius_m + _widening_m(reach_m, circle.radius_m + reach_m)
        walks.append((within_m, within_m))

    def centre_distance(x: _F64, y: _F64) -> _F64:
        return np.hypot(x, y)

    seed = h3.latlng_to_cell(circle.lat, circle.lon, INDEX_RESOLUTION)
    return _ring_walk(proj, seed, walks, centre_distance, _origin_to_rings_m)


def _polygon_covers(outline: Polygon, reaches_m: tuple[float, ...]) -> list[set[int]]:
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
    radius_m = float(np.hypot(x, y).max())
    # seed: a cell that overlaps the outline, as near its middle as can be had cheaply:
    # the centre's, when the centre is inside; else the cell of the vertex nearest it.
    # (From a corner, a large square's walk tests four times the cells: 20 degrees a
    # side, 152,000 cells, and a disk that far out meets a pentagon, where H3's
    # grid_disk is slow.)
    if shape.contains(shapely.points(0.0, 0.0)):
        seed = h3.latlng_to_cell(proj.lat0, proj.lon0, INDEX_RESOLUTION)
        span_m = radius_m
    else:
        i = int(np.argmin(np.hypot(x, y)))
        seed = h3.latlng_to_cell(float(lats[i]), float(lons[i]), INDEX_RESOLUTION)
        span_m = float(np.hypot(x - x[i], y - y[i]).max())
    walks = []
    for reach_m in reaches_m:
        within_m = _widening_m(reach_m, radius_m + reach_m)
        walks.append((span_m + within_m, within_m))

    def centre_distance(cx: _F64, cy: _F64) -> _F64:
        return np.asarray(shapely.distance(shape, shapely.points(cx, cy)), dtype=np.float64)

    def boundary_distance(x: _F64, y: _F64, starts: NDArray[np.intp]) -> _F64:
        owner = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(x))))
        cells = shapely.polygons(shapely.linearrings(x, y, indices=owner))
        return np.asarray(shapely.distance(shape, cells), dtype=np.float64)

    return _ring_walk(proj, seed, walks, centre_distance, boundary_distance)


def _ring_walk(
    proj: LocalProjection,
    seed: int,
    walks: list[tuple[float, float]],
    centre_distance: _CentreDistance,
    boundary_distance: _BoundaryDistance,
) -> list[set[int]]:
    """For each walk (far_m, within_m): the cells around `seed` whose boundary is
    within `within_m` of the region's core, given that none lies farther than about
    `far_m` from the seed (a guess: see the module docstring for why walking on
    while the outer ring is in the cover is enough).

    All walks share one pass over the rings: each cell's centre (and boundary, when
    a walk needs it) is measured once and compared with every `within_m`. Each
    walk's result is what it would be alone: it tests the rings up to its own first
    ring past its guess that holds none of its cells, and keeps nothing beyond."""
    starts = [max(1, math.ceil((far_m + CELL_RADIUS_M) / _RING_STEP_M)) for far_m, _ in walks]
    within = np.array([w for _, w in walks], dtype=np.float64)[:, None]
    first, k = min(starts), max(starts)
    # the rings below `first` are in every walk; then ring by ring up to k
    inner = h3.grid_disk(seed, first - 1)
    seen = set(inner)
    rings: list[list[int]] = []
    for r in range(first, k + 1):
        ring = [c for c in h3.grid_ring(seed, r) if c not in seen]
        seen.update(ring)
        rings.append(ring)
    cells = [c for c in inner if c != seed]
    n_inner = len(cells)
    for ring in rings:
        cells += ring
    kept = _test(proj, cells, within, centre_distance, boundary_distance)
    # kept_rings[r - first]: which walks keep which cells of ring r
    kept_rings = []
    at = n_inner
    for ring in rings:
        kept_rings.append(kept[:, at : at + len(ring)])
        at += len(ring)
    covers = []
    for j, start in enumerate(starts):
        cover = {seed}
        cover.update(c for c, keep in zip(cells[:n_inner], kept[j, :n_inner].tolist(), strict=True) if keep)
        r = first
        while True:
            if r - first == len(rings):  # the next ring, tested for every walk at once
                k += 1
                ring = [c for c in h3.grid_ring(seed, k) if c not in seen]
                seen.update(ring)
                rings.append(ring)
                kept_rings.append(_test(proj, ring, within, centre_distance, boundary_distance))
            ring, keep_ring = rings[r - first], kept_rings[r - first][j].tolist()
            hit = [c for c, keep in zip(ring, keep_ring, strict=True) if keep]
            cover.update(hit)
            if r >= start and not hit:
                break
            r += 1
        covers.append(cover)
    return covers


def _test(
    proj: LocalProjection,
    cells: list[int],
    within: _F64,
    centre_distance: _CentreDistance,
    boundary_distance: _BoundaryDistance,
) -> NDArray[np.bool_]:
    """Which of `cells` each walk keeps, (walks, cells): those within the walk's
    `within` (a column) of the core. A cell's centre decides where it can (within
    `within` plus CELL_INNER_RADIUS_M: in; farther than `within` plus CELL_RADIUS_M:
    out); the boundaries of the cells some walk is unsure of are fetched and measured
    once, for all walks."""
    if not cells:
        return np.zeros((len(within), 0), dtype=np.bool_)
    centres = np.fromiter(chain.from_iterable(map(h3.cell_to_latlng, cells)), np.float64, 2 * len(cells))
    cx, cy = proj.forward(centres[1::2], centres[0::2])
    d = centre_distance(cx, cy)
    kept = d <= within + CELL_INNER_RADIUS_M
    unsure = ~kept & (d <= within + CELL_RADIUS_M)
    need = np.flatnonzero(unsure.any(axis=0))
    if len(need):
        bounds = [h3.cell_to_boundary(cells[j]) for j in need.tolist()]
        sizes = list(map(len, bounds))
        starts = np.zeros(len(bounds), dtype=np.intp)
        np.cumsum(sizes[:-1], out=starts[1:])
        latlng = np.fromiter(chain.from_iterable(chain.from_iterable(bounds)), np.float64, 2 * sum(sizes))
        bx, by = proj.forward(latlng[1::2], latlng[0::2])
        near = boundary_distance(bx, by, starts) <= within
        kept[:, need] |= unsure[:, need] & near
    return kept


def _origin_to_rings_m(x: _F64, y: _F64, starts: NDArray[np.intp]) -> _F64:
    """Distance (m) from the origin to each closed ring of plane vertices (x, y),
    ring i from starts[i] to the next start: the nearest point of its edges, or 0
    where the origin is inside (convex rings)."""
    n = len(x)
    nxt = np.arange(1, n + 1)
    nxt[np.append(starts[1:], n) - 1] = starts  # each ring's last vertex joins its first
    qx, qy = x[nxt], y[nxt]
    dx, dy = qx - x, qy - y
    dd = dx * dx + dy * dy
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(dd > 0, -(x * dx + y * dy) / np.where(dd > 0, dd, 1.0), 0.0)
    t = np.clip(t, 0.0, 1.0)
    dist = np.minimum.reduceat(np.hypot(x + t * dx, y + t * dy), starts)
    cross = x * qy - y * qx
    inside = np.logical_and.reduceat(cross >= 0, starts) | np.logical_and.reduceat(cross <= 0, starts)
    return np.where(inside, 0.0, dist)
