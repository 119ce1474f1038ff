"""Canonical log entries: stable bytes, UTC times, known kinds, and a strict decoder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deconflict.errors import InvalidInput
from deconflict.ledger.canonical import JSONValue
from deconflict.ledger.entries import KINDS, Kind, decode_entry, entry_bytes, format_time, parse_time

AT = datetime(2030, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_known_answer_bytes() -> None:
    body: dict[str, JSONValue] = {
        "version": 2,
        "filing": "f-1",
        "party": "Zeta",
        "buffer_m": 150.5,
        "é": None,
    }
    assert entry_bytes(Kind.FILING_CREATED, AT, body) == (
        b'{"at":"2030-06-01T12:00:00.123456Z",'
        b'"body":{"buffer_m":150.5,"filing":"f-1","party":"Zeta","version":2,"\xc3\xa9":null},'
        b'"kind":"filing_created"}'
    )


def test_whole_seconds_keep_six_digits_and_early_years_four() -> None:
    assert format_time(datetime(2030, 6, 1, tzinfo=UTC)) == "2030-06-01T00:00:00.000000Z"
    assert format_time(datetime(5, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "0005-01-02T03:04:05.000006Z"


def test_kinds_are_the_ones_issue_5_lists() -> None:
    assert KINDS == {
        "filing_created", "filing_versioned", "filing_withdrawn", "state_changed",
        "conflict_opened", "conflict_closed", "message_sent", "message_delivered",
        "message_replied", "escalated", "party_down", "party_up", "party_added",
        "agreement_changed",
        "party_key_added", "party_key_revoked",  # part 4: party signatures
        "party_token_rotated",
        "tactical_alert_opened", "tactical_alert_closed",  # issue 4: the live picture's alerts
    }  # fmt: skip
    assert entry_bytes("party_down", AT, {}) == entry_bytes(Kind.PARTY_DOWN, AT, {})


def test_any_zero_offset_zone_gives_the_same_bytes() -> None:
    other = AT.replace(tzinfo=timezone(timedelta(0), "Z"))
    assert entry_bytes("escalated", other, {}) == entry_bytes("escalated", AT, {})


@pytest.mark.parametrize(
    ("kind", "at", "body", "field", "rule"),
    [
        ("filing_created", AT.replace(tzinfo=None), {}, "at", "naive"),
        ("filing_created", AT.replace(tzinfo=timezone(timedelta(hours=2))), {}, "at", "got offset +0200"),
        ("filing_deleted", AT, {}, "kind", "must be one of"),
        ("", AT, {}, "kind", "must be one of"),
        ("filing_created", AT, {"x": {1, 2}}, "body", "set is not a JSON value"),
        ("filing_created", AT, {"x": float("nan")}, "body", "not allowed in JSON"),
        ("filing_created", AT, {"x": 2**60}, "body", "beyond +/-2**53"),
        ("filing_created", AT, [], "body", "must be a JSON object"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    kind: str, at: datetime, body: object, field: str, rule: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        entry_bytes(kind, at, body)  # type: ignore[arg-type]
    assert [(e.field, rule in e.rule) for e in info.value.errors] == [(field, True)]


def test_decode_returns_what_was_encoded() -> None:
    entry = decode_entry(entry_bytes("message_replied", AT, {"reply": "WILCO", "n": [1, 2.5]}))
    assert (entry.kind, entry.at, dict(entry.body)) == (
        Kind.MESSAGE_REPLIED,
        AT,
        {"reply": "WILCO", "n": [1, 2.5]},
    )
    with pytest.raises(TypeError):
        entry.body["reply"] = "UNABLE"  # type: ignore[index]


@pytest.mark.parametrize(
    ("data", "field", "rule"),
    [
        (b'{"at":"2030-06-01T12:00:00.123456Z","body":{},"kind":"escalated"} ', "", "canonical"),
        (b'{"kind":"escalated","at":"2030-06-01T12:00:00.123456Z","body":{}}', "", "canonical"),
        (b'{"at":"2030-06-01T12:00:00.123456Z","body":{"a":1.0},"kind":"escalated"}', "", "canonical"),
        (b'{"at":"2030-06-01T12:00:00.123456Z","body":{},"body":{},"kind":"escalated"}', "body", "twice"),
        (b'{"at":"2030-06-01T12:00:00.123456Z","body":{},"kind":"escalated","x":1}', "x", "not a field"),
        (b'{"at":"2030-06-01T12:00:00.123456Z","body":{}}', "kind", "is required"),
        (b'{"at":"2030-06-01T12:00:00Z","body":{},"kind":"escalated"}', "at", "YYYY-MM-DDTHH:MM:SS.ffffffZ"),
        (b'{"at":"2030-06-01T12:00:00.123456+00:00","body":{},"kind":"escalated"}', "at", "RFC 3339"),
        (b'{"at":"2030-02-30T12:00:00.000000Z","body":{},"kind":"escalated"}', "at", "not a valid date"),
        (b'{"at":"2030-06-01T12:00:00.123456Z","body":[],"kind":"escalated"}', "body", "JSON object"),
        (b'{"at":"2030-06-01T12:00:00.123456Z","body":{},"kind":"nope"}', "kind", "must be one of"),
        (b"[]", "", "JSON object"),
        (b"\xff", "", "not UTF-8 JSON"),
    ],
)
def test_decode_refuses_anything_but_canonical_entries(data: bytes, field: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as info:
        decode_entry(data)
    assert [(e.field, rule in e.rule) for e in info.value.errors] == [(field, True)]


def test_parse_time_inverts_format_time() -> None:
    assert parse_time("2030-06-01T12:00:00.123456Z") == AT


finite = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | finite | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@given(
    kind=st.sampled_from(sorted(KINDS)),
    at=st.datetimes(timezones=st.just(UTC)),
    body=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
)
def test_encode_decode_encode_is_stable(kind: str, at: datetime, body: dict[str, JSONValue]) -> None:
    data = entry_bytes(kind, at, body)
    entry = decode_entry(data)
    assert (entry.kind, entry.at) == (kind, at)
    assert entry_bytes(entry.kind, entry.at, entry.body) == data


def test_a_large_double_written_without_exponent_decodes() -> None:
    data = entry_bytes("state_changed", AT, {"x": 9007199254740994.0, "y": 1e21})
    assert b'"x":9007199254740994,"y":1e+21' in data
    assert decode_entry(data).body == {"x": 9007199254740994.0, "y": 1e21}
