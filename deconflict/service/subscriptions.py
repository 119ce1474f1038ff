"""Subscriptions (ASTM F3548-21): areas a party is notified about.

Every accepted write of a filing, through either API, bumps the notification index of
each subscription its old or new volumes touch (by index cells, time window and
altitude band, as the standard's DSS does: a subscriber may be told of a change just
outside its area), in the write's own transaction, and the write's outcome lists them
by the URL to notify.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from deconflict.clock import Clock
from deconflict.errors import FieldError, Forbidden, InvalidInput, NotFound, StaleVersion
from deconflict.geometry.outline import validate_outline
from deconflict.model import Agreement, Filing, FilingType, Party, Volume4D
from deconflict.model.dss import Subscriber, Subscription
from deconflict.service.covers import Covers
from deconflict.store.base import Reader, SpaceTimeQuery, Store, Writer, retrying

#: The longest a subscription may last (F3548 DSSMaxSubscriptionDurationHours).
MAX_SUBSCRIPTION_S = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class SubscriptionDraft:
    volume: Volume4D
    uss_base_url: str
    notify_for_intents: bool
    notify_for_constraints: bool


class Subscriptions:
    def __init__(
        self, store: Store, agreement: Agreement, clock: Clock, covers: Covers | None = None
    ) -> None:
        self.store = store
        self.agreement = agreement
        self.clock = clock
        # only the cells an outline touches (`Cover.own`) are used here, whatever the
        # reach: sharing the filings' covers finds a filing's cells computed already
        self._covers = covers if covers is not None else Covers(0.0)

    # -- cells and queries

    def cells(self, volumes: Sequence[Volume4D]) -> frozenset[int]:
        """The index cells `volumes` touch."""
        out: set[int] = set()
        for c in self._covers.of(volumes):
            out |= c.own
        return frozenset(out)

    def _meeting(
        self, r: Reader, volumes: Sequence[Volume4D], owner: str | None = None
    ) -> list[Subscription]:
        seen: dict[str, Subscription] = {}
        for v, cover in zip(volumes, self._covers.of(volumes), strict=True):
            query = SpaceTimeQuery(
                cover.own, v.time_start, v.time_end, v.altitude_lower_m, v.altitude_upper_m
            )
            for s in r.find_subscriptions(query, owner=owner):
                seen[s.id] = s
        return [seen[k] for k in sorted(seen)]

    def notify(self, w: Writer, filing: Filing, previous: Filing | None) -> tuple[Subscriber, ...]:
        """Bump every subscription the change touches (old and new volumes) that asked
        for this type; whom to notify, grouped by URL (the service's `Notifier`)."""
        volumes = list(filing.volumes)
        if previous is not None:
            volumes += [v for v in previous.volumes if v not in filing.volumes]
        wanted = [
            s
            for s in self._meeting(w, volumes)
            if (s.notify_for_intents if filing.type is FilingType.INTENT else s.notify_for_constraints)
        ]
        indices = w.bump_notifications([s.id for s in wanted])
        by_url: dict[str, list[tuple[str, int]]] = {}
        for s in wanted:
            by_url.setdefault(s.uss_base_url, []).append((s.id, indices[s.id]))
        return tuple(Subscriber(url, tuple(subs)) for url, subs in sorted(by_url.items()))

    # -- validation

    def _validate(self, draft: SubscriptionDraft, now: datetime) -> None:
        errors: list[FieldError] = []
        v = draft.volume
        try:
            validate_outline(v.outline, max_area_m2=self.agreement.max_volume_area_m2)
        except InvalidInput as exc:  # the outline's rules, named by the subscription's field
            errors += [FieldError("extents.volume", e.rule) for e in exc.errors]
        if v.time_end <= now:
            errors.append(FieldError("extents.time_end", "may not be in the past"))
        if v.duration_s > MAX_SUBSCRIPTION_S:
            errors.append(
                FieldError("extents.time_end", f"a subscription lasts at most {MAX_SUBSCRIPTION_S:.0f} s")
            )
        if not (draft.notify_for_intents or draft.notify_for_constraints):
            errors.append(
                FieldError(
                    "notify_for_operational_intents",
                    "at least one of notify_for_operational_intents and notify_for_constraints must be true",
                )
            )
        if errors:
            raise InvalidInput(errors)

    @staticmethod
    def _owned(current: Subscription | None, caller: Party, subscription_id: str) -> Subscription:
        if current is None:
            raise NotFound("subscription", subscription_id)
        if current.owner != caller.id:
            raise Forbidden(f"subscription {subscription_id!r} is managed by {current.owner!r}")
        return current

    def _check_covers(self, r: Reader, sub: Subscription) -> None:
        """A subscription must keep covering the filings that depend on it."""
        deps = r.subscription_dependents(sub.id)
        if not deps:
            return
        for fid in deps:
            f = r.get_filing(fid)
            if f is not None and not self.covers(sub, f):
                raise InvalidInput.one(
                    "extents", f"the subscription would no longer cover operational intent {fid!r}"
                )

    def covers(self, sub: Subscription, filing: Filing) -> bool:
        """Whether `sub` covers `filing`: its time window, and every index cell of its volumes."""
        return (
            sub.time_start <= filing.time_start
            and filing.time_end <= sub.time_end
            and self.cells(filing.volumes) <= self.cells(sub.volumes)
        )

    # -- use cases

    def put(
        self, caller: Party, subscription_id: str, version: int | None, draft: SubscriptionDraft
    ) -> Subscription:
        """Create (`version` None; AlreadyExists when the id is taken) or update a
        subscription (`version` must be current)."""
        now = self.clock.now()
        self._validate(draft, now)
        cells = self.cells([draft.volume])

        def write(w: Writer) -> Subscription:
            current = w.get_subscription(subscription_id)
            if version is None:
                sub = Subscription(
                    id=subscription_id,
                    owner=caller.id,
                    uss_base_url=draft.uss_base_url,
                    volumes=(draft.volume,),
                    notify_for_intents=draft.notify_for_intents,
                    notify_for_constraints=draft.notify_for_constraints,
                    implicit=False,
                    version=1,
                    notification_index=0,
                    created_at=now,
                    updated_at=now,
                )
            else:
                current = self._owned(current, caller, subscription_id)
                if current.version != version:
                    raise StaleVersion(subscription_id, str(version), str(current.version))
                sub = replace(
                    current,
                    uss_base_url=draft.uss_base_url,
                    volumes=(draft.volume,),
                    notify_for_intents=draft.notify_for_intents,
                    notify_for_constraints=draft.notify_for_constraints,
                    version=current.version + 1,
                    updated_at=now,
                )
                self._check_covers(w, sub)
            w.put_subscription(sub, cells)
            return sub

        return retrying(self.store, write)

    def put_implicit(
        self, w: Writer, caller: Party, filing: Filing, uss_base_url: str, constraints: bool
    ) -> Subscription:
        """A subscription made for one filing, covering its volumes (inside the filing's write)."""
        now = self.clock.now()
        sub = Subscription(
            id=str(uuid.uuid4()),
            owner=caller.id,
            uss_base_url=uss_base_url,
            volumes=filing.volumes,
            notify_for_intents=True,
            notify_for_constraints=constraints,
            implicit=True,
            version=1,
            notification_index=0,
            created_at=now,
            updated_at=now,
        )
        w.put_subscription(sub, self.cells(sub.volumes))
        return sub

    def reshape_implicit(self, w: Writer, sub: Subscription, filing: Filing) -> Subscription:
        """An implicit subscription follows its filing's new volumes."""
        new = replace(sub, volumes=filing.volumes, version=sub.version + 1, updated_at=self.clock.now())
        w.put_subscription(new, self.cells(new.volumes))
        return new

    def drop_if_orphaned(self, w: Writer, subscription_id: str) -> None:
        """Delete an implicit subscription no live filing depends on any more."""
        sub = w.get_subscription(subscription_id)
        if sub is not None and sub.implicit and not w.subscription_dependents(subscription_id):
            w.delete_subscription(subscription_id)

    def get(self, caller: Party, subscription_id: str) -> Subscription:
        with self.store.read() as r:
            return self._owned(r.get_subscription(subscription_id), caller, subscription_id)

    def query(self, caller: Party, area: Volume4D) -> list[Subscription]:
        """The caller's subscriptions meeting `area` (only one's own, as F3548 says)."""
        with self.store.read() as r:
            return self._meeting(r, [area], owner=caller.id)

    def delete(self, caller: Party, subscription_id: str, version: int) -> Subscription:
        def write(w: Writer) -> Subscription:
            current = self._owned(w.get_subscription(subscription_id), caller, subscription_id)
            if current.version != version:
                raise StaleVersion(subscription_id, str(version), str(current.version))
            deps = w.subscription_dependents(subscription_id)
            if deps:
                raise InvalidInput.one(
                    "subscriptionid",
                    f"operational intents depend on this subscription: {', '.join(deps)}",
                )
            w.delete_subscription(subscription_id)
            return current

        return retrying(self.store, write)

    def dependents(self, subscription_id: str) -> list[str]:
        with self.store.read() as r:
            return r.subscription_dependents(subscription_id)


def default_window(start: datetime) -> tuple[datetime, datetime]:
    """F3548: a subscription without an end time gets one from the DSS; here the longest
    allowed, from its start (which defaults to the time of the request)."""
    return start, start + timedelta(seconds=MAX_SUBSCRIPTION_S)
