"""Space indexing: which integer H3 cells an outline (or its surroundings) touches.

The store indexes every volume under the cells returned by `volume_cells`, and a
search for neighbours asks for the cells of `search_cells(outline, reach_m)`.
Both covers are conservative: they never miss a cell the region overlaps, and may
hold a few extra (the index is a pre-filter; exact geometry is checked later).

How: the outline is drawn in a `LocalProjection` centred on it (metres), widened
there by `reach_m` plus a safety margin, its boundary densified to short segments,
unprojected to lon/lat and handed to H3 (`contain='overlap'`). The margin absorbs
the difference between a straight edge in the local plane, a great-circle edge and
H3's lon/lat-planar edges, and the projection's own distance error. Where the
widened region reaches a pole or the antimeridian (lon/lat polygons break there)
a ring of cells around the centre (`grid_disk`) is used instead: coarser, but
still conservative. Cell ids are Python ints (`h3.api.basic_int`) below 2**63, so
they fit a signed 64-bit SQL column. Pure; no I/O.
"""

from __future__ import annotations

import math

import h3.api.basic_int as h3
import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Point
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

#: Fixed widening (m): H3 cell edges are great-circle arcs but H3 tests overlap
#: with straight lon/lat edges; at ±85° and 10 km edges they differ by ~25 m.
SAFETY_MARGIN_M = 50.0
#: Widening relative to the region's extent from its centre: the local
#: projection's distances are within 0.5% of the geodesic (projection.py), and
#: long edges read as great circles or as local-plane lines differ by less.
RELATIVE_MARGIN = 0.005
#: Longest boundary segment before unprojection (m): short segments are the same
#: line whether read as straight in the plane, on the sphere or in lon/lat.
DENSIFY_M = 1_000.0
#: Segments per quarter circle when buffering; the buffer distance is enlarged by
#: 1/cos(pi/(4*QUAD_SEGS)) so the chords circumscribe the true circle.
QUAD_SEGS = 16
_CHORD_FACTOR = 1.0 / math.cos(math.pi / (4 * QUAD_SEGS))
#: Bounds used by the grid-disk fallback: the shortest res-5 cell edge is
#: ~6.9 km and the largest circumradius ~10.9 km; these are rounded outward.
_MIN_EDGE_M = 5_000.0
_MAX_CELL_RADIUS_M = 15_000.0


def volume_cells(outline: Outline) -> frozenset[int]:
    """Every cell at INDEX_RESOLUTION that `outline` overlaps (conservative)."""
    return search_cells(outline, 0.0)


def search_cells(outline: Outline, reach_m: float) -> frozenset[int]:
    """Every cell at INDEX_RESOLUTION that a point within `reach_m` metres of
    `outline` (inside it included) lies in (conservative)."""
    if not math.isfinite(reach_m) or reach_m < 0:
        raise ValueError(f"reach_m must be a finite number >= 0, got {reach_m!r}")
    proj, shape = _local_shape(outline)
    extent_m = _extent_m(shape) + reach_m
    widen_m = reach_m + SAFETY_MARGIN_M + RELATIVE_MARGIN * extent_m
    region = shape.buffer(widen_m * _CHORD_FACTOR, quad_segs=QUAD_SEGS)
    cells = _polyfill(proj, region)
    if cells is None:
        cells = _disk(proj, extent_m + SAFETY_MARGIN_M + RELATIVE_MARGIN * extent_m)
    return frozenset(cells)


def _local_shape(outline: Outline) -> tuple[LocalProjection, BaseGeometry]:
    """The outline in a local projection centred on it (metres)."""
    if isinstance(outline, Circle):
        proj = LocalProjection.at(outline.lon, outline.lat)
        return proj, Point(0.0, 0.0).buffer(outline.radius_m * _CHORD_FACTOR, quad_segs=QUAD_SEGS)
    if not isinstance(outline, Polygon):
        raise TypeError(f"not an outline: {type(outline).__name__}")
    lons = np.array([p[0] for p in outline.ring], dtype=np.float64)
    lats = np.array([p[1] for p in outline.ring], dtype=np.float64)
    # volumes never cross the antimeridian, so the mean longitude is their middle
    proj = LocalProjection.at(float(lons.mean()), float(lats.mean()))
    x, y = proj.forward(lons, lats)
    shape: BaseGeometry = ShapelyPolygon(np.column_stack([x, y]))
    if not shape.is_valid:
        # a bad ring is refused upstream; if one gets here, cover its hull (a superset)
        shape = shape.convex_hull
    return proj, shape


def _extent_m(shape: BaseGeometry) -> float:
    """The largest distance from the projection centre to the shape."""
    return float(shapely.hausdorff_distance(Point(0.0, 0.0), shape))


def _exteriors(region: BaseGeometry) -> list[ShapelyPolygon]:
    """The region's parts without holes (filling a hole only adds cells)."""
    if isinstance(region, ShapelyPolygon):
        parts = [region]
    elif isinstance(region, MultiPolygon):
        parts = list(region.geoms)
    else:
        raise TypeError(f"unexpected region {region.geom_type}")
    return [ShapelyPolygon(p.exterior) for p in parts if not p.is_empty]


def _polyfill(proj: LocalProjection, region: BaseGeometry) -> set[int] | None:
    """H3 cover of a region given in the local plane; None where lon/lat breaks down."""
    cells: set[int] = set()
    for part in _exteriors(region):
        for pole_lat in (90.0, -90.0):
            px, py = proj.forward(0.0, pole_lat)
            if part.buffer(DENSIFY_M).contains(Point(float(px), float(py))):
                return None
        dense = shapely.segmentize(part, DENSIFY_M)
        xy = np.asarray(dense.exterior.coords, dtype=np.float64)[:-1]
        lon, lat = proj.inverse(xy[:, 0], xy[:, 1])
        if np.any(np.abs(np.diff(np.append(lon, lon[0]))) > 180.0):
            return None  # the region crosses the antimeridian
        ring = list(zip(lat.tolist(), lon.tolist(), strict=True))
        cells.update(h3.h3shape_to_cells_experimental(h3.LatLngPoly(ring), INDEX_RESOLUTION, "overlap"))
        # every boundary point's own cell: a cheap backstop for slivers at cell edges
        cells.update(h3.latlng_to_cell(a, o, INDEX_RESOLUTION) for a, o in ring)
    return cells


def _disk(proj: LocalProjection, distance_m: float) -> set[int]:
    """Every cell holding a point within `distance_m` of the projection centre.

    Hexagon ring k lies at least k * spacing * sqrt(3)/2 from the centre, with
    spacing >= sqrt(3) * the shortest edge; a point's cell centre is within the
    cell's circumradius of the point.
    """
    spacing_m = math.sqrt(3) * _MIN_EDGE_M
    k = math.ceil((distance_m + _MAX_CELL_RADIUS_M) / (spacing_m * math.sqrt(3) / 2)) + 1
    origin = h3.latlng_to_cell(proj.lat0, proj.lon0, INDEX_RESOLUTION)
    return set(h3.grid_disk(origin, k))
