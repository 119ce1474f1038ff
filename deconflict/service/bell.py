"""Waking stream readers when events are committed.

Events live in the store; a reader follows each party's persisted sequence and only
waits when it has read everything. :meth:`Bell.ring` (called after a commit that wrote
events) wakes every waiter of this process at once, from any thread. A process that
shares the database but not this bell still sees the events at its readers' next poll
(:data:`POLL_S`), since readers never trust the bell for content, only for timing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["POLL_S", "Bell", "Waiter"]

POLL_S = 1.0
"""How long a reader waits without a ring before it reads the store again."""


class Waiter:
    """One reader's wake-up call, registered before it reads (so no ring is lost
    between its read and its wait)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.event = asyncio.Event()

    async def wait(self, timeout_s: float = POLL_S) -> bool:
        """True when rung, False on timeout; re-armed either way."""
        try:
            await asyncio.wait_for(self.event.wait(), timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            self.event.clear()


class Bell:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[Waiter] = set()
        self._sync = threading.Condition()
        self.rings = 0

    @contextmanager
    def listening(self) -> Iterator[Waiter]:
        """Register a waiter on the running event loop for the block's duration."""
        waiter = Waiter(asyncio.get_running_loop())
        with self._lock:
            self._waiters.add(waiter)
        try:
            yield waiter
        finally:
            with self._lock:
                self._waiters.discard(waiter)

    def ring(self) -> None:
        """Wake every waiter (thread-safe; call after the commit)."""
        with self._lock:
            waiters = list(self._waiters)
        for w in waiters:
            try:
                w.loop.call_soon_threadsafe(w.event.set)
            except RuntimeError:  # its loop has closed: it is gone
                pass
        with self._sync:
            self.rings += 1
            self._sync.notify_all()

    def wait_sync(self, seen: int, timeout_s: float = POLL_S) -> int:
        """For threads: wait until rung after `seen` rings (or the timeout); the count now."""
        with self._sync:
            self._sync.wait_for(lambda: self.rings > seen, timeout_s)
            return self.rings
