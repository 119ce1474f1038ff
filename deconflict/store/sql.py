"""The store contract's SQL, written once for every engine (SQLite, PostgreSQL, and
what speaks PostgreSQL's SQL such as CockroachDB).

`SqlReader` and `SqlWriter` implement `deconflict.store.base.Reader`/`Writer` over a
thin `Connection` adapter that each engine module supplies (`sqlite.py`, `postgres.py`):
the adapter runs statements written with ``?`` placeholders (rewriting them for its
driver), maps the driver's errors to `deconflict.errors`, and says how to read a log
entry's exact bytes. Transactions, locking and connections stay with the engine's
`Store`; everything between BEGIN and COMMIT is here.

Filings are stored whole as JSON documents (`codec`), one row per version, and
decoded through an LRU cache keyed by (id, version): versions never change once
committed, so a cached decode never goes stale, whichever process wrote it. Only
committed versions enter the cache (a rolled-back version must not be served later).

The log (`append_log`) keeps the right border of the tree (a `CompactRange`, O(log n)
hashes) so an append hashes only what it completes. The copy on the store is the
committed state: a write transaction takes a copy when it first appends (or rebuilds
it from the stored border nodes when the log grew in another process), and the store
keeps the copy only once the transaction commits.

The contract's error cases (`AlreadyExists`, `NotFound`, `StaleVersion`) are found by
explicit checks inside the write transaction, never by reading error text.

Migrations: the numbered files in `migrations/sqlite/` are the portable schema every
engine applies in order; an engine may replace one file by a same-numbered file in
its own folder (`migrations/postgres/0002_ledger.sql`) where a native type is better.
"""

from __future__ import annotations

import base64
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from importlib import resources
from typing import Any, Protocol, TypeVar

from deconflict.errors import AlreadyExists, InvalidInput, NotFound, StaleVersion, StoreUnavailable
from deconflict.ledger.rfc9162 import CompactRange, NodeId, leaf_hash, range_nodes
from deconflict.ledger.sth import SignedTreeHead, TreeHead
from deconflict.model import Conflict, ConflictState, Filing, FilingType, Party, Role, State
from deconflict.model.signature import PartyKey
from deconflict.store.base import SpaceTimeQuery
from deconflict.store.codec import (
    decode_filing,
    decode_finding,
    encode_filing,
    encode_finding,
    from_us,
    to_us,
)
from deconflict.store.sql_dss import DssReads, DssWrites
from deconflict.store.sql_hotline import HotlineReads, HotlineWrites
from deconflict.store.sql_tactical import TacticalReads, TacticalWrites
from deconflict.store.sqlparts import chunks, placeholders

__all__ = ["Connection", "DecodeCache", "SqlReader", "SqlWriter", "migrations", "statements"]

T = TypeVar("T")
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
#: the folder of the portable migrations every engine applies
PORTABLE = "sqlite"


def _conflict(row: Sequence[Any]) -> Conflict:
    """A conflict from its row: id, state, detected_at_us, closed_at_us, doc."""
    cid, st, detected, closed, doc = row
    closed_at = None if closed is None else from_us(closed)
    return Conflict(cid, decode_finding(doc), ConflictState(st), from_us(detected), closed_at)


class Connection(Protocol):
    """What the shared SQL needs of an engine: statements with ``?`` placeholders,
    driver errors already mapped to `deconflict.errors` (StoreUnavailable)."""

    #: SQL expression of ``ledger_entries.entry`` as its exact stored bytes (or text)
    entry_bytes: str

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    def run(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class DecodeCache:
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


def _tokens(token_hash: bytes) -> str:
    return token_hash.hex()


class SqlReader(DssReads, HotlineReads, TacticalReads):
    """The `Reader` half of the contract, on one connection inside a transaction."""

    def __init__(self, conn: Connection, cache: DecodeCache) -> None:
        self._conn = conn
        self._cache = cache

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._conn.all(sql, params)

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.one(sql, params)

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

    def party_keys(self, party_id: str) -> list[PartyKey]:
        rows = self._all(
            "SELECT key_id, party_id, algorithm, public_key, required, added_at_us, revoked_at_us"
            " FROM party_keys WHERE party_id = ? ORDER BY added_at_us, key_id",
            (party_id,),
        )
        return [_party_key(r) for r in rows]

    def get_meta(self, name: str) -> int | None:
        row = self._one("SELECT value FROM store_meta WHERE name = ?", ("service:" + name,))
        return None if row is None else int(row[0])

    def get_party_key(self, key_id: str) -> PartyKey | None:
        row = self._one(
            "SELECT key_id, party_id, algorithm, public_key, required, added_at_us, revoked_at_us"
            " FROM party_keys WHERE key_id = ?",
            (key_id,),
        )
        return None if row is None else _party_key(row)

    # -- filings

    def get_filing(self, filing_id: str) -> Filing | None:
        row = self._one("SELECT version FROM filings WHERE id = ?", (filing_id,))
        if row is None:
            return None
        return self._current([(filing_id, row[0])])[0]

    def filing_entries(self, filing_id: str) -> dict[int, int]:
        rows = self._all(
            "SELECT version, log_idx FROM filing_versions WHERE filing_id = ? AND log_idx IS NOT NULL",
            (filing_id,),
        )
        return {int(v): int(i) for v, i in rows}

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
        self,
        query: SpaceTimeQuery,
        *,
        live_only: bool = True,
        exclude_owner: str | None = None,
        after: str | None = None,
        limit: int | None = None,
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
            filters += " AND vi.state <> ?"
            extra.append(State.ENDED.value)
        if exclude_owner is not None:
            filters += " AND vi.owner <> ?"
            extra.append(exclude_owner)
        if after is not None:
            filters += " AND vi.filing_id > ?"
            extra.append(after)
        if limit is not None:
            # each chunk's first `limit` ids: the page's are among them (an id the page
            # holds has fewer than `limit` ids before it anywhere), sorted by the engine
            # rather than every matching row handed over (1M filings, a week of the whole
            # region: 9,009 rows instead of 647,129, 0.8 s instead of 3.0)
            filters += " ORDER BY vi.filing_id LIMIT ?"  # last: after every filter's value
            extra.append(limit)
        found: dict[str, int] = {}
        for chunk in chunks(cells):
            # only '?' placeholders and the fixed clauses above are interpolated
            sql = (
                "SELECT DISTINCT vi.filing_id, vi.version FROM volume_index AS vi"  # noqa: S608
                f" WHERE vi.cell IN ({placeholders(len(chunk))})"
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
        if after is None and limit is None:
            return self._current(list(found.items()))
        # a page: the index rows' ids are sorted here and only the page is decoded
        return self._current(sorted(found.items())[:limit])

    def list_filings(
        self,
        *,
        live_only: bool = True,
        owner: str | None = None,
        ftype: FilingType | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[Filing]:
        clauses: list[str] = []
        params: list[Any] = []
        if live_only:
            clauses.append("state <> ?")
            params.append(State.ENDED.value)
        if owner is not None:
            clauses.append("owner = ?")
            params.append(owner)
        if ftype is not None:
            clauses.append("type = ?")
            params.append(ftype.value)
        if after is not None:
            clauses.append("id > ?")
            params.append(after)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        # fixed clauses only; every value is bound
        sql = "SELECT id, version FROM filings" + where + " ORDER BY id"  # noqa: S608
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self._all(sql, params)
        return self._current([(r[0], r[1]) for r in rows])

    def last_filing_stored(self) -> int:
        return int(self._one("SELECT COALESCE(MAX(log_seq), -1) FROM filings")[0])

    def filings_changed_since(self, log_size: int) -> list[Filing]:
        # sorted here: ORDER BY id leads SQLite to scan the whole table in id order
        rows = self._all("SELECT id, version FROM filings WHERE log_seq >= ?", (log_size,))
        return self._current(sorted((r[0], r[1]) for r in rows))

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
        wanted = dict(keys)
        for chunk in chunks(missing):
            # one index look-up per (id, version) pair, straight into filing_versions;
            # only '(?, ?)' placeholders are interpolated
            sql = (
                "SELECT fv.doc FROM (VALUES "  # noqa: S608
                + ",".join(["(?, ?)"] * len(chunk))
                + ") AS k JOIN filing_versions AS fv"
                " ON fv.filing_id = k.column1 AND fv.version = k.column2"
            )
            params = [x for fid in chunk for x in (fid, wanted[fid])]
            for (doc,) in self._all(sql, params):
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
        self,
        *,
        state: ConflictState | None = None,
        party: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[Conflict]:
        clauses: list[str] = []
        params: list[Any] = []
        if state is not None:
            clauses.append("state = ?")
            params.append(state.value)
        if party is not None:
            if limit is None:
                clauses.append("(a_owner = ? OR b_owner = ?)")
            else:
                # a page walks conflicts_by_time and stops at `limit`; through the owner
                # indexes it would sort all the party's conflicts for every page
                clauses.append("(a_owner || '' = ? OR b_owner || '' = ?)")
            params += [party, party]
        if after is not None:
            mark = self._one("SELECT detected_at_us FROM conflicts WHERE id = ?", (after,))
            if mark is None:
                raise NotFound("conflict", after)
            # (detected_at_us, id) > the mark's, spelled so that both engines walk
            # conflicts_by_time from the mark
            clauses.append("detected_at_us >= ? AND (detected_at_us > ? OR id > ?)")
            params += [mark[0], mark[0], after]
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        # fixed clauses only; every value is bound
        sql = (
            "SELECT id, state, detected_at_us, closed_at_us, doc FROM conflicts"  # noqa: S608
            + where
            + " ORDER BY detected_at_us, id"
        )
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_conflict(row) for row in self._all(sql, params)]

    def conflicts_of(
        self, filings: Collection[tuple[str, str]], *, state: ConflictState | None = ConflictState.OPEN
    ) -> list[Conflict]:
        keys = sorted(set(filings))
        rows: dict[str, Sequence[Any]] = {}
        for chunk in chunks(keys):
            params: list[Any] = [x for pair in chunk for x in pair]
            if state is not None:
                params.append(state.value)
            for side in ("a", "b"):
                # a look-up a filing in the side's index (owner, id, state); only '(?, ?)'
                # placeholders and the fixed side letter are interpolated
                sql = (
                    "SELECT c.id, c.state, c.detected_at_us, c.closed_at_us, c.doc FROM (VALUES "  # noqa: S608
                    + ",".join(["(?, ?)"] * len(chunk))
                    + f") AS k JOIN conflicts AS c ON c.{side}_owner = k.column1 AND c.{side}_id = k.column2"
                    + ("" if state is None else " AND c.state = ?")
                )
                for row in self._all(sql, params):
                    rows[row[0]] = row
        return sorted((_conflict(r) for r in rows.values()), key=lambda c: (c.detected_at, c.id))

    # -- the log

    def log_size(self) -> int:
        return int(self._one("SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries")[0])

    def log_entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        # the engine's expression gives the exact stored bytes (SQLite: even of a row
        # someone damaged to invalid UTF-8); the expression is the adapter's constant
        rows = self._all(
            f"SELECT idx, {self._conn.entry_bytes} FROM ledger_entries"  # noqa: S608
            " WHERE idx >= ? AND idx < ? ORDER BY idx",
            (start, end),
        )
        return [(int(i), e.encode("utf-8") if isinstance(e, str) else bytes(e)) for i, e in rows]

    def log_nodes(self, nodes: Collection[NodeId]) -> dict[NodeId, bytes]:
        wanted = sorted({node_pos(n) for n in nodes})
        out: dict[NodeId, bytes] = {}
        for chunk in chunks(wanted):
            # only '?' placeholders are interpolated
            sql = f"SELECT pos, hash FROM ledger_nodes WHERE pos IN ({placeholders(len(chunk))})"  # noqa: S608
            for pos, h in self._all(sql, chunk):
                out[pos_node(int(pos))] = bytes.fromhex(h)
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


class SqlWriter(DssWrites, HotlineWrites, TacticalWrites, SqlReader):
    """The `Writer` half: runs inside the engine's serialised write transaction."""

    def __init__(self, conn: Connection, cache: DecodeCache, log_range: CompactRange | None) -> None:
        super().__init__(conn, cache)
        #: versions written here, cached only once the transaction commits
        self.committed_on_success: list[Filing] = []
        self._committed_range = log_range
        #: the log's border as this transaction leaves it (None until it appends)
        self.log_range: CompactRange | None = None

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        # what this writer remembers beside the database is put back with it
        written = len(self.committed_on_success)
        border = self.log_range
        saved = (
            None if border is None else CompactRange.from_nodes(border.size, [h for _, h in border.nodes()])
        )
        self._exec("SAVEPOINT item")
        try:
            yield
        except BaseException:
            self._exec("ROLLBACK TO SAVEPOINT item")
            self._exec("RELEASE SAVEPOINT item")
            del self.committed_on_success[written:]
            self.log_range = saved
            raise
        self._exec("RELEASE SAVEPOINT item")

    def _remember(self, filings: list[Filing]) -> None:
        # A version this transaction wrote may still roll back (and its (id, version)
        # be written again with other content), so it waits for the commit; anything
        # else read here was committed before the transaction began: safe to cache.
        written = {(f.id, f.version) for f in self.committed_on_success}
        self._cache.put_many([f for f in filings if (f.id, f.version) not in written])

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.run(sql, params)

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.many(sql, rows)

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

    def set_meta(self, name: str, value: int) -> None:
        if not -(2**63) <= value < 2**63:
            raise ValueError("a meta value is a signed 64-bit integer")
        self._exec(
            "INSERT INTO store_meta (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            ("service:" + name, value),
        )

    def add_party_key(self, key: PartyKey) -> None:
        if self._one("SELECT 1 FROM parties WHERE id = ?", (key.party_id,)) is None:
            raise NotFound("party", key.party_id)
        if self._one("SELECT 1 FROM party_keys WHERE key_id = ?", (key.key_id,)) is not None:
            raise AlreadyExists("key", key.key_id)
        self._exec(
            "INSERT INTO party_keys"
            " (key_id, party_id, algorithm, public_key, required, added_at_us, revoked_at_us)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key.key_id,
                key.party_id,
                "ed25519",
                key.public_b64,
                1 if key.required else 0,
                to_us(key.added_at),
                None if key.revoked_at is None else to_us(key.revoked_at),
            ),
        )

    def revoke_party_key(self, key_id: str, at: datetime) -> None:
        row = self._one("SELECT revoked_at_us FROM party_keys WHERE key_id = ?", (key_id,))
        if row is None or row[0] is not None:
            raise NotFound("key", key_id)
        self._exec("UPDATE party_keys SET revoked_at_us = ? WHERE key_id = ?", (to_us(at), key_id))

    def record_signature(self, key_id: str, signature: bytes, at: datetime) -> None:
        sig = base64.b64encode(signature).decode("ascii")
        if self._one("SELECT 1 FROM request_signatures WHERE signature = ?", (sig,)) is not None:
            raise AlreadyExists("signature", sig[:16])
        self._exec(
            "INSERT INTO request_signatures (signature, key_id, at_us) VALUES (?, ?, ?)",
            (sig, key_id, to_us(at)),
        )

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
            # the log's size now: at least what any snapshot taken before this
            # transaction commits can have seen (`filings_changed_since`); and the
            # index the version's own entry gets, appended next (the contract)
            self._border().size,
        )
        if stored is None:
            self._exec(
                "INSERT INTO filings (version, type, owner, kind, state, time_start_us,"
                " time_end_us, updated_at_us, log_seq, created_at_us, id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*row, to_us(filing.created_at), filing.id),
            )
        else:
            self._exec(
                "UPDATE filings SET version = ?, type = ?, owner = ?, kind = ?, state = ?,"
                " time_start_us = ?, time_end_us = ?, updated_at_us = ?, log_seq = ? WHERE id = ?",
                (*row, filing.id),
            )
        self._exec(
            "INSERT INTO filing_versions (filing_id, version, ovn, updated_at_us, doc, log_idx)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                filing.id,
                filing.version,
                filing.ovn,
                to_us(filing.updated_at),
                encode_filing(filing).decode(),
                row[-1],
            ),
        )
        if stored is not None:  # a new filing has no index rows yet
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
                        filing.owner,
                        filing.version,
                        filing.state.value,
                    )
                )
        self._conn.many(
            "INSERT INTO volume_index (filing_id, volume_no, cell, t_start_us, t_end_us,"
            " alt_lower_m, alt_upper_m, owner, version, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            index_rows,
        )
        self._exec(
            "UPDATE store_meta SET value = ? WHERE name = 'max_duration_us' AND value < ?",
            (longest, longest),
        )
        self.committed_on_success.append(filing)

    # -- conflicts

    def add_conflicts(self, conflicts: Sequence[Conflict]) -> None:
        if not conflicts:
            return
        ids = [c.id for c in conflicts]
        taken: set[str] = set()
        for chunk in chunks(ids):
            # only '?' placeholders are interpolated
            sql = f"SELECT id FROM conflicts WHERE id IN ({placeholders(len(chunk))})"  # noqa: S608
            taken.update(r[0] for r in self._all(sql, list(chunk)))
        named = sorted({ref.id for c in conflicts for ref in (c.finding.a, c.finding.b)})
        stored: set[tuple[str, int]] = set()
        for chunk in chunks(named):
            sql = (
                "SELECT filing_id, version FROM filing_versions"  # noqa: S608 (only '?' interpolated)
                f" WHERE filing_id IN ({placeholders(len(chunk))})"
            )
            stored.update((r[0], r[1]) for r in self._all(sql, list(chunk)))
        rows: list[tuple[Any, ...]] = []
        for c in conflicts:  # the first offender in order, as one insert at a time would find
            if c.id in taken:
                raise AlreadyExists("conflict", c.id)
            taken.add(c.id)
            a, b = c.finding.a, c.finding.b
            for ref in (a, b):
                if (ref.id, ref.version) not in stored:
                    raise NotFound("filing version", f"{ref.id} v{ref.version}")
            rows.append(
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
                )
            )
        self._conn.many(
            "INSERT INTO conflicts (id, a_id, a_version, a_owner, b_id, b_version, b_owner,"
            " state, detected_at_us, closed_at_us, doc)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def close_conflicts(self, filing_id: str, at: datetime) -> list[str]:
        # a conflict names each filing with its owner, which never changes: the
        # indexes are by (owner, filing, state) (migration 0011)
        found = self._one("SELECT owner FROM filings WHERE id = ?", (filing_id,))
        if found is None:  # a conflict names stored filings only
            return []
        named = "state = ? AND ((a_owner = ? AND a_id = ?) OR (b_owner = ? AND b_id = ?))"
        params = (ConflictState.OPEN.value, found[0], filing_id, found[0], filing_id)
        rows = self._all(f"SELECT id FROM conflicts WHERE {named} ORDER BY id", params)  # noqa: S608
        if rows:
            self._exec(
                f"UPDATE conflicts SET state = ?, closed_at_us = ? WHERE {named}",  # noqa: S608
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
                    raise StoreUnavailable(
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
            node_rows: list[tuple[int, str]] = []
            for entry in entries:
                for node, h in border.append(leaf_hash(entry)):
                    node_rows.append((node_pos(node), h.hex()))
            self._conn.many(
                "INSERT INTO ledger_entries (idx, entry) VALUES (?, ?)",
                [(first + i, t) for i, t in enumerate(texts)],
            )
            self._conn.many("INSERT INTO ledger_nodes (pos, hash) VALUES (?, ?)", node_rows)
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


def _tree_head(row: Any) -> SignedTreeHead:
    size, root, timestamp_ms, kid, signature = row
    try:
        return SignedTreeHead(
            TreeHead(int(size), bytes.fromhex(root), int(timestamp_ms)), kid, base64.b64decode(signature)
        )
    except (InvalidInput, ValueError, TypeError) as exc:
        raise StoreUnavailable(f"the stored tree head of size {size} is malformed ({exc})") from None


def _party_key(row: Any) -> PartyKey:
    key_id, party_id, _alg, public_key, required, added, revoked = row
    return PartyKey(
        key_id,
        party_id,
        base64.b64decode(public_key),
        bool(required),
        from_us(added),
        None if revoked is None else from_us(revoked),
    )


def _party(row: Any) -> Party:
    pid, name, language, role, created = row
    return Party(pid, name, language, Role(role), from_us(created))


# -- migrations


def _folder(engine: str) -> dict[int, tuple[str, str]]:
    root = resources.files("deconflict.store").joinpath("migrations", engine)
    found: dict[int, tuple[str, str]] = {}
    if not root.is_dir():
        return found
    for item in root.iterdir():
        m = _MIGRATION_NAME.match(item.name)
        if m:
            found[int(m.group(1))] = (m.group(2), item.read_text(encoding="utf-8"))
    return found


def migrations(engine: str = PORTABLE) -> list[tuple[int, str, str]]:
    """(number, name, script) in order: the portable files, each replaced by the
    engine's same-numbered file where it has one. Numbered 1..n without gaps."""
    found = _folder(PORTABLE)
    if engine != PORTABLE:
        for number, (name, script) in _folder(engine).items():
            if number not in found:
                raise StoreUnavailable(
                    f"migrations/{engine}/{number:04d}_{name}.sql overrides no portable migration"
                )
            if found[number][0] != name:
                raise StoreUnavailable(
                    f"migrations/{engine}/{number:04d}_{name}.sql must keep the portable name"
                    f" {found[number][0]!r}"
                )
            found[number] = (name, script)
    numbers = sorted(found)
    if numbers != list(range(1, len(numbers) + 1)):
        raise StoreUnavailable(f"migrations must be numbered 1..n without gaps, found {numbers}")
    return [(n, *found[n]) for n in numbers]


def node_pos(node: NodeId) -> int:
    """The log node's key in `ledger_nodes` (migration 0009): node (level, index)
    completes when leaf m - 1 is appended, m = (index + 1) * 2**level, after the nodes
    below it, so keys grow in the order nodes are made and each commit appends at the
    end of the table's index."""
    return (((node.index + 1) << node.level) << 6) | node.level


def pos_node(pos: int) -> NodeId:
    """The node `node_pos` keyed as `pos`."""
    level = pos & 63
    return NodeId(level, ((pos >> 6) >> level) - 1)


def statements(script: str) -> Iterator[str]:
    """Split a migration script into statements (without committing, unlike executescript).
    `sqlite3.complete_statement` is a pure tokeniser: it splits portable SQL for any engine."""
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf.strip()
            buf = ""
    rest = "\n".join(ln for ln in buf.splitlines() if ln.strip() and not ln.strip().startswith("--"))
    if rest.strip():
        raise StoreUnavailable(f"migration ends with an incomplete statement: {rest.strip()[:60]!r}")
