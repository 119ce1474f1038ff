"""The demo scenario, played at 200x against a real server on loopback (SQLite, the real
clock, the demo's agreement): each scripted event is checked through the API and the
shared record."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from deconflict.api.app import create_app
from deconflict.clock import ScaledClock
from deconflict.ledger.entries import decode_entry
from deconflict.service import Services
from deconflict.sim.demo import DURATION_S, STEP_S, Scenario, demo_agreement, falcon, register_parties, viper
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


def _play(tmp: Path, speed: float, until_s: float = DURATION_S) -> Iterator[Any]:
    """The scenario played to `until_s` against a real server on the demo's clock at `speed`:
    (services, scenario, a client per party, real seconds it took, the data directory)."""
    clock = ScaledClock(speed)
    services = Services.build(SqliteStore(tmp / "deconflict.sqlite3"), demo_agreement(), clock, data_dir=tmp)
    tokens = register_parties(services, tmp)
    with ROOT.ThreadServer(
        create_app(services, tick_interval_s=0.1, sth_interval_s=None), lifespan="on"
    ) as url:
        scenario = Scenario(url, tokens, clock, seed=7)
        started = time.monotonic()
        scenario.run(until_s=until_s)
        elapsed = time.monotonic() - started
        clients = {
            p: httpx.Client(base_url=url, headers={"Authorization": f"Bearer {t}"}) for p, t in tokens.items()
        }
        yield services, scenario, clients, elapsed, tmp
        for c in clients.values():
            c.close()
        scenario.close()
    services.store.close()


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The whole scenario at SPEED."""
    yield from _play(tmp_path_factory.mktemp("demo"), SPEED)


@pytest.fixture(scope="module")
def encounter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The scenario at half SPEED, up to just after VIPER 1 is back in its volume."""
    yield from _play(tmp_path_factory.mktemp("encounter"), SPEED / 2, until_s=1250)


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
    assert kinds[:2] == ["party_down", "party_up"]  # (after the play, with no heartbeats, all go DOWN)


def test_seed_varies_the_run_repeatably() -> None:
    def first_reports(seed: int) -> tuple[Any, ...]:
        s = Scenario("http://127.0.0.1:9", {}, ScaledClock(SPEED), seed=seed)
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


def test_cli_demo_loops_and_each_round_starts_clean(tmp_path: Path) -> None:
    """`deconflict demo` without --once plays round after round: when the second round
    files its reservation, everything of the first is over (its filings ended, its
    tactical alert closed, every message that asked a reply answered) and the second
    round's filings are new ones; a progress bar per round; Ctrl-C stops it cleanly."""
    port = ROOT.free_port()
    args = ["demo", "--speed", "400", "--port", str(port), "--data-dir", str(tmp_path)]
    with (tmp_path / "demo.log").open("wb") as err:
        proc = ROOT.start_deconflict(args, port, stderr=err)
        try:
            tokens = json.loads((tmp_path / "demo-tokens.json").read_text())
            url = f"http://127.0.0.1:{port}"
            bearer = {p: {"Authorization": f"Bearer {t}"} for p, t in tokens.items()}
            c = {p: httpx.Client(base_url=url, headers=h) for p, h in bearer.items()}
            first: set[str] = set()  # every filing seen while the first reservation is the one
            reservations: list[str] = []
            deadline = time.monotonic() + 30
            while len(reservations) < 2 and time.monotonic() < deadline:
                for r in c["north"].get("/v1/constraints").json():
                    if r["id"] not in reservations:
                        reservations.append(r["id"])
                if len(reservations) == 1:
                    first |= {f["id"] for f in c["shield"].get("/v1/intents").json()} | {reservations[0]}
                time.sleep(0.05)
            assert len(reservations) == 2, "no second round"
            second_at = c["north"].get(f"/v1/constraints/{reservations[1]}").json()["created_at"]
            assert len(first) == 4  # the reservation, the survey, the patrol, the transit
            for fid in first:
                kind = "constraints" if fid == reservations[0] else "intents"
                assert c["shield"].get(f"/v1/{kind}/{fid}").json()["state"] == "ended", fid
            assert not first & {f["id"] for f in c["shield"].get("/v1/intents").json()}  # new ids
            alerts = c["shield"].get("/v1/tactical/alerts", params={"state": "all"}).json()
            earlier = [a for a in alerts if a["opened_at"] < second_at]
            assert earlier and all(a["closed_at"] is not None for a in earlier)  # the encounter, closed
            asked = 0
            for party in ("north", "south", "drones", "shield"):
                inbox = c[party].get("/v1/hotline/messages", params={"box": "in", "limit": 1000}).json()
                for m in inbox:
                    if m["sent_at"] < second_at and m["replies"]:
                        (mine,) = [d for d in m["deliveries"] if d["recipient"] == party]
                        asked += 1
                        assert mine["reply"] not in (None, "STANDBY"), (party, m["code"])
            assert asked >= 20
            for client in c.values():
                client.close()
        finally:
            returncode = ROOT.stop_deconflict(proc)
    log = (tmp_path / "demo.log").read_text()
    assert returncode == 0, log
    assert "round 1: 100%" in log and "round 2:" in log
    assert "scenario stopped" not in log and "Traceback" not in log


def _reference_cpa(step: dict[str, float], t_open: float) -> tuple[float, float]:
    """VIPER 1 and FALCON 7 as the service knew them when the alert opened, `t_open`
    seconds into the scenario: each at the point of its path at its last report's step
    (`step`: track -> step), moving on at the velocity it reported (the path's over the
    next second), in a straight line; their closest horizontal approach found by stepping
    through time every 10 ms. Returns (seconds from `t_open`, metres)."""

    def at(path: Callable[[float], tuple[float, float, float]], s: float, t: float) -> tuple[float, float]:
        x0, y0, _ = path(s)
        x1, y1, _ = path(s + 1)
        return x0 + (x1 - x0) * (t - s), y0 + (y1 - y0) * (t - s)

    best = (math.inf, math.nan)
    for i in range(-60_000, 60_001):
        t = t_open + i / 100
        (vx, vy), (fx, fy) = at(viper, step["VIPER1"], t), at(falcon, step["FALCON7"], t)
        best = min(best, (math.hypot(vx - fx, vy - fy), t - t_open))
    return best[1], best[0]


@pytest.mark.parametrize("run", ["played", "encounter"])
def test_the_encounter_opens_one_alert_with_the_paths_cpa(run: str, request: pytest.FixtureRequest) -> None:
    """At two speeds (the service on the demo's clock either way): VIPER 1 closing on
    FALCON 7 opens exactly one alert, when it leaves its orbit, and its time to CPA and
    CPA distance are those of the scenario's paths (positions, and the velocities reported
    with them, in simulated time), within the tracks' noise."""
    services, scenario, c, _, _ = request.getfixturevalue(run)
    alerts = c["shield"].get("/v1/tactical/alerts", params={"state": "all"}).json()
    pair = [a for a in alerts if {a["track_a"], a["track_b"]} == {"north/VIPER1", "south/FALCON7"}]
    assert len(pair) == 1, pair
    alert = pair[0]
    assert alert["closed_at"] is not None  # once VIPER 1 is back in its volume

    (opened,) = [(t, track) for t, track, a in scenario.alerts_opened if a["id"] == alert["id"]]
    step, reporter = opened
    assert 1000 <= step <= 1060  # while VIPER 1 climbs out towards FALCON 7
    # FALCON 7 reports first in each step: VIPER 1's report of `step` is in when it opens it
    last = {"FALCON7": step, "VIPER1": step if reporter == "VIPER1" else step - STEP_S}
    entry = next(b for k, b in log(services) if k == "tactical_alert_opened" and b["id"] == alert["id"])
    t_open = (datetime.fromisoformat(entry["opened_at"]) - scenario.when(0)).total_seconds()
    t_cpa, d_cpa = _reference_cpa(last, t_open)
    figures = entry["figures"]
    assert figures["t_cpa_s"] > 0 and not figures["los"]
    assert abs(figures["t_cpa_s"] - t_cpa) < 1.0, (figures, t_cpa, d_cpa)
    assert abs(figures["d_cpa_m"] - d_cpa) < 150, (figures, t_cpa, d_cpa)
