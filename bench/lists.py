"""The list routes on a big store: a page of `GET /v1/intents` (the first one, and one half
way down by its `after` cursor), its 304 revalidation, and, as the peer measured in the same
run, the whole list in one answer, as the route gave it before it had pages.

Runs on a copy of a store that `bench/strategic.py` filled (its `--data-dir`), through the
ASGI app in-process (Starlette's TestClient: the route, its JSON and the store; no sockets):

    .venv/bin/python bench/lists.py --data-dir /tmp/sb/100k
    .venv/bin/python bench/lists.py --data-dir /tmp/sb/1m --no-whole   # the whole list: GBs at 1M
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import CENTRE, OWNERS  # noqa: E402

from deconflict import agreements  # noqa: E402
from deconflict.api import wire  # noqa: E402
from deconflict.api.app import create_app  # noqa: E402
from deconflict.cli import DB_FILE  # noqa: E402
from deconflict.geometry.projection import LocalProjection  # noqa: E402
from deconflict.model import FilingType  # noqa: E402
from deconflict.model.geojson import format_time  # noqa: E402
from deconflict.service import Services  # noqa: E402
from deconflict.store import open_store  # noqa: E402


def timed(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, best) milliseconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), min(times)


def square(half_m: float, start: datetime, hours: float) -> dict[str, object]:
    """A volume Feature: a square about the bench's centre, over `hours` from `start`."""
    x = [-half_m, half_m, half_m, -half_m, -half_m]
    y = [-half_m, -half_m, half_m, half_m, -half_m]
    lon, lat = LocalProjection.at(*CENTRE).inverse(x, y)
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [[[a, b] for a, b in zip(lon, lat, strict=True)]]},
        "properties": {
            "altitude_lower_m": 0,
            "altitude_upper_m": 20_000,
            "time_start": format_time(start),
            "time_end": format_time(start + timedelta(hours=hours)),
        },
    }


def query_areas(
    client: TestClient, services: Services, token: str, args: argparse.Namespace, t_first: datetime
) -> None:
    """`POST /v1/query`: a page of filings in a view and in the whole region; the peer is
    the route as it was before pages, every filing meeting the area in one answer."""
    start = t_first + timedelta(days=3)  # mid-week: the filings start over 7 days
    print(f"POST /v1/query, {args.limit:,} filings a page: median (best) ms")
    for name, half_m, hours, repeat, extra in [
        ("200 km square, 2 h", 100_000, 2, args.repeat, ""),
        ("  the same, conflicts=open", 100_000, 2, args.repeat, "&conflicts=open"),
        ("the region (1000 km), 24 h", 500_000, 24, 3, ""),
        ("the region (1000 km), 7 days", 500_000, 168, 3, ""),
    ]:
        body = {"area": square(half_m, start, hours)}
        url = f"/v1/query?limit={args.limit}{extra}"
        first = client.post(url, json=body)
        assert first.status_code == 200, first.text[:200]
        features = first.json()["features"]
        med, best = timed(lambda: client.post(url, json=body), repeat)  # noqa: B023
        more = "more follow" if "next" in first.links else "the whole answer"
        met = f", {len(first.json()['conflicts']):,} conflicts" if extra else ""
        print(f"  {name:32s} {med:10.2f} ({best:.2f}): {len(features):,} volumes{met}, {more}")
        if args.no_whole or hours > 24 or extra:
            continue
        count, med = whole_answer(services, token, body["area"])
        print(f"  {'  peer: all of it, one answer':32s} {med:10.2f}: {count:,} filings")


def whole_answer(services: Services, token: str, feature: dict[str, object]) -> tuple[int, float]:
    """The route before pages (its code, copied): every filing meeting the area, one
    Feature a volume, in one answer, parsed as the client parses it; (filings, ms)."""
    party = services.parties.authenticate(token)
    area = wire.VolumeFeature.model_validate(feature).to_volume()
    t = time.perf_counter()
    found = services.filings.query(area)
    features = []
    for filing in found:
        view = wire.filing_view(filing, party)
        for i, f in enumerate(view.pop("volumes")):
            f["id"] = f"{filing.id}#{i}"
            f["properties"].update({"filing_" + k: v for k, v in view.items()})
            features.append(f)
    json.loads(wire.dumps({"type": "FeatureCollection", "features": features}))
    return len(found), (time.perf_counter() - t) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data-dir", required=True, help="a store bench/strategic.py filled (copied, not changed)"
    )
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--no-whole", action="store_true", help="skip the peer (the whole list in one answer)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-lists-"))
    try:
        for suffix in ("", "-wal"):
            src = Path(args.data_dir) / (DB_FILE + suffix)
            if src.exists():
                shutil.copyfile(src, work / (DB_FILE + suffix))
        with sqlite3.connect(work / DB_FILE) as db:
            (live,) = db.execute("SELECT count(*) FROM filings WHERE state <> 'ended'").fetchone()
            (first_us,) = db.execute("SELECT min(t_start_us) FROM volume_index").fetchone()
            t_first = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=first_us)
            (middle,) = db.execute(
                "SELECT id FROM filings ORDER BY id LIMIT 1 OFFSET ?", (live // 2,)
            ).fetchone()
        store = open_store(work / DB_FILE)  # migrates the copy to this schema
        services = Services.build(store, agreements.load())
        token = services.parties.rotate(OWNERS[0])
        client = TestClient(create_app(services, sth_interval_s=None, tick_interval_s=None))
        client.headers["Authorization"] = f"Bearer {token}"
        print(f"store: {args.data_dir} ({live:,} live filings)")

        page = f"/v1/intents?limit={args.limit}"
        first = client.get(page)
        assert first.status_code == 200 and len(first.json()) == args.limit, first.text[:200]
        tag = first.headers["etag"]
        rows: list[tuple[str, Callable[[], httpx.Response]]] = [
            ("baseline: GET /v1/me", lambda: client.get("/v1/me")),
            ("first page", lambda: client.get(page)),
            ("a page half way (after=)", lambda: client.get(f"{page}&after={middle}")),
            ("304: unchanged since its ETag", lambda: client.get(page, headers={"If-None-Match": tag})),
        ]
        assert rows[3][1]().status_code == 304
        print(f"GET /v1/intents, {args.limit:,} a page, {args.repeat} calls each: median (best) ms")
        for name, call in rows:
            med, best = timed(call, args.repeat)
            print(f"  {name:32s} {med:10.2f} ({best:.2f})")
        if not args.no_whole:
            got: list[int] = []

            def whole() -> None:
                r = client.get(f"/v1/intents?limit={10_000}")
                n = len(r.json())
                while "next" in r.links:
                    r = client.get(r.links["next"]["url"])
                    n += len(r.json())
                got.append(n)

            def one_answer() -> None:
                # the route before pages: every live filing of the store, one answer
                party = services.parties.authenticate(token)
                views = [
                    wire.filing_view(f, party)
                    for f in services.filings.current()
                    if f.type is FilingType.INTENT
                ]
                json.loads(wire.dumps(views))  # parsed, as the paged walk's client parses its pages

            med, _ = timed(one_answer, 1)
            print(f"  {'peer: the whole list, one answer':32s} {med:10.2f}")
            med, _ = timed(whole, 1)
            print(f"  {'the whole list by 10,000 pages':32s} {med:10.2f} ({got[-1]:,} filings)")
        query_areas(client, services, token, args, t_first)
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
        client.close()
        store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
