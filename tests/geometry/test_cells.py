"""The space index cover: never misses a cell, and stays small."""

from __future__ import annotations

import math

import h3.api.basic_int as h3
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import Point
from shapely.geometry import Polygon as ShapelyPolygon

from deconflict.geometry.cells import INDEX_RESOLUTION, search_cells, volume_cells
from deconflict.geometry.projection import LocalProjection
from deconflict.model.volume import Circle, Polygon

GEOD = Geod(ellps="WGS84")


def cell_of(lon: float, lat: float) -> int:
    return int(h3.latlng_to_cell(lat, lon, INDEX_RESOLUTION))


centres = st.tuples(st.floats(-170.0, 170.0), st.floats(-85.0, 85.0))
sizes_m = st.floats(100.0, 150_000.0)  # circle radius
reaches_m = st.one_of(st.just(0.0), st.floats(1.0, 50_000.0))


@st.composite
def star_polygons(draw: st.DrawFn) -> tuple[Polygon, LocalProjection, ShapelyPolygon]:
    """A star-shaped (often concave) polygon, drawn in the local plane of its centre."""
    lon0, lat0 = draw(centres)
    scale = draw(st.floats(200.0, 100_000.0))
    n = draw(st.integers(3, 12))
    gaps = draw(st.lists(st.floats(0.2, 1.0), min_size=n, max_size=n))
    radii = draw(st.lists(st.floats(0.15, 1.0), min_size=n, max_size=n))
    angles = np.cumsum(gaps) / sum(gaps) * 2 * math.pi
    x = np.array(radii) * scale * np.cos(angles)
    y = np.array(radii) * scale * np.sin(angles)
    proj = LocalProjection.at(lon0, lat0)
    lon, lat = proj.inverse(x, y)
    ring = tuple(zip(lon.tolist(), lat.tolist(), strict=True))
    return Polygon(ring), proj, ShapelyPolygon(np.column_stack([x, y]))


def near_points(
    shape: ShapelyPolygon, reach_m: float, fractions: list[tuple[float, float, float]]
) -> np.ndarray:
    """Points at most `reach_m` from `shape`: boundary points moved by up to reach_m."""
    out = []
    length = shape.exterior.length
    for along, azimuth, dist in fractions:
        p = shape.exterior.interpolate(along * length)
        d = dist * reach_m
        out.append((p.x + d * math.cos(azimuth * 2 * math.pi), p.y + d * math.sin(azimuth * 2 * math.pi)))
    return np.array(out)


def inside_points(shape: ShapelyPolygon, fractions: list[tuple[float, float, float]]) -> np.ndarray:
    minx, miny, maxx, maxy = shape.bounds
    pts = [(minx + fx * (maxx - minx), miny + fy * (maxy - miny)) for fx, fy, _ in fractions]
    keep = [p for p in pts if shape.contains(Point(p))]
    # the boundary itself belongs to the outline too
    keep += [(q.x, q.y) for q in (shape.exterior.interpolate(f, normalized=True) for f, _, _ in fractions)]
    return np.array(keep)


# (along the boundary, azimuth, fraction of the reach): the fraction is mostly at or
# next to 1, where a cover that is a little too small would show
fractions = st.one_of(st.just(1.0), st.floats(0.995, 1.0), st.floats(0.0, 1.0))
triples = st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0), fractions), min_size=40, max_size=40)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(star_polygons(), reaches_m, triples)
def test_polygon_search_cells_hold_every_point_within_reach(
    poly: tuple[Polygon, LocalProjection, ShapelyPolygon],
    reach_m: float,
    fr: list[tuple[float, float, float]],
) -> None:
    outline, proj, shape = poly
    cells = search_cells(outline, reach_m)
    pts = near_points(shape, reach_m, fr)
    lon, lat = proj.inverse(pts[:, 0], pts[:, 1])
    missing = [(o, a) for o, a in zip(lon, lat, strict=True) if cell_of(o, a) not in cells]
    assert missing == []


@SETTINGS
@given(star_polygons(), triples)
def test_polygon_volume_cells_hold_every_point_inside(
    poly: tuple[Polygon, LocalProjection, ShapelyPolygon], fr: list[tuple[float, float, float]]
) -> None:
    outline, proj, shape = poly
    cells = volume_cells(outline)
    pts = inside_points(shape, fr)
    lon, lat = proj.inverse(pts[:, 0], pts[:, 1])
    missing = [(o, a) for o, a in zip(lon, lat, strict=True) if cell_of(o, a) not in cells]
    assert missing == []


@SETTINGS
@given(centres, sizes_m, reaches_m, triples)
def test_circle_search_cells_hold_every_point_within_reach(
    centre: tuple[float, float],
    radius_m: float,
    reach_m: float,
    fr: list[tuple[float, float, float]],
) -> None:
    lon0, lat0 = centre
    circle = Circle(lon0, lat0, radius_m)
    cells = search_cells(circle, reach_m)
    inside = volume_cells(circle)
    proj = LocalProjection.at(lon0, lat0)
    for _, azimuth, dist in fr:
        # in the local plane ...
        d = dist * (radius_m + reach_m)
        a = azimuth * 2 * math.pi
        lon, lat = proj.inverse(d * math.cos(a), d * math.sin(a))
        assert cell_of(float(lon), float(lat)) in cells
        # ... and on the ellipsoid (geodesic distance from the centre)
        glon, glat, _ = GEOD.fwd(lon0, lat0, azimuth * 360.0, d)
        assert cell_of(glon, glat) in cells
        glon, glat, _ = GEOD.fwd(lon0, lat0, azimuth * 360.0, dist * radius_m)
        assert cell_of(glon, glat) in inside


def test_every_cell_is_a_signed_64_bit_int_at_the_index_resolution() -> None:
    cells = search_cells(Circle(13.4, 52.5, 30_000.0), 10_000.0)
    assert cells
    assert all(isinstance(c, int) and 0 < c < 2**63 for c in cells)
    assert {h3.get_resolution(c) for c in cells} == {INDEX_RESOLUTION}


def test_a_200_m_circle_has_few_cells() -> None:
    for lon, lat in [(13.4, 52.5), (35.9, 35.4), (-70.0, -84.9), (0.0, 0.0)]:
        assert 1 <= len(volume_cells(Circle(lon, lat, 200.0))) <= 3


def test_a_50_km_polygon_has_tens_of_cells_not_thousands() -> None:
    proj = LocalProjection.at(36.0, 35.0)
    lon, lat = proj.inverse([-25_000, 25_000, 25_000, -25_000], [-25_000, -25_000, 25_000, 25_000])
    square = Polygon(tuple(zip(lon.tolist(), lat.tolist(), strict=True)))
    n = len(volume_cells(square))
    assert 10 <= n <= 60  # 2,500 km² over ~253 km² cells, plus the boundary's
    assert len(search_cells(square, 10_000.0)) < 120


def test_larger_reach_gives_a_superset() -> None:
    circle = Circle(2.35, 48.85, 5_000.0)
    small, large = search_cells(circle, 1_000.0), search_cells(circle, 30_000.0)
    assert volume_cells(circle) <= small < large


@pytest.mark.parametrize(
    ("circle", "reach_m"),
    [
        (Circle(179.95, 10.0, 2_000.0), 20_000.0),  # the search region crosses the antimeridian
        (Circle(-179.95, -40.0, 2_000.0), 20_000.0),
        (Circle(20.0, 85.0, 50_000.0), 600_000.0),  # the search region holds the north pole
        (Circle(-60.0, -85.0, 50_000.0), 600_000.0),
    ],
)
def test_regions_across_the_antimeridian_or_a_pole_are_still_covered(circle: Circle, reach_m: float) -> None:
    cells = search_cells(circle, reach_m)
    d = circle.radius_m + reach_m
    for az in np.linspace(0.0, 360.0, 73):
        for frac in (0.25, 0.5, 0.9, 1.0):
            lon, lat, _ = GEOD.fwd(circle.lon, circle.lat, az, frac * d)
            assert cell_of(lon, lat) in cells


def test_bad_reach_is_refused() -> None:
    with pytest.raises(ValueError, match="reach_m"):
        search_cells(Circle(0.0, 0.0, 100.0), -1.0)
    with pytest.raises(ValueError, match="reach_m"):
        search_cells(Circle(0.0, 0.0, 100.0), math.nan)


def test_reach_is_measured_in_metres() -> None:
    # a 10 km wide band of reach around a thin 100 km line-like polygon must cover
    # cells 9.9 km away from it but not cells 60 km away
    proj = LocalProjection.at(10.0, 60.0)
    lon, lat = proj.inverse([-50_000, 50_000, 50_000, -50_000], [-10, -10, 10, 10])
    thin = Polygon(tuple(zip(lon.tolist(), lat.tolist(), strict=True)))
    cells = search_cells(thin, 10_000.0)
    near = proj.inverse(0.0, 9_900.0)
    far = proj.inverse(0.0, 60_000.0)
    assert cell_of(float(near[0]), float(near[1])) in cells
    assert cell_of(float(far[0]), float(far[1])) not in cells
