"""The ASTM F3548-21 DSS use cases, over the one domain: an operational intent
reference is an intent, a constraint reference a constraint, written through
`Filings` (same checks, same conflicts, same shared-record entries) with the
reference's own data (where its details are served, its subscription) kept beside it
in the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from deconflict.errors import InvalidInput
from deconflict.model import Filing, FilingType, Party, State, Volume4D
from deconflict.model.dss import (
    NULL_SUBSCRIPTION_ID,
    Availability,
    DssReference,
    PartyAvailability,
    Subscription,
)
from deconflict.service.availability import Availabilities
from deconflict.service.filings import Draft, Filings, Outcome
from deconflict.service.subscriptions import Subscriptions
from deconflict.store.base import Writer

#: States after which an intent must have a subscription (F3548: activated and off-nominal).
_NEEDS_SUBSCRIPTION = frozenset({State.ACTIVATED, State.NONCONFORMING, State.CONTINGENT})


@dataclass(frozen=True, slots=True)
class ImplicitSubscription:
    uss_base_url: str
    notify_for_constraints: bool = False


@dataclass(frozen=True, slots=True)
class ReferenceDraft:
    """An F3548 PUT of an operational intent or constraint reference, parsed."""

    volumes: tuple[Volume4D, ...]
    uss_base_url: str
    state: State = State.ACCEPTED
    key: tuple[str, ...] = ()
    subscription_id: str | None = None
    new_subscription: ImplicitSubscription | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """An accepted write: the domain's outcome, with the version it replaced (a deletion
    answers with the reference as it stood) and the reference data."""

    outcome: Outcome
    previous: Filing | None
    reference: DssReference | None


@dataclass(frozen=True, slots=True)
class Referenced:
    """A filing as an F3548 reference: its DSS data (None for a native filing) and
    its manager's availability."""

    filing: Filing
    reference: DssReference | None
    availability: PartyAvailability


class Dss:
    def __init__(
        self,
        filings: Filings,
        subscriptions: Subscriptions,
        availabilities: Availabilities,
        *,
        intent_kind: str = "uas_flight",
        constraint_kind: str = "reservation",
    ) -> None:
        self.filings = filings
        self.subscriptions = subscriptions
        self.availabilities = availabilities
        self.kinds = {FilingType.INTENT: intent_kind, FilingType.CONSTRAINT: constraint_kind}

    # -- reads

    def referenced(self, filings: Sequence[Filing]) -> list[Referenced]:
        with self.filings.store.read() as r:
            refs = r.dss_references([f.id for f in filings])
            avail = r.availability({f.owner for f in filings})
        unknown = Availability.UNKNOWN
        return [
            Referenced(f, refs.get(f.id), avail.get(f.owner) or PartyAvailability(f.owner, unknown, 0, None))
            for f in filings
        ]

    def get(self, ftype: FilingType, filing_id: str) -> Referenced:
        return self.referenced([self.filings.get(ftype, filing_id)])[0]

    def query(self, ftype: FilingType, area: Volume4D) -> list[Referenced]:
        return self.referenced([f for f in self.filings.query(area) if f.type is ftype])

    def current(self, ftype: FilingType, ids: Collection[str]) -> list[Referenced]:
        """The current versions of these filings (those still stored), in the order given."""
        found: list[Filing] = []
        for fid in dict.fromkeys(ids):
            with self.filings.store.read() as r:
                f = r.get_filing(fid)
            if f is not None and f.type is ftype:
                found.append(f)
        return self.referenced(found)

    # -- writes

    def _subscription_for(self, caller: Party, draft: ReferenceDraft) -> Subscription | None:
        if draft.subscription_id is None:
            return None
        sub = self.subscriptions.get(caller, draft.subscription_id)
        if not sub.notify_for_intents:
            raise InvalidInput.one(
                "subscription_id", "the subscription must provide notifications for operational intents"
            )
        return sub

    def _key_types(
        self, sub: Subscription | None, draft: ReferenceDraft, current: DssReference | None
    ) -> set[FilingType]:
        """F3548: constraints need a key only from a manager processing constraints, as
        the intent's subscription (explicit, new or kept) says."""
        notify_constraints = False
        if sub is not None:
            notify_constraints = sub.notify_for_constraints
        elif draft.new_subscription is not None:
            notify_constraints = draft.new_subscription.notify_for_constraints
        elif current is not None:
            with self.filings.store.read() as r:
                old = r.get_subscription(current.subscription_id)
            notify_constraints = old is not None and old.notify_for_constraints
        return {FilingType.INTENT, FilingType.CONSTRAINT} if notify_constraints else {FilingType.INTENT}

    def put(
        self, caller: Party, ftype: FilingType, filing_id: str, ovn: str | None, draft: ReferenceDraft
    ) -> Change:
        """Create (`ovn` None) or update an operational intent or constraint reference."""
        current_ref: DssReference | None = None
        kind = self.kinds[ftype]
        if ovn is not None:
            existing = self.filings.get(ftype, filing_id)
            kind = existing.kind  # a native filing keeps its kind
            with self.filings.store.read() as r:
                current_ref = r.dss_references([filing_id]).get(filing_id)
        if ftype is FilingType.CONSTRAINT:
            key_types: set[FilingType] = set()  # F3548 constraints carry no key
            sub = None
        else:
            sub = self._subscription_for(caller, draft)
            key_types = self._key_types(sub, draft, current_ref)
        result: dict[str, DssReference] = {}
        replaced: list[Filing] = []

        def within(w: Writer, filing: Filing, previous: Filing | None) -> None:
            if previous is not None:
                replaced.append(previous)
            sid = NULL_SUBSCRIPTION_ID
            old_sid = current_ref.subscription_id if current_ref is not None else None
            if ftype is FilingType.INTENT:
                if sub is not None:
                    if not self.subscriptions.covers(sub, filing):
                        raise InvalidInput.one(
                            "subscription_id", "the subscription must cover the operational intent's extents"
                        )
                    sid = sub.id
                elif draft.new_subscription is not None:
                    new = draft.new_subscription
                    made = self.subscriptions.put_implicit(
                        w, caller, filing, new.uss_base_url, new.notify_for_constraints
                    )
                    sid = made.id
                elif old_sid is not None and old_sid != NULL_SUBSCRIPTION_ID:
                    # none named: the intent keeps its subscription; an implicit one follows it
                    kept = w.get_subscription(old_sid)
                    if kept is not None:
                        if kept.implicit:
                            self.subscriptions.reshape_implicit(w, kept, filing)
                        sid = old_sid
                if sid == NULL_SUBSCRIPTION_ID and filing.state in _NEEDS_SUBSCRIPTION:
                    raise InvalidInput.one(
                        "subscription_id",
                        f"an operational intent in state {filing.state.value} needs subscription_id "
                        "or new_subscription",
                    )
            ref = DssReference(filing.id, draft.uss_base_url, sid)
            w.put_dss_reference(ref)
            if old_sid is not None and old_sid != sid:
                self.subscriptions.drop_if_orphaned(w, old_sid)
            result["ref"] = ref

        fdraft = Draft(ftype, kind, draft.volumes, draft.state)
        if ovn is None:
            outcome = self.filings.submit(
                caller, fdraft, draft.key, filing_id=filing_id, key_types=key_types, within=within
            )
        else:
            outcome = self.filings.update(
                caller, filing_id, ovn, fdraft, draft.key, key_types=key_types, within=within
            )
        return Change(outcome, replaced[0] if replaced else None, result.get("ref"))

    def delete(self, caller: Party, ftype: FilingType, filing_id: str, ovn: str) -> Change:
        """Withdraw a reference; its implicit subscription goes when nothing else needs it."""
        found: dict[str, DssReference | None] = {}
        replaced: list[Filing] = []

        def within(w: Writer, filing: Filing, previous: Filing | None) -> None:
            if previous is not None:
                replaced.append(previous)
            ref = w.dss_references([filing.id]).get(filing.id)
            found["ref"] = ref
            if ref is not None and ref.subscription_id != NULL_SUBSCRIPTION_ID:
                self.subscriptions.drop_if_orphaned(w, ref.subscription_id)

        outcome = self.filings.withdraw(caller, ftype, filing_id, ovn, within=within)
        return Change(outcome, replaced[0] if replaced else None, found.get("ref"))
