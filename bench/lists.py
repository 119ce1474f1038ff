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
from pathlib import Path

import httpx
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import OWNERS  # noqa: E402

from deconflict import agreements  # noqa: E402
from deconflict.api import wire  # noqa: E402
from deconflict.api.app import create_app  # noqa: E402
from deconflict.cli import DB_FILE  # noqa: E402
from deconflict.model import FilingType  # noqa: E402
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
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
        client.close()
        store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
