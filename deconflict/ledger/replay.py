"""Replay: the state of the record at a past time, rebuilt from the log alone.

An entry counts if its server time ``at`` is at or before T. A filing is shown as its
latest version so counted (``filing_created``, ``filing_versioned``, ``state_changed``
and ``filing_withdrawn`` each record one whole version); filings whose version at T is
``ended`` (withdrawn or ended) are left out unless asked for. A conflict is open at T
if its ``conflict_opened`` entry counts and its ``conflict_closed`` entry does not.

Hotline messages sent at or before T are listed with, per recipient, what had
happened by T: delivered (when), the latest reply (which, when), and the escalations
(reason and level). Parties DOWN at T (a ``party_down`` entry not followed by its
``party_up``) are listed with the time they went down. A log without hotline entries
says so rather than showing empty lists as if they were known.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from deconflict.ledger._bodies import field_map, field_num, field_str
from deconflict.ledger.canonical import JSONValue
from deconflict.ledger.entries import Entry, Kind, format_time
from deconflict.ledger.stats import HOTLINE_KINDS, NO_HOTLINE

__all__ = ["FILING_KINDS", "FilingAt", "MessageAt", "OpenConflict", "Snapshot", "state_at"]

FILING_KINDS = frozenset(
    {Kind.FILING_CREATED, Kind.FILING_VERSIONED, Kind.STATE_CHANGED, Kind.FILING_WITHDRAWN}
)
_ENDED = "ended"


@dataclass(frozen=True, slots=True)
class FilingAt:
    """One filing's version in force at T: `since` is when that version was recorded,
    `index` its entry's leaf index; `volumes` are GeoJSON Features as logged."""

    id: str
    type: str
    owner: str
    kind: str
    state: str
    version: int
    ovn: str
    volumes: JSONValue
    since: datetime
    index: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "owner": self.owner,
            "kind": self.kind,
            "state": self.state,
            "version": self.version,
            "ovn": self.ovn,
            "volumes": self.volumes,
            "since": format_time(self.since),
            "leaf_index": self.index,
        }


@dataclass(frozen=True, slots=True)
class OpenConflict:
    """A conflict open at T: its sides (filing references as logged) and its window."""

    id: str
    a: Mapping[str, JSONValue]
    b: Mapping[str, JSONValue]
    time_start: str
    time_end: str
    opened_at: datetime
    index: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "a": dict(self.a),
            "b": dict(self.b),
            "time_start": self.time_start,
            "time_end": self.time_end,
            "opened_at": format_time(self.opened_at),
            "leaf_index": self.index,
        }


@dataclass
class MessageAt:
    """A hotline message as the log knew it at T (`deliveries` per recipient)."""

    id: str
    code: str
    sender: str
    recipients: list[str]
    fields: Any
    sent_at: datetime
    index: int
    deliveries: dict[str, dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "sender": self.sender,
            "recipients": self.recipients,
            "fields": self.fields,
            "sent_at": format_time(self.sent_at),
            "index": self.index,
            "deliveries": self.deliveries,
        }


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The record at `at`: `entries` is how many log entries were at or before it."""

    at: datetime
    entries: int
    filings: tuple[FilingAt, ...]
    conflicts: tuple[OpenConflict, ...]
    hotline_entries: int
    messages: tuple[MessageAt, ...] = ()
    down: Mapping[str, str] | None = None
    """Parties DOWN at `at`, with the time each went down."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": format_time(self.at),
            "entries": self.entries,
            "filings": [f.as_dict() for f in self.filings],
            "conflicts": [c.as_dict() for c in self.conflicts],
            "hotline": {
                "entries": self.hotline_entries,
                "note": NO_HOTLINE
                if self.hotline_entries == 0
                else f"{len(self.messages)} messages sent by then",
                "messages": [m.as_dict() for m in self.messages],
                "parties_down": dict(self.down or {}),
            },
        }


def state_at(entries: Iterable[tuple[int, Entry]], at: datetime, *, include_ended: bool = False) -> Snapshot:
    """The filings and open conflicts at `at` (timezone-aware UTC), from decoded entries
    in log order. Filings are sorted by id, conflicts by the index that opened them."""
    latest: dict[str, FilingAt] = {}
    opened: dict[str, OpenConflict] = {}
    counted = hotline = 0
    messages: dict[str, MessageAt] = {}
    down: dict[str, str] = {}
    for index, entry in entries:
        if entry.at > at:
            continue
        counted += 1
        body = entry.body
        if entry.kind in FILING_KINDS:
            filing = FilingAt(
                id=field_str(index, body, "id"),
                type=field_str(index, body, "type"),
                owner=field_str(index, body, "owner"),
                kind=field_str(index, body, "kind"),
                state=field_str(index, body, "state"),
                version=int(field_num(index, body, "version")),
                ovn=field_str(index, body, "ovn"),
                volumes=body.get("volumes"),
                since=entry.at,
                index=index,
            )
            held = latest.get(filing.id)
            if held is None or filing.version > held.version:
                latest[filing.id] = filing
        elif entry.kind is Kind.CONFLICT_OPENED:
            cid = field_str(index, body, "id")
            opened[cid] = OpenConflict(
                id=cid,
                a=field_map(index, body, "a"),
                b=field_map(index, body, "b"),
                time_start=field_str(index, body, "time_start"),
                time_end=field_str(index, body, "time_end"),
                opened_at=entry.at,
                index=index,
            )
        elif entry.kind is Kind.CONFLICT_CLOSED:
            opened.pop(field_str(index, body, "id"), None)
        elif entry.kind in HOTLINE_KINDS:
            hotline += 1
            _message_event(messages, index, entry)
        elif entry.kind is Kind.PARTY_DOWN:
            down[field_str(index, body, "party")] = format_time(entry.at)
        elif entry.kind is Kind.PARTY_UP:
            down.pop(field_str(index, body, "party"), None)
    filings = tuple(f for _, f in sorted(latest.items()) if include_ended or f.state != _ENDED)
    conflicts = tuple(sorted(opened.values(), key=lambda c: c.index))
    sent = tuple(sorted(messages.values(), key=lambda m: m.index))
    return Snapshot(at, counted, filings, conflicts, hotline, sent, down)


def _message_event(messages: dict[str, MessageAt], index: int, entry: Entry) -> None:
    body = entry.body
    if entry.kind is Kind.MESSAGE_SENT:
        mid = field_str(index, body, "id")
        listed = body.get("recipients")
        recipients = [str(r) for r in listed] if isinstance(listed, list) else []
        messages[mid] = MessageAt(
            mid,
            field_str(index, body, "code"),
            field_str(index, body, "sender"),
            recipients,
            body.get("fields"),
            entry.at,
            index,
            {
                r: {"delivered_at": None, "reply": None, "replied_at": None, "escalations": []}
                for r in recipients
            },
        )
        return
    key = "message" if entry.kind is Kind.ESCALATED else "id"
    message = messages.get(field_str(index, body, key))
    if message is None:  # its sending is not in this log (a partial one)
        return
    who = field_str(index, body, "by" if entry.kind is Kind.MESSAGE_REPLIED else "recipient")
    delivery = message.deliveries.setdefault(
        who, {"delivered_at": None, "reply": None, "replied_at": None, "escalations": []}
    )
    if entry.kind is Kind.MESSAGE_DELIVERED:
        delivery["delivered_at"] = format_time(entry.at)
    elif entry.kind is Kind.MESSAGE_REPLIED:
        delivery["reply"] = field_str(index, body, "reply")
        delivery["replied_at"] = format_time(entry.at)
        if delivery["delivered_at"] is None:
            delivery["delivered_at"] = format_time(entry.at)
    else:
        delivery["escalations"].append(
            {"reason": field_str(index, body, "reason"), "due": body.get("due"), "level": body.get("level")}
        )
