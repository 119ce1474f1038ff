"""Replay: the state of the record at a past time, rebuilt from the log alone.

An entry counts if its server time ``at`` is at or before T. A filing is shown as its
latest version so counted (``filing_created``, ``filing_versioned``, ``state_changed``
and ``filing_withdrawn`` each record one whole version); filings whose version at T is
``ended`` (withdrawn or ended) are left out unless asked for. A conflict is open at T
if its ``conflict_opened`` entry counts and its ``conflict_closed`` entry does not.

Messages and their acknowledgements belong to the hotline, which writes no entries
yet; the snapshot says so rather than showing an empty list as if it were known.
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

__all__ = ["FILING_KINDS", "FilingAt", "OpenConflict", "Snapshot", "state_at"]

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


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The record at `at`: `entries` is how many log entries were at or before it."""

    at: datetime
    entries: int
    filings: tuple[FilingAt, ...]
    conflicts: tuple[OpenConflict, ...]
    hotline_entries: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": format_time(self.at),
            "entries": self.entries,
            "filings": [f.as_dict() for f in self.filings],
            "conflicts": [c.as_dict() for c in self.conflicts],
            "hotline": {
                "entries": self.hotline_entries,
                "note": NO_HOTLINE if self.hotline_entries == 0 else "hotline replay is not computed yet",
                "messages": [],
            },
        }


def state_at(entries: Iterable[tuple[int, Entry]], at: datetime, *, include_ended: bool = False) -> Snapshot:
    """The filings and open conflicts at `at` (timezone-aware UTC), from decoded entries
    in log order. Filings are sorted by id, conflicts by the index that opened them."""
    latest: dict[str, FilingAt] = {}
    opened: dict[str, OpenConflict] = {}
    counted = hotline = 0
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
    filings = tuple(f for _, f in sorted(latest.items()) if include_ended or f.state != _ENDED)
    conflicts = tuple(sorted(opened.values(), key=lambda c: c.index))
    return Snapshot(at, counted, filings, conflicts, hotline)
