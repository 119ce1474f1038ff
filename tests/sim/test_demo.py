"""The demo scenario, played at 200x against a real server on loopback (SQLite, the real
clock, the demo's agreement): each scripted event is checked through the API and the
shared record."""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from deconflict.api.app import create_app
from deconflict.ledger.entries import decode_entry
from deconflict.service import Services
from deconflict.sim.demo import DURATION_S, Scenario, demo_agreement, register_parties
from deconflict.store.sqlite import SqliteStore

SPEED = 200.0


def _root_conftest() -> ModuleType:
    """tests/conftest.py (its ThreadServer and free_port), loaded by path: in a whole run
    the name `conftest` may be another folder's conftest (as tests/web/chromium.py does)."""
    name = "_deconflict_tests_conftest"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


ROOT = _root_conftest()


def eventually(check: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    """`check()` once it returns something true (the tick runs on the real clock)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp: Path = tmp_path_factory.mktemp("demo")
    services = Services.build(SqliteStore(tmp / "deconflict.sqlite3"), demo_agreement(SPEED), data_dir=tmp)
    tokens = register_parties(services, tmp)
    with ROOT.ThreadServer(
        create_app(services, tick_interval_s=0.1, sth_interval_s=None), lifespan="on"
    ) as url:
        scenario = Scenario(url, tokens, speed=SPEED, seed=7)
        started = time.monotonic()
        scenario.run()
        elapsed = time.monotonic() - started
        clients = {
            p: httpx.Client(base_url=url, headers={"Authorization": f"Bearer {t}"}) for p, t in tokens.items()
        }
        yield services, scenario, clients, elapsed, tmp
        for c in clients.values():
            c.close()
        scenario.close()
    services.store.close()


def log(services: Services) -> list[tuple[str, dict[str, Any]]]:
    with services.store.read() as r:
        size = r.log_size()
        return [
            (e.kind.value, dict(e.body)) for e in map(decode_entry, (b for _, b in r.log_entries(0, size)))
        ]


def test_runs_the_thirty_minutes_compressed(played: Any) -> None:
    _, scenario, _, elapsed, tmp = played
    assert elapsed >= DURATION_S / SPEED * 0.95
    assert scenario.log[-1].endswith("scenario complete") and len(scenario.log) == 13
    assert (tmp / "demo-tokens.json").stat().st_mode & 0o777 == 0o600


def test_late_filing_flagged_and_others_not(played: Any) -> None:
    _, scenario, c, _, _ = played
    transit = c["south"].get(f"/v1/intents/{scenario.ids['transit']}").json()
    patrol = c["north"].get(f"/v1/intents/{scenario.ids['patrol']}").json()
    assert transit["late"] is True and patrol["late"] is False


def test_strategic_conflict_opened_then_closed_by_the_update(played: Any) -> None:
    _, scenario, c, _, _ = played
    pair = {scenario.ids["patrol"], scenario.ids["survey"]}
    closed = c["shield"].get("/v1/conflicts", params={"state": "closed"}).json()
    assert [x for x in closed if {x["a"]["id"], x["b"]["id"]} == pair]
    still = c["shield"].get("/v1/conflicts").json()
    assert not [x for x in still if {x["a"]["id"], x["b"]["id"]} == pair]


def test_tactical_conflict_alerted_to_both(played: Any) -> None:
    _, _, c, _, _ = played
    alerts = c["shield"].get("/v1/tactical/alerts", params={"state": "all"}).json()
    ours = [a for a in alerts if {a.get("party_a"), a.get("party_b")} == {"north", "south"}]
    assert ours and {ours[0]["track_a"], ours[0]["track_b"]} == {"north/VIPER1", "south/FALCON7"}
    for party in ("north", "south"):
        evs = c[party].get("/v1/hotline/events", params={"limit": 1000}).json()["events"]
        messages = [e["data"]["message"] for e in evs if e["type"] == "message"]
        warnings = [m for m in messages if m["code"] == "CONFLICT_WARNING"]
        assert [m for m in warnings if m["fields"].get("conflict") == ours[0]["id"]]


def test_patrol_went_nonconforming_and_back(played: Any) -> None:
    _, scenario, c, _, _ = played
    versions = c["shield"].get(f"/v1/intents/{scenario.ids['patrol']}/versions").json()
    states = [v["state"] for v in versions]
    assert states[:4] == ["accepted", "activated", "nonconforming", "activated"], states
    transit = c["shield"].get(f"/v1/intents/{scenario.ids['transit']}/versions").json()
    assert [v["state"] for v in transit] == ["accepted", "activated"]  # it stayed in its volume


def test_identity_query_answered(played: Any) -> None:
    _, scenario, c, _, _ = played
    m = c["shield"].get(f"/v1/hotline/messages/{scenario.ids['identity_query']}").json()
    assert [(d["recipient"], d["reply"]) for d in m["deliveries"]] == [("north", "MINE")]


def test_unanswered_channel_check_escalated(played: Any) -> None:
    services, scenario, c, _, _ = played
    m = c["south"].get(f"/v1/hotline/messages/{scenario.ids['channel_check']}").json()
    (d,) = m["deliveries"]
    assert d["escalation_level"] >= 1 and d["reply"] == "ROGER"
    escalated = [
        b for k, b in log(services) if k == "escalated" and b["message"] == scenario.ids["channel_check"]
    ]
    assert escalated and escalated[0]["reason"] == "not_replied" and escalated[0]["contact"]


def test_drone_operator_down_then_up(played: Any) -> None:
    services, _, c, _, _ = played
    kinds = [k for k, b in log(services) if k in ("party_down", "party_up") and b.get("party") == "drones"]
    assert kinds[:2] == ["party_down", "party_up"]
    status = {s["party"]: s["state"] for s in c["shield"].get("/v1/hotline/status").json()}
    assert status["drones"] == "up"


def test_seed_varies_the_run_repeatably() -> None:
    def first_reports(seed: int) -> tuple[Any, ...]:
        s = Scenario("http://127.0.0.1:9", {}, speed=SPEED, seed=seed)
        return tuple(s._icao.values()), tuple(s._rng.random() for _ in range(3))

    assert first_reports(3) == first_reports(3) != first_reports(4)


def test_cli_demo_once(tmp_path: Path) -> None:
    """`deconflict demo --once` as a user runs it: a stale store in the data directory is
    wiped, the URLs are printed, the scenario plays and the service stops."""
    import subprocess

    (tmp_path / "deconflict.sqlite3").write_bytes(b"not a database")
    port = ROOT.free_port()
    done = subprocess.run(
        [sys.executable, "-m", "deconflict", "demo", "--once", "--speed", "400", "--seed", "2",
         "--port", str(port), "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"console: http://127.0.0.1:{port}/console/" in done.stdout
    assert "scenario stopped" not in done.stderr + done.stdout
    assert "13/13" in done.stderr  # the scenario's progress bar reached its end
    assert (tmp_path / "demo-tokens.json").stat().st_mode & 0o777 == 0o600
