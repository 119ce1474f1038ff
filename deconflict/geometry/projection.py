"""A local azimuthal equidistant projection (metres), good for distances near its centre.

The sphere used has the Gaussian mean radius of the WGS84 ellipsoid at the centre's
latitude, so scale is exact at the centre along every azimuth to first order and
distances stay within 0.5% of the geodesic within 500 km (checked against
pyproj's Geod in the tests). Pure numpy; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

WGS84_A_M = 6_378_137.0
WGS84_F = 1 / 298.257223563
WGS84_E2 = WGS84_F * (2 - WGS84_F)


def gaussian_radius_m(lat_deg: float) -> float:
    """sqrt(M·N): the radius of the sphere that best fits the ellipsoid at `lat_deg`."""
    s2 = math.sin(math.radians(lat_deg)) ** 2
    w = 1 - WGS84_E2 * s2
    meridional = WGS84_A_M * (1 - WGS84_E2) / w**1.5
    normal = WGS84_A_M / math.sqrt(w)
    return math.sqrt(meridional * normal)


@dataclass(frozen=True, slots=True)
class LocalProjection:
    """Azimuthal equidistant projection centred on (`lon0`, `lat0`) degrees; x east, y north, metres."""

    lon0: float
    lat0: float
    radius_m: float

    @classmethod
    def at(cls, lon0: float, lat0: float) -> LocalProjection:
        return cls(lon0, lat0, gaussian_radius_m(lat0))

    def forward(self, lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Degrees to metres."""
        lam = np.radians(np.asarray(lon, dtype=np.float64) - self.lon0)
        lam = (lam + np.pi) % (2 * np.pi) - np.pi
        phi = np.radians(np.asarray(lat, dtype=np.float64))
        phi0 = math.radians(self.lat0)
        sin_phi0, cos_phi0 = math.sin(phi0), math.cos(phi0)
        cos_phi = np.cos(phi)
        # central angle by the haversine formula (accurate for small distances)
        h = np.sin((phi - phi0) / 2) ** 2 + cos_phi0 * cos_phi * np.sin(lam / 2) ** 2
        c = 2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
        sin_c = np.sin(c)
        with np.errstate(invalid="ignore", divide="ignore"):
            k = np.where(c > 1e-12, c / np.where(sin_c == 0, 1.0, sin_c), 1.0)
        x = self.radius_m * k * cos_phi * np.sin(lam)
        y = self.radius_m * k * (cos_phi0 * np.sin(phi) - sin_phi0 * cos_phi * np.cos(lam))
        return x, y

    def inverse(self, x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Metres to degrees."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        phi0 = math.radians(self.lat0)
        sin_phi0, cos_phi0 = math.sin(phi0), math.cos(phi0)
        rho = np.hypot(x, y)
        c = rho / self.radius_m
        sin_c, cos_c = np.sin(c), np.cos(c)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(rho > 0, y * sin_c * cos_phi0 / np.where(rho == 0, 1.0, rho), 0.0)
        phi = np.arcsin(np.clip(cos_c * sin_phi0 + ratio, -1.0, 1.0))
        lam = np.arctan2(x * sin_c, rho * cos_phi0 * cos_c - y * sin_phi0 * sin_c)
        lon = (np.degrees(lam) + self.lon0 + 180.0) % 360.0 - 180.0
        return lon, np.degrees(phi)
