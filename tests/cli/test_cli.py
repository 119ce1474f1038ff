"""The CLI, run as a real process: every command has help; party, submit, conflicts, check."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deconflict.cli import build_parser


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "deconflict", *args],
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
        env={**os.environ, **(env or {})},
    )


def test_every_command_has_help_text() -> None:
    parser = build_parser()
    seen = 0
    for action in parser._subparsers._group_actions:  # type: ignore[union-attr]
        for name, sub in action.choices.items():  # type: ignore[union-attr]
            assert action._choices_actions, name  # type: ignore[attr-defined]
            helps = {a.dest: a.help for a in sub._actions}
            assert all(h for d, h in helps.items() if d not in ("help", "func")), (name, helps)
            seen += 1
    assert seen >= 5
    assert run("--help").returncode == 0
    for cmd in (
        ["serve"],
        ["party", "add"],
        ["party", "list"],
        ["intent", "submit"],
        ["conflicts"],
        ["check"],
        ["ledger"],
        ["ledger", "export"],
        ["ledger", "verify"],
        ["ledger", "stats"],
        ["ledger", "replay"],
    ):
        out = run(*cmd, "--help")
        assert out.returncode == 0 and "usage: deconflict" in out.stdout, cmd


def feature(fid: str, party: str, kind: str, geometry: dict[str, Any], **props: Any) -> dict[str, Any]:
    base = {
        "party": party,
        "kind": kind,
        "altitude_lower_m": 0,
        "altitude_upper_m": 1000,
        "time_start": "2030-01-01T10:00:00Z",
        "time_end": "2030-01-01T11:00:00Z",
    }
    base.update(props)
    return {"type": "Feature", "id": fid, "geometry": geometry, "properties": base}


def test_check_prints_each_cross_party_conflict(tmp_path: Path) -> None:
    pt = {"type": "Point", "coordinates": [35.0, 33.0]}
    fc = {
        "type": "FeatureCollection",
        "features": [
            feature("a1", "north", "uas_flight", pt, radius_m=1000),
            feature("a2", "north", "uas_flight", pt, radius_m=1000),  # same party: never reported
            feature(
                "b1", "south", "uas_flight", {"type": "Point", "coordinates": [35.025, 33.0]}, radius_m=1000
            ),
            feature(
                "c1", "drones", "uas_flight", {"type": "Point", "coordinates": [36.0, 33.0]}, radius_m=1000
            ),
        ],
    }
    path = tmp_path / "fc.json"
    path.write_text(json.dumps(fc))
    # 35.000 -> 35.025 deg at 33N is ~2334 m between centres: ~334 m between the circles
    out = run("check", str(path), "--horizontal-buffer-m", "300")
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    out = run("check", str(path), "--horizontal-buffer-m", "400")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert sorted((r["a"], r["b"]) for r in rows) == [("a1", "b1"), ("a2", "b1")]
    for r in rows:
        assert r["horizontal_separation_m"] == pytest.approx(334, abs=3)
        assert r["vertical_separation_m"] == 0
        assert r["time_start"] == "2030-01-01T10:00:00Z" and r["time_end"] == "2030-01-01T11:00:00Z"
    bad = fc.copy()
    bad["features"] = [feature("x", "north", "nope", pt, radius_m=1)]
    path.write_text(json.dumps(bad))
    out = run("check", str(path))
    assert out.returncode == 2
    assert "features[0].properties.kind" in out.stderr


def test_party_add_submit_and_conflicts(tmp_path: Path) -> None:
    d = str(tmp_path / "data")
    out = run("party", "add", "north", "--data-dir", d)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().splitlines()[-1]
    assert token.startswith("dcf_")
    assert run("party", "add", "north", "--data-dir", d).returncode == 1  # already exists
    assert run("party", "add", "mallory", "--data-dir", d).returncode == 2  # not a signatory
    south = run("party", "add", "south", "--data-dir", d).stdout.strip().splitlines()[-1]
    listed = [json.loads(x)["id"] for x in run("party", "list", "--data-dir", d).stdout.splitlines()]
    assert listed == ["north", "south"]

    start = datetime.now(UTC) + timedelta(hours=3)
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [35.0, 33.0]},
                "properties": {
                    "radius_m": 2000,
                    "altitude_lower_m": 0,
                    "altitude_upper_m": 500,
                    "time_start": start.isoformat().replace("+00:00", "Z"),
                    "time_end": (start + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
                },
            }
        ],
    }
    path = tmp_path / "intent.json"
    path.write_text(json.dumps(fc))
    first = run(
        "intent",
        "submit",
        str(path),
        "--kind",
        "uas_flight",
        "--data-dir",
        d,
        env={"DECONFLICT_TOKEN": token},
    )
    assert first.returncode == 0, first.stderr
    a = json.loads(first.stdout)["filing"]
    assert json.loads(first.stdout)["receipt"]["leaf_index"] == 2  # after the two parties
    missing = run("intent", "submit", str(path), "--kind", "crewed_flight", "--data-dir", d, "--token", south)
    assert missing.returncode == 1 and "key is missing" in missing.stderr
    ok = run(
        "intent",
        "submit",
        str(path),
        "--kind",
        "crewed_flight",
        "--data-dir",
        d,
        "--token",
        south,
        "--key",
        a["ovn"],
    )
    assert ok.returncode == 0, ok.stderr
    rows = [json.loads(x) for x in run("conflicts", "--data-dir", d).stdout.splitlines()]
    assert [(r["a"]["owner"], r["b"]["id"]) for r in rows] == [("south", a["id"])]
    assert (
        run(
            "intent", "submit", str(path), "--kind", "uas_flight", "--data-dir", d, "--token", "bad"
        ).returncode
        == 1
    )


def test_ledger_stats_and_replay_from_the_store_and_an_export(tmp_path: Path) -> None:
    d = str(tmp_path / "data")
    north = run("party", "add", "north", "--data-dir", d).stdout.strip().splitlines()[-1]
    south = run("party", "add", "south", "--data-dir", d).stdout.strip().splitlines()[-1]
    start = datetime.now(UTC) + timedelta(hours=3)
    times = {
        "time_start": start.isoformat().replace("+00:00", "Z"),
        "time_end": (start + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
    }
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [35.0, 33.0]},
                "properties": {"radius_m": 2000, "altitude_lower_m": 0, "altitude_upper_m": 500, **times},
            }
        ],
    }
    path = tmp_path / "intent.json"
    path.write_text(json.dumps(fc))
    before = datetime.now(UTC)
    first = run("intent", "submit", str(path), "--kind", "uas_flight", "--data-dir", d, "--token", north)
    assert first.returncode == 0, first.stderr
    a = json.loads(first.stdout)["filing"]
    second = run(
        "intent",
        "submit",
        str(path),
        "--kind",
        "crewed_flight",
        "--data-dir",
        d,
        "--token",
        south,
        "--key",
        a["ovn"],
    )
    assert second.returncode == 0, second.stderr
    b = json.loads(second.stdout)["filing"]

    out = run("ledger", "stats", "--data-dir", d, "--json")
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    # two parties, two filings, one conflict, and the hotline's two notices and one warning
    assert stats["entries"] == 8
    notice = stats["notice"]["all"]
    assert notice["count"] == 2 and notice["late"] == 0
    assert 3 * 3600 - 120 < notice["min_s"] <= notice["max_s"] <= 3 * 3600  # filed ~3 h ahead
    assert set(stats["notice"]["by_party"]) == {"north", "south"}
    assert set(stats["notice"]["by_kind"]) == {"uas_flight", "crewed_flight"}
    assert stats["reciprocity"]["pairs"] == [
        {"from": "north", "to": "south", "notices": 1, "conflicts_raised": 0},
        {"from": "south", "to": "north", "notices": 1, "conflicts_raised": 1},
    ]
    assert stats["conflicts"]["pairs"] == [{"parties": ["north", "south"], "opened": 1, "closed": 0}]
    assert stats["hotline"]["entries"] == 3

    table = run("ledger", "stats", "--data-dir", d)
    assert table.returncode == 0 and "north / south" in table.stdout and "median_s" in table.stdout

    export = tmp_path / "log.ndjson"
    assert run("ledger", "export", str(export), "--data-dir", d).returncode == 0
    from_file = run("ledger", "stats", str(export), "--json")
    assert json.loads(from_file.stdout) == stats

    def replay(at: datetime, *source: str) -> Any:
        out = run("ledger", "replay", "--at", at.isoformat().replace("+00:00", "Z"), *source)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    early = replay(before, "--data-dir", d)  # after the parties, before any filing
    assert early["filings"] == [] and early["conflicts"] == [] and early["entries"] == 2
    now = replay(datetime.now(UTC), str(export))
    assert sorted((f["id"], f["owner"], f["version"], f["state"]) for f in now["filings"]) == sorted(
        [(a["id"], "north", 1, "accepted"), (b["id"], "south", 1, "accepted")]
    )
    assert [(c["a"]["id"], c["b"]["id"]) for c in now["conflicts"]] == [(b["id"], a["id"])]
    assert now["filings"][0]["volumes"][0]["type"] == "Feature"

    bad = run("ledger", "replay", "--at", "yesterday", "--data-dir", d)
    assert bad.returncode == 2 and "--at" in bad.stderr and "RFC 3339" in bad.stderr
    neither = run("ledger", "stats")
    assert neither.returncode == 2 and "file" in neither.stderr
    missing = run("ledger", "stats", "--data-dir", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "--data-dir" in missing.stderr
