"""Benchmark: the H3 space-index covers (`volume_cells`, `search_cells`) against the
implementation they replaced, measured in the same run on the same outlines.

The peer (`old_search_cells`, `old_volume_cells` below) is a verbatim copy of
`deconflict/geometry/cells.py` and `LocalProjection.inverse` as of commit 04fb164:
shapely buffer at 16 segments per quarter circle, boundary densified to 1 km, the
inverse projection's latitude by 20 fixed-point steps, a per-boundary-point
`latlng_to_cell` backstop, and two buffered pole checks per part.

The mix (what filings look like): circles of 200 m to 25 km radius, convex and
concave (star) polygons 1 to 50 km across, reaches 0, 500, 9,260 and 18,520 m,
centres at latitudes 0 to 70° (either hemisphere) and any longitude. Each case is
`--outlines` random outlines of one kind and size at one reach; every outline is
covered `--repeat` times by each implementation (interleaved, best of the repeats
kept). Prints per case the microseconds per cover, old / new, and the cell counts;
then the overall ratio (total old time / total new time over the whole mix) and the
geometric mean of the per-case ratios.

    .venv/bin/python bench/cells.py
    .venv/bin/python bench/cells.py --outlines 50 --repeat 7

With `--pair`: the two covers the service needs per outline, `volume_cells(o)` then
`search_cells(o, reach)` (two walks), against `cell_covers(o, reach)` (one walk), on
the same mix at the service's reaches 500, 9,260 and 18,520 m; checks that both give
the same sets, and prints per case and overall pair / cell_covers.

    .venv/bin/python bench/cells.py --pair
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import h3.api.basic_int as h3
import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Point
from shapely.geometry import Polygon as ShapelyPolygon
from shapely.geometry.base import BaseGeometry

from deconflict.geometry.cells import INDEX_RESOLUTION, cell_covers, search_cells, volume_cells
from deconflict.geometry.projection import WGS84_E2, LocalProjection, _gauss_sphere
from deconflict.model.volume import Circle, Outline, Polygon

# --- the peer: the implementation as of 04fb164, verbatim but for names ---------------

_E = math.sqrt(WGS84_E2)
SAFETY_MARGIN_M = 50.0
RELATIVE_MARGIN = 0.005
DENSIFY_M = 1_000.0
QUAD_SEGS = 16
_CHORD_FACTOR = 1.0 / math.cos(math.pi / (4 * QUAD_SEGS))
_MIN_EDGE_M = 5_000.0
_MAX_CELL_RADIUS_M = 15_000.0


class OldProjection(LocalProjection):
    """`LocalProjection` with the old inverse (20 fixed-point steps, always)."""

    __slots__ = ()

    def inverse(self, x: object, y: object) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[override]
        xa = np.asarray(x, dtype=np.float64)
        ya = np.asarray(y, dtype=np.float64)
        c, k, chi0_a, radius_a = _gauss_sphere(np.radians(np.float64(self.lat0)))
        chi0, radius = float(chi0_a), float(radius_a)
        rho = np.hypot(xa, ya)
        ang = rho / radius
        sin_a, cos_a = np.sin(ang), np.cos(ang)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(rho > 0, ya * sin_a * math.cos(chi0) / np.where(rho == 0, 1.0, rho), 0.0)
        chi = np.arcsin(np.clip(cos_a * math.sin(chi0) + ratio, -1.0, 1.0))
        lam = np.arctan2(xa * sin_a, rho * math.cos(chi0) * cos_a - ya * math.sin(chi0) * sin_a)
        num = (np.tan(0.5 * chi + np.pi / 4) / k) ** (1 / c)
        phi = chi
        for _ in range(20):
            s = np.sin(phi)
            phi = 2 * np.arctan(num * ((1 - _E * s) / (1 + _E * s)) ** (-0.5 * _E)) - np.pi / 2
        lon = (np.degrees(lam / c) + self.lon0 + 180.0) % 360.0 - 180.0
        return lon, np.degrees(phi)


def old_volume_cells(outline: Outline) -> frozenset[int]:
    return old_search_cells(outline, 0.0)


def old_search_cells(outline: Outline, reach_m: float) -> frozenset[int]:
    if not math.isfinite(reach_m) or reach_m < 0:
        raise ValueError(f"reach_m must be a finite number >= 0, got {reach_m!r}")
    proj, shape = _old_local_shape(outline)
    extent_m = float(shapely.hausdorff_distance(Point(0.0, 0.0), shape)) + reach_m
    widen_m = reach_m + SAFETY_MARGIN_M + RELATIVE_MARGIN * extent_m
    region = shape.buffer(widen_m * _CHORD_FACTOR, quad_segs=QUAD_SEGS)
    cells = _old_polyfill(proj, region)
    if cells is None:
        cells = _old_disk(proj, extent_m + SAFETY_MARGIN_M + RELATIVE_MARGIN * extent_m)
    return frozenset(cells)


def _old_local_shape(outline: Outline) -> tuple[OldProjection, BaseGeometry]:
    if isinstance(outline, Circle):
        proj = OldProjection(outline.lon, outline.lat)
        return proj, Point(0.0, 0.0).buffer(outline.radius_m * _CHORD_FACTOR, quad_segs=QUAD_SEGS)
    lons = np.array([p[0] for p in outline.ring], dtype=np.float64)
    lats = np.array([p[1] for p in outline.ring], dtype=np.float64)
    proj = OldProjection(float(lons.mean()), float(lats.mean()))
    x, y = proj.forward(lons, lats)
    shape: BaseGeometry = ShapelyPolygon(np.column_stack([x, y]))
    if not shape.is_valid:
        shape = shape.convex_hull
    return proj, shape


def _old_polyfill(proj: OldProjection, region: BaseGeometry) -> set[int] | None:
    cells: set[int] = set()
    parts = list(region.geoms) if isinstance(region, MultiPolygon) else [region]
    for p in parts:
        part = ShapelyPolygon(p.exterior)
        for pole_lat in (90.0, -90.0):
            px, py = proj.forward(0.0, pole_lat)
            if part.buffer(DENSIFY_M).contains(Point(float(px), float(py))):
                return None
        dense = shapely.segmentize(part, DENSIFY_M)
        xy = np.asarray(dense.exterior.coords, dtype=np.float64)[:-1]
        lon, lat = proj.inverse(xy[:, 0], xy[:, 1])
        if np.any(np.abs(np.diff(np.append(lon, lon[0]))) > 180.0):
            return None
        ring = list(zip(lat.tolist(), lon.tolist(), strict=True))
        cells.update(h3.h3shape_to_cells_experimental(h3.LatLngPoly(ring), INDEX_RESOLUTION, "overlap"))
        cells.update(h3.latlng_to_cell(a, o, INDEX_RESOLUTION) for a, o in ring)
    return cells


def _old_disk(proj: LocalProjection, distance_m: float) -> set[int]:
    spacing_m = math.sqrt(3) * _MIN_EDGE_M
    k = math.ceil((distance_m + _MAX_CELL_RADIUS_M) / (spacing_m * math.sqrt(3) / 2)) + 1
    origin = h3.latlng_to_cell(proj.lat0, proj.lon0, INDEX_RESOLUTION)
    return set(h3.grid_disk(origin, k))


# --- the mix ------------------------------------------------------------------------------

REACHES_M = (0.0, 500.0, 9_260.0, 18_520.0)
CIRCLE_RADII_M = (200.0, 2_000.0, 10_000.0, 25_000.0)
POLYGON_ACROSS_M = (1_000.0, 10_000.0, 50_000.0)


def _centre(rng: np.random.Generator) -> tuple[float, float]:
    lat = float(rng.uniform(0.0, 70.0)) * (1 if rng.random() < 0.5 else -1)
    return float(rng.uniform(-170.0, 170.0)), lat


def random_circle(rng: np.random.Generator, radius_m: float) -> Outline:
    lon, lat = _centre(rng)
    return Circle(lon, lat, radius_m)


def random_polygon(rng: np.random.Generator, across_m: float, concave: bool) -> Outline:
    """Convex: 4 to 8 vertices on a circle of diameter `across_m`, bearings jittered.
    Concave: a star of 5 to 8 points, inner vertices at 0.3 to 0.6 of the outer radius."""
    lon, lat = _centre(rng)
    n = int(rng.integers(4, 9)) if not concave else int(rng.integers(5, 9))
    if concave:
        k = 2 * n
        ang = (np.arange(k) + rng.uniform(-0.3, 0.3, k)) * 2 * math.pi / k
        r = np.where(np.arange(k) % 2 == 0, 1.0, rng.uniform(0.3, 0.6, k))
    else:
        ang = (np.arange(n) + rng.uniform(-0.35, 0.35, n)) * 2 * math.pi / n
        r = np.ones(n)
    x = r * across_m / 2 * np.cos(ang)
    y = r * across_m / 2 * np.sin(ang)
    lons, lats = LocalProjection.at(lon, lat).inverse(x, y)
    return Polygon(tuple(zip(lons.tolist(), lats.tolist(), strict=True)))


def cases(rng: np.random.Generator, n: int) -> list[tuple[str, float, list[Outline]]]:
    out: list[tuple[str, float, list[Outline]]] = []
    for reach in REACHES_M:
        for r in CIRCLE_RADII_M:
            out.append((f"circle r={r / 1000:g} km", reach, [random_circle(rng, r) for _ in range(n)]))
        for concave in (False, True):
            for a in POLYGON_ACROSS_M:
                name = f"{'concave' if concave else 'convex'} {a / 1000:g} km"
                out.append((name, reach, [random_polygon(rng, a, concave) for _ in range(n)]))
    return out


def best_time(fn: Callable[[Outline, float], frozenset[int]], outlines: list[Outline], reach: float) -> float:
    t0 = time.perf_counter()
    for o in outlines:
        fn(o, reach)
    return time.perf_counter() - t0


PAIR_REACHES_M = (500.0, 9_260.0, 18_520.0)


def pair(o: Outline, reach: float) -> tuple[frozenset[int], frozenset[int]]:
    return volume_cells(o), search_cells(o, reach)


def main_pair(mix: list[tuple[str, float, list[Outline]]], repeat: int) -> None:
    mix = [(name, reach, outlines) for name, reach, outlines in mix if reach in PAIR_REACHES_M]
    for name, reach, outlines in mix:
        for o in outlines:
            assert pair(o, reach) == cell_covers(o, reach), (name, reach, o)
    for _, reach, outlines in mix[:4]:  # warm up
        best_time(pair, outlines, reach)
        best_time(cell_covers, outlines, reach)
    print(f"{'case':<20} {'reach m':>8} {'pair µs':>8} {'one µs':>8} {'pair/one':>8}")
    tot_pair = tot_one = 0.0
    log_ratios: list[float] = []
    for name, reach, outlines in mix:
        t_pair = t_one = math.inf
        for _ in range(repeat):
            t_pair = min(t_pair, best_time(pair, outlines, reach))
            t_one = min(t_one, best_time(cell_covers, outlines, reach))
        tot_pair += t_pair
        tot_one += t_one
        log_ratios.append(math.log(t_pair / t_one))
        us = 1e6 / len(outlines)
        print(f"{name:<20} {reach:>8.0f} {t_pair * us:>8.0f} {t_one * us:>8.0f} {t_pair / t_one:>7.2f}x")
    n_cases = sum(len(outlines) for _, _, outlines in mix)
    print()
    print(
        f"overall (mix total)  pair {tot_pair / n_cases * 1e6:.0f} µs/outline,"
        f" cell_covers {tot_one / n_cases * 1e6:.0f} µs/outline, pair/cell_covers {tot_pair / tot_one:.2f}x"
    )
    print(f"geometric mean of the per-case ratios  {math.exp(sum(log_ratios) / len(log_ratios)):.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outlines", type=int, default=30, help="outlines per case")
    ap.add_argument("--repeat", type=int, default=5, help="timed passes per case (best kept)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pair", action="store_true", help="volume_cells + search_cells against cell_covers")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    mix = cases(rng, args.outlines)
    if args.pair:
        main_pair(mix, args.repeat)
        return
    for _, reach, outlines in mix[:4]:  # warm up both (imports, caches of the libraries)
        best_time(old_search_cells, outlines, reach)
        best_time(search_cells, outlines, reach)

    cols = ("old µs", "new µs", "old/new", "old cells", "new cells", "new/old")
    print(f"{'case':<20} {'reach m':>8} " + " ".join(f"{c:>{max(8, len(c))}}" for c in cols))
    tot_old = tot_new = 0.0
    cells_old = cells_new = 0
    log_ratios: list[float] = []
    worst_growth = 0.0
    for name, reach, outlines in mix:
        t_old = t_new = math.inf
        for _ in range(args.repeat):
            t_old = min(t_old, best_time(old_search_cells, outlines, reach))
            t_new = min(t_new, best_time(search_cells, outlines, reach))
        n_old = sum(len(old_search_cells(o, reach)) for o in outlines)
        n_new = sum(len(search_cells(o, reach)) for o in outlines)
        growth = max(len(search_cells(o, reach)) / len(old_search_cells(o, reach)) for o in outlines)
        worst_growth = max(worst_growth, growth)
        tot_old += t_old
        tot_new += t_new
        cells_old += n_old
        cells_new += n_new
        log_ratios.append(math.log(t_old / t_new))
        us = 1e6 / len(outlines)
        print(
            f"{name:<20} {reach:>8.0f} {t_old * us:>8.0f} {t_new * us:>8.0f} {t_old / t_new:>7.2f}x"
            f" {n_old / len(outlines):>10.1f} {n_new / len(outlines):>10.1f} {n_new / n_old:>7.3f}x"
        )
    n_cases = len(mix) * args.outlines
    print()
    print(
        f"overall (mix total)  old {tot_old / n_cases * 1e6:.0f} µs/cover,"
        f" new {tot_new / n_cases * 1e6:.0f} µs/cover, old/new {tot_old / tot_new:.2f}x"
    )
    print(f"geometric mean of the per-case ratios  {math.exp(sum(log_ratios) / len(log_ratios)):.2f}x")
    print(f"cells: total new/old {cells_new / cells_old:.3f}x, worst single outline {worst_growth:.3f}x")


if __name__ == "__main__":
    main()
