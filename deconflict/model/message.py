"""Hotline messages, their deliveries to each recipient, and per-party events.

A message has one sender (a party, or :data:`SERVICE` for what the service sends on its
own) and one delivery per recipient, which carries the two layers of acknowledgement,
each timestamped by the server: *delivered* (the recipient's client has it) and
*replied* (the operator's answer). Times are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SERVICE = "@service"
"""The sender of automatic messages (never a party id: those cannot hold '@')."""

STANDBY = "STANDBY"
"""The reply that asks for time: a final answer is still due."""


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    code: str
    sender: str
    recipients: tuple[str, ...]
    fields: Mapping[str, Any]
    """The code's typed fields in normal JSON form (`deconflict.hotline.fields`)."""
    sent_at: datetime
    refers_to: str | None = None
    """READ_BACK: the message read back."""
    mismatches: tuple[Mapping[str, Any], ...] = ()
    """READ_BACK: every difference from the original ({field, original, read_back})."""

    def involves(self, party: str) -> bool:
        return party == self.sender or party in self.recipients

    @property
    def parties(self) -> tuple[str, ...]:
        """Everyone on the message: the sender (when a party) and the recipients."""
        head = () if self.sender == SERVICE else (self.sender,)
        return head + tuple(r for r in self.recipients if r != self.sender)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One recipient's copy of a message, and what became of it."""

    message_id: str
    recipient: str
    sent_at: datetime
    delivery_due: datetime
    reply_due: datetime | None
    """None when the code takes no reply."""
    attempts: int = 1
    delivered_at: datetime | None = None
    delivery_overdue_at: datetime | None = None
    replied_at: datetime | None = None
    reply: str | None = None
    reply_overdue_at: datetime | None = None
    escalation_level: int = 0
    """0: the hotline desk; n: the party's n-th escalation contact."""
    next_due: datetime | None = None
    """When something next falls due (a retry or an escalation); None: nothing pending."""

    @property
    def awaiting_reply(self) -> bool:
        return self.reply_due is not None and (self.reply is None or self.reply == STANDBY)


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of a party's stream: numbered 1, 2, 3... per party, in commit order."""

    party: str
    seq: int
    at: datetime
    type: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PartyStatus:
    """A party's heartbeat: monitored from its first beat on."""

    party: str
    last_heartbeat: datetime
    down_since: datetime | None = None

    @property
    def up(self) -> bool:
        return self.down_since is None


@dataclass(frozen=True, slots=True)
class Webhook:
    """Where a party's events are also POSTed, and how far that has got."""

    party: str
    url: str
    secret: str
    """The HMAC-SHA256 key of the signature header."""
    delivered_seq: int = 0
    """The last event the endpoint accepted."""
    failures: int = 0
    """Failed attempts in a row."""
    next_attempt: datetime | None = None
