"""The collector paced by a clock (`deconflict.runtime`)."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Callable, Iterator

import pytest

import deconflict.runtime as runtime
from deconflict.runtime import BACKSTOP_THRESHOLDS, GcPacer, start_pacer

KEPT = 100_000  # more than a test inserts: every eviction frees an old entry


@pytest.fixture
def collector() -> Iterator[None]:
    """This process's collector to ourselves: a pacer another test started is stopped
    for the test and started again after it; thresholds and switches restored."""
    running = runtime._pacer
    if running is not None:
        running.stop()
    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    gc.enable()
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        (gc.enable if enabled else gc.disable)()
        if running is not None:
            running.start()


def _young() -> int:
    return len(gc.get_objects(0)) + len(gc.get_objects(1))


def _churn(steps: int, per_step: int, tick: Callable[[], object]) -> int:
    """A full cache in steady state: each new entry evicts the oldest. The most objects
    the young generations held at any step."""
    cache = {i: [i] for i in range(KEPT)}
    gc.collect()  # the cache's entries are old now
    k, worst = KEPT, 0
    for _ in range(steps):
        for _ in range(per_step):
            cache[k] = [k]
            del cache[k - KEPT]
            k += 1
        tick()
        worst = max(worst, _young())
    return worst


@pytest.mark.usefixtures("collector")
def test_a_full_cache_piles_up_young_objects_under_cpythons_count() -> None:
    # what the pacer is for: an eviction per insertion keeps CPython's count still, so
    # its young collection never comes while the young generation grows
    gc.set_threshold(*BACKSTOP_THRESHOLDS)
    assert _churn(50, 1_000, lambda: None) >= 45_000


@pytest.mark.usefixtures("collector")
def test_the_pacer_keeps_the_young_generations_to_what_its_ticks_let_in() -> None:
    gc.set_threshold(*BACKSTOP_THRESHOLDS)
    pacer = GcPacer(middle_every=5)
    # at most 5 ticks' survivors (1,000 each) wait for the middle collection
    assert _churn(50, 1_000, pacer.tick) <= 5_000 + 1_000
    assert pacer.collections[1] == 10 and pacer.collections[0] == 40 and pacer.collections[2] == 0


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.mark.usefixtures("collector")
def test_full_collections_come_on_their_own_clock_and_free_old_cycles() -> None:
    now = [0.0]
    pacer = GcPacer(middle_every=3, full_every_s=100.0, clock=lambda: now[0])
    node = _Node()
    alive = weakref.ref(node)
    gc.collect(1)  # the cycle, still referenced, goes to the oldest generation
    del node
    gens = []
    for t in (10.0, 20.0, 30.0, 99.9, 100.0, 150.0, 200.0):
        now[0] = t
        gens.append(pacer.tick())
        if t == 99.9:
            assert alive() is not None  # young and middle collections do not reach it
    assert gens == [0, 0, 1, 0, 2, 1, 2]
    assert alive() is None
    assert pacer.collections == [3, 2, 2]


@pytest.mark.usefixtures("collector")
def test_a_started_pacer_ticks_on_its_thread_with_the_backstop_thresholds() -> None:
    pacer = GcPacer(period_s=0.001)
    pacer.start()
    try:
        deadline = time.monotonic() + 10
        while pacer.ticks < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pacer.ticks >= 5
        assert gc.get_threshold() == BACKSTOP_THRESHOLDS
    finally:
        pacer.stop()
    stopped = pacer.ticks
    time.sleep(0.02)
    assert pacer.ticks == stopped


@pytest.mark.usefixtures("collector")
def test_the_process_has_one_pacer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_pacer", None)
    first = start_pacer()
    try:
        assert start_pacer() is first
    finally:
        first.stop()


def test_bad_settings_are_refused() -> None:
    for bad in ({"period_s": 0}, {"middle_every": 0}, {"full_every_s": -1}):
        with pytest.raises(ValueError):
            GcPacer(**bad)  # type: ignore[arg-type]
