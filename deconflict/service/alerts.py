"""Tactical alerts: one per ongoing conflict between two tracks (and per unannounced
track inside another party's reservation), opened, updated, closed; stored, recorded
in the shared record and announced.

`Alerts.apply` takes what one scan found and writes, in one transaction: each alert
opened, updated (new CPA figures) or closed; a `tactical_alert_opened` /
`tactical_alert_closed` log entry for each open and close; a `tactical_alert` event
on both parties' streams for each open, close and change of loss of separation; and
for each conflict opened a `CONFLICT_WARNING` (its `traffic` form) through the hotline to both
parties (for an unannounced track, an `IDENTITY_QUERY` to every party).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Set
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from deconflict.hotline.catalogue import Code
from deconflict.ledger.canonical import JSONValue
from deconflict.ledger.entries import Kind
from deconflict.model import SERVICE, Role
from deconflict.model.alert import AlertKind, TacticalAlert
from deconflict.model.geojson import format_time
from deconflict.service.hotline import Batch, Hotline
from deconflict.service.ledger import Ledger
from deconflict.store.base import Store, Writer

__all__ = ["Alerts", "Found", "alert_json"]


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


class Alerts:
    """The open alerts of this process, by key; the store holds every alert."""

    def __init__(self, store: Store, ledger: Ledger, hotline: Hotline) -> None:
        self.store = store
        self.ledger = ledger
        self.hotline = hotline
        self.open: dict[tuple[str, str], TacticalAlert] = {}
        self._loaded = False

    def _recover(self, w: Writer, batch: Batch, now: datetime) -> None:
        """At the first scan of this process: alerts left open by a previous one are
        closed (the picture they were about is gone; the next scan opens them anew)."""
        self._loaded = True
        for a in w.tactical_alerts(open_only=True, limit=100_000):
            self._close(w, batch, a, now, "restart")

    def _close(self, w: Writer, batch: Batch, a: TacticalAlert, now: datetime, reason: str) -> TacticalAlert:
        closed = replace(a, closed_at=now, updated_at=now)
        w.put_tactical_alert(closed)
        body: dict[str, JSONValue] = {
            "id": a.id, "kind": a.kind.value, "reason": reason,
            "duration_s": (now - a.opened_at).total_seconds(),
        }  # fmt: skip
        batch.entries.append(self.ledger.entry(Kind.TACTICAL_ALERT_CLOSED, body, now))
        self._announce(batch, closed, "closed", now)
        return closed

    def _announce(self, batch: Batch, a: TacticalAlert, change: str, now: datetime) -> None:
        data = {"change": change, "alert": alert_json(a)}
        for party in a.parties:
            batch.event(party, now, "tactical_alert", data)

    def _everyone(self, w: Writer) -> list[str]:
        return [p.id for p in w.list_parties() if p.role in (Role.OPERATOR, Role.OBSERVER)]

    def _message(self, w: Writer, batch: Batch, a: TacticalAlert, f: Found, now: datetime) -> None:
        codes = self.hotline.catalogue.codes
        if a.kind is AlertKind.CONFLICT:
            code: Code = codes["CONFLICT_WARNING"]  # its `traffic` form: two tracks
            t_cpa = float(f.figures.get("t_cpa_s") or 0.0)
            fields: dict[str, JSONValue] = {
                "conflict": a.id, "track_a": a.track_a, "party_a": a.party_a,
                "track_b": a.track_b or "", "party_b": a.party_b or "",
                "time": format_time(now + timedelta(seconds=max(t_cpa, 0.0))),
                "horizontal_separation": round(float(f.figures.get("d_cpa_m") or 0.0), 1),
                "agreed_horizontal": f.agreed[0], "agreed_vertical": f.agreed[1],
            }  # fmt: skip
            self.hotline.post(w, batch, code, SERVICE, a.parties, fields, now)
        else:
            fig = f.figures
            fields = {
                "track": a.track_a,
                "position": [round(float(fig["lon"]), 6), round(float(fig["lat"]), 6)],
                "altitude": round(float(fig["alt_m"]), 1),
                "time": format_time(now),
            }
            recipients = self._everyone(w)
            if recipients:
                self.hotline.post(w, batch, codes["IDENTITY_QUERY"], SERVICE, recipients, fields, now)

    def apply(
        self, found: list[Found], scope: set[str], now: datetime, *, gone: Set[str] = frozenset()
    ) -> list[dict[str, Any]]:
        """A scan's findings. `scope`: the track ids this scan looked at (an open alert on
        one of them that was not found again closes); `gone`: tracks that left the
        picture (their alerts close). Returns the changes, as the API shows them."""
        batch = Batch()
        changes: list[dict[str, Any]] = []
        seen = {f.key for f in found}
        looked = scope | gone
        closing = [k for k, a in self.open.items() if k not in seen and {a.track_a, a.track_b} & looked]
        if not found and not closing and self._loaded:
            return changes
        with self.store.write() as w:
            if not self._loaded:
                self._recover(w, batch, now)
            for f in found:
                a = self.open.get(f.key)
                if a is None:
                    a = TacticalAlert(
                        str(uuid.uuid4()), f.kind, f.track_a, f.party_a, f.track_b, f.party_b, f.filing,
                        now, now, None, dict(f.figures),
                    )  # fmt: skip
                    self.open[f.key] = a
                    w.put_tactical_alert(a)
                    body: dict[str, JSONValue] = {
                        k: v for k, v in alert_json(a).items() if k not in ("closed_at", "updated_at")
                    }
                    batch.entries.append(self.ledger.entry(Kind.TACTICAL_ALERT_OPENED, body, now))
                    self._announce(batch, a, "opened", now)
                    self._message(w, batch, a, f, now)
                    changes.append({"change": "opened", "alert": alert_json(a)})
                else:
                    was_los = bool(a.figures.get("los"))
                    a = replace(a, updated_at=now, figures=dict(f.figures))
                    self.open[f.key] = a
                    w.put_tactical_alert(a)
                    if bool(f.figures.get("los")) != was_los:
                        self._announce(batch, a, "los_started" if not was_los else "los_ended", now)
                    changes.append({"change": "updated", "alert": alert_json(a)})
            for k in closing:
                closed = self._close(w, batch, self.open.pop(k), now, "gone" if set(k) & gone else "clear")
                changes.append({"change": "closed", "alert": alert_json(closed)})
            batch.flush(w, self.ledger)
        if batch.events:
            self.hotline.bell.ring()
        return changes

    def list(self, *, open_only: bool = False, limit: int = 1000) -> list[TacticalAlert]:
        with self.store.read() as r:
            return r.tactical_alerts(open_only=open_only, limit=limit)
