"""Every validation rule at the edge: a 4xx RFC 9457 problem naming the field and
the rule, and nothing stored changes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from conftest import Live, at, circle, polygon

BOX = [(35.0, 33.0), (35.05, 33.0), (35.05, 33.05), (35.0, 33.05)]


def body(*volumes: dict[str, Any], kind: str = "crewed_flight") -> dict[str, Any]:
    return {"kind": kind, "volumes": list(volumes) or [polygon(BOX)]}


def set_prop(feature: dict[str, Any], **props: Any) -> dict[str, Any]:
    f = copy.deepcopy(feature)
    f["properties"].update(props)
    return f


def set_coords(feature: dict[str, Any], coords: Any) -> dict[str, Any]:
    f = copy.deepcopy(feature)
    f["geometry"]["coordinates"] = coords
    return f


BAD: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "two distinct vertices",
        body(polygon([(35.0, 33.0), (35.1, 33.0), (35.0, 33.0)])),
        "volumes[0].geometry.coordinates[0]",
        "at least 3 distinct vertices",
    ),
    (
        "self-intersecting bow tie",
        body(polygon([(35.0, 33.0), (35.1, 33.1), (35.1, 33.0), (35.0, 33.1)])),
        "volumes[0].geometry.coordinates",
        "self-intersect",
    ),
    ("latitude 91", body(circle(35.0, 91.0, 100)), "volumes[0].geometry.coordinates[1]", "latitude"),
    ("latitude -90.5", body(circle(35.0, -90.5, 100)), "volumes[0].geometry.coordinates[1]", "latitude"),
    (
        "longitude 181 in a polygon",
        body(polygon([(181.0, 33.0), (35.1, 33.0), (35.1, 33.1)])),
        "volumes[0].geometry.coordinates[0][0][0]",
        "longitude",
    ),
    (
        "polygon across the antimeridian",
        body(polygon([(179.9, 10.0), (-179.9, 10.0), (-179.9, 10.1), (179.9, 10.1)])),
        "volumes[0].geometry",
        "antimeridian",
    ),
    (
        "circle across the antimeridian",
        body(circle(179.999, 10.0, 5000)),
        "volumes[0].geometry",
        "antimeridian",
    ),
    ("radius 0", body(circle(35.0, 33.0, 0)), "volumes[0].properties.radius_m", "> 0"),
    ("radius negative", body(circle(35.0, 33.0, -5)), "volumes[0].properties.radius_m", "> 0"),
    (
        "altitude lower = upper",
        body(circle(35.0, 33.0, 100, lower=100, upper=100)),
        "volumes[0].properties.altitude_upper_m",
        "greater than altitude_lower_m",
    ),
    (
        "altitude lower > upper",
        body(circle(35.0, 33.0, 100, lower=500, upper=100)),
        "volumes[0].properties.altitude_upper_m",
        "greater than altitude_lower_m",
    ),
    (
        "end = start",
        body(circle(35.0, 33.0, 100, start=120, end=120)),
        "volumes[0].properties.time_end",
        "later than time_start",
    ),
    (
        "end before start",
        body(circle(35.0, 33.0, 100, start=120, end=60)),
        "volumes[0].properties.time_end",
        "later than time_start",
    ),
    (
        "end in the past",
        body(circle(35.0, 33.0, 100, start=-120, end=-1)),
        "volumes[0].properties.time_end",
        "in the future",
    ),
    (
        "area over the cap",
        body(polygon([(35.0, 33.0), (37.0, 33.0), (37.0, 35.0), (35.0, 35.0)])),
        "volumes[0].geometry",
        "cap",
    ),
    (
        "duration over the cap",
        body(circle(35.0, 33.0, 100, start=120, end=120 + 24 * 60 + 1)),
        "volumes[0].properties.time_end",
        "cap",
    ),
    ("unknown kind", body(kind="bombing_run"), "kind", "unknown kind"),
    (
        "unparseable time",
        body(set_prop(circle(35.0, 33.0, 100), time_start="tomorrow")),
        "volumes[0].properties.time_start",
        "RFC 3339",
    ),
    (
        "non-UTC time",
        body(set_prop(circle(35.0, 33.0, 100), time_start="2030-06-01T16:00:00+02:00")),
        "volumes[0].properties.time_start",
        "UTC",
    ),
    (
        "naive time",
        body(set_prop(circle(35.0, 33.0, 100), time_start="2030-06-01T16:00:00")),
        "volumes[0].properties.time_start",
        "RFC 3339",
    ),
    ("unknown top-level field", {**body(), "purpose": "secret"}, "purpose", "unknown field"),
    (
        "unknown volume property",
        body(set_prop(circle(35.0, 33.0, 100), target="x")),
        "volumes[0].properties.target",
        "unknown field",
    ),
    (
        "a position with three numbers",
        body(set_coords(circle(35.0, 33.0, 100), [35.0, 33.0, 100.0])),
        "volumes[0].geometry",
        "",
    ),
    ("no volumes", {"kind": "crewed_flight", "volumes": []}, "volumes", ""),
    ("too many volumes", body(*[circle(35.0, 33.0, 100)] * 65), "volumes", "at most 64"),
    ("kind of wrong type", {**body(), "kind": 5}, "kind", ""),
    ("radius as a string", body(set_prop(circle(35.0, 33.0, 100), radius_m="100")), "volumes[0]", ""),
]


@pytest.mark.parametrize(("case", "payload", "field", "rule"), BAD, ids=[b[0] for b in BAD])
def test_bad_intent_is_refused_with_field_and_rule(
    live: Live, case: str, payload: dict[str, Any], field: str, rule: str
) -> None:
    c = live.client("north")
    ok = c.post("/v1/intents", json=body(polygon(BOX)))  # something stored beforehand
    assert ok.status_code == 201, ok.text
    before = live.snapshot()
    r = c.post("/v1/intents", json=payload)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == 422
    assert problem["type"].startswith("urn:deconflict:problem:")
    fields = [e["field"] for e in problem["errors"]]
    assert any(f.startswith(field) for f in fields), (fields, field)
    assert any(rule in e["rule"] for e in problem["errors"] if e["field"].startswith(field)), problem
    assert live.snapshot() == before


def test_oversize_body_is_413_and_changes_nothing(live: Live) -> None:
    before = live.snapshot()
    huge = body(*[circle(35.0, 33.0, 100)] * 20)
    huge["key"] = ["x" * 100] * 12_000  # ~1.3 MB
    r = live.client("north").post("/v1/intents", json=huge)
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert live.snapshot() == before


def test_oversize_chunked_body_is_413(live: Live) -> None:
    def chunks() -> Any:
        yield b'{"kind": "crewed_flight", "volumes": ['
        for _ in range(20_000):  # ~1.5 MB, no content-length
            yield b'{"type": "Feature", "geometry": {"type": "Point", "coordinates": [35, 33]}},'
        yield b"]}"

    r = live.client("north").post(
        "/v1/intents", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413


def test_body_that_is_not_json_is_422(live: Live) -> None:
    r = live.client("north").post(
        "/v1/intents", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["rule"]


def test_several_errors_are_reported_together(live: Live) -> None:
    r = live.client("north").post(
        "/v1/intents",
        json=body(circle(35.0, 33.0, -1, lower=10, upper=5), kind="nope"),
    )
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"kind", "volumes[0].properties.radius_m"} <= fields


def test_late_notice_is_flagged_by_default(live: Live) -> None:
    # crewed_flight needs 1800 s; this one starts in 10 minutes
    r = live.client("north").post("/v1/intents", json=body(circle(35.0, 33.0, 100, start=10, end=70)))
    assert r.status_code == 201, r.text
    filing = r.json()["filing"]
    assert filing["late"] is True
    assert filing["notice_s"] == pytest.approx(600.0)


def test_notice_is_measured_on_the_server_clock_at_receipt(live: Live) -> None:
    live.clock.advance(60)
    r = live.client("north").post("/v1/intents", json=body(circle(35.0, 33.0, 100, start=120, end=180)))
    assert r.json()["filing"]["notice_s"] == pytest.approx(120 * 60 - 60)
    assert r.json()["filing"]["late"] is False
    assert at(0) == "2030-06-01T12:00:00Z"


NUL_CASES: list[tuple[str, str, str, dict[str, Any] | None, str]] = [
    # (party, method, path, JSON body, the field named)
    ("north", "GET", "/v1/hotline/messages/a%00b", None, "message_id"),
    ("north", "POST", "/v1/hotline/messages/a%00b/delivered", None, "message_id"),
    ("north", "POST", "/v1/hotline/messages/a%00b/reply", {"reply": "WILCO"}, "message_id"),
    ("north", "DELETE", "/v1/me/keys/a%00b", None, "key_id"),
    ("north", "GET", "/v1/intents/a%00b", None, "filing_id"),
    ("north", "GET", "/v1/conflicts?party=no%00rth", None, "party"),
    ("north", "GET", "/v1/intents?owner=x&x%00y=1", None, "x\\u0000y"),
    ("north", "DELETE", "/v1/intents/abc?ovn=a%00", None, "ovn"),
    (
        "north",
        "POST",
        "/v1/hotline/messages",
        {"code": "FREE_TEXT", "to": ["south"], "fields": {"text": "a\x00b"}},
        "fields.text",
    ),
    (
        "north",
        "POST",
        "/v1/intents",
        body(set_prop(polygon(BOX), **{"x\x00": 1})),
        "volumes[0].properties.x\x00",
    ),
    ("admin", "POST", "/v1/parties", {"id": "press", "name": "The\x00Press"}, "name"),
    ("north", "PUT", "/v1/hotline/webhook", {"url": "http://127.0.0.1:9/\x00", "secret": "s" * 32}, "url"),
]


@pytest.mark.parametrize(
    ("party", "method", "path", "payload", "field"), NUL_CASES, ids=[c[2] for c in NUL_CASES]
)
def test_a_nul_anywhere_is_422_naming_the_field(
    live: Live, party: str, method: str, path: str, payload: dict[str, Any] | None, field: str
) -> None:
    """PostgreSQL's text holds no NUL: refused at the edge on both engines alike, never a 5xx."""
    before = live.snapshot()
    r = live.client(party).request(method, path, json=payload)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"] == [{"field": field, "rule": "must not contain NUL (U+0000)"}]
    assert live.snapshot() == before


SURROGATE_CASES: list[tuple[str, str, bytes, str]] = [
    # (method, path, raw JSON body, the field named): Python's JSON reader keeps a lone
    # surrogate, which no UTF-8 encoder takes (a message's free fields reached orjson: 500)
    (
        "POST",
        "/v1/hotline/messages",
        b'{"code": "FREE_TEXT", "to": ["south"], "fields": {"text": "a\\ud800b"}}',
        "fields.text",
    ),
    (
        "POST",
        "/v1/hotline/messages",
        b'{"code": "FREE_TEXT", "to": ["south"], "fields": {"t\\udfff": "x"}}',
        r"fields.t\udfff",
    ),
    ("PUT", "/v1/hotline/webhook", b'{"url": "http://127.0.0.1:9/\\uDBFF"}', "url"),
]


@pytest.mark.parametrize(
    ("method", "path", "raw", "field"), SURROGATE_CASES, ids=[c[3] for c in SURROGATE_CASES]
)
def test_a_lone_surrogate_is_422_naming_the_field(
    live: Live, method: str, path: str, raw: bytes, field: str
) -> None:
    before = live.snapshot()
    r = live.client("north").request(method, path, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    (error,) = r.json()["errors"]
    assert error["field"] == field
    assert error["rule"].startswith("must be valid Unicode"), error
    assert live.snapshot() == before


def test_a_surrogate_pair_is_a_character(live: Live) -> None:
    raw = b'{"code": "FREE_TEXT", "to": ["south"], "fields": {"text": "ok \\ud83d\\ude00"}}'
    r = live.client("north").post(
        "/v1/hotline/messages", content=raw, headers={"content-type": "application/json"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["message"]["fields"]["text"] == "ok \U0001f600"


def test_an_escaped_backslash_before_u0000_is_no_nul(live: Live) -> None:
    # the text \u0000 spelled out (a backslash, then u0000) is six ordinary characters
    r = live.client("north").post(
        "/v1/hotline/messages", json={"code": "FREE_TEXT", "to": ["south"], "fields": {"text": "a\\u0000b"}}
    )
    assert r.status_code == 201, r.text
    assert r.json()["message"]["fields"]["text"] == "a\\u0000b"
