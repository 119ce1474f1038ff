"""Several `deconflict serve --database postgresql://...` processes on one database stay
one truth: 4 processes x 8 clients filing overlapping intents in one congested area, and
updating shared filings, all at once.

Checked afterwards, against the database and the offline detector:
- no lost update: every accepted update of a filing made exactly one new version, each
  from a distinct base version, versions contiguous;
- no missed conflict: the open conflicts recorded between current versions are exactly
  the pairs the offline `all_conflicts` finds among them, and each accepted filing's key
  held the version tokens of the conflicting versions stored before it;
- one shared record: the exported log verifies (`deconflict ledger export` + `verify_export`),
  and holds exactly one entry per accepted write (each receipt names its filing's version)
  and per conflict opened and closed.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from conftest import free_port
from test_api_restart import start

from deconflict import agreements
from deconflict.detect.strategic import all_conflicts
from deconflict.ledger.verify import verify_export
from deconflict.model import ConflictState
from deconflict.service.ledger import decoded, log_rows
from deconflict.store.postgres import PostgresStore

PROCESSES = 4
CLIENTS = 8  # per process
FILINGS = 4  # per client
UPDATES = 3  # per client, of its party's shared filing
OPERATORS = ("north", "south", "drones")
CENTRE = (20.0, 60.0)


def _z(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _feature(
    lon: float, lat: float, radius_m: float, t0: datetime, start_s: float, upper_m: float = 300
) -> Any:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {
            "radius_m": radius_m,
            "altitude_lower_m": 0,
            "altitude_upper_m": upper_m,
            "time_start": _z(t0 + timedelta(seconds=start_s)),
            "time_end": _z(t0 + timedelta(seconds=start_s + 1800)),
        },
    }


def _send(c: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    """One request; a 503 (store busy) is retried as its Retry-After asks."""
    for _ in range(50):
        r = c.request(method, path, json=body)
        if r.status_code != 503:
            return r
        time.sleep(float(r.headers.get("Retry-After", "1")) * random.random())
    return r


def test_four_processes_on_one_postgres_database_stay_one_truth(tmp_path: Path, pg_database: str) -> None:
    warn = tmp_path / "warn.toml"
    default = (Path(agreements.__file__).parent / "default.toml").read_text()
    warn.write_text(default.replace('conflict_action = "block"', 'conflict_action = "warn"'))
    agreement = agreements.load(str(warn))
    args = ("--database", pg_database, "--agreement", str(warn), "--sth-interval-s", "0.5")

    ports = [free_port() for _ in range(PROCESSES)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        # the first process seeds the parties and creates the signing key the others load
        procs.append(start(tmp_path, ports[0], *args))
        procs += [start(tmp_path, p, *args) for p in ports[1:]]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        tokens = json.loads((tmp_path / "example-tokens.json").read_text())
        assert len({httpx.get(f"{u}/healthz").json()["pid"] for u in urls}) == PROCESSES

        t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
        hot: dict[str, str] = {}  # party -> its shared filing, updated by all its clients
        for i, party in enumerate(OPERATORS):
            with httpx.Client(base_url=urls[i], headers={"Authorization": f"Bearer {tokens[party]}"}) as c:
                r = c.post(
                    "/v1/intents",
                    json={
                        "kind": "uas_flight",
                        "volumes": [_feature(CENTRE[0] + 1 + i, CENTRE[1], 300, t0, 0)],
                    },
                )
                assert r.status_code == 201, r.text
                hot[party] = r.json()["filing"]["id"]

        lock = threading.Lock()
        created: list[dict[str, Any]] = []  # responses of accepted filings (with the key sent)
        updated: list[dict[str, Any]] = []  # responses of accepted updates (with the base ovn)
        errors: list[str] = []

        def client(n: int) -> None:
            rng = random.Random(n)
            party = OPERATORS[n % len(OPERATORS)]
            url = urls[n % PROCESSES]
            headers = {"Authorization": f"Bearer {tokens[party]}"}
            with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
                for j in range(FILINGS):
                    # one congested area: 8 km across, two hours; each filing meets many others
                    lon = CENTRE[0] + rng.uniform(-0.07, 0.07)
                    lat = CENTRE[1] + rng.uniform(-0.035, 0.035)
                    feature = _feature(lon, lat, rng.uniform(300, 1500), t0, rng.uniform(0, 5400))
                    key: list[str] = []
                    for _ in range(30):
                        r = _send(
                            c, "POST", "/v1/intents", {"kind": "uas_flight", "volumes": [feature], "key": key}
                        )
                        if r.status_code == 201:
                            with lock:
                                created.append({**r.json(), "key": list(key)})
                            break
                        if r.status_code != 409 or not r.json()["type"].endswith("missing-key"):
                            errors.append(f"filing: {r.status_code} {r.text[:200]}")
                            return
                        key += [m["ovn"] for m in r.json()["missing"]]  # seen: acknowledge, file again
                    else:
                        errors.append("filing: the key never caught up")
                    for _ in range(UPDATES if j == 0 else 0):
                        for _ in range(100):
                            current = c.get(f"/v1/intents/{hot[party]}").json()
                            body = {
                                "ovn": current["ovn"],
                                "kind": "uas_flight",
                                "volumes": [
                                    _feature(
                                        CENTRE[0] + 1 + OPERATORS.index(party),
                                        CENTRE[1],
                                        300,
                                        t0,
                                        0,
                                        upper_m=300 + n,
                                    )
                                ],
                            }
                            r = _send(c, "PUT", f"/v1/intents/{hot[party]}", body)
                            if r.status_code == 200:
                                with lock:
                                    updated.append({**r.json(), "base": current["ovn"]})
                                break
                            if r.status_code != 409 or not r.json()["type"].endswith("stale-version"):
                                errors.append(f"update: {r.status_code} {r.text[:200]}")
                                return
                        else:
                            errors.append("update: never got through")

        threads = [threading.Thread(target=client, args=(n,)) for n in range(PROCESSES * CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(created) == PROCESSES * CLIENTS * FILINGS
        assert len(updated) == PROCESSES * CLIENTS * UPDATES
        time.sleep(1.0)  # a background head signing may still be writing

        export = tmp_path / "export.ndjson"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "deconflict",
                "ledger",
                "export",
                "--data-dir",
                str(tmp_path),
                "--database",
                pg_database,
                str(export),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            p.wait(timeout=30)

    store = PostgresStore(pg_database)
    try:
        with store.read() as r:
            current = r.list_filings(live_only=True)
            every = r.list_filings(live_only=False)
            versions = {f.id: r.filing_versions(f.id) for f in every}
            opened = r.list_conflicts()
        log = list(decoded(log_rows(store)))  # read before the store closes
    finally:
        store.close()

    # no lost update: each accepted update is one new version from a distinct base
    for party, fid in hot.items():
        mine = [u for u in updated if u["filing"]["id"] == fid]
        assert len(mine) == UPDATES * sum(1 for n in range(PROCESSES * CLIENTS) if OPERATORS[n % 3] == party)
        assert len({u["base"] for u in mine}) == len(mine)
        assert sorted(u["filing"]["version"] for u in mine) == list(range(2, len(mine) + 2))
        assert [v.version for v in versions[fid]] == list(range(1, len(mine) + 2))

    # no missed conflict: what is recorded open between current versions is exactly
    # what the offline detector finds among them
    def pair(a: Any, b: Any) -> frozenset[tuple[str, int]]:
        return frozenset({(a.id, a.version), (b.id, b.version)})

    expected = {pair(f.a, f.b) for f in all_conflicts(current, agreement)}
    recorded = {pair(c.finding.a, c.finding.b) for c in opened if c.state is ConflictState.OPEN}
    assert len(expected) > 2 * len(created)  # a congested area indeed
    assert recorded == expected
    # and every accepted filing had seen (keyed) each conflicting version stored before it
    ovn_of = {(v.id, v.version): v.ovn for vs in versions.values() for v in vs}
    for c in created:
        fid = c["filing"]["id"]
        for conflict in c["conflicts"]:
            other = conflict["b"] if conflict["a"]["id"] == fid else conflict["a"]
            assert ovn_of[(other["id"], other["version"])] in c["key"]

    # one shared record: it verifies, and holds one entry per accepted write
    report = verify_export(export)
    assert report.ok, report.summary()
    kinds = Counter(e.kind.value for _, e in log)
    assert kinds["filing_created"] == len(every)
    assert kinds["filing_versioned"] == len(updated)
    assert kinds["conflict_opened"] == len(opened)
    assert kinds["conflict_closed"] == sum(1 for c in opened if c.state is ConflictState.CLOSED)
    by_index = dict(log)
    for response in created + updated:
        entry = by_index[response["receipt"]["leaf_index"]]
        assert (entry.body["id"], entry.body["version"]) == (
            response["filing"]["id"],
            response["filing"]["version"],
        )
    filing_entries = [(e.body["id"], e.body["version"]) for _, e in log if e.kind.value.startswith("filing_")]
    assert len(filing_entries) == len(set(filing_entries)) == sum(len(v) for v in versions.values())
