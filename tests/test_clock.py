"""The clocks: a scaled clock runs `rate` times as fast as the real one."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from deconflict.clock import ManualClock, ScaledClock, SystemClock


def test_scaled_clock_runs_rate_times_as_fast() -> None:
    clock = ScaledClock(60)
    a0 = time.monotonic()
    c1 = clock.now()
    a1 = time.monotonic()
    time.sleep(0.05)
    b0 = time.monotonic()
    c2 = clock.now()
    b1 = time.monotonic()
    elapsed = (c2 - c1).total_seconds()
    # bracketed by the real time between the two readings, times the rate
    assert (b0 - a1) * 60 <= elapsed <= (b1 - a0) * 60
    assert elapsed >= 0.05 * 60
    assert clock.real_seconds(600) == 10.0
    assert c1.tzinfo is UTC or c1.utcoffset() == timedelta(0)


def test_scaled_clock_starts_where_told() -> None:
    start = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    clock = ScaledClock(10, start)
    assert start <= clock.now() < start + timedelta(seconds=10)


@pytest.mark.parametrize("rate", [0, -1, float("inf"), float("nan")])
def test_scaled_clock_refuses_a_rate_that_is_not_finite_and_positive(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        ScaledClock(rate)


def test_scaled_clock_refuses_a_naive_start() -> None:
    with pytest.raises(ValueError, match="UTC"):
        ScaledClock(2, datetime(2030, 6, 1, 12, 0))


def test_rates_of_the_other_clocks() -> None:
    assert SystemClock.rate == 1.0
    assert ManualClock(datetime(2030, 6, 1, tzinfo=UTC)).rate == 0.0
