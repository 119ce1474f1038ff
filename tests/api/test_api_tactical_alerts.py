"""Tactical alerts through the real server, SQLite and PostgreSQL: a conflict between
two parties' tracks is alerted once (opened, updated with new CPA figures, closed),
recorded in the shared record, and warned of on both parties' streams."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from typing import Any

import pytest
from conftest import T0, Live

from deconflict.errors import StoreUnavailable
from deconflict.geometry.projection import LocalProjection
from deconflict.ledger.entries import decode_entry

LON0, LAT0 = 35.0, 33.0
PLANE = LocalProjection.at(LON0, LAT0)


def uas(track: str, x_m: float, y_m: float, t: float, trk_deg: float, gs_mps: float = 20.0) -> dict[str, Any]:
    lon, lat = PLANE.inverse([x_m], [y_m])
    when = T0.timestamp() + t
    from datetime import UTC, datetime

    return {
        "track": track, "time": datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z"),
        "lat": float(lat[0]), "lon": float(lon[0]), "alt_m": 100.0, "gs_mps": gs_mps, "trk_deg": trk_deg,
        "vs_mps": 0.0, "kind": "uas_flight",
    }  # fmt: skip


def events(live: Live, party: str) -> list[dict[str, Any]]:
    return list(live.client(party).get("/v1/hotline/events", params={"limit": 1000}).json()["events"])


def log_kinds(live: Live) -> list[tuple[str, dict[str, Any]]]:
    with live.services.store.read() as r:
        size = r.log_size()
        return [
            (e.kind.value, dict(e.body)) for e in map(decode_entry, (b for _, b in r.log_entries(0, size)))
        ]


def test_conflict_alerted_once_opened_updated_closed(live: Live) -> None:
    north, south = live.client("north"), live.client("south")
    # head-on, 1 km apart, closing at 40 m/s: inside the 50 m zone in 23.75 s (< 30 s ahead)
    assert north.post("/v1/tracks", json={"reports": [uas("N1", 0, 0, 0, 90)]}).json()["alerts"] == []
    r = south.post("/v1/tracks", json={"reports": [uas("S1", 1000, 0, 0, 270)]}).json()
    assert [c["change"] for c in r["alerts"]] == ["opened"]
    opened = r["alerts"][0]["alert"]
    assert (opened["track_a"], opened["track_b"], opened["party_a"], opened["party_b"]) == (
        "north/N1",
        "south/S1",
        "north",
        "south",
    )
    assert abs(opened["figures"]["t_cpa_s"] - 25.0) < 0.1 and opened["figures"]["d_cpa_m"] < 1.0
    assert abs(opened["figures"]["t_in_s"] - 23.75) < 0.1 and opened["figures"]["los"] is False
    # 5 s on, both report again, S1 now 30 m to the side: the same alert, new figures
    live.clock.advance(5)
    north.post("/v1/tracks", json={"reports": [uas("N1", 100, 0, 5, 90)]})
    r = south.post("/v1/tracks", json={"reports": [uas("S1", 900, 30, 5, 270)]}).json()
    assert [c["change"] for c in r["alerts"]] == ["updated"]
    updated = r["alerts"][0]["alert"]
    assert updated["id"] == opened["id"] and abs(updated["figures"]["d_cpa_m"] - 30.0) < 0.5
    listed = north.get("/v1/tactical/alerts").json()
    assert [a["id"] for a in listed] == [opened["id"]] and abs(listed[0]["figures"]["d_cpa_m"] - 30.0) < 0.5
    # S1 turns north, away: closed
    live.clock.advance(1)
    r = south.post("/v1/tracks", json={"reports": [uas("S1", 880, 60, 6, 0)]}).json()
    assert [c["change"] for c in r["alerts"]] == ["closed"]
    assert north.get("/v1/tactical/alerts").json() == []
    (closed,) = north.get("/v1/tactical/alerts", params={"state": "all"}).json()
    assert closed["id"] == opened["id"] and closed["closed_at"] is not None
    # one warning to each party, once; the alert's open and close on both streams
    for party in ("north", "south"):
        evs = events(live, party)
        warnings = [e for e in evs if e["type"] == "message"
                    and e["data"]["message"]["code"] == "CONFLICT_WARNING"
                    and "track_a" in e["data"]["message"]["fields"]]  # fmt: skip
        assert len(warnings) == 1
        assert warnings[0]["data"]["message"]["fields"]["conflict"] == opened["id"]
        assert warnings[0]["data"]["message"]["recipients"] == ["north", "south"]
        changes = [e["data"]["change"] for e in evs if e["type"] == "tactical_alert"]
        assert changes == ["opened", "closed"]
    # the warning reads in each party's language (north: Russian)
    (n_warning,) = [e for e in events(live, "north") if e["type"] == "message"]
    assert n_warning["data"]["text"].startswith("ПРЕДУПРЕЖДЕНИЕ О КОНФЛИКТЕ ВОЗДУШНЫХ СУДОВ")
    # the shared record: opened and closed once each
    kinds = [(k, b) for k, b in log_kinds(live) if k.startswith("tactical_alert")]
    assert [k for k, _ in kinds] == ["tactical_alert_opened", "tactical_alert_closed"]
    assert kinds[0][1]["id"] == opened["id"] and kinds[1][1]["reason"] == "clear"


def test_same_party_tracks_are_not_alerted_by_default(live: Live) -> None:
    r = live.client("north").post(
        "/v1/tracks", json={"reports": [uas("N1", 0, 0, 0, 90), uas("N2", 1000, 0, 0, 270)]}
    )
    assert r.json()["alerts"] == [] and live.client("north").get("/v1/tactical/alerts").json() == []


def test_loss_of_separation_and_a_track_that_leaves_the_picture(live: Live) -> None:
    live.client("north").post("/v1/tracks", json={"reports": [uas("N1", 0, 0, 0, 90)]})
    r = live.client("drones").post("/v1/tracks", json={"reports": [uas("D1", 20, 0, 0, 270)]}).json()
    (opened,) = r["alerts"]
    assert opened["alert"]["figures"]["los"] is True
    # nobody reports for more than a minute: the tracks leave the picture, the alert closes
    live.clock.advance(61)
    assert live.client("north").get("/v1/tracks").json()["count"] == 0  # shown no more, alert still open
    assert len(live.client("north").get("/v1/tactical/alerts").json()) == 1
    r = live.client("south").post("/v1/tracks", json={"reports": [uas("S9", 50_000, 0, 61, 0)]}).json()
    assert [c["change"] for c in r["alerts"]] == ["closed"]
    assert r["tracks"] == 1
    kinds = [b for k, b in log_kinds(live) if k == "tactical_alert_closed"]
    assert kinds[0]["reason"] == "gone"


def warnings_of(live: Live, party: str) -> list[dict[str, Any]]:
    return [e["data"]["message"] for e in events(live, party) if e["type"] == "message"
            and e["data"]["message"]["code"] == "CONFLICT_WARNING"]  # fmt: skip


def test_with_a_scan_cycle_a_conflict_is_alerted_at_the_next_tick_without_another_batch(live: Live) -> None:
    tactical = live.services.tactical
    tactical.scan_interval_s = 1.0
    # the pair in conflict, then nothing more: the batches only update the picture
    r = live.client("north").post("/v1/tracks", json={"reports": [uas("N1", 0, 0, 0, 90)]}).json()
    assert (r["accepted"], r["tracks"], r["alerts"]) == (1, 1, [])
    r = live.client("south").post("/v1/tracks", json={"reports": [uas("S1", 1000, 0, 0, 270)]}).json()
    assert (r["accepted"], r["tracks"], r["alerts"]) == (1, 2, [])
    assert live.client("north").get("/v1/tactical/alerts").json() == []
    assert warnings_of(live, "north") == []
    # the next tick, 1 s on (what the server's scan cycle calls): the alert, figures dead-reckoned to it
    live.clock.advance(1)
    done = tactical.tick()
    ((change, alert),) = [(c["change"], c["alert"]) for c in done.alerts]
    assert change == "opened" and (alert["track_a"], alert["track_b"]) == ("north/N1", "south/S1")
    assert abs(alert["figures"]["t_cpa_s"] - 24.0) < 0.1 and alert["figures"]["d_cpa_m"] < 1.0
    (listed,) = live.client("south").get("/v1/tactical/alerts").json()
    assert listed["id"] == alert["id"] and listed["opened_at"].startswith("2030-06-01T12:00:01")
    for party in ("north", "south"):
        (warning,) = warnings_of(live, party)
        assert warning["fields"]["conflict"] == alert["id"] and warning["recipients"] == ["north", "south"]
        changes = [e["data"]["change"] for e in events(live, party) if e["type"] == "tactical_alert"]
        assert changes == ["opened"]
    # a tick with nothing reported since scans nothing: no second alert, no second warning
    live.clock.advance(1)
    assert tactical.tick().alerts == []
    assert len(live.client("north").get("/v1/tactical/alerts").json()) == 1
    assert len(warnings_of(live, "north")) == 1


def test_with_a_scan_cycle_silent_tracks_close_their_alert_at_a_tick(live: Live) -> None:
    tactical = live.services.tactical
    tactical.scan_interval_s = 1.0
    live.client("north").post("/v1/tracks", json={"reports": [uas("N1", 0, 0, 0, 90)]})
    live.client("drones").post("/v1/tracks", json={"reports": [uas("D1", 20, 0, 0, 270)]})
    (opened,) = tactical.tick().alerts
    assert opened["change"] == "opened" and opened["alert"]["figures"]["los"] is True
    # no batch from anyone for more than a minute: the cycle alone drops the tracks and closes it
    live.clock.advance(61)
    ((change, alert),) = [(c["change"], c["alert"]) for c in tactical.tick().alerts]
    assert change == "closed" and alert["id"] == opened["alert"]["id"]
    assert live.client("north").get("/v1/tactical/alerts").json() == []
    assert [b["reason"] for k, b in log_kinds(live) if k == "tactical_alert_closed"] == ["gone"]


def test_after_every_batch_the_answer_holds_the_alert_and_a_tick_adds_nothing(live: Live) -> None:
    assert live.services.tactical.scan_interval_s == 0.0  # the service's own default: scan each batch
    live.client("north").post("/v1/tracks", json={"reports": [uas("N1", 0, 0, 0, 90)]})
    r = live.client("south").post("/v1/tracks", json={"reports": [uas("S1", 1000, 0, 0, 270)]}).json()
    assert [c["change"] for c in r["alerts"]] == ["opened"]
    assert live.services.tactical.tick().alerts == []  # nothing left pending
    assert len(warnings_of(live, "north")) == 1


def test_batches_are_answered_while_a_scan_waits_to_write_its_alerts(live: Live) -> None:
    """The scan holds the picture's lock only for its snapshot: with its alert write held
    up (the store's write transaction taken here), batches and the picture still answer."""
    tactical = live.services.tactical
    tactical.scan_interval_s = 1.0
    live.client("north").post("/v1/tracks", json={"reports": [uas("N1", 0, 0, 0, 90)]})
    live.client("south").post("/v1/tracks", json={"reports": [uas("S1", 1000, 0, 0, 270)]})
    live.clock.advance(1)
    done: list[Any] = []
    with ExitStack() as held:
        held.enter_context(live.services.store.write())
        scan = threading.Thread(target=lambda: done.append(tactical.tick()))
        scan.start()
        deadline = time.monotonic() + 10
        while (
            not (tactical._scanning.locked() and not tactical.lock.locked()) and time.monotonic() < deadline
        ):
            time.sleep(0.01)  # bounded: until the scan has its snapshot and waits for the store
        r = live.client("south").post(
            "/v1/tracks", json={"reports": [uas("S2", 5000, 0, 1, 270)]}, timeout=10
        )
        assert r.status_code == 200 and r.json()["accepted"] == 1
        assert live.client("north").get("/v1/tracks", timeout=10).json()["count"] == 3
        assert scan.is_alive() and done == []  # the scan is still waiting to write
    scan.join(timeout=30)
    ((change, alert),) = [(c["change"], c["alert"]) for c in done[0].alerts]
    assert change == "opened" and (alert["track_a"], alert["track_b"]) == ("north/N1", "south/S1")
    # the batch that came in meanwhile is the next cycle's (S2, far away: nothing new)
    live.clock.advance(1)
    assert tactical.tick().alerts == [] and len(live.client("north").get("/v1/tactical/alerts").json()) == 1


def test_a_failed_scan_is_made_good_by_the_next(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    tactical = live.services.tactical
    tactical.scan_interval_s = 1.0
    live.client("north").post("/v1/tracks", json={"reports": [uas("N1", 0, 0, 0, 90)]})
    live.client("drones").post("/v1/tracks", json={"reports": [uas("D1", 20, 0, 0, 270)]})
    apply = tactical.alerts.apply

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("the database is briefly away")

    monkeypatch.setattr(tactical.alerts, "apply", unavailable)
    with pytest.raises(StoreUnavailable):
        tactical.tick()
    monkeypatch.setattr(tactical.alerts, "apply", apply)
    (opened,) = tactical.tick().alerts  # the tracks it took were pending again
    assert opened["change"] == "opened"
    # the tracks fall silent; the scan that drops them fails: the next one closes the alert
    live.clock.advance(61)
    monkeypatch.setattr(tactical.alerts, "apply", unavailable)
    with pytest.raises(StoreUnavailable):
        tactical.tick()
    monkeypatch.setattr(tactical.alerts, "apply", apply)
    ((change, alert),) = [(c["change"], c["alert"]) for c in tactical.tick().alerts]
    assert change == "closed" and alert["id"] == opened["alert"]["id"]
    assert [b["reason"] for k, b in log_kinds(live) if k == "tactical_alert_closed"] == ["gone"]


def test_a_rescan_that_changes_nothing_material_writes_nothing(live: Live) -> None:
    tactical = live.services.tactical
    tactical.scan_interval_s = 1.0
    live.client("north").post("/v1/tracks", json={"reports": [uas("N1", 0, 0, 0, 90)]})
    live.client("south").post("/v1/tracks", json={"reports": [uas("S1", 1000, 0, 0, 270)]})
    live.clock.advance(1)
    (opened,) = tactical.tick().alerts
    size = log_size(live)
    # 1 s on, both report where they were expected to be: same CPA instant and distance
    live.clock.advance(1)
    live.client("north").post("/v1/tracks", json={"reports": [uas("N1", 20, 0, 1, 90)]})
    live.client("south").post("/v1/tracks", json={"reports": [uas("S1", 980, 0, 1, 270)]})
    assert tactical.tick().alerts == []
    (listed,) = live.client("north").get("/v1/tactical/alerts").json()
    assert listed == opened["alert"] and log_size(live) == size  # not rewritten, nothing recorded
    # 1 s on, S1 2 m to the side: jitter, still nothing; 10 m (a fifth of the 50 m zone): updated
    live.clock.advance(1)
    live.client("south").post("/v1/tracks", json={"reports": [uas("S1", 960, 2, 2, 270)]})
    assert tactical.tick().alerts == []
    live.clock.advance(1)
    live.client("south").post("/v1/tracks", json={"reports": [uas("S1", 940, 10, 3, 270)]})
    ((change, alert),) = [(c["change"], c["alert"]) for c in tactical.tick().alerts]
    assert change == "updated" and abs(alert["figures"]["d_cpa_m"] - 10.0) < 0.5
    assert alert["updated_at"] > opened["alert"]["updated_at"]


def log_size(live: Live) -> int:
    with live.services.store.read() as r:
        return r.log_size()
