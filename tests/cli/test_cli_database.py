"""`--database`: which store a command opens, and what it prints of the URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deconflict.cli import _redacted, main
from deconflict.store import open_store
from deconflict.store.postgres import PostgresStore
from deconflict.store.sqlite import SqliteStore


def test_a_password_in_the_url_is_never_printed() -> None:
    shown = _redacted("postgresql://deconflict:s3cret@db.example:5432/deconflict?sslmode=verify-full")
    assert "s3cret" not in shown
    assert shown == "postgresql://deconflict:***@db.example:5432/deconflict?sslmode=verify-full"
    assert _redacted("postgresql://postgres@127.0.0.1:5432/x") == "postgresql://postgres@127.0.0.1:5432/x"


def test_open_store_picks_the_engine_by_the_name(tmp_path: Path, pg_database: str) -> None:
    lite = open_store(f"sqlite://{tmp_path / 'a.sqlite3'}")
    assert isinstance(lite, SqliteStore) and lite.path == tmp_path / "a.sqlite3"
    lite.close()
    plain = open_store(tmp_path / "b.sqlite3")
    assert isinstance(plain, SqliteStore)
    plain.close()
    pg = open_store(pg_database)
    assert isinstance(pg, PostgresStore)
    pg.close()
    with pytest.raises(ValueError, match="sqlite:///absolute/path"):
        open_store("sqlite://relative.db")


def test_a_missing_sqlite_database_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "stats", "--database", str(tmp_path / "none.sqlite3")]) == 2
    err = capsys.readouterr().err
    assert "--database: must hold a store" in err and "none.sqlite3" in err


def test_commands_work_on_the_database_named(
    tmp_path: Path, pg_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["party", "add", "north", "--data-dir", str(tmp_path), "--database", pg_database]) == 0
    capsys.readouterr()
    assert main(["party", "list", "--data-dir", str(tmp_path), "--database", pg_database]) == 0
    assert '"id": "north"' in capsys.readouterr().out
    assert not (tmp_path / "deconflict.sqlite3").exists()  # nothing went to the default SQLite file
    assert main(["ledger", "stats", "--json", "--database", pg_database]) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == 1  # the party_added entry
