"""Conformance monitoring: a track flying an intent (its reports' `intent`) outside that
intent's volumes, beyond the agreement's tolerance (`conformance_tolerance_m` in space,
`conformance_tolerance_s` in time), makes the intent nonconforming; once every track
flying it is back inside, it is activated again.

Each change is a new version of the intent through `Filings.transition`, made in the
owner's name (the reporting party is the intent's owner): recorded in the shared record,
notified to subscribers, and announced on the hotline like any change
(ACTIVITY_NONCONFORMING, then ACTIVITY_ACTIVATED when it conforms again).

Following F3548's lifecycle, only an activated intent becomes nonconforming; an intent
still `accepted` (filed, not yet activated) is not monitored. An intent its owner made
nonconforming by hand is left to its owner: only the ones made nonconforming here are
activated again here. What was made nonconforming here is remembered in this process.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from deconflict.errors import DeconflictError
from deconflict.geometry.inside import within
from deconflict.model import Agreement, Filing, FilingType, State
from deconflict.service.filings import Filings
from deconflict.store.base import Store

__all__ = ["Conformance", "Flown"]

_log = logging.getLogger("deconflict.service.conformance")


@dataclass(frozen=True, slots=True)
class Flown:
    """A track's latest report that names an intent."""

    track: str
    intent: str
    lon: float
    lat: float
    alt_m: float
    at: datetime


class Conformance:
    def __init__(self, store: Store, agreement: Agreement, filings: Filings) -> None:
        self.store = store
        self.agreement = agreement
        self.filings = filings
        #: intent id -> the tracks flying it that are outside
        self.outside: dict[str, set[str]] = {}
        #: intents made nonconforming here
        self.ours: set[str] = set()

    def check(self, flown: Sequence[Flown]) -> list[dict[str, str]]:
        """Update each intent flown in a batch; returns the state changes made."""
        by_intent: dict[str, list[Flown]] = {}
        for f in flown:
            by_intent.setdefault(f.intent, []).append(f)
        with self.store.read() as r:
            current = {iid: r.get_filing(iid) for iid in by_intent}
            owners = {iid: r.get_party(f.owner) for iid, f in current.items() if f is not None}
        changes: list[dict[str, str]] = []
        a = self.agreement
        for iid, reports in by_intent.items():
            intent = current[iid]
            owner = owners.get(iid)
            if intent is None or owner is None or intent.type is not FilingType.INTENT:
                continue
            out = self.outside.setdefault(iid, set())
            for f in reports:
                inside = within(
                    intent.volumes, f.lon, f.lat, f.alt_m, f.at,
                    tolerance_m=a.conformance_tolerance_m, tolerance_s=a.conformance_tolerance_s,
                )  # fmt: skip
                (out.discard if inside else out.add)(f.track)
            target = self._target(intent, bool(out))
            if target is None:
                continue
            try:
                done = self.filings.transition(owner, FilingType.INTENT, iid, intent.ovn, target)
            except DeconflictError as exc:  # e.g. a party whose writes must be signed
                _log.warning("conformance: could not make %s %s: %s", iid, target.value, exc)
                continue
            if target is State.NONCONFORMING:
                self.ours.add(iid)
            else:
                self.ours.discard(iid)
            changes.append({"intent": iid, "state": done.filing.state.value, "ovn": done.filing.ovn})
        return changes

    def forget(self, tracks: set[str]) -> None:
        """Tracks that left the picture no longer count against their intent."""
        for out in self.outside.values():
            out -= tracks

    def _target(self, intent: Filing, outside: bool) -> State | None:
        if outside and intent.state is State.ACTIVATED:
            return State.NONCONFORMING
        if not outside and intent.state is State.NONCONFORMING and intent.id in self.ours:
            return State.ACTIVATED
        return None
