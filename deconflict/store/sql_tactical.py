"""The tactical alerts' half of the SQL backend, mixed into the shared SQL reader and
writer (`deconflict.store.sql`), so SQLite and PostgreSQL run the same statements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from deconflict.model.alert import AlertKind, TacticalAlert
from deconflict.store.codec import from_us, to_us

__all__ = ["TacticalReads", "TacticalWrites"]

_COLUMNS = (
    "id, kind, track_a, party_a, track_b, party_b, filing, opened_at_us, updated_at_us, closed_at_us, doc"
)


def _alert(row: Any) -> TacticalAlert:
    aid, kind, ta, pa, tb, pb, filing, opened, updated, closed, doc = row
    return TacticalAlert(
        aid, AlertKind(kind), ta, pa, tb, pb, filing, from_us(int(opened)), from_us(int(updated)),
        None if closed is None else from_us(int(closed)), orjson.loads(doc),
    )  # fmt: skip


_UPSERT = (
    f"INSERT INTO tactical_alerts ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608
    " ON CONFLICT (id) DO UPDATE SET updated_at_us = excluded.updated_at_us,"
    " closed_at_us = excluded.closed_at_us, doc = excluded.doc"
)


def _row(alert: TacticalAlert) -> tuple[Any, ...]:
    return (
        alert.id, alert.kind.value, alert.track_a, alert.party_a, alert.track_b, alert.party_b,
        alert.filing, to_us(alert.opened_at), to_us(alert.updated_at),
        None if alert.closed_at is None else to_us(alert.closed_at),
        orjson.dumps(dict(alert.figures)).decode(),
    )  # fmt: skip


class TacticalReads:
    """Needs `_all` of the reader it is mixed into."""

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def tactical_alerts(self, *, open_only: bool = False, limit: int = 1000) -> list[TacticalAlert]:
        where = " WHERE closed_at_us IS NULL" if open_only else ""
        rows = self._all(
            f"SELECT {_COLUMNS} FROM tactical_alerts{where} ORDER BY opened_at_us DESC, id LIMIT ?",  # noqa: S608
            (limit,),
        )
        return [_alert(r) for r in rows]


class TacticalWrites(TacticalReads):
    """Needs `_exec` of the writer it is mixed into."""

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> None:
        raise NotImplementedError

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def put_tactical_alert(self, alert: TacticalAlert) -> None:
        self.put_tactical_alerts([alert])

    def put_tactical_alerts(self, alerts: Sequence[TacticalAlert]) -> None:
        ids = [a.id for a in alerts]
        if len(set(ids)) != len(ids):
            raise ValueError("put_tactical_alerts: an alert id is given twice")
        self._many(_UPSERT, [_row(a) for a in alerts])
