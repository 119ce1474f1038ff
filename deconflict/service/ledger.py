"""The shared record as a use case: entries of every change, signed tree heads, proofs.

Each write path builds its entries with :meth:`Ledger.entry` and appends them with the
change, inside the same ``store.write()`` (no change without its entry, no entry
without its change). What an entry's body holds is defined here, once per kind:
identities, versions, version tokens, owner, kind, state, volumes as GeoJSON Features,
notice and lateness; never anything about purpose.

Work under the write lock is kept to the canonical encoding (RFC 8785) of the bodies
and the hashing of what they complete; a caller that knows its entry before it takes
the lock (a new filing) encodes it before.

Tree heads are signed on demand (:meth:`Ledger.sign_head`) only when the log grew
since the last one, inside a write transaction so that processes sharing the store
never sign two heads of one size; timestamps never decrease from one head to the next.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

from deconflict.clock import Clock
from deconflict.errors import InvalidInput, NotFound, StoreUnavailable
from deconflict.ledger.canonical import JSONValue, canonicalize
from deconflict.ledger.entries import Entry, Kind, decode_entry, entry_bytes
from deconflict.ledger.export import ExportCounts, write_export
from deconflict.ledger.keys import SigningKey
from deconflict.ledger.replay import Snapshot, state_at
from deconflict.ledger.rfc9162 import (
    GetNode,
    NodeId,
    consistency_nodes,
    consistency_proof_from_nodes,
    inclusion_nodes,
    inclusion_proof_from_nodes,
    leaf_hash,
    range_nodes,
    root_from_nodes,
)
from deconflict.ledger.sth import SignedTreeHead, TreeHead, sign
from deconflict.model import Agreement, Conflict, Filing, Party
from deconflict.model.geojson import volume_to_feature
from deconflict.store.base import Reader, Store, Writer, retrying

__all__ = [
    "MAX_PAGE",
    "Ledger",
    "Receipt",
    "conflict_closed_body",
    "conflict_opened_body",
    "filing_body",
    "party_body",
]

AGREEMENT_META = "agreement_sha256_64"
"""Store meta: the first 64 bits of the SHA-256 of the agreement last recorded."""

MAX_PAGE = 1000
"""Most entries one :meth:`Ledger.entries` call returns."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class Receipt:
    """Where an accepted write's entry sits in the log: its leaf index and the RFC 9162
    leaf hash of its bytes (what an inclusion proof proves)."""

    leaf_index: int
    entry_hash: bytes


# -- entry bodies ---------------------------------------------------------------------


def filing_body(filing: Filing, supersedes: str | None = None) -> dict[str, JSONValue]:
    """One version of a filing, whole: what it is, where and when, and its notice.
    `supersedes` is the version token of the version it replaces."""
    body: dict[str, JSONValue] = {
        **filing.ref().as_dict(),
        "state": filing.state.value,
        "priority": filing.priority,
        "volumes": [volume_to_feature(v) for v in filing.volumes],
        "notice_s": filing.notice_s,
        "late": filing.late,
    }
    if supersedes is not None:
        body["supersedes"] = supersedes
    return body


def conflict_opened_body(conflict: Conflict) -> dict[str, JSONValue]:
    return {"id": conflict.id, **conflict.finding.as_dict()}


def conflict_closed_body(conflict_id: str, by: Filing) -> dict[str, JSONValue]:
    """Conflict `conflict_id` closed because `by` superseded or ended one of its sides."""
    return {"id": conflict_id, "by": by.ref().as_dict()}


def party_body(party: Party) -> dict[str, JSONValue]:
    return {"id": party.id, "name": party.name, "language": party.language, "role": party.role.value}


# -- the ledger -----------------------------------------------------------------------


def _getter(nodes: Mapping[NodeId, bytes]) -> GetNode:
    def get(level: int, index: int) -> bytes:
        try:
            return nodes[NodeId(level, index)]
        except KeyError:
            raise StoreUnavailable(f"the log is damaged: node ({level}, {index}) is missing") from None

    return get


def _ms(at: datetime) -> int:
    return (at - _EPOCH) // _MS


class Ledger:
    """The log of one store, signed with one key."""

    def __init__(self, store: Store, key: SigningKey, clock: Clock) -> None:
        self.store = store
        self.key = key
        self.clock = clock
        self._replaying = threading.Lock()

    @classmethod
    def ephemeral(cls, store: Store, clock: Clock) -> Ledger:
        """A ledger with a key of its own that nothing keeps (tools, benchmarks): every
        change is still recorded, but its heads verify against no published key."""
        return cls(store, SigningKey.generate(), clock)

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key that verifies every tree head."""
        return self.key.public_raw

    # -- writing (inside the caller's transaction)

    def entry(self, kind: Kind, body: Mapping[str, JSONValue], at: datetime | None = None) -> bytes:
        """The canonical bytes of an entry; `at` defaults to the clock's now."""
        return entry_bytes(kind, at if at is not None else self.clock.now(), body)

    def append(self, w: Writer, entries: Collection[bytes]) -> list[Receipt]:
        """Append entries in `w`'s transaction; their receipts, in order."""
        data = list(entries)
        indices = w.append_log(data)
        return [Receipt(i, leaf_hash(e)) for i, e in zip(indices, data, strict=True)]

    def record(self, w: Writer, kind: Kind, body: Mapping[str, JSONValue], at: datetime | None = None) -> int:
        """Append one entry in `w`'s transaction; its leaf index."""
        return self.append(w, [self.entry(kind, body, at)])[0].leaf_index

    def record_agreement(self, agreement: Agreement) -> Receipt | None:
        """Record the agreement the service runs under, if it is not the one last
        recorded (an `agreement_changed` entry with the whole document and its SHA-256);
        None when it is. Called when the service starts serving."""
        document = canonicalize(dict(agreement.document))
        digest = hashlib.sha256(document).digest()
        mark = int.from_bytes(digest[:8], "big", signed=True)

        def write(w: Writer) -> Receipt | None:
            if w.get_meta(AGREEMENT_META) == mark:
                return None
            body: dict[str, JSONValue] = {
                "name": agreement.name,
                "version": agreement.version,
                "sha256": digest.hex(),
                "document": json.loads(document),
            }
            (receipt,) = self.append(w, [self.entry(Kind.AGREEMENT_CHANGED, body)])
            w.set_meta(AGREEMENT_META, mark)
            return receipt

        return retrying(self.store, write)

    # -- tree heads

    def _root(self, r: Reader, size: int) -> bytes:
        wanted = range_nodes(0, size)
        return root_from_nodes(size, _getter(r.log_nodes(wanted)))

    def latest_head(self) -> SignedTreeHead | None:
        with self.store.read() as r:
            return r.latest_tree_head()

    def sign_head(self) -> SignedTreeHead:
        """The latest signed tree head, signing (and keeping) a new one if the log grew."""
        with self.store.read() as r:
            latest = r.latest_tree_head()
            if latest is not None and latest.head.size == r.log_size():
                return latest

        def write(w: Writer) -> SignedTreeHead:
            latest = w.latest_tree_head()
            size = w.log_size()
            if latest is not None and latest.head.size >= size:
                return latest  # another thread or process signed it meanwhile
            timestamp_ms = max(_ms(self.clock.now()), latest.head.timestamp_ms if latest else 0)
            sth = sign(TreeHead(size, self._root(w, size), timestamp_ms), self.key)
            w.add_tree_head(sth)
            return sth

        return retrying(self.store, write)

    def tree_heads(self, since_size: int = 0) -> list[SignedTreeHead]:
        with self.store.read() as r:
            return r.tree_heads(since_size)

    # -- reading and proofs

    def size(self) -> int:
        with self.store.read() as r:
            return r.log_size()

    @staticmethod
    def _check_size(name: str, value: int, log_size: int) -> None:
        if value < 0:
            raise InvalidInput.one(name, "must be >= 0")
        if value > log_size:
            raise InvalidInput.one(name, f"must be at most the log's size, {log_size}")

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The RFC 9162 audit path of leaf `index` in the tree of `size` leaves."""
        with self.store.read() as r:
            self._check_size("size", size, r.log_size())
            if not 0 <= index < size:
                raise InvalidInput.one("index", f"must be >= 0 and below size ({size})")
            nodes = r.log_nodes(inclusion_nodes(index, size))
        return inclusion_proof_from_nodes(index, size, _getter(nodes))

    def receipt(self, index: int) -> tuple[Receipt, SignedTreeHead, list[bytes]]:
        """Entry `index`'s full receipt: its leaf hash, a signed tree head that covers it
        (the latest, signed now if the log grew) and the audit path to that head."""
        with self.store.read() as r:
            rows = r.log_entries(index, index + 1) if 0 <= index < r.log_size() else []
        if not rows:
            raise NotFound("log entry", str(index))
        head = self.sign_head()
        path = self.inclusion_proof(index, head.head.size)
        return Receipt(index, leaf_hash(rows[0][1])), head, path

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """The RFC 9162 consistency proof from the tree of `first` leaves to `second`."""
        with self.store.read() as r:
            log_size = r.log_size()
            self._check_size("second", second, log_size)
            self._check_size("first", first, log_size)
            if first > second:
                raise InvalidInput.one("first", f"must be at most second ({second})")
            nodes = r.log_nodes(consistency_nodes(first, second))
        return consistency_proof_from_nodes(first, second, _getter(nodes))

    def entries(self, start: int, end: int | None = None) -> list[tuple[int, bytes]]:
        """``(index, bytes)`` of entries ``[start, end)``: at most :data:`MAX_PAGE`, and
        none past the log's end. `end` defaults to a full page."""
        with self.store.read() as r:
            log_size = r.log_size()
            self._check_size("start", start, log_size)
            stop = start + MAX_PAGE if end is None else end
            if stop < start:
                raise InvalidInput.one("end", f"must be at least start ({start})")
            return r.log_entries(start, min(stop, start + MAX_PAGE, log_size))

    # -- export

    def export(self, out: BinaryIO) -> tuple[SignedTreeHead, ExportCounts]:
        """Write the whole log and its tree heads (the export format of
        :mod:`deconflict.ledger.export`) to `out`, streaming. A head is signed first, so
        the export ends covered; entries appended meanwhile are left for the next one.
        Rows are written as stored, damaged or not: the verifier is the judge."""
        try:
            latest = self.sign_head()
        except StoreUnavailable:
            # The stored tree no longer matches the entries (a row was inserted behind
            # the service's back): sign nothing new, export every stored row and the heads
            # signed so far, and let the verifier name the damage.
            heads = self.tree_heads()
            if not heads:
                raise
            return heads[-1], write_export(out, self.public_key, log_rows(self.store), heads)
        size = latest.head.size
        heads = [h for h in self.tree_heads() if h.head.size <= size]
        return latest, write_export(out, self.public_key, log_rows(self.store, size), heads)

    # -- replay

    def replay(self, at: datetime, *, include_ended: bool = False) -> Snapshot:
        """Filings and open conflicts at time `at`, rebuilt from the log alone.

        One replay at a time in a process: a rebuild is Python work that holds the
        interpreter lock, so two at once would each take as long as both in turn while
        holding two states (at 1M filings, about 3 GB each); in turn, the first is
        answered sooner and the memory is one state's."""
        with self._replaying:
            return state_at(decoded(log_rows(self.store)), at, include_ended=include_ended)


def log_rows(store: Store, size: int | None = None) -> Iterator[tuple[int, bytes]]:
    """``(index, bytes)`` of the first `size` entries (default: the whole log now), a
    page per read snapshot."""
    if size is None:
        with store.read() as r:
            size = r.log_size()
    for start in range(0, size, MAX_PAGE):
        with store.read() as r:
            yield from r.log_entries(start, min(start + MAX_PAGE, size))


def decoded(rows: Iterable[tuple[int, bytes]]) -> Iterator[tuple[int, Entry]]:
    """Decode entries as they are read (a replay holds the state it rebuilds, not the
    log); a damaged one is named `entries[i]`."""
    for index, data in rows:
        try:
            entry = decode_entry(data)
        except InvalidInput as exc:
            raise exc.prefixed(f"entries[{index}]") from None
        yield index, entry
