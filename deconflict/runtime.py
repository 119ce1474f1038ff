"""The interpreter's cyclic garbage collector, paced by a clock.

CPython (3.11) collects its youngest generation when its count passes a threshold,
and that count is allocations *minus deallocations* of tracked objects, old or young.
A service whose caches run full (`store.sql.DecodeCache`, `detect.strategic.PreparedCache`)
frees an old entry for every new one it keeps: the count stands still while the young
generation grows without bound, until a burst passes the threshold and one collection
walks all of it. Measured in-process at 1M filings, caches full: a young collection
every 80 filings or so, walking 23,000 objects (3 ms) and at times 290,000 (110 to
160 ms); the middle one over 100 ms; a full collection of the 800,000 live objects,
0.5 s (bench/gc_pauses.py).

`GcPacer` collects the young generations on a clock instead, so each collection walks
only what was allocated since the last one: the youngest every `period_s` (10 ms), the
middle one every `middle_every` ticks (every 0.2 s). A full collection, whose cost is
the whole live heap whatever was allocated, runs every `full_every_s` (an hour), never
at the moment some allocation happens to pass a threshold: the automatic oldest
collection is set out of reach. CPython's own young collections stay on as a backstop
for a burst between two ticks.

On the filing path nothing reaches the oldest generation as garbage (a full
collection after 6,000 filings at 1M found none), so collecting it hourly holds
nothing back in practice; garbage cycles there are reclaimed at the next full
collection.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable

__all__ = ["GcPacer", "start_pacer"]

#: the automatic collector's thresholds beside the pacer: young collections as a
#: backstop for bursts between ticks; the oldest never (the pacer runs it)
BACKSTOP_THRESHOLDS = (10_000, 20, 1 << 30)


class GcPacer:
    """Young collections on a clock, a full one now and then (see the module)."""

    def __init__(
        self,
        *,
        period_s: float = 0.01,
        middle_every: int = 20,
        full_every_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if period_s <= 0 or middle_every < 1 or full_every_s <= 0:
            raise ValueError("period_s and full_every_s must be positive, middle_every at least 1")
        self.period_s = period_s
        self.middle_every = middle_every
        self.full_every_s = full_every_s
        self._clock = clock
        self._last_full = clock()
        #: ticks run, and collections of each generation they ran (for tests and benches)
        self.ticks = 0
        self.collections = [0, 0, 0]
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def tick(self) -> int:
        """One step: collect the generation due; which one it was."""
        self.ticks += 1
        if self._clock() - self._last_full >= self.full_every_s:
            generation = 2
            self._last_full = self._clock()
        elif self.ticks % self.middle_every == 0:
            generation = 1
        else:
            generation = 0
        gc.collect(generation)
        self.collections[generation] += 1
        return generation

    def start(self) -> None:
        """Tick every `period_s` on a daemon thread (it takes the interpreter lock only
        to collect), with the automatic collector set to `BACKSTOP_THRESHOLDS`."""
        if self._thread is not None:
            return
        gc.set_threshold(*BACKSTOP_THRESHOLDS)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gc-pacer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.tick()


_pacer: GcPacer | None = None
_pacer_guard = threading.Lock()


def _forget_in_child() -> None:
    """A forked child has none of its parent's threads: it starts its own pacer."""
    global _pacer
    _pacer = None


os.register_at_fork(after_in_child=_forget_in_child)


def start_pacer() -> GcPacer:
    """The process's pacer, started once (later calls return the same one)."""
    global _pacer
    with _pacer_guard:
        if _pacer is None:
            _pacer = GcPacer()
            _pacer.start()
        return _pacer
