"""/dss/v1/uss_availability: get and set; a Down party may not file, keep or delete
accepted or activated intents (412), and its accepted intents stop blocking others."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import circle
from dss_support import AA, CMSA, SC, Dss, circle4d, dss_server, new_id, oi, parsed, warn
from uas_standards.astm.f3548.v21 import api

from deconflict.model import Agreement
from deconflict.service.ledger import decoded, log_rows


@pytest.fixture
def dss(tmp_path: Path, agreement: Agreement) -> Iterator[Dss]:
    with dss_server(tmp_path, warn(agreement)) as d:
        yield d


def set_availability(dss: Dss, uss: str, old: str, availability: str) -> Any:
    return dss.as_("shield", AA).put(
        f"/dss/v1/uss_availability/{uss}", json={"old_version": old, "availability": availability}
    )


def test_get_and_set(dss: Dss) -> None:
    r = dss.as_("south", SC).get("/dss/v1/uss_availability/north")
    assert r.status_code == 200
    assert r.json() == {"status": {"uss": "north", "availability": "Unknown"}, "version": ""}
    parsed(r.json(), api.UssAvailabilityStatusResponse)
    down = set_availability(dss, "north", "", "Down")
    assert down.status_code == 200 and down.json() == {
        "status": {"uss": "north", "availability": "Down"},
        "version": "1",
    }
    assert dss.as_("south", CMSA).get("/dss/v1/uss_availability/north").json()["version"] == "1"
    # a stale version is refused and changes nothing
    stale = set_availability(dss, "north", "", "Normal")
    assert stale.status_code == 400 and "old_version" in stale.json()["message"]
    assert (
        dss.as_("south", SC).get("/dss/v1/uss_availability/north").json()["status"]["availability"] == "Down"
    )
    # setting needs the arbitration scope; reading, one of three
    assert (
        dss.as_("south", SC)
        .put("/dss/v1/uss_availability/north", json={"availability": "Normal"})
        .status_code
        == 403
    )
    assert (
        dss.as_("south", "utm.constraint_processing").get("/dss/v1/uss_availability/north").status_code == 403
    )
    assert set_availability(dss, "nobody", "", "Down").status_code == 400
    assert set_availability(dss, "north", "1", "Sideways").status_code == 400
    up = set_availability(dss, "north", "1", "Normal")
    assert up.json()["version"] == "2"
    # both changes are in the shared record
    kinds = [
        (e.kind.value, e.body["party"], e.body["availability"])
        for _, e in decoded(log_rows(dss.live.services.store))
        if e.kind.value.startswith("party_") and e.kind.value != "party_added"
    ]
    assert kinds == [("party_down", "north", "Down"), ("party_up", "north", "Normal")]
    # and replay from the log alone reads them like the hotline's DOWN and UP
    snapshot = dss.live.services.ledger.replay(dss.live.clock.now()).as_dict()
    assert snapshot["hotline"]["parties_down"] == {}


def test_a_down_party_and_its_intents(dss: Dss) -> None:
    north = dss.as_("north")
    accepted = north.put(f"/dss/v1/operational_intent_references/{new_id()}", json=oi(circle4d()))
    assert accepted.status_code == 201
    a = accepted.json()["operational_intent_reference"]
    activated_id = new_id()
    act = north.put(
        f"/dss/v1/operational_intent_references/{activated_id}",
        json=oi(
            circle4d(35.95, 35.4), state="Activated", new_subscription={"uss_base_url": "https://n.example"}
        ),
    )
    assert act.status_code == 201, act.text
    assert set_availability(dss, "north", "", "Down").status_code == 200
    got = dss.as_("south").get(f"/dss/v1/operational_intent_references/{a['id']}").json()
    assert got["operational_intent_reference"]["uss_availability"] == "Down"

    # the Down party may not create, keep or delete accepted/activated intents
    before = dss.live.snapshot()
    r = north.put(f"/dss/v1/operational_intent_references/{new_id()}", json=oi(circle4d(36.9, 35.4)))
    assert r.status_code == 412 and "Down" in r.json()["message"]
    assert (
        north.put(
            f"/dss/v1/operational_intent_references/{a['id']}/{a['ovn']}", json=oi(circle4d(radius_m=200))
        ).status_code
        == 412
    )
    assert north.delete(f"/dss/v1/operational_intent_references/{a['id']}/{a['ovn']}").status_code == 412
    assert dss.live.snapshot() == before
    # the native API applies the same rule
    native = dss.live.client("north").post(
        "/v1/intents", json={"kind": "uas_flight", "volumes": [_feature()]}
    )
    assert native.status_code == 412

    # its accepted intent no longer blocks: south files over it without its OVN ...
    south = dss.as_("south")
    r = south.put(f"/dss/v1/operational_intent_references/{new_id()}", json=oi(circle4d(radius_m=200)))
    assert r.status_code == 201, r.text
    # ... but its activated one (a flight may be airborne) still needs the key
    r = south.put(f"/dss/v1/operational_intent_references/{new_id()}", json=oi(circle4d(35.95, 35.4, 200)))
    assert r.status_code == 409
    assert [m["id"] for m in r.json()["missing_operational_intents"]] == [activated_id]
    # it may still declare its activated intent off-nominal (no key, no 412)
    act_ref = act.json()["operational_intent_reference"]
    r = north.put(
        f"/dss/v1/operational_intent_references/{activated_id}/{act_ref['ovn']}",
        json=oi(circle4d(35.95, 35.4), state="Contingent"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["operational_intent_reference"]["state"] == "Contingent"
    # once Normal again, the party files as before
    assert set_availability(dss, "north", "1", "Normal").status_code == 200
    assert north.delete(f"/dss/v1/operational_intent_references/{a['id']}/{a['ovn']}").status_code == 200


def _feature() -> dict[str, Any]:
    return circle(36.9, 35.4, 100)


def test_constraints_of_a_down_party_still_count(dss: Dss) -> None:
    cm = dss.as_("drones", "utm.constraint_management")
    assert set_availability(dss, "drones", "", "Down").status_code == 200
    # the standard holds a Down USS's operational intents, not its constraints
    r = cm.put(
        f"/dss/v1/constraint_references/{new_id()}",
        json={"extents": [circle4d()], "uss_base_url": "https://c.example"},
    )
    assert r.status_code == 201, r.text
    cid = r.json()["constraint_reference"]["id"]
    body = oi(
        circle4d(), new_subscription={"uss_base_url": "https://s.example", "notify_for_constraints": True}
    )
    r = dss.as_("south", SC, "utm.constraint_processing").put(
        f"/dss/v1/operational_intent_references/{new_id()}", json=body
    )
    assert r.status_code == 409
    assert [c["id"] for c in r.json()["missing_constraints"]] == [cid]
