"""`deconflict serve`'s tactical scan cycle, on the system clock: the option (and its
environment variable, which carries it to `--workers` processes) sets the interval, and
the server's own cycle alerts a conflict with no further batch."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from conftest import free_port
from test_api_restart import start

from deconflict.cli import DEFAULT_SCAN_INTERVAL_S, app_factory, build_parser


def _report(track: str, lon: float, heading: float) -> dict[str, object]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {"track": track, "time": now, "lat": 34.9, "lon": lon, "alt_m": 3000, "gs_mps": 200,
            "trk_deg": heading, "vs_mps": 0, "kind": "crewed_flight"}  # fmt: skip


def test_serve_scans_on_its_cycle_and_alerts_without_another_batch(tmp_path: Path) -> None:
    port = free_port()
    proc = start(tmp_path, port, "--tactical-scan-interval-s", "0.2")
    try:
        tokens = json.loads((tmp_path / "example-tokens.json").read_text())
        url = f"http://127.0.0.1:{port}"

        def client(party: str) -> httpx.Client:
            return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens[party]}"})

        with client("north") as north, client("south") as south:
            r = north.post("/v1/tracks", json={"reports": [_report("NAF101", 35.5, 90)]})
            assert r.status_code == 200 and r.json()["alerts"] == []
            r = south.post("/v1/tracks", json={"reports": [_report("SAF7", 35.7, 270)]})  # head-on, 18 km
            assert r.status_code == 200 and r.json()["alerts"] == []  # answered before any scan
            deadline = time.monotonic() + 10
            alerts: list[dict[str, object]] = []
            while not alerts and time.monotonic() < deadline:  # bounded: the cycle is 0.2 s
                time.sleep(0.1)
                alerts = north.get("/v1/tactical/alerts").json()
            assert [(a["track_a"], a["track_b"]) for a in alerts] == [("north/NAF101", "south/SAF7")]
            messages = north.get("/v1/hotline/messages", params={"limit": 50}).json()
            tactical = [m for m in messages if m["code"] == "CONFLICT_WARNING" and "track_a" in m["fields"]]
            assert [m["fields"]["conflict"] for m in tactical] == [alerts[0]["id"]]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_option_its_default_and_its_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DECONFLICT_TACTICAL_SCAN_INTERVAL_S", raising=False)
    assert build_parser().parse_args(["serve"]).tactical_scan_interval_s == DEFAULT_SCAN_INTERVAL_S == 1.0
    assert (
        build_parser().parse_args(["serve", "--tactical-scan-interval-s", "0"]).tactical_scan_interval_s == 0
    )
    for bad in ("-1", "inf", "nan", "soon"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["serve", "--tactical-scan-interval-s", bad])
    monkeypatch.setenv("DECONFLICT_TACTICAL_SCAN_INTERVAL_S", "2.5")
    assert build_parser().parse_args(["serve"]).tactical_scan_interval_s == 2.5
    # what a --workers process builds its app from (cmd_serve sets these before starting them)
    monkeypatch.setenv("DECONFLICT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DECONFLICT_DATABASE", str(tmp_path / "w.sqlite3"))
    app = app_factory()
    assert app.state.services.tactical.scan_interval_s == 2.5
    app.state.services.store.close()
    monkeypatch.setenv("DECONFLICT_TACTICAL_SCAN_INTERVAL_S", "0")
    app = app_factory()
    assert app.state.services.tactical.scan_interval_s == 0.0
    app.state.services.store.close()
