"""Real data (issue 4, part 6): a day of ADS-B over Switzerland replayed through the detector.

The `traffic` library (optional; `pip install traffic==2.13`) ships sample collections
that load offline; `traffic.data.samples.switzerland` is 10-second samples of the
aircraft seen over Switzerland on 1 August 2018. Its reports (feet, knots, ft/min) are
turned into a recording in the units of `deconflict replay` (airborne reports with a
position, altitude, speed and track; track id the ICAO 24-bit address; party the
callsign's first three letters, an airline's ICAO code) and replayed with
`deconflict.detect.recording.replay` (the same code as the command): every pair of
aircraft checked (there are no parties among airlines here, so `--all-pairs`), crewed
zone 5 NM, 1,000 ft, 300 s look-ahead, a scan every 10 s, tracks silent for 30 s dropped.

It prints what the replay finds: conflicts and losses of separation, where (the
nearest major aerodrome) and at what height, and how long; and the time per scan.

    .venv/bin/python bench/switzerland.py
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from deconflict import agreements
from deconflict.detect.recording import ReplayStats, replay
from deconflict.model.agreement import ProtectedZone

OUT_DIR = Path(__file__).resolve().parent / "out"
FT, KT, FPM = 0.3048, 1852 / 3600, 0.3048 / 60
AERODROMES = {
    "LSZH Zurich": (47.4647, 8.5492),
    "LSGG Geneva": (46.2381, 6.1089),
    "LFSB Basel-Mulhouse": (47.5896, 7.5299),
    "LSZB Bern": (46.9141, 7.4971),
    "LSZA Lugano": (46.0040, 8.9106),
    "LIMC Milan Malpensa": (45.6306, 8.7281),
}


def load() -> pa.Table:
    """The collection as a recording table, time-ordered."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            from traffic.data.samples import switzerland
    except ImportError:
        raise SystemExit("the traffic library is not installed: pip install traffic==2.13") from None
    df = switzerland.data
    wanted = ["latitude", "longitude", "altitude", "groundspeed", "track"]
    keep = df[["timestamp", "icao24", "callsign", *wanted, "vertical_rate"]].dropna(subset=wanted)
    keep = keep[keep.altitude > 0].sort_values("timestamp", kind="stable")
    callsign = keep.callsign.fillna("").astype(str)
    return pa.table(
        {
            "time": pa.array(keep.timestamp).cast(pa.timestamp("us", "UTC")),
            "track_id": keep.icao24.astype(str).to_numpy(dtype=object),
            "party": np.where(callsign.str.len() >= 3, callsign.str[:3], "unknown").astype(object),
            "callsign": callsign.to_numpy(dtype=object),
            "lat": keep.latitude.to_numpy(dtype=float),
            "lon": keep.longitude.to_numpy(dtype=float),
            "alt_m": keep.altitude.to_numpy(dtype=float) * FT,
            "gs_mps": keep.groundspeed.to_numpy(dtype=float) * KT,
            "trk_deg": keep.track.to_numpy(dtype=float),
            "vs_mps": keep.vertical_rate.fillna(0).to_numpy(dtype=float) * FPM,
        }
    )


def nearest(lat: float, lon: float) -> tuple[str, float]:
    best = min(
        AERODROMES.items(),
        key=lambda kv: math.hypot(kv[1][0] - lat, (kv[1][1] - lon) * math.cos(math.radians(lat))),
    )
    name, (alat, alon) = best
    km = 111.2 * math.hypot(alat - lat, (alon - lon) * math.cos(math.radians(lat)))
    return name, km


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--scan-s", type=float, default=10.0)
    ap.add_argument("--stale-s", type=float, default=30.0)
    ap.add_argument("--half-height-m", type=float, default=304.8, help="default 1,000 ft")
    args = ap.parse_args()
    table = load()
    zone = ProtectedZone(9_260.0, args.half_height_m, 300.0)
    zones = {k: zone for k in agreements.load().kinds}
    where: dict[str, tuple[float, float, float, str]] = {}  # last position per track, for events
    times = table.column("time").cast(pa.int64()).to_numpy() / 1e6
    ids = table.column("track_id").to_pylist()
    lat, lon, alt = (table.column(c).to_numpy() for c in ("lat", "lon", "alt_m"))
    callsigns = table.column("callsign").to_pylist()
    stats = ReplayStats()
    events: list[dict[str, Any]] = []
    row = 0
    started = time.perf_counter()
    for event in replay(table.drop(["callsign"]), zones, "crewed_flight", same_party=True, scan_s=args.scan_s,
                        stale_s=args.stale_s, stats=stats):  # fmt: skip
        while row < len(times) and times[row] <= event["time_s"]:
            where[ids[row]] = (float(lat[row]), float(lon[row]), float(alt[row]), callsigns[row])
            row += 1
        a, b = where.get(event["a"]), where.get(event["b"])
        if a and b:
            event["place"], event["km"] = nearest((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
            event["alt_m"] = (a[2], b[2])
            event["callsigns"] = (a[3], b[3])
        events.append(event)
    seconds = time.perf_counter() - started

    opened = [e for e in events if e["event"] == "conflict_opened"]
    los = [e for e in events if e["event"] == "los_started"]
    los_end = [e for e in events if e["event"] == "los_ended"]
    closed = [e for e in events if e["event"] == "conflict_closed"]
    per_scan_ms = seconds / max(stats.scans, 1) * 1e3
    print(
        f"{stats.reports:,} airborne reports of {len(set(ids)):,} aircraft, {stats.scans:,} scans "
        f"({seconds:.1f} s in all, {per_scan_ms:.2f} ms a scan with the picture's updates), "
        f"up to {stats.tracks_max} tracks at once"
    )
    print(
        f"{len(opened):,} conflicts opened (5 NM, {args.half_height_m / FT:,.0f} ft, 300 s; every pair), "
        f"{len(los):,} losses of separation"
    )
    if closed:
        print(f"conflict duration: median {statistics.median(e['duration_s'] for e in closed):.0f} s")
    if los_end:
        durations = [e["duration_s"] for e in los_end]
        median = statistics.median(durations)
        print(f"loss-of-separation duration: median {median:.0f} s, max {max(durations):.0f} s")
    near = Counter(e.get("place") for e in los if e.get("km", 1e9) < 60)
    print("losses of separation within 60 km of an aerodrome:", dict(near.most_common()))
    dz_ft = Counter(
        int(round(abs(e["alt_m"][0] - e["alt_m"][1]) / FT / 25) * 25) for e in los if "alt_m" in e
    )
    print("vertical distance at the start of each loss of separation (ft, reported altitudes):",
          dict(sorted(dz_ft.items())))  # fmt: skip
    low = sum(1 for e in los if "alt_m" in e and max(e["alt_m"]) < 3_000)
    print(f"losses of separation with both aircraft below 3,000 m: {low} of {len(los)}")
    same_airline = sum(1 for e in los if "callsigns" in e and e["callsigns"][0][:3] == e["callsigns"][1][:3])
    print(f"... between two aircraft of one airline: {same_airline}")
    print("the first ten:")
    for e in los[:10]:
        alts = tuple(round(a / FT) for a in e.get("alt_m", ()))
        print(f"  {time.strftime('%H:%M:%S', time.gmtime(e['time_s']))}Z {e.get('callsigns')} "
              f"{e['d_cpa_m']:.0f} m at CPA in {e['t_cpa_s']:.0f} s, altitudes {alts} ft, "
              f"{e.get('km', math.nan):.0f} km from {e.get('place')}")  # fmt: skip
    OUT_DIR.mkdir(exist_ok=True)
    out = OUT_DIR / "switzerland.json"
    out.write_text(json.dumps({"stats": vars(stats), "seconds": seconds, "events": events}, default=str))
    print(f"events written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
