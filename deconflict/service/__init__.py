"""Use cases. The service owns the transaction; api/ and cli are thin over it."""

from __future__ import annotations

from dataclasses import dataclass

from deconflict.clock import Clock, SystemClock
from deconflict.model import Agreement
from deconflict.service.filings import Draft, Filings, Outcome
from deconflict.service.parties import Parties
from deconflict.store.base import Store

__all__ = ["Draft", "Filings", "Outcome", "Parties", "Services"]


@dataclass(frozen=True)
class Services:
    store: Store
    agreement: Agreement
    clock: Clock
    parties: Parties
    filings: Filings

    @classmethod
    def build(cls, store: Store, agreement: Agreement, clock: Clock | None = None) -> Services:
        clock = clock or SystemClock()
        return cls(
            store,
            agreement,
            clock,
            Parties(store, agreement, clock),
            Filings(store, agreement, clock),
        )
