"""Filing and finding documents round-trip exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deconflict.model import (
    Circle,
    Filing,
    FilingRef,
    FilingType,
    Finding,
    Polygon,
    Separation,
    State,
    Volume4D,
)
from deconflict.store.codec import (
    decode_filing,
    decode_finding,
    encode_filing,
    encode_finding,
    from_us,
    to_us,
)

texts = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=20)
lons = st.floats(-180.0, 180.0)
lats = st.floats(-90.0, 90.0)
utc_zones = st.sampled_from([UTC, timezone(timedelta(0))])
times = st.datetimes(datetime(1950, 1, 1), datetime(2200, 1, 1), timezones=utc_zones)
circles = st.builds(Circle, lons, lats, st.floats(0.001, 1e7))
polygons = st.lists(st.tuples(lons, lats), min_size=3, max_size=12, unique=True).map(
    lambda ring: Polygon(tuple(ring))
)


@st.composite
def volumes(draw: st.DrawFn) -> Volume4D:
    lo = draw(st.floats(-1000.0, 99_999.0))
    hi = draw(st.floats(lo, 100_000.0).filter(lambda h: h > lo))
    start = draw(times)
    end = start + draw(st.timedeltas(timedelta(microseconds=1), timedelta(days=30)))
    return Volume4D(draw(st.one_of(circles, polygons)), lo, hi, start, end)


filings = st.builds(
    Filing,
    id=texts,
    type=st.sampled_from(FilingType),
    owner=texts,
    kind=texts,
    volumes=st.lists(volumes(), min_size=1, max_size=4).map(tuple),
    state=st.sampled_from(State),
    priority=st.integers(0, 1000),
    version=st.integers(1, 2**40),
    ovn=texts,
    created_at=times,
    updated_at=times,
    notice_s=st.floats(allow_nan=False, allow_infinity=False),
    late=st.booleans(),
)
refs = st.builds(FilingRef, texts, st.sampled_from(FilingType), texts, texts, st.integers(1, 999), texts)
findings = st.builds(
    Finding,
    a=refs,
    b=refs,
    time_start=times,
    time_end=times,
    horizontal_separation_m=st.floats(0.0, 1e7),
    vertical_separation_m=st.floats(0.0, 1e5),
    time_separation_s=st.floats(0.0, 1e6),
    separation=st.builds(Separation, st.floats(0.0, 1e5), st.floats(0.0, 1e4), st.floats(0.0, 1e4)),
)


@settings(max_examples=300)
@given(filings)
def test_filing_round_trip_is_exact(filing: Filing) -> None:
    doc = encode_filing(filing)
    back = decode_filing(doc)
    assert back == filing
    # field by field, including float bits and the instant of every time
    assert [v.outline for v in back.volumes] == [v.outline for v in filing.volumes]
    assert back.notice_s.hex() == float(filing.notice_s).hex()
    assert all(v.time_start.utcoffset() == timedelta(0) for v in back.volumes)
    assert encode_filing(back) == doc


@settings(max_examples=200)
@given(findings)
def test_finding_round_trip_is_exact(finding: Finding) -> None:
    doc = encode_finding(finding)
    assert decode_finding(doc) == finding
    assert decode_finding(doc.decode()) == finding  # a TEXT column gives str


@given(times)
def test_microsecond_times_are_exact(t: datetime) -> None:
    us = to_us(t)
    assert isinstance(us, int)
    assert from_us(us) == t
    assert to_us(t + timedelta(microseconds=1)) == us + 1


def test_document_is_compact_json() -> None:
    t = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    f = Filing(
        "f1",
        FilingType.INTENT,
        "alpha",
        "uas_flight",
        (Volume4D(Circle(35.9, 35.4, 500.0), 0.0, 120.0, t, t + timedelta(hours=1)),),
        State.ACCEPTED,
        10,
        1,
        "ovn1",
        t,
        t,
        3600.0,
        False,
    )
    doc = encode_filing(f)
    assert b" " not in doc and b"\n" not in doc
    parsed = orjson.loads(doc)
    assert parsed["vols"][0][0] == {"c": [35.9, 35.4, 500.0]}
    assert parsed["vols"][0][3] == 1740830400000000  # 2025-03-01T12:00Z in microseconds


def test_naive_times_and_foreign_documents_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_us(datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="format"):
        decode_filing(b'{"f": 99}')
