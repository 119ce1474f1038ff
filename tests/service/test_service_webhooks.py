"""Webhooks against a real HTTP endpoint on loopback: events POSTed in order, signed
with HMAC-SHA256; a failing endpoint is retried from the failed event, after a delay
on the manual clock; registration refuses a bad URL."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import T0

from deconflict import agreements
from deconflict.clock import ManualClock
from deconflict.errors import InvalidInput
from deconflict.model import Party, Role
from deconflict.service import Services
from deconflict.store.sqlite import SqliteStore


class Endpoint:
    """A real HTTP server that records what it is sent, failing the first `fail` times."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if endpoint.fail > 0:
                    endpoint.fail -= 1
                    self.send_response(500)
                else:
                    endpoint.received.append((dict(self.headers), body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    e = Endpoint()
    yield e
    e.close()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    s = Services.build(SqliteStore(tmp_path / "db.sqlite3"), agreements.load(), ManualClock(T0))
    for p in ("north", "south"):
        s.parties.add(p, role=Role.OPERATOR)
    yield s
    s.store.close()


def party(services: Services, pid: str) -> Party:
    return next(p for p in services.parties.all() if p.id == pid)


def send(services: Services, text: str) -> str:
    return services.hotline.send(party(services, "north"), "FREE_TEXT", ["south"], {"text": text}).message.id


def test_events_are_posted_in_order_and_signed(services: Services, endpoint: Endpoint) -> None:
    south = party(services, "south")
    send(services, "before")  # not sent: a webhook gets the events after it was registered
    hook, secret = services.webhooks.register(south, endpoint.url)
    assert hook.delivered_seq == 1
    ids = [send(services, t) for t in ("one", "two")]
    assert services.webhooks.run_once() == 2
    bodies = [json.loads(b) for _, b in endpoint.received]
    assert [(b["seq"], b["data"]["message"]["id"]) for b in bodies] == [(2, ids[0]), (3, ids[1])]
    for headers, body in endpoint.received:
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Deconflict-Signature"] == expected
        assert headers["X-Deconflict-Event"] == str(json.loads(body)["seq"])
    assert services.webhooks.run_once() == 0  # nothing new, nothing sent again
    got = services.webhooks.get(south)
    assert got is not None and got.delivered_seq == 3


def test_a_failing_endpoint_is_retried_after_a_growing_delay(services: Services, endpoint: Endpoint) -> None:
    south = party(services, "south")
    services.webhooks.register(south, endpoint.url)
    mid = send(services, "one")
    endpoint.fail = 2
    assert services.webhooks.run_once(T0) == 0
    hook = services.webhooks.get(south)
    assert hook is not None and (hook.failures, hook.next_attempt) == (1, T0 + timedelta(seconds=1))
    assert services.webhooks.run_once(T0 + timedelta(milliseconds=999)) == 0  # not yet due
    assert endpoint.fail == 1  # and not tried
    assert services.webhooks.run_once(T0 + timedelta(seconds=1)) == 0  # fails again
    hook = services.webhooks.get(south)
    assert hook is not None and (hook.failures, hook.next_attempt) == (2, T0 + timedelta(seconds=3))
    assert services.webhooks.run_once(T0 + timedelta(seconds=3)) == 1
    ((_, body),) = endpoint.received
    assert json.loads(body)["data"]["message"]["id"] == mid
    hook = services.webhooks.get(south)
    assert hook is not None and (hook.failures, hook.next_attempt, hook.delivered_seq) == (0, None, 1)


def test_registration_rules(services: Services) -> None:
    with pytest.raises(InvalidInput) as info:
        services.webhooks.register(party(services, "south"), "ftp://example.org/x")
    assert info.value.errors[0].field == "url"
    assert services.webhooks.remove(party(services, "south")) is False
