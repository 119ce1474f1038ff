"""A party's hotline box on a store with many messages: `list_messages` (each side walks its
index by time backwards and stops at the limit) against, as the peer measured in the same
run on the same store, the query it replaced (every message of the party found, then
sorted newest first), which is copied below verbatim.

Fills a fresh SQLite store with M synthetic messages among 4 parties, each sent to the
other 3 (rows written straight into the tables), then times a page of 100 of each box for
one party, and checks that both give the same messages:

    .venv/bin/python bench/hotline_inbox.py --messages 1000000
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from deconflict.store.sqlite import SqliteStore

PARTIES = ("alpha", "bravo", "charlie", "delta")


def old_page(db: sqlite3.Connection, party: str, box: str, limit: int) -> list[str]:
    """The replaced query (ids only; it read the same rows)."""
    received = (
        "SELECT m.id FROM hotline_deliveries AS d JOIN hotline_messages AS m ON m.id = d.message_id"
        " WHERE d.recipient = ?"
    )
    sent = "SELECT id FROM hotline_messages WHERE sender = ?"
    ids = {"in": received, "out": sent, "all": f"{received} UNION {sent}"}[box]
    params = [party] if box != "all" else [party, party]
    rows = db.execute(
        f"SELECT id FROM hotline_messages WHERE id IN ({ids}) ORDER BY sent_at_us DESC, id DESC LIMIT ?",  # noqa: S608
        [*params, limit],
    ).fetchall()
    return [r[0] for r in rows]


def fill(path: Path, m: int) -> None:
    SqliteStore(path).close()  # the schema
    db = sqlite3.connect(path)
    columns = [r[1] for r in db.execute("PRAGMA table_info(parties)")]
    for p in PARTIES:
        values = {"id": p, "name": p, "language": "en", "role": "operator"}
        row = [values.get(c, b"h" + p.encode() if "hash" in c else 0) for c in columns]
        db.execute(f"INSERT INTO parties ({','.join(columns)}) VALUES ({','.join('?' * len(columns))})", row)  # noqa: S608
    t = 1_700_000_000_000_000
    doc = '{"recipients":[],"fields":{}}'
    for start in range(0, m, 50_000):
        msgs, dels = [], []
        for i in range(start, min(m, start + 50_000)):
            t += 1 + (i * 7919) % 2000  # distinct, increasing, irregular
            mid, sender = f"m{i:09d}", PARTIES[i % 4]
            msgs.append((mid, "FREE_TEXT", sender, t, None, doc))
            dels += [
                (mid, r, t, t + 60_000_000, None, 1, None, None, None, None, None, 0, None)
                for r in PARTIES
                if r != sender
            ]
        db.executemany("INSERT INTO hotline_messages VALUES (?,?,?,?,?,?)", msgs)
        db.executemany("INSERT INTO hotline_deliveries VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", dels)
        db.commit()
    db.close()


def ms(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-inbox-") as work:
        path = Path(work) / "inbox.sqlite3"
        t = time.perf_counter()
        fill(path, args.messages)
        print(
            f"{args.messages:,} messages among {len(PARTIES)} parties, each to the other 3"
            f" ({time.perf_counter() - t:.0f} s)"
        )
        store = SqliteStore(path)
        db = sqlite3.connect(path)
        print("a page of 100 for alpha, median ms   old (peer)   list_messages   old / new")
        for box in ("in", "out", "all"):
            with store.read() as r:
                new = [m.id for m in r.list_messages("alpha", box=box, limit=100)]
                assert new == old_page(db, "alpha", box, 100), box
                new_ms = ms(partial(r.list_messages, "alpha", box=box, limit=100), args.repeat)
            old_ms = ms(partial(old_page, db, "alpha", box, 100), args.repeat)
            print(f"  box={box:3s}{'':26s}{old_ms:10.1f}   {new_ms:13.2f}   {old_ms / new_ms:9,.0f}x")
        db.close()
        store.close()


if __name__ == "__main__":
    main()
