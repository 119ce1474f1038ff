"""Filing through a real server: credentials, ownership, versions, keys, the
agreement's block/warn rule, buffer arithmetic at the boundaries, lifecycle,
what another party sees."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from conftest import Live, circle, local_ring, polygon

from deconflict import agreements
from deconflict.model.agreement import ConflictAction

C = (35.0, 33.0)


def intent(*volumes: dict[str, Any], kind: str = "uas_flight", **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "volumes": list(volumes), **extra}


def box(x0: float, y0: float, x1: float, y1: float, **kw: Any) -> dict[str, Any]:
    return polygon(local_ring(C, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]), **kw)


def file(live: Live, party: str, payload: dict[str, Any], status: int = 201) -> dict[str, Any]:
    r = live.client(party).post("/v1/intents", json=payload)
    assert r.status_code == status, r.text
    return dict(r.json())


# -- credentials and ownership ------------------------------------------------


def test_every_call_needs_a_valid_token(live: Live) -> None:
    anon = live.client(None)
    assert anon.get("/v1/intents").status_code == 401
    assert anon.post("/v1/intents", json=intent(circle(*C, 100))).status_code == 401
    r = anon.get("/v1/conflicts", headers={"Authorization": "Bearer dcf_wrong"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert live.client("north").get("/v1/me").json()["id"] == "north"


def test_observer_sees_but_files_nothing(live: Live) -> None:
    file(live, "north", intent(circle(*C, 100)))
    before = live.snapshot()
    r = live.client("shield").post("/v1/intents", json=intent(circle(*C, 100)))
    assert r.status_code == 403
    assert live.snapshot() == before
    assert len(live.client("shield").get("/v1/intents").json()) == 1


def test_admin_manages_parties_and_others_cannot(live: Live) -> None:
    r = live.client("north").post("/v1/parties", json={"id": "press", "role": "observer"})
    assert r.status_code == 403
    r = live.client("admin").post("/v1/parties", json={"id": "press", "role": "observer"})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    r2 = live.client(None).get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r2.json() == {**r2.json(), "id": "press", "role": "observer"}
    dup = live.client("admin").post("/v1/parties", json={"id": "press", "role": "observer"})
    assert dup.status_code == 409
    stranger = live.client("admin").post("/v1/parties", json={"id": "rogue", "role": "operator"})
    assert stranger.status_code == 422
    assert stranger.json()["errors"][0]["field"] == "id"


def test_party_b_cannot_update_or_withdraw_party_a_filing(live: Live) -> None:
    a = file(live, "north", intent(circle(*C, 100)))["filing"]
    before = live.snapshot()
    south = live.client("south")
    upd = south.put(f"/v1/intents/{a['id']}", json={**intent(circle(*C, 200)), "ovn": a["ovn"]})
    assert upd.status_code == 403
    assert south.delete(f"/v1/intents/{a['id']}", params={"ovn": a["ovn"]}).status_code == 403
    st = south.post(f"/v1/intents/{a['id']}/state", json={"ovn": a["ovn"], "state": "activated"})
    assert st.status_code == 403
    assert live.snapshot() == before


# -- versions -----------------------------------------------------------------


def test_update_supersedes_and_keeps_every_version(live: Live) -> None:
    c = live.client("north")
    v1 = file(live, "north", intent(circle(*C, 100)))["filing"]
    r = c.put(f"/v1/intents/{v1['id']}", json={**intent(circle(*C, 300)), "ovn": v1["ovn"]})
    assert r.status_code == 200, r.text
    v2 = r.json()["filing"]
    assert v2["version"] == 2 and v2["ovn"] != v1["ovn"]
    assert v2["volumes"][0]["properties"]["radius_m"] == 300
    versions = c.get(f"/v1/intents/{v1['id']}/versions").json()
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["volumes"][0]["properties"]["radius_m"] == 100


def test_stale_version_is_409_and_changes_nothing(live: Live) -> None:
    c = live.client("north")
    v1 = file(live, "north", intent(circle(*C, 100)))["filing"]
    r = c.put(f"/v1/intents/{v1['id']}", json={**intent(circle(*C, 300)), "ovn": v1["ovn"]})
    v2 = r.json()["filing"]
    before = live.snapshot()
    stale = c.put(f"/v1/intents/{v1['id']}", json={**intent(circle(*C, 500)), "ovn": v1["ovn"]})
    assert stale.status_code == 409
    assert stale.json()["type"] == "urn:deconflict:problem:stale-version"
    assert stale.json()["current_ovn"] == v2["ovn"]
    assert c.delete(f"/v1/intents/{v1['id']}", params={"ovn": v1["ovn"]}).status_code == 409
    assert live.snapshot() == before


def test_unknown_filing_is_404(live: Live) -> None:
    c = live.client("north")
    assert c.get("/v1/intents/nope").status_code == 404
    assert c.get("/v1/constraints/nope").status_code == 404
    assert c.delete("/v1/intents/nope", params={"ovn": "x"}).status_code == 404


# -- keys and the agreement's rule ---------------------------------------------


def test_missing_key_is_409_listing_exactly_what_is_missing(live: Live) -> None:
    a = file(live, "north", intent(circle(*C, 1000), kind="crewed_flight"))["filing"]
    b = file(live, "drones", intent(circle(40.0, 33.0, 1000)))["filing"]  # far away
    c = file(live, "south", intent(circle(35.01, 33.0, 500), kind="crewed_flight"), 409)
    # south's filing meets north's only; the key is empty
    assert c["type"] == "urn:deconflict:problem:missing-key"
    assert [(m["id"], m["ovn"], m["owner"]) for m in c["missing"]] == [(a["id"], a["ovn"], "north")]
    assert b["id"] not in str(c["missing"])
    # with north's ovn in the key: crewed vs crewed, equal priority, agreement blocks
    blocked = file(live, "south", intent(circle(35.01, 33.0, 500), kind="crewed_flight", key=[a["ovn"]]), 409)
    assert blocked["type"] == "urn:deconflict:problem:conflict-blocked"
    assert [x["id"] for x in blocked["conflicts"]] == [a["id"]]


def test_higher_priority_filing_with_complete_key_is_accepted_and_conflict_recorded(live: Live) -> None:
    low = file(live, "drones", intent(circle(*C, 1000), kind="uas_flight"))["filing"]
    high = file(live, "north", intent(circle(*C, 2000), kind="crewed_flight", key=[low["ovn"]]))
    assert [c["b"]["id"] for c in high["conflicts"]] == [low["id"]]
    conflict = high["conflicts"][0]
    assert conflict["a"]["id"] == high["filing"]["id"] and conflict["a"]["version"] == 1
    assert conflict["b"]["ovn"] == low["ovn"]
    assert conflict["horizontal_separation_m"] == 0
    assert conflict["time_start"] == low["volumes"][0]["properties"]["time_start"]
    listed = live.client("shield").get("/v1/conflicts").json()
    assert [c["id"] for c in listed] == [conflict["id"]]


def test_warn_agreement_accepts_conflicts_of_equal_priority(make_live: Any) -> None:
    warn = dataclasses.replace(agreements.load(), conflict_action=ConflictAction.WARN)
    with make_live(warn) as live:
        a = file(live, "north", intent(circle(*C, 1000), kind="crewed_flight"))["filing"]
        b = file(live, "south", intent(circle(*C, 1000), kind="crewed_flight", key=[a["ovn"]]))
        assert [c["b"]["id"] for c in b["conflicts"]] == [a["id"]]


def test_withdraw_closes_conflicts_and_update_rerecords_them(live: Live) -> None:
    low = file(live, "drones", intent(circle(*C, 1000)))["filing"]
    high = file(live, "north", intent(circle(*C, 2000), kind="crewed_flight", key=[low["ovn"]]))
    hf = high["filing"]
    c = live.client("north")
    moved = c.put(
        f"/v1/intents/{hf['id']}",
        json={**intent(circle(*C, 3000), kind="crewed_flight"), "ovn": hf["ovn"], "key": [low["ovn"]]},
    )
    assert moved.status_code == 200, moved.text
    open_now = c.get("/v1/conflicts").json()
    assert [(x["a"]["id"], x["a"]["version"]) for x in open_now] == [(hf["id"], 2)]
    closed = c.get("/v1/conflicts", params={"state": "closed"}).json()
    assert [(x["a"]["id"], x["a"]["version"]) for x in closed] == [(hf["id"], 1)]
    gone = live.client("drones").delete(f"/v1/intents/{low['id']}", params={"ovn": low["ovn"]})
    assert gone.status_code == 200
    assert gone.json()["filing"]["state"] == "ended"
    assert c.get("/v1/conflicts").json() == []
    # an ended filing no longer conflicts: a new plan there misses north's version only
    miss = file(live, "south", intent(circle(*C, 1000), kind="uas_flight"), 409)
    assert [m["id"] for m in miss["missing"]] == [hf["id"]]


# -- buffer arithmetic at the boundaries, through the server --------------------

ZERO = agreements.load().with_buffers(0.0, 0.0, 0.0)
TWO = agreements.load().with_buffers(2.0, 2.0, 2.0)


@pytest.mark.parametrize(
    ("agreement_", "a", "b", "conflict"),
    [
        (ZERO, box(0, 0, 100, 100), box(100, 0, 200, 100), True),  # touching edge
        (ZERO, box(0, 0, 100, 100), box(101, 0, 200, 100), False),  # 1 m apart
        (TWO, box(0, 0, 100, 100), box(101, 0, 200, 100), True),  # 1 m apart, 2 m buffer
        (ZERO, box(0, 0, 100, 100, lower=0, upper=100), box(0, 0, 100, 100, lower=100, upper=200), True),
        (ZERO, box(0, 0, 100, 100, lower=0, upper=100), box(0, 0, 100, 100, lower=101, upper=200), False),
        (TWO, box(0, 0, 100, 100, lower=0, upper=100), box(0, 0, 100, 100, lower=101, upper=200), True),
        (ZERO, box(0, 0, 100, 100, start=120, end=150), box(0, 0, 100, 100, start=150, end=180), True),
        (ZERO, box(0, 0, 100, 100, start=120, end=150), box(0, 0, 100, 100, start=150.05, end=180), False),
        (
            TWO,
            box(0, 0, 100, 100, start=120, end=150),
            box(0, 0, 100, 100, start=150 + 1 / 60, end=180),
            True,
        ),
    ],
    ids=[
        "touching",
        "1m-apart",
        "1m-apart-2m-buffer",
        "altitudes-touch",
        "altitudes-1m-apart",
        "altitudes-1m-apart-2m-buffer",
        "times-touch",
        "times-3s-apart",
        "times-1s-apart-2s-buffer",
    ],
)
def test_buffer_boundaries(
    make_live: Any, agreement_: Any, a: dict[str, Any], b: dict[str, Any], conflict: bool
) -> None:
    with make_live(agreement_) as live:
        first = file(live, "drones", intent(a))["filing"]
        second = file(live, "north", intent(b, kind="crewed_flight", key=[first["ovn"]]))
        assert bool(second["conflicts"]) is conflict
        if conflict:
            assert second["conflicts"][0]["b"]["id"] == first["id"]


# -- lifecycle and visibility ----------------------------------------------------


def test_lifecycle_accepted_activated_ended(live: Live) -> None:
    c = live.client("north")
    f = file(live, "north", intent(circle(*C, 100)))["filing"]
    act = c.post(f"/v1/intents/{f['id']}/state", json={"ovn": f["ovn"], "state": "activated"})
    assert act.status_code == 200 and act.json()["filing"]["state"] == "activated"
    f2 = act.json()["filing"]
    bad = c.post(f"/v1/intents/{f['id']}/state", json={"ovn": f2["ovn"], "state": "accepted"})
    assert bad.status_code == 422  # 'accepted' is not a state one moves to
    end = c.post(f"/v1/intents/{f['id']}/state", json={"ovn": f2["ovn"], "state": "ended"})
    assert end.json()["filing"]["state"] == "ended" and end.json()["filing"]["version"] == 3
    again = c.post(
        f"/v1/intents/{f['id']}/state", json={"ovn": end.json()["filing"]["ovn"], "state": "activated"}
    )
    assert again.status_code == 409


def test_another_party_sees_only_volumes_times_kind_state_owner(live: Live) -> None:
    f = file(live, "north", intent(circle(*C, 100)))["filing"]
    mine = live.client("north").get(f"/v1/intents/{f['id']}").json()
    theirs = live.client("south").get(f"/v1/intents/{f['id']}").json()
    assert {"notice_s", "late", "priority", "created_at"} <= set(mine)
    assert set(theirs) == {"id", "type", "owner", "kind", "state", "version", "ovn", "volumes"}
    assert theirs["volumes"] == mine["volumes"]


def test_constraints_are_filed_and_checked_like_intents(live: Live) -> None:
    c = live.client("shield")
    assert c.post("/v1/constraints", json={"volumes": [circle(*C, 5000)]}).status_code == 403
    r = live.client("north").post("/v1/constraints", json={"volumes": [circle(*C, 5000)]})
    assert r.status_code == 201, r.text
    cons = r.json()["filing"]
    assert cons["type"] == "constraint" and cons["kind"] == "reservation"
    # a drone flight inside the reservation must show it has seen it
    miss = file(live, "drones", intent(circle(*C, 100)), 409)
    assert [m["id"] for m in miss["missing"]] == [cons["id"]]
    # and reservation priority (80) beats uas (20): blocked even with the key
    blocked = file(live, "drones", intent(circle(*C, 100), key=[cons["ovn"]]), 409)
    assert blocked["type"] == "urn:deconflict:problem:conflict-blocked"
    assert live.client("north").get(f"/v1/intents/{cons['id']}").status_code == 404


def test_query_by_area_and_time_returns_geojson(live: Live) -> None:
    f = file(live, "north", intent(circle(*C, 100)))["filing"]
    file(live, "south", intent(circle(36.0, 34.0, 100)))
    q = live.client("shield").post("/v1/query", json={"area": circle(35.001, 33.0, 200)})
    assert q.status_code == 200, q.text
    fc = q.json()
    assert fc["type"] == "FeatureCollection"
    assert [x["properties"]["filing_id"] for x in fc["features"]] == [f["id"]]
    later = live.client("shield").post(
        "/v1/query", json={"area": circle(35.001, 33.0, 200, start=200, end=260)}
    )
    assert later.json()["features"] == []
