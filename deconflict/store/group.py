"""Group commit: concurrent writes run as one transaction, one durable commit for all.

`GroupCommit.run(body)` keeps the contract of `retrying(store, body)`: `body` runs in
the store's serialised write transaction, its result is returned once that
transaction is committed durably, and what it raised is raised with nothing of it
stored. What changes is who runs it: a caller that finds the writer free becomes
the leader and runs, in one `store.write()`, every body queued so far (at most
`max_batch`), one after the other, each in its own `Writer.savepoint()`; callers that
arrive meanwhile queue and wait. One commit (one fsync on SQLite, one WAL flush on
PostgreSQL) then answers them all.

Each body sees what the bodies before it in the batch wrote, exactly as if they had
committed just before it: the batch is a serial order, so two conflicting filings
are still never both accepted unaware of each other. A body refused by a domain
rule (`DeconflictError`, not a storage failure) is rolled back to its savepoint and
the others go on. When the batch as a whole fails (a storage error, contention, a
bug in a body, the commit), nothing of it was committed and every body is run again
alone with `retrying`, so each caller gets what it would have got without company.
A batch of one is plain `retrying`.

`run_async(body)` is the same for a caller on an event loop: its body is queued and
the caller awaits, holding no thread. A writer thread of the group (started on first
use) leads when no caller does, so a burst of requests costs one hand-over to the
writer and one back, not a worker thread each.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Generic, TypeVar

from deconflict.errors import DeconflictError, StoreUnavailable
from deconflict.store.base import Store, Writer, retrying

__all__ = ["GroupCommit"]

T = TypeVar("T")


class _Item(Generic[T]):
    __slots__ = ("body", "done", "error", "on_done", "result")

    def __init__(self, body: Callable[[Writer], T], on_done: Callable[[], None] | None = None) -> None:
        self.body = body
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None
        #: called (on the thread that ran the batch) once the item is done
        self.on_done = on_done


class GroupCommit:
    """The writes of one store, batched (see the module's docstring)."""

    #: PostgreSQL keeps 64 subtransactions (savepoints that wrote) per session in shared
    #: memory; past that every snapshot taken anywhere slows down: stay well below
    MAX_BATCH = 32

    def __init__(self, store: Store, *, max_batch: int = MAX_BATCH) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.store = store
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: list[_Item[object]] = []
        self._leading = False
        self._writer: threading.Thread | None = None
        #: batches run and bodies in them (for benchmarks and tests)
        self.batches = 0
        self.bodies = 0

    def run(self, body: Callable[[Writer], T]) -> T:
        item: _Item[T] = _Item(body)
        with self._cond:
            self._queue.append(item)  # type: ignore[arg-type]
            while not item.done:
                if self._leading:
                    self._cond.wait()
                    continue
                self._leading = True
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                self._cond.release()
                try:
                    self._run(batch)
                finally:
                    self._cond.acquire()
                    self._leading = False
                    self._cond.notify_all()
        if item.error is not None:
            raise item.error
        return item.result  # type: ignore[return-value]

    async def run_async(self, body: Callable[[Writer], T]) -> T:
        """`run(body)` for a caller on an event loop: the group's writer thread (or a
        thread already leading) runs it; the caller awaits without holding a thread."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def settle() -> None:
            if not future.done():
                future.set_result(None)

        def on_done() -> None:
            with suppress(RuntimeError):  # the loop has closed: nobody is waiting
                loop.call_soon_threadsafe(settle)

        item: _Item[T] = _Item(body, on_done)
        with self._cond:
            self._queue.append(item)  # type: ignore[arg-type]
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_forever, name="group-commit", daemon=True)
                self._writer.start()
            self._cond.notify_all()
        # the write goes on if the caller goes away (as a thread's would): wait it out
        await asyncio.shield(future)
        if item.error is not None:
            raise item.error
        return item.result  # type: ignore[return-value]

    def _write_forever(self) -> None:
        """The writer thread: lead whenever bodies are queued and nobody leads."""
        with self._cond:
            while True:
                while self._leading or not self._queue:
                    self._cond.wait()
                self._leading = True
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                self._cond.release()
                try:
                    self._run(batch)
                except BaseException:  # noqa: S110 - every caller in the batch has it
                    pass
                finally:
                    self._cond.acquire()
                    self._leading = False
                    self._cond.notify_all()

    def _run(self, batch: list[_Item[object]]) -> None:
        try:
            self._run_batch(batch)
        finally:
            for item in batch:
                if item.done and item.on_done is not None:
                    item.on_done()

    def _run_batch(self, batch: list[_Item[object]]) -> None:
        self.batches += 1
        self.bodies += len(batch)
        try:
            if len(batch) == 1:
                self._alone(batch[0])
                return
            try:
                self._together(batch)
            except Exception:  # nothing of the batch was committed: each on its own
                for item in batch:
                    self._alone(item)
        except BaseException as exc:  # interrupted: no caller waits for ever
            for item in batch:
                if not item.done:
                    item.error, item.done = exc, True
            raise

    def _alone(self, item: _Item[object]) -> None:
        item.result, item.error = None, None
        try:
            item.result = retrying(self.store, item.body)
        except Exception as exc:
            item.error = exc
        item.done = True

    def _together(self, batch: list[_Item[object]]) -> None:
        outcomes: list[tuple[object, BaseException | None]] = []
        with self.store.write() as w:
            for item in batch:
                try:
                    with w.savepoint():
                        outcomes.append((item.body(w), None))
                except DeconflictError as exc:
                    if isinstance(exc, StoreUnavailable):
                        raise
                    outcomes.append((None, exc))
        # committed: only now does any caller get an answer
        for item, (result, error) in zip(batch, outcomes, strict=True):
            item.result, item.error, item.done = result, error, True
