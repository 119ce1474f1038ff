"""`deconflict detect` and `deconflict replay` run as real processes on CSV and Parquet files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyproj import Geod

from deconflict.detect.picture import LivePicture
from deconflict.detect.tactical import Tracks
from deconflict.geometry.projection import LocalProjection
from deconflict.model.agreement import ProtectedZone

GEOD = Geod(ellps="WGS84")
LON0, LAT0 = 8.5, 47.0
HEADER = ["track_id", "party", "lat", "lon", "alt_m", "gs_mps", "trk_deg", "vs_mps"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deconflict", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


def at(east_m: float, north_m: float) -> tuple[float, float]:
    """(lat, lon) that far east and north of the reference point."""
    lon, lat, _ = GEOD.fwd(LON0, LAT0, 90.0, east_m)
    lon, lat, _ = GEOD.fwd(lon, lat, 0.0, north_m)
    return float(lat), float(lon)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def track(tid: str, party: str, east: float, north: float, alt: float, gs: float, trk: float, vs: float = 0.0,
          **extra: Any) -> dict[str, Any]:  # fmt: skip
    lat, lon = at(east, north)
    values = (tid, party, lat, lon, alt, gs, trk, vs)
    return {**dict(zip(HEADER, values, strict=True)), **extra}


def snapshot() -> list[dict[str, Any]]:
    return [
        # head-on across parties: 20 km apart at 200 m/s closing, CPA at 100 s, 0 m
        track("N1", "north", 0, 0, 3000, 100, 90),
        track("S1", "south", 20_000, 0, 3000, 100, 270),
        # the same party's pair on a collision course: only with --all-pairs
        track("N2", "north", 0, 60_000, 5000, 100, 90),
        track("N3", "north", 20_000, 60_000, 5000, 100, 270),
        # formation flight across parties, 1 km apart, same speed and track: in LoS for ever
        track("S2", "south", 0, -60_000, 8000, 150, 45),
        track("D1", "drones", 700, -60_700, 8000, 150, 45),
        # far away from everyone
        track("X1", "shield", 90_000, 90_000, 1000, 50, 0),
    ]


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_detect_csv_prints_one_json_line_per_conflicting_pair(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "snap.csv", snapshot())
    out = run("detect", str(path))
    assert out.returncode == 0, out.stderr
    found = lines(out.stdout)
    assert [(f["a"], f["b"]) for f in found] == [("N1", "S1"), ("S2", "D1")]
    head_on, formation = found
    assert head_on["t_cpa_s"] == pytest.approx(100.0, rel=2e-3)
    # S1 sits on the geodesic east of N1, which curves 34 m south of N1's parallel in 20 km
    assert head_on["d_cpa_m"] == pytest.approx(34, abs=3) and head_on["los"] is False
    assert head_on["t_in_s"] == pytest.approx((20_000 - 9_260) / 200, rel=3e-3)
    # holding the same track 990 m apart, the two converge only as meridians do (cm/s): inside for hours
    assert formation["los"] is True and formation["t_in_s"] < -10_000 and formation["t_out_s"] > 10_000
    assert set(formation) == {"a", "b", "t_cpa_s", "d_cpa_m", "t_in_s", "t_out_s", "los"}

    out = run("detect", str(path), "--all-pairs")
    assert [(f["a"], f["b"]) for f in lines(out.stdout)] == [("N1", "S1"), ("N2", "N3"), ("S2", "D1")]

    # a 500 m zone: the formation (990 m apart) is clear; a 60 s look-ahead misses the head-on (in at 97.5 s)
    out = run("detect", str(path), "--radius-m", "500", "--lookahead-s", "60")
    assert lines(out.stdout) == []
    out = run("detect", str(path), "--radius-m", "500", "--half-height-m", "10")
    assert [(f["a"], f["b"]) for f in lines(out.stdout)] == [("N1", "S1")]


def test_detect_parquet_gives_the_same_answer_and_kinds_set_the_zones(tmp_path: Path) -> None:
    rows = snapshot()
    csv_out = run("detect", str(write_csv(tmp_path / "snap.csv", rows))).stdout
    path = tmp_path / "snap.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    out = run("detect", str(path))
    assert out.returncode == 0, out.stderr
    assert out.stdout == csv_out
    # as drones (50 m, 30 s look-ahead) nothing here conflicts; with a kind column, per pair the larger zone
    assert lines(run("detect", str(path), "--kind", "uas_flight").stdout) == []
    mixed = [dict(r, kind="crewed_flight" if r["track_id"] == "S1" else "uas_flight") for r in rows]
    pq.write_table(pa.Table.from_pylist(mixed), path)
    assert [(f["a"], f["b"]) for f in lines(run("detect", str(path)).stdout)] == [("N1", "S1")]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.pop("vs_mps"), "error: vs_mps: is a required column"),
        (
            lambda r: r.update(lat=91.0) if r["track_id"] == "S1" else None,
            "error: lat[1]: must be a number within",
        ),
        (lambda r: r.update(track_id="N1"), "error: track_id[1]: 'N1' appears twice"),
        (lambda r: r.update(kind="spaceship"), "error: kind[0]: 'spaceship' is not a kind of the agreement"),
    ],
)
def test_detect_bad_file_names_the_column_and_the_rule(tmp_path: Path, edit: Any, message: str) -> None:
    rows = snapshot()
    for r in rows:
        edit(r)
    out = run("detect", str(write_csv(tmp_path / "bad.csv", rows)))
    assert out.returncode == 2 and message in out.stderr and out.stdout == ""


def recording() -> list[dict[str, Any]]:
    """Two aircraft 1 s apart in reports: head-on from 30 km at 200 m/s closing, 300 m
    laterally apart, for 300 s; a third one going nowhere near, silent after 60 s."""
    rows = []
    for t in range(0, 300):
        rows.append(dict(track("A", "north", 100 * t, 0, 3000, 100, 90), time=float(t)))
        rows.append(dict(track("B", "south", 30_000 - 100 * t, 300, 3000, 100, 270), time=float(t)))
        if t < 60:
            rows.append(dict(track("C", "shield", 0, 80_000 + 100 * t, 3000, 100, 0), time=float(t)))
    return rows


def test_replay_prints_each_conflict_and_loss_of_separation_once(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "rec.csv", recording())
    out = run("replay", str(path), "--scan-s", "5")
    assert out.returncode == 0, out.stderr
    events = lines(out.stdout)
    assert [e["event"] for e in events] == ["conflict_opened", "los_started", "los_ended", "conflict_closed"]
    assert all((e["a"], e["b"]) == ("A", "B") for e in events)
    opened, los, los_end, closed = events
    # 5 NM zone, 300 s look-ahead: the pair is in conflict from the first scan, in LoS
    # from (30 km - 9.26 km) / 200 m/s = 104 s to 196 s, clear at 200 s
    assert opened["time"] == 0.0 and opened["t_cpa_s"] == pytest.approx(150, rel=3e-3)
    assert los["time"] == 105.0 and los["los"] is True
    assert los_end["time"] == 200.0 and closed["time"] == 200.0 and closed["duration_s"] == 200.0
    assert "900 reports" not in out.stderr and "660 reports" in out.stderr  # the summary line
    assert "100%" in out.stderr  # the progress bar, on standard error


def test_replay_with_timestamps_prints_rfc3339_times(tmp_path: Path) -> None:
    rows = recording()
    seconds = np.array([int(r["time"]) for r in rows]).astype("timedelta64[s]")
    stamps = pa.array(np.datetime64("2030-06-01T12:00:00", "s") + seconds).cast(pa.timestamp("s", "UTC"))
    path = tmp_path / "rec.parquet"
    pq.write_table(pa.Table.from_pylist(rows).set_column(8, "time", stamps), path)
    expected = [
        "2030-06-01T12:00:00Z",
        "2030-06-01T12:01:45Z",
        "2030-06-01T12:03:20Z",
        "2030-06-01T12:03:20Z",
    ]
    out = run("replay", str(path), "--scan-s", "5", "--quiet")
    assert out.returncode == 0, out.stderr
    assert [e["time"] for e in lines(out.stdout)] == expected
    assert "100%" not in out.stderr
    # the same as RFC 3339 text in a CSV
    texts = [str(v).replace("+00:00", "Z").replace(" ", "T") for v in stamps.to_pylist()]
    path = write_csv(tmp_path / "rec.csv", [dict(r, time=t) for r, t in zip(rows, texts, strict=True)])
    out = run("replay", str(path), "--scan-s", "5", "--quiet")
    assert out.returncode == 0, out.stderr
    assert [e["time"] for e in lines(out.stdout)] == expected


def test_replay_rejects_a_recording_out_of_time_order(tmp_path: Path) -> None:
    rows = recording()
    rows[5]["time"] = 0.5
    out = run("replay", str(write_csv(tmp_path / "rec.csv", rows)), "--quiet")
    assert out.returncode == 2 and "error: time[5]: must not go back" in out.stderr


def test_detect_and_replay_have_help() -> None:
    for cmd in ("detect", "replay"):
        out = run(cmd, "--help")
        assert out.returncode == 0 and "--radius-m" in out.stdout and "--all-pairs" in out.stdout


def test_live_picture_ignores_and_counts_reports_older_than_the_newest() -> None:
    pic = LivePicture(LocalProjection.at(LON0, LAT0), {"k": ProtectedZone(100.0, 30.0, 60.0)})

    def batch(*rows: tuple[str, float]) -> Tracks:
        n = len(rows)
        return Tracks(
            tuple(r[0] for r in rows), ("p",) * n, ("k",) * n,
            np.full(n, LAT0), np.array([r[1] for r in rows]), *(np.zeros(n) for _ in range(4)),
        )  # fmt: skip

    assert pic.update(np.array([10.0, 10.0]), batch(("a", LON0), ("b", LON0 + 0.01))) == 0
    # a's report of t = 5 is older than the one held: ignored and counted; b's t = 12 is taken
    assert pic.update(np.array([5.0, 12.0]), batch(("a", LON0 + 1), ("b", LON0 + 0.02))) == 1
    x = pic.at(12.0).x_m
    assert abs(x[pic.row["a"]]) < 1e-6 and x[pic.row["b"]] > 1_400
    # the newest of two reports of one track in a batch wins, whatever their order
    assert pic.update(np.array([20.0, 15.0]), batch(("a", LON0 + 0.03), ("a", LON0 + 0.04))) == 0
    assert pic.at(20.0).x_m[pic.row["a"]] == pytest.approx(2_280, rel=0.01)
    assert pic.ignored_stale == 1
    assert pic.drop_older_than(13.0) == ["b"] and pic.ids == ["a"] and pic.row == {"a": 0}
