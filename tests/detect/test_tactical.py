"""The tactical detector against a slow pairwise reference, and the hard cases one by one."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod
from tactical_reference import Track, conflicts, to_plane

from deconflict import agreements
from deconflict.detect import tactical
from deconflict.detect.tactical import (
    PlaneTracks,
    Tracks,
    detect,
    detect_plane,
    plane_velocity,
    projection_for,
)
from deconflict.geometry import broadphase
from deconflict.geometry.broadphase import Boxes, overlapping_pairs, overlapping_pairs_between
from deconflict.geometry.cpa import encounters
from deconflict.geometry.projection import LocalProjection
from deconflict.model.agreement import ProtectedZone

GEOD = Geod(ellps="WGS84")
ZONE = ProtectedZone(1_000.0, 300.0, 300.0)
SLACK = 1e-7  # the reference with zones grown or shrunk by this much brackets the fast code


def plane(
    rows: list[tuple[float, ...]], zone: ProtectedZone = ZONE, parties: list[int] | None = None
) -> PlaneTracks:
    """Rows of (x, y, z, vx, vy, vz); each track of its own party unless given."""
    cols = list(zip(*rows, strict=True))
    return PlaneTracks.of(*cols, zone, parties if parties is not None else list(range(len(rows))))  # type: ignore[arg-type]


def one(p: PlaneTracks, **kw: object) -> dict[str, object] | None:
    found = list(detect_plane(p, **kw).rows([str(i) for i in range(len(p))]))  # type: ignore[arg-type]
    assert len(found) <= 1
    return found[0] if found else None


def as_reference(p: PlaneTracks) -> list[Track]:
    return [
        Track(
            float(p.x_m[i]),
            float(p.y_m[i]),
            float(p.z_m[i]),
            float(p.vx_mps[i]),
            float(p.vy_mps[i]),
            float(p.vz_mps[i]),
            float(p.radius_m[i]),
            float(p.half_height_m[i]),
            float(p.lookahead_s[i]),
            int(p.party[i]),
        )  # fmt: skip
        for i in range(len(p))
    ]


def assert_matches_reference(p: PlaneTracks, *, same_party: bool = False) -> int:
    """The fast result lies between the reference with shrunk and grown zones, and on
    every pair the reference also finds, the figures agree. Returns the pair count."""
    got = detect_plane(p, same_party=same_party)
    pairs = set(zip(got.a.tolist(), got.b.tolist(), strict=True))
    ref = as_reference(p)
    exact = conflicts(ref, same_party=same_party)
    inner = set(conflicts(ref, same_party=same_party, scale=1 - SLACK))
    outer = set(conflicts(ref, same_party=same_party, scale=1 + SLACK))
    assert inner <= pairs, f"missed {sorted(inner - pairs)}"
    assert pairs <= outer, f"spurious {sorted(pairs - outer)}"
    for k in range(len(got)):
        f = exact.get((int(got.a[k]), int(got.b[k])))
        if f is None:
            continue
        assert bool(got.los[k]) == f.los
        assert got.t_cpa_s[k] == pytest.approx(f.t_cpa, rel=1e-6, abs=1e-6)
        assert got.d_cpa_m[k] == pytest.approx(f.d_cpa, rel=1e-6, abs=1e-4)
        for mine, theirs in ((got.t_in_s[k], f.t_in), (got.t_out_s[k], f.t_out)):
            if math.isfinite(theirs) or math.isfinite(mine):
                assert mine == pytest.approx(theirs, rel=1e-6, abs=1e-5)
    return len(pairs)


# --- the hard cases, in the plane with exact numbers -----------------------------------


def test_head_on() -> None:
    # 20 km apart, closing at 200 m/s: CPA at 100 s, distance 0; inside for ±5 s
    found = one(plane([(0, 0, 1000, 100, 0, 0), (20_000, 0, 1000, -100, 0, 0)]))
    assert found == {"a": "0", "b": "1", "t_cpa_s": 100.0, "d_cpa_m": 0.0, "t_in_s": 95.0, "t_out_s": 105.0,
                     "los": False}  # fmt: skip


def test_overtaking() -> None:
    # b 5 km ahead at 150 m/s, a behind at 250: closing at 100 m/s with 400 m offset
    found = one(plane([(0, 0, 1000, 250, 0, 0), (5_000, 400, 1000, 150, 0, 0)]))
    assert found is not None
    assert found["t_cpa_s"] == pytest.approx(50.0)
    assert found["d_cpa_m"] == pytest.approx(400.0)
    dt = math.sqrt(1_000**2 - 400**2) / 100
    assert found["t_in_s"] == pytest.approx(50 - dt) and found["t_out_s"] == pytest.approx(50 + dt)
    # the same overtaking with 1.2 km offset never comes within 1 km
    assert one(plane([(0, 0, 1000, 250, 0, 0), (5_000, 1_200, 1000, 150, 0, 0)])) is None


def test_crossing() -> None:
    # a eastbound, b northbound, both reach the origin at t = 60 s
    found = one(plane([(-6_000, 0, 3000, 100, 0, 0), (0, -6_000, 3000, 0, 100, 0)]))
    assert found is not None
    assert found["t_cpa_s"] == pytest.approx(60.0) and found["d_cpa_m"] == pytest.approx(0.0, abs=1e-9)
    assert found["t_in_s"] == pytest.approx(60 - 1_000 / math.hypot(100, 100))
    # b 30 s later: misses by 3 km * sqrt(2) / 2 = 2.1 km, no conflict
    assert one(plane([(-6_000, 0, 3000, 100, 0, 0), (0, -9_000, 3000, 0, 100, 0)])) is None


def test_crossing_beyond_the_lookahead_is_not_a_conflict() -> None:
    found = one(plane([(-60_000, 0, 3000, 100, 0, 0), (0, -60_000, 3000, 0, 100, 0)]))
    assert found is None  # they would meet at 600 s; the look-ahead is 300 s


def test_vertical_only_same_spot_no_relative_horizontal_motion() -> None:
    # b directly above a, same horizontal velocity, descending 10 m/s onto a 1 km below
    found = one(plane([(0, 0, 1000, 50, 50, 0), (0, 0, 2000, 50, 50, -10)]))
    assert found is not None
    assert found["t_in_s"] == pytest.approx(70.0) and found["t_out_s"] == pytest.approx(130.0)
    assert found["t_cpa_s"] == 0.0 and found["d_cpa_m"] == 0.0 and found["los"] is False
    # climbing away instead: never
    assert one(plane([(0, 0, 1000, 50, 50, 0), (0, 0, 2000, 50, 50, 10)])) is None


def test_level_flight_one_above_the_other_never_conflicts() -> None:
    assert one(plane([(0, 0, 1000, 100, 0, 0), (20_000, 0, 1400, -100, 0, 0)])) is None


def test_parallel_at_constant_distance_inside_is_a_conflict_for_ever() -> None:
    found = one(plane([(0, 0, 1000, 120, 30, 0), (0, 500, 1000, 120, 30, 0)]))
    assert found == {"a": "0", "b": "1", "t_cpa_s": 0.0, "d_cpa_m": 500.0, "t_in_s": None, "t_out_s": None,
                     "los": True}  # fmt: skip


def test_parallel_at_constant_distance_outside_never_conflicts() -> None:
    assert one(plane([(0, 0, 1000, 120, 30, 0), (0, 1_500, 1000, 120, 30, 0)])) is None


def test_zero_relative_velocity_both_still() -> None:
    assert one(plane([(0, 0, 100, 0, 0, 0), (999, 0, 100, 0, 0, 0)])) is not None
    assert one(plane([(0, 0, 100, 0, 0, 0), (1_001, 0, 100, 0, 0, 0)])) is None


def test_exactly_on_the_boundary_is_not_a_conflict() -> None:
    # head-on with a lateral offset of exactly the radius: grazes the zone, never inside
    assert one(plane([(0, 0, 1000, 100, 0, 0), (20_000, 1_000, 1000, -100, 0, 0)])) is None
    assert one(plane([(0, 0, 1000, 100, 0, 0), (20_000, 999.999, 1000, -100, 0, 0)])) is not None
    # entering exactly at the look-ahead: 1000 m closing at 10 m/s, R = 100, in at 90 s
    zone = ProtectedZone(100.0, 300.0, 90.0)
    assert one(plane([(0, 0, 1000, 0, 0, 0), (1_000, 0, 1000, -10, 0, 0)], zone)) is None
    zone = ProtectedZone(100.0, 300.0, 90.001)
    assert one(plane([(0, 0, 1000, 0, 0, 0), (1_000, 0, 1000, -10, 0, 0)], zone)) is not None
    # exactly the radius apart and still; exactly the half-height apart and level
    assert one(plane([(0, 0, 1000, 0, 0, 0), (1_000, 0, 1000, 0, 0, 0)])) is None
    assert one(plane([(0, 0, 1000, 0, 0, 0), (10, 0, 1300, 0, 0, 0)])) is None
    # leaving the zone exactly now (t_out = 0) is over
    assert one(plane([(0, 0, 1000, 0, 0, 0), (1_000, 0, 1000, 10, 0, 0)])) is None


def test_adjacent_flight_levels_are_separated_whichever_way_float_rounding_falls() -> None:
    ft = 0.3048
    zone = ProtectedZone(9_260.0, 1_000 * ft, 300.0)
    for low, high in ((36_000, 37_000), (35_000, 36_000), (11_000, 12_000), (300, 1_300)):
        rows = [(0, 0, low * ft, 0, 0, 0), (100, 0, high * ft, 0, 0, 0)]
        assert one(plane(rows, zone)) is None, (low, high)
    # 1 mm inside is a loss of separation
    inside = [(0, 0, 36_000 * ft, 0, 0, 0), (100, 0, 37_000 * ft - 0.001, 0, 0, 0)]
    assert one(plane(inside, zone)) is not None


def test_loss_of_separation_already_happening() -> None:
    found = one(plane([(0, 0, 1000, 100, 0, 0), (300, 0, 1100, -100, 0, 0)]))
    assert found is not None and found["los"] is True
    assert found["t_in_s"] == pytest.approx((300 - 1_000) / 200)  # entered 3.5 s ago
    assert found["t_out_s"] == pytest.approx((300 + 1_000) / 200)
    # diverging but still inside: still a conflict and a loss of separation
    found = one(plane([(0, 0, 1000, -100, 0, 0), (300, 0, 1100, 100, 0, 0)]))
    assert found is not None and found["los"] is True and found["t_in_s"] < 0 < found["t_out_s"]  # type: ignore[operator]


def test_same_party_pairs_only_when_asked() -> None:
    rows = [(0, 0, 1000, 100, 0, 0), (20_000, 0, 1000, -100, 0, 0)]
    assert one(plane(rows, parties=[3, 3])) is None
    assert one(plane(rows, parties=[3, 3]), same_party=True) is not None


def test_per_pair_zone_takes_the_larger_of_the_two_kinds() -> None:
    drone, crewed = (50.0, 15.0, 30.0), (9_260.0, 304.8, 300.0)
    # two still drones 5 km apart: fine; a drone and a crewed aircraft 5 km apart: inside 5 NM
    rows = [(0, 0, 100, 0, 0, 0), (5_000, 0, 100, 0, 0, 0)]
    pairs = lambda zones: list(zip(*zones, strict=True))  # noqa: E731
    assert one(plane(rows, pairs([drone, drone]))) is None  # type: ignore[arg-type]
    assert one(plane(rows, pairs([drone, crewed]))) is not None  # type: ignore[arg-type]
    # closing from 4 km at 20 m/s, in at 197.5 s: beyond two drones' 30 s look-ahead, but a
    # pair with one 300 s look-ahead is watched for 300 s
    rows = [(0, 0, 100, 0, 0, 0), (4_000, 0, 100, -20, 0, 0)]
    assert one(plane(rows, pairs([drone, drone]))) is None  # type: ignore[arg-type]
    found = one(plane(rows, pairs([drone, (50.0, 15.0, 300.0)])))  # type: ignore[arg-type]
    assert found is not None and found["t_in_s"] == pytest.approx(197.5)


def test_encounters_is_vectorised_over_pairs() -> None:
    e = encounters([20_000, 0], [0, 500], [0, 0], [-200, 0], [0, 0], [0, 0], 1_000.0, 300.0, 300.0)
    assert e.conflict.tolist() == [True, True] and e.los.tolist() == [False, True]
    assert e.t_in_s[0] == 95.0 and e.t_in_s[1] == -math.inf


# --- random traffic against the reference ---------------------------------------------


@st.composite
def plane_traffic(draw: st.DrawFn) -> tuple[PlaneTracks, bool]:
    n = draw(st.integers(2, 40))
    side = draw(st.sampled_from([2_000.0, 20_000.0, 200_000.0]))
    speed = draw(st.sampled_from([0.0, 30.0, 250.0]))
    quantum = draw(st.sampled_from([None, 100.0]))  # on a lattice: ties, still pairs, equal velocities

    def coord(lo: float, hi: float) -> float:
        v = draw(st.floats(lo, hi))
        return round(v / quantum) * quantum if quantum else v

    zones = [
        (draw(st.sampled_from([50.0, 1_000.0, 9_260.0])), draw(st.sampled_from([15.0, 300.0])),
         draw(st.sampled_from([30.0, 120.0, 300.0])))
        for _ in range(draw(st.integers(1, 3)))
    ]  # fmt: skip
    rows, r, h, t, party = [], [], [], [], []
    for _ in range(n):
        rows.append(
            (coord(0, side), coord(0, side), coord(0, 3_000),
             coord(-speed, speed), coord(-speed, speed), coord(-speed / 10, speed / 10) if speed else 0.0)
        )  # fmt: skip
        z = draw(st.sampled_from(zones))
        r.append(z[0])
        h.append(z[1])
        t.append(z[2])
        party.append(draw(st.integers(0, 2)))
    cols = list(zip(*rows, strict=True))
    return PlaneTracks.of(*cols, (r, h, t), party), draw(st.booleans())  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plane_traffic(), st.sampled_from([0.0, math.inf]))
def test_random_plane_traffic_matches_the_reference(case: tuple[PlaneTracks, bool], crowded: float) -> None:
    p, same_party = case
    saved = tactical.CROWDED
    tactical.CROWDED = crowded  # time slices always, or never
    try:
        assert_matches_reference(p, same_party=same_party)
    finally:
        tactical.CROWDED = saved


@pytest.mark.parametrize("crowded", [0.0, math.inf])  # time slices always, never
def test_dense_random_traffic_matches_the_reference_and_finds_plenty(
    crowded: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tactical, "CROWDED", crowded)
    rng = np.random.default_rng(4)
    n = 600
    gs, trk = rng.uniform(0, 250, n), rng.uniform(0, 2 * np.pi, n)
    p = PlaneTracks.of(
        rng.uniform(0, 300_000, n), rng.uniform(0, 300_000, n), rng.uniform(0, 3_000, n),
        gs * np.sin(trk), gs * np.cos(trk), rng.uniform(-10, 10, n),
        (rng.choice([1_000.0, 9_260.0], n), 300.0, rng.choice([60.0, 300.0], n)), rng.integers(0, 3, n),
    )  # fmt: skip
    assert assert_matches_reference(p) > 100


@pytest.mark.parametrize("crowded", [0.0, math.inf])
def test_only_finds_exactly_the_pairs_involving_the_given_rows(
    crowded: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tactical, "CROWDED", crowded)
    rng = np.random.default_rng(5)
    n = 400
    p = PlaneTracks.of(
        rng.uniform(0, 100_000, n), rng.uniform(0, 100_000, n), rng.uniform(0, 2_000, n),
        rng.uniform(-200, 200, n), rng.uniform(-200, 200, n), rng.uniform(-5, 5, n),
        (rng.choice([2_000.0, 5_000.0], n), 300.0, rng.choice([60.0, 300.0], n)), rng.integers(0, 3, n),
    )  # fmt: skip
    full = detect_plane(p)
    rows = rng.choice(n, 37, replace=False)
    part = detect_plane(p, only=rows)
    wanted = {(a, b) for a, b in zip(full.a.tolist(), full.b.tolist(), strict=True) if a in rows or b in rows}
    assert len(wanted) > 5
    assert set(zip(part.a.tolist(), part.b.tolist(), strict=True)) == wanted


# --- the broad phase against a brute-force overlap test ---------------------------------


def brute(one: Boxes, two: Boxes) -> set[tuple[int, int]]:
    return {
        (i, j)
        for i in range(len(one))
        for j in range(len(two))
        if one.x_lo[i] <= two.x_hi[j] and two.x_lo[j] <= one.x_hi[i]
        and one.y_lo[i] <= two.y_hi[j] and two.y_lo[j] <= one.y_hi[i]
        and one.z_lo[i] <= two.z_hi[j] and two.z_lo[j] <= one.z_hi[i]
    }  # fmt: skip


def random_boxes(rng: np.random.Generator, n: int, side: float, size: float) -> Boxes:
    lo = rng.uniform(0, side, (3, n)).round(0)
    hi = lo + rng.uniform(0, size, (3, n)).round(0) * rng.integers(0, 2, (3, n))  # some flat, some points
    return Boxes(lo[0], lo[1], lo[2], hi[0], hi[1], hi[2])


@pytest.mark.parametrize(
    ("cell", "layer"), [(None, None), (3.0, None), (50.0, 7.0), (1_000.0, 1e9), (40.0, 1e9)]
)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_overlapping_pairs_is_the_brute_force_overlap(
    cell: float | None, layer: float | None, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 300, 300.0, 150.0)
    a, b = overlapping_pairs(boxes, cell, layer)
    got = list(zip(a.tolist(), b.tolist(), strict=True))
    assert len(got) == len(set(got))  # each pair once
    expected = {(i, j) for i, j in brute(boxes, boxes) if i < j}
    assert set(got) == expected and len(expected) > 50
    other = random_boxes(rng, 120, 300.0, 150.0)
    a, b = overlapping_pairs_between(boxes, other, cell, layer)
    got = list(zip(a.tolist(), b.tolist(), strict=True))
    assert len(got) == len(set(got)) and set(got) == brute(boxes, other)


def test_grid_stays_coarse_enough_for_boxes_of_very_different_sizes() -> None:
    """A still drone's box (50 m) beside a jet's look-ahead (18 km, 600 m deep): the grid
    suggested for the drones alone would put the big box in millions of cells."""
    rng = np.random.default_rng(9)
    small = random_boxes(rng, 200, 2_000.0, 50.0)
    big = Boxes(*(np.array([v]) for v in (0.0, 0.0, 0.0, 18_000.0, 18_000.0, 600.0)))
    cell, layer = broadphase._suggested([small, big], None, None)
    both = Boxes(*(np.concatenate([getattr(small, f), getattr(big, f)]) for f in Boxes.__slots__))
    w, h, d = both.x_hi - both.x_lo, both.y_hi - both.y_lo, both.z_hi - both.z_lo
    assert np.sum((w / cell + 1) * (h / cell + 1) * (d / layer + 1)) <= broadphase.MAX_CELLS_PER_BOX * len(
        both
    )
    a, b = overlapping_pairs_between(big, small)
    assert set(zip(a.tolist(), b.tolist(), strict=True)) == brute(big, small) and len(a) > 50


# --- geographic tracks: projection, velocities, the whole pipeline ---------------------


def test_plane_is_good_to_half_a_percent_within_500_km_for_positions_and_motion() -> None:
    """Distances between tracks and where a track will be (its velocity turned by the
    grid's convergence with north) against pyproj's geodesics on WGS84."""
    rng = np.random.default_rng(11)
    for lat0 in (0.0, 45.0, 65.0):
        proj = LocalProjection.at(10.0, lat0)
        n = 400
        # points up to 500 km from the centre, in every direction
        az, dist = rng.uniform(-180, 180, n), rng.uniform(0, 500_000, n)
        lon, lat, _ = GEOD.fwd(np.full(n, 10.0), np.full(n, lat0), az, dist)
        x, y = proj.forward(lon, lat)
        # pairs 1 to 100 km apart
        az2, sep = rng.uniform(-180, 180, n), rng.uniform(1_000, 100_000, n)
        lon2, lat2, _ = GEOD.fwd(lon, lat, az2, sep)
        x2, y2 = proj.forward(lon2, lat2)
        assert np.max(np.abs(np.hypot(x2 - x, y2 - y) / sep - 1)) < 0.005
        # motion: 250 m/s for 300 s along the track, against the geodesic from the point
        trk = rng.uniform(0, 360, n)
        vx, vy = plane_velocity(proj, lon, lat, x, y, np.full(n, 250.0), trk)
        lon3, lat3, _ = GEOD.fwd(lon, lat, trk, np.full(n, 75_000.0))
        x3, y3 = proj.forward(lon3, lat3)
        miss = np.hypot(x + vx * 300 - x3, y + vy * 300 - y3)
        assert np.max(miss / 75_000) < 0.005
        # away from the equator, an unturned velocity (grid north for true north) is far worse
        east, north = 250 * np.sin(np.radians(trk)), 250 * np.cos(np.radians(trk))
        naive = np.hypot(x + east * 300 - x3, y + north * 300 - y3)
        assert lat0 == 0.0 or np.max(naive / 75_000) > 0.02


def agreement_tracks(rng: np.random.Generator, n: int, lat0: float, lon0: float, side_m: float) -> Tracks:
    kinds = rng.choice(["crewed_flight", "uas_flight", "exercise"], n)
    gs = np.where(kinds == "uas_flight", rng.uniform(0, 25, n), rng.uniform(60, 250, n))
    lon, lat, _ = GEOD.fwd(np.full(n, lon0), np.full(n, lat0), rng.uniform(-180, 180, n),
                           np.sqrt(rng.uniform(0, 1, n)) * side_m)  # fmt: skip
    return Tracks(
        tuple(f"t{i}" for i in range(n)),
        tuple(rng.choice(["north", "south", "drones"], n).tolist()),
        tuple(kinds.tolist()),
        np.asarray(lat),
        np.asarray(lon),
        np.where(kinds == "uas_flight", rng.uniform(0, 150, n), rng.uniform(0, 3_000, n)),
        gs,
        rng.uniform(0, 360, n),
        rng.uniform(-5, 5, n),
    )


def assert_geographic_matches_reference(tracks: Tracks) -> int:
    agreement = agreements.load()
    proj = projection_for(tracks.lon_deg, tracks.lat_deg)
    got = detect(tracks, agreement, projection=proj)
    parties = sorted(set(tracks.party))
    ref_tracks = []
    for i in range(len(tracks)):
        z = agreement.kinds[tracks.kind[i]].protected_zone
        ref_tracks.append(
            to_plane(proj, float(tracks.lat_deg[i]), float(tracks.lon_deg[i]), float(tracks.alt_m[i]),
                     float(tracks.gs_mps[i]), float(tracks.trk_deg[i]), float(tracks.vs_mps[i]),
                     (z.radius_m, z.half_height_m, z.lookahead_s), parties.index(tracks.party[i]))
        )  # fmt: skip
    inner = set(conflicts(ref_tracks, scale=1 - SLACK))
    outer = set(conflicts(ref_tracks, scale=1 + SLACK))
    pairs = set(zip(got.a.tolist(), got.b.tolist(), strict=True))
    assert inner <= pairs <= outer
    assert all(tracks.party[a] != tracks.party[b] for a, b in pairs)
    return len(pairs)


@pytest.mark.parametrize(("lat0", "lon0", "side_m"), [(46.8, 8.2, 60_000.0), (-33.0, 179.9, 300_000.0)])
def test_geographic_snapshot_matches_the_reference_with_the_agreement_zones(
    lat0: float, lon0: float, side_m: float
) -> None:
    tracks = agreement_tracks(np.random.default_rng(8), 500, lat0, lon0, side_m)
    assert assert_geographic_matches_reference(tracks) > 20


@settings(max_examples=40, deadline=None)
@given(
    st.floats(-75, 75),
    st.floats(-180, 180),
    st.sampled_from([5_000.0, 50_000.0, 400_000.0]),
    st.integers(2, 150),
    st.integers(0, 2**32 - 1),
)
def test_random_geographic_traffic_matches_the_reference(
    lat0: float, lon0: float, side_m: float, n: int, seed: int
) -> None:
    assert_geographic_matches_reference(agreement_tracks(np.random.default_rng(seed), n, lat0, lon0, side_m))


def test_track_north_across_the_whole_picture_keeps_its_heading() -> None:
    """450 km east of the centre at 50°N grid north is ~4.8° off true north: an aircraft
    flying true north at one 8 km ahead must meet it, not pass it by 670 m (R = 300 m)."""
    proj = LocalProjection.at(10.0, 50.0)
    lon_e, lat_e, _ = GEOD.fwd(10.0, 50.0, 90.0, 450_000.0)
    lon_n, lat_n, _ = GEOD.fwd(lon_e, lat_e, 0.0, 8_000.0)
    lon_w, lat_w, _ = GEOD.fwd(10.0, 50.0, -90.0, 450_000.0)
    tracks = Tracks(
        ("south", "north", "far"), ("p", "q", "r"), ("crewed_flight",) * 3,
        np.array([lat_e, lat_n, lat_w]), np.array([lon_e, lon_n, lon_w]),
        np.full(3, 1000.0), np.array([200.0, 0.0, 0.0]), np.zeros(3), np.zeros(3),
    )  # fmt: skip
    zone = ProtectedZone(300.0, 300.0, 300.0)
    got = list(detect(tracks, agreements.load(), zone=zone, projection=proj).rows(tracks.track_id))
    assert len(got) == 1 and got[0]["a"] == "south" and got[0]["b"] == "north"
    assert got[0]["t_cpa_s"] == pytest.approx(40.0, rel=0.005)
    assert got[0]["d_cpa_m"] < 5.0
