"""`detect` and `all_conflicts` against a slow, obvious reference.

The reference measures each volume pair on its own: both outlines projected with
pyproj into a WGS84 azimuthal equidistant projection centred midway between them,
circles drawn as 256-gon polygons, plain interval gaps for altitude and time. The
two methods differ by projection and polygonisation error (centimetres here), so
examples where a horizontal distance is within 0.5 m of its buffer are rejected.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta

import pytest
import shapely
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pyproj import Geod, Proj

from deconflict import agreements
from deconflict.detect.strategic import all_conflicts, detect
from deconflict.model import Agreement, Circle, Filing, KindRules, Polygon, State, Volume4D
from deconflict.model.filing import FilingType, make_ovn

GEOD = Geod(ellps="WGS84")
T0 = datetime(2030, 6, 1, tzinfo=UTC)
KINDS = ("k0", "k1", "k2")
OWNERS = ("north", "south", "drones")
TOLERANCE_M = 0.5


# --- random filings, drawn in a plane about a random base point -----------------------


@st.composite
def outlines(draw: st.DrawFn, proj: Proj) -> Circle | Polygon:
    cx = draw(st.floats(-6_000, 6_000))
    cy = draw(st.floats(-6_000, 6_000))
    size = draw(st.floats(20, 2_000))
    if draw(st.booleans()):
        lon, lat = proj(cx, cy, inverse=True)
        return Circle(float(lon), float(lat), size)
    n = draw(st.integers(3, 9))
    star = draw(st.booleans())  # concave (random radii) or convex (one radius)
    pts = []
    for i in range(n):
        angle = 2 * math.pi * (i + draw(st.floats(0.0, 0.8))) / n
        r = size * (draw(st.floats(0.3, 1.0)) if star else 1.0)
        lon, lat = proj(cx + r * math.cos(angle), cy + r * math.sin(angle), inverse=True)
        pts.append((float(lon), float(lat)))
    return Polygon(tuple(pts))


@st.composite
def volumes(draw: st.DrawFn, proj: Proj) -> Volume4D:
    lo = draw(st.integers(0, 400))
    start = draw(st.integers(0, 3_600))
    return Volume4D(
        draw(outlines(proj)),
        float(lo),
        float(lo + draw(st.integers(1, 200))),
        T0 + timedelta(seconds=start),
        T0 + timedelta(seconds=start + draw(st.integers(1, 1_800))),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Filing], Agreement]:
    lon0 = draw(st.floats(-170, 170))
    lat0 = draw(st.floats(-75, 75))
    proj = Proj(proj="aeqd", lat_0=lat0, lon_0=lon0, ellps="WGS84")
    filings = []
    for i in range(draw(st.integers(2, 6))):
        vols = draw(st.lists(volumes(proj), min_size=1, max_size=3))
        filings.append(
            Filing(
                id=f"f{i}",
                type=FilingType.INTENT,
                owner=draw(st.sampled_from(OWNERS)),
                kind=draw(st.sampled_from(KINDS)),
                volumes=tuple(vols),
                state=draw(st.sampled_from([State.ACCEPTED] * 5 + [State.ENDED])),
                priority=10,
                version=1,
                ovn=make_ovn(f"f{i}", 1, T0),
                created_at=T0,
                updated_at=T0,
                notice_s=0.0,
                late=False,
            )
        )
    buffers = st.one_of(st.just(0.0), st.integers(0, 3_000).map(float))
    kinds = {
        k: KindRules(
            k,
            0.0,
            draw(buffers),
            draw(st.sampled_from([0.0, 10.0, 50.0])),
            draw(st.sampled_from([0.0, 1.0, 60.0, 600.0])),
            10,
        )
        for k in KINDS
    }
    return filings, dataclasses.replace(agreements.load(), kinds=kinds)


# --- the reference ------------------------------------------------------------------------


def _centre(o: Circle | Polygon) -> tuple[float, float]:
    if isinstance(o, Circle):
        return o.lon, o.lat
    return (
        sum(p[0] for p in o.ring) / len(o.ring),
        sum(p[1] for p in o.ring) / len(o.ring),
    )


def _shape(o: Circle | Polygon, proj: Proj) -> shapely.Geometry:
    if isinstance(o, Circle):
        x, y = proj(o.lon, o.lat)
        return shapely.Point(x, y).buffer(o.radius_m, quad_segs=64)
    return shapely.Polygon([proj(lon, lat) for lon, lat in o.ring])


def reference_distance_m(a: Circle | Polygon, b: Circle | Polygon) -> float:
    (lon1, lat1), (lon2, lat2) = _centre(a), _centre(b)
    az, _, dist = GEOD.inv(lon1, lat1, lon2, lat2)
    lon0, lat0, _ = GEOD.fwd(lon1, lat1, az, dist / 2)
    proj = Proj(proj="aeqd", lat_0=lat0, lon_0=lon0, ellps="WGS84")
    return float(_shape(a, proj).distance(_shape(b, proj)))


def _gap(lo1: float, hi1: float, lo2: float, hi2: float) -> float:
    return max(0.0, lo2 - hi1, lo1 - hi2)


def reference(a: Filing, b: Filing, agreement: Agreement) -> tuple[float, float, float] | None:
    """(horizontal, vertical, time) minima over offending volume pairs, or None."""
    sep = agreement.separation(a.kind, b.kind)
    hs, vs, ts = [], [], []
    for va in a.volumes:
        for vb in b.volumes:
            v = _gap(va.altitude_lower_m, va.altitude_upper_m, vb.altitude_lower_m, vb.altitude_upper_m)
            t = _gap(
                va.time_start.timestamp(),
                va.time_end.timestamp(),
                vb.time_start.timestamp(),
                vb.time_end.timestamp(),
            )
            if v > sep.vertical_m or t > sep.time_s:
                continue
            h = reference_distance_m(va.outline, vb.outline)
            assume(abs(h - sep.horizontal_m) > TOLERANCE_M)
            if h <= sep.horizontal_m:
                hs.append(h)
                vs.append(v)
                ts.append(t)
    if not hs:
        return None
    return min(hs), min(vs), min(ts)


def _eligible(a: Filing, b: Filing) -> bool:
    return a.owner != b.owner and a.live and b.live and a.id != b.id


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


@PROPERTY
@given(scenarios())
def test_detect_matches_the_reference(scenario: tuple[list[Filing], Agreement]) -> None:
    filings, agreement = scenario
    for subject in filings:
        expected = {
            other.id: ref
            for other in filings
            if _eligible(subject, other) and (ref := reference(subject, other, agreement)) is not None
        }
        found = detect(subject, filings, agreement)
        assert [f.b.id for f in found] == sorted(expected)
        for f in found:
            h, v, t = expected[f.b.id]
            assert f.a == subject.ref()
            assert f.separation == agreement.separation(subject.kind, f.b.kind)
            # the 256-gon is inside the circle: the reference is at most r·7.5e-5 long
            assert f.horizontal_separation_m == pytest.approx(h, abs=0.3)
            assert f.vertical_separation_m == v
            assert f.time_separation_s == t


@PROPERTY
@given(scenarios())
def test_all_conflicts_matches_the_reference(scenario: tuple[list[Filing], Agreement]) -> None:
    filings, agreement = scenario
    expected = {
        (a.id, b.id)
        for i, a in enumerate(filings)
        for b in filings[i + 1 :]
        if _eligible(a, b) and reference(a, b, agreement) is not None
    }
    found = all_conflicts(filings, agreement)
    assert [(f.a.id, f.b.id) for f in found] == sorted(expected)
