"""The one source of time. Inject a `ManualClock` in tests instead of sleeping, and a
`ScaledClock` to run the whole service on compressed time (the demo)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    #: seconds of this clock per real second (1 for the system clock; 0: it moves only when told)
    rate: float

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    rate = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)


class ScaledClock:
    """Time running `rate` times as fast as the real clock, from `start` (default: the real
    time at creation). Everything the service measures on it (notice, deadlines,
    heartbeats, track times, ages) is then in this compressed time, consistently: the demo
    plays 30 minutes in 3 with true speeds and times."""

    def __init__(self, rate: float, start: datetime | None = None) -> None:
        if not rate > 0 or rate == float("inf"):
            raise ValueError("ScaledClock needs a finite rate > 0")
        start = start if start is not None else datetime.now(UTC)
        if start.tzinfo is None or start.utcoffset() != timedelta(0):
            raise ValueError("ScaledClock needs a timezone-aware UTC start")
        self.rate = float(rate)
        self._start = start
        self._mono0 = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._mono0) * self.rate)

    def real_seconds(self, seconds: float) -> float:
        """How long `seconds` of this clock take in real time."""
        return seconds / self.rate


class ManualClock:
    """A clock that moves only when told to."""

    rate = 0.0

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None or start.utcoffset() != timedelta(0):
            raise ValueError("ManualClock needs a timezone-aware UTC start")
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when
