"""The hotline's pure rules: read-back comparison (properties), replies, deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deconflict.errors import InvalidInput
from deconflict.hotline import catalogue, rules
from deconflict.hotline.catalogue import FieldType
from deconflict.hotline.fields import check_value
from deconflict.model.agreement import Deadlines

CAT = catalogue.default()
T = datetime(2030, 6, 1, 12, tzinfo=UTC)

lon = st.floats(-179.0, 179.0)
lat = st.floats(-80.0, 80.0)
alt = st.floats(-500.0, 20_000.0)


@st.composite
def read_back_fields(draw: st.DrawFn) -> dict[str, Any]:
    lower = draw(alt)
    start = T + timedelta(seconds=draw(st.integers(0, 10**6)))
    area = {
        "type": "Point",
        "coordinates": [draw(lon), draw(lat)],
        "radius_m": draw(st.floats(1.0, 50_000.0)),
    }
    raw = {
        "area": area,
        "time_window": {
            "start": start.isoformat(),
            "end": (start + timedelta(seconds=draw(st.integers(1, 86_400)))).isoformat(),
        },
        "altitude_band": {"lower_m": lower, "upper_m": lower + draw(st.floats(0.0, 10_000.0))},
    }
    return {name: check_value(FieldType(name), value, name) for name, value in raw.items()}


@given(read_back_fields())
def test_a_faithful_read_back_has_no_mismatch(original: dict[str, Any]) -> None:
    assert rules.compare_read_back(original, original) == []


@given(read_back_fields(), st.floats(1.0, 5_000.0), st.sampled_from(["lower_m", "upper_m"]))
def test_a_wrong_altitude_is_the_only_mismatch(original: dict[str, Any], off: float, part: str) -> None:
    band = dict(original["altitude_band"])
    band[part] += off if part == "upper_m" else -off
    wrong = {**original, "altitude_band": band}
    (m,) = rules.compare_read_back(original, wrong)
    assert (m.field, m.original, m.read_back) == (
        f"altitude_band.{part}",
        original["altitude_band"][part],
        band[part],
    )


@given(read_back_fields(), st.integers(2, 3600))
def test_a_shifted_time_window_is_flagged_at_both_ends(original: dict[str, Any], shift_s: int) -> None:
    window = original["time_window"]
    moved = {
        part: (
            datetime.fromisoformat(window[part].replace("Z", "+00:00")) + timedelta(seconds=shift_s)
        ).isoformat()
        for part in ("start", "end")
    }
    wrong = {**original, "time_window": check_value(FieldType.TIME_WINDOW, moved, "time_window")}
    assert [m.field for m in rules.compare_read_back(original, wrong)] == [
        "time_window.start",
        "time_window.end",
    ]


def test_area_mismatches_name_what_differs() -> None:
    a = check_value(FieldType.AREA, {"type": "Point", "coordinates": [36.0, 35.0], "radius_m": 1000}, "area")
    b = check_value(
        FieldType.AREA, {"type": "Point", "coordinates": [36.0, 35.001], "radius_m": 1000.4}, "area"
    )
    ring = [[36.0, 35.0], [36.1, 35.0], [36.1, 35.1], [36.0, 35.0]]
    c = check_value(FieldType.AREA, {"type": "Polygon", "coordinates": [ring]}, "area")
    assert [m.field for m in rules.compare_read_back({"area": a}, {"area": b})] == ["area.coordinates"]
    assert [m.field for m in rules.compare_read_back({"area": a}, {"area": c})] == ["area.type"]
    assert rules.compare_read_back({"area": c}, {"area": c}) == []
    with pytest.raises(InvalidInput) as info:
        rules.compare_read_back({"track": "x"}, {"area": a})
    assert info.value.errors[0].field == "fields.message"


def test_replies_and_deadlines() -> None:
    query = CAT.codes["IDENTITY_QUERY"]
    rules.check_reply(query, "UNKNOWN")
    with pytest.raises(InvalidInput) as info:
        rules.check_reply(query, "ROGER")
    assert (info.value.errors[0].field, info.value.errors[0].rule) == (
        "reply",
        "must be one of MINE, NOT_MINE, UNKNOWN for IDENTITY_QUERY",
    )
    assert rules.deadlines(query) == Deadlines(15, 60)
    assert rules.deadlines(query, {"IDENTITY_QUERY": Deadlines(5, 20)}) == Deadlines(5, 20)
    assert rules.due(T, None) is None and rules.due(T, 1.5) == T + timedelta(seconds=1.5)
