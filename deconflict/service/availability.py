"""Party availability, as ASTM F3548-21 availability arbitration sets it.

A party marked Down may not file, keep or withdraw accepted or activated filings, and
its accepted filings no longer need a key nor block others (`service.filings`). Each
change is recorded in the shared record (`party_down` / `party_up`) in its transaction.
"""

from __future__ import annotations

from deconflict.clock import Clock
from deconflict.errors import NotFound, StaleVersion
from deconflict.ledger.canonical import JSONValue
from deconflict.ledger.entries import Kind
from deconflict.model import Party
from deconflict.model.dss import Availability, PartyAvailability
from deconflict.service.ledger import Ledger
from deconflict.store.base import Store, Writer, retrying


def version_text(version: int) -> str:
    """The wire form of an availability version: '' while never set (F3548's default)."""
    return "" if version == 0 else str(version)


def availability_body(a: PartyAvailability, by: Party, previous: Availability) -> dict[str, JSONValue]:
    return {
        "party": a.party_id,
        "source": "availability_arbitration",
        "availability": a.availability.value,
        "previous": previous.value,
        "version": a.version,
        "by": by.id,
    }


class Availabilities:
    def __init__(self, store: Store, clock: Clock, ledger: Ledger) -> None:
        self.store = store
        self.clock = clock
        self.ledger = ledger

    def get(self, party_id: str) -> PartyAvailability:
        with self.store.read() as r:
            if r.get_party(party_id) is None:
                raise NotFound("party", party_id)
            found = r.availability([party_id]).get(party_id)
        return found or PartyAvailability(party_id, Availability.UNKNOWN, 0, None)

    def set(
        self, caller: Party, party_id: str, old_version: str, availability: Availability
    ) -> PartyAvailability:
        """Set `party_id`'s availability; `old_version` must be the current version's
        text ('' while never set). Going to Down records `party_down`; leaving it,
        `party_up`; any other change is recorded as the one it is closest to."""
        now = self.clock.now()

        def write(w: Writer) -> PartyAvailability:
            if w.get_party(party_id) is None:
                raise NotFound("party", party_id)
            stored = w.availability([party_id]).get(party_id)
            current = stored or PartyAvailability(party_id, Availability.UNKNOWN, 0, None)
            if old_version != version_text(current.version):
                raise StaleVersion(party_id, old_version, version_text(current.version))
            new = PartyAvailability(party_id, availability, current.version + 1, now)
            w.set_availability(new)
            kind = Kind.PARTY_DOWN if availability is Availability.DOWN else Kind.PARTY_UP
            self.ledger.record(w, kind, availability_body(new, caller, current.availability), now)
            return new

        return retrying(self.store, write)
