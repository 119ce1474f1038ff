"""`deconflict serve --workers 2`: two processes on one SQLite file stay one truth.
Conflicting filings sent concurrently to both are never both accepted unaware."""

from __future__ import annotations

import json
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from conftest import free_port
from test_api_restart import start


def test_two_workers_never_accept_conflicting_filings_unaware(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(tmp_path, port, "--workers", "2")
    try:
        tokens = json.loads((tmp_path / "example-tokens.json").read_text())
        t0 = datetime.now(UTC) + timedelta(hours=3)
        accepted: list[str] = []
        statuses: list[int] = []
        lock = threading.Lock()

        def worker(i: int) -> None:
            party = ("north", "south", "drones")[i % 3]
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens[party]}"}) as c:
                for j in range(6):
                    feature = {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [20.0 + 0.001 * i, 60.0 + 0.001 * j]},
                        "properties": {
                            "radius_m": 2000,
                            "altitude_lower_m": 0,
                            "altitude_upper_m": 500,
                            "time_start": t0.isoformat().replace("+00:00", "Z"),
                            "time_end": (t0 + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
                        },
                    }
                    r = c.post("/v1/intents", json={"kind": "uas_flight", "volumes": [feature]})
                    with lock:
                        statuses.append(r.status_code)
                        if r.status_code == 201:
                            accepted.append(party)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        served_by = {httpx.get(f"{url}/healthz").json()["pid"] for _ in range(40)}
        assert len(served_by) == 2  # both worker processes answer
        assert sorted(set(statuses)) <= [201, 409], statuses
        assert len(statuses) == 54
        # every filing overlaps every other: only the first party through gets its own in
        assert len(set(accepted)) == 1 and len(accepted) == 18, accepted
        c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens['shield']}"})
        points = [f["volumes"][0]["geometry"] for f in c.get("/v1/intents").json()]
        mine = [g for g in points if g["type"] == "Point" and g["coordinates"][1] >= 60]
        assert len(mine) == 18
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
