"""The PostgreSQL backend of the store contract (`deconflict.store.base`), psycopg 3.

The contract's SQL is `deconflict.store.sql`, shared with SQLite; this module supplies
the connection adapter, the transactions, the locks and the error mapping.

Writes. Every `write()` is one SERIALIZABLE transaction that first takes
``LOCK TABLE ledger_entries IN EXCLUSIVE MODE``: one writer at a time across every
process on the database (the log's appends are serialised, so the shared record stays
one tree), readers never blocked (plain SELECTs take ACCESS SHARE, which EXCLUSIVE
admits). The lock comes before the transaction's first query, so its snapshot is taken
once the lock is held (PostgreSQL freezes a SERIALIZABLE snapshot at the first query,
not at BEGIN or LOCK): the check-then-store of a filing sees every filing committed
before it, exactly as SQLite's BEGIN IMMEDIATE does. SERIALIZABLE stays as the safety
net for any writer that does not take the lock. A serialisation failure or deadlock while
the transaction starts is retried (bounded, with jittered exponential backoff); one
raised later (it cannot happen between deconflict writers, which all take the lock)
becomes `WriteContention`, a `StoreUnavailable` the API answers with 503 and
Retry-After, and `deconflict.store.base.retrying` re-runs a whole write on it.
Within a process a lock serialises the threads in front of one write connection.

CockroachDB has no LOCK TABLE: there the lock statement is a ``SELECT ... FOR UPDATE``
of one row (`lock_sql`), which CockroachDB orders by refreshing the waiting
transaction's timestamp. That variant is not tested here (no CockroachDB on this
machine); see docs/deployment.md.

Reads. A small pool of connections (`pool_size`, at most that many reads at once);
each `read()` block is one REPEATABLE READ READ ONLY transaction (one snapshot), and a
nested `read()` on the same thread reuses it. A connection the server cut (a restart) is
replaced when a transaction begins on it, before anything was done on it.

Schema: the portable files in `migrations/sqlite/`, each replaced by a same-numbered
file in `migrations/postgres/` where there is one, applied at open under a transaction
advisory lock (several processes may start at once) and recorded in `schema_migrations`.
Storage errors never leave this module as psycopg exceptions.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import errors as pgerrors

from deconflict.errors import StoreUnavailable, WriteContention
from deconflict.ledger.rfc9162 import CompactRange
from deconflict.store.codec import to_us
from deconflict.store.sql import DecodeCache, SqlReader, SqlWriter, migrations, statements

__all__ = ["PostgresStore"]

#: serialisation failures and deadlocks: the transaction may simply be run again
_RETRYABLE = (pgerrors.SerializationFailure, pgerrors.DeadlockDetected)
#: an arbitrary key for the advisory lock held while migrating
_MIGRATION_LOCK = 0x6465636F  # "deco"
_PARAMS: dict[str, str] = {}


def _pg(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (the shared SQL holds no other ``?`` or ``%``)."""
    out = _PARAMS.get(sql)
    if out is None:
        out = sql.replace("?", "%s")
        if len(_PARAMS) < 10_000:
            _PARAMS[sql] = out
    return out


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except _RETRYABLE as e:
        raise WriteContention(f"the transaction collided with a concurrent one: {type(e).__name__}") from e
    except psycopg.Error as e:
        raise StoreUnavailable(f"storage failed: {type(e).__name__}") from e


class _Conn:
    """The `deconflict.store.sql.Connection` adapter over one psycopg connection."""

    #: TEXT holds valid UTF-8 only on PostgreSQL: the text is the entry's exact bytes
    entry_bytes = "entry"

    __slots__ = ("raw",)

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with _translated():
            return self.raw.execute(_pg(sql), params).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with _translated():
            return self.raw.execute(_pg(sql), params).fetchone()

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        with _translated():
            self.raw.execute(_pg(sql), params)

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        with _translated(), self.raw.cursor() as cur:
            cur.executemany(_pg(sql), rows)


class PostgresStore:
    """`Store` on one PostgreSQL (or PostgreSQL-speaking) database, given as a libpq
    URL or connection string. Several processes may open the same database."""

    local = False

    #: taken first in every write transaction, before its snapshot (see the module doc)
    lock_sql = "LOCK TABLE ledger_entries IN EXCLUSIVE MODE"

    def __init__(
        self,
        url: str,
        *,
        cache_size: int = 50_000,
        pool_size: int = 8,
        attempts: int = 6,
        lock_timeout_ms: int = 10_000,
        connect_timeout_s: int = 10,
    ) -> None:
        if pool_size < 1 or attempts < 1:
            raise ValueError("pool_size and attempts must be >= 1")
        self._url = url
        #: what `deconflict.store.open_store` opens again (another handle on this database)
        self.database = url
        self._attempts = attempts
        self._lock_timeout_ms = int(lock_timeout_ms)
        self._connect_timeout_s = int(connect_timeout_s)
        self._cache = DecodeCache(cache_size)
        self._write_lock = threading.Lock()
        self._writing = threading.local()
        self._local = threading.local()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._idle: list[psycopg.Connection[Any]] = []
        self._guard = threading.Lock()
        #: the log's right border as committed; touched only under the write lock
        self._log_range: CompactRange | None = None
        self._closed = False
        #: retries taken when starting write transactions (for tests and benchmarks)
        self.retries = 0
        self._wconn: psycopg.Connection[Any] | None = None
        with self._write_lock:
            conn = self._writer()
            self._migrate(conn)

    # -- connections

    def _connect(self) -> psycopg.Connection[Any]:
        with _translated():
            conn = psycopg.connect(
                self._url,
                autocommit=True,  # transactions are begun and ended explicitly
                connect_timeout=self._connect_timeout_s,
                application_name="deconflict",
            )
        try:
            with _translated():
                # our own integer; SET takes no bound parameters
                conn.execute(f"SET lock_timeout = {self._lock_timeout_ms:d}")
                conn.execute("SET TIME ZONE 'UTC'")
        except BaseException:
            conn.close()
            raise
        return conn

    def _writer(self) -> psycopg.Connection[Any]:
        conn = self._wconn
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                conn.close()
            self._wconn = conn = self._connect()
            self._log_range = None
        return conn

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("the store is closed")

    def _acquire(self) -> psycopg.Connection[Any]:
        if not self._slots.acquire(timeout=self._connect_timeout_s + self._lock_timeout_ms / 1000):
            raise StoreUnavailable("no database connection free for reading")
        try:
            with self._guard:
                conn = self._idle.pop() if self._idle else None
            if conn is None or conn.closed or conn.broken:
                conn = self._connect()
            return conn
        except BaseException:
            self._slots.release()
            raise

    def _release(self, conn: psycopg.Connection[Any]) -> None:
        try:
            if self._closed or conn.closed or conn.broken:
                conn.close()
            else:
                with self._guard:
                    self._idle.append(conn)
        finally:
            self._slots.release()

    # -- transactions

    @contextmanager
    def read(self) -> Iterator[SqlReader]:
        """A consistent snapshot: every query in the block sees one committed state."""
        self._check_open()
        local = self._local
        nested: psycopg.Connection[Any] | None = getattr(local, "conn", None)
        if nested is not None:
            yield SqlReader(_Conn(nested), self._cache)
            return
        conn = self._acquire()
        local.conn = conn
        try:
            try:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            except psycopg.Error as e:
                if not conn.broken:
                    raise StoreUnavailable(f"storage failed: {type(e).__name__}") from e
                conn.close()  # cut by the server (a restart): a new connection, once
                conn = local.conn = self._connect()
                with _translated():
                    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield SqlReader(_Conn(conn), self._cache)
        finally:
            local.conn = None
            with suppress(psycopg.Error):
                conn.execute("ROLLBACK")  # read-only: nothing to keep
            self._release(conn)

    def _begin(self, conn: psycopg.Connection[Any]) -> None:
        """BEGIN, then the lock; retried (bounded, jittered) on a serialisation failure
        or deadlock."""
        for attempt in range(self._attempts):
            try:
                # one round trip: no parameters, so psycopg sends both as one simple query
                conn.execute(f"BEGIN ISOLATION LEVEL SERIALIZABLE; {self.lock_sql}")
                return
            except _RETRYABLE as e:
                with suppress(psycopg.Error):
                    conn.execute("ROLLBACK")
                if attempt + 1 == self._attempts:
                    raise WriteContention(
                        f"could not start the write after {self._attempts} attempts: {type(e).__name__}"
                    ) from e
                self.retries += 1
                time.sleep(random.uniform(0, 0.005 * 2**attempt))
            except pgerrors.LockNotAvailable as e:
                with suppress(psycopg.Error):
                    conn.execute("ROLLBACK")
                raise StoreUnavailable(
                    f"the write lock was not free within {self._lock_timeout_ms} ms"
                ) from e
            except psycopg.Error as e:
                with suppress(psycopg.Error):
                    conn.execute("ROLLBACK")
                raise StoreUnavailable(f"storage failed: {type(e).__name__}") from e

    @contextmanager
    def write(self) -> Iterator[SqlWriter]:
        """The serialised write transaction: committed (durably) when the block ends
        normally, rolled back when it raises. Not re-entrant."""
        self._check_open()
        if getattr(self._writing, "active", False):
            raise RuntimeError("write() is not re-entrant: this thread is already writing")
        with self._write_lock:
            self._writing.active = True
            try:
                conn = self._writer()
                try:
                    self._begin(conn)
                except StoreUnavailable:
                    if not conn.broken:
                        raise
                    conn = self._writer()  # cut by the server (a restart): a new connection, once
                    self._begin(conn)
                writer = SqlWriter(_Conn(conn), self._cache, self._log_range)
                try:
                    yield writer
                except BaseException:
                    with suppress(psycopg.Error):
                        conn.execute("ROLLBACK")
                    raise
                try:
                    with _translated():
                        conn.execute("COMMIT")
                except BaseException:
                    with suppress(psycopg.Error):
                        conn.execute("ROLLBACK")
                    raise
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
            if self._wconn is not None:
                with suppress(psycopg.Error):
                    self._wconn.close()
        with self._guard:
            for conn in self._idle:
                with suppress(psycopg.Error):
                    conn.close()
            self._idle.clear()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        """Apply the migrations this database lacks, all in one transaction (DDL is
        transactional on PostgreSQL), one process at a time."""
        known = migrations("postgres")
        with _translated():
            conn.execute("BEGIN")
            try:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_us BIGINT NOT NULL)"
                )
                applied = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
                if applied and max(applied) > len(known):
                    raise StoreUnavailable(
                        f"the database has schema version {max(applied)}; this program knows {len(known)}"
                    )
                for number, name, script in known:
                    if number in applied:
                        continue
                    for statement in statements(script):
                        conn.execute(statement)  # our own files; no parameters
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at_us) VALUES (%s, %s, %s)",
                        (number, name, to_us(datetime.now(UTC))),
                    )
                conn.execute("COMMIT")
            except BaseException:
                with suppress(psycopg.Error):
                    conn.execute("ROLLBACK")
                raise
