"""Benchmark: the hotline's live streams under load.

A real `deconflict serve` (its own process, SQLite in a temporary directory, the shipped
agreement with `conflict_action = "warn"`) and 50 SSE stream clients (threads in this
process, httpx streaming): 20 of `north`, 20 of `drones`, 5 of `south`, 5 of `shield`.

(a) Warning latency: `drones` files a survey at a fresh place, then `north` files a
    patrol over it (key given, so it is accepted with one conflict). For every `north`
    and `drones` client, the time from the patrol's HTTP answer to that client's receipt
    of the CONFLICT_WARNING naming the conflict (negative when the event beat the HTTP
    answer: it is committed and pushed before the answer is sent). p50 and p99 over
    all 40 clients and all filings. Peer, same run: the patrol's own HTTP round trip
    (request to answer), the time a client already spends on a filing.
(b) Sustained messages: `--senders` threads post FREE_TEXT messages north -> south for
    `--seconds`; messages per second answered 201, and the events the 5 `south`
    clients received per second (each message reaches all five).

    .venv/bin/python bench/hotline.py                     # 200 filings, 10 s of messages

Prints a table and writes JSON to bench/out/hotline.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

OUT = Path(__file__).parent / "out"
CLIENTS = {"north": 20, "drones": 20, "south": 5, "shield": 5}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(data: Path, port: int) -> subprocess.Popen[bytes]:
    agreement = data.parent / "warn.toml"
    from importlib import resources

    text = resources.files("deconflict.agreements").joinpath("default.toml").read_text("utf-8")
    agreement.write_text(text.replace('conflict_action = "block"', 'conflict_action = "warn"'))
    proc = subprocess.Popen(
        [sys.executable, "-m", "deconflict", "serve", "--data-dir", str(data), "--port", str(port),
         "--seed-example", "--log-level", "warning", "--agreement", str(agreement)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


class Listener(threading.Thread):
    """One SSE client: records when each CONFLICT_WARNING arrives, counts messages."""

    def __init__(self, url: str, party: str, token: str, ready: threading.Barrier) -> None:
        super().__init__(daemon=True)
        self.url, self.party, self.token, self.ready = url, party, token, ready
        self.warnings: dict[str, float] = {}
        self.messages = 0
        self.stop = False

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}  # replays the seeded history first
        with (
            httpx.Client(base_url=self.url, timeout=None) as c,
            c.stream("GET", "/v1/hotline/stream", headers=headers) as r,
        ):
            self.ready.wait()
            for line in r.iter_lines():
                if self.stop:
                    return
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[6:])
                if event["type"] != "message":
                    continue
                message = event["data"]["message"]
                if message["code"] == "CONFLICT_WARNING":
                    self.warnings[message["fields"]["conflict"]] = time.perf_counter()
                elif message["code"] == "FREE_TEXT":
                    self.messages += 1


def volume(lon: float, lat: float, radius_m: float, start: datetime) -> dict[str, Any]:
    def t(d: datetime) -> str:
        return d.isoformat().replace("+00:00", "Z")

    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"radius_m": radius_m, "altitude_lower_m": 0, "altitude_upper_m": 1500,
                       "time_start": t(start), "time_end": t(start + timedelta(hours=1))},
    }  # fmt: skip


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values) or [float("nan")]
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--filings", type=int, default=200, help="conflicting filings timed (default 200)")
    ap.add_argument("--seconds", type=float, default=10.0, help="how long to send messages (default 10)")
    ap.add_argument("--senders", type=int, default=4, help="threads sending messages (default 4)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = serve(data, port)
        try:
            tokens = json.loads((data / "example-tokens.json").read_text())
            ready = threading.Barrier(sum(CLIENTS.values()) + 1)
            listeners = [Listener(url, p, tokens[p], ready) for p, n in CLIENTS.items() for _ in range(n)]
            for x in listeners:
                x.start()
            ready.wait()
            clients = {
                p: httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens[p]}"})
                for p in tokens
            }
            start = datetime.now(UTC) + timedelta(hours=3)
            answered: dict[str, float] = {}
            round_trip: list[float] = []
            for i in range(args.filings):
                lon, lat = 30.0 + (i % 100) * 0.2, 10.0 + (i // 100) * 0.2
                survey = clients["drones"].post(
                    "/v1/intents", json={"kind": "uas_flight", "volumes": [volume(lon, lat, 2000, start)]}
                )
                assert survey.status_code == 201, survey.text
                body = {
                    "kind": "crewed_flight",
                    "volumes": [volume(lon, lat, 3000, start)],
                    "key": [survey.json()["filing"]["ovn"]],
                }
                t0 = time.perf_counter()
                patrol = clients["north"].post("/v1/intents", json=body)
                t1 = time.perf_counter()
                assert patrol.status_code == 201, patrol.text
                (conflict,) = patrol.json()["conflicts"]
                answered[conflict["id"]] = t1
                round_trip.append(t1 - t0)
            deadline = time.monotonic() + 10
            watching = [x for x in listeners if x.party in ("north", "drones")]

            def lacking(x: Listener) -> bool:
                return any(c not in x.warnings for c in answered)

            while time.monotonic() < deadline and any(lacking(x) for x in watching):
                time.sleep(0.05)
            latencies = [x.warnings[c] - t for x in watching for c, t in answered.items() if c in x.warnings]
            missing = len(watching) * len(answered) - len(latencies)
            if missing:
                short = [(x.party, x.is_alive()) for x in watching if lacking(x)]
                print(f"clients missing warnings (party, alive): {short}", file=sys.stderr)

            sent = [0] * args.senders
            stop_at = time.monotonic() + args.seconds
            received0 = sum(x.messages for x in listeners if x.party == "south")

            def sender(k: int) -> None:
                with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens['north']}"}) as c:
                    n = 0
                    while time.monotonic() < stop_at:
                        r = c.post(
                            "/v1/hotline/messages",
                            json={"code": "FREE_TEXT", "to": ["south"], "fields": {"text": f"m{k}-{n}"}},
                        )
                        assert r.status_code == 201, r.text
                        n += 1
                    sent[k] = n

            t_start = time.perf_counter()
            threads = [threading.Thread(target=sender, args=(k,)) for k in range(args.senders)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            elapsed = time.perf_counter() - t_start
            time.sleep(1.0)
            received = sum(x.messages for x in listeners if x.party == "south") - received0
            for x in listeners:
                x.stop = True
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    ms = 1000.0
    result = {
        "clients": sum(CLIENTS.values()),
        "filings": args.filings,
        "warning_latency_ms": {"p50": pct(latencies, 0.5) * ms, "p99": pct(latencies, 0.99) * ms,
                               "max": max(latencies) * ms, "samples": len(latencies), "missing": missing},
        "filing_round_trip_ms": {"p50": pct(round_trip, 0.5) * ms, "p99": pct(round_trip, 0.99) * ms},
        "messages_per_s": sum(sent) / elapsed,
        "south_events_per_s": received / elapsed,
        "south_events_expected": sum(sent) * CLIENTS["south"],
        "south_events_received": received,
        "senders": args.senders,
        "cpus": os.cpu_count(),
    }  # fmt: skip
    lat, rt = result["warning_latency_ms"], result["filing_round_trip_ms"]
    print(f"{result['clients']} SSE clients, {args.filings} conflicting filings")
    print(f"  CONFLICT_WARNING, HTTP answer -> stream ({lat['samples']} receipts, {missing} missing),")
    print("  target p99 <= 50 ms:")
    print(f"    p50 {lat['p50']:.1f} ms   p99 {lat['p99']:.1f} ms   max {lat['max']:.1f} ms")
    print(f"  peer, the filing's HTTP round trip: p50 {rt['p50']:.1f} ms   p99 {rt['p99']:.1f} ms")
    print(f"    ratio stream p99 / round-trip p99: {lat['p99'] / rt['p99']:.2f}")
    print(
        f"  messages, {args.senders} senders for {elapsed:.1f} s: "
        f"{result['messages_per_s']:.0f} messages/s answered;"
    )
    print(
        f"    south's 5 clients got {received} of {result['south_events_expected']} events"
        f" ({result['south_events_per_s']:.0f}/s)"
    )
    OUT.mkdir(exist_ok=True)
    (OUT / "hotline.json").write_text(json.dumps(result, indent=2))
    return 0 if missing == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
