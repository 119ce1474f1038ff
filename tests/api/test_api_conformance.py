"""Conformance monitoring and unannounced aircraft through the real server, SQLite and
PostgreSQL: a track outside its intent's volumes (beyond the agreement's tolerance)
makes the intent nonconforming and back inside activates it again, each a recorded
version announced on the hotline; a track with no intent inside another party's
reservation raises an alert and an IDENTITY_QUERY to every party."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from conftest import T0, Live, circle

from deconflict.geometry.projection import LocalProjection

C = (35.0, 33.0)
PLANE = LocalProjection.at(*C)


def rep(track: str, x_m: float, t: float, *, alt_m: float = 60.0, **extra: Any) -> dict[str, Any]:
    lon, lat = PLANE.inverse([x_m], [0.0])
    return {
        "track": track,
        "time": datetime.fromtimestamp(T0.timestamp() + t, UTC).isoformat().replace("+00:00", "Z"),
        "lat": float(lat[0]), "lon": float(lon[0]), "alt_m": alt_m,
        "gs_mps": 10.0, "trk_deg": 90.0, "vs_mps": 0.0, **extra,
    }  # fmt: skip


def messages(live: Live, party: str, code: str) -> list[dict[str, Any]]:
    evs = live.client(party).get("/v1/hotline/events", params={"limit": 1000}).json()["events"]
    return [e["data"] for e in evs if e["type"] == "message" and e["data"]["message"]["code"] == code]


def test_track_outside_its_intent_makes_it_nonconforming_and_back(live: Live) -> None:
    drones = live.client("drones")
    r = drones.post(
        "/v1/intents",
        json={"kind": "uas_flight", "state": "activated", "volumes": [circle(*C, 500, start=-1, end=60)]},
    )
    assert r.status_code == 201, r.text
    iid = r.json()["filing"]["id"]
    post = lambda reports: drones.post("/v1/tracks", json={"reports": reports}).json()  # noqa: E731
    # inside, then 40 m outside the circle: within the agreed 50 m tolerance
    assert post([rep("D1", 0, 0, intent=iid)])["transitions"] == []
    live.clock.advance(1)
    assert post([rep("D1", 540, 1, intent=iid)])["transitions"] == []
    assert drones.get(f"/v1/intents/{iid}").json()["state"] == "activated"
    # 80 m outside: nonconforming, a new version, recorded and announced
    live.clock.advance(1)
    done = post([rep("D1", 580, 2, intent=iid)])["transitions"]
    assert [t["state"] for t in done] == ["nonconforming"]
    got = drones.get(f"/v1/intents/{iid}").json()
    assert got["state"] == "nonconforming" and got["ovn"] == done[0]["ovn"]
    # still outside (or above the band): nothing more
    live.clock.advance(1)
    assert post([rep("D1", 0, 3, alt_m=200.0, intent=iid)])["transitions"] == []
    for party in ("north", "south", "shield"):
        (m,) = messages(live, party, "ACTIVITY_NONCONFORMING")
        assert m["message"]["fields"] == {"filing": iid, "kind": "uas_flight"}
    # back inside: activated again
    live.clock.advance(1)
    assert [t["state"] for t in post([rep("D1", 100, 4, intent=iid)])["transitions"]] == ["activated"]
    versions = [v["state"] for v in drones.get(f"/v1/intents/{iid}/versions").json()]
    assert sorted(versions) == ["activated", "activated", "nonconforming"]
    assert len(messages(live, "north", "ACTIVITY_ACTIVATED")) == 2  # filed activated, then again
    with live.services.store.read() as r:
        from deconflict.ledger.entries import decode_entry

        size = r.log_size()
        states = [
            e.body["state"]
            for e in map(decode_entry, (b for _, b in r.log_entries(0, size)))
            if e.kind.value == "state_changed"
        ]
    assert states == ["nonconforming", "activated"]


def test_outside_its_time_window_is_nonconforming(live: Live) -> None:
    drones = live.client("drones")
    r = drones.post(
        "/v1/intents",
        json={"kind": "uas_flight", "state": "activated", "volumes": [circle(*C, 500, start=-1, end=1)]},
    )
    iid = r.json()["filing"]["id"]
    live.clock.advance(60 + 20)  # 20 s past the end: within the agreed 30 s
    r = drones.post("/v1/tracks", json={"reports": [rep("D1", 0, 80, intent=iid)]}).json()
    assert r["transitions"] == []
    live.clock.advance(20)  # 40 s past the end
    r = drones.post("/v1/tracks", json={"reports": [rep("D1", 0, 100, intent=iid)]}).json()
    assert [t["state"] for t in r["transitions"]] == ["nonconforming"]


def test_unannounced_aircraft_in_a_reservation(live: Live) -> None:
    r = live.client("north").post("/v1/constraints", json={"volumes": [circle(*C, 2000, start=-1, end=60)]})
    assert r.status_code == 201, r.text
    cid = r.json()["filing"]["id"]
    # the reservation's owner's own aircraft: nothing
    r = live.client("north").post("/v1/tracks", json={"reports": [rep("N1", 0, 0, kind="uas_flight")]}).json()
    assert r["alerts"] == []
    # another party's aircraft with no intent, inside: an alert and an IDENTITY_QUERY to all
    r = (
        live.client("south")
        .post("/v1/tracks", json={"reports": [rep("S1", 1500, 0, kind="uas_flight")]})
        .json()
    )
    ((change, alert),) = [(c["change"], c["alert"]) for c in r["alerts"]]
    assert change == "opened" and alert["kind"] == "unannounced"
    assert (alert["track_a"], alert["party_a"], alert["filing"]) == ("south/S1", "south", cid)
    for party in ("north", "south", "drones", "shield"):
        (q,) = messages(live, party, "IDENTITY_QUERY")
        assert q["message"]["fields"]["track"] == "south/S1"
        assert q["message"]["recipients"] == ["drones", "north", "shield", "south"]
        assert q["message"]["fields"]["altitude"] == 60.0
    # still inside: the same alert, no second query
    live.clock.advance(1)
    r = (
        live.client("south")
        .post("/v1/tracks", json={"reports": [rep("S1", 1510, 1, kind="uas_flight")]})
        .json()
    )
    assert [c["change"] for c in r["alerts"]] == ["updated"]
    assert len(messages(live, "north", "IDENTITY_QUERY")) == 1
    # out of the reservation: closed
    live.clock.advance(1)
    r = (
        live.client("south")
        .post("/v1/tracks", json={"reports": [rep("S1", 2100, 2, kind="uas_flight")]})
        .json()
    )
    assert [c["change"] for c in r["alerts"]] == ["closed"]
    assert live.client("north").get("/v1/tactical/alerts").json() == []
