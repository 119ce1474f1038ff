"""Which migration files an engine applies: the portable ones in `migrations/sqlite/`, each
replaced by a same-numbered file in the engine's folder where there is one."""

from __future__ import annotations

import pytest

from deconflict.errors import StoreUnavailable
from deconflict.store import sql
from deconflict.store.sql import migrations


def test_postgres_applies_the_portable_files_today() -> None:
    portable = migrations()
    assert [(n, name) for n, name, _ in portable][:2] == [(1, "init"), (2, "ledger")]
    assert migrations("postgres") == portable


def test_an_engine_file_replaces_the_portable_one_of_its_number(monkeypatch: pytest.MonkeyPatch) -> None:
    folders: dict[str, dict[int, tuple[str, str]]] = {
        "sqlite": {1: ("init", "CREATE TABLE a (x TEXT);"), 2: ("ledger", "CREATE TABLE b (x TEXT);")},
        "postgres": {2: ("ledger", "CREATE TABLE b (x BYTEA);")},
    }
    monkeypatch.setattr(sql, "_folder", lambda engine: dict(folders.get(engine, {})))
    assert migrations("postgres") == [
        (1, "init", "CREATE TABLE a (x TEXT);"),
        (2, "ledger", "CREATE TABLE b (x BYTEA);"),
    ]
    assert migrations() == [
        (1, "init", "CREATE TABLE a (x TEXT);"),
        (2, "ledger", "CREATE TABLE b (x TEXT);"),
    ]
    folders["postgres"] = {3: ("extra", "CREATE TABLE c (x TEXT);")}
    with pytest.raises(StoreUnavailable, match="0003_extra.sql overrides no portable migration"):
        migrations("postgres")
    folders["postgres"] = {2: ("renamed", "CREATE TABLE b (x TEXT);")}
    with pytest.raises(StoreUnavailable, match="must keep the portable name 'ledger'"):
        migrations("postgres")
    folders["sqlite"] = {1: ("init", ""), 3: ("gap", "")}
    folders["postgres"] = {}
    with pytest.raises(StoreUnavailable, match=r"without gaps, found \[1, 3\]"):
        migrations("postgres")


def test_statements_split_portable_sql_for_any_engine() -> None:
    script = (
        "-- a comment; with a semicolon\nCREATE TABLE t (x TEXT DEFAULT 'a;b');\n"
        "INSERT INTO t VALUES ('c');\n"
    )
    assert list(sql.statements(script)) == [
        "-- a comment; with a semicolon\nCREATE TABLE t (x TEXT DEFAULT 'a;b');",
        "INSERT INTO t VALUES ('c');",
    ]
    with pytest.raises(StoreUnavailable, match="incomplete statement"):
        list(sql.statements("CREATE TABLE t (x TEXT)"))
