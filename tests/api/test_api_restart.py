"""After a crash (SIGKILL) and a restart of `deconflict serve`, everything accepted
before is there, unchanged."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from conftest import free_port, start_deconflict


def start(
    data_dir: Path, port: int, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`deconflict serve --seed-example` as a process (with `env` added to this one's),
    once its /healthz answers."""
    args = ["serve", "--data-dir", str(data_dir), "--port", str(port), "--seed-example"]
    return start_deconflict([*args, "--log-level", "warning", *extra], port, env=env)


def everything(url: str, token: str) -> dict[str, Any]:
    c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
    intents = c.get("/v1/intents").json()
    return {
        "intents": intents,
        "versions": {i["id"]: c.get(f"/v1/intents/{i['id']}/versions").json() for i in intents},
        "conflicts": c.get("/v1/conflicts", params={"state": "open"}).json(),
        "closed": c.get("/v1/conflicts", params={"state": "closed"}).json(),
        "parties": c.get("/v1/parties").json(),
        "constraints": c.get("/v1/constraints").json(),
    }


def test_everything_accepted_survives_a_crash_and_restart(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(tmp_path, port)
    try:
        tokens = json.loads((tmp_path / "example-tokens.json").read_text())
        c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens['south']}"})
        t0 = datetime.now(UTC) + timedelta(hours=3)
        feature = {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [34.8, 32.1]},
            "properties": {
                "radius_m": 5000,
                "altitude_lower_m": 0,
                "altitude_upper_m": 3000,
                "time_start": t0.isoformat().replace("+00:00", "Z"),
                "time_end": (t0 + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
            },
        }
        r = c.post("/v1/intents", json={"kind": "crewed_flight", "volumes": [feature]})
        assert r.status_code == 201, r.text
        f = r.json()["filing"]
        r = c.post(f"/v1/intents/{f['id']}/state", json={"ovn": f["ovn"], "state": "activated"})
        assert r.status_code == 200
        r = c.post(
            "/v1/constraints",
            json={"volumes": [{**feature, "geometry": {"type": "Point", "coordinates": [34.0, 31.0]}}]},
        )
        assert r.status_code == 201, r.text
        before = everything(url, tokens["south"])
        assert len(before["intents"]) == 4 and before["conflicts"]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    proc = start(tmp_path, port)
    try:
        assert everything(url, tokens["south"]) == before
    finally:
        proc.terminate()
        proc.wait(timeout=10)
