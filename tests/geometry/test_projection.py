"""LocalProjection (AEQD of the Gauss conformal sphere) against pyproj's geodesic."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyproj import Geod

from deconflict.geometry.projection import LocalProjection, gaussian_radius_m

GEOD = Geod(ellps="WGS84")


@pytest.mark.parametrize("lat0", [0.0, 35.0, 60.0, 80.0, -45.0])
def test_forward_inverse_round_trip(lat0: float) -> None:
    proj = LocalProjection.at(33.5, lat0)
    rng = np.random.default_rng(7)
    x = rng.uniform(-500_000, 500_000, 200)
    y = rng.uniform(-500_000, 500_000, 200)
    lon, lat = proj.inverse(x, y)
    x2, y2 = proj.forward(lon, lat)
    assert np.max(np.abs(x2 - x)) < 1e-6
    assert np.max(np.abs(y2 - y)) < 1e-6


def test_centre_maps_to_origin_and_axes_point_east_and_north() -> None:
    proj = LocalProjection.at(35.0, 33.0)
    x, y = proj.forward([35.0, 35.1, 35.0], [33.0, 33.0, 33.1])
    assert abs(x[0]) < 1e-6 and abs(y[0]) < 1e-6
    assert x[1] > 9_000 and abs(y[1]) < 50  # east
    assert y[2] > 11_000 and abs(x[2]) < 1e-6  # north


@pytest.mark.parametrize("lat0", [0.0, 35.0, 60.0, 80.0])
def test_distances_within_half_a_percent_of_the_geodesic_within_500_km(lat0: float) -> None:
    lon0 = 20.0
    proj = LocalProjection.at(lon0, lat0)
    worst = 0.0
    for az in range(0, 360, 30):
        for dist in (1_000.0, 50_000.0, 200_000.0, 500_000.0):
            lon, lat, _ = GEOD.fwd(lon0, lat0, az, dist)
            x, y = proj.forward(lon, lat)
            # from the centre
            worst = max(worst, abs(math.hypot(float(x), float(y)) - dist) / dist)
            # between two points away from the centre
            lon2, lat2, _ = GEOD.fwd(lon, lat, az + 60, 20_000.0)
            _, _, true = GEOD.inv(lon, lat, lon2, lat2)
            x2, y2 = proj.forward(lon2, lat2)
            measured = math.hypot(float(x2 - x), float(y2 - y))
            worst = max(worst, abs(measured - true) / true)
    assert worst < 0.005


def test_gaussian_radius_between_the_radii_of_curvature() -> None:
    assert gaussian_radius_m(0.0) == pytest.approx(math.sqrt(6_335_439.327 * 6_378_137.0), abs=1.0)
    assert gaussian_radius_m(90.0) == pytest.approx(6_399_593.626, abs=1.0)


@pytest.mark.parametrize("lat0", [0.0, 35.0, 60.0, 80.0])
def test_distances_within_one_part_in_ten_thousand_within_100_km(lat0: float) -> None:
    """Where conflicts are decided (tens of km), the plane is far better than 0.5%."""
    lon0 = -40.0
    proj = LocalProjection.at(lon0, lat0)
    worst = 0.0
    for az in range(0, 360, 15):
        lon, lat, _ = GEOD.fwd(lon0, lat0, az, 100_000.0)
        lon2, lat2, _ = GEOD.fwd(lon, lat, az + 90, 10_000.0)
        _, _, true = GEOD.inv(lon, lat, lon2, lat2)
        x, y = proj.forward([lon, lon2], [lat, lat2])
        worst = max(worst, abs(math.hypot(x[1] - x[0], y[1] - y[0]) - true) / true)
        worst = max(worst, abs(math.hypot(x[0], y[0]) - 100_000.0) / 100_000.0)
    assert worst < 1e-4
