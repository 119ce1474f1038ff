"""How far a point lies outside a 4D volume, against pyproj's geodesic distances."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pyproj import Geod

from deconflict.geometry.inside import outside, within
from deconflict.model.volume import Circle, Polygon, Volume4D

T = datetime(2030, 6, 1, 12, tzinfo=UTC)
GEOD = Geod(ellps="WGS84")


def vol(outline: Circle | Polygon, lo: float = 0.0, hi: float = 120.0) -> Volume4D:
    return Volume4D(outline, lo, hi, T, T + timedelta(hours=1))


@pytest.mark.parametrize("dist_m", [0.0, 500.0, 999.0, 1001.0, 1500.0, 20_000.0])
@pytest.mark.parametrize("az", [0.0, 45.0, 200.0])
def test_circle_distance_matches_the_geodesic(dist_m: float, az: float) -> None:
    lon, lat, _ = GEOD.fwd(35.0, 33.0, az, dist_m)
    o = outside(vol(Circle(35.0, 33.0, 1000.0)), lon, lat, 60.0, T)
    assert o.horizontal_m == pytest.approx(max(0.0, dist_m - 1000.0), abs=1e-3 * dist_m + 0.01)
    assert o.vertical_m == 0 and o.time_s == 0


def test_polygon_vertical_and_time() -> None:
    square = Polygon(((35.0, 33.0), (35.01, 33.0), (35.01, 33.01), (35.0, 33.01)))
    v = vol(square, 100.0, 200.0)
    assert outside(v, 35.005, 33.005, 150.0, T).horizontal_m == 0.0
    lon, lat, _ = GEOD.fwd(35.01, 33.005, 90.0, 300.0)
    assert outside(v, lon, lat, 150.0, T).horizontal_m == pytest.approx(300.0, rel=2e-3)
    o = outside(v, 35.005, 33.005, 80.0, T + timedelta(hours=1, seconds=40))
    assert (o.vertical_m, o.time_s) == (20.0, 40.0)
    assert not within([v], 35.005, 33.005, 80.0, T, tolerance_m=19.9)
    assert within([v], 35.005, 33.005, 80.0, T, tolerance_m=20.0)
    assert within([v], 35.005, 33.005, 150.0, T - timedelta(seconds=30), tolerance_s=30.0)
    assert not within([v], 35.005, 33.005, 150.0, T - timedelta(seconds=31), tolerance_s=30.0)
