"""LocalProjection (AEQD of the Gauss conformal sphere) against pyproj's geodesic."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyproj import Geod

from deconflict.geometry.projection import LocalProjection, gaussian_radius_m, plane_xy

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


def _inverse_reference(proj: LocalProjection, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inverse as first written: array constants and 50 fixed-point steps, always."""
    from deconflict.geometry.projection import _E, _gauss_sphere

    c, k, chi0, radius = (float(v) for v in _gauss_sphere(np.radians(np.float64(proj.lat0))))
    rho = np.hypot(x, y)
    ang = rho / radius
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(rho > 0, y * np.sin(ang) * math.cos(chi0) / np.where(rho == 0, 1.0, rho), 0.0)
    chi = np.arcsin(np.clip(np.cos(ang) * math.sin(chi0) + ratio, -1.0, 1.0))
    lam = np.arctan2(x * np.sin(ang), rho * math.cos(chi0) * np.cos(ang) - y * math.sin(chi0) * np.sin(ang))
    num = (np.tan(0.5 * chi + np.pi / 4) / k) ** (1 / c)
    phi = chi
    for _ in range(50):
        s = np.sin(phi)
        phi = 2 * np.arctan(num * ((1 - _E * s) / (1 + _E * s)) ** (-0.5 * _E)) - np.pi / 2
    return (np.degrees(lam / c) + proj.lon0 + 180.0) % 360.0 - 180.0, np.degrees(phi)


@pytest.mark.parametrize("lat0", [0.0, 35.0, 60.0, 80.0, 89.9, -45.0, -89.9])
def test_fast_forward_and_inverse_match_the_slow_references(lat0: float) -> None:
    """`forward` (one centre, plain-float constants) equals `plane_xy`; `inverse`
    (series start, stops at convergence) equals 50 fixed-point steps."""
    proj = LocalProjection.at(-120.0, lat0)
    rng = np.random.default_rng(11)
    lon = -120.0 + rng.uniform(-8.0, 8.0, 2_000)
    lat = np.clip(lat0 + rng.uniform(-5.0, 5.0, 2_000), -90.0, 90.0)
    x, y = proj.forward(lon, lat)
    xr, yr = plane_xy(lon, lat, -120.0, lat0)
    assert np.max(np.abs(x - xr)) < 1e-6 and np.max(np.abs(y - yr)) < 1e-6
    px = rng.uniform(-600_000, 600_000, 2_000)
    py = rng.uniform(-600_000, 600_000, 2_000)
    lon_f, lat_f = proj.inverse(px, py)
    lon_r, lat_r = _inverse_reference(proj, px, py)
    assert np.max(np.abs(lat_f - lat_r)) < 1e-11  # degrees: ~1 µm
    assert np.max(np.abs(lon_f - lon_r)) < 1e-11
