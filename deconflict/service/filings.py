"""Filing use cases: submit, update, change state, withdraw, read, query.

The service owns the transaction: the strategic check of a filing against its
neighbours and the write that stores it happen inside one `Store.write()`, so two
conflicting filings are never both accepted unaware of each other. Concurrent writes
are batched into one transaction (`store.group`: each checked against those before it,
a refused one undone alone, one durable commit for all). Notice is
measured on the server's clock at receipt, before waiting for the write lock.

A new filing is first checked against a read snapshot, before the write lock
(`_look`: finding its neighbours and measuring them is most of a filing's work);
inside the lock it is checked again only against the filings stored since that
snapshot (`_since`, by `Reader.filings_changed_since`). The findings are exactly those
a check of the whole store inside the lock would give, while the serialised part of a
filing shrinks to the write: processes (`serve --workers`) check in parallel.

Every accepted write appends its entries to the shared record (`service.ledger`) in
that same transaction: the filing's version first (its receipt), then each conflict
it closed, then each it opened, then the hotline's automatic messages
(`service.hotline`: NOTICE_OF_ACTIVITY, ACTIVITY_ACTIVATED/ENDED, a CONFLICT_WARNING to
both owners of each conflict) with their events on each party's stream; the entries'
time is the time of receipt. Filings of a party the hotline holds DOWN block no one
when the agreement says `down_filings = "lowest_priority"`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from deconflict.clock import Clock
from deconflict.detect.strategic import PreparedCache, detect
from deconflict.errors import (
    ConflictRefused,
    FieldError,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    LateNotice,
    MissingKey,
    NotFound,
    PartyDown,
    StaleVersion,
)
from deconflict.geometry.cells import search_cells
from deconflict.geometry.outline import validate_outline
from deconflict.ids import new_id
from deconflict.ledger.entries import Kind
from deconflict.model import (
    Agreement,
    Conflict,
    ConflictState,
    Filing,
    FilingType,
    Finding,
    Party,
    Role,
    State,
    Volume4D,
)
from deconflict.model.agreement import ConflictAction, DownAction, LateAction
from deconflict.model.dss import Availability, Subscriber
from deconflict.model.filing import INITIAL_STATES, make_ovn, transitions
from deconflict.model.signature import SignedRequest
from deconflict.service.covers import Cover, Covers
from deconflict.service.hotline import Batch, Composed, Hotline
from deconflict.service.ledger import (
    Ledger,
    Receipt,
    conflict_closed_body,
    conflict_opened_body,
    filing_body,
)
from deconflict.service.signatures import admit, signed_member
from deconflict.store.base import Reader, SpaceTimeQuery, Store, Writer
from deconflict.store.group import GroupCommit


@dataclass(frozen=True, slots=True)
class Draft:
    """What a party asks to file: the wire format is parsed into this at the edge."""

    type: FilingType
    kind: str
    volumes: tuple[Volume4D, ...]
    state: State = State.ACCEPTED


@dataclass(frozen=True, slots=True)
class Opened:
    """The conflicts a version opens on its findings, with their log entries and
    warnings: made before the write lock (`Filings._opened`), used inside it when the
    findings there are the same."""

    findings: tuple[Finding, ...]
    conflicts: tuple[Conflict, ...]
    entries: tuple[bytes, ...]
    warnings: tuple[Composed, ...] | None


@dataclass(frozen=True, slots=True)
class Seen:
    """A filing's check against a read snapshot (`Filings._look`)."""

    log_size: int
    """The snapshot's `Reader.log_size()`: where to look for what changed since."""
    opened: Opened
    """What the findings then would open (`opened.findings`: those findings)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    filing: Filing
    conflicts: tuple[Conflict, ...]
    receipt: Receipt
    """Where the filing version's entry sits in the log."""
    subscribers: tuple[Subscriber, ...] = ()
    """Subscriptions whose notification index this write bumped, by where to notify them."""


#: Called inside a write's transaction once the filing version is stored:
#: ``(writer, new version, the version it superseded or None)``.
WriteHook = Callable[[Writer, Filing, Filing | None], None]
#: Bumps the notification index of each subscription the change touches, in the same
#: transaction, and says whom to notify (`service.subscriptions`).
Notifier = Callable[[Writer, Filing, Filing | None], tuple[Subscriber, ...]]

#: States in which a version may be filed without a key and despite conflicts: the
#: aircraft is off its plan and the filing follows what is flown (ASTM F3548-21).
KEYLESS_STATES = frozenset({State.NONCONFORMING, State.CONTINGENT})
#: Conflicts with filings of these types need the other version in the key (native rule).
ALL_TYPES = frozenset(FilingType)
#: States a party marked Down may not file, keep or withdraw (F3548 USS availability).
_HELD_BY_DOWN = frozenset({State.ACCEPTED, State.ACTIVATED})
#: An area query's page reads the index's candidates this many at a time, at least
_QUERY_BATCH = 256
#: How far (m) a query's area may reach from its centre. Its cells are then found in
#: about 0.1 s (a 5,000 km circle's 300,000 cells took 18 s), and the cover's margin
#: (0.5 % of the reach) stays wider than the difference between the area's own plane and
#: the plane each candidate is measured in (about 4 km at 1,400 km; tests/service).
QUERY_MAX_REACH_M = 1_500_000.0


def finding_summary(f: Finding) -> dict[str, object]:
    """A finding as plain values (for errors that list conflicts): the other filing's
    version, then when and how close."""
    found = f.as_dict()
    return {**found.pop("b"), **{k: v for k, v in found.items() if k not in ("a", "separation")}}


class Filings:
    def __init__(
        self,
        store: Store,
        agreement: Agreement,
        clock: Clock,
        ledger: Ledger | None = None,
        hotline: Hotline | None = None,
        notifier: Notifier | None = None,
        covers: Covers | None = None,
    ) -> None:
        self.store = store
        self.agreement = agreement
        self.clock = clock
        #: sends the automatic messages; without one (tools, benchmarks) none are sent
        self.hotline = hotline
        self.notifier = notifier
        # without a ledger of its own (tools, benchmarks) it still records every change
        self.ledger = ledger if ledger is not None else Ledger.ephemeral(store, clock)
        # Per-version arrays of neighbours, reused across filings (thread-safe: looks
        # before the write lock run on many threads).
        self._prepared = PreparedCache()
        if covers is not None and covers.reach_m != agreement.max_buffers.horizontal_m:
            raise ValueError("the covers' reach must be the agreement's largest horizontal buffer")
        self._covers = covers if covers is not None else Covers(agreement.max_buffers.horizontal_m)
        #: concurrent filings share one write transaction and one durable commit
        self._writes = GroupCommit(store)

    # -- validation -------------------------------------------------------------

    def header_errors(self, filing_type: FilingType, kind: str, state: State) -> list[FieldError]:
        """The rules on a draft's kind and initial state (also used by the edge to report
        them beside volume errors it found while parsing)."""
        errors: list[FieldError] = []
        if self.agreement.kind(kind) is None:
            errors.append(
                FieldError(
                    "kind", f"unknown kind {kind!r} (the agreement has: {', '.join(self.agreement.kinds)})"
                )
            )
        if state not in INITIAL_STATES[filing_type]:
            allowed = ", ".join(sorted(s.value for s in INITIAL_STATES[filing_type]))
            errors.append(FieldError("state", f"a new {filing_type.value} must be in state {allowed}"))
        return errors

    def _validate(self, draft: Draft, now: datetime) -> None:
        """Every rule a draft must meet, independent of what is stored; all errors at once."""
        errors = self.header_errors(draft.type, draft.kind, draft.state)
        if not draft.volumes:
            errors.append(FieldError("volumes", "needs at least one volume"))
        if len(draft.volumes) > self.agreement.max_volumes_per_filing:
            errors.append(
                FieldError(
                    "volumes",
                    f"at most {self.agreement.max_volumes_per_filing} volumes per filing (agreement cap)",
                )
            )
        for i, v in enumerate(draft.volumes):
            where = f"volumes[{i}]"
            try:
                validate_outline(v.outline, max_area_m2=self.agreement.max_volume_area_m2)
            except InvalidInput as exc:
                errors += exc.prefixed(where).errors
            if v.duration_s > self.agreement.max_volume_duration_s:
                errors.append(
                    FieldError(
                        f"{where}.properties.time_end",
                        f"duration {v.duration_s:.0f} s exceeds the agreement's cap of "
                        f"{self.agreement.max_volume_duration_s:.0f} s",
                    )
                )
            if v.time_end <= now:
                errors.append(FieldError(f"{where}.properties.time_end", "must be in the future"))
        if errors:
            raise InvalidInput(errors)

    # -- detection --------------------------------------------------------------

    def _neighbours(self, r: Reader, filing: Filing, covers: Sequence[Cover]) -> list[Filing]:
        reach = self.agreement.max_buffers
        seen: dict[str, Filing] = {}
        for v, cover in zip(filing.volumes, covers, strict=True):
            query = SpaceTimeQuery(
                cells=cover.search,
                time_start=v.time_start - timedelta(seconds=reach.time_s),
                time_end=v.time_end + timedelta(seconds=reach.time_s),
                altitude_lower_m=v.altitude_lower_m - reach.vertical_m,
                altitude_upper_m=v.altitude_upper_m + reach.vertical_m,
            )
            for other in r.find_filings(query, live_only=True, exclude_owner=filing.owner):
                seen[other.id] = other
        return [seen[k] for k in sorted(seen)]

    def candidates(self, filing: Filing) -> list[Filing]:
        """Other parties' live filings that the index pre-filter puts near `filing`
        (a read; exact geometry not yet checked)."""
        covers = self._covers.of(filing.volumes)
        with self.store.read() as r:
            return self._neighbours(r, filing, covers)

    def preview(self, filing: Filing) -> list[Finding]:
        """What `filing` would conflict with now, without filing it: how a client
        builds its key before it submits."""
        return detect(filing, self.candidates(filing), self.agreement) if filing.live else []

    def _findings(self, r: Reader, filing: Filing, covers: Sequence[Cover]) -> list[Finding]:
        if not filing.live:
            return []
        return detect(filing, self._neighbours(r, filing, covers), self.agreement, cache=self._prepared)

    def _look(self, filing: Filing, covers: Sequence[Cover], now: datetime) -> Seen:
        """Check `filing` against a read snapshot (outside the write lock), and make
        what its findings would open."""
        with self.store.read() as r:
            size, findings = r.log_size(), self._findings(r, filing, covers)
        return Seen(size, self._opened(findings, now))

    def _opened(self, findings: Sequence[Finding], now: datetime) -> Opened:
        """New conflicts on `findings`, their CONFLICT_OPENED entries and warnings (pure)."""
        conflicts = tuple(Conflict(new_id(), f, ConflictState.OPEN, now) for f in findings)
        entries = tuple(
            self.ledger.entry(Kind.CONFLICT_OPENED, conflict_opened_body(c), now) for c in conflicts
        )
        warnings = tuple(self.hotline.conflict_warnings(conflicts, now)) if self.hotline else None
        return Opened(tuple(findings), conflicts, entries, warnings)

    def _since(self, w: Writer, filing: Filing, seen: Seen) -> list[Finding]:
        """Inside the write lock: `seen`'s findings, but against every filing stored
        since its snapshot checked afresh (a new one, a new version, an ended one), so
        the result is what a check against `w`'s whole state gives, in the same order."""
        changed = w.filings_changed_since(seen.log_size)
        if not changed or not filing.live:
            return list(seen.opened.findings)
        ids = {c.id for c in changed}
        kept = [f for f in seen.opened.findings if f.b.id not in ids]
        fresh = detect(filing, changed, self.agreement, cache=self._prepared)
        return sorted([*kept, *fresh], key=lambda f: f.b.id)

    def _enforce(
        self,
        r: Reader,
        filing: Filing,
        findings: Sequence[Finding],
        key: Collection[str],
        *,
        key_types: Collection[FilingType] = ALL_TYPES,
    ) -> None:
        """Proof of awareness (F3548 key), then the agreement's block/warn rule.

        As ASTM F3548-21 gives them: a version in a keyless state (nonconforming,
        contingent) needs neither; an accepted (not activated) intent of a party that is
        DOWN (see `_down`) neither needs a key nor blocks, and when the agreement treats a
        DOWN party's filings as lowest priority (`hotline.down_filings`), none of them
        blocks. Only conflicts with filings of `key_types` need a key (an F3548 manager
        that does not process constraints leaves them out; an F3548 constraint needs
        none); the agreement's block rule applies to all."""
        if filing.state in KEYLESS_STATES or not findings:
            return
        down = self._down(r, {f.b.owner for f in findings})
        if down:
            stale: dict[str, bool] = {}
            for f in findings:
                if f.b.owner in down and f.b.id not in stale:
                    other = r.get_filing(f.b.id)
                    stale[f.b.id] = (
                        other is not None
                        and other.type is FilingType.INTENT
                        and other.state is State.ACCEPTED
                    )
            findings = [f for f in findings if not stale.get(f.b.id, False)]
        missing = [finding_summary(f) for f in findings if f.b.ovn not in key and f.b.type in key_types]
        if missing:
            raise MissingKey(missing)
        if self.agreement.conflict_action is ConflictAction.BLOCK and findings:
            lowest = down if self.agreement.hotline.down_filings is DownAction.LOWEST_PRIORITY else set()
            blocking = [
                f
                for f in findings
                if self.agreement.kinds[f.b.kind].priority >= filing.priority and f.b.owner not in lowest
            ]
            if blocking:
                raise ConflictRefused([finding_summary(f) for f in blocking])

    def _down(self, r: Reader, owners: Collection[str]) -> set[str]:
        """Which of `owners` are DOWN for everyone: marked Down by availability
        arbitration (F3548 `uss_availability`), or silent past the agreed heartbeat period
        (the hotline). The two are one state to the rules above."""
        down = {pid for pid, a in r.availability(owners).items() if a.availability is Availability.DOWN}
        if self.hotline is not None:
            down |= self.hotline.down_parties(r) & set(owners)
        return down

    @staticmethod
    def _check_up(r: Reader, caller: Party, filing_type: FilingType, *states: State) -> None:
        """A party marked Down may not file an accepted or activated intent version, nor
        withdraw one (F3548 USS availability: `states` are the states the write leaves, or
        ends). The standard restricts operational intents only; constraints are not held."""
        if filing_type is not FilingType.INTENT or not _HELD_BY_DOWN.intersection(states):
            return
        a = r.availability([caller.id]).get(caller.id)
        if a is not None and a.availability is Availability.DOWN:
            raise PartyDown(caller.id)

    def _entry(
        self,
        kind: Kind,
        filing: Filing,
        supersedes: Filing | None,
        now: datetime,
        evidence: SignedRequest | None,
    ) -> bytes:
        body = {**filing_body(filing, supersedes.ovn if supersedes else None), **signed_member(evidence)}
        return self.ledger.entry(kind, body, now)

    def _store(
        self,
        w: Writer,
        filing: Filing,
        covers: Sequence[Cover],
        findings: Sequence[Finding],
        now: datetime,
        entry: bytes,
        previous: Filing | None = None,
        within: WriteHook | None = None,
        opened: Opened | None = None,
    ) -> Outcome:
        """Store `filing` and its conflicts, and append `entry` (the filing's) and one
        entry per conflict closed and opened to the log, all in `w`'s transaction; then
        `within` and the notifier run in that same transaction. `opened`: what was made
        before the lock for the findings then, used if `findings` are still those."""
        w.put_filing(filing, [c.own for c in covers])
        closed = w.close_conflicts(filing.id, now) if filing.version > 1 else []
        if opened is None or opened.findings != tuple(findings):
            opened = self._opened(findings, now)
        conflicts = opened.conflicts
        if conflicts:
            w.add_conflicts(conflicts)
        entries = [entry]
        entries += [
            self.ledger.entry(Kind.CONFLICT_CLOSED, conflict_closed_body(c, filing), now) for c in closed
        ]
        entries += opened.entries
        if self.hotline is not None:
            batch = Batch()
            self.hotline.on_filing(w, batch, filing, previous, opened.warnings or (), now)
            if batch.events:
                w.add_events(batch.events)
            entries += batch.entries
        receipts = self.ledger.append(w, entries)
        if within is not None:
            within(w, filing, previous)
        subscribers = self.notifier(w, filing, previous) if self.notifier is not None else ()
        return Outcome(filing, conflicts, receipts[0], subscribers)

    # -- notice -----------------------------------------------------------------

    def _notice(
        self, kind: str, volumes: Sequence[Volume4D], previous: Filing | None, now: datetime
    ) -> tuple[float, bool]:
        """Notice of this version: from receipt to the start of its earliest new or
        changed volume; a version that changes no volume keeps the last notice."""
        old = set(previous.volumes) if previous is not None else set()
        changed = [v for v in volumes if v not in old]
        if not changed and previous is not None:
            return previous.notice_s, previous.late
        notice_s = (min(v.time_start for v in changed) - now).total_seconds()
        late = notice_s < self.agreement.kinds[kind].min_notice_s
        if late and self.agreement.late_notice_action is LateAction.REJECT:
            raise LateNotice(kind, notice_s, self.agreement.kinds[kind].min_notice_s)
        return notice_s, late

    # -- use cases --------------------------------------------------------------

    @staticmethod
    def _may_file(caller: Party) -> None:
        if caller.role is not Role.OPERATOR:
            raise Forbidden(f"a party with role {caller.role.value!r} files nothing")

    def submit(
        self,
        caller: Party,
        draft: Draft,
        key: Collection[str] = (),
        *,
        filing_id: str | None = None,
        evidence: SignedRequest | None = None,
        key_types: Collection[FilingType] = ALL_TYPES,
        within: WriteHook | None = None,
    ) -> Outcome:
        """File a new intent or constraint. `evidence` is the party's signature of the
        request, when it signed it (see `service.signatures`)."""
        write = self._submission(
            caller, draft, key, filing_id=filing_id, evidence=evidence, key_types=key_types, within=within
        )
        return self._committed(self._writes.run(write))

    async def submit_async(
        self,
        caller: Party,
        draft: Draft,
        key: Collection[str] = (),
        *,
        evidence: SignedRequest | None = None,
    ) -> Outcome:
        """`submit` on an event loop: the work before the write (checks, and the look
        at a read snapshot) runs here, then the write is queued to the group commit and
        awaited, holding no thread. The look blocks the loop for its reads (about 1 ms
        at 1M filings on SQLite, a few round trips on PostgreSQL): measured, a hop to a
        worker thread instead costs more (8 against 6 ms of CPU per filing through
        HTTP at 1M filings: the threads contend for the interpreter)."""
        write = self._submission(caller, draft, key, evidence=evidence)
        return self._committed(await self._writes.run_async(write))

    def _submission(
        self,
        caller: Party,
        draft: Draft,
        key: Collection[str],
        *,
        filing_id: str | None = None,
        evidence: SignedRequest | None = None,
        key_types: Collection[FilingType] = ALL_TYPES,
        within: WriteHook | None = None,
    ) -> Callable[[Writer], Outcome]:
        """Everything of a submission up to the write (validated, covers computed), and
        the write itself, to run in the store's write transaction."""
        self._may_file(caller)
        now = self.clock.now()
        self._validate(draft, now)
        notice_s, late = self._notice(draft.kind, draft.volumes, None, now)
        fid = filing_id or str(uuid.uuid4())  # v4: ASTM F3548 names entities by UUIDv4
        filing = Filing(
            id=fid,
            type=draft.type,
            owner=caller.id,
            kind=draft.kind,
            volumes=draft.volumes,
            state=draft.state,
            priority=self.agreement.kinds[draft.kind].priority,
            version=1,
            ovn=make_ovn(fid, 1, now),
            created_at=now,
            updated_at=now,
            notice_s=notice_s,
            late=late,
        )
        covers = self._covers.of(filing.volumes)  # pure and slow: outside the write lock
        entry = self._entry(Kind.FILING_CREATED, filing, None, now, evidence)  # likewise
        seen = self._look(filing, covers, now)  # likewise: re-checked inside for what changed

        def write(w: Writer) -> Outcome:
            admit(w, caller, evidence, now)
            self._check_up(w, caller, filing.type, filing.state)
            findings = self._since(w, filing, seen)
            self._enforce(w, filing, findings, set(key), key_types=key_types)
            return self._store(w, filing, covers, findings, now, entry, None, within, seen.opened)

        return write

    def _committed(self, out: Outcome) -> Outcome:
        """After the commit: wake the stream readers."""
        if self.hotline is not None:
            self.hotline.bell.ring()
        return out

    def _current(self, r: Reader, caller: Party, filing_id: str, ftype: FilingType, ovn: str) -> Filing:
        current = r.get_filing(filing_id)
        if current is None or current.type is not ftype:
            raise NotFound(ftype.value, filing_id)
        if current.owner != caller.id:
            raise Forbidden(f"{ftype.value} {filing_id!r} belongs to {current.owner!r}")
        if current.ovn != ovn:
            raise StaleVersion(filing_id, ovn, current.ovn)
        return current

    def update(
        self,
        caller: Party,
        filing_id: str,
        ovn: str,
        draft: Draft,
        key: Collection[str] = (),
        *,
        evidence: SignedRequest | None = None,
        key_types: Collection[FilingType] = ALL_TYPES,
        within: WriteHook | None = None,
    ) -> Outcome:
        """Replace a filing's kind, volumes (and state) with a new version; `ovn` must be current."""
        self._may_file(caller)
        now = self.clock.now()
        self._validate(
            replace(draft, state=State.ACCEPTED) if draft.type is FilingType.INTENT else draft, now
        )
        covers = self._covers.of(draft.volumes)

        def write(w: Writer) -> Outcome:
            current = self._current(w, caller, filing_id, draft.type, ovn)
            admit(w, caller, evidence, now)
            self._check_up(w, caller, draft.type, draft.state)
            if (
                draft.state is not current.state
                and draft.state not in transitions(current.type)[current.state]
            ):
                raise InvalidTransition(filing_id, current.state.value, draft.state.value)
            if current.state is State.ENDED:
                raise InvalidTransition(filing_id, current.state.value, draft.state.value)
            notice_s, late = self._notice(draft.kind, draft.volumes, current, now)
            filing = replace(
                current,
                kind=draft.kind,
                volumes=draft.volumes,
                state=draft.state,
                priority=self.agreement.kinds[draft.kind].priority,
                version=current.version + 1,
                ovn=make_ovn(filing_id, current.version + 1, now),
                updated_at=now,
                notice_s=notice_s,
                late=late,
            )
            findings = self._findings(w, filing, covers)
            self._enforce(w, filing, findings, set(key), key_types=key_types)
            entry = self._entry(Kind.FILING_VERSIONED, filing, current, now, evidence)
            return self._store(w, filing, covers, findings, now, entry, current, within)

        return self._committed(self._writes.run(write))

    def transition(
        self,
        caller: Party,
        filing_type: FilingType,
        filing_id: str,
        ovn: str,
        state: State,
        *,
        evidence: SignedRequest | None = None,
    ) -> Outcome:
        """Change state only (activate, end, ...): a new version with the same volumes.

        Conflicts are re-recorded against the new version, but neither the key nor the
        block rule stops a state change: a party must always be able to say what is
        happening, and ending must always be possible."""
        return self._change_state(caller, filing_type, filing_id, ovn, state, Kind.STATE_CHANGED, evidence)

    def withdraw(
        self,
        caller: Party,
        filing_type: FilingType,
        filing_id: str,
        ovn: str,
        *,
        evidence: SignedRequest | None = None,
        within: WriteHook | None = None,
    ) -> Outcome:
        """End a filing, recorded as a withdrawal (a `transition` to ended, as a state change).
        A party marked Down may not withdraw an accepted or activated filing."""
        return self._change_state(
            caller, filing_type, filing_id, ovn, State.ENDED, Kind.FILING_WITHDRAWN, evidence, within
        )

    def _change_state(
        self,
        caller: Party,
        filing_type: FilingType,
        filing_id: str,
        ovn: str,
        state: State,
        kind: Kind,
        evidence: SignedRequest | None,
        within: WriteHook | None = None,
    ) -> Outcome:
        self._may_file(caller)
        now = self.clock.now()

        def write(w: Writer) -> Outcome:
            current = self._current(w, caller, filing_id, filing_type, ovn)
            admit(w, caller, evidence, now)
            if kind is Kind.FILING_WITHDRAWN:
                self._check_up(w, caller, current.type, current.state)
            if state not in transitions(current.type)[current.state]:
                raise InvalidTransition(filing_id, current.state.value, state.value)
            filing = replace(
                current,
                state=state,
                version=current.version + 1,
                ovn=make_ovn(filing_id, current.version + 1, now),
                updated_at=now,
            )
            covers = self._covers.of(filing.volumes)  # cached since it was filed, as a rule
            entry = self._entry(kind, filing, current, now, evidence)
            findings = self._findings(w, filing, covers)
            return self._store(w, filing, covers, findings, now, entry, current, within)

        return self._committed(self._writes.run(write))

    # -- reads ------------------------------------------------------------------

    def get(self, filing_type: FilingType, filing_id: str) -> Filing:
        with self.store.read() as r:
            filing = r.get_filing(filing_id)
        if filing is None or filing.type is not filing_type:
            raise NotFound(filing_type.value, filing_id)
        return filing

    def versions(self, filing_type: FilingType, filing_id: str) -> list[Filing]:
        with self.store.read() as r:
            versions = r.filing_versions(filing_id)
        if not versions or versions[0].type is not filing_type:
            raise NotFound(filing_type.value, filing_id)
        return versions

    def versions_and_entries(
        self, filing_type: FilingType, filing_id: str
    ) -> tuple[list[Filing], dict[int, int]]:
        """Every version, and the index of the log entry that recorded each (`filing_entries`)."""
        with self.store.read() as r:  # one snapshot (versions' read nests in it)
            return self.versions(filing_type, filing_id), r.filing_entries(filing_id)

    def current(
        self,
        *,
        owner: str | None = None,
        live_only: bool = True,
        ftype: FilingType | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[Filing]:
        """Current versions ordered by id; a page with `after` (an id) and `limit`."""
        with self.store.read() as r:
            return r.list_filings(live_only=live_only, owner=owner, ftype=ftype, after=after, limit=limit)

    def query(
        self,
        area: Volume4D,
        *,
        live_only: bool = True,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[Filing]:
        """Filings with a volume that meets `area` (outline, altitude band and time window),
        ordered by id; a page with `after` (the id the last page ended with: the ids that
        sort after it) and `limit`. Field paths in errors are relative to the area's Feature."""
        validate_outline(area.outline, max_area_m2=None, max_reach_m=QUERY_MAX_REACH_M)
        probe = Filing(
            id="",
            type=FilingType.INTENT,
            owner="",
            kind=next(iter(self.agreement.kinds)),
            volumes=(area,),
            state=State.ACCEPTED,
            priority=0,
            version=0,
            ovn="",
            created_at=area.time_start,
            updated_at=area.time_start,
            notice_s=0.0,
            late=False,
        )
        query = SpaceTimeQuery(
            cells=search_cells(area.outline, 0.0),
            time_start=area.time_start,
            time_end=area.time_end,
            altitude_lower_m=area.altitude_lower_m,
            altitude_upper_m=area.altitude_upper_m,
        )
        exact = self.agreement.with_buffers(0.0, 0.0, 0.0)

        def meeting(candidates: list[Filing]) -> list[Filing]:
            hits = {f.b.id for f in detect(probe, candidates, exact)}
            return sorted((c for c in candidates if c.id in hits), key=lambda c: c.id)

        with self.store.read() as r:
            if limit is None:
                return meeting(r.find_filings(query, live_only=live_only, after=after))
            # The index's candidates by id, a batch at a time, until the page is full:
            # only a batch is decoded and measured, however many the area holds.
            batch = max(limit, _QUERY_BATCH)
            found: list[Filing] = []
            while len(found) < limit:
                candidates = r.find_filings(query, live_only=live_only, after=after, limit=batch)
                found += meeting(candidates)
                if len(candidates) < batch:
                    break
                after = candidates[-1].id
            return found[:limit]

    def conflicts_of(
        self, filings: Sequence[Filing], state: ConflictState | None = ConflictState.OPEN
    ) -> list[Conflict]:
        """The conflicts with a side among `filings`, by detection time then id."""
        with self.store.read() as r:
            return r.conflicts_of([(f.owner, f.id) for f in filings], state=state)

    def conflicts(
        self,
        *,
        state: ConflictState | None = None,
        party: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[Conflict]:
        """Conflicts ordered by detection time then id; a page with `after` (the id of the
        conflict the last page ended with) and `limit`."""
        with self.store.read() as r:
            try:
                return r.list_conflicts(state=state, party=party, after=after, limit=limit)
            except NotFound:
                raise InvalidInput.one("after", "names no conflict") from None
