"""The `store` fixture, parameterised by backend.

Every backend in BACKENDS runs the conformance suite (`conformance.py`). A backend
is a way to open the same database again (to test durability across reopen).
Add PostgreSQL as another entry; a module may pin one backend with
``pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from deconflict.store.base import Store
from deconflict.store.sqlite import SqliteStore


class Backend(Protocol):
    name: str

    def open(self) -> Store:
        """Open (a new handle on) this test's database."""
        ...


@dataclass
class SqliteBackend:
    path: Path
    name: str = "sqlite"

    def open(self) -> SqliteStore:
        return SqliteStore(self.path)


BACKENDS: dict[str, Callable[[Path], Backend]] = {
    "sqlite": lambda tmp: SqliteBackend(tmp / "deconflict.db"),
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return BACKENDS[request.param](tmp_path)


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    s = backend.open()
    try:
        yield s
    finally:
        s.close()
