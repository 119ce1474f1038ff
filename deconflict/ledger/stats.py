"""Statistics from the log alone: notice lead times, reciprocity, conflicts per pair.

Input is the decoded log, ``(index, Entry)`` in log order (from an export file or a
store); nothing else is consulted, so any party holding a verified export gets the
same figures as the service's operator.

Notices are the ``filing_created`` and ``filing_versioned`` entries (each new version
of what and where a party will fly); state changes and withdrawals are not notices.
Their ``notice_s`` and ``late`` are the service's own figures at the time, as recorded.

Reciprocity, per ordered pair of parties (a, b): ``notices`` is how many notices a
filed that b could see, and ``conflicts_raised`` how many conflicts a's filing opened
against one of b's. **Who could see a notice:** every party other than its owner that
the log registers with a ``party_added`` entry (any role, whenever it was added: the
record is readable by every registered party). A log with no ``party_added`` entry (a
partial one) falls back to every other owner seen in it. A pair is listed when either
direction is non-zero, so a one-sided relation shows as a row of zeros.

Conflicts per unordered pair: how many were opened and closed in the log.

Reply times and overdue counts, per recipient party, from the hotline's entries: a
reply time runs from a ``message_sent`` entry to the first ``message_replied`` of each
recipient (STANDBY counts: it is an answer); a message counts once as ``not_delivered``
and once as ``not_replied`` for a recipient when an ``escalated`` entry of that reason
names it, however many retries or levels followed. A log without hotline entries says
so (:data:`NO_HOTLINE`), never invents figures.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from deconflict.ledger._bodies import field_bool, field_map, field_num, field_str
from deconflict.ledger.entries import Entry, Kind, format_time

__all__ = [
    "HOTLINE_KINDS",
    "NO_HOTLINE",
    "NOTICE_KINDS",
    "ConflictPair",
    "Distribution",
    "Hotline",
    "LogStats",
    "NoticePair",
    "ReplyTimes",
    "format_table",
    "log_stats",
    "quantile",
]

NOTICE_KINDS = frozenset({Kind.FILING_CREATED, Kind.FILING_VERSIONED})
HOTLINE_KINDS = frozenset({Kind.MESSAGE_SENT, Kind.MESSAGE_DELIVERED, Kind.MESSAGE_REPLIED, Kind.ESCALATED})
NO_HOTLINE = "no hotline entries in this log"


def quantile(ordered: Sequence[float], q: float) -> float:
    """The `q` quantile (0..1) of sorted values, interpolating linearly between closest
    ranks (numpy's default, R type 7). `ordered` must be sorted and non-empty."""
    pos = (len(ordered) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True, slots=True)
class Distribution:
    """Notice lead times in seconds (from receipt to the start of flying) of `count`
    notices, `late` of which were late under the agreement."""

    count: int
    min_s: float
    p10_s: float
    median_s: float
    p90_s: float
    max_s: float
    late: int

    @property
    def late_share(self) -> float:
        return self.late / self.count

    @classmethod
    def of(cls, notices: Sequence[tuple[float, bool]]) -> Distribution:
        values = sorted(n for n, _ in notices)
        return cls(
            count=len(values),
            min_s=values[0],
            p10_s=quantile(values, 0.1),
            median_s=quantile(values, 0.5),
            p90_s=quantile(values, 0.9),
            max_s=values[-1],
            late=sum(1 for _, late in notices if late),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "min_s": self.min_s,
            "p10_s": self.p10_s,
            "median_s": self.median_s,
            "p90_s": self.p90_s,
            "max_s": self.max_s,
            "late": self.late,
            "late_share": self.late_share,
        }


@dataclass(frozen=True, slots=True)
class NoticePair:
    """Ordered pair: what `sender` filed that `recipient` could see."""

    sender: str
    recipient: str
    notices: int
    conflicts_raised: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.sender,
            "to": self.recipient,
            "notices": self.notices,
            "conflicts_raised": self.conflicts_raised,
        }


@dataclass(frozen=True, slots=True)
class ConflictPair:
    """Unordered pair ``(first, second)``, ``first < second``."""

    first: str
    second: str
    opened: int
    closed: int

    def as_dict(self) -> dict[str, Any]:
        return {"parties": [self.first, self.second], "opened": self.opened, "closed": self.closed}


@dataclass(frozen=True, slots=True)
class ReplyTimes:
    """Seconds from a message being sent to a recipient's first reply."""

    count: int
    min_s: float
    median_s: float
    p90_s: float
    max_s: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> ReplyTimes:
        values = sorted(seconds)
        return cls(len(values), values[0], quantile(values, 0.5), quantile(values, 0.9), values[-1])

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "min_s": self.min_s,
            "median_s": self.median_s,
            "p90_s": self.p90_s,
            "max_s": self.max_s,
        }


@dataclass(frozen=True, slots=True)
class Hotline:
    """Reply times and overdue counts per recipient party."""

    entries: int
    messages: int = 0
    reply_times: Mapping[str, ReplyTimes] = field(default_factory=dict)
    overdue: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """party -> {"not_delivered": n, "not_replied": n}"""

    @property
    def note(self) -> str:
        if self.entries == 0:
            return NO_HOTLINE
        replies = sum(r.count for r in self.reply_times.values())
        return f"{self.entries} hotline entries: {self.messages} messages, {replies} first replies"

    def as_dict(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "note": self.note,
            "reply_times": {k: v.as_dict() for k, v in self.reply_times.items()},
            "overdue": {k: dict(v) for k, v in self.overdue.items()},
        }


@dataclass(frozen=True, slots=True)
class LogStats:
    entries: int
    first_at: datetime | None
    last_at: datetime | None
    notice_all: Distribution | None
    notice_by_party: Mapping[str, Distribution]
    notice_by_kind: Mapping[str, Distribution]
    recipients_from: str
    """``party_added`` or ``owners_seen``: where the recipients of a notice came from."""
    reciprocity: tuple[NoticePair, ...]
    conflicts: tuple[ConflictPair, ...]
    closed_unmatched: int
    """Conflicts closed whose opening is not in the log (a partial log)."""
    hotline: Hotline

    def as_dict(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "first_at": format_time(self.first_at) if self.first_at else None,
            "last_at": format_time(self.last_at) if self.last_at else None,
            "notice": {
                "all": self.notice_all.as_dict() if self.notice_all else None,
                "by_party": {k: v.as_dict() for k, v in self.notice_by_party.items()},
                "by_kind": {k: v.as_dict() for k, v in self.notice_by_kind.items()},
            },
            "reciprocity": {
                "recipients": self.recipients_from,
                "pairs": [p.as_dict() for p in self.reciprocity],
            },
            "conflicts": {
                "pairs": [p.as_dict() for p in self.conflicts],
                "closed_unmatched": self.closed_unmatched,
            },
            "hotline": self.hotline.as_dict(),
        }


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def log_stats(entries: Iterable[tuple[int, Entry]]) -> LogStats:
    """Statistics of a decoded log; raises InvalidInput naming ``entries[i].body.<field>``
    if a body lacks what its kind records."""
    count = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    notices: list[tuple[str, str, float, bool]] = []  # owner, kind, notice_s, late
    registered: set[str] = set()
    owners: set[str] = set()
    raised: Counter[tuple[str, str]] = Counter()
    opened: Counter[tuple[str, str]] = Counter()
    closed: Counter[tuple[str, str]] = Counter()
    pair_of: dict[str, tuple[str, str]] = {}
    closed_unmatched = 0
    hotline = 0
    sent_at: dict[str, datetime] = {}
    replied: dict[tuple[str, str], float] = {}  # (message, recipient) -> seconds to first reply
    overdue: set[tuple[str, str, str]] = set()  # (message, recipient, reason)
    for index, entry in entries:
        count += 1
        first_at = entry.at if first_at is None else min(first_at, entry.at)
        last_at = entry.at if last_at is None else max(last_at, entry.at)
        body = entry.body
        if entry.kind in NOTICE_KINDS:
            owner = field_str(index, body, "owner")
            owners.add(owner)
            notices.append(
                (
                    owner,
                    field_str(index, body, "kind"),
                    field_num(index, body, "notice_s"),
                    field_bool(index, body, "late"),
                )
            )
        elif entry.kind is Kind.PARTY_ADDED:
            registered.add(field_str(index, body, "id"))
        elif entry.kind is Kind.CONFLICT_OPENED:
            a = field_str(index, field_map(index, body, "a"), "owner")
            b = field_str(index, field_map(index, body, "b"), "owner")
            raised[(a, b)] += 1
            opened[_pair(a, b)] += 1
            pair_of[field_str(index, body, "id")] = _pair(a, b)
        elif entry.kind is Kind.CONFLICT_CLOSED:
            pair = pair_of.get(field_str(index, body, "id"))
            if pair is None:
                closed_unmatched += 1
            else:
                closed[pair] += 1
        elif entry.kind in HOTLINE_KINDS:
            hotline += 1
            if entry.kind is Kind.MESSAGE_SENT:
                sent_at[field_str(index, body, "id")] = entry.at
            elif entry.kind is Kind.MESSAGE_REPLIED:
                mid, by = field_str(index, body, "id"), field_str(index, body, "by")
                if mid in sent_at and (mid, by) not in replied:
                    replied[(mid, by)] = (entry.at - sent_at[mid]).total_seconds()
            elif entry.kind is Kind.ESCALATED:
                key = (field_str(index, body, "message"), field_str(index, body, "recipient"))
                overdue.add((*key, field_str(index, body, "reason")))

    by_party: defaultdict[str, list[tuple[float, bool]]] = defaultdict(list)
    by_kind: defaultdict[str, list[tuple[float, bool]]] = defaultdict(list)
    for owner, kind, notice_s, late in notices:
        by_party[owner].append((notice_s, late))
        by_kind[kind].append((notice_s, late))

    recipients = registered or owners
    sent: Counter[tuple[str, str]] = Counter()
    for owner, *_ in notices:
        for other in recipients:
            if other != owner:
                sent[(owner, other)] += 1
    nonzero = {p for p, n in sent.items() if n} | {p for p, n in raised.items() if n}
    listed = sorted(nonzero | {(b, a) for a, b in nonzero})
    return LogStats(
        entries=count,
        first_at=first_at,
        last_at=last_at,
        notice_all=Distribution.of([(n, late) for _, _, n, late in notices]) if notices else None,
        notice_by_party={k: Distribution.of(v) for k, v in sorted(by_party.items())},
        notice_by_kind={k: Distribution.of(v) for k, v in sorted(by_kind.items())},
        recipients_from="party_added" if registered else "owners_seen",
        reciprocity=tuple(NoticePair(a, b, sent[(a, b)], raised[(a, b)]) for a, b in listed),
        conflicts=tuple(ConflictPair(a, b, opened[(a, b)], closed[(a, b)]) for a, b in sorted(opened)),
        closed_unmatched=closed_unmatched,
        hotline=_hotline(hotline, len(sent_at), replied, overdue),
    )


def _hotline(
    entries: int, messages: int, replied: Mapping[tuple[str, str], float], overdue: set[tuple[str, str, str]]
) -> Hotline:
    times: defaultdict[str, list[float]] = defaultdict(list)
    for (_, by), seconds in replied.items():
        times[by].append(seconds)
    late: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for _, recipient, reason in overdue:
        late[recipient][reason] += 1
    return Hotline(
        entries,
        messages,
        {k: ReplyTimes.of(v) for k, v in sorted(times.items())},
        {k: {r: v[r] for r in ("not_delivered", "not_replied")} for k, v in sorted(late.items())},
    )


# -- the readable table ---------------------------------------------------------------


def _rows(header: Sequence[str], rows: Sequence[Sequence[object]], left: int = 1) -> list[str]:
    """Aligned columns: the first `left` to the left, numbers to the right."""
    cells = [list(header)] + [[_cell(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    out = []
    for n, r in enumerate(cells):
        out.append(
            "  ".join(
                c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if value == int(value) else f"{value:.1f}"
    return str(value)


def _notice_rows(label: str, groups: Mapping[str, Distribution]) -> list[str]:
    header = [label, "notices", "min_s", "p10_s", "median_s", "p90_s", "max_s", "late", "late_%"]
    rows = [
        [name, d.count, d.min_s, d.p10_s, d.median_s, d.p90_s, d.max_s, d.late, f"{100 * d.late_share:.1f}"]
        for name, d in groups.items()
    ]
    return _rows(header, rows)


def format_table(stats: LogStats) -> str:
    """The statistics as plain-text tables, one section a heading."""
    span = (
        f"{format_time(stats.first_at)} .. {format_time(stats.last_at)}"
        if stats.first_at and stats.last_at
        else "empty"
    )
    lines = [f"log: {stats.entries} entries, {span}", ""]
    lines.append("notice lead times by party")
    if stats.notice_all is None:
        lines += ["  no notices in this log", ""]
    else:
        lines += _notice_rows("party", {**stats.notice_by_party, "(all)": stats.notice_all}) + [""]
        lines += ["notice lead times by kind"]
        lines += _notice_rows("kind", stats.notice_by_kind) + [""]
    who = "registered party" if stats.recipients_from == "party_added" else "owner seen in the log"
    lines.append(f"reciprocity (a notice reaches every other {who})")
    if stats.reciprocity:
        rows = [[p.sender, p.recipient, p.notices, p.conflicts_raised] for p in stats.reciprocity]
        lines += _rows(["from", "to", "notices", "conflicts_raised"], rows, left=2)
    else:
        lines.append("  no notices between parties")
    lines += ["", "conflicts per pair"]
    if stats.conflicts:
        rows = [[f"{p.first} / {p.second}", p.opened, p.closed] for p in stats.conflicts]
        lines += _rows(["parties", "opened", "closed"], rows)
    else:
        lines.append("  no conflicts in this log")
    if stats.closed_unmatched:
        lines.append(f"  closed without an opening in this log: {stats.closed_unmatched}")
    lines += ["", "reply times and overdue messages", f"  {stats.hotline.note}"]
    h = stats.hotline
    parties = sorted(set(h.reply_times) | set(h.overdue))
    if parties:
        header = ["party", "replies", "min_s", "median_s", "p90_s", "max_s", "not_delivered", "not_replied"]
        rows = []
        for party in parties:
            t = h.reply_times.get(party)
            late = h.overdue.get(party, {})
            times: list[object] = (
                [t.count, t.min_s, t.median_s, t.p90_s, t.max_s] if t else [0, "-", "-", "-", "-"]
            )
            rows.append([party, *times, late.get("not_delivered", 0), late.get("not_replied", 0)])
        lines += _rows(header, rows)
    return "\n".join(lines)
