"""What the ASTM F3548-21 DSS interface keeps beside filings: subscriptions, the
reference data of a filing made through it, and each party's availability.

Subscriptions are areas a party wants to hear about; a write in such an area bumps
the subscription's notification index, and the writer is told whom to notify.
Units: metres, WGS84 degrees, UTC, as everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from deconflict.model.volume import Volume4D

#: The F3548 "null" subscription id: a reference with no subscription behind it (a
#: filing made through the native API).
NULL_SUBSCRIPTION_ID = "00000000-0000-4000-8000-000000000000"


class Availability(StrEnum):
    """A party's availability as F3548 USS availability arbitration sets it."""

    UNKNOWN = "Unknown"
    NORMAL = "Normal"
    DOWN = "Down"


@dataclass(frozen=True, slots=True)
class PartyAvailability:
    party_id: str
    availability: Availability
    version: int
    """0 while never set; each change adds one."""
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class Subscription:
    """An area (one or more 4D volumes) a party is notified about.

    `implicit` subscriptions are made by the service for one filing and removed when
    no filing depends on them any more. `version` counts changes by the owner;
    `notification_index` counts the writes it was notified of."""

    id: str
    owner: str
    uss_base_url: str
    volumes: tuple[Volume4D, ...]
    notify_for_intents: bool
    notify_for_constraints: bool
    implicit: bool
    version: int
    notification_index: int
    created_at: datetime
    updated_at: datetime

    @property
    def time_start(self) -> datetime:
        return min(v.time_start for v in self.volumes)

    @property
    def time_end(self) -> datetime:
        return max(v.time_end for v in self.volumes)


@dataclass(frozen=True, slots=True)
class DssReference:
    """What an F3548 client said of a filing beyond its volumes and state: where its
    details are served, and which subscription keeps its manager informed."""

    filing_id: str
    uss_base_url: str
    subscription_id: str


@dataclass(frozen=True, slots=True)
class Subscriber:
    """Whom a writer must notify of its change: a base URL and, per subscription
    there, its notification index after this write."""

    uss_base_url: str
    subscriptions: tuple[tuple[str, int], ...]
