"""Statistics and replay from a hand-built log with known answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deconflict.errors import InvalidInput
from deconflict.ledger.canonical import JSONValue
from deconflict.ledger.entries import Entry, Kind, decode_entry, entry_bytes
from deconflict.ledger.replay import state_at
from deconflict.ledger.stats import NO_HOTLINE, format_table, log_stats, quantile
from deconflict.service.ledger import decoded

T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def minutes(m: float) -> datetime:
    return T0 + timedelta(minutes=m)


def filing(
    fid: str,
    owner: str,
    version: int,
    *,
    kind: str = "uas_flight",
    state: str = "accepted",
    notice_s: float = 3600.0,
    late: bool = False,
) -> dict[str, JSONValue]:
    return {
        "id": fid,
        "type": "intent",
        "owner": owner,
        "kind": kind,
        "version": version,
        "ovn": f"{fid}-v{version}",
        "state": state,
        "priority": 10,
        "volumes": [],
        "notice_s": notice_s,
        "late": late,
    }


def ref(fid: str, owner: str, version: int) -> dict[str, JSONValue]:
    return {
        "id": fid,
        "type": "intent",
        "owner": owner,
        "kind": "uas_flight",
        "version": version,
        "ovn": f"{fid}-v{version}",
    }


def opened(cid: str, a: dict[str, JSONValue], b: dict[str, JSONValue]) -> dict[str, JSONValue]:
    return {
        "id": cid,
        "a": a,
        "b": b,
        "time_start": "2030-06-01T15:00:00.000000Z",
        "time_end": "2030-06-01T16:00:00.000000Z",
        "horizontal_separation_m": 0.0,
        "vertical_separation_m": 0.0,
        "time_separation_s": 0.0,
        "separation": {"horizontal_m": 150.0, "vertical_m": 30.0, "time_s": 60.0},
    }


def party(pid: str, role: str = "operator") -> dict[str, JSONValue]:
    return {"id": pid, "name": pid, "language": "en", "role": role}


def build(rows: list[tuple[Kind, float, dict[str, Any]]]) -> list[tuple[int, Entry]]:
    """Entries through their canonical bytes, as a reader of an export gets them."""
    return [(i, decode_entry(entry_bytes(k, minutes(m), body))) for i, (k, m, body) in enumerate(rows)]


LOG = build(
    [
        (Kind.PARTY_ADDED, 0, party("north")),
        (Kind.PARTY_ADDED, 0, party("south")),
        (Kind.PARTY_ADDED, 0, party("shield", "observer")),
        (Kind.FILING_CREATED, 10, filing("n1", "north", 1, notice_s=600.0, late=True)),
        (Kind.FILING_CREATED, 20, filing("s1", "south", 1, kind="crewed_flight", notice_s=7200.0)),
        (Kind.CONFLICT_OPENED, 20, opened("c1", ref("s1", "south", 1), ref("n1", "north", 1))),
        (Kind.FILING_VERSIONED, 30, filing("n1", "north", 2, notice_s=3600.0)),
        (Kind.CONFLICT_CLOSED, 30, {"id": "c1", "by": ref("n1", "north", 2)}),
        (
            Kind.STATE_CHANGED,
            40,
            filing("s1", "south", 2, kind="crewed_flight", state="activated", notice_s=7200.0),
        ),
        (Kind.FILING_WITHDRAWN, 50, filing("n1", "north", 3, state="ended", notice_s=3600.0)),
    ]
)


def test_quantile_is_linear_between_ranks() -> None:
    assert quantile([600.0, 3600.0, 7200.0], 0.5) == 3600.0
    assert quantile([600.0, 3600.0, 7200.0], 0.1) == pytest.approx(1200.0)
    assert quantile([600.0, 3600.0, 7200.0], 0.9) == pytest.approx(6480.0)
    assert quantile([5.0], 0.9) == 5.0


def test_notice_lead_times_known_answers() -> None:
    stats = log_stats(LOG)
    assert stats.entries == 10 and stats.first_at == T0 and stats.last_at == minutes(50)
    d = stats.notice_all
    assert d is not None
    # notices: created and versioned only; the state change and the withdrawal are not notices
    assert (d.count, d.min_s, d.median_s, d.max_s, d.late) == (3, 600.0, 3600.0, 7200.0, 1)
    assert d.late_share == pytest.approx(1 / 3)
    north = stats.notice_by_party["north"]
    assert (north.count, north.min_s, north.median_s, north.max_s, north.late) == (
        2,
        600.0,
        2100.0,
        3600.0,
        1,
    )
    assert list(stats.notice_by_party) == ["north", "south"]
    assert stats.notice_by_kind["crewed_flight"].count == 1
    assert stats.notice_by_kind["uas_flight"].late_share == 0.5


def test_reciprocity_and_conflicts_per_pair() -> None:
    stats = log_stats(LOG)
    assert stats.recipients_from == "party_added"
    rows = {(p.sender, p.recipient): (p.notices, p.conflicts_raised) for p in stats.reciprocity}
    assert rows == {
        ("north", "south"): (2, 0),
        ("north", "shield"): (2, 0),
        ("south", "north"): (1, 1),  # south's filing detected the conflict with north's
        ("south", "shield"): (1, 0),
        ("shield", "north"): (0, 0),  # the observer files nothing: shown, as zeros
        ("shield", "south"): (0, 0),
    }
    assert [(c.first, c.second, c.opened, c.closed) for c in stats.conflicts] == [("north", "south", 1, 1)]
    assert stats.closed_unmatched == 0


def test_without_party_entries_recipients_are_the_owners_seen() -> None:
    stats = log_stats(LOG[3:])
    assert stats.recipients_from == "owners_seen"
    assert {(p.sender, p.recipient): p.notices for p in stats.reciprocity} == {
        ("north", "south"): 2,
        ("south", "north"): 1,
    }


def test_hotline_sections_are_empty_and_say_so() -> None:
    doc = log_stats(LOG).as_dict()
    assert doc["hotline"] == {"entries": 0, "note": NO_HOTLINE, "reply_times": {}, "overdue": {}}
    assert doc["notice"]["all"]["median_s"] == 3600.0
    table = format_table(log_stats(LOG))
    assert NO_HOTLINE in table and "north / south" in table
    empty = log_stats([])
    assert empty.notice_all is None and "no notices in this log" in format_table(empty)


def test_a_body_missing_a_field_is_named_with_its_index() -> None:
    bad = build([(Kind.FILING_CREATED, 0, {"id": "x", "kind": "uas_flight", "notice_s": 1, "late": False})])
    with pytest.raises(InvalidInput) as exc:
        log_stats(bad)
    assert exc.value.errors[0].field == "entries[0].body.owner"


def test_replay_at_several_times() -> None:
    before = state_at(LOG, minutes(5))
    assert before.entries == 3 and before.filings == () and before.conflicts == ()

    at_20 = state_at(LOG, minutes(20))
    assert [(f.id, f.version, f.state) for f in at_20.filings] == [
        ("n1", 1, "accepted"),
        ("s1", 1, "accepted"),
    ]
    assert [c.id for c in at_20.conflicts] == ["c1"]
    assert at_20.conflicts[0].a["owner"] == "south"

    between = state_at(LOG, minutes(29))  # n1 v2 is recorded at 30: still v1
    assert {f.id: f.ovn for f in between.filings} == {"n1": "n1-v1", "s1": "s1-v1"}

    at_30 = state_at(LOG, minutes(30))  # the new version closed the conflict
    assert {f.id: f.version for f in at_30.filings} == {"n1": 2, "s1": 1}
    assert at_30.conflicts == ()

    after = state_at(LOG, minutes(60))  # n1 withdrawn: gone unless asked for
    assert [(f.id, f.version, f.state) for f in after.filings] == [("s1", 2, "activated")]
    everything = state_at(LOG, minutes(60), include_ended=True)
    assert [(f.id, f.state) for f in everything.filings] == [("n1", "ended"), ("s1", "activated")]

    doc = after.as_dict()
    assert doc["at"] == "2030-06-01T13:00:00.000000Z" and doc["entries"] == 10
    assert doc["filings"][0]["since"] == "2030-06-01T12:40:00.000000Z"
    assert doc["hotline"]["note"] == NO_HOTLINE


def test_entries_are_decoded_as_they_are_read() -> None:
    """A replay walks the log once and holds the state it rebuilds, never the whole
    decoded log (at 1M filings, about a million entries): `decoded` yields each entry as
    its row comes, so a damaged entry is met only when the walk reaches it."""
    good = entry_bytes(Kind.PARTY_ADDED, minutes(0), party("north"))
    read: list[int] = []

    def rows() -> Iterator[tuple[int, bytes]]:
        for i, data in enumerate([good, good, b"{not json"]):
            read.append(i)
            yield i, data

    walk = decoded(rows())
    assert next(walk)[0] == 0 and read == [0]
    assert next(walk)[0] == 1 and read == [0, 1]
    with pytest.raises(InvalidInput) as exc:
        next(walk)
    assert exc.value.errors[0].field.startswith("entries[2]")
    with pytest.raises(InvalidInput):  # and a replay names it the same way
        state_at(decoded(iter([(0, good), (1, b"{not json")])), minutes(10))
