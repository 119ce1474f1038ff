"""A slow, obvious tactical detector: every pair in a plain Python loop, floats only.

Written apart from `deconflict.detect.tactical` and `deconflict.geometry.cpa`, and
solved another way: the time inside the zone horizontally is where the quadratic
|d + v t|² - R² is negative (its two roots), not `t_cpa ± dt`; the miss distance is
the length of d + v t_cpa, not the cross product. The projection of positions is the
library's own `LocalProjection` (checked against pyproj's geodesics on its own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from deconflict.geometry.cpa import LEVEL_TOLERANCE_M, STILL_MPS, STILL_VS_MPS
from deconflict.geometry.projection import WGS84_A_M, WGS84_E2, LocalProjection

INF = math.inf


@dataclass(frozen=True)
class Track:
    """In the plane: metres, m/s; the track's own zone; its party."""

    x: float
    y: float
    z: float
    vx: float
    vy: float
    vz: float
    radius: float
    half_height: float
    lookahead: float
    party: int


@dataclass(frozen=True)
class Found:
    a: int
    b: int
    t_cpa: float
    d_cpa: float
    t_in: float
    t_out: float
    los: bool


def pair(a: Track, b: Track, radius: float, half: float, lookahead: float) -> Found | None:
    dx, dy, dz = b.x - a.x, b.y - a.y, b.z - a.z
    vx, vy, vz = b.vx - a.vx, b.vy - a.vy, b.vz - a.vz

    # horizontal: q(t) = A t² + B t + C < 0
    qa = vx * vx + vy * vy
    qb = 2 * (dx * vx + dy * vy)
    qc = dx * dx + dy * dy - radius * radius
    if qa <= STILL_MPS * STILL_MPS:
        h = (-INF, INF) if qc < 0 else None
        t_cpa = 0.0
    else:
        disc = qb * qb - 4 * qa * qc
        h = None if disc <= 0 else ((-qb - math.sqrt(disc)) / (2 * qa), (-qb + math.sqrt(disc)) / (2 * qa))
        t_cpa = -qb / (2 * qa)
    d_cpa = math.hypot(dx + vx * t_cpa, dy + vy * t_cpa)

    # vertical: |dz + vz t| < H, to the micrometre
    half -= LEVEL_TOLERANCE_M
    if abs(vz) <= STILL_VS_MPS:
        v = (-INF, INF) if abs(dz) < half else None
    else:
        one, two = (-half - dz) / vz, (half - dz) / vz
        v = (min(one, two), max(one, two))

    los = math.hypot(dx, dy) < radius and abs(dz) < half
    inside = False
    t_in = t_out = math.nan
    if h is not None and v is not None:
        t_in, t_out = max(h[0], v[0]), min(h[1], v[1])
        inside = t_in < t_out and t_out > 0 and t_in < lookahead
    if not (inside or los):
        return None
    return Found(-1, -1, t_cpa, d_cpa, t_in, t_out, los)


def conflicts(
    tracks: list[Track], *, same_party: bool = False, scale: float = 1.0
) -> dict[tuple[int, int], Found]:
    """Every conflicting pair (i < j); `scale` grows (> 1) or shrinks (< 1) every zone."""
    found = {}
    for i in range(len(tracks)):
        for j in range(i + 1, len(tracks)):
            a, b = tracks[i], tracks[j]
            if a.party == b.party and not same_party:
                continue
            f = pair(
                a,
                b,
                max(a.radius, b.radius) * scale,
                max(a.half_height, b.half_height) * scale,
                max(a.lookahead, b.lookahead) * scale,
            )
            if f is not None:
                found[(i, j)] = Found(i, j, f.t_cpa, f.d_cpa, f.t_in, f.t_out, f.los)
    return found


def to_plane(
    proj: LocalProjection,
    lat: float,
    lon: float,
    alt: float,
    gs: float,
    trk: float,
    vs: float,
    zone: tuple[float, float, float],
    party: int,
) -> Track:
    """One geographic track in the plane: its velocity is where one second of its
    motion (east and north metres turned into degrees on the ellipsoid) lands."""
    x0, y0 = proj.forward(lon, lat)
    s2 = math.sin(math.radians(lat)) ** 2
    meridional = WGS84_A_M * (1 - WGS84_E2) / (1 - WGS84_E2 * s2) ** 1.5
    normal = WGS84_A_M / math.sqrt(1 - WGS84_E2 * s2)
    north = gs * math.cos(math.radians(trk))
    east = gs * math.sin(math.radians(trk))
    lat1 = lat + math.degrees(north / meridional)
    lon1 = lon + math.degrees(east / (normal * math.cos(math.radians(lat))))
    x1, y1 = proj.forward(lon1, lat1)
    return Track(
        float(x0), float(y0), alt, float(x1 - x0), float(y1 - y0), vs, zone[0], zone[1], zone[2], party
    )
