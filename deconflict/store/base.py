"""The one repository contract every backend implements (SQLite now, PostgreSQL later).

Reads and atomic writes are two explicit calls: `Store.read()` opens a consistent
read-only snapshot, `Store.write()` opens the serialised write transaction in
which the service checks a filing against its neighbours and stores it, so that
two conflicting filings are never both accepted unaware of each other.
Storage errors never leave this package: backends raise `deconflict.errors`.

Space is indexed by integer H3 cell ids (chosen by `deconflict.geometry.cells`),
time by integer microseconds since the Unix epoch, so the same schema serves any
SQL engine. The index is a pre-filter: callers check exact geometry afterwards.

The store also keeps the shared record (`deconflict.ledger`): log entries appended in
the write transaction of the change they record, the RFC 9162 perfect-subtree hashes
each append completes (so any root or proof is O(log n) reads), and signed tree heads.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from deconflict.errors import WriteContention
from deconflict.ledger.rfc9162 import NodeId
from deconflict.ledger.sth import SignedTreeHead
from deconflict.model import (
    Conflict,
    ConflictState,
    Delivery,
    Event,
    Filing,
    FilingType,
    Message,
    Party,
    PartyStatus,
    Webhook,
)
from deconflict.model.alert import TacticalAlert
from deconflict.model.dss import DssReference, PartyAvailability, Subscription
from deconflict.model.signature import PartyKey


@dataclass(frozen=True, slots=True)
class SpaceTimeQuery:
    """Which filings' volumes may come near a region.

    `cells`: H3 cells (at `deconflict.geometry.cells.INDEX_RESOLUTION`) covering the
    region already widened by every buffer that applies; `time_start`/`time_end`
    and the altitude band likewise already widened. Bounds are inclusive.
    """

    cells: Collection[int]
    time_start: datetime
    time_end: datetime
    altitude_lower_m: float
    altitude_upper_m: float


class Reader(Protocol):
    def get_party(self, party_id: str) -> Party | None: ...

    def party_for_token(self, token_hash: bytes) -> Party | None: ...

    def list_parties(self) -> list[Party]: ...

    def party_keys(self, party_id: str) -> list[PartyKey]:
        """Every key the party registered (revoked ones too), oldest first."""
        ...

    def get_party_key(self, key_id: str) -> PartyKey | None: ...

    def get_meta(self, name: str) -> int | None:
        """A named integer the service keeps beside its data (e.g. the digest of the
        agreement last recorded); None when never set."""
        ...

    def get_filing(self, filing_id: str) -> Filing | None:
        """The current version, whatever its state; None if never filed."""
        ...

    def filing_versions(self, filing_id: str) -> list[Filing]:
        """Every version, oldest first."""
        ...

    def filing_entries(self, filing_id: str) -> dict[int, int]:
        """Version -> index of the log entry that recorded it (versions stored before
        schema 12 are absent)."""
        ...

    def find_filings(
        self,
        query: SpaceTimeQuery,
        *,
        live_only: bool = True,
        exclude_owner: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[Filing]:
        """Current versions with at least one volume indexed in one of `query.cells`
        whose time window and altitude band meet the query's (inclusive). Each filing
        once, in no particular order. `live_only` leaves out ended filings.

        A page, ordered by id, when `after` or `limit` is given: `after` keeps the ids
        that sort after it (any string), `limit` the first so many."""
        ...

    def conflicts_of(
        self, filings: Collection[tuple[str, str]], *, state: ConflictState | None = ConflictState.OPEN
    ) -> list[Conflict]:
        """The conflicts with a side among `filings` (pairs of owner and id), each once,
        by detection time then id; `state` keeps one state (None: both)."""
        ...

    def list_filings(
        self,
        *,
        live_only: bool = True,
        owner: str | None = None,
        ftype: FilingType | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[Filing]:
        """Current versions, ordered by id; `ftype` keeps one type. A page: `after` keeps
        the ids that sort after it (any string), `limit` the first so many."""
        ...

    def last_filing_stored(self) -> int:
        """The log's size when a filing (any version) was last stored, -1 if none ever
        was: it changes with every stored version, and only then. Conflicts are opened
        and closed only in the transaction that stores a filing, so it dates them too."""
        ...

    def filings_changed_since(self, log_size: int) -> list[Filing]:
        """Current versions of the filings stored (created, versioned, ended) since a
        snapshot in which `log_size()` was `log_size`, ended ones included, ordered by
        id: every filing a transaction wrote that committed after that snapshot (and,
        in a write transaction, every one it wrote itself), perhaps a few more. A
        filing checked against that snapshot need be checked again only against these."""
        ...

    def list_conflicts(
        self,
        *,
        state: ConflictState | None = None,
        party: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[Conflict]:
        """Conflicts ordered by detection time then id; `party` keeps those where it owns a
        side. A page: `after` (a conflict's id) keeps those that come after that conflict
        in this order, `limit` the first so many. An `after` naming no conflict raises
        `NotFound`."""
        ...

    # -- the log

    def log_size(self) -> int:
        """How many entries the log holds."""
        ...

    def log_entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """``(index, exact bytes)`` of the entries with ``start <= index < end``, in
        index order (pairs, so that a row lost from a damaged store shows as a gap)."""
        ...

    def log_nodes(self, nodes: Collection[NodeId]) -> dict[NodeId, bytes]:
        """Stored hashes of these perfect subtrees; a node not (yet) complete is absent."""
        ...

    def tree_heads(self, since_size: int = 0) -> list[SignedTreeHead]:
        """Signed tree heads of size >= `since_size`, smallest first."""
        ...

    def latest_tree_head(self) -> SignedTreeHead | None:
        """The signed tree head of the largest size, if any."""
        ...

    # -- the hotline

    def get_message(self, message_id: str) -> Message | None: ...

    def list_messages(
        self, party: str, *, box: str = "all", limit: int = 100, before: str | None = None
    ) -> list[Message]:
        """Messages `party` received (`box="in"`), sent (`"out"`) or either (`"all"`),
        newest first (by time sent, then id), at most `limit`; with `before` (a message's
        id), only those that come after that message in this order (older). An unknown
        `before` raises `NotFound`. The work is bounded by `limit`, not by how many
        messages the party has."""
        ...

    def get_deliveries(self, message_id: str) -> list[Delivery]:
        """One per recipient, ordered by recipient."""
        ...

    def deliveries_of(self, message_ids: Collection[str]) -> dict[str, list[Delivery]]:
        """`get_deliveries` of each message, in one read: message id -> its deliveries
        (an unknown id maps to [])."""
        ...

    def due_deliveries(self, at: datetime, limit: int | None = None) -> list[Delivery]:
        """Deliveries whose `next_due` is at or before `at`, soonest first (then by
        message id and recipient); at most `limit` (None: all)."""
        ...

    def events(self, party: str, after_seq: int = 0, limit: int = 1000) -> list[Event]:
        """`party`'s events numbered after `after_seq`, in order, at most `limit`."""
        ...

    def last_event_seq(self, party: str) -> int:
        """The number of `party`'s latest event (0: none yet)."""
        ...

    def party_statuses(self) -> list[PartyStatus]:
        """Heartbeat status of every party that ever beat, ordered by party."""
        ...

    # -- the tactical picture's alerts

    def tactical_alerts(self, *, open_only: bool = False, limit: int = 1000) -> list[TacticalAlert]:
        """Alerts, newest opened first (only those not closed, with `open_only`)."""
        ...

    # -- the F3548 DSS interface (subscriptions, references, availability)

    def get_subscription(self, subscription_id: str) -> Subscription | None: ...

    def find_subscriptions(self, query: SpaceTimeQuery, *, owner: str | None = None) -> list[Subscription]:
        """Subscriptions with a cell in `query.cells` whose time window and altitude
        band meet the query's (inclusive), ordered by id; `owner` keeps one party's."""
        ...

    def subscription_dependents(self, subscription_id: str) -> list[str]:
        """Ids of the live filings whose DSS reference names this subscription, sorted."""
        ...

    def dss_references(self, filing_ids: Collection[str]) -> dict[str, DssReference]:
        """The DSS references of those filings that have one."""
        ...

    def availability(self, party_ids: Collection[str]) -> dict[str, PartyAvailability]:
        """The availability of those parties for which one was ever set."""
        ...

    def webhooks(self) -> list[Webhook]:
        """Every party's webhook, ordered by party."""
        ...


class Writer(Reader, Protocol):
    def savepoint(self) -> AbstractContextManager[None]:
        """A part of the transaction that can fail alone: when the block raises, what it
        wrote is undone (and the exception goes on), what came before it stays. Used by
        `deconflict.store.group` to run several writers' bodies in one transaction."""
        ...

    def add_party(self, party: Party, token_hash: bytes) -> None:
        """Raises AlreadyExists when the id is taken."""
        ...

    def set_party_token(self, party_id: str, token_hash: bytes) -> None:
        """Replace a party's credential (rotation). Raises NotFound."""
        ...

    def set_meta(self, name: str, value: int) -> None:
        """Set a named integer (signed 64-bit)."""
        ...

    def add_party_key(self, key: PartyKey) -> None:
        """Raises NotFound for an unknown party, AlreadyExists when the key id is taken."""
        ...

    def revoke_party_key(self, key_id: str, at: datetime) -> None:
        """Raises NotFound when no such key is active."""
        ...

    def record_signature(self, key_id: str, signature: bytes, at: datetime) -> None:
        """Remember an accepted request signature; raises AlreadyExists if it was
        accepted before (a replayed request)."""
        ...

    def put_filing(self, filing: Filing, cells: Sequence[Collection[int]]) -> None:
        """Store a new filing (version 1) or its next version.

        `cells[i]` are the index cells of `filing.volumes[i]`. A new version must be
        exactly one more than the stored one (raises StaleVersion otherwise); it
        replaces the filing's index entries; the old version stays readable through
        `filing_versions`. Raises AlreadyExists for a version-1 filing whose id is taken.
        The log's size now is kept as the index of the version's own log entry
        (`filing_entries`): the caller appends that entry next, before any other, in
        this transaction.
        """
        ...

    def add_conflicts(self, conflicts: Sequence[Conflict]) -> None: ...

    def close_conflicts(self, filing_id: str, at: datetime) -> list[str]:
        """Close every open conflict that names `filing_id` (at any version): called
        when the filing is superseded or ends. Returns the ids closed, sorted."""
        ...

    def append_log(self, entries: Sequence[bytes]) -> list[int]:
        """Append entries (canonical JSON: valid UTF-8, no NUL) to the log in this
        transaction, with their leaf hashes and every perfect subtree they complete;
        returns their indices. Rolled back with the transaction, like everything else."""
        ...

    def put_subscription(self, subscription: Subscription, cells: Collection[int]) -> None:
        """Store a new subscription (version 1; AlreadyExists when the id is taken) or its
        next version (exactly one more than the stored one, else StaleVersion; NotFound
        when there is none), with `cells` as its space index."""
        ...

    def delete_subscription(self, subscription_id: str) -> None:
        """Raises NotFound."""
        ...

    def bump_notifications(self, subscription_ids: Collection[str]) -> dict[str, int]:
        """Add one to each subscription's notification index; returns the new indices
        (unknown ids are left out)."""
        ...

    def put_dss_reference(self, reference: DssReference) -> None:
        """Create or replace a filing's DSS reference (NotFound if the filing is not stored)."""
        ...

    def set_availability(self, availability: PartyAvailability) -> None:
        """Record a party's availability; its version must be exactly one more than the
        stored one (0 when none is stored), else StaleVersion; NotFound for no such party."""
        ...

    def add_tree_head(self, sth: SignedTreeHead) -> None:
        """Keep a signed tree head. Raises AlreadyExists when one of its size is kept,
        ValueError when it is larger than the log. The signature is not checked here."""
        ...

    def add_message(self, message: Message, deliveries: Sequence[Delivery]) -> None:
        """Keep a message and its deliveries. Raises AlreadyExists (message id taken),
        NotFound (a recipient is no party)."""
        ...

    def add_messages(self, messages: Sequence[tuple[Message, Sequence[Delivery]]]) -> None:
        """Keep many messages with their deliveries, as `add_message` each but in batched
        statements (a scan cycle's thousands of warnings). Every id and recipient is
        checked before anything is written: AlreadyExists (an id taken, or given twice),
        NotFound (a recipient is no party), and then nothing of the call is kept."""
        ...

    def put_delivery(self, delivery: Delivery) -> None:
        """Replace a stored delivery (same message and recipient). Raises NotFound."""
        ...

    def add_events(self, events: Sequence[Event]) -> list[Event]:
        """Keep events, numbering each party's after its last (their `seq` is ignored);
        returns them numbered. Numbers are gapless per party and never reused. Written
        in batched statements: one call for a whole transaction's events."""
        ...

    def put_party_status(self, status: PartyStatus) -> None:
        """Create or replace a party's heartbeat status."""
        ...

    def put_tactical_alert(self, alert: TacticalAlert) -> None:
        """Create an alert, or update its `updated_at`, `closed_at` and figures."""
        ...

    def put_tactical_alerts(self, alerts: Sequence[TacticalAlert]) -> None:
        """`put_tactical_alert` for each, in batched statements (one id at most once)."""
        ...

    def put_webhook(self, hook: Webhook) -> None:
        """Create or replace a party's webhook (`next_attempt` None: at once). Raises
        NotFound when the party is unknown."""
        ...

    def delete_webhook(self, party: str) -> bool:
        """Remove a party's webhook; False when it had none."""
        ...


class Store(Protocol):
    database: str
    """Where the data is (a file path or a server URL): `deconflict.store.open_store`
    opens another handle on the same database with it."""
    local: bool
    """Whether statements run in this process (an embedded database: each one a short
    call) rather than as round trips to a server. `GroupCommit` runs an event loop's
    writes on the loop itself only where they are local."""

    def read(self) -> AbstractContextManager[Reader]:
        """A consistent snapshot for reading."""
        ...

    def write(self) -> AbstractContextManager[Writer]:
        """The serialised write transaction: committed durably when the block ends
        without error, rolled back otherwise."""
        ...

    def close(self) -> None: ...


T = TypeVar("T")


def retrying(store: Store, body: Callable[[Writer], T], *, attempts: int = 5, base_s: float = 0.01) -> T:
    """Run `body` in `store.write()`, again (at most `attempts` times in all, after a
    jittered exponential pause) when the transaction collided with a concurrent one
    (`WriteContention`): the write is the unit that is retried, never part of it."""
    for attempt in range(attempts):
        try:
            with store.write() as w:
                return body(w)
        except WriteContention:
            if attempt + 1 == attempts:
                raise
            time.sleep(random.uniform(0, base_s * 2**attempt))
    raise AssertionError("unreachable")
