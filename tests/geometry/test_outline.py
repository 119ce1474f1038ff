"""Outline validation, area and distances."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from pyproj import Geod

from deconflict.errors import InvalidInput
from deconflict.geometry.outline import (
    ANTIMERIDIAN_RULE,
    area_m2,
    horizontal_distance_m,
    horizontal_distances_m,
    validate_outline,
)
from deconflict.geometry.projection import LocalProjection
from deconflict.model.volume import Circle, Polygon

GEOD = Geod(ellps="WGS84")


def square(lon0: float, lat0: float, side_m: float, dx_m: float = 0.0, dy_m: float = 0.0) -> Polygon:
    """A square drawn in the local plane at (lon0, lat0), lower-left corner at (dx, dy)."""
    plane = LocalProjection(lon0, lat0)
    xs = np.array([0.0, side_m, side_m, 0.0]) + dx_m
    ys = np.array([0.0, 0.0, side_m, side_m]) + dy_m
    lon, lat = plane.inverse(xs, ys)
    return Polygon(tuple(zip(lon.tolist(), lat.tolist(), strict=True)))


def rule(exc: pytest.ExceptionInfo[InvalidInput]) -> tuple[str, str]:
    assert len(exc.value.errors) == 1
    return exc.value.errors[0].field, exc.value.errors[0].rule


# --- the plane ----------------------------------------------------------------------------


@pytest.mark.parametrize("lat0", [0.0, 35.0, 60.0, 80.0])
def test_plane_is_accurate_on_the_ellipsoid_near_its_centre(lat0: float) -> None:
    plane = LocalProjection(-70.0, lat0)
    for az in range(0, 360, 20):
        for dist in (100.0, 10_000.0, 100_000.0):
            lon, lat, _ = GEOD.fwd(-70.0, lat0, az, dist)
            x, y = plane.forward(lon, lat)
            assert math.hypot(float(x), float(y)) == pytest.approx(dist, rel=1e-5)
            # round trip
            lon2, lat2 = plane.inverse(x, y)
            assert float(lon2) == pytest.approx(lon, abs=1e-9)
            assert float(lat2) == pytest.approx(lat, abs=1e-9)


# --- validation ---------------------------------------------------------------------------


def test_bow_tie_is_self_intersecting() -> None:
    bow = Polygon(((35.0, 33.0), (35.1, 33.1), (35.1, 33.0), (35.0, 33.1)))
    with pytest.raises(InvalidInput) as exc:
        validate_outline(bow, max_area_m2=None)
    assert rule(exc) == ("geometry.coordinates[0]", "polygon is self-intersecting")


def test_a_simple_polygon_passes() -> None:
    validate_outline(square(35.0, 33.0, 5_000.0), max_area_m2=1e9)


def test_collinear_vertices_have_zero_area() -> None:
    line = Polygon(((35.0, 33.0), (35.5, 33.5), (36.0, 34.0)))
    with pytest.raises(InvalidInput) as exc:
        validate_outline(line, max_area_m2=None)
    assert rule(exc) == (
        "geometry.coordinates[0]",
        "polygon has zero area (its vertices are collinear)",
    )


def test_polygon_across_the_antimeridian_is_refused() -> None:
    across = Polygon(((179.5, 10.0), (-179.5, 10.0), (-179.5, 11.0), (179.5, 11.0)))
    with pytest.raises(InvalidInput) as exc:
        validate_outline(across, max_area_m2=None)
    assert rule(exc) == ("geometry.coordinates[0]", ANTIMERIDIAN_RULE)
    assert "split it into two volumes" in ANTIMERIDIAN_RULE


def test_polygon_spanning_more_than_180_degrees_is_refused() -> None:
    wide = Polygon(((-100.0, 10.0), (0.0, 10.0), (90.0, 10.0), (90.0, 11.0), (-100.0, 11.0)))
    with pytest.raises(InvalidInput) as exc:
        validate_outline(wide, max_area_m2=None)
    assert rule(exc)[1] == ANTIMERIDIAN_RULE


def test_polygon_up_to_the_antimeridian_is_allowed() -> None:
    validate_outline(Polygon(((179.0, 10.0), (180.0, 10.0), (180.0, 11.0))), max_area_m2=None)


def test_circle_reaching_the_antimeridian_is_refused() -> None:
    # 0.05° of longitude at the equator is about 5.57 km
    with pytest.raises(InvalidInput) as exc:
        validate_outline(Circle(179.95, 0.0, 6_000.0), max_area_m2=None)
    assert rule(exc) == ("geometry.coordinates", ANTIMERIDIAN_RULE)
    with pytest.raises(InvalidInput):
        validate_outline(Circle(-179.95, 0.0, 6_000.0), max_area_m2=None)
    validate_outline(Circle(179.95, 0.0, 5_000.0), max_area_m2=None)


def test_circle_reaching_a_pole_is_refused() -> None:
    # 0.5° of latitude near the pole is about 55.8 km
    with pytest.raises(InvalidInput) as exc:
        validate_outline(Circle(10.0, 89.5, 60_000.0), max_area_m2=None)
    field, text = rule(exc)
    assert field == "geometry.coordinates" and "pole" in text
    validate_outline(Circle(10.0, 89.5, 50_000.0), max_area_m2=None)


def test_polygon_at_or_around_a_pole_is_refused() -> None:
    with pytest.raises(InvalidInput) as exc:
        validate_outline(Polygon(((0.0, 89.0), (10.0, 90.0), (20.0, 89.0))), max_area_m2=None)
    assert "pole" in rule(exc)[1]
    # no vertex at the pole, but a straight edge (in the plane) runs over it
    over = Polygon(((-90.0, 89.0), (0.0, 88.0), (90.0, 89.0), (90.0, 89.99), (-90.0, 89.99)))
    with pytest.raises(InvalidInput) as exc:
        validate_outline(over, max_area_m2=None)
    assert "pole" in rule(exc)[1]


def test_area_over_the_cap_is_refused_with_both_numbers() -> None:
    big = square(35.0, 33.0, 200_000.0)  # 40 000 km²
    with pytest.raises(InvalidInput) as exc:
        validate_outline(big, max_area_m2=20_000e6)
    field, text = rule(exc)
    assert field == "geometry.coordinates[0]"
    # 40 000 km² drawn in one plane, measured in another: within 0.05 %
    assert re.fullmatch(r"area 39,9\d\d\.\d km² exceeds the agreement's cap of 20,000 km²", text)
    circle = Circle(35.0, 33.0, 100_000.0)  # π·10⁴ km²
    with pytest.raises(InvalidInput) as exc:
        validate_outline(circle, max_area_m2=20_000e6)
    field, text = rule(exc)
    assert field == "properties.radius_m"
    assert text.startswith("area 31,4") and text.endswith("cap of 20,000 km²")
    validate_outline(Circle(35.0, 33.0, 79_000.0), max_area_m2=20_000e6)


def test_area() -> None:
    assert area_m2(square(35.0, 33.0, 10_000.0)) == pytest.approx(1e8, rel=1e-6)
    assert area_m2(Circle(35.0, 33.0, 1_000.0)) == pytest.approx(math.pi * 1e6, rel=1e-6)


# --- distances ----------------------------------------------------------------------------


def test_polygons_sharing_an_edge_are_0_apart() -> None:
    a = square(35.0, 33.0, 1_000.0)
    b = Polygon(
        (a.ring[1], (a.ring[1][0] + 0.01, a.ring[1][1]), (a.ring[2][0] + 0.01, a.ring[2][1]), a.ring[2])
    )
    assert horizontal_distance_m(a, b) == 0.0


@pytest.mark.parametrize("lat0", [0.0, 45.0, 70.0])
def test_polygons_1_m_apart(lat0: float) -> None:
    a = square(35.0, lat0, 1_000.0)
    b = square(35.0, lat0, 1_000.0, dx_m=1_001.0)
    assert horizontal_distance_m(a, b) == pytest.approx(1.0, abs=0.01)
    c = square(35.0, lat0, 1_000.0, dy_m=-1_001.0)
    assert horizontal_distance_m(a, c) == pytest.approx(1.0, abs=0.01)


def test_circle_versus_circle_matches_the_geodesic() -> None:
    lon2, lat2, _ = GEOD.fwd(35.0, 33.0, 30.0, 5_000.0)
    a, b = Circle(35.0, 33.0, 1_000.0), Circle(lon2, lat2, 1_500.0)
    assert horizontal_distance_m(a, b) == pytest.approx(2_500.0, abs=0.01)
    assert horizontal_distance_m(a, Circle(lon2, lat2, 4_500.0)) == 0.0


def test_circle_inside_a_polygon_is_0_apart() -> None:
    poly = square(35.0, 33.0, 10_000.0)
    lon, lat = LocalProjection(35.0, 33.0).inverse(5_000.0, 5_000.0)
    assert horizontal_distance_m(poly, Circle(float(lon), float(lat), 100.0)) == 0.0
    # and a circle around the polygon
    assert horizontal_distance_m(poly, Circle(float(lon), float(lat), 50_000.0)) == 0.0


def test_circle_versus_polygon_at_a_known_distance() -> None:
    poly = square(35.0, 33.0, 10_000.0)
    # 700 m east of the east edge (x = 10 km), level with its middle
    lon, lat = LocalProjection(35.0, 33.0).inverse(10_000.0 + 700.0 + 250.0, 5_000.0)
    circle = Circle(float(lon), float(lat), 250.0)
    assert horizontal_distance_m(poly, circle) == pytest.approx(700.0, abs=0.01)
    assert horizontal_distance_m(circle, poly) == pytest.approx(700.0, abs=0.01)


def test_batch_equals_one_by_one() -> None:
    a = [square(35.0, 33.0, 1_000.0), Circle(35.0, 33.0, 10.0), Circle(10.0, 60.0, 10.0)]
    b = [Circle(35.1, 33.0, 10.0), square(35.0, 33.05, 2_000.0), square(10.1, 60.0, 300.0)]
    batch = horizontal_distances_m(a, b)
    assert batch.tolist() == [horizontal_distance_m(x, y) for x, y in zip(a, b, strict=True)]
    assert all(d > 0 for d in batch)
