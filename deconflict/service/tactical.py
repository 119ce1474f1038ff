"""The live tactical picture as a service: ingest batches of position reports, scan.

**What lives where.** The picture (latest state of every track, numpy arrays in a
`LivePicture`) is kept in this process's memory only; tracks are not persisted. After
a restart the picture is empty until the parties' next reports (they report every few
seconds, so it refills within one reporting period); alerts still open in the store
are closed by the first scan that no longer finds them. With several worker processes
each holds its own picture, fed only by the batches it happened to receive: run one
worker for tactical ingestion (or route every batch to one), as the README says.
What is persisted, in the store and the shared record, is what the parties must be
able to prove later: the alerts (opened, updated, closed) and the intents' state changes.

**When the picture is scanned.** With `scan_interval_s` 0 every batch is scanned (and
its tracks checked for conformance) before its answer, which lists the alerts it
changed. With an interval > 0 (`deconflict serve`'s default, 1 s: a surveillance scan
cycle) a batch only validates and updates the picture; `tick`, called every interval by
the server's scan cycle (`deconflict.api.tracks.scan_every`), scans the tracks reported
since the last tick, dead-reckoned to that instant, so ingestion is not held up by
scanning and no alert waits for another batch. The alerts then reach the parties
through their streams and the hotline, and `GET /v1/tactical/alerts`.

Track ids are per party: a report's `track` is stored as ``party/track``, so two
parties' ids never collide. A track's kind (for its protected zone) is the report's
`kind`, else its intent's kind, else `UNKNOWN_KIND`: the widest zone of the agreement
(unknown traffic is given the most room).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from deconflict.clock import Clock
from deconflict.detect.picture import LivePicture
from deconflict.detect.tactical import Tracks, detect_plane, projection_for
from deconflict.errors import FieldError, Forbidden, InvalidInput
from deconflict.geometry.inside import within
from deconflict.model import Agreement, FilingType, Party, Role
from deconflict.model.agreement import ProtectedZone
from deconflict.model.alert import AlertKind
from deconflict.service.alerts import Alerts, Found
from deconflict.service.conformance import Conformance, Flown
from deconflict.service.filings import Filings
from deconflict.service.hotline import Hotline
from deconflict.service.ledger import Ledger
from deconflict.service.reports import Reports, validate
from deconflict.store.base import Store

__all__ = ["UNKNOWN_KIND", "Ingested", "Scanned", "Tactical", "TrackInfo"]

UNKNOWN_KIND = "(unknown)"
#: a track not heard from for this long leaves the picture
TRACK_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Ingested:
    accepted: int
    ignored_stale: int
    tracks: int
    alerts: list[dict[str, Any]] = field(default_factory=list)
    transitions: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Scanned:
    """What one scan cycle changed: alerts (as the API shows them) and conformance transitions."""

    tracks: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)
    transitions: list[dict[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class TrackInfo:
    """What the picture's arrays do not hold: who and what a track is, where it was last."""

    party: str
    track: str
    kind: str
    time_s: float
    lat: float
    lon: float
    alt_m: float
    gs_mps: float
    trk_deg: float
    vs_mps: float
    callsign: str | None = None
    icao24: str | None = None
    intent: str | None = None


def _widest(zones: list[ProtectedZone]) -> ProtectedZone:
    out = zones[0]
    for z in zones[1:]:
        out = out.widest(z)
    return out


class Tactical:
    """Ingestion and the live picture, behind one lock (routes run in a thread pool)."""

    def __init__(
        self,
        store: Store,
        agreement: Agreement,
        clock: Clock,
        ledger: Ledger,
        hotline: Hotline,
        filings: Filings,
    ) -> None:
        self.store = store
        self.alerts = Alerts(store, ledger, hotline)
        self.conformance = Conformance(store, agreement, filings)
        self.agreement = agreement
        self.clock = clock
        zones = {name: k.protected_zone for name, k in agreement.kinds.items()}
        zones[UNKNOWN_KIND] = _widest(list(zones.values()))
        self.zones = zones
        self.picture: LivePicture | None = None
        self.info: dict[str, TrackInfo] = {}
        self.lock = threading.Lock()
        #: 0: scan after every batch, before its answer. > 0: batches only update the
        #: picture and `tick` (the server's scan cycle, every this many seconds) scans.
        self.scan_interval_s = 0.0
        #: tracks reported since the last scan
        self._pending: set[str] = set()

    def _intent_kinds(self, caller: Party, intents: set[str]) -> dict[str, str]:
        """The kind of each intent named in a batch; refuses ids that are not the caller's."""
        found: dict[str, str] = {}
        with self.store.read() as r:
            for iid in intents:
                f = r.get_filing(iid)
                if f is not None and f.type is FilingType.INTENT and f.owner == caller.id:
                    found[iid] = f.kind
        return found

    def ingest(self, caller: Party, reports: Reports) -> Ingested:
        """Apply a batch: validated whole first (nothing applied if a row is refused);
        reports older than the newest held for their track are ignored and counted."""
        if caller.role is not Role.OPERATOR:
            raise Forbidden("only an operator reports tracks")
        now_s = self.clock.now().timestamp()
        validate(reports, now_s=now_s, kinds=list(self.agreement.kinds))
        named = {i for i in reports.intent if i is not None}
        kinds = self._intent_kinds(caller, named) if named else {}
        errors = [
            FieldError(f"reports[{i}].intent", f"no intent {iid!r} of {caller.id!r}")
            for i, iid in enumerate(reports.intent)
            if iid is not None and iid not in kinds
        ]
        if errors:
            raise InvalidInput(errors[:50])
        n = len(reports)
        keys = [f"{caller.id}/{t}" for t in reports.track]
        kind = [
            k if k is not None else (kinds[i] if i is not None else UNKNOWN_KIND)
            for k, i in zip(reports.kind, reports.intent, strict=True)
        ]
        tracks = Tracks(
            tuple(keys), (caller.id,) * n, tuple(kind),
            reports.lat, reports.lon, reports.alt_m, reports.gs_mps, reports.trk_deg, reports.vs_mps,
        )  # fmt: skip
        with self.lock:
            if self.picture is None:
                self.picture = LivePicture(projection_for(reports.lon, reports.lat), self.zones)
            picture = self.picture
            ignored = picture.update(reports.time_s, tracks)
            # the rows that won: the picture now holds their time for their track
            held = picture.times(keys)
            won = reports.time_s == held
            last: dict[str, int] = {}
            for i in np.flatnonzero(won).tolist():
                last[keys[i]] = i
            for key, i in last.items():
                self.info[key] = TrackInfo(
                    caller.id, reports.track[i], kind[i], float(reports.time_s[i]),
                    float(reports.lat[i]), float(reports.lon[i]), float(reports.alt_m[i]),
                    float(reports.gs_mps[i]), float(reports.trk_deg[i]), float(reports.vs_mps[i]),
                    reports.callsign[i], reports.icao24[i], reports.intent[i],
                )  # fmt: skip
            self._pending.update(last)
            if self.scan_interval_s > 0:  # the next tick scans them
                return Ingested(n - ignored, ignored, len(picture))
            done = self._cycle(now_s)
            return Ingested(n - ignored, ignored, done.tracks, done.alerts, done.transitions)

    def tick(self, now: datetime | None = None) -> Scanned:
        """One scan cycle at `now` (default: the clock's): the tracks reported since the
        last one scanned, dead-reckoned to `now`, and checked for conformance; tracks
        silent for `TRACK_TIMEOUT_S` dropped (their alerts closed) even if none reported."""
        now_s = (now if now is not None else self.clock.now()).timestamp()
        with self.lock:
            if self.picture is None:
                return Scanned()
            return self._cycle(now_s)

    def _cycle(self, now_s: float) -> Scanned:
        """Scan and conformance-check the pending tracks (call under the lock)."""
        assert self.picture is not None
        keys = list(self._pending)
        alerts = self._scan(keys, now_s)
        self._pending.clear()  # only once scanned: a scan that failed is retried next cycle
        flown = [
            Flown(key, info.intent, info.lon, info.lat, info.alt_m, datetime.fromtimestamp(info.time_s, UTC))
            for key in keys
            if (info := self.info.get(key)) is not None and info.intent is not None
        ]
        transitions = self.conformance.check(flown) if flown else []
        return Scanned(len(self.picture), alerts, transitions)

    def _scan(self, keys: list[str], now_s: float) -> list[dict[str, Any]]:
        """Conflicts involving the tracks of a batch (`keys`), dead-reckoned to now;
        the alerts opened, updated and closed (call under the lock)."""
        assert self.picture is not None
        gone = set(self.forget_stale(now_s))
        keys = [k for k in keys if k in self.info]
        picture = self.picture
        rows = [picture.row[k] for k in keys if k in picture.row]
        found: list[Found] = []
        if rows:
            plane = picture.at(now_s)
            # every track reported since the last scan (a scan cycle's usual case): the full
            # scan finds the same pairs, faster than pairs involving every row
            only = rows if len(rows) < len(plane) else None
            hits = detect_plane(plane, same_party=self.agreement.tactical_same_party, only=only)
            for row in hits.rows(picture.ids):
                a, b = sorted((row["a"], row["b"]))
                ia, ib = self.info[a], self.info[b]
                zone = self.zones[ia.kind].widest(self.zones[ib.kind])
                figures = {k: row[k] for k in ("t_cpa_s", "d_cpa_m", "t_in_s", "t_out_s", "los")}
                found.append(
                    Found((a, b), AlertKind.CONFLICT, a, ia.party, b, ib.party, None, figures,
                          (zone.radius_m, zone.half_height_m))
                )  # fmt: skip
        now = datetime.fromtimestamp(now_s, UTC)
        found += self._unannounced([k for k in keys if self.info[k].intent is None], now)
        if gone:
            self.conformance.forget(gone)
        return self.alerts.apply(found, set(keys), now, gone=gone)

    def _unannounced(self, keys: list[str], now: datetime) -> list[Found]:
        """Tracks flying no intent inside another party's reservation (a live constraint
        whose volumes hold the track's last position, at `now`)."""
        if not keys:
            return []
        with self.store.read() as r:
            reservations = [f for f in r.list_filings(live_only=True) if f.type is FilingType.CONSTRAINT]
        found: list[Found] = []
        for c in reservations:
            for key in keys:
                t = self.info[key]
                if t.party != c.owner and within(c.volumes, t.lon, t.lat, t.alt_m, now):
                    figures = {"lat": t.lat, "lon": t.lon, "alt_m": t.alt_m}
                    found.append(
                        Found((key, c.id), AlertKind.UNANNOUNCED, key, t.party, None, None, c.id, figures)
                    )
        return found

    def forget_stale(self, now_s: float) -> list[str]:
        """Drop tracks not heard from for `TRACK_TIMEOUT_S` (call under the lock)."""
        if self.picture is None:
            return []
        gone = self.picture.drop_older_than(now_s - TRACK_TIMEOUT_S)
        for key in gone:
            self.info.pop(key, None)
        return gone

    def snapshot(self) -> list[TrackInfo]:
        """The current picture: each track's last report."""
        since = self.clock.now().timestamp() - TRACK_TIMEOUT_S
        with self.lock:  # silent tracks are left out here, dropped (alerts closed) by the next scan
            held = [t for t in self.info.values() if t.time_s >= since]
        return sorted(held, key=lambda t: (t.party, t.track))
