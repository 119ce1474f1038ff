"""The SQLite backend of the store contract (`deconflict.store.base`).

One file, WAL mode, `synchronous=FULL` (a commit that returned is on disk),
foreign keys on. Writes are serialised twice over: a process-wide lock per
database file (threads) and `BEGIN IMMEDIATE` (processes). Reads use one
connection per thread, each `read()` block one snapshot. The schema comes from
the numbered files in `migrations/sqlite/`, applied at open and recorded in
`schema_migrations`.

Filings are stored whole as JSON documents (`codec`), one row per version, and
decoded through an LRU cache keyed by (id, version): versions never change once
committed, so a cached decode never goes stale. Only committed versions enter the
cache (a rolled-back version must not be served later).

The log (`append_log`) keeps the right border of the tree (a `CompactRange`, O(log n)
hashes) so an append hashes only what it completes. The copy on the store is the
committed state: a write transaction takes a copy when it first appends (or rebuilds
it from the stored border nodes when the log grew in another process), and the store
keeps the copy only once the transaction commits.

Storage errors never leave this module as `sqlite3` exceptions: the contract's
cases become `AlreadyExists`, `NotFound` or `StaleVersion`, found by explicit
checks inside the write transaction rather than by reading error text; anything
else (disk full, database locked past the busy timeout, a corrupt file) becomes
`StoreError`.
"""

from __future__ import annotations

import base64
import fcntl
import os
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from deconflict.errors import AlreadyExists, InvalidInput, NotFound, StaleVersion, StoreUnavailable
from deconflict.ledger.rfc9162 import CompactRange, NodeId, leaf_hash, range_nodes
from deconflict.ledger.sth import SignedTreeHead, TreeHead
from deconflict.model import Conflict, ConflictState, Filing, Party, Role, State
from deconflict.model.dss import Availability, DssReference, PartyAvailability, Subscription
from deconflict.store.base import SpaceTimeQuery
from deconflict.store.codec import (
    decode_filing,
    decode_finding,
    decode_volumes,
    encode_filing,
    encode_finding,
    encode_volumes,
    from_us,
    to_us,
)

__all__ = ["SqliteStore", "StoreError"]

#: Most values bound to one statement (SQLite allows 32,766; keep lists modest).
_CHUNK = 500
T = TypeVar("T")
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


#: Kept as an alias: the domain error lives in `deconflict.errors`.
StoreError = StoreUnavailable


class _Cache:
    """A thread-safe LRU of decoded filings keyed by (id, version)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, int], Filing] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> Filing | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put_many(self, items: Iterable[Filing]) -> None:
        if self._size <= 0:
            return
        with self._lock:
            for f in items:
                self._items[(f.id, f.version)] = f
                self._items.move_to_end((f.id, f.version))
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _process_lock(path: Path) -> threading.Lock:
    """One lock per database file in this process, shared by every store on it."""
    key = str(path)
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(key, threading.Lock())


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock shared by every process on the database file, taken before
    BEGIN IMMEDIATE. A waiting writer sleeps in the kernel and wakes the moment the
    lock is free, where SQLite's own busy handler polls with growing sleeps (tens of
    milliseconds under contention between worker processes)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as e:
        raise StoreError(f"storage failed: {type(e).__name__}") from e


def _placeholders(n: int) -> str:
    return ",".join("?" * n)


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _tokens(token_hash: bytes) -> str:
    return token_hash.hex()


class SqliteStore:
    """`Store` on one SQLite file (created if missing)."""

    def __init__(self, path: str | Path, *, cache_size: int = 50_000, busy_timeout_ms: int = 10_000) -> None:
        self._path = Path(path).resolve()
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._write_lock = _process_lock(self._path)
        self._lock_path = self._path.with_name(self._path.name + ".lock")
        self._writing = threading.local()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_guard = threading.Lock()
        self._cache = _Cache(cache_size)
        #: the log's right border as committed; touched only under the write lock
        self._log_range: CompactRange | None = None
        self._closed = False
        with _translated():
            self._wconn = self._connect()
            try:
                self._wconn.execute("PRAGMA journal_mode = WAL").fetchone()
                with self._write_lock:
                    _migrate(self._wconn)
            except BaseException:
                self._wconn.close()
                raise

    @property
    def path(self) -> Path:
        return self._path

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            str(self._path),
            isolation_level=None,  # transactions are begun and ended explicitly
            check_same_thread=False,
            timeout=self._busy_timeout_ms / 1000,
        )
        # PRAGMA values cannot be bound; these are our own integers and keywords.
        conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms:d}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    @contextmanager
    def read(self) -> Iterator[_Reader]:
        """A consistent snapshot: every query in the block sees one committed state."""
        self._check_open()
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is None:
            with _translated():
                conn = self._connect()
                conn.execute("PRAGMA query_only = ON")
            with self._readers_guard:
                self._readers.append(conn)
            local.conn = conn
            local.depth = 0
        outer = local.depth == 0
        if outer:
            with _translated():
                conn.execute("BEGIN")
        local.depth += 1
        try:
            yield _Reader(conn, self._cache)
        finally:
            local.depth -= 1
            if outer:
                with _translated():
                    conn.execute("ROLLBACK")  # read-only: nothing to keep

    @contextmanager
    def write(self) -> Iterator[_Writer]:
        """The serialised write transaction: committed (durably) when the block
        ends normally, rolled back when it raises. Not re-entrant."""
        self._check_open()
        if getattr(self._writing, "active", False):
            raise RuntimeError("write() is not re-entrant: this thread is already writing")
        with self._write_lock, _file_lock(self._lock_path):
            self._writing.active = True
            try:
                conn = self._wconn
                with _translated():
                    conn.execute("BEGIN IMMEDIATE")
                writer = _Writer(conn, self._cache, self._log_range)
                try:
                    yield writer
                except BaseException:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error as e:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise StoreError(f"commit failed: {type(e).__name__}") from e
                self._cache.put_many(writer.committed_on_success)
                if writer.log_range is not None:
                    self._log_range = writer.log_range
            finally:
                self._writing.active = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._write_lock:
            with suppress(sqlite3.Error):
                self._wconn.close()
        with self._readers_guard:
            for conn in self._readers:
                with suppress(sqlite3.Error):
                    conn.close()
            self._readers.clear()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Reader:
    """The `Reader` half of the contract, on one connection inside a transaction."""

    def __init__(self, conn: sqlite3.Connection, cache: _Cache) -> None:
        self._conn = conn
        self._cache = cache

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with _translated():
            return self._conn.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with _translated():
            return self._conn.execute(sql, params).fetchone()

    # -- parties

    def get_party(self, party_id: str) -> Party | None:
        row = self._one(
            "SELECT id, name, language, role, created_at_us FROM parties WHERE id = ?", (party_id,)
        )
        return None if row is None else _party(row)

    def party_for_token(self, token_hash: bytes) -> Party | None:
        row = self._one(
            "SELECT id, name, language, role, created_at_us FROM parties WHERE token_hash = ?",
            (_tokens(token_hash),),
        )
        return None if row is None else _party(row)

    def list_parties(self) -> list[Party]:
        rows = self._all("SELECT id, name, language, role, created_at_us FROM parties ORDER BY id")
        return [_party(r) for r in rows]

    # -- filings

    def get_filing(self, filing_id: str) -> Filing | None:
        row = self._one("SELECT version FROM filings WHERE id = ?", (filing_id,))
        if row is None:
            return None
        return self._current([(filing_id, row[0])])[0]

    def filing_versions(self, filing_id: str) -> list[Filing]:
        out: list[Filing] = []
        fresh: list[Filing] = []
        rows = self._all(
            "SELECT version, doc FROM filing_versions WHERE filing_id = ? ORDER BY version",
            (filing_id,),
        )
        for version, doc in rows:
            f = self._cache.get((filing_id, version))
            if f is None:
                f = decode_filing(doc)
                fresh.append(f)
            out.append(f)
        self._remember(fresh)
        return out

    def find_filings(
        self, query: SpaceTimeQuery, *, live_only: bool = True, exclude_owner: str | None = None
    ) -> list[Filing]:
        cells = sorted({int(c) for c in query.cells})
        if not cells:
            return []
        q_start, q_end = to_us(query.time_start), to_us(query.time_end)
        max_duration = self._one("SELECT value FROM store_meta WHERE name = 'max_duration_us'")[0]
        # A row meets the window when t_start <= q_end and t_end >= q_start; since
        # t_end - t_start <= max_duration, t_start >= q_start - max_duration too,
        # which bounds the index range scan of each cell from below.
        filters = ""
        extra: list[Any] = []
        if live_only:
            filters += " AND f.state <> ?"
            extra.append(State.ENDED.value)
        if exclude_owner is not None:
            filters += " AND f.owner <> ?"
            extra.append(exclude_owner)
        found: dict[str, int] = {}
        for chunk in _chunks(cells):
            # only '?' placeholders and the fixed clauses above are interpolated
            sql = (
                "SELECT DISTINCT f.id, f.version FROM volume_index AS vi"  # noqa: S608
                " JOIN filings AS f ON f.id = vi.filing_id"
                f" WHERE vi.cell IN ({_placeholders(len(chunk))})"
                " AND vi.t_start_us >= ? AND vi.t_start_us <= ? AND vi.t_end_us >= ?"
                " AND vi.alt_lower_m <= ? AND vi.alt_upper_m >= ?" + filters
            )
            params = [
                *chunk,
                q_start - max_duration,
                q_end,
                q_start,
                query.altitude_upper_m,
                query.altitude_lower_m,
                *extra,
            ]
            for fid, version in self._all(sql, params):
                found[fid] = version
        return self._current(list(found.items()))

    def list_filings(self, *, live_only: bool = True, owner: str | None = None) -> list[Filing]:
        clauses: list[str] = []
        params: list[Any] = []
        if live_only:
            clauses.append("state <> ?")
            params.append(State.ENDED.value)
        if owner is not None:
            clauses.append("owner = ?")
            params.append(owner)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        # fixed clauses only; every value is bound
        sql = "SELECT id, version FROM filings" + where + " ORDER BY id"  # noqa: S608
        rows = self._all(sql, params)
        return self._current([(r[0], r[1]) for r in rows])

    def _current(self, keys: list[tuple[str, int]]) -> list[Filing]:
        """Decoded current versions for (id, version) pairs read in this snapshot."""
        got: dict[str, Filing] = {}
        missing: list[str] = []
        for fid, version in keys:
            f = self._cache.get((fid, version))
            if f is None:
                missing.append(fid)
            else:
                got[fid] = f
        fresh: list[Filing] = []
        for chunk in _chunks(missing):
            # only '?' placeholders are interpolated
            sql = (
                "SELECT fv.doc FROM filings AS f JOIN filing_versions AS fv"  # noqa: S608
                " ON fv.filing_id = f.id AND fv.version = f.version"
                f" WHERE f.id IN ({_placeholders(len(chunk))})"
            )
            for (doc,) in self._all(sql, list(chunk)):
                f = decode_filing(doc)
                got[f.id] = f
                fresh.append(f)
        self._remember(fresh)
        return [got[fid] for fid, _ in keys]

    def _remember(self, filings: list[Filing]) -> None:
        # a read snapshot holds committed data only
        self._cache.put_many(filings)

    # -- conflicts

    def list_conflicts(
        self, *, state: ConflictState | None = None, party: str | None = None
    ) -> list[Conflict]:
        clauses: list[str] = []
        params: list[Any] = []
        if state is not None:
            clauses.append("state = ?")
            params.append(state.value)
        if party is not None:
            clauses.append("(a_owner = ? OR b_owner = ?)")
            params += [party, party]
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        # fixed clauses only; every value is bound
        sql = (
            "SELECT id, state, detected_at_us, closed_at_us, doc FROM conflicts"  # noqa: S608
            + where
            + " ORDER BY detected_at_us, id"
        )
        rows = self._all(sql, params)
        return [
            Conflict(
                cid,
                decode_finding(doc),
                ConflictState(st),
                from_us(detected),
                None if closed is None else from_us(closed),
            )
            for cid, st, detected, closed, doc in rows
        ]

    # -- the log

    def log_size(self) -> int:
        return int(self._one("SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries")[0])

    def log_entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        # CAST: the exact stored bytes, even of a row someone damaged to invalid UTF-8
        rows = self._all(
            "SELECT idx, CAST(entry AS BLOB) FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx",
            (start, end),
        )
        return [(int(i), bytes(e)) for i, e in rows]

    def log_nodes(self, nodes: Collection[NodeId]) -> dict[NodeId, bytes]:
        wanted = sorted(set(nodes))
        out: dict[NodeId, bytes] = {}
        for chunk in _chunks(wanted):
            # A join on the wanted keys looks each node up by the primary key; the row-value
            # `IN (VALUES ...)` form made SQLite scan the whole table (147 ms a proof at 1M
            # entries, measured). Only '(?, ?)' placeholders are interpolated.
            sql = (
                f"WITH want(l, i) AS (VALUES {','.join(['(?, ?)'] * len(chunk))})"  # noqa: S608
                " SELECT n.level, n.idx, n.hash FROM want CROSS JOIN ledger_nodes AS n"
                " ON n.level = want.l AND n.idx = want.i"
            )
            params = [v for n in chunk for v in (n.level, n.index)]
            for level, idx, h in self._all(sql, params):
                out[NodeId(int(level), int(idx))] = bytes.fromhex(h)
        return out

    def tree_heads(self, since_size: int = 0) -> list[SignedTreeHead]:
        rows = self._all(
            "SELECT size, root, timestamp_ms, key_id, signature FROM ledger_heads"
            " WHERE size >= ? ORDER BY size",
            (since_size,),
        )
        return [_tree_head(r) for r in rows]

    def latest_tree_head(self) -> SignedTreeHead | None:
        row = self._one(
            "SELECT size, root, timestamp_ms, key_id, signature FROM ledger_heads ORDER BY size DESC LIMIT 1"
        )
        return None if row is None else _tree_head(row)

    # -- the F3548 DSS interface

    _SUBSCRIPTION_COLUMNS = (
        "id, owner, uss_base_url, notify_intents, notify_constraints, implicit, version,"
        " notification_index, created_at_us, updated_at_us, doc"
    )

    def get_subscription(self, subscription_id: str) -> Subscription | None:
        row = self._one(
            f"SELECT {self._SUBSCRIPTION_COLUMNS} FROM dss_subscriptions WHERE id = ?",  # noqa: S608
            (subscription_id,),
        )
        return None if row is None else _subscription(row)

    def find_subscriptions(self, query: SpaceTimeQuery, *, owner: str | None = None) -> list[Subscription]:
        cells = sorted({int(c) for c in query.cells})
        found: dict[str, Subscription] = {}
        extra = " AND s.owner = ?" if owner is not None else ""
        for chunk in _chunks(cells):
            # only '?' placeholders and fixed clauses are interpolated
            sql = (
                "SELECT DISTINCT s.id FROM dss_subscription_cells AS c"  # noqa: S608
                " JOIN dss_subscriptions AS s ON s.id = c.subscription_id"
                f" WHERE c.cell IN ({_placeholders(len(chunk))})"
                " AND s.time_start_us <= ? AND s.time_end_us >= ?"
                " AND s.alt_lower_m <= ? AND s.alt_upper_m >= ?" + extra
            )
            params: list[Any] = [
                *chunk,
                to_us(query.time_end),
                to_us(query.time_start),
                query.altitude_upper_m,
                query.altitude_lower_m,
            ]
            if owner is not None:
                params.append(owner)
            for (sid,) in self._all(sql, params):
                if sid not in found:
                    sub = self.get_subscription(sid)
                    if sub is not None:
                        found[sid] = sub
        return [found[k] for k in sorted(found)]

    def subscription_dependents(self, subscription_id: str) -> list[str]:
        rows = self._all(
            "SELECT r.filing_id FROM dss_references AS r JOIN filings AS f ON f.id = r.filing_id"
            " WHERE r.subscription_id = ? AND f.state <> ? ORDER BY r.filing_id",
            (subscription_id, State.ENDED.value),
        )
        return [r[0] for r in rows]

    def dss_references(self, filing_ids: Collection[str]) -> dict[str, DssReference]:
        out: dict[str, DssReference] = {}
        for chunk in _chunks(sorted(set(filing_ids))):
            sql = (
                "SELECT filing_id, uss_base_url, subscription_id FROM dss_references"  # noqa: S608
                f" WHERE filing_id IN ({_placeholders(len(chunk))})"
            )
            for fid, url, sid in self._all(sql, list(chunk)):
                out[fid] = DssReference(fid, url, sid)
        return out

    def availability(self, party_ids: Collection[str]) -> dict[str, PartyAvailability]:
        out: dict[str, PartyAvailability] = {}
        for chunk in _chunks(sorted(set(party_ids))):
            sql = (
                "SELECT party_id, availability, version, updated_at_us FROM party_availability"  # noqa: S608
                f" WHERE party_id IN ({_placeholders(len(chunk))})"
            )
            for pid, availability, version, updated in self._all(sql, list(chunk)):
                out[pid] = PartyAvailability(pid, Availability(availability), int(version), from_us(updated))
        return out


class _Writer(_Reader):
    """The `Writer` half: runs inside the serialised write transaction."""

    def __init__(self, conn: sqlite3.Connection, cache: _Cache, log_range: CompactRange | None) -> None:
        super().__init__(conn, cache)
        #: versions written here, cached only once the transaction commits
        self.committed_on_success: list[Filing] = []
        self._committed_range = log_range
        #: the log's border as this transaction leaves it (None until it appends)
        self.log_range: CompactRange | None = None

    def _remember(self, filings: list[Filing]) -> None:
        # A version this transaction wrote may still roll back (and its (id, version)
        # be written again with other content), so it waits for the commit; anything
        # else read here was committed before the transaction began: safe to cache.
        written = {(f.id, f.version) for f in self.committed_on_success}
        self._cache.put_many([f for f in filings if (f.id, f.version) not in written])

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with _translated():
            return self._conn.execute(sql, params)

    # -- parties

    def add_party(self, party: Party, token_hash: bytes) -> None:
        if self._one("SELECT 1 FROM parties WHERE id = ?", (party.id,)) is not None:
            raise AlreadyExists("party", party.id)
        self._check_token_free(token_hash)
        self._exec(
            "INSERT INTO parties (id, name, language, role, created_at_us, token_hash)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                party.id,
                party.name,
                party.language,
                party.role.value,
                to_us(party.created_at),
                _tokens(token_hash),
            ),
        )

    def set_party_token(self, party_id: str, token_hash: bytes) -> None:
        if self._one("SELECT 1 FROM parties WHERE id = ?", (party_id,)) is None:
            raise NotFound("party", party_id)
        self._check_token_free(token_hash, unless=party_id)
        self._exec("UPDATE parties SET token_hash = ? WHERE id = ?", (_tokens(token_hash), party_id))

    def _check_token_free(self, token_hash: bytes, unless: str | None = None) -> None:
        row = self._one("SELECT id FROM parties WHERE token_hash = ?", (_tokens(token_hash),))
        if row is not None and row[0] != unless:
            # name the credential by a prefix of its hash, never the holder
            raise AlreadyExists("token", token_hash.hex()[:8])

    # -- filings

    def put_filing(self, filing: Filing, cells: Sequence[Collection[int]]) -> None:
        if len(cells) != len(filing.volumes):
            raise ValueError(
                f"cells has {len(cells)} entries for {len(filing.volumes)} volumes of {filing.id!r}"
            )
        if filing.version < 1:
            raise ValueError(f"filing {filing.id!r}: versions start at 1, got {filing.version}")
        stored = self._one(
            "SELECT f.version, fv.ovn FROM filings AS f JOIN filing_versions AS fv"
            " ON fv.filing_id = f.id AND fv.version = f.version WHERE f.id = ?",
            (filing.id,),
        )
        if filing.version == 1 and stored is not None:
            raise AlreadyExists("filing", filing.id)
        if filing.version > 1:
            if stored is None:
                raise NotFound("filing", filing.id)
            stored_version, stored_ovn = stored
            if filing.version != stored_version + 1:
                base = self._one(
                    "SELECT ovn FROM filing_versions WHERE filing_id = ? AND version = ?",
                    (filing.id, filing.version - 1),
                )
                given = base[0] if base is not None else f"version {filing.version - 1}"
                raise StaleVersion(filing.id, given, stored_ovn)
        if self._one("SELECT 1 FROM parties WHERE id = ?", (filing.owner,)) is None:
            raise NotFound("party", filing.owner)

        row = (
            filing.version,
            filing.type.value,
            filing.owner,
            filing.kind,
            filing.state.value,
            to_us(filing.time_start),
            to_us(filing.time_end),
            to_us(filing.updated_at),
        )
        if stored is None:
            self._exec(
                "INSERT INTO filings (version, type, owner, kind, state, time_start_us,"
                " time_end_us, updated_at_us, created_at_us, id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*row, to_us(filing.created_at), filing.id),
            )
        else:
            self._exec(
                "UPDATE filings SET version = ?, type = ?, owner = ?, kind = ?, state = ?,"
                " time_start_us = ?, time_end_us = ?, updated_at_us = ? WHERE id = ?",
                (*row, filing.id),
            )
        self._exec(
            "INSERT INTO filing_versions (filing_id, version, ovn, updated_at_us, doc)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                filing.id,
                filing.version,
                filing.ovn,
                to_us(filing.updated_at),
                encode_filing(filing).decode(),
            ),
        )
        self._exec("DELETE FROM volume_index WHERE filing_id = ?", (filing.id,))
        index_rows: list[tuple[Any, ...]] = []
        longest = 0
        for no, (volume, volume_cells) in enumerate(zip(filing.volumes, cells, strict=True)):
            t0, t1 = to_us(volume.time_start), to_us(volume.time_end)
            longest = max(longest, t1 - t0)
            for cell in sorted({int(c) for c in volume_cells}):
                index_rows.append(
                    (
                        filing.id,
                        no,
                        cell,
                        t0,
                        t1,
                        volume.altitude_lower_m,
                        volume.altitude_upper_m,
                    )
                )
        with _translated():
            self._conn.executemany(
                "INSERT INTO volume_index (filing_id, volume_no, cell, t_start_us, t_end_us,"
                " alt_lower_m, alt_upper_m) VALUES (?, ?, ?, ?, ?, ?, ?)",
                index_rows,
            )
        self._exec(
            "UPDATE store_meta SET value = ? WHERE name = 'max_duration_us' AND value < ?",
            (longest, longest),
        )
        self.committed_on_success.append(filing)

    # -- conflicts

    def add_conflicts(self, conflicts: Sequence[Conflict]) -> None:
        for c in conflicts:
            if self._one("SELECT 1 FROM conflicts WHERE id = ?", (c.id,)) is not None:
                raise AlreadyExists("conflict", c.id)
            a, b = c.finding.a, c.finding.b
            for ref in (a, b):
                if (
                    self._one(
                        "SELECT 1 FROM filing_versions WHERE filing_id = ? AND version = ?",
                        (ref.id, ref.version),
                    )
                    is None
                ):
                    raise NotFound("filing version", f"{ref.id} v{ref.version}")
            self._exec(
                "INSERT INTO conflicts (id, a_id, a_version, a_owner, b_id, b_version, b_owner,"
                " state, detected_at_us, closed_at_us, doc)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    c.id,
                    a.id,
                    a.version,
                    a.owner,
                    b.id,
                    b.version,
                    b.owner,
                    c.state.value,
                    to_us(c.detected_at),
                    None if c.closed_at is None else to_us(c.closed_at),
                    encode_finding(c.finding).decode(),
                ),
            )

    def close_conflicts(self, filing_id: str, at: datetime) -> list[str]:
        params = (ConflictState.OPEN.value, filing_id, filing_id)
        rows = self._all(
            "SELECT id FROM conflicts WHERE state = ? AND (a_id = ? OR b_id = ?) ORDER BY id", params
        )
        if rows:
            self._exec(
                "UPDATE conflicts SET state = ?, closed_at_us = ? WHERE state = ? AND (a_id = ? OR b_id = ?)",
                (ConflictState.CLOSED.value, to_us(at), *params),
            )
        return [r[0] for r in rows]

    # -- the log

    def _border(self) -> CompactRange:
        """This transaction's right border of the tree, consistent with the database."""
        if self.log_range is None:
            size = self.log_size()
            cached = self._committed_range
            if cached is not None and cached.size == size:
                self.log_range = CompactRange.from_nodes(size, [h for _, h in cached.nodes()])
            else:  # cold, or the log grew in another process
                wanted = range_nodes(0, size)
                got = self.log_nodes(wanted)
                lost = [n for n in wanted if n not in got]
                if lost:
                    raise StoreError(
                        f"the log is damaged: node {lost[0]} of a tree of size {size} is missing"
                    )
                self.log_range = CompactRange.from_nodes(size, [got[n] for n in wanted])
        return self.log_range

    def append_log(self, entries: Sequence[bytes]) -> list[int]:
        texts: list[str] = []
        for i, entry in enumerate(entries):
            try:
                text = entry.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"log entry {i} is not UTF-8 (entries are canonical JSON)") from None
            if "\x00" in text:
                raise ValueError(f"log entry {i} holds a NUL character (entries are canonical JSON)")
            texts.append(text)
        border = self._border()
        first = border.size
        try:
            node_rows: list[tuple[int, int, str]] = []
            for entry in entries:
                for node, h in border.append(leaf_hash(entry)):
                    node_rows.append((node.level, node.index, h.hex()))
            with _translated():
                self._conn.executemany(
                    "INSERT INTO ledger_entries (idx, entry) VALUES (?, ?)",
                    [(first + i, t) for i, t in enumerate(texts)],
                )
                self._conn.executemany(
                    "INSERT INTO ledger_nodes (level, idx, hash) VALUES (?, ?, ?)", node_rows
                )
        except BaseException:
            self.log_range = None  # out of step with the database: rebuild if asked again
            raise
        return list(range(first, first + len(texts)))

    def add_tree_head(self, sth: SignedTreeHead) -> None:
        head = sth.head
        if self._one("SELECT 1 FROM ledger_heads WHERE size = ?", (head.size,)) is not None:
            raise AlreadyExists("tree head", str(head.size))
        size = self.log_size()
        if head.size > size:
            raise ValueError(f"a tree head of size {head.size} is larger than the log ({size} entries)")
        self._exec(
            "INSERT INTO ledger_heads (size, root, timestamp_ms, key_id, signature) VALUES (?, ?, ?, ?, ?)",
            (
                head.size,
                head.root.hex(),
                head.timestamp_ms,
                sth.key_id,
                base64.b64encode(sth.signature).decode("ascii"),
            ),
        )

    # -- the F3548 DSS interface

    def put_subscription(self, subscription: Subscription, cells: Collection[int]) -> None:
        sub = subscription
        if sub.version < 1:
            raise ValueError(f"subscription {sub.id!r}: versions start at 1, got {sub.version}")
        stored = self._one("SELECT version FROM dss_subscriptions WHERE id = ?", (sub.id,))
        if sub.version == 1 and stored is not None:
            raise AlreadyExists("subscription", sub.id)
        if sub.version > 1:
            if stored is None:
                raise NotFound("subscription", sub.id)
            if sub.version != stored[0] + 1:
                raise StaleVersion(sub.id, str(sub.version - 1), str(stored[0]))
        if self._one("SELECT 1 FROM parties WHERE id = ?", (sub.owner,)) is None:
            raise NotFound("party", sub.owner)
        row = (
            sub.owner,
            sub.uss_base_url,
            int(sub.notify_for_intents),
            int(sub.notify_for_constraints),
            int(sub.implicit),
            sub.version,
            sub.notification_index,
            to_us(sub.time_start),
            to_us(sub.time_end),
            min(v.altitude_lower_m for v in sub.volumes),
            max(v.altitude_upper_m for v in sub.volumes),
            to_us(sub.created_at),
            to_us(sub.updated_at),
            encode_volumes(sub.volumes).decode(),
            sub.id,
        )
        if stored is None:
            self._exec(
                "INSERT INTO dss_subscriptions (owner, uss_base_url, notify_intents, notify_constraints,"
                " implicit, version, notification_index, time_start_us, time_end_us, alt_lower_m,"
                " alt_upper_m, created_at_us, updated_at_us, doc, id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        else:
            self._exec(
                "UPDATE dss_subscriptions SET owner = ?, uss_base_url = ?, notify_intents = ?,"
                " notify_constraints = ?, implicit = ?, version = ?, notification_index = ?,"
                " time_start_us = ?, time_end_us = ?, alt_lower_m = ?, alt_upper_m = ?,"
                " created_at_us = ?, updated_at_us = ?, doc = ? WHERE id = ?",
                row,
            )
            self._exec("DELETE FROM dss_subscription_cells WHERE subscription_id = ?", (sub.id,))
        with _translated():
            self._conn.executemany(
                "INSERT INTO dss_subscription_cells (subscription_id, cell) VALUES (?, ?)",
                [(sub.id, c) for c in sorted({int(c) for c in cells})],
            )

    def delete_subscription(self, subscription_id: str) -> None:
        if self._one("SELECT 1 FROM dss_subscriptions WHERE id = ?", (subscription_id,)) is None:
            raise NotFound("subscription", subscription_id)
        self._exec("DELETE FROM dss_subscription_cells WHERE subscription_id = ?", (subscription_id,))
        self._exec("DELETE FROM dss_subscriptions WHERE id = ?", (subscription_id,))

    def bump_notifications(self, subscription_ids: Collection[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for sid in sorted(set(subscription_ids)):
            self._exec(
                "UPDATE dss_subscriptions SET notification_index = notification_index + 1 WHERE id = ?",
                (sid,),
            )
            row = self._one("SELECT notification_index FROM dss_subscriptions WHERE id = ?", (sid,))
            if row is not None:
                out[sid] = int(row[0])
        return out

    def put_dss_reference(self, reference: DssReference) -> None:
        if self._one("SELECT 1 FROM filings WHERE id = ?", (reference.filing_id,)) is None:
            raise NotFound("filing", reference.filing_id)
        self._exec(
            "INSERT INTO dss_references (filing_id, uss_base_url, subscription_id) VALUES (?, ?, ?)"
            " ON CONFLICT (filing_id) DO UPDATE SET uss_base_url = excluded.uss_base_url,"
            " subscription_id = excluded.subscription_id",
            (reference.filing_id, reference.uss_base_url, reference.subscription_id),
        )

    def set_availability(self, availability: PartyAvailability) -> None:
        a = availability
        if self._one("SELECT 1 FROM parties WHERE id = ?", (a.party_id,)) is None:
            raise NotFound("party", a.party_id)
        row = self._one("SELECT version FROM party_availability WHERE party_id = ?", (a.party_id,))
        stored = 0 if row is None else int(row[0])
        if a.version != stored + 1:
            raise StaleVersion(a.party_id, str(a.version - 1), str(stored))
        if a.updated_at is None:
            raise ValueError("a set availability needs its time")
        self._exec(
            "INSERT INTO party_availability (party_id, availability, version, updated_at_us)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (party_id) DO UPDATE SET"
            " availability = excluded.availability, version = excluded.version,"
            " updated_at_us = excluded.updated_at_us",
            (a.party_id, a.availability.value, a.version, to_us(a.updated_at)),
        )


def _tree_head(row: Any) -> SignedTreeHead:
    size, root, timestamp_ms, kid, signature = row
    try:
        return SignedTreeHead(
            TreeHead(int(size), bytes.fromhex(root), int(timestamp_ms)), kid, base64.b64decode(signature)
        )
    except (InvalidInput, ValueError, TypeError) as exc:
        raise StoreError(f"the stored tree head of size {size} is malformed ({exc})") from None


def _subscription(row: Any) -> Subscription:
    sid, owner, url, intents, constraints, implicit, version, index, created, updated, doc = row
    return Subscription(
        id=sid,
        owner=owner,
        uss_base_url=url,
        volumes=decode_volumes(doc),
        notify_for_intents=bool(intents),
        notify_for_constraints=bool(constraints),
        implicit=bool(implicit),
        version=int(version),
        notification_index=int(index),
        created_at=from_us(created),
        updated_at=from_us(updated),
    )


def _party(row: Any) -> Party:
    pid, name, language, role, created = row
    return Party(pid, name, language, Role(role), from_us(created))


# -- migrations


def _migrations() -> list[tuple[int, str, str]]:
    root = resources.files("deconflict.store").joinpath("migrations", "sqlite")
    found: list[tuple[int, str, str]] = []
    for item in root.iterdir():
        m = _MIGRATION_NAME.match(item.name)
        if m:
            found.append((int(m.group(1)), m.group(2), item.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    if len(set(numbers)) != len(numbers) or (numbers and numbers[0] != 1):
        raise StoreError(f"migrations must be numbered from 1, each number once, found {numbers}")
    return found


def _statements(script: str) -> Iterator[str]:
    """Split a migration script into statements (without committing, unlike executescript)."""
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf.strip()
            buf = ""
    rest = "\n".join(ln for ln in buf.splitlines() if ln.strip() and not ln.strip().startswith("--"))
    if rest.strip():
        raise StoreError(f"migration ends with an incomplete statement: {rest.strip()[:60]!r}")


def _migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations this database lacks, all in one transaction."""
    known = _migrations()
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_us BIGINT NOT NULL)"
        )
        applied = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
        newest = max((n for n, _, _ in known), default=0)
        if applied and max(applied) > newest:
            raise StoreError(f"the database has schema version {max(applied)}; this program knows {newest}")
        for number, name, script in known:
            if number in applied:
                continue
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at_us) VALUES (?, ?, ?)",
                (number, name, to_us(datetime.now(UTC))),
            )
        conn.execute("COMMIT")
    except BaseException:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
