"""The API's JSON writer (`wire.dumps`, orjson in one pass) against the plain one it
replaced: `orjson.dumps(plain(value))`, where `plain` walks the value in Python."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deconflict.api.wire import dumps, plain


class Colour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Mode(enum.Enum):
    ON = "on"
    OFF = 0


zones = st.sampled_from([UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=-9, minutes=-30))])
times = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=zones)
leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | times
    | st.sampled_from([Colour.RED, Level.HIGH, Mode.ON, Mode.OFF])
)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=25,
)


@given(values)
def test_dumps_writes_what_plain_then_orjson_writes(value: object) -> None:
    assert dumps(value) == orjson.dumps(plain(value))


def test_times_are_rfc3339_utc_with_a_z() -> None:
    at = datetime(2026, 11, 26, 21, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=3)))
    assert dumps({"at": at, "state": Colour.RED}) == b'{"at":"2026-11-26T18:00:00.250000Z","state":"red"}'


def test_what_is_not_json_is_refused_as_before() -> None:
    for bad in ({1, 2}, {"a": object()}):
        with pytest.raises(TypeError):
            orjson.dumps(plain(bad))
        with pytest.raises(TypeError):
            dumps(bad)
