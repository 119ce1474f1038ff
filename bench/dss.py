"""Benchmark: what the F3548 interface costs over the native API, in the same run.

Starts `python -m deconflict serve` on a fresh data directory with the shipped agreement
changed to `conflict_action = "warn"` and `--auth-public-key` (an RSA key as PEM and a
P-256 key in a JWKS, generated here), registers three operators, then times, one request at a
time over keep-alive connections, `--n` filings of each kind, placed so that none conflicts
(each is a real durable write with its strategic check and log entries):

- native:     POST /v1/intents                             (API token, SHA-256 look-up)
- f3548 RS256: PUT /dss/v1/operational_intent_references/… (JWT verified with the RSA key)
- f3548 ES256: the same with a P-256 token
- f3548 + subscriptions: the same, in an area holding 20 subscriptions of another party,
  whose notification indices each write bumps and lists

and, in this process, `AuthConfig.verify` alone per algorithm. Prints p50/p99 and the
ratio of each to native (the peer).

    .venv/bin/python bench/dss.py --n 300
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from deconflict.api.f3548 import AuthConfig, load_keys
from deconflict.clock import SystemClock

ROOT = Path(__file__).resolve().parents[1]
AUD = "bench.test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keys(tmp: Path) -> tuple[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, list[Path]]:
    k_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    k_ec = ec.generate_private_key(ec.SECP256R1())
    pem = tmp / "rsa.pem"
    pem.write_bytes(
        k_rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(k_ec.public_key()))
    jwks = tmp / "ec.jwks"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "ec", "alg": "ES256"}]}))
    return k_rsa, k_ec, [pem, jwks]


def token(key: Any, alg: str, sub: str, scopes: str = "utm.strategic_coordination") -> str:
    now = datetime.now(UTC)
    claims = {"sub": sub, "aud": AUD, "scope": scopes, "exp": int((now + timedelta(hours=2)).timestamp())}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": "ec"} if alg == "ES256" else None)


def times(t0: datetime, i: int) -> tuple[str, str]:
    start = t0 + timedelta(hours=2, minutes=i % 50)
    return (
        start.isoformat().replace("+00:00", "Z"),
        (start + timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
    )


def place(series: int, i: int) -> tuple[float, float]:
    """One band of latitude per series (so series never conflict); within a series, one
    party on a 0.01° grid (a party's own filings never conflict with each other)."""
    return 20.0 + 0.01 * (i % 100), 40.0 + 1.0 * series + 0.01 * (i // 100)


def native_body(lon: float, lat: float, start: str, end: str) -> dict[str, Any]:
    props = {
        "radius_m": 200,
        "altitude_lower_m": 0,
        "altitude_upper_m": 120,
        "time_start": start,
        "time_end": end,
    }
    geometry = {"type": "Point", "coordinates": [lon, lat]}
    return {"kind": "uas_flight", "volumes": [{"type": "Feature", "geometry": geometry, "properties": props}]}


def dss_volume(lon: float, lat: float, start: str, end: str, radius_m: float = 200) -> dict[str, Any]:
    alt = {"reference": "W84", "units": "M"}
    return {
        "volume": {
            "outline_circle": {
                "center": {"lng": lon, "lat": lat},
                "radius": {"value": radius_m, "units": "M"},
            },
            "altitude_lower": {"value": 0, **alt},
            "altitude_upper": {"value": 120, **alt},
        },
        "time_start": {"value": start, "format": "RFC3339"},
        "time_end": {"value": end, "format": "RFC3339"},
    }


def timed(client: httpx.Client, method: str, url: str, body: Any, ok: int) -> float:
    t = time.perf_counter()
    r = client.request(method, url, json=body)
    elapsed = time.perf_counter() - t
    if r.status_code != ok:
        raise RuntimeError(f"{method} {url}: {r.status_code} {r.text[:300]}")
    return elapsed * 1000


def summary(ms: list[float]) -> tuple[float, float]:
    s = sorted(ms)
    return statistics.median(s), s[min(len(s) - 1, int(0.99 * len(s)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="filings timed per kind (default 300)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-dss-"))
    k_rsa, k_ec, files = keys(tmp)
    agreement = tmp / "warn.toml"
    text = (ROOT / "deconflict" / "agreements" / "default.toml").read_text()
    agreement.write_text(text.replace('conflict_action = "block"', 'conflict_action = "warn"'))
    data = tmp / "data"
    exe = [sys.executable, "-m", "deconflict"]
    tokens = {}
    for pid in ("north", "south", "drones"):
        out = subprocess.run(
            [*exe, "party", "add", pid, "--data-dir", str(data)], capture_output=True, text=True, check=True
        )
        tokens[pid] = out.stdout.strip().splitlines()[-1]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [*exe, "serve", "--data-dir", str(data), "--agreement", str(agreement), "--port", str(port)]
    cmd += ["--log-level", "warning", "--auth-audience", AUD, "--sth-interval-s", "0"]
    for f in files:
        cmd += ["--auth-public-key", str(f)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
        t0 = datetime.now(UTC).replace(microsecond=0)
        results: dict[str, list[float]] = {}
        native = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {tokens['north']}"}, timeout=30
        )
        rs = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token(k_rsa, 'RS256', 'south')}"}, timeout=30
        )
        es = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token(k_ec, 'ES256', 'drones')}"}, timeout=30
        )
        subs = httpx.Client(
            base_url=url,
            headers={
                "Authorization": f"Bearer {token(k_rsa, 'RS256', 'north', 'utm.strategic_coordination')}"
            },
            timeout=30,
        )
        # 20 subscriptions of north over series 3's area
        for j in range(20):  # a 60 km circle over every place of series 3
            lon, lat = place(3, 0)
            start, _ = times(t0, 0)
            end = (t0 + timedelta(hours=20)).isoformat().replace("+00:00", "Z")
            area = dss_volume(lon + 0.5, lat + 0.05, start, end, 60_000)
            body = {
                "extents": area,
                "uss_base_url": f"https://n{j}.example",
                "notify_for_operational_intents": True,
            }
            timed(subs, "PUT", f"/dss/v1/subscriptions/{uuid.uuid4()}", body, 200)
        for series, (name, client) in enumerate(
            [
                ("native", native),
                ("f3548 RS256", rs),
                ("f3548 ES256", es),
                ("f3548 RS256 + 20 subscriptions", rs),
            ]
        ):
            ms: list[float] = []
            for i in range(args.n + 20):
                lon, lat = place(series, i)
                start, end = times(t0, i)
                if name == "native":
                    ms.append(timed(client, "POST", "/v1/intents", native_body(lon, lat, start, end), 201))
                else:
                    body = {
                        "extents": [dss_volume(lon, lat, start, end)],
                        "state": "Accepted",
                        "uss_base_url": "https://u.example",
                    }
                    ms.append(
                        timed(
                            client, "PUT", f"/dss/v1/operational_intent_references/{uuid.uuid4()}", body, 201
                        )
                    )
            results[name] = ms[20:]  # the first 20 warm up
        first = subs.post(
            "/dss/v1/subscriptions/query", json={"area_of_interest": dss_volume(*place(3, 0), *times(t0, 0))}
        ).json()["subscriptions"]
        notified = sorted({x["notification_index"] for x in first})
        for c in (native, rs, es, subs):
            c.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    config = AuthConfig(keys=load_keys(files), audiences=(AUD,))
    clock = SystemClock()
    verify: dict[str, float] = {}
    for alg, key, sub in (("RS256", k_rsa, "a"), ("ES256", k_ec, "b")):
        tok = token(key, alg, sub)
        t = time.perf_counter()
        for _ in range(2000):
            config.verify(tok, clock)
        verify[alg] = (time.perf_counter() - t) / 2000 * 1e6
    base = summary(results["native"])
    print(f"n = {args.n} sequential filings each, one server, this machine ({os.cpu_count()} cores)")
    print(f"{'':34s}{'p50 ms':>9s}{'p99 ms':>9s}{'p50 / native':>14s}")
    for name, ms in results.items():
        p50, p99 = summary(ms)
        print(f"{name:34s}{p50:9.2f}{p99:9.2f}{p50 / base[0]:14.2f}")
    print(f"the 20 subscriptions' notification indices after the last series: {notified}")
    for alg, us in verify.items():
        print(f"AuthConfig.verify {alg} in-process: {us:.0f} µs a token")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
