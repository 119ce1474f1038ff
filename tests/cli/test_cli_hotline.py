"""`deconflict hotline`, run as real processes: send, inbox, reply and watch on a data
directory (watch in another process follows the persisted sequence), and watch --url
following a real server's SSE stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import Live

from deconflict.cli import build_parser


def run(*args: str, data: Path | None = None, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    if data is not None:
        env["DECONFLICT_DATA_DIR"] = str(data)
    if token is not None:
        env["DECONFLICT_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "deconflict", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_every_hotline_command_has_help() -> None:
    parser = build_parser()
    top = next(a for a in parser._subparsers._group_actions)  # type: ignore[union-attr]
    hotline = top.choices["hotline"]  # type: ignore[index]
    (group,) = hotline._subparsers._group_actions  # type: ignore[union-attr]
    assert set(group.choices) == {"send", "inbox", "reply", "watch"}  # type: ignore[arg-type]
    for name, sub in group.choices.items():  # type: ignore[union-attr]
        helps = {a.dest: a.help for a in sub._actions if a.dest not in ("help", "func")}
        assert all(helps.values()), (name, helps)
        out = run("hotline", name, "--help")
        assert out.returncode == 0 and "usage: deconflict hotline" in out.stdout


def test_send_inbox_reply_watch_on_a_data_directory(tmp_path: Path) -> None:
    d = tmp_path / "data"
    north = run("party", "add", "north", data=d).stdout.splitlines()[-1]
    south = run("party", "add", "south", data=d).stdout.splitlines()[-1]
    sent = run(
        "hotline", "send", "IDENTITY_QUERY", "--to", "south",
        "--field", "track=T-17", "--field", "position=[36.05, 35.1]", "--field", "altitude=3000",
        "--field", "time=2030-06-01T12:00:00Z",
        data=d, token=north,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    text, doc = sent.stdout.splitlines()
    assert text.startswith("ЗАПРОС ПРИНАДЛЕЖНОСТИ: цель T-17 ваша?")  # north reads Russian
    mid = json.loads(doc)["message"]["id"]

    bad = run("hotline", "send", "CHANNEL_CHECK", "--to", "nobody", data=d, token=north)
    assert bad.returncode == 2 and "error: to[0]: no party 'nobody'" in bad.stderr

    inbox = run("hotline", "inbox", data=d, token=south)
    assert (
        inbox.returncode == 0
        and f"IDENTITY_QUERY north -> south ({mid}) [south: not delivered]" in inbox.stdout
    )
    assert "בירור זהות" in inbox.stdout  # south reads Hebrew

    watch = run("hotline", "watch", "--count", "1", data=d, token=south)
    assert watch.returncode == 0, watch.stderr
    assert watch.stdout.startswith("#1 ") and "[reply: MINE | NOT_MINE | UNKNOWN]" in watch.stdout

    refused = run("hotline", "reply", mid, "WILCO", data=d, token=south)
    assert refused.returncode == 2
    assert "error: reply: must be one of MINE, NOT_MINE, UNKNOWN for IDENTITY_QUERY" in refused.stderr
    ok = run("hotline", "reply", mid, "NOT_MINE", data=d, token=south)
    assert ok.returncode == 0 and ok.stdout.startswith(f"replied NOT_MINE to {mid}")

    # north's stream: south's client acknowledged delivery (watch), then south replied
    seen = run("hotline", "watch", "--count", "2", "--no-heartbeat", data=d, token=north)
    lines = seen.stdout.splitlines()
    assert lines[0].startswith("#1 ") and f"IDENTITY_QUERY {mid} delivered to south" in lines[0]
    assert lines[1].startswith("#2 ") and "south replied to IDENTITY_QUERY" in lines[1]
    assert lines[1].endswith("НЕ НАША")
    out = json.loads(run("hotline", "inbox", "--box", "out", "--json", data=d, token=north).stdout)
    (delivery,) = out["deliveries"]
    assert delivery["reply"] == "NOT_MINE" and delivery["delivered_at"] is not None


def test_watch_follows_a_server_stream(live: Live) -> None:
    for text in ("one", "two"):
        r = live.client("north").post(
            "/v1/hotline/messages", json={"code": "FREE_TEXT", "to": ["drones"], "fields": {"text": text}}
        )
        assert r.status_code == 201
    out = run("hotline", "watch", "--url", live.url, "--count", "2", token=live.tokens["drones"])
    assert out.returncode == 0, out.stderr
    lines = [x for x in out.stdout.splitlines() if x.startswith("#")]
    assert [x.split(" ")[0] for x in lines] == ["#1", "#2"]
    assert "UNCODED TEXT (not translated): \u2068one\u2069" in out.stdout
    status = {s["party"]: s["state"] for s in live.client("north").get("/v1/hotline/status").json()}
    assert status["drones"] == "up"  # watch heartbeats
    inbox = live.client("drones").get("/v1/hotline/messages").json()
    assert all(m["deliveries"][0]["delivered_at"] for m in inbox)  # and acknowledges what it showed
