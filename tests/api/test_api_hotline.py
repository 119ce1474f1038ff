"""The hotline through a real server, with real SSE (httpx streaming) and WebSocket
(`websockets`) clients: warnings on both parties' streams, replay after a disconnect
and after a server restart exactly once and in order, read-back mismatches, refused
replies, escalation and DOWN readable through the API."""

from __future__ import annotations

import json
import signal
from datetime import timedelta
from typing import Any

import httpx
import pytest
from conftest import T0, Live, circle, free_port
from hotline_clients import SSE, WS, until
from test_api_restart import start
from websockets.exceptions import InvalidStatus

from deconflict.ledger.entries import Kind, decode_entry


def sse_code(event: dict[str, Any]) -> str | None:
    if event["event"] != "message":
        return None
    return str(event["data"]["data"]["message"]["code"])


def ws_code(frame: dict[str, Any]) -> str | None:
    return str(frame["data"]["message"]["code"]) if frame["type"] == "message" else None


def free_text(live: Live, sender: str, to: str, text: str) -> dict[str, Any]:
    r = live.client(sender).post(
        "/v1/hotline/messages", json={"code": "FREE_TEXT", "to": [to], "fields": {"text": text}}
    )
    assert r.status_code == 201, r.text
    return r.json()["message"]  # type: ignore[no-any-return]


def test_a_conflicting_filing_warns_both_parties_on_their_streams(live: Live) -> None:
    with SSE(live.url, live.tokens["north"]) as north, WS(live.url, live.tokens["drones"]) as drones:
        survey = live.client("drones").post(
            "/v1/intents", json={"kind": "uas_flight", "volumes": [circle(36.05, 35.1, 3000)]}
        )
        assert survey.status_code == 201, survey.text
        body = {"kind": "crewed_flight", "volumes": [circle(36.1, 35.1, 5000, upper=3000)]}
        body["key"] = [survey.json()["filing"]["ovn"]]
        patrol = live.client("north").post("/v1/intents", json=body)
        assert patrol.status_code == 201, patrol.text
        (conflict,) = patrol.json()["conflicts"]

        n = until(north.next, lambda e: sse_code(e) == "CONFLICT_WARNING")
        d = until(drones.next, lambda e: ws_code(e) == "CONFLICT_WARNING")
    for message in (n["data"]["data"]["message"], d["data"]["message"]):
        assert message["fields"]["conflict"] == conflict["id"]
        assert message["sender"] == "@service" and message["recipients"] == ["drones", "north"]
    assert n["data"]["data"]["language"] == "ru" and "ПРЕДУПРЕЖДЕНИЕ О КОНФЛИКТЕ" in n["data"]["data"]["text"]
    assert d["data"]["language"] == "en" and d["data"]["text"].startswith("CONFLICT WARNING")
    assert n["id"] == n["data"]["seq"] and n["id"] >= 2  # after drones' notice


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_reconnect_replays_exactly_what_was_missed(live: Live, transport: str) -> None:
    def open_stream(after: int | None) -> Any:
        if transport == "sse":
            return SSE(live.url, live.tokens["south"], after)
        return WS(live.url, live.tokens["south"], after or 0)

    def seq(event: dict[str, Any]) -> int:
        return int(event["id"] if transport == "sse" else event["seq"])

    def text(event: dict[str, Any]) -> str:
        data = event["data"]["data"] if transport == "sse" else event["data"]
        return str(data["message"]["fields"]["text"])

    with open_stream(None) as stream:
        free_text(live, "north", "south", "zero")
        first = stream.next()
        assert (seq(first), text(first)) == (1, "zero")
    sent = [free_text(live, "north", "south", t)["id"] for t in ("one", "two", "three")]
    with open_stream(seq(first)) as stream:
        got = [stream.next() for _ in range(3)]
        assert [(seq(e), text(e)) for e in got] == [(2, "one"), (3, "two"), (4, "three")]
        free_text(live, "north", "south", "four")
        after = stream.next()  # the next one is new: nothing was sent twice
        assert (seq(after), text(after)) == (5, "four")
    assert len(set(sent)) == 3


def test_websocket_client_acknowledges_delivery_and_heartbeats(live: Live) -> None:
    with WS(live.url, live.tokens["south"]) as ws:
        message = free_text(live, "north", "south", "check")
        frame = ws.next()
        # handled in order: once north sees the delivery, the heartbeat is in too
        ws.send({"type": "heartbeat"})
        ws.send({"type": "delivered", "message": message["id"]})
        with SSE(live.url, live.tokens["north"]) as north:
            delivered = until(north.next, lambda e: e["event"] == "delivered")
    assert frame["data"]["message"]["id"] == message["id"]
    assert delivered["data"]["data"]["recipient"] == "south"
    got = live.client("south").get(f"/v1/hotline/messages/{message['id']}").json()
    assert got["deliveries"][0]["delivered_at"] == "2030-06-01T12:00:00Z"
    status = {s["party"]: s["state"] for s in live.client("north").get("/v1/hotline/status").json()}
    assert status["south"] == "up" and status["north"] == "unknown"
    assert "admin" not in status  # not a hotline party: it has no line to watch


def test_streams_need_a_token(live: Live) -> None:
    r = httpx.get(f"{live.url}/v1/hotline/stream")
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    with pytest.raises(InvalidStatus):
        WS(live.url, "dcf_wrong")
    r = live.client("north").get("/v1/hotline/stream", headers={"Last-Event-ID": "x1"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "Last-Event-ID"


def test_read_back_with_a_wrong_altitude_is_flagged_to_both(live: Live) -> None:
    area = {"type": "Point", "coordinates": [36.0, 35.0], "radius_m": 1000}
    window = {"start": "2030-06-01T14:00:00Z", "end": "2030-06-01T15:00:00Z"}
    r = live.client("north").post(
        "/v1/hotline/messages",
        json={
            "code": "READ_BACK",
            "to": ["south"],
            "fields": {"message": "nope", "area": area, "time_window": window, "altitude_band": {}},
        },
    )
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {
        "fields.altitude_band.lower_m",
        "fields.altitude_band.upper_m",
    }
    filed = live.client("north").post(
        "/v1/intents", json={"kind": "crewed_flight", "volumes": [circle(36.0, 35.0, 1000, upper=900)]}
    )
    assert filed.status_code == 201
    (notice,) = live.client("south").get("/v1/hotline/messages").json()
    assert notice["code"] == "NOTICE_OF_ACTIVITY" and notice["language"] == "he"
    fields = dict(notice["fields"])
    fields["altitude_band"] = {"lower_m": 0, "upper_m": 9000}  # read back 9000 for 900
    del fields["filing"], fields["kind"], fields["volumes"]
    r = live.client("south").post(
        "/v1/hotline/messages", json={"code": "READ_BACK", "fields": {"message": notice["id"], **fields}}
    )
    assert r.status_code == 201, r.text
    read_back = r.json()["message"]
    assert read_back["recipients"] == ["north"]
    assert read_back["mismatches"] == [
        {"field": "altitude_band.upper_m", "original": 900.0, "read_back": 9000.0}
    ]
    for party in ("north", "south"):
        events = live.client(party).get("/v1/hotline/events").json()["events"]
        flagged = [e["data"] for e in events if e["type"] == "read_back_mismatch"]
        assert flagged == [
            {"message": read_back["id"], "refers_to": notice["id"], "mismatches": read_back["mismatches"]}
        ], party


def test_a_reply_outside_the_allowed_set_is_refused_and_changes_nothing(live: Live) -> None:
    fields = {"track": "T-9", "position": [36.0, 35.0], "altitude": 2500, "time": "2030-06-01T12:00:00Z"}
    r = live.client("north").post(
        "/v1/hotline/messages", json={"code": "IDENTITY_QUERY", "to": ["drones"], "fields": fields}
    )
    assert r.status_code == 201, r.text
    mid = r.json()["message"]["id"]
    before = live.client("drones").get(f"/v1/hotline/messages/{mid}").json()
    size = live.services.ledger.size()
    bad = live.client("drones").post(f"/v1/hotline/messages/{mid}/reply", json={"reply": "WILCO"})
    assert bad.status_code == 422, bad.text
    problem = bad.json()
    assert problem["errors"] == [
        {"field": "reply", "rule": "must be one of MINE, NOT_MINE, UNKNOWN for IDENTITY_QUERY"}
    ]
    assert live.client("drones").get(f"/v1/hotline/messages/{mid}").json() == before
    assert live.services.ledger.size() == size
    ok = live.client("drones").post(f"/v1/hotline/messages/{mid}/reply", json={"reply": "MINE"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["delivery"]["reply"] == "MINE"
    receipt = ok.json()["receipt"]
    with live.services.store.read() as reader:
        ((_, raw),) = reader.log_entries(receipt["leaf_index"], receipt["leaf_index"] + 1)
    assert decode_entry(raw).kind is Kind.MESSAGE_REPLIED
    other = live.client("shield").get(f"/v1/hotline/messages/{mid}")
    assert other.status_code == 404


def test_escalation_and_down_are_readable_through_the_api(live: Live) -> None:
    fields = {"track": "T-9", "position": [36.0, 35.0], "altitude": 2500, "time": "2030-06-01T12:00:00Z"}
    r = live.client("north").post(
        "/v1/hotline/messages", json={"code": "IDENTITY_QUERY", "to": ["south"], "fields": fields}
    )
    mid = r.json()["message"]["id"]
    (delivery,) = r.json()["message"]["deliveries"]
    assert delivery["reply_due"] == "2030-06-01T12:01:00Z"
    assert live.client("south").post("/v1/hotline/heartbeat").json()["state"] == "up"
    live.clock.set(T0 + timedelta(seconds=60))
    report = live.services.hotline.tick()
    assert report.escalated == 1
    (delivery,) = live.client("north").get(f"/v1/hotline/messages/{mid}").json()["deliveries"]
    assert delivery["reply_overdue_at"] == "2030-06-01T12:01:00Z"
    assert delivery["escalation_contact"] == "Duty officer, southern air operations"
    live.clock.set(T0 + timedelta(seconds=90))
    assert live.services.hotline.tick().down == ("south",)
    status = {s["party"]: s for s in live.client("drones").get("/v1/hotline/status").json()}
    assert status["south"]["state"] == "down" and status["south"]["down_since"] == "2030-06-01T12:01:30Z"
    events = live.client("drones").get("/v1/hotline/events").json()["events"]
    assert events[-1]["type"] == "party_down" and events[-1]["data"]["party"] == "south"
    live.client("south").post("/v1/hotline/heartbeat")
    status = {s["party"]: s for s in live.client("drones").get("/v1/hotline/status").json()}
    assert status["south"]["state"] == "up"


def test_replay_across_a_server_restart(tmp_path: Any) -> None:
    """`deconflict serve` killed (SIGKILL) and started again on the same data: the SSE
    client reconnects with Last-Event-ID and gets the three messages it missed, in
    order, once (each was persisted before its sender got an answer)."""

    data = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(data, port)
    try:
        tokens = json.loads((data / "example-tokens.json").read_text())
        north = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens['north']}"})

        def send(text: str) -> str:
            r = north.post(
                "/v1/hotline/messages", json={"code": "FREE_TEXT", "to": ["south"], "fields": {"text": text}}
            )
            assert r.status_code == 201, r.text
            return str(r.json()["message"]["id"])

        with SSE(url, tokens["south"]) as stream:
            marker = send("before")
            last = until(
                stream.next,
                lambda e: e["event"] == "message" and e["data"]["data"]["message"]["id"] == marker,
            )
        sent = [send(t) for t in ("one", "two", "three")]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc = start(data, port)
        with SSE(url, tokens["south"], last["id"]) as stream:
            got = [stream.next() for _ in range(3)]
            assert [e["id"] for e in got] == [last["id"] + 1, last["id"] + 2, last["id"] + 3]
            assert [e["data"]["data"]["message"]["id"] for e in got] == sent
            fourth = send("four")
            after = stream.next()
            assert (after["id"], after["data"]["data"]["message"]["id"]) == (last["id"] + 4, fourth)
        north.close()
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_events_written_by_another_process_reach_the_stream(live: Live) -> None:
    """Another writer on the same database (its own store, services and bell: what a
    second worker process has) sends a message; the server's stream follows the
    persisted sequence and delivers it without any ring from that writer."""
    from deconflict.service import Services
    from deconflict.store import open_store

    other = Services.build(open_store(live.services.store.database), live.services.agreement, live.clock)
    try:
        assert other.hotline.bell is not live.services.hotline.bell
        north = next(p for p in other.parties.all() if p.id == "north")
        with SSE(live.url, live.tokens["south"]) as stream:
            sent = other.hotline.send(north, "CHANNEL_CHECK", ["south"], {})
            event = stream.next()
        assert event["data"]["data"]["message"]["id"] == sent.message.id
    finally:
        other.store.close()


def test_webhook_registration_through_the_api(live: Live) -> None:
    assert live.client("south").get("/v1/hotline/webhook").status_code == 404
    bad = live.client("south").put("/v1/hotline/webhook", json={"url": "file:///etc/passwd"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "url"
    r = live.client("south").put("/v1/hotline/webhook", json={"url": "http://127.0.0.1:9/hook"})
    assert r.status_code == 200, r.text
    assert len(r.json()["secret"]) >= 40 and r.json()["delivered_seq"] == 0
    got = live.client("south").get("/v1/hotline/webhook").json()
    assert got == {"url": "http://127.0.0.1:9/hook", "delivered_seq": 0, "failures": 0, "next_attempt": None}
    assert "secret" not in got
    assert live.client("south").delete("/v1/hotline/webhook").status_code == 204
    assert live.client("south").delete("/v1/hotline/webhook").status_code == 404


def test_the_agreement_shows_the_hotline_terms(live: Live) -> None:
    body = live.client("shield").get("/v1/agreement").json()
    assert body["hotline"]["down_after_s"] == 90 and body["hotline"]["down_filings"] == "lowest_priority"
    assert body["hotline"]["deadlines"]["CONFLICT_WARNING"] == {"delivery_s": 15, "reply_s": 120}
    north = next(p for p in body["parties"] if p["id"] == "north")
    assert north["escalation"][0] == "Duty officer, northern operations centre"
