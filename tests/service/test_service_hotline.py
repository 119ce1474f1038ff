"""The hotline through the service, on a manual clock: two layers of acknowledgement,
read-back comparison, retries and escalation exactly at their deadlines, DOWN and UP,
each change with its log entries and its events, a refused request changing nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import T0

from deconflict import agreements
from deconflict.clock import ManualClock
from deconflict.errors import Forbidden, InvalidInput
from deconflict.ledger.entries import Kind, decode_entry
from deconflict.model import SERVICE, Circle, FilingType, Party, Role, State, Volume4D
from deconflict.model.agreement import ConflictAction, Deadlines
from deconflict.service import Draft, Services
from deconflict.service.hotline import TickReport
from deconflict.store.sqlite import SqliteStore

START = T0 + timedelta(hours=2)
AREA = {"type": "Point", "coordinates": [35.0, 33.0], "radius_m": 2000}
WINDOW = {"start": "2030-06-01T14:00:00Z", "end": "2030-06-01T15:00:00Z"}
BAND = {"lower_m": 0, "upper_m": 500}


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    s = _build(tmp_path / "db.sqlite3")
    yield s
    s.store.close()


def _build(path: Path) -> Services:
    base = agreements.load()
    hotline = dataclasses.replace(
        base.hotline,
        deadlines={"IDENTITY_QUERY": Deadlines(10, 60)},
        delivery_retries=2,
        heartbeat_period_s=30,
        down_after_s=90,
    )
    agreement = dataclasses.replace(base, conflict_action=ConflictAction.WARN, hotline=hotline)
    s = Services.build(SqliteStore(path), agreement, ManualClock(T0))
    for p in ("north", "south", "drones"):
        s.parties.add(p, role=Role.OPERATOR)
    s.parties.add("admin", role=Role.ADMIN)
    return s


def party(services: Services, pid: str) -> Party:
    return next(p for p in services.parties.all() if p.id == pid)


def clock(services: Services) -> ManualClock:
    assert isinstance(services.clock, ManualClock)
    return services.clock


def log(services: Services) -> list[tuple[Kind, dict[str, Any]]]:
    with services.store.read() as r:
        rows = r.log_entries(0, r.log_size())
    return [(e.kind, dict(e.body)) for e in (decode_entry(b) for _, b in rows)]


def events(services: Services, pid: str, after: int = 0) -> list[tuple[str, dict[str, Any]]]:
    return [(e.type, dict(e.data)) for e in services.hotline.events(pid, after)]


def query(services: Services) -> Any:
    north = party(services, "north")
    fields = {"track": "T-17", "position": [35.0, 33.0], "altitude": 3000, "time": "2030-06-01T12:00:00Z"}
    return services.hotline.send(north, "IDENTITY_QUERY", ["south"], fields)


def test_send_deliver_reply_each_recorded_and_announced(services: Services) -> None:
    size = len(log(services))
    sent = query(services)
    (d,) = sent.deliveries
    assert (d.recipient, d.delivery_due, d.reply_due) == (
        "south",
        T0 + timedelta(seconds=10),
        T0 + timedelta(seconds=60),
    )
    ((kind, body),) = log(services)[size:]
    assert kind is Kind.MESSAGE_SENT and body["code"] == "IDENTITY_QUERY" and body["recipients"] == ["south"]
    assert sent.receipt.leaf_index == size
    ((etype, data),) = events(services, "south")
    assert etype == "message" and data["message"]["id"] == sent.message.id
    assert [r["reply"] for r in data["replies"]] == ["MINE", "NOT_MINE", "UNKNOWN"]
    assert data["language"] == "he"
    assert data["text"].startswith("\u2067בירור זהות: האם המטרה \u2066T-17\u2069")

    south = party(services, "south")
    clock(services).advance(3)
    delivered, receipt = services.hotline.delivered(south, sent.message.id)
    assert delivered.delivered_at == T0 + timedelta(seconds=3) and receipt is not None
    again, none = services.hotline.delivered(south, sent.message.id)  # idempotent
    assert again.delivered_at == delivered.delivered_at and none is None
    clock(services).advance(4)
    replied, _ = services.hotline.reply(south, sent.message.id, "NOT_MINE")
    assert (replied.reply, replied.replied_at, replied.next_due) == (
        "NOT_MINE",
        T0 + timedelta(seconds=7),
        None,
    )
    assert [k for k, _ in log(services)[size:]] == [
        Kind.MESSAGE_SENT,
        Kind.MESSAGE_DELIVERED,
        Kind.MESSAGE_REPLIED,
    ]
    assert [t for t, _ in events(services, "north")] == ["delivered", "reply"]
    assert events(services, "north")[1][1]["reply"] == "NOT_MINE"


def test_a_refused_reply_changes_nothing(services: Services) -> None:
    sent = query(services)
    south = party(services, "south")
    size = len(log(services))
    with pytest.raises(InvalidInput) as info:
        services.hotline.reply(south, sent.message.id, "WILCO")
    assert info.value.errors[0].field == "reply"
    assert info.value.errors[0].rule == "must be one of MINE, NOT_MINE, UNKNOWN for IDENTITY_QUERY"
    with pytest.raises(Forbidden):  # the sender is not a recipient
        services.hotline.reply(party(services, "north"), sent.message.id, "MINE")
    services.hotline.reply(south, sent.message.id, "MINE")
    with pytest.raises(InvalidInput, match="already answered MINE"):
        services.hotline.reply(south, sent.message.id, "UNKNOWN")
    assert len(log(services)) == size + 2  # the MINE reply, and the delivery it implied
    _, (d,) = services.hotline.get(south, sent.message.id)
    assert d.reply == "MINE"


def test_send_errors_name_the_field(services: Services) -> None:
    north = party(services, "north")
    size = len(log(services))
    with pytest.raises(InvalidInput) as info:
        services.hotline.send(north, "IDENTITY_QUERY", ["north", "mallory"], {"track": "x"})
    fields = {e.field for e in info.value.errors}
    assert fields == {"fields.position", "fields.altitude", "fields.time"}
    with pytest.raises(InvalidInput) as info:
        services.hotline.send(north, "CHANNEL_CHECK", ["north", "mallory", "admin"], {})
    assert [(e.field, e.rule) for e in info.value.errors] == [
        ("to[0]", "a party does not send to itself"),
        ("to[1]", "no party 'mallory'"),
        ("to[2]", "an admin takes no hotline messages"),
    ]
    with pytest.raises(InvalidInput) as info:
        services.hotline.send(north, "HELLO", ["south"], {})
    assert info.value.errors[0].field == "code"
    fields_ = {"filing": "nope", "kind": "uas_flight"}
    with pytest.raises(InvalidInput, match="no filing 'nope'"):
        services.hotline.send(north, "ACTIVITY_ENDED", ["south"], fields_)
    assert len(log(services)) == size and events(services, "south") == []


def test_read_back_with_a_wrong_altitude_is_flagged_to_both(services: Services) -> None:
    north, south = party(services, "north"), party(services, "south")
    filed = services.filings.submit(
        north,
        Draft(
            FilingType.INTENT,
            "crewed_flight",
            (Volume4D(Circle(35.0, 33.0, 2000), 0, 500, START, START + timedelta(hours=1)),),
            State.ACCEPTED,
        ),
    )
    notice = next(e for t, e in events(services, "south") if t == "message")
    assert notice["message"]["code"] == "NOTICE_OF_ACTIVITY" and notice["message"]["sender"] == "north"
    assert notice["message"]["fields"]["filing"] == filed.filing.id
    mid = notice["message"]["id"]
    good = services.hotline.send(
        south, "READ_BACK", None, {"message": mid, "area": AREA, "time_window": WINDOW, "altitude_band": BAND}
    )
    assert good.message.recipients == ("north",) and good.message.mismatches == ()
    wrong = services.hotline.send(
        south,
        "READ_BACK",
        ["north"],
        {
            "message": mid,
            "area": AREA,
            "time_window": WINDOW,
            "altitude_band": {"lower_m": 0, "upper_m": 1500},
        },
    )
    assert [dict(m) for m in wrong.message.mismatches] == [
        {"field": "altitude_band.upper_m", "original": 500.0, "read_back": 1500.0}
    ]
    for pid in ("north", "south"):
        flagged = [e for t, e in events(services, pid) if t == "read_back_mismatch"]
        assert [(f["message"], f["refers_to"]) for f in flagged] == [(wrong.message.id, mid)], pid
    assert dict(log(services)[-1][1])["mismatches"][0]["field"] == "altitude_band.upper_m"
    with pytest.raises(InvalidInput, match="only a recipient"):
        services.hotline.send(
            north,
            "READ_BACK",
            ["south"],
            {"message": mid, "area": AREA, "time_window": WINDOW, "altitude_band": BAND},
        )


def test_retry_and_escalation_exactly_at_the_deadline(services: Services) -> None:
    sent = query(services)  # delivery due at +10 s, reply at +60 s; south has 2 contacts
    mid = sent.message.id
    hotline = services.hotline
    assert hotline.tick(T0 + timedelta(seconds=10) - timedelta(microseconds=1)).retried == 0
    report = hotline.tick(T0 + timedelta(seconds=10))
    assert report.retried == 1
    _, (d,) = hotline.get(party(services, "north"), mid)
    assert (d.attempts, d.delivery_overdue_at, d.delivery_due) == (
        2,
        T0 + timedelta(seconds=10),
        T0 + timedelta(seconds=20),
    )
    assert [t for t, _ in events(services, "south")] == ["message", "message"]  # sent again
    assert [t for t, _ in events(services, "north")] == ["delivery_overdue"]
    clock(services).set(T0 + timedelta(seconds=15))
    hotline.delivered(party(services, "south"), mid)
    assert hotline.tick(T0 + timedelta(seconds=60) - timedelta(microseconds=1)).escalated == 0
    assert hotline.tick(T0 + timedelta(seconds=60)).escalated == 1
    _, (d,) = hotline.get(party(services, "north"), mid)
    assert (d.reply_overdue_at, d.escalation_level) == (T0 + timedelta(seconds=60), 1)
    overdue = [e for t, e in events(services, "north") if t == "reply_overdue"]
    assert overdue == [e for t, e in events(services, "south") if t == "reply_overdue"]  # both sides
    assert overdue[0]["contact"] == "Duty officer, southern air operations" and overdue[0]["level"] == 1
    # catching up late still escalates at each exact deadline, to the last level, then stops
    assert hotline.tick(T0 + timedelta(seconds=1000)).escalated == 1
    _, (d,) = hotline.get(party(services, "north"), mid)
    assert (d.escalation_level, d.next_due) == (2, None)
    escalations = [b for k, b in log(services) if k is Kind.ESCALATED]
    assert [(b["reason"], b["due"]) for b in escalations] == [
        ("not_delivered", "2030-06-01T12:00:10Z"),
        ("not_replied", "2030-06-01T12:01:00Z"),
        ("not_replied", "2030-06-01T12:02:00Z"),
    ]


def test_a_backlog_is_ticked_a_chunk_a_transaction_with_the_outcome_of_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parties that neither read nor reply: every message is retried and escalated. A
    tick takes the backlog `TICK_CHUNK` deliveries a transaction, and ends where one
    transaction over all of it ends."""

    def backlog(name: str, chunk: int) -> tuple[Any, ...]:
        s = _build(tmp_path / name)
        try:
            monkeypatch.setattr(s.hotline, "TICK_CHUNK", chunk)
            ids = []
            for i in range(7):
                clock(s).set(T0 + timedelta(seconds=i))
                ids.append(query(s).message.id)
            writes = 0
            write = s.store.write

            def counted() -> Any:
                nonlocal writes
                writes += 1
                return write()

            monkeypatch.setattr(s.store, "write", counted)
            report = s.hotline.tick(T0 + timedelta(seconds=1000))
            again = s.hotline.tick(T0 + timedelta(seconds=1000))
            monkeypatch.undo()
            north = party(s, "north")
            states = [
                (d.attempts, d.delivery_overdue_at, d.reply_overdue_at, d.escalation_level, d.next_due)
                for mid in ids
                for d in s.hotline.get(north, mid)[1]
            ]
            escalated = sorted((b["code"], b["reason"], b["due"]) for k, b in log(s) if k is Kind.ESCALATED)
            seen = {pid: sorted(t for t, _ in events(s, pid)) for pid in ("north", "south")}
            return report, again, states, escalated, seen, writes
        finally:
            s.store.close()

    *chunked, writes = backlog("chunked.sqlite3", 3)
    *whole, one = backlog("whole.sqlite3", 200)
    assert chunked == whole
    report, again, states, escalated, _ = whole
    assert report.retried == 14 and report.escalated == 14 and again == TickReport()
    assert len(escalated) == 28 and all(s[-1] is None for s in states)  # nothing left due
    assert one == 1 and writes == 3  # 7 deliveries: 3 + 3 + 1


def test_undelivered_message_is_retried_then_given_up(services: Services) -> None:
    sent = query(services)
    report = services.hotline.tick(T0 + timedelta(seconds=35))  # retries at 10 and 20 (2 allowed)
    assert report.retried == 2
    _, (d,) = services.hotline.get(party(services, "north"), sent.message.id)
    assert d.attempts == 3 and d.delivered_at is None and d.next_due == T0 + timedelta(seconds=60)


def test_down_after_silence_and_up_on_the_next_heartbeat(services: Services) -> None:
    south = party(services, "south")
    hotline = services.hotline
    hotline.heartbeat(south)
    assert hotline.tick(T0 + timedelta(seconds=90) - timedelta(microseconds=1)).down == ()
    assert hotline.tick(T0 + timedelta(seconds=90)).down == ("south",)
    assert hotline.tick(T0 + timedelta(seconds=200)).down == ()  # once
    (status,) = hotline.statuses()
    assert status.down_since == T0 + timedelta(seconds=90)
    for pid in ("north", "drones", "admin", "south"):
        assert [t for t, _ in events(services, pid)][-1] == "party_down", pid
    clock(services).set(T0 + timedelta(seconds=300))
    hotline.heartbeat(south)
    assert hotline.statuses()[0].up
    assert [t for t, _ in events(services, "north")][-2:] == ["party_down", "party_up"]
    kinds = [(k, b["party"]) for k, b in log(services) if k in (Kind.PARTY_DOWN, Kind.PARTY_UP)]
    assert kinds == [(Kind.PARTY_DOWN, "south"), (Kind.PARTY_UP, "south")]


def test_a_down_partys_filings_block_no_one(tmp_path: Path) -> None:
    """Under `down_filings = "lowest_priority"` (the default) a DOWN party's filing no
    longer blocks an equal-priority one; the conflict is still recorded and warned."""
    s = Services.build(SqliteStore(tmp_path / "db.sqlite3"), agreements.load(), ManualClock(T0))
    try:
        north, _ = s.parties.add("north")
        south, _ = s.parties.add("south")
        volume = Volume4D(Circle(35.0, 33.0, 2000), 0, 500, START, START + timedelta(hours=1))
        draft = Draft(FilingType.INTENT, "crewed_flight", (volume,), State.ACCEPTED)
        first = s.filings.submit(north, draft)
        from deconflict.errors import ConflictRefused

        with pytest.raises(ConflictRefused):
            s.filings.submit(south, draft, [first.filing.ovn])
        s.hotline.heartbeat(north)
        assert s.hotline.tick(T0 + timedelta(seconds=90)).down == ("north",)
        out = s.filings.submit(south, draft, [first.filing.ovn])
        assert len(out.conflicts) == 1
        warnings = [
            e
            for e in s.hotline.events("north")
            if e.type == "message" and e.data["message"]["code"] == "CONFLICT_WARNING"
        ]
        assert len(warnings) == 1 and warnings[0].data["message"]["sender"] == SERVICE
    finally:
        s.store.close()


def test_conflict_warning_goes_to_both_owners_in_the_filings_transaction(services: Services) -> None:
    north, south = party(services, "north"), party(services, "south")
    volume = Volume4D(Circle(35.0, 33.0, 2000), 0, 500, START, START + timedelta(hours=1))
    a = services.filings.submit(north, Draft(FilingType.INTENT, "uas_flight", (volume,), State.ACCEPTED))
    b = services.filings.submit(
        south, Draft(FilingType.INTENT, "uas_flight", (volume,), State.ACCEPTED), [a.filing.ovn]
    )
    (conflict,) = b.conflicts
    for pid in ("north", "south"):
        (w,) = [
            e
            for t, e in events(services, pid)
            if t == "message" and e["message"]["code"] == "CONFLICT_WARNING"
        ]
        assert w["message"]["fields"]["conflict"] == conflict.id and w["message"]["recipients"] == [
            "north",
            "south",
        ]
    drones = [e["message"]["code"] for t, e in events(services, "drones")]
    assert drones == ["NOTICE_OF_ACTIVITY", "NOTICE_OF_ACTIVITY"]  # notices, but no warning
    ru = next(e for t, e in events(services, "north") if t == "message")
    assert ru["language"] == "ru" and ru["text"].startswith("УВЕДОМЛЕНИЕ О ДЕЯТЕЛЬНОСТИ")


def test_statistics_from_the_log_give_reply_times_and_overdue_counts(services: Services) -> None:
    from deconflict.ledger.stats import format_table, log_stats
    from deconflict.service.ledger import decoded, log_rows

    first = query(services)  # to south: delivery due +10 s, reply +60 s
    clock(services).advance(5)
    second = query(services)
    hotline = services.hotline
    hotline.tick(T0 + timedelta(seconds=70))  # each retried at +10 s, overdue at +60 s
    south = party(services, "south")
    clock(services).set(T0 + timedelta(seconds=80))
    hotline.reply(south, first.message.id, "MINE")
    clock(services).set(T0 + timedelta(seconds=90))
    hotline.reply(south, second.message.id, "UNKNOWN")
    stats = log_stats(decoded(log_rows(services.store)))
    h = stats.as_dict()["hotline"]
    assert h["reply_times"] == {
        "south": {"count": 2, "min_s": 80.0, "median_s": 82.5, "p90_s": 84.5, "max_s": 85.0}
    }
    assert h["overdue"] == {"south": {"not_delivered": 2, "not_replied": 2}}
    assert h["note"] == f"{h['entries']} hotline entries: 2 messages, 2 first replies"
    table = format_table(stats)
    assert table.endswith("south        2     80      82.5   84.5     85              2            2")


def test_replay_shows_messages_acknowledgements_and_down_parties_at_a_time(services: Services) -> None:
    sent = query(services)
    south = party(services, "south")
    hotline = services.hotline
    hotline.heartbeat(south)
    clock(services).set(T0 + timedelta(seconds=3))
    hotline.delivered(south, sent.message.id)
    clock(services).set(T0 + timedelta(seconds=7))
    hotline.reply(south, sent.message.id, "MINE")
    hotline.tick(T0 + timedelta(seconds=90))  # south DOWN
    clock(services).set(T0 + timedelta(seconds=300))
    hotline.heartbeat(south)  # UP

    def at(seconds: float) -> dict[str, Any]:
        return services.ledger.replay(T0 + timedelta(seconds=seconds)).as_dict()["hotline"]

    early = at(5)
    (message,) = early["messages"]
    assert (message["id"], message["code"], message["sent_at"]) == (
        sent.message.id,
        "IDENTITY_QUERY",
        "2030-06-01T12:00:00.000000Z",
    )
    assert message["deliveries"]["south"] == {
        "delivered_at": "2030-06-01T12:00:03.000000Z",
        "reply": None,
        "replied_at": None,
        "escalations": [],
    }
    assert at(8)["messages"][0]["deliveries"]["south"]["reply"] == "MINE"
    assert at(100)["parties_down"] == {"south": "2030-06-01T12:01:30.000000Z"}
    assert at(301)["parties_down"] == {}
    assert at(-1)["messages"] == []
