"""Benchmark: the shared record (append throughput, inclusion proofs, full verification).

(a) Append throughput: realistic entries (``filing.created`` of a one- to three-volume
    filing, built with :func:`deconflict.service.ledger.filing_body`, ~700 bytes each)
    appended through ``SqliteStore.write()`` + ``append_log`` in transactions of 1, 100
    and 1,000 entries. Peer, same run, same bytes, same batches, same pragmas (WAL,
    synchronous FULL): a plain ``INSERT`` into a one-table SQLite file, the floor the log
    cannot beat; the ratio is what the Merkle bookkeeping costs.
(b) Inclusion proofs at N entries (``--proof-n``): ``Ledger.inclusion_proof`` for random
    indices at size N, p50/p99, each proof checked against a signed head. Peer:
    ``rfc9162.inclusion_proof`` over an in-memory list of the N leaf hashes (it rebuilds
    the subtrees it needs from the leaves, so it is O(N) per proof: few are run).
(c) Full verification of ``--verify-n`` entries: ``Ledger.export`` (what ``deconflict
    ledger export`` runs) then ``deconflict.ledger.verify.verify_export``.

Entries are encoded before timing (the service encodes a new filing's entry before it
takes the write lock). The log for (b) and (c) is filled once, with 1,000 entries per
transaction and a head signed every 100,000; the fill rate is reported too.

    .venv/bin/python bench/ledger.py                       # N = 1,000,000
    .venv/bin/python bench/ledger.py --proof-n 10000000 --verify-n 1000000

Prints a table and writes JSON to bench/out/ledger-<proof-n>.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from deconflict.clock import SystemClock
from deconflict.ledger.entries import Kind, entry_bytes
from deconflict.ledger.keys import SigningKey
from deconflict.ledger.rfc9162 import inclusion_proof, verify_inclusion
from deconflict.ledger.verify import verify_export
from deconflict.model import Circle, Filing, FilingType, State, Volume4D
from deconflict.model.filing import make_ovn
from deconflict.service.ledger import Ledger, filing_body
from deconflict.store.sqlite import SqliteStore

T0 = datetime(2030, 6, 1, tzinfo=UTC)
BATCHES = (1, 100, 1_000)
FILL_BATCH = 1_000
HEAD_EVERY = 100_000
TEMPLATES = 512
OUT = Path(__file__).parent / "out"


def _filing(i: int, rng: random.Random) -> Filing:
    start = T0 + timedelta(seconds=rng.uniform(0, 7 * 86_400))
    volumes = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        end = start + timedelta(seconds=rng.uniform(600, 4 * 3600))
        lo = rng.choice((0.0, 300.0, 3_000.0))
        circle = Circle(
            rng.uniform(34.0, 36.0), rng.uniform(31.0, 33.0), rng.choice((200.0, 1_000.0, 5_000.0))
        )
        volumes.append(Volume4D(circle, lo, lo + 500.0, start, end))
        start = end
    fid = f"f{i:09d}"
    made = T0 - timedelta(days=1)
    owner = rng.choice(("north", "south", "drones"))
    return Filing(
        fid, FilingType.INTENT, owner, "uas_flight", tuple(volumes), State.ACCEPTED, 20, 1,
        make_ovn(fid, 1, made), made, made, 86_400.0, False,
    )  # fmt: skip


class Entries:
    """Realistic, distinct entries, cheaply: TEMPLATES real encodings, each reused with
    the filing id (fixed width, so the bytes stay canonical JSON) swapped for a new one."""

    def __init__(self, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.templates: list[tuple[bytes, bytes]] = []
        for t in range(TEMPLATES):
            f = _filing(t, rng)
            data = entry_bytes(Kind.FILING_CREATED, T0, filing_body(f))
            self.templates.append((data, f.id.encode()))

    def __call__(self, i: int) -> bytes:
        data, fid = self.templates[i % TEMPLATES]
        return data.replace(fid, f"f{i:09d}".encode(), 1)


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def _rate(n: int, run: Callable[[], None]) -> float:
    t = time.perf_counter()
    run()
    return n / (time.perf_counter() - t)


def _chunks(items: list[bytes], size: int) -> Iterator[list[bytes]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def append_log_rate(path: Path, data: list[bytes], batch: int) -> float:
    store = SqliteStore(path)

    def run() -> None:
        for chunk in _chunks(data, batch):
            with store.write() as w:
                w.append_log(chunk)

    try:
        return _rate(len(data), run)
    finally:
        store.close()


def plain_insert_rate(path: Path, data: list[bytes], batch: int) -> float:
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL").fetchone()
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE entries (idx INTEGER PRIMARY KEY, entry TEXT NOT NULL)")
    texts = [d.decode("utf-8") for d in data]

    def run() -> None:
        for start in range(0, len(texts), batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO entries (idx, entry) VALUES (?, ?)",
                [(start + i, t) for i, t in enumerate(texts[start : start + batch])],
            )
            conn.execute("COMMIT")

    try:
        return _rate(len(texts), run)
    finally:
        conn.close()


def bench_append(tmp: Path, make: Entries, append_n: int) -> list[dict[str, Any]]:
    rows = []
    for batch in BATCHES:
        n = min(append_n, 2_000 * batch)  # one fsync per commit: fewer entries for small batches
        data = [make(i) for i in range(n)]
        log = append_log_rate(tmp / f"log-{batch}.db", data, batch)
        plain = plain_insert_rate(tmp / f"plain-{batch}.db", data, batch)
        rows.append(
            {"batch": batch, "entries": n, "log_per_s": log, "plain_per_s": plain, "ratio": plain / log}
        )
        print(
            f"  append batch {batch:>5}: log {log:>9,.0f}/s  plain INSERT {plain:>9,.0f}/s"
            f"  plain/log {plain / log:4.2f}x  ({n:,} entries)",
            file=sys.stderr,
        )
    return rows


def fill(ledger: Ledger, make: Entries, start: int, end: int) -> tuple[list[bytes], float]:
    """Append entries [start, end) (FILL_BATCH a transaction, a head signed every
    HEAD_EVERY); their leaf hashes and the rate."""
    hashes: list[bytes] = []
    t = time.perf_counter()
    for s in range(start, end, FILL_BATCH):
        chunk = [make(i) for i in range(s, min(end, s + FILL_BATCH))]
        with ledger.store.write() as w:
            hashes.extend(r.entry_hash for r in ledger.append(w, chunk))
        done = s + len(chunk)
        if done % HEAD_EVERY == 0 or done == end:
            ledger.sign_head()
            rate = (done - start) / (time.perf_counter() - t)
            print(f"  filled {done:,} ({rate:,.0f}/s)", file=sys.stderr)
    return hashes, (end - start) / (time.perf_counter() - t)


def bench_proofs(
    ledger: Ledger, hashes: list[bytes], size: int, proofs: int, peer_proofs: int
) -> dict[str, Any]:
    rng = random.Random(11)
    head = ledger.sign_head().head
    assert head.size == size, (head.size, size)
    times = []
    for _ in range(proofs):
        i = rng.randrange(size)
        t = time.perf_counter()
        path = ledger.inclusion_proof(i, size)
        times.append(time.perf_counter() - t)
        verify_inclusion(hashes[i], i, size, path, head.root)  # raises if wrong
    peer = []
    for _ in range(peer_proofs):
        i = rng.randrange(size)
        t = time.perf_counter()
        path = inclusion_proof(hashes, i, size)
        peer.append(time.perf_counter() - t)
        assert path == ledger.inclusion_proof(i, size)
    out: dict[str, Any] = {
        "size": size,
        "proofs": proofs,
        "p50_ms": pct(times, 50) * 1e3,
        "p99_ms": pct(times, 99) * 1e3,
        "mean_ms": statistics.fmean(times) * 1e3,
        "peer_proofs": peer_proofs,
        "peer_p50_ms": pct(peer, 50) * 1e3 if peer else None,
    }
    if peer:
        out["peer_ratio_p50"] = pct(peer, 50) / pct(times, 50)
    return out


def bench_verify(ledger: Ledger, path: Path) -> dict[str, Any]:
    t = time.perf_counter()
    with path.open("wb") as f:
        head, counts = ledger.export(f)
    export_s = time.perf_counter() - t
    t = time.perf_counter()
    report = verify_export(path, public_key=ledger.public_key)
    verify_s = time.perf_counter() - t
    if not report.ok:
        raise SystemExit(report.summary())
    return {
        "entries": counts.entries,
        "tree_heads": counts.tree_heads,
        "export_s": export_s,
        "verify_s": verify_s,
        "export_mb": path.stat().st_size / 1e6,
        "verified_size": report.verified_size,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--append-n", type=int, default=200_000, help="entries per append measurement (at most)")
    ap.add_argument("--proof-n", type=int, default=1_000_000, help="log size for inclusion proofs")
    ap.add_argument("--proofs", type=int, default=200, help="inclusion proofs to time")
    ap.add_argument("--peer-proofs", type=int, default=5, help="in-memory peer proofs (O(N) each)")
    ap.add_argument("--verify-n", type=int, default=1_000_000, help="entries to export and verify")
    ap.add_argument("--skip-append", action="store_true", help="skip (a)")
    ap.add_argument("--dir", type=Path, help="working directory (default: a temporary one)")
    args = ap.parse_args()
    tmp_dir = tempfile.TemporaryDirectory(dir=args.dir)
    tmp = Path(tmp_dir.name)
    make = Entries()
    avg = statistics.fmean(len(d) for d, _ in make.templates)
    print(f"entries: {avg:.0f} bytes on average", file=sys.stderr)
    result: dict[str, Any] = {"entry_bytes_mean": avg, "python": sys.version.split()[0]}

    if not args.skip_append:
        result["append"] = bench_append(tmp, make, args.append_n)

    ledger = Ledger(SqliteStore(tmp / "log.db"), SigningKey.generate(), SystemClock())
    # verification at verify-n first (a prefix of the proof-n log), then grow to proof-n
    first = min(args.verify_n, args.proof_n)
    hashes, rate1 = fill(ledger, make, 0, first)
    if args.verify_n <= args.proof_n:
        result["verify"] = bench_verify(ledger, tmp / "export.ndjson")
        (tmp / "export.ndjson").unlink()
    rest_rate = None
    if args.proof_n > first:
        more, rest_rate = fill(ledger, make, first, args.proof_n)
        hashes.extend(more)
    result["fill_per_s"] = rate1 if rest_rate is None else min(rate1, rest_rate)
    result["proof"] = bench_proofs(ledger, hashes, args.proof_n, args.proofs, args.peer_proofs)
    if args.verify_n > args.proof_n:
        result["verify"] = bench_verify(ledger, tmp / "export.ndjson")
    result["db_mb"] = (tmp / "log.db").stat().st_size / 1e6
    ledger.store.close()

    print_table(result)
    OUT.mkdir(exist_ok=True)
    out = OUT / f"ledger-{args.proof_n}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


def print_table(r: dict[str, Any]) -> None:
    print(f"\nentries ~{r['entry_bytes_mean']:.0f} bytes (filing.created), Python {r['python']}")
    if "append" in r:
        print(f"{'append, batch':<22}{'log /s':>12}{'plain INSERT /s':>18}{'plain/log':>11}")
        for a in r["append"]:
            print(f"{a['batch']:<22,}{a['log_per_s']:>12,.0f}{a['plain_per_s']:>18,.0f}{a['ratio']:>10.2f}x")
    print(f"fill (batch {FILL_BATCH:,}, head every {HEAD_EVERY:,}): {r['fill_per_s']:,.0f} entries/s")
    p = r["proof"]
    line = f"inclusion proof at N={p['size']:,}: p50 {p['p50_ms']:.3f} ms, p99 {p['p99_ms']:.3f} ms"
    if p["peer_p50_ms"] is not None:
        line += f"; in-memory rfc9162 peer p50 {p['peer_p50_ms']:.0f} ms ({p['peer_ratio_p50']:,.0f}x slower)"
    print(line)
    v = r["verify"]
    print(
        f"full verification of {v['entries']:,} entries ({v['tree_heads']} heads, {v['export_mb']:.0f} MB):"
        f" export {v['export_s']:.1f} s, verify_export {v['verify_s']:.1f} s"
    )
    print(f"database: {r['db_mb']:.0f} MB")


if __name__ == "__main__":
    main()
