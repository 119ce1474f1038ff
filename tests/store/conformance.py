"""THE store conformance suite: every backend runs these tests unchanged.

The tests take the `store` fixture (and `backend`, to reopen the same database)
from conftest.py. A backend's test module imports the classes below and pins its
backend; see test_sqlite.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deconflict.errors import AlreadyExists, NotFound, StaleVersion
from deconflict.geometry.cells import volume_cells
from deconflict.ledger.canonical import canonicalize
from deconflict.ledger.keys import SigningKey
from deconflict.ledger.rfc9162 import (
    NodeId,
    leaf_hash,
    nodes_completed_by,
    range_nodes,
    root_from_leaf_hashes,
    root_from_nodes,
)
from deconflict.ledger.sth import SignedTreeHead, TreeHead, sign
from deconflict.model import (
    Circle,
    Conflict,
    ConflictState,
    Filing,
    FilingType,
    Finding,
    Party,
    Polygon,
    Role,
    Separation,
    State,
    Volume4D,
)
from deconflict.model.filing import make_ovn
from deconflict.model.signature import PartyKey
from deconflict.store import sqlparts
from deconflict.store.base import SpaceTimeQuery, Store
from deconflict.store.group import GroupCommit

T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
H = timedelta(hours=1)
# two places ~100 km apart: their cells never coincide
HERE = (35.90, 35.40)
THERE = (36.90, 35.40)


class Boom(Exception):
    pass


def party(pid: str, role: Role = Role.OPERATOR) -> Party:
    return Party(pid, pid.title(), "en", role, T0 - timedelta(days=1))


def token(pid: str, n: int = 0) -> bytes:
    return f"{pid}:{n}".encode().ljust(32, b".")


def vol(
    where: tuple[float, float] = HERE,
    start: datetime = T0,
    end: datetime = T0 + H,
    lo: float = 0.0,
    hi: float = 500.0,
    radius_m: float = 2_000.0,
) -> Volume4D:
    return Volume4D(Circle(where[0], where[1], radius_m), lo, hi, start, end)


def filing(
    fid: str,
    owner: str = "alpha",
    volumes: Sequence[Volume4D] | None = None,
    version: int = 1,
    state: State = State.ACCEPTED,
    kind: str = "uas_flight",
) -> Filing:
    updated = T0 - timedelta(hours=10) + timedelta(minutes=version)
    return Filing(
        id=fid,
        type=FilingType.INTENT,
        owner=owner,
        kind=kind,
        volumes=tuple(volumes if volumes is not None else [vol()]),
        state=state,
        priority=10,
        version=version,
        ovn=make_ovn(fid, version, updated),
        created_at=T0 - timedelta(hours=10),
        updated_at=updated,
        notice_s=36_000.0,
        late=False,
    )


def bump(f: Filing, **changes: object) -> Filing:
    """The next version of `f`."""
    version = f.version + 1
    updated = f.updated_at + timedelta(minutes=1)
    return replace(f, version=version, ovn=make_ovn(f.id, version, updated), updated_at=updated, **changes)  # type: ignore[arg-type]


def cells_of(f: Filing) -> list[frozenset[int]]:
    return [volume_cells(v.outline) for v in f.volumes]


def put(store: Store, *filings: Filing) -> None:
    with store.write() as w:
        for f in filings:
            w.put_filing(f, cells_of(f))


def with_parties(store: Store, *pids: str) -> None:
    with store.write() as w:
        for pid in pids:
            w.add_party(party(pid), token(pid))


def query(
    where: tuple[float, float] = HERE,
    start: datetime = T0,
    end: datetime = T0 + H,
    lo: float = 0.0,
    hi: float = 500.0,
) -> SpaceTimeQuery:
    return SpaceTimeQuery(volume_cells(Circle(where[0], where[1], 2_000.0)), start, end, lo, hi)


def found(store: Store, q: SpaceTimeQuery, **kw: object) -> list[str]:
    with store.read() as r:
        return sorted(f.id for f in r.find_filings(q, **kw))  # type: ignore[arg-type]


def conflict(cid: str, a: Filing, b: Filing, detected: datetime = T0) -> Conflict:
    finding = Finding(
        a.ref(),
        b.ref(),
        T0,
        T0 + H,
        0.0,
        0.0,
        0.0,
        Separation(500.0, 150.0, 60.0),
    )
    return Conflict(cid, finding, ConflictState.OPEN, detected)


class TestParties:
    def test_add_get_and_list(self, store: Store) -> None:
        with store.write() as w:
            w.add_party(party("bravo"), token("bravo"))
            w.add_party(party("alpha", Role.OBSERVER), token("alpha"))
        with store.read() as r:
            assert r.get_party("alpha") == party("alpha", Role.OBSERVER)
            assert r.get_party("nobody") is None
            assert [p.id for p in r.list_parties()] == ["alpha", "bravo"]
            assert r.list_parties()[1] == party("bravo")

    def test_duplicate_id_is_refused_and_changes_nothing(self, store: Store) -> None:
        with_parties(store, "alpha")
        with pytest.raises(AlreadyExists) as e, store.write() as w:
            w.add_party(replace(party("alpha"), name="Impostor"), token("other"))
        assert (e.value.what, e.value.ident) == ("party", "alpha")
        with store.read() as r:
            assert r.get_party("alpha") == party("alpha")
            assert r.party_for_token(token("other")) is None

    def test_token_lookup(self, store: Store) -> None:
        with_parties(store, "alpha", "bravo")
        with store.read() as r:
            assert r.party_for_token(token("bravo")) == party("bravo")
            assert r.party_for_token(token("nobody")) is None

    def test_a_token_belongs_to_one_party(self, store: Store) -> None:
        with_parties(store, "alpha")
        with pytest.raises(AlreadyExists), store.write() as w:
            w.add_party(party("bravo"), token("alpha"))
        with store.read() as r:
            assert r.get_party("bravo") is None

    def test_token_rotation(self, store: Store) -> None:
        with_parties(store, "alpha", "bravo")
        with store.write() as w:
            w.set_party_token("alpha", token("alpha", 1))
        with store.read() as r:
            assert r.party_for_token(token("alpha")) is None
            assert r.party_for_token(token("alpha", 1)) == party("alpha")
        with pytest.raises(NotFound), store.write() as w:
            w.set_party_token("nobody", token("x"))
        with pytest.raises(AlreadyExists), store.write() as w:
            w.set_party_token("alpha", token("bravo"))
        with store.write() as w:  # setting the token a party already holds is fine
            w.set_party_token("alpha", token("alpha", 1))


class TestPartyKeys:
    def key(self, n: int, owner: str = "alpha", required: bool = False) -> PartyKey:
        return PartyKey(f"k{n}", owner, bytes([n]) * 32, required, T0 + n * US)

    def test_add_list_get_and_revoke(self, store: Store) -> None:
        with_parties(store, "alpha", "bravo")
        with store.write() as w:
            w.add_party_key(self.key(2, required=True))
            w.add_party_key(self.key(1))
            w.add_party_key(self.key(3, "bravo"))
        with store.read() as r:
            assert r.party_keys("alpha") == [self.key(1), self.key(2, required=True)]  # oldest first
            assert r.get_party_key("k3") == self.key(3, "bravo")
            assert r.get_party_key("nope") is None and r.party_keys("nobody") == []
        with store.write() as w:
            w.revoke_party_key("k1", T0 + H)
        with store.read() as r:
            assert r.get_party_key("k1") == replace(self.key(1), revoked_at=T0 + H)
        with pytest.raises(NotFound), store.write() as w:
            w.revoke_party_key("k1", T0 + 2 * H)  # already revoked
        with pytest.raises(NotFound), store.write() as w:
            w.revoke_party_key("nope", T0)

    def test_refusals_change_nothing(self, store: Store) -> None:
        with_parties(store, "alpha")
        with store.write() as w:
            w.add_party_key(self.key(1))
        with pytest.raises(AlreadyExists), store.write() as w:
            w.add_party_key(replace(self.key(1), public_key=b"x" * 32))
        with pytest.raises(NotFound), store.write() as w:
            w.add_party_key(self.key(2, "nobody"))
        with store.read() as r:
            assert r.party_keys("alpha") == [self.key(1)]

    def test_a_signature_is_recorded_once(self, store: Store) -> None:
        with_parties(store, "alpha")
        with store.write() as w:
            w.add_party_key(self.key(1))
            w.record_signature("k1", b"sig-1", T0)
        with pytest.raises(AlreadyExists), store.write() as w:
            w.record_signature("k1", b"sig-1", T0 + H)
        with store.write() as w:  # another signature is fine; a rolled-back one left nothing
            w.record_signature("k1", b"sig-2", T0)
        with pytest.raises(Boom), store.write() as w:
            w.record_signature("k1", b"sig-3", T0)
            raise Boom
        with store.write() as w:
            w.record_signature("k1", b"sig-3", T0)


class TestFilings:
    @pytest.fixture(autouse=True)
    def _parties(self, store: Store) -> None:
        with_parties(store, "alpha", "bravo")

    def test_put_and_get(self, store: Store) -> None:
        f = filing(
            "f1",
            volumes=[
                vol(),
                Volume4D(
                    Polygon(((35.9, 35.4), (35.95, 35.4), (35.95, 35.45))),
                    100.0,
                    900.5,
                    T0 + H,
                    T0 + 2 * H,
                ),
            ],
        )
        put(store, f)
        with store.read() as r:
            assert r.get_filing("f1") == f
            assert r.get_filing("nope") is None
            assert r.filing_versions("f1") == [f]
            assert r.filing_versions("nope") == []

    def test_next_version_supersedes_and_history_is_kept(self, store: Store) -> None:
        v1 = filing("f1")
        v2 = bump(v1, state=State.ACTIVATED, volumes=(vol(THERE),))
        v3 = bump(v2, state=State.ENDED)
        put(store, v1)
        put(store, v2)
        put(store, v3)
        with store.read() as r:
            assert r.get_filing("f1") == v3
            assert r.filing_versions("f1") == [v1, v2, v3]

    def test_stale_version_is_refused_and_changes_nothing(self, store: Store) -> None:
        v1 = filing("f1")
        v2 = bump(v1)
        put(store, v1, v2)
        for stale in (bump(v1, volumes=(vol(THERE),)), bump(bump(v2))):
            with pytest.raises(StaleVersion) as e, store.write() as w:
                w.put_filing(stale, cells_of(stale))
            assert e.value.filing_id == "f1"
            assert e.value.current == v2.ovn
        with pytest.raises(StaleVersion) as e2, store.write() as w:
            w.put_filing(bump(v1), cells_of(v1))
        assert e2.value.given == v1.ovn  # the version the update was built on
        with store.read() as r:
            assert r.get_filing("f1") == v2
            assert len(r.filing_versions("f1")) == 2
        assert found(store, query(THERE)) == []

    def test_duplicate_id_is_refused(self, store: Store) -> None:
        put(store, filing("f1"))
        with pytest.raises(AlreadyExists) as e, store.write() as w:
            other = filing("f1", owner="bravo", volumes=[vol(THERE)])
            w.put_filing(other, cells_of(other))
        assert (e.value.what, e.value.ident) == ("filing", "f1")
        with store.read() as r:
            assert r.get_filing("f1") == filing("f1")

    def test_later_version_of_unknown_filing_is_not_found(self, store: Store) -> None:
        with pytest.raises(NotFound), store.write() as w:
            f = filing("ghost", version=2)
            w.put_filing(f, cells_of(f))

    def test_unknown_owner_is_not_found(self, store: Store) -> None:
        with pytest.raises(NotFound) as e, store.write() as w:
            f = filing("f1", owner="stranger")
            w.put_filing(f, cells_of(f))
        assert e.value.what == "party"
        with store.read() as r:
            assert r.get_filing("f1") is None

    def test_cells_must_match_volumes(self, store: Store) -> None:
        f = filing("f1", volumes=[vol(), vol(THERE)])
        with pytest.raises(ValueError, match="cells"), store.write() as w:
            w.put_filing(f, cells_of(f)[:1])

    def test_list_filings(self, store: Store) -> None:
        put(
            store,
            filing("c"),
            filing("a", owner="bravo"),
            filing("b", state=State.ENDED),
        )
        with store.read() as r:
            assert [f.id for f in r.list_filings()] == ["a", "c"]
            assert [f.id for f in r.list_filings(live_only=False)] == ["a", "b", "c"]
            assert [f.id for f in r.list_filings(owner="alpha", live_only=False)] == ["b", "c"]
            assert [f.id for f in r.list_filings(owner="bravo")] == ["a"]

    def test_list_filings_by_pages_and_type(self, store: Store) -> None:
        ids = [f"f{i:02d}" for i in range(11)]
        made = [filing(fid, state=State.ENDED if i % 4 == 3 else State.ACCEPTED) for i, fid in enumerate(ids)]
        made = [replace(f, type=FilingType.CONSTRAINT) if i % 3 == 0 else f for i, f in enumerate(made)]
        put(store, *reversed(made))
        with store.read() as r:
            whole = [f.id for f in r.list_filings()]
            assert whole == [f.id for f in made if f.state is not State.ENDED]
            for limit in (1, 2, 3, 7, 50):
                paged: list[str] = []
                after: str | None = None
                while True:
                    page = [f.id for f in r.list_filings(after=after, limit=limit)]
                    assert len(page) <= limit
                    paged += page
                    if len(page) < limit:
                        break
                    after = page[-1]
                assert paged == whole, limit
            # `after` is any string: the ids that sort after it
            assert [f.id for f in r.list_filings(after="f04x", limit=2)] == ["f05", "f06"]
            assert r.list_filings(after="g") == []
            constraints = [
                f.id for f in made if f.type is FilingType.CONSTRAINT and f.state is not State.ENDED
            ]
            assert [f.id for f in r.list_filings(ftype=FilingType.CONSTRAINT)] == constraints
            intents_after = r.list_filings(ftype=FilingType.INTENT, live_only=False, after="f05")
            assert [f.id for f in intents_after] == ["f07", "f08", "f10"]

    def test_last_filing_stored_dates_every_stored_version(self, store: Store) -> None:
        with store.read() as r:
            assert r.last_filing_stored() == -1
        with store.write() as w:
            w.append_log([b'{"n":0}', b'{"n":1}'])
        put(store, filing("f"))
        with store.read() as r:
            assert r.last_filing_stored() == 2  # the log's size when it was stored
        with store.write() as w:
            w.append_log([b'{"n":2}'])  # a log entry alone (a message, say) changes nothing
        with store.read() as r:
            assert r.last_filing_stored() == 2
        with store.read() as r:
            f = r.get_filing("f")
        assert f is not None
        put(store, bump(f, state=State.ENDED))
        with store.read() as r:
            assert r.last_filing_stored() == 3

    def test_filings_changed_since_a_snapshot(self, store: Store) -> None:
        put(store, filing("old"), filing("kept", owner="bravo"))
        with store.write() as w:
            w.append_log([b'{"n":0}'])
        with store.read() as r:
            mark = r.log_size()
            assert r.filings_changed_since(mark) == []
        old = filing("old")
        with store.write() as w:  # no log entry at all: still seen as changed
            w.put_filing(bump(old, state=State.ENDED), cells_of(old))
            w.put_filing(filing("new", owner="bravo"), cells_of(filing("new")))
            assert [f.id for f in w.filings_changed_since(mark)] == ["new", "old"]  # its own writes
        with store.write() as w:
            w.append_log([b'{"n":1}', b'{"n":2}'])
        with store.read() as r:
            changed = r.filings_changed_since(mark)
            assert [(f.id, f.version, f.state) for f in changed] == [
                ("new", 1, State.ACCEPTED),
                ("old", 2, State.ENDED),  # ended ones too, at their current version
            ]
            assert r.filings_changed_since(r.log_size()) == []
        with pytest.raises(Boom), store.write() as w:  # rolled back: not a change
            w.put_filing(filing("lost"), cells_of(filing("lost")))
            raise Boom
        with store.read() as r:
            assert [f.id for f in r.filings_changed_since(mark)] == ["new", "old"]


class TestFind:
    @pytest.fixture(autouse=True)
    def _parties(self, store: Store) -> None:
        with_parties(store, "alpha", "bravo")

    def test_hit_and_miss_on_cell(self, store: Store) -> None:
        put(store, filing("here"), filing("there", volumes=[vol(THERE)]))
        assert found(store, query(HERE)) == ["here"]
        assert found(store, query(THERE)) == ["there"]
        assert found(store, query((30.0, 30.0))) == []
        with store.read() as r:
            assert r.find_filings(query(HERE)) == [filing("here")]
            empty = SpaceTimeQuery([], T0, T0 + H, 0.0, 500.0)
            assert r.find_filings(empty) == []

    def test_time_bounds_are_inclusive(self, store: Store) -> None:
        put(store, filing("f", volumes=[vol(start=T0, end=T0 + H)]))
        assert found(store, query(start=T0 - H, end=T0)) == ["f"]  # touching at the start
        assert found(store, query(start=T0 + H, end=T0 + 2 * H)) == ["f"]  # touching at the end
        assert found(store, query(start=T0 + 10 * US, end=T0 + 20 * US)) == ["f"]  # inside
        assert found(store, query(start=T0 - 2 * H, end=T0 + 2 * H)) == ["f"]  # around
        assert found(store, query(start=T0 - H, end=T0 - US)) == []
        assert found(store, query(start=T0 + H + US, end=T0 + 2 * H)) == []

    def test_a_long_volume_is_found_near_its_end(self, store: Store) -> None:
        long = vol(start=T0, end=T0 + 30 * H)
        put(store, filing("short", volumes=[vol(THERE)]), filing("long", volumes=[long]))
        assert found(store, query(start=T0 + 29 * H, end=T0 + 29 * H + US)) == ["long"]
        assert found(store, query(start=T0 + 30 * H, end=T0 + 31 * H)) == ["long"]
        assert found(store, query(start=T0 + 30 * H + US, end=T0 + 31 * H)) == []

    def test_altitude_bounds_are_inclusive(self, store: Store) -> None:
        put(store, filing("f", volumes=[vol(lo=100.0, hi=200.0)]))
        assert found(store, query(lo=200.0, hi=300.0)) == ["f"]
        assert found(store, query(lo=0.0, hi=100.0)) == ["f"]
        assert found(store, query(lo=150.0, hi=160.0)) == ["f"]
        assert found(store, query(lo=200.01, hi=300.0)) == []
        assert found(store, query(lo=0.0, hi=99.99)) == []

    def test_each_volume_is_matched_on_its_own(self, store: Store) -> None:
        # volume 0 is here but later; volume 1 is now but elsewhere: no volume meets the query
        f = filing("f", volumes=[vol(start=T0 + 5 * H, end=T0 + 6 * H), vol(THERE)])
        put(store, f)
        assert found(store, query(HERE)) == []
        assert found(store, query(THERE)) == ["f"]
        assert found(store, query(HERE, start=T0 + 5 * H, end=T0 + 5 * H)) == ["f"]

    def test_each_filing_once(self, store: Store) -> None:
        put(store, filing("f", volumes=[vol(), vol(radius_m=30_000.0), vol(THERE)]))
        q = SpaceTimeQuery(set(query(HERE).cells) | set(query(THERE).cells), T0, T0 + H, 0.0, 500.0)
        with store.read() as r:
            assert [x.id for x in r.find_filings(q)] == ["f"]

    def test_live_only_and_exclude_owner(self, store: Store) -> None:
        put(
            store,
            filing("mine"),
            filing("theirs", owner="bravo"),
            filing("ended", state=State.ENDED),
        )
        assert found(store, query()) == ["mine", "theirs"]
        assert found(store, query(), live_only=False) == ["ended", "mine", "theirs"]
        assert found(store, query(), exclude_owner="alpha") == ["theirs"]
        assert found(store, query(), exclude_owner="alpha", live_only=False) == ["theirs"]

    @pytest.mark.parametrize("chunk", [1, 500])
    def test_a_page_by_id(self, store: Store, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
        # cells are asked for in chunks (500 a statement), each chunk its own first ids:
        # chunks of one cell make every page a merge of many
        monkeypatch.setattr(sqlparts, "CHUNK", chunk)
        # ids in an order unlike the order they were stored in; "e" matches elsewhere only
        put(
            store,
            filing("d"),
            filing("b", volumes=[vol(), vol(radius_m=30_000.0)]),
            filing("e", volumes=[vol(THERE)]),
            filing("a", owner="bravo"),
            filing("c", state=State.ENDED),
        )

        wide = SpaceTimeQuery(volume_cells(Circle(*HERE, 30_000.0)), T0, T0 + H, 0.0, 500.0)
        assert len(wide.cells) > 5  # many chunks when a chunk is one cell

        def page(**kw: object) -> list[str]:
            with store.read() as r:
                return [f.id for f in r.find_filings(wide, **kw)]  # type: ignore[arg-type]

        assert page(limit=10) == ["a", "b", "d"]
        assert page(limit=2) == ["a", "b"]
        assert page(after="b", limit=2) == ["d"]
        assert page(after="a") == ["b", "d"]
        assert page(after="aa", limit=1) == ["b"]  # any string: the ids after it
        assert page(after="d", limit=5) == []
        assert page(live_only=False, after="b", limit=1) == ["c"]
        assert page(exclude_owner="bravo", limit=1) == ["b"]
        with store.read() as r:  # the page's filings are the current versions, whole
            assert r.find_filings(wide, after="a", limit=1) == [
                filing("b", volumes=[vol(), vol(radius_m=30_000.0)])
            ]

    def test_a_new_version_replaces_the_index(self, store: Store) -> None:
        v1 = filing("f")
        v2 = bump(v1, volumes=(vol(THERE, lo=1000.0, hi=2000.0),))
        put(store, v1)
        put(store, v2)
        assert found(store, query(HERE)) == []
        assert found(store, query(THERE)) == []  # altitude moved too
        with store.read() as r:
            assert r.find_filings(query(THERE, lo=1500.0, hi=1600.0)) == [v2]
        put(store, bump(v2, state=State.ENDED))
        assert found(store, query(THERE, lo=1500.0, hi=1600.0)) == []
        assert found(store, query(THERE, lo=1500.0, hi=1600.0), live_only=False) == ["f"]

    def test_cells_are_taken_as_given(self, store: Store) -> None:
        # the store indexes the cells the caller computed, not its own idea of them
        f = filing("f")
        with store.write() as w:
            w.put_filing(f, [volume_cells(Circle(THERE[0], THERE[1], 100.0))])
        assert found(store, query(HERE)) == []
        assert found(store, query(THERE)) == ["f"]


class TestConflicts:
    @pytest.fixture(autouse=True)
    def _filings(self, store: Store) -> None:
        with_parties(store, "alpha", "bravo", "charlie")
        put(store, filing("a1"), filing("b1", owner="bravo"), filing("c1", owner="charlie"))

    def _f(self, store: Store, fid: str) -> Filing:
        with store.read() as r:
            f = r.get_filing(fid)
        assert f is not None
        return f

    def _three(self, store: Store) -> tuple[Conflict, Conflict, Conflict]:
        """k0 (c1 × a1, an hour earlier), k1 (a1 × b1) and k2 (b1 × c1), stored."""
        a, b, c = (self._f(store, x) for x in ("a1", "b1", "c1"))
        k2 = conflict("k2", b, c, T0)
        k1 = conflict("k1", a, b, T0)
        k0 = conflict("k0", c, a, T0 - H)
        with store.write() as w:
            w.add_conflicts([k2, k1, k0])
        return k0, k1, k2

    def test_add_and_list(self, store: Store) -> None:
        k0, k1, k2 = self._three(store)
        with store.read() as r:
            assert r.list_conflicts() == [k0, k1, k2]  # by detection time, then id
            assert r.list_conflicts(party="alpha") == [k0, k1]
            assert r.list_conflicts(party="charlie") == [k0, k2]
            assert r.list_conflicts(party="nobody") == []
            assert r.list_conflicts(state=ConflictState.CLOSED) == []
            assert r.list_conflicts(state=ConflictState.OPEN, party="bravo") == [k1, k2]

    def test_list_conflicts_by_pages(self, store: Store) -> None:
        a, b, c = (self._f(store, x) for x in ("a1", "b1", "c1"))
        # detection times tie in threes: the pages must follow (detected_at, id), ties included
        made = [
            conflict(f"k{i:02d}", (a, b, c)[i % 3], (b, c, a)[i % 3], T0 + (i // 3) * H) for i in range(10)
        ]
        with store.write() as w:
            w.add_conflicts(list(reversed(made)))
        with store.write() as w:
            w.close_conflicts("c1", T0 + 9 * H)  # every k where c is a side closes
        with store.read() as r:
            for state, party in [
                (None, None),
                (ConflictState.OPEN, None),
                (ConflictState.CLOSED, "bravo"),
                (None, "alpha"),
            ]:
                whole = r.list_conflicts(state=state, party=party)
                assert whole, (state, party)
                for limit in (1, 2, 4, 20):
                    paged: list[Conflict] = []
                    after: str | None = None
                    while True:
                        page = r.list_conflicts(state=state, party=party, after=after, limit=limit)
                        assert len(page) <= limit
                        paged += page
                        if len(page) < limit:
                            break
                        after = page[-1].id
                    assert paged == whole, (state, party, limit)
            # the mark may be a conflict the filter leaves out: the page starts after it
            (k01,) = [k for k in r.list_conflicts() if k.id == "k01"]
            assert k01.state is ConflictState.CLOSED
            assert [k.id for k in r.list_conflicts(state=ConflictState.OPEN, after="k01", limit=2)] == [
                "k03",
                "k06",
            ]
            with pytest.raises(NotFound):
                r.list_conflicts(after="nope")

    def test_conflicts_of_filings(self, store: Store) -> None:
        a, b, c = (self._f(store, x) for x in ("a1", "b1", "c1"))
        _, k1, _ = self._three(store)
        with store.write() as w:
            w.close_conflicts("c1", T0 + H)  # k0 and k2 close
        with store.read() as r:
            closed = {k.id: k for k in r.list_conflicts(state=ConflictState.CLOSED)}

            def of(*filings: Filing, state: ConflictState | None = ConflictState.OPEN) -> list[Conflict]:
                return r.conflicts_of([(f.owner, f.id) for f in filings], state=state)

            assert of(a) == [k1]  # either side: a is k1's a side
            assert of(b) == [k1] and of(c) == []
            assert of(a, b, c) == [k1]  # each once
            assert of(c, state=ConflictState.CLOSED) == [closed["k0"], closed["k2"]]  # by time, then id
            assert of(a, b, c, state=None) == [closed["k0"], k1, closed["k2"]]
            assert r.conflicts_of([("bravo", "a1")], state=None) == []  # a filing is its owner's
            assert r.conflicts_of([], state=None) == []

    def test_close_conflicts(self, store: Store) -> None:
        a, b, c = (self._f(store, x) for x in ("a1", "b1", "c1"))
        with store.write() as w:
            w.add_conflicts([conflict("k1", a, b), conflict("k2", c, a), conflict("k3", b, c)])
        with store.write() as w:
            assert w.close_conflicts("a1", T0 + H) == ["k1", "k2"]
        with store.write() as w:
            assert w.close_conflicts("a1", T0 + 2 * H) == []  # already closed
        with store.read() as r:
            closed = r.list_conflicts(state=ConflictState.CLOSED)
            assert [k.id for k in closed] == ["k1", "k2"]
            assert all(k.closed_at == T0 + H for k in closed)
            (still,) = r.list_conflicts(state=ConflictState.OPEN)
            assert (still.id, still.closed_at) == ("k3", None)

    def test_close_names_any_version(self, store: Store) -> None:
        a, b = self._f(store, "a1"), self._f(store, "b1")
        with store.write() as w:
            w.add_conflicts([conflict("k1", a, b)])
            a2 = bump(a)
            w.put_filing(a2, cells_of(a2))
            assert w.close_conflicts("a1", T0) == ["k1"]

    def test_duplicate_or_dangling_conflicts_are_refused(self, store: Store) -> None:
        a, b = self._f(store, "a1"), self._f(store, "b1")
        with store.write() as w:
            w.add_conflicts([conflict("k1", a, b)])
        with pytest.raises(AlreadyExists), store.write() as w:
            w.add_conflicts([conflict("k2", a, b), conflict("k1", b, a)])
        with pytest.raises(NotFound), store.write() as w:
            w.add_conflicts([conflict("k3", bump(a), b)])  # version 2 was never stored
        with pytest.raises(AlreadyExists, match="k4"), store.write() as w:
            w.add_conflicts([conflict("k4", a, b), conflict("k5", b, a), conflict("k4", b, a)])
        with pytest.raises(NotFound, match="a1 v2"), store.write() as w:  # the first offender
            w.add_conflicts([conflict("k6", a, b), conflict("k7", bump(a), b), conflict("k1", a, b)])
        with store.read() as r:
            assert [k.id for k in r.list_conflicts()] == ["k1"]  # k2, k4... were rolled back too

    def test_many_conflicts_in_one_call(self, store: Store) -> None:
        a = self._f(store, "a1")
        put(store, *(filing(f"b{i:03d}", owner="bravo") for i in range(700)))  # > one IN chunk
        others = [self._f(store, f"b{i:03d}") for i in range(700)]
        made = [conflict(f"k{i:03d}", a, b) for i, b in enumerate(others)]
        with store.write() as w:
            w.add_conflicts(made)
        with store.read() as r:
            assert sorted(r.list_conflicts(), key=lambda k: k.id) == made


class TestTransactions:
    def test_an_exception_in_write_leaves_nothing(self, store: Store) -> None:
        with_parties(store, "alpha")
        with pytest.raises(Boom), store.write() as w:
            w.add_party(party("bravo"), token("bravo"))
            f = filing("f1")
            w.put_filing(f, cells_of(f))
            assert w.get_filing("f1") == f  # the writer sees its own work
            raise Boom
        with store.read() as r:
            assert r.get_party("bravo") is None
            assert r.get_filing("f1") is None
            assert r.filing_versions("f1") == []
        assert found(store, query()) == []
        put(store, filing("f1"))  # the id is free

    def test_a_rolled_back_version_is_never_served(self, store: Store) -> None:
        with_parties(store, "alpha")
        v1 = filing("f1")
        put(store, v1)
        with pytest.raises(Boom), store.write() as w:
            doomed = bump(v1, kind="exercise")
            w.put_filing(doomed, cells_of(doomed))
            assert w.get_filing("f1") == doomed
            raise Boom
        real = bump(v1, kind="crewed_flight")
        put(store, real)
        with store.read() as r:
            assert r.get_filing("f1") == real
            assert r.filing_versions("f1") == [v1, real]
            assert r.find_filings(query()) == [real]

    def test_reopen_keeps_everything(self, backend: object, store: Store) -> None:
        with_parties(store, "alpha", "bravo")
        v1 = filing("f1", volumes=[vol(), vol(THERE, start=T0 + H, end=T0 + 3 * H)])
        v2 = bump(v1, state=State.ACTIVATED)
        g = filing("g1", owner="bravo")
        put(store, v1, g)
        put(store, v2)
        with store.write() as w:
            w.add_conflicts([conflict("k1", v2, g)])
        with store.read() as r:
            before = (
                r.list_parties(),
                r.list_filings(live_only=False),
                r.filing_versions("f1"),
                r.list_conflicts(),
                r.party_for_token(token("bravo")),
            )
        store.close()
        again = backend.open()  # type: ignore[attr-defined]
        try:
            with again.read() as r:
                after = (
                    r.list_parties(),
                    r.list_filings(live_only=False),
                    r.filing_versions("f1"),
                    r.list_conflicts(),
                    r.party_for_token(token("bravo")),
                )
            assert after == before
            assert found(again, query(THERE, start=T0 + 2 * H, end=T0 + 2 * H)) == ["f1"]
            assert found(again, query(HERE)) == ["f1", "g1"]
        finally:
            again.close()

    def test_a_read_is_one_snapshot(self, store: Store) -> None:
        with_parties(store, "alpha")
        put(store, filing("f1"))
        with store.read() as r:
            assert [f.id for f in r.list_filings()] == ["f1"]
            t = threading.Thread(target=put, args=(store, filing("f2")))
            t.start()
            t.join()
            assert [f.id for f in r.list_filings()] == ["f1"]
            assert r.get_filing("f2") is None
            assert [f.id for f in r.find_filings(query())] == ["f1"]
        with store.read() as r:
            assert [f.id for f in r.list_filings()] == ["f1", "f2"]

    def test_concurrent_read_modify_write_loses_no_update(self, store: Store) -> None:
        with_parties(store, "alpha")
        put(store, filing("f1"))
        threads, per_thread = 8, 10
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                for _ in range(per_thread):
                    with store.write() as w:
                        current = w.get_filing("f1")
                        assert current is not None
                        nxt = bump(current)
                        w.put_filing(nxt, cells_of(nxt))
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        assert errors == []
        with store.read() as r:
            current = r.get_filing("f1")
            assert current is not None
            assert current.version == 1 + threads * per_thread
            assert [f.version for f in r.filing_versions("f1")] == list(range(1, 2 + threads * per_thread))

    def test_stale_reads_are_caught_not_lost(self, store: Store) -> None:
        # each thread reads outside the write transaction, then writes: some lose
        # the race and get StaleVersion; every success is one version
        with_parties(store, "alpha")
        put(store, filing("f1"))
        successes: list[int] = []
        stale: list[int] = []
        lock = threading.Lock()

        def worker() -> None:
            for _ in range(10):
                with store.read() as r:
                    current = r.get_filing("f1")
                assert current is not None
                nxt = bump(current)
                try:
                    with store.write() as w:
                        w.put_filing(nxt, cells_of(nxt))
                except StaleVersion:
                    with lock:
                        stale.append(1)
                else:
                    with lock:
                        successes.append(1)

        pool = [threading.Thread(target=worker) for _ in range(8)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        assert len(successes) + len(stale) == 80
        with store.read() as r:
            current = r.get_filing("f1")
            assert current is not None
            assert current.version == 1 + len(successes)
            assert len(r.filing_versions("f1")) == 1 + len(successes)

    def test_reads_from_many_threads_during_writes(self, store: Store) -> None:
        with_parties(store, "alpha")
        put(store, filing("f0"))
        errors: list[BaseException] = []
        done = threading.Event()

        def reader() -> None:
            try:
                while not done.is_set():
                    with store.read() as r:
                        ids = [f.id for f in r.find_filings(query())]
                        listed = [f.id for f in r.list_filings()]
                        assert sorted(ids) == listed  # one snapshot: both agree
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        pool = [threading.Thread(target=reader) for _ in range(4)]
        for t in pool:
            t.start()
        for i in range(1, 30):
            put(store, filing(f"f{i}"))
        done.set()
        for t in pool:
            t.join()
        assert errors == []
        assert len(found(store, query())) == 30


def entries_(*names: str) -> list[bytes]:
    return [canonicalize({"n": name}) for name in names]


def all_nodes(size: int) -> list[NodeId]:
    return [node for i in range(size) for node in nodes_completed_by(i)]


def check_tree(store: Store, expected: Sequence[bytes]) -> None:
    """The log holds exactly `expected`, and every stored node is what the naive tree says."""
    leaves = [leaf_hash(e) for e in expected]
    with store.read() as r:
        assert r.log_size() == len(expected)
        assert r.log_entries(0, len(expected) + 5) == list(enumerate(expected))
        nodes = r.log_nodes(all_nodes(len(expected)) + [NodeId(0, len(expected))])
    assert len(nodes) == len(all_nodes(len(expected)))  # and nothing past the end
    for node, h in nodes.items():
        assert h == root_from_leaf_hashes(leaves[node.begin : node.end]), node
    for size in range(len(expected) + 1):
        assert root_from_nodes(size, lambda level, idx: nodes[NodeId(level, idx)]) == (
            root_from_leaf_hashes(leaves[:size])
        )


def head(store: Store, key: SigningKey, timestamp_ms: int = 1_000) -> SignedTreeHead:
    with store.read() as r:
        size = r.log_size()
        wanted = range_nodes(0, size)
        got = r.log_nodes(wanted)
    return sign(TreeHead(size, root_from_nodes(size, lambda lv, i: got[NodeId(lv, i)]), timestamp_ms), key)


class TestLog:
    def test_append_and_read_back(self, store: Store) -> None:
        with store.read() as r:
            assert r.log_size() == 0
            assert r.log_entries(0, 10) == []
            assert r.latest_tree_head() is None
        es = entries_(*"abcdefg")
        with store.write() as w:
            assert w.append_log(es[:3]) == [0, 1, 2]
            assert w.append_log([]) == []
            assert w.append_log(es[3:4]) == [3]
            assert w.log_size() == 4  # the writer sees its own appends
        with store.write() as w:
            assert w.append_log(es[4:]) == [4, 5, 6]
        with store.read() as r:
            assert r.log_entries(2, 5) == [(2, es[2]), (3, es[3]), (4, es[4])]
            assert r.log_entries(5, 100) == [(5, es[5]), (6, es[6])]
        check_tree(store, es)

    @pytest.mark.parametrize("batches", [[1] * 17, [3, 1, 4, 1, 5, 9, 2, 6], [33], [0, 8, 8, 16, 1]])
    def test_nodes_give_the_naive_tree(self, store: Store, batches: list[int]) -> None:
        es = entries_(*(str(i) for i in range(sum(batches))))
        at = 0
        for n in batches:
            with store.write() as w:
                assert w.append_log(es[at : at + n]) == list(range(at, at + n))
            at += n
        check_tree(store, es)

    def test_a_rolled_back_append_leaves_nothing(self, store: Store) -> None:
        es = entries_(*"abcdef")
        with store.write() as w:
            w.append_log(es[:3])
        with pytest.raises(Boom), store.write() as w:
            w.add_party(party("alpha"), token("alpha"))
            assert w.append_log(entries_("x", "y", "z")) == [3, 4, 5]
            raise Boom
        with store.read() as r:
            assert r.get_party("alpha") is None  # the change and its entries: neither
        check_tree(store, es[:3])
        with store.write() as w:  # the indices are free, and the border was not poisoned
            assert w.append_log(es[3:]) == [3, 4, 5]
        check_tree(store, es)

    def test_entries_must_be_utf8_without_nul(self, store: Store) -> None:
        with store.write() as w:
            with pytest.raises(ValueError, match="entry 1 is not UTF-8"):
                w.append_log([b"{}", b"\xff"])
            with pytest.raises(ValueError, match="NUL"):
                w.append_log([b'{"a":"\x00"}'])
            assert w.log_size() == 0
            assert w.append_log([b"{}"]) == [0]
        check_tree(store, [b"{}"])

    def test_reopen_keeps_the_root(self, backend: object, store: Store) -> None:
        es = entries_(*(str(i) for i in range(13)))
        with store.write() as w:
            w.append_log(es[:11])
        key = SigningKey.generate()
        before = head(store, key)
        store.close()
        again = backend.open()  # type: ignore[attr-defined]
        try:
            assert head(again, key) == before
            with again.write() as w:  # a cold border is rebuilt from the stored nodes
                assert w.append_log(es[11:]) == [11, 12]
            check_tree(again, es)
        finally:
            again.close()

    def test_two_handles_on_one_database_keep_one_tree(self, backend: object, store: Store) -> None:
        other = backend.open()  # type: ignore[attr-defined]
        es = entries_(*(str(i) for i in range(10)))
        try:
            for i, s in enumerate([store, other, other, store, other, store, store, other, store, other]):
                with s.write() as w:  # each handle's cached border goes stale in turn
                    assert w.append_log([es[i]]) == [i]
            check_tree(store, es)
            check_tree(other, es)
        finally:
            other.close()

    def test_concurrent_appends_get_distinct_indices(self, store: Store) -> None:
        got: list[int] = []
        lock = threading.Lock()

        def worker(t: int) -> None:
            for j in range(10):
                with store.write() as w:
                    idx = w.append_log(entries_(f"{t}.{j}"))
                with lock:
                    got.extend(idx)

        pool = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        assert sorted(got) == list(range(40))
        with store.read() as r:
            stored = [e for _, e in r.log_entries(0, 40)]
        check_tree(store, stored)

    def test_tree_heads(self, store: Store) -> None:
        key = SigningKey.generate()
        empty = head(store, key, 1)
        with store.write() as w:
            w.add_tree_head(empty)
            w.append_log(entries_("a", "b"))
        two = head(store, key, 2)
        with store.write() as w:
            w.add_tree_head(two)
            w.append_log(entries_("c"))
        three = head(store, key, 3)
        with pytest.raises(AlreadyExists), store.write() as w:
            w.add_tree_head(three)
            w.add_tree_head(sign(TreeHead(2, three.head.root, 4), key))  # size 2 is taken
        with pytest.raises(ValueError, match="larger than the log"), store.write() as w:
            w.add_tree_head(sign(TreeHead(4, three.head.root, 4), key))
        with store.read() as r:
            assert r.tree_heads() == [empty, two]  # the failed transaction kept no head
            assert r.tree_heads(since_size=1) == [two]
            assert r.latest_tree_head() == two
        with store.write() as w:
            w.add_tree_head(three)
        with store.read() as r:
            assert r.latest_tree_head() == three
            assert r.tree_heads(since_size=3) == [three]


#: more messages than one statement's list of values holds in the SQL backends (500)
MANY = 1203


def _message(
    mid: str, sender: str = "alpha", recipients: tuple[str, ...] = ("beta",), at: datetime = T0
) -> Any:
    from deconflict.model import Message

    return Message(mid, "FREE_TEXT", sender, recipients, {"text": "hello \u05e9\u05dc\u05d5\u05dd"}, at)


def _delivery(mid: str, recipient: str = "beta", at: datetime = T0) -> Any:
    from deconflict.model import Delivery

    return Delivery(
        mid,
        recipient,
        at,
        at + timedelta(seconds=10),
        at + timedelta(seconds=60),
        next_due=at + timedelta(seconds=10),
    )


class TestHotline:
    def test_message_and_deliveries_round_trip(self, store: Store, backend: Any) -> None:
        with_parties(store, "alpha", "beta", "gamma")
        m = replace(
            _message("m1", recipients=("beta", "gamma")),
            refers_to="m0",
            mismatches=({"field": "x", "original": 1.5, "read_back": 2.0},),
        )
        with store.write() as w:
            w.add_message(m, [_delivery("m1", "beta"), _delivery("m1", "gamma")])
        store.close()
        reopened = backend.open()
        try:
            with reopened.read() as r:
                assert r.get_message("m1") == m
                assert [d.recipient for d in r.get_deliveries("m1")] == ["beta", "gamma"]
                assert r.get_deliveries("m1")[0] == _delivery("m1", "beta")
                assert r.get_message("nope") is None
        finally:
            reopened.close()

    def test_refused_message_changes_nothing(self, store: Store) -> None:
        with_parties(store, "alpha", "beta")
        with store.write() as w:
            w.add_message(_message("m1"), [_delivery("m1")])
        with pytest.raises(AlreadyExists):
            with store.write() as w:
                w.add_message(_message("m1"), [_delivery("m1")])
        with pytest.raises(NotFound):
            with store.write() as w:
                w.add_message(_message("m2", recipients=("zeta",)), [_delivery("m2", "zeta")])
        with store.read() as r:
            assert r.get_message("m2") is None and len(r.get_deliveries("m1")) == 1

    def test_many_messages_in_one_call_as_one_by_one(self, store: Store) -> None:
        with_parties(store, "alpha", "beta", "gamma")
        batch = [
            (_message(f"m{i}", recipients=("beta", "gamma"), at=T0 + timedelta(seconds=i)),
             [_delivery(f"m{i}", "beta", T0 + timedelta(seconds=i)),
              _delivery(f"m{i}", "gamma", T0 + timedelta(seconds=i))])
            for i in range(MANY)
        ]  # fmt: skip
        with store.write() as w:
            w.add_messages(batch)
        with store.read() as r:
            for m, deliveries in batch:
                assert r.get_message(m.id) == m
                assert r.get_deliveries(m.id) == deliveries
            got = r.list_messages("gamma", box="in", limit=MANY + 10)
            assert [m.id for m in got] == [f"m{i}" for i in reversed(range(MANY))]
            # in one read, what get_deliveries gives one message at a time (past a chunk)
            ids = [m.id for m, _ in batch] + ["nope"]
            assert r.deliveries_of(ids) == {**{m: r.get_deliveries(m) for m in ids}, "nope": []}
            assert r.deliveries_of([]) == {}

    def test_a_refused_batch_of_messages_writes_nothing(self, store: Store) -> None:
        with_parties(store, "alpha", "beta")
        with store.write() as w:
            w.add_messages([(_message("m1"), [_delivery("m1")])])
        refused = [
            [(_message("m2"), [_delivery("m2")]), (_message("m1"), [_delivery("m1")])],  # m1 is taken
            [(_message("m2"), [_delivery("m2")]), (_message("m2"), [_delivery("m2")])],  # m2 twice
        ]
        for messages in refused:
            with store.write() as w:  # the refusal comes before any row: the transaction goes on
                with pytest.raises(AlreadyExists):
                    w.add_messages(messages)
                assert w.get_message("m2") is None and w.get_deliveries("m2") == []
        with store.write() as w:
            with pytest.raises(NotFound):
                w.add_messages(
                    [
                        (_message("m3"), [_delivery("m3")]),
                        (_message("m4", recipients=("zeta",)), [_delivery("m4", "zeta")]),
                    ]
                )
            assert w.get_message("m3") is None and w.get_deliveries("m3") == []
            w.add_messages([])
        with store.read() as r:
            assert r.list_messages("beta", box="in") == [_message("m1")]

    def test_boxes_newest_first(self, store: Store) -> None:
        with_parties(store, "alpha", "beta")
        with store.write() as w:
            for i in range(3):
                sender, to = ("alpha", "beta") if i % 2 == 0 else ("beta", "alpha")
                at = T0 + timedelta(seconds=i)
                w.add_message(_message(f"m{i}", sender, (to,), at), [_delivery(f"m{i}", to, at)])
        with store.read() as r:
            assert [m.id for m in r.list_messages("beta", box="in")] == ["m2", "m0"]
            assert [m.id for m in r.list_messages("beta", box="out")] == ["m1"]
            assert [m.id for m in r.list_messages("beta", box="all", limit=2)] == ["m2", "m1"]

    def test_boxes_by_pages_match_a_plain_reference(self, store: Store) -> None:
        import random

        parties = ("alpha", "beta", "gamma")
        with_parties(store, *parties)
        rng = random.Random(7)
        made = []
        for i in range(40):
            sender = rng.choice(parties)
            others = [p for p in parties if p != sender]
            to = tuple(sorted(rng.sample(others, rng.randint(1, 2))))
            at = T0 + timedelta(seconds=rng.randint(0, 12))  # many ties in time: the id decides
            made.append((_message(f"m{rng.randint(0, 10**6):07d}-{i}", sender, to, at), to, at))
        with store.write() as w:
            w.add_messages([(m, [_delivery(m.id, r, at) for r in to]) for m, to, at in made])
        newest_first = sorted((m for m, _, _ in made), key=lambda m: (m.sent_at, m.id), reverse=True)
        with store.read() as r:
            for party in parties:
                for box in ("in", "out", "all"):
                    want = [
                        m.id
                        for m in newest_first
                        if (box != "out" and party in m.recipients) or (box != "in" and m.sender == party)
                    ]
                    for limit in (1, 3, 7, 100):
                        paged: list[str] = []
                        before: str | None = None
                        while True:
                            page = [m.id for m in r.list_messages(party, box=box, limit=limit, before=before)]
                            paged += page
                            if len(page) < limit:
                                break
                            before = page[-1]
                        assert paged == want, (party, box, limit)
            # the mark may be a message outside the box: the page starts after it all the same
            other = next(m for m in newest_first[5:] if m.sender != "alpha")
            want = [
                m.id
                for m in newest_first
                if m.sender == "alpha" and (m.sent_at, m.id) < (other.sent_at, other.id)
            ]
            assert [m.id for m in r.list_messages("alpha", box="out", limit=100, before=other.id)] == want
            with pytest.raises(NotFound):
                r.list_messages("alpha", before="nope")

    def test_due_deliveries_soonest_first_and_the_first_limit(self, store: Store) -> None:
        with_parties(store, "alpha", "beta", "gamma")
        with store.write() as w:
            # sent at T0+3s, T0+1s, T0+2s: due 10 s later each; m1 to two parties
            for i, mid in enumerate(["m3", "m1", "m2"]):
                at = T0 + timedelta(seconds=(3, 1, 2)[i])
                recipients = ("beta", "gamma") if mid == "m1" else ("beta",)
                w.add_message(
                    _message(mid, at=at, recipients=recipients), [_delivery(mid, r, at) for r in recipients]
                )
        order = [("m1", "beta"), ("m1", "gamma"), ("m2", "beta"), ("m3", "beta")]
        late = T0 + H
        with store.read() as r:
            assert [(d.message_id, d.recipient) for d in r.due_deliveries(late)] == order
            for limit in (1, 2, 3, 4, 5):
                assert [(d.message_id, d.recipient) for d in r.due_deliveries(late, limit=limit)] == order[
                    :limit
                ]
            assert r.due_deliveries(late, limit=0) == []
            # only what is due by then, however large the limit
            assert [d.message_id for d in r.due_deliveries(T0 + timedelta(seconds=12), limit=10)] == [
                "m1",
                "m1",
                "m2",
            ]

    def test_put_delivery_and_due(self, store: Store) -> None:
        with_parties(store, "alpha", "beta")
        with store.write() as w:
            w.add_message(_message("m1"), [_delivery("m1")])
        with store.read() as r:
            assert r.due_deliveries(T0 + timedelta(seconds=10) - US) == []
            (due,) = r.due_deliveries(T0 + timedelta(seconds=10))
        done = replace(due, delivered_at=T0 + timedelta(seconds=1), reply="ROGER", next_due=None)
        with store.write() as w:
            w.put_delivery(done)
        with store.read() as r:
            assert r.get_deliveries("m1") == [done] and r.due_deliveries(T0 + H) == []
        with pytest.raises(NotFound):
            with store.write() as w:
                w.put_delivery(replace(done, recipient="alpha"))

    def test_events_are_numbered_per_party_without_gaps(self, store: Store) -> None:
        from deconflict.model import Event

        with_parties(store, "alpha", "beta")
        with store.write() as w:
            got = w.add_events(
                [
                    Event("alpha", 0, T0, "a", {"n": 1}),
                    Event("beta", 0, T0, "b", {}),
                    Event("alpha", 0, T0, "c", {"n": [1, "x"]}),
                ]
            )
        assert [(e.party, e.seq) for e in got] == [("alpha", 1), ("beta", 1), ("alpha", 2)]
        with pytest.raises(Boom):
            with store.write() as w:
                w.add_events([Event("alpha", 0, T0, "lost", {})])
                raise Boom
        with store.write() as w:
            (e,) = w.add_events([Event("alpha", 0, T0 + H, "d", {})])
        assert e.seq == 3  # the rolled-back number is given again: no gap
        with store.read() as r:
            assert [x.type for x in r.events("alpha")] == ["a", "c", "d"]
            assert [x.seq for x in r.events("alpha", after_seq=1, limit=1)] == [2]
            assert r.events("alpha", 1)[0].data == {"n": [1, "x"]}
            assert (r.last_event_seq("alpha"), r.last_event_seq("beta"), r.last_event_seq("gamma")) == (
                3,
                1,
                0,
            )

    def test_party_status_upsert(self, store: Store) -> None:
        from deconflict.model import PartyStatus

        with_parties(store, "alpha", "beta")
        with store.write() as w:
            w.put_party_status(PartyStatus("beta", T0))
            w.put_party_status(PartyStatus("alpha", T0))
            w.put_party_status(PartyStatus("beta", T0 + H, T0 + 2 * H))
        with store.read() as r:
            assert r.party_statuses() == [PartyStatus("alpha", T0), PartyStatus("beta", T0 + H, T0 + 2 * H)]

    def test_webhook_upsert_and_delete(self, store: Store) -> None:
        from deconflict.model import Webhook

        with_parties(store, "alpha")
        hook = Webhook("alpha", "https://example.org/h", "s3cret")
        with store.write() as w:
            w.put_webhook(hook)
        later = replace(hook, delivered_seq=7, failures=2, next_attempt=T0 + H)
        with store.write() as w:
            w.put_webhook(later)
        with store.read() as r:
            assert r.webhooks() == [later]
        with pytest.raises(NotFound):
            with store.write() as w:
                w.put_webhook(replace(hook, party="zeta"))
        with store.write() as w:
            assert w.delete_webhook("alpha") is True
            assert w.delete_webhook("alpha") is False
        with store.read() as r:
            assert r.webhooks() == []


class TestSavepoints:
    def test_a_failed_savepoint_undoes_its_part_only(self, store: Store) -> None:
        with_parties(store, "alpha")
        es = entries_(*"abcde")
        kept, doomed = filing("kept"), filing("doomed")
        with store.write() as w:
            w.put_filing(kept, cells_of(kept))
            assert w.append_log(es[:2]) == [0, 1]
            with pytest.raises(Boom), w.savepoint():
                w.put_filing(doomed, cells_of(doomed))
                assert w.append_log(es[2:4]) == [2, 3]
                w.set_meta("m", 7)
                raise Boom
            assert w.get_filing("doomed") is None
            assert w.get_meta("m") is None
            with w.savepoint():  # the log goes on from where the savepoint began
                assert w.append_log(es[4:]) == [2]
            w.put_filing(filing("doomed"), cells_of(doomed))  # the id is free again
        check_tree(store, [*es[:2], es[4]])
        with store.read() as r:
            assert r.get_filing("kept") == kept
            assert r.get_filing("doomed") == doomed
            assert r.get_meta("m") is None

    def test_a_version_undone_by_a_savepoint_is_never_served(self, store: Store) -> None:
        with_parties(store, "alpha")
        v1 = filing("f1")
        put(store, v1)
        real = bump(v1, kind="crewed_flight")
        with store.write() as w:
            with pytest.raises(Boom), w.savepoint():
                doomed = bump(v1, kind="exercise")  # same (id, version) as `real`
                w.put_filing(doomed, cells_of(doomed))
                raise Boom
            w.put_filing(real, cells_of(real))
        with store.read() as r:
            assert r.get_filing("f1") == real
            assert r.find_filings(query()) == [real]

    def test_a_kept_savepoint_is_committed_with_the_transaction(self, store: Store) -> None:
        with pytest.raises(Boom), store.write() as w:
            with w.savepoint():
                w.set_meta("m", 1)
            raise Boom
        with store.read() as r:
            assert r.get_meta("m") is None


class TestGroupCommit:
    """`store.group.GroupCommit`: concurrent bodies share one transaction."""

    @staticmethod
    def _batched(store: Store, bodies: list[Any]) -> tuple[GroupCommit, list[object]]:
        """Run `bodies[0]` alone (it holds the writer until the rest are queued), then
        the rest, which queue behind it and so run as one batch; returns what each
        caller got (a result or the exception)."""
        group = GroupCommit(store)
        release = threading.Event()
        out: list[object] = [None] * len(bodies)

        def first(w: Any) -> object:
            release.wait(10)
            return bodies[0](w)

        def call(i: int, body: Any) -> None:
            try:
                out[i] = group.run(body)
            except Exception as exc:
                out[i] = exc

        threads = [threading.Thread(target=call, args=(0, first))]
        threads[0].start()
        while not group._leading:
            time.sleep(0.001)
        for i, body in enumerate(bodies[1:], 1):
            threads.append(threading.Thread(target=call, args=(i, body)))
            threads[-1].start()
            while len(group._queue) < i:  # queued in this order
                time.sleep(0.001)
        release.set()
        for t in threads:
            t.join(10)
        return group, out

    def test_one_commit_for_a_batch_and_each_body_sees_those_before(self, store: Store) -> None:
        def setter(name: str, value: int) -> Any:
            def body(w: Any) -> object:
                seen = w.get_meta("last")
                w.set_meta(name, value)
                w.set_meta("last", value)
                return seen

            return body

        group, out = self._batched(store, [setter("a", 1), setter("b", 2), setter("c", 3), setter("d", 4)])
        assert out == [None, 1, 2, 3]
        assert (group.batches, group.bodies) == (2, 4)
        with store.read() as r:
            assert [r.get_meta(n) for n in "abcd"] == [1, 2, 3, 4]

    def test_a_refused_body_is_undone_and_the_others_committed(self, store: Store) -> None:
        with_parties(store, "alpha")

        def ok(name: str) -> Any:
            def body(w: Any) -> str:
                f = filing(name)
                w.put_filing(f, cells_of(f))
                w.append_log(entries_(name))
                return name

            return body

        def refused(w: Any) -> None:
            f = filing("refused")
            w.put_filing(f, cells_of(f))
            w.append_log(entries_("refused"))
            w.put_filing(f, cells_of(f))  # AlreadyExists: a domain refusal

        group, out = self._batched(store, [ok("f0"), ok("f1"), refused, ok("f2")])
        assert out[:2] == ["f0", "f1"] and out[3] == "f2"
        assert isinstance(out[2], AlreadyExists)
        assert (group.batches, group.bodies) == (2, 4)
        with store.read() as r:
            assert r.get_filing("refused") is None
            assert sorted(f.id for f in r.list_filings()) == ["f0", "f1", "f2"]
        check_tree(store, entries_("f0", "f1", "f2"))

    @pytest.mark.parametrize("on_loop", [True, False], ids=["loop-leads", "writer-thread"])
    def test_async_callers_are_batched_behind_a_sync_leader(self, store: Store, on_loop: bool) -> None:
        """Callers on an event loop queue behind a sync caller holding the writer; when
        it lets go, their loop (`on_loop`) or the group's writer thread runs them as
        one batch, each result or refusal reaching its own awaiting caller, none of
        them holding a thread meanwhile."""
        group = GroupCommit(store, on_loop=on_loop)
        release = threading.Event()
        threads_seen: set[str] = set()

        def setter(name: str, value: int) -> Any:
            def body(w: Any) -> str:
                threads_seen.add(threading.current_thread().name)
                w.set_meta(name, w.get_meta("last"))  # what was last before it
                w.set_meta("last", value)
                return name

            return body

        def refused(w: Any) -> None:
            w.set_meta("refused", 1)
            raise AlreadyExists("filing", "x")  # a domain refusal: undone alone

        def first(w: Any) -> str:
            release.wait(10)
            w.set_meta("last", 1)
            return "a"

        holder = threading.Thread(target=group.run, args=(first,))
        holder.start()
        while not group._leading:
            time.sleep(0.001)

        async def main() -> list[object]:
            tasks = [
                asyncio.ensure_future(group.run_async(b)) for b in (setter("b", 2), refused, setter("c", 3))
            ]
            while len(group._queue) < 3:
                await asyncio.sleep(0.001)
            release.set()
            return list(await asyncio.gather(*tasks, return_exceptions=True))

        out = asyncio.run(main())
        holder.join(10)
        assert out[0] == "b" and out[2] == "c"
        assert isinstance(out[1], AlreadyExists)
        assert (group.batches, group.bodies) == (2, 4)
        # the queued bodies ran on the loop's thread, or on the writer thread
        assert threads_seen == {threading.current_thread().name if on_loop else "group-commit"}
        with store.read() as r:
            assert [r.get_meta(n) for n in ("b", "c", "last", "refused")] == [1, 2, 3, None]

    @staticmethod
    def _recorded(runs: list[str]) -> tuple[Any, Any]:
        """Bodies that note in `runs` each time they run: `setter(name)` sets meta
        `name`; `broken` sets meta "broken", then fails with a bug (not a domain
        refusal), so its whole batch is rolled back."""

        def setter(name: str) -> Any:
            def body(w: Any) -> str:
                runs.append(name)
                w.set_meta(name, 1)
                return name

            return body

        def broken(w: Any) -> None:
            runs.append("broken")
            w.set_meta("broken", 1)
            raise Boom

        return setter, broken

    def test_a_failing_batch_is_run_again_body_by_body(self, store: Store) -> None:
        runs: list[str] = []
        setter, broken = self._recorded(runs)

        group, out = self._batched(store, [setter("a"), setter("b"), broken, setter("c")])
        assert out[:2] == ["a", "b"] and out[3] == "c"
        assert isinstance(out[2], Boom)
        assert runs == ["a", "b", "broken", "b", "broken", "c"]  # the batch, then each alone
        with store.read() as r:
            assert [r.get_meta(n) for n in ("a", "b", "c", "broken")] == [1, 1, 1, None]

    @staticmethod
    def _on_loop(store: Store, bodies: list[Any]) -> tuple[GroupCommit, list[object]]:
        """`bodies` from callers on one event loop, queued together, so the loop
        leads them as one batch; what each caller got."""
        group = GroupCommit(store, on_loop=True)

        async def main() -> list[object]:
            tasks = [asyncio.ensure_future(group.run_async(b)) for b in bodies]
            return list(await asyncio.gather(*tasks, return_exceptions=True))

        return group, asyncio.run(main())

    def test_a_loop_runs_its_callers_as_one_batch_and_commits_off_the_loop(self, store: Store) -> None:
        """A loop's queued callers are one batch, run on the loop in their order; the
        transaction is opened and committed durably on the group's commit thread."""
        seen: list[tuple[str, object]] = []
        committed_on: list[str] = []
        write = store.write

        def spying_write() -> Any:
            cm = write()

            class Spy:
                def __enter__(self) -> Any:
                    return cm.__enter__()

                def __exit__(self, *exc: Any) -> Any:
                    committed_on.append(threading.current_thread().name)
                    return cm.__exit__(*exc)

            return Spy()

        def setter(name: str, value: int) -> Any:
            def body(w: Any) -> str:
                seen.append((threading.current_thread().name, w.get_meta("last")))
                w.set_meta(name, value)
                w.set_meta("last", value)
                return name

            return body

        store.write = spying_write  # type: ignore[method-assign]
        try:
            group, out = self._on_loop(store, [setter("a", 1), setter("b", 2), setter("c", 3)])
        finally:
            del store.write
        assert out == ["a", "b", "c"]
        assert (group.batches, group.bodies) == (1, 3)
        main = threading.current_thread().name
        assert seen == [(main, None), (main, 1), (main, 2)]  # in order, each seeing those before
        assert len(committed_on) == 1 and committed_on[0].startswith("group-commit")
        with store.read() as r:
            assert [r.get_meta(n) for n in "abc"] == [1, 2, 3]

    def test_a_loop_batch_that_fails_is_run_again_body_by_body(self, store: Store) -> None:
        runs: list[str] = []
        setter, broken = self._recorded(runs)

        def refused(w: Any) -> None:
            runs.append("refused")
            w.set_meta("refused", 1)
            raise AlreadyExists("filing", "x")  # a domain refusal: undone alone

        group, out = self._on_loop(store, [setter("a"), refused, broken, setter("b")])
        assert out[0] == "a" and out[3] == "b"
        assert isinstance(out[1], AlreadyExists) and isinstance(out[2], Boom)
        assert runs == ["a", "refused", "broken", "a", "refused", "broken", "b"]  # batch, then alone
        with store.read() as r:
            assert [r.get_meta(n) for n in ("a", "b", "broken", "refused")] == [1, 1, None, None]
        with store.write() as w:  # nothing holds the writer
            w.set_meta("after", 1)

    def test_a_loop_shut_down_mid_batch_leaves_the_writer_free(self, store: Store) -> None:
        """The loop stops while its batch waits for the transaction (another writer
        holds it): the batch's callers are answered, nothing of it is stored, and the
        writer is free afterwards, not held by a transaction nobody will end."""
        group = GroupCommit(store, on_loop=True)
        holding = threading.Event()
        release = threading.Event()

        def hold() -> None:
            with store.write():
                holding.set()
                release.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        holding.wait(10)

        def body(w: Any) -> str:
            w.set_meta("late", 1)
            return "late"

        async def main() -> None:
            asyncio.ensure_future(group.run_async(body))
            await asyncio.sleep(0.05)  # the lead now waits to open the transaction
            threading.Timer(0.05, release.set).start()
            # returning cancels the lead: it waits for the transaction, undoes it

        asyncio.run(main())
        holder.join(10)
        with store.read() as r:
            assert r.get_meta("late") is None
        done = threading.Event()

        def write_again() -> None:
            with store.write() as w:
                w.set_meta("after", 1)
            done.set()

        threading.Thread(target=write_again, daemon=True).start()
        assert done.wait(10), "the writer was left held"
