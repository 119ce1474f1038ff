"""Which migration files an engine applies: the portable ones in `migrations/sqlite/`, each
replaced by a same-numbered file in the engine's folder where there is one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deconflict.errors import StoreUnavailable
from deconflict.ledger.rfc9162 import nodes_completed_by
from deconflict.store import sql
from deconflict.store.sql import migrations, node_pos, pos_node


def test_postgres_applies_the_portable_files_but_its_own_ninth_and_tenth() -> None:
    portable = migrations()
    assert [(n, name) for n, name, _ in portable][:2] == [(1, "init"), (2, "ledger")]
    pg = migrations("postgres")
    assert [(n, name) for n, name, _ in pg] == [(n, name) for n, name, _ in portable]
    differ = [n for (n, _, a), (_, _, b) in zip(pg, portable, strict=True) if a != b]
    assert differ == [9, 10]
    assert "pos  BIGINT PRIMARY KEY" in pg[8][2]  # the log's node key: INTEGER is 32 bits there
    assert list(sql.statements(pg[9][2])) == []  # SQLite's own key: nothing to do there


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


@given(st.lists(st.integers(0, 2**40), min_size=1, max_size=20))
def test_node_keys_grow_in_the_order_nodes_are_made(starts: list[int]) -> None:
    for leaf in sorted(set(starts)):
        made = [*nodes_completed_by(leaf), *nodes_completed_by(leaf + 1)]
        keys = [node_pos(n) for n in made]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
        assert [pos_node(k) for k in keys] == made
