"""Synthetic intents for the strategic benchmarks, and the small helpers they share.

One `Spec` is one intent with one volume, as plain values, so the same draw feeds
deconflict (`draft`, `filing`, `feature`) and a peer database (`wkt`, `ring_lonlat`).
The distribution (the issue "Core mechanism"):

- centres uniform over a 1000 x 1000 km square around `CENTRE` (35°E, 45°N), placed
  in metres in one `LocalProjection` at the centre (its scale error is below 0.2 %
  at the square's corners, which only reshapes the synthetic outlines slightly);
- size ("across") log-uniform from 200 m to 50 km; half circles (radius = size / 2),
  half star-shaped polygons of 5 to 8 vertices at evenly spaced bearings jittered by
  ±35 % of the spacing, each at 0.5 to 1 x size / 2 from the centre (star-shaped about
  the centre with every angular gap below 180°, so the ring is always simple);
- duration log-uniform from 10 min to 12 h, start uniform over the 7 days after `t0`;
- altitude band: lower uniform 0 to 12 km, thickness log-uniform 100 m to 3 km;
- kind uniform over the agreement's kinds, owner uniform over 3 operator parties.

Everything is drawn with numpy in blocks, so a million specs take seconds. Times
are whole seconds after `t0`, so both systems see exactly the same windows.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from deconflict.geometry.projection import LocalProjection
from deconflict.model import Circle, Filing, FilingType, Polygon, State, Volume4D
from deconflict.model.filing import make_ovn
from deconflict.model.geojson import volume_to_feature
from deconflict.service import Draft

__all__ = ["CENTRE", "OWNERS", "Spec", "generate", "pct"]

CENTRE = (35.0, 45.0)
HALF_SIDE_M = 500_000.0
SIZE_M = (200.0, 50_000.0)
DURATION_S = (600.0, 12 * 3600.0)
WINDOW_S = 7 * 24 * 3600.0
LOWER_M = (0.0, 12_000.0)
THICKNESS_M = (100.0, 3_000.0)
POLYGON_VERTICES = (5, 8)
OWNERS = ("north", "south", "drones")
#: Vertices of the polygon a peer stores for a circle (circumscribed: a superset).
CIRCLE_VERTICES = 32


@dataclass(frozen=True, slots=True)
class Spec:
    """One synthetic intent with one volume. Times in whole seconds after `t0`."""

    id: str
    owner: str
    kind: str
    lon: float
    lat: float
    radius_m: float  # > 0 for a circle, 0 for a polygon
    ring: tuple[tuple[float, float], ...]  # polygon vertices (lon, lat), not closed; () for a circle
    lower_m: float
    upper_m: float
    start_s: int
    end_s: int

    def volume(self, t0: datetime) -> Volume4D:
        outline = Circle(self.lon, self.lat, self.radius_m) if self.radius_m > 0 else Polygon(self.ring)
        return Volume4D(
            outline,
            self.lower_m,
            self.upper_m,
            t0 + timedelta(seconds=self.start_s),
            t0 + timedelta(seconds=self.end_s),
        )

    def draft(self, t0: datetime) -> Draft:
        return Draft(FilingType.INTENT, self.kind, (self.volume(t0),))

    def filing(self, t0: datetime, created: datetime) -> Filing:
        """Version 1 as the service would have stored it when filed at `created`."""
        volume = self.volume(t0)
        notice_s = (volume.time_start - created).total_seconds()
        return Filing(
            self.id,
            FilingType.INTENT,
            self.owner,
            self.kind,
            (volume,),
            State.ACCEPTED,
            0,
            1,
            make_ovn(self.id, 1, created),
            created,
            created,
            notice_s,
            False,
        )

    def feature(self, t0: datetime) -> dict[str, Any]:
        return volume_to_feature(self.volume(t0))

    def ring_lonlat(self) -> list[tuple[float, float]]:
        """The outline as a polygon ring (closed); a circle as a circumscribed 32-gon."""
        if self.radius_m <= 0:
            return [*self.ring, self.ring[0]]
        az = np.linspace(0.0, 2 * math.pi, CIRCLE_VERTICES, endpoint=False)
        r = self.radius_m / math.cos(math.pi / CIRCLE_VERTICES)
        lon, lat = LocalProjection.at(self.lon, self.lat).inverse(r * np.cos(az), r * np.sin(az))
        ring = [(float(a), float(b)) for a, b in zip(lon, lat, strict=True)]
        return [*ring, ring[0]]

    def wkt(self) -> str:
        return "SRID=4326;POLYGON((" + ",".join(f"{a!r} {b!r}" for a, b in self.ring_lonlat()) + "))"


def _log_uniform(rng: np.random.Generator, lo_hi: tuple[float, float], n: int) -> np.ndarray:
    lo, hi = lo_hi
    return np.exp(rng.uniform(math.log(lo), math.log(hi), n))


def generate(n: int, seed: int, kinds: Sequence[str], prefix: str, *, block: int = 100_000) -> list[Spec]:
    """`n` specs, reproducible from `seed`; ids are `prefix` + a zero-padded number."""
    rng = np.random.default_rng(seed)
    proj = LocalProjection.at(*CENTRE)
    out: list[Spec] = []
    kind_names = list(kinds)
    for base in range(0, n, block):
        m = min(block, n - base)
        x = rng.uniform(-HALF_SIDE_M, HALF_SIDE_M, m)
        y = rng.uniform(-HALF_SIDE_M, HALF_SIDE_M, m)
        half = _log_uniform(rng, SIZE_M, m) / 2
        circle = rng.random(m) < 0.5
        nvert = rng.integers(POLYGON_VERTICES[0], POLYGON_VERTICES[1] + 1, m)
        duration = np.round(_log_uniform(rng, DURATION_S, m))
        start = np.floor(rng.uniform(0, WINDOW_S, m))
        lower = np.round(rng.uniform(*LOWER_M, m), 1)
        thick = np.round(_log_uniform(rng, THICKNESS_M, m), 1)
        kind = rng.integers(0, len(kind_names), m)
        owner = rng.integers(0, len(OWNERS), m)
        # every polygon vertex of the block in one projection call
        bearings: list[np.ndarray] = []
        reach: list[np.ndarray] = []
        for k in nvert:
            # evenly spaced bearings, jittered: every gap stays below pi, so the ring is simple
            step = 2 * math.pi / k
            bearings.append(rng.uniform(0, step) + step * (np.arange(k) + rng.uniform(-0.35, 0.35, k)))
            reach.append(rng.uniform(0.5, 1.0, k))
        vx = np.concatenate([x[i] + half[i] * reach[i] * np.cos(bearings[i]) for i in range(m)])
        vy = np.concatenate([y[i] + half[i] * reach[i] * np.sin(bearings[i]) for i in range(m)])
        vlon, vlat = proj.inverse(vx, vy)
        clon, clat = proj.inverse(x, y)
        first = np.concatenate([[0], np.cumsum(nvert)[:-1]])
        for i in range(m):
            if circle[i]:
                ring: tuple[tuple[float, float], ...] = ()
                radius = float(round(half[i], 1))
            else:
                s = slice(first[i], first[i] + nvert[i])
                ring = tuple(zip(vlon[s].tolist(), vlat[s].tolist(), strict=True))
                radius = 0.0
            out.append(
                Spec(
                    f"{prefix}{base + i:07d}",
                    OWNERS[owner[i]],
                    kind_names[kind[i]],
                    float(clon[i]),
                    float(clat[i]),
                    radius,
                    ring,
                    float(lower[i]),
                    float(lower[i] + thick[i]),
                    int(start[i]),
                    int(start[i] + duration[i]),
                )
            )
    return out


def pct(xs: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `xs`."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


def run_clients(n: int, client: Callable[[], None]) -> tuple[float, float]:
    """Run `client` in `n` threads at once; (wall seconds, this process's CPU seconds)."""
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - wall0, time.process_time() - cpu0
