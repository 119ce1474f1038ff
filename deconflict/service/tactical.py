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

**Two locks.** `lock` guards the picture: a batch holds it while it puts its reports
in (the newest per track, in the picture's columns: no object per report), a scan only
while it takes its snapshot (the changed rows, every track dead-reckoned, copies of the
columns: a few milliseconds at 100k tracks). Detection, working out the alert changes
and writing them (one transaction, batched statements) happen outside it, so batches
are answered while a scan runs. `_scanning` lets one scan run at a time; with
`scan_interval_s` 0 a batch holds it from its update to its scan, so that its answer
lists exactly the alerts its own tracks changed. A scan that fails (e.g. the store
briefly unavailable) puts its tracks back as pending: the next cycle retries them.

Track ids are per party: a report's `track` is stored as ``party/track``, so two
parties' ids never collide. A track's kind (for its protected zone) is the report's
`kind`, else its intent's kind, else `UNKNOWN_KIND`: the widest zone of the agreement
(unknown traffic is given the most room).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from deconflict.clock import Clock
from deconflict.detect.picture import LivePicture
from deconflict.detect.tactical import PlaneTracks, Tracks, detect_plane, projection_for
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
    """What one scan cycle changed: alerts (as the API shows them) and conformance
    transitions; `locked_s`: how long it held the picture's lock (ingestion waited)."""

    tracks: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)
    transitions: list[dict[str, str]] = field(default_factory=list)
    locked_s: float = 0.0


#: what the picture keeps of each track's last report beside its state (`TrackInfo`)
_KEPT: dict[str, type] = {
    "party": object, "track": object, "kind": object, "callsign": object, "icao24": object, "intent": object,
    "lat": float, "lon": float, "alt_m": float, "gs_mps": float, "trk_deg": float, "vs_mps": float,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """The picture as one scan sees it (taken under the lock, used without it)."""

    rows: NDArray[np.int64]  # the tracks reported since the last scan (rows of `plane`)
    gone: set[str]  # tracks dropped as silent (and, after a failed scan, those it dropped)
    plane: PlaneTracks | None  # every track dead-reckoned to the scan's time (None: nothing pending)
    ids: list[str]  # row -> track id
    cols: dict[str, NDArray[Any]]  # row -> `_KEPT` columns and `time_s` (empty: nothing pending)
    tracks: int


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
    """Ingestion and the live picture (routes run in a thread pool; see the module doc for the locks)."""

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
        #: every track's state, and what `TrackInfo` holds, in columns
        self.picture: LivePicture | None = None
        #: the picture's lock: held by a batch while it updates the picture, and by a scan
        #: only while it takes its snapshot
        self.lock = threading.Lock()
        #: one scan at a time (the cycle's, or with `scan_interval_s` 0 a batch's)
        self._scanning = threading.Lock()
        #: tracks dropped by a scan that then failed: their alerts close at the next one
        self._gone: set[str] = set()
        #: batches read and applied at once (`deconflict.api.tracks` holds it for each
        #: batch): one, so that a scan running beside them, which shares the interpreter
        #: with them, gets a fair part of it
        self.admission = threading.Semaphore(1)
        #: 0: scan after every batch, before its answer. > 0: batches only update the
        #: picture and `tick` (the server's scan cycle, every this many seconds) scans.
        self.scan_interval_s = 0.0

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
        reports older than the newest held for their track are ignored and counted.
        With a scan cycle it only updates the picture (under the lock) and answers."""
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
        if self.scan_interval_s > 0:  # the next tick scans them
            with self.lock:
                ignored = self._take(caller, reports, keys, kind, tracks)
                held = len(self.picture) if self.picture is not None else 0
            return Ingested(n - ignored, ignored, held)
        with self._scanning:  # scanned before the answer: one batch (and its scan) at a time
            with self.lock:
                ignored = self._take(caller, reports, keys, kind, tracks)
            done = self._cycle(now_s)
        return Ingested(n - ignored, ignored, done.tracks, done.alerts, done.transitions)

    def _take(self, caller: Party, reports: Reports, keys: list[str], kind: list[str], tracks: Tracks) -> int:
        """Put a checked batch in the picture (call under the lock); returns how many of
        its reports were older than the newest held for their track."""
        if self.picture is None:
            self.picture = LivePicture(projection_for(reports.lon, reports.lat), self.zones, _KEPT)
        kept = {
            "party": tracks.party, "track": reports.track, "kind": kind, "callsign": reports.callsign,
            "icao24": reports.icao24, "intent": reports.intent, "lat": reports.lat, "lon": reports.lon,
            "alt_m": reports.alt_m, "gs_mps": reports.gs_mps, "trk_deg": reports.trk_deg,
            "vs_mps": reports.vs_mps,
        }  # fmt: skip
        ignored, _ = self.picture.apply(reports.time_s, tracks, kept)
        return ignored

    def tick(self, now: datetime | None = None) -> Scanned:
        """One scan cycle at `now` (default: the clock's): the tracks reported since the
        last one scanned, dead-reckoned to `now`, and checked for conformance; tracks
        silent for `TRACK_TIMEOUT_S` dropped (their alerts closed) even if none reported.
        Batches keep coming in while it runs: it holds the picture's lock only to take
        its snapshot."""
        now_s = (now if now is not None else self.clock.now()).timestamp()
        with self._scanning:
            if self.picture is None:
                return Scanned()
            return self._cycle(now_s)

    def _snapshot(self, now_s: float) -> _Snapshot:
        """What a scan needs, taken under the lock (call under it): the tracks reported
        since the last scan (now no longer pending), those gone silent (dropped from the
        picture), and every track dead-reckoned to `now_s` with its details (copies)."""
        picture = self.picture
        assert picture is not None
        gone = set(picture.drop_older_than(now_s - TRACK_TIMEOUT_S)) | self._gone
        self._gone = set()
        rows = picture.take_changed()
        if not len(rows):
            return _Snapshot(rows, gone, None, picture.ids, {}, len(picture))
        cols = {name: picture.kept(name).copy() for name in _KEPT}
        cols["time_s"] = picture.column("t").copy()
        # `ids` grows only by appending (a drop replaces it, at the next snapshot): rows stay valid
        return _Snapshot(rows, gone, picture.at(now_s), picture.ids, cols, len(picture))

    def _cycle(self, now_s: float) -> Scanned:
        """Scan and conformance-check the pending tracks (call holding `_scanning`): the
        picture's lock only for the snapshot; detection, alerts and their write without it."""
        with self.lock:
            t0 = time.perf_counter()
            snap = self._snapshot(now_s)
            locked_s = time.perf_counter() - t0
        keys = [snap.ids[r] for r in snap.rows.tolist()]
        try:
            alerts = self._scan(snap, keys, now_s)
            transitions = []
            if len(snap.rows):
                flying = snap.rows[_named(snap.cols["intent"][snap.rows])]
                flown = [
                    Flown(snap.ids[r], info.intent, info.lon, info.lat, info.alt_m,
                          datetime.fromtimestamp(info.time_s, UTC))
                    for r in flying.tolist()
                    if (info := _info(snap.cols, r)).intent is not None
                ]  # fmt: skip
                transitions = self.conformance.check(flown) if flown else []
        except BaseException:  # retried by the next cycle
            with self.lock:
                if self.picture is not None:
                    self.picture.mark_changed(keys)
                self._gone |= snap.gone
            raise
        return Scanned(snap.tracks, alerts, transitions, locked_s)

    def _scan(self, snap: _Snapshot, keys: list[str], now_s: float) -> list[dict[str, Any]]:
        """Conflicts involving the snapshot's pending tracks (`keys`), dead-reckoned to
        now; the alerts opened, updated and closed."""
        found: list[Found] = []
        if snap.plane is not None:
            plane = snap.plane
            # every track reported since the last scan (a scan cycle's usual case): the full
            # scan finds the same pairs, faster than pairs involving every row
            only = snap.rows if len(snap.rows) < len(plane) else None
            hits = detect_plane(plane, same_party=self.agreement.tactical_same_party, only=only)
            party, kind = snap.cols["party"], snap.cols["kind"]
            zones: dict[tuple[str, str], tuple[float, float]] = {}
            for ra, rb, row in zip(hits.a.tolist(), hits.b.tolist(), hits.rows(snap.ids), strict=True):
                a, b = row["a"], row["b"]
                if a > b:
                    a, b, ra, rb = b, a, rb, ra
                pair = (kind[ra], kind[rb])
                zone = zones.get(pair)
                if zone is None:
                    z = self.zones[pair[0]].widest(self.zones[pair[1]])
                    zone = zones[pair] = (z.radius_m, z.half_height_m)
                figures = {k: row[k] for k in ("t_cpa_s", "d_cpa_m", "t_in_s", "t_out_s", "los")}
                found.append(
                    Found((a, b), AlertKind.CONFLICT, a, party[ra], b, party[rb], None, figures, zone)
                )
        now = datetime.fromtimestamp(now_s, UTC)
        found += self._unannounced(snap, now)
        if snap.gone:
            self.conformance.forget(snap.gone)
        return self.alerts.apply(found, set(keys), now, gone=snap.gone)

    def _unannounced(self, snap: _Snapshot, now: datetime) -> list[Found]:
        """The snapshot's pending tracks flying no intent inside another party's
        reservation (a live constraint whose volumes hold the track's last position, at `now`)."""
        if not len(snap.rows):
            return []
        with self.store.read() as r:
            reservations = r.list_filings(live_only=True, ftype=FilingType.CONSTRAINT)
        if not reservations:
            return []
        rows = snap.rows[~_named(snap.cols["intent"][snap.rows])]
        tracks = [_info(snap.cols, r) for r in rows.tolist()]
        found: list[Found] = []
        for c in reservations:
            for t in tracks:
                key = f"{t.party}/{t.track}"
                if t.party != c.owner and within(c.volumes, t.lon, t.lat, t.alt_m, now):
                    figures = {"lat": t.lat, "lon": t.lon, "alt_m": t.alt_m}
                    found.append(
                        Found((key, c.id), AlertKind.UNANNOUNCED, key, t.party, None, None, c.id, figures)
                    )
        return found

    def snapshot(self) -> list[TrackInfo]:
        """The current picture: each track's last report."""
        since = self.clock.now().timestamp() - TRACK_TIMEOUT_S
        with self.lock:  # silent tracks are left out here, dropped (alerts closed) by the next scan
            if self.picture is None:
                return []
            cols = {name: self.picture.kept(name).copy() for name in _KEPT}
            cols["time_s"] = self.picture.column("t").copy()
        held = [_info(cols, r) for r in np.flatnonzero(cols["time_s"] >= since).tolist()]
        return sorted(held, key=lambda t: (t.party, t.track))


def _named(values: NDArray[Any]) -> NDArray[np.bool_]:
    """Which of an object column's values are not None."""
    return np.fromiter((v is not None for v in values), bool, count=len(values))


def _info(cols: dict[str, NDArray[Any]], row: int) -> TrackInfo:
    """A track's details from the picture's columns (`_KEPT` and `time_s`)."""
    return TrackInfo(
        cols["party"][row], cols["track"][row], cols["kind"][row], float(cols["time_s"][row]),
        float(cols["lat"][row]), float(cols["lon"][row]), float(cols["alt_m"][row]),
        float(cols["gs_mps"][row]), float(cols["trk_deg"][row]), float(cols["vs_mps"][row]),
        cols["callsign"][row], cols["icao24"][row], cols["intent"][row],
    )  # fmt: skip
