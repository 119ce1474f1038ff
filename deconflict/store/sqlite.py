"""The SQLite backend of the store contract (`deconflict.store.base`).

One file, WAL mode, `synchronous=FULL` (a commit that returned is on disk),
foreign keys on. Writes are serialised twice over: a process-wide lock per
database file (threads) and `BEGIN IMMEDIATE` (processes). Reads use one
connection per thread, each `read()` block one snapshot. The schema comes from
the numbered files in `migrations/sqlite/`, applied at open and recorded in
`schema_migrations`.

The contract's SQL lives in `deconflict.store.sql` (shared with PostgreSQL): this
module supplies the connection adapter, the transactions and the locks.

Storage errors never leave this module as `sqlite3` exceptions: the contract's
cases become `AlreadyExists`, `NotFound` or `StaleVersion`, found by explicit
checks inside the write transaction rather than by reading error text; anything
else (disk full, database locked past the busy timeout, a corrupt file) becomes
`StoreError`.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deconflict.errors import StoreUnavailable
from deconflict.ledger.rfc9162 import CompactRange
from deconflict.store.codec import to_us
from deconflict.store.sql import DecodeCache, SqlReader, SqlWriter, migrations, statements

__all__ = ["SqliteStore", "StoreError"]


#: Kept as an alias: the domain error lives in `deconflict.errors`.
StoreError = StoreUnavailable


class _Conn:
    """The `deconflict.store.sql.Connection` adapter over one sqlite3 connection."""

    #: CAST: the exact stored bytes, even of a row someone damaged to invalid UTF-8
    entry_bytes = "CAST(entry AS BLOB)"

    __slots__ = ("raw",)

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with _translated():
            return self.raw.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with _translated():
            return self.raw.execute(sql, params).fetchone()

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        with _translated():
            self.raw.execute(sql, params)

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with _translated():
            self.raw.executemany(sql, rows)


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


class SqliteStore:
    """`Store` on one SQLite file (created if missing)."""

    local = True

    def __init__(self, path: str | Path, *, cache_size: int = 50_000, busy_timeout_ms: int = 10_000) -> None:
        #: what `deconflict.store.open_store` opens again (another handle on this database)
        self.database = str(path)
        self._path = Path(path).resolve()
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._write_lock = _process_lock(self._path)
        self._lock_path = self._path.with_name(self._path.name + ".lock")
        self._writing = threading.local()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_guard = threading.Lock()
        self._cache = DecodeCache(cache_size)
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
    def read(self) -> Iterator[SqlReader]:
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
            yield SqlReader(_Conn(conn), self._cache)
        finally:
            local.depth -= 1
            if outer:
                with _translated():
                    conn.execute("ROLLBACK")  # read-only: nothing to keep

    @contextmanager
    def write(self) -> Iterator[SqlWriter]:
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
                writer = SqlWriter(_Conn(conn), self._cache, self._log_range)
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


# -- migrations


def _migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations this database lacks, all in one transaction."""
    known = migrations()
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_us BIGINT NOT NULL)"
        )
        applied = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
        if applied and max(applied) > len(known):
            raise StoreError(
                f"the database has schema version {max(applied)}; this program knows {len(known)}"
            )
        for number, name, script in known:
            if number in applied:
                continue
            for statement in statements(script):
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
