"""Tactical alerts: one per ongoing conflict between two tracks (and per unannounced
track inside another party's reservation), opened, updated, closed; stored, recorded
in the shared record and announced.

`Alerts.apply` takes what one scan found and writes, in one transaction with batched
statements: each alert opened, updated (new CPA figures, when they changed materially:
`material`) or closed; a `tactical_alert_opened` /
`tactical_alert_closed` log entry for each open and close; a `tactical_alert` event
on both parties' streams for each open, close and change of loss of separation; and
for each conflict opened a `CONFLICT_WARNING` (its `traffic` form) through the hotline to both
parties (for an unannounced track, an `IDENTITY_QUERY` to every party).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from deconflict.hotline.catalogue import Code
from deconflict.ids import new_id
from deconflict.ledger.canonical import JSONValue
from deconflict.ledger.entries import Kind
from deconflict.model import SERVICE, Role
from deconflict.model.alert import AlertKind, TacticalAlert
from deconflict.model.geojson import format_time
from deconflict.service.hotline import Batch, Hotline
from deconflict.service.ledger import Ledger
from deconflict.store.base import Store

#: a hotline message to send: code, sender, recipients, fields
Post = tuple[Code, str, Sequence[str], Mapping[str, JSONValue]]

__all__ = ["Alerts", "Found", "alert_json", "material"]


def alert_json(a: TacticalAlert) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": a.id,
        "kind": a.kind.value,
        "track_a": a.track_a,
        "party_a": a.party_a,
        "opened_at": format_time(a.opened_at),
        "updated_at": format_time(a.updated_at),
        "closed_at": None if a.closed_at is None else format_time(a.closed_at),
        "figures": dict(a.figures),
    }
    if a.kind is AlertKind.CONFLICT:
        out |= {"track_b": a.track_b, "party_b": a.party_b}
    else:
        out["filing"] = a.filing
    return out


@dataclass(frozen=True, slots=True)
class Found:
    """One ongoing situation as a scan sees it: `key` identifies it across scans
    (the pair of track ids, or the track and the reservation)."""

    key: tuple[str, str]
    kind: AlertKind
    track_a: str
    party_a: str
    track_b: str | None = None
    party_b: str | None = None
    filing: str | None = None
    figures: Mapping[str, Any] = field(default_factory=dict)
    #: the message fields when it opens (conflicts: the agreed zone too)
    agreed: tuple[float, float] = (0.0, 0.0)


#: an update is written when the miss distance moved by more than this part of the zone's radius
D_CPA_FRACTION = 0.1
#: ... or the time of closest approach (or of the loss of separation) moved by more than
#: this part of the time left until it, and at least `T_MIN_S`
T_FRACTION = 0.1
T_MIN_S = 1.0


def _instant(figures: Mapping[str, Any], name: str, at_s: float) -> float | None:
    """A figure in seconds from `at_s` as an absolute instant (None stays None)."""
    v = figures.get(name)
    return None if v is None else at_s + float(v)


def material(old: TacticalAlert, found: Found, now: datetime) -> bool:
    """Whether a scan's figures for an open alert differ from the stored ones enough to
    be written (the rule of `Alerts.apply`). Stored figures are relative to the alert's
    `updated_at`, so they are compared as instants: an alert's CPA does not "move" only
    because time passed.

    A conflict: loss of separation begun or ended; the CPA distance moved by more than
    `D_CPA_FRACTION` of the agreed radius; the CPA time or the time separation is lost
    (`t_in_s`) moved by more than `T_FRACTION` of the time left until it, at least
    `T_MIN_S`. Smaller changes are the jitter of dead-reckoned reports: the alert's
    meaning (who, how close, when) is unchanged. An unannounced track: any move (they
    are few, and each position is news to the reservation's owner)."""
    new, was = found.figures, old.figures
    if old.kind is not AlertKind.CONFLICT:
        return dict(new) != dict(was)
    if bool(new.get("los")) != bool(was.get("los")):
        return True
    d_new, d_was = new.get("d_cpa_m"), was.get("d_cpa_m")
    if (d_new is None) != (d_was is None):
        return True
    if (
        d_new is not None
        and d_was is not None
        and abs(float(d_new) - float(d_was)) > D_CPA_FRACTION * found.agreed[0]
    ):
        return True
    now_s, then_s = now.timestamp(), old.updated_at.timestamp()
    for name in ("t_cpa_s", "t_in_s"):
        a, b = _instant(new, name, now_s), _instant(was, name, then_s)
        if (a is None) != (b is None):
            return True
        if a is not None and b is not None and abs(a - b) > max(T_MIN_S, T_FRACTION * max(a - now_s, 0.0)):
            return True
    return False


class Alerts:
    """The open alerts of this process, by key; the store holds every alert. Used by one
    scan at a time (`Tactical`'s scan lock)."""

    def __init__(self, store: Store, ledger: Ledger, hotline: Hotline) -> None:
        self.store = store
        self.ledger = ledger
        self.hotline = hotline
        self.open: dict[tuple[str, str], TacticalAlert] = {}
        self._loaded = False

    def _closed(
        self, batch: Batch, a: TacticalAlert, now: datetime, reason: str
    ) -> tuple[TacticalAlert, dict[str, Any]]:
        """`a` closed at `now` (and as the API shows it): its log entry and events queued in `batch`."""
        closed = replace(a, closed_at=now, updated_at=now)
        body: dict[str, JSONValue] = {
            "id": a.id, "kind": a.kind.value, "reason": reason,
            "duration_s": (now - a.opened_at).total_seconds(),
        }  # fmt: skip
        batch.entries.append(self.ledger.entry(Kind.TACTICAL_ALERT_CLOSED, body, now))
        shown = alert_json(closed)
        self._announce(batch, closed, shown, "closed", now)
        return closed, shown

    def _announce(
        self, batch: Batch, a: TacticalAlert, shown: dict[str, Any], change: str, now: datetime
    ) -> None:
        data = {"change": change, "alert": shown}
        for party in a.parties:
            batch.event(party, now, "tactical_alert", data)

    def _post(self, a: TacticalAlert, f: Found, now: datetime, everyone: list[str]) -> Post | None:
        """The hotline message an alert opening sends (None: nobody to send it to)."""
        codes = self.hotline.catalogue.codes
        if a.kind is AlertKind.CONFLICT:
            t_cpa = float(f.figures.get("t_cpa_s") or 0.0)
            fields: dict[str, JSONValue] = {
                "conflict": a.id, "track_a": a.track_a, "party_a": a.party_a,
                "track_b": a.track_b or "", "party_b": a.party_b or "",
                "time": format_time(now + timedelta(seconds=max(t_cpa, 0.0))),
                "horizontal_separation": round(float(f.figures.get("d_cpa_m") or 0.0), 1),
                "agreed_horizontal": f.agreed[0], "agreed_vertical": f.agreed[1],
            }  # fmt: skip
            # its `traffic` form: two tracks
            return codes["CONFLICT_WARNING"], SERVICE, a.parties, fields
        if not everyone:
            return None
        fig = f.figures
        fields = {
            "track": a.track_a,
            "position": [round(float(fig["lon"]), 6), round(float(fig["lat"]), 6)],
            "altitude": round(float(fig["alt_m"]), 1),
            "time": format_time(now),
        }
        return codes["IDENTITY_QUERY"], SERVICE, everyone, fields

    def apply(
        self, found: list[Found], scope: set[str], now: datetime, *, gone: Set[str] = frozenset()
    ) -> list[dict[str, Any]]:
        """A scan's findings. `scope`: the track ids this scan looked at (an open alert on
        one of them that was not found again closes); `gone`: tracks that left the
        picture (their alerts close). Returns the changes, as the API shows them.

        The changes are worked out first, then written in one transaction with batched
        statements: the alerts opened, materially updated (`material`) and closed, their
        log entries (opened, closed), events and hotline messages. This process's open
        alerts follow only once it commits (a failed write leaves them as they were)."""
        seen = {f.key for f in found}
        looked = scope | gone
        closing = [k for k, a in self.open.items() if k not in seen and {a.track_a, a.track_b} & looked]
        opened: list[tuple[Found, TacticalAlert]] = []
        updated: list[tuple[Found, TacticalAlert, bool]] = []  # (..., LoS changed)
        for f in found:
            a = self.open.get(f.key)
            if a is None:
                a = TacticalAlert(
                    new_id(), f.kind, f.track_a, f.party_a, f.track_b, f.party_b, f.filing,
                    now, now, None, dict(f.figures),
                )  # fmt: skip
                opened.append((f, a))
            elif material(a, f, now):
                los = bool(f.figures.get("los")) != bool(a.figures.get("los"))
                updated.append((f, replace(a, updated_at=now, figures=dict(f.figures)), los))
        if not opened and not updated and not closing and self._loaded:
            return []
        batch = Batch()
        changes: list[dict[str, Any]] = []
        with self.store.write() as w:
            # at the first scan of this process: alerts left open by a previous one are
            # closed (the picture they were about is gone; this scan opens them anew)
            stale = [] if self._loaded else w.tactical_alerts(open_only=True, limit=100_000)
            written = [self._closed(batch, a, now, "restart")[0] for a in stale]
            everyone = (
                [p.id for p in w.list_parties() if p.role in (Role.OPERATOR, Role.OBSERVER)]
                if any(a.kind is not AlertKind.CONFLICT for _, a in opened)
                else []
            )
            posts: list[Post] = []
            for f, a in opened:
                written.append(a)
                shown = alert_json(a)
                body: dict[str, JSONValue] = {
                    k: v for k, v in shown.items() if k not in ("closed_at", "updated_at")
                }
                batch.entries.append(self.ledger.entry(Kind.TACTICAL_ALERT_OPENED, body, now))
                self._announce(batch, a, shown, "opened", now)
                post = self._post(a, f, now, everyone)
                if post is not None:
                    posts.append(post)
                changes.append({"change": "opened", "alert": shown})
            for _, a, los in updated:
                written.append(a)
                shown = alert_json(a)
                if los:
                    self._announce(
                        batch, a, shown, "los_started" if a.figures.get("los") else "los_ended", now
                    )
                changes.append({"change": "updated", "alert": shown})
            for k in closing:
                closed, shown = self._closed(batch, self.open[k], now, "gone" if set(k) & gone else "clear")
                written.append(closed)
                changes.append({"change": "closed", "alert": shown})
            w.put_tactical_alerts(written)
            if posts:
                self.hotline.post_many(w, batch, posts, now)
            batch.flush(w, self.ledger)
        self._loaded = True
        for f, a in opened:
            self.open[f.key] = a
        for f, a, _ in updated:
            self.open[f.key] = a
        for k in closing:
            del self.open[k]
        if batch.events:
            self.hotline.bell.ring()
        return changes

    def list(self, *, open_only: bool = False, limit: int = 1000) -> list[TacticalAlert]:
        with self.store.read() as r:
            return r.tactical_alerts(open_only=open_only, limit=limit)
