"""Kill -9 during a burst of writes: after a restart the log verifies, and every write
that got an answer has its entry (the one its receipt names) and its filing."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from conftest import free_port
from test_api_restart import start

from deconflict.ledger.entries import Kind, decode_entry
from deconflict.ledger.rfc9162 import leaf_hash

THREADS = 6
PARTIES = ("north", "south", "drones")  # the seeded operators
MIN_ACKED = 20
BURST_S = 1.0


def _z(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def spread_intent(thread: int, seq: int, t0: datetime) -> dict[str, Any]:
    """A small drone flight at a point of its own: 0.5° of longitude between threads
    and 0.01° (~1.1 km) of latitude between one thread's filings, far from each other
    (the uas_flight buffer is 500 m) and from the seeded filings, so none conflicts
    and none needs a key."""
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [10.0 + 0.5 * thread, 5.0 + 0.01 * seq]},
        "properties": {
            "radius_m": 50,
            "altitude_lower_m": 0,
            "altitude_upper_m": 100,
            "time_start": _z(t0),
            "time_end": _z(t0 + timedelta(minutes=30)),
        },
    }
    return {"kind": "uas_flight", "volumes": [feature]}


def deconflict(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deconflict", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_a_kill_during_a_burst_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(tmp_path, port, "--sth-interval-s", "0.2")
    tokens = json.loads((tmp_path / "example-tokens.json").read_text())
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)

    # (party, filing id, leaf_index, entry_hash) of every 201 answer
    acked: list[tuple[str, str, int, str]] = []
    failures: list[str] = []
    guard = threading.Lock()
    stop = threading.Event()

    def burst(thread: int) -> None:
        party = PARTIES[thread % len(PARTIES)]
        headers = {"Authorization": f"Bearer {tokens[party]}"}
        with httpx.Client(base_url=url, headers=headers, timeout=10) as c:
            seq = 0
            while not stop.is_set():
                try:
                    r = c.post("/v1/intents", json=spread_intent(thread, seq, t0))
                except httpx.TransportError:
                    return  # the server is gone: this write got no answer
                seq += 1
                if r.status_code != 201:
                    with guard:
                        failures.append(f"{r.status_code}: {r.text[:200]}")
                    return
                body = r.json()
                receipt = body["receipt"]
                with guard:
                    acked.append((party, body["filing"]["id"], receipt["leaf_index"], receipt["entry_hash"]))

    workers = [threading.Thread(target=burst, args=(i,), daemon=True) for i in range(THREADS)]
    try:
        for w in workers:
            w.start()
        deadline = time.monotonic() + 10
        time.sleep(BURST_S)
        while len(acked) < MIN_ACKED and not failures and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # requests are in flight: the threads never pause
        proc.wait()
        stop.set()
        for w in workers:
            w.join(timeout=15)
        if proc.stderr:
            proc.stderr.close()
    assert not failures, failures[:3]
    assert not any(w.is_alive() for w in workers)
    with guard:
        answered = list(acked)
    assert len(answered) >= MIN_ACKED, f"only {len(answered)} writes answered before the kill"
    assert len({i for _, _, i, _ in answered}) == len(answered)  # no two receipts share a leaf

    proc = start(tmp_path, port, "--sth-interval-s", "0.2")
    try:
        key = httpx.get(
            f"{url}/v1/log/key", headers={"Authorization": f"Bearer {tokens['shield']}"}, timeout=10
        )
        assert key.status_code == 200, key.text
        export = tmp_path / "export.ndjson"
        done = deconflict("ledger", "export", "--data-dir", str(tmp_path), str(export))
        assert done.returncode == 0, done.stderr
        checked = deconflict("ledger", "verify", str(export), "--public-key", key.json()["public_key"])
        assert checked.returncode == 0, checked.stdout + checked.stderr
        exported = sum(1 for line in export.read_bytes().splitlines() if b'"index"' in line)
        assert exported > max(i for _, _, i, _ in answered)

        clients = {
            p: httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens[p]}"}, timeout=10)
            for p in PARTIES
        }
        for party, filing_id, index, entry_hash in answered:
            c = clients[party]
            page = c.get("/v1/log/entries", params={"start": index, "end": index + 1})
            assert page.status_code == 200, page.text
            assert len(page.json()["entries"]) == 1, f"leaf {index} is missing"
            entry = base64.b64decode(page.json()["entries"][0])
            assert leaf_hash(entry).hex() == entry_hash, f"leaf {index} is not the acknowledged entry"
            decoded = decode_entry(entry)
            assert decoded.kind is Kind.FILING_CREATED and decoded.body["id"] == filing_id
            filing = c.get(f"/v1/intents/{filing_id}")
            assert filing.status_code == 200, filing.text
            assert filing.json()["id"] == filing_id
        for c in clients.values():
            c.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()
