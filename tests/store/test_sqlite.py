"""The SQLite backend: the conformance suite on a real file, and what is SQLite's own."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from conformance import T0, bump, cells_of, conflict, filing, put, query, with_parties

from deconflict.ledger.rfc9162 import nodes_completed_by, range_nodes
from deconflict.model import ConflictState, Delivery, Message, State
from deconflict.store.base import Reader
from deconflict.store.sql import migrations, pos_node, statements
from deconflict.store.sqlite import SqliteStore, StoreError

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

T = TypeVar("T")


def test_durability_and_concurrency_pragmas(store: SqliteStore) -> None:
    raw = sqlite3.connect(store.path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()
    conn = store._wconn  # the write connection
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_migrations_are_recorded_once(store: SqliteStore) -> None:
    path = store.path
    store.close()
    SqliteStore(path).close()  # reopening applies nothing new
    raw = sqlite3.connect(path)
    try:
        rows = raw.execute("SELECT version, name FROM schema_migrations").fetchall()
    finally:
        raw.close()
    assert rows == [
        (1, "init"),
        (2, "ledger"),
        (3, "party_keys"),
        (4, "hotline"),
        (5, "dss"),
        (6, "tactical"),
        (7, "filing_changes"),
        (8, "index_owner_state"),
        (9, "ledger_node_order"),
        (10, "ledger_entry_key"),
        (11, "conflict_indexes"),
        (12, "filing_version_entry"),
    ]


def test_versions_stored_before_migration_12_have_no_entry_index(store: SqliteStore) -> None:
    with_parties(store, "alpha")
    put(store, filing("old"))
    store._wconn.execute("UPDATE filing_versions SET log_idx = NULL")  # as a schema-11 database holds them
    put(store, bump(filing("old"), state=State.ACTIVATED))
    with store.read() as r:
        assert r.filing_entries("old") == {2: 0}  # nothing was appended to this log in between
        assert r.filing_entries("nothing") == {}


def test_a_newer_schema_is_refused(backend: Any) -> None:
    path = backend.path
    SqliteStore(path).close()
    raw = sqlite3.connect(path)
    raw.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="schema version 99"):
        SqliteStore(path)


def test_storage_failures_become_store_errors(backend: Any) -> None:
    with pytest.raises(StoreError):
        SqliteStore(backend.path.parent)  # a directory, not a database file
    s = SqliteStore(backend.path)
    s.close()
    with pytest.raises(StoreError, match="closed"), s.read():
        pass


def test_write_is_not_reentrant(store: SqliteStore) -> None:
    with store.write(), pytest.raises(RuntimeError, match="re-entrant"), store.write():
        pass


def _plan(store: SqliteStore, read: Callable[[Reader], T], table: str) -> tuple[T, str]:
    """What `read` returns on a snapshot, and the query plan of the one statement it
    ran there that names `table`."""
    seen: list[str] = []
    with store.read() as r:
        raw = store._local.conn
        raw.set_trace_callback(seen.append)
        try:
            got = read(r)
        finally:
            raw.set_trace_callback(None)
    (statement,) = [s for s in seen if table in s]
    plan = store._wconn.execute("EXPLAIN QUERY PLAN " + statement).fetchall()
    return got, " | ".join(str(row[-1]) for row in plan)


def test_find_reads_only_the_cell_time_index(store: SqliteStore) -> None:
    with_parties(store, "alpha")
    put(store, filing("f1"))
    _, text = _plan(store, lambda r: r.find_filings(query(), exclude_owner="bravo"), "volume_index")
    # an index-only scan: no look-up of each candidate in `filings`
    assert "COVERING INDEX volume_index_by_cell_time (cell=? AND t_start_us>? AND t_start_us<?)" in text
    assert "filings" not in text


def test_an_older_index_is_filled_in_by_the_migration(store: SqliteStore) -> None:
    """A database from before migration 8 (index rows without owner, version and
    state) finds the same filings once it is opened by this version."""
    with_parties(store, "alpha", "bravo")
    v1 = filing("moved")
    put(
        store,
        filing("mine"),
        filing("theirs", owner="bravo"),
        filing("ended", state=State.ENDED),
        v1,
    )
    put(store, bump(v1, state=State.ACTIVATED))
    cases: list[dict[str, Any]] = [
        {},
        {"live_only": False},
        {"exclude_owner": "alpha"},
        {"exclude_owner": "bravo", "live_only": False},
    ]

    def answers(s: SqliteStore) -> list[list[tuple[str, int, str]]]:
        with s.read() as r:
            return [
                sorted((f.id, f.version, f.state.value) for f in r.find_filings(query(), **kw))
                for kw in cases
            ]

    expected = answers(store)
    assert expected[0] == [("mine", 1, "accepted"), ("moved", 2, "activated"), ("theirs", 1, "accepted")]
    path = store.path
    store.close()
    # back to the layout of migrations 1 to 7
    init = migrations()[0][2]
    create = next(s for s in statements(init) if "CREATE TABLE volume_index" in s)
    index = next(s for s in statements(init) if "CREATE INDEX volume_index_by_cell_time" in s)
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute("BEGIN")
        raw.execute(
            "CREATE TABLE old_rows AS SELECT filing_id, volume_no, cell, t_start_us, t_end_us,"
            " alt_lower_m, alt_upper_m FROM volume_index"
        )
        raw.execute("DROP TABLE volume_index")
        raw.execute(create)
        raw.execute("INSERT INTO volume_index SELECT * FROM old_rows")
        raw.execute("DROP TABLE old_rows")
        raw.execute(index)
        raw.execute("DELETE FROM schema_migrations WHERE version = 8")
        raw.execute("COMMIT")
        assert "owner" not in {r[1] for r in raw.execute("PRAGMA table_info(volume_index)")}
    finally:
        raw.close()
    again = SqliteStore(path)
    try:
        assert answers(again) == expected
    finally:
        again.close()


def test_decoded_versions_are_cached(store: SqliteStore) -> None:
    with_parties(store, "alpha")
    put(store, filing("f1"))
    with store.read() as r:
        first = r.find_filings(query())[0]
    with store.read() as r:
        assert r.find_filings(query())[0] is first
        assert r.get_filing("f1") is first


def test_writer_caches_what_was_committed_before_but_not_its_own_writes(store: SqliteStore) -> None:
    with_parties(store, "alpha")
    put(store, filing("f1"))
    put(store, filing("f2"))
    store._cache._items.clear()  # start cold
    with pytest.raises(RuntimeError), store.write() as w:
        old = w.get_filing("f1")  # committed before: cached from here on
        assert old is not None
        v2 = bump(w.get_filing("f2"))  # type: ignore[arg-type]
        w.put_filing(v2, cells_of(v2))
        assert w.get_filing("f2") == v2  # read back inside the transaction...
        raise RuntimeError("roll back")
    assert ("f1", 1) in store._cache._items
    assert ("f2", 2) not in store._cache._items  # ...but never cached: it rolled back
    with store.read() as r:
        assert r.get_filing("f1") is old
        assert r.get_filing("f2").version == 1  # type: ignore[union-attr]


def _bump_many(path: str, n: int) -> None:
    s = SqliteStore(path)
    try:
        for _ in range(n):
            with s.write() as w:
                f = w.get_filing("f1")
                assert f is not None
                nxt = bump(f)
                w.put_filing(nxt, cells_of(nxt))
    finally:
        s.close()


def test_processes_on_one_file_are_serialised(store: SqliteStore) -> None:
    with_parties(store, "alpha")
    put(store, filing("f1"))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_bump_many, args=(str(store.path), 15)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    with store.read() as r:
        f = r.get_filing("f1")
        assert f is not None and f.version == 46
        assert [v.version for v in r.filing_versions("f1")] == list(range(1, 47))


def test_log_nodes_are_looked_up_by_key_not_scanned(store: SqliteStore) -> None:
    """A proof reads O(log n) nodes: the lookup must use the primary key (a scan of
    ledger_nodes made a proof take 147 ms at 1M entries)."""
    from deconflict.ledger.rfc9162 import NodeId

    with store.write() as w:
        w.append_log([b'{"n":%d}' % i for i in range(8)])
    wanted = [NodeId(0, 3), NodeId(1, 0), NodeId(2, 1)]
    got, plan = _plan(store, lambda r: r.log_nodes(wanted), "ledger_nodes")
    assert set(got) == set(wanted)
    assert "SEARCH ledger_nodes USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
    assert "SCAN" not in plan, plan


def test_an_older_log_keeps_its_nodes_once_migrated(store: SqliteStore) -> None:
    """A log from before migrations 9 and 10 (nodes keyed by level and index, entries
    with a second index) has the same entries and nodes once this version opens it,
    and grows as a log that was never migrated does."""
    entries = [f'{{"n":{i}}}'.encode() for i in range(37)]
    with store.write() as w:
        w.append_log(entries[:21])
    every = range_nodes(0, 21) + [n for i in range(21) for n in nodes_completed_by(i)]
    with store.read() as r:
        before = r.log_nodes(every)
    assert len(before) == len(set(every))
    path = store.path
    store.close()
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        # the entries as version 2 made them too (BIGINT PRIMARY KEY: a second index)
        old_entries = raw.execute("SELECT idx, CAST(entry AS BLOB) FROM ledger_entries").fetchall()
        raw.execute("BEGIN")
        raw.execute("DROP TABLE ledger_entries")
        raw.execute("CREATE TABLE ledger_entries (idx BIGINT PRIMARY KEY, entry TEXT NOT NULL)")
        raw.executemany("INSERT INTO ledger_entries VALUES (?, CAST(? AS TEXT))", old_entries)
        raw.execute("DELETE FROM schema_migrations WHERE version = 10")
        raw.execute("COMMIT")
        rows = raw.execute("SELECT pos, hash FROM ledger_nodes").fetchall()
        raw.execute("BEGIN")
        raw.execute("DROP TABLE ledger_nodes")
        raw.execute(
            "CREATE TABLE ledger_nodes (level INTEGER NOT NULL, idx BIGINT NOT NULL,"
            " hash TEXT NOT NULL, PRIMARY KEY (level, idx))"
        )
        raw.executemany("INSERT INTO ledger_nodes VALUES (?, ?, ?)", [(*pos_node(p), h) for p, h in rows])
        raw.execute("DELETE FROM schema_migrations WHERE version = 9")
        raw.execute("COMMIT")
    finally:
        raw.close()
    again = SqliteStore(path)
    fresh = SqliteStore(path.with_name("fresh.sqlite3"))
    try:
        with again.read() as r:
            assert r.log_nodes(every) == before
            assert r.log_entries(0, 21) == [(i, e) for i, e in enumerate(entries[:21])]
        with again.write() as w:
            w.append_log(entries[21:])
        with fresh.write() as w:
            w.append_log(entries)
        every = [n for i in range(37) for n in nodes_completed_by(i)]
        with again.read() as r, fresh.read() as f:
            assert r.log_nodes(every) == f.log_nodes(every)
            assert len(f.log_nodes(every)) == len(every)
            assert r.log_entries(0, 37) == f.log_entries(0, 37) == list(enumerate(entries))
        raw = sqlite3.connect(path)
        try:
            indexes = raw.execute("PRAGMA index_list(ledger_entries)").fetchall()
        finally:
            raw.close()
        assert indexes == []  # idx is the table's own key
    finally:
        again.close()
        fresh.close()


def _conflicts_of_three(store: SqliteStore) -> None:
    with_parties(store, "alpha", "bravo", "charlie")
    a, b, c = filing("a1"), filing("b1", owner="bravo"), filing("c1", owner="charlie")
    put(store, a, b, c)
    with store.write() as w:
        w.add_conflicts([conflict("k1", a, b), conflict("k2", c, a), conflict("k3", b, c)])


def _closed_with_plans(store: SqliteStore, filing_id: str) -> tuple[list[str], list[str]]:
    """`close_conflicts(filing_id)` and the query plans of its statements on conflicts."""
    seen: list[str] = []
    store._wconn.set_trace_callback(seen.append)
    try:
        with store.write() as w:
            closed = w.close_conflicts(filing_id, T0)
    finally:
        store._wconn.set_trace_callback(None)
    plans = [
        " | ".join(str(row[-1]) for row in store._wconn.execute("EXPLAIN QUERY PLAN " + sql))
        for sql in seen
        if "FROM conflicts WHERE" in sql or sql.startswith("UPDATE conflicts ")
    ]
    return closed, plans


def test_a_filings_conflicts_are_closed_through_the_owner_indexes(store: SqliteStore) -> None:
    _conflicts_of_three(store)
    closed, plans = _closed_with_plans(store, "a1")
    assert closed == ["k1", "k2"]
    assert len(plans) == 2  # the select and the update
    for plan in plans:
        assert "conflicts_by_a_owner (a_owner=? AND a_id=? AND state=?)" in plan
        assert "conflicts_by_b_owner (b_owner=? AND b_id=? AND state=?)" in plan
    with store.write() as w:
        assert w.close_conflicts("nowhere", T0) == []  # no such filing, nothing named


def test_older_conflict_indexes_are_replaced_by_the_migration(store: SqliteStore) -> None:
    """A database from before migration 11 (four indexes on conflicts) lists and closes
    the same conflicts once opened by this version, through the two new indexes."""
    _conflicts_of_three(store)
    path = store.path
    store.close()
    init = migrations()[0][2]
    old = [s for s in statements(init) if "CREATE INDEX conflicts_by_" in s and "time" not in s]
    assert len(old) == 4
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute("BEGIN")
        raw.execute("DROP INDEX conflicts_by_a_owner")
        raw.execute("DROP INDEX conflicts_by_b_owner")
        for statement in old:
            raw.execute(statement)
        raw.execute("DELETE FROM schema_migrations WHERE version = 11")
        raw.execute("COMMIT")
    finally:
        raw.close()
    again = SqliteStore(path)
    try:
        with again.read() as r:
            assert [k.id for k in r.list_conflicts(party="alpha")] == ["k1", "k2"]
            assert [k.id for k in r.list_conflicts(state=ConflictState.OPEN, party="charlie")] == ["k2", "k3"]
        closed, plans = _closed_with_plans(again, "c1")
        assert closed == ["k2", "k3"]
        assert all("conflicts_by_b_owner (b_owner=? AND b_id=? AND state=?)" in p for p in plans)
        names = {
            n for (n,) in again._wconn.execute("SELECT name FROM sqlite_schema WHERE tbl_name = 'conflicts'")
        }
        assert names == {
            "conflicts",
            "sqlite_autoindex_conflicts_1",
            "conflicts_by_time",
            "conflicts_by_a_owner",
            "conflicts_by_b_owner",
        }
    finally:
        again.close()


def test_a_box_walks_the_indexes_by_time_not_every_message(store: SqliteStore) -> None:
    """A page of a party's messages reads its indexes by time backwards and stops at the
    limit: no sort of all the party's messages (at 1M messages: 0.9 s a page, against 1 ms)."""
    with_parties(store, "alpha", "bravo")
    with store.write() as w:
        w.add_message(
            Message("m1", "FREE_TEXT", "alpha", ("bravo",), {"text": "x"}, T0),
            [Delivery("m1", "bravo", T0, T0 + timedelta(hours=1), None)],
        )
    for box in ("in", "out", "all"):
        got, text = _plan(
            store, lambda r, box=box: r.list_messages("bravo", box=box, limit=5), "hotline_messages"
        )
        assert [m.id for m in got] == (["m1"] if box != "out" else []), box
        if box != "out":
            assert (
                "SEARCH hotline_deliveries USING INDEX hotline_deliveries_by_recipient (recipient=?)" in text
            )
        if box != "in":
            assert "hotline_messages USING INDEX hotline_messages_by_sender (sender=?)" in text, text
        # the only sorts: the few rows a side keeps, or ties in time (the id breaks them)
        assert "SCAN hotline_deliveries" not in text and "SCAN hotline_messages" not in text, text


def test_conflicts_of_filings_are_read_through_the_owner_indexes(store: SqliteStore) -> None:
    _conflicts_of_three(store)
    seen: list[str] = []
    with store.read() as r:
        raw = store._local.conn
        raw.set_trace_callback(seen.append)
        try:
            got = r.conflicts_of([("alpha", "a1")])
        finally:
            raw.set_trace_callback(None)
    assert [c.id for c in got] == ["k1", "k2"]
    plans = [
        " | ".join(str(row[-1]) for row in store._wconn.execute("EXPLAIN QUERY PLAN " + sql))
        for sql in seen
        if "JOIN conflicts" in sql
    ]
    assert len(plans) == 2  # one a side, each a look-up a filing
    assert "SEARCH c USING INDEX conflicts_by_a_owner (a_owner=? AND a_id=? AND state=?)" in plans[0]
    assert "SEARCH c USING INDEX conflicts_by_b_owner (b_owner=? AND b_id=? AND state=?)" in plans[1]
