"""`LivePicture`'s kept columns and changed flags, against a plain reference: a dict of
the newest report per track, fed the same batches one report at a time."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from deconflict.detect.picture import LivePicture
from deconflict.detect.tactical import Tracks
from deconflict.geometry.projection import LocalProjection
from deconflict.model.agreement import ProtectedZone

LON0, LAT0 = 35.0, 33.0
KEEP = {"callsign": object, "alt_m": float}

report = st.tuples(st.sampled_from("abcde"), st.integers(0, 20), st.sampled_from([None, "X1", "Y2"]))
batches = st.lists(st.lists(report, min_size=1, max_size=8), min_size=1, max_size=6)


def feed(pic: LivePicture, rows: list[tuple[str, int, str | None]], seq: int) -> int:
    n = len(rows)
    alt = np.array([1000.0 * seq + k for k in range(n)])  # tells which report was taken
    tracks = Tracks(
        tuple(r[0] for r in rows), ("p",) * n, ("k",) * n, np.full(n, LAT0), np.full(n, LON0), alt,
        *(np.zeros(n) for _ in range(3)),
    )  # fmt: skip
    ignored, taken = pic.apply(
        np.array([float(r[1]) for r in rows]), tracks, {"callsign": [r[2] for r in rows], "alt_m": alt}
    )
    assert len(set(taken.tolist())) == len(taken)  # one report taken per track at most
    return ignored


@settings(max_examples=200)
@given(batches, st.integers(0, 20))
def test_kept_columns_and_changed_flags_follow_the_newest_report(
    data: list[list[Any]], drop_before: int
) -> None:
    pic = LivePicture(LocalProjection.at(LON0, LAT0), {"k": ProtectedZone(50.0, 15.0, 30.0)}, KEEP)
    held: dict[str, tuple[float, str | None, float]] = {}  # track -> (time, callsign, alt)
    changed: set[str] = set()
    for seq, rows in enumerate(data):
        ignored = 0
        order = sorted(range(len(rows)), key=lambda k: rows[k][1])  # time order, stable
        for k in order:
            track, t, callsign = rows[k]
            if track in held and t < held[track][0]:
                ignored += 1
            elif track not in held or t >= held[track][0]:
                held[track] = (float(t), callsign, 1000.0 * seq + k)
                changed.add(track)
        assert feed(pic, rows, seq) == ignored
        if seq == len(data) // 2:  # a scan in the middle
            assert {pic.ids[r] for r in pic.take_changed().tolist()} == changed
            changed = set()
    got = {
        tid: (float(pic.column("t")[r]), pic.kept("callsign")[r], float(pic.kept("alt_m")[r]))
        for tid, r in pic.row.items()
    }
    assert got == held
    # dropping the silent keeps every column and flag with its track
    gone = pic.drop_older_than(float(drop_before))
    assert sorted(gone) == sorted(t for t, v in held.items() if v[0] < drop_before)
    left = {t: v for t, v in held.items() if v[0] >= drop_before}
    assert {tid: (float(pic.column("t")[r]), pic.kept("callsign")[r], float(pic.kept("alt_m")[r]))
            for tid, r in pic.row.items()} == left  # fmt: skip
    assert {pic.ids[r] for r in pic.take_changed().tolist()} == changed & set(left)
    assert len(pic.take_changed()) == 0
    pic.mark_changed(["a", "zzz"])
    assert [pic.ids[r] for r in pic.take_changed().tolist()] == (["a"] if "a" in left else [])
