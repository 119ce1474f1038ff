"""Benchmark: one filing with its strategic conflict check, against N active intents.

What the issue "Core mechanism" asks for, with PostgreSQL + PostGIS (the design a
user would build instead) as the peer measured in the same run on the same data:

1. **Fill.** N intents (`bench/_data.py` documents the distribution: 1000 x 1000 km
   around 35°E 45°N, 200 m circles to 50 km polygons, 10 min to 12 h over the next
   7 days, altitude bands 0-12 km, every agreement kind, 3 operator parties; one
   volume per intent) are bulk-loaded straight through the store: `store.write()` +
   `put_filing` in batches of `--batch`, each filing with its FILING_CREATED log
   entry, index cells from `volume_cells` computed by 2 worker processes while the
   main process writes. They are pre-existing state, so no detection runs on fill.
   With `--data-dir` the filled store (and a `meta.json` naming n, seed and t0) is
   kept and reused; every run works on a fresh copy of it, so runs do not see each
   other's filings.
2. **In-process latency.** `Services` on the filled `SqliteStore`, with the default
   agreement changed to `conflict_action = warn` (conflicting filings are accepted
   and their conflicts recorded). For each of `--measure` new intents from the same
   distribution, the ovns it conflicts with are found first, outside the timed
   region, by a second `SqliteStore` and `Filings` on the same file (their own
   decode and geometry caches, so the key look-up warms nothing the timed call
   uses); then exactly `services.filings.submit(party, draft, key)` is timed: the
   durable filing (fsync'd commit) with its conflict check. The first `--warmup`
   filings are not counted. A second pass of `--profile` filings runs with timers
   wrapped around each phase of `submit` (monkeypatched here, not in deconflict).
3. **HTTP** (`--http`). `python -m deconflict serve` on a copy of the agreement
   with `conflict_action = "warn"`; tokens for the 3 operators are rotated on the
   store before it starts. 8 client threads with keep-alive `http.client`
   connections POST `--requests` pre-built bodies (keys computed against the state
   when they were built; a 409 missing-key is retried once with the missing ovns
   added, and counted). Afterwards, race-freedom: every accepted filing is in the
   store, and every pair of them that `detect.strategic.all_conflicts` (offline)
   says conflicts has a conflict record in the store.
4. **Memory.** Peak RSS of this process (which holds the in-process store) from
   `getrusage`, the server's VmHWM from /proc, and the database size on disk.
5. **PostGIS** (`--postgis`). See `bench/_postgis.py`.

The table at the end puts both systems side by side with deconflict / PostGIS
ratios; it is also written as JSON to `bench/out/strategic-<n>.json`.

    .venv/bin/python bench/strategic.py --n 100000 --http --postgis
    .venv/bin/python bench/strategic.py --n 1000000 --data-dir /tmp/strategic-1m --http --postgis
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import itertools
import json
import multiprocessing
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import OWNERS, Spec, generate, pct, run_clients  # noqa: E402

import deconflict.service.covers as covers_mod  # noqa: E402
import deconflict.service.filings as filings_mod  # noqa: E402
import deconflict.service.hotline as hotline_mod  # noqa: E402
import deconflict.service.ledger as ledger_mod  # noqa: E402
import deconflict.store.sql as sql_mod  # noqa: E402
from deconflict import agreements  # noqa: E402
from deconflict.cli import DB_FILE, tune_runtime  # noqa: E402
from deconflict.clock import SystemClock  # noqa: E402
from deconflict.detect.strategic import all_conflicts, detect  # noqa: E402
from deconflict.errors import MissingKey  # noqa: E402
from deconflict.geometry.cells import volume_cells  # noqa: E402
from deconflict.ledger.entries import Kind  # noqa: E402
from deconflict.model import Agreement, Filing, Party  # noqa: E402
from deconflict.model.agreement import ConflictAction  # noqa: E402
from deconflict.service import Filings, Services  # noqa: E402
from deconflict.service.ledger import filing_body  # noqa: E402
from deconflict.store import is_server_url, open_store  # noqa: E402
from deconflict.store.pg_cluster import cluster  # noqa: E402

OUT_DIR = Path(__file__).resolve().parent / "out"
CLIENTS = 8
Result = dict[str, Any]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def warn_agreement() -> Agreement:
    return dataclasses.replace(agreements.load(), conflict_action=ConflictAction.WARN)


#: a PostgreSQL a user would give a dedicated box of this size (as the PostGIS peer's)
PG_SETTINGS = {
    "shared_buffers": "2GB",
    "maintenance_work_mem": "1GB",
    "max_wal_size": "8GB",
    "max_connections": "100",
}
Database = str | Path  # a SQLite file, or a PostgreSQL URL


def db_size_mb(database: Database) -> float:
    if is_server_url(database):
        import psycopg

        with psycopg.connect(str(database)) as conn:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        return (row[0] if row else 0) / 1e6
    path = Path(database)
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6


def ms_summary(seconds: Sequence[float]) -> Result:
    return {
        "count": len(seconds),
        "p50_ms": pct(seconds, 50) * 1e3,
        "p90_ms": pct(seconds, 90) * 1e3,
        "p99_ms": pct(seconds, 99) * 1e3,
        "max_ms": max(seconds) * 1e3,
        "mean_ms": statistics.fmean(seconds) * 1e3,
    }


# -- fill -------------------------------------------------------------------------


def _cells_of(chunk: list[Spec]) -> list[frozenset[int]]:
    t0 = datetime(2000, 1, 1, tzinfo=UTC)  # cells do not depend on time
    return [volume_cells(s.volume(t0).outline) for s in chunk]


def fill(path: Database, specs: list[Spec], t0: datetime, batch: int) -> Result:
    """Bulk-load `specs` as stored version-1 filings: no detection (pre-existing state)."""
    pool = multiprocessing.get_context("fork").Pool(2)  # before the store opens
    store = open_store(path)
    services = Services.build(store, warn_agreement())
    for pid in OWNERS:
        services.parties.add(pid)
    created = datetime.now(UTC)
    chunks = [specs[i : i + batch] for i in range(0, len(specs), batch)]
    started = time.perf_counter()
    rows = 0
    done = 0
    with pool:
        for chunk, cells in zip(chunks, pool.imap(_cells_of, chunks), strict=True):
            with store.write() as w:
                entries: list[bytes] = []
                for spec, c in zip(chunk, cells, strict=True):
                    filing = spec.filing(t0, created)
                    w.put_filing(filing, [c])
                    entries.append(services.ledger.entry(Kind.FILING_CREATED, filing_body(filing), created))
                    rows += len(c)
                # each with its log entry, as the service stores a filing: the log is as
                # long as it would be, and each filing's place in it (`log_seq`) is below
                # the log's size, so a check's snapshot does not take them for new ones
                w.append_log(entries)
            done += len(chunk)
            if done % (batch * 25) == 0:
                rate = done / (time.perf_counter() - started)
                log(f"  filled {done:,} / {len(specs):,} ({rate:,.0f} filings/s)")
    seconds = time.perf_counter() - started
    store.close()
    return {"filings": len(specs), "index_rows": rows, "seconds": seconds, "rate_per_s": len(specs) / seconds}


def _fill_child(
    path: Database,
    args: argparse.Namespace,
    kinds: list[str],
    t0: datetime,
    queue: multiprocessing.Queue[Result],
) -> None:
    log(f"generating {args.n:,} intents (seed {args.seed})")
    specs = generate(args.n, args.seed, kinds, "b")
    log(f"filling {path}")
    queue.put(fill(path, specs, t0, args.batch))


def prepare_base(args: argparse.Namespace, kinds: list[str]) -> tuple[Path, datetime, Result]:
    """The filled store (created or reused) and its t0."""
    base = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="strategic-base-"))
    base.mkdir(parents=True, exist_ok=True)
    meta_path = base / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if (meta["n"], meta["seed"]) != (args.n, args.seed):
            sys.exit(f"{base} holds n={meta['n']} seed={meta['seed']}; use another --data-dir")
        log(f"reusing the filled store in {base} (filled in {meta['fill']['seconds']:.0f} s)")
        return base / DB_FILE, datetime.fromisoformat(meta["t0"]), meta["fill"]
    if (base / DB_FILE).exists():
        sys.exit(f"{base / DB_FILE} exists without meta.json; remove it or use another --data-dir")
    # filings start within 7 days of t0; t0 an hour ahead leaves room for a few hours of runs
    t0 = (datetime.now(UTC) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    # in a child process, so this process's peak RSS is that of serving the store
    ctx = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[Result] = ctx.Queue()
    child = ctx.Process(target=_fill_child, args=(base / DB_FILE, args, kinds, t0, queue))
    child.start()
    result = queue.get()
    child.join()
    result["db_mb"] = db_size_mb(base / DB_FILE)
    log(
        f"filled {result['filings']:,} filings ({result['index_rows']:,} index rows) in "
        f"{result['seconds']:.0f} s, {result['rate_per_s']:,.0f}/s; {result['db_mb']:,.0f} MB"
    )
    meta_path.write_text(json.dumps({"n": args.n, "seed": args.seed, "t0": t0.isoformat(), "fill": result}))
    return base / DB_FILE, t0, result


def fresh_specs(n: int, seed: int, kinds: list[str], prefix: str, t0: datetime) -> list[Spec]:
    """New intents from the same distribution, skipping any that would already be over."""
    now_s = (datetime.now(UTC) - t0).total_seconds() + 600
    specs = [s for s in generate(2 * n + 100, seed, kinds, prefix) if s.end_s > now_s]
    return specs[:n]


# -- in-process ------------------------------------------------------------------------


class Keyer:
    """The ovns a draft will conflict with, from a second store on the same file
    (its own caches, so looking up a key warms nothing the timed path uses)."""

    def __init__(self, path: Database, agreement: Agreement) -> None:
        self.store = open_store(path)
        self.filings = Filings(self.store, agreement, SystemClock())
        self.agreement = agreement

    def key(self, spec: Spec, t0: datetime) -> tuple[list[str], int]:
        """(conflicting ovns, candidates from the index)."""
        probe = spec.filing(t0, datetime.now(UTC))
        probe = dataclasses.replace(probe, id="~probe")
        neighbours = self.filings.candidates(probe)
        return [f.b.ovn for f in detect(probe, neighbours, self.agreement)], len(neighbours)

    def close(self) -> None:
        self.store.close()


def in_process(path: Database, t0: datetime, specs: list[Spec], args: argparse.Namespace) -> Result:
    agreement = warn_agreement()
    store = open_store(path)
    services = Services.build(store, agreement)
    with store.read() as r:
        parties = {pid: r.get_party(pid) for pid in OWNERS}
    keyer = Keyer(path, agreement)
    tune_runtime()  # as `deconflict serve` runs
    times: list[float] = []
    cpu: list[float] = []  # CPU time of this process (all its threads): robust to a busy machine
    conflicts: list[int] = []
    candidates: list[int] = []
    missing = 0
    log(f"in-process: {args.warmup} warm-up + {args.measure} timed filings")
    for i, spec in enumerate(specs[: args.warmup + args.measure]):
        key, cands = keyer.key(spec, t0)
        draft = spec.draft(t0)
        party = parties[spec.owner]
        assert party is not None
        c = time.process_time()
        t = time.perf_counter()
        try:
            outcome = services.filings.submit(party, draft, key, filing_id=spec.id)
        except MissingKey:
            missing += 1
            continue
        dt = time.perf_counter() - t
        dc = time.process_time() - c
        if i >= args.warmup:
            times.append(dt)
            cpu.append(dc)
            conflicts.append(len(outcome.conflicts))
            candidates.append(cands)
    result = ms_summary(times)
    result.update(
        mean_conflicts=statistics.fmean(conflicts),
        mean_candidates=statistics.fmean(candidates),
        filings_with_conflicts=sum(1 for c in conflicts if c) / len(conflicts),
        missing_key_errors=missing,
        cpu_mean_ms=statistics.fmean(cpu) * 1e3,
    )
    log(
        f"in-process submit: p50 {result['p50_ms']:.2f} ms, p90 {result['p90_ms']:.2f}, "
        f"p99 {result['p99_ms']:.2f}, max {result['max_ms']:.2f}; CPU {result['cpu_mean_ms']:.2f} ms "
        f"per filing; mean conflicts "
        f"{result['mean_conflicts']:.2f}, candidates {result['mean_candidates']:.1f}"
    )
    if args.profile:
        result["phases"] = profile_phases(services, keyer, parties, specs[args.warmup + args.measure :], t0)
    result["rss_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    keyer.close()
    store.close()
    return result


class Phases:
    """Wall time spent in each wrapped function, summed over the profiled filings."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.active = False  # only the timed submit counts, not the key look-up

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*a: Any, **kw: Any) -> Any:
            if not self.active:
                return fn(*a, **kw)
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.total[name] += time.perf_counter() - t
                self.calls[name] += 1

        return timed


@contextmanager
def _patched(targets: list[tuple[Any, str, str]], phases: Phases) -> Iterator[None]:
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in targets]
    for obj, attr, name in targets:
        setattr(obj, attr, phases.wrap(name, getattr(obj, attr)))
    try:
        yield
    finally:
        for obj, attr, fn in saved:
            setattr(obj, attr, fn)


def profile_phases(
    services: Services, keyer: Keyer, parties: dict[str, Party | None], specs: list[Spec], t0: datetime
) -> Result:
    """Where one submit's time goes: wrap each step, sum over `specs`."""
    phases = Phases()
    store = services.store
    plain_write = store.write

    @contextmanager
    def timed_write() -> Iterator[Any]:
        t = time.perf_counter()
        cm = plain_write()
        w = cm.__enter__()
        phases.total["write lock + BEGIN IMMEDIATE"] += time.perf_counter() - t
        try:
            yield w
        except BaseException:
            if not cm.__exit__(*sys.exc_info()):
                raise
            return
        t = time.perf_counter()
        cm.__exit__(None, None, None)
        phases.total["COMMIT (WAL fsync) + cache"] += time.perf_counter() - t

    reader, writer = sql_mod.SqlReader, sql_mod.SqlWriter
    targets: list[tuple[Any, str, str]] = [
        (filings_mod.Filings, "_validate", "validate (outline checks)"),
        (filings_mod.Filings, "_notice", "notice"),
        (covers_mod.Covers, "of", "H3 covers (own + search cells; before the lock)"),
        (reader, "find_filings", "find_filings (SQL + fetch + decode)"),
        (reader, "_current", "  of which: docs of current versions (SQL + decode)"),
        (sql_mod, "decode_filing", "  of which: decode_filing (JSON -> Filing)"),
        (filings_mod, "detect", "detect (exact 4D check)"),
        (writer, "put_filing", "put_filing (INSERTs)"),
        (writer, "add_conflicts", "add_conflicts (INSERTs)"),
        (hotline_mod.Hotline, "on_filing", "hotline: automatic messages and events"),
        (ledger_mod.Ledger, "append", "log append (hashes + INSERTs)"),
        (services.filings, "notifier", "F3548 subscriptions to notify"),
        (ledger_mod.Ledger, "entry", "  of all the above and before: log entries (canonical JSON)"),
    ]
    store.write = timed_write  # type: ignore[method-assign]
    total = 0.0
    n = 0
    try:
        with _patched(targets, phases):
            for spec in specs:
                key, _ = keyer.key(spec, t0)
                party = parties[spec.owner]
                assert party is not None
                draft = spec.draft(t0)
                phases.active = True
                t = time.perf_counter()
                services.filings.submit(party, draft, key, filing_id=spec.id)
                total += time.perf_counter() - t
                phases.active = False
                n += 1
    finally:
        del store.write
    per = {name: secs / n * 1e3 for name, secs in phases.total.items()}
    accounted = sum(v for k, v in per.items() if not k.startswith("  "))
    per["(rest: Filing, uuid, key check, Conflict objects, ...)"] = total / n * 1e3 - accounted
    log(f"profile of {n} submits (mean {total / n * 1e3:.2f} ms each, timers on):")
    order = ["write lock + BEGIN IMMEDIATE", *(name for _, _, name in targets), "COMMIT (WAL fsync) + cache"]
    per = {name: per[name] for name in [*order, *per] if name in per}  # in the order submit runs them
    for name, v in per.items():
        log(f"  {name:<58} {v:7.3f} ms")
    return {"filings": n, "mean_ms": total / n * 1e3, "ms_per_filing": per, "calls": dict(phases.calls)}


# -- HTTP -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def warn_toml(dest: Path) -> Path:
    text = (Path(agreements.__file__).parent / agreements.DEFAULT_AGREEMENT).read_text("utf-8")
    if 'conflict_action = "block"' not in text:
        raise SystemExit('the default agreement no longer says conflict_action = "block"')
    dest.write_text(text.replace('conflict_action = "block"', 'conflict_action = "warn"'), "utf-8")
    return dest


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """The process and its children (the worker processes of `serve --workers N`)."""
    pids = [pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            pids.append(int(stat.parent.name))
    return pids


def tree_cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for p in pids:
        try:
            total += cpu_seconds(p)
        except OSError:
            pass
    return total


def http_run(path: Database, work: Path, t0: datetime, specs: list[Spec], workers: int = 1) -> Result:
    """Through `deconflict serve` on `path` (its keys and agreement in `work`)."""
    agreement = warn_agreement()
    store = open_store(path)
    services = Services.build(store, agreement)
    tokens = {pid: services.parties.rotate(pid) for pid in OWNERS}
    store.close()
    keyer = Keyer(path, agreement)
    log(f"HTTP: building {len(specs):,} request bodies (keys against the current state)")
    bodies: list[tuple[Spec, list[str]]] = [(s, keyer.key(s, t0)[0]) for s in specs]
    keyer.close()

    port = free_port()
    toml = warn_toml(work / "agreement-warn.toml")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deconflict",
            "serve",
            "--data-dir",
            str(work),
            "--agreement",
            str(toml),
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--workers",
            str(workers),
            "--database",
            str(path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.2)
        log(f"HTTP: server pid {server.pid} on port {port}; {CLIENTS} clients, {len(bodies):,} POSTs")
        pids = process_tree(server.pid)
        cpu0 = tree_cpu_seconds(pids)
        result = _load(port, tokens, bodies, t0)
        server_cpu = tree_cpu_seconds(pids) - cpu0
        result["workers"] = workers
        result["server_cpu_ms_per_filing"] = server_cpu / max(1, result["accepted"]) * 1e3
        result["server_cpu_share"] = server_cpu / result["seconds"]
        result["server_vm_hwm_mb"] = sum(vm_hwm_mb(p) for p in pids if Path(f"/proc/{p}").exists())
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    result.update(race_check(path, agreement, result.pop("accepted_ids")))
    log(
        f"HTTP: {result['filings_per_s']:,.0f} filings/s, p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms, retries {result['retries']}, errors {result['errors']}, "
        f"client CPU {result['client_cpu_share']:.0%} of one core, server CPU "
        f"{result['server_cpu_ms_per_filing']:.2f} ms per filing "
        f"({result['server_cpu_share']:.0%} of one core), server VmHWM "
        f"{result['server_vm_hwm_mb']:,.0f} MB; race check: {result['race_pairs']} conflicting pairs, "
        f"{result['race_missing_records']} without a record, {result['missing_filings']} filings missing"
    )
    return result


def _load(port: int, tokens: dict[str, str], bodies: list[tuple[Spec, list[str]]], t0: datetime) -> Result:
    encoded = [(s.owner, {"kind": s.kind, "volumes": [s.feature(t0)], "key": key}) for s, key in bodies]
    payloads = [(owner, doc, orjson.dumps(doc)) for owner, doc in encoded]
    next_index = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    accepted: list[str] = []
    counts = {"retries": 0, "errors": 0, "conflicts": 0}
    errors: list[str] = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        ids: list[str] = []
        retries = failures = conflicts = 0
        while (i := next(next_index)) < len(payloads):
            owner, doc, body = payloads[i]
            headers = {"Authorization": f"Bearer {tokens[owner]}", "Content-Type": "application/json"}
            t = time.perf_counter()
            for attempt in (0, 1):
                conn.request("POST", "/v1/intents", body, headers)
                resp = conn.getresponse()
                data = resp.read()
                if resp.status == 409 and attempt == 0:
                    problem = orjson.loads(data)
                    if problem.get("missing"):
                        retries += 1
                        extra = [m["ovn"] for m in problem["missing"]]
                        body = orjson.dumps({**doc, "key": [*doc["key"], *extra]})
                        continue
                break
            mine.append(time.perf_counter() - t)
            if resp.status == 201:
                out = orjson.loads(data)
                ids.append(out["filing"]["id"])
                conflicts += len(out["conflicts"])
            else:
                failures += 1
                if len(errors) < 5:
                    errors.append(f"{resp.status} {data[:200]!r}")
        conn.close()
        with lock:
            latencies.extend(mine)
            accepted.extend(ids)
            counts["retries"] += retries
            counts["errors"] += failures
            counts["conflicts"] += conflicts

    wall, cpu = run_clients(CLIENTS, client)
    if errors:
        log(f"HTTP: first errors: {errors}")
    result = ms_summary(latencies)
    result.update(
        requests=len(payloads),
        accepted=len(accepted),
        seconds=wall,
        filings_per_s=len(accepted) / wall,
        client_cpu_s=cpu,
        client_cpu_share=cpu / wall,
        mean_conflicts=counts["conflicts"] / max(1, len(accepted)),
        retries=counts["retries"],
        errors=counts["errors"],
        accepted_ids=accepted,
    )
    return result


def race_check(path: Database, agreement: Agreement, ids: list[str]) -> Result:
    """Every accepted filing is stored; every conflicting pair among them has a record."""
    store = open_store(path)
    with store.read() as r:
        found = [r.get_filing(fid) for fid in ids]
        records = {frozenset((c.finding.a.id, c.finding.b.id)) for c in r.list_conflicts(state=None)}
    store.close()
    stored: list[Filing] = [f for f in found if f is not None]
    pairs = {frozenset((f.a.id, f.b.id)) for f in all_conflicts(stored, agreement)}
    return {
        "missing_filings": len(ids) - len(stored),
        "race_pairs": len(pairs),
        "race_missing_records": len(pairs - records),
    }


# -- report -----------------------------------------------------------------------------


def report(n: int, results: Result) -> str:
    d, pg = results.get("deconflict", {}), results.get("postgis", {})
    ip, hp = d.get("in_process", {}), d.get("http", {})
    one, ser, rc = pg.get("one_connection", {}), pg.get("serializable", {}), pg.get("read_committed", {})
    sph = pg.get("one_connection_sphere", {})

    def f(v: Any, fmt: str) -> str:
        return "—" if v is None else format(v, fmt)

    def ratio(a: Any, b: Any) -> str:
        return "—" if a is None or b in (None, 0) else f"{a / b:.2f}"

    rows = [
        ("fill (s)", d.get("fill", {}).get("seconds"), pg.get("fill_s"), ".0f", False),
        ("filing + check, one at a time: p50 (ms)", ip.get("p50_ms"), one.get("p50_ms"), ".3f", True),
        ("  p90 (ms)", ip.get("p90_ms"), one.get("p90_ms"), ".3f", False),
        ("  p99 (ms)", ip.get("p99_ms"), one.get("p99_ms"), ".3f", True),
        ("  max (ms)", ip.get("max_ms"), one.get("max_ms"), ".3f", False),
        ("  CPU per filing, mean (ms)", ip.get("cpu_mean_ms"), None, ".3f", False),
        ("  mean conflicts per filing", ip.get("mean_conflicts"), one.get("mean_conflicts"), ".2f", False),
        ("  PostGIS, sphere distances: p50 (ms)", None, sph.get("p50_ms"), ".3f", False),
        ("  PostGIS, sphere distances: p99 (ms)", None, sph.get("p99_ms"), ".3f", False),
        ("  mean index candidates per filing", ip.get("mean_candidates"), None, ".1f", False),
        ("8 clients: filings/s (race-free)", hp.get("filings_per_s"), ser.get("filings_per_s"), ",.0f", True),
        ("  latency p50 under load (ms)", hp.get("p50_ms"), ser.get("p50_ms"), ".1f", False),
        ("  latency p99 under load (ms)", hp.get("p99_ms"), ser.get("p99_ms"), ".1f", False),
        ("  retries (missing key / serialization)", hp.get("retries"), ser.get("retries"), "d", False),
        ("  conflicting pairs among them", hp.get("race_pairs"), ser.get("race_pairs"), "d", False),
        (
            "  ... without a record / seen by neither",
            hp.get("race_missing_records"),
            ser.get("race_unseen_pairs"),
            "d",
            False,
        ),
        (
            "  client CPU (share of one core)",
            hp.get("client_cpu_share"),
            ser.get("client_cpu_share"),
            ".0%",
            False,
        ),
        ("  server CPU per filing (ms)", hp.get("server_cpu_ms_per_filing"), None, ".2f", False),
        ("  server CPU (share of one core)", hp.get("server_cpu_share"), None, ".0%", False),
        ("8 clients, READ COMMITTED: filings/s", None, rc.get("filings_per_s"), ",.0f", False),
        ("  conflicting pairs neither side saw", None, rc.get("race_unseen_pairs"), "d", False),
        ("peak RSS, in-process (MB)", ip.get("rss_peak_mb"), None, ",.0f", False),
        ("peak RSS, server (MB)", hp.get("server_vm_hwm_mb"), pg.get("server_rss_mb"), ",.0f", False),
        ("database on disk (MB)", d.get("db_mb"), pg.get("db_mb"), ",.0f", False),
    ]
    name = "deconflict" if results.get("store", "sqlite") == "sqlite" else "deconf./PG"
    head = f"{'N = ' + format(n, ','):<48} {name:>12} {'PostGIS':>12} {'ratio d/P':>10}"
    lines = [head, "-" * len(head)]
    for label, a, b, fmt, show_ratio in rows:
        lines.append(f"{label:<48} {f(a, fmt):>12} {f(b, fmt):>12} {ratio(a, b) if show_ratio else '':>10}")
    lines.append("")
    lines.append(
        "targets at 1M: in-process p99 <= 2 ms; >= 1,500 filings/s through HTTP with 8 clients; "
        "<= 4 GiB resident. deconflict's 8-client figure is through HTTP (server + 8 client threads "
        "on the same 2 cores); PostGIS's is straight SQL over 8 connections."
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="active intents to fill (default 100,000)")
    ap.add_argument("--measure", type=int, default=2_000, help="timed in-process filings")
    ap.add_argument("--warmup", type=int, default=100, help="in-process filings before timing")
    ap.add_argument("--profile", type=int, default=300, help="filings for the phase breakdown (0: none)")
    ap.add_argument("--http", action="store_true", help="measure throughput through HTTP")
    ap.add_argument("--requests", type=int, default=4_000, help="POSTs in the HTTP and 8-connection runs")
    ap.add_argument("--workers", type=int, default=1, help="`deconflict serve --workers` for --http")
    ap.add_argument("--postgis", action="store_true", help="measure the PostgreSQL + PostGIS peer")
    ap.add_argument(
        "--postgis-sphere", action="store_true", help="also time PostGIS with sphere (not spheroid) distances"
    )
    ap.add_argument("--data-dir", help="keep (and reuse) the filled store here")
    ap.add_argument("--batch", type=int, default=5_000, help="filings per fill transaction")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--store",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="deconflict's store: SQLite (default) or its PostgreSQL backend in a private cluster",
    )
    args = ap.parse_args()

    kinds = sorted(agreements.load().kinds)
    if args.store == "postgres":
        if args.data_dir:
            sys.exit("--data-dir keeps a SQLite store; with --store postgres the database is filled afresh")
        finish(args, run_on_postgres(args, kinds))
        return
    base, t0, fill_result = prepare_base(args, kinds)
    results: Result = {"n": args.n, "seed": args.seed, "t0": t0.isoformat(), "store": "sqlite"}
    results["deconflict"] = {"fill": fill_result}
    measured = fresh_specs(args.warmup + args.measure + args.profile, args.seed + 1, kinds, "m", t0)
    loaded = fresh_specs(args.requests, args.seed + 2, kinds, "h", t0)
    with tempfile.TemporaryDirectory(prefix="strategic-run-", dir=base.parent) as tmp:
        work = Path(tmp) / DB_FILE
        log(f"copying the filled store to {work}")
        shutil.copyfile(base, work)
        results["deconflict"]["in_process"] = in_process(work, t0, measured, args)
        if args.http:
            results["deconflict"]["http"] = http_run(work, Path(tmp), t0, loaded, args.workers)
        results["deconflict"]["db_mb"] = db_size_mb(work)
    if args.postgis:
        results["postgis"] = postgis(args, kinds, t0, measured, loaded)
    finish(args, results)
    if not args.data_dir:
        shutil.rmtree(base.parent, ignore_errors=True)


def postgis(
    args: argparse.Namespace, kinds: list[str], t0: datetime, measured: list[Spec], loaded: list[Spec]
) -> Result:
    import _postgis

    specs = generate(args.n, args.seed, kinds, "b")
    return _postgis.run(
        specs,
        measured[: args.warmup + args.measure],
        loaded,
        t0,
        warn_agreement(),
        warmup=args.warmup,
        clients=CLIENTS,
        sphere_too=args.postgis_sphere,
    )


def run_on_postgres(args: argparse.Namespace, kinds: list[str]) -> Result:
    """deconflict's own PostgreSQL store (`--store postgres`) in a private, durable cluster
    with the PostGIS peer's settings: filled, then timed in-process and through HTTP
    exactly as on SQLite."""
    import psycopg

    t0 = (datetime.now(UTC) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    results: Result = {"n": args.n, "seed": args.seed, "t0": t0.isoformat(), "store": "postgres"}
    measured = fresh_specs(args.warmup + args.measure + args.profile, args.seed + 1, kinds, "m", t0)
    loaded = fresh_specs(args.requests, args.seed + 2, kinds, "h", t0)
    with cluster(settings=PG_SETTINGS) as admin, tempfile.TemporaryDirectory(prefix="strategic-pg-") as tmp:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE deconflict")
        url = admin.rsplit("/", 1)[0] + "/deconflict"
        log(f"PostgreSQL store at {url}")
        ctx = multiprocessing.get_context("fork")
        queue: multiprocessing.Queue[Result] = ctx.Queue()
        child = ctx.Process(target=_fill_child, args=(url, args, kinds, t0, queue))
        child.start()
        fill_result = queue.get()
        child.join()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        log(f"filled {fill_result['filings']:,} filings in {fill_result['seconds']:.0f} s")
        results["deconflict"] = {"fill": fill_result}
        results["deconflict"]["in_process"] = in_process(url, t0, measured, args)
        if args.http:
            results["deconflict"]["http"] = http_run(url, Path(tmp), t0, loaded, args.workers)
        results["deconflict"]["db_mb"] = db_size_mb(url)
    if args.postgis:
        results["postgis"] = postgis(args, kinds, t0, measured, loaded)
    return results


def finish(args: argparse.Namespace, results: Result) -> None:
    table = report(args.n, results)
    print("\n" + table)
    OUT_DIR.mkdir(exist_ok=True)
    suffix = "" if args.store == "sqlite" else f"-{args.store}"
    out = OUT_DIR / f"strategic-{args.n}{suffix}.json"
    out.write_text(json.dumps({**results, "table": table.splitlines()}, indent=2, default=str))
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
