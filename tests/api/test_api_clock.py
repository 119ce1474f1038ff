"""GET /v1/clock: the service's time and rate, without a token."""

from __future__ import annotations

from typing import Any


def test_clock_gives_the_service_time_and_rate_to_anyone(live: Any) -> None:
    r = live.client(None).get("/v1/clock")
    assert r.status_code == 200
    assert r.json() == {"now": "2030-06-01T12:00:00.000Z", "rate": 0.0}  # the tests' manual clock
    live.clock.advance(90.25)
    assert live.client(None).get("/v1/clock").json()["now"] == "2030-06-01T12:01:30.250Z"
