"""Use cases. The service owns the transaction; api/ and cli are thin over it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deconflict.clock import Clock, SystemClock
from deconflict.ledger import keys
from deconflict.model import Agreement
from deconflict.service.availability import Availabilities
from deconflict.service.covers import Covers
from deconflict.service.dss import Dss
from deconflict.service.filings import Draft, Filings, Outcome
from deconflict.service.hotline import Hotline
from deconflict.service.ledger import Ledger, Receipt
from deconflict.service.parties import Parties, PartyCreated
from deconflict.service.signatures import Signatures
from deconflict.service.subscriptions import Subscriptions
from deconflict.service.tactical import Tactical
from deconflict.service.webhooks import Webhooks
from deconflict.store.base import Store

__all__ = [
    "Availabilities",
    "Draft",
    "Dss",
    "Filings",
    "Hotline",
    "Ledger",
    "Outcome",
    "Parties",
    "PartyCreated",
    "Receipt",
    "Services",
    "Signatures",
    "Subscriptions",
    "Tactical",
    "Webhooks",
]


@dataclass(frozen=True)
class Services:
    store: Store
    agreement: Agreement
    clock: Clock
    parties: Parties
    filings: Filings
    ledger: Ledger
    signatures: Signatures
    hotline: Hotline
    subscriptions: Subscriptions
    availabilities: Availabilities
    dss: Dss
    webhooks: Webhooks
    tactical: Tactical

    @classmethod
    def build(
        cls, store: Store, agreement: Agreement, clock: Clock | None = None, data_dir: Path | None = None
    ) -> Services:
        """Services over `store`. The log's signing key is kept in `data_dir` (created at
        first start); without one, a key held in memory only (tests, tools)."""
        clock = clock or SystemClock()
        key = keys.load_or_create(data_dir) if data_dir is not None else keys.SigningKey.generate()
        ledger = Ledger(store, key, clock)
        hotline = Hotline(store, agreement, clock, ledger)
        covers = Covers(agreement.max_buffers.horizontal_m)  # one cache of H3 cells for both
        subscriptions = Subscriptions(store, agreement, clock, covers)
        availabilities = Availabilities(store, clock, ledger)
        filings = Filings(
            store, agreement, clock, ledger, hotline, notifier=subscriptions.notify, covers=covers
        )
        return cls(
            store,
            agreement,
            clock,
            Parties(store, agreement, clock, ledger),
            filings,
            ledger,
            Signatures(store, clock, ledger),
            hotline,
            subscriptions,
            availabilities,
            Dss(filings, subscriptions, availabilities),
            Webhooks(hotline),
            Tactical(store, agreement, clock, ledger, hotline, filings),
        )
