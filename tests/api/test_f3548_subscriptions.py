"""/dss/v1 subscriptions: lifecycle, notification indices bumped by each relevant
write (through either API) and listed in the writer's answer, implicit subscriptions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import circle
from dss_support import CP, SC, C, Dss, circle4d, dss_server, new_id, oi, parsed, warn
from uas_standards.astm.f3548.v21 import api

from deconflict.model import Agreement

AWAY = (36.9, 35.4)
NORTH_URL = "https://north.example/utm"


@pytest.fixture
def dss(tmp_path: Path, agreement: Agreement) -> Iterator[Dss]:
    with dss_server(tmp_path, warn(agreement)) as d:
        yield d


def subscribe(dss: Dss, sub: str, sid: str, **kw: Any) -> dict[str, Any]:
    body = {
        "extents": circle4d(radius_m=2000, start=0, end=600),
        "uss_base_url": NORTH_URL,
        "notify_for_operational_intents": True,
        **kw,
    }
    r = dss.as_(sub, SC, CP).put(f"/dss/v1/subscriptions/{sid}", json=body)
    assert r.status_code == 200, r.text
    parsed(r.json(), api.PutSubscriptionResponse)
    return dict(r.json())


def indices(answer: dict[str, Any]) -> dict[str, int]:
    return {
        s["subscription_id"]: s["notification_index"]
        for group in answer["subscribers"]
        for s in group["subscriptions"]
    }


def test_notification_indices_increment_and_are_listed(dss: Dss) -> None:
    sid = new_id()
    made = subscribe(dss, "north", sid)
    assert made["subscription"]["notification_index"] == 0 and made["subscription"]["version"] == "1"
    assert made["operational_intent_references"] == []
    far = new_id()
    subscribe(dss, "north", far, extents=circle4d(*AWAY, 2000, start=0, end=600))

    south = dss.as_("south")
    eid = new_id()
    r = south.put(f"/dss/v1/operational_intent_references/{eid}", json=oi(circle4d()))
    assert r.status_code == 201
    assert r.json()["subscribers"] == [
        {"uss_base_url": NORTH_URL, "subscriptions": [{"subscription_id": sid, "notification_index": 1}]}
    ]
    ovn = r.json()["operational_intent_reference"]["ovn"]
    r = south.put(f"/dss/v1/operational_intent_references/{eid}/{ovn}", json=oi(circle4d(radius_m=350)))
    assert indices(r.json()) == {sid: 2}
    # moving the intent away notifies both areas: where it was and where it goes
    ovn = r.json()["operational_intent_reference"]["ovn"]
    r = south.put(f"/dss/v1/operational_intent_references/{eid}/{ovn}", json=oi(circle4d(*AWAY)))
    assert indices(r.json()) == {sid: 3, far: 1}
    ovn = r.json()["operational_intent_reference"]["ovn"]
    r = south.delete(f"/dss/v1/operational_intent_references/{eid}/{ovn}")
    assert indices(r.json()) == {far: 2}
    # a native filing in the area bumps it too (the same picture); its answer is native
    native = dss.live.client("south").post(
        "/v1/intents", json={"kind": "uas_flight", "volumes": [circle(*C, 100)]}
    )
    assert native.status_code == 201
    got = dss.as_("north", SC).get(f"/dss/v1/subscriptions/{sid}").json()["subscription"]
    assert got["notification_index"] == 4 and got["version"] == "1"
    # a refused write bumps nothing
    refused = dss.as_("drones").put(f"/dss/v1/operational_intent_references/{new_id()}", json=oi(circle4d()))
    assert refused.status_code == 409
    assert (
        dss.as_("north", SC).get(f"/dss/v1/subscriptions/{sid}").json()["subscription"]["notification_index"]
        == 4
    )
    # constraints notify only subscriptions asking for them
    cp_sid = new_id()
    subscribe(dss, "north", cp_sid, notify_for_operational_intents=False, notify_for_constraints=True)
    c = dss.as_("drones", "utm.constraint_management").put(
        f"/dss/v1/constraint_references/{new_id()}",
        json={"extents": [circle4d()], "uss_base_url": "https://c.example"},
    )
    assert c.status_code == 201
    assert indices(c.json()) == {cp_sid: 1}


def test_subscription_lifecycle(dss: Dss) -> None:
    north = dss.as_("north", SC, CP)
    existing = dss.as_("south").put(f"/dss/v1/operational_intent_references/{new_id()}", json=oi(circle4d()))
    sid = new_id()
    made = subscribe(dss, "north", sid)
    assert [r["id"] for r in made["operational_intent_references"]] == [
        existing.json()["operational_intent_reference"]["id"]
    ]
    assert north.put(f"/dss/v1/subscriptions/{sid}", json=_body()).status_code == 409  # already exists
    got = north.get(f"/dss/v1/subscriptions/{sid}")
    assert got.status_code == 200
    s = parsed(got.json(), api.GetSubscriptionResponse).subscription
    assert s.uss_base_url == NORTH_URL and s.notify_for_operational_intents and not s.implicit_subscription
    # only one's own subscriptions are found or shown
    q = north.post("/dss/v1/subscriptions/query", json={"area_of_interest": circle4d()})
    assert [x["id"] for x in q.json()["subscriptions"]] == [sid]
    south = dss.as_("south", SC)
    assert south.post("/dss/v1/subscriptions/query", json={"area_of_interest": circle4d()}).json() == {
        "subscriptions": []
    }
    assert south.get(f"/dss/v1/subscriptions/{sid}").status_code == 403
    assert south.put(f"/dss/v1/subscriptions/{sid}/1", json=_body()).status_code == 409  # managed by another
    # update with the version; a stale one is refused
    upd = north.put(f"/dss/v1/subscriptions/{sid}/1", json=_body(radius_m=3000))
    assert upd.status_code == 200 and upd.json()["subscription"]["version"] == "2"
    assert north.put(f"/dss/v1/subscriptions/{sid}/1", json=_body()).status_code == 409
    assert north.delete(f"/dss/v1/subscriptions/{sid}/1").status_code == 409
    gone = north.delete(f"/dss/v1/subscriptions/{sid}/2")
    assert gone.status_code == 200 and gone.json()["subscription"]["id"] == sid
    assert north.get(f"/dss/v1/subscriptions/{sid}").status_code == 404
    # rules: some notification, an end not past, a scope for each kind of notification
    r = north.put(f"/dss/v1/subscriptions/{new_id()}", json=_body(notify_for_operational_intents=False))
    assert r.status_code == 400 and "notify_for_operational_intents" in r.json()["message"]
    r = north.put(f"/dss/v1/subscriptions/{new_id()}", json=_body(start=-120, end=-60))
    assert r.status_code == 400 and "extents.time_end" in r.json()["message"]
    r = dss.as_("north", SC).put(f"/dss/v1/subscriptions/{new_id()}", json=_body(notify_for_constraints=True))
    assert r.status_code == 403
    r = dss.as_("north", CP).put(f"/dss/v1/subscriptions/{new_id()}", json=_body())
    assert r.status_code == 403
    # without an end time the service picks one, a day at most
    no_end = north.put(f"/dss/v1/subscriptions/{new_id()}", json=_body(end=None))
    assert no_end.status_code == 200, no_end.text
    assert no_end.json()["subscription"]["time_end"]["value"] == "2030-06-02T14:00:00Z"


def _body(
    radius_m: float = 2000, start: float | None = 120, end: float | None = 600, **kw: Any
) -> dict[str, Any]:
    return {
        "extents": circle4d(radius_m=radius_m, start=start, end=end),
        "uss_base_url": NORTH_URL,
        "notify_for_operational_intents": True,
        **kw,
    }


def test_implicit_subscription_follows_its_intent(dss: Dss) -> None:
    north = dss.as_("north")
    eid = new_id()
    r = north.put(
        f"/dss/v1/operational_intent_references/{eid}",
        json=oi(circle4d(), state="Activated", new_subscription={"uss_base_url": NORTH_URL}),
    )
    assert r.status_code == 201, r.text
    sid = r.json()["operational_intent_reference"]["subscription_id"]
    assert indices(r.json()) == {sid: 1}  # its own subscription is listed too
    sub = north.get(f"/dss/v1/subscriptions/{sid}").json()["subscription"]
    assert sub["implicit_subscription"] is True and sub["dependent_operational_intents"] == [eid]
    assert sub["time_start"]["value"] == "2030-06-01T14:00:00Z"
    # it cannot be deleted, nor shrunk away from its intent, while the intent depends on it
    assert north.delete(f"/dss/v1/subscriptions/{sid}/1").status_code == 400
    away = north.put(f"/dss/v1/subscriptions/{sid}/1", json=_body() | {"extents": circle4d(*AWAY, 500)})
    assert away.status_code == 400 and "no longer cover" in away.json()["message"]
    # an activated intent needs a subscription
    bare = north.put(
        f"/dss/v1/operational_intent_references/{new_id()}", json=oi(circle4d(*AWAY), state="Activated")
    )
    assert bare.status_code == 400 and "subscription_id" in bare.json()["message"]
    # an update moves the implicit subscription with the intent
    ovn = r.json()["operational_intent_reference"]["ovn"]
    moved = north.put(
        f"/dss/v1/operational_intent_references/{eid}/{ovn}", json=oi(circle4d(*AWAY), state="Activated")
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["operational_intent_reference"]["subscription_id"] == sid
    q = dss.as_("north", SC).post("/dss/v1/subscriptions/query", json={"area_of_interest": circle4d(*AWAY)})
    assert [s["id"] for s in q.json()["subscriptions"]] == [sid]
    # deleting the intent deletes its implicit subscription
    ovn = moved.json()["operational_intent_reference"]["ovn"]
    assert north.delete(f"/dss/v1/operational_intent_references/{eid}/{ovn}").status_code == 200
    assert north.get(f"/dss/v1/subscriptions/{sid}").status_code == 404


def test_explicit_subscription_for_an_intent(dss: Dss) -> None:
    sid = new_id()
    subscribe(dss, "north", sid)
    north = dss.as_("north")
    r = north.put(
        f"/dss/v1/operational_intent_references/{new_id()}",
        json=oi(circle4d(), state="Activated", subscription_id=sid),
    )
    assert r.status_code == 201
    assert r.json()["operational_intent_reference"]["subscription_id"] == sid
    assert indices(r.json()) == {sid: 1}
    # a subscription must cover the intent it serves
    r2 = north.put(
        f"/dss/v1/operational_intent_references/{new_id()}", json=oi(circle4d(*AWAY), subscription_id=sid)
    )
    assert r2.status_code == 400 and "cover" in r2.json()["message"]
    # an update that names no subscription keeps it
    ref = r.json()["operational_intent_reference"]
    kept = north.put(
        f"/dss/v1/operational_intent_references/{ref['id']}/{ref['ovn']}",
        json=oi(circle4d(radius_m=250), state="Activated"),
    )
    assert kept.status_code == 200, kept.text
    assert kept.json()["operational_intent_reference"]["subscription_id"] == sid
    assert north.delete(f"/dss/v1/subscriptions/{sid}/1").status_code == 400  # still depended on
    others = new_id()
    subscribe(dss, "south", others)
    r = north.put(
        f"/dss/v1/operational_intent_references/{new_id()}", json=oi(circle4d(*AWAY), subscription_id=others)
    )
    assert r.status_code == 403  # not its subscription
    r = north.put(
        f"/dss/v1/operational_intent_references/{new_id()}",
        json=oi(circle4d(*AWAY), subscription_id=new_id()),
    )
    assert r.status_code == 404
