"""The `store` fixture, parameterised by backend.

Every backend runs the conformance suite (`conformance.py`, `conformance_dss.py`; collected
once in test_conformance.py, over every entry of BACKENDS). A backend is a way to open the
same database again (to test durability across reopen). A module of one engine's own tests
pins it with ``pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)``
(see test_sqlite.py and test_postgres.py). PostgreSQL databases come from the
`pg_database` fixture of tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from deconflict.store.base import Store
from deconflict.store.postgres import PostgresStore
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


@dataclass
class PostgresBackend:
    url: str
    name: str = "postgres"

    def open(self) -> PostgresStore:
        return PostgresStore(self.url)


BACKENDS = ("postgres", "sqlite")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "postgres":
        return PostgresBackend(request.getfixturevalue("pg_database"))
    return SqliteBackend(tmp_path / "deconflict.db")


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    s = backend.open()
    try:
        yield s
    finally:
        s.close()
