"""`deconflict serve` with and without --auth-public-key, as a real process (and its
environment variables, through worker processes)."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
from conftest import free_port
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from test_api_restart import start


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def keypair(tmp: Path) -> tuple[rsa.RSAPrivateKey, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp / "dss.pem"
    pem.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key, pem


def token(key: rsa.RSAPrivateKey, sub: str = "north", aud: str = "dss.test") -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": sub,
        "aud": aud,
        "iss": "https://auth.test",
        "scope": "utm.strategic_coordination",
        "exp": int((now + timedelta(hours=1)).timestamp()),
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, key, algorithm="RS256")


def availability(port: int, bearer: str) -> httpx.Response:
    return httpx.get(
        f"http://127.0.0.1:{port}/dss/v1/uss_availability/north",
        headers={"Authorization": f"Bearer {bearer}"},
    )


def test_serve_with_and_without_keys(tmp_path: Path) -> None:
    key, pem = keypair(tmp_path)
    port = free_port()
    proc = start(tmp_path / "a", port, "--auth-public-key", str(pem), "--auth-audience", "dss.test")
    try:
        assert availability(port, token(key)).status_code == 200
        assert availability(port, token(key, aud="x.test")).status_code == 401
    finally:
        stop(proc)
    port = free_port()
    proc = start(tmp_path / "b", port)
    try:
        assert availability(port, token(key)).status_code == 404
    finally:
        stop(proc)


def test_serve_from_environment_with_workers(tmp_path: Path) -> None:
    key, pem = keypair(tmp_path)
    port = free_port()
    env = {
        "DECONFLICT_AUTH_PUBLIC_KEY": str(pem),
        "DECONFLICT_AUTH_AUDIENCE": "dss.test,other.test",
        "DECONFLICT_AUTH_ISSUER": "https://auth.test",
        "DECONFLICT_DSS_MANAGERS": "client-9=south",
    }
    proc = start(tmp_path, port, "--workers", "2", env=env)
    try:
        for _ in range(4):  # whichever worker answers
            assert availability(port, token(key, aud="other.test")).status_code == 200
            assert availability(port, token(key, sub="client-9")).status_code == 200
            assert availability(port, token(key, sub="nobody")).status_code == 403
    finally:
        stop(proc)


def test_a_bad_key_stops_serve_before_it_starts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "deconflict",
            "serve",
            "--data-dir",
            str(tmp_path),
            "--auth-public-key",
            str(bad),
        ]
        + ["--auth-audience", "dss.test"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "--auth-public-key" in r.stderr
    _, pem = keypair(tmp_path)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "deconflict",
            "serve",
            "--data-dir",
            str(tmp_path),
            "--auth-public-key",
            str(pem),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "--auth-audience" in r.stderr
