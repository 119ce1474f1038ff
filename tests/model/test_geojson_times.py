"""`format_time` (the API's, the streams' and the hotline's RFC 3339 form) against the
plain formula it memoises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from deconflict.model import geojson
from deconflict.model.geojson import format_time, parse_time

ZONES = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-14 * 60, 14 * 60)
) | st.just(UTC)
TIMES = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9998, 1, 1), timezones=ZONES)


def reference(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@given(st.lists(TIMES, min_size=1, max_size=50))
def test_each_time_formats_as_the_formula_gives_it_again_and_again(values: list[datetime]) -> None:
    for value in values + values:  # the second round comes from the memo
        text = format_time(value)
        assert text == reference(value)
        assert parse_time(text, "t") == value


def test_one_instant_in_any_zone_formats_alike() -> None:
    utc = datetime(2026, 11, 26, 10, 0, 0, 250_000, tzinfo=UTC)
    east = utc.astimezone(timezone(timedelta(hours=3)))
    assert format_time(east) == "2026-11-26T10:00:00.250000Z"
    assert format_time(utc) == format_time(east)
    assert format_time(datetime(2026, 11, 26, tzinfo=UTC)) == "2026-11-26T00:00:00Z"


def test_the_memo_stays_bounded_and_right_past_its_size() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    many = [start + timedelta(microseconds=i) for i in range(geojson._FORMATTED_KEPT * 2 + 7)]
    assert [format_time(v) for v in many] == [reference(v) for v in many]
    assert len(geojson._FORMATTED) <= geojson._FORMATTED_KEPT
    assert [format_time(v) for v in many[:10]] == [reference(v) for v in many[:10]]
