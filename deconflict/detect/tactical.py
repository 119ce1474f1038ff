"""Tactical conflict detection: live tracks, closest point of approach, loss of separation.

State-based, with the semantics of BlueSky's `StateBased` (see `deconflict.geometry.cpa`),
over numpy arrays:

1. **Projection.** Positions go to the local plane (`LocalProjection`, centred on the
   traffic); velocities go through the same map (the image of one second's motion
   along the track), so the grid's convergence with true north, several degrees at
   500 km from the centre, turns them too. Distances are good to 0.1 % within 500 km
   of the centre and 0.4 % at 1,000 km (the azimuthal scale error, (ρ/R)²/6); a wider
   picture should be cut into regions, which this module leaves to its caller.
2. **Broad phase.** Each track sweeps a box over the look-ahead (from its position to
   where it will be, widened by its share of the protected zone); only pairs of
   overlapping boxes (`deconflict.geometry.broadphase`, grid hashing in 3D) go on. A pair
   is watched over the larger look-ahead of its two kinds, so the tracks are swept once
   per look-ahead level: the pairs whose larger look-ahead is T are found among the
   boxes swept over T. Where boxes are crowded (fast traffic: long diagonal sweeps),
   the look-ahead is cut in time slices, each with its own, far smaller, boxes.
3. **Exact CPA**, vectorised, on the candidates, each pair with its protected zone
   (per dimension the larger of its two kinds').

Tracks of one party are not checked against each other unless asked (`same_party`).
`detect_plane(..., only=rows)` finds just the conflicts involving `rows`: what a live
picture updated by a batch of reports needs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from deconflict.geometry.broadphase import Boxes, overlapping_pairs, overlapping_pairs_between
from deconflict.geometry.cpa import encounters
from deconflict.geometry.projection import WGS84_A_M, WGS84_E2, LocalProjection
from deconflict.model.agreement import Agreement, ProtectedZone

__all__ = [
    "Conflicts",
    "PlaneTracks",
    "Tracks",
    "detect",
    "detect_plane",
    "plane_velocity",
    "projection_for",
    "to_plane",
]

_F64 = NDArray[np.float64]
_I64 = NDArray[np.int64]


def _f64(values: ArrayLike) -> _F64:
    return np.ascontiguousarray(values, dtype=np.float64)


@dataclass(frozen=True, slots=True, eq=False)
class PlaneTracks:
    """Tracks in the local plane (x east, y north, z up): one row per track.

    `radius_m`, `half_height_m` and `lookahead_s` are each track's own zone (its kind's);
    `party` is an integer code per track (equal codes: same party)."""

    x_m: _F64
    y_m: _F64
    z_m: _F64
    vx_mps: _F64
    vy_mps: _F64
    vz_mps: _F64
    radius_m: _F64
    half_height_m: _F64
    lookahead_s: _F64
    party: _I64

    def __len__(self) -> int:
        return len(self.x_m)

    @classmethod
    def of(
        cls,
        x_m: ArrayLike,
        y_m: ArrayLike,
        z_m: ArrayLike,
        vx_mps: ArrayLike,
        vy_mps: ArrayLike,
        vz_mps: ArrayLike,
        zone: ProtectedZone | tuple[ArrayLike, ArrayLike, ArrayLike],
        party: ArrayLike,
    ) -> PlaneTracks:
        """Arrays (or scalars for the zone, shared by every track) to `PlaneTracks`."""
        x = _f64(x_m)
        n = len(x)
        parts = (
            (zone.radius_m, zone.half_height_m, zone.lookahead_s) if isinstance(zone, ProtectedZone) else zone
        )
        r, h, t = (np.broadcast_to(_f64(v), (n,)).copy() for v in parts)
        return cls(
            x, _f64(y_m), _f64(z_m), _f64(vx_mps), _f64(vy_mps), _f64(vz_mps), r, h, t,
            np.ascontiguousarray(party, dtype=np.int64),
        )  # fmt: skip

    def after(self, seconds: ArrayLike) -> PlaneTracks:
        """Every track moved on by `seconds` (one value, or one per track)."""
        s = _f64(seconds)
        return PlaneTracks(
            self.x_m + self.vx_mps * s, self.y_m + self.vy_mps * s, self.z_m + self.vz_mps * s,
            self.vx_mps, self.vy_mps, self.vz_mps, self.radius_m, self.half_height_m, self.lookahead_s,
            self.party,
        )  # fmt: skip


@dataclass(frozen=True, slots=True, eq=False)
class Tracks:
    """A snapshot of live tracks, geographic: WGS84 degrees, metres, m/s, track in degrees
    true (clockwise from north). One row per track; `party` and `kind` are strings."""

    track_id: tuple[str, ...]
    party: tuple[str, ...]
    kind: tuple[str, ...]
    lat_deg: _F64
    lon_deg: _F64
    alt_m: _F64
    gs_mps: _F64
    trk_deg: _F64
    vs_mps: _F64

    def __len__(self) -> int:
        return len(self.track_id)

    def rows(self, start: int, stop: int) -> Tracks:
        """Rows `start` to `stop` (views of the arrays)."""
        return Tracks(
            self.track_id[start:stop], self.party[start:stop], self.kind[start:stop],
            self.lat_deg[start:stop], self.lon_deg[start:stop], self.alt_m[start:stop],
            self.gs_mps[start:stop], self.trk_deg[start:stop], self.vs_mps[start:stop],
        )  # fmt: skip


def _radii_m(lat_deg: _F64) -> tuple[_F64, _F64]:
    """Meridional and normal radii of curvature of WGS84 at `lat_deg`."""
    s2 = np.sin(np.radians(lat_deg)) ** 2
    w = 1.0 - WGS84_E2 * s2
    return WGS84_A_M * (1 - WGS84_E2) / w**1.5, WGS84_A_M / np.sqrt(w)


def plane_velocity(
    projection: LocalProjection,
    lon_deg: _F64,
    lat_deg: _F64,
    x_m: _F64,
    y_m: _F64,
    gs_mps: ArrayLike,
    trk_deg: ArrayLike,
) -> tuple[_F64, _F64]:
    """Ground speed and track (true) to a velocity in the plane: the image of one
    second's motion from (`lon_deg`, `lat_deg`), whose plane position is (`x_m`, `y_m`)."""
    trk = np.radians(_f64(trk_deg))
    gs = _f64(gs_mps)
    meridional, normal = _radii_m(lat_deg)
    cos_lat = np.maximum(np.cos(np.radians(lat_deg)), 1e-9)
    dlat = np.degrees(gs * np.cos(trk) / meridional)
    dlon = np.degrees(gs * np.sin(trk) / (normal * cos_lat))
    x1, y1 = projection.forward(lon_deg + dlon, lat_deg + dlat)
    return x1 - x_m, y1 - y_m


def projection_for(lon_deg: ArrayLike, lat_deg: ArrayLike) -> LocalProjection:
    """The plane centred on the traffic: the middle of its latitudes, and of its
    longitudes taken around their circular mean (so a region across 180° works)."""
    lon = _f64(lon_deg)
    lat = _f64(lat_deg)
    if len(lon) == 0:
        return LocalProjection.at(0.0, 0.0)
    mean = math.degrees(math.atan2(np.sin(np.radians(lon)).mean(), np.cos(np.radians(lon)).mean()))
    rel = (lon - mean + 180.0) % 360.0 - 180.0
    lon0 = (mean + (rel.min() + rel.max()) / 2 + 180.0) % 360.0 - 180.0
    return LocalProjection.at(lon0, float((lat.min() + lat.max()) / 2))


def _factorize(values: tuple[str, ...]) -> tuple[list[str], _I64]:
    """The distinct values (in order of appearance) and each value's index among them."""
    index = {v: i for i, v in enumerate(dict.fromkeys(values))}
    return list(index), np.fromiter(map(index.__getitem__, values), dtype=np.int64, count=len(values))


def to_plane(
    tracks: Tracks,
    zones: Mapping[str, ProtectedZone],
    projection: LocalProjection | None = None,
) -> tuple[PlaneTracks, list[str]]:
    """`tracks` in the plane, each with its kind's zone from `zones`; also the party
    names whose codes `PlaneTracks.party` holds."""
    projection = projection or projection_for(tracks.lon_deg, tracks.lat_deg)
    x, y = projection.forward(tracks.lon_deg, tracks.lat_deg)
    vx, vy = plane_velocity(projection, tracks.lon_deg, tracks.lat_deg, x, y, tracks.gs_mps, tracks.trk_deg)
    parties, party_code = _factorize(tracks.party)
    kinds, kind_code = _factorize(tracks.kind)
    table = np.array(
        [[zones[k].radius_m, zones[k].half_height_m, zones[k].lookahead_s] for k in kinds], dtype=np.float64
    ).reshape(-1, 3)
    per_track = table[kind_code]
    plane = PlaneTracks.of(
        x, y, tracks.alt_m, vx, vy, tracks.vs_mps,
        (per_track[:, 0], per_track[:, 1], per_track[:, 2]), party_code,
    )  # fmt: skip
    return plane, parties


@dataclass(frozen=True, slots=True, eq=False)
class Conflicts:
    """Predicted conflicts, one row per pair of track rows `a` < `b`, sorted by (a, b).

    Horizontal closest approach (`t_cpa_s`, `d_cpa_m`), the time inside the protected
    zone (`t_in_s`, `t_out_s`: see `deconflict.geometry.cpa.Encounters`), and `los`:
    separation lost now."""

    a: _I64
    b: _I64
    t_cpa_s: _F64
    d_cpa_m: _F64
    t_in_s: _F64
    t_out_s: _F64
    los: NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.a)

    def rows(self, track_ids: tuple[str, ...] | list[str]) -> Iterator[dict[str, Any]]:
        """Plain rows with track ids; an unbounded time (±inf) is None."""

        def finite(v: float) -> float | None:
            return v if math.isfinite(v) else None

        for k in range(len(self.a)):
            yield {
                "a": track_ids[self.a[k]],
                "b": track_ids[self.b[k]],
                "t_cpa_s": float(self.t_cpa_s[k]),
                "d_cpa_m": float(self.d_cpa_m[k]),
                "t_in_s": finite(float(self.t_in_s[k])),
                "t_out_s": finite(float(self.t_out_s[k])),
                "los": bool(self.los[k]),
            }


def _swept(p: PlaneTracks, rows: _I64, start_s: float, end_s: float, pad_r: _F64, pad_h: _F64) -> Boxes:
    """The box each of `rows` sweeps from `start_s` to `end_s`, widened by its pads."""
    bounds = []
    for pos, vel, pad in ((p.x_m, p.vx_mps, pad_r), (p.y_m, p.vy_mps, pad_r), (p.z_m, p.vz_mps, pad_h)):
        at, v, w = pos[rows], vel[rows], pad[rows]
        start = at + start_s * v
        end = at + end_s * v
        bounds.append((np.minimum(start, end) - w, np.maximum(start, end) + w))
    (x_lo, x_hi), (y_lo, y_hi), (z_lo, z_hi) = bounds
    return Boxes(x_lo, y_lo, z_lo, x_hi, y_hi, z_hi)


#: a box expected to overlap at least this many others (in plan) is cut in `SLICES`
CROWDED = 16.0
#: time slices of the look-ahead for crowded boxes: a pair can only conflict where its
#: two boxes of one slice overlap, and a slice's box of a long sweep is far smaller
SLICES = 3


def _slices(box: Boxes) -> int:
    """How many time slices pay for these boxes (bench/tactical.py measured 1 to 6):
    slicing shrinks long diagonal sweeps, at the price of one grid pass per slice."""
    n = len(box)
    width, height = box.x_hi - box.x_lo, box.y_hi - box.y_lo
    area = float(np.ptp(np.concatenate([box.x_lo, box.x_hi])) * np.ptp(np.concatenate([box.y_lo, box.y_hi])))
    expected = n * float(np.mean((width + width.mean()) * (height + height.mean()))) / max(area, 1.0)
    return SLICES if expected >= CROWDED else 1


def _candidates(p: PlaneTracks, only: NDArray[np.bool_] | None, cell_m: float | None) -> tuple[_I64, _I64]:
    """Broad phase: every pair (a < b) whose swept boxes overlap, over the pair's look-ahead."""
    # pads: two boxes overlap when their gap is below pad_a + pad_b >= max(R_a, R_b)
    pad_r = p.radius_m - p.radius_m.min() / 2
    pad_h = p.half_height_m - p.half_height_m.min() / 2
    found_a: list[_I64] = []
    found_b: list[_I64] = []
    unique = only is not None  # a pair of two updated tracks is found from both sides
    for level in np.unique(p.lookahead_s):
        top = np.flatnonzero(p.lookahead_s == level)  # pairs whose larger look-ahead is `level`...
        below = np.flatnonzero(p.lookahead_s < level)  # ...have one side in `top`
        every = np.concatenate([top, below])
        slices = _slices(_swept(p, every, 0.0, float(level), pad_r, pad_h))
        unique |= slices > 1  # a pair overlapping in two slices is found twice
        if only is None:
            joins = [(top, None), (top, below)]
        else:
            joins = [(top[only[top]], every), (below[only[below]], top)]
        for k in range(slices):
            t0, t1 = float(level) * k / slices, float(level) * (k + 1) / slices
            for mine, theirs in joins:
                if theirs is None:
                    i, j = overlapping_pairs(_swept(p, mine, t0, t1, pad_r, pad_h), cell_m)
                    found_a += [mine[i]]
                    found_b += [mine[j]]
                elif len(mine) and len(theirs):
                    i, j = overlapping_pairs_between(
                        _swept(p, mine, t0, t1, pad_r, pad_h), _swept(p, theirs, t0, t1, pad_r, pad_h), cell_m
                    )
                    found_a += [mine[i]]
                    found_b += [theirs[j]]
    if not found_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    a = np.concatenate(found_a)
    b = np.concatenate(found_b)
    a, b = np.minimum(a, b), np.maximum(a, b)
    if unique:
        keep = a != b
        pair = np.unique(a[keep] * len(p) + b[keep])
        a, b = pair // len(p), pair % len(p)
    return a, b


def detect_plane(
    p: PlaneTracks,
    *,
    same_party: bool = False,
    only: ArrayLike | None = None,
    cell_m: float | None = None,
) -> Conflicts:
    """Every predicted conflict among `p` (only those involving the rows `only`, if given).

    Pairs of one party are left out unless `same_party`. `cell_m` sets the broad
    phase's grid (default: about the size of a swept box)."""
    if len(p) < 2:
        empty = np.zeros(0)
        return Conflicts(np.zeros(0, np.int64), np.zeros(0, np.int64), empty, empty, empty, empty,
                         np.zeros(0, bool))  # fmt: skip
    mask = None
    if only is not None:
        mask = np.zeros(len(p), dtype=bool)
        mask[np.asarray(only, dtype=np.int64)] = True
    a, b = _candidates(p, mask, cell_m)
    if not same_party:
        other = p.party[a] != p.party[b]
        a, b = a[other], b[other]
    e = encounters(
        p.x_m[b] - p.x_m[a],
        p.y_m[b] - p.y_m[a],
        p.z_m[b] - p.z_m[a],
        p.vx_mps[b] - p.vx_mps[a],
        p.vy_mps[b] - p.vy_mps[a],
        p.vz_mps[b] - p.vz_mps[a],
        np.maximum(p.radius_m[a], p.radius_m[b]),
        np.maximum(p.half_height_m[a], p.half_height_m[b]),
        np.maximum(p.lookahead_s[a], p.lookahead_s[b]),
    )
    hit = np.flatnonzero(e.conflict)
    a, b = a[hit], b[hit]
    order = np.lexsort((b, a))
    pick = hit[order]
    return Conflicts(
        a[order], b[order], e.t_cpa_s[pick], e.d_cpa_m[pick], e.t_in_s[pick], e.t_out_s[pick], e.los[pick]
    )


def detect(
    tracks: Tracks,
    agreement: Agreement,
    *,
    same_party: bool | None = None,
    zone: ProtectedZone | None = None,
    projection: LocalProjection | None = None,
) -> Conflicts:
    """Every predicted conflict in a geographic snapshot, with each kind's protected
    zone from `agreement` (or one `zone` for every track) and the agreement's choice
    on same-party pairs (unless `same_party` is given)."""
    zones: Mapping[str, ProtectedZone] = (
        {k: zone for k in set(tracks.kind)}
        if zone is not None
        else {k: v.protected_zone for k, v in agreement.kinds.items()}
    )
    plane, _ = to_plane(tracks, zones, projection)
    return detect_plane(plane, same_party=agreement.tactical_same_party if same_party is None else same_party)
