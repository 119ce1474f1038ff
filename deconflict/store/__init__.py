"""The store: one repository contract (`base`), its SQL written once (`sql`), and the
engines under it (`sqlite`, the default; `postgres`). `open_store` is the one place
that turns a configured database into a store."""

from __future__ import annotations

from pathlib import Path

from deconflict.store.base import Store

__all__ = ["is_server_url", "open_store"]

_SERVER_SCHEMES = ("postgresql://", "postgres://")


def is_server_url(database: str | Path) -> bool:
    """True for a PostgreSQL URL (``postgresql://`` or ``postgres://``)."""
    return isinstance(database, str) and database.startswith(_SERVER_SCHEMES)


def open_store(database: str | Path) -> Store:
    """The store `database` names: a ``postgresql://`` (or ``postgres://``) URL opens
    PostgreSQL; ``sqlite:///path`` or a plain path opens (or creates) a SQLite file."""
    if is_server_url(database):
        from deconflict.store.postgres import PostgresStore

        return PostgresStore(str(database))
    from deconflict.store.sqlite import SqliteStore

    text = str(database)
    if text.startswith("sqlite://"):
        text = text.removeprefix("sqlite://")
        if not text.startswith("/"):
            raise ValueError(f"a sqlite URL must be sqlite:///absolute/path, got {database!r}")
    return SqliteStore(text)
