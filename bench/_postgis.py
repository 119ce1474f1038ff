"""The peer for `bench/strategic.py`: the design a user would build instead of deconflict.

PostgreSQL 15 + PostGIS 3 in a private cluster (`deconflict.store.pg_cluster`: a
temporary directory, loopback port, `initdb` as the `postgres` user), with the settings a user would give a
dedicated box of this size (shared_buffers 2 GB, maintenance_work_mem 1 GB,
max_wal_size 8 GB; fsync and synchronous_commit left on, so a commit is durable),
and the predicate-lock room a user who runs SERIALIZABLE needs: at the default
`max_pred_locks_per_transaction` (64), a transaction's SIREAD locks on more than
32 pages of one relation are promoted to a lock on the whole relation, so any two
concurrent filings conflict. Measured at 1M intents with 8 connections: 87
filings/s with 9,531 serialization retries for 3,000 filings at the default,
507/s with 70 retries at 4,096.

One row per volume (every synthetic intent has one): the outline as `geography`
(SRID 4326; a circle stored as its circumscribed 32-gon, computed by the client,
so the stored shape is a slight superset), the time window as a `tstzrange`, the
altitude band as a `numrange`, kind and owner; a GiST index on (geog, during) and
a kinds table with the agreement's buffers. Loaded with COPY, indexed, analysed.

The conflict query of a filing (see `CONFLICTS`): other owners only; the pair's
buffers are the larger of the two kinds' (CASE over the agreement's kinds), exactly as the
agreement says; the index is used through a constant pre-filter at the largest
buffer of any kind (ST_DWithin on geography, spheroid distances, and `&&` on the
widened time range), then each row is checked with its pair's own buffers.
A filing is one transaction: that query, then the INSERT.

Measured: on one connection, p50/p99 per filing (and, with `sphere_too`, again with
ST_DWithin on the sphere instead of the spheroid: cheaper, less exact); with 8 connections (threads, one
connection each) at SERIALIZABLE (serialization failures retried and counted) and
at READ COMMITTED, filings/s. For both, the pairs of concurrently inserted filings
that conflict (offline `all_conflicts`) but where neither transaction saw the other
are counted: at SERIALIZABLE there must be none.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from _data import Spec, pct, run_clients
from psycopg import IsolationLevel

from deconflict.detect.strategic import all_conflicts
from deconflict.model import Agreement
from deconflict.store.pg_cluster import cluster

POSTGIS_CONTROL = Path("/usr/share/postgresql/15/extension/postgis.control")
SETTINGS = {
    "shared_buffers": "2GB",
    "maintenance_work_mem": "1GB",
    "max_wal_size": "8GB",
    "max_connections": "50",
    "listen_addresses": "127.0.0.1",
    # SERIALIZABLE's SIREAD locks stay per page, not per relation (see the docstring)
    "max_pred_locks_per_transaction": "4096",
}

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE TABLE kinds (name text PRIMARY KEY, h_m float8 NOT NULL, v_m float8 NOT NULL, t_s float8 NOT NULL);
CREATE TABLE intents (
    id     text PRIMARY KEY,
    owner  text NOT NULL,
    kind   text NOT NULL REFERENCES kinds (name),
    geog   geography(Polygon, 4326) NOT NULL,
    during tstzrange NOT NULL,
    alt    numrange NOT NULL
);
"""
INDEX = "CREATE INDEX intents_geog_during ON intents USING gist (geog, during)"

#: The conflict query; `{h}`, `{v}`, `{t}` become CASE expressions over the kinds
#: (`conflicts_sql`). A join on `kinds` instead led the planner, at 1M rows, to a
#: nested loop that ran the index scan once per kind.
CONFLICTS = """
SELECT i.id FROM intents AS i
WHERE i.owner <> %(owner)s
  AND i.during && tstzrange(%(t0)s - make_interval(secs => %(t_max)s),
                            %(t1)s + make_interval(secs => %(t_max)s), '[]')
  AND ST_DWithin(i.geog, ST_GeogFromText(%(wkt)s::text), %(h_max)s, %(spheroid)s)
  AND ST_DWithin(i.geog, ST_GeogFromText(%(wkt)s::text), greatest({h}, %(h)s), %(spheroid)s)
  AND lower(i.during) <= %(t1)s + make_interval(secs => greatest({t}, %(t)s))
  AND upper(i.during) >= %(t0)s - make_interval(secs => greatest({t}, %(t)s))
  AND lower(i.alt) <= (%(hi)s + greatest({v}, %(v)s))::numeric
  AND upper(i.alt) >= (%(lo)s - greatest({v}, %(v)s))::numeric
"""
INSERT = """
INSERT INTO intents (id, owner, kind, geog, during, alt)
VALUES (%(id)s, %(owner)s, %(kind)s, ST_GeogFromText(%(wkt)s::text),
        tstzrange(%(t0)s, %(t1)s, '[]'), numrange(%(lo)s::numeric, %(hi)s::numeric, '[]'))
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] postgis: {msg}", flush=True)


def ensure_installed() -> None:
    if POSTGIS_CONTROL.exists():
        return
    log("installing postgresql-15-postgis-3")
    cmd = ["apt-get", "install", "-y", "postgresql-15", "postgresql-15-postgis-3"]
    if subprocess.run(cmd, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], check=True, capture_output=True)
        subprocess.run(cmd, check=True, capture_output=True)


def _range(t0: datetime, a: float, b: float) -> str:
    return f"[{(t0 + timedelta(seconds=a)).isoformat()},{(t0 + timedelta(seconds=b)).isoformat()}]"


def conflicts_sql(agreement: Agreement) -> str:
    """The conflict query with each kind's buffers as bound CASE branches."""

    def case(column: str) -> str:
        whens = " ".join(f"WHEN %(kind_{i})s THEN %({column}_{i})s" for i in range(len(agreement.kinds)))
        return f"(CASE i.kind {whens} END)::float8"

    return CONFLICTS.format(h=case("h"), v=case("v"), t=case("t"))


def params(spec: Spec, t0: datetime, agreement: Agreement, spheroid: bool = True) -> dict[str, Any]:
    rules = agreement.kinds[spec.kind]
    reach = agreement.max_buffers
    return {
        "id": spec.id,
        "owner": spec.owner,
        "kind": spec.kind,
        "wkt": spec.wkt(),
        "t0": t0 + timedelta(seconds=spec.start_s),
        "t1": t0 + timedelta(seconds=spec.end_s),
        "lo": spec.lower_m,
        "hi": spec.upper_m,
        "h": rules.horizontal_buffer_m,
        "v": rules.vertical_buffer_m,
        "t": rules.time_buffer_s,
        "h_max": reach.horizontal_m,
        "t_max": reach.time_s,
        "spheroid": spheroid,
        **{
            f"{column}_{i}": value
            for i, k in enumerate(sorted(agreement.kinds.values(), key=lambda k: k.name))
            for column, value in (
                ("kind", k.name),
                ("h", k.horizontal_buffer_m),
                ("v", k.vertical_buffer_m),
                ("t", k.time_buffer_s),
            )
        },
    }


def load(dsn: str, specs: Sequence[Spec], t0: datetime, agreement: Agreement) -> float:
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO kinds VALUES (%s, %s, %s, %s)",
                [
                    (k.name, k.horizontal_buffer_m, k.vertical_buffer_m, k.time_buffer_s)
                    for k in agreement.kinds.values()
                ],
            )
            with cur.copy("COPY intents (id, owner, kind, geog, during, alt) FROM STDIN") as copy:
                for i, s in enumerate(specs):
                    during = _range(t0, s.start_s, s.end_s)
                    copy.write_row((s.id, s.owner, s.kind, s.wkt(), during, f"[{s.lower_m},{s.upper_m}]"))
                    if (i + 1) % 200_000 == 0:
                        log(f"  copied {i + 1:,} rows")
        log(f"  COPY done in {time.perf_counter() - started:.0f} s; building the GiST index")
        conn.execute(INDEX)
        conn.execute("ANALYZE intents")
        conn.execute("ANALYZE kinds")
        conn.execute("CHECKPOINT")
    return time.perf_counter() - started


def _file(conn: psycopg.Connection[Any], p: dict[str, Any], sql: str) -> list[str]:
    with conn.transaction():
        seen = [r[0] for r in conn.execute(sql, p).fetchall()]
        conn.execute(INSERT, p)
    return seen


def one_connection(
    dsn: str, specs: Sequence[Spec], t0: datetime, agreement: Agreement, warmup: int, spheroid: bool = True
) -> dict[str, Any]:
    """Each filing in turn on one connection; `spheroid=False` measures on the sphere instead."""
    times: list[float] = []
    conflicts: list[int] = []
    sql = conflicts_sql(agreement)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i, s in enumerate(specs):
            p = params(s, t0, agreement, spheroid)
            t = time.perf_counter()
            seen = _file(conn, p, sql)
            dt = time.perf_counter() - t
            if i >= warmup:
                times.append(dt)
                conflicts.append(len(seen))
        # what one typical query did (a filing near the median time), for the reader
        typical = sorted(range(warmup, len(specs)), key=lambda j: times[j - warmup])[len(times) // 2]
        plan = conn.execute(
            "EXPLAIN (ANALYZE, BUFFERS) " + sql, params(specs[typical], t0, agreement, spheroid)
        ).fetchall()
        log("EXPLAIN ANALYZE of a median filing's query:\n    " + "\n    ".join(r[0][:160] for r in plan))
    return {
        "count": len(times),
        "p50_ms": pct(times, 50) * 1e3,
        "p90_ms": pct(times, 90) * 1e3,
        "p99_ms": pct(times, 99) * 1e3,
        "max_ms": max(times) * 1e3,
        "mean_ms": sum(times) / len(times) * 1e3,
        "mean_conflicts": sum(conflicts) / len(conflicts),
    }


def concurrent(
    dsn: str,
    specs: Sequence[Spec],
    t0: datetime,
    agreement: Agreement,
    level: IsolationLevel,
    clients: int,
) -> dict[str, Any]:
    """`clients` connections filing `specs` (each once) as fast as they can."""
    payloads = [params(s, t0, agreement) for s in specs]
    sql = conflicts_sql(agreement)
    index = iter(range(len(payloads)))
    lock = threading.Lock()
    latencies: list[float] = []
    seen: dict[str, set[str]] = {}
    retries = 0

    def client() -> None:
        nonlocal retries
        mine: list[float] = []
        saw: dict[str, set[str]] = {}
        again = 0
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.isolation_level = level
            while True:
                with lock:
                    i = next(index, None)
                if i is None:
                    break
                p = payloads[i]
                t = time.perf_counter()
                while True:
                    try:
                        saw[p["id"]] = set(_file(conn, p, sql))
                        break
                    except psycopg.errors.SerializationFailure:
                        again += 1
                mine.append(time.perf_counter() - t)
        with lock:
            latencies.extend(mine)
            seen.update(saw)
            retries += again

    wall, cpu = run_clients(clients, client)
    created = t0 - timedelta(days=1)
    filings = [s.filing(t0, created) for s in specs]
    pairs = all_conflicts(filings, agreement)
    unseen = sum(1 for f in pairs if f.b.id not in seen[f.a.id] and f.a.id not in seen[f.b.id])
    return {
        "requests": len(payloads),
        "seconds": wall,
        "filings_per_s": len(payloads) / wall,
        "p50_ms": pct(latencies, 50) * 1e3,
        "p99_ms": pct(latencies, 99) * 1e3,
        "retries": retries,
        "client_cpu_share": cpu / wall,
        "race_pairs": len(pairs),
        "race_unseen_pairs": unseen,
    }


def run(
    specs: Sequence[Spec],
    measured: Sequence[Spec],
    loaded: Sequence[Spec],
    t0: datetime,
    agreement: Agreement,
    *,
    warmup: int,
    clients: int,
    sphere_too: bool = False,
    port: int = 54329,
) -> dict[str, Any]:
    ensure_installed()
    with cluster(port, SETTINGS) as dsn:
        log(f"loading {len(specs):,} intents")
        out: dict[str, Any] = {"fill_s": load(dsn, specs, t0, agreement)}
        log(f"loaded and indexed in {out['fill_s']:.0f} s")
        r = out["one_connection"] = one_connection(dsn, measured, t0, agreement, warmup)
        log(
            f"one connection: p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
            f"mean conflicts {r['mean_conflicts']:.2f}"
        )
        if sphere_too:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("DELETE FROM intents WHERE id = ANY(%s)", ([s.id for s in measured],))
                conn.execute("VACUUM ANALYZE intents")
            r = out["one_connection_sphere"] = one_connection(dsn, measured, t0, agreement, warmup, False)
            log(
                f"one connection, sphere distances (use_spheroid false): p50 {r['p50_ms']:.2f} ms, "
                f"p99 {r['p99_ms']:.2f} ms, mean conflicts {r['mean_conflicts']:.2f}"
            )
        for name, level in (
            ("serializable", IsolationLevel.SERIALIZABLE),
            ("read_committed", IsolationLevel.READ_COMMITTED),
        ):
            r = out[name] = concurrent(dsn, loaded, t0, agreement, level, clients)
            log(
                f"{clients} connections, {name}: {r['filings_per_s']:,.0f} filings/s, "
                f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, retries {r['retries']}, "
                f"conflicting pairs {r['race_pairs']}, unseen by both sides {r['race_unseen_pairs']}"
            )
            with psycopg.connect(dsn, autocommit=True) as conn:
                ids = [s.id for s in loaded]
                conn.execute("DELETE FROM intents WHERE id = ANY(%s)", (ids,))
                conn.execute("VACUUM ANALYZE intents")
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            out["db_mb"] = (row[0] if row else 0) / 1e6
    return out
