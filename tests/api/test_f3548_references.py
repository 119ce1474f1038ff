"""/dss/v1 operational intent and constraint references, through a real server with
real signed tokens: lifecycle, the key/OVN flow between two managers, stale OVNs,
error codes, and the one picture shared with the native API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Live, circle
from dss_support import CM, CMSA, CP, SC, C, Dss, circle4d, dss_server, new_id, oi, parsed, polygon4d, warn
from uas_standards.astm.f3548.v21 import api

from deconflict.model import Agreement
from deconflict.service.ledger import decoded, log_rows


@pytest.fixture
def dss(tmp_path: Path, agreement: Agreement) -> Iterator[Dss]:
    with dss_server(tmp_path, warn(agreement)) as d:
        yield d


def create(dss: Dss, sub: str, body: dict[str, Any], eid: str | None = None) -> dict[str, Any]:
    eid = eid or new_id()
    r = dss.as_(sub).put(f"/dss/v1/operational_intent_references/{eid}", json=body)
    assert r.status_code == 201, r.text
    parsed(r.json(), api.ChangeOperationalIntentReferenceResponse)
    return dict(r.json()["operational_intent_reference"])


def test_not_served_without_keys(live: Live) -> None:
    r = live.client("north").get(f"/dss/v1/operational_intent_references/{new_id()}")
    assert r.status_code == 404
    assert (
        "/dss/v1/operational_intent_references/{entityid}"
        not in live.client(None).get("/openapi.json").json()["paths"]
    )


def test_intent_lifecycle(dss: Dss) -> None:
    north = dss.as_("north")
    eid = new_id()
    ref = create(dss, "north", oi(circle4d()), eid)
    assert ref["id"] == eid and ref["manager"] == "north" and ref["version"] == 1
    assert ref["state"] == "Accepted" and ref["uss_availability"] == "Unknown"
    assert ref["uss_base_url"] == "https://uss.example/utm"
    assert ref["time_start"] == {"value": "2030-06-01T14:00:00Z", "format": "RFC3339"}
    assert ref["subscription_id"] == "00000000-0000-4000-8000-000000000000"
    ovn1 = ref["ovn"]

    got = north.get(f"/dss/v1/operational_intent_references/{eid}")
    assert got.status_code == 200
    assert (
        parsed(got.json(), api.GetOperationalIntentReferenceResponse).operational_intent_reference.ovn == ovn1
    )
    # the OVN goes to the manager only
    other = dss.as_("south").get(f"/dss/v1/operational_intent_references/{eid}").json()
    assert "ovn" not in other["operational_intent_reference"]

    q = north.post(
        "/dss/v1/operational_intent_references/query", json={"area_of_interest": circle4d(radius_m=50)}
    )
    assert q.status_code == 200
    assert [
        r["id"]
        for r in parsed(q.json(), api.QueryOperationalIntentReferenceResponse)[
            "operational_intent_references"
        ]
    ] == [eid]
    away = north.post(
        "/dss/v1/operational_intent_references/query",
        json={"area_of_interest": circle4d(C_AWAY[0], C_AWAY[1], 50)},
    )
    assert away.json() == {"operational_intent_references": []}

    # update with the OVN: a new version with a new OVN, activated with a subscription
    upd = north.put(
        f"/dss/v1/operational_intent_references/{eid}/{ovn1}",
        json=oi(
            circle4d(radius_m=400),
            state="Activated",
            new_subscription={"uss_base_url": "https://uss.example/utm"},
        ),
    )
    assert upd.status_code == 200, upd.text
    ref2 = upd.json()["operational_intent_reference"]
    assert ref2["version"] == 2 and ref2["state"] == "Activated" and ref2["ovn"] != ovn1
    # stale OVN: refused, nothing changes
    before = dss.live.snapshot()
    stale = north.put(f"/dss/v1/operational_intent_references/{eid}/{ovn1}", json=oi(state="Activated"))
    assert stale.status_code == 409 and "is not current" in stale.json()["message"]
    stale_del = north.delete(f"/dss/v1/operational_intent_references/{eid}/{ovn1}")
    assert stale_del.status_code == 409
    assert dss.live.snapshot() == before
    # another manager may not delete it
    assert (
        dss.as_("south").delete(f"/dss/v1/operational_intent_references/{eid}/{ref2['ovn']}").status_code
        == 403
    )

    gone = north.delete(f"/dss/v1/operational_intent_references/{eid}/{ref2['ovn']}")
    assert gone.status_code == 200, gone.text
    body = parsed(gone.json(), api.ChangeOperationalIntentReferenceResponse)
    assert body.operational_intent_reference.state == "Activated"  # as it stood
    assert north.get(f"/dss/v1/operational_intent_references/{eid}").status_code == 200  # ended, kept
    q2 = north.post("/dss/v1/operational_intent_references/query", json={"area_of_interest": circle4d()})
    assert q2.json()["operational_intent_references"] == []
    # the native API sees the same filing, withdrawn, with every version
    native = dss.live.client("north").get(f"/v1/intents/{eid}/versions").json()
    assert [v["state"] for v in native] == ["accepted", "activated", "ended"]


C_AWAY = (36.9, 35.4)


def test_key_conflict_flow_between_two_managers(dss: Dss) -> None:
    a = create(dss, "north", oi(circle4d()))
    b = create(dss, "north", oi(circle4d(C_AWAY[0], C_AWAY[1])))  # far away: not missing
    south = dss.as_("south")
    eid = new_id()
    before = dss.live.snapshot()
    log_before = dss.live.services.ledger.size()
    r = south.put(f"/dss/v1/operational_intent_references/{eid}", json=oi(circle4d(radius_m=200)))
    assert r.status_code == 409
    body = parsed(r.json(), api.AirspaceConflictResponse)
    assert [m.id for m in body.missing_operational_intents] == [a["id"]]
    assert body.missing_operational_intents[0].ovn == a["ovn"]
    assert body.missing_constraints == []
    assert b["id"] not in r.text
    assert dss.live.snapshot() == before and dss.live.services.ledger.size() == log_before
    # a wrong key is no better
    r = south.put(
        f"/dss/v1/operational_intent_references/{eid}", json=oi(circle4d(radius_m=200), key=[b["ovn"]])
    )
    assert r.status_code == 409
    # with the missing OVN: accepted, the conflict recorded, both in the shared record
    ok = south.put(
        f"/dss/v1/operational_intent_references/{eid}", json=oi(circle4d(radius_m=200), key=[a["ovn"]])
    )
    assert ok.status_code == 201, ok.text
    conflicts = dss.live.client("south").get("/v1/conflicts").json()
    assert [(c["a"]["id"], c["b"]["id"]) for c in conflicts] == [(eid, a["id"])]
    kinds = [e.kind.value for _, e in _entries(dss)]
    assert kinds.count("filing_created") == 3 and "conflict_opened" in kinds


def _entries(dss: Dss) -> list[Any]:
    return list(decoded(log_rows(dss.live.services.store)))


def test_one_picture_dss_then_native(dss: Dss) -> None:
    ref = create(dss, "north", oi(circle4d()))
    south = dss.live.client("south")
    r = south.post("/v1/intents", json={"kind": "uas_flight", "volumes": [circle(*_c(), 200)]})
    assert r.status_code == 409
    assert [m["id"] for m in r.json()["missing"]] == [ref["id"]]
    ok = south.post(
        "/v1/intents", json={"kind": "uas_flight", "volumes": [circle(*_c(), 200)], "key": [ref["ovn"]]}
    )
    assert ok.status_code == 201, ok.text
    assert [c["b"]["id"] for c in ok.json()["conflicts"]] == [ref["id"]]
    # and the F3548 side sees the native filing
    q = dss.as_("north").post(
        "/dss/v1/operational_intent_references/query", json={"area_of_interest": circle4d()}
    )
    ids = {x["id"] for x in q.json()["operational_intent_references"]}
    assert ids == {ref["id"], ok.json()["filing"]["id"]}


def _c() -> tuple[float, float]:
    return C


def test_one_picture_native_then_dss(dss: Dss) -> None:
    native = dss.live.client("south").post(
        "/v1/intents", json={"kind": "uas_flight", "volumes": [circle(*_c(), 200)]}
    )
    assert native.status_code == 201
    filing = native.json()["filing"]
    eid = new_id()
    r = dss.as_("north").put(f"/dss/v1/operational_intent_references/{eid}", json=oi(circle4d()))
    assert r.status_code == 409
    missing = r.json()["missing_operational_intents"]
    assert [(m["id"], m["ovn"], m["manager"]) for m in missing] == [(filing["id"], filing["ovn"], "south")]
    parsed(r.json(), api.AirspaceConflictResponse)
    ok = dss.as_("north").put(
        f"/dss/v1/operational_intent_references/{eid}", json=oi(circle4d(), key=[filing["ovn"]])
    )
    assert ok.status_code == 201
    # the native filing has no USS behind it: the server's own URL stands in
    got = dss.as_("north").get(f"/dss/v1/operational_intent_references/{filing['id']}").json()
    assert got["operational_intent_reference"]["uss_base_url"] == dss.url
    conflicts = dss.live.client("south").get("/v1/conflicts").json()
    assert [(c["a"]["id"], c["b"]["id"]) for c in conflicts] == [(eid, filing["id"])]


def test_nonconforming_and_contingent_need_no_key(dss: Dss) -> None:
    create(dss, "south", oi(circle4d(C_AWAY[0], C_AWAY[1])))
    mine = create(
        dss,
        "north",
        oi(circle4d(), state="Activated", new_subscription={"uss_base_url": "https://n.example"}),
    )
    other = create(dss, "south", oi(circle4d(C_AWAY[0] - 0.05, C_AWAY[1]), key=[]))
    # north strays over to south's volumes: Nonconforming, no key needed
    r = dss.as_("north").put(
        f"/dss/v1/operational_intent_references/{mine['id']}/{mine['ovn']}",
        json=oi(circle4d(), circle4d(C_AWAY[0] - 0.05, C_AWAY[1]), state="Nonconforming"),
    )
    assert r.status_code == 200, r.text
    assert other["id"] not in r.text
    conflicts = dss.live.client("north").get("/v1/conflicts").json()
    assert {c["b"]["id"] for c in conflicts} >= {other["id"]}


def test_bad_input_is_400_naming_the_field(dss: Dss) -> None:
    north = dss.as_("north")
    url = f"/dss/v1/operational_intent_references/{new_id()}"
    both = circle4d()
    both["volume"]["outline_polygon"] = {"vertices": [{"lng": 35.9, "lat": 35.4}] * 3}
    cases: list[tuple[dict[str, Any], str]] = [
        (oi(both), "extents[0].volume"),
        (oi(circle4d(end=None)), "extents[0].time_end"),
        (
            oi({**circle4d(), "time_start": {"value": "2030-06-01 14:00", "format": "RFC3339"}}),
            "extents[0].time_start.value",
        ),
        (oi(circle4d(lower=200, upper=100)), "extents[0].volume.altitude_upper"),
        ({**oi(), "state": "Ended"}, "state"),
        ({**oi(), "extents": []}, "extents"),
        (
            oi(polygon4d([(35.9, 35.4), (35.91, 35.4), (35.9, 35.41), (35.91, 35.41)])),
            "extents[0].volume.outline_polygon",
        ),
        (oi(circle4d(start=-60, end=-30)), "extents[0]"),
        ({**oi(), "uss_base_url": "https://a.example/\x00"}, "uss_base_url"),  # PostgreSQL holds no NUL
    ]
    ft = circle4d()
    ft["volume"]["altitude_lower"]["units"] = "FT"
    cases.append((oi(ft), "extents.0.volume.altitude_lower.units"))
    before = dss.live.snapshot()
    for body, field in cases:
        r = north.put(url, json=body)
        assert r.status_code == 400, (field, r.text)
        assert r.headers["content-type"] == "application/json"
        msg = r.json()["message"]
        assert field.replace(".0.", "[0].") in msg or field in msg, (field, msg)
    assert north.put(url, content=b"{nope").status_code == 400
    assert north.get("/dss/v1/operational_intent_references/not-a-uuid").status_code == 400
    r = north.delete(f"/dss/v1/operational_intent_references/{new_id()}/{'x' * 20}%00")
    assert r.status_code == 400 and "ovn: must not contain NUL" in r.json()["message"], r.text
    assert dss.live.snapshot() == before


def test_not_found_and_area_too_large(dss: Dss) -> None:
    north = dss.as_("north")
    r = north.get(f"/dss/v1/operational_intent_references/{new_id()}")
    assert r.status_code == 404 and "not found" in r.json()["message"]
    assert north.delete(f"/dss/v1/operational_intent_references/{new_id()}/{'a' * 32}").status_code == 404
    huge = circle4d(radius_m=100_000)  # 31,400 km² > the agreement's 20,000 km² cap
    q = north.post("/dss/v1/operational_intent_references/query", json={"area_of_interest": huge})
    assert q.status_code == 413 and "exceeds" in q.json()["message"]
    before = dss.live.snapshot()
    p = north.put(f"/dss/v1/operational_intent_references/{new_id()}", json=oi(huge))
    assert p.status_code == 413
    cm = dss.as_("drones", CM)
    assert (
        cm.put(
            f"/dss/v1/constraint_references/{new_id()}",
            json={"extents": [huge], "uss_base_url": "https://c.example"},
        ).status_code
        == 413
    )
    assert cm.post("/dss/v1/constraint_references/query", json={"area_of_interest": huge}).status_code == 413
    assert dss.live.snapshot() == before
    assert north.post("/dss/v1/operational_intent_references/query", json={}).status_code == 400


def test_constraint_lifecycle_and_key_for_constraint_processors(dss: Dss) -> None:
    cm = dss.as_("drones", CM)
    cid = new_id()
    r = cm.put(
        f"/dss/v1/constraint_references/{cid}",
        json={"extents": [circle4d(radius_m=500)], "uss_base_url": "https://c.example"},
    )
    assert r.status_code == 201, r.text
    ref = parsed(r.json(), api.ChangeConstraintReferenceResponse).constraint_reference
    assert ref.manager == "drones" and ref.version == 1 and "state" not in r.json()["constraint_reference"]
    cp = dss.as_("north", CP)
    got = cp.get(f"/dss/v1/constraint_references/{cid}")
    assert got.status_code == 200 and "ovn" not in got.json()["constraint_reference"]
    q = cp.post("/dss/v1/constraint_references/query", json={"area_of_interest": circle4d()})
    assert [c["id"] for c in q.json()["constraint_references"]] == [cid]
    # a USS not processing constraints needs no constraint OVN in its key
    plain = dss.as_("north").put(
        f"/dss/v1/operational_intent_references/{new_id()}", json=oi(circle4d(radius_m=100))
    )
    assert plain.status_code == 201, plain.text
    # one that does (its subscription asks for constraints) must list it
    proc = dss.as_("south", SC, CP)
    eid = new_id()
    body = oi(
        circle4d(radius_m=100),
        key=[plain.json()["operational_intent_reference"]["ovn"]],
        new_subscription={"uss_base_url": "https://s.example", "notify_for_constraints": True},
    )
    r = proc.put(f"/dss/v1/operational_intent_references/{eid}", json=body)
    assert r.status_code == 409
    assert [c["id"] for c in r.json()["missing_constraints"]] == [cid]
    assert r.json()["missing_constraints"][0]["ovn"] == ref.ovn
    assert (
        proc.put(
            f"/dss/v1/operational_intent_references/{eid}", json={**body, "key": [*body["key"], ref.ovn]}
        ).status_code
        == 201
    )
    # update and delete with the OVN; a stale one is refused
    upd = cm.put(
        f"/dss/v1/constraint_references/{cid}/{ref.ovn}",
        json={"extents": [circle4d(radius_m=600)], "uss_base_url": "https://c.example"},
    )
    assert upd.status_code == 200, upd.text
    assert cm.delete(f"/dss/v1/constraint_references/{cid}/{ref.ovn}").status_code == 409
    new_ovn = upd.json()["constraint_reference"]["ovn"]
    assert cm.delete(f"/dss/v1/constraint_references/{cid}/{new_ovn}").status_code == 200
    assert cp.post("/dss/v1/constraint_references/query", json={"area_of_interest": circle4d()}).json() == {
        "constraint_references": []
    }
    assert (
        cm.put(
            f"/dss/v1/constraint_references/{cid}",
            json={"extents": [circle4d()], "uss_base_url": "https://c.example"},
        ).status_code
        == 409
    )


def test_scopes_per_endpoint(dss: Dss) -> None:
    eid = new_id()
    body = oi(circle4d())
    # constraint management may not file intents; strategic coordination may not file constraints
    r = dss.as_("north", CM).put(f"/dss/v1/operational_intent_references/{eid}", json=body)
    assert r.status_code == 403 and SC in r.json()["message"]
    r = dss.as_("north", SC).put(
        f"/dss/v1/constraint_references/{eid}",
        json={"extents": [circle4d()], "uss_base_url": "https://c.example"},
    )
    assert r.status_code == 403
    # conformance monitoring for SA may read intents; constraint processing may not
    create(dss, "north", body, eid)
    assert dss.as_("south", CMSA).get(f"/dss/v1/operational_intent_references/{eid}").status_code == 200
    assert dss.as_("south", CP).get(f"/dss/v1/operational_intent_references/{eid}").status_code == 403
    # an implicit subscription for constraints needs constraint processing
    r = dss.as_("south", SC).put(
        f"/dss/v1/operational_intent_references/{new_id()}",
        json=oi(
            circle4d(C_AWAY[0], C_AWAY[1]),
            new_subscription={"uss_base_url": "https://s.example", "notify_for_constraints": True},
        ),
    )
    assert r.status_code == 403
    # an observer party may read but files nothing
    assert dss.as_("shield", SC).get(f"/dss/v1/operational_intent_references/{eid}").status_code == 200
    assert (
        dss.as_("shield", SC)
        .put(f"/dss/v1/operational_intent_references/{new_id()}", json=oi(circle4d(C_AWAY[0], C_AWAY[1])))
        .status_code
        == 403
    )


def test_the_agreement_block_rule_applies_to_f3548_writes(tmp_path: Path, agreement: Agreement) -> None:
    with dss_server(tmp_path, agreement) as d:  # the shipped agreement blocks equal priority
        a = create(d, "north", oi(circle4d()))
        before = d.live.snapshot()
        r = d.as_("south").put(
            f"/dss/v1/operational_intent_references/{new_id()}", json=oi(circle4d(), key=[a["ovn"]])
        )
        assert r.status_code == 400
        assert r.json()["type"] == "urn:deconflict:problem:conflict-blocked"
        assert [c["id"] for c in r.json()["conflicts"]] == [a["id"]]
        assert d.live.snapshot() == before
