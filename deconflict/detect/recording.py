"""Replay of a time-ordered recording of track reports through the tactical detector.

Reports are fed to a `LivePicture` in time order; every `scan_s` seconds of
recording time the picture (each track dead-reckoned to the scan time, tracks silent
for `stale_s` dropped) is scanned, and `ConflictLog` turns the scans into events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from deconflict.detect.picture import ConflictLog, LivePicture
from deconflict.detect.tactical import detect_plane, projection_for
from deconflict.detect.trackfile import times_s, tracks_from_table
from deconflict.model.agreement import ProtectedZone

__all__ = ["ReplayStats", "replay"]


@dataclass
class ReplayStats:
    reports: int = 0
    ignored_stale: int = 0
    scans: int = 0
    tracks_max: int = 0
    conflicts_opened: int = 0
    los_started: int = 0
    still_open: int = 0
    #: the recording's times were timestamps (seconds since 1970 UTC), not plain numbers
    absolute_time: bool = False


def replay(
    table: pa.Table,
    zones: Mapping[str, ProtectedZone],
    default_kind: str,
    *,
    same_party: bool,
    scan_s: float = 10.0,
    stale_s: float = 60.0,
    stats: ReplayStats | None = None,
    progress: Callable[[int], object] | None = None,
) -> Iterator[dict[str, Any]]:
    """Events of the recording in `table` (see `ConflictLog`), each with `time_s`: the
    scan's time in the recording's seconds. `progress(n)` is told of each n rows fed."""
    stats = stats if stats is not None else ReplayStats()
    times, stats.absolute_time = times_s(table)
    tracks = tracks_from_table(table, zones.keys(), default_kind, unique=False)
    picture = LivePicture(projection_for(tracks.lon_deg, tracks.lat_deg), zones)
    log = ConflictLog()
    if len(times) == 0:
        return
    scan = float(times[0])
    start = 0
    while True:
        stop = int(np.searchsorted(times, scan, side="right"))
        if stop > start:
            stats.ignored_stale += picture.update(times[start:stop], tracks.rows(start, stop))
            stats.reports += stop - start
            if progress is not None:
                progress(stop - start)
            start = stop
        for tid in picture.drop_older_than(scan - stale_s):
            for key in [k for k in log.open if tid in k]:
                yield from log.close(scan, key)
        found = detect_plane(picture.at(scan), same_party=same_party)
        stats.scans += 1
        stats.tracks_max = max(stats.tracks_max, len(picture))
        for event in log.scan(scan, found, picture.ids):
            stats.conflicts_opened += event["event"] == "conflict_opened"
            stats.los_started += event["event"] == "los_started"
            yield event
        if start >= len(times):
            break
        scan += scan_s
    stats.still_open = len(log.open)
