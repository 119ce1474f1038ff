"""Micro-benchmark: SqliteStore.find_filings against many stored filings.

Fills a fresh SQLite file with N synthetic filings (default 1,000,000) spread over a
1000 x 1000 km region with start times over a week, then times random
`find_filings` queries (each in its own `read()` block) and prints p50/p99, the
fill rate, and, as a peer measured in the same run, a plain primary-key lookup
(`get_filing`) so the ratio shows what the space-time query costs beyond it.

Index cells for the synthetic volumes come, by default, from a fast stand-in
(the cells of the centre and 16 points on the circle widened by 100 m), which
matches `volume_cells` for these small circles closely; `--exact-cells` uses
`deconflict.geometry.cells.volume_cells` (slower to fill). Query cells always come
from `search_cells`, computed before timing (the service computes them anyway).

    .venv/bin/python bench/store_find.py --n 100000
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import h3.api.basic_int as h3
import numpy as np

from deconflict.geometry.cells import INDEX_RESOLUTION, search_cells, volume_cells
from deconflict.geometry.projection import LocalProjection
from deconflict.model import Circle, Filing, FilingType, Party, Role, State, Volume4D
from deconflict.model.filing import make_ovn
from deconflict.store.base import SpaceTimeQuery
from deconflict.store.sqlite import SqliteStore

T0 = datetime(2030, 6, 1, tzinfo=UTC)
WEEK_S = 7 * 24 * 3600
HALF_SIDE_M = 500_000.0
PROJ = LocalProjection.at(35.0, 50.0)
OWNERS = [f"party{i}" for i in range(10)]


def quick_cells(c: Circle) -> frozenset[int]:
    az = np.linspace(0, 2 * math.pi, 16, endpoint=False)
    p = LocalProjection.at(c.lon, c.lat)
    r = c.radius_m + 100.0
    lon, lat = p.inverse(np.append(r * np.cos(az), 0.0), np.append(r * np.sin(az), 0.0))
    return frozenset(h3.latlng_to_cell(a, o, INDEX_RESOLUTION) for o, a in zip(lon, lat, strict=True))


def synthetic(i: int, rng: random.Random) -> Filing:
    x, y = rng.uniform(-HALF_SIDE_M, HALF_SIDE_M), rng.uniform(-HALF_SIDE_M, HALF_SIDE_M)
    start = T0 + timedelta(seconds=rng.uniform(0, WEEK_S))
    volumes = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        lon, lat = PROJ.inverse(x + rng.uniform(-5_000, 5_000), y + rng.uniform(-5_000, 5_000))
        radius = rng.choice((200.0, 500.0, 1_000.0, 2_000.0, 5_000.0))
        duration = timedelta(seconds=rng.uniform(600, 4 * 3600))
        lo = rng.choice((0.0, 0.0, 300.0, 1_000.0, 3_000.0))
        volumes.append(
            Volume4D(
                Circle(float(lon), float(lat), radius),
                lo,
                lo + rng.choice((120.0, 500.0, 3_000.0)),
                start,
                start + duration,
            )
        )
        start += duration
    fid = f"f{i:07d}"
    return Filing(
        fid,
        FilingType.INTENT,
        rng.choice(OWNERS),
        "uas_flight",
        tuple(volumes),
        State.ACCEPTED,
        10,
        1,
        make_ovn(fid, 1, T0),
        T0 - timedelta(days=1),
        T0 - timedelta(days=1),
        86_400.0,
        False,
    )


def random_query(rng: random.Random) -> SpaceTimeQuery:
    lon, lat = PROJ.inverse(rng.uniform(-HALF_SIDE_M, HALF_SIDE_M), rng.uniform(-HALF_SIDE_M, HALF_SIDE_M))
    cells = search_cells(Circle(float(lon), float(lat), rng.choice((500.0, 2_000.0, 5_000.0))), 2_000.0)
    start = T0 + timedelta(seconds=rng.uniform(0, WEEK_S))
    lo = rng.choice((0.0, 500.0, 2_000.0))
    return SpaceTimeQuery(cells, start, start + timedelta(hours=1), lo, lo + 600.0)


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="filings to store")
    ap.add_argument("--queries", type=int, default=5_000)
    ap.add_argument("--batch", type=int, default=2_000, help="filings per write transaction")
    ap.add_argument("--exact-cells", action="store_true", help="index with volume_cells")
    ap.add_argument("--db", type=Path, help="database file (default: a temporary one)")
    args = ap.parse_args()
    rng = random.Random(42)
    tmp = tempfile.TemporaryDirectory()
    path = args.db or Path(tmp.name) / "bench.db"
    store = SqliteStore(path)
    with store.write() as w:
        for pid in OWNERS:
            w.add_party(Party(pid, pid, "en", Role.OPERATOR, T0), pid.encode().ljust(32, b"."))
    cells_for = (lambda c: volume_cells(c)) if args.exact_cells else quick_cells

    rows = 0
    gen_s = 0.0
    t_fill = time.perf_counter()
    for base in range(0, args.n, args.batch):
        g0 = time.perf_counter()
        batch = [synthetic(i, rng) for i in range(base, min(args.n, base + args.batch))]
        cells = [[cells_for(v.outline) for v in f.volumes] for f in batch]  # type: ignore[arg-type]
        gen_s += time.perf_counter() - g0
        rows += sum(len(c) for cs in cells for c in cs)
        with store.write() as w:
            for f, cs in zip(batch, cells, strict=True):
                w.put_filing(f, cs)
    fill_s = time.perf_counter() - t_fill
    store_s = fill_s - gen_s
    print(
        f"filled {args.n:,} filings, {rows:,} index rows in {fill_s:.1f} s "
        f"({args.n / store_s:,.0f} filings/s in the store, excluding {gen_s:.1f} s generating)"
    )

    # single-filing commits, each durable (fsync): what one submission pays
    t1 = time.perf_counter()
    singles = 200
    for i in range(singles):
        f = synthetic(args.n + i, rng)
        with store.write() as w:
            w.put_filing(f, [cells_for(v.outline) for v in f.volumes])  # type: ignore[arg-type]
    single_ms = (time.perf_counter() - t1) / singles * 1e3
    print(f"one filing per durable commit: {single_ms:.2f} ms each")

    queries = [random_query(rng) for _ in range(args.queries)]
    ids = [f"f{rng.randrange(args.n):07d}" for _ in range(args.queries)]
    for label, qs in (("cold", queries), ("warm (same queries again)", queries)):
        times, hits = [], []
        for q in qs:
            t = time.perf_counter()
            with store.read() as r:
                found = r.find_filings(q)
            times.append(time.perf_counter() - t)
            hits.append(len(found))
        print(
            f"find_filings {label}: p50 {pct(times, 50) * 1e3:.3f} ms, p99 {pct(times, 99) * 1e3:.3f} ms, "
            f"mean hits {statistics.mean(hits):.1f}, "
            f"mean cells {statistics.mean(len(q.cells) for q in qs):.1f}"
        )
    peer = []
    for fid in ids:
        t = time.perf_counter()
        with store.read() as r:
            r.get_filing(fid)
        peer.append(time.perf_counter() - t)
    print(
        f"peer get_filing (primary key): p50 {pct(peer, 50) * 1e3:.3f} ms, p99 {pct(peer, 99) * 1e3:.3f} ms; "
        f"find/get p50 ratio {pct(times, 50) / pct(peer, 50):.1f}"
    )
    size_mb = sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6
    print(f"database size: {size_mb:,.0f} MB")
    store.close()
    tmp.cleanup()


if __name__ == "__main__":
    main()
