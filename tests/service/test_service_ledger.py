"""The shared record through the service: every accepted change appends its entries in
its own transaction, a refused one appends nothing; tree heads are signed only when the
log grew; proofs built from stored nodes verify against signed heads."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import T0

from deconflict import agreements
from deconflict.clock import ManualClock
from deconflict.errors import InvalidInput, MissingKey
from deconflict.ledger import sth as sth_mod
from deconflict.ledger.canonical import canonicalize
from deconflict.ledger.entries import Kind, decode_entry
from deconflict.ledger.keys import KEY_FILE
from deconflict.ledger.rfc9162 import leaf_hash, verify_consistency, verify_inclusion
from deconflict.model import Circle, FilingType, Party, Role, State, Volume4D
from deconflict.model.agreement import ConflictAction
from deconflict.service import Draft, Services
from deconflict.store.sqlite import SqliteStore

START = T0 + timedelta(hours=2)


def vol(lon: float = 35.0, radius_m: float = 2_000.0) -> Volume4D:
    return Volume4D(Circle(lon, 33.0, radius_m), 0, 500, START, START + timedelta(hours=1))


def draft(lon: float = 35.0, kind: str = "uas_flight") -> Draft:
    return Draft(FilingType.INTENT, kind, (vol(lon),), State.ACCEPTED)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    agreement = dataclasses.replace(agreements.load(), conflict_action=ConflictAction.WARN)
    s = Services.build(SqliteStore(tmp_path / "db.sqlite3"), agreement, ManualClock(T0))
    for p in ("north", "south"):
        s.parties.add(p, role=Role.OPERATOR)
    yield s
    s.store.close()


def party(services: Services, pid: str) -> Party:
    found = [p for p in services.parties.all() if p.id == pid]
    assert found
    return found[0]


def log(services: Services) -> list[tuple[Kind, dict[str, object]]]:
    with services.store.read() as r:
        rows = r.log_entries(0, r.log_size())
    return [(e.kind, dict(e.body)) for e in (decode_entry(b) for _, b in rows)]


def test_every_change_is_recorded_with_its_receipt(services: Services) -> None:
    north, south = party(services, "north"), party(services, "south")
    assert [k for k, _ in log(services)] == [Kind.PARTY_ADDED, Kind.PARTY_ADDED]
    a = services.filings.submit(north, draft())
    assert a.receipt.leaf_index == 2
    with services.store.read() as r:
        ((_, raw),) = r.log_entries(2, 3)
    assert a.receipt.entry_hash == leaf_hash(raw)
    entry = decode_entry(raw)
    assert entry.kind is Kind.FILING_CREATED and entry.at == T0
    assert entry.body["id"] == a.filing.id and entry.body["ovn"] == a.filing.ovn
    assert entry.body["volumes"] == [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [35.0, 33.0]},
            "properties": {
                "altitude_lower_m": 0,
                "altitude_upper_m": 500,
                "radius_m": 2000,
                "time_start": "2030-06-01T14:00:00Z",
                "time_end": "2030-06-01T15:00:00Z",
            },
        }
    ]
    assert set(entry.body) == {
        "id", "type", "owner", "kind", "version", "ovn", "state", "priority", "volumes", "notice_s", "late",
    }  # fmt: skip

    b = services.filings.submit(south, draft(35.01), key=[a.filing.ovn])  # conflicts with a
    (opened,) = b.conflicts
    assert b.receipt.leaf_index == 4  # after a's and its NOTICE_OF_ACTIVITY to south
    a2 = services.filings.update(north, a.filing.id, a.filing.ovn, draft(35.001), key=[b.filing.ovn])
    (reopened,) = a2.conflicts
    a3 = services.filings.transition(north, FilingType.INTENT, a.filing.id, a2.filing.ovn, State.ACTIVATED)
    a4 = services.filings.withdraw(north, FilingType.INTENT, a.filing.id, a3.filing.ovn)
    entries = log(services)
    kinds = [(k, body.get("id")) for k, body in entries[4:] if k is not Kind.MESSAGE_SENT]
    # every change is followed, in its transaction, by the hotline's automatic messages
    codes = [body["code"] for k, body in entries if k is Kind.MESSAGE_SENT]
    assert codes == [
        "NOTICE_OF_ACTIVITY",  # a
        "NOTICE_OF_ACTIVITY",  # b
        "CONFLICT_WARNING",
        "NOTICE_OF_ACTIVITY",  # a2: new volumes
        "CONFLICT_WARNING",
        "ACTIVITY_ACTIVATED",  # a3
        "CONFLICT_WARNING",
        "ACTIVITY_ENDED",  # a4
    ]
    assert kinds == [
        (Kind.FILING_CREATED, b.filing.id),
        (Kind.CONFLICT_OPENED, opened.id),
        (Kind.FILING_VERSIONED, a.filing.id),  # the version first: its receipt
        (Kind.CONFLICT_CLOSED, opened.id),  # then what it closed, then what it opened
        (Kind.CONFLICT_OPENED, reopened.id),
        (Kind.STATE_CHANGED, a.filing.id),
        (Kind.CONFLICT_CLOSED, reopened.id),
        (Kind.CONFLICT_OPENED, a3.conflicts[0].id),
        (Kind.FILING_WITHDRAWN, a.filing.id),
        (Kind.CONFLICT_CLOSED, a3.conflicts[0].id),
    ]
    assert [o.receipt.leaf_index for o in (a2, a3, a4)] == [8, 13, 18]
    bodies = entries
    assert bodies[8][1]["supersedes"] == a.filing.ovn and bodies[8][1]["version"] == 2
    assert bodies[9][1]["by"] == {**bodies[9][1]["by"], "id": a.filing.id, "ovn": a2.filing.ovn}  # type: ignore[dict-item]
    assert bodies[18][1]["state"] == "ended"
    assert bodies[5][1]["a"]["id"] == b.filing.id  # type: ignore[index]


def test_a_refused_filing_appends_nothing(services: Services) -> None:
    north, south = party(services, "north"), party(services, "south")
    services.filings.submit(north, draft())
    size = services.ledger.size()
    with pytest.raises(MissingKey):
        services.filings.submit(south, draft(35.01))
    with pytest.raises(InvalidInput):
        services.filings.submit(south, draft(kind="nope"))
    assert services.ledger.size() == size


def test_heads_are_signed_when_the_log_grew(services: Services) -> None:
    clock = services.clock
    assert isinstance(clock, ManualClock)
    first = services.ledger.sign_head()
    assert first.head.size == 2
    sth_mod.verify(first, services.ledger.public_key)
    assert services.ledger.sign_head() == first  # nothing new: the same head
    services.filings.submit(party(services, "north"), draft())
    clock.set(T0 - timedelta(seconds=5))  # a clock that steps back never makes heads go back
    second = services.ledger.sign_head()
    # the filing and its NOTICE_OF_ACTIVITY
    assert (second.head.size, second.head.timestamp_ms) == (4, first.head.timestamp_ms)
    assert services.ledger.tree_heads() == [first, second]
    proof = services.ledger.consistency_proof(2, 4)
    verify_consistency(2, 4, proof, first.head.root, second.head.root)
    with services.store.read() as r:
        leaves = [leaf_hash(e) for _, e in r.log_entries(0, 4)]
    for i, leaf in enumerate(leaves):
        verify_inclusion(leaf, i, 4, services.ledger.inclusion_proof(i, 4), second.head.root)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda lg: lg.inclusion_proof(2, 2), "index"),
        (lambda lg: lg.inclusion_proof(-1, 2), "index"),
        (lambda lg: lg.inclusion_proof(0, 3), "size"),
        (lambda lg: lg.inclusion_proof(0, -1), "size"),
        (lambda lg: lg.consistency_proof(2, 1), "first"),
        (lambda lg: lg.consistency_proof(1, 3), "second"),
        (lambda lg: lg.consistency_proof(-1, 1), "first"),
        (lambda lg: lg.entries(3), "start"),
        (lambda lg: lg.entries(1, 0), "end"),
    ],
)
def test_bad_proof_requests_name_the_field(services: Services, call: object, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        call(services.ledger)  # type: ignore[operator]
    assert info.value.errors[0].field == field


def test_entries_are_paged(services: Services) -> None:
    assert [i for i, _ in services.ledger.entries(0)] == [0, 1]
    assert [i for i, _ in services.ledger.entries(1, 100)] == [1]
    assert services.ledger.entries(2) == []


def test_the_key_lives_in_the_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = SqliteStore(tmp_path / "db.sqlite3")
    try:
        one = Services.build(store, agreements.load(), ManualClock(T0), data_dir=data)
        two = Services.build(store, agreements.load(), ManualClock(T0), data_dir=data)
    finally:
        store.close()
    assert (data / KEY_FILE).exists()
    assert one.ledger.public_key == two.ledger.public_key


def entries(services: Services) -> list[Any]:
    with services.store.read() as r:
        return [decode_entry(raw) for _, raw in r.log_entries(0, r.log_size())]


def test_the_agreement_is_recorded_once_per_change(tmp_path: Path) -> None:
    text = (Path(agreements.__file__).parent / agreements.DEFAULT_AGREEMENT).read_text("utf-8")
    clock = ManualClock(T0)
    store = SqliteStore(tmp_path / "a.sqlite3")
    services = Services.build(store, agreements.loads(text), clock)
    first = services.ledger.record_agreement(services.agreement)
    assert first is not None and first.leaf_index == 0
    (entry,) = entries(services)
    assert entry.kind is Kind.AGREEMENT_CHANGED
    assert entry.body["name"] == services.agreement.name
    assert entry.body["document"]["agreement"]["name"] == services.agreement.name
    assert entry.body["sha256"] == hashlib.sha256(canonicalize(entry.body["document"])).hexdigest()
    # the same rules again (a restart, another process): nothing new
    assert services.ledger.record_agreement(agreements.loads(text)) is None
    store.close()
    reopened = Services.build(SqliteStore(tmp_path / "a.sqlite3"), agreements.loads(text), clock)
    assert reopened.ledger.record_agreement(reopened.agreement) is None
    # a changed rule is a change of agreement: recorded, with the new document
    changed = agreements.loads(text.replace('conflict_action = "block"', 'conflict_action = "warn"'))
    assert changed.conflict_action is not services.agreement.conflict_action
    second = reopened.ledger.record_agreement(changed)
    assert second is not None and second.leaf_index == 1
    assert entries(reopened)[1].body["document"]["agreement"]["conflict_action"] == "warn"
    reopened.store.close()


def test_a_token_rotation_is_recorded(services: Services) -> None:
    size = services.ledger.size()
    token = services.parties.rotate("north")  # one of the fixture's parties
    assert services.parties.authenticate(token).id == "north"
    last = entries(services)[size]
    assert (last.kind, dict(last.body)) == (Kind.PARTY_TOKEN_ROTATED, {"id": "north"})


def test_replays_run_one_at_a_time_each_with_its_answer(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    import deconflict.service.ledger as ledger_mod

    north = party(services, "north")
    services.filings.submit(north, draft())
    rebuild = ledger_mod.state_at
    inside, most = 0, 0
    guard = threading.Lock()

    def slow(*args: Any, **kwargs: Any) -> Any:
        nonlocal inside, most
        with guard:
            inside += 1
            most = max(most, inside)
        try:
            time.sleep(0.05)  # long enough for the other threads to arrive
            return rebuild(*args, **kwargs)
        finally:
            with guard:
                inside -= 1

    monkeypatch.setattr(ledger_mod, "state_at", slow)
    times = [
        T0 - timedelta(seconds=1),
        T0 + timedelta(hours=1),
        T0 - timedelta(seconds=1),
        T0 + timedelta(hours=1),
    ]
    answers: list[Any] = [None] * len(times)

    def ask(i: int) -> None:
        answers[i] = services.ledger.replay(times[i]).as_dict()

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(times))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 1
    assert [len(a["filings"]) for a in answers] == [0, 1, 0, 1]
