"""Shared fixtures: a real uvicorn server on loopback over a real store, SQLite or
PostgreSQL (`live` and `make_live` run each test on both), and PostgreSQL itself.

PostgreSQL: a private cluster started once per session (`deconflict.store.pg_cluster`:
initdb in a temporary directory, a loopback port, as the `postgres` user when we are
root), or the server that $DECONFLICT_TEST_PG names (a URL of a role that may create
databases). Each test gets a fresh database, copied from a migrated template. Without
PostgreSQL binaries the PostgreSQL tests skip with the reason, unless
DECONFLICT_REQUIRE_PG=1 (set by `.ci/run`): then they fail.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from deconflict import agreements
from deconflict.api.app import create_app
from deconflict.clock import ManualClock
from deconflict.model import Agreement, Role
from deconflict.service import Services
from deconflict.store.base import Store
from deconflict.store.sqlite import SqliteStore

#: Tests run on a manual clock, so notice and "end in the past" are exact.
T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_deconflict(
    args: list[str], port: int, *, env: dict[str, str] | None = None, stderr: Any = subprocess.PIPE
) -> subprocess.Popen[bytes]:
    """`python -m deconflict *args` as a process (with `env` added to this one's), once
    http://127.0.0.1:`port`/healthz answers; `stderr` as for Popen (a pipe by default)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "deconflict", *args],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "deconflict died")
    proc.kill()
    raise RuntimeError(f"deconflict {args[0]} did not start")


def stop_deconflict(proc: subprocess.Popen[bytes], timeout_s: float = 10) -> int:
    """Ctrl-C (SIGINT, as a user stops it), then a kill if it is still running after `timeout_s`."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class ThreadServer:
    """uvicorn serving an app on 127.0.0.1 in a background thread."""

    def __init__(self, app: Any, *, lifespan: str = "off") -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan=lifespan)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Live:
    url: str
    services: Services
    clock: ManualClock
    tokens: dict[str, str]
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def client(self, party: str | None) -> httpx.Client:
        key = party or "(anonymous)"
        if key not in self.clients:
            headers = {"Authorization": f"Bearer {self.tokens[party]}"} if party else {}
            self.clients[key] = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        return self.clients[key]

    def snapshot(self) -> Any:
        """Everything stored that a refused request must not change."""
        with self.services.store.read() as r:
            filings = r.list_filings(live_only=False)
            return (
                [(f, r.filing_versions(f.id)) for f in filings],
                r.list_conflicts(),
                r.list_parties(),
            )


def sqlite_in(directory: Path) -> Store:
    return SqliteStore(directory / "deconflict.sqlite3")


def start_live(
    tmp_path: Path,
    agreement: Agreement,
    new_store: Callable[[Path], Store] = sqlite_in,
    **app_options: Any,
) -> tuple[Live, ThreadServer]:
    """Services with the test parties, and a server for them (`app_options` go to create_app)."""
    clock = ManualClock(T0)
    store = new_store(tmp_path)
    services = Services.build(store, agreement, clock)
    tokens: dict[str, str] = {}
    _, tokens["admin"] = services.parties.add("admin", role=Role.ADMIN)
    for pid in ("north", "south", "drones"):
        _, tokens[pid] = services.parties.add(pid, role=Role.OPERATOR)
    _, tokens["shield"] = services.parties.add("shield", role=Role.OBSERVER)
    server = ThreadServer(create_app(services, **app_options))
    return Live("", services, clock, tokens), server


@pytest.fixture
def agreement() -> Agreement:
    return agreements.load()


# -- PostgreSQL


class PgServer:
    """A PostgreSQL server we may create databases on; `template` is migrated."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"dt_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self._n = itertools.count()
        self.template = f"{self.prefix}_template"
        self.admin(f'CREATE DATABASE "{self.template}"')
        from deconflict.store.postgres import PostgresStore

        PostgresStore(self.url_of(self.template)).close()  # applies the migrations once

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql)  # our own names and statements only

    def url_of(self, name: str) -> str:
        from urllib.parse import urlsplit

        return urlsplit(self.url)._replace(path=f"/{name}").geturl()

    def create(self) -> str:
        """A fresh, migrated database; its URL."""
        name = f"{self.prefix}_{next(self._n)}"
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return self.url_of(name)

    def drop(self, url: str) -> None:
        from urllib.parse import urlsplit

        name = urlsplit(url).path.lstrip("/")
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    given = os.environ.get("DECONFLICT_TEST_PG")
    if given:
        server = PgServer(given)
        yield server
        server.close()
        return
    from deconflict.store.pg_cluster import PgBinariesMissing, bin_dir, cluster

    try:
        bin_dir()
    except PgBinariesMissing as exc:
        if os.environ.get("DECONFLICT_REQUIRE_PG") == "1":
            pytest.fail(f"DECONFLICT_REQUIRE_PG=1 but {exc}", pytrace=False)
        pytest.skip(f"{exc} (or give a server in DECONFLICT_TEST_PG)")
    settings = {"max_connections": "300", "shared_buffers": "128MB"}
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        # `timeout pytest` ends with SIGTERM, which kills Python without running this
        # fixture's teardown and would leave the cluster running: make it an interrupt
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    with cluster(settings=settings, durable=False) as url:
        yield PgServer(url)


@pytest.fixture
def pg_database(pg_server: PgServer) -> Iterator[str]:
    """The URL of a fresh, migrated database, dropped after the test."""
    url = pg_server.create()
    yield url
    pg_server.drop(url)


@pytest.fixture(params=["sqlite", "postgres"])
def new_store(request: pytest.FixtureRequest) -> Iterator[Callable[[Path], Store]]:
    """How this test opens a fresh store: SQLite in a directory, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield sqlite_in
        return
    from deconflict.store.postgres import PostgresStore

    server: PgServer = request.getfixturevalue("pg_server")
    made: list[str] = []

    def fresh(_: Path) -> Store:
        made.append(server.create())
        return PostgresStore(made[-1])

    yield fresh
    for url in made:
        server.drop(url)


# -- the live server


@pytest.fixture
def live(tmp_path: Path, agreement: Agreement, new_store: Callable[[Path], Store]) -> Iterator[Live]:
    state, server = start_live(tmp_path, agreement, new_store)
    with server as url:
        state.url = url
        yield state
        for c in state.clients.values():
            c.close()
    state.services.store.close()


def at(minutes: float) -> str:
    """T0 + minutes as RFC 3339."""
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def circle(
    lon: float,
    lat: float,
    radius_m: float,
    *,
    lower: float = 0,
    upper: float = 120,
    start: float = 120,
    end: float = 180,
) -> dict[str, Any]:
    """A circular volume Feature; times in minutes after T0 (default: 2 h to 3 h ahead)."""
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {
            "radius_m": radius_m,
            "altitude_lower_m": lower,
            "altitude_upper_m": upper,
            "time_start": at(start),
            "time_end": at(end),
        },
    }


def polygon(
    ring: list[tuple[float, float]],
    *,
    lower: float = 0,
    upper: float = 120,
    start: float = 120,
    end: float = 180,
) -> dict[str, Any]:
    coords = [list(p) for p in ring] + [list(ring[0])]
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [coords]},
        "properties": {
            "altitude_lower_m": lower,
            "altitude_upper_m": upper,
            "time_start": at(start),
            "time_end": at(end),
        },
    }


@pytest.fixture
def make_live(tmp_path: Path, new_store: Callable[[Path], Store]) -> Iterator[Any]:
    """Start a server on a given agreement: `with make_live(agreement) as live: ...`."""
    from contextlib import contextmanager

    count = 0

    @contextmanager
    def factory(agreement: Agreement) -> Iterator[Live]:
        nonlocal count
        count += 1
        d = tmp_path / f"live{count}"
        d.mkdir()
        state, server = start_live(d, agreement, new_store)
        with server as url:
            state.url = url
            try:
                yield state
            finally:
                for c in state.clients.values():
                    c.close()
        state.services.store.close()

    yield factory


def local_ring(
    center: tuple[float, float], corners_m: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    """Vertices given in metres in the local plane around `center` (lon, lat), as lon/lat."""
    from deconflict.geometry.projection import LocalProjection

    proj = LocalProjection.at(*center)
    lon, lat = proj.inverse([c[0] for c in corners_m], [c[1] for c in corners_m])
    return [(float(a), float(b)) for a, b in zip(lon, lat, strict=True)]
