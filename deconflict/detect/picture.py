"""The live picture: the latest state of every track, as numpy arrays, updated by batches.

Positions and velocities are kept in one fixed local plane (chosen for the region
when the picture is made), with each track's report time; `at(t)` dead-reckons every
track to `t` for the detector. A report older than the newest for its track is
ignored and counted. Tracks not heard from for `stale_s` are dropped.

`ConflictLog` turns successive scans into events: one `conflict_opened` and one
`conflict_closed` per ongoing conflict (and `los_started`/`los_ended` for loss of
separation), not one line per scan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np
from numpy.typing import NDArray

from deconflict.detect.tactical import Conflicts, PlaneTracks, Tracks, plane_velocity
from deconflict.geometry.projection import LocalProjection
from deconflict.model.agreement import ProtectedZone

__all__ = ["ConflictLog", "LivePicture"]

_F64 = NDArray[np.float64]
_COLUMNS = ("t", "x", "y", "z", "vx", "vy", "vz", "r", "h", "look")


class LivePicture:
    """Latest state per track id in the plane of `projection`; zones per kind from `zones`.

    `keep` names further per-track columns held beside the state (e.g. a report's
    callsign, or its latitude as given), each `float` or `object`: `apply` takes them
    with a batch and `kept` reads them, row-aligned with `ids`. Each row also carries a
    "changed" flag, set when a report is taken and cleared by `take_changed`: what a
    scan cycle has not seen yet."""

    def __init__(
        self,
        projection: LocalProjection,
        zones: Mapping[str, ProtectedZone],
        keep: Mapping[str, type] | None = None,
    ) -> None:
        self.projection = projection
        self.zones = dict(zones)
        self.ids: list[str] = []
        self.row: dict[str, int] = {}
        self._party_code: dict[str, int] = {}
        self._party: NDArray[np.int64] = np.zeros(0, np.int64)
        self._cols: dict[str, _F64] = {c: np.zeros(0) for c in _COLUMNS}
        self._kept: dict[str, NDArray[Any]] = {
            name: np.zeros(0, np.float64 if kind is float else object) for name, kind in (keep or {}).items()
        }
        self._changed: NDArray[np.bool_] = np.zeros(0, bool)
        self.ignored_stale = 0

    def __len__(self) -> int:
        return len(self.ids)

    def _grow(self, n: int) -> None:
        size = len(self._party)
        if n <= size:
            return
        new = max(n, 2 * size, 64)
        self._party = np.concatenate([self._party, np.zeros(new - size, np.int64)])
        for c in _COLUMNS:
            self._cols[c] = np.concatenate([self._cols[c], np.zeros(new - size)])
        for name, col in self._kept.items():
            self._kept[name] = np.concatenate([col, np.zeros(new - size, col.dtype)])
        self._changed = np.concatenate([self._changed, np.zeros(new - size, bool)])

    def update(self, time_s: _F64, tracks: Tracks) -> int:
        """Take a batch of reports (one time per row, any order); returns how many
        were ignored as older than what the picture holds for their track."""
        return self.apply(time_s, tracks)[0]

    def apply(
        self, time_s: _F64, tracks: Tracks, kept: Mapping[str, Any] | None = None
    ) -> tuple[int, NDArray[np.int64]]:
        """`update`, with the batch's values of the `keep` columns (one per report, each
        a sequence or array); returns the number ignored and the rows taken."""
        x, y = self.projection.forward(tracks.lon_deg, tracks.lat_deg)
        vx, vy = plane_velocity(
            self.projection, tracks.lon_deg, tracks.lat_deg, x, y, tracks.gs_mps, tracks.trk_deg
        )
        n = len(tracks)
        # the newest report of each track in the batch wins; so does the picture's, if newer
        order = np.argsort(time_s, kind="stable")
        rows = np.fromiter(map(self.row.get, tracks.track_id, repeat(-1)), np.int64, count=n)
        for k in order[rows[order] < 0].tolist():  # tracks not held yet, in time order
            tid = tracks.track_id[k]
            r = self.row.get(tid)
            if r is None:
                r = self.row[tid] = len(self.ids)
                self.ids.append(tid)
                self._grow(len(self.ids))
                self._cols["t"][r] = -np.inf
            rows[k] = r
        fresh = time_s >= self._cols["t"][rows]
        # a track reported twice in the batch: its last report (in time order) counts
        last = np.zeros(n, dtype=bool)
        last[order[::-1][np.unique(rows[order[::-1]], return_index=True)[1]]] = True
        take = fresh & last
        ignored = int(np.count_nonzero(~fresh))
        self.ignored_stale += ignored
        at = rows[take]
        kinds = list(dict.fromkeys(tracks.kind))
        table = np.array([[self.zones[k].radius_m, self.zones[k].half_height_m, self.zones[k].lookahead_s]
                          for k in kinds]).reshape(-1, 3)  # fmt: skip
        if len(kinds) == 1:
            zone = np.broadcast_to(table[0], (n, 3))
        else:
            index = {k: i for i, k in enumerate(kinds)}
            zone = table[np.fromiter(map(index.__getitem__, tracks.kind), np.int64, count=n)]
        given = {"t": time_s, "x": x, "y": y, "z": tracks.alt_m, "vx": vx, "vy": vy, "vz": tracks.vs_mps,
                 "r": zone[:, 0], "h": zone[:, 1], "look": zone[:, 2]}  # fmt: skip
        for name, values in given.items():
            self._cols[name][at] = np.asarray(values, dtype=np.float64)[take]
        parties = list(dict.fromkeys(tracks.party))
        if len(parties) == 1:
            self._party[at] = self._party_code.setdefault(parties[0], len(self._party_code))
        else:
            codes = [self._party_code.setdefault(p, len(self._party_code)) for p in tracks.party]
            self._party[at] = np.asarray(codes, dtype=np.int64)[take]
        for name, values in (kept or {}).items():
            col = self._kept[name]
            if col.dtype == object:
                column = np.empty(n, object)
                column[:] = values
            else:
                column = np.asarray(values, dtype=col.dtype)
            col[at] = column[take]
        self._changed[at] = True
        return ignored, at

    def kept(self, name: str) -> NDArray[Any]:
        """A `keep` column, row-aligned with `ids` (a view: copy it to keep it)."""
        return self._kept[name][: len(self.ids)]

    def column(self, name: str) -> _F64:
        """A state column (`t`: report times), row-aligned with `ids` (a view)."""
        return self._cols[name][: len(self.ids)]

    def take_changed(self) -> NDArray[np.int64]:
        """The rows changed since the last call (and clears their flag)."""
        n = len(self.ids)
        rows = np.flatnonzero(self._changed[:n])
        self._changed[:n] = False
        return rows

    def mark_changed(self, ids: Iterable[str]) -> None:
        """Flag these tracks (those still held) as changed again."""
        rows = [r for i in ids if (r := self.row.get(i)) is not None]
        self._changed[rows] = True

    def times(self, ids: list[str]) -> _F64:
        """The report time held for each of `ids` (-inf for a track not held)."""
        rows = np.fromiter((self.row.get(i, -1) for i in ids), dtype=np.int64, count=len(ids))
        out = np.full(len(ids), -np.inf)
        known = rows >= 0
        out[known] = self._cols["t"][rows[known]]
        return out

    def drop_older_than(self, time_s: float) -> list[str]:
        """Forget tracks last heard before `time_s`; returns their ids."""
        n = len(self.ids)
        keep = self._cols["t"][:n] >= time_s
        if keep.all():
            return []
        gone = [self.ids[i] for i in np.flatnonzero(~keep)]
        idx = np.flatnonzero(keep)
        for c in _COLUMNS:
            self._cols[c] = self._cols[c][idx].copy()
        for name, col in self._kept.items():
            self._kept[name] = col[idx].copy()
        self._changed = self._changed[idx].copy()
        self._party = self._party[idx].copy()
        self.ids = [self.ids[i] for i in idx]
        self.row = {t: i for i, t in enumerate(self.ids)}
        return gone

    def at(self, time_s: float) -> PlaneTracks:
        """Every track dead-reckoned from its last report to `time_s` (row i: `ids[i]`)."""
        n = len(self.ids)
        c = {k: v[:n] for k, v in self._cols.items()}
        age = time_s - c["t"]
        return PlaneTracks(
            c["x"] + c["vx"] * age, c["y"] + c["vy"] * age, c["z"] + c["vz"] * age,
            c["vx"].copy(), c["vy"].copy(), c["vz"].copy(), c["r"].copy(), c["h"].copy(), c["look"].copy(),
            self._party[:n].copy(),
        )  # fmt: skip


@dataclass
class _Open:
    since_s: float
    los_since_s: float | None


@dataclass
class ConflictLog:
    """Ongoing conflicts by pair of track ids, and the events of each new scan."""

    open: dict[tuple[str, str], _Open] = field(default_factory=dict)

    def scan(self, time_s: float, found: Conflicts, ids: list[str]) -> list[dict[str, Any]]:
        """Events at `time_s` given this scan's conflicts: opened, LoS started/ended, closed."""
        events: list[dict[str, Any]] = []
        now: set[tuple[str, str]] = set()
        for row in found.rows(ids):
            a, b = sorted((row["a"], row["b"]))
            key = (a, b)
            now.add(key)
            figures = {k: row[k] for k in ("t_cpa_s", "d_cpa_m", "t_in_s", "t_out_s", "los")}
            state = self.open.get(key)
            if state is None:
                state = self.open[key] = _Open(time_s, None)
                events.append({"time_s": time_s, "event": "conflict_opened", "a": a, "b": b, **figures})
            if row["los"] and state.los_since_s is None:
                state.los_since_s = time_s
                events.append({"time_s": time_s, "event": "los_started", "a": a, "b": b, **figures})
            elif not row["los"] and state.los_since_s is not None:
                events.append(self._los_ended(time_s, key, state))
        for key in sorted(set(self.open) - now):
            events.extend(self.close(time_s, key))
        return events

    def _los_ended(self, time_s: float, key: tuple[str, str], state: _Open) -> dict[str, Any]:
        assert state.los_since_s is not None
        event = {"time_s": time_s, "event": "los_ended", "a": key[0], "b": key[1],
                 "duration_s": time_s - state.los_since_s}  # fmt: skip
        state.los_since_s = None
        return event

    def close(self, time_s: float, key: tuple[str, str]) -> list[dict[str, Any]]:
        state = self.open.pop(key)
        events = [self._los_ended(time_s, key, state)] if state.los_since_s is not None else []
        events.append({"time_s": time_s, "event": "conflict_closed", "a": key[0], "b": key[1],
                       "duration_s": time_s - state.since_s})  # fmt: skip
        return events
