"""The shared record through a real server: receipts, signed tree heads, inclusion and
consistency proofs that verify with nothing but the published key and rfc9162; refused
requests append nothing; the log is readable by every party, observers too."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import T0, Live, ThreadServer, circle

from deconflict import agreements
from deconflict.api.app import create_app
from deconflict.clock import ManualClock
from deconflict.ledger import sth as sth_mod
from deconflict.ledger.entries import Kind, decode_entry
from deconflict.ledger.keys import decode_public_key
from deconflict.ledger.rfc9162 import leaf_hash, verify_consistency, verify_inclusion
from deconflict.model import Role
from deconflict.service import Services
from deconflict.store.sqlite import SqliteStore

C = (35.0, 33.0)


def intent(*volumes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"kind": "uas_flight", "volumes": list(volumes), **extra}


def signed_head(live: Live, party: str = "shield") -> sth_mod.SignedTreeHead:
    r = live.client(party).get("/v1/log/sth")
    assert r.status_code == 200, r.text
    return sth_mod.SignedTreeHead.from_json(r.json())


def public_key(live: Live) -> bytes:
    r = live.client("shield").get("/v1/log/key")
    assert r.status_code == 200, r.text
    body = r.json()
    raw = decode_public_key(body["public_key"])
    assert body["algorithm"] == "Ed25519" and body["public_key_pem"].startswith("-----BEGIN PUBLIC KEY")
    assert body["key_id"] == live.services.ledger.key.key_id
    return raw


def test_a_receipt_is_proven_by_a_signed_head(live: Live) -> None:
    filed = live.client("north").post("/v1/intents", json=intent(circle(*C, 100)))
    assert filed.status_code == 201, filed.text
    receipt = filed.json()["receipt"]
    assert receipt["leaf_index"] == 5  # after the five parties the fixture added
    head = signed_head(live)
    assert head.head.size == 7  # and the hotline's NOTICE_OF_ACTIVITY after it
    sth_mod.verify(head, public_key(live))  # raises unless signed by the published key

    r = live.client("south").get("/v1/log/proof/inclusion", params={"index": 5, "size": head.head.size})
    assert r.status_code == 200, r.text
    proof = r.json()
    assert (proof["leaf_index"], proof["tree_size"]) == (5, 7)
    path = [bytes.fromhex(h) for h in proof["audit_path"]]
    verify_inclusion(bytes.fromhex(receipt["entry_hash"]), 5, 7, path, head.head.root)

    page = live.client("shield").get("/v1/log/entries", params={"start": 0}).json()
    assert (page["start"], page["end"], len(page["entries"])) == (0, 7, 7)
    assert decode_entry(base64.b64decode(page["entries"][6])).kind is Kind.MESSAGE_SENT
    entry = base64.b64decode(page["entries"][5])
    assert leaf_hash(entry).hex() == receipt["entry_hash"]
    decoded = decode_entry(entry)
    assert decoded.kind is Kind.FILING_CREATED
    assert (decoded.body["id"], decoded.body["ovn"]) == (
        filed.json()["filing"]["id"],
        filed.json()["filing"]["ovn"],
    )
    assert [decode_entry(base64.b64decode(e)).kind for e in page["entries"][:5]] == [Kind.PARTY_ADDED] * 5


def test_each_version_names_its_own_entry_in_the_log(live: Live) -> None:
    """GET …/versions gives each version's `leaf_index`: the entry there records exactly
    that version, through every way a version is made (create, update with conflicts
    closed and opened, state change, withdrawal)."""
    north = live.client("north")
    low = live.client("drones").post("/v1/intents", json=intent(circle(*C, 3000))).json()["filing"]
    filed = north.post("/v1/intents", json=intent(circle(*C, 100), kind="crewed_flight", key=[low["ovn"]]))
    assert filed.status_code == 201, filed.text
    f = filed.json()["filing"]
    moved = north.put(
        f"/v1/intents/{f['id']}",
        json={**intent(circle(*C, 200), kind="crewed_flight", key=[low["ovn"]]), "ovn": f["ovn"]},
    )
    assert moved.status_code == 200, moved.text
    ovn = moved.json()["filing"]["ovn"]
    active = north.post(f"/v1/intents/{f['id']}/state", json={"ovn": ovn, "state": "activated"})
    assert active.status_code == 200, active.text
    gone = north.delete(f"/v1/intents/{f['id']}", params={"ovn": active.json()["filing"]["ovn"]})
    assert gone.status_code == 200, gone.text
    versions = live.client("south").get(f"/v1/intents/{f['id']}/versions").json()
    assert [v["version"] for v in versions] == [1, 2, 3, 4]
    kinds = [Kind.FILING_CREATED, Kind.FILING_VERSIONED, Kind.STATE_CHANGED, Kind.FILING_WITHDRAWN]
    for v, kind in zip(versions, kinds, strict=True):
        i = v["leaf_index"]
        page = live.client("south").get("/v1/log/entries", params={"start": i, "end": i + 1}).json()
        entry = decode_entry(base64.b64decode(page["entries"][0]))
        assert entry.kind is kind, (v["version"], entry.kind)
        assert (entry.body["id"], entry.body["version"], entry.body["ovn"]) == (
            f["id"],
            v["version"],
            v["ovn"],
        )
    assert versions[0]["leaf_index"] == filed.json()["receipt"]["leaf_index"]
    assert versions[1]["leaf_index"] == moved.json()["receipt"]["leaf_index"]


def test_a_whole_receipt_carries_its_head_and_proof(live: Live) -> None:
    filed = live.client("north").post("/v1/intents", json=intent(circle(*C, 100)))
    assert filed.status_code == 201, filed.text
    index = filed.json()["receipt"]["leaf_index"]
    # no head covers it yet: asking for the receipt signs one
    assert live.services.ledger.latest_head() is None
    r = live.client("south").get(f"/v1/log/receipts/{index}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["leaf_index"], body["entry_hash"]) == (index, filed.json()["receipt"]["entry_hash"])
    head = sth_mod.SignedTreeHead.from_json(body["sth"])
    sth_mod.verify(head, public_key(live))
    size = live.services.ledger.size()  # the filing, and the automatic messages after it
    assert head.head.size == size > index
    path = [bytes.fromhex(h) for h in body["audit_path"]]
    verify_inclusion(bytes.fromhex(body["entry_hash"]), index, head.head.size, path, head.head.root)
    # later entries: the same entry proven to the newer head
    live.client("south").post("/v1/intents", json=intent(circle(36.0, 33.0, 100)))
    later = live.client("south").get(f"/v1/log/receipts/{index}").json()
    assert later["sth"]["size"] == live.services.ledger.size() > size
    for past_the_end in (live.services.ledger.size(), 2**63 - 1):
        missing = live.client("south").get(f"/v1/log/receipts/{past_the_end}")
        assert missing.status_code == 404, missing.text
    assert live.client("south").get(f"/v1/log/receipts/{2**63}").status_code == 422


def test_consistency_between_two_heads(live: Live) -> None:
    first = signed_head(live)
    assert signed_head(live) == first  # nothing new: the same head
    a = live.client("north").post("/v1/intents", json=intent(circle(*C, 100))).json()
    b = live.client("south").post("/v1/intents", json=intent(circle(36.0, 33.0, 100))).json()
    upd = live.client("north").post(
        f"/v1/intents/{a['filing']['id']}/state", json={"ovn": a["filing"]["ovn"], "state": "activated"}
    )
    assert upd.status_code == 200
    # each followed by its automatic message (two notices, then ACTIVITY_ACTIVATED)
    assert [x["receipt"]["leaf_index"] for x in (a, b, upd.json())] == [5, 7, 9]
    second = signed_head(live)
    key = public_key(live)
    sth_mod.verify(second, key)
    assert second.head.size == 11 and second.head.timestamp_ms >= first.head.timestamp_ms
    r = live.client("north").get(
        "/v1/log/proof/consistency", params={"first": first.head.size, "second": second.head.size}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["first"], body["second"]) == (5, 11)
    path = [bytes.fromhex(h) for h in body["consistency_path"]]
    verify_consistency(5, 11, path, first.head.root, second.head.root)
    with pytest.raises(Exception, match="root"):
        verify_consistency(5, 11, path, second.head.root, second.head.root)


def test_refused_requests_append_nothing(live: Live) -> None:
    north = live.client("north").post("/v1/intents", json=intent(circle(*C, 100)))
    assert north.status_code == 201
    size = signed_head(live).head.size
    refused = [
        live.client("south").post("/v1/intents", json=intent(circle(*C, 100))),  # missing key
        live.client("shield").post("/v1/intents", json=intent(circle(*C, 100))),  # observer
        live.client("south").post("/v1/intents", json=intent(circle(*C, 100), kind="nope")),
        live.client("north").delete(f"/v1/intents/{north.json()['filing']['id']}", params={"ovn": "stale"}),
        live.client("admin").post("/v1/parties", json={"id": "north", "role": "observer"}),
    ]
    assert [r.status_code for r in refused] == [409, 403, 422, 409, 409]
    assert signed_head(live).head.size == size
    assert live.services.ledger.size() == size


def test_party_added_has_a_receipt(live: Live) -> None:
    r = live.client("admin").post("/v1/parties", json={"id": "press", "role": "observer"})
    assert r.status_code == 201, r.text
    assert r.json()["receipt"]["leaf_index"] == 5
    ((_, entry),) = live.services.ledger.entries(5, 6)
    decoded = decode_entry(entry)
    assert decoded.kind is Kind.PARTY_ADDED
    assert dict(decoded.body) == {"id": "press", "name": "press", "language": "en", "role": "observer"}


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("inclusion", {"index": 5, "size": 5}, "index"),
        ("inclusion", {"index": 0, "size": 6}, "size"),
        ("inclusion", {"index": -1, "size": 5}, "index"),
        ("inclusion", {"index": 0, "size": -5}, "size"),
        ("inclusion", {"size": 5}, "index"),
        ("inclusion", {"index": "x", "size": 5}, "index"),
        ("consistency", {"first": 3, "second": 2}, "first"),
        ("consistency", {"first": 3, "second": 9}, "second"),
        ("consistency", {"first": -3, "second": 4}, "first"),
    ],
)
def test_bad_proof_requests_name_the_parameter(
    live: Live, path: str, params: dict[str, Any], field: str
) -> None:
    r = live.client("north").get(f"/v1/log/proof/{path}", params=params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == [field]


def test_entries_are_paged_and_bounded(live: Live) -> None:
    c = live.client("drones")
    assert c.get("/v1/log/entries", params={"start": 2, "end": 4}).json()["end"] == 4
    assert c.get("/v1/log/entries", params={"start": 3, "end": 99}).json()["end"] == 5
    assert c.get("/v1/log/entries", params={"start": 5}).json() == {"start": 5, "end": 5, "entries": []}
    for params, field in [({"start": 6}, "start"), ({"start": 3, "end": 2}, "end"), ({}, "start")]:
        r = c.get("/v1/log/entries", params=params)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text


def test_the_log_needs_a_token(live: Live) -> None:
    for path in ("/v1/log/key", "/v1/log/sth", "/v1/log/entries?start=0"):
        assert live.client(None).get(path).status_code == 401


def test_heads_are_signed_in_the_background_while_the_app_runs(tmp_path: Path) -> None:
    services = Services.build(SqliteStore(tmp_path / "db.sqlite3"), agreements.load(), ManualClock(T0))
    services.parties.add("north", role=Role.OPERATOR)
    try:
        with ThreadServer(create_app(services, sth_interval_s=0.05), lifespan="on"):
            deadline = time.monotonic() + 10
            while services.ledger.latest_head() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            head = services.ledger.latest_head()
            # the party, then the agreement the service started under (recorded at start)
            assert head is not None and head.head.size == 2
            kinds = [decode_entry(e).kind for _, e in services.ledger.entries(0, 2)]
            assert kinds == [Kind.PARTY_ADDED, Kind.AGREEMENT_CHANGED]
            services.parties.add("south", role=Role.OPERATOR)
            while head.head.size < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
                head = services.ledger.latest_head()
                assert head is not None
            assert head.head.size == 3
    finally:
        services.store.close()


def test_replay_rebuilds_filings_and_open_conflicts_at_a_time(live: Live) -> None:
    """GET /v1/log/replay: state at T from the log alone, on the server's clock."""
    drones = live.client("drones").post("/v1/intents", json=intent(circle(*C, 1000)))
    assert drones.status_code == 201, drones.text
    low = drones.json()["filing"]
    live.clock.advance(60)  # T0 + 1 min
    north = live.client("north").post(
        "/v1/intents",
        json={"kind": "crewed_flight", "volumes": [circle(*C, 2000)], "key": [low["ovn"]]},
    )
    assert north.status_code == 201, north.text
    live.clock.advance(60)  # T0 + 2 min: drones withdraws, which closes the conflict
    gone = live.client("drones").delete(f"/v1/intents/{low['id']}", params={"ovn": low["ovn"]})
    assert gone.status_code == 200
    c = live.client("shield")

    def at(seconds: int) -> dict[str, Any]:
        stamp = T0.timestamp() + seconds
        from datetime import UTC, datetime

        r = c.get("/v1/log/replay", params={"at": datetime.fromtimestamp(stamp, UTC).isoformat()})
        assert r.status_code == 200, r.text
        return dict(r.json())

    assert at(-1)["filings"] == []
    first = at(30)
    assert [f["id"] for f in first["filings"]] == [low["id"]] and first["conflicts"] == []
    both = at(90)
    assert sorted(f["owner"] for f in both["filings"]) == ["drones", "north"]
    assert [(x["a"]["owner"], x["b"]["owner"]) for x in both["conflicts"]] == [("north", "drones")]
    after = at(150)
    assert [f["owner"] for f in after["filings"]] == ["north"] and after["conflicts"] == []
    bad = c.get("/v1/log/replay", params={"at": "yesterday"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "at"
