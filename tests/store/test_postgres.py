"""The PostgreSQL backend: the conformance suite on a real server, and what is its own."""

from __future__ import annotations

import multiprocessing
from typing import Any

import psycopg
import pytest
from conformance import (  # noqa: F401 - imported test classes run here
    TestConflicts,
    TestFilings,
    TestFind,
    TestGroupCommit,
    TestHotline,
    TestLog,
    TestParties,
    TestPartyKeys,
    TestSavepoints,
    TestTransactions,
    bump,
    cells_of,
    filing,
    put,
    with_parties,
)
from conformance_dss import TestAvailability, TestReferences, TestSubscriptions  # noqa: F401

from deconflict.errors import StoreUnavailable
from deconflict.ledger.rfc9162 import NodeId, leaf_hash, range_nodes, root_from_leaf_hashes, root_from_nodes
from deconflict.store.base import Writer, retrying
from deconflict.store.postgres import PostgresStore
from deconflict.store.sql import migrations

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


def test_a_write_that_collides_is_run_again_whole(store: PostgresStore, backend: Any) -> None:
    """A serialisation failure (here forced by a transaction that takes no lock: it reads
    the filings, then updates the party this write read) rolls the write back; `retrying`
    runs the whole write again, which then stores the filing once, with one log entry."""
    with_parties(store, "alpha")
    other = psycopg.connect(backend.url, autocommit=True)
    try:
        other.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        other.execute("SELECT count(*) FROM filings").fetchone()
        runs: list[int] = []

        def body(w: Writer) -> int:
            runs.append(len(runs) + 1)
            f = filing("f1")
            w.put_filing(f, cells_of(f))
            w.append_log([b'{"filed":"f1"}'])
            if len(runs) == 1:
                other.execute("UPDATE parties SET name = 'Renamed' WHERE id = 'alpha'")
                other.execute("COMMIT")
            return len(runs)

        assert retrying(store, body) == 2
    finally:
        other.close()
    with store.read() as r:
        assert [f.version for f in r.filing_versions("f1")] == [1]
        assert r.log_size() == 1
        assert r.get_party("alpha").name == "Renamed"  # type: ignore[union-attr]


def test_migrations_are_recorded_once_and_a_newer_schema_is_refused(
    store: PostgresStore, backend: Any
) -> None:
    store.close()
    PostgresStore(backend.url).close()  # reopening applies nothing new
    with psycopg.connect(backend.url, autocommit=True) as raw:
        rows = raw.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
        assert rows == [(n, name) for n, name, _ in migrations("postgres")]
        raw.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    with pytest.raises(StoreUnavailable, match="schema version 99"):
        PostgresStore(backend.url)


def test_storage_failures_become_store_errors(backend: Any) -> None:
    with pytest.raises(StoreUnavailable, match="storage failed"):
        PostgresStore(backend.url.rsplit("/", 1)[0] + "/no_such_database", connect_timeout_s=2)
    s = PostgresStore(backend.url)
    s.close()
    with pytest.raises(StoreUnavailable, match="closed"), s.read():
        pass


def test_write_is_not_reentrant(store: PostgresStore) -> None:
    with store.write(), pytest.raises(RuntimeError, match="re-entrant"), store.write():
        pass


def test_a_reader_is_not_blocked_by_a_writer_and_sees_committed_state(store: PostgresStore) -> None:
    with_parties(store, "alpha")
    with store.write() as w:
        f = filing("f1")
        w.put_filing(f, cells_of(f))
        with store.read() as r:  # another connection, while the write lock is held
            assert r.get_filing("f1") is None
    with store.read() as r:
        assert r.get_filing("f1") == f


def _bump_many(url: str, n: int) -> None:
    s = PostgresStore(url)
    try:
        for _ in range(n):
            with s.write() as w:
                f = w.get_filing("f1")
                assert f is not None
                nxt = bump(f)
                w.put_filing(nxt, cells_of(nxt))
                w.append_log([b'{"v":%d}' % nxt.version])
    finally:
        s.close()


def test_processes_on_one_database_are_serialised_and_the_log_stays_one_tree(
    store: PostgresStore, backend: Any
) -> None:
    with_parties(store, "alpha")
    put(store, filing("f1"))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_bump_many, args=(backend.url, 15)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    with store.read() as r:
        f = r.get_filing("f1")
        assert f is not None and f.version == 46
        assert [v.version for v in r.filing_versions("f1")] == list(range(1, 47))
        entries = r.log_entries(0, 100)
        assert [i for i, _ in entries] == list(range(45))
        assert sorted(e for _, e in entries) == sorted(b'{"v":%d}' % v for v in range(2, 47))
        size = r.log_size()
        nodes = r.log_nodes(range_nodes(0, size))
    # the stored subtree hashes are those of the entries, whichever process appended them
    assert root_from_nodes(size, lambda level, index: nodes[NodeId(level, index)]) == root_from_leaf_hashes(
        [leaf_hash(e) for _, e in entries]
    )


def test_connections_cut_by_the_server_are_opened_again(store: PostgresStore, backend: Any) -> None:
    """A database restart cuts every connection: the next write and read begin on new ones."""
    with_parties(store, "alpha")
    with store.read() as r:  # a pooled read connection exists
        assert r.get_party("alpha") is not None
    with psycopg.connect(backend.url, autocommit=True) as admin:
        cut = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert cut is not None and cut[0] == 2  # the write connection and the read one
    put(store, filing("f1"))
    with store.read() as r:
        assert r.get_filing("f1") is not None
