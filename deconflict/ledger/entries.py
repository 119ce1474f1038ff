"""The canonical log entry: the exact bytes that become one leaf of the tree.

An entry is the RFC 8785 (JCS) canonical JSON of::

    {"at": "2030-06-01T12:00:00.000000Z", "body": {...}, "kind": "filing_created"}

``at`` is the server's UTC time of the change in RFC 3339 with exactly six fractional
digits and a ``Z``; ``kind`` is one of :class:`Kind`; ``body`` is any JSON object the
kind defines. Because the encoding is canonical, one logical entry has one byte string,
and :func:`decode_entry` refuses any other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from deconflict.errors import InvalidInput
from deconflict.ledger.canonical import MAX_SAFE_INTEGER, JSONValue, canonicalize

__all__ = ["KINDS", "Entry", "Kind", "decode_entry", "entry_bytes", "format_time", "parse_time"]


class Kind(StrEnum):
    """What an entry records."""

    FILING_CREATED = "filing_created"
    FILING_VERSIONED = "filing_versioned"
    FILING_WITHDRAWN = "filing_withdrawn"
    STATE_CHANGED = "state_changed"
    CONFLICT_OPENED = "conflict_opened"
    CONFLICT_CLOSED = "conflict_closed"
    MESSAGE_SENT = "message_sent"
    MESSAGE_DELIVERED = "message_delivered"
    MESSAGE_REPLIED = "message_replied"
    ESCALATED = "escalated"
    PARTY_DOWN = "party_down"
    PARTY_UP = "party_up"
    PARTY_ADDED = "party_added"
    PARTY_KEY_ADDED = "party_key_added"
    PARTY_KEY_REVOKED = "party_key_revoked"
    PARTY_TOKEN_ROTATED = "party_token_rotated"
    AGREEMENT_CHANGED = "agreement_changed"
    TACTICAL_ALERT_OPENED = "tactical_alert_opened"
    TACTICAL_ALERT_CLOSED = "tactical_alert_closed"


KINDS = frozenset(k.value for k in Kind)
"""Every kind an entry may have."""

_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def format_time(at: datetime) -> str:
    """``at`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``; refuses naive and non-UTC times."""
    offset = at.utcoffset()
    if offset is None:
        raise InvalidInput.one("at", "must be timezone-aware UTC, got a naive datetime")
    if offset != timedelta(0):
        raise InvalidInput.one("at", f"must be UTC, got offset {at.strftime('%z')}")
    return (
        f"{at.year:04d}-{at.month:02d}-{at.day:02d}T"
        f"{at.hour:02d}:{at.minute:02d}:{at.second:02d}.{at.microsecond:06d}Z"
    )


def parse_time(text: str) -> datetime:
    """The inverse of :func:`format_time`; accepts only that exact form."""
    if not _TIME.fullmatch(text):
        raise InvalidInput.one("at", "must be RFC 3339 UTC as YYYY-MM-DDTHH:MM:SS.ffffffZ")
    try:
        return datetime(
            int(text[0:4]),
            int(text[5:7]),
            int(text[8:10]),
            int(text[11:13]),
            int(text[14:16]),
            int(text[17:19]),
            int(text[20:26]),
            tzinfo=UTC,
        )
    except ValueError:
        raise InvalidInput.one("at", f"{text!r} is not a valid date and time") from None


def _kind(kind: object) -> Kind:
    if not isinstance(kind, str) or kind not in KINDS:
        raise InvalidInput.one("kind", f"must be one of {', '.join(sorted(KINDS))}, got {kind!r}")
    return Kind(kind)


def entry_bytes(kind: str, at: datetime, body: Mapping[str, JSONValue]) -> bytes:
    """The canonical bytes of one entry. Raises InvalidInput naming ``kind``, ``at`` or ``body``."""
    checked = _kind(kind)
    if not isinstance(body, Mapping):
        raise InvalidInput.one("body", "must be a JSON object")
    value: dict[str, JSONValue] = {"kind": checked.value, "at": format_time(at), "body": body}
    try:
        return canonicalize(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput.one("body", str(exc)) from None


@dataclass(frozen=True, slots=True)
class Entry:
    """A decoded entry; ``body`` is read-only."""

    kind: Kind
    at: datetime
    body: Mapping[str, JSONValue]


def _no_duplicates(pairs: list[tuple[str, JSONValue]]) -> dict[str, JSONValue]:
    out: dict[str, JSONValue] = {}
    for name, value in pairs:
        if name in out:
            raise InvalidInput.one(name, "appears twice in one object")
        out[name] = value
    return out


def _number(text: str) -> int | float:
    """JSON numbers are doubles (RFC 8785): an integer past 2**53 is read as the double it names."""
    value = int(text)
    return value if abs(value) <= MAX_SAFE_INTEGER else float(value)


def decode_entry(data: bytes) -> Entry:
    """Parse entry bytes; raises InvalidInput if they are not exactly what :func:`entry_bytes` makes."""
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_int=_number)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput.one("", f"not UTF-8 JSON ({exc})") from None
    if not isinstance(value, dict):
        raise InvalidInput.one("", "must be a JSON object")
    extra = set(value) - {"kind", "at", "body"}
    if extra:
        raise InvalidInput.one(sorted(extra)[0], "is not a field of an entry")
    for name in ("kind", "at", "body"):
        if name not in value:
            raise InvalidInput.one(name, "is required")
    kind = _kind(value["kind"])
    if not isinstance(value["at"], str):
        raise InvalidInput.one("at", "must be a string")
    at = parse_time(value["at"])
    body = value["body"]
    if not isinstance(body, dict):
        raise InvalidInput.one("body", "must be a JSON object")
    if entry_bytes(kind, at, body) != data:
        raise InvalidInput.one("", "is not in canonical form (RFC 8785)")
    return Entry(kind, at, MappingProxyType(body))
