"""Strategic detection: buffer arithmetic at the boundaries, skips, and a worked example."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from deconflict import agreements
from deconflict.detect.strategic import PreparedCache, all_conflicts, compare, detect
from deconflict.geometry.outline import horizontal_distance_m
from deconflict.geometry.projection import LocalProjection
from deconflict.model import Agreement, Circle, Filing, Polygon, Separation, State, Volume4D
from deconflict.model.filing import FilingType, make_ovn

T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
LON0, LAT0 = 35.0, 33.0
ZERO = Separation(0.0, 0.0, 0.0)


def square(side_m: float, dx_m: float = 0.0, dy_m: float = 0.0, lon0: float = LON0) -> Polygon:
    plane = LocalProjection(lon0, LAT0)
    lon, lat = plane.inverse(
        np.array([0.0, side_m, side_m, 0.0]) + dx_m, np.array([0.0, 0.0, side_m, side_m]) + dy_m
    )
    return Polygon(tuple(zip(lon.tolist(), lat.tolist(), strict=True)))


def vol(
    outline: Circle | Polygon,
    lo: float = 0.0,
    hi: float = 100.0,
    start_s: float = 0.0,
    end_s: float = 3600.0,
) -> Volume4D:
    return Volume4D(outline, lo, hi, T0 + timedelta(seconds=start_s), T0 + timedelta(seconds=end_s))


def filing(
    fid: str,
    owner: str,
    volumes: Sequence[Volume4D],
    *,
    kind: str = "uas_flight",
    state: State = State.ACCEPTED,
    version: int = 1,
) -> Filing:
    return Filing(
        id=fid,
        type=FilingType.INTENT,
        owner=owner,
        kind=kind,
        volumes=tuple(volumes),
        state=state,
        priority=20,
        version=version,
        ovn=make_ovn(fid, version, T0),
        created_at=T0,
        updated_at=T0,
        notice_s=3600.0,
        late=False,
    )


def pair(va: Volume4D, vb: Volume4D, sep: Separation = ZERO) -> bool:
    return compare(filing("a", "north", [va]), filing("b", "south", [vb]), sep) is not None


BASE = square(1_000.0)


# --- horizontal ---------------------------------------------------------------------------


def test_touching_outlines_conflict_with_buffer_0() -> None:
    assert pair(vol(BASE), vol(square(1_000.0, dx_m=1_000.0)))


def test_1_m_apart_horizontally_against_buffers_0_and_2() -> None:
    other = vol(square(1_000.0, dx_m=1_001.0))
    assert not pair(vol(BASE), other, Separation(0.0, 0.0, 0.0))
    assert not pair(vol(BASE), other, Separation(0.9, 0.0, 0.0))
    assert pair(vol(BASE), other, Separation(2.0, 0.0, 0.0))


def test_circles_1_m_apart() -> None:
    lon, lat = LocalProjection(LON0, LAT0).inverse(301.0, 0.0)
    a, b = vol(Circle(LON0, LAT0, 100.0)), vol(Circle(float(lon), float(lat), 200.0))
    assert not pair(a, b)
    assert pair(a, b, Separation(2.0, 0.0, 0.0))


# --- vertical ----------------------------------------------------------------------------


def test_touching_altitude_bands_conflict_with_buffer_0() -> None:
    assert pair(vol(BASE, 0.0, 100.0), vol(BASE, 100.0, 200.0))


def test_1_m_vertical_gap_against_buffers_0_and_2() -> None:
    a, b = vol(BASE, 0.0, 100.0), vol(BASE, 101.0, 200.0)
    assert not pair(a, b, Separation(0.0, 0.0, 0.0))
    assert pair(a, b, Separation(0.0, 2.0, 0.0))
    assert pair(b, a, Separation(0.0, 1.0, 0.0))  # exactly the buffer: touching counts


# --- time -----------------------------------------------------------------------------------


def test_time_windows_that_only_touch_conflict_with_buffer_0() -> None:
    assert pair(vol(BASE, start_s=0.0, end_s=600.0), vol(BASE, start_s=600.0, end_s=1200.0))


def test_1_s_apart_in_time_against_buffers_0_and_2() -> None:
    a, b = vol(BASE, start_s=0.0, end_s=600.0), vol(BASE, start_s=601.0, end_s=1200.0)
    assert not pair(a, b, Separation(0.0, 0.0, 0.0))
    assert pair(a, b, Separation(0.0, 0.0, 2.0))
    assert pair(b, a, Separation(0.0, 0.0, 1.0))


def test_a_microsecond_counts() -> None:
    a = vol(BASE, start_s=0.0, end_s=600.0)
    b = vol(BASE, start_s=600.000001, end_s=1200.0)
    assert not pair(a, b)


def test_all_three_must_be_within_their_buffers() -> None:
    a = vol(BASE, 0.0, 100.0, 0.0, 600.0)
    near_in_space_far_in_time = vol(BASE, 0.0, 100.0, 700.0, 800.0)
    assert not pair(a, near_in_space_far_in_time, Separation(10_000.0, 10_000.0, 99.0))
    assert pair(a, near_in_space_far_in_time, Separation(10_000.0, 10_000.0, 100.0))


# --- detect: kinds, skips, order --------------------------------------------------------


def test_the_larger_buffer_of_the_two_kinds_wins() -> None:
    agreement = agreements.load()
    uas, crewed = agreement.kinds["uas_flight"], agreement.kinds["crewed_flight"]
    assert uas.horizontal_buffer_m < 3_000.0 < crewed.horizontal_buffer_m
    mine = filing("a", "north", [vol(BASE)], kind="uas_flight")
    far = vol(square(1_000.0, dx_m=4_000.0))  # 3 km away, overlapping in altitude and time
    assert detect(mine, [filing("b", "south", [far], kind="uas_flight")], agreement) == []
    found = detect(mine, [filing("c", "south", [far], kind="crewed_flight")], agreement)
    assert [f.b.id for f in found] == ["c"]
    assert found[0].separation == agreement.separation("uas_flight", "crewed_flight")
    assert found[0].separation.horizontal_m == crewed.horizontal_buffer_m
    # and the other way round: the submitter's kind is the larger one
    big = filing("d", "north", [vol(BASE)], kind="crewed_flight")
    assert len(detect(big, [filing("b", "south", [far], kind="uas_flight")], agreement)) == 1


def test_same_owner_ended_and_itself_are_skipped_and_order_is_by_id() -> None:
    agreement = agreements.load()
    mine = filing("m", "north", [vol(BASE)])
    candidates = [
        filing("z", "south", [vol(BASE)]),
        filing("m", "south", [vol(BASE)], version=2),  # same id: itself
        filing("k", "north", [vol(BASE)]),  # same owner
        filing("e", "drones", [vol(BASE)], state=State.ENDED),
        filing("b", "drones", [vol(BASE)], state=State.ACTIVATED),
        filing("c", "shield", [vol(square(1_000.0, dx_m=50_000.0))]),  # far away
    ]
    found = detect(mine, candidates, agreement)
    assert [f.b.id for f in found] == ["b", "z"]
    assert all(f.a == mine.ref() for f in found)
    ended = filing("m", "north", [vol(BASE)], state=State.ENDED)
    assert detect(ended, candidates, agreement) == []


def test_worked_example_window_and_separations() -> None:
    # a has two volumes; b has two; only some pairs offend, under buffers (100 m, 50 m, 300 s)
    sep = Separation(100.0, 50.0, 300.0)
    a = filing(
        "a",
        "north",
        [
            vol(BASE, 0.0, 100.0, 0.0, 1_000.0),
            vol(square(1_000.0, dx_m=20_000.0), 0.0, 100.0, 0.0, 5_000.0),
        ],
    )
    b = filing(
        "b",
        "south",
        [
            # 60 m east of a's first volume, 30 m above it, starting 200 s after it ends
            vol(square(1_000.0, dx_m=1_060.0), 130.0, 200.0, 1_200.0, 2_000.0),
            # overlaps a's first volume in space, altitude and time (500 to 800 s)
            vol(square(500.0, dx_m=250.0, dy_m=250.0), 50.0, 80.0, 500.0, 800.0),
            # far from both in space (50 km)
            vol(square(1_000.0, dx_m=-50_000.0), 0.0, 100.0, 0.0, 5_000.0),
        ],
        version=3,
    )
    found = compare(a, b, sep)
    assert found is not None
    assert found.a == a.ref() and found.b == b.ref() and found.b.version == 3
    # offending pairs: (a0, b0) with the gap 1000..1200 s; (a0, b1) overlapping 500..800 s
    assert found.time_start == T0 + timedelta(seconds=500)
    assert found.time_end == T0 + timedelta(seconds=1_200)
    assert found.horizontal_separation_m == 0.0
    assert found.vertical_separation_m == 0.0
    assert found.time_separation_s == 0.0
    assert found.separation == sep
    # without the overlapping volume, the separations are those of (a0, b0)
    b_only = filing("b", "south", [b.volumes[0], b.volumes[2]], version=4)
    found = compare(a, b_only, sep)
    assert found is not None
    assert found.time_start == T0 + timedelta(seconds=1_000)
    assert found.time_end == T0 + timedelta(seconds=1_200)
    assert found.horizontal_separation_m == pytest.approx(60.0, abs=0.01)
    assert found.vertical_separation_m == 30.0
    assert found.time_separation_s == 200.0
    assert compare(a, b_only, Separation(59.0, 50.0, 300.0)) is None


def test_one_plane_per_pair_is_exact_far_from_the_filing_centre() -> None:
    # a filing with volumes 800 km apart; a candidate 100 m from the eastern one,
    # 400 km from the filing's centre: measured as if alone with it
    west = square(1_000.0, dx_m=-400_000.0)
    east = square(1_000.0, dx_m=400_000.0)
    near = square(1_000.0, dx_m=401_100.0, dy_m=300.0)
    a = filing("a", "north", [vol(west), vol(east)])
    b = filing("b", "south", [vol(near)])
    found = compare(a, b, Separation(150.0, 0.0, 0.0))
    assert found is not None
    assert found.horizontal_separation_m == horizontal_distance_m(east, near)
    assert found.horizontal_separation_m == pytest.approx(100.0, abs=0.5)


def test_cache_gives_the_same_answer_and_is_bounded() -> None:
    agreement = agreements.load()
    mine = filing("m", "north", [vol(BASE)])
    others = [filing(f"o{i}", "south", [vol(square(500.0, dx_m=i * 300.0))]) for i in range(10)]
    cache = PreparedCache(max_entries=5)
    first = detect(mine, others, agreement, cache=cache)
    assert len(cache) == 5
    assert detect(mine, others, agreement, cache=cache) == first == detect(mine, others, agreement)
    # o0..o5 are within uas_flight's 500 m (o5 is 500 m away), o6 (800 m) is not
    assert [f.b.id for f in first] == [f"o{i}" for i in range(6)]


# --- all_conflicts --------------------------------------------------------------------------


def _agreement() -> Agreement:
    return agreements.load().with_buffers(100.0, 10.0, 60.0)


def test_all_conflicts_orders_pairs_and_skips_same_party() -> None:
    fs = [
        filing("0", "north", [vol(BASE)]),
        filing("1", "south", [vol(square(1_000.0, dx_m=1_050.0))]),
        filing("2", "north", [vol(square(1_000.0, dx_m=2_100.0))]),
        filing("3", "drones", [vol(square(1_000.0, dx_m=10_000.0))]),
    ]
    found = all_conflicts(fs, _agreement())
    assert [(f.a.id, f.b.id) for f in found] == [("0", "1"), ("1", "2")]
    same = all_conflicts(fs, _agreement(), same_party=True)
    assert [(f.a.id, f.b.id) for f in same] == [("0", "1"), ("1", "2")]
    fs.append(filing("4", "north", [vol(square(1_000.0, dx_m=3_150.0))]))
    assert [(f.a.id, f.b.id) for f in all_conflicts(fs, _agreement())] == [("0", "1"), ("1", "2")]
    assert [(f.a.id, f.b.id) for f in all_conflicts(fs, _agreement(), same_party=True)] == [
        ("0", "1"),
        ("1", "2"),
        ("2", "4"),
    ]


def test_all_conflicts_across_the_antimeridian() -> None:
    # two volumes about 61 m apart on either side of ±180°, at 60° N
    a = Polygon(((179.999, 60.0), (179.9999, 60.0), (179.9999, 60.001), (179.999, 60.001)))
    b = Polygon(((-179.999, 60.0), (-179.9, 60.0), (-179.9, 60.001), (-179.999, 60.001)))
    gap = horizontal_distance_m(a, b)
    assert 55.0 < gap < 65.0
    fs = [filing("a", "north", [vol(a)]), filing("b", "south", [vol(b)])]
    assert all_conflicts(fs, agreements.load().with_buffers(horizontal_m=gap + 1)) != []
    assert all_conflicts(fs, agreements.load().with_buffers(horizontal_m=gap - 1)) == []


def test_all_conflicts_equals_detect_on_every_filing() -> None:
    rng = np.random.default_rng(3)
    agreement = agreements.load().with_buffers(300.0, 20.0, 120.0)
    parties = ["north", "south", "drones"]
    fs = [
        filing(
            f"f{i:03d}",
            parties[i % 3],
            [
                vol(
                    square(float(rng.uniform(100, 2_000)), *rng.uniform(-8_000, 8_000, 2)),
                    float(lo := rng.uniform(0, 300)),
                    float(lo + rng.uniform(10, 300)),
                    float(st := rng.uniform(0, 5_000)),
                    float(st + rng.uniform(60, 3_000)),
                )
            ],
        )
        for i in range(150)
    ]
    pairs = {(f.a.id, f.b.id) for f in all_conflicts(fs, agreement)}
    via_detect = {tuple(sorted((f.a.id, f.b.id))) for g in fs for f in detect(g, fs, agreement)}
    assert pairs == via_detect
    assert len(pairs) > 20
