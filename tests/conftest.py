"""Shared fixtures: a real uvicorn server on loopback over a real SQLite file."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
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
from deconflict.store.sqlite import SqliteStore

#: Tests run on a manual clock, so notice and "end in the past" are exact.
T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def start_live(tmp_path: Path, agreement: Agreement, **app_options: Any) -> tuple[Live, ThreadServer]:
    """Services with the test parties, and a server for them (`app_options` go to create_app)."""
    clock = ManualClock(T0)
    store = SqliteStore(tmp_path / "deconflict.sqlite3")
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


@pytest.fixture
def live(tmp_path: Path, agreement: Agreement) -> Iterator[Live]:
    state, server = start_live(tmp_path, agreement)
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
def make_live(tmp_path: Path) -> Iterator[Any]:
    """Start a server on a given agreement: `with make_live(agreement) as live: ...`."""
    from contextlib import contextmanager

    count = 0

    @contextmanager
    def factory(agreement: Agreement) -> Iterator[Live]:
        nonlocal count
        count += 1
        d = tmp_path / f"live{count}"
        d.mkdir()
        state, server = start_live(d, agreement)
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
