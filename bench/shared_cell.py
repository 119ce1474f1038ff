"""Benchmark: write throughput in one congested area with several service processes,
the situation in which InterUSS reports about 6-8 operational-intent writes per second
on CockroachDB.

`--processes` `deconflict serve` processes share one store, and `--clients` client
threads (spread over the processes, each one of three operator parties) file
`--filings` new intents in one congested area (`--side-km` square, all within
`--window-h` hours, circles of 300-1500 m; with the default 8 km and 2 h each filing
conflicts with several others). A client follows the F3548 key protocol: POST with the
key it has; on 409 missing-key it adds the ovns listed and files again. The agreement
is the default one with `conflict_action = "warn"`, so every filing is accepted once
its key is complete and its conflicts are recorded (and logged) in the same transaction.

Engines, measured in the same run on the same requests:
- `postgres`: deconflict's PostgreSQL store (`serve --database postgresql://...`,
  N separate processes) in a private, durable cluster (fsync on);
- `sqlite`: the SQLite file (`serve --workers N`: N worker processes on one file).

Printed: accepted filings/s (wall clock from first request to last answer), p50/p99
latency of a filing (all its attempts), attempts per filing, conflicts per filing, and
the ratio to InterUSS's 6-8 writes/s. Afterwards, as a check, every conflicting pair
among the accepted filings (offline `all_conflicts`) must have an open conflict record.

    .venv/bin/python bench/shared_cell.py --processes 4 --clients 32 --filings 600
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import pct  # noqa: E402

from deconflict import agreements  # noqa: E402
from deconflict.detect.strategic import all_conflicts  # noqa: E402
from deconflict.model import ConflictState  # noqa: E402
from deconflict.store import open_store  # noqa: E402
from deconflict.store.pg_cluster import cluster, free_port  # noqa: E402

OPERATORS = ("north", "south", "drones")
CENTRE = (20.0, 60.0)
INTERUSS_WRITES_PER_S = (6.0, 8.0)
PG_SETTINGS = {"shared_buffers": "512MB", "max_connections": "200"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def z(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def bodies(n: int, seed: int, side_km: float, window_h: float, t0: datetime) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    dlat = side_km / 2 / 111.2
    dlon = dlat / 0.5  # cos(60°) = 0.5
    out = []
    for _ in range(n):
        start = rng.uniform(0, window_h * 3600 - 1800)
        feature = {
            "type": "Feature",
            "geometry": {
                "type": "Point",
                "coordinates": [CENTRE[0] + rng.uniform(-dlon, dlon), CENTRE[1] + rng.uniform(-dlat, dlat)],
            },
            "properties": {
                "radius_m": rng.uniform(300, 1500),
                "altitude_lower_m": 0,
                "altitude_upper_m": 300,
                "time_start": z(t0 + timedelta(seconds=start)),
                "time_end": z(t0 + timedelta(seconds=start + 1800)),
            },
        }
        out.append({"kind": "uas_flight", "volumes": [feature]})
    return out


def serve(data_dir: Path, port: int, agreement: Path, database: str, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "deconflict", "serve", "--data-dir", str(data_dir), "--port", str(port)]
    cmd += ["--agreement", str(agreement), "--database", database, "--log-level", "warning", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit("a server did not start")
        time.sleep(0.1)


def load(urls: list[str], tokens: dict[str, str], docs: list[dict[str, Any]], clients: int) -> dict[str, Any]:
    lock = threading.Lock()
    queue = iter(range(len(docs)))
    latencies: list[float] = []
    attempts: list[int] = []
    conflicts: list[int] = []
    errors: list[str] = []

    def client(n: int) -> None:
        party = OPERATORS[n % len(OPERATORS)]
        headers = {"Authorization": f"Bearer {tokens[party]}"}
        with httpx.Client(base_url=urls[n % len(urls)], headers=headers, timeout=120) as c:
            while True:
                with lock:
                    i = next(queue, None)
                if i is None:
                    return
                key: list[str] = []
                t = time.perf_counter()
                for tries in range(1, 60):
                    r = c.post("/v1/intents", json={**docs[i], "key": key})
                    if r.status_code == 201:
                        with lock:
                            latencies.append(time.perf_counter() - t)
                            attempts.append(tries)
                            conflicts.append(len(r.json()["conflicts"]))
                        break
                    if r.status_code == 409 and r.json().get("missing"):
                        key += [m["ovn"] for m in r.json()["missing"]]
                    elif r.status_code == 503:
                        time.sleep(random.random())
                    else:
                        with lock:
                            errors.append(f"{r.status_code} {r.text[:160]}")
                        break

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {
        "accepted": len(latencies),
        "seconds": wall,
        "filings_per_s": len(latencies) / wall,
        "p50_ms": pct(latencies, 50) * 1e3,
        "p99_ms": pct(latencies, 99) * 1e3,
        "attempts_per_filing": sum(attempts) / max(1, len(attempts)),
        "conflicts_per_filing": sum(conflicts) / max(1, len(conflicts)),
        "errors": len(errors),
        "first_errors": errors[:3],
    }


def check(database: str, agreement_path: Path) -> dict[str, int]:
    agreement = agreements.load(str(agreement_path))
    store = open_store(database)
    try:
        with store.read() as r:
            current = r.list_filings()
            recorded = {
                frozenset({(c.finding.a.id, c.finding.a.version), (c.finding.b.id, c.finding.b.version)})
                for c in r.list_conflicts(state=ConflictState.OPEN)
            }
    finally:
        store.close()
    pairs = {
        frozenset({(f.a.id, f.a.version), (f.b.id, f.b.version)}) for f in all_conflicts(current, agreement)
    }
    return {"conflicting_pairs": len(pairs), "pairs_without_record": len(pairs - recorded)}


def run(engine: str, args: argparse.Namespace, docs: list[dict[str, Any]], work: Path) -> dict[str, Any]:
    default = (Path(agreements.__file__).parent / agreements.DEFAULT_AGREEMENT).read_text()
    toml = work / "warn.toml"
    toml.write_text(default.replace('conflict_action = "block"', 'conflict_action = "warn"'))
    procs: list[subprocess.Popen[bytes]] = []

    def go(database: str) -> dict[str, Any]:
        ports = [free_port() for _ in range(args.processes)]
        if engine == "postgres":
            procs.append(serve(work, ports[0], toml, database, "--seed-example"))
            procs.extend(serve(work, p, toml, database) for p in ports[1:])
            urls = [f"http://127.0.0.1:{p}" for p in ports]
        else:
            procs.append(
                serve(work, ports[0], toml, database, "--seed-example", "--workers", str(args.processes))
            )
            urls = [f"http://127.0.0.1:{ports[0]}"]
        tokens = json.loads((work / "example-tokens.json").read_text())
        log(f"{engine}: {args.processes} processes, {args.clients} clients, {len(docs)} filings")
        try:
            result = load(urls, tokens, docs, args.clients)
        finally:
            for p in procs:
                p.send_signal(signal.SIGINT)
            for p in procs:
                p.wait(timeout=60)
        result.update(check(database, toml))
        log(
            f"{engine}: {result['filings_per_s']:.1f} filings/s, p50 {result['p50_ms']:.0f} ms, "
            f"p99 {result['p99_ms']:.0f} ms, {result['attempts_per_filing']:.2f} attempts and "
            f"{result['conflicts_per_filing']:.1f} conflicts per filing, errors {result['errors']}, "
            f"pairs without a record {result['pairs_without_record']} of {result['conflicting_pairs']}"
        )
        return result

    if engine == "postgres":
        with cluster(settings=PG_SETTINGS) as url:
            return go(url)
    return go(str(work / "deconflict.sqlite3"))


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--clients", type=int, default=32, help="client threads in all")
    ap.add_argument("--filings", type=int, default=600)
    ap.add_argument("--side-km", type=float, default=8.0)
    ap.add_argument("--window-h", type=float, default=2.0)
    ap.add_argument("--engines", default="postgres,sqlite")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    docs = bodies(args.filings, args.seed, args.side_km, args.window_h, t0)
    results: dict[str, Any] = {}
    for engine in args.engines.split(","):
        with tempfile.TemporaryDirectory(prefix=f"shared-cell-{engine}-") as tmp:
            results[engine] = run(engine, args, docs, Path(tmp))
    lo, hi = INTERUSS_WRITES_PER_S
    print(
        f"\none congested area ({args.side_km:g} km square, {args.window_h:g} h), "
        f"{args.processes} processes, {args.clients} clients, {args.filings} filings"
    )
    head = ("engine", "filings/s", "p50 ms", "p99 ms", "conflicts", "vs InterUSS 6-8/s")
    print(f"{head[0]:<10} {head[1]:>10} {head[2]:>8} {head[3]:>8} {head[4]:>10} {head[5]:>18}")
    for engine, r in results.items():
        ratio = f"{r['filings_per_s'] / hi:.0f}x-{r['filings_per_s'] / lo:.0f}x"
        print(
            f"{engine:<10} {r['filings_per_s']:>10.1f} {r['p50_ms']:>8.0f} {r['p99_ms']:>8.0f} "
            f"{r['conflicts_per_filing']:>10.1f} {ratio:>18}"
        )
    if {"postgres", "sqlite"} <= results.keys():
        pg, lite = results["postgres"]["filings_per_s"], results["sqlite"]["filings_per_s"]
        print(f"postgres / sqlite throughput: {pg / lite:.2f}")
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "shared-cell.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))


if __name__ == "__main__":
    main()
