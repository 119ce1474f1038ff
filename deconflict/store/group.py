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
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from deconflict.errors import DeconflictError, StoreUnavailable
from deconflict.store.base import Store, Writer, retrying

__all__ = ["GroupCommit"]

T = TypeVar("T")


class _Item(Generic[T]):
    __slots__ = ("body", "done", "error", "result")

    def __init__(self, body: Callable[[Writer], T]) -> None:
        self.body = body
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None


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

    def _run(self, batch: list[_Item[object]]) -> None:
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
